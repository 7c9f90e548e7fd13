// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * mtool_ops.c: the scripted checks of mtool (see mtool.c): every
 * operation of meta.h with its errors, orphans, ENOSPC, the paths past
 * block 2^31, and the measurements.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "mtool.h"

#define R   CVB_ROOT_INO
#define MiB (1ull << 20)

static void ops_names(struct cvb_meta *m)
{
	char longname[300];
	struct stat st;
	uint64_t d, f, x;

	d = mt_mk(m, R, "d", S_IFDIR | 0755);
	f = mt_mk(m, d, "f", S_IFREG | 0644);
	MT_EQ(mt_lk(m, d, "f", &x), 0, "lookup d/f");
	MT_EQ(x, f, "lookup gives the created inode");
	MT_EQ(cvb_meta_mknod(m, d, "f", S_IFREG | 0644, 0, &mt_root, &st),
	      -EEXIST, "mknod over an existing name: EEXIST");
	MT_EQ(cvb_meta_mkdir(m, d, "f", 0755, &mt_root, &st), -EEXIST,
	      "mkdir over an existing name: EEXIST");
	MT_EQ(mt_lk(m, d, "nope", NULL), -ENOENT,
	      "lookup of a missing name: ENOENT");
	MT_EQ(mt_lk(m, 99999, "x", NULL), -ENOENT,
	      "lookup in a missing dir: ENOENT");
	memset(longname, 'a', 256);
	longname[256] = 0;
	MT_EQ(cvb_meta_mknod(m, d, longname, S_IFREG | 0644, 0, &mt_root, &st),
	      -ENAMETOOLONG, "256-byte name: ENAMETOOLONG");
	longname[255] = 0;
	MT_EQ(cvb_meta_mknod(m, d, longname, S_IFREG | 0644, 0, &mt_root, &st),
	      0, "255-byte name works");
	MT_EQ(cvb_meta_mknod(m, f, "x", S_IFREG | 0644, 0, &mt_root, &st),
	      -ENOTDIR, "mknod under a file: ENOTDIR");
	MT_EQ(cvb_meta_rmdir(m, R, "d"), -ENOTEMPTY,
	      "rmdir of a full dir: ENOTEMPTY");
	MT_EQ(cvb_meta_unlink(m, R, "d"), -EISDIR, "unlink of a dir: EISDIR");
	MT_EQ(cvb_meta_rmdir(m, d, "f"), -ENOTDIR, "rmdir of a file: ENOTDIR");
	MT_EQ(cvb_meta_unlink(m, d, longname), 0, "unlink the long name");
	MT_EQ(mt_nents(m, d), 3, "readdir: . .. f");
	MT_EQ(cvb_meta_mknod(m, d, "fifo", S_IFIFO | 0600, 0, &mt_root, &st), 0,
	      "mkfifo");
	MT_EQ(cvb_meta_mknod(m, d, "cdev", S_IFCHR | 0600, makedev(300, 7),
			     &mt_root, &st),
	      0, "mknod char dev");
	MT_EQ(mt_lk(m, d, "cdev", NULL), 0, "lookup cdev");
	cvb_meta_getattr(m, st.st_ino, &st);
	mt_check(major(st.st_rdev) == 300 && minor(st.st_rdev) == 7,
		 "rdev 300:7 kept");
	MT_EQ(cvb_meta_getattr(m, R, &st), 0, "getattr root");
	MT_EQ(st.st_nlink, 4, "root links: . .. lost+found d");
}

static void ops_many(struct cvb_meta *m)
{
	char name[64];
	struct stat st;
	uint64_t d = mt_mk(m, R, "many", S_IFDIR | 0755);
	int bad = 0;

	for (int i = 0; i < 600; i++) {
		snprintf(name, sizeof(name), "file-with-a-long-name-%05d", i);
		bad += cvb_meta_mknod(m, d, name, S_IFREG | 0644, 0, &mt_root,
				      &st) != 0;
		if (i % 50 == 0)
			cvb_meta_commit(m);
	}
	MT_EQ(bad, 0, "600 creates in one dir (it grows)");
	MT_EQ(mt_nents(m, d), 602, "readdir sees all 600");
	for (int i = 0; i < 600; i += 2) {
		snprintf(name, sizeof(name), "file-with-a-long-name-%05d", i);
		bad += cvb_meta_unlink(m, d, name) != 0;
	}
	MT_EQ(bad, 0, "300 unlinks");
	MT_EQ(mt_nents(m, d), 302, "readdir after the unlinks");
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "sub%d", i);
		mt_mk(m, d, name, S_IFDIR | 0755);
	}
	cvb_meta_getattr(m, d, &st);
	MT_EQ(st.st_nlink, 42, "dir links count its subdirs");
	MT_EQ(cvb_meta_rmdir(m, d, "sub3"), 0, "rmdir an empty dir");
	cvb_meta_getattr(m, d, &st);
	MT_EQ(st.st_nlink, 41, "parent link count drops");
}

