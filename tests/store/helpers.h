/* Shared helpers of the store tests: temporary data directories and a small tree driver. */
#ifndef QFS_TESTS_STORE_HELPERS_H
#define QFS_TESTS_STORE_HELPERS_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/st.h"
#include "store/zt.h"

/* Make a fresh directory under TMPDIR (or /tmp); DIR must hold 256 bytes. */
static inline void h_mkdir(char *dir)
{
	const char *t = getenv("TMPDIR");
	snprintf(dir, 256, "%s/qfs-store-XXXXXX", t ? t : "/tmp");
	cr_assert_not_null(mkdtemp(dir));
}

/* Remove DIR and the files in it (no subdirectories are made). */
static inline void h_rmdir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[512];

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

#endif
