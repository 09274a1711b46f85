/*
 * Unit tests of the history checker (tools/check): the parser, the linearizability search, the
 * sequential-consistency checks, generated histories with and without a planted anomaly.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/check/qc_check.h"

struct run {
	struct qc_history h;
	struct qc_result r;
	int rc;
	struct qc_perr err;
};

static void run_text(struct run *x, const char *text)
{
	memset(x, 0, sizeof *x);
	x->rc = qc_history_parse(text, strlen(text), &x->h, &x->err);
	cr_assert_eq(x->rc, 0, "parse failed at line %u: %s", x->err.line, x->err.msg);
	struct qc_opts o = {.shrink_seconds = 2};
	cr_assert_eq(qc_check(&x->h, &o, &x->r), 0);
}

static void run_free(struct run *x)
{
	qc_result_free(&x->r);
	qc_history_free(&x->h);
}

static size_t count(const struct run *x, enum qc_kind k)
{
	size_t n = 0;
	for (size_t i = 0; i < x->r.nan; i++)
		n += x->r.an[i].kind == k;
	return n;
}

static void expect_clean(const char *text)
{
	struct run x;
	run_text(&x, text);
	if (x.r.nan)
		qc_report(stderr, &x.h, &x.r);
	cr_expect_eq(x.r.nan, 0, "expected no anomaly, got %zu", x.r.nan);
	run_free(&x);
}

static void expect_kind(const char *text, enum qc_kind k)
{
	struct run x;
	run_text(&x, text);
	cr_expect_gt(count(&x, k), 0, "expected a %s anomaly", qc_kind_name(k));
	run_free(&x);
}

static void expect_only(const char *text, enum qc_kind k)
{
	struct run x;
	run_text(&x, text);
	cr_expect_gt(count(&x, k), 0, "expected a %s anomaly", qc_kind_name(k));
	cr_expect_eq(count(&x, k), x.r.nan, "expected only %s anomalies", qc_kind_name(k));
	run_free(&x);
}

/* ---- linearizable histories ---- */

Test(lin, sequential)
{
	expect_clean("history version=1 seed=9\n"
		     "inv p=1 op=1 t=10 key=/r f=write value=a\n"
		     "ok  p=1 op=1 t=20 version=1\n"
		     "inv p=2 op=1 t=30 key=/r f=read\n"
		     "ok  p=2 op=1 t=40 value=a version=1\n"
		     "inv p=2 op=2 t=50 key=/r f=cas expect=1 value=b\n"
		     "ok  p=2 op=2 t=60 version=2\n"
		     "inv p=1 op=2 t=70 key=/r f=read\n"
		     "ok  p=1 op=2 t=80 value=b version=2\n");
}

Test(lin, concurrent_read_sees_old_or_new)
{
	const char *fmt = "inv p=1 op=1 t=10 key=k f=write value=a\n"
			  "inv p=2 op=1 t=11 key=k f=read\n"
			  "ok  p=2 op=1 t=12 value=%s version=%d\n"
			  "ok  p=1 op=1 t=20\n";
	char buf[512];
	snprintf(buf, sizeof buf, fmt, "", 0);
	expect_clean(buf);
	snprintf(buf, sizeof buf, fmt, "a", 1);
	expect_clean(buf);
}

Test(lin, initial_state)
{
	expect_clean("init key=k value=x%20y version=7\n"
		     "inv p=1 op=1 t=1 key=k f=read\n"
		     "ok p=1 op=1 t=2 value=x%20y version=7\n"
		     "inv p=1 op=2 t=3 key=k f=cas expect=7 value=z\n"
		     "ok p=1 op=2 t=4 version=8\n");
}

Test(lin, unknown_write_that_must_have_happened)
{
	/* the write timed out, yet a later read sees it: it took effect */
	expect_clean("inv p=1 op=1 t=10 key=k f=write value=a\n"
		     "info p=1 op=1 t=20 err=timeout\n"
		     "inv p=2 op=1 t=30 key=k f=read\n"
		     "ok p=2 op=1 t=40 value=a version=1\n");
}

