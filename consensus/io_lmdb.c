/*
 * io_lmdb: the storage thread of the Multi-Paxos replica (see rp_paxos.h).
 *
 * Databases (besides zt's "tree" and "meta"):
 *   "px_meta": "promised" u64, "init" u8 (the acceptor's initialised marker), "commit" u64 (hint),
 *              "applied" u64 (last slot reflected in the tree), "compacted" u64 (log records up
 *              to it are deleted; the tree covers them), "filter" (px_filter_encode), "cluster"
 *              (16 bytes), "format" u32 (RPX__FORMAT: another one is refused at start),
 *              "incarnation" u64 (this node's last client incarnation, px_batch.h). Integers in
 *              native byte order, like the tree.
 *   "px_log":  be64(slot) -> ballot u64, flags u32, value.
 *
 * Every job that arrives while one commit is in flight goes into the next write transaction (group
 * commit). A chosen slot is applied to the tree in the same transaction that records the applied
 * slot and the filter, so a crash never separates them. Persist-before-reply: the loop thread lets
 * messages tagged with a persist seq leave only once this thread reported that seq durable.
 *
 * Durable means: in the acceptor log (io_wal.h, one flush) when the batch is only persists,
 * applies, acks and registers, with the LMDB commit lazy after it (and holding the batches that
 * follow within RPX__MERGE_US); otherwise a full LMDB commit, which also starts the log over.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "consensus/io_lmdb_rec.h"
#include "consensus/rp_paxos.h"
#include "store/zt_snap.h"

#define RPX__ITEMS_MIN 64
#define RPX__FORMAT    2u /* meta "format": log values and filter as px_batch.h describes */

void rpx__log(struct rpx *x, enum rp_log_level level, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (!x->cl.on_log)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	x->cl.on_log(x->cl.log_arg, level, buf);
}

struct rpx_job *rpx__job_new(enum rpx_job_type type, size_t len)
{
	struct rpx_job *j = calloc(1, sizeof *j + len);

	if (!j)
		return NULL;
	j->type = type;
	j->buf = (uint8_t *)(j + 1);
	j->len = len;
	return j;
}

void rpx__jobs_push(struct rpx *x, struct rpx_job *head)
{
	struct rpx_job *last = head;

	if (!head)
		return;
	for (struct rpx_job *j = head; j; j = j->next) {
		j->epoch = x->epoch;
		last = j;
	}
	pthread_mutex_lock(&x->job_lock);
	*x->job_tail = head;
	x->job_tail = &last->next;
	pthread_cond_signal(&x->job_cond);
	pthread_mutex_unlock(&x->job_lock);
}

void rpx__job_push(struct rpx *x, struct rpx_job *j)
{
	j->next = NULL;
	rpx__jobs_push(x, j);
}

/* ---- small LMDB helpers ---- */

static int rpx__get(MDB_txn *txn, MDB_dbi d, const char *key, void *out, size_t len)
{
	MDB_val k = {strlen(key), (void *)key}, v;
	int rc = mdb_get(txn, d, &k, &v);

	if (rc)
		return st__err(rc);
	return rpx__rec_fixed(v.mv_data, v.mv_size, out, len);
}

static int rpx__put(MDB_txn *txn, MDB_dbi d, const char *key, const void *val, size_t len)
{
	MDB_val k = {strlen(key), (void *)key}, v = {len, (void *)val};
	return st__err(mdb_put(txn, d, &k, &v, 0));
}

static void rpx__be64(unsigned char *b, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (56 - 8 * i));
}

static uint64_t rpx__get_be64(const unsigned char *b)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return v;
}

/* Put the log record of SLOT (layout in the header comment). */
static int rpx__put_log(struct rpx *x, MDB_txn *txn, uint64_t slot, uint64_t ballot, uint32_t flags,
			const void *data, uint32_t len)
{
	unsigned char kb[8];
	MDB_val k = {8, kb}, v = {12 + (size_t)len, NULL};
	int rc;

	rpx__be64(kb, slot);
	rc = st__err(mdb_put(txn, x->db_log, &k, &v, MDB_RESERVE));
	if (rc == 0) {
		memcpy(v.mv_data, &ballot, 8);
		memcpy((char *)v.mv_data + 8, &flags, 4);
		if (len)
			memcpy((char *)v.mv_data + 12, data, len);
	}
	return rc;
}

/* Delete the log records of slots <= UPTO. */
static int rpx__log_trim(struct rpx *x, MDB_txn *txn, uint64_t upto)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	int rc = st__err(mdb_cursor_open(txn, x->db_log, &cur));

	if (rc)
		return rc;
	rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (rc == 0) {
		if (k.mv_size != 8 || rpx__get_be64(k.mv_data) > upto)
			break;
		rc = mdb_cursor_del(cur, 0);
		if (rc)
			break;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	mdb_cursor_close(cur);
	return st__err(rc);
}

/* ---- the acceptor log (io_wal.h) ---- */

struct rpx__replay {
	struct rpx *x;
	MDB_txn *txn;
	uint64_t compacted;
};

/* Write one record's acceptor records (rpx__persist's, in its encoding) into the transaction. */
static int rpx__replay_cb(void *arg, uint64_t txnid, const uint8_t *p, size_t len)
{
	struct rpx__replay *r = arg;
	const uint8_t *end = p + len;
	int rc = 0;

	(void)txnid;
	while (rc == 0 && p < end) {
		switch (*p) {
		case 'P':
			if (end - p < 9)
				return -EIO;
			rc = rpx__put(r->txn, r->x->db_meta, "promised", p + 1, 8);
			p += 9;
			break;
		case 'I': {
			uint8_t one = 1;
			rc = rpx__put(r->txn, r->x->db_meta, "init", &one, 1);
			p += 1;
			break;
		}
		case 'E': {
			uint64_t slot, ballot;
			uint32_t flags, elen;
			if (end - p < 25)
				return -EIO;
			memcpy(&slot, p + 1, 8);
			memcpy(&ballot, p + 9, 8);
			memcpy(&flags, p + 17, 4);
			memcpy(&elen, p + 21, 4);
			if ((size_t)(end - p - 25) < elen)
				return -EIO;
			if (slot > r->compacted)
				rc = rpx__put_log(r->x, r->txn, slot, ballot, flags, p + 25, elen);
			p += 25 + (size_t)elen;
			break;
		}
		default:
			return -EIO; /* a record that passed its checksum but is not ours */
		}
	}
	return rc;
}

