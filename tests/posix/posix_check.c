// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * posix_check.c - POSIX behaviour checks run inside a mounted csvfs.
 *
 *	posix_check MOUNTPOINT SUBDIR [local|nfs|nfs4]
 *
 * SUBDIR is created on the mount.  Every check compares results and errno
 * values with what a local ext4 gives (PROFILE "local", the default).
 * PROFILE "nfs" is what the nfs backend documents in csvfs(8), where NFS
 * (v3, through libnfs) cannot do what ext4 does: no hole information
 * (SEEK_DATA/SEEK_HOLE see all data, as Linux gives for file systems
 * without hole tracking), fallocate fails with EOPNOTSUPP (glibc and QEMU
 * then write zeroes), RENAME_EXCHANGE fails with EINVAL, timestamps are
 * set to the microsecond, and only the virtual user.csvfs.* extended
 * attributes exist (others: EOPNOTSUPP).  PROFILE "nfs4" is "nfs" over
 * NFSv4, where libnfs cannot create FIFOs (mkfifo: EPERM, as on file
 * systems without special files).  PROFILE "block" (a block volume)
 * allocates in 1 MiB granules, so SEEK_HOLE after a 4 KiB write into a
 * hole finds the end of its granule.  Everything else is checked the same
 * for every profile.  Output is TAP-like:
 * "ok N - what" / "not ok N - what (detail)"; exit 0 if all passed,
 * 1 otherwise.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

static int n_run, n_fail;
static bool nfs_profile; /* see the head comment */
static bool nfs4_profile; /* "nfs4": nfs_profile too */
static bool block_profile; /* "block": space comes in 1 MiB granules */

