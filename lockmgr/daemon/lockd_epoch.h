/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lockd_epoch.h - the persistent epoch high-water mark of csvfs-lockd.
 *
 * The lock table lives in memory and takes its epoch, after a state
 * transfer, from the highest epoch of all hellos (lm_state.h).  If every
 * lockd that held the latest table restarts, that epoch would be lost and
 * grants could reuse epochs (fencing tokens) already handed out.  So each
 * lockd keeps a reservation in STATE_DIR/epoch: a number no epoch it has
 * applied exceeds, moved ahead in blocks so that grants do not pay an
 * fsync each, and always written before the events of an apply reach a
 * client.  Its hello carries max(table epoch, reservation), so the table
 * installed after a restart starts above anything this node saw granted.
 *
 * The file is one decimal number and a newline, replaced atomically
 * (temporary file, fsync, rename, fsync of the directory).
 *
 * The parse, format and reservation functions are pure; read, write and
 * prepare do file I/O and fill err with a one-line message saying what
 * failed on which path and what to do.  All return 0 or -errno.
 */
#ifndef CSVFS_LOCKD_EPOCH_H
#define CSVFS_LOCKD_EPOCH_H

#include <stddef.h>
#include <stdint.h>

#define LOCKD_EPOCH_FILE "epoch"

/* A reservation reaches LOCKD_EPOCH_BLOCK past the table epoch and is
 * renewed when the epoch comes within LOCKD_EPOCH_LOW of it. */
#define LOCKD_EPOCH_BLOCK 4096
#define LOCKD_EPOCH_LOW 2048

/* Longest text of the file ("18446744073709551615\n" plus the NUL). */
#define LOCKD_EPOCH_TEXT_MAX 24

/*
 * The reservation to write for a table at epoch when reserved is the
 * durable one: epoch + LOCKD_EPOCH_BLOCK (saturated at UINT64_MAX) when
 * epoch + LOCKD_EPOCH_LOW reaches reserved, else 0 (reserved is enough).
 */
uint64_t lockd_epoch_next_reservation(uint64_t epoch, uint64_t reserved);

/* "<decimal>\n" into buf; returns the length, or -ENOSPC. */
int lockd_epoch_format(uint64_t value, char *buf, size_t len);

/* The file's text (len bytes, need not be NUL-terminated): digits and an
 * optional newline, nothing else.  Returns 0, or -EINVAL (empty, a
 * stray character, or more than 64 bits). */
int lockd_epoch_parse(const char *text, size_t len, uint64_t *value);

/*
 * Make sure dir exists (created 0700 when its parent does) and is a
 * writable directory.  -errno with err filled otherwise.
 */
int lockd_epoch_prepare(const char *dir, char *err, size_t errlen);

/*
 * Read dir/epoch into *value.  -ENOENT when the file does not exist
 * (*value = 0), -EINVAL when it is corrupt, other -errno on I/O errors;
 * err says which.
 */
int lockd_epoch_read(const char *dir, uint64_t *value, char *err,
		     size_t errlen);

/* Replace dir/epoch by value atomically and durably. */
int lockd_epoch_write(const char *dir, uint64_t value, char *err,
		      size_t errlen);

#endif /* CSVFS_LOCKD_EPOCH_H */
