/*
 * Fuzz target: rpx__snap_frame_decode (consensus/io_snap.h), the header and the BEGIN / END
 * fields of the snapshot transfer frames that peers send; a BEGIN frame's filter then goes
 * through px_filter_decode, as the storage thread decodes it at install. The input is the frame
 * after its magic (the receiver checks the magic first).
 * Properties: refused exactly as io_snap.h says; an accepted frame's body and filter lie inside
 * the input, and written back in io_uv.c's layout (header, BEGIN and END fields) it gives the
 * input bytes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "consensus/io_snap.h"
#include "consensus/px_batch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rpx_snap_frame f;
	uint8_t *b = malloc(size + 4);
	uint8_t w[RPX__SNAP_HDR + RPX__SNAP_BEGIN];
	size_t len = size + 4;
	int rc;

	if (!b)
		abort();
	put32(b, RPX__SNAP_MAGIC);
	memcpy(b + 4, data, size);
	rc = rpx__snap_frame_decode(b, len, &f);
	int ok =
	    len >= RPX__SNAP_HDR &&
	    ((b[4] == RPX__S_BEGIN && len >= RPX__SNAP_HDR + RPX__SNAP_BEGIN &&
	      len == RPX__SNAP_HDR + RPX__SNAP_BEGIN +
			 (size_t)(b[44] | b[45] << 8 | b[46] << 16 | (uint32_t)b[47] << 24)) ||
	     b[4] == RPX__S_DATA || (b[4] == RPX__S_END && len >= RPX__SNAP_HDR + RPX__SNAP_END));
	if (rc != (ok ? 0 : -EINVAL))
		abort();
	if (rc) {
		free(b);
		return 0;
	}
	if (f.kind != b[4] || f.body != b + RPX__SNAP_HDR || f.len != len - RPX__SNAP_HDR)
		abort();
	memcpy(w, b, 8); /* magic, kind, the 3 bytes after it (not read) */
	put64(w + 8, f.xfer);
	put32(w + 16, f.idx);
	if (memcmp(w, b, RPX__SNAP_HDR) != 0)
		abort();
	if (f.kind == RPX__S_BEGIN) {
		struct px_filter flt = {0};
		put64(w + RPX__SNAP_HDR, f.slot);
		put64(w + RPX__SNAP_HDR + 8, f.zxid);
		put64(w + RPX__SNAP_HDR + 16, f.next_id);
		put32(w + RPX__SNAP_HDR + 24, f.flen);
		if (memcmp(w, b, sizeof w) != 0 || f.filter != b + sizeof w ||
		    f.filter + f.flen != b + len)
			abort();
		if (px_filter_decode(&flt, f.filter, f.flen) == 0)
			px_filter_free(&flt);
	} else if (f.kind == RPX__S_END) {
		put32(w + RPX__SNAP_HDR, f.chunks);
		put64(w + RPX__SNAP_HDR + 4, f.nrec);
		if (memcmp(w, b, RPX__SNAP_HDR + RPX__SNAP_END) != 0)
			abort();
	}
	free(b);
	return 0;
}
