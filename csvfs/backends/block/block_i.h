/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * block_i.h - private to the block backend (block.c, mq.c, bio.c).
 *
 * Three parts:
 *   mq.c   the metadata queue: every call on the engine (meta.h) is a
 *          struct cvb_req (plain data: what a coordinator channel will
 *          carry) queued to the one thread that owns the engine;
 *   bio.c  the data path: per-inode extent-map cache, direct I/O on the
 *          LUN, allocation on writes into holes, the owner's size, and
 *          the recall hook that drains I/O before blocks are freed;
 *   block.c the backend ops table, nodes and directory streams;
 *   vol.c  the volume record and the coordinator claim;
 *   net.c  the coordinator channel: serving other nodes' requests on
 *          the coordinator, sending this node's on the others.
 *
 * Lock order: b->itab_lock before ci->lock; ci->rmw before ci->lock;
 * q->lock is a leaf (nothing else is taken while it is held).  No thread
 * waits for the metadata thread while it holds ci->lock or a pin on
 * ci's map (inflight), because the metadata thread itself waits for
 * pins to drain in the recall hook.
 */
#ifndef CSVFS_BLOCK_I_H
#define CSVFS_BLOCK_I_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include "backend.h"
#include "meta.h"

/* ---- the metadata queue (mq.c) ----------------------------------------- */

enum cvb_op {
	CVB_OP_GETATTR = 1,
	CVB_OP_LOOKUP,
	CVB_OP_SETATTR,
	CVB_OP_MKNOD,
	CVB_OP_MKDIR,
	CVB_OP_SYMLINK,
	CVB_OP_READLINK,
	CVB_OP_LINK,
	CVB_OP_UNLINK,
	CVB_OP_RMDIR,
	CVB_OP_RENAME,
	CVB_OP_READDIR,
	CVB_OP_STATFS,
	CVB_OP_OPEN_REF,
	CVB_OP_CLOSE_REF,
	CVB_OP_GETXATTR,
	CVB_OP_SETXATTR,
	CVB_OP_LISTXATTR,
	CVB_OP_REMOVEXATTR,
	CVB_OP_MAP,
	CVB_OP_ALLOC,
	CVB_OP_FALLOCATE,
	CVB_OP_SET_WRITTEN,
	CVB_OP_COMMIT,
	CVB_OP_CHECKPOINT, /* commit, then every logged block home */
};

/* One directory entry of a READDIR answer. */
struct cvb_dent {
	uint64_t ino;
	uint64_t next; /* cookie after this entry */
	unsigned type; /* DT_* */
	char name[256];
};

/*
 * A request to the engine: arguments, then the answer.  Pointers refer
 * to the caller's buffers (names, xattr values, extent and dirent
 * arrays), which stay valid until the call returns.
 */
struct cvb_req {
	enum cvb_op op;
	uint64_t ino;	   /* object, or the directory of a name */
	uint64_t ino2;	   /* LINK, RENAME: the new directory */
	const char *name;  /* name in ino; xattr name */
	const char *name2; /* new name; symlink target */
	mode_t mode;
	dev_t rdev;
	struct cv_cred cred;
	int to_set;	/* SETATTR */
	unsigned flags; /* RENAME flags, SETXATTR flags */
	int fmode;	/* FALLOCATE mode */
	struct stat attr;
	uint64_t off, len;	/* MAP, ALLOC, FALLOCATE; READDIR cookie */
	uint64_t size;		/* SET_WRITTEN */
	struct timespec mtime;	/* SET_WRITTEN */
	void *buf;		/* xattr value, link target, dirents */
	size_t bufsize;		/* bytes; READDIR: entries */
	struct cvb_extent *ext; /* MAP, ALLOC */
	unsigned max;		/* MAP, ALLOC: entries in ext */
	/* the answer */
	int64_t res; /* 0, a length, or -errno */
	struct stat st;
	struct statvfs sv;
	unsigned n;   /* MAP, ALLOC: extents; READDIR: entries */
	uint64_t gen; /* MAP, ALLOC */
	uint32_t node; /* the node that asked (net.c); 0: this one */
};

struct cvb_call;

struct cvb_mq {
	struct cvb_meta *m;	      /* immutable once set; NULL: not open */
	pthread_mutex_t lock;	      /* protects everything below */
	pthread_cond_t cond;	      /* the thread: work queued or stop */
	struct cvb_call *head, *tail; /* queued, not yet taken */
	bool running;		      /* the thread exists */
	bool stop;
	bool dirty;		 /* changes since the last commit */
	uint64_t calls, commits; /* statistics */
	pthread_t thread;
};

int cvb_mq_init(struct cvb_mq *q);
void cvb_mq_destroy(struct cvb_mq *q);
/* Start the thread that owns the engine; until then calls run on the
 * caller's thread (one at a time).  After stop, the same. */
int cvb_mq_start(struct cvb_mq *q);
void cvb_mq_stop(struct cvb_mq *q);
/* Run r on the engine (waits for its answer); returns r->res. */
int64_t cvb_mq_call(struct cvb_mq *q, struct cvb_req *r);
/* Queue r without waiting (the thread must be running, else
 * -ESHUTDOWN); fn(arg, r) runs on the engine's thread once r->res is
 * set, before the next request.  r stays the caller's. */
typedef void (*cvb_mq_done_fn)(void *arg, struct cvb_req *r);
int cvb_mq_submit(struct cvb_mq *q, struct cvb_req *r, cvb_mq_done_fn fn,
		  void *arg);

/* ---- per-inode state and the data path (bio.c) ------------------------ */