/*
 * Inside write transaction TXN (the first of a start or of a reload): write again the log's
 * records that LMDB lost (an OS crash undid their lazy commits, or their commit failed). The
 * caller commits in full, then resets the log. 0, -EIO, -ENOMEM, an LMDB error.
 */
static int rpx__wal_replay(struct rpx *x, MDB_txn *txn)
{
	struct rpx__replay r = {x, txn, 0};
	uint64_t before = __atomic_load_n(&x->wal.replayed, __ATOMIC_RELAXED);
	int rc = rpx__get(txn, x->db_meta, "compacted", &r.compacted, 8);

	if (rc && rc != -ENOENT)
		return rc;
	rc = rpx_wal_replay(&x->wal, (uint64_t)mdb_txn_id(txn) - 1, rpx__replay_cb, &r);
	if (rc == 0 && x->wal.replayed != before)
		rpx__log(x, RP_LOG_WARN,
			 "acceptor log: %" PRIu64 " record(s) the database had lost written again",
			 x->wal.replayed - before);
	return rc;
}

/* A reload of the state (rpx__reboot): replay the log in a full commit of its own. */
static int rpx__wal_recover(struct rpx *x)
{
	struct st_wtxn *w;
	int rc = st_wbegin(x->env, &w);

	if (rc)
		return rc;
	rc = rpx__wal_replay(x, w->txn);
	if (rc) {
		st_wabort(w);
		return rc;
	}
	rc = st_wcommit(w);
	if (rc == 0)
		rpx_wal_reset(&x->wal);
	return rc;
}

/* ---- boot ---- */

int rpx__read_state(struct rpx *x, struct st_rtxn *r, struct px_boot *boot, struct px_entry **ents,
		    uint8_t **arena, struct px_filter *filter, uint64_t *zxid)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	uint8_t init = 0;
	size_t total = 0, n = 0, off = 0;
	int rc;

	*ents = NULL;
	*arena = NULL;
	memset(boot, 0, sizeof *boot);
	rc = rpx__get(r->txn, x->db_meta, "init", &init, 1);
	if (rc == 0 || rc == -ENOENT)
		rc = rpx__get(r->txn, x->db_meta, "promised", &boot->promised, 8);
	if (rc == 0 || rc == -ENOENT)
		rc = rpx__get(r->txn, x->db_meta, "commit", &boot->commit, 8);
	if (rc == 0 || rc == -ENOENT)
		rc = rpx__get(r->txn, x->db_meta, "applied", &boot->applied, 8);
	if (rc == 0 || rc == -ENOENT)
		rc = rpx__get(r->txn, x->db_meta, "compacted", &boot->snapshot, 8);
	if (rc && rc != -ENOENT)
		goto err;
	boot->initialised = init != 0;
	{
		struct px_filter tmp = {0};
		k.mv_size = 6;
		k.mv_data = "filter";
		rc = mdb_get(r->txn, x->db_meta, &k, &v);
		if (rc == 0) {
			rc = px_filter_decode(filter ? filter : &tmp, v.mv_data, v.mv_size);
			if (rc)
				goto err;
			/* the last batch stamp applied: a floor for the stamps this node gives */
			boot->stamp = (filter ? filter : &tmp)->stamp;
			px_filter_free(&tmp);
		} else if (rc != MDB_NOTFOUND) {
			rc = st__err(rc);
			goto err;
		}
	}
	if (zxid)
		*zxid = zt_last_zxid(r);

	rc = st__err(mdb_cursor_open(r->txn, x->db_log, &cur));
	if (rc)
		goto err;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct px_entry e;
		rc = rpx__rec_log(k.mv_data, k.mv_size, v.mv_data, v.mv_size, &e);
		if (rc)
			goto err;
		total += e.len;
		n++;
	}
	if (rc != MDB_NOTFOUND) {
		rc = rc < 0 ? rc : st__err(rc);
		goto err;
	}
	rc = -ENOMEM;
	if (n && !(*ents = calloc(n, sizeof **ents)))
		goto err;
	if (total && !(*arena = malloc(total)))
		goto err;
	n = 0;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct px_entry *e = &(*ents)[n++];
		rc = rpx__rec_log(k.mv_data, k.mv_size, v.mv_data, v.mv_size, e);
		if (rc)
			goto err;
		if (e->len) {
			memcpy(*arena + off, e->data, e->len);
			e->data = *arena + off;
		}
		off += e->len;
	}
	rc = rc == MDB_NOTFOUND ? 0 : st__err(rc);
	if (rc)
		goto err;
	boot->entries = *ents;
	boot->nentries = (uint32_t)n;
	mdb_cursor_close(cur);
	return 0;
err:
	if (cur)
		mdb_cursor_close(cur);
	free(*ents);
	free(*arena);
	*ents = NULL;
	*arena = NULL;
	if (filter)
		px_filter_free(filter);
	return rc;
}

