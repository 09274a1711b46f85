/*
 * Unit tests of the px core, one rule at a time, with hand-made messages: the acceptor rules of
 * phase 1 and 2, persist-before-reply, the new leader's recovery (P2c), learning, learners, and
 * determinism.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "consensus/px_batch.h"
#include "consensus/px_node.h"

#define B(round, id) (((uint64_t)(round) << 8) | (id))

static struct px_node *mk(uint32_t id, uint32_t n, bool initialised)
{
	struct px_config cfg = {.id = id, .n = n, .heartbeat = 10, .election = 100};
	struct px_boot boot = {.initialised = initialised};
	struct px_node *nd;
	cr_assert_eq(px_init(&nd, &cfg, &boot, 0, 7), 0);
	return nd;
}

static void recv(struct px_node *nd, const struct px_msg *m, uint64_t now, struct px_update *u)
{
	struct px_event ev = {.type = PX_EV_RECEIVE, .now = now, .msg = m};
	cr_assert_eq(px_step(nd, &ev, u), 0);
}

static const struct px_out *find(const struct px_update *u, uint8_t type, uint32_t to)
{
	for (uint32_t i = 0; i < u->nmsgs; i++)
		if (u->msgs[i].msg.type == type && u->msgs[i].msg.to == to)
			return &u->msgs[i];
	return NULL;
}

static void persisted(struct px_node *nd, uint64_t seq, uint64_t now, struct px_update *u)
{
	struct px_event ev = {.type = PX_EV_PERSISTED, .now = now, .seq = seq};
	cr_assert_eq(px_step(nd, &ev, u), 0);
}

/* P1b: promise only a ballot higher than any promised; the promise is persisted before it leaves.
 */
Test(px_node, acceptor_phase1)
{
	struct px_node *nd = mk(1, 3, true);
	struct px_update u;
	const struct px_out *o;
	struct px_msg m = {
	    .type = PX_MSG_PREPARE, .from = 0, .to = 1, .ballot = B(2, 0), .slot = 1};
	uint64_t seq;

	recv(nd, &m, 1, &u);
	cr_assert(u.promise_changed);
	cr_assert_eq(u.promised, B(2, 0));
	cr_assert_neq(u.persist_seq, 0);
	seq = u.persist_seq;
	o = find(&u, PX_MSG_PROMISE, 0);
	cr_assert_not_null(o);
	cr_assert_eq(o->msg.ballot, B(2, 0));
	cr_assert_eq(o->wait_seq, seq, "the promise must wait for its record");

	/* the same ballot again: the same answer, nothing new to persist, still after the record */
	recv(nd, &m, 2, &u);
	cr_assert_eq(u.persist_seq, 0);
	o = find(&u, PX_MSG_PROMISE, 0);
	cr_assert_not_null(o);
	cr_assert_eq(o->wait_seq, seq);
	persisted(nd, seq, 3, &u);
	recv(nd, &m, 4, &u);
	cr_assert_eq(find(&u, PX_MSG_PROMISE, 0)->wait_seq, 0, "durable: may leave at once");

	/* a lower ballot is refused with the promise, and nothing changes */
	m.ballot = B(1, 2);
	m.from = 2;
	recv(nd, &m, 5, &u);
	cr_assert_eq(u.persist_seq, 0);
	cr_assert_null(find(&u, PX_MSG_PROMISE, 2));
	o = find(&u, PX_MSG_REJECT, 2);
	cr_assert_not_null(o);
	cr_assert_eq(o->msg.ballot, B(2, 0));
	cr_assert_eq(px_ballot(nd), B(2, 0));
	px_free(nd);
}

/* P2b: accept unless the ballot is lower than the promise; the accept is persisted before the
 * reply; a later PREPARE reports the accepted value. */
