// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * nfs.c - the `nfs` backend: a csvfs volume on an NFS export,
 * reached through libnfs in user space (no kernel NFS client).
 *
 * SOURCE is a libnfs URL, nfs://server/export[/path][?args]; libnfs parses
 * its own arguments (version=3|4, nfsport=, mountport=, uid=, ...), and
 * this backend takes two of its own out of the URL first: timeout=SECONDS
 * (per RPC, default 30) and conns=N (libnfs contexts, default 8).
 *
 * Objects are addressed by path below the export, checked against the
 * NFS fileid, which is also the file id csvfs reports as st_ino and locks
 * by, so nodes mounting the same export through the dir backend over a
 * kernel NFS mount agree on identity.  Open files hold libnfs file
 * handles, one per pooled context, opened on first use there; reads,
 * writes, truncates and COMMITs go by file handle.  Large requests are
 * split to the server's rsize/wsize.
 *
 * What NFS cannot express returns what applications expect from a local
 * file system without the feature: fallocate gives EOPNOTSUPP (glibc and
 * QEMU then write zeroes), SEEK_DATA/SEEK_HOLE treat the whole file as
 * data (as Linux does for file systems without hole tracking), xattrs
 * give EOPNOTSUPP, RENAME_EXCHANGE gives EINVAL.  A file unlinked while
 * open is renamed into the hidden .csvfs/ directory and removed at its
 * last close, as the kernel NFS client's silly rename does.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "dirlist.h"
#include "rpc.h"
#include "wbuf.h"
#include "volume.h"
#include "log.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

#define NFS_DEFAULT_TIMEOUT_S 30
#define NFS_DEFAULT_CONNS 8 /* BENCHMARKS.md: NFS backend, pool */
#define NFS_MAX_CONNS 64
#define NFS_DEFAULT_WBUF_MB 64
#define NFS_READDIR_PASSES 8 /* listings begun again after BAD_COOKIE */

struct be_file {
	struct be_node *node; /* immutable; holds a reference */
	int flags;	      /* immutable: flags for opens on other contexts */
	struct nfsfh **fh;    /* fh[i] protected by conns[i].lock */
	unsigned *gen;	      /* gen[i] protected by conns[i].lock */
};

struct be_dir {
	struct be_node *node; /* immutable; holds a reference */
	pthread_mutex_t lock; /* protects ents, n, taken */
	struct dirent_snap *ents;
	size_t n;
	bool taken; /* a readdir has run since the snapshot */
};

static int file_commit(struct be_nfs *p, struct be_file *f);
static bool node_has_unc(struct be_node *n);
static int nfs_sync_node_op(struct backend *be, struct be_node *node);

static struct be_nfs *npriv(struct backend *be)
{
	return be->priv;
}

/* ---- nodes and paths --------------------------------------------------- */

static int check_name(const char *name)
{
	if (strlen(name) > NAME_MAX)
		return -ENAMETOOLONG;
	if (strchr(name, '/'))
		return -EINVAL;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	return 0;
}

/* The path of node, or of name inside it; the caller frees *out. */
static int node_path(struct be_nfs *p, struct be_node *n, const char *name,
		     char **out)
{
	int rc = 0, len;

	if (name) {
		rc = check_name(name);
		if (rc)
			return rc;
	}
	pthread_mutex_lock(&p->nodes_lock);
	if (!n->path)
		rc = -ESTALE;
	else if (!name)
		len = asprintf(out, "%s", n->path);
	else
		len = asprintf(out, "%s%s%s", n->path,
			       strcmp(n->path, "/") ? "/" : "", name);
	pthread_mutex_unlock(&p->nodes_lock);
	if (!rc && len < 0)
		rc = -ENOMEM;
	if (rc == -ESTALE)
		log_info("nfs: fileid %" PRIu64 " is gone from this mount's "
			 "view (stale)", n->fileid);
	return rc;
}

static void stat_from(struct be_nfs *p, const struct nfs_stat_64 *s,
		      struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_dev = p->dev;
	st->st_ino = (ino_t)s->nfs_ino;
	st->st_mode = (mode_t)s->nfs_mode;
	st->st_nlink = (nlink_t)s->nfs_nlink;
	st->st_uid = (uid_t)s->nfs_uid;
	st->st_gid = (gid_t)s->nfs_gid;
	st->st_rdev = (dev_t)s->nfs_rdev;
	st->st_size = (off_t)s->nfs_size;
	st->st_blksize = s->nfs_blksize ? (blksize_t)s->nfs_blksize : 4096;
	st->st_blocks = (blkcnt_t)(s->nfs_used + 511) / 512;
	st->st_atim.tv_sec = (time_t)s->nfs_atime;
	st->st_atim.tv_nsec = (long)s->nfs_atime_nsec;
	st->st_mtim.tv_sec = (time_t)s->nfs_mtime;
	st->st_mtim.tv_nsec = (long)s->nfs_mtime_nsec;
	st->st_ctim.tv_sec = (time_t)s->nfs_ctime;
	st->st_ctim.tv_nsec = (long)s->nfs_ctime_nsec;
}

static int path_stat(struct be_nfs *p, const char *path, struct stat *st)
{
	struct nfs_stat_64 s;
	int rc;

	NFS_CALL_ON(p, rc, true, "lstat", path, nfs_lstat64(c->nfs, path, &s));
	if (!rc)
		stat_from(p, &s, st);
	return rc;
}

static struct be_node **hash_slot(struct be_nfs *p, uint64_t fileid)
{
	return &p->by_fileid[fileid % NFS_NODE_HASH];
}

/*
 * A successful lookup re-finds the object: nodes of the same fileid that
 * lost their path (a removed hard link name, a rename by another node)
 * take the new one, so the inode csvfs already holds works again.
 * Called with nodes_lock held.
 */
static void refresh_paths(struct be_nfs *p, uint64_t fileid, const char *path)
{
	struct be_node *n;
	char *copy;

	for (n = *hash_slot(p, fileid); n; n = n->hnext) {
		if (n->fileid != fileid || n->orphan ||
		    (n->path && !strcmp(n->path, path)))
			continue;
		copy = strdup(path);
		if (!copy)
			continue;
		free(n->path);
		n->path = copy;
	}
}

/* A new node for path (taken over) with attributes st. */
static int node_new(struct be_nfs *p, char *path, const struct stat *st,
		    struct be_node **out)
{
	struct be_node *n = calloc(1, sizeof(*n)), **slot;

	if (!n) {
		free(path);
		return -ENOMEM;
	}
	n->path = path;
	n->fileid = st->st_ino;
	n->type = st->st_mode & S_IFMT;
	n->refs = 1;
	pthread_rwlock_init(&n->resend_lock, NULL);
	pthread_mutex_init(&n->unc_lock, NULL);
	n->unc_tail = &n->unc;
	pthread_mutex_lock(&p->nodes_lock);
	refresh_paths(p, n->fileid, path);
	n->next = p->nodes;
	if (p->nodes)
		p->nodes->prev = n;
	p->nodes = n;
	slot = hash_slot(p, n->fileid);
	n->hnext = *slot;
	*slot = n;
	pthread_mutex_unlock(&p->nodes_lock);
	*out = n;
	return 0;
}

