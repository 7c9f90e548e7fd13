// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * meta_ns.c: the namespace of a block volume: lookup, create (mknod,
 * mkdir, symlink), link, unlink, rmdir, readlink, readdir.  Rename and
 * setattr are in meta_rename.c.  Every change runs as one operation
 * (cvb_op_begin/cvb_op_end); the checks that fail (ENOENT, EEXIST, ...)
 * come before the first change.
 *
 * Directories are ext4's linear ones as libext2fs writes them
 * (ext2fs_link/ext2fs_unlink); an indexed directory (made by a kernel)
 * is kept indexed by libext2fs.
 */
#include "meta_i.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

int cvb_check_name(const char *name)
{
	size_t n = strlen(name);

	if (!n)
		return -ENOENT;
	if (n > EXT2_NAME_LEN)
		return -ENAMETOOLONG;
	if (strchr(name, '/'))
		return -EINVAL;
	return 0;
}

int cvb_ftype(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return EXT2_FT_REG_FILE;
	case S_IFDIR:
		return EXT2_FT_DIR;
	case S_IFCHR:
		return EXT2_FT_CHRDEV;
	case S_IFBLK:
		return EXT2_FT_BLKDEV;
	case S_IFIFO:
		return EXT2_FT_FIFO;
	case S_IFSOCK:
		return EXT2_FT_SOCK;
	case S_IFLNK:
		return EXT2_FT_SYMLINK;
	default:
		return EXT2_FT_UNKNOWN;
	}
}

static unsigned ft_to_dtype(int ft)
{
	static const unsigned dt[] = { DT_UNKNOWN, DT_REG,  DT_DIR,  DT_CHR,
				       DT_BLK,	   DT_FIFO, DT_SOCK, DT_LNK };

	return ft >= 0 && ft < 8 ? dt[ft] : DT_UNKNOWN;
}

/* dir must be a directory: its inode in *din when din is not NULL. */
int cvb_get_dir(struct cvb_meta *m, uint64_t dir, struct ext2_inode_large *din)
{
	struct ext2_inode_large tmp;
	int rc = cvb_read_inode(m, dir, din ? din : &tmp);

	if (rc)
		return rc;
	return LINUX_S_ISDIR((din ? din : &tmp)->i_mode) ? 0 : -ENOTDIR;
}

int cvb_dir_lookup(struct cvb_meta *m, uint64_t dir, const char *name,
		   uint64_t *ino)
{
	ext2_ino_t i;
	int rc = cvb_get_dir(m, dir, NULL);

	if (rc)
		return rc;
	if ((rc = cvb_check_name(name)))
		return rc;
	rc = cvb_err(ext2fs_lookup(m->fs, (ext2_ino_t)dir, name,
				   (int)strlen(name), NULL, &i));
	if (!rc)
		*ino = i;
	return rc;
}

int cvb_meta_lookup(struct cvb_meta *m, uint64_t dir, const char *name,
		    struct stat *st)
{
	uint64_t ino;
	int rc = cvb_dir_lookup(m, dir, name, &ino);

	return rc ? rc : cvb_meta_getattr(m, ino, st);
}

/* The name must not exist yet in dir. */
static int check_new(struct cvb_meta *m, uint64_t dir, const char *name)
{
	uint64_t ino;
	int rc = cvb_dir_lookup(m, dir, name, &ino);

	return rc == -ENOENT ? 0 : rc ? rc : -EEXIST;
}

int cvb_link_in(struct cvb_meta *m, uint64_t dir, const char *name,
		uint64_t ino, int ftype)
{
	errcode_t e;

	m->fs_touched = true;
	e = ext2fs_link(m->fs, (ext2_ino_t)dir, name, (ext2_ino_t)ino, ftype);
	if (e == EXT2_ET_DIR_NO_SPACE) {
		e = ext2fs_expand_dir(m->fs, (ext2_ino_t)dir);
		if (!e)
			e = ext2fs_link(m->fs, (ext2_ino_t)dir, name,
					(ext2_ino_t)ino, ftype);
	}
	return cvb_err(e);
}

