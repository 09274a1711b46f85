/* The LMDB environment: locking, errors, persistence, snapshots, commit failures, restart time. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/st.h"
#include "store/st_lmdb.h"
#include "store/st_test.h"
#include "store/zt.h"
#include "helpers.h"

static char dir[256];

static void setup(void)
{
	h_mkdir(dir);
}

static void teardown(void)
{
	h_rmdir(dir);
}

TestSuite(st, .init = setup, .fini = teardown);

/* Apply one transaction of N creates "/PREFIXi" (i from FIRST) at ZXID and commit. */
static int create_many(struct st_env *env, uint64_t zxid, const char *prefix, int first, int n)
{
	struct st_wtxn *w;
	struct zt_op *ops = calloc((size_t)n, sizeof *ops);
	struct zt_result *res = calloc((size_t)n, sizeof *res);
	char(*paths)[32] = calloc((size_t)n, 32);
	for (int i = 0; i < n; i++) {
		snprintf(paths[i], 32, "/%s%d", prefix, first + i);
		ops[i] = (struct zt_op){.type = ZT_OP_CREATE,
					.path = paths[i],
					.data = paths[i],
					.len = (uint32_t)strlen(paths[i])};
	}
	struct zt_txn t = {.zxid = zxid, .time_ms = 1, .nops = (uint32_t)n, .ops = ops};
	int rc = st_wbegin(env, &w);
	cr_assert_eq(rc, 0);
	rc = zt_apply(w, &t, res, NULL, NULL);
	cr_assert_eq(rc, 0);
	for (int i = 0; i < n; i++)
		cr_assert_eq(res[i].err, 0);
	zt_results_free(res, (uint32_t)n);
	rc = st_wcommit(w);
	free(ops);
	free(res);
	free(paths);
	return rc;
}

static int exists(struct st_env *env, const char *path)
{
	struct st_rtxn *r;
	struct zt_node n;
	cr_assert_eq(st_rbegin(env, &r), 0);
	int rc = zt_get(r, path, &n);
	st_rend(r);
	return rc == 0;
}

Test(st, open_errors)
{
	struct st_env *env;
	char p[300];
	snprintf(p, sizeof p, "%s/missing", dir);
	cr_assert_eq(st_open(p, 0, &env), -ENOENT);
	snprintf(p, sizeof p, "%s/file", dir);
	int fd = open(p, O_CREAT | O_WRONLY, 0644);
	cr_assert_geq(fd, 0);
	close(fd);
	cr_assert_eq(st_open(p, 0, &env), -ENOTDIR);
	cr_assert_eq(st_open(dir, 0x100, &env), -EINVAL);
	unlink(p);
}

Test(st, refuses_what_is_not_ours)
{
	struct st_env *env;
	char p[300];
	snprintf(p, sizeof p, "%s/data.mdb", dir);
	FILE *f = fopen(p, "w");
	for (int i = 0; i < 5000; i++)
		fputs("not an lmdb file ", f);
	fclose(f);
	cr_assert_eq(st_open(dir, ST_F_NOSYNC, &env), -EINVAL);
}

Test(st, second_open_is_busy)
{
	struct st_env *env, *env2;
	cr_assert_eq(st_open(dir, ST_F_NOSYNC, &env), 0);
	/* a second open file description in this process */
	cr_assert_eq(st_open(dir, ST_F_NOSYNC, &env2), -EBUSY);
	/* and another process */
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct st_env *e;
		_exit(st_open(dir, ST_F_NOSYNC, &e) == -EBUSY ? 0 : 1);
	}
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child was not refused");
	st_close(env);
	/* the lock goes with the close */
	cr_assert_eq(st_open(dir, ST_F_NOSYNC, &env), 0);
	st_close(env);
}

Test(st, persists_across_reopen)
{
	struct st_env *env;
	cr_assert_eq(st_open(dir, 0, &env), 0); /* with fsync */
	cr_assert_eq(create_many(env, 1, "n", 0, 10), 0);
	cr_assert_eq(create_many(env, 7, "m", 0, 1), 0);
	st_close(env);
	cr_assert_eq(st_open(dir, 0, &env), 0);
	struct st_rtxn *r;
	struct zt_node n;
	cr_assert_eq(st_rbegin(env, &r), 0);
	cr_assert_eq(zt_last_zxid(r), 7);
	cr_assert_eq(zt_get(r, "/n3", &n), 0);
	cr_assert_eq(n.stat.czxid, 1);
	cr_assert_eq(n.stat.data_length, 3);
	cr_assert(memcmp(n.data, "/n3", 3) == 0);
	cr_assert_eq(zt_get(r, "/", &n), 0);
	cr_assert_eq(n.stat.num_children, 11);
	cr_assert_eq(n.stat.cversion, 11);
	cr_assert_eq(n.stat.pzxid, 7);
	st_rend(r);
	/* node ids are not reused after a restart: a new node does not collide with old ones */
	cr_assert_eq(create_many(env, 8, "k", 0, 3), 0);
	cr_assert(exists(env, "/k2"));
	cr_assert(exists(env, "/n9"));
	st_close(env);
}