int rpx__load(struct rpx *x, struct px_boot *boot, struct px_entry **ents, uint8_t **arena)
{
	static const uint8_t zero[RP_CLUSTER_LEN];
	struct st_wtxn *w = NULL;
	struct st_rtxn *r = NULL;
	uint8_t init = 0;
	uint64_t promised = 0;
	int rc, fresh;

	rc = st_wbegin(x->env, &w);
	if (rc)
		return rc;
	rc = st__dbi_open(w, "px_meta", MDB_CREATE, &x->db_meta);
	if (rc == 0)
		rc = st__dbi_open(w, "px_log", MDB_CREATE, &x->db_log);
	if (rc == 0)
		rc = rpx__wal_replay(x, w->txn); /* before anything reads the acceptor state */
	if (rc)
		goto err;
	rc = rpx__get(w->txn, x->db_meta, "init", &init, 1);
	if (rc == -ENOENT)
		rc = rpx__get(w->txn, x->db_meta, "promised", &promised, 8);
	fresh = rc == -ENOENT;
	if (rc && !fresh)
		goto err;
	if (fresh) {
		struct st_rtxn tmp = {x->env, w->txn, NULL};
		if (zt_last_zxid(&tmp) != 0) {
			rpx__log(x, RP_LOG_ERROR,
				 "data directory holds a tree written outside a cluster: refused");
			rc = -EINVAL;
			goto err;
		}
		if (!x->cl.join) {
			init = 1;
			rc = rpx__put(w->txn, x->db_meta, "init", &init, 1);
			if (rc)
				goto err;
		}
	}
	/* the on-disk format of the log values and the filter (2: stamped batches, ordered filter) */
	{
		uint32_t format = 0;
		rc = rpx__get(w->txn, x->db_meta, "format", &format, 4);
		if (rc && rc != -ENOENT)
			goto err;
		if (fresh) {
			format = RPX__FORMAT;
			rc = rpx__put(w->txn, x->db_meta, "format", &format, 4);
			if (rc)
				goto err;
		} else if (format != RPX__FORMAT) {
			rpx__log(x, RP_LOG_ERROR,
				 "the data directory was written by another release (on-disk format "
				 "%u, this one reads %u): start this node on an empty directory "
				 "with --join",
				 format ? format : 1, RPX__FORMAT);
			rc = -EINVAL;
			goto err;
		}
	}
	/* the cluster id: stored, given, or (first start of the lowest id) chosen */
	rc = rpx__get(w->txn, x->db_meta, "cluster", x->cluster_id, RP_CLUSTER_LEN);
	if (rc == -ENOENT) {
		memcpy(x->cluster_id, x->cl.cluster_id, RP_CLUSTER_LEN);
		if (memcmp(x->cluster_id, zero, RP_CLUSTER_LEN) == 0 && fresh && !x->cl.join &&
		    x->self == 0)
			randombytes_buf(x->cluster_id, RP_CLUSTER_LEN);
		rc = 0;
		if (memcmp(x->cluster_id, zero, RP_CLUSTER_LEN) != 0)
			rc = rpx__put(w->txn, x->db_meta, "cluster", x->cluster_id, RP_CLUSTER_LEN);
	} else if (rc == 0 && memcmp(x->cl.cluster_id, zero, RP_CLUSTER_LEN) != 0 &&
		   memcmp(x->cl.cluster_id, x->cluster_id, RP_CLUSTER_LEN) != 0) {
		rpx__log(x, RP_LOG_ERROR, "the data directory belongs to another cluster");
		rc = -EINVAL;
	}
	if (rc)
		goto err;
	/* this boot's incarnation (px_batch.h): the wall clock in ms, above the one stored at the
	 * previous start (a re-created core takes the next one, and each takes >= RPX__REBOOT_MS) */
	{
		struct timespec ts;
		uint64_t stored = 0, now;
		clock_gettime(CLOCK_REALTIME, &ts);
		now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
		rc = rpx__get(w->txn, x->db_meta, "incarnation", &stored, 8);
		if (rc && rc != -ENOENT)
			goto err;
		x->inc = (now > stored ? now : stored + 1) & PX_INC_MASK;
		rc = rpx__put(w->txn, x->db_meta, "incarnation", &x->inc, 8);
		if (rc)
			goto err;
	}
	rc = st_wcommit(w);
	w = NULL;
	if (rc)
		goto err;
	rpx_wal_reset(&x->wal);

	rc = st_rbegin(x->env, &r);
	if (rc)
		goto err;
	rc = rpx__read_state(x, r, boot, ents, arena, &x->filter, &x->st_zxid);
	st_rend(r);
	if (rc)
		goto err;
	x->st_applied = boot->applied;
	x->st_compacted = boot->snapshot;
	x->st_taken = x->st_compacted;
	__atomic_store_n(&x->applied_slot, x->st_applied, __ATOMIC_RELEASE);
	__atomic_store_n(&x->applied_zxid, x->st_zxid, __ATOMIC_RELEASE);
	return 0;
err:
	if (w)
		st_wabort(w);
	return rc;
}

/* ---- registered submissions ---- */

static int rpx__items_grow(struct rpx *x)
{
	uint32_t cap = x->items_cap ? x->items_cap * 2 : RPX__ITEMS_MIN;
	struct rpx_item **t = calloc(cap, sizeof *t);

	if (!t)
		return -ENOMEM;
	for (uint32_t i = 0; i < x->items_cap; i++) {
		struct rpx_item *it = x->items[i], *next;
		for (; it; it = next) {
			next = it->next;
			it->next = t[it->seq & (cap - 1)];
			t[it->seq & (cap - 1)] = it;
		}
	}
	free(x->items);
	x->items = t;
	x->items_cap = cap;
	return 0;
}

/* Remove and return the registered item of (CLIENT, SEQ), or NULL. */
static struct rpx_item *rpx__item_take(struct rpx *x, uint64_t client, uint64_t seq)
{
	struct rpx_item **pp;

	if (!x->items_cap)
		return NULL;
	for (pp = &x->items[seq & (x->items_cap - 1)]; *pp; pp = &(*pp)->next) {
		struct rpx_item *it = *pp;
		if (it->seq == seq && it->client == client) {
			*pp = it->next;
			x->nitems--;
			return it;
		}
	}
	return NULL;
}

/* Queue IT's completion for after the commit. */
static void rpx__complete(struct rpx *x, struct rpx_item *it, int status, uint64_t zxid)
{
	it->status = status;
	it->zxid = zxid;
	it->cnext = NULL;
	*x->cdone_tail = it;
	x->cdone_tail = &it->cnext;
}

