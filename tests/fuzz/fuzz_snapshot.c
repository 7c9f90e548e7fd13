// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fuzz_snapshot.c - libFuzzer target for the lock table snapshot check.
 *
 * A joining node rebuilds its table from a donor's snapshot, reassembled
 * from LM_C_SYNC_DATA chunks; lm_state_snapshot_check() must accept or
 * reject (-EBADMSG) any byte string without crashing or reading outside
 * it.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "lm_state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* libFuzzer passes an exact-size heap copy: ASan sees overreads */
	int rc = lm_state_snapshot_check(data, size);

	if (rc != 0 && rc != -EBADMSG)
		abort();
	return 0;
}