static void check(bool ok, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void check(bool ok, const char *fmt, ...)
{
	va_list ap;
	int saverr = errno;

	n_run++;
	printf("%s %d - ", ok ? "ok" : "not ok", n_run);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	if (!ok) {
		printf(" (errno %d %s)", saverr, strerror(saverr));
		n_fail++;
	}
	printf("\n");
	fflush(stdout);
}

/* expr must fail with errno e */
#define FAILS(expr, e, what)                                              \
	do {                                                              \
		errno = 0;                                                \
		long _r = (long)(expr);                                   \
		check(_r == -1 && errno == (e), "%s fails with %s", what, \
		      #e);                                                \
	} while (0)

#define OK(expr, what)                                        \
	do {                                                  \
		errno = 0;                                    \
		check((long)(expr) != -1, "%s", what);        \
	} while (0)

static int mkfile(const char *name, const void *data, size_t len)
{
	int fd = open(name, O_CREAT | O_TRUNC | O_WRONLY, 0644);

	if (fd < 0)
		return -1;
	if (len && write(fd, data, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	return close(fd);
}

static void t_basic(void)
{
	char buf[64] = "";
	struct stat st;
	int fd;

	fd = open("f1", O_CREAT | O_EXCL | O_RDWR, 0640);
	check(fd >= 0, "create f1 O_EXCL");
	check(write(fd, "hello csvfs", 11) == 11, "write 11 bytes");
	check(pread(fd, buf, sizeof(buf), 0) == 11 &&
		      !memcmp(buf, "hello csvfs", 11),
	      "read back");
	check(fstat(fd, &st) == 0 && st.st_size == 11 && S_ISREG(st.st_mode) &&
		      (st.st_mode & 07777) == 0640,
	      "fstat size and mode");
	close(fd);
	FAILS(open("f1", O_CREAT | O_EXCL | O_RDWR, 0644), EEXIST,
	      "create existing O_EXCL");
	FAILS(open("nope", O_RDONLY), ENOENT, "open missing");
	FAILS(stat("nope/x", &st), ENOENT, "stat under missing dir");
	FAILS(open("f1/x", O_RDONLY), ENOTDIR, "open under a file");
	fd = open("f1", O_WRONLY | O_APPEND);
	check(fd >= 0 && write(fd, "!", 1) == 1, "O_APPEND write");
	close(fd);
	check(stat("f1", &st) == 0 && st.st_size == 12, "O_APPEND appended");
	fd = open("f1", O_WRONLY | O_TRUNC);
	check(fd >= 0, "open O_TRUNC");
	close(fd);
	check(stat("f1", &st) == 0 && st.st_size == 0, "O_TRUNC truncated");
}

static void t_dirs(void)
{
	char name[300];
	struct stat st;

	OK(mkdir("d1", 0755), "mkdir d1");
	FAILS(mkdir("d1", 0755), EEXIST, "mkdir existing");
	OK(mkfile("d1/x", "x", 1), "file in d1");
	FAILS(rmdir("d1"), ENOTEMPTY, "rmdir non-empty");
	FAILS(unlink("d1"), EISDIR, "unlink a directory");
	FAILS(rmdir("d1/x"), ENOTDIR, "rmdir a file");
	FAILS(mkdir("d1/x/y", 0755), ENOTDIR, "mkdir under a file");
	FAILS(open("d1", O_WRONLY), EISDIR, "open dir for write");
	memset(name, 'n', 256);
	name[256] = '\0';
	FAILS(open(name, O_CREAT | O_WRONLY, 0644), ENAMETOOLONG,
	      "create 256-byte name");
	FAILS(mkdir(name, 0755), ENAMETOOLONG, "mkdir 256-byte name");
	FAILS(stat(name, &st), ENAMETOOLONG, "stat 256-byte name");
	name[255] = '\0';
	OK(mkfile(name, "", 0), "create 255-byte name");
	OK(unlink(name), "unlink 255-byte name");
	OK(mkdir("d2", 0755), "mkdir d2");
	OK(mkfile("d2/y", "y", 1), "file in d2");
	FAILS(rename("d1", "d2"), ENOTEMPTY, "rename dir onto non-empty dir");
	FAILS(rename("d1", "d1/sub"), EINVAL, "rename dir into itself");
	FAILS(rename("f1", "d2"), EISDIR, "rename file onto dir");
	FAILS(rename("d2", "f1"), ENOTDIR, "rename dir onto file");
	FAILS(unlink("d2/nope"), ENOENT, "unlink missing");
	FAILS(rmdir("d2/nope"), ENOENT, "rmdir missing");
	OK(unlink("d2/y"), "unlink d2/y");
	OK(rename("d1", "d2"), "rename dir onto empty dir");
	check(stat("d2/x", &st) == 0, "renamed dir content");
	OK(unlink("d2/x"), "unlink d2/x");
	OK(rmdir("d2"), "rmdir d2");
	snprintf(name, sizeof(name), "/tmp/csvfs-exdev-%ld", (long)getpid());
	FAILS(link("f1", name), EXDEV, "link to another file system");
	FAILS(rename("f1", name), EXDEV, "rename to another file system");
	unlink(name);
}

static void t_readdir(void)
{
	char name[64];
	struct dirent *e;
	DIR *d;
	int n = 0, ok = 1;

	OK(mkdir("many", 0755), "mkdir many");
	for (int i = 0; i < 300 && ok; i++) {
		snprintf(name, sizeof(name), "many/file-with-a-long-name-%04d",
			 i);
		ok = mkfile(name, "", 0) == 0;
	}
	check(ok, "create 300 files");
	d = opendir("many");
	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	if (d)
		closedir(d);
	check(n == 300, "readdir returns 300 entries (got %d)", n);
	d = opendir(".");
	n = 0;
	while (d && (e = readdir(d)))
		n += !strcmp(e->d_name, ".csvfs");
	if (d)
		closedir(d);
	check(n == 0, "no .csvfs in this directory's listing");
}

static void t_large_io(void)
{
	size_t sz = 1024 * 1024;
	char *a = malloc(4 * sz), *b = malloc(4 * sz);
	int fd;

	for (size_t i = 0; i < 4 * sz; i++)
		a[i] = (char)(i * 7 + i / 4096);
	fd = open("big", O_CREAT | O_RDWR, 0644);
	check(pwrite(fd, a, sz, 0) == (ssize_t)sz, "pwrite 1 MiB");
	check(pread(fd, b, sz, 0) == (ssize_t)sz && !memcmp(a, b, sz),
	      "pread 1 MiB matches");
	check(pwrite(fd, a, 4 * sz, 0) == (ssize_t)(4 * sz), "pwrite 4 MiB");
	memset(b, 0, 4 * sz);
	check(pread(fd, b, 4 * sz, 0) == (ssize_t)(4 * sz) &&
		      !memcmp(a, b, 4 * sz),
	      "pread 4 MiB matches");
	check(pread(fd, b, sz, 4 * sz) == 0, "read at EOF returns 0");
	OK(fsync(fd), "fsync");
	OK(fdatasync(fd), "fdatasync");
	close(fd);
	free(a);
	free(b);
}

/* nfs profile: every fallocate mode fails cleanly, the file untouched. */
static void t_falloc_nfs(void)
{
	struct stat st;
	int fd = open("falloc", O_CREAT | O_RDWR, 0644);

	FAILS(fallocate(fd, 0, 0, 1 << 20), EOPNOTSUPP, "nfs: fallocate");
	FAILS(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
			4096), EOPNOTSUPP, "nfs: punch hole");
	FAILS(fallocate(fd, FALLOC_FL_ZERO_RANGE, 0, 4096), EOPNOTSUPP,
	      "nfs: zero range");
	check(fstat(fd, &st) == 0 && st.st_size == 0, "nfs: size still 0");
	check(posix_fallocate(fd, 0, 65536) == 0 && fstat(fd, &st) == 0 &&
		      st.st_size == 65536,
	      "nfs: posix_fallocate falls back to writing");
	close(fd);
}

static void t_sparse(void)
{
	off_t m = 1024 * 1024;
	char buf[4096];
	struct stat st;
	int fd;

	memset(buf, 'S', sizeof(buf));
	fd = open("sparse", O_CREAT | O_RDWR, 0644);
	OK(ftruncate(fd, 16 * m), "ftruncate 16 MiB");
	check(pwrite(fd, buf, sizeof(buf), 8 * m) == sizeof(buf),
	      "write 4 KiB at 8 MiB");
	if (nfs_profile) {
		check(lseek(fd, 0, SEEK_DATA) == 0, "nfs: SEEK_DATA at 0 is 0");
		check(lseek(fd, 8 * m, SEEK_HOLE) == 16 * m,
		      "nfs: SEEK_HOLE is EOF");
	} else {
		check(lseek(fd, 0, SEEK_DATA) == 8 * m,
		      "SEEK_DATA finds 8 MiB");
		if (block_profile)
			check(lseek(fd, 8 * m, SEEK_HOLE) == 9 * m,
			      "block: SEEK_HOLE after the data's granule");
		else
			check(lseek(fd, 8 * m, SEEK_HOLE) == 8 * m + 4096,
			      "SEEK_HOLE after the data");
		check(lseek(fd, 0, SEEK_HOLE) == 0, "SEEK_HOLE at 0");
	}
	FAILS(lseek(fd, 17 * m, SEEK_DATA), ENXIO, "SEEK_DATA past EOF");
	check(fstat(fd, &st) == 0 && st.st_blocks * 512 < 2 * m,
	      "file stays sparse (%lld blocks)", (long long)st.st_blocks);
	close(fd);
	if (nfs_profile) {
		t_falloc_nfs();
		return;
	}

	fd = open("falloc", O_CREAT | O_RDWR, 0644);
	OK(fallocate(fd, 0, 0, m), "fallocate 1 MiB");
	check(fstat(fd, &st) == 0 && st.st_size == m, "fallocate sets size");
	memset(buf, 'F', sizeof(buf));
	for (off_t o = 0; o < m; o += sizeof(buf))
		pwrite(fd, buf, sizeof(buf), o);
	OK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 65536,
		     65536),
	   "punch hole 64K..128K");
	check(pread(fd, buf, sizeof(buf), 65536) == sizeof(buf) &&
		      buf[0] == 0 && buf[4095] == 0,
	      "hole reads zeros");
	check(fstat(fd, &st) == 0 && st.st_size == m, "size kept");
	check(lseek(fd, 65536, SEEK_HOLE) == 65536, "SEEK_HOLE finds hole");
	check(lseek(fd, 65536, SEEK_DATA) == 131072, "SEEK_DATA after hole");
	OK(fallocate(fd, FALLOC_FL_ZERO_RANGE, 0, 4096), "zero range");
	check(pread(fd, buf, 4096, 0) == 4096 && buf[0] == 0 && buf[4095] == 0,
	      "zero range reads zeros");
	OK(fallocate(fd, FALLOC_FL_KEEP_SIZE, m, m), "fallocate KEEP_SIZE");
	check(fstat(fd, &st) == 0 && st.st_size == m, "KEEP_SIZE keeps size");
	close(fd);
}

static void t_direct(void)
{
	void *buf = NULL, *rb = NULL;
	int fd;

	posix_memalign(&buf, 4096, 65536);
	posix_memalign(&rb, 4096, 65536);
	memset(buf, 'D', 65536);
	fd = open("direct", O_CREAT | O_RDWR | O_DIRECT, 0644);
	check(fd >= 0, "open O_DIRECT");
	check(pwrite(fd, buf, 65536, 0) == 65536, "O_DIRECT write 64 KiB");
	check(pread(fd, rb, 65536, 0) == 65536 && !memcmp(buf, rb, 65536),
	      "O_DIRECT read back");
	memset(rb, 0, 65536);
	check(pread(fd, rb, 65536, 61440) == 4096 && !memcmp(buf, rb, 4096),
	      "O_DIRECT read across the end of file is short");
	memset(rb, 0, 65536);
	check(pread(fd, rb, 1000, 100) == 1000 && !memcmp(buf, rb, 1000),
	      "O_DIRECT read of an unaligned range");
	close(fd);
	free(buf);
	free(rb);
}

static int ren2(const char *a, const char *b, unsigned flags)
{
	return (int)syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, flags);
}

