/*
 * Fuzz target: px_batch_iter_init / px_batch_next, the reader of a chosen slot's value
 * (consensus/px_batch.h). Values come from peers (accept and catch-up messages) and from disk.
 * Every submission must lie inside the value, and the iteration must end.
 */
#include <stdint.h>
#include <stdlib.h>

#include "consensus/px_batch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct px_batch_iter it;
	struct px_sub sub;
	uint64_t n = 0;
	int rc;

	if (size > UINT32_MAX)
		return 0;
	if (px_batch_iter_init(&it, data, (uint32_t)size) != 0)
		return 0;
	while ((rc = px_batch_next(&it, &sub)) == 1) {
		if (sub.len && (sub.data < data || sub.data + sub.len > data + size))
			abort();
		if (++n > size)
			abort(); /* more submissions than bytes: the iteration does not end */
	}
	return 0;
}
