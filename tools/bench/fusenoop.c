/*
 * qfs-fusenoop: the smallest FUSE file system that answers a request, for tools/bench's "no-op
 * FUSE round trip" limit. The root holds one empty file, "f"; getxattr of any name on anything
 * answers "0" straight from the handler. Nothing is cached by the kernel for getxattr, so each
 * getxattr(2) is exactly one FUSE request and one reply: the floor under every quorumfs operation.
 *
 *   qfs-fusenoop MOUNT     stays in the foreground until unmounted (fusermount3 -u) or SIGTERM
 */
#define FUSE_USE_VERSION 312

#include <errno.h>
#include <fuse3/fuse_lowlevel.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define FILE_INO 2

static void noop_stat(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = ino == FUSE_ROOT_ID ? S_IFDIR | 0755 : S_IFREG | 0644;
	st->st_nlink = 1;
}

static void noop_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;

	if (parent != FUSE_ROOT_ID || strcmp(name, "f") != 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = FILE_INO;
	e.attr_timeout = 3600;
	e.entry_timeout = 3600;
	noop_stat(FILE_INO, &e.attr);
	fuse_reply_entry(req, &e);
}

static void noop_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	if (ino != FUSE_ROOT_ID && ino != FILE_INO) {
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

static const struct fuse_lowlevel_ops noop_ops = {
    .lookup = noop_lookup,
    .getattr = noop_getattr,
    .getxattr = noop_getxattr,
};

int main(int argc, char **argv)
{
	char *fargv[] = {argv[0], "-o", "fsname=qfs-fusenoop", NULL};
	struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
	struct fuse_session *se;
	int rc = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: qfs-fusenoop MOUNT\n");
		return 2;
	}
	se = fuse_session_new(&args, &noop_ops, sizeof(noop_ops), NULL);
	if (!se)
		return 1;
	if (fuse_set_signal_handlers(se) != 0)
		goto out;
	if (fuse_session_mount(se, argv[1]) != 0)
		goto out_signals;
	rc = fuse_session_loop(se) < 0;
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out:
	fuse_session_destroy(se);
	return rc;
}
