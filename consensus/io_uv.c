/*
 * io_uv: the loop thread of the Multi-Paxos replica and its rp.h entry points (see rp_paxos.h).
 *
 * One libuv loop runs the protocol core: frames from io_net (PX_EV_RECEIVE), the core's deadline
 * (a uv timer, PX_EV_TICK), submissions from any thread (a queue + uv_async, PX_EV_SUBMIT) and
 * what the storage thread made durable (PX_EV_PERSISTED, PX_EV_SNAPSHOT_INSTALLED/TAKEN). Each
 * px_update is carried out in its order: records to persist and slots to apply go to the storage
 * thread as jobs; messages leave at once, or are held until their persist seq is durable.
 *
 * Snapshots: the tree is durable in LMDB, so serving a snapshot request is a read snapshot of the
 * tree, the filter and the applied slot (written together by the storage thread), streamed to the
 * peer in chunks ("QSNP" frames, beside the core's "QPXM" ones) at the pace the connection takes.
 * The receiver stages the chunks through the storage thread and installs them in one transaction.
 *
 * Time for the core is uv_now(): milliseconds, monotonic. Randomness comes from libsodium.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "consensus/io_snap.h"
#include "consensus/rp_paxos.h"
#include "consensus/rp_test.h"
#include "store/st_test.h"
#include "store/zt_snap.h"

#define RPX__SNAP_CHUNK	 ((size_t)2 << 20)
#define RPX__PUMP_MS	 2
#define RPX__PUMP_CHUNKS 4
#define RPX__RCV_IDLE_MS 2000 /* a transfer without a frame for this long may be replaced */
#define RPX__REBOOT_MS	 100  /* pause before a failed core is created again */
#define RPX__HELD_MAX	 ((size_t)64 << 20) /* bytes held for persistence at most */
/* The leader's slots in flight at most. Fewer slots in flight make bigger batches: every slot
 * costs each node a storage commit, messages and thread wake-ups whatever its size. Measured
 * with 48 writers on 3 nodes (tools/perf, session 4): window 8 ~2 writes a slot, 4,151-4,554
 * writes/s, 393-424 us of CPU per write; window 2 ~5 writes a slot, 4,587-5,016 writes/s,
 * 322-389 us, lower p99; with 0.5 ms added each way between nodes both did ~4,710/s. */
#define RPX__WINDOW 2
#define RPX__VIS_WAIT_S 5 /* rp_read_wait waits no longer */

struct rpx_snd {
	struct st_rtxn *r;
	struct zt_snap_cursor cur;
	uint32_t to; /* node id */
	uint64_t xfer;
	uint32_t idx;
	uint64_t nrec;
};

static uint64_t rpx__rand(void)
{
	uint64_t r;
	randombytes_buf(&r, sizeof r);
	return r;
}

void rpx__wake(struct rpx *x)
{
	pthread_mutex_lock(&x->back_lock);
	if (!x->back.wake_closed)
		uv_async_send(&x->wake);
	pthread_mutex_unlock(&x->back_lock);
}

static int rpx__pxid(const struct rpx *x, uint32_t node)
{
	for (uint32_t i = 0; i < x->n; i++)
		if (x->ids[i] == node)
			return (int)i;
	return -1;
}

/* ---- sending ---- */

/* io_net_send, unless a test cut the link to node TO (then the frame is lost, as on a network). */
static int rpx__net_send(struct rpx *x, uint32_t to, const void *body, size_t len)
{
	int p = rpx__pxid(x, to);
	if (p >= 0 && __atomic_load_n(&x->cut[p], __ATOMIC_RELAXED))
		return 0;
	return io_net_send(x->net, to, body, len);
}

static int rpx__enc_reserve(struct rpx *x, size_t n)
{
	if (n <= x->enc_cap)
		return 0;
	uint8_t *p = realloc(x->enc, n);
	if (!p)
		return -ENOMEM;
	x->enc = p;
	x->enc_cap = n;
	return 0;
}

/* Send or hold one of the core's messages. */
static void rpx__send_msg(struct rpx *x, const struct px_out *o)
{
	size_t n = px_msg_size(&o->msg);
	uint32_t to;
	long len;

	if (o->msg.to >= x->n)
		return;
	to = x->ids[o->msg.to];
	if (o->wait_seq > x->persisted) {
		struct rpx_held *h;
		if (x->held_bytes + n > RPX__HELD_MAX)
			return; /* the network is lossy: the core retries */
		h = malloc(sizeof *h + n);
		if (!h)
			return;
		len = px_msg_encode(&o->msg, h->body, n);
		if (len < 0) {
			free(h);
			return;
		}
		h->next = NULL;
		h->wait_seq = o->wait_seq;
		h->to = to;
		h->len = (size_t)len;
		x->held_bytes += (size_t)len;
		*x->held_tail = h;
		x->held_tail = &h->next;
		return;
	}
	if (rpx__enc_reserve(x, n))
		return;
	len = px_msg_encode(&o->msg, x->enc, n);
	if (len > 0)
		rpx__net_send(x, to, x->enc, (size_t)len);
}

/* Send the held messages whose persist seq is now durable (they are in seq order). */
static void rpx__flush_held(struct rpx *x)
{
	while (x->held && x->held->wait_seq <= x->persisted) {
		struct rpx_held *h = x->held;
		x->held = h->next;
		rpx__net_send(x, h->to, h->body, h->len);
		x->held_bytes -= h->len;
		free(h);
	}
	if (!x->held)
		x->held_tail = &x->held;
}

/* ---- snapshots: sending ---- */

static void rpx__snd_free(struct rpx *x, uint32_t p)
{
	struct rpx_snd *s = x->snd[p];
	if (!s)
		return;
	st_rend(s->r);
	free(s);
	x->snd[p] = NULL;
}

static void rpx__snap_hdr(uint8_t *b, int kind, uint64_t xfer, uint32_t idx)
{
	rpx__put32(b, RPX__SNAP_MAGIC);
	b[4] = (uint8_t)kind;
	b[5] = b[6] = b[7] = 0;
	rpx__put64(b + 8, xfer);
	rpx__put32(b + 16, idx);
}

