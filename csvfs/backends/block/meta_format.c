// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * meta_format.c: cvb_format, a new block volume made by mke2fs from
 * e2fsprogs with the engine's feature set (CVB_FEATURES): 4 KiB blocks,
 * an internal journal, inode tables and journal written at once (no
 * lazy initialisation, which a later kernel mount would finish behind
 * csvfs's back), and no reserved blocks (nobody logs in as root on a
 * volume of VM disks).
 */
#include "meta.h"
#include "lun.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *find_mke2fs(void)
{
	static const char *const where[] = { "/sbin/mke2fs", "/usr/sbin/mke2fs",
					     "/bin/mke2fs", "/usr/bin/mke2fs" };

	for (size_t i = 0; i < sizeof(where) / sizeof(*where); i++)
		if (!access(where[i], X_OK))
			return where[i];
	return NULL;
}

/* Run argv with stdout and stderr into fd; its exit status or -errno. */
static int run(const char *const argv[], int fd)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int st, rc;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fd, 1);
	posix_spawn_file_actions_adddup2(&fa, fd, 2);
	/* posix_spawn's argv is not const-qualified but only read */
	rc = posix_spawn(&pid, argv[0], &fa, NULL,
			 (char *const *)(uintptr_t)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc)
		return -rc;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void last_line(int fd, char *err, size_t errlen)
{
	char buf[4096], *p, *line;
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	buf[n > 0 ? n : 0] = 0;
	while ((p = strrchr(buf, '\n')) && !p[1])
		*p = 0;
	line = strrchr(buf, '\n');
	snprintf(err, errlen, "mke2fs: %s", line ? line + 1 : buf);
}

int cvb_format(const char *path, const char *label, char *err, size_t errlen)
{
	const char *mk = find_mke2fs();
	char tmpl[] = "/tmp/cvb-mke2fs.XXXXXX";
	const char *argv[] = { mk,
			       "-q",
			       "-F",
			       "-t",
			       "ext4",
			       "-b",
			       "4096",
			       "-O",
			       CVB_FEATURES,
			       "-E",
			       "lazy_itable_init=0,lazy_journal_init=0",
			       "-m",
			       "0",
			       "-L",
			       label ? label : "",
			       path,
			       NULL };
	int fd, rc;

	if (!mk) {
		snprintf(err, errlen,
			 "mke2fs not found (Debian package "
			 "e2fsprogs)");
		return -ENOENT;
	}
	if (label && strlen(label) > 16) {
		snprintf(err, errlen, "label longer than 16 bytes");
		return -EINVAL;
	}
	if ((fd = mkstemp(tmpl)) < 0) {
		snprintf(err, errlen, "temporary file: %s", strerror(errno));
		return -errno;
	}
	unlink(tmpl);
	rc = run(argv, fd);
	if (rc > 0)
		last_line(fd, err, errlen);
	else if (rc < 0)
		snprintf(err, errlen, "%s: %s", mk, strerror(-rc));
	else
		snprintf(err, errlen, "ok");
	close(fd);
	return rc > 0 ? -EIO : rc;
}

/* ---- a LUN mke2fs cannot open ------------------------------------------ */

/* Copy [off, off + len) of the image to the LUN. */
static int copy_range(int fd, struct cvb_lun *l, uint8_t *buf, size_t cap,
		      uint64_t off, uint64_t len)
{
	while (len) {
		size_t n = len < cap ? (size_t)len : cap;
		ssize_t got = pread(fd, buf, n, (off_t)off);
		ssize_t put;

		if (got <= 0)
			return got < 0 ? -errno : -EIO;
		put = cvb_lun_pwrite(l, buf, (size_t)got, off);
		if (put != got)
			return put < 0 ? (int)put : -EIO;
		off += (uint64_t)got;
		len -= (uint64_t)got;
	}
	return 0;
}

/* Data regions written, holes zeroed, then flushed. */
static int image_to_lun(int fd, struct cvb_lun *l, uint64_t size)
{
	const size_t cap = 1024 * 1024;
	uint8_t *buf = malloc(cap);
	uint64_t off = 0;
	int rc = buf ? 0 : -ENOMEM;

	while (!rc && off < size) {
		off_t data = lseek(fd, (off_t)off, SEEK_DATA), hole;

		if (data < 0 || (uint64_t)data > size)
			data = (off_t)size; /* ENXIO: a hole to the end */
		rc = cvb_lun_zero(l, off, (uint64_t)data - off);
		if (rc || (uint64_t)data >= size)
			break;
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || (uint64_t)hole > size)
			hole = (off_t)size;
		rc = copy_range(fd, l, buf, cap, (uint64_t)data,
				(uint64_t)(hole - data));
		off = (uint64_t)hole;
	}
	free(buf);
	return rc ? rc : cvb_lun_flush(l);
}

int cvb_format_lun(struct cvb_lun *l, const char *label, char *err,
		   size_t errlen)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	int fd, rc;

	snprintf(path, sizeof(path), "%s/cvb-image.XXXXXX",
		 dir && dir[0] ? dir : "/var/tmp");
	fd = mkstemp(path);
	if (fd < 0) {
		snprintf(err, errlen, "temporary image %s: %s", path,
			 strerror(errno));
		return -errno;
	}
	if (ftruncate(fd, (off_t)cvb_lun_size(l))) {
		rc = -errno;
		snprintf(err, errlen, "temporary image %s: %s", path,
			 strerror(-rc));
		goto out;
	}
	rc = cvb_format(path, label, err, errlen);
	if (!rc && (rc = image_to_lun(fd, l, cvb_lun_size(l))))
		snprintf(err, errlen, "writing the new file system to %s: %s",
			 cvb_lun_source(l), strerror(-rc));
out:
	unlink(path);
	close(fd);
	return rc;
}