static void rpx__finish_item(struct rpx_item *it, int applied)
{
	if (it->cb) {
		if (it->status == 0)
			it->cb(it->arg, 0, it->zxid, it->nops ? it->res : NULL, it->nops);
		else
			it->cb(it->arg, it->status, 0, NULL, 0);
	}
	if (applied && it->nops)
		zt_results_free(it->res, it->nops);
	free(it);
}

/* Fail every registered item with STATUS now (no commit pending). */
static void rpx__fail_all(struct rpx *x, int status)
{
	for (uint32_t i = 0; i < x->items_cap; i++) {
		struct rpx_item *it = x->items[i], *next;
		x->items[i] = NULL;
		for (; it; it = next) {
			next = it->next;
			it->status = status;
			rpx__finish_item(it, 0);
		}
	}
	x->nitems = 0;
}

/* ---- applying ---- */

/* zt_change_cb: keep the change until the commit is durable. Record: u8 type, u64 zxid, path NUL.
 */
static void rpx__collect(void *arg, const struct zt_change *ch)
{
	struct rpx *x = arg;
	size_t pl = strlen(ch->path) + 1;
	char *p;

	if (x->chg_err)
		return;
	if (st__buf_reserve(&x->chg, 9 + pl)) {
		x->chg_err = -ENOMEM;
		return;
	}
	p = x->chg.p + x->chg.len;
	p[0] = (char)ch->type;
	memcpy(p + 1, &ch->zxid, 8);
	memcpy(p + 9, ch->path, pl);
	x->chg.len += 9 + pl;
	x->nchg++;
}

static int rpx__scratch_res(struct rpx *x, uint32_t n)
{
	if (n <= x->scratch_cap)
		return 0;
	struct zt_result *r = realloc(x->scratch_res, n * sizeof *r);
	if (!r)
		return -ENOMEM;
	x->scratch_res = r;
	x->scratch_cap = n;
	return 0;
}

/* Apply one submission of a chosen slot that the filter admitted; STAMP is the batch's time. */
static int rpx__apply_sub(struct rpx *x, struct st_wtxn *w, const struct px_sub *sub,
			  uint64_t stamp)
{
	struct rpx_item *it = rpx__item_take(x, sub->client, sub->seq);
	struct zt_op *ops = NULL;
	struct zt_result *res;
	uint32_t nops = 0;
	int64_t t = (int64_t)stamp; /* the leader's, not the submitter's clock (px_batch.h) */
	int rc;

	if (sub->len < RPX_V_HDR || (sub->data[0] != RPX_V_TXN && sub->data[0] != RPX_V_SYNC))
		goto malformed;
	if (sub->data[0] == RPX_V_SYNC) {
		if (it)
			rpx__complete(x, it, 0, x->st_zxid);
		return 0;
	}
	rc = zt_ops_decode(sub->data + RPX_V_HDR, sub->len - RPX_V_HDR, &ops, &nops);
	if (rc == -EINVAL)
		goto malformed;
	if (rc)
		goto err;
	if (it && it->nops == nops) {
		res = it->res;
	} else {
		rc = rpx__scratch_res(x, nops);
		if (rc)
			goto err;
		res = x->scratch_res;
	}
	struct zt_txn txn = {.zxid = x->st_zxid + 1, .time_ms = t, .nops = nops, .ops = ops};
	rc = zt_apply(w, &txn, res, rpx__collect, x);
	if (rc)
		goto err;
	x->st_zxid++;
	if (res == x->scratch_res) {
		zt_results_free(res, nops);
		if (it)
			rpx__complete(x, it, -EIO, 0);
	} else {
		rpx__complete(x, it, 0, x->st_zxid);
	}
	free(ops);
	return 0;
malformed:
	/* the same bytes are skipped on every replica */
	rpx__log(x, RP_LOG_WARN, "skipped a malformed submission");
	if (it)
		rpx__complete(x, it, -EINVAL, 0);
	free(ops);
	return 0;
err:
	if (it) {
		/* back in the table: the batch fails as a whole */
		it->next = x->items[it->seq & (x->items_cap - 1)];
		x->items[it->seq & (x->items_cap - 1)] = it;
		x->nitems++;
	}
	free(ops);
	return rc;
}

static int rpx__apply_slot(struct rpx *x, struct st_wtxn *w, uint64_t slot, const uint8_t *val,
			   uint32_t len)
{
	struct px_batch_iter bi;
	struct px_sub sub;
	int rc;

	if (slot <= x->st_applied)
		return 0; /* a snapshot installed it already */
	if (slot != x->st_applied + 1) {
		rpx__log(x, RP_LOG_ERROR, "slot %" PRIu64 " delivered after %" PRIu64, slot,
			 x->st_applied);
		return -EIO;
	}
	if (px_batch_iter_init(&bi, val, len) == 0) {
		px_filter_stamp(&x->filter, bi.time_ms);
		while ((rc = px_batch_next(&bi, &sub)) == 1) {
			int admit = px_filter_admit(&x->filter, sub.client, sub.seq);
			if (admit < 0)
				return admit;
			/* not admitted: a duplicate, a retired client, or behind a gap (its node
			 * sends it again); an empty one is a no-op that only takes its seq */
			if (admit && sub.len) {
				rc = rpx__apply_sub(x, w, &sub, x->filter.stamp);
				if (rc)
					return rc;
			} else if (!admit && px_filter_seen(&x->filter, sub.client, sub.seq) < 0 &&
				   PX_CLIENT_NODE(sub.client) == x->cl.self_id && !x->retired_logged &&
				   PX_CLIENT_INC(sub.client) ==
				       __atomic_load_n(&x->inc, __ATOMIC_RELAXED)) {
				/* ours, yet older than an incarnation of this node id in the log */
				x->retired_logged = 1;
				rpx__log(x, RP_LOG_ERROR,
					 "this node's writes are refused: another node with id %u, or an "
					 "earlier run with a clock ahead of this one, used a later client "
					 "incarnation (%" PRIu64 " <= %" PRIu64 ")",
					 x->cl.self_id, (uint64_t)PX_CLIENT_INC(sub.client),
					 (uint64_t)(x->filter.inc[PX_CLIENT_NODE(sub.client)] - 1));
			}
		}
	}
	x->st_applied = slot;
	x->st_bytes += len;
	return 0;
}

