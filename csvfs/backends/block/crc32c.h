/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * crc32c (Castagnoli, reflected polynomial 0x82F63B78) as jbd2 and ext4
 * use it: the caller passes the running value in and gets it back with
 * no final inversion, so a checksum "seeded with ~0" is
 * cv_crc32c(0xffffffff, p, n) and chaining is cv_crc32c(prev, q, m).
 */
#ifndef CSVFS_CRC32C_H
#define CSVFS_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue crc over len bytes at p (p is only read). */
uint32_t cv_crc32c(uint32_t crc, const void *p, size_t len);

#endif
