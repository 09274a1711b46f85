/*
 * qc_lin: linearizability of one key's register history (Wing & Gong's search, Lowe's
 * just-in-time linearisation and memoisation), the shrinking of a failing history, and qc_check.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/check/qc_check.h"

#define QC_UNREAD UINT32_MAX /* canonical value: one that no read returns */

/* The ops of one key that the search considers, in invocation order. */
struct lop {
	size_t gi; /* index in qc_history.ops */
	const struct qc_op *op;
};

/* Memo: hash set of (value, version, run-length encoded linearised set). */
struct memo_ent {
	uint64_t hash;
	int64_t ver;
	uint32_t val;
	uint32_t rle_len; /* UINT32_MAX: empty slot */
	size_t rle_off;
};

struct memo {
	struct memo_ent *t;
	size_t cap, count;
	uint32_t *arena;
	size_t alen, acap;
};

struct search {
	struct lop *ops;
	size_t m;
	/* entries: 2m, sorted; nodes 2m (head) and 2m+1 (tail) are sentinels */
	int32_t *prev, *next;
	uint32_t *eop;	 /* entry -> local op */
	uint8_t *iscall; /* entry -> 1 call, 0 return */
	uint32_t *callent, *retent;
	uint64_t *bits, *zob;
	size_t nwords, full_words, hi_words; /* words [0, full) all ones, [hi, n) all zero */
	uint32_t *rle;
	uint32_t *wval; /* local op -> value it writes, canonicalised */
	uint8_t *anon;	/* local op -> 1 if an anonymous write (see qc_lin_check) */
	int64_t *pin;	/* local op -> the version it must produce, QC_NOVER if not known */
	struct memo memo;
};

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

/* Run-length form of the bitset: the positions where it flips, from a 0 before bit 0. */
static uint32_t rle_encode(struct search *s)
{
	uint32_t n = 0;
	uint64_t carry = 0;
	size_t w0 = s->full_words;

	if (w0 > 0) {
		s->rle[n++] = 0;
		carry = 1;
	}
	for (size_t i = w0; i < s->hi_words; i++) {
		uint64_t w = s->bits[i];
		uint64_t x = w ^ ((w << 1) | carry);
		carry = w >> 63;
		while (x) {
			s->rle[n++] = (uint32_t)(i * 64 + (size_t)__builtin_ctzll(x));
			x &= x - 1;
		}
	}
	if (carry) /* the last run of ones ends where the zero words begin */
		s->rle[n++] = (uint32_t)(s->hi_words * 64);
	return n;
}

/* 1: (bits, val, ver) was not in the memo and is now; 0: it was; -ENOMEM. */
static int memo_add(struct search *s, uint64_t zob, uint32_t val, int64_t ver)
{
	struct memo *mm = &s->memo;
	uint64_t h = zob ^ mix64(((uint64_t)val << 40) ^ (uint64_t)ver ^ 0x9e3779b97f4a7c15ull);
	uint32_t n = rle_encode(s);

	if ((mm->count + 1) * 2 > mm->cap) {
		size_t ncap = mm->cap ? mm->cap * 2 : 1024;
		struct memo_ent *nt = malloc(ncap * sizeof *nt);
		if (!nt)
			return -ENOMEM;
		for (size_t i = 0; i < ncap; i++)
			nt[i].rle_len = UINT32_MAX;
		for (size_t i = 0; i < mm->cap; i++) {
			if (mm->t[i].rle_len == UINT32_MAX)
				continue;
			size_t x = mm->t[i].hash & (ncap - 1);
			while (nt[x].rle_len != UINT32_MAX)
				x = (x + 1) & (ncap - 1);
			nt[x] = mm->t[i];
		}
		free(mm->t);
		mm->t = nt;
		mm->cap = ncap;
	}
	size_t x = h & (mm->cap - 1);
	for (; mm->t[x].rle_len != UINT32_MAX; x = (x + 1) & (mm->cap - 1)) {
		struct memo_ent *e = &mm->t[x];
		if (e->hash == h && e->val == val && e->ver == ver && e->rle_len == n &&
		    (n == 0 || memcmp(mm->arena + e->rle_off, s->rle, n * sizeof *s->rle) == 0))
			return 0;
	}
	if (n > 0 && mm->alen + n > mm->acap) {
		size_t ncap = mm->acap ? mm->acap * 2 : 4096;
		while (ncap < mm->alen + n)
			ncap *= 2;
		uint32_t *na = realloc(mm->arena, ncap * sizeof *na);
		if (!na)
			return -ENOMEM;
		mm->arena = na;
		mm->acap = ncap;
	}
	if (n > 0)
		memcpy(mm->arena + mm->alen, s->rle, n * sizeof *s->rle);
	mm->t[x] =
	    (struct memo_ent){.hash = h, .ver = ver, .val = val, .rle_len = n, .rle_off = mm->alen};
	mm->alen += n;
	mm->count++;
	return 1;
}

