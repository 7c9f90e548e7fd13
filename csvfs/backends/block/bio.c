// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * bio.c - the data path of a block volume: file data goes between the
 * caller's buffer and the LUN, at the physical offsets of the file's
 * extent map, never through the metadata engine.
 *
 * Map cache: each inode (struct cvb_inode) caches the extents this node
 * fetched (holes included), sorted and disjoint, with the engine's map
 * generation.  A miss asks the engine (MAP) for a window around the
 * request; a write into a hole asks it to allocate (ALLOC: whole
 * granules, zeroed and committed before the answer), so no block that
 * was ever another file's is read or written through a stale map.
 *
 * Recall: before the engine frees blocks of a file it calls cvb_io_recall
 * on its own thread: the cache is dropped, the epoch bumped, and the
 * call waits until no I/O that took an extent before (inflight) is
 * still under way.  A map fetched before a recall and merged after it
 * would be stale: the fetcher notes the epoch before asking and drops
 * its answer if the epoch moved.  No one holds ci->lock or a pin while
 * waiting for the engine (block_i.h), so the recall cannot deadlock.
 *
 * Direct I/O: the LUN is open with O_DIRECT; an aligned request (buffer,
 * LUN offset and length multiples of dio_align) goes straight to pread
 * or pwrite.  Others go through a per-thread bounce buffer; a write of
 * a partial block reads the block, patches it and writes it back under
 * ci->rmw held exclusive (whole-block writes hold it shared), so that
 * two writers of different bytes of one block never lose each other's.
 *
 * Size: the owner of a file (this node, for now every node is) keeps the
 * size its writes reached and their mtime in ci (written), and pushes
 * them with SET_WRITTEN on flush, fsync and release; getattr on this
 * node overlays them (cvb_io_overlay).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block_i.h"
#include "lun.h"

/* Map window fetched on a miss, and the cache's bound. */
#define CVB_MAP_WINDOW (64ull << 20)
#define CVB_MAP_FETCH  64
#define CVB_MAP_MAX    8192

char *cvb_bounce(struct cvb_vol *b)
{
	void *p = pthread_getspecific(b->bounce_key);

	if (p)
		return p;
	if (posix_memalign(&p, CVB_ALIGN_MAX, CVB_BOUNCE + CVB_ALIGN_MAX))
		return NULL;
	if (pthread_setspecific(b->bounce_key, p)) {
		free(p);
		return NULL;
	}
	return p;
}

/* ---- inode table ------------------------------------------------------ */

static unsigned slot(uint64_t ino)
{
	return (unsigned)((ino * 0x9e3779b97f4a7c15ull) >> 54) % CVB_ITAB_SIZE;
}

static struct cvb_inode *find_locked(struct cvb_vol *b, uint64_t ino)
{
	struct cvb_inode *ci;

	for (ci = b->itab[slot(ino)]; ci; ci = ci->next)
		if (ci->ino == ino)
			return ci;
	return NULL;
}

struct cvb_inode *cvb_inode_get(struct cvb_vol *b, uint64_t ino)
{
	struct cvb_inode *ci;

	pthread_mutex_lock(&b->itab_lock);
	ci = find_locked(b, ino);
	if (!ci) {
		ci = calloc(1, sizeof(*ci));
		if (ci) {
			ci->ino = ino;
			pthread_rwlock_init(&ci->rmw, NULL);
			pthread_mutex_init(&ci->lock, NULL);
			pthread_cond_init(&ci->drained, NULL);
			ci->next = b->itab[slot(ino)];
			b->itab[slot(ino)] = ci;
		}
	}
	if (ci)
		ci->refs++;
	pthread_mutex_unlock(&b->itab_lock);
	return ci;
}

struct cvb_inode *cvb_inode_find(struct cvb_vol *b, uint64_t ino)
{
	struct cvb_inode *ci;

	pthread_mutex_lock(&b->itab_lock);
	ci = find_locked(b, ino);
	if (ci)
		ci->refs++;
	pthread_mutex_unlock(&b->itab_lock);
	return ci;
}

