// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * aio.c - asynchronous backing I/O on one io_uring (see aio.h for why).
 *
 * One thread owns the ring: it submits, reaps and replies.  FUSE workers
 * only queue requests for it (a mutex and a list) and go back to
 * /dev/fuse.  Why not let every worker submit to the ring itself: the
 * kernel completes a request by task work on the task that submitted
 * it, under the ring's lock, so with many submitters every completion
 * interrupts a worker and the workers fight over that lock (measured:
 * a third of csvfs's time in mutex_spin_on_owner, and fewer IOPS than
 * with no ring at all).  With a single issuer the ring is set up with
 * IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN where the
 * kernel has them (6.1): completions wait until the ring thread asks,
 * and it takes them in batches.
 *
 * The ring thread sleeps only in io_uring_submit_and_wait(), with a read
 * of an eventfd always armed; a worker that queues a request while the
 * thread sleeps (a->sleeping) writes the eventfd once (a->kicked).  Under
 * load the thread is awake reaping when requests arrive, and a queued
 * request costs no wake-up of its own.
 *
 * In flight (queued or submitted) requests are capped at the SQ's size,
 * so the SQ never lacks room and the CQ (twice the SQ) never overflows.
 *
 * Buffers: O_DIRECT needs aligned memory, and an allocation per request
 * of up to 1 MiB would map and fault fresh pages each time, so buffers
 * come from power-of-two size classes (4 KiB .. 1 MiB) that keep a few
 * freed buffers each.
 *
 * Locks: a->lock (queue, flags, counters) and the pool's class locks are
 * leaves; no done() callback runs with one held.
 */
#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "aio.h"
#include "log.h"

#define CV_AIO_MIN_SHIFT 12 /* 4 KiB */
#define CV_AIO_MAX_SHIFT 20 /* CV_AIO_BUF_MAX */
#define CV_AIO_CLASSES	 (CV_AIO_MAX_SHIFT - CV_AIO_MIN_SHIFT + 1)
/* Freed buffers kept per class: small ones are the random I/O of a
 * whole queue depth, big ones cost a lot of idle memory. */
#define CV_AIO_KEEP_SMALL  64
#define CV_AIO_KEEP_BIG	   8
#define CV_AIO_SMALL_SHIFT 16

struct aio_class {
	pthread_mutex_t lock;
	unsigned n;		       /* lock */
	unsigned keep;		       /* immutable */
	void *free[CV_AIO_KEEP_SMALL]; /* lock: n of them */
};

struct cv_aio {
	struct io_uring ring; /* the ring thread's alone */
	pthread_t thread;
	int efd;	       /* eventfd: wakes the ring thread */
	uint64_t efd_val;      /* ring thread: the armed read's buffer */
	unsigned max_inflight; /* immutable: the SQ's size */

	pthread_mutex_t lock;
	pthread_cond_t cond;	  /* lock: ring thread set up (start_rc) */
	struct cv_aio_req *head;  /* lock: queued, oldest first */
	struct cv_aio_req **tail; /* lock */
	atomic_uint inflight;	  /* written under lock: queued or submitted;
				   * cv_aio_idle reads it without */
	bool sleeping;		  /* lock: ring thread may be waiting */
	bool kicked;		  /* lock: eventfd written, not yet read */
	bool stop;		  /* lock: ring thread to end when drained */
	bool joined;		  /* cv_aio_stop's caller: thread joined */
	int start_rc;		  /* lock: 1 until the ring thread has set up */
	struct cv_aio_stats st;	  /* lock */

	struct aio_class cls[CV_AIO_CLASSES];
};

static unsigned class_of(size_t len)
{
	unsigned s = CV_AIO_MIN_SHIFT;

	while (((size_t)1 << s) < len)
		s++;
	return s - CV_AIO_MIN_SHIFT;
}

void *cv_aio_buf_get(struct cv_aio *a, size_t len)
{
	struct aio_class *c;
	void *b = NULL;
	unsigned k;

	if (len > CV_AIO_BUF_MAX)
		return NULL;
	k = class_of(len);
	c = &a->cls[k];
	pthread_mutex_lock(&c->lock);
	if (c->n)
		b = c->free[--c->n];
	pthread_mutex_unlock(&c->lock);
	if (!b && posix_memalign(&b, CV_AIO_ALIGN,
				 (size_t)1 << (k + CV_AIO_MIN_SHIFT)))
		return NULL;
	return b;
}

