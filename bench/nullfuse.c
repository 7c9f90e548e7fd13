// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * nullfuse - a FUSE server with no logic of its own, the reference that
 * bench/fio.sh runs beside csvfs: the regular files of one flat backing
 * directory, passed through with direct I/O (FOPEN_DIRECT_IO and
 * FOPEN_PARALLEL_DIRECT_WRITES, as csvfs's cache=direct opens them), the
 * backing file opened with the client's O_DIRECT, data through an aligned
 * bounce buffer.  No ownership, no lock manager, no inode table beyond a
 * name per inode number.  What it measures is the cost of FUSE itself
 * with a given way of taking requests and doing their I/O:
 *
 *   -m mt     libfuse's worker pool (clone_fd, up to 64 workers, none
 *             ending), each request's backing pread/pwrite done by its
 *             worker: the classic threaded daemon;
 *   -m ring   one thread and one io_uring: it waits on the ring for the
 *             device to become readable (a multishot poll), reads every
 *             queued request without blocking, submits the backing I/O
 *             to the same ring, and replies from the completions;
 *   -m uring  FUSE over io_uring (Linux 6.14+, fuse.enable_uring=1): a
 *             pinned thread and ring per CPU take the requests and do
 *             their backing I/O, zero copies (nullfuse_uring.c).
 *             With NULLFUSE_NOPIN set in the environment the threads
 *             are not pinned (the scheduler may run a queue's thread on
 *             another CPU than the requests' issuer).
 *
 *   nullfuse [-m mt|ring|uring] BACKING_DIR MOUNTPOINT
 *
 * Runs in the foreground; unmount (fusermount3 -u) to stop it.  Only
 * lookup, getattr, open, read, write, flush, fsync and release of files
 * that exist in BACKING_DIR: enough for fio on a laid-out file.
 */
#define FUSE_USE_VERSION 314

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <liburing.h>
#include <linux/fuse.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "nullfuse.h"

#define NF_MAX_FILES  64
#define NF_ALIGN      4096
#define NF_MAX_WRITE  (1024 * 1024)
#define NF_RING_DEPTH 256

struct nf_file {
	ino_t ino;
	char name[256];
};

static int dirfd_be = -1;
static struct nf_file files[NF_MAX_FILES];
static unsigned nfiles;
static pthread_mutex_t files_lock = PTHREAD_MUTEX_INITIALIZER;
static bool ring_mode, uring_mode;
static struct io_uring ring; /* ring mode: the one thread's */

static const char *name_of(fuse_ino_t ino)
{
	const char *n = NULL;

	pthread_mutex_lock(&files_lock);
	for (unsigned k = 0; k < nfiles && !n; k++)
		if (files[k].ino == ino)
			n = files[k].name;
	pthread_mutex_unlock(&files_lock);
	return n;
}

static void remember(ino_t ino, const char *name)
{
	pthread_mutex_lock(&files_lock);
	for (unsigned k = 0; k < nfiles; k++)
		if (files[k].ino == ino)
			goto out;
	if (nfiles < NF_MAX_FILES) {
		files[nfiles].ino = ino;
		snprintf(files[nfiles].name, sizeof(files[nfiles].name), "%s",
			 name);
		nfiles++;
	}
out:
	pthread_mutex_unlock(&files_lock);
}

static void nf_init(void *ud, struct fuse_conn_info *conn)
{
	(void)ud;
	conn->max_write = NF_MAX_WRITE;
	conn->max_background = 256;
	conn->congestion_threshold = 192;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

static int stat_ino(fuse_ino_t ino, struct stat *st)
{
	const char *n;

	if (ino == FUSE_ROOT_ID)
		return fstat(dirfd_be, st) ? -errno : 0;
	n = name_of(ino);
	if (!n)
		return -ESTALE;
	if (fstatat(dirfd_be, n, st, AT_SYMLINK_NOFOLLOW))
		return -errno;
	st->st_ino = ino;
	return 0;
}

int nf_lookup_name(const char *name, struct stat *st)
{
	if (strchr(name, '/') ||
	    fstatat(dirfd_be, name, st, AT_SYMLINK_NOFOLLOW))
		return strchr(name, '/') ? -ENOENT : -errno;
	remember(st->st_ino, name);
	return 0;
}

int nf_stat_ino(uint64_t ino, struct stat *st)
{
	return stat_ino(ino, st);
}

int nf_open_ino(uint64_t ino, int flags)
{
	const char *n = name_of(ino);
	int fd;

	if (!n)
		return -ESTALE;
	fd = openat(dirfd_be, n,
		    flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC));
	return fd < 0 ? -errno : fd;
}

static void nf_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e = { 0 };

	if (parent != FUSE_ROOT_ID || strchr(name, '/')) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (fstatat(dirfd_be, name, &e.attr, AT_SYMLINK_NOFOLLOW)) {
		fuse_reply_err(req, errno);
		return;
	}
	remember(e.attr.st_ino, name);
	e.ino = e.attr.st_ino;
	fuse_reply_entry(req, &e);
}

