/*
 * Fuzz target: zt_path_validate (store/zt.h), which guards every path a client names (through
 * the mount, .zk/ control files and xattrs). Any byte string must be answered 0 or ZT_EBADARGS;
 * an accepted path must also satisfy the rules zt.h states.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/zt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = 0;
	int rc = zt_path_validate(s);
	if (rc != 0 && rc != ZT_EBADARGS)
		abort();
	if (rc == 0) {
		size_t len = strlen(s);
		if (s[0] != '/' || len >= ZT_PATH_MAX)
			abort();
		/* every component of a path other than "/" is a name: not empty, "." or ".." */
		for (size_t i = 0; len > 1 && i < len;) {
			size_t j = i + 1;
			while (j < len && s[j] != '/')
				j++;
			size_t nl = j - i - 1;
			if (nl == 0 || nl > ZT_NAME_MAX || (nl == 1 && s[i + 1] == '.') ||
			    (nl == 2 && s[i + 1] == '.' && s[i + 2] == '.'))
				abort();
			i = j;
		}
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
				abort();
	}
	free(s);
	return 0;
}
