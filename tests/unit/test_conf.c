/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test_conf.c - unit tests of the csvfs-lockd configuration parser:
 * defaults, every key, comments and layout, and every kind of error with
 * its file:line message.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"

static char err[512];

static int parse(struct lockd_conf *c, const char *text)
{
	lockd_conf_defaults(c);
	err[0] = '\0';
	return lockd_conf_parse(c, text, "t.conf", err, sizeof(err));
}

static void test_defaults(void **state)
{
	struct lockd_conf c;

	(void)state;
	assert_int_equal(parse(&c, ""), 0);
	assert_int_equal(c.transport, LOCKD_TRANSPORT_COROSYNC);
	assert_string_equal(c.node, "");
	assert_string_equal(c.cluster_name, "");
	assert_string_equal(c.socket, "/run/csvfs/lockd.sock");
	assert_string_equal(c.socket_group, "");
	assert_string_equal(c.state_dir, "/var/lib/csvfs");
	assert_int_equal(c.lease_timeout_ms, 0); /* derived at start */
	assert_int_equal(c.clock_drift_ppm, 10000);
	assert_int_equal(c.fence_margin_ms, 500);
	assert_string_equal(c.fence_command, "");
	assert_int_equal(c.fence_command_timeout_ms, 60000);
	assert_string_equal(c.watchdog_device, "");
	assert_int_equal(c.watchdog_timeout_ms, 10000);
	assert_int_equal(c.revoke_timeout_ms, 10000);
	assert_int_equal(c.handoff_idle_ms, 60000);
	assert_int_equal(c.shutdown_timeout_ms, 5000);
	assert_int_equal(c.log_level, LOG_NOTICE);
	/* 4000 + 1 % + 500 */
	c.lease_timeout_ms = 4000;
	assert_int_equal(lockd_conf_fence_wait_ms(&c), 4540);
}

/* The lease rides out a pause of detection + slack after one period. */
static void test_lease_arithmetic(void **state)
{
	static const uint32_t detections[] = { 1,    1100,  2200,   2850,
					       8030, 60000, 1234567 };

	(void)state;
	assert_int_equal(lockd_conf_heartbeat_ms(5000), 625);
	assert_int_equal(lockd_conf_heartbeat_ms(7), 1);
	assert_int_equal(lockd_conf_heartbeat_ms(0), 1);
	for (size_t i = 0; i < sizeof(detections) / sizeof(detections[0]);
	     i++) {
		uint32_t d = detections[i], min = lockd_conf_lease_min_ms(d);
		uint32_t lease = lockd_conf_lease_derive(d);

		assert_true(min - lockd_conf_heartbeat_ms(min) >=
			    d + LOCKD_LEASE_SLACK_MS);
		/* the least such lease: one ms less does not do */
		assert_true(min - 1 - lockd_conf_heartbeat_ms(min - 1) <
			    d + LOCKD_LEASE_SLACK_MS);
		assert_true(lease >= min);
		assert_true(lease >= LOCKD_LEASE_MIN_AUTO_MS);
		assert_int_equal(lease % 100, 0);
		assert_true(lease < min + 100 ||
			    lease == LOCKD_LEASE_MIN_AUTO_MS);
	}
	/* the recommended, shared-network and default corosync settings */
	assert_int_equal(lockd_conf_lease_derive(1100), 2200);
	assert_int_equal(lockd_conf_lease_derive(2200), 3400);
	assert_int_equal(lockd_conf_lease_derive(8030), 10100);
	assert_int_equal(lockd_conf_lease_derive(1), LOCKD_LEASE_MIN_AUTO_MS);
	assert_int_equal(lockd_conf_lease_derive(0), LOCKD_LEASE_STANDALONE_MS);
	assert_int_equal(lockd_conf_lease_min_ms(UINT32_MAX), UINT32_MAX);
}