static void nf_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct stat st;
	int rc = stat_ino(ino, &st);

	(void)fi;
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, 0);
}

static void nf_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fuse_open_out out = { 0 };
	struct iovec iov = { .iov_base = &out, .iov_len = sizeof(out) };
	const char *n = name_of(ino);
	int fd;

	if (!n) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	fd = openat(dirfd_be, n,
		    fi->flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC));
	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	out.fh = (uint64_t)fd;
	out.open_flags = FOPEN_DIRECT_IO | NF_FOPEN_PARALLEL_DIRECT_WRITES;
	if (fuse_reply_iov(req, &iov, 1))
		close(fd);
}

static void nf_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	(void)ino;
	close((int)fi->fh);
	fuse_reply_err(req, 0);
}

static void nf_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void nf_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	int rc = datasync ? fdatasync((int)fi->fh) : fsync((int)fi->fh);

	(void)ino;
	fuse_reply_err(req, rc ? errno : 0);
}

/* One backing read or write on the ring: its request and its buffer. */
struct nf_io {
	fuse_req_t req;
	void *buf;
	size_t size;
	bool write;
};

static void *abuf(size_t size)
{
	void *b = NULL;

	return posix_memalign(&b, NF_ALIGN, size ? size : 1) ? NULL : b;
}

static bool ring_submit(fuse_req_t req, int fd, void *buf, size_t size,
			off_t off, bool write)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
	struct nf_io *io;

	if (!sqe) {
		io_uring_submit(&ring);
		sqe = io_uring_get_sqe(&ring);
	}
	io = malloc(sizeof(*io));
	if (!sqe || !io) {
		free(io);
		return false;
	}
	*io = (struct nf_io){
		.req = req, .buf = buf, .size = size, .write = write
	};
	if (write)
		io_uring_prep_write(sqe, fd, buf, (unsigned)size, (__u64)off);
	else
		io_uring_prep_read(sqe, fd, buf, (unsigned)size, (__u64)off);
	io_uring_sqe_set_data(sqe, io);
	return true;
}

static void nf_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	void *b = abuf(size);
	ssize_t n;

	(void)ino;
	if (!b) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (ring_mode && ring_submit(req, (int)fi->fh, b, size, off, false))
		return;
	n = pread((int)fi->fh, b, size, off);
	if (n < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_buf(req, b, (size_t)n);
	free(b);
}

static void nf_write(fuse_req_t req, fuse_ino_t ino, const char *data,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	void *b = abuf(size);
	ssize_t n;

	(void)ino;
	if (!b) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	memcpy(b, data, size);
	if (ring_mode && ring_submit(req, (int)fi->fh, b, size, off, true))
		return;
	n = pwrite((int)fi->fh, b, size, off);
	if (n < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_write(req, (size_t)n);
	free(b);
}

static const struct fuse_lowlevel_ops nf_ops = {
	.init = nf_init,
	.lookup = nf_lookup,
	.getattr = nf_getattr,
	.open = nf_open,
	.read = nf_read,
	.write = nf_write,
	.flush = nf_flush,
	.fsync = nf_fsync,
	.release = nf_release,
};

static void io_done(struct nf_io *io, int res)
{
	if (res < 0)
		fuse_reply_err(io->req, -res);
	else if (io->write)
		fuse_reply_write(io->req, (size_t)res);
	else
		fuse_reply_buf(io->req, io->buf, (size_t)res);
	free(io->buf);
	free(io);
}

/* Read and process every queued request; -ENODEV once unmounted. */
static int drain_device(struct fuse_session *se, int fd, void *buf,
			size_t bufsize)
{
	for (;;) {
		ssize_t n = read(fd, buf, bufsize);
		struct fuse_buf fb = { .mem = buf };

		if (n < 0 &&
		    (errno == EAGAIN || errno == EINTR || errno == ENOENT))
			return errno == EAGAIN ? 0 : 1;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENODEV;
		fb.size = (size_t)n;
		fuse_session_process_buf(se, &fb);
		if (fuse_session_exited(se))
			return -ENODEV;
	}
}

#define NF_POLL_TAG ((void *)1)

static int ring_loop(struct fuse_session *se)
{
	int fd = fuse_session_fd(se);
	size_t bufsize = NF_MAX_WRITE + 4096;
	void *buf = abuf(bufsize);
	struct io_uring_params p = { 0 };
	struct io_uring_sqe *sqe;
	int rc;

	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	if (!buf || io_uring_queue_init_params(NF_RING_DEPTH, &ring, &p))
		return -ENOMEM;
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK))
		return -errno;
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_poll_multishot(sqe, fd, POLLIN);
	io_uring_sqe_set_data(sqe, NF_POLL_TAG);
	for (rc = 0; rc >= 0;) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;
		bool rearm = false, readable = false;

		io_uring_submit_and_wait(&ring, 1);
		io_uring_for_each_cqe(&ring, head, cqe)
		{
			void *d = io_uring_cqe_get_data(cqe);

			n++;
			if (d == NF_POLL_TAG) {
				readable = true;
				rearm |= !(cqe->flags & IORING_CQE_F_MORE);
			} else {
				io_done(d, cqe->res);
			}
		}
		io_uring_cq_advance(&ring, n);
		if (rearm) {
			sqe = io_uring_get_sqe(&ring);
			io_uring_prep_poll_multishot(sqe, fd, POLLIN);
			io_uring_sqe_set_data(sqe, NF_POLL_TAG);
		}
		if (readable)
			rc = drain_device(se, fd, buf, bufsize);
	}
	io_uring_queue_exit(&ring);
	free(buf);
	return rc == -ENODEV ? 0 : rc;
}