static void t_rename(void)
{
	char buf[8] = "";
	int fd;

	mkfile("ra", "A", 1);
	mkfile("rb", "B", 1);
	FAILS(ren2("ra", "rb", RENAME_NOREPLACE), EEXIST,
	      "RENAME_NOREPLACE onto existing");
	OK(ren2("ra", "rc", RENAME_NOREPLACE), "RENAME_NOREPLACE to new name");
	if (nfs_profile) {
		FAILS(ren2("rc", "rb", RENAME_EXCHANGE), EINVAL,
		      "nfs: RENAME_EXCHANGE");
		OK(rename("rc", "rb"), "nfs: plain rename");
		fd = open("rb", O_RDONLY);
		check(fd >= 0 && read(fd, buf, 1) == 1 && buf[0] == 'A',
		      "nfs: renamed contents");
		close(fd);
		mkfile("rc", "C", 1);
	} else {
		OK(ren2("rc", "rb", RENAME_EXCHANGE), "RENAME_EXCHANGE");
		fd = open("rb", O_RDONLY);
		check(fd >= 0 && read(fd, buf, 1) == 1 && buf[0] == 'A',
		      "exchange swapped contents");
		close(fd);
		FAILS(ren2("rb", "nope", RENAME_EXCHANGE), ENOENT,
		      "RENAME_EXCHANGE with missing target");
	}
	OK(rename("rb", "rc"), "rename replacing a file");
	FAILS(access("rb", F_OK), ENOENT, "old name gone");
}