Test(px_node, acceptor_phase2)
{
	struct px_node *nd = mk(1, 3, true);
	struct px_update u;
	const struct px_out *o;
	static const uint8_t v[] = "value";
	struct px_entry e = {.slot = 1, .len = 5, .data = v};
	struct px_msg prep = {
	    .type = PX_MSG_PREPARE, .from = 2, .to = 1, .ballot = B(3, 2), .slot = 1};
	struct px_msg acc = {
	    .type = PX_MSG_ACCEPT, .from = 0, .to = 1, .ballot = B(2, 0), .nent = 1, .ent = &e};

	recv(nd, &prep, 1, &u);
	/* below the promise: refused, not recorded */
	recv(nd, &acc, 2, &u);
	cr_assert_eq(u.naccepted, 0);
	cr_assert_null(find(&u, PX_MSG_ACCEPTED, 0));
	cr_assert_not_null(find(&u, PX_MSG_REJECT, 0));
	/* at the promise: accepted, recorded, the reply waits for the record */
	acc.from = 2;
	acc.ballot = B(3, 2);
	e.ballot = B(3, 2);
	recv(nd, &acc, 3, &u);
	cr_assert_eq(u.naccepted, 1);
	cr_assert_eq(u.accepted[0].slot, 1);
	cr_assert_eq(u.accepted[0].ballot, B(3, 2));
	cr_assert_eq(u.accepted[0].len, 5);
	cr_assert_eq(memcmp(u.accepted[0].data, v, 5), 0);
	o = find(&u, PX_MSG_ACCEPTED, 2);
	cr_assert_not_null(o);
	cr_assert_eq(o->wait_seq, u.persist_seq);
	cr_assert_eq(o->msg.nent, 1);
	cr_assert_eq(o->msg.ent[0].slot, 1);
	/* above the promise: the promise rises with it */
	acc.from = 0;
	acc.ballot = B(4, 0);
	recv(nd, &acc, 4, &u);
	cr_assert(u.promise_changed);
	cr_assert_eq(u.promised, B(4, 0));
	cr_assert_eq(px_leader(nd), 0);
	/* while the leader is heard, another candidate is ignored (stickiness) */
	prep.ballot = B(5, 2);
	recv(nd, &prep, 5, &u);
	cr_assert_null(find(&u, PX_MSG_PROMISE, 2));
	cr_assert_eq(u.persist_seq, 0);
	/* later, a new candidate learns the value with its ballot */
	recv(nd, &prep, 500, &u);
	o = find(&u, PX_MSG_PROMISE, 2);
	cr_assert_not_null(o);
	cr_assert_eq(o->msg.nent, 1);
	cr_assert_eq(o->msg.ent[0].slot, 1);
	cr_assert_eq(o->msg.ent[0].ballot, B(4, 0));
	cr_assert_eq(memcmp(o->msg.ent[0].data, v, 5), 0);
	px_free(nd);
}

/* Run node 0 of 3 to candidacy (pre-vote first); returns its ballot and the seq of its
 * self-promise. */
static uint64_t campaign(struct px_node *nd, struct px_update *u, uint64_t *seq)
{
	struct px_event ev = {.type = PX_EV_TICK, .now = 1000};
	struct px_msg r = {.type = PX_MSG_PREVOTE_REPLY, .from = 1, .to = 0, .aux = 1};
	const struct px_out *o;

	cr_assert_eq(px_step(nd, &ev, u), 0);
	cr_assert_eq(px_role(nd), PX_FOLLOWER, "a pre-vote changes nothing yet");
	cr_assert_eq(u->persist_seq, 0);
	o = find(u, PX_MSG_PREVOTE, 1);
	cr_assert_not_null(o);
	cr_assert_not_null(find(u, PX_MSG_PREVOTE, 2));
	r.ballot = o->msg.ballot;
	recv(nd, &r, 1000, u);
	cr_assert_eq(px_role(nd), PX_CANDIDATE);
	cr_assert(u->promise_changed);
	cr_assert_not_null(find(u, PX_MSG_PREPARE, 1));
	cr_assert_not_null(find(u, PX_MSG_PREPARE, 2));
	cr_assert_eq(find(u, PX_MSG_PREPARE, 1)->msg.ballot, r.ballot);
	*seq = u->persist_seq;
	return r.ballot;
}

/* Run node 0 of 3 to leadership: campaign, node 1's promise (carrying stamp AUX), its own promise
 * durable. Returns its ballot. */
static uint64_t lead(struct px_node *nd, struct px_update *u, uint64_t aux)
{
	struct px_msg p = {.type = PX_MSG_PROMISE, .from = 1, .to = 0, .aux = aux};
	uint64_t seq;

	p.ballot = campaign(nd, u, &seq);
	recv(nd, &p, 1001, u);
	persisted(nd, seq, 1002, u);
	cr_assert_eq(px_role(nd), PX_LEADER);
	return p.ballot;
}

