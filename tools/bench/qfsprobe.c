/*
 * qfsprobe: the machine's limits that tools/bench reports next to each quorumfs figure, in the
 * "key=value ..." format of qfsload and zkload.
 *
 * qfsprobe fsync DIR [--seconds S]
 *     4 KiB overwrite + fdatasync of a file in DIR, one at a time
 * qfsprobe tcp [--seconds S] [--listen P --via Q]
 *     64-byte round trip over loopback TCP to a forked echo process; with --listen and --via
 *     the echo process listens on port P and the client connects to port Q (qfs-delayproxy Q:P)
 * qfsprobe fuse MOUNT [--seconds S]
 *     getxattr round trip to a no-op FUSE file system mounted at MOUNT (qfs-fusenoop): one FUSE
 *     request, nothing else
 * qfsprobe fuse-write MOUNT [--seconds S] [--clients N] [--hot] [--in-place]
 *     N threads (default 1), thread K writing MOUNT/wK as qfsload's write workload writes a node:
 *     open(O_WRONLY | O_TRUNC), write 1 KiB, close; against qfs-fusenoop this is the four FUSE
 *     requests of a quorumfs write with nothing behind them. Reported as "fuse-write" with one
 *     client, "fuse-write-par" with more. --hot: every thread writes MOUNT/w0; --in-place: the
 *     open has no O_TRUNC (the write overwrites the file's 1 KiB: not past its end)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES (4u * 1024 * 1024)

static uint64_t *samples;
static size_t nsamples;
static double seconds = 3;
static int listen_port, via_port, nclients = 1, hot, in_place;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "qfsprobe: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct(double p)
{
	if (nsamples == 0)
		return 0;
	return (double)samples[(size_t)(p * (double)(nsamples - 1))] / 1000.0;
}

static void report(const char *name, double elapsed)
{
	qsort(samples, nsamples, sizeof(*samples), cmp_u64);
	printf(
	    "system=machine workload=%s ops=%zu failed=0 seconds=%.2f ops_per_s=%.0f p50_us=%.1f "
	    "p99_us=%.1f p999_us=%.1f\n",
	    name, nsamples, elapsed, (double)nsamples / elapsed, pct(0.50), pct(0.99), pct(0.999));
}

/* Runs OP until --seconds have passed, one sample per call. */
static void loop(const char *name, int (*op)(void *), void *arg)
{
	uint64_t t0 = now_ns(), end = t0 + (uint64_t)(seconds * 1e9), s;

	while ((s = now_ns()) < end && nsamples < MAX_SAMPLES) {
		if (op(arg) < 0)
			die(name);
		samples[nsamples++] = now_ns() - s;
	}
	report(name, (double)(now_ns() - t0) / 1e9);
}

static int fsync_op(void *arg)
{
	static char block[4096];
	int fd = *(int *)arg;

	if (pwrite(fd, block, sizeof(block), 0) != (ssize_t)sizeof(block))
		return -1;
	return fdatasync(fd);
}

static void probe_fsync(const char *dir)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/qfsprobe.fsync.XXXXXX", dir);
	fd = mkstemp(path);
	if (fd < 0)
		die(path);
	unlink(path);
	if (fsync_op(&fd) < 0) /* the block exists before the measured overwrites */
		die("fdatasync");
	loop("fsync", fsync_op, &fd);
	close(fd);
}

static int tcp_op(void *arg)
{
	int fd = *(int *)arg;
	char buf[64] = {0};
	size_t got = 0;

	if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
		return -1;
	while (got < sizeof(buf)) {
		ssize_t n = read(fd, buf + got, sizeof(buf) - got);

		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

static void probe_tcp(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)listen_port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	int one = 1, ls = socket(AF_INET, SOCK_STREAM, 0), fd, status;
	pid_t child;

	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ls, 1) < 0 ||
	    getsockname(ls, (struct sockaddr *)&a, &alen) < 0)
		die("listen");
	child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) { /* the echo process */
		char buf[64];
		ssize_t n;
		int c = accept(ls, NULL, NULL);

		if (c < 0)
			_exit(1);
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		while ((n = read(c, buf, sizeof(buf))) > 0)
			if (write(c, buf, (size_t)n) != n)
				_exit(1);
		_exit(0);
	}
	close(ls);
	if (via_port)
		a.sin_port = htons((uint16_t)via_port);
	/* A delay proxy (--via) listens once it has seen our port listening: retry for 2 s. */
	for (int tries = 0;; tries++) {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0)
			die("socket");
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
			break;
		if (errno != ECONNREFUSED || !via_port || tries >= 200)
			die("connect");
		close(fd);
		usleep(10000);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	loop("tcp-rtt", tcp_op, &fd);
	close(fd);
	waitpid(child, &status, 0);
}

