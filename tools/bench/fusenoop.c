/*
 * qfs-fusenoop: the smallest FUSE file system that answers a request, for tools/bench's "no-op
 * FUSE round trip" and "no-op FUSE write" limits. The root holds one empty file, "f", and the
 * files "w0" ... "w4095"; getxattr of any name on anything answers "0" straight from the handler.
 * Nothing is cached by the kernel for getxattr, so each getxattr(2) is exactly one FUSE request
 * and one reply: the floor under every quorumfs operation. The "w" files take a whole-value
 * write as quorumfs's nodes do, with the same open flags (direct_io, keep_cache, a FLUSH at the
 * close of an O_TRUNC open, atomic O_TRUNC), and forget it: open(O_TRUNC) + write + close is the
 * same four requests (OPEN, WRITE, FLUSH, RELEASE) as a quorumfs write, with nothing behind them.
 * A "w" file is 1 KiB long until an O_TRUNC open (the kernel then makes it 0 itself).
 *
 *   qfs-fusenoop MOUNT [--threads N] [--parallel-writes] [--write-delay-us D]
 *       stays in the foreground until unmounted (fusermount3 -u) or SIGTERM. N > 0: N worker
 *       threads (quorumfs's default is 16), else one thread answers every request.
 *       --parallel-writes: opens for writing also carry FOPEN_PARALLEL_DIRECT_WRITES (which
 *       libfuse 3.14 cannot set: the open is answered with a raw fuse_open_out). D: every WRITE
 *       is answered D µs late (a stand-in for a commit), to see what the kernel runs at once.
 */
#define FUSE_USE_VERSION 312

#include <errno.h>
#include <fcntl.h>
#include <fuse3/fuse_lowlevel.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_INO 2
#define W_INO	 16 /* "wK" is inode W_INO + K */
#define W_COUNT	 4096

static void noop_stat(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = ino == FUSE_ROOT_ID ? S_IFDIR | 0755 : S_IFREG | 0644;
	st->st_nlink = 1;
	if (ino >= W_INO)
		st->st_size = 1024;
}

static int par_writes, delay_us;

static int noop_known(fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID || ino == FILE_INO || (ino >= W_INO && ino < W_INO + W_COUNT);
}

/* The inode of NAME in the root, or 0. */
static fuse_ino_t noop_name(const char *name)
{
	char *end;
	unsigned long k;

	if (strcmp(name, "f") == 0)
		return FILE_INO;
	if (name[0] != 'w' || name[1] < '0' || name[1] > '9')
		return 0;
	k = strtoul(name + 1, &end, 10);
	return *end == 0 && k < W_COUNT ? W_INO + k : 0;
}

static void noop_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	fuse_ino_t ino = parent == FUSE_ROOT_ID ? noop_name(name) : 0;

	if (ino == 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = ino;
	e.attr_timeout = 3600;
	e.entry_timeout = 3600;
	noop_stat(ino, &e.attr);
	fuse_reply_entry(req, &e);
}

static void noop_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	if (!noop_known(ino)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	noop_stat(ino, &st);
	fuse_reply_attr(req, &st, 3600);
}

static void noop_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	(void)ino;
	(void)name;
	if (size == 0)
		fuse_reply_xattr(req, 1);
	else
		fuse_reply_buf(req, "0", 1);
}

static void noop_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
			 struct fuse_file_info *fi)
{
	(void)attr;
	(void)to_set;
	noop_getattr(req, ino, fi);
}

static void noop_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

static void noop_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (!noop_known(ino)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fi->fh = 0;
	fi->direct_io = 1;
	fi->keep_cache = 1;
	fi->noflush = (fi->flags & O_ACCMODE) == O_RDONLY || !(fi->flags & O_TRUNC);
	if (par_writes && (fi->flags & O_ACCMODE) != O_RDONLY) {
		struct fuse_open_out o = {.fh = 0,
					  .open_flags = FOPEN_DIRECT_IO | FOPEN_KEEP_CACHE |
							FOPEN_PARALLEL_DIRECT_WRITES |
							(fi->noflush ? FOPEN_NOFLUSH : 0)};
		fuse_reply_buf(req, (const char *)&o, sizeof(o));
		return;
	}
	fuse_reply_open(req, fi);
}

static void noop_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)ino;
	(void)buf;
	(void)off;
	(void)fi;
	if (delay_us)
		usleep((useconds_t)delay_us);
	fuse_reply_write(req, size);
}

static void noop_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	(void)ino;
	(void)size;
	(void)off;
	(void)fi;
	fuse_reply_buf(req, NULL, 0);
}

static void noop_done(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static const struct fuse_lowlevel_ops noop_ops = {
    .init = noop_init,
    .lookup = noop_lookup,
    .getattr = noop_getattr,
    .setattr = noop_setattr,
    .open = noop_open,
    .read = noop_read,
    .write = noop_write,
    .flush = noop_done,
    .release = noop_done,
    .getxattr = noop_getxattr,
};

int main(int argc, char **argv)
{
	char *fargv[] = {argv[0], "-o", "fsname=qfs-fusenoop", NULL};
	struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
	struct fuse_session *se;
	int rc = 1, threads = 0;

	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			threads = atoi(argv[++i]);
		else if (strcmp(argv[i], "--parallel-writes") == 0)
			par_writes = 1;
		else if (strcmp(argv[i], "--write-delay-us") == 0 && i + 1 < argc)
			delay_us = atoi(argv[++i]);
		else
			threads = -1;
	}
	if (threads < 0) {
		fprintf(stderr, "usage: qfs-fusenoop MOUNT [--threads N] [--parallel-writes] "
				"[--write-delay-us D]\n");
		return 2;
	}
	se = fuse_session_new(&args, &noop_ops, sizeof(noop_ops), NULL);
	if (!se)
		return 1;
	if (fuse_set_signal_handlers(se) != 0)
		goto out;
	if (fuse_session_mount(se, argv[1]) != 0)
		goto out_signals;
	if (threads > 0) {
		struct fuse_loop_config *lc = fuse_loop_cfg_create();

		if (!lc)
			goto out_unmount;
		fuse_loop_cfg_set_clone_fd(lc, 0);
		fuse_loop_cfg_set_max_threads(lc, (unsigned)threads);
		fuse_loop_cfg_set_idle_threads(lc, threads / 2 > 0 ? (unsigned)threads / 2 : 1);
		rc = fuse_session_loop_mt(se, lc) < 0;
		fuse_loop_cfg_destroy(lc);
	} else {
		rc = fuse_session_loop(se) < 0;
	}
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out:
	fuse_session_destroy(se);
	return rc;
}
