/* zt_ops_encode / zt_ops_decode: round trips, and every malformed input refused without a crash. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/zt.h"

static const char big_data[3000] = {1, 2, 3};

static const struct zt_op sample[] = {
    {.type = ZT_OP_CREATE,
     .flags = ZT_CREATE_DIR | ZT_CREATE_EPHEMERAL,
     .version = 0,
     .owner = -7,
     .path = "/a/b",
     .data = "hello",
     .len = 5},
    {.type = ZT_OP_DELETE, .version = -1, .path = "/x"},
    {.type = ZT_OP_SET, .version = 0x7fffffff, .path = "/s", .data = big_data, .len = 3000},
    {.type = ZT_OP_CHECK, .version = 3, .path = "/"},
    {.type = ZT_OP_RENAME, .path = "/from", .path2 = "/to/\xc3\xa9"},
};
#define NSAMPLE (sizeof sample / sizeof sample[0])

static void same_ops(const struct zt_op *a, const struct zt_op *b, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		cr_assert_eq(a[i].type, b[i].type);
		cr_assert_eq(a[i].flags, b[i].flags);
		cr_assert_eq(a[i].version, b[i].version);
		cr_assert_eq(a[i].owner, b[i].owner);
		cr_assert_str_eq(a[i].path, b[i].path);
		if (a[i].type == ZT_OP_RENAME)
			cr_assert_str_eq(a[i].path2, b[i].path2);
		else
			cr_assert_null(b[i].path2);
		cr_assert_eq(a[i].len, b[i].len);
		if (a[i].len)
			cr_assert(memcmp(a[i].data, b[i].data, a[i].len) == 0);
	}
}

Test(codec, round_trip)
{
	void *buf;
	size_t len;
	struct zt_op *ops;
	uint32_t n;

	for (uint32_t k = 1; k <= NSAMPLE; k++) {
		cr_assert_eq(zt_ops_encode(sample, k, &buf, &len), 0);
		cr_assert_eq(zt_ops_decode(buf, len, &ops, &n), 0);
		cr_assert_eq(n, k);
		same_ops(sample, ops, n);
		free(ops);
		free(buf);
	}
}

Test(codec, format_is_stable)
{
	/* A golden encoding: the log and the network depend on these bytes never changing. */
	struct zt_op op = {.type = ZT_OP_SET,
			   .flags = 2,
			   .version = -1,
			   .owner = 0x0102030405060708,
			   .path = "/a",
			   .data = "z",
			   .len = 1};
	static const unsigned char want[] = {
	    'Q',  'Z',	'T',  1,    1,	 0,   0, 0, /* magic, version 1, nops 1 */
	    3,					    /* type */
	    2,	  0,	0,    0,		    /* flags */
	    0xff, 0xff, 0xff, 0xff,		    /* version -1 */
	    8,	  7,	6,    5,    4,	 3,   2, 1, /* owner */
	    3,	  0,	0,    0,    '/', 'a', 0,    /* path */
	    0,	  0,	0,    0,		    /* path2 */
	    1,	  0,	0,    0,    'z',	    /* data */
	};
	void *buf;
	size_t len;
	cr_assert_eq(zt_ops_encode(&op, 1, &buf, &len), 0);
	cr_assert_eq(len, sizeof want);
	cr_assert(memcmp(buf, want, len) == 0);
	free(buf);
}

Test(codec, every_truncation_is_refused)
{
	void *buf;
	size_t len;
	struct zt_op *ops;
	uint32_t n;

	cr_assert_eq(zt_ops_encode(sample, NSAMPLE, &buf, &len), 0);
	for (size_t l = 0; l < len; l++) {
		/* a copy of exactly l bytes, so ASan catches any read past the end */
		unsigned char *p = malloc(l ? l : 1);
		memcpy(p, buf, l);
		cr_assert_eq(zt_ops_decode(p, l, &ops, &n), -EINVAL, "prefix of %zu bytes", l);
		free(p);
	}
	/* and trailing garbage */
	unsigned char *p = malloc(len + 1);
	memcpy(p, buf, len);
	p[len] = 0;
	cr_assert_eq(zt_ops_decode(p, len + 1, &ops, &n), -EINVAL);
	free(p);
	free(buf);
}

/* Decoded ops must be self-consistent and inside the buffer whatever the input. */
static void check_decoded(const unsigned char *buf, size_t len, const struct zt_op *ops, uint32_t n)
{
	cr_assert_gt(n, 0);
	for (uint32_t i = 0; i < n; i++) {
		cr_assert(ops[i].type >= ZT_OP_CREATE && ops[i].type <= ZT_OP_RENAME);
		const char *p = ops[i].path;
		cr_assert((const unsigned char *)p >= buf && (const unsigned char *)p < buf + len);
		cr_assert(strlen(p) < (size_t)(buf + len - (const unsigned char *)p));
		cr_assert_eq(ops[i].path2 != NULL, ops[i].type == ZT_OP_RENAME);
		if (ops[i].len) {
			const unsigned char *d = ops[i].data;
			cr_assert(d >= buf && d + ops[i].len <= buf + len);
		}
	}
}

