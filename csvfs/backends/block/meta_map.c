// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * meta_map.c: the extent maps of regular files: map, alloc, fallocate,
 * set_written, truncate and punch.
 *
 * The engine edits extent trees itself with the extent-handle calls of
 * libext2fs (goto, get, insert, replace, delete, fix_parents) rather
 * than through ext2fs_fallocate, ext2fs_punch or single-block
 * ext2fs_extent_set_bmap on unwritten extents: libext2fs 1.47.0 has
 * known bugs on those paths (fallocate bounds, a punch off-by-one and
 * overflow past 2^31 blocks, and a corrupted tree after a few hundred
 * single-block conversions).  Whole extents are inserted, trimmed,
 * split or converted at once.
 *
 * Allocation is in granules (CVB_GRANULE, aligned in the file), zeroed
 * on the LUN before the map naming them is committed.  Blocks before the
 * end-of-file block are initialised extents; blocks at or past it are
 * unwritten (e2fsck allows no initialised block past i_size) and become
 * initialised, whole extents at a time, when the size grows over them.
 * So an unwritten extent made by the engine is always zeroed on the LUN:
 * map gives its blocks past the end of file (the owner writes there
 * before set_written), and a hole inside the file where an unwritten
 * extent came from elsewhere (alloc then zeroes and converts it).
 */
#include "meta_i.h"
#include <stdio.h>

#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>

#define INIT_MAX   32768u	/* blocks in an initialised extent */
#define UNINIT_MAX 32767u	/* ... in an unwritten one */
#define LBLK_END   (1ull << 32) /* ext4's logical block limit */

static uint64_t bs_of(struct cvb_meta *m)
{
	return m->fs->blocksize;
}

static uint64_t eof_blk(struct cvb_meta *m, const struct ext2_inode_large *in)
{
	return (EXT2_I_SIZE(in) + bs_of(m) - 1) / bs_of(m);
}

static bool is_uninit(const struct ext2fs_extent *e)
{
	return e->e_flags & EXT2_EXTENT_FLAGS_UNINIT;
}

/*
 * The first leaf extent ending after lblk, in *e (handle on it): 0, or
 * 1 when there is none, or -errno.
 */
static int seek(ext2_extent_handle_t h, uint64_t lblk, struct ext2fs_extent *e)
{
	errcode_t r = ext2fs_extent_goto2(h, 0, lblk);

	if (r && r != EXT2_ET_EXTENT_NOT_FOUND)
		return cvb_err(r);
	r = ext2fs_extent_get(h, EXT2_EXTENT_CURRENT, e);
	if (r == EXT2_ET_NO_CURRENT_NODE || r == EXT2_ET_EXTENT_NO_NEXT)
		return 1; /* empty tree */
	if (r)
		return cvb_err(r);
	if (!(e->e_flags & EXT2_EXTENT_FLAGS_LEAF))
		return -EUCLEAN;
	while (e->e_lblk + e->e_len <= lblk) {
		r = ext2fs_extent_get(h, EXT2_EXTENT_NEXT_LEAF, e);
		if (r == EXT2_ET_EXTENT_NO_NEXT)
			return 1;
		if (r)
			return cvb_err(r);
	}
	return 0;
}

static int fix(ext2_extent_handle_t h)
{
	errcode_t r = ext2fs_extent_fix_parents(h);

	return r == EXT2_ET_NO_CURRENT_NODE ? 0 : cvb_err(r);
}

static int open_h(struct cvb_meta *m, uint64_t ino, struct ext2_inode_large *in,
		  ext2_extent_handle_t *h)
{
	if (!LINUX_S_ISREG(in->i_mode))
		return LINUX_S_ISDIR(in->i_mode) ? -EISDIR : -EINVAL;
	if (!(in->i_flags & EXT4_EXTENTS_FL))
		return -EOPNOTSUPP; /* block-mapped: not made by csvfs */
	m->fs_touched = true;
	return cvb_err(ext2fs_extent_open2(m->fs, (ext2_ino_t)ino,
					   (struct ext2_inode *)in, h));
}

/* Insert [lblk, lblk+len) -> pblk (len within one extent's limit) where
 * the file has a hole, extending the extent before when it continues. */
