/* clang-format off */
/*
 * px_node: the Multi-Paxos protocol core of quorumfs, as a pure state machine (module prefix px_).
 *
 * One struct px_node is one replica (proposer + acceptor + learner). The host feeds it events with
 * px_step() and carries out the struct px_update it gets back: persist records, send messages,
 * apply chosen slots, answer submitters. The core reads no clock, draws no random number (both
 * come with the events), does no I/O and takes no lock; the same events give the same updates.
 *
 * Protocol ("Paxos Made Simple", section 3, with a distinguished proposer; "Paxos Made Live"):
 *   - Ballots are (round << 8 | node id): unique per node and totally ordered. 0 means "none".
 *   - A node that wants to lead first asks for a pre-vote (would a majority, none of which hears a
 *     leader, take part in a new ballot? nothing changes at the voters), then runs phase 1 once
 *     for every slot from its first unchosen one on (PREPARE). Acceptors answer (PROMISE) with
 *     their commit index and every value they accepted above it. The new leader fetches the slots
 *     a promiser knows chosen (catch-up), re-proposes for every other reported slot the value of
 *     the highest ballot (P2c), fills holes with no-ops, and only then proposes new values (from
 *     slot "lstart" on).
 *   - Acceptor rules (P1b, P2b): promise a ballot only if it is higher than any promised; accept a
 *     value only if its ballot is not lower than the promise; the promise and the accepted value
 *     are in the update's records, and the reply is tagged to leave only once they are durable.
 *   - Phase 2 is batched (a slot's value is a batch of submissions) and pipelined (at most
 *     cfg.window slots of the leader in flight). A slot is chosen once a majority accepted it at
 *     one ballot; the leader's commit index rides on every ACCEPT (and heartbeat), and a follower
 *     that accepted slot s at that same ballot marks it chosen; others fetch chosen values
 *     (CATCHUP_REQ; below a peer's compacted log: a snapshot request to the host). Learners
 *     also count acceptances themselves ("Paxos Made Simple" 2.3): the leader announces its own
 *     durable acceptances (ACCEPTED: with 3 nodes to the followers that forwarded submissions
 *     in the slot, with more to every follower),
 *     with 5 nodes or more acceptors send
 *     their ACCEPTED to every node, and a node that holds the value it accepted at ballot B
 *     learns it chosen once a majority (its own durable record included) accepted at B.
 *   - A follower that hears no leader for a randomised election timeout campaigns; one whose host
 *     reports that its connection to the leader ended (PX_EV_PEER_DOWN) campaigns after one to
 *     two heartbeats. While a live
 *     leader is heard, followers (and a leader that hears a majority) ignore other candidacies. A
 *     leader that sees a higher ballot (a REJECT, an ACCEPTED), learns a value chosen in a
 *     slot it has not proposed yet (its ballot is stale), or has not heard from a majority for
 *     an election timeout (check-quorum), steps down. No proposal replaces a chosen value.
 *   - Submissions (client id, seq, bytes) are accepted at any node; non-leaders forward them to the
 *     leader they know. A node keeps every submission of its own pending until it is applied, and
 *     re-sends them all, in order from the first unapplied one (go-back-N), on the retry timer,
 *     when it learns a new leader, and at once when one of them is chosen behind a gap (below).
 *
 * Applying and de-duplication (the rule every replica follows, so all apply the same operations):
 *   the host applies chosen slots in slot order; within a slot, submissions in batch order. Per
 *   client, submissions are applied strictly in seq order, each once: struct px_filter
 *   (px_batch.h) applies (client, seq) iff seq is the client's last applied seq + 1, from the
 *   chosen log alone; it is part of the replicated state and must be in snapshots. A duplicate
 *   (a re-forwarded copy chosen twice) is skipped; so is a seq chosen before an earlier one of its
 *   client (a forwarded frame lost or overtaken): the origin sees it chosen while an earlier seq of
 *   that client is still pending here, knows every replica skipped it, and re-sends from the
 *   earlier one. Hosts give each client seqs 1, 2, 3, ... in submission order, and a client id
 *   never outlives its node's core (a re-created core or a restarted node uses a new one).
 *   A submission whose writer gets an answer before it is applied (-ETIMEDOUT, -ENOBUFS, -ENOMEM)
 *   stays pending as a no-op carrying the same (client, seq) (value length 0), so that the later
 *   seqs of its client are not held behind a hole: whichever of the no-op and a travelling copy of
 *   the original is chosen first takes the seq, the other is then a duplicate; never both.
 *   Outcomes reported to this node's submitters (struct px_ack):
 *     PX_ACK_CHOSEN (0), slot N: applied in slot N (the first slot delivered on this node where it
 *       is chosen with every earlier seq of its client applied);
 *     PX_ACK_BEFORE (1), slot N: a snapshot installed up to N says it was applied at or before N;
 *     -ETIMEDOUT: not applied within cfg.submit_timeout, or a snapshot cannot tell: outcome
 *       unknown (it may still be applied later, at most once);
 *     -ENOBUFS: too many pending (cfg.max_pending, no-ops not counted); it is never applied.
 *   -ESHUTDOWN on close, and an unknown outcome after a crash or a failed step, are the host's.
 *
 * Empty disk: a node whose stored acceptor state lacks the "initialised" marker (it lost its disk)
 * must not vote, since it may have forgotten promises and accepted values. It starts as a LEARNER:
 * it asks every peer for its promised ballot (HELLO) until f+1 others answered, keeps B0 = the
 * highest; then it waits for a leader whose ballot B > B0 (such a leader completed phase 1 with a
 * majority that excludes the learner, which intersects every quorum the learner's lost state may
 * have been part of; if the leader's ballot is not above B0, the learner asks it to run phase 1
 * again) and for its own commit index to reach that leader's lstart - 1 (every slot that leader
 * recovered is known chosen). Then it promises B, persists the marker and votes again. A new
 * cluster's nodes boot with initialised = 1. Hosts must not deliver messages a node sent before
 * it lost its disk (connections are per boot).
 *
 * Threads: a px_node is not thread-safe; one thread calls px_step at a time.
 */
