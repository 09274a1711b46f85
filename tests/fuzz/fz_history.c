/*
 * Fuzz target: the history parser and checker (tools/check). Histories are written by test
 * clients that may be killed mid-line; the checker must refuse bad input cleanly or check it.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "tools/check/qc_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qc_history h = {0};
	struct qc_perr err;

	int rc = qc_history_parse((const char *)data, size, &h, &err);
	if (rc != 0 && rc != -EINVAL)
		abort();
	if (rc == -EINVAL && err.line == 0)
		abort(); /* every refusal names its line */
	if (rc == 0) {
		struct qc_result r = {0};
		struct qc_opts o = {.shrink_seconds = 0.01};
		if (qc_check(&h, &o, &r) != 0)
			abort();
		qc_result_free(&r);
	}
	qc_history_free(&h);
	return 0;
}
