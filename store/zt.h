/*
 * zt: the znode tree as a deterministic state machine, stored in LMDB (st.h).
 *
 * Data model and stat are ZooKeeper's. Each node also records whether it was created as a directory
 * (mkdir) or a file; a node that has children is shown as a directory whatever it was created as.
 * The tree lives in LMDB itself: reads are zero-copy from a read snapshot, a restart maps the file and
 * is ready at once, and one write transaction applies a whole batch of tree transactions.
 *
 * Paths are absolute, '/'-separated, no trailing '/' except the root "/". A name (path component) is
 * rejected with -EINVAL when it is empty, "." or "..", longer than ZT_NAME_MAX bytes, or contains a
 * control character (0x00-0x1f, 0x7f); "/zookeeper" is reserved at the root (creating it: -EINVAL).
 * Names must also be valid UTF-8 (no overlong forms, surrogates or code points above U+10FFFF), and,
 * as ZooKeeper's PathUtils, must not contain U+0080-U+009F, U+E000-U+F8FF or U+FFF0-U+FFFF.
 * Characters above U+FFFF are accepted (ZooKeeper refuses them only through Java's UTF-16).
 *
 * Storage (zt.c): each node is one LMDB record keyed by (parent's internal id, name), so a lookup
 * costs one B-tree search per path component and the children of a node are contiguous, in
 * bytewise name order.
 */
#ifndef QFS_STORE_ZT_H
#define QFS_STORE_ZT_H

#include <stddef.h>
#include <stdint.h>
#include <errno.h>

#include "store/st.h"

#define ZT_MAX_DATA (1024 * 1024 - 1) /* ZooKeeper's default jute.maxbuffer, minus one */
#define ZT_NAME_MAX 255               /* one path component, the kernel's NAME_MAX */
#define ZT_PATH_MAX 4096              /* a whole path, including the NUL */

/* Errors that are the outcome of an operation (deterministic on every replica). */
#define ZT_ENONODE      (-ENOENT)    /* node (or, for create, its parent) does not exist */
#define ZT_ENODEEXISTS  (-EEXIST)
#define ZT_ENOTEMPTY    (-ENOTEMPTY) /* delete of a node with children */
#define ZT_EBADVERSION  (-ESTALE)    /* expected version does not match */
#define ZT_EEPHEMERAL   (-ENOTDIR)   /* create under an ephemeral node */
#define ZT_EBADARGS     (-EINVAL)    /* bad path or name, reserved name, bad op */
#define ZT_ETOOBIG      (-EFBIG)     /* data over ZT_MAX_DATA */
#define ZT_EXDEV        (-EXDEV)     /* rename of a node that has children */
#define ZT_EISDIR       (-EISDIR)    /* rename onto a node that has children */
#define ZT_ERUNTIMEINCONSISTENCY (-EIO)
#define ZT_ESESSIONEXPIRED (-EKEYEXPIRED) /* ZooKeeper's SESSIONEXPIRED: an ephemeral create
                                             whose owner's node session is not open at the
                                             owner's epoch; ZT_OP_SESSION EXPIRE of an epoch
                                             that is not the open one */

/* ZooKeeper's Stat, field for field. Times are milliseconds since the epoch. */
struct zt_stat {
	int64_t czxid;
	int64_t mzxid;
	int64_t pzxid;
	int64_t ctime;
	int64_t mtime;
	int32_t version;
	int32_t cversion;
	int32_t aversion;
	int64_t ephemeral_owner; /* session id, 0 when persistent */
	int32_t data_length;
	int32_t num_children;
};

#define ZT_NODE_DIR 0x1u /* created as a directory (mkdir) */

struct zt_node {
	struct zt_stat stat;
	uint32_t flags;   /* ZT_NODE_* */
	const void *data; /* stat.data_length bytes, valid until the read snapshot ends */
};

