// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * failfuse - a LUN that can be told to fail, for the block-volume
 * scenarios (not a test by itself).  A FUSE file system holding one file,
 * lun.img, passed through to a backing image: reads, writes, fsync and
 * fallocate go to the backing file, until SIGUSR1 makes every one of
 * them fail with EIO (as a disk or a lost path would); SIGUSR2 brings
 * the LUN back.  The kernel has no device-mapper or block fault
 * injection here, and a loop device over a truncated file reads zeroes
 * rather than failing: this is the real error path of the file system
 * csvfs reads its LUN through.
 *
 *   failfuse BACKING_IMAGE MOUNTPOINT [FUSE options]
 *
 * Runs in the foreground; unmount (fusermount3 -u) to stop it.  Prints
 * the count of calls it failed on stderr as it ends.
 */
#define FUSE_USE_VERSION 31

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LUN "/lun.img"

static int backing = -1;
static volatile sig_atomic_t failing;
static atomic_ulong failed;

static void on_signal(int sig)
{
	failing = sig == SIGUSR1;
}

/* -EIO (counted) while failing, else 0. */
static int fail_now(void)
{
	if (!failing)
		return 0;
	atomic_fetch_add(&failed, 1);
	return -EIO;
}

static int ff_getattr(const char *path, struct stat *st,
		      struct fuse_file_info *fi)
{
	(void)fi;
	if (!strcmp(path, "/")) {
		memset(st, 0, sizeof(*st));
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	}
	if (strcmp(path, LUN))
		return -ENOENT;
	return fstat(backing, st) ? -errno : 0;
}

static int ff_readdir(const char *path, void *buf, fuse_fill_dir_t fill,
		      off_t off, struct fuse_file_info *fi,
		      enum fuse_readdir_flags fl)
{
	(void)off, (void)fi, (void)fl;
	if (strcmp(path, "/"))
		return -ENOTDIR;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	fill(buf, LUN + 1, NULL, 0, 0);
	return 0;
}

static int ff_open(const char *path, struct fuse_file_info *fi)
{
	if (strcmp(path, LUN))
		return -ENOENT;
	fi->direct_io = 1; /* O_DIRECT opens as on a disk */
	return 0;
}

static int ff_read(const char *path, char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	ssize_t n;
	int rc = fail_now();

	(void)path, (void)fi;
	if (rc)
		return rc;
	n = pread(backing, buf, size, off);
	return n < 0 ? -errno : (int)n;
}

static int ff_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	ssize_t n;
	int rc = fail_now();

	(void)path, (void)fi;
	if (rc)
		return rc;
	n = pwrite(backing, buf, size, off);
	return n < 0 ? -errno : (int)n;
}

static int ff_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	int rc = fail_now();

	(void)path, (void)datasync, (void)fi;
	if (rc)
		return rc;
	return fdatasync(backing) ? -errno : 0;
}

static int ff_flush(const char *path, struct fuse_file_info *fi)
{
	(void)path, (void)fi;
	return 0;
}

static int ff_fallocate(const char *path, int mode, off_t off, off_t len,
			struct fuse_file_info *fi)
{
	int rc = fail_now();

	(void)path, (void)fi;
	if (rc)
		return rc;
	return fallocate(backing, mode, off, len) ? -errno : 0;
}

static const struct fuse_operations ops = {
	.getattr = ff_getattr,
	.readdir = ff_readdir,
	.open = ff_open,
	.read = ff_read,
	.write = ff_write,
	.flush = ff_flush,
	.fsync = ff_fsync,
	.fallocate = ff_fallocate,
};

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	static char fg[] = "-f";
	char **fargv;
	int rc;

	if (argc < 3) {
		fprintf(stderr, "usage: failfuse BACKING_IMAGE MOUNTPOINT "
				"[FUSE options]\n");
		return 2;
	}
	backing = open(argv[1], O_RDWR);
	if (backing < 0) {
		perror(argv[1]);
		return 1;
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	fargv = calloc((size_t)argc + 2, sizeof(*fargv));
	if (!fargv)
		return 1;
	fargv[0] = argv[0];
	fargv[1] = fg;
	for (int i = 2; i < argc; i++)
		fargv[i] = argv[i];
	rc = fuse_main(argc, fargv, &ops, NULL);
	fprintf(stderr, "failfuse: %lu calls failed\n", atomic_load(&failed));
	free(fargv);
	close(backing);
	return rc;
}
