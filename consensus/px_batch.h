/*
 * px_batch: the value of a log slot (a batch of submissions) and the de-duplication filter.
 *
 * A slot's value is either empty (a no-op, len 0) or a batch, little-endian:
 *   count u32, then count times: client u64, seq u64, len u32, len bytes.
 * The core builds batches; hosts read them with px_batch_iter. The submission bytes are opaque.
 *
 * struct px_filter is the apply rule of px_node.h: per client it keeps the highest applied seq L
 * and which of the PX_FILTER_WINDOW seqs below L were applied. Submission (client, seq) is applied
 * iff seq > L, or L - PX_FILTER_WINDOW <= seq < L and it was not applied yet; anything else is
 * skipped (a duplicate, or too old to tell). It belongs to the replicated state: the host keeps one
 * per replica, feeds it every submission of every chosen slot in order, and stores it in its
 * snapshots (px_filter_encode / px_filter_decode).
 */
#ifndef QFS_CONSENSUS_PX_BATCH_H
#define QFS_CONSENSUS_PX_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "consensus/px_msg.h"

#define PX_BATCH_HDR 4u
#define PX_BATCH_SUB 20u

struct px_batch_iter {
	const uint8_t *p;
	const uint8_t *end;
	uint32_t left;
};

/* Start reading VALUE[0..len). A no-op (len 0) has no submissions. Errors: -EINVAL (malformed). */
int px_batch_iter_init(struct px_batch_iter *it, const uint8_t *value, uint32_t len);

/* Next submission into *SUB (data points into the value). Returns 1, 0 at the end, or -EINVAL if
 * the batch is malformed (truncated, trailing bytes). */
int px_batch_next(struct px_batch_iter *it, struct px_sub *sub);

#define PX_FILTER_WINDOW 64

struct px_filter {
	uint64_t *keys; /* client ids; slot used iff used[i] */
	uint64_t *seqs; /* highest applied seq */
	uint64_t *bits; /* bit k: seq - 1 - k applied, for k < 64 */
	uint8_t *used;
	uint32_t cap; /* power of two or 0 */
	uint32_t count;
};

/* An empty filter needs no init beyond zeroing; release it with px_filter_free. */
void px_filter_free(struct px_filter *f);

/* The apply rule (seqs start at 1; seq 0 is never applied). Returns 1 (apply, and remember seq), 0
 * (skip: a duplicate or an older seq), -ENOMEM (the filter is unchanged). */
int px_filter_admit(struct px_filter *f, uint64_t client, uint64_t seq);

/* Highest applied seq of CLIENT, 0 if none. */
uint64_t px_filter_last(const struct px_filter *f, uint64_t client);

/* Was (client, seq) applied? 1 yes, 0 no (it may still be), -1 cannot tell (below the window). */
int px_filter_seen(const struct px_filter *f, uint64_t client, uint64_t seq);

/* Deep copy SRC into *DST (which must be empty or freed). Errors: -ENOMEM. */
int px_filter_copy(struct px_filter *dst, const struct px_filter *src);

/* Serialise for a snapshot: count u32, then (client u64, seq u64, bits u64) sorted by client. */
size_t px_filter_size(const struct px_filter *f);
int px_filter_encode(const struct px_filter *f, uint8_t *buf, size_t cap); /* -ENOBUFS */
/* Errors: -EINVAL (malformed), -ENOMEM. *DST must be empty. */
int px_filter_decode(struct px_filter *dst, const uint8_t *buf, size_t len);

#endif