static bool considered(const struct qc_op *op)
{
	switch (op->f) {
	case QC_READ:
		return op->st == QC_OK;
	case QC_WRITE:
		return op->st == QC_OK || op->st == QC_UNKNOWN;
	case QC_CAS:
		return op->st != QC_FAIL;
	default:
		return false;
	}
}

/* The register model. WVAL is the value OP writes, canonicalised, and PIN the version it must
 * produce (reported, or inferred from a read; QC_NOVER if not known): see qc_lin_check. Returns
 * whether OP may take effect in state (*val, *ver), updating it. */
static bool step(const struct qc_op *op, uint32_t wval, int64_t pin, uint32_t *val, int64_t *ver)
{
	switch (op->f) {
	case QC_READ:
		return op->rval == *val && (op->rver == QC_NOVER || op->rver == *ver);
	case QC_CAS:
		if (op->st == QC_BADVER)
			return *ver != op->expect;
		if (*ver != op->expect)
			return op->st == QC_UNKNOWN; /* an unknown cas may have failed */
						     /* fall through */
	case QC_WRITE:
		if (pin != QC_NOVER && pin != *ver + 1)
			return false;
		*val = wval;
		*ver += 1;
		return true;
	default:
		return false;
	}
}

struct ent_sort {
	int64_t t;
	uint32_t kind; /* 0 call, 1 return: calls first at equal times (concurrent) */
	uint32_t op;
};

static int ent_cmp(const void *a, const void *b)
{
	const struct ent_sort *x = a, *y = b;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return x->op < y->op ? -1 : x->op > y->op;
}

static int lop_cmp(const void *a, const void *b)
{
	const struct lop *x = a, *y = b;
	if (x->op->call != y->op->call)
		return x->op->call < y->op->call ? -1 : 1;
	return x->gi < y->gi ? -1 : x->gi > y->gi;
}

static void search_free(struct search *s)
{
	free(s->ops);
	free(s->prev);
	free(s->next);
	free(s->eop);
	free(s->iscall);
	free(s->callent);
	free(s->retent);
	free(s->bits);
	free(s->zob);
	free(s->rle);
	free(s->wval);
	free(s->anon);
	free(s->pin);
	free(s->memo.t);
	free(s->memo.arena);
}

static void lift(struct search *s, uint32_t c)
{
	uint32_t r = s->retent[s->eop[c]];
	s->next[s->prev[c]] = s->next[c];
	s->prev[s->next[c]] = s->prev[c];
	s->next[s->prev[r]] = s->next[r];
	s->prev[s->next[r]] = s->prev[r];
}

static void unlift(struct search *s, uint32_t c)
{
	uint32_t r = s->retent[s->eop[c]];
	s->next[s->prev[r]] = (int32_t)r;
	s->prev[s->next[r]] = (int32_t)r;
	s->next[s->prev[c]] = (int32_t)c;
	s->prev[s->next[c]] = (int32_t)c;
}

