// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * dir.c - the `dir` backend: a csvfs volume stored in a POSIX
 * directory (a kernel NFS/SMB mount, a cluster file system, or a local
 * directory in tests).
 *
 * Every object is held by an O_PATH file descriptor, and every operation
 * is an *at() call relative to such a descriptor with a single-component
 * name, so the backend never resolves a path outside its root: lookups go
 * through openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS...) where the
 * kernel has it.  Operations that need a real open descriptor go through
 * the /proc/self/fd magic link of the O_PATH descriptor, which refers to
 * the object itself and not to a path.  The file id is the backing st_ino.
 *
 * Direct I/O: a file opened with O_DIRECT through csvfs is opened with
 * O_DIRECT on the backing file system too, where that file system
 * supports it, so that no node keeps file data in its host page cache
 * (on a kernel NFS/SMB mount a cached page could be stale after another
 * node's write).  O_DIRECT wants the buffer, offset and length aligned
 * (statx STATX_DIOALIGN).  fs.c reads into a page-aligned buffer, so an
 * aligned read goes straight into it; FUSE write buffers never are
 * aligned (the data follows the request header), so:
 *   - aligned offset and length, unaligned buffer: the data goes through
 *     a per-thread aligned bounce buffer, 1 MiB at a time;
 *   - unaligned read: the aligned range around it is read into the
 *     bounce buffer and the part asked for copied out;
 *   - unaligned write: written through a second descriptor without
 *     O_DIRECT, then written back and dropped from the page cache before
 *     the write returns.  A read-modify-write of the partial blocks
 *     instead would race with concurrent writes to the same block and
 *     would extend the file past a partial last block.
 * No request fails with EINVAL for its alignment.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "backend.h"
#include "volume.h"

struct be_node {
	int fd; /* O_PATH, immutable */
};

struct be_file {
	int fd;		     /* read/write descriptor, immutable */
	int flags;	     /* immutable: open flags of fd, less O_DIRECT */
	bool direct;	     /* immutable: fd is O_DIRECT */
	unsigned mem_align;  /* immutable: O_DIRECT buffer alignment */
	unsigned off_align;  /* immutable: O_DIRECT offset/length alignment */
	int buffered_fd;     /* atomic: fd without O_DIRECT, -1 until the
			      * first unaligned write; set once */
};

struct be_dir {
	pthread_mutex_t lock; /* protects dp and its position */
	DIR *dp;
	off_t pos; /* cookie of the next entry readdir() returns */
};

struct be_dir_priv {
	int root_fd;	/* O_PATH of the backend root */
	int meta_fd;	/* O_PATH of root/.csvfs, or -1 */
	bool openat2_ok; /* kernel has openat2 */
	pthread_key_t bounce_key; /* immutable: per-thread bounce buffer */
};

/*
 * The bounce buffer of a thread: BE_DIR_BOUNCE_DATA bytes of data plus
 * one alignment unit, so that an unaligned read of up to 1 MiB fits
 * with the aligned head before it.  Allocated on a thread's first
 * direct I/O that needs it, freed when the thread ends.
 */
#define BE_DIR_BOUNCE_DATA (1024 * 1024)
#define BE_DIR_DIO_ALIGN_MAX 4096u
#define BE_DIR_BOUNCE_LEN (BE_DIR_BOUNCE_DATA + BE_DIR_DIO_ALIGN_MAX)

#define PROCFD_LEN 32

static void procfd(char *buf, int fd)
{
	snprintf(buf, PROCFD_LEN, "/proc/self/fd/%d", fd);
}

static struct be_dir_priv *dpriv(struct backend *be)
{
	return be->priv;
}

/* A name the kernel would never send: fail as ext4 would. */
static int check_name(const char *name)
{
	if (strlen(name) > NAME_MAX)
		return -ENAMETOOLONG;
	if (strchr(name, '/'))
		return -EINVAL;
	return 0;
}

/* Open name below dirfd without leaving it. */
static int open_beneath(struct backend *be, int dirfd, const char *name,
			int flags, mode_t mode)
{
	struct be_dir_priv *p = dpriv(be);
	struct open_how how = {
		.flags = (uint64_t)flags,
		.mode = (flags & (O_CREAT | O_TMPFILE)) ? (mode & 07777) : 0,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS |
			   RESOLVE_NO_SYMLINKS,
	};
	int fd;

	if (!strcmp(name, "..") || !strcmp(name, "."))
		return -EINVAL;
	if (p->openat2_ok) {
		fd = (int)syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
		if (fd >= 0)
			return fd;
		if (errno != ENOSYS)
			return -errno;
		p->openat2_ok = false;
	}
	fd = openat(dirfd, name, flags | O_NOFOLLOW, mode);
	return fd < 0 ? -errno : fd;
}

static int node_new(int fd, struct be_node **out, struct stat *st)
{
	struct be_node *n;

	if (st && fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)) {
		int saverr = errno;

		close(fd);
		return -saverr;
	}
	n = malloc(sizeof(*n));
	if (!n) {
		close(fd);
		return -ENOMEM;
	}
	n->fd = fd;
	*out = n;
	return 0;
}

