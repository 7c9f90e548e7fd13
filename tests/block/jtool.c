// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * jtool - drives the block volume's journal on an ext4 image for the
 * shell tests in this folder (not a test by itself).
 *
 *   jtool populate IMG SEED N EXPECT  run N random metadata operations
 *       through libext2fs and the iotxn io_manager, one journal
 *       transaction each, and exit without writing anything home (a
 *       crash); the tree they should give is written to EXPECT
 *   jtool replay IMG                  replay the journal (ours)
 *   jtool tree IMG                    print the tree: path, type, size,
 *       crc32c of the contents, sorted
 *   jtool scan IMG                    decode every jbd2 block in the
 *       journal, live or stale, with our codec (as written by the
 *       kernel, say) and check every tag's checksum against its block
 *   jtool crash IMG SEED ITER         ITER rounds of: a child runs random
 *       operations and is SIGKILLed at a random device write of the
 *       journal; then replay, e2fsck -fn, and the tree must be the one
 *       after the last committed operation (or the one being committed)
 *
 * Operations: mkdir, create a file with contents (data journaled too),
 * unlink (its blocks revoked), rename.  Model and generator in model.c.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crc32c.h"
#include "iotxn.h"
#include "jmodel.h"

struct sess {
	struct iotxn *t;
	ext2_filsys fs;
	struct cvj_journal *j;
	struct cvj_dev kdev;	/* the journal's device, counting writes */
	long writes, kill_at;	/* SIGKILL before write number kill_at */
	FILE *progress;		/* "B n" / "C n" lines to the parent */
	struct cvj_replay_info info;	/* of the replay sess_open did */
};

static void die(const char *what, long err)
{
	fprintf(stderr, "jtool: %s: %s\n", what,
		err < 0 ? strerror((int)-err) : error_message(err));
	exit(1);
}

static int k_read(void *priv, uint64_t b, unsigned n, void *buf)
{
	struct sess *s = priv;

	return iotxn_dev(s->t)->read(iotxn_dev(s->t)->priv, b, n, buf);
}

static int k_write(void *priv, uint64_t b, unsigned n, const void *buf)
{
	struct sess *s = priv;

	if (s->kill_at > 0 && ++s->writes >= s->kill_at)
		raise(SIGKILL);
	return iotxn_dev(s->t)->write(iotxn_dev(s->t)->priv, b, n, buf);
}

static int k_flush(void *priv)
{
	struct sess *s = priv;

	return iotxn_dev(s->t)->flush(iotxn_dev(s->t)->priv);
}

static void fs_open(struct sess *s, const char *img)
{
	errcode_t err = ext2fs_open2(img, NULL, EXT2_FLAG_RW | EXT2_FLAG_64BITS,
				     0, 0, iotxn_io_manager, &s->fs);

	if (err)
		die("ext2fs_open", err);
	s->fs->flags |= EXT2_FLAG_MASTER_SB_ONLY;
}

/* Open img, replay its journal if it needs it (ours), and start
 * journaling when journaled. */
static void sess_open(struct sess *s, const char *img, bool journaled)
{
	struct cvj_extent *map;
	unsigned n;
	int rc;

	if ((rc = iotxn_open(img, &s->t)))
		die(img, rc);
	fs_open(s, img);
	if ((rc = iotxn_journal_extents(s->fs, &map, &n)))
		die("journal extents", rc);
	s->kdev = (struct cvj_dev){ s, iotxn_blocksize(s->t), k_read,
				    k_write, k_flush };
	if ((rc = cvj_open(&s->kdev, map, n, &s->j)))
		die("cvj_open", rc);
	free(map);
	if (cvj_needs_recovery(s->j)) {
		/* The journal inode itself is never journaled: its map read
		 * before replay stays right. */
		ext2fs_close_free(&s->fs);
		if ((rc = cvj_replay(s->j, &s->info)))
			die("replay", rc);
		fs_open(s, img);
	}
	if ((rc = iotxn_fs_stop(s->t, s->fs)))	/* needs_recovery off */
		die("clear needs_recovery", rc);
	if (!journaled)
		return;
	if (ext2fs_read_bitmaps(s->fs))
		die("read bitmaps", EIO);
	if ((rc = iotxn_fs_start(s->t, s->fs, s->j)))
		die("start journaling", rc);
}

