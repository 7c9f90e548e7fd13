// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * prtool - SCSI-3 persistent reservations on a LUN through lun.h, for
 * the iSCSI tests: one I_T nexus (this process's session) running the
 * steps given, in order:
 *
 *   prtool SOURCE STEP...
 *     register KEY        REGISTER AND IGNORE EXISTING KEY
 *     reserve KEY         RESERVE write exclusive, registrants only
 *     preempt KEY VICTIM  PREEMPT AND ABORT, else PREEMPT (says which)
 *     clear KEY           CLEAR (all registrations, the reservation)
 *     show                READ KEYS and READ RESERVATION
 *     write OFF           one 4 KiB block of 0x5a at byte OFF
 *     read OFF            the first byte of the 4 KiB block at OFF
 *
 * Keys in hex.  The initiator name is CSVFS_ISCSI_INITIATOR's.  Exits 1
 * at the first step that fails, printing its error.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lun.h"

static uint64_t hex(const char *s)
{
	return strtoull(s, NULL, 16);
}

static int show(struct cvb_lun *l)
{
	struct cvb_pr_state st;
	int rc = cvb_pr_read(l, &st);

	if (rc)
		return rc;
	printf("generation %" PRIu32 "\n", st.generation);
	for (unsigned i = 0; i < st.nkeys; i++)
		printf("key %016" PRIx64 "\n", st.keys[i]);
	if (st.reserved)
		printf("holder %016" PRIx64 " type %u\n", st.holder, st.type);
	else
		printf("no reservation\n");
	return 0;
}

static int block_io(struct cvb_lun *l, bool wr, uint64_t off)
{
	static uint8_t buf[4096] __attribute__((aligned(4096)));
	ssize_t n;

	memset(buf, wr ? 0x5a : 0, sizeof(buf));
	n = wr ? cvb_lun_pwrite(l, buf, sizeof(buf), off)
	       : cvb_lun_pread(l, buf, sizeof(buf), off);
	if (n < 0)
		return (int)n;
	if (!wr)
		printf("byte %02x\n", buf[0]);
	return n == sizeof(buf) ? 0 : -EIO;
}

static int step(struct cvb_lun *l, char **a, int *used)
{
	bool aborted;
	int rc;

	*used = 1;
	if (!strcmp(a[0], "show"))
		return show(l);
	*used = 2;
	if (!a[1])
		return -EINVAL;
	if (!strcmp(a[0], "register"))
		return cvb_pr_register(l, hex(a[1]));
	if (!strcmp(a[0], "clear"))
		return cvb_pr_clear(l, hex(a[1]));
	if (!strcmp(a[0], "reserve"))
		return cvb_pr_reserve(l, hex(a[1]), CVB_PR_WE_RO);
	if (!strcmp(a[0], "write"))
		return block_io(l, true, strtoull(a[1], NULL, 0));
	if (!strcmp(a[0], "read"))
		return block_io(l, false, strtoull(a[1], NULL, 0));
	*used = 3;
	if (!strcmp(a[0], "preempt") && a[2]) {
		rc = cvb_pr_preempt(l, hex(a[1]), hex(a[2]), CVB_PR_WE_RO, true,
				    &aborted);
		if (!rc)
			printf("preempted %s with %s\n", a[2],
			       aborted ? "PREEMPT AND ABORT" : "PREEMPT");
		return rc;
	}
	return -EINVAL;
}

int main(int argc, char **argv)
{
	struct cvb_lun *l;
	char err[512];
	int rc, used;

	if (argc < 3) {
		fprintf(stderr, "usage: prtool SOURCE STEP...\n");
		return 2;
	}
	rc = cvb_lun_open(argv[1], 0, NULL, &l, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "prtool: %s\n", err);
		return 1;
	}
	for (int i = 2; i < argc; i += used) {
		rc = step(l, argv + i, &used);
		if (rc) {
			fprintf(stderr, "prtool: %s: %s\n", argv[i],
				strerror(-rc));
			break;
		}
		printf("%s ok\n", argv[i]);
	}
	cvb_lun_close(l);
	return rc ? 1 : 0;
}
