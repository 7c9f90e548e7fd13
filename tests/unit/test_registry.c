// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * test_registry.c - unit tests of the backend registry
 * (csvfs/backends/registry.c): which SOURCE goes to which backend, what
 * part the backend gets, and the words a user sees for a bad or
 * unavailable SOURCE.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "backend.h"

static const struct backend_ops *ops;
static const char *rest;
static char err[512];

static int lookup(const char *source)
{
	ops = NULL;
	rest = NULL;
	err[0] = '\0';
	return backend_lookup(source, &ops, &rest, err, sizeof(err));
}

static void test_dir(void **state)
{
	assert_int_equal(lookup("/srv/vm"), 0);
	assert_ptr_equal(ops, &be_dir_ops);
	assert_string_equal(rest, "/srv/vm");
	assert_int_equal(lookup("dir:/srv/vm"), 0);
	assert_ptr_equal(ops, &be_dir_ops);
	assert_string_equal(rest, "/srv/vm"); /* the prefix is the registry's */
}

static void test_nfs(void **state)
{
	int rc = lookup("nfs://server/export?version=4");

#ifdef CSVFS_HAVE_NFS
	assert_int_equal(rc, 0);
	assert_ptr_equal(ops, &be_nfs_ops);
	/* libnfs parses the whole URL */
	assert_string_equal(rest, "nfs://server/export?version=4");
#else
	assert_int_equal(rc, -EPROTONOSUPPORT);
	assert_non_null(strstr(err, "libnfs-dev"));
#endif
}

static void test_block(void **state)
{
	int rc = lookup("block:/dev/sdb");

#ifdef CSVFS_HAVE_BLOCK
	assert_int_equal(rc, 0);
	assert_ptr_equal(ops, &be_block_ops);
	assert_string_equal(rest, "/dev/sdb");
	assert_int_equal(lookup("block:dev/sdb"), -EINVAL);
	assert_non_null(strstr(err, "SOURCE must be"));
#else
	assert_int_equal(rc, -EPROTONOSUPPORT);
	assert_null(ops);
	assert_non_null(strstr(err, "block:/dev/sdb: the block backend is "
				    "not available"));
	assert_non_null(strstr(err, "libext2fs-dev"));
#endif
}

/* iscsi:// is a block volume on an iSCSI LUN: the whole URL goes to
 * the block backend; without libiscsi (or the block backend) the build
 * says so, and why. */
static void test_iscsi(void **state)
{
#if defined(CSVFS_HAVE_BLOCK) && defined(CSVFS_HAVE_ISCSI)
	assert_int_equal(lookup("iscsi://portal/iqn.2026-12.x:t/0"), 0);
	assert_ptr_equal(ops, &be_block_ops);
	assert_string_equal(rest, "iscsi://portal/iqn.2026-12.x:t/0");
#else
	assert_int_equal(lookup("iscsi://portal/iqn.2026-12.x:t/0"),
			 -EPROTONOSUPPORT);
	assert_non_null(strstr(err, "iscsi backend is not available"));
	assert_non_null(strstr(err, "libiscsi-dev"));
#endif
}

static void test_malformed(void **state)
{
	static const char *const bad[] = {
		"relative/dir", "dir:relative", "dir:", "", "ftp://x/y",
		"NFS://server/export",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(lookup(bad[i]), -EINVAL);
		assert_null(ops);
		assert_non_null(strstr(err, "SOURCE must be"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dir),
		cmocka_unit_test(test_nfs),
		cmocka_unit_test(test_block),
		cmocka_unit_test(test_iscsi),
		cmocka_unit_test(test_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
