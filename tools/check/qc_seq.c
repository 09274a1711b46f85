/*
 * qc_seq: the sequential-consistency checks of qc_check.h (reads never go back per process, every
 * read was written, versions of acknowledged writes strictly increase).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tools/check/qc_check.h"

/* (key, a, b, op) rows sorted for the different sweeps. */
struct row {
	uint64_t k1; /* key, or proc << 32 | key */
	int64_t a;
	int64_t b;
	size_t op;
};

static int row_cmp(const void *x, const void *y)
{
	const struct row *p = x, *q = y;
	if (p->k1 != q->k1)
		return p->k1 < q->k1 ? -1 : 1;
	if (p->a != q->a)
		return p->a < q->a ? -1 : 1;
	if (p->b != q->b)
		return p->b < q->b ? -1 : 1;
	return p->op < q->op ? -1 : p->op > q->op;
}

static bool is_write(const struct qc_op *op)
{
	return op->f == QC_WRITE || op->f == QC_CAS;
}

static bool is_read(const struct qc_op *op)
{
	return (op->f == QC_READ || op->f == QC_LREAD) && op->st == QC_OK;
}

/* The version an acknowledged write reports, or QC_NOVER. */
static int64_t acked_version(const struct qc_op *op)
{
	if (!is_write(op) || op->st != QC_OK)
		return QC_NOVER;
	if (op->rver != QC_NOVER)
		return op->rver;
	return op->f == QC_CAS ? op->expect + 1 : QC_NOVER;
}

/* Index of the row with (k1, a) in sorted R[0..n), or SIZE_MAX. */
static size_t find_row(const struct row *r, size_t n, uint64_t k1, int64_t a)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r[mid].k1 < k1 || (r[mid].k1 == k1 && r[mid].a < a))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && r[lo].k1 == k1 && r[lo].a == a ? lo : SIZE_MAX;
}

