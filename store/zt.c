/*
 * zt: the znode tree in LMDB (see zt.h).
 *
 * Layout of the "tree" database. Every node has a 64-bit id, unique for the life of the store
 * (never reused; the root is 1). Ids are internal and local: they come from a counter that a
 * failed commit may skip, so two replicas may number the same tree differently. A node is stored
 * under the key
 *
 *     be64(parent id) || name            (the root: be64(0), empty name)
 *
 * so the children of a node are contiguous and sorted by name (LMDB compares keys bytewise), and a
 * key is at most 8 + ZT_NAME_MAX bytes, under LMDB's 511-byte key limit whatever the path's depth.
 * A lookup walks the path one component at a time (one B-tree search each). The value is a
 * struct zt__hdr (native byte order: the file is not portable between architectures, like LMDB's)
 * followed by the node's data.
 *
 * The "meta" database holds "state": struct zt__state (last applied zxid, next unused node id).
 *
 * The owner index of ephemeral nodes lives in the "tree" database too, under keys that no node
 * can have (no node id is 2^64-1):
 *
 *     ff ff ff ff ff ff ff ff || be64(owner) || be64(node id)    ->  the node's path (no NUL)
 *
 * so a session's nodes are contiguous, and the index travels with the tree in snapshots.
 * The node sessions (ZT_OP_SESSION) are there too, one record per node id (no node id is
 * 2^64-2 either: ids come from a counter that starts at 1):
 *
 *     ff ff ff ff ff ff ff fe || u8 node    ->  u64 epoch, u32 timeout_ms, u32 state (LE)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/st_lmdb.h"
#include "store/zt.h"

#define ZT__ROOT_ID 1u

struct zt__hdr {
	uint64_t id;
	int64_t czxid;
	int64_t mzxid;
	int64_t pzxid;
	int64_t ctime;
	int64_t mtime;
	int64_t owner;
	int32_t version;
	int32_t cversion;
	int32_t aversion;
	int32_t data_length;
	int32_t num_children;
	uint32_t flags;
};

struct zt__state {
	uint64_t last_zxid;
	uint64_t next_id;
};

struct zt__key {
	size_t len;
	unsigned char b[8 + ZT_NAME_MAX];
};

/* A node found by zt__find: its key, header and data (data valid until the next write). */
struct zt__ent {
	struct zt__key key;
	struct zt__hdr h;
	const void *data;
};

static const MDB_val zt__state_key = {5, "state"};

#define ZT__OWNER_KEY_LEN 24

static void zt__owner_key(unsigned char *b, uint64_t owner, uint64_t id)
{
	memset(b, 0xff, 8);
	for (int i = 0; i < 8; i++) {
		b[8 + i] = (unsigned char)(owner >> (56 - 8 * i));
		b[16 + i] = (unsigned char)(id >> (56 - 8 * i));
	}
}

static uint64_t zt__be64(const unsigned char *b)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | b[i];
	return v;
}

/* ---- keys and values ---- */

static void zt__key_set(struct zt__key *k, uint64_t parent, const char *name, size_t nlen)
{
	for (int i = 0; i < 8; i++)
		k->b[i] = (unsigned char)(parent >> (56 - 8 * i));
	memcpy(k->b + 8, name, nlen);
	k->len = 8 + nlen;
}

static int zt__hdr_read(const MDB_val *v, struct zt__hdr *h, const void **data)
{
	if (v->mv_size < sizeof *h)
		return -EIO;
	memcpy(h, v->mv_data, sizeof *h);
	if (h->data_length < 0 || (size_t)h->data_length != v->mv_size - sizeof *h)
		return -EIO;
	if (data)
		*data = (const char *)v->mv_data + sizeof *h;
	return 0;
}

static void zt__stat_of(const struct zt__hdr *h, struct zt_stat *st)
{
	st->czxid = h->czxid;
	st->mzxid = h->mzxid;
	st->pzxid = h->pzxid;
	st->ctime = h->ctime;
	st->mtime = h->mtime;
	st->version = h->version;
	st->cversion = h->cversion;
	st->aversion = h->aversion;
	st->ephemeral_owner = h->owner;
	st->data_length = h->data_length;
	st->num_children = h->num_children;
}

/* int32 counters wrap as ZooKeeper's Java ints do, without signed overflow. */
static int32_t zt__inc32(int32_t v, int d)
{
	return (int32_t)(uint32_t)((uint32_t)v + (uint32_t)d);
}

/* ---- path validation ---- */

/* Length of one valid UTF-8 sequence at S (at most N bytes), or 0 when invalid or a code point that
 * ZooKeeper refuses: U+0000-U+001F, U+007F-U+009F, U+E000-U+F8FF (and the surrogates, which are
 * not valid UTF-8 anyway), U+FFF0-U+FFFF. Characters above U+FFFF are accepted (ZooKeeper refuses
 * them only as an artefact of Java's UTF-16 strings). */
static size_t zt__utf8_char(const unsigned char *s, size_t n)
{
	uint32_t c;
	size_t len;

	if (s[0] < 0x80) {
		c = s[0];
		len = 1;
	} else if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		c = s[0] & 0x1fu;
		len = 2;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		c = s[0] & 0x0fu;
		len = 3;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		c = s[0] & 0x07u;
		len = 4;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3fu);
	}
	if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10ffff)))
		return 0; /* overlong or out of range */
	if (c <= 0x1f || (c >= 0x7f && c <= 0x9f) || (c >= 0xd800 && c <= 0xf8ff) ||
	    (c >= 0xfff0 && c <= 0xffff))
		return 0;
	return len;
}

static int zt__name_validate(const char *name, size_t n)
{
	if (n == 0 || n > ZT_NAME_MAX)
		return ZT_EBADARGS;
	if (name[0] == '.' && (n == 1 || (n == 2 && name[1] == '.')))
		return ZT_EBADARGS;
	const unsigned char *s = (const unsigned char *)name;
	for (size_t i = 0; i < n;) {
		size_t l = zt__utf8_char(s + i, n - i);
		if (l == 0)
			return ZT_EBADARGS;
		i += l;
	}
	return 0;
}

/* Validate PATH of LEN bytes (no NUL inside). */
static int zt__path_validate_n(const char *path, size_t len)
{
	if (len == 0 || len >= ZT_PATH_MAX || path[0] != '/')
		return ZT_EBADARGS;
	if (len == 1)
		return 0;
	if (path[len - 1] == '/')
		return ZT_EBADARGS;
	size_t i = 1;
	while (i <= len) {
		const char *slash = memchr(path + i, '/', len - i);
		size_t end = slash ? (size_t)(slash - path) : len;
		int rc = zt__name_validate(path + i, end - i);
		if (rc)
			return rc;
		i = end + 1;
	}
	return 0;
}

int zt_path_validate(const char *path)
{
	if (!path)
		return ZT_EBADARGS;
	size_t len = strnlen(path, ZT_PATH_MAX);
	return zt__path_validate_n(path, len);
}

/* Length of PATH if it is a valid path, else -1. */
static long zt__path_len(const char *path)
{
	if (!path)
		return -1;
	size_t len = strnlen(path, ZT_PATH_MAX);
	if (zt__path_validate_n(path, len))
		return -1;
	return (long)len;
}

