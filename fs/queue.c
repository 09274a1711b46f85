#include "fs/queue.h"

#include <errno.h>
#include <stddef.h>
#include <time.h>

static void *fs__queue_main(void *arg)
{
	struct fs__queue *q = arg;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		struct fs__job *job;

		while (!q->head && !q->stopping)
			pthread_cond_wait(&q->cond, &q->lock);
		if (!q->head)
			break;
		job = q->head;
		q->head = q->tail = NULL;
		pthread_mutex_unlock(&q->lock);
		while (job) {
			struct fs__job *next = job->next;

			job->run(job);
			job = next;
		}
		pthread_mutex_lock(&q->lock);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

int fs__queue_start(struct fs__queue *q)
{
	int rv;

	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	q->head = q->tail = NULL;
	q->stopping = 0;
	rv = pthread_create(&q->thread, NULL, fs__queue_main, q);
	if (rv != 0) {
		pthread_cond_destroy(&q->cond);
		pthread_mutex_destroy(&q->lock);
		return -rv;
	}
	return 0;
}

void fs__queue_push(struct fs__queue *q, struct fs__job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&q->lock);
	if (q->tail)
		q->tail->next = job;
	else
		q->head = job;
	q->tail = job;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

int fs__queue_stop(struct fs__queue *q, int timeout_ms)
{
	struct timespec ts;
	int rv;

	pthread_mutex_lock(&q->lock);
	q->stopping = 1;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	rv = pthread_timedjoin_np(q->thread, NULL, &ts);
	if (rv != 0) {
		/* Stuck in the kernel (a notification waiting for a lock that a request nobody
		 * will answer holds): leave it; the process is about to exit. */
		pthread_detach(q->thread);
		return -ETIMEDOUT;
	}
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->lock);
	return 0;
}
