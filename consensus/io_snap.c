/* io_snap: decoding the frames of a snapshot transfer (see io_snap.h). */
#include <errno.h>
#include <string.h>

#include "consensus/io_snap.h"

int rpx__snap_frame_decode(const uint8_t *b, size_t len, struct rpx_snap_frame *f)
{
	memset(f, 0, sizeof *f);
	if (len < RPX__SNAP_HDR)
		return -EINVAL;
	f->kind = b[4];
	f->xfer = rpx__get64(b + 8);
	f->idx = rpx__get32(b + 16);
	f->body = b + RPX__SNAP_HDR;
	f->len = len - RPX__SNAP_HDR;
	switch (f->kind) {
	case RPX__S_BEGIN:
		if (f->len < RPX__SNAP_BEGIN)
			return -EINVAL;
		f->slot = rpx__get64(f->body);
		f->zxid = rpx__get64(f->body + 8);
		f->next_id = rpx__get64(f->body + 16);
		f->flen = rpx__get32(f->body + 24);
		if (f->len != RPX__SNAP_BEGIN + (size_t)f->flen)
			return -EINVAL;
		f->filter = f->body + RPX__SNAP_BEGIN;
		return 0;
	case RPX__S_DATA:
		return 0;
	case RPX__S_END:
		if (f->len < RPX__SNAP_END)
			return -EINVAL;
		f->chunks = rpx__get32(f->body);
		f->nrec = rpx__get64(f->body + 4);
		return 0;
	default:
		return -EINVAL;
	}
}
