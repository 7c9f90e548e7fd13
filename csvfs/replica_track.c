// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * replica_track.c - change tracking of one replicated file: the dirty
 * and frozen granule bitmaps, the hot extents the activity log names,
 * and the log's on-volume records (replica_track.h).
 *
 * Why the log can be rewritten while writes go on (rt_point_done): the
 * extents still needed are those of dirty | frozen, a subset of the hot
 * set (every granule was marked inside a hot extent).  The hot set is
 * swapped to that subset first; a write into an extent thus cooled goes
 * to the slow path and waits on al_lock until the new log is in place,
 * then appends to it.  Writes into extents still hot are covered by the
 * old log (a superset) until the atomic replacement, and by the new one
 * after it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "replica_track.h"

struct rt_file {
	const struct rt_ops *ops; /* immutable */
	void *arg;		  /* immutable */
	pthread_mutex_t al_lock;  /* serialises log I/O; before lock */
	pthread_mutex_t cbw_lock; /* copy-before-write vs ship; before lock */
	pthread_mutex_t lock;
	uint64_t epoch;	       /* lock: ownership loaded, or NONE */
	struct rt_bits dirty;  /* lock: granules changed since freeze */
	struct rt_bits frozen; /* lock: granules of the point to ship */
	struct rt_bits hot;    /* lock: extents the log names */
	uint64_t nfrozen;      /* lock: bits set in frozen */
	uint64_t al_writes;    /* lock */
	uint64_t cbw;	       /* lock */
};

/* ---- bit sets ---- */

void rt_bits_free(struct rt_bits *b)
{
	free(b->w);
	b->w = NULL;
	b->nwords = 0;
}

static int bits_grow(struct rt_bits *b, uint64_t bit)
{
	size_t need = (size_t)(bit / 64) + 1, n;
	uint64_t *w;

	if (need <= b->nwords)
		return 0;
	n = b->nwords ? b->nwords : 16;
	while (n < need)
		n *= 2;
	w = realloc(b->w, n * sizeof(*w));
	if (!w)
		return -ENOMEM;
	memset(w + b->nwords, 0, (n - b->nwords) * sizeof(*w));
	b->w = w;
	b->nwords = n;
	return 0;
}

static uint64_t mask_of(uint64_t lo, uint64_t hi)
{
	/* bits lo..hi of one word, 0 <= lo <= hi <= 63 */
	uint64_t m = hi == 63 ? ~(uint64_t)0 : (((uint64_t)1 << (hi + 1)) - 1);

	return m & ~(((uint64_t)1 << lo) - 1);
}

int rt_bits_set_range(struct rt_bits *b, uint64_t first, uint64_t last)
{
	uint64_t wi;
	int rc = bits_grow(b, last);

	if (rc)
		return rc;
	for (wi = first / 64; wi <= last / 64; wi++) {
		uint64_t lo = wi == first / 64 ? first % 64 : 0;
		uint64_t hi = wi == last / 64 ? last % 64 : 63;

		b->w[wi] |= mask_of(lo, hi);
	}
	return 0;
}

bool rt_bits_test(const struct rt_bits *b, uint64_t bit)
{
	return bit / 64 < b->nwords && (b->w[bit / 64] >> (bit % 64) & 1);
}

bool rt_bits_any(const struct rt_bits *b, uint64_t first, uint64_t last)
{
	uint64_t wi;

	for (wi = first / 64; wi <= last / 64 && wi < b->nwords; wi++) {
		uint64_t lo = wi == first / 64 ? first % 64 : 0;
		uint64_t hi = wi == last / 64 ? last % 64 : 63;

		if (b->w[wi] & mask_of(lo, hi))
			return true;
	}
	return false;
}

static bool bits_all(const struct rt_bits *b, uint64_t first, uint64_t last)
{
	uint64_t wi;

	if (last / 64 >= b->nwords)
		return false;
	for (wi = first / 64; wi <= last / 64; wi++) {
		uint64_t lo = wi == first / 64 ? first % 64 : 0;
		uint64_t hi = wi == last / 64 ? last % 64 : 63;
		uint64_t m = mask_of(lo, hi);

		if ((b->w[wi] & m) != m)
			return false;
	}
	return true;
}

void rt_bits_clear(struct rt_bits *b, uint64_t bit)
{
	if (bit / 64 < b->nwords)
		b->w[bit / 64] &= ~((uint64_t)1 << (bit % 64));
}

