/*
 * rp: the replication interface. fs/ submits tree transactions here and is told when they are
 * committed (durable) and applied; it reads the applied tree through rp_env() + zt.h.
 *
 * Two implementations sit behind it: rp_open_local() (single node: a storage thread batches every
 * transaction that arrives while one LMDB commit is in flight into the next commit: group commit),
 * and, in the cluster issue, the Multi-Paxos replica. fs/ does not know which one it talks to.
 *
 * Order: transactions submitted by one caller thread in sequence are applied in that order (FIFO).
 * Notification order for each committed batch: first on_change for every change (after the commit is
 * durable and visible to new read snapshots), then each submitter's done callback.
 */
#ifndef QFS_CONSENSUS_RP_H
#define QFS_CONSENSUS_RP_H

#include <stddef.h>
#include <stdint.h>

#include "store/st.h"
#include "store/zt.h"

struct rp;

/*
 * Outcome of a submitted transaction, on the replica's apply thread.
 * status: 0 when the transaction was committed and applied: res[0..nres) then holds each op's
 *   outcome (res[i].err may be a ZT_E* rejection). Negative when it was not committed: -ENOSPC,
 *   -EROFS, -EIO (storage), -ETIMEDOUT (no quorum in time; outcome unknown), -ESHUTDOWN (closing).
 * zxid: the transaction's zxid when status is 0.
 * res is valid only during the call (the replica frees it).
 * The callback must not block on the replica (no rp_submit-and-wait); it may call rp_submit.
 */
typedef void (*rp_done_cb)(void *arg, int status, uint64_t zxid, const struct zt_result *res,
                           uint32_t nres);

/* Called on the apply thread for each change of each committed transaction (see zt_change). Must not
 * block for long: fs/ hands kernel cache invalidations to a thread of its own. */
typedef void (*rp_change_cb)(void *arg, const struct zt_change *ch);

struct rp_config {
	const char *data_dir;
	unsigned st_flags;     /* ST_F_* */
	rp_change_cb on_change; /* may be NULL */
	void *change_arg;
	uint32_t max_batch;    /* transactions per commit at most; 0: default (4096) */
};

/*
 * Open the single-node replica on cfg->data_dir and start its storage thread.
 * Errors: those of st_open (-EBUSY when another daemon holds the directory), -ENOMEM.
 */
int rp_open_local(const struct rp_config *cfg, struct rp **out);

/*
 * Submit one tree transaction (nops > 1: all-or-nothing multi). The ops (paths, data) are copied
 * before return. On success CB runs exactly once, later, on the apply thread. On failure (return
 * -EINVAL for ops that can never be valid, e.g. data over ZT_MAX_DATA -> -EFBIG, -ENOMEM,
 * -ESHUTDOWN) CB never runs. -EINVAL covers: nops 0 or over 65536, bad op type, NULL path (or path2
 * of a rename), data NULL with len > 0, a path of ZT_PATH_MAX bytes or more. -EFBIG also when
 * the ops of one transaction carry more than 16 MiB in all. A path that is merely
 * malformed is not refused here: it commits with res[i].err = ZT_EBADARGS, as in ZooKeeper.
 * Thread-safe: any thread.
 */
int rp_submit(struct rp *rp, const struct zt_op *ops, uint32_t nops, rp_done_cb cb, void *arg);

/* The environment to read the applied tree from (st_rbegin + zt_get/zt_list). */
struct st_env *rp_env(struct rp *rp);

/* This node's state as "key=value\n" lines: at least id=, role=, leader=, applied= (zxid, 0x hex).
 * rp_local adds commits= (successful LMDB commits) and txns= (transactions they carried).
 * Writes at most CAP bytes including the NUL; returns the length it needed (like snprintf). */
int rp_status(struct rp *rp, char *buf, size_t cap);

/* Stop: transactions not yet committed complete with -ESHUTDOWN; waits for the storage thread.
 * Not from inside a callback of this replica (it would wait for itself). */
void rp_close(struct rp *rp);

#endif