/* Parent's times to now and its link count moved by delta (ext4's
 * dir_nlink: past EXT2_LINK_MAX a directory counts 1, "many"). */
int cvb_touch_dir(struct cvb_meta *m, uint64_t dir, int delta)
{
	struct ext2_inode_large d;
	struct timespec now;
	int rc = cvb_read_inode(m, dir, &d);

	if (rc)
		return rc;
	cvb_now(&now);
	cvb_set_time(&d, CVB_T_C | CVB_T_M, &now);
	if (delta > 0 && d.i_links_count > 1) {
		if (d.i_links_count + 1 >= EXT2_LINK_MAX &&
		    ext2fs_has_feature_dir_nlink(m->fs->super))
			d.i_links_count = 1;
		else if (d.i_links_count + 1 >= EXT2_LINK_MAX)
			return -EMLINK;
		else
			d.i_links_count++;
	} else if (delta < 0 && d.i_links_count > 2) {
		d.i_links_count--;
	}
	return cvb_write_inode(m, dir, &d);
}

/* A fresh in-memory inode: type and permissions, owner, times now. */
static void init_inode(struct cvb_meta *m, struct ext2_inode_large *in,
		       mode_t mode, const struct cv_cred *cred)
{
	struct timespec now;

	memset(in, 0, sizeof(*in));
	in->i_mode = (uint16_t)mode;
	in->i_uid = (uint16_t)cred->uid;
	in->osd2.linux2.l_i_uid_high = (uint16_t)(cred->uid >> 16);
	in->i_gid = (uint16_t)cred->gid;
	in->osd2.linux2.l_i_gid_high = (uint16_t)(cred->gid >> 16);
	in->i_links_count = 1;
	if (EXT2_INODE_SIZE(m->fs->super) > EXT2_GOOD_OLD_INODE_SIZE)
		in->i_extra_isize = sizeof(*in) - EXT2_GOOD_OLD_INODE_SIZE;
	cvb_now(&now);
	cvb_set_time(in, CVB_T_A | CVB_T_C | CVB_T_M, &now);
	if (in->i_extra_isize >= 24) {
		in->i_crtime = in->i_ctime;
		in->i_crtime_extra = in->i_ctime_extra;
	}
}

/* Write a new inode whole: nothing of the slot's last owner stays
 * (in-inode xattrs past our struct). */
static int write_new_inode(struct cvb_meta *m, uint64_t ino,
			   struct ext2_inode_large *in)
{
	size_t isz = EXT2_INODE_SIZE(m->fs->super);
	uint8_t *buf = calloc(1, isz > sizeof(*in) ? isz : sizeof(*in));
	errcode_t e;

	if (!buf)
		return -ENOMEM;
	memcpy(buf, in, isz < sizeof(*in) ? isz : sizeof(*in));
	m->fs_touched = true;
	e = ext2fs_write_inode_full(m->fs, (ext2_ino_t)ino,
				    (struct ext2_inode *)buf, (int)isz);
	free(buf);
	return cvb_err(e);
}

/* An empty extent tree in i_block. */
static int init_extents(struct cvb_meta *m, uint64_t ino,
			struct ext2_inode_large *in)
{
	ext2_extent_handle_t h;
	errcode_t e;

	in->i_flags |= EXT4_EXTENTS_FL;
	memset(in->i_block, 0, sizeof(in->i_block));
	e = ext2fs_extent_open2(m->fs, (ext2_ino_t)ino, (struct ext2_inode *)in,
				&h);
	if (e)
		return cvb_err(e);
	ext2fs_extent_free(h);
	return 0;
}

