// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lockd_res.c - this node's requests and EX ownerships, and the routing
 * of lock-table events back to clients.
 *
 * EX ownership is per node in the replicated table; locally a resource
 * has one struct lockd_own that records which clients hold it (holders)
 * and which wait for it (waiters), so that a node never asks the cluster
 * twice for the same file and never gives a file up while a local client
 * still writes to it.
 *
 * Every cluster request of this node carries a node-local req_id
 * (struct lockd_req).  The table answers it by events naming that id;
 * requests answered NOQUORUM or SYNCING are resent after LM_EV_READY,
 * queued ones after LM_EV_SYNC_INSTALLED (the transfer drops waits).
 *
 * Races handled here:
 *   - a client cancels an acquire that the table grants meanwhile: the
 *     grant finds no waiter and is released at once;
 *   - a client cancels a SETW that is granted before the cancel is
 *     applied: the late PLOCK_GRANTED is undone with an UNLOCK;
 *   - the lease ends while we own files: holders are told LOST and the
 *     entry stays (OWN_LOST) until the table, once ready again, shows
 *     whether we still own it (then we release it) or not.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lockd.h"
#include "log.h"

#define NS_PER_MS 1000000ull

static bool is_mine(struct lockd *ld, const struct lm_ev *ev)
{
	return ev->node == ld->our_id;
}

void lockd_res_init(struct lockd *ld)
{
	lk_init(&ld->reqs);
	lk_init(&ld->owns);
	lk_init(&ld->grants);
}

/* ---- requests ---- */

static void set_req_id(struct lm_cmsg *m, uint64_t id)
{
	switch (m->type) {
	case LM_C_ACQUIRE:
		m->u.acquire.req_id = id;
		break;
	case LM_C_RELEASE:
		m->u.release.req_id = id;
		break;
	case LM_C_HANDOFF:
		m->u.handoff.req_id = id;
		break;
	case LM_C_DRAIN:
	case LM_C_RESUME:
		m->u.drain.req_id = id;
		break;
	case LM_C_PLOCK:
		m->u.plock.req_id = id;
		break;
	}
}

static void req_send(struct lockd *ld, struct lockd_req *r)
{
	r->state = RS_SENT;
	r->sent_ns = cv_now_ns();
	lockd_send(ld, &r->msg);
}

/* New request, queued for the cluster at once. */
struct lockd_req *lockd_req_new(struct lockd *ld, enum lockd_req_kind kind,
				const struct lm_cmsg *m)
{
	struct lockd_req *r = calloc(1, sizeof(*r));

	if (!r) {
		lockd_fatal(ld, "out of memory for a cluster request");
		return NULL;
	}
	r->req_id = ++ld->next_req_id;
	r->kind = kind;
	r->msg = *m;
	set_req_id(&r->msg, r->req_id);
	lk_add_tail(&ld->reqs, &r->link);
	req_send(ld, r);
	return r;
}

void lockd_req_free(struct lockd_req *r)
{
	lk_del(&r->link);
	free(r);
}

static struct lockd_req *req_find(struct lockd *ld, uint64_t req_id)
{
	struct lockd_link *p, *t;

	if (!req_id)
		return NULL;
	lk_for_each_safe(p, t, &ld->reqs) {
		struct lockd_req *r = lk_entry(p, struct lockd_req, link);

		if (r->req_id == req_id)
			return r;
	}
	return NULL;
}

static void resend_in_state(struct lockd *ld, enum lockd_req_state s)
{
	struct lockd_link *p, *t;
	unsigned n = 0;

	lk_for_each_safe(p, t, &ld->reqs) {
		struct lockd_req *r = lk_entry(p, struct lockd_req, link);

		if (r->state == s) {
			req_send(ld, r);
			n++;
		}
	}
	if (n)
		log_info("resent %u %s request(s)", n, s == RS_QUEUED ?
			 "queued" : "unanswered");
}

/* ---- own entries ---- */

static struct lockd_own *own_find(struct lockd *ld, const struct lm_res *res)
{
	struct lockd_link *p, *t;

	lk_for_each_safe(p, t, &ld->owns) {
		struct lockd_own *o = lk_entry(p, struct lockd_own, link);

		if (o->res.fileid == res->fileid &&
		    !memcmp(o->res.volume, res->volume, LM_VOLUME_LEN))
			return o;
	}
	return NULL;
}

