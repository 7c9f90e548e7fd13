// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * own.c - per-file write ownership state machine (see own.h).
 *
 * Race notes, above the code that handles them:
 *
 * 1. Revoke overtakes the grant.  lockd may grant us a file and revoke it
 *    at once (another node queued meanwhile).  The acquire reply wakes the
 *    writer through the library, and the revoke event can reach
 *    cv_own_ev_revoke before that writer re-takes o->lock.  So a revoke
 *    is only recorded (revoke_pending) and carried out by the worker once
 *    the entry is OWNED; writers do not enter while it is pending, and the
 *    writer that acquired still sees revoke_pending and waits.
 *
 * 2. Lost during a release.  A lost event may arrive while the worker is
 *    fsyncing for a release: the entry drops to NONE and is poisoned at
 *    once; the worker's late release is refused by lockd (not owner),
 *    which is harmless, and it leaves the state alone since it is no
 *    longer RELEASING.
 *
 * 3. Writers during a release wait on o->cond; when the release ends they
 *    acquire again, queueing in lockd behind the node that revoked us.
 *
 * 4. Mapped pages and a revoke.  Dirty pages of a shared mapping are in
 *    the kernel, not here: the kernel sends them as FUSE_WRITE when it
 *    pleases.  Before a release the worker asks the kernel to write them
 *    back (cb writeback, with the file still OWNED, flag wb set), and the
 *    kernel's writeback - including one it had started on its own just
 *    before - must be admitted meanwhile, or the worker waits for the
 *    kernel, which waits for a write that waits for the worker.  So
 *    writeback_begin admits in OWNED whatever revoke_pending and wb say;
 *    ordinary writes do not enter while wb is set, so the pass ends.
 *    Pages dirtied after the pass reach us after the release, and
 *    acquire again like any later write.  The pass needs a free FUSE
 *    worker for each page it writes: ordinary writes to the file that
 *    wait for the revoke each hold one, so with max_threads of them
 *    waiting and dirty mapped pages left, the pass waits too (a program
 *    that maps the file and writes it from that many threads at once,
 *    while another node takes it; raise max_threads for such a one).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "own.h"

#define OWN_BUCKETS 256
#define OWN_LEASE_WAIT_NS 2000000000ull /* first valid lease after connect */
#define OWN_MARGIN_MIN_NS 2000000ull	  /* 2 ms */
#define OWN_MARGIN_MAX_NS 1000000000ull  /* 1 s */

struct cv_own_file {
	uint64_t fileid;	  /* immutable */
	void *obj;		  /* o->lock: set once, held while entry lives */
	enum cv_own_state state;  /* o->lock */
	uint64_t epoch;		  /* o->lock: of the grant held; written
				   * atomically (cv_own_file_epoch) */
	uint64_t gen;		  /* o->lock: poison generation */
	unsigned refs;		  /* o->lock */
	unsigned writers;	  /* o->lock: write handles among refs */
	unsigned inflight;	  /* o->lock: admitted, unfinished writes */
	uint64_t last_write_ns;	  /* o->lock */
	bool revoke_pending;	  /* o->lock */
	bool wb;		  /* o->lock: cb writeback under way */
	struct cv_own_file *next; /* o->lock */
};

struct cv_own {
	const struct cv_own_ops *ops; /* immutable */
	void *arg;		      /* immutable */
	uint64_t idle_ns;	      /* immutable; 0 = never */
	pthread_mutex_t lock;
	pthread_cond_t cond;	      /* any entry or lease change */
	pthread_cond_t wcond;	      /* work for the worker */
	struct cv_own_file *tab[OWN_BUCKETS]; /* lock */
	bool lease_valid;	      /* lock */
	bool lease_seen;	      /* lock: a valid lease yet */
	bool disconnected;	      /* lock: no lockd connection */
	uint64_t lease_deadline_ns;   /* lock */
	uint64_t lease_margin_ns;     /* lock */
	unsigned acquire_timeout_ms;  /* immutable after start */
	bool stop;		      /* lock */
	bool worker_running;	      /* lock */
	pthread_t worker;
};

static uint64_t now_ns(struct cv_own *o)
{
	if (o->ops->now_ns)
		return o->ops->now_ns(o->arg);
	return cv_now_ns();
}

static bool local_mode(struct cv_own *o)
{
	return o->ops->acquire == NULL;
}

