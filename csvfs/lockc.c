// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lockc.c - glue between csvfs and liblockmgr (see lockc.h).
 *
 * Timeouts: connect 5 s; acquire as long as own.c asks (what is left of
 * the mount's acquire_timeout, default 15 s, at most 600 s: a revoke on
 * another node waits for that node's in-flight writes and an fsync, but
 * past that the write fails with EIO rather than hang a VM; 60 s for a
 * caller that names no time-out); an acquire can also be
 * canceled from another thread (a FUSE interrupt); release and queries
 * 10 s; a blocking F_SETLKW waits until granted or interrupted.
 *
 * lockd restarts: when the connection breaks, the lease ends and every
 * file this mount owned is poisoned (own.c), as doc/design.md §2.4 demands;
 * then a reconnect thread says hello again once a second, and when lockd
 * answers (as the same node) the new connection replaces the old one:
 * new writes acquire ownership again, handles opened before stay
 * poisoned.  Locks taken through the old connection are gone from the
 * cluster's table (the old session was fenced or shut down); they are
 * not taken again behind the application's back.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "lkm.h"
#include "lockc.h"
#include "log.h"
#include "own.h"

#define LOCKC_CONNECT_MS 5000
#define LOCKC_ACQUIRE_MS 60000
#define LOCKC_CALL_MS	 10000
#define LOCKC_RETRY_MS	 1000

struct cv_lockc {
	/* c is replaced on a reconnect: calls hold clock shared, the
	 * reconnect thread holds it exclusive to swap (writer-preferring,
	 * so a stream of calls cannot starve it). */
	pthread_rwlock_t clock;
	struct lkm_client *c;		  /* clock */
	uint8_t volume[LM_VOLUME_LEN];	  /* immutable */
	char node[LM_NAME_MAX];		  /* immutable: lockd's node name */
	uint32_t node_id;		  /* immutable: lockd's node id */
	char *path;			  /* immutable: lockd's socket */
	char *label, *vol_label, *source; /* immutable: the hello */

	/* evlock serialises event dispatch against cv_lockc_stop() */
	pthread_mutex_t evlock;
	struct cv_own *own;   /* evlock; NULL once stopped */
	cv_owner_fn on_owner; /* immutable after start */
	void *arg;	      /* immutable after start */

	uint64_t kept; /* atomic: a file id the backend holds for good
			* (block coordinator), 0: none; revokes of it are
			* refused, never passed to own */

	pthread_mutex_t rlock; /* protects the four below */
	pthread_cond_t rcond;
	bool broken; /* the connection broke: reconnect */
	bool stop;
	bool reconnector_on;
	pthread_t reconnector;
};

