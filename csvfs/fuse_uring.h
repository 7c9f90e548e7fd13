/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuse_uring.h - FUSE requests over io_uring (Linux 6.14+, module
 * parameter fuse.enable_uring=1), csvfs's second request transport.
 *
 * The kernel offers it in the INIT request (flags2, FUSE_OVER_IO_URING);
 * when the INIT reply takes it, the daemon registers per possible CPU a
 * queue of entries on an io_uring, and once every CPU's queue has one the
 * kernel delivers requests as completions of those registrations instead
 * of /dev/fuse reads (FORGET, INTERRUPT and notifications stay on
 * /dev/fuse).  See fuse_uring.c for how csvfs answers them.
 *
 * Use (fuseio.c, from the INIT reply):
 *   cv_uring_start()      before the INIT reply is written: rings and
 *                         threads set up (an error: keep /dev/fuse and
 *                         do not take the flag);
 *   cv_uring_init_done()  the INIT reply is written: register entries;
 *   cv_uring_reply()      from the session's writev: a reply to a request
 *                         that came over a ring is taken (true);
 *   cv_uring_stop()       once the session loop has ended: waits for
 *                         every request taken, ends the threads, frees.
 */
#ifndef CSVFS_FUSE_URING_H
#define CSVFS_FUSE_URING_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* FUSE_OVER_IO_URING (bit 41) as it sits in flags2 of INIT. */
#define CV_URING_FLAGS2 (1u << (41 - 32))
/* Payload buffer of an entry: max_write (and max_pages) of csvfs. */
#define CV_URING_PAYLOAD (1024 * 1024)
/* Entries each queue registers (requests in flight per CPU). */
#define CV_URING_DEPTH 32

struct cv_fs;
struct cv_uring;

int cv_uring_start(struct cv_fs *fs, int devfd, size_t payload_sz,
		   struct cv_uring **out);
void cv_uring_init_done(struct cv_uring *u);
bool cv_uring_reply(struct cv_uring *u, const struct iovec *iov, int count,
		    ssize_t *n);
void cv_uring_stop(struct cv_uring *u);

#endif /* CSVFS_FUSE_URING_H */