static void node_unref(struct be_nfs *p, struct be_node *n)
{
	struct be_node **pp;

	pthread_mutex_lock(&p->nodes_lock);
	if (--n->refs) {
		pthread_mutex_unlock(&p->nodes_lock);
		return;
	}
	if (n->prev)
		n->prev->next = n->next;
	else
		p->nodes = n->next;
	if (n->next)
		n->next->prev = n->prev;
	for (pp = hash_slot(p, n->fileid); *pp != n; pp = &(*pp)->hnext)
		;
	*pp = n->hnext;
	pthread_mutex_unlock(&p->nodes_lock);
	if (n->unc)
		log_err("nfs: fileid %" PRIu64 ": uncommitted writes dropped "
			"with the last reference (a failed COMMIT at close "
			"was reported)", n->fileid);
	nfs_unc_free(p, n->unc);
	pthread_mutex_destroy(&n->unc_lock);
	pthread_rwlock_destroy(&n->resend_lock);
	free(n->path);
	free(n);
}

/* stat path and make a node of it (path is taken over). */
static int node_at(struct be_nfs *p, char *path, struct be_node **out,
		   struct stat *st)
{
	struct stat tmp;
	int rc;

	if (!st)
		st = &tmp;
	rc = path_stat(p, path, st);
	if (rc) {
		free(path);
		return rc;
	}
	return node_new(p, path, st, out);
}

static int nfs_lookup_op(struct backend *be, struct be_node *parent,
			 const char *name, struct be_node **out,
			 struct stat *st)
{
	struct be_nfs *p = npriv(be);
	char *path;
	int rc = node_path(p, parent, name, &path);

	if (rc)
		return rc;
	return node_at(p, path, out, st);
}

static void nfs_node_put(struct backend *be, struct be_node *node)
{
	if (node)
		node_unref(npriv(be), node);
}

static int nfs_root(struct backend *be, struct be_node **out,
		    struct stat *st)
{
	char *path = strdup("/");

	if (!path)
		return -ENOMEM;
	return node_at(npriv(be), path, out, st);
}

/* getattr by path, checked against the node's fileid. */
static int node_getattr(struct be_nfs *p, struct be_node *node,
			struct stat *st)
{
	char *path;
	int rc = node_path(p, node, NULL, &path);

	if (rc)
		return rc;
	rc = path_stat(p, path, st);
	if (!rc && st->st_ino != node->fileid) {
		log_info("nfs: %s is now fileid %" PRIu64 ", not %" PRIu64
			 " (replaced by another client): stale",
			 path, (uint64_t)st->st_ino, node->fileid);
		rc = -ESTALE;
	}
	free(path);
	return rc;
}

static int nfs_getattr(struct backend *be, struct be_node *node,
		       struct stat *st)
{
	return node_getattr(npriv(be), node, st);
}

/* ---- attributes -------------------------------------------------------- */

/* The atime and mtime a setattr asks for (NFS has no "omit": keep cur). */
static void wanted_times(const struct stat *attr, int to_set,
			 const struct stat *cur, struct timespec ts[2])
{
	ts[0] = cur->st_atim;
	ts[1] = cur->st_mtim;
	if (to_set & (CV_SET_ATIME_NOW | CV_SET_MTIME_NOW)) {
		struct timespec now;

		clock_gettime(CLOCK_REALTIME, &now);
		if (to_set & CV_SET_ATIME_NOW)
			ts[0] = now;
		if (to_set & CV_SET_MTIME_NOW)
			ts[1] = now;
	}
	if (to_set & CV_SET_ATIME && !(to_set & CV_SET_ATIME_NOW))
		ts[0] = attr->st_atim;
	if (to_set & CV_SET_MTIME && !(to_set & CV_SET_MTIME_NOW))
		ts[1] = attr->st_mtim;
}

static int set_times(struct be_nfs *p, const char *path,
		     const struct stat *attr, int to_set,
		     const struct stat *cur)
{
	struct timespec ts[2];
	struct timeval tv[2];
	int rc, i;

	wanted_times(attr, to_set, cur, ts);
	for (i = 0; i < 2; i++) {
		tv[i].tv_sec = ts[i].tv_sec;
		tv[i].tv_usec = ts[i].tv_nsec / 1000;
	}
	NFS_CALL_ON(p, rc, true, "utimes", path, nfs_lutimes(c->nfs, path, tv));
	return rc;
}

#define CV_SET_TIMES \
	(CV_SET_ATIME | CV_SET_MTIME | CV_SET_ATIME_NOW | CV_SET_MTIME_NOW)

/*
 * NFSv4 mode, owner and times of a directory or symlink: one raw SETATTR
 * of the object itself.  libnfs 4.0 OPENs the object by path for its
 * SETATTR, which fails on a directory (EISDIR) and follows a symlink,
 * so lutimes or lchown of a link would change its target.  Timestamps to
 * the microsecond, as with libnfs's calls on other objects.
 */
static int raw4_setattr(struct be_nfs *p, const char *path,
			const struct stat *attr, int to_set,
			const struct stat *cur)
{
	struct nfs4_sattr sa = { .mode = -1, .uid = -1, .gid = -1 };
	int rc;

	if (to_set & CV_SET_MODE)
		sa.mode = (int)(attr->st_mode & 07777);
	if (to_set & CV_SET_UID)
		sa.uid = (int)attr->st_uid;
	if (to_set & CV_SET_GID)
		sa.gid = (int)attr->st_gid;
	if (to_set & CV_SET_TIMES) {
		struct timespec ts[2];

		wanted_times(attr, to_set, cur, ts);
		sa.times = true;
		sa.atime = ts[0];
		sa.mtime = ts[1];
		sa.atime.tv_nsec -= sa.atime.tv_nsec % 1000;
		sa.mtime.tv_nsec -= sa.mtime.tv_nsec % 1000;
	}
	NFS_CALL_ON(p, rc, true, "setattr", path, nfs4_raw_setattr(p, c, path, &sa));
	return rc;
}