Test(lin, unknown_write_that_must_not_be_required)
{
	/* a timed-out write that nobody sees: it may never have happened */
	expect_clean("inv p=1 op=1 t=10 key=k f=write value=a\n"
		     "info p=1 op=1 t=20\n"
		     "inv p=2 op=1 t=30 key=k f=read\n"
		     "ok p=2 op=1 t=40 value= version=0\n"
		     "inv p=2 op=2 t=50 key=k f=write value=b\n"
		     "ok p=2 op=2 t=60 version=1\n"
		     "inv p=2 op=3 t=70 key=k f=read\n"
		     "ok p=2 op=3 t=80 value=b version=1\n");
}

Test(lin, unknown_write_taking_effect_late)
{
	/* the timed-out write lands after a later write: the read sees it at version 2 */
	expect_clean("inv p=1 op=1 t=10 key=k f=write value=a\n"
		     "info p=1 op=1 t=20\n"
		     "inv p=2 op=1 t=30 key=k f=write value=b\n"
		     "ok p=2 op=1 t=40 version=1\n"
		     "inv p=2 op=2 t=50 key=k f=read\n"
		     "ok p=2 op=2 t=60 value=a version=2\n");
}

Test(lin, no_completion_counts_as_unknown)
{
	expect_clean("inv p=1 op=1 t=10 key=k f=write value=a\n"
		     "inv p=2 op=1 t=30 key=k f=read\n"
		     "ok p=2 op=1 t=40 value=a version=1\n");
}

Test(lin, failed_cas_badversion)
{
	expect_clean("inv p=1 op=1 t=10 key=k f=write value=a\n"
		     "ok p=1 op=1 t=20 version=1\n"
		     "inv p=2 op=1 t=30 key=k f=cas expect=0 value=b\n"
		     "fail p=2 op=1 t=40 err=badversion\n"
		     "inv p=2 op=2 t=50 key=k f=read\n"
		     "ok p=2 op=2 t=60 value=a version=1\n");
}

Test(lin, keys_are_independent)
{
	expect_clean("inv p=1 op=1 t=10 key=a f=write value=x\n"
		     "inv p=2 op=1 t=11 key=b f=write value=y\n"
		     "ok p=1 op=1 t=20 version=1\n"
		     "ok p=2 op=1 t=21 version=1\n"
		     "inv p=1 op=2 t=30 key=b f=read\n"
		     "ok p=1 op=2 t=40 value=y version=1\n");
}

/* ---- anomalies ---- */

Test(anomaly, stale_read_after_completed_write)
{
	expect_only("inv p=1 op=1 t=10 key=k f=write value=a\n"
		    "ok p=1 op=1 t=20 version=1\n"
		    "inv p=2 op=1 t=30 key=k f=read\n"
		    "ok p=2 op=1 t=40 value= version=0\n",
		    QC_A_NONLIN);
}

Test(anomaly, stale_local_read_is_allowed)
{
	/* the same as a plain local read: sequential consistency allows it */
	expect_clean("inv p=1 op=1 t=10 key=k f=write value=a\n"
		     "ok p=1 op=1 t=20 version=1\n"
		     "inv p=2 op=1 t=30 key=k f=lread\n"
		     "ok p=2 op=1 t=40 value= version=0\n");
}

Test(anomaly, lost_acknowledged_write)
{
	/* b was acknowledged, then a read sees the state before it */
	expect_only("inv p=1 op=1 t=10 key=k f=write value=a\n"
		    "ok p=1 op=1 t=20\n"
		    "inv p=1 op=2 t=30 key=k f=write value=b\n"
		    "ok p=1 op=2 t=40\n"
		    "inv p=2 op=1 t=50 key=k f=read\n"
		    "ok p=2 op=1 t=60 value=a version=1\n",
		    QC_A_NONLIN);
}

