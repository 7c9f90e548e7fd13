// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fs.c - the FUSE low-level operations of csvfs.
 *
 * Each handler pins the inodes it uses (cv_inode_get), calls the backend,
 * and replies exactly once; internal helpers return 0 or -errno.  Replies
 * that hand the kernel a new reference (entry, create) take one lookup on
 * the inode, which the kernel gives back with forget.
 *
 * Writes: every modifying operation on a file's data (write, fallocate,
 * size-changing setattr) is admitted by own.c first (write ownership,
 * lease, poisoning) and is counted in flight until the backend returns,
 * or, for a write submitted to the ring (aio.h), until it completes.
 * Then, on a replicated file, replica.c marks its range (cv_rep_begin)
 * for as long (cv_rep_end).
 *
 * The hidden `.csvfs` directory at the root holds the volume record: it
 * is not found by lookup, not listed by readdir, and no object can be
 * created, linked or renamed under that name (EPERM).
 *
 * Lock order (outer first): cv_own lock, inode table lock; a file
 * handle's lock (owners list) is a leaf.  No FUSE reply or lockd call is
 * made with any of them held.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "aio.h"
#include "fs.h"
#include "lkm.h"
#include "lockc.h"
#include "log.h"
#include "own.h"
#include "volume.h"

#define CV_XATTR_PREFIX "user.csvfs."
/* Virtual, answered by the backend where it has one (block volumes). */
#define CV_XATTR_COORDINATOR CV_XATTR_PREFIX "coordinator"
/* Replication of a file or group: set to enable or "off", read for its
 * state (replica.h, csvfs-admin replica). */
#define CV_XATTR_REPLICA CV_XATTR_PREFIX "replica"
#define CV_OWNERS_MAX 16

/* An open file. */
struct cv_fh {
	struct be_file *file;	 /* immutable */
	struct cv_inode *ino;	 /* immutable, pinned while open */
	struct cv_own_file *own; /* immutable */
	uint64_t gen;		 /* immutable: poison generation at open */
	bool writer;		 /* immutable: open for writing */
	pthread_mutex_t lock;
	uint64_t owners[CV_OWNERS_MAX]; /* lock: lock owners used via us */
	unsigned n_owners;		/* lock */
	bool owners_overflow;		/* lock */
	struct cv_rep_slot rep;		/* its tracker (replica.h) */
	struct cv_fh *prev, *next;	/* fs->fh_lock: open files */
};

static struct cv_fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct backend *be_of(struct cv_fs *fs)
{
	return &fs->be;
}

static struct cv_fh *fh_of(struct fuse_file_info *fi)
{
	return (struct cv_fh *)(uintptr_t)fi->fh;
}

static bool is_meta(fuse_ino_t parent, const char *name)
{
	return parent == FUSE_ROOT_ID && !strcmp(name, CV_META_DIR);
}

static void reply_err(fuse_req_t req, int rc)
{
	fuse_reply_err(req, rc < 0 ? -rc : rc);
}

static struct cv_cred cred_of(fuse_req_t req)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct cv_cred c = { .uid = ctx->uid, .gid = ctx->gid };

	return c;
}

/*
 * How long the kernel may keep a file's attributes.  A regular file this
 * node does not own can be written - and extended - by its owner on
 * another node at any moment, and nothing tells this kernel; a size
 * cached here would then be stale when a program opens the file, and
 * QEMU, which takes an image's length once at open, reads the clusters
 * past that length as zeros (a VM restarted here right after its last
 * writes elsewhere lost them: t-vm-migrate).  So such attributes are not
 * cached: every stat asks the backend.  Files this node owns, and
 * directories, keep the mount's attr_timeout.
 */
static double attr_timeout_of(struct cv_fs *fs, const struct stat *st)
{
	uint64_t epoch;

	if (fs->own && S_ISREG(st->st_mode) &&
	    cv_own_state_of(fs->own, (uint64_t)st->st_ino, &epoch) !=
		    CV_OWN_OWNED)
		return 0;
	return fs->opts->attr_timeout;
}

/* Hand the kernel an entry for a backend node found or created. */
static int make_entry(struct cv_fs *fs, struct be_node *node,
		      const struct stat *st, struct fuse_entry_param *e,
		      struct cv_inode **out)
{
	struct cv_inode *i;

	i = cv_inode_found(&fs->itab, node, st->st_dev, st->st_ino);
	if (!i)
		return -ENOMEM;
	memset(e, 0, sizeof(*e));
	e->ino = i->nodeid;
	e->attr = *st;
	e->attr_timeout = attr_timeout_of(fs, st);
	e->entry_timeout = fs->opts->entry_timeout;
	*out = i;
	return 0;
}

/* After a reply carrying an entry: drop our pin, and the lookup too if
 * the reply did not reach the kernel. */
static void entry_done(struct cv_fs *fs, struct cv_inode *i, int reply_rc)
{
	uint64_t id = i->nodeid;

	cv_inode_put(&fs->itab, i);
	if (reply_rc)
		cv_inode_forget(&fs->itab, id, 1);
}

static void cv_init(void *userdata, struct fuse_conn_info *conn)
{
	struct cv_fs *fs = userdata;

	conn->max_write = 1024 * 1024;
	conn->max_readahead = 1024 * 1024;
	/* Replies to requests that come over io_uring are copied into the
	 * ring's buffers (fuse_uring.c): no splicing then. */
	if (fs->opts->uring != CV_URING_OFF &&
	    atomic_load(&fs->init_uring_offered))
		conn->want &= ~(FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
	else if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	if (conn->capable & FUSE_CAP_EXPORT_SUPPORT)
		conn->want &= ~FUSE_CAP_EXPORT_SUPPORT;
	/* O_TRUNC comes as a separate setattr, which takes ownership. */
	conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
	if (fs->lc) {
		if (conn->capable & FUSE_CAP_POSIX_LOCKS)
			conn->want |= FUSE_CAP_POSIX_LOCKS;
		if (conn->capable & FUSE_CAP_FLOCK_LOCKS)
			conn->want |= FUSE_CAP_FLOCK_LOCKS;
	}
	if (fs->opts->cache == CV_CACHE_DIRECT)
		conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/*
	 * Asynchronous direct I/O (libaio, QEMU aio=native) reaches us as
	 * background requests, and the kernel holds at most max_background
	 * of them in flight (12 unless we say otherwise): the 13th io_submit
	 * of a VM blocks until one completes, so a queue depth of 16 or 64
	 * ran at 12, and every completion had to wake the blocked submitter.
	 * The kernel clamps the value for mounts by unprivileged users.
	 */
	conn->max_background = CV_MAX_BACKGROUND;
	conn->congestion_threshold = CV_MAX_BACKGROUND * 3 / 4;
}

static void cv_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct cv_fs *fs = fs_of(req);
	struct cv_inode *p, *i;
	struct fuse_entry_param e;
	struct be_node *node;
	struct stat st;
	int rc;

	if (is_meta(parent, name)) {
		reply_err(req, ENOENT);
		return;
	}
	p = cv_inode_get(&fs->itab, parent);
	if (!p) {
		reply_err(req, ESTALE);
		return;
	}
	rc = fs->be.ops->lookup(be_of(fs), p->node, name, &node, &st);
	cv_inode_put(&fs->itab, p);
	if (!rc)
		rc = make_entry(fs, node, &st, &e, &i);
	if (rc) {
		reply_err(req, rc);
		return;
	}
	entry_done(fs, i, fuse_reply_entry(req, &e));
}

static void cv_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	cv_inode_forget(&fs_of(req)->itab, ino, nlookup);
	fuse_reply_none(req);
}

static void cv_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	struct cv_fs *fs = fs_of(req);

	for (size_t n = 0; n < count; n++)
		cv_inode_forget(&fs->itab, forgets[n].ino, forgets[n].nlookup);
	fuse_reply_none(req);
}

