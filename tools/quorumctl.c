/*
 * quorumctl: a thin command-line client over a quorumfs mount. It only uses the mount (files,
 * extended attributes), so it works with any tool that can reach the mount point.
 *
 *   quorumctl status MOUNT          the node's .zk/status
 *   quorumctl sync MOUNT            ZooKeeper's sync: reads through MOUNT see every earlier write
 *   quorumctl get MOUNT/PATH        the node's data, byte for byte
 *   quorumctl set MOUNT/PATH DATA   replace the data in ONE write (one version); DATA "-": stdin
 *   quorumctl stat MOUNT/PATH       the node's stat, as zkCli prints it
 *   quorumctl set -v VERSION ...    conditional: only if the node's version is VERSION
 *   quorumctl rm [-v VERSION] MOUNT/PATH
 *
 * Conditions travel as the extended attribute user.zk.expect_version, set by this process on the
 * node (fsetxattr on the open descriptor for set, setxattr on the path for rm) right before the
 * write or unlink that consumes it: the daemon keys it by process and node, so concurrent callers
 * never see each other's. A mismatch fails that write/unlink with ESTALE and changes nothing; we
 * then print "version mismatch: expected X, actual Y" and exit 1.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define MAX_DATA     (1024 * 1024 - 1)
#define XATTR_EXPECT "user.zk.expect_version"
#define EXIT_USAGE   2

/* One line of usage per subcommand; "quorumctl CMD --help" prints its line and its text. */
struct cmd_help {
	const char *name;
	const char *usage;
	const char *text;
};

static const struct cmd_help helps[] = {
    {"status", "status MOUNT", "Print the node's .zk/status (key=value lines)."},
    {"sync", "sync MOUNT",
     "ZooKeeper's sync: return once this node has applied every write committed anywhere\n"
     "before the call (reads through MOUNT then see them all) and print the zxid reached.\n"
     "Fails (ETIMEDOUT, exit status 1) when the node cannot reach a majority in time.\n"
     "Reads MOUNT/.zk/sync."},
    {"get", "get MOUNT/PATH", "Print the node's data, byte for byte."},
    {"set", "set [-v VERSION] MOUNT/PATH DATA",
     "Replace the node's data in one write (one version); DATA '-' reads standard input.\n"
     "With -v, only if the node's version is VERSION: otherwise nothing changes, the\n"
     "message names the expected and the actual version, and the exit status is 1."},
    {"stat", "stat MOUNT/PATH", "Print the node's stat as zkCli does."},
    {"rm", "rm [-v VERSION] MOUNT/PATH",
     "Delete the node (it must have no children). With -v, only if its version is\n"
     "VERSION (as set -v)."},
    {"create", "create [-s] [-e] MOUNT/PATH [DATA]",
     "Create the node (its parent must exist) and print its path under MOUNT. -s: sequential\n"
     "(PATH gets the parent's counter appended, %010d). -e: ephemeral: the node lives while\n"
     "this command runs; it waits until its standard input ends or it is told to stop\n"
     "(SIGINT, SIGTERM), then the node is deleted; also when the mount's node is cut off\n"
     "from the cluster for longer than the session timeout. With DATA the node is created\n"
     "and then written (version 1)."},
    {"ls", "ls MOUNT/PATH", "List the node's children, one name per line, in name order."},
    {"lock", "lock MOUNT/PATH -- CMD [ARG...]",
     "Run CMD while holding the distributed lock PATH (ZooKeeper's recipe: an\n"
     "ephemeral-sequential child PATH/lock-N, waiting only on the child just before it, so\n"
     "a release wakes one waiter). PATH is created if missing. The lock is released when\n"
     "CMD exits or this process dies (CMD does not inherit the session). If the lock node\n"
     "is deleted while CMD runs (its session expired: the node was cut off or its daemon\n"
     "died, so another process may now hold the lock), CMD gets SIGTERM and the exit\n"
     "status is 3. Otherwise the exit status is CMD's. CMD finds its lock node's path in\n"
     "the tree in $QUORUMCTL_NODE (e.g. /locks/L/lock-0000000007)."},
    {"elect", "elect MOUNT/PATH -- CMD [ARG...]",
     "Leader election: wait until this process is the leader of PATH (the lowest candidate\n"
     "PATH/candidate-N), then run CMD while it stays the leader. If its candidate node is\n"
     "deleted (leadership lost, also by a session expiry), CMD gets SIGTERM and the exit\n"
     "status is 3. It waits on the candidate's watch file and on CMD's exit: no polling.\n"
     "CMD finds its candidate node's path in the tree in $QUORUMCTL_NODE."},
    {"multi", "multi MOUNT",
     "Apply the operations read from standard input as one transaction (all or nothing),\n"
     "one a line: 'create [-d] [-s] [-e] [-x] PATH [DATA]', 'set [-v VERSION] [-x] PATH\n"
     "[DATA]', 'delete [-v VERSION] PATH', 'check -v VERSION PATH' (paths in the tree, e.g.\n"
     "/app/x; DATA is the rest of the line; -x: DATA escaped, \\n \\t \\r \\0 \\\\ \\xHH; -e:\n"
     "ephemeral, deleted when this command exits, so mostly for programs that keep\n"
     "MOUNT/.zk/multi open). Prints one result line per operation ('ok OP PATH\n"
     "VERSION'); when one fails nothing is applied, the results go to standard error\n"
     "('error ERRNO OP PATH' for the failing one, 'error - ...' for the others) and the exit\n"
     "status is 1. Through MOUNT/.zk/multi: a write is the transaction, a read its results."},
    {"wait", "wait [--children] [--since VERSION] MOUNT/PATH",
     "Wait for the next change of the node (created, data changed, deleted) or, with\n"
     "--children, of its child list, and print it as 'EVENT PATH' (ZooKeeper's event names).\n"
     "With --since, return at once if the node's version (cversion with --children) is\n"
     "already above VERSION: no change made after VERSION is missed. Works through the\n"
     "watch files MOUNT/.zk/watch[-children]/PATH (PATH/.data for a directory node)."},
};
#define NHELPS (sizeof(helps) / sizeof(helps[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage:");
	for (size_t i = 0; i < NHELPS; i++)
		fprintf(f, "%s quorumctl %s\n", i ? "      " : "", helps[i].usage);
	fprintf(f, "       quorumctl CMD --help | --help | --version\n");
}

