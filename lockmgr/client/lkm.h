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
 * This is the one header liblockmgr installs: besides the calls, it holds
 * the vocabulary the client protocol shares with csvfs-lockd (limits,
 * status codes, resources, the rows and replies of queries, events).
 * The wire format itself (lm_proto.h) is private to the project.
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


/* ------------------------------------------------------------------------
 * The protocol's vocabulary.
 */
/* Where csvfs-lockd listens for csvfs and csvfs-admin, unless the
 * environment variable (or an option) names another socket. */
#define LM_SOCKET_DEFAULT "/run/csvfs/lockd.sock"
#define LM_SOCKET_ENV "CSVFS_LOCKD_SOCKET"

#define LM_NAME_MAX 64		/* node and cluster names, NUL included */
#define LM_PATH_MAX 256		/* mount points and sources, NUL included */
#define LM_MAX_NODES 64		/* cluster size limit */
#define LM_VOLUME_LEN 16	/* volume UUID, raw bytes */

#define LM_HIST_BUCKETS 16	/* acquire latency histogram, +Inf included */

/*
 * Status codes carried on the wire and returned (negated) by liblockmgr.
 * Values below 1000 are Linux errno values (EAGAIN, EINVAL, EPERM, ...);
 * lockd-specific conditions use the documented range 1000-1099.
 */
enum lm_status {
	LM_OK = 0,
	LM_ERR_BASE = 1000,
	LM_ERR_NOQUORUM = 1001,	  /* this partition is not quorate */
	LM_ERR_SYNCING = 1002,	  /* state transfer under way; retried */
	LM_ERR_DRAINING = 1003,	  /* node is draining: no new grants */
	LM_ERR_FENCING = 1004,	  /* node awaits fencing: no new grants */
	LM_ERR_NOTOWNER = 1005,	  /* release of a grant not held */
	LM_ERR_NONODE = 1006,	  /* no such node (name or id) */
	LM_ERR_NOTMEMBER = 1007,  /* node known but not a member now */
	LM_ERR_SHUTDOWN = 1008,	  /* lockd is shutting down */
	LM_ERR_LEASE = 1009,	  /* this node holds no valid lease */
	LM_ERR_CANCELED = 1010,	  /* request canceled by its client */
	LM_ERR_TIMEDOUT = 1011,	  /* request timed out in lockd */
	LM_ERR_LOST = 1012,	  /* ownership lost (fenced / lease end) */
	LM_ERR_PROTO = 1013,	  /* node kept out: protocol versions differ */
	LM_ERR_MAX = 1099,
};

/* Human-readable text for a status (errno or LM_ERR_*); never NULL. */
const char *lm_strerror(int status);

/* A lockable resource: a file of a volume, by its stable file id. */
struct lm_res {
	uint8_t volume[LM_VOLUME_LEN];
	uint64_t fileid;
};

enum lm_lock_space {
	LM_SPACE_POSIX = 0, /* fcntl byte-range and OFD locks */
	LM_SPACE_FLOCK = 1, /* flock(2): whole file, range ignored */
};

enum lm_lock_type {
	LM_LK_UNLOCK = 0,
	LM_LK_READ = 1,	 /* shared */
	LM_LK_WRITE = 2, /* exclusive */
};

enum lm_plock_op {
	LM_PL_SET = 1,		 /* F_SETLK: grant or fail with EAGAIN */
	LM_PL_SETW = 2,		 /* F_SETLKW: grant or queue until granted */
	LM_PL_UNLOCK = 3,	 /* release [start, end] of this owner */
	LM_PL_CANCEL = 4,	 /* drop this owner's queued SETW on res */
	LM_PL_RELEASE_OWNER = 5, /* drop all locks and waits of owner on res */
};

#define LM_OFFSET_MAX UINT64_MAX /* "to end of file" */

/* A corosync totem ring id: the representative node and a sequence that
 * grows with every new ring. */
struct lm_ring {
	uint32_t nodeid;
	uint64_t seq;
};

/*
 * Flags of a quorum decision: votequorum's settings and the quorum
 * device's state as the sender's votequorum reports them (its
 * VOTEQUORUM_INFO_* flags, in our own numbering).
 */