/* Pre-vote: granted only when no leader is heard from, and it changes nothing at the voter. */
Test(px_node, prevote)
{
	struct px_node *nd = mk(1, 3, true);
	struct px_update u;
	struct px_msg acc = {.type = PX_MSG_ACCEPT, .from = 0, .to = 1, .ballot = B(1, 0)};
	struct px_msg pv = {.type = PX_MSG_PREVOTE, .from = 2, .to = 1, .ballot = B(2, 2)};
	const struct px_out *o;

	recv(nd, &acc, 10, &u);
	recv(nd, &pv, 20, &u);
	o = find(&u, PX_MSG_PREVOTE_REPLY, 2);
	cr_assert_not_null(o);
	cr_assert_eq(o->msg.aux, 0, "a leader was heard 10 ago: refused");
	recv(nd, &pv, 500, &u);
	o = find(&u, PX_MSG_PREVOTE_REPLY, 2);
	cr_assert_not_null(o);
	cr_assert_eq(o->msg.aux, 1);
	cr_assert_eq(u.persist_seq, 0);
	cr_assert_eq(px_ballot(nd), B(1, 0), "a pre-vote promises nothing");
	px_free(nd);
}

static void peer_down(struct px_node *nd, uint32_t node, uint64_t now, struct px_update *u)
{
	struct px_event ev = {.type = PX_EV_PEER_DOWN, .now = now, .node = node};
	cr_assert_eq(px_step(nd, &ev, u), 0);
}

/* The connection to the followed leader ends (its process was killed): the follower campaigns
 * within two heartbeats instead of an election timeout, and no longer refuses pre-votes on the
 * dead leader's behalf. The end of another peer's connection changes nothing. */
Test(px_node, leader_connection_lost)
{
	struct px_node *nd = mk(1, 3, true);
	struct px_update u;
	struct px_msg acc = {.type = PX_MSG_ACCEPT, .from = 0, .to = 1, .ballot = B(1, 0)};
	struct px_msg pv = {.type = PX_MSG_PREVOTE, .from = 2, .to = 1, .ballot = B(2, 2)};
	const struct px_out *o;
	uint64_t before;

	recv(nd, &acc, 10, &u);
	before = u.deadline;
	cr_assert_geq(before, 10 + 100, "the election timeout: at least 100 after the leader");
	peer_down(nd, 2, 12, &u);
	cr_assert_eq(u.deadline, before, "not the leader: nothing changes");
	recv(nd, &pv, 13, &u);
	o = find(&u, PX_MSG_PREVOTE_REPLY, 2);
	cr_assert(o && o->msg.aux == 0, "the leader was heard 3 ago: refused");

	peer_down(nd, 0, 14, &u);
	cr_assert_leq(u.deadline, 14 + 2 * 10, "campaign within two heartbeats");
	cr_assert_geq(u.deadline, 14 + 10, "but not at once (jitter among the followers)");
	recv(nd, &pv, 15, &u);
	o = find(&u, PX_MSG_PREVOTE_REPLY, 2);
	cr_assert(o && o->msg.aux == 1, "the dead leader is not vouched for any more");
	{
		struct px_event ev = {.type = PX_EV_TICK, .now = u.deadline};
		cr_assert_eq(px_step(nd, &ev, &u), 0);
		cr_assert_not_null(find(&u, PX_MSG_PREVOTE, 0), "it campaigns at its deadline");
		cr_assert_not_null(find(&u, PX_MSG_PREVOTE, 2));
	}
	/* a leader that is in fact alive: its next ACCEPT restores stickiness */
	acc.ballot = B(1, 0);
	recv(nd, &acc, 40, &u);
	recv(nd, &pv, 41, &u);
	o = find(&u, PX_MSG_PREVOTE_REPLY, 2);
	cr_assert(o && o->msg.aux == 0, "the leader is heard again: refused");
	px_free(nd);
}

/* P2c: the new leader re-proposes, per slot, the value of the highest ballot reported by the
 * majority, fills holes with no-ops, and proposes new values only after them. */
