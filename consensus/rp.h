/*
 * rp: the replication interface. fs/ submits tree transactions here and is told when they are
 * committed (durable) and applied; it reads the applied tree through rp_env() + zt.h.
 *
 * Two implementations sit behind it: rp_open_local() (single node: a storage thread batches every
 * transaction that arrives while one LMDB commit is in flight into the next commit: group commit),
 * and, in the cluster issue, the Multi-Paxos replica. fs/ does not know which one it talks to.
 *
 * Order: transactions submitted by one caller thread in sequence are applied in that order (FIFO).
 * Notification order for each committed batch: first on_change for every change (after the commit
 * is durable and visible to new read snapshots), then each submitter's done callback.
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

/* Called on the apply thread for each change of each committed transaction (see zt_change). Must
 * not block for long: fs/ hands kernel cache invalidations to a thread of its own. */
typedef void (*rp_change_cb)(void *arg, const struct zt_change *ch);

struct rp_config {
	const char *data_dir;
	unsigned st_flags;	/* ST_F_* */
	rp_change_cb on_change; /* may be NULL */
	void *change_arg;
	uint32_t max_batch; /* transactions per commit at most; 0: default (4096) */
};

/*
 * The Multi-Paxos replica (rp_open_paxos): one daemon of a cluster of NPEERS nodes.
 *
 * Node ids are 1..255 (the id of the peer network, io_net_uv.h); the protocol core numbers the
 * nodes 0..n-1 in ascending id order, so every node must be given the same peer list. Times are
 * milliseconds. Every field that is 0 takes the default named next to it.
 */
#define RP_MAX_PEERS   9
#define RP_SECRET_LEN  32
#define RP_CLUSTER_LEN 16

struct rp_peer {
	uint32_t id;   /* 1..255 */
	char host[64]; /* numeric IPv4 or IPv6 address */
	uint16_t port;
};

enum rp_log_level { RP_LOG_DEBUG = 0, RP_LOG_INFO, RP_LOG_WARN, RP_LOG_ERROR };
/* One log line (no newline) from the replica's threads; must not block for long. */
typedef void (*rp_log_cb)(void *arg, enum rp_log_level level, const char *msg);

struct rp_cluster_config {
	uint32_t self_id; /* must appear in peers[] */
	uint32_t npeers;  /* including self: odd, 1..RP_MAX_PEERS */
	struct rp_peer peers[RP_MAX_PEERS];
	uint8_t secret[RP_SECRET_LEN];	    /* shared by every node of the cluster */
	uint8_t cluster_id[RP_CLUSTER_LEN]; /* all zero: the one stored in data_dir, or (first
					       start) chosen by the lowest id and learnt by the
					       others at the handshake */
	uint32_t tick_ms;		    /* leader heartbeat; 0: 50 */
	uint32_t election_ticks;	    /* election timeout in ticks, randomised up to
					       twice that; 0: 10 */
	uint32_t session_timeout_ms;	    /* this node's negotiated session timeout (the
					       leader expires each node by the timeout its
					       session record holds, zt.h); 0: 10000 */
	uint32_t write_timeout_ms;	    /* a write not applied by then: -ETIMEDOUT; 0: 10000 */
	uint32_t snapshot_every;	    /* applied slots between compactions; 0: 10000 */
	uint32_t snapshot_keep;		    /* chosen slots kept below a compaction; 0: 1000 */
	int join;			    /* an empty data_dir replaces a node that lost its
					       disk: start as a learner that does not vote
					       until it is safe (px_node.h); 0: an empty data_dir
					       is a member of a brand-new cluster */
	rp_log_cb on_log;		    /* may be NULL */
	void *log_arg;
};

/*
 * Open the single-node replica on cfg->data_dir and start its storage thread.
 * Errors: those of st_open (-EBUSY when another daemon holds the directory), -ENOMEM.
 */
int rp_open_local(const struct rp_config *cfg, struct rp **out);

