/*
 * qfsload: the quorumfs side of tools/bench. Drives a quorumfs cluster through its MOUNTS exactly
 * as users do (open/write/close, open/read/close, getxattr, the .zk/ files), with one thread per
 * client, clients spread over the mounts, and prints one "key=value ..." line per run in zkload's
 * format for the driver to tabulate.
 *
 *   qfsload --mounts M1,M2,... --workload W [--seconds S] [--warmup S] [--clients N]
 *           [--size BYTES] [--prefix NAME] [--kill-pid PID] [--count N]
 *
 * Workloads (the same shapes as zkload's):
 *   write      N clients (spread over the mounts) each write their own node: open(O_TRUNC),
 *              write SIZE bytes, close, again
 *   write-hot  the same, all on one node
 *   write-multi N clients each hold one .zk/multi descriptor and write their own node through it:
 *              one "set" transaction per write, then read its result
 *   write-hot-inplace  all on one node, each write an overwrite in place: open(O_WRONLY) without
 *              O_TRUNC, pwrite SIZE bytes at 0 (the node holds SIZE bytes), close: the kernel
 *              then lets the writes of one node through one mount run at once
 *   write-lat  one client, one write at a time: latency percentiles; write-lat-inplace: each
 *              an overwrite in place (as write-hot-inplace); write-lat-multi: each a "set"
 *              through one .zk/multi descriptor held for the run
 *   read       N clients each open/read/close their own node; read-lat: one client
 *   stat       N clients getxattr("user.zk.version") of their own node (ZooKeeper's exists)
 *   lock       N clients each run cycles of: create .zk/ephemeral-sequential/PREFIX/locks/lock-
 *              (acknowledged when open returns), unlink it (acknowledged), close
 *   lock-multi N clients each hold one .zk/multi descriptor (its session, as a ZooKeeper client
 *              holds its session) and run cycles of: write "create -e -s PREFIX/locks/lock-",
 *              read the result (the node's name), write "delete" of it, read the result
 *   watch      a watcher on the last mount, a writer on the first: time from the write's start
 *              to the watcher's wake-up, one at a time
 *   failover   as write; after the warm-up, kill -9 of PID (the leader's daemon): failover_ms is
 *              the time from the kill to the first acknowledged write submitted after it
 *              (clients of a mount that died stop)
 *   populate   creates COUNT nodes of SIZE bytes under PREFIX/big/dK (1000 per .zk/multi
 *              transaction, N clients): the tree of the restart and memory rows
 *
 * Latencies are of the whole user-visible operation (open + write + close is one sample).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 256
#define MAX_MOUNTS  16
#define MAX_SAMPLES (4u * 1024 * 1024)
#define PATH_CAP    4096

static const char *mounts[MAX_MOUNTS];
static int nmounts;
static const char *workload = "write";
static double seconds = 10, warmup = 3;
static int nclients = 32, size = 1024;
static const char *prefix = "bench";
static pid_t kill_pid;
static long count = 1000000;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_s(double s)
{
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};

	nanosleep(&ts, NULL);
}

static void die(const char *what, const char *path)
{
	fprintf(stderr, "qfsload: %s %s: %s\n", what, path ? path : "", strerror(errno));
	exit(1);
}

/* Latency samples of the measured window, in nanoseconds. */
static uint64_t *samples;
static atomic_size_t nsamples;
static atomic_int measuring;
static atomic_uint_fast64_t done_ops, failed_ops;
static atomic_int stop_all;
static char *value;

static void sample(uint64_t ns)
{
	size_t i = atomic_fetch_add(&nsamples, 1);

	if (i < MAX_SAMPLES)
		samples[i] = ns;
}