Test(px_node, new_leader_reproposes)
{
	struct px_node *nd = mk(0, 3, true);
	struct px_update u;
	uint64_t seq, b;
	static const uint8_t lo[] = "low", hi[] = "high";
	struct px_entry rep[3] = {
	    {.slot = 1, .ballot = B(0, 1), .len = 3, .data = lo},
	    {.slot = 1, .ballot = B(0, 2), .len = 4, .data = hi},
	    {.slot = 3, .ballot = B(0, 1), .len = 3, .data = lo},
	};
	struct px_msg p = {.type = PX_MSG_PROMISE, .from = 1, .to = 0, .nent = 3, .ent = rep};
	const struct px_out *o;

	b = campaign(nd, &u, &seq);
	p.ballot = b;
	recv(nd, &p, 1001, &u);
	cr_assert_eq(px_role(nd), PX_CANDIDATE, "its own promise is not durable yet");
	persisted(nd, seq, 1002, &u);
	cr_assert_eq(px_role(nd), PX_LEADER);
	o = find(&u, PX_MSG_ACCEPT, 1);
	cr_assert_not_null(o);
	cr_assert_eq(o->msg.ballot, b);
	cr_assert_eq(o->msg.nent, 3);
	cr_assert_eq(o->msg.ent[0].slot, 1);
	cr_assert_eq(o->msg.ent[0].len, 4, "the highest ballot's value wins");
	cr_assert_eq(memcmp(o->msg.ent[0].data, hi, 4), 0);
	cr_assert_eq(o->msg.ent[1].slot, 2);
	cr_assert_eq(o->msg.ent[1].len, 0, "a hole becomes a no-op");
	cr_assert_eq(o->msg.ent[2].slot, 3);
	cr_assert_eq(memcmp(o->msg.ent[2].data, lo, 3), 0);
	cr_assert_eq(o->msg.slot, 4, "lstart: fresh proposals start after the recovered slots");
	cr_assert_eq(u.naccepted, 3, "the leader accepts its own proposals, durably");
	px_free(nd);
}

/* A value is chosen once a majority accepted it, the leader's own acceptance counting only once
 * durable; chosen slots are delivered in order and the submitter learns its slot. */
Test(px_node, choose_apply_ack)
{
	struct px_node *nd = mk(0, 3, true);
	struct px_update u;
	uint64_t b, seq2;
	struct px_sub sub = {.client = 5, .seq = 1, .len = 2, .data = (const uint8_t *)"hi"};
	struct px_event ev = {.type = PX_EV_SUBMIT, .now = 1003, .subs = &sub, .nsubs = 1};
	struct px_entry ack = {.slot = 1};
	struct px_msg a = {.type = PX_MSG_ACCEPTED, .from = 2, .to = 0, .nent = 1, .ent = &ack};
	struct px_batch_iter it;
	struct px_sub got;

	b = lead(nd, &u, 0);
	cr_assert_eq(px_step(nd, &ev, &u), 0);
	cr_assert_eq(u.naccepted, 1);
	seq2 = u.persist_seq;
	cr_assert_eq(find(&u, PX_MSG_ACCEPT, 2)->msg.nent, 1);
	a.ballot = b;
	recv(nd, &a, 1004, &u);
	cr_assert_eq(px_commit(nd), 0, "one acceptor of three is not a majority");
	persisted(nd, seq2, 1005, &u);
	cr_assert_eq(px_commit(nd), 1);
	cr_assert_eq(u.napply, 1);
	cr_assert_eq(u.apply[0].slot, 1);
	cr_assert_eq(px_batch_iter_init(&it, u.apply[0].value, u.apply[0].len), 0);
	cr_assert_eq(px_batch_next(&it, &got), 1);
	cr_assert_eq(got.client, 5);
	cr_assert_eq(got.len, 2);
	cr_assert_eq(u.nacks, 1);
	cr_assert_eq(u.acks[0].status, PX_ACK_CHOSEN);
	cr_assert_eq(u.acks[0].slot, 1);
	cr_assert_eq(px_pending(nd), 0);
	/* followers learn it from the commit index riding on the next ACCEPT */
	cr_assert_eq(find(&u, PX_MSG_ACCEPT, 1)->msg.commit, 1);
	px_free(nd);
}

/* A leader announces its own durable acceptance (ACCEPTED) to the followers whose forwarded
 * submissions the slot holds, and to no other node; a write made at the leader costs none. */
