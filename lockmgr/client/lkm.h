/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lkm.h - liblockmgr, the client library of csvfs-lockd.
 *
 * Holds only the client side of the local socket protocol (lm_proto.h):
 * connect and hello, requests with replies, and events pushed by lockd.
 * Used by csvfs (one connection per mount, bound to its volume) and by
 * csvfs-admin.  Never contains daemon code.
 *
 * Threading: every call is thread-safe.  Without an event handler, calls
 * read their own replies from the socket (events received meanwhile are
 * dropped) - the right mode for tools.  After lkm_start_events() a reader
 * thread owned by the library receives everything: it completes waiting
 * calls and passes events to the handler, in the order lockd sent them.
 * The handler runs on that thread and must not call blocking lkm
 * functions (it may call lkm_release_async()).
 *
 * Errors: functions return 0 or a negative value: -errno for system
 * errors (-ECONNREFUSED lockd not running, -ENOENT no socket, -EACCES
 * permission, -ETIMEDOUT, -ECONNRESET lockd went away, -EAGAIN lock
 * conflict) or -LM_ERR_* for lockd conditions; lkm_strerror() names
 * either.
 */
#ifndef CSVFS_LKM_H
#define CSVFS_LKM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lm_proto.h"

#define LKM_DEFAULT_SOCKET LM_SOCKET_DEFAULT
#define LKM_SOCKET_ENV LM_SOCKET_ENV

struct lkm_client;

struct lkm_hello {
	enum lm_client_kind kind;
	uint8_t volume[LM_VOLUME_LEN]; /* csvfs: the mounted volume */
	const char *label;	       /* mount point or tool name */
	const char *vol_label;	       /* csvfs: the volume's label */
	const char *source;	       /* csvfs: SOURCE of the mount */
};

/* Who we are talking to, from the hello reply. */
struct lkm_server_info {
	uint32_t node_id;
	char node_name[LM_NAME_MAX];
	char cluster_name[LM_NAME_MAX];
};

/* path NULL: $CSVFS_LOCKD_SOCKET, else LKM_DEFAULT_SOCKET.  The hello
 * negotiates the client protocol version: -EPROTONOSUPPORT when lockd's
 * range and ours do not meet. */
int lkm_connect(const char *path, const struct lkm_hello *hello,
		int timeout_ms, struct lkm_client **out);
/* The same; on failure also a one-line reason in err (e.g. "csvfs-lockd
 * speaks client protocol 2..2, this client 3..3: upgrade csvfs-lockd"). */
int lkm_connect_err(const char *path, const struct lkm_hello *hello,
		    int timeout_ms, struct lkm_client **out, char *err,
		    size_t errlen);
/* The reason given for a refused version, in buf. */
void lkm_proto_refusal(char *buf, size_t len, unsigned lockd_min,
		       unsigned lockd_max, unsigned client_min,
		       unsigned client_max);
void lkm_close(struct lkm_client *c);
const struct lkm_server_info *lkm_server(const struct lkm_client *c);

/* Events for csvfs.  type is LM_S_EV_*; for LEASE see ev_lease, else
 * ev_file.  LM_S_EV_* with type 0 means the connection broke (lockd
 * died): the lease is gone and every ownership must be treated as lost. */
typedef void (*lkm_event_fn)(const struct lm_smsg *ev, void *arg);
int lkm_start_events(struct lkm_client *c, lkm_event_fn fn, void *arg);

/* EX write ownership of fileid on the client's volume.  Blocks until
 * granted (*epoch set), refused, or timeout_ms passes (-ETIMEDOUT; the
 * request is canceled in lockd).  timeout_ms < 0 waits forever. */
int lkm_acquire(struct lkm_client *c, uint64_t fileid, uint32_t flags,
		int timeout_ms, uint64_t *epoch);
/* From another thread: cancel a blocked lkm_acquire of fileid, which then
 * returns -LM_ERR_CANCELED (or its grant, if that won the race).  0, or
 * -ENOENT when no acquire of fileid is waiting. */
int lkm_acquire_cancel(struct lkm_client *c, uint64_t fileid);
int lkm_release(struct lkm_client *c, uint64_t fileid, uint64_t epoch,
		int timeout_ms);
/* Fire-and-forget release, safe from the event handler. */
int lkm_release_async(struct lkm_client *c, uint64_t fileid, uint64_t epoch);

/* Byte-range and flock locks.  op LM_PL_SETW blocks until granted or
 * timeout_ms passes (-ETIMEDOUT; the wait is canceled in lockd, < 0 waits
 * forever).  To interrupt it from another thread, send op LM_PL_CANCEL
 * for the same fileid, space and owner: the waiting call then returns
 * lockd's status (-LM_ERR_CANCELED). */
struct lkm_plock {
	uint64_t fileid;
	uint8_t space; /* enum lm_lock_space */
	uint8_t op;    /* enum lm_plock_op */
	uint8_t type;  /* enum lm_lock_type */
	uint64_t owner;
	uint64_t start;
	uint64_t end; /* inclusive; LM_OFFSET_MAX = to EOF */
	uint32_t pid;
};
int lkm_plock(struct lkm_client *c, const struct lkm_plock *req,
	      int timeout_ms);
/* 1 and *conflict filled if a conflicting lock exists, 0 if none. */
int lkm_getlk(struct lkm_client *c, const struct lkm_plock *req,
	      struct lm_lock_entry *conflict);

/* Queries: arrays are malloc'd, the caller frees them. */
int lkm_status(struct lkm_client *c, struct lm_s_r_status *out);
int lkm_nodes(struct lkm_client *c, struct lm_node_entry **v, size_t *n);
int lkm_owners(struct lkm_client *c, const struct lm_res *filter,
	       struct lm_owner_entry **v, size_t *n);
int lkm_locks(struct lkm_client *c, const struct lm_res *filter,
	      struct lm_lock_entry **v, size_t *n);

/* csvfs mounts of every member node (csvfs-admin volumes). */
int lkm_volumes(struct lkm_client *c, struct lm_volume_entry **v, size_t *n);
/* This lockd's counters and acquire latency histogram. */
int lkm_metrics(struct lkm_client *c, struct lm_s_r_metrics *out);
/* This lockd's debug ring: recent log lines of every level, oldest first,
 * as one NUL-terminated malloc'd text of *len bytes (the caller frees). */
int lkm_log(struct lkm_client *c, char **text, size_t *len);

/* Admin: node "" or NULL means the node lockd runs on. */
int lkm_handoff(struct lkm_client *c, const struct lm_res *res,
		const char *node);
int lkm_drain(struct lkm_client *c, const char *node);
int lkm_resume(struct lkm_client *c, const char *node);

const char *lkm_strerror(int err);

#endif /* CSVFS_LKM_H */