static struct lockd_own *own_new(struct lockd *ld, const struct lm_res *res)
{
	struct lockd_own *o = calloc(1, sizeof(*o));

	if (!o) {
		lockd_fatal(ld, "out of memory for an ownership record");
		return NULL;
	}
	o->res = *res;
	lk_add_tail(&ld->owns, &o->link);
	return o;
}

static void own_free(struct lockd_own *o)
{
	while (o->holders) {
		struct lockd_holder *h = o->holders;

		o->holders = h->next;
		free(h);
	}
	while (o->waiters) {
		struct lockd_wait *w = o->waiters;

		o->waiters = w->next;
		free(w);
	}
	lk_del(&o->link);
	free(o);
}

static void own_send_acquire(struct lockd *ld, struct lockd_own *o)
{
	struct lm_cmsg m = { .type = LM_C_ACQUIRE };
	struct lockd_req *r;

	m.u.acquire.res = o->res;
	o->state = OWN_ACQUIRING;
	r = lockd_req_new(ld, REQ_ACQUIRE, &m);
	if (!r)
		return;
	r->own = o;
	o->req_id = r->req_id;
}

static void own_release(struct lockd *ld, struct lockd_own *o,
			const char *why)
{
	struct lm_cmsg m = { .type = LM_C_RELEASE };
	struct lockd_req *r;

	m.u.release.res = o->res;
	m.u.release.epoch = o->epoch;
	o->state = OWN_RELEASING;
	log_res(LOG_INFO, o->res.fileid, "releasing epoch %llu: %s",
		(unsigned long long)o->epoch, why);
	r = lockd_req_new(ld, REQ_RELEASE, &m);
	if (!r)
		return;
	r->own = o;
	o->req_id = r->req_id;
}

/* The entry no longer stands for an ownership: drop it, or start over
 * for the clients still waiting. */
static void own_done(struct lockd *ld, struct lockd_own *o)
{
	struct lockd_req *r = req_find(ld, o->req_id);

	if (r && r->own == o)
		lockd_req_free(r);
	o->req_id = 0;
	o->handoff = false;
	while (o->holders) {
		struct lockd_holder *h = o->holders;

		o->holders = h->next;
		free(h);
	}
	if (o->waiters && !ld->stopping)
		own_send_acquire(ld, o);
	else
		own_free(o);
}

static void reply_waiters(struct lockd *ld, struct lockd_own *o,
			  int32_t status, bool nowait_only)
{
	struct lockd_wait **pp = &o->waiters, *w;

	while ((w = *pp)) {
		if (nowait_only && !(w->flags & LM_ACQ_NOWAIT)) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		if (status)
			ld->metrics.acquire_errors++;
		lockd_client_reply(ld, w->client, w->seq, status, 0);
		free(w);
	}
}

static void add_holder(struct lockd *ld, struct lockd_own *o,
		       struct lockd_client *c, uint32_t seq)
{
	struct lockd_holder *h;

	for (h = o->holders; h; h = h->next)
		if (h->client == c) {
			h->seq = seq;
			return;
		}
	h = calloc(1, sizeof(*h));
	if (!h) {
		lockd_fatal(ld, "out of memory for an ownership holder");
		return;
	}
	h->client = c;
	h->seq = seq;
	h->next = o->holders;
	o->holders = h;
	o->handoff = false;
}

/* Granted (or confirmed) at epoch: waiters become holders. */
static void own_granted(struct lockd *ld, struct lockd_own *o,
			uint64_t epoch)
{
	struct lockd_req *r = req_find(ld, o->req_id);

	if (r && r->own == o)
		lockd_req_free(r);
	o->req_id = 0;
	o->state = OWN_HELD;
	o->epoch = epoch;
	o->granted_ns = cv_now_ns();
	o->idle_since_ns = o->granted_ns;
	while (o->waiters) {
		struct lockd_wait *w = o->waiters;

		o->waiters = w->next;
		lm_hist_observe(&ld->metrics.acquire_latency,
				(o->granted_ns - w->start_ns) / 1000);
		add_holder(ld, o, w->client, w->seq);
		lockd_client_reply(ld, w->client, w->seq, 0, epoch);
		free(w);
	}
	log_res(LOG_INFO, o->res.fileid, "granted to this node, epoch %llu",
		(unsigned long long)epoch);
	if (!o->holders && !o->handoff)
		own_release(ld, o, "nobody waits for it any more");
}