static int new_ino(struct cvb_meta *m, uint64_t dir, mode_t mode, uint64_t *ino)
{
	ext2_ino_t i;
	int rc;

	if (!m->fs->super->s_free_inodes_count)
		return -ENOSPC;
	rc = cvb_err(
		ext2fs_new_inode(m->fs, (ext2_ino_t)dir, (int)mode, NULL, &i));
	if (!rc)
		*ino = i;
	return rc;
}

static void set_rdev(struct ext2_inode_large *in, dev_t rdev)
{
	unsigned ma = major(rdev), mi = minor(rdev);

	if (ma < 256 && mi < 256) {
		in->i_block[0] = ma << 8 | mi;
		in->i_block[1] = 0;
	} else {
		in->i_block[0] = 0;
		in->i_block[1] =
			(mi & 0xff) | (ma << 8) | ((mi & ~0xffu) << 12);
	}
}

static int do_mknod(struct cvb_meta *m, uint64_t dir, const char *name,
		    mode_t mode, dev_t rdev, const struct cv_cred *cred,
		    uint64_t *ino)
{
	struct ext2_inode_large in;
	int rc = check_new(m, dir, name);

	if (!rc)
		rc = new_ino(m, dir, mode, ino);
	if (!rc)
		rc = cvb_link_in(m, dir, name, *ino, cvb_ftype(mode));
	if (rc)
		return rc;
	init_inode(m, &in, mode, cred);
	if (S_ISREG(mode))
		rc = init_extents(m, *ino, &in);
	else if (S_ISCHR(mode) || S_ISBLK(mode))
		set_rdev(&in, rdev);
	if (!rc)
		rc = write_new_inode(m, *ino, &in);
	if (rc)
		return rc;
	cvb_inode_stats(m, *ino, +1, 0);
	return cvb_touch_dir(m, dir, 0);
}

int cvb_meta_mknod(struct cvb_meta *m, uint64_t dir, const char *name,
		   mode_t mode, dev_t rdev, const struct cv_cred *cred,
		   struct stat *st)
{
	uint64_t ino = 0;
	int rc;

	switch (mode & S_IFMT) {
	case S_IFREG:
	case S_IFCHR:
	case S_IFBLK:
	case S_IFIFO:
	case S_IFSOCK:
		break;
	default:
		return -EINVAL;
	}
	if ((rc = cvb_op_begin(m)))
		return rc;
	rc = cvb_op_end(m, do_mknod(m, dir, name, mode, rdev, cred, &ino));
	return rc ? rc : cvb_meta_getattr(m, ino, st);
}

/* The directory's first block: "." and "..". */
static int first_dir_block(struct cvb_meta *m, uint64_t ino, uint64_t parent,
			   struct ext2_inode_large *in)
{
	blk64_t blk = 0;
	char *buf = NULL;
	errcode_t e;

	e = ext2fs_new_block2(m->fs,
			      ext2fs_find_inode_goal(m->fs, (ext2_ino_t)ino,
						     (struct ext2_inode *)in,
						     0),
			      NULL, &blk);
	if (e)
		return cvb_err(e);
	ext2fs_block_alloc_stats2(m->fs, blk, +1);
	e = ext2fs_bmap2(m->fs, (ext2_ino_t)ino, (struct ext2_inode *)in, NULL,
			 BMAP_SET, 0, NULL, &blk);
	if (!e)
		e = ext2fs_iblk_add_blocks(m->fs, (struct ext2_inode *)in, 1);
	if (!e)
		e = ext2fs_new_dir_block(m->fs, (ext2_ino_t)ino,
					 (ext2_ino_t)parent, &buf);
	if (!e)
		e = ext2fs_write_dir_block4(m->fs, blk, buf, 0,
					    (ext2_ino_t)ino);
	ext2fs_free_mem(&buf);
	in->i_size = m->fs->blocksize;
	return cvb_err(e);
}