static void ops_links(struct cvb_meta *m)
{
	char buf[512], tgt[300];
	struct stat st;
	uint64_t d, f;
	ssize_t n;

	MT_EQ(mt_lk(m, R, "d", &d), 0, "lookup d");
	MT_EQ(mt_lk(m, d, "f", &f), 0, "lookup d/f");
	MT_EQ(cvb_meta_symlink(m, d, "s", "f", &mt_root, &st), 0,
	      "short symlink");
	n = cvb_meta_readlink(m, st.st_ino, buf, sizeof(buf));
	mt_check(n == 1 && buf[0] == 'f', "readlink of the short one");
	memset(tgt, 'z', 200);
	tgt[200] = 0;
	MT_EQ(cvb_meta_symlink(m, d, "s2", tgt, &mt_root, &st), 0,
	      "long symlink (a block)");
	n = cvb_meta_readlink(m, st.st_ino, buf, sizeof(buf));
	mt_check(n == 200 && !memcmp(buf, tgt, 200),
		 "readlink of the long one");
	MT_EQ(cvb_meta_link(m, f, R, "hard", &st), 0, "link d/f as /hard");
	MT_EQ(st.st_nlink, 2, "two links");
	MT_EQ(cvb_meta_link(m, d, R, "dirlink", &st), -EPERM,
	      "link of a dir: EPERM");
	MT_EQ(cvb_meta_link(m, f, R, "hard", &st), -EEXIST,
	      "link over a name: EEXIST");
	MT_EQ(cvb_meta_unlink(m, R, "hard"), 0, "unlink one link");
	cvb_meta_getattr(m, f, &st);
	MT_EQ(st.st_nlink, 1, "one link left");
	MT_EQ(cvb_meta_link(m, f, R, "hard2", &st), 0, "link again (kept)");
}

static void ops_rename(struct cvb_meta *m)
{
	struct stat st;
	uint64_t a, b, x, y, e1;

	a = mt_mk(m, R, "ra", S_IFDIR | 0755);
	b = mt_mk(m, R, "rb", S_IFDIR | 0755);
	x = mt_mk(m, a, "x", S_IFREG | 0644);
	y = mt_mk(m, b, "y", S_IFREG | 0644);
	MT_EQ(cvb_meta_rename(m, a, "x", a, "x2", 0), 0, "rename in a dir");
	MT_EQ(mt_lk(m, a, "x", NULL), -ENOENT, "old name gone");
	MT_EQ(cvb_meta_rename(m, a, "x2", b, "y", RENAME_NOREPLACE), -EEXIST,
	      "NOREPLACE over a name: EEXIST");
	MT_EQ(cvb_meta_rename(m, a, "x2", b, "y", 0), 0, "rename over a file");
	MT_EQ(mt_lk(m, b, "y", &e1), 0, "the target name");
	MT_EQ(e1, x, "holds the moved file");
	MT_EQ(cvb_meta_getattr(m, y, &st), -ENOENT,
	      "the replaced file is freed");
	e1 = mt_mk(m, a, "sub", S_IFDIR | 0755);
	mt_mk(m, e1, "inner", S_IFREG | 0644);
	MT_EQ(cvb_meta_rename(m, b, "y", a, "sub", 0), -EISDIR,
	      "file over a dir: EISDIR");
	MT_EQ(cvb_meta_rename(m, a, "sub", b, "y", 0), -ENOTDIR,
	      "dir over a file: ENOTDIR");
	mt_mk(m, b, "empty", S_IFDIR | 0755);
	mt_mk(m, mt_mk(m, b, "full", S_IFDIR | 0755), "inner", S_IFREG | 0644);
}