/* Our ownership ended without a release of ours: poison the holders. */
static void own_lost(struct lockd *ld, struct lockd_own *o, const char *why)
{
	struct lm_smsg ev = { .type = LM_S_EV_LOST };
	unsigned n = 0;

	ev.u.ev_file.fileid = o->res.fileid;
	ev.u.ev_file.epoch = o->epoch;
	ev.u.ev_file.owner = ld->our_id;
	while (o->holders) {
		struct lockd_holder *h = o->holders;

		o->holders = h->next;
		lockd_client_push(ld, h->client, &ev);
		free(h);
		n++;
	}
	log_res(LOG_ERR, o->res.fileid, "ownership (epoch %llu) lost: %s; %u "
		"local client(s) told to fail further writes with EIO",
		(unsigned long long)o->epoch, why, n);
}

/* ---- client operations ---- */

static struct lockd_wait *add_waiter(struct lockd *ld, struct lockd_own *o,
				     struct lockd_client *c, uint32_t seq,
				     uint32_t flags)
{
	struct lockd_wait *w = calloc(1, sizeof(*w)), **pp;

	if (!w) {
		lockd_fatal(ld, "out of memory for a waiting acquire");
		return NULL;
	}
	w->client = c;
	w->seq = seq;
	w->flags = flags;
	w->start_ns = cv_now_ns();
	for (pp = &o->waiters; *pp; pp = &(*pp)->next)
		;
	*pp = w;
	return w;
}

static bool owned_by_other(struct lockd *ld, const struct lm_res *res)
{
	struct lm_owner_entry e;

	return lm_state_owner(ld->st, res, &e) == 0 && e.owner &&
	       e.owner != ld->our_id;
}

void lockd_acquire(struct lockd *ld, struct lockd_client *c, uint32_t seq,
		   uint64_t fileid, uint32_t flags)
{
	struct lm_res res = { .fileid = fileid };
	bool nowait = flags & LM_ACQ_NOWAIT;
	struct lockd_own *o;

	memcpy(res.volume, c->volume, LM_VOLUME_LEN);
	ld->metrics.acquires++;
	if (ld->stopping) {
		ld->metrics.acquire_errors++;
		lockd_client_reply(ld, c, seq, LM_ERR_SHUTDOWN, 0);
		return;
	}
	o = own_find(ld, &res);
	if (o && o->state == OWN_HELD) {
		/* already this node's: granted at once */
		lm_hist_observe(&ld->metrics.acquire_latency, 0);
		add_holder(ld, o, c, seq);
		lockd_client_reply(ld, c, seq, 0, o->epoch);
		return;
	}
	if (nowait && (owned_by_other(ld, &res) ||
		       (o && o->state != OWN_ACQUIRING))) {
		ld->metrics.acquire_errors++;
		lockd_client_reply(ld, c, seq, EAGAIN, 0);
		return;
	}
	if (!o) {
		o = own_new(ld, &res);
		if (!o || !add_waiter(ld, o, c, seq, flags))
			return;
		own_send_acquire(ld, o);
		return;
	}
	add_waiter(ld, o, c, seq, flags); /* sent after the current step */
}

static struct lockd_holder **holder_of(struct lockd_own *o,
				       struct lockd_client *c)
{
	struct lockd_holder **pp;

	for (pp = &o->holders; *pp; pp = &(*pp)->next)
		if ((*pp)->client == c)
			return pp;
	return NULL;
}

static void drop_holder(struct lockd *ld, struct lockd_own *o,
			struct lockd_holder **pp, const char *why)
{
	struct lockd_holder *h = *pp;

	*pp = h->next;
	free(h);
	if (o->holders)
		return;
	o->idle_since_ns = cv_now_ns();
	if (o->state == OWN_HELD || o->state == OWN_REVOKING)
		own_release(ld, o, why);
}

int lockd_client_release(struct lockd *ld, struct lockd_client *c,
			 uint64_t fileid, uint64_t epoch)
{
	struct lm_res res = { .fileid = fileid };
	struct lockd_holder **pp;
	struct lockd_own *o;

	memcpy(res.volume, c->volume, LM_VOLUME_LEN);
	o = own_find(ld, &res);
	if (!o || !(pp = holder_of(o, c)) || (epoch && epoch != o->epoch))
		return LM_ERR_NOTOWNER;
	drop_holder(ld, o, pp, o->state == OWN_REVOKING ?
		    "revoke answered by every local holder" :
		    "last local holder released it");
	return 0;
}

