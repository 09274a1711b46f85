/* st: the LMDB environment of one replica (see st.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/st.h"
#include "store/st_lmdb.h"
#include "store/st_test.h"

#define ST__MAPSIZE    ((size_t)64 << 30) /* sparse: the file grows only as pages are used */
#define ST__MAXREADERS 1022

int st__err(int rc)
{
	if (rc == 0)
		return 0;
	if (rc > 0)
		return -rc; /* a system errno */
	switch (rc) {
	case MDB_MAP_FULL:
	case MDB_TXN_FULL:
	case MDB_PAGE_FULL:
		return -ENOSPC;
	case MDB_NOTFOUND:
		return -ENOENT;
	case MDB_KEYEXIST:
		return -EEXIST;
	case MDB_READERS_FULL:
		return -EAGAIN;
	case MDB_INVALID:
	case MDB_VERSION_MISMATCH:
	case MDB_INCOMPATIBLE:
		return -EINVAL;
	case MDB_BAD_VALSIZE:
		return -EINVAL;
	default:
		return -EIO; /* MDB_CORRUPTED, MDB_PANIC, MDB_BAD_TXN, ... */
	}
}

int st__buf_reserve(struct st__buf *b, size_t n)
{
	if (b->cap - b->len >= n)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap - b->len < n) {
		if (cap > SIZE_MAX / 2)
			return -ENOMEM;
		cap *= 2;
	}
	char *p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

/* One-shot countdown: returns the armed errno when the countdown of KIND reaches zero. */
static int st__fault(struct st_env *env, int kind)
{
#ifdef QFS_TEST_HOOKS
	if (__atomic_load_n(&env->fault_kind, __ATOMIC_ACQUIRE) != kind)
		return 0;
	if (__atomic_sub_fetch(&env->fault_countdown, 1, __ATOMIC_ACQ_REL) != 0)
		return 0;
	__atomic_store_n(&env->fault_kind, ST_FAULT_NONE, __ATOMIC_RELEASE);
	return env->fault_err;
#else
	(void)env;
	(void)kind;
	return 0;
#endif
}

int st__fault_put(struct st_env *env)
{
	return st__fault(env, ST_FAULT_PUT);
}

int st__fault_lost(struct st_env *env)
{
	return st__fault(env, ST_FAULT_LOST);
}

#ifdef QFS_TEST_HOOKS
static size_t st__test_mapsize;

void st_test_mapsize(size_t bytes)
{
	__atomic_store_n(&st__test_mapsize, bytes, __ATOMIC_RELAXED);
}

void st_fault_delay(struct st_env *env, unsigned ms)
{
	__atomic_store_n(&env->fault_delay_ms, ms, __ATOMIC_RELAXED);
}

int st_fault_set(struct st_env *env, enum st_fault kind, int countdown, int err)
{
	if (kind == ST_FAULT_NONE) {
		__atomic_store_n(&env->fault_kind, ST_FAULT_NONE, __ATOMIC_RELEASE);
		return 0;
	}
	if ((kind != ST_FAULT_COMMIT && kind != ST_FAULT_PUT && kind != ST_FAULT_LOST) ||
	    countdown < 1 || err >= 0)
		return -EINVAL;
	__atomic_store_n(&env->fault_kind, ST_FAULT_NONE, __ATOMIC_RELEASE);
	env->fault_err = err;
	__atomic_store_n(&env->fault_countdown, countdown, __ATOMIC_RELEASE);
	__atomic_store_n(&env->fault_kind, (int)kind, __ATOMIC_RELEASE);
	return 0;
}
#endif

uint64_t st_commits(struct st_env *env)
{
	return __atomic_load_n(&env->n_commits, __ATOMIC_RELAXED);
}

uint64_t st_commit_failures(struct st_env *env)
{
	return __atomic_load_n(&env->n_commit_fail, __ATOMIC_RELAXED);
}

