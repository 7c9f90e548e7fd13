// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lun.c - the LUN access interface (lun.h): dispatch, the host lock,
 * lost ownership, the persistent-reservation calls common to every
 * implementation, and the path implementation (a block device or an
 * image file through one descriptor).
 */
#include "lun_i.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define LUN_ALIGN_MAX 4096u

bool cvb_lun_is_iscsi(const char *source)
{
	return !strncmp(source, "iscsi://", 8);
}

/* ---- the path implementation ------------------------------------------ */

static ssize_t path_io(struct cvb_lun *l, bool wr, void *buf, size_t len,
		       uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = wr ? pwrite(l->fd, (char *)buf + done, len - done,
					(off_t)(off + done))
			       : pread(l->fd, (char *)buf + done, len - done,
				       (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return done ? (ssize_t)done : -errno;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

static ssize_t path_pread(struct cvb_lun *l, void *buf, size_t len,
			  uint64_t off)
{
	return path_io(l, false, buf, len, off);
}

static ssize_t path_pwrite(struct cvb_lun *l, const void *buf, size_t len,
			   uint64_t off)
{
	/* pwrite only reads buf */
	return path_io(l, true, (void *)(uintptr_t)buf, len, off);
}

static int path_flush(struct cvb_lun *l)
{
	return fdatasync(l->fd) ? -errno : 0;
}

static int zero_write(struct cvb_lun *l, uint64_t off, uint64_t len)
{
	static const uint8_t zeros[65536] __attribute__((aligned(4096)));

	while (len) {
		size_t n = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);
		ssize_t w = cvb_lun_pwrite(l, zeros, n, off);

		if (w <= 0)
			return w < 0 ? (int)w : -EIO;
		off += (uint64_t)w;
		len -= (uint64_t)w;
	}
	return 0;
}

/* BLKZEROOUT on a device; on a file, zero range or a punched hole. */
static int path_zero(struct cvb_lun *l, uint64_t off, uint64_t len)
{
	struct stat st;

	if (!fstat(l->fd, &st) && S_ISBLK(st.st_mode)) {
		uint64_t r[2] = { off, len };

		if (!(off % 512) && !(len % 512) &&
		    !ioctl(l->fd, BLKZEROOUT, r))
			return 0;
		return zero_write(l, off, len);
	}
	if (!fallocate(l->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
		       (off_t)off, (off_t)len))
		return 0;
	if (!fallocate(l->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		       (off_t)off, (off_t)len))
		return 0;
	return zero_write(l, off, len);
}

static void path_close(struct cvb_lun *l)
{
	if (l->fd >= 0)
		close(l->fd); /* drops the OFD lock */
}

static const struct cvb_lun_ops path_ops = {
	.pread = path_pread,
	.pwrite = path_pwrite,
	.flush = path_flush,
	.zero = path_zero,
	.close = path_close,
};

/* The alignment direct I/O on fd needs (512..4096). */
static unsigned dio_align_of(int fd, const struct stat *st)
{
	struct statx stx;
	int ssz = 0;
	unsigned a = 512;

	if (S_ISBLK(st->st_mode) && !ioctl(fd, BLKSSZGET, &ssz) && ssz > 0)
		a = (unsigned)ssz;
	else if (!statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) &&
		 (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align)
		a = stx.stx_dio_offset_align > stx.stx_dio_mem_align
			    ? stx.stx_dio_offset_align
			    : stx.stx_dio_mem_align;
	if (a < 512 || a > LUN_ALIGN_MAX || (a & (a - 1)))
		a = LUN_ALIGN_MAX;
	return a;
}

static int path_open(struct cvb_lun *l, unsigned flags, char *err,
		     size_t errlen)
{
	int oflags = O_CLOEXEC;
	struct stat st;
	uint64_t size = 0;

	oflags |= flags & CVB_LUN_RDONLY ? O_RDONLY : O_RDWR;
	if (!(flags & CVB_LUN_BUFFERED))
		oflags |= O_DIRECT;
	if (!stat(l->source, &st) && !S_ISREG(st.st_mode) &&
	    !S_ISBLK(st.st_mode)) {
		snprintf(err, errlen,
			 "%s is neither a block device nor an image file",
			 l->source);
		return -ENOTBLK;
	}
	l->fd = open(l->source, oflags);
	if (l->fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", l->source,
			 strerror(errno));
		return -errno;
	}
	if (fstat(l->fd, &st))
		return -errno;
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		snprintf(err, errlen,
			 "%s is neither a block device nor an image file",
			 l->source);
		return -ENOTBLK;
	}
	if (S_ISBLK(st.st_mode) && ioctl(l->fd, BLKGETSIZE64, &size))
		return -errno;
	l->size = S_ISBLK(st.st_mode) ? size : (uint64_t)st.st_size;
	l->align = dio_align_of(l->fd, &st);
	l->block = S_ISBLK(st.st_mode) ? l->align : 512;
	l->dev = S_ISBLK(st.st_mode) ? st.st_rdev
				     : (dev_t)(st.st_dev ^ st.st_ino << 20);
	l->caps = CVB_LUN_CAP_FD;
	l->ops = &path_ops;
	return 0;
}