static int do_mkdir(struct cvb_meta *m, uint64_t dir, const char *name,
		    mode_t mode, const struct cv_cred *cred, uint64_t *ino)
{
	struct ext2_inode_large in;
	int rc = check_new(m, dir, name);

	if (!rc)
		rc = new_ino(m, dir, LINUX_S_IFDIR, ino);
	if (!rc)
		rc = cvb_link_in(m, dir, name, *ino, EXT2_FT_DIR);
	if (rc)
		return rc;
	init_inode(m, &in, (mode & 07777) | S_IFDIR, cred);
	in.i_links_count = 2;
	rc = init_extents(m, *ino, &in);
	if (!rc)
		rc = write_new_inode(m, *ino, &in);
	if (!rc)
		rc = first_dir_block(m, *ino, dir, &in);
	if (!rc)
		rc = cvb_write_inode(m, *ino, &in);
	if (rc)
		return rc;
	cvb_inode_stats(m, *ino, +1, 1);
	return cvb_touch_dir(m, dir, +1);
}

int cvb_meta_mkdir(struct cvb_meta *m, uint64_t dir, const char *name,
		   mode_t mode, const struct cv_cred *cred, struct stat *st)
{
	uint64_t ino = 0;
	int rc = cvb_op_begin(m);

	if (rc)
		return rc;
	rc = cvb_op_end(m, do_mkdir(m, dir, name, mode, cred, &ino));
	return rc ? rc : cvb_meta_getattr(m, ino, st);
}

static int do_symlink(struct cvb_meta *m, uint64_t dir, const char *name,
		      const char *target, const struct cv_cred *cred,
		      uint64_t *ino)
{
	struct ext2_inode_large in, mine;
	int rc = check_new(m, dir, name);

	if (!rc && (!*target || strlen(target) >= m->fs->blocksize))
		rc = *target ? -ENAMETOOLONG : -ENOENT;
	if (!rc)
		rc = new_ino(m, dir, LINUX_S_IFLNK, ino);
	if (!rc)
		rc = cvb_link_in(m, dir, name, *ino, EXT2_FT_SYMLINK);
	if (rc)
		return rc;
	/* no name: libext2fs only makes the inode (and counts it) */
	rc = cvb_err(ext2fs_symlink(m->fs, (ext2_ino_t)dir, (ext2_ino_t)*ino,
				    NULL, target));
	cvb_mark_ino(m, *ino);
	if (!rc)
		rc = cvb_read_inode(m, *ino, &in);
	if (rc)
		return rc;
	init_inode(m, &mine, S_IFLNK | 0777, cred);
	in.i_uid = mine.i_uid;
	in.i_gid = mine.i_gid;
	in.osd2.linux2.l_i_uid_high = mine.osd2.linux2.l_i_uid_high;
	in.osd2.linux2.l_i_gid_high = mine.osd2.linux2.l_i_gid_high;
	rc = cvb_write_inode(m, *ino, &in);
	return rc ? rc : cvb_touch_dir(m, dir, 0);
}

int cvb_meta_symlink(struct cvb_meta *m, uint64_t dir, const char *name,
		     const char *target, const struct cv_cred *cred,
		     struct stat *st)
{
	uint64_t ino = 0;
	int rc = cvb_op_begin(m);

	if (rc)
		return rc;
	rc = cvb_op_end(m, do_symlink(m, dir, name, target, cred, &ino));
	return rc ? rc : cvb_meta_getattr(m, ino, st);
}