/* Split a valid non-root path: parent length (1 for "/x") and the last name's offset. */
static void zt__split(const char *path, size_t len, size_t *plen, size_t *name_off)
{
	const char *slash = path + len;
	while (slash > path && slash[-1] != '/')
		slash--;
	*name_off = (size_t)(slash - path);
	*plen = *name_off > 1 ? *name_off - 1 : 1;
}

/* ---- lookups ---- */

/*
 * Find the node at PATH (valid, LEN bytes). 0: found, *e filled. -ENOENT: missing.
 * Other negative: storage error.
 */
static int zt__find(MDB_txn *txn, MDB_dbi dbi, const char *path, size_t len, struct zt__ent *e)
{
	MDB_val k, v;
	uint64_t parent = 0;
	size_t i = 1;
	int rc;

	zt__key_set(&e->key, 0, "", 0);
	for (;;) {
		k.mv_size = e->key.len;
		k.mv_data = e->key.b;
		rc = mdb_get(txn, dbi, &k, &v);
		if (rc)
			return st__err(rc);
		rc = zt__hdr_read(&v, &e->h, &e->data);
		if (rc)
			return rc;
		if (i >= len)
			return 0;
		parent = e->h.id;
		const char *slash = memchr(path + i, '/', len - i);
		size_t end = slash ? (size_t)(slash - path) : len;
		zt__key_set(&e->key, parent, path + i, end - i);
		i = end + 1;
	}
}

/* Get the node stored under key K. 0, -ENOENT or a storage error. */
static int zt__get_key(MDB_txn *txn, MDB_dbi dbi, const struct zt__key *key, struct zt__hdr *h,
		       const void **data)
{
	MDB_val k = {key->len, (void *)key->b}, v;
	int rc = mdb_get(txn, dbi, &k, &v);
	if (rc)
		return st__err(rc);
	return zt__hdr_read(&v, h, data);
}

/* Store header H and LEN bytes of DATA under KEY. DATA must not point into the database. */
static int zt__put(struct st_env *env, MDB_txn *txn, const struct zt__key *key,
		   const struct zt__hdr *h, const void *data, size_t len)
{
	MDB_val k = {key->len, (void *)key->b}, v = {sizeof *h + len, NULL};
	int rc = st__fault_put(env);
	if (rc)
		return rc;
	rc = st__err(mdb_put(txn, env->tree, &k, &v, MDB_RESERVE));
	if (rc)
		return rc;
	memcpy(v.mv_data, h, sizeof *h);
	if (len)
		memcpy((char *)v.mv_data + sizeof *h, data, len);
	return 0;
}

/* Rewrite the header of the node under KEY, keeping its data (copied through scratch[1]). */
static int zt__put_hdr(struct st_env *env, MDB_txn *txn, const struct zt__key *key,
		       const struct zt__hdr *h, const void *olddata)
{
	struct st__buf *b = &env->scratch[1];
	size_t len = (size_t)h->data_length;
	int rc;

	b->len = 0;
	rc = st__buf_reserve(b, len);
	if (rc)
		return rc;
	if (len)
		memcpy(b->p, olddata, len);
	return zt__put(env, txn, key, h, b->p, len);
}

static int zt__state_get(MDB_txn *txn, MDB_dbi meta, struct zt__state *s)
{
	MDB_val k = zt__state_key, v;
	int rc = mdb_get(txn, meta, &k, &v);
	if (rc)
		return st__err(rc);
	if (v.mv_size != sizeof *s)
		return -EIO;
	memcpy(s, v.mv_data, sizeof *s);
	return 0;
}

static int zt__state_put(struct st_env *env, MDB_txn *txn, const struct zt__state *s)
{
	MDB_val k = zt__state_key, v = {sizeof *s, (void *)s};
	int rc = st__fault_put(env);
	if (rc)
		return rc;
	return st__err(mdb_put(txn, env->meta, &k, &v, 0));
}

int zt__init(struct st_env *env, MDB_txn *txn)
{
	struct zt__key key;
	struct zt__hdr h;
	struct zt__state s;
	int rc;

	zt__key_set(&key, 0, "", 0);
	rc = zt__get_key(txn, env->tree, &key, &h, NULL);
	if (rc == -ENOENT) {
		memset(&h, 0, sizeof h);
		h.id = ZT__ROOT_ID;
		h.flags = ZT_NODE_DIR;
		rc = zt__put(env, txn, &key, &h, NULL, 0);
	}
	if (rc)
		return rc;
	rc = zt__state_get(txn, env->meta, &s);
	if (rc == -ENOENT) {
		s.last_zxid = 0;
		s.next_id = ZT__ROOT_ID + 1;
		rc = zt__state_put(env, txn, &s);
	}
	if (rc)
		return rc;
	env->next_id = s.next_id;
	return 0;
}

/* ---- apply ---- */

struct zt__ctx {
	struct st_env *env;
	MDB_txn *txn;
	const struct zt_txn *t;
	struct st__buf *ev;
};

/* Queue change event (TYPE, PATH[0..LEN)) until the transaction is known to have succeeded. */
static int zt__ev(struct zt__ctx *c, enum zt_change_type type, const char *path, size_t len)
{
	uint32_t l = (uint32_t)len;
	int rc = st__buf_reserve(c->ev, 1 + sizeof l + len + 1);
	if (rc)
		return rc;
	char *p = c->ev->p + c->ev->len;
	p[0] = (char)type;
	memcpy(p + 1, &l, sizeof l);
	memcpy(p + 1 + sizeof l, path, len);
	p[1 + sizeof l + len] = '\0';
	c->ev->len += 1 + sizeof l + len + 1;
	return 0;
}

/* Record a child created (D=+1) or deleted (D=-1) in the parent under KEY. */
static int zt__parent_bump(struct zt__ctx *c, const struct zt__key *key, int d)
{
	struct zt__hdr h = {0};
	const void *data = NULL;
	int rc = zt__get_key(c->txn, c->env->tree, key, &h, &data);
	if (rc)
		return rc == -ENOENT ? -EIO : rc;
	h.cversion = zt__inc32(h.cversion, 1);
	h.pzxid = (int64_t)c->t->zxid;
	h.num_children = zt__inc32(h.num_children, d);
	return zt__put_hdr(c->env, c->txn, key, &h, data);
}

/* Create a node named NAME under PARENT (key PKEY, header PH). PATH is its full path. */
static int zt__create_node(struct zt__ctx *c, const struct zt__key *pkey, const struct zt__hdr *ph,
			   const char *path, size_t len, const char *name, size_t nlen,
			   uint32_t nflags, int64_t owner, const void *data, size_t dlen,
			   struct zt_stat *st)
{
	struct zt__key key;
	struct zt__hdr h;
	int rc;

