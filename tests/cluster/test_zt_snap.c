/* store/zt_snap: export in chunks, staging, atomic install, malformed input, injected faults. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/st.h"
#include "store/st_test.h"
#include "store/zt.h"
#include "store/zt_snap.h"

static char dir_a[256], dir_b[256];
static struct st_env *A, *B;

static void mk(char *d)
{
	const char *t = getenv("TMPDIR");
	snprintf(d, 256, "%s/qfs-snap-XXXXXX", t ? t : "/tmp");
	cr_assert_not_null(mkdtemp(d));
}

static void rm(const char *d)
{
	DIR *dd = opendir(d);
	struct dirent *e;
	char p[512];
	if (!dd)
		return;
	while ((e = readdir(dd)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			snprintf(p, sizeof p, "%s/%s", d, e->d_name);
			unlink(p);
		}
	closedir(dd);
	rmdir(d);
}

static void setup(void)
{
	mk(dir_a);
	mk(dir_b);
	cr_assert_eq(st_open(dir_a, ST_F_NOSYNC, &A), 0);
	cr_assert_eq(st_open(dir_b, ST_F_NOSYNC, &B), 0);
}

static void teardown(void)
{
	st_close(A);
	st_close(B);
	rm(dir_a);
	rm(dir_b);
}

TestSuite(zt_snap, .init = setup, .fini = teardown, .timeout = 60);

static uint64_t zxid_a;

/* Apply one create in ENV. */
static void create(struct st_env *env, uint64_t *zxid, const char *path, const void *data,
		   uint32_t len)
{
	struct st_wtxn *w;
	struct zt_op op = {.type = ZT_OP_CREATE, .path = path, .data = data, .len = len};
	struct zt_txn t = {.zxid = ++*zxid, .time_ms = 1234, .nops = 1, .ops = &op};
	struct zt_result res;
	cr_assert_eq(st_wbegin(env, &w), 0);
	cr_assert_eq(zt_apply(w, &t, &res, NULL, NULL), 0);
	cr_assert_eq(res.err, 0, "%s: %d", path, res.err);
	zt_results_free(&res, 1);
	cr_assert_eq(st_wcommit(w), 0);
}

/* Copy A's tree to B with chunks of CAP bytes; returns the number of chunks. */
static int transfer(size_t cap)
{
	unsigned char *buf = malloc(cap);
	struct zt_snap_cursor c = {0};
	struct zt_snap_state st;
	struct st_rtxn *r;
	struct st_wtxn *w;
	int chunks = 0;
	cr_assert_not_null(buf);
	cr_assert_eq(st_rbegin(A, &r), 0);
	cr_assert_eq(zt_snap_state(r, &st), 0);
	cr_assert_eq(st_wbegin(B, &w), 0);
	cr_assert_eq(zt_snap_stage_clear(w), 0);
	cr_assert_eq(st_wcommit(w), 0);
	while (!c.done) {
		size_t len;
		long n = zt_snap_export(r, &c, buf, cap, &len);
		cr_assert_geq(n, 0);
		if (n == 0)
			continue;
		chunks++;
		cr_assert_eq(st_wbegin(B, &w), 0); /* one staging transaction per chunk */
		cr_assert_eq(zt_snap_stage_put(w, buf, len), n);
		cr_assert_eq(st_wcommit(w), 0);
	}
	st_rend(r);
	cr_assert_eq(st_wbegin(B, &w), 0);
	cr_assert_eq(zt_snap_install(w, &st), 0);
	cr_assert_eq(st_wcommit(w), 0);
	free(buf);
	return chunks;
}

static void same_node(const char *path)
{
	struct st_rtxn *ra, *rb;
	struct zt_node na, nb;
	memset(&na, 0, sizeof na); /* the stats are compared whole, padding included */
	memset(&nb, 0, sizeof nb);
	cr_assert_eq(st_rbegin(A, &ra), 0);
	cr_assert_eq(st_rbegin(B, &rb), 0);
	cr_assert_eq(zt_get(ra, path, &na), 0);
	cr_assert_eq(zt_get(rb, path, &nb), 0, "%s missing after install", path);
	cr_assert_eq(memcmp(&na.stat, &nb.stat, sizeof na.stat), 0, "%s: stat differs", path);
	cr_assert_eq(na.stat.data_length, nb.stat.data_length);
	cr_assert_eq(memcmp(na.data, nb.data, (size_t)na.stat.data_length), 0);
	cr_assert_eq(zt_last_zxid(ra), zt_last_zxid(rb));
	st_rend(ra);
	st_rend(rb);
}