/* Without checkpoint: whatever is only in the journal stays there. */
static void sess_crash(struct sess *s)
{
	(void)s;
	fflush(NULL);
	_exit(0);
}

static void sess_close(struct sess *s)
{
	errcode_t err = ext2fs_close_free(&s->fs);

	if (err)
		die("ext2fs_close", err);
	cvj_close(s->j);
	iotxn_close(s->t);
}

/* ---- operations through libext2fs -------------------------------- */

static ext2_ino_t dir_ino(struct sess *s, const struct jm *m, int dir)
{
	ext2_ino_t ino;
	const char *n;
	errcode_t err;

	if (dir < 0)
		return EXT2_ROOT_INO;
	n = m->dname[dir];
	err = ext2fs_lookup(s->fs, EXT2_ROOT_INO, n, (int)strlen(n), NULL,
			    &ino);
	if (err)
		die(n, err);
	return ino;
}

static void link_in(struct sess *s, ext2_ino_t dir, const char *name,
		    ext2_ino_t ino, int type)
{
	errcode_t err = ext2fs_link(s->fs, dir, name, ino, type);

	if (err == EXT2_ET_DIR_NO_SPACE) {
		if ((err = ext2fs_expand_dir(s->fs, dir)))
			die("expand_dir", err);
		err = ext2fs_link(s->fs, dir, name, ino, type);
	}
	if (err)
		die("link", err);
}

static void write_contents(struct sess *s, ext2_ino_t ino, uint32_t seed,
			   uint32_t size)
{
	uint8_t *buf = malloc(size ? size : 1);
	ext2_file_t f;
	unsigned got;
	errcode_t err;

	jm_fill(seed, buf, size);
	err = ext2fs_file_open(s->fs, ino, EXT2_FILE_WRITE, &f);
	if (!err && size)
		err = ext2fs_file_write(f, buf, size, &got);
	if (!err)
		err = ext2fs_file_set_size2(f, size);
	if (!err)
		err = ext2fs_file_close(f);
	if (err)
		die("write file", err);
	free(buf);
}

static void op_create(struct sess *s, const struct jm *m,
		      const struct jm_op *op)
{
	ext2_ino_t dir = dir_ino(s, m, op->dir), ino;
	struct ext2_inode inode = { 0 };
	ext2_extent_handle_t h;
	errcode_t err;

	if ((err = ext2fs_new_inode(s->fs, dir, LINUX_S_IFREG | 0644, NULL,
				    &ino)))
		die("new_inode", err);
	link_in(s, dir, op->name, ino, EXT2_FT_REG_FILE);
	ext2fs_inode_alloc_stats2(s->fs, ino, +1, 0);
	inode.i_mode = LINUX_S_IFREG | 0644;
	inode.i_links_count = 1;
	inode.i_atime = inode.i_ctime = inode.i_mtime = 1700000000;
	if (ext2fs_has_feature_extents(s->fs->super)) {
		/* an empty extent header in i_block */
		if ((err = ext2fs_extent_open2(s->fs, ino, &inode, &h)))
			die("extent_open", err);
		ext2fs_extent_free(h);
	}
	if ((err = ext2fs_write_new_inode(s->fs, ino, &inode)))
		die("write_new_inode", err);
	write_contents(s, ino, op->seed, op->size);
}

static int collect_blk(ext2_filsys fs, blk64_t *b, e2_blkcnt_t cnt,
		       blk64_t ref, int off, void *priv)
{
	(void)fs, (void)cnt, (void)ref, (void)off;
	return iotxn_revoke(priv, *b) ? BLOCK_ABORT : 0;
}

