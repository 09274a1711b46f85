#define FUSE_USE_VERSION 312

#include "fs/fs.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <dirent.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>
#include <fuse3/fuse_lowlevel.h>
#include <linux/fuse.h>

#include "fs/itable.h"
#include "fs/log.h"
#include "fs/parse.h"
#include "fs/queue.h"

#define FS__PATH_CAP   (ZT_PATH_MAX + 8)
#define FS__DATA_NAME  ".data"
#define FS__CTL_NAME   ".zk"
#define FS__STATUS_CAP 4096
/* The size .zk/multi reports (see fs__attr): 1 TiB, never reached by one descriptor. */
#define FS__MULTI_SIZE ((off_t)1 << 40)
#define FS__SYNC_NAME  "sync" /* .zk/sync: opening it waits for rp_sync (ZooKeeper's sync) */
#define FS__ESEQ_N     64 /* slots of fs->eseq */

/*
 * Creation modes: .zk/MODE mirrors the directory nodes of the tree; a file created (or, for
 * sequential, a directory made) in .zk/MODE/DIR creates the node DIR/NAME with these flags. Only
 * directory nodes are looked up there (any other name is missing), so every open(O_CREAT) of
 * such a name creates a new node; the created node's own inode is what the kernel gets back (an
 * alias of MOUNT/DIR/NAME-with-suffix): writes on that descriptor set its data, user.zk.path
 * names it.
 */
enum fs__mode {
	FS__M_NONE = 0,
	FS__M_SEQ = 1,
	FS__M_EPH = 2,
	FS__M_EPHSEQ = 3,
	FS__M_WATCH = 4,  /* .zk/watch: one-shot watches of a node, as blocking reads */
	FS__M_WATCHC = 5, /* .zk/watch-children: of its child list */
};

#ifdef QFS_TEST_HOOKS
/* Whether the deliberate bug NAME is switched on for the fault campaign (tests/faults):
 * QFS_TEST_BUG=NAME, test builds only. */
static int fs__test_bug(const char *name)
{
	const char *b = getenv("QFS_TEST_BUG");

	return b && strcmp(b, name) == 0;
}
#endif

static const struct {
	const char *name;
	enum fs__mode mode;
	uint32_t flags; /* ZT_CREATE_* */
	int watch;	/* 0: a creation mode; 1: data watches; 2: child watches */
} fs__modes[] = {
    {"sequential", FS__M_SEQ, ZT_CREATE_SEQUENTIAL, 0},
    {"ephemeral", FS__M_EPH, ZT_CREATE_EPHEMERAL, 0},
    {"ephemeral-sequential", FS__M_EPHSEQ, ZT_CREATE_EPHEMERAL | ZT_CREATE_SEQUENTIAL, 0},
    {"watch", FS__M_WATCH, 0, 1},
    {"watch-children", FS__M_WATCHC, 0, 2},
};
#define FS__NMODES (sizeof(fs__modes) / sizeof(fs__modes[0]))

/* The mode named NAME (a name in .zk), or -1. */
static int fs__mode_index(const char *name, size_t len)
{
	for (size_t i = 0; i < FS__NMODES; i++) {
		if (strlen(fs__modes[i].name) == len && memcmp(fs__modes[i].name, name, len) == 0)
			return (int)i;
	}
	return -1;
}

/* The name of the mode whose flags are FLAGS. */
static const char *fs__mode_name(uint32_t flags)
{
	for (size_t i = 0; i < FS__NMODES; i++) {
		if (fs__modes[i].flags == flags)
			return fs__modes[i].name;
	}
	return "?";
}

/* Split a mirror path "/.zk/MODE[/NODE]" into its mode index and the znode path (cap bytes).
 * 0 or -ENOENT. */
static int fs__mirror_parse(const char *path, int *mode, char *node, size_t cap)
{
	const char *m = path + strlen("/" FS__CTL_NAME "/"), *rest;

	if (strncmp(path, "/" FS__CTL_NAME "/", strlen("/" FS__CTL_NAME "/")) != 0)
		return -ENOENT;
	rest = strchr(m, '/');
	*mode = fs__mode_index(m, rest ? (size_t)(rest - m) : strlen(m));
	if (*mode < 0)
		return -ENOENT;
	snprintf(node, cap, "%s", rest ? rest : "/");
	return 0;
}

struct fs {
	struct fs_config cfg;		   /* immutable */
	struct rp *rp;			   /* immutable after fs_attach */
	struct st_env *env;		   /* immutable after fs_attach */
	_Atomic(struct fuse_session *) se; /* written once, before the session loop */
	atomic_int attached;		   /* fs_attach done: on_change may use the table */
	struct timespec started;	   /* immutable: times of the control files */
	struct fs__itable it;		   /* has its own lock */
	struct fs__queue qinode;	   /* inode invalidations (may wait for a page lock) */
	struct fs__queue qentry;	   /* entry invalidations (take directory locks) */
	int qstarted;			   /* set by fs_new, cleared by fs_stop (no FUSE thread
					      runs then) */
	atomic_int mnt_id;		   /* our mount's id in mountinfo, -1 until known */
	int stuck; /* fs_stop could not join a thread (only the daemon's exit path reads it) */
	pthread_mutex_t hlock;
	struct fs__hlink *handles; /* protected by hlock: every open handle (see fs__hlink) */
	pthread_mutex_t xlock;
	struct fs__expect *expects;    /* protected by xlock: pending conditional versions */
	size_t nexpects;	       /* protected by xlock */
	atomic_int has_expects;	       /* expects != NULL, read without the lock (fast path) */
	uint32_t node_id;	       /* immutable after fs_attach: the replica's id (1..255) */
	_Atomic uint32_t next_session; /* the last session counter of the open epoch */
	pthread_mutex_t slock;	       /* the node session (see fs__sess_main) */
	pthread_cond_t scond;	       /* signalled when sbase or sstop changes */
	int64_t sbase;		       /* protected by slock: ZT_SESSION_ID(node, open epoch, 0),
					  0 while no epoch is open */
	int sopening;		       /* protected by slock: an OPEN is in flight */
	int swant;		       /* protected by slock: keep an epoch open (from the first
					  ephemeral create of this run on) */
	int sstop;		       /* protected by slock: fs_detach */
	uint64_t sexpired;	       /* protected by slock: epochs this node lost to expiry */
	struct fs__sretry *sretry;     /* protected by slock: session closes to submit again */
	size_t nsretry;		       /* protected by slock */
	pthread_t sthread;	       /* the session thread, started by fs_attach */
	int sstarted;		       /* immutable after fs_attach */
	pthread_mutex_t wlock;	       /* the watch registry and every watch's state */
	struct fs__watch **watches;    /* protected by wlock: FS__WATCH_BUCKETS lists by path */
	pthread_cond_t pc_cond;	       /* with it.lock: some inode's pc_open fell to 0 */
	pthread_rwlock_t pc_rw; /* attribute replies (lookup, getattr, readdirplus) are computed
				   and sent under it shared, and page-cache grants that keep what
				   the kernel holds are decided under it shared; a grant that
				   drops the kernel's attributes (and pages) takes it exclusive
				   (see fs__pc_grant) */
	_Atomic uint64_t n_pc;	       /* read-only opens through the page cache */
	_Atomic uint64_t n_direct;     /* read-only opens past it */
	_Atomic uint64_t n_fence_timeouts; /* writers that stopped waiting for readers (and gave
					      the node a new inode: fs__fence_in) */
	_Atomic uint64_t n_kept; /* changes applied while page-cache readers of the node were
				    open: the name got a new inode (fs__inval_inode_run) */
	_Atomic uint64_t n_wflight;  /* commits of descriptors' contents (write, ftruncate, the
					close after O_TRUNC) and .zk/multi transactions submitted
					and not yet answered */
	int64_t pc_hold[FS__ESEQ_N]; /* protected by it.lock: by a hash of the path, no page-cache
					grant until this time (monotonic ms; see fs__fence_in) */
	/* Changes that invalidate names the kernel may cache, counted when reported (after their
	 * commit, before their invalidations are queued), by a hash of the node's path (its
	 * deletion; a change of its children, which can make it a directory or a file again),
	 * and all at once (a snapshot install): see fs__entry_fresh. */
	_Atomic uint64_t eseq[FS__ESEQ_N];
	_Atomic uint64_t shown[FS__ESEQ_N]; /* the last zxid reported of a path of the slot */
	_Atomic uint64_t eseq_all;
};

/*
 * A conditional version set with setxattr user.zk.expect_version: the next write(2) or unlink of
 * the node at PATH by the same process (thread group) carries it. FUSE does not say through which
 * descriptor a setxattr came (fsetxattr arrives as a setxattr of the inode), so the expectation
 * belongs to the process and the node: two processes never consume each other's, and a process
 * that writes one node from two threads at once must serialise its fsetxattr+write pairs.
 */
struct fs__expect {
	struct fs__expect *next; /* protected by fs->xlock */
	pid_t tgid;
	int32_t version;
	int retry; /* re-armed for the VFS's one retry of an unlink that failed with ESTALE */
	char path[];
};

/* Every open handle (file or directory) is on fs->handles, so that the ones the kernel never
 * released (unmounted while open) are freed at the end. */
struct fs__hlink {
	struct fs__hlink *prev; /* protected by fs->hlock */
	struct fs__hlink *next; /* protected by fs->hlock */
	struct fs *fs;		/* immutable */
	int is_dir;		/* immutable: a struct fs__dir, else a struct fs__fh */
};

static void fs__hlink_add(struct fs *fs, struct fs__hlink *l, int is_dir)
{
	l->fs = fs;
	l->is_dir = is_dir;
	l->prev = NULL;
	pthread_mutex_lock(&fs->hlock);
	l->next = fs->handles;
	if (fs->handles)
		fs->handles->prev = l;
	fs->handles = l;
	pthread_mutex_unlock(&fs->hlock);
}

static void fs__hlink_del(struct fs__hlink *l)
{
	struct fs *fs = l->fs;

	pthread_mutex_lock(&fs->hlock);
	if (l->prev)
		l->prev->next = l->next;
	else
		fs->handles = l->next;
	if (l->next)
		l->next->prev = l->prev;
	pthread_mutex_unlock(&fs->hlock);
}

/* ------------------------------------------------------------------ helpers */

/* What a request learns about its inode: a copy of its path taken under the table lock. */
struct fs__pin {
	struct fs__inode *in; /* alive while the kernel holds a lookup of it (any request on it) */
	enum fs__kind kind;
	int64_t czxid;
	int mode;		 /* FS__K_MIRROR: index in fs__modes */
	char path[FS__PATH_CAP]; /* the inode's mount path */
	char node[FS__PATH_CAP]; /* the znode it reads and writes (differs for .data) */
};

static struct fs *fs__of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* memcpy that accepts a NULL source when there is nothing to copy. */
static void fs__copy(void *dst, const void *src, size_t n)
{
	if (n > 0)
		memcpy(dst, src, n);
}

static int fs__is_root(const char *path)
{
	return path[0] == '/' && path[1] == '\0';
}

/* Copy what INO stands for. -ENOENT: unknown id, or its node was deleted or replaced. */
static int fs__pin(struct fs *fs, fuse_ino_t ino, struct fs__pin *p)
{
	struct fs__inode *in;
	int rv = 0;

	pthread_mutex_lock(&fs->it.lock);
	in = fs__it_get(&fs->it, ino);
	if (!in || !in->path) {
		rv = -ENOENT;
	} else {
		p->in = in;
		p->kind = in->kind;
		p->czxid = in->czxid;
		snprintf(p->path, sizeof(p->path), "%s", in->path);
	}
	pthread_mutex_unlock(&fs->it.lock);
	if (rv != 0)
		return rv;
	/* a node of the tree (not the root, not .zk/): wait until a restarted node caught up */
	if (ino != FUSE_ROOT_ID && p->kind <= FS__K_DATA)
		rp_read_barrier(fs->rp);
	snprintf(p->node, sizeof(p->node), "%s", p->path);
	if (p->kind == FS__K_MIRROR)
		return fs__mirror_parse(p->path, &p->mode, p->node, sizeof(p->node));
	if (p->kind == FS__K_WATCH) {
		/* .zk/watch/PATH, or .zk/watch/DIR/.data for a directory node */
		size_t n, dl = strlen("/" FS__DATA_NAME);
		int prv = fs__mirror_parse(p->path, &p->mode, p->node, sizeof(p->node));

		n = strlen(p->node);
		if (prv == 0 && n >= dl && strcmp(p->node + n - dl, "/" FS__DATA_NAME) == 0)
			p->node[n > dl ? n - dl : 1] = '\0';
		return prv;
	}
	if (p->kind == FS__K_DATA) {
		size_t n = strlen(p->node) - strlen("/" FS__DATA_NAME);

		p->node[n > 0 ? n : 1] = '\0';
	}
	return 0;
}

static int fs__is_node(enum fs__kind k)
{
	return k == FS__K_FILE || k == FS__K_DIR || k == FS__K_DATA;
}

static enum fs__kind fs__node_kind(const char *path, const struct zt_node *n)
{
	if (fs__is_root(path) || (n->flags & ZT_NODE_DIR) || n->stat.num_children > 0)
		return FS__K_DIR;
	return FS__K_FILE;
}

static size_t fs__eseq_slot(const char *path);

/*
 * Every read of the tree: a snapshot of it that holds every change reported so far (fs_on_change)
 * to the node PATH (its data, its children, its creation or deletion), or with PATH NULL every
 * change the replica reported. The replica reports changes, and answers writes, before their
 * commit is visible (rp_read_wait): a read waits for that commit only when it concerns a node one
 * of them changed. fs->shown is per path hash, like fs->eseq.
 */
#define FS__NOWAIT ((const char *)1) /* fs__rbegin: read what is visible now, wait for nothing */

static int fs__rbegin(struct fs *fs, const char *path, struct st_rtxn **r)
{
	uint64_t zx;

	if (path == FS__NOWAIT)
		return st_rbegin(fs->env, r);
	zx = path ? atomic_load(&fs->shown[fs__eseq_slot(path)]) : 0;
	if (!path || zx)
		rp_read_wait(fs->rp, zx);
	return st_rbegin(fs->env, r);
}

/*
 * Read the node P stands for into N inside a new snapshot *R (caller ends it with st_rend on 0).
 * -ENOENT when the node is gone or is another node now (deleted and re-created), or its kind
 * changed (a file node that got children is another inode, a directory).
 */
static int fs__read_at(struct fs *fs, const struct fs__pin *p, struct st_rtxn **r,
		      struct zt_node *n, int wait)
{
	int rv = fs__rbegin(fs, wait ? p->node : FS__NOWAIT, r);

	if (rv != 0)
		return rv;
	rv = zt_get(*r, p->node, n);
	if (rv == 0 && !fs__is_root(p->node)) {
		if (n->stat.czxid != p->czxid)
			rv = -ENOENT;
		else if (p->kind != FS__K_DATA &&
			 fs__node_kind(p->node, n) !=
			     (p->kind == FS__K_MIRROR ? FS__K_DIR : p->kind))
			rv = -ENOENT;
	}
	if (rv != 0)
		st_rend(*r);
	return rv;
}

static int fs__read(struct fs *fs, const struct fs__pin *p, struct st_rtxn **r, struct zt_node *n)
{
	return fs__read_at(fs, p, r, n, 1);
}

static struct timespec fs__ms(int64_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};

	return ts;
}

static void fs__attr(const struct fs *fs, uint64_t ino, enum fs__kind kind,
		     const struct zt_stat *zs, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = fs->cfg.uid;
	st->st_gid = fs->cfg.gid;
	st->st_blksize = 4096;
	st->st_nlink = 1; /* directories too: find(1) must not count subdirectories from it */
	switch (kind) {
	case FS__K_DIR:
	case FS__K_MIRROR:
		st->st_mode = S_IFDIR | 0755;
		break;
	case FS__K_CTL:
		st->st_mode = S_IFDIR | 0555;
		break;
	case FS__K_STATUS:
	case FS__K_WATCH:
		st->st_mode = S_IFREG | 0444;
		break;
	case FS__K_MULTI:
		st->st_mode = S_IFREG | 0666;
		/* Not a content: the kernel lets writes of one file run side by side only when they
		 * stay within its size (fs__reply_open_writable), and a descriptor's position grows
		 * by every request and result. */
		st->st_size = FS__MULTI_SIZE;
		break;
	default:
		st->st_mode = S_IFREG | 0644;
		break;
	}
	if (zs) {
		st->st_size = zs->data_length;
		st->st_blocks = (zs->data_length + 511) / 512;
		st->st_mtim = fs__ms(zs->mtime);
		st->st_ctim = st->st_mtim;
		st->st_atim = st->st_mtim;
	} else {
		st->st_mtim = st->st_ctim = st->st_atim = fs->started;
	}
}

static int fs__pc_fix(struct fs *fs, uint64_t ino, enum fs__kind kind, const struct zt_stat *zs,
		      struct stat *st);

static void fs__entry(struct fs *fs, const struct fs__inode *in, enum fs__kind kind,
		      const struct zt_stat *zs, struct fuse_entry_param *e)
{
	/* Names under a creation mode are never cached: each open(O_CREAT) must create. */
	double t = kind == FS__K_STATUS || kind == FS__K_MIRROR || kind == FS__K_WATCH ||
			   kind == FS__K_MULTI
		       ? 0.0
		       : fs->cfg.cache_timeout;

	memset(e, 0, sizeof(*e));
	e->ino = in->ino;
	e->generation = in->generation;
	fs__attr(fs, in->ino, kind, zs, &e->attr);
	e->attr_timeout = fs__pc_fix(fs, in->ino, kind, zs, &e->attr) ? 0.0 : t;
	e->entry_timeout = t;
}

static size_t fs__eseq_slot(const char *path)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (; *path; path++)
		h = (h ^ (unsigned char)*path) * 1099511628211ULL;
	return (size_t)(h % FS__ESEQ_N);
}

/* The count of reported changes that can make the kernel's entry for the node PATH stale. */
static uint64_t fs__eseq(struct fs *fs, const char *path)
{
	return atomic_load(&fs->eseq_all) + atomic_load(&fs->eseq[fs__eseq_slot(path)]);
}

static void fs__eseq_bump(struct fs *fs, const char *path)
{
	atomic_fetch_add(path ? &fs->eseq[fs__eseq_slot(path)] : &fs->eseq_all, 1);
}

/*
 * An entry reply E for the node PATH, computed from a tree read made after SEQ0 = fs__eseq(PATH)
 * was taken, with its inode referenced already: the kernel may cache it only if no change that
 * can make it stale was reported since. Otherwise the deletion of that very node may have been
 * applied after the read and its invalidation sent (or skipped: the inode was not known yet)
 * before the kernel got this reply, which would then leave the name of a deleted node in the
 * dentry cache for cache_timeout, past any sync. A change reported after this test is safe:
 * its invalidation finds the inode referenced, and the kernel runs it only after this reply (it
 * takes the directory's lock, which the request that gets this reply holds until it is handled).
 */
static void fs__entry_fresh(struct fs *fs, const char *path, uint64_t seq0,
			    struct fuse_entry_param *e)
{
	if (fs__eseq(fs, path) != seq0) {
		e->entry_timeout = 0.0;
		e->attr_timeout = 0.0;
	}
}

/*
 * While page-cache read handles of inode INO are open (all of one version, fs__pc_grant), every
 * attribute reply for it carries that version's size and times, so that the size the kernel
 * caches never cuts or pads what those handles read. ST (built from ZS, the current version) is
 * changed when the versions differ; returns 1 then (cache it for no time: it is not current).
 */
static int fs__pc_fix(struct fs *fs, uint64_t ino, enum fs__kind kind, const struct zt_stat *zs,
		      struct stat *st)
{
	struct fs__inode *in;
	int fixed = 0;

	if (!zs || (kind != FS__K_FILE && kind != FS__K_DATA))
		return 0;
	pthread_mutex_lock(&fs->it.lock);
	in = fs__it_get(&fs->it, ino);
	if (in && in->pc_open > 0 && in->pc_mzxid != zs->mzxid) {
		st->st_size = (off_t)in->pc_size;
		st->st_blocks = (in->pc_size + 511) / 512;
		st->st_mtim = fs__ms(in->pc_mtime);
		st->st_ctim = st->st_mtim;
		st->st_atim = st->st_mtim;
		fixed = 1;
	} else if (in && in->pc_mzxid != zs->mzxid) {
		/* The kernel's attributes will not be those of its pages: the next grant of
		 * version pc_mzxid must drop them (fs__pc_grant). */
		in->pc_attr_other = 1;
	}
	pthread_mutex_unlock(&fs->it.lock);
	return fixed;
}