void cvb_inode_put(struct cvb_vol *b, struct cvb_inode *ci)
{
	struct cvb_inode **pp;

	if (!ci)
		return;
	pthread_mutex_lock(&b->itab_lock);
	if (--ci->refs) {
		pthread_mutex_unlock(&b->itab_lock);
		return;
	}
	for (pp = &b->itab[slot(ci->ino)]; *pp != ci; pp = &(*pp)->next)
		;
	*pp = ci->next;
	pthread_mutex_unlock(&b->itab_lock);
	free(ci->map.ext);
	pthread_cond_destroy(&ci->drained);
	pthread_mutex_destroy(&ci->lock);
	pthread_rwlock_destroy(&ci->rmw);
	free(ci);
}

/* ---- the map cache (ci->lock held) -------------------------------------- */

static void map_clear(struct cvb_map *mp)
{
	mp->n = 0;
}

void cvb_map_drop(struct cvb_inode *ci)
{
	pthread_mutex_lock(&ci->lock);
	map_clear(&ci->map);
	ci->epoch++;
	pthread_mutex_unlock(&ci->lock);
}

/* Index of the extent containing off, or -1. */
static int map_find(const struct cvb_map *mp, uint64_t off)
{
	unsigned lo = 0, hi = mp->n;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		const struct cvb_extent *e = &mp->ext[mid];

		if (off < e->off)
			hi = mid;
		else if (off >= e->off + e->len)
			lo = mid + 1;
		else
			return (int)mid;
	}
	return -1;
}

static int map_room(struct cvb_map *mp, unsigned need)
{
	struct cvb_extent *p;
	unsigned cap;

	if (mp->n + need <= mp->cap)
		return 0;
	cap = mp->cap ? mp->cap * 2 : 64;
	while (cap < mp->n + need)
		cap *= 2;
	p = realloc(mp->ext, cap * sizeof(*p));
	if (!p)
		return -ENOMEM;
	mp->ext = p;
	mp->cap = cap;
	return 0;
}

/*
 * Replace what the cache says about [lo, hi) by the n extents of ext
 * (contiguous, covering [lo, hi)): the old extents are cut at lo and hi.
 */
static int map_merge(struct cvb_map *mp, const struct cvb_extent *ext,
		     unsigned n, uint64_t lo, uint64_t hi)
{
	struct cvb_extent *out;
	unsigned k = 0;

	if (mp->n + n + 2 > CVB_MAP_MAX)
		map_clear(mp);
	out = malloc((mp->n + n + 2) * sizeof(*out));
	if (!out || map_room(mp, n + 2)) {
		free(out);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < mp->n; i++) {
		struct cvb_extent e = mp->ext[i];
		uint64_t end = e.off + e.len;

		if (e.off < lo)
			out[k++] = (struct cvb_extent){
				e.off, (end < lo ? end : lo) - e.off, e.phys
			};
	}
	for (unsigned i = 0; i < n; i++)
		out[k++] = ext[i];
	for (unsigned i = 0; i < mp->n; i++) {
		struct cvb_extent e = mp->ext[i];
		uint64_t end = e.off + e.len, cut;

		if (end <= hi)
			continue;
		cut = e.off < hi ? hi - e.off : 0;
		out[k++] = (struct cvb_extent){ e.off + cut, e.len - cut,
						e.phys ? e.phys + cut : 0 };
	}
	memcpy(mp->ext, out, k * sizeof(*out));
	mp->n = k;
	free(out);
	return 0;
}

/* ---- fetching maps -------------------------------------------------- */

/*
 * Ask the engine for the map (or an allocation) of [off, off + len) and
 * merge it, unless a recall came in between.  No lock held on entry.
 */