static int nfs_setattr(struct backend *be, struct be_node *node,
		       struct be_file *file, const struct stat *attr,
		       int to_set, struct stat *st)
{
	struct be_nfs *p = npriv(be);
	struct stat cur;
	char *path;
	int rc;

	rc = node_path(p, node, NULL, &path);
	if (rc)
		return rc;
	rc = nfs_getattr(be, node, &cur);
	if (!rc && p->version == 4 &&
	    (S_ISDIR(cur.st_mode) || S_ISLNK(cur.st_mode)) &&
	    (to_set & (CV_SET_MODE | CV_SET_UID | CV_SET_GID | CV_SET_TIMES))) {
		rc = raw4_setattr(p, path, attr, to_set, &cur);
		to_set &= ~(CV_SET_MODE | CV_SET_UID | CV_SET_GID |
			    CV_SET_TIMES);
	}
	if (!rc && (to_set & CV_SET_MODE))
		NFS_CALL_ON(p, rc, true, "chmod", path,
			 nfs_lchmod(c->nfs, path, attr->st_mode & 07777));
	if (!rc && (to_set & (CV_SET_UID | CV_SET_GID))) {
		int uid = (to_set & CV_SET_UID) ? (int)attr->st_uid : -1;
		int gid = (to_set & CV_SET_GID) ? (int)attr->st_gid : -1;

		NFS_CALL_ON(p, rc, true, "chown", path,
			 nfs_lchown(c->nfs, path, uid, gid));
	}
	if (!rc && (to_set & CV_SET_SIZE)) {
		if (S_ISDIR(cur.st_mode))
			rc = -EISDIR;
		else if (node_has_unc(node))
			rc = file ? file_commit(p, file)
				  : nfs_sync_node_op(be, node);
		if (rc || S_ISDIR(cur.st_mode))
			;
		else
			NFS_CALL_ON(p, rc, true, "truncate", path,
				 nfs_truncate(c->nfs, path,
					      (uint64_t)attr->st_size));
	}
	if (!rc && (to_set & CV_SET_TIMES))
		rc = set_times(p, path, attr, to_set, &cur);
	free(path);
	if (!rc)
		rc = nfs_getattr(be, node, st);
	return rc;
}

/* ---- open files ---------------------------------------------------------- */

static int file_new(struct be_nfs *p, struct be_node *node, int flags,
		    struct be_file **out)
{
	struct be_file *f = calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	f->fh = calloc((size_t)p->nconns, sizeof(*f->fh));
	f->gen = calloc((size_t)p->nconns, sizeof(*f->gen));
	if (!f->fh || !f->gen) {
		free(f->fh);
		free(f->gen);
		free(f);
		return -ENOMEM;
	}
	f->flags = flags & (O_ACCMODE | O_APPEND | O_SYNC | O_DSYNC);
	f->node = node;
	pthread_mutex_lock(&p->nodes_lock);
	node->refs++;
	node->nopen++;
	pthread_mutex_unlock(&p->nodes_lock);
	*out = f;
	return 0;
}

/*
 * The file handle of f on context c (locked by the caller), opened by
 * path on first use and checked to be the same object.
 */
static int file_fh(struct be_nfs *p, struct nfs_conn *c, struct be_file *f,
		   struct nfsfh **out)
{
	struct nfs_stat_64 s;
	struct nfsfh *fh;
	char *path;
	int i = c->idx, rc;

	if (f->fh[i] && f->gen[i] == c->gen) {
		*out = f->fh[i];
		return 0;
	}
	f->fh[i] = NULL; /* belonged to a dropped context */
	rc = node_path(p, f->node, NULL, &path);
	if (rc)
		return rc;
	rc = nfs_open(c->nfs, path, f->flags, &fh);
	if (!rc) {
		rc = nfs_fstat64(c->nfs, fh, &s);
		if (!rc && s.nfs_ino != f->node->fileid) {
			if (!atomic_exchange(&f->node->gone_logged, true))
				log_err("nfs: reopening %s found fileid %" PRIu64
					", not %" PRIu64 ": fileid %" PRIu64
					" is gone (stale); its open descriptors "
					"fail with ESTALE", path,
					(uint64_t)s.nfs_ino, f->node->fileid,
					f->node->fileid);
			rc = -ESTALE;
		}
		if (rc)
			nfs_close(c->nfs, fh);
	}
	free(path);
	if (rc)
		return rc;
	f->fh[i] = fh;
	f->gen[i] = c->gen;
	*out = fh;
	return 0;
}

enum file_op { FOP_READ, FOP_WRITE, FOP_COMMIT, FOP_TRUNC };

struct file_call {
	enum file_op op;
	void *buf;
	uint64_t off, len;
	int stable;	      /* FOP_WRITE: stable_how to ask for */
	struct nfs_wres wres; /* WRITE and COMMIT: the reply */
};

/* The data-moving part of file_do(). */
static int fh_do(struct be_nfs *p, struct nfs_conn *c, struct nfsfh *fh,
		 struct file_call *fc)
{
	switch (fc->op) {
	case FOP_READ:
		return nfs_pread(c->nfs, fh, fc->off, fc->len, fc->buf);
	case FOP_WRITE:
		return nfs_raw_write(p, c, fh, fc->off, fc->buf,
				     (uint32_t)fc->len, fc->stable,
				     &fc->wres);
	case FOP_COMMIT:
		return nfs_raw_commit(p, c, fh, &fc->wres);
	case FOP_TRUNC:
		return nfs_ftruncate(c->nfs, fh, fc->off);
	}
	return -EINVAL;
}

/* One call on f's handle on c; a stale handle is reopened once. */
static int file_do(struct be_nfs *p, struct nfs_conn *c, struct be_file *f,
		   struct file_call *fc)
{
	struct nfsfh *fh;
	int rc, try;

	for (try = 0; try < 2; try++) {
		rc = file_fh(p, c, f, &fh);
		if (rc)
			return rc;
		rc = fh_do(p, c, fh, fc);
		if (rc != -ESTALE)
			break;
		log_warn("nfs: stale file handle for fileid %" PRIu64
			 ": looking it up again", f->node->fileid);
		nfs_close(c->nfs, fh);
		f->fh[c->idx] = NULL;
	}
	if (rc == -ESTALE && try == 2)
		log_err("nfs: fileid %" PRIu64 " stays stale after a new "
			"lookup", f->node->fileid);
	return rc;
}

static int file_call(struct be_nfs *p, struct be_file *f,
		     struct file_call *fc, const char *what)
{
	char obj[32];
	int rc;

	snprintf(obj, sizeof(obj), "fileid %" PRIu64, f->node->fileid);
	/* READ, WRITE at an offset, COMMIT and SETATTR are idempotent */
	NFS_CALL_ON(p, rc, true, what, obj, file_do(p, c, f, fc));
	return rc;
}

static int nfs_open_op(struct backend *be, struct be_node *node, int flags,
		       struct be_file **out)
{
	struct be_nfs *p = npriv(be);
	struct file_call fc = { .op = FOP_TRUNC };
	char *path;
	int rc;

	rc = node_path(p, node, NULL, &path);
	if (rc)
		return rc;
	rc = file_new(p, node, flags, out);
	if (rc) {
		free(path);
		return rc;
	}
	/* open on one context now: permission and existence errors; a
	 * truncate first commits kept writes, which a rewrite after a
	 * server restart would otherwise put back over it */
	if ((flags & O_TRUNC) && node_has_unc(node))
		rc = file_commit(p, *out);
	if (rc)
		;
	else if (flags & O_TRUNC)
		rc = file_call(p, *out, &fc, "open+truncate");
	else
		NFS_CALL_ON(p, rc, true, "open", path,
			    file_fh(p, c, *out, &(struct nfsfh *){ NULL }));
	free(path);
	if (rc) {
		be->ops->release(be, *out);
		*out = NULL;
	}
	return rc;
}