static void op_unlink(struct sess *s, const struct jm *m,
		      const struct jm_op *op)
{
	const struct jm_file *f = &m->f[op->file];
	ext2_ino_t dir = dir_ino(s, m, f->dir), ino;
	struct ext2_inode inode;
	errcode_t err;

	err = ext2fs_lookup(s->fs, dir, f->name, (int)strlen(f->name), NULL,
			    &ino);
	if (!err)
		err = ext2fs_unlink(s->fs, dir, f->name, ino, 0);
	if (!err)
		err = ext2fs_read_inode(s->fs, ino, &inode);
	/* every block the file had, data and extent tree, is revoked */
	if (!err)
		err = ext2fs_block_iterate3(s->fs, ino, BLOCK_FLAG_READ_ONLY,
					    NULL, collect_blk, s->t);
	if (!err)
		err = ext2fs_punch(s->fs, ino, &inode, NULL, 0, ~0ULL);
	if (err)
		die("unlink", err);
	inode.i_links_count = 0;
	inode.i_dtime = 1700000001;
	if ((err = ext2fs_write_inode(s->fs, ino, &inode)))
		die("write_inode", err);
	ext2fs_inode_alloc_stats2(s->fs, ino, -1, 0);
}

static void op_rename(struct sess *s, const struct jm *m,
		      const struct jm_op *op)
{
	const struct jm_file *f = &m->f[op->file];
	ext2_ino_t from = dir_ino(s, m, f->dir), to = dir_ino(s, m, op->dir);
	ext2_ino_t ino;
	errcode_t err;

	err = ext2fs_lookup(s->fs, from, f->name, (int)strlen(f->name), NULL,
			    &ino);
	if (err)
		die("lookup", err);
	link_in(s, to, op->name, ino, EXT2_FT_REG_FILE);
	if ((err = ext2fs_unlink(s->fs, from, f->name, ino, 0)))
		die("unlink", err);
}

static void op_mkdir(struct sess *s, const struct jm_op *op)
{
	errcode_t err = ext2fs_mkdir(s->fs, EXT2_ROOT_INO, 0, op->name);

	if (err == EXT2_ET_DIR_NO_SPACE) {
		if ((err = ext2fs_expand_dir(s->fs, EXT2_ROOT_INO)))
			die("expand_dir", err);
		err = ext2fs_mkdir(s->fs, EXT2_ROOT_INO, 0, op->name);
	}
	if (err)
		die("mkdir", err);
}

/* One operation = one transaction. */
static void run_op(struct sess *s, struct jm *m, const struct jm_op *op,
		   int idx)
{
	errcode_t err;
	int rc;

	switch (op->kind) {
	case JM_MKDIR: op_mkdir(s, op); break;
	case JM_CREATE: op_create(s, m, op); break;
	case JM_UNLINK: op_unlink(s, m, op); break;
	case JM_RENAME: op_rename(s, m, op); break;
	}
	if ((err = ext2fs_flush(s->fs)))
		die("ext2fs_flush", err);
	if (s->progress)
		fprintf(s->progress, "B %d\n", idx), fflush(s->progress);
	if ((rc = iotxn_commit(s->t)))
		die("commit", rc);
	if (s->progress)
		fprintf(s->progress, "C %d\n", idx), fflush(s->progress);
	jm_apply(m, op);
}

/* ---- listing an image -------------------------------------------- */

struct walk {
	ext2_filsys fs;
	char **lines;
	size_t n, cap;
	char path[300];
	ext2_ino_t dirs[64];	/* subdirectories to visit after */
	char dnames[64][256];
	int nd;
};

static void add_line(struct walk *w, char *line)
{
	if (w->n == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 256;
		w->lines = realloc(w->lines, w->cap * sizeof(*w->lines));
		if (!w->lines)
			die("list", -ENOMEM);
	}
	w->lines[w->n++] = line;
}