/* Outcome of a committed (or failed) transaction as an errno for the kernel (negative). */
static int fs__outcome(int status, const struct zt_result *res, uint32_t nres)
{
	if (status == -ESHUTDOWN)
		return -EIO;
	if (status != 0)
		return status;
	for (uint32_t i = 0; i < nres; i++) {
		if (res[i].err != 0 && res[i].err != -ECANCELED)
			return res[i].err;
	}
	return 0;
}

/* The replica's status lines and this node's session: session_epoch= (0: none open),
 * session_timeout_ms= (negotiated), sessions_expired= (epochs lost to expiry). Like snprintf. */
static int fs__status_fill(struct fs *fs, char *buf, size_t cap)
{
	int n, m;
	int64_t base;
	uint64_t expired;
	size_t inodes, named;

	rp_read_wait(fs->rp, 0); /* applied= covers every write answered here */
	n = rp_status(fs->rp, buf, cap);

	if (n < 0)
		return n;
	pthread_mutex_lock(&fs->slock);
	base = fs->sbase;
	expired = fs->sexpired;
	pthread_mutex_unlock(&fs->slock);
	pthread_mutex_lock(&fs->it.lock);
	inodes = fs->it.n;
	named = fs->it.npath;
	pthread_mutex_unlock(&fs->it.lock);
	m = snprintf(
	    (size_t)n < cap ? buf + n : NULL, (size_t)n < cap ? cap - (size_t)n : 0,
	    "session_epoch=%" PRIu64 "\nsession_timeout_ms=%u\nsessions_expired=%" PRIu64 "\n"
	    /* how read-only opens of nodes were served (see fs__pc_grant) */
	    "opens_cached=%" PRIu64 "\nopens_direct=%" PRIu64 "\nwriter_fence_timeouts=%" PRIu64
	    "\nreaders_kept_inode=%" PRIu64 "\n"
	    /* inodes the kernel holds; those no longer named (isolated, or deleted but open) */
	    "inodes=%zu\ninodes_unnamed=%zu\n"
	    /* writes waiting for their commit (ZooKeeper's outstanding requests) */
	    "writes_in_flight=%" PRIu64 "\n",
	    base ? (uint64_t)ZT_SESSION_EPOCH(base) : 0, fs->cfg.session_timeout_ms, expired,
	    atomic_load(&fs->n_pc), atomic_load(&fs->n_direct), atomic_load(&fs->n_fence_timeouts),
	    atomic_load(&fs->n_kept), inodes, inodes - named, atomic_load(&fs->n_wflight));
	return m < 0 ? m : n + m;
}

static int fs__status_text(struct fs *fs, char **out, size_t *len)
{
	char *buf = malloc(FS__STATUS_CAP);
	int n;

	if (!buf)
		return -ENOMEM;
	n = fs__status_fill(fs, buf, FS__STATUS_CAP);
	if (n < 0) {
		free(buf);
		return n;
	}
	*out = buf;
	*len = (size_t)n < FS__STATUS_CAP ? (size_t)n : FS__STATUS_CAP - 1;
	return 0;
}

/* The name is reserved in the directory at PARENT (.data everywhere, .zk at the root). */
static int fs__reserved(const char *parent, const char *name)
{
	return strcmp(name, FS__DATA_NAME) == 0 ||
	       (fs__is_root(parent) && strcmp(name, FS__CTL_NAME) == 0);
}

/*
 * PARENT must be a directory node for creating NAME in it; build and validate the new path.
 * cflags: NULL refuses a creation mode's directory (EPERM); else it gets the mode's ZT_CREATE_*
 * flags (0 for a plain directory), and OUT is then the node path without a sequence suffix.
 */
static int fs__child_path(struct fs *fs, fuse_ino_t parent, const char *name, char *out,
			  uint32_t *cflags)
{
	struct fs__pin p;
	char probe[FS__PATH_CAP + 16];
	uint32_t flags = 0;
	int rv = fs__pin(fs, parent, &p);

	if (rv != 0)
		return rv;
	if (p.kind == FS__K_CTL || (p.kind == FS__K_MIRROR && (!cflags || fs__modes[p.mode].watch)))
		return -EPERM;
	if (p.kind != FS__K_DIR && p.kind != FS__K_MIRROR)
		return -ENOTDIR;
	if (p.kind == FS__K_MIRROR)
		flags = fs__modes[p.mode].flags;
	if (fs__reserved(p.node, name))
		return -EINVAL;
	rv = fs__path_join(out, FS__PATH_CAP, p.node, name);
	if (rv != 0)
		return rv;
	if (cflags)
		*cflags = flags;
	/* A sequential name gets 10 digits appended: it must be valid with them. */
	snprintf(probe, sizeof(probe), "%s%s", out,
		 (flags & ZT_CREATE_SEQUENTIAL) ? "0000000000" : "");
	if (strlen(probe) >= ZT_PATH_MAX)
		return -ENAMETOOLONG;
	if (strlen(name) + strlen(probe) - strlen(out) > ZT_NAME_MAX)
		return -ENAMETOOLONG;
	return zt_path_validate(probe) != 0 ? -EINVAL : 0;
}

/* Thread group of the process that issued a request (the pid FUSE reports is a thread's id). */
static pid_t fs__tgid(pid_t pid)
{
	char path[64], line[256];
	pid_t tgid = pid;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return pid;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "Tgid:", 5) == 0) {
			tgid = (pid_t)strtol(line + 5, NULL, 10);
			break;
		}
	}
	fclose(f);
	return tgid;
}

/* The id of our mount in /proc/self/mountinfo (-1: unknown). */
static int fs__mnt_id(struct fs *fs)
{
	int id = atomic_load(&fs->mnt_id);
	char line[8192], mp[4096];
	FILE *f;

	if (id >= 0 || !fs->cfg.mountpoint)
		return id;
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		int mid;

		if (sscanf(line, "%d %*d %*s %*s %4095s", &mid, mp) == 2 &&
		    strcmp(mp, fs->cfg.mountpoint) == 0)
			id = mid; /* the last one listed is the one on top */
	}
	fclose(f);
	atomic_store(&fs->mnt_id, id);
	return id;
}

/*
 * Does process TGID still have a descriptor open on our inode INO? Read from /proc (fdinfo gives
 * the mount and inode of each descriptor without touching the file system). A close of one of
 * several descriptors (bash: open, dup2 to 1, close the original) is not the opener's last close.
 */
static int fs__still_open(struct fs *fs, pid_t tgid, uint64_t ino)
{
	char dpath[64], fpath[384], line[256];
	int mnt = fs__mnt_id(fs), found = 0;
	struct dirent *de;
	DIR *d;

	snprintf(dpath, sizeof(dpath), "/proc/%d/fdinfo", (int)tgid);
	d = opendir(dpath);
	if (!d)
		return 0;
	while (!found && (de = readdir(d)) != NULL) {
		long long fmnt = -1;
		unsigned long long fino = 0;
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(fpath, sizeof(fpath), "%s/%s", dpath, de->d_name);
		f = fopen(fpath, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			if (strncmp(line, "mnt_id:", 7) == 0)
				fmnt = strtoll(line + 7, NULL, 10);
			else if (strncmp(line, "ino:", 4) == 0)
				fino = strtoull(line + 4, NULL, 10);
		}
		fclose(f);
		found = fino == ino && (mnt < 0 || fmnt == mnt);
	}
	closedir(d);
	return found;
}

/* ------------------------------------------------------------------ conditional versions */

#define FS__EXPECT_MAX 4096 /* pending expectations at most (those of exited processes pruned) */

/* Drop the expectations of processes that have exited. fs->xlock held. */
static void fs__expect_prune(struct fs *fs)
{
	struct fs__expect **pp = &fs->expects;

	while (*pp) {
		struct fs__expect *x = *pp;
		char proc[64];

		snprintf(proc, sizeof(proc), "/proc/%d", (int)x->tgid);
		if (access(proc, F_OK) != 0) {
			*pp = x->next;
			free(x);
			fs->nexpects--;
		} else {
			pp = &x->next;
		}
	}
}

/* Unlink and return the expectation of TGID on PATH, or NULL. fs->xlock held. */
static struct fs__expect *fs__expect_unlink(struct fs *fs, const char *path, pid_t tgid)
{
	for (struct fs__expect **pp = &fs->expects; *pp; pp = &(*pp)->next) {
		struct fs__expect *x = *pp;

		if (x->tgid == tgid && strcmp(x->path, path) == 0) {
			*pp = x->next;
			fs->nexpects--;
			return x;
		}
	}
	return NULL;
}

/* Set (VERSION >= 0) or clear (VERSION -1) what TGID expects of the node at PATH; RETRY marks
 * an expectation re-armed after a mismatch (see fs__n_done). 0, -ENOMEM, -ENOSPC (too many). */
static int fs__expect_set(struct fs *fs, const char *path, pid_t tgid, int32_t version, int retry)
{
	size_t len = strlen(path);
	struct fs__expect *x = NULL;
	int rv = 0;

	if (version >= 0) {
		x = malloc(sizeof(*x) + len + 1);
		if (!x)
			return -ENOMEM;
		x->tgid = tgid;
		x->version = version;
		x->retry = retry;
		memcpy(x->path, path, len + 1);
	}
	pthread_mutex_lock(&fs->xlock);
	free(fs__expect_unlink(fs, path, tgid));
	if (x && fs->nexpects >= FS__EXPECT_MAX)
		fs__expect_prune(fs);
	if (x && fs->nexpects >= FS__EXPECT_MAX) {
		free(x);
		rv = -ENOSPC;
	} else if (x) {
		x->next = fs->expects;
		fs->expects = x;
		fs->nexpects++;
	}
	atomic_store(&fs->has_expects, fs->expects != NULL);
	pthread_mutex_unlock(&fs->xlock);
	return rv;
}

/* The version the process of REQ expects of the node at PATH, consumed; -1 when none.
 * tgid (may be NULL): the process; retry (may be NULL): whether it was re-armed. */
static int32_t fs__expect_take(struct fs *fs, fuse_req_t req, const char *path, pid_t *tgidp,
			       int *retry)
{
	struct fs__expect *x;
	int32_t version = -1;
	pid_t tgid;

	if (!atomic_load(&fs->has_expects))
		return -1;
	tgid = fs__tgid(fuse_req_ctx(req)->pid);
	if (tgidp)
		*tgidp = tgid;
	pthread_mutex_lock(&fs->xlock);
	x = fs__expect_unlink(fs, path, tgid);
	atomic_store(&fs->has_expects, fs->expects != NULL);
	pthread_mutex_unlock(&fs->xlock);
	if (x) {
		version = x->version;
		if (retry)
			*retry = x->retry;
		free(x);
	}
	return version;
}

/* ------------------------------------------------------------------ sessions */

/*
 * A session is an open file that created an ephemeral node (Chubby's rule): closing it for the last
 * time closes the session, which deletes its node through the replica (ZT_DELETE_SESSION), so every
 * replica deletes it at the same point of the log.
 *
 * Liveness is per node (ZooKeeper's session timeout, decided by the cluster): the daemon holds one
 * node session (zt.h, ZT_OP_SESSION) whose epoch names every session it creates:
 * ZT_SESSION_ID(node id, epoch, counter). The session thread (fs__sess_main) OPENs an epoch with
 * the negotiated timeout at the first ephemeral create of this run (or at start when ephemerals
 * of the previous incarnation exist: the OPEN deletes them, in the log; a run that creates none
 * commits nothing), and again right after an expiry. The leader EXPIREs the epoch when it has not
 * heard from this node for longer than the timeout (consensus/io_sess.c); the thread sees it in the
 * applied tree (also after a snapshot install), marks the open files of that epoch expired (their
 * writes fail with EKEYEXPIRED, their close deletes nothing more: the log did) and opens a new
 * epoch. An ephemeral create waits up to FS__SESSION_WAIT_MS for an open epoch (else ETIMEDOUT);
 * one ordered after the expiry of its epoch fails in the log with EKEYEXPIRED (ZT_ESESSIONEXPIRED).
 */
/* Closing a session: owned by the handler, then by the replica's callback. */
struct fs__sctx {
	struct fs *fs;
	fuse_req_t req; /* the RELEASE to answer once committed, or NULL */
	int64_t session;
	pthread_mutex_t *lock; /* fs_attach waits for its sweeps: a counter under this lock */
	pthread_cond_t *cond;
	int *pending;
};

/*
 * A session close whose outcome is unknown (timed out, the replica restarted from its storage) or
 * that could not be submitted is submitted again by the session thread (fs__sess_main), as long
 * as the session's epoch is open: if it was not applied, the session's ephemeral nodes would stay
 * while no open file owns them (until the whole epoch expires, which a live node never lets
 * happen). Closing a closed session deletes nothing, so a close applied twice is harmless. The
 * list is bounded by FS__SRETRY_MAX; past it a close is dropped with an error in the log.
 */
struct fs__sretry {
	struct fs__sretry *next;
	int64_t session;
};

#define FS__SRETRY_MAX 65536

static void fs__session_retry(struct fs *fs, int64_t session)
{
	struct fs__sretry *r = malloc(sizeof(*r));

	pthread_mutex_lock(&fs->slock);
	if (!r || fs->nsretry >= FS__SRETRY_MAX || fs->sstop) {
		if (!fs->sstop)
			fs_error("session 0x%" PRIx64 " not closed: too many closes to retry "
				 "(its nodes stay until this node's epoch ends)",
				 (uint64_t)session);
		pthread_mutex_unlock(&fs->slock);
		free(r);
		return;
	}
	r->session = session;
	r->next = fs->sretry;
	fs->sretry = r;
	fs->nsretry++;
	pthread_mutex_unlock(&fs->slock);
}

static void fs__session_done(void *arg, int status, uint64_t zxid, const struct zt_result *res,
			     uint32_t nres)
{
	struct fs__sctx *sc = arg;
	int err = fs__outcome(status, res, nres);

	if (err != 0)
		fs_warn("closing session 0x%" PRIx64 " failed: %s%s", (uint64_t)sc->session,
			strerror(-err),
			status == -ETIMEDOUT || status == -EIO ? " (outcome unknown: will retry)" : "");
	if (status == -ETIMEDOUT || status == -EIO)
		fs__session_retry(sc->fs, sc->session);
	else if (err == 0)
		fs_debug("session 0x%" PRIx64 " closed", (uint64_t)sc->session);
	if (sc->req)
		fuse_reply_err(sc->req, 0); /* the close itself succeeded whatever happened */
	if (sc->lock) {
		pthread_mutex_lock(sc->lock);
		(*sc->pending)--;
		pthread_cond_broadcast(sc->cond);
		pthread_mutex_unlock(sc->lock);
	}
	free(sc);
}

/* Submit the close of SESSION; REQ (may be NULL) is answered once it is committed. 0 or a negative
 * errno (then nothing was submitted and REQ is not answered). */
static int fs__session_close(struct fs *fs, fuse_req_t req, int64_t session, struct fs__sctx *tmpl)
{
	struct zt_op op = {.type = ZT_OP_DELETE,
			   .flags = ZT_DELETE_SESSION,
			   .version = -1,
			   .owner = session,
			   .path = "/"};
	struct fs__sctx *sc = calloc(1, sizeof(*sc));
	int rv;

	if (!sc)
		return -ENOMEM;
	if (tmpl)
		*sc = *tmpl;
	sc->fs = fs;
	sc->req = req;
	sc->session = session;
	rv = rp_submit(fs->rp, &op, 1, fs__session_done, sc);
	if (rv != 0)
		free(sc);
	return rv;
}

/* ------------------------------------------------------------------ invalidations */

/* An invalidation job: owned by the queue that runs it (no lock needed). */
struct fs__inval {
	struct fs__job job;
	struct fs *fs;
	int data;  /* the node's data changed (drop pages), else only its attributes */
	int known; /* an entry job for a name whose inode was isolated: the kernel knows it */
	char path[];
};

static void fs__inval_entry_run(struct fs__job *job);
static void fs__inval_queue(struct fs *fs, const char *path, int data, int entry, int known);

/*
 * What a change of PATH does to IN, its attached inode if any (fs->it.lock held): with no
 * page-cache reader open, IN's ino goes to INOS (to invalidate). With readers open and new
 * data, IN is isolated and PATH goes to ISOLATED (its name to invalidate); with readers open and
 * only new attributes, the invalidation waits for the last reader to close (pc_inval).
 */
static void fs__inval_pick(struct fs *fs, struct fs__inode *in, const char *path, int data,
			   uint64_t *inos, int *n, const char **isolated, int *ni)
{
	if (!in || in->nlookup == 0)
		return;
	if (in->pc_open == 0) {
		inos[(*n)++] = in->ino;
	} else if (data) {
		fs__it_isolate(&fs->it, in);
		isolated[(*ni)++] = path;
	} else {
		in->pc_inval = 1;
	}
}

static void fs__inval_inode_run(struct fs__job *job)
{
	struct fs__inval *iv = (struct fs__inval *)job;
	struct fs *fs = iv->fs;
	struct fuse_session *se = atomic_load(&fs->se);
	char dpath[FS__PATH_CAP];
	const char *isolated[2];
	uint64_t inos[2];
	int n = 0, ni = 0, kind = 0;
	struct fs__inode *in;

	snprintf(dpath, sizeof(dpath), "%s/" FS__DATA_NAME, fs__is_root(iv->path) ? "" : iv->path);
	/*
	 * Page-cache mode: an inode with page-cache readers open is never invalidated while they
	 * are open (new data: it is isolated and its name invalidated instead; new attributes
	 * only: fs__fh_free queues this again when the last closes). Its pages and every
	 * attribute reply are of the readers' version, and an invalidation would only make the
	 * kernel drop the attribute reply a reader is waiting for (it bumps the inode's
	 * attr_version): that reader would then read with whatever size the kernel had before,
	 * maybe another version's. Exclusive, so that no grant of a new version (fs__pc_grant) comes between
	 * the test and the invalidation; no READ can hold a page then (no reader is open).
	 */
	if (fs->cfg.read_cache)
		pthread_rwlock_wrlock(&fs->pc_rw);
	pthread_mutex_lock(&fs->it.lock);
	in = fs__it_find(&fs->it, iv->path);
	if (in && in->nlookup > 0)
		kind = in->kind;
	fs__inval_pick(fs, in, iv->path, iv->data, inos, &n, isolated, &ni);
	fs__inval_pick(fs, fs__it_find(&fs->it, dpath), dpath, iv->data, inos, &n, isolated, &ni);
	pthread_mutex_unlock(&fs->it.lock);
	/* A new version while page-cache readers of it are open: they keep the inode, and their
	 * version through it; the name gets a new inode (the kernel looks it up again), so that
	 * stat, listings and new opens see the new version at once. */
	for (int i = 0; i < ni; i++)
		fs__inval_queue(fs, isolated[i], 0, 1, 1); /* no attached inode has the name now */
	if (ni)
		atomic_fetch_add(&fs->n_kept, (uint64_t)ni);
	for (int i = 0; se && i < n; i++) {
		int rv = fuse_lowlevel_notify_inval_inode(se, inos[i], iv->data ? 0 : -1, 0);

		if (rv != 0 && rv != -ENOENT)
			fs_debug("inval inode %" PRIu64 ": %s", inos[i], strerror(-rv));
	}
	if (fs->cfg.read_cache)
		pthread_rwlock_unlock(&fs->pc_rw);
	if (!iv->data && kind && !fs__is_root(iv->path)) {
		/* Its children changed: a node created as a file that got its first child is a
		 * directory now, and one that lost its last child a file again. The kernel cannot
		 * change an inode's type: another inode, so make it look the name up again. */
		struct st_rtxn *r;
		struct zt_node node;
		int changed = 0;

		if (fs__rbegin(fs, iv->path, &r) == 0) {
			changed = zt_get(r, iv->path, &node) == 0 &&
				  (int)fs__node_kind(iv->path, &node) != kind;
			st_rend(r);
		}
		if (changed) {
			iv->job.run = fs__inval_entry_run;
			fs__queue_push(&fs->qentry, &iv->job);
			return;
		}
	}
	free(iv);
}

static void fs__inval_entry_run(struct fs__job *job)
{
	struct fs__inval *iv = (struct fs__inval *)job;
	struct fs *fs = iv->fs;
	struct fuse_session *se = atomic_load(&fs->se);
	char *slash = strrchr(iv->path, '/');
	const char *name = slash + 1;
	uint64_t pino = 0;
	int known;

	*slash = '\0';
	pthread_mutex_lock(&fs->it.lock);
	{
		struct fs__inode *pin = fs__it_find(&fs->it, slash == iv->path ? "/" : iv->path);

		if (pin && pin->nlookup > 0)
			pino = pin->ino;
	}
	*slash = '/';
	known = iv->known || fs__it_find(&fs->it, iv->path) != NULL;
	pthread_mutex_unlock(&fs->it.lock);
	if (se && pino && known) {
		int rv = fuse_lowlevel_notify_inval_entry(se, pino, name, strlen(name));

		if (rv != 0 && rv != -ENOENT)
			fs_debug("inval entry %s: %s", iv->path, strerror(-rv));
	}
	free(iv);
}