enum zt_op_type {
	ZT_OP_CREATE = 1, /* path, data, flags ZT_CREATE_*, owner (ephemeral session) */
	ZT_OP_DELETE = 2, /* path, version (-1: any); flag ZT_DELETE_SESSION: see there */
	ZT_OP_SET = 3,    /* path, data, version (-1: any); flag ZT_SET_CZXID: see there */
	ZT_OP_CHECK = 4,  /* path, version: fails with ZT_EBADVERSION unless it matches */
	ZT_OP_RENAME = 5, /* path -> path2. path2 missing: created with path's data and kind (new czxid);
	                     path2 a leaf: its data becomes path's (version + 1, keeps its czxid);
	                     then path is deleted. path with children: ZT_EXDEV; path2 with children:
	                     ZT_EISDIR; path == path2: no change. version is ignored. Also: "/" on
	                     either side, path2 inside path or path2 "/zookeeper": ZT_EBADARGS; path2's
	                     parent missing: ZT_ENONODE, ephemeral: ZT_EEPHEMERAL. A created path2
	                     keeps path's ephemeral owner. Changes: those of the equivalent create (or
	                     set) of path2 followed by the delete of path. */
	ZT_OP_SESSION = 6, /* a node session: flags ZT_SESSION_F_OPEN or _EXPIRE, path "/", see
	                      there */
};

#define ZT_CREATE_DIR        0x1u /* node created as a directory */
#define ZT_CREATE_EPHEMERAL  0x2u /* owner must be non-zero (else ZT_EBADARGS); owner is ignored
                                     for persistent nodes (ephemeral_owner stays 0) */
#define ZT_CREATE_SEQUENTIAL 0x4u /* name gets the parent's cversion as %010d appended; the path may
                                     then end in '/' (the name is the number alone) */

#define ZT_SET_CZXID 0x1u /* ZT_OP_SET: owner is the czxid the node at path must have, else
                            ZT_ENONODE (checked after the version): a write through a file
                            descriptor never lands in a node created since it was opened */

#define ZT_DELETE_SESSION 0x1u /* ZT_OP_DELETE closes session OWNER (non-zero; path must be "/",
                                 version is ignored; else ZT_EBADARGS): every node whose
                                 ephemeralOwner is OWNER is deleted, in this one transaction
                                 (none: success, nothing changes). res.stat stays zero. Changes:
                                 those of deleting each node, in the order they were created.
                                 Found through an owner index kept in the tree database (keys
                                 that start with 8 bytes 0xff, never a node's key, so they travel
                                 with zt_snap exports), maintained by every create and delete. */

/*
 * Node sessions (ZooKeeper's session liveness, kept per node: a daemon keeps alive every session it
 * holds). Each node id (1..255) has at most one replicated record {epoch, timeout_ms, state}, in
 * the tree database (key ff ff ff ff ff ff ff fe || node: it travels with zt_snap exports). An
 * ephemeral owner (session id) is ZT_SESSION_ID(node, epoch, counter): node id in the top byte,
 * the node's epoch in the next 24 bits, a counter chosen by the node in the low 32 bits.
 * Owners whose top byte is 0 are not tied to a node session (tests and tools that manage their
 * sessions themselves): their ephemerals live until ZT_DELETE_SESSION.
 *
 * ZT_SESSION_F_OPEN: owner = node << 56 (other bits 0), version = the negotiated timeout in ms
 *   (> 0). Starts the node's next epoch (1 after none, after ZT_SESSION_EPOCH_MAX wraps to 1),
 *   open, and deletes in the same transaction every ephemeral whose owner's top byte is the node
 *   (its earlier epochs: a restart or an expiry). res.stat.ephemeral_owner = ZT_SESSION_ID(node,
 *   new epoch, 0), res.stat.version = timeout.
 * ZT_SESSION_F_EXPIRE: owner = ZT_SESSION_ID(node, epoch, 0). When that epoch is the node's open
 *   one: marks it expired and deletes every ephemeral of that epoch (res.stat.ephemeral_owner =
 *   owner); otherwise ZT_ESESSIONEXPIRED and nothing changes.
 * Bad fields (path not "/", node 0, other flags, data, OPEN with low bits or timeout <= 0, EXPIRE
 * with counter bits): ZT_EBADARGS. An ephemeral CREATE whose owner's node has no open record at
 * the owner's epoch fails with ZT_ESESSIONEXPIRED, so a create ordered after an expiry never
 * resurrects the expired session. Changes: those of the deletes, in creation order per owner.
 */
