/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the parts of mtool (the block metadata engine's test driver)
 * share: checks, the engine opened on an image, the independent tree
 * listing, and the random run with its model (mrand.c).
 */
#ifndef CSVFS_MTOOL_H
#define CSVFS_MTOOL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "meta.h"

extern int mt_fail, mt_pass;

/* One check: prints "ok" / "not ok" with what, counts it. */
bool mt_check(bool cond, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
bool mt_eq(long long got, long long want, const char *what);
#define MT_EQ(got, want, what) mt_eq((long long)(got), (long long)(want), what)

struct cvb_meta *mt_open(const char *img);
void mt_close(struct cvb_meta *m);
void mt_die(const char *what, long err) __attribute__((noreturn));

/* The tree of img read with libext2fs directly (not the engine):
 * sorted lines "path d|f|l size nlink crc|target", malloc'd string. */
char *mt_tree(const char *img);
/* e2fsck -fn img is clean (output to stderr when not). */
bool mt_fsck(const char *img);

extern const struct cv_cred mt_root;
/* Helpers that die on failure: mt_mk makes a file (or a directory, by
 * mode) and gives its inode; mt_lk looks up (returns -errno); mt_nents
 * counts readdir entries; mt_lun_write allocates and writes len bytes
 * at off through the LUN at the mapped places, then set_written. */
uint64_t mt_mk(struct cvb_meta *m, uint64_t dir, const char *name, mode_t mode);
int mt_lk(struct cvb_meta *m, uint64_t dir, const char *name, uint64_t *ino);
int mt_nents(struct cvb_meta *m, uint64_t dir);
void mt_lun_write(struct cvb_meta *m, const char *img, uint64_t ino,
		  uint64_t off, const uint8_t *buf, uint64_t len);
/* expect-NAME in the cwd holds buf. */
void mt_save(const char *name, const uint8_t *buf, size_t len);
void mt_pattern(uint8_t *buf, size_t len, uint32_t seed);
int mt_run_cmd(int argc, char **argv);

int mt_random(const char *img, uint64_t seed, int n, const char *expect);
int mt_crash(const char *img, uint64_t seed, int rounds);

#endif
