// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * test_own.c - unit tests of the write ownership state machine
 * (csvfs/own.c) with fake lock manager callbacks and a fake clock: lazy
 * acquire, lease margin, revoke after in-flight writes, release on last
 * close and on idle, poisoning on loss, the revoke-before-grant race,
 * page-cache writeback (shared mmap) before a revoke or idle release.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "own.h"

#define MS 1000000ull

struct fake {
	uint64_t now;
	int acquires, releases, flushes;
	uint64_t next_epoch;
	uint64_t released_epoch;
	int acquire_rc;
	int order;	       /* flush must come before release */
	int flush_order, release_order;
	struct cv_own *o;
	bool revoke_in_acquire; /* simulate revoke overtaking the grant */
	int held;		/* hold - drop balance */
	int last_timeout_ms;	/* given to the latest acquire */
	/* a blocking acquire, until canceled (interrupt tests) */
	pthread_mutex_t blk_lock;
	pthread_cond_t blk_cond;
	bool block, in_acquire, canceled;
	int cancels;
	int writebacks, writeback_order;
	struct cv_own_file *wb_file; /* written back by f_writeback */
	uint64_t wb_gen;
	int wb_rc;		/* writeback_begin's answer inside the cb */
	enum cv_own_state wb_state;
};

static struct fake F;

static int f_acquire(void *arg, uint64_t fileid, int timeout_ms,
		     uint64_t *epoch)
{
	F.last_timeout_ms = timeout_ms;
	F.acquires++;
	if (F.block) {
		pthread_mutex_lock(&F.blk_lock);
		F.in_acquire = true;
		pthread_cond_broadcast(&F.blk_cond);
		while (!F.canceled)
			pthread_cond_wait(&F.blk_cond, &F.blk_lock);
		F.in_acquire = false;
		pthread_mutex_unlock(&F.blk_lock);
		return -EINTR;
	}
	if (F.acquire_rc)
		return F.acquire_rc;
	*epoch = ++F.next_epoch;
	if (F.revoke_in_acquire) {
		F.revoke_in_acquire = false;
		cv_own_ev_revoke(F.o, fileid, *epoch);
	}
	return 0;
}

static int f_release(void *arg, uint64_t fileid, uint64_t epoch)
{
	__atomic_add_fetch(&F.releases, 1, __ATOMIC_SEQ_CST);
	F.released_epoch = epoch;
	F.release_order = ++F.order;
	return 0;
}

static int f_flush(void *arg, void *obj)
{
	F.flushes++;
	F.flush_order = ++F.order;
	return 0;
}

/* The kernel writing back a dirty page: one writeback write, admitted
 * while the release waits for it. */
static int f_writeback(void *arg, void *obj)
{
	F.writebacks++;
	F.writeback_order = ++F.order;
	F.wb_state = cv_own_state_of(F.o, 7, NULL);
	if (F.wb_file) {
		F.wb_rc = cv_own_writeback_begin(F.o, F.wb_file, F.wb_gen);
		if (!F.wb_rc)
			cv_own_write_end(F.o, F.wb_file);
	}
	return 0;
}

static void f_hold(void *arg, void *obj) { F.held++; }
static void f_drop(void *arg, void *obj) { F.held--; }
static uint64_t f_now(void *arg) { return F.now; }

static int f_cancel(void *arg, uint64_t fileid)
{
	int rc = -ENOENT;

	pthread_mutex_lock(&F.blk_lock);
	if (F.in_acquire) {
		F.canceled = true;
		F.cancels++;
		pthread_cond_broadcast(&F.blk_cond);
		rc = 0;
	}
	pthread_mutex_unlock(&F.blk_lock);
	return rc;
}

static const struct cv_own_ops ops = {
	.acquire = f_acquire, .acquire_cancel = f_cancel,
	.release = f_release, .flush = f_flush, .writeback = f_writeback,
	.hold = f_hold, .drop = f_drop, .now_ns = f_now,
};
static const struct cv_own_ops local_ops = {
	.flush = f_flush, .now_ns = f_now,
};