/* ---- the interface ------------------------------------------------------ */

static void lock_path(const struct cvb_lun *l, char *path, size_t cap)
{
	snprintf(path, cap, "/run/csvfs/lun-%016llx.lock",
		 (unsigned long long)cvb_lun_hash(l->source));
}

int cvb_lun_open(const char *source, unsigned flags,
		 const struct cvb_lun_opts *o, struct cvb_lun **out, char *err,
		 size_t errlen)
{
	struct cvb_lun *l;
	int rc;

	snprintf(err, errlen, "ok");
	if (cvb_lun_is_iscsi(source)) {
#ifdef CSVFS_HAVE_ISCSI
		return cvb_iscsi_open(source, flags, o, out, err, errlen);
#else
		(void)o;
		snprintf(err, errlen,
			 "%s: this csvfs was built without iSCSI: install "
			 "the Debian package libiscsi-dev and configure with "
			 "--enable-iscsi",
			 source);
		return -EPROTONOSUPPORT;
#endif
	}
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->fd = l->lockfd = -1;
	pthread_mutex_init(&l->lost_lock, NULL);
	l->source = strdup(source);
	rc = l->source ? path_open(l, flags, err, errlen) : -ENOMEM;
	if (rc) {
		if (l->fd >= 0)
			close(l->fd);
		free(l->source);
		free(l);
		return rc;
	}
	*out = l;
	return 0;
}

void cvb_lun_close(struct cvb_lun *l)
{
	if (!l)
		return;
	l->ops->close(l); /* frees an implementation's own state */
	if (l->lockfd >= 0) {
		char path[128];

		lock_path(l, path, sizeof(path));
		if (l->lock_held)
			unlink(path); /* while still locked: see lock_file */
		close(l->lockfd);
	}
	pthread_mutex_destroy(&l->lost_lock);
	free(l->source);
	free(l);
}

uint64_t cvb_lun_size(const struct cvb_lun *l)
{
	return l->size;
}

unsigned cvb_lun_block(const struct cvb_lun *l)
{
	return l->block;
}

unsigned cvb_lun_align(const struct cvb_lun *l)
{
	return l->align;
}

unsigned cvb_lun_caps(const struct cvb_lun *l)
{
	return l->caps;
}

int cvb_lun_fd(const struct cvb_lun *l)
{
	return l->caps & CVB_LUN_CAP_FD ? l->fd : -1;
}

dev_t cvb_lun_dev(const struct cvb_lun *l)
{
	return l->dev;
}

const char *cvb_lun_source(const struct cvb_lun *l)
{
	return l->source;
}

ssize_t cvb_lun_pread(struct cvb_lun *l, void *buf, size_t len, uint64_t off)
{
	if (off >= l->size && l->size)
		return 0;
	return l->ops->pread(l, buf, len, off);
}

ssize_t cvb_lun_pwrite(struct cvb_lun *l, const void *buf, size_t len,
		       uint64_t off)
{
	if (atomic_load(&l->lost))
		return -EIO;
	return l->ops->pwrite(l, buf, len, off);
}

int cvb_lun_flush(struct cvb_lun *l)
{
	return l->ops->flush(l);
}

int cvb_lun_zero(struct cvb_lun *l, uint64_t off, uint64_t len)
{
	if (!len)
		return 0;
	if (atomic_load(&l->lost))
		return -EIO;
	return l->ops->zero(l, off, len);
}

uint64_t cvb_lun_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return h;
}


/*
 * The lock file of a LUN without a path: locked, and still the one
 * under its name (a holder unlinks it at close; one locked after that
 * would be a file nobody else can find, so it is opened again).
 */
static int lock_file(struct cvb_lun *l)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	struct stat a, b;
	char path[128];

	mkdir("/run/csvfs", 0755);
	lock_path(l, path, sizeof(path));
	for (int tries = 0; tries < 5; tries++) {
		if (l->lockfd < 0)
			l->lockfd =
				open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (l->lockfd < 0)
			return -errno;
		if (fcntl(l->lockfd, F_OFD_SETLK, &fl))
			return errno == EACCES ? -EAGAIN : -errno;
		if (!fstat(l->lockfd, &a) && !stat(path, &b) &&
		    a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
			l->lock_held = true;
			return 0;
		}
		close(l->lockfd);
		l->lockfd = -1;
	}
	return -EAGAIN;
}

int cvb_lun_lock(struct cvb_lun *l)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

	if (!(l->caps & CVB_LUN_CAP_FD))
		return lock_file(l);
	if (fcntl(l->fd, F_OFD_SETLK, &fl))
		return errno == EACCES ? -EAGAIN : -errno;
	return 0;
}

