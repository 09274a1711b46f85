/* The znode tree state machine: every op, every stat field, every error, events. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/st.h"
#include "store/st_test.h"
#include "store/zt.h"
#include "helpers.h"

static char dir[256];
static struct st_env *env;
static uint64_t zxid;
static int64_t now = 1700000000000;
static char events[8192]; /* "T:path " for every change, T in C D S K (children) */

static void on_change(void *arg, const struct zt_change *ch)
{
	static const char t[] = "?CDSK";
	char one[512];
	uint64_t *expect = arg;
	cr_assert_eq(ch->zxid, *expect);
	snprintf(one, sizeof one, "%c:%s ", t[ch->type], ch->path);
	strncat(events, one, sizeof events - strlen(events) - 1);
}

static void setup(void)
{
	h_mkdir(dir);
	cr_assert_eq(st_open(dir, ST_F_NOSYNC, &env), 0);
	zxid = 0;
	events[0] = '\0';
}

static void teardown(void)
{
	st_close(env);
	h_rmdir(dir);
}

TestSuite(zt, .init = setup, .fini = teardown);

/* Apply OPS as one transaction with the next zxid; RES gets the results (freed by the caller). */
static void apply_n(const struct zt_op *ops, uint32_t n, struct zt_result *res)
{
	struct st_wtxn *w;
	struct zt_txn t = {.zxid = ++zxid, .time_ms = ++now, .nops = n, .ops = ops};
	events[0] = '\0';
	cr_assert_eq(st_wbegin(env, &w), 0);
	cr_assert_eq(zt_apply(w, &t, res, on_change, &zxid), 0);
	cr_assert_eq(st_wcommit(w), 0);
}

/* One op; returns its err, RES (optional) gets the result. */
static int apply1(struct zt_op op, struct zt_result *out)
{
	struct zt_result res;
	apply_n(&op, 1, &res);
	if (out)
		*out = res;
	else
		zt_results_free(&res, 1);
	return res.err;
}

static int create(const char *path, const char *data, uint32_t flags)
{
	return apply1((struct zt_op){.type = ZT_OP_CREATE,
				     .flags = flags,
				     .owner = 0,
				     .path = path,
				     .data = data,
				     .len = data ? (uint32_t)strlen(data) : 0},
		      NULL);
}

static int getn(const char *path, struct zt_node *n)
{
	struct st_rtxn *r;
	cr_assert_eq(st_rbegin(env, &r), 0);
	int rc = zt_get(r, path, n);
	n->data = NULL; /* not valid after st_rend */
	st_rend(r);
	return rc;
}

static struct zt_stat stat_of(const char *path)
{
	struct zt_node n;
	cr_assert_eq(getn(path, &n), 0, "%s missing", path);
	return n.stat;
}

static void data_is(const char *path, const char *want)
{
	struct st_rtxn *r;
	struct zt_node n;
	cr_assert_eq(st_rbegin(env, &r), 0);
	cr_assert_eq(zt_get(r, path, &n), 0);
	cr_assert_eq(n.stat.data_length, (int32_t)strlen(want));
	cr_assert(memcmp(n.data, want, strlen(want)) == 0);
	st_rend(r);
}

static int list_cb(void *arg, const char *name, const struct zt_node *child)
{
	strcat(arg, name);
	strcat(arg, ",");
	return 0;
}

static int list(const char *path, char *out)
{
	struct st_rtxn *r;
	out[0] = '\0';
	cr_assert_eq(st_rbegin(env, &r), 0);
	int rc = zt_list(r, path, list_cb, out);
	st_rend(r);
	return rc;
}

/* A digest of the whole tree (paths, stats, data) for "nothing changed" checks. */
static void dump_rec(struct st_rtxn *r, const char *path, char **buf, size_t *len, FILE *f);
struct dump_arg {
	struct st_rtxn *r;
	const char *path;
	FILE *f;
};
static int dump_cb(void *arg, const char *name, const struct zt_node *child)
{
	struct dump_arg *a = arg;
	char p[ZT_PATH_MAX];
	snprintf(p, sizeof p, "%s/%s", strcmp(a->path, "/") == 0 ? "" : a->path, name);
	dump_rec(a->r, p, NULL, NULL, a->f);
	return 0;
}
static void dump_rec(struct st_rtxn *r, const char *path, char **buf, size_t *len, FILE *f)
{
	struct zt_node n;
	cr_assert_eq(zt_get(r, path, &n), 0);
	fprintf(f, "%s %ld %ld %ld %ld %ld %d %d %d %ld %d %d %u ", path, (long)n.stat.czxid,
		(long)n.stat.mzxid, (long)n.stat.pzxid, (long)n.stat.ctime, (long)n.stat.mtime,
		n.stat.version, n.stat.cversion, n.stat.aversion, (long)n.stat.ephemeral_owner,
		n.stat.data_length, n.stat.num_children, n.flags);
	fwrite(n.data, 1, (size_t)n.stat.data_length, f);
	fputc('\n', f);
	struct dump_arg a = {r, path, f};
	cr_assert_eq(zt_list(r, path, dump_cb, &a), 0);
}
static char *dump(void)
{
	struct st_rtxn *r;
	char *buf;
	size_t len;
	FILE *f = open_memstream(&buf, &len);
	cr_assert_eq(st_rbegin(env, &r), 0);
	dump_rec(r, "/", NULL, NULL, f);
	st_rend(r);
	fclose(f);
	return buf;
}

static int stat_eq(const struct zt_stat *a, const struct zt_stat *b)
{
	return a->czxid == b->czxid && a->mzxid == b->mzxid && a->pzxid == b->pzxid &&
	       a->ctime == b->ctime && a->mtime == b->mtime && a->version == b->version &&
	       a->cversion == b->cversion && a->aversion == b->aversion &&
	       a->ephemeral_owner == b->ephemeral_owner && a->data_length == b->data_length &&
	       a->num_children == b->num_children;
}

static uint64_t last_zxid(void)
{
	struct st_rtxn *r;
	cr_assert_eq(st_rbegin(env, &r), 0);
	uint64_t z = zt_last_zxid(r);
	st_rend(r);
	return z;
}

Test(zt, root_exists_with_zero_stat)
{
	struct zt_node n;
	cr_assert_eq(getn("/", &n), 0);
	struct zt_stat zero = {0};
	cr_assert(stat_eq(&n.stat, &zero));
	cr_assert_eq(n.flags, ZT_NODE_DIR);
	cr_assert_eq(last_zxid(), 0);
	char l[64];
	cr_assert_eq(list("/", l), 0);
	cr_assert_str_eq(l, "");
}

