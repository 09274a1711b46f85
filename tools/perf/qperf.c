/*
 * qperf: latency and throughput of plain file operations on a quorumfs mount, as users make them.
 *   qperf write PATH [-n N] [-t THREADS] [-s SIZE]   open(O_WRONLY|O_TRUNC) + write SIZE + close
 *   qperf read PATH [-n N] [-t THREADS]              open(O_RDONLY) + read to EOF + close (a cat)
 *   qperf stat PATH [-n N] [-t THREADS]              getxattr user.zk.version
 *   qperf pwrite PATH [-n N] [-t THREADS] [-s SIZE]  pwrite SIZE at 0 on one open descriptor
 *   qperf abwrite PATH_A PATH_B [-n N] [-s SIZE]     one writer alternating writes (as "write")
 *                                                    on A and B: an A/B comparison of two
 *                                                    clusters that share the same noise
 * With THREADS > 1 each thread uses PATH.K (K = 0..THREADS-1) for writes, PATH itself for reads.
 * Prints ops/s and the latency percentiles (microseconds). A measurement tool, not a test.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

enum { Q_WRITE, Q_READ, Q_STAT, Q_PWRITE };

struct qthr {
	pthread_t t;
	int mode, id;
	long n;
	size_t size;
	char path[4096];
	double *lat; /* microseconds, n of them */
	int err;
};

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void *run(void *arg)
{
	struct qthr *q = arg;
	char *buf = malloc(q->size > 65536 ? q->size : 65536);

	if (!buf) {
		q->err = ENOMEM;
		return NULL;
	}
	memset(buf, 'a' + q->id % 26, q->size);
	int pfd = -1;
	if (q->mode == Q_PWRITE && (pfd = open(q->path, O_WRONLY | O_CREAT, 0644)) < 0) {
		q->err = errno;
		return NULL;
	}
	for (long i = 0; i < q->n; i++) {
		double t0 = now_us();
		int fd;
		ssize_t r;

		switch (q->mode) {
		case Q_WRITE:
			fd = open(q->path, O_WRONLY | O_TRUNC | O_CREAT, 0644);
			if (fd < 0 || write(fd, buf, q->size) != (ssize_t)q->size || close(fd) != 0) {
				q->err = errno;
				return NULL;
			}
			break;
		case Q_READ:
			fd = open(q->path, O_RDONLY);
			if (fd < 0) {
				q->err = errno;
				return NULL;
			}
			while ((r = read(fd, buf, 65536)) > 0)
				;
			if (r < 0 || close(fd) != 0) {
				q->err = errno;
				return NULL;
			}
			break;
		case Q_PWRITE:
			if (pwrite(pfd, buf, q->size, 0) != (ssize_t)q->size) {
				q->err = errno;
				return NULL;
			}
			break;
		default:
			if (getxattr(q->path, "user.zk.version", buf, 64) < 0) {
				q->err = errno;
				return NULL;
			}
		}
		q->lat[i] = now_us() - t0;
	}
	if (pfd >= 0)
		close(pfd);
	free(buf);
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void report(const char *what, double *lat, size_t tot, double el)
{
	qsort(lat, tot, sizeof(double), cmp);
	printf("%s ops=%zu ops/s=%.0f p50=%.0fus p90=%.0fus p99=%.0fus p999=%.0fus\n", what, tot,
	       (double)tot / (el / 1e6), lat[tot / 2], lat[tot * 9 / 10], lat[tot * 99 / 100],
	       lat[tot * 999 / 1000]);
}

/* abwrite: write i goes to A when i is even, to B when odd; each side's own latencies. */
static int abwrite(const char *pa, const char *pb, long n, size_t size)
{
	double *lat[2] = {malloc(sizeof(double) * (size_t)n), malloc(sizeof(double) * (size_t)n)};
	char *buf = malloc(size ? size : 1);
	double t0 = now_us();

	if (!lat[0] || !lat[1] || !buf)
		abort();
	memset(buf, 'a', size);
	for (long i = 0; i < 2 * n; i++) {
		const char *p = i % 2 ? pb : pa;
		double t = now_us();
		int fd = open(p, O_WRONLY | O_TRUNC | O_CREAT, 0644);
		if (fd < 0 || write(fd, buf, size) != (ssize_t)size || close(fd) != 0) {
			fprintf(stderr, "qperf: %s: %s\n", p, strerror(errno));
			return 1;
		}
		lat[i % 2][i / 2] = now_us() - t;
	}
	double el = now_us() - t0;
	report("abwrite A", lat[0], (size_t)n, el);
	report("abwrite B", lat[1], (size_t)n, el);
	free(lat[0]);
	free(lat[1]);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	long n = 10000;
	int threads = 1, mode, opt;
	size_t size = 1024;
	const char *path;

	if (argc < 3) {
		fprintf(stderr, "usage: qperf write|read|stat PATH [-n N] [-t THREADS] [-s SIZE]\n");
		return 2;
	}
	if (!strcmp(argv[1], "abwrite")) {
		if (argc < 4)
			return 2;
		optind = 4;
		while ((opt = getopt(argc, argv, "n:s:")) != -1) {
			if (opt == 'n')
				n = atol(optarg);
			else if (opt == 's')
				size = (size_t)atol(optarg);
			else
				return 2;
		}
		if (n <= 0 || size > (1 << 20))
			return 2;
		return abwrite(argv[2], argv[3], n, size);
	}
	mode = !strcmp(argv[1], "write")    ? Q_WRITE
	     : !strcmp(argv[1], "read")	    ? Q_READ
	     : !strcmp(argv[1], "stat")	    ? Q_STAT
	     : !strcmp(argv[1], "pwrite") ? Q_PWRITE
					    : -1;
	if (mode < 0) {
		fprintf(stderr, "qperf: unknown mode %s\n", argv[1]);
		return 2;
	}
	path = argv[2];
	optind = 3;
	while ((opt = getopt(argc, argv, "n:t:s:")) != -1) {
		if (opt == 'n')
			n = atol(optarg);
		else if (opt == 't')
			threads = atoi(optarg);
		else if (opt == 's')
			size = (size_t)atol(optarg);
		else
			return 2;
	}
	if (n <= 0 || threads <= 0 || threads > 1024 || size > (1 << 20)) {
		fprintf(stderr, "qperf: bad -n, -t or -s\n");
		return 2;
	}
	struct qthr *q = calloc((size_t)threads, sizeof(*q));
	double *all = malloc(sizeof(double) * (size_t)n * (size_t)threads);
	if (!q || !all)
		abort();
	for (int i = 0; i < threads; i++) {
		q[i].mode = mode;
		q[i].id = i;
		q[i].n = n;
		q[i].size = size;
		q[i].lat = all + (size_t)i * (size_t)n;
		if ((mode == Q_WRITE || mode == Q_PWRITE) && threads > 1)
			snprintf(q[i].path, sizeof(q[i].path), "%s.%d", path, i);
		else
			snprintf(q[i].path, sizeof(q[i].path), "%s", path);
	}
	double t0 = now_us();
	for (int i = 0; i < threads; i++)
		if (pthread_create(&q[i].t, NULL, run, &q[i]) != 0)
			abort();
	for (int i = 0; i < threads; i++)
		pthread_join(q[i].t, NULL);
	double el = now_us() - t0;
	for (int i = 0; i < threads; i++)
		if (q[i].err) {
			fprintf(stderr, "qperf: %s: %s\n", q[i].path, strerror(q[i].err));
			return 1;
		}
	size_t tot = (size_t)n * (size_t)threads;
	qsort(all, tot, sizeof(double), cmp);
	printf("%s threads=%d ops=%zu ops/s=%.0f p50=%.0fus p90=%.0fus p99=%.0fus p999=%.0fus\n",
	       argv[1], threads, tot, (double)tot / (el / 1e6), all[tot / 2], all[tot * 9 / 10],
	       all[tot * 99 / 100], all[tot * 999 / 1000]);
	free(all);
	free(q);
	return 0;
}