/* Queue the invalidation of PATH's inode(s) (DATA: pages too), or with ENTRY of its name (KNOWN:
 * the kernel knows the name even if no attached inode has it, see fs__inval_pick). */
static void fs__inval_queue(struct fs *fs, const char *path, int data, int entry, int known)
{
	size_t len = strlen(path);
	struct fs__inval *iv = malloc(sizeof(*iv) + len + 1);

	if (!iv) {
		fs_error("out of memory: kernel caches of %s not invalidated", path);
		return;
	}
	iv->fs = fs;
	iv->data = data;
	iv->known = known;
	memcpy(iv->path, path, len + 1);
	if (entry) {
		iv->job.run = fs__inval_entry_run;
		fs__queue_push(&fs->qentry, &iv->job);
	} else {
		iv->job.run = fs__inval_inode_run;
		fs__queue_push(&fs->qinode, &iv->job);
	}
}

static void fs__inval_push(struct fs *fs, const char *path, int data, int entry)
{
	fs__inval_queue(fs, path, data, entry, 0);
}

/*
 * Drop everything the kernel may cache. A change of the root's data is also what the replica
 * reports after installing a snapshot, when any node may have changed, appeared or gone. Runs on
 * qinode: collects the paths of the inodes the kernel knows, then queues the invalidation of each
 * inode (attributes and data) and of each name.
 */
static void fs__inval_all_run(struct fs__job *job)
{
	struct fs__inval *iv = (struct fs__inval *)job;
	struct fs *fs = iv->fs;
	char **paths = NULL;
	size_t n = 0, cap = 0;

	pthread_mutex_lock(&fs->it.lock);
	for (size_t b = 0; b < fs->it.nbuckets; b++) {
		for (struct fs__inode *in = fs->it.by_ino[b]; in; in = in->next_ino) {
			if (!in->path || in->nlookup == 0 || in->kind == FS__K_CTL ||
			    in->kind == FS__K_STATUS)
				continue;
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				char **np = realloc(paths, ncap * sizeof(*np));

				if (!np)
					goto oom;
				paths = np;
				cap = ncap;
			}
			paths[n] = strdup(in->path);
			if (!paths[n])
				goto oom;
			n++;
		}
	}
	pthread_mutex_unlock(&fs->it.lock);
	for (size_t i = 0; i < n; i++) {
		fs__inval_push(fs, paths[i], 1, 0);
		if (!fs__is_root(paths[i]))
			fs__inval_push(fs, paths[i], 0, 1);
		free(paths[i]);
	}
	free(paths);
	free(iv);
	return;
oom:
	pthread_mutex_unlock(&fs->it.lock);
	fs_error("out of memory: the kernel's caches were not invalidated after a tree change");
	while (n > 0)
		free(paths[--n]);
	free(paths);
	free(iv);
}

static void fs__inval_all(struct fs *fs)
{
	struct fs__inval *iv = calloc(1, sizeof(*iv) + 1);

	if (!iv) {
		fs_error("out of memory: kernel caches not invalidated after a tree change");
		return;
	}
	iv->fs = fs;
	iv->job.run = fs__inval_all_run;
	fs__queue_push(&fs->qinode, &iv->job);
}

/*
 * A reply that must follow the kernel-cache invalidations already queued: FN(ARG) runs on qinode
 * once every inode invalidation queued before is done and, with ENTRIES, then on qentry once
 * every entry invalidation queued before that is done too. The replica reports a transaction's
 * changes (fs_on_change, which queues its invalidations) before it moves its applied mark or
 * runs the transaction's callback, so a reply sent through here never lets the kernel serve
 * what the transaction changed from its caches. Only for replies whose request holds no
 * directory lock in the kernel when ENTRIES (an entry invalidation takes the parent's).
 */
struct fs__after {
	struct fs__job job;
	struct fs *fs;
	int entries;
	void (*fn)(void *arg);
	void *arg;
};

static void fs__after_run(struct fs__job *job)
{
	struct fs__after *a = (struct fs__after *)job;

	if (a->entries) {
		a->entries = 0;
		fs__queue_push(&a->fs->qentry, &a->job);
		return;
	}
	a->fn(a->arg);
	free(a);
}

static void fs__after_invals(struct fs *fs, int entries, void (*fn)(void *arg), void *arg)
{
	struct fs__after *a = malloc(sizeof(*a));

	if (!a || !fs->qstarted) {
		free(a);
		fn(arg); /* out of memory, or stopping: the queues run nothing new */
		return;
	}
	a->fs = fs;
	a->entries = entries;
	a->fn = fn;
	a->arg = arg;
	a->job.run = fs__after_run;
	fs__queue_push(&fs->qinode, &a->job);
}

static void fs__watch_change(struct fs *fs, const struct zt_change *ch);

void fs_on_change(void *arg, const struct zt_change *ch)
{
	struct fs *fs = arg;

	if (!atomic_load(&fs->attached))
		return;
	{
		_Atomic uint64_t *sh = &fs->shown[fs__eseq_slot(ch->path)];
		uint64_t old = atomic_load(sh);

		/* the apply thread alone writes it */
		if (ch->zxid > old)
			atomic_store(sh, ch->zxid);
	}
	fs__watch_change(fs, ch);
	switch (ch->type) {
	case ZT_NODE_DATA_CHANGED:
		if (fs__is_root(ch->path)) {
			fs__eseq_bump(fs, NULL);
			fs__inval_all(fs); /* maybe a snapshot install (rp.h) */
		} else {
			fs__inval_push(fs, ch->path, 1, 0);
		}
		break;
	case ZT_NODE_CHILDREN_CHANGED:
		fs__eseq_bump(fs, ch->path); /* it may have become a directory, or a file */
		fs__inval_push(fs, ch->path, 0, 0);
		break;
	case ZT_NODE_DELETED:
		fs__eseq_bump(fs, ch->path);
		/* Lookups never cache a missing name, so a creation needs nothing; a deletion
		 * drops the dentry when the kernel may still hold one (a change made elsewhere;
		 * for our own unlink/rename the kernel already did). */
		if (!fs__is_root(ch->path))
			fs__inval_push(fs, ch->path, 0, 1);
		break;
	case ZT_NODE_CREATED:
		break;
	}
}

/* ------------------------------------------------------------------ open files */

enum fs__fh_type {
	FS__FH_NODE = 1,  /* writable: the descriptor's content, committed on every write */
	FS__FH_SNAP = 2,  /* read-only: one version of the data (or .zk/status), taken at open */
	FS__FH_WATCH = 3, /* a watch file: one event, read once it fired */
	FS__FH_MULTI = 4, /* .zk/multi: each write is a transaction, reads return its results */
};

struct fs__wreq;

struct fs__fh {
	struct fs__hlink link;	 /* first: on fs->handles */
	enum fs__fh_type type;	 /* immutable */
	struct fs__inode *in;	 /* immutable; alive while the file is open */
	int append;		 /* immutable: O_APPEND */
	struct fs__watch *watch; /* immutable: FS__FH_WATCH's watch (owned) */
	size_t rpos; /* protected by lock: FS__FH_MULTI's read position in buf (the descriptor's
		      own offset moved past the request written) */
	_Atomic int64_t session; /* the session owning the ephemeral node this open file
				    created (0: none), or (.zk/multi) the session of its ephemeral
				    creates, made by the first; closed at release */
	atomic_int expired; /* its session's epoch expired: writes fail with EKEYEXPIRED and the
			       release closes nothing */
	pid_t opener;	    /* immutable: thread group that opened it */
	pthread_mutex_t lock;
	char *buf;	   /* protected by lock: the descriptor's content (or the status text) */
	size_t len;	   /* protected by lock */
	int trunc_pending; /* protected by lock: O_TRUNC and no write or truncate came yet */
	int busy;	   /* protected by lock: a commit of this descriptor is in flight */
	int err;	   /* protected by lock: a commit failed in storage; later ones fail too */
	int released;	   /* protected by lock: the kernel released it; last commit frees */
	struct fs__wreq *wait_head; /* protected by lock: writes waiting for the one in flight */
	struct fs__wreq *wait_tail; /* protected by lock */
	atomic_int refs; /* SNAP: the kernel's handle + reads replying from buf (a RELEASE can
			    arrive while the reply that satisfied the read is still returning) */
	struct fs *fs;	 /* immutable */
	int pc;		 /* immutable after open: a SNAP handle read through the page cache,
			    counted in in->pc_open */
	int fenced;	 /* immutable after open: a NODE handle counted in in->fence */
	int64_t mzxid;	 /* immutable after open: pc's version */
	struct stat st;	 /* immutable after open: pc's attributes (of version mzxid) */
};

static struct fs__fh *fs__fh_new(struct fs *fs, enum fs__fh_type type, struct fs__inode *in)
{
	struct fs__fh *fh = calloc(1, sizeof(*fh));

	if (!fh)
		return NULL;
	fs__hlink_add(fs, &fh->link, 0);
	fh->fs = fs;
	fh->type = type;
	fh->in = in;
	atomic_init(&fh->refs, 1);
	pthread_mutex_init(&fh->lock, NULL);
	return fh;
}

static int fs__fence(struct fs *fs, struct fs__fh *fh, int wait);
static int fs__fence_in(struct fs *fs, struct fs__inode *in, int wait);
static void fs__unfence_in(struct fs *fs, struct fs__inode *in);
static void fs__isolate(struct fs *fs, struct fs__inode *in);

static void fs__fh_free(struct fs__fh *fh)
{
	if (fh->pc || fh->fenced) {
		struct fs *fs = fh->fs;
		char path[FS__PATH_CAP];

		path[0] = '\0';
		pthread_mutex_lock(&fs->it.lock);
		if (fh->pc && --fh->in->pc_open == 0) {
			pthread_cond_broadcast(&fs->pc_cond);
			/* the invalidation held back while readers were open (none for an
			 * isolated inode: the path names another inode now) */
			if (fh->in->pc_inval && fh->in->path && !fh->in->isolated)
				snprintf(path, sizeof(path), "%s", fh->in->path);
			fh->in->pc_inval = 0;
		}
		if (fh->fenced)
			fh->in->fence--;
		fs__it_unpinned(&fs->it, fh->in);
		pthread_mutex_unlock(&fs->it.lock);
		if (path[0] && fs->qstarted) /* not after fs_stop (fs_free's leftovers) */
			fs__inval_push(fs, path, 1, 0);
	}
	fs__hlink_del(&fh->link);
	free(fh->watch);
	pthread_mutex_destroy(&fh->lock);
	free(fh->buf);
	free(fh);
}

/* ---- the node session (see "sessions" above) ---- */

#define FS__SESSION_WAIT_MS 10000

/* Add MS milliseconds to the CLOCK_REALTIME time *T (condition variables' clock). */
static void fs__deadline(struct timespec *t, long ms)
{
	clock_gettime(CLOCK_REALTIME, t);
	t->tv_sec += ms / 1000;
	t->tv_nsec += (ms % 1000) * 1000000L;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

/* A new session id of the open epoch into *OUT, waiting for one up to WAIT_MS. 0 or -ETIMEDOUT
 * (no epoch open in time), -ESHUTDOWN (stopping). */
static int fs__session_new(struct fs *fs, long wait_ms, int64_t *out)
{
	struct timespec dl;
	int rv = 0;

	fs__deadline(&dl, wait_ms);
	pthread_mutex_lock(&fs->slock);
	if (!fs->swant) {
		fs->swant = 1;
		pthread_cond_broadcast(&fs->scond); /* wakes the session thread */
	}
	while (fs->sbase == 0 && !fs->sstop && rv == 0)
		rv = pthread_cond_timedwait(&fs->scond, &fs->slock, &dl);
	if (fs->sbase != 0) {
		uint32_t c = atomic_fetch_add(&fs->next_session, 1) + 1;

		*out = fs->sbase | (int64_t)(c ? c : 1);
		rv = 0;
	} else {
		rv = fs->sstop ? -ESHUTDOWN : -ETIMEDOUT;
	}
	pthread_mutex_unlock(&fs->slock);
	if (rv == -ETIMEDOUT)
		fs_warn("no session with the cluster after %ld ms: ephemeral create refused",
			wait_ms);
	return rv;
}

static void fs__sess_open_done(void *arg, int status, uint64_t zxid, const struct zt_result *res,
			       uint32_t nres)
{
	struct fs *fs = arg;
	int err = fs__outcome(status, res, nres);

	(void)zxid;
	pthread_mutex_lock(&fs->slock);
	fs->sopening = 0;
	if (err == 0) {
		atomic_store(&fs->next_session, 0);
		fs->sbase = res[0].stat.ephemeral_owner;
		fs_info("session epoch %" PRIu64 " open (timeout %d ms)",
			(uint64_t)ZT_SESSION_EPOCH(fs->sbase), res[0].stat.version);
	} else if (err != -ESHUTDOWN) {
		fs_warn("opening a session epoch failed: %s (retrying)", strerror(-err));
	}
	pthread_cond_broadcast(&fs->scond);
	pthread_mutex_unlock(&fs->slock);
}

/* Is epoch BASE of this node still the open one in the applied tree? A read error says yes
 * (only the log expires sessions). */
static int fs__sess_alive(struct fs *fs, int64_t base)
{
	struct zt_session z;
	struct st_rtxn *r;
	int rv = fs__rbegin(fs, NULL, &r);

	if (rv != 0)
		return 1;
	rv = zt_session_get(r, fs->node_id, &z);
	st_rend(r);
	if (rv != 0 && rv != -ENOENT)
		return 1;
	return rv == 0 && z.epoch == ZT_SESSION_EPOCH(base) && z.state == ZT_SESSION_OPEN;
}

/* Epoch BASE expired: mark its open files. Called with slock held. */
static void fs__sess_expired(struct fs *fs, int64_t base)
{
	size_t n = 0;

	pthread_mutex_lock(&fs->hlock);
	for (struct fs__hlink *l = fs->handles; l; l = l->next) {
		struct fs__fh *fh = (struct fs__fh *)l;

		int64_t session;

		if (l->is_dir || (fh->type != FS__FH_NODE && fh->type != FS__FH_MULTI))
			continue;
		session = atomic_load(&fh->session);
		if (session == 0 ||
		    ((uint64_t)session & ~ZT_SESSION_COUNTER_MASK) != (uint64_t)base)
			continue;
		atomic_store(&fh->expired, 1);
		n++;
	}
	pthread_mutex_unlock(&fs->hlock);
	fs->sexpired++;
	fs_warn("session epoch %" PRIu64
		" of this node expired (cut off from the cluster for longer "
		"than its timeout): its ephemeral nodes were deleted, %zu open file(s) now fail "
		"with EKEYEXPIRED; opening a new epoch",
		(uint64_t)ZT_SESSION_EPOCH(base), n);
}

/* Submit again the session closes of unknown outcome (see fs__session_retry) whose epoch is still
 * open; one that fails again comes back through its callback. Called with slock held, which it
 * releases while it submits. */
static void fs__sess_retry_run(struct fs *fs)
{
	struct fs__sretry *list = fs->sretry;

	fs->sretry = NULL;
	fs->nsretry = 0;
	pthread_mutex_unlock(&fs->slock);
	while (list) {
		struct fs__sretry *r = list;
		int64_t base = (int64_t)((uint64_t)r->session & ~ZT_SESSION_COUNTER_MASK);
		int rv = 0;

		list = r->next;
		if (fs__sess_alive(fs, base)) {
			rv = fs__session_close(fs, NULL, r->session, NULL);
			if (rv == 0)
				fs_info("session 0x%" PRIx64 ": close submitted again",
					(uint64_t)r->session);
		} else {
			fs_debug("session 0x%" PRIx64 ": its epoch ended, nothing to close",
				 (uint64_t)r->session);
		}
		if (rv != 0 && rv != -ESHUTDOWN)
			fs__session_retry(fs, r->session);
		free(r);
	}
	pthread_mutex_lock(&fs->slock);
}

/* The session thread: keeps an epoch open (see above). */
static void *fs__sess_main(void *arg)
{
	struct fs *fs = arg;
	uint32_t t = fs->cfg.session_timeout_ms;
	long period = t / 4 < 250 ? (long)(t / 4) : 250;
	struct timespec dl;

	if (period < 10)
		period = 10;
	pthread_mutex_lock(&fs->slock);
	while (!fs->sstop) {
		if (fs->sbase != 0 && !fs__sess_alive(fs, fs->sbase)) {
			fs__sess_expired(fs, fs->sbase);
			fs->sbase = 0;
			pthread_cond_broadcast(&fs->scond);
		}
		if (fs->sbase == 0 && fs->swant && !fs->sopening) {
			struct zt_op op = {.type = ZT_OP_SESSION,
					   .flags = ZT_SESSION_F_OPEN,
					   .version = (int32_t)t,
					   .owner = (int64_t)((uint64_t)fs->node_id << 56),
					   .path = "/"};
			int rv = rp_submit(fs->rp, &op, 1, fs__sess_open_done, fs);

			if (rv == 0)
				fs->sopening = 1;
			else if (rv != -ESHUTDOWN)
				fs_warn("cannot open a session epoch: %s (retrying)",
					strerror(-rv));
		}
		if (fs->sretry)
			fs__sess_retry_run(fs);
		fs__deadline(&dl, period);
		pthread_cond_timedwait(&fs->scond, &fs->slock, &dl);
	}
	while (fs->sretry) {
		struct fs__sretry *r = fs->sretry;

		fs->sretry = r->next;
		free(r);
	}
	fs->nsretry = 0;
	pthread_mutex_unlock(&fs->slock);
	return NULL;
}

/* ------------------------------------------------------------------ watches */

/*
 * A watch is an open watch file (.zk/watch/PATH, .zk/watch-children/PATH): registered at open in
 * a hash of lists by znode path, fired at most once by fs_on_change (the apply thread, after the
 * change is applied and visible: a watcher that wakes and reads sees the new data), then out of
 * the registry. A read before the event waits (its request is kept and answered when the watch
 * fires, or with EINTR when the kernel interrupts it); a read after returns "EVENT PATH\n" once,
 * then end of file. poll() reports it readable once fired. A watch costs its struct and path (the
 * event line is made when read).
 * Everything here is protected by fs->wlock; lock order: an interrupted request's own lock (held
 * by libfuse while it calls fs__watch_intr), then fs->wlock.
 */
#define FS__WATCH_BUCKETS 4096

struct fs__watch {
	struct fs__watch *next; /* protected by fs->wlock: in fs->watches while registered */
	struct fs *fs;		/* immutable */
	int children;		/* immutable: a child watch (else a data watch) */
	int registered;		/* protected by fs->wlock */
	int fired;		/* protected by fs->wlock */
	fuse_req_t pending;	/* protected by fs->wlock: a read waiting for the event */
	int intr; /* protected by fs->wlock: PENDING's request was interrupted early */
	struct fuse_pollhandle *ph;  /* protected by fs->wlock: a poll waiting for the event */
	int existed;		     /* immutable after open: the node as it was at open */
	int64_t czxid, mzxid, pzxid; /* ... (see fs__watch_recheck) */
	enum zt_change_type type;    /* protected by fs->wlock: the event, once fired */
	int consumed;		     /* protected by fs->wlock: a read returned it */
	char path[];
};

static size_t fs__watch_hash(const char *path)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *path; path++)
		h = (h ^ (unsigned char)*path) * 1099511628211ULL;
	return (size_t)(h % FS__WATCH_BUCKETS);
}