/* Create or check the format marker in a fresh write transaction. */
static int st__init_dbs(struct st_env *env)
{
	MDB_txn *txn = NULL;
	MDB_dbi main_dbi;
	MDB_stat ms;
	int rc;

	rc = st__err(mdb_txn_begin(env->mdb, NULL, 0, &txn));
	if (rc)
		goto err;
	rc = st__err(mdb_dbi_open(txn, NULL, 0, &main_dbi));
	if (rc)
		goto err;
	rc = st__err(mdb_stat(txn, main_dbi, &ms));
	if (rc)
		goto err;
	int fresh = ms.ms_entries == 0;

	rc = mdb_dbi_open(txn, "meta", fresh ? MDB_CREATE : 0, &env->meta);
	if (rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE) {
		rc = -EINVAL; /* an LMDB environment, but not ours */
		goto err;
	}
	rc = st__err(rc);
	if (rc)
		goto err;
	rc = st__err(mdb_dbi_open(txn, "tree", MDB_CREATE, &env->tree));
	if (rc)
		goto err;

	MDB_val k = {6, "format"}, v;
	rc = mdb_get(txn, env->meta, &k, &v);
	if (rc == MDB_NOTFOUND && fresh) {
		uint32_t fmt = ST__FORMAT;
		v.mv_size = sizeof fmt;
		v.mv_data = &fmt;
		rc = st__err(mdb_put(txn, env->meta, &k, &v, 0));
		if (rc)
			goto err;
	} else if (rc == MDB_NOTFOUND) {
		rc = -EINVAL;
		goto err;
	} else if (rc) {
		rc = st__err(rc);
		goto err;
	} else {
		uint32_t fmt;
		if (v.mv_size != sizeof fmt) {
			rc = -EINVAL;
			goto err;
		}
		memcpy(&fmt, v.mv_data, sizeof fmt);
		if (fmt != ST__FORMAT) {
			rc = -EINVAL;
			goto err;
		}
	}
	rc = zt__init(env, txn);
	if (rc)
		goto err;
	rc = st__err(mdb_txn_commit(txn));
	txn = NULL;
	if (rc)
		goto err;
	return 0;
err:
	if (txn)
		mdb_txn_abort(txn);
	return rc;
}