bool lockd_cancel_acquire(struct lockd *ld, struct lockd_client *c,
			  uint32_t seq)
{
	struct lockd_link *p, *t;

	lk_for_each_safe(p, t, &ld->owns) {
		struct lockd_own *o = lk_entry(p, struct lockd_own, link);
		struct lockd_wait **wp;
		struct lockd_holder **hp;

		for (wp = &o->waiters; *wp; wp = &(*wp)->next) {
			struct lockd_wait *w = *wp;

			if (w->client != c || w->seq != seq)
				continue;
			*wp = w->next;
			free(w);
			lockd_client_reply(ld, c, seq, LM_ERR_CANCELED, 0);
			return true;
		}
		/* granted just before the cancel: undo the grant */
		for (hp = &o->holders; *hp; hp = &(*hp)->next)
			if ((*hp)->client == c && (*hp)->seq == seq) {
				drop_holder(ld, o, hp, "acquire canceled");
				return true;
			}
	}
	return false;
}

static void client_gone_plocks(struct lockd *ld, struct lockd_client *c)
{
	struct lockd_link *p, *t;

	lk_for_each_safe(p, t, &ld->reqs) {
		struct lockd_req *r = lk_entry(p, struct lockd_req, link);

		if (r->client != c)
			continue;
		r->client = NULL;
		r->canceled = true;
	}
	while (c->plowners) {
		struct lockd_plowner *po = c->plowners;
		struct lm_cmsg m = { .type = LM_C_PLOCK };

		c->plowners = po->next;
		m.u.plock.res.fileid = po->fileid;
		memcpy(m.u.plock.res.volume, c->volume, LM_VOLUME_LEN);
		m.u.plock.space = po->space;
		m.u.plock.op = LM_PL_RELEASE_OWNER;
		m.u.plock.owner = po->owner;
		m.u.plock.end = LM_OFFSET_MAX;
		lockd_req_new(ld, REQ_INTERNAL, &m);
		free(po);
	}
}

void lockd_res_client_gone(struct lockd *ld, struct lockd_client *c)
{
	struct lockd_link *p, *t;

	lk_for_each_safe(p, t, &ld->owns) {
		struct lockd_own *o = lk_entry(p, struct lockd_own, link);
		struct lockd_wait **wp = &o->waiters, *w;
		struct lockd_holder **hp;

		while ((w = *wp)) {
			if (w->client == c) {
				*wp = w->next;
				free(w);
			} else {
				wp = &w->next;
			}
		}
		hp = holder_of(o, c);
		if (hp)
			drop_holder(ld, o, hp, "its client disconnected");
	}
	client_gone_plocks(ld, c);
}

/* ---- lease end, revoke, hand-off ---- */

static void resolve_lost(struct lockd *ld);

/*
 * The lease can end while the table stays ready: this lockd was stopped
 * (SIGSTOP, a hang) for longer than the lease while corosync kept the
 * node in the membership.  No LM_EV_READY follows then, so the lost
 * entries are resolved here at once; otherwise a waiter on another node
 * would wait for as long as this node lives (found by t-fault-stop).
 */
void lockd_lease_lost_all(struct lockd *ld)
{
	struct lockd_link *p, *t;

	lk_for_each_safe(p, t, &ld->owns) {
		struct lockd_own *o = lk_entry(p, struct lockd_own, link);

		if (o->state != OWN_HELD && o->state != OWN_REVOKING)
			continue;
		own_lost(ld, o, "the lease of this node ended");
		o->state = OWN_LOST;
	}
	resolve_lost(ld);
}

/*
 * Once ready: lost entries the table still gives us are released (never
 * used again: the VM may run elsewhere by now); ownerships the table gives
 * us that this process does not know of (a new process, or a lineage that
 * lost them) are released too.
 */
static int scan_unknown_owner(const struct lm_owner_entry *e, void *arg)
{
	struct lockd *ld = arg;
	struct lockd_own *o;

	if (e->owner != ld->our_id || own_find(ld, &e->res))
		return 0;
	o = own_new(ld, &e->res);
	if (!o)
		return -ENOMEM;
	o->epoch = e->epoch;
	own_release(ld, o, "owned in the table but unknown to this process");
	return 0;
}

