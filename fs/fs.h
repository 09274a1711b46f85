/*
 * fs: the znode tree as a FUSE file system (libfuse 3 low-level API).
 *
 * fs/ only translates: every change is a tree transaction submitted through rp.h and answered from
 * its done callback; reads come from LMDB snapshots (st_rbegin + zt_get/zt_list). The kernel's
 * name and attribute caches are kept exact by invalidations that follow every committed change
 * (rp's on_change), run on fs/'s own threads. A read-only open reads one committed version,
 * copied at open, through the kernel's page cache when that is exact (fs_config.read_cache; the
 * rules are at fs__pc_grant in fs.c), else past it (direct_io); each write(2) bypasses the page
 * cache, reaches the daemon as the caller's bytes and is answered once committed.
 *
 * The control directory MOUNT/.zk (not a znode): status, sync, multi (a write is one all-or-nothing
 * transaction, a read its results), the creation modes sequential/, ephemeral/ and
 * ephemeral-sequential/ (they mirror the directory nodes; a file created there is a new node, and
 * an ephemeral one lives until the open file that created it is released: a session, closed
 * through rp_submit with ZT_DELETE_SESSION; or until this node's session epoch expires: the
 * leader decides it when it has not heard from the node for the negotiated timeout, zt.h
 * ZT_OP_SESSION, consensus/io_sess.c; the open files of an expired epoch then fail writes with
 * EKEYEXPIRED), and the watch files watch/ and watch-children/ (one-shot
 * events as blocking reads, fired from fs_on_change). user.zk.expect_version (setxattr) makes the
 * caller's next write or unlink of a node conditional (mismatch: ESTALE).
 *
 * Use (one daemon):
 *   fs_new(&cfg, &fs);                      cfg.on_change of the replica: fs_on_change, arg fs
 *   rp_open_local(&rcfg, &rp);
 *   fs_attach(fs, rp);
 *   fs_session_new(fs, &args, &se); fuse_session_mount(se, mnt); ... fuse_session_loop_mt(...);
 *   fs_detach(fs); rp_close(rp); fuse_session_unmount(se); fs_stop(fs); fuse_session_destroy(se);
 *   fs_free(fs);
 */
#ifndef QFS_FS_FS_H
#define QFS_FS_FS_H

#include <sys/types.h>

#include "consensus/rp.h"
#include "store/zt.h"

struct fs;
struct fuse_args;
struct fuse_session;

struct fs_config {
	double cache_timeout; /* seconds the kernel may cache entries and attributes; exact anyway,
				 because every committed change invalidates what it touched */
	const char *mountpoint; /* absolute; identifies our descriptors in /proc/PID/fdinfo */
	int read_cache;		/* read-only opens may use the page cache (each still reads one
				   whole version; the daemon's default); 0: every read-only open
				   reads past it */
	uint32_t session_timeout_ms; /* the node session's timeout, negotiated by the caller
					within its limits; 0: 10000 */
	uid_t uid;		/* owner shown for every file (the mount's owner) */
	gid_t gid;
};

/* Create the FUSE layer and start its invalidation threads. out: freed with fs_free().
 * -ENOMEM, or a pthread error. */
int fs_new(const struct fs_config *cfg, struct fs **out);

/* The replica's change callback (rp_change_cb); ARG is the struct fs. Apply thread; never blocks on
 * the kernel (hands invalidations to fs/'s threads). */
void fs_on_change(void *arg, const struct zt_change *ch);

/* Use RP (opened with fs_on_change) from now on; reads the root and starts the session thread,
 * which opens this node's session epoch at the first ephemeral create (fs.c, "sessions"); when
 * ephemerals of a previous run of this node exist, opens it now and waits (at most 10 s) until
 * that deleted them. 0, -ENOMEM, -EIO, or a
 * pthread error. */
int fs_attach(struct fs *fs, struct rp *rp);

/* Stop the session thread (no rp_submit of FS's own after it returns). Before rp_close; fs_free
 * calls it too. Idempotent. */
void fs_detach(struct fs *fs);

/* A FUSE session (libfuse options from ARGS: -o fsname=..., allow_other, -d) whose requests FS
 * serves. The caller mounts, runs and destroys it. 0 or -EINVAL (bad options, logged). */
int fs_session_new(struct fs *fs, struct fuse_args *args, struct fuse_session **out);

/* After the session loop ended, the replica was closed (every reply handed over) and the mount
 * was unmounted: run the remaining invalidations and stop fs/'s threads. A thread stuck in the
 * kernel for over 2 s is left behind (then fs_free frees nothing; the process is exiting). */
void fs_stop(struct fs *fs);
void fs_free(struct fs *fs);

#endif