static ssize_t nfs_read_op(struct backend *be, struct be_file *file,
			   void *buf, size_t size, off_t off)
{
	struct be_nfs *p = npriv(be);
	size_t done = 0;
	int rc = 0;

	while (done < size) {
		struct file_call fc = {
			.op = FOP_READ,
			.buf = (char *)buf + done,
			.off = (uint64_t)off + done,
			.len = size - done < p->readmax ? size - done
							 : p->readmax,
		};

		rc = file_call(p, file, &fc, "read");
		if (rc <= 0)
			break;
		done += (size_t)rc;
		if ((uint64_t)rc < fc.len)
			break; /* end of file */
	}
	return done ? (ssize_t)done : rc;
}

/* ---- durability: UNSTABLE writes, COMMIT and the write verifier ---------- */

static bool node_has_unc(struct be_node *n)
{
	bool any;

	pthread_mutex_lock(&n->unc_lock);
	any = n->unc != NULL;
	pthread_mutex_unlock(&n->unc_lock);
	return any;
}

/* Rewrite list, oldest first, FILE_SYNC.  Returns 0 or -errno. */
static int rewrite_stable(struct be_nfs *p, struct be_file *f,
			  struct nfs_extent *list)
{
	struct nfs_extent *e;
	uint32_t done;
	int rc = 0;

	for (e = list; e && !rc; e = e->next) {
		for (done = 0; done < e->len && !rc;) {
			struct file_call fc = {
				.op = FOP_WRITE,
				.buf = e->data + done,
				.off = e->off + done,
				.len = e->len - done,
				.stable = BE_NFS_FILE_SYNC,
			};

			rc = file_call(p, f, &fc, "rewrite");
			if (rc > 0)
				done += (uint32_t)rc;
			rc = rc > 0 ? 0 : rc ? rc : -EIO;
		}
	}
	return rc;
}

/*
 * A COMMIT answered with a verifier that some kept writes were not made
 * under: the server restarted since, and what it had not yet written to
 * stable storage is gone.  Rewrite every kept write of the node FILE_SYNC
 * (list first, then any queued since: oldest first, so overlapping
 * writes end as the application left them) with no WRITE in flight.
 */
static int commit_resend(struct be_nfs *p, struct be_file *f,
			 struct nfs_extent *list)
{
	struct be_node *n = f->node;
	unsigned long nth = atomic_fetch_add(&p->verf_resends, 1) + 1;
	struct nfs_extent *e;
	size_t bytes = 0;
	int rc;

	pthread_rwlock_wrlock(&n->resend_lock);
	nfs_unc_putback(n, list);
	list = nfs_unc_take(n);
	for (e = list; e; e = e->next)
		bytes += e->len;
	log_warn("nfs: COMMIT of fileid %" PRIu64 " returned a new write "
		 "verifier: the server restarted and may have lost unstable "
		 "writes; rewriting %zu bytes FILE_SYNC (verifier change %lu)",
		 n->fileid, bytes, nth);
	rc = rewrite_stable(p, f, list);
	if (rc)
		nfs_unc_putback(n, list); /* kept for the next fsync */
	else
		nfs_unc_free(p, list);
	pthread_rwlock_unlock(&n->resend_lock);
	if (rc)
		log_err("nfs: rewriting fileid %" PRIu64 " after a server "
			"restart failed: %s; fsync fails until it succeeds",
			n->fileid, strerror(-rc));
	return rc;
}

/*
 * fsync: COMMIT, then check the verifier against that of every write
 * kept since the last COMMIT.  COMMIT is per file on the server: one
 * covers writes from all contexts.
 */
static int file_commit(struct be_nfs *p, struct be_file *f)
{
	struct file_call fc = { .op = FOP_COMMIT };
	struct nfs_extent *list;
	int rc;

	list = nfs_unc_take(f->node);
	rc = file_call(p, f, &fc, "commit");
	if (rc) {
		nfs_unc_putback(f->node, list);
		return rc;
	}
	if (!nfs_unc_all_match(list, fc.wres.verf))
		return commit_resend(p, f, list);
	nfs_unc_free(p, list);
	return 0;
}

/* O_SYNC and O_DSYNC writes ask the server for stable storage at once. */
static int write_stable(const struct be_file *f)
{
	if ((f->flags & O_SYNC) == O_SYNC)
		return BE_NFS_FILE_SYNC;
	if (f->flags & O_DSYNC)
		return BE_NFS_DATA_SYNC;
	return BE_NFS_UNSTABLE;
}

/* One WRITE; an UNSTABLE one is kept until a COMMIT matches it. */
static int write_chunk(struct be_nfs *p, struct be_file *f,
		       struct file_call *fc)
{
	int rc = file_call(p, f, fc, "write");

	if (rc <= 0 || fc->wres.committed != BE_NFS_UNSTABLE)
		return rc;
	if (!nfs_unc_add(p, f->node, fc->off, fc->buf, (uint32_t)rc,
			 fc->wres.verf))
		return rc;
	/* no memory for the copy: make this one stable instead */
	fc->stable = BE_NFS_FILE_SYNC;
	fc->len = (uint64_t)rc;
	return file_call(p, f, fc, "write");
}

static ssize_t nfs_write_op(struct backend *be, struct be_file *file,
			    const void *buf, size_t size, off_t off)
{
	struct be_nfs *p = npriv(be);
	size_t done = 0;
	int rc = 0;

	pthread_rwlock_rdlock(&file->node->resend_lock);
	while (done < size) {
		struct file_call fc = {
			.op = FOP_WRITE,
			.buf = (char *)buf + done,
			.off = (uint64_t)off + done,
			.len = size - done < p->writemax ? size - done
							  : p->writemax,
			.stable = write_stable(file),
		};

		rc = write_chunk(p, file, &fc);
		if (rc <= 0)
			break;
		done += (size_t)rc;
	}
	pthread_rwlock_unlock(&file->node->resend_lock);
	/* bound the copies: past wbuf= MiB, COMMIT (errors stay for fsync) */
	if (done && atomic_load(&p->unc_bytes) > p->unc_max)
		(void)file_commit(p, file);
	return done ? (ssize_t)done : rc;
}

/* close: COMMIT what this node wrote unstable, as NFS clients do. */
static int nfs_flush_op(struct backend *be, struct be_file *file)
{
	if (!node_has_unc(file->node))
		return 0;
	return file_commit(npriv(be), file);
}

static int nfs_fsync_op(struct backend *be, struct be_file *file,
			int datasync)
{
	return file_commit(npriv(be), file);
}

static int nfs_fallocate_op(struct backend *be, struct be_file *file,
			    int mode, off_t off, off_t len)
{
	return -EOPNOTSUPP;
}

/* No hole information over NFSv3/libnfs: all data, as generic_file_llseek. */
static off_t nfs_lseek_op(struct backend *be, struct be_file *file, off_t off,
			  int whence)
{
	struct stat st;
	int rc = nfs_getattr(be, file->node, &st);

	if (rc)
		return rc;
	if (off < 0 || off >= st.st_size)
		return -ENXIO;
	if (whence == SEEK_DATA)
		return off;
	if (whence == SEEK_HOLE)
		return st.st_size;
	return -EINVAL;
}

