/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vol_i.h - private to the block backend: the volume's set-up, claim
 * and record (vol.c), as used by the ops table in block.c.
 */
#ifndef CSVFS_BLOCK_VOL_I_H
#define CSVFS_BLOCK_VOL_I_H

#include "block_i.h"

/* Virtual attribute: the node serving the volume's metadata. */
#define CVB_XATTR_COORDINATOR "user.csvfs.coordinator"

int cvb_vol_init(struct backend *be, const char *source);
void cvb_vol_destroy(struct backend *be);
int cvb_vol_read(struct backend *be, struct cv_volrec *rec);
int cvb_vol_create(struct backend *be, const struct cv_volrec *rec);
int cvb_vol_mkfs(const char *source, const char *label, bool force, char *err,
		 size_t errlen);
int cvb_vol_claim(struct backend *be, const struct be_cluster *cl, char *err,
		  size_t errlen);
int cvb_vol_start(struct backend *be);
void cvb_vol_stop(struct backend *be);
/* Read .csvfs/NAME of the LUN at path without the engine (read-only,
 * O_DIRECT libext2fs open): NUL-terminated in buf. */
int cvb_vol_peek(const char *path, const char *name, char *buf, size_t cap);
/* Write .csvfs/NAME (len bytes) on the coordinator: made once (then
 * committed and checkpointed home, for cvb_vol_peek), afterwards
 * rewritten in place. */
int cvb_vol_publish(struct cvb_vol *b, const char *name, const char *buf,
		    size_t len);
/* The coordinator's node name as an xattr value (size 0: its length). */
ssize_t cvb_vol_coordinator(struct cvb_vol *b, void *buf, size_t size);

#endif /* CSVFS_BLOCK_VOL_I_H */