	memset(&h, 0, sizeof h);
	h.id = c->env->next_id++;
	h.czxid = h.mzxid = h.pzxid = (int64_t)c->t->zxid;
	h.ctime = h.mtime = c->t->time_ms;
	h.owner = owner;
	h.data_length = (int32_t)dlen;
	h.flags = nflags;
	zt__key_set(&key, ph->id, name, nlen);
	rc = zt__put(c->env, c->txn, &key, &h, data, dlen);
	if (rc)
		return rc;
	if (owner != 0) {
		unsigned char ob[ZT__OWNER_KEY_LEN];
		MDB_val ok = {sizeof ob, ob}, ov = {len, (void *)path};

		zt__owner_key(ob, (uint64_t)owner, h.id);
		rc = st__fault_put(c->env);
		if (rc == 0)
			rc = st__err(mdb_put(c->txn, c->env->tree, &ok, &ov, 0));
		if (rc)
			return rc;
	}
	rc = zt__parent_bump(c, pkey, +1);
	if (rc)
		return rc;
	zt__stat_of(&h, st);
	size_t plen, name_off;
	zt__split(path, len, &plen, &name_off);
	rc = zt__ev(c, ZT_NODE_CREATED, path, len);
	if (rc == 0)
		rc = zt__ev(c, ZT_NODE_CHILDREN_CHANGED, path, plen);
	return rc;
}

static int zt__owner_check(struct zt__ctx *c, int64_t owner, struct zt_result *res);

static int zt__op_create(struct zt__ctx *c, const struct zt_op *op, struct zt_result *res)
{
	char path[ZT_PATH_MAX + 16];
	struct zt__ent parent;
	struct zt__key key;
	struct zt__hdr h;
	size_t len, plen, name_off;
	int rc;

	if (!op->path ||
	    (op->flags & ~(ZT_CREATE_DIR | ZT_CREATE_EPHEMERAL | ZT_CREATE_SEQUENTIAL)))
		goto badargs;
	len = strnlen(op->path, ZT_PATH_MAX);
	if (len >= ZT_PATH_MAX)
		goto badargs;
	memcpy(path, op->path, len);
	path[len] = '\0';
	if (op->flags & ZT_CREATE_SEQUENTIAL) {
		/* Validate with a placeholder suffix: a trailing '/' then means "a name that is
		 * only the sequence number", as in ZooKeeper. */
		memcpy(path + len, "0000000000", 11);
		if (zt__path_validate_n(path, len + 10))
			goto badargs;
	} else {
		if (zt__path_validate_n(path, len))
			goto badargs;
		if (len == 1) {
			res->err = ZT_ENODEEXISTS; /* the root always exists */
			return 0;
		}
	}
	if ((op->flags & ZT_CREATE_EPHEMERAL) && op->owner == 0)
		goto badargs;
	if (op->len && !op->data)
		goto badargs;
	if (op->len > ZT_MAX_DATA) {
		res->err = ZT_ETOOBIG;
		return 0;
	}

	zt__split(path, len + ((op->flags & ZT_CREATE_SEQUENTIAL) ? 10 : 0), &plen, &name_off);
	rc = zt__find(c->txn, c->env->tree, path, plen, &parent);
	if (rc == -ENOENT) {
		res->err = ZT_ENONODE;
		return 0;
	}
	if (rc)
		return rc;
	if (op->flags & ZT_CREATE_SEQUENTIAL) {
		snprintf(path + len, 12, "%010d", parent.h.cversion);
		len = strlen(path);
		if (zt__path_validate_n(path, len))
			goto badargs; /* a negative cversion made the name too long */
	}
	if (plen == 1 && len - name_off == 9 && memcmp(path + name_off, "zookeeper", 9) == 0)
		goto badargs;

	zt__key_set(&key, parent.h.id, path + name_off, len - name_off);
	rc = zt__get_key(c->txn, c->env->tree, &key, &h, NULL);
	if (rc == 0) {
		res->err = ZT_ENODEEXISTS;
		return 0;
	}
	if (rc != -ENOENT)
		return rc;
	if (parent.h.owner != 0) {
		res->err = ZT_EEPHEMERAL;
		return 0;
	}
	if (op->flags & ZT_CREATE_EPHEMERAL) {
		rc = zt__owner_check(c, op->owner, res);
		if (rc)
			return rc > 0 ? 0 : rc;
	}

	rc = zt__create_node(c, &parent.key, &parent.h, path, len, path + name_off, len - name_off,
			     (op->flags & ZT_CREATE_DIR) ? ZT_NODE_DIR : 0,
			     (op->flags & ZT_CREATE_EPHEMERAL) ? op->owner : 0, op->data, op->len,
			     &res->stat);
	if (rc)
		return rc;
	res->path = strdup(path);
	return res->path ? 0 : -ENOMEM;
badargs:
	res->err = ZT_EBADARGS;
	return 0;
}

/* Delete the leaf E at PATH and record it in its parent. */
static int zt__delete_node(struct zt__ctx *c, const struct zt__ent *e, const char *path, size_t len)
{
	struct zt__ent parent;
	size_t plen, name_off;
	int rc;

	zt__split(path, len, &plen, &name_off);
	rc = zt__find(c->txn, c->env->tree, path, plen, &parent);
	if (rc)
		return rc == -ENOENT ? -EIO : rc;
	rc = st__fault_put(c->env);
	if (rc)
		return rc;
	MDB_val k = {e->key.len, (void *)e->key.b};
	rc = st__err(mdb_del(c->txn, c->env->tree, &k, NULL));
	if (rc)
		return rc == -ENOENT ? -EIO : rc;
	if (e->h.owner != 0) {
		unsigned char ob[ZT__OWNER_KEY_LEN];
		MDB_val ok = {sizeof ob, ob};

		zt__owner_key(ob, (uint64_t)e->h.owner, e->h.id);
		rc = st__err(mdb_del(c->txn, c->env->tree, &ok, NULL));
		if (rc && rc != -ENOENT) /* (a store from before the index has none) */
			return rc;
	}
	rc = zt__parent_bump(c, &parent.key, -1);
	if (rc)
		return rc;
	rc = zt__ev(c, ZT_NODE_DELETED, path, len);
	if (rc == 0)
		rc = zt__ev(c, ZT_NODE_CHILDREN_CHANGED, path, plen);
	return rc;
}

/* Common start of delete, set, check: validate PATH and find it. 1: res->err set; 0: found. */
static int zt__find_op(struct zt__ctx *c, const struct zt_op *op, struct zt_result *res,
		       struct zt__ent *e, size_t *lenp)
{
	long len = zt__path_len(op->path);
	int rc;

	if (len < 0) {
		res->err = ZT_EBADARGS;
		return 1;
	}
	*lenp = (size_t)len;
	rc = zt__find(c->txn, c->env->tree, op->path, (size_t)len, e);
	if (rc == -ENOENT) {
		res->err = ZT_ENONODE;
		return 1;
	}
	if (rc)
		return rc;
	if (op->type != ZT_OP_RENAME && op->version != -1 && op->version != e->h.version) {
		res->err = ZT_EBADVERSION;
		return 1;
	}
	return 0;
}