Test(zt, create_sets_every_stat_field)
{
	struct zt_result res;
	cr_assert_eq(apply1((struct zt_op){.type = ZT_OP_CREATE,
					   .flags = ZT_CREATE_DIR,
					   .path = "/a",
					   .data = "hello",
					   .len = 5},
			    &res),
		     0);
	cr_assert_str_eq(res.path, "/a");
	struct zt_stat s = stat_of("/a");
	cr_assert_eq(s.czxid, 1);
	cr_assert_eq(s.mzxid, 1);
	cr_assert_eq(s.pzxid, 1);
	cr_assert_eq(s.ctime, now);
	cr_assert_eq(s.mtime, now);
	cr_assert_eq(s.version, 0);
	cr_assert_eq(s.cversion, 0);
	cr_assert_eq(s.aversion, 0);
	cr_assert_eq(s.ephemeral_owner, 0);
	cr_assert_eq(s.data_length, 5);
	cr_assert_eq(s.num_children, 0);
	cr_assert(stat_eq(&s, &res.stat));
	zt_results_free(&res, 1);
	data_is("/a", "hello");
	struct zt_node n;
	cr_assert_eq(getn("/a", &n), 0);
	cr_assert_eq(n.flags, ZT_NODE_DIR);

	/* the parent: cversion, pzxid, numChildren move; nothing else */
	struct zt_stat r = stat_of("/");
	cr_assert_eq(r.czxid, 0);
	cr_assert_eq(r.mzxid, 0);
	cr_assert_eq(r.pzxid, 1);
	cr_assert_eq(r.ctime, 0);
	cr_assert_eq(r.mtime, 0);
	cr_assert_eq(r.version, 0);
	cr_assert_eq(r.cversion, 1);
	cr_assert_eq(r.aversion, 0);
	cr_assert_eq(r.data_length, 0);
	cr_assert_eq(r.num_children, 1);

	cr_assert_eq(create("/a/f", NULL, 0), 0);
	cr_assert_eq(getn("/a/f", &n), 0);
	cr_assert_eq(n.flags, 0);
	cr_assert_eq(n.stat.data_length, 0);
	s = stat_of("/a");
	cr_assert_eq(s.pzxid, 2);
	cr_assert_eq(s.mzxid, 1);
	cr_assert_eq(s.cversion, 1);
	cr_assert_eq(s.num_children, 1);
	cr_assert_eq(s.version, 0);
	cr_assert_eq(stat_of("/").pzxid, 1); /* grandparent untouched */
	cr_assert_eq(last_zxid(), 2);
}

Test(zt, create_errors)
{
	cr_assert_eq(create("/a", "x", 0), 0);
	char *before = dump();
	cr_assert_eq(create("/missing/b", NULL, 0), ZT_ENONODE);
	cr_assert_eq(create("/a", NULL, 0), ZT_ENODEEXISTS);
	cr_assert_eq(create("/", NULL, 0), ZT_ENODEEXISTS);
	cr_assert_eq(create("/zookeeper", NULL, 0), ZT_EBADARGS);
	cr_assert_eq(create("a", NULL, 0), ZT_EBADARGS);
	cr_assert_eq(create("/a/", NULL, 0), ZT_EBADARGS);
	cr_assert_eq(create("/a//b", NULL, 0), ZT_EBADARGS);
	cr_assert_eq(create("/a/.", NULL, 0), ZT_EBADARGS);
	cr_assert_eq(apply1((struct zt_op){.type = ZT_OP_CREATE, .path = NULL}, NULL), ZT_EBADARGS);
	cr_assert_eq(
	    apply1((struct zt_op){.type = ZT_OP_CREATE, .flags = 0x100, .path = "/b"}, NULL),
	    ZT_EBADARGS);
	cr_assert_eq(apply1((struct zt_op){.type = ZT_OP_CREATE,
					   .flags = ZT_CREATE_EPHEMERAL,
					   .owner = 0,
					   .path = "/b"},
			    NULL),
		     ZT_EBADARGS);
	cr_assert_eq(apply1((struct zt_op){.type = ZT_OP_CREATE, .path = "/b", .len = 3}, NULL),
		     ZT_EBADARGS);
	cr_assert_eq(apply1((struct zt_op){.type = 99, .path = "/b"}, NULL), ZT_EBADARGS);
	char *big = calloc(1, ZT_MAX_DATA + 1);
	cr_assert_eq(apply1((struct zt_op){.type = ZT_OP_CREATE,
					   .path = "/big",
					   .data = big,
					   .len = ZT_MAX_DATA + 1},
			    NULL),
		     ZT_ETOOBIG);
	char *after = dump();
	cr_assert_str_eq(before, after, "a rejected transaction changed the tree");
	cr_assert_eq(last_zxid(), zxid, "rejected transactions still consume their zxid");
	cr_assert_eq(apply1(
			 (struct zt_op){
			     .type = ZT_OP_CREATE, .path = "/big", .data = big, .len = ZT_MAX_DATA},
			 NULL),
		     0);
	cr_assert_eq(stat_of("/big").data_length, ZT_MAX_DATA);
	free(big);
	free(before);
	free(after);
}

Test(zt, set_data)
{
	cr_assert_eq(create("/a", "one", 0), 0);
	int64_t t1 = now;
	struct zt_result res;
	cr_assert_eq(
	    apply1(
		(struct zt_op){
		    .type = ZT_OP_SET, .version = -1, .path = "/a", .data = "second", .len = 6},
		&res),
	    0);
	cr_assert_str_eq(events, "S:/a ");
	cr_assert_null(res.path);
	struct zt_stat s = stat_of("/a");
	cr_assert(stat_eq(&s, &res.stat));
	cr_assert_eq(s.czxid, 1);
	cr_assert_eq(s.mzxid, 2);
	cr_assert_eq(s.pzxid, 1);
	cr_assert_eq(s.ctime, t1);
	cr_assert_eq(s.mtime, now);
	cr_assert_eq(s.version, 1);
	cr_assert_eq(s.cversion, 0);
	cr_assert_eq(s.aversion, 0);
	cr_assert_eq(s.data_length, 6);
	data_is("/a", "second");
	struct zt_stat r = stat_of("/");
	cr_assert_eq(r.pzxid, 1);
	cr_assert_eq(r.cversion, 1);

	/* conditional set, unchanged data still makes a new version */
	cr_assert_eq(
	    apply1(
		(struct zt_op){
		    .type = ZT_OP_SET, .version = 1, .path = "/a", .data = "second", .len = 6},
		NULL),
	    0);
	cr_assert_eq(stat_of("/a").version, 2);
	cr_assert_eq(stat_of("/a").mzxid, 3);
	cr_assert_eq(apply1((struct zt_op){.type = ZT_OP_SET, .version = 1, .path = "/a"}, NULL),
		     ZT_EBADVERSION);
	cr_assert_eq(
	    apply1((struct zt_op){.type = ZT_OP_SET, .version = -1, .path = "/nope"}, NULL),
	    ZT_ENONODE);
	cr_assert_eq(apply1((struct zt_op){.type = ZT_OP_SET, .version = -1, .path = "nope"}, NULL),
		     ZT_EBADARGS);
	char *big = calloc(1, ZT_MAX_DATA + 1);
	cr_assert_eq(apply1((struct zt_op){.type = ZT_OP_SET,
					   .version = -1,
					   .path = "/a",
					   .data = big,
					   .len = ZT_MAX_DATA + 1},
			    NULL),
		     ZT_ETOOBIG);
	free(big);
	cr_assert_str_eq(events, "");
	/* empty data */
	cr_assert_eq(apply1((struct zt_op){.type = ZT_OP_SET, .version = 2, .path = "/a"}, NULL),
		     0);
	cr_assert_eq(stat_of("/a").data_length, 0);
	cr_assert_eq(stat_of("/a").version, 3);
	/* set on the root works like on any node */
	cr_assert_eq(
	    apply1(
		(struct zt_op){.type = ZT_OP_SET, .version = 0, .path = "/", .data = "r", .len = 1},
		NULL),
	    0);
	cr_assert_eq(stat_of("/").version, 1);
	cr_assert_eq(stat_of("/").num_children, 1);
}

