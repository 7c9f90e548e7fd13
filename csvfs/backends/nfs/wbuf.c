// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * wbuf.c - the per-node list of uncommitted writes that makes fsync
 * durable on NFS: a copy of every UNSTABLE WRITE is kept until a COMMIT
 * returns the verifier it was written under (RFC 1813 3.3.7), and
 * rewritten FILE_SYNC when it does not (nfs.c decides when; rpc.c sends).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "wbuf.h"

/* Keep a copy of an UNSTABLE write of n.  Returns 0 or -ENOMEM. */
int nfs_unc_add(struct be_nfs *p, struct be_node *n, uint64_t off,
		const void *buf, uint32_t len, const char *verf)
{
	struct nfs_extent *e = malloc(sizeof(*e) + len);

	if (!e)
		return -ENOMEM;
	e->next = NULL;
	e->off = off;
	e->len = len;
	memcpy(e->verf, verf, NFS_VERF_SIZE);
	memcpy(e->data, buf, len);
	pthread_mutex_lock(&n->unc_lock);
	*n->unc_tail = e;
	n->unc_tail = &e->next;
	pthread_mutex_unlock(&n->unc_lock);
	atomic_fetch_add(&p->unc_bytes, len);
	return 0;
}

/* Detach n's list of uncommitted writes (the caller owns it). */
struct nfs_extent *nfs_unc_take(struct be_node *n)
{
	struct nfs_extent *list;

	pthread_mutex_lock(&n->unc_lock);
	list = n->unc;
	n->unc = NULL;
	n->unc_tail = &n->unc;
	pthread_mutex_unlock(&n->unc_lock);
	return list;
}

/* Put a taken list back in front of writes queued since (still older). */
void nfs_unc_putback(struct be_node *n, struct nfs_extent *list)
{
	struct nfs_extent *last;

	if (!list)
		return;
	for (last = list; last->next; last = last->next)
		;
	pthread_mutex_lock(&n->unc_lock);
	last->next = n->unc;
	if (!n->unc)
		n->unc_tail = &last->next;
	n->unc = list;
	pthread_mutex_unlock(&n->unc_lock);
}

void nfs_unc_free(struct be_nfs *p, struct nfs_extent *list)
{
	struct nfs_extent *e;

	while ((e = list)) {
		list = e->next;
		atomic_fetch_sub(&p->unc_bytes, e->len);
		free(e);
	}
}

/* True if every write in list was made under verifier verf. */
bool nfs_unc_all_match(const struct nfs_extent *list, const char *verf)
{
	for (; list; list = list->next)
		if (memcmp(list->verf, verf, NFS_VERF_SIZE))
			return false;
	return true;
}