static void account(int ok, uint64_t start)
{
	if (!atomic_load(&measuring))
		return;
	if (ok) {
		atomic_fetch_add(&done_ops, 1);
		sample(now_ns() - start);
	} else {
		atomic_fetch_add(&failed_ops, 1);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct(size_t n, double p)
{
	if (n == 0)
		return 0;
	return (double)samples[(size_t)(p * (double)(n - 1))] / 1000.0;
}

static void report(double elapsed, const char *extra)
{
	size_t n = atomic_load(&nsamples);

	if (n > MAX_SAMPLES)
		n = MAX_SAMPLES;
	qsort(samples, n, sizeof(*samples), cmp_u64);
	printf("system=quorumfs workload=%s ops=%llu failed=%llu seconds=%.2f ops_per_s=%.0f "
	       "p50_us=%.1f p99_us=%.1f p999_us=%.1f%s%s\n",
	       workload, (unsigned long long)atomic_load(&done_ops),
	       (unsigned long long)atomic_load(&failed_ops), elapsed,
	       (double)atomic_load(&done_ops) / elapsed, pct(n, 0.50), pct(n, 0.99), pct(n, 0.999),
	       extra ? " " : "", extra ? extra : "");
	fflush(stdout);
}

/* ---- the operations, as a user makes them ---- */

static int op_write(const char *path)
{
	int fd = open(path, O_WRONLY | O_TRUNC), ok;

	if (fd < 0)
		return -errno;
	ok = write(fd, value, (size_t)size) == size ? 0 : -errno;
	if (close(fd) < 0 && ok == 0)
		ok = -errno;
	return ok;
}

/* The same new value, written over the node's SIZE bytes in place (no truncation). */
static int op_overwrite(const char *path)
{
	int fd = open(path, O_WRONLY), ok;

	if (fd < 0)
		return -errno;
	ok = pwrite(fd, value, (size_t)size, 0) == size ? 0 : -errno;
	if (close(fd) < 0 && ok == 0)
		ok = -errno;
	return ok;
}

static int op_read(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY), ok = 0;
	ssize_t n;

	if (fd < 0)
		return -errno;
	do
		n = read(fd, buf, cap);
	while (n > 0);
	if (n < 0)
		ok = -errno;
	close(fd);
	return ok;
}

static int op_stat(const char *path)
{
	char buf[32];

	return getxattr(path, "user.zk.version", buf, sizeof(buf)) > 0 ? 0 : -errno;
}

/* One lock cycle: the ephemeral-sequential create, the delete of the node it made, the close. */
static int op_lock(const char *mount, const char *eph)
{
	char node[PATH_CAP], path[PATH_CAP];
	ssize_t n;
	int fd = open(eph, O_WRONLY | O_CREAT, 0644), ok = 0;

	if (fd < 0)
		return -errno;
	n = fgetxattr(fd, "user.zk.path", node, sizeof(node) - 1);
	if (n <= 0) {
		ok = n < 0 ? -errno : -EIO;
	} else {
		node[n] = 0;
		snprintf(path, sizeof(path), "%s%s", mount, node);
		if (unlink(path) < 0)
			ok = -errno;
	}
	close(fd);
	return ok;
}

/* Creates PATH as a node holding VALUE (or a directory node) if it is missing. */
static void ensure(const char *path, int dir)
{
	if (dir) {
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			die("mkdir", path);
		return;
	}
	int fd = open(path, O_WRONLY | O_CREAT, 0644);

	if (fd < 0)
		die("create", path);
	if (write(fd, value, (size_t)size) != size)
		die("write", path);
	if (close(fd) < 0)
		die("close", path);
}

/* ZooKeeper's sync through every mount, so that what was made through one is seen by all. */
static void sync_all(void)
{
	char path[PATH_CAP], buf[256];

	for (int m = 0; m < nmounts; m++) {
		snprintf(path, sizeof(path), "%s/.zk/sync", mounts[m]);
		if (op_read(path, buf, sizeof(buf)) < 0)
			die("sync", path);
	}
}

/* ---- load threads ---- */

enum kind { K_WRITE, K_OVERWRITE, K_SET_MULTI, K_READ, K_STAT, K_LOCK, K_LOCK_MULTI };

struct client {
	pthread_t th;
	int id;
	enum kind kind;
	const char *mount;
	char path[PATH_CAP]; /* write-multi: the request it writes (set_request) */
	int fd; /* lock-multi, write-multi: the client's .zk/multi descriptor (-1: not open) */
};

static struct client clients[MAX_CLIENTS];
static uint64_t kill_ns;		  /* failover: when the kill was sent (0: not yet) */
static atomic_uint_fast64_t first_ack_ns; /* failover: the first ack of a write sent after it */

/* One transaction REQ on the .zk/multi descriptor FD; its result line into OUT (CAP bytes). */
static int multi_txn(int fd, const char *req, char *out, size_t cap)
{
	size_t len = strlen(req);
	ssize_t n;

	if (write(fd, req, len) != (ssize_t)len)
		return -errno;
	n = read(fd, out, cap - 1);
	if (n < 0)
		return -errno;
	out[n] = 0;
	return strncmp(out, "ok ", 3) == 0 ? 0 : -EPROTO;
}

/* The client's .zk/multi descriptor, opened at its first use. */
static int multi_fd(struct client *c)
{
	char path[PATH_CAP];

	if (c->fd >= 0)
		return 0;
	snprintf(path, sizeof(path), "%s/.zk/multi", c->mount);
	c->fd = open(path, O_RDWR);
	return c->fd < 0 ? -errno : 0;
}

static void multi_drop(struct client *c)
{
	close(c->fd);
	c->fd = -1;
}

/* The .zk/multi request that writes VALUE to PREFIX/NAME, into OUT (CAP bytes: main keeps SIZE
 * small enough). */
static void set_request(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "set /%s/%s %s\n", prefix, name, value);
}