static int insert(ext2_extent_handle_t h, uint64_t lblk, uint64_t pblk,
		  uint32_t len, bool uninit)
{
	struct ext2fs_extent e = { 0 }, n = { .e_pblk = pblk,
					      .e_lblk = lblk,
					      .e_len = len };
	errcode_t r;

	n.e_flags = uninit ? EXT2_EXTENT_FLAGS_UNINIT : 0;
	if (lblk && !ext2fs_extent_goto2(h, 0, lblk - 1) &&
	    !ext2fs_extent_get(h, EXT2_EXTENT_CURRENT, &e) &&
	    e.e_lblk + e.e_len == lblk && e.e_pblk + e.e_len == pblk &&
	    is_uninit(&e) == uninit &&
	    e.e_len + len <= (uninit ? UNINIT_MAX : INIT_MAX)) {
		e.e_len += len;
		r = ext2fs_extent_replace(h, 0, &e);
		return r ? cvb_err(r) : fix(h);
	}
	r = ext2fs_extent_goto2(h, 0, lblk);
	if (!r)
		return -EUCLEAN; /* not a hole */
	if (r != EXT2_ET_EXTENT_NOT_FOUND)
		return cvb_err(r);
	r = ext2fs_extent_get(h, EXT2_EXTENT_CURRENT, &e);
	if (r == EXT2_ET_NO_CURRENT_NODE || r == EXT2_ET_EXTENT_NO_NEXT)
		r = ext2fs_extent_insert(h, 0, &n); /* empty tree */
	else if (!r)
		r = ext2fs_extent_insert(
			h, e.e_lblk > lblk ? 0 : EXT2_EXTENT_INSERT_AFTER, &n);
	return r ? cvb_err(r) : fix(h);
}

/* Insert a run, cut at eofb (initialised before, unwritten from) and at
 * the extent length limits. */
static int insert_run(ext2_extent_handle_t h, uint64_t lblk, uint64_t pblk,
		      uint64_t len, uint64_t eofb)
{
	int rc = 0;

	while (!rc && len) {
		bool un = lblk >= eofb;
		uint64_t n = un ? UNINIT_MAX : INIT_MAX;

		if (n > len)
			n = len;
		if (!un && lblk + n > eofb)
			n = eofb - lblk;
		rc = insert(h, lblk, pblk, (uint32_t)n, un);
		lblk += n;
		pblk += n;
		len -= n;
	}
	return rc;
}

/* ---- map --------------------------------------------------------- */

struct out {
	struct cvb_extent *ext;
	unsigned max, n;
};

/* Append a byte range; false when ext is full. */
static bool put(struct out *o, uint64_t off, uint64_t len, uint64_t phys)
{
	struct cvb_extent *l = o->n ? &o->ext[o->n - 1] : NULL;

	if (l && l->off + l->len == off &&
	    ((!l->phys && !phys) || (l->phys && l->phys + l->len == phys))) {
		l->len += len;
		return true;
	}
	if (o->n == o->max)
		return false;
	o->ext[o->n++] = (struct cvb_extent){ off, len, phys };
	return true;
}

static int map_walk(struct cvb_meta *m, ext2_extent_handle_t h,
		    const struct ext2_inode_large *in, uint64_t off,
		    uint64_t end, struct out *o)
{
	uint64_t bs = bs_of(m), eofb = eof_blk(m, in), cur = off;
	struct ext2fs_extent e;

	while (cur < end) {
		uint64_t lb = cur / bs, s, t;
		int rc = seek(h, lb, &e);

		if (rc < 0)
			return rc;
		if (rc || e.e_lblk * bs >= end)
			return put(o, cur, end - cur, 0), 0;
		if (e.e_lblk > lb) { /* a hole first */
			if (!put(o, cur, e.e_lblk * bs - cur, 0))
				return 0;
			cur = e.e_lblk * bs;
		}
		s = cur;
		t = (e.e_lblk + e.e_len) * bs < end ? (e.e_lblk + e.e_len) * bs
						    : end;
		/* unwritten before the end of file: not ours, a hole */
		if (is_uninit(&e) && s < eofb * bs) {
			t = t < eofb * bs ? t : eofb * bs;
			if (!put(o, s, t - s, 0))
				return 0;
		} else if (!put(o, s, t - s,
				e.e_pblk * bs + (s - e.e_lblk * bs))) {
			return 0;
		}
		cur = t;
	}
	return 0;
}

