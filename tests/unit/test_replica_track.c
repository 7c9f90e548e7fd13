// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * test_replica_track.c - unit tests of the replica change tracker
 * (csvfs/replica_track.c): granule marking, the activity log written
 * before the first write to a cold extent (and its failure stopping the
 * write), loading what a previous owner left, freeze and
 * copy-before-write claims, the log rewrite after a point, and the
 * on-volume codecs (round trips, torn tails, corruption).
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <pthread.h>

#include "replica_track.h"

/* A fake volume: the log as a list of extents, per the ops. */
struct fake {
	pthread_mutex_t mu; /* the concurrent test's log */
	uint64_t log[4096];
	size_t nlog;
	uint64_t log_epoch;
	int appends, rewrites, loads;
	int fail_append;
	struct rt_bits left; /* what a previous owner left */
};

static int f_append(void *arg, const uint64_t *exts, size_t n)
{
	struct fake *f = arg;

	if (f->fail_append)
		return -EIO;
	f->appends++;
	for (size_t i = 0; i < n; i++)
		f->log[f->nlog++] = exts[i];
	return 0;
}

static int f_rewrite(void *arg, uint64_t epoch, const uint64_t *exts, size_t n)
{
	struct fake *f = arg;

	f->rewrites++;
	f->log_epoch = epoch;
	f->nlog = 0;
	for (size_t i = 0; i < n; i++)
		f->log[f->nlog++] = exts[i];
	return 0;
}

static int f_load(void *arg, struct rt_bits *g)
{
	struct fake *f = arg;

	f->loads++;
	return rt_bits_or(g, &f->left);
}

static const struct rt_ops fops = {
	.al_append = f_append,
	.al_rewrite = f_rewrite,
	.load = f_load,
};

static bool in_log(struct fake *f, uint64_t e)
{
	for (size_t i = 0; i < f->nlog; i++)
		if (f->log[i] == e)
			return true;
	return false;
}

static void test_bits(void **state)
{
	struct rt_bits b = { 0 }, c = { 0 };

	(void)state;
	assert_int_equal(rt_bits_set_range(&b, 3, 130), 0);
	assert_false(rt_bits_test(&b, 2));
	assert_true(rt_bits_test(&b, 3));
	assert_true(rt_bits_test(&b, 64));
	assert_true(rt_bits_test(&b, 130));
	assert_false(rt_bits_test(&b, 131));
	assert_false(rt_bits_test(&b, 100000));
	assert_int_equal(rt_bits_count(&b), 128);
	assert_int_equal(rt_bits_next(&b, 0), 3);
	assert_int_equal(rt_bits_next(&b, 131), UINT64_MAX);
	assert_true(rt_bits_any(&b, 0, 3));
	assert_false(rt_bits_any(&b, 131, 5000));
	rt_bits_clear(&b, 64);
	assert_false(rt_bits_test(&b, 64));
	assert_int_equal(rt_bits_set_range(&c, 9000, 9000), 0);
	assert_int_equal(rt_bits_or(&c, &b), 0);
	assert_int_equal(rt_bits_count(&c), 128);
	rt_bits_free(&b);
	rt_bits_free(&c);
}

/* The first write to an extent records it before anything is marked;
 * later writes to it write no log. */
static void test_cold_then_hot(void **state)
{
	struct fake f = { 0 };
	struct rt_file *t;
	struct rt_stats st;

	(void)state;
	assert_int_equal(rt_new(&fops, &f, &t), 0);
	assert_int_equal(rt_write_fast(t, 7, 4096, 4096), -EAGAIN);
	assert_int_equal(f.loads, 0);
	assert_int_equal(rt_write(t, 7, 4096, 4096), RT_OK);
	assert_int_equal(rt_write_fast(t, 7, 8192, 4096), RT_OK);
	assert_int_equal(rt_write_fast(t, 8, 8192, 4096), -EAGAIN);
	assert_int_equal(f.loads, 1);	 /* new epoch */
	assert_int_equal(f.rewrites, 1); /* fresh log of epoch 7 */
	assert_int_equal(f.log_epoch, 7);
	assert_int_equal(f.appends, 1);
	assert_true(in_log(&f, 0));
	assert_int_equal(rt_write(t, 7, 65536, 4096), RT_OK);
	assert_int_equal(rt_write(t, 7, RT_EXTENT - 4096, 4096), RT_OK);
	assert_int_equal(f.appends, 1);
	/* a write across an extent boundary heats the second one */
	assert_int_equal(rt_write(t, 7, RT_EXTENT - 512, 1024), RT_OK);
	assert_int_equal(f.appends, 2);
	assert_true(in_log(&f, 1));
	rt_stats(t, &st);
	assert_int_equal(st.dirty, 4); /* granules 0, 1, 63, 64 */
	assert_int_equal(st.hot, 2);
	assert_int_equal(st.epoch, 7);
	assert_int_equal(rt_write(t, 7, 0, 0), RT_OK);
	assert_int_equal(rt_write(t, 7, RT_MAX_BYTES, 1), -EFBIG);
	rt_free(t);
}