/* Serve a snapshot request: begin a transfer of our applied state to px node P. */
static void rpx__snap_start(struct rpx *x, uint32_t p)
{
	struct rpx_snd *s;
	struct zt_snap_state st;
	uint64_t applied = 0;
	MDB_val k = {6, "filter"}, v = {0, NULL}, ka = {7, "applied"}, va;
	int rc;

	if (p >= x->n || p == x->self || x->snd[p])
		return;
	s = calloc(1, sizeof *s);
	if (!s)
		return;
	rc = st_rbegin(x->env, &s->r);
	if (rc) {
		free(s);
		return;
	}
	x->snd[p] = s;
	s->to = x->ids[p];
	s->xfer = ++x->xfer_next;
	rc = zt_snap_state(s->r, &st);
	if (rc == 0 && mdb_get(s->r->txn, x->db_meta, &ka, &va) == 0 && va.mv_size == 8)
		memcpy(&applied, va.mv_data, 8);
	if (rc == 0) {
		int g = mdb_get(s->r->txn, x->db_meta, &k, &v);
		if (g == MDB_NOTFOUND)
			v.mv_size = 0;
		else if (g)
			rc = -EIO;
	}
	if (rc || applied == 0 || rpx__enc_reserve(x, RPX__SNAP_HDR + 28 + v.mv_size)) {
		rpx__snd_free(x, p);
		return;
	}
	rpx__snap_hdr(x->enc, RPX__S_BEGIN, s->xfer, 0);
	rpx__put64(x->enc + RPX__SNAP_HDR, applied);
	rpx__put64(x->enc + RPX__SNAP_HDR + 8, st.last_zxid);
	rpx__put64(x->enc + RPX__SNAP_HDR + 16, st.next_id);
	rpx__put32(x->enc + RPX__SNAP_HDR + 24, (uint32_t)v.mv_size);
	if (v.mv_size)
		memcpy(x->enc + RPX__SNAP_HDR + 28, v.mv_data, v.mv_size);
	if (rpx__net_send(x, s->to, x->enc, RPX__SNAP_HDR + 28 + v.mv_size)) {
		rpx__snd_free(x, p);
		return;
	}
	rpx__log(x, RP_LOG_INFO,
		 "sending a snapshot at slot %" PRIu64 " (zxid 0x%" PRIx64 ") to node %u", applied,
		 st.last_zxid, s->to);
	pthread_mutex_lock(&x->stat_lock);
	x->stat.snaps_sent++;
	pthread_mutex_unlock(&x->stat_lock);
}

static void rpx__pump_cb(uv_timer_t *t);

/* Send the next chunks of every transfer, as far as the connections take them. */
static void rpx__pump(struct rpx *x)
{
	int active = 0;

	if (rpx__enc_reserve(x, RPX__SNAP_HDR + RPX__SNAP_CHUNK))
		return;
	for (uint32_t p = 0; p < x->n; p++) {
		struct rpx_snd *s = x->snd[p];
		for (int c = 0; s && c < RPX__PUMP_CHUNKS; c++) {
			struct zt_snap_cursor save = s->cur;
			size_t len;
			long n;
			int rc;
			if (s->cur.done) {
				rpx__snap_hdr(x->enc, RPX__S_END, s->xfer, s->idx);
				rpx__put32(x->enc + RPX__SNAP_HDR, s->idx);
				rpx__put64(x->enc + RPX__SNAP_HDR + 4, s->nrec);
				rc = rpx__net_send(x, s->to, x->enc, RPX__SNAP_HDR + 12);
				if (rc == -ENOBUFS)
					break;
				rpx__snd_free(x, p);
				s = NULL;
				break;
			}
			n = zt_snap_export(s->r, &s->cur, x->enc + RPX__SNAP_HDR, RPX__SNAP_CHUNK,
					   &len);
			if (n < 0) {
				rpx__snd_free(x, p);
				s = NULL;
				break;
			}
			if (n == 0)
				continue; /* done: END next */
			rpx__snap_hdr(x->enc, RPX__S_DATA, s->xfer, s->idx);
			rc = rpx__net_send(x, s->to, x->enc, RPX__SNAP_HDR + len);
			if (rc == -ENOBUFS) {
				s->cur = save;
				break;
			}
			if (rc) {
				rpx__snd_free(x, p);
				s = NULL;
				break;
			}
			s->idx++;
			s->nrec += (uint64_t)n;
		}
		if (s)
			active = 1;
	}
	if (active)
		uv_timer_start(&x->pump, rpx__pump_cb, RPX__PUMP_MS, 0);
}

static void rpx__pump_cb(uv_timer_t *t)
{
	rpx__pump(t->data);
}

/* ---- the core ---- */

static void rpx__check_ready(struct rpx *x);

static void rpx__stat_update(struct rpx *x)
{
	uint32_t l;

	if (!x->px) {
		pthread_mutex_lock(&x->stat_lock);
		x->stat.restarting = 1;
		x->stat.leader = 0;
		pthread_mutex_unlock(&x->stat_lock);
		return;
	}
	l = px_leader(x->px);
	pthread_mutex_lock(&x->stat_lock);
	x->stat.restarting = 0;
	x->stat.role = px_role(x->px);
	x->stat.leader = l < x->n ? x->ids[l] : 0;
	x->stat.ballot = px_ballot(x->px);
	x->stat.commit = px_commit(x->px);
	x->stat.delivered = px_applied(x->px);
	for (uint32_t i = 0; i < x->n; i++)
		x->stat.up[i] = i == x->self ? 1 : io_net_connected(x->net, x->ids[i]);
	pthread_mutex_unlock(&x->stat_lock);
	rpx__check_ready(x);
}

static void rpx__timer_cb(uv_timer_t *t);
static void rpx__step(struct rpx *x, struct px_event *ev, struct rpx_item *news);

static void rpx__set_ready(struct rpx *x)
{
	pthread_mutex_lock(&x->ready_lock);
	__atomic_store_n(&x->ready, 1, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&x->ready_cond);
	pthread_mutex_unlock(&x->ready_lock);
}

/* Reads after start (rp_read_barrier): the first leader's commit index heard is the target; ready
 * once applied, or once the bound passed. Loop thread, after every step. */
