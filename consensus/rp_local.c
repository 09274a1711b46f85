/*
 * rp_local: the single-node replica (rp.h). Submitters append to a FIFO queue; one storage thread
 * takes everything queued (up to max_batch transactions / RP__BATCH_BYTES), applies it in one LMDB
 * write transaction with consecutive zxids and one timestamp, commits once (one fsync for the whole
 * batch: group commit), then reports the batch's changes and completes each submission.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "consensus/rp.h"
#include "consensus/rp_impl.h"
#include "store/st_test.h"

#define RP__DEFAULT_BATCH 4096
#define RP__BATCH_BYTES	  ((size_t)64 << 20) /* payload per commit, bounds LMDB's dirty pages */

/* One submitted transaction: the copied ops, their strings and data, and room for the results, all
 * in one allocation. */
struct rp__item {
	struct rp__item *next;
	rp_done_cb cb;
	void *arg;
	uint32_t nops;
	size_t size;
	uint64_t zxid;
	struct zt_op *ops;     /* nops, inside this allocation */
	struct zt_result *res; /* nops, inside this allocation */
};

/* A change of the batch being applied; the path is at off in chg_arena. */
struct rp__chg {
	enum zt_change_type type;
	uint64_t zxid;
	size_t off;
};

struct rp_local {
	struct rp base;
	struct st_env *env;
	rp_change_cb on_change;
	void *change_arg;
	uint32_t max_batch;
	pthread_t thread;

	pthread_mutex_t lock;
	pthread_cond_t cond;	/* signalled on submit and close */
	struct rp__item *head;	/* protected by lock */
	struct rp__item **tail; /* protected by lock */
	int stopping;		/* protected by lock */

	uint64_t applied;   /* last committed zxid; written by the storage thread, atomic */
	uint64_t n_txns;    /* committed transactions, atomic */
	uint64_t n_batches; /* successful commits, atomic */

	/* Storage thread only. */
	struct rp__chg *chg;
	size_t nchg, chg_cap;
	char *arena;
	size_t arena_len, arena_cap;
	int chg_err;
};

static int64_t rp__now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* zt_change_cb: keep the change until the batch is committed. */
static void rp__collect(void *arg, const struct zt_change *ch)
{
	struct rp_local *l = arg;
	size_t plen = strlen(ch->path) + 1;

	if (l->chg_err)
		return;
	if (l->nchg == l->chg_cap) {
		size_t cap = l->chg_cap ? l->chg_cap * 2 : 256;
		struct rp__chg *v = realloc(l->chg, cap * sizeof *v);
		if (!v)
			goto nomem;
		l->chg = v;
		l->chg_cap = cap;
	}
	if (l->arena_cap - l->arena_len < plen) {
		size_t cap = l->arena_cap ? l->arena_cap : 4096;
		while (cap - l->arena_len < plen)
			cap *= 2;
		char *a = realloc(l->arena, cap);
		if (!a)
			goto nomem;
		l->arena = a;
		l->arena_cap = cap;
	}
	memcpy(l->arena + l->arena_len, ch->path, plen);
	l->chg[l->nchg++] = (struct rp__chg){ch->type, ch->zxid, l->arena_len};
	l->arena_len += plen;
	return;
nomem:
	l->chg_err = -ENOMEM;
}

static void rp__fail(struct rp__item *it, int status)
{
	while (it) {
		struct rp__item *next = it->next;
		if (it->cb)
			it->cb(it->arg, status, 0, NULL, 0);
		free(it);
		it = next;
	}
}

