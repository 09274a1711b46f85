/*
 * Fuzz target: zt_ops_decode, the decoder of a tree transaction's ops (store/zt.h), which reads
 * log values replicated from peers and stored on disk. A decoded transaction must re-encode to
 * the input bytes, and its paths must be NUL-terminated inside the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/zt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(const uint8_t *data, size_t size, const char *s)
{
	if (!s)
		return;
	if ((const uint8_t *)s < data || (const uint8_t *)s >= data + size)
		abort();
	if (!memchr(s, 0, (size_t)(data + size - (const uint8_t *)s)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zt_op *ops = NULL;
	uint32_t nops = 0;

	if (zt_ops_decode(data, size, &ops, &nops) != 0)
		return 0;
	for (uint32_t i = 0; i < nops; i++) {
		inside(data, size, ops[i].path);
		inside(data, size, ops[i].path2);
		(void)zt_path_validate(ops[i].path);
		if (ops[i].path2)
			(void)zt_path_validate(ops[i].path2);
		if (ops[i].len && ((const uint8_t *)ops[i].data < data ||
				   (const uint8_t *)ops[i].data + ops[i].len > data + size))
			abort();
	}
	void *buf = NULL;
	size_t len = 0;
	if (zt_ops_encode(ops, nops, &buf, &len) == 0) {
		if (len != size || memcmp(buf, data, size) != 0)
			abort(); /* decode accepted what encode would not produce */
		free(buf);
	}
	free(ops);
	return 0;
}
