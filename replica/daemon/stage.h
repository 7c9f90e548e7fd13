/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * stage.h - the operation records of an unfinished point (stage.c),
 * read again by apply.c when the point is applied.
 */
#ifndef CSVFS_REPLICA_STAGE_H
#define CSVFS_REPLICA_STAGE_H

#include <stdint.h>

#include "proto.h"
#include "store.h"

#define RS_OPS_MAGIC 0x53525643u /* "CVRS" */
#define RS_REC_LEN   104

struct rs_rec {
	uint32_t type; /* CVR_EXTENT, CVR_TRUNCATE, CVR_PUNCH */
	uint64_t op;
	uint64_t file_id;
	uint64_t offset; /* TRUNCATE: the size */
	uint64_t len;
	uint8_t sha[CVR_SHA_LEN];
};

/* The record at *pos (extent data into data, CVR_DATA_MAX bytes, its hash
 * checked); *pos moves past it.  -ENOENT at the end, -EBADMSG if torn. */
int rs_rec_next(int fd, uint64_t *pos, struct rs_rec *r, uint8_t *data);

/* The newest staged point (0 if none). */
int rs_stage_find(struct rs_group *g, uint64_t *point);
/* Open the stage of point: its file list into g, its ops file scanned
 * (g->next_op). */
int rs_stage_open(struct rs_group *g, uint64_t point);
void rs_stage_close(struct rs_group *g);
void rs_stage_remove(struct rs_group *g, uint64_t point);

#endif /* CSVFS_REPLICA_STAGE_H */
