/*
 * Fuzz target: px_filter_decode (consensus/px_batch.h), the de-duplication filter as stored in a
 * snapshot, which a node receives from a peer when it catches up. A decoded filter must encode,
 * and encoding is a fixed point: decode(encode(f)) encodes to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "consensus/px_batch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *encode(const struct px_filter *f, size_t *len)
{
	*len = px_filter_size(f);
	uint8_t *buf = malloc(*len ? *len : 1);
	if (!buf || px_filter_encode(f, buf, *len) != 0)
		abort();
	return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct px_filter f = {0}, g = {0};
	size_t l1, l2;

	if (px_filter_decode(&f, data, size) != 0)
		return 0;
	if (size >= 12) {
		uint64_t client;
		memcpy(&client, data + 4, 8);
		uint64_t last = px_filter_last(&f, client);
		(void)px_filter_seen(&f, client, last);
		(void)px_filter_seen(&f, client, last > 70 ? last - 70 : 1);
	}
	uint8_t *b1 = encode(&f, &l1);
	if (px_filter_decode(&g, b1, l1) != 0)
		abort(); /* what encode writes, decode must read */
	uint8_t *b2 = encode(&g, &l2);
	if (l1 != l2 || memcmp(b1, b2, l1) != 0)
		abort();
	free(b1);
	free(b2);
	px_filter_free(&f);
	px_filter_free(&g);
	return 0;
}