static int fetch(struct cvb_vol *b, struct cvb_inode *ci, uint64_t off,
		 uint64_t len, bool alloc)
{
	struct cvb_extent ext[CVB_MAP_FETCH];
	struct cvb_req r = {
		.op = alloc ? CVB_OP_ALLOC : CVB_OP_MAP,
		.ino = ci->ino,
		.off = off,
		.len = len,
		.ext = ext,
		.max = CVB_MAP_FETCH,
	};
	uint64_t epoch, hi;
	int rc;

	pthread_mutex_lock(&ci->lock);
	epoch = ci->epoch;
	pthread_mutex_unlock(&ci->lock);
	rc = (int)cvb_call(b, &r);
	if (rc)
		return rc;
	if (!r.n && !alloc) { /* nothing mapped there: one hole */
		ext[0] = (struct cvb_extent){ .off = off, .len = len };
		r.n = 1;
	}
	if (!r.n || ext[0].off > off)
		return -EIO; /* the engine must answer from off */
	hi = ext[r.n - 1].off + ext[r.n - 1].len;
	pthread_mutex_lock(&ci->lock);
	if (ci->epoch == epoch) {
		if (ci->gen != r.gen)
			map_clear(&ci->map);
		ci->gen = r.gen;
		rc = map_merge(&ci->map, ext, r.n, ext[0].off, hi);
	}
	pthread_mutex_unlock(&ci->lock);
	return rc;
}

/*
 * The extent containing off, pinned (ci->inflight) until unpin; holes
 * come back with phys 0 unless write (then allocated first).  len: how
 * far the caller goes, for the size of a fetch.
 */
static int pin_extent(struct cvb_vol *b, struct cvb_inode *ci, uint64_t off,
		      uint64_t len, bool write, struct cvb_extent *out)
{
	/* Other nodes may allocate where this cache says hole (no recall
	 * comes for that): a read asks again once before trusting one. */
	bool asked = !b->net;

	for (int tries = 0; tries < 16; tries++) {
		int i, rc;
		bool hole = false;

		pthread_mutex_lock(&ci->lock);
		i = map_find(&ci->map, off);
		if (i >= 0) {
			*out = ci->map.ext[i];
			hole = !out->phys;
			if (!hole || (!write && asked)) {
				ci->inflight++;
				pthread_mutex_unlock(&ci->lock);
				return 0;
			}
		}
		pthread_mutex_unlock(&ci->lock);
		if (hole && !write) {
			asked = true;
			rc = fetch(b, ci, off, len, false);
		} else if (hole)
			rc = fetch(b, ci, off, len, true);
		else
			rc = fetch(b, ci, off,
				   len > CVB_MAP_WINDOW ? len : CVB_MAP_WINDOW,
				   false);
		if (rc)
			return rc;
	}
	return -EIO; /* maps keep changing under us: give up */
}

static void unpin(struct cvb_inode *ci)
{
	pthread_mutex_lock(&ci->lock);
	if (!--ci->inflight)
		pthread_cond_broadcast(&ci->drained);
	pthread_mutex_unlock(&ci->lock);
}

int cvb_io_recall(void *arg, uint64_t ino)
{
	struct cvb_vol *b = arg;
	struct cvb_inode *ci = cvb_inode_find(b, ino);

	if (!ci)
		return 0; /* no map cached here */
	pthread_mutex_lock(&ci->lock);
	map_clear(&ci->map);
	ci->epoch++;
	while (ci->inflight)
		pthread_cond_wait(&ci->drained, &ci->lock);
	pthread_mutex_unlock(&ci->lock);
	cvb_inode_put(b, ci);
	return 0;
}

/* ---- direct I/O on the LUN -------------------------------------------- */

static bool aligned(uint64_t v, unsigned a)
{
	return !(v & (a - 1));
}

/* Read [phys, phys + n) of the LUN into buf, any alignment. */
static int lun_read(struct cvb_vol *b, char *buf, size_t n, uint64_t phys)
{
	unsigned a = b->dio_align;
	char *bb;

	if (aligned((uintptr_t)buf | phys | n, a)) {
		ssize_t got = cvb_lun_pread(b->lun, buf, n, phys);

		return got == (ssize_t)n ? 0 : got < 0 ? (int)got : -EIO;
	}
	bb = cvb_bounce(b);
	if (!bb)
		return -ENOMEM;
	while (n) {
		uint64_t start = phys & ~(uint64_t)(a - 1);
		size_t head = (size_t)(phys - start);
		size_t want = n < CVB_BOUNCE ? n : CVB_BOUNCE;
		size_t len = (head + want + a - 1) & ~(size_t)(a - 1);
		ssize_t got = cvb_lun_pread(b->lun, bb, len, start);

		if (got != (ssize_t)len)
			return got < 0 ? (int)got : -EIO;
		memcpy(buf, bb + head, want);
		buf += want;
		phys += want;
		n -= want;
	}
	return 0;
}

