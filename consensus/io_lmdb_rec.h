/*
 * io_lmdb_rec: decoding the records of the replica's "px_meta" and "px_log" databases (layouts in
 * io_lmdb.c) as the storage thread reads them at boot and after a failed commit. Pure functions:
 * no LMDB, no allocation, any thread; tests/fuzz/fz_px_rec.c feeds them arbitrary bytes, since
 * a data directory may have been damaged or written by another build.
 */
#ifndef QFS_CONSENSUS_IO_LMDB_REC_H
#define QFS_CONSENSUS_IO_LMDB_REC_H

#include <stddef.h>

#include "consensus/px_msg.h"

#define RPX__LOG_KEY 8	/* be64(slot): key order is slot order */
#define RPX__LOG_HDR 12 /* ballot u64, flags u32 (native byte order) before the entry's value */

/*
 * A fixed-size px_meta value (u8 "init", u32 "format", u64 "promised", "commit", "applied",
 * "compacted", "incarnation", 16 bytes "cluster"): VAL[0..vlen) copied to OUT when vlen is LEN.
 * 0, or -EIO when VAL has another size (OUT untouched).
 */
int rpx__rec_fixed(const void *val, size_t vlen, void *out, size_t len);

/*
 * A px_log record: key be64(slot), value ballot u64, flags u32, then the entry's value bytes.
 * E gets slot, ballot, flags, len (the value's size, as u32) and data, which points into VAL
 * (NULL when len is 0). 0, or -EIO when the key is not RPX__LOG_KEY bytes or the value is shorter
 * than RPX__LOG_HDR (E untouched).
 */
int rpx__rec_log(const void *key, size_t klen, const void *val, size_t vlen, struct px_entry *e);

#endif
