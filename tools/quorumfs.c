/*
 * quorumfs: the daemon. Opens the replica on a data directory, mounts the znode tree with FUSE and
 * serves it until unmounted (fusermount3 -u) or told to stop (SIGTERM, SIGINT, SIGHUP).
 *
 * Without -f it detaches, and the command returns only once the mount is ready (exit 0) or has
 * failed (exit 1, the reason on stderr): the daemon is forked first, opens everything, mounts, and
 * then tells the waiting parent through a pipe.
 */
#define FUSE_USE_VERSION 312

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fuse3/fuse_lowlevel.h>

#include "consensus/rp.h"
#include "fs/fs.h"
#include "fs/log.h"
#include "tools/qfs_config.h"
#ifdef QFS_TEST_HOOKS
#include "store/st_test.h"
#endif

struct options {
	const char *data_dir;
	const char *mountpoint;
	int foreground;
	int fuse_debug;
	enum fs_log_level log_level;
	double cache_timeout;
	int read_cache;
	int sched_batch;
	unsigned max_threads;
	char *fuse_opts;   /* comma-separated -o options, malloc'd */
	struct qc_opts cl; /* cluster settings (tools/qfs_config.h); no peers: one node */
};

enum {
	OPT_DATA = 256,
	OPT_LOG_LEVEL,
	OPT_CACHE_TIMEOUT,
	OPT_THREADS,
	OPT_FUSE_DEBUG,
	OPT_READ_CACHE,
	OPT_NO_READ_CACHE,
	OPT_SCHED,
	OPT_VERSION,
};

static const struct option long_options[] = {
    {"data", required_argument, NULL, OPT_DATA},
    {"foreground", no_argument, NULL, 'f'},
    {"debug", no_argument, NULL, 'd'},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"cache-timeout", required_argument, NULL, OPT_CACHE_TIMEOUT},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"fuse-debug", no_argument, NULL, OPT_FUSE_DEBUG},
    {"read-cache", no_argument, NULL, OPT_READ_CACHE},
    {"no-read-cache", no_argument, NULL, OPT_NO_READ_CACHE},
    {"sched", required_argument, NULL, OPT_SCHED},
    QC_LONG_OPTIONS,
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: quorumfs --data DIR [options] MOUNTPOINT\n"
	    "\n"
	    "Serve a ZooKeeper-style znode tree, kept durably in DIR, as a file system at\n"
	    "MOUNTPOINT. Every write(2) commits one version; getfattr -d shows a node's stat.\n"
	    "Stop it with 'fusermount3 -u MOUNTPOINT' or SIGTERM.\n"
	    "\n"
	    "options:\n"
	    "  --data DIR            data directory (created if missing; one daemon at a time)\n"
	    "  -f, --foreground      stay in the foreground, log to stderr\n"
	    "                        (detached, the daemon logs to syslog)\n"
	    "  -d, --debug           foreground and log level debug\n"
	    "  --log-level LEVEL     error, warn, info (default) or debug\n"
	    "  -o OPT[,OPT...]       FUSE mount options (e.g. allow_other)\n"
	    "  --cache-timeout SECS  how long the kernel may cache names and attributes; they are\n"
	    "                        invalidated on every change anyway (default 3600)\n"
	    "  --threads N           most FUSE worker threads (default 16)\n"
	    "  --read-cache          repeated reads of an unchanged node are served by the kernel's\n"
	    "                        page cache, exactly (the default)\n"
	    "  --no-read-cache       every read-only open reads past the page cache\n"
	    "  --sched batch|normal  the daemon's scheduling policy: batch (the default) does not\n"
	    "                        preempt the running program at each wake-up (SCHED_BATCH)\n"
	    "  --fuse-debug          trace every FUSE request (libfuse's -d)\n"
	    "  -h, --help            this text\n"
	    "  --version             print the version\n");
	qc_usage(f);
}

static int append_fuse_opt(struct options *o, const char *opt)
{
	size_t old = o->fuse_opts ? strlen(o->fuse_opts) : 0;
	char *p = realloc(o->fuse_opts, old + strlen(opt) + 2);

	if (!p)
		return -ENOMEM;
	if (old)
		p[old++] = ',';
	strcpy(p + old, opt);
	o->fuse_opts = p;
	return 0;
}

