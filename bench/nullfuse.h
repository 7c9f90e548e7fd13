/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * nullfuse.h - what nullfuse.c and its io_uring mode (nullfuse_uring.c)
 * share: the flat backing directory's files by inode number.
 */
#ifndef NULLFUSE_H
#define NULLFUSE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

/* linux/fuse.h before 6.2 lacks it */
#define NF_FOPEN_PARALLEL_DIRECT_WRITES (1u << 6)

/* 0 or -errno; st_ino is the backing inode number (the FUSE node id). */
int nf_lookup_name(const char *name, struct stat *st);
int nf_stat_ino(uint64_t ino, struct stat *st);
/* A descriptor of the backing file opened with flags, or -errno. */
int nf_open_ino(uint64_t ino, int flags);

/* io_uring mode: the flags2 bit the INIT reply must carry, the signal
 * that INIT was answered, and the queues' start (one per CPU). */
uint32_t nf_uring_init_flags2(void);
void nf_uring_init_done(void);
int nf_uring_start(int devfd, size_t max_payload);

#endif
