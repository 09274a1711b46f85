/*
 * Writes the seed corpus of the fuzz targets: valid inputs made by the real encoders.
 *   gen_corpus DIR      writes DIR/<target>/seed-NNN
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "consensus/px_batch.h"
#include "consensus/px_msg.h"
#include "store/zt.h"
#include "store/zt_snap.h"
#include "tools/check/qc_check.h"

static const char *dir;

static void put(const char *target, int n, const void *buf, size_t len)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, target);
	if (mkdir(path, 0777) != 0 && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof path, "%s/%s/seed-%03d", dir, target, n);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

static void px_msgs(void)
{
	static const uint8_t v1[] = "set /a 1", v2[] = "create /b";
	struct px_entry ent[3] = {
	    {.slot = 7, .ballot = 0x105, .flags = 0, .len = sizeof v1, .data = v1},
	    {.slot = 8, .ballot = 0x105, .flags = PX_ENT_CHOSEN, .len = sizeof v2, .data = v2},
	    {.slot = 9, .ballot = 0x205, .flags = 0, .len = 0, .data = NULL},
	};
	struct px_sub sub[2] = {
	    {.client = 0xabc, .seq = 1, .len = sizeof v1, .data = v1},
	    {.client = 0xdef, .seq = 99, .len = 0, .data = NULL},
	};
	int n = 0;
	for (int type = PX_MSG_PREPARE; type <= PX_MSG_TYPE_MAX; type++) {
		for (int shape = 0; shape < 3; shape++) {
			struct px_msg m = {.type = (uint8_t)type,
					   .from = 1,
					   .to = 2,
					   .ballot = 0x305,
					   .commit = 6,
					   .slot = 7,
					   .aux = 0};
			if (shape == 1) {
				m.nent = type == PX_MSG_ACCEPTED ? 1 : 3;
				m.ent = type == PX_MSG_ACCEPTED ? &ent[2] : ent;
			} else if (shape == 2) {
				m.nsub = 2;
				m.sub = sub;
				m.aux = 1;
			}
			size_t need = px_msg_size(&m);
			uint8_t *buf = malloc(need);
			long len = px_msg_encode(&m, buf, need);
			struct px_msg d;
			struct px_msg_scratch sc = {0};
			if (len > 0 && px_msg_decode(buf, (size_t)len, &d, &sc) == 0)
				put("px_msg", n++, buf, (size_t)len);
			px_msg_scratch_free(&sc);
			free(buf);
		}
	}
}

static void px_batches(void)
{
	uint8_t buf[256];
	size_t len = 0;
	int n = 0;
	put("px_batch", n++, buf, 0); /* a no-op */
	for (uint32_t count = 1; count <= 3; count++) {
		len = 0;
		uint64_t stamp = 1795830000000ull + count; /* the leader's stamp */
		memcpy(buf, &count, 4);			    /* little-endian hosts */
		memcpy(buf + 4, &stamp, 8);
		len = 12;
		for (uint32_t i = 0; i < count; i++) {
			uint64_t client = 100 + i, seq = 1 + i;
			uint32_t l = i * 3;
			memcpy(buf + len, &client, 8);
			memcpy(buf + len + 8, &seq, 8);
			memcpy(buf + len + 16, &l, 4);
			len += 20;
			memset(buf + len, 'a' + (int)i, l);
			len += l;
		}
		put("px_batch", n++, buf, len);
	}
}

static void px_filters(void)
{
	for (int n = 0; n < 4; n++) {
		struct px_filter f = {0};
		/* clients of nodes 1..n, incarnations in ms, two clients of node 1 */
		for (int c = 0; c < n * 2; c++)
			for (uint64_t seq = 1; seq <= (uint64_t)(c * 40 + 3); seq++)
				if (px_filter_admit(&f,
						    PX_CLIENT(1 + c / 2, 1795830000000ull + (uint64_t)c / 2,
							      c % 2),
						    seq) < 0)
					exit(1);
		size_t len = px_filter_size(&f);
		uint8_t *buf = malloc(len);
		if (!buf || px_filter_encode(&f, buf, len) != 0)
			exit(1);
		put("px_filter", n, buf, len);
		free(buf);
		px_filter_free(&f);
	}
}

/* px_rec inputs: selector byte, then a px_meta value or a px_log record as io_lmdb.c writes them
 * (fz_px_rec.c describes the framing). */