static void resolve_lost(struct lockd *ld)
{
	struct lockd_link *p, *t;

	if (!ld->ready)
		return;
	lk_for_each_safe(p, t, &ld->owns) {
		struct lockd_own *o = lk_entry(p, struct lockd_own, link);
		struct lm_owner_entry e;

		if (o->state != OWN_LOST)
			continue;
		if (lm_state_owner(ld->st, &o->res, &e) == 0 &&
		    e.owner == ld->our_id) {
			o->epoch = e.epoch;
			own_release(ld, o, "ownership was lost locally");
		} else {
			own_done(ld, o);
		}
	}
	lm_state_foreach_owner(ld->st, scan_unknown_owner, ld);
}

/* After a transfer: what we hold must still be ours at the same epoch. */
static void verify_held(struct lockd *ld)
{
	struct lockd_link *p, *t;

	lk_for_each_safe(p, t, &ld->owns) {
		struct lockd_own *o = lk_entry(p, struct lockd_own, link);
		struct lm_owner_entry e;

		if (o->state != OWN_HELD && o->state != OWN_REVOKING)
			continue;
		if (lm_state_owner(ld->st, &o->res, &e) == 0 &&
		    e.owner == ld->our_id && e.epoch == o->epoch)
			continue;
		own_lost(ld, o, "the cluster's table no longer gives it to "
			 "this node");
		own_done(ld, o);
	}
}

static void on_revoke(struct lockd *ld, const struct lm_ev *ev)
{
	struct lm_smsg m = { .type = LM_S_EV_REVOKE };
	struct lockd_own *o = own_find(ld, &ev->res);
	struct lm_owner_entry e;
	struct lockd_holder *h;

	if (!o) {
		if (lm_state_owner(ld->st, &ev->res, &e) || e.owner !=
		    ld->our_id)
			return;
		o = own_new(ld, &ev->res);
		if (!o)
			return;
		o->epoch = e.epoch;
		own_release(ld, o, "revoked, and no local client holds it");
		return;
	}
	if (o->state != OWN_HELD)
		return;
	if (!o->holders) {
		own_release(ld, o, "revoked, and no local client holds it");
		return;
	}
	o->state = OWN_REVOKING;
	o->revoke_ns = cv_now_ns();
	o->revoke_warned = false;
	m.u.ev_file.fileid = o->res.fileid;
	m.u.ev_file.epoch = o->epoch;
	m.u.ev_file.owner = ld->our_id;
	for (h = o->holders; h; h = h->next) {
		h->revoke_sent = true;
		lockd_client_push(ld, h->client, &m);
	}
	log_res(LOG_INFO, o->res.fileid, "revoke asked; waiting for the local "
		"holders to flush and release");
}

static void on_handoff_grant(struct lockd *ld, const struct lm_ev *ev)
{
	struct lockd_own *o = own_find(ld, &ev->res);

	if (!o)
		o = own_new(ld, &ev->res);
	if (!o)
		return;
	o->handoff = true;
	log_res(LOG_NOTICE, ev->res.fileid, "handed off to this node, epoch "
		"%llu", (unsigned long long)ev->epoch);
	own_granted(ld, o, ev->epoch);
	lockd_push_volume(ld, LM_S_EV_GRANTED, &ev->res, ev->epoch,
			  ld->our_id);
}

static void on_granted(struct lockd *ld, const struct lm_ev *ev)
{
	struct lockd_req *r = req_find(ld, ev->req_id);

	if (!ev->req_id) {
		on_handoff_grant(ld, ev);
		return;
	}
	if (!r || r->kind != REQ_ACQUIRE || !r->own) {
		log_debug("grant for unknown request %llu ignored",
			  (unsigned long long)ev->req_id);
		return;
	}
	own_granted(ld, r->own, ev->epoch);
}

static void on_released(struct lockd *ld, const struct lm_ev *ev)
{
	struct lockd_own *o = own_find(ld, &ev->res);

	if (o && o->state == OWN_RELEASING)
		own_done(ld, o);
}

static void on_lost(struct lockd *ld, const struct lm_ev *ev)
{
	struct lockd_own *o = own_find(ld, &ev->res);

	if (!o)
		return;
	if (o->state == OWN_HELD || o->state == OWN_REVOKING)
		own_lost(ld, o, "this node was fenced");
	if (o->state != OWN_ACQUIRING)
		own_done(ld, o);
}