static void t_links(void)
{
	struct stat a, b, l;
	char buf[64];
	ssize_t n;

	mkfile("ln1", "L", 1);
	OK(link("ln1", "ln2"), "hard link");
	check(stat("ln1", &a) == 0 && stat("ln2", &b) == 0 &&
		      a.st_ino == b.st_ino && a.st_nlink == 2,
	      "hard links share st_ino, nlink 2");
	FAILS(link("ln1", "ln2"), EEXIST, "link onto existing");
	FAILS(link("nope", "ln3"), ENOENT, "link missing source");
	OK(unlink("ln1"), "unlink one link");
	check(stat("ln2", &b) == 0 && b.st_nlink == 1, "nlink back to 1");
	OK(symlink("ln2", "sl"), "symlink");
	n = readlink("sl", buf, sizeof(buf));
	check(n == 3 && !memcmp(buf, "ln2", 3), "readlink");
	check(lstat("sl", &l) == 0 && S_ISLNK(l.st_mode), "lstat symlink");
	check(stat("sl", &l) == 0 && l.st_ino == b.st_ino,
	      "stat follows symlink");
	FAILS(symlink("x", "sl"), EEXIST, "symlink onto existing");
	OK(symlink("/nonexistent/target", "dangling"), "dangling symlink");
	FAILS(stat("dangling", &l), ENOENT, "stat dangling symlink");
	FAILS(readlink("ln2", buf, sizeof(buf)), EINVAL,
	      "readlink on a file");
	if (nfs4_profile) {
		FAILS(mkfifo("fifo", 0600), EPERM, "nfs4: mkfifo");
		FAILS(lstat("fifo", &l), ENOENT, "nfs4: no fifo left");
		return;
	}
	OK(mkfifo("fifo", 0600), "mkfifo");
	check(lstat("fifo", &l) == 0 && S_ISFIFO(l.st_mode), "fifo type");
	FAILS(mkfifo("fifo", 0600), EEXIST, "mkfifo existing");
}

