/*
 * fclient: a client of the fault campaign (tools/faults). It acts on one quorumfs mount exactly as
 * a user does (open/read/write/close, xattrs, .zk/sync, .zk/sequential, quorumctl lock) and records
 * every operation's invocation and completion in qfs-check's history format (tools/check/README.md),
 * one write(2) per record on an O_APPEND file, so that a kill leaves whole lines. Register clients
 * also hold read descriptors across their later operations and check that each keeps its version.
 *
 *   fclient run --work reg|queue|lock|eph --mount M --proc P --out FILE --seconds S --seed N
 *               [--keys K] [--qfsctl PATH] [--ops N] [--pause-ms MS]
 *   fclient lock-body MOUNT P LOGFILE          (run by quorumctl lock: one fenced increment)
 *   fclient check-queue HIST NAMES             (created names unique, in real-time order, none lost)
 *   fclient check-lock LOG FINAL               (no two holders at once; the fenced counter adds up)
 *
 * Outcomes: an error before the request could reach the cluster (open, setxattr, a dead mount) is
 * "fail" (no effect); ESTALE on a conditional write is "fail err=badversion"; ENOBUFS is "fail"
 * (never applied, README); any other error of the write itself (ETIMEDOUT, EIO, ENOTCONN) is
 * "info": possibly applied. The check modes print one key=value line and exit 1 on anomalies.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define MAXV 256

static volatile sig_atomic_t stop;
static int out_fd = -1;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("fclient: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

/* One record, one write(2). */
static void rec(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= (int)sizeof(buf) - 1)
		die("record too long");
	buf[n++] = '\n';
	if (write(out_fd, buf, (size_t)n) != n)
		die("cannot write the history: %s", strerror(errno));
}

/* xorshift64*: the seeded schedule of one client */
static uint64_t rng;
static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717ULL;
}

/* Read all of PATH (up to MAXV-1 bytes) into BUF. Returns length or -errno. */
/* The last op found no mount (the node is down): the run loop waits a little before the next. */
static int dead_mount;
/* The last op's outcome was unknown: the run loop backs off (200 ms), as a real client would, so
 * that a node failing writes at once does not fill the history with ops that may apply any time
 * later (each multiplies the checker's search). */
static int backoff;

static void note_err(int e)
{
	if (e == ENOENT || e == ENOTCONN || e == ECONNABORTED)
		dead_mount = 1;
}

/* The whole content of FD from offset 0 into BUF (at most MAXV-1 bytes). Length or -errno. */
static int pread_all(int fd, char *buf)
{
	size_t len = 0;
	ssize_t n;

	while ((n = pread(fd, buf + len, MAXV - 1 - len, (off_t)len)) > 0)
		len += (size_t)n;
	if (n < 0)
		return -errno;
	buf[len] = 0;
	return (int)len;
}

/* read(2), not pread: .zk/sync and the other control files are streams */
static int read_file(const char *path, char *buf)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;
	size_t len = 0;

	if (fd < 0)
		return -errno;
	while ((n = read(fd, buf + len, MAXV - 1 - len)) > 0)
		len += (size_t)n;
	if (n < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	close(fd);
	buf[len] = 0;
	return (int)len;
}

static long get_version(const char *path)
{
	char v[32];
	ssize_t n = getxattr(path, "user.zk.version", v, sizeof(v) - 1);

	if (n < 0)
		return -errno;
	v[n] = 0;
	return strtol(v, NULL, 10);
}

/*
 * Value and version of PATH read as one: data, version, data again; values are unique per write,
 * so equal data around the version read means no write came in between. Returns 0, -EAGAIN (kept
 * changing), or -errno.
 */
static int read_reg(const char *path, char *val, long *ver)
{
	char again[MAXV];
	int i, rv;

	for (i = 0; i < 8; i++) {
		rv = read_file(path, val);
		if (rv < 0)
			return rv;
		*ver = get_version(path);
		if (*ver < 0)
			return (int)*ver;
		rv = read_file(path, again);
		if (rv < 0)
			return rv;
		if (strcmp(val, again) == 0)
			return 0;
	}
	return -EAGAIN;
}

static int do_sync(const char *mount)
{
	char p[4096], b[MAXV];
	int rv;

	snprintf(p, sizeof(p), "%s/.zk/sync", mount);
	rv = read_file(p, b);
	return rv < 0 ? rv : 0;
}

static const char *ename(int e)
{
	switch (e) {
	case ETIMEDOUT: return "timeout";
	case EIO: return "eio";
	case ENOTCONN: return "enotconn";
	case ENOENT: return "enoent";
	case ENOBUFS: return "enobufs";
	case ESTALE: return "badversion";
	case EINTR: return "eintr";
	case EAGAIN: return "changing";
	default: return "errno";
	}
}

