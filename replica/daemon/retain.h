/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * retain.h - which recovery points csvfs-replicad keeps (pure: the
 * caller passes the time; no I/O).
 *
 * A point is kept when any of these holds:
 *   - it is the newest point (the replica's current image);
 *   - it is younger than all_s seconds;
 *   - it is younger than hourly_s and the newest point of its UTC hour;
 *   - it is younger than daily_s and the newest point of its UTC day.
 * "Newest of its hour" is taken over all points, so a point dropped once
 * is never wanted later: the selection is stable as time passes.
 * Defaults: every point for an hour, hourly for a day, daily for a week.
 */
#ifndef CSVFS_REPLICA_RETAIN_H
#define CSVFS_REPLICA_RETAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rt_policy {
	int64_t all_s;	  /* keep every point this young */
	int64_t hourly_s; /* then the newest per hour */
	int64_t daily_s;  /* then the newest per day */
};

#define RT_DEFAULT_ALL_S    3600
#define RT_DEFAULT_HOURLY_S 86400
#define RT_DEFAULT_DAILY_S  (7 * 86400)

void rt_policy_default(struct rt_policy *p);
/* Parse "all=S,hourly=S,daily=S" (any subset, seconds, or with a suffix
 * s, m, h, d); -EINVAL on anything else. */
int rt_policy_parse(struct rt_policy *p, const char *spec);
/*
 * time_ns[0..n) ascending (points in order); keep[i] set to the verdict.
 * Returns how many are kept.
 */
size_t rt_select(const struct rt_policy *p, const int64_t *time_ns, size_t n,
		 int64_t now_ns, bool *keep);

#endif /* CSVFS_REPLICA_RETAIN_H */
