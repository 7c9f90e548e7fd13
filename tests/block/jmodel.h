/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The model of the tree jtool builds: which directories and files exist
 * and what each file holds (a seed and a size), the generator of random
 * operations on it, and the sorted listing both the model and a real
 * image print, so that the two can be compared with diff or strcmp.
 */
#ifndef CSVFS_JMODEL_H
#define CSVFS_JMODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define JM_MAXF 16384
#define JM_MAXD 6
#define JM_NAME 24

struct jm_file {
	char name[JM_NAME];
	int dir;		/* -1: the root, else index in dname */
	uint32_t seed, size;
	bool live;
};

struct jm {
	struct jm_file f[JM_MAXF];
	int nf;
	char dname[JM_MAXD][JM_NAME];
	int nd;
	uint32_t counter;	/* names are never reused */
};

enum jm_kind { JM_MKDIR, JM_CREATE, JM_UNLINK, JM_RENAME };

struct jm_op {
	enum jm_kind kind;
	int dir;		/* MKDIR: its index; CREATE/RENAME: target */
	int file;		/* CREATE: slot; UNLINK/RENAME: index */
	char name[JM_NAME];	/* new name (MKDIR, CREATE, RENAME) */
	uint32_t seed, size;
};

/* Next operation valid on m; applies it to m (pass a scratch copy). */
void jm_gen(struct jm *m, uint64_t *rng, struct jm_op *op);
void jm_apply(struct jm *m, const struct jm_op *op);
/* The contents of a file of this seed. */
void jm_fill(uint32_t seed, uint8_t *buf, size_t len);
uint32_t jm_crc(uint32_t seed, uint32_t size);
/* The sorted listing of m, one line per entry, into out. */
void jm_print(const struct jm *m, FILE *out);
/* Sort and print lines (n of them, each malloc'd), then free them. */
void jm_print_lines(char **lines, size_t n, FILE *out);

#endif