Test(px_node, leader_announces_to_the_forwarder)
{
	struct px_node *nd = mk(0, 3, true);
	struct px_update u;
	uint64_t seq, b;
	struct px_sub sub = {.client = 9, .seq = 1, .len = 2, .data = (const uint8_t *)"fw"};
	struct px_msg fwd = {.type = PX_MSG_SUBMIT, .from = 1, .to = 0, .nsub = 1, .sub = &sub};
	struct px_sub own = {.client = 5, .seq = 1, .len = 2, .data = (const uint8_t *)"hi"};
	struct px_event ev = {.type = PX_EV_SUBMIT, .now = 1010, .subs = &own, .nsubs = 1};
	const struct px_out *o;

	b = lead(nd, &u, 0);
	recv(nd, &fwd, 1003, &u); /* node 1 forwards a write: slot 1 */
	cr_assert_eq(u.naccepted, 1);
	seq = u.persist_seq;
	persisted(nd, seq, 1004, &u);
	cr_assert_eq(px_commit(nd), 0);
	o = find(&u, PX_MSG_ACCEPTED, 1);
	cr_assert_not_null(o, "the forwarder hears of the leader's durable acceptance");
	cr_assert_eq(o->msg.ballot, b);
	cr_assert_eq(o->msg.nent, 1);
	cr_assert_eq(o->msg.ent[0].slot, 1);
	cr_assert_eq(o->wait_seq, 0);
	cr_assert_null(find(&u, PX_MSG_ACCEPTED, 2), "node 2 forwarded nothing");
	cr_assert_eq(px_step(nd, &ev, &u), 0); /* a write made here: slot 2 */
	seq = u.persist_seq;
	persisted(nd, seq, 1011, &u);
	cr_assert_null(find(&u, PX_MSG_ACCEPTED, 1));
	cr_assert_null(find(&u, PX_MSG_ACCEPTED, 2));
	px_free(nd);
}

/* A follower marks chosen what it accepted at the ballot of a leader's commit index, and asks for
 * the rest. */
Test(px_node, follower_learns_commit)
{
	struct px_node *nd = mk(1, 3, true);
	struct px_update u;
	static const uint8_t v[] = "v";
	struct px_entry e[2] = {{.slot = 1, .len = 1, .data = v}, {.slot = 3, .len = 1, .data = v}};
	struct px_msg acc = {
	    .type = PX_MSG_ACCEPT, .from = 0, .to = 1, .ballot = B(1, 0), .nent = 2, .ent = e};

	recv(nd, &acc, 1, &u);
	acc.nent = 0;
	acc.commit = 3;
	recv(nd, &acc, 2, &u);
	cr_assert_eq(px_commit(nd), 1, "slot 2 is unknown here: the commit stops before it");
	cr_assert_eq(u.napply, 1);
	{
		const struct px_out *o = find(&u, PX_MSG_CATCHUP_REQ, 0);
		cr_assert_not_null(o, "it asks the leader for slot 2");
		cr_assert_eq(o->msg.slot, 2);
	}
	/* the leader's answer completes the log */
	{
		struct px_entry c = {
		    .slot = 2, .ballot = B(1, 0), .flags = PX_ENT_CHOSEN, .len = 1, .data = v};
		struct px_msg cu = {.type = PX_MSG_CATCHUP,
				    .from = 0,
				    .to = 1,
				    .commit = 3,
				    .slot = 1,
				    .nent = 1,
				    .ent = &c};
		recv(nd, &cu, 3, &u);
		cr_assert_eq(px_commit(nd), 3);
		cr_assert_eq(u.napply, 2);
		cr_assert_eq(u.apply[0].slot, 2);
		cr_assert_eq(u.apply[1].slot, 3);
	}
	px_free(nd);
}

/*
 * A follower learns a slot chosen from the acceptors (Paxos Made Simple, 2.3): once a majority
 * accepted it durably at one ballot, its own acceptance counting only once durable, and only at
 * the ballot of the value it holds. Its own ACCEPTED goes to every node, once durable.
 */