static void ops_rename2(struct cvb_meta *m)
{
	struct stat st;
	uint64_t a, b, sub, e, f;

	mt_lk(m, R, "ra", &a);
	mt_lk(m, R, "rb", &b);
	mt_lk(m, a, "sub", &sub);
	MT_EQ(cvb_meta_rename(m, R, "ra", sub, "loop", 0), -EINVAL,
	      "dir into its own subdir: EINVAL");
	MT_EQ(cvb_meta_rename(m, a, "sub", b, "empty", 0), 0,
	      "dir over an empty dir");
	MT_EQ(mt_lk(m, b, "empty", &e), 0, "lookup the moved dir");
	MT_EQ(e, sub, "it is the moved one");
	MT_EQ(mt_lk(m, e, "..", &e), 0, "its ..");
	MT_EQ(e, b, ".. points to the new parent");
	cvb_meta_getattr(m, a, &st);
	MT_EQ(st.st_nlink, 2, "old parent lost a link");
	MT_EQ(cvb_meta_rename(m, b, "empty", b, "full", 0), -ENOTEMPTY,
	      "dir over a full dir: ENOTEMPTY");
	MT_EQ(cvb_meta_rename(m, R, "ra", b, "empty", RENAME_EXCHANGE), 0,
	      "EXCHANGE of two dirs in different parents");
	MT_EQ(mt_lk(m, b, "empty", &e), 0, "exchanged");
	MT_EQ(e, a, "rb/empty is now the old ra");
	MT_EQ(mt_lk(m, a, "..", &e), 0, "its ..");
	MT_EQ(e, b, "points to rb");
	MT_EQ(mt_lk(m, sub, "..", &e), 0, "the other's ..");
	MT_EQ(e, R, "points to the root");
	MT_EQ(cvb_meta_rename(m, R, "zz", R, "ra", RENAME_EXCHANGE), -ENOENT,
	      "EXCHANGE with a missing side: ENOENT");
	MT_EQ(cvb_meta_rename(m, R, "ra", R, "hard2", RENAME_EXCHANGE), 0,
	      "EXCHANGE of a dir and a file in one dir");
	MT_EQ(mt_lk(m, R, "ra", &f), 0, "lookup /ra");
	cvb_meta_getattr(m, f, &st);
	mt_check(S_ISREG(st.st_mode), "/ra is the file now");
	MT_EQ(cvb_meta_rename(m, R, "ra", R, "ra", 0), 0, "rename onto itself");
	MT_EQ(cvb_meta_rename(m, R, "hard2", R, "x", 7), -EINVAL,
	      "bad flags: EINVAL");
}

static void ops_xattr(struct cvb_meta *m)
{
	char buf[4096], big[3000];
	uint64_t f = mt_mk(m, R, "xf", S_IFREG | 0644);
	ssize_t n;

	MT_EQ(cvb_meta_setxattr(m, f, "user.a", "1", 1, 0), 0, "setxattr");
	MT_EQ(cvb_meta_setxattr(m, f, "user.a", "2", 1, XATTR_CREATE), -EEXIST,
	      "XATTR_CREATE on a name: EEXIST");
	MT_EQ(cvb_meta_setxattr(m, f, "user.b", "2", 1, XATTR_REPLACE),
	      -ENODATA, "XATTR_REPLACE of a missing one: ENODATA");
	memset(big, 'b', sizeof(big));
	MT_EQ(cvb_meta_setxattr(m, f, "user.big", big, sizeof(big), 0), 0,
	      "3000-byte value (EA block)");
	n = cvb_meta_getxattr(m, f, "user.big", buf, sizeof(buf));
	mt_check(n == 3000 && !memcmp(buf, big, 3000),
		 "getxattr of the big one");
	MT_EQ(cvb_meta_getxattr(m, f, "user.big", NULL, 0), 3000, "size query");
	MT_EQ(cvb_meta_getxattr(m, f, "user.big", buf, 10), -ERANGE,
	      "small buffer: ERANGE");
	MT_EQ(cvb_meta_getxattr(m, f, "user.none", buf, 10), -ENODATA,
	      "missing: ENODATA");
	n = cvb_meta_listxattr(m, f, buf, sizeof(buf));
	mt_check(n == (ssize_t)(strlen("user.a") + strlen("user.big") + 2),
		 "listxattr gives both names (%zd)", n);
	MT_EQ(cvb_meta_removexattr(m, f, "user.a"), 0, "removexattr");
	MT_EQ(cvb_meta_removexattr(m, f, "user.a"), -ENODATA, "again: ENODATA");
	MT_EQ(cvb_meta_setxattr(m, f, "bogus.x", "1", 1, 0), -EOPNOTSUPP,
	      "unknown namespace: EOPNOTSUPP");
	MT_EQ(cvb_meta_setxattr(m, R, "trusted.t", "v", 1, 0), 0,
	      "xattr on the root");
	MT_EQ(cvb_meta_unlink(m, R, "xf"), 0, "unlink a file with an EA block");
}