static void cv_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct cv_fs *fs = fs_of(req);
	struct cv_inode *i = cv_inode_get(&fs->itab, ino);
	struct stat st;
	int rc;

	if (!i) {
		reply_err(req, ESTALE);
		return;
	}
	rc = fs->be.ops->getattr(be_of(fs), i->node, &st);
	cv_inode_put(&fs->itab, i);
	if (rc)
		reply_err(req, rc);
	else
		fuse_reply_attr(req, &st, attr_timeout_of(fs, &st));
}

static int to_cv_set(int to_set)
{
	int s = 0;

	if (to_set & FUSE_SET_ATTR_MODE)
		s |= CV_SET_MODE;
	if (to_set & FUSE_SET_ATTR_UID)
		s |= CV_SET_UID;
	if (to_set & FUSE_SET_ATTR_GID)
		s |= CV_SET_GID;
	if (to_set & FUSE_SET_ATTR_SIZE)
		s |= CV_SET_SIZE;
	if (to_set & FUSE_SET_ATTR_ATIME)
		s |= CV_SET_ATIME;
	if (to_set & FUSE_SET_ATTR_MTIME)
		s |= CV_SET_MTIME;
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		s |= CV_SET_ATIME_NOW;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		s |= CV_SET_MTIME_NOW;
	return s;
}

/* Track a modifying request on [off, off+len) of a file admitted under
 * of (replica.h); slot NULL: a request without an open file. */
static int rep_begin(struct cv_fs *fs, struct cv_rep_slot *slot,
		     struct cv_inode *i, struct be_file *file,
		     struct cv_own_file *of, uint64_t off, uint64_t len,
		     struct cv_rep_tok *tok)
{
	struct cv_rep_slot tmp = { 0 };

	return cv_rep_begin(fs->rep, slot ? slot : &tmp, (uint64_t)i->ino, i,
			    file, cv_own_file_epoch(of), off, len, false,
			    tok);
}

/* The range a size change from old to new touches. */
static void size_range(uint64_t old, uint64_t new, uint64_t *off,
		       uint64_t *len)
{
	*off = old < new ? old : new;
	*len = old < new ? new - old : old - new;
}

/* setattr with a size: a modifying operation, under ownership (st holds
 * the attributes before). */
static int setattr_owned(struct cv_fs *fs, struct cv_inode *i,
			 struct cv_fh *fh, const struct stat *attr, int set,
			 struct stat *st)
{
	struct cv_own_file *of;
	struct cv_rep_tok tok;
	uint64_t gen, off, len;
	int rc;

	if (fh) {
		of = fh->own;
		gen = fh->gen;
	} else {
		of = cv_own_ref(fs->own, i->ino, i, false, &gen);
		if (!of)
			return -ENOMEM;
	}
	rc = cv_own_write_begin(fs->own, of, gen);
	if (!rc) {
		size_range((uint64_t)st->st_size, (uint64_t)attr->st_size, &off,
			   &len);
		rc = rep_begin(fs, fh ? &fh->rep : NULL, i,
			       fh ? fh->file : NULL, of, off, len, &tok);
		if (!rc) {
			rc = fs->be.ops->setattr(be_of(fs), i->node,
						 fh ? fh->file : NULL, attr,
						 set, st);
			cv_rep_end(fs->rep, &tok);
		}
		cv_own_write_end(fs->own, of);
	}
	if (!fh)
		cv_own_unref(fs->own, of, false);
	return rc;
}

static void cv_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct cv_fs *fs = fs_of(req);
	struct cv_inode *i = cv_inode_get(&fs->itab, ino);
	struct cv_fh *fh = fi ? fh_of(fi) : NULL;
	int set = to_cv_set(to_set);
	struct stat st;
	int rc;

	if (!i) {
		reply_err(req, ESTALE);
		return;
	}
	if (set & CV_SET_SIZE) {
		rc = fs->be.ops->getattr(be_of(fs), i->node, &st);
		if (!rc && S_ISDIR(st.st_mode))
			rc = -EISDIR;
		if (!rc && !S_ISREG(st.st_mode))
			rc = -EINVAL;
		if (!rc)
			rc = setattr_owned(fs, i, fh, attr, set, &st);
	} else {
		rc = fs->be.ops->setattr(be_of(fs), i->node,
					 fh ? fh->file : NULL, attr, set, &st);
	}
	cv_inode_put(&fs->itab, i);
	if (rc)
		reply_err(req, rc);
	else
		fuse_reply_attr(req, &st, attr_timeout_of(fs, &st));
}

static void cv_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct cv_fs *fs = fs_of(req);
	struct cv_inode *i = cv_inode_get(&fs->itab, ino);
	char buf[PATH_MAX + 1];
	ssize_t n;

	if (!i) {
		reply_err(req, ESTALE);
		return;
	}
	n = fs->be.ops->readlink(be_of(fs), i->node, buf, sizeof(buf));
	cv_inode_put(&fs->itab, i);
	if (n < 0) {
		reply_err(req, (int)n);
		return;
	}
	if ((size_t)n >= sizeof(buf)) {
		reply_err(req, ENAMETOOLONG);
		return;
	}
	buf[n] = '\0';
	fuse_reply_readlink(req, buf);
}

enum mk_kind { MK_NOD, MK_DIR, MK_SYMLINK };

struct mk_args {
	enum mk_kind kind;
	mode_t mode;
	dev_t rdev;
	const char *target;
};

static void make_node(fuse_req_t req, fuse_ino_t parent, const char *name,
		      const struct mk_args *a)
{
	struct cv_fs *fs = fs_of(req);
	struct cv_cred cred = cred_of(req);
	struct fuse_entry_param e;
	struct cv_inode *p, *i;
	struct be_node *node;
	struct stat st;
	int rc;

	if (is_meta(parent, name)) {
		reply_err(req, EPERM);
		return;
	}
	p = cv_inode_get(&fs->itab, parent);
	if (!p) {
		reply_err(req, ESTALE);
		return;
	}
	if (a->kind == MK_DIR)
		rc = fs->be.ops->mkdir(be_of(fs), p->node, name, a->mode,
				       &cred, &node, &st);
	else if (a->kind == MK_SYMLINK)
		rc = fs->be.ops->symlink(be_of(fs), a->target, p->node, name,
					 &cred, &node, &st);
	else
		rc = fs->be.ops->mknod(be_of(fs), p->node, name, a->mode,
				       a->rdev, &cred, &node, &st);
	cv_inode_put(&fs->itab, p);
	if (!rc)
		rc = make_entry(fs, node, &st, &e, &i);
	if (rc) {
		reply_err(req, rc);
		return;
	}
	entry_done(fs, i, fuse_reply_entry(req, &e));
}

static void cv_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	struct mk_args a = { .kind = MK_NOD, .mode = mode, .rdev = rdev };

	make_node(req, parent, name, &a);
}

static void cv_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	struct mk_args a = { .kind = MK_DIR, .mode = mode };

	make_node(req, parent, name, &a);
}

static void cv_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	struct mk_args a = { .kind = MK_SYMLINK, .target = link };

	make_node(req, parent, name, &a);
}

static void cv_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	struct cv_fs *fs = fs_of(req);
	struct cv_inode *i, *p, *ni;
	struct fuse_entry_param e;
	struct stat st;
	int rc;

	if (is_meta(newparent, newname)) {
		reply_err(req, EPERM);
		return;
	}
	i = cv_inode_get(&fs->itab, ino);
	p = cv_inode_get(&fs->itab, newparent);
	rc = (i && p) ? fs->be.ops->link(be_of(fs), i->node, p->node,
					 newname, &st)
		      : -ESTALE;
	cv_inode_put(&fs->itab, p);
	if (rc) {
		cv_inode_put(&fs->itab, i);
		reply_err(req, rc);
		return;
	}
	/* The kernel takes one more lookup on the same inode (pinned by
	 * us, so cv_inode_found finds it and puts no backend node). */
	ni = cv_inode_found(&fs->itab, NULL, i->dev, i->ino);
	cv_inode_put(&fs->itab, i);
	if (!ni) {
		reply_err(req, ENOMEM);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = ni->nodeid;
	e.attr = st;
	e.attr_timeout = attr_timeout_of(fs, &st);
	e.entry_timeout = fs->opts->entry_timeout;
	entry_done(fs, ni, fuse_reply_entry(req, &e));
}