Test(anomaly, two_cas_succeed_on_one_version)
{
	struct run x;
	run_text(&x, "inv p=1 op=1 t=10 key=k f=cas expect=0 value=a\n"
		     "inv p=2 op=1 t=11 key=k f=cas expect=0 value=b\n"
		     "ok p=1 op=1 t=20\n"
		     "ok p=2 op=1 t=21\n");
	cr_expect_gt(count(&x, QC_A_NONLIN), 0);
	cr_expect_gt(count(&x, QC_A_DUP_VERSION), 0);
	run_free(&x);
}

Test(anomaly, read_of_never_written_value)
{
	struct run x;
	run_text(&x, "inv p=1 op=1 t=10 key=k f=write value=a\n"
		     "ok p=1 op=1 t=20 version=1\n"
		     "inv p=2 op=1 t=30 key=k f=lread\n"
		     "ok p=2 op=1 t=40 value=zzz version=1\n"
		     "inv p=2 op=2 t=50 key=k f=read\n"
		     "ok p=2 op=2 t=60 value=q version=5\n");
	cr_expect_eq(count(&x, QC_A_NEVER_WRITTEN), 2);
	cr_expect_eq(count(&x, QC_A_NONLIN), 1);
	run_free(&x);
}

Test(anomaly, failed_write_seen)
{
	expect_kind("inv p=1 op=1 t=10 key=k f=write value=a\n"
		    "fail p=1 op=1 t=20\n"
		    "inv p=2 op=1 t=30 key=k f=lread\n"
		    "ok p=2 op=1 t=40 value=a version=1\n",
		    QC_A_NEVER_WRITTEN);
}

Test(anomaly, local_read_goes_back_in_time)
{
	expect_only("inv p=1 op=1 t=10 key=k f=write value=a\n"
		    "ok p=1 op=1 t=20 version=1\n"
		    "inv p=1 op=2 t=30 key=k f=write value=b\n"
		    "ok p=1 op=2 t=40 version=2\n"
		    "inv p=2 op=1 t=50 key=k f=lread\n"
		    "ok p=2 op=1 t=60 value=b version=2\n"
		    "inv p=2 op=2 t=70 key=k f=lread\n"
		    "ok p=2 op=2 t=80 value=a version=1\n",
		    QC_A_READ_BACK);
}

Test(anomaly, read_your_writes)
{
	/* a process reads an older version than its own acknowledged write */
	expect_only("inv p=1 op=1 t=10 key=k f=write value=a\n"
		    "ok p=1 op=1 t=20 version=1\n"
		    "inv p=1 op=2 t=30 key=k f=lread\n"
		    "ok p=1 op=2 t=40 value= version=0\n",
		    QC_A_READ_BACK);
}

Test(anomaly, unknown_write_seen_before_its_invocation)
{
	expect_kind("inv p=2 op=1 t=5 key=k f=read\n"
		    "ok p=2 op=1 t=8 value=a version=1\n"
		    "inv p=1 op=1 t=10 key=k f=write value=a\n"
		    "info p=1 op=1 t=20\n",
		    QC_A_NONLIN);
}

Test(anomaly, versions_out_of_real_time_order)
{
	expect_kind("inv p=1 op=1 t=10 key=k f=write value=a\n"
		    "ok p=1 op=1 t=20 version=5\n"
		    "inv p=2 op=1 t=30 key=k f=write value=b\n"
		    "ok p=2 op=1 t=40 version=3\n",
		    QC_A_VERSION_ORDER);
}

Test(anomaly, cas_reports_wrong_version)
{
	expect_kind("inv p=1 op=1 t=10 key=k f=cas expect=0 value=a\n"
		    "ok p=1 op=1 t=20 version=4\n",
		    QC_A_CAS_VERSION);
}

