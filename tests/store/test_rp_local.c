/* The single-node replica: ordering, zxids, group commit, failed commits, notifications, close. */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "consensus/rp.h"
#include "store/st_test.h"
#include "helpers.h"

static char dir[256];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static char log_[16384]; /* notifications in order, protected by mu */

static void setup(void)
{
	h_mkdir(dir);
	log_[0] = '\0';
}

static void teardown(void)
{
	h_rmdir(dir);
}

TestSuite(rp, .init = setup, .fini = teardown, .timeout = 120);

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t l = strlen(log_);
	vsnprintf(log_ + l, sizeof log_ - l, fmt, ap);
	va_end(ap);
}

/* Wait (with a deadline) until *FLAG >= WANT; FLAG protected by mu. */
static void wait_until(const int *flag, int want)
{
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 30;
	pthread_mutex_lock(&mu);
	while (*flag < want) {
		int rc = pthread_cond_timedwait(&cv, &mu, &dl);
		cr_assert_neq(rc, ETIMEDOUT, "timed out waiting (%d of %d)", *flag, want);
	}
	pthread_mutex_unlock(&mu);
}

struct outcome {
	int done;
	int status;
	uint64_t zxid;
	int err[4];
	struct zt_stat stat;
	char path[64];
};

static void done_cb(void *arg, int status, uint64_t zxid, const struct zt_result *res,
		    uint32_t nres)
{
	struct outcome *o = arg;
	pthread_mutex_lock(&mu);
	o->status = status;
	o->zxid = zxid;
	if (status == 0) {
		cr_assert_gt(nres, 0);
		for (uint32_t i = 0; i < nres && i < 4; i++)
			o->err[i] = res[i].err;
		o->stat = res[0].stat;
		if (res[0].path)
			snprintf(o->path, sizeof o->path, "%s", res[0].path);
	} else {
		cr_assert_null(res);
		cr_assert_eq(nres, 0);
	}
	logf_("done%" PRIu64 "/%d ", zxid, status);
	o->done++;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static struct outcome run(struct rp *rp, struct zt_op op)
{
	struct outcome o = {0};
	cr_assert_eq(rp_submit(rp, &op, 1, done_cb, &o), 0);
	wait_until(&o.done, 1);
	cr_assert_eq(o.done, 1);
	return o;
}

static struct rp *open_rp(unsigned st_flags, rp_change_cb on_change, uint32_t max_batch)
{
	struct rp *rp;
	struct rp_config cfg = {.data_dir = dir,
				.st_flags = st_flags,
				.on_change = on_change,
				.change_arg = NULL,
				.max_batch = max_batch};
	cr_assert_eq(rp_open_local(&cfg, &rp), 0);
	return rp;
}

static uint64_t status_field(struct rp *rp, const char *key)
{
	char buf[512], pat[32];
	cr_assert_lt(rp_status(rp, buf, sizeof buf), (int)sizeof buf);
	snprintf(pat, sizeof pat, "\n%s=", key);
	const char *p = strstr(buf, pat);
	cr_assert_not_null(p, "no %s in status", key);
	return strtoull(p + strlen(pat), NULL, 0);
}

static int node_exists(struct rp *rp, const char *path, struct zt_node *out)
{
	struct st_rtxn *r;
	struct zt_node n;
	cr_assert_eq(st_rbegin(rp_env(rp), &r), 0);
	int rc = zt_get(r, path, &n);
	st_rend(r);
	if (out) {
		*out = n;
		out->data = NULL;
	}
	return rc == 0;
}

/* A gate: the first transaction's done callback holds the storage thread until the gate opens, so
 * that the test can queue a known set of transactions behind it. */
static int gate_entered, gate_open;
static void gate_cb(void *arg, int status, uint64_t zxid, const struct zt_result *res,
		    uint32_t nres)
{
	pthread_mutex_lock(&mu);
	gate_entered = 1;
	pthread_cond_broadcast(&cv);
	while (!gate_open)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}
static void gate_close_and_enter(struct rp *rp)
{
	static struct zt_op op = {.type = ZT_OP_CHECK, .version = -1, .path = "/"};
	gate_entered = gate_open = 0;
	cr_assert_eq(rp_submit(rp, &op, 1, gate_cb, NULL), 0);
	wait_until(&gate_entered, 1);
}
static void gate_release(void)
{
	pthread_mutex_lock(&mu);
	gate_open = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

Test(rp, submit_apply_and_status)
{
	struct rp *rp = open_rp(ST_F_NOSYNC, NULL, 0);
	char buf[256];
	int need = rp_status(rp, buf, sizeof buf);
	cr_assert_gt(need, 0);
	cr_assert(
	    strncmp(buf, "id=1\nrole=standalone\nleader=1\napplied=0x0000000000000000\n", 55) == 0,
	    "%s", buf);
	struct outcome o =
	    run(rp, (struct zt_op){.type = ZT_OP_CREATE, .path = "/a", .data = "x", .len = 1});
	cr_assert_eq(o.status, 0);
	cr_assert_eq(o.zxid, 1);
	cr_assert_eq(o.err[0], 0);
	cr_assert_str_eq(o.path, "/a");
	cr_assert_eq(o.stat.czxid, 1);
	cr_assert(node_exists(rp, "/a", NULL));
	cr_assert_eq(status_field(rp, "applied"), 1);
	rp_status(rp, buf, sizeof buf);
	cr_assert(strstr(buf, "applied=0x0000000000000001\n"), "%s", buf);
	/* truncation reports the length needed, like snprintf */
	char tiny[4];
	cr_assert_eq(rp_status(rp, tiny, sizeof tiny), need);
	cr_assert_str_eq(tiny, "id=");

	/* a deterministic rejection is a committed transaction with an error result */
	o = run(rp, (struct zt_op){.type = ZT_OP_CREATE, .path = "/a"});
	cr_assert_eq(o.status, 0);
	cr_assert_eq(o.zxid, 2);
	cr_assert_eq(o.err[0], ZT_ENODEEXISTS);
	o = run(rp, (struct zt_op){.type = ZT_OP_CREATE, .path = "no-slash"});
	cr_assert_eq(o.err[0], ZT_EBADARGS);
	cr_assert_eq(o.zxid, 3);
	/* time comes from the replica's clock */
	int64_t before = (int64_t)time(NULL) * 1000;
	o = run(rp, (struct zt_op){.type = ZT_OP_SET, .version = 0, .path = "/a"});
	cr_assert_geq(o.stat.mtime, before - 1000);
	cr_assert_leq(o.stat.mtime, before + 2000);
	rp_close(rp);
}

Test(rp, submit_refuses_impossible_ops)
{
	struct rp *rp = open_rp(ST_F_NOSYNC, NULL, 0);
	struct outcome o = {0};
	struct zt_op op = {.type = ZT_OP_CREATE, .path = "/a"};
	cr_assert_eq(rp_submit(rp, &op, 0, done_cb, &o), -EINVAL);
	cr_assert_eq(rp_submit(rp, NULL, 1, done_cb, &o), -EINVAL);
	op.path = NULL;
	cr_assert_eq(rp_submit(rp, &op, 1, done_cb, &o), -EINVAL);
	op.path = "/a";
	op.type = 42;
	cr_assert_eq(rp_submit(rp, &op, 1, done_cb, &o), -EINVAL);
	op.type = ZT_OP_RENAME;
	cr_assert_eq(rp_submit(rp, &op, 1, done_cb, &o), -EINVAL);
	op.type = ZT_OP_SET;
	op.len = 1;
	cr_assert_eq(rp_submit(rp, &op, 1, done_cb, &o), -EINVAL);
	char *big = calloc(1, ZT_MAX_DATA + 1);
	op.data = big;
	op.len = ZT_MAX_DATA + 1;
	cr_assert_eq(rp_submit(rp, &op, 1, done_cb, &o), -EFBIG);
	/* 17 ops of 1 MiB each: each is fine, the transaction is too big */
	struct zt_op many[17];
	op.len = ZT_MAX_DATA;
	for (int i = 0; i < 17; i++)
		many[i] = op;
	cr_assert_eq(rp_submit(rp, many, 17, done_cb, &o), -EFBIG);
	free(big);
	cr_assert_eq(o.done, 0, "a refused submission never calls back");
	cr_assert_eq(status_field(rp, "applied"), 0);
	rp_close(rp);
}

Test(rp, ops_are_copied_before_submit_returns)
{
	struct rp *rp = open_rp(ST_F_NOSYNC, NULL, 0);
	struct outcome o[2] = {0};
	char path[16] = "/copied", data[8] = "payload", path2[16] = "/moved";
	struct zt_op ops[2] = {
	    {.type = ZT_OP_CREATE, .path = path, .data = data, .len = 7},
	    {.type = ZT_OP_RENAME, .path = path, .path2 = path2},
	};
	gate_close_and_enter(rp);
	cr_assert_eq(rp_submit(rp, ops, 1, done_cb, &o[0]), 0);
	cr_assert_eq(rp_submit(rp, ops + 1, 1, done_cb, &o[1]), 0);
	memset(path, 'X', sizeof path - 1);
	memset(data, 'Y', sizeof data);
	memset(path2, 'Z', sizeof path2 - 1);
	memset(ops, 0, sizeof ops);
	gate_release();
	wait_until(&o[1].done, 1);
	cr_assert_eq(o[0].err[0], 0);
	cr_assert_eq(o[1].err[0], 0);
	struct st_rtxn *r;
	struct zt_node n;
	cr_assert_eq(st_rbegin(rp_env(rp), &r), 0);
	cr_assert_eq(zt_get(r, "/moved", &n), 0);
	cr_assert(memcmp(n.data, "payload", 7) == 0);
	st_rend(r);
	rp_close(rp);
}

struct worker {
	struct rp *rp;
	int id, n;
	int done;
	uint64_t *zxids; /* by submission order */
	int32_t *versions;
	int errors;
};

static void worker_cb(void *arg, int status, uint64_t zxid, const struct zt_result *res,
		      uint32_t nres)
{
	struct worker *w = arg;
	pthread_mutex_lock(&mu);
	if (status != 0 || res[0].err != 0)
		w->errors++;
	else {
		w->zxids[w->done] = zxid;
		w->versions[w->done] = res[0].stat.version;
	}
	w->done++;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static void *worker_main(void *p)
{
	struct worker *w = p;
	char data[32];
	for (int i = 0; i < w->n; i++) {
		int len = snprintf(data, sizeof data, "w%d-%d", w->id, i);
		struct zt_op op = {.type = ZT_OP_SET,
				   .version = -1,
				   .path = "/counter",
				   .data = data,
				   .len = (uint32_t)len};
		cr_assert_eq(rp_submit(w->rp, &op, 1, worker_cb, w), 0);
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void concurrent_run(unsigned st_flags, int nthreads, int per)
{
	struct rp *rp = open_rp(st_flags, NULL, 0);
	struct outcome o = run(rp, (struct zt_op){.type = ZT_OP_CREATE, .path = "/counter"});
	cr_assert_eq(o.err[0], 0);
	struct worker *w = calloc((size_t)nthreads, sizeof *w);
	pthread_t *t = calloc((size_t)nthreads, sizeof *t);
	uint64_t c0 = status_field(rp, "commits");
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < nthreads; i++) {
		w[i] = (struct worker){.rp = rp, .id = i, .n = per};
		w[i].zxids = calloc((size_t)per, sizeof *w[i].zxids);
		w[i].versions = calloc((size_t)per, sizeof *w[i].versions);
		cr_assert_eq(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < nthreads; i++) {
		pthread_join(t[i], NULL);
		wait_until(&w[i].done, per);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	int total = nthreads * per;
	uint64_t *all = calloc((size_t)total, sizeof *all);
	for (int i = 0; i < nthreads; i++) {
		cr_assert_eq(w[i].errors, 0);
		for (int k = 0; k < per; k++) {
			/* FIFO per submitter; version follows zxid (one set per zxid) */
			if (k)
				cr_assert_gt(w[i].zxids[k], w[i].zxids[k - 1]);
			cr_assert_eq((uint64_t)w[i].versions[k], w[i].zxids[k] - 1);
			all[i * per + k] = w[i].zxids[k];
		}
	}
	qsort(all, (size_t)total, sizeof *all, cmp_u64);
	for (int k = 0; k < total; k++)
		cr_assert_eq(all[k], (uint64_t)k + 2, "zxids are distinct and consecutive");
	struct zt_node n;
	cr_assert(node_exists(rp, "/counter", &n));
	cr_assert_eq(n.stat.version, total);
	cr_assert_eq(n.stat.mzxid, total + 1);
	uint64_t commits = status_field(rp, "commits") - c0;
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	fprintf(stderr,
		"rp concurrent (%s): %d threads x %d sets: %" PRIu64
		" commits for %d transactions (%.1f per commit), %.0f txn/s\n",
		st_flags & ST_F_NOSYNC ? "nosync" : "fsync", nthreads, per, commits, total,
		(double)total / (double)commits, total / secs);
	cr_assert_eq(status_field(rp, "txns"), (uint64_t)total + 1);
	cr_assert_eq(status_field(rp, "applied"), (uint64_t)total + 1);
	if (!(st_flags & ST_F_NOSYNC))
		cr_assert_lt(commits, (uint64_t)total, "no group commit happened");
	for (int i = 0; i < nthreads; i++) {
		free(w[i].zxids);
		free(w[i].versions);
	}
	free(all);
	free(w);
	free(t);
	rp_close(rp);
}

Test(rp, concurrent_submitters_with_fsync)
{
	concurrent_run(0, 8, 250);
}

Test(rp, concurrent_submitters_nosync)
{
	concurrent_run(ST_F_NOSYNC, 16, 2000);
}

Test(rp, batch_takes_everything_queued_up_to_max_batch)
{
	struct rp *rp = open_rp(ST_F_NOSYNC, NULL, 4);
	struct outcome o[10] = {0};
	gate_close_and_enter(rp);
	uint64_t c0 = st_commits(rp_env(rp));
	for (int i = 0; i < 10; i++) {
		char p[16];
		snprintf(p, sizeof p, "/n%d", i);
		struct zt_op op = {.type = ZT_OP_CREATE, .path = p};
		cr_assert_eq(rp_submit(rp, &op, 1, done_cb, &o[i]), 0);
	}
	gate_release();
	wait_until(&o[9].done, 1);
	cr_assert_eq(st_commits(rp_env(rp)) - c0, 3, "10 queued with max_batch 4: 3 commits");
	for (int i = 0; i < 10; i++) {
		cr_assert_eq(o[i].status, 0);
		cr_assert_eq(o[i].zxid, (uint64_t)i + 2);
	}
	rp_close(rp);
}

static struct rp *chg_rp;
static void on_change_log(void *arg, const struct zt_change *ch)
{
	static const char t[] = "?CDSK";
	/* the change is already committed and visible to new snapshots */
	struct st_rtxn *r;
	cr_assert_eq(st_rbegin(rp_env(chg_rp), &r), 0);
	cr_assert_geq(zt_last_zxid(r), ch->zxid);
	st_rend(r);
	pthread_mutex_lock(&mu);
	logf_("%c%" PRIu64 ":%s ", t[ch->type], ch->zxid, ch->path);
	pthread_mutex_unlock(&mu);
}

Test(rp, changes_come_before_done_callbacks)
{
	struct rp *rp = chg_rp = open_rp(ST_F_NOSYNC, on_change_log, 0);
	run(rp, (struct zt_op){.type = ZT_OP_CREATE, .path = "/x"});
	run(rp, (struct zt_op){.type = ZT_OP_SET, .version = -1, .path = "/x"});
	run(rp, (struct zt_op){.type = ZT_OP_DELETE, .version = -1, .path = "/x"});
	cr_assert_str_eq(log_, "C1:/x K1:/ done1/0 S2:/x done2/0 D3:/x K3:/ done3/0 ");

	/* one batch: all its changes, then all its completions */
	log_[0] = '\0';
	struct outcome o[4] = {0};
	struct zt_op ops[4] = {
	    {.type = ZT_OP_CREATE, .path = "/y"},
	    {.type = ZT_OP_CREATE, .path = "/y"}, /* rejected: no change */
	    {.type = ZT_OP_RENAME, .path = "/y", .path2 = "/z"},
	    {.type = ZT_OP_SET, .version = 0, .path = "/z"},
	};
	gate_close_and_enter(rp);
	log_[0] = '\0';
	for (int i = 0; i < 4; i++)
		cr_assert_eq(rp_submit(rp, &ops[i], 1, done_cb, &o[i]), 0);
	gate_release();
	wait_until(&o[3].done, 1);
	cr_assert_str_eq(log_, "C5:/y K5:/ C7:/z K7:/ D7:/y K7:/ S8:/z done5/0 done6/0 done7/0 "
			       "done8/0 ");
	cr_assert_eq(o[1].err[0], ZT_ENODEEXISTS);
	/* a multi is one zxid */
	log_[0] = '\0';
	struct zt_op multi[2] = {
	    {.type = ZT_OP_CREATE, .path = "/m1"},
	    {.type = ZT_OP_CREATE, .path = "/m2"},
	};
	struct outcome om = {0};
	cr_assert_eq(rp_submit(rp, multi, 2, done_cb, &om), 0);
	wait_until(&om.done, 1);
	cr_assert_str_eq(log_, "C9:/m1 K9:/ C9:/m2 K9:/ done9/0 ");
	rp_close(rp);
}

#ifdef QFS_TEST_HOOKS
static void failed_commit_case(int err, enum st_fault kind)
{
	struct rp *rp = chg_rp = open_rp(ST_F_NOSYNC, on_change_log, 0);
	struct outcome o =
	    run(rp, (struct zt_op){.type = ZT_OP_CREATE, .path = "/kept", .data = "k", .len = 1});
	cr_assert_eq(o.zxid, 1);

	/* a whole batch fails: every transaction of it gets the error, nothing is applied */
	struct outcome f[5] = {0};
	gate_close_and_enter(rp); /* zxid 2 */
	cr_assert_eq(st_fault_set(rp_env(rp), kind, kind == ST_FAULT_PUT ? 3 : 1, err), 0);
	for (int i = 0; i < 5; i++) {
		char p[16];
		snprintf(p, sizeof p, "/lost%d", i);
		struct zt_op op = {.type = ZT_OP_CREATE, .path = p};
		cr_assert_eq(rp_submit(rp, &op, 1, done_cb, &f[i]), 0);
	}
	pthread_mutex_lock(&mu);
	log_[0] = '\0';
	pthread_mutex_unlock(&mu);
	gate_release();
	wait_until(&f[4].done, 1);
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(f[i].status, err);
		cr_assert_eq(f[i].zxid, 0);
	}
	char want[128];
	snprintf(want, sizeof want, "done0/%d done0/%d done0/%d done0/%d done0/%d ", err, err, err,
		 err, err);
	cr_assert_str_eq(log_, want, "no change is reported for a failed commit");
	cr_assert(node_exists(rp, "/kept", NULL));
	for (int i = 0; i < 5; i++) {
		char p[16];
		snprintf(p, sizeof p, "/lost%d", i);
		cr_assert(!node_exists(rp, p, NULL));
	}
	cr_assert_eq(status_field(rp, "applied"), 2);

	/* the service goes on; the failed zxids were not used */
	o = run(rp, (struct zt_op){.type = ZT_OP_CREATE, .path = "/after"});
	cr_assert_eq(o.status, 0);
	cr_assert_eq(o.zxid, 3);
	rp_close(rp);

	/* and nothing of it reappears after a restart */
	rp = chg_rp = open_rp(ST_F_NOSYNC, on_change_log, 0);
	cr_assert(node_exists(rp, "/kept", NULL));
	cr_assert(node_exists(rp, "/after", NULL));
	cr_assert(!node_exists(rp, "/lost0", NULL));
	cr_assert_eq(status_field(rp, "applied"), 3);
	rp_close(rp);
}

/* A real MDB_MAP_FULL (a 1 MiB map): the transaction that does not fit fails with -ENOSPC, what was
 * committed before stays, and once there is room again (here: a larger map) the service goes on. */
Test(rp, map_full_is_enospc_and_recoverable)
{
	enum { SZ = 64 * 1024 };
	char *data = malloc(SZ);
	memset(data, 'm', SZ);
	st_test_mapsize(1 << 20);
	struct rp *rp = open_rp(ST_F_NOSYNC, NULL, 0);
	st_test_mapsize(0);
	struct outcome o;
	int i;
	char p[16];
	for (i = 0; i < 64; i++) {
		snprintf(p, sizeof p, "/f%d", i);
		o = run(rp,
			(struct zt_op){.type = ZT_OP_CREATE, .path = p, .data = data, .len = SZ});
		if (o.status)
			break;
		cr_assert_eq(o.err[0], 0);
	}
	cr_assert_eq(o.status, -ENOSPC, "status %d after %d nodes", o.status, i);
	cr_assert_gt(i, 2);
	cr_assert_eq(status_field(rp, "applied"), (uint64_t)i);
	rp_close(rp);

	rp = open_rp(ST_F_NOSYNC, NULL, 0);
	cr_assert_eq(status_field(rp, "applied"), (uint64_t)i);
	for (int k = 0; k < i; k++) {
		struct st_rtxn *r;
		struct zt_node n;
		snprintf(p, sizeof p, "/f%d", k);
		cr_assert_eq(st_rbegin(rp_env(rp), &r), 0);
		cr_assert_eq(zt_get(r, p, &n), 0);
		cr_assert_eq(n.stat.data_length, SZ);
		cr_assert(memcmp(n.data, data, SZ) == 0);
		st_rend(r);
	}
	snprintf(p, sizeof p, "/f%d", i);
	o = run(rp, (struct zt_op){.type = ZT_OP_CREATE, .path = p, .data = data, .len = SZ});
	cr_assert_eq(o.status, 0);
	cr_assert_eq(o.zxid, (uint64_t)i + 1);
	rp_close(rp);
	free(data);
}

Test(rp, failed_commit_eio)
{
	failed_commit_case(-EIO, ST_FAULT_COMMIT);
}

Test(rp, failed_commit_enospc)
{
	failed_commit_case(-ENOSPC, ST_FAULT_COMMIT);
}

Test(rp, failed_write_inside_batch)
{
	failed_commit_case(-ENOSPC, ST_FAULT_PUT);
}
#endif

struct chain {
	struct rp *rp;
	int left;
	int done;
	uint64_t last;
};

static void chain_cb(void *arg, int status, uint64_t zxid, const struct zt_result *res,
		     uint32_t nres)
{
	struct chain *c = arg;
	cr_assert_eq(status, 0);
	if (--c->left > 0) {
		struct zt_op op = {.type = ZT_OP_SET, .version = -1, .path = "/"};
		cr_assert_eq(rp_submit(c->rp, &op, 1, chain_cb, c), 0);
		return;
	}
	pthread_mutex_lock(&mu);
	c->last = zxid;
	c->done = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

Test(rp, done_callback_may_submit)
{
	struct rp *rp = open_rp(ST_F_NOSYNC, NULL, 0);
	struct chain c = {.rp = rp, .left = 50};
	struct zt_op op = {.type = ZT_OP_SET, .version = -1, .path = "/"};
	cr_assert_eq(rp_submit(rp, &op, 1, chain_cb, &c), 0);
	wait_until(&c.done, 1);
	cr_assert_eq(c.last, 50);
	rp_close(rp);
}

static int late_done; /* protected by mu */
static void late_cb(void *arg, int status, uint64_t zxid, const struct zt_result *res,
		    uint32_t nres)
{
	cr_assert_eq(status, -ESHUTDOWN);
	pthread_mutex_lock(&mu);
	late_done++;
	pthread_mutex_unlock(&mu);
}

struct closer {
	struct rp *rp;
};
static void *closer_main(void *p)
{
	rp_close(((struct closer *)p)->rp);
	return NULL;
}

Test(rp, close_completes_pending_with_eshutdown)
{
	struct rp *rp = open_rp(ST_F_NOSYNC, NULL, 0);
	enum { N = 20 };
	struct outcome o[N] = {0};
	gate_close_and_enter(rp);
	int n = 0;
	for (; n < N; n++) {
		struct zt_op op = {.type = ZT_OP_CREATE, .path = "/pending"};
		cr_assert_eq(rp_submit(rp, &op, 1, done_cb, &o[n]), 0);
	}
	pthread_t t;
	struct closer cl = {rp};
	cr_assert_eq(pthread_create(&t, NULL, closer_main, &cl), 0);
	/* rp_close is waiting for the storage thread; submissions are refused from now on */
	struct zt_op op = {.type = ZT_OP_CREATE, .path = "/late"};
	struct timespec t0, t1, tick = {0, 1000000};
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int rc, late = 0;
	while ((rc = rp_submit(rp, &op, 1, late_cb, NULL)) == 0) {
		late++;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		cr_assert_lt(t1.tv_sec - t0.tv_sec, 30, "rp_close never started refusing");
		nanosleep(&tick, NULL);
	}
	cr_assert_eq(rc, -ESHUTDOWN);
	gate_release();
	pthread_join(t, NULL);
	pthread_mutex_lock(&mu);
	cr_assert_eq(late_done, late, "late submissions: %d of %d completed", late_done, late);
	pthread_mutex_unlock(&mu);
	for (int i = 0; i < n; i++) {
		cr_assert_eq(o[i].done, 1, "callback %d ran %d times", i, o[i].done);
		cr_assert_eq(o[i].status, -ESHUTDOWN);
	}
	/* nothing of it was committed */
	struct st_env *env;
	cr_assert_eq(st_open(dir, 0, &env), 0);
	struct st_rtxn *r;
	struct zt_node node;
	cr_assert_eq(st_rbegin(env, &r), 0);
	cr_assert_eq(zt_get(r, "/pending", &node), -ENOENT);
	cr_assert_eq(zt_last_zxid(r), 1);
	st_rend(r);
	st_close(env);
}

Test(rp, reopen_continues_zxids_and_dir_is_exclusive)
{
	struct rp *rp = open_rp(0, NULL, 0), *rp2;
	struct rp_config cfg = {.data_dir = dir};
	cr_assert_eq(rp_open_local(&cfg, &rp2), -EBUSY);
	run(rp, (struct zt_op){.type = ZT_OP_CREATE, .path = "/a"});
	run(rp, (struct zt_op){.type = ZT_OP_CREATE, .path = "/b"});
	rp_close(rp);
	rp = open_rp(0, NULL, 0);
	cr_assert_eq(status_field(rp, "applied"), 2);
	struct outcome o = run(rp, (struct zt_op){.type = ZT_OP_CREATE, .path = "/c"});
	cr_assert_eq(o.zxid, 3);
	cr_assert(node_exists(rp, "/a", NULL));
	rp_close(rp);
	cfg.data_dir = "/nonexistent/qfs";
	cr_assert_eq(rp_open_local(&cfg, &rp2), -ENOENT);
	cr_assert_eq(rp_open_local(NULL, &rp2), -EINVAL);
}

struct closed {
	struct rp *rp;
	int id, n;
};

static void *closed_main(void *p)
{
	struct closed *c = p;
	char path[32];
	snprintf(path, sizeof path, "/c%d", c->id);
	struct outcome o = run(c->rp, (struct zt_op){.type = ZT_OP_CREATE, .path = path});
	cr_assert_eq(o.err[0], 0);
	for (int i = 0; i < c->n; i++) {
		o = run(c->rp,
			(struct zt_op){
			    .type = ZT_OP_SET, .version = i, .path = path, .data = "v", .len = 1});
		cr_assert_eq(o.err[0], 0);
	}
	return NULL;
}

/* Clients that wait for each reply before the next request (as ZooKeeper benchmarks run): with
 * fsync, the requests that arrive during one commit share the next one. */
Test(rp, closed_loop_clients_share_commits)
{
	enum { T = 16, N = 50 };
	struct rp *rp = open_rp(0, NULL, 0);
	pthread_t t[T];
	struct closed c[T];
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < T; i++) {
		c[i] = (struct closed){rp, i, N};
		cr_assert_eq(pthread_create(&t[i], NULL, closed_main, &c[i]), 0);
	}
	for (int i = 0; i < T; i++)
		pthread_join(t[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	uint64_t commits = status_field(rp, "commits"), txns = status_field(rp, "txns");
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	fprintf(stderr,
		"rp closed loop (fsync): %d clients: %" PRIu64 " commits for %" PRIu64
		" transactions (%.1f per commit), %.0f txn/s\n",
		T, commits, txns, (double)txns / (double)commits, (double)txns / secs);
	cr_assert_eq(txns, (uint64_t)T * (N + 1));
	cr_assert_lt(commits, txns);
	rp_close(rp);
}

struct rw {
	struct rp *rp;
	int id;
	volatile int *stop;
	long reads;
	int done;
};

static int count_children(void *arg, const char *name, const struct zt_node *c)
{
	++*(int *)arg;
	cr_assert_eq(c->stat.data_length, 4);
	cr_assert(memcmp(c->data, name, 4) == 0, "data of %s", name);
	return 0;
}

static void *reader_main(void *p)
{
	struct rw *a = p;
	while (!*a->stop) {
		struct st_rtxn *r;
		struct zt_node n;
		int count = 0;
		cr_assert_eq(st_rbegin(rp_env(a->rp), &r), 0);
		cr_assert_eq(zt_get(r, "/d", &n), 0);
		cr_assert_eq(zt_list(r, "/d", count_children, &count), 0);
		cr_assert_eq(count, n.stat.num_children, "a snapshot is consistent");
		st_rend(r);
		a->reads++;
	}
	return NULL;
}

static void *writer_main(void *p)
{
	struct rw *a = p;
	for (int i = 0; i < 300; i++) {
		char path[32], name[8];
		snprintf(name, sizeof name, "%c%03d", 'a' + a->id, i % 50);
		snprintf(path, sizeof path, "/d/%s", name);
		struct zt_op op = {.type = ZT_OP_CREATE, .path = path, .data = name, .len = 4};
		struct outcome o = run(a->rp, op);
		if (o.err[0] == ZT_ENODEEXISTS) {
			op = (struct zt_op){.type = ZT_OP_DELETE, .version = -1, .path = path};
			o = run(a->rp, op);
		}
		cr_assert_eq(o.err[0], 0);
	}
	return NULL;
}

/* Readers on their own threads see consistent snapshots while the storage thread writes. */
Test(rp, readers_during_writes)
{
	struct rp *rp = open_rp(ST_F_NOSYNC, NULL, 0);
	volatile int stop = 0;
	run(rp, (struct zt_op){.type = ZT_OP_CREATE, .flags = ZT_CREATE_DIR, .path = "/d"});
	pthread_t rt[4], wt[4];
	struct rw ra[4], wa[4];
	for (int i = 0; i < 4; i++) {
		ra[i] = (struct rw){.rp = rp, .id = i, .stop = &stop};
		wa[i] = (struct rw){.rp = rp, .id = i, .stop = &stop};
		cr_assert_eq(pthread_create(&rt[i], NULL, reader_main, &ra[i]), 0);
		cr_assert_eq(pthread_create(&wt[i], NULL, writer_main, &wa[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(wt[i], NULL);
	stop = 1;
	long reads = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(rt[i], NULL);
		reads += ra[i].reads;
	}
	cr_log_info("%ld consistent snapshots read during 1200 writes", reads);
	struct zt_node n;
	cr_assert(node_exists(rp, "/d", &n));
	cr_assert_eq(n.stat.cversion, 1200);
	rp_close(rp);
}