/* A write through a file descriptor names the node it opened by its czxid: once the path names
 * a node created since, the set fails and changes nothing. */
Test(zt, set_with_czxid_only_hits_that_node)
{
	cr_assert_eq(create("/a", "one", 0), 0);
	int64_t cz = stat_of("/a").czxid;
	cr_assert_eq(apply1((struct zt_op){.type = ZT_OP_SET,
					   .flags = ZT_SET_CZXID,
					   .owner = cz,
					   .version = -1,
					   .path = "/a",
					   .data = "two",
					   .len = 3},
			    NULL),
		     0);
	cr_assert_eq(stat_of("/a").version, 1);
	cr_assert_eq(apply1((struct zt_op){.type = ZT_OP_DELETE, .version = -1, .path = "/a"}, NULL),
		     0);
	cr_assert_eq(create("/a", "new", 0), 0);
	cr_assert_neq(stat_of("/a").czxid, cz);
	cr_assert_eq(apply1((struct zt_op){.type = ZT_OP_SET,
					   .flags = ZT_SET_CZXID,
					   .owner = cz,
					   .version = -1,
					   .path = "/a",
					   .data = "stale",
					   .len = 5},
			    NULL),
		     ZT_ENONODE);
	cr_assert_eq(stat_of("/a").version, 0);
	cr_assert_eq(stat_of("/a").data_length, 3);
	cr_assert_str_eq(events, "");
	/* the version is checked first, as ZooKeeper's setData does */
	cr_assert_eq(apply1((struct zt_op){.type = ZT_OP_SET,
					   .flags = ZT_SET_CZXID,
					   .owner = cz,
					   .version = 7,
					   .path = "/a"},
			    NULL),
		     ZT_EBADVERSION);
}

Test(zt, delete_node)
{
	cr_assert_eq(create("/a", NULL, ZT_CREATE_DIR), 0);
	cr_assert_eq(create("/a/b", "x", 0), 0);
	cr_assert_eq(create("/a/c", "x", 0), 0);
	cr_assert_eq(
	    apply1((struct zt_op){.type = ZT_OP_DELETE, .version = -1, .path = "/a"}, NULL),
	    ZT_ENOTEMPTY);
	cr_assert_eq(
	    apply1((struct zt_op){.type = ZT_OP_DELETE, .version = 3, .path = "/a/b"}, NULL),
	    ZT_EBADVERSION);
	cr_assert_eq(
	    apply1((struct zt_op){.type = ZT_OP_DELETE, .version = -1, .path = "/a/x"}, NULL),
	    ZT_ENONODE);
	cr_assert_eq(apply1((struct zt_op){.type = ZT_OP_DELETE, .version = -1, .path = "/"}, NULL),
		     ZT_EBADARGS);
	cr_assert_eq(
	    apply1((struct zt_op){.type = ZT_OP_DELETE, .version = -1, .path = "/a/"}, NULL),
	    ZT_EBADARGS);
	cr_assert_eq(stat_of("/a").cversion, 2);
	cr_assert_eq(
	    apply1((struct zt_op){.type = ZT_OP_DELETE, .version = 0, .path = "/a/b"}, NULL), 0);
	cr_assert_str_eq(events, "D:/a/b K:/a ");
	struct zt_node n;
	cr_assert_eq(getn("/a/b", &n), ZT_ENONODE);
	struct zt_stat s = stat_of("/a");
	cr_assert_eq(s.cversion, 3, "cversion counts deletions too");
	cr_assert_eq(s.pzxid, zxid);
	cr_assert_eq(s.num_children, 1);
	cr_assert_eq(s.mzxid, 1);
	cr_assert_eq(s.version, 0);
	char l[64];
	cr_assert_eq(list("/a", l), 0);
	cr_assert_str_eq(l, "c,");
	cr_assert_eq(
	    apply1((struct zt_op){.type = ZT_OP_DELETE, .version = -1, .path = "/a/c"}, NULL), 0);
	cr_assert_eq(
	    apply1((struct zt_op){.type = ZT_OP_DELETE, .version = -1, .path = "/a"}, NULL), 0);
	cr_assert_str_eq(events, "D:/a K:/ ");
	s = stat_of("/");
	cr_assert_eq(s.num_children, 0);
	cr_assert_eq(s.cversion, 2);
	cr_assert_eq(s.pzxid, zxid);
	/* a re-created node is a new node */
	cr_assert_eq(create("/a", NULL, 0), 0);
	cr_assert_eq(stat_of("/a").czxid, zxid);
	cr_assert_eq(stat_of("/a").num_children, 0);
	cr_assert_eq(list("/a", l), 0);
	cr_assert_str_eq(l, "");
}

Test(zt, check_op)
{
	cr_assert_eq(create("/a", NULL, 0), 0);
	struct zt_result res;
	cr_assert_eq(apply1((struct zt_op){.type = ZT_OP_CHECK, .version = 0, .path = "/a"}, &res),
		     0);
	cr_assert_eq(res.stat.czxid, 1);
	cr_assert_eq(apply1((struct zt_op){.type = ZT_OP_CHECK, .version = -1, .path = "/a"}, NULL),
		     0);
	cr_assert_eq(apply1((struct zt_op){.type = ZT_OP_CHECK, .version = 1, .path = "/a"}, NULL),
		     ZT_EBADVERSION);
	cr_assert_eq(apply1((struct zt_op){.type = ZT_OP_CHECK, .version = 0, .path = "/b"}, NULL),
		     ZT_ENONODE);
	cr_assert_eq(apply1((struct zt_op){.type = ZT_OP_CHECK, .version = 0, .path = "//"}, NULL),
		     ZT_EBADARGS);
	cr_assert_str_eq(events, "");
	cr_assert_eq(stat_of("/a").version, 0);
}

Test(zt, sequential_names_use_parent_cversion)
{
	cr_assert_eq(create("/q", NULL, ZT_CREATE_DIR), 0);
	struct zt_result res;
	struct zt_op seq = {.type = ZT_OP_CREATE, .flags = ZT_CREATE_SEQUENTIAL, .path = "/q/n-"};
	cr_assert_eq(apply1(seq, &res), 0);
	cr_assert_str_eq(res.path, "/q/n-0000000000");
	cr_assert_str_eq(events, "C:/q/n-0000000000 K:/q ");
	zt_results_free(&res, 1);
	cr_assert_eq(apply1(seq, &res), 0);
	cr_assert_str_eq(res.path, "/q/n-0000000001");
	zt_results_free(&res, 1);
	cr_assert_eq(
	    apply1((struct zt_op){.type = ZT_OP_DELETE, .version = -1, .path = "/q/n-0000000000"},
		   NULL),
	    0);
	cr_assert_eq(apply1(seq, &res), 0);
	cr_assert_str_eq(res.path, "/q/n-0000000003", "a deletion also advanced the counter");
	zt_results_free(&res, 1);
	/* a trailing '/' names the node by its number only */
	seq.path = "/q/";
	cr_assert_eq(apply1(seq, &res), 0);
	cr_assert_str_eq(res.path, "/q/0000000004");
	zt_results_free(&res, 1);
	/* at the root */
	seq.path = "/";
	cr_assert_eq(apply1(seq, &res), 0);
	cr_assert_str_eq(res.path, "/0000000001");
	zt_results_free(&res, 1);
	/* a name that becomes too long with the suffix */
	char longname[ZT_NAME_MAX + 4] = "/";
	memset(longname + 1, 'x', ZT_NAME_MAX - 5);
	seq.path = longname;
	cr_assert_eq(apply1(seq, NULL), ZT_EBADARGS);
	seq.path = "/nope/x";
	cr_assert_eq(apply1(seq, NULL), ZT_ENONODE);
	char l[128];
	cr_assert_eq(list("/q", l), 0);
	cr_assert_str_eq(l, "0000000004,n-0000000001,n-0000000003,");
}