static uint32_t file_crc(ext2_filsys fs, ext2_ino_t ino, uint64_t size)
{
	uint8_t *buf = malloc(size ? size : 1);
	ext2_file_t f;
	unsigned got = 0;
	uint32_t c;

	if (ext2fs_file_open(fs, ino, 0, &f) ||
	    (size && ext2fs_file_read(f, buf, (unsigned)size, &got)) ||
	    got != size)
		die("read file", EIO);
	ext2fs_file_close(f);
	c = cv_crc32c(0xffffffffu, buf, size);
	free(buf);
	return c;
}

static int walk_ent(struct ext2_dir_entry *de, int off, int bs, char *b,
		    void *priv)
{
	struct walk *w = priv;
	int len = ext2fs_dirent_name_len(de);
	struct ext2_inode inode;
	char *line, name[256];

	(void)off, (void)bs, (void)b;
	snprintf(name, sizeof(name), "%.*s", len, de->name);
	if (!strcmp(name, ".") || !strcmp(name, "..") ||
	    (!w->path[0] && !strcmp(name, "lost+found")))
		return 0;
	if (ext2fs_read_inode(w->fs, de->inode, &inode))
		die("read_inode", EIO);
	if (LINUX_S_ISDIR(inode.i_mode)) {
		if (asprintf(&line, "%s/%s d", w->path, name) < 0 || w->nd >= 64)
			die("list", -ENOMEM);
		w->dirs[w->nd] = de->inode;
		snprintf(w->dnames[w->nd++], 256, "%s", name);
	} else {
		uint64_t sz = EXT2_I_SIZE(&inode);

		if (asprintf(&line, "%s/%s f %llu %08x", w->path, name,
			     (unsigned long long)sz,
			     file_crc(w->fs, de->inode, sz)) < 0)
			die("list", -ENOMEM);
	}
	add_line(w, line);
	return 0;
}

/* The root and the directories right under it (all jtool makes). */
static void list_tree(const char *img, FILE *out)
{
	struct walk w = { 0 };
	errcode_t err = ext2fs_open2(img, NULL, EXT2_FLAG_64BITS, 0, 0,
				     unix_io_manager, &w.fs);

	if (err)
		die(img, err);
	if ((err = ext2fs_dir_iterate(w.fs, EXT2_ROOT_INO, 0, NULL, walk_ent,
				      &w)))
		die("dir_iterate", err);
	for (int i = 0, nd = w.nd; i < nd; i++) {
		snprintf(w.path, sizeof(w.path), "/%s", w.dnames[i]);
		if ((err = ext2fs_dir_iterate(w.fs, w.dirs[i], 0, NULL,
					      walk_ent, &w)))
			die("dir_iterate", err);
	}
	jm_print_lines(w.lines, w.n, out);
	free(w.lines);
	ext2fs_close_free(&w.fs);
}

/* ---- commands ---------------------------------------------------- */

static int cmd_populate(const char *img, uint64_t seed, int n,
			const char *expect)
{
	static struct jm m, scratch;
	struct sess s = { 0 };
	uint64_t rng = seed * 2654435761u + 1;
	FILE *f;

	sess_open(&s, img, true);
	scratch = m;
	for (int i = 0; i < n; i++) {
		struct jm_op op;

		jm_gen(&scratch, &rng, &op);
		run_op(&s, &m, &op, i);
	}
	f = fopen(expect, "w");
	if (!f)
		die(expect, -errno);
	jm_print(&m, f);
	fclose(f);
	printf("committed %d transactions\n", n);
	sess_crash(&s);
	return 0;
}

static struct cvj_replay_info replay_quiet(const char *img)
{
	struct sess s = { 0 };

	sess_open(&s, img, false);
	sess_close(&s);
	return s.info;
}