static void t_attrs(void)
{
	struct timespec ts[2] = { { 1000000000, 5 }, { 1200000000, 7 } };
	struct stat st, st2;
	struct statvfs sv;
	time_t now = time(NULL);

	mkfile("at", "12345", 5);
	OK(chmod("at", 0600), "chmod");
	check(stat("at", &st) == 0 && (st.st_mode & 07777) == 0600,
	      "mode 0600");
	OK(chown("at", 1234, 4321), "chown");
	check(stat("at", &st) == 0 && st.st_uid == 1234 && st.st_gid == 4321,
	      "owner 1234:4321");
	OK(truncate("at", 2), "truncate shrink");
	check(stat("at", &st) == 0 && st.st_size == 2, "size 2");
	OK(truncate("at", 100000), "truncate grow");
	check(stat("at", &st) == 0 && st.st_size == 100000, "size 100000");
	FAILS(truncate("nope", 0), ENOENT, "truncate missing");
	mkdir("atdir", 0755);
	FAILS(truncate("atdir", 0), EISDIR, "truncate a directory");
	OK(utimensat(AT_FDCWD, "at", ts, 0), "utimensat explicit");
	check(stat("at", &st) == 0 && st.st_atim.tv_sec == 1000000000 &&
		      st.st_mtim.tv_sec == 1200000000 &&
		      st.st_mtim.tv_nsec == (nfs_profile ? 0 : 7),
	      "times set");
	ts[0].tv_nsec = UTIME_NOW;
	ts[1].tv_nsec = UTIME_OMIT;
	OK(utimensat(AT_FDCWD, "at", ts, 0), "utimensat NOW/OMIT");
	check(stat("at", &st2) == 0 && st2.st_atim.tv_sec >= now - 5 &&
		      st2.st_mtim.tv_sec == 1200000000,
	      "atime now, mtime kept");
	OK(statvfs(".", &sv), "statvfs");
	check(sv.f_bsize > 0 && sv.f_blocks > 0, "statvfs figures");
}

/* nfs profile: no stored xattrs, the virtual user.csvfs.* ones work. */
static void t_xattrs_nfs(void)
{
	char buf[256], list[4096];
	struct stat st;
	ssize_t n;

	FAILS(setxattr("xa", "user.test", "v1", 2, 0), EOPNOTSUPP,
	      "nfs: setxattr user.test");
	FAILS(getxattr("xa", "user.test", buf, sizeof(buf)), EOPNOTSUPP,
	      "nfs: getxattr user.test");
	n = listxattr("xa", list, sizeof(list));
	check(n > 0 && memmem(list, (size_t)n, "user.csvfs.fileid", 18),
	      "nfs: listxattr shows user.csvfs.fileid");
	n = getxattr("xa", "user.csvfs.fileid", buf, sizeof(buf) - 1);
	if (n > 0)
		buf[n] = '\0';
	check(n > 0 && stat("xa", &st) == 0 &&
		      strtoull(buf, NULL, 10) == (unsigned long long)st.st_ino,
	      "nfs: user.csvfs.fileid is st_ino");
	FAILS(setxattr("xa", "user.csvfs.owner", "x", 1, 0), EPERM,
	      "nfs: setting user.csvfs.owner");
}

