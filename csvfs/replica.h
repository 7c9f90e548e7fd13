/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * replica.h - asynchronous replication of files to a second site, the
 * sending side inside csvfs (doc/design.md §3.9).
 *
 * Per mount, one struct cv_rep: the configuration read from the volume
 * (.csvfs/replica/), the trackers (replica_track.h) of the replicated
 * files this node writes, and a replication thread that takes
 * crash-consistent recovery points of each replication group this node
 * owns and ships them to csvfs-replicad (replica/client.h).
 *
 * Write path (fs.c cv_write and the ring, fuse_uring.c's fast path,
 * truncate, fallocate): after own.c admitted a modifying request,
 * cv_rep_begin marks its range - logging cold extents first, holding it
 * while its group takes a point, copying frozen data aside - and
 * cv_rep_end runs when the request is done, next to cv_own_write_end.
 * A file not replicated costs two atomic operations.
 *
 * Buffers: the caller owns every argument; values returned through
 * out pointers are copied.
 */
#ifndef CSVFS_REPLICA_H
#define CSVFS_REPLICA_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct cv_fs;
struct cv_inode;
struct be_file;
struct cv_rep;
struct cv_rep_file;

/* What an open file keeps to find its tracker fast. */
struct cv_rep_slot {
	struct cv_rep_file *_Atomic f; /* NULL: not replicated */
	atomic_uint gen;	       /* cv_rep's generation it is of; 0:
					* never resolved */
};

/* One admitted request, from cv_rep_begin to cv_rep_end. */
struct rep_group;
struct cv_rep_tok {
	struct cv_rep_file *f; /* NULL: not tracked */
	struct rep_group *g;   /* its group, counted in */
	unsigned phase;
};

int cv_rep_new(struct cv_fs *fs, struct cv_rep **out);
/* Start the replication thread (after the daemon forked). */
int cv_rep_start(struct cv_rep *r);
void cv_rep_stop(struct cv_rep *r);
void cv_rep_free(struct cv_rep *r);

/*
 * A modifying request on [off, off+len) of the open file (slot, fileid,
 * ino pinned by the caller, file its backend handle), admitted by own.c
 * at epoch.  0 and *tok (end it with cv_rep_end), or -errno: the
 * request must fail (the activity log could not be written); nowait:
 * -EAGAIN where it would have to wait (log to write, group point being
 * taken, data to copy aside): take the path that may block.
 */
int cv_rep_begin(struct cv_rep *r, struct cv_rep_slot *slot, uint64_t fileid,
		 struct cv_inode *ino, struct be_file *file, uint64_t epoch,
		 uint64_t off, uint64_t len, bool nowait,
		 struct cv_rep_tok *tok);
void cv_rep_end(struct cv_rep *r, struct cv_rep_tok *tok);

/* Before this node gives up ownership of fileid (own.c's flush, writes
 * drained): leave the changes not shipped for the next owner. */
void cv_rep_handoff(struct cv_rep *r, uint64_t fileid);

/* user.csvfs.replica: set (enable "group=... key=value ...", or "off")
 * and get (the file's state and its group's, as text). */
int cv_rep_xattr_set(struct cv_rep *r, struct cv_inode *ino, const char *value,
		     size_t size);
int cv_rep_xattr_get(struct cv_rep *r, struct cv_inode *ino, char *buf,
		     size_t cap);

#endif /* CSVFS_REPLICA_H */
