// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * test_prom.c - the Prometheus text writer of csvfs-admin metrics
 * (tools/prom.c) and lockd's acquire latency histogram (lm_hist in
 * lm_proto.c): bucket choice, cumulative output, label escaping.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "prom.h"

/* Run fn on a memory stream; returns the malloc'd text. */
static char *capture(void (*fn)(FILE *f, void *arg), void *arg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	fn(f, arg);
	fclose(f);
	return text;
}

static void test_hist_buckets(void **state)
{
	struct lm_hist h = { 0 };

	(void)state;
	lm_hist_observe(&h, 0);		/* first bucket (<= 100us) */
	lm_hist_observe(&h, 100);	/* bounds are inclusive */
	lm_hist_observe(&h, 101);	/* <= 250us */
	lm_hist_observe(&h, 1000000);	/* <= 1s */
	lm_hist_observe(&h, UINT64_MAX / 2); /* +Inf */
	assert_int_equal(h.bucket[0], 2);
	assert_int_equal(h.bucket[1], 1);
	assert_int_equal(h.bucket[12], 1);
	assert_int_equal(h.bucket[LM_HIST_BUCKETS - 1], 1);
	assert_int_equal(h.count, 5);
	assert_int_equal(lm_hist_bound_us(0), 100);
	assert_true(lm_hist_bound_us(LM_HIST_BUCKETS - 1) == UINT64_MAX);
	assert_true(lm_hist_bound_us(LM_HIST_BUCKETS) == UINT64_MAX);
	for (unsigned i = 1; i < LM_HIST_BUCKETS; i++)
		assert_true(lm_hist_bound_us(i) > lm_hist_bound_us(i - 1));
}

static void write_hist(FILE *f, void *arg)
{
	prom_family(f, "x_seconds", "histogram", "test");
	prom_histogram_us(f, "x_seconds", "node=\"n1\"", arg);
}

static void test_histogram_text(void **state)
{
	struct lm_hist h = { 0 };
	char *t;

	(void)state;
	lm_hist_observe(&h, 50);
	lm_hist_observe(&h, 2000);
	lm_hist_observe(&h, 2000);
	t = capture(write_hist, &h);
	assert_non_null(strstr(t, "# HELP x_seconds test\n"
				  "# TYPE x_seconds histogram\n"));
	assert_non_null(strstr(t, "x_seconds_bucket{node=\"n1\",le=\"0.0001\"}"
				  " 1\n"));
	/* cumulative: 0.001 still 1, 0.0025 has all three */
	assert_non_null(strstr(t, "le=\"0.001\"} 1\n"));
	assert_non_null(strstr(t, "le=\"0.0025\"} 3\n"));
	assert_non_null(strstr(t, "le=\"+Inf\"} 3\n"));
	assert_non_null(strstr(t, "x_seconds_sum{node=\"n1\"} 0.004050\n"));
	assert_non_null(strstr(t, "x_seconds_count{node=\"n1\"} 3\n"));
	free(t);
}

static void write_plain(FILE *f, void *arg)
{
	(void)arg;
	prom_uint(f, "a_total", "", 42);
	prom_int(f, "b", "k=\"v\"", -1);
	prom_ms_as_seconds(f, "c_seconds", "", 1234);
	prom_ms_as_seconds(f, "d_seconds", "", -5);
}

static void test_samples(void **state)
{
	char *t;

	(void)state;
	t = capture(write_plain, NULL);
	assert_string_equal(t, "a_total 42\nb{k=\"v\"} -1\n"
			       "c_seconds 1.234\nd_seconds -0.005\n");
	free(t);
}

static void test_label_escape(void **state)
{
	char buf[64] = "";
	char small[12] = "";

	(void)state;
	assert_int_equal(prom_label(buf, sizeof(buf), "node", "n1"), 0);
	assert_int_equal(prom_label(buf, sizeof(buf), "path", "a\"b\\c\nd"),
			 0);
	assert_string_equal(buf, "node=\"n1\",path=\"a\\\"b\\\\c\\nd\"");
	/* too long: -ENOSPC and the buffer is left as it was */
	assert_int_equal(prom_label(small, sizeof(small), "k", "v"), 0);
	assert_int_equal(prom_label(small, sizeof(small), "key", "long"),
			 -ENOSPC);
	assert_string_equal(small, "k=\"v\"");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hist_buckets),
		cmocka_unit_test(test_histogram_text),
		cmocka_unit_test(test_samples),
		cmocka_unit_test(test_label_escape),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