static void px_recs(void)
{
	uint8_t buf[512];
	int n = 0;
	/* fixed-size meta values: init, format, promised, commit, applied, compacted, incarnation,
	 * cluster */
	static const size_t lens[] = {1, 4, 8, 8, 8, 8, 8, 16};
	uint64_t ballot = 0x702; /* an example */
	uint64_t u64[] = {1, 2, ballot, 4100, 4096, 3000, 1795830000123ull, 0};
	for (int i = 0; i < 8; i++) {
		buf[0] = 0;
		buf[1] = (uint8_t)i;
		if (i == 7)
			memcpy(buf + 2, "0123456789abcdef", 16);
		else
			memcpy(buf + 2, &u64[i], lens[i]); /* little-endian hosts */
		put("px_rec", n++, buf, 2 + lens[i]);
	}
	/* log records: be64(slot) -> ballot, flags, a batch value (empty: a no-op) */
	for (uint32_t count = 0; count <= 2; count++) {
		uint64_t slot = 4097 + count, stamp = 1795830000000ull;
		uint32_t flags = count;
		size_t len = 2;
		buf[0] = 1;
		buf[1] = 8;
		for (int b = 0; b < 8; b++)
			buf[len++] = (uint8_t)(slot >> (56 - 8 * b));
		memcpy(buf + len, &ballot, 8);
		memcpy(buf + len + 8, &flags, 4);
		len += 12;
		if (count) {
			memcpy(buf + len, &count, 4);
			memcpy(buf + len + 4, &stamp, 8);
			len += 12;
			for (uint32_t i = 0; i < count; i++) {
				uint64_t client = PX_CLIENT(1, stamp, i), seq = 1 + i;
				uint32_t l = 4 + i;
				memcpy(buf + len, &client, 8);
				memcpy(buf + len + 8, &seq, 8);
				memcpy(buf + len + 16, &l, 4);
				len += 20;
				memset(buf + len, 'a' + (int)i, l);
				len += l;
			}
		}
		put("px_rec", n++, buf, len);
	}
	/* the filter */
	struct px_filter f = {0};
	for (uint64_t seq = 1; seq <= 5; seq++)
		if (px_filter_admit(&f, PX_CLIENT(2, 1795830000000ull, 0), seq) < 0)
			exit(1);
	size_t flen = px_filter_size(&f);
	buf[0] = 2;
	if (flen > sizeof buf - 1 || px_filter_encode(&f, buf + 1, flen) != 0)
		exit(1);
	put("px_rec", n++, buf, 1 + flen);
	px_filter_free(&f);
}

/* snap_frame inputs: frames of a snapshot transfer after their magic (io_snap.h), laid out as
 * io_uv.c sends them: a BEGIN with a filter, a DATA chunk, an END. */
static void snap_frames(void)
{
	uint8_t buf[512];
	struct px_filter f = {0};
	uint64_t xfer = 3, v;
	uint32_t u;
	for (uint64_t seq = 1; seq <= 4; seq++)
		if (px_filter_admit(&f, PX_CLIENT(3, 1795830000000ull, 1), seq) < 0)
			exit(1);
	uint32_t flen = (uint32_t)px_filter_size(&f);
	for (int kind = 1; kind <= 3; kind++) { /* little-endian hosts */
		size_t len = 16;
		memset(buf, 0, sizeof buf);
		buf[0] = (uint8_t)kind;
		memcpy(buf + 4, &xfer, 8);
		u = kind == 3 ? 1 : 0; /* the chunk index */
		memcpy(buf + 12, &u, 4);
		if (kind == 1) {
			v = 4096; /* applied slot, last zxid, next node id, the filter */
			memcpy(buf + len, &v, 8);
			v = 4000;
			memcpy(buf + len + 8, &v, 8);
			v = 1234;
			memcpy(buf + len + 16, &v, 8);
			memcpy(buf + len + 24, &flen, 4);
			len += 28;
			if (len + flen > sizeof buf || px_filter_encode(&f, buf + len, flen) != 0)
				exit(1);
			len += flen;
		} else if (kind == 2) {
			memcpy(buf + len, "\x0a\x00\x00\x00\x00\x00", 6); /* a record's lengths */
			len += 6 + 10;
		} else {
			u = 1; /* chunks, records */
			memcpy(buf + len, &u, 4);
			v = 25;
			memcpy(buf + len + 4, &v, 8);
			len += 12;
		}
		put("snap_frame", kind - 1, buf, len);
	}
	px_filter_free(&f);
}

