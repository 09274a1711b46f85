/*
 * px_link_alone: links only qfs_px (no libuv, LMDB, sockets, threads) and runs a one-node cluster
 * through the pure API: submit, persist, commit. Proves the core stands on its own.
 */
#include <stdio.h>

#include "consensus/px_node.h"

int main(void)
{
	struct px_config cfg = {.id = 0, .n = 1, .heartbeat = 10, .election = 50};
	struct px_node *nd;
	struct px_update u;
	struct px_event ev = {.type = PX_EV_TICK, .now = 0, .rand = 42};
	struct px_sub sub = {.client = 1, .seq = 1, .len = 3, .data = (const uint8_t *)"abc"};
	uint64_t now = 0;
	int acked = 0;

	if (px_init(&nd, &cfg, NULL, 0, 1))
		return 1;
	for (int i = 0; i < 1000 && !acked; i++) {
		if (px_step(nd, &ev, &u))
			return 1;
		for (uint32_t k = 0; k < u.nacks; k++)
			acked = u.acks[k].status == PX_ACK_CHOSEN && u.acks[k].slot >= 1;
		if (u.persist_seq) {
			ev = (struct px_event){
			    .type = PX_EV_PERSISTED, .now = now, .seq = u.persist_seq};
		} else if (px_role(nd) == PX_LEADER && px_pending(nd) == 0 && !acked) {
			ev = (struct px_event){
			    .type = PX_EV_SUBMIT, .now = now, .subs = &sub, .nsubs = 1};
		} else {
			now = u.deadline > now ? u.deadline : now + 1;
			ev = (struct px_event){.type = PX_EV_TICK, .now = now};
		}
	}
	px_free(nd);
	if (!acked) {
		fprintf(stderr, "px_link_alone: a one-node cluster did not commit\n");
		return 1;
	}
	printf("px_link_alone: one-node cluster committed a submission\n");
	return 0;
}