/* The help of subcommand NAME on F; 2 (usage error) unless TO_STDOUT. */
static int cmd_usage(const char *name, int to_stdout)
{
	FILE *f = to_stdout ? stdout : stderr;

	for (size_t i = 0; i < NHELPS; i++) {
		if (strcmp(helps[i].name, name) == 0) {
			fprintf(f, "usage: quorumctl %s\n", helps[i].usage);
			if (to_stdout)
				fprintf(f, "\n%s\n", helps[i].text);
			return to_stdout ? 0 : EXIT_USAGE;
		}
	}
	usage(f);
	return EXIT_USAGE;
}

/* The file that holds PATH's data: PATH itself, or PATH/.data for a directory node. */
static int data_file(const char *path, char *out, size_t cap)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		snprintf(out, cap, "%s/.data", path);
	else
		snprintf(out, cap, "%s", path);
	return 0;
}

static int cat_file(const char *path)
{
	char buf[65536];
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0) {
		fprintf(stderr, "quorumctl: %s: %s\n", path, strerror(errno));
		return 1;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n) {
			close(fd);
			return 1;
		}
	}
	if (n < 0)
		fprintf(stderr, "quorumctl: %s: %s\n", path, strerror(errno));
	close(fd);
	return n < 0 || fflush(stdout) != 0;
}

static int cmd_get(const char *path)
{
	char file[8192];
	int rv = data_file(path, file, sizeof(file));

	if (rv != 0) {
		fprintf(stderr, "quorumctl: %s: %s\n", path, strerror(-rv));
		return 1;
	}
	return cat_file(file);
}

/* The node's version now, for a mismatch message ("?" when it cannot be read). */
static void print_mismatch(const char *path, int fd, long expected)
{
	char v[32] = "?";
	ssize_t n = fd >= 0 ? fgetxattr(fd, "user.zk.version", v, sizeof(v) - 1)
			    : getxattr(path, "user.zk.version", v, sizeof(v) - 1);

	if (n > 0)
		v[n] = '\0';
	else
		snprintf(v, sizeof(v), "?");
	fprintf(stderr, "quorumctl: %s: version mismatch: expected %ld, actual %s\n", path,
		expected, v);
}

