// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * mtool - drives the block volume's metadata engine (meta.h) on image
 * files for the shell tests in this folder (not a test by itself).
 *
 *   mtool format IMG [LABEL]        cvb_format
 *   mtool ops IMG                   every operation and its errors, one
 *       check per line ("ok"/"not ok"); files whose bytes the script
 *       compares with debugfs are written as expect-NAME in the cwd
 *   mtool orphan IMG                create, open, unlink, commit and die
 *       (SIGKILL) with the file open: the orphan the next open frees
 *   mtool check-orphan IMG          open (processes the orphan), check
 *   mtool enospc IMG                allocation on a full volume fails
 *       whole, leaves free counts as they were
 *   mtool big IMG                   truncate / punch / alloc around
 *       block 2^31 on a (sparse) volume of more than 8 TiB
 *   mtool tree IMG                  the tree through libext2fs directly
 *   mtool random IMG SEED N EXPECT  N random operations, model tree
 *   mtool crash IMG SEED ROUNDS     SIGKILL rounds (mrand.c)
 *   mtool bench IMG N               create+close+unlink per second and
 *       transaction blocks per operation
 *   mtool fill IMG N                N files of 1 granule each
 *   mtool opentime IMG              time of cvb_meta_open
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <ext2fs/ext2fs.h>

#include "crc32c.h"
#include "mtool.h"

int mt_fail, mt_pass;
const struct cv_cred mt_root = { 0, 0 };

bool mt_check(bool cond, const char *fmt, ...)
{
	va_list ap;

	printf("%s - ", cond ? "ok" : "not ok");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (cond)
		mt_pass++;
	else
		mt_fail++;
	return cond;
}

bool mt_eq(long long got, long long want, const char *what)
{
	return mt_check(got == want, "%s (got %lld, want %lld)", what, got,
			want);
}

void mt_die(const char *what, long err)
{
	fprintf(stderr, "mtool: %s: %s\n", what,
		err < 0 ? strerror((int)-err) : "failed");
	exit(2);
}

struct cvb_meta *mt_open(const char *img)
{
	struct cvb_meta *m;
	char err[256];
	int rc = cvb_meta_open(img, NULL, &m, err, sizeof(err));

	if (rc) {
		fprintf(stderr, "mtool: open %s: %s\n", img, err);
		exit(2);
	}
	return m;
}

void mt_close(struct cvb_meta *m)
{
	int rc = cvb_meta_close(m);

	if (rc)
		mt_die("close", rc);
}

bool mt_fsck(const char *img)
{
	char cmd[512];
	int st;

	snprintf(cmd, sizeof(cmd),
		 "PATH=$PATH:/sbin:/usr/sbin e2fsck -fn '%s' >fsck.out 2>&1",
		 img);
	st = system(cmd);
	if (st)
		system("cat fsck.out >&2");
	return st == 0;
}

/* ---- the tree, through libext2fs alone --------------------------- */

struct tw {
	ext2_filsys fs;
	char **lines;
	size_t n, cap;
	char path[4096];
};

static uint32_t crc_of(ext2_filsys fs, ext2_ino_t ino, uint64_t size)
{
	uint8_t *buf = malloc(65536);
	uint32_t c = 0xffffffffu;
	ext2_file_t f;
	unsigned got;

	if (!buf || ext2fs_file_open(fs, ino, 0, &f))
		mt_die("read file", -EIO);
	while (size) {
		unsigned want = size < 65536 ? (unsigned)size : 65536;

		if (ext2fs_file_read(f, buf, want, &got) || !got)
			mt_die("read file", -EIO);
		c = cv_crc32c(c, buf, got);
		size -= got;
	}
	ext2fs_file_close(f);
	free(buf);
	return c;
}

static void tw_add(struct tw *w, char *line)
{
	if (w->n == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 256;
		w->lines = realloc(w->lines, w->cap * sizeof(*w->lines));
		if (!w->lines)
			mt_die("tree", -ENOMEM);
	}
	w->lines[w->n++] = line;
}

static int tw_ent(struct ext2_dir_entry *de, int off, int bs, char *b,
		  void *priv);

static void tw_dir(struct tw *w, ext2_ino_t dir)
{
	if (ext2fs_dir_iterate(w->fs, dir, 0, NULL, tw_ent, w))
		mt_die("dir_iterate", -EIO);
}

static int tw_ent(struct ext2_dir_entry *de, int off, int bs, char *b,
		  void *priv)
{
	struct tw *w = priv;
	int len = ext2fs_dirent_name_len(de);
	size_t plen = strlen(w->path);
	struct ext2_inode in;
	char *line = NULL, tgt[4096];

	(void)off, (void)bs, (void)b;
	if ((len == 1 && de->name[0] == '.') ||
	    (len == 2 && !memcmp(de->name, "..", 2)) ||
	    (!plen && len == 10 && !memcmp(de->name, "lost+found", 10)))
		return 0;
	snprintf(w->path + plen, sizeof(w->path) - plen, "/%.*s", len,
		 de->name);
	if (ext2fs_read_inode(w->fs, de->inode, &in))
		mt_die("read_inode", -EIO);
	if (LINUX_S_ISDIR(in.i_mode)) {
		if (asprintf(&line, "%s d", w->path) < 0)
			mt_die("tree", -ENOMEM);
		tw_add(w, line);
		tw_dir(w, de->inode);
	} else if (LINUX_S_ISLNK(in.i_mode)) {
		ext2_file_t f;
		unsigned got = 0;

		memset(tgt, 0, sizeof(tgt));
		if (ext2fs_is_fast_symlink(&in))
			memcpy(tgt, in.i_block, in.i_size);
		else if (ext2fs_file_open(w->fs, de->inode, 0, &f) ||
			 ext2fs_file_read(f, tgt, in.i_size, &got) ||
			 ext2fs_file_close(f))
			mt_die("readlink", -EIO);
		if (asprintf(&line, "%s l %s", w->path, tgt) < 0)
			mt_die("tree", -ENOMEM);
		tw_add(w, line);
	} else {
		uint64_t sz = EXT2_I_SIZE(&in);

		if (asprintf(&line, "%s f %llu %u %08x", w->path,
			     (unsigned long long)sz, in.i_links_count,
			     LINUX_S_ISREG(in.i_mode)
				     ? crc_of(w->fs, de->inode, sz)
				     : 0) < 0)
			mt_die("tree", -ENOMEM);
		tw_add(w, line);
	}
	w->path[plen] = 0;
	return 0;
}

