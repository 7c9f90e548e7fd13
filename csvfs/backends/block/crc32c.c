// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Table-driven crc32c, one byte per step.  Journal checksums cover a few
 * blocks per transaction, so a 1 KiB table is fast enough and keeps the
 * code obvious; a slicing or SSE4.2 version can replace it behind the
 * same function if commit ever shows up in a profile.
 */
#include "crc32c.h"

#include <pthread.h>

#define CRC32C_POLY 0x82F63B78u

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
		crc_table[i] = c;
	}
}

uint32_t cv_crc32c(uint32_t crc, const void *p, size_t len)
{
	const uint8_t *b = p;

	pthread_once(&crc_once, crc_table_init);
	while (len--)
		crc = crc_table[(crc ^ *b++) & 0xff] ^ (crc >> 8);
	return crc;
}