Test(anomaly, badversion_cas_that_should_have_succeeded)
{
	expect_only("inv p=1 op=1 t=10 key=k f=cas expect=0 value=a\n"
		    "fail p=1 op=1 t=20 err=badversion\n",
		    QC_A_NONLIN);
}

Test(anomaly, witness_is_shrunk)
{
	struct run x;
	/* many harmless reads, then a stale one: the witness keeps the write and the stale read */
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	cr_assert(f);
	fprintf(f, "inv p=1 op=1 t=10 key=k f=write value=a\nok p=1 op=1 t=20 version=1\n");
	for (int i = 0; i < 200; i++)
		fprintf(f, "inv p=2 op=%d t=%d key=k f=read\nok p=2 op=%d t=%d value=a version=1\n",
			i + 1, 100 + 10 * i, i + 1, 105 + 10 * i);
	fprintf(f, "inv p=3 op=1 t=5000 key=k f=read\nok p=3 op=1 t=5001 value= version=0\n");
	for (int i = 0; i < 50; i++)
		fprintf(f, "inv p=4 op=%d t=%d key=k f=read\nok p=4 op=%d t=%d value=a version=1\n",
			i + 1, 6000 + 10 * i, i + 1, 6005 + 10 * i);
	fclose(f);
	run_text(&x, buf);
	cr_assert_eq(x.r.nw, 1);
	cr_expect_eq(x.r.w[0].nops, 2, "witness of %zu ops", x.r.w[0].nops);
	cr_expect_eq(x.r.w[0].shrink_done, 1);
	cr_expect_eq(x.h.ops[x.r.w[0].blocked].proc, 3);
	run_free(&x);
	free(buf);
}

/* ---- generated histories ---- */

static char *gen(const struct qc_gen_opts *o)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	cr_assert(f);
	cr_assert_eq(qc_gen(f, o), 0);
	fclose(f);
	return buf;
}

Test(gen, real_executions_pass, .timeout = 60)
{
	for (uint64_t seed = 1; seed <= 30; seed++) {
		struct qc_gen_opts o = {.seed = seed,
					.procs = 2 + seed % 12,
					.keys = 1 + seed % 3,
					.ops = 1500,
					.pct_unknown = seed % 5,
					.pct_fail = 3,
					.pct_lread = 25};
		char *text = gen(&o);
		struct run x;
		run_text(&x, text);
		if (x.r.nan)
			qc_report(stderr, &x.h, &x.r);
		cr_expect_eq(x.r.nan, 0, "seed %llu: %zu anomalies", (unsigned long long)seed,
			     x.r.nan);
		cr_expect(x.h.has_seed && x.h.seed == seed);
		run_free(&x);
		free(text);
	}
}

Test(gen, planted_anomaly_is_caught, .timeout = 60)
{
	unsigned caught = 0, runs = 40;
	for (uint64_t seed = 1; seed <= runs; seed++) {
		struct qc_gen_opts o = {.seed = seed,
					.procs = 3 + seed % 8,
					.keys = 2,
					.ops = 800,
					.pct_unknown = 2,
					.pct_fail = 2,
					.pct_lread = 0,
					.mutate = 1};
		char *text = gen(&o);
		struct run x;
		run_text(&x, text);
		caught += x.r.nan > 0;
		run_free(&x);
		free(text);
	}
	/* A stale read concurrent with the next write is still linearizable: not all can be
	 * caught, but nearly all must be. */
	cr_expect_geq(caught * 100, runs * 85, "caught %u of %u planted anomalies", caught, runs);
	fprintf(stderr, "planted anomalies caught: %u of %u\n", caught, runs);
}

/* ---- malformed input ---- */

struct bad {
	const char *text;
	unsigned line;
};

