/*
 * Unit tests: the px message codec (round trips, every truncation, bit flips, forged checksums),
 * CRC32C, batch values and the de-duplication filter.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "consensus/px_node.h"
#include "consensus/px_batch.h"
#include "consensus/px_msg.h"

static uint64_t rs = 88172645463325252ull;
static uint64_t xr(void)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return rs;
}

static const uint8_t payload[] = "the quick brown fox jumps over the lazy dog";

/* A message of every type with a few entries and submissions. */
static void sample(struct px_msg *m, uint8_t type, struct px_entry *ent, struct px_sub *sub)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->from = 2;
	m->to = 4;
	m->ballot = 0x1234567890abcdefull;
	m->commit = 77;
	m->slot = 78;
	m->aux = 0xffffffffffffffffull;
	for (int i = 0; i < 3; i++) {
		ent[i] = (struct px_entry){.slot = 100 + (uint64_t)i,
					   .ballot = 0x501,
					   .flags = i == 1 ? PX_ENT_CHOSEN : 0,
					   .len = (uint32_t)(i * 7),
					   .data = i ? payload : NULL};
		sub[i] = (struct px_sub){.client = 9,
					 .seq = 10 + (uint64_t)i,
					 .len = (uint32_t)(i * 5),
					 .data = i ? payload + 3 : NULL};
	}
	m->nent = type == PX_MSG_SUBMIT ? 0 : 3;
	m->ent = m->nent ? ent : NULL;
	m->nsub = type == PX_MSG_SUBMIT ? 3 : 0;
	m->sub = m->nsub ? sub : NULL;
}

static long encode(const struct px_msg *m, uint8_t **buf)
{
	size_t n = px_msg_size(m);
	long len;
	*buf = malloc(n);
	cr_assert_not_null(*buf);
	len = px_msg_encode(m, *buf, n);
	cr_assert_eq(len, (long)n);
	return len;
}

Test(px_crc, known_vectors)
{
	cr_assert_eq(px_crc32c(0, "123456789", 9), 0xe3069283u);
	cr_assert_eq(px_crc32c(0, "", 0), 0u);
	/* hardware and table paths agree, whatever the split */
	{
		uint8_t b[100];
		for (int i = 0; i < 100; i++)
			b[i] = (uint8_t)(i * 37 + 1);
		uint32_t whole = px_crc32c(0, b, 100);
		for (size_t k = 0; k <= 100; k++) {
			uint32_t part = px_crc32c(px_crc32c(0, b, k), b + k, 100 - k);
			cr_assert_eq(part, whole, "split at %zu", k);
		}
	}
}

Test(px_msg, round_trip_every_type)
{
	struct px_entry ent[3];
	struct px_sub sub[3];
	struct px_msg_scratch sc = {0};

	for (uint8_t t = 1; t <= PX_MSG_TYPE_MAX; t++) {
		struct px_msg m, d;
		uint8_t *buf;
		long len;
		sample(&m, t, ent, sub);
		len = encode(&m, &buf);
		cr_assert_eq(px_msg_decode(buf, (size_t)len, &d, &sc), 0, "type %u", t);
		cr_assert_eq(d.type, t);
		cr_assert_eq(d.from, 2);
		cr_assert_eq(d.to, 4);
		cr_assert_eq(d.ballot, m.ballot);
		cr_assert_eq(d.commit, 77);
		cr_assert_eq(d.slot, 78);
		cr_assert_eq(d.aux, m.aux);
		cr_assert_eq(d.nent, m.nent);
		cr_assert_eq(d.nsub, m.nsub);
		for (uint32_t i = 0; i < d.nent; i++) {
			cr_assert_eq(d.ent[i].slot, ent[i].slot);
			cr_assert_eq(d.ent[i].ballot, ent[i].ballot);
			cr_assert_eq(d.ent[i].flags, ent[i].flags);
			cr_assert_eq(d.ent[i].len, ent[i].len);
			if (d.ent[i].len)
				cr_assert_eq(memcmp(d.ent[i].data, ent[i].data, d.ent[i].len), 0);
		}
		for (uint32_t i = 0; i < d.nsub; i++) {
			cr_assert_eq(d.sub[i].client, 9);
			cr_assert_eq(d.sub[i].seq, 10 + i);
			cr_assert_eq(d.sub[i].len, sub[i].len);
			if (d.sub[i].len)
				cr_assert_eq(memcmp(d.sub[i].data, sub[i].data, d.sub[i].len), 0);
		}
		free(buf);
	}
	px_msg_scratch_free(&sc);
}

