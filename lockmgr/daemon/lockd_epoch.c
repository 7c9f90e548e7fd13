// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lockd_epoch.c - the persistent epoch high-water mark of csvfs-lockd
 * (see lockd_epoch.h): the pure reservation rule, the file's text format,
 * and its atomic, durable replacement.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lockd_epoch.h"

uint64_t lockd_epoch_next_reservation(uint64_t epoch, uint64_t reserved)
{
	uint64_t low = epoch > UINT64_MAX - LOCKD_EPOCH_LOW ?
		       UINT64_MAX : epoch + LOCKD_EPOCH_LOW;

	if (low < reserved)
		return 0;
	if (epoch > UINT64_MAX - LOCKD_EPOCH_BLOCK)
		return UINT64_MAX;
	return epoch + LOCKD_EPOCH_BLOCK;
}

int lockd_epoch_format(uint64_t value, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%" PRIu64 "\n", value);

	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	return n;
}

int lockd_epoch_parse(const char *text, size_t len, uint64_t *value)
{
	uint64_t v = 0;
	size_t i;

	if (len && text[len - 1] == '\n')
		len--;
	if (!len)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		unsigned d;

		if (text[i] < '0' || text[i] > '9')
			return -EINVAL;
		d = (unsigned)(text[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*value = v;
	return 0;
}

int lockd_epoch_prepare(const char *dir, char *err, size_t errlen)
{
	struct stat sb;
	int saverr;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		saverr = errno;
		snprintf(err, errlen, "cannot create the state directory %s: "
			 "%s; create it (or set state_dir in csvfs.conf)",
			 dir, strerror(saverr));
		return -saverr;
	}
	saverr = stat(dir, &sb) < 0 ? errno :
		 !S_ISDIR(sb.st_mode) ? ENOTDIR : 0;
	if (saverr) {
		snprintf(err, errlen, "state directory %s: %s; set state_dir "
			 "in csvfs.conf to a directory", dir,
			 strerror(saverr));
		return -saverr;
	}
	if (access(dir, W_OK | X_OK) < 0) {
		saverr = errno;
		snprintf(err, errlen, "state directory %s is not writable: "
			 "%s; csvfs-lockd keeps its epoch high-water mark "
			 "there, make it writable", dir, strerror(saverr));
		return -saverr;
	}
	return 0;
}

static int path_of(char *buf, size_t len, const char *dir, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int lockd_epoch_read(const char *dir, uint64_t *value, char *err,
		     size_t errlen)
{
	char path[PATH_MAX], text[LOCKD_EPOCH_TEXT_MAX + 1];
	ssize_t n;
	int fd, saverr;

	*value = 0;
	if (path_of(path, sizeof(path), dir, LOCKD_EPOCH_FILE)) {
		snprintf(err, errlen, "state directory %s: path too long", dir);
		return -ENAMETOOLONG;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		saverr = errno;
		snprintf(err, errlen, "cannot open %s: %s", path,
			 strerror(saverr));
		return -saverr;
	}
	n = read(fd, text, sizeof(text));
	saverr = errno;
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path,
			 strerror(saverr));
		return -saverr;
	}
	if ((size_t)n > LOCKD_EPOCH_TEXT_MAX ||
	    lockd_epoch_parse(text, (size_t)n, value)) {
		snprintf(err, errlen, "%s is corrupt (expected one decimal "
			 "number); if every other node's lockd is running, "
			 "remove it and start again, else restore it from a "
			 "node that has it or write a number above every "
			 "epoch ever granted", path);
		return -EINVAL;
	}
	return 0;
}

/* Write text to a new tmp file in dir and fsync it. */
static int write_tmp(const char *tmp, const char *text, size_t len)
{
	int fd, saverr = 0;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len)
		saverr = errno ? errno : EIO;
	else if (fsync(fd) < 0)
		saverr = errno;
	if (close(fd) < 0 && !saverr)
		saverr = errno;
	return -saverr;
}

static int fsync_dir(const char *dir)
{
	int fd, ret = 0;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

int lockd_epoch_write(const char *dir, uint64_t value, char *err,
		      size_t errlen)
{
	char path[PATH_MAX], tmp[PATH_MAX], text[LOCKD_EPOCH_TEXT_MAX];
	const char *what;
	int len, ret;

	if (path_of(path, sizeof(path), dir, LOCKD_EPOCH_FILE) ||
	    path_of(tmp, sizeof(tmp), dir, LOCKD_EPOCH_FILE ".tmp")) {
		snprintf(err, errlen, "state directory %s: path too long", dir);
		return -ENAMETOOLONG;
	}
	len = lockd_epoch_format(value, text, sizeof(text));
	if (len < 0)
		return len;
	what = "write";
	ret = write_tmp(tmp, text, (size_t)len);
	if (ret)
		goto fail_unlink;
	what = "rename";
	if (rename(tmp, path) < 0) {
		ret = -errno;
		goto fail_unlink;
	}
	what = "fsync the directory of";
	ret = fsync_dir(dir);
	if (ret)
		goto fail;
	return 0;

fail_unlink:
	unlink(tmp);
fail:
	snprintf(err, errlen, "cannot %s %s: %s; check the file system of "
		 "the state directory", what, path, strerror(-ret));
	return ret;
}