Test(st, snapshots_are_isolated)
{
	struct st_env *env;
	struct st_rtxn *old, *fresh;
	struct zt_node n;
	cr_assert_eq(st_open(dir, ST_F_NOSYNC, &env), 0);
	cr_assert_eq(create_many(env, 1, "a", 0, 1), 0);
	cr_assert_eq(st_rbegin(env, &old), 0);
	cr_assert_eq(create_many(env, 2, "b", 0, 1), 0);
	cr_assert_eq(zt_get(old, "/b0", &n), -ENOENT);
	cr_assert_eq(zt_last_zxid(old), 1);
	cr_assert_eq(st_rbegin(env, &fresh), 0);
	cr_assert_eq(zt_get(fresh, "/b0", &n), 0);
	cr_assert_eq(zt_last_zxid(fresh), 2);
	st_rend(old);
	st_rend(fresh);
	/* pooled snapshots renewed later see the newest state */
	cr_assert_eq(create_many(env, 3, "c", 0, 1), 0);
	cr_assert_eq(st_rbegin(env, &fresh), 0);
	cr_assert_eq(zt_get(fresh, "/c0", &n), 0);
	st_rend(fresh);
	st_close(env);
}

#ifdef QFS_TEST_HOOKS
Test(st, failed_commit_keeps_nothing)
{
	struct st_env *env;
	cr_assert_eq(st_open(dir, ST_F_NOSYNC, &env), 0);
	cr_assert_eq(create_many(env, 1, "a", 0, 2), 0);
	cr_assert_eq(st_fault_set(env, ST_FAULT_COMMIT, 1, -ENOSPC), 0);
	cr_assert_eq(create_many(env, 2, "b", 0, 2), -ENOSPC);
	cr_assert_eq(st_commit_failures(env), 1);
	cr_assert(!exists(env, "/b0"));
	cr_assert(exists(env, "/a1"));
	struct st_rtxn *r;
	cr_assert_eq(st_rbegin(env, &r), 0);
	cr_assert_eq(zt_last_zxid(r), 1);
	st_rend(r);
	/* the store works again, and the same zxid can be used */
	cr_assert_eq(create_many(env, 2, "b", 0, 2), 0);
	cr_assert(exists(env, "/b1"));
	/* the second commit from now */
	cr_assert_eq(st_fault_set(env, ST_FAULT_COMMIT, 2, -EIO), 0);
	cr_assert_eq(create_many(env, 3, "c", 0, 1), 0);
	cr_assert_eq(create_many(env, 4, "d", 0, 1), -EIO);
	cr_assert(exists(env, "/c0"));
	cr_assert(!exists(env, "/d0"));
	cr_assert_eq(st_commits(env), 3);
	cr_assert_eq(st_fault_set(env, ST_FAULT_COMMIT, 0, -EIO), -EINVAL);
	cr_assert_eq(st_fault_set(env, ST_FAULT_COMMIT, 1, 5), -EINVAL);
	st_close(env);
}

static double mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* A slow disk: every commit takes at least the delay (a lower bound: cannot flake on a loaded
 * machine), commits keep working and keep what they commit; 0 removes the delay. */
Test(st, commit_delay_slows_every_commit)
{
	struct st_env *env;
	cr_assert_eq(st_open(dir, ST_F_NOSYNC, &env), 0);
	st_fault_delay(env, 150);
	for (int i = 0; i < 3; i++) {
		double t0 = mono_ms();
		cr_assert_eq(create_many(env, (uint64_t)i + 1, i == 0 ? "a" : i == 1 ? "b" : "c", 0, 1), 0);
		cr_assert_geq(mono_ms() - t0, 150.0, "commit %d took %.1f ms", i, mono_ms() - t0);
	}
	cr_assert(exists(env, "/a0") && exists(env, "/b0") && exists(env, "/c0"));
	cr_assert_eq(st_commits(env), 3);
	st_fault_delay(env, 0);
	cr_assert_eq(create_many(env, 4, "d", 0, 1), 0);
	cr_assert(exists(env, "/d0"));
	st_close(env);
}
#endif

Test(st, one_write_transaction_at_a_time)
{
	struct st_env *env;
	struct st_wtxn *w, *w2;
	cr_assert_eq(st_open(dir, ST_F_NOSYNC, &env), 0);
	cr_assert_eq(st_wbegin(env, &w), 0);
	cr_assert_eq(st_wbegin(env, &w2), -EBUSY);
	st_wabort(w);
	cr_assert_eq(st_wbegin(env, &w), 0);
	st_close(env); /* aborts the live write transaction */
}

struct reader_arg {
	struct st_env *env;
	volatile int *stop;
	long reads;
};

