// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * test_retain.c - unit tests of csvfs-replicad's retention policy
 * (replica/daemon/retain.c): every point of the last hour, the newest
 * of each hour for a day, of each day for a week; the newest point
 * always; a selection that never wants back a point it dropped; the
 * policy's parser.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "retain.h"

#define S 1000000000ll
#define H (3600 * S)
#define D (24 * H)

static void test_default(void **state)
{
	struct rt_policy p;
	/* now: day 100, 12:30 */
	int64_t now = 100 * D + 12 * H + 30 * 60 * S;
	int64_t t[] = {
		90 * D + H,	 /* 0: ten days old: dropped */
		97 * D + 10 * H, /* 1: three days, not newest of day */
		97 * D + 11 * H, /* 2: three days, newest of day: kept */
		100 * D + 7 * H + 60 * S,  /* 3: 5 h, not newest of hour */
		100 * D + 7 * H + 120 * S, /* 4: 5 h, newest of hour: kept */
		now - 30 * 60 * S,	   /* 5: half an hour: kept */
		now - 20 * 60 * S,	   /* 6: kept */
		now - S,		   /* 7: newest: kept */
	};
	bool keep[8], want[8] = { 0, 0, 1, 0, 1, 1, 1, 1 };

	(void)state;
	rt_policy_default(&p);
	assert_int_equal(rt_select(&p, t, 8, now, keep), 5);
	assert_memory_equal(keep, want, sizeof(want));
}

static void test_newest_always(void **state)
{
	struct rt_policy p = { 0, 0, 0 };
	int64_t t[] = { 1, 2, 3 };
	bool keep[3];

	(void)state;
	assert_int_equal(rt_select(&p, t, 3, 1000 * D, keep), 1);
	assert_true(keep[2]);
	assert_int_equal(rt_select(&p, t, 0, 1000 * D, keep), 0);
}

/* A point every 10 minutes for 9 days, selected every hour as they
 * come: nothing dropped comes back, and what is kept is what a fresh
 * selection over all of them keeps. */
static void test_stable(void **state)
{
	enum { N = 9 * 24 * 6 };
	static int64_t all[N], kept[N];
	static bool keep[N], fresh[N];
	struct rt_policy p;
	size_t n = 0, k;

	(void)state;
	rt_policy_default(&p);
	for (size_t i = 0; i < N; i++)
		all[i] = (int64_t)i * 600 * S + 37 * S;
	for (size_t i = 0; i < N; i++) {
		kept[n++] = all[i];
		rt_select(&p, kept, n, all[i], keep);
		k = 0;
		for (size_t j = 0; j < n; j++)
			if (keep[j])
				kept[k++] = kept[j];
		n = k;
	}
	rt_select(&p, all, N, all[N - 1], fresh);
	k = 0;
	for (size_t i = 0; i < N; i++)
		if (fresh[i]) {
			assert_true(k < n);
			assert_int_equal(kept[k], all[i]);
			k++;
		}
	assert_int_equal(k, n);
	/* an hour of every point, 23 more hourly, about 7 daily */
	assert_true(n >= 6 + 23 + 6 && n <= 6 + 24 + 8);
}

static void test_parse(void **state)
{
	struct rt_policy p;

	(void)state;
	rt_policy_default(&p);
	assert_int_equal(rt_policy_parse(&p, "all=10m,daily=30d"), 0);
	assert_int_equal(p.all_s, 600);
	assert_int_equal(p.hourly_s, 86400);
	assert_int_equal(p.daily_s, 30 * 86400);
	assert_int_equal(rt_policy_parse(&p, "hourly=5"), 0);
	assert_int_equal(p.hourly_s, 5);
	assert_int_equal(rt_policy_parse(&p, "weekly=1"), -EINVAL);
	assert_int_equal(rt_policy_parse(&p, "all=-1"), -EINVAL);
	assert_int_equal(rt_policy_parse(&p, "all=1x"), -EINVAL);
	assert_int_equal(rt_policy_parse(&p, "all"), -EINVAL);
	assert_int_equal(p.all_s, 600); /* unchanged by the failures */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default),
		cmocka_unit_test(test_newest_always),
		cmocka_unit_test(test_stable),
		cmocka_unit_test(test_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