static int dir_lookup(struct backend *be, struct be_node *parent,
		      const char *name, struct be_node **out, struct stat *st)
{
	int fd, rc;

	rc = check_name(name);
	if (rc)
		return rc;
	fd = open_beneath(be, parent->fd, name, O_PATH | O_NOFOLLOW, 0);
	if (fd == -ELOOP || fd == -EXDEV)
		fd = -ENOENT; /* never escape; should not happen */
	if (fd < 0)
		return fd;
	return node_new(fd, out, st);
}

static void dir_node_put(struct backend *be, struct be_node *node)
{
	if (node) {
		close(node->fd);
		free(node);
	}
}

static int dir_root(struct backend *be, struct be_node **out, struct stat *st)
{
	int fd = dup(dpriv(be)->root_fd);

	if (fd < 0)
		return -errno;
	return node_new(fd, out, st);
}

static int dir_getattr(struct backend *be, struct be_node *node,
		       struct stat *st)
{
	if (fstatat(node->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW))
		return -errno;
	return 0;
}

static int set_times(struct be_node *node, const struct stat *attr,
		     int to_set, bool is_lnk)
{
	struct timespec tv[2];
	char path[PROCFD_LEN];

	tv[0].tv_nsec = UTIME_OMIT;
	tv[1].tv_nsec = UTIME_OMIT;
	if (to_set & CV_SET_ATIME_NOW)
		tv[0].tv_nsec = UTIME_NOW;
	else if (to_set & CV_SET_ATIME)
		tv[0] = attr->st_atim;
	if (to_set & CV_SET_MTIME_NOW)
		tv[1].tv_nsec = UTIME_NOW;
	else if (to_set & CV_SET_MTIME)
		tv[1] = attr->st_mtim;
	if (is_lnk) {
		if (utimensat(node->fd, "", tv,
			      AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW))
			return -errno;
		return 0;
	}
	procfd(path, node->fd);
	if (utimensat(AT_FDCWD, path, tv, 0))
		return -errno;
	return 0;
}

