/*
 * io_sess: session expiry decided by the leader (zt.h "node sessions"), on the loop thread.
 *
 * The leader notes when it last heard any frame from each peer. Once it has led for longer than a
 * peer's session timeout (ZooKeeper's rule after a leader change: every node gets a full timeout
 * from the election), it submits ZT_OP_SESSION EXPIRE of a peer's open epoch when it has not
 * heard from that peer for longer than the timeout the peer's record holds; the log then deletes
 * that epoch's ephemerals on every replica at the same point. Once per epoch, again after another
 * timeout if it was not applied by then. Never for itself. A loop that stalled (the leader was
 * paused or starved) starts its count again: frames queued meanwhile were not read yet.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "consensus/rp_paxos.h"
#include "store/zt.h"

/* A gap between two checks longer than this many ticks: the loop stalled. */
#define RPX__SESS_STALL_TICKS 4

void rpx__sess_heard(struct rpx *x, uint32_t p)
{
	if (p < RP_MAX_PEERS)
		x->sess.heard[p] = uv_now(&x->loop);
}

static void rpx__sess_done(void *arg, int status, uint64_t zxid, const struct zt_result *res,
			   uint32_t nres)
{
	struct rpx *x = arg;

	(void)zxid;
	if (status != 0)
		rpx__log(x, RP_LOG_WARN, "session expiry not applied: %s (retried later)",
			 strerror(-status));
	else if (nres == 1 && res[0].err == 0)
		rpx__log(x, RP_LOG_INFO, "session epoch %" PRIu64 " of node %u expired",
			 (uint64_t)ZT_SESSION_EPOCH(res[0].stat.ephemeral_owner),
			 ZT_SESSION_NODE(res[0].stat.ephemeral_owner));
}

void rpx__sess_check(struct rpx *x)
{
	uint64_t now = uv_now(&x->loop);
	struct st_rtxn *r = NULL;

	if (!x->px || x->stopping || px_role(x->px) != PX_LEADER) {
		x->sess.leading = 0;
		return;
	}
	if (!x->sess.leading ||
	    now - x->sess.last_check > (uint64_t)RPX__SESS_STALL_TICKS * x->cl.tick_ms) {
		/* newly elected, or back from a stall: everyone gets a full timeout from now */
		x->sess.leading = 1;
		x->sess.since = now;
		for (uint32_t p = 0; p < x->n; p++)
			x->sess.heard[p] = now;
		x->sess.next_check = now + x->cl.tick_ms;
	}
	x->sess.last_check = now;
	if (now < x->sess.next_check)
		return;
	x->sess.next_check = now + x->cl.tick_ms;
	for (uint32_t p = 0; p < x->n; p++) {
		struct zt_session z;
		uint64_t quiet =
		    now - (x->sess.heard[p] > x->sess.since ? x->sess.heard[p] : x->sess.since);
		int64_t base;

		if (p == x->self)
			continue;
		if (!r && st_rbegin(x->env, &r) != 0)
			return;
		if (zt_session_get(r, x->ids[p], &z) != 0 || z.state != ZT_SESSION_OPEN ||
		    quiet <= z.timeout_ms)
			continue;
		base = (int64_t)ZT_SESSION_ID(x->ids[p], z.epoch, 0);
		if (x->sess.sent[p] == base && now - x->sess.sent_at[p] <= z.timeout_ms)
			continue; /* submitted, not applied here yet */
		struct zt_op op = {.type = ZT_OP_SESSION,
				   .flags = ZT_SESSION_F_EXPIRE,
				   .owner = base,
				   .path = "/"};
		int rc = rp_submit(&x->base, &op, 1, rpx__sess_done, x);

		if (rc != 0) {
			rpx__log(x, RP_LOG_WARN, "cannot submit a session expiry: %s",
				 strerror(-rc));
			continue;
		}
		x->sess.sent[p] = base;
		x->sess.sent_at[p] = now;
		rpx__log(x, RP_LOG_WARN,
			 "node %u not heard for %" PRIu64 " ms (session timeout %u ms): expiring "
			 "its session epoch %" PRIu64,
			 x->ids[p], quiet, z.timeout_ms, z.epoch);
	}
	if (r)
		st_rend(r);
}