Test(zt_snap, round_trip_in_many_chunks_replaces_the_old_tree)
{
	static char big[600 * 1024];
	uint64_t zb = 0;
	char p[64];
	zxid_a = 0;
	memset(big, 'x', sizeof big);
	create(A, &zxid_a, "/d", NULL, 0);
	for (int i = 0; i < 10; i++) {
		snprintf(p, sizeof p, "/d/n%d", i);
		create(A, &zxid_a, p, big, sizeof big);
	}
	create(B, &zb, "/only-in-b", "old", 3);
	struct st_rtxn *before;
	cr_assert_eq(st_rbegin(B, &before), 0);
	int chunks = transfer(ZT_SNAP_REC_MAX);
	cr_assert_gt(chunks, 3);
	same_node("/");
	same_node("/d");
	same_node("/d/n9");
	struct zt_node n;
	struct st_rtxn *r;
	cr_assert_eq(st_rbegin(B, &r), 0);
	cr_assert_eq(zt_get(r, "/only-in-b", &n), -ENOENT);
	st_rend(r);
	/* a snapshot begun before the install still sees the old tree, whole */
	cr_assert_eq(zt_get(before, "/only-in-b", &n), 0);
	cr_assert_eq(zt_get(before, "/d", &n), -ENOENT);
	st_rend(before);
	/* B goes on applying after A's last zxid; ids do not collide */
	uint64_t zb2 = zxid_a;
	create(B, &zb2, "/d/new", "1", 1);
	cr_assert_eq(st_rbegin(B, &r), 0);
	cr_assert_eq(zt_get(r, "/d", &n), 0);
	cr_assert_eq(n.stat.num_children, 11);
	st_rend(r);
}

Test(zt_snap, small_buffers_and_malformed_chunks_are_refused)
{
	unsigned char buf[64];
	struct zt_snap_cursor c = {0};
	struct st_rtxn *r;
	struct st_wtxn *w;
	size_t len;
	cr_assert_eq(st_rbegin(A, &r), 0);
	cr_assert_eq(zt_snap_export(r, &c, buf, sizeof buf, &len), -ENOBUFS);
	st_rend(r);
	cr_assert_eq(st_wbegin(B, &w), 0);
	unsigned char bad[10] = {200, 0, 1, 0, 0, 0}; /* key length 200, nothing follows */
	cr_assert_eq(zt_snap_stage_put(w, bad, sizeof bad), -EINVAL);
	unsigned char tiny[6 + 2] = {2, 0, 0, 0, 0, 0, 1, 2}; /* key shorter than a parent id */
	cr_assert_eq(zt_snap_stage_put(w, tiny, sizeof tiny), -EINVAL);
	cr_assert_eq(zt_snap_stage_clear(w), 0);
	struct zt_snap_state st = {5, 9};
	cr_assert_eq(zt_snap_install(w, &st), -EINVAL); /* nothing staged: no root */
	st_wabort(w);
}

#ifdef QFS_TEST_HOOKS
Test(zt_snap, a_failed_install_keeps_the_old_tree)
{
	uint64_t zb = 0;
	zxid_a = 0;
	for (int i = 0; i < 5; i++) {
		char p[32];
		snprintf(p, sizeof p, "/a%d", i);
		create(A, &zxid_a, p, "v", 1);
	}
	create(B, &zb, "/mine", "m", 1);
	unsigned char *buf = malloc(ZT_SNAP_REC_MAX);
	struct zt_snap_cursor c = {0};
	struct zt_snap_state st;
	struct st_rtxn *r;
	struct st_wtxn *w;
	size_t len;
	cr_assert_eq(st_rbegin(A, &r), 0);
	cr_assert_eq(zt_snap_state(r, &st), 0);
	cr_assert_gt(zt_snap_export(r, &c, buf, ZT_SNAP_REC_MAX, &len), 0);
	st_rend(r);
	cr_assert_eq(st_wbegin(B, &w), 0);
	cr_assert_eq(zt_snap_stage_clear(w), 0);
	cr_assert_eq(zt_snap_stage_put(w, buf, len), 6);
	cr_assert_eq(st_fault_set(B, ST_FAULT_PUT, 3, -ENOSPC), 0);
	cr_assert_eq(zt_snap_install(w, &st), -ENOSPC);
	st_wabort(w);
	struct zt_node n;
	cr_assert_eq(st_rbegin(B, &r), 0);
	cr_assert_eq(zt_get(r, "/mine", &n), 0);
	cr_assert_eq(zt_get(r, "/a0", &n), -ENOENT);
	st_rend(r);
	free(buf);
}
#endif

