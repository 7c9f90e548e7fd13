// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The model of jtool's tree (see jmodel.h).  Deterministic: the same
 * seed gives the same operations, which is how the parent of a killed
 * child knows what the child was doing.
 */
#include "jmodel.h"

#include <stdlib.h>
#include <string.h>

#include "crc32c.h"

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int pick_live(const struct jm *m, uint64_t *rng)
{
	int live = 0, k;

	for (int i = 0; i < m->nf; i++)
		live += m->f[i].live;
	if (!live)
		return -1;
	k = (int)(rnd(rng) % (uint64_t)live);
	for (int i = 0; i < m->nf; i++)
		if (m->f[i].live && k-- == 0)
			return i;
	return -1;
}

static int pick_dir(const struct jm *m, uint64_t *rng)
{
	return (int)(rnd(rng) % (uint64_t)(m->nd + 1)) - 1;
}

/* A dead file's slot, else the next new one. */
static int free_slot(const struct jm *m)
{
	for (int i = 0; i < m->nf; i++)
		if (!m->f[i].live)
			return i;
	return m->nf;
}

void jm_gen(struct jm *m, uint64_t *rng, struct jm_op *op)
{
	uint64_t r = rnd(rng) % 100;
	int f = pick_live(m, rng);

	memset(op, 0, sizeof(*op));
	if (m->nd < JM_MAXD && (r < 8 || m->nd == 0)) {
		op->kind = JM_MKDIR;
		op->dir = m->nd;
		snprintf(op->name, JM_NAME, "d%u", m->counter++);
	} else if (f < 0 || r < 50 || m->nf < 4) {
		op->kind = JM_CREATE;
		op->file = free_slot(m);
		op->dir = pick_dir(m, rng);
		snprintf(op->name, JM_NAME, "f%u", m->counter++);
		op->seed = (uint32_t)rnd(rng);
		op->size = (uint32_t)(rnd(rng) % 13000);
		if (op->size % 7 == 0)
			op->size = 0;
	} else if (r < 80) {
		op->kind = JM_UNLINK;
		op->file = f;
	} else {
		op->kind = JM_RENAME;
		op->file = f;
		op->dir = pick_dir(m, rng);
		snprintf(op->name, JM_NAME, "r%u", m->counter++);
	}
	if (op->kind == JM_CREATE && op->file >= JM_MAXF) {
		op->kind = JM_UNLINK;	/* full model: shrink instead */
		op->file = f;
	}
	jm_apply(m, op);
}

void jm_apply(struct jm *m, const struct jm_op *op)
{
	struct jm_file *f = &m->f[op->file];

	switch (op->kind) {
	case JM_MKDIR:
		snprintf(m->dname[op->dir], JM_NAME, "%s", op->name);
		m->nd = op->dir + 1;
		break;
	case JM_CREATE:
		snprintf(f->name, JM_NAME, "%s", op->name);
		f->dir = op->dir;
		f->seed = op->seed;
		f->size = op->size;
		f->live = true;
		if (op->file >= m->nf)
			m->nf = op->file + 1;
		break;
	case JM_UNLINK:
		f->live = false;
		break;
	case JM_RENAME:
		snprintf(f->name, JM_NAME, "%s", op->name);
		f->dir = op->dir;
		break;
	}
}

void jm_fill(uint32_t seed, uint8_t *buf, size_t len)
{
	uint64_t s = seed | 1ull << 40;

	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(rnd(&s) >> 24);
	if (len >= 4 && seed % 3 == 0)	/* make the journal escape some */
		memcpy(buf, "\xc0\x3b\x39\x98", 4);
}

uint32_t jm_crc(uint32_t seed, uint32_t size)
{
	uint8_t *b = malloc(size ? size : 1);
	uint32_t c;

	jm_fill(seed, b, size);
	c = cv_crc32c(0xffffffffu, b, size);
	free(b);
	return c;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void jm_print_lines(char **lines, size_t n, FILE *out)
{
	qsort(lines, n, sizeof(*lines), cmp_str);
	for (size_t i = 0; i < n; i++) {
		fprintf(out, "%s\n", lines[i]);
		free(lines[i]);
	}
}

void jm_print(const struct jm *m, FILE *out)
{
	char **lines = calloc((size_t)(m->nf + m->nd + 1), sizeof(*lines));
	size_t n = 0;

	for (int d = 0; d < m->nd; d++)
		if (asprintf(&lines[n++], "/%s d", m->dname[d]) < 0)
			abort();
	for (int i = 0; i < m->nf; i++) {
		const struct jm_file *f = &m->f[i];

		if (!f->live)
			continue;
		if (asprintf(&lines[n++], "%s%s/%s f %u %08x",
			     f->dir < 0 ? "" : "/",
			     f->dir < 0 ? "" : m->dname[f->dir], f->name,
			     f->size, jm_crc(f->seed, f->size)) < 0)
			abort();
	}
	jm_print_lines(lines, n, out);
	free(lines);
}
