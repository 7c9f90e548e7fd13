// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lockc.c - glue between csvfs and liblockmgr (see lockc.h).
 *
 * Timeouts: connect 5 s; acquire 60 s (a revoke on another node waits
 * for that node's in-flight writes and an fsync; past that the write
 * fails with EIO rather than hang a VM forever); release and queries
 * 10 s; a blocking F_SETLKW waits until granted or interrupted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lkm.h"
#include "lockc.h"
#include "log.h"
#include "own.h"

#define LOCKC_CONNECT_MS 5000
#define LOCKC_ACQUIRE_MS 60000
#define LOCKC_CALL_MS 10000

struct cv_lockc {
	struct lkm_client *c;	/* immutable after connect */
	uint8_t volume[LM_VOLUME_LEN]; /* immutable */
	struct cv_own *own;	/* immutable after start */
	cv_owner_fn on_owner;	/* immutable after start */
	void *arg;		/* immutable after start */
	char node[LM_NAME_MAX]; /* immutable: lockd's node name */
};

int cv_lockc_connect(const char *path, const struct cv_lockc_mount *mnt,
		     const char *node, char *err, size_t errlen,
		     struct cv_lockc **out)
{
	struct lkm_hello hello = {
		.kind = LM_CLIENT_CSVFS,
		.label = mnt->mountpoint,
		.vol_label = mnt->vol_label,
		.source = mnt->source,
	};
	const uint8_t *volume = mnt->volume;
	const struct lkm_server_info *si;
	struct cv_lockc *lc;
	int rc;

	lc = calloc(1, sizeof(*lc));
	if (!lc)
		return -ENOMEM;
	memcpy(hello.volume, volume, LM_VOLUME_LEN);
	memcpy(lc->volume, volume, LM_VOLUME_LEN);
	rc = lkm_connect(path, &hello, LOCKC_CONNECT_MS, &lc->c);
	if (rc) {
		snprintf(err, errlen,
			 "cannot connect to csvfs-lockd at %s: %s "
			 "(is csvfs-lockd running? see -o lockd=PATH)",
			 path, lkm_strerror(rc));
		goto fail;
	}
	si = lkm_server(lc->c);
	snprintf(lc->node, sizeof(lc->node), "%s", si->node_name);
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
	free(lc);
	return rc;
}

static void on_event(const struct lm_smsg *ev, void *arg)
{
	struct cv_lockc *lc = arg;
	const struct lm_s_ev_file *f = &ev->u.ev_file;

	switch (ev->type) {
	case LM_S_EV_LEASE:
		cv_own_ev_lease(lc->own, ev->u.ev_lease.valid,
				ev->u.ev_lease.deadline_ns);
		break;
	case LM_S_EV_GRANTED:
		cv_own_ev_granted(lc->own, f->fileid, f->epoch);
		break;
	case LM_S_EV_REVOKE:
		cv_own_ev_revoke(lc->own, f->fileid, f->epoch);
		break;
	case LM_S_EV_OWNER:
		if (lc->on_owner)
			lc->on_owner(lc->arg, f->fileid);
		break;
	case LM_S_EV_LOST:
		cv_own_ev_lost(lc->own, f->fileid);
		break;
	case 0:
		log_err("connection to csvfs-lockd lost: lease ended, "
			"files open for write are poisoned (EIO)");
		cv_own_ev_disconnect(lc->own);
		break;
	default:
		log_debug("ignoring lockd event type %u", ev->type);
		break;
	}
}

int cv_lockc_start(struct cv_lockc *lc, struct cv_own *own,
		   cv_owner_fn on_owner, void *arg)
{
	lc->own = own;
	lc->on_owner = on_owner;
	lc->arg = arg;
	return lkm_start_events(lc->c, on_event, lc);
}

void cv_lockc_close(struct cv_lockc *lc)
{
	if (!lc)
		return;
	lkm_close(lc->c);
	free(lc);
}

const char *cv_lockc_node_name(struct cv_lockc *lc)
{
	return lc->node;
}

int cv_lockc_acquire(void *arg, uint64_t fileid, uint64_t *epoch)
{
	struct cv_lockc *lc = arg;

	return lkm_acquire(lc->c, fileid, 0, LOCKC_ACQUIRE_MS, epoch);
}

int cv_lockc_release(void *arg, uint64_t fileid, uint64_t epoch)
{
	struct cv_lockc *lc = arg;
	int rc = lkm_release(lc->c, fileid, epoch, LOCKC_CALL_MS);

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

	return map_err(lkm_plock(lc->c, req, ms));
}

int cv_lockc_getlk(struct cv_lockc *lc, const struct lkm_plock *req,
		   struct lm_lock_entry *conflict)
{
	return map_err(lkm_getlk(lc->c, req, conflict));
}

int cv_lockc_owner(struct cv_lockc *lc, uint64_t fileid, char *name,
		   size_t cap, uint64_t *epoch)
{
	struct lm_res res = { .fileid = fileid };
	struct lm_owner_entry *ov = NULL;
	struct lm_node_entry *nv = NULL;
	size_t no = 0, nn = 0;
	int rc;

	memcpy(res.volume, lc->volume, LM_VOLUME_LEN);
	name[0] = '\0';
	*epoch = 0;
	rc = lkm_owners(lc->c, &res, &ov, &no);
	if (rc)
		return map_err(rc) < 0 ? -EIO : 0;
	for (size_t i = 0; i < no; i++) {
		if (ov[i].res.fileid != fileid || !ov[i].owner)
			continue;
		*epoch = ov[i].epoch;
		rc = lkm_nodes(lc->c, &nv, &nn);
		for (size_t j = 0; !rc && j < nn; j++)
			if (nv[j].id == ov[i].owner)
				snprintf(name, cap, "%s", nv[j].name);
		if (!rc && !name[0])
			snprintf(name, cap, "node%u", ov[i].owner);
		break;
	}
	free(ov);
	free(nv);
	return rc ? -EIO : 0;
}
