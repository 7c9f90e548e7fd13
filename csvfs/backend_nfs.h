/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * backend_nfs.h - private state of the nfs backend (backend_nfs*.c): the
 * backend instance, its pool of libnfs contexts and its object handles.
 *
 * Lock order: nfs_conn.lock, then be_nfs.nodes_lock.  Never wait for a
 * second context while holding one.
 */
#ifndef CSVFS_BACKEND_NFS_H
#define CSVFS_BACKEND_NFS_H

#include <nfsc/libnfs.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend.h"

#define NFS_NODE_HASH 4096

/* One libnfs context, used by one thread at a time. */
struct nfs_conn {
	pthread_mutex_t lock;	  /* held by the thread using the context */
	struct nfs_context *nfs;  /* protected by lock; NULL: reconnect */
	unsigned gen;		  /* protected by lock; +1 per connect */
	uint64_t retry_after;	  /* protected by lock; ms, CLOCK_MONOTONIC */
	bool down_logged;	  /* protected by lock */
	int idx;		  /* immutable */
};

struct be_nfs {
	char *url;		/* immutable: libnfs URL, own keys removed */
	int timeout_ms;		/* immutable: per-RPC timeout */
	int nconns;		/* immutable */
	struct nfs_conn *conns; /* immutable array */
	uint64_t readmax;	/* immutable: server rsize */
	uint64_t writemax;	/* immutable: server wsize */
	dev_t dev;		/* immutable: st_dev reported for all */
	int version;		/* immutable: 3 or 4 */

	pthread_mutex_t nodes_lock; /* protects the node list, every
				     * node's path and nopen */
	struct be_node *nodes;	    /* list of live nodes */
	struct be_node *by_fileid[NFS_NODE_HASH]; /* the same, by fileid */
	uint64_t orphan_seq;	    /* protected by nodes_lock */
};

/*
 * An object, known by its path below the export root ("/" for the root)
 * and its fileid.  Renames done through this mount rewrite the paths of
 * every live node below the renamed name; an object moved by another
 * node is found stale by its fileid and reported as such.
 */
struct be_node {
	struct be_node *next, *prev; /* protected by nodes_lock */
	struct be_node *hnext;	     /* protected by nodes_lock */
	char *path;		     /* protected by nodes_lock; NULL: gone */
	uint64_t fileid;	     /* immutable */
	mode_t type;		     /* immutable: S_IFMT bits */
	int refs;		     /* protected by nodes_lock */
	int nopen;		     /* protected by nodes_lock */
	bool orphan;		     /* protected by nodes_lock: path is a
				      * hidden name to remove on last close */
};

int nfs_pool_init(struct be_nfs *p);
void nfs_pool_destroy(struct be_nfs *p);
struct nfs_conn *nfs_conn_get(struct be_nfs *p, int *rc);
bool nfs_conn_put(struct be_nfs *p, struct nfs_conn *c, int rc,
		  const char *what);
bool nfs_transport_error(int rc);

/*
 * Run EXPR (an int-valued libnfs call using `c->nfs`) on a pooled
 * context; retry once on a fresh connection after a transport error when
 * IDEMPOTENT.  rc receives the result (a transport failure ends as -EIO).
 */
#define NFS_CALL(p, rc, idempotent, what, expr)                           \
	do {                                                              \
		int try_;                                                 \
		for (try_ = 0; try_ < 2; try_++) {                        \
			struct nfs_conn *c = nfs_conn_get((p), &(rc));    \
			if (!c)                                           \
				break;                                    \
			(rc) = (expr);                                    \
			if (!nfs_conn_put((p), c, (rc), (what)))          \
				break;                                    \
			(rc) = -EIO;                                      \
			if (!(idempotent))                                \
				break;                                    \
		}                                                         \
	} while (0)

#endif /* CSVFS_BACKEND_NFS_H */