static const struct bad bad_inputs[] = {
    {"garbage\n", 1},
    {"inv p=1 op=1 t=5 key=a f=bogus\n", 1},
    {"inv p=1 op=1 t=5 key=a f=write\n", 1},
    {"inv p=1 op=1 t=5 key=a f=cas value=x\n", 1},
    {"# comment\n\nok p=1 op=1 t=5\n", 3},
    {"inv p=1 op=1 t=5 key=a f=read\nok p=1 op=2 t=6 value= version=0\n", 2},
    {"inv p=1 op=1 t=5 key=a f=read\nok p=1 op=1 t=4 value= version=0\n", 2},
    {"inv p=x op=1 t=5 key=a f=read\n", 1},
    {"inv p=1 op=1 t=99999999999999999999999 key=a f=read\n", 1},
    {"inv p=1 op=1 t=18446744073709551615 key=a f=read\n", 1},
    {"inv p=4294967296 op=1 t=1 key=a f=read\n", 1},
    {"inv p=1 op=1 t=1 key=a f=write value=%G1\n", 1},
    {"inv p=1 op=1 t=1 key=a f=write value=%4\n", 1},
    {"inv p=1 op=1 t=1 key=a f=read\ninv p=1 op=2 t=2 key=a f=read\n", 2},
    {"history version=2\n", 1},
    {"inv p=1 op=1 t=1 key=a f=read\nhistory version=1\n", 2},
    {"inv p=1 p=1 op=1 t=1 key=a f=read\n", 1},
    {"inv p=1 op=1 t=1 key=a f=read junk\n", 1},
    {"inv p=1 op=1 t=1 key=a f=read =x\n", 1},
    {"inv p=1 op=1 t=1 key= f=read\n", 1},
    {"inv p=1 op=1 t=1 f=read\n", 1},
    {"inv p=1 op=1 t=1 key=a f=read\nok p=1 op=1 t=2\n", 2},
    {"inv p=1 op=1 t=1 key=a f=read\nok p=1 op=1 t=2 value=a version=-1\n", 2},
    {"inv p=1 op=1 t=1 key=a f=read\nfail p=1 op=1 t=2\nfail p=1 op=1 t=3\n", 3},
    {"inv p=1 op=1 t=1 key=a f=read\ninit key=a value=x\n", 2},
    {"init key=a\n", 1},
    {"inv p=1 op=1 t=1 key=a f=read a=1 b=2 c=3 d=4 e=5 g=6 h=7 i=8 j=9 k=10 l=11 m=12\n", 1},
};

Test(parse, malformed_lines_are_refused_with_their_line)
{
	for (size_t i = 0; i < sizeof bad_inputs / sizeof bad_inputs[0]; i++) {
		struct qc_history h = {0};
		struct qc_perr err;
		int rc = qc_history_parse(bad_inputs[i].text, strlen(bad_inputs[i].text), &h, &err);
		cr_expect_eq(rc, -EINVAL, "input %zu accepted", i);
		cr_expect_eq(err.line, bad_inputs[i].line, "input %zu: line %u (%s), expected %u",
			     i, err.line, err.msg, bad_inputs[i].line);
		cr_expect_neq(err.msg[0], 0);
		cr_expect_eq(h.nops, 0);
		qc_history_free(&h);
	}
}

Test(parse, nul_byte_is_refused)
{
	const char text[] = "inv p=1 op=1 t=1 key=a f=read\nok p=1 op=1 t=2 value=a\0b version=1\n";
	struct qc_history h = {0};
	struct qc_perr err;
	cr_expect_eq(qc_history_parse(text, sizeof text - 1, &h, &err), -EINVAL);
	cr_expect_eq(err.line, 2);
	qc_history_free(&h);
}

