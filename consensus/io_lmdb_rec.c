/* io_lmdb_rec: decoding the replica's px_meta and px_log records (see io_lmdb_rec.h). */
#include <errno.h>
#include <string.h>

#include "consensus/io_lmdb_rec.h"

int rpx__rec_fixed(const void *val, size_t vlen, void *out, size_t len)
{
	if (vlen != len)
		return -EIO;
	memcpy(out, val, len);
	return 0;
}

int rpx__rec_log(const void *key, size_t klen, const void *val, size_t vlen, struct px_entry *e)
{
	const unsigned char *k = key, *p = val;
	uint64_t slot = 0;

	if (klen != RPX__LOG_KEY || vlen < RPX__LOG_HDR)
		return -EIO;
	for (int i = 0; i < 8; i++)
		slot = slot << 8 | k[i];
	e->slot = slot;
	memcpy(&e->ballot, p, 8);
	memcpy(&e->flags, p + 8, 4);
	e->len = (uint32_t)(vlen - RPX__LOG_HDR);
	e->data = e->len ? p + RPX__LOG_HDR : NULL;
	return 0;
}