/* Delete every node whose owner (as unsigned) is in [LO, HI], found through the owner index. */
static int zt__delete_owners(struct zt__ctx *c, uint64_t lo, uint64_t hi)
{
	unsigned char ob[ZT__OWNER_KEY_LEN];
	struct st__buf paths = {0};
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	int rc;

	/* Collect the indexed paths first: the deletes below change the database under a cursor.
	 * Entries: u64 owner, u64 node id, u32 length, path, NUL. */
	zt__owner_key(ob, lo, 0);
	rc = st__err(mdb_cursor_open(c->txn, c->env->tree, &cur));
	if (rc)
		return rc;
	k.mv_size = sizeof ob;
	k.mv_data = ob;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size == ZT__OWNER_KEY_LEN && memcmp(k.mv_data, ob, 8) == 0) {
		uint64_t owner = zt__be64((const unsigned char *)k.mv_data + 8);
		uint64_t id = zt__be64((const unsigned char *)k.mv_data + 16);
		uint32_t l = (uint32_t)v.mv_size;

		if (owner > hi)
			break;
		if (l == 0 || l >= ZT_PATH_MAX) {
			rc = -EIO;
			goto out;
		}
		rc = st__buf_reserve(&paths, 2 * sizeof id + sizeof l + l + 1);
		if (rc)
			goto out;
		memcpy(paths.p + paths.len, &owner, sizeof owner);
		memcpy(paths.p + paths.len + 8, &id, sizeof id);
		memcpy(paths.p + paths.len + 16, &l, sizeof l);
		memcpy(paths.p + paths.len + 16 + sizeof l, v.mv_data, l);
		paths.p[paths.len + 16 + sizeof l + l] = '\0';
		paths.len += 16 + sizeof l + l + 1;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	rc = rc == MDB_NOTFOUND || rc == 0 ? 0 : st__err(rc);
	mdb_cursor_close(cur);
	cur = NULL;
	for (size_t off = 0; rc == 0 && off < paths.len;) {
		struct zt__ent e;
		uint64_t owner, id;
		uint32_t l;
		const char *path = paths.p + off + 16 + sizeof l;

		memcpy(&owner, paths.p + off, sizeof owner);
		memcpy(&id, paths.p + off + 8, sizeof id);
		memcpy(&l, paths.p + off + 16, sizeof l);
		off += 16 + sizeof l + l + 1;
		rc = zt__find(c->txn, c->env->tree, path, l, &e);
		if (rc == 0 && e.h.id == id && (uint64_t)e.h.owner == owner &&
		    e.h.num_children == 0) {
			rc = zt__delete_node(c, &e, path, l);
		} else if (rc == 0 || rc == -ENOENT) {
			/* A stale entry (cannot happen through zt_apply): drop it. */
			zt__owner_key(ob, owner, id);
			k.mv_size = sizeof ob;
			k.mv_data = ob;
			rc = st__err(mdb_del(c->txn, c->env->tree, &k, NULL));
		}
	}
out:
	if (cur)
		mdb_cursor_close(cur);
	free(paths.p);
	return rc;
}

/* ZT_DELETE_SESSION: delete every node of session op->owner (see zt.h). */
static int zt__op_close_session(struct zt__ctx *c, const struct zt_op *op, struct zt_result *res)
{
	if (op->owner == 0 || !op->path || strcmp(op->path, "/") != 0) {
		res->err = ZT_EBADARGS;
		return 0;
	}
	return zt__delete_owners(c, (uint64_t)op->owner, (uint64_t)op->owner);
}

/* ---- node sessions (ZT_OP_SESSION) ---- */

/* The record of node NODE: ff ff ff ff ff ff ff fe || u8 node -> struct zt__sess (explicit
 * little-endian: u64 epoch, u32 timeout_ms, u32 state). */
#define ZT__SESS_KEY_LEN 9
#define ZT__SESS_VAL_LEN 16

static void zt__sess_key(unsigned char *b, uint32_t node)
{
	memset(b, 0xff, 7);
	b[7] = 0xfe;
	b[8] = (unsigned char)node;
}