uint64_t rt_bits_count(const struct rt_bits *b)
{
	uint64_t n = 0;
	size_t i;

	for (i = 0; i < b->nwords; i++)
		n += (uint64_t)__builtin_popcountll(b->w[i]);
	return n;
}

uint64_t rt_bits_next(const struct rt_bits *b, uint64_t from)
{
	uint64_t wi = from / 64;
	uint64_t w;

	if (wi >= b->nwords)
		return UINT64_MAX;
	w = b->w[wi] & ~(((uint64_t)1 << (from % 64)) - 1);
	for (;;) {
		if (w)
			return wi * 64 + (uint64_t)__builtin_ctzll(w);
		if (++wi >= b->nwords)
			return UINT64_MAX;
		w = b->w[wi];
	}
}

int rt_bits_or(struct rt_bits *dst, const struct rt_bits *src)
{
	size_t i;
	int rc;

	if (!src->nwords)
		return 0;
	rc = bits_grow(dst, (uint64_t)src->nwords * 64 - 1);
	if (rc)
		return rc;
	for (i = 0; i < src->nwords; i++)
		dst->w[i] |= src->w[i];
	return 0;
}

static int bits_copy(const struct rt_bits *src, struct rt_bits *out)
{
	memset(out, 0, sizeof(*out));
	return rt_bits_or(out, src);
}

/* ---- the tracker ---- */

int rt_new(const struct rt_ops *ops, void *arg, struct rt_file **out)
{
	struct rt_file *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->ops = ops;
	t->arg = arg;
	t->epoch = RT_EPOCH_NONE;
	pthread_mutex_init(&t->al_lock, NULL);
	pthread_mutex_init(&t->cbw_lock, NULL);
	pthread_mutex_init(&t->lock, NULL);
	*out = t;
	return 0;
}

void rt_free(struct rt_file *t)
{
	if (!t)
		return;
	rt_bits_free(&t->dirty);
	rt_bits_free(&t->frozen);
	rt_bits_free(&t->hot);
	pthread_mutex_destroy(&t->lock);
	pthread_mutex_destroy(&t->cbw_lock);
	pthread_mutex_destroy(&t->al_lock);
	free(t);
}

/* The extents that hold granules of dirty | frozen (t->lock held):
 * a malloc'd list in *exts. */
static int needed_extents(struct rt_file *t, uint64_t **exts, size_t *n)
{
	struct rt_bits both;
	uint64_t g, e = 0, *v = NULL;
	size_t cnt = 0, cap = 0;
	int rc = bits_copy(&t->dirty, &both);

	if (!rc)
		rc = rt_bits_or(&both, &t->frozen);
	for (g = rt_bits_next(&both, 0); !rc && g != UINT64_MAX;
	     g = rt_bits_next(&both, (e + 1) * RT_GRANULES_PER_EXTENT)) {
		e = g / RT_GRANULES_PER_EXTENT;
		if (cnt == cap) {
			uint64_t *nv;

			cap = cap ? cap * 2 : 64;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				rc = -ENOMEM;
				break;
			}
			v = nv;
		}
		v[cnt++] = e;
	}
	rt_bits_free(&both);
	if (rc) {
		free(v);
		return rc;
	}
	*exts = v;
	*n = cnt;
	return 0;
}

static int hot_of(const uint64_t *exts, size_t n, struct rt_bits *hot)
{
	size_t i;
	int rc = 0;

	memset(hot, 0, sizeof(*hot));
	for (i = 0; i < n && !rc; i++)
		rc = rt_bits_set_range(hot, exts[i], exts[i]);
	return rc;
}

/*
 * Rewrite the log to name the extents of dirty | frozen, for epoch
 * (al_lock held, t->lock not).  The hot set shrinks before the new log
 * is durable: see the file header.
 */
static int rewrite_log(struct rt_file *t, uint64_t epoch)
{
	struct rt_bits hot;
	uint64_t *exts = NULL;
	size_t n = 0;
	int rc;

	pthread_mutex_lock(&t->lock);
	rc = needed_extents(t, &exts, &n);
	if (!rc)
		rc = hot_of(exts, n, &hot);
	if (!rc) {
		rt_bits_free(&t->hot);
		t->hot = hot;
		t->al_writes++;
	}
	pthread_mutex_unlock(&t->lock);
	if (!rc)
		rc = t->ops->al_rewrite(t->arg, epoch, exts, n);
	free(exts);
	return rc;
}