Test(parse, escapes_and_tabs)
{
	const char *text = "history\tversion=1\tseed=77\tnodes=3\n"
			   "inv\tp=1\top=1\tt=1\tkey=%2Fa%20b\tf=write\tvalue=%00%ff%25\r\n"
			   "ok p=1 op=1 t=2\n";
	struct qc_history h = {0};
	struct qc_perr err;
	cr_assert_eq(qc_history_parse(text, strlen(text), &h, &err), 0, "%u: %s", err.line,
		     err.msg);
	cr_expect_eq(h.seed, 77);
	cr_expect_eq(h.nkeys, 1);
	cr_expect_str_eq(h.keys[0].name, "/a b");
	uint32_t v = h.ops[0].arg;
	cr_expect_eq(h.val_len[v], 3);
	cr_expect_eq(memcmp(h.vals[v], "\0\xff%", 3), 0);
	qc_history_free(&h);
}

Test(parse, every_truncation_and_random_bytes_never_crash)
{
	struct qc_gen_opts o = {.seed = 5,
				.procs = 4,
				.keys = 2,
				.ops = 60,
				.pct_unknown = 5,
				.pct_fail = 5,
				.pct_lread = 30};
	char *text = gen(&o);
	size_t len = strlen(text);
	for (size_t cut = 0; cut <= len; cut++) {
		struct qc_history h = {0};
		struct qc_perr err;
		int rc = qc_history_parse(text, cut, &h, &err);
		cr_assert(rc == 0 || rc == -EINVAL, "cut %zu: rc %d", cut, rc);
		if (rc == 0) {
			struct qc_result r = {0};
			cr_assert_eq(qc_check(&h, NULL, &r), 0);
			qc_result_free(&r);
		}
		qc_history_free(&h);
	}
	uint64_t s = 1;
	for (int i = 0; i < 2000; i++) {
		char buf[128];
		for (size_t j = 0; j < sizeof buf; j++) {
			s = s * 6364136223846793005ull + 1442695040888963407ull;
			/* mostly characters of the format, some anything */
			const char alpha[] = "inv ok fail info p=1 op=2 t=3 key=k f=read write cas "
					     "value=%4 expect=0 version=\n\t";
			buf[j] =
			    (s >> 60) ? alpha[(s >> 33) % (sizeof alpha - 1)] : (char)(s >> 40);
		}
		struct qc_history h = {0};
		struct qc_perr err;
		int rc = qc_history_parse(buf, sizeof buf, &h, &err);
		cr_assert(rc == 0 || rc == -EINVAL);
		if (rc == 0) {
			struct qc_result r = {0};
			cr_assert_eq(qc_check(&h, NULL, &r), 0);
			qc_result_free(&r);
		}
		qc_history_free(&h);
	}
	free(text);
}

/* ---- the search against brute force on small random histories ---- */

static const struct qc_history *bf_h;
static size_t bf_n;
static bool bf_used[16];

static bool bf_considered(const struct qc_op *op)
{
	if (op->f == QC_READ)
		return op->st == QC_OK;
	if (op->f == QC_WRITE)
		return op->st == QC_OK || op->st == QC_UNKNOWN;
	return op->f == QC_CAS && op->st != QC_FAIL;
}

/* Every order of the ops (unknown ones optional) that respects real time, on a plain register. */
static bool bf(uint32_t val, int64_t ver)
{
	bool all = true;
	for (size_t i = 0; i < bf_n; i++)
		if (!bf_used[i] && bf_considered(&bf_h->ops[i]) && bf_h->ops[i].st != QC_UNKNOWN)
			all = false;
	if (all)
		return true;
	for (size_t x = 0; x < bf_n; x++) {
		const struct qc_op *op = &bf_h->ops[x];
		if (bf_used[x] || !bf_considered(op))
			continue;
		bool ok = true;
		for (size_t a = 0; a < bf_n && ok; a++)
			if (a != x && !bf_used[a] && bf_considered(&bf_h->ops[a]) &&
			    bf_h->ops[a].st != QC_UNKNOWN && bf_h->ops[a].ret < op->call)
				ok = false;
		if (!ok)
			continue;
		uint32_t nval = val;
		int64_t nver = ver;
		switch (op->f) {
		case QC_READ:
			ok = op->rval == val && (op->rver == QC_NOVER || op->rver == ver);
			break;
		case QC_CAS:
			if (op->st == QC_BADVER) {
				ok = ver != op->expect;
				break;
			}
			if (ver != op->expect) {
				ok = op->st == QC_UNKNOWN;
				break;
			}
			/* fall through */
		case QC_WRITE:
			ok = !(op->st == QC_OK && op->rver != QC_NOVER && op->rver != ver + 1);
			nval = op->arg;
			nver = ver + 1;
			break;
		default:
			ok = false;
		}
		if (!ok)
			continue;
		bf_used[x] = true;
		bool r = bf(nval, nver);
		bf_used[x] = false;
		if (r)
			return true;
	}
	return false;
}

