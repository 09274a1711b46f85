/*
 * rp_paxos: private state of the Multi-Paxos replica (rp_open_paxos in rp.h), shared by its two
 * threads' files:
 *   io_uv.c    the loop thread: peer network (io_net_uv.h), the protocol core (px_node.h) fed with
 *              frames, timers and submissions, snapshot transfers; and the rp.h entry points.
 *   io_lmdb.c  the storage thread: one LMDB write transaction per batch of jobs (group commit):
 *              acceptor records, chosen slots applied to the tree together with the applied slot
 *              and the de-duplication filter, snapshot staging and install; then the callbacks.
 *
 * The loop thread hands work to the storage thread as jobs, in order (struct rpx_job on
 * rpx.jobs); the storage thread reports back through struct rpx_back and wakes the loop.
 *
 * A submission's value (the opaque bytes of a px_sub), version 1:
 *   u8 kind (RPX_V_TXN or RPX_V_SYNC), i64 (little-endian; the submitter's clock, informational
 *   only: a transaction's time is its batch's leader stamp, px_batch.h), then for RPX_V_TXN the
 *   zt_ops_encode bytes.
 */
#ifndef QFS_CONSENSUS_RP_PAXOS_H
#define QFS_CONSENSUS_RP_PAXOS_H

#include <pthread.h>
#include <stdint.h>
#include <uv.h>

#include "consensus/io_net_uv.h"
#include "consensus/io_wal.h"
#include "consensus/px_node.h"
#include "consensus/rp.h"
#include "consensus/rp_impl.h"
#include "store/st_lmdb.h"

#define RPX_V_TXN  1u
#define RPX_V_SYNC 2u
#define RPX_V_HDR  9u

/* Besides cl.snapshot_every slots, a snapshot (and compaction) is taken once this many value bytes
 * were applied since the last one; and at most this many bytes of chosen slots are kept below a
 * snapshot for lagging peers (besides cl.snapshot_keep slots): big transactions (a multi of
 * thousands of creates) must not keep hundreds of MiB of log in memory and on disk. */
#define RPX_SNAP_BYTES (64ull << 20)
#define RPX_KEEP_BYTES (16ull << 20)

/* One submission of this node (rp_submit / rp_sync), from the caller to its done callback.
 * Owned by the submit queue, then by the storage thread (registered), which completes it. */
struct rpx_item {
	struct rpx_item *next; /* submit queue; then hash chain in the storage thread */
	rp_done_cb cb;
	void *arg;
	uint64_t client, seq; /* the core's (client, seq), set when handed to the core */
	uint32_t nops;
	struct zt_result *res; /* nops, inside this allocation */
	uint8_t *value;	       /* inside this allocation */
	uint32_t len;
	uint64_t zxid;
	int status;
	struct rpx_item *cnext; /* completion list of one commit */
	struct rpx_job *reg;	/* its RPX_J_REGISTER job, allocated at submission */
};

enum rpx_job_type {
	RPX_J_PERSIST = 1, /* acceptor records of one px_update (persist seq a) */
	RPX_J_APPLY,	   /* chosen slot a, value buf[0..len) */
	RPX_J_ACK,	   /* px_ack for our seq a (slot b, status) */
	RPX_J_REGISTER,	   /* item is now known to the core */
	RPX_J_SNAP_BEGIN,  /* start staging a snapshot */
	RPX_J_SNAP_DATA,   /* stage chunk buf[0..len) */
	RPX_J_SNAP_END,	   /* install: slot a, state st, filter buf[0..len) */
	RPX_J_COMPACT,	   /* delete stored log records for slots <= a */
	RPX_J_CLUSTER,	   /* store cluster id buf[0..16) */
	RPX_J_FAIL_ALL,	   /* complete every registered submission with status */
	RPX_J_REBOOT,	   /* the core failed: recreate it from the durable state */
};

enum { RPX_P_PROMISE = 1, RPX_P_INIT = 2, RPX_P_COMMIT = 4 };

struct rpx_job {
	struct rpx_job *next;
	enum rpx_job_type type;
	uint64_t epoch; /* the core generation that produced it (rpx.epoch) */
	uint64_t a, b;
	uint64_t client; /* RPX_J_ACK */
	int status;
	unsigned flags;	       /* RPX_P_* */
	uint64_t promised;     /* RPX_J_PERSIST */
	uint64_t commit;       /* RPX_J_PERSIST */
	struct px_entry *ents; /* RPX_J_PERSIST: n entries, data inside buf */
	uint32_t n;
	struct rpx_item *item;
	uint64_t zxid, next_id; /* RPX_J_SNAP_END */
	uint8_t *buf;
	size_t len;
};