ssize_t cvb_meta_readlink(struct cvb_meta *m, uint64_t ino, char *buf,
			  size_t size)
{
	struct ext2_inode_large in;
	blk64_t pblk = 0;
	char *blk;
	size_t len;
	int rc = cvb_read_inode(m, ino, &in);

	if (rc)
		return rc;
	if (!LINUX_S_ISLNK(in.i_mode))
		return -EINVAL;
	len = EXT2_I_SIZE(&in);
	if (len >= m->fs->blocksize)
		return -EUCLEAN;
	if (ext2fs_is_fast_symlink((struct ext2_inode *)&in)) {
		len = len < size ? len : size;
		memcpy(buf, in.i_block, len);
		return (ssize_t)len;
	}
	if (!(blk = malloc(m->fs->blocksize)))
		return -ENOMEM;
	rc = cvb_err(ext2fs_bmap2(m->fs, (ext2_ino_t)ino,
				  (struct ext2_inode *)&in, NULL, 0, 0, NULL,
				  &pblk));
	if (!rc)
		rc = pblk ? cvb_err(io_channel_read_blk64(m->fs->io, pblk, 1,
							  blk))
			  : -EUCLEAN;
	len = len < size ? len : size;
	if (!rc)
		memcpy(buf, blk, len);
	free(blk);
	return rc ? rc : (ssize_t)len;
}

static int do_link(struct cvb_meta *m, uint64_t ino, uint64_t newdir,
		   const char *newname)
{
	struct ext2_inode_large in;
	struct timespec now;
	int rc = cvb_read_inode(m, ino, &in);

	if (!rc && LINUX_S_ISDIR(in.i_mode))
		rc = -EPERM;
	if (!rc && !in.i_links_count)
		rc = -ENOENT; /* unlinked, open: no new names (ext4) */
	if (!rc && in.i_links_count >= EXT2_LINK_MAX)
		rc = -EMLINK;
	if (!rc)
		rc = check_new(m, newdir, newname);
	if (!rc)
		rc = cvb_link_in(m, newdir, newname, ino, cvb_ftype(in.i_mode));
	if (rc)
		return rc;
	in.i_links_count++;
	cvb_now(&now);
	cvb_set_time(&in, CVB_T_C, &now);
	rc = cvb_write_inode(m, ino, &in);
	return rc ? rc : cvb_touch_dir(m, newdir, 0);
}

int cvb_meta_link(struct cvb_meta *m, uint64_t ino, uint64_t newdir,
		  const char *newname, struct stat *st)
{
	int rc = cvb_op_begin(m);

	if (rc)
		return rc;
	rc = cvb_op_end(m, do_link(m, ino, newdir, newname));
	return rc ? rc : cvb_meta_getattr(m, ino, st);
}

static int do_unlink(struct cvb_meta *m, uint64_t dir, const char *name)
{
	struct ext2_inode_large in;
	uint64_t ino;
	int rc = cvb_dir_lookup(m, dir, name, &ino);

	if (!rc)
		rc = cvb_read_inode(m, ino, &in);
	if (!rc && LINUX_S_ISDIR(in.i_mode))
		rc = -EISDIR;
	if (rc)
		return rc;
	m->fs_touched = true;
	rc = cvb_err(ext2fs_unlink(m->fs, (ext2_ino_t)dir, name,
				   (ext2_ino_t)ino, 0));
	if (!rc)
		rc = cvb_touch_dir(m, dir, 0);
	return rc ? rc : cvb_drop_link(m, ino);
}

int cvb_meta_unlink(struct cvb_meta *m, uint64_t dir, const char *name)
{
	int rc = cvb_op_begin(m);

	return rc ? rc : cvb_op_end(m, do_unlink(m, dir, name));
}

static int count_ent(ext2_ino_t dir, int entry, struct ext2_dir_entry *de,
		     int off, int bs, char *buf, void *priv)
{
	int len = ext2fs_dirent_name_len(de);

	(void)dir, (void)entry, (void)off, (void)bs, (void)buf;
	if (de->inode && !(len == 1 && de->name[0] == '.') &&
	    !(len == 2 && de->name[0] == '.' && de->name[1] == '.')) {
		(*(int *)priv)++;
		return DIRENT_ABORT;
	}
	return 0;
}

int cvb_dir_empty(struct cvb_meta *m, uint64_t ino)
{
	int n = 0;
	errcode_t e = ext2fs_dir_iterate2(m->fs, (ext2_ino_t)ino, 0, NULL,
					  count_ent, &n);

	return e ? cvb_err(e) : n ? -ENOTEMPTY : 0;
}