static void ops_attr(struct cvb_meta *m)
{
	struct stat a = { 0 }, st;
	struct statvfs sv;
	uint64_t f = mt_mk(m, R, "attr", S_IFREG | 0644);

	a.st_mode = 0600;
	a.st_uid = 70000;
	a.st_gid = 1234;
	a.st_mtim.tv_sec = 1000000000;
	a.st_mtim.tv_nsec = 123456789;
	MT_EQ(cvb_meta_setattr(m, f, &a,
			       CV_SET_MODE | CV_SET_UID | CV_SET_GID |
				       CV_SET_MTIME,
			       &st),
	      0, "setattr");
	mt_check((st.st_mode & 07777) == 0600 && st.st_uid == 70000 &&
			 st.st_gid == 1234,
		 "mode, 32-bit uid, gid");
	mt_check(st.st_mtim.tv_sec == 1000000000 &&
			 st.st_mtim.tv_nsec == 123456789,
		 "mtime with nanoseconds");
	MT_EQ(cvb_meta_statfs(m, &sv), 0, "statfs");
	mt_check(sv.f_bsize == 4096 && sv.f_bfree > 0 && sv.f_files > 0,
		 "statfs numbers");
}

/* Bytes of file ino's map over [off, off+len): phys of each piece. */
static bool mapped_at(struct cvb_meta *m, uint64_t ino, uint64_t off,
		      uint64_t len, bool want_data)
{
	struct cvb_extent e[16];
	unsigned n;
	uint64_t gen;

	if (cvb_meta_map(m, ino, off, len, e, 16, &n, &gen))
		return false;
	for (unsigned i = 0; i < n; i++)
		if (!e[i].phys == want_data)
			return false;
	return n > 0 && e[0].off == off;
}

static void ops_data(struct cvb_meta *m, const char *img)
{
	uint8_t *buf = calloc(1, 6 * MiB), *exp = calloc(1, 6 * MiB);
	struct cvb_extent e[16];
	struct stat st;
	unsigned n;
	uint64_t f, gen, gen2;

	/* a small file: one granule, one extent */
	f = mt_mk(m, R, "data1", S_IFREG | 0644);
	mt_pattern(buf, 10000, 1);
	mt_lun_write(m, img, f, 0, buf, 10000);
	mt_save("data1", buf, 10000);
	MT_EQ(cvb_meta_map(m, f, 0, MiB, e, 16, &n, &gen), 0, "map data1");
	mt_check(n == 1 && e[0].len == MiB && e[0].phys &&
			 e[0].phys % 4096 == 0,
		 "one granule, one physical range (n %u)", n);
	cvb_meta_getattr(m, f, &st);
	MT_EQ(st.st_size, 10000, "size from set_written");
	MT_EQ(st.st_blocks, MiB / 512, "a whole granule allocated");

	/* sparse: a hole then data at 5 MiB + 100 */
	f = mt_mk(m, R, "sparse", S_IFREG | 0644);
	mt_pattern(buf, 5000, 2);
	mt_lun_write(m, img, f, 5 * MiB + 100, buf, 5000);
	memset(exp, 0, 6 * MiB);
	memcpy(exp + 5 * MiB + 100, buf, 5000);
	mt_save("sparse", exp, 5 * MiB + 5100);
	mt_check(mapped_at(m, f, 0, 5 * MiB, false), "hole before 5 MiB");
	mt_check(mapped_at(m, f, 5 * MiB, MiB, true), "data from 5 MiB");

	/* punch at granule edges and inside a block */
	f = mt_mk(m, R, "edges", S_IFREG | 0644);
	mt_pattern(exp, 3 * MiB, 3);
	mt_lun_write(m, img, f, 0, exp, 3 * MiB);
	cvb_meta_map(m, f, 0, 1, e, 1, &n, &gen);
	MT_EQ(cvb_meta_fallocate(m, f,
				 FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				 MiB - 4096, 8192),
	      0, "punch across a granule edge");
	memset(exp + MiB - 4096, 0, 8192);
	MT_EQ(cvb_meta_fallocate(m, f,
				 FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				 2 * MiB + 100, 4900),
	      0, "punch inside blocks");
	memset(exp + 2 * MiB + 100, 0, 4900);
	mt_save("edges", exp, 3 * MiB);
	mt_check(mapped_at(m, f, MiB - 4096, 8192, false),
		 "punched blocks are a hole");
	mt_check(mapped_at(m, f, MiB + 4096, 4096, true), "neighbour kept");
	cvb_meta_map(m, f, 0, 1, e, 1, &n, &gen2);
	mt_check(gen2 > gen, "map generation bumped by the punch");
	/* allocating the punched hole back: a part of a granule */
	mt_pattern(buf, 8192, 4);
	mt_lun_write(m, img, f, MiB - 4096, buf, 8192);
	memcpy(exp + MiB - 4096, buf, 8192);
	mt_save("edges", exp, 3 * MiB);

	/* truncate down into a block, then up */
	f = mt_mk(m, R, "trunc", S_IFREG | 0644);
	mt_pattern(exp, 2 * MiB + 123, 5);
	mt_lun_write(m, img, f, 0, exp, 2 * MiB + 123);
	st.st_size = MiB + 7;
	MT_EQ(cvb_meta_setattr(m, f, &st, CV_SET_SIZE, &st), 0,
	      "truncate to 1 MiB + 7");
	MT_EQ(st.st_blocks, (MiB + 4096) / 512, "blocks past the size freed");
	st.st_size = 3 * MiB;
	MT_EQ(cvb_meta_setattr(m, f, &st, CV_SET_SIZE, &st), 0,
	      "truncate up to 3 MiB");
	memset(exp + MiB + 7, 0, 2 * MiB - 7);
	mt_save("trunc", exp, 3 * MiB);

	free(buf);
	free(exp);
}