/* Take W out of the registry. fs->wlock held. */
static void fs__watch_unregister(struct fs__watch *w)
{
	struct fs__watch **pp = &w->fs->watches[fs__watch_hash(w->path)];

	if (!w->registered)
		return;
	for (; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	w->registered = 0;
}

#define FS__WATCH_EVENT_CAP (48 + FS__PATH_CAP)

/* W's event line "EVENT PATH\n" (made when read: a waiting watch stores no text) into BUF
 * (FS__WATCH_EVENT_CAP bytes); its length. */
static size_t fs__watch_event(const struct fs__watch *w, char *buf)
{
	static const char *const names[] = {"", "NodeCreated", "NodeDeleted", "NodeDataChanged",
					    "NodeChildrenChanged"};

	return (size_t)snprintf(buf, FS__WATCH_EVENT_CAP, "%s %s\n", names[w->type], w->path);
}

/* Fire W with change TYPE (fs->wlock held): answer its waiting read and poll. */
static void fs__watch_fire(struct fs__watch *w, enum zt_change_type type)
{
	fuse_req_t req = w->pending;

	fs__watch_unregister(w);
	w->fired = 1;
	w->type = type;
	if (req) {
		char buf[FS__WATCH_EVENT_CAP];

		w->pending = NULL;
		w->consumed = 1; /* that read gets the event: the next one sees end of file */
		fuse_reply_buf(req, buf, fs__watch_event(w, buf));
	}
	if (w->ph) {
		fuse_lowlevel_notify_poll(w->ph);
		fuse_pollhandle_destroy(w->ph);
		w->ph = NULL;
	}
}

/*
 * The root's data changed: a set of "/" or, in a cluster, the install of a snapshot (the replica
 * then reports only that: anything may have changed). Compare every watched node with what it was
 * at open and fire the watches whose node changed. fs->wlock held.
 */
static void fs__watch_recheck(struct fs *fs)
{
	struct st_rtxn *r;

	if (fs__rbegin(fs, NULL, &r) != 0) {
		fs_warn("watches not re-checked after a change of the root: no read snapshot");
		return;
	}
	for (size_t b = 0; b < FS__WATCH_BUCKETS; b++) {
		struct fs__watch **pp = &fs->watches[b], *w;

		while ((w = *pp) != NULL) {
			struct zt_node n;
			int exists = zt_get(r, w->path, &n) == 0, type = 0;

			if (exists && !w->existed)
				type = w->children ? 0 : ZT_NODE_CREATED;
			else if (!exists && w->existed)
				type = ZT_NODE_DELETED;
			else if (exists && n.stat.czxid != w->czxid)
				type = ZT_NODE_DELETED; /* deleted and created again */
			else if (exists && !w->children && n.stat.mzxid != w->mzxid)
				type = ZT_NODE_DATA_CHANGED;
			else if (exists && w->children && n.stat.pzxid != w->pzxid)
				type = ZT_NODE_CHILDREN_CHANGED;
			if (type)
				fs__watch_fire(w, (enum zt_change_type)type);
			else
				pp = &w->next;
		}
	}
	st_rend(r);
}

/* on_change: fire the watches CH concerns. Apply thread. */
static void fs__watch_change(struct fs *fs, const struct zt_change *ch)
{
	struct fs__watch **pp, *w;

	if (!fs->watches)
		return;
	pthread_mutex_lock(&fs->wlock);
	pp = &fs->watches[fs__watch_hash(ch->path)];
	while ((w = *pp) != NULL) {
		int hit = strcmp(w->path, ch->path) == 0 &&
			  (w->children
			       ? ch->type == ZT_NODE_CHILDREN_CHANGED || ch->type == ZT_NODE_DELETED
			       : ch->type != ZT_NODE_CHILDREN_CHANGED);

		if (hit)
			fs__watch_fire(w, ch->type); /* unlinks W: *pp is the next one */
		else
			pp = &w->next;
	}
	if (ch->type == ZT_NODE_DATA_CHANGED && fs__is_root(ch->path))
		fs__watch_recheck(fs);
	pthread_mutex_unlock(&fs->wlock);
}

/* The kernel interrupted a read waiting on a watch (Ctrl-C): answer it with EINTR. Runs with
 * the request's lock held by libfuse, possibly inside fuse_req_interrupt_func. */
static void fs__watch_intr(fuse_req_t req, void *data)
{
	struct fs__watch *w = data;
	int reply = 0;

	pthread_mutex_lock(&w->fs->wlock);
	if (w->pending == req) {
		w->pending = NULL;
		reply = 1;
	} else if (!w->fired) {
		w->intr = 1; /* not published yet: fs__watch_read answers it */
	}
	pthread_mutex_unlock(&w->fs->wlock);
	if (reply)
		fuse_reply_err(req, EINTR);
}

static void fs__watch_read(fuse_req_t req, struct fs__fh *fh, size_t size, off_t off)
{
	struct fs__watch *w = fh->watch;
	struct fs *fs = w->fs;
	char buf[FS__WATCH_EVENT_CAP];
	size_t n = 0;

	/* Register for interrupts before publishing the request (see fs__watch_intr). */
	fuse_req_interrupt_func(req, fs__watch_intr, w);
	pthread_mutex_lock(&fs->wlock);
	if (w->fired) {
		if (!w->consumed) {
			n = fs__watch_event(w, buf);
			n = n < size ? n : size;
			w->consumed = 1;
		}
	} else if (w->intr) {
		w->intr = 0;
		pthread_mutex_unlock(&fs->wlock);
		fuse_reply_err(req, EINTR);
		return;
	} else if (w->pending) {
		pthread_mutex_unlock(&fs->wlock);
		fuse_reply_err(req, EBUSY); /* one waiting read per watch file */
		return;
	} else {
		w->pending = req; /* answered by fs__watch_fire or fs__watch_intr */
		pthread_mutex_unlock(&fs->wlock);
		return;
	}
	pthread_mutex_unlock(&fs->wlock);
	(void)off;
	fuse_reply_buf(req, buf, n);
}

/* Open a watch file: register its watch. 0, -ENOMEM. */
static int fs__watch_open(struct fs *fs, const struct fs__pin *p, struct fs__fh *fh)
{
	size_t len = strlen(p->node);
	struct fs__watch *w = calloc(1, sizeof(*w) + len + 1);
	size_t b;

	if (!w)
		return -ENOMEM;
	w->fs = fs;
	w->children = fs__modes[p->mode].watch == 2;
	memcpy(w->path, p->node, len + 1);
	/* What fs__watch_recheck compares with. A change between this read and the registration
	 * below is before the watch; a later change of the root may then report it: a spurious
	 * wake-up, never a missed one. */
	{
		struct st_rtxn *r;
		struct zt_node n;

		if (fs__rbegin(fs, w->path, &r) == 0) {
			if (zt_get(r, w->path, &n) == 0) {
				w->existed = 1;
				w->czxid = n.stat.czxid;
				w->mzxid = n.stat.mzxid;
				w->pzxid = n.stat.pzxid;
			}
			st_rend(r);
		}
	}
	b = fs__watch_hash(w->path);
	pthread_mutex_lock(&fs->wlock);
	w->next = fs->watches[b];
	fs->watches[b] = w;
	w->registered = 1;
	pthread_mutex_unlock(&fs->wlock);
	fh->watch = w;
	return 0;
}

static void fs__watch_release(struct fs__fh *fh)
{
	struct fs__watch *w = fh->watch;

	pthread_mutex_lock(&w->fs->wlock);
	fs__watch_unregister(w);
	if (w->ph)
		fuse_pollhandle_destroy(w->ph);
	w->ph = NULL;
	pthread_mutex_unlock(&w->fs->wlock);
}

static void fs_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		    struct fuse_pollhandle *ph)
{
	struct fs__fh *fh = (struct fs__fh *)(uintptr_t)fi->fh;
	unsigned revents = POLLOUT;
	struct fs__watch *w;

	if (!fh || fh->type != FS__FH_WATCH) {
		/* Other files never block. */
		if (ph)
			fuse_pollhandle_destroy(ph);
		fuse_reply_poll(req, POLLIN | POLLOUT);
		return;
	}
	w = fh->watch;
	revents = 0;
	pthread_mutex_lock(&w->fs->wlock);
	if (w->fired) {
		revents = POLLIN;
		if (ph)
			fuse_pollhandle_destroy(ph);
	} else if (ph) {
		if (w->ph)
			fuse_pollhandle_destroy(w->ph);
		w->ph = ph;
	}
	pthread_mutex_unlock(&w->fs->wlock);
	fuse_reply_poll(req, revents);
}

/* ------------------------------------------------------------------ multi */

/*
 * .zk/multi: each write(2) is one transaction (ZooKeeper's multi: all or nothing), one op a line:
 *   create [-d] [-s] [-e] [-x] PATH [DATA]  (-d: a directory node, -s: sequential, -e: ephemeral)
 *   set [-v VERSION] [-x] PATH [DATA]
 *   delete [-v VERSION] PATH
 *   check -v VERSION PATH
 * DATA is the rest of the line after one space (no newline in it); with -x it is escaped: \n, \t,
 * \r, \\, \0 and \xHH stand for those bytes (any other backslash: EINVAL), so data may hold
 * newlines and NULs. An ephemeral create is owned by the session of this open .zk/multi file (one
 * per descriptor, made at its first ephemeral create): its nodes live until it is closed for the
 * last time, or until this node's session epoch expires (fs__sess_expired). The write returns once
 * the transaction is committed, or fails with the errno of the first failing op (nothing applied);
 * a malformed request fails with EINVAL. Reading the descriptor then returns one line per op:
 * "ok OP PATH VERSION" (the path created, the version after it) or "error ERRNO OP PATH"
 * ("-" for ops rolled back because another failed).
 */
#define FS__MULTI_MAX 1000

struct fs__mctx {
	fuse_req_t req;
	struct fs__fh *fh;
	size_t size;
	uint32_t n;
	unsigned char types[FS__MULTI_MAX];
	char *paths; /* n NUL-terminated paths, one after the other */
};

static const char *fs__mop_name(unsigned t)
{
	return t == ZT_OP_CREATE   ? "create"
	       : t == ZT_OP_DELETE ? "delete"
	       : t == ZT_OP_SET	   ? "set"
				   : "check";
}

static void fs__multi_done(void *arg, int status, uint64_t zxid, const struct zt_result *res,
			   uint32_t nres)
{
	struct fs__mctx *m = arg;
	int err = fs__outcome(status, res, nres);
	size_t cap = 64 + (size_t)m->n * (FS__PATH_CAP + 64), len = 0;
	char *out = malloc(cap), *path = m->paths;

	atomic_fetch_sub(&m->fh->link.fs->n_wflight, 1);

	for (uint32_t i = 0; out && i < m->n; i++) {
		if (status != 0) {
			len += (size_t)snprintf(out + len, cap - len, "error %d %s %s\n", -status,
						fs__mop_name(m->types[i]), path);
		} else if (res[i].err == 0) {
			len += (size_t)snprintf(
			    out + len, cap - len, "ok %s %s %d\n", fs__mop_name(m->types[i]),
			    res[i].path ? res[i].path : path, res[i].stat.version);
		} else {
			len += (size_t)snprintf(
			    out + len, cap - len, "error %s %s %s\n",
			    res[i].err == -ECANCELED ? "-" : strerrorname_np(-res[i].err),
			    fs__mop_name(m->types[i]), path);
		}
		path += strlen(path) + 1;
	}
	pthread_mutex_lock(&m->fh->lock);
	free(m->fh->buf);
	m->fh->buf = out;
	m->fh->len = out ? len : 0;
	m->fh->rpos = 0;
	m->fh->busy = 0;
	pthread_mutex_unlock(&m->fh->lock);
	if (err != 0)
		fuse_reply_err(m->req, -err);
	else
		fuse_reply_write(m->req, m->size);
	free(m->paths);
	free(m);
}

/* The session of the .zk/multi descriptor FH (made at its first ephemeral create) into *OUT.
 * 0, -ETIMEDOUT (no session epoch open in time), -EKEYEXPIRED (its epoch expired). */
static int fs__multi_session(struct fs__fh *fh, int64_t *out)
{
	int rv = 0;

	int64_t id = 0;

	if (atomic_load(&fh->expired))
		return ZT_ESESSIONEXPIRED;
	int64_t zero = 0;

	*out = atomic_load(&fh->session);
	if (*out != 0)
		return 0;
	rv = fs__session_new(fh->link.fs, FS__SESSION_WAIT_MS, &id);
	if (rv != 0)
		return rv;
	/* a concurrent write may have made one first: then ID is never used */
	atomic_compare_exchange_strong(&fh->session, &zero, id);
	*out = atomic_load(&fh->session);
	return 0;
}

static void fs__multi_write(fuse_req_t req, struct fs__fh *fh, const char *buf, size_t size)
{
	struct fs__mctx *m = calloc(1, sizeof(*m));
	struct zt_op *ops = calloc(FS__MULTI_MAX, sizeof(*ops));
	char *copy = malloc(size + 1), *save = NULL, *line;
	size_t plen = 0;
	int64_t session = 0;
	int rv = 0;

	if (!m || !ops || !copy) {
		rv = -ENOMEM;
		goto err;
	}
	memcpy(copy, buf, size);
	copy[size] = '\0';
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (*line == '\0' || *line == '#')
			continue;
		if (m->n == FS__MULTI_MAX) {
			rv = -E2BIG;
			goto err;
		}
		rv = fs__multi_parse(line, &ops[m->n]);
		if (rv != 0)
			goto err;
		if (ops[m->n].flags & ZT_CREATE_EPHEMERAL) {
			if (session == 0) {
				rv = fs__multi_session(fh, &session);
				if (rv != 0)
					goto err;
			}
			ops[m->n].owner = session;
		}
		m->types[m->n] = (unsigned char)ops[m->n].type;
		plen += strlen(ops[m->n].path) + 1;
		m->n++;
	}
	if (m->n == 0) {
		rv = -EINVAL;
		goto err;
	}
	m->paths = malloc(plen);
	if (!m->paths) {
		rv = -ENOMEM;
		goto err;
	}
	plen = 0;
	for (uint32_t i = 0; i < m->n; i++) {
		size_t l = strlen(ops[i].path) + 1;

		memcpy(m->paths + plen, ops[i].path, l);
		plen += l;
	}
	m->req = req;
	m->fh = fh;
	m->size = size;
	pthread_mutex_lock(&fh->lock);
	if (fh->busy) {
		rv = -EBUSY; /* one transaction at a time per descriptor */
	} else {
		fh->busy = 1;
	}
	pthread_mutex_unlock(&fh->lock);
	if (rv != 0)
		goto err;
	atomic_fetch_add(&fh->link.fs->n_wflight, 1);
	rv = rp_submit(fh->link.fs->rp, ops, m->n, fs__multi_done, m);
	if (rv != 0) {
		atomic_fetch_sub(&fh->link.fs->n_wflight, 1);
		pthread_mutex_lock(&fh->lock);
		fh->busy = 0;
		pthread_mutex_unlock(&fh->lock);
		goto err;
	}
	free(ops); /* rp_submit copied the ops and their data */
	free(copy);
	return;
err:
	if (m)
		free(m->paths);
	free(m);
	free(ops);
	free(copy);
	fuse_reply_err(req, rv == -ESHUTDOWN ? EIO : -rv);
}

enum fs__wtype {
	FS__W_WRITE = 1,   /* write(2): reply the byte count */
	FS__W_TRUNC = 2,   /* ftruncate(2): reply the attributes */
	FS__W_FLUSH = 3,   /* the opener's close after O_TRUNC with no write: commit empty */
	FS__W_RELEASE = 4, /* the last close, O_TRUNC still pending: commit empty, free the fh */
};

/* A commit of a descriptor's content. Owned by one thread at a time (no lock): the handler, the
 * fh's wait queue (under fh->lock), the replica until its callback, then whoever replies. */
struct fs__wreq {
	struct fs__wreq *next;
	struct fs *fs;
	struct fs__fh *fh;
	fuse_req_t req;
	enum fs__wtype type;
	off_t off;   /* write: offset; trunc: new size */
	size_t size; /* write: byte count */
	int32_t
	    version;  /* write: the version the node must have (-1: any; user.zk.expect_version) */
	char *data;   /* write waiting in the queue: a copy of its bytes (owned) */
	char *newbuf; /* the content being committed (owned until it replaces fh->buf) */
	size_t newlen;
	int err;
	struct zt_stat stat;
	uint64_t ino; /* the file's inode (the fh may be gone when the reply is sent) */
	enum fs__kind kind;
};

/* Answer the request of W (exactly one reply) and free W. */
static void fs__wreq_reply(struct fs__wreq *w)
{
	if (w->type == FS__W_RELEASE) {
		if (w->err != 0)
			fs_warn("commit of a truncation at the last close failed: %s",
				strerror(-w->err));
		fuse_reply_err(w->req, 0);
	} else if (w->err != 0) {
		fuse_reply_err(w->req, -w->err);
	} else if (w->type == FS__W_WRITE) {
		fuse_reply_write(w->req, w->size);
	} else if (w->type == FS__W_TRUNC) {
		struct stat st;

		fs__attr(w->fs, w->ino, w->kind, &w->stat, &st);
		fuse_reply_attr(w->req, &st, w->fs->cfg.cache_timeout);
	} else {
		fuse_reply_err(w->req, 0);
	}
	free(w->data);
	free(w);
}

static void fs__w_done(void *arg, int status, uint64_t zxid, const struct zt_result *res,
		       uint32_t nres);

static void fs__wreq_reply_cb(void *arg)
{
	fs__wreq_reply(arg);
}

/*
 * Build the descriptor's next content for W and submit it. fh->lock held, fh not busy.
 * DATA: the write's bytes. 0: submitted (fs__w_done runs later); else the errno to reply.
 */
static int fs__w_start(struct fs__wreq *w, const char *data)
{
	struct fs__fh *fh = w->fh;
	struct fs *fs = w->fs;
	struct fs__pin p;
	struct st_rtxn *r;
	struct zt_node n;
	struct zt_op op;
	size_t base = fh->len, newlen;
	int rv;

	/* Any write or truncate settles O_TRUNC: it folds the truncation into itself, and if it
	 * fails the close must not then commit an empty value that was never written. */
	fh->trunc_pending = 0;
	/* After a storage failure the descriptor's content no longer matches what the program
	 * believes it wrote (the failed bytes are missing): refuse further writes on it, as
	 * bash's stdio would otherwise commit the rest of a failed echo. */
	if (fh->err != 0)
		return fh->err;
	if (w->type == FS__W_WRITE) {
		size_t pos = fh->append ? base : (size_t)w->off;

		if (w->off < 0 || pos > ZT_MAX_DATA || w->size > ZT_MAX_DATA - pos)
			return -EFBIG;
		newlen = pos + w->size > base ? pos + w->size : base;
		w->newbuf = malloc(newlen ? newlen : 1);
		if (!w->newbuf)
			return -ENOMEM;
		fs__copy(w->newbuf, fh->buf, base < newlen ? base : newlen);
		if (pos > base)
			memset(w->newbuf + base, 0, pos - base);
		fs__copy(w->newbuf + pos, data, w->size);
	} else {
		newlen = w->type == FS__W_TRUNC ? (size_t)w->off : 0;
		if (newlen > ZT_MAX_DATA)
			return -EFBIG;
		w->newbuf = calloc(1, newlen ? newlen : 1);
		if (!w->newbuf)
			return -ENOMEM;
		fs__copy(w->newbuf, fh->buf, base < newlen ? base : newlen);
	}
	w->newlen = newlen;

	/*
	 * The path still names the node this descriptor opened (not one re-created since): the
	 * op itself checks that when it is applied (ZT_SET_CZXID), so that no write lands in a
	 * node that replaced this one in the log before it, even one this node has not heard of
	 * yet. The read here only fails early a write to a node already gone, from what is
	 * visible now: waiting for the last change reported of the node (as fs__read does) made
	 * writers of one node wait for each other's commits. It waits only when the node is not
	 * visible yet (created through this node a moment ago, its commit still running).
	 */
	rv = fs__pin(fs, fh->in->ino, &p);
	if (rv == 0) {
		rv = fs__read_at(fs, &p, &r, &n, 0);
		if (rv == -ENOENT)
			rv = fs__read(fs, &p, &r, &n);
	}
	if (rv != 0)
		goto err;
	st_rend(r);
	op = (struct zt_op){.type = ZT_OP_SET,
			    .flags = fs__is_root(p.node) ? 0 : ZT_SET_CZXID,
			    .owner = fs__is_root(p.node) ? 0 : p.czxid,
			    .version = w->version,
			    .path = p.node,
			    .data = w->newbuf,
			    .len = newlen};
	atomic_fetch_add(&fs->n_wflight, 1); /* before: the callback may run at once */
	rv = rp_submit(fs->rp, &op, 1, fs__w_done, w);
	if (rv != 0) {
		atomic_fetch_sub(&fs->n_wflight, 1);
		goto err;
	}
	fh->busy = 1;
	return 0;
err:
	free(w->newbuf);
	w->newbuf = NULL;
	return rv == -ESHUTDOWN ? -EIO : rv;
}

/* Start the next waiting commit of FH, if any (fh->lock held, fh not busy). */
static void fs__w_next(struct fs__fh *fh)
{
	while (!fh->busy && fh->wait_head) {
		struct fs__wreq *w = fh->wait_head;

		fh->wait_head = w->next;
		if (!fh->wait_head)
			fh->wait_tail = NULL;
		w->err = fs__w_start(w, w->data);
		if (w->err != 0)
			fs__wreq_reply(w);
	}
}

