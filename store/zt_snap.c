/* zt_snap: export and atomic import of the whole tree (see zt_snap.h). */
#include <errno.h>
#include <string.h>

#include "store/st_lmdb.h"
#include "store/zt_snap.h"

/* The layout of zt.c's "state" record in "meta" (struct zt__state there). */
struct zt_snap__state {
	uint64_t last_zxid;
	uint64_t next_id;
};

static const MDB_val zt_snap__state_key = {5, "state"};

int zt_snap_state(struct st_rtxn *r, struct zt_snap_state *out)
{
	MDB_val k = zt_snap__state_key, v;
	struct zt_snap__state s;
	int rc = mdb_get(r->txn, r->env->meta, &k, &v);

	if (rc)
		return rc == MDB_NOTFOUND ? -EIO : st__err(rc);
	if (v.mv_size != sizeof s)
		return -EIO;
	memcpy(&s, v.mv_data, sizeof s);
	out->last_zxid = s.last_zxid;
	out->next_id = s.next_id;
	return 0;
}

long zt_snap_export(struct st_rtxn *r, struct zt_snap_cursor *c, unsigned char *buf, size_t cap,
		    size_t *len)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	size_t off = 0;
	long n = 0;
	int rc;

	*len = 0;
	if (cap < ZT_SNAP_REC_MAX)
		return -ENOBUFS;
	if (c->done)
		return 0;
	rc = st__err(mdb_cursor_open(r->txn, r->env->tree, &cur));
	if (rc)
		return rc;
	if (c->len == 0) {
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	} else {
		k.mv_size = c->len;
		k.mv_data = c->key;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc == 0 && k.mv_size == c->len && memcmp(k.mv_data, c->key, c->len) == 0)
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	while (rc == 0) {
		uint16_t kl;
		uint32_t vl;
		if (k.mv_size > ZT_SNAP_KEY_MAX || v.mv_size > ZT_SNAP_REC_MAX - 6 - k.mv_size) {
			rc = -EIO;
			goto out;
		}
		if (cap - off < 6 + k.mv_size + v.mv_size)
			break; /* the next chunk starts with it */
		kl = (uint16_t)k.mv_size;
		vl = (uint32_t)v.mv_size;
		memcpy(buf + off, &kl, 2);
		memcpy(buf + off + 2, &vl, 4);
		memcpy(buf + off + 6, k.mv_data, kl);
		memcpy(buf + off + 6 + kl, v.mv_data, vl);
		off += 6 + (size_t)kl + vl;
		c->len = kl;
		memcpy(c->key, k.mv_data, kl);
		n++;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (rc == MDB_NOTFOUND) {
		c->done = 1;
		rc = 0;
	}
	rc = st__err(rc);
out:
	mdb_cursor_close(cur);
	if (rc)
		return rc;
	*len = off;
	return n;
}

static int zt_snap__stage(struct st_wtxn *w, MDB_dbi *out)
{
	return st__dbi_open(w, "zt_stage", MDB_CREATE, out);
}

int zt_snap_stage_clear(struct st_wtxn *w)
{
	MDB_dbi d;
	int rc = zt_snap__stage(w, &d);

	if (rc)
		return rc;
	return st__err(mdb_drop(w->txn, d, 0));
}

long zt_snap_stage_put(struct st_wtxn *w, const void *chunk, size_t len)
{
	const unsigned char *p = chunk;
	size_t off = 0;
	MDB_dbi d;
	long n = 0;
	int rc = zt_snap__stage(w, &d);

	if (rc)
		return rc;
	while (off < len) {
		uint16_t kl;
		uint32_t vl;
		MDB_val k, v;
		if (len - off < 6)
			return -EINVAL;
		memcpy(&kl, p + off, 2);
		memcpy(&vl, p + off + 2, 4);
		if (kl < 8 || kl > ZT_SNAP_KEY_MAX || len - off - 6 < (size_t)kl + vl)
			return -EINVAL;
		k.mv_size = kl;
		k.mv_data = (void *)(p + off + 6);
		v.mv_size = vl;
		v.mv_data = (void *)(p + off + 6 + kl);
		rc = st__fault_put(w->env);
		if (rc == 0)
			rc = st__err(mdb_put(w->txn, d, &k, &v, 0));
		if (rc)
			return rc;
		off += 6 + (size_t)kl + vl;
		n++;
	}
	return n;
}

int zt_snap_install(struct st_wtxn *w, const struct zt_snap_state *st)
{
	static const unsigned char root[8];
	struct zt_snap__state s = {st->last_zxid, st->next_id};
	MDB_val k = {sizeof root, (void *)root}, v;
	MDB_cursor *cur = NULL;
	MDB_dbi d;
	int rc = zt_snap__stage(w, &d);

	if (rc)
		return rc;
	rc = mdb_get(w->txn, d, &k, &v);
	if (rc)
		return rc == MDB_NOTFOUND ? -EINVAL : st__err(rc);
	rc = zt__check(w->txn, d, s.next_id, s.last_zxid); /* the chunks came from a peer */
	if (rc)
		return rc;
	rc = st__err(mdb_drop(w->txn, w->env->tree, 0));
	if (rc)
		return rc;
	rc = st__err(mdb_cursor_open(w->txn, d, &cur));
	if (rc)
		return rc;
	rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (rc == 0) {
		rc = st__fault_put(w->env);
		if (rc)
			goto out;
		rc = mdb_put(w->txn, w->env->tree, &k, &v, MDB_APPEND);
		if (rc)
			break;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	rc = st__err(rc);
out:
	mdb_cursor_close(cur);
	if (rc)
		return rc;
	rc = st__err(mdb_drop(w->txn, d, 0));
	if (rc)
		return rc;
	k = zt_snap__state_key;
	v.mv_size = sizeof s;
	v.mv_data = &s;
	rc = st__err(mdb_put(w->txn, w->env->meta, &k, &v, 0));
	if (rc)
		return rc;
	if (w->env->next_id < s.next_id)
		w->env->next_id = s.next_id;
	return 0;
}