void cv_aio_buf_put(struct cv_aio *a, void *buf, size_t len)
{
	struct aio_class *c;

	if (!buf)
		return;
	c = &a->cls[class_of(len)];
	pthread_mutex_lock(&c->lock);
	if (c->n < c->keep) {
		c->free[c->n++] = buf;
		buf = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	free(buf);
}

/* Ring thread: the armed read of the eventfd (user_data: a itself). */
static void arm_kick(struct cv_aio *a)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&a->ring);

	/* one SQE more than max_inflight was allowed for: never NULL */
	io_uring_prep_read(sqe, a->efd, &a->efd_val, sizeof(a->efd_val), 0);
	io_uring_sqe_set_data(sqe, a);
}

/* Ring thread: move the queue into SQEs; whether any was queued. */
static bool take_queue(struct cv_aio *a, bool *stop)
{
	struct cv_aio_req *r, *next;
	struct io_uring_sqe *sqe;

	pthread_mutex_lock(&a->lock);
	r = a->head;
	a->head = NULL;
	a->tail = &a->head;
	*stop = a->stop &&
		!atomic_load_explicit(&a->inflight, memory_order_relaxed);
	a->sleeping = !r && !*stop;
	pthread_mutex_unlock(&a->lock);
	if (!r)
		return false;
	for (; r; r = next) {
		next = r->next;
		sqe = io_uring_get_sqe(&a->ring); /* room: max_inflight */
		if (r->op == IORING_OP_READ)
			io_uring_prep_read(sqe, r->fd, r->buf, r->len,
					   (__u64)r->off);
		else
			io_uring_prep_write(sqe, r->fd, r->buf, r->len,
					    (__u64)r->off);
		io_uring_sqe_set_data(sqe, r);
	}
	return true;
}

/*
 * Ring thread: run every completion that is ready.  The requests leave
 * the in-flight count before their done() runs, so that a submitter
 * woken by done() finds the room it freed.
 */
static void reap(struct cv_aio *a)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0, k = 0, done = 0;
	bool kick = false;

	io_uring_for_each_cqe(&a->ring, head, cqe)
	{
		n++;
		if (io_uring_cqe_get_data(cqe) == (void *)a)
			kick = true;
		else
			done++;
	}
	pthread_mutex_lock(&a->lock);
	a->sleeping = false; /* awake until take_queue finds nothing */
	if (kick)
		a->kicked = false;
	atomic_fetch_sub_explicit(&a->inflight, done, memory_order_relaxed);
	a->st.completed += done;
	a->st.wakeups++;
	pthread_mutex_unlock(&a->lock);
	/* the same n entries again (more may have come meanwhile) */
	io_uring_for_each_cqe(&a->ring, head, cqe)
	{
		struct cv_aio_req *r = io_uring_cqe_get_data(cqe);

		if (k++ == n)
			break;
		if ((void *)r != (void *)a)
			r->done(r, cqe->res);
	}
	io_uring_cq_advance(&a->ring, n);
	if (kick)
		arm_kick(a);
}

static int ring_setup(struct cv_aio *a)
{
	static const unsigned flag_sets[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_COOP_TASKRUN,
		0,
	};
	struct io_uring_params p;
	int rc = -EINVAL;

	/* newest first: EINVAL means the kernel lacks a flag */
	for (unsigned k = 0; k < 3 && rc == -EINVAL; k++) {
		memset(&p, 0, sizeof(p));
		p.flags = flag_sets[k] | IORING_SETUP_CQSIZE;
		p.cq_entries = 2 * (a->max_inflight + 1);
		rc = io_uring_queue_init_params(a->max_inflight + 1, &a->ring,
						&p);
	}
	if (rc)
		return rc;
	if (!(p.features & IORING_FEAT_NODROP)) {
		io_uring_queue_exit(&a->ring); /* before Linux 5.5 */
		return -EOPNOTSUPP;
	}
	arm_kick(a);
	return 0;
}

static void *ring_thread(void *arg)
{
	struct cv_aio *a = arg;
	bool stop, queued;
	int rc = ring_setup(a);

	pthread_mutex_lock(&a->lock);
	a->start_rc = rc;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
	if (rc)
		return NULL;
	for (;;) {
		queued = take_queue(a, &stop);
		if (stop)
			break;
		/* asleep only with nothing queued; else just collect */
		rc = queued ? io_uring_submit_and_get_events(&a->ring)
			    : io_uring_submit_and_wait(&a->ring, 1);
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
			/* not with a valid ring: say so and keep going,
			 * requests must not be left unanswered */
			log_err("aio: io_uring_enter: %s", strerror(-rc));
			usleep(1000);
		}
		reap(a);
	}
	io_uring_queue_exit(&a->ring);
	return NULL;
}

