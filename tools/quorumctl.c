/*
 * quorumctl: a thin command-line client over a quorumfs mount. It only uses the mount (files,
 * extended attributes), so it works with any tool that can reach the mount point.
 *
 *   quorumctl status MOUNT          the node's .zk/status
 *   quorumctl get MOUNT/PATH        the node's data, byte for byte
 *   quorumctl set MOUNT/PATH DATA   replace the data in ONE write (one version); DATA "-": stdin
 *   quorumctl stat MOUNT/PATH       the node's stat, as zkCli prints it
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define MAX_DATA (1024 * 1024 - 1)

static void usage(FILE *f)
{
	fprintf(f, "usage: quorumctl status MOUNT\n"
		   "       quorumctl get MOUNT/PATH\n"
		   "       quorumctl set MOUNT/PATH DATA      (DATA '-' reads standard input)\n"
		   "       quorumctl stat MOUNT/PATH\n"
		   "       quorumctl --help | --version\n");
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

static int cmd_set(const char *path, const char *data)
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
	n = write(fd, buf, len);
	rv = 0;
	if (n < 0) {
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

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("quorumctl %s\n", QFS_VERSION);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "status") == 0) {
		char file[8192];

		snprintf(file, sizeof(file), "%s/.zk/status", argv[2]);
		return cat_file(file);
	}
	if (argc == 3 && strcmp(argv[1], "get") == 0)
		return cmd_get(argv[2]);
	if (argc == 4 && strcmp(argv[1], "set") == 0)
		return cmd_set(argv[2], argv[3]);
	if (argc == 3 && strcmp(argv[1], "stat") == 0)
		return cmd_stat(argv[2]);
	usage(stderr);
	return 2;
}