int cvb_meta_map(struct cvb_meta *m, uint64_t ino, uint64_t off, uint64_t len,
		 struct cvb_extent *ext, unsigned max, unsigned *n,
		 uint64_t *gen)
{
	struct ext2_inode_large in;
	ext2_extent_handle_t h;
	struct out o = { ext, max, 0 };
	uint64_t lim = LBLK_END * (m->fs ? bs_of(m) : 4096);
	int rc = cvb_read_inode(m, ino, &in);

	if (rc)
		return rc;
	if (!max || off >= lim)
		return -EINVAL;
	if (len > lim - off)
		len = lim - off;
	if ((rc = cvb_err(ext2fs_extent_open2(m->fs, (ext2_ino_t)ino,
					      (struct ext2_inode *)&in, &h))))
		return rc;
	if (!LINUX_S_ISREG(in.i_mode) || !(in.i_flags & EXT4_EXTENTS_FL))
		rc = LINUX_S_ISDIR(in.i_mode) ? -EISDIR : -EINVAL;
	else
		rc = map_walk(m, h, &in, off, off + len, &o);
	ext2fs_extent_free(h);
	*n = o.n;
	*gen = cvb_gen(m, ino);
	return rc;
}

/* ---- conversion of unwritten extents ----------------------------- */

/* The extent before e (current) continues e physically as an
 * initialised one with room for k more blocks: shrink e first, then grow
 * that one (never two extents over one block, or seek finds the wrong
 * one).  *done false: not mergeable, nothing changed, e current. */
static int convert_merge(ext2_extent_handle_t h, struct ext2fs_extent *e,
			 uint64_t k, bool *done)
{
	struct ext2fs_extent p, cur = *e, tmp;
	errcode_t r = ext2fs_extent_get(h, EXT2_EXTENT_PREV_LEAF, &p);
	int rc;

	*done = false;
	if (r && r != EXT2_ET_EXTENT_NO_PREV)
		return cvb_err(r);
	if (r || is_uninit(&p) || p.e_lblk + p.e_len != e->e_lblk ||
	    p.e_pblk + p.e_len != e->e_pblk || p.e_len + k > INIT_MAX)
		return seek(h, cur.e_lblk, e) ? -EUCLEAN : 0;
	if (seek(h, cur.e_lblk, e) || e->e_lblk != cur.e_lblk)
		return -EUCLEAN;
	if (k == e->e_len) {
		r = ext2fs_extent_delete(h, 0);
	} else {
		e->e_lblk += k;
		e->e_pblk += k;
		e->e_len -= (uint32_t)k;
		r = ext2fs_extent_replace(h, 0, e);
	}
	if (r || (rc = fix(h)))
		return r ? cvb_err(r) : rc;
	if (seek(h, p.e_lblk, &tmp) || tmp.e_lblk != p.e_lblk)
		return -EUCLEAN;
	p.e_len += (uint32_t)k;
	if ((r = ext2fs_extent_replace(h, 0, &p)))
		return cvb_err(r);
	*done = true;
	return fix(h);
}

/* Split e (current) into [e.lblk, s) as it is, [s, t) with flags fl and
 * [t, end) as it is. */
static int split3(ext2_extent_handle_t h, struct ext2fs_extent e, uint64_t s,
		  uint64_t t, int fl)
{
	uint64_t end = e.e_lblk + e.e_len;
	struct ext2fs_extent a = e, b = e, c = e;
	errcode_t r = 0;
	int rc = 0;

	a.e_len = (uint32_t)(s - e.e_lblk);
	b.e_lblk = s, b.e_pblk = e.e_pblk + (s - e.e_lblk);
	b.e_len = (uint32_t)(t - s), b.e_flags = fl;
	c.e_lblk = t, c.e_pblk = e.e_pblk + (t - e.e_lblk);
	c.e_len = (uint32_t)(end - t);
	r = ext2fs_extent_replace(h, 0, a.e_len ? &a : &b);
	if (!r && a.e_len)
		r = ext2fs_extent_insert(h, EXT2_EXTENT_INSERT_AFTER, &b);
	if (!r && c.e_len)
		r = ext2fs_extent_insert(h, EXT2_EXTENT_INSERT_AFTER, &c);
	if (!r)
		rc = fix(h);
	return r ? cvb_err(r) : rc;
}

/* Unwritten extents in [from, to) become initialised (zeroed first on
 * the LUN when zero: ones the engine did not make). */
