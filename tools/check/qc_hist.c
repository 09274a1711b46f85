/*
 * qc_hist: parser of the history format (qc_hist.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tools/check/qc_hist.h"

#define QC_MAX_FIELDS 16
#define QC_MAX_TOKEN  (1u << 20)

struct field {
	const char *k;
	size_t klen;
	const char *v;
	size_t vlen;
};

/* Per process: the op it has outstanding. Open addressing on the process id. */
struct procmap {
	uint32_t *ids;
	int64_t *pending; /* op index, -1 none */
	uint8_t *used;
	uint32_t cap, count;
};

struct parser {
	struct qc_history *h;
	struct qc_perr *err;
	unsigned line;
	bool any_record;
	struct procmap pm;
	char *tmp; /* decoded token */
	size_t tmp_cap;
};

static int perr(struct parser *ps, const char *fmt, ...)
{
	va_list ap;

	ps->err->line = ps->line;
	va_start(ap, fmt);
	vsnprintf(ps->err->msg, sizeof ps->err->msg, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static uint64_t hash_bytes(const char *p, size_t n)
{
	uint64_t x = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++) {
		x ^= (unsigned char)p[i];
		x *= 1099511628211ull;
	}
	return x ^ (x >> 29);
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode an escaped token into ps->tmp; returns its length or a negative errno. */
static long unescape(struct parser *ps, const char *v, size_t n, const char *what)
{
	size_t o = 0;

	if (n + 1 > ps->tmp_cap) {
		char *t = realloc(ps->tmp, n + 1);
		if (!t)
			return -ENOMEM;
		ps->tmp = t;
		ps->tmp_cap = n + 1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c == '%') {
			int a = i + 1 < n ? hexval(v[i + 1]) : -1;
			int b = i + 2 < n ? hexval(v[i + 2]) : -1;
			if (a < 0 || b < 0)
				return perr(ps, "bad %%XX escape in %s", what);
			ps->tmp[o++] = (char)(a * 16 + b);
			i += 2;
		} else {
			ps->tmp[o++] = (char)c;
		}
	}
	ps->tmp[o] = 0;
	return (long)o;
}

/* Values: id -> bytes; lookup or add. */
static int val_id(struct qc_history *h, const char *p, size_t n, uint32_t *id)
{
	if ((h->nvals + 1) * 2 > h->vh_cap) {
		uint32_t ncap = h->vh_cap ? h->vh_cap * 2 : 64;
		uint32_t *nt = malloc(ncap * sizeof *nt);
		if (!nt)
			return -ENOMEM;
		memset(nt, 0xff, ncap * sizeof *nt);
		for (uint32_t i = 0; i < h->nvals; i++) {
			uint64_t x = hash_bytes(h->vals[i], h->val_len[i]) & (ncap - 1);
			while (nt[x] != UINT32_MAX)
				x = (x + 1) & (ncap - 1);
			nt[x] = i;
		}
		free(h->vh);
		h->vh = nt;
		h->vh_cap = ncap;
	}
	uint64_t x = hash_bytes(p, n) & (h->vh_cap - 1);
	for (; h->vh[x] != UINT32_MAX; x = (x + 1) & (h->vh_cap - 1)) {
		uint32_t i = h->vh[x];
		if (h->val_len[i] == n && memcmp(h->vals[i], p, n) == 0) {
			*id = i;
			return 0;
		}
	}
	if (h->nvals == h->vals_cap) {
		uint32_t ncap = h->vals_cap ? h->vals_cap * 2 : 64;
		char **nv = realloc(h->vals, ncap * sizeof *nv);
		if (!nv)
			return -ENOMEM;
		h->vals = nv;
		size_t *nl = realloc(h->val_len, ncap * sizeof *nl);
		if (!nl)
			return -ENOMEM;
		h->val_len = nl;
		h->vals_cap = ncap;
	}
	char *s = malloc(n + 1);
	if (!s)
		return -ENOMEM;
	memcpy(s, p, n);
	s[n] = 0;
	h->vals[h->nvals] = s;
	h->val_len[h->nvals] = n;
	h->vh[x] = h->nvals;
	*id = h->nvals++;
	return 0;
}

static int key_id(struct qc_history *h, const char *p, size_t n, uint32_t *id, bool *fresh)
{
	if ((h->nkeys + 1) * 2 > h->kh_cap) {
		uint32_t ncap = h->kh_cap ? h->kh_cap * 2 : 16;
		uint32_t *nt = malloc(ncap * sizeof *nt);
		if (!nt)
			return -ENOMEM;
		memset(nt, 0xff, ncap * sizeof *nt);
		for (uint32_t i = 0; i < h->nkeys; i++) {
			uint64_t x = hash_bytes(h->keys[i].name, h->keys[i].len) & (ncap - 1);
			while (nt[x] != UINT32_MAX)
				x = (x + 1) & (ncap - 1);
			nt[x] = i;
		}
		free(h->kh);
		h->kh = nt;
		h->kh_cap = ncap;
	}
	uint64_t x = hash_bytes(p, n) & (h->kh_cap - 1);
	for (; h->kh[x] != UINT32_MAX; x = (x + 1) & (h->kh_cap - 1)) {
		uint32_t i = h->kh[x];
		if (h->keys[i].len == n && memcmp(h->keys[i].name, p, n) == 0) {
			*id = i;
			*fresh = false;
			return 0;
		}
	}
	if (h->nkeys == h->keys_cap) {
		uint32_t ncap = h->keys_cap ? h->keys_cap * 2 : 16;
		struct qc_key *nk = realloc(h->keys, ncap * sizeof *nk);
		if (!nk)
			return -ENOMEM;
		h->keys = nk;
		h->keys_cap = ncap;
	}
	char *s = malloc(n + 1);
	if (!s)
		return -ENOMEM;
	memcpy(s, p, n);
	s[n] = 0;
	h->keys[h->nkeys] = (struct qc_key){.name = s, .len = n, .init_val = 0, .init_ver = 0};
	h->kh[x] = h->nkeys;
	*id = h->nkeys++;
	*fresh = true;
	return 0;
}

/* The process's slot in the process map (created if missing). */
static int proc_slot(struct procmap *pm, uint32_t proc, int64_t **pending)
{
	if ((pm->count + 1) * 2 > pm->cap) {
		uint32_t ncap = pm->cap ? pm->cap * 2 : 64;
		uint32_t *ids = calloc(ncap, sizeof *ids);
		int64_t *pend = calloc(ncap, sizeof *pend);
		uint8_t *used = calloc(ncap, 1);
		if (!ids || !pend || !used) {
			free(ids);
			free(pend);
			free(used);
			return -ENOMEM;
		}
		for (uint32_t i = 0; i < pm->cap; i++) {
			if (!pm->used[i])
				continue;
			uint32_t x = (pm->ids[i] * 2654435761u) & (ncap - 1);
			while (used[x])
				x = (x + 1) & (ncap - 1);
			used[x] = 1;
			ids[x] = pm->ids[i];
			pend[x] = pm->pending[i];
		}
		free(pm->ids);
		free(pm->pending);
		free(pm->used);
		pm->ids = ids;
		pm->pending = pend;
		pm->used = used;
		pm->cap = ncap;
	}
	uint32_t x = (proc * 2654435761u) & (pm->cap - 1);
	for (; pm->used[x]; x = (x + 1) & (pm->cap - 1)) {
		if (pm->ids[x] == proc) {
			*pending = &pm->pending[x];
			return 0;
		}
	}
	pm->used[x] = 1;
	pm->ids[x] = proc;
	pm->pending[x] = -1;
	pm->count++;
	*pending = &pm->pending[x];
	return 0;
}

static const struct field *find(const struct field *f, int n, const char *k)
{
	size_t kl = strlen(k);
	for (int i = 0; i < n; i++)
		if (f[i].klen == kl && memcmp(f[i].k, k, kl) == 0)
			return &f[i];
	return NULL;
}

static int parse_u64(struct parser *ps, const struct field *f, uint64_t *out)
{
	uint64_t x = 0;

	if (f->vlen == 0 || f->vlen > 20)
		return perr(ps, "%.*s: expected an unsigned integer", (int)f->klen, f->k);
	for (size_t i = 0; i < f->vlen; i++) {
		if (f->v[i] < '0' || f->v[i] > '9')
			return perr(ps, "%.*s: expected an unsigned integer", (int)f->klen, f->k);
		unsigned d = (unsigned)(f->v[i] - '0');
		if (x > (UINT64_MAX - d) / 10)
			return perr(ps, "%.*s: number out of range", (int)f->klen, f->k);
		x = x * 10 + d;
	}
	*out = x;
	return 0;
}

/* A required unsigned field that must fit in MAX. */
static int req_u64(struct parser *ps, const struct field *fs, int n, const char *k, uint64_t max,
		   uint64_t *out)
{
	const struct field *f = find(fs, n, k);
	if (!f)
		return perr(ps, "missing field %s=", k);
	int rc = parse_u64(ps, f, out);
	if (rc)
		return rc;
	if (*out > max)
		return perr(ps, "%s: number out of range", k);
	return 0;
}

static int opt_ver(struct parser *ps, const struct field *fs, int n, const char *k, int64_t *out)
{
	const struct field *f = find(fs, n, k);
	uint64_t x;

	*out = QC_NOVER;
	if (!f)
		return 0;
	int rc = parse_u64(ps, f, &x);
	if (rc)
		return rc;
	if (x > (uint64_t)INT64_MAX - 1)
		return perr(ps, "%s: number out of range", k);
	*out = (int64_t)x;
	return 0;
}

static int value_field(struct parser *ps, const struct field *f, uint32_t *id)
{
	long n = unescape(ps, f->v, f->vlen, "value");
	if (n < 0)
		return (int)n;
	return val_id(ps->h, ps->tmp, (size_t)n, id);
}

static int add_op(struct qc_history *h, struct qc_op **op)
{
	if (h->nops == h->ops_cap) {
		size_t ncap = h->ops_cap ? h->ops_cap * 2 : 256;
		struct qc_op *no = realloc(h->ops, ncap * sizeof *no);
		if (!no)
			return -ENOMEM;
		h->ops = no;
		h->ops_cap = ncap;
	}
	*op = &h->ops[h->nops++];
	memset(*op, 0, sizeof **op);
	return 0;
}

static const char *const f_names[] = {
    [QC_READ] = "read",	    [QC_LREAD] = "lread",	    [QC_WRITE] = "write",
    [QC_CAS] = "cas",	    [QC_CREATE_SEQ] = "create-seq", [QC_LOCK] = "lock",
    [QC_UNLOCK] = "unlock",
};

const char *qc_f_name(enum qc_f f)
{
	if (f < QC_READ || f > QC_UNLOCK)
		return "?";
	return f_names[f];
}

static int rec_inv(struct parser *ps, const struct field *fs, int n)
{
	struct qc_history *h = ps->h;
	uint64_t p, id, t;
	int64_t *pending;
	struct qc_op *op;
	const struct field *f;
	enum qc_f type = 0;
	uint32_t key;
	bool fresh;
	int rc;

	if ((rc = req_u64(ps, fs, n, "p", UINT32_MAX, &p)) ||
	    (rc = req_u64(ps, fs, n, "op", UINT64_MAX, &id)) ||
	    (rc = req_u64(ps, fs, n, "t", (uint64_t)INT64_MAX - 1, &t)))
		return rc;
	if (!(f = find(fs, n, "f")))
		return perr(ps, "missing field f=");
	for (int i = QC_READ; i <= QC_UNLOCK; i++)
		if (strlen(f_names[i]) == f->vlen && memcmp(f_names[i], f->v, f->vlen) == 0)
			type = (enum qc_f)i;
	if (!type)
		return perr(ps, "unknown op type f=%.*s", (int)(f->vlen > 40 ? 40 : f->vlen), f->v);
	if (!(f = find(fs, n, "key")))
		return perr(ps, "missing field key=");
	long kl = unescape(ps, f->v, f->vlen, "key");
	if (kl < 0)
		return (int)kl;
	if (kl == 0)
		return perr(ps, "empty key");
	if ((rc = key_id(h, ps->tmp, (size_t)kl, &key, &fresh)))
		return rc;
	if ((rc = proc_slot(&ps->pm, (uint32_t)p, &pending)))
		return rc;
	if (*pending >= 0)
		return perr(ps,
			    "process %llu invokes op %llu while op %llu (line %u) is outstanding",
			    (unsigned long long)p, (unsigned long long)id,
			    (unsigned long long)h->ops[*pending].id, h->ops[*pending].line_inv);
	if ((rc = add_op(h, &op)))
		return rc;
	op->proc = (uint32_t)p;
	op->id = id;
	op->call = (int64_t)t;
	op->ret = QC_T_INF;
	op->f = type;
	op->st = QC_UNKNOWN;
	op->key = key;
	op->rver = QC_NOVER;
	op->expect = QC_NOVER;
	op->line_inv = ps->line;
	if (type == QC_WRITE || type == QC_CAS) {
		if (!(f = find(fs, n, "value")))
			return perr(ps, "%s needs value=", qc_f_name(type));
		if ((rc = value_field(ps, f, &op->arg)))
			return rc;
	}
	if (type == QC_CAS) {
		if ((rc = opt_ver(ps, fs, n, "expect", &op->expect)))
			return rc;
		if (op->expect == QC_NOVER)
			return perr(ps, "cas needs expect=");
	}
	*pending = (int64_t)(h->nops - 1);
	return 0;
}

static int rec_done(struct parser *ps, const char *kind, const struct field *fs, int n)
{
	struct qc_history *h = ps->h;
	uint64_t p, id, t;
	int64_t *pending;
	const struct field *f;
	int rc;

	if ((rc = req_u64(ps, fs, n, "p", UINT32_MAX, &p)) ||
	    (rc = req_u64(ps, fs, n, "op", UINT64_MAX, &id)) ||
	    (rc = req_u64(ps, fs, n, "t", (uint64_t)INT64_MAX - 1, &t)))
		return rc;
	if ((rc = proc_slot(&ps->pm, (uint32_t)p, &pending)))
		return rc;
	if (*pending < 0)
		return perr(ps, "%s for process %llu op %llu, which has no outstanding invocation",
			    kind, (unsigned long long)p, (unsigned long long)id);
	struct qc_op *op = &h->ops[*pending];
	if (op->id != id)
		return perr(ps,
			    "%s for process %llu op %llu, but its outstanding op is %llu (line %u)",
			    kind, (unsigned long long)p, (unsigned long long)id,
			    (unsigned long long)op->id, op->line_inv);
	if ((int64_t)t < op->call)
		return perr(ps, "completion time %llu before the invocation's (line %u)",
			    (unsigned long long)t, op->line_inv);
	op->line_done = ps->line;
	*pending = -1;
	if (strcmp(kind, "info") == 0) {
		op->st = QC_UNKNOWN;
		op->ret = QC_T_INF;
		return 0;
	}
	op->ret = (int64_t)t;
	if (strcmp(kind, "fail") == 0) {
		op->st = QC_FAIL;
		f = find(fs, n, "err");
		if (op->f == QC_CAS && f && f->vlen == 10 && memcmp(f->v, "badversion", 10) == 0)
			op->st = QC_BADVER;
		return 0;
	}
	op->st = QC_OK;
	if ((rc = opt_ver(ps, fs, n, "version", &op->rver)))
		return rc;
	if (op->f == QC_READ || op->f == QC_LREAD) {
		if (!(f = find(fs, n, "value")))
			return perr(ps, "ok of a %s needs value=", qc_f_name(op->f));
		if ((rc = value_field(ps, f, &op->rval)))
			return rc;
	}
	return 0;
}

static int rec_init(struct parser *ps, const struct field *fs, int n)
{
	struct qc_history *h = ps->h;
	const struct field *f;
	uint32_t key, val;
	int64_t ver;
	bool fresh;
	int rc;

	if (!(f = find(fs, n, "key")))
		return perr(ps, "missing field key=");
	long kl = unescape(ps, f->v, f->vlen, "key");
	if (kl < 0)
		return (int)kl;
	if (kl == 0)
		return perr(ps, "empty key");
	if ((rc = key_id(h, ps->tmp, (size_t)kl, &key, &fresh)))
		return rc;
	if (!fresh)
		return perr(ps, "init of a key already used or initialised");
	if (!(f = find(fs, n, "value")))
		return perr(ps, "init needs value=");
	if ((rc = value_field(ps, f, &val)))
		return rc;
	if ((rc = opt_ver(ps, fs, n, "version", &ver)))
		return rc;
	h->keys[key].init_val = val;
	h->keys[key].init_ver = ver == QC_NOVER ? 0 : ver;
	return 0;
}

static int rec_history(struct parser *ps, const struct field *fs, int n)
{
	const struct field *f;
	uint64_t x;
	int rc;

	if (ps->any_record)
		return perr(ps, "the history record must come first");
	if ((rc = req_u64(ps, fs, n, "version", UINT32_MAX, &x)))
		return rc;
	if (x != 1)
		return perr(ps, "unsupported history version %llu", (unsigned long long)x);
	if ((f = find(fs, n, "seed"))) {
		if ((rc = parse_u64(ps, f, &ps->h->seed)))
			return rc;
		ps->h->has_seed = 1;
	}
	return 0;
}

static int parse_line(struct parser *ps, const char *s, size_t len)
{
	struct field fs[QC_MAX_FIELDS];
	int nf = 0;
	size_t i = 0, w0, w1;

	while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r'))
		i++;
	if (i == len || s[i] == '#')
		return 0;
	w0 = i;
	while (i < len && s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
		i++;
	w1 = i;
	while (i < len) {
		while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r'))
			i++;
		if (i == len)
			break;
		size_t a = i;
		while (i < len && s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			i++;
		const char *eq = memchr(s + a, '=', i - a);
		if (!eq || eq == s + a)
			return perr(ps, "expected key=value, got \"%.*s\"",
				    (int)(i - a > 40 ? 40 : i - a), s + a);
		if (nf == QC_MAX_FIELDS)
			return perr(ps, "too many fields (at most %d)", QC_MAX_FIELDS);
		fs[nf] =
		    (struct field){s + a, (size_t)(eq - (s + a)), eq + 1, (size_t)(s + i - eq - 1)};
		for (int j = 0; j < nf; j++)
			if (fs[j].klen == fs[nf].klen &&
			    memcmp(fs[j].k, fs[nf].k, fs[nf].klen) == 0)
				return perr(ps, "field %.*s given twice", (int)fs[nf].klen,
					    fs[nf].k);
		nf++;
	}
	const char *w = s + w0;
	size_t wl = w1 - w0;
	int rc;
#define IS(lit) (wl == sizeof(lit) - 1 && memcmp(w, lit, wl) == 0)
	if (IS("history"))
		rc = rec_history(ps, fs, nf);
	else if (IS("init"))
		rc = rec_init(ps, fs, nf);
	else if (IS("inv"))
		rc = rec_inv(ps, fs, nf);
	else if (IS("ok"))
		rc = rec_done(ps, "ok", fs, nf);
	else if (IS("fail"))
		rc = rec_done(ps, "fail", fs, nf);
	else if (IS("info"))
		rc = rec_done(ps, "info", fs, nf);
	else
		rc = perr(ps, "unknown record type \"%.*s\"", (int)(wl > 40 ? 40 : wl), w);
#undef IS
	ps->any_record = true;
	return rc;
}

int qc_history_parse(const char *buf, size_t len, struct qc_history *h, struct qc_perr *err)
{
	struct parser ps = {.h = h, .err = err};
	uint32_t empty;
	size_t pos = 0;
	int rc;

	err->line = 0;
	err->msg[0] = 0;
	if ((rc = val_id(h, "", 0, &empty)))
		goto out;
	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t l = nl ? (size_t)(nl - (buf + pos)) : len - pos;
		ps.line++;
		if (memchr(buf + pos, 0, l)) {
			rc = perr(&ps, "NUL byte in line");
			goto out;
		}
		if (l > QC_MAX_TOKEN) {
			rc = perr(&ps, "line longer than %u bytes", QC_MAX_TOKEN);
			goto out;
		}
		if ((rc = parse_line(&ps, buf + pos, l)))
			goto out;
		pos += l + (nl ? 1 : 0);
	}
out:
	if (rc == -ENOMEM) {
		err->line = ps.line;
		snprintf(err->msg, sizeof err->msg, "out of memory");
	}
	free(ps.tmp);
	free(ps.pm.ids);
	free(ps.pm.pending);
	free(ps.pm.used);
	if (rc) {
		qc_history_free(h);
		memset(h, 0, sizeof *h);
	}
	return rc;
}

int qc_history_read(FILE *f, struct qc_history *h, struct qc_perr *err)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	int rc;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (len == cap) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				rc = -ENOMEM;
				goto out;
			}
			buf = nb;
			cap *= 2;
		}
		size_t r = fread(buf + len, 1, cap - len, f);
		len += r;
		if (r == 0)
			break;
	}
	if (ferror(f)) {
		err->line = 0;
		snprintf(err->msg, sizeof err->msg, "read error");
		rc = -EIO;
		goto out;
	}
	rc = qc_history_parse(buf, len, h, err);
out:
	free(buf);
	return rc;
}

void qc_history_free(struct qc_history *h)
{
	for (uint32_t i = 0; i < h->nkeys; i++)
		free(h->keys[i].name);
	for (uint32_t i = 0; i < h->nvals; i++)
		free(h->vals[i]);
	free(h->keys);
	free(h->vals);
	free(h->val_len);
	free(h->ops);
	free(h->kh);
	free(h->vh);
	memset(h, 0, sizeof *h);
}

void qc_write_escaped(FILE *out, const void *bytes, size_t len)
{
	const unsigned char *p = bytes;
	for (size_t i = 0; i < len; i++) {
		if (p[i] > 0x20 && p[i] < 0x7f && p[i] != '%')
			fputc(p[i], out);
		else
			fprintf(out, "%%%02X", p[i]);
	}
}

void qc_write_value(FILE *out, const struct qc_history *h, uint32_t v)
{
	qc_write_escaped(out, h->vals[v], h->val_len[v]);
}
