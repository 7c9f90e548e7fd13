/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * replica_track.h - change tracking of one replicated file (pure: no I/O,
 * no clock; the activity log is written through callbacks).
 *
 * The owner of a replicated file marks every 64 KiB granule a write
 * touches in a bitmap (dirty).  Before the first write into a cold 4 MiB
 * extent it has the extent recorded durably in the file's activity log
 * on the shared volume (cb al_append: write + fsync), and only then lets
 * the write go on; the extent stays hot until a rewrite of the log drops
 * it.  So at any moment every granule that changed since the last point
 * shipped lies in an extent the log names: a node that crashes loses no
 * change, and the next owner (a new epoch) starts from the log and from
 * the bitmap a planned hand-off left (cb load).
 *
 * Recovery points: with the writes of the replication group drained, the
 * shell freezes the bitmap (rt_freeze: the dirty set becomes the frozen
 * set to ship, a new empty dirty set starts).  A write that then touches
 * a frozen granule not shipped yet is told so by rt_write; the shell
 * copies the old granule aside (rt_cbw_take) before letting it proceed,
 * so what is shipped is the file as it was at the freeze.
 *
 * Locking: t->lock protects every field but the callbacks' state; it is
 * a leaf lock, never held across a callback.  t->al_lock serialises the
 * activity log (append, rewrite, load); lock order al_lock before lock.
 * t->cbw_lock serialises the copy-before-write of a granule against its
 * shipping (rt_cbw_take / rt_ship_take); order cbw_lock before lock.
 *
 * Buffers: rt_bits own their words; callers own everything they pass.
 */
#ifndef CSVFS_REPLICA_TRACK_H
#define CSVFS_REPLICA_TRACK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RT_GRANULE_SHIFT       16 /* 64 KiB */
#define RT_EXTENT_SHIFT	       22 /* 4 MiB */
#define RT_GRANULE	       ((uint64_t)1 << RT_GRANULE_SHIFT)
#define RT_EXTENT	       ((uint64_t)1 << RT_EXTENT_SHIFT)
#define RT_GRANULES_PER_EXTENT (1u << (RT_EXTENT_SHIFT - RT_GRANULE_SHIFT))
/* Largest file offset tracked (writes past it fail with EFBIG). */
#define RT_MAX_BYTES ((uint64_t)1 << 44) /* 16 TiB */
/* No ownership loaded yet. */
#define RT_EPOCH_NONE UINT64_MAX

/* A growable bit set. */
struct rt_bits {
	uint64_t *w; /* owned */
	size_t nwords;
};

void rt_bits_free(struct rt_bits *b);
/* 0 or -ENOMEM (grows as needed). */
int rt_bits_set_range(struct rt_bits *b, uint64_t first, uint64_t last);
bool rt_bits_test(const struct rt_bits *b, uint64_t bit);
bool rt_bits_any(const struct rt_bits *b, uint64_t first, uint64_t last);
void rt_bits_clear(struct rt_bits *b, uint64_t bit);
uint64_t rt_bits_count(const struct rt_bits *b);
/* The next set bit >= from, or UINT64_MAX. */
uint64_t rt_bits_next(const struct rt_bits *b, uint64_t from);
/* dst |= src; 0 or -ENOMEM. */
int rt_bits_or(struct rt_bits *dst, const struct rt_bits *src);

struct rt_file;

struct rt_ops {
	/* Make extents exts[0..n) durable in the activity log (the write
	 * that needs them waits): 0 or -errno. */
	int (*al_append)(void *arg, const uint64_t *exts, size_t n);
	/* Replace the log atomically by one of this epoch listing exactly
	 * exts[0..n): 0 or -errno. */
	int (*al_rewrite)(void *arg, uint64_t epoch, const uint64_t *exts,
			  size_t n);
	/* A new ownership: add to *granules every granule that the
	 * previous owners' log and hand-off left to ship: 0 or -errno. */
	int (*load)(void *arg, struct rt_bits *granules);
};

struct rt_stats {
	uint64_t dirty;	    /* granules */
	uint64_t frozen;    /* granules frozen, not shipped yet */
	uint64_t hot;	    /* extents named by the log */
	uint64_t al_writes; /* appends + rewrites */
	uint64_t cbw;	    /* granules copied before write */
	uint64_t epoch;
};

/* 0 and *out, or -ENOMEM. */
int rt_new(const struct rt_ops *ops, void *arg, struct rt_file **out);
void rt_free(struct rt_file *t);