static int convert(struct cvb_meta *m, ext2_extent_handle_t h, uint64_t from,
		   uint64_t to, bool zero)
{
	struct ext2fs_extent e;
	bool done;
	int rc = 0;

	while (!rc && from < to) {
		uint64_t s, t;

		if ((rc = seek(h, from, &e)))
			return rc < 0 ? rc : 0;
		if (e.e_lblk >= to)
			return 0;
		s = e.e_lblk > from ? e.e_lblk : from;
		t = e.e_lblk + e.e_len < to ? e.e_lblk + e.e_len : to;
		from = t;
		if (!is_uninit(&e))
			continue;
		if (zero &&
		    (rc = cvb_zero_dev(m, (e.e_pblk + s - e.e_lblk) * bs_of(m),
				       (t - s) * bs_of(m))))
			return rc;
		if (s == e.e_lblk) {
			if ((rc = convert_merge(h, &e, t - s, &done)) || done)
				continue;
		}
		rc = split3(h, e, s, t, 0);
	}
	return rc;
}

int cvb_size_grew(struct cvb_meta *m, uint64_t ino, struct ext2_inode_large *in,
		  uint64_t oldsize)
{
	ext2_extent_handle_t h;
	uint64_t from = (oldsize + bs_of(m) - 1) / bs_of(m);
	int rc = open_h(m, ino, in, &h);

	if (rc)
		return rc;
	rc = convert(m, h, from, eof_blk(m, in), false);
	ext2fs_extent_free(h);
	return rc;
}

/* ---- allocation -------------------------------------------------- */

/* Blocks of holes in [from, to). */
static int count_holes(ext2_extent_handle_t h, uint64_t from, uint64_t to,
		       uint64_t *holes)
{
	struct ext2fs_extent e;
	int rc;

	*holes = 0;
	while (from < to) {
		if ((rc = seek(h, from, &e)) < 0)
			return rc;
		if (rc || e.e_lblk >= to) {
			*holes += to - from;
			return 0;
		}
		if (e.e_lblk > from)
			*holes += e.e_lblk - from;
		from = e.e_lblk + e.e_len;
	}
	return 0;
}

/*
 * The free run of the block bitmap that starts first in [from, last],
 * as [*s, *e), *e bounded by cap (a scan needs no more); 1 when none.
 */
static int free_run(ext2_filsys fs, blk64_t from, blk64_t last, blk64_t cap,
		    blk64_t *s, blk64_t *e)
{
	errcode_t r;

	if (from > last)
		return 1;
	r = ext2fs_find_first_zero_block_bitmap2(fs->block_map, from, last, s);
	if (r == ENOENT)
		return 1;
	if (r)
		return cvb_err(r);
	if (cap > last - *s)
		cap = last - *s;
	r = ext2fs_find_first_set_block_bitmap2(fs->block_map, *s, *s + cap, e);
	if (r == ENOENT) {
		*e = *s + cap + 1;
		return 0;
	}
	return cvb_err(r);
}

/* The first free run of at least want blocks in [lo, hi] (*n = want):
 * 0, 1 when there is none, or -errno.  Each free run is looked at once. */
static int long_run(ext2_filsys fs, blk64_t lo, blk64_t hi, blk64_t want,
		    blk64_t *p)
{
	blk64_t s, e;
	int rc;

	while (lo <= hi) {
		if ((rc = free_run(fs, lo, hi, want - 1, &s, &e)))
			return rc;
		if (e - s >= want) {
			*p = s;
			return 0;
		}
		lo = e; /* a block in use, or past hi */
	}
	return 1;
}

/*
 * Where the next piece of a hole goes: *p, and *n blocks (at most
 * want).  One physical run of want blocks when the volume has one, the
 * first after goal, wrapping once; else (and from then on for this
 * hole, *long_ok false: no run that long exists) the first free run
 * after goal whatever its length.  -ENOSPC when the bitmap has no free
 * block.
 *
 * Not ext2fs_new_range with EXT2_NEWRANGE_MIN_LENGTH: in libext2fs
 * 1.47.0 it searches for ever when no free run is long enough and the
 * volume's last blocks are in use (wrapping to the first block never
 * counts as having wrapped), which a large fallocate on a volume that
 * is filling up meets at once.  Here every free run is looked at at most
 * once per hole, then the pieces are taken in order.
 */