static void ops_falloc(struct cvb_meta *m, const char *img)
{
	uint8_t *buf = calloc(1, 6 * MiB), *exp = calloc(1, 6 * MiB);
	struct cvb_extent e[16];
	struct stat st;
	unsigned n;
	uint64_t f, gen;

	f = mt_mk(m, R, "keep", S_IFREG | 0644);
	mt_pattern(buf, 100, 6);
	mt_lun_write(m, img, f, 0, buf, 100);
	mt_save("keep", buf, 100);
	MT_EQ(cvb_meta_fallocate(m, f, FALLOC_FL_KEEP_SIZE, 0, 4 * MiB), 0,
	      "fallocate KEEP_SIZE past the end");
	cvb_meta_getattr(m, f, &st);
	mt_check(st.st_size == 100 && st.st_blocks == 4 * MiB / 512,
		 "size kept, 4 MiB allocated");
	f = mt_mk(m, R, "fa0", S_IFREG | 0644);
	MT_EQ(cvb_meta_fallocate(m, f, 0, 0, 2 * MiB + 10), 0,
	      "fallocate mode 0");
	cvb_meta_getattr(m, f, &st);
	MT_EQ(st.st_size, 2 * MiB + 10, "size grows");
	memset(exp, 0, 2 * MiB + 10);
	mt_save("fa0", exp, 2 * MiB + 10);
	f = mt_mk(m, R, "zr", S_IFREG | 0644);
	mt_pattern(exp, 2 * MiB, 7);
	mt_lun_write(m, img, f, 0, exp, 2 * MiB);
	MT_EQ(cvb_meta_fallocate(m, f, FALLOC_FL_ZERO_RANGE, 100, 300000), 0,
	      "ZERO_RANGE");
	memset(exp + 100, 0, 300000);
	MT_EQ(cvb_meta_fallocate(m, f, FALLOC_FL_ZERO_RANGE, 2 * MiB - 10,
				 4 * MiB),
	      0, "ZERO_RANGE past the end grows the file");
	memset(exp + 2 * MiB - 10, 0, 4 * MiB + 10);
	mt_save("zr", exp, 6 * MiB - 10);
	MT_EQ(cvb_meta_fallocate(m, f, FALLOC_FL_COLLAPSE_RANGE, 0, MiB),
	      -EOPNOTSUPP, "COLLAPSE_RANGE: EOPNOTSUPP");
	MT_EQ(cvb_meta_map(m, R, 0, 1, e, 1, &n, &gen), -EISDIR,
	      "map of a dir: EISDIR");
	free(buf);
	free(exp);
}

static int cmd_ops(const char *img)
{
	struct cvb_meta *m = mt_open(img);

	const char *ph = getenv("MT_PHASES"); /* debugging: a subset */
	unsigned mask = ph ? (unsigned)strtoul(ph, NULL, 0) : ~0u;

	if (mask & 1)
		ops_names(m);
	if (mask & 2)
		ops_many(m);
	if (mask & 4)
		ops_links(m);
	if (mask & 8)
		ops_rename(m);
	if (mask & 16)
		ops_rename2(m);
	if (mask & 32)
		ops_xattr(m);
	if (mask & 64)
		ops_attr(m);
	if (mask & 128) {
		ops_data(m, img);
		ops_falloc(m, img);
	}
	mt_close(m);
	if (mask != ~0u)
		return mt_fail ? 1 : 0;
	m = mt_open(img); /* a clean reopen */
	MT_EQ(mt_lk(m, R, "data1", NULL), 0, "reopened: data1 there");
	mt_close(m);
	printf("# %d passed, %d failed\n", mt_pass, mt_fail);
	return mt_fail ? 1 : 0;
}