static int do_rmdir(struct cvb_meta *m, uint64_t dir, const char *name)
{
	uint64_t ino;
	int rc;

	if (!strcmp(name, "."))
		return -EINVAL;
	if (!strcmp(name, ".."))
		return -ENOTEMPTY;
	rc = cvb_dir_lookup(m, dir, name, &ino);
	if (!rc)
		rc = cvb_get_dir(m, ino, NULL);
	if (!rc)
		rc = cvb_dir_empty(m, ino);
	if (rc)
		return rc;
	m->fs_touched = true;
	rc = cvb_err(ext2fs_unlink(m->fs, (ext2_ino_t)dir, name,
				   (ext2_ino_t)ino, 0));
	if (!rc)
		rc = cvb_free_inode(m, ino);
	return rc ? rc : cvb_touch_dir(m, dir, -1);
}

int cvb_meta_rmdir(struct cvb_meta *m, uint64_t dir, const char *name)
{
	int rc = cvb_op_begin(m);

	return rc ? rc : cvb_op_end(m, do_rmdir(m, dir, name));
}

/* ---- readdir ----------------------------------------------------- */

struct rd {
	struct cvb_meta *m;
	uint64_t dir, cookie;
	be_dirent_fn fn;
	void *arg;
	char *buf;
	int err;
	bool stop;
};

/* One directory block: entries at positions from the cookie on. */
static int rd_block(ext2_filsys fs, blk64_t *blk, e2_blkcnt_t cnt, blk64_t ref,
		    int refoff, void *priv)
{
	struct rd *r = priv;
	uint64_t base = (uint64_t)cnt * fs->blocksize;
	unsigned off = 0, rec;
	char name[EXT2_NAME_LEN + 1];

	(void)ref, (void)refoff;
	if (cnt < 0 || base + fs->blocksize <= r->cookie)
		return 0;
	if ((r->err = cvb_err(ext2fs_read_dir_block4(fs, *blk, r->buf, 0,
						     (ext2_ino_t)r->dir))))
		return BLOCK_ABORT;
	while (off + 8 <= fs->blocksize) {
		struct ext2_dir_entry *de = (void *)(r->buf + off);
		int len = ext2fs_dirent_name_len(de);

		if (ext2fs_get_rec_len(fs, de, &rec) || rec < 8 ||
		    off + rec > fs->blocksize) {
			r->err = -EUCLEAN;
			return BLOCK_ABORT;
		}
		if (de->inode && base + off >= r->cookie) {
			memcpy(name, de->name, (size_t)len);
			name[len] = 0;
			if (r->fn(r->arg, name, de->inode,
				  ft_to_dtype(ext2fs_dirent_file_type(de)),
				  (off_t)(base + off + rec))) {
				r->stop = true;
				return BLOCK_ABORT;
			}
		}
		off += rec;
	}
	return 0;
}

int cvb_meta_readdir(struct cvb_meta *m, uint64_t dir, uint64_t cookie,
		     be_dirent_fn fn, void *arg)
{
	struct rd r = { m, dir, cookie, fn, arg, NULL, 0, false };
	struct ext2_inode_large din;
	errcode_t e;
	int rc = cvb_get_dir(m, dir, &din);

	if (rc)
		return rc;
	if (din.i_flags & EXT4_INLINE_DATA_FL)
		return -EOPNOTSUPP;
	if (!(r.buf = malloc(m->fs->blocksize)))
		return -ENOMEM;
	e = ext2fs_block_iterate3(m->fs, (ext2_ino_t)dir,
				  BLOCK_FLAG_READ_ONLY | BLOCK_FLAG_DATA_ONLY,
				  NULL, rd_block, &r);
	free(r.buf);
	return r.err ? r.err : cvb_err(e);
}