/*
 * Open this node's Multi-Paxos replica on cfg->data_dir (cfg as for rp_open_local; max_batch is
 * ignored) and start it: a loop thread (peer network, protocol core, timers) and a storage thread
 * (LMDB group commits of acceptor state and applied transactions). Returns once the node listens.
 * Writes (rp_submit) are forwarded to the leader, chosen, and completed on this node's apply
 * thread once applied here, before that apply's commit (read-your-writes through rp_read_wait);
 * -ETIMEDOUT after cl->write_timeout_ms (outcome
 * unknown: it may still be applied, once). Reads see this node's applied tree (may lag the leader).
 * Other outcomes: -EIO (this node's storage failed: it then recreates its replica from disk and
 * rejoins; the write may still be applied), -ENOBUFS (too many writes pending at this node; never
 * proposed), -ENOMEM, -ESHUTDOWN. A transaction's time_ms (ctime/mtime) is the leader's wall
 * clock when it proposed the batch that holds it, never below a time the leader knows was given
 * before: the same on every replica, and never decreasing along the log (px_batch.h). A node of
 * another protocol version (IO_NET_PROTO, PX_MSG_VERSION: 2 since batches carry that stamp) is
 * refused at the handshake.
 * After a snapshot install (the node was too far behind) on_change reports NODE_DATA_CHANGED and
 * NODE_CHILDREN_CHANGED for "/" only: the whole tree may have changed.
 * rp_status adds ballot= (round.node), chosen= and commit= (slots), applied_slot=,
 * snapshots_sent=, snapshots_installed=, core_restarts=, commits= (LMDB commits), caught_up=
 * (rp_read_barrier's state:
 * 1 once reads are served), one "peer.ID=up|down" line per other
 * node; role= may also be "restarting" (the core is being recreated from disk).
 * Process-wide effect: SIGPIPE is set to SIG_IGN if its disposition is the default (a peer that
 * closes its end must not kill the daemon).
 * Errors: -EINVAL (bad config; a data_dir whose tree was written by rp_open_local), those of
 * st_open, -EADDRINUSE and the other listen errors (negated errno), -ENOMEM.
 */
int rp_open_paxos(const struct rp_config *cfg, const struct rp_cluster_config *cl, struct rp **out);

/*
 * Submit one tree transaction (nops > 1: all-or-nothing multi). The ops (paths, data) are copied
 * before return. On success CB runs exactly once, later, on the apply thread. On failure (return
 * -EINVAL for ops that can never be valid, e.g. data over ZT_MAX_DATA -> -EFBIG, -ENOMEM,
 * -ESHUTDOWN) CB never runs. -EINVAL covers: nops 0 or over RP_MAX_OPS, bad op type, NULL path
 * (or path2 of a rename), data NULL with len > 0, a path of ZT_PATH_MAX bytes or more. -EFBIG also
 * when the ops of one transaction need more than RP_TXN_BYTES in all. These checks are made here,
 * once, before the backend sees the transaction (rp_api.c). A path that is merely
 * malformed is not refused here: it commits with res[i].err = ZT_EBADARGS, as in ZooKeeper.
 * Thread-safe: any thread.
 */
#define RP_MAX_OPS   65536		  /* ops per transaction */
#define RP_TXN_BYTES ((size_t)16 << 20) /* a transaction's ops, strings, data and results */
int rp_submit(struct rp *rp, const struct zt_op *ops, uint32_t nops, rp_done_cb cb, void *arg);

/*
 * Reads of a node that has just started (ZooKeeper: a server serves clients once it synced with
 * the leader). Returns once this node may serve reads: at once for rp_open_local and, for a
 * cluster node, once it applied every slot the leader had chosen when this node first heard from
 * it (so its first read is never older than what it missed while down), or, without a leader
 * within cl->write_timeout_ms after start, then (a node in a minority serves its local state, and
 * logs it). Afterwards it returns at once; rp_status shows caught_up=1. Any thread; it may block
 * for up to write_timeout_ms.
 */
void rp_read_barrier(struct rp *rp);

/*
 * Reads after a completion. The Multi-Paxos replica runs the callbacks of a batch of chosen slots
 * (and reports its changes, on_change) once the batch is applied in the storage transaction but
 * before that transaction's commit and disk flush: the slots are durable on a majority already, so
 * the outcome is final, and a crash before the commit re-applies them from the log. A read of this
 * node's tree that must see what a callback or a change reported calls this first: it returns
 * once the transaction ZXID (0: every one reported so far) is visible to st_rbegin (at most one
 * commit away), at once when it is, on the apply thread itself (which must not wait for its own
 * commit; its reads see the tree before the batch), and after 5 s at most (the storage failed:
 * the replica restarts from disk; logged). rp_open_local completes after the commit: nothing to
 * wait for. Any thread.
 */
void rp_read_wait(struct rp *rp, uint64_t zxid);

/*
 * ZooKeeper's sync: CB(arg, status, zxid, NULL, 0) runs once every transaction committed anywhere
 * before the call is applied on this node (rp_local: once everything queued before it is
 * committed; the Multi-Paxos replica: a no-op passed through the log). status 0 with zxid = the
 * last applied zxid at that point; -ETIMEDOUT (no quorum in time), -EIO, -ESHUTDOWN as rp_submit.
 * Returns 0 (CB runs later, on the apply thread), -ENOMEM or -ESHUTDOWN (CB never runs).
 * Thread-safe: any thread.
 */
int rp_sync(struct rp *rp, rp_done_cb cb, void *arg);

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
