/*
 * fs_log: levelled logging for the daemon and the FUSE layer.
 *
 * Messages go to stderr (foreground) or to syslog (detached). libfuse's own messages are routed
 * through the same sink. Thread-safe: any thread may log at any time after fs_log_init().
 */
#ifndef QFS_FS_LOG_H
#define QFS_FS_LOG_H

enum fs_log_level {
	FS_LOG_ERROR = 0,
	FS_LOG_WARN = 1,
	FS_LOG_INFO = 2,
	FS_LOG_DEBUG = 3,
};

/* Log messages of LEVEL and more severe; to syslog (ident "quorumfs") when USE_SYSLOG. Call once
 * at start-up (and again when the daemon detaches), before other threads log. */
void fs_log_init(enum fs_log_level level, int use_syslog);

/* Parse "error", "warn", "info" or "debug". 0 or -EINVAL. */
int fs_log_parse_level(const char *s, enum fs_log_level *out);

enum fs_log_level fs_log_level(void);

void fs_log(enum fs_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define fs_error(...) fs_log(FS_LOG_ERROR, __VA_ARGS__)
#define fs_warn(...)  fs_log(FS_LOG_WARN, __VA_ARGS__)
#define fs_info(...)  fs_log(FS_LOG_INFO, __VA_ARGS__)
#define fs_debug(...)                                                                              \
	do {                                                                                       \
		if (fs_log_level() >= FS_LOG_DEBUG)                                                \
			fs_log(FS_LOG_DEBUG, __VA_ARGS__);                                         \
	} while (0)

#endif
