/*
 * io_wal: the acceptor log (see io_wal.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "consensus/io_wal.h"

#define RPX_WAL_MAGIC 0x4c415751u /* "QWAL" read little-endian */
#define RPX_WAL_SUM   16u

static void wal__put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void wal__put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t wal__get32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t wal__get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* BLAKE2b-128 of the header's first 16 bytes and the payload. */
static void wal__sum(const uint8_t *hdr, const uint8_t *payload, size_t len,
		     uint8_t out[RPX_WAL_SUM])
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, RPX_WAL_SUM);
	crypto_generichash_update(&st, hdr, 16);
	crypto_generichash_update(&st, payload, len);
	crypto_generichash_final(&st, out, RPX_WAL_SUM);
}

/* The whole of LEN bytes at OFF, written (WRITE) or read; a short read (end of file) is -EIO. */
static int wal__io(int fd, void *p, size_t len, off_t off, int write)
{
	char *c = p;
	while (len) {
		ssize_t n = write ? pwrite(fd, c, len, off) : pread(fd, c, len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		c += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/* Create DIR/acceptor.wal of SIZE zero bytes: written (not merely allocated, so that later
 * overwrites flush no metadata), flushed, then renamed into place and the directory flushed. */
static int wal__create(const char *dir, const char *path, uint64_t size, int nosync)
{
	char tmp[PATH_MAX];
	static const uint8_t zero[65536];
	int fd, rc = 0;

	if (snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, RPX_WAL_NAME) >= (int)sizeof tmp)
		return -ENAMETOOLONG;
	fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	for (uint64_t off = 0; rc == 0 && off < size; off += sizeof zero) {
		size_t n = size - off < sizeof zero ? (size_t)(size - off) : sizeof zero;
		rc = wal__io(fd, (void *)zero, n, (off_t)off, 1);
	}
	if (rc == 0 && !nosync && fsync(fd) != 0)
		rc = -errno;
	close(fd);
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc == 0 && !nosync) {
		int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			return -errno;
		if (fsync(dfd) != 0)
			rc = -errno;
		close(dfd);
	}
	if (rc)
		unlink(tmp);
	return rc;
}

int rpx_wal_open(struct rpx_wal *w, const char *dir, uint64_t size, int nosync)
{
	char path[PATH_MAX];
	struct stat sb;
	int rc;

	memset(w, 0, sizeof *w);
	w->fd = -1;
	if (!dir || size < RPX_WAL_HDR * 2)
		return -EINVAL;
	if (snprintf(path, sizeof path, "%s/%s", dir, RPX_WAL_NAME) >= (int)sizeof path)
		return -ENAMETOOLONG;
	if (sodium_init() < 0)
		return -EIO;
	if (stat(path, &sb) != 0) {
		if (errno != ENOENT)
			return -errno;
		rc = wal__create(dir, path, size, nosync);
		if (rc)
			return rc;
	}
	w->fd = open(path, O_RDWR | O_CLOEXEC);
	if (w->fd < 0)
		return -errno;
	if (fstat(w->fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size < (1 << 20) ||
	    sb.st_size % 4096) {
		rc = S_ISREG(sb.st_mode) ? -EINVAL : -EISDIR;
		close(w->fd);
		w->fd = -1;
		return rc;
	}
	w->size = (uint64_t)sb.st_size;
	w->nosync = nosync;
	return 0;
}

void rpx_wal_close(struct rpx_wal *w)
{
	if (w->fd >= 0)
		close(w->fd);
	free(w->buf);
	memset(w, 0, sizeof *w);
	w->fd = -1;
}

void rpx_wal_begin(struct rpx_wal *w, uint64_t txnid)
{
	w->txnid = txnid;
	w->len = RPX_WAL_HDR;
}

int rpx_wal_add(struct rpx_wal *w, const void *a, size_t alen, const void *b, size_t blen)
{
	size_t need;

	if (w->len < RPX_WAL_HDR)
		w->len = RPX_WAL_HDR;
	need = w->len + alen + blen;
	if (need > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;
		while (cap < need)
			cap *= 2;
		uint8_t *p = realloc(w->buf, cap);
		if (!p)
			return -ENOMEM;
		w->buf = p;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, a, alen);
	if (blen)
		memcpy(w->buf + w->len + alen, b, blen);
	w->len = need;
	return 0;
}

int rpx_wal_pending(const struct rpx_wal *w)
{
	return w->len > RPX_WAL_HDR;
}

int rpx_wal_commit(struct rpx_wal *w)
{
	size_t plen;
	int rc;

	if (w->fd < 0 || !rpx_wal_pending(w))
		return -EINVAL;
	plen = w->len - RPX_WAL_HDR;
	if (plen > UINT32_MAX || w->off + w->len > w->size)
		return -ENOSPC;
	wal__put32(w->buf, RPX_WAL_MAGIC);
	wal__put32(w->buf + 4, (uint32_t)plen);
	wal__put64(w->buf + 8, w->txnid);
	wal__sum(w->buf, w->buf + RPX_WAL_HDR, plen, w->buf + 16);
	rc = wal__io(w->fd, w->buf, w->len, (off_t)w->off, 1);
	if (rc == 0 && !w->nosync && fdatasync(w->fd) != 0)
		rc = -errno;
	if (rc)
		return rc;
	w->off += w->len;
	__atomic_add_fetch(&w->appended, 1, __ATOMIC_RELAXED);
	w->len = RPX_WAL_HDR;
	return 0;
}

void rpx_wal_reset(struct rpx_wal *w)
{
	if (w->off)
		__atomic_add_fetch(&w->resets, 1, __ATOMIC_RELAXED);
	w->off = 0;
}

int rpx_wal_replay(struct rpx_wal *w, uint64_t after,
		   int (*cb)(void *arg, uint64_t txnid, const uint8_t *p, size_t len), void *arg)
{
	uint8_t hdr[RPX_WAL_HDR], sum[RPX_WAL_SUM];
	uint8_t *p = NULL;
	size_t cap = 0;
	uint64_t off = 0;
	int rc = 0;

	if (w->fd < 0)
		return 0;
	while (off + RPX_WAL_HDR <= w->size) {
		rc = wal__io(w->fd, hdr, RPX_WAL_HDR, (off_t)off, 0);
		if (rc)
			break;
		uint32_t plen = wal__get32(hdr + 4);
		uint64_t txnid = wal__get64(hdr + 8);
		if (wal__get32(hdr) != RPX_WAL_MAGIC || plen == 0 ||
		    plen > w->size - off - RPX_WAL_HDR)
			break;
		if (plen > cap) {
			uint8_t *np = realloc(p, plen);
			if (!np) {
				rc = -ENOMEM;
				break;
			}
			p = np;
			cap = plen;
		}
		rc = wal__io(w->fd, p, plen, (off_t)(off + RPX_WAL_HDR), 0);
		if (rc)
			break;
		wal__sum(hdr, p, plen, sum);
		if (sodium_memcmp(sum, hdr + 16, RPX_WAL_SUM) != 0)
			break; /* torn: the end */
		if (txnid > after) {
			rc = cb(arg, txnid, p, plen);
			if (rc)
				break;
			__atomic_add_fetch(&w->replayed, 1, __ATOMIC_RELAXED);
		}
		off += RPX_WAL_HDR + plen;
	}
	free(p);
	if (rc == 0)
		w->off = off;
	return rc;
}