static void unlink_orphan(struct be_nfs *p, struct be_node *n)
{
	char *path = NULL;
	int rc;

	pthread_mutex_lock(&p->nodes_lock);
	if (n->orphan && !n->nopen && n->path) {
		path = n->path;
		n->path = NULL;
		n->orphan = false;
	}
	pthread_mutex_unlock(&p->nodes_lock);
	if (!path)
		return;
	NFS_CALL_ON(p, rc, true, "unlink orphan", path, nfs_unlink(c->nfs, path));
	if (rc && rc != -ENOENT)
		log_warn("nfs: cannot remove %s after its last close: %s",
			 path, strerror(-rc));
	free(path);
}

static void nfs_release_op(struct backend *be, struct be_file *f)
{
	struct be_nfs *p = npriv(be);
	bool last;
	int i, rc;

	pthread_mutex_lock(&p->nodes_lock);
	last = f->node->nopen == 1;
	pthread_mutex_unlock(&p->nodes_lock);
	if (last && node_has_unc(f->node)) {
		rc = file_commit(p, f);
		if (rc)
			log_err("nfs: fileid %" PRIu64 ": COMMIT at last close "
				"failed: %s; unsynced writes may be lost",
				f->node->fileid, strerror(-rc));
	}
	for (i = 0; i < p->nconns; i++) {
		struct nfs_conn *c = &p->conns[i];

		if (!f->fh[i])
			continue;
		pthread_mutex_lock(&c->lock);
		if (c->nfs && f->gen[i] == c->gen)
			nfs_close(c->nfs, f->fh[i]);
		pthread_mutex_unlock(&c->lock);
	}
	pthread_mutex_lock(&p->nodes_lock);
	f->node->nopen--;
	pthread_mutex_unlock(&p->nodes_lock);
	unlink_orphan(p, f->node);
	node_unref(p, f->node);
	free(f->fh);
	free(f->gen);
	free(f);
}

static int nfs_sync_node_op(struct backend *be, struct be_node *node)
{
	struct be_file *f;
	int rc;

	if (node->type != S_IFREG)
		return 0; /* NFS directory operations are synchronous */
	rc = nfs_open_op(be, node, O_RDONLY, &f);
	if (rc)
		return rc;
	rc = nfs_fsync_op(be, f, 0);
	nfs_release_op(be, f);
	return rc;
}

/* ---- creating and removing names ---------------------------------------- */

/* Give a new object to the caller, as if created with its fsuid. */
static int give_to(struct be_nfs *p, struct be_node *parent, const char *path,
		   const struct cv_cred *cred)
{
	struct stat dst;
	int gid = (int)cred->gid, rc;

	if (!node_getattr(p, parent, &dst) && (dst.st_mode & S_ISGID))
		gid = -1; /* setgid directory: keep its group */
	if (cred->uid == 0 && (gid == 0 || gid == -1))
		return 0; /* libnfs speaks as root already */
	NFS_CALL_ON(p, rc, true, "chown new", path,
		 nfs_lchown(c->nfs, path, (int)cred->uid, gid));
	return rc;
}

/* After creating path (taken over): chown, then make a node of it. */
static int finish_create(struct be_nfs *p, struct be_node *parent,
			 char *path, int rc, const struct cv_cred *cred,
			 struct be_node **out, struct stat *st)
{
	/* rc: the creating call's result; path is taken over either way */
	if (!rc)
		rc = give_to(p, parent, path, cred);
	if (rc) {
		free(path);
		return rc;
	}
	return node_at(p, path, out, st);
}

/*
 * CREATE, then let the handle go: an open file gets its handles per
 * context on first use.  libnfs 4.0 drops the mode of an NFSv4 CREATE
 * (the file comes out 0600): set it on the new handle (v4).  An NFSv4
 * exclusive create keeps its verifier in the times (RFC 7530 16.16.5)
 * until the client sets them: set them to now.
 */
static int create_close(struct nfs_context *nfs, const char *path, int flags,
			int mode, bool v4)
{
	struct nfsfh *fh;
	int rc = nfs_create(nfs, path, O_RDWR | flags, mode, &fh);

	if (rc)
		return rc;
	if (v4)
		rc = nfs_fchmod(nfs, fh, mode);
	if (!rc && v4 && (flags & O_EXCL)) {
		struct timeval now[2];

		gettimeofday(&now[0], NULL);
		now[1] = now[0];
		rc = nfs_utimes(nfs, path, now);
	}
	nfs_close(nfs, fh);
	return rc;
}

static int nfs_create_op(struct backend *be, struct be_node *parent,
			 const char *name, mode_t mode, int flags,
			 const struct cv_cred *cred, struct be_node **node,
			 struct stat *st, struct be_file **out)
{
	struct be_nfs *p = npriv(be);
	char *path;
	int rc;

	rc = node_path(p, parent, name, &path);
	if (rc)
		return rc;
	/* CREATE with O_EXCL is not idempotent: no blind retry */
	NFS_CALL_ON(p, rc, !(flags & O_EXCL), "create", path,
		 create_close(c->nfs, path, flags & (O_EXCL | O_TRUNC),
			      (int)(mode & 07777), p->version == 4));
	rc = finish_create(p, parent, path, rc, cred, node, st);
	if (rc)
		return rc;
	rc = file_new(p, *node, flags, out);
	if (rc) {
		node_unref(p, *node);
		*node = NULL;
	}
	return rc;
}

static int nfs_mkdir_op(struct backend *be, struct be_node *parent,
			const char *name, mode_t mode,
			const struct cv_cred *cred, struct be_node **out,
			struct stat *st)
{
	struct be_nfs *p = npriv(be);
	char *path;
	int rc = node_path(p, parent, name, &path);

	if (rc)
		return rc;
	NFS_CALL_ON(p, rc, false, "mkdir", path,
		 nfs_mkdir2(c->nfs, path, (int)(mode & 07777)));
	return finish_create(p, parent, path, rc, cred, out, st);
}

static int nfs_mknod_op(struct backend *be, struct be_node *parent,
			const char *name, mode_t mode, dev_t rdev,
			const struct cv_cred *cred, struct be_node **out,
			struct stat *st)
{
	struct be_nfs *p = npriv(be);
	char *path;
	int rc = node_path(p, parent, name, &path);

	if (rc)
		return rc;
	if (p->version == 4 && (S_ISFIFO(mode) || S_ISSOCK(mode))) {
		/* libnfs 4.0 sends NFSv4 CREATE for devices only */
		log_info("nfs: cannot create the FIFO or socket %s over "
			 "NFSv4 through libnfs: EPERM", path);
		free(path);
		return -EPERM;
	}
	if (S_ISREG(mode))
		NFS_CALL_ON(p, rc, false, "create", path,
			 create_close(c->nfs, path, O_EXCL,
				      (int)(mode & 07777), p->version == 4));
	else
		NFS_CALL_ON(p, rc, false, "mknod", path,
			 nfs_mknod(c->nfs, path, (int)mode, (int)rdev));
	return finish_create(p, parent, path, rc, cred, out, st);
}