static void test_every_key(void **state)
{
	static const char text[] =
		"# a full configuration\n"
		"[cluster]\n"
		"transport = standalone\n"
		"node = n1\n"
		"cluster_name=prod   # trailing comment\n"
		"socket = /tmp/l.sock\n"
		"socket_group = kvm\n"
		"state_dir = /srv/csvfs-state\n"
		"lease_timeout_ms = 2000\n"
		"clock_drift_ppm = 500\n"
		"fence_margin_ms = 100\n"
		"fence_command = /usr/sbin/fence_x --opt a#b\n"
		"fence_command_timeout_ms = 9000\n"
		"watchdog_device = /dev/watchdog0\n"
		"watchdog_timeout_ms = 5000\n"
		"revoke_timeout_ms = 3000\n"
		"handoff_idle_ms = 1000\n"
		"shutdown_timeout_ms = 0\n"
		"\n"
		"  [ log ]  \n"
		"\tlevel = debug\r\n";
	struct lockd_conf c;

	(void)state;
	assert_int_equal(parse(&c, text), 0);
	assert_int_equal(c.transport, LOCKD_TRANSPORT_STANDALONE);
	assert_string_equal(c.node, "n1");
	assert_string_equal(c.cluster_name, "prod");
	assert_string_equal(c.socket, "/tmp/l.sock");
	assert_string_equal(c.socket_group, "kvm");
	assert_string_equal(c.state_dir, "/srv/csvfs-state");
	assert_int_equal(c.lease_timeout_ms, 2000);
	assert_int_equal(c.clock_drift_ppm, 500);
	assert_int_equal(c.fence_margin_ms, 100);
	assert_string_equal(c.fence_command, "/usr/sbin/fence_x --opt a#b");
	assert_int_equal(c.fence_command_timeout_ms, 9000);
	assert_string_equal(c.watchdog_device, "/dev/watchdog0");
	assert_int_equal(c.watchdog_timeout_ms, 5000);
	assert_int_equal(c.revoke_timeout_ms, 3000);
	assert_int_equal(c.handoff_idle_ms, 1000);
	assert_int_equal(c.shutdown_timeout_ms, 0);
	assert_int_equal(c.log_level, LOG_DEBUG);
	/* 2000 + 1 (2000 * 500 ppm, rounded up) + 100 + 5000 watchdog */
	assert_int_equal(lockd_conf_fence_wait_ms(&c), 7101);
}

static void test_drift_percent(void **state)
{
	struct lockd_conf c;

	(void)state;
	assert_int_equal(parse(&c, "[cluster]\nclock_drift_ppm = 2%\n"), 0);
	assert_int_equal(c.clock_drift_ppm, 20000);
	assert_int_equal(parse(&c, "[cluster]\nclock_drift_ppm = 0.25%\n"), 0);
	assert_int_equal(c.clock_drift_ppm, 2500);
	assert_int_equal(parse(&c, "[cluster]\nclock_drift_ppm = 0%\n"), 0);
	assert_int_equal(c.clock_drift_ppm, 0);
	assert_int_equal(parse(&c, "[cluster]\nclock_drift_ppm = 10%\n"), 0);
	assert_int_equal(c.clock_drift_ppm, 100000);
}

static void test_empty_values(void **state)
{
	struct lockd_conf c;

	(void)state;
	assert_int_equal(parse(&c, "[cluster]\nnode =\nfence_command = \n"
				   "watchdog_device=\n"), 0);
	assert_string_equal(c.node, "");
	assert_string_equal(c.fence_command, "");
	assert_string_equal(c.watchdog_device, "");
}

struct bad_case {
	const char *text;
	const char *msg; /* expected substring of the error */
};

