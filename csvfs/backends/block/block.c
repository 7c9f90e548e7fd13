// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * block.c - the `block` backend: a csvfs volume on a shared LUN (a block
 * device, or an image file in tests and labs) holding a standard ext4
 * file system whose metadata one node, the volume's coordinator, serves.
 *
 * This node is the coordinator (claim, vol.c): every metadata operation
 * becomes a request to the engine's thread (mq.c); file data goes to the
 * LUN directly (bio.c).  Objects are named by their ext4 inode number,
 * which is also st_ino and the lock manager's file id.
 *
 * Handles: a be_node and a be_file each hold a reference on the inode's
 * struct cvb_inode (bio.c's table), where the map cache and the owner's
 * size live, shared by every handle of that inode on this node.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block_i.h"
#include "lun.h"
#include "vol_i.h"

struct be_node {
	struct cvb_inode *ci; /* immutable; a reference */
};

struct be_file {
	struct cvb_inode *ci; /* immutable; a reference */
	int flags;	      /* immutable: open flags */
};

struct be_dir {
	uint64_t ino; /* immutable */
};

#define CVB_DIRENTS  64
#define CVB_MAP_SEEK 32

static struct cvb_vol *vol(struct backend *be)
{
	return be->priv;
}

static int64_t call(struct backend *be, struct cvb_req *r)
{
	return cvb_call(vol(be), r);
}

static int check_name(const char *name)
{
	if (strlen(name) > 255)
		return -ENAMETOOLONG;
	if (!name[0] || strchr(name, '/'))
		return -EINVAL;
	return 0;
}

static void fix_stat(struct cvb_vol *b, struct stat *st)
{
	st->st_dev = b->dev;
}

static int node_new(struct backend *be, const struct stat *st,
		    struct be_node **out)
{
	struct be_node *n = malloc(sizeof(*n));

	if (!n)
		return -ENOMEM;
	n->ci = cvb_inode_get(vol(be), (uint64_t)st->st_ino);
	if (!n->ci) {
		free(n);
		return -ENOMEM;
	}
	*out = n;
	return 0;
}

/* The answer of a call that gives a new or found object. */
static int node_answer(struct backend *be, struct cvb_req *r, int rc,
		       struct be_node **out, struct stat *st)
{
	if (rc)
		return rc;
	fix_stat(vol(be), &r->st);
	rc = node_new(be, &r->st, out);
	if (!rc) {
		cvb_io_overlay((*out)->ci, &r->st);
		*st = r->st;
	}
	return rc;
}

static int blk_root(struct backend *be, struct be_node **out, struct stat *st)
{
	struct cvb_req r = { .op = CVB_OP_GETATTR, .ino = CVB_ROOT_INO };

	return node_answer(be, &r, (int)call(be, &r), out, st);
}

static int blk_lookup(struct backend *be, struct be_node *parent,
		      const char *name, struct be_node **out, struct stat *st)
{
	struct cvb_req r = { .op = CVB_OP_LOOKUP,
			     .ino = parent->ci->ino,
			     .name = name };
	int rc = check_name(name);

	if (!rc)
		rc = (int)call(be, &r);
	return node_answer(be, &r, rc, out, st);
}

static void blk_node_put(struct backend *be, struct be_node *node)
{
	if (!node)
		return;
	cvb_inode_put(vol(be), node->ci);
	free(node);
}

static int blk_getattr(struct backend *be, struct be_node *node,
		       struct stat *st)
{
	struct cvb_req r = { .op = CVB_OP_GETATTR, .ino = node->ci->ino };
	int rc = (int)call(be, &r);

	if (rc)
		return rc;
	fix_stat(vol(be), &r.st);
	cvb_io_overlay(node->ci, &r.st);
	*st = r.st;
	return 0;
}

/*
 * The owner's size and mtime go to the engine first, so that an
 * explicit size or time set here is the last word.
 */
static int blk_setattr(struct backend *be, struct be_node *node,
		       struct be_file *file, const struct stat *attr,
		       int to_set, struct stat *st)
{
	struct cvb_inode *ci = node->ci;
	struct cvb_req r = { .op = CVB_OP_SETATTR,
			     .ino = ci->ino,
			     .attr = *attr,
			     .to_set = to_set };
	int rc = cvb_io_push(vol(be), ci);

	if (!rc)
		rc = (int)call(be, &r);
	if (rc)
		return rc;
	fix_stat(vol(be), &r.st);
	pthread_mutex_lock(&ci->lock);
	if (to_set & CV_SET_SIZE) {
		ci->size = (uint64_t)r.st.st_size;
		ci->written = false;
	}
	pthread_mutex_unlock(&ci->lock);
	cvb_io_overlay(ci, &r.st);
	*st = r.st;
	return 0;
}

/* ---- open files ------------------------------------------------------- */

static int file_new(struct backend *be, struct cvb_inode *ci, int flags,
		    struct be_file **out)
{
	struct cvb_req ref = { .op = CVB_OP_OPEN_REF, .ino = ci->ino };
	struct cvb_req ga = { .op = CVB_OP_GETATTR, .ino = ci->ino };
	struct be_file *f = malloc(sizeof(*f));
	int rc;

	if (!f)
		return -ENOMEM;
	rc = (int)call(be, &ref);
	if (!rc)
		rc = (int)call(be, &ga);
	if (rc) {
		if (!ref.res) {
			ref.op = CVB_OP_CLOSE_REF;
			call(be, &ref);
		}
		free(f);
		return rc;
	}
	cvb_io_overlay(ci, &ga.st);
	f->ci = cvb_inode_get(vol(be), ci->ino); /* ci is in the table */
	f->flags = flags;
	pthread_mutex_lock(&ci->lock);
	ci->opens++;
	pthread_mutex_unlock(&ci->lock);
	*out = f;
	return 0;
}

static int blk_open(struct backend *be, struct be_node *node, int flags,
		    struct be_file **out)
{
	return file_new(be, node->ci, flags, out);
}

static int blk_create(struct backend *be, struct be_node *parent,
		      const char *name, mode_t mode, int flags,
		      const struct cv_cred *cred, struct be_node **node,
		      struct stat *st, struct be_file **out)
{
	struct cvb_req r = { .op = CVB_OP_MKNOD,
			     .ino = parent->ci->ino,
			     .name = name,
			     .mode = S_IFREG | (mode & 07777),
			     .cred = *cred };
	int rc = check_name(name);

	if (!rc)
		rc = (int)call(be, &r);
	if (rc == -EEXIST && !(flags & O_EXCL)) {
		r.op = CVB_OP_LOOKUP;
		rc = (int)call(be, &r);
		if (!rc && S_ISDIR(r.st.st_mode))
			rc = -EISDIR;
	}
	rc = node_answer(be, &r, rc, node, st);
	if (rc)
		return rc;
	rc = file_new(be, (*node)->ci, flags, out);
	if (rc) {
		blk_node_put(be, *node);
		*node = NULL;
	}
	return rc;
}

static ssize_t blk_read(struct backend *be, struct be_file *file, void *buf,
			size_t size, off_t off)
{
	if (off < 0)
		return -EINVAL;
	return cvb_io_read(vol(be), file->ci, buf, size, (uint64_t)off);
}

static ssize_t blk_write(struct backend *be, struct be_file *file,
			 const void *buf, size_t size, off_t off)
{
	if (off < 0)
		return -EINVAL;
	return cvb_io_write(vol(be), file->ci, buf, size, (uint64_t)off);
}

static int blk_aio_map(struct backend *be, struct be_file *file, off_t off,
		       size_t size, unsigned buf_align, bool write,
		       off_t *dev_off)
{
	uint64_t phys;
	int fd = cvb_lun_fd(vol(be)->lun);

	if (fd < 0)
		return -EOPNOTSUPP; /* iSCSI: no descriptor, the normal path */
	if (off < 0 || cvb_io_pin(vol(be), file->ci, (uint64_t)off, size,
				  buf_align, write, &phys))
		return -1;
	*dev_off = (off_t)phys;
	return fd;
}

static void blk_aio_done(struct backend *be, struct be_file *file, bool write,
			 off_t off, size_t size, ssize_t res)
{
	cvb_io_unpin(file->ci, write, (uint64_t)off, size, res);
}

static int blk_flush(struct backend *be, struct be_file *file)
{
	return cvb_io_push(vol(be), file->ci);
}

/* Data on the LUN (its cache too), then size and metadata committed. */
static int blk_fsync(struct backend *be, struct be_file *file, int datasync)
{
	struct cvb_req r = { .op = CVB_OP_COMMIT };
	int rc;

	rc = cvb_lun_flush(vol(be)->lun);
	if (rc)
		return rc;
	rc = cvb_io_push(vol(be), file->ci);
	if (!rc)
		rc = (int)call(be, &r);
	return rc;
}

static int blk_fallocate(struct backend *be, struct be_file *file, int mode,
			 off_t off, off_t len)
{
	struct cvb_inode *ci = file->ci;
	struct cvb_req r = { .op = CVB_OP_FALLOCATE,
			     .ino = ci->ino,
			     .fmode = mode,
			     .off = (uint64_t)off,
			     .len = (uint64_t)len };
	struct cvb_req ga = { .op = CVB_OP_GETATTR, .ino = ci->ino };
	int rc;

	if (off < 0 || len <= 0)
		return -EINVAL;
	rc = cvb_io_push(vol(be), ci);
	if (!rc)
		rc = (int)call(be, &r);
	cvb_map_drop(ci); /* new blocks, or punched ones (recalled) */
	if (!rc)
		rc = (int)call(be, &ga);
	if (!rc) {
		pthread_mutex_lock(&ci->lock);
		if (!ci->written)
			ci->size = (uint64_t)ga.st.st_size;
		pthread_mutex_unlock(&ci->lock);
	}
	return rc;
}

/* The first extent at or after off that is data (or a hole). */
static off_t blk_lseek(struct backend *be, struct be_file *file, off_t off,
		       int whence)
{
	struct cvb_extent ext[CVB_MAP_SEEK];
	struct cvb_inode *ci = file->ci;
	uint64_t pos = (uint64_t)off, eof;

	if (off < 0 || (whence != SEEK_DATA && whence != SEEK_HOLE))
		return -EINVAL;
	pthread_mutex_lock(&ci->lock);
	eof = ci->size;
	pthread_mutex_unlock(&ci->lock);
	while (pos < eof) {
		struct cvb_req r = { .op = CVB_OP_MAP,
				     .ino = ci->ino,
				     .off = pos,
				     .len = eof - pos,
				     .ext = ext,
				     .max = CVB_MAP_SEEK };
		int rc = (int)call(be, &r);

		if (rc)
			return rc;
		if (!r.n)
			break;
		for (unsigned i = 0; i < r.n; i++) {
			if ((whence == SEEK_DATA) == (ext[i].phys != 0))
				return (off_t)(pos > ext[i].off ? pos
								: ext[i].off);
			pos = ext[i].off + ext[i].len;
		}
	}
	if (whence == SEEK_DATA || (uint64_t)off >= eof)
		return -ENXIO;
	return (off_t)eof; /* the hole at the end of every file */
}

static void blk_release(struct backend *be, struct be_file *file)
{
	struct cvb_req r = { .op = CVB_OP_CLOSE_REF, .ino = file->ci->ino };
	struct cvb_inode *ci = file->ci;

	cvb_io_push(vol(be), ci);
	pthread_mutex_lock(&ci->lock);
	ci->opens--;
	pthread_mutex_unlock(&ci->lock);
	call(be, &r);
	cvb_inode_put(vol(be), ci);
	free(file);
}

static int blk_sync_node(struct backend *be, struct be_node *node)
{
	struct cvb_req r = { .op = CVB_OP_COMMIT };
	int rc = cvb_io_push(vol(be), node->ci);

	if (!rc)
		rc = cvb_lun_flush(vol(be)->lun);
	return rc ? rc : (int)call(be, &r);
}

/* ---- names ------------------------------------------------------------ */

static int blk_mkdir(struct backend *be, struct be_node *parent,
		     const char *name, mode_t mode, const struct cv_cred *cred,
		     struct be_node **out, struct stat *st)
{
	struct cvb_req r = { .op = CVB_OP_MKDIR,
			     .ino = parent->ci->ino,
			     .name = name,
			     .mode = mode,
			     .cred = *cred };
	int rc = check_name(name);

	if (!rc)
		rc = (int)call(be, &r);
	return node_answer(be, &r, rc, out, st);
}

static int blk_mknod(struct backend *be, struct be_node *parent,
		     const char *name, mode_t mode, dev_t rdev,
		     const struct cv_cred *cred, struct be_node **out,
		     struct stat *st)
{
	struct cvb_req r = { .op = CVB_OP_MKNOD,
			     .ino = parent->ci->ino,
			     .name = name,
			     .mode = mode,
			     .rdev = rdev,
			     .cred = *cred };
	int rc = check_name(name);

	if (!rc)
		rc = (int)call(be, &r);
	return node_answer(be, &r, rc, out, st);
}

static int blk_symlink(struct backend *be, const char *target,
		       struct be_node *parent, const char *name,
		       const struct cv_cred *cred, struct be_node **out,
		       struct stat *st)
{
	struct cvb_req r = { .op = CVB_OP_SYMLINK,
			     .ino = parent->ci->ino,
			     .name = name,
			     .name2 = target,
			     .cred = *cred };
	int rc = check_name(name);

	if (!rc && strlen(target) >= PATH_MAX)
		rc = -ENAMETOOLONG;
	if (!rc)
		rc = (int)call(be, &r);
	return node_answer(be, &r, rc, out, st);
}

static int blk_link(struct backend *be, struct be_node *node,
		    struct be_node *newparent, const char *newname,
		    struct stat *st)
{
	struct cvb_req r = { .op = CVB_OP_LINK,
			     .ino = node->ci->ino,
			     .ino2 = newparent->ci->ino,
			     .name2 = newname };
	int rc = check_name(newname);

	if (!rc)
		rc = (int)call(be, &r);
	if (rc)
		return rc;
	fix_stat(vol(be), &r.st);
	cvb_io_overlay(node->ci, &r.st);
	*st = r.st;
	return 0;
}

static int blk_unlink(struct backend *be, struct be_node *parent,
		      const char *name)
{
	struct cvb_req r = { .op = CVB_OP_UNLINK,
			     .ino = parent->ci->ino,
			     .name = name };
	int rc = check_name(name);

	return rc ? rc : (int)call(be, &r);
}

static int blk_rmdir(struct backend *be, struct be_node *parent,
		     const char *name)
{
	struct cvb_req r = { .op = CVB_OP_RMDIR,
			     .ino = parent->ci->ino,
			     .name = name };
	int rc = check_name(name);

	return rc ? rc : (int)call(be, &r);
}

static int blk_rename(struct backend *be, struct be_node *parent,
		      const char *name, struct be_node *newparent,
		      const char *newname, unsigned flags)
{
	struct cvb_req r = { .op = CVB_OP_RENAME,
			     .ino = parent->ci->ino,
			     .name = name,
			     .ino2 = newparent->ci->ino,
			     .name2 = newname,
			     .flags = flags };
	int rc = check_name(name);

	if (!rc)
		rc = check_name(newname);
	return rc ? rc : (int)call(be, &r);
}

static ssize_t blk_readlink(struct backend *be, struct be_node *node, char *buf,
			    size_t size)
{
	struct cvb_req r = { .op = CVB_OP_READLINK,
			     .ino = node->ci->ino,
			     .buf = buf,
			     .bufsize = size };

	return (ssize_t)call(be, &r);
}

/* ---- directories ------------------------------------------------------ */

static int blk_opendir(struct backend *be, struct be_node *node,
		       struct be_dir **out)
{
	struct be_dir *d = malloc(sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->ino = node->ci->ino;
	*out = d;
	return 0;
}

/* Batches of CVB_DIRENTS from the engine, handed to fn here. */
static int blk_readdir(struct backend *be, struct be_dir *d, off_t off,
		       be_dirent_fn fn, void *arg)
{
	struct cvb_dent *ents = malloc(CVB_DIRENTS * sizeof(*ents));
	uint64_t cookie = (uint64_t)off;
	int rc = 0;

	if (!ents)
		return -ENOMEM;
	for (;;) {
		struct cvb_req r = { .op = CVB_OP_READDIR,
				     .ino = d->ino,
				     .off = cookie,
				     .buf = ents,
				     .bufsize = CVB_DIRENTS };
		bool full = false;

		rc = (int)call(be, &r);
		if (rc)
			break;
		for (unsigned i = 0; i < r.n && !full; i++) {
			full = fn(arg, ents[i].name, (ino_t)ents[i].ino,
				  ents[i].type, (off_t)ents[i].next) != 0;
			cookie = ents[i].next;
		}
		if (full || r.n < CVB_DIRENTS)
			break;
	}
	free(ents);
	return rc;
}

static int blk_fsyncdir(struct backend *be, struct be_dir *d, int datasync)
{
	struct cvb_req r = { .op = CVB_OP_COMMIT };

	return (int)call(be, &r);
}

static void blk_releasedir(struct backend *be, struct be_dir *d)
{
	free(d);
}

static int blk_statfs(struct backend *be, struct be_node *node,
		      struct statvfs *st)
{
	struct cvb_req r = { .op = CVB_OP_STATFS };
	int rc = (int)call(be, &r);

	if (!rc)
		*st = r.sv;
	return rc;
}

/* ---- extended attributes ---------------------------------------------- */

static ssize_t blk_getxattr(struct backend *be, struct be_node *node,
			    const char *name, void *buf, size_t size)
{
	struct cvb_req r = { .op = CVB_OP_GETXATTR,
			     .ino = node->ci->ino,
			     .name = name,
			     .buf = buf,
			     .bufsize = size };

	if (!strcmp(name, CVB_XATTR_COORDINATOR))
		return cvb_vol_coordinator(vol(be), buf, size);
	return (ssize_t)call(be, &r);
}

static int blk_setxattr(struct backend *be, struct be_node *node,
			const char *name, const void *value, size_t size,
			int flags)
{
	struct cvb_req r = { .op = CVB_OP_SETXATTR,
			     .ino = node->ci->ino,
			     .name = name,
			     .buf = (void *)value,
			     .bufsize = size,
			     .flags = (unsigned)flags };

	return (int)call(be, &r);
}

static ssize_t blk_listxattr(struct backend *be, struct be_node *node,
			     char *buf, size_t size)
{
	struct cvb_req r = { .op = CVB_OP_LISTXATTR,
			     .ino = node->ci->ino,
			     .buf = buf,
			     .bufsize = size };

	return (ssize_t)call(be, &r);
}

static int blk_removexattr(struct backend *be, struct be_node *node,
			   const char *name)
{
	struct cvb_req r = { .op = CVB_OP_REMOVEXATTR,
			     .ino = node->ci->ino,
			     .name = name };

	return (int)call(be, &r);
}

const struct backend_ops be_block_ops = {
	.name = "block",
	.init = cvb_vol_init,
	.destroy = cvb_vol_destroy,
	.vol_read = cvb_vol_read,
	.vol_create = cvb_vol_create,
	.mkfs = cvb_vol_mkfs,
	.claim = cvb_vol_claim,
	.start = cvb_vol_start,
	.stop = cvb_vol_stop,
	.root = blk_root,
	.lookup = blk_lookup,
	.node_put = blk_node_put,
	.getattr = blk_getattr,
	.setattr = blk_setattr,
	.open = blk_open,
	.create = blk_create,
	.read = blk_read,
	.write = blk_write,
	.aio_map = blk_aio_map,
	.aio_done = blk_aio_done,
	.flush = blk_flush,
	.fsync = blk_fsync,
	.fallocate = blk_fallocate,
	.lseek = blk_lseek,
	.release = blk_release,
	.sync_node = blk_sync_node,
	.mkdir = blk_mkdir,
	.mknod = blk_mknod,
	.symlink = blk_symlink,
	.link = blk_link,
	.unlink = blk_unlink,
	.rmdir = blk_rmdir,
	.rename = blk_rename,
	.readlink = blk_readlink,
	.opendir = blk_opendir,
	.readdir = blk_readdir,
	.fsyncdir = blk_fsyncdir,
	.releasedir = blk_releasedir,
	.statfs = blk_statfs,
	.getxattr = blk_getxattr,
	.setxattr = blk_setxattr,
	.listxattr = blk_listxattr,
	.removexattr = blk_removexattr,
};