static void zt__le_put(unsigned char *b, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		b[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t zt__le_get(const unsigned char *b, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = (v << 8) | b[i];
	return v;
}

static int zt__sess_decode(const MDB_val *v, uint32_t node, struct zt_session *out)
{
	const unsigned char *b = v->mv_data;

	if (v->mv_size != ZT__SESS_VAL_LEN)
		return -EIO;
	out->node = node;
	out->epoch = zt__le_get(b, 8);
	out->timeout_ms = (uint32_t)zt__le_get(b + 8, 4);
	out->state = (uint32_t)zt__le_get(b + 12, 4);
	if (out->epoch == 0 || out->epoch > ZT_SESSION_EPOCH_MAX ||
	    (out->state != ZT_SESSION_OPEN && out->state != ZT_SESSION_EXPIRED))
		return -EIO;
	return 0;
}

static int zt__sess_get(MDB_txn *txn, MDB_dbi dbi, uint32_t node, struct zt_session *out)
{
	unsigned char kb[ZT__SESS_KEY_LEN];
	MDB_val k = {sizeof kb, kb}, v;
	int rc;

	zt__sess_key(kb, node);
	rc = mdb_get(txn, dbi, &k, &v);
	if (rc == MDB_NOTFOUND)
		return -ENOENT;
	if (rc)
		return st__err(rc);
	return zt__sess_decode(&v, node, out);
}

static int zt__sess_put(struct zt__ctx *c, const struct zt_session *s)
{
	unsigned char kb[ZT__SESS_KEY_LEN], vb[ZT__SESS_VAL_LEN];
	MDB_val k = {sizeof kb, kb}, v = {sizeof vb, vb};
	int rc;

	zt__sess_key(kb, s->node);
	zt__le_put(vb, s->epoch, 8);
	zt__le_put(vb + 8, s->timeout_ms, 4);
	zt__le_put(vb + 12, s->state, 4);
	rc = st__fault_put(c->env);
	if (rc == 0)
		rc = st__err(mdb_put(c->txn, c->env->tree, &k, &v, 0));
	return rc;
}

/* An ephemeral create by OWNER: its node's session must be open at OWNER's epoch. */
static int zt__owner_check(struct zt__ctx *c, int64_t owner, struct zt_result *res)
{
	uint32_t node = ZT_SESSION_NODE(owner);
	struct zt_session s;
	int rc;

	if (node == 0)
		return 0; /* not tied to a node session (zt.h) */
	rc = zt__sess_get(c->txn, c->env->tree, node, &s);
	if (rc == -ENOENT ||
	    (rc == 0 && (s.epoch != ZT_SESSION_EPOCH(owner) || s.state != ZT_SESSION_OPEN))) {
		res->err = ZT_ESESSIONEXPIRED;
		return 1;
	}
	return rc;
}

static int zt__op_session(struct zt__ctx *c, const struct zt_op *op, struct zt_result *res)
{
	uint32_t node = ZT_SESSION_NODE(op->owner);
	uint64_t base = (uint64_t)op->owner & ~(uint64_t)ZT_SESSION_COUNTER_MASK;
	struct zt_session s;
	int rc;

	if (!op->path || strcmp(op->path, "/") != 0 || node == 0 || op->len != 0 ||
	    (op->flags != ZT_SESSION_F_OPEN && op->flags != ZT_SESSION_F_EXPIRE))
		goto badargs;
	rc = zt__sess_get(c->txn, c->env->tree, node, &s);
	if (rc != 0 && rc != -ENOENT)
		return rc;
	if (op->flags == ZT_SESSION_F_OPEN) {
		if (((uint64_t)op->owner & ~((uint64_t)0xff << 56)) != 0 || op->version <= 0)
			goto badargs;
		if (rc == -ENOENT)
			s = (struct zt_session){.node = node, .epoch = 0};
		s.epoch = s.epoch >= ZT_SESSION_EPOCH_MAX ? 1 : s.epoch + 1;
		s.timeout_ms = (uint32_t)op->version;
		s.state = ZT_SESSION_OPEN;
		/* Every ephemeral of the node's earlier epochs (also those before sessions, or of a
		 * wrapped epoch) dies here. */
		rc = zt__delete_owners(c, (uint64_t)node << 56,
				       ((uint64_t)node << 56) | ~((uint64_t)0xff << 56));
		if (rc == 0)
			rc = zt__sess_put(c, &s);
		if (rc)
			return rc;
		res->stat.ephemeral_owner = (int64_t)ZT_SESSION_ID(node, s.epoch, 0);
		res->stat.version = (int32_t)s.timeout_ms;
		return 0;
	}
	if ((uint64_t)op->owner & ZT_SESSION_COUNTER_MASK)
		goto badargs;
	if (rc == -ENOENT || s.epoch != ZT_SESSION_EPOCH(op->owner) || s.state != ZT_SESSION_OPEN) {
		res->err = ZT_ESESSIONEXPIRED; /* already gone: nothing changes */
		return 0;
	}
	s.state = ZT_SESSION_EXPIRED;
	rc = zt__delete_owners(c, base, base | ZT_SESSION_COUNTER_MASK);
	if (rc == 0)
		rc = zt__sess_put(c, &s);
	if (rc)
		return rc;
	res->stat.ephemeral_owner = (int64_t)base;
	return 0;
badargs:
	res->err = ZT_EBADARGS;
	return 0;
}

int zt_session_get(struct st_rtxn *r, uint32_t node, struct zt_session *out)
{
	if (node == 0 || node > 255)
		return -EINVAL;
	return zt__sess_get(r->txn, r->env->tree, node, out);
}

static int zt__op_delete(struct zt__ctx *c, const struct zt_op *op, struct zt_result *res)
{
	struct zt__ent e;
	size_t len;
	int rc;

	if (op->flags & ZT_DELETE_SESSION)
		return zt__op_close_session(c, op, res);
	if (op->path && strcmp(op->path, "/") == 0) {
		res->err = ZT_EBADARGS;
		return 0;
	}
	rc = zt__find_op(c, op, res, &e, &len);
	if (rc)
		return rc > 0 ? 0 : rc;
	if (e.h.num_children > 0) {
		res->err = ZT_ENOTEMPTY;
		return 0;
	}
	return zt__delete_node(c, &e, op->path, len);
}

static int zt__op_set(struct zt__ctx *c, const struct zt_op *op, struct zt_result *res)
{
	struct zt__ent e;
	size_t len;
	int rc;

	if (zt_path_validate(op->path) || (op->len && !op->data)) {
		res->err = ZT_EBADARGS;
		return 0;
	}
	if (op->len > ZT_MAX_DATA) {
		res->err = ZT_ETOOBIG;
		return 0;
	}
	rc = zt__find_op(c, op, res, &e, &len);
	if (rc)
		return rc > 0 ? 0 : rc;
	if ((op->flags & ZT_SET_CZXID) && e.h.czxid != op->owner) {
		res->err = ZT_ENONODE; /* another node now has this path */
		return 0;
	}
	e.h.version = zt__inc32(e.h.version, 1);
	e.h.mzxid = (int64_t)c->t->zxid;
	e.h.mtime = c->t->time_ms;
	e.h.data_length = (int32_t)op->len;
	rc = zt__put(c->env, c->txn, &e.key, &e.h, op->data, op->len);
	if (rc)
		return rc;
	zt__stat_of(&e.h, &res->stat);
	return zt__ev(c, ZT_NODE_DATA_CHANGED, op->path, len);
}

static int zt__op_check(struct zt__ctx *c, const struct zt_op *op, struct zt_result *res)
{
	struct zt__ent e;
	size_t len;
	int rc = zt__find_op(c, op, res, &e, &len);
	if (rc)
		return rc > 0 ? 0 : rc;
	zt__stat_of(&e.h, &res->stat);
	return 0;
}

static int zt__op_rename(struct zt__ctx *c, const struct zt_op *op, struct zt_result *res)
{
	struct zt__ent src, parent2;
	struct zt__key key2;
	struct zt__hdr h2;
	const void *data2;
	size_t len, plen2, name_off2;
	long len2 = zt__path_len(op->path2);
	int rc;

	if (len2 < 0 || len2 == 1 || zt_path_validate(op->path) || strcmp(op->path, "/") == 0) {
		res->err = ZT_EBADARGS;
		return 0;
	}
	if (len2 == 10 && memcmp(op->path2, "/zookeeper", 10) == 0) {
		res->err = ZT_EBADARGS;
		return 0;
	}
	rc = zt__find_op(c, op, res, &src, &len);
	if (rc)
		return rc > 0 ? 0 : rc;
	if (strcmp(op->path, op->path2) == 0) {
		zt__stat_of(&src.h, &res->stat);
		return 0;
	}
	if (src.h.num_children > 0) {
		res->err = ZT_EXDEV;
		return 0;
	}
	if ((size_t)len2 > len && memcmp(op->path2, op->path, len) == 0 && op->path2[len] == '/') {
		res->err = ZT_EBADARGS; /* into itself */
		return 0;
	}
	zt__split(op->path2, (size_t)len2, &plen2, &name_off2);
	rc = zt__find(c->txn, c->env->tree, op->path2, plen2, &parent2);
	if (rc == -ENOENT) {
		res->err = ZT_ENONODE;
		return 0;
	}
	if (rc)
		return rc;
	zt__key_set(&key2, parent2.h.id, op->path2 + name_off2, (size_t)len2 - name_off2);
	rc = zt__get_key(c->txn, c->env->tree, &key2, &h2, &data2);
	if (rc && rc != -ENOENT)
		return rc;
	int exists = rc == 0;
	if (exists && h2.num_children > 0) {
		res->err = ZT_EISDIR;
		return 0;
	}
	if (!exists && parent2.h.owner != 0) {
		res->err = ZT_EEPHEMERAL;
		return 0;
	}

	/* Copy the source's data out: the writes below may move it. */
	size_t dlen = (size_t)src.h.data_length;
	char *copy = NULL;
	if (dlen) {
		copy = malloc(dlen);
		if (!copy)
			return -ENOMEM;
		memcpy(copy, src.data, dlen);
	}
	if (exists) {
		h2.version = zt__inc32(h2.version, 1);
		h2.mzxid = (int64_t)c->t->zxid;
		h2.mtime = c->t->time_ms;
		h2.data_length = (int32_t)dlen;
		rc = zt__put(c->env, c->txn, &key2, &h2, copy, dlen);
		if (rc == 0) {
			zt__stat_of(&h2, &res->stat);
			rc = zt__ev(c, ZT_NODE_DATA_CHANGED, op->path2, (size_t)len2);
		}
	} else {
		rc = zt__create_node(c, &parent2.key, &parent2.h, op->path2, (size_t)len2,
				     op->path2 + name_off2, (size_t)len2 - name_off2, src.h.flags,
				     src.h.owner, copy, dlen, &res->stat);
	}
	free(copy);
	if (rc)
		return rc;
	/* The source's key is unchanged by the writes above; delete it. */
	return zt__delete_node(c, &src, op->path, len);
}

static int zt__op(struct zt__ctx *c, const struct zt_op *op, struct zt_result *res)
{
	switch (op->type) {
	case ZT_OP_CREATE:
		return zt__op_create(c, op, res);
	case ZT_OP_DELETE:
		return zt__op_delete(c, op, res);
	case ZT_OP_SET:
		return zt__op_set(c, op, res);
	case ZT_OP_CHECK:
		return zt__op_check(c, op, res);
	case ZT_OP_SESSION:
		return zt__op_session(c, op, res);
	case ZT_OP_RENAME:
		if (!op->path || !op->path2) {
			res->err = ZT_EBADARGS;
			return 0;
		}
		return zt__op_rename(c, op, res);
	}
	res->err = ZT_EBADARGS;
	return 0;
}

void zt_results_free(struct zt_result *res, uint32_t n)
{
	if (!res)
		return;
	for (uint32_t i = 0; i < n; i++) {
		free(res[i].path);
		res[i].path = NULL;
	}
}

int zt_apply(struct st_wtxn *w, const struct zt_txn *txn, struct zt_result *res,
	     zt_change_cb on_change, void *arg)
{
	struct st_env *env = w->env;
	struct zt__state s;
	struct zt__ctx c;
	MDB_txn *child = NULL;
	uint32_t failed = UINT32_MAX;
	int rc;

	if (!txn || !res || txn->nops == 0 || !txn->ops)
		return -EINVAL;
	rc = zt__state_get(w->txn, env->meta, &s);
	if (rc)
		return rc == -ENOENT ? -EIO : rc;
	if (txn->zxid <= s.last_zxid)
		return -EINVAL;
	memset(res, 0, sizeof *res * txn->nops);

	c.env = env;
	c.txn = w->txn;
	c.t = txn;
	c.ev = &env->scratch[0];
	c.ev->len = 0;
	if (txn->nops > 1) {
		rc = st__err(mdb_txn_begin(env->mdb, w->txn, 0, &child));
		if (rc)
			return rc;
		c.txn = child;
	}
	for (uint32_t i = 0; i < txn->nops; i++) {
		rc = zt__op(&c, &txn->ops[i], &res[i]);
		if (rc)
			goto err;
		if (res[i].err) {
			failed = i;
			break;
		}
	}
	if (failed != UINT32_MAX) {
		/* Nothing of a failed transaction is kept: a single op fails before writing, a
		 * multi drops its nested transaction. */
		if (child)
			mdb_txn_abort(child);
		child = NULL;
		c.ev->len = 0;
		for (uint32_t i = 0; i < txn->nops; i++) {
			if (i == failed)
				continue;
			free(res[i].path);
			memset(&res[i], 0, sizeof res[i]);
			res[i].err = -ECANCELED;
		}
	} else if (child) {
		rc = st__err(mdb_txn_commit(child));
		child = NULL;
		if (rc)
			goto err;
	}
	s.last_zxid = txn->zxid;
	s.next_id = env->next_id;
	rc = zt__state_put(env, w->txn, &s);
	if (rc)
		goto err;

	if (on_change) {
		for (size_t off = 0; off < c.ev->len;) {
			const char *p = c.ev->p + off;
			uint32_t l;
			memcpy(&l, p + 1, sizeof l);
			struct zt_change ch = {
			    .type = (enum zt_change_type)p[0],
			    .path = p + 1 + sizeof l,
			    .zxid = txn->zxid,
			};
			on_change(arg, &ch);
			off += 1 + sizeof l + l + 1;
		}
	}
	c.ev->len = 0;
	return 0;
err:
	if (child)
		mdb_txn_abort(child);
	zt_results_free(res, txn->nops);
	c.ev->len = 0;
	return rc;
}

/* ---- reads ---- */

static void zt__node_of(const struct zt__ent *e, struct zt_node *out)
{
	zt__stat_of(&e->h, &out->stat);
	out->flags = e->h.flags;
	out->data = e->data;
}

int zt_get(struct st_rtxn *r, const char *path, struct zt_node *out)
{
	struct zt__ent e;
	long len = zt__path_len(path);
	int rc;

	if (len < 0)
		return -EINVAL;
	rc = zt__find(r->txn, r->env->tree, path, (size_t)len, &e);
	if (rc)
		return rc;
	zt__node_of(&e, out);
	return 0;
}

int zt_list(struct st_rtxn *r, const char *path, zt_list_cb cb, void *arg)
{
	struct zt__ent e;
	struct zt__key prefix;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	char name[ZT_NAME_MAX + 1];
	long len = zt__path_len(path);
	int rc;

	if (len < 0)
		return -EINVAL;
	rc = zt__find(r->txn, r->env->tree, path, (size_t)len, &e);
	if (rc)
		return rc;
	if (e.h.num_children == 0)
		return 0;
	rc = st__err(mdb_cursor_open(r->txn, r->env->tree, &cur));
	if (rc)
		return rc;
	zt__key_set(&prefix, e.h.id, "", 0);
	k.mv_size = prefix.len;
	k.mv_data = prefix.b;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0) {
		if (k.mv_size < 8 || memcmp(k.mv_data, prefix.b, 8) != 0)
			break;
		struct zt__ent child;
		size_t nlen = k.mv_size - 8;
		if (nlen > ZT_NAME_MAX) {
			rc = -EIO;
			goto out;
		}
		rc = zt__hdr_read(&v, &child.h, &child.data);
		if (rc)
			goto out;
		memcpy(name, (const char *)k.mv_data + 8, nlen);
		name[nlen] = '\0';
		struct zt_node node;
		zt__node_of(&child, &node);
		if (cb(arg, name, &node))
			break;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	rc = rc == MDB_NOTFOUND ? 0 : st__err(rc);
out:
	mdb_cursor_close(cur);
	return rc;
}

int zt_sessions(struct st_rtxn *r, uint64_t lo, uint64_t hi, zt_session_cb cb, void *arg)
{
	unsigned char ob[ZT__OWNER_KEY_LEN];
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	uint64_t cur_owner = 0;
	uint32_t n = 0;
	int rc;

	if (lo > hi)
		return 0;
	zt__owner_key(ob, lo, 0);
	rc = st__err(mdb_cursor_open(r->txn, r->env->tree, &cur));
	if (rc)
		return rc;
	k.mv_size = sizeof ob;
	k.mv_data = ob;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size == ZT__OWNER_KEY_LEN && memcmp(k.mv_data, ob, 8) == 0) {
		uint64_t owner = zt__be64((const unsigned char *)k.mv_data + 8);

		if (owner > hi)
			break;
		if (n > 0 && owner != cur_owner) {
			if (cb(arg, (int64_t)cur_owner, n)) {
				n = 0;
				break;
			}
			n = 0;
		}
		cur_owner = owner;
		n++;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	rc = rc == MDB_NOTFOUND || rc == 0 ? 0 : st__err(rc);
	if (rc == 0 && n > 0)
		cb(arg, (int64_t)cur_owner, n);
	mdb_cursor_close(cur);
	return rc;
}

uint64_t zt_last_zxid(struct st_rtxn *r)
{
	struct zt__state s;
	if (zt__state_get(r->txn, r->env->meta, &s))
		return 0;
	return s.last_zxid;
}

/* ---- checking a whole tree (a snapshot staged from a peer) ---- */

/* One node seen by zt__check: its id, its parent's id and index, its children (said, counted),
 * its name's and path's lengths. */
struct zt__chk {
	uint64_t id;
	uint64_t parent;
	uint32_t pidx;
	uint32_t down; /* scratch: the child through which a walk up came */
	int32_t nch;
	int32_t counted;
	uint32_t plen; /* strlen of its path, the root's counted as 0 */
	uint16_t nlen;
	uint8_t state; /* 0: not walked yet, 1: on the walk, 2: reaches the root */
};

static int zt__chk_cmp(const void *a, const void *b)
{
	const struct zt__chk *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

static struct zt__chk *zt__chk_find(struct zt__chk *n, size_t cnt, uint64_t id)
{
	struct zt__chk key = {.id = id};

	return bsearch(&key, n, cnt, sizeof *n, zt__chk_cmp);
}

/* Check one record of DBI that is not a node's; counts an owner index entry in *NIDX. */
static int zt__check_special(const MDB_val *k, const MDB_val *v, size_t *nidx)
{
	const unsigned char *b = k->mv_data;
	static const unsigned char ff[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	struct zt_session s;

	if (memcmp(b, ff, 8) == 0) {
		if (k->mv_size != ZT__OWNER_KEY_LEN || zt__be64(b + 8) == 0 || v->mv_size == 0 ||
		    zt__path_validate_n(v->mv_data, v->mv_size))
			return -EINVAL;
		(*nidx)++;
		return 0;
	}
	/* ff ff ff ff ff ff ff fe: a node session */
	if (k->mv_size != ZT__SESS_KEY_LEN || b[8] == 0 || zt__sess_decode(v, b[8], &s))
		return -EINVAL;
	return 0;
}

/* Each owner index entry names, by its path, an ephemeral node of that owner and id. */
static int zt__check_owners(MDB_txn *txn, MDB_dbi dbi)
{
	unsigned char ob[ZT__OWNER_KEY_LEN];
	MDB_cursor *cur = NULL;
	MDB_val k = {sizeof ob, ob}, v;
	int rc = st__err(mdb_cursor_open(txn, dbi, &cur));

	if (rc)
		return rc;
	zt__owner_key(ob, 0, 0);
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size == ZT__OWNER_KEY_LEN && memcmp(k.mv_data, ob, 8) == 0) {
		struct zt__ent e;
		uint64_t owner = zt__be64((const unsigned char *)k.mv_data + 8);
		uint64_t id = zt__be64((const unsigned char *)k.mv_data + 16);
		int frc = zt__find(txn, dbi, v.mv_data, v.mv_size, &e);

		if (frc == -ENOENT ||
		    (frc == 0 && (e.h.id != id || (uint64_t)e.h.owner != owner))) {
			rc = -EINVAL;
			goto out;
		}
		if (frc) {
			rc = frc;
			goto out;
		}
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	rc = rc == MDB_NOTFOUND || rc == 0 ? 0 : st__err(rc);
out:
	mdb_cursor_close(cur);
	return rc;
}

int zt__check(MDB_txn *txn, MDB_dbi dbi, uint64_t next_id, uint64_t last_zxid)
{
	struct zt__chk *n = NULL;
	size_t cnt = 0, cap = 0, nidx = 0, neph = 0, nroot = 0;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	int rc = st__err(mdb_cursor_open(txn, dbi, &cur));

	if (rc)
		return rc;
	/* ids from 2^64 - 2 on are the owner index's and the sessions' key prefixes; zxids are
	 * int64 in the stat, and the next transaction's must be one */
	if (next_id <= ZT__ROOT_ID || next_id > UINT64_MAX - 2 || last_zxid >= INT64_MAX) {
		rc = -EINVAL;
		goto out;
	}
	/* every record: a node, an owner index entry or a node session, each well formed */
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const unsigned char *b = k.mv_data;
		uint64_t parent;
		struct zt__hdr h;

		if (k.mv_size < 8) {
			rc = -EINVAL;
			goto out;
		}
		parent = zt__be64(b);
		if (parent >= UINT64_MAX - 1) {
			rc = zt__check_special(&k, &v, &nidx);
			if (rc)
				goto out;
			continue;
		}
		if (zt__hdr_read(&v, &h, NULL) || h.data_length > ZT_MAX_DATA ||
		    h.num_children < 0 || (h.flags & ~ZT_NODE_DIR) || h.id >= next_id ||
		    h.czxid < 0 || (uint64_t)h.czxid > last_zxid || h.mzxid < 0 ||
		    (uint64_t)h.mzxid > last_zxid || h.pzxid < 0 || (uint64_t)h.pzxid > last_zxid ||
		    (h.owner != 0 && h.num_children != 0)) {
			rc = -EINVAL;
			goto out;
		}
		if (parent == 0) {
			if (k.mv_size != 8 || h.id != ZT__ROOT_ID || h.owner != 0) {
				rc = -EINVAL;
				goto out;
			}
			nroot++;
		} else if (h.id <= ZT__ROOT_ID ||
			   zt__name_validate((const char *)b + 8, k.mv_size - 8) ||
			   memchr(b + 8, '/', k.mv_size - 8)) {
			rc = -EINVAL;
			goto out;
		}
		if (h.owner != 0)
			neph++;
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 1024;
			struct zt__chk *t =
			    ncap <= UINT32_MAX ? realloc(n, ncap * sizeof *n) : NULL;
			if (!t) {
				rc = -ENOMEM;
				goto out;
			}
			n = t;
			cap = ncap;
		}
		n[cnt++] = (struct zt__chk){.id = h.id,
					    .parent = parent,
					    .nch = h.num_children,
					    .nlen = (uint16_t)(k.mv_size - 8)};
	}
	if (rc != MDB_NOTFOUND) {
		rc = st__err(rc);
		goto out;
	}
	if (nroot != 1) {
		rc = -EINVAL;
		goto out;
	}
	/* ids unique, every parent there, children counted right */
	qsort(n, cnt, sizeof *n, zt__chk_cmp);
	for (size_t i = 0; i < cnt; i++) {
		struct zt__chk *p;
		if (i > 0 && n[i].id == n[i - 1].id) {
			rc = -EINVAL;
			goto out;
		}
		if (n[i].parent == 0) {
			n[i].state = 2;
			continue;
		}
		p = zt__chk_find(n, cnt, n[i].parent);
		if (!p) {
			rc = -EINVAL;
			goto out;
		}
		p->counted++;
		n[i].pidx = (uint32_t)(p - n);
	}
	for (size_t i = 0; i < cnt; i++) {
		if (n[i].counted != n[i].nch) {
			rc = -EINVAL;
			goto out;
		}
	}
	/* no cycle: every node's parents lead to the root, by a path under ZT_PATH_MAX */
	for (size_t i = 0; i < cnt; i++) {
		size_t j = i;
		while (n[j].state == 0) {
			n[j].state = 1;
			n[n[j].pidx].down = (uint32_t)j;
			j = n[j].pidx;
		}
		if (n[j].state == 1) {
			rc = -EINVAL;
			goto out;
		}
		if (j == i)
			continue;
		for (size_t c = n[j].down;; c = n[c].down) {
			n[c].plen = n[n[c].pidx].plen + 1u + n[c].nlen;
			n[c].state = 2;
			if (n[c].plen >= ZT_PATH_MAX) {
				rc = -EINVAL;
				goto out;
			}
			if (c == i)
				break;
		}
	}
	/* the owner index and the ephemeral nodes match one to one */
	if (nidx != neph) {
		rc = -EINVAL;
		goto out;
	}
	rc = zt__check_owners(txn, dbi);
out:
	mdb_cursor_close(cur);
	free(n);
	return rc;
}

/* ---- serialisation ---- */

/*
 * Format version 1, all integers little-endian:
 *   "QZT" 0x01 | u32 nops | nops x op
 *   op: u8 type | u32 flags | i32 version | i64 owner | u32 plen | path (plen bytes, last is NUL)
 *       | u32 p2len (0 unless rename) | path2 | u32 dlen | data
 */
#define ZT__ENC_MAGIC  "QZT\x01"
#define ZT__ENC_OP_MIN (1 + 4 + 4 + 8 + 4 + 2 + 4 + 4)

static unsigned char *zt__put_u32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
	return p + 4;
}

static unsigned char *zt__put_u64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
	return p + 8;
}

