/*
 * io_snap: the frames of a snapshot transfer between replicas. io_uv.c sends them (a BEGIN, DATA
 * chunks of store/zt_snap.h records, an END) and hands what it receives to the storage thread.
 * Decoding is pure (no libuv, no allocation, any thread) so that tests/fuzz/fz_snap_frame.c can
 * feed it arbitrary bytes: the frames come from peers.
 *
 * A frame (integers little-endian): u32 RPX__SNAP_MAGIC, u8 kind, 3 zero bytes, u64 transfer id,
 * u32 chunk index, then the body:
 *   BEGIN  u64 slot (the sender's applied slot), u64 last zxid, u64 next node id (the tree's meta
 *          state, zt_snap_state), u32 filter length, the filter (px_filter_encode)
 *   DATA   one chunk (zt_snap_export), any length
 *   END    u32 number of DATA chunks sent, u64 number of records sent
 */
#ifndef QFS_CONSENSUS_IO_SNAP_H
#define QFS_CONSENSUS_IO_SNAP_H

#include <stddef.h>
#include <stdint.h>

#define RPX__SNAP_MAGIC 0x504e5351u /* "QSNP" */
#define RPX__SNAP_HDR	20u
#define RPX__SNAP_BEGIN 28u /* BEGIN body before the filter */
#define RPX__SNAP_END	12u /* END body */

/* Little-endian integers of the frames (and of io_uv.c's other peer messages). */
static inline void rpx__put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void rpx__put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t rpx__get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static inline uint32_t rpx__get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

enum { RPX__S_BEGIN = 1, RPX__S_DATA = 2, RPX__S_END = 3 };

struct rpx_snap_frame {
	int kind; /* RPX__S_* */
	uint64_t xfer;
	uint32_t idx;
	const uint8_t *body; /* after the header, into the frame */
	size_t len;
	/* BEGIN */
	uint64_t slot;
	uint64_t zxid;
	uint64_t next_id;
	const uint8_t *filter; /* into the frame */
	uint32_t flen;
	/* END */
	uint32_t chunks;
	uint64_t nrec;
};

/*
 * Decode frame B[0..len) (whose magic the caller has checked) into *F; pointers point into B.
 * 0, or -EINVAL: shorter than the header, an unknown kind, a BEGIN shorter than RPX__SNAP_BEGIN
 * or whose filter length is not the rest of it, an END shorter than RPX__SNAP_END.
 */
int rpx__snap_frame_decode(const uint8_t *b, size_t len, struct rpx_snap_frame *f);

#endif