static void grant_seen(struct lockd *ld, const struct lm_ev *ev)
{
	struct lockd_link *p, *t;
	struct lockd_grant_seen *g;

	lk_for_each_safe(p, t, &ld->grants) {
		g = lk_entry(p, struct lockd_grant_seen, link);
		if (g->res.fileid == ev->res.fileid &&
		    !memcmp(g->res.volume, ev->res.volume, LM_VOLUME_LEN)) {
			lk_del(&g->link);
			free(g);
			break;
		}
	}
	if (!ev->node)
		return;
	g = calloc(1, sizeof(*g));
	if (!g)
		return; /* only an age in a query */
	g->res = ev->res;
	g->seen_ns = cv_now_ns();
	lk_add_tail(&ld->grants, &g->link);
}

int64_t lockd_grant_age_ms(struct lockd *ld, const struct lm_res *res)
{
	struct lockd_link *p, *t;

	lk_for_each_safe(p, t, &ld->grants) {
		struct lockd_grant_seen *g =
			lk_entry(p, struct lockd_grant_seen, link);

		if (g->res.fileid == res->fileid &&
		    !memcmp(g->res.volume, res->volume, LM_VOLUME_LEN))
			return (int64_t)((cv_now_ns() - g->seen_ns) /
					 NS_PER_MS);
	}
	return -1;
}

static void on_owner(struct lockd *ld, const struct lm_ev *ev)
{
	struct lockd_own *o = own_find(ld, &ev->res);

	grant_seen(ld, ev);
	lockd_push_volume(ld, LM_S_EV_OWNER, &ev->res, ev->epoch, ev->node);
	if (o && ev->node != ld->our_id &&
	    (o->state == OWN_HELD || o->state == OWN_REVOKING)) {
		own_lost(ld, o, "the table gave it to another node");
		own_done(ld, o);
	}
}

/* ---- replies ---- */

static void plock_undo(struct lockd *ld, const struct lockd_req *r)
{
	struct lm_cmsg m = r->msg;

	m.u.plock.op = LM_PL_UNLOCK;
	lockd_req_new(ld, REQ_INTERNAL, &m);
}

static void on_reply(struct lockd *ld, const struct lm_ev *ev)
{
	struct lockd_req *r = req_find(ld, ev->req_id);
	int32_t st = ev->status;

	if (!r) {
		log_debug("reply to unknown request %llu ignored",
			  (unsigned long long)ev->req_id);
		return;
	}
	if ((st == LM_ERR_NOQUORUM || st == LM_ERR_SYNCING) &&
	    !(r->kind == REQ_ADMIN && st == LM_ERR_NOQUORUM)) {
		r->state = RS_WAIT_READY; /* resent after LM_EV_READY */
		return;
	}
	switch (r->kind) {
	case REQ_ACQUIRE:
		if (st == 0) {
			own_granted(ld, r->own, ev->epoch);
			return;
		}
		log_res(LOG_INFO, r->own->res.fileid, "acquire refused: %s",
			lm_strerror(st));
		reply_waiters(ld, r->own, st, false);
		own_done(ld, r->own);
		return;
	case REQ_RELEASE:
		if (st)
			log_res(LOG_INFO, r->own->res.fileid, "release "
				"answered: %s", lm_strerror(st));
		own_done(ld, r->own);
		return;
	case REQ_PLOCK:
	case REQ_ADMIN:
		if (r->client && !r->canceled)
			lockd_client_reply(ld, r->client, r->seq, st,
					   ev->epoch);
		break;
	case REQ_INTERNAL:
		if (st)
			log_debug("internal request %llu: %s",
				  (unsigned long long)r->req_id,
				  lm_strerror(st));
		break;
	}
	lockd_req_free(r);
}

static void on_queued(struct lockd *ld, const struct lm_ev *ev)
{
	struct lockd_req *r = req_find(ld, ev->req_id);

	if (!r)
		return;
	r->state = RS_QUEUED;
	if (r->kind == REQ_ACQUIRE)
		reply_waiters(ld, r->own, EAGAIN, true);
}

static void on_plock_granted(struct lockd *ld, const struct lm_ev *ev)
{
	struct lockd_req *r = req_find(ld, ev->req_id);

	if (!r)
		return;
	if (r->canceled || !r->client)
		plock_undo(ld, r);
	else
		lockd_client_reply(ld, r->client, r->seq, 0, 0);
	lockd_req_free(r);
}

/* ---- state transfer ---- */