static int find_run(struct cvb_meta *m, blk64_t goal, blk64_t want,
		    bool *long_ok, blk64_t *p, blk64_t *n)
{
	ext2_filsys fs = m->fs;
	blk64_t first = fs->super->s_first_data_block;
	blk64_t last = ext2fs_blocks_count(fs->super) - 1, s, e;
	int rc;

	if (goal < first || goal > last)
		goal = first;
	if (*long_ok) {
		rc = long_run(fs, goal, last, want, p);
		if (rc == 1 && goal > first)
			rc = long_run(fs, first, goal - 1, want, p);
		if (rc <= 0) {
			*n = want;
			return rc;
		}
		*long_ok = false;
	}
	rc = free_run(fs, goal, last, want - 1, &s, &e);
	if (rc == 1 && goal > first)
		rc = free_run(fs, first, goal - 1, want - 1, &s, &e);
	if (rc)
		return rc < 0 ? rc : -ENOSPC;
	*p = s;
	*n = e - s;
	return 0;
}

static int fill_hole(struct cvb_meta *m, ext2_extent_handle_t h, uint64_t ino,
		     struct ext2_inode_large *in, uint64_t hs, uint64_t he)
{
	uint64_t bs = bs_of(m), eofb = eof_blk(m, in);
	blk64_t goal = ext2fs_find_inode_goal(m->fs, (ext2_ino_t)ino,
					      (struct ext2_inode *)in, hs);
	bool long_ok = true;
	int rc = 0;

	while (!rc && hs < he) {
		blk64_t p, n, want = he - hs < INIT_MAX ? he - hs : INIT_MAX;

		if ((rc = find_run(m, goal, want, &long_ok, &p, &n)))
			return rc;
		cvb_range_stats(m, p, (uint32_t)n, +1, false);
		rc = cvb_err(ext2fs_iblk_add_blocks(
			m->fs, (struct ext2_inode *)in, n));
		if (!rc)
			rc = cvb_zero_dev(m, p * bs, n * bs);
		if (!rc)
			rc = insert_run(h, hs, p, n, eofb);
		hs += n;
		goal = p + n;
	}
	return rc;
}

/* Allocate every hole of blocks [from, to); nothing when not enough
 * space (-ENOSPC). */
static int alloc_blocks(struct cvb_meta *m, uint64_t ino,
			struct ext2_inode_large *in, uint64_t from, uint64_t to)
{
	ext2_extent_handle_t h;
	struct ext2fs_extent e;
	uint64_t need, eofb = eof_blk(m, in), cur = from;
	int rc = open_h(m, ino, in, &h);

	if (rc)
		return rc;
	rc = count_holes(h, from, to, &need);
	/* room for the extent tree to grow too */
	if (!rc && need + 16 > ext2fs_free_blocks_count(m->fs->super))
		rc = -ENOSPC;
	if (!rc) /* unwritten extents inside the file: not ours */
		rc = convert(m, h, from, to < eofb ? to : eofb, true);
	while (!rc && cur < to) {
		uint64_t he = to;

		if ((rc = seek(h, cur, &e)) < 0)
			break;
		if (!rc && e.e_lblk <= cur) {
			cur = e.e_lblk + e.e_len;
			continue;
		}
		if (!rc && e.e_lblk < to)
			he = e.e_lblk;
		rc = fill_hole(m, h, ino, in, cur, he);
		cur = he;
	}
	ext2fs_extent_free(h);
	return rc;
}

static int granules(struct cvb_meta *m, uint64_t off, uint64_t len,
		    uint64_t *from, uint64_t *to)
{
	uint64_t g = CVB_GRANULE, end = off + len, lim = LBLK_END * bs_of(m);

	if (!len || end < off || end > lim)
		return len ? -EFBIG : -EINVAL;
	off = off / g * g;
	end = (end + g - 1) / g * g;
	if (end > lim)
		end = lim;
	*from = off / bs_of(m);
	*to = end / bs_of(m);
	return 0;
}