static int lun_pwrite(struct cvb_vol *b, const char *buf, size_t n,
		      uint64_t phys)
{
	ssize_t put = cvb_lun_pwrite(b->lun, buf, n, phys);

	return put == (ssize_t)n ? 0 : put < 0 ? (int)put : -EIO;
}

/* Whole aligned blocks from an unaligned buffer: through the bounce. */
static int write_bounced(struct cvb_vol *b, const char *buf, size_t n,
			 uint64_t phys)
{
	char *bb = cvb_bounce(b);
	int rc = 0;

	if (!bb)
		return -ENOMEM;
	while (n && !rc) {
		size_t len = n < CVB_BOUNCE ? n : CVB_BOUNCE;

		memcpy(bb, buf, len);
		rc = lun_pwrite(b, bb, len, phys);
		buf += len;
		phys += len;
		n -= len;
	}
	return rc;
}

/* Partial blocks: read the aligned range around, patch, write back
 * (ci->rmw held exclusive by the caller).  n <= CVB_BOUNCE. */
static int write_rmw(struct cvb_vol *b, const char *buf, size_t n,
		     uint64_t phys)
{
	unsigned a = b->dio_align;
	uint64_t start = phys & ~(uint64_t)(a - 1);
	size_t head = (size_t)(phys - start);
	size_t len = (head + n + a - 1) & ~(size_t)(a - 1);
	char *bb = cvb_bounce(b);
	int rc;

	if (!bb)
		return -ENOMEM;
	/* only the first and last blocks need reading */
	rc = lun_read(b, bb, a, start);
	if (!rc && len > a)
		rc = lun_read(b, bb + len - a, a, start + len - a);
	if (rc)
		return rc;
	memcpy(bb + head, buf, n);
	return lun_pwrite(b, bb, len, start);
}

/* Write n bytes at phys, any alignment. */
static int lun_write(struct cvb_vol *b, struct cvb_inode *ci, const char *buf,
		     size_t n, uint64_t phys)
{
	unsigned a = b->dio_align;
	int rc;

	if (!aligned(phys | n, a)) {
		pthread_rwlock_wrlock(&ci->rmw);
		rc = write_rmw(b, buf, n, phys);
		pthread_rwlock_unlock(&ci->rmw);
		return rc;
	}
	pthread_rwlock_rdlock(&ci->rmw);
	if (aligned((uintptr_t)buf, a))
		rc = lun_pwrite(b, buf, n, phys);
	else
		rc = write_bounced(b, buf, n, phys);
	pthread_rwlock_unlock(&ci->rmw);
	return rc;
}

/* ---- reads and writes of a file --------------------------------------- */

ssize_t cvb_io_read(struct cvb_vol *b, struct cvb_inode *ci, void *buf,
		    size_t size, uint64_t off)
{
	size_t done = 0;
	uint64_t eof;

	pthread_mutex_lock(&ci->lock);
	eof = ci->size;
	pthread_mutex_unlock(&ci->lock);
	if (off >= eof)
		return 0;
	if (size > eof - off)
		size = (size_t)(eof - off);
	while (done < size) {
		uint64_t pos = off + done;
		struct cvb_extent e;
		size_t n;
		int rc = pin_extent(b, ci, pos, size - done, false, &e);

		if (rc)
			return done ? (ssize_t)done : rc;
		n = (size_t)(e.off + e.len - pos);
		if (n > size - done)
			n = size - done;
		if (e.phys)
			rc = lun_read(b, (char *)buf + done, n,
				      e.phys + (pos - e.off));
		else
			memset((char *)buf + done, 0, n);
		unpin(ci);
		if (rc)
			return done ? (ssize_t)done : rc;
		done += n;
	}
	return (ssize_t)done;
}