Test(zt, ephemeral_nodes_have_no_children)
{
	struct zt_result res;
	cr_assert_eq(apply1((struct zt_op){.type = ZT_OP_CREATE,
					   .flags = ZT_CREATE_EPHEMERAL,
					   .owner = 0x1234,
					   .path = "/e"},
			    &res),
		     0);
	cr_assert_eq(res.stat.ephemeral_owner, 0x1234);
	zt_results_free(&res, 1);
	cr_assert_eq(stat_of("/e").ephemeral_owner, 0x1234);
	cr_assert_eq(create("/e/child", NULL, 0), ZT_EEPHEMERAL);
	cr_assert_eq(apply1((struct zt_op){.type = ZT_OP_CREATE,
					   .flags = ZT_CREATE_SEQUENTIAL | ZT_CREATE_EPHEMERAL,
					   .owner = 7,
					   .path = "/e/"},
			    NULL),
		     ZT_EEPHEMERAL);
	cr_assert_eq(create("/e/missing/x", NULL, 0), ZT_ENONODE);
	cr_assert_eq(stat_of("/e").num_children, 0);
	/* owner is ignored for persistent nodes */
	cr_assert_eq(apply1((struct zt_op){.type = ZT_OP_CREATE, .owner = 9, .path = "/p"}, NULL),
		     0);
	cr_assert_eq(stat_of("/p").ephemeral_owner, 0);
}

Test(zt, multi_is_all_or_nothing)
{
	cr_assert_eq(create("/a", "x", 0), 0);
	char *before = dump();
	struct zt_op ops[3] = {
	    {.type = ZT_OP_CREATE, .path = "/b"},
	    {.type = ZT_OP_SET, .version = 5, .path = "/a", .data = "y", .len = 1},
	    {.type = ZT_OP_CREATE, .path = "/c"},
	};
	struct zt_result res[3];
	apply_n(ops, 3, res);
	cr_assert_eq(res[0].err, -ECANCELED);
	cr_assert_eq(res[1].err, ZT_EBADVERSION);
	cr_assert_eq(res[2].err, -ECANCELED);
	cr_assert_null(res[0].path);
	cr_assert_str_eq(events, "", "a failed multi reports no change");
	zt_results_free(res, 3);
	char *after = dump();
	cr_assert_str_eq(before, after);
	cr_assert_eq(last_zxid(), zxid);

	/* later ops see earlier ones; all share the zxid */
	struct zt_op ok[4] = {
	    {.type = ZT_OP_CREATE, .flags = ZT_CREATE_DIR, .path = "/d"},
	    {.type = ZT_OP_CREATE, .flags = ZT_CREATE_SEQUENTIAL, .path = "/d/s"},
	    {.type = ZT_OP_CREATE, .flags = ZT_CREATE_SEQUENTIAL, .path = "/d/s"},
	    {.type = ZT_OP_SET, .version = 0, .path = "/a", .data = "z", .len = 1},
	};
	struct zt_result r2[4];
	apply_n(ok, 4, r2);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(r2[i].err, 0);
	cr_assert_str_eq(r2[1].path, "/d/s0000000000");
	cr_assert_str_eq(r2[2].path, "/d/s0000000001");
	cr_assert_eq(r2[3].stat.version, 1);
	cr_assert_str_eq(events, "C:/d K:/ C:/d/s0000000000 K:/d C:/d/s0000000001 K:/d S:/a ");
	zt_results_free(r2, 4);
	struct zt_stat s = stat_of("/d");
	cr_assert_eq(s.czxid, zxid);
	cr_assert_eq(s.pzxid, zxid);
	cr_assert_eq(s.cversion, 2);
	cr_assert_eq(s.num_children, 2);
	cr_assert_eq(stat_of("/d/s0000000001").czxid, zxid);

	/* failure in the first op, and a storage-like failure in the middle of a multi */
	struct zt_op f[2] = {
	    {.type = ZT_OP_DELETE, .version = -1, .path = "/nope"},
	    {.type = ZT_OP_CREATE, .path = "/e"},
	};
	struct zt_result r3[2];
	apply_n(f, 2, r3);
	cr_assert_eq(r3[0].err, ZT_ENONODE);
	cr_assert_eq(r3[1].err, -ECANCELED);
	struct zt_op g[2] = {
	    {.type = ZT_OP_CREATE, .path = "/e"},
	    {.type = ZT_OP_CREATE, .path = "/e"},
	};
	apply_n(g, 2, r3);
	cr_assert_eq(r3[0].err, -ECANCELED);
	cr_assert_eq(r3[1].err, ZT_ENODEEXISTS);
	struct zt_node n;
	cr_assert_eq(getn("/e", &n), ZT_ENONODE);
}

Test(zt, rename_to_missing_target)
{
	cr_assert_eq(create("/a", NULL, ZT_CREATE_DIR), 0);
	cr_assert_eq(create("/b", NULL, ZT_CREATE_DIR), 0);
	cr_assert_eq(create("/a/f", "payload", 0), 0);
	cr_assert_eq(
	    apply1(
		(struct zt_op){
		    .type = ZT_OP_SET, .version = -1, .path = "/a/f", .data = "payload2", .len = 8},
		NULL),
	    0);
	struct zt_result res;
	cr_assert_eq(
	    apply1((struct zt_op){.type = ZT_OP_RENAME, .path = "/a/f", .path2 = "/b/g"}, &res), 0);
	cr_assert_str_eq(events, "C:/b/g K:/b D:/a/f K:/a ");
	struct zt_stat s = stat_of("/b/g");
	cr_assert(stat_eq(&s, &res.stat));
	cr_assert_eq(s.czxid, zxid);
	cr_assert_eq(s.mzxid, zxid);
	cr_assert_eq(s.pzxid, zxid);
	cr_assert_eq(s.ctime, now);
	cr_assert_eq(s.version, 0);
	cr_assert_eq(s.data_length, 8);
	data_is("/b/g", "payload2");
	struct zt_node n;
	cr_assert_eq(getn("/a/f", &n), ZT_ENONODE);
	cr_assert_eq(stat_of("/a").num_children, 0);
	cr_assert_eq(stat_of("/a").cversion, 2);
	cr_assert_eq(stat_of("/a").pzxid, zxid);
	cr_assert_eq(stat_of("/b").num_children, 1);
	cr_assert_eq(stat_of("/b").cversion, 1);
	cr_assert_eq(stat_of("/b").pzxid, zxid);

	/* same directory; the kind moves with the node */
	cr_assert_eq(
	    apply1((struct zt_op){.type = ZT_OP_RENAME, .path = "/a", .path2 = "/c"}, NULL), 0);
	cr_assert_eq(getn("/c", &n), 0);
	cr_assert_eq(n.flags, ZT_NODE_DIR);
	s = stat_of("/");
	cr_assert_eq(s.num_children, 2);
	cr_assert_eq(s.cversion, 4);
	cr_assert_eq(s.pzxid, zxid);
	cr_assert_str_eq(events, "C:/c K:/ D:/a K:/ ");
}