enum lm_quorum_flag {
	LM_QF_TWO_NODE = 0x01,		/* two_node: 1 */
	LM_QF_WAIT_FOR_ALL = 0x02,	/* wait_for_all: 1 */
	LM_QF_LMS = 0x04,		/* last_man_standing: 1 */
	LM_QF_ATB = 0x08,		/* auto_tie_breaker: 1 */
	LM_QF_QDEV_REGISTERED = 0x10,	/* a quorum device is registered */
	LM_QF_QDEV_ALIVE = 0x20,	/* it polls votequorum in time */
	LM_QF_QDEV_CAST_VOTE = 0x40,	/* and gives this node its vote */
	LM_QF_QDEV_MASTER_WINS = 0x80,
	LM_QF_ALLOW_DOWNSCALE = 0x100,
	LM_QF_ALL = 0x1ff,
};

/* What the sender's votequorum decided for one ring (LM_C_QUORUM). */
struct lm_quorum {
	struct lm_ring ring;	 /* the ring the decision is for */
	uint8_t quorate;
	uint32_t node_votes;	 /* the sender's own votes */
	uint32_t expected_votes; /* votequorum's (highest) expected votes */
	uint32_t total_votes;	 /* votes present, quorum device included */
	uint32_t quorum;	 /* votes needed */
	uint32_t qdevice_votes;	 /* the quorum device's votes, 0 = none */
	uint32_t flags;		 /* enum lm_quorum_flag */
	char qdevice_name[LM_NAME_MAX]; /* "" = none */
};


/* A csvfs mount as lockd knows it from the mount's hello. */
struct lm_mount {
	uint8_t volume[LM_VOLUME_LEN];
	char label[LM_NAME_MAX];	/* the volume's label */
	char source[LM_PATH_MAX];	/* SOURCE as given to csvfs */
	char mountpoint[LM_PATH_MAX];
};

enum lm_client_kind {
	LM_CLIENT_CSVFS = 1, /* a mount: bound to one volume */
	LM_CLIENT_ADMIN = 2, /* csvfs-admin and other tools */
};

enum lm_node_state {
	LM_NODE_DOWN = 0,    /* not a member, holds nothing */
	LM_NODE_UP = 1,	     /* member */
	LM_NODE_FENCING = 2, /* left (or rejoined) holding locks: awaits fence */
	LM_NODE_INCOMPATIBLE = 3, /* in the membership, but kept out: its
				   * protocol range misses the cluster's */
};

/* One row of a nodes reply. */
struct lm_node_entry {
	uint32_t id;
	char name[LM_NAME_MAX];
	uint8_t state; /* enum lm_node_state */
	uint8_t member;
	uint8_t draining;
	uint32_t votes;
	uint32_t n_owned;     /* EX ownerships */
	uint32_t n_locks;     /* posix + flock locks held */
	int64_t heartbeat_age_ms; /* since last heartbeat seen here; -1 none */
	uint16_t proto_min;	  /* cluster versions it announced; 0 unknown */
	uint16_t proto_max;
	uint16_t heartbeat_version; /* of its last heartbeat seen here; 0 none */
	uint32_t lease_timeout_ms;  /* from its heartbeat (version >= 3); 0 */
	uint8_t quorum_decision; /* enum lm_node_quorum, current ring */
};

/* A node's latest quorum decision for the current ring. */
enum lm_node_quorum {
	LM_NQ_NONE = 0,	 /* none yet (or not a member) */
	LM_NQ_QUORATE = 1,
	LM_NQ_NOT_QUORATE = 2,
};

/* One row of an owners reply. */
struct lm_owner_entry {
	struct lm_res res;
	uint32_t owner; /* node id, 0 = free */
	uint64_t epoch;
	uint32_t n_waiters;
	uint32_t handoff_target; /* 0 = none */
	uint8_t revoking;
	int64_t age_ms; /* since this lockd saw the grant; -1 unknown */
};

/* One row of a volumes reply: a mount of a node. */
struct lm_volume_entry {
	uint32_t node; /* node id */
	struct lm_mount m;
};

/*
 * Acquire latency histogram: observations (microseconds, from a client's
 * acquire arriving at lockd to its grant) counted in the first bucket
 * whose upper bound is >= the value; the last bucket is +Inf.  Counts are
 * per bucket, not cumulative.
 */
