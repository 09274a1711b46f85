#define FUSE_USE_VERSION 312

#include "fs/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <fuse3/fuse_log.h>

/* Written by fs_log_init before other threads exist; read-only afterwards. */
static enum fs_log_level log_level = FS_LOG_INFO;
static int log_syslog;

static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const int level_prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};

static void fs__vlog(enum fs_log_level level, const char *fmt, va_list ap)
{
	char msg[1024];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	if (log_syslog) {
		syslog(level_prio[level], "%s", msg);
	} else {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		fprintf(stderr, "%02d:%02d:%02d.%03ld quorumfs %s: %s\n", tm.tm_hour, tm.tm_min,
			tm.tm_sec, ts.tv_nsec / 1000000, level_names[level], msg);
	}
}

/* libfuse's messages: map its syslog-style levels onto ours. */
static void fs__fuse_log(enum fuse_log_level level, const char *fmt, va_list ap)
{
	enum fs_log_level l;

	if (level <= FUSE_LOG_ERR)
		l = FS_LOG_ERROR;
	else if (level == FUSE_LOG_WARNING)
		l = FS_LOG_WARN;
	else if (level <= FUSE_LOG_INFO)
		l = FS_LOG_INFO;
	else
		l = FS_LOG_DEBUG;
	if (l <= log_level)
		fs__vlog(l, fmt, ap);
}

void fs_log_init(enum fs_log_level level, int use_syslog)
{
	log_level = level;
	if (use_syslog && !log_syslog)
		openlog("quorumfs", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_syslog = use_syslog;
	fuse_set_log_func(fs__fuse_log);
}

int fs_log_parse_level(const char *s, enum fs_log_level *out)
{
	for (int i = 0; i <= FS_LOG_DEBUG; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum fs_log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

enum fs_log_level fs_log_level(void)
{
	return log_level;
}

void fs_log(enum fs_log_level level, const char *fmt, ...)
{
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	fs__vlog(level, fmt, ap);
	va_end(ap);
}