static void rpx__check_ready(struct rpx *x)
{
	uint64_t applied;

	if (__atomic_load_n(&x->ready, __ATOMIC_ACQUIRE) || !x->px)
		return;
	if (!x->ready_slot && px_leader(x->px) < x->n && px_leader_commit(x->px))
		x->ready_slot = px_leader_commit(x->px);
	else if (!x->ready_slot && px_leader(x->px) < x->n)
		x->ready_slot = UINT64_MAX; /* a leader with nothing chosen yet: nothing to wait for */
	applied = __atomic_load_n(&x->applied_slot, __ATOMIC_ACQUIRE);
	if (x->ready_slot && (x->ready_slot == UINT64_MAX || applied >= x->ready_slot)) {
		rpx__log(x, RP_LOG_INFO, "caught up (applied slot %" PRIu64 "): serving reads",
			 applied);
		rpx__set_ready(x);
	} else if (uv_now(&x->loop) >= x->ready_by) {
		rpx__log(x, RP_LOG_WARN,
			 "not caught up with a leader within %u ms of the start (applied slot %" PRIu64
			 "): serving reads from the local state, which may be behind",
			 x->cl.write_timeout_ms, applied);
		rpx__set_ready(x);
	}
}

/* Append J to the chain whose last link is *TAIL (see rpx__jobs_push). */
static void rpx__chain(struct rpx_job ***tail, struct rpx_job *j)
{
	j->next = NULL;
	**tail = j;
	*tail = &j->next;
}

/* Add the REGISTER jobs of the submissions NEWS (just given to the core) to the chain *TAIL. */
static void rpx__register_to(struct rpx_item *news, struct rpx_job ***tail)
{
	while (news) {
		struct rpx_item *next = news->next;
		struct rpx_job *j = news->reg;
		news->reg = NULL;
		j->item = news;
		rpx__chain(tail, j);
		news = next;
	}
}

/* Hand the submissions NEWS (just given to the core) to the storage thread. */
static void rpx__register(struct rpx *x, struct rpx_item *news)
{
	struct rpx_job *head = NULL, **tail = &head;

	rpx__register_to(news, &tail);
	rpx__jobs_push(x, head);
}

/* Carry out U (see px_node.h), after pushing the REGISTER jobs of NEWS (submissions just given to
 * the core) so that the storage thread knows them before any outcome. */
static void rpx__update(struct rpx *x, const struct px_update *u, struct rpx_item *news)
{
	uint64_t now = uv_now(&x->loop);
	/* Every job of this update is queued at once, after the messages left: the storage thread
	 * then commits the records, the applies and the acks in one transaction (one fsync)
	 * instead of waking for the first job and committing the rest in a second one. */
	struct rpx_job *head = NULL, **tail = &head;

	rpx__register_to(news, &tail);
	if (u->persist_seq) {
		size_t total = 0;
		for (uint32_t i = 0; i < u->naccepted; i++)
			total += u->accepted[i].len;
		struct rpx_job *j =
		    rpx__job_new(RPX_J_PERSIST, total + u->naccepted * sizeof(struct px_entry));
		if (j) {
			uint8_t *p = j->buf + u->naccepted * sizeof(struct px_entry);
			j->a = u->persist_seq;
			j->flags = (u->promise_changed ? RPX_P_PROMISE : 0) |
				   (u->initialised_changed ? RPX_P_INIT : 0) |
				   (u->commit_changed ? RPX_P_COMMIT : 0);
			j->promised = u->promised;
			j->commit = u->commit;
			j->ents = (struct px_entry *)j->buf;
			j->n = u->naccepted;
			for (uint32_t i = 0; i < u->naccepted; i++) {
				j->ents[i] = u->accepted[i];
				if (u->accepted[i].len)
					memcpy(p, u->accepted[i].data, u->accepted[i].len);
				j->ents[i].data = p;
				p += u->accepted[i].len;
			}
			rpx__chain(&tail, j);
		} else {
			/* Cannot persist: the seq never becomes durable and what waits on it never
			 * leaves. Record it as a storage failure of this node. */
			rpx__log(x, RP_LOG_ERROR, "out of memory persisting acceptor state");
			pthread_mutex_lock(&x->back_lock);
			x->back.failed = 1;
			pthread_mutex_unlock(&x->back_lock);
		}
	}
	for (uint32_t i = 0; i < u->nmsgs; i++)
		rpx__send_msg(x, &u->msgs[i]);
	for (uint32_t i = 0; i < u->napply; i++) {
		struct rpx_job *j = rpx__job_new(RPX_J_APPLY, u->apply[i].len);
		if (!j) {
			rpx__log(x, RP_LOG_ERROR, "out of memory applying slot %" PRIu64,
				 u->apply[i].slot);
			pthread_mutex_lock(&x->back_lock);
			x->back.failed = 1;
			pthread_mutex_unlock(&x->back_lock);
			break;
		}
		j->a = u->apply[i].slot;
		if (u->apply[i].len)
			memcpy(j->buf, u->apply[i].value, u->apply[i].len);
		rpx__chain(&tail, j);
	}
	for (uint32_t i = 0; i < u->nacks; i++) {
		struct rpx_job *j;
		if (u->acks[i].client != x->client)
			continue;
		j = rpx__job_new(RPX_J_ACK, 0);
		if (!j)
			continue; /* the item then completes at close */
		j->a = u->acks[i].seq;
		j->client = u->acks[i].client;
		j->b = u->acks[i].slot;
		j->status = u->acks[i].status;
		rpx__chain(&tail, j);
	}
	for (uint32_t i = 0; i < u->nsnaps; i++)
		rpx__snap_start(x, u->snaps[i].to);
	if (u->nsnaps)
		rpx__pump(x);
	if (u->truncate && px_log_base(x->px) > 1) {
		/* stored records follow the core's log: what it dropped below its snapshot (by slot
		 * count and by bytes, px_config.keep_*_after_snapshot) goes from disk too */
		struct rpx_job *j = rpx__job_new(RPX_J_COMPACT, 0);
		if (j) {
			j->a = px_log_base(x->px) - 1;
			rpx__chain(&tail, j);
		}
	}
	rpx__jobs_push(x, head);
	if (!x->stopping) {
		uint64_t d = u->deadline > now ? u->deadline - now : 0;
		uv_timer_start(&x->timer, rpx__timer_cb, d, 0);
	}
	rpx__stat_update(x);
	rpx__sess_check(x);
}

/* Drop the held messages (they wait for persist seqs of a core that is gone). */
static void rpx__drop_held(struct rpx *x)
{
	while (x->held) {
		struct rpx_held *h = x->held;
		x->held = h->next;
		x->held_bytes -= h->len;
		free(h);
	}
	x->held_tail = &x->held;
}

/* The core failed (or the storage thread lost a commit): free it; the storage thread drains what
 * came before, fails every pending submission and reloads; then rpx__recreate runs. */