static void fs__w_done(void *arg, int status, uint64_t zxid, const struct zt_result *res,
		       uint32_t nres)
{
	struct fs__wreq *w = arg;
	struct fs__fh *fh = w->fh;
	int free_fh;

	atomic_fetch_sub(&w->fs->n_wflight, 1);
	w->err = fs__outcome(status, res, nres);
	if (w->err == 0)
		w->stat = res[0].stat;
	if (status < 0)
		fs_warn("commit of a write failed: %s", strerror(-w->err));
	pthread_mutex_lock(&fh->lock);
	if (status < 0)
		fh->err = w->err;
	if (w->err == 0) {
		free(fh->buf);
		fh->buf = w->newbuf;
		fh->len = w->newlen;
	} else {
		free(w->newbuf);
	}
	w->newbuf = NULL;
	fh->busy = 0;
	fs__w_next(fh);
	free_fh = fh->released && !fh->busy && !fh->wait_head;
	pthread_mutex_unlock(&fh->lock);
	/* No need to wait for the invalidations of this commit: page-cache readers are fenced
	 * off while this writable handle is open, and a later open sees the new version (fs_open
	 * drops what the kernel cached of an older one). But the data of a directory node (its
	 * .data file) is also the directory's size, which the kernel caches: reply once the
	 * directory's attributes are dropped (inode invalidations only; a write holds no
	 * directory lock). */
	/* the fh first: the reply to a RELEASE lets the kernel FORGET the inode it touches */
	if (free_fh)
		fs__fh_free(fh);
	if (w->kind == FS__K_DATA && w->err == 0)
		fs__after_invals(w->fs, 0, fs__wreq_reply_cb, w);
	else
		fs__wreq_reply(w);
}

/* Commit a change of FH's content (write, ftruncate, flush after O_TRUNC); replies itself. */
static void fs__w_submit(fuse_req_t req, struct fs__fh *fh, enum fs__wtype type, off_t off,
			 const char *data, size_t size)
{
	struct fs *fs = fs__of(req);
	struct fs__wreq *w = calloc(1, sizeof(*w));
	int rv;

	if (!w) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	w->fs = fs;
	w->fh = fh;
	w->ino = fh->in->ino;
	w->kind = fh->in->kind;
	w->req = req;
	w->type = type;
	w->off = off;
	w->size = size;
	w->version = -1;
	if (type == FS__W_WRITE && atomic_load(&fs->has_expects)) {
		struct fs__pin p;

		if (fs__pin(fs, fh->in->ino, &p) == 0)
			w->version = fs__expect_take(fs, req, p.node, NULL, NULL);
	}
	pthread_mutex_lock(&fh->lock);
	if (!fh->busy) {
		rv = fs__w_start(w, data);
	} else if (size > 0 && !(w->data = malloc(size))) {
		rv = -ENOMEM;
	} else {
		/* Another commit of this descriptor is in flight: ours builds on its outcome. */
		if (size > 0)
			memcpy(w->data, data, size);
		if (fh->wait_tail)
			fh->wait_tail->next = w;
		else
			fh->wait_head = w;
		fh->wait_tail = w;
		rv = 0;
	}
	pthread_mutex_unlock(&fh->lock);
	if (rv != 0) {
		free(w->data);
		free(w);
		fuse_reply_err(req, -rv);
	}
}

/* ------------------------------------------------------------------ namespace changes */

enum fs__nop {
	FS__N_CREATE = 1,
	FS__N_MKNOD,
	FS__N_MKDIR,
	FS__N_UNLINK,
	FS__N_RMDIR,
	FS__N_RENAME,
};

/* A namespace change in flight: owned by the handler, then by the replica's callback. */
struct fs__nctx {
	struct fs *fs;
	fuse_req_t req;
	enum fs__nop op;
	struct fuse_file_info fi; /* create */
	struct fs__fh *fh;	  /* create: allocated before submitting */
	int err;
	uint32_t cflags; /* create, mknod, mkdir: ZT_CREATE_* of a creation mode (.zk/MODE) */
	int64_t session; /* create: the session owning an ephemeral node */
	pid_t tgid;	 /* unlink, rmdir: the caller, when it set an expected version */
	int32_t version; /* unlink, rmdir: the expected version (-1: none) */
	int retry;	 /* ... and it was the re-armed one */
	uint64_t eseq0;	 /* create, mknod, mkdir: fs__eseq(path) before submitting */
	struct fs__job job; /* create of an existing name: fs__create_existing_run */
	char path[FS__PATH_CAP];
	char path2[FS__PATH_CAP];
};

static void fs__rename_reply(struct fs__nctx *c)
{
	fuse_reply_err(c->req, -c->err);
	free(c);
}

/* create found the name taken (not O_EXCL): open the node that is there instead. */
static int fs__create_existing(struct fs__nctx *c, struct fuse_entry_param *e)
{
	struct fs *fs = c->fs;
	struct st_rtxn *r;
	struct zt_node n;
	struct fs__inode *in;
	uint64_t seq0 = fs__eseq(fs, c->path);
	int rv = fs__rbegin(fs, c->path, &r);

	if (rv != 0)
		return rv;
	rv = zt_get(r, c->path, &n);
	if (rv != 0)
		goto out;
	if (fs__node_kind(c->path, &n) != FS__K_FILE) {
		rv = -EISDIR;
		goto out;
	}
	if (c->fi.flags & O_TRUNC) {
		c->fh->trunc_pending = 1;
	} else if (n.stat.data_length > 0) {
		c->fh->buf = malloc(n.stat.data_length);
		if (!c->fh->buf) {
			rv = -ENOMEM;
			goto out;
		}
		memcpy(c->fh->buf, n.data, n.stat.data_length);
		c->fh->len = n.stat.data_length;
	}
	/* The reply's inode gets this handle's fence at once, before a page-cache grant can come
	 * between; an inode that page-cache readers hold is left to them (fs__fence_in). */
	pthread_mutex_lock(&fs->it.lock);
	in = fs__it_find(&fs->it, c->path);
	if (in && in->pc_open > 0)
		fs__isolate(fs, in);
	in = fs__it_ref(&fs->it, c->path, FS__K_FILE, n.stat.czxid);
	if (in) {
		in->fence++;
		c->fh->fenced = 1;
		c->fh->in = in;
	}
	pthread_mutex_unlock(&fs->it.lock);
	if (!in) {
		rv = -ENOMEM;
		goto out;
	}
	fs__entry(fs, in, FS__K_FILE, &n.stat, e);
	fs__entry_fresh(fs, c->path, seq0, e);
out:
	st_rend(r);
	return rv;
}

/* The reply to a create, mknod or mkdir (IN and E: the entry, when ERR is 0); frees C. */
static void fs__create_reply(struct fs__nctx *c, int err, struct fs__inode *in,
			     const struct fuse_entry_param *e)
{
	if (err != 0) {
		if (c->fh)
			fs__fh_free(c->fh);
		fuse_reply_err(c->req, -err);
	} else if (c->op == FS__N_CREATE) {
		c->fh->in = in;
		atomic_store(&c->fh->session, c->session);
		if (!c->fh->fenced) /* a new node (fs__create_existing fences its own) */
			(void)fs__fence(c->fs, c->fh, 0); /* a replica or queue thread: no wait */
		c->fi.fh = (uint64_t)(uintptr_t)c->fh;
		c->fi.direct_io = 1; /* as in fs_open */
		c->fi.keep_cache = 1;
		c->fi.noflush = !c->fh->trunc_pending;
		if (c->session)
			fs_debug("create of %s answered (session 0x%" PRIx64 ", handle %p)", c->path,
				 (uint64_t)c->session, (void *)c->fh);
		if (fuse_reply_create(c->req, e, &c->fi) != 0)
			fs__fh_free(c->fh);
	} else {
		fuse_reply_entry(c->req, e);
	}
	free(c);
}

static void fs__create_existing_run(struct fs__job *job)
{
	struct fs__nctx *c = FS__CONTAINER_OF(job, struct fs__nctx, job);
	struct fuse_entry_param e;
	int err = fs__create_existing(c, &e);

	fs__create_reply(c, err, c->fh->in, &e);
}

static void fs__n_done(void *arg, int status, uint64_t zxid, const struct zt_result *res,
		       uint32_t nres)
{
	struct fs__nctx *c = arg;
	struct fs *fs = c->fs;
	struct fuse_entry_param e;
	struct fs__inode *in = NULL;
	int err = fs__outcome(status, res, nres);

	if (status < 0)
		fs_warn("commit of a change of %s failed: %s", c->path, strerror(-err));
	if (c->session != 0 && (status == -ETIMEDOUT || status == -EIO)) {
		/* The ephemeral create's outcome is unknown: it may still be applied later,
		 * owned by a session no open file holds. Close that session now (FIFO: after
		 * the create). */
		int rv = fs__session_close(fs, NULL, c->session, NULL);

		if (rv != 0 && rv != -ESHUTDOWN) {
			fs_warn("session 0x%" PRIx64 " of an unknown create not closed yet: %s "
				"(will retry)",
				(uint64_t)c->session, strerror(-rv));
			fs__session_retry(fs, c->session);
		}
	}
	switch (c->op) {
	case FS__N_CREATE:
	case FS__N_MKNOD:
	case FS__N_MKDIR:
		if (err == 0) {
			enum fs__kind kind = c->op == FS__N_MKDIR ? FS__K_DIR : FS__K_FILE;
			const char *made = res[0].path ? res[0].path : c->path;
			char mpath[FS__PATH_CAP + 32];

			if (c->cflags && kind == FS__K_DIR) {
				/* A directory cannot be an alias: the kernel gets the new node as
				 * seen through the mode. */
				kind = FS__K_MIRROR;
				snprintf(mpath, sizeof(mpath), "/" FS__CTL_NAME "/%s%s",
					 fs__mode_name(c->cflags), made);
				made = mpath;
			}
			pthread_mutex_lock(&fs->it.lock);
			in = fs__it_ref(&fs->it, made, kind, res[0].stat.czxid);
			pthread_mutex_unlock(&fs->it.lock);
			if (!in) {
				err = -ENOMEM;
			} else {
				fs__entry(fs, in, kind, &res[0].stat, &e);
				if (c->cflags)
					e.entry_timeout =
					    0; /* the name under .zk/MODE: not cached */
				else
					fs__entry_fresh(fs, made, c->eseq0, &e);
			}
		} else if (err == -EEXIST && c->op == FS__N_CREATE && !(c->fi.flags & O_EXCL) &&
			   !c->cflags) {
			/* The node there may come from this very batch, which the apply thread
			 * cannot read before its commit (rp_read_wait): open it on qinode. */
			c->job.run = fs__create_existing_run;
			if (fs->qstarted)
				fs__queue_push(&fs->qinode, &c->job);
			else
				fs__create_existing_run(&c->job); /* stopping */
			return;
		}
		fs__create_reply(c, err, in, &e);
		return;
	case FS__N_UNLINK:
	case FS__N_RMDIR:
		/* The VFS retries a path operation that failed with ESTALE once (after looking
		 * the name up again): the retry must carry the same expectation, and fail too. */
		if (err == ZT_EBADVERSION && c->version >= 0 && !c->retry &&
		    fs__expect_set(fs, c->path, c->tgid, c->version, 1) != 0)
			err = -ENOMEM;
		if (err == 0) {
			pthread_mutex_lock(&fs->it.lock);
			fs__it_unlink(&fs->it, c->path);
			pthread_mutex_unlock(&fs->it.lock);
		}
		fuse_reply_err(c->req, -err);
		free(c);
		return;
	case FS__N_RENAME:
		if (err == 0) {
			pthread_mutex_lock(&fs->it.lock);
			if (fs__it_move(&fs->it, c->path, c->path2, res[nres - 1].stat.czxid) != 0)
				fs_warn("out of memory moving inodes of %s", c->path);
			pthread_mutex_unlock(&fs->it.lock);
		}
		c->err = err;
		fs__rename_reply(c);
		return;
	}
}

static int fs__n_submit(struct fs__nctx *c, const struct zt_op *ops, uint32_t nops)
{
	int rv = rp_submit(c->fs->rp, ops, nops, fs__n_done, c);

	return rv == -ESHUTDOWN ? -EIO : rv;
}

static struct fs__nctx *fs__nctx_new(fuse_req_t req, enum fs__nop op)
{
	struct fs__nctx *c = calloc(1, sizeof(*c));

	if (c) {
		c->fs = fs__of(req);
		c->req = req;
		c->op = op;
	}
	return c;
}

/* Create a node (create, mknod, mkdir); replies itself. */
static void fs__create_node(fuse_req_t req, fuse_ino_t parent, const char *name, enum fs__nop op,
			    struct fuse_file_info *fi)
{
	struct fs__nctx *c = fs__nctx_new(req, op);
	struct zt_op zop = {.type = ZT_OP_CREATE, .version = -1};
	int rv;

	if (!c) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rv = fs__child_path(c->fs, parent, name, c->path, &c->cflags);
	if (rv != 0)
		goto err;
	if ((c->cflags & ZT_CREATE_EPHEMERAL) && op != FS__N_CREATE) {
		rv = -EPERM; /* an ephemeral node lives as long as the open file that made it */
		goto err;
	}
	if (op == FS__N_CREATE) {
		c->fi = *fi;
		c->fh = fs__fh_new(c->fs, FS__FH_NODE, NULL);
		if (!c->fh) {
			rv = -ENOMEM;
			goto err;
		}
		c->fh->append = (fi->flags & O_APPEND) != 0;
		c->fh->opener = fs__tgid(fuse_req_ctx(req)->pid);
	}
	zop.path = c->path;
	zop.flags = (op == FS__N_MKDIR ? ZT_CREATE_DIR : 0) | c->cflags;
	if (c->cflags & ZT_CREATE_EPHEMERAL) {
		rv = fs__session_new(c->fs, FS__SESSION_WAIT_MS, &c->session);
		if (rv != 0)
			goto err;
		zop.owner = c->session;
	}
	c->eseq0 = fs__eseq(c->fs, c->path);
	rv = fs__n_submit(c, &zop, 1);
	if (rv != 0)
		goto err;
	return;
err:
	if (c->fh)
		fs__fh_free(c->fh);
	free(c);
	fuse_reply_err(req, -rv);
}

/* ------------------------------------------------------------------ handlers */

static void fs_init(void *userdata, struct fuse_conn_info *conn)
{
	/* One write(2) of up to 1 MiB must reach us as ONE request: libfuse sizes its buffer
	 * for 256 pages and asks the kernel for max_pages = max_write / page size. */
	conn->max_write = ZT_MAX_DATA + 1;
	/* Reads too: a whole node in one READ (one snapshot) when the reader asks for it. */
	if (conn->max_readahead < ZT_MAX_DATA + 1)
		conn->max_readahead = ZT_MAX_DATA + 1;
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	else
		fs_warn("kernel lacks atomic O_TRUNC: opening with O_TRUNC will commit an empty "
			"value");
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE; /* every write() commits, nothing is delayed */
	conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
	conn->time_gran = 1000000; /* ZooKeeper's times are milliseconds */
	fs_info("FUSE protocol %u.%u, max_write %u, max_readahead %u", conn->proto_major,
		conn->proto_minor, conn->max_write, conn->max_readahead);
}

static void fs__lookup_locked(fuse_req_t req, fuse_ino_t parent, const char *name);

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fs__of(req);

	if (parent == FUSE_ROOT_ID && strcmp(name, FS__CTL_NAME) != 0)
		rp_read_barrier(fs->rp); /* names below: fs__pin */
	pthread_rwlock_rdlock(&fs->pc_rw); /* see fs__getattr_locked */
	fs__lookup_locked(req, parent, name);
	pthread_rwlock_unlock(&fs->pc_rw);
}

static void fs__lookup_locked(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fs__of(req);
	struct fuse_entry_param e;
	struct fs__pin p;
	char path[FS__PATH_CAP];
	struct st_rtxn *r = NULL;
	struct zt_node n;
	struct fs__inode *in;
	enum fs__kind kind;
	const char *guard = NULL; /* the node whose entry is replied, to be fs__entry_fresh */
	uint64_t seq0 = 0;
	int rv = fs__pin(fs, parent, &p);

	if (rv != 0)
		goto err;
	if (p.kind == FS__K_CTL && fs__mode_index(name, strlen(name)) >= 0) {
		snprintf(path, sizeof(path), "/" FS__CTL_NAME "/%s", name);
		kind = FS__K_MIRROR;
		rv = fs__rbegin(fs, "/", &r);
		if (rv != 0)
			goto err;
		rv = zt_get(r, "/", &n);
		if (rv != 0) {
			st_rend(r);
			goto err;
		}
		goto found;
	}
	if (p.kind == FS__K_MIRROR) {
		/* Only directory nodes exist here: any other name is missing, so that
		 * open(O_CREAT) creates. */
		char node[FS__PATH_CAP];

		rv = fs__path_join(path, sizeof(path), p.path, name);
		if (rv == 0)
			rv = fs__path_join(node, sizeof(node), p.node, name);
		if (rv == 0 && fs__modes[p.mode].watch && strcmp(name, FS__DATA_NAME) == 0) {
			/* DIR/.data: the watch file of the directory node itself */
			kind = FS__K_WATCH;
			memset(&n, 0, sizeof(n));
			r = NULL;
			goto found;
		}
		if (rv != 0 || strlen(node) >= ZT_PATH_MAX || zt_path_validate(node) != 0 ||
		    fs__reserved(p.node, name)) {
			rv = -ENOENT;
			goto err;
		}
		rv = fs__rbegin(fs, node, &r);
		if (rv != 0)
			goto err;
		rv = zt_get(r, node, &n);
		if (fs__modes[p.mode].watch && (rv == -ENOENT || rv == 0)) {
			/* Watches: a directory node is walked through (its own watch file is
			 * DIR/.data); a file node or a missing one is a watch file. */
			if (rv == 0 && fs__node_kind(node, &n) == FS__K_DIR) {
				kind = FS__K_MIRROR;
			} else {
				kind = FS__K_WATCH;
				memset(&n, 0, sizeof(n));
			}
			rv = 0;
			goto found;
		}
		if (rv == 0 && fs__node_kind(node, &n) != FS__K_DIR)
			rv = -ENOENT;
		if (rv != 0) {
			st_rend(r);
			goto err;
		}
		kind = FS__K_MIRROR;
		goto found;
	}
	if (p.kind == FS__K_CTL) {
		enum fs__kind ck = strcmp(name, "multi") == 0 ? FS__K_MULTI : FS__K_STATUS;

		if (strcmp(name, "status") != 0 && strcmp(name, FS__SYNC_NAME) != 0 &&
		    ck != FS__K_MULTI) {
			rv = -ENOENT;
			goto err;
		}
		snprintf(path, sizeof(path), "/" FS__CTL_NAME "/%s", name);
		pthread_mutex_lock(&fs->it.lock);
		in = fs__it_ref(&fs->it, path, ck, 0);
		pthread_mutex_unlock(&fs->it.lock);
		if (!in) {
			rv = -ENOMEM;
			goto err;
		}
		fs__entry(fs, in, ck, NULL, &e);
		fuse_reply_entry(req, &e);
		return;
	}
	if (p.kind != FS__K_DIR) {
		rv = -ENOTDIR;
		goto err;
	}
	if (fs__is_root(p.path) && strcmp(name, FS__CTL_NAME) == 0) {
		pthread_mutex_lock(&fs->it.lock);
		in = fs__it_ref(&fs->it, "/" FS__CTL_NAME, FS__K_CTL, 0);
		pthread_mutex_unlock(&fs->it.lock);
		if (!in) {
			rv = -ENOMEM;
			goto err;
		}
		fs__entry(fs, in, FS__K_CTL, NULL, &e);
		fuse_reply_entry(req, &e);
		return;
	}
	rv = fs__path_join(path, sizeof(path), p.path, name);
	if (rv != 0)
		goto err;
	if (strcmp(name, FS__DATA_NAME) == 0) {
		guard = p.path; /* DIR/.data goes when DIR becomes a file or is deleted */
		seq0 = fs__eseq(fs, guard);
		rv = fs__read(fs, &p, &r, &n);
		if (rv != 0)
			goto err;
		kind = FS__K_DATA;
		n.stat.czxid = fs__is_root(p.path) ? p.czxid : n.stat.czxid;
	} else {
		/* A name the tree would refuse cannot exist: ENOENT, so that O_CREAT gets to
		 * create (and be told EINVAL). */
		if (strlen(path) >= ZT_PATH_MAX || zt_path_validate(path) != 0) {
			rv = -ENOENT;
			goto err;
		}
		guard = path;
		seq0 = fs__eseq(fs, guard);
		rv = fs__rbegin(fs, path, &r);
		if (rv != 0)
			goto err;
		rv = zt_get(r, path, &n);
		if (rv != 0) {
			st_rend(r);
			goto err;
		}
		kind = fs__node_kind(path, &n);
	}
found:
	pthread_mutex_lock(&fs->it.lock);
	in = fs__it_ref(&fs->it, path, kind, n.stat.czxid);
	pthread_mutex_unlock(&fs->it.lock);
	if (!in) {
		if (r)
			st_rend(r);
		rv = -ENOMEM;
		goto err;
	}
	fs__entry(fs, in, kind, kind == FS__K_WATCH ? NULL : &n.stat, &e);
	if (r)
		st_rend(r);
	if (guard)
		fs__entry_fresh(fs, guard, seq0, &e);
	fuse_reply_entry(req, &e);
	return;
err:
	fuse_reply_err(req, -rv);
}