#define ZT_SESSION_F_OPEN   0x1u
#define ZT_SESSION_F_EXPIRE 0x2u
#define ZT_SESSION_EPOCH_MAX      0xffffffu
#define ZT_SESSION_COUNTER_MASK   0xffffffffull
#define ZT_SESSION_NODE(owner)    ((uint32_t)((uint64_t)(owner) >> 56))
#define ZT_SESSION_EPOCH(owner)   (((uint64_t)(owner) >> 32) & ZT_SESSION_EPOCH_MAX)
#define ZT_SESSION_ID(node, epoch, counter)                                                    \
	(((uint64_t)(node) << 56) | ((uint64_t)(epoch) << 32) | ((uint64_t)(counter)&ZT_SESSION_COUNTER_MASK))

enum zt_session_state { ZT_SESSION_OPEN = 1, ZT_SESSION_EXPIRED = 2 };

struct zt_session {
	uint32_t node;	     /* 1..255 */
	uint64_t epoch;	     /* 1..ZT_SESSION_EPOCH_MAX */
	uint32_t timeout_ms; /* negotiated by the node when it opened the epoch */
	uint32_t state;	     /* enum zt_session_state */
};

struct zt_op {
	enum zt_op_type type;
	uint32_t flags;
	int32_t version;
	int64_t owner;
	const char *path;  /* NUL-terminated */
	const char *path2; /* ZT_OP_RENAME only */
	const void *data;
	uint32_t len;
};

/*
 * A tree transaction: one zxid, one or more ops applied all-or-nothing (ZooKeeper's multi when
 * nops > 1). time_ms is chosen once by whoever orders the transaction (the leader), never by the
 * replica that applies it, so all replicas store the same ctime/mtime.
 */
struct zt_txn {
	uint64_t zxid;
	int64_t time_ms;
	uint32_t nops;
	const struct zt_op *ops;
};

/* Outcome of one op of an applied transaction. */
struct zt_result {
	int err;             /* 0, or the op's ZT_E* error. In a failed multi, the first failing op has its
	                        error and EVERY other op -ECANCELED: the ones after it (ZooKeeper's
	                        RuntimeInconsistency) and also the ones before it, which were rolled
	                        back (ZooKeeper reports those as OK; we do not, so that 0 always means
	                        "applied"). The transaction failed iff some err is not 0. */
	struct zt_stat stat; /* node's stat after the op (create, set, rename target; check: the node's
	                        stat); zeros for delete and for failed ops */
	char *path;          /* create: the created path (with sequence suffix), malloc'd; else NULL */
};
void zt_results_free(struct zt_result *res, uint32_t n); /* frees the paths, not RES itself */

/* Kinds of change, ZooKeeper's watch event types. */
enum zt_change_type {
	ZT_NODE_CREATED = 1,
	ZT_NODE_DELETED = 2,
	ZT_NODE_DATA_CHANGED = 3,
	ZT_NODE_CHILDREN_CHANGED = 4,
};
struct zt_change {
	enum zt_change_type type;
	const char *path; /* valid only during the callback */
	uint64_t zxid;
};
typedef void (*zt_change_cb)(void *arg, const struct zt_change *ch);

/* Validate a path as ZooKeeper does (plus the name rules above). 0 or ZT_EBADARGS. */
int zt_path_validate(const char *path);