/* A log that cannot be written stops the write, and marks nothing. */
static void test_log_failure(void **state)
{
	struct fake f = { 0 };
	struct rt_file *t;
	struct rt_stats st;

	(void)state;
	assert_int_equal(rt_new(&fops, &f, &t), 0);
	f.fail_append = 1;
	assert_int_equal(rt_write(t, 1, 0, 4096), -EIO);
	rt_stats(t, &st);
	assert_int_equal(st.dirty, 0);
	assert_int_equal(st.hot, 0);
	f.fail_append = 0;
	assert_int_equal(rt_write(t, 1, 0, 4096), RT_OK);
	rt_stats(t, &st);
	assert_int_equal(st.dirty, 1);
	rt_free(t);
}

/* A new owner adds what the previous one left, and its new log names
 * those extents before any of its own writes proceed. */
static void test_new_epoch_loads(void **state)
{
	struct fake f = { 0 };
	struct rt_file *t;
	struct rt_stats st;

	(void)state;
	assert_int_equal(rt_new(&fops, &f, &t), 0);
	/* the previous owner's log named extent 5 (all its granules) */
	assert_int_equal(rt_bits_set_range(&f.left, 5 * RT_GRANULES_PER_EXTENT,
					   6 * RT_GRANULES_PER_EXTENT - 1),
			 0);
	assert_int_equal(rt_write(t, 9, 0, 4096), RT_OK);
	assert_int_equal(f.log_epoch, 9);
	assert_true(in_log(&f, 5));
	assert_true(in_log(&f, 0));
	rt_stats(t, &st);
	assert_int_equal(st.dirty, RT_GRANULES_PER_EXTENT + 1);
	/* lost and taken again at a higher epoch: loads again */
	rt_unload(t);
	assert_int_equal(rt_write(t, 12, 0, 4096), RT_OK);
	assert_int_equal(f.loads, 2);
	assert_int_equal(f.log_epoch, 12);
	rt_bits_free(&f.left);
	rt_free(t);
}

/* Freeze: writes after it go to a new set; a write to a frozen granule
 * not shipped is told to copy first; claims are exclusive. */
static void test_freeze_cbw(void **state)
{
	struct fake f = { 0 };
	struct rt_file *t;
	struct rt_bits fr = { 0 };
	struct rt_stats st;

	(void)state;
	assert_int_equal(rt_new(&fops, &f, &t), 0);
	assert_int_equal(rt_write(t, 1, 0, 4096), RT_OK);
	assert_int_equal(rt_write(t, 1, 3 * RT_GRANULE, 4096), RT_OK);
	assert_int_equal(rt_freeze(t), 0);
	assert_int_equal(rt_freeze(t), -EBUSY);
	assert_int_equal(rt_frozen_copy(t, &fr), 0);
	assert_int_equal(rt_bits_count(&fr), 2);
	assert_true(rt_bits_test(&fr, 3));
	/* untouched granule: no copy */
	assert_int_equal(rt_write(t, 1, 2 * RT_GRANULE, 4096), RT_OK);
	/* frozen, not shipped: copy first */
	assert_int_equal(rt_write(t, 1, 3 * RT_GRANULE + 8192, 4096), RT_CBW);
	rt_cbw_lock(t);
	assert_true(rt_claim_frozen(t, 3));
	assert_false(rt_claim_frozen(t, 3)); /* the shipper finds it taken */
	rt_cbw_unlock(t);
	rt_count_cbw(t);
	/* shipped: writes to it need no copy any more */
	assert_true(rt_claim_frozen(t, 0));
	assert_int_equal(rt_write(t, 1, 0, 4096), RT_OK);
	rt_stats(t, &st);
	assert_int_equal(st.frozen, 0);
	assert_int_equal(st.cbw, 1);
	assert_int_equal(st.dirty, 3); /* 0, 2, 3 since the freeze */
	assert_int_equal(rt_point_done(t, NULL), 0);
	rt_stats(t, &st);
	assert_int_equal(st.dirty, 3);
	rt_bits_free(&fr);
	rt_free(t);
}