/* Parse a version for -v: 0..INT32_MAX. */
static int parse_version(const char *s, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || v < 0 || v > 2147483647L) {
		fprintf(stderr, "quorumctl: bad version '%s'\n", s);
		return -1;
	}
	*out = v;
	return 0;
}

static int cmd_set(const char *path, const char *data, long version)
{
	char file[8192];
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;
	int fd, rv = data_file(path, file, sizeof(file));

	if (rv != 0) {
		fprintf(stderr, "quorumctl: %s: %s\n", path, strerror(-rv));
		return 1;
	}
	/* One write(2) at offset 0 after O_TRUNC: the kernel passes it to quorumfs as one request
	 * (up to 1 MiB), so the value becomes exactly one version. The buffer is page-aligned so
	 * that this holds even where the kernel would split by user pages (O_DIRECT-like paths). */
	if (posix_memalign((void **)&buf, 4096, MAX_DATA + 1) != 0) {
		fprintf(stderr, "quorumctl: out of memory\n");
		return 1;
	}
	if (strcmp(data, "-") == 0) {
		while (len <= MAX_DATA &&
		       (n = read(STDIN_FILENO, buf + len, MAX_DATA + 1 - len)) > 0)
			len += (size_t)n;
		if (len > MAX_DATA) {
			fprintf(stderr, "quorumctl: data over %d bytes\n", MAX_DATA);
			free(buf);
			return 1;
		}
	} else {
		len = strlen(data);
		if (len > MAX_DATA) {
			fprintf(stderr, "quorumctl: data over %d bytes\n", MAX_DATA);
			free(buf);
			return 1;
		}
		memcpy(buf, data, len);
	}
	fd = open(file, O_WRONLY | O_TRUNC);
	if (fd < 0) {
		fprintf(stderr, "quorumctl: %s: %s\n", file, strerror(errno));
		free(buf);
		return 1;
	}
	if (version >= 0) {
		char v[32];
		int vl = snprintf(v, sizeof(v), "%ld", version);

		if (fsetxattr(fd, XATTR_EXPECT, v, (size_t)vl, 0) != 0) {
			fprintf(stderr, "quorumctl: %s: %s\n", file, strerror(errno));
			close(fd);
			free(buf);
			return 1;
		}
	}
	n = write(fd, buf, len);
	rv = 0;
	if (n < 0 && errno == ESTALE && version >= 0) {
		print_mismatch(path, fd, version);
		rv = 1;
	} else if (n < 0) {
		fprintf(stderr, "quorumctl: %s: %s\n", file, strerror(errno));
		rv = 1;
	} else if ((size_t)n != len) {
		fprintf(stderr, "quorumctl: %s: short write (%zd of %zu)\n", file, n, len);
		rv = 1;
	}
	if (close(fd) != 0) {
		fprintf(stderr, "quorumctl: %s: %s\n", file, strerror(errno));
		rv = 1;
	}
	free(buf);
	return rv;
}

static int get_attr(const char *path, const char *name, char *out, size_t cap)
{
	char full[64];
	ssize_t n;

	snprintf(full, sizeof(full), "user.zk.%s", name);
	n = getxattr(path, full, out, cap - 1);
	if (n < 0)
		return -errno;
	out[n] = '\0';
	return 0;
}

static void print_time(const char *label, const char *ms)
{
	time_t t = (time_t)(strtoll(ms, NULL, 10) / 1000);
	struct tm tm;
	char buf[64];

	localtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%a %b %d %H:%M:%S %Z %Y", &tm);
	printf("%s = %s\n", label, buf);
}