/*
 * Apply TXN in write transaction W (ZooKeeper's rules for every stat field: version counts data
 * changes, cversion child creations and deletions, pzxid moves on child create/delete, the parent's
 * cversion gives sequential names).
 * res: array of txn->nops results, filled on return 0 (free with zt_results_free).
 * on_change: called for each change the transaction made (none if it failed), in order; may be NULL.
 *   The changes are not yet durable then: callers queue them and act after st_wcommit succeeds.
 * Returns 0 when the transaction was applied or deterministically rejected (see res[i].err);
 * a negative errno (-ENOMEM, -ENOSPC, -EIO) when storage failed: W must then be aborted (res then
 * holds nothing to free).
 * The zxids of successive calls must increase; the store records the last one (zt_last_zxid), also
 * for a rejected transaction (it consumed its zxid, as in ZooKeeper). -EINVAL (nothing done) when
 * txn->zxid is not above the last one or txn->nops is 0.
 * Thread: the write transaction's thread. A multi (nops > 1) runs in a nested LMDB transaction.
 */
int zt_apply(struct st_wtxn *w, const struct zt_txn *txn, struct zt_result *res,
             zt_change_cb on_change, void *arg);

/* Reads. out->data is valid until R ends. -ENOENT, -EINVAL (bad path), -EIO.
 * Any thread, concurrently with the writer and other readers (no lock is taken). */
int zt_get(struct st_rtxn *r, const char *path, struct zt_node *out);

/* Children of PATH in name order; CB returns non-zero to stop (zt_list then returns 0).
 * -ENOENT when PATH does not exist. NAME is NUL-terminated; both valid only during the call. */
typedef int (*zt_list_cb)(void *arg, const char *name, const struct zt_node *child);
int zt_list(struct st_rtxn *r, const char *path, zt_list_cb cb, void *arg);

/* The sessions that own nodes, with OWNER (as unsigned) in [lo, hi], in ascending order, each
 * once with the number of its nodes; CB returns non-zero to stop (zt_sessions then returns 0).
 * E.g. a restarted daemon finds the sessions of its previous incarnation. 0, -EIO, -ENOMEM.
 * Any thread, like zt_list. */
typedef int (*zt_session_cb)(void *arg, int64_t owner, uint32_t nnodes);
int zt_sessions(struct st_rtxn *r, uint64_t lo, uint64_t hi, zt_session_cb cb, void *arg);

/* The session record of node NODE (1..255). 0, -ENOENT (the node never opened one), -EINVAL (node
 * out of range), -EIO (a malformed record). Any thread, like zt_list. */
int zt_session_get(struct st_rtxn *r, uint32_t node, struct zt_session *out);

/* Last applied zxid (0 for an empty store). */
uint64_t zt_last_zxid(struct st_rtxn *r);

/*
 * Serialisation of a transaction's ops (for the log and for the network): a stable, versioned
 * encoding with lengths checked on decode. zt_ops_encode: *buf malloc'd, caller frees.
 * zt_ops_decode: *ops malloc'd (free()), pointing into BUF, which must outlive them; -EINVAL on
 * malformed or truncated input.
 * Format version 1 (little-endian): "QZT" 0x01, u32 nops (>= 1), then per op: u8 type (1..6), u32 flags,
 * i32 version, i64 owner, u32 length + path with its NUL, u32 length + path2 with its NUL (0 when
 * not a rename), u32 length + data (at most ZT_MAX_DATA). Nothing may follow the last op.
 * Errors: -EINVAL (encode: nops 0, bad type, missing path/path2, data NULL with len, over-long path
 * or data), -ENOMEM.
 */
int zt_ops_encode(const struct zt_op *ops, uint32_t nops, void **buf, size_t *len);
int zt_ops_decode(const void *buf, size_t len, struct zt_op **ops, uint32_t *nops);

#endif
