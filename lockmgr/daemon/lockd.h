/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lockd.h - internals shared by the files of csvfs-lockd.
 *
 * csvfs-lockd is a single-threaded imperative shell around the pure lock
 * table (lm_state.h): one epoll loop (lockd.c) over the transport
 * (lockd_cpg.c: corosync CPG + quorum, or standalone), the client socket
 * (lockd_client.c), a timer tick and a signalfd.  What this node does
 * about the table - local ownership, requests and resends, the lease and
 * the fencer's timing - is decided by the pure lm_node (lm_node.h), which
 * the simulator runs too; lockd_res.c and lockd_lease.c feed it and carry
 * out its actions (cluster messages, client replies and events, the
 * watchdog, fence commands).
 *
 * Concurrency: everything here is touched only by the loop thread (the
 * only thread), so no field needs a lock.  lm_state is never re-entered:
 * messages produced while applying are queued (struct lockd_out) and sent
 * or, in standalone mode, delivered from the loop.
 */
#ifndef CSVFS_LOCKD_H
#define CSVFS_LOCKD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "clock.h"
#include "conf.h"
#include "lm_node.h"
#include "lm_proto.h"
#include "lm_state.h"

#define LOCKD_TICK_MS 50	  /* timer tick: lease, fencing, retries */
#define LOCKD_CLIENT_MAX 1024	  /* connected clients */
#define LOCKD_CLIENT_QMAX 8192	  /* queued replies before we drop one */
#define LOCKD_FENCE_RETRY_MS 5000 /* failed fence command: retry after */

struct lockd_client;

/* A list link; lists are small and scanned linearly. */
struct lockd_link {
	struct lockd_link *next, *prev;
};

/* A reply or event queued for a client, encoded. */
struct lockd_out {
	struct lockd_out *next;
	uint16_t type;
	size_t len;
	uint8_t buf[];
};

/* A message queued for the cluster, encoded only when it is sent: at the
 * cluster version in force then (lockd_cpg.c). */
struct lockd_cout {
	struct lockd_cout *next; /* first: lockd_cpg.c relies on it */
	struct lm_cmsg msg;	 /* sync_data.data points at data */
	uint8_t data[];		 /* a SYNC_DATA chunk */
};

/* A (file, space, owner) a client used for plocks: released on close. */
struct lockd_plowner {
	struct lockd_plowner *next;
	uint64_t fileid;
	uint8_t space;
	uint64_t owner;
};

struct lockd_client {
	struct lockd_link link; /* in lockd.clients */
	int fd;
	unsigned id;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	bool hello_done;
	bool dead;		/* close at the next sweep */
	uint16_t version;	/* socket version chosen at the hello */
	enum lm_client_kind kind;
	uint8_t volume[LM_VOLUME_LEN];
	char label[LM_PATH_MAX];     /* csvfs: the mount point */
	char vol_label[LM_NAME_MAX]; /* csvfs: the volume's label */
	char source[LM_PATH_MAX];    /* csvfs: its SOURCE */
	struct lockd_plowner *plowners;
	struct lockd_out *outq, *outq_tail; /* replies not yet sent */
	unsigned outq_len;
};

/* A fence command running for a node (lockd_lease.c). */
struct lockd_fence_child {
	uint32_t id;
	pid_t pid; /* 0: slot free */
	uint64_t started_ns;
};

struct lockd_grant_seen {
	struct lockd_link link;
	struct lm_res res;
	uint64_t seen_ns;
};

/* Counters for `csvfs-admin metrics`, since this lockd started. */
struct lockd_metrics {
	uint64_t grants, handoffs, revokes, releases, lost, fences;
	uint64_t acquires, acquire_errors;
	struct lm_hist acquire_latency;
};

struct lockd {
	struct lockd_conf conf;
	const char *conf_path;
	bool foreground;
	uint32_t our_id;
	char node_name[LM_NAME_MAX];
	char cluster_name[LM_NAME_MAX];
	gid_t socket_gid;	/* (gid_t)-1: none */
	uint64_t start_ns;

	int epfd, sigfd, timerfd, listen_fd;
	bool socket_bound;	/* we created conf.socket: remove it at exit */
	struct lm_state *st;
	struct lm_evq evq;
	bool in_apply;		/* guards against re-entering lm_state */
	/* durable in conf.state_dir (lockd_epoch.h): no epoch this node
	 * applied exceeds it once the apply's events are routed */
	uint64_t epoch_reserved;
	bool epoch_warned;	/* a renewal failed, not yet fatal */

