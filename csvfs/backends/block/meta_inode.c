// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * meta_inode.c: inodes as the engine reads and writes them (whole
 * on-disk inodes, nanosecond times in the extra fields), their stat,
 * freeing, the last link and the orphan list; getattr and statfs.
 */
#include "meta_i.h"
#include <stdio.h>

#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <time.h>

int cvb_read_inode(struct cvb_meta *m, uint64_t ino,
		   struct ext2_inode_large *in)
{
	errcode_t e;

	if (!m->fs)
		return -EIO;
	if (ino < 1 || ino > m->fs->super->s_inodes_count ||
	    (ino < EXT2_FIRST_INO(m->fs->super) && ino != EXT2_ROOT_INO))
		return -ENOENT;
	if (!ext2fs_test_inode_bitmap2(m->fs->inode_map, (ext2_ino_t)ino))
		return -ENOENT;
	memset(in, 0, sizeof(*in));
	e = ext2fs_read_inode_full(m->fs, (ext2_ino_t)ino,
				   (struct ext2_inode *)in, sizeof(*in));
	if (e)
		return cvb_err(e);
	if (EXT2_INODE_SIZE(m->fs->super) <= EXT2_GOOD_OLD_INODE_SIZE)
		in->i_extra_isize = 0;
	return 0;
}

int cvb_write_inode(struct cvb_meta *m, uint64_t ino,
		    struct ext2_inode_large *in)
{
	size_t n = EXT2_INODE_SIZE(m->fs->super) < sizeof(*in)
			   ? EXT2_INODE_SIZE(m->fs->super)
			   : sizeof(*in);

	m->fs_touched = true; /* the inode cache */
	return cvb_err(ext2fs_write_inode_full(
		m->fs, (ext2_ino_t)ino, (struct ext2_inode *)in, (int)n));
}

void cvb_now(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
}

/* ext4's extra time field: two epoch bits, then nanoseconds. */
static uint32_t xtime_extra(const struct timespec *ts)
{
	uint64_t epoch =
		((uint64_t)ts->tv_sec - (uint64_t)(int32_t)ts->tv_sec) >> 32;

	return (uint32_t)(epoch & 3) | (uint32_t)ts->tv_nsec << 2;
}

static void xtime_get(uint32_t t, uint32_t extra, bool has, struct timespec *ts)
{
	ts->tv_sec = (int32_t)t;
	ts->tv_nsec = 0;
	if (has) {
		ts->tv_sec += (int64_t)(extra & 3) << 32;
		ts->tv_nsec = extra >> 2;
	}
}

#define HAS_EXTRA(in, field)                                                   \
	((in)->i_extra_isize >= offsetof(struct ext2_inode_large, field) + 4 - \
					EXT2_GOOD_OLD_INODE_SIZE)

void cvb_set_time(struct ext2_inode_large *in, int which,
		  const struct timespec *ts)
{
	if (which & CVB_T_A) {
		in->i_atime = (uint32_t)ts->tv_sec;
		if (HAS_EXTRA(in, i_atime_extra))
			in->i_atime_extra = xtime_extra(ts);
	}
	if (which & CVB_T_C) {
		in->i_ctime = (uint32_t)ts->tv_sec;
		if (HAS_EXTRA(in, i_ctime_extra))
			in->i_ctime_extra = xtime_extra(ts);
	}
	if (which & CVB_T_M) {
		in->i_mtime = (uint32_t)ts->tv_sec;
		if (HAS_EXTRA(in, i_mtime_extra))
			in->i_mtime_extra = xtime_extra(ts);
	}
}

static dev_t inode_rdev(const struct ext2_inode_large *in)
{
	uint32_t old = in->i_block[0], new = in->i_block[1];

	if (old)
		return makedev((old >> 8) & 0xff, old & 0xff);
	return makedev((new & 0xfff00) >> 8,
		       (new & 0xff) | ((new >> 12) & 0xfff00));
}

void cvb_inode_to_stat(struct cvb_meta *m, uint64_t ino,
		       const struct ext2_inode_large *in, struct stat *st)
{
	uint64_t blocks = in->i_blocks | (uint64_t)in->osd2.linux2.l_i_blocks_hi
						 << 32;

	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = in->i_mode;
	st->st_nlink = in->i_links_count;
	st->st_uid = in->i_uid | (uint32_t)in->osd2.linux2.l_i_uid_high << 16;
	st->st_gid = in->i_gid | (uint32_t)in->osd2.linux2.l_i_gid_high << 16;
	st->st_size = (off_t)EXT2_I_SIZE(in);
	if (in->i_flags & EXT4_HUGE_FILE_FL)
		blocks *= m->fs->blocksize / 512;
	st->st_blocks = (blkcnt_t)blocks;
	st->st_blksize = (blksize_t)m->fs->blocksize;
	if (LINUX_S_ISCHR(in->i_mode) || LINUX_S_ISBLK(in->i_mode))
		st->st_rdev = inode_rdev(in);
	xtime_get(in->i_atime, in->i_atime_extra, HAS_EXTRA(in, i_atime_extra),
		  &st->st_atim);
	xtime_get(in->i_mtime, in->i_mtime_extra, HAS_EXTRA(in, i_mtime_extra),
		  &st->st_mtim);
	xtime_get(in->i_ctime, in->i_ctime_extra, HAS_EXTRA(in, i_ctime_extra),
		  &st->st_ctim);
}