static int cmd_stat(const char *path)
{
	static const char *const names[] = {
	    "czxid",   "ctime",	   "mzxid",	     "mtime",	   "pzxid",	 "cversion",
	    "version", "aversion", "ephemeralOwner", "dataLength", "numChildren"};
	static const char *const labels[] = {
	    "cZxid",	   "ctime",	 "mZxid",	   "mtime",	 "pZxid",      "cversion",
	    "dataVersion", "aclVersion", "ephemeralOwner", "dataLength", "numChildren"};
	char v[64];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int rv = get_attr(path, names[i], v, sizeof(v));

		if (rv != 0) {
			fprintf(stderr, "quorumctl: %s: %s\n", path, strerror(-rv));
			return 1;
		}
		if (strcmp(names[i], "ctime") == 0 || strcmp(names[i], "mtime") == 0)
			print_time(labels[i], v);
		else
			printf("%s = %s\n", labels[i], v);
	}
	return fflush(stdout) != 0;
}

static int cmd_rm(const char *path, long version)
{
	struct stat st;
	int rv;

	if (lstat(path, &st) != 0) {
		fprintf(stderr, "quorumctl: %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (version >= 0) {
		char v[32];
		int vl = snprintf(v, sizeof(v), "%ld", version);

		if (setxattr(path, XATTR_EXPECT, v, (size_t)vl, 0) != 0) {
			fprintf(stderr, "quorumctl: %s: %s\n", path, strerror(errno));
			return 1;
		}
	}
	rv = S_ISDIR(st.st_mode) ? rmdir(path) : unlink(path);
	if (rv != 0 && errno == ESTALE && version >= 0) {
		print_mismatch(path, -1, version);
		return 1;
	}
	if (rv != 0) {
		fprintf(stderr, "quorumctl: %s: %s\n", path, strerror(errno));
		return 1;
	}
	return 0;
}

/* The root of the mount that holds PATH's parent: walk up while the device stays the same.
 * ROOT gets the mount root and REL the path below it ("/x/y"). 0 or -errno. */
static int split_mount(const char *path, char *root, char *rel, size_t cap)
{
	char tmp[PATH_MAX], dir[PATH_MAX], base[NAME_MAX + 1];
	struct stat st, up;

	snprintf(tmp, sizeof(tmp), "%s", path);
	snprintf(base, sizeof(base), "%s", basename(tmp));
	snprintf(tmp, sizeof(tmp), "%s", path);
	if (!realpath(dirname(tmp), dir))
		return -errno;
	if (stat(dir, &st) != 0)
		return -errno;
	snprintf(root, cap, "%s", dir);
	for (;;) {
		char parent[PATH_MAX];
		char *slash = strrchr(root, '/');

		if (!slash || slash == root)
			break;
		snprintf(parent, sizeof(parent), "%.*s", (int)(slash - root), root);
		if (stat(parent, &up) != 0 || up.st_dev != st.st_dev)
			break;
		*slash = '\0';
	}
	if (strcmp(root, "/") == 0 || strlen(dir) < strlen(root))
		return -EINVAL;
	char status[PATH_MAX + 16];
	snprintf(status, sizeof(status), "%.*s/.zk/status", PATH_MAX - 1, root);
	if (stat(status, &up) != 0)
		return -ENODEV; /* no quorumfs mount there (e.g. its daemon is gone) */
	snprintf(rel, cap, "%s/%s", dir + strlen(root), base);
	return 0;
}

/* The message for an error of split_mount. */
static const char *split_strerror(int err)
{
	return err == -ENODEV ? "not inside a quorumfs mount (no .zk/status at the mount root)"
			      : strerror(-err);
}

static volatile sig_atomic_t stop_now;

static void on_stop(int sig)
{
	(void)sig;
	stop_now = 1;
}

static int cmd_create(const char *path, const char *data, int seq, int eph)
{
	char root[PATH_MAX], rel[PATH_MAX], file[2 * PATH_MAX + 64], made[PATH_MAX];
	const char *mode = eph && seq ? "ephemeral-sequential" : eph ? "ephemeral" : "sequential";
	ssize_t n;
	int fd, rv = split_mount(path, root, rel, sizeof(root));

	if (rv != 0) {
		fprintf(stderr, "quorumctl: %s: %s\n", path, split_strerror(rv));
		return 1;
	}
	if (seq || eph)
		snprintf(file, sizeof(file), "%s/.zk/%s%s", root, mode, rel);
	else
		snprintf(file, sizeof(file), "%s%s", root, rel);
	fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "quorumctl: %s: %s\n", path,
			errno == EEXIST ? "node exists" : strerror(errno));
		return 1;
	}
	n = fgetxattr(fd, "user.zk.path", made, sizeof(made) - 1);
	if (n < 0) {
		fprintf(stderr, "quorumctl: %s: %s\n", path, strerror(errno));
		close(fd);
		return 1;
	}
	made[n] = '\0';
	if (data && *data) {
		size_t len = strlen(data);

		n = write(fd, data, len);
		if (n < 0 || (size_t)n != len) {
			fprintf(stderr, "quorumctl: %s: %s\n", made,
				n < 0 ? strerror(errno) : "short write");
			close(fd);
			return 1;
		}
	}
	printf("%s%s\n", root, made);
	if (fflush(stdout) != 0) {
		close(fd);
		return 1;
	}
	if (eph) {
		struct sigaction sa = {.sa_handler = on_stop};
		char c;

		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGHUP, &sa, NULL);
		while (!stop_now && (n = read(STDIN_FILENO, &c, 1)) != 0) {
			if (n < 0 && errno != EINTR)
				break;
		}
	}
	if (close(fd) != 0) {
		fprintf(stderr, "quorumctl: %s: %s\n", made, strerror(errno));
		return 1;
	}
	return 0;
}