static void remove_entry(fuse_req_t req, fuse_ino_t parent, const char *name,
			 bool dir)
{
	struct cv_fs *fs = fs_of(req);
	struct cv_inode *p;
	int rc;

	if (is_meta(parent, name)) {
		reply_err(req, ENOENT);
		return;
	}
	p = cv_inode_get(&fs->itab, parent);
	if (!p) {
		reply_err(req, ESTALE);
		return;
	}
	rc = dir ? fs->be.ops->rmdir(be_of(fs), p->node, name)
		 : fs->be.ops->unlink(be_of(fs), p->node, name);
	cv_inode_put(&fs->itab, p);
	reply_err(req, rc);
}

static void cv_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_entry(req, parent, name, false);
}

static void cv_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_entry(req, parent, name, true);
}

static void cv_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	struct cv_fs *fs = fs_of(req);
	struct cv_inode *p, *np;
	int rc;

	if (is_meta(parent, name)) {
		reply_err(req, ENOENT);
		return;
	}
	if (is_meta(newparent, newname)) {
		reply_err(req, EPERM);
		return;
	}
	p = cv_inode_get(&fs->itab, parent);
	np = cv_inode_get(&fs->itab, newparent);
	rc = (p && np) ? fs->be.ops->rename(be_of(fs), p->node, name,
					    np->node, newname, flags)
		       : -ESTALE;
	cv_inode_put(&fs->itab, p);
	cv_inode_put(&fs->itab, np);
	reply_err(req, rc);
}

/* ---- files ------------------------------------------------------------ */

static bool is_writer(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY;
}

static int fh_new(struct cv_fs *fs, struct cv_inode *i, struct be_file *file,
		  int flags, struct cv_fh **out)
{
	struct cv_fh *fh = calloc(1, sizeof(*fh));

	if (!fh)
		return -ENOMEM;
	fh->file = file;
	fh->ino = i;
	fh->writer = is_writer(flags);
	fh->own = cv_own_ref(fs->own, i->ino, i, fh->writer, &fh->gen);
	if (!fh->own) {
		free(fh);
		return -ENOMEM;
	}
	cv_inode_pin(&fs->itab, i);
	pthread_mutex_init(&fh->lock, NULL);
	pthread_mutex_lock(&fs->fh_lock);
	fh->next = fs->fh_list;
	if (fh->next)
		fh->next->prev = fh;
	fs->fh_list = fh;
	pthread_mutex_unlock(&fs->fh_lock);
	*out = fh;
	return 0;
}

/* Undo fh_new: the open file is gone (released, or never replied). */
static void fh_free(struct cv_fs *fs, struct cv_fh *fh)
{
	pthread_mutex_lock(&fs->fh_lock);
	if (fh->prev)
		fh->prev->next = fh->next;
	else
		fs->fh_list = fh->next;
	if (fh->next)
		fh->next->prev = fh->prev;
	pthread_mutex_unlock(&fs->fh_lock);
	cv_own_unref(fs->own, fh->own, fh->writer);
	fs->be.ops->release(be_of(fs), fh->file);
	cv_inode_put(&fs->itab, fh->ino);
	pthread_mutex_destroy(&fh->lock);
	free(fh);
}

void cv_fs_close_files(struct cv_fs *fs)
{
	unsigned n = 0;

	pthread_mutex_lock(&fs->fh_lock);
	while (fs->fh_list) {
		struct cv_fh *fh = fs->fh_list;

		pthread_mutex_unlock(&fs->fh_lock);
		if (fh->writer)
			fs->be.ops->flush(be_of(fs), fh->file);
		fh_free(fs, fh);
		n++;
		pthread_mutex_lock(&fs->fh_lock);
	}
	pthread_mutex_unlock(&fs->fh_lock);
	if (n)
		log_notice("%u files were still open when the FUSE connection "
			   "ended (aborted?): closed", n);
}

static void set_fi(struct cv_fs *fs, struct fuse_file_info *fi,
		   struct cv_fh *fh)
{
	fi->fh = (uint64_t)(uintptr_t)fh;
	if (fs->opts->cache == CV_CACHE_DIRECT) {
		fi->direct_io = 1;
		fi->keep_cache = 0;
	}
	fi->noflush = 0;
}

#ifndef FOPEN_PARALLEL_DIRECT_WRITES /* linux/fuse.h before 6.2 */
#define FOPEN_PARALLEL_DIRECT_WRITES (1 << 6)
#endif

/*
 * fuse_reply_open, plus FOPEN_PARALLEL_DIRECT_WRITES on direct opens,
 * which libfuse 3.14 cannot express.  Without it the kernel holds the
 * inode lock exclusively across each direct write, and for a synchronous
 * write - QEMU's aio=threads, the default for cache=none - across the
 * whole round trip to us: the writes of all of a VM's I/O threads to
 * its disk went one at a time (16 threads of 4 KiB random pwrite: 8 %
 * of the backing directory's IOPS; 42 % with the flag, BENCHMARKS.md).
 * With the flag the kernel takes the lock shared for writes inside the
 * file (those past its end stay exclusive), and this daemon already
 * admits concurrent writes to one file: asynchronous ones always came
 * so.  A kernel older than 6.2 ignores the flag, and the kernel drops
 * it itself from an open that is not FOPEN_DIRECT_IO.
 *
 * Create keeps fuse_reply_create: its reply carries the entry too, and
 * the writes into a file just created are mostly past its end.
 */
static int reply_open(fuse_req_t req, const struct fuse_file_info *fi)
{
	struct fuse_open_out out = { .fh = fi->fh };
	struct iovec iov = { .iov_base = &out, .iov_len = sizeof(out) };

	if (fi->direct_io)
		out.open_flags |=
			FOPEN_DIRECT_IO | FOPEN_PARALLEL_DIRECT_WRITES;
	if (fi->keep_cache)
		out.open_flags |= FOPEN_KEEP_CACHE;
	if (fi->nonseekable)
		out.open_flags |= FOPEN_NONSEEKABLE;
	if (fi->noflush)
		out.open_flags |= FOPEN_NOFLUSH;
	return fuse_reply_iov(req, &iov, 1);
}

static void cv_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cv_fs *fs = fs_of(req);
	struct cv_inode *i = cv_inode_get(&fs->itab, ino);
	struct be_file *file;
	struct cv_fh *fh;
	int rc;

	if (!i) {
		reply_err(req, ESTALE);
		return;
	}
	rc = fs->be.ops->open(be_of(fs), i->node, fi->flags & ~O_TRUNC,
			      &file);
	if (!rc) {
		rc = fh_new(fs, i, file, fi->flags, &fh);
		if (rc)
			fs->be.ops->release(be_of(fs), file);
	}
	cv_inode_put(&fs->itab, i);
	if (rc) {
		reply_err(req, rc);
		return;
	}
	set_fi(fs, fi, fh);
	if (reply_open(req, fi))
		fh_free(fs, fh);
}

static void cv_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct cv_fs *fs = fs_of(req);
	struct cv_cred cred = cred_of(req);
	struct fuse_entry_param e;
	struct cv_inode *p, *i;
	struct be_node *node;
	struct be_file *file;
	struct cv_fh *fh;
	struct stat st;
	int rc;

	if (is_meta(parent, name)) {
		reply_err(req, EPERM);
		return;
	}
	p = cv_inode_get(&fs->itab, parent);
	if (!p) {
		reply_err(req, ESTALE);
		return;
	}
	rc = fs->be.ops->create(be_of(fs), p->node, name, mode,
				fi->flags & ~O_TRUNC, &cred, &node, &st,
				&file);
	cv_inode_put(&fs->itab, p);
	if (rc) {
		reply_err(req, rc);
		return;
	}
	rc = make_entry(fs, node, &st, &e, &i);
	if (!rc) {
		rc = fh_new(fs, i, file, fi->flags, &fh);
		if (rc)
			entry_done(fs, i, rc);
	}
	if (rc) {
		fs->be.ops->release(be_of(fs), file);
		reply_err(req, rc);
		return;
	}
	set_fi(fs, fi, fh);
	rc = fuse_reply_create(req, &e, fi);
	if (rc)
		fh_free(fs, fh);
	entry_done(fs, i, rc);
}

