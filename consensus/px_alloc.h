/*
 * px_alloc: the allocator of the px core. In test builds (QFS_TEST_HOOKS) an allocation can be made
 * to fail on purpose, to test the error paths: px_debug_alloc_countdown = N makes the Nth
 * allocation from now fail (and resets itself to 0); 0 never fails. Not thread-safe (test only).
 */
#ifndef QFS_CONSENSUS_PX_ALLOC_H
#define QFS_CONSENSUS_PX_ALLOC_H

#include <stddef.h>
#include <stdlib.h>

#ifdef QFS_TEST_HOOKS
extern unsigned long px_debug_alloc_countdown;
extern unsigned long px_debug_alloc_failures; /* how many were made to fail */

static inline int px__alloc_fails(void)
{
	if (px_debug_alloc_countdown == 0 || --px_debug_alloc_countdown > 0)
		return 0;
	px_debug_alloc_failures++;
	return 1;
}

static inline void *px__malloc(size_t n)
{
	return px__alloc_fails() ? NULL : malloc(n);
}

static inline void *px__calloc(size_t n, size_t m)
{
	return px__alloc_fails() ? NULL : calloc(n, m);
}

static inline void *px__realloc(void *p, size_t n)
{
	return px__alloc_fails() ? NULL : realloc(p, n);
}
#else
#define px__malloc  malloc
#define px__calloc  calloc
#define px__realloc realloc
#endif

#endif