/* 0: run; 1: done (help/version printed); -1: bad usage (reported). */
static int parse_options(int argc, char **argv, struct options *o)
{
	int c, rv;

	*o = (struct options){.log_level = FS_LOG_INFO, .cache_timeout = 3600.0, .max_threads = 16,
			     .read_cache = 1, .sched_batch = 1};
	while ((c = getopt_long(argc, argv, "fdho:", long_options, NULL)) != -1) {
		char *end;

		switch (c) {
		case OPT_DATA:
			o->data_dir = optarg;
			break;
		case 'f':
			o->foreground = 1;
			break;
		case 'd':
			o->foreground = 1;
			o->log_level = FS_LOG_DEBUG;
			break;
		case OPT_LOG_LEVEL:
			if (fs_log_parse_level(optarg, &o->log_level) != 0) {
				fprintf(stderr, "quorumfs: bad log level '%s'\n", optarg);
				return -1;
			}
			break;
		case OPT_CACHE_TIMEOUT:
			o->cache_timeout = strtod(optarg, &end);
			if (*end || o->cache_timeout < 0) {
				fprintf(stderr, "quorumfs: bad --cache-timeout '%s'\n", optarg);
				return -1;
			}
			break;
		case OPT_THREADS:
			o->max_threads = (unsigned)strtoul(optarg, &end, 10);
			if (*end || o->max_threads < 1 || o->max_threads > 1024) {
				fprintf(stderr, "quorumfs: bad --threads '%s'\n", optarg);
				return -1;
			}
			break;
		case OPT_READ_CACHE:
			o->read_cache = 1;
			break;
		case OPT_NO_READ_CACHE:
			o->read_cache = 0;
			break;
		case OPT_SCHED:
			if (strcmp(optarg, "batch") == 0) {
				o->sched_batch = 1;
			} else if (strcmp(optarg, "normal") == 0) {
				o->sched_batch = 0;
			} else {
				fprintf(stderr, "quorumfs: bad --sched '%s' (batch or normal)\n",
					optarg);
				return -1;
			}
			break;
		case OPT_FUSE_DEBUG:
			o->fuse_debug = 1;
			o->foreground = 1;
			o->log_level = FS_LOG_DEBUG;
			break;
		case 'o':
			if (append_fuse_opt(o, optarg) != 0) {
				fprintf(stderr, "quorumfs: out of memory\n");
				return -1;
			}
			break;
		case 'h':
			usage(stdout);
			return 1;
		case OPT_VERSION:
			printf("quorumfs %s\n", QFS_VERSION);
			return 1;
		default:
			rv = qc_getopt(&o->cl, c, optarg);
			if (rv > 0)
				break;
			if (rv == 0)
				usage(stderr);
			return -1;
		}
	}
	if (qc_finish(&o->cl) != 0)
		return -1;
	if (!o->data_dir)
		o->data_dir = o->cl.data_dir;
	if (optind + 1 != argc || !o->data_dir) {
		fprintf(stderr, "quorumfs: need --data DIR and one MOUNTPOINT\n");
		usage(stderr);
		return -1;
	}
	o->mountpoint = argv[optind];
	return 0;
}

#ifdef QFS_TEST_HOOKS
/* QFS_TEST_FAULT=commit:N:ERRNO (ERRNO one of ENOSPC, EROFS, EIO): the N-th commit fails;
 * QFS_TEST_FAULT=commit-delay:MS: every commit first sleeps MS milliseconds (a slow disk);
 * QFS_TEST_FAULT=lost:N: in a cluster, the N-th lazy commit that follows an acceptor log append is
 * lost as in a crash of the machine: the daemon exits (status 86) instead of committing it. */
static int arm_test_fault(struct rp *rp)
{
	const char *spec = getenv("QFS_TEST_FAULT");
	char kind[16], err[16];
	int n, e;

	if (!spec || !*spec)
		return 0;
	if (sscanf(spec, "commit-delay:%d%15s", &n, err) == 1) {
		if (n < 0 || n > 60000)
			return -EINVAL;
		fs_warn("test hook: every commit sleeps %d ms first", n);
		st_fault_delay(rp_env(rp), (unsigned)n);
		return 0;
	}
	if (sscanf(spec, "lost:%d%15s", &n, err) == 1) {
		if (n < 1)
			return -EINVAL;
		fs_warn("test hook: lazy commit %d after an acceptor log append will be lost", n);
		return st_fault_set(rp_env(rp), ST_FAULT_LOST, n, -EIO);
	}
	if (sscanf(spec, "%15[^:]:%d:%15s", kind, &n, err) != 3 || strcmp(kind, "commit") != 0)
		return -EINVAL;
	if (strcmp(err, "ENOSPC") == 0)
		e = -ENOSPC;
	else if (strcmp(err, "EROFS") == 0)
		e = -EROFS;
	else if (strcmp(err, "EIO") == 0)
		e = -EIO;
	else
		return -EINVAL;
	fs_warn("test hook: commit %d will fail with %s", n, err);
	return st_fault_set(rp_env(rp), ST_FAULT_COMMIT, n, e);
}
#endif