/* One write of the client's node through its .zk/multi descriptor (C->path: the request). */
static int op_set_multi(struct client *c)
{
	char res[PATH_CAP + 64];
	int rv = multi_fd(c);

	if (rv != 0)
		return rv;
	rv = multi_txn(c->fd, c->path, res, sizeof(res));
	if (rv != 0)
		multi_drop(c);
	return rv;
}

/* One lock cycle through the client's .zk/multi descriptor: the ephemeral-sequential create
 * (owned by the descriptor's session), then the delete of the node it made. */
static int op_lock_multi(struct client *c)
{
	char req[PATH_CAP + 32], res[PATH_CAP + 64], node[PATH_CAP];
	int rv;

	rv = multi_fd(c);
	if (rv != 0)
		return rv;
	snprintf(req, sizeof(req), "create -e -s /%s/locks/lock-\n", prefix);
	rv = multi_txn(c->fd, req, res, sizeof(res));
	/* "ok create PATH VERSION" */
	if (rv == 0 && sscanf(res, "ok create %4095s", node) != 1)
		rv = -EPROTO;
	if (rv == 0) {
		snprintf(req, sizeof(req), "delete %s\n", node);
		rv = multi_txn(c->fd, req, res, sizeof(res));
	}
	if (rv != 0) /* a fresh descriptor (and session) for the next cycle */
		multi_drop(c);
	return rv;
}

static void *client_loop(void *arg)
{
	struct client *c = arg;
	char *buf = malloc((size_t)size + 4096);

	if (!buf)
		abort();
	while (!atomic_load(&stop_all)) {
		uint64_t start = now_ns();
		int rc;

		switch (c->kind) {
		case K_WRITE:
			rc = op_write(c->path);
			break;
		case K_OVERWRITE:
			rc = op_overwrite(c->path);
			break;
		case K_READ:
			rc = op_read(c->path, buf, (size_t)size + 4096);
			break;
		case K_STAT:
			rc = op_stat(c->path);
			break;
		case K_LOCK_MULTI:
			rc = op_lock_multi(c);
			break;
		case K_SET_MULTI:
			rc = op_set_multi(c);
			break;
		default:
			rc = op_lock(c->mount, c->path);
			break;
		}
		account(rc == 0, start);
		if (rc == 0 && kill_ns && start >= kill_ns) {
			uint64_t t = now_ns(), cur = atomic_load(&first_ack_ns);

			while ((cur == 0 || t < cur) &&
			       !atomic_compare_exchange_weak(&first_ack_ns, &cur, t))
				;
		}
		if (rc == -ENOTCONN || rc == -ECONNABORTED)
			break; /* this client's daemon is gone (failover) */
		if (rc < 0 && !kill_ns) {
			errno = -rc;
			fprintf(stderr, "qfsload: %s: %s\n", c->path, strerror(errno));
			sleep_s(0.001);
		}
	}
	if (c->fd >= 0)
		close(c->fd);
	free(buf);
	return NULL;
}