Test(zt, rename_onto_leaf_and_errors)
{
	cr_assert_eq(create("/src", "new", 0), 0);
	cr_assert_eq(create("/dst", "old", 0), 0);
	cr_assert_eq(create("/dir", NULL, ZT_CREATE_DIR), 0);
	cr_assert_eq(create("/dir/x", NULL, 0), 0);
	cr_assert_eq(apply1((struct zt_op){.type = ZT_OP_CREATE,
					   .flags = ZT_CREATE_EPHEMERAL,
					   .owner = 5,
					   .path = "/eph"},
			    NULL),
		     0);
	char *before = dump();
	struct zt_op rn = {.type = ZT_OP_RENAME};
#define RN(a, b) (rn.path = (a), rn.path2 = (b), apply1(rn, NULL))
	cr_assert_eq(RN("/dir", "/new"), ZT_EXDEV);
	cr_assert_eq(RN("/src", "/dir"), ZT_EISDIR);
	cr_assert_eq(RN("/nope", "/new"), ZT_ENONODE);
	cr_assert_eq(RN("/src", "/nope/new"), ZT_ENONODE);
	cr_assert_eq(RN("/src", "/src/inside"), ZT_EBADARGS);
	cr_assert_eq(RN("/", "/new"), ZT_EBADARGS);
	cr_assert_eq(RN("/src", "/"), ZT_EBADARGS);
	cr_assert_eq(RN("/src", "/zookeeper"), ZT_EBADARGS);
	cr_assert_eq(RN("/src", "bad"), ZT_EBADARGS);
	cr_assert_eq(RN("/src", "/eph/x"), ZT_EEPHEMERAL);
	cr_assert_eq(RN("/src", "/src"), 0);
	rn.path2 = NULL;
	cr_assert_eq(apply1(rn, NULL), ZT_EBADARGS);
	cr_assert_str_eq(events, "");
	char *after = dump();
	cr_assert_str_eq(before, after);
	free(before);
	free(after);

	int64_t dst_ctime = stat_of("/dst").ctime;
	struct zt_result res;
	cr_assert_eq(RN("/src", "/dst"), 0);
	cr_assert_str_eq(events, "S:/dst D:/src K:/ ");
	(void)res;
	struct zt_stat s = stat_of("/dst");
	cr_assert_eq(s.czxid, 2, "the target keeps its czxid");
	cr_assert_eq(s.ctime, dst_ctime);
	cr_assert_eq(s.mzxid, zxid);
	cr_assert_eq(s.mtime, now);
	cr_assert_eq(s.version, 1);
	data_is("/dst", "new");
	struct zt_node n;
	cr_assert_eq(getn("/src", &n), ZT_ENONODE);
	s = stat_of("/");
	cr_assert_eq(s.num_children, 3);
	cr_assert_eq(s.pzxid, zxid);
	/* an ephemeral node keeps its owner when moved */
	cr_assert_eq(RN("/eph", "/dir/eph"), 0);
	cr_assert_eq(stat_of("/dir/eph").ephemeral_owner, 5);
#undef RN
}

Test(zt, rename_in_multi_rolls_back)
{
	cr_assert_eq(create("/a", "1", 0), 0);
	char *before = dump();
	struct zt_op ops[2] = {
	    {.type = ZT_OP_RENAME, .path = "/a", .path2 = "/b"},
	    {.type = ZT_OP_CHECK, .version = 0, .path = "/a"},
	};
	struct zt_result res[2];
	apply_n(ops, 2, res);
	cr_assert_eq(res[0].err, -ECANCELED);
	cr_assert_eq(res[1].err, ZT_ENONODE);
	char *after = dump();
	cr_assert_str_eq(before, after);
	free(before);
	free(after);
}

Test(zt, path_validation_table)
{
	static const struct {
		const char *path;
		int ok;
	} cases[] = {
	    {"/", 1},
	    {"/a", 1},
	    {"/a/b/c", 1},
	    {"/a b", 1},
	    {"/.a", 1},
	    {"/..a", 1},
	    {"/a.", 1},
	    {"/zookeeper", 1}, /* valid as a path: only creating it is refused */
	    {"/caf\xc3\xa9", 1},
	    {"/\xe2\x82\xac", 1},     /* U+20AC */
	    {"/\xf0\x9f\x98\x80", 1}, /* U+1F600 */
	    {"", 0},
	    {"a", 0},
	    {"a/b", 0},
	    {"//", 0},
	    {"/a/", 0},
	    {"/a//b", 0},
	    {"/.", 0},
	    {"/..", 0},
	    {"/a/./b", 0},
	    {"/a/../b", 0},
	    {"/a\x01", 0},
	    {"/a\x1f", 0},
	    {"/a\x7f", 0},
	    {"/a\tb", 0},
	    {"/a\nb", 0},
	    {"/\xc2\x80", 0},	  /* U+0080, a C1 control */
	    {"/\xc2\x9f", 0},	  /* U+009F */
	    {"/\xee\x80\x80", 0}, /* U+E000, private use */
	    {"/\xef\xbf\xbf", 0}, /* U+FFFF */
	    {"/\xed\xa0\x80", 0}, /* a surrogate */
	    {"/\xc0\xaf", 0},	  /* overlong '/' */
	    {"/\xe0\x80\xaf", 0}, /* overlong */
	    {"/\xff", 0},
	    {"/\xc3", 0},	      /* truncated */
	    {"/\xf4\x90\x80\x80", 0}, /* above U+10FFFF */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		cr_expect_eq(zt_path_validate(cases[i].path), cases[i].ok ? 0 : ZT_EBADARGS,
			     "case %zu", i);
	cr_assert_eq(zt_path_validate(NULL), ZT_EBADARGS);

	char name[ZT_NAME_MAX + 3];
	name[0] = '/';
	memset(name + 1, 'n', ZT_NAME_MAX);
	name[ZT_NAME_MAX + 1] = '\0';
	cr_assert_eq(zt_path_validate(name), 0);
	name[ZT_NAME_MAX + 1] = 'n';
	name[ZT_NAME_MAX + 2] = '\0';
	cr_assert_eq(zt_path_validate(name), ZT_EBADARGS);

	/* whole-path length: ZT_PATH_MAX - 1 bytes is the longest */
	char *p = malloc(ZT_PATH_MAX + 1);
	for (int i = 0; i < ZT_PATH_MAX; i += 2) {
		p[i] = '/';
		p[i + 1] = 'x';
	}
	p[ZT_PATH_MAX - 2] = 'y';
	p[ZT_PATH_MAX - 1] = '\0';
	cr_assert_eq(zt_path_validate(p), 0);
	p[ZT_PATH_MAX - 1] = 'z';
	p[ZT_PATH_MAX] = '\0';
	cr_assert_eq(zt_path_validate(p), ZT_EBADARGS);
	free(p);

	/* the same rules in every op */
	cr_assert_eq(create("/a\x01", NULL, 0), ZT_EBADARGS);
	struct zt_node n;
	cr_assert_eq(getn("/a/", &n), -EINVAL);
	char l[8];
	cr_assert_eq(list("x", l), -EINVAL);
}

Test(zt, deep_paths_beyond_lmdb_key_size)
{
	/* 40 levels of 100-byte names: a 4 KB path, far beyond LMDB's 511-byte keys */
	char path[ZT_PATH_MAX] = "";
	size_t len = 0;
	for (int d = 0; d < 40; d++) {
		path[len++] = '/';
		memset(path + len, 'a' + d % 26, 100);
		len += 100;
		path[len] = '\0';
		cr_assert_eq(create(path, NULL, ZT_CREATE_DIR), 0, "depth %d", d);
	}
	cr_assert_eq(stat_of(path).czxid, 40);
	cr_assert_eq(
	    apply1(
		(struct zt_op){
		    .type = ZT_OP_SET, .version = 0, .path = path, .data = "deep", .len = 4},
		NULL),
	    0);
	data_is(path, "deep");
}

static int stop_after_two(void *arg, const char *name, const struct zt_node *c)
{
	int *n = arg;
	return ++*n == 2;
}

Test(zt, list_in_name_order_and_stop)
{
	const char *names[] = {"b", "a", "c", "aa", "B", "a0", "\xc3\xa9"};
	cr_assert_eq(create("/d", NULL, ZT_CREATE_DIR), 0);
	cr_assert_eq(create("/d0", NULL, 0), 0); /* a sibling with a prefix name must not leak in */
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char p[32];
		snprintf(p, sizeof p, "/d/%s", names[i]);
		cr_assert_eq(create(p, NULL, 0), 0);
	}
	cr_assert_eq(create("/d/a/deeper", NULL, 0), 0);
	char l[128];
	cr_assert_eq(list("/d", l), 0);
	cr_assert_str_eq(l, "B,a,a0,aa,b,c,\xc3\xa9,");
	cr_assert_eq(list("/", l), 0);
	cr_assert_str_eq(l, "d,d0,");
	cr_assert_eq(list("/d/nope", l), -ENOENT);
	cr_assert_eq(list("/d0", l), 0);
	cr_assert_str_eq(l, "");

	struct st_rtxn *r;
	int count = 0;
	cr_assert_eq(st_rbegin(env, &r), 0);
	cr_assert_eq(zt_list(r, "/d", stop_after_two, &count), 0);
	st_rend(r);
	cr_assert_eq(count, 2);
}