/* ---- orphans ----------------------------------------------------- */

static int cmd_orphan(const char *img)
{
	struct cvb_meta *m = mt_open(img);
	uint8_t buf[8192];
	struct stat st;
	uint64_t f, g;

	g = mt_mk(m, R, "open-at-close", S_IFREG | 0644);
	cvb_meta_open_ref(m, g);
	cvb_meta_unlink(m, R, "open-at-close");
	mt_close(m);
	mt_check(mt_fsck(img),
		 "close with an unlinked file open: e2fsck -fn clean");
	m = mt_open(img);
	f = mt_mk(m, R, "open-unlinked", S_IFREG | 0644);
	mt_pattern(buf, sizeof(buf), 9);
	mt_lun_write(m, img, f, 0, buf, sizeof(buf));
	MT_EQ(cvb_meta_open_ref(m, f), 0, "open_ref");
	MT_EQ(cvb_meta_unlink(m, R, "open-unlinked"), 0, "unlink while open");
	MT_EQ(cvb_meta_getattr(m, f, &st), 0, "still there while open");
	MT_EQ(st.st_nlink, 0, "no links");
	g = mt_mk(m, R, "closed-later", S_IFREG | 0644);
	cvb_meta_open_ref(m, g);
	cvb_meta_open_ref(m, g);
	cvb_meta_unlink(m, R, "closed-later");
	MT_EQ(cvb_meta_close_ref(m, g), 0, "first close");
	MT_EQ(cvb_meta_getattr(m, g, &st), 0,
	      "kept while a second open holds it");
	MT_EQ(cvb_meta_close_ref(m, g), 0, "last close");
	MT_EQ(cvb_meta_getattr(m, g, &st), -ENOENT, "freed at the last close");
	g = mt_mk(m, R, "kept", S_IFREG | 0644);
	mt_lun_write(m, img, g, 0, buf, sizeof(buf));
	MT_EQ(cvb_meta_commit(m), 0, "commit");
	printf("# orphan %llu left open: dying\n", (unsigned long long)f);
	fflush(stdout);
	raise(SIGKILL);
	return 1;
}

static int cmd_check_orphan(const char *img, uint64_t ino)
{
	struct cvb_meta *m = mt_open(img);
	struct cvb_meta_stats s;
	struct stat st;

	cvb_meta_get_stats(m, &s);
	MT_EQ(s.orphans_done, 1, "open processed one orphan");
	mt_check(s.replayed > 0, "open replayed the journal (%u)", s.replayed);
	MT_EQ(cvb_meta_getattr(m, ino, &st), -ENOENT, "the orphan is freed");
	mt_close(m);
	return mt_fail ? 1 : 0;
}

/* ---- ENOSPC ------------------------------------------------------ */

static int cmd_enospc(const char *img)
{
	struct cvb_meta *m = mt_open(img);
	struct cvb_extent e[4];
	struct statvfs a, b;
	struct stat st;
	unsigned n, k = 0;
	uint64_t f, gen;
	char name[32];
	int rc;

	f = mt_mk(m, R, "huge", S_IFREG | 0644);
	cvb_meta_statfs(m, &a);
	MT_EQ(cvb_meta_alloc(m, f, 0, 1ull << 30, e, 4, &n, &gen), -ENOSPC,
	      "alloc of 1 GiB on a small volume: ENOSPC");
	cvb_meta_statfs(m, &b);
	MT_EQ(b.f_bfree, a.f_bfree, "nothing allocated");
	while (!(rc = cvb_meta_alloc(m, f, (uint64_t)k * MiB, MiB, e, 4, &n,
				     &gen)))
		k++;
	MT_EQ(rc, -ENOSPC, "granules until ENOSPC");
	mt_check(k > 10, "%u granules fitted", k);
	cvb_meta_getattr(m, f, &st);
	MT_EQ(st.st_blocks, (uint64_t)k * MiB / 512,
	      "only whole granules allocated");
	MT_EQ(cvb_meta_unlink(m, R, "huge"), 0, "unlink the full file");
	cvb_meta_statfs(m, &b);
	mt_check(b.f_bfree >= a.f_bfree - 16, "space back (%llu of %llu)",
		 (unsigned long long)b.f_bfree, (unsigned long long)a.f_bfree);
	for (k = 0;
	     !(rc = cvb_meta_mknod(m, R, (snprintf(name, 32, "i%u", k), name),
				   S_IFREG | 0644, 0, &mt_root, &st));
	     k++)
		;
	MT_EQ(rc, -ENOSPC, "inodes until ENOSPC");
	mt_close(m);
	return mt_fail ? 1 : 0;
}