/* Outcome of rt_write for the caller. */
enum { RT_OK = 0, RT_CBW = 1 };

/*
 * An admitted write (or truncate, punch, allocate) of [off, off+len) by
 * the owner of epoch: marks its granules, recording cold extents in the
 * log first (a new epoch loads first).  len 0: nothing.  Returns RT_OK,
 * RT_CBW (frozen granules not shipped lie in the range: call
 * rt_cbw_take for them before the data changes), or -errno (the log
 * could not be written: the write must not proceed).
 */
int rt_write(struct rt_file *t, uint64_t epoch, uint64_t off, uint64_t len);
/* Load the ownership of epoch if not loaded (as the first write would):
 * 0 or -errno. */
int rt_load(struct rt_file *t, uint64_t epoch);
/* The same without waiting: -EAGAIN where rt_write would load or write
 * the log (nothing marked then). */
int rt_write_fast(struct rt_file *t, uint64_t epoch, uint64_t off,
		  uint64_t len);

/*
 * Freeze: the dirty set becomes the frozen set, a new dirty set starts.
 * The caller has drained the writes (none in flight).  -EBUSY if the
 * previous frozen set is not shipped yet.
 */
int rt_freeze(struct rt_file *t);
/* The frozen granules (copy, for the shipper): 0 or -ENOMEM. */
int rt_frozen_copy(struct rt_file *t, struct rt_bits *out);
/*
 * Claim frozen granule g for shipping or for a copy-before-write (both
 * under t->cbw_lock, held by the caller through rt_cbw_lock): true if it
 * was still pending, and is no longer.
 */
bool rt_claim_frozen(struct rt_file *t, uint64_t g);
void rt_cbw_lock(struct rt_file *t);
void rt_cbw_unlock(struct rt_file *t);
void rt_count_cbw(struct rt_file *t);
/* The point is shipped (put_back NULL), or abandoned: put_back (the
 * frozen set as rt_frozen_copy gave it) goes back into the dirty set.
 * The log is then rewritten to name only the extents still needed.
 * 0 or -errno. */
int rt_point_done(struct rt_file *t, const struct rt_bits *put_back);
/* Mark the whole of [0, size) dirty (initial replication). */
int rt_mark_all(struct rt_file *t, uint64_t size);
/* Copy of dirty | frozen, for a hand-off (0 or -ENOMEM) and the epoch it
 * was tracked under. */
int rt_handoff_bits(struct rt_file *t, struct rt_bits *out, uint64_t *epoch);
/* After a hand-off or a loss: the next write loads again. */
void rt_unload(struct rt_file *t);
void rt_stats(struct rt_file *t, struct rt_stats *st);

/*
 * On-volume formats (little endian), decoders bounds-checked:
 *   activity log: a header record then extent records, RT_AL_REC bytes
 *   each; a torn or corrupt tail ends the log (the records before it
 *   were fsynced before any write they cover).
 *   hand-off bitmap: header (magic, epoch, nwords, check) + words.
 */
#define RT_AL_REC 32
enum { RT_AL_HDR = 1, RT_AL_EXT = 2 };
struct rt_al_rec {
	uint32_t type;
	uint64_t a; /* HDR: epoch; EXT: extent number */
	uint64_t b; /* HDR: file id; EXT: 0 */
};
void rt_al_encode(const struct rt_al_rec *r, uint8_t out[RT_AL_REC]);
/* 0, or -EINVAL for a record not intact. */
int rt_al_decode(const uint8_t *in, size_t len, struct rt_al_rec *r);
/*
 * Parse a whole log: the header's epoch and file id, extents added as
 * granules to *granules.  0, -EINVAL (no valid header), -ENOMEM.
 */
int rt_al_parse(const uint8_t *buf, size_t len, uint64_t *epoch,
		uint64_t *fileid, struct rt_bits *granules);

#define RT_BM_HDR 32
/* Encode *b with epoch; *out malloc'd, caller frees. 0 or -ENOMEM. */
int rt_bm_encode(const struct rt_bits *b, uint64_t epoch, uint8_t **out,
		 size_t *len);
/* 0 (bits ORed into *b), -EINVAL, -ENOMEM. */
int rt_bm_decode(const uint8_t *in, size_t len, uint64_t *epoch,
		 struct rt_bits *b);

#endif /* CSVFS_REPLICA_TRACK_H */