Test(px_node, follower_learns_from_acceptors)
{
	struct px_node *nd = mk(1, 5, true); /* 5 nodes: a majority is 3 */
	struct px_update u;
	static const uint8_t v[] = "v";
	struct px_entry e = {.slot = 1, .len = 1, .data = v};
	struct px_entry s1 = {.slot = 1};
	struct px_msg acc = {
	    .type = PX_MSG_ACCEPT, .from = 0, .to = 1, .ballot = B(2, 0), .nent = 1, .ent = &e};
	struct px_msg ad = {.type = PX_MSG_ACCEPTED, .to = 1, .nent = 1, .ent = &s1};
	const struct px_out *o;
	uint64_t seq;

	/* an acceptance at an older ballot (of another value, maybe) never counts with ours */
	ad.from = 3;
	ad.ballot = B(1, 3);
	recv(nd, &ad, 1, &u);
	recv(nd, &acc, 2, &u);
	seq = u.persist_seq;
	cr_assert_gt(seq, 0);
	for (uint32_t to = 0; to < 5; to++) {
		o = find(&u, PX_MSG_ACCEPTED, to);
		if (to == 1) {
			cr_assert_null(o);
			continue;
		}
		cr_assert_not_null(o, "the acceptance goes to node %u too", to);
		cr_assert_eq(o->wait_seq, seq, "and only once it is durable");
		cr_assert_eq(o->msg.nent, 1);
	}
	ad.from = 0;
	ad.ballot = B(2, 0);
	recv(nd, &ad, 3, &u);
	ad.from = 2;
	recv(nd, &ad, 4, &u);
	cr_assert_eq(px_commit(nd), 0, "two durable acceptances at B(2,0) and one at B(1,3)");
	/* our own record is durable: three at B(2,0) */
	persisted(nd, seq, 5, &u);
	cr_assert_eq(px_commit(nd), 1);
	cr_assert_eq(u.napply, 1);
	cr_assert_eq(u.apply[0].len, 1);
	px_free(nd);

	/* a higher ballot restarts the tally; peers at the ballot we hold suffice without us */
	nd = mk(1, 3, true);
	recv(nd, &acc, 1, &u);
	cr_assert_not_null(find(&u, PX_MSG_ACCEPTED, 0));
	cr_assert_null(find(&u, PX_MSG_ACCEPTED, 2),
		       "3 nodes: the leader and this follower are a majority, node 2 need not know");
	ad.from = 2;
	ad.ballot = B(3, 2); /* node 2 accepted a (maybe other) value at a ballot we never saw */
	recv(nd, &ad, 2, &u);
	ad.from = 0;
	ad.ballot = B(2, 0);
	recv(nd, &ad, 3, &u);
	cr_assert_eq(px_commit(nd), 0, "B(3,2) and B(2,0) are not one ballot");
	px_free(nd);
	nd = mk(1, 3, true);
	ad.from = 0;
	ad.ballot = B(2, 0);
	recv(nd, &ad, 1, &u); /* the leader's acceptance arrives before its ACCEPT */
	ad.from = 2;
	recv(nd, &ad, 2, &u);
	cr_assert_eq(px_commit(nd), 0, "nothing held: nothing learnt");
	recv(nd, &acc, 3, &u);
	cr_assert_eq(px_commit(nd), 1, "two peers of three accepted the value we now hold");
	cr_assert_eq(u.napply, 1);
	px_free(nd);
}

/* An empty disk: a learner answers no PREPARE and no ACCEPT, and asks peers for their ballots. */
Test(px_node, learner_does_not_vote)
{
	struct px_node *nd = mk(2, 3, false);
	struct px_update u;
	static const uint8_t v[] = "v";
	struct px_entry e = {.slot = 1, .len = 1, .data = v};
	struct px_msg prep = {.type = PX_MSG_PREPARE, .from = 0, .to = 2, .ballot = B(9, 0)};
	struct px_msg acc = {
	    .type = PX_MSG_ACCEPT, .from = 0, .to = 2, .ballot = B(9, 0), .nent = 1, .ent = &e};
	struct px_event ev = {.type = PX_EV_TICK, .now = 0};

	cr_assert_eq(px_role(nd), PX_LEARNER);
	cr_assert_eq(px_step(nd, &ev, &u), 0);
	cr_assert_not_null(find(&u, PX_MSG_HELLO, 0));
	cr_assert_not_null(find(&u, PX_MSG_HELLO, 1));
	recv(nd, &prep, 1, &u);
	cr_assert_eq(u.nmsgs, 0);
	cr_assert_eq(u.persist_seq, 0);
	recv(nd, &acc, 2, &u);
	cr_assert_null(find(&u, PX_MSG_ACCEPTED, 0));
	cr_assert_eq(u.naccepted, 0);
	cr_assert_eq(px_role(nd), PX_LEARNER);
	px_free(nd);
}