static void send_snapshot(struct lockd *ld)
{
	struct lm_cmsg m = { .type = LM_C_SYNC_DATA };
	uint8_t *buf = NULL;
	size_t len = 0, off;
	uint32_t idx = 0;
	int ret;

	ret = lm_state_snapshot(ld->st, &buf, &len);
	if (ret) {
		lockd_fatal(ld, "cannot serialise the lock table for a joining "
			    "node");
		return;
	}
	for (off = 0; off < len; off += LM_SYNC_CHUNK, idx++) {
		size_t n = len - off > LM_SYNC_CHUNK ? LM_SYNC_CHUNK :
			   len - off;

		m.u.sync_data.index = idx;
		m.u.sync_data.len = (uint32_t)n;
		m.u.sync_data.data = buf + off;
		lockd_send(ld, &m);
	}
	m.type = LM_C_SYNC_DONE;
	memset(&m.u, 0, sizeof(m.u));
	m.u.sync_done.chunks = idx;
	m.u.sync_done.total_len = len;
	m.u.sync_done.checksum = lm_checksum64(LM_CHECKSUM_SEED, buf, len);
	lockd_send(ld, &m);
	log_notice("state transfer: this node is the donor, sent %zu bytes "
		   "in %u chunk(s)", len, m.u.sync_done.chunks);
	free(buf);
}

static void on_not_ready(struct lockd *ld)
{
	struct lm_status_info si;

	ld->ready = false;
	lm_state_status(ld->st, &si);
	if (!si.quorate && !si.quorum_from) {
		/* a new ring or membership: corosync's decision for it is
		 * on its way; the lease is not extended meanwhile */
		log_info("waiting for corosync's quorum decision for ring "
			 "%u.%llu", si.ring.nodeid,
			 (unsigned long long)si.ring.seq);
	} else if (!si.quorate) {
		log_warn("lock table not quorate: corosync (votequorum on "
			 "node %u) decided so for ring %u.%llu (%u of %u "
			 "expected votes, %u needed); no grants until quorum "
			 "returns", si.quorum_from, si.ring.nodeid,
			 (unsigned long long)si.ring.seq, si.total_votes,
			 si.expected_votes, si.q.quorum);
		lockd_lease_end(ld, "the lock table lost quorum");
	} else {
		log_notice("state transfer under way: no grants until it "
			   "completes");
	}
}

/* Cluster-wide events, counted as this replica applies them. */
static void count_event(struct lockd *ld, const struct lm_ev *ev)
{
	struct lockd_metrics *m = &ld->metrics;

	switch (ev->type) {
	case LM_EV_GRANTED:
		m->grants++;
		if (!ev->req_id)
			m->handoffs++;
		break;
	case LM_EV_REVOKE:
		m->revokes++;
		break;
	case LM_EV_RELEASED:
		m->releases++;
		break;
	case LM_EV_LOST:
		m->lost++;
		break;
	case LM_EV_FENCED:
		m->fences++;
		break;
	default:
		break;
	}
}

void lockd_route_event(struct lockd *ld, const struct lm_ev *ev)
{
	bool mine = is_mine(ld, ev);

	count_event(ld, ev);
	switch (ev->type) {
	case LM_EV_REPLY:
		if (mine)
			on_reply(ld, ev);
		break;
	case LM_EV_QUEUED:
		if (mine)
			on_queued(ld, ev);
		break;
	case LM_EV_GRANTED:
		if (mine)
			on_granted(ld, ev);
		break;
	case LM_EV_REVOKE:
		if (mine)
			on_revoke(ld, ev);
		break;
	case LM_EV_RELEASED:
		if (mine)
			on_released(ld, ev);
		break;
	case LM_EV_LOST:
		if (mine)
			on_lost(ld, ev);
		break;
	case LM_EV_OWNER:
		on_owner(ld, ev);
		break;
	case LM_EV_PLOCK_GRANTED:
		if (mine)
			on_plock_granted(ld, ev);
		break;
	case LM_EV_FENCED:
		lockd_fenced(ld, ev->node);
		break;
	case LM_EV_NODE:
		log_debug("node %u changed state", ev->node);
		break;
	case LM_EV_READY:
		ld->ready = true;
		ld->ready_gen++;
		log_notice("lock table ready");
		/* prove our membership in the new ring at once: the lease
		 * must not wait a heartbeat period after a ring change */
		lockd_lease_heartbeat_now(ld);
		resend_in_state(ld, RS_WAIT_READY);
		resolve_lost(ld);
		break;
	case LM_EV_NOT_READY:
		on_not_ready(ld);
		break;
	case LM_EV_SYNC_DONOR:
		if (mine)
			send_snapshot(ld);
		break;
	case LM_EV_SYNC_INSTALLED:
		log_notice("state transfer done: table installed");
		resend_in_state(ld, RS_QUEUED);
		verify_held(ld);
		resolve_lost(ld);
		break;
	case LM_EV_SYNC_FAILED:
		lockd_fatal(ld, "the state transfer was rejected (the donor's "
			    "table did not decode)");
		break;
	case LM_EV_PROTO:
	case LM_EV_EXCLUDED:
		lockd_proto_event(ld, ev);
		break;
	}
}

