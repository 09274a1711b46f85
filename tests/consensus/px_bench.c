/*
 * px_bench: operations committed per CPU-second by the px core in a lean in-process cluster.
 *
 *   px_bench [--quick] [--ops N] [--batch B] [--window W] [--size BYTES]
 *
 * For 3 and 5 nodes: clients submit at the leader (16-byte operations by default), the leader
 * batches up to B per slot with W slots in flight, every message goes through the real codec
 * (encode + CRC32C + decode), and persistence is group commit: each round delivers every queued
 * message, then reports all records of the round durable at once and releases the replies that
 * waited for them. Nodes take a snapshot every 1024 applied slots so that the log is truncated.
 * CPU time (clock()) covers everything: core, codec and this harness, so the figure is a lower
 * bound for the core. --quick runs a small smoke pass (ctest) that only checks progress.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "consensus/px_node.h"

struct qmsg {
	uint32_t to;
	uint32_t len;
	uint8_t *buf;
};

struct queue {
	struct qmsg *v;
	size_t head, n, cap;
};

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p) {
		fprintf(stderr, "px_bench: out of memory\n");
		exit(1);
	}
	return p;
}

static void qpush(struct queue *q, uint32_t to, const uint8_t *buf, uint32_t len)
{
	struct qmsg *m;
	if (q->head + q->n == q->cap) {
		if (q->head) {
			memmove(q->v, q->v + q->head, q->n * sizeof(*q->v));
			q->head = 0;
		}
		if (q->n == q->cap) {
			q->cap = q->cap ? q->cap * 2 : 1024;
			q->v = xrealloc(q->v, q->cap * sizeof(*q->v));
		}
	}
	m = &q->v[q->head + q->n++];
	m->to = to;
	m->len = len;
	m->buf = xrealloc(NULL, len);
	memcpy(m->buf, buf, len);
}

struct held {
	uint64_t wait;
	uint32_t to, len;
	uint8_t *buf;
};

struct bnode {
	struct px_node *px;
	uint64_t last_seq, durable, deadline, applied;
	struct held *held;
	size_t nheld, heldcap;
};

struct bench {
	uint32_t n;
	struct bnode nodes[PX_MAX_NODES];
	struct queue q;
	uint8_t *ebuf;
	size_t ebufcap;
	struct px_msg_scratch sc;
	uint64_t now, rnd, acked, msgs, bytes, steps;
};

static uint64_t rnd(struct bench *b)
{
	b->rnd ^= b->rnd << 13;
	b->rnd ^= b->rnd >> 7;
	b->rnd ^= b->rnd << 17;
	return b->rnd;
}

static void step(struct bench *b, uint32_t i, struct px_event *ev);

static void handle(struct bench *b, uint32_t i, const struct px_update *u)
{
	struct bnode *nd = &b->nodes[i];
	uint64_t snap = 0;

	if (u->persist_seq)
		nd->last_seq = u->persist_seq;
	for (uint32_t k = 0; k < u->nmsgs; k++) {
		const struct px_out *o = &u->msgs[k];
		size_t need = px_msg_size(&o->msg);
		long len;
		if (need > b->ebufcap) {
			b->ebufcap = need * 2;
			b->ebuf = xrealloc(b->ebuf, b->ebufcap);
		}
		len = px_msg_encode(&o->msg, b->ebuf, b->ebufcap);
		if (len < 0) {
			fprintf(stderr, "px_bench: encode failed\n");
			exit(1);
		}
		b->msgs++;
		b->bytes += (uint64_t)len;
		if (o->wait_seq > nd->durable) {
			struct held *h;
			if (nd->nheld == nd->heldcap) {
				nd->heldcap = nd->heldcap ? nd->heldcap * 2 : 64;
				nd->held = xrealloc(nd->held, nd->heldcap * sizeof(*nd->held));
			}
			h = &nd->held[nd->nheld++];
			h->wait = o->wait_seq;
			h->to = o->msg.to;
			h->len = (uint32_t)len;
			h->buf = xrealloc(NULL, (size_t)len);
			memcpy(h->buf, b->ebuf, (size_t)len);
		} else {
			qpush(&b->q, o->msg.to, b->ebuf, (uint32_t)len);
		}
	}
	for (uint32_t k = 0; k < u->nacks; k++)
		if (u->acks[k].status == PX_ACK_CHOSEN)
			b->acked++;
	if (u->napply) {
		nd->applied = u->apply[u->napply - 1].slot;
		if (nd->applied % 1024 < u->napply)
			snap = nd->applied;
	}
	nd->deadline = u->deadline;
	if (snap) {
		struct px_event ev = {.type = PX_EV_SNAPSHOT_TAKEN, .now = b->now, .slot = snap};
		step(b, i, &ev);
	}
}

static void step(struct bench *b, uint32_t i, struct px_event *ev)
{
	struct px_update u;
	ev->rand = rnd(b);
	b->steps++;
	if (px_step(b->nodes[i].px, ev, &u)) {
		fprintf(stderr, "px_bench: px_step failed\n");
		exit(1);
	}
	handle(b, i, &u);
}

/* One round: deliver what is queued, then group-commit every node's records. */
static void round_trip(struct bench *b)
{
	size_t n = b->q.n;
	for (size_t k = 0; k < n; k++) {
		struct qmsg m = b->q.v[b->q.head];
		struct px_msg msg;
		struct px_event ev = {.type = PX_EV_RECEIVE, .now = b->now, .msg = &msg};
		b->q.head++;
		b->q.n--;
		if (px_msg_decode(m.buf, m.len, &msg, &b->sc)) {
			fprintf(stderr, "px_bench: decode failed\n");
			exit(1);
		}
		step(b, m.to, &ev);
		free(m.buf);
	}
	for (uint32_t i = 0; i < b->n; i++) {
		struct bnode *nd = &b->nodes[i];
		size_t j = 0;
		if (nd->last_seq > nd->durable) {
			struct px_event ev = {
			    .type = PX_EV_PERSISTED, .now = b->now, .seq = nd->last_seq};
			nd->durable = nd->last_seq;
			step(b, i, &ev);
		}
		for (size_t k = 0; k < nd->nheld; k++) {
			if (nd->held[k].wait <= nd->durable) {
				qpush(&b->q, nd->held[k].to, nd->held[k].buf, nd->held[k].len);
				free(nd->held[k].buf);
			} else {
				nd->held[j++] = nd->held[k];
			}
		}
		nd->nheld = j;
	}
	b->now++;
	for (uint32_t i = 0; i < b->n; i++)
		if (b->nodes[i].deadline <= b->now) {
			struct px_event ev = {.type = PX_EV_TICK, .now = b->now};
			step(b, i, &ev);
		}
}

