/*
 * sim: the deterministic simulated cluster (see sim.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consensus/px_node.h"
#include "consensus/px_batch.h"
#include "tests/consensus/sim.h"

#define CLIENTS 2
#define SIM_EPOCH_MS 1795830000000ull /* the wall clock at virtual time 0 */

bool sim_end_to_end;
#define NONE UINT32_MAX

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "sim: out of memory\n");
		abort();
	}
	return p;
}

static void *xcalloc(size_t n, size_t m)
{
	void *p = calloc(n ? n : 1, m ? m : 1);
	if (!p) {
		fprintf(stderr, "sim: out of memory\n");
		abort();
	}
	return p;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		fprintf(stderr, "sim: out of memory\n");
		abort();
	}
	return p;
}

static uint8_t *xdup(const uint8_t *p, uint32_t len)
{
	uint8_t *d;
	if (!len)
		return NULL;
	d = xmalloc(len);
	memcpy(d, p, len);
	return d;
}

static uint64_t fnv(uint64_t h, const void *p, size_t len)
{
	const uint8_t *b = p;
	if (!h)
		h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static uint64_t vhash(const uint8_t *p, uint32_t len)
{
	return fnv(fnv(0, &len, sizeof(len)), p, len);
}

/* ---- events ---- */

enum { E_MSG = 1, E_PERSIST, E_SNAP, E_DOWN };

struct snap {
	uint64_t slot;
	uint64_t chain;
	uint64_t stamp; /* the last batch stamp applied */
	struct px_filter filter;
};

struct event {
	uint64_t at, order;
	int type;
	uint32_t from, to, boot;
	uint64_t seq;
	uint8_t *buf;
	uint32_t len;
	struct snap *snap;
};

struct dslot {
	uint64_t ballot;
	uint32_t flags, len;
	uint8_t *data;
	bool have;
};

struct disk {
	bool initialised;
	uint64_t promised, commit;
	struct dslot *slots; /* indexed by slot */
	uint64_t cap;
	struct snap snap;
};

struct pwrite {
	uint64_t seq;
	bool promise, init, commit_set;
	uint64_t promised, commit;
	struct px_entry *recs;
	uint32_t nrec;
};

struct held {
	uint64_t wait;
	uint32_t to;
	uint8_t *buf;
	uint32_t len;
};

struct node {
	struct px_node *px;
	bool up;
	uint32_t boot, min_boot;
	uint64_t deadline;
	uint64_t durable; /* persist seq of this boot that is on disk */
	uint64_t persist_tail;
	bool crash_after_persist;
	struct disk disk;
	struct pwrite *pw;
	uint32_t npw, pwcap;
	struct held *held;
	uint32_t nheld, heldcap;
	/* the state machine */
	uint64_t applied, chain;
	uint64_t stamp;	 /* the last batch stamp applied: stamps never decrease along the log */
	int64_t skew;	 /* this boot's wall clock minus the true time (ms), up to +-2 s */
	struct px_filter filter;
	uint64_t next_seq[CLIENTS]; /* per client C of this node, over all its boots (op index) */
	uint64_t *bbase;	    /* [boot * CLIENTS + c]: next_seq[c] when boot began */
	uint32_t nbbase;
	uint32_t same_time_steps;
	uint64_t last_step_at;
	enum px_role was_role;
	uint64_t learnt; /* slots up to here were checked when this node learnt them chosen */
	/* SIGSTOP until this time: nothing reaches the core before; what arrived meanwhile (its
	 * messages in order, its disk's completions) is handled at that time, before its timer */
	uint64_t paused_until;
	/* and then, until stale_until, its host still hands it the time it was frozen at: an event
	 * loop stopped mid-iteration finishes that iteration (its sockets now full of what came
	 * meanwhile) with the clock it read before */
	uint64_t paused_at, stale_until;
};

struct trk {
	uint64_t ballot, vh;
	uint16_t mask;
};

struct ref {
	bool set, chosen;
	uint64_t vh, chain, chosen_vh;
	struct trk *t;
	uint32_t nt;
};

enum { OP_NONE = 0, OP_SUBMITTED, OP_ACKED, OP_STALE, OP_FAILED, OP_UNKNOWN };

struct op {
	uint8_t state;
	bool after_heal;
	bool noop;		/* its seq was taken by a no-op (px_batch.h), not by the op */
	uint64_t applied_slot;	/* first slot that applied it (or its no-op) on any replica */
};

struct sim {
	struct sim_cfg cfg;
	uint64_t seed, rnd, now, order;
	uint32_t quorum;
	struct node nodes[PX_MAX_NODES];
	bool link[PX_MAX_NODES][PX_MAX_NODES];
	uint32_t drop, dup, slow;
	bool healed;
	struct event *heap;
	uint32_t nheap, heapcap;
	struct ref *refs;
	uint64_t nrefs;
	struct op *ops[PX_MAX_NODES * CLIENTS];
	uint64_t opcap[PX_MAX_NODES * CLIENTS];
	struct px_msg_scratch scratch;
	uint8_t *ebuf;
	size_t ebufcap;
	char fail[512];
	struct sim_stats st;
	bool trace;
};

static uint64_t rnd(struct sim *s)
{
	uint64_t z = (s->rnd += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rrange(struct sim *s, uint64_t lo, uint64_t hi)
{
	return hi <= lo ? lo : lo + rnd(s) % (hi - lo + 1);
}

static bool chance(struct sim *s, uint32_t permille)
{
	return permille && rnd(s) % 1000 < permille;
}

static void violation(struct sim *s, const char *fmt, ...)
{
	va_list ap;
	size_t l;
	if (s->fail[0])
		return;
	l = (size_t)snprintf(s->fail, sizeof(s->fail), "t=%llu: ", (unsigned long long)s->now);
	va_start(ap, fmt);
	vsnprintf(s->fail + l, sizeof(s->fail) - l, fmt, ap);
	va_end(ap);
}

static void trace(struct sim *s, const char *fmt, ...)
{
	va_list ap;
	if (!s->trace)
		return;
	fprintf(stderr, "[%6llu] ", (unsigned long long)s->now);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void heap_push(struct sim *s, struct event e)
{
	uint32_t i;
	e.order = s->order++;
	if (s->nheap == s->heapcap) {
		s->heapcap = s->heapcap ? s->heapcap * 2 : 256;
		s->heap = xrealloc(s->heap, sizeof(*s->heap) * s->heapcap);
	}
	i = s->nheap++;
	while (i > 0) {
		uint32_t p = (i - 1) / 2;
		struct event *pe = &s->heap[p];
		if (pe->at < e.at || (pe->at == e.at && pe->order < e.order))
			break;
		s->heap[i] = *pe;
		i = p;
	}
	s->heap[i] = e;
}

static bool ev_less(const struct event *a, const struct event *b)
{
	return a->at < b->at || (a->at == b->at && a->order < b->order);
}

static struct event heap_pop(struct sim *s)
{
	struct event top = s->heap[0], last = s->heap[--s->nheap];
	uint32_t i = 0;
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;
		const struct event *me = &last;
		if (l < s->nheap && ev_less(&s->heap[l], me)) {
			m = l;
			me = &s->heap[l];
		}
		if (r < s->nheap && ev_less(&s->heap[r], me))
			m = r;
		if (m == i)
			break;
		s->heap[i] = s->heap[m];
		i = m;
	}
	if (s->nheap)
		s->heap[i] = last;
	return top;
}

static void snap_free(struct snap *sn)
{
	px_filter_free(&sn->filter);
	sn->slot = sn->chain = 0;
}

static void snap_copy(struct snap *dst, const struct snap *src)
{
	dst->slot = src->slot;
	dst->chain = src->chain;
	dst->stamp = src->stamp;
	if (px_filter_copy(&dst->filter, &src->filter)) {
		fprintf(stderr, "sim: out of memory\n");
		abort();
	}
}

static void event_free(struct event *e)
{
	free(e->buf);
	if (e->snap) {
		snap_free(e->snap);
		free(e->snap);
	}
}

/* ---- the reference and the checker ---- */

static struct ref *ref_at(struct sim *s, uint64_t slot)
{
	if (slot >= s->nrefs) {
		uint64_t nc = s->nrefs ? s->nrefs : 256;
		while (nc <= slot)
			nc *= 2;
		s->refs = xrealloc(s->refs, sizeof(*s->refs) * nc);
		memset(s->refs + s->nrefs, 0, sizeof(*s->refs) * (nc - s->nrefs));
		s->nrefs = nc;
	}
	if (slot > s->st.max_slot)
		s->st.max_slot = slot;
	return &s->refs[slot];
}

/* Client C of node I in boot B: a new client (a new incarnation) every boot, seqs from 1. */
static uint64_t client_id(uint32_t i, uint32_t boot, uint32_t c)
{
	return PX_CLIENT(i + 1, boot, c);
}

/* Op number G (over all boots) of client C of node I. */
static struct op *op_g(struct sim *s, uint32_t i, uint32_t c, uint64_t seq)
{
	uint32_t ci = i * CLIENTS + c;
	if (i >= PX_MAX_NODES || c >= CLIENTS)
		return NULL;
	if (seq >= s->opcap[ci]) {
		uint64_t nc = s->opcap[ci] ? s->opcap[ci] : 64;
		while (nc <= seq)
			nc *= 2;
		s->ops[ci] = xrealloc(s->ops[ci], sizeof(struct op) * nc);
		memset(s->ops[ci] + s->opcap[ci], 0, sizeof(struct op) * (nc - s->opcap[ci]));
		s->opcap[ci] = nc;
	}
	return &s->ops[ci][seq];
}

/* Submission (client, seq) as the op it is, or NULL if no such client ever existed. */
static struct op *op_at(struct sim *s, uint64_t client, uint64_t seq)
{
	uint32_t i = PX_CLIENT_NODE(client) - 1, c = (uint32_t)(client & 0xff);
	uint64_t boot = PX_CLIENT_INC(client);
	if (i >= PX_MAX_NODES || c >= CLIENTS || boot >= s->nodes[i].nbbase / CLIENTS || seq == 0)
		return NULL;
	return op_g(s, i, c, s->nodes[i].bbase[boot * CLIENTS + c] + seq);
}

/* A durable accept record of node I: the definition of "chosen" (majority at one ballot). */
static void track_accept(struct sim *s, uint32_t i, const struct px_entry *e)
{
	struct ref *r = ref_at(s, e->slot);
	uint64_t vh = vhash(e->data, e->len);
	struct trk *t = NULL;

	if (e->flags & PX_ENT_CHOSEN)
		return; /* a learned value, not an acceptance */
	for (uint32_t k = 0; k < r->nt; k++)
		if (r->t[k].ballot == e->ballot)
			t = &r->t[k];
	if (!t) {
		r->t = xrealloc(r->t, sizeof(*r->t) * (r->nt + 1));
		t = &r->t[r->nt++];
		*t = (struct trk){.ballot = e->ballot, .vh = vh};
	} else if (t->vh != vh) {
		violation(s, "slot %llu: two different values proposed at ballot %llx",
			  (unsigned long long)e->slot, (unsigned long long)e->ballot);
		return;
	}
	t->mask |= (uint16_t)(1u << i);
	if (__builtin_popcount(t->mask) >= (int)s->quorum) {
		if (r->chosen && r->chosen_vh != vh)
			violation(s,
				  "SAFETY: slot %llu: two different values chosen (the second at "
				  "ballot %llx, accepted by mask %x)",
				  (unsigned long long)e->slot, (unsigned long long)e->ballot,
				  (unsigned)t->mask);
		r->chosen = true;
		r->chosen_vh = vh;
	}
}

static uint64_t chain_op(uint64_t chain, uint64_t slot, const struct px_sub *sub)
{
	uint64_t v[3] = {slot, sub->client, sub->seq};
	return fnv(chain, v, sizeof(v));
}

static void apply_slot(struct sim *s, uint32_t i, const struct px_apply *a)
{
	struct node *nd = &s->nodes[i];
	struct ref *r = ref_at(s, a->slot);
	uint64_t vh = vhash(a->value, a->len);
	struct px_batch_iter it;
	struct px_sub sub;
	int rv;

	if (a->slot != nd->applied + 1) {
		violation(s, "node %u applies slot %llu after %llu", i, (unsigned long long)a->slot,
			  (unsigned long long)nd->applied);
		return;
	}
	if (!r->chosen)
		violation(s, "SAFETY: node %u applies slot %llu that no majority accepted durably",
			  i, (unsigned long long)a->slot);
	else if (r->chosen_vh != vh)
		violation(s, "SAFETY: node %u applies in slot %llu a value that was not chosen", i,
			  (unsigned long long)a->slot);
	if (px_batch_iter_init(&it, a->value, a->len)) {
		violation(s, "node %u: malformed batch in slot %llu", i,
			  (unsigned long long)a->slot);
		return;
	}
	if (s->trace && i == 0)
		trace(s, "node %u applies slot %llu: %u submissions", i,
		      (unsigned long long)a->slot, it.left);
	if (a->len) {
		/* the leader's stamp: a reading of some node's wall clock (skewed by 2 s at most,
		 * or raised to a stamp known before); the transactions' time never decreases */
		if (it.time_ms + 2000 < SIM_EPOCH_MS || it.time_ms > SIM_EPOCH_MS + s->now + 2000)
			violation(s, "node %u: slot %llu is stamped %llu at %llu: no wall clock", i,
				  (unsigned long long)a->slot, (unsigned long long)it.time_ms,
				  (unsigned long long)s->now);
		px_filter_stamp(&nd->filter, it.time_ms);
		if (nd->filter.stamp < nd->stamp)
			violation(s, "node %u: slot %llu: time went back", i,
				  (unsigned long long)a->slot);
		nd->stamp = nd->filter.stamp;
	}
	while ((rv = px_batch_next(&it, &sub)) == 1) {
		struct op *op = op_at(s, sub.client, sub.seq);
		int adm = px_filter_admit(&nd->filter, sub.client, sub.seq);
		if (adm < 0 || !op) {
			violation(s, "node %u: bad submission in slot %llu", i,
				  (unsigned long long)a->slot);
			return;
		}
		if (!adm)
			continue;
		nd->chain = chain_op(nd->chain, a->slot, &sub);
		/* FIFO: per client, the applied seqs are exactly 1, 2, 3, ... in order */
		if (!op->applied_slot && sub.seq > 1) {
			struct op *prev = op_at(s, sub.client, sub.seq - 1);
			if (!prev || !prev->applied_slot || prev->applied_slot > a->slot)
				violation(s,
					  "SAFETY: op %llx/%llu applied in slot %llu before seq %llu "
					  "of its client",
					  (unsigned long long)sub.client, (unsigned long long)sub.seq,
					  (unsigned long long)a->slot, (unsigned long long)sub.seq - 1);
		}
		if (sub.len == 0) {
			/* a no-op takes the seq: its op was answered already, never as applied */
			if (op->state == OP_ACKED || op->state == OP_SUBMITTED)
				violation(s, "SAFETY: op %llx/%llu replaced by a no-op while %s",
					  (unsigned long long)sub.client,
					  (unsigned long long)sub.seq,
					  op->state == OP_ACKED ? "acknowledged" : "pending");
			if (!op->applied_slot) {
				op->applied_slot = a->slot;
				op->noop = true;
			}
			continue;
		}
		if (op->applied_slot && op->applied_slot != a->slot)
			violation(s, "SAFETY: op %llu/%llu applied twice (slots %llu and %llu)",
				  (unsigned long long)sub.client, (unsigned long long)sub.seq,
				  (unsigned long long)op->applied_slot,
				  (unsigned long long)a->slot);
		if (op->noop && op->applied_slot != a->slot)
			violation(s, "SAFETY: op %llx/%llu applied after its no-op",
				  (unsigned long long)sub.client, (unsigned long long)sub.seq);
		if (op->state == OP_FAILED || op->state == OP_STALE)
			violation(
			    s,
			    "SAFETY: op %llu/%llu applied after its submitter was told it failed",
			    (unsigned long long)sub.client, (unsigned long long)sub.seq);
		if (op->state == OP_NONE)
			violation(s, "op %llu/%llu applied but never submitted",
				  (unsigned long long)sub.client, (unsigned long long)sub.seq);
		if (!op->applied_slot) {
			op->applied_slot = a->slot;
			s->st.applied_ops++;
		}
	}
	if (rv < 0)
		violation(s, "node %u: malformed batch in slot %llu", i,
			  (unsigned long long)a->slot);
	nd->chain = fnv(nd->chain, &a->slot, sizeof(a->slot));
	if (!r->set) {
		r->set = true;
		r->vh = vh;
		r->chain = nd->chain;
	} else if (r->vh != vh) {
		violation(s, "SAFETY: node %u applied a different value in slot %llu", i,
			  (unsigned long long)a->slot);
	} else if (r->chain != nd->chain) {
		violation(s, "SAFETY: node %u: applied sequence differs at slot %llu", i,
			  (unsigned long long)a->slot);
	}
	nd->applied = a->slot;
}

static void on_ack(struct sim *s, uint32_t i, const struct px_ack *a)
{
	struct op *op = op_at(s, a->client, a->seq);
	if (!op || op->state != OP_SUBMITTED) {
		violation(s, "node %u: ack for op %llu/%llu that is not pending", i,
			  (unsigned long long)a->client, (unsigned long long)a->seq);
		return;
	}
	if (a->status == PX_ACK_CHOSEN) {
		struct ref *r = ref_at(s, a->slot);
		if (!r->set || s->nodes[i].applied < a->slot) {
			violation(s, "node %u acked op at slot %llu before applying it", i,
				  (unsigned long long)a->slot);
			return;
		}
		if (op->applied_slot == a->slot && !op->noop) {
			op->state = OP_ACKED;
			s->st.acked++;
		} else if (op->applied_slot == 0 || op->noop) {
			/* FIFO: a chosen ack means applied; nothing is skipped for good */
			op->state = OP_STALE;
			s->st.stale++;
			violation(s, "SAFETY: op %llx/%llu acked chosen at slot %llu but not applied",
				  (unsigned long long)a->client, (unsigned long long)a->seq,
				  (unsigned long long)a->slot);
		} else {
			violation(s, "SAFETY: op %llu/%llu acked at slot %llu but applied at %llu",
				  (unsigned long long)a->client, (unsigned long long)a->seq,
				  (unsigned long long)a->slot,
				  (unsigned long long)op->applied_slot);
		}
	} else if (a->status == PX_ACK_BEFORE) {
		if (!op->applied_slot || op->noop || op->applied_slot > a->slot)
			violation(
			    s,
			    "SAFETY: op %llu/%llu acked as applied before slot %llu but it was not",
			    (unsigned long long)a->client, (unsigned long long)a->seq,
			    (unsigned long long)a->slot);
		op->state = OP_ACKED;
		s->st.acked++;
	} else if (a->status == -ETIMEDOUT) {
		op->state = OP_UNKNOWN;
		s->st.unknown++;
	} else {
		op->state = OP_FAILED;
		s->st.failed++;
		if (op->applied_slot && !op->noop)
			violation(s, "SAFETY: op %llu/%llu failed (%d) but was applied",
				  (unsigned long long)a->client, (unsigned long long)a->seq,
				  a->status);
	}
}

/* ---- disk ---- */

static struct dslot *dslot(struct disk *d, uint64_t slot)
{
	if (slot >= d->cap) {
		uint64_t nc = d->cap ? d->cap : 256;
		while (nc <= slot)
			nc *= 2;
		d->slots = xrealloc(d->slots, sizeof(*d->slots) * nc);
		memset(d->slots + d->cap, 0, sizeof(*d->slots) * (nc - d->cap));
		d->cap = nc;
	}
	return &d->slots[slot];
}

static void disk_truncate(struct disk *d, uint64_t upto)
{
	for (uint64_t k = 0; k <= upto && k < d->cap; k++) {
		free(d->slots[k].data);
		memset(&d->slots[k], 0, sizeof(d->slots[k]));
	}
}

static void disk_free(struct disk *d)
{
	disk_truncate(d, d->cap ? d->cap - 1 : 0);
	free(d->slots);
	snap_free(&d->snap);
	memset(d, 0, sizeof(*d));
}

static void pwrite_free(struct pwrite *w)
{
	for (uint32_t k = 0; k < w->nrec; k++)
		free((void *)w->recs[k].data);
	free(w->recs);
}

/* ---- network ---- */

static void net_send(struct sim *s, uint32_t from, uint32_t to, const uint8_t *buf, uint32_t len)
{
	int copies = 1 + chance(s, s->dup);
	s->st.msgs++;
	if (to >= s->cfg.n || !s->link[from][to] || chance(s, s->drop)) {
		s->st.dropped++;
		return;
	}
	for (int c = 0; c < copies; c++) {
		struct event e = {.type = E_MSG, .from = from, .to = to};
		e.at = s->now + rrange(s, s->cfg.lat_min, s->cfg.lat_max);
		if (chance(s, s->slow))
			e.at += rrange(s, 0, 3 * s->cfg.election);
		e.boot = s->nodes[from].boot;
		e.buf = xdup(buf, len);
		e.len = len;
		heap_push(s, e);
	}
}

/* ---- driving a node ---- */

static void step(struct sim *s, uint32_t i, const struct px_event *ev);
static void boot_node(struct sim *s, uint32_t i);
static void on_down(struct sim *s, const struct event *e);

static void take_snapshot(struct sim *s, uint32_t i)
{
	struct node *nd = &s->nodes[i];
	struct px_event ev = {.type = PX_EV_SNAPSHOT_TAKEN, .now = s->now, .rand = rnd(s)};
	snap_free(&nd->disk.snap);
	nd->disk.snap.slot = nd->applied;
	nd->disk.snap.chain = nd->chain;
	nd->disk.snap.stamp = nd->stamp;
	if (px_filter_copy(&nd->disk.snap.filter, &nd->filter))
		abort();
	s->st.snapshots++;
	ev.slot = nd->applied;
	step(s, i, &ev);
}

static void handle(struct sim *s, uint32_t i, const struct px_update *u)
{
	struct node *nd = &s->nodes[i];
	uint64_t snap_trunc = u->truncate;

	if (u->persist_seq) {
		struct pwrite w = {.seq = u->persist_seq,
				   .promise = u->promise_changed,
				   .promised = u->promised,
				   .init = u->initialised_changed,
				   .commit_set = u->commit_changed,
				   .commit = u->commit,
				   .nrec = u->naccepted};
		struct event e = {
		    .type = E_PERSIST, .to = i, .boot = nd->boot, .seq = u->persist_seq};
		if (u->persist_seq != (nd->npw ? nd->pw[nd->npw - 1].seq : nd->durable) + 1)
			violation(s, "node %u: persist seq %llu out of order", i,
				  (unsigned long long)u->persist_seq);
		w.recs = xmalloc(sizeof(*w.recs) * (u->naccepted ? u->naccepted : 1));
		for (uint32_t k = 0; k < u->naccepted; k++) {
			w.recs[k] = u->accepted[k];
			w.recs[k].data = xdup(u->accepted[k].data, u->accepted[k].len);
		}
		if (nd->npw == nd->pwcap) {
			nd->pwcap = nd->pwcap ? nd->pwcap * 2 : 16;
			nd->pw = xrealloc(nd->pw, sizeof(*nd->pw) * nd->pwcap);
		}
		nd->pw[nd->npw++] = w;
		e.at = s->now + rrange(s, s->cfg.persist_min, s->cfg.persist_max);
		if (e.at < nd->persist_tail)
			e.at = nd->persist_tail;
		nd->persist_tail = e.at;
		heap_push(s, e);
	}
	for (uint32_t k = 0; k < u->nmsgs; k++) {
		const struct px_out *o = &u->msgs[k];
		size_t need = px_msg_size(&o->msg);
		long len;
		if (o->msg.type == PX_MSG_REJECT)
			s->st.rejects_sent++;
		if (need > s->ebufcap) {
			s->ebufcap = need * 2;
			s->ebuf = xrealloc(s->ebuf, s->ebufcap);
		}
		len = px_msg_encode(&o->msg, s->ebuf, s->ebufcap);
		if (len < 0 || o->msg.from != i || o->msg.to >= s->cfg.n || o->msg.to == i) {
			violation(s, "node %u: unencodable message (%ld)", i, len);
			return;
		}
		if (o->wait_seq > (nd->npw ? nd->pw[nd->npw - 1].seq : nd->durable))
			violation(s, "node %u: message waits for seq %llu that does not exist", i,
				  (unsigned long long)o->wait_seq);
		if (o->wait_seq > nd->durable) {
			if (nd->nheld == nd->heldcap) {
				nd->heldcap = nd->heldcap ? nd->heldcap * 2 : 16;
				nd->held = xrealloc(nd->held, sizeof(*nd->held) * nd->heldcap);
			}
			nd->held[nd->nheld++] = (struct held){.wait = o->wait_seq,
							      .to = o->msg.to,
							      .buf = xdup(s->ebuf, (uint32_t)len),
							      .len = (uint32_t)len};
		} else {
			net_send(s, i, o->msg.to, s->ebuf, (uint32_t)len);
		}
	}
	for (uint32_t k = 0; k < u->napply && !s->fail[0]; k++)
		apply_slot(s, i, &u->apply[k]);
	for (uint32_t k = 0; k < u->nacks; k++)
		on_ack(s, i, &u->acks[k]);
	for (uint32_t k = 0; k < u->nsnaps; k++) {
		const struct px_snap_req *r = &u->snaps[k];
		struct event e = {.type = E_SNAP, .from = i, .to = r->to};
		if (nd->disk.snap.slot < r->slot || !nd->disk.snap.slot)
			continue; /* nothing durable to send */
		if (!s->link[i][r->to])
			continue;
		e.at = s->now + rrange(s, s->cfg.lat_min, s->cfg.lat_max) * 2;
		e.snap = xcalloc(1, sizeof(*e.snap));
		snap_copy(e.snap, &nd->disk.snap);
		heap_push(s, e);
	}
	if (snap_trunc) {
		if (snap_trunc > nd->disk.snap.slot)
			violation(s, "node %u: truncation to %llu above its snapshot %llu", i,
				  (unsigned long long)snap_trunc,
				  (unsigned long long)nd->disk.snap.slot);
		disk_truncate(&nd->disk, snap_trunc);
	}
	nd->deadline = u->deadline;
	/* the host's snapshot policy */
	if (s->cfg.snapshot_every && nd->applied >= nd->disk.snap.slot + s->cfg.snapshot_every &&
	    !s->fail[0])
		take_snapshot(s, i);
}

/*
 * Learning, at the instant it happens: every slot a node knows chosen (up to its commit index,
 * whether it learnt it from the leader's commit index, from the acceptors' ACCEPTED messages, from
 * a catch-up or from its own disk) holds the value that a majority accepted durably at one ballot
 * (track_accept), checked right after the step that made the node learn it.
 */
static void check_learnt(struct sim *s, uint32_t i)
{
	struct node *nd = &s->nodes[i];
	uint64_t c = px_commit(nd->px);

	if (c < nd->learnt)
		nd->learnt = c; /* restarted with an older commit hint */
	for (uint64_t sl = nd->learnt + 1; sl <= c && !s->fail[0]; sl++) {
		const uint8_t *v;
		uint32_t len;
		struct ref *r;
		if (px_chosen(nd->px, sl, &v, &len))
			continue; /* below its log: covered by a snapshot */
		r = ref_at(s, sl);
		if (!r->chosen)
			violation(s,
				  "SAFETY: node %u learnt slot %llu chosen, but no majority accepted "
				  "it durably at one ballot",
				  i, (unsigned long long)sl);
		else if (r->chosen_vh != vhash(v, len))
			violation(s, "SAFETY: node %u learnt in slot %llu a value that was not chosen",
				  i, (unsigned long long)sl);
	}
	nd->learnt = c;
}

static void step(struct sim *s, uint32_t i, const struct px_event *ev)
{
	struct node *nd = &s->nodes[i];
	struct px_update u;
	enum px_role before;
	int rv;

	if (!nd->up || s->fail[0])
		return;
	s->st.events++;
	if (nd->last_step_at == s->now) {
		if (++nd->same_time_steps > 100000) {
			violation(s, "node %u: busy loop (deadline never advances)", i);
			return;
		}
	} else {
		nd->last_step_at = s->now;
		nd->same_time_steps = 0;
	}
	before = px_role(nd->px);
#ifdef QFS_TEST_HOOKS
	if (s->cfg.oom && !s->healed && chance(s, s->cfg.oom))
		px_debug_alloc_countdown = 1 + rnd(s) % 3;
#endif
	{
		/* every node reads its own wall clock, skewed */
		struct px_event e2 = *ev;
		if (s->now <= nd->stale_until && e2.now > nd->paused_at)
			e2.now = nd->paused_at;
		e2.wall = (uint64_t)((int64_t)(SIM_EPOCH_MS + s->now) + nd->skew);
		rv = px_step(nd->px, &e2, &u);
	}
#ifdef QFS_TEST_HOOKS
	px_debug_alloc_countdown = 0;
	if (rv == -ENOMEM && s->cfg.oom) {
		/* the contract: drop the update, re-create the node from its disk */
		if (u.nmsgs || u.persist_seq || u.napply || u.nacks)
			violation(s, "node %u: a failed step still returned work", i);
		trace(s, "node %u: allocation failure, restart from disk", i);
		s->st.oom_restarts++;
		sim_crash(s, i);
		nd->boot++;
		boot_node(s, i);
		return;
	}
#endif
	if (rv) {
		violation(s, "node %u: px_step returned %d", i, rv);
		return;
	}
	if (before == PX_LEARNER && px_role(nd->px) == PX_LEARNER)
		for (uint32_t k = 0; k < u.nmsgs; k++)
			if (u.msgs[k].msg.type == PX_MSG_PROMISE ||
			    u.msgs[k].msg.type == PX_MSG_ACCEPTED ||
			    u.msgs[k].msg.type == PX_MSG_REJECT)
				violation(s, "node %u votes (message type %u) while a learner", i,
					  u.msgs[k].msg.type);
	if (px_role(nd->px) == PX_CANDIDATE && before != PX_CANDIDATE)
		s->st.elections++;
	{
		uint64_t cand = 0;
		for (uint32_t k = 0; k < s->cfg.n; k++)
			if (s->nodes[k].up && px_role(s->nodes[k].px) == PX_CANDIDATE)
				cand++;
		if (cand > s->st.max_candidates)
			s->st.max_candidates = cand;
	}
	if (before == PX_LEARNER && px_role(nd->px) != PX_LEARNER)
		s->st.learners_graduated++;
	if (px_role(nd->px) != before)
		trace(s, "node %u: role %d -> %d ballot %llx commit %llu", i, before,
		      px_role(nd->px), (unsigned long long)px_ballot(nd->px),
		      (unsigned long long)px_commit(nd->px));
	check_learnt(s, i);
	handle(s, i, &u);
}

static void on_persist(struct sim *s, const struct event *e)
{
	struct node *nd = &s->nodes[e->to];
	struct px_event ev = {.type = PX_EV_PERSISTED, .now = s->now, .seq = e->seq};
	uint32_t k, j;

	if (!nd->up || e->boot != nd->boot)
		return;
	for (k = 0; k < nd->npw && nd->pw[k].seq <= e->seq; k++) {
		struct pwrite *w = &nd->pw[k];
		if (w->promise) {
			if (w->promised < nd->disk.promised && !sim_end_to_end)
				violation(
				    s,
				    "acceptor invariant: node %u: promise goes down (%llx < %llx)",
				    e->to, (unsigned long long)w->promised,
				    (unsigned long long)nd->disk.promised);
			nd->disk.promised = w->promised;
		}
		if (w->init)
			nd->disk.initialised = true;
		if (w->commit_set)
			nd->disk.commit = w->commit;
		for (uint32_t r = 0; r < w->nrec; r++) {
			struct px_entry *en = &w->recs[r];
			struct dslot *d;
			if (en->slot <= nd->disk.snap.slot)
				continue;
			track_accept(s, e->to, en);
			d = dslot(&nd->disk, en->slot);
			free(d->data);
			d->data = (uint8_t *)en->data;
			en->data = NULL;
			d->len = en->len;
			d->ballot = en->ballot;
			d->flags = en->flags;
			d->have = true;
		}
		pwrite_free(w);
		nd->durable = w->seq;
	}
	memmove(nd->pw, nd->pw + k, sizeof(*nd->pw) * (nd->npw - k));
	nd->npw -= k;
	if (nd->crash_after_persist) {
		nd->crash_after_persist = false;
		s->st.crashes_after_persist++;
		trace(s, "node %u: crash right after persisting seq %llu", e->to,
		      (unsigned long long)e->seq);
		sim_crash(s, e->to);
		return;
	}
	/* release the messages that waited for this */
	for (k = 0, j = 0; k < nd->nheld; k++) {
		struct held *h = &nd->held[k];
		if (h->wait <= nd->durable) {
			net_send(s, e->to, h->to, h->buf, h->len);
			free(h->buf);
		} else {
			nd->held[j++] = *h;
		}
	}
	nd->nheld = j;
	ev.rand = rnd(s);
	step(s, e->to, &ev);
}

static void on_msg(struct sim *s, const struct event *e)
{
	struct node *nd = &s->nodes[e->to];
	struct px_msg m;
	struct px_event ev = {.type = PX_EV_RECEIVE, .now = s->now};
	int rv;

	if (!nd->up || e->boot < s->nodes[e->from].min_boot)
		return;
	rv = px_msg_decode(e->buf, e->len, &m, &s->scratch);
	if (rv) {
		violation(s, "codec: a message the core encoded does not decode (%d)", rv);
		return;
	}
	ev.msg = &m;
	ev.rand = rnd(s);
	if (m.type == PX_MSG_REJECT)
		s->st.rejects++;
	if (m.type == PX_MSG_ACCEPT && s->trace)
		trace(s, "%u->%u ACCEPT b=%llx c=%llu n=%u", m.from, m.to,
		      (unsigned long long)m.ballot, (unsigned long long)m.commit, m.nent);
	if ((m.type == PX_MSG_CATCHUP_REQ || m.type == PX_MSG_CATCHUP ||
	     m.type == PX_MSG_PROMISE) &&
	    s->trace)
		trace(s, "%u->%u %s slot=%llu commit=%llu n=%u", m.from, m.to,
		      m.type == PX_MSG_CATCHUP	 ? "CATCHUP"
		      : m.type == PX_MSG_PROMISE ? "PROMISE"
						 : "CATCHUP_REQ",
		      (unsigned long long)m.slot, (unsigned long long)m.commit, m.nent);
	if (m.type == PX_MSG_SUBMIT && s->trace)
		trace(s, "%u->%u SUBMIT n=%u first %llu/%llu", m.from, m.to, m.nsub,
		      (unsigned long long)(m.nsub ? m.sub[0].client : 0),
		      (unsigned long long)(m.nsub ? m.sub[0].seq : 0));
	step(s, e->to, &ev);
}

static void on_snap(struct sim *s, const struct event *e)
{
	struct node *nd = &s->nodes[e->to];
	struct px_event ev = {.type = PX_EV_SNAPSHOT_INSTALLED, .now = s->now};
	struct ref *r;

	if (!nd->up || e->snap->slot <= nd->applied)
		return;
	r = ref_at(s, e->snap->slot);
	if (!r->set || r->chain != e->snap->chain) {
		violation(s, "node %u: snapshot at %llu does not match the reference", e->from,
			  (unsigned long long)e->snap->slot);
		return;
	}
	snap_free(&nd->disk.snap);
	snap_copy(&nd->disk.snap, e->snap);
	disk_truncate(&nd->disk, e->snap->slot);
	if (nd->disk.commit < e->snap->slot)
		nd->disk.commit = e->snap->slot;
	px_filter_free(&nd->filter);
	if (px_filter_copy(&nd->filter, &e->snap->filter))
		abort();
	nd->applied = e->snap->slot;
	nd->chain = e->snap->chain;
	nd->stamp = e->snap->stamp;
	s->st.installs++;
	trace(s, "node %u: installs snapshot %llu from %u", e->to,
	      (unsigned long long)e->snap->slot, e->from);
	ev.slot = e->snap->slot;
	ev.filter = &nd->filter;
	ev.rand = rnd(s);
	step(s, e->to, &ev);
}

static void px_cfg_of(const struct sim *s, uint32_t i, struct px_config *pc)
{
	memset(pc, 0, sizeof(*pc));
	pc->id = i;
	pc->n = s->cfg.n;
	pc->heartbeat = s->cfg.heartbeat;
	pc->election = s->cfg.election;
	pc->submit_timeout = s->cfg.submit_timeout;
	pc->window = s->cfg.window;
	pc->max_batch = s->cfg.max_batch;
	pc->max_batch_bytes = s->cfg.max_batch_bytes;
	pc->catchup_max = s->cfg.catchup_max;
	pc->keep_after_snapshot = s->cfg.keep_after_snapshot;
	pc->keep_bytes_after_snapshot = s->cfg.keep_bytes_after_snapshot;
}

static void boot_node(struct sim *s, uint32_t i)
{
	struct node *nd = &s->nodes[i];
	struct px_config pc;
	struct px_boot b = {0};
	struct px_entry *ents = NULL;
	uint32_t ne = 0;
	int rv;

	px_cfg_of(s, i, &pc);
	/* this boot's clients are new ones (a new incarnation of node I), seqs from 1 */
	if (nd->nbbase < (nd->boot + 1) * CLIENTS) {
		nd->bbase = xrealloc(nd->bbase, sizeof(uint64_t) * (nd->boot + 1) * CLIENTS);
		for (uint32_t k = nd->nbbase; k < (nd->boot + 1) * CLIENTS; k++)
			nd->bbase[k] = nd->next_seq[k % CLIENTS];
		nd->nbbase = (nd->boot + 1) * CLIENTS;
	}
	b.initialised = nd->disk.initialised;
	b.promised = nd->disk.promised;
	b.commit = nd->disk.commit;
	b.snapshot = nd->disk.snap.slot;
	b.applied = nd->disk.snap.slot;
	b.stamp = nd->disk.snap.filter.stamp;
	ents = xmalloc(sizeof(*ents) * (nd->disk.cap ? nd->disk.cap : 1));
	for (uint64_t k = 0; k < nd->disk.cap; k++) {
		struct dslot *d = &nd->disk.slots[k];
		if (!d->have)
			continue;
		ents[ne++] = (struct px_entry){.slot = k,
					       .ballot = d->ballot,
					       .flags = d->flags,
					       .len = d->len,
					       .data = d->data};
	}
	b.entries = ents;
	b.nentries = ne;
	rv = px_init(&nd->px, &pc, &b, s->now, rnd(s));
	free(ents);
	if (rv) {
		violation(s, "node %u: px_init failed (%d)", i, rv);
		nd->up = false;
		return;
	}
	nd->up = true;
	nd->durable = 0;
	nd->persist_tail = s->now;
	nd->applied = nd->disk.snap.slot;
	nd->chain = nd->disk.snap.chain;
	nd->stamp = nd->disk.snap.stamp;
	/* from the seed, not from the event stream: adding clocks changed no scenario */
	{
		uint64_t h = fnv(fnv(0, &s->seed, sizeof(s->seed)), &i, sizeof(i));
		h = fnv(h, &nd->boot, sizeof(nd->boot));
		nd->skew = (int64_t)(h % 4001) - 2000;
	}
	px_filter_free(&nd->filter);
	if (px_filter_copy(&nd->filter, &nd->disk.snap.filter))
		abort();
	nd->deadline = s->now;
	nd->was_role = px_role(nd->px);
}

/* ---- public ---- */

void sim_cfg_default(struct sim_cfg *cfg, uint32_t n)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->n = n;
	cfg->lat_min = 1;
	cfg->lat_max = 8;
	cfg->persist_min = 0;
	cfg->persist_max = 4;
	cfg->heartbeat = 20;
	cfg->election = 100;
	cfg->submit_timeout = 3000;
	cfg->window = 4;
	cfg->max_batch = 8;
	cfg->snapshot_every = 16;
	cfg->keep_after_snapshot = 4;
}

struct sim *sim_new(const struct sim_cfg *cfg, uint64_t seed)
{
	struct sim *s = xcalloc(1, sizeof(*s));
	const char *tr = getenv("PX_SIM_TRACE");
	s->cfg = *cfg;
	s->seed = seed;
	s->rnd = seed * 0x2545f4914f6cdd1dull + 1;
	s->quorum = cfg->n / 2 + 1;
	s->trace = tr && *tr && *tr != '0';
	for (uint32_t i = 0; i < cfg->n; i++)
		for (uint32_t j = 0; j < cfg->n; j++)
			s->link[i][j] = true;
	for (uint32_t i = 0; i < cfg->n; i++) {
		s->nodes[i].disk.initialised = true;
		boot_node(s, i);
	}
	return s;
}

static void node_down(struct sim *s, uint32_t i)
{
	struct node *nd = &s->nodes[i];
	px_free(nd->px);
	nd->px = NULL;
	nd->up = false;
	nd->paused_until = nd->stale_until = 0;
	for (uint32_t k = 0; k < nd->npw; k++)
		pwrite_free(&nd->pw[k]);
	nd->npw = 0;
	for (uint32_t k = 0; k < nd->nheld; k++)
		free(nd->held[k].buf);
	nd->nheld = 0;
	px_filter_free(&nd->filter);
}

void sim_free(struct sim *s)
{
	if (!s)
		return;
	for (uint32_t i = 0; i < s->cfg.n; i++) {
		node_down(s, i);
		disk_free(&s->nodes[i].disk);
		free(s->nodes[i].pw);
		free(s->nodes[i].held);
		free(s->nodes[i].bbase);
	}
	for (uint32_t k = 0; k < s->nheap; k++)
		event_free(&s->heap[k]);
	free(s->heap);
	for (uint64_t k = 0; k < s->nrefs; k++)
		free(s->refs[k].t);
	free(s->refs);
	for (uint32_t k = 0; k < PX_MAX_NODES * CLIENTS; k++)
		free(s->ops[k]);
	px_msg_scratch_free(&s->scratch);
	free(s->ebuf);
	free(s);
}

uint64_t sim_now(const struct sim *s)
{
	return s->now;
}

const char *sim_failure(const struct sim *s)
{
	return s->fail;
}

int sim_run_until(struct sim *s, uint64_t t)
{
	while (!s->fail[0]) {
		uint64_t best = UINT64_MAX;
		uint32_t bn = NONE;
		for (uint32_t i = 0; i < s->cfg.n; i++) {
			const struct node *nd = &s->nodes[i];
			uint64_t d =
			    nd->deadline > nd->paused_until ? nd->deadline : nd->paused_until;
			if (nd->stale_until >= s->now && d <= nd->stale_until)
				d = nd->stale_until + 1; /* no timer mid-iteration */
			if (nd->up && d < best) {
				best = d;
				bn = i;
			}
		}
		if (s->nheap && s->heap[0].at <= best) {
			struct event e;
			if (s->heap[0].at > t)
				break;
			e = heap_pop(s);
			if (e.at > s->now)
				s->now = e.at;
			if (s->nodes[e.to].up && s->nodes[e.to].paused_until > s->now) {
				/* frozen: it waits in the socket (or the disk's completion queue),
				 * in order */
				e.at = s->nodes[e.to].paused_until;
				heap_push(s, e);
				continue;
			}
			switch (e.type) {
			case E_MSG:
				on_msg(s, &e);
				break;
			case E_PERSIST:
				on_persist(s, &e);
				break;
			case E_SNAP:
				on_snap(s, &e);
				break;
			case E_DOWN:
				on_down(s, &e);
				break;
			}
			event_free(&e);
		} else if (bn != NONE) {
			struct px_event ev = {.type = PX_EV_TICK};
			if (best > t)
				break;
			if (best > s->now)
				s->now = best;
			ev.now = s->now;
			ev.rand = rnd(s);
			step(s, bn, &ev);
		} else {
			break;
		}
	}
	if (!s->fail[0] && s->now < t)
		s->now = t;
	return s->fail[0] ? -1 : 0;
}

void sim_link(struct sim *s, uint32_t from, uint32_t to, bool up)
{
	s->link[from][to] = up;
}

void sim_isolate(struct sim *s, uint32_t node, bool in, bool out)
{
	for (uint32_t j = 0; j < s->cfg.n; j++) {
		if (j == node)
			continue;
		if (in)
			s->link[j][node] = false;
		if (out)
			s->link[node][j] = false;
	}
}

void sim_heal(struct sim *s)
{
	for (uint32_t i = 0; i < s->cfg.n; i++)
		for (uint32_t j = 0; j < s->cfg.n; j++)
			s->link[i][j] = true;
	s->drop = s->dup = s->slow = 0;
	s->healed = true;
	for (uint32_t i = 0; i < s->cfg.n; i++)
		s->nodes[i].crash_after_persist = false;
}

void sim_set_faults(struct sim *s, uint32_t drop, uint32_t dup, uint32_t slow)
{
	s->drop = drop;
	s->dup = dup;
	s->slow = slow;
}

void sim_crash(struct sim *s, uint32_t i)
{
	struct node *nd = &s->nodes[i];
	if (!nd->up)
		return;
	trace(s, "node %u: crash", i);
	node_down(s, i);
	/* this node's clients lose their pending operations: outcome unknown */
	for (uint32_t c = 0; c < CLIENTS; c++) {
		uint32_t ci = i * CLIENTS + c;
		for (uint64_t q = 1; q < s->opcap[ci]; q++)
			if (s->ops[ci][q].state == OP_SUBMITTED) {
				s->ops[ci][q].state = OP_UNKNOWN;
				s->st.unknown++;
			}
	}
}

/* The end of a killed node's connection reaches each peer after the bytes it had sent (TCP). */
void sim_kill(struct sim *s, uint32_t i)
{
	if (!s->nodes[i].up)
		return;
	sim_crash(s, i);
	for (uint32_t j = 0; j < s->cfg.n; j++) {
		struct event e = {.type = E_DOWN, .from = i, .to = j, .boot = s->nodes[j].boot};

		if (j == i || !s->nodes[j].up)
			continue;
		e.at = s->now;
		for (uint32_t k = 0; k < s->nheap; k++)
			if (s->heap[k].type == E_MSG && s->heap[k].from == i && s->heap[k].to == j &&
			    s->heap[k].at > e.at)
				e.at = s->heap[k].at;
		heap_push(s, e);
	}
}

static void on_down(struct sim *s, const struct event *e)
{
	struct px_event ev = {.type = PX_EV_PEER_DOWN, .now = s->now, .node = e->from};

	if (!s->nodes[e->to].up || s->nodes[e->to].boot != e->boot)
		return;
	trace(s, "node %u: connection to %u lost", e->to, e->from);
	ev.rand = rnd(s);
	step(s, e->to, &ev);
}

void sim_restart(struct sim *s, uint32_t i, bool wipe)
{
	struct node *nd = &s->nodes[i];
	if (nd->up)
		sim_crash(s, i);
	if (wipe) {
		disk_free(&nd->disk);
		nd->min_boot = nd->boot + 1; /* its old connections are gone */
	}
	nd->boot++;
	trace(s, "node %u: restart%s", i, wipe ? " with an empty disk" : "");
	boot_node(s, i);
}

void sim_pause(struct sim *s, uint32_t i, uint64_t ms, uint64_t stale_ms)
{
	if (!s->nodes[i].up)
		return;
	trace(s, "node %u: paused for %llu ms", i, (unsigned long long)ms);
	s->nodes[i].paused_at = s->now;
	s->nodes[i].paused_until = s->now + ms;
	s->nodes[i].stale_until = stale_ms ? s->now + ms + stale_ms : 0;
}

void sim_crash_after_persist(struct sim *s, uint32_t i)
{
	s->nodes[i].crash_after_persist = true;
}

bool sim_up(const struct sim *s, uint32_t i)
{
	return s->nodes[i].up;
}

void sim_submit(struct sim *s, uint32_t i, uint32_t nops)
{
	/* a closed loop: a client keeps at most 8 operations outstanding, so the offered load
	 * stays within what the smallest windows and batches can carry */
	uint32_t c = (uint32_t)(rnd(s) % CLIENTS), out = 0;
	for (uint64_t q = s->nodes[i].next_seq[c]; q > 0 && out < 8; q--) {
		struct op *op = op_g(s, i, c, q);
		if (op->state == OP_SUBMITTED)
			out++;
		else if (s->nodes[i].next_seq[c] - q > 64)
			break;
	}
	if (out + nops > 8)
		nops = 8 - out;
	sim_submit_client(s, i, c, nops);
}

void sim_submit_client(struct sim *s, uint32_t i, uint32_t c, uint32_t nops)
{
	struct node *nd = &s->nodes[i];
	uint64_t client = client_id(i, nd->boot, c);
	struct px_sub subs[16];
	uint8_t data[16][64];
	struct px_event ev = {.type = PX_EV_SUBMIT, .now = s->now};

	if (!nd->up || nops == 0 || nd->paused_until > s->now)
		return; /* a frozen node's clients wait: they submit later */
	if (nops > 16)
		nops = 16;
	for (uint32_t k = 0; k < nops; k++) {
		uint64_t g = ++nd->next_seq[c], seq = g - nd->bbase[nd->boot * CLIENTS + c];
		struct op *op = op_g(s, i, c, g);
		/* at least one byte: an empty submission is a no-op (px_batch.h) */
		uint32_t len = (uint32_t)(rnd(s) % 4 ? 1 + rnd(s) % 24 : 1 + rnd(s) % 64);
		for (uint32_t b = 0; b < len; b++)
			data[k][b] = (uint8_t)(client * 31 + seq * 7 + b);
		subs[k] =
		    (struct px_sub){.client = client, .seq = seq, .len = len, .data = data[k]};
		if (op->state != OP_NONE)
			violation(s, "op %llu/%llu submitted twice by the simulator",
				  (unsigned long long)client, (unsigned long long)seq);
		op->state = OP_SUBMITTED;
		op->after_heal = s->healed;
	}
	ev.subs = subs;
	ev.nsubs = nops;
	ev.rand = rnd(s);
	step(s, i, &ev);
}

struct px_node *sim_px(struct sim *s, uint32_t i)
{
	return s->nodes[i].up ? s->nodes[i].px : NULL;
}

uint32_t sim_leader(const struct sim *s)
{
	uint32_t best = NONE;
	uint64_t bb = 0;
	for (uint32_t i = 0; i < s->cfg.n; i++)
		if (s->nodes[i].up && px_role(s->nodes[i].px) == PX_LEADER &&
		    px_ballot(s->nodes[i].px) >= bb) {
			bb = px_ballot(s->nodes[i].px);
			best = i;
		}
	return best;
}

enum px_role sim_role(const struct sim *s, uint32_t i)
{
	return s->nodes[i].up ? px_role(s->nodes[i].px) : (enum px_role) - 1;
}

uint64_t sim_next_seq(const struct sim *s, uint32_t node, uint32_t c)
{
	return s->nodes[node].next_seq[c] + 1;
}

uint32_t sim_op_state(struct sim *s, uint32_t node, uint32_t c, uint64_t seq)
{
	struct op *op = op_g(s, node, c, seq);
	return op ? op->state : 0;
}

uint64_t sim_op_slot(struct sim *s, uint32_t node, uint32_t c, uint64_t seq)
{
	struct op *op = op_g(s, node, c, seq);
	return op && !op->noop ? op->applied_slot : 0;
}

uint64_t sim_applied(const struct sim *s, uint32_t i)
{
	return s->nodes[i].applied;
}

void sim_stats(const struct sim *s, struct sim_stats *st)
{
	*st = s->st;
}

static bool settled(struct sim *s, char *why, size_t len)
{
	uint64_t maxc = 0;
	for (uint32_t i = 0; i < s->cfg.n; i++) {
		struct node *nd = &s->nodes[i];
		if (!nd->up) {
			snprintf(why, len, "node %u is down", i);
			return false;
		}
		if (px_role(nd->px) == PX_LEARNER) {
			snprintf(why, len, "node %u is still a learner", i);
			return false;
		}
		if (px_commit(nd->px) > maxc)
			maxc = px_commit(nd->px);
	}
	if (sim_leader(s) == NONE) {
		snprintf(why, len, "no leader");
		return false;
	}
	for (uint32_t i = 0; i < s->cfg.n; i++)
		if (s->nodes[i].applied < maxc) {
			snprintf(why, len, "node %u applied %llu of %llu", i,
				 (unsigned long long)s->nodes[i].applied, (unsigned long long)maxc);
			return false;
		}
	for (uint32_t ci = 0; ci < s->cfg.n * CLIENTS; ci++)
		for (uint64_t q = 1; q < s->opcap[ci]; q++)
			if (s->ops[ci][q].state == OP_SUBMITTED) {
				snprintf(why, len, "op %u/%llu still pending", ci + 1,
					 (unsigned long long)q);
				return false;
			}
	return true;
}

static void node_states(struct sim *s, char *st, size_t cap)
{
	size_t l = 0;
	st[0] = 0;
	for (uint32_t i = 0; i < s->cfg.n && l < cap; i++)
		l += (size_t)snprintf(
		    st + l, cap - l, " [%u: role %d ballot %llx commit %llu applied %llu]", i,
		    s->nodes[i].up ? (int)px_role(s->nodes[i].px) : -1,
		    s->nodes[i].up ? (unsigned long long)px_ballot(s->nodes[i].px) : 0ull,
		    s->nodes[i].up ? (unsigned long long)px_commit(s->nodes[i].px) : 0ull,
		    (unsigned long long)s->nodes[i].applied);
}

int sim_check_live(struct sim *s, uint64_t bound)
{
	uint64_t end = s->now + bound;
	char why[128] = "";

	while (s->now < end) {
		if (sim_run_until(s, s->now + 10))
			return -1;
		if (settled(s, why, sizeof(why)))
			break;
	}
	if (!settled(s, why, sizeof(why))) {
		char st[320];
		node_states(s, st, sizeof(st));
		violation(s, "LIVENESS: not settled %llu ms after the heal: %s;%s",
			  (unsigned long long)bound, why, st);
		return -1;
	}
	for (uint32_t ci = 0; ci < s->cfg.n * CLIENTS; ci++)
		for (uint64_t q = 1; q < s->opcap[ci]; q++) {
			struct op *op = &s->ops[ci][q];
			if (op->after_heal && op->state != OP_ACKED) {
				char st[320];
				node_states(s, st, sizeof(st));
				violation(s,
					  "LIVENESS: op %u/%llu submitted after the heal ended in "
					  "state %d (applied at %llu);%s",
					  ci + 1, (unsigned long long)q, op->state,
					  (unsigned long long)op->applied_slot, st);
				return -1;
			}
			if (op->state == OP_ACKED && !op->applied_slot) {
				violation(s, "SAFETY: acked op %u/%llu lost", ci + 1,
					  (unsigned long long)q);
				return -1;
			}
		}
	return 0;
}

/* ---- the randomised scenario ---- */

static int scenario(uint32_t n, uint64_t seed, uint32_t oom, char *why, size_t whylen,
		    struct sim_stats *st);

int sim_scenario(uint32_t n, uint64_t seed, char *why, size_t whylen, struct sim_stats *st)
{
	return scenario(n, seed, 0, why, whylen, st);
}

int sim_scenario_oom(uint32_t n, uint64_t seed, uint32_t oom, char *why, size_t whylen,
		     struct sim_stats *st)
{
	return scenario(n, seed, oom, why, whylen, st);
}

static int scenario(uint32_t n, uint64_t seed, uint32_t oom, char *why, size_t whylen,
		    struct sim_stats *st)
{
	struct sim_cfg cfg;
	struct sim *s;
	uint64_t r, fault_end, w_crash, w_restart;
	bool churn;
	int rv = 0;

	sim_cfg_default(&cfg, n);
	{
		/* vary the shape per seed */
		uint64_t z = seed * 0x9e3779b97f4a7c15ull + 7;
		z ^= z >> 29;
		cfg.window = 1 + (uint32_t)(z % 6);
		cfg.max_batch = 1 + (uint32_t)((z >> 8) % 12);
		cfg.snapshot_every = (z >> 16) % 4 == 0 ? 0 : 4 + (z >> 20) % 24;
		cfg.persist_max = (z >> 24) % 3 == 0 ? 0 : 1 + (z >> 28) % 12;
		cfg.lat_max = 2 + (z >> 32) % 20;
		cfg.max_batch_bytes = (z >> 40) % 3 == 0 ? 64 + (uint32_t)((z >> 42) % 200) : 0;
		cfg.catchup_max = (z >> 50) % 3 == 0 ? 1 + (uint32_t)((z >> 52) % 4) : 0;
		/* a few slots per catch-up and no snapshot at all: a node that lost its disk would
		 * fetch the whole history a slot or two per round trip, longer than the liveness
		 * bound (its clients' writes time out meanwhile, correctly) */
		if (cfg.catchup_max && !cfg.snapshot_every)
			cfg.snapshot_every = 32;
		cfg.keep_after_snapshot = (z >> 56) % 9;
		/* one in three: a byte budget of a few small values */
		cfg.keep_bytes_after_snapshot = (z >> 12) % 3 == 0 ? 1 + (z >> 36) % 300 : 0;
	}
	cfg.oom = oom;
	s = sim_new(&cfg, seed);
	r = rnd(s);
	/* one scenario in three churns: frequent crashes and restarts, many late messages */
	churn = r % 3 == 0;
	sim_set_faults(s, (uint32_t)((r >> 2) % 120), (uint32_t)((r >> 10) % 60),
		       churn ? 100 + (uint32_t)((r >> 18) % 150) : (uint32_t)((r >> 18) % 40));
	w_crash = churn ? 14 : 5;
	w_restart = churn ? 16 : 7;
	fault_end = 600 + rnd(s) % 1200;
	while (s->now < fault_end && !s->fail[0]) {
		uint64_t a = rnd(s) % (62 + w_crash + w_restart);
		uint32_t x = (uint32_t)(rnd(s) % n), y = (uint32_t)(rnd(s) % n);
		if (a < 40) {
			sim_submit(s, x, 1 + (uint32_t)(rnd(s) % 6));
		} else if (a < 48) {
			/* a partition: a random subset against the rest, sometimes one way */
			uint32_t mask = (uint32_t)(rnd(s) % (1u << n));
			bool oneway = rnd(s) % 3 == 0;
			for (uint32_t i = 0; i < n; i++)
				for (uint32_t j = 0; j < n; j++)
					if (((mask >> i) & 1) != ((mask >> j) & 1) &&
					    (!oneway || ((mask >> i) & 1)))
						sim_link(s, i, j, false);
		} else if (a < 56) {
			for (uint32_t i = 0; i < n; i++)
				for (uint32_t j = 0; j < n; j++)
					sim_link(s, i, j, true);
		} else if (a < 60) {
			if (rnd(s) % 3 == 0) {
				/* SIGSTOP, often of the leader, for 1-4 election timeouts */
				if (rnd(s) % 2 && sim_leader(s) != NONE)
					x = sim_leader(s);
				/* half the time stopped mid-iteration (sim.h); often some of its
				 * connections break meanwhile (a peer gave up on it) */
				sim_pause(s, x, cfg.election * (1 + rnd(s) % 4),
					  rnd(s) % 2 ? rrange(s, 1, 30) : 0);
				if (rnd(s) % 2)
					for (uint32_t j = 0; j < n; j++)
						if (j != x && rnd(s) % 2) {
							sim_link(s, x, j, false);
							sim_link(s, j, x, false);
						}
			} else {
				sim_isolate(s, x, rnd(s) % 2, rnd(s) % 2);
			}
		} else if (a < 62) {
			sim_link(s, x, y, rnd(s) % 2);
		} else if (a < 62 + w_crash) {
			/* churn: often the leader; or, during an election, a voter right after it
			 * persisted (likely) its promise, restarted soon while older messages fly
			 */
			uint32_t cand = NONE;
			for (uint32_t i = 0; i < n; i++)
				if (s->nodes[i].up && px_role(s->nodes[i].px) == PX_CANDIDATE)
					cand = i;
			if (churn && cand != NONE && x != cand && s->nodes[x].up && rnd(s) % 2) {
				sim_crash_after_persist(s, x);
				sim_run_until(s, s->now + 1 + rnd(s) % 10);
				if (!s->nodes[x].up)
					sim_restart(s, x, false);
				continue;
			}
			if (churn && rnd(s) % 2 && sim_leader(s) != NONE)
				x = sim_leader(s);
			if (s->nodes[x].up) {
				uint64_t how = rnd(s) % 4;

				if (how < 2)
					sim_crash_after_persist(s, x);
				else if (how == 2)
					sim_crash(s, x);
				else
					sim_kill(s, x); /* the others see its connections end */
			}
		} else {
			if (!s->nodes[x].up) {
				/* an empty disk only while every other node is a voter */
				bool wipe = rnd(s) % 6 == 0;
				for (uint32_t i = 0; i < n && wipe; i++)
					if (i != x && !s->nodes[i].disk.initialised)
						wipe = false;
				sim_restart(s, x, wipe);
			}
		}
		sim_run_until(s, s->now + 1 + rnd(s) % 40);
	}
	if (!s->fail[0]) {
		sim_heal(s);
		for (uint32_t i = 0; i < n; i++)
			if (!s->nodes[i].up)
				sim_restart(s, i, false);
		sim_run_until(s, s->now + 3 * cfg.election);
		for (uint32_t i = 0; i < n && !s->fail[0]; i++)
			sim_submit(s, i, 1 + (uint32_t)(rnd(s) % 4));
		sim_check_live(s, 60 * cfg.election);
	}
	if (s->fail[0]) {
		snprintf(why, whylen, "%s", s->fail);
		rv = -1;
	}
	if (st)
		sim_stats(s, st);
	sim_free(s);
	return rv;
}