/* Write VAL to PATH as one version, with a version condition when EXPECT >= 0. INPLACE: as a
 * program overwriting the node in place (README "Writers of one node at once"): an open without
 * O_TRUNC and one pwrite at offset 0; every value has the same length, so the node then holds
 * exactly VAL, and writers of one register on one mount commit side by side. */
static void op_write(unsigned p, uint64_t op, const char *path, const char *key, const char *val,
		     long expect, int inplace)
{
	int fd;
	ssize_t n;
	int e;

	if (expect >= 0)
		rec("inv p=%u op=%" PRIu64 " t=%" PRId64 " key=%s f=cas expect=%ld value=%s", p, op,
		    now_ns(), key, expect, val);
	else
		rec("inv p=%u op=%" PRIu64 " t=%" PRId64 " key=%s f=write value=%s", p, op, now_ns(),
		    key, val);
	fd = open(path, inplace ? O_WRONLY : O_WRONLY | O_TRUNC);
	if (fd < 0) {
		e = errno;
		note_err(e);
		rec("fail p=%u op=%" PRIu64 " t=%" PRId64 " err=%s", p, op, now_ns(), ename(e));
		return;
	}
	if (expect >= 0) {
		char v[32];
		int vl = snprintf(v, sizeof(v), "%ld", expect);

		if (fsetxattr(fd, "user.zk.expect_version", v, (size_t)vl, 0) != 0) {
			e = errno;
			close(fd);
			rec("fail p=%u op=%" PRIu64 " t=%" PRId64 " err=%s", p, op, now_ns(), ename(e));
			return;
		}
	}
	n = inplace ? pwrite(fd, val, strlen(val), 0) : write(fd, val, strlen(val));
	e = errno;
	if (n == (ssize_t)strlen(val))
		rec("ok p=%u op=%" PRIu64 " t=%" PRId64, p, op, now_ns());
	else if (n < 0 && e == ESTALE && expect >= 0)
		rec("fail p=%u op=%" PRIu64 " t=%" PRId64 " err=badversion", p, op, now_ns());
	else if (n < 0 && e == ENOBUFS)
		rec("fail p=%u op=%" PRIu64 " t=%" PRId64 " err=enobufs", p, op, now_ns());
	else {
		backoff = 1;
		rec("info p=%u op=%" PRIu64 " t=%" PRId64 " err=%s", p, op, now_ns(),
		    n < 0 ? ename(e) : "short");
	}
	close(fd);
}

static void op_read(unsigned p, uint64_t op, const char *mount, const char *path, const char *key,
		    int fresh)
{
	char val[MAXV];
	long ver;
	int rv;

	rec("inv p=%u op=%" PRIu64 " t=%" PRId64 " key=%s f=%s", p, op, now_ns(), key,
	    fresh ? "read" : "lread");
	rv = fresh ? do_sync(mount) : 0;
	if (rv == 0)
		rv = read_reg(path, val, &ver);
	if (rv == 0)
		rec("ok p=%u op=%" PRIu64 " t=%" PRId64 " value=%s version=%ld", p, op, now_ns(), val,
		    ver);
	else {
		note_err(-rv);
		rec("fail p=%u op=%" PRIu64 " t=%" PRId64 " err=%s", p, op, now_ns(), ename(-rv));
	}
}

/*
 * Readers that keep their descriptor: a held descriptor must go on reading the whole version it
 * opened, byte for byte, however many writes (on this mount or elsewhere) come after it; that is
 * what page-cache reads promise (README "Reads"). A client holds at most HELD of them, each for a
 * few of its later operations. Their first read is logged as "# held" (tools/faults checks that
 * the value was written by someone); a reread that differs is "# anomaly held-read".
 */
#define HELD 2
static struct held {
	int fd;
	int left; /* operations to go before it is closed */
	size_t len;
	char key[32];
	char val[MAXV];
} holds[HELD] = {{.fd = -1}, {.fd = -1}};

static void held_close(struct held *h)
{
	close(h->fd);
	h->fd = -1;
}