int cvb_meta_alloc(struct cvb_meta *m, uint64_t ino, uint64_t off, uint64_t len,
		   struct cvb_extent *ext, unsigned max, unsigned *n,
		   uint64_t *gen)
{
	struct ext2_inode_large in;
	uint64_t from, to;
	int rc = m->data_freed ? cvb_meta_commit(m) : 0;

	if (rc || (rc = cvb_op_begin(m)))
		return rc;
	rc = cvb_read_inode(m, ino, &in);
	if (!rc)
		rc = granules(m, off, len, &from, &to);
	if (!rc)
		rc = alloc_blocks(m, ino, &in, from, to);
	if (!rc)
		rc = cvb_write_inode(m, ino, &in);
	rc = cvb_op_end(m, rc);
	if (!rc)
		rc = cvb_meta_commit(m);
	return rc ? rc : cvb_meta_map(m, ino, off, len, ext, max, n, gen);
}

/* ---- freeing ----------------------------------------------------- */

/* Free the blocks of extent e (current) in [s, t). */
static int cut(struct cvb_meta *m, ext2_extent_handle_t h,
	       struct ext2_inode_large *in, struct ext2fs_extent e, uint64_t s,
	       uint64_t t)
{
	uint64_t end = e.e_lblk + e.e_len;
	errcode_t r;
	int rc;

	if (s == e.e_lblk && t == end) {
		r = ext2fs_extent_delete(h, 0);
		rc = r ? cvb_err(r) : fix(h);
	} else if (s == e.e_lblk || t == end) {
		struct ext2fs_extent k = e;

		if (s == e.e_lblk) {
			k.e_lblk = t;
			k.e_pblk += t - e.e_lblk;
		}
		k.e_len = (uint32_t)(e.e_len - (t - s));
		r = ext2fs_extent_replace(h, 0, &k);
		rc = r ? cvb_err(r) : fix(h);
	} else {
		struct ext2fs_extent a = e, c = e;

		a.e_len = (uint32_t)(s - e.e_lblk);
		c.e_lblk = t, c.e_pblk += t - e.e_lblk;
		c.e_len = (uint32_t)(end - t);
		r = ext2fs_extent_replace(h, 0, &a);
		if (!r)
			r = ext2fs_extent_insert(h, EXT2_EXTENT_INSERT_AFTER,
						 &c);
		rc = r ? cvb_err(r) : fix(h);
	}
	if (rc)
		return rc;
	cvb_range_stats(m, e.e_pblk + (s - e.e_lblk), (uint32_t)(t - s), -1,
			false);
	return cvb_err(
		ext2fs_iblk_sub_blocks(m->fs, (struct ext2_inode *)in, t - s));
}

int cvb_punch_blocks(struct cvb_meta *m, uint64_t ino,
		     struct ext2_inode_large *in, uint64_t lblk, uint64_t end)
{
	ext2_extent_handle_t h = NULL;
	struct ext2fs_extent e;
	int rc = open_h(m, ino, in, &h);

	while (!rc && lblk < end) {
		uint64_t s, t;

		if ((rc = seek(h, lblk, &e)))
			break;
		if (e.e_lblk >= end)
			break;
		s = e.e_lblk > lblk ? e.e_lblk : lblk;
		t = e.e_lblk + e.e_len < end ? e.e_lblk + e.e_len : end;
		rc = cut(m, h, in, e, s, t);
		lblk = t;
	}
	if (h)
		ext2fs_extent_free(h);
	if (rc > 0)
		rc = 0;
	if (!rc)
		cvb_gen_bump(m, ino);
	return rc;
}

/* Whether the file has any block in [from, to). */
static int has_blocks(struct cvb_meta *m, uint64_t ino,
		      struct ext2_inode_large *in, uint64_t from, uint64_t to)
{
	ext2_extent_handle_t h;
	uint64_t holes;
	int rc = open_h(m, ino, in, &h);

	if (rc)
		return rc;
	rc = count_holes(h, from, to, &holes);
	ext2fs_extent_free(h);
	return rc ? rc : holes < to - from;
}

/* Zero [off, off+len) of the file on the LUN where it has blocks. */
static int zero_file(struct cvb_meta *m, uint64_t ino, uint64_t off,
		     uint64_t len)
{
	struct cvb_extent ext[32];
	unsigned n;
	uint64_t gen;
	int rc = 0;

	while (!rc && len) {
		rc = cvb_meta_map(m, ino, off, len, ext, 32, &n, &gen);
		for (unsigned i = 0; !rc && i < n; i++) {
			if (ext[i].phys)
				rc = cvb_zero_dev(m, ext[i].phys, ext[i].len);
			off += ext[i].len;
			len -= ext[i].len;
		}
		if (!n)
			break;
	}
	return rc;
}