static void note_written(struct cvb_inode *ci, uint64_t end)
{
	pthread_mutex_lock(&ci->lock);
	if (end > ci->size)
		ci->size = end;
	clock_gettime(CLOCK_REALTIME, &ci->mtime);
	ci->written = true;
	pthread_mutex_unlock(&ci->lock);
}

ssize_t cvb_io_write(struct cvb_vol *b, struct cvb_inode *ci, const void *buf,
		     size_t size, uint64_t off)
{
	size_t done = 0;
	int rc = 0;

	if (off + size < off || off + size > (uint64_t)INT64_MAX)
		return -EFBIG;
	while (done < size && !rc) {
		uint64_t pos = off + done;
		struct cvb_extent e;
		size_t n;

		rc = pin_extent(b, ci, pos, size - done, true, &e);
		if (rc)
			break;
		n = (size_t)(e.off + e.len - pos);
		if (n > size - done)
			n = size - done;
		if (n > CVB_BOUNCE)
			n = CVB_BOUNCE;
		rc = lun_write(b, ci, (const char *)buf + done, n,
			       e.phys + (pos - e.off));
		unpin(ci);
		if (!rc) {
			done += n;
			note_written(ci, pos + n);
		}
	}
	return done ? (ssize_t)done : rc;
}

/* ---- size and times ---------------------------------------------------- */

int cvb_io_push(struct cvb_vol *b, struct cvb_inode *ci)
{
	struct cvb_req r = { .op = CVB_OP_SET_WRITTEN, .ino = ci->ino };
	int rc;

	pthread_mutex_lock(&ci->lock);
	if (!ci->written) {
		pthread_mutex_unlock(&ci->lock);
		return 0;
	}
	ci->written = false;
	r.size = ci->size;
	r.mtime = ci->mtime;
	pthread_mutex_unlock(&ci->lock);
	rc = (int)cvb_call(b, &r);
	if (rc) {
		pthread_mutex_lock(&ci->lock);
		ci->written = true; /* try again at the next push */
		pthread_mutex_unlock(&ci->lock);
	}
	return rc;
}

void cvb_io_overlay(struct cvb_inode *ci, struct stat *st)
{
	pthread_mutex_lock(&ci->lock);
	if (ci->written) {
		if ((uint64_t)st->st_size < ci->size)
			st->st_size = (off_t)ci->size;
		st->st_mtim = ci->mtime;
		st->st_ctim = ci->mtime;
	} else if (S_ISREG(st->st_mode)) {
		ci->size = (uint64_t)st->st_size;
		ci->size_known = true;
	}
	pthread_mutex_unlock(&ci->lock);
}

/* ---- asynchronous I/O through csvfs's ring ---------------------------- */

int cvb_io_pin(struct cvb_vol *b, struct cvb_inode *ci, uint64_t off,
	       size_t size, unsigned buf_align, bool write, uint64_t *phys)
{
	const struct cvb_extent *e;
	int i, rc = -1;

	if (!aligned(buf_align, b->dio_align) ||
	    !aligned(off | size, b->dio_align))
		return -1;
	pthread_mutex_lock(&ci->lock);
	i = map_find(&ci->map, off);
	if (i < 0)
		goto out;
	e = &ci->map.ext[i];
	/* allocated, contiguous; a write within the size (no size change) */
	if (!e->phys || off + size > e->off + e->len)
		goto out;
	if (write ? off + size > ci->size : off >= ci->size)
		goto out;
	if (!write && off + size > ci->size)
		goto out; /* a short read: let read clip it */
	*phys = e->phys + (off - e->off);
	ci->inflight++;
	rc = 0;
out:
	pthread_mutex_unlock(&ci->lock);
	return rc;
}

void cvb_io_unpin(struct cvb_inode *ci, bool write, uint64_t off, size_t size,
		  ssize_t res)
{
	if (write && res > 0)
		note_written(ci, off + (uint64_t)res);
	unpin(ci);
}
