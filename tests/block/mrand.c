// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * mrand.c: mtool's random metadata runs against a model, and the crash
 * rounds.
 *
 * The model holds inodes (directories, files with their bytes, symlinks)
 * and names (a parent, a name, an inode), so hard links and renames over
 * names are modelled.  gen() picks an operation valid on the model from
 * a seeded generator; do_op() runs it on the engine and applies it to
 * the model.  The listing of the model has the form of mt_tree(), so a
 * run is checked by comparing strings.
 *
 * Crash rounds: a child runs operations from the parent's model and
 * writes "B i" to a pipe before operation i and "C i" after a commit
 * that made operations up to i durable; the parent SIGKILLs it after a
 * random time, reopens the volume (replay, orphans), checks e2fsck -fn,
 * and finds the operation count i in [last C, last B] whose model listing
 * is the tree on disk: none means a committed operation was lost or a
 * part of one was applied.  The model moves on from that state.  Data
 * is written (the LUN at mapped places) only past the end of a file, so
 * that an operation lost in a crash never leaves changed bytes inside
 * the size the model has.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "mtool.h"

#define NI    96  /* inodes */
#define NN    128 /* names */
#define MAXSZ (3u << 20)

struct mi {
	char type; /* 0 free, 'd', 'f', 'l' */
	uint64_t ino;
	uint32_t size, nlink;
	uint8_t *data; /* files: size bytes */
	char target[40];
};

struct mn {
	bool live;
	int parent; /* inode index (0: the root) */
	int node;   /* inode index */
	char name[24];
};

struct model {
	struct mi i[NI];
	struct mn n[NN];
	uint32_t counter;
	int kills;  /* crash rounds: children that died by SIGKILL */
	int jkills; /* ... of them, at a journal write */
};

enum kind {
	K_CREATE,
	K_MKDIR,
	K_SYMLINK,
	K_UNLINK,
	K_RMDIR,
	K_RENAME,
	K_LINK,
	K_WRITE,
	K_TRUNC,
	K_PUNCH,
	K_COMMIT,
	K_NKINDS
};

struct op {
	enum kind k;
	int a, b; /* name / inode indexes, by kind */
	char name[24];
	uint32_t off, len;
	uint32_t seed;
};

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
	return *s;
}

static void model_init(struct model *m)
{
	memset(m, 0, sizeof(*m));
	m->i[0] = (struct mi){ .type = 'd', .ino = CVB_ROOT_INO, .nlink = 3 };
}

static void model_copy(struct model *d, const struct model *s)
{
	for (int k = 0; k < NI; k++)
		free(d->i[k].data);
	*d = *s;
	for (int k = 0; k < NI; k++)
		if (s->i[k].data) {
			d->i[k].data = calloc(1, MAXSZ);
			memcpy(d->i[k].data, s->i[k].data, s->i[k].size);
		}
}

static void model_free(struct model *m)
{
	for (int k = 0; k < NI; k++)
		free(m->i[k].data);
	memset(m, 0, sizeof(*m));
}

static int pick_name(const struct model *m, uint64_t *r, char type)
{
	int c[NN], k = 0;

	for (int j = 0; j < NN; j++)
		if (m->n[j].live && (!type || m->i[m->n[j].node].type == type))
			c[k++] = j;
	return k ? c[rnd(r) % (uint64_t)k] : -1;
}

static int pick_dir(const struct model *m, uint64_t *r)
{
	int j = pick_name(m, r, 'd');

	return j < 0 || rnd(r) % 3 == 0 ? 0 : m->n[j].node;
}

static int free_slot_i(const struct model *m)
{
	for (int k = 1; k < NI; k++)
		if (!m->i[k].type)
			return k;
	return -1;
}

static int free_slot_n(const struct model *m)
{
	for (int j = 0; j < NN; j++)
		if (!m->n[j].live)
			return j;
	return -1;
}

static bool dir_empty(const struct model *m, int d)
{
	for (int j = 0; j < NN; j++)
		if (m->n[j].live && m->n[j].parent == d)
			return false;
	return true;
}