/* Storage thread -> loop thread; protected by rpx.back_lock. */
struct rpx_back {
	uint64_t persisted;	   /* highest durable persist seq */
	uint64_t installed;	   /* a snapshot installed up to this slot (0: none new) */
	uint8_t *installed_filter; /* its filter (px_filter_encode bytes), malloc'd */
	size_t installed_flen;
	uint64_t taken;	       /* a compaction point to report (0: none new) */
	int failed;	       /* storage failed: the node stops persisting */
	int wake_closed;       /* the loop closed its wake-up handle */
	uint64_t reboot_epoch; /* recreate the core for this epoch (0: nothing to do) */
};

/* Fields the status reads, written by the loop thread; protected by rpx.stat_lock. */
struct rpx_stat {
	enum px_role role;
	int restarting;	 /* the core is being recreated */
	uint32_t leader; /* node id (1..255), 0: none */
	uint64_t ballot, commit, delivered;
	int up[RP_MAX_PEERS];
	uint64_t snaps_sent;
};

struct rpx_snd; /* a snapshot being sent (io_uv.c) */

struct rpx {
	struct rp base;
	struct st_env *env;
	rp_change_cb on_change;
	void *change_arg;
	struct rp_cluster_config cl;
	uint32_t n;		    /* cluster size */
	uint32_t self;		    /* px id */
	uint32_t ids[RP_MAX_PEERS]; /* px id -> node id */
	uint64_t client; /* the core's client id: PX_CLIENT(self id, incarnation, 0); loop thread */
	uint64_t cseq;	 /* its last seq handed to the core; loop thread */
	uint64_t inc; /* its incarnation (px_batch.h), from rpx__load; written by the loop thread
		       * after, read atomically by the storage thread */
	int retired_logged; /* storage thread */
	MDB_dbi db_meta, db_log;    /* "px_meta", "px_log" */

	/* submissions: caller threads -> loop */
	pthread_mutex_t sub_lock;
	struct rpx_item *sub_head, **sub_tail; /* protected by sub_lock */
	uint64_t next_seq;		       /* protected by sub_lock */
	int closing;			       /* protected by sub_lock */

	/* jobs: loop -> storage thread */
	pthread_mutex_t job_lock;
	pthread_cond_t job_cond;
	struct rpx_job *job_head, **job_tail; /* protected by job_lock */
	int job_stop;			      /* protected by job_lock */

	/* back: storage thread -> loop */
	pthread_mutex_t back_lock;
	struct rpx_back back; /* protected by back_lock */

	pthread_mutex_t stat_lock;
	struct rpx_stat stat; /* protected by stat_lock */

	/* Counters, atomic. */
	uint64_t applied_slot;
	uint64_t applied_zxid; /* visible to st_rbegin */
	uint64_t shown_zxid;   /* reported (changes, callbacks) before its commit: rp_read_wait */
	/* rp_read_wait sleeps on vis_cond until applied_zxid >= shown_zxid; the storage thread
	 * broadcasts it after every commit. */
	pthread_mutex_t vis_lock;
	pthread_cond_t vis_cond;
	uint64_t snaps_installed;

	/* Loop thread. */
	pthread_t loop_thread;
	uv_loop_t loop;
	uv_async_t wake;
	uv_timer_t timer;
	uv_timer_t pump;
	struct io_net *net;
	struct px_node *px;
	int started;	    /* 1 ok, < 0 failed to start; protected by job_lock, job_cond */
	int stopping;	    /* loop only */
	int px_dead;	    /* the core failed (px is NULL) until it is recreated */
	uint64_t epoch;	    /* generation of the core: jobs carry it */
	uint64_t reboot_to; /* the storage thread is ready for a core of this epoch */
	int reboot_pushed;  /* the REBOOT job of the dead core is queued */
	struct px_config pc;
	uint64_t restarts;  /* cores recreated, atomic */
	/* Reads after start (rp_read_barrier): they wait until this node applied the leader's commit
	 * index as first heard (ready_slot), or until ready_by (uv time) passed. ready is protected
	 * by ready_lock; the rest is the loop thread's. */
	pthread_mutex_t ready_lock;
	pthread_cond_t ready_cond;
	int ready;
	uint64_t ready_slot, ready_by;
	int64_t ready_wall_by; /* wall clock ms: rp_read_barrier waits no longer (set at open) */
	uint64_t persisted; /* loop's view */
	struct rpx_held *held, **held_tail;
	size_t held_bytes;
	struct px_msg_scratch scratch;
	uint8_t *enc;
	size_t enc_cap;
	struct rpx_snd *snd[RP_MAX_PEERS];
	uint64_t xfer_next;
	struct {
		int active;
		uint32_t from;
		uint64_t xfer, slot;
		uint32_t idx;
		uint64_t nrec;
		uint64_t last; /* uv_now() of its last frame */
	} rcv;
	uint8_t *rcv_begin; /* the BEGIN frame's body of the transfer being received */
	size_t rcv_begin_len;
	uint8_t cluster_id[RP_CLUSTER_LEN];
	int cut[RP_MAX_PEERS]; /* rp_test_cut: frames to and from that node are lost; atomic */
	struct {
		int leading;			 /* the core was leader at the last check */
		uint64_t since;			 /* uv_now() when this leadership's count began */
		uint64_t last_check, next_check; /* uv_now() */
		uint64_t heard[RP_MAX_PEERS];	 /* uv_now() of each peer's last frame */
		int64_t sent[RP_MAX_PEERS];	 /* the epoch (session id base) last expired */
		uint64_t sent_at[RP_MAX_PEERS];
	} sess; /* loop thread only (io_sess.c) */