/*
 * Reads that are not spliced land in a page-aligned buffer that each
 * worker thread keeps for its life: a direct (O_DIRECT) backing file
 * reads straight into it with no bounce copy, and a 1 MiB read does not
 * map and fault in fresh memory every time.  Only the pages a thread
 * has used are resident.  A larger read (none with max_write 1 MiB)
 * gets a buffer of its own.
 */
#define CV_READ_BUF (1024 * 1024)
#define CV_READ_ALIGN 4096
static pthread_key_t read_buf_key;
static pthread_once_t read_buf_once = PTHREAD_ONCE_INIT;
static bool read_buf_ok; /* written once under read_buf_once */

static void read_buf_init(void)
{
	read_buf_ok = !pthread_key_create(&read_buf_key, free);
}

/* This thread's read buffer (CV_READ_BUF bytes), or NULL. */
static char *read_buf(void)
{
	void *b;

	pthread_once(&read_buf_once, read_buf_init);
	if (!read_buf_ok)
		return NULL;
	b = pthread_getspecific(read_buf_key);
	if (b)
		return b;
	if (posix_memalign(&b, CV_READ_ALIGN, CV_READ_BUF))
		return NULL;
	if (pthread_setspecific(read_buf_key, b)) {
		free(b);
		return NULL;
	}
	return b;
}

/*
 * Direct I/O through the ring (aio.h): the request's data in an aligned
 * buffer of its own, the reply sent by the ring thread.  Taken for what
 * the backend can do as a plain pread/pwrite of a descriptor (aio_fd), up
 * to CV_AIO_REQ_MAX bytes; anything else, or a full ring, is done by the
 * worker.  Large requests stay with the workers: they are few, their
 * time goes into copying data, not into wake-ups, and on the ring thread
 * the copies of their replies would run one after another (measured:
 * 1 MiB sequential writes 81 % of the backing through the ring against
 * 104 % on the workers, BENCHMARKS.md).
 */
#define CV_AIO_REQ_MAX (128 * 1024)

struct aio_op {
	struct cv_aio_req aio;
	fuse_req_t req;
	struct cv_fs *fs;
	struct cv_fh *fh;
	void *buf;
	size_t size;
	off_t off;   /* the file's offset */
	bool mapped; /* through aio_map: aio_done when complete */
	struct cv_rep_tok rep; /* a write's tracking, ended when done */
};

static void io_here_begin(struct cv_fs *fs)
{
	atomic_fetch_add_explicit(&fs->io_here, 1, memory_order_relaxed);
}

static void io_here_end(struct cv_fs *fs)
{
	atomic_fetch_sub_explicit(&fs->io_here, 1, memory_order_relaxed);
}

/*
 * The descriptor and its offset for a request, or -1.  *mapped: the
 * backend's aio_map pinned the range (block: the file's extent on the
 * LUN), to be ended by aio_done exactly once.
 */
static int aio_fd(struct cv_fs *fs, struct cv_fh *fh, off_t off, size_t size,
		  bool write, off_t *dev_off, bool *mapped)
{
	const struct backend_ops *ops = fs->be.ops;

	*mapped = false;
	*dev_off = off;
	if (!fs->aio || !size || size > CV_AIO_REQ_MAX)
		return -1;
	if (ops->aio_map) {
		int fd = ops->aio_map(be_of(fs), fh->file, off, size,
				      CV_AIO_ALIGN, write, dev_off);

		*mapped = fd >= 0;
		return fd;
	}
	if (!ops->aio_fd)
		return -1;
	return ops->aio_fd(be_of(fs), fh->file, off, size, CV_AIO_ALIGN);
}

/* Give back what aio_fd pinned (res: the request's result). */
static void aio_unmap(struct cv_fs *fs, struct cv_fh *fh, bool write,
		      off_t off, size_t size, ssize_t res)
{
	fs->be.ops->aio_done(be_of(fs), fh->file, write, off, size, res);
}

static struct aio_op *aio_op_new(struct cv_fs *fs, struct cv_fh *fh,
				 fuse_req_t req, size_t size)
{
	struct aio_op *op = malloc(sizeof(*op));

	if (!op)
		return NULL;
	op->buf = cv_aio_buf_get(fs->aio, size);
	if (!op->buf) {
		free(op);
		return NULL;
	}
	op->req = req;
	op->fs = fs;
	op->fh = fh;
	op->size = size;
	return op;
}

static void aio_op_free(struct aio_op *op)
{
	cv_aio_buf_put(op->fs->aio, op->buf, op->size);
	free(op);
}

static void aio_read_done(struct cv_aio_req *r, int64_t res)
{
	struct aio_op *op = (struct aio_op *)r;

	if (op->mapped)
		aio_unmap(op->fs, op->fh, false, op->off, op->size,
			  (ssize_t)res);
	if (res < 0)
		reply_err(op->req, (int)-res);
	else
		fuse_reply_buf(op->req, op->buf, (size_t)res);
	aio_op_free(op);
}

static void aio_write_done(struct cv_aio_req *r, int64_t res)
{
	struct aio_op *op = (struct aio_op *)r;

	if (op->mapped)
		aio_unmap(op->fs, op->fh, true, op->off, op->size,
			  (ssize_t)res);
	cv_rep_end(op->fs->rep, &op->rep);
	cv_own_write_end(op->fs->own, op->fh->own);
	if (res < 0)
		reply_err(op->req, (int)-res);
	else
		fuse_reply_write(op->req, (size_t)res);
	aio_op_free(op);
}

/*
 * Submit a read (wbuf NULL) or an admitted write of wbuf (write_begin
 * done: its completion ends it); false: not taken, do it here (between
 * io_here_begin and io_here_end).
 *
 * A request alone - the ring idle and no other read or write on a
 * worker - is not taken either: handing it to the sleeping ring thread
 * would add that thread's wake-up to its latency, for nothing to batch
 * with (at queue depth 1, 4 KiB direct writes took 187-239 us through
 * the ring against 123 us on the worker, BENCHMARKS.md).  As soon as a
 * second request comes while one is under way, the ring takes it, and
 * under load the ring thread is awake and takes them all.
 */
static bool aio_submit(struct cv_fs *fs, struct cv_fh *fh, fuse_req_t req,
		       const char *wbuf, size_t size, off_t off,
		       const struct cv_rep_tok *tok)
{
	struct aio_op *op;
	off_t dev_off;
	bool mapped;
	int fd, rc;

	if (!fs->aio)
		return false;
	if (!atomic_load_explicit(&fs->io_here, memory_order_relaxed) &&
	    cv_aio_idle(fs->aio))
		return false;
	fd = aio_fd(fs, fh, off, size, wbuf != NULL, &dev_off, &mapped);
	if (fd < 0)
		return false;
	op = aio_op_new(fs, fh, req, size);
	if (!op) {
		if (mapped)
			aio_unmap(fs, fh, wbuf != NULL, off, size, -ENOMEM);
		return false;
	}
	op->off = off;
	op->mapped = mapped;
	if (wbuf) {
		op->rep = *tok;
		memcpy(op->buf, wbuf, size);
		op->aio.done = aio_write_done;
		rc = cv_aio_pwrite(fs->aio, fd, op->buf, size, dev_off,
				   &op->aio);
	} else {
		op->aio.done = aio_read_done;
		rc = cv_aio_pread(fs->aio, fd, op->buf, size, dev_off,
				  &op->aio);
	}
	if (rc) {
		if (mapped)
			aio_unmap(fs, fh, wbuf != NULL, off, size, rc);
		aio_op_free(op);
	}
	return !rc;
}

/*
 * The largest read worth splicing.  libfuse splices a reply only if its
 * pipe holds the whole of it plus a few pages (the header, and the
 * slack of its size estimate), growing the pipe up to
 * /proc/sys/fs/pipe-max-size (1 MiB by default; more needs
 * CAP_SYS_RESOURCE).  A larger reply falls back to a buffer libfuse
 * allocates for each request - for 1 MiB a fresh mapping faulted in and
 * unmapped every time, which costs more than the copy splicing saves -
 * so such reads go to the thread's read buffer instead.
 */