Test(zt, zxids_must_increase)
{
	struct st_wtxn *w;
	struct zt_op op = {.type = ZT_OP_CREATE, .path = "/a"};
	struct zt_result res;
	struct zt_txn t = {.zxid = 10, .time_ms = 1, .nops = 1, .ops = &op};
	cr_assert_eq(st_wbegin(env, &w), 0);
	cr_assert_eq(zt_apply(w, &t, &res, NULL, NULL), 0);
	zt_results_free(&res, 1);
	t.zxid = 10;
	op.path = "/b";
	cr_assert_eq(zt_apply(w, &t, &res, NULL, NULL), -EINVAL);
	t.zxid = 9;
	cr_assert_eq(zt_apply(w, &t, &res, NULL, NULL), -EINVAL);
	t.nops = 0;
	t.zxid = 11;
	cr_assert_eq(zt_apply(w, &t, &res, NULL, NULL), -EINVAL);
	t.nops = 1;
	cr_assert_eq(zt_apply(w, &t, &res, NULL, NULL), 0);
	zt_results_free(&res, 1);
	cr_assert_eq(st_wcommit(w), 0);
	cr_assert_eq(last_zxid(), 11);
	cr_assert_eq(stat_of("/a").czxid, 10);
	cr_assert_eq(stat_of("/b").czxid, 11);
	cr_assert_eq(stat_of("/").pzxid, 11);
}

#ifdef QFS_TEST_HOOKS
Test(zt, storage_failure_during_apply)
{
	cr_assert_eq(create("/a", "x", 0), 0);
	char *before = dump();
	for (int k = 1; k <= 4; k++) {
		struct st_wtxn *w;
		struct zt_op ops[2] = {
		    {.type = ZT_OP_CREATE, .path = "/b", .data = "y", .len = 1},
		    {.type = ZT_OP_SET, .version = -1, .path = "/a", .data = "z", .len = 1},
		};
		struct zt_result res[2];
		struct zt_txn t = {.zxid = zxid + 1, .time_ms = 1, .nops = 2, .ops = ops};
		cr_assert_eq(st_fault_set(env, ST_FAULT_PUT, k, -ENOSPC), 0);
		cr_assert_eq(st_wbegin(env, &w), 0);
		cr_assert_eq(zt_apply(w, &t, res, on_change, &zxid), -ENOSPC, "countdown %d", k);
		st_wabort(w);
	}
	cr_assert_eq(st_fault_set(env, ST_FAULT_NONE, 0, 0), 0);
	char *after = dump();
	cr_assert_str_eq(before, after);
	cr_assert_eq(last_zxid(), zxid);
	free(before);
	free(after);
	cr_assert_eq(create("/b", NULL, 0), 0);
}
#endif

/* ---- sessions: ZT_DELETE_SESSION and zt_sessions ---- */

static int eph(const char *path, int64_t owner, uint32_t flags, struct zt_result *res)
{
	return apply1((struct zt_op){.type = ZT_OP_CREATE,
				     .flags = ZT_CREATE_EPHEMERAL | flags,
				     .owner = owner,
				     .path = path},
		      res);
}

static int close_session(int64_t owner)
{
	return apply1((struct zt_op){.type = ZT_OP_DELETE,
				     .flags = ZT_DELETE_SESSION,
				     .version = -1,
				     .owner = owner,
				     .path = "/"},
		      NULL);
}

static char sessions_out[1024];

static int sessions_cb(void *arg, int64_t owner, uint32_t n)
{
	char one[64];
	snprintf(one, sizeof one, "%llx:%u ", (unsigned long long)owner, n);
	strcat(sessions_out, one);
	return arg != NULL; /* stop after the first when ARG is set */
}

static const char *sessions(uint64_t lo, uint64_t hi, void *stop)
{
	struct st_rtxn *r;
	sessions_out[0] = '\0';
	cr_assert_eq(st_rbegin(env, &r), 0);
	cr_assert_eq(zt_sessions(r, lo, hi, sessions_cb, stop), 0);
	st_rend(r);
	return sessions_out;
}

static int session_op(uint32_t flags, int64_t owner, int32_t timeout, struct zt_result *res)
{
	return apply1((struct zt_op){.type = ZT_OP_SESSION,
				     .flags = flags,
				     .version = timeout,
				     .owner = owner,
				     .path = "/"},
		      res);
}

