// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * meta_xattr.c: extended attributes through libext2fs's xattr handles
 * (in the inode's extra space, then one shared EA block; POSIX ACLs
 * converted to ext4's on-disk form by libext2fs).  Names are limited to
 * the namespaces the kernel's ext4 accepts.
 */
#include "meta_i.h"

#include <string.h>
#include <sys/xattr.h>

static int check_xname(const char *name)
{
	static const char *const ns[] = { "user.", "trusted.", "security." };
	size_t n = strlen(name);

	if (n > 255)
		return -ERANGE;
	if (!strcmp(name, "system.posix_acl_access") ||
	    !strcmp(name, "system.posix_acl_default"))
		return 0;
	for (size_t i = 0; i < sizeof(ns) / sizeof(*ns); i++)
		if (!strncmp(name, ns[i], strlen(ns[i])) && n > strlen(ns[i]))
			return 0;
	return -EOPNOTSUPP;
}

static int xopen(struct cvb_meta *m, uint64_t ino, struct ext2_xattr_handle **h)
{
	struct ext2_inode_large in;
	int rc = cvb_read_inode(m, ino, &in);

	if (rc)
		return rc;
	rc = cvb_err(ext2fs_xattrs_open(m->fs, (ext2_ino_t)ino, h));
	if (rc)
		return rc;
	rc = cvb_err(ext2fs_xattrs_read(*h));
	if (rc)
		ext2fs_xattrs_close(h);
	return rc;
}

ssize_t cvb_meta_getxattr(struct cvb_meta *m, uint64_t ino, const char *name,
			  void *buf, size_t size)
{
	struct ext2_xattr_handle *h;
	void *val = NULL;
	size_t len = 0;
	int rc = check_xname(name);

	if (!rc)
		rc = xopen(m, ino, &h);
	if (rc)
		return rc;
	rc = cvb_err(ext2fs_xattr_get(h, name, &val, &len));
	ext2fs_xattrs_close(&h);
	if (!rc && size && len > size)
		rc = -ERANGE;
	if (!rc && size)
		memcpy(buf, val, len);
	if (val)
		ext2fs_free_mem(&val);
	return rc ? rc : (ssize_t)len;
}

static int xset(struct cvb_meta *m, uint64_t ino, const char *name,
		const void *value, size_t size, int flags, bool remove)
{
	struct ext2_xattr_handle *h;
	struct ext2_inode_large in;
	struct timespec now;
	void *old = NULL;
	size_t oldlen;
	int rc = xopen(m, ino, &h), have;

	if (rc)
		return rc;
	have = ext2fs_xattr_get(h, name, &old, &oldlen) == 0;
	if (old)
		ext2fs_free_mem(&old);
	if ((flags & XATTR_CREATE) && have)
		rc = -EEXIST;
	else if (((flags & XATTR_REPLACE) || remove) && !have)
		rc = -ENODATA;
	m->fs_touched = true;
	if (!rc && remove)
		rc = cvb_err(ext2fs_xattr_remove(h, name));
	else if (!rc)
		rc = cvb_err(ext2fs_xattr_set(h, name, value, size));
	ext2fs_xattrs_close(&h);
	if (!rc)
		rc = cvb_read_inode(m, ino, &in);
	if (rc)
		return rc;
	cvb_now(&now);
	cvb_set_time(&in, CVB_T_C, &now);
	return cvb_write_inode(m, ino, &in);
}

int cvb_meta_setxattr(struct cvb_meta *m, uint64_t ino, const char *name,
		      const void *value, size_t size, int flags)
{
	int rc = check_xname(name);

	if (!rc && (flags & ~(XATTR_CREATE | XATTR_REPLACE)))
		rc = -EINVAL;
	if (!rc && size > m->fs->blocksize)
		rc = -E2BIG;
	if (!rc)
		rc = cvb_op_begin(m);
	return rc ? rc
		  : cvb_op_end(m,
			       xset(m, ino, name, value, size, flags, false));
}

int cvb_meta_removexattr(struct cvb_meta *m, uint64_t ino, const char *name)
{
	int rc = check_xname(name);

	if (!rc)
		rc = cvb_op_begin(m);
	return rc ? rc : cvb_op_end(m, xset(m, ino, name, NULL, 0, 0, true));
}

struct lst {
	char *buf;
	size_t size, len;
};

static int list_one(char *name, char *value, size_t vlen, void *priv)
{
	struct lst *l = priv;
	size_t n = strlen(name) + 1;

	(void)value, (void)vlen;
	if (l->size && l->len + n <= l->size)
		memcpy(l->buf + l->len, name, n);
	l->len += n;
	return 0;
}

ssize_t cvb_meta_listxattr(struct cvb_meta *m, uint64_t ino, char *buf,
			   size_t size)
{
	struct ext2_xattr_handle *h;
	struct lst l = { buf, size, 0 };
	int rc = xopen(m, ino, &h);

	if (rc)
		return rc;
	rc = cvb_err(ext2fs_xattrs_iterate(h, list_one, &l));
	ext2fs_xattrs_close(&h);
	if (!rc && size && l.len > size)
		rc = -ERANGE;
	return rc ? rc : (ssize_t)l.len;
}
