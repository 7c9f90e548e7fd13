// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * test_lun.c - unit tests of the LUN interface (lun.h) that need no
 * target: the path implementation on an image file (size, alignment,
 * direct I/O round trip, short read at the end, zeroing, the host lock
 * between two handles, a directory refused), malformed iscsi:// sources
 * refused by name before any connection, and the reservation keys.
 * The iSCSI implementation against a real target: tests/block/t-iscsi-*.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "lun.h"

static char img[64];

static int setup(void **state)
{
	int fd;

	(void)state;
	snprintf(img, sizeof(img), "/var/tmp/test_lun.XXXXXX");
	fd = mkstemp(img);
	if (fd < 0 || ftruncate(fd, 1 << 20))
		return -1;
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(img);
	return 0;
}

static void test_path_io(void **state)
{
	struct cvb_lun *l;
	char err[256];
	uint8_t *buf = NULL;

	(void)state;
	assert_int_equal(cvb_lun_open(img, 0, NULL, &l, err, sizeof(err)), 0);
	assert_int_equal(cvb_lun_size(l), 1 << 20);
	assert_true(cvb_lun_caps(l) & CVB_LUN_CAP_FD);
	assert_false(cvb_lun_caps(l) & CVB_LUN_CAP_PR);
	assert_true(cvb_lun_fd(l) >= 0);
	assert_true(cvb_lun_align(l) >= 512 && cvb_lun_align(l) <= 4096);
	assert_int_equal(posix_memalign((void **)&buf, 4096, 8192), 0);
	memset(buf, 0xab, 8192);
	assert_int_equal(cvb_lun_pwrite(l, buf, 8192, 4096), 8192);
	memset(buf, 0, 8192);
	assert_int_equal(cvb_lun_pread(l, buf, 8192, 4096), 8192);
	assert_int_equal(buf[0], 0xab);
	assert_int_equal(buf[8191], 0xab);
	/* at the end: short, then nothing */
	assert_int_equal(cvb_lun_pread(l, buf, 8192, (1 << 20) - 4096), 4096);
	assert_int_equal(cvb_lun_pread(l, buf, 4096, 1 << 20), 0);
	/* zeroed, whatever the file system does it with */
	assert_int_equal(cvb_lun_zero(l, 4096, 4096), 0);
	assert_int_equal(cvb_lun_pread(l, buf, 8192, 4096), 8192);
	assert_int_equal(buf[0], 0);
	assert_int_equal(buf[4095], 0);
	assert_int_equal(buf[4096], 0xab);
	assert_int_equal(cvb_lun_flush(l), 0);
	/* no reservations on a path */
	assert_int_equal(cvb_pr_register(l, 1), -EOPNOTSUPP);
	free(buf);
	cvb_lun_close(l);
}

static void test_path_lock(void **state)
{
	struct cvb_lun *a, *b;
	char err[256];

	(void)state;
	assert_int_equal(cvb_lun_open(img, 0, NULL, &a, err, sizeof(err)), 0);
	assert_int_equal(
		cvb_lun_open(img, CVB_LUN_BUFFERED, NULL, &b, err, sizeof(err)),
		0);
	assert_int_equal(cvb_lun_lock(a), 0);
	assert_int_equal(cvb_lun_lock(b), -EAGAIN);
	cvb_lun_close(a);
	assert_int_equal(cvb_lun_lock(b), 0);
	cvb_lun_close(b);
}

static void test_path_refused(void **state)
{
	struct cvb_lun *l;
	char err[256];

	(void)state;
	assert_int_equal(cvb_lun_open("/", 0, NULL, &l, err, sizeof(err)),
			 -ENOTBLK);
	assert_non_null(strstr(err, "neither a block device nor an image"));
	assert_int_equal(
		cvb_lun_open("/nonexistent/lun", 0, NULL, &l, err, sizeof(err)),
		-ENOENT);
	assert_non_null(strstr(err, "/nonexistent/lun"));
}

/* Refused before any connection, the form named. */
static void test_iscsi_malformed(void **state)
{
	static const char *const bad[] = {
		"iscsi://",
		"iscsi://portal",
		"iscsi://portal/iqn.x:y",
		"iscsi:///iqn.x:y/1",
		"iscsi://portal//1",
		"iscsi://portal/iqn.x:y/",
		"iscsi://portal/iqn.x:y/one",
		"iscsi://portal/iqn.x:y/99999",
		"iscsi://user@portal/iqn.x:y/1",
		"iscsi://portal/iqn.x:y/1?fencing=maybe",
	};
	struct cvb_lun *l;
	char err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = cvb_lun_open(bad[i], 0, NULL, &l, err, sizeof(err));

#ifdef CSVFS_HAVE_ISCSI
		assert_int_equal(rc, -EINVAL);
		assert_true(
			strstr(err, "iscsi://portal[:port]/target-iqn/lun") ||
			strstr(err, "0..16383") ||
			strstr(err, "fencing=lease"));
#else
		assert_int_equal(rc, -EPROTONOSUPPORT);
		assert_non_null(strstr(err, "libiscsi-dev"));
#endif
	}
}

static void test_keys(void **state)
{
	(void)state;
	assert_int_equal(cvb_pr_key(3, 7), 0x0000000300000007ull);
	assert_int_equal(cvb_pr_key(0, 0), 1); /* never 0: "unregister" */
	assert_true(cvb_lun_is_iscsi("iscsi://p/i/1"));
	assert_false(cvb_lun_is_iscsi("/dev/sdb"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_io),
		cmocka_unit_test(test_path_lock),
		cmocka_unit_test(test_path_refused),
		cmocka_unit_test(test_iscsi_malformed),
		cmocka_unit_test(test_keys),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