static void rpx__kill_core(struct rpx *x, int push_reboot)
{
	if (x->px) {
		px_free(x->px);
		x->px = NULL;
	}
	x->px_dead = 1;
	x->reboot_pushed = !push_reboot;
	rpx__drop_held(x);
	x->rcv.active = 0;
	if (push_reboot) {
		struct rpx_job *j = rpx__job_new(RPX_J_REBOOT, 0);
		if (j) {
			rpx__job_push(x, j);
			x->reboot_pushed = 1;
		}
	}
	rpx__stat_update(x);
	if (!x->stopping)
		uv_timer_start(&x->timer, rpx__timer_cb, RPX__REBOOT_MS, 0);
}

/* Create the core again from the durable state, as after a crash (px_node.h). */
static void rpx__recreate(struct rpx *x)
{
	struct px_boot boot;
	struct px_entry *ents = NULL;
	uint8_t *arena = NULL;
	struct st_rtxn *r;
	int rc = st_rbegin(x->env, &r);

	if (rc == 0) {
		rc = rpx__read_state(x, r, &boot, &ents, &arena, NULL, NULL);
		st_rend(r);
	}
	if (rc == 0) {
		uv_update_time(&x->loop);
		rc = px_init(&x->px, &x->pc, &boot, uv_now(&x->loop), rpx__rand());
	}
	free(ents);
	free(arena);
	if (rc) {
		rpx__log(x, RP_LOG_ERROR, "cannot recreate the protocol core (%s): retrying",
			 strerror(-rc));
		uv_timer_start(&x->timer, rpx__timer_cb, RPX__REBOOT_MS, 0);
		return;
	}
	x->epoch = x->reboot_to;
	x->reboot_to = 0;
	/* the old core's pending submissions were failed: a new client (incarnation), seqs from 1 */
	{
		struct timespec ts;
		uint64_t now;
		clock_gettime(CLOCK_REALTIME, &ts);
		now = ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000) & PX_INC_MASK;
		__atomic_store_n(&x->inc, now > x->inc ? now : (x->inc + 1) & PX_INC_MASK,
				 __ATOMIC_RELAXED);
	}
	x->client = PX_CLIENT(x->cl.self_id, x->inc, 0);
	x->cseq = 0;
	x->px_dead = 0;
	x->persisted = 0;
	pthread_mutex_lock(&x->back_lock);
	x->back.persisted = 0;
	x->back.installed = 0;
	free(x->back.installed_filter);
	x->back.installed_filter = NULL;
	x->back.taken = 0;
	pthread_mutex_unlock(&x->back_lock);
	__atomic_add_fetch(&x->restarts, 1, __ATOMIC_RELAXED);
	rpx__log(x, RP_LOG_WARN, "protocol core recreated from disk (epoch %" PRIu64 ")", x->epoch);
	struct px_event ev = {.type = PX_EV_TICK};
	rpx__step(x, &ev, NULL);
}

static void rpx__step(struct rpx *x, struct px_event *ev, struct rpx_item *news)
{
	struct px_update u;
	int rc;

	/* the clock now, not the loop's reading from the start of this iteration: a process stopped
	 * mid-iteration (SIGSTOP, a long swap-in) finishes it with sockets full of what came
	 * meanwhile, and the core must see that time passed (a leader then checks its quorum) */
	uv_update_time(&x->loop);
	ev->now = uv_now(&x->loop);
	ev->rand = rpx__rand();
	{
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ev->wall = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	}
	if (!x->px) {
		/* nothing reaches a dead core; new submissions fail with its jobs (the timer stays
		 * on the reboot schedule) */
		rpx__register(x, news);
		return;
	}
	rc = px_step(x->px, ev, &u);
	if (rc == -ENOMEM || rc == -ENOTRECOVERABLE) {
		/* *u must not be acted on; the node is unusable (px_node.h) */
		rpx__log(x, RP_LOG_ERROR, "protocol core out of memory: recreating it from disk");
		rpx__register(x, news);
		rpx__kill_core(x, 1);
		return;
	}
	rpx__update(x, &u, news);
}

static void rpx__timer_cb(uv_timer_t *t)
{
	struct rpx *x = t->data;
	struct px_event ev = {.type = PX_EV_TICK};

	if (x->px_dead) {
		if (!x->reboot_pushed) {
			struct rpx_job *j = rpx__job_new(RPX_J_REBOOT, 0);
			if (j) {
				rpx__job_push(x, j);
				x->reboot_pushed = 1;
			}
		}
		if (x->reboot_to)
			rpx__recreate(x);
		else
			uv_timer_start(&x->timer, rpx__timer_cb, RPX__REBOOT_MS, 0);
		return;
	}
	rpx__step(x, &ev, NULL);
}

/* ---- snapshots: receiving ---- */

static void rpx__snap_frame(struct rpx *x, uint32_t from, const uint8_t *frame, size_t flen)
{
	struct rpx_snap_frame f;
	struct rpx_job *j;

	if (rpx__snap_frame_decode(frame, flen, &f))
		return;
	const uint8_t *b = f.body;
	size_t len = f.len;
	uint64_t xfer = f.xfer;
	uint32_t idx = f.idx;
	switch (f.kind) {
	case RPX__S_BEGIN: {
		uint64_t slot = f.slot;
		if (!x->px)
			return;
		if (x->rcv.active && slot <= x->rcv.slot &&
		    uv_now(&x->loop) < x->rcv.last + RPX__RCV_IDLE_MS)
			return; /* one that covers as much is arriving: let it finish */
		if (slot <= px_applied(x->px) ||
		    slot <= __atomic_load_n(&x->applied_slot, __ATOMIC_ACQUIRE))
			return;
		j = rpx__job_new(RPX_J_SNAP_BEGIN, 0);
		if (!j)
			return;
		rpx__job_push(x, j);
		x->rcv.active = 1;
		x->rcv.from = from;
		x->rcv.xfer = xfer;
		x->rcv.slot = slot;
		x->rcv.idx = 0;
		x->rcv.nrec = 0;
		x->rcv.last = uv_now(&x->loop);
		/* keep the state for the install, as the END job's payload */
		free(x->rcv_begin);
		x->rcv_begin = malloc(len);
		if (!x->rcv_begin) {
			x->rcv.active = 0;
			return;
		}
		memcpy(x->rcv_begin, b, len);
		x->rcv_begin_len = len;
		rpx__log(x, RP_LOG_INFO, "receiving a snapshot at slot %" PRIu64 " from node %u",
			 slot, from);
		return;
	}
	case RPX__S_DATA:
		if (!x->rcv.active || x->rcv.from != from || x->rcv.xfer != xfer ||
		    x->rcv.idx != idx)
			return;
		j = rpx__job_new(RPX_J_SNAP_DATA, len);
		if (!j) {
			x->rcv.active = 0;
			return;
		}
		memcpy(j->buf, b, len);
		rpx__job_push(x, j);
		x->rcv.idx++;
		x->rcv.last = uv_now(&x->loop);
		return;
	case RPX__S_END:
		if (!x->rcv.active || x->rcv.from != from || x->rcv.xfer != xfer ||
		    f.chunks != x->rcv.idx)
			return;
		x->rcv.active = 0;
		j = rpx__job_new(RPX_J_SNAP_END, x->rcv_begin_len - 28);
		if (!j)
			return;
		j->a = rpx__get64(x->rcv_begin);
		j->b = f.nrec; /* checked against what was staged (rpx__snap_end) */
		j->zxid = rpx__get64(x->rcv_begin + 8);
		j->next_id = rpx__get64(x->rcv_begin + 16);
		memcpy(j->buf, x->rcv_begin + 28, j->len);
		rpx__job_push(x, j);
		return;
	default:
		return;
	}
}