static void run_clients(enum kind kind, int hot)
{
	char path[PATH_CAP];
	uint64_t t0, t1;
	char extra[128] = "";

	snprintf(path, sizeof(path), "%s/%s", mounts[0], prefix);
	ensure(path, 1);
	if (kind == K_LOCK || kind == K_LOCK_MULTI) {
		snprintf(path, sizeof(path), "%s/%s/locks", mounts[0], prefix);
		ensure(path, 1);
	}
	for (int i = 0; i < nclients; i++) {
		struct client *c = &clients[i];

		c->id = i;
		c->kind = kind;
		c->mount = mounts[i % nmounts];
		c->fd = -1;
		if (kind == K_LOCK_MULTI)
			continue;
		if (kind == K_LOCK) {
			snprintf(c->path, sizeof(c->path),
				 "%s/.zk/ephemeral-sequential/%s/locks/lock-", c->mount, prefix);
			continue;
		}
		if (hot)
			snprintf(path, sizeof(path), "%s/%s/hot", mounts[0], prefix);
		else
			snprintf(path, sizeof(path), "%s/%s/n%d", mounts[0], prefix, i);
		ensure(path, 0);
		if (kind == K_SET_MULTI)
			set_request(c->path, sizeof(c->path), strrchr(path, '/') + 1);
		else
			snprintf(c->path, sizeof(c->path), "%s/%s/%s", c->mount, prefix,
				 strrchr(path, '/') + 1);
	}
	sync_all();
	for (int i = 0; i < nclients; i++)
		if (pthread_create(&clients[i].th, NULL, client_loop, &clients[i]) != 0)
			abort();
	sleep_s(warmup);
	atomic_store(&measuring, 1);
	t0 = now_ns();
	if (kill_pid > 0) {
		kill_ns = now_ns();
		if (kill(kill_pid, SIGKILL) < 0)
			die("kill", NULL);
		/* until the first acknowledged write after the kill, --seconds at most */
		while (!atomic_load(&first_ack_ns) && now_ns() < t0 + (uint64_t)(seconds * 1e9))
			sleep_s(0.001);
		sleep_s(0.2);
	} else {
		sleep_s(seconds);
	}
	atomic_store(&measuring, 0);
	t1 = now_ns();
	atomic_store(&stop_all, 1);
	for (int i = 0; i < nclients; i++)
		pthread_join(clients[i].th, NULL);
	if (kill_pid > 0) {
		uint64_t a = atomic_load(&first_ack_ns);

		if (a)
			snprintf(extra, sizeof(extra), "failover_ms=%.1f",
				 (double)(a - kill_ns) / 1e6);
		else
			snprintf(extra, sizeof(extra), "failover_ms=inf");
	}
	report((double)(t1 - t0) / 1e9, extra[0] ? extra : NULL);
}

/* One operation at a time through the first mount, for latency. */
static void run_sync(enum kind kind)
{
	char path[PATH_CAP], *buf = malloc((size_t)size + 4096);
	uint64_t t0 = 0, end, start;

	if (!buf)
		abort();
	snprintf(path, sizeof(path), "%s/%s", mounts[0], prefix);
	ensure(path, 1);
	struct client mc = {.mount = mounts[0], .fd = -1}; /* K_SET_MULTI: its descriptor */

	if (kind == K_SET_MULTI)
		set_request(mc.path, sizeof(mc.path), "lat");
	snprintf(path, sizeof(path), "%s/%s/lat", mounts[0], prefix);
	ensure(path, 0);
	for (int phase = 0; phase < 2; phase++) {
		t0 = now_ns();
		end = t0 + (uint64_t)((phase ? seconds : warmup) * 1e9);
		atomic_store(&measuring, phase);
		while ((start = now_ns()) < end) {
			int rc = kind == K_WRITE       ? op_write(path)
				 : kind == K_OVERWRITE ? op_overwrite(path)
				 : kind == K_SET_MULTI ? op_set_multi(&mc)
						       : op_read(path, buf, (size_t)size + 4096);

			account(rc == 0, start);
		}
	}
	report((double)(now_ns() - t0) / 1e9, NULL);
	if (mc.fd >= 0)
		close(mc.fd);
	free(buf);
}

/* ---- watch: a watcher thread on the last mount, the writer on the first ---- */

static pthread_mutex_t wmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wcv = PTHREAD_COND_INITIALIZER;
static int w_armed, w_go, w_fired;
static uint64_t w_fired_ns;
static char w_file[PATH_CAP];

static void *watcher(void *arg)
{
	char buf[PATH_CAP];

	(void)arg;
	for (;;) {
		int fd;
		ssize_t n;

		pthread_mutex_lock(&wmu);
		while (!w_go)
			pthread_cond_wait(&wcv, &wmu);
		w_go = 0;
		pthread_mutex_unlock(&wmu);
		if (atomic_load(&stop_all))
			return NULL;
		fd = open(w_file, O_RDONLY); /* registered at open */
		if (fd < 0)
			die("open", w_file);
		pthread_mutex_lock(&wmu);
		w_armed = 1;
		pthread_cond_broadcast(&wcv);
		pthread_mutex_unlock(&wmu);
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			die("read", w_file);
		pthread_mutex_lock(&wmu);
		w_fired_ns = now_ns();
		w_fired = 1;
		pthread_cond_broadcast(&wcv);
		pthread_mutex_unlock(&wmu);
		close(fd);
	}
}