#define CV_SPLICE_SLACK (4 * 4096)
static size_t splice_max;
static pthread_once_t splice_max_once = PTHREAD_ONCE_INIT;

static void splice_max_init(void)
{
	unsigned long max = 1024 * 1024;
	FILE *f = fopen("/proc/sys/fs/pipe-max-size", "re");

	if (f) {
		if (fscanf(f, "%lu", &max) != 1)
			max = 1024 * 1024;
		fclose(f);
	}
	splice_max = max > CV_SPLICE_SLACK ? max - CV_SPLICE_SLACK : 0;
}

static bool splice_fits(size_t size)
{
	pthread_once(&splice_max_once, splice_max_init);
	return size <= splice_max;
}

static void cv_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct cv_fs *fs = fs_of(req);
	struct cv_fh *fh = fh_of(fi);
	int fd;
	char *buf = NULL, *own_buf = NULL;
	ssize_t n;

	if (aio_submit(fs, fh, req, NULL, size, off, NULL))
		return;
	fd = fs->be.ops->file_fd && splice_fits(size)
		     ? fs->be.ops->file_fd(be_of(fs), fh->file, off, size)
		     : -1;
	if (fd >= 0) {
		struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);

		bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		bv.buf[0].fd = fd;
		bv.buf[0].pos = off;
		fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
		return;
	}
	if (size <= CV_READ_BUF)
		buf = read_buf();
	if (!buf) {
		buf = own_buf = malloc(size ? size : 1);
		if (!buf) {
			reply_err(req, ENOMEM);
			return;
		}
	}
	io_here_begin(fs);
	n = fs->be.ops->read(be_of(fs), fh->file, buf, size, off);
	io_here_end(fs);
	if (n < 0)
		reply_err(req, (int)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(own_buf);
}

int cv_fs_rw_fd(struct cv_fs *fs, uint64_t fh, off_t off, size_t size,
		unsigned align)
{
	struct cv_fh *f = (struct cv_fh *)(uintptr_t)fh;

	if (!fs->be.ops->aio_fd || !size)
		return -1;
	return fs->be.ops->aio_fd(be_of(fs), f->file, off, size, align);
}

int cv_fs_write_try_begin(struct cv_fs *fs, uint64_t fh, uint64_t off,
			  uint64_t len, struct cv_rep_tok *tok)
{
	struct cv_fh *f = (struct cv_fh *)(uintptr_t)fh;
	int rc = cv_own_write_try_begin(fs->own, f->own, f->gen);

	if (rc)
		return rc;
	rc = cv_rep_begin(fs->rep, &f->rep, (uint64_t)f->ino->ino, f->ino,
			  f->file, cv_own_file_epoch(f->own), off, len, true,
			  tok);
	if (rc)
		cv_own_write_end(fs->own, f->own);
	return rc;
}

void cv_fs_write_end(struct cv_fs *fs, uint64_t fh, struct cv_rep_tok *tok)
{
	struct cv_fh *f = (struct cv_fh *)(uintptr_t)fh;

	cv_rep_end(fs->rep, tok);
	cv_own_write_end(fs->own, f->own);
}

/* A signal reached a writer waiting for write ownership. */
struct own_intr {
	struct cv_fs *fs;
	struct cv_own_wait w;
};

static void own_interrupted(fuse_req_t req, void *data)
{
	struct own_intr *oi = data;

	(void)req;
	cv_own_interrupt(oi->fs->own, &oi->w);
}

/*
 * Admit a modifying request: bounded by acquire_timeout (EIO past it)
 * and interruptible (EINTR), so that a writer without ownership - on a
 * node that lost quorum, say - neither hangs nor ignores SIGTERM.
 */
static int own_begin(fuse_req_t req, struct cv_fs *fs,
		     struct cv_own_file *of, uint64_t gen)
{
	struct own_intr oi = { .fs = fs };
	int rc;

	fuse_req_interrupt_func(req, own_interrupted, &oi);
	rc = cv_own_write_begin_wait(fs->own, of, gen, &oi.w);
	fuse_req_interrupt_func(req, NULL, NULL);
	return rc;
}

static void cv_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct cv_fs *fs = fs_of(req);
	struct cv_fh *fh = fh_of(fi);
	struct cv_rep_tok tok;
	ssize_t n;
	int rc;

	/*
	 * fi->writepage: the kernel writing back dirty pages of a shared
	 * mapping.  Admitted like any write (ownership, lease, poisoning),
	 * and also while a revoke waits for exactly these pages (own.h).
	 */
	if (fi->writepage)
		rc = cv_own_writeback_begin(fs->own, fh->own, fh->gen);
	else
		rc = own_begin(req, fs, fh->own, fh->gen);
	if (!rc) {
		rc = rep_begin(fs, &fh->rep, fh->ino, fh->file, fh->own,
			       (uint64_t)off, size, &tok);
		if (rc)
			cv_own_write_end(fs->own, fh->own);
	}
	if (rc) {
		reply_err(req, rc);
		return;
	}
	if (aio_submit(fs, fh, req, buf, size, off, &tok))
		return;
	io_here_begin(fs);
	n = fs->be.ops->write(be_of(fs), fh->file, buf, size, off);
	io_here_end(fs);
	cv_rep_end(fs->rep, &tok);
	cv_own_write_end(fs->own, fh->own);
	if (n < 0)
		reply_err(req, (int)n);
	else
		fuse_reply_write(req, (size_t)n);
}

static void cv_fallocate(fuse_req_t req, fuse_ino_t ino, int mode,
			 off_t offset, off_t length,
			 struct fuse_file_info *fi)
{
	struct cv_fs *fs = fs_of(req);
	struct cv_fh *fh = fh_of(fi);
	struct cv_rep_tok tok;
	int rc;

	rc = own_begin(req, fs, fh->own, fh->gen);
	if (!rc) {
		/* allocation, punch, zeroing: the range is shipped as it is */
		rc = rep_begin(fs, &fh->rep, fh->ino, fh->file, fh->own,
			       (uint64_t)offset, (uint64_t)length, &tok);
		if (!rc) {
			rc = fs->be.ops->fallocate(be_of(fs), fh->file, mode,
						   offset, length);
			cv_rep_end(fs->rep, &tok);
		}
		cv_own_write_end(fs->own, fh->own);
	}
	reply_err(req, rc);
}

static void cv_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	struct cv_fs *fs = fs_of(req);
	off_t r;

	if (whence != SEEK_DATA && whence != SEEK_HOLE) {
		reply_err(req, EINVAL);
		return;
	}
	r = fs->be.ops->lseek(be_of(fs), fh_of(fi)->file, off, whence);
	if (r < 0)
		reply_err(req, (int)r);
	else
		fuse_reply_lseek(req, r);
}

static void cv_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	struct cv_fs *fs = fs_of(req);

	reply_err(req, fs->be.ops->fsync(be_of(fs), fh_of(fi)->file,
					 datasync));
}

/* Remember that owner set a lock through fh (dropped on release). */
static void note_owner(struct cv_fh *fh, uint64_t owner)
{
	pthread_mutex_lock(&fh->lock);
	for (unsigned k = 0; k < fh->n_owners; k++) {
		if (fh->owners[k] == owner)
			goto out;
	}
	if (fh->n_owners < CV_OWNERS_MAX)
		fh->owners[fh->n_owners++] = owner;
	else
		fh->owners_overflow = true;
out:
	pthread_mutex_unlock(&fh->lock);
}

static int drop_owner(struct cv_fs *fs, struct cv_fh *fh, uint8_t space,
		      uint64_t owner)
{
	struct lkm_plock pl = {
		.fileid = fh->ino->ino,
		.space = space,
		.op = LM_PL_RELEASE_OWNER,
		.owner = owner,
		.end = LM_OFFSET_MAX,
		.pid = 0,
	};

	return cv_lockc_plock(fs->lc, &pl);
}