static int nfs_symlink_op(struct backend *be, const char *target,
			  struct be_node *parent, const char *name,
			  const struct cv_cred *cred, struct be_node **out,
			  struct stat *st)
{
	struct be_nfs *p = npriv(be);
	char *path;
	int rc = node_path(p, parent, name, &path);

	if (rc)
		return rc;
	NFS_CALL_ON(p, rc, false, "symlink", path,
		 nfs_symlink(c->nfs, target, path));
	return finish_create(p, parent, path, rc, cred, out, st);
}

static int nfs_link_op(struct backend *be, struct be_node *node,
		       struct be_node *newparent, const char *newname,
		       struct stat *st)
{
	struct be_nfs *p = npriv(be);
	char *from, *to;
	int rc = node_path(p, node, NULL, &from);

	if (rc)
		return rc;
	rc = node_path(p, newparent, newname, &to);
	if (!rc) {
		NFS_CALL_ON(p, rc, false, "link", from, nfs_link(c->nfs, from, to));
		free(to);
	}
	free(from);
	return rc ? rc : node_getattr(p, node, st);
}

/* Rewrite the paths of live nodes at or below from to be below to. */
static void paths_moved(struct be_nfs *p, const char *from, const char *to)
{
	size_t fl = strlen(from);
	struct be_node *n;
	char *np;

	pthread_mutex_lock(&p->nodes_lock);
	for (n = p->nodes; n; n = n->next) {
		if (!n->path || strncmp(n->path, from, fl) ||
		    (n->path[fl] && n->path[fl] != '/'))
			continue;
		if (asprintf(&np, "%s%s", to, n->path + fl) < 0) {
			free(n->path);
			n->path = NULL; /* stale rather than wrong */
			continue;
		}
		free(n->path);
		n->path = np;
	}
	pthread_mutex_unlock(&p->nodes_lock);
}

/* The node of an open file currently named path, or NULL. */
static struct be_node *open_node_at(struct be_nfs *p, const char *path)
{
	struct be_node *n;

	for (n = p->nodes; n; n = n->next)
		if (n->nopen && n->path && !strcmp(n->path, path))
			return n;
	return NULL;
}

/*
 * Before path is removed or replaced: if a file open here is named path,
 * move it to a hidden name so its data stays reachable until the last
 * close (the server knows nothing of our open files).  Returns 1 if it
 * did (path is then gone), 0 if nothing is open there, or -errno.
 */
static int orphan_if_open(struct be_nfs *p, const char *path)
{
	struct be_node *n;
	uint64_t fileid, seq;
	char *hidden;
	int rc;

	pthread_mutex_lock(&p->nodes_lock);
	n = open_node_at(p, path);
	fileid = n ? n->fileid : 0;
	seq = ++p->orphan_seq;
	pthread_mutex_unlock(&p->nodes_lock);
	if (!n)
		return 0;
	if (asprintf(&hidden, "/%s/orphan.%" PRIu64 ".%d.%" PRIu64,
		     CV_META_DIR, fileid, (int)getpid(), seq) < 0)
		return -ENOMEM;
	NFS_CALL_ON(p, rc, false, "rename to orphan", path,
		 nfs_rename(c->nfs, path, hidden));
	if (!rc) {
		paths_moved(p, path, hidden);
		pthread_mutex_lock(&p->nodes_lock);
		n = open_node_at(p, hidden);
		if (n)
			n->orphan = true;
		pthread_mutex_unlock(&p->nodes_lock);
	}
	free(hidden);
	return rc ? rc : 1;
}

/* Forget the paths of nodes named path (after it was removed). */
static void path_removed(struct be_nfs *p, const char *path)
{
	struct be_node *n;

	pthread_mutex_lock(&p->nodes_lock);
	for (n = p->nodes; n; n = n->next)
		if (n->path && !strcmp(n->path, path)) {
			free(n->path);
			n->path = NULL;
		}
	pthread_mutex_unlock(&p->nodes_lock);
}

static int nfs_unlink_op(struct backend *be, struct be_node *parent,
			 const char *name)
{
	struct be_nfs *p = npriv(be);
	struct stat st;
	char *path;
	int rc = node_path(p, parent, name, &path);

	if (rc)
		return rc;
	rc = path_stat(p, path, &st);
	if (!rc && S_ISDIR(st.st_mode))
		rc = -EISDIR;
	if (!rc && st.st_nlink <= 1)
		rc = orphan_if_open(p, path);
	if (!rc)
		NFS_CALL_ON(p, rc, false, "remove", path, nfs_unlink(c->nfs, path));
	if (!rc)
		path_removed(p, path);
	if (rc == 1)
		rc = 0;
	free(path);
	return rc;
}

static int nfs_rmdir_op(struct backend *be, struct be_node *parent,
			const char *name)
{
	struct be_nfs *p = npriv(be);
	char *path;
	int rc = node_path(p, parent, name, &path);

	if (rc)
		return rc;
	NFS_CALL_ON(p, rc, false, "rmdir", path, nfs_rmdir(c->nfs, path));
	if (!rc)
		path_removed(p, path);
	free(path);
	return rc;
}

static int do_rename(struct be_nfs *p, const char *from, const char *to,
		     unsigned flags)
{
	struct stat st;
	int rc;

	/* NOREPLACE has no NFS form: check first (racy against other
	 * clients; ownership serialises writers of one file, not names) */
	if (flags & RENAME_NOREPLACE) {
		rc = path_stat(p, to, &st);
		if (!rc)
			return -EEXIST;
		if (rc != -ENOENT)
			return rc;
	} else if (!path_stat(p, to, &st) && !S_ISDIR(st.st_mode) &&
		   st.st_nlink <= 1 && strcmp(from, to)) {
		rc = orphan_if_open(p, to);
		if (rc < 0)
			return rc;
	}
	NFS_CALL_ON(p, rc, false, "rename", from, nfs_rename(c->nfs, from, to));
	if (!rc && strcmp(from, to)) {
		path_removed(p, to);
		paths_moved(p, from, to);
	}
	return rc;
}

static int nfs_rename_op(struct backend *be, struct be_node *parent,
			 const char *name, struct be_node *newparent,
			 const char *newname, unsigned flags)
{
	struct be_nfs *p = npriv(be);
	char *from, *to;
	int rc;

	if (flags & ~RENAME_NOREPLACE)
		return -EINVAL; /* RENAME_EXCHANGE, WHITEOUT */
	rc = node_path(p, parent, name, &from);
	if (rc)
		return rc;
	rc = node_path(p, newparent, newname, &to);
	if (!rc) {
		rc = do_rename(p, from, to, flags);
		free(to);
	}
	free(from);
	return rc;
}