static int cmd_ls(const char *path)
{
	struct dirent *de;
	DIR *d = opendir(path);

	if (!d) {
		if (errno == ENOTDIR)
			return 0; /* a file node has no children */
		fprintf(stderr, "quorumctl: %s: %s\n", path, strerror(errno));
		return 1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' &&
		    (!de->d_name[1] || strcmp(de->d_name, "..") == 0 ||
		     strcmp(de->d_name, ".zk") == 0 || strcmp(de->d_name, ".data") == 0))
			continue;
		printf("%s\n", de->d_name);
	}
	closedir(d);
	return fflush(stdout) != 0;
}

/* Options of a subcommand: -v VERSION (when ALLOW_V) and --help. Returns the index of the first
 * operand, or -1 (help printed: *status set). */
static int cmd_wait(const char *path, int children, long since)
{
	char root[PATH_MAX], rel[PATH_MAX], file[2 * PATH_MAX + 64], buf[8192];
	const char *mode = children ? "watch-children" : "watch";
	struct stat st;
	ssize_t n;
	int fd, rv = split_mount(path, root, rel, sizeof(root));

	if (rv != 0) {
		fprintf(stderr, "quorumctl: %s: %s\n", path, split_strerror(rv));
		return 1;
	}
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		snprintf(file, sizeof(file), "%s/.zk/%s%s/.data", root, mode, rel);
	else
		snprintf(file, sizeof(file), "%s/.zk/%s%s", root, mode, rel);
	/* Open first (the watch is registered), then compare versions: a change made before the
	 * open shows in the version, one made after fires the watch. */
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "quorumctl: %s: %s\n", file, strerror(errno));
		return 1;
	}
	if (since >= 0) {
		char v[32];
		ssize_t vl = getxattr(path, children ? "user.zk.cversion" : "user.zk.version", v,
				      sizeof(v) - 1);

		if (vl > 0) {
			v[vl] = '\0';
			if (strtol(v, NULL, 10) > since) {
				printf("%s %s\n",
				       children ? "NodeChildrenChanged" : "NodeDataChanged", rel);
				close(fd);
				return fflush(stdout) != 0;
			}
		}
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			break;
	}
	if (n < 0) {
		fprintf(stderr, "quorumctl: %s: %s\n", file, strerror(errno));
		close(fd);
		return errno == EINTR ? 130 : 1;
	}
	close(fd);
	return fflush(stdout) != 0;
}

/* mkdir -p PATH. 0 or -errno. */
static int mkdir_p(const char *path)
{
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -errno : 0;
}

/* Sequence number of a child NAME of the form PREFIX + 10 digits; -1 otherwise. */
static long long seq_of(const char *name, const char *prefix)
{
	size_t pl = strlen(prefix);
	char *end;
	long long v;

	if (strncmp(name, prefix, pl) != 0 || strlen(name + pl) != 10)
		return -1;
	v = strtoll(name + pl, &end, 10);
	return *end ? -1 : v;
}