/* uring mode: libfuse 3.14 cannot say FUSE_OVER_IO_URING in its INIT
 * reply, so the reply is amended on its way to the device. */
static ssize_t io_read(int fd, void *buf, size_t len, void *ud)
{
	(void)ud;
	return read(fd, buf, len);
}

static ssize_t io_writev(int fd, struct iovec *iov, int count, void *ud)
{
	static bool init_seen;
	const struct fuse_out_header *oh = iov[0].iov_base;
	struct fuse_init_out out;
	ssize_t n;

	(void)ud;
	if (init_seen || count != 2 || oh->error ||
	    iov[1].iov_len > sizeof(out) ||
	    iov[1].iov_len < offsetof(struct fuse_init_out, flags2) + 4)
		return writev(fd, iov, count);
	init_seen = true; /* the first reply with a body is INIT's */
	memcpy(&out, iov[1].iov_base, iov[1].iov_len);
	out.flags |= FUSE_INIT_EXT;
	out.flags2 |= nf_uring_init_flags2();
	iov[1].iov_base = &out;
	n = writev(fd, iov, count);
	if (n >= 0)
		nf_uring_init_done();
	return n;
}

int main(int argc, char **argv)
{
	static char opt_o[] = "-o", opt_v[] = "fsname=nullfuse,allow_other";
	char *fargv[] = { argv[0], opt_o, opt_v, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
	struct fuse_session *se;
	int opt, rc;

	while ((opt = getopt(argc, argv, "m:")) != -1) {
		if (opt == 'm' && !strcmp(optarg, "ring"))
			ring_mode = true;
		else if (opt == 'm' && !strcmp(optarg, "uring"))
			uring_mode = true;
		else if (opt != 'm' || strcmp(optarg, "mt"))
			goto usage;
	}
	if (argc - optind != 2)
		goto usage;
	dirfd_be = open(argv[optind], O_RDONLY | O_DIRECTORY);
	if (dirfd_be < 0) {
		perror(argv[optind]);
		return 1;
	}
	se = fuse_session_new(&args, &nf_ops, sizeof(nf_ops), NULL);
	if (!se || fuse_session_mount(se, argv[optind + 1]))
		return 1;
	if (uring_mode) {
		static const struct fuse_custom_io io = {
			.read = io_read,
			.writev = io_writev,
		};

		if (fuse_session_custom_io(se, &io, fuse_session_fd(se)) ||
		    nf_uring_start(fuse_session_fd(se), NF_MAX_WRITE)) {
			fprintf(stderr,
				"nullfuse: io_uring mode set-up failed\n");
			return 1;
		}
	}
	if (ring_mode) {
		rc = ring_loop(se);
	} else {
		struct fuse_loop_config *cfg = fuse_loop_cfg_create();

		fuse_loop_cfg_set_max_threads(cfg, 64);
		fuse_loop_cfg_set_idle_threads(cfg, 64);
		fuse_loop_cfg_set_clone_fd(cfg, 1);
		rc = fuse_session_loop_mt(se, cfg);
		fuse_loop_cfg_destroy(cfg);
	}
	fuse_session_unmount(se);
	fuse_session_destroy(se);
	return rc ? 1 : 0;
usage:
	fprintf(stderr,
		"usage: nullfuse [-m mt|ring|uring] BACKING_DIR MOUNTPOINT\n");
	return 2;
}