/* ---- past block 2^31 --------------------------------------------- */

static int cmd_big(const char *img)
{
	const uint64_t B31 = (1ull << 31) * 4096; /* byte of block 2^31 */
	struct cvb_meta *m = mt_open(img);
	uint8_t *buf = malloc(2 * MiB), *back = malloc(2 * MiB);
	struct cvb_extent e[8];
	struct statvfs a, b;
	struct stat st;
	unsigned n;
	uint64_t f, gen;
	int fd = open(img, O_RDONLY);

	cvb_meta_statfs(m, &a);
	mt_check(a.f_blocks > (1ull << 31), "volume past 2^31 blocks (%llu)",
		 (unsigned long long)a.f_blocks);
	f = mt_mk(m, R, "big", S_IFREG | 0644);
	mt_pattern(buf, 2 * MiB, 11);
	mt_lun_write(m, img, f, B31 - MiB, buf, 2 * MiB);
	cvb_meta_getattr(m, f, &st);
	MT_EQ(st.st_size, B31 + MiB, "size 8 TiB + 1 MiB");
	MT_EQ(cvb_meta_map(m, f, B31 - MiB, 2 * MiB, e, 8, &n, &gen), 0,
	      "map around block 2^31");
	mt_check(n >= 1 && e[0].phys &&
			 e[n - 1].off + e[n - 1].len == B31 + MiB,
		 "mapped to the end");
	for (unsigned i = 0; i < n; i++)
		if (pread(fd, back + (e[i].off - (B31 - MiB)), e[i].len,
			  (off_t)e[i].phys) != (ssize_t)e[i].len)
			mt_die("pread", -errno);
	mt_check(!memcmp(buf, back, 2 * MiB), "bytes at the mapped places");
	MT_EQ(cvb_meta_fallocate(m, f,
				 FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				 B31 - 4096, 8192),
	      0, "punch blocks 2^31-1 and 2^31");
	mt_check(mapped_at(m, f, B31 - 4096, 8192, false), "they are a hole");
	mt_check(mapped_at(m, f, B31 + 4096, 4096, true), "block 2^31+1 kept");
	mt_check(mapped_at(m, f, B31 - 8192, 4096, true), "block 2^31-2 kept");
	st.st_size = B31 + 5;
	MT_EQ(cvb_meta_setattr(m, f, &st, CV_SET_SIZE, &st), 0,
	      "truncate into block 2^31");
	MT_EQ(st.st_blocks, (MiB - 4096) / 512, "blocks past it freed");
	MT_EQ(cvb_meta_alloc(m, f, (1ull << 32) * 4096 - MiB, MiB, e, 8, &n,
			     &gen),
	      0, "alloc the last granule below 2^32 blocks");
	MT_EQ(cvb_meta_alloc(m, f, (1ull << 32) * 4096, MiB, e, 8, &n, &gen),
	      -EFBIG, "alloc past 2^32 blocks: EFBIG");
	st.st_size = 0;
	MT_EQ(cvb_meta_setattr(m, f, &st, CV_SET_SIZE, &st), 0,
	      "truncate to 0");
	MT_EQ(st.st_blocks, 0, "everything freed");
	MT_EQ(cvb_meta_fallocate(m, f, FALLOC_FL_KEEP_SIZE, B31 - 3 * MiB,
				 6 * MiB),
	      0, "fallocate across 2^31");
	mt_pattern(buf, 2 * MiB, 12);
	mt_lun_write(m, img, f, B31 - 5 * MiB, buf, 2 * MiB);
	MT_EQ(cvb_meta_fallocate(m, f,
				 FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				 B31 - 4 * MiB - 4096, 12288),
	      0, "punch inside data below 2^31");
	mt_close(m);
	mt_check(mt_fsck(img),
		 "e2fsck -fn clean with extents around block 2^31");
	m = mt_open(img);
	MT_EQ(cvb_meta_unlink(m, R, "big"), 0, "unlink");
	cvb_meta_statfs(m, &b);
	MT_EQ(b.f_bfree, a.f_bfree, "free blocks back");
	mt_close(m);
	close(fd);
	free(buf);
	free(back);
	return mt_fail ? 1 : 0;
}

