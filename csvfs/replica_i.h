/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * replica_i.h - private to replica.c (configuration, volume files, the
 * write path) and replica_ship.c (the replication thread).
 *
 * On the volume, in .csvfs/replica/ (text files are key=value lines):
 *   <fileid>.conf  a replicated file: group, name, initial (1 until its
 *                  first full copy is shipped)
 *   <fileid>.al    its activity log (replica_track.h)
 *   <fileid>.bm    the changes a planned hand-off left
 *   g-<group>.conf the group: interval, target, certificates, hook, rpo
 *   g-<group>.st   the group's last point (written by the shipper)
 *
 * Lock order: r->lock, then a group's g->mu; neither is held across
 * backend I/O except r->lock across the short reads of the scan.
 */
#ifndef CSVFS_REPLICA_I_H
#define CSVFS_REPLICA_I_H

#include <pthread.h>

#include "backend.h"
#include "replica.h"
#include "replica_track.h"

#define REP_DIR		  "replica"
#define REP_GROUP_MAX	  64   /* bytes of a group name, NUL included */
#define REP_NAME_MAX	  1024 /* a file's name in its group */
#define REP_PATH_MAX	  256  /* target, certificate paths */
#define REP_GROUPS	  64   /* groups per volume */
#define REP_FILES	  256  /* files per group (CVR_FILES_MAX) */
#define REP_CBW_BUCKETS	  256
#define REP_CBW_MAX_BYTES ((size_t)256 << 20)
#define REP_INTERVAL_MIN  5
#define REP_INTERVAL_MAX  86400
#define REP_INTERVAL_DEF  30

/* A granule copied aside before a write changed it. */
struct rep_cbw {
	uint64_t fileid, granule;
	size_t len; /* bytes of data (the file may end inside it) */
	struct rep_cbw *next;
	unsigned char data[];
};

struct rep_group {
	char name[REP_GROUP_MAX]; /* immutable */
	uint64_t id;		  /* immutable: the wire's group id */
	/* configuration: r->lock */
	unsigned interval_s, rpo_s;
	char host[REP_PATH_MAX];
	unsigned port;
	char ca[REP_PATH_MAX], cert[REP_PATH_MAX], key[REP_PATH_MAX];
	char hook[REP_PATH_MAX];

	pthread_mutex_t mu;
	pthread_cond_t cond; /* mu: hold ended, inflight reached 0 */
	bool hold;	     /* mu: a point is being frozen */
	unsigned inflight;   /* mu: requests between begin and end */
	bool shipping;	     /* mu: a frozen point not finished */
	bool aborted;	     /* mu: that point lost a file (hand-off) */
	struct rep_cbw *cbw[REP_CBW_BUCKETS]; /* mu */
	size_t cbw_bytes;		      /* mu */
	bool cbw_full; /* mu: copies refused, point abandoned */
	/* status: mu */
	uint64_t last_point, generation;
	int64_t last_time_ns; /* when the last point shipped was taken */
	uint64_t points, failures, bytes;
	/* the barrier: how long the last freeze held the group's writes,
	 * the longest such hold, and their sum over all freezes (us) */
	uint64_t hold_us, hold_us_max, hold_us_sum, holds;
	char last_err[256];
	bool failing; /* the replication thread only: last point failed */
};

struct cv_rep_file {
	uint64_t fileid;	     /* immutable */
	struct cv_rep *r;	     /* immutable */
	struct rep_group *_Atomic g; /* set while not enabled */
	char name[REP_NAME_MAX];     /* r->lock */
	bool initial;		     /* r->lock */
	atomic_bool enabled;
	struct rt_file *t;	      /* immutable */
	struct cv_inode *_Atomic ino; /* pinned once, for the mount's life */
	/* activity log I/O: only in rt callbacks, under t's al_lock */
	struct be_file *al;
	uint64_t al_size;
	struct cv_rep_file *next; /* r->lock */
};

struct cv_rep {
	struct cv_fs *fs; /* immutable */
	pthread_mutex_t lock;
	struct be_node *dir;	   /* lock: .csvfs/replica, or NULL */
	struct cv_rep_file *files; /* lock: never freed before the end */
	struct rep_group *groups[REP_GROUPS]; /* lock */
	unsigned ngroups;		      /* lock */
	atomic_uint gen;		      /* bumped when files change */
	atomic_uint phase;		      /* grace periods: see replica.c */
	atomic_uint inside[2];
	pthread_cond_t cond; /* lock: stop */
	bool stop;	     /* lock */
	bool running;
	pthread_t thread;
};

/* replica.c */
int rep_dir(struct cv_rep *r, struct be_node **out);
int rep_read_file(struct cv_rep *r, const char *name, char **buf, size_t *len);
int rep_write_file(struct cv_rep *r, const char *name, const void *buf,
		   size_t len);
int rep_scan(struct cv_rep *r);
struct rep_group *rep_group_get(struct cv_rep *r, const char *name);
int rep_file_conf_write(struct cv_rep *r, struct cv_rep_file *f);
void rep_grace(struct cv_rep *r);
struct rep_cbw *rep_cbw_find(struct rep_group *g, uint64_t fileid,
			     uint64_t granule);
void rep_cbw_clear(struct rep_group *g);

/* Whether the volume holds changes of f not shipped (its log, its
 * hand-off bitmap, its first copy). */
bool rep_pending(struct cv_rep_file *f);

/* replica_ship.c */
void *rep_thread(void *arg);

#endif /* CSVFS_REPLICA_I_H */