/* Is anonymous write O the callable anonymous write that completes first? */
static bool anon_first(const struct search *s, uint32_t o)
{
	uint32_t e = (uint32_t)s->next[2 * s->m];
	const struct qc_op *w = s->ops[o].op;

	for (; e < 2 * s->m && s->iscall[e]; e = (uint32_t)s->next[e]) {
		uint32_t v = s->eop[e];
		if (v == o || !s->anon[v])
			continue;
		int64_t rv = s->ops[v].op->ret;
		if (rv < w->ret || (rv == w->ret && v < o))
			return false;
	}
	return true;
}

static void bit_set(struct search *s, uint32_t i)
{
	s->bits[i / 64] |= 1ull << (i % 64);
	if (i / 64 >= s->hi_words)
		s->hi_words = i / 64 + 1;
	while (s->full_words < s->nwords && s->bits[s->full_words] == UINT64_MAX)
		s->full_words++;
}

static void bit_clear(struct search *s, uint32_t i)
{
	s->bits[i / 64] &= ~(1ull << (i % 64));
	if (i / 64 < s->full_words)
		s->full_words = i / 64;
}

static double now_s(void);

/* qc_lin_check with a deadline (now_s() time, 0: none): -ETIME when it passes first. */
static int lin_search(const struct qc_history *h, uint32_t key, const size_t *ops, size_t n,
		      size_t *blocked, uint64_t *states, double deadline)
{
	unsigned long iter = 0;
	struct search s = {0};
	struct ent_sort *es = NULL;
	uint32_t *stk_ent = NULL, *stk_val = NULL;
	int64_t *stk_ver = NULL;
	uint8_t *readv = NULL, *stk_forced = NULL;
	int64_t *vpin = NULL;	   /* value -> version a fresh read saw it at */
	uint32_t *nwriters = NULL; /* value -> writes of it that may take effect */
	size_t m = 0, depth = 0;
	int rc = -ENOMEM;

	s.ops = malloc((n ? n : 1) * sizeof *s.ops);
	if (!s.ops)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (considered(&h->ops[ops[i]]))
			s.ops[m++] = (struct lop){ops[i], &h->ops[ops[i]]};
	if (m == 0) {
		rc = 1;
		goto out;
	}
	if (m > INT32_MAX / 2 - 2) {
		rc = -E2BIG;
		goto out;
	}
	qsort(s.ops, m, sizeof *s.ops, lop_cmp);
	s.m = m;
	s.nwords = (m + 63) / 64;
	es = malloc(2 * m * sizeof *es);
	s.prev = malloc((2 * m + 2) * sizeof *s.prev);
	s.next = malloc((2 * m + 2) * sizeof *s.next);
	s.eop = malloc(2 * m * sizeof *s.eop);
	s.iscall = malloc(2 * m);
	s.callent = malloc(m * sizeof *s.callent);
	s.retent = malloc(m * sizeof *s.retent);
	s.bits = calloc(s.nwords, sizeof *s.bits);
	s.zob = malloc(m * sizeof *s.zob);
	s.rle = malloc((m + 2) * sizeof *s.rle);
	s.wval = malloc(m * sizeof *s.wval);
	s.anon = malloc(m * sizeof *s.anon);
	s.pin = malloc(m * sizeof *s.pin);
	vpin = malloc((h->nvals ? h->nvals : 1) * sizeof *vpin);
	nwriters = calloc(h->nvals ? h->nvals : 1, sizeof *nwriters);
	readv = calloc(h->nvals ? h->nvals : 1, 1);
	stk_ent = malloc(m * sizeof *stk_ent);
	stk_val = malloc(m * sizeof *stk_val);
	stk_ver = malloc(m * sizeof *stk_ver);
	stk_forced = malloc(m);
	if (!es || !s.prev || !s.next || !s.eop || !s.iscall || !s.callent || !s.retent ||
	    !s.bits || !s.zob || !s.rle || !s.wval || !s.anon || !s.pin || !vpin || !nwriters ||
	    !readv || !stk_ent || !stk_val || !stk_ver || !stk_forced)
		goto out;
	for (size_t i = 0; i < m; i++) {
		es[2 * i] = (struct ent_sort){s.ops[i].op->call, 0, (uint32_t)i};
		es[2 * i + 1] = (struct ent_sort){s.ops[i].op->ret, 1, (uint32_t)i};
		s.zob[i] = mix64(i * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull);
	}
	qsort(es, 2 * m, sizeof *es, ent_cmp);
	/*
	 * Two reductions that keep the search exact. A value no read returns cannot be told from
	 * another such value: they all become QC_UNREAD, so states that differ only there are one
	 * memo entry. And "anonymous" writes (plain writes whose value no read returns and whose
	 * new version was not reported: each only adds 1 to the version) are interchangeable up to
	 * their intervals: if a linearisation puts anonymous W now while anonymous V, also callable
	 * now, completes earlier, swapping the two is again a linearisation (V now, W where V was:
	 * everything between was invoked before V completed, so before W did). So among the
	 * callable anonymous writes only the one that completes first (unknown ones: +infinity,
	 * then in invocation order) is tried.
	 */
	for (size_t i = 0; i < m; i++)
		if (s.ops[i].op->f == QC_READ)
			readv[s.ops[i].op->rval] = 1;
	readv[h->keys[key].init_val] = 1;
	/*
	 * Versions pin writes: a value written by one write only (and not the initial value) that
	 * a read saw at version v can only be there because that write made version v. So the
	 * write may only be linearised where it produces v; otherwise the read could never fit.
	 */
	for (size_t i = 0; i < m; i++) {
		const struct qc_op *op = s.ops[i].op;
		if (op->f == QC_READ)
			vpin[op->rval] = op->rver;
		else
			vpin[op->arg] = QC_NOVER;
	}
	for (size_t i = 0; i < m; i++) {
		const struct qc_op *op = s.ops[i].op;
		if (op->f == QC_READ && op->rver != QC_NOVER)
			vpin[op->rval] = op->rver;
		else if (op->f != QC_READ && op->st != QC_BADVER)
			nwriters[op->arg]++;
	}
	/* A read of a value no op here writes (or of the initial value at another version) can
	 * never fit: the history is not linearizable, and that read is where it shows. */
	for (size_t i = 0; i < m; i++) {
		const struct qc_op *op = s.ops[i].op;
		if (op->f != QC_READ || nwriters[op->rval] != 0)
			continue;
		if (op->rval != h->keys[key].init_val ||
		    (op->rver != QC_NOVER && op->rver != h->keys[key].init_ver)) {
			if (blocked)
				*blocked = s.ops[i].gi;
			rc = 0;
			goto out;
		}
	}
	for (size_t i = 0; i < m; i++) {
		const struct qc_op *op = s.ops[i].op;
		s.pin[i] = QC_NOVER;
		if (op->f == QC_READ || op->st == QC_BADVER)
			continue;
		if (op->st == QC_OK && op->rver != QC_NOVER)
			s.pin[i] = op->rver;
		else if (op->f == QC_CAS && op->st == QC_OK)
			s.pin[i] = op->expect + 1;
		else if (readv[op->arg] && nwriters[op->arg] == 1 &&
			 op->arg != h->keys[key].init_val)
			s.pin[i] = vpin[op->arg];
	}
	for (size_t i = 0; i < m; i++) {
		const struct qc_op *op = s.ops[i].op;
		s.wval[i] = readv[op->arg] ? op->arg : QC_UNREAD;
		s.anon[i] = op->f == QC_WRITE && !readv[op->arg] &&
			    (op->st == QC_UNKNOWN || op->rver == QC_NOVER);
	}
	uint32_t head = (uint32_t)(2 * m), tail = head + 1;
	for (uint32_t e = 0; e < 2 * m; e++) {
		s.eop[e] = es[e].op;
		s.iscall[e] = es[e].kind == 0;
		if (es[e].kind == 0)
			s.callent[es[e].op] = e;
		else
			s.retent[es[e].op] = e;
		s.prev[e] = e == 0 ? (int32_t)head : (int32_t)e - 1;
		s.next[e] = e == 2 * m - 1 ? (int32_t)tail : (int32_t)e + 1;
	}
	s.next[head] = 0;
	s.prev[head] = -1;
	s.prev[tail] = (int32_t)(2 * m - 1);
	s.next[tail] = -1;

	uint32_t val = h->keys[key].init_val; /* read by definition (readv) */
	int64_t ver = h->keys[key].init_ver;
	uint64_t zob = 0;
	uint32_t furthest = 0;
	uint32_t e = (uint32_t)s.next[head];
	int r = memo_add(&s, zob, val, ver);
	if (r < 0)
		goto out;
	/*
	 * Two rules cut the search without losing linearisations:
	 * - An op that changes nothing (a read, a cas that saw another version) and fits the state
	 *   now is linearised now and no alternative is tried: in any linearisation from here it
	 *   can be moved to this point (it is callable, so every later op completes after its
	 *   invocation). If that fails, this configuration fails: the frame is "forced".
	 * - Anonymous writes of unknown outcome are tried last, when every other callable op has
	 *   been tried (at the return that ends the callable ops); their frame is forced too, as
	 *   nothing is left to try after them. Trying them early would multiply the
	 *   configurations by how many of them are pending.
	 */
	for (;;) {
		uint32_t o, cand = UINT32_MAX;
		bool keeps = false;
		if (deadline > 0 && (++iter & 4095) == 0 && now_s() > deadline) {
			rc = -ETIME;
			break;
		}
		if (e == tail) {
			rc = 1;
			break;
		}
		o = s.eop[e];
		if (s.iscall[e]) {
			if (s.anon[o] && s.ops[o].op->st == QC_UNKNOWN) {
				e = (uint32_t)s.next[e];
				continue;
			}
			cand = e;
			keeps = s.ops[o].op->f == QC_READ || s.ops[o].op->st == QC_BADVER;
		} else {
			/* A return: its op is not linearised yet. Unknown ops return at +infinity,
			 * so reaching one means only unknown ops are left: they may take effect at
			 * the end (a write always can, an unknown cas may fail) or never. */
			if (s.ops[o].op->st == QC_UNKNOWN) {
				rc = 1;
				break;
			}
			if (e > furthest)
				furthest = e;
			/* the first-invoked pending anonymous write of unknown outcome, if any */
			for (uint32_t x = (uint32_t)s.next[head]; x != e; x = (uint32_t)s.next[x]) {
				if (s.iscall[x] && s.anon[s.eop[x]] &&
				    s.ops[s.eop[x]].op->st == QC_UNKNOWN) {
					cand = x;
					keeps = true;
					break;
				}
			}
		}
		if (cand != UINT32_MAX) {
			uint32_t co = s.eop[cand];
			uint32_t nval = val;
			int64_t nver = ver;
			bool seen = false;
			if ((!s.anon[co] || anon_first(&s, co)) &&
			    step(s.ops[co].op, s.wval[co], s.pin[co], &nval, &nver)) {
				bit_set(&s, co);
				r = memo_add(&s, zob ^ s.zob[co], nval, nver);
				if (r < 0)
					goto out;
				if (r == 1) {
					stk_ent[depth] = cand;
					stk_val[depth] = val;
					stk_ver[depth] = ver;
					stk_forced[depth] = keeps;
					depth++;
					zob ^= s.zob[co];
					val = nval;
					ver = nver;
					lift(&s, cand);
					e = (uint32_t)s.next[head];
					continue;
				}
				bit_clear(&s, co);
				seen = true; /* seen before, so it failed */
			}
			/* not linearisable now: a call is skipped, unless it was forced (seen
			 * before: this configuration fails too) */
			if (s.iscall[e] && !(keeps && seen)) {
				e = (uint32_t)s.next[e];
				continue;
			}
		}
		bool forced = true;
		while (forced && depth > 0) {
			depth--;
			e = stk_ent[depth];
			val = stk_val[depth];
			ver = stk_ver[depth];
			forced = stk_forced[depth];
			o = s.eop[e];
			zob ^= s.zob[o];
			bit_clear(&s, o);
			unlift(&s, e);
		}
		if (forced) {
			rc = 0;
			break;
		}
		e = (uint32_t)s.next[e];
	}
	if (rc == 0 && blocked)
		*blocked = s.ops[s.eop[furthest]].gi;
out:
	if (states)
		*states += s.memo.count;
	free(es);
	free(readv);
	free(vpin);
	free(nwriters);
	free(stk_ent);
	free(stk_val);
	free(stk_ver);
	free(stk_forced);
	search_free(&s);
	return rc;
}