/* ---- one group commit ---- */

static int rpx__persist(struct rpx *x, struct st_wtxn *w, const struct rpx_job *j)
{
	int rc = 0;

	if (j->flags & RPX_P_PROMISE) {
		rc = rpx__put(w->txn, x->db_meta, "promised", &j->promised, 8);
		if (rc == 0 && x->wal_build)
			rc = rpx_wal_add(&x->wal, "P", 1, &j->promised, 8);
	}
	if (rc == 0 && (j->flags & RPX_P_INIT)) {
		uint8_t one = 1;
		rc = rpx__put(w->txn, x->db_meta, "init", &one, 1);
		if (rc == 0 && x->wal_build)
			rc = rpx_wal_add(&x->wal, "I", 1, NULL, 0);
	}
	if (rc == 0 && (j->flags & RPX_P_COMMIT))
		rc = rpx__put(w->txn, x->db_meta, "commit", &j->commit, 8);
	for (uint32_t i = 0; rc == 0 && i < j->n; i++) {
		const struct px_entry *e = &j->ents[i];
		if (e->slot <= x->st_compacted)
			continue;
		if (x->wal_build) {
			uint8_t h[1 + 8 + 8 + 4 + 4];
			h[0] = 'E';
			memcpy(h + 1, &e->slot, 8);
			memcpy(h + 9, &e->ballot, 8);
			memcpy(h + 17, &e->flags, 4);
			memcpy(h + 21, &e->len, 4);
			rc = rpx_wal_add(&x->wal, h, sizeof h, e->data, e->len);
			if (rc)
				break;
		}
		rc = st__fault_put(x->env);
		if (rc == 0)
			rc = rpx__put_log(x, w->txn, e->slot, e->ballot, e->flags, e->data, e->len);
	}
	return rc;
}

static int rpx__snap_end(struct rpx *x, struct st_wtxn *w, struct rpx_job *j, int *installed)
{
	struct zt_snap_state st = {j->zxid, j->next_id};
	struct px_filter f = {0};
	int rc;

	if (j->a <= x->st_applied)
		return 0; /* we are past it already */
	if (j->b != x->st_snap_nrec) {
		/* a chunk staged in a commit that failed since, or a sender's bug: not installed;
		 * the core asks again while this node stays behind */
		rpx__log(x, RP_LOG_WARN,
			 "snapshot at slot %" PRIu64 " not installed: %" PRIu64
			 " records staged, the sender sent %" PRIu64,
			 j->a, x->st_snap_nrec, j->b);
		return 0;
	}
	rc = px_filter_decode(&f, j->buf, j->len);
	if (rc)
		return rc;
	rc = zt_snap_install(w, &st);
	if (rc == 0)
		rc = rpx__log_trim(x, w->txn, j->a);
	if (rc == 0)
		rc = rpx__put(w->txn, x->db_meta, "compacted", &j->a, 8);
	if (rc) {
		px_filter_free(&f);
		return rc;
	}
	px_filter_free(&x->filter);
	x->filter = f;
	x->st_applied = j->a;
	x->st_zxid = j->zxid;
	x->st_compacted = j->a;
	x->st_taken = j->a;
	x->st_bytes = 0;
	*installed = 1;
	/* the whole tree may have changed: fs/ drops what it caches */
	struct zt_change c1 = {ZT_NODE_DATA_CHANGED, "/", j->zxid};
	struct zt_change c2 = {ZT_NODE_CHILDREN_CHANGED, "/", j->zxid};
	rpx__collect(x, &c1);
	rpx__collect(x, &c2);
	return 0;
}

static int rpx__run_jobs(struct rpx *x, struct st_wtxn *w, struct rpx_job *jobs,
			 uint64_t *persisted, int *installed, int *reboot)
{
	int rc = 0;

	for (struct rpx_job *j = jobs; j && rc == 0 && !*reboot; j = j->next) {
		switch (j->type) {
		case RPX_J_REBOOT:
			*reboot = 1; /* what follows belongs to the core that failed */
			break;
		case RPX_J_PERSIST:
			rc = rpx__persist(x, w, j);
			if (rc == 0 && j->a > *persisted)
				*persisted = j->a;
			break;
		case RPX_J_APPLY:
			rc = rpx__apply_slot(x, w, j->a, j->buf, (uint32_t)j->len);
			break;
		case RPX_J_ACK: {
			struct rpx_item *it = rpx__item_take(x, j->client, j->a);
			if (!it)
				break;
			if (j->status >= 0)
				/* not applied by us: within a snapshot, or skipped as too old */
				rpx__complete(x, it, it->nops ? -ETIMEDOUT : 0, x->st_zxid);
			else
				rpx__complete(x, it, j->status, 0);
			break;
		}
		case RPX_J_REGISTER: {
			struct rpx_item *it = j->item;
			if (x->nitems + 1 > x->items_cap / 2 * 3 || !x->items_cap)
				rc = rpx__items_grow(x);
			if (rc) {
				rpx__complete(x, it, rc, 0);
				j->item = NULL;
				rc = 0;
				break;
			}
			it->next = x->items[it->seq & (x->items_cap - 1)];
			x->items[it->seq & (x->items_cap - 1)] = it;
			x->nitems++;
			j->item = NULL;
			break;
		}
		case RPX_J_SNAP_BEGIN:
			rc = zt_snap_stage_clear(w);
			x->st_snap_nrec = 0;
			break;
		case RPX_J_SNAP_DATA: {
			long n = zt_snap_stage_put(w, j->buf, j->len);
			rc = n < 0 ? (int)n : 0;
			if (n > 0)
				x->st_snap_nrec += (uint64_t)n;
			break;
		}
		case RPX_J_SNAP_END:
			rc = rpx__snap_end(x, w, j, installed);
			break;
		case RPX_J_COMPACT:
			if (j->a > x->st_applied)
				j->a = x->st_applied;
			if (j->a > x->st_compacted) {
				rc = rpx__log_trim(x, w->txn, j->a);
				if (rc == 0)
					rc = rpx__put(w->txn, x->db_meta, "compacted", &j->a, 8);
				if (rc == 0)
					x->st_compacted = j->a;
			}
			break;
		case RPX_J_FAIL_ALL:
			for (uint32_t i = 0; i < x->items_cap; i++) {
				struct rpx_item *it = x->items[i], *next;
				x->items[i] = NULL;
				for (; it; it = next) {
					next = it->next;
					rpx__complete(x, it, j->status, 0);
				}
			}
			x->nitems = 0;
			break;
		case RPX_J_CLUSTER:
			rc = rpx__put(w->txn, x->db_meta, "cluster", j->buf, RP_CLUSTER_LEN);
			break;
		}
	}
	return rc;
}

