/*
 * qfs_mktree DIR DIRS PER_DIR: add /bulk with DIRS directory nodes of PER_DIR file nodes each to
 * the store in DIR, directly through store/ (tests only: building 100,000 nodes through a mount
 * would time the mount, not the restart). Batches many tree transactions per LMDB commit.
 * qfs_mktree DIR fileparent: add /fp, a node created as a file (as a ZooKeeper client would) with
 * data "parent data" and a child /fp/child: the mount must show it as a directory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/st.h"
#include "store/zt.h"

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int apply_one(struct st_wtxn *w, uint64_t zxid, const struct zt_op *op)
{
	struct zt_txn txn = {.zxid = zxid, .time_ms = now_ms(), .nops = 1, .ops = op};
	struct zt_result res;
	int rv = zt_apply(w, &txn, &res, NULL, NULL);

	if (rv == 0) {
		rv = res.err;
		zt_results_free(&res, 1);
	}
	return rv;
}

int main(int argc, char **argv)
{
	struct st_env *env;
	struct st_rtxn *r;
	struct st_wtxn *w = NULL;
	uint64_t zxid;
	long dirs, per;
	char path[128], data[32];
	int rv, inbatch = 0;

	if (argc == 3 && strcmp(argv[2], "fileparent") == 0) {
		struct zt_op a = {.type = ZT_OP_CREATE,
				  .version = -1,
				  .path = "/fp",
				  .data = "parent data",
				  .len = 11};
		struct zt_op b = {.type = ZT_OP_CREATE, .version = -1, .path = "/fp/child"};

		rv = st_open(argv[1], 0, &env);
		if (rv != 0)
			return 1;
		rv = st_rbegin(env, &r);
		if (rv == 0) {
			zxid = zt_last_zxid(r);
			st_rend(r);
			rv = st_wbegin(env, &w);
		}
		if (rv == 0) {
			rv = apply_one(w, ++zxid, &a);
			if (rv == 0)
				rv = apply_one(w, ++zxid, &b);
			if (rv == 0)
				rv = st_wcommit(w);
			else
				st_wabort(w);
		}
		st_close(env);
		return rv == 0 ? 0 : 1;
	}
	if (argc != 4) {
		fprintf(stderr, "usage: qfs_mktree DIR DIRS PER_DIR\n");
		return 2;
	}
	dirs = strtol(argv[2], NULL, 10);
	per = strtol(argv[3], NULL, 10);
	rv = st_open(argv[1], 0, &env);
	if (rv != 0) {
		fprintf(stderr, "st_open %s: %s\n", argv[1], strerror(-rv));
		return 1;
	}
	rv = st_rbegin(env, &r);
	if (rv != 0)
		goto err;
	zxid = zt_last_zxid(r);
	st_rend(r);
	for (long d = -1; d < dirs; d++) {
		for (long n = -1; n < (d < 0 ? 0 : per); n++) {
			struct zt_op op = {.type = ZT_OP_CREATE, .version = -1, .path = path};

			if (d < 0) {
				snprintf(path, sizeof(path), "/bulk");
				op.flags = ZT_CREATE_DIR;
			} else if (n < 0) {
				snprintf(path, sizeof(path), "/bulk/d%03ld", d);
				op.flags = ZT_CREATE_DIR;
			} else {
				snprintf(path, sizeof(path), "/bulk/d%03ld/n%05ld", d, n);
				op.len =
				    (uint32_t)snprintf(data, sizeof(data), "value %ld.%ld", d, n);
				op.data = data;
			}
			if (!w) {
				rv = st_wbegin(env, &w);
				if (rv != 0)
					goto err;
			}
			rv = apply_one(w, ++zxid, &op);
			if (rv != 0) {
				fprintf(stderr, "create %s: %s\n", path, strerror(-rv));
				st_wabort(w);
				goto out;
			}
			if (++inbatch == 10000) {
				rv = st_wcommit(w);
				w = NULL;
				inbatch = 0;
				if (rv != 0)
					goto err;
			}
		}
	}
	if (w) {
		rv = st_wcommit(w);
		if (rv != 0)
			goto err;
	}
	st_close(env);
	return 0;
err:
	fprintf(stderr, "store: %s\n", strerror(-rv));
out:
	st_close(env);
	return 1;
}