/* After a shipped point the log names only extents still dirty; a write
 * to an extent thus cooled records it again. */
static void test_log_shrinks(void **state)
{
	struct fake f = { 0 };
	struct rt_file *t;
	struct rt_bits fr = { 0 };
	struct rt_stats st;
	int appends;

	(void)state;
	assert_int_equal(rt_new(&fops, &f, &t), 0);
	assert_int_equal(rt_write(t, 1, 0, 4096), RT_OK);
	assert_int_equal(rt_write(t, 1, 10 * RT_EXTENT, 4096), RT_OK);
	assert_int_equal(rt_freeze(t), 0);
	assert_int_equal(rt_write(t, 1, 10 * RT_EXTENT + RT_GRANULE, 1), RT_OK);
	assert_true(rt_claim_frozen(t, 0));
	assert_true(rt_claim_frozen(t, 10 * RT_GRANULES_PER_EXTENT));
	assert_int_equal(rt_point_done(t, NULL), 0);
	assert_int_equal(f.nlog, 1);
	assert_true(in_log(&f, 10));
	appends = f.appends;
	assert_int_equal(rt_write(t, 1, 0, 4096), RT_OK);
	assert_int_equal(f.appends, appends + 1);
	assert_true(in_log(&f, 0));
	/* an abandoned point puts its granules back, and keeps them logged */
	assert_int_equal(rt_freeze(t), 0);
	assert_int_equal(rt_frozen_copy(t, &fr), 0);
	assert_true(rt_claim_frozen(t, 0)); /* claimed, then abandoned */
	assert_int_equal(rt_point_done(t, &fr), 0);
	rt_stats(t, &st);
	assert_int_equal(st.dirty, 2);
	assert_true(in_log(&f, 0));
	assert_true(in_log(&f, 10));
	rt_bits_free(&fr);
	rt_free(t);
}

static void test_hand_off_bits(void **state)
{
	struct fake f = { 0 };
	struct rt_file *t;
	struct rt_bits b = { 0 };
	uint64_t epoch;

	(void)state;
	assert_int_equal(rt_new(&fops, &f, &t), 0);
	assert_int_equal(rt_write(t, 4, 0, 4096), RT_OK);
	assert_int_equal(rt_freeze(t), 0);
	assert_int_equal(rt_write(t, 4, 5 * RT_GRANULE, 4096), RT_OK);
	assert_int_equal(rt_handoff_bits(t, &b, &epoch), 0);
	assert_int_equal(epoch, 4);
	assert_true(rt_bits_test(&b, 0));
	assert_true(rt_bits_test(&b, 5));
	assert_int_equal(rt_bits_count(&b), 2);
	assert_int_equal(rt_mark_all(t, 3 * RT_GRANULE + 1), 0);
	rt_bits_free(&b);
	rt_free(t);
}

