/*
 * zt_snap: the whole tree as a stream of records, for snapshots sent to a lagging replica.
 *
 * The tree is already durable in LMDB, so a snapshot is a read snapshot (st_rtxn): the exporter
 * walks the "tree" database in key order and writes its records verbatim into chunks; the importer
 * stages them in a database of its own ("zt_stage") over as many write transactions as it likes,
 * then replaces the tree with the staged records in ONE write transaction (zt_snap_install), so a
 * reader or a crash sees either the old tree or the new one. Internal node ids travel with the
 * records: after an install the tree is numbered as the sender's, consistently.
 *
 * Chunk format (native byte order, like the tree records; both ends run the same build): records
 * one after the other, each u16 key length, u32 value length, key, value.
 *
 * Threads: export on any thread that holds the read snapshot; the staging and install functions in
 * the one write transaction's thread.
 */
#ifndef QFS_STORE_ZT_SNAP_H
#define QFS_STORE_ZT_SNAP_H

#include <stddef.h>
#include <stdint.h>

#include "store/st.h"

#define ZT_SNAP_KEY_MAX 263					    /* 8 + ZT_NAME_MAX */
#define ZT_SNAP_REC_MAX (6 + ZT_SNAP_KEY_MAX + 128 + (1024 * 1024)) /* one record at most */

/* The tree's meta state that travels with a snapshot. */
struct zt_snap_state {
	uint64_t last_zxid;
	uint64_t next_id;
};

/* Where an export stands: the last key written (len 0: nothing yet). */
struct zt_snap_cursor {
	uint16_t len;
	unsigned char key[ZT_SNAP_KEY_MAX];
	int done;
};

/* The meta state of snapshot R. 0, -EIO. */
int zt_snap_state(struct st_rtxn *r, struct zt_snap_state *out);

/*
 * Write the records after C's position into BUF[0..cap) (cap >= ZT_SNAP_REC_MAX), as many as fit;
 * *len gets the bytes written, C moves on (C->done = 1 once the last record is out).
 * Returns the number of records written (>= 0) or -EIO / -ENOBUFS (cap too small).
 */
long zt_snap_export(struct st_rtxn *r, struct zt_snap_cursor *c, unsigned char *buf, size_t cap,
		    size_t *len);

/* Empty the staging database (start of a transfer). 0, -ENOSPC, -EIO. */
int zt_snap_stage_clear(struct st_wtxn *w);

/* Stage the records of one chunk. Returns the number of records, -EINVAL (malformed chunk),
 * -ENOSPC, -EIO. */
long zt_snap_stage_put(struct st_wtxn *w, const void *chunk, size_t len);

/*
 * Replace the tree by the staged records and set the meta state to ST; empties the staging
 * database. Readers see the new tree once W commits. The staged records must form a whole tree as
 * zt_apply leaves it (zt__check in st_lmdb.h: a root, ids below ST->next_id, zxids up to
 * ST->last_zxid, every parent there, right child counts, valid names, the ephemeral owner index in
 * step); otherwise nothing changes.
 * Errors: -EINVAL (not such a tree, e.g. no root staged), -ENOMEM, -ENOSPC, -EIO: W must then be
 * aborted.
 */
int zt_snap_install(struct st_wtxn *w, const struct zt_snap_state *st);

#endif
