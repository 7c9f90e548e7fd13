/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * own.h - write ownership of files, as seen by one csvfs mount.
 *
 * A per-file state machine, driven by the FUSE layer (writes, opens,
 * closes) and by lockd events (revoke, lease, lost), talking to the lock
 * manager only through the callbacks of struct cv_own_ops, so that it is
 * unit-tested without a socket (tests/unit/test_own.c) and glued to
 * liblockmgr in lockc.c.
 *
 *            write_begin              revoke / idle / last close
 *   NONE ---------------> ACQUIRING --grant--> OWNED ---------> RELEASING
 *    ^                        |                  |                  |
 *    +------ refused ---------+      lost -------+---> NONE (poison)|
 *    +-------------------- released (after fsync) ------------------+
 *
 * Rules (doc/design.md §2.3, §2.4):
 *   - EX is acquired lazily, by the first modifying operation;
 *   - a write is admitted only in OWNED, with a lease valid for the
 *     write's margin, through a handle not poisoned; admitted writes are
 *     counted (inflight);
 *   - a revoke or an idle release first has the kernel write back the
 *     file's dirty page-cache pages (cb writeback: shared mmap); those
 *     writes come as FUSE_WRITE from the kernel's writeback and are
 *     admitted by writeback_begin while the file is still OWNED, revoke
 *     pending or not; other writes wait;
 *   - RELEASING admits nothing: it waits for inflight to drain, fsyncs the
 *     file (cb flush) and releases (cb release); writes that arrive
 *     meanwhile wait and then acquire again (they queue behind the next
 *     owner in lockd);
 *   - lost (or the lockd connection gone) poisons the file: every handle
 *     opened before fails writes with EIO for good; handles opened later
 *     work normally and acquire again.
 *
 * Threads: the revoke and idle releases run on a worker thread owned by
 * this module (never on lockd's event thread, never in a FUSE handler).
 *
 * Locking: o->lock protects the file table, every entry's fields and the
 * lease; o->cond signals any state change.  Lock order: o->lock before the
 * inode table lock (cb hold/drop may take it); no callback that talks to
 * lockd or the backend (acquire, release, flush) runs with o->lock held.
 */
#ifndef CSVFS_OWN_H
#define CSVFS_OWN_H

#include <stdbool.h>
#include <stdint.h>

struct cv_own_ops {
	/* Blocking EX acquire, at most timeout_ms: 0 and *epoch, or -errno
	 * (-ETIMEDOUT; -EINTR after acquire_cancel).  NULL: local mode (no
	 * lock manager: everything is owned, no lease). */
	int (*acquire)(void *arg, uint64_t fileid, int timeout_ms,
		       uint64_t *epoch);
	/* Make a blocked acquire of fileid return -EINTR soon; 0, or
	 * -ENOENT when none is blocked (yet).  May be NULL. */
	int (*acquire_cancel)(void *arg, uint64_t fileid);
	/* Release (also answers a revoke). */
	int (*release)(void *arg, uint64_t fileid, uint64_t epoch);
	/* fsync the file to stable storage; obj as given to cv_own_ref. */
	int (*flush)(void *arg, void *obj);
	/* Have the kernel write back (and drop) its cached pages of obj,
	 * before a revoke or idle release (may be NULL).  It blocks until
	 * those writes, admitted by cv_own_writeback_begin, are done. */
	int (*writeback)(void *arg, void *obj);
	/* Keep / let go of obj while the entry lives (may be NULL). */
	void (*hold)(void *arg, void *obj);
	void (*drop)(void *arg, void *obj);
	/* CLOCK_MONOTONIC in ns (tests substitute a fake clock). */
	uint64_t (*now_ns)(void *arg);
};

enum cv_own_state {
	CV_OWN_NONE = 0,
	CV_OWN_ACQUIRING,
	CV_OWN_OWNED,
	CV_OWN_RELEASING,
};

struct cv_own;
struct cv_own_file;

int cv_own_new(const struct cv_own_ops *ops, void *arg,
	       unsigned idle_release_ms, struct cv_own **out);
/* Starts the worker thread (revokes, idle releases). */
int cv_own_start(struct cv_own *o);
/* Stops the worker, releases everything still owned, frees. */
void cv_own_free(struct cv_own *o);

/*
 * A reference on the entry of fileid (created if needed, obj held), for
 * an open handle (writer: open for writing) or one operation.  *gen
 * receives the poison generation: pass it back to write_begin.
 */
struct cv_own_file *cv_own_ref(struct cv_own *o, uint64_t fileid, void *obj,
			       bool writer, uint64_t *gen);
/* Drop a reference.  When the last write handle of the file on this node
 * goes, ownership is released at once (after an fsync). */
void cv_own_unref(struct cv_own *o, struct cv_own_file *f, bool writer);

/*
 * Admit one modifying operation: 0 (then call write_end), or -EIO
 * (poisoned handle, lease expired, lock manager refused or gone, or no
 * ownership within the acquire timeout).
 */
int cv_own_write_begin(struct cv_own *o, struct cv_own_file *f,
		       uint64_t gen);

/*
 * The same without waiting: 0 (admitted: call write_end), -EIO (as
 * above), or -EAGAIN when admission would have to wait (ownership to be
 * acquired, another writer acquiring, a release or revoke under way):
 * then the caller takes the blocking path.
 */
int cv_own_write_try_begin(struct cv_own *o, struct cv_own_file *f,
			   uint64_t gen);

/*
 * The same, interruptible: a FUSE interrupt (the writer got a signal)
 * calls cv_own_interrupt(o, w) from another thread, and the waiting
 * write_begin returns -EINTR soon, canceling its acquire in lockd.
 */
struct cv_own_wait {
	bool interrupted; /* o->lock */
	bool acquiring;	  /* o->lock: in ops->acquire for fileid */
	uint64_t fileid;  /* o->lock */
};
int cv_own_write_begin_wait(struct cv_own *o, struct cv_own_file *f,
			    uint64_t gen, struct cv_own_wait *w);
void cv_own_interrupt(struct cv_own *o, struct cv_own_wait *w);

/* How long a modifying operation waits for ownership (acquire plus any
 * wait behind another writer's acquire or a release) before it fails
 * with EIO; 0 = the default, OWN_ACQUIRE_TIMEOUT_MS. */
void cv_own_set_acquire_timeout(struct cv_own *o, unsigned ms);
#define CV_OWN_ACQUIRE_TIMEOUT_MS 15000
void cv_own_write_end(struct cv_own *o, struct cv_own_file *f);
/*
 * Admit a write of the kernel's page-cache writeback (dirty pages of a
 * shared mapping): as write_begin, except that it is admitted while the
 * file is OWNED even when a revoke or release waits for the kernel to
 * write those pages back (cb writeback).  Then call write_end.
 */
int cv_own_writeback_begin(struct cv_own *o, struct cv_own_file *f,
			   uint64_t gen);

/* Events from the lock manager; none of them blocks. */
void cv_own_ev_lease(struct cv_own *o, bool valid, uint64_t deadline_ns);
void cv_own_ev_revoke(struct cv_own *o, uint64_t fileid, uint64_t epoch);
void cv_own_ev_granted(struct cv_own *o, uint64_t fileid, uint64_t epoch);
void cv_own_ev_lost(struct cv_own *o, uint64_t fileid);
/* Connection to lockd gone: lease ends, every owned file is lost. */
void cv_own_ev_disconnect(struct cv_own *o);
/* The storage refused this node's writes for good (a reservation
 * preempted): every file is poisoned, as by a lost, the lease and the
 * lockd connection untouched. */
void cv_own_ev_poison_all(struct cv_own *o);
/* Connected again: acquires work again once a lease event arrives;
 * handles poisoned by the disconnect stay poisoned. */
void cv_own_ev_reconnect(struct cv_own *o);

/* Run due work (revokes, idle releases) on the calling thread; for tests
 * and for the worker.  Returns the number of releases done. */
int cv_own_run_pending(struct cv_own *o);

/*
 * The epoch of the ownership under which a write was admitted; valid
 * between an admitting begin and its write_end (the file cannot change
 * hands while the write is counted in flight).  Without lock: for the
 * write path's change tracking (replica.h).
 */
uint64_t cv_own_file_epoch(const struct cv_own_file *f);

/* Introspection (tests, virtual xattrs). */
enum cv_own_state cv_own_state_of(struct cv_own *o, uint64_t fileid,
				  uint64_t *epoch);
/* Margin kept before the lease deadline, in ns. */
uint64_t cv_own_lease_margin(struct cv_own *o);

#endif /* CSVFS_OWN_H */
