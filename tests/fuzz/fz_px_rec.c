/*
 * Fuzz target: the decoders of the replica's on-disk records (consensus/io_lmdb_rec.h), which the
 * storage thread reads at boot from a data directory that may be damaged or another build's.
 * The first input byte picks the record, the rest is its bytes:
 *   0: a fixed-size px_meta value (second byte: which of "init", "format", "promised", "commit",
 *      "applied", "compacted", "incarnation", "cluster"): rpx__rec_fixed;
 *   1: a px_log record (second byte: the key's length, then the key, then the value):
 *      rpx__rec_log, and the entry's value read as a batch as apply does (px_batch.h);
 *   2: the px_meta "filter" value: px_filter_decode, its stamp and (client, seq) lookups.
 * Properties: a fixed value is accepted exactly when it has its size, and then copied whole, else
 * the output is untouched; a log record is accepted exactly when its key has 8 bytes and its value
 * at least 12, and the entry written back in the documented layout gives the same bytes; an
 * entry's data and each submission of its batch lie inside the input.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "consensus/io_lmdb_rec.h"
#include "consensus/px_batch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const size_t fixed_len[] = {1, 4, 8, 8, 8, 8, 8, 16};

static void fixed(const uint8_t *p, size_t n)
{
	unsigned char out[17];
	size_t len;

	if (n < 1)
		return;
	len = fixed_len[p[0] % (sizeof fixed_len / sizeof fixed_len[0])];
	p++;
	n--;
	memset(out, 0xa5, sizeof out);
	int rc = rpx__rec_fixed(p, n, out, len);
	if (rc == 0) {
		if (n != len || memcmp(out, p, len) != 0 || out[len] != 0xa5)
			abort();
	} else {
		if (rc != -EIO || n == len)
			abort();
		for (size_t i = 0; i < sizeof out; i++)
			if (out[i] != 0xa5)
				abort(); /* a refused value must leave the output alone */
	}
}

static void log_rec(const uint8_t *p, size_t n)
{
	struct px_entry e, canary;
	size_t klen;

	if (n < 1)
		return;
	klen = p[0];
	p++;
	n--;
	if (klen > n)
		return;
	const uint8_t *key = p, *val = p + klen;
	size_t vlen = n - klen;
	memset(&e, 0x5a, sizeof e);
	canary = e;
	int rc = rpx__rec_log(key, klen, val, vlen, &e);
	if (rc != 0) {
		if (rc != -EIO || (klen == RPX__LOG_KEY && vlen >= RPX__LOG_HDR) ||
		    memcmp(&e, &canary, sizeof e) != 0)
			abort();
		return;
	}
	if (klen != RPX__LOG_KEY || vlen < RPX__LOG_HDR || e.len != vlen - RPX__LOG_HDR)
		abort();
	if (e.len ? e.data != val + RPX__LOG_HDR : e.data != NULL)
		abort();
	/* written back as io_lmdb.c's rpx__persist lays it out */
	uint8_t kb[8], hb[RPX__LOG_HDR];
	for (int i = 0; i < 8; i++)
		kb[i] = (uint8_t)(e.slot >> (56 - 8 * i));
	memcpy(hb, &e.ballot, 8);
	memcpy(hb + 8, &e.flags, 4);
	if (memcmp(kb, key, 8) != 0 || memcmp(hb, val, RPX__LOG_HDR) != 0)
		abort();
	/* the value as a chosen slot is applied */
	struct px_batch_iter it;
	struct px_sub sub;
	uint64_t subs = 0;
	if (px_batch_iter_init(&it, e.data, e.len) != 0)
		return;
	while (px_batch_next(&it, &sub) == 1) {
		if (sub.len && (sub.data < e.data || sub.data + sub.len > e.data + e.len))
			abort();
		if (++subs > e.len)
			abort(); /* the iteration does not end */
	}
}

static void filter(const uint8_t *p, size_t n)
{
	struct px_filter f = {0};

	if (px_filter_decode(&f, p, n) != 0)
		return;
	if (n >= 12) {
		uint64_t client;
		memcpy(&client, p + 4, 8);
		(void)px_filter_seen(&f, client, px_filter_last(&f, client));
	}
	px_filter_free(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		fixed(data + 1, size - 1);
		break;
	case 1:
		log_rec(data + 1, size - 1);
		break;
	default:
		filter(data + 1, size - 1);
		break;
	}
	return 0;
}
