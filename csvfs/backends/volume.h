/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * volume.h - the volume record's text form and UUID helpers, shared by
 * all backends and by the FUSE layer (virtual xattr user.csvfs.volume).
 */
#ifndef CSVFS_VOLUME_H
#define CSVFS_VOLUME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"

#define CV_UUID_STR_LEN 37 /* 36 characters and the NUL */

void cv_uuid_unparse(const uint8_t uuid[16], char out[CV_UUID_STR_LEN]);
int cv_uuid_parse(const char *s, uint8_t uuid[16]);
/* Returns the length written, or -EINVAL / -ENOSPC. */
int cv_volrec_format(const struct cv_volrec *rec, char *buf, size_t cap);
/* -EUCLEAN if buf is not a volume record. */
int cv_volrec_parse(const char *buf, struct cv_volrec *rec);
/* A new record: random (version 4) UUID, current format, label.
 * -EINVAL if the label is too long or has a line break. */
int cv_volrec_new(struct cv_volrec *rec, const char *label);
/*
 * Give the backend at SOURCE its volume record, atomically: -EEXIST if it
 * has one already (nothing is changed).  A backend that needs a file
 * system of its own first (block) makes one, refusing storage that holds
 * data unless force.  On success *rec is what was written.  On failure
 * err says what failed and on what.
 */
int cv_volume_format(const char *source, const char *label, bool force,
		     struct cv_volrec *rec, char *err, size_t errlen);

#endif /* CSVFS_VOLUME_H */
