// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lockd_mounts.c - which csvfs volumes every node has mounted, for
 * `csvfs-admin volumes`.
 *
 * A csvfs mount says its volume (UUID, label, SOURCE) and mount point in
 * its hello.  Each lockd multicasts its own mounts as LM_C_MOUNT messages
 * and keeps every node's list here, beside the lock table.
 *
 * Why not in the replicated table: the list is information for operators,
 * not safety state.  Nothing is granted or refused because of it, so it
 * need not be in lm_state's deterministic order, its snapshot or its
 * digest (I5), and the state transfer and the simulator stay as they are.
 * Each node is the only authority on its own mounts, so a plain
 * "sender replaces its own list" protocol is enough: a node sends RESET
 * followed by one ADD per mount after every membership change with joins
 * (a joining node learns everybody's list, and a merged partition
 * refreshes), and ADD / DEL as mounts come and go.  A node that leaves the
 * membership takes its list with it.  CPG delivers a sender's messages in
 * order, so a RESET never overtakes the ADDs it precedes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lockd.h"
#include "log.h"

/* Mounts kept per node; more are logged and not shown. */
#define LOCKD_MOUNTS_PER_NODE 256

static void mount_of_client(const struct lockd_client *c, struct lm_mount *m)
{
	memset(m, 0, sizeof(*m));
	memcpy(m->volume, c->volume, LM_VOLUME_LEN);
	snprintf(m->label, sizeof(m->label), "%s", c->vol_label);
	snprintf(m->source, sizeof(m->source), "%s", c->source);
	snprintf(m->mountpoint, sizeof(m->mountpoint), "%s", c->label);
}

static void send_mount(struct lockd *ld, uint8_t op, const struct lm_mount *m)
{
	struct lm_cmsg cm = { .type = LM_C_MOUNT };

	cm.u.mount.op = op;
	if (m)
		cm.u.mount.m = *m;
	lockd_send(ld, &cm);
}

void lockd_mounts_client_up(struct lockd *ld, struct lockd_client *c)
{
	struct lm_mount m;

	if (c->kind != LM_CLIENT_CSVFS)
		return;
	mount_of_client(c, &m);
	send_mount(ld, LM_MOUNT_ADD, &m);
}

void lockd_mounts_client_gone(struct lockd *ld, struct lockd_client *c)
{
	struct lm_mount m;

	if (!c->hello_done || c->kind != LM_CLIENT_CSVFS || ld->exit_now)
		return;
	mount_of_client(c, &m);
	send_mount(ld, LM_MOUNT_DEL, &m);
}

/* RESET, then every local mount. */
static void resend_all(struct lockd *ld)
{
	struct lockd_link *p, *t;
	struct lm_mount m;

	send_mount(ld, LM_MOUNT_RESET, NULL);
	lk_for_each_safe(p, t, &ld->clients) {
		struct lockd_client *c = lk_entry(p, struct lockd_client, link);

		if (!c->hello_done || c->dead || c->kind != LM_CLIENT_CSVFS)
			continue;
		mount_of_client(c, &m);
		send_mount(ld, LM_MOUNT_ADD, &m);
	}
}

static void drop_node(struct lockd *ld, uint32_t node, const char *mnt)
{
	size_t i = 0;

	while (i < ld->n_mounts) {
		struct lm_volume_entry *e = &ld->mounts[i];

		if (e->node == node &&
		    (!mnt || strcmp(e->m.mountpoint, mnt) == 0)) {
			ld->mounts[i] = ld->mounts[--ld->n_mounts];
			continue;
		}
		i++;
	}
}

static void add_mount(struct lockd *ld, uint32_t node,
		      const struct lm_mount *m)
{
	struct lm_volume_entry *v;
	size_t per_node = 0;

	drop_node(ld, node, m->mountpoint);
	for (size_t i = 0; i < ld->n_mounts; i++)
		per_node += ld->mounts[i].node == node;
	if (per_node >= LOCKD_MOUNTS_PER_NODE) {
		log_warn("node %u reports more than %d mounts; %s not shown "
			 "by csvfs-admin volumes", node, LOCKD_MOUNTS_PER_NODE,
			 m->mountpoint);
		return;
	}
	if (ld->n_mounts == ld->cap_mounts) {
		size_t cap = ld->cap_mounts ? 2 * ld->cap_mounts : 16;

		v = realloc(ld->mounts, cap * sizeof(*v));
		if (!v)
			return; /* informational only */
		ld->mounts = v;
		ld->cap_mounts = cap;
	}
	ld->mounts[ld->n_mounts].node = node;
	ld->mounts[ld->n_mounts].m = *m;
	ld->n_mounts++;
}

void lockd_mounts_delivered(struct lockd *ld, uint32_t from,
			    const struct lm_c_mount *mm)
{
	switch (mm->op) {
	case LM_MOUNT_RESET:
		drop_node(ld, from, NULL);
		break;
	case LM_MOUNT_ADD:
		add_mount(ld, from, &mm->m);
		break;
	case LM_MOUNT_DEL:
		drop_node(ld, from, mm->m.mountpoint);
		break;
	}
}

void lockd_mounts_confchg(struct lockd *ld, const struct lm_confchg *cc)
{
	for (size_t i = 0; i < cc->n_left; i++)
		drop_node(ld, cc->left[i], NULL);
	if (cc->n_joined)
		resend_all(ld);
}

void lockd_mounts_fini(struct lockd *ld)
{
	free(ld->mounts);
	ld->mounts = NULL;
	ld->n_mounts = ld->cap_mounts = 0;
}