static void cv_flush(fuse_req_t req, fuse_ino_t ino,
		     struct fuse_file_info *fi)
{
	struct cv_fs *fs = fs_of(req);
	struct cv_fh *fh = fh_of(fi);
	int rc;

	/*
	 * close(2) of any descriptor of the file drops the closing
	 * process's POSIX locks on it, whichever descriptor set them.
	 */
	if (fs->lc && __atomic_load_n(&fh->ino->plocks_used, __ATOMIC_RELAXED))
		drop_owner(fs, fh, LM_SPACE_POSIX, fi->lock_owner);
	rc = fs->be.ops->flush(be_of(fs), fh->file);
	reply_err(req, rc);
}

static void cv_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct cv_fs *fs = fs_of(req);
	struct cv_fh *fh = fh_of(fi);

	/*
	 * Every lock set through this open file goes with it: POSIX
	 * locks of its users, and OFD locks, which the kernel sends with
	 * the open file as owner and never unlocks on close.
	 */
	if (fs->lc) {
		for (unsigned k = 0; k < fh->n_owners; k++)
			drop_owner(fs, fh, LM_SPACE_POSIX, fh->owners[k]);
		if (fi->flock_release)
			drop_owner(fs, fh, LM_SPACE_FLOCK, fi->lock_owner);
	}
	if (fh->writer)
		fs->be.ops->flush(be_of(fs), fh->file);
	fh_free(fs, fh);
	reply_err(req, 0);
}

/* ---- locks ------------------------------------------------------------ */

static int flock_to_plock(const struct flock *lk, struct lkm_plock *pl)
{
	if (lk->l_start < 0 || lk->l_len < 0)
		return -EINVAL;
	pl->start = (uint64_t)lk->l_start;
	pl->end = lk->l_len ? (uint64_t)(lk->l_start + lk->l_len - 1)
			    : LM_OFFSET_MAX;
	switch (lk->l_type) {
	case F_RDLCK:
		pl->type = LM_LK_READ;
		break;
	case F_WRLCK:
		pl->type = LM_LK_WRITE;
		break;
	case F_UNLCK:
		pl->type = LM_LK_UNLOCK;
		break;
	default:
		return -EINVAL;
	}
	pl->pid = (uint32_t)lk->l_pid;
	return 0;
}

static void cv_getlk(fuse_req_t req, fuse_ino_t ino,
		     struct fuse_file_info *fi, struct flock *lock)
{
	struct cv_fs *fs = fs_of(req);
	struct cv_fh *fh = fh_of(fi);
	struct lkm_plock pl = {
		.fileid = fh->ino->ino,
		.space = LM_SPACE_POSIX,
		.owner = fi->lock_owner,
	};
	struct lm_lock_entry c;
	int rc = flock_to_plock(lock, &pl);

	if (!rc)
		rc = cv_lockc_getlk(fs->lc, &pl, &c);
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	if (rc == 0) {
		lock->l_type = F_UNLCK;
	} else {
		lock->l_type = c.type == LM_LK_READ ? F_RDLCK : F_WRLCK;
		lock->l_whence = SEEK_SET;
		lock->l_start = (off_t)c.start;
		lock->l_len = c.end == LM_OFFSET_MAX
				      ? 0
				      : (off_t)(c.end - c.start + 1);
		lock->l_pid = (pid_t)c.pid;
	}
	fuse_reply_lock(req, lock);
}

struct lk_wait {
	struct cv_fs *fs;
	struct lkm_plock pl;
};

/* A signal reached a process blocked in F_SETLKW: cancel its wait. */
static void setlkw_interrupted(fuse_req_t req, void *data)
{
	struct lk_wait *w = data;
	struct lkm_plock pl = w->pl;

	pl.op = LM_PL_CANCEL;
	cv_lockc_plock(w->fs->lc, &pl);
}

static void cv_setlk(fuse_req_t req, fuse_ino_t ino,
		     struct fuse_file_info *fi, struct flock *lock, int sleep)
{
	struct cv_fs *fs = fs_of(req);
	struct cv_fh *fh = fh_of(fi);
	struct lk_wait w = { .fs = fs };
	int rc;

	w.pl.fileid = fh->ino->ino;
	w.pl.space = LM_SPACE_POSIX;
	w.pl.owner = fi->lock_owner;
	rc = flock_to_plock(lock, &w.pl);
	if (rc) {
		reply_err(req, rc);
		return;
	}
	if (w.pl.type == LM_LK_UNLOCK)
		w.pl.op = LM_PL_UNLOCK;
	else
		w.pl.op = sleep ? LM_PL_SETW : LM_PL_SET;
	if (w.pl.type != LM_LK_UNLOCK) {
		note_owner(fh, fi->lock_owner);
		__atomic_store_n(&fh->ino->plocks_used, 1, __ATOMIC_RELAXED);
	}
	if (w.pl.op == LM_PL_SETW)
		fuse_req_interrupt_func(req, setlkw_interrupted, &w);
	rc = cv_lockc_plock(fs->lc, &w.pl);
	if (w.pl.op == LM_PL_SETW)
		fuse_req_interrupt_func(req, NULL, NULL);
	reply_err(req, rc);
}

static void cv_flock(fuse_req_t req, fuse_ino_t ino,
		     struct fuse_file_info *fi, int op)
{
	struct cv_fs *fs = fs_of(req);
	struct cv_fh *fh = fh_of(fi);
	struct lk_wait w = { .fs = fs };
	int rc;

	w.pl.fileid = fh->ino->ino;
	w.pl.space = LM_SPACE_FLOCK;
	w.pl.owner = fi->lock_owner;
	w.pl.end = LM_OFFSET_MAX;
	w.pl.pid = (uint32_t)fuse_req_ctx(req)->pid;
	if (op & LOCK_UN) {
		w.pl.op = LM_PL_UNLOCK;
		w.pl.type = LM_LK_UNLOCK;
	} else {
		w.pl.type = (op & LOCK_SH) ? LM_LK_READ : LM_LK_WRITE;
		w.pl.op = (op & LOCK_NB) ? LM_PL_SET : LM_PL_SETW;
	}
	if (w.pl.op == LM_PL_SETW)
		fuse_req_interrupt_func(req, setlkw_interrupted, &w);
	rc = cv_lockc_plock(fs->lc, &w.pl);
	if (w.pl.op == LM_PL_SETW)
		fuse_req_interrupt_func(req, NULL, NULL);
	reply_err(req, rc == -EAGAIN ? -EWOULDBLOCK : rc);
}

/* ---- directories ------------------------------------------------------ */

static void cv_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct cv_fs *fs = fs_of(req);
	struct cv_inode *i = cv_inode_get(&fs->itab, ino);
	struct be_dir *d;
	int rc;

	if (!i) {
		reply_err(req, ESTALE);
		return;
	}
	rc = fs->be.ops->opendir(be_of(fs), i->node, &d);
	cv_inode_put(&fs->itab, i);
	if (rc) {
		reply_err(req, rc);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	if (fuse_reply_open(req, fi))
		fs->be.ops->releasedir(be_of(fs), d);
}

struct rd_ctx {
	fuse_req_t req;
	struct cv_fs *fs;
	struct cv_inode *dir;
	bool plus;
	bool root;
	char *buf;
	size_t size, used;
	int err;
};

static bool is_dots(const char *name)
{
	return name[0] == '.' &&
	       (!name[1] || (name[1] == '.' && !name[2]));
}

static size_t add_plus(struct rd_ctx *c, const char *name, ino_t ino,
		       unsigned dtype, off_t next, bool *drop)
{
	struct fuse_entry_param e;
	struct be_node *node;
	struct cv_inode *i;
	struct stat st;
	size_t len;
	int rc;

	*drop = false;
	if (is_dots(name)) {
		memset(&e, 0, sizeof(e));
		e.attr.st_ino = ino;
		e.attr.st_mode = dtype << 12;
		return fuse_add_direntry_plus(c->req, c->buf + c->used,
					      c->size - c->used, name, &e,
					      next);
	}
	rc = c->fs->be.ops->lookup(be_of(c->fs), c->dir->node, name, &node,
				   &st);
	if (!rc)
		rc = make_entry(c->fs, node, &st, &e, &i);
	if (rc) {
		/* vanished meanwhile: skip it */
		return rc == -ENOENT ? 0 : (c->err = rc, (size_t)-1);
	}
	len = fuse_add_direntry_plus(c->req, c->buf + c->used,
				     c->size - c->used, name, &e, next);
	cv_inode_put(&c->fs->itab, i);
	if (len > c->size - c->used)
		cv_inode_forget(&c->fs->itab, i->nodeid, 1);
	return len;
}

