/*
 * rp_impl: the vtable behind rp.h. Each backend (rp_local.c, later the Multi-Paxos replica) embeds
 * struct rp first in its own state and fills in ops; rp_api.c dispatches through it.
 */
#ifndef QFS_CONSENSUS_RP_IMPL_H
#define QFS_CONSENSUS_RP_IMPL_H

#include "consensus/rp.h"

struct rp_ops {
	/* ops were validated by rp_submit (rp.h): the backend only copies and queues them */
	int (*submit)(struct rp *rp, const struct zt_op *ops, uint32_t nops, rp_done_cb cb,
		      void *arg);
	int (*sync)(struct rp *rp, rp_done_cb cb, void *arg);
	struct st_env *(*env)(struct rp *rp);
	int (*status)(struct rp *rp, char *buf, size_t cap);
	void (*read_barrier)(struct rp *rp); /* NULL: reads are always current (one node) */
	void (*read_wait)(struct rp *rp, uint64_t zxid);  /* NULL: completions follow their commit */
	void (*close)(struct rp *rp);
};

struct rp {
	const struct rp_ops *ops;
};

#endif