static int obj; /* stands for an inode */

static int setup(void **state)
{
	memset(&F, 0, sizeof(F));
	pthread_mutex_init(&F.blk_lock, NULL);
	pthread_cond_init(&F.blk_cond, NULL);
	F.now = 1000 * MS;
	assert_int_equal(cv_own_new(&ops, NULL, 500, &F.o), 0);
	/* a lease of 1 s from now */
	cv_own_ev_lease(F.o, true, F.now + 1000 * MS);
	return 0;
}

static int teardown(void **state)
{
	cv_own_free(F.o);
	assert_int_equal(F.held, 0);
	return 0;
}

static void test_local_mode(void **state)
{
	struct cv_own *o;
	struct cv_own_file *f;
	uint64_t gen;

	assert_int_equal(cv_own_new(&local_ops, NULL, 500, &o), 0);
	f = cv_own_ref(o, 7, &obj, true, &gen);
	assert_int_equal(cv_own_write_begin(o, f, gen), 0);
	cv_own_write_end(o, f);
	assert_int_equal(cv_own_state_of(o, 7, NULL), CV_OWN_OWNED);
	cv_own_unref(o, f, true);
	cv_own_free(o);
}

static void test_lazy_acquire(void **state)
{
	uint64_t gen, epoch;
	struct cv_own_file *f = cv_own_ref(F.o, 7, &obj, true, &gen);

	assert_int_equal(F.acquires, 0); /* open alone takes nothing */
	assert_int_equal(cv_own_write_begin(F.o, f, gen), 0);
	cv_own_write_end(F.o, f);
	assert_int_equal(cv_own_write_begin(F.o, f, gen), 0);
	cv_own_write_end(F.o, f);
	assert_int_equal(F.acquires, 1);
	assert_int_equal(cv_own_state_of(F.o, 7, &epoch), CV_OWN_OWNED);
	assert_int_equal(epoch, 1);
	cv_own_unref(F.o, f, true);
}

static void test_acquire_refused(void **state)
{
	uint64_t gen;
	struct cv_own_file *f = cv_own_ref(F.o, 7, &obj, true, &gen);

	F.acquire_rc = -ETIMEDOUT;
	assert_int_equal(cv_own_write_begin(F.o, f, gen), -EIO);
	assert_int_equal(cv_own_state_of(F.o, 7, NULL), CV_OWN_NONE);
	F.acquire_rc = 0;
	assert_int_equal(cv_own_write_begin(F.o, f, gen), 0);
	cv_own_write_end(F.o, f);
	cv_own_unref(F.o, f, true);
}

static void test_lease_margin(void **state)
{
	uint64_t gen;
	struct cv_own_file *f = cv_own_ref(F.o, 7, &obj, true, &gen);

	/* margin is 10% of the lease: 100 ms */
	assert_int_equal(cv_own_lease_margin(F.o), 100 * MS);
	F.now += 850 * MS;
	assert_int_equal(cv_own_write_begin(F.o, f, gen), 0);
	cv_own_write_end(F.o, f);
	F.now += 60 * MS; /* 90 ms left < margin */
	assert_int_equal(cv_own_write_begin(F.o, f, gen), -EIO);
	cv_own_ev_lease(F.o, true, F.now + 1000 * MS); /* extended */
	assert_int_equal(cv_own_write_begin(F.o, f, gen), 0);
	cv_own_write_end(F.o, f);
	cv_own_ev_lease(F.o, false, 0); /* quorum lost */
	assert_int_equal(cv_own_write_begin(F.o, f, gen), -EIO);
	cv_own_unref(F.o, f, true);
}

