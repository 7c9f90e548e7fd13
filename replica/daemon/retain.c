// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * retain.c - the retention policy of recovery points (retain.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "retain.h"

#define NS 1000000000ll

void rt_policy_default(struct rt_policy *p)
{
	p->all_s = RT_DEFAULT_ALL_S;
	p->hourly_s = RT_DEFAULT_HOURLY_S;
	p->daily_s = RT_DEFAULT_DAILY_S;
}

static int parse_secs(const char *s, size_t n, int64_t *out)
{
	char buf[32], *end;
	long long v;
	int64_t mul = 1;

	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	errno = 0;
	v = strtoll(buf, &end, 10);
	if (errno || end == buf || v < 0)
		return -EINVAL;
	if (*end) {
		if (end[1])
			return -EINVAL;
		switch (*end) {
		case 's':
			break;
		case 'm':
			mul = 60;
			break;
		case 'h':
			mul = 3600;
			break;
		case 'd':
			mul = 86400;
			break;
		default:
			return -EINVAL;
		}
	}
	if (v > (long long)(INT64_MAX / NS / mul))
		return -EINVAL;
	*out = (int64_t)v * mul;
	return 0;
}

int rt_policy_parse(struct rt_policy *p, const char *spec)
{
	struct rt_policy q = *p;
	const char *s = spec;

	while (*s) {
		const char *eq = strchr(s, '='), *comma = strchr(s, ',');
		size_t vlen;
		int64_t *field;

		if (!comma)
			comma = s + strlen(s);
		if (!eq || eq > comma)
			return -EINVAL;
		if (eq - s == 3 && !strncmp(s, "all", 3))
			field = &q.all_s;
		else if (eq - s == 6 && !strncmp(s, "hourly", 6))
			field = &q.hourly_s;
		else if (eq - s == 5 && !strncmp(s, "daily", 5))
			field = &q.daily_s;
		else
			return -EINVAL;
		vlen = (size_t)(comma - eq - 1);
		if (parse_secs(eq + 1, vlen, field))
			return -EINVAL;
		s = *comma ? comma + 1 : comma;
	}
	*p = q;
	return 0;
}

/* The bucket (hour or day since the epoch) of a time, floor division. */
static int64_t bucket(int64_t t_ns, int64_t secs)
{
	int64_t w = secs * NS;

	return t_ns >= 0 ? t_ns / w : -((-t_ns + w - 1) / w);
}

/* Is point i the newest of its bucket?  Points ascend, so it is when
 * the next one falls in another bucket. */
static bool newest_of(const int64_t *t, size_t n, size_t i, int64_t secs)
{
	return i + 1 == n || bucket(t[i + 1], secs) != bucket(t[i], secs);
}

size_t rt_select(const struct rt_policy *p, const int64_t *time_ns, size_t n,
		 int64_t now_ns, bool *keep)
{
	size_t kept = 0;

	for (size_t i = 0; i < n; i++) {
		int64_t age = now_ns - time_ns[i];

		keep[i] = i + 1 == n || age < p->all_s * NS ||
			  (age < p->hourly_s * NS &&
			   newest_of(time_ns, n, i, 3600)) ||
			  (age < p->daily_s * NS &&
			   newest_of(time_ns, n, i, 86400));
		kept += keep[i];
	}
	return kept;
}