int qc_seq_check(const struct qc_history *h, struct qc_result *r)
{
	size_t n = h->nops ? h->nops : 1;
	struct row *ver = malloc(n * sizeof *ver);     /* acked writes: (key, version, call) */
	struct row *uvw = malloc(n * sizeof *uvw);     /* writes of unknown version: (key, value) */
	struct row *byret = malloc(n * sizeof *byret); /* acked writes: (key, ret, version) */
	struct row *pr = malloc(n * sizeof *pr); /* (proc<<32|key, call): reads, acked writes */
	int64_t *nw =
	    calloc(h->nkeys ? h->nkeys : 1, sizeof *nw); /* writes that may have happened */
	size_t nv = 0, nu = 0, nb = 0, np = 0;
	int rc = -ENOMEM;

	if (!ver || !uvw || !byret || !pr || !nw)
		goto out;
	for (size_t i = 0; i < h->nops; i++) {
		const struct qc_op *op = &h->ops[i];
		int64_t v = acked_version(op);
		if (op->f == QC_CAS && op->st == QC_OK && op->rver != QC_NOVER &&
		    op->rver != op->expect + 1 &&
		    (rc = qc__add_anomaly(r, QC_A_CAS_VERSION, op->key, i, SIZE_MAX)))
			goto out;
		if (is_write(op) && op->st != QC_FAIL && op->st != QC_BADVER)
			nw[op->key]++;
		if (v != QC_NOVER) {
			ver[nv++] = (struct row){op->key, v, op->call, i};
			byret[nb++] = (struct row){op->key, op->ret, v, i};
		} else if (is_write(op) && op->st != QC_FAIL && op->st != QC_BADVER) {
			uvw[nu++] = (struct row){op->key, op->arg, 0, i};
		}
		if (is_read(op) || v != QC_NOVER)
			pr[np++] = (struct row){(uint64_t)op->proc << 32 | op->key, op->call, 0, i};
	}
	qsort(ver, nv, sizeof *ver, row_cmp);
	qsort(uvw, nu, sizeof *uvw, row_cmp);
	qsort(byret, nb, sizeof *byret, row_cmp);
	qsort(pr, np, sizeof *pr, row_cmp);

	/* Distinct versions among acknowledged writes. */
	for (size_t i = 1; i < nv; i++)
		if (ver[i].k1 == ver[i - 1].k1 && ver[i].a == ver[i - 1].a &&
		    (rc = qc__add_anomaly(r, QC_A_DUP_VERSION, (uint32_t)ver[i].k1, ver[i].op,
					  ver[i - 1].op)))
			goto out;

	/* Real-time order: sweep the writes by invocation, the completed ones by completion. */
	{
		struct row *bycall = malloc((nv ? nv : 1) * sizeof *bycall);
		if (!bycall)
			goto out;
		for (size_t i = 0; i < nv; i++)
			bycall[i] = (struct row){ver[i].k1, ver[i].b, ver[i].a, ver[i].op};
		qsort(bycall, nv, sizeof *bycall, row_cmp);
		size_t j = 0;
		for (size_t i = 0; i < nv;) {
			uint64_t key = bycall[i].k1;
			int64_t maxv = INT64_MIN;
			size_t maxop = SIZE_MAX;
			while (j < nb && byret[j].k1 < key)
				j++;
			for (; i < nv && bycall[i].k1 == key; i++) {
				while (j < nb && byret[j].k1 == key && byret[j].a < bycall[i].a) {
					if (byret[j].b > maxv) {
						maxv = byret[j].b;
						maxop = byret[j].op;
					}
					j++;
				}
				if (maxop != SIZE_MAX && maxv >= bycall[i].b &&
				    (rc = qc__add_anomaly(r, QC_A_VERSION_ORDER, (uint32_t)key,
							  bycall[i].op, maxop))) {
					free(bycall);
					goto out;
				}
			}
		}
		free(bycall);
	}

	/* Every read was written. */
	for (size_t i = 0; i < h->nops; i++) {
		const struct qc_op *op = &h->ops[i];
		if (!is_read(op))
			continue;
		r->seq_reads++;
		const struct qc_key *k = &h->keys[op->key];
		bool ok = false;
		size_t other = SIZE_MAX;
		if (op->rver != QC_NOVER) {
			size_t x = find_row(ver, nv, op->key, op->rver);
			if (x != SIZE_MAX) {
				ok = h->ops[ver[x].op].arg == op->rval;
				other = ver[x].op;
			} else if (op->rver == k->init_ver) {
				ok = op->rval == k->init_val;
			} else {
				ok = op->rver > k->init_ver &&
				     op->rver <= k->init_ver + nw[op->key] &&
				     find_row(uvw, nu, op->key, op->rval) != SIZE_MAX;
			}
		} else {
			ok = op->rval == k->init_val ||
			     find_row(uvw, nu, op->key, op->rval) != SIZE_MAX;
			for (size_t x = 0; !ok && x < nv; x++)
				ok = ver[x].k1 == op->key && h->ops[ver[x].op].arg == op->rval;
		}
		if (!ok && (rc = qc__add_anomaly(r, QC_A_NEVER_WRITTEN, op->key, i, other)))
			goto out;
	}

	/* Per process and key, in the process's order: versions seen never go down. */
	for (size_t i = 0; i < np;) {
		uint64_t pk = pr[i].k1;
		int64_t maxv = INT64_MIN;
		size_t maxop = SIZE_MAX;
		for (; i < np && pr[i].k1 == pk; i++) {
			const struct qc_op *op = &h->ops[pr[i].op];
			int64_t v = is_read(op) ? op->rver : acked_version(op);
			if (v == QC_NOVER)
				continue;
			if (maxop != SIZE_MAX && v < maxv) {
				if ((rc = qc__add_anomaly(r, QC_A_READ_BACK, op->key, pr[i].op,
							  maxop)))
					goto out;
				maxv = INT64_MIN; /* one anomaly per step back: go on from here */
			}
			if (v > maxv) {
				maxv = v;
				maxop = pr[i].op;
			}
		}
	}
	rc = 0;
out:
	free(ver);
	free(uvw);
	free(byret);
	free(pr);
	free(nw);
	return rc;
}