/* clang-format on */
#ifndef QFS_CONSENSUS_PX_NODE_H
#define QFS_CONSENSUS_PX_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "consensus/px_batch.h"
#include "consensus/px_msg.h"

#define PX_MAX_NODES 9

/* Debug switches: deliberate protocol bugs the simulator must detect. Test builds only. */
#ifdef QFS_TEST_HOOKS
#include "consensus/px_alloc.h" /* px_debug_alloc_countdown: fail the Nth allocation */
enum {
	PX_BUG_ACCEPT_BELOW_PROMISE = 1u << 0, /* acceptor ignores P2b's "not lower than promise" */
	PX_BUG_FORGET_PROMISE = 1u << 1,       /* px_init drops the stored promise */
	PX_BUG_SKIP_REPROPOSE = 1u << 2,       /* new leader fills recovered slots with no-ops */
	PX_BUG_REPLY_BEFORE_PERSIST = 1u << 3, /* replies leave before their records are durable */
	PX_BUG_LEARNER_VOTES_EARLY = 1u << 4,  /* an empty-disk node votes once peers answered */
	PX_BUG_ADMIT_GAPS = 1u << 5, /* px_filter applies a seq past a gap (the FIFO rule broken) */
	PX_BUG_LEARN_MIXED_BALLOTS = 1u << 6, /* a learner counts acceptances of different
						 ballots together */
	PX_BUG_PROPOSE_INTO_CHOSEN = 1u << 7, /* a stale leader that learns later slots chosen
						 stays leader and proposes into them */
};
extern unsigned px_debug_bugs;
#endif

enum px_role { PX_FOLLOWER = 0, PX_CANDIDATE, PX_LEADER, PX_LEARNER };

