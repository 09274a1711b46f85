/* rp: dispatch of the replication interface (rp.h) to its backend (rp_impl.h). */
#include <errno.h>
#include <string.h>

#include "consensus/rp.h"
#include "consensus/rp_impl.h"

/* The transaction checks of rp_submit (rp.h), the same for every backend. */
static int rp__validate(const struct zt_op *ops, uint32_t nops)
{
	size_t size = 0;

	if (!ops || nops == 0 || nops > RP_MAX_OPS)
		return -EINVAL;
	for (uint32_t i = 0; i < nops; i++) {
		const struct zt_op *op = &ops[i];
		size_t pl, p2l;
		if (op->type < ZT_OP_CREATE || op->type > ZT_OP_SESSION || !op->path)
			return -EINVAL;
		if (op->type == ZT_OP_RENAME && !op->path2)
			return -EINVAL;
		if (op->len && !op->data)
			return -EINVAL;
		if (op->len > ZT_MAX_DATA)
			return -EFBIG;
		pl = strnlen(op->path, ZT_PATH_MAX);
		p2l = op->type == ZT_OP_RENAME ? strnlen(op->path2, ZT_PATH_MAX) : 0;
		if (pl >= ZT_PATH_MAX || p2l >= ZT_PATH_MAX)
			return -EINVAL;
		size += sizeof(struct zt_op) + sizeof(struct zt_result) + pl + 1 + p2l + 1 + op->len;
	}
	return size > RP_TXN_BYTES ? -EFBIG : 0;
}

int rp_submit(struct rp *rp, const struct zt_op *ops, uint32_t nops, rp_done_cb cb, void *arg)
{
	int rc;

	if (!rp)
		return -EINVAL;
	rc = rp__validate(ops, nops);
	if (rc)
		return rc;
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

void rp_read_barrier(struct rp *rp)
{
	if (rp && rp->ops->read_barrier)
		rp->ops->read_barrier(rp);
}

void rp_read_wait(struct rp *rp, uint64_t zxid)
{
	if (rp && rp->ops->read_wait)
		rp->ops->read_wait(rp, zxid);
}

void rp_close(struct rp *rp)
{
	if (rp)
		rp->ops->close(rp);
}