Test(px_msg, every_truncation_is_rejected)
{
	struct px_entry ent[3];
	struct px_sub sub[3];
	struct px_msg_scratch sc = {0};

	for (uint8_t t = 1; t <= PX_MSG_TYPE_MAX; t++) {
		struct px_msg m, d;
		uint8_t *buf;
		long len;
		sample(&m, t, ent, sub);
		len = encode(&m, &buf);
		for (long k = 0; k < len; k++) {
			/* a copy of exactly k bytes, so that ASan sees any read past it */
			uint8_t *cut = malloc(k ? (size_t)k : 1);
			int rv;
			memcpy(cut, buf, (size_t)k);
			rv = px_msg_decode(cut, (size_t)k, &d, &sc);
			cr_assert(rv == -EINVAL || rv == -EBADMSG, "type %u cut at %ld: %d", t, k,
				  rv);
			free(cut);
		}
		/* and one byte too many */
		{
			uint8_t *more = malloc((size_t)len + 1);
			memcpy(more, buf, (size_t)len);
			more[len] = 0;
			cr_assert_eq(px_msg_decode(more, (size_t)len + 1, &d, &sc), -EINVAL);
			free(more);
		}
		free(buf);
	}
	px_msg_scratch_free(&sc);
}

Test(px_msg, bit_flips_are_rejected)
{
	struct px_entry ent[3];
	struct px_sub sub[3];
	struct px_msg_scratch sc = {0};

	for (uint8_t t = 1; t <= PX_MSG_TYPE_MAX; t++) {
		struct px_msg m, d;
		uint8_t *buf;
		long len;
		sample(&m, t, ent, sub);
		len = encode(&m, &buf);
		/* every single bit, then random sets of 2 and 3 bits: CRC32C detects them all */
		for (long bit = 0; bit < len * 8; bit++) {
			buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			int rv = px_msg_decode(buf, (size_t)len, &d, &sc);
			cr_assert(rv == -EINVAL || rv == -EBADMSG, "type %u bit %ld: %d", t, bit,
				  rv);
			buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
		for (int k = 0; k < 2000; k++) {
			long b[3];
			int nb = 2 + (int)(xr() % 2), rv;
			for (int i = 0; i < nb; i++) {
				b[i] = (long)(xr() % (uint64_t)(len * 8));
				buf[b[i] / 8] ^= (uint8_t)(1u << (b[i] % 8));
			}
			rv = px_msg_decode(buf, (size_t)len, &d, &sc);
			for (int i = nb - 1; i >= 0; i--)
				buf[b[i] / 8] ^= (uint8_t)(1u << (b[i] % 8));
			/* flips that cancel out (same bit twice) leave a valid message */
			if (nb == 2 && b[0] == b[1])
				continue;
			if (nb == 3 && (b[0] == b[1] || b[1] == b[2] || b[0] == b[2]))
				continue;
			cr_assert(rv == -EINVAL || rv == -EBADMSG, "type %u: %d", t, rv);
		}
		cr_assert_eq(px_msg_decode(buf, (size_t)len, &d, &sc), 0);
		free(buf);
	}
	px_msg_scratch_free(&sc);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Random structures with a valid checksum: the structural checks alone must hold the line. */
Test(px_msg, forged_checksums_never_read_outside)
{
	struct px_msg_scratch sc = {0};
	for (int k = 0; k < 20000; k++) {
		size_t len = PX_MSG_HDR + 4 + (size_t)(xr() % 200);
		uint8_t *b = malloc(len);
		struct px_msg d;
		int rv;
		for (size_t i = 0; i < len; i++)
			b[i] = (uint8_t)xr();
		put32(b, PX_MSG_MAGIC);
		b[4] = xr() % 8 ? PX_MSG_VERSION : (uint8_t)xr();
		b[5] = (uint8_t)(xr() % 12);
		b[6] = (uint8_t)(xr() % 10);
		b[7] = (uint8_t)(xr() % 10);
		put32(b + 40, (uint32_t)(xr() % 5 ? xr() % 6 : xr()));
		put32(b + 44, (uint32_t)(xr() % 5 ? xr() % 6 : xr()));
		put32(b + 48, xr() % 4 ? (uint32_t)(len - PX_MSG_HDR - 4) : (uint32_t)xr());
		put32(b + 52, xr() % 8 ? 0 : (uint32_t)xr());
		/* a few well-formed entry headers, with random lengths */
		if (len >= PX_MSG_HDR + 4 + PX_MSG_ENT_HDR && xr() % 2)
			put32(b + PX_MSG_HDR + 20, (uint32_t)(xr() % 64));
		put32(b + len - 4, px_crc32c(0, b, len - 4));
		rv = px_msg_decode(b, len, &d, &sc);
		if (rv == 0) {
			/* everything it points to lies inside the buffer */
			for (uint32_t i = 0; i < d.nent; i++)
				if (d.ent[i].len)
					cr_assert(d.ent[i].data >= b &&
						  d.ent[i].data + d.ent[i].len <= b + len - 4);
			for (uint32_t i = 0; i < d.nsub; i++)
				if (d.sub[i].len)
					cr_assert(d.sub[i].data >= b &&
						  d.sub[i].data + d.sub[i].len <= b + len - 4);
			cr_assert(d.type >= 1 && d.type <= PX_MSG_TYPE_MAX);
			cr_assert(d.from < PX_MSG_MAX_NODE && d.to < PX_MSG_MAX_NODE);
		} else {
			cr_assert(rv == -EINVAL || rv == -EBADMSG, "%d", rv);
		}
		free(b);
	}
	px_msg_scratch_free(&sc);
}

Test(px_msg, encode_errors)
{
	struct px_entry ent[3];
	struct px_sub sub[3];
	struct px_msg m;
	uint8_t buf[16];

	sample(&m, PX_MSG_ACCEPT, ent, sub);
	cr_assert_eq(px_msg_encode(&m, buf, sizeof(buf)), -ENOBUFS);
	m.type = 0;
	cr_assert_eq(px_msg_encode(&m, buf, sizeof(buf)), -EINVAL);
	m.type = PX_MSG_TYPE_MAX + 1;
	cr_assert_eq(px_msg_encode(&m, buf, sizeof(buf)), -EINVAL);
	m.type = PX_MSG_ACCEPT;
	m.to = PX_MSG_MAX_NODE;
	cr_assert_eq(px_msg_encode(&m, buf, sizeof(buf)), -EINVAL);
}

Test(px_msg, wrong_magic_and_version)
{
	struct px_entry ent[3];
	struct px_sub sub[3];
	struct px_msg_scratch sc = {0};
	struct px_msg m, d;
	uint8_t *buf;
	long len;

	sample(&m, PX_MSG_PROMISE, ent, sub);
	len = encode(&m, &buf);
	buf[0] ^= 1;
	cr_assert_eq(px_msg_decode(buf, (size_t)len, &d, &sc), -EBADMSG);
	buf[0] ^= 1;
	buf[4] = PX_MSG_VERSION + 1; /* a future version, checksum fixed up */
	put32(buf + len - 4, px_crc32c(0, buf, (size_t)len - 4));
	cr_assert_eq(px_msg_decode(buf, (size_t)len, &d, &sc), -EINVAL);
	buf[4] = 1; /* version 1: batches without stamps */
	put32(buf + len - 4, px_crc32c(0, buf, (size_t)len - 4));
	cr_assert_eq(px_msg_decode(buf, (size_t)len, &d, &sc), -EINVAL);
	free(buf);
	px_msg_scratch_free(&sc);
}

/* ---- batches ---- */

static uint32_t make_batch(uint8_t *v, uint32_t n)
{
	uint32_t p = 12;
	put32(v, n);
	for (int k = 0; k < 8; k++) /* the leader's stamp */
		v[4 + k] = (uint8_t)(1795830000123ull >> (8 * k));
	for (uint32_t i = 0; i < n; i++) {
		for (int k = 0; k < 8; k++) {
			v[p + k] = (uint8_t)((uint64_t)(i + 1) >> (8 * k));
			v[p + 8 + k] = (uint8_t)((uint64_t)(i + 5) >> (8 * k));
		}
		put32(v + p + 16, i);
		p += 20;
		memset(v + p, 'x', i);
		p += i;
	}
	return p;
}

Test(px_batch, iterate_and_reject_malformed)
{
	uint8_t v[512];
	uint32_t len = make_batch(v, 5);
	struct px_batch_iter it;
	struct px_sub s;
	int n = 0, rv;

	cr_assert_eq(px_batch_iter_init(&it, v, len), 0);
	cr_assert_eq(it.time_ms, 1795830000123ull);
	while ((rv = px_batch_next(&it, &s)) == 1) {
		cr_assert_eq(s.client, (uint64_t)n + 1);
		cr_assert_eq(s.seq, (uint64_t)n + 5);
		cr_assert_eq(s.len, (uint32_t)n);
		n++;
	}
	cr_assert_eq(rv, 0);
	cr_assert_eq(n, 5);
	/* a no-op has no submissions */
	cr_assert_eq(px_batch_iter_init(&it, NULL, 0), 0);
	cr_assert_eq(px_batch_next(&it, &s), 0);
	/* every truncation and an extra byte fail, never read past the end */
	for (uint32_t k = 1; k < len; k++) {
		uint8_t *cut = malloc(k);
		memcpy(cut, v, k);
		rv = px_batch_iter_init(&it, cut, k);
		while (rv == 0 && (rv = px_batch_next(&it, &s)) == 1)
			rv = 0;
		cr_assert_eq(rv, -EINVAL, "cut at %u", k);
		free(cut);
	}
	v[len] = 0;
	rv = px_batch_iter_init(&it, v, len + 1);
	while (rv == 0 && (rv = px_batch_next(&it, &s)) == 1)
		rv = 0;
	cr_assert_eq(rv, -EINVAL);
	/* an absurd count */
	put32(v, 0xffffffffu);
	cr_assert_eq(px_batch_iter_init(&it, v, len), -EINVAL);
}

/* ---- the de-duplication filter ---- */

Test(px_filter, applies_in_order_each_seq_once)
{
	struct px_filter f = {0};
	uint64_t a = PX_CLIENT(1, 5, 0), b = PX_CLIENT(2, 1, 0);
	cr_assert_eq(px_filter_admit(&f, a, 1), 1);
	cr_assert_eq(px_filter_admit(&f, a, 1), 0); /* duplicate */
	cr_assert_eq(px_filter_admit(&f, a, 3), 0); /* a gap: 2 is missing */
	cr_assert_eq(px_filter_admit(&f, a, 2), 1);
	cr_assert_eq(px_filter_admit(&f, a, 3), 1); /* now in order */
	cr_assert_eq(px_filter_admit(&f, a, 2), 0);
	cr_assert_eq(px_filter_admit(&f, b, 3), 0); /* a client starts at 1 */
	cr_assert_eq(px_filter_admit(&f, b, 1), 1); /* clients are independent */
	cr_assert_eq(px_filter_admit(&f, a, 0), 0); /* seq 0 is never applied */
	cr_assert_eq(px_filter_last(&f, a), 3);
	cr_assert_eq(px_filter_seen(&f, a, 2), 1);
	cr_assert_eq(px_filter_seen(&f, a, 4), 0);
	cr_assert_eq(px_filter_seen(&f, PX_CLIENT(7, 1, 0), 1), 0);
	px_filter_free(&f);
}

Test(px_filter, a_new_incarnation_retires_the_older_ones)
{
	struct px_filter f = {0};
	uint64_t a = PX_CLIENT(1, 5, 0), a6 = PX_CLIENT(1, 6, 0), b = PX_CLIENT(2, 1, 0);
	for (uint64_t q = 1; q <= 3; q++)
		cr_assert_eq(px_filter_admit(&f, a, q), 1);
	cr_assert_eq(px_filter_admit(&f, b, 1), 1);
	cr_assert_eq(px_filter_admit(&f, a6, 2), 0); /* a gap retires nothing */
	cr_assert_eq(px_filter_last(&f, a), 3);
	cr_assert_eq(px_filter_admit(&f, a6, 1), 1);
	cr_assert_eq(px_filter_last(&f, a), 0);
	cr_assert_eq(px_filter_seen(&f, a, 1), -1); /* retired: cannot tell */
	cr_assert_eq(px_filter_admit(&f, a, 4), 0); /* a late copy of a retired client */
	cr_assert_eq(px_filter_admit(&f, PX_CLIENT(1, 4, 0), 1), 0);
	cr_assert_eq(px_filter_admit(&f, PX_CLIENT(1, 6, 1), 1), 1); /* same incarnation */
	cr_assert_eq(px_filter_last(&f, b), 1);			      /* other nodes untouched */
	cr_assert_eq(f.count, 3);
	/* bounded: a thousand boots of node 3 leave one entry for it */
	for (uint64_t inc = 1; inc <= 1000; inc++)
		for (uint64_t q = 1; q <= 3; q++)
			cr_assert_eq(px_filter_admit(&f, PX_CLIENT(3, inc, 0), q), 1);
	cr_assert_eq(f.count, 4);
	cr_assert_eq(px_filter_size(&f), 12 + 4 * 16);
	px_filter_free(&f);
}

/* Against a model (per client the last seq, per node the current incarnation), over random
 * submissions of 2 nodes x 3 incarnations x 2 clients. */
Test(px_filter, matches_a_model)
{
	for (int round = 0; round < 50; round++) {
		struct px_filter f = {0};
		uint64_t last[2][4][2], cur[2] = {0, 0};
		memset(last, 0, sizeof(last));
		for (int k = 0; k < 3000; k++) {
			uint32_t n = (uint32_t)(xr() % 2), i = (uint32_t)(1 + xr() % 3),
				 c = (uint32_t)(xr() % 2);
			uint64_t cl = PX_CLIENT(n + 1, i, c), q, *l = &last[n][i][c];
			int want, got;
			q = xr() % 3 ? *l + 1 : xr() % (*l + 3);
			if (i < cur[n])
				want = 0;
			else if (i == cur[n])
				want = q == *l + 1 && q > 0;
			else
				want = q == 1;
			got = px_filter_admit(&f, cl, q);
			cr_assert_eq(got, want, "node %u inc %u client %u seq %llu (last %llu)", n,
				     i, c, (unsigned long long)q, (unsigned long long)*l);
			if (got) {
				if (i > cur[n]) {
					memset(last[n], 0, sizeof(last[n]));
					cur[n] = i;
				}
				*l = q;
			}
		}
		/* a snapshot round trip keeps the exact state */
		{
			struct px_filter g = {0};
			size_t sz = px_filter_size(&f);
			uint8_t *b = malloc(sz);
			cr_assert_eq(px_filter_encode(&f, b, sz), 0);
			cr_assert_eq(px_filter_decode(&g, b, sz), 0);
			for (uint32_t n = 0; n < 2; n++)
				for (uint32_t i = 1; i <= 3; i++)
					for (uint32_t c = 0; c < 2; c++)
						for (uint64_t q = 1; q < 40; q++)
							cr_assert_eq(
							    px_filter_seen(&g, PX_CLIENT(n + 1, i, c), q),
							    px_filter_seen(&f, PX_CLIENT(n + 1, i, c), q));
			px_filter_free(&g);
			cr_assert_eq(px_filter_decode(&g, b, sz - 1), -EINVAL);
			free(b);
		}
		px_filter_free(&f);
	}
}

/* Malformed stored filters are refused: seq 0, a client twice, two incarnations of one node. */
Test(px_filter, decode_refuses_what_admit_cannot_make)
{
	struct px_filter g = {0};
	uint8_t b[12 + 32] = {2, 0, 0, 0, 7}; /* count 2, stamp 7 */
	uint64_t v[4][4] = {{PX_CLIENT(1, 1, 0), 0, PX_CLIENT(2, 1, 0), 1},
			    {PX_CLIENT(1, 1, 0), 1, PX_CLIENT(1, 1, 0), 2},
			    {PX_CLIENT(1, 1, 0), 1, PX_CLIENT(1, 2, 0), 1},
			    {PX_CLIENT(1, 1, 0), 4, PX_CLIENT(1, 1, 1), 2}};
	for (int k = 0; k < 4; k++) {
		for (int w = 0; w < 4; w++)
			for (int j = 0; j < 8; j++)
				b[12 + 8 * w + j] = (uint8_t)(v[k][w] >> (8 * j));
		cr_assert_eq(px_filter_decode(&g, b, sizeof(b)), k == 3 ? 0 : -EINVAL, "case %d", k);
		if (k == 3) {
			cr_assert_eq(px_filter_last(&g, PX_CLIENT(1, 1, 0)), 4);
			cr_assert_eq(g.stamp, 7);
		}
		px_filter_free(&g);
	}
}

#ifdef QFS_TEST_HOOKS
/* Failed allocations come back as -ENOMEM, leave nothing behind (ASan checks leaks). */
Test(px_alloc, failures_are_reported)
{
	struct px_entry ent[3];
	struct px_sub sub[3];
	struct px_msg_scratch sc = {0};
	struct px_msg m, d;
	struct px_filter f = {0};
	uint8_t *buf;
	long len;

	sample(&m, PX_MSG_SUBMIT, ent, sub);
	len = encode(&m, &buf);
	px_debug_alloc_countdown = 1;
	cr_assert_eq(px_msg_decode(buf, (size_t)len, &d, &sc), -ENOMEM);
	cr_assert_eq(px_msg_decode(buf, (size_t)len, &d, &sc), 0);
	free(buf);
	px_msg_scratch_free(&sc);
	for (unsigned long k = 1; k <= 4; k++) {
		px_debug_alloc_countdown = k;
		for (uint64_t c = 1; c <= 40; c++)
			if (px_filter_admit(&f, c, 1) < 0)
				break;
		px_debug_alloc_countdown = 0;
		px_filter_free(&f);
	}
	/* px_init fails cleanly at every allocation */
	for (unsigned long k = 1; k <= 3; k++) {
		struct px_config cfg = {.id = 0, .n = 3, .heartbeat = 10, .election = 50};
		struct px_node *nd = NULL;
		int rv;
		px_debug_alloc_countdown = k;
		rv = px_init(&nd, &cfg, NULL, 0, 1);
		px_debug_alloc_countdown = 0;
		cr_assert(rv == 0 || rv == -ENOMEM);
		px_free(rv == 0 ? nd : NULL);
	}
}
#endif
