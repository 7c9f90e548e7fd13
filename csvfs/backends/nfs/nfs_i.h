/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * nfs_i.h - the types every file of the nfs backend shares: the backend
 * instance, its pool of libnfs contexts, its object handles and their
 * uncommitted writes.  Functions are declared by the file that defines
 * them: rpc.h (raw WRITE, COMMIT, SETATTR, READDIR), conn.h (the context
 * pool), wbuf.h (uncommitted writes), dirlist.h (directory listings).
 * nfs.c (the backend ops) uses all four, conn.c uses rpc.h, rpc.c uses
 * dirlist.h: no two files import each other.
 *
 * Lock order: be_node.resend_lock, then nfs_conn.lock, then
 * be_node.unc_lock or be_nfs.nodes_lock.  Never wait for a second context
 * while holding one.
 */
#ifndef CSVFS_NFS_I_H
#define CSVFS_NFS_I_H

#include <nfsc/libnfs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "backend.h"

#define NFS_NODE_HASH 4096
#define NFS_VERF_SIZE 8 /* NFS3_WRITEVERFSIZE, NFS4_VERIFIER_SIZE */

/* stable_how of a WRITE, the same numbers in NFSv3 and NFSv4 (RFC 1813
 * 3.3.7, RFC 7530 16.36; libnfs-raw-nfs.h, libnfs-raw-nfs4.h) */
enum { BE_NFS_UNSTABLE = 0, BE_NFS_DATA_SYNC = 1, BE_NFS_FILE_SYNC = 2 };

/* NFSv4 attributes of the export root (0: the server gave none). */
struct nfs4_rootattr {
	uint64_t maxread, maxwrite;
	uint32_t lease_s; /* lease_time: state expires unrenewed after it */
};

/* What an NFSv4 SETATTR sets (-1, false: leave it). */
struct nfs4_sattr {
	int mode, uid, gid;
	bool times;
	struct timespec atime, mtime;
};

/* One libnfs context, used by one thread at a time. */
struct nfs_conn {
	pthread_mutex_t lock;	  /* held by the thread using the context */
	struct nfs_context *nfs;  /* protected by lock; NULL: reconnect */
	unsigned gen;		  /* protected by lock; +1 per connect */
	uint64_t renew_by;	  /* protected by lock; NFSv4: ms, reconnect
				   * after it (see conn.c) */
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
	uint32_t lease_ms;	/* immutable: NFSv4 lease time */
	char *export_path;	/* immutable: NFSv4 path of the export */

	pthread_mutex_t nodes_lock; /* protects the node list, every
				     * node's path and nopen */
	struct be_node *nodes;	    /* list of live nodes */
	struct be_node *by_fileid[NFS_NODE_HASH]; /* the same, by fileid */
	uint64_t orphan_seq;	    /* protected by nodes_lock */

	size_t unc_max;		     /* immutable: bytes kept before a COMMIT
				      * is forced (wbuf=MiB, default 64) */
	atomic_size_t unc_bytes;     /* kept in all nodes' unc lists */
	atomic_ulong verf_resends;   /* COMMITs that found a new verifier */
};

/*
 * One UNSTABLE WRITE the server has acknowledged but not yet committed:
 * its data, kept until a COMMIT returns the same verifier (RFC 1813
 * 3.3.7), and rewritten if it does not.  Owned by the node's unc list.
 */
struct nfs_extent {
	struct nfs_extent *next;
	uint64_t off;
	uint32_t len;
	char verf[NFS_VERF_SIZE]; /* the WRITE's verifier */
	char data[];
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
	atomic_bool gone_logged;     /* "is gone" logged: once, not per
				      * call through its descriptors */

	/* Writers hold resend_lock shared from their WRITE to queueing its
	 * extent; a rewrite after a verifier change holds it exclusive, so
	 * it never puts old data over a newer WRITE. */
	pthread_rwlock_t resend_lock;
	pthread_mutex_t unc_lock;      /* protects unc, unc_tail */
	struct nfs_extent *unc;	       /* uncommitted writes, oldest first */
	struct nfs_extent **unc_tail;
};

/* The result of one raw WRITE or COMMIT (rpc.c). */
struct nfs_wres {
	uint32_t count;		  /* WRITE: bytes written */
	int committed;		  /* WRITE: UNSTABLE, DATA_SYNC, FILE_SYNC */
	char verf[NFS_VERF_SIZE]; /* the server's write verifier */
};

#endif /* CSVFS_NFS_I_H */