/* ---- io_net callbacks ---- */

static void rpx__recv(void *arg, uint32_t from, const void *body, size_t len)
{
	struct rpx *x = arg;
	const uint8_t *b = body;
	struct px_msg m;
	int p = rpx__pxid(x, from);

	if (p < 0 || len < 4 || x->stopping || !x->px ||
	    __atomic_load_n(&x->cut[p], __ATOMIC_RELAXED))
		return;
	rpx__sess_heard(x, (uint32_t)p);
	if (rpx__get32(b) == RPX__SNAP_MAGIC) {
		rpx__snap_frame(x, from, b, len);
		return;
	}
	if (px_msg_decode(b, len, &m, &x->scratch))
		return;
	if (m.from != (uint32_t)p || m.to != x->self)
		return; /* an authenticated peer speaks only for itself */
	struct px_event ev = {.type = PX_EV_RECEIVE, .msg = &m};
	rpx__step(x, &ev, NULL);
}

static void rpx__peer(void *arg, uint32_t id, int up)
{
	struct rpx *x = arg;
	rpx__log(x, RP_LOG_INFO, "peer %u %s", id, up ? "connected" : "disconnected");
	if (x->px && !x->stopping)
		rpx__stat_update(x);
	if (!up && x->px && !x->stopping) {
		int p = rpx__pxid(x, id);

		if (p >= 0 && !__atomic_load_n(&x->cut[p], __ATOMIC_RELAXED)) {
			struct px_event ev = {.type = PX_EV_PEER_DOWN, .node = (uint32_t)p};

			rpx__step(x, &ev, NULL);
		}
	}
}

static void rpx__net_log(void *arg, enum io_net_log_level level, const char *msg)
{
	struct rpx *x = arg;
	rpx__log(x, (enum rp_log_level)level, "net: %s", msg);
}

static void rpx__cluster(void *arg, const uint8_t id[IO_NET_CLUSTER_LEN])
{
	struct rpx *x = arg;
	struct rpx_job *j = rpx__job_new(RPX_J_CLUSTER, RP_CLUSTER_LEN);

	if (!j)
		return;
	memcpy(x->cluster_id, id, RP_CLUSTER_LEN);
	io_net_set_cluster_id(x->net, id);
	memcpy(j->buf, id, RP_CLUSTER_LEN);
	rpx__job_push(x, j);
	rpx__log(x, RP_LOG_INFO, "learnt the cluster id from a peer");
}

/* ---- the wake-up: submissions, storage reports, stop ---- */

static void rpx__close_handles(struct rpx *x)
{
	pthread_mutex_lock(&x->back_lock);
	x->back.wake_closed = 1;
	pthread_mutex_unlock(&x->back_lock);
	for (uint32_t p = 0; p < x->n; p++)
		rpx__snd_free(x, p);
	io_net_close(x->net);
	uv_close((uv_handle_t *)&x->timer, NULL);
	uv_close((uv_handle_t *)&x->pump, NULL);
	uv_close((uv_handle_t *)&x->wake, NULL);
}

static void rpx__wake_cb(uv_async_t *a)
{
	struct rpx *x = a->data;
	struct rpx_item *items;
	struct rpx_back b;
	int closing;

	pthread_mutex_lock(&x->back_lock);
	b = x->back;
	x->back.reboot_epoch = 0;
	x->back.installed = 0;
	x->back.installed_filter = NULL;
	x->back.installed_flen = 0;
	x->back.taken = 0;
	pthread_mutex_unlock(&x->back_lock);
	if (b.reboot_epoch) {
		/* the storage thread reloaded the durable state for a new core */
		if (x->px)
			rpx__kill_core(x, 0);
		x->reboot_to = b.reboot_epoch;
		free(b.installed_filter);
		b.installed_filter = NULL;
		b.installed = b.taken = b.persisted = 0;
	}
	if (b.persisted > x->persisted && x->px) {
		struct px_event ev = {.type = PX_EV_PERSISTED, .seq = b.persisted};
		x->persisted = b.persisted;
		rpx__flush_held(x);
		rpx__step(x, &ev, NULL);
	}
	if (b.installed && x->px) {
		struct px_filter f = {0};
		struct px_event ev = {.type = PX_EV_SNAPSHOT_INSTALLED, .slot = b.installed};
		if (px_filter_decode(&f, b.installed_filter, b.installed_flen) == 0)
			ev.filter = &f;
		rpx__log(x, RP_LOG_INFO, "installed a snapshot at slot %" PRIu64, b.installed);
		rpx__step(x, &ev, NULL);
		px_filter_free(&f);
	}
	free(b.installed_filter);
	if (b.taken && x->px) {
		struct px_event ev = {.type = PX_EV_SNAPSHOT_TAKEN, .slot = b.taken};
		rpx__step(x, &ev, NULL);
	}

	pthread_mutex_lock(&x->sub_lock);
	items = x->sub_head;
	x->sub_head = NULL;
	x->sub_tail = &x->sub_head;
	closing = x->closing;
	pthread_mutex_unlock(&x->sub_lock);
	while (items && !x->stopping) {
		struct px_sub subs[256];
		struct rpx_item *first = items, *last = NULL;
		uint32_t k = 0;
		for (; items && k < 256; items = items->next) {
			/* the core's seqs: 1, 2, 3, ... per client, in the order handed over */
			items->client = x->client;
			items->seq = ++x->cseq;
			subs[k++] = (struct px_sub){.client = x->client,
						    .seq = items->seq,
						    .len = items->len,
						    .data = items->value};
			last = items;
		}
		last->next = NULL;
		struct px_event ev = {.type = PX_EV_SUBMIT, .subs = subs, .nsubs = k};
		rpx__step(x, &ev, first);
	}
	if (items)
		rpx__register(x, items); /* the storage thread fails them */
	if (closing && !x->stopping) {
		x->stopping = 1;
		uv_timer_stop(&x->timer);
		rpx__close_handles(x);
	}
}