/* The child of DIR with PREFIX and the highest sequence below MINE (the predecessor), into PRED;
 * 0 when there is none (we are first), 1 when found, -1 on error. */
static int predecessor(const char *dir, const char *prefix, long long mine, char *pred, size_t cap)
{
	long long best = -1;
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d)
		return -1;
	while ((de = readdir(d)) != NULL) {
		long long v = seq_of(de->d_name, prefix);

		if (v >= 0 && v < mine && v > best) {
			best = v;
			snprintf(pred, cap, "%s", de->d_name);
		}
	}
	closedir(d);
	return best >= 0;
}

/*
 * lock and elect, while CMD (process CHILD) runs: wait, without polling, for whichever comes
 * first: CHILD exits (a pidfd), or our lock or candidate node ROOT MADE is deleted (its watch file *WFD fires with
 * NodeDeleted; another event re-arms the watch, then checks the node still exists, so a deletion
 * between two watches is not missed). Returns -1 when CHILD exited (not reaped: the caller does),
 * 3 when the lock or leadership was lost (CHILD stopped with SIGTERM and reaped).
 */
static int recipe_watch_leader(pid_t child, const char *root, const char *made, int *wfd,
			       int elect)
{
	char file[2 * PATH_MAX + 32], ev[PATH_MAX + 64];
	int pfd = (int)syscall(SYS_pidfd_open, child, 0), status;

	if (pfd < 0) {
		fprintf(stderr, "quorumctl: pidfd_open: %s\n", strerror(errno));
		return -1; /* the caller still waits for CHILD; leadership is then not watched */
	}
	snprintf(file, sizeof(file), "%s%s", root, made);
	if (access(file, F_OK) != 0) {
		/* deleted before its watch was opened */
		ev[0] = '\0';
		goto lost;
	}
	for (;;) {
		struct pollfd p[2] = {{.fd = pfd, .events = POLLIN},
				      {.fd = *wfd, .events = POLLIN}};
		ssize_t n;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents)
			break;
		if (!p[1].revents)
			continue;
		while ((n = read(*wfd, ev, sizeof(ev) - 1)) < 0 && errno == EINTR)
			;
		if (n < 0 && errno == EAGAIN)
			continue;
		ev[n > 0 ? n : 0] = '\0';
		close(*wfd);
		snprintf(file, sizeof(file), "%s/.zk/watch%s", root, made);
		*wfd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		snprintf(file, sizeof(file), "%s%s", root, made);
		if (*wfd < 0 || strncmp(ev, "NodeDeleted", 11) == 0 || access(file, F_OK) != 0)
			goto lost;
	}
	close(pfd);
	return -1;
lost:
	fprintf(stderr, "quorumctl: %s: %s lost\n", made, elect ? "leadership" : "lock");
	kill(child, SIGTERM);
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	close(pfd);
	return 3;
}

/*
 * lock and elect: create ROOT/.zk/ephemeral-sequential/REL/PREFIX (held open: our session), then
 * wait until no child with a lower sequence is left, watching only the one just before ours.
 * ELECT: while CMD runs, also watch our own node (deleted: leadership lost).
 */
