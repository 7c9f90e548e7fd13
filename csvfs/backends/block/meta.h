/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * meta: the metadata engine of a block volume, run by its coordinator.
 *
 * One engine per volume, on the coordinator node only, driven by one
 * thread (libext2fs is not thread-safe): it owns the ext2_filsys, the
 * iotxn io_manager and the jbd2 journal.  Every other part of csvfs
 * reaches it through requests (local calls queued to that thread, or
 * the coordinator channel from other nodes); nothing else touches the
 * file system's metadata.
 *
 * Objects are named by their ext4 inode number (the volume's stable
 * file id, csvfs's st_ino and the lock manager's resource key).
 *
 * Transactions: each mutating call leaves its metadata writes in the
 * open journal transaction; cvb_meta_commit makes everything since the
 * last commit durable as one transaction (the engine's thread commits
 * when its queue runs empty, and before answering an fsync).  A
 * transaction holds only the blocks the calls changed: the bitmaps and
 * descriptors of the groups they touched, never every group's, so its
 * size does not grow with the volume.  cvb_meta_alloc and
 * cvb_meta_fallocate commit before returning (and everything pending
 * with them); so does any call when the open transaction passes an
 * eighth of the log.
 *
 * A call that fails changes nothing on disk or in the engine's memory:
 * checks come before changes, and a failure after a change (ENOSPC in
 * the middle of an extent split, an I/O error) rolls the open
 * transaction back to where the call began and reopens libext2fs's
 * state over it.  Refinement of the first contract: zeroes already
 * written to the LUN by a failed call stay (they only touched free
 * blocks or the file's own range being zeroed); and if that rollback
 * itself fails the engine is unusable: every later call fails with
 * -EIO, and cvb_meta_close leaves what was committed in the journal.
 *
 * File data never passes through the engine: the owner of a file reads
 * and writes the LUN at the physical blocks cvb_meta_map gives.  Writing
 * where no block is allocated first asks cvb_meta_alloc, which allocates
 * whole granules (CVB_GRANULE bytes, aligned in the file), zeroes them
 * on the LUN and commits them before answering, so a crash never
 * exposes another file's old blocks.  Blocks before the end-of-file
 * block are initialised extents; blocks at or past it are unwritten
 * extents (e2fsck accepts no initialised block past i_size), which
 * cvb_meta_map gives as allocated, and cvb_meta_set_written turns into
 * initialised ones, whole extents at a time, as the size grows over
 * them.  A truncate up or fallocate leaves them unwritten (they read as
 * zeroes), and calls the recall hook first when the new size covers
 * any (they turn from allocated into holes of the map); an unwritten
 * extent inside the size (made by fallocate, or by another ext4 writer)
 * is a hole in the map, and cvb_meta_alloc zeroes and converts it.  Known limit: bytes an owner wrote past the end of
 * file and never reported (it died before cvb_meta_set_written) show if
 * a later set_written grows the size over them; they are the file's own
 * bytes, never another file's.
 *
 * Freeing (truncate, punch, unlink or rename over the last link with no
 * opens, last close of an unlinked file): before blocks go back to the
 * free pool the engine calls the volume's recall hook for the file,
 * which returns once no node holds the old map (or the holders were
 * fenced); then the map generation of the file is bumped.  Blocks freed
 * in the open transaction are not zeroed or handed to a writer before
 * it commits (cvb_meta_alloc commits first), so a crash cannot give them
 * back to their old file with new bytes in them.  Map generations live
 * in memory; an engine starts them at its opening time in seconds
 * shifted left by 24 bits, above those of an earlier coordinator whose
 * clock agreed.
 *
 * Unlinked open files go on ext4's orphan list (s_last_orphan, chained
 * through i_dtime), which cvb_meta_open, e2fsck and the kernel process
 * after a crash; the orphan_file feature is refused.
 *
 * Debugging: CVB_DEBUG=1 in the environment prints the libext2fs error code
 * behind an -EIO and each failed call on stderr.
 *
 * Every call returns 0 (or a length where said) or -errno, errno values
 * as ext4 gives them.  Buffers belong to the caller.
 */
#ifndef CSVFS_BLOCK_META_H
#define CSVFS_BLOCK_META_H

#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include "backend.h"

/* Allocation unit in a file: 1 MiB, aligned to its own size. */
#define CVB_GRANULE (1u << 20)

/* The root directory (EXT2_ROOT_INO). */
#define CVB_ROOT_INO 2

struct cvb_meta;

/* One mapped range of a file, in bytes: file offset off..off+len-1 lives
 * at LUN byte offset phys..phys+len-1, or is a hole when phys is 0. */
struct cvb_extent {
	uint64_t off;
	uint64_t len;
	uint64_t phys;
};

/* Called (on the engine's thread) before blocks of ino are freed;
 * returns once no node holds its map any more, or -errno to refuse the
 * operation (which then fails with that error and changes nothing). */
