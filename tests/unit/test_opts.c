// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * test_opts.c - unit tests of the csvfs command line (csvfs/opts.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "opts.h"

static int parse(struct cv_opts *o, char *err, ...)
{
	char *argv[16] = { (char *)"csvfs" };
	int argc = 1;
	va_list ap;
	char *a;

	va_start(ap, err);
	while ((a = va_arg(ap, char *)))
		argv[argc++] = a;
	va_end(ap);
	return cv_opts_parse(argc, argv, o, err, 256);
}

static void test_defaults(void **state)
{
	struct cv_opts o;
	char err[256];

	assert_int_equal(parse(&o, err, "/srv/vm", "/mnt", NULL), 0);
	assert_string_equal(o.source, "/srv/vm");
	assert_string_equal(o.mountpoint, "/mnt");
	assert_string_equal(o.lockd, "/run/csvfs/lockd.sock");
	assert_int_equal(o.cache, CV_CACHE_DIRECT);
	assert_int_equal(o.idle_release_ms, 10000);
	assert_true(o.aio);
	assert_int_equal(o.uring, CV_URING_AUTO);
	assert_true(o.attr_timeout > 0 && o.attr_timeout <= 1.0);
	assert_false(o.foreground);
	assert_string_equal(o.fuse_opts, "");
	assert_false(cv_opts_no_lockd(&o));
}

static void test_all_options(void **state)
{
	struct cv_opts o;
	char err[256];

	assert_int_equal(parse(&o, err, "dir:/srv", "/mnt", "-f", "-o",
			       "lockd=/tmp/l.sock,node=n1,cache=auto",
			       "-o", "attr_timeout=0.5,entry_timeout=0,"
			       "idle_release_ms=250,label=vmstore,"
			       "allow_other,ro,max_threads=8,aio=off,"
			       "uring=on", NULL),
			 0);
	assert_true(o.foreground);
	assert_string_equal(o.lockd, "/tmp/l.sock");
	assert_string_equal(o.node, "n1");
	assert_string_equal(o.label, "vmstore");
	assert_int_equal(o.cache, CV_CACHE_AUTO);
	assert_true(o.attr_timeout == 0.5);
	assert_true(o.entry_timeout == 0);
	assert_int_equal(o.idle_release_ms, 250);
	assert_int_equal(o.max_threads, 8);
	assert_false(o.aio);
	assert_int_equal(o.uring, CV_URING_ON);
	assert_true(o.read_only);
	assert_string_equal(o.fuse_opts, "allow_other,ro");
}

static void test_fuse_passthrough(void **state)
{
	struct cv_opts o;
	char err[256];

	assert_int_equal(parse(&o, err, "-oallow_other,default_permissions",
			       "/a", "/b", "-o",
			       "nosuid,nodev,noatime,fsname=x,lockd=none",
			       NULL),
			 0);
	assert_string_equal(o.fuse_opts, "allow_other,default_permissions,"
					  "nosuid,nodev,noatime,fsname=x");
	assert_true(cv_opts_no_lockd(&o));
}

static void test_unknown_option(void **state)
{
	struct cv_opts o;
	char err[256];

	assert_int_equal(parse(&o, err, "/a", "/b", "-o", "bogus", NULL), 2);
	assert_non_null(strstr(err, "bogus"));
	assert_int_equal(parse(&o, err, "/a", "/b", "-o", "_netdev", NULL),
			 2);
	assert_int_equal(parse(&o, err, "/a", "/b", "-x", NULL), 2);
	assert_non_null(strstr(err, "-x"));
}

static void test_malformed_values(void **state)
{
	static const char *const bad[] = {
		"cache=sometimes", "cache", "attr_timeout=abc",
		"attr_timeout=-1", "entry_timeout=", "idle_release_ms=1x",
		"idle_release_ms=-5", "lockd=", "node", "max_threads=0",
		"idle_release_ms=99999999999", "aio", "aio=yes",
		"uring", "uring=yes",
	};
	struct cv_opts o;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(&o, err, "/a", "/b", "-o", bad[i],
				       NULL),
				 2);
		assert_non_null(strstr(err, "invalid value"));
	}
}

static void test_arguments(void **state)
{
	struct cv_opts o;
	char err[256];

	assert_int_equal(parse(&o, err, "/a", NULL), 2);
	assert_int_equal(parse(&o, err, NULL), 2);
	assert_int_equal(parse(&o, err, "/a", "/b", "/c", NULL), 2);
	assert_int_equal(parse(&o, err, "/a", "/b", "-o", NULL), 2);
	assert_int_equal(parse(&o, err, "-h", NULL), 0);
	assert_true(o.help);
	assert_int_equal(parse(&o, err, "--version", NULL), 0);
	assert_true(o.version);
	assert_int_equal(parse(&o, err, "/a", "/b", "-d", NULL), 0);
	assert_true(o.debug && o.foreground);
}

static void test_too_long(void **state)
{
	char big[400];
	struct cv_opts o;
	char err[256];

	memset(big, 'x', sizeof(big));
	memcpy(big, "lockd=", 6);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(parse(&o, err, "/a", "/b", "-o", big, NULL), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_all_options),
		cmocka_unit_test(test_fuse_passthrough),
		cmocka_unit_test(test_unknown_option),
		cmocka_unit_test(test_malformed_values),
		cmocka_unit_test(test_arguments),
		cmocka_unit_test(test_too_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