/* Extents of a file cached by this node, sorted and disjoint. */
struct cvb_map {
	struct cvb_extent *ext;
	unsigned n, cap;
};

struct cvb_inode {
	uint64_t ino;		/* immutable */
	unsigned refs;		/* b->itab_lock */
	struct cvb_inode *next; /* b->itab_lock: hash chain */
	pthread_rwlock_t rmw;	/* writes shared; partial blocks exclusive */
	pthread_mutex_t lock;	/* protects everything below */
	pthread_cond_t drained; /* inflight went to 0 */
	unsigned inflight;	/* I/O under way with an extent of map */
	uint64_t epoch;		/* recalls so far: a map fetched before
				 * the last one is stale */
	uint64_t gen;		/* the engine's map generation of map */
	struct cvb_map map;
	unsigned opens;	 /* open files on this node */
	bool size_known; /* size below is the file's size */
	bool written;	 /* size/mtime not pushed to the engine */
	uint64_t size;
	struct timespec mtime;
};

struct cvb_vol;

struct cvb_inode *cvb_inode_get(struct cvb_vol *b, uint64_t ino);
/* Existing entry or NULL (the recall hook: never creates). */
struct cvb_inode *cvb_inode_find(struct cvb_vol *b, uint64_t ino);
void cvb_inode_put(struct cvb_vol *b, struct cvb_inode *ci);

/* The recall hook given to the engine (meta.h cvb_recall_fn). */
int cvb_io_recall(void *arg, uint64_t ino);
/* Forget the cached map (after an allocation elsewhere: fallocate). */
void cvb_map_drop(struct cvb_inode *ci);

ssize_t cvb_io_read(struct cvb_vol *b, struct cvb_inode *ci, void *buf,
		    size_t size, uint64_t off);
ssize_t cvb_io_write(struct cvb_vol *b, struct cvb_inode *ci, const void *buf,
		     size_t size, uint64_t off);
/* Push the owner's size and mtime to the engine if they changed. */
int cvb_io_push(struct cvb_vol *b, struct cvb_inode *ci);
/* The size this node knows (for getattr): overlays st. */
void cvb_io_overlay(struct cvb_inode *ci, struct stat *st);
/* aio: pin an allocated, aligned, contiguous range (*phys) or -1. */
int cvb_io_pin(struct cvb_vol *b, struct cvb_inode *ci, uint64_t off,
	       size_t size, unsigned buf_align, bool write, uint64_t *phys);
void cvb_io_unpin(struct cvb_inode *ci, bool write, uint64_t off, size_t size,
		  ssize_t res);

/* ---- the volume (block.c) ----------------------------------------------- */

#define CVB_ITAB_SIZE 1024

struct cvb_vol {
	char *path;	    /* immutable: the LUN */
	struct cvb_lun *lun; /* immutable: the LUN (lun.h), direct I/O */
	unsigned dio_align; /* immutable: offset/length/buffer alignment */
	dev_t dev;	    /* immutable: st_dev of every object */
	uint64_t lun_size;  /* immutable */
	struct cvb_mq q;
	bool claimed;		   /* set once by claim (main thread) */
	char coordinator[256];	   /* immutable after claim: this node */
	pthread_key_t bounce_key;  /* per-thread aligned bounce buffer */
	pthread_mutex_t itab_lock; /* protects itab and every ci->refs */
	struct cvb_inode *itab[CVB_ITAB_SIZE];
	struct be_cluster cl; /* immutable after claim */
	uint64_t claim_epoch;
	bool lockd_owned;
	uint64_t pr_key;  /* immutable after claim: 0 without PR */
	atomic_bool lost; /* the LUN refused us: told once */
	bool client;		     /* immutable after claim: another node
				      * coordinates, calls go to it (net.c) */
	struct cvb_net *net;	     /* the channel; see net.c */
	uint8_t uuid[16];	     /* the volume's, once read or made */
	bool have_uuid;
};

/* The bounce buffer: CVB_BOUNCE bytes plus one alignment unit. */
#define CVB_BOUNCE    (1024 * 1024)
#define CVB_ALIGN_MAX 4096u
char *cvb_bounce(struct cvb_vol *b);

/* File id of "coordinator of this volume" in the lock manager: ext4
 * inode 1 (the bad-blocks inode) is never a file a user can open. */
#define CVB_COORD_FILEID 1
/* File id of "node id's mount of this volume" (a client keeps it while
 * mounted): above every ext4 inode number (32 bits). */
#define CVB_NODE_FILEID(id) ((1ull << 32) | (uint64_t)(id))

/* ---- the coordinator channel (net.c) ----------------------------------- */

/* Run r on the engine: here (mq.c) on the coordinator, through the
 * channel on a client.  Returns r->res. */
int64_t cvb_call(struct cvb_vol *b, struct cvb_req *r);
/* The engine's recall hook on the coordinator: this node's map, then
 * every node that fetched one (arg: the volume). */
int cvb_net_recall(void *arg, uint64_t ino);
/* Claim as a client of holder, the coordinator lockd names. */
int cvb_net_claim_client(struct cvb_vol *b, const struct be_cluster *cl,
			 const char *holder, char *why, size_t cap);
/* After the fork: the server (coordinator with lockd) or the client. */
int cvb_net_start(struct cvb_vol *b, const char *node);
/* Close the channel (the coordinator: after the engine's thread). */
void cvb_net_stop(struct cvb_vol *b);
/* The channel's id of a node name. */
uint32_t cvb_node_id(const char *name);

#endif /* CSVFS_BLOCK_I_H */