/* Apply and commit BATCH, then notify. On failure every item completes with the error. */
static void rp__run_batch(struct rp_local *l, struct rp__item *batch)
{
	struct st_wtxn *w = NULL;
	struct rp__item *it, *done = batch;
	uint64_t zxid = __atomic_load_n(&l->applied, __ATOMIC_RELAXED);
	int64_t now = rp__now_ms();
	uint64_t n = 0;
	int rc;

	l->nchg = 0;
	l->arena_len = 0;
	l->chg_err = 0;
	rc = st_wbegin(l->env, &w);
	if (rc)
		goto err;
	for (it = batch; it; it = it->next) {
		if (it->nops == 0) { /* rp_sync: everything before it is in this commit */
			it->zxid = zxid;
			continue;
		}
		struct zt_txn txn = {
		    .zxid = zxid + 1, .time_ms = now, .nops = it->nops, .ops = it->ops};
		rc = zt_apply(w, &txn, it->res, rp__collect, l);
		if (rc) {
			done = it; /* zt_apply freed this one's results */
			break;
		}
		it->zxid = ++zxid;
		n++;
	}
	if (rc == 0) {
		done = NULL; /* every item has results to free */
		rc = l->chg_err;
	}
	if (rc) {
		st_wabort(w);
		goto err;
	}
	rc = st_wcommit(w);
	if (rc)
		goto err;

	/* the changes first: whoever sees the applied mark move finds their effects (kernel-cache
	 * invalidations, watches) already under way */
	if (l->on_change) {
		for (size_t i = 0; i < l->nchg; i++) {
			struct zt_change ch = {l->chg[i].type, l->arena + l->chg[i].off,
					       l->chg[i].zxid};
			l->on_change(l->change_arg, &ch);
		}
	}
	__atomic_store_n(&l->applied, zxid, __ATOMIC_RELEASE);
	__atomic_add_fetch(&l->n_txns, n, __ATOMIC_RELAXED);
	__atomic_add_fetch(&l->n_batches, 1, __ATOMIC_RELAXED);
	for (it = batch; it;) {
		struct rp__item *next = it->next;
		if (it->cb)
			it->cb(it->arg, 0, it->zxid, it->nops ? it->res : NULL, it->nops);
		zt_results_free(it->res, it->nops);
		free(it);
		it = next;
	}
	return;
err:
	/* Nothing of the batch is kept: free the results of the items applied before the failure.
	 */
	for (it = batch; it && it != done; it = it->next)
		zt_results_free(it->res, it->nops);
	rp__fail(batch, rc);
}

static void *rp__thread(void *arg)
{
	struct rp_local *l = arg;
	struct rp__item *batch, *rest;

	pthread_mutex_lock(&l->lock);
	for (;;) {
		while (!l->head && !l->stopping)
			pthread_cond_wait(&l->cond, &l->lock);
		if (l->stopping)
			break;
		/* Take everything queued, up to the batch limits. */
		struct rp__item **pp = &l->head;
		uint32_t n = 0;
		size_t bytes = 0;
		while (*pp && n < l->max_batch &&
		       (n == 0 || bytes + (*pp)->size <= RP__BATCH_BYTES)) {
			bytes += (*pp)->size;
			pp = &(*pp)->next;
			n++;
		}
		batch = l->head;
		l->head = *pp;
		*pp = NULL;
		if (!l->head)
			l->tail = &l->head;
		pthread_mutex_unlock(&l->lock);
		rp__run_batch(l, batch);
		pthread_mutex_lock(&l->lock);
	}
	rest = l->head;
	l->head = NULL;
	l->tail = &l->head;
	pthread_mutex_unlock(&l->lock);
	rp__fail(rest, -ESHUTDOWN);
	return NULL;
}

/* Queue IT for the storage thread; frees it and returns -ESHUTDOWN when closing. */
static int rp__enqueue(struct rp_local *l, struct rp__item *it)
{
	pthread_mutex_lock(&l->lock);
	if (l->stopping) {
		pthread_mutex_unlock(&l->lock);
		free(it);
		return -ESHUTDOWN;
	}
	*l->tail = it;
	l->tail = &it->next;
	pthread_cond_signal(&l->cond);
	pthread_mutex_unlock(&l->lock);
	return 0;
}

