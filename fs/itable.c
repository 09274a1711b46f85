#include "fs/itable.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FS__IT_MIN_BUCKETS 1024

static size_t fs__hash_ino(uint64_t ino, size_t nbuckets)
{
	ino ^= ino >> 33;
	ino *= 0xff51afd7ed558ccdULL;
	ino ^= ino >> 33;
	return (size_t)(ino & (nbuckets - 1));
}

static size_t fs__hash_path(const char *p, size_t nbuckets)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *p; p++) {
		h ^= (unsigned char)*p;
		h *= 0x100000001b3ULL;
	}
	return (size_t)(h & (nbuckets - 1));
}

static void fs__path_insert(struct fs__itable *tab, struct fs__inode *in)
{
	size_t b = fs__hash_path(in->path, tab->nbuckets);

	in->next_path = tab->by_path[b];
	tab->by_path[b] = in;
	tab->npath++;
}

static void fs__path_remove(struct fs__itable *tab, struct fs__inode *in)
{
	struct fs__inode **pp = &tab->by_path[fs__hash_path(in->path, tab->nbuckets)];

	for (; *pp; pp = &(*pp)->next_path) {
		if (*pp == in) {
			*pp = in->next_path;
			in->next_path = NULL;
			tab->npath--;
			return;
		}
	}
}

/* Double the bucket arrays when the table gets crowded; on -ENOMEM keep the old ones. */
static void fs__it_grow(struct fs__itable *tab)
{
	size_t nb = tab->nbuckets * 2;
	struct fs__inode **bi, **bp;

	if (tab->n < tab->nbuckets)
		return;
	bi = calloc(nb, sizeof(*bi));
	bp = calloc(nb, sizeof(*bp));
	if (!bi || !bp) {
		free(bi);
		free(bp);
		return;
	}
	for (size_t i = 0; i < tab->nbuckets; i++) {
		struct fs__inode *in, *next;

		for (in = tab->by_ino[i]; in; in = next) {
			size_t b = fs__hash_ino(in->ino, nb);

			next = in->next_ino;
			in->next_ino = bi[b];
			bi[b] = in;
		}
		for (in = tab->by_path[i]; in; in = next) {
			size_t b = fs__hash_path(in->path, nb);

			next = in->next_path;
			in->next_path = bp[b];
			bp[b] = in;
		}
	}
	free(tab->by_ino);
	free(tab->by_path);
	tab->by_ino = bi;
	tab->by_path = bp;
	tab->nbuckets = nb;
}

static struct fs__inode *fs__it_new(struct fs__itable *tab, const char *path, enum fs__kind kind,
				    int64_t czxid)
{
	struct fs__inode *in = calloc(1, sizeof(*in));
	size_t b;

	if (!in)
		return NULL;
	in->path = strdup(path);
	if (!in->path) {
		free(in);
		return NULL;
	}
	in->ino = tab->next_ino++;
	in->generation = (uint64_t)czxid;
	in->kind = kind;
	in->czxid = czxid;
	in->pc_mzxid = -1;
	b = fs__hash_ino(in->ino, tab->nbuckets);
	in->next_ino = tab->by_ino[b];
	tab->by_ino[b] = in;
	tab->n++;
	fs__path_insert(tab, in);
	fs__it_grow(tab);
	return in;
}

int fs__it_init(struct fs__itable *tab, int64_t root_czxid)
{
	memset(tab, 0, sizeof(*tab));
	pthread_mutex_init(&tab->lock, NULL);
	tab->next_ino = 1; /* FUSE_ROOT_ID */
	tab->nbuckets = FS__IT_MIN_BUCKETS;
	tab->by_ino = calloc(tab->nbuckets, sizeof(*tab->by_ino));
	tab->by_path = calloc(tab->nbuckets, sizeof(*tab->by_path));
	if (!tab->by_ino || !tab->by_path)
		goto err;
	tab->root = fs__it_new(tab, "/", FS__K_DIR, root_czxid);
	if (!tab->root)
		goto err;
	tab->root->nlookup = 1;
	return 0;
err:
	free(tab->by_ino);
	free(tab->by_path);
	pthread_mutex_destroy(&tab->lock);
	return -ENOMEM;
}

void fs__it_destroy(struct fs__itable *tab)
{
	for (size_t i = 0; i < tab->nbuckets; i++) {
		struct fs__inode *in, *next;

		for (in = tab->by_ino[i]; in; in = next) {
			next = in->next_ino;
			free(in->path);
			free(in);
		}
	}
	free(tab->by_ino);
	free(tab->by_path);
	pthread_mutex_destroy(&tab->lock);
}

