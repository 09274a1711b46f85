/*
 * px_batch: batch values and the de-duplication filter (see px_batch.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "consensus/px_alloc.h"
#include "consensus/px_batch.h"
#include "consensus/px_node.h" /* px_debug_bugs (test builds) */

#ifdef QFS_TEST_HOOKS
#define GAPS_BUG() (px_debug_bugs & PX_BUG_ADMIT_GAPS)
#else
#define GAPS_BUG() 0
#endif

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

int px_batch_iter_init(struct px_batch_iter *it, const uint8_t *value, uint32_t len)
{
	it->p = value;
	it->end = len ? value + len : value; /* a no-op's value may be NULL: NULL + 0 is UB in C */
	it->left = 0;
	it->time_ms = 0;
	if (len == 0)
		return 0;
	if (len < PX_BATCH_HDR)
		return -EINVAL;
	it->left = rd32(value);
	it->time_ms = rd64(value + 4);
	it->p += PX_BATCH_HDR;
	if ((uint64_t)it->left * PX_BATCH_SUB > (uint64_t)(len - PX_BATCH_HDR))
		return -EINVAL;
	return 0;
}

int px_batch_next(struct px_batch_iter *it, struct px_sub *sub)
{
	if (it->left == 0)
		return it->p == it->end ? 0 : -EINVAL;
	if ((size_t)(it->end - it->p) < PX_BATCH_SUB)
		return -EINVAL;
	sub->client = rd64(it->p);
	sub->seq = rd64(it->p + 8);
	sub->len = rd32(it->p + 16);
	it->p += PX_BATCH_SUB;
	if ((size_t)(it->end - it->p) < sub->len)
		return -EINVAL;
	sub->data = it->p;
	it->p += sub->len;
	it->left--;
	return 1;
}

void px_filter_free(struct px_filter *f)
{
	free(f->keys);
	free(f->seqs);
	free(f->used);
	memset(f, 0, sizeof(*f));
}

static uint32_t hash64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	return (uint32_t)k;
}

static uint32_t find(const struct px_filter *f, uint64_t client)
{
	uint32_t i = hash64(client) & (f->cap - 1);
	while (f->used[i] && f->keys[i] != client)
		i = (i + 1) & (f->cap - 1);
	return i;
}

/* Rebuild the table with capacity CAP, leaving out the clients of node DROP (256: none). */
static int rehash(struct px_filter *f, uint32_t cap, uint32_t drop)
{
	struct px_filter n = {0};
	n.cap = cap;
	n.keys = px__malloc(sizeof(uint64_t) * cap);
	n.seqs = px__malloc(sizeof(uint64_t) * cap);
	n.used = px__calloc(cap, 1);
	if (!n.keys || !n.seqs || !n.used) {
		px_filter_free(&n);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < f->cap; i++) {
		uint32_t j;
		if (!f->used[i] || PX_CLIENT_NODE(f->keys[i]) == drop)
			continue;
		j = find(&n, f->keys[i]);
		n.used[j] = 1;
		n.keys[j] = f->keys[i];
		n.seqs[j] = f->seqs[i];
		n.count++;
	}
	memcpy(n.inc, f->inc, sizeof(n.inc));
	n.stamp = f->stamp;
	px_filter_free(f);
	*f = n;
	return 0;
}

/* 1: CLIENT belongs to a retired incarnation of its node. */
static int retired(const struct px_filter *f, uint64_t client)
{
	uint64_t cur = f->inc[PX_CLIENT_NODE(client)];
	return cur && PX_CLIENT_INC(client) + 1 < cur;
}

uint64_t px_filter_last(const struct px_filter *f, uint64_t client)
{
	uint32_t i;
	if (!f->cap)
		return 0;
	i = find(f, client);
	return f->used[i] ? f->seqs[i] : 0;
}

int px_filter_admit(struct px_filter *f, uint64_t client, uint64_t seq)
{
	uint32_t node = PX_CLIENT_NODE(client), i;
	uint64_t inc = PX_CLIENT_INC(client) + 1, cur = f->inc[node];
	int rv;

	if (seq == 0 || (cur && inc < cur))
		return 0; /* never a seq; a retired client */
	if (inc == cur && f->cap) {
		i = find(f, client);
		if (f->used[i]) {
			if (seq <= f->seqs[i] || (seq != f->seqs[i] + 1 && !GAPS_BUG()))
				return 0; /* a duplicate, or a gap */
			f->seqs[i] = seq;
			return 1;
		}
	}
	if (seq != 1 && !GAPS_BUG())
		return 0; /* a gap: a client's first applied seq is 1 */
	/* one rebuild (so that a failure changes nothing): to grow, and for a new incarnation of
	 * NODE, to retire the older ones */
	if ((f->count + 1) * 2 > f->cap || (inc > cur && cur)) {
		uint32_t cap = (f->count + 1) * 2 > f->cap ? (f->cap ? f->cap * 2 : 16) : f->cap;
		rv = rehash(f, cap, inc > cur && cur ? node : 256);
		if (rv)
			return rv;
	}
	i = find(f, client);
	f->used[i] = 1;
	f->keys[i] = client;
	f->seqs[i] = seq;
	f->count++;
	f->inc[node] = inc;
	return 1;
}

