#include "fs/queue.h"

#include <errno.h>
#include <stddef.h>

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

void fs__queue_stop(struct fs__queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->stopping = 1;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
	pthread_join(q->thread, NULL);
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->lock);
}