/* Fail the submissions of JOBS' REGISTER jobs that were not run with STATUS, and free JOBS. */
static void rpx__jobs_free(struct rpx_job *jobs, int status)
{
	while (jobs) {
		struct rpx_job *next = jobs->next;
		if (jobs->type == RPX_J_REGISTER && jobs->item) {
			jobs->item->status = status;
			rpx__finish_item(jobs->item, 0);
		}
		free(jobs);
		jobs = next;
	}
}

/*
 * The protocol core is to be created again from the durable state (after a failed commit, or at
 * its own request after an allocation failure: px_node.h). Every submission it knew completes
 * with STATUS (outcome unknown to the submitter), our state is reloaded from LMDB, and the loop
 * thread is told to recreate the core for the next epoch. Jobs of older epochs are dropped.
 */
static void rpx__reboot(struct rpx *x, int status)
{
	struct px_boot boot;
	struct px_entry *ents;
	struct px_filter f = {0};
	struct st_rtxn *r = NULL;
	uint8_t *arena;
	uint64_t zxid = 0;
	int rc;

	rpx__fail_all(x, status);
	x->st_epoch++;
	/* The acceptor log's records that LMDB lacks go in first: the new core must not forget a
	 * vote this node gave. Without room to write them (a full disk) this waits and retries for
	 * as long as it takes (the node takes part in nothing meanwhile); only a stop ends it. (With
	 * nothing to write again, the commit writes nothing and cannot fail so.) */
	for (unsigned tries = 0;; tries++) {
		struct timespec pause = {0, 200 * 1000 * 1000};
		int stop;
		rc = rpx__wal_recover(x);
		if (rc == 0)
			break;
		if (tries % 50 == 0)
			rpx__log(x, RP_LOG_ERROR,
				 "cannot write the acceptor log's records into the database (%s): "
				 "retrying",
				 strerror(-rc));
		pthread_mutex_lock(&x->job_lock);
		stop = x->job_stop;
		pthread_mutex_unlock(&x->job_lock);
		if (stop)
			break;
		nanosleep(&pause, NULL);
	}
	for (int tries = 0; rc == 0 && tries < 50; tries++) { /* e.g. -ENOMEM may pass */
		struct timespec pause = {0, 20 * 1000 * 1000};
		int rrc = st_rbegin(x->env, &r);
		if (rrc == 0) {
			rrc = rpx__read_state(x, r, &boot, &ents, &arena, &f, &zxid);
			st_rend(r);
		}
		if (rrc == 0)
			break;
		if (tries == 49)
			rc = rrc; /* given up */
		else
			nanosleep(&pause, NULL);
	}
	if (rc) {
		rpx__log(x, RP_LOG_ERROR, "cannot reload the replica state (%s): this node stops",
			 strerror(-rc));
		x->st_failed = 1;
		pthread_mutex_lock(&x->back_lock);
		x->back.failed = 1;
		pthread_mutex_unlock(&x->back_lock);
		return;
	}
	free(ents);
	free(arena);
	px_filter_free(&x->filter);
	x->filter = f;
	x->st_applied = boot.applied;
	x->st_compacted = boot.snapshot;
	x->st_taken = boot.snapshot;
	x->st_zxid = zxid;
	pthread_mutex_lock(&x->back_lock);
	x->back.reboot_epoch = x->st_epoch;
	pthread_mutex_unlock(&x->back_lock);
	rpx__wake(x);
}

/*
 * Whether JOBS may share a lazy commit (st_wcommit_lazy: one disk flush, and an operating-system
 * crash may undo it until the next full commit): only when they hold nothing that a promise or a
 * vote rests on. Applying chosen slots (the tree, the applied slot, the filter), acks, registers
 * and the commit-index hint are all rebuilt from the durable log after such a crash (writes were
 * acknowledged because a majority persisted them in full commits), so they need not wait for a
 * second flush. Acceptor records (promises, accepted values, the initialised marker) are made
 * durable by the acceptor log first (rpx__wal_ok); snapshots, compaction and everything else take
 * a full commit.
 */
static int rpx__lazy_ok(const struct rpx_job *jobs)
{
	for (const struct rpx_job *j = jobs; j; j = j->next) {
		switch (j->type) {
		case RPX_J_APPLY:
		case RPX_J_ACK:
		case RPX_J_REGISTER:
			break;
		case RPX_J_PERSIST:
			if (j->n != 0 || (j->flags & ~(unsigned)RPX_P_COMMIT))
				return 0;
			break;
		default:
			return 0;
		}
	}
	return 1;
}

/*
 * Whether JOBS, which hold acceptor records, may make them durable through the acceptor log
 * (io_wal.h: one flush) and then share a lazy commit: when they are only persists, applies, acks
 * and registers. Snapshots, compaction and the rest take a full commit (which resets the log).
 */