/* An operation valid on m. */
static void gen(struct model *m, uint64_t *r, bool crash, struct op *op)
{
	for (;;) {
		memset(op, 0, sizeof(*op));
		op->k = (enum kind)(rnd(r) % K_NKINDS);
		op->seed = (uint32_t)rnd(r);
		snprintf(op->name, sizeof(op->name), "n%u", ++m->counter);
		switch (op->k) {
		case K_CREATE:
		case K_MKDIR:
		case K_SYMLINK:
			if (free_slot_i(m) < 0 || free_slot_n(m) < 0)
				continue;
			op->a = pick_dir(m, r);
			return;
		case K_UNLINK:
			if ((op->a = pick_name(m, r, 'f')) < 0 &&
			    (op->a = pick_name(m, r, 'l')) < 0)
				continue;
			return;
		case K_RMDIR:
			op->a = pick_name(m, r, 'd');
			if (op->a < 0 || !dir_empty(m, m->n[op->a].node))
				continue;
			return;
		case K_RENAME: /* files anywhere, dirs to the root */
			if ((op->a = pick_name(m, r, 0)) < 0)
				continue;
			op->b = m->i[m->n[op->a].node].type == 'd'
					? 0
					: pick_dir(m, r);
			if (rnd(r) % 3 == 0 &&
			    m->i[m->n[op->a].node].type == 'f') {
				int t = pick_name(m, r, 'f'); /* over a file */

				if (t >= 0 &&
				    m->n[t].node != m->n[op->a].node) {
					op->b = m->n[t].parent;
					snprintf(op->name, sizeof(op->name),
						 "%s", m->n[t].name);
				}
			}
			return;
		case K_LINK:
			if ((op->a = pick_name(m, r, 'f')) < 0 ||
			    free_slot_n(m) < 0)
				continue;
			op->b = pick_dir(m, r);
			return;
		case K_WRITE:
		case K_TRUNC:
		case K_PUNCH: {
			int j = pick_name(m, r, 'f');
			uint32_t sz;

			if (j < 0)
				continue;
			op->a = m->n[j].node;
			sz = m->i[op->a].size;
			op->off = (uint32_t)(rnd(r) % (MAXSZ / 2));
			op->len = (uint32_t)(rnd(r) % (256 << 10)) + 1;
			if (op->k == K_WRITE && crash)
				op->off = sz; /* past the end only */
			if (op->k == K_TRUNC)
				op->off = (uint32_t)(rnd(r) % (MAXSZ / 2));
			/* a punch or truncate zeroes partial blocks on the
			 * LUN at once (as ext4 does), outside the journal:
			 * whole blocks only when the operation may be lost */
			if (crash && op->k != K_WRITE) {
				op->off &= ~4095u;
				op->len = (op->len + 4095) & ~4095u;
			}
			if (op->off + op->len > MAXSZ)
				continue;
			if (op->k == K_PUNCH && op->off >= sz)
				continue;
			return;
		}
		default:
			return;
		}
	}
}

static int find_name(const struct model *m, int parent, const char *name)
{
	for (int j = 0; j < NN; j++)
		if (m->n[j].live && m->n[j].parent == parent &&
		    !strcmp(m->n[j].name, name))
			return j;
	return -1;
}

static void drop_inode(struct model *m, int k)
{
	if (--m->i[k].nlink == 0 || m->i[k].type == 'd') {
		free(m->i[k].data);
		memset(&m->i[k], 0, sizeof(m->i[k]));
	}
}

static void add_name(struct model *m, int parent, const char *name, int node)
{
	int j = free_slot_n(m);

	m->n[j] = (struct mn){ true, parent, node, "" };
	snprintf(m->n[j].name, sizeof(m->n[j].name), "%s", name);
}

/* The model side of op (ino: what the engine gave a new inode). */
static void apply(struct model *m, const struct op *op, uint64_t ino)
{
	struct mn *a = op->a >= 0 && op->a < NN ? &m->n[op->a] : NULL;
	int k, t;

	switch (op->k) {
	case K_CREATE:
	case K_MKDIR:
	case K_SYMLINK:
		k = free_slot_i(m);
		m->i[k] = (struct mi){ .type = op->k == K_CREATE  ? 'f'
					       : op->k == K_MKDIR ? 'd'
								  : 'l',
				       .ino = ino,
				       .nlink = 1 };
		if (op->k == K_CREATE)
			m->i[k].data = calloc(1, MAXSZ);
		snprintf(m->i[k].target, sizeof(m->i[k].target), "t%08x",
			 op->seed);
		add_name(m, op->a, op->name, k);
		break;
	case K_UNLINK:
	case K_RMDIR:
		a->live = false;
		drop_inode(m, a->node);
		break;
	case K_RENAME:
		if ((t = find_name(m, op->b, op->name)) >= 0 && t != op->a) {
			m->n[t].live = false;
			drop_inode(m, m->n[t].node);
		}
		a->parent = op->b;
		snprintf(a->name, sizeof(a->name), "%s", op->name);
		break;
	case K_LINK:
		m->i[m->n[op->a].node].nlink++;
		add_name(m, op->b, op->name, m->n[op->a].node);
		break;
	case K_WRITE:
		mt_pattern(m->i[op->a].data + op->off, op->len, op->seed);
		if (op->off + op->len > m->i[op->a].size)
			m->i[op->a].size = op->off + op->len;
		break;
	case K_TRUNC:
		if (op->off < m->i[op->a].size)
			memset(m->i[op->a].data + op->off, 0,
			       m->i[op->a].size - op->off);
		m->i[op->a].size = op->off;
		break;
	case K_PUNCH:
		t = (int)(op->off + op->len > m->i[op->a].size
				  ? m->i[op->a].size - op->off
				  : op->len);
		memset(m->i[op->a].data + op->off, 0, (size_t)t);
		break;
	default:
		break;
	}
}