static int cmd_recipe(const char *path, char **cmd, int elect)
{
	const char *prefix = elect ? "candidate-" : "lock-";
	char root[PATH_MAX], rel[PATH_MAX], file[3 * PATH_MAX + 64], made[PATH_MAX], me[64];
	char pred[NAME_MAX + 1], buf[512];
	long long mine;
	ssize_t n;
	pid_t child;
	int fd, wfd, status, rv = mkdir_p(path);

	if (rv == 0)
		rv = split_mount(path, root, rel, sizeof(root));
	if (rv != 0) {
		fprintf(stderr, "quorumctl: %s: %s\n", path, split_strerror(rv));
		return 1;
	}
	snprintf(file, sizeof(file), "%s/.zk/ephemeral-sequential%s/%s", root, rel, prefix);
	fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "quorumctl: %s: %s\n", file, strerror(errno));
		return 1;
	}
	n = fgetxattr(fd, "user.zk.path", made, sizeof(made) - 1);
	if (n < 0) {
		fprintf(stderr, "quorumctl: %s: %s\n", file, strerror(errno));
		close(fd);
		return 1;
	}
	made[n] = '\0';
	mine = seq_of(strrchr(made, '/') + 1, prefix);
	/* Who holds it, for whoever looks (cat PATH/lock-N). */
	n = snprintf(me, sizeof(me), "%d\n", (int)getpid());
	if (write(fd, me, (size_t)n) != n)
		fprintf(stderr, "quorumctl: %s: %s\n", made, strerror(errno));
	for (;;) {
		int r = predecessor(path, prefix, mine, pred, sizeof(pred));

		if (r < 0) {
			fprintf(stderr, "quorumctl: %s: %s\n", path, strerror(errno));
			close(fd);
			return 1;
		}
		if (r == 0)
			break;
		/* Watch the predecessor only (no herd): open the watch, then check it is still
		 * there (it may have gone before the watch was registered). */
		snprintf(file, sizeof(file), "%s/.zk/watch%s/%s", root, rel, pred);
		wfd = open(file, O_RDONLY | O_CLOEXEC);
		if (wfd < 0) {
			fprintf(stderr, "quorumctl: %s: %s\n", file, strerror(errno));
			close(fd);
			return 1;
		}
		snprintf(file, sizeof(file), "%s/%s", path, pred);
		if (access(file, F_OK) == 0) {
			while ((n = read(wfd, buf, sizeof(buf))) < 0 && errno == EINTR)
				;
		}
		close(wfd);
	}
	wfd = -1;
	/* No lower child is left, but ours may have gone too: our session expired while we waited
	 * (the node was cut off or paused, and caught up only now). Then we never held the lock. */
	snprintf(file, sizeof(file), "%s%s", root, made);
	if (access(file, F_OK) != 0) {
		fprintf(stderr, "quorumctl: %s: %s lost while waiting (session expired?)\n", made,
			elect ? "candidacy" : "lock");
		close(fd);
		return 3;
	}
	{
		snprintf(file, sizeof(file), "%s/.zk/watch%s", root, made);
		wfd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		if (wfd < 0) {
			fprintf(stderr, "quorumctl: %s: %s\n", file, strerror(errno));
			close(fd);
			return 1;
		}
	}
	fflush(NULL);
	child = fork();
	if (child < 0) {
		fprintf(stderr, "quorumctl: fork: %s\n", strerror(errno));
		close(fd);
		return 1;
	}
	if (child == 0) {
		/* CMD may check it still holds the lock (or leads): its node, in the tree */
		setenv("QUORUMCTL_NODE", made, 1);
		execvp(cmd[0], cmd);
		fprintf(stderr, "quorumctl: %s: %s\n", cmd[0], strerror(errno));
		_exit(127);
	}
	rv = recipe_watch_leader(child, root, made, &wfd, elect);
	while (rv < 0) {
		pid_t w = waitpid(child, &status, 0);

		if (w == child)
			rv = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		else if (w < 0 && errno != EINTR)
			rv = 1;
	}
	if (wfd >= 0)
		close(wfd);
	close(fd); /* ends the session: the node is deleted, the next waiter wakes */
	return rv;
}

static int cmd_multi(const char *mount)
{
	char file[PATH_MAX + 16], res[65536];
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;
	int fd, rv = 0, werr = 0;

	if (posix_memalign((void **)&buf, 4096, MAX_DATA + 1) != 0) {
		fprintf(stderr, "quorumctl: out of memory\n");
		return 1;
	}
	while (len <= MAX_DATA && (n = read(STDIN_FILENO, buf + len, MAX_DATA + 1 - len)) > 0)
		len += (size_t)n;
	if (len > MAX_DATA || len == 0) {
		fprintf(stderr, "quorumctl: %s\n", len ? "request over 1 MiB" : "no operations");
		free(buf);
		return 1;
	}
	snprintf(file, sizeof(file), "%s/.zk/multi", mount);
	fd = open(file, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "quorumctl: %s: %s\n", file, strerror(errno));
		free(buf);
		return 1;
	}
	n = write(fd, buf, len);
	if (n < 0)
		werr = errno;
	free(buf);
	while ((n = read(fd, res, sizeof(res))) > 0)
		fwrite(res, 1, (size_t)n, werr ? stderr : stdout);
	close(fd);
	if (werr) {
		fprintf(stderr, "quorumctl: multi failed, nothing applied: %s\n", strerror(werr));
		rv = 1;
	}
	return rv || fflush(stdout) != 0;
}