static int rpx__wal_kind(enum rpx_job_type t)
{
	return t == RPX_J_APPLY || t == RPX_J_ACK || t == RPX_J_REGISTER || t == RPX_J_PERSIST;
}

static int rpx__wal_ok(const struct rpx *x, const struct rpx_job *jobs)
{
	if (x->wal.fd < 0)
		return 0;
	for (const struct rpx_job *j = jobs; j; j = j->next)
		if (!rpx__wal_kind(j->type))
			return 0;
	return 1;
}

/* Tell the loop that persist seq PERSISTED is durable (the frames held for it may leave). */
static void rpx__publish_persisted(struct rpx *x, uint64_t persisted)
{
	int wake = 0;

	pthread_mutex_lock(&x->back_lock);
	if (persisted > x->back.persisted) {
		x->back.persisted = persisted;
		wake = 1;
	}
	pthread_mutex_unlock(&x->back_lock);
	if (wake)
		rpx__wake(x);
}

/* Run the completions collected (rpx__complete). */
static void rpx__finish_done(struct rpx *x)
{
	for (struct rpx_item *it = x->cdone, *next; it; it = next) {
		next = it->cnext;
		rpx__finish_item(it, it->status == 0);
	}
	x->cdone = NULL;
	x->cdone_tail = &x->cdone;
}

/* Report the batch's changes (on_change), then run its completions. The changes first: whoever
 * a callback answers finds their effects (kernel-cache invalidations, watches) already under way.
 * shown_zxid moves before either, so that rp_read_wait holds back the reads that follow them. */
static void rpx__announce(struct rpx *x)
{
	if (x->st_zxid > __atomic_load_n(&x->shown_zxid, __ATOMIC_RELAXED))
		__atomic_store_n(&x->shown_zxid, x->st_zxid, __ATOMIC_RELEASE);
	if (x->on_change) {
		const char *p = x->chg.p, *end = x->chg.p + x->chg.len;
		while (p < end) {
			struct zt_change ch;
			ch.type = (enum zt_change_type)(unsigned char)p[0];
			memcpy(&ch.zxid, p + 1, 8);
			ch.path = p + 9;
			x->on_change(x->change_arg, &ch);
			p += 9 + strlen(p + 9) + 1;
		}
	}
	x->chg.len = 0;
	x->nchg = 0;
	rpx__finish_done(x);
}

/*
 * After a batch whose acceptor records went to the log and that applied nothing (an accept, a
 * promise), the write transaction stays open up to RPX__MERGE_US for the jobs that follow (most
 * often the apply of the slot just accepted, once it is chosen): they run in the same
 * transaction, so a write costs each node one log flush and one lazy LMDB commit, and the apply
 * does not wait behind the accept's LMDB flush. Only jobs a lazy or log-backed commit may carry
 * are taken, all of the queue or none; nothing announced waits for the commit meanwhile (it
 * applied nothing). NULL when the wait ended without such jobs.
 */
#define RPX__MERGE_US	 1000
#define RPX__MERGE_BATCH 16 /* batches in one transaction at most */

static struct rpx_job *rpx__more_jobs(struct rpx *x, const struct timespec *until)
{
	struct rpx_job *got = NULL;

	pthread_mutex_lock(&x->job_lock);
	while (!x->job_head && !x->job_stop)
		if (pthread_cond_timedwait(&x->job_cond, &x->job_lock, until) == ETIMEDOUT)
			break;
	if (x->job_head && !x->job_stop) {
		int ok = 1;
		for (const struct rpx_job *j = x->job_head; j && ok; j = j->next)
			ok = j->epoch == x->st_epoch && rpx__wal_kind(j->type);
		if (ok) {
			got = x->job_head;
			x->job_head = NULL;
			x->job_tail = &x->job_head;
		}
	}
	pthread_mutex_unlock(&x->job_lock);
	return got;
}