static ssize_t nfs_readlink_op(struct backend *be, struct be_node *node,
			       char *buf, size_t size)
{
	struct be_nfs *p = npriv(be);
	char tmp[PATH_MAX + 1], *path;
	size_t len;
	int rc = node_path(p, node, NULL, &path);

	if (rc)
		return rc;
	NFS_CALL_ON(p, rc, true, "readlink", path,
		 nfs_readlink(c->nfs, path, tmp, sizeof(tmp)));
	free(path);
	if (rc)
		return rc;
	tmp[PATH_MAX] = '\0';
	len = strlen(tmp);
	if (len > size)
		len = size;
	memcpy(buf, tmp, len);
	return (ssize_t)len;
}

/* ---- directories --------------------------------------------------------- */

/*
 * NFSv3: read the whole directory through libnfs (READDIRPLUS, with the
 * server's cookie verifier).  A listing the server would not continue
 * because the directory changed under it (BAD_COOKIE) is begun again.
 */
static int snap_read3(struct nfs_context *nfs, const char *path,
		      struct dirent_list *out)
{
	struct nfsdirent *e;
	struct nfsdir *dir;
	int pass, rc = 0;

	for (pass = 0; pass < NFS_READDIR_PASSES; pass++) {
		dirent_list_clear(out);
		rc = nfs_opendir(nfs, path, &dir);
		if (!rc)
			break;
		if (!nfs_get_error(nfs) ||
		    !strstr(nfs_get_error(nfs), "BAD_COOKIE"))
			return rc;
		log_debug("nfs: readdir %s: the directory changed during the "
			  "listing (cookie verifier); reading it again", path);
	}
	if (rc) {
		log_warn("nfs: readdir %s: the directory changed during each "
			 "of %d listings; giving up", path, pass);
		return -EBUSY;
	}
	while (!rc && (e = nfs_readdir(nfs, dir)))
		rc = dirent_list_add(out, e->name, strlen(e->name), e->inode,
				     e->type);
	nfs_closedir(nfs, dir);
	return rc;
}

/* Read the whole directory into a snapshot. */
static int snap_read(struct be_nfs *p, struct nfs_conn *c, const char *path,
		     struct dirent_list *out)
{
	int rc = p->version == 4 ? nfs4_raw_readdir(p, c, path, out)
				 : snap_read3(c->nfs, path, out);

	if (rc)
		dirent_list_clear(out);
	return rc;
}

static int dir_snapshot(struct be_nfs *p, struct be_dir *d)
{
	struct dirent_list l = { 0 };
	char *path;
	int rc = node_path(p, d->node, NULL, &path);

	if (rc)
		return rc;
	NFS_CALL_ON(p, rc, true, "readdir", path, snap_read(p, c, path, &l));
	free(path);
	if (rc)
		return rc;
	dirent_snap_free(d->ents, d->n);
	d->ents = l.ents;
	d->n = l.n;
	d->taken = false;
	return 0;
}

static int nfs_opendir_op(struct backend *be, struct be_node *node,
			  struct be_dir **out)
{
	struct be_nfs *p = npriv(be);
	struct be_dir *d = calloc(1, sizeof(*d));
	int rc;

	if (!d)
		return -ENOMEM;
	d->node = node;
	rc = dir_snapshot(p, d);
	if (rc) {
		free(d);
		return rc;
	}
	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_lock(&p->nodes_lock);
	node->refs++;
	pthread_mutex_unlock(&p->nodes_lock);
	*out = d;
	return 0;
}

/* Cookies are snapshot indexes + 1; offset 0 again re-reads (rewinddir). */
static int nfs_readdir_op(struct backend *be, struct be_dir *d, off_t off,
			  be_dirent_fn fn, void *arg)
{
	size_t i;
	int rc = 0;

	pthread_mutex_lock(&d->lock);
	if (off == 0 && d->taken)
		rc = dir_snapshot(npriv(be), d);
	d->taken = true;
	for (i = (size_t)off; !rc && i < d->n; i++)
		if (fn(arg, d->ents[i].name, (ino_t)d->ents[i].ino,
		       d->ents[i].dtype, (off_t)i + 1))
			break;
	pthread_mutex_unlock(&d->lock);
	return rc;
}

static int nfs_fsyncdir_op(struct backend *be, struct be_dir *d,
			   int datasync)
{
	return 0; /* NFSv3/v4 directory operations are synchronous */
}

static void nfs_releasedir_op(struct backend *be, struct be_dir *d)
{
	dirent_snap_free(d->ents, d->n);
	pthread_mutex_destroy(&d->lock);
	node_unref(npriv(be), d->node);
	free(d);
}

static int nfs_statfs_op(struct backend *be, struct be_node *node,
			 struct statvfs *st)
{
	struct be_nfs *p = npriv(be);
	struct nfs_statvfs_64 s;
	int rc;

	NFS_CALL(p, rc, true, "statvfs", nfs_statvfs64(c->nfs, "/", &s));
	if (rc)
		return rc;
	memset(st, 0, sizeof(*st));
	st->f_bsize = s.f_bsize;
	st->f_frsize = s.f_frsize;
	st->f_blocks = s.f_blocks;
	st->f_bfree = s.f_bfree;
	st->f_bavail = s.f_bavail;
	st->f_files = s.f_files;
	st->f_ffree = s.f_ffree;
	st->f_favail = s.f_favail;
	st->f_fsid = s.f_fsid;
	st->f_flag = s.f_flag;
	st->f_namemax = s.f_namemax ? s.f_namemax : NAME_MAX;
	return 0;
}

/* NFSv3 has no extended attributes; libnfs has no NFSv4.2 xattr calls. */
static ssize_t nfs_getxattr_op(struct backend *be, struct be_node *node,
			       const char *name, void *buf, size_t size)
{
	return -EOPNOTSUPP;
}

static int nfs_setxattr_op(struct backend *be, struct be_node *node,
			   const char *name, const void *value, size_t size,
			   int flags)
{
	return -EOPNOTSUPP;
}

static ssize_t nfs_listxattr_op(struct backend *be, struct be_node *node,
				char *buf, size_t size)
{
	return 0;
}

static int nfs_removexattr_op(struct backend *be, struct be_node *node,
			      const char *name)
{
	return -EOPNOTSUPP;
}

/* ---- volume record ----------------------------------------------------- */

#define VOLREC_PATH "/" CV_META_DIR "/" CV_VOLREC_NAME

static int read_small(struct nfs_context *nfs, const char *path, char *buf,
		      size_t size)
{
	struct nfsfh *fh;
	int rc = nfs_open(nfs, path, O_RDONLY, &fh);

	if (rc)
		return rc;
	rc = nfs_pread(nfs, fh, 0, size, buf);
	nfs_close(nfs, fh);
	return rc;
}

static int nfs_vol_read(struct backend *be, struct cv_volrec *rec)
{
	struct be_nfs *p = npriv(be);
	char buf[512];
	struct stat st;
	int rc;

	rc = path_stat(p, "/" CV_META_DIR, &st);
	if (!rc && !S_ISDIR(st.st_mode))
		return -EUCLEAN;
	if (rc)
		return rc;
	NFS_CALL(p, rc, true, "read volume record",
		 read_small(c->nfs, VOLREC_PATH, buf, sizeof(buf) - 1));
	if (rc < 0)
		return rc;
	buf[rc] = '\0';
	return cv_volrec_parse(buf, rec);
}