static void test_al_codec(void **state)
{
	uint8_t buf[RT_AL_REC * 4];
	struct rt_al_rec r = { .type = RT_AL_HDR, .a = 42, .b = 77 }, o;
	struct rt_bits g = { 0 };
	uint64_t epoch, fid;

	(void)state;
	rt_al_encode(&r, buf);
	assert_int_equal(rt_al_decode(buf, RT_AL_REC, &o), 0);
	assert_int_equal(o.a, 42);
	assert_int_equal(o.b, 77);
	assert_int_equal(rt_al_decode(buf, RT_AL_REC - 1, &o), -EINVAL);
	r = (struct rt_al_rec){ .type = RT_AL_EXT, .a = 3 };
	rt_al_encode(&r, buf + RT_AL_REC);
	r.a = 8;
	rt_al_encode(&r, buf + 2 * RT_AL_REC);
	r.a = 9;
	rt_al_encode(&r, buf + 3 * RT_AL_REC);
	buf[3 * RT_AL_REC + 9] ^= 1; /* torn last record */
	assert_int_equal(rt_al_parse(buf, sizeof(buf), &epoch, &fid, &g), 0);
	assert_int_equal(epoch, 42);
	assert_int_equal(fid, 77);
	assert_true(rt_bits_test(&g, 3 * RT_GRANULES_PER_EXTENT));
	assert_true(rt_bits_test(&g, 9 * RT_GRANULES_PER_EXTENT - 1));
	assert_false(rt_bits_test(&g, 9 * RT_GRANULES_PER_EXTENT));
	assert_int_equal(rt_bits_count(&g), 2 * RT_GRANULES_PER_EXTENT);
	/* a tail shorter than a record is ignored too */
	assert_int_equal(rt_al_parse(buf, 3 * RT_AL_REC + 5, &epoch, &fid, &g),
			 0);
	buf[1] ^= 1;
	assert_int_equal(rt_al_parse(buf, sizeof(buf), &epoch, &fid, &g),
			 -EINVAL);
	assert_int_equal(rt_al_parse(buf, 3, &epoch, &fid, &g), -EINVAL);
	rt_bits_free(&g);
}

static void test_bm_codec(void **state)
{
	struct rt_bits b = { 0 }, o = { 0 };
	uint8_t *p;
	size_t len;
	uint64_t epoch;

	(void)state;
	assert_int_equal(rt_bits_set_range(&b, 1, 1), 0);
	assert_int_equal(rt_bits_set_range(&b, 1000, 1003), 0);
	assert_int_equal(rt_bm_encode(&b, 31, &p, &len), 0);
	assert_int_equal(rt_bm_decode(p, len, &epoch, &o), 0);
	assert_int_equal(epoch, 31);
	assert_int_equal(rt_bits_count(&o), 5);
	assert_true(rt_bits_test(&o, 1003));
	assert_int_equal(rt_bm_decode(p, len - 1, &epoch, &o), -EINVAL);
	p[RT_BM_HDR + 1] ^= 0x40;
	assert_int_equal(rt_bm_decode(p, len, &epoch, &o), -EINVAL);
	assert_int_equal(rt_bm_decode(p, 5, &epoch, &o), -EINVAL);
	free(p);
	rt_bits_free(&b);
	rt_bits_free(&o);
}

/*
 * Writers race the freezes and log rewrites of points: while a write is
 * in flight (from its marking to the end of its I/O, which a freeze
 * drains) its extent lies in the log (checked by the writer against the
 * fake log before it "completes"), and at the end every granule written
 * is either shipped by a point or still dirty.
 */
#define C_WRITERS  3
#define C_WRITES   3000
#define C_GRANULES (8 * RT_GRANULES_PER_EXTENT)

struct conc {
	struct fake f;
	struct rt_file *t;
	struct rt_bits shipped;	     /* main thread only */
	uint8_t written[C_GRANULES]; /* set by writers (atomically) */
	int bad;
	int done; /* writers finished (atomically) */
	/* the group barrier: writers hold it shared from marking to the
	 * end of their "I/O" (the check), a freeze exclusively */
	pthread_rwlock_t barrier;
};

static int c_append(void *arg, const uint64_t *exts, size_t n)
{
	struct conc *c = arg;
	int rc;

	pthread_mutex_lock(&c->f.mu);
	rc = f_append(&c->f, exts, n);
	pthread_mutex_unlock(&c->f.mu);
	return rc;
}

static int c_rewrite(void *arg, uint64_t epoch, const uint64_t *exts, size_t n)
{
	struct conc *c = arg;
	int rc;

	pthread_mutex_lock(&c->f.mu);
	rc = f_rewrite(&c->f, epoch, exts, n);
	pthread_mutex_unlock(&c->f.mu);
	return rc;
}

static int c_load(void *arg, struct rt_bits *g)
{
	(void)arg;
	(void)g;
	return 0;
}

static const struct rt_ops cops = {
	.al_append = c_append,
	.al_rewrite = c_rewrite,
	.load = c_load,
};