typedef int (*cvb_recall_fn)(void *arg, uint64_t ino);

struct cvb_lun_opts;

struct cvb_meta_opts {
	cvb_recall_fn recall; /* NULL: nothing to recall (tests) */
	void *recall_arg;
	/* Tests only: called before every write the journal makes to the
	 * device (log, commit blocks, checkpoint), e.g. to die there. */
	void (*before_journal_write)(void *arg);
	void *hook_arg;
	/* The LUN's options (lun.h; NULL: defaults): a reservation key is
	 * registered on the engine's own I_T nexus before it writes. */
	const struct cvb_lun_opts *lun;
};

/* The engine's own LUN handle (lun.h), owned by m. */
struct cvb_lun *cvb_meta_lun(struct cvb_meta *m);

/* What the engine did since it was opened (for tests and volumes). */
struct cvb_meta_stats {
	uint64_t ops;	     /* mutating operations that succeeded */
	uint64_t failed_ops; /* ... that failed (undone) */
	uint64_t reloads;    /* file system reopened after an undo */
	uint64_t commits;    /* journal transactions */
	uint64_t txn_blocks; /* metadata blocks in them, in all */
	uint32_t last_txn_blocks, max_txn_blocks;
	uint32_t orphans_done; /* orphans processed by cvb_meta_open */
	uint32_t replayed;     /* transactions replayed by cvb_meta_open */
};

/* Open the volume on path (image file or block device): check the
 * superblock and features (-EOPNOTSUPP with the feature named in err for
 * ones csvfs cannot write safely), replay the journal if it needs
 * recovery, process the orphan list, start journaling. */
int cvb_meta_open(const char *path, const struct cvb_meta_opts *opts,
		  struct cvb_meta **out, char *err, size_t errlen);
/* Free the unlinked files still open (as their last close), commit,
 * checkpoint, mark the file system clean, close.  So open-unlinked files
 * do not outlive the engine: the next cvb_meta_open, like an ext4 mount,
 * frees the orphans a crashed engine left. */
int cvb_meta_close(struct cvb_meta *m);
/* Make every change since the last commit durable (no-op when none). */
int cvb_meta_commit(struct cvb_meta *m);
/* Commit, then write every logged block home: a reader of the LUN
 * that does not replay the journal sees the file system as it is. */
int cvb_meta_checkpoint(struct cvb_meta *m);

void cvb_meta_get_stats(const struct cvb_meta *m, struct cvb_meta_stats *st);

int cvb_meta_getattr(struct cvb_meta *m, uint64_t ino, struct stat *st);
int cvb_meta_lookup(struct cvb_meta *m, uint64_t dir, const char *name,
		    struct stat *st);
/* to_set: CV_SET_* (backend.h).  A smaller size frees blocks past it
 * (after the recall); a larger one leaves a hole. */
int cvb_meta_setattr(struct cvb_meta *m, uint64_t ino, const struct stat *attr,
		     int to_set, struct stat *st);
/* Regular files, devices, fifos, sockets (by mode's type). */
int cvb_meta_mknod(struct cvb_meta *m, uint64_t dir, const char *name,
		   mode_t mode, dev_t rdev, const struct cv_cred *cred,
		   struct stat *st);
int cvb_meta_mkdir(struct cvb_meta *m, uint64_t dir, const char *name,
		   mode_t mode, const struct cv_cred *cred, struct stat *st);
int cvb_meta_symlink(struct cvb_meta *m, uint64_t dir, const char *name,
		     const char *target, const struct cv_cred *cred,
		     struct stat *st);
/* Returns the length (not NUL-terminated). */
ssize_t cvb_meta_readlink(struct cvb_meta *m, uint64_t ino, char *buf,
			  size_t size);
int cvb_meta_link(struct cvb_meta *m, uint64_t ino, uint64_t newdir,
		  const char *newname, struct stat *st);
/* The last link of a file still open (cvb_meta_open_ref) goes on the
 * orphan list and is freed at the last cvb_meta_close_ref. */
int cvb_meta_unlink(struct cvb_meta *m, uint64_t dir, const char *name);
int cvb_meta_rmdir(struct cvb_meta *m, uint64_t dir, const char *name);
/* flags: RENAME_NOREPLACE, RENAME_EXCHANGE or 0. */
int cvb_meta_rename(struct cvb_meta *m, uint64_t dir, const char *name,
		    uint64_t newdir, const char *newname, unsigned flags);
/* Entries after cookie (0: from the start), as be_dirent_fn wants,
 * "." and ".." included.  A cookie is the byte position of the next
 * entry in the directory: stable while other entries come and go. */
int cvb_meta_readdir(struct cvb_meta *m, uint64_t dir, uint64_t cookie,
		     be_dirent_fn fn, void *arg);
int cvb_meta_statfs(struct cvb_meta *m, struct statvfs *st);