struct px_config {
	uint32_t id;	    /* this node, 0 <= id < n */
	uint32_t n;	    /* cluster size, odd, 1..PX_MAX_NODES */
	uint64_t heartbeat; /* leader heartbeat interval (host time units) */
	uint64_t election;  /* election timeout: uniformly random in [election, 2 * election) */
	uint64_t submit_timeout; /* pending submission fails with -ETIMEDOUT after this; 0: never */
	uint64_t retry;		 /* re-forward / catch-up retry interval; 0: election */
	uint32_t window;	 /* leader's slots in flight at most; 0: 8 */
	uint32_t max_batch;	 /* submissions per slot at most; 0: 100 */
	uint32_t max_batch_bytes;     /* bytes of one slot's value at most (soft); 0: 1 MiB */
	uint32_t max_pending;	      /* this node's pending submissions at most; 0: 65536 */
	uint32_t catchup_max;	      /* chosen slots per CATCHUP message at most; 0: 64 */
	uint64_t keep_after_snapshot; /* chosen slots kept in memory below a snapshot, for peers */
	uint64_t keep_bytes_after_snapshot; /* ... and at most this many value bytes of them (the
					       newest slots first); 0: no byte bound */
};

/*
 * What the host restores at boot from its stable storage (all zero for an empty disk).
 * entries: the accepted records (any order); values are copied by px_init.
 * applied: the slot up to which the host's state machine already reflects the log (its snapshot,
 *   or more if it persists applied state); delivery to apply resumes at applied + 1.
 */
struct px_boot {
	bool initialised; /* the acceptor marker: false = empty disk, start as a learner */
	uint64_t promised;
	uint64_t commit;   /* persisted commit index (a hint: slots <= commit are chosen) */
	uint64_t snapshot; /* the durable snapshot's last slot (0: none) */
	uint64_t applied;
	uint64_t stamp; /* the last batch stamp the host applied (its px_filter's), 0: none */
	const struct px_entry *entries;
	uint32_t nentries;
};

/* Events. */
enum px_event_type {
	PX_EV_RECEIVE = 1,	  /* msg: a decoded message addressed to this node */
	PX_EV_TICK,		  /* only time passes */
	PX_EV_PERSISTED,	  /* every update with persist_seq <= seq is durable */
	PX_EV_SUBMIT,		  /* subs[0..nsubs): new submissions at this node */
	PX_EV_SNAPSHOT_INSTALLED, /* the host installed a snapshot covering slots <= slot; filter:
				     that snapshot's de-duplication state (may be NULL) */
	PX_EV_SNAPSHOT_TAKEN,	  /* a durable snapshot covers slots <= slot: log below may go */
	PX_EV_PEER_DOWN,	  /* the host's connection to node `node` ended (a killed process's
				     connections end at once; a partition only goes silent): if it
				     is the leader followed, campaign soon (see on_peer_down) */
};

struct px_event {
	enum px_event_type type;
	uint64_t now;			/* host time, monotonic, with every event */
	uint64_t wall; /* the host's wall clock, ms since the epoch (0: unknown): a leader stamps the
			  batches it proposes with max(wall, every stamp it knows), so stamps
			  never decrease along the log, whoever leads */
	uint64_t rand;			/* fresh random bits with every event (election jitter) */
	const struct px_filter *filter; /* PX_EV_SNAPSHOT_INSTALLED only */
	union {
		const struct px_msg *msg;
		uint64_t seq;
		uint64_t slot;
		uint32_t node; /* PX_EV_PEER_DOWN */
		struct {
			const struct px_sub *subs;
			uint32_t nsubs;
		};
	};
};

/* An outgoing message; may leave only once the host's persisted seq >= wait_seq (0: at once). */
struct px_out {
	struct px_msg msg;
	uint64_t wait_seq;
};

/* A chosen slot to apply, in slot order. value: a batch (px_batch.h); empty for a no-op. */
struct px_apply {
	uint64_t slot;
	const uint8_t *value;
	uint32_t len;
};

enum { PX_ACK_CHOSEN = 0, PX_ACK_BEFORE = 1 };
/* A submission of this node is resolved: status PX_ACK_* with slot, or a negative errno (above). */
struct px_ack {
	uint64_t client;
	uint64_t seq;
	uint64_t slot;
	int status;
};

