/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lm_node.h - this node's view: the decisions csvfs-lockd takes locally
 * around the replicated lock table (lm_state.h).
 *
 * lm_state says who owns what for the whole cluster; lm_node says what
 * this node does about it.  It keeps, per EX resource, which local
 * clients hold it and which wait for it; this node's cluster requests by
 * req_id and when to send them again; its lease (extended by its own
 * heartbeats delivered in a quorate ring) and, as the fencer, when a
 * departed node may be fenced.  Like lm_state it is pure: no I/O, no
 * clock, no sockets, no processes.  Time is an argument (`now`, ns of
 * CLOCK_MONOTONIC in the daemon, simulated time in tests/sim), clients
 * are numbers, and every effect is an action appended to a queue
 * (struct lm_node_actq) that the caller carries out: csvfs-lockd
 * (lockd_res.c, lockd_lease.c), the simulator (tests/sim/lm_sim.c) and
 * the unit tests (tests/unit/test_lm_node.c) link the same code.
 *
 * Inputs
 *   - client requests: lm_node_acquire, lm_node_release, lm_node_cancel,
 *     lm_node_request (plocks, admin, internal), lm_node_client_gone,
 *     lm_node_stop (shutdown: give everything up);
 *   - the cluster: every event of lm_state, in order (lm_node_event);
 *     every membership change before it is applied (lm_node_confchg);
 *     every delivered heartbeat with the transport's quorum view
 *     (lm_node_heartbeat) and every cluster message that did not decode
 *     (lm_node_undecodable); after every apply, the table's quorum
 *     decision and whether it keeps this node out (lm_node_applied); the end of a
 *     fence command (lm_node_fence_cmd_done);
 *   - time: lm_node_lease_tick and lm_node_res_tick, at least every
 *     heartbeat period;
 *   - lm_node_lease_end when the shell learns of a reason to stop at
 *     once (quorum lost, the corosync connection gone, a fatal error).
 *
 * Outputs: actions, in the order they must be carried out (see enum
 * lm_node_act_type).  Messages to the cluster go out in queue order and
 * must never be dropped by the shell; replies and pushes to a client
 * that has gone are dropped.
 *
 * Buffers: inputs (messages, events, confchgs) are borrowed for the call
 * only.  The state machine given to lm_node_new is borrowed, read only,
 * for the node's whole life and must outlive it.  Actions belong to the
 * queue: a LM_NA_SEND of a LM_C_SYNC_DATA chunk points its data into a
 * buffer the queue owns (act->data, on the first chunk of a snapshot)
 * until lm_node_actq_reset; encode or copy it before.
 *
 * Errors: when memory runs out, the decision cannot be taken; the queue's
 * `fatal` says why and the daemon must exit (it is then fenced like a
 * crashed node).  lm_node_release returns 0 or a client status.
 *
 * Not thread safe: one thread (the daemon's loop) owns a node.
 */
#ifndef CSVFS_LM_NODE_H
#define CSVFS_LM_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lm_proto.h"
#include "lm_state.h"

#define LM_NODE_HB_SLOTS 64 /* heartbeat send times remembered */

struct lm_node;

enum lm_node_act_type {
	LM_NA_SEND = 1,	  /* multicast msg to the cluster, in order */
	LM_NA_REPLY,	  /* answer client's request seq: status, epoch */
	LM_NA_PUSH,	  /* push event smsg (res, epoch, node) to client */
	LM_NA_PUSH_VOLUME, /* push smsg to every csvfs of res's volume */
	LM_NA_LEASE,	  /* the lease is now lease_valid until deadline */
	LM_NA_FENCE_CMD,  /* start the fence command for node */
	LM_NA_FENCE_KILL, /* kill the running fence command for node */
	LM_NA_REVOKE_SLOW, /* revoke of res unanswered for ms: warn */
	LM_NA_LOG,	  /* log text at level (syslog level) */
};

struct lm_node_act {
	enum lm_node_act_type type;
	uint32_t client;     /* REPLY, PUSH */
	uint32_t seq;	     /* REPLY */
	int32_t status;	     /* REPLY */
	bool acquire;	     /* REPLY to an acquire (metrics) */
	int64_t latency_us;  /* acquire granted: wait in us, else -1 */
	uint16_t smsg;	     /* PUSH, PUSH_VOLUME: LM_S_EV_* */
	struct lm_res res;   /* PUSH, PUSH_VOLUME, REVOKE_SLOW, LOG */
	uint64_t epoch;	     /* REPLY, PUSH, PUSH_VOLUME */
	uint32_t node;	     /* PUSH*: owner; FENCE_*: target */
	bool lease_valid;    /* LEASE */
	uint64_t deadline;   /* LEASE: ns; REVOKE_SLOW: ms waited */
	int level;	     /* LOG */
	struct lm_cmsg msg;  /* SEND */
	uint8_t *data;	     /* owned by the queue, freed on reset */
	char text[256];	     /* LOG */
};

/* Actions of one or more calls; the caller owns it, carries the actions
 * out in order and resets it. */
struct lm_node_actq {
	struct lm_node_act *a;
	size_t n;
	size_t cap;
	const char *fatal; /* set: the daemon must exit (static text) */
};

void lm_node_actq_init(struct lm_node_actq *q);
void lm_node_actq_reset(struct lm_node_actq *q);
void lm_node_actq_free(struct lm_node_actq *q);

/* Everything time- or policy-dependent the decisions use. */
struct lm_node_conf {
	uint32_t self;		   /* this node's id */
	uint32_t lease_ms;	   /* lease_timeout_ms */
	uint32_t heartbeat_ms;	   /* heartbeat period */
	uint32_t drift_ppm;	   /* clock_drift_ppm */
	uint32_t margin_ms;	   /* fence_margin_ms */
	uint32_t watchdog_ms;	   /* watchdog timeout, 0 = no watchdog */
	bool fence_command;	   /* a fence command must confirm */
	/* corosync two_node without a quorum device: both halves of a
	 * split stay quorate, so no fence without a confirmed fence
	 * command (none configured: none at all) */
	bool two_node;
	uint32_t fence_command_timeout_ms;
	uint32_t fence_retry_ms;   /* after a failed fence command */
	uint32_t revoke_timeout_ms; /* warn about a slow revoke after */
	uint32_t handoff_idle_ms;  /* unclaimed ownership released after */
	size_t sync_chunk;	   /* snapshot bytes per LM_C_SYNC_DATA */
};

/* The fencer's wait after a node's last heartbeat delivery:
 * lease * (1 + drift), the drift part rounded up, + margin + watchdog. */
uint64_t lm_node_fence_wait_ms(uint32_t lease_ms, uint32_t drift_ppm,
			       uint32_t margin_ms, uint32_t watchdog_ms);

/* NULL when out of memory.  st is borrowed (see above). */
struct lm_node *lm_node_new(const struct lm_state *st, uint64_t now);
void lm_node_free(struct lm_node *n);
void lm_node_configure(struct lm_node *n, const struct lm_node_conf *c);

/* ---- client requests; client ids are the shell's, never 0 ---- */

/* EX ownership of res for client (LM_ACQ_* flags): answered by
 * LM_NA_REPLY now or later. */
void lm_node_acquire(struct lm_node *n, uint32_t client, uint32_t seq,
		     const struct lm_res *res, uint32_t flags, uint64_t now,
		     struct lm_node_actq *q);
/* Client gives res up (epoch 0: any); 0 or LM_ERR_NOTOWNER. */
int lm_node_release(struct lm_node *n, uint32_t client,
		    const struct lm_res *res, uint64_t epoch, uint64_t now,
		    struct lm_node_actq *q);
/* Cancel client's acquire or SETW seq, asked by its request cseq:
 * replies to both. */
void lm_node_cancel(struct lm_node *n, uint32_t client, uint32_t cseq,
		    uint32_t seq, uint64_t now, struct lm_node_actq *q);

enum lm_node_req_kind {
	LM_NREQ_PLOCK = 1, /* client's plock: reply with the table's answer */
	LM_NREQ_ADMIN,	   /* client's admin request: likewise */
	LM_NREQ_INTERNAL,  /* nobody waits for the answer */
};
/* Send msg (LM_C_PLOCK, LM_C_HANDOFF, LM_C_DRAIN, LM_C_RESUME) as a
 * request of this node; its req_id is filled in.  Returns the req_id,
 * 0 when out of memory. */
uint64_t lm_node_request(struct lm_node *n, enum lm_node_req_kind kind,
			 const struct lm_cmsg *msg, uint32_t client,
			 uint32_t seq, uint64_t now, struct lm_node_actq *q);
/* Client disconnected: its waits and holds end (plock owners are the
 * shell's to release, by LM_NREQ_INTERNAL requests). */
void lm_node_client_gone(struct lm_node *n, uint32_t client, uint64_t now,
			 struct lm_node_actq *q);
/* Shutdown: refuse waiters and new acquires, give up what we own;
 * returns how many ownerships this node held. */
unsigned lm_node_stop(struct lm_node *n, uint64_t now,
		      struct lm_node_actq *q);
/* Nothing owned or being released any more (or the table not ready). */
bool lm_node_settled(const struct lm_node *n);

/* ---- the cluster ---- */

/* One event of lm_state, after the apply that produced it. */
void lm_node_event(struct lm_node *n, const struct lm_ev *ev, uint64_t now,
		   struct lm_node_actq *q);
/* A membership change, before lm_state applies it (the whole change:
 * joins matter as well as leaves). */
void lm_node_confchg(struct lm_node *n, const struct lm_confchg *cc,
		     uint64_t now);
/* LM_C_HEARTBEAT m of node from delivered (its seq, the version it came
 * at and, from version 3, the sender's lease); tp_quorate: the
 * transport's quorum view is quorate for the ring that delivered it. */
void lm_node_heartbeat(struct lm_node *n, uint32_t from,
		       const struct lm_cmsg *m, bool tp_quorate, uint64_t now,
		       struct lm_node_actq *q);
/* A cluster message of node from at version did not decode.  It may have
 * been a heartbeat that extended the sender's lease, so it counts as one
 * for the fence timing.  True when this version was not reported for
 * that node before (the shell then says so). */
bool lm_node_undecodable(struct lm_node *n, uint32_t from, uint16_t version,
			 uint64_t now);
/*
 * After every apply (message, membership change, ring) and its events:
 *   - corosync decided "not quorate" for the table's current ring (not
 *     merely pending after a ring change): the lease ends, once per such
 *     decision;
 *   - this node is kept out by the protocol round (LM_NODE_INCOMPATIBLE):
 *     becoming so ends the lease; being let in again sends a heartbeat
 *     at the next tick.
 * Returns whether this node is kept out.
 */
bool lm_node_applied(struct lm_node *n, uint64_t now,
		     struct lm_node_actq *q);
/* The fence command for node id ended: status 0 = fence confirmed. */
void lm_node_fence_cmd_done(struct lm_node *n, uint32_t id, int status,
			    uint64_t now, struct lm_node_actq *q);

/* ---- time ---- */

/* Heartbeat due, lease expiry, fencing. */
void lm_node_lease_tick(struct lm_node *n, uint64_t now,
			struct lm_node_actq *q);
/* Slow revokes, unclaimed hand-off grants. */
void lm_node_res_tick(struct lm_node *n, uint64_t now,
		      struct lm_node_actq *q);
/* End the lease now (why: static text for the log). */
void lm_node_lease_end(struct lm_node *n, const char *why,
		       struct lm_node_actq *q);
/* Send the next heartbeat at the next tick. */
void lm_node_heartbeat_now(struct lm_node *n, uint64_t now);

/* ---- views ---- */

/* The lease: true and *deadline when valid (not checked against now). */
bool lm_node_lease(const struct lm_node *n, uint64_t *deadline);
/* ms since node id's last heartbeat delivery, -1 if none seen. */
int64_t lm_node_heartbeat_age_ms(const struct lm_node *n, uint32_t id,
				 uint64_t now);
bool lm_node_ready(const struct lm_node *n);
/* Version of node id's last heartbeat seen here and the lease it
 * announced (0 when unknown). */
void lm_node_peer_wire(const struct lm_node *n, uint32_t id,
		       uint16_t *hb_version, uint32_t *lease_ms);

enum lm_node_own_state {
	LM_OWN_ACQUIRING = 1, /* cluster ACQUIRE in flight */
	LM_OWN_HELD,	      /* this node owns it at epoch */
	LM_OWN_REVOKING,      /* revoke pushed, waiting for the holders */
	LM_OWN_RELEASING,     /* cluster RELEASE in flight */
	LM_OWN_LOST,	      /* lease ended: clients told, release later */
};

struct lm_node_own_info {
	struct lm_res res;
	enum lm_node_own_state state;
	uint64_t epoch;
	unsigned n_holders, n_waiters;
	uint32_t holders[8]; /* the first n_holders (up to 8) client ids */
};
/* Calls fn for every resource this node deals with; stops when fn
 * returns != 0 and returns that value. */
int lm_node_foreach_own(const struct lm_node *n,
			int (*fn)(const struct lm_node_own_info *, void *),
			void *arg);
/* Requests of this node not answered yet. */
size_t lm_node_pending_requests(const struct lm_node *n);

#endif /* CSVFS_LM_NODE_H */
