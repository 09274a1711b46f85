/*
 * fs__itable: the FUSE inode table (private to fs/).
 *
 * Maps kernel node ids to mount paths and back, with the kernel's lookup count of each, like
 * libfuse's passthrough_ll. A node id is never reused while the daemon runs, so a node deleted and
 * re-created under the same path gets a new id; the generation of an id is the czxid of the node it
 * was first handed out for and never changes. Each inode remembers the czxid of the node it stands
 * for: a path whose node has another czxid now is another node (deleted and re-created).
 *
 * Paths: the znode path for nodes ("/", "/a/b"); NODE "/.data" for the data of a directory node
 * (the root's is "/.data"); "/.zk" and "/.zk/status" for the control directory (not znodes);
 * "/.zk/MODE" + NODE (NODE "/" dropped) for a directory node seen through a creation mode.
 *
 * Locking: every function expects tab->lock to be held by the caller unless it says otherwise.
 */
#ifndef QFS_FS_ITABLE_H
#define QFS_FS_ITABLE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

enum fs__kind {
	FS__K_FILE = 1,	  /* a znode shown as a regular file */
	FS__K_DIR = 2,	  /* a znode shown as a directory (created by mkdir, or has children) */
	FS__K_DATA = 3,	  /* DIR/.data: the data of a directory node */
	FS__K_CTL = 4,	  /* /.zk */
	FS__K_STATUS = 5, /* /.zk/status */
	FS__K_MIRROR = 6, /* /.zk/MODE[/NODE...]: a directory node seen through a creation mode
			     (sequential, ephemeral, ephemeral-sequential, watch, watch-children) */
	FS__K_WATCH = 7,  /* /.zk/watch[-children]/PATH (or DIR/.data): a watch file */
	FS__K_MULTI = 8,  /* /.zk/multi: write a transaction, read its results */
};

struct fs__inode {
	uint64_t ino;	     /* immutable */
	uint64_t generation; /* immutable */
	enum fs__kind kind;  /* immutable */
	char *path;	    /* protected by tab->lock; NULL once detached (node gone or replaced) */
	uint64_t nlookup;   /* protected by tab->lock: the kernel's lookup count */
	int64_t czxid;	    /* protected by tab->lock: identity of the node this inode stands for */
	int64_t pc_mzxid;   /* protected by tab->lock: the version (mzxid) whose data the kernel's
			       page cache may hold for this inode; -1: none known */
	uint32_t pc_open;   /* protected by tab->lock: open page-cache read handles, all of
			       version pc_mzxid (see fs_open) */
	uint32_t fence;	    /* protected by tab->lock: open writable handles (and truncates in
			       progress); while nonzero no page-cache read handle is granted */
	int64_t pc_size;    /* protected by tab->lock: data length of version pc_mzxid */
	int64_t pc_mtime;   /* protected by tab->lock: its mtime (ms) */
	int pc_attr_other;  /* protected by tab->lock: an attribute reply of another version than
			       pc_mzxid went out since the last grant that dropped them */
	int pc_inval;	    /* protected by tab->lock: a change was applied while page-cache
			       readers were open; its invalidation waits until the last closes */
	int forgotten;	    /* protected by tab->lock: the kernel forgot it while handles still
			       counted in pc_open or fence were open (fs__it_forget) */
	int isolated;	    /* protected by tab->lock: taken out of by_path with its path kept
			       (fs__it_isolate): its handles go on, lookups get a new inode */
	struct fs__inode *next_ino;  /* protected by tab->lock */
	struct fs__inode *next_path; /* protected by tab->lock; in by_path only while attached */
};

struct fs__itable {
	pthread_mutex_t lock;
	uint64_t next_ino;	    /* protected by lock */
	size_t n;		    /* protected by lock: inodes in by_ino */
	size_t npath;		    /* protected by lock: inodes in by_path */
	size_t nbuckets;	    /* protected by lock */
	struct fs__inode **by_ino;  /* protected by lock */
	struct fs__inode **by_path; /* protected by lock */
	struct fs__inode *root;	    /* immutable after init */
};

/* Set up TAB with the root inode (id 1, path "/", never forgotten). No lock needed. 0 or -ENOMEM.
 */
int fs__it_init(struct fs__itable *tab, int64_t root_czxid);
/* Free every inode. No lock needed; no other thread may use TAB. */
void fs__it_destroy(struct fs__itable *tab);

struct fs__inode *fs__it_get(struct fs__itable *tab, uint64_t ino);
/* Take IN out of the path index but keep its path (and node): the handles open on it keep
 * working, and the next lookup of the path makes a new inode, which the kernel then uses for
 * every new open. fs/fs.c uses it to keep a writer's size changes, and a change applied from
 * elsewhere, away from page-cache readers that stay open. No effect on the root or a detached
 * inode. */
void fs__it_isolate(struct fs__itable *tab, struct fs__inode *in);
/* The attached inode for PATH, or NULL. */
struct fs__inode *fs__it_find(struct fs__itable *tab, const char *path);

/*
 * The kernel is about to be told about PATH (a lookup, create or readdirplus reply): return the
 * attached inode of PATH if it is of KIND and stands for the node CZXID (or a newer one), else
 * attach a new inode (detaching the old). Its lookup count goes up by one. NULL: -ENOMEM.
 */
struct fs__inode *fs__it_ref(struct fs__itable *tab, const char *path, enum fs__kind kind,
			     int64_t czxid);

/* The kernel forgot N lookups of INO. When none are left the inode leaves the table (never the
 * root) and is freed, or, while open handles still count in its pc_open or fence (the kernel may
 * FORGET an inode as soon as the RELEASE of its last file is answered, before the thread that
 * answered freed the handle), by the fs__it_unpinned that brings both to zero. */
void fs__it_forget(struct fs__itable *tab, uint64_t ino, uint64_t n);

/* IN's pc_open or fence was just lowered (tab->lock held): frees IN if it was forgotten and
 * nothing counts in either any more. IN must not be used after. */
void fs__it_unpinned(struct fs__itable *tab, struct fs__inode *in);

/* Detach the inodes of PATH and PATH/.data (the node was deleted). */
void fs__it_unlink(struct fs__itable *tab, const char *path);

/*
 * A rename of FROM to TO committed and the kernel moved FROM's dentry: detach TO (and TO/.data),
 * then attach FROM's inodes under TO, standing for node CZXID. 0 or -ENOMEM (then FROM's inodes
 * are detached instead).
 */
int fs__it_move(struct fs__itable *tab, const char *from, const char *to, int64_t czxid);

/* Join a parent path and a name into OUT (cap bytes). 0 or -ENAMETOOLONG. No lock needed. */
int fs__path_join(char *out, size_t cap, const char *parent, const char *name);

#endif
