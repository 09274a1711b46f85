/*
 * zkload: the Apache ZooKeeper side of tools/bench. Drives a ZooKeeper ensemble through its C
 * client (libzookeeper-mt), asynchronously with many requests outstanding, as ZooKeeper's own
 * benchmarks do, and prints one "key=value ..." line per run for the driver to tabulate.
 *
 *   zkload --servers H:P,H:P,... --workload W [--seconds S] [--warmup S] [--clients N]
 *          [--outstanding K] [--size BYTES] [--prefix /bench] [--kill-pid PID] [--count N]
 *
 * Workloads:
 *   write      N clients (spread over the servers) each keep K setData in flight on its own node
 *   write-hot  the same, all on one node
 *   write-lat  one client, one synchronous setData at a time: latency percentiles
 *   read       N clients keep K getData in flight; read-lat: one synchronous getData at a time
 *   stat       N clients keep K exists in flight
 *   lock       N clients, each on its own thread, run create(EPHEMERAL|SEQUENTIAL) + delete
 *              cycles, one at a time
 *   watch      a watcher on the last server, a writer on the first: time from the write's
 *              submission to the watch event, one at a time
 *   failover   as write; after the warm-up, kill -9 of PID (the leader's server): failover_ms is
 *              the time from the kill to the first acknowledged write submitted after it
 *   populate   creates COUNT nodes of SIZE bytes under PREFIX/big/dK (1000 creates per multi,
 *              N clients): the tree of the restart and memory rows
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define THREADED 1 /* the synchronous API of libzookeeper-mt */
#include <zookeeper/zookeeper.h>

#define MAX_CLIENTS 64
#define MAX_SAMPLES (4u * 1024 * 1024)

static const char *servers[16];
static int nservers;
static const char *workload = "write";
static double seconds = 10, warmup = 3;
static int nclients = 8, outstanding = 32, size = 1024;
static const char *prefix = "/bench";
static pid_t kill_pid;
static long count = 1000000;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Latency samples of the measured window, in nanoseconds. */
static uint64_t *samples;
static atomic_size_t nsamples;

static void sample(uint64_t ns)
{
	size_t i = atomic_fetch_add(&nsamples, 1);

	if (i < MAX_SAMPLES)
		samples[i] = ns;
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
	return samples[(size_t)(p * (double)(n - 1))] / 1000.0;
}

struct client {
	zhandle_t *zh;
	char path[256];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int inflight;
	int connected;
	int failed; /* protected by mu: the last request that completed failed */
};

static struct client clients[MAX_CLIENTS];
static atomic_int measuring;
static atomic_uint_fast64_t done_ops, failed_ops;
static char *value;

static void conn_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	struct client *c = ctx;

	if (type == ZOO_SESSION_EVENT && state == ZOO_CONNECTED_STATE) {
		pthread_mutex_lock(&c->mu);
		c->connected = 1;
		pthread_cond_broadcast(&c->cv);
		pthread_mutex_unlock(&c->mu);
	}
}

static void connect_client(struct client *c, const char *server)
{
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->zh = zookeeper_init(server, conn_watcher, 10000, NULL, c, 0);
	if (!c->zh) {
		perror("zookeeper_init");
		exit(1);
	}
	pthread_mutex_lock(&c->mu);
	while (!c->connected)
		pthread_cond_wait(&c->cv, &c->mu);
	pthread_mutex_unlock(&c->mu);
}

static void sleep_s(double s)
{
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};

	nanosleep(&ts, NULL);
}

struct req {
	struct client *c;
	uint64_t start;
};

static uint64_t kill_ns;		  /* failover: when the kill was sent (0: not yet) */
static atomic_uint_fast64_t first_ack_ns; /* failover: the first ack of a write sent after it */

