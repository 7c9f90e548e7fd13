/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lun.h - access to a block volume's LUN, behind one small interface.
 *
 * Two implementations, chosen by the source:
 *   path   "/dev/sdX" or "/path/image": a block device or an image file
 *          through a descriptor (O_DIRECT unless CVB_LUN_BUFFERED), which
 *          the io_uring fast path may use (CVB_LUN_CAP_FD);
 *   iscsi  "iscsi://portal[:port]/target-iqn/lun" through libiscsi: one
 *          iSCSI session per handle, owned by one I/O thread that alone
 *          touches the libiscsi context (libiscsi contexts are not
 *          thread-safe); callers queue a request and wait on it.
 *
 * Every call has a time-out (struct cvb_lun_opts): a LUN that vanishes
 * gives -EIO (-ETIMEDOUT for the request that waited) and a log line,
 * never a hang.  After a time-out or a lost connection the session is
 * dropped (the target aborts what it had of it) and a new one logs in
 * with the same ISID on the next request, so the I_T nexus, and a
 * persistent-reservation registration made on it, stays the same.
 * libiscsi's own reconnection is off: it would log in with a fresh
 * random ISID, a new I_T nexus without our registration.
 *
 * Buffers: the caller owns every buffer; the call returns only when the
 * LUN no longer uses it.  Path handles need buffers, offsets and lengths
 * aligned to cvb_lun_align() unless CVB_LUN_BUFFERED; iSCSI handles take
 * any offset and length (a partial sector is read, patched and written:
 * callers that may write the same sector from two threads at once must
 * align).
 *
 * Thread safety: every call may come from any thread, except close.
 */
#ifndef CSVFS_BLOCK_LUN_H
#define CSVFS_BLOCK_LUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct cvb_lun;

/* cvb_lun_open flags */
#define CVB_LUN_BUFFERED 1u /* path: no O_DIRECT (the metadata engine) */
#define CVB_LUN_RDONLY	 2u

/* capabilities */
#define CVB_LUN_CAP_FD	  1u /* cvb_lun_fd() is a descriptor for io_uring */
#define CVB_LUN_CAP_PR	  2u /* SCSI-3 persistent reservations */
#define CVB_LUN_CAP_ISCSI 4u /* the LUN is reached through libiscsi */

struct cvb_lun_opts {
	unsigned timeout_ms;   /* per request (0: 30000) */
	unsigned connect_ms;   /* connect and login (0: 10000) */
	const char *initiator; /* iSCSI initiator name (NULL: derived) */
	/* PR key to register on the new I_T nexus before any write (0:
	 * none); ignored without CVB_LUN_CAP_PR */
	uint64_t pr_key;
};

/* Is source an iscsi:// URL? */
bool cvb_lun_is_iscsi(const char *source);

/*
 * Open source.  err gets a sentence naming what failed (a wrong IQN, a
 * missing LUN, an unreachable portal, ...).  Returns 0 or -errno
 * (-EPROTONOSUPPORT: iscsi:// but built without libiscsi).
 */
int cvb_lun_open(const char *source, unsigned flags,
		 const struct cvb_lun_opts *o, struct cvb_lun **out, char *err,
		 size_t errlen);
void cvb_lun_close(struct cvb_lun *l);

uint64_t cvb_lun_size(const struct cvb_lun *l);	 /* bytes */
unsigned cvb_lun_block(const struct cvb_lun *l); /* logical block */
unsigned cvb_lun_align(const struct cvb_lun *l); /* direct I/O unit */
unsigned cvb_lun_caps(const struct cvb_lun *l);
int cvb_lun_fd(const struct cvb_lun *l);    /* -1 without CAP_FD */
dev_t cvb_lun_dev(const struct cvb_lun *l); /* a stable id */
const char *cvb_lun_source(const struct cvb_lun *l);

/* As pread/pwrite: bytes done (short only at the end of the LUN) or
 * -errno.  Retried on EINTR. */
ssize_t cvb_lun_pread(struct cvb_lun *l, void *buf, size_t len, uint64_t off);
ssize_t cvb_lun_pwrite(struct cvb_lun *l, const void *buf, size_t len,
		       uint64_t off);