/* ---- lost ownership and persistent reservations ------------------------ */

void cvb_lun_set_lost(struct cvb_lun *l, const char *why)
{
	cvb_lun_lost_fn fn;
	void *arg;

	if (atomic_exchange(&l->lost, true))
		return;
	fprintf(stderr, "csvfs: %s: lost the LUN's ownership: %s\n", l->source,
		why);
	pthread_mutex_lock(&l->lost_lock);
	fn = l->lost_fn;
	arg = l->lost_arg;
	pthread_mutex_unlock(&l->lost_lock);
	if (fn)
		fn(arg, why);
}

void cvb_lun_on_lost(struct cvb_lun *l, cvb_lun_lost_fn fn, void *arg)
{
	pthread_mutex_lock(&l->lost_lock);
	l->lost_fn = fn;
	l->lost_arg = arg;
	pthread_mutex_unlock(&l->lost_lock);
}

bool cvb_lun_lost(const struct cvb_lun *l)
{
	return atomic_load(&((struct cvb_lun *)(uintptr_t)l)->lost);
}

uint64_t cvb_pr_key(uint32_t node_id, uint32_t incarnation)
{
	uint64_t k = (uint64_t)node_id << 32 | incarnation;

	return k ? k : 1;
}

int cvb_pr_register(struct cvb_lun *l, uint64_t key)
{
	if (!(l->caps & CVB_LUN_CAP_PR) || !l->ops->pr_out)
		return -EOPNOTSUPP;
	return l->ops->pr_out(l, CVB_PRO_REGISTER_IGNORE, 0, 0, key);
}

void cvb_pr_keep(struct cvb_lun *l)
{
	atomic_store(&l->pr_keep, true);
}

int cvb_pr_reserve(struct cvb_lun *l, uint64_t key, unsigned type)
{
	struct cvb_pr_state st;
	int rc;

	if (!(l->caps & CVB_LUN_CAP_PR) || !l->ops->pr_out)
		return -EOPNOTSUPP;
	rc = cvb_pr_read(l, &st);
	if (!rc && st.reserved && st.holder == key && st.type == type)
		return 0;
	return l->ops->pr_out(l, CVB_PRO_RESERVE, type, key, 0);
}

int cvb_pr_preempt(struct cvb_lun *l, uint64_t key, uint64_t victim,
		   unsigned type, bool abort, bool *aborted)
{
	int rc = -EOPNOTSUPP;

	if (!(l->caps & CVB_LUN_CAP_PR) || !l->ops->pr_out)
		return -EOPNOTSUPP;
	if (aborted)
		*aborted = false;
	if (abort) {
		rc = l->ops->pr_out(l, CVB_PRO_PREEMPT_ABORT, type, key,
				    victim);
		if (!rc && aborted)
			*aborted = true;
	}
	/* -EOPNOTSUPP: the target refused the service action (tgt has
	 * no PREEMPT AND ABORT) */
	if (rc == -EOPNOTSUPP)
		rc = l->ops->pr_out(l, CVB_PRO_PREEMPT, type, key, victim);
	return rc;
}

int cvb_pr_clear(struct cvb_lun *l, uint64_t key)
{
	if (!(l->caps & CVB_LUN_CAP_PR) || !l->ops->pr_out)
		return -EOPNOTSUPP;
	return l->ops->pr_out(l, CVB_PRO_CLEAR, 0, key, 0);
}

int cvb_pr_read(struct cvb_lun *l, struct cvb_pr_state *st)
{
	if (!(l->caps & CVB_LUN_CAP_PR) || !l->ops->pr_read)
		return -EOPNOTSUPP;
	memset(st, 0, sizeof(*st));
	return l->ops->pr_read(l, st);
}

int cvb_pr_fence_node(struct cvb_lun *l, uint64_t key, uint32_t node,
		      unsigned *removed)
{
	struct cvb_pr_state st;
	int rc = cvb_pr_register(l, key);

	*removed = 0;
	if (!rc)
		rc = cvb_pr_read(l, &st);
	for (unsigned i = 0; !rc && i < st.nkeys; i++) {
		bool seen = false;

		if ((uint32_t)(st.keys[i] >> 32) != node || st.keys[i] == key)
			continue;
		for (unsigned k = 0; k < i; k++)
			seen |= st.keys[k] == st.keys[i];
		if (seen)
			continue; /* one PREEMPT removes every nexus's */
		rc = cvb_pr_preempt(l, key, st.keys[i], CVB_PR_WE_RO, true,
				    NULL);
		if (!rc)
			(*removed)++;
	}
	if (!rc)
		rc = cvb_pr_read(l, &st);
	if (!rc && !st.reserved)
		rc = cvb_pr_reserve(l, key, CVB_PR_WE_RO);
	return rc;
}