int cv_own_new(const struct cv_own_ops *ops, void *arg,
	       unsigned idle_release_ms, struct cv_own **out)
{
	struct cv_own *o = calloc(1, sizeof(*o));
	pthread_condattr_t ca;

	if (!o)
		return -ENOMEM;
	o->ops = ops;
	o->arg = arg;
	o->idle_ns = (uint64_t)idle_release_ms * 1000000ull;
	o->lease_margin_ns = OWN_MARGIN_MIN_NS;
	o->acquire_timeout_ms = CV_OWN_ACQUIRE_TIMEOUT_MS;
	pthread_mutex_init(&o->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&o->cond, &ca);
	pthread_cond_init(&o->wcond, &ca);
	pthread_condattr_destroy(&ca);
	*out = o;
	return 0;
}

void cv_own_set_acquire_timeout(struct cv_own *o, unsigned ms)
{
	o->acquire_timeout_ms = ms ? ms : CV_OWN_ACQUIRE_TIMEOUT_MS;
}

static struct cv_own_file **bucket(struct cv_own *o, uint64_t fileid)
{
	return &o->tab[(fileid * 0x9e3779b97f4a7c15ull) >> 56];
}

static struct cv_own_file *find(struct cv_own *o, uint64_t fileid)
{
	struct cv_own_file *f = *bucket(o, fileid);

	while (f && f->fileid != fileid)
		f = f->next;
	return f;
}

