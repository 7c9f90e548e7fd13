/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * aio.h - asynchronous reads and writes of backing file descriptors
 * through one io_uring, completed on a thread of this module.
 *
 * Why: a FUSE worker that does its backing pread/pwrite itself sleeps
 * in it, and every request costs two sleeps and two wake-ups of a worker
 * (one in read(/dev/fuse), one in the disk I/O), each a context switch
 * and, on a VM, often a cross-CPU interrupt.  With the I/O submitted
 * here the worker goes straight back to /dev/fuse, where under load the
 * next request is already waiting, and one completion thread reaps many
 * completions per wake-up and sends their replies.
 *
 * Use:
 *   cv_aio_new()            set up the ring (fails where the kernel has
 *                           no io_uring or forbids it: the caller then
 *                           does its I/O synchronously);
 *   cv_aio_buf_get/put()    aligned buffers for O_DIRECT, from a pool;
 *   cv_aio_pread/pwrite()   submit; 0 = done() will be called exactly
 *                           once, from the completion thread, with the
 *                           byte count or -errno; -errno = not submitted
 *                           (-EAGAIN: ring full), done() is not called;
 *   cv_aio_stop()           waits for every submitted request's done(),
 *                           then ends the thread; later submissions are
 *                           refused (-EAGAIN); the statistics are final;
 *   cv_aio_free()           stops (if not yet stopped) and frees.
 *
 * done() runs on the completion thread: it must not block for long (it
 * holds up every other completion) and must not submit and wait for a
 * request of its own.
 *
 * Threads: submit from any number of threads; the ring itself is the
 * completion thread's alone (see aio.c).  The buffers stay owned by the
 * caller until done() has been called.
 */
#ifndef CSVFS_AIO_H
#define CSVFS_AIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Largest buffer cv_aio_buf_get() gives (a FUSE request's max_write). */
#define CV_AIO_BUF_MAX (1024 * 1024)
/* Buffer alignment: covers every O_DIRECT alignment (STATX_DIOALIGN). */
#define CV_AIO_ALIGN 4096

struct cv_aio;

/* Embedded by the caller in its own request; done is set by the caller,
 * the rest belongs to aio.c while the request is submitted. */
struct cv_aio_req {
	void (*done)(struct cv_aio_req *r, int64_t res);
	struct cv_aio_req *next;
	void *buf;
	off_t off;
	uint32_t len;
	int fd;
	uint8_t op;
};

struct cv_aio_stats {
	uint64_t submitted; /* requests taken */
	uint64_t completed; /* completed by the kernel */
	uint64_t wakeups;   /* passes of the ring thread (reaps) */
	uint64_t kicks;	    /* submissions that had to wake it */
	uint64_t refused;   /* -EAGAIN: the ring was full */
};

/* depth: requests in flight at most (rounded up to a power of two). */
int cv_aio_new(unsigned depth, struct cv_aio **out);
void cv_aio_stop(struct cv_aio *a);
void cv_aio_free(struct cv_aio *a);

int cv_aio_pread(struct cv_aio *a, int fd, void *buf, size_t len, off_t off,
		 struct cv_aio_req *r);
int cv_aio_pwrite(struct cv_aio *a, int fd, const void *buf, size_t len,
		  off_t off, struct cv_aio_req *r);

/* An aligned buffer of at least len bytes (len <= CV_AIO_BUF_MAX), or
 * NULL; give it back with the same len. */
void *cv_aio_buf_get(struct cv_aio *a, size_t len);
void cv_aio_buf_put(struct cv_aio *a, void *buf, size_t len);

void cv_aio_stats(struct cv_aio *a, struct cv_aio_stats *st);
/* Nothing queued or in flight: the ring thread sleeps or is about to.
 * A hint (no lock): a request may be submitted or completed meanwhile. */
bool cv_aio_idle(struct cv_aio *a);

#endif /* CSVFS_AIO_H */