static void zt_txns(void)
{
	static const char d1[] = "hello";
	struct zt_op ops[][3] = {
	    {{.type = ZT_OP_CREATE, .flags = 0, .path = "/a", .data = d1, .len = 5}},
	    {{.type = ZT_OP_CREATE,
	      .flags = ZT_CREATE_SEQUENTIAL | ZT_CREATE_EPHEMERAL,
	      .owner = 0x1234,
	      .path = "/q/",
	      .data = NULL,
	      .len = 0}},
	    {{.type = ZT_OP_SET, .version = 3, .path = "/a/b", .data = d1, .len = 5}},
	    {{.type = ZT_OP_DELETE, .version = -1, .path = "/a"}},
	    {{.type = ZT_OP_CHECK, .version = 7, .path = "/a"}},
	    {{.type = ZT_OP_RENAME, .path = "/a", .path2 = "/b"}},
	    {{.type = ZT_OP_CHECK, .version = 1, .path = "/lock"},
	     {.type = ZT_OP_SET, .version = -1, .path = "/lock", .data = d1, .len = 2},
	     {.type = ZT_OP_CREATE, .flags = ZT_CREATE_DIR, .path = "/dir"}},
	};
	uint32_t nops[] = {1, 1, 1, 1, 1, 1, 3};
	for (size_t i = 0; i < sizeof nops / sizeof nops[0]; i++) {
		void *buf;
		size_t len;
		if (zt_ops_encode(ops[i], nops[i], &buf, &len) == 0) {
			put("zt_ops", (int)i, buf, len);
			free(buf);
		}
	}
}

static void zt_paths(void)
{
	static const char *paths[] = {"/",
				      "/a",
				      "/a/b/c",
				      "/zookeeper",
				      "/q/lock-0000000001",
				      "/caf\xc3\xa9",
				      "/\xf0\x9f\x98\x80",
				      "a",
				      "/a/",
				      "//",
				      "/a/../b",
				      "/\x01",
				      "/\xc0\xaf"};
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
		put("zt_path", (int)i, paths[i], strlen(paths[i]));
}

static void histories(void)
{
	for (int i = 0; i < 4; i++) {
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		struct qc_gen_opts o = {.seed = (uint64_t)i + 1,
					.procs = 2 + (unsigned)i,
					.keys = 1 + (unsigned)i % 2,
					.ops = 12,
					.pct_unknown = 10,
					.pct_fail = 10,
					.pct_lread = 30,
					.mutate = i == 3};
		if (!f || qc_gen(f, &o) != 0)
			exit(1);
		fclose(f);
		put("history", i, buf, len);
		free(buf);
	}
	static const char hand[] = "history version=1 seed=5\n"
				   "init key=/r value=a%20b version=3\n"
				   "inv p=1 op=1 t=10 key=/r f=cas expect=3 value=c\n"
				   "inv p=2 op=1 t=11 key=/r f=lread\n"
				   "ok p=2 op=1 t=12 value=a%20b version=3\n"
				   "fail p=1 op=1 t=20 err=badversion\n"
				   "inv p=1 op=2 t=30 key=/r f=create-seq\n"
				   "info p=1 op=2 t=40 err=timeout\n";
	put("history", 4, hand, sizeof hand - 1);
}

/* fs_ctl: the first byte picks the parser (0 multi, 1 unescape, 2 version). */
static void fs_ctls(void)
{
	static const char *const in[] = {
	    "\0create -d /app\ncreate /app/a hello world\ncreate -s /app/job- x\nset /app/a bye\n"
	    "check -v 1 /app/a\n",
	    "\0create -e -s /locks/lock- 123\ndelete -v 3 /x\n# comment\n\n",
	    "\0create -x /esc a\\nb\\\\c\\x41\\0z\nset -v 0 -x /esc one\\ttwo\n",
	    "\1a\\nb\\tc\\rd\\0e\\\\f\\x7Fg",
	    "\1plain",
	    "\2"
	    "17",
	    "\2-1",
	    "\2"
	    "2147483647",
	};
	for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
		size_t len = 1 + strlen(in[i] + 1);
		put("fs_ctl", (int)i, in[i], len);
	}
}

/* Apply OP alone as transaction ZXID; its result's stat in *ST (optional). */
static void snap_apply(struct st_env *env, uint64_t zxid, struct zt_op op, struct zt_stat *st)
{
	struct st_wtxn *w;
	struct zt_txn t = {
	    .zxid = zxid, .time_ms = 1700000000000 + (int64_t)zxid, .nops = 1, .ops = &op};
	struct zt_result res;
	if (st_wbegin(env, &w) || zt_apply(w, &t, &res, NULL, NULL) || res.err || st_wcommit(w)) {
		fprintf(stderr, "gen_corpus: zt_snap: %s failed\n", op.path);
		exit(1);
	}
	if (st)
		*st = res.stat;
	zt_results_free(&res, 1);
}

