/* fs/parse: the parsers of the .zk/ control inputs and xattr values (see parse.h). */
#include "fs/parse.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int fs__parse_i32(const char *value, size_t size, int32_t *out)
{
	char buf[16], *end;
	long long v;

	if (size == 0 || size >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, value, size);
	buf[size] = '\0';
	errno = 0;
	v = strtoll(buf, &end, 10);
	if (errno != 0 || *end != '\0' || v < -1 || v > INT32_MAX)
		return -EINVAL;
	*out = (int32_t)v;
	return 0;
}

int fs__unescape(char *s, uint32_t *len)
{
	char *w = s;

	for (const char *r = s; *r; r++) {
		if (*r != '\\') {
			*w++ = *r;
			continue;
		}
		switch (*++r) {
		case 'n':
			*w++ = '\n';
			break;
		case 't':
			*w++ = '\t';
			break;
		case 'r':
			*w++ = '\r';
			break;
		case '0':
			*w++ = '\0';
			break;
		case '\\':
			*w++ = '\\';
			break;
		case 'x': {
			int v = 0;

			for (int i = 1; i <= 2; i++) {
				char c = r[i];
				int d = c >= '0' && c <= '9'   ? c - '0'
					: c >= 'a' && c <= 'f' ? c - 'a' + 10
					: c >= 'A' && c <= 'F' ? c - 'A' + 10
							       : -1;

				if (d < 0)
					return -EINVAL;
				v = v * 16 + d;
			}
			*w++ = (char)v;
			r += 2;
			break;
		}
		default:
			return -EINVAL; /* also a trailing backslash */
		}
	}
	*len = (uint32_t)(w - s);
	return 0;
}

int fs__multi_parse(char *line, struct zt_op *op)
{
	int escaped = 0;

	char *save = NULL, *w = strtok_r(line, " ", &save), *path = NULL, *rest;

	memset(op, 0, sizeof(*op));
	op->version = -1;
	if (!w)
		return -EINVAL;
	if (strcmp(w, "create") == 0)
		op->type = ZT_OP_CREATE;
	else if (strcmp(w, "set") == 0)
		op->type = ZT_OP_SET;
	else if (strcmp(w, "delete") == 0)
		op->type = ZT_OP_DELETE;
	else if (strcmp(w, "check") == 0)
		op->type = ZT_OP_CHECK;
	else
		return -EINVAL;
	while ((w = strtok_r(NULL, " ", &save)) != NULL) {
		if (op->type == ZT_OP_CREATE && strcmp(w, "-d") == 0) {
			op->flags |= ZT_CREATE_DIR;
		} else if (op->type == ZT_OP_CREATE && strcmp(w, "-s") == 0) {
			op->flags |= ZT_CREATE_SEQUENTIAL;
		} else if (op->type == ZT_OP_CREATE && strcmp(w, "-e") == 0) {
			op->flags |= ZT_CREATE_EPHEMERAL;
		} else if ((op->type == ZT_OP_CREATE || op->type == ZT_OP_SET) &&
			   strcmp(w, "-x") == 0) {
			escaped = 1;
		} else if (op->type != ZT_OP_CREATE && strcmp(w, "-v") == 0) {
			char *v = strtok_r(NULL, " ", &save), *end;
			long long x = v ? strtoll(v, &end, 10) : -2;

			if (!v || *end || x < 0 || x > INT32_MAX)
				return -EINVAL;
			op->version = (int32_t)x;
		} else {
			path = w;
			break;
		}
	}
	if (!path || (op->type == ZT_OP_CHECK && op->version < 0))
		return -EINVAL;
	op->path = path;
	rest = save && *save ? save : NULL;
	if (rest && (op->type == ZT_OP_CREATE || op->type == ZT_OP_SET)) {
		op->data = rest;
		op->len = (uint32_t)strlen(rest);
		if (escaped && fs__unescape(rest, &op->len) != 0)
			return -EINVAL;
	} else if (rest) {
		return -EINVAL;
	}
	return 0;
}
