// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * replica_ship.c - the replication thread: every interval, for each
 * replication group whose files this node owns, a crash-consistent
 * recovery point, shipped to csvfs-replicad (replica/client.h).
 *
 * A point: the optional hook is run with "freeze"; new requests of the
 * group are held (group_enter waits on g->hold) and those in flight
 * drained; every file's bitmap is frozen and its size taken; the hold
 * ends (a few milliseconds) and the hook runs with "thaw".  Then the
 * frozen granules are sent in file order: each is claimed under the
 * tracker's cbw_lock and read from the file, or, if a write claimed it
 * first, taken from the copy that write made aside (replica.c
 * copy_aside).  So every byte sent is the file as it was at the freeze.
 * A point that fails, or whose file was handed to another node meanwhile
 * (g->aborted), or whose copies outgrew REP_CBW_MAX_BYTES, is abandoned:
 * its granules go back to the dirty set and the next interval tries
 * again with a new point.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "inode.h"
#include "lockc.h"
#include "log.h"
#include "own.h"
#include "replica_i.h"

#ifdef CSVFS_HAVE_REPLICA
#include "client.h"
#endif

#define REP_TICK_MS	  1000
#define REP_SCAN_EVERY_MS 2000
#define REP_DRAIN_MS	  5000
#define REP_HOOK_MS	  60000
#define REP_EXTENT_MAX	  ((size_t)1 << 20)

extern char **environ;

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int64_t real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One file of a point. */
struct pfile {
	struct cv_rep_file *f;
	uint64_t epoch, size;
	char name[REP_NAME_MAX];
	bool initial;
	struct rt_bits frozen;	     /* as frozen, for an abandon */
	struct be_file *file;	     /* read handle for the shipping */
	struct cv_own_file *adopted; /* taken to ship it: released after */
};

struct point {
	struct rep_group *g;
	struct pfile *files;
	size_t n;
	int64_t time_ns;
	uint64_t bytes;
	char err[256];
};

/* The hook "freeze|thaw GROUP", at most REP_HOOK_MS: 0 or -errno. */
static int run_hook(struct rep_group *g, const char *hook, const char *what)
{
	char *argv[] = { (char *)"/bin/sh",
			 (char *)"-c",
			 NULL,
			 (char *)"csvfs-replica-hook",
			 (char *)what,
			 (char *)g->name,
			 NULL };
	pid_t pid;
	int st, rc;

	if (!hook[0])
		return 0;
	if (asprintf(&argv[2], "%s \"$1\" \"$2\"", hook) < 0)
		return -ENOMEM;
	rc = posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ);
	free(argv[2]);
	if (rc)
		return -rc;
	for (int i = 0; i < REP_HOOK_MS / 10; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) && !WEXITSTATUS(st) ? 0 : -EIO;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -ETIMEDOUT;
}

/*
 * A file of the group that nobody owns but whose changes are not all
 * shipped (its writer closed it: the release handed them off to the
 * volume) is taken by this node for the point, as a writer would, and
 * given back after it.  Never from another node: only when lockd says
 * nobody holds it.
 */
static void adopt(struct cv_rep *r, struct cv_rep_file *f, struct pfile *pf)
{
	struct cv_fs *fs = r->fs;
	struct cv_inode *ino = atomic_load(&f->ino);
	struct cv_own_file *of;
	char owner[64];
	uint64_t epoch, gen;

	if (!fs->lc || !ino || !atomic_load(&f->enabled) ||
	    cv_lockc_owner(fs->lc, f->fileid, owner, sizeof(owner), &epoch) ||
	    owner[0] || !rep_pending(f))
		return;
	of = cv_own_ref(fs->own, f->fileid, ino, true, &gen);
	if (!of)
		return;
	if (cv_own_write_begin(fs->own, of, gen)) {
		cv_own_unref(fs->own, of, true);
		return;
	}
	pf->epoch = cv_own_file_epoch(of);
	cv_own_write_end(fs->own, of);
	pf->adopted = of;
	log_info("replica: file %016" PRIx64 " taken to ship its changes "
		 "(no owner)",
		 f->fileid);
}