static int submit(struct cv_aio *a, uint8_t op, int fd, void *buf, size_t len,
		  off_t off, struct cv_aio_req *r)
{
	uint64_t one = 1;
	unsigned n;
	bool kick;

	if (len > UINT32_MAX)
		return -EINVAL;
	r->op = op;
	r->fd = fd;
	r->buf = buf;
	r->len = (uint32_t)len;
	r->off = off;
	r->next = NULL;
	pthread_mutex_lock(&a->lock);
	n = atomic_load_explicit(&a->inflight, memory_order_relaxed);
	if (n >= a->max_inflight || a->stop) {
		a->st.refused++;
		pthread_mutex_unlock(&a->lock);
		return -EAGAIN;
	}
	*a->tail = r;
	a->tail = &r->next;
	atomic_fetch_add_explicit(&a->inflight, 1, memory_order_relaxed);
	a->st.submitted++;
	kick = a->sleeping && !a->kicked;
	if (kick) {
		a->kicked = true;
		a->st.kicks++;
	}
	pthread_mutex_unlock(&a->lock);
	/* cannot fail short of a counter at 2^64-2; the request is
	 * queued either way and goes with the next wake-up */
	if (kick && write(a->efd, &one, sizeof(one)) != sizeof(one))
		log_err("aio: cannot wake the ring thread: %s",
			strerror(errno));
	return 0;
}

int cv_aio_pread(struct cv_aio *a, int fd, void *buf, size_t len, off_t off,
		 struct cv_aio_req *r)
{
	return submit(a, IORING_OP_READ, fd, buf, len, off, r);
}

int cv_aio_pwrite(struct cv_aio *a, int fd, const void *buf, size_t len,
		  off_t off, struct cv_aio_req *r)
{
	return submit(a, IORING_OP_WRITE, fd, (void *)buf, len, off, r);
}

static void destroy(struct cv_aio *a)
{
	for (unsigned k = 0; k < CV_AIO_CLASSES; k++) {
		while (a->cls[k].n)
			free(a->cls[k].free[--a->cls[k].n]);
		pthread_mutex_destroy(&a->cls[k].lock);
	}
	pthread_cond_destroy(&a->cond);
	pthread_mutex_destroy(&a->lock);
	if (a->efd >= 0)
		close(a->efd);
	free(a);
}

int cv_aio_new(unsigned depth, struct cv_aio **out)
{
	struct cv_aio *a;
	int rc;

	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->max_inflight = depth ? depth : 1;
	a->tail = &a->head;
	a->start_rc = 1;
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->cond, NULL);
	for (unsigned k = 0; k < CV_AIO_CLASSES; k++) {
		pthread_mutex_init(&a->cls[k].lock, NULL);
		a->cls[k].keep = k + CV_AIO_MIN_SHIFT <= CV_AIO_SMALL_SHIFT
					 ? CV_AIO_KEEP_SMALL
					 : CV_AIO_KEEP_BIG;
	}
	a->efd = eventfd(0, EFD_CLOEXEC);
	if (a->efd < 0) {
		rc = -errno;
		goto fail;
	}
	/* the ring is set up on its thread: a single-issuer ring belongs
	 * to the task that creates it */
	rc = -pthread_create(&a->thread, NULL, ring_thread, a);
	if (rc)
		goto fail;
	pthread_mutex_lock(&a->lock);
	while (a->start_rc == 1)
		pthread_cond_wait(&a->cond, &a->lock);
	rc = a->start_rc;
	pthread_mutex_unlock(&a->lock);
	if (rc) {
		pthread_join(a->thread, NULL);
		goto fail;
	}
	*out = a;
	return 0;

fail:
	destroy(a);
	return rc;
}

void cv_aio_stop(struct cv_aio *a)
{
	uint64_t one = 1;

	if (!a || a->joined)
		return;
	pthread_mutex_lock(&a->lock);
	a->stop = true;
	pthread_mutex_unlock(&a->lock);
	/* the ring thread ends once nothing is in flight; wake it so it
	 * sees stop even if it is idle */
	if (write(a->efd, &one, sizeof(one)) != sizeof(one))
		log_err("aio: cannot wake the ring thread: %s",
			strerror(errno));
	pthread_join(a->thread, NULL);
	a->joined = true;
}

void cv_aio_free(struct cv_aio *a)
{
	if (!a)
		return;
	cv_aio_stop(a);
	destroy(a);
}

/* A hint taken on every direct request: no lock, a relaxed read. */
bool cv_aio_idle(struct cv_aio *a)
{
	return !atomic_load_explicit(&a->inflight, memory_order_relaxed);
}

void cv_aio_stats(struct cv_aio *a, struct cv_aio_stats *st)
{
	pthread_mutex_lock(&a->lock);
	*st = a->st;
	pthread_mutex_unlock(&a->lock);
}
