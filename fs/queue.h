/*
 * fs__queue: a FIFO of jobs run in order by one thread of its own (private to fs/).
 *
 * fs/ uses two: one for kernel inode invalidations and the replies that must follow them, one for
 * entry invalidations, which take the parent directory's lock in the kernel and so must never run
 * on a thread that a FUSE reply waits for.
 */
#ifndef QFS_FS_QUEUE_H
#define QFS_FS_QUEUE_H

#include <pthread.h>
#include <stddef.h>

/* The struct of type TYPE whose member MEMBER is at PTR (a job embedded in its context). */
#define FS__CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

struct fs__job;
typedef void (*fs__job_cb)(struct fs__job *job);

struct fs__job {
	struct fs__job *next; /* protected by the queue's lock while queued */
	fs__job_cb run;	      /* runs once on the queue's thread, owns JOB from then on */
};

struct fs__queue {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct fs__job *head; /* protected by lock */
	struct fs__job *tail; /* protected by lock */
	int stopping;	      /* protected by lock */
	pthread_t thread;     /* set by fs__queue_start */
};

/* Start Q's thread. 0 or a negative errno. */
int fs__queue_start(struct fs__queue *q);
/* Queue JOB (job->run set by the caller). Any thread. */
void fs__queue_push(struct fs__queue *q, struct fs__job *job);
/* Run what is queued, then stop and join the thread, waiting at most TIMEOUT_MS. -ETIMEDOUT: the
 * thread is stuck (it was detached; Q must not be freed). */
int fs__queue_stop(struct fs__queue *q, int timeout_ms);

#endif
