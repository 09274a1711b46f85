/*
 * fs__itable: lookup counts, and inodes the kernel forgets while handles of them are still being
 * freed (the kernel may FORGET an inode once the RELEASE of its last file is answered, before the
 * thread that answered freed the handle). Under ASan a use after free fails the test.
 */
#include <criterion/criterion.h>

#include "fs/itable.h"

static struct fs__itable tab;

static void setup(void)
{
	cr_assert_eq(fs__it_init(&tab, 0), 0);
}

static void teardown(void)
{
	fs__it_destroy(&tab);
}

TestSuite(itable, .init = setup, .fini = teardown);

Test(itable, lookups_counted_then_forgotten)
{
	struct fs__inode *a = fs__it_ref(&tab, "/a", FS__K_FILE, 5);
	cr_assert_not_null(a);
	uint64_t ino = a->ino;
	cr_assert_eq(fs__it_ref(&tab, "/a", FS__K_FILE, 5), a, "same node: same inode");
	cr_assert_eq(a->nlookup, 2);
	fs__it_forget(&tab, ino, 1);
	cr_assert_eq(fs__it_get(&tab, ino), a);
	fs__it_forget(&tab, ino, 1);
	cr_assert_null(fs__it_get(&tab, ino), "forgotten: out of the table");
	cr_assert_null(fs__it_find(&tab, "/a"));
}

Test(itable, recreated_node_gets_another_inode)
{
	struct fs__inode *a = fs__it_ref(&tab, "/a", FS__K_FILE, 5);
	struct fs__inode *b = fs__it_ref(&tab, "/a", FS__K_FILE, 9);
	cr_assert_neq(a, b);
	cr_assert_neq(a->ino, b->ino);
	cr_assert_null(a->path, "the old inode is detached");
	cr_assert_eq(fs__it_find(&tab, "/a"), b);
	fs__it_forget(&tab, a->ino, 1);
	fs__it_forget(&tab, b->ino, 1);
}

Test(itable, forgotten_while_pinned_is_freed_by_the_last_unpin)
{
	struct fs__inode *a = fs__it_ref(&tab, "/a", FS__K_FILE, 5);
	uint64_t ino = a->ino;

	a->fence = 1;  /* a writable handle still being freed */
	a->pc_open = 1; /* and a page-cache reader */
	fs__it_forget(&tab, ino, 1);
	cr_assert_null(fs__it_get(&tab, ino), "the kernel's id is gone at once");
	cr_assert_eq(a->forgotten, 1);
	a->fence--;
	fs__it_unpinned(&tab, a); /* still counted in pc_open: kept */
	cr_assert_eq(a->pc_open, 1, "still readable");
	a->pc_open--;
	fs__it_unpinned(&tab, a); /* freed here; ASan reports any later use */
}

Test(itable, unpinned_without_forget_keeps_the_inode)
{
	struct fs__inode *a = fs__it_ref(&tab, "/a", FS__K_FILE, 5);

	a->fence = 1;
	a->fence--;
	fs__it_unpinned(&tab, a);
	cr_assert_eq(fs__it_get(&tab, a->ino), a);
	cr_assert_eq(a->forgotten, 0);
	fs__it_forget(&tab, a->ino, 1);
}
