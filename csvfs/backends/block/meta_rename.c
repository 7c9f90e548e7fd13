// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * meta_rename.c: rename (plain, over an existing name, NOREPLACE,
 * EXCHANGE) and setattr, each one operation.  Every check that can fail
 * runs before the first change.
 */
#include "meta_i.h"

#include <linux/fs.h>
#include <string.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

struct side {
	uint64_t dir, ino; /* ino 0: no entry */
	const char *name;
	struct ext2_inode_large in;
	bool isdir;
};

static int set_dotdot_ent(ext2_ino_t dir, int entry, struct ext2_dir_entry *de,
			  int off, int bs, char *buf, void *priv)
{
	(void)dir, (void)entry, (void)off, (void)bs, (void)buf;
	if (ext2fs_dirent_name_len(de) == 2 && de->name[0] == '.' &&
	    de->name[1] == '.') {
		de->inode = *(ext2_ino_t *)priv;
		return DIRENT_CHANGED | DIRENT_ABORT;
	}
	return 0;
}

static int set_dotdot(struct cvb_meta *m, uint64_t ino, uint64_t parent)
{
	ext2_ino_t p = (ext2_ino_t)parent;

	m->fs_touched = true;
	return cvb_err(ext2fs_dir_iterate2(m->fs, (ext2_ino_t)ino, 0, NULL,
					   set_dotdot_ent, &p));
}

/* Whether dir ino is dir or one of its ancestors. */
static int is_under(struct cvb_meta *m, uint64_t dir, uint64_t ino)
{
	uint64_t cur = dir, next;
	unsigned depth = 0;

	while (cur != CVB_ROOT_INO) {
		if (cur == ino)
			return 1;
		if (++depth > 65536 || cvb_dir_lookup(m, cur, "..", &next))
			return -EUCLEAN;
		cur = next;
	}
	return cur == ino;
}

static int load_side(struct cvb_meta *m, struct side *s)
{
	int rc = cvb_dir_lookup(m, s->dir, s->name, &s->ino);

	if (rc == -ENOENT) {
		s->ino = 0;
		return 0;
	}
	if (!rc)
		rc = cvb_read_inode(m, s->ino, &s->in);
	s->isdir = !rc && LINUX_S_ISDIR(s->in.i_mode);
	return rc;
}

static int check_rename(struct cvb_meta *m, struct side *a, struct side *b,
			unsigned flags)
{
	int rc;

	if (!a->ino)
		return -ENOENT;
	if ((flags & RENAME_EXCHANGE) && !b->ino)
		return -ENOENT;
	if ((flags & RENAME_NOREPLACE) && b->ino)
		return -EEXIST;
	if (a->ino == b->ino)
		return 1; /* the same file: nothing to do */
	if (a->isdir && a->dir != b->dir && (rc = is_under(m, b->dir, a->ino)))
		return rc < 0 ? rc : -EINVAL;
	if ((flags & RENAME_EXCHANGE) && b->isdir && a->dir != b->dir &&
	    (rc = is_under(m, a->dir, b->ino)))
		return rc < 0 ? rc : -EINVAL;
	if ((flags & RENAME_EXCHANGE) || !b->ino)
		return 0;
	if (a->isdir && !b->isdir)
		return -ENOTDIR;
	if (!a->isdir && b->isdir)
		return -EISDIR;
	return b->isdir ? cvb_dir_empty(m, b->ino) : 0;
}

static int unlink_ent(struct cvb_meta *m, struct side *s)
{
	m->fs_touched = true;
	return cvb_err(ext2fs_unlink(m->fs, (ext2_ino_t)s->dir, s->name,
				     (ext2_ino_t)s->ino, 0));
}

/* Link counts of a directory moved by delta, one step at a time. */
static int nlink_by(struct cvb_meta *m, uint64_t dir, int delta)
{
	int rc = cvb_touch_dir(m, dir, delta > 0 ? 1 : delta < 0 ? -1 : 0);

	for (int i = 1; !rc && i < (delta < 0 ? -delta : delta); i++)
		rc = cvb_touch_dir(m, dir, delta > 0 ? 1 : -1);
	return rc;
}

static int touch_ino(struct cvb_meta *m, uint64_t ino)
{
	struct ext2_inode_large in;
	struct timespec now;
	int rc = cvb_read_inode(m, ino, &in);

	if (rc)
		return rc;
	cvb_now(&now);
	cvb_set_time(&in, CVB_T_C, &now);
	return cvb_write_inode(m, ino, &in);
}

static int do_exchange(struct cvb_meta *m, struct side *a, struct side *b)
{
	int rc = unlink_ent(m, a);

	if (!rc)
		rc = unlink_ent(m, b);
	if (!rc)
		rc = cvb_link_in(m, a->dir, a->name, b->ino,
				 cvb_ftype(b->in.i_mode));
	if (!rc)
		rc = cvb_link_in(m, b->dir, b->name, a->ino,
				 cvb_ftype(a->in.i_mode));
	if (!rc && a->dir != b->dir) {
		if (a->isdir)
			rc = set_dotdot(m, a->ino, b->dir);
		if (!rc && b->isdir)
			rc = set_dotdot(m, b->ino, a->dir);
		if (!rc)
			rc = nlink_by(m, a->dir, b->isdir - a->isdir);
		if (!rc)
			rc = nlink_by(m, b->dir, a->isdir - b->isdir);
	} else if (!rc) {
		rc = cvb_touch_dir(m, a->dir, 0);
	}
	if (!rc)
		rc = touch_ino(m, a->ino);
	return rc ? rc : touch_ino(m, b->ino);
}