/* ---- the loop thread ---- */

static void *rpx__loop_main(void *arg)
{
	struct rpx *x = arg;

	uv_run(&x->loop, UV_RUN_DEFAULT);
	uv_loop_close(&x->loop);
	return NULL;
}

/* ---- rp.h ---- */

static int rpx__queue(struct rpx *x, struct rpx_item *it)
{
	it->reg = rpx__job_new(RPX_J_REGISTER, 0);
	if (!it->reg) {
		free(it);
		return -ENOMEM;
	}
	pthread_mutex_lock(&x->sub_lock);
	if (x->closing) {
		pthread_mutex_unlock(&x->sub_lock);
		free(it->reg);
		free(it);
		return -ESHUTDOWN;
	}
	it->seq = ++x->next_seq;
	it->next = NULL;
	*x->sub_tail = it;
	x->sub_tail = &it->next;
	uv_async_send(&x->wake); /* under the lock: the loop closes it only after seeing closing */
	pthread_mutex_unlock(&x->sub_lock);
	return 0;
}

static int64_t rpx__now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* An item with room for NOPS results and a value of RPX_V_HDR + BODY bytes. */
static struct rpx_item *rpx__item_new(rp_done_cb cb, void *arg, uint32_t nops, unsigned kind,
				      const void *body, size_t blen)
{
	size_t vlen = RPX_V_HDR + blen;
	struct rpx_item *it;
	int64_t t = rpx__now_ms();

	it = calloc(1, sizeof *it + nops * sizeof(struct zt_result) + vlen);
	if (!it)
		return NULL;
	it->cb = cb;
	it->arg = arg;
	it->nops = nops;
	it->res = (struct zt_result *)(it + 1);
	it->value = (uint8_t *)(it->res + nops);
	it->len = (uint32_t)vlen;
	it->value[0] = (uint8_t)kind;
	memcpy(it->value + 1, &t, 8);
	if (blen)
		memcpy(it->value + RPX_V_HDR, body, blen);
	return it;
}

static int rpx_submit(struct rp *rp, const struct zt_op *ops, uint32_t nops, rp_done_cb cb,
		      void *arg)
{
	struct rpx *x = (struct rpx *)rp;
	struct rpx_item *it;
	void *enc = NULL;
	size_t elen = 0;
	int rc = zt_ops_encode(ops, nops, &enc, &elen); /* ops validated by rp_submit */

	if (rc)
		return rc;
	it = rpx__item_new(cb, arg, nops, RPX_V_TXN, enc, elen);
	free(enc);
	if (!it)
		return -ENOMEM;
	return rpx__queue(x, it);
}

static int rpx_sync(struct rp *rp, rp_done_cb cb, void *arg)
{
	struct rpx *x = (struct rpx *)rp;
	struct rpx_item *it = rpx__item_new(cb, arg, 0, RPX_V_SYNC, NULL, 0);

	if (!it)
		return -ENOMEM;
	return rpx__queue(x, it);
}

static struct st_env *rpx_env(struct rp *rp)
{
	return ((struct rpx *)rp)->env;
}

static const char *rpx__role_name(enum px_role r)
{
	switch (r) {
	case PX_LEADER:
		return "leader";
	case PX_CANDIDATE:
		return "candidate";
	case PX_LEARNER:
		return "learner";
	default:
		return "follower";
	}
}

static int rpx_status(struct rp *rp, char *buf, size_t cap)
{
	struct rpx *x = (struct rpx *)rp;
	struct rpx_stat s;
	size_t off = 0;
	int n;

	pthread_mutex_lock(&x->stat_lock);
	s = x->stat;
	pthread_mutex_unlock(&x->stat_lock);
#define OUT(...)                                                                                   \
	do {                                                                                       \
		n = snprintf(off < cap ? buf + off : NULL, off < cap ? cap - off : 0,              \
			     __VA_ARGS__);                                                         \
		if (n < 0)                                                                         \
			return n;                                                                  \
		off += (size_t)n;                                                                  \
	} while (0)
	OUT("id=%u\nrole=%s\nleader=%u\nballot=%" PRIu64 ".%u\nchosen=%" PRIu64 "\ncommit=%" PRIu64
	    "\napplied=0x%016" PRIx64 "\napplied_slot=%" PRIu64 "\nsnapshots_sent=%" PRIu64
	    "\nsnapshots_installed=%" PRIu64 "\n",
	    x->cl.self_id, s.restarting ? "restarting" : rpx__role_name(s.role), s.leader,
	    s.ballot >> 8, (unsigned)(s.ballot & 0xff) < x->n ? x->ids[s.ballot & 0xff] : 0,
	    s.commit, s.commit, __atomic_load_n(&x->applied_zxid, __ATOMIC_ACQUIRE),
	    __atomic_load_n(&x->applied_slot, __ATOMIC_ACQUIRE), s.snaps_sent,
	    __atomic_load_n(&x->snaps_installed, __ATOMIC_RELAXED));
	OUT("core_restarts=%" PRIu64 "\n", __atomic_load_n(&x->restarts, __ATOMIC_RELAXED));
	OUT("commits=%" PRIu64 "\n", st_commits(x->env));
	OUT("wal_records=%" PRIu64 "\nwal_resets=%" PRIu64 "\nwal_replayed=%" PRIu64 "\n",
	    __atomic_load_n(&x->wal.appended, __ATOMIC_RELAXED),
	    __atomic_load_n(&x->wal.resets, __ATOMIC_RELAXED),
	    __atomic_load_n(&x->wal.replayed, __ATOMIC_RELAXED));
	OUT("caught_up=%d\n", __atomic_load_n(&x->ready, __ATOMIC_ACQUIRE));
	for (uint32_t i = 0; i < x->n; i++)
		if (i != x->self)
			OUT("peer.%u=%s\n", x->ids[i], s.up[i] ? "up" : "down");
#undef OUT
	if (cap && off >= cap)
		buf[cap - 1] = '\0';
	return (int)off;
}