static int rp__local_submit(struct rp *rp, const struct zt_op *ops, uint32_t nops, rp_done_cb cb,
			    void *arg)
{
	struct rp_local *l = (struct rp_local *)rp;
	struct rp__item *it;
	size_t size = sizeof *it;

	/* ops validated by rp_submit: only the size of the copy is computed here */
	for (uint32_t i = 0; i < nops; i++) {
		const struct zt_op *op = &ops[i];
		size += sizeof(struct zt_op) + sizeof(struct zt_result) + strlen(op->path) + 1 +
			(op->type == ZT_OP_RENAME ? strlen(op->path2) + 1 : 0) + op->len;
	}
	it = malloc(size);
	if (!it)
		return -ENOMEM;
	it->next = NULL;
	it->cb = cb;
	it->arg = arg;
	it->nops = nops;
	it->size = size;
	it->zxid = 0;
	it->ops = (struct zt_op *)(it + 1);
	it->res = (struct zt_result *)(it->ops + nops);
	char *p = (char *)(it->res + nops);
	for (uint32_t i = 0; i < nops; i++) {
		struct zt_op *op = &it->ops[i];
		*op = ops[i];
		size_t pl = strlen(ops[i].path) + 1;
		memcpy(p, ops[i].path, pl);
		op->path = p;
		p += pl;
		if (op->type == ZT_OP_RENAME) {
			size_t p2l = strlen(ops[i].path2) + 1;
			memcpy(p, ops[i].path2, p2l);
			op->path2 = p;
			p += p2l;
		} else {
			op->path2 = NULL;
		}
		if (op->len) {
			memcpy(p, ops[i].data, op->len);
			op->data = p;
			p += op->len;
		} else {
			op->data = NULL;
		}
	}

	return rp__enqueue(l, it);
}

/* rp_sync: an item without ops, completed by the commit that carries it. */
static int rp__local_sync(struct rp *rp, rp_done_cb cb, void *arg)
{
	struct rp_local *l = (struct rp_local *)rp;
	struct rp__item *it = calloc(1, sizeof *it);

	if (!it)
		return -ENOMEM;
	it->cb = cb;
	it->arg = arg;
	it->size = sizeof *it;
	return rp__enqueue(l, it);
}

static struct st_env *rp__local_env(struct rp *rp)
{
	return ((struct rp_local *)rp)->env;
}

static int rp__local_status(struct rp *rp, char *buf, size_t cap)
{
	struct rp_local *l = (struct rp_local *)rp;
	return snprintf(buf, cap,
			"id=1\nrole=standalone\nleader=1\napplied=0x%016" PRIx64
			"\ncommits=%" PRIu64 "\ntxns=%" PRIu64 "\n",
			__atomic_load_n(&l->applied, __ATOMIC_ACQUIRE),
			__atomic_load_n(&l->n_batches, __ATOMIC_RELAXED),
			__atomic_load_n(&l->n_txns, __ATOMIC_RELAXED));
}

static void rp__local_close(struct rp *rp)
{
	struct rp_local *l = (struct rp_local *)rp;

	pthread_mutex_lock(&l->lock);
	l->stopping = 1;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
	pthread_join(l->thread, NULL);
	st_close(l->env);
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->lock);
	free(l->chg);
	free(l->arena);
	free(l);
}

static const struct rp_ops rp__local_ops = {
    .submit = rp__local_submit,
    .sync = rp__local_sync,
    .env = rp__local_env,
    .status = rp__local_status,
    .close = rp__local_close,
};

int rp_open_local(const struct rp_config *cfg, struct rp **out)
{
	struct rp_local *l;
	struct st_rtxn *r;
	int rc, have_lock = 0, have_cond = 0;

	if (!cfg || !cfg->data_dir || !out)
		return -EINVAL;
	l = calloc(1, sizeof *l);
	if (!l)
		return -ENOMEM;
	l->base.ops = &rp__local_ops;
	l->on_change = cfg->on_change;
	l->change_arg = cfg->change_arg;
	l->max_batch = cfg->max_batch ? cfg->max_batch : RP__DEFAULT_BATCH;
	l->tail = &l->head;
	rc = st_open(cfg->data_dir, cfg->st_flags, &l->env);
	if (rc)
		goto err;
	rc = st_rbegin(l->env, &r);
	if (rc)
		goto err;
	l->applied = zt_last_zxid(r);
	st_rend(r);
	rc = -pthread_mutex_init(&l->lock, NULL);
	if (rc)
		goto err;
	have_lock = 1;
	rc = -pthread_cond_init(&l->cond, NULL);
	if (rc)
		goto err;
	have_cond = 1;
	rc = -pthread_create(&l->thread, NULL, rp__thread, l);
	if (rc)
		goto err;
	*out = &l->base;
	return 0;
err:
	if (have_cond)
		pthread_cond_destroy(&l->cond);
	if (have_lock)
		pthread_mutex_destroy(&l->lock);
	if (l->env)
		st_close(l->env);
	free(l);
	return rc;
}