/* ---- measurements ------------------------------------------------ */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cycles(struct cvb_meta *m, int n, int every)
{
	struct stat st;
	char name[32];
	double t0 = now_s();

	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "b%d", i);
		if (cvb_meta_mknod(m, R, name, S_IFREG | 0644, 0, &mt_root,
				   &st) ||
		    cvb_meta_open_ref(m, st.st_ino) ||
		    cvb_meta_close_ref(m, st.st_ino) ||
		    cvb_meta_unlink(m, R, name))
			mt_die("cycle", -EIO);
		if ((i + 1) % every == 0 && cvb_meta_commit(m))
			mt_die("commit", -EIO);
	}
	cvb_meta_commit(m);
	return n / (now_s() - t0);
}

static int cmd_bench(const char *img, int n)
{
	struct cvb_meta *m = mt_open(img);
	struct cvb_meta_stats s;
	struct statvfs sv;
	struct stat st;
	double r1, r64;

	cvb_meta_statfs(m, &sv);
	r1 = cycles(m, n, 1);
	r64 = cycles(m, n, 64);
	if (cvb_meta_mknod(m, R, "one", S_IFREG | 0644, 0, &mt_root, &st) ||
	    cvb_meta_commit(m))
		mt_die("mknod", -EIO);
	cvb_meta_get_stats(m, &s);
	printf("volume %.1f GiB: create+close+unlink %.0f/s committing each, "
	       "%.0f/s committing every 64; one create = %u blocks in its "
	       "transaction, largest transaction %u blocks\n",
	       (double)sv.f_blocks * sv.f_bsize / (1 << 30), r1, r64,
	       s.last_txn_blocks, s.max_txn_blocks);
	mt_close(m);
	return 0;
}

/* n files, one in ten with a granule, a few left open and unlinked
 * (orphans), then death without close: the next open replays. */
static int cmd_fill(const char *img, int n)
{
	struct cvb_meta *m = mt_open(img);
	struct cvb_extent e[2];
	char name[32];
	unsigned k;
	uint64_t gen, d = R;

	for (int i = 0; i < n; i++) {
		uint64_t f;

		if (i % 1000 == 0) {
			snprintf(name, sizeof(name), "d%d", i / 1000);
			d = mt_mk(m, R, name, S_IFDIR | 0755);
		}
		snprintf(name, sizeof(name), "f%d", i);
		f = mt_mk(m, d, name, S_IFREG | 0644);
		if (i % 10 == 0 && cvb_meta_alloc(m, f, 0, 1, e, 2, &k, &gen))
			mt_die("alloc", -EIO);
		if (i % 1000 == 1) {
			cvb_meta_open_ref(m, f);
			cvb_meta_unlink(m, d, name);
		}
		if (i % 100 == 99)
			cvb_meta_commit(m);
	}
	cvb_meta_commit(m);
	printf("filled %d files; dying with the journal full and orphans\n", n);
	fflush(stdout);
	raise(SIGKILL);
	return 1;
}

static int cmd_opentime(const char *img)
{
	double t0 = now_s();
	struct cvb_meta *m = mt_open(img);
	double t1 = now_s();
	struct cvb_meta_stats s;

	cvb_meta_get_stats(m, &s);
	printf("open %.3f s: %u transactions replayed, %u orphans freed\n",
	       t1 - t0, s.replayed, s.orphans_done);
	mt_close(m);
	return 0;
}

/* Open and close; the engine's error message on failure. */
static int cmd_probe(const char *img)
{
	struct cvb_meta *m;
	char err[256];
	int rc = cvb_meta_open(img, NULL, &m, err, sizeof(err));

	if (rc) {
		printf("%s\n", err);
		return 1;
	}
	mt_close(m);
	printf("ok\n");
	return 0;
}

int mt_run_cmd(int argc, char **argv)
{
	const char *cmd = argv[1], *img = argv[2];

	if (!strcmp(cmd, "ops"))
		return cmd_ops(img);
	if (!strcmp(cmd, "orphan"))
		return cmd_orphan(img);
	if (!strcmp(cmd, "check-orphan") && argc == 4)
		return cmd_check_orphan(img, strtoull(argv[3], NULL, 0));
	if (!strcmp(cmd, "enospc"))
		return cmd_enospc(img);
	if (!strcmp(cmd, "big"))
		return cmd_big(img);
	if (!strcmp(cmd, "bench") && argc == 4)
		return cmd_bench(img, atoi(argv[3]));
	if (!strcmp(cmd, "fill") && argc == 4)
		return cmd_fill(img, atoi(argv[3]));
	if (!strcmp(cmd, "probe"))
		return cmd_probe(img);
	if (!strcmp(cmd, "opentime"))
		return cmd_opentime(img);
	fprintf(stderr, "mtool: unknown command %s\n", cmd);
	return 2;
}