	/* transport (lockd_cpg.c) */
	void *tp;		/* transport private data */
	bool quorate;		/* quorum for the current ring (corosync) */
	bool ring_match;	/* quorum's ring id == CPG totem ring id */
	uint32_t votes, expected_votes; /* ours, from votequorum */
	uint32_t sent_votes, sent_expected;
	struct lm_quorum quorum_info;	/* our votequorum's figures */
	struct lm_quorum quorum_sent;	/* the last decision multicast */
	bool quorum_resend;		/* send even if unchanged */
	bool two_node_no_qdevice;	/* corosync two_node without a device */
	struct lockd_cout *outq, *outq_tail; /* to multicast, in order */
	unsigned outq_len;
	bool kept_out;		/* this node is LM_NODE_INCOMPATIBLE (lm_node) */

	/* this node's decisions (lm_node.h), carried out by lockd_res.c and
	 * lockd_lease.c; acts is drained by lockd_node_run only */
	struct lm_node *node;
	struct lm_node_actq acts;
	bool acts_running;	/* lockd_node_run is draining acts */

	/* leases (lockd_lease.c): mirrors of the last LM_NA_LEASE */
	bool lease_valid;
	uint64_t lease_deadline_ns;
	int wd_fd;
	struct lockd_fence_child fence_children[2 * LM_MAX_NODES];

	/* requests and ownership (lockd_res.c) */
	struct lockd_link grants; /* lockd_grant_seen, for OWNERS age */

	/* csvfs mounts of every node (lockd_mounts.c), not replicated */
	struct lm_volume_entry *mounts;
	size_t n_mounts, cap_mounts;
	struct lockd_metrics metrics;

	/* clients (lockd_client.c) */
	struct lockd_link clients;
	unsigned n_clients;
	unsigned next_client_id;

	/* shutdown */
	bool stopping;
	uint64_t stop_deadline_ns;
	bool exit_now;
	int exit_code;
};

/* ---- lists ---- */
static inline void lk_init(struct lockd_link *h)
{
	h->next = h->prev = h;
}
static inline void lk_add_tail(struct lockd_link *h, struct lockd_link *n)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}
static inline void lk_del(struct lockd_link *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = n->prev = n;
}
#define lk_entry(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))
#define lk_for_each_safe(pos, tmp, head) \
	for (pos = (head)->next, tmp = pos->next; pos != (head); \
	     pos = tmp, tmp = pos->next)

/* ---- lockd.c ---- */
int lockd_epoll_add(struct lockd *ld, int fd, uint32_t events, uint64_t tag);
int lockd_epoll_mod(struct lockd *ld, int fd, uint32_t events, uint64_t tag);
void lockd_fatal(struct lockd *ld, const char *why);
/* Apply one delivered message / membership change and route events. */
void lockd_deliver(struct lockd *ld, uint32_t from, const uint8_t *buf,
		   size_t len);
void lockd_confchg(struct lockd *ld, const struct lm_confchg *cc);

/* ---- lockd_cpg.c: transport ---- */
int lockd_tp_init(struct lockd *ld, char *err, size_t errlen);
void lockd_tp_fini(struct lockd *ld);
void lockd_tp_dispatch(struct lockd *ld, uint64_t tag, uint32_t events);
/* Queue a cluster message; sent from the loop in order, never dropped. */
int lockd_send(struct lockd *ld, const struct lm_cmsg *m);
/* Send (or, standalone, deliver) what is queued; from the loop only. */
void lockd_flush(struct lockd *ld);
void lockd_drop_queued_sync(struct lockd *ld);
/* The quorum view may extend a lease (quorate, same ring as CPG). */
bool lockd_tp_quorate(const struct lockd *ld);
void lockd_tp_send_node_info(struct lockd *ld);
/* Multicast votequorum's decision for the current ring (LM_C_QUORUM)
 * when the CPG and quorum ring ids match and it differs from the last
 * one sent, or always after a ring or membership change. */
void lockd_tp_send_quorum(struct lockd *ld);
/* Periodic refresh of votequorum's figures (once a second). */
void lockd_tp_tick(struct lockd *ld, uint64_t now);
/* A new totem ring: applied to the table at this point of the order. */
void lockd_ring(struct lockd *ld, const struct lm_ring *ring);
void lockd_tp_send_hello(struct lockd *ld, const struct lm_confchg *cc);
/* The cluster version this node encodes at now; 0: none (no round done
 * yet, or this node is kept out). */
uint16_t lockd_wire_version(struct lockd *ld);
/* LM_EV_PROTO and LM_EV_EXCLUDED: say what changed, on every node. */
void lockd_proto_event(struct lockd *ld, const struct lm_ev *ev);
/* After an apply and its events: lm_node_applied (kept out now?  a
 * decided "not quorate"?  Either ends the lease). */
void lockd_node_applied(struct lockd *ld);

/* ---- lockd_lease.c ---- */
int lockd_lease_init(struct lockd *ld, char *err, size_t errlen);
void lockd_lease_fini(struct lockd *ld, bool clean);
void lockd_lease_tick(struct lockd *ld, uint64_t now);
/* Fix lease_timeout_ms (0 = derive) from corosync's failure detection
 * time in ms (0 = unknown, standalone). */