static int cmp_line(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

static void path_of(const struct model *m, int j, char *buf, size_t len)
{
	char tmp[512];

	buf[0] = 0;
	while (j >= 0) {
		snprintf(tmp, sizeof(tmp), "/%s%s", m->n[j].name, buf);
		snprintf(buf, len, "%s", tmp);
		int p = m->n[j].parent, q = -1;

		for (int k = 0; p && k < NN; k++)
			if (m->n[k].live && m->n[k].node == p &&
			    m->i[p].type == 'd')
				q = k;
		j = q;
	}
}

static char *listing(const struct model *m)
{
	char *lines[NN], *out = NULL, path[512];
	size_t n = 0, len = 0;
	FILE *f = open_memstream(&out, &len);

	for (int j = 0; j < NN; j++) {
		const struct mi *i;

		if (!m->n[j].live)
			continue;
		i = &m->i[m->n[j].node];
		path_of(m, j, path, sizeof(path));
		if (i->type == 'd')
			(void)!asprintf(&lines[n++], "%s d", path);
		else if (i->type == 'l')
			(void)!asprintf(&lines[n++], "%s l %s", path,
					i->target);
		else
			(void)!asprintf(
				&lines[n++], "%s f %u %u %08x", path, i->size,
				i->nlink,
				cv_crc32c(0xffffffffu, i->data, i->size));
	}
	if (n)
		qsort(lines, n, sizeof(*lines), cmp_line);
	for (size_t k = 0; k < n; k++) {
		fprintf(f, "%s\n", lines[k]);
		free(lines[k]);
	}
	fclose(f);
	return out;
}

/* ---- the engine side --------------------------------------------- */

static uint64_t dino(const struct model *m, int node)
{
	return m->i[node].ino;
}

static int eng_write(struct cvb_meta *e, const char *img, struct model *m,
		     const struct op *op)
{
	uint8_t *buf = malloc(op->len);

	mt_pattern(buf, op->len, op->seed);
	mt_lun_write(e, img, dino(m, op->a), op->off, buf, op->len);
	free(buf);
	return 0;
}

static int eng_op(struct cvb_meta *e, const char *img, struct model *m,
		  const struct op *op, uint64_t *ino)
{
	const struct mn *a = op->a >= 0 && op->a < NN ? &m->n[op->a] : NULL;
	struct stat st = { 0 };
	char tgt[40];
	int rc = 0;

	switch (op->k) {
	case K_CREATE:
		rc = cvb_meta_mknod(e, dino(m, op->a), op->name, S_IFREG | 0644,
				    0, &mt_root, &st);
		break;
	case K_MKDIR:
		rc = cvb_meta_mkdir(e, dino(m, op->a), op->name, 0755, &mt_root,
				    &st);
		break;
	case K_SYMLINK:
		snprintf(tgt, sizeof(tgt), "t%08x", op->seed);
		rc = cvb_meta_symlink(e, dino(m, op->a), op->name, tgt,
				      &mt_root, &st);
		break;
	case K_UNLINK:
		rc = cvb_meta_unlink(e, dino(m, a->parent), a->name);
		break;
	case K_RMDIR:
		rc = cvb_meta_rmdir(e, dino(m, a->parent), a->name);
		break;
	case K_RENAME:
		rc = cvb_meta_rename(e, dino(m, a->parent), a->name,
				     dino(m, op->b), op->name, 0);
		break;
	case K_LINK:
		rc = cvb_meta_link(e, dino(m, a->node), dino(m, op->b),
				   op->name, &st);
		break;
	case K_WRITE:
		rc = eng_write(e, img, m, op);
		break;
	case K_TRUNC:
		st.st_size = op->off;
		rc = cvb_meta_setattr(e, dino(m, op->a), &st, CV_SET_SIZE,
				      NULL);
		break;
	case K_PUNCH:
		rc = cvb_meta_fallocate(e, dino(m, op->a),
					FALLOC_FL_PUNCH_HOLE |
						FALLOC_FL_KEEP_SIZE,
					op->off, op->len);
		break;
	case K_COMMIT:
		rc = cvb_meta_commit(e);
		break;
	default:
		break;
	}
	*ino = st.st_ino;
	return rc;
}

int mt_random(const char *img, uint64_t seed, int n, const char *expect)
{
	static struct model m;
	struct cvb_meta *e = mt_open(img);
	uint64_t r = seed * 2654435761u + 1, ino;
	struct op op;
	char *want, *got;
	FILE *f;
	int rc;

	model_init(&m);
	for (int k = 0; k < n; k++) {
		gen(&m, &r, false, &op);
		if ((rc = eng_op(e, img, &m, &op, &ino))) {
			fprintf(stderr, "op %d (kind %d %s): %s\n", k, op.k,
				op.name, strerror(-rc));
			return 1;
		}
		if ((op.k == K_WRITE || op.k == K_TRUNC || op.k == K_PUNCH) &&
		    cvb_meta_check_extents(e, dino(&m, op.a))) {
			fprintf(stderr,
				"op %d (kind %d off %u len %u): extent "
				"tree broken\n",
				k, op.k, op.off, op.len);
			return 1;
		}
		apply(&m, &op, ino);
	}
	mt_close(e);
	want = listing(&m);
	if (!(f = fopen(expect, "w")) || fputs(want, f) < 0 || fclose(f))
		mt_die(expect, -EIO);
	got = mt_tree(img);
	rc = strcmp(want, got) != 0;
	printf("%d operations: the tree %s the model's\n", n,
	       rc ? "DIFFERS from" : "is");
	free(want);
	free(got);
	model_free(&m);
	return rc;
}

/* ---- crash rounds ------------------------------------------------ */

static long kill_at, writes;
static int prog_fd;

static void count_write(void *arg)
{
	(void)arg;
	if (kill_at && ++writes >= kill_at) {
		(void)!write(prog_fd, "K 0\n", 4);
		raise(SIGKILL);
	}
}

static void child_run(const char *img, struct model *m, uint64_t r, int wfd,
		      int nops)
{
	struct cvb_meta_opts o = { .before_journal_write = count_write };
	struct cvb_meta *e;
	char err[256];

	/* every other round dies at a random journal write (inside a
	 * commit or a checkpoint), the others at a random time */
	kill_at = r % 2 ? (long)(r >> 8) % 600 + 1 : 0;
	prog_fd = wfd;
	if (cvb_meta_open(img, &o, &e, err, sizeof(err))) {
		fprintf(stderr, "child: open: %s\n", err);
		_exit(3);
	}
	struct op op;
	uint64_t ino;
	char line[32];
	int rc;

	for (int k = 1; k <= nops; k++) {
		gen(m, &r, true, &op);
		snprintf(line, sizeof(line), "B %d\n", k);
		(void)!write(wfd, line, strlen(line));
		if ((rc = eng_op(e, img, m, &op, &ino))) {
			fprintf(stderr, "child op %d kind %d: %s\n", k, op.k,
				strerror(-rc));
			_exit(3);
		}
		apply(m, &op, ino);
		if (op.k == K_COMMIT) {
			snprintf(line, sizeof(line), "C %d\n", k);
			(void)!write(wfd, line, strlen(line));
		}
	}
	mt_close(e);
	_exit(0);
}

static void read_progress(int rfd, int *lastc, int *lastb, int *jkill)
{
	char buf[65536], *p;
	ssize_t n;
	size_t len = 0;

	while ((n = read(rfd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = 0;
	for (p = strtok(buf, "\n"); p; p = strtok(NULL, "\n")) {
		if (p[0] == 'C')
			*lastc = atoi(p + 2);
		else if (p[0] == 'B')
			*lastb = atoi(p + 2);
		else if (p[0] == 'K')
			(*jkill)++;
	}
}

/* The op count in [lastc, lastb] whose model gives the tree on disk,
 * with *m moved there; -1 if none. */
static int match(const char *img, struct model *m, uint64_t r, int lastc,
		 int lastb)
{
	static struct model t;
	char *disk = mt_tree(img), *want;
	struct op op;
	uint64_t ino;
	int found = -1;

	model_copy(&t, m);
	for (int k = 0; k <= lastb && found < 0; k++) {
		if (k) {
			gen(&t, &r, true, &op);
			/* the child's inode numbers: fix_inos reads them */
			ino = (uint64_t)-1;
			apply(&t, &op, ino);
		}
		if (k < lastc)
			continue;
		want = listing(&t);
		if (!strcmp(want, disk))
			found = k;
		if (getenv("CVB_DEBUG")) {
			char fn[64];
			FILE *f;

			snprintf(fn, sizeof(fn), "crash-model-%d.tree", k);
			if ((f = fopen(fn, "w")))
				fputs(want, f), fclose(f);
			/* bytes of the files whose line is not on disk */
			for (int j = 0; j < NN; j++) {
				const struct mi *i = &t.i[t.n[j].node];
				char line[128];

				if (!t.n[j].live || i->type != 'f')
					continue;
				snprintf(line, sizeof(line), " f %u %u %08x\n",
					 i->size, i->nlink,
					 cv_crc32c(0xffffffffu, i->data,
						   i->size));
				if (strstr(disk, line))
					continue;
				snprintf(fn, sizeof(fn), "crash-%d-%s.data", k,
					 t.n[j].name);
				if ((f = fopen(fn, "w")))
					fwrite(i->data, 1, i->size, f),
						fclose(f);
			}
		}
		free(want);
	}
	if (found < 0) { /* for the reader of the failure */
		FILE *f = fopen("crash-disk.tree", "w");

		want = listing(&t);
		fprintf(stderr,
			"disk tree in crash-disk.tree, model after op "
			"%d in crash-model.tree\n",
			lastb);
		if (f)
			fputs(disk, f), fclose(f);
		if ((f = fopen("crash-model.tree", "w")))
			fputs(want, f), fclose(f);
		for (int j = 0; j < NN; j++) { /* file bytes, by name */
			const struct mi *i = &t.i[t.n[j].node];
			char fn[64];

			if (!t.n[j].live || i->type != 'f')
				continue;
			snprintf(fn, sizeof(fn), "crash-%s.data", t.n[j].name);
			if ((f = fopen(fn, "w")))
				fwrite(i->data, 1, i->size, f), fclose(f);
		}
		free(want);
	}
	free(disk);
	if (found >= 0)
		model_copy(m, &t);
	return found;
}

/* Inode numbers of the model's inodes, read back from the volume by
 * name (the child knew them; the parent learns them here). */
static int fix_inos(const char *img, struct model *m)
{
	struct cvb_meta *e = mt_open(img);
	int rc = 0;

	for (int pass = 0; pass < 8; pass++)
		for (int j = 0; j < NN; j++) {
			struct stat st;
			uint64_t pino;

			if (!m->n[j].live ||
			    m->i[m->n[j].node].ino != (uint64_t)-1)
				continue;
			pino = m->i[m->n[j].parent].ino;
			if (pino == (uint64_t)-1)
				continue;
			if (cvb_meta_lookup(e, pino, m->n[j].name, &st))
				rc = -ENOENT;
			else
				m->i[m->n[j].node].ino = st.st_ino;
		}
	mt_close(e);
	return rc;
}

static int one_round(const char *img, struct model *m, uint64_t r, int round)
{
	int p[2], st, lastc = 0, lastb = 0, found;
	pid_t pid;
	struct timespec ts = { 0, (long)(r % 150000) * 1000 };

	if (pipe(p))
		mt_die("pipe", -errno);
	if (!(pid = fork())) {
		close(p[0]);
		child_run(img, m, r, p[1], 400);
	}
	close(p[1]);
	nanosleep(&ts, NULL);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	read_progress(p[0], &lastc, &lastb, &m->jkills);
	close(p[0]);
	if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
		m->kills++;
	if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
		return mt_check(false,
				"round %d: the engine failed in the child",
				round),
		       -1;
	/* open replays; close leaves it clean */
	mt_close(mt_open(img));
	if (!mt_check(mt_fsck(img),
		      "round %d: e2fsck -fn clean after replay "
		      "(committed through op %d, started %d)",
		      round, lastc, lastb))
		return -1;
	found = match(img, m, r, lastc, lastb);
	if (!mt_check(found >= 0,
		      "round %d: the tree is the model after op %d "
		      "(committed %d, started %d)",
		      round, found, lastc, lastb))
		return -1;
	return fix_inos(img, m)
		       ? (mt_check(false, "round %d: inode numbers", round), -1)
		       : 0;
}

int mt_crash(const char *img, uint64_t seed, int rounds)
{
	static struct model m;
	uint64_t r = seed * 2654435761u + 7;

	model_init(&m);
	for (int k = 0; k < rounds; k++) {
		rnd(&r);
		if (one_round(img, &m, r, k))
			break;
	}
	printf("# %d rounds, %d children killed (%d at a journal write); "
	       "%d passed, %d failed\n",
	       rounds, m.kills, m.jkills, mt_pass, mt_fail);
	model_free(&m);
	return mt_fail ? 1 : 0;
}