Test(codec, every_byte_corruption_is_safe)
{
	void *buf;
	size_t len;
	struct zt_op *ops;
	uint32_t n;
	static const unsigned char patterns[] = {0x00, 0xff, 0x80, 0x01, 0x7f};

	cr_assert_eq(zt_ops_encode(sample, NSAMPLE, &buf, &len), 0);
	unsigned char *p = malloc(len);
	size_t refused = 0, total = 0;
	for (size_t i = 0; i < len; i++) {
		for (size_t k = 0; k < sizeof patterns; k++) {
			memcpy(p, buf, len);
			if (p[i] == patterns[k])
				continue;
			p[i] = patterns[k];
			total++;
			int rc = zt_ops_decode(p, len, &ops, &n);
			if (rc == 0) {
				check_decoded(p, len, ops, n);
				free(ops);
			} else {
				cr_assert_eq(rc, -EINVAL);
				refused++;
			}
		}
	}
	cr_assert_gt(refused, 0);
	cr_log_info("%zu of %zu corruptions refused (the others only change a value)", refused,
		    total);
	free(p);
	free(buf);
}

Test(codec, random_inputs_are_safe)
{
	unsigned seed = 12345;
	struct zt_op *ops;
	uint32_t n;
	for (int iter = 0; iter < 20000; iter++) {
		size_t len = (size_t)(rand_r(&seed) % 96);
		unsigned char *p = malloc(len ? len : 1);
		for (size_t i = 0; i < len; i++)
			p[i] = (unsigned char)rand_r(&seed);
		if (len >= 4 && iter % 2)
			memcpy(p, "QZT\x01", 4); /* get past the magic half of the time */
		if (len >= 8 && iter % 4 == 1)
			memcpy(p + 4, "\x01\x00\x00\x00", 4);
		int rc = zt_ops_decode(p, len, &ops, &n);
		if (rc == 0) {
			check_decoded(p, len, ops, n);
			free(ops);
		} else {
			cr_assert_eq(rc, -EINVAL, "seed 12345 iteration %d", iter);
		}
		free(p);
	}
}

Test(codec, malformed_headers)
{
	struct zt_op *ops;
	uint32_t n;
	/* zero ops */
	cr_assert_eq(zt_ops_decode("QZT\x01\0\0\0\0", 8, &ops, &n), -EINVAL);
	/* more ops than the bytes could hold: refused before allocating */
	cr_assert_eq(zt_ops_decode("QZT\x01\xff\xff\xff\xff", 8, &ops, &n), -EINVAL);
	/* another format version */
	void *buf;
	size_t len;
	cr_assert_eq(zt_ops_encode(sample, 1, &buf, &len), 0);
	((unsigned char *)buf)[3] = 2;
	cr_assert_eq(zt_ops_decode(buf, len, &ops, &n), -EINVAL);
	free(buf);
	cr_assert_eq(zt_ops_decode(NULL, 0, &ops, &n), -EINVAL);
}

Test(codec, encode_refuses_bad_ops)
{
	void *buf;
	size_t len;
	struct zt_op op = {.type = ZT_OP_CREATE, .path = "/a"};
	cr_assert_eq(zt_ops_encode(&op, 0, &buf, &len), -EINVAL);
	op.path = NULL;
	cr_assert_eq(zt_ops_encode(&op, 1, &buf, &len), -EINVAL);
	op.path = "/a";
	op.type = 0;
	cr_assert_eq(zt_ops_encode(&op, 1, &buf, &len), -EINVAL);
	op.type = ZT_OP_RENAME;
	cr_assert_eq(zt_ops_encode(&op, 1, &buf, &len), -EINVAL);
	op.type = ZT_OP_SET;
	op.len = 4;
	cr_assert_eq(zt_ops_encode(&op, 1, &buf, &len), -EINVAL);
	op.data = "abcd";
	cr_assert_eq(zt_ops_encode(&op, 1, &buf, &len), 0);
	free(buf);
}

Test(codec, largest_data_round_trips)
{
	char *data = malloc(ZT_MAX_DATA);
	memset(data, 'd', ZT_MAX_DATA);
	struct zt_op op = {
	    .type = ZT_OP_SET, .version = -1, .path = "/big", .data = data, .len = ZT_MAX_DATA};
	void *buf;
	size_t len;
	struct zt_op *ops;
	uint32_t n;
	cr_assert_eq(zt_ops_encode(&op, 1, &buf, &len), 0);
	cr_assert_eq(zt_ops_decode(buf, len, &ops, &n), 0);
	same_ops(&op, ops, 1);
	free(ops);
	free(buf);
	free(data);
}