static uint32_t zt__get_u32(const unsigned char *p)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}

static uint64_t zt__get_u64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

int zt_ops_encode(const struct zt_op *ops, uint32_t nops, void **buf, size_t *len)
{
	size_t total = 8;
	unsigned char *b, *p;

	if (!ops || nops == 0 || !buf || !len)
		return -EINVAL;
	for (uint32_t i = 0; i < nops; i++) {
		const struct zt_op *op = &ops[i];
		if (op->type < ZT_OP_CREATE || op->type > ZT_OP_SESSION || !op->path)
			return -EINVAL;
		if (op->type == ZT_OP_RENAME && !op->path2)
			return -EINVAL;
		if (op->len && !op->data)
			return -EINVAL;
		size_t pl = strnlen(op->path, ZT_PATH_MAX);
		size_t p2l = op->type == ZT_OP_RENAME ? strnlen(op->path2, ZT_PATH_MAX) : 0;
		if (pl >= ZT_PATH_MAX || p2l >= ZT_PATH_MAX || op->len > ZT_MAX_DATA)
			return -EINVAL;
		total += ZT__ENC_OP_MIN - 2 + pl + 1 + (op->type == ZT_OP_RENAME ? p2l + 1 : 0) +
			 op->len;
	}
	b = malloc(total);
	if (!b)
		return -ENOMEM;
	memcpy(b, ZT__ENC_MAGIC, 4);
	p = zt__put_u32(b + 4, nops);
	for (uint32_t i = 0; i < nops; i++) {
		const struct zt_op *op = &ops[i];
		uint32_t pl = (uint32_t)strlen(op->path) + 1;
		uint32_t p2l = op->type == ZT_OP_RENAME ? (uint32_t)strlen(op->path2) + 1 : 0;
		*p++ = (unsigned char)op->type;
		p = zt__put_u32(p, op->flags);
		p = zt__put_u32(p, (uint32_t)op->version);
		p = zt__put_u64(p, (uint64_t)op->owner);
		p = zt__put_u32(p, pl);
		memcpy(p, op->path, pl);
		p += pl;
		p = zt__put_u32(p, p2l);
		if (p2l) {
			memcpy(p, op->path2, p2l);
			p += p2l;
		}
		p = zt__put_u32(p, op->len);
		if (op->len) {
			memcpy(p, op->data, op->len);
			p += op->len;
		}
	}
	*buf = b;
	*len = (size_t)(p - b);
	return 0;
}