static int write_synced(struct nfs_context *nfs, const char *path,
			const char *buf, size_t len)
{
	struct nfsfh *fh;
	int rc = nfs_create(nfs, path, O_WRONLY | O_EXCL, 0644, &fh);

	if (rc)
		return rc;
	rc = nfs_pwrite(nfs, fh, 0, len, buf);
	if (rc >= 0)
		rc = (size_t)rc == len ? nfs_fsync(nfs, fh) : -EIO;
	nfs_close(nfs, fh);
	return rc;
}

/* As for dir: write and COMMIT a temporary, LINK it (EEXIST: lost race). */
static int nfs_vol_create(struct backend *be, const struct cv_volrec *rec)
{
	struct be_nfs *p = npriv(be);
	char buf[512], tmp[96];
	struct stat st;
	int len, rc;

	NFS_CALL(p, rc, false, "mkdir " CV_META_DIR,
		 nfs_mkdir2(c->nfs, "/" CV_META_DIR, 0755));
	if (rc && rc != -EEXIST)
		return rc;
	rc = path_stat(p, "/" CV_META_DIR, &st);
	if (!rc && !S_ISDIR(st.st_mode))
		return -EUCLEAN;
	if (rc)
		return rc;
	len = cv_volrec_format(rec, buf, sizeof(buf));
	if (len < 0)
		return len;
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld.%p", VOLREC_PATH,
		 (long)getpid(), (void *)p);
	NFS_CALL(p, rc, false, "write volume record",
		 write_synced(c->nfs, tmp, buf, (size_t)len));
	if (!rc)
		NFS_CALL(p, rc, false, "link volume record",
			 nfs_link(c->nfs, tmp, VOLREC_PATH));
	NFS_CALL(p, len, true, "unlink", nfs_unlink(c->nfs, tmp));
	return rc;
}

/* ---- set-up ------------------------------------------------------------ */

/*
 * Take our own keys (timeout=, conns=) out of the URL's query and copy
 * the rest for libnfs.  Returns 0 or -EINVAL.
 */
static int parse_source(struct be_nfs *p, const char *source)
{
	char *url = strdup(source), *q, *arg, *save, *out;
	long v;

	if (!url)
		return -ENOMEM;
	p->timeout_ms = NFS_DEFAULT_TIMEOUT_S * 1000;
	p->nconns = NFS_DEFAULT_CONNS;
	p->unc_max = (size_t)NFS_DEFAULT_WBUF_MB << 20;
	p->version = 3;
	q = strchr(url, '?');
	if (!q) {
		p->url = url;
		return 0;
	}
	*q++ = '\0';
	out = calloc(1, strlen(source) + 1);
	if (!out) {
		free(url);
		return -ENOMEM;
	}
	strcpy(out, url);
	for (arg = strtok_r(q, "&", &save); arg;
	     arg = strtok_r(NULL, "&", &save)) {
		if (!strncmp(arg, "timeout=", 8) || !strncmp(arg, "conns=", 6)) {
			char *end;

			v = strtol(strchr(arg, '=') + 1, &end, 10);
			if (*end || v < 1 || v > (arg[0] == 't' ? 3600 :
						  NFS_MAX_CONNS))
				goto bad;
			if (arg[0] == 't')
				p->timeout_ms = (int)v * 1000;
			else
				p->nconns = (int)v;
			continue;
		}
		if (!strncmp(arg, "wbuf=", 5)) {
			char *end;

			v = strtol(arg + 5, &end, 10);
			if (*end || v < 1 || v > 4096)
				goto bad;
			p->unc_max = (size_t)v << 20;
			continue;
		}
		if (!strcmp(arg, "version=4"))
			p->version = 4;
		strcat(out, strchr(out, '?') ? "&" : "?");
		strcat(out, arg);
	}
	free(url);
	p->url = out;
	return 0;
bad:
	log_err("nfs: bad value in %s: %s", source, arg);
	free(url);
	free(out);
	return -EINVAL;
}

static dev_t url_dev(const char *url)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (; *url; url++)
		h = (h ^ (unsigned char)*url) * 1099511628211ULL;
	return (dev_t)(h & 0xfffffff);
}

static int nfs_init(struct backend *be, const char *source)
{
	struct be_nfs *p = calloc(1, sizeof(*p));
	int rc;

	if (!p)
		return -ENOMEM;
	rc = parse_source(p, source);
	if (rc)
		goto fail;
	p->dev = url_dev(p->url);
	pthread_mutex_init(&p->nodes_lock, NULL);
	rc = nfs_pool_init(p);
	if (rc)
		goto fail_url;
	log_info("nfs: mounted %s: NFSv%d, rsize %" PRIu64 ", wsize %" PRIu64
		 ", %d contexts, RPC timeout %d s", p->url, p->version,
		 p->readmax, p->writemax, p->nconns, p->timeout_ms / 1000);
	be->priv = p;
	return 0;

fail_url:
	pthread_mutex_destroy(&p->nodes_lock);
	free(p->url);
fail:
	free(p);
	return rc;
}

static void nfs_destroy(struct backend *be)
{
	struct be_nfs *p = npriv(be);

	if (!p)
		return;
	if (atomic_load(&p->verf_resends))
		log_notice("nfs: %lu COMMITs found a new write verifier and "
			   "rewrote unstable writes",
			   atomic_load(&p->verf_resends));
	nfs_pool_destroy(p);
	pthread_mutex_destroy(&p->nodes_lock);
	free(p->url);
	free(p);
	be->priv = NULL;
}

const struct backend_ops be_nfs_ops = {
	.name = "nfs",
	.init = nfs_init,
	.destroy = nfs_destroy,
	.vol_read = nfs_vol_read,
	.vol_create = nfs_vol_create,
	.root = nfs_root,
	.lookup = nfs_lookup_op,
	.node_put = nfs_node_put,
	.getattr = nfs_getattr,
	.setattr = nfs_setattr,
	.open = nfs_open_op,
	.create = nfs_create_op,
	.read = nfs_read_op,
	.write = nfs_write_op,
	.flush = nfs_flush_op,
	.fsync = nfs_fsync_op,
	.fallocate = nfs_fallocate_op,
	.lseek = nfs_lseek_op,
	.release = nfs_release_op,
	.sync_node = nfs_sync_node_op,
	.mkdir = nfs_mkdir_op,
	.mknod = nfs_mknod_op,
	.symlink = nfs_symlink_op,
	.link = nfs_link_op,
	.unlink = nfs_unlink_op,
	.rmdir = nfs_rmdir_op,
	.rename = nfs_rename_op,
	.readlink = nfs_readlink_op,
	.opendir = nfs_opendir_op,
	.readdir = nfs_readdir_op,
	.fsyncdir = nfs_fsyncdir_op,
	.releasedir = nfs_releasedir_op,
	.statfs = nfs_statfs_op,
	.getxattr = nfs_getxattr_op,
	.setxattr = nfs_setxattr_op,
	.listxattr = nfs_listxattr_op,
	.removexattr = nfs_removexattr_op,
};