static void rpx__free(struct rpx *x)
{
	while (x->held) {
		struct rpx_held *h = x->held;
		x->held = h->next;
		x->held_bytes -= h->len;
		free(h);
	}
	px_free(x->px);
	px_msg_scratch_free(&x->scratch);
	free(x->enc);
	free(x->rcv_begin);
	free(x->back.installed_filter);
	px_filter_free(&x->filter);
	free(x->items);
	free(x->chg.p);
	free(x->scratch_res);
	rpx_wal_close(&x->wal);
	if (x->env)
		st_close(x->env);
	pthread_cond_destroy(&x->job_cond);
	pthread_mutex_destroy(&x->job_lock);
	pthread_mutex_destroy(&x->sub_lock);
	pthread_mutex_destroy(&x->back_lock);
	pthread_mutex_destroy(&x->stat_lock);
	pthread_mutex_destroy(&x->ready_lock);
	pthread_cond_destroy(&x->ready_cond);
	pthread_mutex_destroy(&x->vis_lock);
	pthread_cond_destroy(&x->vis_cond);
	free(x);
}

static void rpx_close(struct rp *rp)
{
	struct rpx *x = (struct rpx *)rp;

	pthread_mutex_lock(&x->sub_lock);
	x->closing = 1;
	uv_async_send(&x->wake);
	pthread_mutex_unlock(&x->sub_lock);
	pthread_join(x->loop_thread, NULL);
	rpx__set_ready(x); /* no reader waits past close */
	pthread_mutex_lock(&x->job_lock);
	x->job_stop = 1;
	pthread_cond_signal(&x->job_cond);
	pthread_mutex_unlock(&x->job_lock);
	pthread_join(x->st_thread, NULL);
	rpx__free(x);
}

static void rpx_read_barrier(struct rp *rp)
{
	struct rpx *x = (struct rpx *)rp;

	pthread_mutex_lock(&x->ready_lock);
	while (!__atomic_load_n(&x->ready, __ATOMIC_ACQUIRE)) {
		/* the loop thread decides (rpx__check_ready); this bound holds even if it cannot */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		if ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 >= x->ready_wall_by) {
			__atomic_store_n(&x->ready, 1, __ATOMIC_RELEASE);
			break;
		}
		ts.tv_sec += 1;
		pthread_cond_timedwait(&x->ready_cond, &x->ready_lock, &ts);
	}
	pthread_mutex_unlock(&x->ready_lock);
}

static void rpx_read_wait(struct rp *rp, uint64_t zxid)
{
	struct rpx *x = (struct rpx *)rp;
	uint64_t target = zxid ? zxid : __atomic_load_n(&x->shown_zxid, __ATOMIC_ACQUIRE);
	struct timespec dl;
	int late = 0;

	if (__atomic_load_n(&x->applied_zxid, __ATOMIC_ACQUIRE) >= target ||
	    pthread_equal(pthread_self(), x->st_thread))
		return;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += RPX__VIS_WAIT_S;
	pthread_mutex_lock(&x->vis_lock);
	while (__atomic_load_n(&x->applied_zxid, __ATOMIC_ACQUIRE) < target)
		if (pthread_cond_timedwait(&x->vis_cond, &x->vis_lock, &dl) == ETIMEDOUT) {
			late = __atomic_load_n(&x->applied_zxid, __ATOMIC_ACQUIRE) < target;
			break;
		}
	pthread_mutex_unlock(&x->vis_lock);
	if (late)
		rpx__log(x, RP_LOG_WARN,
			 "a read waited %d s for the commit of zxid 0x%" PRIx64
			 " (reported before its commit) and goes ahead without it",
			 RPX__VIS_WAIT_S, target);
}

static const struct rp_ops rpx__ops = {
    .submit = rpx_submit,
    .read_barrier = rpx_read_barrier,
    .read_wait = rpx_read_wait,
    .sync = rpx_sync,
    .env = rpx_env,
    .status = rpx_status,
    .close = rpx_close,
};

int rp_test_cut(struct rp *rp, uint32_t peer, int cut)
{
	struct rpx *x = (struct rpx *)rp;
	int p;

	if (!rp || rp->ops != &rpx__ops)
		return -EINVAL;
	p = rpx__pxid(x, peer);
	if (p < 0 || (uint32_t)p == x->self)
		return -EINVAL;
	__atomic_store_n(&x->cut[p], cut ? 1 : 0, __ATOMIC_RELAXED);
	return 0;
}

static int rpx__check(const struct rp_cluster_config *cl, uint32_t ids[RP_MAX_PEERS],
		      uint32_t *self)
{
	if (cl->npeers < 1 || cl->npeers > RP_MAX_PEERS || !(cl->npeers & 1))
		return -EINVAL;
	for (uint32_t i = 0; i < cl->npeers; i++) {
		uint32_t id = cl->peers[i].id, j = i;
		if (id < 1 || id > 255)
			return -EINVAL;
		while (j > 0 && ids[j - 1] > id) { /* insertion sort */
			ids[j] = ids[j - 1];
			j--;
		}
		ids[j] = id;
	}
	*self = UINT32_MAX;
	for (uint32_t i = 0; i < cl->npeers; i++) {
		if (i && ids[i] == ids[i - 1])
			return -EINVAL;
		if (ids[i] == cl->self_id)
			*self = i;
	}
	return *self == UINT32_MAX ? -EINVAL : 0;
}

