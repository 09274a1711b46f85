/*
 * st_lmdb: private view of the LMDB environment for store/ code (zt.c) and, later, the acceptor
 * storage of the cluster. Not for fs/: it sees only st.h and zt.h.
 *
 * The structs are defined here so that other store/ code can reach the MDB_txn of a transaction and
 * the named databases without a call per access.
 */
#ifndef QFS_STORE_ST_LMDB_H
#define QFS_STORE_ST_LMDB_H

#include <pthread.h>
#include <stdint.h>
#include <lmdb.h>

#include "store/st.h"

#define ST__MAXDBS   16
#define ST__POOL_MAX 64 /* reset read transactions kept for reuse */
#define ST__FORMAT   1u /* format version stored in meta under "format" */

/* A grow-only scratch buffer owned by the environment, used by the one writer (storage thread). */
struct st__buf {
	char *p;
	size_t len;
	size_t cap;
};

struct st_rtxn {
	struct st_env *env;
	MDB_txn *txn;
	struct st_rtxn *next; /* in env->pool while reset; protected by env->pool_lock */
};

struct st_wtxn {
	struct st_env *env;
	MDB_txn *txn;
};

struct st_env {
	MDB_env *mdb;
	MDB_dbi tree; /* znode tree (zt.c) */
	MDB_dbi meta; /* "format", "state" (zt.c: last zxid, next node id) */
	int lock_fd;
	unsigned flags;

	pthread_mutex_t pool_lock;
	struct st_rtxn *pool; /* protected by pool_lock */
	unsigned npool;	      /* protected by pool_lock */

	/* Writer-only state (the one write transaction's thread). */
	struct st_wtxn w;
	int w_live;
	uint64_t next_id;	   /* zt: next node id not yet used (cached, never goes back) */
	struct st__buf scratch[2]; /* zt: change events collected during one zt_apply */

	/* Counters (read with relaxed atomics from any thread). */
	uint64_t n_commits;
	uint64_t n_commit_fail;

	/* Fault injection (tests): see st_test.h. Writer-only. */
	int fault_kind;
	int fault_countdown;
	int fault_err;
	unsigned fault_delay_ms; /* every commit sleeps this long first (test builds) */
};

/*
 * Open (MDB_CREATE in FLAGS: create) another named database of the environment, e.g. the acceptor
 * state or the chosen log of the cluster, inside write transaction W. The handle is usable by every
 * transaction once W commits (LMDB's rule for mdb_dbi_open); keep it for the life of the env.
 * At most 14 more databases (maxdbs 16). -EINVAL for "tree"/"meta", -ENOENT, -ENOSPC, -EIO.
 */
int st__dbi_open(struct st_wtxn *w, const char *name, unsigned flags, MDB_dbi *out);

/* Map an LMDB return code to 0 or a negative errno (MDB_MAP_FULL -> -ENOSPC, ...). */
int st__err(int rc);

/* Ensure B has room for N more bytes. 0 or -ENOMEM. */
int st__buf_reserve(struct st__buf *b, size_t n);

/* zt.c: create the root node and the meta state in a fresh environment, load env->next_id.
 * Called by st_open inside its first write transaction. */
int zt__init(struct st_env *env, MDB_txn *txn);

/*
 * zt.c: check that database DBI of TXN holds a whole tree as zt_apply leaves it (a snapshot staged
 * from a peer, before it replaces the tree): every record is a node, an owner index entry or a node
 * session of zt.c's layouts; one root (id 1); node ids unique and below NEXT_ID; valid names; every
 * parent there and leading to the root, each path under ZT_PATH_MAX; num_children and data_length
 * right; ephemeral nodes without children, each with its owner index entry, and each entry naming
 * such a node by its path; NEXT_ID below 2^64 - 2 (those ids would be the index's key prefixes);
 * LAST_ZXID below INT64_MAX and every node's czxid, mzxid and pzxid in 0..LAST_ZXID.
 * 0, -EINVAL (not such a tree), -ENOMEM, -EIO. Any thread that may read TXN.
 */
int zt__check(MDB_txn *txn, MDB_dbi dbi, uint64_t next_id, uint64_t last_zxid);

/* Fault injection hook used by writers before an LMDB write (kind ST_FAULT_PUT). 0 or the errno. */
int st__fault_put(struct st_env *env);
/* Fault injection hook of the cluster's storage thread (kind ST_FAULT_LOST). 0 or the errno. */
int st__fault_lost(struct st_env *env);

#endif