/* zt_snap inputs: u64 next_id, u64 last_zxid, then one chunk of the whole tree, as exported after
 * each step of a growing tree (the root alone; directories and data; a node session and ephemerals,
 * one renamed; a deep path). */
static void zt_snaps(void)
{
	char tmp[] = "/tmp/qfs-gen-snap-XXXXXX", p[4096];
	unsigned char *buf = malloc(16 + ZT_SNAP_REC_MAX);
	struct st_env *env;
	struct zt_stat st;
	uint64_t zxid = 0;
	int64_t sess = 0;

	if (!buf || !mkdtemp(tmp) || st_open(tmp, ST_F_NOSYNC, &env)) {
		perror("gen_corpus: zt_snap");
		exit(1);
	}
	for (int step = 0; step < 4; step++) {
		struct zt_snap_cursor c = {0};
		struct zt_snap_state ss;
		struct st_rtxn *r;
		size_t len;
		if (step == 1) {
			snap_apply(env, ++zxid,
				   (struct zt_op){.type = ZT_OP_CREATE,
						  .flags = ZT_CREATE_DIR,
						  .path = "/app"},
				   NULL);
			snap_apply(env, ++zxid,
				   (struct zt_op){.type = ZT_OP_CREATE,
						  .path = "/app/config",
						  .data = "42",
						  .len = 2},
				   NULL);
			snap_apply(env, ++zxid,
				   (struct zt_op){.type = ZT_OP_SET,
						  .version = -1,
						  .path = "/app/config",
						  .data = "43\n",
						  .len = 3},
				   NULL);
			snap_apply(env, ++zxid,
				   (struct zt_op){.type = ZT_OP_CREATE,
						  .flags = ZT_CREATE_SEQUENTIAL,
						  .path = "/app/q-"},
				   NULL);
		} else if (step == 2) {
			snap_apply(env, ++zxid,
				   (struct zt_op){.type = ZT_OP_SESSION,
						  .flags = ZT_SESSION_F_OPEN,
						  .version = 2000,
						  .owner = (int64_t)((uint64_t)1 << 56),
						  .path = "/"},
				   &st);
			sess = st.ephemeral_owner;
			snap_apply(env, ++zxid,
				   (struct zt_op){.type = ZT_OP_CREATE,
						  .flags = ZT_CREATE_EPHEMERAL,
						  .owner = sess | 1,
						  .path = "/app/lock"},
				   NULL);
			snap_apply(env, ++zxid,
				   (struct zt_op){.type = ZT_OP_CREATE,
						  .flags = ZT_CREATE_EPHEMERAL,
						  .owner = sess | 2,
						  .path = "/member"},
				   NULL);
			snap_apply(env, ++zxid,
				   (struct zt_op){.type = ZT_OP_RENAME,
						  .path = "/member",
						  .path2 = "/app/member"},
				   NULL);
		} else if (step == 3) {
			strcpy(p, "/d");
			for (int i = 0; i < 6; i++) {
				snap_apply(env, ++zxid,
					   (struct zt_op){.type = ZT_OP_CREATE,
							  .flags = ZT_CREATE_DIR,
							  .path = p},
					   NULL);
				strcat(p, "/\xc3\xa9t\xc3\xa9");
			}
		}
		if (st_rbegin(env, &r) || zt_snap_state(r, &ss) ||
		    zt_snap_export(r, &c, buf + 16, ZT_SNAP_REC_MAX, &len) <= 0 || !c.done) {
			fprintf(stderr, "gen_corpus: zt_snap: export failed\n");
			exit(1);
		}
		st_rend(r);
		memcpy(buf, &ss.next_id, 8);
		memcpy(buf + 8, &ss.last_zxid, 8);
		put("zt_snap", step, buf, 16 + len);
	}
	st_close(env);
	DIR *d = opendir(tmp);
	for (struct dirent *e; d && (e = readdir(d));)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			snprintf(p, sizeof p, "%s/%s", tmp, e->d_name);
			unlink(p);
		}
	if (d)
		closedir(d);
	rmdir(tmp);
	free(buf);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen_corpus DIR\n");
		return 2;
	}
	dir = argv[1];
	px_msgs();
	px_batches();
	px_filters();
	px_recs();
	snap_frames();
	zt_txns();
	zt_paths();
	zt_snaps();
	histories();
	fs_ctls();
	return 0;
}