static void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct fs *fs = fs__of(req);

	pthread_mutex_lock(&fs->it.lock);
	fs__it_forget(&fs->it, ino, nlookup);
	pthread_mutex_unlock(&fs->it.lock);
	fuse_reply_none(req);
}

static void fs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct fs *fs = fs__of(req);

	pthread_mutex_lock(&fs->it.lock);
	for (size_t i = 0; i < count; i++)
		fs__it_forget(&fs->it, forgets[i].ino, forgets[i].nlookup);
	pthread_mutex_unlock(&fs->it.lock);
	fuse_reply_none(req);
}

/* Attributes of INO now; 0 or a negative errno. */
static int fs__getattr(struct fs *fs, fuse_ino_t ino, struct stat *st, double *timeout)
{
	struct fs__pin p;
	struct st_rtxn *r;
	struct zt_node n;
	int rv = fs__pin(fs, ino, &p);

	if (rv != 0)
		return rv;
	*timeout = fs->cfg.cache_timeout;
	if (p.kind == FS__K_CTL || p.kind == FS__K_WATCH || p.kind == FS__K_MULTI) {
		fs__attr(fs, ino, p.kind, NULL, st);
		if (p.kind != FS__K_CTL)
			*timeout = 0.0;
		return 0;
	}
	if (p.kind == FS__K_STATUS) {
		char buf[FS__STATUS_CAP];
		int len = fs__status_fill(fs, buf, sizeof(buf));

		fs__attr(fs, ino, p.kind, NULL, st);
		st->st_size = len > 0 ? len : 0;
		*timeout = 0.0;
		return 0;
	}
	rv = fs__read(fs, &p, &r, &n);
	if (rv != 0)
		return rv;
	fs__attr(fs, ino, p.kind, &n.stat, st);
	if (fs__pc_fix(fs, ino, p.kind, &n.stat, st))
		*timeout = 0.0;
	st_rend(r);
	return 0;
}

static void fs__getattr_locked(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);

static void fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs__of(req);

	pthread_rwlock_rdlock(&fs->pc_rw);
	fs__getattr_locked(req, ino, fi);
	pthread_rwlock_unlock(&fs->pc_rw);
}

/* fs_getattr under fs->pc_rw (shared): the reply is in the kernel before a grant drops it. */
static void fs__getattr_locked(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs__of(req);
	struct fs__fh *fh = fi ? (struct fs__fh *)(uintptr_t)fi->fh : NULL;
	struct stat st;
	double timeout;
	int rv;

	if (fh && fh->type == FS__FH_SNAP && fh->pc) {
		/* The kernel reads this handle through the page cache: the size (and the rest)
		 * of the handle's own version, cached only while that is still the node's. */
		struct fs__pin p;
		struct st_rtxn *r;
		struct zt_node n;

		timeout = 0.0;
		if (fs__pin(fs, ino, &p) == 0 && fs__read(fs, &p, &r, &n) == 0) {
			if (n.stat.mzxid == fh->mzxid)
				timeout = fs->cfg.cache_timeout;
			st_rend(r);
		}
		fuse_reply_attr(req, &fh->st, timeout);
		return;
	}
	rv = fs__getattr(fs, ino, &st, &timeout);

	if (rv != 0)
		fuse_reply_err(req, -rv);
	else
		fuse_reply_attr(req, &st, timeout);
}

/* truncate(2) by path: read, resize, set if the version is still the one read (retried). */
/* Owned by the handler, then by the replica's callback (which may resubmit it). */
struct fs__tctx {
	struct fs *fs;
	fuse_req_t req;
	fuse_ino_t ino;
	enum fs__kind kind;
	off_t size;
	int tries;
	int err;
	struct zt_stat stat;
	char *newbuf;
	struct fs__inode *fin; /* the inode fenced for this truncate (see fs__fence) */
	struct fs__job job;    /* a retry, on qinode (fs__trunc_retry_run) */
};

static void fs__trunc_reply(struct fs__tctx *t)
{
	if (t->fin)
		fs__unfence_in(t->fs, t->fin);
	if (t->err != 0) {
		fuse_reply_err(t->req, -t->err);
	} else {
		struct stat st;

		fs__attr(t->fs, t->ino, t->kind, &t->stat, &st);
		fuse_reply_attr(t->req, &st, t->fs->cfg.cache_timeout);
	}
	free(t->newbuf);
	free(t);
}

static void fs__trunc_done(void *arg, int status, uint64_t zxid, const struct zt_result *res,
			   uint32_t nres);

static int fs__trunc_start(struct fs__tctx *t)
{
	struct fs *fs = t->fs;
	struct fs__pin p;
	struct st_rtxn *r;
	struct zt_node n;
	struct zt_op op;
	size_t keep;
	int rv = fs__pin(fs, t->ino, &p);

	if (rv != 0)
		return rv;
	rv = fs__read(fs, &p, &r, &n);
	if (rv != 0)
		return rv;
	free(t->newbuf);
	t->newbuf = calloc(1, t->size ? (size_t)t->size : 1);
	if (!t->newbuf) {
		st_rend(r);
		return -ENOMEM;
	}
	keep = (size_t)n.stat.data_length < (size_t)t->size ? (size_t)n.stat.data_length
							    : (size_t)t->size;
	fs__copy(t->newbuf, n.data, keep);
	op = (struct zt_op){.type = ZT_OP_SET,
			    .version = n.stat.version,
			    .path = p.node,
			    .data = t->newbuf,
			    .len = (uint32_t)t->size};
	st_rend(r);
	rv = rp_submit(fs->rp, &op, 1, fs__trunc_done, t);
	return rv == -ESHUTDOWN ? -EIO : rv;
}

static void fs__trunc_retry_run(struct fs__job *job)
{
	struct fs__tctx *t = FS__CONTAINER_OF(job, struct fs__tctx, job);

	t->err = fs__trunc_start(t);
	if (t->err != 0)
		fs__trunc_reply(t);
}

static void fs__trunc_done(void *arg, int status, uint64_t zxid, const struct zt_result *res,
			   uint32_t nres)
{
	struct fs__tctx *t = arg;

	t->err = fs__outcome(status, res, nres);
	if (t->err == ZT_EBADVERSION && ++t->tries < 32 && t->fs->qstarted) {
		/* Someone wrote in between: truncate what is there now, read on qinode (this,
		 * the apply thread, would read the tree before the batch that refused it). */
		t->job.run = fs__trunc_retry_run;
		fs__queue_push(&t->fs->qinode, &t->job);
		return;
	}
	if (t->err == 0)
		t->stat = res[0].stat;
	fs__trunc_reply(t);
}

static void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct fs *fs = fs__of(req);
	struct fs__pin p;
	struct stat st;
	double timeout;
	int rv = fs__pin(fs, ino, &p);

	if (rv != 0)
		goto err;
	if (to_set & FUSE_SET_ATTR_SIZE) {
		struct fs__fh *fh = fi ? (struct fs__fh *)(uintptr_t)fi->fh : NULL;
		struct fs__tctx *t;

		if (p.kind == FS__K_DIR || p.kind == FS__K_CTL || p.kind == FS__K_MIRROR) {
			rv = -EISDIR;
			goto err;
		}
		if (p.kind == FS__K_STATUS) {
			rv = -EPERM;
			goto err;
		}
		if (attr->st_size < 0 || attr->st_size > ZT_MAX_DATA) {
			rv = -EFBIG;
			goto err;
		}
		if (fh && fh->type == FS__FH_NODE) {
			fs__w_submit(req, fh, FS__W_TRUNC, attr->st_size, NULL, 0);
			return;
		}
		t = calloc(1, sizeof(*t));
		if (!t) {
			rv = -ENOMEM;
			goto err;
		}
		t->fs = fs;
		t->req = req;
		t->ino = ino;
		t->kind = p.kind;
		t->size = attr->st_size;
		/* The reply sets the kernel's size: no page-cache reader may be reading then. */
		t->fin = p.in;
		rv = fs__fence_in(fs, p.in, 1);
		if (rv != 0) {
			free(t);
			goto err;
		}
		rv = fs__trunc_start(t);
		if (rv != 0) {
			fs__unfence_in(fs, p.in);
			free(t->newbuf);
			free(t);
			goto err;
		}
		return;
	}
	/* Mode, owner and times: ZooKeeper has none that can be set. Accepted and ignored, so
	 * that touch, cp -p and editors work; stat keeps showing the node's own. */
	rv = fs__getattr(fs, ino, &st, &timeout);
	if (rv != 0)
		goto err;
	fuse_reply_attr(req, &st, timeout);
	return;
err:
	fuse_reply_err(req, -rv);
}

static void fs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	if (!S_ISREG(mode)) {
		fuse_reply_err(req, EPERM); /* devices, fifos, sockets: znodes hold data only */
		return;
	}
	fs__create_node(req, parent, name, FS__N_MKNOD, NULL);
}

static void fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	fs__create_node(req, parent, name, FS__N_MKDIR, NULL);
}

static void fs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	fs__create_node(req, parent, name, FS__N_CREATE, fi);
}

/* A change OP of the node NAME in directory PARENT (not in .zk or a mirror, not a reserved name):
 * a new context for it, with c->path set, into *OUT. 0 or a negative errno (*OUT then NULL). */
static int fs__nctx_at(fuse_req_t req, fuse_ino_t parent, const char *name, enum fs__nop op,
		       struct fs__nctx **out)
{
	struct fs__pin p;
	struct fs__nctx *c;
	int rv = fs__pin(fs__of(req), parent, &p);

	*out = NULL;
	if (rv != 0)
		return rv;
	if (p.kind == FS__K_CTL || p.kind == FS__K_MIRROR || fs__reserved(p.path, name))
		return -EPERM;
	c = fs__nctx_new(req, op);
	if (!c)
		return -ENOMEM;
	rv = fs__path_join(c->path, sizeof(c->path), p.path, name);
	if (rv != 0) {
		free(c);
		return rv;
	}
	*out = c;
	return 0;
}

static void fs__remove(fuse_req_t req, fuse_ino_t parent, const char *name, enum fs__nop op)
{
	struct fs *fs = fs__of(req);
	struct fs__nctx *c = NULL;
	struct zt_op zop = {.type = ZT_OP_DELETE, .version = -1};
	int rv = fs__nctx_at(req, parent, name, op, &c);

	if (rv != 0)
		goto err;
	zop.path = c->path;
	zop.version = fs__expect_take(fs, req, c->path, &c->tgid, &c->retry);
	c->version = zop.version;
	rv = fs__n_submit(c, &zop, 1);
	if (rv != 0)
		goto err;
	return;
err:
	free(c);
	fuse_reply_err(req, -rv);
}

static void fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fs__remove(req, parent, name, FS__N_UNLINK);
}

static void fs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fs__remove(req, parent, name, FS__N_RMDIR);
}

static void fs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, EPERM); /* a znode has no link kind; nothing is created */
}

static void fs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	fuse_reply_err(req, EPERM); /* a znode has exactly one path */
}

static void fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	struct fs *fs = fs__of(req);
	struct fs__nctx *c = NULL;
	struct zt_op ops[2];
	uint32_t nops = 0;
	int rv;

	if (flags & ~RENAME_NOREPLACE) {
		rv = -EINVAL; /* RENAME_EXCHANGE, RENAME_WHITEOUT: no such tree operation */
		goto err;
	}
	rv = fs__nctx_at(req, parent, name, FS__N_RENAME, &c);
	if (rv != 0)
		goto err;
	rv = fs__child_path(fs, newparent, newname, c->path2, NULL);
	if (rv != 0)
		goto err;
	if (strcmp(c->path, c->path2) == 0) {
		free(c);
		fuse_reply_err(req, 0);
		return;
	}
	if (flags & RENAME_NOREPLACE) {
		/* Atomic: the multi fails as a whole with EEXIST when the target exists. The
		 * rename then replaces the fresh empty node's data (so it starts at version 1). */
		struct st_rtxn *r;
		struct zt_node n;

		rv = fs__rbegin(fs, c->path, &r);
		if (rv != 0)
			goto err;
		rv = zt_get(r, c->path, &n);
		if (rv == 0)
			ops[nops++] = (struct zt_op){
			    .type = ZT_OP_CREATE,
			    .version = -1,
			    .flags = (n.flags & ZT_NODE_DIR) ? ZT_CREATE_DIR : 0,
			    .path = c->path2,
			};
		st_rend(r);
		if (rv != 0)
			goto err;
	}
	ops[nops++] =
	    (struct zt_op){.type = ZT_OP_RENAME, .version = -1, .path = c->path, .path2 = c->path2};
	rv = fs__n_submit(c, ops, nops);
	if (rv != 0)
		goto err;
	return;
err:
	free(c);
	fuse_reply_err(req, -rv);
}

/* An open of .zk/sync waiting for rp_sync: owned by fs__sync_open, then by its callback. */
struct fs__syncctx {
	struct fs *fs;
	fuse_req_t req;
	struct fuse_file_info fi;
	struct fs__fh *fh;
};

static void fs__sync_reply(void *arg)
{
	struct fs__syncctx *c = arg;

	if (fuse_reply_open(c->req, &c->fi) != 0)
		fs__fh_free(c->fh);
	free(c);
}

static void fs__sync_done(void *arg, int status, uint64_t zxid, const struct zt_result *res,
			  uint32_t nres)
{
	struct fs__syncctx *c = arg;
	int err = fs__outcome(status, res, nres);
	char text[40];
	int len;

	if (err == 0) {
		/* What reads of this descriptor return: the applied zxid the sync reached. */
		len = snprintf(text, sizeof(text), "zxid=0x%016" PRIx64 "\n", zxid);
		c->fh->buf = malloc((size_t)len);
		if (c->fh->buf) {
			memcpy(c->fh->buf, text, (size_t)len);
			c->fh->len = (size_t)len;
		} else {
			err = -ENOMEM;
		}
	}
	if (err != 0) {
		fs__fh_free(c->fh);
		fuse_reply_err(c->req, -err);
		free(c);
		return;
	}
	/* After the kernel's caches dropped what the transactions up to the sync point changed:
	 * a stat, ls or test -e after the sync must not see a cached older name or attribute. */
	fs__after_invals(c->fs, 1, fs__sync_reply, c);
}

/* Open .zk/sync: answered (with FH) once every transaction committed anywhere before now is
 * applied on this node (rp_sync). 0 (the callback answers REQ) or a negative errno (nothing
 * answered; FH still the caller's). */
static int fs__sync_open(struct fs *fs, fuse_req_t req, struct fuse_file_info *fi,
			 struct fs__fh *fh)
{
	struct fs__syncctx *c = malloc(sizeof(*c));
	int rv;

	if (!c)
		return -ENOMEM;
	c->fs = fs;
	c->req = req;
	c->fh = fh;
	c->fi = *fi;
	c->fi.fh = (uint64_t)(uintptr_t)fh;
	c->fi.direct_io = 1;
	c->fi.keep_cache = 1;
	c->fi.noflush = 1;
#ifdef QFS_TEST_HOOKS
	/* A deliberate bug (fs__test_bug): QFS_TEST_BUG=stale-sync answers
	 * at once, so a "fresh" read after it may come from a lagging replica. */
	if (fs__test_bug("stale-sync")) {
		fs__sync_done(c, 0, 0, NULL, 0);
		return 0;
	}
#endif
	rv = rp_sync(fs->rp, fs__sync_done, c);
	if (rv != 0) {
		free(c);
		return rv == -ESHUTDOWN ? -EIO : rv;
	}
	return 0;
}

/*
 * The reply to an open for writing of a node or of .zk/multi: fuse_reply_open's, plus
 * FOPEN_PARALLEL_DIRECT_WRITES (libfuse 3.14 has no field for it, so the fuse_open_out is built
 * here, as fuse_reply_open builds it). Without it the kernel holds the file's inode lock
 * exclusively for the whole round trip of every direct write, commit included: one write per
 * node per mount at a time. With it, a write that stays within the kernel's size of the file (an
 * overwrite in place: an open without O_TRUNC, then pwrite at 0) takes the lock shared, so
 * writers of one node through one mount commit side by side; the kernel still takes it
 * exclusively for a write past the end (every write after O_TRUNC, which sets that size to 0),
 * O_APPEND, and while a page-cache open of the node exists. Each descriptor's content is its own
 * (fh->buf) and the commits of one descriptor queue behind each other (fs__w_submit; a
 * .zk/multi descriptor takes one transaction at a time), so nothing here relies on the kernel's
 * lock. .zk/multi's size is never reached, so every request is within it (fs__attr). Measured
 * with qfs-fusenoop (1 ms per write, 48 writers of one file): 864 writes/s exclusive, 38,309/s
 * shared.
 */
static int fs__reply_open_writable(fuse_req_t req, const struct fuse_file_info *fi)
{
	struct fuse_open_out o;

	memset(&o, 0, sizeof(o));
	o.fh = fi->fh;
	o.open_flags = FOPEN_PARALLEL_DIRECT_WRITES;
	if (fi->direct_io)
		o.open_flags |= FOPEN_DIRECT_IO;
	if (fi->keep_cache)
		o.open_flags |= FOPEN_KEEP_CACHE;
	if (fi->nonseekable)
		o.open_flags |= FOPEN_NONSEEKABLE;
	if (fi->noflush)
		o.open_flags |= FOPEN_NOFLUSH;
	return fuse_reply_buf(req, (const char *)&o, sizeof(o));
}

/* Answer the open of a control file (.zk/multi, a watch file, status) with handle FH: no page
 * cache (its content is per descriptor), no flush; NONSEEKABLE for streams; WRITABLE (.zk/multi):
 * with parallel direct writes (fs__reply_open_writable). The reply's result (non-zero: the kernel
 * did not take the handle). */
static int fs__reply_ctl_open(fuse_req_t req, struct fuse_file_info *fi, struct fs__fh *fh,
			      int nonseekable, int writable)
{
	fi->fh = (uint64_t)(uintptr_t)fh;
	fi->direct_io = 1;
	fi->keep_cache = 1;
	fi->noflush = 1;
	fi->nonseekable = nonseekable;
	return writable ? fs__reply_open_writable(req, fi) : fuse_reply_open(req, fi);
}

/*
 * Page-cache reads, exact. The kernel's page cache and its cached size for a file are shared by
 * every open of it, and the kernel changes them itself around this node's own writes (an O_TRUNC
 * open sets the size to 0 before anything is committed, a write extends it), so a read through
 * the page cache is whole only under these rules, all decided here at open (synchronous, so a
 * write that returned is seen by every later open):
 * - A read-only handle copies its version at open (as a direct one does), serves the kernel's
 *   READs from that copy and answers GETATTR through it with that version's attributes: pages
 *   and size always come from one version.
 * - Handles of one inode read through the page cache only all at the same version (pc_mzxid):
 *   an open at another version while such handles are open reads past the cache (direct_io).
 * - The kernel's pages are kept only when they are of this very version; otherwise they are
 *   dropped now, before the reply, and not only by the kernel at open (keep_cache off): that
 *   drop runs after the reply, and an open of the same version that joins in between (kept
 *   pages, no wait) would read the other version's pages cut to this version's size. Dropping
 *   them here waits for no READ: no page-cache handle of the inode is open (pc_open was 0).
 *   The attributes are invalidated now too unless they are known to be of this version
 *   (page-cache readers of it are open, or no attribute reply of another version went out
 *   since the last invalidation: pc_attr_other), so the first read asks for the size (through
 *   the handle) instead of using another version's.
 * - While a writable handle of the inode is open on this mount (in->fence), opens read past
 *   the cache; a writable open waits (FS__FENCE_MS at most) until the page-cache handles of
 *   the inode are closed, so that the kernel's own size changes never meet a read in progress.
 * - Changes committed elsewhere drop pages and attributes (fs__inval_inode_run) only while no
 *   page-cache handle of the inode is open, else when the last one closes: each drop makes
 *   the kernel discard the attribute replies in flight (attr_version), and a reader whose
 *   size reply is discarded reads up to the size the kernel had before, another version's
 *   (the kernel's i_size changes only when a reply is applied; invalidating does not).
 */
#define FS__FENCE_MS 100	/* a writer waits this long for page-cache readers (fs__fence_in) */
#define FS__HOLD_MS  5000 /* then no page-cache read is granted on the path for this long */

