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