/* With o->lock held. */
static struct cv_own_file *get_entry(struct cv_own *o, uint64_t fileid,
				     void *obj)
{
	struct cv_own_file *f = find(o, fileid), **b;

	if (f) {
		if (!f->obj && obj) { /* created by an event */
			f->obj = obj;
			if (o->ops->hold)
				o->ops->hold(o->arg, obj);
		}
		return f;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->fileid = fileid;
	f->obj = obj;
	if (obj && o->ops->hold)
		o->ops->hold(o->arg, obj);
	b = bucket(o, fileid);
	f->next = *b;
	*b = f;
	return f;
}

/* With o->lock held: free f if nothing refers to it any more. */
static void maybe_free(struct cv_own *o, struct cv_own_file *f)
{
	struct cv_own_file **pp;

	if (f->refs || f->state != CV_OWN_NONE || f->revoke_pending)
		return;
	for (pp = bucket(o, f->fileid); *pp != f; pp = &(*pp)->next)
		;
	*pp = f->next;
	if (f->obj && o->ops->drop)
		o->ops->drop(o->arg, f->obj);
	free(f);
}

struct cv_own_file *cv_own_ref(struct cv_own *o, uint64_t fileid, void *obj,
			       bool writer, uint64_t *gen)
{
	struct cv_own_file *f;

	pthread_mutex_lock(&o->lock);
	f = get_entry(o, fileid, obj);
	if (f) {
		f->refs++;
		f->writers += writer;
		*gen = f->gen;
	}
	pthread_mutex_unlock(&o->lock);
	return f;
}

/*
 * With o->lock held, f OWNED: have the kernel write back its dirty pages
 * of f while writeback writes are still admitted (note 4).
 */
static void writeback(struct cv_own *o, struct cv_own_file *f)
{
	int rc;

	if (!f->obj || !o->ops->writeback)
		return;
	f->wb = true;
	pthread_mutex_unlock(&o->lock);
	rc = o->ops->writeback(o->arg, f->obj);
	pthread_mutex_lock(&o->lock);
	f->wb = false;
	pthread_cond_broadcast(&o->cond);
	if (rc)
		log_res(LOG_WARNING, f->fileid,
			"page cache writeback before release failed: %d", rc);
}

/*
 * Release f: write back mapped pages (wb: a revoke or an idle release;
 * a last close has none left, the kernel wrote them on munmap), wait for
 * in-flight writes, fsync, release in lockd.  Called with o->lock held and
 * a reference on f; returns with it held.
 */
static int do_release(struct cv_own *o, struct cv_own_file *f, bool wb)
{
	uint64_t epoch = f->epoch;
	int rc = 0;

	if (wb) {
		writeback(o, f);
		/* lost, or released by a last close (and maybe acquired
		 * again) while the lock was dropped: nothing of ours left */
		if (f->state != CV_OWN_OWNED || f->epoch != epoch)
			return -EAGAIN;
	}
	f->state = CV_OWN_RELEASING;
	while (f->inflight)
		pthread_cond_wait(&o->cond, &o->lock);
	epoch = f->epoch;
	pthread_mutex_unlock(&o->lock);
	if (f->obj && o->ops->flush)
		rc = o->ops->flush(o->arg, f->obj);
	if (rc)
		log_res(LOG_ERR, f->fileid,
			"fsync before release failed: %d; releasing anyway",
			rc);
	if (!local_mode(o) && o->ops->release)
		rc = o->ops->release(o->arg, f->fileid, epoch);
	pthread_mutex_lock(&o->lock);
	if (f->state == CV_OWN_RELEASING) /* else lost meanwhile (note 2) */
		f->state = CV_OWN_NONE;
	f->revoke_pending = false;
	pthread_cond_broadcast(&o->cond);
	log_res(LOG_DEBUG, f->fileid, "released epoch %llu (%d)",
		(unsigned long long)epoch, rc);
	return rc;
}

void cv_own_unref(struct cv_own *o, struct cv_own_file *f, bool writer)
{
	pthread_mutex_lock(&o->lock);
	if (writer && --f->writers == 0 && f->state == CV_OWN_OWNED &&
	    !local_mode(o))
		do_release(o, f, false);
	f->refs--;
	maybe_free(o, f);
	pthread_mutex_unlock(&o->lock);
}

/* With o->lock held: is the lease good for one more write? */
static bool lease_ok(struct cv_own *o)
{
	uint64_t deadline = now_ns(o) + OWN_LEASE_WAIT_NS;

	if (local_mode(o))
		return true;
	while (!o->lease_seen && !o->disconnected) {
		struct timespec ts = {
			.tv_sec = (time_t)(deadline / 1000000000ull),
			.tv_nsec = (long)(deadline % 1000000000ull),
		};

		if (pthread_cond_timedwait(&o->cond, &o->lock, &ts) ==
		    ETIMEDOUT)
			break;
	}
	if (!o->lease_valid)
		return false;
	return now_ns(o) + o->lease_margin_ns < o->lease_deadline_ns;
}

/* ms left until deadline (ns), at least 1 while not past it, 0 after */
static int ms_left(struct cv_own *o, uint64_t deadline)
{
	uint64_t now = now_ns(o);

	if (now >= deadline)
		return 0;
	return (int)((deadline - now + 999999) / 1000000);
}

/*
 * With o->lock held, f in NONE: acquire EX within the time left.  A
 * writer without ownership must not hang: a VM's guest gives up on an I/O
 * after 30 s or so, and a process in a FUSE request that never returns
 * cannot even be killed by SIGTERM.
 */
static int acquire(struct cv_own *o, struct cv_own_file *f,
		   uint64_t deadline, struct cv_own_wait *w)
{
	uint64_t epoch = 0, t0 = now_ns(o);
	int rc, left = ms_left(o, deadline);

	if (local_mode(o)) {
		f->state = CV_OWN_OWNED;
		return 0;
	}
	if (o->disconnected)
		return -EIO;
	if (!left)
		return -ETIMEDOUT;
	f->state = CV_OWN_ACQUIRING;
	if (w) {
		w->acquiring = true;
		w->fileid = f->fileid;
	}
	pthread_mutex_unlock(&o->lock);
	rc = o->ops->acquire(o->arg, f->fileid, left, &epoch);
	pthread_mutex_lock(&o->lock);
	if (w)
		w->acquiring = false;
	if (f->state == CV_OWN_ACQUIRING) {
		f->state = rc ? CV_OWN_NONE : CV_OWN_OWNED;
		__atomic_store_n(&f->epoch, epoch, __ATOMIC_RELAXED);
	}
	pthread_cond_broadcast(&o->cond);
	if (rc == -EINTR || (rc && w && w->interrupted))
		return -EINTR;
	if (rc == -ETIMEDOUT)
		return -ETIMEDOUT;
	if (rc) {
		log_res(LOG_WARNING, f->fileid, "acquire failed after %llu ms: "
			"%d", (unsigned long long)((now_ns(o) - t0) / 1000000),
			rc);
		return -EIO;
	}
	log_res(LOG_DEBUG, f->fileid, "acquired epoch %llu",
		(unsigned long long)epoch);
	return 0;
}

/* With o->lock held: may a write enter now?  (cached: page writeback) */
static bool admits(struct cv_own_file *f, bool cached)
{
	if (f->state != CV_OWN_OWNED)
		return false;
	return cached || (!f->revoke_pending && !f->wb);
}

/* With o->lock held: wait for a change of f, at most until deadline;
 * -ETIMEDOUT past it. */
static int wait_change(struct cv_own *o, uint64_t deadline)
{
	struct timespec ts = {
		.tv_sec = (time_t)(deadline / 1000000000ull),
		.tv_nsec = (long)(deadline % 1000000000ull),
	};

	if (o->ops->now_ns) /* a fake clock: the deadline means nothing */
		pthread_cond_wait(&o->cond, &o->lock);
	else if (pthread_cond_timedwait(&o->cond, &o->lock, &ts) == ETIMEDOUT)
		return -ETIMEDOUT;
	return 0;
}

/* With o->lock held: f is OWNED; admit one write if the lease allows. */
static int admit(struct cv_own *o, struct cv_own_file *f)
{
	if (!lease_ok(o)) {
		log_res(LOG_ERR, f->fileid, "write refused: no valid lease");
		return -EIO;
	}
	return 0;
}

static int timed_out(struct cv_own *o, struct cv_own_file *f)
{
	log_res(LOG_ERR, f->fileid, "write refused with EIO: no write "
		"ownership after %u ms (acquire_timeout): the lock manager "
		"did not grant it - see csvfs-lockd's log and "
		"csvfs-admin status (quorum, owner of this file)",
		o->acquire_timeout_ms);
	return -EIO;
}

static int write_begin(struct cv_own *o, struct cv_own_file *f, uint64_t gen,
		       bool cached, struct cv_own_wait *w)
{
	uint64_t deadline;
	int rc;

	pthread_mutex_lock(&o->lock);
	deadline = now_ns(o) + o->acquire_timeout_ms * 1000000ull;
	for (;;) {
		if (gen != f->gen) {
			rc = -EIO; /* poisoned: ownership was lost */
			break;
		}
		if (w && w->interrupted) {
			rc = -EINTR;
			break;
		}
		if (admits(f, cached)) {
			rc = admit(o, f);
			if (rc)
				break;
			if (gen != f->gen || !admits(f, cached))
				continue;
			f->inflight++;
			f->last_write_ns = now_ns(o);
			break;
		}
		if (f->state == CV_OWN_NONE) {
			rc = acquire(o, f, deadline, w);
			if (rc == -ETIMEDOUT)
				rc = timed_out(o, f);
			if (rc)
				break;
			continue;
		}
		/* ACQUIRING by another writer, RELEASING, revoke pending */
		if (wait_change(o, deadline)) {
			rc = timed_out(o, f);
			break;
		}
	}
	pthread_mutex_unlock(&o->lock);
	return rc;
}

int cv_own_write_begin(struct cv_own *o, struct cv_own_file *f, uint64_t gen)
{
	return write_begin(o, f, gen, false, NULL);
}

int cv_own_write_try_begin(struct cv_own *o, struct cv_own_file *f,
			   uint64_t gen)
{
	int rc = -EAGAIN;

	pthread_mutex_lock(&o->lock);
	if (gen != f->gen) {
		rc = -EIO; /* poisoned: ownership was lost */
	} else if (admits(f, false)) {
		rc = admit(o, f);
		if (!rc) {
			f->inflight++;
			f->last_write_ns = now_ns(o);
		}
	}
	pthread_mutex_unlock(&o->lock);
	return rc;
}

int cv_own_writeback_begin(struct cv_own *o, struct cv_own_file *f,
			   uint64_t gen)
{
	return write_begin(o, f, gen, true, NULL);
}

int cv_own_write_begin_wait(struct cv_own *o, struct cv_own_file *f,
			    uint64_t gen, struct cv_own_wait *w)
{
	return write_begin(o, f, gen, false, w);
}

/*
 * From a FUSE interrupt: the writer got a signal.  A blocked acquire is
 * canceled in lockd (outside o->lock: that talks to lockd); if the
 * acquire is not registered there yet, the cancel is tried again for a
 * short while, after which the acquire timeout still bounds the wait.
 */
void cv_own_interrupt(struct cv_own *o, struct cv_own_wait *w)
{
	struct timespec pause = { .tv_nsec = 10000000 };
	uint64_t fileid;
	bool acquiring;

	for (int tries = 0; tries < 50; tries++) {
		pthread_mutex_lock(&o->lock);
		w->interrupted = true;
		pthread_cond_broadcast(&o->cond);
		acquiring = w->acquiring;
		fileid = w->fileid;
		pthread_mutex_unlock(&o->lock);
		if (!acquiring || !o->ops->acquire_cancel ||
		    o->ops->acquire_cancel(o->arg, fileid) != -ENOENT)
			return;
		nanosleep(&pause, NULL);
	}
}

void cv_own_write_end(struct cv_own *o, struct cv_own_file *f)
{
	pthread_mutex_lock(&o->lock);
	if (--f->inflight == 0)
		pthread_cond_broadcast(&o->cond);
	pthread_mutex_unlock(&o->lock);
}

void cv_own_ev_lease(struct cv_own *o, bool valid, uint64_t deadline_ns)
{
	uint64_t now = now_ns(o), margin;

	pthread_mutex_lock(&o->lock);
	/* lockd tells a new client "no lease" at once; the first write
	 * waits for the first valid one (lease_ok), not for that. */
	if (valid)
		o->lease_seen = true;
	o->lease_valid = valid;
	o->lease_deadline_ns = deadline_ns;
	if (valid && deadline_ns > now) {
		margin = (deadline_ns - now) / 10;
		if (margin < OWN_MARGIN_MIN_NS)
			margin = OWN_MARGIN_MIN_NS;
		if (margin > OWN_MARGIN_MAX_NS)
			margin = OWN_MARGIN_MAX_NS;
		o->lease_margin_ns = margin;
	}
	pthread_cond_broadcast(&o->cond);
	pthread_mutex_unlock(&o->lock);
}

void cv_own_ev_revoke(struct cv_own *o, uint64_t fileid, uint64_t epoch)
{
	struct cv_own_file *f;

	pthread_mutex_lock(&o->lock);
	f = get_entry(o, fileid, NULL);
	if (f) {
		if (f->state == CV_OWN_NONE) {
			/* lockd thinks we own it: answer anyway */
			f->state = CV_OWN_OWNED;
			__atomic_store_n(&f->epoch, epoch, __ATOMIC_RELAXED);
		}
		f->revoke_pending = true;
		pthread_cond_signal(&o->wcond);
	} else {
		log_res(LOG_ERR, fileid, "revoke dropped: out of memory");
	}
	pthread_mutex_unlock(&o->lock);
}

/*
 * An unsolicited grant: a hand-off made this node the owner ahead of its
 * first write.  lockd keeps that grant for the local client that claims
 * it with an acquire (answered at once, with this epoch, no cluster
 * round trip); only a claimant is a holder that lockd asks to flush and
 * release on a revoke, and an unclaimed grant is released after
 * handoff_idle_ms.  So the entry is not marked OWNED here: the first
 * write acquires as usual.  Marking it OWNED made this node write
 * without being a holder, and lockd then released the file on the next
 * revoke (or after handoff_idle_ms) while csvfs went on writing.
 */
void cv_own_ev_granted(struct cv_own *o, uint64_t fileid, uint64_t epoch)
{
	(void)o;
	log_res(LOG_DEBUG, fileid, "handed off to this node (epoch %llu): "
		"the first write claims it", (unsigned long long)epoch);
}

/* With o->lock held. */
static void lose(struct cv_own *o, struct cv_own_file *f)
{
	if (f->state == CV_OWN_NONE)
		return;
	log_res(LOG_ERR, f->fileid,
		"ownership lost (epoch %llu): open write handles poisoned",
		(unsigned long long)f->epoch);
	f->gen++;
	f->state = CV_OWN_NONE;
	f->revoke_pending = false;
}

void cv_own_ev_lost(struct cv_own *o, uint64_t fileid)
{
	struct cv_own_file *f;

	pthread_mutex_lock(&o->lock);
	f = find(o, fileid);
	if (f) {
		lose(o, f);
		pthread_cond_broadcast(&o->cond);
		maybe_free(o, f);
	}
	pthread_mutex_unlock(&o->lock);
}

void cv_own_ev_disconnect(struct cv_own *o)
{
	pthread_mutex_lock(&o->lock);
	o->disconnected = true;
	o->lease_valid = false;
	o->lease_seen = true;
	for (int b = 0; b < OWN_BUCKETS; b++) {
		struct cv_own_file *f = o->tab[b], *next;

		for (; f; f = next) {
			next = f->next;
			lose(o, f);
			maybe_free(o, f);
		}
	}
	pthread_cond_broadcast(&o->cond);
	pthread_mutex_unlock(&o->lock);
}

void cv_own_ev_poison_all(struct cv_own *o)
{
	pthread_mutex_lock(&o->lock);
	for (int b = 0; b < OWN_BUCKETS; b++) {
		struct cv_own_file *f = o->tab[b], *next;

		for (; f; f = next) {
			next = f->next;
			lose(o, f);
			maybe_free(o, f);
		}
	}
	pthread_cond_broadcast(&o->cond);
	pthread_mutex_unlock(&o->lock);
}

void cv_own_ev_reconnect(struct cv_own *o)
{
	pthread_mutex_lock(&o->lock);
	o->disconnected = false;
	o->lease_valid = false;
	o->lease_seen = false; /* writes wait for the new lease event */
	pthread_cond_broadcast(&o->cond);
	pthread_mutex_unlock(&o->lock);
}

/* With o->lock held: an entry with work due, or NULL. */
static struct cv_own_file *due(struct cv_own *o, uint64_t now)
{
	for (int b = 0; b < OWN_BUCKETS; b++) {
		for (struct cv_own_file *f = o->tab[b]; f; f = f->next) {
			if (f->state != CV_OWN_OWNED)
				continue;
			if (f->revoke_pending)
				return f;
			if (o->idle_ns && !local_mode(o) && !f->inflight &&
			    now - f->last_write_ns >= o->idle_ns)
				return f;
		}
	}
	return NULL;
}

/* With o->lock held. */
static int run_due(struct cv_own *o)
{
	struct cv_own_file *f;
	int n = 0;

	while (!o->stop && (f = due(o, now_ns(o)))) {
		f->refs++;
		do_release(o, f, true);
		f->refs--;
		maybe_free(o, f);
		n++;
	}
	return n;
}

int cv_own_run_pending(struct cv_own *o)
{
	int n;

	pthread_mutex_lock(&o->lock);
	n = run_due(o);
	pthread_mutex_unlock(&o->lock);
	return n;
}

static void *worker(void *arg)
{
	struct cv_own *o = arg;
	uint64_t tick = o->idle_ns ? o->idle_ns / 4 : 1000000000ull;

	if (tick > 1000000000ull)
		tick = 1000000000ull;
	if (tick < 10000000ull)
		tick = 10000000ull;
	pthread_mutex_lock(&o->lock);
	while (!o->stop) {
		struct timespec ts;

		run_due(o);
		ts = cv_timespec_of(cv_now_ns() + tick);
		if (!o->stop)
			pthread_cond_timedwait(&o->wcond, &o->lock, &ts);
	}
	pthread_mutex_unlock(&o->lock);
	return NULL;
}

int cv_own_start(struct cv_own *o)
{
	int rc = pthread_create(&o->worker, NULL, worker, o);

	if (rc)
		return -rc;
	o->worker_running = true;
	return 0;
}

void cv_own_free(struct cv_own *o)
{
	if (!o)
		return;
	pthread_mutex_lock(&o->lock);
	o->stop = true;
	pthread_cond_broadcast(&o->wcond);
	pthread_mutex_unlock(&o->lock);
	if (o->worker_running)
		pthread_join(o->worker, NULL);
	pthread_mutex_lock(&o->lock);
	for (int b = 0; b < OWN_BUCKETS; b++) {
		struct cv_own_file *f, *next;

		for (f = o->tab[b]; f; f = next) {
			next = f->next;
			if (f->state == CV_OWN_OWNED && !local_mode(o)) {
				f->refs++;
				do_release(o, f, false);
			}
			if (f->obj && o->ops->drop)
				o->ops->drop(o->arg, f->obj);
			free(f);
		}
		o->tab[b] = NULL;
	}
	pthread_mutex_unlock(&o->lock);
	pthread_cond_destroy(&o->cond);
	pthread_cond_destroy(&o->wcond);
	pthread_mutex_destroy(&o->lock);
	free(o);
}

enum cv_own_state cv_own_state_of(struct cv_own *o, uint64_t fileid,
				  uint64_t *epoch)
{
	struct cv_own_file *f;
	enum cv_own_state s = CV_OWN_NONE;

	pthread_mutex_lock(&o->lock);
	f = find(o, fileid);
	if (f) {
		s = f->state;
		if (epoch)
			*epoch = f->epoch;
	}
	pthread_mutex_unlock(&o->lock);
	return s;
}

uint64_t cv_own_lease_margin(struct cv_own *o)
{
	uint64_t m;

	pthread_mutex_lock(&o->lock);
	m = o->lease_margin_ns;
	pthread_mutex_unlock(&o->lock);
	return m;
}

uint64_t cv_own_file_epoch(const struct cv_own_file *f)
{
	return __atomic_load_n(&f->epoch, __ATOMIC_RELAXED);
}
