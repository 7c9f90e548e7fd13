/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * prom.h - a writer for the Prometheus text exposition format (0.0.4), as
 * `csvfs-admin metrics` prints it for node_exporter's textfile collector
 * or any scraper: "# HELP" and "# TYPE" once per family, then samples
 * "name{label="value",...} number".
 *
 * Pure formatting on a FILE: no lockd, no clock, so it is unit-tested on a
 * memory stream.
 */
#ifndef CSVFS_PROM_H
#define CSVFS_PROM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lkm.h"

/* "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). */
void prom_family(FILE *f, const char *name, const char *type,
		 const char *help);

/*
 * Label set text: key="value" with value escaped (backslash, double quote,
 * newline), appended to buf (NUL-terminated, comma separated).  -ENOSPC if
 * it does not fit (buf unchanged).
 */
int prom_label(char *buf, size_t cap, const char *key, const char *value);

/* One sample; labels is the text of prom_label() or "" for none. */
void prom_uint(FILE *f, const char *name, const char *labels, uint64_t v);
void prom_int(FILE *f, const char *name, const char *labels, int64_t v);
/* A value in seconds given in milliseconds (printed with 3 decimals). */
void prom_ms_as_seconds(FILE *f, const char *name, const char *labels,
			int64_t ms);

/*
 * A histogram of microsecond observations, exposed in seconds: cumulative
 * name_bucket{...,le="..."} lines ending with le="+Inf", then name_sum
 * and name_count.
 */
void prom_histogram_us(FILE *f, const char *name, const char *labels,
		       const struct lm_hist *h);

#endif /* CSVFS_PROM_H */