/* A new ownership (al_lock held): what the previous owners left, then a
 * fresh log of this epoch naming all of it. */
static int load(struct rt_file *t, uint64_t epoch)
{
	struct rt_bits add = { 0 };
	int rc = t->ops->load(t->arg, &add);

	if (!rc) {
		pthread_mutex_lock(&t->lock);
		rc = rt_bits_or(&t->dirty, &add);
		pthread_mutex_unlock(&t->lock);
	}
	rt_bits_free(&add);
	if (!rc)
		rc = rewrite_log(t, epoch);
	if (!rc) {
		pthread_mutex_lock(&t->lock);
		t->epoch = epoch;
		pthread_mutex_unlock(&t->lock);
	}
	return rc;
}

/* Record the cold extents of e0..e1 in the log (al_lock held). */
static int heat(struct rt_file *t, uint64_t e0, uint64_t e1)
{
	uint64_t e, *cold = NULL;
	size_t n = 0;
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	for (e = e0; e <= e1; e++) {
		if (rt_bits_test(&t->hot, e))
			continue;
		if (!cold) {
			cold = malloc((size_t)(e1 - e + 1) * sizeof(*cold));
			if (!cold) {
				rc = -ENOMEM;
				break;
			}
		}
		cold[n++] = e;
	}
	pthread_mutex_unlock(&t->lock);
	if (!rc && n)
		rc = t->ops->al_append(t->arg, cold, n);
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; !rc && i < n; i++)
		rc = rt_bits_set_range(&t->hot, cold[i], cold[i]);
	if (n)
		t->al_writes++;
	pthread_mutex_unlock(&t->lock);
	free(cold);
	return rc;
}

/* Mark g0..g1 (t->lock held): RT_OK, RT_CBW or -ENOMEM. */
static int mark(struct rt_file *t, uint64_t g0, uint64_t g1)
{
	int rc = rt_bits_set_range(&t->dirty, g0, g1);

	if (rc)
		return rc;
	return t->nfrozen && rt_bits_any(&t->frozen, g0, g1) ? RT_CBW : RT_OK;
}

/* Mark without the log if every extent is hot under epoch: -EAGAIN if
 * not. */
static int write_fast(struct rt_file *t, uint64_t epoch, uint64_t off,
		      uint64_t len)
{
	uint64_t e0 = off >> RT_EXTENT_SHIFT;
	uint64_t e1 = (off + len - 1) >> RT_EXTENT_SHIFT;
	int rc = -EAGAIN;

	pthread_mutex_lock(&t->lock);
	if (t->epoch == epoch && bits_all(&t->hot, e0, e1))
		rc = mark(t, off >> RT_GRANULE_SHIFT,
			  (off + len - 1) >> RT_GRANULE_SHIFT);
	pthread_mutex_unlock(&t->lock);
	return rc;
}

int rt_write_fast(struct rt_file *t, uint64_t epoch, uint64_t off, uint64_t len)
{
	if (!len)
		return RT_OK;
	if (off >= RT_MAX_BYTES || len > RT_MAX_BYTES - off)
		return -EFBIG;
	return write_fast(t, epoch, off, len);
}

int rt_write(struct rt_file *t, uint64_t epoch, uint64_t off, uint64_t len)
{
	uint64_t g0, g1, e0, e1;
	int rc;

	rc = rt_write_fast(t, epoch, off, len);
	if (rc != -EAGAIN)
		return rc;
	g0 = off >> RT_GRANULE_SHIFT;
	g1 = (off + len - 1) >> RT_GRANULE_SHIFT;
	e0 = off >> RT_EXTENT_SHIFT;
	e1 = (off + len - 1) >> RT_EXTENT_SHIFT;

	pthread_mutex_lock(&t->al_lock);
	rc = 0;
	if (t->epoch != epoch) /* only this thread changes it now */
		rc = load(t, epoch);
	if (!rc)
		rc = heat(t, e0, e1);
	if (!rc) {
		pthread_mutex_lock(&t->lock);
		rc = mark(t, g0, g1);
		pthread_mutex_unlock(&t->lock);
	}
	pthread_mutex_unlock(&t->al_lock);
	return rc;
}

