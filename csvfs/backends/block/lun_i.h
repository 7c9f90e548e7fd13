/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lun_i.h - private to the LUN access layer (lun.c, lun_iscsi.c): the
 * handle every implementation starts with and its operations.
 */
#ifndef CSVFS_BLOCK_LUN_I_H
#define CSVFS_BLOCK_LUN_I_H

#include <pthread.h>
#include <stdatomic.h>

#include "lun.h"

struct cvb_lun_ops {
	ssize_t (*pread)(struct cvb_lun *l, void *buf, size_t len,
			 uint64_t off);
	ssize_t (*pwrite)(struct cvb_lun *l, const void *buf, size_t len,
			  uint64_t off);
	int (*flush)(struct cvb_lun *l);
	int (*zero)(struct cvb_lun *l, uint64_t off, uint64_t len);
	void (*close)(struct cvb_lun *l);
	/* persistent reservations: NULL without CVB_LUN_CAP_PR */
	int (*pr_out)(struct cvb_lun *l, int action, unsigned type,
		      uint64_t key, uint64_t sa_key);
	int (*pr_read)(struct cvb_lun *l, struct cvb_pr_state *st);
};

struct cvb_lun {
	const struct cvb_lun_ops *ops; /* immutable */
	char *source;		       /* immutable */
	uint64_t size;		       /* immutable */
	unsigned block, align, caps;   /* immutable */
	int fd;			       /* immutable: path, or -1 */
	dev_t dev;		       /* immutable */
	int lockfd;		       /* iSCSI host lock, or -1 */
	bool lock_held;		       /* lockfd is locked: unlink at close */
	atomic_bool pr_keep;	       /* cvb_pr_keep */
	atomic_bool lost;	       /* set once, never cleared */
	pthread_mutex_t lost_lock;     /* protects lost_fn, lost_arg */
	cvb_lun_lost_fn lost_fn;
	void *lost_arg;
};

/* FNV-1a of a source: an iSCSI LUN's lock file name and st_dev. */
uint64_t cvb_lun_hash(const char *s);

#ifdef CSVFS_HAVE_ISCSI
int cvb_iscsi_open(const char *url, unsigned flags,
		   const struct cvb_lun_opts *o, struct cvb_lun **out,
		   char *err, size_t errlen);
#endif

/* PERSISTENT RESERVE OUT service actions */
#define CVB_PRO_REGISTER	0
#define CVB_PRO_RESERVE		1
#define CVB_PRO_RELEASE		2
#define CVB_PRO_CLEAR		3
#define CVB_PRO_PREEMPT		4
#define CVB_PRO_PREEMPT_ABORT	5
#define CVB_PRO_REGISTER_IGNORE 6

#endif /* CSVFS_BLOCK_LUN_I_H */
