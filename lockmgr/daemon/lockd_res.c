// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lockd_res.c - the shell around this node's decisions (lm_node.h):
 * client requests and lock-table events go in, and the actions that come
 * out are carried out here: cluster messages queued, replies and events
 * pushed to clients, the lease pushed, fence commands started, logs.
 *
 * Which client holds or waits for what, when a request is sent again,
 * what to do on each event of the table (the races of cancel vs grant,
 * SETW cancel vs a late PLOCK_GRANTED, the lease ending while we own
 * files) are decided by lm_node.c, which the simulator and the unit tests
 * run too.  What stays here is what only a daemon has: client sockets by
 * id, metrics, log output, the OWNERS grant ages.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lockd.h"
#include "log.h"

#define NS_PER_MS 1000000ull

int lockd_res_init(struct lockd *ld)
{
	lk_init(&ld->grants);
	lm_node_actq_init(&ld->acts);
	ld->node = lm_node_new(ld->st, cv_now_ns());
	return ld->node ? 0 : -ENOMEM;
}

/* ---- carrying out actions ---- */

static void act_reply(struct lockd *ld, const struct lm_node_act *a)
{
	struct lockd_client *c = lockd_client_by_id(ld, a->client);

	if (a->acquire && a->status)
		ld->metrics.acquire_errors++;
	if (a->acquire && a->latency_us >= 0)
		lm_hist_observe(&ld->metrics.acquire_latency,
				(uint64_t)a->latency_us);
	if (c)
		lockd_client_reply(ld, c, a->seq, a->status, a->epoch);
}

static void act_push(struct lockd *ld, const struct lm_node_act *a)
{
	struct lockd_client *c = lockd_client_by_id(ld, a->client);
	struct lm_smsg m = { .type = a->smsg };

	if (!c)
		return;
	m.u.ev_file.fileid = a->res.fileid;
	m.u.ev_file.epoch = a->epoch;
	m.u.ev_file.owner = a->node;
	lockd_client_push(ld, c, &m);
}

static void act_revoke_slow(struct lockd *ld, const struct lm_node_act *a)
{
	struct lm_node_own_info info;
	char pids[200] = "";
	size_t off = 0;

	if (lockd_res_own_info(ld, &a->res, &info))
		return;
	for (unsigned i = 0; i < info.n_holders && i < 8; i++) {
		struct lockd_client *c =
			lockd_client_by_id(ld, info.holders[i]);
		int n;

		if (!c)
			continue;
		n = snprintf(pids + off, sizeof(pids) - off, "%s%d",
			     off ? "," : "", (int)c->pid);
		if (n < 0 || (size_t)n >= sizeof(pids) - off)
			break;
		off += (size_t)n;
	}
	log_res(LOG_WARNING, a->res.fileid, "revoke not answered after %llu "
		"ms by client pid(s) %s; the file stays owned by this node "
		"until they release it", (unsigned long long)a->deadline,
		pids);
}

static void act_lease(struct lockd *ld, const struct lm_node_act *a)
{
	ld->lease_valid = a->lease_valid;
	ld->lease_deadline_ns = a->deadline;
	lockd_push_lease(ld, NULL);
	if (a->lease_valid)
		lockd_lease_extended(ld, cv_now_ns());
}

static void act_log(const struct lm_node_act *a)
{
	if (a->res.fileid)
		log_res(a->level, a->res.fileid, "%s", a->text);
	else
		cv_log(a->level, "%s", a->text);
}

static void act_one(struct lockd *ld, const struct lm_node_act *a)
{
	switch (a->type) {
	case LM_NA_SEND:
		lockd_send(ld, &a->msg);
		break;
	case LM_NA_REPLY:
		act_reply(ld, a);
		break;
	case LM_NA_PUSH:
		act_push(ld, a);
		break;
	case LM_NA_PUSH_VOLUME:
		lockd_push_volume(ld, a->smsg, &a->res, a->epoch, a->node);
		break;
	case LM_NA_LEASE:
		act_lease(ld, a);
		break;
	case LM_NA_FENCE_CMD:
	case LM_NA_FENCE_KILL:
		lockd_fence_act(ld, a);
		break;
	case LM_NA_REVOKE_SLOW:
		act_revoke_slow(ld, a);
		break;
	case LM_NA_LOG:
		act_log(a);
		break;
	}
}

void lockd_node_run(struct lockd *ld)
{
	const char *fatal;

	if (ld->acts_running)
		return;
	ld->acts_running = true;
	/* actions may queue more (lockd_fatal ends the lease): by index */
	for (size_t i = 0; i < ld->acts.n; i++) {
		struct lm_node_act a = ld->acts.a[i];

		act_one(ld, &a);
	}
	fatal = ld->acts.fatal;
	ld->acts.fatal = NULL;
	lm_node_actq_reset(&ld->acts);
	ld->acts_running = false;
	if (fatal)
		lockd_fatal(ld, fatal);
}

/* ---- client requests ---- */