static void test_revoke(void **state)
{
	uint64_t gen;
	struct cv_own_file *f = cv_own_ref(F.o, 7, &obj, true, &gen);

	assert_int_equal(cv_own_write_begin(F.o, f, gen), 0);
	cv_own_write_end(F.o, f);
	cv_own_ev_revoke(F.o, 7, 1);
	assert_int_equal(F.releases, 0); /* never in the event handler */
	assert_int_equal(cv_own_run_pending(F.o), 1);
	assert_int_equal(F.flushes, 1);
	assert_int_equal(F.releases, 1);
	assert_true(F.flush_order < F.release_order);
	assert_int_equal(F.released_epoch, 1);
	assert_int_equal(cv_own_state_of(F.o, 7, NULL), CV_OWN_NONE);
	/* the handle is not poisoned: the next write acquires again */
	assert_int_equal(cv_own_write_begin(F.o, f, gen), 0);
	cv_own_write_end(F.o, f);
	assert_int_equal(F.acquires, 2);
	cv_own_unref(F.o, f, true);
}

static void *run_pending_thread(void *arg)
{
	cv_own_run_pending(F.o);
	return NULL;
}

static void test_revoke_waits_for_inflight(void **state)
{
	uint64_t gen;
	struct cv_own_file *f = cv_own_ref(F.o, 7, &obj, true, &gen);
	pthread_t th;

	assert_int_equal(cv_own_write_begin(F.o, f, gen), 0);
	cv_own_ev_revoke(F.o, 7, 1);
	pthread_create(&th, NULL, run_pending_thread, NULL);
	usleep(50000);
	assert_int_equal(__atomic_load_n(&F.releases, __ATOMIC_SEQ_CST), 0);
	assert_int_equal(cv_own_state_of(F.o, 7, NULL), CV_OWN_RELEASING);
	cv_own_write_end(F.o, f);
	pthread_join(th, NULL);
	assert_int_equal(F.releases, 1);
	cv_own_unref(F.o, f, true);
}

/* The queue threads' admission (FUSE over io_uring): never waits, never
 * acquires, counts what it admits like write_begin. */
static void test_try_begin(void **state)
{
	uint64_t g_old, g_new;
	struct cv_own_file *f = cv_own_ref(F.o, 7, &obj, true, &g_old);
	struct cv_own_file *f2;
	pthread_t th;

	/* not owned: would have to acquire */
	assert_int_equal(cv_own_write_try_begin(F.o, f, g_old), -EAGAIN);
	assert_int_equal(F.acquires, 0);
	assert_int_equal(cv_own_write_begin(F.o, f, g_old), 0);
	cv_own_write_end(F.o, f);
	/* owned: admitted and counted - a revoke waits for it */
	assert_int_equal(cv_own_write_try_begin(F.o, f, g_old), 0);
	cv_own_ev_revoke(F.o, 7, 1);
	/* revoke pending: would have to wait */
	assert_int_equal(cv_own_write_try_begin(F.o, f, g_old), -EAGAIN);
	pthread_create(&th, NULL, run_pending_thread, NULL);
	usleep(50000);
	assert_int_equal(__atomic_load_n(&F.releases, __ATOMIC_SEQ_CST), 0);
	assert_int_equal(cv_own_state_of(F.o, 7, NULL), CV_OWN_RELEASING);
	assert_int_equal(cv_own_write_try_begin(F.o, f, g_old), -EAGAIN);
	cv_own_write_end(F.o, f);
	pthread_join(th, NULL);
	assert_int_equal(F.releases, 1);
	/* no lease: refused, as write_begin would */
	assert_int_equal(cv_own_write_begin(F.o, f, g_old), 0);
	cv_own_write_end(F.o, f);
	cv_own_ev_lease(F.o, false, 0);
	assert_int_equal(cv_own_write_try_begin(F.o, f, g_old), -EIO);
	cv_own_ev_lease(F.o, true, F.now + 1000 * MS);
	/* poisoned: refused for good */
	cv_own_ev_lost(F.o, 7);
	assert_int_equal(cv_own_write_try_begin(F.o, f, g_old), -EIO);
	f2 = cv_own_ref(F.o, 7, &obj, true, &g_new);
	assert_int_equal(cv_own_write_try_begin(F.o, f2, g_new), -EAGAIN);
	cv_own_unref(F.o, f2, true);
	cv_own_unref(F.o, f, true);
}