/* Apply one op in ENV; returns its result's err (RES, optional, gets the stat). */
static int apply_op(struct st_env *env, uint64_t *zxid, struct zt_op op, struct zt_stat *st)
{
	struct st_wtxn *w;
	struct zt_txn t = {.zxid = ++*zxid, .time_ms = 1234, .nops = 1, .ops = &op};
	struct zt_result res;
	cr_assert_eq(st_wbegin(env, &w), 0);
	cr_assert_eq(zt_apply(w, &t, &res, NULL, NULL), 0);
	cr_assert_eq(st_wcommit(w), 0);
	if (st)
		*st = res.stat;
	zt_results_free(&res, 1);
	return res.err;
}

Test(zt_snap, carries_node_sessions)
{
	struct zt_stat s;
	uint64_t zb = 0;
	zxid_a = 0;
	create(A, &zxid_a, "/d", NULL, 0);
	cr_assert_eq(apply_op(A, &zxid_a,
			      (struct zt_op){.type = ZT_OP_SESSION,
					     .flags = ZT_SESSION_F_OPEN,
					     .version = 900,
					     .owner = (int64_t)((uint64_t)2 << 56),
					     .path = "/"},
			      &s),
		     0);
	int64_t base = s.ephemeral_owner;
	cr_assert_eq(apply_op(A, &zxid_a,
			      (struct zt_op){.type = ZT_OP_CREATE,
					     .flags = ZT_CREATE_EPHEMERAL,
					     .owner = base | 1,
					     .path = "/d/e"},
			      NULL),
		     0);
	transfer(ZT_SNAP_REC_MAX);
	same_node("/d/e");
	struct st_rtxn *r;
	struct zt_session ss;
	cr_assert_eq(st_rbegin(B, &r), 0);
	cr_assert_eq(zt_session_get(r, 2, &ss), 0);
	st_rend(r);
	cr_assert_eq(ss.epoch, 1);
	cr_assert_eq(ss.timeout_ms, 900);
	cr_assert_eq(ss.state, ZT_SESSION_OPEN);
	/* B continues where A was: expiring the epoch deletes the ephemeral there too */
	zb = zxid_a;
	cr_assert_eq(apply_op(B, &zb,
			      (struct zt_op){.type = ZT_OP_SESSION,
					     .flags = ZT_SESSION_F_EXPIRE,
					     .owner = base,
					     .path = "/"},
			      NULL),
		     0);
	struct zt_node n;
	cr_assert_eq(st_rbegin(B, &r), 0);
	cr_assert_eq(zt_get(r, "/d/e", &n), -ENOENT);
	st_rend(r);
}

/* ---- a corrupt tree from a peer is refused (zt__check) ---- */

/* The records of A's tree, as zt_snap_export writes them. */
struct rec {
	uint16_t kl;
	uint32_t vl;
	unsigned char k[ZT_SNAP_KEY_MAX];
	unsigned char v[256];
};
static struct rec recs[32];
static int nrecs;
static struct zt_snap_state a_state;

/* zt.c's node header (struct zt__hdr): u64 id first, i32 num_children at 72, 80 bytes in all. */
#define HDR_SIZE 80
#define HDR_NCH	 72

static void export_a(void)
{
	unsigned char *buf = malloc(ZT_SNAP_REC_MAX);
	struct zt_snap_cursor c = {0};
	struct st_rtxn *r;
	size_t len, off = 0;
	cr_assert_not_null(buf);
	cr_assert_eq(st_rbegin(A, &r), 0);
	cr_assert_eq(zt_snap_state(r, &a_state), 0);
	cr_assert_gt(zt_snap_export(r, &c, buf, ZT_SNAP_REC_MAX, &len), 0);
	cr_assert(c.done);
	st_rend(r);
	for (nrecs = 0; off < len; nrecs++) {
		struct rec *x = &recs[nrecs];
		cr_assert_lt(nrecs, 32);
		memcpy(&x->kl, buf + off, 2);
		memcpy(&x->vl, buf + off + 2, 4);
		cr_assert_leq(x->vl, sizeof x->v);
		memcpy(x->k, buf + off + 6, x->kl);
		memcpy(x->v, buf + off + 6 + x->kl, x->vl);
		off += 6 + (size_t)x->kl + x->vl;
	}
	free(buf);
}

/* The index of the record whose key is PARENT_ID's child NAME (parent 0: the root). */
static int find_rec(uint64_t parent, const char *name)
{
	for (int i = 0; i < nrecs; i++) {
		uint64_t p = 0;
		for (int b = 0; b < 8; b++)
			p = p << 8 | recs[i].k[b];
		if (p == parent && recs[i].kl == 8 + strlen(name) &&
		    memcmp(recs[i].k + 8, name, strlen(name)) == 0)
			return i;
	}
	cr_assert_fail("no record %llu/%s", (unsigned long long)parent, name);
	return -1;
}