static int cmp_line(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char *mt_tree(const char *img)
{
	struct tw w = { 0 };
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	if (ext2fs_open2(img, NULL, EXT2_FLAG_64BITS, 0, 0, unix_io_manager,
			 &w.fs))
		mt_die(img, -EIO);
	tw_dir(&w, EXT2_ROOT_INO);
	ext2fs_close_free(&w.fs);
	if (w.n)
		qsort(w.lines, w.n, sizeof(*w.lines), cmp_line);
	for (size_t i = 0; i < w.n; i++) {
		fprintf(f, "%s\n", w.lines[i]);
		free(w.lines[i]);
	}
	free(w.lines);
	fclose(f);
	return out;
}

/* ---- small helpers for the checks -------------------------------- */

uint64_t mt_mk(struct cvb_meta *m, uint64_t dir, const char *name, mode_t mode)
{
	struct stat st;
	int rc = S_ISDIR(mode)
			 ? cvb_meta_mkdir(m, dir, name, mode, &mt_root, &st)
			 : cvb_meta_mknod(m, dir, name, mode, 0, &mt_root, &st);

	if (rc)
		mt_die(name, rc);
	return st.st_ino;
}

int mt_lk(struct cvb_meta *m, uint64_t dir, const char *name, uint64_t *ino)
{
	struct stat st;
	int rc = cvb_meta_lookup(m, dir, name, &st);

	if (!rc && ino)
		*ino = st.st_ino;
	return rc;
}

static int nent_cb(void *arg, const char *name, ino_t ino, unsigned dt,
		   off_t next)
{
	(void)name, (void)ino, (void)dt, (void)next;
	(*(int *)arg)++;
	return 0;
}

int mt_nents(struct cvb_meta *m, uint64_t dir)
{
	int n = 0, rc = cvb_meta_readdir(m, dir, 0, nent_cb, &n);

	return rc ? rc : n;
}

/* Write len bytes of pattern seed at file offset off through the LUN at
 * the mapped places (allocating first), and the size after. */
void mt_lun_write(struct cvb_meta *m, const char *img, uint64_t ino,
		  uint64_t off, const uint8_t *buf, uint64_t len)
{
	struct cvb_extent ext[64];
	unsigned n;
	uint64_t gen, done = 0;
	int fd = open(img, O_RDWR), rc;

	if (fd < 0)
		mt_die(img, -errno);
	rc = cvb_meta_alloc(m, ino, off, len, ext, 64, &n, &gen);
	while (!rc && done < len) {
		for (unsigned i = 0; i < n && done < len; i++) {
			if (!ext[i].phys)
				mt_die("alloc left a hole", -EIO);
			if (pwrite(fd, buf + (ext[i].off - off), ext[i].len,
				   (off_t)ext[i].phys) != (ssize_t)ext[i].len)
				mt_die("pwrite", -errno);
			done = ext[i].off + ext[i].len - off;
		}
		if (done < len)
			rc = cvb_meta_map(m, ino, off + done, len - done, ext,
					  64, &n, &gen);
	}
	if (rc)
		mt_die("alloc", rc);
	close(fd);
	rc = cvb_meta_set_written(m, ino, off + len, NULL);
	if (rc)
		mt_die("set_written", rc);
}

void mt_save(const char *name, const uint8_t *buf, size_t len)
{
	char path[300];
	FILE *f;

	snprintf(path, sizeof(path), "expect-%s", name);
	f = fopen(path, "w");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f))
		mt_die(path, -EIO);
}

void mt_pattern(uint8_t *buf, size_t len, uint32_t seed)
{
	uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;

	for (size_t i = 0; i < len; i++) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		buf[i] = (uint8_t)(s >> 56);
	}
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "format")) {
		char err[512];
		int rc = cvb_format(argv[2], argc > 3 ? argv[3] : "csvtest",
				    err, sizeof(err));

		if (rc)
			fprintf(stderr, "mtool: format: %s\n", err);
		return rc ? 1 : 0;
	}
	if (argc == 3 && !strcmp(argv[1], "tree")) {
		char *t = mt_tree(argv[2]);

		fputs(t, stdout);
		free(t);
		return 0;
	}
	if (argc == 6 && !strcmp(argv[1], "random"))
		return mt_random(argv[2], strtoull(argv[3], NULL, 0),
				 atoi(argv[4]), argv[5]);
	if (argc == 5 && !strcmp(argv[1], "crash"))
		return mt_crash(argv[2], strtoull(argv[3], NULL, 0),
				atoi(argv[4]));
	if (argc >= 3)
		return mt_run_cmd(argc, argv);
	fprintf(stderr, "usage: see the head of tests/block/mtool.c\n");
	return 2;
}