static void test_last_writer_releases(void **state)
{
	uint64_t g1, g2, g3;
	struct cv_own_file *w1 = cv_own_ref(F.o, 7, &obj, true, &g1);
	struct cv_own_file *w2 = cv_own_ref(F.o, 7, &obj, true, &g2);
	struct cv_own_file *r = cv_own_ref(F.o, 7, &obj, false, &g3);

	assert_ptr_equal(w1, w2);
	assert_int_equal(cv_own_write_begin(F.o, w1, g1), 0);
	cv_own_write_end(F.o, w1);
	cv_own_unref(F.o, w1, true);
	assert_int_equal(F.releases, 0);
	cv_own_unref(F.o, w2, true);
	assert_int_equal(F.releases, 1);
	assert_int_equal(F.flushes, 1);
	assert_true(F.flush_order < F.release_order);
	cv_own_unref(F.o, r, false);
	assert_int_equal(F.held, 0); /* entry gone, inode let go */
}

static void test_idle_release(void **state)
{
	uint64_t gen;
	struct cv_own_file *f = cv_own_ref(F.o, 7, &obj, true, &gen);

	assert_int_equal(cv_own_write_begin(F.o, f, gen), 0);
	cv_own_write_end(F.o, f);
	F.now += 400 * MS;
	assert_int_equal(cv_own_run_pending(F.o), 0);
	F.now += 100 * MS; /* idle_release_ms = 500 */
	assert_int_equal(cv_own_run_pending(F.o), 1);
	assert_int_equal(F.releases, 1);
	cv_own_unref(F.o, f, true);
	assert_int_equal(F.releases, 1); /* nothing left to release */
}

static void test_lost_poisons(void **state)
{
	uint64_t g_old, g_new;
	struct cv_own_file *f = cv_own_ref(F.o, 7, &obj, true, &g_old);
	struct cv_own_file *f2;

	assert_int_equal(cv_own_write_begin(F.o, f, g_old), 0);
	cv_own_write_end(F.o, f);
	cv_own_ev_lost(F.o, 7);
	assert_int_equal(cv_own_state_of(F.o, 7, NULL), CV_OWN_NONE);
	assert_int_equal(cv_own_write_begin(F.o, f, g_old), -EIO);
	assert_int_equal(cv_own_write_begin(F.o, f, g_old), -EIO); /* forever */
	assert_int_equal(F.acquires, 1); /* never silently re-acquired */
	/* a new open works normally */
	f2 = cv_own_ref(F.o, 7, &obj, true, &g_new);
	assert_int_not_equal(g_new, g_old);
	assert_int_equal(cv_own_write_begin(F.o, f2, g_new), 0);
	cv_own_write_end(F.o, f2);
	assert_int_equal(F.acquires, 2);
	assert_int_equal(cv_own_write_begin(F.o, f, g_old), -EIO);
	cv_own_unref(F.o, f, true);
	cv_own_unref(F.o, f2, true);
}

static void test_disconnect(void **state)
{
	uint64_t g1, g2;
	struct cv_own_file *a = cv_own_ref(F.o, 7, &obj, true, &g1);
	struct cv_own_file *b = cv_own_ref(F.o, 8, &obj, true, &g2);

	assert_int_equal(cv_own_write_begin(F.o, a, g1), 0);
	cv_own_write_end(F.o, a);
	cv_own_ev_disconnect(F.o);
	assert_int_equal(cv_own_write_begin(F.o, a, g1), -EIO);
	/* not owned before: not poisoned, but nothing can be acquired */
	assert_int_equal(cv_own_write_begin(F.o, b, g2), -EIO);
	assert_int_equal(F.acquires, 1);
	cv_own_unref(F.o, a, true);
	cv_own_unref(F.o, b, true);
}