void lockd_lease_resolve(struct lockd *ld, uint32_t detection_ms);
/* Send the next heartbeat at the next tick rather than on schedule. */
void lockd_lease_heartbeat_now(struct lockd *ld);
void lockd_heartbeat_delivered(struct lockd *ld, uint32_t from,
			       const struct lm_cmsg *m);
/* A cluster message from node from did not decode (-EPROTONOSUPPORT or
 * other): say so once per node and version. */
void lockd_undecodable(struct lockd *ld, uint32_t from, const uint8_t *buf,
		       size_t len, int err);
void lockd_lease_end(struct lockd *ld, const char *why);
/* A membership change, before the table applies it (lm_node_confchg). */
void lockd_lease_confchg(struct lockd *ld, const struct lm_confchg *cc);
int64_t lockd_heartbeat_age_ms(struct lockd *ld, uint32_t id);
/* Version of node id's last heartbeat seen here and the lease it
 * announced (0 when unknown). */
void lockd_node_wire(struct lockd *ld, uint32_t id, uint16_t *hb_version,
		     uint32_t *lease_ms);
void lockd_fence_child_exited(struct lockd *ld);
/* Carry out a fence action of lm_node (LM_NA_FENCE_CMD / _KILL). */
void lockd_fence_act(struct lockd *ld, const struct lm_node_act *a);
/* The lease was extended (LM_NA_LEASE): keep the watchdog fed. */
void lockd_lease_extended(struct lockd *ld, uint64_t now);

/* ---- lockd_res.c ---- */
int lockd_res_init(struct lockd *ld);
void lockd_res_fini(struct lockd *ld);
/* Carry out (and reset) what lm_node decided; re-entrant calls return at
 * once, the outer call carries out what they queued. */
void lockd_node_run(struct lockd *ld);
void lockd_route_event(struct lockd *ld, const struct lm_ev *ev);
uint64_t lockd_request(struct lockd *ld, enum lm_node_req_kind kind,
		       const struct lm_cmsg *m, struct lockd_client *c,
		       uint32_t seq);
void lockd_acquire(struct lockd *ld, struct lockd_client *c, uint32_t seq,
		   uint64_t fileid, uint32_t flags);
int lockd_client_release(struct lockd *ld, struct lockd_client *c,
			 uint64_t fileid, uint64_t epoch);
void lockd_cancel(struct lockd *ld, struct lockd_client *c, uint32_t cseq,
		  uint32_t seq);
void lockd_res_client_gone(struct lockd *ld, struct lockd_client *c);
void lockd_res_tick(struct lockd *ld, uint64_t now);
int64_t lockd_grant_age_ms(struct lockd *ld, const struct lm_res *res);
unsigned lockd_release_all(struct lockd *ld);
bool lockd_res_settled(struct lockd *ld);
int lockd_res_own_info(struct lockd *ld, const struct lm_res *res,
		       struct lm_node_own_info *out);

/* ---- lockd_client.c ---- */
int lockd_client_init(struct lockd *ld, char *err, size_t errlen);
void lockd_client_fini(struct lockd *ld);
void lockd_client_stop_listening(struct lockd *ld);
void lockd_client_sweep(struct lockd *ld);
void lockd_client_accept(struct lockd *ld);
void lockd_client_io(struct lockd *ld, struct lockd_client *c,
		     uint32_t events);
void lockd_client_reply(struct lockd *ld, struct lockd_client *c,
			uint32_t seq, int32_t status, uint64_t epoch);
void lockd_client_push(struct lockd *ld, struct lockd_client *c,
		       const struct lm_smsg *m);
/* Push ev_file to every csvfs client of volume. */
void lockd_push_volume(struct lockd *ld, uint16_t type,
		       const struct lm_res *res, uint64_t epoch,
		       uint32_t owner);
void lockd_push_lease(struct lockd *ld, struct lockd_client *only);
struct lockd_client *lockd_client_by_id(struct lockd *ld, unsigned id);

/* ---- lockd_mounts.c ---- */
void lockd_mounts_client_up(struct lockd *ld, struct lockd_client *c);
void lockd_mounts_client_gone(struct lockd *ld, struct lockd_client *c);
void lockd_mounts_delivered(struct lockd *ld, uint32_t from,
			    const struct lm_c_mount *mm);
void lockd_mounts_confchg(struct lockd *ld, const struct lm_confchg *cc);
void lockd_mounts_fini(struct lockd *ld);

/* ---- lockd_serve.c: client requests ---- */
void lockd_serve(struct lockd *ld, struct lockd_client *c,
		 const struct lm_smsg *m);

/* epoll tags: low values are fixed sources, clients are tagged by id. */
enum {
	TAG_SIGNAL = 1,
	TAG_TIMER,
	TAG_LISTEN,
	TAG_CPG,
	TAG_QUORUM,
	TAG_VOTEQUORUM,
	TAG_CLIENT_BASE = 1000,
};

#endif /* CSVFS_LOCKD_H */
