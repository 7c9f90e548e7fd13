/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * store.h - csvfs-replicad's storage of replicated groups (daemon
 * private).
 *
 * Layout under the store directory:
 *
 *	replica-id			this site's id (32 hex digits)
 *	groups/<group>/			one replication group (16 hex digits)
 *		lock			flock: whoever changes the group
 *		state			owner, generation, retained points
 *		images/<file>.img	each file at the newest point
 *		points/<point>.info	a point's time and files
 *		points/<point>.undo	what turns the point's images back
 *					into the previous retained point's
 *		stage/<point>.begin	an unfinished point's files
 *		stage/<point>.ops	its operations as received
 *		applying		a point being applied (its id)
 *
 * Applying a point: its undo record (the old contents of every range it
 * changes, the old sizes) is written and fsynced first; then the
 * "applying" marker; then the images are changed and fsynced; then the
 * state names the point and the marker goes.  Whoever next locks the
 * group and finds the marker without the point in the state rolls the
 * images back with the undo record: a crash mid-apply leaves the
 * previous point intact.  Older points are materialised by applying the
 * undo records newest first to a copy of the images; dropping a point
 * merges its undo record into its successor's.
 *
 * Locking: rs_group_lock() takes the group's flock (across threads and
 * processes: the daemon's sessions and the materialise/promote
 * commands) and reloads the state; everything but the stage appends
 * needs it.  A group's stage belongs to one session at a time (the
 * daemon keeps a registry).  Storage calls are local file I/O, bounded
 * only by the disk; waiting for the lock has a deadline.
 */
#ifndef CSVFS_REPLICA_STORE_H
#define CSVFS_REPLICA_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "retain.h"

#define RS_PEER_MAX 128

struct rs_store {
	char *dir;
	int dirfd;    /* the store directory */
	int groupsfd; /* groups/ */
	uint8_t id[CVR_ID_LEN];
	struct rt_policy policy;
};

struct rs_point {
	uint64_t point;
	int64_t time_ns;
};

/*
 * One open group.  A struct rs_group is used by one thread (a session or
 * a command); other threads and processes reach the same group through
 * their own, so what they share is on disk, behind the flock.
 */
struct rs_group {
	struct rs_store *store;
	uint64_t id;
	int dirfd;
	int lockfd;
	bool locked;
	/* the state file: reloaded by rs_group_lock, valid while locked */
	bool exists;
	uint8_t primary[CVR_ID_LEN];
	char peer[RS_PEER_MAX]; /* the certificate that owns the group */
	uint64_t generation;
	bool promoted;
	uint64_t failover_point; /* the point promote named (0: none) */
	size_t npoints;
	struct rs_point *points; /* ascending */
	/* the open point (stage): the session's own, one session per group
	 * (the daemon's registry); commands do not touch it */
	uint64_t open_point;
	uint64_t next_op;
	int stage_fd;
	uint32_t nfiles;
	struct cvr_file *files; /* CVR_FILES_MAX, the open point's */
	uint64_t base_point;
	int64_t time_ns;
};

int rs_store_open(const char *dir, struct rs_store *s, char *err,
		  size_t errlen);
void rs_store_close(struct rs_store *s);
/* The groups that exist, ascending; *ids malloc'ed. */
int rs_store_groups(struct rs_store *s, uint64_t **ids, size_t *n);

int rs_group_open(struct rs_store *s, uint64_t id, struct rs_group **g);
void rs_group_close(struct rs_group *g);
/* Take the flock (waiting up to timeout_ms), reload the state and finish
 * or roll back whatever a crash interrupted. */
int rs_group_lock(struct rs_group *g, int timeout_ms, char *err, size_t errlen);
void rs_group_unlock(struct rs_group *g);
uint64_t rs_group_last(const struct rs_group *g);
/* Append a point to the list in memory (ascending ids). */
int rs_group_add_point(struct rs_group *g, uint64_t point, int64_t time_ns);
/* Write the state (locked). */
int rs_group_save(struct rs_group *g);

/* Sessions (locked): see proto.h for the messages' meaning. */
int rs_stage_peek(struct rs_group *g, uint64_t *point, uint64_t *next_op);
int rs_begin(struct rs_group *g, const struct cvr_q_point_begin *b,
	     uint64_t *next_op, char *err, size_t errlen);
/* Unlocked: appends to the session's stage. */
int rs_op(struct rs_group *g, unsigned type, const struct cvr_q_op *q,
	  char *err, size_t errlen);
int rs_end(struct rs_group *g, const struct cvr_q_point_end *e, int64_t now_ns,
	   char *err, size_t errlen);
/* Drop points the policy no longer keeps (locked). */
int rs_prune(struct rs_group *g, int64_t now_ns, char *err, size_t errlen);
/* Bytes of a point's undo record (0 if none). */
uint64_t rs_point_bytes(struct rs_group *g, uint64_t point);
/* A point's files (from its info), up to CVR_FILES_MAX into files. */
int rs_point_files(struct rs_group *g, uint64_t point, struct cvr_file *files,
		   uint32_t *nfiles, uint8_t (*sha)[CVR_SHA_LEN],
		   uint8_t *kind);

/* Copy a retained point's files into dest (locked): dest/<name>. */
int rs_materialise(struct rs_group *g, uint64_t point, const char *dest,
		   char *err, size_t errlen);

/* Seeding (locked): chunk hashes of an image (HASHES), and an image
 * copied into place before the group's first point. */
int rs_image_hashes(struct rs_group *g, const struct cvr_q_hashes *q,
		    uint8_t (*sha)[CVR_SHA_LEN], uint64_t *size);
int rs_seed(struct rs_group *g, uint64_t file_id, const char *src, char *err,
	    size_t errlen);

/* apply.c, used by store.c */
int rs_apply_stage(struct rs_group *g, const struct cvr_q_point_end *e,
		   char *err, size_t errlen);
int rs_undo_rollback(struct rs_group *g, uint64_t point);
int rs_undo_merge(struct rs_group *g, uint64_t older, uint64_t newer);
int rs_undo_restores_to(struct rs_group *g, uint64_t point, uint64_t *to);

/* helpers shared by the store's files */
void rs_name(char *buf, size_t len, const char *dir, uint64_t id,
	     const char *suffix);
int rs_fsync_dir(int dirfd);
int rs_write_atomic(int dirfd, const char *name, const void *p, size_t len);
int rs_pread_all(int fd, void *p, size_t len, uint64_t off);
int rs_pwrite_all(int fd, const void *p, size_t len, uint64_t off);
int rs_write_info(struct rs_group *g, uint64_t point,
		  const struct cvr_q_point_end *e);

#endif /* CSVFS_REPLICA_STORE_H */