static uint64_t bf_rand(uint64_t *s, uint64_t n)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return (*s >> 33) % n;
}

Test(lin, agrees_with_brute_force, .timeout = 60)
{
	uint64_t s = 12345;
#define R(n) bf_rand(&s, (n))
	unsigned lin = 0, nonlin = 0;
	for (int iter = 0; iter < 20000; iter++) {
		char buf[4096];
		size_t len = 0;
		unsigned nops = 2 + (unsigned)R(7);
		/* one process per op, random intervals, random types and results */
		for (unsigned i = 0; i < nops; i++) {
			int64_t call = (int64_t)R(20), dur = 1 + (int64_t)R(8);
			unsigned f = (unsigned)R(3);
			const char *fs = f == 0 ? "read" : f == 1 ? "write" : "cas";
			char extra[64] = "";
			if (f == 1)
				snprintf(extra, sizeof extra, " value=%c", 'a' + (int)R(3));
			if (f == 2)
				snprintf(extra, sizeof extra, " value=%c expect=%d",
					 'a' + (int)R(3), (int)R(3));
			len += (size_t)snprintf(buf + len, sizeof buf - len,
						"inv p=%u op=1 t=%lld key=k f=%s%s\n", i,
						(long long)call, fs, extra);
			unsigned outcome = (unsigned)R(10);
			const char *kind = outcome < 7 ? "ok" : outcome < 9 ? "info" : "fail";
			char res[64] = "";
			if (f == 0 && outcome < 7) {
				unsigned v = (unsigned)R(4);
				snprintf(res, sizeof res, " value=%s version=%u",
					 v == 0	  ? ""
					 : v == 1 ? "a"
					 : v == 2 ? "b"
						  : "c",
					 (unsigned)R(4));
			} else if (f != 0 && outcome < 7 && R(2)) {
				snprintf(res, sizeof res, " version=%u", 1 + (unsigned)R(3));
			} else if (f == 2 && outcome == 9 && R(2)) {
				snprintf(res, sizeof res, " err=badversion");
			}
			len +=
			    (size_t)snprintf(buf + len, sizeof buf - len, "%s p=%u op=1 t=%lld%s\n",
					     kind, i, (long long)(call + dur), res);
		}
		struct qc_history h = {0};
		struct qc_perr err;
		cr_assert_eq(qc_history_parse(buf, len, &h, &err), 0, "%u: %s\n%s", err.line,
			     err.msg, buf);
		size_t idx[16];
		for (size_t i = 0; i < h.nops; i++)
			idx[i] = i;
		bf_h = &h;
		bf_n = h.nops;
		memset(bf_used, 0, sizeof bf_used);
		bool want = bf(h.keys[0].init_val, h.keys[0].init_ver);
		int got = qc_lin_check(&h, 0, idx, h.nops, NULL, NULL);
		cr_assert_eq(got, want ? 1 : 0, "search says %d, brute force %d for:\n%s", got,
			     want, buf);
		if (want)
			lin++;
		else
			nonlin++;
		qc_history_free(&h);
	}
	cr_expect(lin > 300 && nonlin > 300, "lin %u nonlin %u: the generator is lopsided", lin,
		  nonlin);
#undef R
}