/* Free the blocks of [off, off+len) (whole ones), zero the partial
 * edges; the recall first when anything is freed. */
static int punch_bytes(struct cvb_meta *m, uint64_t ino,
		       struct ext2_inode_large *in, uint64_t off, uint64_t len)
{
	uint64_t bs = bs_of(m), b0 = (off + bs - 1) / bs, b1 = (off + len) / bs;
	int rc = 0;

	if (b0 < b1 && (rc = has_blocks(m, ino, in, b0, b1)) > 0) {
		if (!(rc = cvb_recall(m, ino)))
			rc = cvb_punch_blocks(m, ino, in, b0, b1);
	}
	if (rc < 0)
		return rc;
	if (b0 >= b1) /* within one block */
		return zero_file(m, ino, off, len);
	rc = zero_file(m, ino, off, b0 * bs - off);
	return rc ? rc : zero_file(m, ino, b1 * bs, off + len - b1 * bs);
}

int cvb_truncate(struct cvb_meta *m, uint64_t ino, struct ext2_inode_large *in,
		 uint64_t oldsize)
{
	uint64_t size = EXT2_I_SIZE(in), bs = bs_of(m);
	uint64_t eofb = eof_blk(m, in);
	int rc = has_blocks(m, ino, in, eofb, LBLK_END);

	(void)oldsize;
	if (rc > 0 && !(rc = cvb_recall(m, ino)))
		rc = cvb_punch_blocks(m, ino, in, eofb, ~0ULL);
	if (rc < 0)
		return rc;
	/* the rest of the last block reads as zeroes if the file grows */
	return size % bs ? zero_file(m, ino, size, bs - size % bs) : 0;
}

/* ---- fallocate, set_written -------------------------------------- */

/*
 * A grow that is not the owner's writes turns the unwritten blocks in
 * [from, to) (past the old end of file, mapped as allocated) into holes
 * of the map: every cached map of the file, and every write under way
 * through one, is recalled first, or the owner's next write there would
 * go to the LUN through the stale map, skip the allocation, and be lost
 * when the blocks are later zeroed and converted (cvb_meta_alloc,
 * fallocate).  0 or -errno (the recall refused).
 */
static int grow_recall(struct cvb_meta *m, uint64_t ino,
		       struct ext2_inode_large *in, uint64_t from, uint64_t to)
{
	int rc = 0;

	/* block-mapped files (not made by csvfs) have no unwritten blocks */
	if (from < to && (in->i_flags & EXT4_EXTENTS_FL))
		rc = has_blocks(m, ino, in, from, to);
	if (rc > 0 && !(rc = cvb_recall(m, ino)))
		cvb_gen_bump(m, ino);
	return rc < 0 ? rc : 0;
}

/*
 * Grow the size.  written (set_written): the owner wrote the blocks up to
 * it, so unwritten extents below the new end become initialised.
 * Otherwise (truncate up, fallocate) they stay unwritten and read as
 * zeroes whatever the LUN holds (an owner may have died between its
 * write past the end and its set_written), the maps holding them as
 * allocated are recalled first (grow_recall), and the rest of the old
 * last block is zeroed on the LUN.
 */
int cvb_grow(struct cvb_meta *m, uint64_t ino, struct ext2_inode_large *in,
	     uint64_t size, bool written)
{
	uint64_t old = EXT2_I_SIZE(in), bs = bs_of(m);
	errcode_t e;
	int rc = 0;

	if (size <= old)
		return 0;
	if (!written && (rc = grow_recall(m, ino, in, eof_blk(m, in),
					  (size + bs - 1) / bs)))
		return rc;
	if (!written && old % bs)
		rc = zero_file(m, ino, old, bs - old % bs);
	if (!rc &&
	    (e = ext2fs_inode_size_set(m->fs, (struct ext2_inode *)in, size)))
		rc = cvb_err(e);
	if (!rc && written)
		rc = cvb_size_grew(m, ino, in, old);
	return rc;
}