static void lockc_free(struct cv_lockc *lc)
{
	pthread_rwlock_destroy(&lc->clock);
	pthread_mutex_destroy(&lc->evlock);
	pthread_mutex_destroy(&lc->rlock);
	pthread_cond_destroy(&lc->rcond);
	free(lc->path);
	free(lc->label);
	free(lc->vol_label);
	free(lc->source);
	free(lc);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static struct cv_lockc *lockc_new(const char *path,
				  const struct cv_lockc_mount *mnt)
{
	struct cv_lockc *lc = calloc(1, sizeof(*lc));
	pthread_rwlockattr_t ra;
	pthread_condattr_t ca;

	if (!lc)
		return NULL;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(
		&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&lc->clock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&lc->evlock, NULL);
	pthread_mutex_init(&lc->rlock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&lc->rcond, &ca);
	pthread_condattr_destroy(&ca);
	memcpy(lc->volume, mnt->volume, LM_VOLUME_LEN);
	lc->path = strdup(path);
	lc->label = dup_or_null(mnt->mountpoint);
	lc->vol_label = dup_or_null(mnt->vol_label);
	lc->source = dup_or_null(mnt->source);
	if (!lc->path || (mnt->mountpoint && !lc->label) ||
	    (mnt->vol_label && !lc->vol_label) ||
	    (mnt->source && !lc->source)) {
		lockc_free(lc);
		return NULL;
	}
	return lc;
}

static int say_hello(const struct cv_lockc *lc, struct lkm_client **out,
		     char *why, size_t whylen)
{
	struct lkm_hello hello = {
		.kind = LM_CLIENT_CSVFS,
		.label = lc->label,
		.vol_label = lc->vol_label,
		.source = lc->source,
	};

	memcpy(hello.volume, lc->volume, LM_VOLUME_LEN);
	return lkm_connect_err(lc->path, &hello, LOCKC_CONNECT_MS, out, why,
			       whylen);
}

int cv_lockc_connect(const char *path, const struct cv_lockc_mount *mnt,
		     const char *node, char *err, size_t errlen,
		     struct cv_lockc **out)
{
	const struct lkm_server_info *si;
	struct cv_lockc *lc;
	char why[256] = "";
	int rc;

	lc = lockc_new(path, mnt);
	if (!lc) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = say_hello(lc, &lc->c, why, sizeof(why));
	if (rc == -EPROTONOSUPPORT) {
		snprintf(err, errlen, "cannot use csvfs-lockd at %s: %s", path,
			 why);
		goto fail;
	}
	if (rc) {
		snprintf(err, errlen,
			 "cannot connect to csvfs-lockd at %s: %s "
			 "(is csvfs-lockd running? see -o lockd=PATH)",
			 path, lkm_strerror(rc));
		goto fail;
	}
	si = lkm_server(lc->c);
	snprintf(lc->node, sizeof(lc->node), "%s", si->node_name);
	lc->node_id = si->node_id;
	if (node && *node && strcmp(node, lc->node)) {
		snprintf(err, errlen,
			 "node=%s given but csvfs-lockd at %s is node '%s'",
			 node, path, lc->node);
		rc = -EINVAL;
		goto fail_close;
	}
	*out = lc;
	return 0;

fail_close:
	lkm_close(lc->c);
fail:
	lockc_free(lc);
	return rc;
}

static void on_event(const struct lkm_event *ev, void *arg)
{
	struct cv_lockc *lc = arg;

	pthread_mutex_lock(&lc->evlock);
	if (!lc->own) { /* stopped: the mount is going away */
		pthread_mutex_unlock(&lc->evlock);
		return;
	}
	switch (ev->type) {
	case LKM_EV_LEASE:
		cv_own_ev_lease(lc->own, ev->lease_valid,
				ev->lease_deadline_ns);
		break;
	case LKM_EV_GRANTED:
		cv_own_ev_granted(lc->own, ev->fileid, ev->epoch);
		break;
	case LKM_EV_REVOKE:
		if (ev->fileid && ev->fileid == __atomic_load_n(
					  &lc->kept, __ATOMIC_ACQUIRE)) {
			log_res(LOG_WARNING, ev->fileid, "revoke refused: "
				"held for this volume's coordinator");
			break;
		}
		cv_own_ev_revoke(lc->own, ev->fileid, ev->epoch);
		break;
	case LKM_EV_OWNER:
		if (lc->on_owner)
			lc->on_owner(lc->arg, ev->fileid);
		break;
	case LKM_EV_LOST:
		cv_own_ev_lost(lc->own, ev->fileid);
		break;
	case LKM_EV_BROKEN:
		log_err("connection to csvfs-lockd lost: lease ended, files "
			"open for write are poisoned (EIO), cluster-wide locks "
			"taken through this mount are gone; reconnecting");
		cv_own_ev_disconnect(lc->own);
		pthread_mutex_lock(&lc->rlock);
		lc->broken = true;
		pthread_cond_broadcast(&lc->rcond);
		pthread_mutex_unlock(&lc->rlock);
		break;
	default:
		log_debug("ignoring lockd event type %u", ev->type);
		break;
	}
	pthread_mutex_unlock(&lc->evlock);
}

/*
 * One reconnect attempt.  Returns 0 once the new connection is in place
 * and delivers events; -errno otherwise (*logged tells whether a failure
 * was already reported, so an outage logs one line, not one a second).
 */
static int reconnect(struct cv_lockc *lc, bool *logged)
{
	struct lkm_client *nc, *old;
	char why[256] = "";
	const char *name;
	int rc;

	rc = say_hello(lc, &nc, why, sizeof(why));
	if (rc) {
		if (!*logged)
			log_warn("csvfs-lockd at %s unreachable: %s; writes "
				 "fail with EIO until it is back (retrying "
				 "every %d ms)", lc->path,
				 rc == -EPROTONOSUPPORT ? why :
							  lkm_strerror(rc),
				 LOCKC_RETRY_MS);
		*logged = true;
		return rc;
	}
	name = lkm_server(nc)->node_name;
	if (strcmp(name, lc->node)) {
		if (!*logged)
			log_err("csvfs-lockd at %s is now node '%s', not '%s' "
				"as at mount time: not reconnecting (remount "
				"to change nodes)",
				lc->path, name, lc->node);
		*logged = true;
		lkm_close(nc);
		return -EINVAL;
	}
	pthread_rwlock_wrlock(&lc->clock);
	old = lc->c;
	lc->c = nc;
	pthread_rwlock_unlock(&lc->clock);
	lkm_close(old); /* its reader thread has ended (it reported EOF) */
	pthread_mutex_lock(&lc->evlock);
	if (lc->own)
		cv_own_ev_reconnect(lc->own);
	pthread_mutex_unlock(&lc->evlock);
	rc = lkm_start_events(nc, on_event, lc);
	if (rc) {
		/* broke again at once: no break event will come */
		pthread_mutex_lock(&lc->evlock);
		if (lc->own)
			cv_own_ev_disconnect(lc->own);
		pthread_mutex_unlock(&lc->evlock);
		return rc;
	}
	log_notice("reconnected to csvfs-lockd at %s (node %s): new writes "
		   "acquire ownership again; descriptors open for write "
		   "before stay poisoned (EIO)",
		   lc->path, lc->node);
	*logged = false;
	return 0;
}

static void *reconnector_main(void *arg)
{
	struct cv_lockc *lc = arg;
	bool logged = false;

	pthread_mutex_lock(&lc->rlock);
	while (!lc->stop) {
		struct timespec ts;

		if (!lc->broken) {
			pthread_cond_wait(&lc->rcond, &lc->rlock);
			continue;
		}
		/* cleared first: a break of the new connection sets it again */
		lc->broken = false;
		pthread_mutex_unlock(&lc->rlock);
		if (reconnect(lc, &logged) == 0) {
			pthread_mutex_lock(&lc->rlock);
			continue;
		}
		pthread_mutex_lock(&lc->rlock);
		lc->broken = true;
		ts = cv_deadline_ms(LOCKC_RETRY_MS);
		while (!lc->stop &&
		       pthread_cond_timedwait(&lc->rcond, &lc->rlock, &ts) !=
			       ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&lc->rlock);
	return NULL;
}

int cv_lockc_start(struct cv_lockc *lc, struct cv_own *own,
		   cv_owner_fn on_owner, void *arg)
{
	int rc;

	pthread_mutex_lock(&lc->evlock);
	lc->own = own;
	lc->on_owner = on_owner;
	lc->arg = arg;
	pthread_mutex_unlock(&lc->evlock);
	rc = -pthread_create(&lc->reconnector, NULL, reconnector_main, lc);
	if (rc)
		return rc;
	lc->reconnector_on = true;
	return lkm_start_events(lc->c, on_event, lc);
}

void cv_lockc_stop(struct cv_lockc *lc)
{
	if (!lc)
		return;
	pthread_mutex_lock(&lc->rlock);
	lc->stop = true;
	pthread_cond_broadcast(&lc->rcond);
	pthread_mutex_unlock(&lc->rlock);
	if (lc->reconnector_on)
		pthread_join(lc->reconnector, NULL);
	lc->reconnector_on = false;
	pthread_mutex_lock(&lc->evlock);
	lc->own = NULL;
	pthread_mutex_unlock(&lc->evlock);
}

void cv_lockc_close(struct cv_lockc *lc)
{
	if (!lc)
		return;
	cv_lockc_stop(lc);
	lkm_close(lc->c);
	lockc_free(lc);
}

/* The current connection, held shared until put_client(). */
static struct lkm_client *get_client(struct cv_lockc *lc)
{
	pthread_rwlock_rdlock(&lc->clock);
	return lc->c;
}

static void put_client(struct cv_lockc *lc)
{
	pthread_rwlock_unlock(&lc->clock);
}

/* Why an acquire of fileid is not granted, as lockd sees it now. */
static void explain_wait(struct lkm_client *c, const uint8_t *volume,
			 uint64_t fileid, char *buf, size_t len)
{
	struct lm_s_r_status s;
	struct lm_owner_entry *v = NULL;
	struct lm_res res = { .fileid = fileid };
	size_t n = 0;

	memcpy(res.volume, volume, LM_VOLUME_LEN);
	if (lkm_status(c, &s) < 0) {
		snprintf(buf, len, "lockd does not answer");
		return;
	}
	if (!s.quorate) {
		snprintf(buf, len, "this node's lock table is not quorate "
			 "(corosync: %u of %u votes, %u needed)",
			 s.q.total_votes, s.q.expected_votes, s.q.quorum);
		return;
	}
	if (s.syncing) {
		snprintf(buf, len, "a state transfer is under way");
		return;
	}
	if (lkm_owners(c, &res, &v, &n) == 0 && n && v[0].owner)
		snprintf(buf, len, "node id %u owns it and has not released "
			 "it (epoch %llu%s)", v[0].owner,
			 (unsigned long long)v[0].epoch,
			 v[0].revoking ? ", asked to revoke" : "");
	else
		snprintf(buf, len, "no grant came in time");
	free(v);
}

int cv_lockc_acquire(void *arg, uint64_t fileid, int timeout_ms,
		     uint64_t *epoch)
{
	struct cv_lockc *lc = arg;
	struct lkm_client *c = get_client(lc);
	char why[160];
	int rc;

	if (timeout_ms <= 0)
		timeout_ms = LOCKC_ACQUIRE_MS;
	rc = lkm_acquire(c, fileid, 0, timeout_ms, epoch);
	if (rc == -LM_ERR_CANCELED)
		rc = -EINTR;
	if (rc == -ETIMEDOUT) {
		explain_wait(c, lc->volume, fileid, why, sizeof(why));
		log_res(LOG_ERR, fileid, "no write ownership after %d ms: %s",
			timeout_ms, why);
	}
	put_client(lc);
	return rc;
}

int cv_lockc_try_keep(struct cv_lockc *lc, uint64_t fileid, uint64_t *epoch,
		      char *holder, size_t cap)
{
	uint64_t e;
	int rc;

	holder[0] = '\0';
	rc = lkm_acquire(get_client(lc), fileid, LM_ACQ_NOWAIT, LOCKC_CALL_MS,
			 epoch);
	put_client(lc);
	if (rc == -EAGAIN) {
		if (cv_lockc_owner(lc, fileid, holder, cap, &e) || !holder[0])
			snprintf(holder, cap, "(unknown)");
		return -EAGAIN;
	}
	if (rc <= -LM_ERR_BASE) {
		snprintf(holder, cap, "%s", lkm_strerror(rc));
		rc = -ENOLCK; /* holder says why */
	}
	if (!rc)
		__atomic_store_n(&lc->kept, fileid, __ATOMIC_RELEASE);
	return rc;
}

const char *cv_lockc_node(const struct cv_lockc *lc)
{
	return lc->node;
}

uint32_t cv_lockc_node_id(const struct cv_lockc *lc)
{
	return lc->node_id;
}

int cv_lockc_acquire_cancel(void *arg, uint64_t fileid)
{
	struct cv_lockc *lc = arg;
	int rc = lkm_acquire_cancel(get_client(lc), fileid);

	put_client(lc);
	return rc;
}

int cv_lockc_release(void *arg, uint64_t fileid, uint64_t epoch)
{
	struct cv_lockc *lc = arg;
	int rc;

	rc = lkm_release(get_client(lc), fileid, epoch, LOCKC_CALL_MS);
	put_client(lc);
	if (rc && rc != -LM_ERR_NOTOWNER)
		log_res(LOG_WARNING, fileid, "release failed: %s",
			lkm_strerror(rc));
	return rc;
}

/* lockd's conditions as the errno a lock call would give. */
static int map_err(int rc)
{
	if (rc >= 0 || rc > -LM_ERR_BASE)
		return rc;
	if (rc == -LM_ERR_CANCELED)
		return -EINTR;
	if (rc == -LM_ERR_TIMEDOUT)
		return -ETIMEDOUT;
	return -ENOLCK;
}

int cv_lockc_plock(struct cv_lockc *lc, const struct lkm_plock *req)
{
	int ms = req->op == LM_PL_SETW ? -1 : LOCKC_CALL_MS;
	int rc = lkm_plock(get_client(lc), req, ms);

	put_client(lc);
	return map_err(rc);
}

int cv_lockc_getlk(struct cv_lockc *lc, const struct lkm_plock *req,
		   struct lm_lock_entry *conflict)
{
	int rc = lkm_getlk(get_client(lc), req, conflict);

	put_client(lc);
	return map_err(rc);
}

int cv_lockc_owner(struct cv_lockc *lc, uint64_t fileid, char *name, size_t cap,
		   uint64_t *epoch)
{
	struct lm_res res = { .fileid = fileid };
	struct lm_owner_entry *ov = NULL;
	struct lm_node_entry *nv = NULL;
	struct lkm_client *c = get_client(lc);
	size_t no = 0, nn = 0;
	int rc;

	memcpy(res.volume, lc->volume, LM_VOLUME_LEN);
	name[0] = '\0';
	*epoch = 0;
	rc = lkm_owners(c, &res, &ov, &no);
	for (size_t i = 0; !rc && i < no; i++) {
		if (ov[i].res.fileid != fileid || !ov[i].owner)
			continue;
		*epoch = ov[i].epoch;
		rc = lkm_nodes(c, &nv, &nn);
		for (size_t j = 0; !rc && j < nn; j++)
			if (nv[j].id == ov[i].owner)
				snprintf(name, cap, "%s", nv[j].name);
		if (!rc && !name[0])
			snprintf(name, cap, "node%u", ov[i].owner);
		break;
	}
	put_client(lc);
	free(ov);
	free(nv);
	return rc ? -EIO : 0;
}
