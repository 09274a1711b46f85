/*
 * Fuzz target: the parsers of the mount's control inputs (fs/parse.h): .zk/multi requests (every
 * line through fs__multi_parse, split as fs.c splits a write), the -x data escapes
 * (fs__unescape) and xattr version values (fs__parse_i32, user.zk.expect_version). The first
 * input byte picks the parser (mod 3), the rest is the input. Properties: only 0 or -EINVAL; an
 * accepted op points inside the line with a valid type and flags; a decoded escape string
 * re-escapes to an input that decodes to the same bytes; an accepted version is in -1..INT32_MAX
 * and its decimal form parses back to it.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void multi(char *s, size_t size)
{
	char *save = NULL, *end = s + size;

	for (char *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		size_t ll = strlen(line);
		char *lend = line + ll;
		struct zt_op op;
		int rc = fs__multi_parse(line, &op);

		if (rc != 0 && rc != -EINVAL)
			abort();
		if (rc != 0)
			continue;
		if (op.type < ZT_OP_CREATE || op.type > ZT_OP_CHECK || !op.path || op.path < line ||
		    op.path >= lend)
			abort();
		if (op.flags & ~(ZT_CREATE_DIR | ZT_CREATE_SEQUENTIAL | ZT_CREATE_EPHEMERAL))
			abort();
		if (op.type != ZT_OP_CREATE && op.flags)
			abort();
		if (op.type == ZT_OP_CHECK && op.version < 0)
			abort();
		if (op.len && (!op.data || (const char *)op.data < line ||
			       (const char *)op.data + op.len > lend || lend > end))
			abort();
		if (op.len && op.type != ZT_OP_CREATE && op.type != ZT_OP_SET)
			abort();
	}
}

static void unescape(char *s)
{
	uint32_t len, len2;
	size_t in = strlen(s);
	int rc = fs__unescape(s, &len);

	if (rc != 0 && rc != -EINVAL)
		abort();
	if (rc != 0)
		return;
	if (len > in)
		abort();
	/* escape every decoded byte as \xHH: it must decode to the same bytes */
	char *e = malloc((size_t)len * 4 + 1);
	if (!e)
		abort();
	for (uint32_t i = 0; i < len; i++)
		snprintf(e + 4 * i, 5, "\\x%02x", (unsigned char)s[i]);
	e[4 * (size_t)len] = '\0';
	if (fs__unescape(e, &len2) != 0 || len2 != len || memcmp(e, s, len) != 0)
		abort();
	free(e);
}

static void version(const char *s, size_t size)
{
	int32_t v;
	char buf[16];
	int rc = fs__parse_i32(s, size, &v);

	if (rc != 0 && rc != -EINVAL)
		abort();
	if (rc != 0)
		return;
	if (v < -1)
		abort();
	int n = snprintf(buf, sizeof buf, "%d", v);
	int32_t w;
	if (fs__parse_i32(buf, (size_t)n, &w) != 0 || w != v)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	char *s = malloc(size);
	if (!s)
		abort();
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	switch (data[0] % 3) {
	case 0:
		multi(s, size - 1);
		break;
	case 1:
		unescape(s);
		break;
	default:
		version((const char *)data + 1, size - 1);
		break;
	}
	free(s);
	return 0;
}
