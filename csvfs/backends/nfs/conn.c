// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * conn.c - the pool of libnfs contexts behind the nfs backend.
 *
 * A libnfs context is not thread-safe, so the backend keeps a small pool
 * of them, each mounted on the export, each used by one thread at a time
 * under its own mutex.  A FUSE worker thread is given a preferred context
 * the first time it asks (round robin), tries it first and takes any free
 * one when its own is busy, so N workers use up to N contexts in parallel
 * without a single service thread in the way.
 *
 * Faults: every context has the backend's RPC timeout (nfs_set_timeout);
 * a call that fails for a transport reason (timeout, connection lost)
 * drops the context, and the next user mounts a fresh one.  While the
 * server is unreachable, reconnects are tried at most once a second per
 * context, so callers get EIO after about one timeout, never a hang, and
 * the mount works again as soon as the server answers.  Each context has
 * a generation, bumped by every (re)connect, so open files know when
 * their libnfs file handles belong to a dead context.
 *
 * NFSv4: every context is an NFSv4 client of its own to the server, with
 * its own client name and a new verifier per connect.  libnfs gives every
 * context of a process the same name, and a second SETCLIENTID under a
 * known name with another verifier tells the server that the client
 * restarted: it drops the first context's open state, whose READs then
 * fail with NFS4ERR_EXPIRED.  libnfs 4.0 never renews the client's lease
 * either (no RENEW; WRITE and COMMIT here carry no state that would), so
 * a context is connected again when half the server's lease time has
 * passed since it connected, and one that meets lost state anyway
 * (EXPIRED, STALE_CLIENTID, BAD_STATEID, STALE_STATEID) or an open-owner
 * sequence libnfs lost count of (BAD_SEQID, after some failed OPENs) is
 * dropped as after a transport error.  The server refused such a call
 * before doing anything, so it is retried once even when not idempotent.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "conn.h"
#include "rpc.h"
#include "log.h"

#define RECONNECT_BACKOFF_MS 1000
#define NFS4_FALLBACK_RWMAX (64 * 1024) /* server gives no maxread/write */
#define NFS4_MAX_RW (1024 * 1024)	/* a FUSE request is no larger */
#define NFS4_DEFAULT_LEASE_S 30		/* server gives no lease_time */

struct mount_wait {
	bool done, abandoned; /* abandoned: the callback frees */
	int status;
};

static void mount_cb(int status, struct nfs_context *nfs, void *data,
		     void *priv)
{
	struct mount_wait *mw = priv;

	if (mw->abandoned) {
		free(mw);
		return;
	}
	mw->done = true;
	mw->status = status;
}

/*
 * nfs_mount() with a deadline: the synchronous call waits for TCP connect
 * as long as the kernel retries SYNs (about two minutes when packets are
 * dropped), so drive the asynchronous one and give up after the RPC
 * timeout.  Returns 0 or -errno; on failure the caller destroys nfs.
 */
static int mount_timed(struct be_nfs *p, struct nfs_context *nfs,
		       const char *server, const char *path)
{
	struct mount_wait *mw = calloc(1, sizeof(*mw));
	uint64_t deadline = cv_now_ms() + (uint64_t)p->timeout_ms;
	int rc = 0;

	if (!mw)
		return -ENOMEM;
	if (nfs_mount_async(nfs, server, path, mount_cb, mw)) {
		free(mw);
		return -EIO;
	}
	while (!mw->done && !rc) {
		struct pollfd pfd = { .fd = nfs_get_fd(nfs),
				      .events = (short)nfs_which_events(nfs) };
		uint64_t now = cv_now_ms();
		int n;

		if (now >= deadline) {
			rc = -ETIMEDOUT;
			break;
		}
		n = poll(&pfd, 1, deadline - now < 100 ? (int)(deadline - now)
						       : 100);
		if (n < 0 && errno != EINTR)
			rc = -errno;
		else if (nfs_service(nfs, n > 0 ? pfd.revents : 0) < 0 &&
			 !mw->done)
			rc = -EIO;
	}
	if (rc) {
		mw->abandoned = true; /* freed by the cancel at destroy */
		return rc;
	}
	rc = mw->status;
	free(mw);
	return rc;
}

/* NFSv4 client identity of context c (see the head comment). */
static void conn_identity(struct nfs_context *nfs, const struct nfs_conn *c)
{
	char host[64] = "", name[160], verf[8];
	uint64_t v = cv_now_ms() ^ ((uint64_t)c->gen << 48) ^ (uint64_t)c->idx;

	gethostname(host, sizeof(host) - 1);
	snprintf(name, sizeof(name), "csvfs %s pid %ld context %d", host,
		 (long)getpid(), c->idx);
	memcpy(verf, &v, sizeof(verf));
	nfs4_set_client_name(nfs, name);
	nfs4_set_verifier(nfs, verf);
}

