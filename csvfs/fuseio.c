// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fuseio.c - csvfs's own reads and writes of /dev/fuse, to say in the
 * INIT reply what libfuse 3.14 cannot.
 *
 * A file opened with FOPEN_DIRECT_IO (csvfs's default cache=direct) can
 * only be mapped MAP_SHARED when the daemon answers INIT with
 * FUSE_DIRECT_IO_ALLOW_MMAP (Linux 6.6+); without it mmap(2) fails with
 * ENODEV, which breaks databases, editors and anything else that maps a
 * file shared.  libfuse 3.14 knows no such capability: its INIT handler
 * maps the kernel's flags to FUSE_CAP_* bits one by one, ignores the
 * others, and refuses a `want` bit it does not know.  So csvfs hands the
 * session its own read and writev (fuse_session_custom_io, libfuse 3.14's
 * documented way to take over the device I/O): the read notes the INIT
 * request (its unique id, and whether the kernel offers the flag), and the
 * writev adds the flag to flags2 of the one reply to that request.  Every
 * other message goes through untouched, spliced replies included.
 *
 * The same two hooks carry FUSE over io_uring (fuse_uring.h): the read
 * notes whether the kernel offers FUSE_OVER_IO_URING, the INIT reply
 * takes it once the rings are set up, and the writev hands every reply
 * to a request that came over a ring back to that ring instead of
 * /dev/fuse.
 *
 * With the flag the kernel keeps a page cache for mapped pages of direct
 * files: direct reads and writes write those pages back and drop them
 * first, and mapped pages reach us as FUSE_WRITE requests from the
 * kernel's writeback, admitted like any write (fs.c, own.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stddef.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fs.h"
#include "fuse_uring.h"
#include "log.h"

#ifndef FUSE_DIRECT_IO_ALLOW_MMAP /* linux/fuse.h before 6.6 */
#define FUSE_DIRECT_IO_ALLOW_MMAP (1ULL << 36)
#endif
/* The same bit as it sits in flags2 of fuse_init_in and fuse_init_out. */
#define CV_ALLOW_MMAP_FLAGS2 ((uint32_t)(FUSE_DIRECT_IO_ALLOW_MMAP >> 32))

/* flags2 exists from protocol 7.36 on: an INIT argument shorter than
 * this has none. */
#define CV_INIT_IN_MIN	(offsetof(struct fuse_init_in, flags2) + 4)
#define CV_INIT_OUT_MIN (offsetof(struct fuse_init_out, flags2) + 4)

static void note_init(struct cv_fs *fs, const void *buf, size_t n)
{
	const struct fuse_in_header *h = buf;
	const struct fuse_init_in *in;
	bool offered = false;

	if (n < sizeof(*h) || h->opcode != FUSE_INIT)
		return;
	in = (const void *)(h + 1);
	if (n >= sizeof(*h) + CV_INIT_IN_MIN && (in->flags & FUSE_INIT_EXT)) {
		offered = in->flags2 & CV_ALLOW_MMAP_FLAGS2;
		atomic_store(&fs->init_uring_offered,
			     (in->flags2 & CV_URING_FLAGS2) != 0);
	}
	atomic_store(&fs->init_mmap_offered, offered);
	atomic_store(&fs->init_unique, h->unique);
}

static ssize_t io_read(int fd, void *buf, size_t len, void *userdata)
{
	struct cv_fs *fs = userdata;
	ssize_t n = read(fd, buf, len);

	/* INIT is the first request and comes once; after its reply
	 * init_unique is 0 again and this costs one load. */
	if (n > 0 &&
	    !atomic_load_explicit(&fs->init_done, memory_order_relaxed))
		note_init(fs, buf, (size_t)n);
	return n;
}

/*
 * FUSE over io_uring for this mount (uring=, fuse_uring.h): the queues
 * are set up before the INIT reply takes the flag; NULL: /dev/fuse.
 */
static struct cv_uring *uring_setup(struct cv_fs *fs, bool ext)
{
	enum cv_uring_mode m = fs->opts->uring;
	struct cv_uring *u = NULL;
	int rc;

	if (m == CV_URING_OFF)
		return NULL;
	if (!ext || !atomic_load(&fs->init_uring_offered)) {
		if (m == CV_URING_ON)
			log_warn("uring=on, but the kernel does not offer FUSE "
				 "over io_uring (Linux < 6.14, or the fuse "
				 "module parameter enable_uring is 0): "
				 "requests travel over /dev/fuse");
		return NULL;
	}
	rc = cv_uring_start(fs, fuse_session_fd(fs->se), CV_URING_PAYLOAD, &u);
	if (rc) {
		log_warn("cannot set up FUSE over io_uring (%s): requests "
			 "travel over /dev/fuse",
			 strerror(-rc));
		return NULL;
	}
	return u;
}

static void log_init(struct cv_fs *fs, bool mmap_on, struct cv_uring *u)
{
	log_info("shared mmap of files opened for direct I/O: %s",
		 mmap_on ? "on (FUSE_DIRECT_IO_ALLOW_MMAP)"
			 : "off (the kernel does not offer "
			   "FUSE_DIRECT_IO_ALLOW_MMAP, Linux < 6.6)");
	if (u)
		log_info("FUSE requests: over io_uring (one queue of %u "
			 "entries per possible CPU, %ld)",
			 CV_URING_DEPTH, sysconf(_SC_NPROCESSORS_CONF));
	else
		log_info("FUSE requests: over /dev/fuse");
	(void)fs;
}

/*
 * The reply to INIT, with FUSE_DIRECT_IO_ALLOW_MMAP and FUSE_OVER_IO_URING
 * added where the kernel offered them and csvfs takes them.  libfuse
 * sends it as header + fuse_init_out in two iovecs (send_reply_ok);
 * anything else is left alone, and the mount then works as before,
 * without shared mappings of direct files, over /dev/fuse.
 */
static ssize_t init_reply(struct cv_fs *fs, int fd, const struct iovec *iov,
			  int count)
{
	const struct fuse_out_header *oh = iov[0].iov_base;
	struct fuse_init_out out;
	struct cv_uring *u = NULL;
	struct iovec v[2];
	bool on = false;
	ssize_t n;

	if (count == 2 && oh->error == 0 && iov[1].iov_len >= CV_INIT_OUT_MIN &&
	    iov[1].iov_len <= sizeof(out)) {
		memcpy(&out, iov[1].iov_base, iov[1].iov_len);
		if ((out.flags & FUSE_INIT_EXT) &&
		    atomic_load(&fs->init_mmap_offered)) {
			out.flags2 |= CV_ALLOW_MMAP_FLAGS2;
			on = true;
		}
		u = uring_setup(fs, out.flags & FUSE_INIT_EXT);
		if (u)
			out.flags2 |= CV_URING_FLAGS2;
		v[0] = iov[0];
		v[1].iov_base = &out;
		v[1].iov_len = iov[1].iov_len;
		iov = v;
	}
	n = writev(fd, iov, count);
	if (n < 0) {
		cv_uring_stop(u);
		return n;
	}
	fs->direct_mmap = on;
	if (u) {
		atomic_store(&fs->uring, u);
		cv_uring_init_done(u);
	}
	atomic_store(&fs->init_done, true);
	log_init(fs, on, u);
	return n;
}

static ssize_t io_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct cv_fs *fs = userdata;
	uint64_t u =
		atomic_load_explicit(&fs->init_unique, memory_order_relaxed);
	struct cv_uring *ur =
		atomic_load_explicit(&fs->uring, memory_order_acquire);
	const struct fuse_out_header *oh;
	ssize_t n;

	/* a reply to a request that came over a ring goes back there */
	if (ur && cv_uring_reply(ur, iov, count, &n))
		return n;
	if (u && count >= 1 && iov[0].iov_len == sizeof(*oh)) {
		oh = iov[0].iov_base;
		if (oh->unique == u &&
		    atomic_compare_exchange_strong(&fs->init_unique, &u, 0))
			return init_reply(fs, fd, iov, count);
	}
	return writev(fd, iov, count);
}

/* Spliced replies (reads straight from a backing descriptor) as libfuse
 * would send them: without this hook libfuse would stop splicing. */
static ssize_t io_splice_send(int fdin, off_t *offin, int fdout, off_t *offout,
			      size_t len, unsigned int flags, void *userdata)
{
	(void)userdata;
	return splice(fdin, offin, fdout, offout, len, flags);
}

int cv_fuseio_install(struct cv_fs *fs)
{
	static const struct fuse_custom_io io = {
		.read = io_read,
		.writev = io_writev,
		.splice_send = io_splice_send,
	};
	int fd = fuse_session_fd(fs->se);

	if (fd < 0)
		return -EBADF;
	return fuse_session_custom_io(fs->se, &io, fd);
}