static void rpx__batch(struct rpx *x, struct rpx_job *jobs)
{
	struct st_wtxn *w = NULL;
	struct rpx_job **pp = &jobs, *stale = NULL, *all, **all_tail;
	uint64_t persisted = 0, applied0 = x->st_applied, taken = 0;
	int installed = 0, reboot = 0, lazy, walp, full = 0, early, merged = 0, logged = 0, rc;
	uint8_t *fbuf = NULL;
	size_t flen = 0;
	struct timespec until;

	/* jobs of a core that was replaced: dropped (their submissions fail) */
	while (*pp) {
		struct rpx_job *j = *pp;
		if (j->epoch != x->st_epoch || x->st_failed) {
			*pp = j->next;
			j->next = stale;
			stale = j;
		} else {
			pp = &j->next;
		}
	}
	rpx__jobs_free(stale, x->st_failed ? -EIO : -ETIMEDOUT);
	if (!jobs)
		return;
	all = jobs;
	all_tail = pp;
	x->chg.len = 0;
	x->nchg = 0;
	x->chg_err = 0;
	x->cdone = NULL;
	x->cdone_tail = &x->cdone;
	rc = st_wbegin(x->env, &w);
	if (rc)
		goto fail;
	for (;;) {
		lazy = rpx__lazy_ok(jobs);
		walp = !lazy && rpx__wal_ok(x, jobs);
		if (walp)
			rpx_wal_begin(&x->wal, (uint64_t)mdb_txn_id(w->txn));
		x->wal_build = walp;
		rc = rpx__run_jobs(x, w, jobs, &persisted, &installed, &reboot);
		x->wal_build = 0;
		if (rc == 0)
			rc = x->chg_err;
		if (rc) {
			st_wabort(w);
			goto fail;
		}
		/*
		 * The acceptor records go to the log and are durable after its one flush: the frames
		 * that wait for them leave now, and the LMDB commit (the same records, the applies)
		 * can be lazy. If the log cannot take them (full, or an I/O error), the commit is a
		 * full one.
		 */
		if (walp && !rpx_wal_pending(&x->wal))
			walp = 0; /* nothing a promise or a vote rests on (compacted slots) */
		else if (walp) {
			int wrc = rpx_wal_commit(&x->wal);
			if (wrc == 0) {
				logged = 1;
				if (persisted)
					rpx__publish_persisted(x, persisted);
			} else {
				if (wrc != -ENOSPC && !x->wal_warned) {
					x->wal_warned = 1;
					rpx__log(x, RP_LOG_WARN,
						 "acceptor log: append failed (%s): full commits "
						 "instead",
						 strerror(-wrc));
				}
				walp = 0;
				full = 1;
			}
		} else if (!lazy) {
			full = 1;
		}
		/*
		 * Early: the slots applied here are chosen (durable on a majority), so their outcome
		 * is final before this commit and its flush: the changes and the callbacks go out
		 * now, and rp_read_wait holds back the reads that must see them until the commit is
		 * visible. A crash before the commit re-applies the slots from the log (with the same
		 * results). The flush of the apply is off the writer's path. Not after a snapshot
		 * install (fs/ re-reads the whole tree on the apply thread then) nor when the core is
		 * to be recreated.
		 */
		early = !installed && !reboot;
		if (early)
			rpx__announce(x);
		if (full || !early || x->st_applied != applied0 || ++merged >= RPX__MERGE_BATCH)
			break;
		if (merged == 1) {
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += RPX__MERGE_US * 1000L;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
		}
		jobs = rpx__more_jobs(x, &until);
		if (!jobs)
			break;
		*all_tail = jobs;
		while (*all_tail)
			all_tail = &(*all_tail)->next;
	}
	jobs = all;
	if (x->st_applied != applied0) {
		rc = rpx__put(w->txn, x->db_meta, "applied", &x->st_applied, 8);
		flen = px_filter_size(&x->filter);
		fbuf = malloc(flen ? flen : 1);
		if (rc == 0 && !fbuf)
			rc = -ENOMEM;
		if (rc == 0)
			rc = px_filter_encode(&x->filter, fbuf, flen);
		if (rc == 0)
			rc = rpx__put(w->txn, x->db_meta, "filter", fbuf, flen);
		if (rc) {
			st_wabort(w);
			goto fail;
		}
	}
	(void)logged; /* read by the test hook only */
#ifdef QFS_TEST_HOOKS
	if (logged && !full && st__fault_lost(x->env)) {
		rpx__log(x, RP_LOG_ERROR, "test hook: this commit is lost as in a crash of the "
					  "machine: the process exits");
		st_wabort(w);
		_exit(86);
	}
#endif
	rc = full ? st_wcommit(w) : st_wcommit_lazy(w);
	if (rc)
		goto fail;
	if (full)
		rpx_wal_reset(&x->wal); /* every record it holds is in LMDB, durably */
	if (!early)
		rpx__announce(x);

	/* the install is counted before the applied state it brought is published: whoever sees
	 * the new applied zxid also sees the count (cluster_paxos compaction_forces_a_snapshot_install
	 * once read the count between the two on a loaded machine) */
	if (installed)
		__atomic_add_fetch(&x->snaps_installed, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&x->applied_slot, x->st_applied, __ATOMIC_RELEASE);
	__atomic_store_n(&x->applied_zxid, x->st_zxid, __ATOMIC_RELEASE);
	pthread_mutex_lock(&x->vis_lock);
	pthread_cond_broadcast(&x->vis_cond);
	pthread_mutex_unlock(&x->vis_lock);
	if (x->st_applied >= x->st_taken + x->cl.snapshot_every ||
	    (x->st_bytes >= RPX_SNAP_BYTES && x->st_applied > x->st_taken)) {
		taken = x->st_applied;
		x->st_taken = taken;
		x->st_bytes = 0;
	}
	pthread_mutex_lock(&x->back_lock);
	if (persisted > x->back.persisted)
		x->back.persisted = persisted;
	if (installed) {
		free(x->back.installed_filter);
		x->back.installed = x->st_applied;
		x->back.installed_filter = fbuf;
		x->back.installed_flen = flen;
		fbuf = NULL;
	}
	if (taken)
		x->back.taken = taken;
	pthread_mutex_unlock(&x->back_lock);
	if (persisted || installed || taken)
		rpx__wake(x);
	free(fbuf);

	rpx__finish_done(x);
	if (reboot) {
		rpx__jobs_free(jobs, -ETIMEDOUT); /* unrun REGISTERs after the REBOOT */
		rpx__reboot(x, -ETIMEDOUT);
		return;
	}
	rpx__jobs_free(jobs, -ETIMEDOUT);
	return;
fail:
	free(fbuf);
	rpx__log(x, RP_LOG_ERROR, "storage failed (%s): this node restarts its replica from disk",
		 strerror(-rc));
	/* completions collected for the failed commit: their results are not kept */
	for (struct rpx_item *it = x->cdone, *next; it; it = next) {
		next = it->cnext;
		if (it->status == 0 && it->nops)
			zt_results_free(it->res, it->nops);
		it->status = -EIO;
		rpx__finish_item(it, 0);
	}
	rpx__jobs_free(all, -EIO);
	rpx__reboot(x, -EIO);
}

void *rpx__storage_main(void *arg)
{
	struct rpx *x = arg;

	pthread_mutex_lock(&x->job_lock);
	for (;;) {
		struct rpx_job *jobs;
		while (!x->job_head && !x->job_stop)
			pthread_cond_wait(&x->job_cond, &x->job_lock);
		if (!x->job_head)
			break;
		jobs = x->job_head;
		x->job_head = NULL;
		x->job_tail = &x->job_head;
		pthread_mutex_unlock(&x->job_lock);
		rpx__batch(x, jobs);
		pthread_mutex_lock(&x->job_lock);
	}
	pthread_mutex_unlock(&x->job_lock);
	rpx__fail_all(x, -ESHUTDOWN);
	return NULL;
}
