/*
 * px_batch: the value of a log slot (a batch of submissions) and the de-duplication filter.
 *
 * A slot's value is either empty (a no-op, len 0) or a batch, little-endian:
 *   count u32, time_ms u64, then count times: client u64, seq u64, len u32, len bytes.
 * The core builds batches; hosts read them with px_batch_iter. The submission bytes are opaque.
 * time_ms is the leader's stamp (ms since the epoch; px_node.h): its wall clock when it cut the
 * batch, never below a stamp it knows of (in its log, in the promises of its phase 1, in its
 * applied state). A value that a new leader must re-propose (P2c) keeps its older stamp, so raw
 * stamps may still step back there; the time of the batch's transactions (ZooKeeper's
 * ctime/mtime) is therefore max(its stamp, every stamp applied before), px_filter.stamp after
 * px_filter_stamp: the same on every replica, from the log alone, and never decreasing.
 *
 * A submission of length 0 is a no-op: it takes its (client, seq) in the order below and changes
 * nothing else (px_node.h: what a submission that timed out for its writer becomes).
 *
 * Client ids: PX_CLIENT(node, incarnation, sub). node is the submitting node's id (1..255 on a
 * real cluster), the incarnation grows with every boot of that node (and every re-creation of its
 * core), sub tells apart several clients of one incarnation (the daemon uses 0). Seqs of a client
 * start at 1 and go up by one per submission, in the order its node submitted them.
 *
 * struct px_filter is the apply rule of px_node.h, decided from the chosen log alone, so every
 * replica decides the same. Per client it keeps L, the last applied seq; per node, the current
 * incarnation I (the highest one that had an op applied). Submission (client, seq) of node N with
 * incarnation i is:
 *   applied   iff i == I(N) and seq == L + 1 (L = 0 for a client not seen yet), or i > I(N) and
 *             seq == 1; the latter makes i the current incarnation of N and RETIRES every client
 *             of N with a lower incarnation: their entries are dropped;
 *   skipped   otherwise: seq <= L is a duplicate (applied before), seq > L + 1 a gap (an earlier
 *             seq of the client is missing: its node re-sends from the first unapplied one), and
 *             i < I(N) a retired client.
 * So per client the applied seqs are exactly 1, 2, 3, ... in the order the node submitted them
 * (FIFO), each at most once.
 *
 * Why dropping retired clients is safe: a new incarnation of node N exists only once the previous
 * one is gone (its daemon exited, or its core was freed), and a gone incarnation has no writer left
 * waiting: every submission it had pending was answered with an unknown outcome (-ETIMEDOUT, -EIO,
 * -ESHUTDOWN) or already resolved. A submission of a retired client that is chosen later is a
 * stale copy still travelling; skipping it is one of the outcomes an unknown outcome allows, and
 * since every replica retires at the same point of the log, all skip the same ones. Nothing else
 * needs the dropped entries: a retired client can never have a submission applied again, so none
 * can be applied twice. The filter thus holds at most one incarnation's clients per node id (one
 * entry per node for the daemon): it is bounded by the cluster, not by its history.
 *
 * An incarnation must never be reused by a node (a reused client would have its new seq 1 taken
 * for a duplicate): the daemon draws it from its wall clock in milliseconds, at least one above the
 * one it stored at its previous start.
 *
 * It belongs to the replicated state: the host keeps one per replica, feeds it every submission of
 * every chosen slot in order, and stores it in its snapshots (px_filter_encode / px_filter_decode).
 */
#ifndef QFS_CONSENSUS_PX_BATCH_H
#define QFS_CONSENSUS_PX_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "consensus/px_msg.h"

#define PX_BATCH_HDR 12u
#define PX_BATCH_SUB 20u

struct px_batch_iter {
	const uint8_t *p;
	const uint8_t *end;
	uint32_t left;
	uint64_t time_ms; /* the batch's stamp (0 for a no-op) */
};

/* Start reading VALUE[0..len). A no-op (len 0) has no submissions. Errors: -EINVAL (malformed). */
int px_batch_iter_init(struct px_batch_iter *it, const uint8_t *value, uint32_t len);

/* Next submission into *SUB (data points into the value). Returns 1, 0 at the end, or -EINVAL if
 * the batch is malformed (truncated, trailing bytes). */
int px_batch_next(struct px_batch_iter *it, struct px_sub *sub);

#define PX_INC_MASK ((1ull << 48) - 1)
#define PX_CLIENT(node, inc, sub)                                                                  \
	((uint64_t)(node) << 56 | ((uint64_t)(inc) & PX_INC_MASK) << 8 | (uint64_t)((sub) & 0xff))
#define PX_CLIENT_NODE(c) ((uint32_t)((uint64_t)(c) >> 56))
#define PX_CLIENT_INC(c)  (((uint64_t)(c) >> 8) & PX_INC_MASK)

struct px_filter {
	uint64_t *keys; /* client ids; slot used iff used[i] */
	uint64_t *seqs; /* last applied seq */
	uint8_t *used;
	uint32_t cap; /* power of two or 0 */
	uint32_t count;
	uint64_t inc[256]; /* per node: current incarnation + 1; 0: none yet */
	uint64_t stamp;	   /* the stamp of the last batch applied (the host sets it, px_filter_stamp) */
};

/* The host applied a batch stamped T (px_batch_iter.time_ms): remembered with the filter, so that
 * a restarted node or one that installs this state as a snapshot knows the stamps so far. */
void px_filter_stamp(struct px_filter *f, uint64_t t);

/* An empty filter needs no init beyond zeroing; release it with px_filter_free. */
void px_filter_free(struct px_filter *f);

/* The apply rule (above). Returns 1 (apply; the filter remembers it), 0 (skip: a duplicate, a gap
 * or a retired client), -ENOMEM (the filter is unchanged). */
int px_filter_admit(struct px_filter *f, uint64_t client, uint64_t seq);

/* Last applied seq of CLIENT, 0 if none (or retired). */
uint64_t px_filter_last(const struct px_filter *f, uint64_t client);

/* Was (client, seq) applied? 1 yes, 0 no (it may still be), -1 cannot tell (a retired client). */
int px_filter_seen(const struct px_filter *f, uint64_t client, uint64_t seq);

/* Deep copy SRC into *DST (which must be empty or freed). Errors: -ENOMEM. */
int px_filter_copy(struct px_filter *dst, const struct px_filter *src);

/* Serialise for a snapshot: count u32, stamp u64, then (client u64, seq u64) sorted by client. */
size_t px_filter_size(const struct px_filter *f);
int px_filter_encode(const struct px_filter *f, uint8_t *buf, size_t cap); /* -ENOBUFS */
/* Errors: -EINVAL (malformed: truncated, seq 0, a client twice, two incarnations of one node),
 * -ENOMEM. *DST must be empty. */
int px_filter_decode(struct px_filter *dst, const uint8_t *buf, size_t len);

#endif
