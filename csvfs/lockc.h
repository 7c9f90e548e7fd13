/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lockc.h - csvfs's connection to csvfs-lockd (through liblockmgr): the
 * callbacks of the ownership state machine (own.h), the dispatch of
 * lockd's events, and cluster-wide POSIX and flock locks.
 *
 * Event flow: liblockmgr's reader thread calls lockc_event(), which only
 * records: lease and ownership events go to own.c (which never blocks in
 * them), owner changes are queued for the invalidation thread of fs.c
 * (cb on_owner), never run inside a FUSE handler.
 */
#ifndef CSVFS_LOCKC_H
#define CSVFS_LOCKC_H

#include <stdbool.h>
#include <stdint.h>

struct cv_own;
struct lkm_plock;
struct lm_lock_entry;

struct cv_lockc;

/* Called on the library's event thread; must not block. */
typedef void (*cv_owner_fn)(void *arg, uint64_t fileid);

/* What a mount tells lockd in its hello (shown by csvfs-admin volumes). */
struct cv_lockc_mount {
	const uint8_t *volume; /* 16 bytes */
	const char *vol_label;
	const char *source;
	const char *mountpoint;
};

/*
 * Connect to lockd at path for a mount.  Returns 0, or -errno with a
 * reason in err.  If node is not empty it must match lockd's name.
 */
int cv_lockc_connect(const char *path, const struct cv_lockc_mount *mnt,
		     const char *node, char *err, size_t errlen,
		     struct cv_lockc **out);
/*
 * Start receiving events (after own exists), and reconnecting when the
 * connection breaks: a lockd that restarts is said hello to again, as
 * the same node, and new writes acquire ownership through it.
 */
int cv_lockc_start(struct cv_lockc *lc, struct cv_own *own,
		   cv_owner_fn on_owner, void *arg);
/* Stop reconnecting and delivering events (before own and the
 * invalidation thread go away); calls still work.  Idempotent. */
void cv_lockc_stop(struct cv_lockc *lc);
void cv_lockc_close(struct cv_lockc *lc);

/* cv_own_ops callbacks (arg = lc). */
int cv_lockc_acquire(void *arg, uint64_t fileid, int timeout_ms,
		     uint64_t *epoch);
int cv_lockc_acquire_cancel(void *arg, uint64_t fileid);
int cv_lockc_release(void *arg, uint64_t fileid, uint64_t epoch);

/*
 * Ownership of fileid kept by this mount until it ends (a block
 * volume's coordinator role): taken only if no other node has it (no
 * queueing, no revoke of the holder), and never given up on a revoke.
 * 0, -EAGAIN with the holder's node name, or -errno.
 */
int cv_lockc_try_keep(struct cv_lockc *lc, uint64_t fileid, uint64_t *epoch,
		      char *holder, size_t cap);
/* lockd's name for this node. */
const char *cv_lockc_node(const struct cv_lockc *lc);
/* lockd's node id (corosync's, or the standalone one). */
uint32_t cv_lockc_node_id(const struct cv_lockc *lc);

/* Byte-range / flock: lkm_plock / lkm_getlk; -EAGAIN on conflict,
 * -EINTR when canceled, -EDEADLK, other -errno; lm errors mapped. */
int cv_lockc_plock(struct cv_lockc *lc, const struct lkm_plock *req);
int cv_lockc_getlk(struct cv_lockc *lc, const struct lkm_plock *req,
		   struct lm_lock_entry *conflict);

/* Current owner of fileid: node name ("" if free) and epoch. */
int cv_lockc_owner(struct cv_lockc *lc, uint64_t fileid, char *name,
		   size_t cap, uint64_t *epoch);

#endif /* CSVFS_LOCKC_H */
