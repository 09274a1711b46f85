/*
 * st: the LMDB environment of one replica.
 *
 * One data directory holds one LMDB environment (file DIR/data.mdb) and a lock file (DIR/LOCK) that
 * one process at a time holds with flock(2); a second opener is refused with -EBUSY.
 * The environment has named databases: the znode tree (see zt.h), metadata (last applied zxid, ids),
 * and, once the cluster exists, the acceptor state and the chosen log.
 *
 * Threads: st_open/st_close on one thread while no transaction is live. Read transactions may be
 * begun on any thread (MDB_NOTLS). One write transaction at a time, on the storage thread.
 */
#ifndef QFS_STORE_ST_H
#define QFS_STORE_ST_H

#include <stddef.h>
#include <stdint.h>

struct st_env;
struct st_rtxn; /* a read-only, consistent snapshot of the committed state */
struct st_wtxn; /* the one write transaction */

#define ST_F_NOSYNC 0x1u /* tests only: commits do not fsync (MDB_NOSYNC) */

/*
 * Open (creating if needed) the environment in directory DIR.
 * out: set on success; the caller owns it and frees it with st_close().
 * Errors: -EBUSY another process holds DIR's lock; -ENOENT/-EACCES/-ENOTDIR on DIR; -EINVAL when DIR
 * holds something that is not a quorumfs environment or one of another format version; -ENOMEM.
 */
int st_open(const char *dir, unsigned flags, struct st_env **out);
void st_close(struct st_env *env);

/* Begin a read snapshot. Pointers read through it stay valid until st_rend(). -ENOMEM, -EIO,
 * -EAGAIN (over 1000 snapshots open at once). Cheap: ended snapshots are kept and renewed. */
int st_rbegin(struct st_env *env, struct st_rtxn **out);
void st_rend(struct st_rtxn *r);

/*
 * Write transactions. st_wcommit makes everything written durable (fsync, unless ST_F_NOSYNC) and
 * visible to read snapshots begun afterwards; it frees W whatever it returns.
 * Errors of st_wcommit: -ENOSPC (disk or map full; nothing of W is kept), -EROFS, -EIO.
 * st_wbegin: -EBUSY when a write transaction is already live, -ENOMEM, -EIO.
 */
int st_wbegin(struct st_env *env, struct st_wtxn **out);
int st_wcommit(struct st_wtxn *w);
/*
 * As st_wcommit, but with one disk flush instead of two (LMDB's MDB_NOMETASYNC for this commit):
 * W is whole and visible at once and survives a process crash (kill -9), but an operating-system
 * crash or power loss before the next st_wcommit may undo W (never corrupt it, never undo an
 * earlier commit; the next st_wcommit makes W durable too). For state that can be rebuilt from
 * what was made durable before (e.g. applying chosen log entries). Storage thread only; same
 * errors as st_wcommit.
 */
int st_wcommit_lazy(struct st_wtxn *w);
void st_wabort(struct st_wtxn *w);

#endif