static void t_xattrs(void)
{
	char buf[256], list[4096];
	struct stat st;
	ssize_t n;
	bool has_user = false, has_fileid = false;

	mkfile("xa", "", 0);
	if (nfs_profile) {
		t_xattrs_nfs();
		return;
	}
	OK(setxattr("xa", "user.test", "v1", 2, 0), "setxattr user.test");
	n = getxattr("xa", "user.test", buf, sizeof(buf));
	check(n == 2 && !memcmp(buf, "v1", 2), "getxattr user.test");
	check(getxattr("xa", "user.test", NULL, 0) == 2, "getxattr size");
	FAILS(getxattr("xa", "user.test", buf, 1), ERANGE,
	      "getxattr small buffer");
	FAILS(setxattr("xa", "user.test", "v2", 2, XATTR_CREATE), EEXIST,
	      "XATTR_CREATE existing");
	FAILS(setxattr("xa", "user.new", "v2", 2, XATTR_REPLACE), ENODATA,
	      "XATTR_REPLACE missing");
	FAILS(getxattr("xa", "user.nope", buf, sizeof(buf)), ENODATA,
	      "getxattr missing");
	n = listxattr("xa", list, sizeof(list));
	for (ssize_t p = 0; n > 0 && p < n; p += (ssize_t)strlen(list + p) + 1) {
		has_user |= !strcmp(list + p, "user.test");
		has_fileid |= !strcmp(list + p, "user.csvfs.fileid");
	}
	check(has_user && has_fileid, "listxattr shows user.test and "
				      "user.csvfs.fileid");
	n = getxattr("xa", "user.csvfs.fileid", buf, sizeof(buf) - 1);
	if (n > 0)
		buf[n] = '\0';
	check(n > 0 && stat("xa", &st) == 0 &&
		      strtoull(buf, NULL, 10) == (unsigned long long)st.st_ino,
	      "user.csvfs.fileid is st_ino");
	n = getxattr("xa", "user.csvfs.volume", buf, sizeof(buf));
	check(n == 36 && buf[8] == '-', "user.csvfs.volume is a UUID");
	check(getxattr("xa", "user.csvfs.owner", buf, sizeof(buf)) >= 0,
	      "user.csvfs.owner readable");
	check(getxattr("xa", "user.csvfs.epoch", buf, sizeof(buf)) > 0,
	      "user.csvfs.epoch readable");
	FAILS(setxattr("xa", "user.csvfs.owner", "x", 1, 0), EPERM,
	      "setting user.csvfs.owner");
	FAILS(setxattr("xa", "user.csvfs.mine", "x", 1, 0), EPERM,
	      "setting reserved user.csvfs.mine");
	FAILS(removexattr("xa", "user.csvfs.epoch"), EPERM,
	      "removing user.csvfs.epoch");
	FAILS(getxattr("xa", "user.csvfs.nope", buf, sizeof(buf)), ENODATA,
	      "unknown reserved attribute");
	OK(removexattr("xa", "user.test"), "removexattr");
	FAILS(removexattr("xa", "user.test"), ENODATA, "removexattr again");
}

/* ---- locks: a child process is a second lock owner ---------------------- */

static int child(int (*fn)(void))
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		_exit(fn());
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 99;
}

static int child_setlk(void)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
			    .l_start = 0, .l_len = 100 };
	int fd = open("lk", O_RDWR);

	if (fcntl(fd, F_SETLK, &fl) == 0)
		return 0;
	return errno == EAGAIN || errno == EACCES ? 1 : 2;
}

static int child_getlk(void)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
			    .l_start = 50, .l_len = 10 };
	int fd = open("lk", O_RDWR);

	if (fcntl(fd, F_GETLK, &fl))
		return 2;
	return fl.l_type == F_WRLCK && fl.l_start == 0 && fl.l_len == 100
		       ? 1
		       : 0;
}

static int child_flock(void)
{
	int fd = open("lk", O_RDWR);

	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	return errno == EWOULDBLOCK ? 1 : 2;
}

static void t_locks(void)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
			    .l_start = 0, .l_len = 100 };
	int fd, fd2;

	mkfile("lk", "locks", 5);
	fd = open("lk", O_RDWR);
	OK(fcntl(fd, F_SETLK, &fl), "F_SETLK write 0..99");
	check(child(child_setlk) == 1, "other process: F_SETLK conflicts");
	check(child(child_getlk) == 1, "other process: F_GETLK reports it");
	fl.l_type = F_UNLCK;
	OK(fcntl(fd, F_SETLK, &fl), "F_SETLK unlock");
	check(child(child_setlk) == 0, "other process: F_SETLK after unlock");
	fl.l_type = F_WRLCK;
	OK(fcntl(fd, F_SETLK, &fl), "F_SETLK again");
	fd2 = open("lk", O_RDONLY);
	close(fd2); /* POSIX: closing any fd drops the process's locks */
	check(child(child_setlk) == 0, "close of another fd drops POSIX lock");
	close(fd);

	fd = open("lk", O_RDWR);
	OK(flock(fd, LOCK_EX), "flock LOCK_EX");
	check(child(child_flock) == 1, "other open file: flock conflicts");
	OK(flock(fd, LOCK_UN), "flock LOCK_UN");
	check(child(child_flock) == 0, "flock free after unlock");
	OK(flock(fd, LOCK_SH), "flock LOCK_SH");
	close(fd);
	check(child(child_flock) == 0, "flock released on close");

	fd = open("lk", O_RDWR);
	fd2 = open("lk", O_RDWR);
	fl.l_type = F_WRLCK;
	fl.l_pid = 0;
	OK(fcntl(fd, F_OFD_SETLK, &fl), "F_OFD_SETLK on first open file");
	FAILS(fcntl(fd2, F_OFD_SETLK, &fl), EAGAIN,
	      "F_OFD_SETLK on second open file");
	check(child(child_setlk) == 1, "OFD lock blocks a POSIX lock");
	close(fd);
	fl.l_pid = 0;
	/*
	 * FUSE learns of the last close of an open file only through
	 * RELEASE, which the kernel sends asynchronously: the OFD lock goes
	 * a moment after close() returns.  Allow that moment (bounded).
	 */
	for (int i = 0; i < 200 && fcntl(fd2, F_OFD_SETLK, &fl) < 0 &&
	     errno == EAGAIN; i++)
		usleep(5000);
	OK(fcntl(fd2, F_OFD_SETLK, &fl), "OFD lock released by close");
	close(fd2);
	check(child(child_setlk) == 0, "all locks gone after close");
}

