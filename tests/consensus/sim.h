/*
 * sim: a deterministic simulated cluster for the px core.
 *
 * A virtual clock; one event at a time (message delivery, persistence completion, node deadline,
 * client submission, crash, restart, partition change, snapshot transfer). Every message goes
 * through the real codec. Each node has a "disk" that holds exactly what the core asked to persist
 * and the host completed; a crash loses everything else. After every event the checker verifies:
 *   - no two values chosen for one slot: chosen = accepted by a majority at one ballot, computed
 *     from the durable accept records of all nodes (the definition, not what nodes believe), plus
 *     every value a node applies equals the first one applied anywhere for that slot;
 *   - every replica applies the same sequence: a hash chain of the admitted operations per slot,
 *     compared with the first replica that applied that slot;
 *   - no operation applied twice (a global registry of (client, seq) -> slot);
 *   - no acknowledged operation lost: an ack "chosen at slot N" must match the reference log at N.
 * Liveness (sim_check_live): after sim_heal, ops submitted later all commit within a bound.
 */
#ifndef QFS_TESTS_CONSENSUS_SIM_H
#define QFS_TESTS_CONSENSUS_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "consensus/px_node.h"

struct sim_cfg {
	uint32_t n;
	/* network, in virtual milliseconds and per-mille probabilities */
	uint64_t lat_min, lat_max;
	uint32_t drop, dup, slow; /* slow: an extra delay of up to 3 election timeouts */
	uint64_t persist_min, persist_max;
	/* px timing */
	uint64_t heartbeat, election, submit_timeout;
	uint32_t window, max_batch, max_batch_bytes, catchup_max;
	uint64_t snapshot_every; /* slots between snapshots (0: never) */
	uint64_t keep_after_snapshot;
	uint64_t keep_bytes_after_snapshot; /* px_config's byte bound below a snapshot; 0: none */
	uint32_t oom; /* per-mille of steps in which one of the core's allocations fails (test
			 builds); the failed node is re-created from its disk, as after a crash */
};

struct sim;

/* Only end-to-end checks (no acceptor invariants): used to show a deliberate bug leads to an actual
 * conflicting choice, divergent replicas or a lost or doubled operation. */
extern bool sim_end_to_end;

void sim_cfg_default(struct sim_cfg *cfg, uint32_t n);

/* Create a cluster; all nodes boot initialised and connected. Aborts the process on ENOMEM. */
struct sim *sim_new(const struct sim_cfg *cfg, uint64_t seed);
void sim_free(struct sim *s);

/* Process events until virtual time T (or a violation). Returns 0, or -1 on a violation. */
int sim_run_until(struct sim *s, uint64_t t);
uint64_t sim_now(const struct sim *s);

/* Failure description ("" if none). */
const char *sim_failure(const struct sim *s);

/* Faults. */
void sim_link(struct sim *s, uint32_t from, uint32_t to, bool up); /* one-way */
void sim_isolate(struct sim *s, uint32_t node, bool in, bool out);
void sim_heal(struct sim *s); /* all links up, no drops/dups/slow messages from now on */
void sim_set_faults(struct sim *s, uint32_t drop, uint32_t dup, uint32_t slow);
void sim_crash(struct sim *s, uint32_t node);
/* kill -9 of NODE's process on a live machine: a crash, and every other node's host sees its
 * connection to NODE end at once (PX_EV_PEER_DOWN). */
void sim_kill(struct sim *s, uint32_t node);
void sim_restart(struct sim *s, uint32_t node, bool wipe); /* wipe: empty disk */
/* SIGSTOP of NODE for MS: it handles nothing meanwhile; then what reached it (messages in order,
 * persistence completions) comes before its timers. For STALE_MS more (0: none) its events carry
 * the time it was frozen at and no timer fires: a host's event loop stopped mid-iteration finishes
 * that iteration, its sockets now full of what came meanwhile, with the clock it read before. Its
 * clients submit nothing while it is frozen. */
void sim_pause(struct sim *s, uint32_t node, uint64_t ms, uint64_t stale_ms);
/* Crash NODE at the moment its next persistence completes, before anything is sent. */
void sim_crash_after_persist(struct sim *s, uint32_t node);
bool sim_up(const struct sim *s, uint32_t node);

/* Client operations: N new operations from a client of NODE, submitted now. Each node has
 * SIM_CLIENTS clients; client C of NODE submits seqs 1, 2, ... in order. */
#define SIM_CLIENTS 2
void sim_submit(struct sim *s, uint32_t node, uint32_t nops); /* a random client */
void sim_submit_client(struct sim *s, uint32_t node, uint32_t c, uint32_t nops);
enum {
	SIM_OP_NONE = 0,
	SIM_OP_SUBMITTED,
	SIM_OP_ACKED,
	SIM_OP_STALE,
	SIM_OP_FAILED,
	SIM_OP_UNKNOWN
};
uint32_t sim_op_state(struct sim *s, uint32_t node, uint32_t c, uint64_t seq);
uint64_t sim_next_seq(const struct sim *s, uint32_t node, uint32_t c); /* of the next submission */
uint64_t sim_op_slot(struct sim *s, uint32_t node, uint32_t c, uint64_t seq); /* 0: not applied */

/* Introspection. */
struct px_node *sim_px(struct sim *s, uint32_t node);
uint32_t sim_leader(const struct sim *s); /* a node that is up and leader, else UINT32_MAX */
uint64_t sim_applied(const struct sim *s, uint32_t node);
enum px_role sim_role(const struct sim *s, uint32_t node); /* (enum px_role)-1 when down */

struct sim_stats {
	uint64_t events, msgs, dropped, applied_ops, acked, failed, stale, unknown, snapshots;
	uint64_t installs, elections, max_slot;
	uint64_t learners_graduated;
	uint64_t rejects, rejects_sent, crashes_after_persist, max_candidates;
	uint64_t oom_restarts;
};
void sim_stats(const struct sim *s, struct sim_stats *st);

/*
 * Liveness: run until every operation submitted since the heal (and every earlier one still
 * pending somewhere) is resolved, every up node applied everything chosen, and every node is a
 * voter again; within BOUND virtual ms. Returns 0 or -1 (sim_failure says why).
 */
int sim_check_live(struct sim *s, uint64_t bound);

/* A whole randomised scenario for SEED: faults for a while, heal, liveness. 0 or -1. */
int sim_scenario(uint32_t n, uint64_t seed, char *why, size_t whylen, struct sim_stats *st);
/* The same with allocation failures injected into the core during the faulty phase (permille). */
int sim_scenario_oom(uint32_t n, uint64_t seed, uint32_t oom, char *why, size_t whylen,
		     struct sim_stats *st);

#endif