int px_filter_seen(const struct px_filter *f, uint64_t client, uint64_t seq)
{
	if (retired(f, client))
		return -1;
	return seq != 0 && seq <= px_filter_last(f, client);
}

int px_filter_copy(struct px_filter *dst, const struct px_filter *src)
{
	memset(dst, 0, sizeof(*dst));
	memcpy(dst->inc, src->inc, sizeof(dst->inc));
	dst->stamp = src->stamp;
	if (!src->cap)
		return 0;
	dst->keys = px__malloc(sizeof(uint64_t) * src->cap);
	dst->seqs = px__malloc(sizeof(uint64_t) * src->cap);
	dst->used = px__malloc(src->cap);
	if (!dst->keys || !dst->seqs || !dst->used) {
		px_filter_free(dst);
		return -ENOMEM;
	}
	memcpy(dst->keys, src->keys, sizeof(uint64_t) * src->cap);
	memcpy(dst->seqs, src->seqs, sizeof(uint64_t) * src->cap);
	memcpy(dst->used, src->used, src->cap);
	dst->cap = src->cap;
	dst->count = src->count;
	return 0;
}

void px_filter_stamp(struct px_filter *f, uint64_t t)
{
	if (t > f->stamp)
		f->stamp = t;
}

size_t px_filter_size(const struct px_filter *f)
{
	return 12 + (size_t)f->count * 16;
}

static int cmp_u64_pair(const void *a, const void *b)
{
	uint64_t x = ((const uint64_t *)a)[0], y = ((const uint64_t *)b)[0]; /* client ids */
	return x < y ? -1 : x > y;
}

int px_filter_encode(const struct px_filter *f, uint8_t *buf, size_t cap)
{
	uint64_t *pairs;
	uint32_t n = 0;

	if (cap < px_filter_size(f))
		return -ENOBUFS;
	pairs = px__malloc(sizeof(uint64_t) * 2 * (f->count ? f->count : 1));
	if (!pairs)
		return -ENOMEM;
	for (uint32_t i = 0; i < f->cap; i++) {
		if (!f->used[i])
			continue;
		pairs[2 * n] = f->keys[i];
		pairs[2 * n + 1] = f->seqs[i];
		n++;
	}
	qsort(pairs, n, sizeof(uint64_t) * 2, cmp_u64_pair);
	buf[0] = (uint8_t)n;
	buf[1] = (uint8_t)(n >> 8);
	buf[2] = (uint8_t)(n >> 16);
	buf[3] = (uint8_t)(n >> 24);
	wr64(buf + 4, f->stamp);
	for (uint32_t i = 0; i < n; i++) {
		wr64(buf + 12 + 16 * (size_t)i, pairs[2 * i]);
		wr64(buf + 20 + 16 * (size_t)i, pairs[2 * i + 1]);
	}
	free(pairs);
	return 0;
}

int px_filter_decode(struct px_filter *dst, const uint8_t *buf, size_t len)
{
	uint32_t n;
	int rv;

	memset(dst, 0, sizeof(*dst));
	if (len < 12)
		return -EINVAL;
	n = rd32(buf);
	if ((len - 12) / 16 != n || (len - 12) % 16)
		return -EINVAL;
	dst->stamp = rd64(buf + 4);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t c = rd64(buf + 12 + 16 * (size_t)i), s = rd64(buf + 20 + 16 * (size_t)i);
		uint64_t cur = dst->inc[PX_CLIENT_NODE(c)];
		uint32_t j;
		if (s == 0 || px_filter_last(dst, c) != 0 ||
		    (cur && cur != PX_CLIENT_INC(c) + 1)) {
			px_filter_free(dst);
			return -EINVAL;
		}
		rv = px_filter_admit(dst, c, 1);
		if (rv < 0) {
			px_filter_free(dst);
			return rv;
		}
		j = find(dst, c);
		dst->seqs[j] = s;
	}
	return 0;
}