/* Everything written so far is durable (fdatasync, SYNCHRONIZE CACHE). */
int cvb_lun_flush(struct cvb_lun *l);
/* [off, off+len) reads as zeroes afterwards (not yet durable). */
int cvb_lun_zero(struct cvb_lun *l, uint64_t off, uint64_t len);

/*
 * One user per LUN on this host: an exclusive OFD lock on the path, or
 * on a lock file under /run/csvfs for an iSCSI LUN, held until close.
 * -EAGAIN if another csvfs or csvfs-admin holds it.
 */
int cvb_lun_lock(struct cvb_lun *l);

/* ---- SCSI-3 persistent reservations (CVB_LUN_CAP_PR) ------------------ */

#define CVB_PR_MAX_KEYS 32

struct cvb_pr_state {
	uint32_t generation;
	unsigned nkeys;
	uint64_t keys[CVB_PR_MAX_KEYS]; /* registered keys (first nkeys) */
	bool reserved;
	uint64_t holder; /* the reservation's key */
	unsigned type;	 /* SCSI PR type (5: WE registrants only) */
};

/* PR type write exclusive, registrants only */
#define CVB_PR_WE_RO 5

/*
 * REGISTER AND IGNORE EXISTING KEY: this nexus's key becomes key (0:
 * unregister).  A key registered through a handle is withdrawn when the
 * handle closes (a clean unmount leaves no registration, and releases
 * the reservation if it held it), unless the handle is lost or
 * cvb_pr_keep was called.
 */
int cvb_pr_register(struct cvb_lun *l, uint64_t key);
/* Keep this handle's registration after close (a fencer's: it is what
 * keeps the reservation, and so the preempted node, out). */
void cvb_pr_keep(struct cvb_lun *l);
/* RESERVE with the registered key (no-op if this nexus holds it). */
int cvb_pr_reserve(struct cvb_lun *l, uint64_t key, unsigned type);
/* Remove victim's registrations (and take its reservation if it held
 * it); abort: PREEMPT AND ABORT, falling back to PREEMPT when the target
 * refuses it (*aborted false then). */
int cvb_pr_preempt(struct cvb_lun *l, uint64_t key, uint64_t victim,
		   unsigned type, bool abort, bool *aborted);
/* CLEAR: every registration and the reservation go (key: ours). */
int cvb_pr_clear(struct cvb_lun *l, uint64_t key);
/* READ KEYS and READ RESERVATION. */
int cvb_pr_read(struct cvb_lun *l, struct cvb_pr_state *st);

/*
 * Lost ownership: once a command of this handle met RESERVATION
 * CONFLICT, or a unit attention saying our registration or reservation
 * was preempted or released (2A/03, 2A/04, 2A/05), the handle stays
 * lost (every later write fails with -EIO) and never registers again by
 * itself.  fn, if set, is called once, from the I/O thread (it must not
 * call into l).
 */
typedef void (*cvb_lun_lost_fn)(void *arg, const char *why);
void cvb_lun_on_lost(struct cvb_lun *l, cvb_lun_lost_fn fn, void *arg);
bool cvb_lun_lost(const struct cvb_lun *l);
/* Mark l lost (once: logs why, calls the callback). */
void cvb_lun_set_lost(struct cvb_lun *l, const char *why);

/*
 * Fence node at the storage: register key (ours) on this handle's nexus,
 * then PREEMPT (AND ABORT where the target has it) every registered key
 * whose high 32 bits are node, taking the reservation when one of them
 * held it, and reserve if nothing is reserved.  Our registration stays
 * (registrations outlive the session), so the reservation keeps the
 * preempted node out.  *removed: keys preempted.
 */
int cvb_pr_fence_node(struct cvb_lun *l, uint64_t key, uint32_t node,
		      unsigned *removed);

/* The key of a node's registration: node id (high 32 bits) and lockd's
 * incarnation (low 32 bits), never 0. */
uint64_t cvb_pr_key(uint32_t node_id, uint32_t incarnation);

#endif /* CSVFS_BLOCK_LUN_H */