int rt_load(struct rt_file *t, uint64_t epoch)
{
	int rc = 0;

	pthread_mutex_lock(&t->al_lock);
	if (t->epoch != epoch)
		rc = load(t, epoch);
	pthread_mutex_unlock(&t->al_lock);
	return rc;
}

int rt_freeze(struct rt_file *t)
{
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	if (t->nfrozen) {
		rc = -EBUSY;
	} else {
		rt_bits_free(&t->frozen);
		t->frozen = t->dirty;
		memset(&t->dirty, 0, sizeof(t->dirty));
		t->nfrozen = rt_bits_count(&t->frozen);
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

int rt_frozen_copy(struct rt_file *t, struct rt_bits *out)
{
	int rc;

	pthread_mutex_lock(&t->lock);
	rc = bits_copy(&t->frozen, out);
	pthread_mutex_unlock(&t->lock);
	return rc;
}

void rt_cbw_lock(struct rt_file *t)
{
	pthread_mutex_lock(&t->cbw_lock);
}

void rt_cbw_unlock(struct rt_file *t)
{
	pthread_mutex_unlock(&t->cbw_lock);
}

bool rt_claim_frozen(struct rt_file *t, uint64_t g)
{
	bool was;

	pthread_mutex_lock(&t->lock);
	was = rt_bits_test(&t->frozen, g);
	if (was) {
		rt_bits_clear(&t->frozen, g);
		t->nfrozen--;
	}
	pthread_mutex_unlock(&t->lock);
	return was;
}

void rt_count_cbw(struct rt_file *t)
{
	pthread_mutex_lock(&t->lock);
	t->cbw++;
	pthread_mutex_unlock(&t->lock);
}

int rt_point_done(struct rt_file *t, const struct rt_bits *put_back)
{
	uint64_t epoch;
	int rc = 0;

	pthread_mutex_lock(&t->al_lock);
	pthread_mutex_lock(&t->lock);
	if (put_back)
		rc = rt_bits_or(&t->dirty, put_back);
	if (!rc)
		rc = rt_bits_or(&t->dirty, &t->frozen);
	if (!rc) {
		rt_bits_free(&t->frozen);
		t->nfrozen = 0;
	}
	epoch = t->epoch;
	pthread_mutex_unlock(&t->lock);
	if (!rc && epoch != RT_EPOCH_NONE)
		rc = rewrite_log(t, epoch);
	pthread_mutex_unlock(&t->al_lock);
	return rc;
}

int rt_mark_all(struct rt_file *t, uint64_t size)
{
	int rc = 0;

	if (!size)
		return 0;
	if (size > RT_MAX_BYTES)
		return -EFBIG;
	pthread_mutex_lock(&t->lock);
	rc = rt_bits_set_range(&t->dirty, 0, (size - 1) >> RT_GRANULE_SHIFT);
	pthread_mutex_unlock(&t->lock);
	return rc;
}

int rt_handoff_bits(struct rt_file *t, struct rt_bits *out, uint64_t *epoch)
{
	int rc;

	pthread_mutex_lock(&t->lock);
	rc = bits_copy(&t->dirty, out);
	if (!rc)
		rc = rt_bits_or(out, &t->frozen);
	*epoch = t->epoch;
	pthread_mutex_unlock(&t->lock);
	if (rc)
		rt_bits_free(out);
	return rc;
}

void rt_unload(struct rt_file *t)
{
	pthread_mutex_lock(&t->al_lock);
	pthread_mutex_lock(&t->lock);
	t->epoch = RT_EPOCH_NONE;
	rt_bits_free(&t->dirty);
	rt_bits_free(&t->frozen);
	rt_bits_free(&t->hot);
	t->nfrozen = 0;
	pthread_mutex_unlock(&t->lock);
	pthread_mutex_unlock(&t->al_lock);
}

void rt_stats(struct rt_file *t, struct rt_stats *st)
{
	pthread_mutex_lock(&t->lock);
	st->dirty = rt_bits_count(&t->dirty);
	st->frozen = t->nfrozen;
	st->hot = rt_bits_count(&t->hot);
	st->al_writes = t->al_writes;
	st->cbw = t->cbw;
	st->epoch = t->epoch;
	pthread_mutex_unlock(&t->lock);
}

/* ---- on-volume records ---- */

#define RT_AL_MAGIC 0x31524c41u /* "ALR1" */
#define RT_BM_MAGIC 0x314d4252u /* "RBM1" */

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* FNV-1a, 64 bits: detects a torn or stale record, not an attacker. */
static uint64_t check64(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* magic 4, type 4, a 8, b 8, check 8 (of the first 24 bytes) */
void rt_al_encode(const struct rt_al_rec *r, uint8_t out[RT_AL_REC])
{
	put32(out, RT_AL_MAGIC);
	put32(out + 4, r->type);
	put64(out + 8, r->a);
	put64(out + 16, r->b);
	put64(out + 24, check64(out, 24));
}

int rt_al_decode(const uint8_t *in, size_t len, struct rt_al_rec *r)
{
	if (len < RT_AL_REC || get32(in) != RT_AL_MAGIC ||
	    get64(in + 24) != check64(in, 24))
		return -EINVAL;
	r->type = get32(in + 4);
	r->a = get64(in + 8);
	r->b = get64(in + 16);
	if (r->type != RT_AL_HDR && r->type != RT_AL_EXT)
		return -EINVAL;
	return 0;
}

int rt_al_parse(const uint8_t *buf, size_t len, uint64_t *epoch,
		uint64_t *fileid, struct rt_bits *granules)
{
	struct rt_al_rec r;
	size_t off;
	int rc;

	if (rt_al_decode(buf, len, &r) || r.type != RT_AL_HDR)
		return -EINVAL;
	*epoch = r.a;
	*fileid = r.b;
	for (off = RT_AL_REC; off + RT_AL_REC <= len; off += RT_AL_REC) {
		if (rt_al_decode(buf + off, len - off, &r) ||
		    r.type != RT_AL_EXT)
			break; /* torn tail */
		if (r.a >= RT_MAX_BYTES >> RT_EXTENT_SHIFT)
			continue;
		rc = rt_bits_set_range(granules, r.a * RT_GRANULES_PER_EXTENT,
				       (r.a + 1) * RT_GRANULES_PER_EXTENT - 1);
		if (rc)
			return rc;
	}
	return 0;
}

/* magic 4, pad 4, epoch 8, nwords 8, check 8 (of header 24 + words) */
int rt_bm_encode(const struct rt_bits *b, uint64_t epoch, uint8_t **out,
		 size_t *len)
{
	size_t n = b->nwords, sz;
	uint8_t *p;

	while (n && !b->w[n - 1]) /* canonical: no zero words at the end */
		n--;
	sz = RT_BM_HDR + n * 8;
	p = malloc(sz);

	if (!p)
		return -ENOMEM;
	put32(p, RT_BM_MAGIC);
	put32(p + 4, 0);
	put64(p + 8, epoch);
	put64(p + 16, n);
	for (size_t i = 0; i < n; i++)
		put64(p + RT_BM_HDR + i * 8, b->w[i]);
	put64(p + 24, 0);
	put64(p + 24, check64(p, sz));
	*out = p;
	*len = sz;
	return 0;
}

int rt_bm_decode(const uint8_t *in, size_t len, uint64_t *epoch,
		 struct rt_bits *b)
{
	uint64_t n, want;
	uint8_t *tmp;
	int rc;

	if (len < RT_BM_HDR || get32(in) != RT_BM_MAGIC ||
	    get32(in + 4) != 0) /* reserved: 0, so the format is canonical */
		return -EINVAL;
	n = get64(in + 16);
	if (n > (RT_MAX_BYTES >> RT_GRANULE_SHIFT) / 64 ||
	    len != RT_BM_HDR + n * 8 ||
	    (n && !get64(in + RT_BM_HDR + (n - 1) * 8)))
		return -EINVAL;
	want = get64(in + 24);
	tmp = malloc(len);
	if (!tmp)
		return -ENOMEM;
	memcpy(tmp, in, len);
	put64(tmp + 24, 0);
	rc = check64(tmp, len) == want ? 0 : -EINVAL;
	free(tmp);
	if (rc)
		return rc;
	*epoch = get64(in + 8);
	if (n && (rc = bits_grow(b, n * 64 - 1)))
		return rc;
	for (uint64_t i = 0; i < n; i++)
		b->w[i] |= get64(in + RT_BM_HDR + i * 8);
	return 0;
}