int cvb_meta_getattr(struct cvb_meta *m, uint64_t ino, struct stat *st)
{
	struct ext2_inode_large in;
	int rc = cvb_read_inode(m, ino, &in);

	if (!rc)
		cvb_inode_to_stat(m, ino, &in, st);
	return rc;
}

int cvb_meta_statfs(struct cvb_meta *m, struct statvfs *st)
{
	struct ext2_super_block *sb;
	uint64_t bfree, resv;

	if (!m->fs)
		return -EIO;
	sb = m->fs->super;
	bfree = ext2fs_free_blocks_count(sb);
	resv = ext2fs_r_blocks_count(sb);
	memset(st, 0, sizeof(*st));
	st->f_bsize = st->f_frsize = m->fs->blocksize;
	st->f_blocks = ext2fs_blocks_count(sb);
	st->f_bfree = bfree;
	st->f_bavail = bfree > resv ? bfree - resv : 0;
	st->f_files = sb->s_inodes_count;
	st->f_ffree = st->f_favail = sb->s_free_inodes_count;
	st->f_namemax = EXT2_NAME_LEN;
	return 0;
}

/* ---- freeing ----------------------------------------------------- */

int cvb_free_inode(struct cvb_meta *m, uint64_t ino)
{
	struct ext2_inode_large in;
	struct timespec now;
	int isdir, rc = cvb_read_inode(m, ino, &in);

	if (rc)
		return rc;
	isdir = LINUX_S_ISDIR(in.i_mode);
	if (ext2fs_inode_has_valid_blocks2(m->fs, (struct ext2_inode *)&in)) {
		if (LINUX_S_ISREG(in.i_mode)) {
			if ((rc = cvb_recall(m, ino)))
				return rc;
			rc = cvb_punch_blocks(m, ino, &in, 0, ~0ULL);
		} else {
			/* directory / symlink blocks were journaled */
			m->fs_touched = true;
			rc = cvb_pre_free_all(m, ino);
			if (!rc)
				rc = cvb_err(
					ext2fs_punch(m->fs, (ext2_ino_t)ino,
						     (struct ext2_inode *)&in,
						     NULL, 0, ~0ULL));
		}
		if (rc)
			return rc;
		if ((rc = cvb_read_inode(m, ino, &in)))
			return rc;
	}
	if (ext2fs_file_acl_block(m->fs, (struct ext2_inode *)&in) ||
	    in.i_extra_isize) {
		m->fs_touched = true;
		rc = cvb_err(ext2fs_free_ext_attr(m->fs, (ext2_ino_t)ino, &in));
		if (rc)
			return rc;
	}
	cvb_now(&now);
	in.i_links_count = 0;
	in.i_dtime = (uint32_t)now.tv_sec;
	rc = cvb_write_inode(m, ino, &in);
	if (rc)
		return rc;
	cvb_inode_stats(m, ino, -1, isdir);
	cvb_gen_bump(m, ino);
	return 0;
}

static int orphan_add(struct cvb_meta *m, uint64_t ino,
		      struct ext2_inode_large *in)
{
	in->i_dtime = m->fs->super->s_last_orphan;
	m->fs->super->s_last_orphan = (uint32_t)ino;
	m->sb_dirty = true;
	return cvb_write_inode(m, ino, in);
}

int cvb_orphan_del(struct cvb_meta *m, uint64_t ino,
		   struct ext2_inode_large *in)
{
	uint64_t prev = 0, cur = m->fs->super->s_last_orphan;
	uint32_t left = m->fs->super->s_inodes_count;
	struct ext2_inode_large p;
	int rc;

	while (cur && cur != ino && left--) {
		if ((rc = cvb_read_inode(m, cur, &p)))
			return rc;
		prev = cur;
		cur = p.i_dtime;
	}
	if (cur != ino)
		return -EUCLEAN; /* not on the list */
	if (!prev) {
		m->fs->super->s_last_orphan = in->i_dtime;
		m->sb_dirty = true;
	} else {
		p.i_dtime = in->i_dtime;
		if ((rc = cvb_write_inode(m, prev, &p)))
			return rc;
	}
	in->i_dtime = 0;
	return 0;
}

int cvb_drop_link(struct cvb_meta *m, uint64_t ino)
{
	struct ext2_inode_large in;
	struct timespec now;
	struct cvb_ino *e;
	int rc = cvb_read_inode(m, ino, &in);

	if (rc)
		return rc;
	cvb_now(&now);
	cvb_set_time(&in, CVB_T_C, &now);
	if (in.i_links_count > 1) {
		in.i_links_count--;
		return cvb_write_inode(m, ino, &in);
	}
	in.i_links_count = 0;
	e = cvb_ino_get(m, ino, false);
	if (e && e->refs) {
		e->orphan = true; /* undone by the caller on failure */
		return orphan_add(m, ino, &in);
	}
	rc = cvb_write_inode(m, ino, &in);
	return rc ? rc : cvb_free_inode(m, ino);
}
