/*
 * fs/parse: the parsers of what users write to the mount's control inputs, apart from the FUSE
 * layer so that the fuzz targets (tests/fuzz/fz_fs_ctl.c) reach them without a mount. Private to
 * fs/ and its tests. Pure functions: no allocation, no global state; any thread.
 */
#ifndef QFS_FS_PARSE_H
#define QFS_FS_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "store/zt.h"

/* An xattr value holding a version (user.zk.expect_version): VALUE[0..size) (no NUL needed), a
 * decimal integer in -1..INT32_MAX, nothing after it (strtoll's leading blanks and sign are
 * accepted). 0 with *OUT set, or -EINVAL. */
int fs__parse_i32(const char *value, size_t size, int32_t *out);

/* The -x escapes of .zk/multi data (fs.c, "multi"): decode the NUL-terminated S in place: \n \t
 * \r \0 \\ and \xHH (two hex digits); any other backslash, or a trailing one, is -EINVAL. 0
 * with *LEN = the decoded length (at most strlen(S); the bytes may include NULs). */
int fs__unescape(char *s, uint32_t *len);

/* One line of a .zk/multi request (without its newline), NUL-terminated in LINE, which is
 * modified (tokenised, data unescaped in place): "create [-d] [-s] [-e] [-x] PATH [DATA]",
 * "set [-v V] [-x] PATH [DATA]", "delete [-v V] PATH", "check -v V PATH". On 0, OP (zeroed first,
 * version -1 unless -v) points into LINE; flags ZT_CREATE_* (ZT_CREATE_EPHEMERAL for -e: the
 * caller sets owner). -EINVAL for anything else. */
int fs__multi_parse(char *line, struct zt_op *op);

#endif