struct fs__inode *fs__it_get(struct fs__itable *tab, uint64_t ino)
{
	struct fs__inode *in = tab->by_ino[fs__hash_ino(ino, tab->nbuckets)];

	while (in && in->ino != ino)
		in = in->next_ino;
	return in;
}

struct fs__inode *fs__it_find(struct fs__itable *tab, const char *path)
{
	struct fs__inode *in = tab->by_path[fs__hash_path(path, tab->nbuckets)];

	while (in && strcmp(in->path, path) != 0)
		in = in->next_path;
	return in;
}

static void fs__it_detach(struct fs__itable *tab, struct fs__inode *in)
{
	if (!in || !in->path || in == tab->root)
		return;
	fs__path_remove(tab, in);
	free(in->path);
	in->path = NULL;
}

void fs__it_isolate(struct fs__itable *tab, struct fs__inode *in)
{
	if (!in || !in->path || in == tab->root || in->isolated)
		return;
	fs__path_remove(tab, in);
	in->isolated = 1;
}

struct fs__inode *fs__it_ref(struct fs__itable *tab, const char *path, enum fs__kind kind,
			     int64_t czxid)
{
	struct fs__inode *in = fs__it_find(tab, path);

	if (in && (in == tab->root || (in->kind == kind && in->czxid >= czxid))) {
		in->nlookup++;
		return in;
	}
	fs__it_detach(tab, in);
	in = fs__it_new(tab, path, kind, czxid);
	if (in)
		in->nlookup = 1;
	return in;
}

void fs__it_forget(struct fs__itable *tab, uint64_t ino, uint64_t n)
{
	struct fs__inode *in = fs__it_get(tab, ino), **pp;

	if (!in || in == tab->root)
		return;
	in->nlookup = n >= in->nlookup ? 0 : in->nlookup - n;
	if (in->nlookup > 0)
		return;
	fs__it_detach(tab, in);
	for (pp = &tab->by_ino[fs__hash_ino(ino, tab->nbuckets)]; *pp; pp = &(*pp)->next_ino) {
		if (*pp == in) {
			*pp = in->next_ino;
			break;
		}
	}
	tab->n--;
	if (in->pc_open > 0 || in->fence > 0)
		in->forgotten = 1; /* freed by the last fs__it_unpinned */
	else
		free(in);
}

void fs__it_unpinned(struct fs__itable *tab, struct fs__inode *in)
{
	(void)tab;
	if (in && in->forgotten && in->pc_open == 0 && in->fence == 0)
		free(in);
}

static void fs__data_path(char *out, size_t cap, const char *path)
{
	snprintf(out, cap, "%s/.data", strcmp(path, "/") == 0 ? "" : path);
}

void fs__it_unlink(struct fs__itable *tab, const char *path)
{
	char dp[4200];

	fs__data_path(dp, sizeof(dp), path);
	fs__it_detach(tab, fs__it_find(tab, path));
	fs__it_detach(tab, fs__it_find(tab, dp));
}

static int fs__it_rekey(struct fs__itable *tab, struct fs__inode *in, const char *to, int64_t czxid)
{
	char *p = strdup(to);

	if (!p) {
		fs__it_detach(tab, in);
		return -ENOMEM;
	}
	fs__path_remove(tab, in);
	free(in->path);
	in->path = p;
	in->czxid = czxid;
	in->pc_mzxid = -1;
	fs__path_insert(tab, in);
	return 0;
}

int fs__it_move(struct fs__itable *tab, const char *from, const char *to, int64_t czxid)
{
	char dfrom[4200], dto[4200];
	struct fs__inode *in, *din;
	int rv = 0;

	fs__data_path(dfrom, sizeof(dfrom), from);
	fs__data_path(dto, sizeof(dto), to);
	in = fs__it_find(tab, from);
	din = fs__it_find(tab, dfrom);
	fs__it_unlink(tab, to);
	if (in && fs__it_rekey(tab, in, to, czxid) != 0)
		rv = -ENOMEM;
	if (din && fs__it_rekey(tab, din, dto, czxid) != 0)
		rv = -ENOMEM;
	return rv;
}

int fs__path_join(char *out, size_t cap, const char *parent, const char *name)
{
	int n;

	if (strcmp(parent, "/") == 0)
		n = snprintf(out, cap, "/%s", name);
	else
		n = snprintf(out, cap, "%s/%s", parent, name);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}