/* Opens held by nodes (counted per inode, for unlink of open files). */
int cvb_meta_open_ref(struct cvb_meta *m, uint64_t ino);
int cvb_meta_close_ref(struct cvb_meta *m, uint64_t ino);

ssize_t cvb_meta_getxattr(struct cvb_meta *m, uint64_t ino, const char *name,
			  void *buf, size_t size);
int cvb_meta_setxattr(struct cvb_meta *m, uint64_t ino, const char *name,
		      const void *value, size_t size, int flags);
ssize_t cvb_meta_listxattr(struct cvb_meta *m, uint64_t ino, char *buf,
			   size_t size);
int cvb_meta_removexattr(struct cvb_meta *m, uint64_t ino, const char *name);

/*
 * The map of [off, off+len) of ino: up to max extents in *ext (holes
 * included, contiguous from off), *n set, *gen the file's map
 * generation.  Fewer than the whole range when max runs out.
 */
int cvb_meta_map(struct cvb_meta *m, uint64_t ino, uint64_t off, uint64_t len,
		 struct cvb_extent *ext, unsigned max, unsigned *n,
		 uint64_t *gen);
/*
 * Allocate every hole in [off, off+len) rounded out to granules, zeroed
 * and committed before return; then as cvb_meta_map.  Does not change
 * the file size.  -ENOSPC allocates nothing; -EFBIG past ext4's 2^32
 * blocks.  A granule is one physical run when free space allows.
 */
int cvb_meta_alloc(struct cvb_meta *m, uint64_t ino, uint64_t off, uint64_t len,
		   struct cvb_extent *ext, unsigned max, unsigned *n,
		   uint64_t *gen);
/* fallocate(2) modes 0, KEEP_SIZE, PUNCH_HOLE|KEEP_SIZE, ZERO_RANGE
 * (with or without KEEP_SIZE); others -EOPNOTSUPP.  Allocation rounds
 * out to granules; a punch frees whole blocks (after the recall) and
 * zeroes the partial ones at its edges on the LUN. */
int cvb_meta_fallocate(struct cvb_meta *m, uint64_t ino, int mode, uint64_t off,
		       uint64_t len);
/* The owner's size and times after its writes (size only grows here;
 * mtime NULL: now): the unwritten extents the size now covers become
 * initialised. */
int cvb_meta_set_written(struct cvb_meta *m, uint64_t ino, uint64_t size,
			 const struct timespec *mtime);

/* Self-check for tests: the extent tree of ino is sorted, without
 * overlaps (0), or -EUCLEAN. */
int cvb_meta_check_extents(struct cvb_meta *m, uint64_t ino);

/*
 * Format path (image file or block device) as an ext4 file system with
 * exactly the features the engine supports (CVB_FEATURES), 4 KiB
 * blocks, an internal journal and inode tables written at once, by
 * running mke2fs (e2fsprogs).  label may be NULL.  On failure err holds
 * mke2fs's message.
 */
#define CVB_FEATURES                                                           \
	"none,has_journal,ext_attr,resize_inode,dir_index,filetype,extent,"    \
	"64bit,flex_bg,sparse_super,large_file,huge_file,dir_nlink,"           \
	"extra_isize,metadata_csum"
int cvb_format(const char *path, const char *label, char *err, size_t errlen);
/*
 * The same on a LUN without a path mke2fs can open (iSCSI): mke2fs makes
 * the file system in a sparse image of the LUN's size under $TMPDIR
 * (/var/tmp by default), then its data is written to the LUN and its
 * holes zeroed there (WRITE SAME where the target has it).
 */
struct cvb_lun;
int cvb_format_lun(struct cvb_lun *l, const char *label, char *err,
		   size_t errlen);

/*
 * What a LUN holds, read without writing and without the engine (any
 * node that sees the LUN, csvfs-admin volumes): the file system's size
 * and free space as its superblock gives them (the home copy: behind the
 * log while a coordinator runs), and the journal: whether it needs
 * recovery (needs_recovery set, or transactions in the log: always so
 * while a coordinator runs, which keeps its journal open), its size and
 * the part of the log complete transactions take.  Reads through
 * O_DIRECT so that a running coordinator's writes show.  0, or -errno
 * with err saying what failed.
 */
struct cvb_lun_info {
	uint32_t blocksize;
	uint64_t size;	     /* bytes */
	uint64_t free;	     /* bytes free (superblock) */
	uint64_t inodes, free_inodes;
	bool needs_recovery; /* needs_recovery flag or a non-empty log */
	uint64_t journal_size;	 /* bytes of the journal inode */
	uint64_t journal_used;	 /* bytes of complete transactions in it */
	uint32_t journal_txns;	 /* complete transactions in the log */
	uint32_t journal_seq;	 /* the first of them, or the next one */
	char label[17];
};
int cvb_lun_info(const char *path, struct cvb_lun_info *info, char *err,
		 size_t errlen);

#endif /* CSVFS_BLOCK_META_H */
