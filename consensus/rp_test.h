/*
 * rp_test: test controls of the Multi-Paxos replica. Not for production paths.
 */
#ifndef QFS_CONSENSUS_RP_TEST_H
#define QFS_CONSENSUS_RP_TEST_H

#include <stdint.h>

#include "consensus/rp.h"

/*
 * Cut (CUT = 1) or heal (0) this node's link to node PEER (a node id): every frame to or from it
 * is lost from now on, as in a network partition; connections stay up. Cut both ends for a
 * symmetric partition. -EINVAL when RP is not a Multi-Paxos replica or PEER is not another member.
 * Any thread.
 */
int rp_test_cut(struct rp *rp, uint32_t peer, int cut);

#endif