static int do_move(struct cvb_meta *m, struct side *a, struct side *b)
{
	int moved = a->isdir && a->dir != b->dir, rc = 0;

	if (b->ino) {
		rc = unlink_ent(m, b);
		if (!rc && b->isdir)
			rc = cvb_free_inode(m, b->ino);
		else if (!rc)
			rc = cvb_drop_link(m, b->ino);
	}
	if (!rc)
		rc = cvb_link_in(m, b->dir, b->name, a->ino,
				 cvb_ftype(a->in.i_mode));
	if (!rc)
		rc = unlink_ent(m, a);
	if (!rc && moved)
		rc = set_dotdot(m, a->ino, b->dir);
	if (!rc && a->dir != b->dir)
		rc = nlink_by(m, a->dir, -moved);
	if (!rc)
		rc = nlink_by(m, b->dir, moved - (b->ino && b->isdir));
	return rc ? rc : touch_ino(m, a->ino);
}

static int do_rename(struct cvb_meta *m, struct side *a, struct side *b,
		     unsigned flags)
{
	int rc;

	if ((flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) ||
	    (flags & RENAME_NOREPLACE && flags & RENAME_EXCHANGE))
		return -EINVAL;
	if (!strcmp(a->name, ".") || !strcmp(a->name, "..") ||
	    !strcmp(b->name, ".") || !strcmp(b->name, ".."))
		return -EINVAL;
	rc = load_side(m, a);
	if (!rc)
		rc = cvb_get_dir(m, b->dir, NULL);
	if (!rc)
		rc = cvb_check_name(b->name);
	if (!rc)
		rc = load_side(m, b);
	if (!rc)
		rc = check_rename(m, a, b, flags);
	if (rc)
		return rc > 0 ? 0 : rc;
	return flags & RENAME_EXCHANGE ? do_exchange(m, a, b)
				       : do_move(m, a, b);
}

int cvb_meta_rename(struct cvb_meta *m, uint64_t dir, const char *name,
		    uint64_t newdir, const char *newname, unsigned flags)
{
	struct side a = { .dir = dir, .name = name };
	struct side b = { .dir = newdir, .name = newname };
	int rc = cvb_op_begin(m);

	return rc ? rc : cvb_op_end(m, do_rename(m, &a, &b, flags));
}

/* ---- setattr ----------------------------------------------------- */

static int set_size(struct cvb_meta *m, uint64_t ino,
		    struct ext2_inode_large *in, uint64_t size)
{
	uint64_t old = EXT2_I_SIZE(in);
	errcode_t e;

	if (LINUX_S_ISDIR(in->i_mode))
		return -EISDIR;
	if (!LINUX_S_ISREG(in->i_mode))
		return -EINVAL;
	if (size > (uint64_t)m->fs->blocksize * (1ull << 32))
		return -EFBIG;
	if (size >= old)
		return cvb_grow(m, ino, in, size, false);
	e = ext2fs_inode_size_set(m->fs, (struct ext2_inode *)in, size);
	return e ? cvb_err(e) : cvb_truncate(m, ino, in, old);
}

static int do_setattr(struct cvb_meta *m, uint64_t ino, const struct stat *attr,
		      int to_set)
{
	struct ext2_inode_large in;
	struct timespec now;
	int rc = cvb_read_inode(m, ino, &in);

	if (rc)
		return rc;
	cvb_now(&now);
	if (to_set & CV_SET_SIZE) {
		if ((rc = set_size(m, ino, &in, (uint64_t)attr->st_size)))
			return rc;
		if (!(to_set & (CV_SET_MTIME | CV_SET_MTIME_NOW)))
			cvb_set_time(&in, CVB_T_M, &now);
	}
	if (to_set & CV_SET_MODE)
		in.i_mode = (uint16_t)((in.i_mode & S_IFMT) |
				       (attr->st_mode & 07777));
	if (to_set & CV_SET_UID) {
		in.i_uid = (uint16_t)attr->st_uid;
		in.osd2.linux2.l_i_uid_high = (uint16_t)(attr->st_uid >> 16);
	}
	if (to_set & CV_SET_GID) {
		in.i_gid = (uint16_t)attr->st_gid;
		in.osd2.linux2.l_i_gid_high = (uint16_t)(attr->st_gid >> 16);
	}
	if (to_set & CV_SET_ATIME_NOW)
		cvb_set_time(&in, CVB_T_A, &now);
	else if (to_set & CV_SET_ATIME)
		cvb_set_time(&in, CVB_T_A, &attr->st_atim);
	if (to_set & CV_SET_MTIME_NOW)
		cvb_set_time(&in, CVB_T_M, &now);
	else if (to_set & CV_SET_MTIME)
		cvb_set_time(&in, CVB_T_M, &attr->st_mtim);
	cvb_set_time(&in, CVB_T_C, &now);
	return cvb_write_inode(m, ino, &in);
}

int cvb_meta_setattr(struct cvb_meta *m, uint64_t ino, const struct stat *attr,
		     int to_set, struct stat *st)
{
	int rc = cvb_op_begin(m);

	if (rc)
		return rc;
	rc = cvb_op_end(m, do_setattr(m, ino, attr, to_set));
	return rc || !st ? rc : cvb_meta_getattr(m, ino, st);
}