int rp_open_paxos(const struct rp_config *cfg, const struct rp_cluster_config *cl, struct rp **out)
{
	struct rpx *x;
	struct px_boot boot;
	struct px_entry *ents = NULL;
	uint8_t *arena = NULL;
	struct io_net_config nc;
	int rc, loop_ok = 0, st_started = 0;

	if (!cfg || !cfg->data_dir || !cl || !out)
		return -EINVAL;
	if (sodium_init() < 0)
		return -EIO;
	/* A write to a peer that closed its end must fail with EPIPE, not kill the process: libuv
	 * writes with write(2). Only a default disposition is changed (rp.h). */
	struct sigaction sa;
	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
		sa.sa_handler = SIG_IGN;
		sigemptyset(&sa.sa_mask);
		sa.sa_flags = 0;
		sigaction(SIGPIPE, &sa, NULL);
	}
	x = calloc(1, sizeof *x);
	if (!x)
		return -ENOMEM;
	x->wal.fd = -1;
	pthread_mutex_init(&x->sub_lock, NULL);
	pthread_mutex_init(&x->job_lock, NULL);
	pthread_cond_init(&x->job_cond, NULL);
	pthread_mutex_init(&x->back_lock, NULL);
	pthread_mutex_init(&x->stat_lock, NULL);
	pthread_mutex_init(&x->ready_lock, NULL);
	pthread_cond_init(&x->ready_cond, NULL);
	pthread_mutex_init(&x->vis_lock, NULL);
	pthread_cond_init(&x->vis_cond, NULL);
	x->base.ops = &rpx__ops;
	x->on_change = cfg->on_change;
	x->change_arg = cfg->change_arg;
	x->cl = *cl;
	if (!x->cl.tick_ms)
		x->cl.tick_ms = 50;
	if (!x->cl.election_ticks)
		x->cl.election_ticks = 10;
	if (!x->cl.session_timeout_ms)
		x->cl.session_timeout_ms = 10000;
	if (!x->cl.write_timeout_ms)
		x->cl.write_timeout_ms = 10000;
	if (!x->cl.snapshot_every)
		x->cl.snapshot_every = 10000;
	if (!x->cl.snapshot_keep)
		x->cl.snapshot_keep = 1000;
	x->sub_tail = &x->sub_head;
	x->job_tail = &x->job_head;
	x->held_tail = &x->held;
	rc = rpx__check(cl, x->ids, &x->self);
	if (rc)
		goto err;
	x->n = cl->npeers;
	rc = st_open(cfg->data_dir, cfg->st_flags, &x->env);
	if (rc)
		goto err;
	rc = rpx_wal_open(&x->wal, cfg->data_dir, RPX_WAL_SIZE, (cfg->st_flags & ST_F_NOSYNC) != 0);
	if (rc) {
		rpx__log(x, RP_LOG_ERROR, "cannot open the acceptor log %s/%s: %s%s", cfg->data_dir,
			 RPX_WAL_NAME, strerror(-rc),
			 rc == -EINVAL ? " (not a file of the size this release writes; if the node "
					 "was stopped cleanly and the machine did not crash since, "
					 "moving it away is safe: a new one is "
					 "made)"
				       : "");
		goto err;
	}
	rc = rpx__load(x, &boot, &ents, &arena);
	if (rc)
		goto err;
	x->client = PX_CLIENT(cl->self_id, x->inc, 0);

	rc = -uv_loop_init(&x->loop);
	if (rc) /* libuv errors are negative errno already */
		rc = rc > 0 ? -rc : rc;
	if (rc)
		goto err;
	loop_ok = 1;
	uv_async_init(&x->loop, &x->wake, rpx__wake_cb);
	x->wake.data = x;
	uv_timer_init(&x->loop, &x->timer);
	x->timer.data = x;
	uv_timer_init(&x->loop, &x->pump);
	x->pump.data = x;

	x->pc = (struct px_config){
	    .id = x->self,
	    .n = x->n,
	    .heartbeat = x->cl.tick_ms,
	    .election = (uint64_t)x->cl.tick_ms * x->cl.election_ticks,
	    .submit_timeout = x->cl.write_timeout_ms,
	    .keep_after_snapshot = x->cl.snapshot_keep,
	    .keep_bytes_after_snapshot = RPX_KEEP_BYTES,
	    .window = RPX__WINDOW,
	};
	uv_update_time(&x->loop);
	rc = px_init(&x->px, &x->pc, &boot, uv_now(&x->loop), rpx__rand());
	free(ents);
	free(arena);
	ents = NULL;
	arena = NULL;
	if (rc)
		goto err;

	memset(&nc, 0, sizeof nc);
	nc.self_id = cl->self_id;
	nc.npeers = cl->npeers;
	for (uint32_t i = 0; i < cl->npeers; i++) {
		nc.peers[i].id = cl->peers[i].id;
		memcpy(nc.peers[i].host, cl->peers[i].host, sizeof nc.peers[i].host);
		nc.peers[i].host[sizeof nc.peers[i].host - 1] = '\0';
		nc.peers[i].port = cl->peers[i].port;
	}
	memcpy(nc.cluster_id, x->cluster_id, IO_NET_CLUSTER_LEN);
	memcpy(nc.secret, cl->secret, IO_NET_SECRET_LEN);
	nc.on_recv = rpx__recv;
	nc.on_peer = rpx__peer;
	nc.on_log = rpx__net_log;
	nc.on_cluster = rpx__cluster;
	nc.arg = x;
	rc = io_net_start(&x->loop, &nc, &x->net);
	if (rc)
		goto err;

	rc = -pthread_create(&x->st_thread, NULL, rpx__storage_main, x);
	if (rc) {
		io_net_close(x->net);
		goto err;
	}
	st_started = 1;
	/* first step: arms the timer */
	x->ready_by = uv_now(&x->loop) + x->cl.write_timeout_ms;
	x->ready_wall_by = rpx__now_ms() + x->cl.write_timeout_ms + 1000;
	{
		struct px_event ev = {.type = PX_EV_TICK};
		rpx__step(x, &ev, NULL);
	}
	rc = -pthread_create(&x->loop_thread, NULL, rpx__loop_main, x);
	if (rc) {
		io_net_close(x->net);
		goto err;
	}
	*out = &x->base;
	return 0;
err:
	free(ents);
	free(arena);
	if (loop_ok) {
		uv_close((uv_handle_t *)&x->timer, NULL);
		uv_close((uv_handle_t *)&x->pump, NULL);
		uv_close((uv_handle_t *)&x->wake, NULL);
		uv_run(&x->loop, UV_RUN_DEFAULT);
		uv_loop_close(&x->loop);
	}
	if (st_started) {
		pthread_mutex_lock(&x->job_lock);
		x->job_stop = 1;
		pthread_cond_signal(&x->job_cond);
		pthread_mutex_unlock(&x->job_lock);
		pthread_join(x->st_thread, NULL);
	}
	x->net = NULL;
	rpx__free(x);
	return rc;
}