static uint64_t rec_id(int i)
{
	uint64_t id;
	memcpy(&id, recs[i].v, 8);
	return id;
}

static void set_parent(struct rec *x, uint64_t parent)
{
	for (int b = 0; b < 8; b++)
		x->k[b] = (unsigned char)(parent >> (56 - 8 * b));
}

/* Stage X[0..n) in B and install them with state ST: the result; B's tree must be unchanged
 * whenever the install fails. */
static int install_recs(const struct rec *x, int n, const struct zt_snap_state *st)
{
	unsigned char *buf = malloc(ZT_SNAP_REC_MAX);
	struct st_wtxn *w;
	struct st_rtxn *r;
	struct zt_node nd;
	size_t off = 0;
	int rc;
	cr_assert_not_null(buf);
	for (int i = 0; i < n; i++) {
		memcpy(buf + off, &x[i].kl, 2);
		memcpy(buf + off + 2, &x[i].vl, 4);
		memcpy(buf + off + 6, x[i].k, x[i].kl);
		memcpy(buf + off + 6 + x[i].kl, x[i].v, x[i].vl);
		off += 6 + (size_t)x[i].kl + x[i].vl;
	}
	cr_assert_eq(st_wbegin(B, &w), 0);
	cr_assert_eq(zt_snap_stage_clear(w), 0);
	cr_assert_eq(zt_snap_stage_put(w, buf, off), n);
	rc = zt_snap_install(w, st);
	if (rc) {
		st_wabort(w);
		cr_assert_eq(st_rbegin(B, &r), 0);
		cr_assert_eq(zt_get(r, "/mine", &nd), 0, "B's tree changed by a failed install");
		st_rend(r);
	} else {
		cr_assert_eq(st_wcommit(w), 0);
	}
	free(buf);
	return rc;
}