static int fs__pc_barred(struct fs *fs, const struct fs__inode *in);

/* Grant FH (read-only, of version ST, inode INO) page-cache reads if exact (see above). Returns
 * whether the kernel may keep its cached pages. fs->it.lock not held. */
static int fs__pc_grant(struct fs *fs, struct fs__fh *fh, fuse_ino_t ino, enum fs__kind kind,
			const struct zt_stat *st)
{
	struct fs__inode *in = fh->in;
	struct fuse_session *se = atomic_load(&fs->se);
	int keep = 0, want = 0, inval = 0;

	/* The kernel's pages and attributes are of this version: share them (the common case,
	 * no exclusive lock). Shared, so that no grant of this version is between taking its
	 * count and dropping the other version's pages and attributes below: a join then would
	 * read them. */
	pthread_rwlock_rdlock(&fs->pc_rw);
	pthread_mutex_lock(&fs->it.lock);
	if (!fs__pc_barred(fs, in) && in->pc_mzxid == st->mzxid &&
	    (in->pc_open > 0 || !in->pc_attr_other)) {
		fh->pc = keep = 1;
		in->pc_open++;
	} else {
		want = !fs__pc_barred(fs, in) && in->pc_open == 0;
	}
	pthread_mutex_unlock(&fs->it.lock);
	pthread_rwlock_unlock(&fs->pc_rw);
	if (!want)
		goto out;
	/* Another version: exclusive, so that no attribute reply computed before is still on
	 * its way to the kernel when the attributes are dropped below. */
	pthread_rwlock_wrlock(&fs->pc_rw);
	pthread_mutex_lock(&fs->it.lock);
	if (!fs__pc_barred(fs, in) && (in->pc_open == 0 || in->pc_mzxid == st->mzxid)) {
		/* Joining readers of this version: their attributes stand. Else the kernel's
		 * may be of another version (pages of this one are kept all the same). */
		inval = !(in->pc_open > 0 && in->pc_mzxid == st->mzxid);
		fh->pc = 1;
		keep = in->pc_mzxid == st->mzxid;
		in->pc_mzxid = st->mzxid;
		in->pc_size = (int64_t)st->data_length;
		in->pc_mtime = st->mtime;
		in->pc_attr_other = 0;
		in->pc_open++;
	}
	pthread_mutex_unlock(&fs->it.lock);
	if (fh->pc && inval && se) {
		/* The attributes, and the pages unless they are of this version (see above). */
		int rv = fuse_lowlevel_notify_inval_inode(se, ino, keep ? -1 : 0, 0);

		if (rv != 0 && rv != -ENOENT) {
			/* The kernel may keep an older size or older pages: read past the cache
			 * instead. */
			fs_debug("inval %s of inode %" PRIu64 ": %s",
				 keep ? "attributes" : "attributes and pages", (uint64_t)ino,
				 strerror(-rv));
			pthread_mutex_lock(&fs->it.lock);
			fh->pc = 0;
			in->pc_mzxid = -1;
			if (--in->pc_open == 0)
				pthread_cond_broadcast(&fs->pc_cond);
			pthread_mutex_unlock(&fs->it.lock);
		}
	}
	pthread_rwlock_unlock(&fs->pc_rw);
out:
	if (!fh->pc)
		return 0;
	fh->mzxid = st->mzxid;
	fs__attr(fs, ino, kind, st, &fh->st);
	return keep;
}

/* Count FH (writable) in its inode's fence; with WAIT, wait (FS__FENCE_MS at most) until the
 * inode's page-cache read handles are closed. 0, or -ESTALE (see fs__fence_in). */
static int fs__fence(struct fs *fs, struct fs__fh *fh, int wait)
{
	int rv = fs__fence_in(fs, fh->in, wait);

	if (rv == 0)
		fh->fenced = 1; /* immutable from here: only this thread knows FH yet */
	return rv;
}

static int64_t fs__mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Take IN out of the path index for a writer about to change its node (fs__fence_in): the
 * next lookup of the path makes a new inode, and no page-cache read is granted on that path
 * for FS__HOLD_MS, so that the writer's retry finds no reader there. fs->it.lock held. */
static void fs__isolate(struct fs *fs, struct fs__inode *in)
{
	fs__it_isolate(&fs->it, in);
	if (in->path)
		fs->pc_hold[fs__eseq_slot(in->path)] = fs__mono_ms() + FS__HOLD_MS;
}

/* Whether no page-cache read may be granted on IN now. fs->it.lock held. */
static int fs__pc_barred(struct fs *fs, const struct fs__inode *in)
{
	int64_t *until;

	if (in->fence > 0)
		return 1;
	if (!in->path)
		return 0;
	until = &fs->pc_hold[fs__eseq_slot(in->path)];
	if (*until != 0 && fs__mono_ms() >= *until)
		*until = 0; /* expired: no clock read on the next grants */
	return *until != 0;
}

/*
 * Count one writer in IN's fence (see fs__fence); undone by fs__unfence_in. With WAIT, wait
 * FS__FENCE_MS at most for the page-cache readers of IN to close. If one still holds its
 * descriptor then, the kernel's own size changes around this writer (an O_TRUNC open sets the
 * size to 0, a write past the end moves it) could meet that reader's reads, which take their
 * length from the kernel's size: a read could come back short, or zero-filled. So the writer
 * does not go ahead on IN: IN is isolated (fs__isolate; its readers keep reading their version
 * through it) and the writer gets -ESTALE, which the VFS answers by looking the path up again
 * (a new inode, whose size no reader depends on) and retrying the open or truncate once. The
 * retry finds no page-cache reader there: none is granted on that path meanwhile.
 */
static int fs__fence_in(struct fs *fs, struct fs__inode *in, int wait)
{
	struct timespec dl;
	uint32_t readers = 0;
	uint64_t ino = 0;
	int rv = 0;

	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += FS__FENCE_MS / 1000;
	dl.tv_nsec += (long)(FS__FENCE_MS % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&fs->it.lock);
	in->fence++;
	while (wait && in->pc_open > 0)
		if (pthread_cond_timedwait(&fs->pc_cond, &fs->it.lock, &dl) == ETIMEDOUT)
			break;
#ifdef QFS_TEST_HOOKS
	/* A deliberate bug (fs__test_bug): QFS_TEST_BUG=no-isolate lets the
	 * writer go ahead under the readers still open, as before 386d015 (FAULTS.md "Found" 11). */
	if (wait && in->pc_open > 0 && fs__test_bug("no-isolate"))
		wait = 0;
#endif
	if (wait && in->pc_open > 0) {
		readers = in->pc_open;
		ino = in->ino;
		in->fence--;
		fs__isolate(fs, in);
		rv = -ESTALE;
	}
	pthread_mutex_unlock(&fs->it.lock);
	if (rv != 0) {
		atomic_fetch_add(&fs->n_fence_timeouts, 1);
		fs_info("a writer of inode %" PRIu64 " found %u page-cache readers still open after "
			"%d ms: the node gets a new inode",
			ino, readers, FS__FENCE_MS);
	}
	return rv;
}

static void fs__unfence_in(struct fs *fs, struct fs__inode *in)
{
	pthread_mutex_lock(&fs->it.lock);
	in->fence--;
	fs__it_unpinned(&fs->it, in); /* a FORGET may have come while the fence was up */
	pthread_mutex_unlock(&fs->it.lock);
}

static void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs__of(req);
	int acc = fi->flags & O_ACCMODE;
	struct fs__fh *fh = NULL;
	struct st_rtxn *r;
	struct zt_node n;
	struct fs__pin p;
	int rv = fs__pin(fs, ino, &p);

	if (rv != 0)
		goto err;
	if (p.kind == FS__K_DIR || p.kind == FS__K_CTL || p.kind == FS__K_MIRROR) {
		rv = -EISDIR;
		goto err;
	}
	if (p.kind == FS__K_MULTI) {
		fh = fs__fh_new(fs, FS__FH_MULTI, p.in);
		if (!fh) {
			rv = -ENOMEM;
			goto err;
		}
		if (fs__reply_ctl_open(req, fi, fh, 1, 1) != 0)
			fs__fh_free(fh);
		return;
	}
	if (p.kind == FS__K_WATCH) {
		if (acc != O_RDONLY) {
			rv = -EACCES;
			goto err;
		}
		fh = fs__fh_new(fs, FS__FH_WATCH, p.in);
		if (!fh) {
			rv = -ENOMEM;
			goto err;
		}
		/* Registered now: every change applied from here on fires it. */
		rv = fs__watch_open(fs, &p, fh);
		if (rv != 0)
			goto err;
		if (fs__reply_ctl_open(req, fi, fh, 1, 0) != 0) {
			fs__watch_release(fh);
			fs__fh_free(fh);
		}
		return;
	}
	if (p.kind == FS__K_STATUS) {
		if (acc != O_RDONLY) {
			rv = -EACCES;
			goto err;
		}
		fh = fs__fh_new(fs, FS__FH_SNAP, p.in);
		if (!fh) {
			rv = -ENOMEM;
			goto err;
		}
		if (strcmp(p.path, "/" FS__CTL_NAME "/" FS__SYNC_NAME) == 0) {
			rv = fs__sync_open(fs, req, fi, fh);
			if (rv != 0)
				goto err;
			return;
		}
		rv = fs__status_text(fs, &fh->buf, &fh->len);
		if (rv != 0)
			goto err;
		fs__reply_ctl_open(req, fi, fh, 0, 0);
		return;
	}
	/* A truncating open for writing uses neither the data nor the version it reads (the
	 * write commits through the log, after this client's earlier ones): it need not wait for
	 * the commit of a change reported to this node (fs__rbegin), unless what is visible does
	 * not show the node yet (a create of this client's, answered before its commit). */
	rv = -ENOENT;
	if (acc != O_RDONLY && (fi->flags & O_TRUNC))
		rv = fs__read_at(fs, &p, &r, &n, 0);
	if (rv == -ENOENT)
		rv = fs__read(fs, &p, &r, &n);
	if (rv != 0)
		goto err;
	if (acc == O_RDONLY) {
		int keep = 0;

		/* Read-only: the descriptor reads one version, copied here (so its reads never
		 * mix two versions), through the page cache when that is exact (fs__pc_grant),
		 * else past it. */
		fh = fs__fh_new(fs, FS__FH_SNAP, p.in);
		if (!fh || (n.stat.data_length > 0 && !(fh->buf = malloc(n.stat.data_length)))) {
			st_rend(r);
			rv = -ENOMEM;
			goto err;
		}
		fs__copy(fh->buf, n.data, n.stat.data_length);
		fh->len = n.stat.data_length;
		if (fs->cfg.read_cache)
			keep = fs__pc_grant(fs, fh, ino, p.kind, &n.stat);
		atomic_fetch_add(fh->pc ? &fs->n_pc : &fs->n_direct, 1);
		st_rend(r);
		fi->fh = (uint64_t)(uintptr_t)fh;
		fi->noflush = 1;
		if (fh->pc) {
			fi->direct_io = 0;
			fi->keep_cache = keep;
		} else {
			fi->direct_io = 1;
			/* It does not use the page cache, so it need not drop it either (which
			 * would wait for the page a write in flight holds locked). */
			fi->keep_cache = 1;
		}
		if (fuse_reply_open(req, fi) != 0)
			fs__fh_free(fh);
		return;
	}
	fh = fs__fh_new(fs, FS__FH_NODE, p.in);
	if (!fh) {
		st_rend(r);
		rv = -ENOMEM;
		goto err;
	}
	fh->append = (fi->flags & O_APPEND) != 0;
	rv = fs__fence(fs, fh, 1);
	if (rv != 0) {
		st_rend(r);
		goto err;
	}
	if (fi->flags & O_TRUNC) {
		/* Not a change by itself: folded into the first write, or committed by the
		 * opener's own close when no write came. */
		fh->trunc_pending = 1;
		fh->opener = fs__tgid(fuse_req_ctx(req)->pid);
	} else if (n.stat.data_length > 0) {
		fh->buf = malloc(n.stat.data_length);
		if (!fh->buf) {
			st_rend(r);
			rv = -ENOMEM;
			goto err;
		}
		memcpy(fh->buf, n.data, n.stat.data_length);
		fh->len = n.stat.data_length;
	}
	st_rend(r);
	fi->fh = (uint64_t)(uintptr_t)fh;
	/* Writes bypass the page cache (direct_io): the kernel sends each write(2) straight from
	 * the caller's buffer, and it is answered once committed. Measured alternative: through
	 * the page cache (write-through), two processes writing one node with O_TRUNC made the
	 * kernel send a page of zeros in place of written data (a corrupt committed value), and
	 * readers saw uncommitted or half-written pages. The price: the kernel hands at most 256
	 * pages of the caller's buffer to one request, so a single write of more than 1,044,481
	 * bytes arrives as two requests (two versions) unless the buffer is page-aligned
	 * (quorumctl set uses one). Read-only opens use the page cache only while no writable
	 * handle of the node is open (fs__fence above), and drop it themselves when it holds
	 * another version, so there is nothing to drop here. */
	fi->direct_io = 1;
	fi->keep_cache = 1;
	fi->noflush = !fh->trunc_pending;
	if (fs__reply_open_writable(req, fi) != 0)
		fs__fh_free(fh);
	return;
err:
	if (fh)
		fs__fh_free(fh);
	fuse_reply_err(req, -rv);
}

static void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fs *fs = fs__of(req);
	struct fs__fh *fh = (struct fs__fh *)(uintptr_t)fi->fh;
	struct st_rtxn *r;
	struct zt_node n;
	struct fs__pin p;
	int rv;

	if (fh && fh->type == FS__FH_WATCH) {
		fs__watch_read(req, fh, size, off);
		return;
	}
	if (fh && fh->type == FS__FH_MULTI) {
		/* The results of the last transaction written on this descriptor. */
		char *copy = NULL;
		size_t nb = 0;

		pthread_mutex_lock(&fh->lock);
		if (fh->rpos < fh->len) {
			nb = fh->len - fh->rpos < size ? fh->len - fh->rpos : size;
			copy = malloc(nb);
			if (copy)
				memcpy(copy, fh->buf + fh->rpos, nb);
			fh->rpos += copy ? nb : 0;
		}
		pthread_mutex_unlock(&fh->lock);
		if (nb > 0 && !copy)
			fuse_reply_err(req, ENOMEM);
		else
			fuse_reply_buf(req, copy, copy ? nb : 0);
		free(copy);
		return;
	}
	if (fh && fh->type == FS__FH_SNAP) {
		size_t len = fh->len; /* immutable for SNAP handles */

		atomic_fetch_add(&fh->refs, 1);
		if (off < 0 || (size_t)off >= len)
			fuse_reply_buf(req, NULL, 0);
		else
			fuse_reply_buf(req, fh->buf + off, size < len - off ? size : len - off);
		if (atomic_fetch_sub(&fh->refs, 1) == 1)
			fs__fh_free(fh);
		return;
	}
	if (fh) {
		int pending;

		pthread_mutex_lock(&fh->lock);
		pending = fh->trunc_pending;
		pthread_mutex_unlock(&fh->lock);
		if (pending) {
			fuse_reply_buf(req, NULL, 0); /* this descriptor sees the file truncated */
			return;
		}
	}
	rv = fs__pin(fs, ino, &p);
	if (rv == 0)
		rv = fs__read(fs, &p, &r, &n);
	if (rv == -ENOENT) {
		fuse_reply_buf(req, NULL, 0); /* deleted since it was opened: end of file */
		return;
	}
	if (rv != 0) {
		fuse_reply_err(req, -rv);
		return;
	}
	if (off < 0 || (uint64_t)off >= (uint64_t)n.stat.data_length) {
		fuse_reply_buf(req, NULL, 0);
	} else {
		size_t left = (size_t)n.stat.data_length - (size_t)off;

		fuse_reply_buf(req, (const char *)n.data + off, size < left ? size : left);
	}
	st_rend(r);
}

static void fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct fs__fh *fh = (struct fs__fh *)(uintptr_t)fi->fh;

	if (fh && fh->type == FS__FH_MULTI) {
		fs__multi_write(req, fh, buf, size);
		return;
	}
	if (!fh || fh->type != FS__FH_NODE) {
		fuse_reply_err(req, EBADF);
		return;
	}
	if (atomic_load(&fh->expired)) {
		fuse_reply_err(req, -ZT_ESESSIONEXPIRED);
		return;
	}
	fs__w_submit(req, fh, FS__W_WRITE, off, buf, size);
}

static void fs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs__fh *fh = (struct fs__fh *)(uintptr_t)fi->fh;
	int pending = 0;

	if (fh && fh->type == FS__FH_NODE) {
		pthread_mutex_lock(&fh->lock);
		pending = fh->trunc_pending;
		pthread_mutex_unlock(&fh->lock);
	}
	/* O_TRUNC and no write yet: only the opener's own last close commits the empty value. A
	 * forked child closing its copy (another process) or the opener closing one of several
	 * descriptors of it (dup) must not. */
	if (pending && fs__tgid(fuse_req_ctx(req)->pid) == fh->opener &&
	    !fs__still_open(fs__of(req), fh->opener, fh->in->ino))
		fs__w_submit(req, fh, FS__W_FLUSH, 0, NULL, 0);
	else
		fuse_reply_err(req, 0);
}

static int fs__session_count_cb(void *arg, int64_t owner, uint32_t nnodes)
{
	(void)owner;
	*(uint32_t *)arg += nnodes;
	return 0;
}

/*
 * Does SESSION own no node in this node's applied tree? Only for the session of an FS__FH_NODE:
 * its one create was applied here before the open returned (read-your-writes) and nothing else
 * ever creates a node it owns (a rename keeps the owner, so the count cannot grow), so zero here
 * is zero everywhere for good and its close would commit nothing (a lock cycle: create, unlink,
 * close: two commits, not three). 0 when it cannot tell (then the close is committed).
 */
static int fs__session_empty(struct fs *fs, int64_t session)
{
	struct st_rtxn *r;
	uint32_t n = 0;
	int rv;

	if (fs__rbegin(fs, NULL, &r) != 0)
		return 0;
	rv = zt_sessions(r, (uint64_t)session, (uint64_t)session, fs__session_count_cb, &n);
	st_rend(r);
	return rv == 0 && n == 0;
}

static void fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs__fh *fh = (struct fs__fh *)(uintptr_t)fi->fh;
	int now = 0, pending = 0;
	int64_t session = 0;

	if (fh) {
		pthread_mutex_lock(&fh->lock);
		fh->released = 1;
		pending = fh->type == FS__FH_NODE && fh->trunc_pending;
		now = !pending && !fh->busy && !fh->wait_head;
		pthread_mutex_unlock(&fh->lock);
		if ((fh->type == FS__FH_NODE || fh->type == FS__FH_MULTI) &&
		    !atomic_load(&fh->expired))
			session = atomic_load(&fh->session);
		if (fh->type == FS__FH_WATCH)
			fs__watch_release(fh);
		if (now && fh->type == FS__FH_SNAP)
			now = atomic_fetch_sub(&fh->refs, 1) == 1;
	}
	if (session != 0)
		fs_debug("release of handle %p of session 0x%" PRIx64 " (pid %d)", (void *)fh,
			 (uint64_t)session, (int)fuse_req_ctx(req)->pid);
	if (session != 0 && fh->type == FS__FH_NODE && fs__session_empty(fs__of(req), session)) {
		fs_debug("session 0x%" PRIx64 " owns nothing: closed without a commit",
			 (uint64_t)session);
		session = 0;
	}
	/* Freed before anything can answer the RELEASE: once answered, the kernel may drop the
	 * inode and FORGET it (fs__fh_free touches it), and the session's close below may be
	 * answered on the apply thread before this one goes on. */
	if (now)
		fs__fh_free(fh);
	if (session != 0) {
		/* The last close of the file that created an ephemeral node ends its session
		 * (the kernel sends RELEASE once no write on it is in flight). */
		int rv = fs__session_close(fs__of(req), pending ? NULL : req, session, NULL);

		if (rv != 0 && rv != -ESHUTDOWN) {
			fs_warn("session 0x%" PRIx64 " not closed yet: %s (will retry)",
				(uint64_t)session, strerror(-rv));
			fs__session_retry(fs__of(req), session);
		} else if (rv == 0 && !pending)
			req = NULL; /* answered once the session's close is committed */
	}
	if (pending) {
		/* Every close skipped the commit (the opener held another descriptor of the node
		 * each time): the truncation is still owed. The commit's outcome frees the fh. */
		fs__w_submit(req, fh, FS__W_RELEASE, 0, NULL, 0);
		return;
	}
	if (req)
		fuse_reply_err(req, 0);
}

static void fs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0); /* every acknowledged write is already durable */
}