static void test_reconnect(void **state)
{
	uint64_t g1, g2;
	struct cv_own_file *a = cv_own_ref(F.o, 7, &obj, true, &g1);
	struct cv_own_file *b;

	assert_int_equal(cv_own_write_begin(F.o, a, g1), 0);
	cv_own_write_end(F.o, a);
	cv_own_ev_disconnect(F.o);
	cv_own_ev_reconnect(F.o);
	cv_own_ev_lease(F.o, true, F.now + 1000 * MS);
	/* the handle open across the outage stays poisoned... */
	assert_int_equal(cv_own_write_begin(F.o, a, g1), -EIO);
	assert_int_equal(F.acquires, 1);
	/* ...a new one acquires again, through the new connection */
	b = cv_own_ref(F.o, 7, &obj, true, &g2);
	assert_int_equal(cv_own_write_begin(F.o, b, g2), 0);
	cv_own_write_end(F.o, b);
	assert_int_equal(F.acquires, 2);
	assert_int_equal(cv_own_state_of(F.o, 7, NULL), CV_OWN_OWNED);
	/* and the old one is still refused after the new grant */
	assert_int_equal(cv_own_write_begin(F.o, a, g1), -EIO);
	cv_own_unref(F.o, a, true);
	cv_own_unref(F.o, b, true);
}

static void test_revoke_overtakes_grant(void **state)
{
	uint64_t gen;
	struct cv_own_file *f = cv_own_ref(F.o, 7, &obj, true, &gen);

	assert_int_equal(cv_own_start(F.o), 0);
	F.revoke_in_acquire = true;
	/* granted epoch 1 and revoked at once: the worker releases it,
	 * then the write acquires again (epoch 2) */
	assert_int_equal(cv_own_write_begin(F.o, f, gen), 0);
	cv_own_write_end(F.o, f);
	assert_int_equal(F.acquires, 2);
	assert_int_equal(F.releases, 1);
	assert_int_equal(F.released_epoch, 1);
	cv_own_unref(F.o, f, true);
}

static void test_granted_event(void **state)
{
	uint64_t gen, epoch;
	struct cv_own_file *f;

	/* hand-off target: lockd holds the grant until a client claims it */
	cv_own_ev_granted(F.o, 9, 42);
	assert_int_equal(cv_own_state_of(F.o, 9, NULL), CV_OWN_NONE);
	f = cv_own_ref(F.o, 9, &obj, true, &gen);
	F.next_epoch = 41; /* lockd answers the claim with the grant's epoch */
	assert_int_equal(cv_own_write_begin(F.o, f, gen), 0);
	cv_own_write_end(F.o, f);
	assert_int_equal(F.acquires, 1); /* the claim */
	assert_int_equal(cv_own_state_of(F.o, 9, &epoch), CV_OWN_OWNED);
	assert_int_equal(epoch, 42);
	cv_own_unref(F.o, f, true);
	assert_int_equal(F.released_epoch, 42);
}

/* The acquire gets the acquire timeout; its expiry is EIO. */
static void test_acquire_timeout(void **state)
{
	uint64_t gen;
	struct cv_own_file *f = cv_own_ref(F.o, 7, &obj, true, &gen);

	assert_int_equal(F.last_timeout_ms, 0);
	cv_own_set_acquire_timeout(F.o, 2500);
	F.acquire_rc = -ETIMEDOUT;
	assert_int_equal(cv_own_write_begin(F.o, f, gen), -EIO);
	assert_int_equal(F.last_timeout_ms, 2500);
	cv_own_set_acquire_timeout(F.o, 0); /* the default */
	assert_int_equal(cv_own_write_begin(F.o, f, gen), -EIO);
	assert_int_equal(F.last_timeout_ms, CV_OWN_ACQUIRE_TIMEOUT_MS);
	F.acquire_rc = 0;
	cv_own_unref(F.o, f, true);
}

