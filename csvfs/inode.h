/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * inode.h - the csvfs inode table: FUSE inode numbers to backend handles.
 *
 * Each entry is one backend object, keyed both by its FUSE inode number
 * (allocated here, never reused while the table lives) and by its backend
 * identity (st_dev, st_ino), so that hard links found under different
 * names share one FUSE inode.  An entry lives while the kernel holds
 * lookups on it (nlookup, taken by every reply that hands the kernel an
 * entry and given back by forget) or a request pins it (pins); when both
 * reach zero the backend handle is put and the entry freed.
 *
 * Locking: one mutex, tbl->lock, protects both hash chains and every
 * entry's nlookup and pins.  Everything else in an entry is immutable
 * after insertion.  Lock order: tbl->lock is a leaf: nothing else is
 * taken while holding it (the backend's node_put runs after it is
 * dropped).
 */
#ifndef CSVFS_INODE_H
#define CSVFS_INODE_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

struct backend;
struct be_node;

struct cv_inode {
	uint64_t nodeid;	 /* FUSE inode number; immutable */
	dev_t dev;		 /* backend identity; immutable */
	ino_t ino;		 /* = backend file id; immutable */
	struct be_node *node;	 /* backend handle; immutable */
	int plocks_used;	 /* atomic: POSIX locks were ever set */
	uint64_t nlookup;	 /* protected by tbl->lock */
	uint64_t pins;		 /* protected by tbl->lock */
	struct cv_inode *next_id;  /* nodeid chain; tbl->lock */
	struct cv_inode *next_key; /* (dev, ino) chain; tbl->lock */
};

struct cv_itable {
	pthread_mutex_t lock;
	struct backend *be;	/* immutable */
	struct cv_inode **by_id;  /* protected by lock */
	struct cv_inode **by_key; /* protected by lock */
	size_t nbuckets;	  /* protected by lock */
	size_t count;		  /* protected by lock */
	uint64_t next_nodeid;	  /* protected by lock */
};

int cv_itable_init(struct cv_itable *t, struct backend *be);
/* Puts every remaining backend handle. */
void cv_itable_destroy(struct cv_itable *t);

/*
 * Insert the root (nodeid 1) with an eternal lookup; takes node.
 */
int cv_inode_set_root(struct cv_itable *t, struct be_node *node, dev_t dev,
		      ino_t ino);

/*
 * A lookup found node (dev, ino): return its inode with one more lookup
 * and one pin.  If an entry with that identity exists, node is put and
 * the existing entry is used; otherwise node is taken over.  Returns NULL
 * (node put) on allocation failure.
 */
struct cv_inode *cv_inode_found(struct cv_itable *t, struct be_node *node,
				dev_t dev, ino_t ino);

/* Pin the inode for nodeid for the length of a request; NULL if unknown. */
struct cv_inode *cv_inode_get(struct cv_itable *t, uint64_t nodeid);
void cv_inode_put(struct cv_itable *t, struct cv_inode *ino);

/* One more pin on an inode already pinned by the caller. */
void cv_inode_pin(struct cv_itable *t, struct cv_inode *ino);
/* The FUSE inode number of backend object (dev, ino), 0 if not known. */
uint64_t cv_inode_nodeid_of(struct cv_itable *t, dev_t dev, ino_t ino);

/* Kernel forgets n lookups. */
void cv_inode_forget(struct cv_itable *t, uint64_t nodeid, uint64_t n);

size_t cv_itable_count(struct cv_itable *t);

#endif /* CSVFS_INODE_H */