static int rd_one(void *arg, const char *name, ino_t ino, unsigned dtype,
		  off_t next)
{
	struct rd_ctx *c = arg;
	struct stat st = { .st_ino = ino, .st_mode = dtype << 12 };
	bool drop;
	size_t len;

	if (c->root && !strcmp(name, CV_META_DIR))
		return 0;
	if (c->plus)
		len = add_plus(c, name, ino, dtype, next, &drop);
	else
		len = fuse_add_direntry(c->req, c->buf + c->used,
					c->size - c->used, name, &st, next);
	if (len == (size_t)-1)
		return 1;
	if (len > c->size - c->used)
		return 1; /* full: not consumed */
	c->used += len;
	return 0;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
		       off_t off, struct fuse_file_info *fi, bool plus)
{
	struct cv_fs *fs = fs_of(req);
	struct rd_ctx c = {
		.req = req, .fs = fs, .plus = plus,
		.root = ino == FUSE_ROOT_ID, .size = size,
	};
	int rc;

	c.dir = cv_inode_get(&fs->itab, ino);
	c.buf = malloc(size ? size : 1);
	if (!c.dir || !c.buf) {
		cv_inode_put(&fs->itab, c.dir);
		free(c.buf);
		reply_err(req, c.dir ? ENOMEM : ESTALE);
		return;
	}
	rc = fs->be.ops->readdir(be_of(fs),
				 (struct be_dir *)(uintptr_t)fi->fh, off,
				 rd_one, &c);
	if (!rc)
		rc = c.err;
	/* An error after some entries: return those (as readdir(3)). */
	if (rc && !c.used)
		reply_err(req, rc);
	else
		fuse_reply_buf(req, c.buf, c.used);
	cv_inode_put(&fs->itab, c.dir);
	free(c.buf);
}

static void cv_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
		       off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

static void cv_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

static void cv_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	struct cv_fs *fs = fs_of(req);

	reply_err(req, fs->be.ops->fsyncdir(be_of(fs),
					    (struct be_dir *)(uintptr_t)fi->fh,
					    datasync));
}

static void cv_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct cv_fs *fs = fs_of(req);

	fs->be.ops->releasedir(be_of(fs), (struct be_dir *)(uintptr_t)fi->fh);
	reply_err(req, 0);
}

static void cv_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct cv_fs *fs = fs_of(req);
	struct cv_inode *i = cv_inode_get(&fs->itab, ino);
	struct statvfs st;
	int rc;

	if (!i) {
		reply_err(req, ESTALE);
		return;
	}
	rc = fs->be.ops->statfs(be_of(fs), i->node, &st);
	cv_inode_put(&fs->itab, i);
	if (rc)
		reply_err(req, rc);
	else
		fuse_reply_statfs(req, &st);
}

/* ---- extended attributes --------------------------------------------- */

static const char *const virt_names[] = {
	CV_XATTR_PREFIX "owner",
	CV_XATTR_PREFIX "epoch",
	CV_XATTR_PREFIX "fileid",
	CV_XATTR_PREFIX "volume",
};
#define N_VIRT (sizeof(virt_names) / sizeof(virt_names[0]))

static bool is_reserved(const char *name)
{
	return !strncmp(name, CV_XATTR_PREFIX, strlen(CV_XATTR_PREFIX));
}

/* The value of a virtual attribute, as text. */
static int virt_value(struct cv_fs *fs, struct cv_inode *i, const char *name,
		      char *val, size_t cap)
{
	uint64_t epoch = 0;
	char owner[LM_NAME_MAX] = "";
	int rc = 0;

	if (!strcmp(name, CV_XATTR_PREFIX "fileid")) {
		snprintf(val, cap, "%llu", (unsigned long long)i->ino);
		return 0;
	}
	if (!strcmp(name, CV_XATTR_PREFIX "volume")) {
		cv_uuid_unparse(fs->vol.uuid, val);
		return 0;
	}
	if (!strcmp(name, CV_XATTR_COORDINATOR)) {
		/* the backend's own (block), ENODATA elsewhere */
		ssize_t n = fs->be.ops->getxattr(be_of(fs), i->node, name, val,
						 cap - 1);

		if (n < 0)
			return n == -ERANGE ? -EIO : (int)n;
		val[n] = '\0';
		return 0;
	}
	if (strcmp(name, CV_XATTR_PREFIX "owner") &&
	    strcmp(name, CV_XATTR_PREFIX "epoch"))
		return -ENODATA;
	if (fs->lc) {
		rc = cv_lockc_owner(fs->lc, i->ino, owner, sizeof(owner),
				    &epoch);
	} else if (cv_own_state_of(fs->own, i->ino, &epoch) ==
		   CV_OWN_OWNED) {
		gethostname(owner, sizeof(owner) - 1);
	}
	if (rc)
		return rc;
	if (!strcmp(name, CV_XATTR_PREFIX "owner"))
		snprintf(val, cap, "%s", owner);
	else
		snprintf(val, cap, "%llu", (unsigned long long)epoch);
	return 0;
}

static void reply_value(fuse_req_t req, const void *val, size_t len,
			size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (len > size)
		reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, val, len);
}

static void cv_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	struct cv_fs *fs = fs_of(req);
	struct cv_inode *i = cv_inode_get(&fs->itab, ino);
	char val[LM_NAME_MAX + 64];
	char *buf = NULL;
	ssize_t n;
	int rc;

	if (!i) {
		reply_err(req, ESTALE);
		return;
	}
	if (!strcmp(name, CV_XATTR_REPLICA)) {
		char rv[2048];

		rc = cv_rep_xattr_get(fs->rep, i, rv, sizeof(rv));
		if (rc < 0)
			reply_err(req, rc);
		else
			reply_value(req, rv, (size_t)rc, size);
		goto out;
	}
	if (is_reserved(name)) {
		rc = virt_value(fs, i, name, val, sizeof(val));
		if (rc)
			reply_err(req, rc);
		else
			reply_value(req, val, strlen(val), size);
		goto out;
	}
	if (size) {
		buf = malloc(size);
		if (!buf) {
			reply_err(req, ENOMEM);
			goto out;
		}
	}
	n = fs->be.ops->getxattr(be_of(fs), i->node, name, buf, size);
	if (n < 0)
		reply_err(req, (int)n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
out:
	cv_inode_put(&fs->itab, i);
}

/* Backend names without reserved ones, then the virtual names. */
static ssize_t build_list(struct cv_fs *fs, struct cv_inode *i, char **out)
{
	ssize_t n = fs->be.ops->listxattr(be_of(fs), i->node, NULL, 0);
	size_t virt = 0, used = 0;
	char *raw, *res;

	if (n < 0)
		return n;
	for (size_t k = 0; k < N_VIRT; k++)
		virt += strlen(virt_names[k]) + 1;
	raw = malloc((size_t)n + 1);
	res = malloc((size_t)n + virt + 1);
	if (!raw || !res) {
		free(raw);
		free(res);
		return -ENOMEM;
	}
	if (n > 0)
		n = fs->be.ops->listxattr(be_of(fs), i->node, raw, (size_t)n);
	for (ssize_t p = 0; n > 0 && p < n;) {
		size_t len = strlen(raw + p) + 1;

		if (!is_reserved(raw + p)) {
			memcpy(res + used, raw + p, len);
			used += len;
		}
		p += (ssize_t)len;
	}
	free(raw);
	if (n < 0) {
		free(res);
		return n == -ERANGE ? -EAGAIN : n;
	}
	for (size_t k = 0; k < N_VIRT; k++) {
		memcpy(res + used, virt_names[k], strlen(virt_names[k]) + 1);
		used += strlen(virt_names[k]) + 1;
	}
	if (fs->be.ops->getxattr(be_of(fs), i->node, CV_XATTR_COORDINATOR,
				 NULL, 0) >= 0) {
		char *more = realloc(res, used + sizeof(CV_XATTR_COORDINATOR));

		if (!more) {
			free(res);
			return -ENOMEM;
		}
		res = more;
		memcpy(res + used, CV_XATTR_COORDINATOR,
		       sizeof(CV_XATTR_COORDINATOR));
		used += sizeof(CV_XATTR_COORDINATOR);
	}
	*out = res;
	return (ssize_t)used;
}

