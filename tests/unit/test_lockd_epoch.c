/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test_lockd_epoch.c - unit tests of csvfs-lockd's persistent epoch
 * high-water mark (lockmgr/lockd_epoch.c): the block reservation rule,
 * the file's text format, and the file itself in a private temporary
 * directory (atomic write, read back, missing, corrupt, unusable dir).
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
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lockd_epoch.h"

static char dir[64];
static char err[512];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_lockd_epoch.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void put_file(const char *name, const char *text, size_t len)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
}

static void test_reservation(void **state)
{
	(void)state;
	/* first start: nothing reserved */
	assert_int_equal(lockd_epoch_next_reservation(0, 0), 4096);
	/* far enough below: keep it */
	assert_int_equal(lockd_epoch_next_reservation(0, 4096), 0);
	assert_int_equal(lockd_epoch_next_reservation(2047, 4096), 0);
	/* within LOW of it: a new block from the epoch */
	assert_int_equal(lockd_epoch_next_reservation(2048, 4096), 6144);
	assert_int_equal(lockd_epoch_next_reservation(4095, 4096), 8191);
	/* an install raised the epoch past it */
	assert_int_equal(lockd_epoch_next_reservation(4096, 4096), 8192);
	assert_int_equal(lockd_epoch_next_reservation(100000, 4096),
			 104096);
	/* a renewal always leaves more than LOW ahead */
	for (uint64_t e = 0, r = 0; e < 20000; e += 7) {
		uint64_t n = lockd_epoch_next_reservation(e, r);

		if (n) {
			assert_true(n > r);
			r = n;
		}
		assert_true(r > e + LOCKD_EPOCH_LOW);
	}
	/* saturates instead of wrapping */
	assert_true(lockd_epoch_next_reservation(UINT64_MAX - 10, 0) ==
		    UINT64_MAX);
	assert_true(lockd_epoch_next_reservation(UINT64_MAX, UINT64_MAX) ==
		    UINT64_MAX);
}

static void test_format_parse(void **state)
{
	char buf[LOCKD_EPOCH_TEXT_MAX];
	uint64_t v = 1;

	(void)state;
	assert_int_equal(lockd_epoch_format(0, buf, sizeof(buf)), 2);
	assert_string_equal(buf, "0\n");
	assert_int_equal(lockd_epoch_format(UINT64_MAX, buf, sizeof(buf)),
			 21);
	assert_string_equal(buf, "18446744073709551615\n");
	assert_int_equal(lockd_epoch_format(12345, buf, 4), -ENOSPC);

	assert_int_equal(lockd_epoch_parse("42\n", 3, &v), 0);
	assert_true(v == 42);
	assert_int_equal(lockd_epoch_parse("43", 2, &v), 0);
	assert_true(v == 43);
	assert_int_equal(lockd_epoch_parse("18446744073709551615\n", 21, &v),
			 0);
	assert_true(v == UINT64_MAX);
	v = 7;
	assert_int_equal(lockd_epoch_parse("18446744073709551616", 20, &v),
			 -EINVAL);
	assert_int_equal(lockd_epoch_parse("", 0, &v), -EINVAL);
	assert_int_equal(lockd_epoch_parse("\n", 1, &v), -EINVAL);
	assert_int_equal(lockd_epoch_parse("-1\n", 3, &v), -EINVAL);
	assert_int_equal(lockd_epoch_parse("12 \n", 4, &v), -EINVAL);
	assert_int_equal(lockd_epoch_parse("1\n\n", 3, &v), -EINVAL);
	assert_int_equal(lockd_epoch_parse("4\0" "2", 3, &v), -EINVAL);
	assert_true(v == 7); /* untouched on error */
}

static void test_write_read(void **state)
{
	char path[128];
	struct stat sb;
	uint64_t v = 0;

	(void)state;
	assert_int_equal(lockd_epoch_prepare(dir, err, sizeof(err)), 0);
	assert_int_equal(lockd_epoch_write(dir, 8192, err, sizeof(err)), 0);
	assert_int_equal(lockd_epoch_read(dir, &v, err, sizeof(err)), 0);
	assert_true(v == 8192);
	/* replaced, not appended; no temporary file left behind */
	assert_int_equal(lockd_epoch_write(dir, 12288, err, sizeof(err)), 0);
	assert_int_equal(lockd_epoch_read(dir, &v, err, sizeof(err)), 0);
	assert_true(v == 12288);
	snprintf(path, sizeof(path), "%s/epoch.tmp", dir);
	assert_int_equal(stat(path, &sb), -1);
	snprintf(path, sizeof(path), "%s/epoch", dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_size, 6);
	assert_int_equal(sb.st_mode & 0777, 0600);
	/* a stale temporary file of a crashed write does not matter */
	put_file("epoch.tmp", "garbage", 7);
	assert_int_equal(lockd_epoch_write(dir, 16384, err, sizeof(err)), 0);
	assert_int_equal(lockd_epoch_read(dir, &v, err, sizeof(err)), 0);
	assert_true(v == 16384);
}

static void test_missing(void **state)
{
	uint64_t v = 99;

	(void)state;
	assert_int_equal(lockd_epoch_read(dir, &v, err, sizeof(err)),
			 -ENOENT);
	assert_true(v == 0);
	assert_non_null(strstr(err, "/epoch"));
}

static void test_corrupt(void **state)
{
	uint64_t v = 99;

	(void)state;
	put_file("epoch", "12x4\n", 5);
	assert_int_equal(lockd_epoch_read(dir, &v, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "corrupt"));
	assert_non_null(strstr(err, dir));
	put_file("epoch", "", 0);
	assert_int_equal(lockd_epoch_read(dir, &v, err, sizeof(err)),
			 -EINVAL);
	/* too long for any 64-bit number */
	put_file("epoch", "0000000000000000000000000001\n", 29);
	assert_int_equal(lockd_epoch_read(dir, &v, err, sizeof(err)),
			 -EINVAL);
}

static void test_prepare(void **state)
{
	char sub[128];
	struct stat sb;

	(void)state;
	/* created when missing, one level */
	snprintf(sub, sizeof(sub), "%s/state", dir);
	assert_int_equal(lockd_epoch_prepare(sub, err, sizeof(err)), 0);
	assert_int_equal(stat(sub, &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));
	assert_int_equal(sb.st_mode & 0777, 0700);
	/* parent missing */
	snprintf(sub, sizeof(sub), "%s/no/such", dir);
	assert_int_equal(lockd_epoch_prepare(sub, err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, sub));
	/* not a directory */
	put_file("plain", "x", 1);
	snprintf(sub, sizeof(sub), "%s/plain", dir);
	assert_int_equal(lockd_epoch_prepare(sub, err, sizeof(err)),
			 -ENOTDIR);
	assert_int_not_equal(lockd_epoch_write(sub, 1, err, sizeof(err)), 0);
	/* not writable (root bypasses the mode bits: skip the check) */
	if (geteuid() != 0) {
		snprintf(sub, sizeof(sub), "%s/ro", dir);
		assert_int_equal(mkdir(sub, 0500), 0);
		assert_int_equal(lockd_epoch_prepare(sub, err, sizeof(err)),
				 -EACCES);
		assert_non_null(strstr(err, "not writable"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reservation),
		cmocka_unit_test(test_format_parse),
		cmocka_unit_test_setup_teardown(test_write_read, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prepare, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
