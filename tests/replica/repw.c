// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * repw.c - a writer whose history can be checked from its data alone, for
 * the replication scenarios.
 *
 * "repw write DIR NFILES BLOCKS FIRST SECONDS STATE" writes 4 KiB blocks
 * with O_DIRECT into DIR/disk0 .. DIR/disk<NFILES-1> (BLOCKS blocks
 * each), one at a time, write number FIRST, FIRST+1, ...: write s goes
 * to the file and block a fixed function of s picks, and holds a stamp
 * (magic, s, file, block, checksum) and filler derived from s.  After
 * each acknowledged write, STATE holds its number (so a writer started
 * again after a crash goes on from STATE+1: the write that was in flight
 * is written again, with the same content).  It stops after SECONDS, or
 * at its first error.
 *
 * "repw check NFILES BLOCKS FILE..." checks that the files are one
 * instant of that history: with K the highest write number found, every
 * block holds the last write s <= K that goes to it (or zeros if none),
 * intact.  Exit 0 and "instant K", or 1 and what is wrong.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLK   4096
#define MAGIC 0x3157504552ull /* "REPW1" */

struct stamp {
	uint64_t magic, seq, file, block, sum;
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

static void where(uint64_t s, unsigned nfiles, uint64_t blocks, unsigned *f,
		  uint64_t *b)
{
	uint64_t h = mix(s);

	*f = (unsigned)(h % nfiles);
	*b = (h >> 16) % blocks;
}

static uint64_t sum_of(const uint8_t *p)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = offsetof(struct stamp, sum) + 8; i < BLK; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h ^ mix(((const struct stamp *)p)->seq);
}

static void fill(uint8_t *p, uint64_t s, unsigned f, uint64_t b)
{
	struct stamp *st = (struct stamp *)p;

	for (size_t i = sizeof(*st); i < BLK; i += 8) {
		uint64_t v = mix(s * 512 + i);

		memcpy(p + i, &v, 8);
	}
	st->magic = MAGIC;
	st->seq = s;
	st->file = f;
	st->block = b;
	st->sum = sum_of(p);
}

static int do_write(char **av)
{
	unsigned nfiles = (unsigned)atoi(av[1]);
	uint64_t blocks = strtoull(av[2], NULL, 10);
	uint64_t s = strtoull(av[3], NULL, 10);
	time_t end = time(NULL) + atoi(av[4]);
	int fds[16];
	uint8_t *buf = NULL;
	char path[4096];
	unsigned opened = 0;
	int rc = 2;

	if (!nfiles || nfiles > 16 || !blocks ||
	    posix_memalign((void **)&buf, BLK, BLK))
		return 2;
	for (; opened < nfiles; opened++) {
		snprintf(path, sizeof(path), "%s/disk%u", av[0], opened);
		fds[opened] = open(path, O_RDWR | O_DIRECT);
		if (fds[opened] < 0) {
			perror(path);
			goto out;
		}
	}
	for (; time(NULL) < end; s++) {
		unsigned f;
		uint64_t b;
		FILE *st;

		where(s, nfiles, blocks, &f, &b);
		fill(buf, s, f, b);
		if (pwrite(fds[f], buf, BLK, (off_t)(b * BLK)) != BLK) {
			fprintf(stderr, "repw: write %" PRIu64 ": %s\n", s,
				strerror(errno));
			rc = 1;
			goto out;
		}
		st = fopen(av[5], "w");
		if (!st)
			goto out;
		fprintf(st, "%" PRIu64 "\n", s);
		fclose(st);
	}
	printf("repw: last write %" PRIu64 "\n", s - 1);
	rc = 0;
out:
	while (opened--)
		close(fds[opened]);
	free(buf);
	return rc;
}

/* The stamp of block b of f (seq 0 for zeros), or -1 if torn. */
static int64_t read_stamp(int fd, unsigned f, uint64_t b, uint8_t *buf)
{
	const struct stamp *st = (const struct stamp *)buf;
	size_t i;

	if (pread(fd, buf, BLK, (off_t)(b * BLK)) != BLK)
		return 0; /* past the end: zeros */
	for (i = 0; i < BLK && !buf[i]; i++)
		;
	if (i == BLK)
		return 0;
	if (st->magic != MAGIC || st->file != f || st->block != b ||
	    st->sum != sum_of(buf))
		return -1;
	return (int64_t)st->seq;
}

static int do_check(int ac, char **av)
{
	unsigned nfiles = (unsigned)atoi(av[0]);
	uint64_t blocks = strtoull(av[1], NULL, 10), k = 0, bad = 0;
	uint64_t *seen, *want;
	uint8_t buf[BLK];

	if ((unsigned)ac != nfiles + 2 || !blocks)
		return 2;
	seen = calloc(nfiles * blocks, 8);
	want = calloc(nfiles * blocks, 8);
	if (!seen || !want)
		return 2;
	for (unsigned f = 0; f < nfiles; f++) {
		int fd = open(av[2 + f], O_RDONLY);

		if (fd < 0) {
			perror(av[2 + f]);
			return 2;
		}
		for (uint64_t b = 0; b < blocks; b++) {
			int64_t s = read_stamp(fd, f, b, buf);

			if (s < 0) {
				printf("torn block %" PRIu64 " of file %u\n", b,
				       f);
				free(seen);
				free(want);
				return 1;
			}
			seen[f * blocks + b] = (uint64_t)s;
			if ((uint64_t)s > k)
				k = (uint64_t)s;
		}
		close(fd);
	}
	for (uint64_t s = 1; s <= k; s++) {
		unsigned f;
		uint64_t b;

		where(s, nfiles, blocks, &f, &b);
		want[f * blocks + b] = s;
	}
	for (uint64_t i = 0; i < nfiles * blocks; i++)
		if (seen[i] != want[i] && bad++ < 5)
			printf("file %" PRIu64 " block %" PRIu64
			       ": write %" PRIu64 ", want %" PRIu64
			       " (instant %" PRIu64 ")\n",
			       i / blocks, i % blocks, seen[i], want[i], k);
	free(seen);
	free(want);
	if (bad) {
		printf("not one instant: %" PRIu64 " blocks differ\n", bad);
		return 1;
	}
	printf("instant %" PRIu64 "\n", k);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 8 && !strcmp(argv[1], "write"))
		return do_write(argv + 2);
	if (argc >= 5 && !strcmp(argv[1], "check"))
		return do_check(argc - 2, argv + 2);
	fprintf(stderr, "usage: repw write DIR NFILES BLOCKS FIRST SECONDS "
			"STATE\n       repw check NFILES BLOCKS FILE...\n");
	return 2;
}
