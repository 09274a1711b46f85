/*
 * The acceptor log (consensus/io_wal.h): records come back in order, only those above the last
 * committed transaction id, and a replay stops at a torn record or at what an earlier round left.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "consensus/io_wal.h"

#define MIB (1u << 20)

static char dir[64];

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/qfs-wal-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(io_wal, .init = setup, .fini = teardown);

struct seen {
	int n;
	uint64_t txn[64];
	char text[64][64];
};

static int collect(void *arg, uint64_t txnid, const uint8_t *p, size_t len)
{
	struct seen *s = arg;
	cr_assert_lt(s->n, 64);
	cr_assert_lt(len, 64u);
	s->txn[s->n] = txnid;
	memcpy(s->text[s->n], p, len);
	s->text[s->n][len] = '\0';
	s->n++;
	return 0;
}

static void append(struct rpx_wal *w, uint64_t txnid, const char *text)
{
	rpx_wal_begin(w, txnid);
	cr_assert(!rpx_wal_pending(w));
	cr_assert_eq(rpx_wal_add(w, text, 1, text + 1, strlen(text + 1)), 0);
	cr_assert(rpx_wal_pending(w));
	cr_assert_eq(rpx_wal_commit(w), 0);
}

static struct seen reopen_replay(uint64_t after)
{
	struct rpx_wal w;
	struct seen s = {0};
	cr_assert_eq(rpx_wal_open(&w, dir, MIB, 1), 0);
	cr_assert_eq(rpx_wal_replay(&w, after, collect, &s), 0);
	rpx_wal_close(&w);
	return s;
}

Test(io_wal, records_come_back_in_order_above_the_committed_txn)
{
	struct rpx_wal w;
	struct stat sb;
	char path[128];

	cr_assert_eq(rpx_wal_open(&w, dir, MIB, 0), 0);
	snprintf(path, sizeof path, "%s/%s", dir, RPX_WAL_NAME);
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_eq(sb.st_size, (off_t)MIB, "a new log has its whole size at once");
	append(&w, 7, "seven");
	append(&w, 8, "eight");
	append(&w, 9, "nine");
	rpx_wal_close(&w);

	struct seen s = reopen_replay(7);
	cr_assert_eq(s.n, 2);
	cr_assert_eq(s.txn[0], 8);
	cr_assert_str_eq(s.text[0], "eight");
	cr_assert_eq(s.txn[1], 9);
	cr_assert_str_eq(s.text[1], "nine");
	cr_assert_eq(reopen_replay(9).n, 0, "all committed: nothing to write again");
	cr_assert_eq(reopen_replay(0).n, 3);
}

Test(io_wal, a_torn_record_ends_the_log)
{
	struct rpx_wal w;
	char path[128];

	cr_assert_eq(rpx_wal_open(&w, dir, MIB, 1), 0);
	append(&w, 1, "first");
	append(&w, 2, "second");
	append(&w, 3, "third");
	rpx_wal_close(&w);
	/* flip one payload byte of the second record: it and what follows are not replayed */
	snprintf(path, sizeof path, "%s/%s", dir, RPX_WAL_NAME);
	int fd = open(path, O_RDWR);
	cr_assert_geq(fd, 0);
	off_t at = (off_t)(RPX_WAL_HDR + 5 + RPX_WAL_HDR + 2);
	char c;
	cr_assert_eq(pread(fd, &c, 1, at), 1);
	cr_assert_eq(c, 'c');
	c ^= 1;
	cr_assert_eq(pwrite(fd, &c, 1, at), 1);
	close(fd);
	struct seen s = reopen_replay(0);
	cr_assert_eq(s.n, 1);
	cr_assert_str_eq(s.text[0], "first");

	/* the next record after such a replay goes where the torn one was (a crash tears only
	 * the last record: one is written only after the one before it was flushed) */
	cr_assert_eq(rpx_wal_open(&w, dir, MIB, 1), 0);
	s.n = 0;
	cr_assert_eq(rpx_wal_replay(&w, 0, collect, &s), 0);
	cr_assert_eq(w.off, RPX_WAL_HDR + 5);
	append(&w, 4, "fourth!");
	rpx_wal_close(&w);
	s = reopen_replay(0);
	cr_assert_eq(s.n, 2);
	cr_assert_str_eq(s.text[1], "fourth!");
}

Test(io_wal, after_a_reset_older_records_are_not_written_again)
{
	struct rpx_wal w;

	cr_assert_eq(rpx_wal_open(&w, dir, MIB, 1), 0);
	append(&w, 10, "a-long-record-of-round-one");
	append(&w, 11, "another-of-round-one");
	append(&w, 12, "and-a-third-one");
	/* a full commit (txn 13) made them durable in the database: start over */
	rpx_wal_reset(&w);
	cr_assert_eq(w.resets, 1);
	append(&w, 14, "short");
	rpx_wal_close(&w);
	/* the database committed up to 13: only txn 14 comes back, although round one's later
	 * records are still in the file after it */
	struct seen s = reopen_replay(13);
	cr_assert_eq(s.n, 1);
	cr_assert_eq(s.txn[0], 14);
	cr_assert_str_eq(s.text[0], "short");
}

Test(io_wal, a_record_that_does_not_fit_is_refused_whole)
{
	struct rpx_wal w;
	static char big[300 * 1024];

	memset(big, 'x', sizeof big);
	cr_assert_eq(rpx_wal_open(&w, dir, MIB, 1), 0);
	for (int i = 0; i < 3; i++) {
		rpx_wal_begin(&w, 20 + (uint64_t)i);
		cr_assert_eq(rpx_wal_add(&w, big, sizeof big, NULL, 0), 0);
		cr_assert_eq(rpx_wal_commit(&w), 0);
	}
	uint64_t off = w.off;
	rpx_wal_begin(&w, 23);
	cr_assert_eq(rpx_wal_add(&w, big, sizeof big, NULL, 0), 0);
	cr_assert_eq(rpx_wal_commit(&w), -ENOSPC);
	cr_assert_eq(w.off, off, "nothing written");
	rpx_wal_reset(&w);
	cr_assert_eq(rpx_wal_commit(&w), 0, "the same record fits once the log starts over");
	rpx_wal_close(&w);
}

Test(io_wal, a_log_of_a_foreign_size_is_refused)
{
	struct rpx_wal w;
	char path[128];

	snprintf(path, sizeof path, "%s/%s", dir, RPX_WAL_NAME);
	int fd = open(path, O_RDWR | O_CREAT, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 12345), 0);
	close(fd);
	cr_assert_eq(rpx_wal_open(&w, dir, MIB, 1), -EINVAL);
	cr_assert_eq(w.fd, -1);
	rpx_wal_close(&w);
	cr_assert_eq(rpx_wal_open(&w, "/nonexistent-dir-qfs", MIB, 1), -ENOENT);
}
