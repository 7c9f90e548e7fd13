/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A map from block number to one block-sized buffer, in insertion order:
 * the set of blocks one transaction changed, or the blocks committed to
 * the journal and not yet written home.  Not thread-safe: its owner
 * serialises access.
 *
 * Buffers: the map owns every buffer it holds (malloc'd by
 * blkmap_get_or_add, freed by blkmap_clear/blkmap_free); pointers it
 * returns stay valid until the next blkmap_clear or blkmap_free.
 */
#ifndef CSVFS_BLKMAP_H
#define CSVFS_BLKMAP_H

#include <stddef.h>
#include <stdint.h>

struct blkmap_ent {
	uint64_t blk;
	uint8_t *data;
};

struct blkmap {
	size_t bsize;		/* bytes per buffer */
	struct blkmap_ent *ents;	/* insertion order */
	size_t n, cap;
	uint32_t *slots;	/* open addressing: index+1, 0 = empty */
	size_t nslots;		/* power of two, > 2 * n */
};

void blkmap_init(struct blkmap *m, size_t bsize);
void blkmap_free(struct blkmap *m);
/* Forget every entry and free its buffer. */
void blkmap_clear(struct blkmap *m);
/* The buffer of blk, or NULL. */
uint8_t *blkmap_find(const struct blkmap *m, uint64_t blk);
/* Forget blk (free its buffer); iteration skips entries whose data is
 * NULL, and blkmap_get_or_add gives blk a fresh buffer again. */
void blkmap_drop(struct blkmap *m, uint64_t blk);
/* The buffer of blk, added (uninitialised, *added = 1) if absent;
 * NULL on allocation failure. */
uint8_t *blkmap_get_or_add(struct blkmap *m, uint64_t blk, int *added);

#endif