static int cmd_replay(const char *img)
{
	struct sess s = { 0 };

	sess_open(&s, img, false);
	printf("replayed %u transactions (%u..%u), %u blocks, %u revoked%s\n",
	       s.info.transactions, s.info.first_seq, s.info.next_seq,
	       s.info.blocks, s.info.revoked,
	       s.info.stop ? ", log ends in a bad block" : "");
	sess_close(&s);
	return 0;
}

#define CRASH_OPS 300	/* at most, per round */
#define CRASH_WRITES 3000	/* the kill comes within this many writes */

struct crash_stats {
	int rounds, kills, by_e2fsck, replayed, wrapped, torn;
};

static uint64_t xrnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* The child: run ops, checkpoint now and then, die at write kill_at
 * (or, when it outlives them all, exit without checkpoint or close
 * cleanly). */
static void crash_child(const char *img, struct jm *m, const struct jm_op *ops,
			int nops, long kill_at, uint64_t r, int wfd)
{
	struct sess s = { .kill_at = kill_at };

	s.progress = fdopen(wfd, "w");
	sess_open(&s, img, true);
	for (int k = 0; k < nops; k++) {
		run_op(&s, m, &ops[k], k);
		if ((r >> (k % 32) & 0x1f) == 0 && cvj_checkpoint(s.j))
			die("checkpoint", EIO);
	}
	if (r >> 40 & 1) {
		if (iotxn_fs_stop(s.t, s.fs))
			die("stop", EIO);
		sess_close(&s);
	}
	sess_crash(&s);
}

/* Read the child's progress: ops committed, and whether the next one
 * had started its commit. */
static void crash_progress(int rfd, int *committed, bool *started)
{
	FILE *f = fdopen(rfd, "r");
	char c;
	int k;

	*committed = 0;
	*started = false;
	while (fscanf(f, " %c %d", &c, &k) == 2) {
		if (c == 'B')
			*started = true;
		if (c == 'C') {
			*committed = k + 1;
			*started = false;
		}
	}
	fclose(f);
}

static char *tree_of(const char *img)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	list_tree(img, f);
	fclose(f);
	return buf;
}

static char *model_after(const struct jm *m, const struct jm_op *ops, int n)
{
	static struct jm tmp;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	tmp = *m;
	for (int k = 0; k < n; k++)
		jm_apply(&tmp, &ops[k]);
	jm_print(&tmp, f);
	fclose(f);
	return buf;
}

/* e2fsck -f with opt (n: check only, y: replay and repair) made no
 * change and found nothing. */
static int fsck_clean(const char *img, char opt)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "e2fsck -f%c '%s' >e2fsck.out 2>&1", opt,
		 img);
	return system(cmd) == 0;
}

/* Fork the child of one round and wait for it: how many ops it
 * committed, whether it had started the next commit, whether it died. */
