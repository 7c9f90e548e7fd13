// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * test_aio.c - csvfs/aio.c on a real io_uring: data reaches the file and
 * comes back, every request completes exactly once with the kernel's
 * result (errors included), a full ring refuses rather than queues,
 * requests stay pending while their I/O is (a pipe with nothing in it),
 * cv_aio_free() waits for them, and the buffer pool's alignment and
 * sizes.  Skipped where the kernel has no io_uring.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "aio.h"

struct req {
	struct cv_aio_req aio;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int calls;   /* lock */
	int64_t res; /* lock */
};

static void req_init(struct req *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	r->aio.done = NULL;
}

static void req_done(struct cv_aio_req *a, int64_t res)
{
	struct req *r = (struct req *)a;

	pthread_mutex_lock(&r->lock);
	r->calls++;
	r->res = res;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

/* Wait for r's completion (at most 10 s); its result. */
static int64_t req_wait(struct req *r)
{
	struct timespec dl;
	int64_t res;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 10;
	pthread_mutex_lock(&r->lock);
	while (!r->calls &&
	       pthread_cond_timedwait(&r->cond, &r->lock, &dl) == 0)
		;
	assert_int_equal(r->calls, 1);
	res = r->res;
	pthread_mutex_unlock(&r->lock);
	return res;
}

static int calls_of(struct req *r)
{
	int n;

	pthread_mutex_lock(&r->lock);
	n = r->calls;
	pthread_mutex_unlock(&r->lock);
	return n;
}

static struct cv_aio *new_aio(unsigned depth)
{
	struct cv_aio *a = NULL;
	int rc = cv_aio_new(depth, &a);

	if (rc == -ENOSYS || rc == -EPERM || rc == -EOPNOTSUPP)
		skip(); /* no io_uring here */
	assert_int_equal(rc, 0);
	assert_non_null(a);
	return a;
}

static int tmpfile_fd(void)
{
	char path[] = "/tmp/csvfs-test-aio.XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	return fd;
}

static void test_write_read_back(void **state)
{
	struct cv_aio *a = new_aio(16);
	int fd = tmpfile_fd();
	struct req w[8], r[8];
	char *wb[8], *rb[8];

	for (int k = 0; k < 8; k++) {
		wb[k] = cv_aio_buf_get(a, 4096);
		rb[k] = cv_aio_buf_get(a, 4096);
		assert_non_null(wb[k]);
		assert_non_null(rb[k]);
		memset(wb[k], 'a' + k, 4096);
		req_init(&w[k]);
		w[k].aio.done = req_done;
		assert_int_equal(cv_aio_pwrite(a, fd, wb[k], 4096,
					       (off_t)k * 4096, &w[k].aio),
				 0);
	}
	for (int k = 0; k < 8; k++)
		assert_int_equal(req_wait(&w[k]), 4096);
	for (int k = 7; k >= 0; k--) {
		req_init(&r[k]);
		r[k].aio.done = req_done;
		assert_int_equal(cv_aio_pread(a, fd, rb[k], 4096,
					      (off_t)k * 4096, &r[k].aio),
				 0);
	}
	for (int k = 0; k < 8; k++) {
		assert_int_equal(req_wait(&r[k]), 4096);
		assert_memory_equal(rb[k], wb[k], 4096);
	}
	/* the file has it too, not just the ring's view */
	char c;
	assert_int_equal(pread(fd, &c, 1, 5 * 4096 + 17), 1);
	assert_int_equal(c, 'f');
	/* a read past the end is short, as pread */
	req_init(&r[0]);
	r[0].aio.done = req_done;
	assert_int_equal(
		cv_aio_pread(a, fd, rb[0], 4096, 8 * 4096 - 100, &r[0].aio), 0);
	assert_int_equal(req_wait(&r[0]), 100);
	for (int k = 0; k < 8; k++) {
		cv_aio_buf_put(a, wb[k], 4096);
		cv_aio_buf_put(a, rb[k], 4096);
	}
	cv_aio_free(a);
	close(fd);
}

static void test_errors_are_results(void **state)
{
	struct cv_aio *a = new_aio(4);
	int fd = tmpfile_fd(), ro;
	struct req r;
	char buf[64] = "x";
	char path[64];

	req_init(&r);
	r.aio.done = req_done;
	assert_int_equal(cv_aio_pread(a, 12345, buf, sizeof(buf), 0, &r.aio),
			 0);
	assert_int_equal(req_wait(&r), -EBADF);

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ro = open(path, O_RDONLY);
	assert_true(ro >= 0);
	req_init(&r);
	r.aio.done = req_done;
	assert_int_equal(cv_aio_pwrite(a, ro, buf, sizeof(buf), 0, &r.aio), 0);
	assert_int_equal(req_wait(&r), -EBADF);
	close(ro);
	cv_aio_free(a);
	close(fd);
}

struct feeder {
	int fd;
	unsigned delay_ms;
};

static void *feed(void *arg)
{
	struct feeder *f = arg;

	usleep(f->delay_ms * 1000);
	assert_int_equal(write(f->fd, "hello", 5), 5);
	return NULL;
}

/* Depth 1: one request pending on an empty pipe fills the ring. */
static void test_full_ring_refuses(void **state)
{
	struct cv_aio *a = new_aio(1);
	struct cv_aio_stats st;
	struct req r1, r2;
	char b1[16] = "", b2[16];
	int p[2];

	assert_int_equal(pipe(p), 0);
	req_init(&r1);
	r1.aio.done = req_done;
	req_init(&r2);
	r2.aio.done = req_done;
	assert_int_equal(cv_aio_pread(a, p[0], b1, sizeof(b1), 0, &r1.aio), 0);
	usleep(50 * 1000);
	assert_int_equal(calls_of(&r1), 0); /* pending, not failed */
	assert_int_equal(cv_aio_pread(a, p[0], b2, sizeof(b2), 0, &r2.aio),
			 -EAGAIN);
	assert_int_equal(write(p[1], "data", 4), 4);
	assert_int_equal(req_wait(&r1), 4);
	assert_memory_equal(b1, "data", 4);
	/* room again */
	assert_int_equal(cv_aio_pread(a, p[0], b2, sizeof(b2), 0, &r2.aio), 0);
	assert_int_equal(write(p[1], "more", 4), 4);
	assert_int_equal(req_wait(&r2), 4);
	cv_aio_stats(a, &st);
	assert_int_equal(st.submitted, 2);
	assert_int_equal(st.completed, 2);
	assert_int_equal(st.refused, 1);
	/* at most one wake-up per submission; how many were needed depends
	 * on whether the ring thread was asleep at the time */
	assert_true(st.kicks <= st.submitted);
	assert_int_equal(calls_of(&r1), 1); /* exactly once */
	cv_aio_free(a);
	close(p[0]);
	close(p[1]);
}

/* A read pending on an empty pipe until a feeder writes "hello" into it
 * delay_ms later. */
struct pending {
	int p[2];
	struct feeder f;
	pthread_t t;
	struct req r;
	char b[16];
};

static void pending_start(struct cv_aio *a, struct pending *pd,
			  unsigned delay_ms)
{
	memset(pd->b, 0, sizeof(pd->b));
	assert_int_equal(pipe(pd->p), 0);
	req_init(&pd->r);
	pd->r.aio.done = req_done;
	assert_int_equal(
		cv_aio_pread(a, pd->p[0], pd->b, sizeof(pd->b), 0, &pd->r.aio),
		0);
	pd->f.fd = pd->p[1];
	pd->f.delay_ms = delay_ms;
	assert_int_equal(pthread_create(&pd->t, NULL, feed, &pd->f), 0);
}

/* The pending read was answered with the feeder's bytes. */
static void pending_end(struct pending *pd)
{
	assert_int_equal(calls_of(&pd->r), 1);
	assert_int_equal(pd->r.res, 5);
	assert_memory_equal(pd->b, "hello", 5);
	pthread_join(pd->t, NULL);
	close(pd->p[0]);
	close(pd->p[1]);
}

/* cv_aio_free() returns only once every request has completed. */
static void test_free_waits(void **state)
{
	struct cv_aio *a = new_aio(4);
	struct pending pd;

	pending_start(a, &pd, 200);
	cv_aio_free(a);
	pending_end(&pd);
}

/* cv_aio_stop() waits too, leaves final statistics, refuses later
 * requests; cv_aio_free() after it only frees.  cv_aio_idle() is false
 * while a request is pending, true before and after. */
static void test_stop_then_free(void **state)
{
	struct cv_aio *a = new_aio(4);
	struct cv_aio_stats st;
	struct pending pd;
	struct req late;
	char b[16];

	req_init(&late);
	late.aio.done = req_done;
	assert_true(cv_aio_idle(a));
	pending_start(a, &pd, 100);
	assert_false(cv_aio_idle(a));
	cv_aio_stop(a);
	assert_true(cv_aio_idle(a));
	cv_aio_stats(a, &st);
	assert_int_equal(st.submitted, 1);
	assert_int_equal(st.completed, 1);
	assert_int_equal(cv_aio_pread(a, pd.p[0], b, sizeof(b), 0, &late.aio),
			 -EAGAIN);
	pending_end(&pd);
	cv_aio_stop(a); /* twice: nothing more */
	cv_aio_free(a);
	assert_int_equal(calls_of(&late), 0);
}

/* An idle ring stops at once (nothing in flight). */
static void test_free_idle(void **state)
{
	cv_aio_free(new_aio(8));
	cv_aio_free(NULL);
}

struct writer {
	struct cv_aio *a;
	int fd;
	unsigned id;
};

#define WRITERS	   4
#define PER_WRITER 200

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct req *r = calloc(PER_WRITER, sizeof(*r));
	char *buf = cv_aio_buf_get(w->a, 512);

	assert_non_null(r);
	assert_non_null(buf);
	memset(buf, 'A' + (int)w->id, 512);
	for (unsigned k = 0; k < PER_WRITER; k++) {
		off_t off = ((off_t)k * WRITERS + w->id) * 512;

		req_init(&r[k]);
		r[k].aio.done = req_done;
		while (cv_aio_pwrite(w->a, w->fd, buf, 512, off, &r[k].aio) ==
		       -EAGAIN)
			usleep(100); /* ring full: the test's own back-off */
	}
	for (unsigned k = 0; k < PER_WRITER; k++)
		assert_int_equal(req_wait(&r[k]), 512);
	cv_aio_buf_put(w->a, buf, 512);
	free(r);
	return NULL;
}

