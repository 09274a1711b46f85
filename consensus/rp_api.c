/* rp: dispatch of the replication interface (rp.h) to its backend (rp_impl.h). */
#include <errno.h>

#include "consensus/rp.h"
#include "consensus/rp_impl.h"

int rp_submit(struct rp *rp, const struct zt_op *ops, uint32_t nops, rp_done_cb cb, void *arg)
{
	if (!rp)
		return -EINVAL;
	return rp->ops->submit(rp, ops, nops, cb, arg);
}

int rp_sync(struct rp *rp, rp_done_cb cb, void *arg)
{
	if (!rp)
		return -EINVAL;
	return rp->ops->sync(rp, cb, arg);
}

struct st_env *rp_env(struct rp *rp)
{
	return rp->ops->env(rp);
}

int rp_status(struct rp *rp, char *buf, size_t cap)
{
	return rp->ops->status(rp, buf, cap);
}

void rp_close(struct rp *rp)
{
	if (rp)
		rp->ops->close(rp);
}
