// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fuzz_rtrack.c - libFuzzer target for the replication tracker's
 * on-volume decoders (csvfs/replica_track.c): the activity log and the
 * hand-off bitmap, read by the next owner of a file from the shared
 * volume, where a crashed node may have left anything.
 *
 * Any input must parse or be refused with -EINVAL (never read outside
 * it, never mark a granule past RT_MAX_BYTES); a bitmap that decodes
 * must encode again to exactly the input bytes (the format is
 * canonical); each log record that decodes encodes again to itself.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "replica_track.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_bits(const struct rt_bits *b)
{
	if (rt_bits_next(b, RT_MAX_BYTES >> RT_GRANULE_SHIFT) != UINT64_MAX)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rt_bits g = { 0 }, b = { 0 };
	struct rt_al_rec r;
	uint64_t epoch, fid;
	uint8_t rec[RT_AL_REC], *out;
	size_t len;
	int rc;

	rc = rt_al_parse(data, size, &epoch, &fid, &g);
	if (rc && rc != -EINVAL && rc != -ENOMEM)
		abort();
	check_bits(&g);
	if (!rt_al_decode(data, size, &r)) {
		rt_al_encode(&r, rec);
		if (memcmp(rec, data, RT_AL_REC))
			abort();
	}
	rc = rt_bm_decode(data, size, &epoch, &b);
	if (rc && rc != -EINVAL && rc != -ENOMEM)
		abort();
	if (!rc) {
		check_bits(&b);
		if (!rt_bm_encode(&b, epoch, &out, &len)) {
			if (len != size || memcmp(out, data, size))
				abort();
			free(out);
		}
	}
	rt_bits_free(&g);
	rt_bits_free(&b);
	return 0;
}