/* A directory listing, taken when it is opened (offsets index into it). */
struct fs__dent {
	char *name;
	enum fs__kind kind;
	struct zt_stat stat;
};

/* Owned by the open directory handle; the kernel serialises readdir on one handle. */
struct fs__dir {
	struct fs__hlink link; /* first: on fs->handles */
	char path[FS__PATH_CAP];
	uint64_t ino;
	struct fs__dent *v;
	size_t n;
	size_t cap;
	int err;
	uint64_t eseq0[FS__ESEQ_N]; /* fs__eseq of each slot before the listing was read */
};

static int fs__dir_add(struct fs__dir *d, const char *name, enum fs__kind kind,
		       const struct zt_stat *st)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		struct fs__dent *v = realloc(d->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		d->v = v;
		d->cap = cap;
	}
	d->v[d->n].name = strdup(name);
	if (!d->v[d->n].name)
		return -ENOMEM;
	d->v[d->n].kind = kind;
	if (st)
		d->v[d->n].stat = *st;
	else
		memset(&d->v[d->n].stat, 0, sizeof(d->v[d->n].stat));
	d->n++;
	return 0;
}

static int fs__dir_cb(void *arg, const char *name, const struct zt_node *child)
{
	struct fs__dir *d = arg;
	enum fs__kind kind =
	    (child->flags & ZT_NODE_DIR) || child->stat.num_children > 0 ? FS__K_DIR : FS__K_FILE;

	d->err = fs__dir_add(d, name, kind, &child->stat);
	return d->err != 0;
}

static void fs__dir_free(struct fs__dir *d)
{
	fs__hlink_del(&d->link);
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].name);
	free(d->v);
	free(d);
}

static void fs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs__of(req);
	struct fs__dir *d = calloc(1, sizeof(*d));
	struct st_rtxn *r;
	struct zt_node n;
	struct fs__pin p;
	int rv;

	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fs__hlink_add(fs, &d->link, 1);
	rv = fs__pin(fs, ino, &p);
	if (rv != 0)
		goto err;
	d->ino = ino;
	snprintf(d->path, sizeof(d->path), "%s", p.path);
	if (p.kind == FS__K_CTL) {
		rv = fs__dir_add(d, "status", FS__K_STATUS, NULL);
		if (rv == 0)
			rv = fs__dir_add(d, FS__SYNC_NAME, FS__K_STATUS, NULL);
		for (size_t i = 0; rv == 0 && i < FS__NMODES; i++)
			rv = fs__dir_add(d, fs__modes[i].name, FS__K_MIRROR, NULL);
		if (rv == 0)
			rv = fs__dir_add(d, "multi", FS__K_MULTI, NULL);
		if (rv != 0)
			goto err;
	} else if (p.kind == FS__K_MIRROR) {
		/* Empty: names appear here only to be created. */
	} else if (p.kind == FS__K_DIR) {
		if (fs__is_root(p.path)) {
			rv = fs__dir_add(d, FS__CTL_NAME, FS__K_CTL, NULL);
			if (rv != 0)
				goto err;
		}
		uint64_t all = atomic_load(&fs->eseq_all);

		for (size_t i = 0; i < FS__ESEQ_N; i++)
			d->eseq0[i] = all + atomic_load(&fs->eseq[i]);
		/* The listing carries its children's attributes (READDIRPLUS), which a change of
		 * a child reported to this node must be in: wait for every reported change. */
		rp_read_wait(fs->rp, 0);
		rv = fs__read(fs, &p, &r, &n);
		if (rv != 0)
			goto err;
		rv = zt_list(r, p.node, fs__dir_cb, d);
		st_rend(r);
		if (rv == 0)
			rv = d->err;
		if (rv != 0)
			goto err;
	} else {
		rv = -ENOTDIR;
		goto err;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	fuse_reply_open(req, fi);
	return;
err:
	fs__dir_free(d);
	fuse_reply_err(req, -rv);
}

static void fs__readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi, int plus)
{
	struct fs *fs = fs__of(req);
	struct fs__dir *d = (struct fs__dir *)(uintptr_t)fi->fh;
	char *buf = malloc(size), child[FS__PATH_CAP];
	size_t used = 0;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (size_t i = off < 0 ? 0 : (size_t)off; i < d->n + 2; i++) {
		struct fuse_entry_param e;
		struct fs__inode *in = NULL;
		const char *name;
		size_t need;

		memset(&e, 0, sizeof(e));
		if (i < 2) {
			name = i == 0 ? "." : "..";
			e.attr.st_ino = i == 0 ? d->ino : FUSE_ROOT_ID;
			e.attr.st_mode = S_IFDIR;
		} else {
			const struct fs__dent *de = &d->v[i - 2];

			name = de->name;
			if (plus) {
				if (fs__path_join(child, sizeof(child), d->path, name) != 0)
					continue;
				pthread_mutex_lock(&fs->it.lock);
				in = fs__it_ref(&fs->it, child, de->kind, de->stat.czxid);
				pthread_mutex_unlock(&fs->it.lock);
				if (!in)
					break;
				fs__entry(fs, in, de->kind,
					  de->kind == FS__K_CTL || de->kind == FS__K_STATUS ||
						  de->kind == FS__K_MIRROR ||
						  de->kind == FS__K_MULTI
					      ? NULL
					      : &de->stat,
					  &e);
				/* the listing is of opendir's time: a child deleted since may
				 * have had its invalidation already (fs__entry_fresh) */
				if (de->kind == FS__K_FILE || de->kind == FS__K_DIR)
					fs__entry_fresh(fs, child,
							d->eseq0[fs__eseq_slot(child)], &e);
			} else {
				/* readdir(3) skips entries with inode 0: use the node's inode when
				 * the kernel has one, else a number from its czxid (top bit set, so
				 * it never collides with an inode number we hand out). */
				if (fs__path_join(child, sizeof(child), d->path, name) == 0) {
					struct fs__inode *cin;

					pthread_mutex_lock(&fs->it.lock);
					cin = fs__it_find(&fs->it, child);
					e.attr.st_ino = cin ? cin->ino : 0;
					pthread_mutex_unlock(&fs->it.lock);
				}
				if (e.attr.st_ino == 0)
					e.attr.st_ino =
					    (ino_t)((1ULL << 63) | (uint64_t)de->stat.czxid |
						    (uint64_t)(i + 1) << 40);
				e.attr.st_mode = de->kind == FS__K_DIR || de->kind == FS__K_CTL ||
							 de->kind == FS__K_MIRROR
						     ? S_IFDIR
						     : S_IFREG;
			}
		}
		if (plus)
			need = fuse_add_direntry_plus(req, buf + used, size - used, name, &e,
						      (off_t)(i + 1));
		else
			need = fuse_add_direntry(req, buf + used, size - used, name, &e.attr,
						 (off_t)(i + 1));
		if (need > size - used) {
			if (in) {
				/* Not sent: the kernel did not get this lookup. */
				pthread_mutex_lock(&fs->it.lock);
				fs__it_forget(&fs->it, in->ino, 1);
				pthread_mutex_unlock(&fs->it.lock);
			}
			break;
		}
		used += need;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	fs__readdir(req, ino, size, off, fi, 0);
}

static void fs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	struct fs *fs = fs__of(req);

	pthread_rwlock_rdlock(&fs->pc_rw); /* see fs__getattr_locked */
	fs__readdir(req, ino, size, off, fi, 1);
	pthread_rwlock_unlock(&fs->pc_rw);
}

static void fs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fs__dir_free((struct fs__dir *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void fs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

static void fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_namemax = ZT_NAME_MAX;
	fuse_reply_statfs(req, &sv);
}

#define FS__XATTR_PREFIX "user.zk."

static const char *const fs__xattr_names[] = {
    "version", "cversion", "aversion",	     "czxid",	   "mzxid",	  "pzxid",
    "ctime",   "mtime",	   "ephemeralOwner", "dataLength", "numChildren",
};
#define FS__NXATTR (sizeof(fs__xattr_names) / sizeof(fs__xattr_names[0]))

/* The value of stat field NAME (without prefix) as zkCli prints it; length, or -ENODATA. */
static int fs__xattr_value(const char *name, const struct zt_stat *s, char *buf, size_t cap)
{
	if (strcmp(name, "version") == 0)
		return snprintf(buf, cap, "%" PRId32, s->version);
	if (strcmp(name, "cversion") == 0)
		return snprintf(buf, cap, "%" PRId32, s->cversion);
	if (strcmp(name, "aversion") == 0)
		return snprintf(buf, cap, "%" PRId32, s->aversion);
	if (strcmp(name, "czxid") == 0)
		return snprintf(buf, cap, "0x%" PRIx64, (uint64_t)s->czxid);
	if (strcmp(name, "mzxid") == 0)
		return snprintf(buf, cap, "0x%" PRIx64, (uint64_t)s->mzxid);
	if (strcmp(name, "pzxid") == 0)
		return snprintf(buf, cap, "0x%" PRIx64, (uint64_t)s->pzxid);
	if (strcmp(name, "ctime") == 0)
		return snprintf(buf, cap, "%" PRId64, s->ctime);
	if (strcmp(name, "mtime") == 0)
		return snprintf(buf, cap, "%" PRId64, s->mtime);
	if (strcmp(name, "ephemeralOwner") == 0)
		return snprintf(buf, cap, "0x%" PRIx64, (uint64_t)s->ephemeral_owner);
	if (strcmp(name, "dataLength") == 0)
		return snprintf(buf, cap, "%" PRId32, s->data_length);
	if (strcmp(name, "numChildren") == 0)
		return snprintf(buf, cap, "%" PRId32, s->num_children);
	return -ENODATA;
}

static void fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct fs *fs = fs__of(req);
	struct st_rtxn *r;
	struct zt_node n;
	struct fs__pin p;
	char val[64];
	int rv, len;

	if (strncmp(name, FS__XATTR_PREFIX, strlen(FS__XATTR_PREFIX)) != 0) {
		rv = -ENODATA;
		goto err;
	}
	rv = fs__pin(fs, ino, &p);
	if (rv != 0)
		goto err;
	if (!fs__is_node(p.kind)) {
		rv = -ENODATA;
		goto err;
	}
	rv = fs__read(fs, &p, &r, &n);
	if (rv != 0)
		goto err;
	st_rend(r);
	if (strcmp(name, FS__XATTR_PREFIX "path") == 0) {
		/* The node's full path (not listed: getfattr -d shows the stat only). Through an
		 * open descriptor of a node created under .zk/MODE, the name it was given. */
		len = (int)strlen(p.node);
		if (size == 0) {
			fuse_reply_xattr(req, (size_t)len);
		} else if (size < (size_t)len) {
			fuse_reply_err(req, ERANGE);
		} else {
			fuse_reply_buf(req, p.node, (size_t)len);
		}
		return;
	}
	len = fs__xattr_value(name + strlen(FS__XATTR_PREFIX), &n.stat, val, sizeof(val));
	if (len < 0) {
		rv = len;
		goto err;
	}
	if (size == 0) {
		fuse_reply_xattr(req, (size_t)len);
		return;
	}
	if (size < (size_t)len) {
		rv = -ERANGE;
		goto err;
	}
	fuse_reply_buf(req, val, (size_t)len);
	return;
err:
	fuse_reply_err(req, -rv);
}

static void fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs *fs = fs__of(req);
	char buf[512];
	size_t len = 0;
	struct fs__pin p;
	int rv = fs__pin(fs, ino, &p);

	if (rv != 0) {
		fuse_reply_err(req, -rv);
		return;
	}
	if (fs__is_node(p.kind)) {
		for (size_t i = 0; i < FS__NXATTR; i++)
			len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s",
						FS__XATTR_PREFIX, fs__xattr_names[i]) +
			       1;
	}
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, buf, len);
}

#define FS__XATTR_EXPECT FS__XATTR_PREFIX "expect_version"

/* Parse a decimal int32 of SIZE bytes (no NUL needed) into *OUT. 0 or -EINVAL. */
static void fs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	struct fs *fs = fs__of(req);
	struct fs__pin p;
	int32_t version;
	int rv;

	if (strcmp(name, FS__XATTR_EXPECT) != 0) {
		/* The stat is the tree's to maintain; other attributes have nowhere to live. */
		rv = strncmp(name, FS__XATTR_PREFIX, strlen(FS__XATTR_PREFIX)) == 0 ? -EPERM
										    : -ENOTSUP;
		goto out;
	}
	/* Not stored: the next write(2) or unlink of this node by this process requires that
	 * version (see fs__expect). -1 clears it. */
	rv = fs__pin(fs, ino, &p);
	if (rv != 0)
		goto out;
	if (!fs__is_node(p.kind)) {
		rv = -EPERM;
		goto out;
	}
	rv = fs__parse_i32(value, size, &version);
	if (rv != 0)
		goto out;
	rv = fs__expect_set(fs, p.node, fs__tgid(fuse_req_ctx(req)->pid), version, 0);
out:
	fuse_reply_err(req, -rv);
}

static void fs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct fs *fs = fs__of(req);
	struct fs__pin p;
	int rv;

	if (strcmp(name, FS__XATTR_EXPECT) != 0) {
		rv = strncmp(name, FS__XATTR_PREFIX, strlen(FS__XATTR_PREFIX)) == 0 ? -EPERM
										    : -ENODATA;
		goto out;
	}
	rv = fs__pin(fs, ino, &p);
	if (rv == 0)
		rv = fs__expect_set(fs, p.node, fs__tgid(fuse_req_ctx(req)->pid), -1, 0);
out:
	fuse_reply_err(req, -rv);
}

static const struct fuse_lowlevel_ops fs__ops = {
    .init = fs_init,
    .lookup = fs_lookup,
    .forget = fs_forget,
    .forget_multi = fs_forget_multi,
    .getattr = fs_getattr,
    .setattr = fs_setattr,
    .mknod = fs_mknod,
    .mkdir = fs_mkdir,
    .unlink = fs_unlink,
    .rmdir = fs_rmdir,
    .symlink = fs_symlink,
    .link = fs_link,
    .rename = fs_rename,
    .open = fs_open,
    .read = fs_read,
    .write = fs_write,
    .flush = fs_flush,
    .release = fs_release,
    .fsync = fs_fsync,
    .opendir = fs_opendir,
    .readdir = fs_readdir,
    .readdirplus = fs_readdirplus,
    .releasedir = fs_releasedir,
    .fsyncdir = fs_fsyncdir,
    .statfs = fs_statfs,
    .setxattr = fs_setxattr,
    .getxattr = fs_getxattr,
    .listxattr = fs_listxattr,
    .removexattr = fs_removexattr,
    .create = fs_create,
    .poll = fs_poll,
};

/* ------------------------------------------------------------------ life cycle */

int fs_new(const struct fs_config *cfg, struct fs **out)
{
	struct fs *fs = calloc(1, sizeof(*fs));
	int rv;

	if (!fs)
		return -ENOMEM;
	fs->cfg = *cfg;
	if (fs->cfg.session_timeout_ms == 0)
		fs->cfg.session_timeout_ms = 10000;
	pthread_mutex_init(&fs->slock, NULL);
	pthread_cond_init(&fs->scond, NULL);
	pthread_mutex_init(&fs->hlock, NULL);
	pthread_mutex_init(&fs->xlock, NULL);
	pthread_mutex_init(&fs->wlock, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&fs->pc_cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	{
		pthread_rwlockattr_t ra;

		pthread_rwlockattr_init(&ra);
		pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		pthread_rwlock_init(&fs->pc_rw, &ra);
		pthread_rwlockattr_destroy(&ra);
	}
	fs->watches = calloc(FS__WATCH_BUCKETS, sizeof(*fs->watches));
	if (!fs->watches) {
		free(fs);
		return -ENOMEM;
	}
	clock_gettime(CLOCK_REALTIME, &fs->started);
	rv = fs__queue_start(&fs->qinode);
	if (rv != 0)
		goto err;
	rv = fs__queue_start(&fs->qentry);
	if (rv != 0) {
		fs__queue_stop(&fs->qinode, 2000);
		goto err;
	}
	fs->qstarted = 1;
	atomic_store(&fs->mnt_id, -1);
	*out = fs;
	return 0;
err:
	free(fs->watches);
	free(fs);
	return rv;
}

/* zt_sessions callback: count the owners. */
static int fs__owner_cb(void *arg, int64_t owner, uint32_t nnodes)
{
	(void)owner;
	(void)nnodes;
	(*(size_t *)arg)++;
	return 0;
}

/* Start the session thread; when ephemerals of a previous run of this node exist, wait (up to
 * FS__SESSION_WAIT_MS) until the new epoch deleted them. 0 or a negative errno. */
static int fs__sess_start(struct fs *fs)
{
	uint64_t lo = (uint64_t)fs->node_id << 56;
	struct st_rtxn *r;
	size_t old = 0;
	int rv = fs__rbegin(fs, NULL, &r);

	if (rv != 0)
		return rv;
	rv = zt_sessions(r, lo, lo | 0x00ffffffffffffffULL, fs__owner_cb, &old);
	st_rend(r);
	if (rv != 0)
		return rv;
	rv = -pthread_create(&fs->sthread, NULL, fs__sess_main, fs);
	if (rv != 0)
		return rv;
	fs->sstarted = 1;
	if (old > 0) {
		int64_t id;

		if (fs__session_new(fs, FS__SESSION_WAIT_MS, &id) == 0)
			fs_info("%zu session(s) of a previous run of this node closed", old);
	}
	return 0;
}

int fs_attach(struct fs *fs, struct rp *rp)
{
	struct st_rtxn *r;
	struct zt_node n;
	char status[FS__STATUS_CAP];
	const char *id;
	int rv;

	fs->rp = rp;
	fs->env = rp_env(rp);
	rv = fs__rbegin(fs, NULL, &r);
	if (rv != 0)
		return rv;
	rv = zt_get(r, "/", &n);
	st_rend(r);
	if (rv != 0)
		return rv == -ENOENT ? -EIO : rv;
	/* The replica's id names this node's sessions (see fs__session_new). */
	fs->node_id = 1;
	if (rp_status(rp, status, sizeof(status)) > 0 &&
	    ((id = strstr(status, "\nid=")) != NULL || strncmp(id = status, "id=", 3) == 0)) {
		unsigned long v = strtoul(id + (id[0] == '\n' ? 4 : 3), NULL, 10);

		if (v >= 1 && v <= 255)
			fs->node_id = (uint32_t)v;
	}
	rv = fs__sess_start(fs);
	if (rv != 0)
		return rv;
	rv = fs__it_init(&fs->it, n.stat.czxid);
	if (rv != 0)
		return rv;
	atomic_store(&fs->attached, 1);
	return 0;
}

int fs_session_new(struct fs *fs, struct fuse_args *args, struct fuse_session **out)
{
	struct fuse_session *se = fuse_session_new(args, &fs__ops, sizeof(fs__ops), fs);

	if (!se)
		return -EINVAL;
	atomic_store(&fs->se, se);
	*out = se;
	return 0;
}

void fs_detach(struct fs *fs)
{
	if (!fs->sstarted)
		return;
	pthread_mutex_lock(&fs->slock);
	fs->sstop = 1;
	pthread_cond_broadcast(&fs->scond);
	pthread_mutex_unlock(&fs->slock);
	pthread_join(fs->sthread, NULL);
	fs->sstarted = 0;
}

void fs_stop(struct fs *fs)
{
	if (!fs->qstarted)
		return;
	if (fs__queue_stop(&fs->qinode, 2000) != 0)
		fs->stuck = 1;
	if (fs__queue_stop(&fs->qentry, 2000) != 0)
		fs->stuck = 1;
	if (fs->stuck)
		fs_warn("an invalidation thread is stuck in the kernel; leaving it");
	fs->qstarted = 0;
}

void fs_free(struct fs *fs)
{
	if (!fs)
		return;
	fs_stop(fs);
	if (fs->stuck)
		return; /* a stuck thread still refers to FS */
	/* Handles the kernel never released (the mount went away with files open). */
	while (fs->handles) {
		if (fs->handles->is_dir)
			fs__dir_free((struct fs__dir *)fs->handles);
		else
			fs__fh_free((struct fs__fh *)fs->handles);
	}
	pthread_mutex_destroy(&fs->hlock);
	while (fs->expects) {
		struct fs__expect *x = fs->expects;

		fs->expects = x->next;
		free(x);
	}
	pthread_mutex_destroy(&fs->xlock);
	pthread_mutex_destroy(&fs->wlock);
	fs_detach(fs);
	pthread_mutex_destroy(&fs->slock);
	pthread_cond_destroy(&fs->scond);
	pthread_cond_destroy(&fs->pc_cond);
	pthread_rwlock_destroy(&fs->pc_rw);
	free(fs->watches);
	if (atomic_load(&fs->attached))
		fs__it_destroy(&fs->it);
	free(fs);
}