static void finish(struct req *r, int rc)
{
	struct client *c = r->c;

	if (rc == ZOK && kill_ns && r->start >= kill_ns) {
		uint64_t t = now_ns(), cur = atomic_load(&first_ack_ns);

		while ((cur == 0 || t < cur) &&
		       !atomic_compare_exchange_weak(&first_ack_ns, &cur, t))
			;
	}

	if (atomic_load(&measuring)) {
		if (rc == ZOK) {
			atomic_fetch_add(&done_ops, 1);
			sample(now_ns() - r->start);
		} else {
			atomic_fetch_add(&failed_ops, 1);
		}
	}
	free(r);
	pthread_mutex_lock(&c->mu);
	c->inflight--;
	c->failed = rc != ZOK;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static void stat_done(int rc, const struct Stat *st, const void *data)
{
	finish((struct req *)data, rc);
}

static void data_done(int rc, const char *v, int len, const struct Stat *st, const void *data)
{
	finish((struct req *)data, rc);
}

static void ensure(zhandle_t *zh, const char *path)
{
	int rc = zoo_create(zh, path, value, size, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);

	if (rc != ZOK && rc != ZNODEEXISTS) {
		fprintf(stderr, "create %s: %s\n", path, zerror(rc));
		exit(1);
	}
}

struct runner {
	struct client *c;
	int kind; /* 0 set, 1 get, 2 exists */
	volatile int stop;
};

static void *async_loop(void *arg)
{
	struct runner *r = arg;
	struct client *c = r->c;

	while (!r->stop) {
		struct req *q;
		int rc;

		pthread_mutex_lock(&c->mu);
		while (c->inflight >= outstanding && !r->stop)
			pthread_cond_wait(&c->cv, &c->mu);
		c->inflight++;
		if (c->failed) {
			/* not connected (a failover): one request a millisecond until one succeeds,
			 * instead of spinning on the CPU the election needs */
			pthread_mutex_unlock(&c->mu);
			sleep_s(0.001);
		} else {
			pthread_mutex_unlock(&c->mu);
		}
		q = malloc(sizeof(*q));
		q->c = c;
		q->start = now_ns();
		if (r->kind == 0)
			rc = zoo_aset(c->zh, c->path, value, size, -1, stat_done, q);
		else if (r->kind == 1)
			rc = zoo_aget(c->zh, c->path, 0, data_done, q);
		else
			rc = zoo_aexists(c->zh, c->path, 0, stat_done, q);
		if (rc != ZOK) {
			finish(q, rc);
			sleep_s(0.001); /* not connected (failover): do not spin */
		}
	}
	pthread_mutex_lock(&c->mu);
	while (c->inflight > 0)
		pthread_cond_wait(&c->cv, &c->mu);
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

static void report(const char *name, double elapsed, const char *extra)
{
	size_t n = atomic_load(&nsamples);

	if (n > MAX_SAMPLES)
		n = MAX_SAMPLES;
	qsort(samples, n, sizeof(*samples), cmp_u64);
	printf("system=zookeeper workload=%s ops=%llu failed=%llu seconds=%.2f ops_per_s=%.0f "
	       "p50_us=%.1f p99_us=%.1f p999_us=%.1f%s%s\n",
	       name, (unsigned long long)atomic_load(&done_ops),
	       (unsigned long long)atomic_load(&failed_ops), elapsed,
	       (double)atomic_load(&done_ops) / elapsed, pct(n, 0.50), pct(n, 0.99), pct(n, 0.999),
	       extra ? " " : "", extra ? extra : "");
	fflush(stdout);
}

static void run_async(int kind, int hot)
{
	pthread_t th[MAX_CLIENTS];
	struct runner rs[MAX_CLIENTS];
	uint64_t t0, t1;

	ensure(clients[0].zh, prefix);
	for (int i = 0; i < nclients; i++) {
		if (hot)
			snprintf(clients[i].path, sizeof(clients[i].path), "%s/hot", prefix);
		else
			snprintf(clients[i].path, sizeof(clients[i].path), "%s/n%d", prefix, i);
		ensure(clients[i].zh, clients[i].path);
	}
	for (int i = 0; i < nclients; i++) {
		rs[i] = (struct runner){.c = &clients[i], .kind = kind};
		pthread_create(&th[i], NULL, async_loop, &rs[i]);
	}
	sleep_s(warmup);
	atomic_store(&measuring, 1);
	t0 = now_ns();
	if (kill_pid > 0) {
		kill_ns = now_ns();
		if (kill(kill_pid, SIGKILL) < 0) {
			perror("kill");
			exit(1);
		}
		/* until the first acknowledged write after the kill, --seconds at most */
		while (!atomic_load(&first_ack_ns) && now_ns() < t0 + (uint64_t)(seconds * 1e9))
			sleep_s(0.001);
		sleep_s(0.2);
	} else {
		sleep_s(seconds);
	}
	atomic_store(&measuring, 0);
	t1 = now_ns();
	for (int i = 0; i < nclients; i++) {
		pthread_mutex_lock(&clients[i].mu);
		rs[i].stop = 1;
		pthread_cond_broadcast(&clients[i].cv);
		pthread_mutex_unlock(&clients[i].mu);
	}
	for (int i = 0; i < nclients; i++)
		pthread_join(th[i], NULL);
	if (kill_pid > 0) {
		uint64_t a = atomic_load(&first_ack_ns);
		char extra[64];

		if (a)
			snprintf(extra, sizeof(extra), "failover_ms=%.1f",
				 (double)(a - kill_ns) / 1e6);
		else
			snprintf(extra, sizeof(extra), "failover_ms=inf");
		report(workload, (double)(t1 - t0) / 1e9, extra);
		return;
	}
	report(workload, (double)(t1 - t0) / 1e9, NULL);
}

/* One synchronous operation at a time on client 0, for latency. */
static void run_sync(int kind)
{
	struct client *c = &clients[0];
	char buf[2 * 1024 * 1024];
	uint64_t t0, end, start;

	ensure(c->zh, prefix);
	snprintf(c->path, sizeof(c->path), "%s/lat", prefix);
	ensure(c->zh, c->path);
	for (int phase = 0; phase < 2; phase++) {
		t0 = now_ns();
		end = t0 + (uint64_t)((phase ? seconds : warmup) * 1e9);
		atomic_store(&measuring, phase);
		while ((start = now_ns()) < end) {
			int len = sizeof(buf), rc;

			rc = kind == 0 ? zoo_set(c->zh, c->path, value, size, -1)
				       : zoo_get(c->zh, c->path, 0, buf, &len, NULL);
			if (phase) {
				if (rc == ZOK) {
					atomic_fetch_add(&done_ops, 1);
					sample(now_ns() - start);
				} else {
					atomic_fetch_add(&failed_ops, 1);
				}
			}
		}
	}
	report(workload, (double)(now_ns() - t0) / 1e9, NULL);
}

/* lock: each client on its own thread runs create(EPHEMERAL|SEQUENTIAL) + delete cycles, one at a
 * time, as qfsload's lock clients do. */
static char lock_path[300];
static atomic_int lock_phase; /* 0 warm-up, 1 measuring, 2 stop */

static void *lock_loop(void *arg)
{
	struct client *c = arg;
	char created[512];
	int phase;

	while ((phase = atomic_load(&lock_phase)) < 2) {
		uint64_t s = now_ns();
		int rc = zoo_create(c->zh, lock_path, "", 0, &ZOO_OPEN_ACL_UNSAFE,
				    ZOO_EPHEMERAL | ZOO_SEQUENCE, created, sizeof(created));

		if (rc == ZOK)
			rc = zoo_delete(c->zh, created, -1);
		if (phase == 1 && atomic_load(&lock_phase) == 1) {
			if (rc == ZOK) {
				atomic_fetch_add(&done_ops, 1);
				sample(now_ns() - s);
			} else {
				atomic_fetch_add(&failed_ops, 1);
			}
		}
	}
	return NULL;
}

static void run_lock(void)
{
	pthread_t th[MAX_CLIENTS];
	char lockdir[256];
	uint64_t t0, t1;

	snprintf(lockdir, sizeof(lockdir), "%s/locks", prefix);
	ensure(clients[0].zh, prefix);
	ensure(clients[0].zh, lockdir);
	snprintf(lock_path, sizeof(lock_path), "%s/lock-", lockdir);
	for (int i = 0; i < nclients; i++)
		pthread_create(&th[i], NULL, lock_loop, &clients[i]);
	sleep_s(warmup);
	atomic_store(&lock_phase, 1);
	t0 = now_ns();
	sleep_s(seconds);
	atomic_store(&lock_phase, 2);
	t1 = now_ns();
	for (int i = 0; i < nclients; i++)
		pthread_join(th[i], NULL);
	report(workload, (double)(t1 - t0) / 1e9, NULL);
}

static pthread_mutex_t wmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wcv = PTHREAD_COND_INITIALIZER;
static int fired;
static uint64_t fired_ns;

static void data_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	if (type != ZOO_CHANGED_EVENT)
		return;
	pthread_mutex_lock(&wmu);
	fired_ns = now_ns();
	fired = 1;
	pthread_cond_signal(&wcv);
	pthread_mutex_unlock(&wmu);
}

/* A ZooKeeper call of the watch loop failed with RC: go on after a connection loss or a
 * timeout (the client reconnects; counted in failed=), at most 100 times; otherwise stop. */
static void watch_error(const char *what, int rc)
{
	static int errors;

	if ((rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT || rc == ZSESSIONMOVED) &&
	    ++errors <= 100) {
		atomic_fetch_add(&failed_ops, 1);
		usleep(10000);
		return;
	}
	fprintf(stderr, "zkload: watch: %s: %s\n", what, zerror(rc));
	exit(1);
}

static void run_watch(void)
{
	struct client *w = &clients[nclients - 1], *c = &clients[0];
	char path[256], buf[16];
	uint64_t t0, end;

	snprintf(path, sizeof(path), "%s/watched", prefix);
	ensure(c->zh, prefix);
	ensure(c->zh, path);
	for (int phase = 0; phase < 2; phase++) {
		t0 = now_ns();
		end = t0 + (uint64_t)((phase ? seconds : warmup) * 1e9);
		while (now_ns() < end) {
			int len = sizeof(buf), rc, got;
			uint64_t s;
			struct timespec dl;

			fired = 0;
			rc = zoo_wget(w->zh, path, data_watcher, NULL, buf, &len, NULL);
			if (rc != ZOK) {
				watch_error("wget", rc);
				continue;
			}
			/* the watch is registered once wget has returned */
			s = now_ns();
			rc = zoo_set(c->zh, path, value, size, -1);
			if (rc != ZOK) {
				watch_error("set", rc); /* the next round's set fires this watch */
				continue;
			}
			clock_gettime(CLOCK_REALTIME, &dl);
			dl.tv_sec += 10;
			pthread_mutex_lock(&wmu);
			while (!fired)
				if (pthread_cond_timedwait(&wcv, &wmu, &dl) == ETIMEDOUT)
					break;
			got = fired;
			pthread_mutex_unlock(&wmu);
			if (!got) {
				fprintf(stderr, "zkload: watch: no event 10 s after the write\n");
				exit(1);
			}
			if (phase) {
				atomic_fetch_add(&done_ops, 1);
				sample(fired_ns - s);
			}
		}
	}
	report(workload, (double)(now_ns() - t0) / 1e9, NULL);
}

/* populate: COUNT nodes of SIZE bytes, 1000 creates per multi, clients take batches in turn. */
#define PER_MULTI 1000
#define PER_DIR	  10000

static atomic_long next_batch;
static long nbatches;

static void *populate_loop(void *arg)
{
	struct client *c = arg;
	zoo_op_t *ops = calloc(PER_MULTI, sizeof(*ops));
	zoo_op_result_t *res = calloc(PER_MULTI, sizeof(*res));
	char(*paths)[96] = calloc(PER_MULTI, sizeof(*paths));
	long b;

	if (!ops || !res || !paths)
		abort();
	while ((b = atomic_fetch_add(&next_batch, 1)) < nbatches) {
		int n = 0, rc;
		uint64_t start = now_ns();

		for (long i = b * PER_MULTI; i < (b + 1) * PER_MULTI && i < count; i++, n++) {
			snprintf(paths[n], sizeof(paths[n]), "%s/big/d%ld/n%ld", prefix,
				 i / PER_DIR, i);
			zoo_create_op_init(&ops[n], paths[n], value, size, &ZOO_OPEN_ACL_UNSAFE, 0,
					   NULL, 0);
		}
		rc = zoo_multi(c->zh, n, ops, res);
		if (rc != ZOK) {
			fprintf(stderr, "zkload: multi: %s\n", zerror(rc));
			exit(1);
		}
		atomic_fetch_add(&done_ops, 1);
		sample(now_ns() - start);
	}
	free(ops);
	free(res);
	free(paths);
	return NULL;
}

static void run_populate(void)
{
	pthread_t th[MAX_CLIENTS];
	char path[256], extra[64];
	uint64_t t0;
	double el;
	int n = nclients;

	ensure(clients[0].zh, prefix);
	snprintf(path, sizeof(path), "%s/big", prefix);
	ensure(clients[0].zh, path);
	for (long d = 0; d * PER_DIR < count; d++) {
		snprintf(path, sizeof(path), "%s/big/d%ld", prefix, d);
		ensure(clients[0].zh, path);
	}
	nbatches = (count + PER_MULTI - 1) / PER_MULTI;
	if (n > nbatches)
		n = (int)nbatches;
	t0 = now_ns();
	for (int i = 0; i < n; i++)
		pthread_create(&th[i], NULL, populate_loop, &clients[i]);
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	el = (double)(now_ns() - t0) / 1e9;
	snprintf(extra, sizeof(extra), "nodes=%ld nodes_per_s=%.0f", count, (double)count / el);
	report(workload, el, extra);
}

static void usage(void)
{
	fprintf(stderr, "usage: zkload --servers H:P[,H:P...] --workload "
			"write|write-hot|write-lat|read|read-lat|stat|lock|watch|failover|populate "
			"[--seconds S] [--warmup S] [--clients N] [--outstanding K] [--size BYTES] "
			"[--prefix PATH] [--kill-pid PID] [--count N]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"servers", required_argument, NULL, 's'},
					     {"workload", required_argument, NULL, 'w'},
					     {"seconds", required_argument, NULL, 't'},
					     {"warmup", required_argument, NULL, 'W'},
					     {"clients", required_argument, NULL, 'c'},
					     {"outstanding", required_argument, NULL, 'k'},
					     {"size", required_argument, NULL, 'z'},
					     {"prefix", required_argument, NULL, 'p'},
					     {"kill-pid", required_argument, NULL, 'K'},
					     {"count", required_argument, NULL, 'n'},
					     {NULL, 0, NULL, 0}};
	char *list = NULL;
	int o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 's':
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
		case 'k':
			outstanding = atoi(optarg);
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
	if (!list || nclients < 1 || nclients > MAX_CLIENTS || outstanding < 1 || size < 0)
		usage();
	for (char *s = strtok(list, ","); s && nservers < 16; s = strtok(NULL, ","))
		servers[nservers++] = s;
	/* a failover's connection losses are expected: no log line for each of them */
	zoo_set_debug_level(kill_pid > 0 ? 0 : ZOO_LOG_LEVEL_ERROR);
	samples = malloc(MAX_SAMPLES * sizeof(*samples));
	value = malloc((size_t)size + 1);
	if (!samples || !value)
		abort();
	memset(value, 'v', (size_t)size);
	if (strcmp(workload, "watch") == 0 && nclients < 2)
		nclients = 2;
	for (int i = 0; i < nclients; i++)
		connect_client(&clients[i], servers[i % nservers]);
	if (strcmp(workload, "watch") == 0 && nservers > 1) {
		/* the watcher talks to the last server, the writer to the first */
		zookeeper_close(clients[nclients - 1].zh);
		clients[nclients - 1].connected = 0;
		connect_client(&clients[nclients - 1], servers[nservers - 1]);
	}

	if (strcmp(workload, "write") == 0)
		run_async(0, 0);
	else if (strcmp(workload, "write-hot") == 0)
		run_async(0, 1);
	else if (strcmp(workload, "read") == 0)
		run_async(1, 0);
	else if (strcmp(workload, "stat") == 0)
		run_async(2, 0);
	else if (strcmp(workload, "write-lat") == 0)
		run_sync(0);
	else if (strcmp(workload, "read-lat") == 0)
		run_sync(1);
	else if (strcmp(workload, "lock") == 0)
		run_lock();
	else if (strcmp(workload, "watch") == 0)
		run_watch();
	else if (strcmp(workload, "failover") == 0 && kill_pid > 0)
		run_async(0, 0);
	else if (strcmp(workload, "populate") == 0)
		run_populate();
	else
		usage();
	for (int i = 0; i < nclients; i++)
		zookeeper_close(clients[i].zh);
	return 0;
}