/* Mount one context on the export.  Called with c->lock held. */
static int conn_connect(struct be_nfs *p, struct nfs_conn *c)
{
	struct nfs_context *nfs;
	struct nfs_url *url;
	int rc;

	nfs = nfs_init_context();
	if (!nfs)
		return -ENOMEM;
	conn_identity(nfs, c);
	url = nfs_parse_url_dir(nfs, p->url);
	if (!url) {
		log_err("nfs: cannot parse %s: %s", p->url, nfs_get_error(nfs));
		nfs_destroy_context(nfs);
		return -EINVAL;
	}
	nfs_set_timeout(nfs, p->timeout_ms);
	nfs_set_autoreconnect(nfs, 0);
	/* no NFSv3 listing served from libnfs's cache while the directory's
	 * mtime looks unchanged: other nodes change directories, and every
	 * opendir here is meant to read the directory as it is now */
	nfs_set_dircache(nfs, 0);
	rc = mount_timed(p, nfs, url->server, url->path);
	if (rc) {
		if (!c->down_logged)
			log_err("nfs: cannot mount %s:%s: %s (retrying while "
				"in use; operations fail with EIO meanwhile)",
				url->server, url->path, nfs_get_error(nfs));
		c->down_logged = true;
		nfs_destroy_url(url);
		nfs_destroy_context(nfs);
		return rc == -EACCES || rc == -EPERM ? rc : -EIO;
	}
	if (c->down_logged)
		log_notice("nfs: %s:%s is reachable again", url->server,
			   url->path);
	c->down_logged = false;
	nfs_destroy_url(url);
	c->nfs = nfs;
	c->gen++;
	c->renew_by = cv_now_ms() + p->lease_ms / 2;
	return 0;
}

/* NFSv4: the server no longer knows this context's client or state. */
static bool nfs4_state_lost(struct be_nfs *p, struct nfs_conn *c, int rc)
{
	static const char *const lost[] = {
		"NFS4ERR_EXPIRED", "NFS4ERR_STALE_CLIENTID",
		"NFS4ERR_BAD_STATEID", "NFS4ERR_STALE_STATEID",
		"NFS4ERR_BAD_SEQID",
	};
	const char *err;
	size_t i;

	if (p->version != 4 || rc >= 0 || !c->nfs)
		return false;
	err = nfs_get_error(c->nfs);
	for (i = 0; err && i < sizeof(lost) / sizeof(lost[0]); i++)
		if (strstr(err, lost[i]))
			return true;
	return false;
}

/* Lock a context for the calling thread and make sure it is mounted. */
struct nfs_conn *nfs_conn_get(struct be_nfs *p, int *rc)
{
	static _Thread_local int mine = -1;
	static atomic_int next;
	struct nfs_conn *c = NULL;
	int i;