static void *reader(void *p)
{
	struct reader_arg *a = p;
	while (!*a->stop) {
		struct st_rtxn *r;
		struct zt_node n;
		cr_assert_eq(st_rbegin(a->env, &r), 0);
		uint64_t z = zt_last_zxid(r);
		cr_assert_eq(zt_get(r, "/", &n), 0);
		/* each commit adds 10 nodes: the snapshot is consistent */
		cr_assert_eq((uint64_t)n.stat.num_children, z * 10);
		st_rend(r);
		a->reads++;
	}
	return NULL;
}

Test(st, readers_on_many_threads_during_writes)
{
	struct st_env *env;
	volatile int stop = 0;
	pthread_t t[4];
	struct reader_arg a[4];
	cr_assert_eq(st_open(dir, ST_F_NOSYNC, &env), 0);
	for (int i = 0; i < 4; i++) {
		a[i] = (struct reader_arg){env, &stop, 0};
		cr_assert_eq(pthread_create(&t[i], NULL, reader, &a[i]), 0);
	}
	for (int z = 1; z <= 200; z++)
		cr_assert_eq(create_many(env, (uint64_t)z, "r", z * 10, 10), 0);
	stop = 1;
	long reads = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		reads += a[i].reads;
	}
	cr_log_info("%ld consistent reads during 200 commits", reads);
	st_close(env);
}

static double secs(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static int count_cb(void *arg, const char *name, const struct zt_node *c)
{
	++*(long *)arg;
	return 0;
}

/* Not a timing assertion: prints how long 100,000 nodes take to write, reopen and list. */
Test(st, restart_with_100k_nodes, .timeout = 240)
{
	struct st_env *env;
	struct timespec t0, t1, t2, t3;
	const int total = 100000, per = 1000;
	cr_assert_eq(st_open(dir, ST_F_NOSYNC, &env), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < total / per; i++)
		cr_assert_eq(create_many(env, (uint64_t)i + 1, "node", i * per, per), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	st_close(env);

	clock_gettime(CLOCK_MONOTONIC, &t2);
	cr_assert_eq(st_open(dir, ST_F_NOSYNC, &env), 0);
	struct st_rtxn *r;
	struct zt_node n;
	cr_assert_eq(st_rbegin(env, &r), 0);
	cr_assert_eq(zt_get(r, "/node99999", &n), 0);
	clock_gettime(CLOCK_MONOTONIC, &t3);
	long count = 0;
	struct timespec t4, t5;
	clock_gettime(CLOCK_MONOTONIC, &t4);
	cr_assert_eq(zt_list(r, "/", count_cb, &count), 0);
	clock_gettime(CLOCK_MONOTONIC, &t5);
	cr_assert_eq(count, total);
	st_rend(r);
	st_close(env);
	fprintf(
	    stderr,
	    "restart_with_100k_nodes: write %.3f s (100 commits), reopen + first lookup %.6f s, "
	    "list of 100k children %.3f s\n",
	    secs(&t0, &t1), secs(&t2, &t3), secs(&t4, &t5));
}

/* Another named database shares the environment and the write transaction (the cluster's
 * acceptor state and log will live there). */
Test(st, extra_database_in_same_write_txn)
{
	struct st_env *env;
	struct st_wtxn *w;
	MDB_dbi dbi;
	cr_assert_eq(st_open(dir, ST_F_NOSYNC, &env), 0);
	cr_assert_eq(st_wbegin(env, &w), 0);
	cr_assert_eq(st__dbi_open(w, "tree", MDB_CREATE, &dbi), -EINVAL);
	cr_assert_eq(st__dbi_open(w, "log", 0, &dbi), -ENOENT);
	cr_assert_eq(st__dbi_open(w, "log", MDB_CREATE, &dbi), 0);
	MDB_val k = {3, "one"}, v = {5, "value"};
	cr_assert_eq(mdb_put(w->txn, dbi, &k, &v, 0), 0);
	struct zt_op op = {.type = ZT_OP_CREATE, .path = "/x"};
	struct zt_result res;
	struct zt_txn t = {.zxid = 1, .time_ms = 1, .nops = 1, .ops = &op};
	cr_assert_eq(zt_apply(w, &t, &res, NULL, NULL), 0);
	cr_assert_eq(st_wcommit(w), 0);
	st_close(env);

	cr_assert_eq(st_open(dir, ST_F_NOSYNC, &env), 0);
	cr_assert_eq(st_wbegin(env, &w), 0);
	cr_assert_eq(st__dbi_open(w, "log", 0, &dbi), 0);
	cr_assert_eq(st_wcommit(w), 0);
	struct st_rtxn *r;
	cr_assert_eq(st_rbegin(env, &r), 0);
	cr_assert_eq(mdb_get(r->txn, dbi, &k, &v), 0);
	cr_assert_eq(v.mv_size, 5);
	cr_assert(memcmp(v.mv_data, "value", 5) == 0);
	cr_assert(exists(env, "/x"));
	st_rend(r);
	st_close(env);
}