/* Read a NUL-terminated string of u32 length at *P (< END). Zero length gives NULL when OPTIONAL.
 */
static int zt__dec_str(const unsigned char **p, const unsigned char *end, int optional,
		       const char **out)
{
	if (end - *p < 4)
		return -EINVAL;
	uint32_t l = zt__get_u32(*p);
	*p += 4;
	if (l == 0 && optional) {
		*out = NULL;
		return 0;
	}
	if (l < 2 || l > ZT_PATH_MAX || (size_t)(end - *p) < l)
		return -EINVAL;
	const char *s = (const char *)*p;
	if (s[l - 1] != '\0' || memchr(s, '\0', l - 1) != NULL)
		return -EINVAL;
	*out = s;
	*p += l;
	return 0;
}

int zt_ops_decode(const void *buf, size_t len, struct zt_op **ops, uint32_t *nops)
{
	const unsigned char *p = buf, *end;
	struct zt_op *o = NULL;
	uint32_t n;
	int rc = -EINVAL;

	if (!buf || !ops || !nops || len < 8 || memcmp(p, ZT__ENC_MAGIC, 4) != 0)
		return -EINVAL;
	end = p + len;
	n = zt__get_u32(p + 4);
	p += 8;
	if (n == 0 || n > (size_t)(end - p) / ZT__ENC_OP_MIN)
		return -EINVAL;
	o = calloc(n, sizeof *o);
	if (!o)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		struct zt_op *op = &o[i];
		if (end - p < 1 + 4 + 4 + 8)
			goto err;
		unsigned type = *p++;
		if (type < ZT_OP_CREATE || type > ZT_OP_SESSION)
			goto err;
		op->type = (enum zt_op_type)type;
		op->flags = zt__get_u32(p);
		op->version = (int32_t)zt__get_u32(p + 4);
		op->owner = (int64_t)zt__get_u64(p + 8);
		p += 16;
		if (zt__dec_str(&p, end, 0, &op->path))
			goto err;
		if (zt__dec_str(&p, end, op->type != ZT_OP_RENAME, &op->path2))
			goto err;
		if (op->type != ZT_OP_RENAME && op->path2)
			goto err;
		if (end - p < 4)
			goto err;
		op->len = zt__get_u32(p);
		p += 4;
		if (op->len > ZT_MAX_DATA || (size_t)(end - p) < op->len)
			goto err;
		op->data = op->len ? p : NULL;
		p += op->len;
	}
	if (p != end)
		goto err;
	*ops = o;
	*nops = n;
	return 0;
err:
	free(o);
	return rc;
}
