// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lm_proto.c - encoders and bounds-checked decoders of the lockd wire
 * formats (lm_proto.h).  The only place that converts byte order.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "lm_proto.h"

uint64_t lm_checksum64(uint64_t seed, const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t h = seed;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}
