/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * iotxn: a libext2fs io_manager that turns the metadata writes of one
 * operation into one journal transaction.
 *
 * libext2fs does all its I/O through an io_channel (ext2_io.h): read_blk64
 * and write_blk64 in units of the channel's block size (set_blksize; a
 * negative count means bytes), write_byte for sub-block writes (ext2fs
 * uses it for the superblock, writing only the bytes that changed since
 * open), and flush at the end of ext2fs_flush/ext2fs_close.
 * unix_io_manager keeps its own small block cache, which would go stale
 * under the writes the journal makes beside it (log, checkpoint,
 * replay), so iotxn is a whole io_manager on its own file descriptor
 * rather than a layer over unix_io; the journal and iotxn share that
 * descriptor (iotxn_dev).
 *
 * Modes: direct (writes go to the device; used before the journal is
 * set up and after the last checkpoint) and journaled (writes are kept
 * in memory, in file-system blocks, until iotxn_commit hands them to
 * cvj_commit; reads see the buffered blocks, then the journal's
 * committed-but-not-home blocks, then the device).
 *
 * Known pitfall, not solved here: ext2fs_flush rewrites the superblock,
 * every group descriptor block and, when marked dirty, every group's
 * block and inode bitmaps, so a transaction made by ext2fs_flush grows
 * with the file system (two bitmap blocks per group); a big volume needs
 * the backend to write only the groups it changed.  Set
 * EXT2_FLAG_MASTER_SB_ONLY, or ext2fs_flush also rewrites every backup
 * superblock and descriptor table.
 *
 * Not thread-safe: one thread drives one iotxn and its ext2_filsys.
 */
#ifndef CSVFS_IOTXN_H
#define CSVFS_IOTXN_H

#include <stdbool.h>
#include <stdint.h>

#include <ext2fs/ext2fs.h>

#include "journal.h"

struct cvb_lun;
struct cvb_lun_opts;

struct iotxn;

/* The io_manager to pass to ext2fs_open2 with the same path as
 * iotxn_open: its open finds the iotxn by that path. */
extern io_manager iotxn_io_manager;

/* Open path (image file, block device or iscsi:// URL, lun.h)
 * read-write; the file-system
 * block size is read from its ext2/3/4 superblock.  Starts in direct
 * mode with no journal. */
int iotxn_open(const char *path, struct iotxn **out);
/* The same with the LUN's options (lun.h: time-outs, reservation key). */
int iotxn_open_opts(const char *path, const struct cvb_lun_opts *o,
		    struct iotxn **out);
/* Close the device; buffered writes not committed are lost. */
void iotxn_close(struct iotxn *t);
/* The LUN under t (lun.h), owned by t: for zeroing data and flushing
 * it on the engine's thread. */
struct cvb_lun *iotxn_lun(const struct iotxn *t);

uint32_t iotxn_blocksize(const struct iotxn *t);
/* Raw device I/O in file-system blocks (for cvj_open): bypasses the
 * buffering.  The struct is owned by t. */
const struct cvj_dev *iotxn_dev(const struct iotxn *t);

/* Journaled mode with journal j (not owned), or direct mode (j NULL). */
void iotxn_set_journal(struct iotxn *t, struct cvj_journal *j);
/* Blocks buffered in the open transaction. */
unsigned iotxn_dirty(const struct iotxn *t);
/* Record that home block blk is freed by this transaction (a revoke),
 * dropping any buffered write to it. */
int iotxn_revoke(struct iotxn *t, uint64_t blk);
/* Commit the buffered writes and revokes as one transaction. */
int iotxn_commit(struct iotxn *t);
/* Forget the buffered writes (libext2fs's in-memory state then no longer
 * matches: reopen the file system). */
void iotxn_abort(struct iotxn *t);

/* Savepoints, to undo one operation of a transaction that holds others:
 * iotxn_savepoint starts recording the old contents of every block the
 * transaction changes from now on (and its revoke count);
 * iotxn_rollback puts them back (libext2fs's in-memory state no longer
 * matches: reopen the file system); iotxn_release forgets them.  One
 * savepoint at a time; commit and abort release it. */
void iotxn_savepoint(struct iotxn *t);
int iotxn_rollback(struct iotxn *t);
/* Whether anything changed since the savepoint. */
bool iotxn_changed(const struct iotxn *t);
void iotxn_release(struct iotxn *t);

/* The journal inode's (inode 8) block map as extents (*map malloc'd,
 * the caller frees it). */
int iotxn_journal_extents(ext2_filsys fs, struct cvj_extent **map,
			  unsigned *n);
/* The journal features the kernel would set for this file system. */
uint32_t iotxn_journal_features(ext2_filsys fs);

/* Start journaling fs through t and j: journal features as the kernel
 * sets them, the needs_recovery flag on (written directly, kept in the
 * in-memory superblock so that every logged copy carries it), then
 * journaled mode.  The journal must be empty (replayed). */
int iotxn_fs_start(struct iotxn *t, ext2_filsys fs, struct cvj_journal *j);
/* Checkpoint (if journaling), back to direct mode, needs_recovery off
 * (written directly; also what ends a replay). */
int iotxn_fs_stop(struct iotxn *t, ext2_filsys fs);

#endif