int qc_lin_check(const struct qc_history *h, uint32_t key, const size_t *ops, size_t n,
		 size_t *blocked, uint64_t *states)
{
	return lin_search(h, key, ops, n, blocked, states, 0);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Keep the ops of L[0..*n) invoked no later than the completion of op BLOCKED. */
static void truncate_at(const struct qc_history *h, size_t *l, size_t *n, size_t blocked)
{
	int64_t t = h->ops[blocked].ret;
	size_t k = 0;
	for (size_t i = 0; i < *n; i++)
		if (h->ops[l[i]].call <= t)
			l[k++] = l[i];
	*n = k;
}

/* A read (or a cas that saw another version) changes nothing: removing it from a history that
 * is not linearizable can make it linearizable, never the reverse, so the removals that keep
 * the history failing give a smaller history that still proves the anomaly. */
static bool removable(const struct qc_op *op)
{
	return op->f == QC_READ || (op->f == QC_CAS && op->st == QC_BADVER);
}

static int shrink(const struct qc_history *h, struct qc_witness *w, double budget)
{
	double deadline = now_s() + budget;
	size_t *cand = malloc((w->nops ? w->nops : 1) * sizeof *cand);
	size_t blocked = w->blocked;
	int rc = 0;

	if (!cand)
		return -ENOMEM;
	truncate_at(h, w->ops, &w->nops, blocked);
	rc = lin_search(h, w->key, w->ops, w->nops, &blocked, NULL, deadline);
	if (rc != 0)
		goto out; /* out of time or memory, or (unexpectedly) linearizable: keep it */
	w->blocked = blocked;
	w->shrink_done = 0;
	/* ddmin over the removable ops: try removing chunks, halving their size. */
	size_t nr = 0;
	for (size_t i = 0; i < w->nops; i++)
		if (removable(&h->ops[w->ops[i]]))
			nr++;
	for (size_t chunk = nr / 2 ? nr / 2 : 1;; chunk = chunk / 2 ? chunk / 2 : 1) {
		size_t skip = 0; /* removable ops kept so far in this pass */
		for (;;) {
			if (now_s() > deadline)
				goto out;
			/* build the candidate without removable ops skip .. skip+chunk-1 */
			size_t k = 0, ri = 0, removed = 0;
			for (size_t i = 0; i < w->nops; i++) {
				size_t g = w->ops[i];
				if (removable(&h->ops[g])) {
					if (ri >= skip && ri < skip + chunk) {
						ri++;
						removed++;
						continue;
					}
					ri++;
				}
				cand[k++] = g;
			}
			if (removed == 0)
				break;
			rc = lin_search(h, w->key, cand, k, &blocked, NULL, deadline);
			if (rc < 0)
				goto out;
			if (rc == 0) {
				truncate_at(h, cand, &k, blocked);
				memcpy(w->ops, cand, k * sizeof *cand);
				w->nops = k;
				w->blocked = blocked;
			} else {
				skip += chunk;
			}
		}
		if (chunk == 1)
			break;
	}
	w->shrink_done = 1;
	rc = 0;
out:
	free(cand);
	return rc == -ENOMEM ? rc : 0;
}

struct kc {
	uint32_t key;
	int64_t call;
	size_t i;
};

static int kc_cmp(const void *a, const void *b)
{
	const struct kc *x = a, *y = b;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	if (x->call != y->call)
		return x->call < y->call ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

int qc__add_anomaly(struct qc_result *r, enum qc_kind kind, uint32_t key, size_t op, size_t other)
{
	if (r->nan == r->an_cap) {
		size_t ncap = r->an_cap ? r->an_cap * 2 : 16;
		struct qc_anomaly *na = realloc(r->an, ncap * sizeof *na);
		if (!na)
			return -ENOMEM;
		r->an = na;
		r->an_cap = ncap;
	}
	r->an[r->nan++] = (struct qc_anomaly){kind, key, op, other};
	return 0;
}

int qc_check(const struct qc_history *h, const struct qc_opts *opts, struct qc_result *r)
{
	size_t *idx = malloc((h->nops ? h->nops : 1) * sizeof *idx);
	struct kc *kc = malloc((h->nops ? h->nops : 1) * sizeof *kc);
	int rc = -ENOMEM;

	if (!idx || !kc)
		goto out;
	for (size_t i = 0; i < h->nops; i++)
		kc[i] = (struct kc){h->ops[i].key, h->ops[i].call, i};
	qsort(kc, h->nops, sizeof *kc, kc_cmp);
	for (size_t i = 0; i < h->nops; i++)
		idx[i] = kc[i].i;

	double t0 = now_s();
	for (size_t a = 0; a < h->nops;) {
		uint32_t key = h->ops[idx[a]].key;
		size_t b = a;
		while (b < h->nops && h->ops[idx[b]].key == key)
			b++;
		size_t blocked = 0;
		for (size_t i = a; i < b; i++)
			if (considered(&h->ops[idx[i]]))
				r->lin_ops++;
		int lin = qc_lin_check(h, key, idx + a, b - a, &blocked, &r->states);
		if (lin < 0) {
			rc = lin;
			goto out;
		}
		if (lin == 0) {
			if ((rc = qc__add_anomaly(r, QC_A_NONLIN, key, blocked, SIZE_MAX)))
				goto out;
			struct qc_witness *nw = realloc(r->w, (r->nw + 1) * sizeof *nw);
			if (!nw)
				goto out;
			r->w = nw;
			struct qc_witness *w = &r->w[r->nw];
			*w = (struct qc_witness){.key = key, .nops = b - a, .blocked = blocked};
			w->ops = malloc((b - a) * sizeof *w->ops);
			if (!w->ops)
				goto out;
			r->nw++;
			size_t k = 0;
			for (size_t i = a; i < b; i++)
				if (considered(&h->ops[idx[i]]))
					w->ops[k++] = idx[i];
			w->nops = w->key_ops = k;
			if (opts && opts->shrink_seconds > 0 &&
			    (rc = shrink(h, w, opts->shrink_seconds)))
				goto out;
		}
		a = b;
	}
	r->lin_seconds = now_s() - t0;
	t0 = now_s();
	if ((rc = qc_seq_check(h, r)))
		goto out;
	r->seq_seconds = now_s() - t0;
	rc = 0;
out:
	free(idx);
	free(kc);
	return rc;
}

void qc_result_free(struct qc_result *r)
{
	for (size_t i = 0; i < r->nw; i++)
		free(r->w[i].ops);
	free(r->w);
	free(r->an);
	memset(r, 0, sizeof *r);
}