static int opt_s, opt_e, opt_children;
static long opt_since = -1;

static int sub_options(int argc, char **argv, const char *name, int allow_v, long *version,
		       int *status)
{
	int i = 2;

	*version = -1;
	for (; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			*status = cmd_usage(name, 1);
			return -1;
		}
		if (strcmp(argv[i], "--") == 0)
			return i + 1;
		if (allow_v && strcmp(argv[i], "-v") == 0 && i + 1 < argc) {
			if (parse_version(argv[++i], version) != 0) {
				*status = EXIT_USAGE;
				return -1;
			}
			continue;
		}
		if (strcmp(name, "wait") == 0 && strcmp(argv[i], "--children") == 0) {
			opt_children = 1;
			continue;
		}
		if (strcmp(name, "wait") == 0 && strcmp(argv[i], "--since") == 0 && i + 1 < argc) {
			if (parse_version(argv[++i], &opt_since) != 0) {
				*status = EXIT_USAGE;
				return -1;
			}
			continue;
		}
		if (strcmp(name, "create") == 0 && argv[i][0] == '-' && argv[i][1] &&
		    strspn(argv[i] + 1, "se") == strlen(argv[i] + 1)) {
			opt_s |= strchr(argv[i], 's') != NULL;
			opt_e |= strchr(argv[i], 'e') != NULL;
			continue;
		}
		if (argv[i][0] == '-' && argv[i][1] != '\0') {
			fprintf(stderr, "quorumctl %s: unknown option '%s'\n", name, argv[i]);
			*status = cmd_usage(name, 0);
			return -1;
		}
		break;
	}
	return i;
}

int main(int argc, char **argv)
{
	const char *cmd;
	long version;
	int status = 0, i, n;

	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("quorumctl %s\n", QFS_VERSION);
		return 0;
	}
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = argv[1];
	if ((strcmp(cmd, "lock") == 0 || strcmp(cmd, "elect") == 0) && argc >= 3 &&
	    strcmp(argv[2], "--help") == 0)
		return cmd_usage(cmd, 1);
	if (strcmp(cmd, "lock") == 0 || strcmp(cmd, "elect") == 0) {
		if (argc < 5 || strcmp(argv[3], "--") != 0)
			return cmd_usage(cmd, 0);
		return cmd_recipe(argv[2], argv + 4, strcmp(cmd, "elect") == 0);
	}
	i = sub_options(argc, argv, cmd, strcmp(cmd, "set") == 0 || strcmp(cmd, "rm") == 0,
			&version, &status);
	if (i < 0)
		return status;
	n = argc - i;
	if (strcmp(cmd, "status") == 0 && n == 1) {
		char file[8192];

		snprintf(file, sizeof(file), "%s/.zk/status", argv[i]);
		return cat_file(file);
	}
	if (strcmp(cmd, "sync") == 0 && n == 1) {
		char file[8192];

		snprintf(file, sizeof(file), "%s/.zk/sync", argv[i]);
		return cat_file(file);
	}
	if (strcmp(cmd, "get") == 0 && n == 1)
		return cmd_get(argv[i]);
	if (strcmp(cmd, "set") == 0 && n == 2)
		return cmd_set(argv[i], argv[i + 1], version);
	if (strcmp(cmd, "stat") == 0 && n == 1)
		return cmd_stat(argv[i]);
	if (strcmp(cmd, "rm") == 0 && n == 1)
		return cmd_rm(argv[i], version);
	if (strcmp(cmd, "create") == 0 && (n == 1 || n == 2))
		return cmd_create(argv[i], n == 2 ? argv[i + 1] : NULL, opt_s, opt_e);
	if (strcmp(cmd, "ls") == 0 && n == 1)
		return cmd_ls(argv[i]);
	if (strcmp(cmd, "multi") == 0 && n == 1)
		return cmd_multi(argv[i]);
	if (strcmp(cmd, "wait") == 0 && n == 1)
		return cmd_wait(argv[i], opt_children, opt_since);
	return cmd_usage(cmd, 0);
}