/* Opens PATH for reading and keeps the descriptor for LEFT more operations of this client. */
static void held_open(unsigned p, const char *path, const char *key, int left)
{
	struct held *h = NULL;
	int rv;

	for (int i = 0; i < HELD; i++)
		if (holds[i].fd < 0)
			h = &holds[i];
	if (!h)
		return;
	h->fd = open(path, O_RDONLY);
	if (h->fd < 0) {
		note_err(errno);
		return;
	}
	rv = pread_all(h->fd, h->val);
	if (rv < 0) {
		note_err(-rv);
		held_close(h);
		return;
	}
	h->len = (size_t)rv;
	h->left = left;
	snprintf(h->key, sizeof(h->key), "%s", key);
	rec("# held p=%u key=%s value=%s t=%" PRId64, p, key, h->val, now_ns());
}

/* Rereads every held descriptor; closes those whose time is up, or whose mount went away. */
static void held_step(unsigned p)
{
	char again[MAXV];

	for (int i = 0; i < HELD; i++) {
		struct held *h = &holds[i];
		int rv;

		if (h->fd < 0)
			continue;
		rv = pread_all(h->fd, again);
		if (rv < 0) { /* a dead mount or a lost connection: not the reader's version */
			note_err(-rv);
			held_close(h);
			continue;
		}
		if ((size_t)rv != h->len || memcmp(again, h->val, h->len) != 0) {
			fprintf(stderr, "anomaly held-read: %s opened as '%s' (%zu bytes) reread as '%s' "
					"(%d bytes)\n",
				h->key, h->val, h->len, again, rv);
			rec("# anomaly held-read p=%u key=%s t=%" PRId64, p, h->key, now_ns());
			held_close(h);
			continue;
		}
		if (--h->left <= 0)
			held_close(h);
	}
}

static void op_create_seq(unsigned p, uint64_t op, const char *mount)
{
	char path[4096], fdp[64], name[MAXV];
	ssize_t n;
	int fd, e;

	rec("inv p=%u op=%" PRIu64 " t=%" PRId64 " key=/q f=create-seq", p, op, now_ns());
	snprintf(path, sizeof(path), "%s/.zk/sequential/q/item-", mount);
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	if (fd < 0) {
		e = errno;
		note_err(e);
		/* the create may have been proposed: only a missing parent (dead mount) is sure */
		if (e == ENOENT || e == ENOBUFS) {
			rec("fail p=%u op=%" PRIu64 " t=%" PRId64 " err=%s", p, op, now_ns(), ename(e));
			return;
		}
		backoff = 1;
		rec("info p=%u op=%" PRIu64 " t=%" PRId64 " err=%s", p, op, now_ns(), ename(e));
		return;
	}
	snprintf(fdp, sizeof(fdp), "/proc/self/fd/%d", fd);
	n = getxattr(fdp, "user.zk.path", name, sizeof(name) - 1);
	e = errno;
	close(fd);
	if (n <= 0) {
		/* created, name unknown: the check sees it as a node nobody claims, allowed by this */
		rec("info p=%u op=%" PRIu64 " t=%" PRId64 " err=noname-%s", p, op, now_ns(), ename(e));
		return;
	}
	name[n] = 0;
	rec("ok p=%u op=%" PRIu64 " t=%" PRId64 " value=%s", p, op, now_ns(), name);
}

/*
 * One ephemeral registration: create .zk/ephemeral/eph/pP-O (a session held by this open file),
 * hold it HOLD ms, checking every 100 ms that a node whose session is alive is still there: after
 * a sync, the node is listed, or writing through the descriptor fails (the session expired: the
 * node may go). A node missing while a write through its descriptor then succeeds is the anomaly.
 * Closing ends the session; the campaign checks at the end that no registration is left.
 */
static void op_eph(unsigned p, uint64_t op, const char *mount, long hold_ms)
{
	char path[4096], node[4096], key[64];
	int64_t end;
	int fd, e;

	snprintf(key, sizeof(key), "/eph/p%u-%" PRIu64, p, op);
	snprintf(path, sizeof(path), "%s/.zk/ephemeral%s", mount, key);
	snprintf(node, sizeof(node), "%s%s", mount, key);
	rec("inv p=%u op=%" PRIu64 " t=%" PRId64 " key=%s f=create-eph", p, op, now_ns(), key);
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	if (fd < 0) {
		e = errno;
		note_err(e);
		rec("info p=%u op=%" PRIu64 " t=%" PRId64 " err=%s", p, op, now_ns(), ename(e));
		backoff = 1;
		return;
	}
	rec("ok p=%u op=%" PRIu64 " t=%" PRId64, p, op, now_ns());
	end = now_ns() + hold_ms * 1000000;
	while (!stop && now_ns() < end) {
		struct timespec ts = {0, 100 * 1000 * 1000};
		int there;

		nanosleep(&ts, NULL);
		if (do_sync(mount) != 0)
			continue;
		there = access(node, F_OK) == 0;
		e = errno;
		if (there)
			continue;
		if (e == ENOENT && write(fd, "x", 1) == 1) {
			fprintf(stderr, "anomaly ephemeral-vanished: %s missing while its session lives\n",
				key);
			rec("# anomaly ephemeral-vanished p=%u key=%s t=%" PRId64, p, key, now_ns());
		}
		break; /* the session is gone (or the mount): stop holding */
	}
	close(fd);
}

