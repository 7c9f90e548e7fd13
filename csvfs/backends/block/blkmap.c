// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Block-number map (see blkmap.h): an array of entries in the order they
 * were added, indexed by a linear-probing hash table that is rebuilt as
 * it grows.  Entries are never removed one by one, only all together,
 * which is all a transaction or a checkpoint needs.
 */
#include "blkmap.h"

#include <stdlib.h>
#include <string.h>

static size_t slot_of(uint64_t blk, size_t nslots)
{
	blk *= 0x9E3779B97F4A7C15ull;
	return (size_t)(blk >> 32) & (nslots - 1);
}

void blkmap_init(struct blkmap *m, size_t bsize)
{
	memset(m, 0, sizeof(*m));
	m->bsize = bsize;
}

void blkmap_clear(struct blkmap *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->ents[i].data);
	m->n = 0;
	if (m->slots)
		memset(m->slots, 0, m->nslots * sizeof(*m->slots));
}

void blkmap_free(struct blkmap *m)
{
	blkmap_clear(m);
	free(m->ents);
	free(m->slots);
	blkmap_init(m, m->bsize);
}

static struct blkmap_ent *ent_find(const struct blkmap *m, uint64_t blk)
{
	if (!m->nslots)
		return NULL;
	for (size_t s = slot_of(blk, m->nslots);; s = (s + 1) & (m->nslots - 1)) {
		uint32_t i = m->slots[s];

		if (!i)
			return NULL;
		if (m->ents[i - 1].blk == blk)
			return &m->ents[i - 1];
	}
}

uint8_t *blkmap_find(const struct blkmap *m, uint64_t blk)
{
	struct blkmap_ent *e = ent_find(m, blk);

	return e ? e->data : NULL;
}

void blkmap_drop(struct blkmap *m, uint64_t blk)
{
	struct blkmap_ent *e = ent_find(m, blk);

	if (e) {
		free(e->data);
		e->data = NULL;
	}
}

static void slot_insert(uint32_t *slots, size_t nslots, uint64_t blk,
			uint32_t idx1)
{
	size_t s = slot_of(blk, nslots);

	while (slots[s])
		s = (s + 1) & (nslots - 1);
	slots[s] = idx1;
}

static int grow(struct blkmap *m)
{
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		struct blkmap_ent *e = realloc(m->ents, cap * sizeof(*e));

		if (!e)
			return -1;
		m->ents = e;
		m->cap = cap;
	}
	if (2 * (m->n + 1) >= m->nslots) {
		size_t ns = m->nslots ? m->nslots * 2 : 128;
		uint32_t *sl = calloc(ns, sizeof(*sl));

		if (!sl)
			return -1;
		for (size_t i = 0; i < m->n; i++)
			slot_insert(sl, ns, m->ents[i].blk, (uint32_t)i + 1);
		free(m->slots);
		m->slots = sl;
		m->nslots = ns;
	}
	return 0;
}

uint8_t *blkmap_get_or_add(struct blkmap *m, uint64_t blk, int *added)
{
	struct blkmap_ent *e = ent_find(m, blk);
	uint8_t *d;

	*added = 0;
	if (e && e->data)
		return e->data;
	if (e) {
		e->data = malloc(m->bsize);
		*added = e->data != NULL;
		return e->data;
	}
	if (grow(m))
		return NULL;
	d = malloc(m->bsize);
	if (!d)
		return NULL;
	m->ents[m->n].blk = blk;
	m->ents[m->n].data = d;
	m->n++;
	slot_insert(m->slots, m->nslots, blk, (uint32_t)m->n);
	*added = 1;
	return d;
}