static int dir_setattr(struct backend *be, struct be_node *node,
		       struct be_file *file, const struct stat *attr,
		       int to_set, struct stat *st)
{
	char path[PROCFD_LEN];
	struct stat cur;
	int rc;

	rc = dir_getattr(be, node, &cur);
	if (rc)
		return rc;
	procfd(path, node->fd);
	if (to_set & CV_SET_MODE) {
		rc = file ? fchmod(file->fd, attr->st_mode)
			  : chmod(path, attr->st_mode);
		if (rc)
			return -errno;
	}
	if (to_set & (CV_SET_UID | CV_SET_GID)) {
		uid_t uid = (to_set & CV_SET_UID) ? attr->st_uid : (uid_t)-1;
		gid_t gid = (to_set & CV_SET_GID) ? attr->st_gid : (gid_t)-1;

		if (fchownat(node->fd, "", uid, gid,
			     AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW))
			return -errno;
	}
	if (to_set & CV_SET_SIZE) {
		if (S_ISDIR(cur.st_mode))
			return -EISDIR;
		rc = file ? ftruncate(file->fd, attr->st_size)
			  : truncate(path, attr->st_size);
		if (rc)
			return -errno;
	}
	if (to_set & (CV_SET_ATIME | CV_SET_MTIME | CV_SET_ATIME_NOW |
		      CV_SET_MTIME_NOW)) {
		rc = set_times(node, attr, to_set, S_ISLNK(cur.st_mode));
		if (rc)
			return rc;
	}
	return dir_getattr(be, node, st);
}

/*
 * Turn O_DIRECT on for fd if the backing file system supports it with an
 * alignment the bounce buffer covers; otherwise the file stays buffered
 * (tmpfs before Linux 6.6, FUSE file systems without direct I/O).
 */