/* Many submitting threads (FUSE workers): every byte lands where asked. */
static void test_many_submitters(void **state)
{
	struct cv_aio *a = new_aio(8);
	struct writer w[WRITERS];
	pthread_t t[WRITERS];
	struct cv_aio_stats st;
	int fd = tmpfile_fd();
	char buf[512];

	for (unsigned k = 0; k < WRITERS; k++) {
		w[k] = (struct writer){ .a = a, .fd = fd, .id = k };
		assert_int_equal(
			pthread_create(&t[k], NULL, writer_main, &w[k]), 0);
	}
	for (unsigned k = 0; k < WRITERS; k++)
		pthread_join(t[k], NULL);
	for (unsigned k = 0; k < WRITERS * PER_WRITER; k++) {
		assert_int_equal(pread(fd, buf, 512, (off_t)k * 512), 512);
		assert_int_equal(buf[0], 'A' + (int)(k % WRITERS));
		assert_int_equal(buf[511], 'A' + (int)(k % WRITERS));
	}
	cv_aio_stats(a, &st);
	assert_int_equal(st.submitted, WRITERS * PER_WRITER);
	assert_int_equal(st.completed, WRITERS * PER_WRITER);
	cv_aio_free(a);
	close(fd);
}

static void test_buffers(void **state)
{
	struct cv_aio *a = new_aio(2);
	static const size_t sizes[] = { 1,    512,   4096,
					4097, 65536, CV_AIO_BUF_MAX };
	void *b, *again;

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		b = cv_aio_buf_get(a, sizes[k]);
		assert_non_null(b);
		assert_int_equal((uintptr_t)b % CV_AIO_ALIGN, 0);
		memset(b, 0x5a, sizes[k]); /* all of it is ours (ASan) */
		cv_aio_buf_put(a, b, sizes[k]);
		again = cv_aio_buf_get(a, sizes[k]);
		assert_ptr_equal(again, b); /* kept for reuse */
		cv_aio_buf_put(a, again, sizes[k]);
	}
	assert_null(cv_aio_buf_get(a, CV_AIO_BUF_MAX + 1));
	cv_aio_buf_put(a, NULL, 4096);
	cv_aio_free(a); /* frees the kept buffers (LSan) */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_read_back),
		cmocka_unit_test(test_errors_are_results),
		cmocka_unit_test(test_full_ring_refuses),
		cmocka_unit_test(test_free_waits),
		cmocka_unit_test(test_stop_then_free),
		cmocka_unit_test(test_free_idle),
		cmocka_unit_test(test_many_submitters),
		cmocka_unit_test(test_buffers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
