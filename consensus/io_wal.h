/*
 * io_wal: the acceptor log of a Multi-Paxos replica, a file next to the LMDB environment
 * ("acceptor.wal") that makes an acceptor's records durable with one disk flush.
 *
 * Why: an LMDB commit that must survive an operating-system crash flushes twice (data pages, then
 * the meta page). An acceptor may answer only once its promise or accepted value is durable, and
 * that wait is on every write's path. With this log the storage thread appends the batch's
 * acceptor records here and flushes once (fdatasync of blocks written at creation: no metadata
 * changes), reports them durable, and then commits the same records to LMDB lazily (data pages
 * flushed, meta page not: MDB_NOMETASYNC keeps LMDB intact but an OS crash may undo that commit).
 *
 * A record carries the id of the LMDB write transaction that holds the same records. At start
 * (and when the storage thread recreates its state after a failed commit) every record whose
 * transaction id is above the last committed one is written again (replay): those are exactly
 * the lazy commits an OS crash undid, or the commit that failed after its record was flushed.
 * After a full LMDB commit every earlier record is durable in LMDB: the log starts over at
 * offset 0 (rpx_wal_reset); older records left behind hold lower transaction ids and a replay
 * skips them (it stops at the first record that is torn or not a record).
 *
 * On disk: a record is a 32-byte header (magic, payload length, transaction id, BLAKE2b-128 of
 * the header's first 16 bytes and the payload) then the payload; records follow each other.
 * The file has a fixed size, filled with zeros when created (through a temporary file, renamed).
 * A batch that does not fit gets -ENOSPC: the caller commits it in full instead and resets.
 *
 * One thread uses a struct rpx_wal at a time (the storage thread, or the opening thread before
 * it starts). No LMDB here: the caller passes transaction ids.
 */
#ifndef QFS_CONSENSUS_IO_WAL_H
#define QFS_CONSENSUS_IO_WAL_H

#include <stddef.h>
#include <stdint.h>

#define RPX_WAL_NAME "acceptor.wal"
#define RPX_WAL_SIZE (16u << 20) /* bytes of a new log */
#define RPX_WAL_HDR  32u

struct rpx_wal {
	int fd; /* -1: no log (rpx_wal_open not called or failed) */
	int nosync;
	uint64_t size; /* of the file */
	uint64_t off;  /* where the next record goes */
	uint8_t *buf;  /* the record being built (header room first) */
	size_t len, cap;
	uint64_t txnid;
	/* counters: relaxed atomics, read from any thread */
	uint64_t appended, resets, replayed;
};

/* Open (create, zero-filled, when missing) DIR/acceptor.wal; NOSYNC: never flush (a data
 * directory opened without syncs, tests). A file of another size than SIZE keeps its own size
 * (>= 1 MiB and a multiple of 4096, or -EINVAL). Offset 0 until a replay finds the end.
 * 0, -errno. */
int rpx_wal_open(struct rpx_wal *w, const char *dir, uint64_t size, int nosync);
void rpx_wal_close(struct rpx_wal *w);

/* Start building the record of LMDB write transaction TXNID (drops a record being built). */
void rpx_wal_begin(struct rpx_wal *w, uint64_t txnid);
/* Append to the record's payload A (ALEN bytes) then B (BLEN bytes, may be NULL). 0, -ENOMEM. */
int rpx_wal_add(struct rpx_wal *w, const void *a, size_t alen, const void *b, size_t blen);
/* Whether the record being built has a payload. */
int rpx_wal_pending(const struct rpx_wal *w);
/*
 * Write the record at the log's end and flush it. 0: durable. -ENOSPC: it does not fit in what is
 * left (nothing written; commit in full and reset). Another -errno: the write or the flush failed
 * (the log's state is unknown: the caller must not report the records durable and must commit in
 * full and reset before the next record).
 */
int rpx_wal_commit(struct rpx_wal *w);

/* Every earlier record is durable elsewhere (a full LMDB commit): the next one goes at offset 0. */
void rpx_wal_reset(struct rpx_wal *w);

/*
 * Read the records from offset 0, in order, up to the first torn or foreign one; call CB for each
 * whose transaction id is above AFTER (a nonzero return from CB stops the replay and is
 * returned). Then the next record goes at the end of what was read. 0, CB's return, -EIO (read
 * error), -ENOMEM.
 */
int rpx_wal_replay(struct rpx_wal *w, uint64_t after,
		   int (*cb)(void *arg, uint64_t txnid, const uint8_t *p, size_t len), void *arg);

#endif
