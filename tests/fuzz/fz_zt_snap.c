/*
 * Fuzz target: the receiving side of a snapshot transfer (store/zt_snap.h), whose chunks come from
 * a peer: zt_snap_stage_put stages the chunk's records, zt_snap_install checks them (zt__check)
 * and replaces the tree. Input: u64 next_id, u64 last_zxid (the state a BEGIN frame carries), then
 * the chunk bytes. A scratch environment is opened once per process; each input runs in one write
 * transaction that is aborted at the end, so the next input starts from the same tree.
 *
 * Properties: a malformed chunk or a tree that is not whole gives -EINVAL (anything else aborts);
 * an installed tree is walked by path from the root (zt_list, zt_get), apart from zt__check: every
 * node record is reached exactly once, each path is valid, child counts and listings agree, an
 * ephemeral node has no children and the owner index holds exactly the ephemerals; then a create
 * and a delete apply on it.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/st_lmdb.h"
#include "store/zt.h"
#include "store/zt_snap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256];
static struct st_env *env;

static void cleanup(void)
{
	DIR *d;
	struct dirent *e;
	char p[512];

	if (env)
		st_close(env);
	env = NULL;
	d = opendir(dir);
	if (!d)
		return;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
			unlink(p);
		}
	closedir(d);
	rmdir(dir);
}

static void open_env(void)
{
	const char *t = getenv("TMPDIR");
	struct st_wtxn *w;

	snprintf(dir, sizeof dir, "%s/qfs-fz-snap-XXXXXX", t ? t : "/tmp");
	if (!mkdtemp(dir) || st_open(dir, ST_F_NOSYNC, &env) != 0)
		abort();
	atexit(cleanup);
	/* a tree of its own, which every failed install must leave as it is */
	struct zt_op op = {.type = ZT_OP_CREATE, .path = "/mine", .data = "m", .len = 1};
	struct zt_txn txn = {.zxid = 1, .time_ms = 1, .nops = 1, .ops = &op};
	struct zt_result res;
	if (st_wbegin(env, &w) || zt_apply(w, &txn, &res, NULL, NULL) || res.err)
		abort();
	zt_results_free(&res, 1);
	if (st_wcommit(w))
		abort();
}

struct walk {
	struct st_rtxn *r;
	char path[ZT_PATH_MAX];
	size_t len;
	uint64_t nodes;
	uint64_t ephemerals;
	int32_t listed;
};

static void walk(struct walk *wk);

static int walk_child(void *arg, const char *name, const struct zt_node *child)
{
	struct walk *wk = arg;
	size_t nl = strlen(name), len = wk->len;
	struct zt_node again;
	int32_t listed = wk->listed;

	if (len + (len > 1) + nl >= ZT_PATH_MAX)
		abort(); /* a node no path reaches */
	if (len > 1)
		wk->path[wk->len++] = '/';
	memcpy(wk->path + wk->len, name, nl + 1);
	wk->len += nl;
	if (zt_path_validate(wk->path) != 0 || zt_get(wk->r, wk->path, &again) != 0 ||
	    again.stat.czxid != child->stat.czxid || again.stat.mzxid != child->stat.mzxid ||
	    again.stat.ephemeral_owner != child->stat.ephemeral_owner ||
	    again.stat.num_children != child->stat.num_children)
		abort(); /* the listing and the lookup by path disagree */
	if (child->stat.ephemeral_owner != 0 && child->stat.num_children != 0)
		abort();
	walk(wk);
	wk->path[len] = '\0';
	wk->len = len;
	wk->listed = listed + 1;
	return 0;
}

/* Count the node at wk->path and, depth first, everything under it. */
static void walk(struct walk *wk)
{
	struct zt_node n;

	if (zt_get(wk->r, wk->path, &n) != 0)
		abort();
	wk->nodes++;
	if (n.stat.ephemeral_owner != 0)
		wk->ephemerals++;
	wk->listed = 0;
	if (zt_list(wk->r, wk->path, walk_child, wk) != 0 || wk->listed != n.stat.num_children)
		abort();
}

static int count_owner(void *arg, int64_t owner, uint32_t nnodes)
{
	(void)owner;
	*(uint64_t *)arg += nnodes;
	return 0;
}

/* The node records of the tree (keys that are not the owner index's or the sessions'). */
static uint64_t node_records(MDB_txn *txn)
{
	MDB_cursor *cur;
	MDB_val k, v;
	uint64_t n = 0;
	int rc;

	if (mdb_cursor_open(txn, env->tree, &cur))
		abort();
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const unsigned char *b = k.mv_data;
		if (k.mv_size < 8)
			abort();
		if (memcmp(b, "\xff\xff\xff\xff\xff\xff\xff", 7) != 0 || b[7] < 0xfe)
			n++;
	}
	if (rc != MDB_NOTFOUND)
		abort();
	mdb_cursor_close(cur);
	return n;
}

static void check_installed(struct st_wtxn *w, const struct zt_snap_state *st)
{
	struct st_rtxn r = {env, w->txn, NULL};
	struct walk *wk = calloc(1, sizeof *wk);
	uint64_t indexed = 0;

	if (!wk)
		abort();
	wk->r = &r;
	wk->path[0] = '/';
	wk->len = 1;
	walk(wk);
	if (wk->nodes != node_records(w->txn))
		abort(); /* a node record that no path reaches, or one reached twice */
	if (zt_sessions(&r, 0, UINT64_MAX, count_owner, &indexed) != 0 || indexed != wk->ephemerals)
		abort();
	if (zt_last_zxid(&r) != st->last_zxid)
		abort();
	free(wk);

	/* the tree works on: a create (a fresh id) and the delete of it */
	struct zt_op ops[2] = {
	    {.type = ZT_OP_CREATE, .path = "/fz-new", .data = "x", .len = 1},
	    {.type = ZT_OP_DELETE, .path = "/fz-new", .version = -1},
	};
	struct zt_result res[2];
	struct zt_txn txn = {.zxid = st->last_zxid + 1, .time_ms = 2, .nops = 2, .ops = ops};
	if (zt_apply(w, &txn, res, NULL, NULL) != 0)
		abort();
	zt_results_free(res, 2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zt_snap_state st;
	struct st_wtxn *w;
	uint64_t next_id;
	long n;
	int rc;

	if (!env)
		open_env();
	if (size < 16)
		return 0;
	memcpy(&st.next_id, data, 8);
	memcpy(&st.last_zxid, data + 8, 8);
	next_id = env->next_id;
	if (st_wbegin(env, &w) != 0 || zt_snap_stage_clear(w) != 0)
		abort();
	n = zt_snap_stage_put(w, data + 16, size - 16);
	if (n < 0 && n != -EINVAL)
		abort();
	if (n >= 0) {
		rc = zt_snap_install(w, &st);
		if (rc != 0 && rc != -EINVAL)
			abort();
		if (rc == 0)
			check_installed(w, &st);
	}
	st_wabort(w);
	env->next_id = next_id; /* an aborted install may have raised it */

	struct st_rtxn *r;
	struct zt_node mine;
	if (st_rbegin(env, &r) != 0 || zt_get(r, "/mine", &mine) != 0)
		abort();
	st_rend(r);
	return 0;
}