	/* Storage thread. */
	pthread_t st_thread;
	struct px_filter filter;
	uint64_t st_applied;	 /* applied slot */
	uint64_t st_zxid;	 /* last zxid */
	uint64_t st_compacted;	 /* stored log deleted up to */
	uint64_t st_taken;	 /* last compaction point reported */
	uint64_t st_bytes;	 /* value bytes applied since st_taken */
	uint64_t st_snap_nrec;	 /* records staged since the last RPX_J_SNAP_BEGIN */
	int st_failed;		 /* permanently: the state could not even be reloaded */
	uint64_t st_epoch;	 /* jobs of other epochs are dropped */
	struct rpx_item **items; /* registered, by seq */
	uint32_t items_cap, nitems;
	struct rpx_item *cdone, **cdone_tail; /* completions of the current commit */
	struct st__buf chg;		      /* changes of the current commit */
	uint32_t nchg;
	int chg_err;
	struct zt_result *scratch_res;
	uint32_t scratch_cap;
	struct rpx_wal wal; /* the acceptor log (io_wal.h); opened before rpx__load */
	int wal_build;	    /* the batch being run adds its acceptor records to the log's record */
	int wal_warned;	    /* a failed append was logged */
};

/* Held outgoing frame (waits for its persist seq). */
struct rpx_held {
	struct rpx_held *next;
	uint64_t wait_seq;
	uint32_t to; /* node id */
	size_t len;
	uint8_t body[];
};

/* io_lmdb.c */

/* Open the px databases and read what px_init needs into *boot (entries malloc'd into *ents and
 * *arena, the caller frees both). Also loads the filter, the applied slot and zxid, the cluster id.
 * Runs on the opening thread before any other thread starts. 0, -EINVAL, -ENOMEM, -EIO. */
int rpx__load(struct rpx *x, struct px_boot *boot, struct px_entry **ents, uint8_t **arena);

/* Read the durable state in R: what px_init needs (entries malloc'd into *ents and *arena, the
 * caller frees both), the filter into *FILTER (empty on entry; may be NULL) and the last zxid into
 * *ZXID (may be NULL). 0, -EIO, -ENOMEM. Any thread. */
int rpx__read_state(struct rpx *x, struct st_rtxn *r, struct px_boot *boot, struct px_entry **ents,
		    uint8_t **arena, struct px_filter *filter, uint64_t *zxid);

/* The storage thread's body. */
void *rpx__storage_main(void *arg);

/* Queue a job for the storage thread (loop thread only). */
void rpx__job_push(struct rpx *x, struct rpx_job *j);
/* Queue the chain HEAD (linked by next) at once: the storage thread sees all of it or none, so one
 * px_update's persist, applies and acks share one commit (one fsync). Loop thread. */
void rpx__jobs_push(struct rpx *x, struct rpx_job *head);

/* Allocate a job with LEN bytes of buffer room (j->buf). NULL on -ENOMEM. */
struct rpx_job *rpx__job_new(enum rpx_job_type type, size_t len);

/* Log a line through cl.on_log. Any thread. */
void rpx__log(struct rpx *x, enum rp_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* io_sess.c (loop thread): a frame came from peer P (px id); after each step of the core, submit
 * the session expiries that are due (see there). */
void rpx__sess_heard(struct rpx *x, uint32_t p);
void rpx__sess_check(struct rpx *x);

/* io_uv.c: wake the loop thread (any thread). */
void rpx__wake(struct rpx *x);

#endif