	if (mine < 0)
		mine = atomic_fetch_add(&next, 1) % p->nconns;
	for (i = 0; i < p->nconns && !c; i++) {
		struct nfs_conn *t = &p->conns[(mine + i) % p->nconns];

		if (pthread_mutex_trylock(&t->lock))
			continue;
		/* skip one waiting out its reconnect backoff while another
		 * may already be connected again */
		if (t->nfs || cv_now_ms() >= t->retry_after)
			c = t;
		else
			pthread_mutex_unlock(&t->lock);
	}
	if (!c) {
		c = &p->conns[mine];
		pthread_mutex_lock(&c->lock);
	}
	if (c->nfs && p->version == 4 && p->lease_ms &&
	    cv_now_ms() >= c->renew_by) {
		/* renew the NFSv4 lease the only way libnfs allows */
		log_debug("nfs: context %d: connecting again within the "
			  "server's lease time", c->idx);
		nfs_destroy_context(c->nfs);
		c->nfs = NULL;
	}
	if (c->nfs)
		return c;
	if (cv_now_ms() < c->retry_after) {
		*rc = -EIO;
		goto fail;
	}
	*rc = conn_connect(p, c);
	if (!*rc)
		return c;
	c->retry_after = cv_now_ms() + RECONNECT_BACKOFF_MS;
fail:
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* The server refused the call as such: the client may not do it. */
static bool nfs_refusal(int rc)
{
	return rc == -EACCES || rc == -EPERM || rc == -EROFS;
}

/*
 * Give a context back after a call that returned rc.  A transport error
 * drops the context (next user reconnects): NFS_PUT_DROPPED, the caller
 * may retry an idempotent call once; lost NFSv4 state drops it too:
 * NFS_PUT_REFUSED, the server did nothing, any call may be retried once.
 * A refusal (EACCES, EPERM, EROFS) keeps the context and is logged with
 * what was refused on which object (obj, may be NULL): with
 * default_permissions the kernel has checked the mode bits already, so
 * the export's options (read-only, root squash) said no.
 */
int nfs_conn_put(struct be_nfs *p, struct nfs_conn *c, int rc,
		 const char *what, const char *obj)
{
	int dropped = NFS_PUT_KEPT;

	if (rc < 0 && nfs_transport_error(rc)) {
		log_warn("nfs: %s failed: %s (%s); reconnecting", what,
			 strerror(-rc), nfs_get_error(c->nfs));
		nfs_destroy_context(c->nfs);
		c->nfs = NULL;
		dropped = NFS_PUT_DROPPED;
	} else if (nfs4_state_lost(p, c, rc)) {
		log_warn("nfs: %s refused: the server does not know this "
			 "context's NFSv4 state (%s); reconnecting", what,
			 nfs_get_error(c->nfs));
		nfs_destroy_context(c->nfs);
		c->nfs = NULL;
		dropped = NFS_PUT_REFUSED;
	} else if (nfs_refusal(rc)) {
		log_warn("nfs: %s %s: the server refused: %s (%s); check the "
			 "export's options", what, obj ? obj : "", strerror(-rc),
			 nfs_get_error(c->nfs) ? nfs_get_error(c->nfs) : "-");
	}
	pthread_mutex_unlock(&c->lock);
	return dropped;
}

/*
 * rsize and wsize of the first context.  libnfs 4.0 reports 0 for NFSv4,
 * so ask the server for the export root's maxread and maxwrite there,
 * and for its lease time.
 * Called with c->lock held.
 */
static int pool_rwmax(struct be_nfs *p, struct nfs_conn *c)
{
	struct nfs4_rootattr ra = { 0 };
	struct nfs_url *url;
	int rc;

	p->readmax = nfs_get_readmax(c->nfs);
	p->writemax = nfs_get_writemax(c->nfs);
	if (p->version != 4 || (p->readmax && p->writemax))
		return 0;
	url = nfs_parse_url_dir(c->nfs, p->url);
	if (!url)
		return -EINVAL;
	p->export_path = strdup(url->path);
	rc = p->export_path ? nfs4_raw_rootattr(p, c, url->path, &ra)
			    : -ENOMEM;
	p->readmax = ra.maxread;
	p->writemax = ra.maxwrite;
	p->lease_ms = (ra.lease_s ? ra.lease_s : NFS4_DEFAULT_LEASE_S) * 1000;
	c->renew_by = cv_now_ms() + p->lease_ms / 2;
	if (rc)
		log_err("nfs: cannot read maxread/maxwrite of %s:%s: %s",
			url->server, url->path, strerror(-rc));
	nfs_destroy_url(url);
	if (rc)
		return nfs_transport_error(rc) ? -EIO : rc;
	if (!p->readmax || !p->writemax)
		log_notice("nfs: the server gives no maxread/maxwrite: "
			   "using %d KiB", NFS4_FALLBACK_RWMAX / 1024);
	if (!p->readmax)
		p->readmax = NFS4_FALLBACK_RWMAX;
	if (!p->writemax)
		p->writemax = NFS4_FALLBACK_RWMAX;
	if (p->readmax > NFS4_MAX_RW)
		p->readmax = NFS4_MAX_RW;
	if (p->writemax > NFS4_MAX_RW)
		p->writemax = NFS4_MAX_RW;
	return 0;
}

int nfs_pool_init(struct be_nfs *p)
{
	int i, rc;

	p->conns = calloc((size_t)p->nconns, sizeof(*p->conns));
	if (!p->conns)
		return -ENOMEM;
	for (i = 0; i < p->nconns; i++) {
		pthread_mutex_init(&p->conns[i].lock, NULL);
		p->conns[i].idx = i;
	}
	/* The first context must mount now: a bad URL fails the mount. */
	pthread_mutex_lock(&p->conns[0].lock);
	rc = conn_connect(p, &p->conns[0]);
	if (!rc)
		rc = pool_rwmax(p, &p->conns[0]);
	pthread_mutex_unlock(&p->conns[0].lock);
	if (rc)
		nfs_pool_destroy(p);
	return rc;
}

#if defined(__SANITIZE_ADDRESS__)
/*
 * libnfs 4.0 does not free the NFSv4 client name nfs4_set_client_name()
 * copies when its context is destroyed: 30-odd bytes per connect, not
 * ours to free.  Keep LeakSanitizer builds quiet about it only.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:nfs4_set_client_name\n";
}
#endif

void nfs_pool_destroy(struct be_nfs *p)
{
	int i;

	if (!p->conns)
		return;
	for (i = 0; i < p->nconns; i++) {
		if (p->conns[i].nfs)
			nfs_destroy_context(p->conns[i].nfs);
		pthread_mutex_destroy(&p->conns[i].lock);
	}
	free(p->conns);
	p->conns = NULL;
	free(p->export_path);
	p->export_path = NULL;
}