Test(zt_snap, a_corrupt_tree_is_refused_and_the_old_one_kept)
{
	struct rec x[64];
	struct zt_stat s;
	uint64_t zb = 0;
	int d, f, e, idx = -1;
	zxid_a = 0;
	create(A, &zxid_a, "/d", NULL, 0);
	create(A, &zxid_a, "/d/f", "data", 4);
	cr_assert_eq(apply_op(A, &zxid_a,
			      (struct zt_op){.type = ZT_OP_SESSION,
					     .flags = ZT_SESSION_F_OPEN,
					     .version = 900,
					     .owner = (int64_t)((uint64_t)3 << 56),
					     .path = "/"},
			      &s),
		     0);
	cr_assert_eq(apply_op(A, &zxid_a,
			      (struct zt_op){.type = ZT_OP_CREATE,
					     .flags = ZT_CREATE_EPHEMERAL,
					     .owner = s.ephemeral_owner | 7,
					     .path = "/d/e0"},
			      NULL),
		     0);
	/* an ephemeral renamed: its index entry follows it */
	cr_assert_eq(apply_op(A, &zxid_a,
			      (struct zt_op){.type = ZT_OP_RENAME, .path = "/d/e0", .path2 = "/e"},
			      NULL),
		     0);
	create(B, &zb, "/mine", "m", 1);
	export_a();
	d = find_rec(1, "d");
	f = find_rec(rec_id(d), "f");
	e = find_rec(1, "e");
	cr_assert_eq(recs[f].vl, HDR_SIZE + 4);
	for (int i = 0; i < nrecs; i++)
		if (recs[i].k[0] == 0xff && recs[i].k[7] == 0xff)
			idx = i;
	cr_assert_geq(idx, 0, "no owner index entry exported");
	struct zt_snap_state st = a_state;

	/* data_length and the value disagree */
	memcpy(x, recs, sizeof recs);
	x[f].vl--;
	cr_assert_eq(install_recs(x, nrecs, &st), -EINVAL);
	/* a child missing: its parent's num_children is wrong */
	memcpy(x, recs, sizeof recs);
	x[f] = x[nrecs - 1];
	cr_assert_eq(install_recs(x, nrecs - 1, &st), -EINVAL);
	/* an orphan: its parent is not there */
	memcpy(x, recs, sizeof recs);
	set_parent(&x[f], 999);
	cr_assert_eq(install_recs(x, nrecs, &st), -EINVAL);
	/* a name no client could create */
	memcpy(x, recs, sizeof recs);
	x[f].k[8] = '/';
	cr_assert_eq(install_recs(x, nrecs, &st), -EINVAL);
	/* node ids at or above the state's next id: later creates would reuse them */
	st.next_id = rec_id(f);
	cr_assert_eq(install_recs(recs, nrecs, &st), -EINVAL);
	st = a_state;
	/* nodes changed after the state's last zxid; a last zxid with no next one */
	st.last_zxid = a_state.last_zxid - 1;
	cr_assert_eq(install_recs(recs, nrecs, &st), -EINVAL);
	st.last_zxid = INT64_MAX;
	cr_assert_eq(install_recs(recs, nrecs, &st), -EINVAL);
	st = a_state;
	/* two nodes with one id */
	memcpy(x, recs, sizeof recs);
	memcpy(x[f].v, x[d].v, 8);
	cr_assert_eq(install_recs(x, nrecs, &st), -EINVAL);
	/* an ephemeral node without its owner index entry */
	memcpy(x, recs, sizeof recs);
	x[idx] = x[nrecs - 1];
	cr_assert_eq(install_recs(x, nrecs - 1, &st), -EINVAL);
	/* an owner index entry whose path is not its node */
	memcpy(x, recs, sizeof recs);
	memcpy(x[idx].v, "/d", 2);
	x[idx].vl = 2;
	cr_assert_eq(install_recs(x, nrecs, &st), -EINVAL);
	/* a child under an ephemeral node */
	memcpy(x, recs, sizeof recs);
	set_parent(&x[f], rec_id(e));
	{
		int32_t one = 1, zero = 0;
		memcpy(x[e].v + HDR_NCH, &one, 4);
		memcpy(x[d].v + HDR_NCH, &zero, 4);
	}
	cr_assert_eq(install_recs(x, nrecs, &st), -EINVAL);
	/* two nodes that are each other's parent, counts right, detached from the root */
	memcpy(x, recs, sizeof recs);
	x[nrecs] = recs[f];
	x[nrecs + 1] = recs[f];
	{
		uint64_t a = a_state.next_id, b = a_state.next_id + 1;
		int32_t one = 1;
		memcpy(x[nrecs].v, &a, 8);
		memcpy(x[nrecs].v + HDR_NCH, &one, 4);
		set_parent(&x[nrecs], b);
		memcpy(x[nrecs + 1].v, &b, 8);
		memcpy(x[nrecs + 1].v + HDR_NCH, &one, 4);
		set_parent(&x[nrecs + 1], a);
		st.next_id = b + 1;
	}
	cr_assert_eq(install_recs(x, nrecs + 2, &st), -EINVAL);
	st = a_state;
	/* a node session record of the wrong size */
	memcpy(x, recs, sizeof recs);
	for (int i = 0; i < nrecs; i++)
		if (x[i].k[0] == 0xff && x[i].k[7] == 0xfe)
			x[i].vl--;
	cr_assert_eq(install_recs(x, nrecs, &st), -EINVAL);

	/* a chain of 255-byte names: 16 deep is a path of 4096 bytes, 15 deep one of 3840 */
	for (int deep = 16; deep >= 15; deep--) {
		int root = find_rec(0, "");
		int32_t nch;
		memcpy(x, recs, sizeof recs);
		memcpy(&nch, x[root].v + HDR_NCH, 4);
		nch++;
		memcpy(x[root].v + HDR_NCH, &nch, 4);
		for (int i = 0; i < deep; i++) {
			struct rec *c = &x[nrecs + i];
			uint64_t id = a_state.next_id + (uint64_t)i;
			int32_t one = i + 1 < deep;
			*c = recs[f];
			set_parent(c, i ? id - 1 : 1);
			memset(c->k + 8, 'a' + i, 255);
			c->kl = 8 + 255;
			memcpy(c->v, &id, 8);
			memcpy(c->v + HDR_NCH, &one, 4);
		}
		st.next_id = a_state.next_id + (uint64_t)deep;
		cr_assert_eq(install_recs(x, nrecs + deep, &st), deep == 15 ? 0 : -EINVAL);
	}
	st = a_state;

	/* the records as exported install, and the tree works on */
	cr_assert_eq(install_recs(recs, nrecs, &st), 0);
	same_node("/d/f");
	same_node("/e");
	zb = zxid_a;
	cr_assert_eq(apply_op(B, &zb,
			      (struct zt_op){.type = ZT_OP_SESSION,
					     .flags = ZT_SESSION_F_EXPIRE,
					     .owner = s.ephemeral_owner,
					     .path = "/"},
			      NULL),
		     0);
	struct st_rtxn *r;
	struct zt_node n;
	cr_assert_eq(st_rbegin(B, &r), 0);
	cr_assert_eq(zt_get(r, "/e", &n), -ENOENT);
	st_rend(r);
}