/* Add the group's files nobody owns that have changes to ship. */
static void orphans(struct cv_rep *r, struct point *p, size_t cap)
{
	struct cv_rep_file *cand[REP_FILES];
	size_t n = 0;

	if (!r->fs->lc)
		return;
	pthread_mutex_lock(&r->lock);
	for (struct cv_rep_file *f = r->files; f && n < REP_FILES; f = f->next)
		if (atomic_load(&f->g) == p->g && atomic_load(&f->enabled) &&
		    atomic_load(&f->ino))
			cand[n++] = f;
	pthread_mutex_unlock(&r->lock);
	for (size_t i = 0; i < n && p->n < cap; i++) {
		struct pfile *pf = &p->files[p->n];
		bool have = false;

		for (size_t k = 0; k < p->n; k++)
			have = have || p->files[k].f == cand[i];
		if (have)
			continue;
		adopt(r, cand[i], pf);
		if (!pf->adopted)
			continue;
		pf->f = cand[i];
		pthread_mutex_lock(&r->lock);
		pf->initial = cand[i]->initial;
		snprintf(pf->name, sizeof(pf->name), "%s", cand[i]->name);
		pthread_mutex_unlock(&r->lock);
		p->n++;
	}
}

/* The group's files this node owns and tracks (r->lock not held). */
static int collect(struct cv_rep *r, struct point *p)
{
	struct cv_fs *fs = r->fs;
	size_t cap = 0;

	pthread_mutex_lock(&r->lock);
	for (struct cv_rep_file *f = r->files; f; f = f->next)
		if (atomic_load(&f->g) == p->g && atomic_load(&f->enabled))
			cap++;
	p->files = calloc(cap ? cap : 1, sizeof(*p->files));
	for (struct cv_rep_file *f = r->files; p->files && f; f = f->next) {
		struct pfile *pf = &p->files[p->n];
		uint64_t epoch = 0;

		if (atomic_load(&f->g) != p->g || !atomic_load(&f->enabled) ||
		    !atomic_load(&f->ino) || p->n == cap ||
		    cv_own_state_of(fs->own, f->fileid, &epoch) != CV_OWN_OWNED)
			continue;
		pf->f = f;
		pf->epoch = epoch;
		pf->initial = f->initial;
		snprintf(pf->name, sizeof(pf->name), "%s", f->name);
		p->n++;
	}
	pthread_mutex_unlock(&r->lock);
	if (!p->files)
		return -ENOMEM;
	orphans(r, p, cap);
	for (size_t i = 0; i < p->n; i++) {
		int rc = rt_load(p->files[i].f->t, p->files[i].epoch);

		if (rc)
			return rc;
	}
	return 0;
}

/* Hold the group's new requests, drain, freeze, release. */
static int freeze(struct cv_rep *r, struct point *p)
{
	struct rep_group *g = p->g;
	struct timespec dl;
	uint64_t t0, us;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += REP_DRAIN_MS / 1000;
	pthread_mutex_lock(&g->mu);
	t0 = mono_ns();
	g->hold = true;
	while (g->inflight && !rc)
		rc = pthread_cond_timedwait(&g->cond, &g->mu, &dl);
	if (g->inflight) {
		rc = -ETIMEDOUT;
		snprintf(p->err, sizeof(p->err),
			 "%u writes did not drain in %d ms", g->inflight,
			 REP_DRAIN_MS);
	} else {
		rc = 0;
	}
	for (size_t i = 0; !rc && i < p->n; i++) {
		struct pfile *pf = &p->files[i];
		struct cv_inode *ino = atomic_load(&pf->f->ino);
		struct stat st;

		rc = r->fs->be.ops->getattr(&r->fs->be, ino->node, &st);
		pf->size = (uint64_t)st.st_size;
		if (!rc)
			rc = rt_freeze(pf->f->t);
		if (!rc)
			rc = rt_frozen_copy(pf->f->t, &pf->frozen);
	}
	p->time_ns = real_ns();
	g->shipping = !rc;
	g->aborted = false;
	g->hold = false;
	us = (mono_ns() - t0) / 1000;
	g->hold_us = us;
	g->hold_us_sum += us;
	g->holds++;
	if (us > g->hold_us_max)
		g->hold_us_max = us;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->mu);
	return rc;
}

