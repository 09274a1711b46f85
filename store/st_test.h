/*
 * st_test: counters for tests and benchmarks (always compiled) and fault injection (compiled only
 * with QFS_TEST_HOOKS). Not for production code paths.
 */
#ifndef QFS_STORE_ST_TEST_H
#define QFS_STORE_ST_TEST_H

#include <stdint.h>

#include "store/st.h"

/* Number of successful and failed st_wcommit calls since st_open. Any thread. */
uint64_t st_commits(struct st_env *env);
uint64_t st_commit_failures(struct st_env *env);

enum st_fault {
	ST_FAULT_NONE = 0,
	ST_FAULT_COMMIT = 1, /* st_wcommit fails (the transaction is aborted, nothing kept) */
	ST_FAULT_PUT = 2,    /* a write inside a write transaction (zt_apply) fails */
	ST_FAULT_LOST = 3,   /* the cluster's storage thread: a lazy commit that follows an acceptor
			      * log append is lost as in a crash of the machine (the process exits
			      * with status 86 instead of committing; daemons only) */
};

#ifdef QFS_TEST_HOOKS
/*
 * Make the COUNTDOWN-th next call of kind KIND fail with ERR (a negative errno), once; countdown 1
 * is the very next call. KIND ST_FAULT_NONE disarms. Call only while no write transaction is live
 * or from the writer thread. Returns 0, or -EINVAL for a bad kind, countdown < 1 or err >= 0.
 */
int st_fault_set(struct st_env *env, enum st_fault kind, int countdown, int err);

/*
 * Make every st_wcommit of ENV from now on sleep MS milliseconds before committing (0: no delay):
 * a slow disk, as seen by the group commit and every reply that waits for durability. The sleep
 * is on the committing thread (the storage thread, never the libuv loop). Any thread.
 */
void st_fault_delay(struct st_env *env, unsigned ms);

/* Map size of environments opened from now on (0: the normal 64 GiB), to make LMDB's map fill up
 * for real (MDB_MAP_FULL -> -ENOSPC). A size smaller than an existing file's is raised by LMDB. */
void st_test_mapsize(size_t bytes);
#endif

#endif
