/*
 * qc_check: the checks qfs-check runs on a parsed history (qc_hist.h).
 *
 * 1. Linearizability (qc_lin.c), per key (P-compositionality: a history is linearizable iff each
 *    key's sub-history is): the ops that promise it (read, write, cas) against a register holding
 *    (value, version). write: value := V, version + 1. cas(N, V): iff version == N, as a write.
 *    read: returns (value, version). An op with an unknown outcome (info, or no completion) may
 * take effect at any point after its invocation, or never: its completion is put at +infinity and
 *    any result is accepted (an unknown cas may fail). Failed ops took no effect and are left out,
 *    except cas with err=badversion: it happened and saw a version other than N.
 *    Search: Wing & Gong's backtracking with Lowe's just-in-time linearisation, memoising each
 *    (state, set of linearised ops) reached; the set is kept as a bitset over the key's ops in
 *    invocation order and stored in the memo as the bit positions where it flips (run-length),
 *    which stays short because the linearised set is mostly a prefix of the ops. Exact
 *    reductions (see qc_lin.c and README.md): values no read returns are one value; a value
 *    written once and read at version v pins its write to v; a read that fits now is
 *    linearised now; interchangeable ("anonymous") writes are tried in completion order, those
 *    of unknown outcome last.
 * 2. Sequential consistency (qc_seq.c), over every read including plain local ones (lread):
 *    - a process never sees a version of a key lower than one it saw before (by a read, or by
 *      one of its own acknowledged writes that reported its version);
 *    - every (value, version) read was written: the key's initial state, the acknowledged write
 *      that produced that version, or (if no acknowledged write reports that version) a write
 *      of that value whose version is unknown and that did not definitely fail;
 *    - acknowledged writes have distinct versions, and a write acknowledged before another was
 *      invoked has the lower version; an acknowledged cas reports version expect + 1.
 *
 * Threads: none of these functions keep global state; they may run on any thread.
 */
#ifndef QFS_TOOLS_CHECK_QC_CHECK_H
#define QFS_TOOLS_CHECK_QC_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tools/check/qc_hist.h"

enum qc_kind {
	QC_A_NONLIN = 1, /* the key's read/write/cas ops are not linearizable */
	QC_A_READ_BACK,	 /* a process read a lower version than it had seen (op; other: the earlier
			    op) */
	QC_A_NEVER_WRITTEN, /* a read of a (value, version) no write produced */
	QC_A_DUP_VERSION,   /* two acknowledged writes reported the same version (op, other) */
	QC_A_VERSION_ORDER, /* other was acknowledged before op was invoked, but op's version is not
			       higher */
	QC_A_CAS_VERSION,   /* an acknowledged cas reported a version other than expect + 1 */
};

/* One anomaly; op and other index qc_history.ops (other is SIZE_MAX when there is none). */
struct qc_anomaly {
	enum qc_kind kind;
	uint32_t key;
	size_t op;
	size_t other;
};

/* For a non-linearizable key: a sub-history that is still not linearizable. */
struct qc_witness {
	uint32_t key;
	size_t *ops; /* indexes into qc_history.ops, in invocation order */
	size_t nops;
	size_t key_ops; /* ops of the key that the linearizability check considered */
	size_t
	    blocked; /* the op whose completion no linearisation of the ops before it can reach */
	int shrink_done; /* 1: every removable read was tried (budget not exhausted) */
};

struct qc_opts {
	double shrink_seconds; /* time budget for shrinking, per failing key (0: do not shrink) */
};

struct qc_result {
	struct qc_anomaly *an;
	size_t nan, an_cap;
	struct qc_witness *w;
	size_t nw;
	size_t lin_ops;	  /* ops checked for linearizability */
	size_t seq_reads; /* reads checked for sequential consistency */
	uint64_t states;  /* configurations memoised by the linearizability search */
	double lin_seconds;
	double seq_seconds;
};

/*
 * Run every check on H into *R (zeroed by the caller; release with qc_result_free, also on
 * error). Returns 0 (look at r->nan), or -ENOMEM.
 */
int qc_check(const struct qc_history *h, const struct qc_opts *opts, struct qc_result *r);
void qc_result_free(struct qc_result *r);

/*
 * Linearizability of the ops OPS[0..n) of H, which must all be of key KEY (the list may hold
 * any op type; those the check does not consider are ignored). Returns 1 linearizable,
 * 0 not (then *blocked, if not NULL, is the op whose completion the search could not pass),
 * -ENOMEM. *states (if not NULL) is increased by the configurations memoised.
 */
int qc_lin_check(const struct qc_history *h, uint32_t key, const size_t *ops, size_t n,
		 size_t *blocked, uint64_t *states);

/* The sequential-consistency checks (qc_seq.c); appends to R. 0 or -ENOMEM. */
int qc_seq_check(const struct qc_history *h, struct qc_result *r);

/* Append one anomaly to R. 0 or -ENOMEM. */
int qc__add_anomaly(struct qc_result *r, enum qc_kind kind, uint32_t key, size_t op, size_t other);

/* Print R for a human: a summary of each anomaly, and each witness with the lines of its ops. */
void qc_report(FILE *out, const struct qc_history *h, const struct qc_result *r);

/* Name of an anomaly kind ("nonlinearizable", "read-back", ...). */
const char *qc_kind_name(enum qc_kind k);

/*
 * qc_gen (qc_gen.c): a random history of a real sequential execution, written to OUT in the
 * history format. PROCS processes run OPS ops in total on KEYS keys; each op takes effect at a
 * random instant inside its interval, and the results come from applying the ops in that order to
 * a true register. A fraction of ops time out (info; some of those never take effect) or fail
 * (cas with badversion when the version did not match; otherwise took no effect). Such a history
 * must pass every check. With MUTATE set, one acknowledged read's result is changed afterwards
 * (1 to 8 versions older, a version never reached, or a value never written), which the checker
 * must usually catch (a slightly stale read concurrent with the next write is still valid).
 */
struct qc_gen_opts {
	uint64_t seed;
	unsigned procs;
	unsigned keys;
	size_t ops;
	unsigned pct_unknown; /* percent of ops whose outcome is unknown */
	unsigned pct_fail;    /* percent of writes that definitely fail */
	unsigned pct_lread;   /* percent of reads that are plain local reads */
	int mutate;
};
int qc_gen(FILE *out, const struct qc_gen_opts *o);

#endif
