/*
 * qc_report: printing a check's result for a human.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "tools/check/qc_check.h"

#define QC_REPORT_MAX	  20 /* anomalies printed per kind */
#define QC_WINDOW_CONTEXT 3  /* ops shown before the concurrency window of a witness */

static const char *const kind_names[] = {
    [QC_A_NONLIN] = "nonlinearizable",	    [QC_A_READ_BACK] = "read-back",
    [QC_A_NEVER_WRITTEN] = "never-written", [QC_A_DUP_VERSION] = "duplicate-version",
    [QC_A_VERSION_ORDER] = "version-order", [QC_A_CAS_VERSION] = "cas-version",
};

const char *qc_kind_name(enum qc_kind k)
{
	if (k < QC_A_NONLIN || k > QC_A_CAS_VERSION)
		return "?";
	return kind_names[k];
}

static const char *kind_text(enum qc_kind k)
{
	switch (k) {
	case QC_A_NONLIN:
		return "no linearisation reaches the completion of this op";
	case QC_A_READ_BACK:
		return "the process saw a lower version than it had seen before (earlier op below)";
	case QC_A_NEVER_WRITTEN:
		return "this (value, version) was never written (the write of that version below)";
	case QC_A_DUP_VERSION:
		return "two acknowledged writes report the same version";
	case QC_A_VERSION_ORDER:
		return "acknowledged after the op below completed, yet its version is not higher";
	case QC_A_CAS_VERSION:
		return "an acknowledged cas reports a version other than expect + 1";
	}
	return "";
}

/* One op as its two records (with their line numbers). */
static void print_op(FILE *out, const struct qc_history *h, size_t i, const char *mark)
{
	const struct qc_op *op = &h->ops[i];

	fprintf(out, "%s%6u: inv p=%" PRIu32 " op=%" PRIu64 " t=%" PRId64 " key=", mark,
		op->line_inv, op->proc, op->id, op->call);
	qc_write_escaped(out, h->keys[op->key].name, h->keys[op->key].len);
	fprintf(out, " f=%s", qc_f_name(op->f));
	if (op->f == QC_WRITE || op->f == QC_CAS) {
		fputs(" value=", out);
		qc_write_value(out, h, op->arg);
	}
	if (op->f == QC_CAS)
		fprintf(out, " expect=%" PRId64, op->expect);
	fputc('\n', out);
	if (op->line_done)
		fprintf(out, "%s%6u: ", mark, op->line_done);
	else
		fprintf(out, "%s%6s  ", mark, "(eof)");
	switch (op->st) {
	case QC_OK:
		fprintf(out, "ok   t=%" PRId64, op->ret);
		if (op->f == QC_READ || op->f == QC_LREAD) {
			fputs(" value=", out);
			qc_write_value(out, h, op->rval);
		}
		if (op->rver != QC_NOVER)
			fprintf(out, " version=%" PRId64, op->rver);
		break;
	case QC_FAIL:
		fprintf(out, "fail t=%" PRId64, op->ret);
		break;
	case QC_BADVER:
		fprintf(out, "fail t=%" PRId64 " err=badversion", op->ret);
		break;
	case QC_UNKNOWN:
		fputs("info (outcome unknown)", out);
		break;
	}
	fputc('\n', out);
}

static void print_witness(FILE *out, const struct qc_history *h, const struct qc_witness *w)
{
	const struct qc_op *b = &h->ops[w->blocked];
	int64_t t0 = b->call;

	/* The concurrency window: ops overlapping the blocked op, and the ones overlapping those.
	 */
	for (size_t i = 0; i < w->nops; i++) {
		const struct qc_op *op = &h->ops[w->ops[i]];
		if (op->call <= b->ret && op->ret >= b->call && op->call < t0)
			t0 = op->call;
	}
	size_t first = 0;
	for (size_t i = 0; i < w->nops; i++) {
		const struct qc_op *op = &h->ops[w->ops[i]];
		if ((op->st != QC_UNKNOWN && op->ret >= t0) || op->call >= t0) {
			first = i;
			break;
		}
		first = i + 1;
	}
	first = first > QC_WINDOW_CONTEXT ? first - QC_WINDOW_CONTEXT : 0;
	fprintf(out, "  not linearizable: key ");
	qc_write_escaped(out, h->keys[w->key].name, h->keys[w->key].len);
	fprintf(out,
		", %zu ops checked; shrunk to %zu ops%s (reads removed, history cut after the "
		"blocked op's completion)\n",
		w->key_ops, w->nops,
		w->shrink_done ? "" : " (shrinking stopped at its time budget)");
	if (first > 0)
		fprintf(out,
			"  ... %zu earlier ops of the sub-history not shown (completed before this "
			"window, or of unknown outcome)\n",
			first);
	for (size_t i = first; i < w->nops; i++)
		print_op(out, h, w->ops[i], w->ops[i] == w->blocked ? "  >" : "   ");
	fprintf(out, "  (> marks the op whose completion no linearisation of these ops reaches)\n");
}

void qc_report(FILE *out, const struct qc_history *h, const struct qc_result *r)
{
	size_t shown[QC_A_CAS_VERSION + 1] = {0};

	for (size_t i = 0; i < r->nan; i++) {
		const struct qc_anomaly *a = &r->an[i];
		if (a->kind == QC_A_NONLIN)
			continue;
		if (shown[a->kind]++ >= QC_REPORT_MAX)
			continue;
		fprintf(out, "anomaly %s: key ", qc_kind_name(a->kind));
		qc_write_escaped(out, h->keys[a->key].name, h->keys[a->key].len);
		fprintf(out, ": %s\n", kind_text(a->kind));
		print_op(out, h, a->op, "  >");
		if (a->other != SIZE_MAX)
			print_op(out, h, a->other, "   ");
	}
	for (int k = QC_A_NONLIN; k <= QC_A_CAS_VERSION; k++)
		if (shown[k] > QC_REPORT_MAX)
			fprintf(out, "(%zu more %s anomalies not shown)\n",
				shown[k] - QC_REPORT_MAX, qc_kind_name((enum qc_kind)k));
	for (size_t i = 0; i < r->nw; i++) {
		fprintf(out, "anomaly nonlinearizable:\n");
		print_witness(out, h, &r->w[i]);
	}
}
