/*
 * Fuzz target: px_msg_decode, the peer message decoder (consensus/px_msg.h). Bytes from the
 * network reach it after authentication, but a peer can be buggy or compromised. A decoded
 * message must re-encode to exactly the input bytes (the encoding is canonical), and the entries
 * must point inside the input. Each input is decoded twice: as it is, and with its last 4 bytes
 * replaced by the right CRC32C, so that mutations get past the checksum into the body parser.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "consensus/px_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one(const uint8_t *data, size_t size)
{
	struct px_msg_scratch scratch = {0};
	struct px_msg msg;

	if (px_msg_decode(data, size, &msg, &scratch) == 0) {
		for (uint32_t i = 0; i < msg.nent; i++)
			if (msg.ent[i].len && (msg.ent[i].data < data ||
					       msg.ent[i].data + msg.ent[i].len > data + size))
				abort();
		for (uint32_t i = 0; i < msg.nsub; i++)
			if (msg.sub[i].len && (msg.sub[i].data < data ||
					       msg.sub[i].data + msg.sub[i].len > data + size))
				abort();
		size_t need = px_msg_size(&msg);
		uint8_t *buf = malloc(need ? need : 1);
		if (!buf)
			abort();
		long n = px_msg_encode(&msg, buf, need);
		if (n < 0 || (size_t)n != size || memcmp(buf, data, size) != 0)
			abort(); /* decode accepted what encode would not produce */
		free(buf);
	}
	px_msg_scratch_free(&scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	one(data, size);
	if (size >= 4) {
		uint8_t *fixed = malloc(size);
		if (!fixed)
			abort();
		memcpy(fixed, data, size);
		uint32_t crc = px_crc32c(0, fixed, size - 4);
		for (int i = 0; i < 4; i++)
			fixed[size - 4 + i] = (uint8_t)(crc >> (8 * i));
		one(fixed, size);
		free(fixed);
	}
	return 0;
}