static void cv_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct cv_fs *fs = fs_of(req);
	struct cv_inode *i = cv_inode_get(&fs->itab, ino);
	char *list = NULL;
	ssize_t n;

	if (!i) {
		reply_err(req, ESTALE);
		return;
	}
	n = build_list(fs, i, &list);
	cv_inode_put(&fs->itab, i);
	if (n < 0)
		reply_err(req, (int)n);
	else
		reply_value(req, list, (size_t)n, size);
	free(list);
}

static void cv_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	struct cv_fs *fs = fs_of(req);
	struct cv_inode *i;
	int rc;

	if (!strcmp(name, CV_XATTR_REPLICA)) {
		/* root only: the group's hook is a command csvfs runs */
		if (fuse_req_ctx(req)->uid != 0) {
			reply_err(req, EPERM);
			return;
		}
		i = cv_inode_get(&fs->itab, ino);
		rc = i ? cv_rep_xattr_set(fs->rep, i, value, size) : -ESTALE;
		cv_inode_put(&fs->itab, i);
		reply_err(req, rc);
		return;
	}
	if (is_reserved(name)) {
		reply_err(req, EPERM);
		return;
	}
	i = cv_inode_get(&fs->itab, ino);
	rc = i ? fs->be.ops->setxattr(be_of(fs), i->node, name, value, size,
				      flags)
	       : -ESTALE;
	cv_inode_put(&fs->itab, i);
	reply_err(req, rc);
}

static void cv_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct cv_fs *fs = fs_of(req);
	struct cv_inode *i;
	int rc;

	if (is_reserved(name)) {
		reply_err(req, EPERM);
		return;
	}
	i = cv_inode_get(&fs->itab, ino);
	rc = i ? fs->be.ops->removexattr(be_of(fs), i->node, name) : -ESTALE;
	cv_inode_put(&fs->itab, i);
	reply_err(req, rc);
}

/* ---- ownership glue and cache invalidation ----------------------------- */

int cv_fs_own_flush(void *arg, void *obj)
{
	struct cv_fs *fs = arg;
	struct cv_inode *i = obj;
	int rc = fs->be.ops->sync_node(be_of(fs), i->node);

	/* before the release: the next owner takes over what is not
	 * shipped (writes are drained) */
	cv_rep_handoff(fs->rep, (uint64_t)i->ino);
	return rc;
}

/*
 * Before this node gives a file up (revoke, idle release): the kernel
 * writes back the dirty pages that shared mappings left in its page cache
 * (each reaches cv_write as a writeback write while we still own the
 * file) and drops every cached page, so that this node's mappings fault
 * in the next owner's data.  The kernel does both in one call: the
 * invalidation of a dirty page writes it first (launder), and returns
 * once those writes are answered.  ENOENT: the kernel has no such inode
 * cached, so no pages either.
 */
int cv_fs_own_writeback(void *arg, void *obj)
{
	struct cv_fs *fs = arg;
	struct cv_inode *i = obj;
	int rc = 0;

	pthread_rwlock_rdlock(&fs->se_lock);
	if (fs->se_live)
		rc = fuse_lowlevel_notify_inval_inode(fs->se, i->nodeid, 0, 0);
	pthread_rwlock_unlock(&fs->se_lock);
	return rc == -ENOENT ? 0 : rc;
}

void cv_fs_session_live(struct cv_fs *fs, bool live)
{
	pthread_rwlock_wrlock(&fs->se_lock);
	fs->se_live = live;
	pthread_rwlock_unlock(&fs->se_lock);
}

void cv_fs_own_hold(void *arg, void *obj)
{
	struct cv_fs *fs = arg;

	cv_inode_pin(&fs->itab, obj);
}

void cv_fs_own_drop(void *arg, void *obj)
{
	struct cv_fs *fs = arg;

	cv_inode_put(&fs->itab, obj);
}

void cv_fs_owner_changed(void *arg, uint64_t fileid)
{
	struct cv_fs *fs = arg;

	pthread_mutex_lock(&fs->inval_lock);
	if (fs->inval_len < CV_INVAL_QUEUE) {
		fs->inval_q[(fs->inval_head + fs->inval_len++) %
			    CV_INVAL_QUEUE] = fileid;
		pthread_cond_signal(&fs->inval_cond);
	}
	pthread_mutex_unlock(&fs->inval_lock);
}

static void *inval_thread(void *arg)
{
	struct cv_fs *fs = arg;

	pthread_mutex_lock(&fs->inval_lock);
	while (!fs->inval_stop) {
		uint64_t fileid, id;

		if (!fs->inval_len) {
			pthread_cond_wait(&fs->inval_cond, &fs->inval_lock);
			continue;
		}
		fileid = fs->inval_q[fs->inval_head];
		fs->inval_head = (fs->inval_head + 1) % CV_INVAL_QUEUE;
		fs->inval_len--;
		pthread_mutex_unlock(&fs->inval_lock);
		id = cv_inode_nodeid_of(&fs->itab, fs->root_dev,
					(ino_t)fileid);
		if (id)
			fuse_lowlevel_notify_inval_inode(fs->se, id, 0, 0);
		pthread_mutex_lock(&fs->inval_lock);
	}
	pthread_mutex_unlock(&fs->inval_lock);
	return NULL;
}

int cv_fs_inval_start(struct cv_fs *fs)
{
	int rc;

	pthread_mutex_init(&fs->inval_lock, NULL);
	pthread_cond_init(&fs->inval_cond, NULL);
	rc = pthread_create(&fs->inval_thread, NULL, inval_thread, fs);
	if (rc)
		return -rc;
	fs->inval_running = true;
	return 0;
}

void cv_fs_inval_stop(struct cv_fs *fs)
{
	if (!fs->inval_running)
		return;
	pthread_mutex_lock(&fs->inval_lock);
	fs->inval_stop = true;
	pthread_cond_signal(&fs->inval_cond);
	pthread_mutex_unlock(&fs->inval_lock);
	pthread_join(fs->inval_thread, NULL);
	fs->inval_running = false;
}

const struct fuse_lowlevel_ops cv_fs_ops = {
	.init = cv_init,
	.lookup = cv_lookup,
	.forget = cv_forget,
	.forget_multi = cv_forget_multi,
	.getattr = cv_getattr,
	.setattr = cv_setattr,
	.readlink = cv_readlink,
	.mknod = cv_mknod,
	.mkdir = cv_mkdir,
	.symlink = cv_symlink,
	.link = cv_link,
	.unlink = cv_unlink,
	.rmdir = cv_rmdir,
	.rename = cv_rename,
	.open = cv_open,
	.create = cv_create,
	.read = cv_read,
	.write = cv_write,
	.flush = cv_flush,
	.release = cv_release,
	.fsync = cv_fsync,
	.fallocate = cv_fallocate,
	.lseek = cv_lseek,
	.opendir = cv_opendir,
	.readdir = cv_readdir,
	.readdirplus = cv_readdirplus,
	.fsyncdir = cv_fsyncdir,
	.releasedir = cv_releasedir,
	.statfs = cv_statfs,
	.getxattr = cv_getxattr,
	.setxattr = cv_setxattr,
	.listxattr = cv_listxattr,
	.removexattr = cv_removexattr,
	.getlk = cv_getlk,
	.setlk = cv_setlk,
	.flock = cv_flock,
};