uint64_t lockd_request(struct lockd *ld, enum lm_node_req_kind kind,
		       const struct lm_cmsg *m, struct lockd_client *c,
		       uint32_t seq)
{
	uint64_t id = lm_node_request(ld->node, kind, m, c ? c->id : 0, seq,
				      cv_now_ns(), &ld->acts);

	lockd_node_run(ld);
	return id;
}

static struct lm_res client_res(const struct lockd_client *c,
				uint64_t fileid)
{
	struct lm_res res = { .fileid = fileid };

	memcpy(res.volume, c->volume, LM_VOLUME_LEN);
	return res;
}

void lockd_acquire(struct lockd *ld, struct lockd_client *c, uint32_t seq,
		   uint64_t fileid, uint32_t flags)
{
	struct lm_res res = client_res(c, fileid);

	ld->metrics.acquires++;
	lm_node_acquire(ld->node, c->id, seq, &res, flags, cv_now_ns(),
			&ld->acts);
	lockd_node_run(ld);
}

int lockd_client_release(struct lockd *ld, struct lockd_client *c,
			 uint64_t fileid, uint64_t epoch)
{
	struct lm_res res = client_res(c, fileid);
	int ret = lm_node_release(ld->node, c->id, &res, epoch,
				  cv_now_ns(), &ld->acts);

	lockd_node_run(ld);
	return ret;
}

void lockd_cancel(struct lockd *ld, struct lockd_client *c, uint32_t cseq,
		  uint32_t seq)
{
	lm_node_cancel(ld->node, c->id, cseq, seq, cv_now_ns(), &ld->acts);
	lockd_node_run(ld);
}

void lockd_res_client_gone(struct lockd *ld, struct lockd_client *c)
{
	lm_node_client_gone(ld->node, c->id, cv_now_ns(), &ld->acts);
	lockd_node_run(ld);
	while (c->plowners) {
		struct lockd_plowner *po = c->plowners;
		struct lm_cmsg m = { .type = LM_C_PLOCK };

		c->plowners = po->next;
		m.u.plock.res = client_res(c, po->fileid);
		m.u.plock.space = po->space;
		m.u.plock.op = LM_PL_RELEASE_OWNER;
		m.u.plock.owner = po->owner;
		m.u.plock.end = LM_OFFSET_MAX;
		lockd_request(ld, LM_NREQ_INTERNAL, &m, NULL, 0);
		free(po);
	}
}

/* ---- events ---- */

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
	count_event(ld, ev);
	if (ev->type == LM_EV_OWNER)
		grant_seen(ld, ev);
	if (ev->type == LM_EV_PROTO || ev->type == LM_EV_EXCLUDED)
		lockd_proto_event(ld, ev); /* what to tell the operator */
	lm_node_event(ld->node, ev, cv_now_ns(), &ld->acts);
	lockd_node_run(ld);
}

/* ---- timers, shutdown ---- */

void lockd_res_tick(struct lockd *ld, uint64_t now)
{
	lm_node_res_tick(ld->node, now, &ld->acts);
	lockd_node_run(ld);
}

unsigned lockd_release_all(struct lockd *ld)
{
	unsigned n = lm_node_stop(ld->node, cv_now_ns(), &ld->acts);

	lockd_node_run(ld);
	return n;
}

bool lockd_res_settled(struct lockd *ld)
{
	return lm_node_settled(ld->node);
}

struct find_arg {
	const struct lm_res *res;
	struct lm_node_own_info *out;
};

static int find_own(const struct lm_node_own_info *info, void *arg)
{
	struct find_arg *fa = arg;

	if (info->res.fileid != fa->res->fileid ||
	    memcmp(info->res.volume, fa->res->volume, LM_VOLUME_LEN))
		return 0;
	*fa->out = *info;
	return 1;
}

int lockd_res_own_info(struct lockd *ld, const struct lm_res *res,
		       struct lm_node_own_info *out)
{
	struct find_arg fa = { .res = res, .out = out };

	return lm_node_foreach_own(ld->node, find_own, &fa) == 1 ? 0 :
	       -ENOENT;
}

static int warn_owned(const struct lm_node_own_info *info, void *arg)
{
	(void)arg;
	if (info->state == LM_OWN_HELD || info->state == LM_OWN_REVOKING)
		log_res(LOG_WARNING, info->res.fileid, "still owned at exit "
			"(epoch %llu): the other nodes fence this node before "
			"granting it", (unsigned long long)info->epoch);
	return 0;
}

void lockd_res_fini(struct lockd *ld)
{
	struct lockd_link *p, *t;

	if (!ld->node)
		return;
	lm_node_foreach_own(ld->node, warn_owned, NULL);
	lm_node_free(ld->node);
	ld->node = NULL;
	lm_node_actq_free(&ld->acts);
	lk_for_each_safe(p, t, &ld->grants) {
		lk_del(p);
		free(lk_entry(p, struct lockd_grant_seen, link));
	}
}
