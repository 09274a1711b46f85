/*
 * px_node: the Multi-Paxos replica as a pure step function (see px_node.h for the protocol and
 * contract).
 *
 * Layout of this file: the log (a ring of slots), the update being built, pending submissions and
 * the leader's batch queue, then the protocol handlers in the order of the paper (phase 1, phase 2,
 * learning), timers, and px_step itself.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "consensus/px_alloc.h"
#include "consensus/px_node.h"
#include "consensus/px_batch.h"

#ifdef QFS_TEST_HOOKS
unsigned px_debug_bugs;
unsigned long px_debug_alloc_countdown;
unsigned long px_debug_alloc_failures;
#define BUG(b) (px_debug_bugs & (b))
#else
#define BUG(b) 0
#endif

#define NONE	 UINT32_MAX
#define MAX_SPAN (1u << 20) /* slots held in memory above the log base at most */
#define LEARN_SCAN 1024u /* slots above the commit index a follower re-checks when it persists */

enum { S_HAVE = 1, S_CHOSEN = 2, S_PROPOSED = 4, S_ANNOUNCE = 8 /* on_persisted only */ };

struct slot {
	uint64_t ballot; /* accepted ballot; 0 = nothing accepted */
	uint64_t pseq;	 /* persist seq of our record of it */
	uint8_t *val;	 /* accepted (or chosen) value, owned */
	uint32_t len;
	uint64_t lballot; /* learner tally: the ballot of lacks (0: none) */
	uint16_t acks;	  /* leader: nodes that accepted our proposal at node->ballot */
	uint16_t lacks;	  /* learner tally: peers known to have accepted durably at lballot */
	uint16_t origins; /* leader: peers whose forwarded submissions may be in it */
	uint8_t flags;
};

/* A phase-1 report merged over the promisers: the highest-ballot value per slot. */
struct rec {
	uint64_t ballot;
	uint8_t *val;
	uint32_t len;
	uint8_t have;
};

#define PEND_INLINE 32

struct pend {
	uint64_t client, seq;
	uint64_t deadline;
	uint8_t *data; /* NULL when the bytes fit in inl */
	uint8_t inl[PEND_INLINE];
	uint32_t len;
	uint32_t prev, next; /* insertion-order list */
	uint8_t queued;	     /* in the leader's batch queue (or forwarded) since the last reset */
	uint8_t noop;	     /* its writer was answered (timed out, refused): now a no-op, len 0 */
};

struct vec {
	void *v;
	uint32_t n, cap;
};

/* A set of (client, seq): the leader's submissions queued or in flight, so that re-forwarded
 * copies are not queued again. */
struct kset {
	uint64_t *c, *q;
	uint8_t *used;
	uint32_t cap, n;
};

struct px_node {
	struct px_config cfg;
	uint32_t quorum;
	enum px_role role;
	bool initialised;
	uint64_t now, rnd;

	/* acceptor */
	uint64_t promised;
	uint64_t promise_pseq;

	/* proposer */
	uint64_t ballot;   /* our own ballot while candidate or leader */
	uint64_t max_seen; /* highest ballot seen */
	uint32_t leader;
	uint64_t leader_ballot;
	uint64_t leader_lstart;
	uint64_t heard_leader; /* last time a leader's ACCEPT arrived */

	/* log: slots [base, base + cap) live in ring[slot & (cap - 1)] */
	struct slot *ring;
	uint64_t cap, base, last;
	uint64_t commit, applied, snapshot;

	/* persistence */
	uint64_t pseq, persisted;

	/* timers */
	uint64_t election_at, heartbeat_at, retry_at, catchup_at;
	uint64_t peer_heard[PX_MAX_NODES];
	uint64_t peer_commit[PX_MAX_NODES];
	uint64_t snap_sent[PX_MAX_NODES];
	uint64_t leader_since;

	/* pre-vote (before phase 1: would a majority follow a new ballot?) */
	bool prevoting;
	uint64_t prevote_ballot;
	uint16_t prevotes;

	/* candidate */
	uint16_t promises;
	uint64_t maxc;
	uint32_t maxc_from;
	bool recov_overflow;
	struct rec *recov;
	uint64_t recov_base, recov_cap, recov_last;

	/* stamps (px_batch.h): the last wall clock seen; the highest stamp in a value we know */
	uint64_t wall, stamp;

	/* leader */
	uint64_t next_slot, lstart;
	uint32_t inflight;
	uint16_t fwd_mask; /* peers whose SUBMITs are in the queue (a hint for announcements) */
	struct kset queued; /* (client, seq) in the queue or in flight */
	uint8_t *q;	    /* batch queue: encoded submissions [qrd, qwr) */
	size_t qrd, qwr, qcap;
	uint32_t qcount;

	/* pending submissions of this node: hash of indexes into pool */
	struct pend *pool;
	uint32_t pool_cap, pool_free, npend, phead, ptail;
	uint32_t nnoop; /* pending no-ops (their writers were answered) */
	uint32_t pexp;	/* the first pending entry that is not a no-op (the next to expire) */
	uint32_t *ht;
	uint32_t ht_cap;

	/* learner */
	uint16_t hello_from;
	uint64_t hello_ballot;
	bool hello_done;

	/* the update being built */
	bool rec_promise, rec_init, rec_commit;
	struct vec recs, outs, eoff, soff, ents, subs, applies, acks, snaps, dead;
	struct px_entry *bcast; /* scratch: entries proposed in this step */
	uint32_t nbcast, bcast_cap;
	uint64_t bcast_off;
	bool bcast_sent;
	int err;
	bool failed; /* a step failed: the node must be re-created from stable storage */
};

/* ---- small helpers ---- */

static int vpush(struct vec *v, const void *item, size_t elem)
{
	if (v->n == v->cap) {
		uint32_t nc = v->cap ? v->cap * 2 : 16;
		void *p = px__realloc(v->v, (size_t)nc * elem);
		if (!p)
			return -ENOMEM;
		v->v = p;
		v->cap = nc;
	}
	memcpy((char *)v->v + (size_t)v->n * elem, item, elem);
	v->n++;
	return 0;
}

static void note(struct px_node *nd, int rv)
{
	if (rv && !nd->err)
		nd->err = rv;
}

static void defer_free(struct px_node *nd, void *p)
{
	if (!p)
		return;
	if (vpush(&nd->dead, &p, sizeof(p))) {
		/* this step fails: its update is never handed out, so nothing can point to P */
		free(p);
		note(nd, -ENOMEM);
	}
}