static bool spoiled(struct rep_group *g)
{
	bool s;

	pthread_mutex_lock(&g->mu);
	s = g->aborted || g->cbw_full;
	pthread_mutex_unlock(&g->mu);
	return s;
}

/*
 * The data of frozen granule gi as at the freeze, into buf (RT_GRANULE
 * bytes): its length (0 past the file's end), or -errno.
 */
static ssize_t granule_data(struct cv_rep *r, struct point *p, struct pfile *pf,
			    uint64_t gi, unsigned char *buf)
{
	uint64_t off = gi << RT_GRANULE_SHIFT;
	size_t want;
	ssize_t n;

	if (off >= pf->size)
		return 0;
	want = pf->size - off < RT_GRANULE ? (size_t)(pf->size - off)
					   : RT_GRANULE;
	rt_cbw_lock(pf->f->t);
	if (rt_claim_frozen(pf->f->t, gi)) {
		n = r->fs->be.ops->read(&r->fs->be, pf->file, buf, want,
					(off_t)off);
	} else {
		struct rep_cbw *c = rep_cbw_find(p->g, pf->f->fileid, gi);

		if (c) {
			n = (ssize_t)(c->len < want ? c->len : want);
			memcpy(buf, c->data, (size_t)n);
		} else {
			n = -ESTALE; /* a copy refused: point spoiled */
		}
	}
	rt_cbw_unlock(pf->f->t);
	if (n >= 0 && (size_t)n < want) /* the file shrank? zeros */
		memset(buf + n, 0, want - (size_t)n), n = (ssize_t)want;
	return n;
}

#ifdef CSVFS_HAVE_REPLICA

/* Send one file's frozen granules, coalesced up to REP_EXTENT_MAX. */
static int ship_file(struct cv_rep *r, struct point *p, struct pfile *pf,
		     struct cvr_client *c, unsigned char *buf)
{
	uint64_t gi, start = 0;
	size_t used = 0;
	int rc;

	/* O_DIRECT: a buffered read here could be served from host pages
	 * that a read of an earlier point put in the page cache while a
	 * direct write was changing the same blocks (a buffered read racing
	 * a direct write can leave the old data cached), and ship a stale
	 * granule into a point that then is not one instant. */
	rc = r->fs->be.ops->open(&r->fs->be, atomic_load(&pf->f->ino)->node,
				 O_RDONLY | O_DIRECT, &pf->file);
	for (gi = rt_bits_next(&pf->frozen, 0); !rc && gi != UINT64_MAX;
	     gi = rt_bits_next(&pf->frozen, gi + 1)) {
		ssize_t n;

		if (used && (gi << RT_GRANULE_SHIFT != start + used ||
			     used + RT_GRANULE > REP_EXTENT_MAX)) {
			rc = cvr_client_extent(c, pf->f->fileid, start, buf,
					       used);
			p->bytes += used;
			used = 0;
		}
		if (rc || spoiled(p->g))
			break;
		n = granule_data(r, p, pf, gi, buf + used);
		if (n < 0)
			rc = (int)n;
		else if (n > 0) {
			if (!used)
				start = gi << RT_GRANULE_SHIFT;
			used += (size_t)n;
		}
	}
	if (!rc && used) {
		rc = cvr_client_extent(c, pf->f->fileid, start, buf, used);
		p->bytes += used;
	}
	if (!rc)
		rc = cvr_client_truncate(c, pf->f->fileid, pf->size);
	if (!rc && spoiled(p->g))
		rc = -ECANCELED;
	return rc;
}

static int connect_group(struct cv_rep *r, struct point *p,
			 struct cvr_client **c, struct cvr_r_hello *rh)
{
	struct rep_group *g = p->g;
	struct cvr_client_conf conf = { 0 };
	struct cvr_q_hello hello = { .proto_min = CVR_VERSION_MIN,
				     .proto_max = CVR_VERSION_MAX };
	char host[REP_PATH_MAX], ca[REP_PATH_MAX], cert[REP_PATH_MAX],
		key[REP_PATH_MAX];

