/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * conn.h - the pool of libnfs contexts behind the nfs backend (conn.c)
 * and NFS_CALL, which runs one libnfs call on a pooled context with the
 * retry rules of conn.c.
 */
#ifndef CSVFS_NFS_CONN_H
#define CSVFS_NFS_CONN_H

#include <errno.h>

#include "nfs_i.h"

int nfs_pool_init(struct be_nfs *p);
void nfs_pool_destroy(struct be_nfs *p);
struct nfs_conn *nfs_conn_get(struct be_nfs *p, int *rc);
enum { NFS_PUT_KEPT, NFS_PUT_DROPPED, NFS_PUT_REFUSED };
int nfs_conn_put(struct be_nfs *p, struct nfs_conn *c, int rc,
		 const char *what, const char *obj);

/*
 * Run EXPR (an int-valued libnfs call using `c->nfs`) on a pooled
 * context; retry once on a fresh connection after a transport error when
 * IDEMPOTENT, and after a refusal for lost NFSv4 state in any case.  rc
 * receives the result (a transport failure ends as -EIO).  OBJ (a path,
 * "fileid N" or NULL) names what WHAT acted on in the log.
 */
#define NFS_CALL(p, rc, idempotent, what, expr) \
	NFS_CALL_ON(p, rc, idempotent, what, NULL, expr)
#define NFS_CALL_ON(p, rc, idempotent, what, obj, expr)                   \
	do {                                                              \
		int try_, put_;                                           \
		for (try_ = 0; try_ < 2; try_++) {                        \
			struct nfs_conn *c = nfs_conn_get((p), &(rc));    \
			if (!c)                                           \
				break;                                    \
			(rc) = (expr);                                    \
			put_ = nfs_conn_put((p), c, (rc), (what), (obj)); \
			if (put_ == NFS_PUT_KEPT)                         \
				break;                                    \
			(rc) = -EIO;                                      \
			if (!(idempotent) && put_ != NFS_PUT_REFUSED)     \
				break;                                    \
		}                                                         \
	} while (0)

#endif /* CSVFS_NFS_CONN_H */