static const struct bad_case bad_cases[] = {
	{ "[bogus]\n", "t.conf:1: unknown section [bogus]" },
	{ "[cluster\n", "t.conf:1: section header without closing" },
	{ "node = x\n", "t.conf:1: key \"node\" before any [section]" },
	{ "[cluster]\n\nnodes = x\n", "t.conf:3: unknown key \"nodes\"" },
	{ "[log]\nnode = x\n", "t.conf:2: unknown key \"node\" in [log]" },
	{ "[cluster]\njust words\n", "t.conf:2: expected \"key = value\"" },
	{ "[cluster]\nnode = a\nnode = b\n", "t.conf:3: duplicate key" },
	{ "[cluster]\ntransport = tcp\n",
	  "t.conf:2: bad value \"tcp\" for transport" },
	{ "[cluster]\nlease_timeout_ms = 4s\n", "milliseconds" },
	{ "[cluster]\nlease_timeout_ms = -1\n", "milliseconds" },
	{ "[cluster]\nlease_timeout_ms =\n", "milliseconds" },
	{ "[cluster]\nlease_timeout_ms = 10\n", "out of range [400, 600000]" },
	{ "[cluster]\nlease_timeout_ms = 99999999999999999999999\n",
	  "milliseconds" },
	{ "[cluster]\nfence_margin_ms = 600001\n", "out of range" },
	{ "[cluster]\nfence_command_timeout_ms = 1\n", "out of range" },
	{ "[cluster]\nwatchdog_timeout_ms = 10\n", "out of range" },
	{ "[cluster]\nrevoke_timeout_ms = 0\n", "out of range" },
	{ "[cluster]\nhandoff_idle_ms = 1\n", "out of range" },
	{ "[cluster]\nshutdown_timeout_ms = 700000\n", "out of range" },
	{ "[cluster]\nclock_drift_ppm = 200000\n", "out of range" },
	{ "[cluster]\nclock_drift_ppm = 200%\n", "percentage" },
	{ "[cluster]\nclock_drift_ppm = 1.%\n", "percentage" },
	{ "[cluster]\nclock_drift_ppm = %\n", "percentage" },
	{ "[cluster]\nclock_drift_ppm = 0.00001%\n", "percentage" },
	{ "[cluster]\nsocket = run/l.sock\n", "absolute path" },
	{ "[cluster]\nwatchdog_device = dev/watchdog\n", "absolute path" },
	{ "[cluster]\nstate_dir = var/lib/csvfs\n", "absolute path" },
	{ "[cluster]\nsocket = /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	  "longer than 107 characters" },
	{ "[cluster]\nnode = 0123456789012345678901234567890123456789012345"
	  "678901234567890123\n", "longer than 63 characters" },
	{ "[log]\nlevel = loud\n", "t.conf:2: bad value \"loud\" for level" },
};

static void test_errors(void **state)
{
	struct lockd_conf c;

	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		int ret = parse(&c, bad_cases[i].text);

		if (ret != -EINVAL || !strstr(err, bad_cases[i].msg))
			fail_msg("case %zu: ret %d, error \"%s\", expected "
				 "\"%s\"", i, ret, err, bad_cases[i].msg);
	}
}

static void test_long_line(void **state)
{
	struct lockd_conf c;
	char *text = malloc(5000);

	(void)state;
	assert_non_null(text);
	memset(text, 'x', 4999);
	text[4999] = '\0';
	assert_int_equal(parse(&c, text), -EINVAL);
	assert_non_null(strstr(err, "t.conf:1: line longer"));
	free(text);
}

static void test_load(void **state)
{
	char path[] = "/tmp/test_conf.XXXXXX";
	struct lockd_conf c;
	FILE *f;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs("[cluster]\nnode = n7\n[log]\nlevel = info\n", f);
	fclose(f);

	lockd_conf_defaults(&c);
	assert_int_equal(lockd_conf_load(&c, path, true, err, sizeof(err)), 0);
	assert_string_equal(c.node, "n7");
	assert_int_equal(c.log_level, LOG_INFO);

	/* errors name the real file */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("[cluster]\nlease_timeout_ms = x\n", f);
	fclose(f);
	assert_int_equal(lockd_conf_load(&c, path, true, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, ":2: bad value"));
	unlink(path);

	/* missing: fine unless required */
	lockd_conf_defaults(&c);
	assert_int_equal(lockd_conf_load(&c, path, false, err, sizeof(err)),
			 -ENOENT);
	assert_int_equal(c.lease_timeout_ms, 0);
	assert_int_equal(lockd_conf_load(&c, path, true, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "cannot read"));

	/* a directory is not a configuration file */
	assert_int_equal(lockd_conf_load(&c, "/tmp", true, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "not a regular file"));

	/* /dev/null is an empty configuration */
	lockd_conf_defaults(&c);
	assert_int_equal(lockd_conf_load(&c, "/dev/null", true, err,
					 sizeof(err)), 0);
	assert_int_equal(c.lease_timeout_ms, 0);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(lockd_transport_name(LOCKD_TRANSPORT_COROSYNC),
			    "corosync");
	assert_string_equal(lockd_transport_name(LOCKD_TRANSPORT_STANDALONE),
			    "standalone");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_lease_arithmetic),
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_drift_percent),
		cmocka_unit_test(test_empty_values),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