static void run_watch(void)
{
	char node[PATH_CAP];
	pthread_t th;
	uint64_t t0 = 0, end;

	snprintf(node, sizeof(node), "%s/%s", mounts[0], prefix);
	ensure(node, 1);
	snprintf(node, sizeof(node), "%s/%s/watched", mounts[0], prefix);
	ensure(node, 0);
	sync_all();
	snprintf(w_file, sizeof(w_file), "%s/.zk/watch/%s/watched", mounts[nmounts - 1], prefix);
	if (pthread_create(&th, NULL, watcher, NULL) != 0)
		abort();
	for (int phase = 0; phase < 2; phase++) {
		t0 = now_ns();
		end = t0 + (uint64_t)((phase ? seconds : warmup) * 1e9);
		atomic_store(&measuring, phase);
		while (now_ns() < end) {
			uint64_t s;

			pthread_mutex_lock(&wmu);
			w_armed = w_fired = 0;
			w_go = 1;
			pthread_cond_broadcast(&wcv);
			while (!w_armed)
				pthread_cond_wait(&wcv, &wmu);
			pthread_mutex_unlock(&wmu);
			s = now_ns();
			if (op_write(node) < 0)
				die("write", node);
			pthread_mutex_lock(&wmu);
			while (!w_fired)
				pthread_cond_wait(&wcv, &wmu);
			pthread_mutex_unlock(&wmu);
			if (phase) {
				atomic_fetch_add(&done_ops, 1);
				sample(w_fired_ns - s);
			}
		}
	}
	report((double)(now_ns() - t0) / 1e9, NULL);
	atomic_store(&stop_all, 1);
	pthread_mutex_lock(&wmu);
	w_go = 1;
	pthread_cond_broadcast(&wcv);
	pthread_mutex_unlock(&wmu);
	pthread_join(th, NULL);
}

/* ---- populate: COUNT nodes of SIZE bytes, 1000 creates per .zk/multi transaction ---- */

#define PER_MULTI 1000
#define PER_DIR	  10000

static atomic_long next_batch;
static long nbatches;

static void *populate_loop(void *arg)
{
	struct client *c = arg;
	size_t cap = (size_t)PER_MULTI * ((size_t)size + 64);
	char *req = malloc(cap), mpath[PATH_CAP], res[4096];
	long b;

	if (!req)
		abort();
	snprintf(mpath, sizeof(mpath), "%s/.zk/multi", c->mount);
	while ((b = atomic_fetch_add(&next_batch, 1)) < nbatches) {
		size_t len = 0;
		uint64_t start = now_ns();
		int fd, rc = 0;

		for (long i = b * PER_MULTI; i < (b + 1) * PER_MULTI && i < count; i++)
			len += (size_t)snprintf(req + len, cap - len,
						"create /%s/big/d%ld/n%ld %.*s\n", prefix,
						i / PER_DIR, i, size, value);
		fd = open(mpath, O_RDWR);
		if (fd < 0)
			die("open", mpath);
		if (write(fd, req, len) != (ssize_t)len)
			rc = -errno;
		while (rc == 0 && read(fd, res, sizeof(res)) > 0)
			;
		close(fd);
		if (rc < 0) {
			errno = -rc;
			die("multi", mpath);
		}
		account(1, start);
	}
	free(req);
	return NULL;
}

static void run_populate(void)
{
	char path[PATH_CAP];
	uint64_t t0;
	char extra[64];
	int n = nclients;

	if (count < 1 || size < 1)
		die("populate needs --count and --size > 0", NULL);
	snprintf(path, sizeof(path), "%s/%s", mounts[0], prefix);
	ensure(path, 1);
	snprintf(path, sizeof(path), "%s/%s/big", mounts[0], prefix);
	ensure(path, 1);
	for (long d = 0; d * PER_DIR < count; d++) {
		snprintf(path, sizeof(path), "%s/%s/big/d%ld", mounts[0], prefix, d);
		ensure(path, 1);
	}
	sync_all();
	nbatches = (count + PER_MULTI - 1) / PER_MULTI;
	if (n > nbatches)
		n = (int)nbatches;
	atomic_store(&measuring, 1);
	t0 = now_ns();
	for (int i = 0; i < n; i++) {
		clients[i].mount = mounts[i % nmounts];
		if (pthread_create(&clients[i].th, NULL, populate_loop, &clients[i]) != 0)
			abort();
	}
	for (int i = 0; i < n; i++)
		pthread_join(clients[i].th, NULL);
	double el = (double)(now_ns() - t0) / 1e9;

	snprintf(extra, sizeof(extra), "nodes=%ld nodes_per_s=%.0f", count, (double)count / el);
	report(el, extra);
}