static int do_fallocate(struct cvb_meta *m, uint64_t ino, int mode,
			uint64_t off, uint64_t len)
{
	struct ext2_inode_large in;
	struct timespec now;
	uint64_t from, to;
	int rc = cvb_read_inode(m, ino, &in);

	if (!rc)
		rc = granules(m, off, len, &from, &to);
	if (rc)
		return rc;
	if (!LINUX_S_ISREG(in.i_mode))
		return LINUX_S_ISDIR(in.i_mode) ? -EISDIR : -ENODEV;
	if (mode & FALLOC_FL_PUNCH_HOLE) {
		rc = punch_bytes(m, ino, &in, off, len);
	} else {
		if (!(mode & FALLOC_FL_KEEP_SIZE))
			rc = cvb_grow(m, ino, &in, off + len, false);
		if (!rc)
			rc = alloc_blocks(m, ino, &in, from, to);
		if (!rc && (mode & FALLOC_FL_ZERO_RANGE))
			rc = zero_file(m, ino, off, len);
	}
	if (rc)
		return rc;
	cvb_now(&now);
	cvb_set_time(&in, CVB_T_C | (mode ? CVB_T_M : 0), &now);
	return cvb_write_inode(m, ino, &in);
}

int cvb_meta_fallocate(struct cvb_meta *m, uint64_t ino, int mode, uint64_t off,
		       uint64_t len)
{
	int rc;

	switch (mode) {
	case 0:
	case FALLOC_FL_KEEP_SIZE:
	case FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE:
	case FALLOC_FL_ZERO_RANGE:
	case FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE:
		break;
	default:
		return -EOPNOTSUPP;
	}
	/* blocks freed and not yet committed are not zeroed or reused */
	if (!(mode & FALLOC_FL_PUNCH_HOLE) && m->data_freed &&
	    (rc = cvb_meta_commit(m)))
		return rc;
	if ((rc = cvb_op_begin(m)))
		return rc;
	rc = cvb_op_end(m, do_fallocate(m, ino, mode, off, len));
	/* new blocks are committed before anyone writes into them */
	return rc ? rc : cvb_meta_commit(m);
}

static int do_written(struct cvb_meta *m, uint64_t ino, uint64_t size,
		      const struct timespec *mtime)
{
	struct ext2_inode_large in;
	struct timespec now;
	int rc = cvb_read_inode(m, ino, &in);

	if (!rc && !LINUX_S_ISREG(in.i_mode))
		rc = -EINVAL;
	if (!rc && size > LBLK_END * bs_of(m))
		rc = -EFBIG;
	if (!rc)
		rc = cvb_grow(m, ino, &in, size, true);
	if (rc)
		return rc;
	cvb_now(&now);
	cvb_set_time(&in, CVB_T_C, &now);
	cvb_set_time(&in, CVB_T_M, mtime ? mtime : &now);
	return cvb_write_inode(m, ino, &in);
}

int cvb_meta_set_written(struct cvb_meta *m, uint64_t ino, uint64_t size,
			 const struct timespec *mtime)
{
	int rc = cvb_op_begin(m);

	return rc ? rc : cvb_op_end(m, do_written(m, ino, size, mtime));
}

int cvb_meta_check_extents(struct cvb_meta *m, uint64_t ino)
{
	struct ext2_inode_large in;
	ext2_extent_handle_t h;
	struct ext2fs_extent e;
	uint64_t end = 0;
	errcode_t r;
	int rc = cvb_read_inode(m, ino, &in);

	if (rc || !LINUX_S_ISREG(in.i_mode))
		return rc;
	if ((rc = cvb_err(ext2fs_extent_open2(m->fs, (ext2_ino_t)ino,
					      (struct ext2_inode *)&in, &h))))
		return rc;
	for (r = ext2fs_extent_get(h, EXT2_EXTENT_ROOT, &e); !r;
	     r = ext2fs_extent_get(h, EXT2_EXTENT_NEXT_LEAF, &e)) {
		if (!(e.e_flags & EXT2_EXTENT_FLAGS_LEAF))
			continue;
		if (getenv("CVB_DEBUG"))
			fprintf(stderr, "  ext %llu+%u -> %llu%s\n",
				(unsigned long long)e.e_lblk, e.e_len,
				(unsigned long long)e.e_pblk,
				is_uninit(&e) ? " u" : "");
		if (e.e_lblk < end || !e.e_len) {
			rc = -EUCLEAN;
			break;
		}
		end = e.e_lblk + e.e_len;
	}
	ext2fs_extent_free(h);
	return rc;
}