static int run(uint32_t n, uint64_t ops, uint32_t batch, uint32_t window, uint32_t size,
	       double *rate, double *msgs_per_op)
{
	struct bench *b = calloc(1, sizeof(*b));
	struct px_sub *subs = calloc(batch, sizeof(*subs));
	uint8_t *payload = calloc(size ? size : 1, 1);
	uint64_t submitted = 0, seq = 0;
	uint32_t leader = UINT32_MAX;
	clock_t c0;

	if (!b || !subs || !payload)
		return -1;
	b->n = n;
	b->rnd = 0x9e3779b97f4a7c15ull;
	for (uint32_t i = 0; i < n; i++) {
		struct px_config cfg = {.id = i,
					.n = n,
					.heartbeat = 1000,
					.election = 5000 + 1000 * i,
					.window = window,
					.max_batch = batch,
					.max_pending = 1u << 20,
					.keep_after_snapshot = 64};
		if (px_init(&b->nodes[i].px, &cfg, NULL, 0, rnd(b)))
			return -1;
		b->nodes[i].deadline = 0;
	}
	/* elect a leader */
	for (int k = 0; k < 100000 && leader == UINT32_MAX; k++) {
		round_trip(b);
		for (uint32_t i = 0; i < n; i++)
			if (px_role(b->nodes[i].px) == PX_LEADER)
				leader = i;
	}
	if (leader == UINT32_MAX) {
		fprintf(stderr, "px_bench: no leader\n");
		return -1;
	}
	for (uint32_t i = 0; i < size; i++)
		payload[i] = (uint8_t)i;
	b->acked = 0;
	b->msgs = 0;
	c0 = clock();
	while (b->acked < ops) {
		/* keep about two windows of batches queued at the leader */
		while (submitted - b->acked < (uint64_t)batch * window * 2 && submitted < ops) {
			struct px_event ev = {.type = PX_EV_SUBMIT, .now = b->now, .nsubs = batch};
			for (uint32_t k = 0; k < batch; k++)
				subs[k] = (struct px_sub){
				    .client = 1, .seq = ++seq, .len = size, .data = payload};
			ev.subs = subs;
			step(b, leader, &ev);
			submitted += batch;
		}
		round_trip(b);
		if (px_role(b->nodes[leader].px) != PX_LEADER) {
			fprintf(stderr, "px_bench: the leader stepped down\n");
			return -1;
		}
	}
	*rate = (double)b->acked / ((double)(clock() - c0) / CLOCKS_PER_SEC);
	*msgs_per_op = (double)b->msgs / (double)b->acked;
	for (uint32_t i = 0; i < n; i++) {
		if (b->nodes[i].applied == 0 && i != leader) {
			fprintf(stderr, "px_bench: node %u applied nothing\n", i);
			return -1;
		}
		px_free(b->nodes[i].px);
		for (size_t k = 0; k < b->nodes[i].nheld; k++)
			free(b->nodes[i].held[k].buf);
		free(b->nodes[i].held);
	}
	for (size_t k = 0; k < b->q.n; k++)
		free(b->q.v[b->q.head + k].buf);
	free(b->q.v);
	free(b->ebuf);
	px_msg_scratch_free(&b->sc);
	free(b);
	free(subs);
	free(payload);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t ops = 5000000;
	uint32_t batch = 100, window = 8, size = 16;
	int quick = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick"))
			quick = 1;
		else if (!strcmp(argv[i], "--ops") && i + 1 < argc)
			ops = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
			batch = (uint32_t)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--window") && i + 1 < argc)
			window = (uint32_t)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--size") && i + 1 < argc)
			size = (uint32_t)strtoul(argv[++i], NULL, 0);
		else {
			fprintf(stderr,
				"usage: %s [--quick] [--ops N] [--batch B] [--window W] [--size "
				"BYTES]\n",
				argv[0]);
			return 2;
		}
	}
	if (quick)
		ops = 20000;
	for (uint32_t n = 3; n <= 5; n += 2) {
		double rate, mpo;
		if (run(n, ops, batch, window, size, &rate, &mpo)) {
			fprintf(stderr, "px_bench: %u nodes: failed\n", n);
			return 1;
		}
		printf("px_bench: %u nodes, batch %u, window %u, %u-byte ops: %llu ops committed, "
		       "%.2f M ops per CPU-second (core + codec + harness), %.3f messages per op\n",
		       n, batch, window, size, (unsigned long long)ops, rate / 1e6, mpo);
	}
	return 0;
}
