// SPDX-License-Identifier: LGPL-2.1-or-later
/* mrand.c: the random run and the crash rounds of mtool (placeholder
 * until the model lands). */
#include "mtool.h"

int mt_random(const char *img, uint64_t seed, int n, const char *expect)
{
	(void)img, (void)seed, (void)n, (void)expect;
	return 77;
}

int mt_crash(const char *img, uint64_t seed, int rounds)
{
	(void)img, (void)seed, (void)rounds;
	return 77;
}