struct wb {
	struct cv_own_file *f;
	uint64_t gen;
	struct cv_own_wait w;
	int rc;
};

static void *write_begin_thread(void *arg)
{
	struct wb *b = arg;

	b->rc = cv_own_write_begin_wait(F.o, b->f, b->gen, &b->w);
	return NULL;
}

/* A signal (FUSE interrupt) ends a blocked acquire with EINTR. */
static void test_interrupt(void **state)
{
	struct wb b = { .rc = 1 };
	pthread_t th;

	b.f = cv_own_ref(F.o, 7, &obj, true, &b.gen);
	F.block = true;
	pthread_create(&th, NULL, write_begin_thread, &b);
	pthread_mutex_lock(&F.blk_lock);
	while (!F.in_acquire)
		pthread_cond_wait(&F.blk_cond, &F.blk_lock);
	pthread_mutex_unlock(&F.blk_lock);
	cv_own_interrupt(F.o, &b.w);
	pthread_join(th, NULL);
	assert_int_equal(b.rc, -EINTR);
	assert_int_equal(F.cancels, 1);
	assert_int_equal(cv_own_state_of(F.o, 7, NULL), CV_OWN_NONE);
	/* interrupted before it waits: no acquire at all */
	F.block = false;
	memset(&b.w, 0, sizeof(b.w));
	cv_own_interrupt(F.o, &b.w);
	F.acquires = 0;
	assert_int_equal(cv_own_write_begin_wait(F.o, b.f, b.gen, &b.w),
			 -EINTR);
	assert_int_equal(F.acquires, 0);
	/* and the next write acquires normally */
	assert_int_equal(cv_own_write_begin(F.o, b.f, b.gen), 0);
	cv_own_write_end(F.o, b.f);
	cv_own_unref(F.o, b.f, true);
}

/* A revoke has the kernel write back mapped pages first, admitting that
 * writeback while still the owner; then flush, then release. */
static void test_revoke_writes_back(void **state)
{
	uint64_t gen;
	struct cv_own_file *f = cv_own_ref(F.o, 7, &obj, true, &gen);

	assert_int_equal(cv_own_write_begin(F.o, f, gen), 0);
	cv_own_write_end(F.o, f);
	F.wb_file = f;
	F.wb_gen = gen;
	F.wb_rc = 1;
	cv_own_ev_revoke(F.o, 7, 1);
	assert_int_equal(cv_own_run_pending(F.o), 1);
	assert_int_equal(F.writebacks, 1);
	assert_int_equal(F.wb_state, CV_OWN_OWNED);
	assert_int_equal(F.wb_rc, 0);
	assert_true(F.writeback_order < F.flush_order);
	assert_true(F.flush_order < F.release_order);
	assert_int_equal(F.acquires, 1); /* admitted as the owner */
	cv_own_unref(F.o, f, true);
}

static void test_idle_release_writes_back(void **state)
{
	uint64_t gen;
	struct cv_own_file *f = cv_own_ref(F.o, 7, &obj, true, &gen);

	assert_int_equal(cv_own_write_begin(F.o, f, gen), 0);
	cv_own_write_end(F.o, f);
	F.now += 500 * MS;
	assert_int_equal(cv_own_run_pending(F.o), 1);
	assert_int_equal(F.writebacks, 1);
	assert_true(F.writeback_order < F.release_order);
	cv_own_unref(F.o, f, true);
}