static bool crash_spawn(const char *img, struct jm *m, const struct jm_op *ops,
			int nops, uint64_t *rng, uint64_t r, int *committed,
			bool *started)
{
	long kill_at = 1 + (long)(xrnd(rng) % CRASH_WRITES);
	int p[2], st;
	pid_t pid;
	bool killed;

	if (pipe(p))
		die("pipe", -errno);
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die("fork", -errno);
	if (pid == 0) {
		close(p[0]);
		crash_child(img, m, ops, nops, kill_at, r, p[1]);
	}
	close(p[1]);
	crash_progress(p[0], committed, started);
	if (waitpid(pid, &st, 0) != pid)
		die("waitpid", -errno);
	killed = WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
	if (!killed && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
		die("child failed", EIO);
	return killed;
}

/* Replay with e2fsck -fy (one time in three) or ours, then e2fsck -fn. */
static int crash_replay(const char *img, uint64_t r, struct crash_stats *cs)
{
	struct cvj_replay_info info;

	if (r % 3 == 0) {	/* e2fsck's replay must agree with ours */
		cs->by_e2fsck++;
		if (!fsck_clean(img, 'y')) {
			fprintf(stderr, "e2fsck -fy replay: e2fsck.out\n");
			return 1;
		}
	} else {
		info = replay_quiet(img);
		cs->replayed += info.transactions;
		cs->wrapped += info.wrapped;
		cs->torn += info.stop != 0;
	}
	if (!fsck_clean(img, 'n')) {
		fprintf(stderr, "e2fsck -fn not clean (e2fsck.out)\n");
		return 1;
	}
	return 0;
}

/* One round; 0 when the image is what it must be.  *applied gets how
 * many of ops the image holds. */
static int crash_round(const char *img, struct jm *m, const struct jm_op *ops,
		       int nops, uint64_t *rng, int *applied,
		       struct crash_stats *cs)
{
	uint64_t r = xrnd(rng);
	int committed, rc = 0;
	bool started;
	char *tree, *want;

	cs->kills += crash_spawn(img, m, ops, nops, rng, r, &committed,
				 &started);
	if (crash_replay(img, r, cs))
		return 1;
	tree = tree_of(img);
	*applied = committed;
	want = model_after(m, ops, committed);
	if (strcmp(tree, want) && started && committed < nops) {
		free(want);
		*applied = committed + 1;
		want = model_after(m, ops, committed + 1);
	}
	if (strcmp(tree, want)) {
		fprintf(stderr, "tree after %d ops (started %d):\n%s\nwant:\n%s",
			committed, started, tree, want);
		rc = 1;
	}
	free(tree);
	free(want);
	return rc;
}

static int cmd_crash(const char *img, uint64_t seed, int iters)
{
	static struct jm m, scratch;
	static struct jm_op ops[CRASH_OPS];
	uint64_t rng = seed * 0x9E3779B97F4A7C15ull + 7;
	struct crash_stats cs = { 0 };

	for (int it = 0; it < iters; it++) {
		int nops = 1 + (int)(xrnd(&rng) % CRASH_OPS), applied;

		scratch = m;
		for (int k = 0; k < nops; k++)
			jm_gen(&scratch, &rng, &ops[k]);
		m.counter = scratch.counter;	/* names never come back */
		if (crash_round(img, &m, ops, nops, &rng, &applied, &cs)) {
			fprintf(stderr, "crash: round %d failed\n", it);
			return 1;
		}
		for (int k = 0; k < applied; k++)
			jm_apply(&m, &ops[k]);
		cs.rounds++;
	}
	printf("crash: %d rounds, %d killed, %d replayed by e2fsck; ours: %d "
	       "transactions, %d replays across the log's end, %d logs "
	       "ending in a bad block; every image clean and as committed\n",
	       cs.rounds, cs.kills, cs.by_e2fsck, cs.replayed, cs.wrapped,
	       cs.torn);
	return 0;
}

struct scan {
	struct iotxn *t;
	struct cvj_extent *map;
	unsigned nmap;
	struct jb_fmt fmt;
	uint8_t *blk;
	unsigned desc, data, revoke, commit, bad;
};

static int scan_read(struct scan *sc, uint32_t lblk, uint8_t *buf)
{
	const struct cvj_dev *d = iotxn_dev(sc->t);

	for (unsigned i = 0; i < sc->nmap; i++)
		if (lblk >= sc->map[i].lblk &&
		    lblk - sc->map[i].lblk < sc->map[i].len)
			return d->read(d->priv, sc->map[i].pblk + lblk -
				       sc->map[i].lblk, 1, buf);
	return -EIO;
}

/* A descriptor at lblk: decode it and check its blocks' checksums;
 * returns how many log blocks it covers. */
static uint32_t scan_desc(struct scan *sc, uint32_t lblk, uint32_t maxlen)
{
	unsigned max = jb_desc_max_tags(&sc->fmt), n;
	struct jb_tag *tags = calloc(max, sizeof(*tags));
	uint8_t *data = malloc(sc->fmt.blocksize);
	uint32_t seq, i = 0;

	if (jb_desc_decode(&sc->fmt, sc->blk, sc->fmt.blocksize, &seq, tags,
			   max, &n)) {
		sc->bad++;
		n = 0;
	}
	sc->desc += n > 0;
	for (; i < n && lblk + 1 + i < maxlen; i++) {
		if (scan_read(sc, lblk + 1 + i, data) ||
		    !jb_tag_csum_ok(&sc->fmt, &tags[i], seq, data))
			sc->bad++;
		sc->data++;
	}
	free(tags);
	free(data);
	return 1 + i;
}

static void scan_block(struct scan *sc, uint32_t *lblk, uint32_t maxlen)
{
	uint32_t type, seq, nsec;
	uint64_t sec, rv[1024];
	unsigned n;

	if (scan_read(sc, *lblk, sc->blk) ||
	    jb_header_decode(sc->blk, sc->fmt.blocksize, &type, &seq)) {
		(*lblk)++;
		return;
	}
	if (type == JB_DESCRIPTOR) {
		*lblk += scan_desc(sc, *lblk, maxlen);
		return;
	}
	if (type == JB_REVOKE)
		sc->revoke++, sc->bad += jb_revoke_decode(&sc->fmt, sc->blk,
				sc->fmt.blocksize, &seq, rv, 1024, &n) != 0;
	else if (type == JB_COMMIT)
		sc->commit++, sc->bad += jb_commit_decode(&sc->fmt, sc->blk,
				sc->fmt.blocksize, &seq, &sec, &nsec) != 0;
	else
		sc->bad++;
	(*lblk)++;
}

static int cmd_scan(const char *img)
{
	struct scan sc = { 0 };
	struct jb_super sb;
	ext2_filsys fs;
	int rc;

	if ((rc = iotxn_open(img, &sc.t)))
		die(img, rc);
	if (ext2fs_open2(img, NULL, EXT2_FLAG_64BITS, 0, 0, iotxn_io_manager,
			 &fs) || iotxn_journal_extents(fs, &sc.map, &sc.nmap))
		die("journal inode", EIO);
	ext2fs_close_free(&fs);
	sc.blk = malloc(iotxn_blocksize(sc.t));
	if ((rc = scan_read(&sc, 0, sc.blk)) ||
	    (rc = jb_super_decode(sc.blk, iotxn_blocksize(sc.t), &sb)) ||
	    (rc = jb_fmt_init(&sc.fmt, &sb)))
		die("journal superblock", rc);
	for (uint32_t l = sb.first; l < sb.maxlen;)
		scan_block(&sc, &l, sb.maxlen);
	printf("journal features %#x: %u descriptors, %u data blocks, "
	       "%u revoke, %u commit blocks, %u bad\n", sb.incompat, sc.desc,
	       sc.data, sc.revoke, sc.commit, sc.bad);
	free(sc.blk);
	free(sc.map);
	iotxn_close(sc.t);
	return sc.bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	add_error_table(&et_ext2_error_table);
	if (argc == 6 && !strcmp(argv[1], "populate"))
		return cmd_populate(argv[2], strtoull(argv[3], NULL, 0),
				    atoi(argv[4]), argv[5]);
	if (argc == 3 && !strcmp(argv[1], "replay"))
		return cmd_replay(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "tree")) {
		list_tree(argv[2], stdout);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "scan"))
		return cmd_scan(argv[2]);
	if (argc == 5 && !strcmp(argv[1], "crash"))
		return cmd_crash(argv[2], strtoull(argv[3], NULL, 0),
				 atoi(argv[4]));
	fprintf(stderr, "usage: jtool populate IMG SEED N EXPECT | replay IMG "
		"| tree IMG | scan IMG | crash IMG SEED ITER\n");
	return 2;
}
