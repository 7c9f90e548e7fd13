/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cvtool.h - helpers shared by the csvfs command-line tools (and test
 * clients): volume UUID text, csvfs paths to lock resources, human ages
 * and aligned text tables.
 */
#ifndef CSVFS_CVTOOL_H
#define CSVFS_CVTOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lkm.h"
#include "volume.h"

#define CV_XATTR_VOLUME "user.csvfs.volume"
#define CV_XATTR_FILEID "user.csvfs.fileid"

/* UUID text: cv_uuid_unparse() and cv_uuid_parse() of csvfs's volume.h,
 * the same code csvfs uses for user.csvfs.volume. */

/* Resource of a file on a csvfs mount, from its virtual xattrs.
 * -ENOTSUP when path is not on a csvfs mount, else -errno. */
int cv_path_res(const char *path, struct lm_res *res);

/* "350ms", "1.2s", "42s", "3m", "5h", "3d"; "-" for ms < 0. */
void cv_age_format(int64_t ms, char *out, size_t len);

/* Aligned text table: add cells row by row, print once. */
struct cv_table {
	size_t n_cols;
	size_t n_rows;	    /* header included */
	size_t cap_rows;
	char **cells;	    /* n_rows * n_cols, malloc'd strings */
	bool *right;	    /* per column: right-aligned (numbers) */
};

/* header: column titles; a title starting with '>' is right-aligned. */
int cv_table_init(struct cv_table *t, size_t n_cols,
		  const char *const *header);
/* Append a row of n_cols strings (copied). */
int cv_table_row(struct cv_table *t, const char *const *cells);
void cv_table_print(const struct cv_table *t, FILE *f);
void cv_table_free(struct cv_table *t);

#endif /* CSVFS_CVTOOL_H */