/* Parent side of detaching: wait until the daemon says it is mounted (or dies). */
static int wait_for_daemon(int fd, pid_t pid)
{
	char c = 1;
	ssize_t n;

	do {
		n = read(fd, &c, 1);
	} while (n < 0 && errno == EINTR);
	if (n == 1 && c == 0)
		return 0;
	waitpid(pid, NULL, 0);
	return 1;
}

static void tell_parent(int *fd, char status)
{
	if (*fd < 0)
		return;
	if (write(*fd, &status, 1) != 1)
		fs_warn("could not report to the waiting parent: %s", strerror(errno));
	close(*fd);
	*fd = -1;
}

static void detach_stdio(void)
{
	int fd = open("/dev/null", O_RDWR);

	if (fd < 0)
		return;
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
}

int main(int argc, char **argv)
{
	struct options o;
	char data_dir[PATH_MAX], mnt[PATH_MAX];
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;
	struct fuse_loop_config *lcfg = NULL;
	struct fs *fs = NULL;
	struct rp *rp = NULL;
	struct rp_cluster_config cl = {0};
	sigset_t sigs, old;
	int ready_fd = -1, mounted = 0, rv, status = 1;
	uint32_t session_timeout = 0;

	rv = parse_options(argc, argv, &o);
	if (rv != 0)
		return rv > 0 ? 0 : 2;
	fs_log_init(o.log_level, 0);
	if (qc_session_timeout(&o.cl, &session_timeout) != 0)
		return 2;
	if (qc_is_cluster(&o.cl)) {
		if (qc_build(&o.cl, &cl) != 0)
			return 2;
		cl.on_log = qc_on_log;
		cl.session_timeout_ms = session_timeout;
	}

	if (mkdir(o.data_dir, 0700) != 0 && errno != EEXIST) {
		fs_error("cannot create data directory %s: %s", o.data_dir, strerror(errno));
		return 1;
	}
	if (!realpath(o.data_dir, data_dir)) {
		fs_error("data directory %s: %s", o.data_dir, strerror(errno));
		return 1;
	}
	if (!realpath(o.mountpoint, mnt)) {
		fs_error("mount point %s: %s", o.mountpoint, strerror(errno));
		return 1;
	}

	if (!o.foreground) {
		int p[2];
		pid_t pid;

		if (pipe2(p, O_CLOEXEC) != 0) {
			fs_error("pipe: %s", strerror(errno));
			return 1;
		}
		fflush(NULL);
		pid = fork();
		if (pid < 0) {
			fs_error("fork: %s", strerror(errno));
			return 1;
		}
		if (pid > 0) {
			close(p[1]);
			return wait_for_daemon(p[0], pid);
		}
		close(p[0]);
		ready_fd = p[1];
		setsid();
	}

	/* Before the first thread: every thread of the daemon inherits the policy. */
	if (o.sched_batch) {
		struct sched_param sp = {0};

		if (sched_setscheduler(0, SCHED_BATCH, &sp) != 0)
			fs_warn("cannot use SCHED_BATCH (%s): staying with the default policy",
				strerror(errno));
	}
	/* Threads started from here on (storage, invalidations) leave the stop signals to the
	 * FUSE loop's threads. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, &old);

	{
		struct fs_config fcfg = {.cache_timeout = o.cache_timeout,
					 .mountpoint = mnt,
					 .read_cache = o.read_cache,
					 .session_timeout_ms = session_timeout,
					 .uid = getuid(),
					 .gid = getgid()};

		rv = fs_new(&fcfg, &fs);
		if (rv != 0) {
			fs_error("cannot start: %s", strerror(-rv));
			goto out;
		}
	}
	{
		struct rp_config rcfg = {
		    .data_dir = data_dir, .on_change = fs_on_change, .change_arg = fs};

		if (qc_is_cluster(&o.cl))
			rv = rp_open_paxos(&rcfg, &cl, &rp);
		else
			rv = rp_open_local(&rcfg, &rp);
		if (rv == -EADDRINUSE || (rv == -EINVAL && qc_is_cluster(&o.cl))) {
			fs_error("cannot start node %u on %s: %s%s", cl.self_id, data_dir,
				 strerror(-rv),
				 rv == -EINVAL ? " (bad cluster settings, or a single-node data "
						 "directory)"
					       : " (its peer port)");
			goto out;
		}
		if (rv == -EBUSY) {
			fs_error("%s is in use by another quorumfs daemon (its LOCK is held); "
				 "refusing to start a second one",
				 data_dir);
			goto out;
		}
		if (rv != 0) {
			fs_error("cannot open the data directory %s: %s", data_dir, strerror(-rv));
			goto out;
		}
	}
#ifdef QFS_TEST_HOOKS
	rv = arm_test_fault(rp);
	if (rv != 0) {
		fs_error("bad QFS_TEST_FAULT: %s", strerror(-rv));
		goto out;
	}
#endif
	rv = fs_attach(fs, rp);
	if (rv != 0) {
		fs_error("cannot read the tree in %s: %s", data_dir, strerror(-rv));
		goto out;
	}

	{
		char fsname[PATH_MAX + 64];

		snprintf(fsname, sizeof(fsname), "fsname=quorumfs:%s,subtype=quorumfs", data_dir);
		if (fuse_opt_add_arg(&args, argv[0]) != 0 || fuse_opt_add_arg(&args, "-o") != 0 ||
		    fuse_opt_add_arg(&args, fsname) != 0 ||
		    (o.fuse_opts && (fuse_opt_add_arg(&args, "-o") != 0 ||
				     fuse_opt_add_arg(&args, o.fuse_opts) != 0)) ||
		    (o.fuse_debug && fuse_opt_add_arg(&args, "-d") != 0)) {
			fs_error("out of memory");
			goto out;
		}
	}
	rv = fs_session_new(fs, &args, &se);
	if (rv != 0) {
		fs_error("cannot create the FUSE session (bad -o option?)");
		goto out;
	}
	if (fuse_set_signal_handlers(se) != 0) {
		fs_error("cannot install signal handlers");
		goto out;
	}
	if (fuse_session_mount(se, mnt) != 0) {
		fs_error("cannot mount at %s", mnt);
		goto out;
	}
	mounted = 1;

	if (ready_fd >= 0) {
		tell_parent(&ready_fd, 0);
		fs_log_init(o.log_level, 1);
		detach_stdio();
		if (chdir("/") != 0)
			fs_warn("chdir /: %s", strerror(errno));
	}

	fs_info("serving %s at %s", data_dir, mnt);
	lcfg = fuse_loop_cfg_create();
	if (!lcfg) {
		fs_error("out of memory");
		goto out;
	}
	fuse_loop_cfg_set_max_threads(lcfg, o.max_threads);
	fuse_loop_cfg_set_idle_threads(lcfg, o.max_threads / 2 > 0 ? o.max_threads / 2 : 1);
	fuse_loop_cfg_set_clone_fd(lcfg, 0);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	rv = fuse_session_loop_mt(se, lcfg);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	/* The loop returns the number of the signal that stopped it, 0 when unmounted, or a
	 * negative errno. */
	if (rv < 0)
		fs_error("FUSE session failed: %s", strerror(-rv));
	else
		fs_info("stopping (%s)", rv > 0 ? strsignal(rv) : "unmounted");
	status = rv < 0 ? 1 : 0;

out:
	/* Close the replica first, while the mount can still carry replies: what was committed
	 * is acknowledged, the rest fails with EIO. Then unmount (which aborts whatever the
	 * kernel still waits for), and only then stop the invalidation threads, which may wait
	 * in the kernel for a lock that an unanswered request holds. */
	if (fs)
		fs_detach(fs);
	if (rp)
		rp_close(rp);
	if (mounted)
		fuse_session_unmount(se);
	if (se)
		fuse_remove_signal_handlers(se);
	if (fs)
		fs_stop(fs);
	if (se)
		fuse_session_destroy(se);
	fs_free(fs);
	if (lcfg)
		fuse_loop_cfg_destroy(lcfg);
	fuse_opt_free_args(&args);
	free(o.fuse_opts);
	tell_parent(&ready_fd, 1);
	if (status == 0)
		fs_info("stopped");
	return status;
}