/* One lock round: quorumctl lock MOUNT/locks/L -- fclient lock-body MOUNT P LOG. */
static void op_lock(const char *self, const char *qfsctl, const char *mount, unsigned p,
		    const char *log)
{
	char lk[4096], ps[16];
	pid_t pid;
	int st;

	snprintf(lk, sizeof(lk), "%s/locks/L", mount);
	snprintf(ps, sizeof(ps), "%u", p);
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		execl(qfsctl, qfsctl, "lock", lk, "--", self, "lock-body", mount, ps, log,
		      (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			die("waitpid: %s", strerror(errno));
		if (stop)
			kill(pid, SIGTERM);
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		dead_mount = 1; /* the lock was not had: do not spin on a dead mount */
}

static int lock_body(const char *mount, unsigned p, const char *log)
{
	char path[4096], val[MAXV], nv[32];
	int64_t t0, t1;
	long ver;
	int rv, fd, held;
	ssize_t n;
	const char *res, *node;

	out_fd = open(log, O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (out_fd < 0)
		die("%s: %s", log, strerror(errno));
	t0 = now_ns();
	snprintf(path, sizeof(path), "%s/lockctr", mount);
	/* a fresh read: the previous holder may have written through another node */
	rv = do_sync(mount);
	if (rv == 0)
		rv = read_reg(path, val, &ver);
	if (rv != 0) {
		rec("lock p=%u acq=%" PRId64 " rel=%" PRId64 " inc=none err=%s", p, t0, now_ns(),
		    ename(-rv));
		return 0;
	}
	snprintf(nv, sizeof(nv), "%ld", strtol(val, NULL, 10) + 1);
	if (stop) {
		/* quorumctl's SIGTERM: the lock node is gone, so is the lock */
		rec("lock p=%u acq=%" PRId64 " rel=%" PRId64 " inc=none err=lost", p, t0, now_ns());
		return 0;
	}
	fd = open(path, O_WRONLY | O_TRUNC);
	if (fd < 0) {
		rec("lock p=%u acq=%" PRId64 " rel=%" PRId64 " inc=none err=%s", p, t0, now_ns(),
		    ename(errno));
		return 0;
	}
	{
		char v[32];
		int vl = snprintf(v, sizeof(v), "%ld", ver);

		if (fsetxattr(fd, "user.zk.expect_version", v, (size_t)vl, 0) != 0) {
			rec("lock p=%u acq=%" PRId64 " rel=%" PRId64 " inc=none err=%s", p, t0,
			    now_ns(), ename(errno));
			close(fd);
			return 0;
		}
	}
	n = write(fd, nv, strlen(nv));
	if (n == (ssize_t)strlen(nv))
		res = "ok";
	else if (n < 0 && errno == ESTALE)
		res = "badversion";
	else if (n < 0 && errno == ENOBUFS)
		res = "none";
	else
		res = "unknown";
	close(fd);
	t1 = now_ns();
	/* Did this holder still hold the lock after its increment? Its node still there after a
	 * sync (1), gone (0: its session expired during the hold, so another holder may have
	 * overlapped it), or unknown (-1: no sync possible) */
	held = -1;
	node = getenv("QUORUMCTL_NODE");
	if (node && do_sync(mount) == 0) {
		snprintf(path, sizeof(path), "%s%s", mount, node);
		if (access(path, F_OK) == 0)
			held = 1;
		else if (errno == ENOENT)
			held = 0;
	}
	rec("lock p=%u acq=%" PRId64 " rel=%" PRId64 " inc=%s value=%s mount=%s held_after=%d", p,
	    t0, t1, res, nv, mount, held);
	return 0;
}

static int run(int argc, char **argv)
{
	const char *work = "reg", *mount = NULL, *out = NULL, *qfsctl = "quorumctl";
	unsigned p = 0, keys = 3;
	double seconds = 10;
	uint64_t seed = 1, maxops = 1000000, op;
	long pause_ms = 0;
	int64_t end;
	int i;

	for (i = 2; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--work") == 0)
			work = argv[i + 1];
		else if (strcmp(argv[i], "--mount") == 0)
			mount = argv[i + 1];
		else if (strcmp(argv[i], "--proc") == 0)
			p = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--out") == 0)
			out = argv[i + 1];
		else if (strcmp(argv[i], "--seconds") == 0)
			seconds = strtod(argv[i + 1], NULL);
		else if (strcmp(argv[i], "--seed") == 0)
			seed = strtoull(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--keys") == 0)
			keys = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--qfsctl") == 0)
			qfsctl = argv[i + 1];
		else if (strcmp(argv[i], "--ops") == 0)
			maxops = strtoull(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--pause-ms") == 0)
			pause_ms = strtol(argv[i + 1], NULL, 10);
		else
			die("unknown option %s", argv[i]);
	}
	if (i != argc || !mount || !out || p == 0 || keys == 0 || keys > 64)
		die("usage: fclient run --work reg|queue|lock|eph --mount M --proc P --out FILE "
		    "[--seconds S] [--seed N] [--keys K] [--qfsctl PATH] [--ops N] [--pause-ms MS]");
	out_fd = open(out, O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (out_fd < 0)
		die("%s: %s", out, strerror(errno));
	rng = seed * 0x9E3779B97F4A7C15ULL + p + 1;
	end = now_ns() + (int64_t)(seconds * 1e9);
	for (op = 1; op <= maxops && !stop && now_ns() < end; op++) {
		if (dead_mount || backoff || pause_ms > 0) {
			long ms = backoff ? 200 : dead_mount && pause_ms < 50 ? 50 : pause_ms;
			struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

			dead_mount = 0;
			backoff = 0;
			nanosleep(&ts, NULL);
		}
		if (strcmp(work, "reg") == 0) {
			char key[32], path[4096], val[64];
			unsigned r = (unsigned)(rnd() % 100);
			long ver;

			snprintf(key, sizeof(key), "/reg/k%u", (unsigned)(rnd() % keys));
			snprintf(path, sizeof(path), "%s%s", mount, key);
			/* one length for every value: in-place writes replace all of it */
			snprintf(val, sizeof(val), "p%03uo%010" PRIu64, p, op);
			held_step(p);
			if (rnd() % 8 == 0)
				held_open(p, path, key, 1 + (int)(rnd() % 6));
			if (r < 25) {
				op_read(p, op, mount, path, key, 1);
			} else if (r < 50) {
				op_read(p, op, mount, path, key, 0);
			} else if (r < 80) {
				op_write(p, op, path, key, val, -1, r % 2);
			} else {
				/* compare-and-set on the version this client sees now */
				ver = get_version(path);
				op_write(p, op, path, key, val, ver < 0 ? 0 : ver, r % 2);
			}
		} else if (strcmp(work, "queue") == 0) {
			op_create_seq(p, op, mount);
		} else if (strcmp(work, "eph") == 0) {
			op_eph(p, op, mount, 200 + (long)(rnd() % 2800));
		} else if (strcmp(work, "lock") == 0) {
			op_lock(argv[0], qfsctl, mount, p, out);
		} else {
			die("unknown workload %s", work);
		}
	}
	close(out_fd);
	return 0;
}

/* ---- checks ---- */

static const char *field(const char *line, const char *name, char *buf, size_t cap)
{
	size_t nl = strlen(name);
	const char *s = line;

	while ((s = strstr(s, name)) != NULL) {
		if ((s == line || s[-1] == ' ') && s[nl] == '=') {
			size_t n = strcspn(s + nl + 1, " \t\n");

			if (n >= cap)
				n = cap - 1;
			memcpy(buf, s + nl + 1, n);
			buf[n] = 0;
			return buf;
		}
		s += nl;
	}
	return NULL;
}

struct qop {
	unsigned p;
	uint64_t op;
	int64_t inv, done;
	int st; /* 0 pending, 1 ok, 2 fail, 3 info */
	long ctr;
	char name[MAXV];
};

static long seq_of(const char *name)
{
	size_t n = strlen(name);

	if (n < 10)
		return -1;
	return strtol(name + n - 10, NULL, 10);
}

/* Orders for check_queue's sorts (indices into a struct qop array, or strings). */
static const struct qop *qsort_base;

static int by_name(const void *a, const void *b)
{
	return strcmp(qsort_base[*(const size_t *)a].name, qsort_base[*(const size_t *)b].name);
}

static int by_done(const void *a, const void *b)
{
	int64_t x = qsort_base[*(const size_t *)a].done, y = qsort_base[*(const size_t *)b].done;

	return x < y ? -1 : x > y;
}

static int by_inv(const void *a, const void *b)
{
	int64_t x = qsort_base[*(const size_t *)a].inv, y = qsort_base[*(const size_t *)b].inv;

	return x < y ? -1 : x > y;
}

static int by_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int check_queue(const char *hist, const char *names)
{
	FILE *f = fopen(hist, "r"), *g = fopen(names, "r");
	char line[2048], b[MAXV], *nl;
	struct qop *q = NULL;
	size_t nq = 0, cap = 0, i, j;
	unsigned long anomalies = 0, nok = 0, nunk = 0, lost = 0, extra = 0, dup = 0, order = 0;

	if (!f || !g)
		die("check-queue: cannot open %s or %s", hist, names);
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "inv ", 4) == 0) {
			if (!strstr(line, "f=create-seq"))
				continue;
			if (nq == cap) {
				cap = cap ? 2 * cap : 1024;
				q = realloc(q, cap * sizeof(*q));
				if (!q)
					die("out of memory");
			}
			memset(&q[nq], 0, sizeof(q[nq]));
			q[nq].p = (unsigned)strtoul(field(line, "p", b, sizeof(b)), NULL, 10);
			q[nq].op = strtoull(field(line, "op", b, sizeof(b)), NULL, 10);
			q[nq].inv = strtoll(field(line, "t", b, sizeof(b)), NULL, 10);
			q[nq].done = INT64_MAX;
			q[nq].ctr = -1;
			nq++;
		} else if (!strncmp(line, "ok ", 3) || !strncmp(line, "fail ", 5) ||
			   !strncmp(line, "info ", 5)) {
			unsigned p;
			uint64_t op;

			if (!field(line, "p", b, sizeof(b)))
				continue;
			p = (unsigned)strtoul(b, NULL, 10);
			op = strtoull(field(line, "op", b, sizeof(b)), NULL, 10);
			for (i = nq; i-- > 0;)
				if (q[i].p == p && q[i].op == op)
					break;
			if (i == (size_t)-1)
				continue;
			q[i].st = line[0] == 'o' ? 1 : line[0] == 'f' ? 2 : 3;
			if (q[i].st == 1) {
				q[i].done = strtoll(field(line, "t", b, sizeof(b)), NULL, 10);
				field(line, "value", q[i].name, sizeof(q[i].name));
				q[i].ctr = seq_of(q[i].name);
				nok++;
			} else if (q[i].st == 3) {
				nunk++;
			}
		}
	}
	for (i = 0; i < nq; i++)
		if (q[i].st == 0)
			nunk++;
	/* unique names; a create acknowledged before another was invoked has the lower counter
	 * (sorted, so that hour-long histories check in seconds) */
	{
		size_t *byn = malloc((nok + 1) * sizeof(*byn)), *byd = malloc((nok + 1) * sizeof(*byd));
		size_t *byi = malloc((nok + 1) * sizeof(*byi)), n = 0, k, a = 0, best = 0;
		long maxc = -1;

		if (!byn || !byd || !byi)
			die("out of memory");
		for (i = 0; i < nq; i++)
			if (q[i].st == 1)
				byn[n] = byd[n] = byi[n] = i, n++;
		qsort_base = q;
		qsort(byn, n, sizeof(*byn), by_name);
		qsort(byd, n, sizeof(*byd), by_done);
		qsort(byi, n, sizeof(*byi), by_inv);
		for (k = 1; k < n; k++) {
			i = byn[k - 1];
			j = byn[k];
			if (strcmp(q[i].name, q[j].name) == 0) {
				fprintf(stderr, "anomaly queue-duplicate: %s created by p=%u op=%" PRIu64
						" and p=%u op=%" PRIu64 "\n",
					q[i].name, q[i].p, q[i].op, q[j].p, q[j].op);
				dup++;
			}
		}
		for (k = 0; k < n; k++) {
			j = byi[k];
			/* every create acknowledged before J was invoked: the highest counter */
			while (a < n && q[byd[a]].done < q[j].inv) {
				if (q[byd[a]].ctr > maxc) {
					maxc = q[byd[a]].ctr;
					best = byd[a];
				}
				a++;
			}
			if (maxc >= 0 && maxc >= q[j].ctr) {
				i = best;
				fprintf(stderr, "anomaly queue-order: %s (p=%u op=%" PRIu64
						") acknowledged before %s (p=%u op=%" PRIu64 ") was invoked\n",
					q[i].name, q[i].p, q[i].op, q[j].name, q[j].p, q[j].op);
				order++;
			}
		}
		free(byn);
		free(byd);
		free(byi);
	}
	/* every acknowledged name is in the final listing; a listed name is acknowledged or of an
	 * unknown create (at most as many as those) */
	{
		char **have = NULL;
		size_t nh = 0, hcap = 0;

		while (fgets(line, sizeof(line), g)) {
			if ((nl = strchr(line, '\n')))
				*nl = 0;
			if (!*line)
				continue;
			if (nh == hcap) {
				hcap = hcap ? 2 * hcap : 1024;
				have = realloc(have, hcap * sizeof(*have));
				if (!have)
					die("out of memory");
			}
			have[nh++] = strdup(line);
		}
		char *used = calloc(nh + 1, 1);

		if (!used)
			die("out of memory");
		if (nh)
			qsort(have, nh, sizeof(*have), by_str);
		for (i = 0; i < nq; i++) {
			const char *base;
			char **hit;

			if (q[i].st != 1)
				continue;
			base = strrchr(q[i].name, '/');
			base = base ? base + 1 : q[i].name;
			hit = nh ? bsearch(&base, have, nh, sizeof(*have), by_str) : NULL;
			j = hit ? (size_t)(hit - have) : nh;
			if (j == nh || used[j]) {
				fprintf(stderr, "anomaly queue-lost: acknowledged %s (p=%u op=%" PRIu64
						") is missing\n",
					q[i].name, q[i].p, q[i].op);
				lost++;
			} else {
				used[j] = 1;
			}
		}
		for (j = 0; j < nh; j++) {
			if (!used[j])
				extra++;
			free(have[j]);
		}
		free(have);
		free(used);
		if (extra > nunk) {
			fprintf(stderr, "anomaly queue-extra: %lu unclaimed nodes, only %lu creates of "
					"unknown outcome\n",
				extra, nunk);
			anomalies++;
		}
	}
	anomalies += dup + order + lost;
	printf("queue_ops=%zu queue_ok=%lu queue_unknown=%lu queue_unclaimed=%lu queue_anomalies=%lu\n",
	       nq, nok, nunk, extra, anomalies);
	fclose(f);
	fclose(g);
	free(q);
	return anomalies ? 1 : 0;
}

struct hold {
	unsigned p;
	int64_t acq, rel;
	char inc[16];
	char mount[512];
	int held_after; /* 1: its lock node was still there after its increment, 0: gone, -1: ? */
	long value;
	unsigned overlaps; /* holds of others that overlap this one */
};

/* A fault window from the harness: "fault from=NS to=NS mounts=M1,M2" (CLOCK_MONOTONIC). */
struct fwin {
	int64_t from, to;
	char mounts[2048];
};

/* Whether a fault touched MOUNT's node during [a, b]: a holder whose node was paused, cut off
 * or restarted can lose its session (and so the lock) without knowing it until the node runs
 * or hears from the cluster again; ZooKeeper's locks have the same window, which is why the
 * counter is fenced. */
static int faulted(const struct fwin *w, size_t nw, const char *mount, int64_t a, int64_t b)
{
	size_t i, ml = strlen(mount);

	for (i = 0; ml && i < nw; i++) {
		const char *s = w[i].mounts;

		if (w[i].from > b || w[i].to < a)
			continue;
		while ((s = strstr(s, mount)) != NULL) {
			if ((s == w[i].mounts || s[-1] == ',') && (s[ml] == ',' || s[ml] == 0))
				return 1;
			s += ml;
		}
	}
	return 0;
}

/* Whether holder H may have lost its lock during its hold: its node was gone after its increment,
 * or it could not tell and a fault touched its node. */
static int may_have_lost(const struct hold *h, const struct fwin *w, size_t nw)
{
	return h->held_after == 0 ||
	       (h->held_after < 0 && faulted(w, nw, h->mount, h->acq, h->rel));
}

static int check_lock(const char *log, const char *final, const char *faults)
{
	struct fwin *w = NULL;
	size_t nw = 0, wcap = 0;
	FILE *f = fopen(log, "r");
	char line[1024], b[64];
	struct hold *h = NULL;
	size_t n = 0, cap = 0, i, j;
	unsigned long ok = 0, unk = 0, badver = 0, overlap = 0, excused = 0, anomalies = 0;
	long fin = strtol(final, NULL, 10);

	if (!f)
		die("check-lock: cannot open %s", log);
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "lock ", 5) != 0)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 256;
			h = realloc(h, cap * sizeof(*h));
			if (!h)
				die("out of memory");
		}
		h[n].p = (unsigned)strtoul(field(line, "p", b, sizeof(b)), NULL, 10);
		h[n].acq = strtoll(field(line, "acq", b, sizeof(b)), NULL, 10);
		h[n].rel = strtoll(field(line, "rel", b, sizeof(b)), NULL, 10);
		field(line, "inc", h[n].inc, sizeof(h[n].inc));
		if (!field(line, "mount", h[n].mount, sizeof(h[n].mount)))
			h[n].mount[0] = 0;
		h[n].held_after = field(line, "held_after", b, sizeof(b)) ? atoi(b) : -1;
		h[n].value = field(line, "value", b, sizeof(b)) ? strtol(b, NULL, 10) : -1;
		if (!strcmp(h[n].inc, "ok"))
			ok++;
		else if (!strcmp(h[n].inc, "unknown"))
			unk++;
		else if (!strcmp(h[n].inc, "badversion"))
			badver++;
		n++;
	}
	fclose(f);
	f = faults ? fopen(faults, "r") : NULL;
	if (faults && !f)
		die("check-lock: cannot open %s", faults);
	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "fault ", 6) != 0)
			continue;
		if (nw == wcap) {
			wcap = wcap ? 2 * wcap : 32;
			w = realloc(w, wcap * sizeof(*w));
			if (!w)
				die("out of memory");
		}
		w[nw].from = strtoll(field(line, "from", b, sizeof(b)) ? b : "0", NULL, 10);
		w[nw].to = strtoll(field(line, "to", b, sizeof(b)) ? b : "0", NULL, 10);
		if (!field(line, "mounts", w[nw].mounts, sizeof(w[nw].mounts)))
			w[nw].mounts[0] = 0;
		nw++;
	}
	if (f)
		fclose(f);
	for (i = 0; i < n; i++)
		h[i].overlaps = 0;
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			if (h[i].acq < h[j].rel && h[j].acq < h[i].rel) {
				overlap++;
				h[i].overlaps++;
				h[j].overlaps++;
				if (!strcmp(h[i].inc, "ok") && !strcmp(h[j].inc, "ok")) {
					/* either may be the stale one: the first if its
					 * session expired during its hold, the second if its
					 * session expired while it waited (it saw no lower
					 * child, and its own node gone only later) */
					if (may_have_lost(&h[i], w, nw) ||
					    may_have_lost(&h[j], w, nw)) {
						excused++;
						continue;
					}
					fprintf(stderr, "anomaly lock-overlap: p=%u and p=%u held the lock "
							"at once and both incremented, and neither is known "
							"to have lost its lock node (session) during its "
							"hold\n",
						h[i].p, h[j].p);
					anomalies++;
				}
			}
	/* fenced counter: every acknowledged increment counted once, unknown ones at most once;
	 * a refused increment (badversion) means another writer under the lock, which only an
	 * unknown increment applied late can explain */
	if (fin < (long)ok || fin > (long)(ok + unk)) {
		fprintf(stderr, "anomaly lock-counter: counter %ld, %lu acknowledged and %lu unknown "
				"increments\n",
			fin, ok, unk);
		anomalies++;
	}
	/* a refused increment is the fence at work when another holder overlapped (this holder's
	 * session expired while it was paused or cut off) or an unknown increment may have applied
	 * late; otherwise someone wrote the counter under a lock held alone */
	for (i = 0; i < n; i++)
		if (!strcmp(h[i].inc, "badversion") && h[i].overlaps == 0 && unk == 0) {
			fprintf(stderr, "anomaly lock-fence: p=%u's increment refused while it held "
					"the lock alone\n",
				h[i].p);
			anomalies++;
		}
	printf("lock_holds=%zu lock_inc_ok=%lu lock_inc_unknown=%lu lock_fenced=%lu "
	       "lock_overlaps=%lu lock_overlaps_lost=%lu lock_counter=%ld lock_anomalies=%lu\n",
	       n, ok, unk, badver, overlap, excused, fin, anomalies);
	free(h);
	free(w);
	return anomalies ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (argc >= 2 && strcmp(argv[1], "run") == 0)
		return run(argc, argv);
	if (argc == 5 && strcmp(argv[1], "lock-body") == 0)
		return lock_body(argv[2], (unsigned)strtoul(argv[3], NULL, 10), argv[4]);
	if (argc == 4 && strcmp(argv[1], "check-queue") == 0)
		return check_queue(argv[2], argv[3]);
	if ((argc == 4 || argc == 5) && strcmp(argv[1], "check-lock") == 0)
		return check_lock(argv[2], argv[3], argc == 5 ? argv[4] : NULL);
	if (argc == 2 && strcmp(argv[1], "now") == 0) {
		printf("%" PRId64 "\n", now_ns());
		return 0;
	}
	die("usage: fclient run ... | lock-body MOUNT P LOG | check-queue HIST NAMES | "
	    "check-lock LOG FINAL [FAULTS] | now");
	return 2;
}