int st_open(const char *dir, unsigned flags, struct st_env **out)
{
	struct st_env *env = NULL;
	char path[PATH_MAX];
	struct stat sb;
	int rc;

	if (!dir || !out || (flags & ~ST_F_NOSYNC))
		return -EINVAL;
	if (stat(dir, &sb) != 0)
		return -errno;
	if (!S_ISDIR(sb.st_mode))
		return -ENOTDIR;
	if (snprintf(path, sizeof path, "%s/LOCK", dir) >= (int)sizeof path)
		return -ENAMETOOLONG;

	env = calloc(1, sizeof *env);
	if (!env)
		return -ENOMEM;
	env->lock_fd = -1;
	env->flags = flags;
	env->w.env = env;
	rc = -pthread_mutex_init(&env->pool_lock, NULL);
	if (rc) {
		free(env);
		return rc;
	}

	env->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (env->lock_fd < 0) {
		rc = -errno;
		goto err;
	}
	if (flock(env->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		goto err;
	}

	rc = st__err(mdb_env_create(&env->mdb));
	if (rc)
		goto err;
	size_t mapsize = ST__MAPSIZE;
#ifdef QFS_TEST_HOOKS
	size_t test_map = __atomic_load_n(&st__test_mapsize, __ATOMIC_RELAXED);
	if (test_map)
		mapsize = test_map;
#endif
	rc = st__err(mdb_env_set_mapsize(env->mdb, mapsize));
	if (rc)
		goto err;
	rc = st__err(mdb_env_set_maxdbs(env->mdb, ST__MAXDBS));
	if (rc)
		goto err;
	rc = st__err(mdb_env_set_maxreaders(env->mdb, ST__MAXREADERS));
	if (rc)
		goto err;
	unsigned mflags = MDB_NOTLS | MDB_NORDAHEAD;
	if (flags & ST_F_NOSYNC)
		mflags |= MDB_NOSYNC;
	rc = st__err(mdb_env_open(env->mdb, dir, mflags, 0644));
	if (rc)
		goto err;
	int dead;
	/* We hold DIR's lock: reader slots left by a crashed process only pin old pages. */
	rc = st__err(mdb_reader_check(env->mdb, &dead));
	if (rc)
		goto err;
	rc = st__init_dbs(env);
	if (rc)
		goto err;
	*out = env;
	return 0;
err:
	if (env->mdb)
		mdb_env_close(env->mdb);
	if (env->lock_fd >= 0)
		close(env->lock_fd);
	pthread_mutex_destroy(&env->pool_lock);
	free(env);
	return rc;
}

void st_close(struct st_env *env)
{
	if (!env)
		return;
	if (env->w_live)
		mdb_txn_abort(env->w.txn);
	while (env->pool) {
		struct st_rtxn *r = env->pool;
		env->pool = r->next;
		mdb_txn_abort(r->txn);
		free(r);
	}
	mdb_env_close(env->mdb);
	close(env->lock_fd); /* releases the flock */
	pthread_mutex_destroy(&env->pool_lock);
	for (int i = 0; i < 2; i++)
		free(env->scratch[i].p);
	free(env);
}

int st_rbegin(struct st_env *env, struct st_rtxn **out)
{
	struct st_rtxn *r;
	int rc;

	pthread_mutex_lock(&env->pool_lock);
	r = env->pool;
	if (r) {
		env->pool = r->next;
		env->npool--;
	}
	pthread_mutex_unlock(&env->pool_lock);

	if (r) {
		rc = st__err(mdb_txn_renew(r->txn));
		if (rc == 0) {
			*out = r;
			return 0;
		}
		mdb_txn_abort(r->txn);
		free(r);
		return rc;
	}
	r = malloc(sizeof *r);
	if (!r)
		return -ENOMEM;
	r->env = env;
	r->next = NULL;
	rc = st__err(mdb_txn_begin(env->mdb, NULL, MDB_RDONLY, &r->txn));
	if (rc) {
		free(r);
		return rc;
	}
	*out = r;
	return 0;
}

void st_rend(struct st_rtxn *r)
{
	struct st_env *env;

	if (!r)
		return;
	env = r->env;
	mdb_txn_reset(r->txn);
	pthread_mutex_lock(&env->pool_lock);
	if (env->npool < ST__POOL_MAX) {
		r->next = env->pool;
		env->pool = r;
		env->npool++;
		r = NULL;
	}
	pthread_mutex_unlock(&env->pool_lock);
	if (r) {
		mdb_txn_abort(r->txn);
		free(r);
	}
}

int st_wbegin(struct st_env *env, struct st_wtxn **out)
{
	int rc;

	if (env->w_live)
		return -EBUSY;
	rc = st__err(mdb_txn_begin(env->mdb, NULL, 0, &env->w.txn));
	if (rc)
		return rc;
	env->w_live = 1;
	*out = &env->w;
	return 0;
}

int st_wcommit(struct st_wtxn *w)
{
	struct st_env *env = w->env;
	int rc;

#ifdef QFS_TEST_HOOKS
	{
		unsigned ms = __atomic_load_n(&env->fault_delay_ms, __ATOMIC_RELAXED);
		struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

		while (ms && nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
#endif
	rc = st__fault(env, ST_FAULT_COMMIT);

	if (rc) {
		mdb_txn_abort(w->txn);
	} else {
		rc = st__err(mdb_txn_commit(w->txn));
	}
	w->txn = NULL;
	env->w_live = 0;
	if (rc == -EINVAL || rc == -ENOENT || rc == -EEXIST)
		rc = -EIO; /* the contract: -ENOSPC, -EROFS, -EIO */
	__atomic_add_fetch(rc ? &env->n_commit_fail : &env->n_commits, 1, __ATOMIC_RELAXED);
	return rc;
}

int st_wcommit_lazy(struct st_wtxn *w)
{
	struct st_env *env = w->env;
	int rc;

	/* Flags are the environment's, but only the one writer thread commits: set for this
	 * commit only. If they cannot be set, the commit is a full one. */
	if (mdb_env_set_flags(env->mdb, MDB_NOMETASYNC, 1) != 0)
		return st_wcommit(w);
	rc = st_wcommit(w);
	mdb_env_set_flags(env->mdb, MDB_NOMETASYNC, 0);
	return rc;
}

int st__dbi_open(struct st_wtxn *w, const char *name, unsigned flags, MDB_dbi *out)
{
	if (!name || strcmp(name, "tree") == 0 || strcmp(name, "meta") == 0)
		return -EINVAL;
	return st__err(mdb_dbi_open(w->txn, name, flags, out));
}

void st_wabort(struct st_wtxn *w)
{
	if (!w || !w->env->w_live)
		return;
	mdb_txn_abort(w->txn);
	w->txn = NULL;
	w->env->w_live = 0;
}
