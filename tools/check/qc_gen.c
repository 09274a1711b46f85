/*
 * qc_gen: random histories of a real sequential execution (see qc_check.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tools/check/qc_check.h"

struct gop {
	uint32_t proc, key;
	enum qc_f f;
	enum qc_status st;
	bool effect; /* takes effect at its linearisation point */
	bool report_ver;
	int64_t call, lin, ret;
	uint64_t id;
	uint64_t arg; /* value written: "v<arg>" */
	int64_t expect;
	uint64_t rval; /* value read: "v<rval>", 0 the empty initial value */
	int64_t rver;
};

struct gev {
	int64_t t;
	int kind; /* ordering at equal times */
	size_t op;
};

static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int gev_cmp(const void *a, const void *b)
{
	const struct gev *x = a, *y = b;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return x->op < y->op ? -1 : x->op > y->op;
}

static void put_val(FILE *out, uint64_t v)
{
	if (v)
		fprintf(out, "v%" PRIu64, v);
}

int qc_gen(FILE *out, const struct qc_gen_opts *o)
{
	uint64_t rs = o->seed * 0x2545f4914f6cdd1dull + 1;
	unsigned procs = o->procs ? o->procs : 1, keys = o->keys ? o->keys : 1;
	size_t n = o->ops;
	struct gop *g = calloc(n ? n : 1, sizeof *g);
	struct gev *ev = malloc((n ? n : 1) * 3 * sizeof *ev);
	int64_t *tp = calloc(procs, sizeof *tp);
	uint64_t *opid = calloc(procs, sizeof *opid);
	int64_t *kver = calloc(keys, sizeof *kver);
	uint64_t *kval = calloc(keys, sizeof *kval);
	uint64_t **hist = calloc(keys, sizeof *hist); /* key -> value by version */
	size_t *hcap = calloc(keys, sizeof *hcap);
	uint64_t nextval = 1;
	int rc = -ENOMEM;

	if (!g || !ev || !tp || !opid || !kver || !kval || !hist || !hcap)
		goto out;
	for (unsigned p = 0; p < procs; p++)
		tp[p] = 1000000 + (int64_t)(rnd(&rs) % 1000) * 1000;
	/* Phase 1: intervals and types; each op goes to the process that is free first. */
	for (size_t i = 0; i < n; i++) {
		unsigned p = 0;
		for (unsigned q = 1; q < procs; q++)
			if (tp[q] < tp[p])
				p = q;
		struct gop *op = &g[i];
		op->proc = p;
		op->id = ++opid[p];
		op->key = (uint32_t)(rnd(&rs) % keys);
		op->call = tp[p] + (int64_t)(rnd(&rs) % 200) * 1000;
		int64_t dur = 1000 + (int64_t)(rnd(&rs) % 3000) * 1000;
		op->ret = op->call + dur;
		op->lin = op->call + (int64_t)(rnd(&rs) % (uint64_t)dur);
		tp[p] = op->ret;
		unsigned r = (unsigned)(rnd(&rs) % 100);
		op->f = r < 40 ? QC_READ : r < 75 ? QC_WRITE : QC_CAS;
		if (op->f == QC_READ && rnd(&rs) % 100 < o->pct_lread)
			op->f = QC_LREAD;
		op->st = QC_OK;
		op->effect = true;
		op->report_ver = rnd(&rs) % 2;
		if (rnd(&rs) % 100 < o->pct_unknown) {
			op->st = QC_UNKNOWN;
			op->effect = rnd(&rs) % 2;
		} else if (op->f != QC_READ && op->f != QC_LREAD && rnd(&rs) % 100 < o->pct_fail) {
			op->st = QC_FAIL;
			op->effect = false;
		}
		if (op->f == QC_WRITE || op->f == QC_CAS)
			op->arg = nextval++;
		ev[2 * i] = (struct gev){op->call, 0, i};
		ev[2 * i + 1] = (struct gev){op->lin, 1, i};
	}
	/* Phase 2: in time order, a cas picks its expected version at its call (sometimes a stale
	 * one); every op takes effect at its linearisation point on the true register. */
	qsort(ev, 2 * n, sizeof *ev, gev_cmp);
	for (size_t e = 0; e < 2 * n; e++) {
		struct gop *op = &g[ev[e].op];
		uint32_t k = op->key;
		if (ev[e].kind == 0) {
			if (op->f == QC_CAS)
				op->expect = kver[k] - (rnd(&rs) % 4 == 0 && kver[k] > 0);
			continue;
		}
		switch (op->f) {
		case QC_READ:
		case QC_LREAD:
			op->rval = kval[k];
			op->rver = kver[k];
			break;
		case QC_CAS:
			if (kver[k] != op->expect) {
				if (op->st == QC_OK)
					op->st = QC_BADVER;
				break;
			}
			/* fall through */
		case QC_WRITE:
			if (!op->effect)
				break;
			kval[k] = op->arg;
			kver[k]++;
			op->rver = kver[k];
			if ((size_t)kver[k] >= hcap[k]) {
				size_t nc = hcap[k] ? hcap[k] * 2 : 64;
				uint64_t *nh = realloc(hist[k], nc * sizeof *nh);
				if (!nh)
					goto out;
				hist[k] = nh;
				hcap[k] = nc;
			}
			hist[k][kver[k]] = op->arg;
			break;
		default:
			break;
		}
	}
	if (o->mutate) {
		/* Change one acknowledged read: an older version (stale) or one never written. */
		size_t cand = 0, pick = SIZE_MAX;
		for (size_t i = 0; i < n; i++)
			if ((g[i].f == QC_READ || g[i].f == QC_LREAD) && g[i].st == QC_OK &&
			    g[i].rver > 0 && rnd(&rs) % ++cand == 0)
				pick = i;
		if (pick != SIZE_MAX) {
			struct gop *op = &g[pick];
			switch (rnd(&rs) % 3) {
			case 0: /* stale: 1 to 8 versions back */
				op->rver -= 1 + (int64_t)(rnd(&rs) % 8);
				if (op->rver < 0)
					op->rver = 0;
				op->rval = op->rver ? hist[op->key][op->rver] : 0;
				break;
			case 1: /* a version never reached */
				op->rver += 1000000;
				break;
			default: /* a value never written, at the version read */
				op->rval = nextval + 1000000;
				break;
			}
		}
	}
	/* Output: every invocation and completion in time order (a completion before an
	 * invocation at the same instant, so that a process's records stay in its order). */
	for (size_t i = 0; i < n; i++) {
		ev[2 * i] = (struct gev){g[i].call, 1, i};
		ev[2 * i + 1] = (struct gev){g[i].ret, 0, i};
	}
	qsort(ev, 2 * n, sizeof *ev, gev_cmp);
	fprintf(out, "history version=1 seed=%" PRIu64 " procs=%u keys=%u\n", o->seed, procs, keys);
	for (size_t e = 0; e < 2 * n; e++) {
		struct gop *op = &g[ev[e].op];
		if (ev[e].kind == 1) {
			fprintf(out,
				"inv p=%" PRIu32 " op=%" PRIu64 " t=%" PRId64 " key=k%" PRIu32
				" f=%s",
				op->proc, op->id, op->call, op->key, qc_f_name(op->f));
			if (op->f == QC_WRITE || op->f == QC_CAS) {
				fputs(" value=", out);
				put_val(out, op->arg);
			}
			if (op->f == QC_CAS)
				fprintf(out, " expect=%" PRId64, op->expect);
			fputc('\n', out);
			continue;
		}
		const char *kind = op->st == QC_OK ? "ok" : op->st == QC_UNKNOWN ? "info" : "fail";
		fprintf(out, "%s p=%" PRIu32 " op=%" PRIu64 " t=%" PRId64, kind, op->proc, op->id,
			op->ret);
		if (op->st == QC_BADVER)
			fputs(" err=badversion", out);
		if (op->st == QC_UNKNOWN)
			fputs(" err=timeout", out);
		if (op->st == QC_OK && (op->f == QC_READ || op->f == QC_LREAD)) {
			fputs(" value=", out);
			put_val(out, op->rval);
			fprintf(out, " version=%" PRId64, op->rver);
		} else if (op->st == QC_OK && op->report_ver) {
			fprintf(out, " version=%" PRId64, op->rver);
		}
		fputc('\n', out);
	}
	rc = ferror(out) ? -EIO : 0;
out:
	if (hist)
		for (unsigned k = 0; k < keys; k++)
			free(hist[k]);
	free(hist);
	free(hcap);
	free(g);
	free(ev);
	free(tp);
	free(opid);
	free(kver);
	free(kval);
	return rc;
}