/* Open the next epoch of NODE; returns its session id base. */
static int64_t open_node(uint32_t node, int32_t timeout)
{
	struct zt_result res;
	cr_assert_eq(session_op(ZT_SESSION_F_OPEN, (int64_t)((uint64_t)node << 56), timeout, &res),
		     0);
	cr_assert_eq(res.stat.version, timeout);
	return res.stat.ephemeral_owner;
}

static struct zt_session session_of(uint32_t node)
{
	struct st_rtxn *r;
	struct zt_session s;
	cr_assert_eq(st_rbegin(env, &r), 0);
	cr_assert_eq(zt_session_get(r, node, &s), 0);
	st_rend(r);
	return s;
}

Test(zt, close_session_deletes_all_its_nodes_in_one_txn)
{
	cr_assert_eq(open_node(1, 1000), (int64_t)ZT_SESSION_ID(1, 1, 0));
	cr_assert_eq(open_node(2, 1000), (int64_t)ZT_SESSION_ID(2, 1, 0));
	const int64_t a = (int64_t)0x0100000100000005LL, b = (int64_t)0x0200000100000001LL;
	cr_assert_eq(create("/svc", NULL, ZT_CREATE_DIR), 0);
	cr_assert_eq(create("/other", NULL, ZT_CREATE_DIR), 0);
	cr_assert_eq(eph("/svc/a1", a, 0, NULL), 0);
	cr_assert_eq(eph("/other/a2", a, 0, NULL), 0);
	cr_assert_eq(eph("/svc/b1", b, 0, NULL), 0);
	struct zt_result res;
	cr_assert_eq(eph("/svc/s-", a, ZT_CREATE_SEQUENTIAL, &res), 0);
	cr_assert_str_eq(res.path, "/svc/s-0000000002");
	zt_results_free(&res, 1);
	cr_assert_str_eq(sessions(0, UINT64_MAX, NULL), "100000100000005:3 200000100000001:1 ");
	cr_assert_str_eq(sessions(0x0200000000000000ULL, 0x02ffffffffffffffULL, NULL),
			 "200000100000001:1 ");
	cr_assert_str_eq(sessions(0, UINT64_MAX, (void *)1), "100000100000005:3 ");
	/* the index does not show up as children of anything */
	char out[256];
	cr_assert_eq(list("/", out), 0);
	cr_assert_str_eq(out, "other,svc,");

	struct zt_stat before = stat_of("/svc");
	uint64_t z = zxid + 1;
	cr_assert_eq(close_session(a), 0);
	cr_assert_eq(last_zxid(), z);
	/* every deletion in one transaction (one zxid), with its events, in creation order */
	cr_assert_str_eq(events,
			 "D:/svc/a1 K:/svc D:/other/a2 K:/other D:/svc/s-0000000002 K:/svc ");
	struct zt_node n;
	cr_assert_eq(getn("/svc/a1", &n), -ENOENT);
	cr_assert_eq(getn("/other/a2", &n), -ENOENT);
	cr_assert_eq(getn("/svc/s-0000000002", &n), -ENOENT);
	cr_assert_eq(getn("/svc/b1", &n), 0);
	cr_assert_eq(stat_of("/svc").num_children, 1);
	cr_assert_eq(stat_of("/svc").cversion, before.cversion + 2);
	cr_assert_eq(stat_of("/svc").pzxid, (int64_t)z);
	cr_assert_str_eq(sessions(0, UINT64_MAX, NULL), "200000100000001:1 ");
	/* closing it again, or a session without nodes: success, nothing changes */
	char *d0 = dump();
	cr_assert_eq(close_session(a), 0);
	cr_assert_eq(close_session(12345), 0);
	char *d1 = dump();
	cr_assert_str_eq(d0, d1);
	free(d0);
	free(d1);
	/* bad arguments */
	cr_assert_eq(close_session(0), ZT_EBADARGS);
	cr_assert_eq(apply1((struct zt_op){.type = ZT_OP_DELETE,
					   .flags = ZT_DELETE_SESSION,
					   .owner = b,
					   .path = "/svc/b1"},
			    NULL),
		     ZT_EBADARGS);
	cr_assert_eq(getn("/svc/b1", &n), 0);
}

Test(zt, owner_index_follows_deletes_and_renames)
{
	const int64_t a = 77;
	cr_assert_eq(create("/d", NULL, ZT_CREATE_DIR), 0);
	cr_assert_eq(eph("/d/x", a, 0, NULL), 0);
	cr_assert_eq(eph("/d/y", a, 0, NULL), 0);
	/* an ordinary delete drops its index entry */
	cr_assert_eq(
	    apply1((struct zt_op){.type = ZT_OP_DELETE, .version = -1, .path = "/d/y"}, NULL), 0);
	cr_assert_str_eq(sessions(0, UINT64_MAX, NULL), "4d:1 ");
	/* a rename keeps the owner: the index follows the new path */
	cr_assert_eq(
	    apply1((struct zt_op){.type = ZT_OP_RENAME, .path = "/d/x", .path2 = "/d/z"}, NULL), 0);
	cr_assert_eq(stat_of("/d/z").ephemeral_owner, a);
	cr_assert_str_eq(sessions(0, UINT64_MAX, NULL), "4d:1 ");
	cr_assert_eq(close_session(a), 0);
	cr_assert_str_eq(events, "D:/d/z K:/d ");
	cr_assert_str_eq(sessions(0, UINT64_MAX, NULL), "");
	cr_assert_eq(stat_of("/d").num_children, 0);
}

Test(zt, close_session_in_a_failed_multi_changes_nothing)
{
	cr_assert_eq(eph("/e", 5, 0, NULL), 0);
	char *d0 = dump();
	struct zt_op ops[2] = {
	    {.type = ZT_OP_DELETE,
	     .flags = ZT_DELETE_SESSION,
	     .version = -1,
	     .owner = 5,
	     .path = "/"},
	    {.type = ZT_OP_CHECK, .version = 3, .path = "/"},
	};
	struct zt_result res[2];
	apply_n(ops, 2, res);
	cr_assert_eq(res[0].err, -ECANCELED);
	cr_assert_eq(res[1].err, ZT_EBADVERSION);
	zt_results_free(res, 2);
	char *d1 = dump();
	cr_assert_str_eq(d0, d1);
	free(d0);
	free(d1);
	cr_assert_str_eq(sessions(0, UINT64_MAX, NULL), "5:1 ");
}