static void set_direct(struct be_file *f)
{
	struct statx stx;
	int fl = fcntl(f->fd, F_GETFL);

	f->mem_align = BE_DIR_DIO_ALIGN_MAX;
	f->off_align = BE_DIR_DIO_ALIGN_MAX;
	if (!statx(f->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) &&
	    (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align) {
		f->mem_align = stx.stx_dio_mem_align;
		f->off_align = stx.stx_dio_offset_align;
	}
	if (f->mem_align > BE_DIR_DIO_ALIGN_MAX ||
	    f->off_align > BE_DIR_DIO_ALIGN_MAX || f->mem_align == 0 ||
	    (f->off_align & (f->off_align - 1)) ||
	    (f->mem_align & (f->mem_align - 1)))
		return;
	if (fl < 0 || fcntl(f->fd, F_SETFL, fl | O_DIRECT))
		return;
	f->direct = true;
}

/* flags: the FUSE open's; O_DIRECT there asks for a direct backing fd. */
static int file_new(int fd, int flags, struct be_file **out)
{
	struct be_file *f = calloc(1, sizeof(*f));

	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	f->fd = fd;
	f->flags = flags & (O_ACCMODE | O_NONBLOCK | O_DSYNC | O_SYNC |
			    O_NOATIME);
	f->buffered_fd = -1;
	/* O_APPEND writes land at EOF, whose alignment nobody knows */
	if ((flags & O_DIRECT) && !(flags & O_APPEND))
		set_direct(f);
	*out = f;
	return 0;
}

/*
 * Flags for the backing open: O_DIRECT is set later by set_direct() (the
 * open itself must not fail where the file system has no direct I/O),
 * O_CREAT/O_EXCL/O_NOCTTY not at all.
 */
static int backing_flags(int flags)
{
	/* only what open(2) documents: openat2 rejects anything else,
	 * such as kernel-internal bits the FUSE request may carry */
	flags &= O_ACCMODE | O_APPEND | O_NONBLOCK | O_DSYNC | O_SYNC |
		 O_NOATIME | O_LARGEFILE;
	return flags | O_CLOEXEC;
}

static int dir_open(struct backend *be, struct be_node *node, int flags,
		    struct be_file **out)
{
	char path[PROCFD_LEN];
	int fd;

	procfd(path, node->fd);
	fd = open(path, backing_flags(flags) | (flags & O_TRUNC));
	if (fd < 0)
		return -errno;
	return file_new(fd, flags, out);
}

/* Give a new object to the caller (as if created with its fsuid). */
static int give_to(int dirfd, const char *name, const struct cv_cred *cred)
{
	struct stat dst;
	gid_t gid = cred->gid;

	if (fstatat(dirfd, "", &dst, AT_EMPTY_PATH) == 0 &&
	    (dst.st_mode & S_ISGID))
		gid = (gid_t)-1; /* setgid directory: keep its group */
	if (fchownat(dirfd, name, cred->uid, gid, AT_SYMLINK_NOFOLLOW))
		return -errno;
	return 0;
}

/* After creating name in parent: chown, then take an O_PATH handle. */
static int finish_create(struct backend *be, struct be_node *parent,
			 const char *name, const struct cv_cred *cred,
			 struct be_node **out, struct stat *st)
{
	int rc = give_to(parent->fd, name, cred);

	if (!rc)
		rc = dir_lookup(be, parent, name, out, st);
	return rc;
}

static int dir_create(struct backend *be, struct be_node *parent,
		      const char *name, mode_t mode, int flags,
		      const struct cv_cred *cred, struct be_node **node,
		      struct stat *st, struct be_file **out)
{
	int fd, rc;

	rc = check_name(name);
	if (rc)
		return rc;
	fd = open_beneath(be, parent->fd, name,
			  backing_flags(flags) | O_CREAT | (flags & O_EXCL) |
				  (flags & O_TRUNC),
			  mode);
	if (fd < 0)
		return fd;
	rc = finish_create(be, parent, name, cred, node, st);
	if (rc) {
		close(fd);
		return rc;
	}
	return file_new(fd, flags, out);
}

static bool aligned(uint64_t v, unsigned align)
{
	return !(v & (align - 1));
}

static bool dio_ok(const struct be_file *f, const void *buf, size_t size,
		   off_t off)
{
	return aligned((uintptr_t)buf, f->mem_align) &&
	       aligned((uint64_t)off | size, f->off_align);
}

/* This thread's bounce buffer (BE_DIR_BOUNCE_LEN bytes), or NULL. */
static char *bounce_get(struct backend *be)
{
	struct be_dir_priv *p = dpriv(be);
	void *b = pthread_getspecific(p->bounce_key);

	if (b)
		return b;
	if (posix_memalign(&b, BE_DIR_DIO_ALIGN_MAX, BE_DIR_BOUNCE_LEN))
		return NULL;
	if (pthread_setspecific(p->bounce_key, b)) {
		free(b);
		return NULL;
	}
	return b;
}

/* Read [off, off + size) through the bounce buffer, aligned around it. */
static ssize_t read_bounced(struct backend *be, struct be_file *f,
			    char *buf, size_t size, off_t off)
{
	char *b = bounce_get(be);
	size_t done = 0;

	if (!b)
		return -ENOMEM;
	while (done < size) {
		off_t pos = off + (off_t)done;
		off_t start = pos & ~(off_t)(f->off_align - 1);
		size_t head = (size_t)(pos - start);
		size_t want = size - done;
		size_t len;
		ssize_t n;

		if (want > BE_DIR_BOUNCE_LEN - head)
			want = BE_DIR_BOUNCE_LEN - head;
		len = (head + want + f->off_align - 1) & ~(size_t)(f->off_align - 1);
		n = pread(f->fd, b, len, start);
		if (n < 0)
			return done ? (ssize_t)done : -errno;
		if ((size_t)n <= head)
			break; /* end of file */
		n -= (ssize_t)head;
		if ((size_t)n > want)
			n = (ssize_t)want;
		memcpy(buf + done, b + head, (size_t)n);
		done += (size_t)n;
		if ((size_t)n < want)
			break;
	}
	return (ssize_t)done;
}

static ssize_t dir_read(struct backend *be, struct be_file *file, void *buf,
			size_t size, off_t off)
{
	ssize_t n;

	if (file->direct && !dio_ok(file, buf, size, off))
		return read_bounced(be, file, buf, size, off);
	n = pread(file->fd, buf, size, off);
	return n < 0 ? -errno : n;
}

/* Aligned offset and length, unaligned buffer: copy 1 MiB at a time. */
static ssize_t write_bounced(struct backend *be, struct be_file *f,
			     const char *buf, size_t size, off_t off)
{
	char *b = bounce_get(be);
	size_t done = 0;

	if (!b)
		return -ENOMEM;
	while (done < size) {
		size_t len = size - done;
		ssize_t n;

		if (len > BE_DIR_BOUNCE_DATA)
			len = BE_DIR_BOUNCE_DATA;
		memcpy(b, buf + done, len);
		n = pwrite(f->fd, b, len, off + (off_t)done);
		if (n < 0)
			return done ? (ssize_t)done : -errno;
		done += (size_t)n;
		if ((size_t)n < len)
			break;
	}
	return (ssize_t)done;
}

/* The file's descriptor without O_DIRECT, opened on first use. */
static int buffered_fd(struct be_file *f)
{
	int fd = __atomic_load_n(&f->buffered_fd, __ATOMIC_ACQUIRE);
	int expect = -1;
	char path[PROCFD_LEN];

	if (fd >= 0)
		return fd;
	procfd(path, f->fd);
	fd = open(path, f->flags | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (!__atomic_compare_exchange_n(&f->buffered_fd, &expect, fd, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		close(fd); /* another thread was first */
		return expect;
	}
	return fd;
}

/*
 * Unaligned write to a direct file: through the page cache, written back
 * and dropped before returning, so that it leaves no page behind (the
 * kernel keeps the two descriptors coherent on this host).
 */
static ssize_t write_through(struct be_file *f, const void *buf,
			     size_t size, off_t off)
{
	int fd = buffered_fd(f);
	ssize_t n;

	if (fd < 0)
		return fd;
	n = pwrite(fd, buf, size, off);
	if (n <= 0)
		return n < 0 ? -errno : n;
	if (sync_file_range(fd, off, n, SYNC_FILE_RANGE_WAIT_BEFORE |
					    SYNC_FILE_RANGE_WRITE |
					    SYNC_FILE_RANGE_WAIT_AFTER))
		return -errno;
	posix_fadvise(fd, off, n, POSIX_FADV_DONTNEED);
	return n;
}

static ssize_t dir_write(struct backend *be, struct be_file *file,
			 const void *buf, size_t size, off_t off)
{
	ssize_t n;

	if (file->direct && !aligned((uint64_t)off | size, file->off_align))
		return write_through(file, buf, size, off);
	if (file->direct && !aligned((uintptr_t)buf, file->mem_align))
		return write_bounced(be, file, buf, size, off);
	n = pwrite(file->fd, buf, size, off);
	return n < 0 ? -errno : n;
}

/*
 * Splicing a buffered file moves page-cache pages into the pipe, a copy
 * less than read.  A direct file has no such pages: the kernel reads it
 * into fresh pipe pages, and libfuse's reply buffer for small fd replies
 * is allocated per request; an aligned read into the caller's buffer is
 * the same one copy with fewer system calls.
 */
static int dir_file_fd(struct backend *be, struct be_file *file, off_t off,
		       size_t size)
{
	return file->direct ? -1 : file->fd;
}

/* A direct file's aligned request: pread/pwrite is all dir_read and
 * dir_write would do. */
static int dir_aio_fd(struct backend *be, struct be_file *file, off_t off,
		      size_t size, unsigned buf_align)
{
	if (!file->direct || !aligned(buf_align, file->mem_align) ||
	    !aligned((uint64_t)off | size, file->off_align))
		return -1;
	return file->fd;
}

static int dir_flush(struct backend *be, struct be_file *file)
{
	/* Closing a duplicate makes network file systems write back,
	 * and reports their deferred errors, as close(2) would. */
	int fd = dup(file->fd);

	if (fd < 0)
		return -errno;
	if (close(fd))
		return -errno;
	return 0;
}

static int dir_fsync(struct backend *be, struct be_file *file, int datasync)
{
	int rc = datasync ? fdatasync(file->fd) : fsync(file->fd);

	return rc ? -errno : 0;
}

static int dir_fallocate(struct backend *be, struct be_file *file, int mode,
			 off_t off, off_t len)
{
	if (fallocate(file->fd, mode, off, len))
		return -errno;
	return 0;
}

static off_t dir_lseek(struct backend *be, struct be_file *file, off_t off,
		       int whence)
{
	off_t r = lseek(file->fd, off, whence);

	return r < 0 ? -errno : r;
}

static void dir_release(struct backend *be, struct be_file *file)
{
	if (file->buffered_fd >= 0)
		close(file->buffered_fd);
	close(file->fd);
	free(file);
}

static int dir_sync_node(struct backend *be, struct be_node *node)
{
	char path[PROCFD_LEN];
	int fd, rc = 0;

	procfd(path, node->fd);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd))
		rc = -errno;
	close(fd);
	return rc;
}

static int dir_mkdir(struct backend *be, struct be_node *parent,
		     const char *name, mode_t mode, const struct cv_cred *cred,
		     struct be_node **out, struct stat *st)
{
	int rc = check_name(name);

	if (rc)
		return rc;
	if (mkdirat(parent->fd, name, mode))
		return -errno;
	return finish_create(be, parent, name, cred, out, st);
}

static int dir_mknod(struct backend *be, struct be_node *parent,
		     const char *name, mode_t mode, dev_t rdev,
		     const struct cv_cred *cred, struct be_node **out,
		     struct stat *st)
{
	int rc = check_name(name);

	if (rc)
		return rc;
	if (mknodat(parent->fd, name, mode, rdev))
		return -errno;
	return finish_create(be, parent, name, cred, out, st);
}

static int dir_symlink(struct backend *be, const char *target,
		       struct be_node *parent, const char *name,
		       const struct cv_cred *cred, struct be_node **out,
		       struct stat *st)
{
	int rc = check_name(name);

	if (rc)
		return rc;
	if (symlinkat(target, parent->fd, name))
		return -errno;
	return finish_create(be, parent, name, cred, out, st);
}

static int dir_link(struct backend *be, struct be_node *node,
		    struct be_node *newparent, const char *newname,
		    struct stat *st)
{
	int rc = check_name(newname);

	if (rc)
		return rc;
	if (linkat(node->fd, "", newparent->fd, newname, AT_EMPTY_PATH))
		return -errno;
	return dir_getattr(be, node, st);
}

static int dir_unlink(struct backend *be, struct be_node *parent,
		      const char *name)
{
	int rc = check_name(name);

	if (rc)
		return rc;
	return unlinkat(parent->fd, name, 0) ? -errno : 0;
}

static int dir_rmdir(struct backend *be, struct be_node *parent,
		     const char *name)
{
	int rc = check_name(name);

	if (rc)
		return rc;
	return unlinkat(parent->fd, name, AT_REMOVEDIR) ? -errno : 0;
}

static int dir_rename(struct backend *be, struct be_node *parent,
		      const char *name, struct be_node *newparent,
		      const char *newname, unsigned flags)
{
	int rc = check_name(name);

	if (!rc)
		rc = check_name(newname);
	if (rc)
		return rc;
	if (syscall(SYS_renameat2, parent->fd, name, newparent->fd, newname,
		    flags))
		return -errno;
	return 0;
}

static ssize_t dir_readlink(struct backend *be, struct be_node *node,
			    char *buf, size_t size)
{
	ssize_t n = readlinkat(node->fd, "", buf, size);

	return n < 0 ? -errno : n;
}

static int dir_opendir(struct backend *be, struct be_node *node,
		       struct be_dir **out)
{
	struct be_dir *d;
	int fd, saverr;

	fd = openat(node->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = calloc(1, sizeof(*d));
	if (!d) {
		close(fd);
		return -ENOMEM;
	}
	d->dp = fdopendir(fd);
	if (!d->dp) {
		saverr = errno;
		close(fd);
		free(d);
		return -saverr;
	}
	pthread_mutex_init(&d->lock, NULL);
	*out = d;
	return 0;
}

static int dir_readdir(struct backend *be, struct be_dir *d, off_t off,
		       be_dirent_fn fn, void *arg)
{
	struct dirent *e;
	int rc = 0;

	pthread_mutex_lock(&d->lock);
	if (off != d->pos) {
		seekdir(d->dp, off);
		d->pos = off;
	}
	for (;;) {
		errno = 0;
		e = readdir(d->dp);
		if (!e) {
			rc = errno ? -errno : 0;
			break;
		}
		if (fn(arg, e->d_name, e->d_ino, e->d_type, e->d_off)) {
			/* not consumed: go back so the next call sees it */
			seekdir(d->dp, d->pos);
			break;
		}
		d->pos = e->d_off;
	}
	pthread_mutex_unlock(&d->lock);
	return rc;
}

static int dir_fsyncdir(struct backend *be, struct be_dir *d, int datasync)
{
	int fd = dirfd(d->dp);
	int rc = datasync ? fdatasync(fd) : fsync(fd);

	return rc ? -errno : 0;
}

static void dir_releasedir(struct backend *be, struct be_dir *d)
{
	closedir(d->dp);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

static int dir_statfs(struct backend *be, struct be_node *node,
		      struct statvfs *st)
{
	return fstatvfs(node->fd, st) ? -errno : 0;
}

static ssize_t dir_getxattr(struct backend *be, struct be_node *node,
			    const char *name, void *buf, size_t size)
{
	char path[PROCFD_LEN];
	ssize_t n;

	procfd(path, node->fd);
	n = getxattr(path, name, buf, size);
	return n < 0 ? -errno : n;
}

static int dir_setxattr(struct backend *be, struct be_node *node,
			const char *name, const void *value, size_t size,
			int flags)
{
	char path[PROCFD_LEN];

	procfd(path, node->fd);
	return setxattr(path, name, value, size, flags) ? -errno : 0;
}

static ssize_t dir_listxattr(struct backend *be, struct be_node *node,
			     char *buf, size_t size)
{
	char path[PROCFD_LEN];
	ssize_t n;

	procfd(path, node->fd);
	n = listxattr(path, buf, size);
	return n < 0 ? -errno : n;
}

static int dir_removexattr(struct backend *be, struct be_node *node,
			   const char *name)
{
	char path[PROCFD_LEN];

	procfd(path, node->fd);
	return removexattr(path, name) ? -errno : 0;
}

/* ---- volume record ---------------------------------------------------- */

static int meta_open(struct backend *be, bool create)
{
	struct be_dir_priv *p = dpriv(be);
	int fd;

	if (p->meta_fd >= 0)
		return p->meta_fd;
	if (create && mkdirat(p->root_fd, CV_META_DIR, 0755) &&
	    errno != EEXIST)
		return -errno;
	fd = open_beneath(be, p->root_fd, CV_META_DIR,
			  O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
	if (fd == -ENOTDIR)
		return -EUCLEAN; /* .csvfs exists but is not ours */
	if (fd < 0)
		return fd;
	p->meta_fd = fd;
	return fd;
}

static int dir_vol_read(struct backend *be, struct cv_volrec *rec)
{
	char buf[512];
	ssize_t n;
	int mfd, fd, saverr;

	mfd = meta_open(be, false);
	if (mfd < 0)
		return mfd;
	fd = open_beneath(be, mfd, CV_VOLREC_NAME, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return fd;
	n = read(fd, buf, sizeof(buf) - 1);
	saverr = errno;
	close(fd);
	if (n < 0)
		return -saverr;
	buf[n] = '\0';
	return cv_volrec_parse(buf, rec);
}

/*
 * Atomic creation: the record is written and synced under a unique
 * temporary name, then linked to its final name, which fails with EEXIST
 * if another node won the race; the temporary name is removed either way.
 * Readers therefore only ever see a complete record.
 */
static int dir_vol_create(struct backend *be, const struct cv_volrec *rec)
{
	char buf[512], tmp[64];
	int mfd, fd, len, rc = 0;

	mfd = meta_open(be, true);
	if (mfd < 0)
		return mfd;
	len = cv_volrec_format(rec, buf, sizeof(buf));
	if (len < 0)
		return len;
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", CV_VOLREC_NAME,
		 (long)getpid());
	fd = openat(mfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, buf, (size_t)len) != len || fsync(fd))
		rc = errno ? -errno : -EIO;
	close(fd);
	if (!rc && linkat(mfd, tmp, mfd, CV_VOLREC_NAME, 0))
		rc = -errno;
	unlinkat(mfd, tmp, 0);
	if (!rc) {
		fd = openat(mfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			fsync(fd);
			close(fd);
		}
	}
	return rc;
}

/* ---- set-up ----------------------------------------------------------- */

static int dir_init(struct backend *be, const char *source)
{
	struct be_dir_priv *p;
	struct stat st;
	int saverr;

	if (source[0] != '/')
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->meta_fd = -1;
	p->openat2_ok = true;
	errno = pthread_key_create(&p->bounce_key, free);
	if (errno)
		goto fail;
	p->root_fd = open(source, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (p->root_fd < 0)
		goto fail_key;
	if (fstat(p->root_fd, &st))
		goto fail_close;
	/* Writable?  The mount is read-write by default. */
	if (faccessat(p->root_fd, ".", W_OK | X_OK, AT_EACCESS))
		goto fail_close;
	be->priv = p;
	return 0;

fail_close:
	saverr = errno;
	close(p->root_fd);
	errno = saverr;
fail_key:
	saverr = errno;
	pthread_key_delete(p->bounce_key);
	errno = saverr;
fail:
	saverr = errno;
	free(p);
	return -saverr;
}

static void dir_destroy(struct backend *be)
{
	struct be_dir_priv *p = dpriv(be);

	if (!p)
		return;
	if (p->meta_fd >= 0)
		close(p->meta_fd);
	close(p->root_fd);
	/* the session's threads have ended and freed their buffers */
	pthread_key_delete(p->bounce_key);
	free(p);
	be->priv = NULL;
}

const struct backend_ops be_dir_ops = {
	.name = "dir",
	.init = dir_init,
	.destroy = dir_destroy,
	.vol_read = dir_vol_read,
	.vol_create = dir_vol_create,
	.root = dir_root,
	.lookup = dir_lookup,
	.node_put = dir_node_put,
	.getattr = dir_getattr,
	.setattr = dir_setattr,
	.open = dir_open,
	.create = dir_create,
	.read = dir_read,
	.write = dir_write,
	.file_fd = dir_file_fd,
	.aio_fd = dir_aio_fd,
	.flush = dir_flush,
	.fsync = dir_fsync,
	.fallocate = dir_fallocate,
	.lseek = dir_lseek,
	.release = dir_release,
	.sync_node = dir_sync_node,
	.mkdir = dir_mkdir,
	.mknod = dir_mknod,
	.symlink = dir_symlink,
	.link = dir_link,
	.unlink = dir_unlink,
	.rmdir = dir_rmdir,
	.rename = dir_rename,
	.readlink = dir_readlink,
	.opendir = dir_opendir,
	.readdir = dir_readdir,
	.fsyncdir = dir_fsyncdir,
	.releasedir = dir_releasedir,
	.statfs = dir_statfs,
	.getxattr = dir_getxattr,
	.setxattr = dir_setxattr,
	.listxattr = dir_listxattr,
	.removexattr = dir_removexattr,
};