/* "Send your snapshot (the latest durable one, covering at least slot) to node to." */
struct px_snap_req {
	uint32_t to;
	uint64_t slot;
};

/*
 * The result of one px_step. Everything it points to belongs to the node and stays valid until the
 * next px_step or px_free. The host must: write the records (promise, initialised, accepted,
 * commit) as one atomic batch with sequence number persist_seq (batches are durable in seq order,
 * and may be grouped), then report PX_EV_PERSISTED; send each message once its wait_seq is durable
 * (or drop it: the network is lossy); apply `apply` in order; answer acks; serve snapshot requests;
 * and may delete stored log records for slots <= truncate once its snapshot covering them is
 * durable.
 */
struct px_update {
	uint64_t persist_seq; /* nonzero iff there are records to persist */
	bool promise_changed;
	uint64_t promised;
	bool initialised_changed; /* persist the "initialised" marker (learner became a voter) */
	const struct px_entry *accepted; /* records (slot, ballot, flags, value): overwrite slot */
	uint32_t naccepted;
	bool commit_changed; /* commit index record (lazy: a hint for restart) */
	uint64_t commit;

	const struct px_out *msgs;
	uint32_t nmsgs;
	const struct px_apply *apply;
	uint32_t napply;
	const struct px_ack *acks;
	uint32_t nacks;
	const struct px_snap_req *snaps;
	uint32_t nsnaps;
	/* nonzero: log records for slots <= truncate may be deleted. The host must take snapshots
	 * (PX_EV_SNAPSHOT_TAKEN) now and then: the core holds at most 2^20 slots above its log
	 * base and stops proposing beyond. */
	uint64_t truncate;
	uint64_t deadline; /* call px_step with a TICK no later than this */
};

struct px_node; /* opaque */

/*
 * Create a node from CFG and what the host restored (BOOT; NULL = empty disk of a brand-new
 * cluster member that is initialised, i.e. first boot of the cluster). NOW and RAND seed timers.
 * Errors: -EINVAL (cfg), -ENOMEM. On success *out is owned by the caller (px_free).
 */
int px_init(struct px_node **out, const struct px_config *cfg, const struct px_boot *boot,
	    uint64_t now, uint64_t rand);

/* Free the node and everything it owns. NULL is fine. */
void px_free(struct px_node *node);

/*
 * Feed one event; fill *u (overwritten). Implements every rule listed at the top of this file.
 * Errors: -EINVAL (malformed event, e.g. a message from an unknown node; nothing changed, the node
 * goes on); -ENOMEM: the step could not complete, *u is empty and must not be acted on, and the
 * node is unusable (every later call returns -ENOTRECOVERABLE): the host frees it and creates it
 * again from its stable storage, exactly as after a crash (which the protocol tolerates); as after
 * a crash, its pending submissions are forgotten and their outcome is unknown (-ETIMEDOUT).
 * Messages that break no format rule but are stale or unexpected are ignored (return 0): the
 * network is trusted to be authentic, not timely.
 */
int px_step(struct px_node *node, const struct px_event *ev, struct px_update *u);

/* Introspection for hosts and tests. */
enum px_role px_role(const struct px_node *node);
uint64_t px_ballot(const struct px_node *node);	 /* the promised ballot */
uint32_t px_leader(const struct px_node *node);	 /* known leader id, or UINT32_MAX */
uint64_t px_commit(const struct px_node *node);	 /* highest slot s with 1..s all chosen */
/* The known leader's commit index (the last one it told us; ours when we lead), 0: no leader. */
uint64_t px_leader_commit(const struct px_node *node);
uint64_t px_applied(const struct px_node *node); /* last slot delivered to apply */
uint64_t px_log_base(const struct px_node *node); /* lowest slot still held in memory */
uint32_t px_pending(const struct px_node *node); /* submissions waiting for an ack */
/* The chosen value of SLOT if this node still holds it: 0, -ENOENT (unknown or truncated). */
int px_chosen(const struct px_node *node, uint64_t slot, const uint8_t **value, uint32_t *len);

#endif