/* The same events give the same updates, byte for byte. */
Test(px_node, deterministic)
{
	uint8_t out[2][4096];
	size_t len[2] = {0, 0};
	for (int r = 0; r < 2; r++) {
		struct px_node *nd = mk(0, 3, true);
		struct px_update u;
		for (uint64_t t = 0; t < 5000; t += 7) {
			struct px_event ev = {.type = PX_EV_TICK, .now = t, .rand = t * 31};
			cr_assert_eq(px_step(nd, &ev, &u), 0);
			for (uint32_t i = 0; i < u.nmsgs && len[r] + 256 < sizeof(out[r]); i++) {
				long l = px_msg_encode(&u.msgs[i].msg, out[r] + len[r],
						       sizeof(out[r]) - len[r]);
				cr_assert_gt(l, 0);
				len[r] += (size_t)l;
			}
		}
		px_free(nd);
	}
	cr_assert_gt(len[0], 0);
	cr_assert_eq(len[0], len[1]);
	cr_assert_eq(memcmp(out[0], out[1], len[0]), 0);
}

Test(px_node, bad_events)
{
	struct px_node *nd = mk(0, 3, true);
	struct px_update u;
	struct px_msg m = {.type = PX_MSG_PREPARE, .from = 7, .to = 0, .ballot = B(1, 7)};
	struct px_event ev = {.type = PX_EV_RECEIVE, .now = 1, .msg = &m};
	struct px_config bad = {.id = 3, .n = 3, .heartbeat = 1, .election = 1};
	struct px_node *x;

	cr_assert_eq(px_step(nd, &ev, &u), -EINVAL, "a sender outside the cluster");
	m.from = 0;
	cr_assert_eq(px_step(nd, &ev, &u), -EINVAL, "from itself");
	cr_assert_eq(px_init(&x, &bad, NULL, 0, 0), -EINVAL);
	bad.id = 0;
	bad.n = 4;
	cr_assert_eq(px_init(&x, &bad, NULL, 0, 0), -EINVAL, "even cluster sizes are refused");
	px_free(nd);
}

/* Stamps (px_batch.h): a leader stamps a batch with its wall clock, but never below a stamp it
 * knows of: one in a promise (aux), or in its applied state (px_boot.stamp). Without them, its
 * own (behind) clock. */
static uint64_t first_stamp(uint64_t boot_stamp, uint64_t promised_stamp, uint64_t wall)
{
	struct px_config cfg = {.id = 0, .n = 3, .heartbeat = 10, .election = 100};
	struct px_boot boot = {.initialised = true, .stamp = boot_stamp};
	struct px_node *nd;
	struct px_update u;
	uint64_t t = 0;
	struct px_sub sub = {.client = 5, .seq = 1, .len = 2, .data = (const uint8_t *)"hi"};
	struct px_event ev = {
	    .type = PX_EV_SUBMIT, .now = 1003, .wall = wall, .subs = &sub, .nsubs = 1};

	cr_assert_eq(px_init(&nd, &cfg, &boot, 0, 7), 0);
	lead(nd, &u, promised_stamp);
	cr_assert_eq(px_step(nd, &ev, &u), 0);
	cr_assert_eq(u.naccepted, 1);
	cr_assert_geq(u.accepted[0].len, PX_BATCH_HDR);
	for (int i = 7; i >= 0; i--)
		t = t << 8 | u.accepted[0].data[4 + i];
	px_free(nd);
	return t;
}

Test(px_node, leader_stamps_never_go_below_a_known_stamp)
{
	const uint64_t now = 1795830000000ull;
	cr_assert_eq(first_stamp(0, 0, now), now, "its wall clock");
	cr_assert_eq(first_stamp(now + 5000, 0, now), now + 5000, "its applied state's stamp");
	cr_assert_eq(first_stamp(0, now + 7000, now), now + 7000, "a promiser's stamp");
	cr_assert_eq(first_stamp(now - 5000, now - 7000, now), now, "older stamps do not matter");
}