static void t_hidden(const char *top)
{
	struct stat st;
	char p[PATH_MAX + 16];
	int fd;

	snprintf(p, sizeof(p), "%s/.csvfs", top);
	FAILS(stat(p, &st), ENOENT, "stat .csvfs at the root");
	FAILS(mkdir(p, 0755), EPERM, "mkdir .csvfs at the root");
	FAILS(open(p, O_CREAT | O_WRONLY, 0644), EPERM, "create .csvfs");
	FAILS(symlink("x", p), EPERM, "symlink named .csvfs");
	FAILS(rename("ra", p), ENOENT, "rename missing onto .csvfs");
	mkfile("hid", "", 0);
	FAILS(rename("hid", p), EPERM, "rename onto .csvfs");
	FAILS(link("hid", p), EPERM, "link named .csvfs");
	FAILS(unlink(p), ENOENT, "unlink .csvfs");
	FAILS(rmdir(p), ENOENT, "rmdir .csvfs");
	FAILS(getxattr(p, "user.x", NULL, 0), ENOENT, "getxattr .csvfs");
	fd = open(top, O_RDONLY | O_DIRECTORY);
	check(fd >= 0 && fsync(fd) == 0, "fsync a directory");
	if (fd >= 0)
		close(fd);
	OK(mkdir(".csvfs", 0755), ".csvfs allowed below the root");
	OK(rmdir(".csvfs"), "and removed");
}

static void t_unlinked_open(void)
{
	char buf[4] = "";
	int fd;

	mkfile("gone", "abc", 3);
	fd = open("gone", O_RDWR);
	OK(unlink("gone"), "unlink an open file");
	check(pread(fd, buf, 3, 0) == 3 && !memcmp(buf, "abc", 3),
	      "open file still readable");
	check(pwrite(fd, "z", 1, 3) == 1, "and writable");
	close(fd);
}

int main(int argc, char **argv)
{
	char top[PATH_MAX];

	if (argc < 3 || argc > 4 ||
	    (argc == 4 && strcmp(argv[3], "local") && strcmp(argv[3], "nfs") &&
	     strcmp(argv[3], "nfs4") && strcmp(argv[3], "block"))) {
		fprintf(stderr, "usage: posix_check MOUNTPOINT SUBDIR "
				"[local|nfs|nfs4|block]\n");
		return 2;
	}
	nfs4_profile = argc == 4 && !strcmp(argv[3], "nfs4");
	nfs_profile = nfs4_profile || (argc == 4 && !strcmp(argv[3], "nfs"));
	block_profile = argc == 4 && !strcmp(argv[3], "block");
	snprintf(top, sizeof(top), "%s", argv[1]);
	if (chdir(argv[1]) || mkdir(argv[2], 0755) || chdir(argv[2])) {
		perror("posix_check: set-up");
		return 2;
	}
	t_basic();
	t_dirs();
	t_readdir();
	t_large_io();
	t_sparse();
	t_direct();
	t_rename();
	t_links();
	t_attrs();
	t_xattrs();
	t_locks();
	t_hidden(top);
	t_unlinked_open();
	printf("# %d checks, %d failed\n", n_run, n_fail);
	return n_fail ? 1 : 0;
}