static void *c_writer(void *arg)
{
	struct conc *c = arg;
	unsigned seed = (unsigned)(uintptr_t)&seed;

	for (int i = 0; i < C_WRITES; i++) {
		uint64_t g = (uint64_t)rand_r(&seed) % C_GRANULES;
		int rc;

		pthread_rwlock_rdlock(&c->barrier);
		rc = rt_write(c->t, 1, g * RT_GRANULE + 100, 4096);
		if (rc < 0) {
			__atomic_store_n(&c->bad, 1, __ATOMIC_RELAXED);
			pthread_rwlock_unlock(&c->barrier);
			break;
		}
		if (rc == RT_CBW) {
			rt_cbw_lock(c->t);
			rt_claim_frozen(c->t, g);
			rt_cbw_unlock(c->t);
		}
		__atomic_store_n(&c->written[g], 1, __ATOMIC_RELAXED);
		pthread_mutex_lock(&c->f.mu);
		if (!in_log(&c->f, g / RT_GRANULES_PER_EXTENT))
			__atomic_store_n(&c->bad, 2, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&c->f.mu);
		pthread_rwlock_unlock(&c->barrier);
	}
	__atomic_fetch_add(&c->done, 1, __ATOMIC_RELAXED);
	return NULL;
}

static void test_concurrent_points(void **state)
{
	struct conc *c = calloc(1, sizeof(*c));
	pthread_t th[C_WRITERS];
	struct rt_bits fr = { 0 }, left = { 0 };
	unsigned n_points = 0;
	pthread_rwlockattr_t ra;
	uint64_t epoch;

	(void)state;
	pthread_mutex_init(&c->f.mu, NULL);
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(
		&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&c->barrier, &ra);
	pthread_rwlockattr_destroy(&ra);
	assert_int_equal(rt_new(&cops, c, &c->t), 0);
	for (int i = 0; i < C_WRITERS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, c_writer, c), 0);
	for (int p = 0; p < 1000000 &&
			__atomic_load_n(&c->done, __ATOMIC_RELAXED) < C_WRITERS;
	     p++) {
		int rc;

		pthread_rwlock_wrlock(&c->barrier); /* hold and drain */
		rc = rt_freeze(c->t);
		pthread_rwlock_unlock(&c->barrier);
		if (rc)
			continue;
		assert_int_equal(rt_frozen_copy(c->t, &fr), 0);
		for (uint64_t g = rt_bits_next(&fr, 0); g != UINT64_MAX;
		     g = rt_bits_next(&fr, g + 1)) {
			rt_cbw_lock(c->t);
			rt_claim_frozen(c->t, g);
			rt_cbw_unlock(c->t);
		}
		assert_int_equal(rt_bits_or(&c->shipped, &fr), 0);
		rt_bits_free(&fr);
		assert_int_equal(rt_point_done(c->t, NULL), 0);
		n_points++;
	}
	for (int i = 0; i < C_WRITERS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(c->bad, 0);
	print_message("%u points while the writers ran\n", n_points);
	assert_int_equal(rt_handoff_bits(c->t, &left, &epoch), 0);
	assert_int_equal(rt_bits_or(&left, &c->shipped), 0);
	for (uint64_t g = 0; g < C_GRANULES; g++)
		if (c->written[g])
			assert_true(rt_bits_test(&left, g));
	/* and every granule still to ship is in an extent the log names */
	rt_bits_free(&left);
	assert_int_equal(rt_handoff_bits(c->t, &left, &epoch), 0);
	for (uint64_t g = rt_bits_next(&left, 0); g != UINT64_MAX;
	     g = rt_bits_next(&left, g + 1))
		assert_true(in_log(&c->f, g / RT_GRANULES_PER_EXTENT));
	rt_bits_free(&left);
	rt_bits_free(&c->shipped);
	rt_free(c->t);
	pthread_mutex_destroy(&c->f.mu);
	pthread_rwlock_destroy(&c->barrier);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bits),
		cmocka_unit_test(test_cold_then_hot),
		cmocka_unit_test(test_log_failure),
		cmocka_unit_test(test_new_epoch_loads),
		cmocka_unit_test(test_freeze_cbw),
		cmocka_unit_test(test_log_shrinks),
		cmocka_unit_test(test_hand_off_bits),
		cmocka_unit_test(test_al_codec),
		cmocka_unit_test(test_bm_codec),
		cmocka_unit_test(test_concurrent_points),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