	pthread_mutex_lock(&r->lock);
	memcpy(host, g->host, sizeof(host));
	memcpy(ca, g->ca, sizeof(ca));
	memcpy(cert, g->cert, sizeof(cert));
	memcpy(key, g->key, sizeof(key));
	conf.port = (uint16_t)g->port;
	pthread_mutex_unlock(&r->lock);
	if (!host[0]) {
		snprintf(p->err, sizeof(p->err), "no target configured");
		return -EDESTADDRREQ;
	}
	conf.host = host;
	conf.ca = ca;
	conf.cert = cert;
	conf.key = key;
	memcpy(hello.primary, r->fs->vol.uuid, sizeof(hello.primary));
	hello.group = g->id;
	hello.generation = 1;
	hello.base_generation = g->generation;
	snprintf(hello.name, sizeof(hello.name), "%s", g->name);
	return cvr_client_open(&conf, &hello, c, rh, p->err, sizeof(p->err));
}

static int ship(struct cv_rep *r, struct point *p)
{
	struct cvr_client *c = NULL;
	struct cvr_r_hello rh;
	struct cvr_q_point_begin b = { .group = p->g->id };
	struct cvr_q_point_end e = { 0 };
	struct cvr_file *files = calloc(p->n, sizeof(*files));
	struct cvr_file_hash *hashes = calloc(p->n, sizeof(*hashes));
	unsigned char *buf = malloc(REP_EXTENT_MAX);
	int rc = files && hashes && buf ? 0 : -ENOMEM;

	if (!rc)
		rc = connect_group(r, p, &c, &rh);
	for (size_t i = 0; !rc && i < p->n; i++) {
		files[i].file_id = p->files[i].f->fileid;
		files[i].size = p->files[i].size;
		snprintf(files[i].name, sizeof(files[i].name), "%s",
			 p->files[i].name);
		hashes[i].file_id = files[i].file_id;
		hashes[i].size = files[i].size;
		hashes[i].kind = CVR_HASH_NONE;
	}
	if (!rc) {
		b.point = (rh.last_point > rh.open_point ? rh.last_point
							 : rh.open_point) +
			  1;
		b.base_point = rh.last_point;
		b.time_ns = p->time_ns;
		b.nfiles = (uint32_t)p->n;
		b.files = files;
		rc = cvr_client_begin(c, &b, NULL);
	}
	for (size_t i = 0; !rc && i < p->n; i++)
		rc = ship_file(r, p, &p->files[i], c, buf);
	if (!rc) {
		e.nfiles = (uint32_t)p->n;
		e.files = hashes;
		rc = cvr_client_end(c, &e);
	}
	if (rc && c && !p->err[0])
		snprintf(p->err, sizeof(p->err), "%s", cvr_client_error(c));
	if (!rc) {
		pthread_mutex_lock(&p->g->mu);
		p->g->last_point = b.point;
		p->g->generation = 1;
		pthread_mutex_unlock(&p->g->mu);
	}
	if (c)
		cvr_client_close(c);
	free(files);
	free(hashes);
	free(buf);
	return rc;
}

#else

static int ship(struct cv_rep *r, struct point *p)
{
	(void)r;
	snprintf(p->err, sizeof(p->err),
		 "csvfs was built without replication (libssl-dev)");
	return -EOPNOTSUPP;
}

#endif

static void write_status(struct cv_rep *r, struct rep_group *g)
{
	char name[REP_GROUP_MAX + 16], *text;
	int n;

	pthread_mutex_lock(&g->mu);
	n = asprintf(&text,
		     "last_point=%" PRIu64 "\nlast_time_ns=%" PRId64
		     "\npoints=%" PRIu64 "\nbytes=%" PRIu64 "\n",
		     g->last_point, g->last_time_ns, g->points, g->bytes);
	pthread_mutex_unlock(&g->mu);
	if (n < 0)
		return;
	snprintf(name, sizeof(name), "g-%s.st", g->name);
	if (rep_write_file(r, name, text, (size_t)n))
		log_warn("replica: group %s: status not written", g->name);
	free(text);
}