static void usage(void)
{
	fprintf(stderr, "usage: qfsload --mounts M1[,M2...] --workload "
			"write|write-hot|write-hot-inplace|write-multi|write-lat[-inplace|-multi]|"
			"read|read-lat|"
			"stat|lock|lock-multi|watch|"
			"failover|populate "
			"[--seconds S] [--warmup S] [--clients N] [--size BYTES] [--prefix NAME] "
			"[--kill-pid PID] [--count N]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"mounts", required_argument, NULL, 'm'},  {"workload", required_argument, NULL, 'w'},
	    {"seconds", required_argument, NULL, 't'}, {"warmup", required_argument, NULL, 'W'},
	    {"clients", required_argument, NULL, 'c'}, {"size", required_argument, NULL, 'z'},
	    {"prefix", required_argument, NULL, 'p'},  {"kill-pid", required_argument, NULL, 'K'},
	    {"count", required_argument, NULL, 'n'},   {NULL, 0, NULL, 0}};
	char *list = NULL;
	int o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'm':
			list = strdup(optarg);
			break;
		case 'w':
			workload = optarg;
			break;
		case 't':
			seconds = atof(optarg);
			break;
		case 'W':
			warmup = atof(optarg);
			break;
		case 'c':
			nclients = atoi(optarg);
			break;
		case 'z':
			size = atoi(optarg);
			break;
		case 'p':
			prefix = optarg;
			break;
		case 'K':
			kill_pid = (pid_t)atol(optarg);
			break;
		case 'n':
			count = atol(optarg);
			break;
		default:
			usage();
		}
	}
	if (!list || nclients < 1 || nclients > MAX_CLIENTS || size < 0 || seconds <= 0 ||
	    warmup < 0)
		usage();
	for (char *s = strtok(list, ","); s && nmounts < MAX_MOUNTS; s = strtok(NULL, ","))
		mounts[nmounts++] = s;
	samples = malloc(MAX_SAMPLES * sizeof(*samples));
	value = malloc((size_t)size + 1);
	if (!samples || !value)
		abort();
	memset(value, 'v', (size_t)size);
	value[size] = 0;

	if (strstr(workload, "-multi") && strncmp(workload, "write", 5) == 0 && size > 3072) {
		errno = EINVAL; /* a request must fit a client's path buffer (set_request) */
		die("--size", "(3072 at most for writes through .zk/multi)");
	}
	if (strcmp(workload, "write") == 0)
		run_clients(K_WRITE, 0);
	else if (strcmp(workload, "write-hot") == 0)
		run_clients(K_WRITE, 1);
	else if (strcmp(workload, "write-hot-inplace") == 0)
		run_clients(K_OVERWRITE, 1);
	else if (strcmp(workload, "write-multi") == 0)
		run_clients(K_SET_MULTI, 0);
	else if (strcmp(workload, "read") == 0)
		run_clients(K_READ, 0);
	else if (strcmp(workload, "stat") == 0)
		run_clients(K_STAT, 0);
	else if (strcmp(workload, "lock") == 0)
		run_clients(K_LOCK, 0);
	else if (strcmp(workload, "lock-multi") == 0)
		run_clients(K_LOCK_MULTI, 0);
	else if (strcmp(workload, "failover") == 0 && kill_pid > 0)
		run_clients(K_WRITE, 0);
	else if (strcmp(workload, "write-lat") == 0)
		run_sync(K_WRITE);
	else if (strcmp(workload, "write-lat-inplace") == 0)
		run_sync(K_OVERWRITE);
	else if (strcmp(workload, "write-lat-multi") == 0)
		run_sync(K_SET_MULTI);
	else if (strcmp(workload, "read-lat") == 0)
		run_sync(K_READ);
	else if (strcmp(workload, "watch") == 0)
		run_watch();
	else if (strcmp(workload, "populate") == 0)
		run_populate();
	else
		usage();
	free(list);
	return 0;
}