/* ---- timers, shutdown ---- */

static void warn_revoke(struct lockd *ld, struct lockd_own *o, uint64_t now)
{
	char pids[200] = "";
	size_t off = 0;

	for (struct lockd_holder *h = o->holders; h; h = h->next) {
		int n = snprintf(pids + off, sizeof(pids) - off, "%s%d",
				 off ? "," : "", (int)h->client->pid);

		if (n < 0 || (size_t)n >= sizeof(pids) - off)
			break;
		off += (size_t)n;
	}
	log_res(LOG_WARNING, o->res.fileid, "revoke not answered after %llu "
		"ms by client pid(s) %s; the file stays owned by this node "
		"until they release it", (unsigned long long)
		((now - o->revoke_ns) / NS_PER_MS), pids);
	o->revoke_warned = true;
}

void lockd_res_tick(struct lockd *ld, uint64_t now)
{
	uint64_t revoke_ns = ld->conf.revoke_timeout_ms * NS_PER_MS;
	uint64_t idle_ns = ld->conf.handoff_idle_ms * NS_PER_MS;
	struct lockd_link *p, *t;

	lk_for_each_safe(p, t, &ld->owns) {
		struct lockd_own *o = lk_entry(p, struct lockd_own, link);

		if (o->state == OWN_REVOKING && !o->revoke_warned &&
		    now - o->revoke_ns >= revoke_ns)
			warn_revoke(ld, o, now);
		if (o->state == OWN_HELD && !o->holders &&
		    now - o->idle_since_ns >= idle_ns)
			own_release(ld, o, "hand-off grant not claimed by a "
				    "local client");
	}
}

unsigned lockd_release_all(struct lockd *ld)
{
	struct lockd_link *p, *t;
	struct lm_ev ev = { .type = LM_EV_REVOKE };
	unsigned n = 0;

	lk_for_each_safe(p, t, &ld->owns) {
		struct lockd_own *o = lk_entry(p, struct lockd_own, link);

		reply_waiters(ld, o, LM_ERR_SHUTDOWN, false);
		if (o->state != OWN_HELD)
			continue;
		n++;
		if (!ld->ready) {
			log_res(LOG_WARNING, o->res.fileid, "not released at "
				"shutdown: the lock table is not ready; the "
				"other nodes fence this node for it");
			continue;
		}
		ev.res = o->res;
		on_revoke(ld, &ev);
	}
	return n;
}

bool lockd_res_settled(struct lockd *ld)
{
	struct lockd_link *p, *t;

	if (!ld->ready)
		return true;
	lk_for_each_safe(p, t, &ld->owns) {
		struct lockd_own *o = lk_entry(p, struct lockd_own, link);

		if (o->state == OWN_HELD || o->state == OWN_REVOKING ||
		    o->state == OWN_RELEASING)
			return false;
	}
	return true;
}

void lockd_res_fini(struct lockd *ld)
{
	struct lockd_link *p, *t;

	if (!ld->reqs.next)
		return;
	lk_for_each_safe(p, t, &ld->owns) {
		struct lockd_own *o = lk_entry(p, struct lockd_own, link);

		if (o->state == OWN_HELD || o->state == OWN_REVOKING)
			log_res(LOG_WARNING, o->res.fileid, "still owned at "
				"exit (epoch %llu): the other nodes fence this "
				"node before granting it",
				(unsigned long long)o->epoch);
		own_free(o);
	}
	lk_for_each_safe(p, t, &ld->reqs)
		lockd_req_free(lk_entry(p, struct lockd_req, link));
	lk_for_each_safe(p, t, &ld->grants) {
		lk_del(p);
		free(lk_entry(p, struct lockd_grant_seen, link));
	}
}