static int fuse_op(void *arg)
{
	char buf[16];

	return getxattr((const char *)arg, "user.noop", buf, sizeof(buf)) < 0 ? -1 : 0;
}

static void probe_fuse(const char *mount)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/f", mount);
	loop("fuse-rtt", fuse_op, path);
}

/* ---- fuse-write: N writers at once ---- */

struct writer {
	pthread_t th;
	char path[4096];
	uint64_t end;
	uint64_t *samples; /* this writer's, MAX_SAMPLES / nclients at most */
	size_t n, cap;
	int err;
};

static void *writer_loop(void *arg)
{
	static const char value[1024];
	struct writer *w = arg;
	uint64_t s;

	while ((s = now_ns()) < w->end && w->n < w->cap) {
		int fd = open(w->path, in_place ? O_WRONLY : O_WRONLY | O_TRUNC);

		if (fd < 0 || write(fd, value, sizeof(value)) != (ssize_t)sizeof(value) ||
		    close(fd) < 0) {
			w->err = errno;
			break;
		}
		w->samples[w->n++] = now_ns() - s;
	}
	return NULL;
}

static void probe_fuse_write(const char *mount)
{
	struct writer *ws = calloc((size_t)nclients, sizeof(*ws));
	uint64_t t0;

	if (!ws)
		abort();
	t0 = now_ns();
	for (int i = 0; i < nclients; i++) {
		struct writer *w = &ws[i];

		snprintf(w->path, sizeof(w->path), "%s/w%d", mount, hot ? 0 : i);
		w->end = t0 + (uint64_t)(seconds * 1e9);
		w->cap = MAX_SAMPLES / (size_t)nclients;
		w->samples = samples + (size_t)i * w->cap;
		if (pthread_create(&w->th, NULL, writer_loop, w) != 0)
			die("pthread_create");
	}
	for (int i = 0; i < nclients; i++)
		pthread_join(ws[i].th, NULL);
	double elapsed = (double)(now_ns() - t0) / 1e9;
	for (int i = 0; i < nclients; i++) {
		if (ws[i].err) {
			errno = ws[i].err;
			die(ws[i].path);
		}
		memmove(samples + nsamples, ws[i].samples, ws[i].n * sizeof(*samples));
		nsamples += ws[i].n;
	}
	free(ws);
	report(nclients > 1 ? "fuse-write-par" : "fuse-write", elapsed);
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "", *arg = NULL;
	int i = 2;

	if (strcmp(what, "fsync") == 0 || strcmp(what, "fuse") == 0 ||
	    strcmp(what, "fuse-write") == 0) {
		if (argc < 3)
			goto usage;
		arg = argv[i++];
	}
	for (; i < argc; i++) {
		if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
			listen_port = atoi(argv[++i]);
		else if (strcmp(argv[i], "--via") == 0 && i + 1 < argc)
			via_port = atoi(argv[++i]);
		else if (strcmp(argv[i], "--clients") == 0 && i + 1 < argc)
			nclients = atoi(argv[++i]);
		else if (strcmp(argv[i], "--hot") == 0)
			hot = 1;
		else if (strcmp(argv[i], "--in-place") == 0)
			in_place = 1;
		else
			goto usage;
	}
	if (seconds <= 0 || nclients < 1 || nclients > 4096)
		goto usage;
	samples = malloc(MAX_SAMPLES * sizeof(*samples));
	if (!samples)
		abort();
	if (strcmp(what, "fsync") == 0)
		probe_fsync(arg);
	else if (strcmp(what, "tcp") == 0)
		probe_tcp();
	else if (strcmp(what, "fuse") == 0)
		probe_fuse(arg);
	else if (strcmp(what, "fuse-write") == 0)
		probe_fuse_write(arg);
	else
		goto usage;
	return 0;
usage:
	fprintf(stderr, "usage: qfsprobe fsync DIR | tcp [--listen P --via Q] | fuse MOUNT | "
			"fuse-write MOUNT [--clients N] [--hot] [--in-place]  [--seconds S]\n");
	return 2;
}
