/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fs.h - the FUSE layer of csvfs: low-level FUSE operations over a
 * backend (backend.h), the inode table (inode.h), write ownership
 * (own.h) and cluster locks (lockc.h).
 */
#ifndef CSVFS_FS_H
#define CSVFS_FS_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "backend.h"
#include "inode.h"
#include "opts.h"
#include "replica.h"

struct cv_aio;
struct cv_uring;
struct cv_fh;
struct cv_own;
struct cv_lockc;

/* Asynchronous requests the kernel keeps in flight: above any VM's queue
 * depth (QEMU submits up to 64-128 per disk), see cv_init().  Also the
 * depth of the direct I/O ring, which they are the bulk of. */
#define CV_MAX_BACKGROUND 256

/* Owner changes waiting for the invalidation thread. */
#define CV_INVAL_QUEUE 1024

/* One mount.  Fields are set before the session starts and then
 * immutable, except where a lock is named. */
struct cv_fs {
	struct backend be;
	struct cv_itable itab;
	const struct cv_opts *opts;
	struct cv_volrec vol;
	dev_t root_dev;
	struct cv_own *own;
	struct cv_lockc *lc;		/* NULL: lockd=none */
	struct fuse_session *se;
	pthread_rwlock_t se_lock;	/* static initializer */
	bool se_live;			/* se_lock: se mounted, notifications
					 * may be sent */
	struct cv_aio *aio;		/* NULL: synchronous backing I/O */
	struct cv_rep *rep;		/* replication (replica.h) */
	struct cv_uring *_Atomic uring;	/* NULL: requests over /dev/fuse;
					 * set once, before the INIT reply */
	atomic_uint io_here;		/* reads/writes doing their backing
					 * I/O on a worker now */

	/* INIT as seen by fuseio.c (before any other request) */
	_Atomic uint64_t init_unique;	/* INIT request not answered yet */
	atomic_bool init_mmap_offered;	/* kernel offers
					 * FUSE_DIRECT_IO_ALLOW_MMAP */
	atomic_bool init_done;		/* INIT answered */
	atomic_bool init_uring_offered;	/* kernel offers FUSE_OVER_IO_URING */
	bool direct_mmap;		/* written once, before init_done */

	pthread_mutex_t fh_lock;	/* static initializer */
	struct cv_fh *fh_list;		/* fh_lock: open files */

	pthread_mutex_t inval_lock;
	pthread_cond_t inval_cond;	/* inval_lock */
	uint64_t inval_q[CV_INVAL_QUEUE]; /* inval_lock */
	unsigned inval_head, inval_len;	/* inval_lock */
	bool inval_stop;		/* inval_lock */
	bool inval_running;
	pthread_t inval_thread;
};

extern const struct fuse_lowlevel_ops cv_fs_ops;

/* Queue an owner change of fileid for cache invalidation (any thread,
 * never blocks). */
void cv_fs_owner_changed(void *arg, uint64_t fileid);
int cv_fs_inval_start(struct cv_fs *fs);
/*
 * After the session: close what the kernel never released (it sends no
 * RELEASE once the connection is aborted), as release would, less the
 * locks (lockd drops them with the connection).
 */
void cv_fs_close_files(struct cv_fs *fs);
void cv_fs_inval_stop(struct cv_fs *fs);

/*
 * Read and write /dev/fuse through fuseio.c, so that the INIT reply asks
 * for shared mmap of direct-I/O files; after fuse_session_mount.
 */
int cv_fuseio_install(struct cv_fs *fs);

/* Whether ownership callbacks may notify the kernel through fs->se; set
 * false (waiting for any notification under way) before the session is
 * destroyed. */
void cv_fs_session_live(struct cv_fs *fs, bool live);

/*
 * Direct reads and writes done by fuse_uring.c on its queue threads; fh is
 * the FUSE file handle of an open file (fuse_read_in.fh).  rw_fd: the
 * backing descriptor on which a pread/pwrite of size bytes at off from a
 * buffer aligned to align is the whole request, or -1.  write_try_begin:
 * admit a write without waiting (cv_own_write_try_begin: 0, -EIO, or
 * -EAGAIN = take the blocking path), and tracked for replication
 * (cv_rep_begin without waiting, into *tok); write_end after an
 * admitted one.
 */
int cv_fs_rw_fd(struct cv_fs *fs, uint64_t fh, off_t off, size_t size,
		unsigned align);
int cv_fs_write_try_begin(struct cv_fs *fs, uint64_t fh, uint64_t off,
			  uint64_t len, struct cv_rep_tok *tok);
void cv_fs_write_end(struct cv_fs *fs, uint64_t fh, struct cv_rep_tok *tok);

/* cv_own_ops callbacks: obj is a pinned struct cv_inode. */
int cv_fs_own_flush(void *arg, void *obj);
int cv_fs_own_writeback(void *arg, void *obj);
void cv_fs_own_hold(void *arg, void *obj);
void cv_fs_own_drop(void *arg, void *obj);

#endif /* CSVFS_FS_H */