/* The last close has nothing mapped left (munmap wrote it back). */
static void test_last_close_no_writeback(void **state)
{
	uint64_t gen;
	struct cv_own_file *f = cv_own_ref(F.o, 7, &obj, true, &gen);

	assert_int_equal(cv_own_write_begin(F.o, f, gen), 0);
	cv_own_write_end(F.o, f);
	cv_own_unref(F.o, f, true);
	assert_int_equal(F.releases, 1);
	assert_int_equal(F.writebacks, 0);
}

static void *write_thread(void *arg)
{
	uint64_t gen = *(uint64_t *)arg;
	struct cv_own_file *f = cv_own_ref(F.o, 7, &obj, true, &gen);
	intptr_t rc = cv_own_write_begin(F.o, f, gen);

	if (!rc)
		cv_own_write_end(F.o, f);
	cv_own_unref(F.o, f, true);
	return (void *)rc;
}

/*
 * With a revoke pending, the kernel's writeback is admitted at once (the
 * release will wait for it: note 4 of own.c), an ordinary write waits for
 * the release and then acquires again.
 */
static void test_writeback_admitted_during_revoke(void **state)
{
	uint64_t gen;
	struct cv_own_file *f = cv_own_ref(F.o, 7, &obj, true, &gen);
	pthread_t th;
	void *rc;

	assert_int_equal(cv_own_write_begin(F.o, f, gen), 0);
	cv_own_write_end(F.o, f);
	cv_own_ev_revoke(F.o, 7, 1);
	assert_int_equal(cv_own_writeback_begin(F.o, f, gen), 0);
	cv_own_write_end(F.o, f);
	pthread_create(&th, NULL, write_thread, &gen);
	usleep(50000);
	assert_int_equal(__atomic_load_n(&F.acquires, __ATOMIC_SEQ_CST), 1);
	assert_int_equal(cv_own_run_pending(F.o), 1);
	pthread_join(th, &rc);
	assert_int_equal((intptr_t)rc, 0);
	assert_int_equal(F.acquires, 2); /* the waiting write acquired again */
	cv_own_unref(F.o, f, true);
}

/* Writeback through a handle poisoned by a loss fails like any write. */
static void test_writeback_poisoned(void **state)
{
	uint64_t gen;
	struct cv_own_file *f = cv_own_ref(F.o, 7, &obj, true, &gen);

	assert_int_equal(cv_own_writeback_begin(F.o, f, gen), 0);
	cv_own_write_end(F.o, f);
	assert_int_equal(F.acquires, 1); /* writeback acquires like a write */
	cv_own_ev_lost(F.o, 7);
	assert_int_equal(cv_own_writeback_begin(F.o, f, gen), -EIO);
	cv_own_unref(F.o, f, true);
}

/* Writeback after the lease ended is refused. */
static void test_writeback_no_lease(void **state)
{
	uint64_t gen;
	struct cv_own_file *f = cv_own_ref(F.o, 7, &obj, true, &gen);

	assert_int_equal(cv_own_writeback_begin(F.o, f, gen), 0);
	cv_own_write_end(F.o, f);
	F.now += 1000 * MS; /* past the lease of setup() */
	assert_int_equal(cv_own_writeback_begin(F.o, f, gen), -EIO);
	cv_own_unref(F.o, f, true);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_local_mode),
		T(test_lazy_acquire),
		T(test_acquire_refused),
		T(test_acquire_timeout),
		T(test_interrupt),
		T(test_lease_margin),
		T(test_revoke),
		T(test_revoke_waits_for_inflight),
		T(test_try_begin),
		T(test_last_writer_releases),
		T(test_idle_release),
		T(test_lost_poisons),
		T(test_disconnect),
		T(test_reconnect),
		T(test_revoke_overtakes_grant),
		T(test_granted_event),
		T(test_revoke_writes_back),
		T(test_idle_release_writes_back),
		T(test_last_close_no_writeback),
		T(test_writeback_admitted_during_revoke),
		T(test_writeback_poisoned),
		T(test_writeback_no_lease),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