/*
 * A leader that was frozen (SIGSTOP) while another took over learns, through catch-up, that the
 * slots from its next one on are chosen (session 11: a five-node campaign diverged so). It must
 * deliver exactly those values and never propose into a chosen slot: its ballot is stale, so it
 * steps down. Before the fix its next batch replaced the chosen value in memory, the slot stayed
 * marked chosen, and the node applied its own batch in place of the chosen one.
 */
Test(px_node, stale_leader_never_proposes_into_a_chosen_slot)
{
	struct px_config cfg = {.id = 0, .n = 3, .heartbeat = 10, .election = 100, .window = 1};
	struct px_boot boot = {.initialised = true};
	struct px_node *nd;
	struct px_update u;
	struct px_sub s1 = {.client = 5, .seq = 1, .len = 2, .data = (const uint8_t *)"v1"};
	struct px_sub s2 = {.client = 5, .seq = 2, .len = 2, .data = (const uint8_t *)"v2"};
	struct px_event ev = {.type = PX_EV_SUBMIT, .now = 1003, .subs = &s1, .nsubs = 1};
	static const uint8_t w1[] = "chosen-1", w2[] = "chosen-2";
	struct px_entry c[2] = {
	    {.slot = 1, .ballot = B(9, 2), .flags = PX_ENT_CHOSEN, .len = 8, .data = w1},
	    {.slot = 2, .ballot = B(9, 2), .flags = PX_ENT_CHOSEN, .len = 8, .data = w2},
	};
	struct px_msg cu = {.type = PX_MSG_CATCHUP,
			    .from = 1,
			    .to = 0,
			    .commit = 2,
			    .slot = 1,
			    .nent = 2,
			    .ent = c};

	cr_assert_eq(px_init(&nd, &cfg, &boot, 0, 7), 0);
	lead(nd, &u, 0);
	cr_assert_eq(px_step(nd, &ev, &u), 0);
	cr_assert_eq(u.naccepted, 1, "slot 1 proposed");
	ev.subs = &s2;
	ev.now = 1004;
	cr_assert_eq(px_step(nd, &ev, &u), 0);
	cr_assert_eq(u.naccepted, 0, "the window (1) is full: queued");
	/* a peer that followed a newer leader answers a catch-up: slots 1 and 2 are chosen */
	recv(nd, &cu, 1005, &u);
	cr_assert_eq(px_commit(nd), 2);
	cr_assert_eq(u.napply, 2);
	cr_assert_eq(u.apply[0].len, 8);
	cr_assert_eq(memcmp(u.apply[0].value, w1, 8), 0);
	cr_assert_eq(u.apply[1].len, 8, "slot 2 delivers the chosen value, not a new batch");
	cr_assert_eq(memcmp(u.apply[1].value, w2, 8), 0);
	for (uint32_t i = 0; i < u.naccepted; i++) {
		const struct px_entry *a = &u.accepted[i];
		if (a->slot > 2)
			continue;
		cr_assert(a->len == 8 && memcmp(a->data, a->slot == 1 ? w1 : w2, 8) == 0,
			  "slot %llu is recorded with its chosen value only",
			  (unsigned long long)a->slot);
	}
	cr_assert_neq(px_role(nd), PX_LEADER, "a slot past ours chosen: our ballot is stale");
	{
		const uint8_t *v;
		uint32_t len;
		cr_assert_eq(px_chosen(nd, 2, &v, &len), 0);
		cr_assert(len == 8 && memcmp(v, w2, 8) == 0, "what peers would fetch stays chosen");
	}
	px_free(nd);
}

/* An acceptance at a ballot above the leader's (a peer follows a newer leader) tells the leader
 * it is stale: it steps down, as on a REJECT. */
Test(px_node, leader_steps_down_on_a_higher_acceptance)
{
	struct px_node *nd = mk(0, 3, true);
	struct px_update u;
	uint64_t b;
	struct px_entry s1 = {.slot = 1};
	struct px_msg ad = {.type = PX_MSG_ACCEPTED, .from = 2, .to = 0, .nent = 1, .ent = &s1};

	b = lead(nd, &u, 0);
	ad.ballot = b - 1; /* older: ignored */
	recv(nd, &ad, 1003, &u);
	cr_assert_eq(px_role(nd), PX_LEADER);
	ad.ballot = b + 256; /* a later round */
	recv(nd, &ad, 1004, &u);
	cr_assert_eq(px_role(nd), PX_FOLLOWER);
	px_free(nd);
}