Test(zt, close_session_encodes)
{
	struct zt_op op = {.type = ZT_OP_DELETE,
			   .flags = ZT_DELETE_SESSION,
			   .version = -1,
			   .owner = -2,
			   .path = "/"};
	void *buf;
	size_t len;
	struct zt_op *out;
	uint32_t n;
	cr_assert_eq(zt_ops_encode(&op, 1, &buf, &len), 0);
	cr_assert_eq(zt_ops_decode(buf, len, &out, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(out[0].flags, ZT_DELETE_SESSION);
	cr_assert_eq(out[0].owner, -2);
	free(out);
	free(buf);
}

/* ---- node sessions: ZT_OP_SESSION ---- */

Test(zt, session_open_starts_epochs_and_gates_ephemeral_creates)
{
	struct st_rtxn *r;
	struct zt_session st;
	cr_assert_eq(st_rbegin(env, &r), 0);
	cr_assert_eq(zt_session_get(r, 3, &st), -ENOENT);
	cr_assert_eq(zt_session_get(r, 0, &st), -EINVAL);
	st_rend(r);
	cr_assert_eq(create("/s", NULL, ZT_CREATE_DIR), 0);
	/* no session yet for node 3: an owner of node 3 is refused, nothing is created */
	cr_assert_eq(eph("/s/x", (int64_t)ZT_SESSION_ID(3, 1, 1), 0, NULL), ZT_ESESSIONEXPIRED);
	struct zt_node n;
	cr_assert_eq(getn("/s/x", &n), -ENOENT);
	/* owners with top byte 0 are not tied to a node session */
	cr_assert_eq(eph("/s/free", 42, 0, NULL), 0);

	int64_t b1 = open_node(3, 500);
	cr_assert_eq(b1, (int64_t)ZT_SESSION_ID(3, 1, 0));
	st = session_of(3);
	cr_assert_eq(st.epoch, 1);
	cr_assert_eq(st.timeout_ms, 500);
	cr_assert_eq(st.state, ZT_SESSION_OPEN);
	cr_assert_eq(eph("/s/a", b1 | 1, 0, NULL), 0);
	cr_assert_eq(eph("/s/b", b1 | 2, 0, NULL), 0);
	/* another epoch's owner is refused */
	cr_assert_eq(eph("/s/c", (int64_t)ZT_SESSION_ID(3, 2, 1), 0, NULL), ZT_ESESSIONEXPIRED);

	/* a new epoch (a restarted node) deletes every ephemeral of the earlier ones, at once */
	int64_t b2 = open_node(3, 700);
	cr_assert_eq(b2, (int64_t)ZT_SESSION_ID(3, 2, 0));
	cr_assert_str_eq(events, "D:/s/a K:/s D:/s/b K:/s ");
	cr_assert_eq(getn("/s/a", &n), -ENOENT);
	cr_assert_eq(getn("/s/free", &n), 0);
	cr_assert_eq(session_of(3).timeout_ms, 700);
	cr_assert_eq(eph("/s/a", b1 | 3, 0, NULL), ZT_ESESSIONEXPIRED);
	cr_assert_eq(eph("/s/a", b2 | 3, 0, NULL), 0);
}

Test(zt, session_expire_deletes_its_epoch_once)
{
	cr_assert_eq(create("/s", NULL, ZT_CREATE_DIR), 0);
	int64_t n1 = open_node(1, 1000), n2 = open_node(2, 1000);
	cr_assert_eq(eph("/s/a1", n1 | 1, 0, NULL), 0);
	cr_assert_eq(eph("/s/a2", n1 | 7, ZT_CREATE_SEQUENTIAL, NULL), 0);
	cr_assert_eq(eph("/s/b1", n2 | 1, 0, NULL), 0);
	uint64_t z = zxid + 1;
	struct zt_result res;
	cr_assert_eq(session_op(ZT_SESSION_F_EXPIRE, n1, 0, &res), 0);
	cr_assert_eq(res.stat.ephemeral_owner, n1);
	cr_assert_eq(last_zxid(), z);
	cr_assert_str_eq(events, "D:/s/a1 K:/s D:/s/a20000000001 K:/s ");
	cr_assert_eq(session_of(1).state, ZT_SESSION_EXPIRED);
	cr_assert_eq(session_of(2).state, ZT_SESSION_OPEN);
	struct zt_node n;
	cr_assert_eq(getn("/s/b1", &n), 0);
	/* the expired epoch creates nothing more; expiring it again changes nothing */
	cr_assert_eq(eph("/s/a3", n1 | 2, 0, NULL), ZT_ESESSIONEXPIRED);
	char *d0 = dump();
	cr_assert_eq(session_op(ZT_SESSION_F_EXPIRE, n1, 0, NULL), ZT_ESESSIONEXPIRED);
	/* an older epoch of a reopened node is not the open one either */
	cr_assert_eq(session_op(ZT_SESSION_F_EXPIRE, (int64_t)ZT_SESSION_ID(2, 5, 0), 0, NULL),
		     ZT_ESESSIONEXPIRED);
	char *d1 = dump();
	cr_assert_str_eq(d0, d1);
	free(d0);
	free(d1);
	/* the node reopens: a new epoch, open again */
	int64_t n1b = open_node(1, 1000);
	cr_assert_eq(ZT_SESSION_EPOCH(n1b), 2);
	cr_assert_eq(eph("/s/a3", n1b | 1, 0, NULL), 0);
	/* an EXPIRE inside a failed multi changes nothing */
	struct zt_op ops[2] = {
	    {.type = ZT_OP_SESSION, .flags = ZT_SESSION_F_EXPIRE, .owner = n1b, .path = "/"},
	    {.type = ZT_OP_CHECK, .version = 99, .path = "/"},
	};
	struct zt_result r2[2];
	apply_n(ops, 2, r2);
	cr_assert_eq(r2[0].err, -ECANCELED);
	zt_results_free(r2, 2);
	cr_assert_eq(session_of(1).state, ZT_SESSION_OPEN);
	cr_assert_eq(getn("/s/a3", &n), 0);
}

Test(zt, session_op_bad_arguments)
{
	const int64_t node1 = (int64_t)((uint64_t)1 << 56);
	cr_assert_eq(session_op(ZT_SESSION_F_OPEN, 0, 1000, NULL), ZT_EBADARGS);
	cr_assert_eq(session_op(ZT_SESSION_F_OPEN, node1 | 5, 1000, NULL), ZT_EBADARGS);
	cr_assert_eq(session_op(ZT_SESSION_F_OPEN, node1, 0, NULL), ZT_EBADARGS);
	cr_assert_eq(session_op(ZT_SESSION_F_OPEN, node1, -3, NULL), ZT_EBADARGS);
	cr_assert_eq(session_op(ZT_SESSION_F_OPEN | ZT_SESSION_F_EXPIRE, node1, 10, NULL),
		     ZT_EBADARGS);
	cr_assert_eq(session_op(0, node1, 10, NULL), ZT_EBADARGS);
	cr_assert_eq(apply1((struct zt_op){.type = ZT_OP_SESSION,
					   .flags = ZT_SESSION_F_OPEN,
					   .version = 10,
					   .owner = node1,
					   .path = "/x"},
			    NULL),
		     ZT_EBADARGS);
	int64_t b = open_node(1, 10);
	cr_assert_eq(session_op(ZT_SESSION_F_EXPIRE, b | 1, 0, NULL), ZT_EBADARGS);
	cr_assert_eq(session_of(1).state, ZT_SESSION_OPEN);
	/* the op round-trips through the codec */
	struct zt_op op = {
	    .type = ZT_OP_SESSION, .flags = ZT_SESSION_F_EXPIRE, .owner = b, .path = "/"};
	void *buf;
	size_t len;
	struct zt_op *out;
	uint32_t nops;
	cr_assert_eq(zt_ops_encode(&op, 1, &buf, &len), 0);
	cr_assert_eq(zt_ops_decode(buf, len, &out, &nops), 0);
	cr_assert_eq(out[0].type, ZT_OP_SESSION);
	cr_assert_eq(out[0].flags, ZT_SESSION_F_EXPIRE);
	cr_assert_eq(out[0].owner, b);
	free(out);
	free(buf);
}