/* After the point: trackers told, files' first copies noted. */
static void finish(struct cv_rep *r, struct point *p, int rc)
{
	struct rep_group *g = p->g;

	for (size_t i = 0; i < p->n; i++) {
		struct pfile *pf = &p->files[i];

		if (pf->file)
			r->fs->be.ops->release(&r->fs->be, pf->file);
		rt_point_done(pf->f->t, rc ? &pf->frozen : NULL);
		if (pf->adopted) /* the release hands what is left off */
			cv_own_unref(r->fs->own, pf->adopted, true);
		pf->adopted = NULL;
		if (!rc && pf->initial) {
			pthread_mutex_lock(&r->lock);
			pf->f->initial = false;
			pthread_mutex_unlock(&r->lock);
			rep_file_conf_write(r, pf->f);
		}
		rt_bits_free(&pf->frozen);
	}
	pthread_mutex_lock(&g->mu);
	g->shipping = false;
	if (rc) {
		g->failures++;
		int n = snprintf(g->last_err, sizeof(g->last_err), "%s",
				 p->err[0] ? p->err : strerror(-rc));

		(void)n; /* a longer text is cut, as meant */
	} else {
		g->points++;
		g->bytes += p->bytes;
		g->last_time_ns = p->time_ns;
		g->last_err[0] = 0;
	}
	pthread_mutex_unlock(&g->mu);
	rep_cbw_clear(g);
	if (!rc)
		write_status(r, g);
}

static void take_point(struct cv_rep *r, struct rep_group *g)
{
	struct point p = { .g = g };
	char hook[REP_PATH_MAX];
	int rc;

	rc = collect(r, &p);
	if (rc || !p.n)
		goto out;
	pthread_mutex_lock(&r->lock);
	memcpy(hook, g->hook, sizeof(hook));
	pthread_mutex_unlock(&r->lock);
	rc = run_hook(g, hook, "freeze");
	if (rc)
		snprintf(p.err, sizeof(p.err), "hook freeze failed");
	if (!rc) {
		rc = freeze(r, &p);
		if (run_hook(g, hook, "thaw"))
			log_warn("replica: group %s: hook thaw failed",
				 g->name);
	}
	if (!rc)
		rc = ship(r, &p);
	if (!rc && spoiled(g))
		rc = -ECANCELED;
	finish(r, &p, rc);
	/* a failure is logged when it starts and when it ends, not once an
	 * interval while the link is down */
	if (rc && !g->failing)
		log_warn("replica: group %s: point not shipped: %s (retried "
			 "every interval; csvfs-admin replica status)",
			 g->name, g->last_err);
	else if (!rc && g->failing)
		log_notice("replica: group %s: point %" PRIu64 " shipped "
			   "again",
			   g->name, g->last_point);
	else if (!rc)
		log_debug("replica: group %s: point %" PRIu64 " shipped, "
			  "%" PRIu64 " bytes",
			  g->name, g->last_point, p.bytes);
	g->failing = rc != 0;
out:
	for (size_t i = 0; i < p.n; i++)
		if (p.files[i].adopted)
			cv_own_unref(r->fs->own, p.files[i].adopted, true);
	free(p.files);
}

static bool wait_tick(struct cv_rep *r)
{
	struct timespec dl;
	bool stop;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += REP_TICK_MS / 1000;
	pthread_mutex_lock(&r->lock);
	if (!r->stop)
		pthread_cond_timedwait(&r->cond, &r->lock, &dl);
	stop = r->stop;
	pthread_mutex_unlock(&r->lock);
	return !stop;
}

void *rep_thread(void *arg)
{
	struct cv_rep *r = arg;
	uint64_t last_scan = 0, due[REP_GROUPS] = { 0 };

	while (wait_tick(r)) {
		uint64_t now = mono_ns();
		struct rep_group *gs[REP_GROUPS];
		unsigned n, iv[REP_GROUPS];

		if (now - last_scan >= REP_SCAN_EVERY_MS * 1000000ull) {
			rep_scan(r);
			last_scan = now;
		}
		pthread_mutex_lock(&r->lock);
		n = r->ngroups;
		for (unsigned i = 0; i < n; i++) {
			gs[i] = r->groups[i];
			iv[i] = gs[i]->interval_s;
		}
		pthread_mutex_unlock(&r->lock);
		for (unsigned i = 0; i < n; i++) {
			if (now < due[i])
				continue;
			take_point(r, gs[i]);
			due[i] = mono_ns() + iv[i] * 1000000000ull;
		}
	}
	return NULL;
}