struct lm_hist {
	uint64_t bucket[LM_HIST_BUCKETS];
	uint64_t count;
	uint64_t sum_us;
};

/* Upper bound of bucket i in microseconds; UINT64_MAX for the last. */
uint64_t lm_hist_bound_us(unsigned i);
void lm_hist_observe(struct lm_hist *h, uint64_t us);


/* One row of a locks reply. */
struct lm_lock_entry {
	struct lm_res res;
	uint8_t space;
	uint8_t type;
	uint8_t waiting; /* 1 = queued SETW, not held */
	uint32_t node;
	uint64_t owner;
	uint32_t pid;
	uint64_t start;
	uint64_t end;
};

/* The status query's answer. */
struct lm_s_r_status {
	int32_t status;
	char cluster_name[LM_NAME_MAX];
	char node_name[LM_NAME_MAX];
	uint32_t node_id;
	uint8_t transport; /* 1 corosync, 2 standalone */
	uint8_t quorate;
	uint8_t ready;	 /* quorate and no transfer under way */
	uint8_t syncing;
	uint32_t expected_votes;
	uint32_t total_votes;
	uint32_t n_members;
	uint32_t members[LM_MAX_NODES];
	uint64_t version;
	uint64_t epoch;
	uint64_t digest; /* lm_state_digest: equal tables, equal digests */
	uint64_t n_resources;
	uint64_t n_locks;
	int64_t lease_remaining_ms; /* -1: no valid lease */
	uint32_t lease_timeout_ms;
	uint32_t n_clients;
	uint16_t proto_version; /* the cluster runs; 0 none yet */
	uint16_t proto_min;	/* this lockd speaks */
	uint16_t proto_max;
	/* corosync's decision the table follows (0 = none
	 * yet for this ring) and this node's own view */
	uint32_t quorum_from;
	uint8_t local_quorate; /* libquorum, same ring as CPG */
	struct lm_quorum q; /* ring = the table's ring */
};

/* Counters since this lockd started.  Cluster-wide events
 * (grants, revokes, ...) are counted as this node's replica
 * applies them, so every node counts the same ones. */
struct lm_s_r_metrics {
	int32_t status;
	uint64_t uptime_ms;
	uint64_t grants;   /* EX grants, any node */
	uint64_t handoffs; /* grants made by a hand-off */
	uint64_t revokes;  /* owners asked to give up */
	uint64_t releases; /* ownerships given up */
	uint64_t lost;	   /* ownerships ended by a fence */
	uint64_t fences;   /* nodes fenced */
	uint64_t acquires; /* acquire requests of local clients */
	uint64_t acquire_errors; /* of those, refused */
	int64_t lease_remaining_ms; /* -1: no valid lease */
	uint32_t lease_timeout_ms;
	struct lm_hist acquire_latency; /* local clients */
};

#define LM_ACQ_NOWAIT 0x1 /* fail with EAGAIN instead of queueing */

/* Names for logs and JSON; "unknown" for values out of range. */
const char *lm_node_state_name(unsigned state);

/* ------------------------------------------------------------------------
 * The client library.
 */

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

/* Events lockd pushes to a csvfs mount. */
enum lkm_event_type {
	LKM_EV_BROKEN = 0,   /* the connection broke (lockd died): the lease
			      * is gone, every ownership must count as lost */
	LKM_EV_LEASE = 128,  /* new lease deadline for this node */
	LKM_EV_GRANTED = 129, /* unsolicited grant (hand-off target) */
	LKM_EV_REVOKE = 130, /* give up ownership: flush, then release */
	LKM_EV_OWNER = 131,  /* owner of a file changed (invalidate) */
	LKM_EV_LOST = 132,   /* ownership lost: poison open handles */
};

struct lkm_event {
	enum lkm_event_type type;
	bool lease_valid;	    /* LEASE */
	uint64_t lease_deadline_ns; /* LEASE: CLOCK_MONOTONIC, this host */
	uint64_t fileid;	    /* GRANTED, REVOKE, OWNER, LOST */
	uint64_t epoch;
	uint32_t owner;		    /* OWNER: the new owner, 0 = free */
};

typedef void (*lkm_event_fn)(const struct lkm_event *ev, void *arg);
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