static uint64_t rnd_next(struct px_node *nd)
{
	/* splitmix64 over the host's random input */
	uint64_t z = (nd->rnd += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t election_timeout(struct px_node *nd)
{
	return nd->cfg.election + rnd_next(nd) % nd->cfg.election;
}

static int popcount16(uint16_t x)
{
	return __builtin_popcount(x);
}

static uint64_t ballot_round(uint64_t b)
{
	return b >> 8;
}

static uint8_t *dup_bytes(const uint8_t *p, uint32_t len, int *err)
{
	uint8_t *d;
	if (!len)
		return NULL;
	d = px__malloc(len);
	if (!d) {
		*err = -ENOMEM;
		return NULL;
	}
	memcpy(d, p, len);
	return d;
}

/* ---- the log ---- */

static struct slot *slot_at(struct px_node *nd, uint64_t s)
{
	if (s < nd->base || s >= nd->base + nd->cap)
		return NULL;
	return &nd->ring[s & (nd->cap - 1)];
}

static const struct slot *slot_at_c(const struct px_node *nd, uint64_t s)
{
	if (s < nd->base || s >= nd->base + nd->cap)
		return NULL;
	return &nd->ring[s & (nd->cap - 1)];
}

/* The slot S, growing the ring if needed. NULL if S is below the base or too far above it. */
static struct slot *slot_get(struct px_node *nd, uint64_t s)
{
	uint64_t nc;
	struct slot *r;

	if (s < nd->base || s - nd->base >= MAX_SPAN)
		return NULL;
	if (s < nd->base + nd->cap)
		return &nd->ring[s & (nd->cap - 1)];
	nc = nd->cap;
	while (s >= nd->base + nc)
		nc *= 2;
	r = px__calloc(nc, sizeof(*r));
	if (!r) {
		note(nd, -ENOMEM);
		return NULL;
	}
	for (uint64_t i = nd->base; i < nd->base + nd->cap; i++)
		r[i & (nc - 1)] = nd->ring[i & (nd->cap - 1)];
	free(nd->ring);
	nd->ring = r;
	nd->cap = nc;
	return &nd->ring[s & (nd->cap - 1)];
}

/* Drop every slot below NEWBASE (they are chosen and covered by a snapshot). */
static void log_truncate(struct px_node *nd, uint64_t newbase)
{
	while (nd->base < newbase) {
		struct slot *sl = &nd->ring[nd->base & (nd->cap - 1)];
		defer_free(nd, sl->val);
		memset(sl, 0, sizeof(*sl));
		nd->base++;
	}
	if (nd->last < nd->base - 1)
		nd->last = nd->base - 1;
}

/* ---- building the update ---- */

static uint64_t this_seq(const struct px_node *nd)
{
	return nd->pseq + 1;
}

/* Messages that reveal acceptor state wait until every record so far is durable. */
static uint64_t wait_seq(const struct px_node *nd)
{
	uint64_t cur = nd->recs.n || nd->rec_promise || nd->rec_init ? this_seq(nd) : nd->pseq;
	if (BUG(PX_BUG_REPLY_BEFORE_PERSIST))
		return 0;
	return cur > nd->persisted ? cur : 0;
}

/* A value we know of (accepted, chosen or recovered): its stamp is a floor for ours. */
static void see_stamp(struct px_node *nd, const uint8_t *val, uint32_t len)
{
	uint64_t t = 0;
	if (!val || len < PX_BATCH_HDR)
		return;
	for (int i = 7; i >= 0; i--)
		t = t << 8 | val[4 + i];
	if (t > nd->stamp)
		nd->stamp = t;
}

static void record_slot(struct px_node *nd, uint64_t s, struct slot *sl)
{
	see_stamp(nd, sl->val, sl->len);
	struct px_entry e = {.slot = s,
			     .ballot = sl->ballot,
			     .flags = sl->flags & S_CHOSEN ? PX_ENT_CHOSEN : 0,
			     .len = sl->len,
			     .data = sl->val};
	note(nd, vpush(&nd->recs, &e, sizeof(e)));
	sl->pseq = this_seq(nd);
}

static void record_promise(struct px_node *nd)
{
	nd->rec_promise = true;
	nd->promise_pseq = this_seq(nd);
}

/* Append an outgoing message whose entries / submissions start at EO / SO in the pools. */
static void push_out(struct px_node *nd, const struct px_out *o, uint32_t eo, uint32_t so)
{
	if (vpush(&nd->eoff, &eo, sizeof(eo)))
		goto err;
	if (vpush(&nd->soff, &so, sizeof(so))) {
		nd->eoff.n--;
		goto err;
	}
	if (vpush(&nd->outs, o, sizeof(*o))) {
		nd->eoff.n--;
		nd->soff.n--;
		goto err;
	}
	return;
err:
	note(nd, -ENOMEM);
}

/* Queue message M (entries ENT[0..nent) and SUB[0..nsub) are copied into the update's pools). */
static void emit(struct px_node *nd, struct px_msg m, const struct px_entry *ent, uint32_t nent,
		 const struct px_sub *sub, uint32_t nsub, uint64_t wait)
{
	struct px_out o = {.wait_seq = wait};
	uint32_t eo = nd->ents.n, so = nd->subs.n;

	m.from = (uint8_t)nd->cfg.id;
	m.commit = nd->commit;
	for (uint32_t i = 0; i < nent; i++)
		if (vpush(&nd->ents, &ent[i], sizeof(*ent))) {
			note(nd, -ENOMEM);
			return;
		}
	for (uint32_t i = 0; i < nsub; i++)
		if (vpush(&nd->subs, &sub[i], sizeof(*sub))) {
			note(nd, -ENOMEM);
			return;
		}
	m.nent = nent;
	m.nsub = nsub;
	m.ent = NULL;
	m.sub = NULL;
	o.msg = m;
	push_out(nd, &o, eo, so);
}

static void send_simple(struct px_node *nd, uint8_t type, uint32_t to, uint64_t ballot,
			uint64_t slot, uint64_t aux, uint64_t wait)
{
	struct px_msg m = {
	    .type = type, .to = (uint8_t)to, .ballot = ballot, .slot = slot, .aux = aux};
	emit(nd, m, NULL, 0, NULL, 0, wait);
}

static void ack(struct px_node *nd, uint64_t client, uint64_t seq, uint64_t slot, int status)
{
	struct px_ack a = {.client = client, .seq = seq, .slot = slot, .status = status};
	note(nd, vpush(&nd->acks, &a, sizeof(a)));
}

/* ---- pending submissions ---- */

static uint32_t hkey(uint64_t c, uint64_t s)
{
	uint64_t k =
	    c * 0x9e3779b97f4a7c15ull ^ (s + 0x632be59bd9b4e019ull) * 0xc2b2ae3d27d4eb4full;
	k ^= k >> 31;
	return (uint32_t)k;
}

static const uint8_t *pend_bytes(const struct pend *p)
{
	return p->data ? p->data : p->inl;
}

static uint32_t pend_find(const struct px_node *nd, uint64_t c, uint64_t s, uint32_t *hpos)
{
	uint32_t i;
	if (!nd->ht_cap) {
		*hpos = NONE;
		return NONE;
	}
	i = hkey(c, s) & (nd->ht_cap - 1);
	while (nd->ht[i] != NONE) {
		const struct pend *p = &nd->pool[nd->ht[i]];
		if (p->client == c && p->seq == s) {
			*hpos = i;
			return nd->ht[i];
		}
		i = (i + 1) & (nd->ht_cap - 1);
	}
	*hpos = i;
	return NONE;
}

static int pend_grow(struct px_node *nd)
{
	uint32_t nc = nd->pool_cap ? nd->pool_cap * 2 : 64;
	uint32_t *nh = px__malloc(sizeof(*nh) * nc * 2);
	struct pend *np;
	if (!nh)
		return -ENOMEM;
	np = px__realloc(nd->pool, sizeof(*np) * nc);
	if (!np) {
		free(nh);
		return -ENOMEM;
	}
	nd->pool = np;
	for (uint32_t i = nd->pool_cap; i < nc; i++)
		nd->pool[i].next = i + 1 < nc ? i + 1 : NONE;
	nd->pool_free = nd->pool_cap;
	nd->pool_cap = nc;
	/* the hash keeps load <= 1/2 of pool capacity */
	free(nd->ht);
	nd->ht = nh;
	nd->ht_cap = nc * 2;
	for (uint32_t i = 0; i < nd->ht_cap; i++)
		nd->ht[i] = NONE;
	for (uint32_t i = nd->phead; i != NONE; i = nd->pool[i].next) {
		uint32_t h;
		pend_find(nd, nd->pool[i].client, nd->pool[i].seq, &h);
		nd->ht[h] = i;
	}
	return 0;
}

/* pexp := the first entry from FROM on that is not a no-op. */
static void pexp_advance(struct px_node *nd, uint32_t from)
{
	while (from != NONE && nd->pool[from].noop)
		from = nd->pool[from].next;
	nd->pexp = from;
}

/* The writer of pending entry IDX is answered: keep its (client, seq) as a no-op, so that the
 * client's later seqs are not held behind a hole (px_batch.h). Whichever of the no-op and a copy
 * of the original still travelling is chosen first takes the seq; the other is a duplicate. */
static void pend_to_noop(struct px_node *nd, uint32_t idx)
{
	struct pend *p = &nd->pool[idx];
	if (p->noop)
		return;
	if (p->data)
		defer_free(nd, p->data);
	p->data = NULL;
	p->len = 0;
	p->noop = 1;
	p->deadline = UINT64_MAX;
	nd->nnoop++;
	if (nd->pexp == idx)
		pexp_advance(nd, p->next);
}

static void pend_remove(struct px_node *nd, uint32_t idx, uint32_t hpos)
{
	struct pend *p = &nd->pool[idx];
	uint32_t i = hpos, j = hpos;

	/* backward-shift deletion keeps linear probing intact */
	nd->ht[i] = NONE;
	for (;;) {
		uint32_t k;
		j = (j + 1) & (nd->ht_cap - 1);
		if (nd->ht[j] == NONE)
			break;
		k = hkey(nd->pool[nd->ht[j]].client, nd->pool[nd->ht[j]].seq) & (nd->ht_cap - 1);
		if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
			nd->ht[i] = nd->ht[j];
			nd->ht[j] = NONE;
			i = j;
		}
	}
	if (p->noop)
		nd->nnoop--;
	if (nd->pexp == idx)
		pexp_advance(nd, p->next);
	if (p->prev != NONE)
		nd->pool[p->prev].next = p->next;
	else
		nd->phead = p->next;
	if (p->next != NONE)
		nd->pool[p->next].prev = p->prev;
	else
		nd->ptail = p->prev;
	if (p->data)
		defer_free(nd, p->data);
	p->data = NULL;
	p->next = nd->pool_free;
	nd->pool_free = idx;
	nd->npend--;
}

/* ---- the leader's set of queued submissions ---- */

static uint32_t kfind(const struct kset *k, uint64_t c, uint64_t q)
{
	uint32_t i = hkey(c, q) & (k->cap - 1);
	while (k->used[i] && (k->c[i] != c || k->q[i] != q))
		i = (i + 1) & (k->cap - 1);
	return i;
}

static bool kset_has(const struct kset *k, uint64_t c, uint64_t q)
{
	return k->cap && k->used[kfind(k, c, q)];
}

static void kset_clear(struct kset *k)
{
	if (k->cap && k->n)
		memset(k->used, 0, k->cap);
	k->n = 0;
}

static void kset_free(struct kset *k)
{
	free(k->c);
	free(k->q);
	free(k->used);
	memset(k, 0, sizeof(*k));
}

static int kset_add(struct kset *k, uint64_t c, uint64_t q)
{
	uint32_t i;
	if ((k->n + 1) * 2 > k->cap) {
		struct kset nk = {0};
		nk.cap = k->cap ? k->cap * 2 : 256;
		nk.c = px__malloc(sizeof(uint64_t) * nk.cap);
		nk.q = px__malloc(sizeof(uint64_t) * nk.cap);
		nk.used = px__calloc(nk.cap, 1);
		if (!nk.c || !nk.q || !nk.used) {
			kset_free(&nk);
			return -ENOMEM;
		}
		for (uint32_t j = 0; j < k->cap; j++) {
			if (!k->used[j])
				continue;
			i = kfind(&nk, k->c[j], k->q[j]);
			nk.used[i] = 1;
			nk.c[i] = k->c[j];
			nk.q[i] = k->q[j];
			nk.n++;
		}
		kset_free(k);
		*k = nk;
	}
	i = kfind(k, c, q);
	if (!k->used[i]) {
		k->used[i] = 1;
		k->c[i] = c;
		k->q[i] = q;
		k->n++;
	}
	return 0;
}

static void kset_del(struct kset *k, uint64_t c, uint64_t q)
{
	uint32_t i, j;
	if (!k->cap)
		return;
	i = kfind(k, c, q);
	if (!k->used[i])
		return;
	k->used[i] = 0;
	k->n--;
	/* backward-shift deletion */
	for (j = (i + 1) & (k->cap - 1); k->used[j]; j = (j + 1) & (k->cap - 1)) {
		uint32_t h = hkey(k->c[j], k->q[j]) & (k->cap - 1);
		if ((j > i && (h <= i || h > j)) || (j < i && (h <= i && h > j))) {
			k->c[i] = k->c[j];
			k->q[i] = k->q[j];
			k->used[i] = 1;
			k->used[j] = 0;
			i = j;
		}
	}
}

/* ---- the leader's batch queue ---- */

static void q_put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t q_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int q_push(struct px_node *nd, uint64_t client, uint64_t seq, const uint8_t *data,
		  uint32_t len)
{
	size_t need = PX_BATCH_SUB + (size_t)len;

	if (kset_has(&nd->queued, client, seq))
		return 0; /* already queued or in flight */
	if (kset_add(&nd->queued, client, seq))
		return -ENOMEM;
	if (nd->qwr + need > nd->qcap) {
		if (nd->qrd > 0) {
			memmove(nd->q, nd->q + nd->qrd, nd->qwr - nd->qrd);
			nd->qwr -= nd->qrd;
			nd->qrd = 0;
		}
		if (nd->qwr + need > nd->qcap) {
			size_t nc = nd->qcap ? nd->qcap : 4096;
			uint8_t *p;
			while (nc < nd->qwr + need)
				nc *= 2;
			p = px__realloc(nd->q, nc);
			if (!p)
				return -ENOMEM;
			nd->q = p;
			nd->qcap = nc;
		}
	}
	q_put64(nd->q + nd->qwr, client);
	q_put64(nd->q + nd->qwr + 8, seq);
	nd->q[nd->qwr + 16] = (uint8_t)len;
	nd->q[nd->qwr + 17] = (uint8_t)(len >> 8);
	nd->q[nd->qwr + 18] = (uint8_t)(len >> 16);
	nd->q[nd->qwr + 19] = (uint8_t)(len >> 24);
	if (len)
		memcpy(nd->q + nd->qwr + PX_BATCH_SUB, data, len);
	nd->qwr += need;
	nd->qcount++;
	return 0;
}

static void q_clear(struct px_node *nd)
{
	nd->qrd = nd->qwr = 0;
	nd->qcount = 0;
	kset_clear(&nd->queued);
	for (uint32_t i = nd->phead; i != NONE; i = nd->pool[i].next)
		nd->pool[i].queued = 0;
}

/* Cut the next batch off the queue into a fresh value. */
static uint8_t *q_cut(struct px_node *nd, uint32_t *len_out)
{
	size_t p = nd->qrd, bytes;
	uint32_t k = 0;
	uint8_t *v;

	while (k < nd->qcount && k < nd->cfg.max_batch) {
		uint32_t l = q_get32(nd->q + p + 16);
		if (k > 0 && p - nd->qrd + PX_BATCH_SUB + l > nd->cfg.max_batch_bytes)
			break;
		p += PX_BATCH_SUB + l;
		k++;
	}
	bytes = p - nd->qrd;
	if (bytes + PX_BATCH_HDR > UINT32_MAX) {
		note(nd, -EINVAL);
		return NULL;
	}
	v = px__malloc(PX_BATCH_HDR + bytes);
	if (!v) {
		note(nd, -ENOMEM);
		return NULL;
	}
	v[0] = (uint8_t)k;
	v[1] = (uint8_t)(k >> 8);
	v[2] = (uint8_t)(k >> 16);
	v[3] = (uint8_t)(k >> 24);
	/* the leader's stamp: its wall clock, never below a stamp it knows of */
	if (nd->wall > nd->stamp)
		nd->stamp = nd->wall;
	q_put64(v + 4, nd->stamp);
	memcpy(v + PX_BATCH_HDR, nd->q + nd->qrd, bytes);
	nd->qrd = p;
	nd->qcount -= k;
	if (nd->qcount == 0)
		nd->qrd = nd->qwr = 0;
	*len_out = (uint32_t)(PX_BATCH_HDR + bytes);
	return v;
}

/* ---- roles ---- */

/* Stop proposing: forwarded submissions are dropped (their submitters retry); ours stay pending. */
static void stop_leading(struct px_node *nd)
{
	if (nd->role != PX_LEADER && nd->role != PX_CANDIDATE)
		return;
	q_clear(nd);
	nd->inflight = 0;
	nd->nbcast = 0;
	for (uint64_t s = nd->commit + 1; s <= nd->last; s++) {
		struct slot *sl = slot_at(nd, s);
		if (sl)
			sl->flags &= (uint8_t)~S_PROPOSED;
	}
}

static void become_follower(struct px_node *nd)
{
	if (nd->role == PX_LEARNER)
		return;
	stop_leading(nd);
	if (nd->role != PX_FOLLOWER)
		nd->leader = NONE;
	nd->role = PX_FOLLOWER;
	nd->election_at = nd->now + election_timeout(nd);
}

static void see_ballot(struct px_node *nd, uint64_t b)
{
	if (b > nd->max_seen)
		nd->max_seen = b;
}

/* A different leader is known: resend our pending submissions to it. */
static void set_leader(struct px_node *nd, uint32_t id, uint64_t b, uint64_t lstart)
{
	if (nd->leader != id || nd->leader_ballot != b) {
		for (uint32_t i = nd->phead; i != NONE; i = nd->pool[i].next)
			nd->pool[i].queued = 0;
		nd->retry_at = nd->now;
	}
	nd->leader = id;
	nd->leader_ballot = b;
	nd->leader_lstart = lstart;
	nd->heard_leader = nd->now;
	nd->prevoting = false;
}

/* ---- learning chosen values ---- */

static void advance_commit(struct px_node *nd)
{
	uint64_t c = nd->commit;
	for (;;) {
		struct slot *sl = slot_at(nd, c + 1);
		if (!sl || !(sl->flags & S_CHOSEN))
			break;
		if (sl->flags & S_PROPOSED) {
			/* known chosen: it leaves the leader's window whoever acknowledged it */
			sl->flags &= (uint8_t)~S_PROPOSED;
			if (nd->inflight)
				nd->inflight--;
		}
		c++;
	}
	if (c != nd->commit) {
		nd->commit = c;
		nd->rec_commit = true;
	}
}

/* Learn that VAL is chosen in slot S (from a CATCHUP or a PROMISE flagged chosen). */
static void learn_chosen(struct px_node *nd, uint64_t s, uint64_t b, const uint8_t *val,
			 uint32_t len)
{
	struct slot *sl;
	int err = 0;
	uint8_t *d;

	if (s <= nd->commit)
		return;
	sl = slot_get(nd, s);
	if (!sl || (sl->flags & S_CHOSEN))
		return;
	d = dup_bytes(val, len, &err);
	if (err) {
		note(nd, err);
		return;
	}
	if (sl->flags & S_PROPOSED) {
		sl->flags &= (uint8_t)~S_PROPOSED;
		if (nd->inflight)
			nd->inflight--;
	}
	defer_free(nd, sl->val);
	sl->val = d;
	sl->len = len;
	if (b > sl->ballot)
		sl->ballot = b;
	sl->flags |= S_HAVE | S_CHOSEN;
	if (s > nd->last)
		nd->last = s;
	record_slot(nd, s, sl);
	/* A leader never proposed from next_slot on: a value chosen there was chosen at another,
	 * higher ballot (a lower one would have been reported in our phase 1), so ours is stale (a
	 * leader frozen while another took over learns this from a catch-up). Step down: flush()
	 * must not propose into a chosen slot. */
	if (nd->role == PX_LEADER && s >= nd->next_slot && !BUG(PX_BUG_PROPOSE_INTO_CHOSEN))
		become_follower(nd);
}

/* Note a peer's commit index (its latest word: it goes down when the peer restarts with an older
 * commit record). Catch-up asks a peer that knows more than we do. */
static void want_catchup(struct px_node *nd, uint32_t from, uint64_t their_commit)
{
	if (from < nd->cfg.n)
		nd->peer_commit[from] = their_commit;
}

/* ---- phase 1 ---- */

static void recov_free(struct px_node *nd)
{
	for (uint64_t i = 0; i < nd->recov_cap; i++)
		free(nd->recov[i].val);
	free(nd->recov);
	nd->recov = NULL;
	nd->recov_cap = 0;
}

static uint64_t next_ballot(const struct px_node *nd);

static void start_election(struct px_node *nd)
{
	uint64_t b = next_ballot(nd);
	stop_leading(nd);
	nd->prevoting = false;
	nd->role = PX_CANDIDATE;
	nd->leader = NONE;
	nd->ballot = b;
	nd->promised = nd->ballot;
	see_ballot(nd, nd->ballot);
	record_promise(nd);
	nd->promises = 0;
	nd->maxc = nd->commit;
	nd->maxc_from = nd->cfg.id;
	nd->recov_overflow = false;
	recov_free(nd);
	nd->recov_base = nd->commit + 1;
	nd->recov_last = nd->commit;
	nd->election_at = nd->now + election_timeout(nd);
	for (uint32_t i = 0; i < nd->cfg.n; i++)
		if (i != nd->cfg.id)
			send_simple(nd, PX_MSG_PREPARE, i, nd->ballot, nd->commit + 1, 0, 0);
}

/*
 * Pre-vote: before raising any promise, ask whether a majority would take part in a new ballot.
 * A node that cannot hear answers (a one-way partition) thus never raises its ballot and cannot
 * disrupt a working majority. Nothing changes at the receivers: it has no effect on safety.
 */
static uint64_t next_ballot(const struct px_node *nd)
{
	uint64_t round = ballot_round(nd->max_seen);
	if (ballot_round(nd->promised) > round)
		round = ballot_round(nd->promised);
	return (round + 1) << 8 | nd->cfg.id;
}

static void start_prevote(struct px_node *nd)
{
	if (nd->quorum == 1) {
		start_election(nd);
		return;
	}
	nd->prevoting = true;
	nd->prevote_ballot = next_ballot(nd);
	nd->prevotes = 0;
	nd->election_at = nd->now + election_timeout(nd);
	for (uint32_t i = 0; i < nd->cfg.n; i++)
		if (i != nd->cfg.id)
			send_simple(nd, PX_MSG_PREVOTE, i, nd->prevote_ballot, 0, 0, 0);
}

static void recov_merge(struct px_node *nd, const struct px_entry *e)
{
	uint64_t off;
	struct rec *r;
	int err = 0;

	if (e->slot < nd->recov_base || e->slot <= nd->commit)
		return;
	off = e->slot - nd->recov_base;
	if (off >= MAX_SPAN) {
		nd->recov_overflow = true;
		return;
	}
	if (off >= nd->recov_cap) {
		uint64_t nc = nd->recov_cap ? nd->recov_cap : 64;
		struct rec *p;
		while (nc <= off)
			nc *= 2;
		p = px__realloc(nd->recov, sizeof(*p) * nc);
		if (!p) {
			/* losing a report would be unsafe: give up this candidacy */
			note(nd, -ENOMEM);
			nd->recov_overflow = true;
			return;
		}
		memset(p + nd->recov_cap, 0, sizeof(*p) * (nc - nd->recov_cap));
		nd->recov = p;
		nd->recov_cap = nc;
	}
	r = &nd->recov[off];
	if (r->have && r->ballot >= e->ballot)
		return;
	free(r->val);
	r->val = dup_bytes(e->data, e->len, &err);
	if (err) {
		note(nd, err);
		nd->recov_overflow = true;
		r->have = 0;
		return;
	}
	r->len = e->len;
	r->ballot = e->ballot;
	r->have = 1;
	if (e->slot > nd->recov_last)
		nd->recov_last = e->slot;
}

/* Propose VAL (ownership passes) in slot S at our ballot: we accept it ourselves first. */
static void propose(struct px_node *nd, uint64_t s, uint8_t *val, uint32_t len)
{
	struct slot *sl = slot_get(nd, s);
	struct px_entry e;

	if (!sl) {
		free(val);
		return;
	}
	if ((sl->flags & S_CHOSEN) && (sl->len != len || (len && memcmp(sl->val, val, len))) &&
	    !BUG(PX_BUG_PROPOSE_INTO_CHOSEN)) {
		/* never replace a chosen value (learn_chosen makes a leader step down before its
		 * next slot is chosen elsewhere; become_leader re-proposes a chosen slot with its
		 * own value) */
		free(val);
		return;
	}
	see_stamp(nd, val, len);
	defer_free(nd, sl->val);
	sl->val = val;
	sl->len = len;
	sl->ballot = nd->ballot;
	sl->flags = (uint8_t)((sl->flags & S_CHOSEN) | S_HAVE | S_PROPOSED);
	sl->acks = 0;
	sl->origins = 0;
	if (s > nd->last)
		nd->last = s;
	record_slot(nd, s, sl);
	nd->inflight++;
	e = (struct px_entry){.slot = s, .ballot = nd->ballot, .len = len, .data = val};
	if (nd->nbcast == nd->bcast_cap) {
		uint32_t nc = nd->bcast_cap ? nd->bcast_cap * 2 : 64;
		struct px_entry *p = px__realloc(nd->bcast, sizeof(*p) * nc);
		if (!p) {
			note(nd, -ENOMEM);
			return; /* the heartbeat retransmits it */
		}
		nd->bcast = p;
		nd->bcast_cap = nc;
	}
	nd->bcast[nd->nbcast++] = e;
}

static void become_leader(struct px_node *nd)
{
	uint64_t lo, hi;

	if (nd->recov_overflow) {
		/* too far behind to lead: follow, and catch up first */
		recov_free(nd);
		become_follower(nd);
		return;
	}
	nd->role = PX_LEADER;
	nd->leader = nd->cfg.id;
	nd->leader_ballot = nd->ballot;
	nd->leader_since = nd->now;
	for (uint32_t i = 0; i < nd->cfg.n; i++)
		nd->peer_heard[i] = nd->now;
	/* every stamp in our log is a floor for the stamps we give (the recovered values raise it
	 * further as they are re-proposed) */
	for (uint64_t s = nd->base; s <= nd->last; s++) {
		struct slot *sl = slot_at(nd, s);
		if (sl)
			see_stamp(nd, sl->val, sl->len);
	}
	/* our own acceptor state is one of the reports */
	for (uint64_t s = nd->commit + 1; s <= nd->last; s++) {
		struct slot *sl = slot_at(nd, s);
		if (sl && (sl->flags & S_HAVE) && !(sl->flags & S_CHOSEN)) {
			struct px_entry e = {
			    .slot = s, .ballot = sl->ballot, .len = sl->len, .data = sl->val};
			recov_merge(nd, &e);
		}
	}
	if (nd->recov_overflow) {
		recov_free(nd);
		become_follower(nd);
		return;
	}
	lo = (nd->maxc > nd->commit ? nd->maxc : nd->commit) + 1;
	hi = nd->recov_last;
	if (nd->last > hi) {
		/* our own chosen-but-not-contiguous slots above */
		for (uint64_t s = hi + 1; s <= nd->last; s++) {
			struct slot *sl = slot_at(nd, s);
			if (sl && (sl->flags & S_CHOSEN))
				hi = s;
		}
	}
	nd->inflight = 0;
	nd->nbcast = 0;
	for (uint64_t s = lo; s <= hi; s++) {
		struct slot *sl = slot_get(nd, s);
		struct rec *r = s >= nd->recov_base && s - nd->recov_base < nd->recov_cap
				    ? &nd->recov[s - nd->recov_base]
				    : NULL;
		uint8_t *v = NULL;
		uint32_t len = 0;
		int err = 0;

		if (!sl)
			break;
		if (sl->flags & S_CHOSEN) {
			/* re-propose the known chosen value, so that followers learn it too */
			v = dup_bytes(sl->val, sl->len, &err);
			len = sl->len;
		} else if (r && r->have && !BUG(PX_BUG_SKIP_REPROPOSE)) {
			/* P2c: the value of the highest ballot reported by the majority */
			v = r->val;
			len = r->len;
			r->val = NULL;
			r->have = 0;
		}
		/* else: a hole, filled with a no-op */
		if (err) {
			note(nd, err);
			break;
		}
		propose(nd, s, v, len);
	}
	recov_free(nd);
	nd->lstart = hi + 1 > lo ? hi + 1 : lo;
	nd->next_slot = nd->lstart;
	/* slots the majority knows chosen but we do not: fetch them */
	if (nd->maxc > nd->commit)
		want_catchup(nd, nd->maxc_from, nd->maxc);
	nd->heartbeat_at = nd->now; /* announce at once */
	/* our own pending submissions go into our first batches */
	q_clear(nd);
	for (uint32_t i = nd->phead; i != NONE; i = nd->pool[i].next) {
		struct pend *p = &nd->pool[i];
		if (q_push(nd, p->client, p->seq, pend_bytes(p), p->len)) {
			note(nd, -ENOMEM);
			break;
		}
		p->queued = 1;
	}
}

static void check_phase1(struct px_node *nd)
{
	int n;
	if (nd->role != PX_CANDIDATE || nd->persisted < nd->promise_pseq)
		return;
	n = popcount16(nd->promises) + 1; /* + our own, durable promise */
	if (n >= (int)nd->quorum)
		become_leader(nd);
}

/* The leader heard from a majority (itself included) within the last election timeout. */
static bool has_quorum(const struct px_node *nd)
{
	int alive = 1;
	for (uint32_t i = 0; i < nd->cfg.n; i++)
		if (i != nd->cfg.id && nd->peer_heard[i] + nd->cfg.election > nd->now)
			alive++;
	return alive >= (int)nd->quorum;
}

static void on_prepare(struct px_node *nd, const struct px_msg *m)
{
	if (nd->role == PX_LEARNER)
		return;
	/* leader stickiness: while a live leader is heard (or, for the leader, while a majority
	 * answers it), ignore others' candidacies; ignoring a message is always safe */
	if (nd->role == PX_FOLLOWER && nd->leader != NONE && nd->leader != m->from &&
	    nd->now < nd->heard_leader + nd->cfg.election && m->ballot > nd->promised)
		return;
	if (nd->role == PX_LEADER && m->ballot > nd->promised && has_quorum(nd))
		return;
	see_ballot(nd, m->ballot);
	if (m->ballot > nd->promised) {
		/* P1b: promise a ballot higher than any promised */
		nd->promised = m->ballot;
		record_promise(nd);
		if (nd->role == PX_LEADER || nd->role == PX_CANDIDATE)
			become_follower(nd);
		nd->leader = NONE;
		nd->election_at = nd->now + election_timeout(nd);
	} else if (m->ballot < nd->promised) {
		send_simple(nd, PX_MSG_REJECT, m->from, nd->promised, 0, m->ballot, 0);
		return;
	}
	/* m->ballot == promised: (re)send the promise with every value accepted above the ask */
	{
		uint64_t from = m->slot > nd->commit + 1 ? m->slot : nd->commit + 1;
		uint32_t eo = nd->ents.n, k = 0;
		struct px_msg pm = {
		    .type = PX_MSG_PROMISE, .to = m->from, .ballot = m->ballot, .slot = nd->base,
		    .aux = nd->stamp};
		struct px_out o = {.wait_seq = wait_seq(nd)};
		uint32_t so = nd->subs.n;

		if (from < nd->base)
			from = nd->base;
		for (uint64_t s = from; s <= nd->last; s++) {
			struct slot *sl = slot_at(nd, s);
			struct px_entry e;
			if (!sl || !(sl->flags & S_HAVE))
				continue;
			e = (struct px_entry){.slot = s,
					      .ballot = sl->ballot,
					      .flags = sl->flags & S_CHOSEN ? PX_ENT_CHOSEN : 0,
					      .len = sl->len,
					      .data = sl->val};
			if (vpush(&nd->ents, &e, sizeof(e))) {
				note(nd, -ENOMEM);
				nd->ents.n = eo;
				return; /* no promise rather than an incomplete one */
			}
			k++;
		}
		pm.from = (uint8_t)nd->cfg.id;
		pm.commit = nd->commit;
		pm.nent = k;
		o.msg = pm;
		push_out(nd, &o, eo, so);
	}
}

static void on_promise(struct px_node *nd, const struct px_msg *m)
{
	uint16_t bit = (uint16_t)(1u << m->from);
	if (nd->role != PX_CANDIDATE || m->ballot != nd->ballot || (nd->promises & bit))
		return;
	/* a chosen value was accepted by one of the majority that promises: its stamp is here */
	if (m->aux > nd->stamp)
		nd->stamp = m->aux;
	for (uint32_t i = 0; i < m->nent; i++) {
		const struct px_entry *e = &m->ent[i];
		if (e->flags & PX_ENT_CHOSEN)
			learn_chosen(nd, e->slot, e->ballot, e->data, e->len);
		else
			recov_merge(nd, e);
	}
	if (m->commit > nd->maxc) {
		nd->maxc = m->commit;
		nd->maxc_from = m->from;
	}
	nd->promises |= bit;
	check_phase1(nd);
}

static void on_reject(struct px_node *nd, const struct px_msg *m)
{
	see_ballot(nd, m->ballot);
	if ((nd->role == PX_LEADER || nd->role == PX_CANDIDATE) && m->ballot > nd->ballot)
		become_follower(nd);
}

/* ---- phase 2 ---- */

/* Slots up to COMMIT are chosen (the sender's commit index); those we accepted at BALLOT are the
 * sender's values, so they are chosen here too. */
static void learn_commit(struct px_node *nd, uint64_t commit, uint64_t ballot)
{
	uint64_t top = commit < nd->last ? commit : nd->last;
	for (uint64_t s = nd->commit + 1; s <= top; s++) {
		struct slot *sl = slot_at(nd, s);
		if (sl && (sl->flags & S_HAVE) && sl->ballot == ballot)
			sl->flags |= S_CHOSEN;
	}
	advance_commit(nd);
}

/*
 * Learning from the acceptors themselves ("Paxos Made Simple", 2.3: acceptors tell every learner
 * what they accepted). A leader sends an ACCEPTED of its own once its own record of a proposal
 * is durable: with 3 nodes to the followers whose forwarded submissions are in it (fwd_mask,
 * slot.origins: a hint; a follower it misses learns from the commit index), with 5 or more to
 * every follower. With 5 or more an acceptor also sends its ACCEPTED to every node, not only to
 * the leader (with 3, the leader's and our own acceptance are a majority). So a follower (the
 * writer's node, when it forwarded the write) learns that a slot is chosen as soon as its own
 * record is durable, without waiting two more hops (its ACCEPTED to the leader, the leader's
 * commit index back).
 *
 * The rule: slot S is chosen at this node once a majority of nodes durably accepted S at one
 * ballot B (the ACCEPTED received from peers at B, plus our own record of S at B once it is
 * durable), and only if we hold the value we accepted (or proposed) at B. A ballot's leader
 * proposes one value per slot (it re-proposes a slot only under a new ballot), so every acceptor
 * at B accepted that same value, and a value accepted by a majority at one ballot is chosen (P2).
 * Acceptances at different ballots are never counted together: the tally restarts at each higher
 * ballot and ignores lower ones (ignoring is always safe: the leader's commit index still
 * arrives). Nothing here changes acceptor state; a slot learnt this way is no different from one
 * learnt through learn_commit.
 */
static bool own_durable(const struct px_node *nd, const struct slot *sl, uint64_t b)
{
	return nd->initialised && (sl->flags & S_HAVE) && sl->ballot == b &&
	       sl->pseq <= nd->persisted;
}

static void learn_check(struct px_node *nd, struct slot *sl)
{
	int n;

	if ((sl->flags & S_CHOSEN) || !sl->lballot || !(sl->flags & S_HAVE))
		return;
	if (sl->ballot != sl->lballot && !BUG(PX_BUG_LEARN_MIXED_BALLOTS))
		return; /* the value we hold is not the one they accepted */
	n = popcount16((uint16_t)(sl->lacks & ~(1u << nd->cfg.id)));
	if (own_durable(nd, sl, sl->ballot))
		n++;
	if (n >= (int)nd->quorum)
		sl->flags |= S_CHOSEN;
}

/* Node WHO (a peer) durably accepted slot S at ballot B. */
static void learn_tally(struct px_node *nd, uint64_t s, uint64_t b, uint32_t who)
{
	struct slot *sl;

	if (s <= nd->commit || !(sl = slot_at(nd, s)) || (sl->flags & S_CHOSEN) || !b)
		return;
	if (b > sl->lballot) {
		sl->lballot = b;
		if (!BUG(PX_BUG_LEARN_MIXED_BALLOTS))
			sl->lacks = 0;
	} else if (b < sl->lballot && !BUG(PX_BUG_LEARN_MIXED_BALLOTS)) {
		return;
	}
	sl->lacks |= (uint16_t)(1u << who);
	learn_check(nd, sl);
}

/* Our records became durable: our own acceptances now count (slots near the commit index). */
static void learn_own(struct px_node *nd)
{
	uint64_t top = nd->last;

	if (top - nd->commit > LEARN_SCAN)
		top = nd->commit + LEARN_SCAN;
	for (uint64_t s = nd->commit + 1; s <= top; s++) {
		struct slot *sl = slot_at(nd, s);
		if (sl && sl->lballot)
			learn_check(nd, sl);
	}
	advance_commit(nd);
}

static void maybe_graduate(struct px_node *nd)
{
	if (nd->role != PX_LEARNER || !nd->hello_done)
		return;
	if (!BUG(PX_BUG_LEARNER_VOTES_EARLY) &&
	    (nd->leader == NONE || nd->leader_ballot <= nd->hello_ballot ||
	     nd->commit + 1 < nd->leader_lstart))
		return;
	if (nd->leader_ballot > nd->promised) {
		nd->promised = nd->leader_ballot;
		record_promise(nd);
	}
	nd->initialised = true;
	nd->rec_init = true;
	nd->role = PX_FOLLOWER;
	nd->election_at = nd->now + election_timeout(nd);
}

static void on_accept(struct px_node *nd, const struct px_msg *m)
{
	uint32_t eo;
	uint32_t k = 0;

	want_catchup(nd, m->from, m->commit);
	if (nd->role == PX_LEARNER) {
		if (m->ballot >= nd->leader_ballot)
			set_leader(nd, m->from, m->ballot, m->slot);
		learn_commit(nd, m->commit, m->ballot);
		maybe_graduate(nd);
		return;
	}
	if (m->ballot < nd->promised && !BUG(PX_BUG_ACCEPT_BELOW_PROMISE)) {
		send_simple(nd, PX_MSG_REJECT, m->from, nd->promised, 0, m->ballot, 0);
		return;
	}
	see_ballot(nd, m->ballot);
	if (m->ballot > nd->promised) {
		nd->promised = m->ballot;
		record_promise(nd);
	}
	if (m->ballot >= nd->promised) {
		if (nd->role != PX_FOLLOWER)
			become_follower(nd);
		set_leader(nd, m->from, m->ballot, m->slot);
		nd->election_at = nd->now + election_timeout(nd);
	}
	eo = nd->ents.n;
	for (uint32_t i = 0; i < m->nent; i++) {
		const struct px_entry *e = &m->ent[i];
		struct px_entry a = {.slot = e->slot};
		struct slot *sl;

		if (e->slot < nd->base) {
			/* chosen and compacted here: the value is the chosen one */
		} else if (!(sl = slot_get(nd, e->slot))) {
			continue;
		} else if (sl->flags & S_CHOSEN) {
			if (sl->len != e->len || (e->len && memcmp(sl->val, e->data, e->len)))
				continue; /* cannot happen in a correct protocol: do not ack */
		} else {
			/* P2b: accept, the ballot is not lower than the promise */
			int err = 0;
			uint8_t *d = dup_bytes(e->data, e->len, &err);
			if (err) {
				note(nd, err);
				continue;
			}
			defer_free(nd, sl->val);
			sl->val = d;
			sl->len = e->len;
			sl->ballot = m->ballot;
			sl->flags = (uint8_t)((sl->flags & ~S_PROPOSED) | S_HAVE);
			if (e->slot > nd->last)
				nd->last = e->slot;
			record_slot(nd, e->slot, sl);
			if (m->ballot > sl->lballot) {
				sl->lballot = m->ballot;
				sl->lacks = 0;
			}
			learn_check(nd, sl); /* peers' ACCEPTED may have come first */
		}
		if (vpush(&nd->ents, &a, sizeof(a))) {
			note(nd, -ENOMEM);
			break;
		}
		k++;
	}
	learn_commit(nd, m->commit, m->ballot);
	/* P2b's answer, once durable: to the leader, and (when it accepted values) to every other
	 * node too, so that they learn the choice from the acceptors (learn_tally). With a majority
	 * of 2 (3 nodes) the leader's own announcement (on_persisted) and our own acceptance make
	 * that majority: the other follower need not hear from us (one message less per peer). */
	for (uint32_t i = 0; i < nd->cfg.n; i++) {
		struct px_msg r = {.type = PX_MSG_ACCEPTED,
				   .from = (uint8_t)nd->cfg.id,
				   .to = (uint8_t)i,
				   .ballot = m->ballot,
				   .commit = nd->commit,
				   .nent = k};
		struct px_out o = {.msg = r, .wait_seq = wait_seq(nd)};
		if (i == nd->cfg.id || (i != m->from && (k == 0 || nd->quorum <= 2)))
			continue;
		push_out(nd, &o, eo, nd->subs.n);
	}
}

static void count_ack(struct px_node *nd, uint64_t s, uint32_t who)
{
	struct slot *sl = slot_at(nd, s);
	if (!sl || !(sl->flags & S_PROPOSED) || sl->ballot != nd->ballot)
		return;
	sl->acks |= (uint16_t)(1u << who);
	if (!(sl->flags & S_CHOSEN) && popcount16(sl->acks) >= (int)nd->quorum) {
		sl->flags |= S_CHOSEN;
		sl->flags &= (uint8_t)~S_PROPOSED;
		if (nd->inflight)
			nd->inflight--;
	} else if ((sl->flags & S_CHOSEN) && popcount16(sl->acks) >= (int)nd->quorum) {
		/* a re-proposed slot we already knew chosen: it leaves the window */
		sl->flags &= (uint8_t)~S_PROPOSED;
		if (nd->inflight)
			nd->inflight--;
	}
}

static void on_accepted(struct px_node *nd, const struct px_msg *m)
{
	want_catchup(nd, m->from, m->commit);
	if (nd->role != PX_LEADER) {
		for (uint32_t i = 0; i < m->nent; i++)
			learn_tally(nd, m->ent[i].slot, m->ballot, m->from);
		advance_commit(nd);
		return;
	}
	if (m->ballot > nd->ballot && !BUG(PX_BUG_PROPOSE_INTO_CHOSEN)) {
		/* the acceptor follows a newer leader: ours is stale, as on a REJECT */
		see_ballot(nd, m->ballot);
		become_follower(nd);
		return;
	}
	if (m->ballot != nd->ballot)
		return;
	nd->peer_heard[m->from] = nd->now;
	for (uint32_t i = 0; i < m->nent; i++)
		count_ack(nd, m->ent[i].slot, m->from);
	advance_commit(nd);
}

/* Our own records became durable: count our own promise and accepts. */
static void on_persisted(struct px_node *nd)
{
	if (nd->role == PX_CANDIDATE)
		check_phase1(nd);
	if (nd->role == PX_LEADER) {
		/* our own acceptances, now durable, count; the followers whose forwarded submissions
		 * they hold hear of them too (the learner rule above), so that they need not wait
		 * for our commit index. Others (and writes made here) cost no message. */
		uint64_t lo = nd->next_slot, hi = 0;
		for (uint64_t s = nd->commit + 1; s < nd->next_slot; s++) {
			struct slot *sl = slot_at(nd, s);
			if (!sl || !(sl->flags & S_PROPOSED) || sl->pseq > nd->persisted ||
			    (sl->acks & (1u << nd->cfg.id)))
				continue;
			count_ack(nd, s, nd->cfg.id);
			if ((sl->flags & S_CHOSEN) || (!sl->origins && nd->quorum <= 2))
				continue; /* chosen: our commit index tells them (finish) */
			sl->flags |= S_ANNOUNCE;
			if (s < lo)
				lo = s;
			hi = s;
		}
		for (uint32_t i = 0; hi && i < nd->cfg.n; i++) {
			uint32_t eo = nd->ents.n, k = 0;
			for (uint64_t s = lo; i != nd->cfg.id && s <= hi; s++) {
				struct slot *sl = slot_at(nd, s);
				struct px_entry a = {.slot = s};
				if (!sl || !(sl->flags & S_ANNOUNCE) ||
				    (nd->quorum <= 2 && !(sl->origins & (1u << i))))
					continue;
				if (vpush(&nd->ents, &a, sizeof(a))) {
					note(nd, -ENOMEM);
					break;
				}
				k++;
			}
			if (k) {
				struct px_out o = {.msg = {.type = PX_MSG_ACCEPTED,
							   .from = (uint8_t)nd->cfg.id,
							   .to = (uint8_t)i,
							   .ballot = nd->ballot,
							   .commit = nd->commit,
							   .nent = k}};
				push_out(nd, &o, eo, nd->subs.n);
			}
		}
		for (uint64_t s = lo; hi && s <= hi; s++) {
			struct slot *sl = slot_at(nd, s);
			if (sl)
				sl->flags &= (uint8_t)~S_ANNOUNCE;
		}
		advance_commit(nd);
	} else {
		learn_own(nd);
	}
}

/* ---- catch-up, snapshots, learners ---- */

static void on_catchup_req(struct px_node *nd, const struct px_msg *m)
{
	uint32_t eo = nd->ents.n, k = 0;
	uint64_t s;

	want_catchup(nd, m->from, m->commit);
	if (m->slot < nd->base) {
		if (nd->snapshot && (nd->snap_sent[m->from] == 0 ||
				     nd->now >= nd->snap_sent[m->from] + nd->cfg.election)) {
			struct px_snap_req r = {.to = m->from, .slot = nd->snapshot};
			nd->snap_sent[m->from] = nd->now ? nd->now : 1;
			note(nd, vpush(&nd->snaps, &r, sizeof(r)));
		}
		return;
	}
	for (s = m->slot; s <= nd->last && k < nd->cfg.catchup_max; s++) {
		struct slot *sl = slot_at(nd, s);
		struct px_entry e;
		if (!sl || !(sl->flags & S_CHOSEN))
			continue;
		e = (struct px_entry){.slot = s,
				      .ballot = sl->ballot,
				      .flags = PX_ENT_CHOSEN,
				      .len = sl->len,
				      .data = sl->val};
		if (vpush(&nd->ents, &e, sizeof(e))) {
			note(nd, -ENOMEM);
			nd->ents.n = eo;
			return;
		}
		k++;
	}
	{
		struct px_msg r = {.type = PX_MSG_CATCHUP,
				   .from = (uint8_t)nd->cfg.id,
				   .to = m->from,
				   .commit = nd->commit,
				   .slot = nd->base,
				   .nent = k};
		struct px_out o = {.msg = r};
		uint32_t so = nd->subs.n;
		push_out(nd, &o, eo, so);
	}
}

static void on_catchup(struct px_node *nd, const struct px_msg *m)
{
	uint64_t before = nd->commit;
	want_catchup(nd, m->from, m->commit);
	for (uint32_t i = 0; i < m->nent; i++)
		if (m->ent[i].flags & PX_ENT_CHOSEN)
			learn_chosen(nd, m->ent[i].slot, m->ent[i].ballot, m->ent[i].data,
				     m->ent[i].len);
	advance_commit(nd);
	if (nd->commit > before)
		nd->catchup_at = nd->now; /* keep going while it helps */
	maybe_graduate(nd);
}

static void on_hello(struct px_node *nd, const struct px_msg *m)
{
	if (nd->role == PX_LEARNER)
		return;
	send_simple(nd, PX_MSG_HELLO_REPLY, m->from, nd->promised, 0, 0, wait_seq(nd));
	/* a learner needs a leader whose ballot is above every promise it asked about: run phase 1
	 * again with a higher ballot */
	if (nd->role == PX_LEADER && m->aux == 1 && m->slot >= nd->ballot)
		start_election(nd);
}

static void on_hello_reply(struct px_node *nd, const struct px_msg *m)
{
	want_catchup(nd, m->from, m->commit);
	if (nd->role != PX_LEARNER || nd->hello_done)
		return;
	nd->hello_from |= (uint16_t)(1u << m->from);
	if (m->ballot > nd->hello_ballot)
		nd->hello_ballot = m->ballot;
	see_ballot(nd, m->ballot);
	if (popcount16(nd->hello_from) >= (int)nd->quorum)
		nd->hello_done = true;
	maybe_graduate(nd);
}

/* Would we take part in ballot m->ballot? Only if no leader is heard from (or it asks itself). */
static void on_prevote(struct px_node *nd, const struct px_msg *m)
{
	bool grant = nd->role != PX_LEARNER && m->ballot > nd->promised;
	if (nd->role == PX_FOLLOWER && nd->leader != NONE && nd->leader != m->from &&
	    nd->now < nd->heard_leader + nd->cfg.election)
		grant = false;
	if (nd->role == PX_LEADER && has_quorum(nd))
		grant = false;
	if (nd->role == PX_LEARNER)
		return;
	send_simple(nd, PX_MSG_PREVOTE_REPLY, m->from, m->ballot, 0, grant, 0);
}

static void on_prevote_reply(struct px_node *nd, const struct px_msg *m)
{
	if (!nd->prevoting || m->ballot != nd->prevote_ballot || !m->aux)
		return;
	nd->prevotes |= (uint16_t)(1u << m->from);
	if (popcount16(nd->prevotes) + 1 >= (int)nd->quorum)
		start_election(nd);
}

/*
 * The host's connection to NODE ended. When NODE is the leader this follower follows, its process
 * has probably died (its connections then end at once, while a partition or a paused process only
 * goes silent): campaign after one to two heartbeats instead of a whole election timeout, and stop
 * vouching for that leader (leader stickiness), so that the other followers, who saw its
 * connections end too, get this node's pre-vote and promise. Only timing changes, never safety. A
 * leader that is in fact alive (only this link broke) keeps its place: pre-vote needs a majority
 * that no longer hears it, and its next ACCEPT or heartbeat here makes it the known leader again
 * (set_leader, which also re-forwards the submissions waiting here; the leader drops duplicates).
 */
static void on_peer_down(struct px_node *nd, uint32_t node)
{
	uint64_t soon;

	if (node >= nd->cfg.n || node == nd->cfg.id || nd->role != PX_FOLLOWER ||
	    nd->leader != node)
		return;
	nd->leader = NONE; /* no longer vouched for; submissions wait for the next leader */
	soon = nd->now + nd->cfg.heartbeat + rnd_next(nd) % (nd->cfg.heartbeat + 1);
	if (soon < nd->election_at)
		nd->election_at = soon;
}

static void on_submit_msg(struct px_node *nd, const struct px_msg *m)
{
	if (nd->role != PX_LEADER)
		return; /* the submitter re-forwards to the leader it learns */
	if (m->nsub)
		nd->fwd_mask |= (uint16_t)(1u << m->from);
	for (uint32_t i = 0; i < m->nsub; i++) {
		if (nd->qcount >= nd->cfg.max_pending)
			break;
		if (q_push(nd, m->sub[i].client, m->sub[i].seq, m->sub[i].data, m->sub[i].len)) {
			note(nd, -ENOMEM);
			break;
		}
	}
}

static void forward_pending(struct px_node *nd, bool all)
{
	struct px_sub buf[64];
	uint32_t k = 0;

	if (nd->leader == NONE || nd->leader == nd->cfg.id)
		return;
	for (uint32_t i = nd->phead; i != NONE; i = nd->pool[i].next) {
		struct pend *p = &nd->pool[i];
		if (p->queued && !all)
			continue;
		p->queued = 1;
		buf[k++] = (struct px_sub){
		    .client = p->client, .seq = p->seq, .len = p->len, .data = pend_bytes(p)};
		if (k == 64) {
			struct px_msg m = {.type = PX_MSG_SUBMIT, .to = (uint8_t)nd->leader};
			emit(nd, m, NULL, 0, buf, k, 0);
			k = 0;
		}
	}
	if (k) {
		struct px_msg m = {.type = PX_MSG_SUBMIT, .to = (uint8_t)nd->leader};
		emit(nd, m, NULL, 0, buf, k, 0);
	}
}

/* Go-back-N: one of our submissions was chosen behind a gap, so every pending one goes again, in
 * order from the first unapplied one (the leader queues those not queued or in flight). */
static void resend_pending(struct px_node *nd)
{
	if (nd->role == PX_LEADER) {
		for (uint32_t i = nd->phead; i != NONE; i = nd->pool[i].next) {
			struct pend *p = &nd->pool[i];
			if (q_push(nd, p->client, p->seq, pend_bytes(p), p->len)) {
				note(nd, -ENOMEM);
				return;
			}
			p->queued = 1;
		}
		return;
	}
	forward_pending(nd, true);
	nd->retry_at = nd->now + nd->cfg.retry;
}

static void on_submit(struct px_node *nd, const struct px_sub *subs, uint32_t nsubs)
{
	/* the first pending submission is forwarded below: the retry timer counts from now (a
	 * timer left over from an idle time would forward it a second time at once) */
	if (nd->npend == 0)
		nd->retry_at = nd->now + nd->cfg.retry;
	for (uint32_t i = 0; i < nsubs; i++) {
		const struct px_sub *s = &subs[i];
		uint32_t h, idx;
		struct pend *p;
		int err = 0;
		/* over the limit, the submission is refused but its seq stays taken, as a no-op */
		bool refuse = nd->npend - nd->nnoop >= nd->cfg.max_pending;

		if (pend_find(nd, s->client, s->seq, &h) != NONE)
			continue; /* already pending */
		if (nd->pool_free == NONE || nd->pool_free >= nd->pool_cap) {
			if (pend_grow(nd)) {
				ack(nd, s->client, s->seq, 0, -ENOMEM);
				note(nd, -ENOMEM);
				continue;
			}
			pend_find(nd, s->client, s->seq, &h);
		}
		idx = nd->pool_free;
		p = &nd->pool[idx];
		nd->pool_free = p->next;
		p->client = s->client;
		p->seq = s->seq;
		p->len = refuse ? 0 : s->len;
		p->data = NULL;
		p->noop = 0;
		if (refuse) {
		} else if (s->len <= PEND_INLINE) {
			if (s->len)
				memcpy(p->inl, s->data, s->len);
		} else {
			p->data = dup_bytes(s->data, s->len, &err);
		}
		p->deadline =
		    nd->cfg.submit_timeout ? nd->now + nd->cfg.submit_timeout : UINT64_MAX;
		p->queued = 0;
		p->next = NONE;
		p->prev = nd->ptail;
		if (nd->ptail != NONE)
			nd->pool[nd->ptail].next = idx;
		else
			nd->phead = idx;
		nd->ptail = idx;
		nd->ht[h] = idx;
		nd->npend++;
		if (nd->pexp == NONE)
			nd->pexp = idx;
		if (err || refuse) {
			pend_to_noop(nd, idx);
			ack(nd, s->client, s->seq, 0, err ? -ENOMEM : -ENOBUFS);
		}
		if (nd->role == PX_LEADER) {
			if (q_push(nd, p->client, p->seq, pend_bytes(p), p->len))
				note(nd, -ENOMEM);
			else
				p->queued = 1;
		}
	}
	if (nd->role != PX_LEADER)
		forward_pending(nd, false);
}

static void on_snapshot_installed(struct px_node *nd, uint64_t n, const struct px_filter *filter)
{
	if (n <= nd->applied)
		return;
	if (nd->role == PX_LEADER || nd->role == PX_CANDIDATE)
		become_follower(nd);
	if (nd->base <= n) {
		if (n + 1 - nd->base >= nd->cap) {
			/* every held slot is covered: start an empty ring at n + 1 */
			for (uint64_t s = nd->base; s < nd->base + nd->cap; s++) {
				struct slot *sl = &nd->ring[s & (nd->cap - 1)];
				defer_free(nd, sl->val);
				memset(sl, 0, sizeof(*sl));
			}
			nd->base = n + 1;
		} else {
			log_truncate(nd, n + 1);
		}
	}
	if (nd->last < n)
		nd->last = n;
	if (nd->commit < n) {
		nd->commit = n;
		nd->rec_commit = true;
	}
	nd->applied = n;
	nd->snapshot = n;
	if (filter && filter->stamp > nd->stamp)
		nd->stamp = filter->stamp;
	advance_commit(nd);
	/* our submissions may be inside the snapshot: its filter tells */
	for (uint32_t idx = nd->phead, next; idx != NONE; idx = next) {
		struct pend *p = &nd->pool[idx];
		int seen = filter ? px_filter_seen(filter, p->client, p->seq) : -1;
		uint32_t h;
		next = p->next;
		if (seen == 0)
			continue;
		if (!p->noop)
			ack(nd, p->client, p->seq, n, seen > 0 ? PX_ACK_BEFORE : -ETIMEDOUT);
		pend_find(nd, p->client, p->seq, &h);
		pend_remove(nd, idx, h);
	}
	maybe_graduate(nd);
}

static void on_snapshot_taken(struct px_node *nd, uint64_t n, struct px_update *u)
{
	uint64_t keep = nd->cfg.keep_after_snapshot;
	if (n > nd->applied)
		return; /* the host cannot have a snapshot of what it did not apply */
	uint64_t t = n + 1 > keep ? n + 1 - keep : 0; /* the new base: slots below it go */

	if (n > nd->snapshot)
		nd->snapshot = n;
	if (nd->cfg.keep_bytes_after_snapshot) {
		/* keep the newest slots below the snapshot while their values fit the budget */
		uint64_t bytes = 0, s = n + 1;
		while (s > t && s > nd->base) {
			const struct slot *sl = slot_at_c(nd, s - 1);
			bytes += sl ? sl->len : 0;
			if (bytes > nd->cfg.keep_bytes_after_snapshot)
				break;
			s--;
		}
		if (s > t)
			t = s;
	}
	if (t > nd->base)
		log_truncate(nd, t);
	u->truncate = n;
}

/* ---- timers ---- */

static void heartbeat(struct px_node *nd)
{
	/* one ACCEPT per peer: every slot in flight that peer has not acknowledged */
	for (uint32_t i = 0; i < nd->cfg.n; i++) {
		uint32_t eo = nd->ents.n, k = 0, so = nd->subs.n;
		struct px_out o = {0};
		if (i == nd->cfg.id)
			continue;
		for (uint64_t s = nd->commit + 1; s < nd->next_slot; s++) {
			struct slot *sl = slot_at(nd, s);
			struct px_entry e;
			if (!sl || !(sl->flags & S_PROPOSED) || (sl->acks & (1u << i)))
				continue;
			e = (struct px_entry){
			    .slot = s, .ballot = sl->ballot, .len = sl->len, .data = sl->val};
			if (vpush(&nd->ents, &e, sizeof(e))) {
				note(nd, -ENOMEM);
				break;
			}
			k++;
		}
		o.msg = (struct px_msg){.type = PX_MSG_ACCEPT,
					.from = (uint8_t)nd->cfg.id,
					.to = (uint8_t)i,
					.ballot = nd->ballot,
					.commit = nd->commit,
					.slot = nd->lstart,
					.nent = k};
		push_out(nd, &o, eo, so);
	}
	nd->heartbeat_at = nd->now + nd->cfg.heartbeat;
	nd->bcast_sent = true;
	nd->nbcast = 0; /* those proposals are in it */
}

static uint32_t catchup_target(const struct px_node *nd)
{
	uint32_t best = NONE;
	uint64_t bc = nd->commit;
	if (nd->leader != NONE && nd->leader != nd->cfg.id &&
	    nd->peer_commit[nd->leader] > nd->commit)
		return nd->leader;
	for (uint32_t i = 0; i < nd->cfg.n; i++)
		if (i != nd->cfg.id && nd->peer_commit[i] > bc) {
			bc = nd->peer_commit[i];
			best = i;
		}
	return best;
}

static void timers(struct px_node *nd)
{
	uint64_t now = nd->now;
	uint32_t t;

	switch (nd->role) {
	case PX_LEARNER:
		if (!nd->hello_done && now >= nd->election_at) {
			for (uint32_t i = 0; i < nd->cfg.n; i++)
				if (i != nd->cfg.id)
					send_simple(nd, PX_MSG_HELLO, i, 0, 0, 0, 0);
			nd->election_at = now + nd->cfg.heartbeat;
		} else if (nd->hello_done && now >= nd->election_at) {
			/* the known leader's ballot is too old to vouch for us: ask it to re-run
			 * phase 1 (HELLO with aux 1, slot = the ballot we need to exceed) */
			if (nd->leader != NONE && nd->leader_ballot <= nd->hello_ballot)
				send_simple(nd, PX_MSG_HELLO, nd->leader, 0, nd->hello_ballot, 1,
					    0);
			nd->election_at = now + nd->cfg.election;
		}
		break;
	case PX_FOLLOWER:
	case PX_CANDIDATE:
		if (now >= nd->election_at)
			start_prevote(nd);
		break;
	case PX_LEADER:
		if (now >= nd->heartbeat_at && now >= nd->leader_since + nd->cfg.election &&
		    !has_quorum(nd)) {
			/* check-quorum: step down when a majority has not answered lately */
			become_follower(nd);
			break;
		}
		if (now >= nd->heartbeat_at)
			heartbeat(nd);
		break;
	}
	/* pending submissions: fail the expired ones, re-forward the others */
	while (nd->pexp != NONE && nd->pool[nd->pexp].deadline <= now) {
		struct pend *p = &nd->pool[nd->pexp];
		ack(nd, p->client, p->seq, 0, -ETIMEDOUT);
		pend_to_noop(nd, nd->pexp);
	}
	if (nd->npend && now >= nd->retry_at && nd->role != PX_LEADER) {
		forward_pending(nd, true);
		nd->retry_at = now + nd->cfg.retry;
	}
	/* catch-up: ask whoever knows more chosen slots than we do */
	t = catchup_target(nd);
	if (t != NONE && now >= nd->catchup_at) {
		send_simple(nd, PX_MSG_CATCHUP_REQ, t, 0, nd->commit + 1, 0, 0);
		nd->catchup_at = now + nd->cfg.retry;
	}
}

/* The leader proposes queued submissions while its window has room. */
static void flush(struct px_node *nd)
{
	if (nd->role != PX_LEADER)
		return;
	while (nd->qcount && nd->inflight < nd->cfg.window) {
		uint32_t len;
		uint8_t *v;
		if (!slot_get(nd, nd->next_slot))
			break; /* the log is full: the host must snapshot */
		v = q_cut(nd, &len);
		if (!v)
			break;
		propose(nd, nd->next_slot, v, len);
		if (slot_at(nd, nd->next_slot))
			slot_at(nd, nd->next_slot)->origins = nd->fwd_mask;
		nd->next_slot++;
	}
	if (!nd->qcount)
		nd->fwd_mask = 0;
}

/* Deliver newly chosen slots in order; acknowledge our submissions found in them. */
static void deliver(struct px_node *nd)
{
	bool gap = false;

	while (nd->applied < nd->commit) {
		uint64_t s = nd->applied + 1;
		struct slot *sl = slot_at(nd, s);
		struct px_apply a;
		if (!sl)
			break;
		a = (struct px_apply){.slot = s, .value = sl->val, .len = sl->len};
		see_stamp(nd, sl->val, sl->len);
		if (vpush(&nd->applies, &a, sizeof(a))) {
			note(nd, -ENOMEM);
			break;
		}
		nd->applied = s;
		if (nd->queued.n || nd->npend) {
			struct px_batch_iter it;
			struct px_sub sub;
			if (px_batch_iter_init(&it, sl->val, sl->len))
				continue;
			while (px_batch_next(&it, &sub) == 1) {
				uint32_t h, h2, idx;
				if (nd->queued.n)
					kset_del(&nd->queued, sub.client, sub.seq);
				if (!nd->npend)
					continue;
				idx = pend_find(nd, sub.client, sub.seq, &h);
				if (idx == NONE)
					continue;
				if (sub.seq > 1 && pend_find(nd, sub.client, sub.seq - 1, &h2) != NONE) {
					/* an earlier seq of the client is not applied yet: every
					 * replica skipped this one (a gap); send again from it */
					gap = true;
					continue;
				}
				if (!nd->pool[idx].noop)
					ack(nd, sub.client, sub.seq, s, PX_ACK_CHOSEN);
				pend_remove(nd, idx, h);
			}
		}
	}
	if (gap)
		resend_pending(nd);
}

static uint64_t deadline(const struct px_node *nd)
{
	uint64_t d = UINT64_MAX;
#define MIN(x)                                                                                     \
	do {                                                                                       \
		if ((x) < d)                                                                       \
			d = (x);                                                                   \
	} while (0)
	if (nd->role == PX_LEADER) {
		MIN(nd->heartbeat_at);
	} else {
		MIN(nd->election_at);
	}
	if (nd->pexp != NONE)
		MIN(nd->pool[nd->pexp].deadline);
	if (nd->npend && nd->role != PX_LEADER)
		MIN(nd->retry_at);
	if (catchup_target(nd) != NONE)
		MIN(nd->catchup_at);
#undef MIN
	return d < nd->now ? nd->now : d;
}

/* ---- the update ---- */

static void begin(struct px_node *nd)
{
	for (uint32_t i = 0; i < nd->dead.n; i++)
		free(((void **)nd->dead.v)[i]);
	nd->dead.n = 0;
	nd->recs.n = nd->outs.n = nd->eoff.n = nd->soff.n = 0;
	nd->ents.n = nd->subs.n = nd->applies.n = nd->acks.n = nd->snaps.n = 0;
	nd->rec_promise = nd->rec_init = nd->rec_commit = false;
	nd->nbcast = 0;
	nd->bcast_sent = false;
	nd->err = 0;
}

static void finish(struct px_node *nd, struct px_update *u)
{
	uint64_t truncate = u->truncate; /* set by on_snapshot_taken */
	struct px_out *outs;

	/* the leader's new proposals (and news of a new commit index) go to every peer */
	if (nd->role == PX_LEADER && (nd->nbcast || (nd->rec_commit && !nd->bcast_sent))) {
		uint32_t eo = nd->ents.n;
		for (uint32_t i = 0; i < nd->nbcast; i++)
			if (vpush(&nd->ents, &nd->bcast[i], sizeof(nd->bcast[i]))) {
				note(nd, -ENOMEM);
				nd->ents.n = eo;
				break;
			}
		for (uint32_t i = 0; i < nd->cfg.n; i++) {
			struct px_out o = {0};
			uint32_t so = nd->subs.n;
			if (i == nd->cfg.id)
				continue;
			o.msg = (struct px_msg){.type = PX_MSG_ACCEPT,
						.from = (uint8_t)nd->cfg.id,
						.to = (uint8_t)i,
						.ballot = nd->ballot,
						.commit = nd->commit,
						.slot = nd->lstart,
						.nent = nd->ents.n - eo};
			push_out(nd, &o, eo, so);
		}
	}
	memset(u, 0, sizeof(*u));
	u->truncate = truncate;
	if (nd->recs.n || nd->rec_promise || nd->rec_init || nd->rec_commit) {
		u->persist_seq = ++nd->pseq;
		u->promise_changed = nd->rec_promise;
		u->promised = nd->promised;
		u->initialised_changed = nd->rec_init;
		u->accepted = nd->recs.v;
		u->naccepted = nd->recs.n;
		u->commit_changed = nd->rec_commit;
		u->commit = nd->commit;
	}
	outs = nd->outs.v;
	for (uint32_t i = 0; i < nd->outs.n; i++) {
		uint32_t eo = ((uint32_t *)nd->eoff.v)[i], so = ((uint32_t *)nd->soff.v)[i];
		outs[i].msg.ent = outs[i].msg.nent ? (struct px_entry *)nd->ents.v + eo : NULL;
		outs[i].msg.sub = outs[i].msg.nsub ? (struct px_sub *)nd->subs.v + so : NULL;
	}
	u->msgs = outs;
	u->nmsgs = nd->outs.n;
	u->apply = nd->applies.v;
	u->napply = nd->applies.n;
	u->acks = nd->acks.v;
	u->nacks = nd->acks.n;
	u->snaps = nd->snaps.v;
	u->nsnaps = nd->snaps.n;
	u->deadline = deadline(nd);
}

int px_step(struct px_node *nd, const struct px_event *ev, struct px_update *u)
{
	const struct px_msg *m;

	if (nd->failed) {
		memset(u, 0, sizeof(*u));
		u->deadline = UINT64_MAX;
		return -ENOTRECOVERABLE;
	}
	begin(nd);
	u->truncate = 0;
	if (ev->now > nd->now)
		nd->now = ev->now;
	if (ev->wall)
		nd->wall = ev->wall;
	nd->rnd ^= ev->rand;
	switch (ev->type) {
	case PX_EV_RECEIVE:
		m = ev->msg;
		if (!m || m->from >= nd->cfg.n || m->from == nd->cfg.id || m->to != nd->cfg.id) {
			memset(u, 0, sizeof(*u));
			u->deadline = deadline(nd);
			return -EINVAL;
		}
		switch (m->type) {
		case PX_MSG_PREPARE:
			on_prepare(nd, m);
			break;
		case PX_MSG_PROMISE:
			on_promise(nd, m);
			break;
		case PX_MSG_ACCEPT:
			on_accept(nd, m);
			break;
		case PX_MSG_ACCEPTED:
			on_accepted(nd, m);
			break;
		case PX_MSG_REJECT:
			on_reject(nd, m);
			break;
		case PX_MSG_CATCHUP_REQ:
			on_catchup_req(nd, m);
			break;
		case PX_MSG_CATCHUP:
			on_catchup(nd, m);
			break;
		case PX_MSG_SUBMIT:
			on_submit_msg(nd, m);
			break;
		case PX_MSG_HELLO:
			on_hello(nd, m);
			break;
		case PX_MSG_HELLO_REPLY:
			on_hello_reply(nd, m);
			break;
		case PX_MSG_PREVOTE:
			on_prevote(nd, m);
			break;
		case PX_MSG_PREVOTE_REPLY:
			on_prevote_reply(nd, m);
			break;
		default:
			break;
		}
		break;
	case PX_EV_TICK:
		break;
	case PX_EV_PERSISTED:
		if (ev->seq > nd->persisted)
			nd->persisted = ev->seq > nd->pseq ? nd->pseq : ev->seq;
		on_persisted(nd);
		break;
	case PX_EV_SUBMIT:
		on_submit(nd, ev->subs, ev->nsubs);
		break;
	case PX_EV_SNAPSHOT_INSTALLED:
		on_snapshot_installed(nd, ev->slot, ev->filter);
		break;
	case PX_EV_SNAPSHOT_TAKEN:
		on_snapshot_taken(nd, ev->slot, u);
		break;
	case PX_EV_PEER_DOWN:
		on_peer_down(nd, ev->node);
		break;
	default:
		memset(u, 0, sizeof(*u));
		u->deadline = deadline(nd);
		return -EINVAL;
	}
	timers(nd);
	flush(nd);
	deliver(nd);
	finish(nd, u);
	if (nd->err) {
		/* The state in memory may be ahead of what this update would persist: drop both,
		 * as a crash would. */
		nd->failed = true;
		memset(u, 0, sizeof(*u));
		u->deadline = UINT64_MAX;
	}
	return nd->err;
}

/* ---- lifecycle ---- */

int px_init(struct px_node **out, const struct px_config *cfg, const struct px_boot *boot,
	    uint64_t now, uint64_t rand)
{
	struct px_node *nd;
	int rv = -ENOMEM;

	if (!cfg || cfg->n < 1 || cfg->n > PX_MAX_NODES || !(cfg->n & 1) || cfg->id >= cfg->n ||
	    cfg->heartbeat == 0 || cfg->election == 0)
		return -EINVAL;
	nd = px__calloc(1, sizeof(*nd));
	if (!nd)
		return -ENOMEM;
	nd->cfg = *cfg;
	if (!nd->cfg.retry)
		nd->cfg.retry = nd->cfg.election;
	if (!nd->cfg.window)
		nd->cfg.window = 8;
	if (!nd->cfg.max_batch)
		nd->cfg.max_batch = 100;
	if (!nd->cfg.max_batch_bytes)
		nd->cfg.max_batch_bytes = 1u << 20;
	if (!nd->cfg.max_pending)
		nd->cfg.max_pending = 65536;
	if (!nd->cfg.catchup_max)
		nd->cfg.catchup_max = 64;
	nd->quorum = cfg->n / 2 + 1;
	nd->now = now;
	nd->rnd = rand;
	nd->leader = NONE;
	nd->phead = nd->ptail = nd->pexp = NONE;
	nd->pool_free = NONE;
	nd->cap = 64;
	nd->ring = px__calloc(nd->cap, sizeof(*nd->ring));
	if (!nd->ring)
		goto err;
	nd->initialised = boot ? boot->initialised : true;
	nd->base = 1;
	nd->last = 0;
	if (boot) {
		uint64_t top;
		nd->promised = boot->promised;
#ifdef QFS_TEST_HOOKS
		if (BUG(PX_BUG_FORGET_PROMISE))
			nd->promised = 0;
#endif
		nd->snapshot = boot->snapshot;
		nd->stamp = boot->stamp;
		nd->base = boot->snapshot + 1;
		nd->last = boot->snapshot;
		nd->commit = boot->snapshot;
		top = boot->commit > boot->applied ? boot->commit : boot->applied;
		for (uint32_t i = 0; i < boot->nentries; i++) {
			const struct px_entry *e = &boot->entries[i];
			struct slot *sl;
			int err = 0;
			if (e->slot <= boot->snapshot)
				continue;
			sl = slot_get(nd, e->slot);
			if (!sl) {
				rv = nd->err ? nd->err : -EINVAL;
				goto err;
			}
			free(sl->val);
			sl->val = dup_bytes(e->data, e->len, &err);
			if (err)
				goto err;
			sl->len = e->len;
			sl->ballot = e->ballot;
			sl->flags = S_HAVE;
			see_stamp(nd, sl->val, sl->len);
			if ((e->flags & PX_ENT_CHOSEN) || e->slot <= top)
				sl->flags |= S_CHOSEN;
			if (e->slot > nd->last)
				nd->last = e->slot;
			see_ballot(nd, e->ballot);
		}
		advance_commit(nd);
		nd->applied = boot->applied > boot->snapshot ? boot->applied : boot->snapshot;
		if (nd->applied > nd->commit)
			nd->applied = nd->commit;
		nd->rec_commit = false;
	}
	see_ballot(nd, nd->promised);
	nd->role = nd->initialised ? PX_FOLLOWER : PX_LEARNER;
	nd->election_at = nd->initialised ? now + election_timeout(nd) : now;
	*out = nd;
	return 0;
err:
	px_free(nd);
	return rv;
}

void px_free(struct px_node *nd)
{
	if (!nd)
		return;
	struct vec *vs[] = {&nd->recs, &nd->outs,    &nd->eoff, &nd->soff, &nd->ents,
			    &nd->subs, &nd->applies, &nd->acks, &nd->snaps};
	for (uint32_t i = 0; i < nd->dead.n; i++)
		free(((void **)nd->dead.v)[i]);
	free(nd->dead.v);
	for (size_t i = 0; i < sizeof(vs) / sizeof(vs[0]); i++)
		free(vs[i]->v);
	if (nd->ring)
		for (uint64_t i = 0; i < nd->cap; i++)
			free(nd->ring[i].val);
	free(nd->ring);
	recov_free(nd);
	for (uint32_t i = nd->phead; i != NONE; i = nd->pool[i].next)
		free(nd->pool[i].data);
	free(nd->pool);
	free(nd->ht);
	free(nd->q);
	kset_free(&nd->queued);
	free(nd->bcast);
	free(nd);
}

enum px_role px_role(const struct px_node *nd)
{
	return nd->role;
}

uint64_t px_ballot(const struct px_node *nd)
{
	return nd->promised;
}

uint32_t px_leader(const struct px_node *nd)
{
	return nd->leader;
}

uint64_t px_commit(const struct px_node *nd)
{
	return nd->commit;
}

uint64_t px_applied(const struct px_node *nd)
{
	return nd->applied;
}

uint64_t px_log_base(const struct px_node *nd)
{
	return nd->base;
}

uint64_t px_leader_commit(const struct px_node *nd)
{
	if (nd->role == PX_LEADER)
		return nd->commit;
	if (nd->leader == NONE || nd->leader >= nd->cfg.n)
		return 0;
	return nd->peer_commit[nd->leader] > nd->commit ? nd->peer_commit[nd->leader] : nd->commit;
}

uint32_t px_pending(const struct px_node *nd)
{
	return nd->npend;
}

int px_chosen(const struct px_node *nd, uint64_t slot, const uint8_t **value, uint32_t *len)
{
	const struct slot *sl = slot_at_c(nd, slot);
	if (!sl || !(sl->flags & S_CHOSEN))
		return -ENOENT;
	*value = sl->val;
	*len = sl->len;
	return 0;
}
