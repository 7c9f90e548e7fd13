/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * meta_i.h: what the files of the metadata engine share (meta.c life
 * cycle, transactions and inodes; meta_ns.c names; meta_map.c extents;
 * meta_xattr.c; meta_format.c).  Everything here runs on the engine's
 * one thread: nothing is locked.
 *
 * An operation that changes anything runs between op_begin and op_end:
 * op_begin sets an iotxn savepoint; op_end on success writes the
 * bitmaps, group descriptors and superblock of the groups the operation
 * touched into the open transaction (never ext2fs_flush, which would
 * write every group), and on failure rolls the transaction back to the
 * savepoint and, when libext2fs's memory may have changed, reopens the
 * file system over it.
 */
#ifndef CSVFS_BLOCK_META_I_H
#define CSVFS_BLOCK_META_I_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include <ext2fs/ext2fs.h>

#include "iotxn.h"
#include "journal.h"
#include "meta.h"

/* Per-inode state kept in memory: opens held by nodes, map generation,
 * whether the inode waits on the orphan list for its last close. */
struct cvb_ino {
	uint64_t ino;
	uint64_t gen;
	uint32_t refs;
	bool orphan;
	struct cvb_ino *next; /* hash chain */
};

struct cvb_meta {
	char *path;
	struct iotxn *t;
	struct cvj_journal *j;
	ext2_filsys fs; /* fs->priv_data == this */
	struct cvb_meta_opts opts;

	/* groups whose bitmaps / descriptor the current operation changed */
	uint32_t *dgroups;
	uint32_t ndgroups, capdgroups;
	uint8_t *gmark; /* one byte per group: in dgroups */
	bool sb_dirty;
	bool in_op;
	bool fs_touched; /* libext2fs memory changed in this op */
	int cb_err;	 /* error of a callback (revoke) */
	/* blocks were freed in the open transaction: they must not be
	 * zeroed or handed to a writer before it commits (a crash would
	 * give them back to their old owner with new bytes) */
	bool data_freed;
	unsigned pending_ops; /* operations since the last commit */

	struct cvb_ino **itab;
	size_t nitab;	   /* power of two */
	uint64_t gen_base; /* generations start above the last run's */

	struct cvb_meta_stats st;
	struct cvj_dev jdev; /* the journal's device: iotxn's, hooked */
};

/* errcode_t of libext2fs (or a -errno from a callback) to -errno. */
int cvb_err(errcode_t e);

/* ext2fs_open2 of m->path through iotxn (m->fs set), and then the
 * bitmaps read and the allocation callbacks set. */
int cvb_fs_reopen(struct cvb_meta *m);
int cvb_fs_ready(struct cvb_meta *m);

int cvb_op_begin(struct cvb_meta *m);
/* Finish an operation: rc 0 stages its metadata, otherwise undoes it.
 * Returns rc, or the staging error. */
int cvb_op_end(struct cvb_meta *m, int rc);

struct cvb_ino *cvb_ino_get(struct cvb_meta *m, uint64_t ino, bool add);
void cvb_gen_bump(struct cvb_meta *m, uint64_t ino);
uint64_t cvb_gen(struct cvb_meta *m, uint64_t ino);
/* Ask the volume to drop every map of ino before its blocks are freed. */
int cvb_recall(struct cvb_meta *m, uint64_t ino);

int cvb_read_inode(struct cvb_meta *m, uint64_t ino,
		   struct ext2_inode_large *in);
int cvb_write_inode(struct cvb_meta *m, uint64_t ino,
		    struct ext2_inode_large *in);
void cvb_inode_to_stat(struct cvb_meta *m, uint64_t ino,
		       const struct ext2_inode_large *in, struct stat *st);
/* Set the inode's times: which is a mask of 'a', 'c', 'm' bits. */
enum { CVB_T_A = 1, CVB_T_C = 2, CVB_T_M = 4 };
void cvb_set_time(struct ext2_inode_large *in, int which,
		  const struct timespec *ts);
void cvb_now(struct timespec *ts);
/* Inode allocation accounting with its group marked dirty. */
void cvb_inode_stats(struct cvb_meta *m, uint64_t ino, int inuse, int isdir);
/* Free a whole inode (no links, no opens): recall, blocks, xattrs. */
int cvb_free_inode(struct cvb_meta *m, uint64_t ino);
/* Drop one link of a non-directory; the last one frees it or, when it
 * is open, puts it on the orphan list. */
int cvb_drop_link(struct cvb_meta *m, uint64_t ino);
int cvb_orphan_del(struct cvb_meta *m, uint64_t ino,
		   struct ext2_inode_large *in);

/* Allocation accounting of a range (ext2fs_block_alloc_stats_range)
 * with its groups marked dirty; journaled: the blocks held journaled
 * metadata (revoked when freed). */
void cvb_range_stats(struct cvb_meta *m, uint64_t blk, uint32_t num, int inuse,
		     bool journaled);
/* Mark (and revoke) every block of ino before libext2fs frees them. */
int cvb_pre_free_all(struct cvb_meta *m, uint64_t ino);
/* Mark ino's group dirty (libext2fs counted it itself). */
void cvb_mark_ino(struct cvb_meta *m, uint64_t ino);

/* meta_ns.c */
int cvb_check_name(const char *name);
int cvb_ftype(mode_t mode);
int cvb_get_dir(struct cvb_meta *m, uint64_t dir, struct ext2_inode_large *din);
int cvb_dir_lookup(struct cvb_meta *m, uint64_t dir, const char *name,
		   uint64_t *ino);
/* Add name -> ino to dir, growing it by a block when full. */
int cvb_link_in(struct cvb_meta *m, uint64_t dir, const char *name,
		uint64_t ino, int ftype);
int cvb_touch_dir(struct cvb_meta *m, uint64_t dir, int delta);
/* 0 when dir holds only "." and "..", else -ENOTEMPTY. */
int cvb_dir_empty(struct cvb_meta *m, uint64_t ino);

/* meta_map.c */
/* Free the blocks of a regular file from block lblk on (to the end when
 * end is ~0) and zero nothing; the caller did the recall. */
int cvb_punch_blocks(struct cvb_meta *m, uint64_t ino,
		     struct ext2_inode_large *in, uint64_t lblk, uint64_t end);
/* The uninitialised extents now inside i_size become initialised. */
int cvb_size_grew(struct cvb_meta *m, uint64_t ino, struct ext2_inode_large *in,
		  uint64_t oldsize);
/* Grow in's size to size (see meta_map.c: written = set_written). */
int cvb_grow(struct cvb_meta *m, uint64_t ino, struct ext2_inode_large *in,
	     uint64_t size, bool written);
/* Truncate to in's new size: recall, free past it, zero the tail. */
int cvb_truncate(struct cvb_meta *m, uint64_t ino, struct ext2_inode_large *in,
		 uint64_t oldsize);
/* Zero bytes [off, off+len) of the LUN (data). */
int cvb_zero_dev(struct cvb_meta *m, uint64_t off, uint64_t len);

#endif /* CSVFS_BLOCK_META_I_H */
