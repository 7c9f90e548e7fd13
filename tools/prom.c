// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * prom.c - Prometheus text exposition writer (see prom.h).
 *
 * Histogram buckets arrive per bucket (lm_hist) and leave cumulative, as
 * the format wants; bounds are lockd's, converted from microseconds to
 * seconds, the base unit Prometheus names end in.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#include "prom.h"

void prom_family(FILE *f, const char *name, const char *type,
		 const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Append n bytes of s at *at if they fit (keeping room for the NUL). */
static bool put(char *buf, size_t cap, size_t *at, const char *s, size_t n)
{
	if (n >= cap - *at)
		return false;
	memcpy(buf + *at, s, n);
	*at += n;
	return true;
}

int prom_label(char *buf, size_t cap, const char *key, const char *value)
{
	size_t len = strnlen(buf, cap), at = len;
	bool ok;

	if (len >= cap)
		return -ENOSPC;
	ok = (!len || put(buf, cap, &at, ",", 1)) &&
	     put(buf, cap, &at, key, strlen(key)) &&
	     put(buf, cap, &at, "=\"", 2);
	for (const char *p = value; ok && *p; p++) {
		if (*p == '\\')
			ok = put(buf, cap, &at, "\\\\", 2);
		else if (*p == '"')
			ok = put(buf, cap, &at, "\\\"", 2);
		else if (*p == '\n')
			ok = put(buf, cap, &at, "\\n", 2);
		else
			ok = put(buf, cap, &at, p, 1);
	}
	if (!ok || !put(buf, cap, &at, "\"", 1)) {
		buf[len] = '\0';
		return -ENOSPC;
	}
	buf[at] = '\0';
	return 0;
}

static void sample_head(FILE *f, const char *name, const char *labels)
{
	if (labels && *labels)
		fprintf(f, "%s{%s} ", name, labels);
	else
		fprintf(f, "%s ", name);
}

void prom_uint(FILE *f, const char *name, const char *labels, uint64_t v)
{
	sample_head(f, name, labels);
	fprintf(f, "%" PRIu64 "\n", v);
}

void prom_int(FILE *f, const char *name, const char *labels, int64_t v)
{
	sample_head(f, name, labels);
	fprintf(f, "%" PRId64 "\n", v);
}

void prom_ms_as_seconds(FILE *f, const char *name, const char *labels,
			int64_t ms)
{
	sample_head(f, name, labels);
	fprintf(f, "%s%" PRId64 ".%03" PRId64 "\n", ms < 0 ? "-" : "",
		(ms < 0 ? -ms : ms) / 1000, (ms < 0 ? -ms : ms) % 1000);
}

void prom_histogram_us(FILE *f, const char *name, const char *labels,
		       const struct lm_hist *h)
{
	const char *sep = labels && *labels ? "," : "";
	uint64_t cum = 0, bound;

	for (unsigned i = 0; i < LM_HIST_BUCKETS; i++) {
		cum += h->bucket[i];
		bound = lm_hist_bound_us(i);
		fprintf(f, "%s_bucket{%s%s", name, labels ? labels : "", sep);
		if (bound == UINT64_MAX)
			fprintf(f, "le=\"+Inf\"} %" PRIu64 "\n", cum);
		else
			fprintf(f, "le=\"%g\"} %" PRIu64 "\n",
				(double)bound / 1e6, cum);
	}
	fprintf(f, "%s_sum%s%s%s %" PRIu64 ".%06" PRIu64 "\n", name,
		*sep ? "{" : "", *sep ? labels : "", *sep ? "}" : "",
		h->sum_us / 1000000, h->sum_us % 1000000);
	fprintf(f, "%s_count%s%s%s %" PRIu64 "\n", name, *sep ? "{" : "",
		*sep ? labels : "", *sep ? "}" : "", h->count);
}
