/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lm_state_i.h - private layout of the replicated lock table (lm_state.c).
 *
 * Only the files of the table (core/lm_*.c) include this.  It documents the
 * in-memory shapes and the snapshot format in one place so that the
 * encoder, the decoder and lm_state_check() agree on them, and declares the
 * lm_ helpers the files share (lm_state.h is the table's public side).
 *
 * Memory: a resource with only an EX owner costs one struct lm_rsrc
 * (64 bytes) plus its hash bucket pointer; waiters and locks live in a
 * lazily allocated struct lm_rx that is freed again when it empties.
 *
 * Snapshot format (little endian, version LM_SNAP_FORMAT):
 *
 *	u32 magic LM_SNAP_MAGIC, u32 format
 *	u64 version, u64 epoch
 *	u32 n_nodes, then per node (ids strictly increasing, non-zero):
 *	    u32 id, char name[LM_NAME_MAX] (NUL-terminated),
 *	    u8 fencing, u8 draining, u32 votes, u32 expected_votes
 *	u32 n_resources, then per resource (keys strictly increasing):
 *	    u8 volume[16], u64 fileid, u32 owner, u64 epoch, u32 handoff,
 *	    u8 revoking, u32 n_locks, then per held lock (sorted by space,
 *	    node, owner, start; an owner's ranges never overlap):
 *	        u8 space, u8 type, u32 node, u64 owner, u64 start, u64 end,
 *	        u32 pid
 *
 * Waiters, membership, readiness and transfer progress are not in it.
 */
#ifndef CSVFS_LM_STATE_I_H
#define CSVFS_LM_STATE_I_H

#include <stdint.h>

#include "lm_proto.h"
#include "lm_state.h"

#define LM_SNAP_MAGIC 0x4e535643u /* "CVSN" */
#define LM_SNAP_FORMAT 1u
#define LM_SNAP_HDR_LEN (4 + 4 + 8 + 8)
#define LM_SNAP_NODE_LEN (4 + LM_NAME_MAX + 1 + 1 + 4 + 4)
#define LM_SNAP_RES_LEN (LM_VOLUME_LEN + 8 + 4 + 8 + 4 + 1 + 4)
#define LM_SNAP_LOCK_LEN (1 + 1 + 4 + 8 + 8 + 8 + 4)

/* A held POSIX/flock range, or a queued SETW. */
struct lm_lock {
	uint64_t owner;
	uint64_t start;
	uint64_t end;	 /* inclusive */
	uint64_t req_id; /* queued SETW only */
	uint32_t node;
	uint32_t pid;
	uint8_t type;
};

struct lm_lockv {
	struct lm_lock *v;
	uint32_t n;
	uint32_t cap;
};

/* An EX acquirer waiting in FIFO order. */
struct lm_waiter {
	uint32_t node;
	uint64_t req_id;
};

/* The rarely needed part of a resource, allocated on first use. */
struct lm_rx {
	struct lm_waiter *waiters;
	uint32_t n_waiters;
	uint32_t cap_waiters;
	struct lm_lockv held[2]; /* by enum lm_lock_space */
	struct lm_lockv wait[2];
};

struct lm_rsrc {
	struct lm_rsrc *next; /* hash chain */
	struct lm_res res;
	uint64_t epoch;	  /* of the current (or last) grant */
	uint32_t owner;	  /* node id, 0 = free */
	uint32_t handoff; /* hand-off target, 0 = none */
	struct lm_rx *x;  /* NULL while no waiter and no lock */
	uint8_t revoking; /* the owner was asked to give it up */
};

/* Per node: replicated fields first, then local ones. */
struct lm_node {
	uint32_t id;
	uint32_t votes;
	uint32_t expected;
	char name[LM_NAME_MAX];
	uint8_t fencing;  /* awaits LM_C_FENCE (replicated) */
	uint8_t draining; /* replicated */
	uint8_t member;	  /* local: in the current membership, not kept out */
	uint8_t excluded; /* local: in the membership, but its protocol
			   * range missed the cluster's at the last round */
	uint16_t proto_min; /* local: range from its last hello, 0 unknown */
	uint16_t proto_max;
};

/* One member's hello in the current transfer round. */
struct lm_hello {
	uint8_t got;
	uint64_t version;
	uint64_t epoch;
	uint32_t votes;
	uint32_t expected;
	char name[LM_NAME_MAX];
	uint16_t proto_min;
	uint16_t proto_max;
	uint8_t kept_out; /* says it was kept out by the last round */
	uint8_t admitted; /* speaks the negotiated version */
};

struct lm_state {
	/* replicated */
	uint64_t version;
	uint64_t epoch;
	struct lm_node nodes[LM_MAX_NODES]; /* sorted by id */
	uint32_t n_nodes;
	struct lm_rsrc **buckets;
	uint64_t n_buckets; /* power of two, or 0 */
	uint64_t n_resources;

	/* local: membership, readiness, transfer */
	uint32_t members[LM_MAX_NODES]; /* sorted */
	uint32_t n_members;
	bool ready;
	bool syncing;
	bool sync_failed;
	uint32_t donor;
	uint16_t proto; /* cluster version in force, 0 before the first round;
			 * a function of the membership and the hellos */
	struct lm_hello hellos[LM_MAX_NODES]; /* parallel to members */

	/* local: corosync's quorum decisions for the current ring, the
	 * latest per member, in the order they were applied */
	struct lm_ring ring;
	bool have_ring;
	struct lm_quorum qd[LM_MAX_NODES];
	uint32_t qd_from[LM_MAX_NODES];
	uint32_t n_qd;
	struct lm_quorum q_last; /* the latest applied, for status */
	uint32_t q_last_from;	 /* its sender, 0 = none this ring */
	uint8_t *stage;
	size_t stage_len;
	size_t stage_cap;
	uint32_t stage_chunks;

	bool dirty; /* replicated content changed in this apply */
};

/* Calls fn on every resource (in hash order); fn may delete r. */
#define FOR_EACH_RES(st, r, next)                                   \
	for (uint64_t b_ = 0; b_ < (st)->n_buckets; b_++)           \
		for ((r) = (st)->buckets[b_]; (r) && ((next) = (r)->next, 1); \
		     (r) = (next))

/* lm_table.c: the event queue, the nodes, the resource hash table */
int lm_ev_push(struct lm_evq *q, enum lm_ev_type type, uint32_t node,
	       uint64_t req_id, int32_t status, const struct lm_res *res,
	       uint64_t epoch, uint64_t owner);
int lm_reply(struct lm_evq *q, uint32_t node, uint64_t req_id,
	     int32_t status, const struct lm_res *res, uint64_t epoch);
struct lm_node *lm_nodes_get(const struct lm_state *st, uint32_t id);
struct lm_node *lm_nodes_add(struct lm_state *st, uint32_t id);
int lm_member_index(const struct lm_state *st, uint32_t id);
uint64_t lm_res_hash(const struct lm_res *res);
int lm_res_cmp(const struct lm_res *a, const struct lm_res *b);
struct lm_rsrc *lm_res_find(const struct lm_state *st,
			    const struct lm_res *res);
int lm_res_insert(struct lm_state *st, struct lm_rsrc *r);
int lm_res_get(struct lm_state *st, const struct lm_res *res,
	       struct lm_rsrc **out);
void lm_rx_free(struct lm_rx *x);
bool lm_rx_empty(const struct lm_rx *x);
struct lm_rx *lm_rx_get(struct lm_rsrc *r);
uint32_t lm_res_n_held(const struct lm_rsrc *r);
void lm_res_gc(struct lm_state *st, struct lm_rsrc *r);
void lm_table_clear(struct lm_state *st);
int lm_res_sorted(const struct lm_state *st, struct lm_rsrc ***out);

/* lm_own.c: EX ownership and fencing */
int lm_waiter_find(const struct lm_rsrc *r, uint32_t node);
void lm_waiter_del(struct lm_rsrc *r, uint32_t i);
int lm_settle(struct lm_state *st, struct lm_rsrc *r, struct lm_evq *out);
int32_t lm_requester_status(const struct lm_state *st, uint32_t from);
int lm_do_acquire(struct lm_state *st, uint32_t from,
		  const struct lm_c_acquire *a, struct lm_evq *out);
int lm_do_release(struct lm_state *st, uint32_t from,
		  const struct lm_c_release *m, struct lm_evq *out);
int lm_do_handoff(struct lm_state *st, uint32_t from,
		  const struct lm_c_handoff *m, struct lm_evq *out);
int lm_do_drain(struct lm_state *st, uint32_t from, bool drain,
		const struct lm_c_drain *m, struct lm_evq *out);
bool lm_holds(const struct lm_state *st, uint32_t id);
int lm_do_fence(struct lm_state *st, uint32_t target, struct lm_evq *out);

/* lm_plock.c: POSIX, OFD and flock locks */
bool lm_same_owner(const struct lm_lock *l, uint32_t node, uint64_t owner);
bool lm_lk_conflict(const struct lm_lock *l, uint32_t node,
		    uint64_t owner, uint8_t type, uint64_t start,
		    uint64_t end);
int lm_lk_cmp(const struct lm_lock *a, uint32_t node, uint64_t owner,
	      uint64_t start);
int lm_lv_insert_at(struct lm_lockv *lv, uint32_t i,
		    const struct lm_lock *l);
int lm_wake(struct lm_state *st, struct lm_rsrc *r, int space,
	    struct lm_evq *out);
int lm_drop_waits(struct lm_rsrc *r, int space, uint32_t node,
		  uint64_t owner, bool all_owners, int32_t status,
		  struct lm_evq *out);
void lm_drop_held(struct lm_state *st, struct lm_rsrc *r, int space,
		  uint32_t node, uint64_t owner, bool all_owners);
int lm_do_plock(struct lm_state *st, uint32_t from,
		const struct lm_c_plock *p, struct lm_evq *out);

/* lm_state.c: readiness, membership, protocol version */
bool lm_is_quorate(const struct lm_state *st);
int lm_update_ready(struct lm_state *st, struct lm_evq *out);
void lm_sync_reset(struct lm_state *st, bool syncing);
int lm_member_left(struct lm_state *st, struct lm_node *n,
		   struct lm_evq *out);
int lm_set_proto(struct lm_state *st, uint16_t v, struct lm_evq *out);

/* lm_snap.c: the snapshot codec */
int lm_snap_decode(const uint8_t *buf, size_t len, struct lm_state **out);

/* lm_sync.c: the state transfer (apply side) */
int lm_do_hello(struct lm_state *st, uint32_t from,
		const struct lm_c_sync_hello *h, struct lm_evq *out);
int lm_do_sync_data(struct lm_state *st, uint32_t from,
		    const struct lm_c_sync_data *d);
int lm_do_sync_done(struct lm_state *st, uint32_t from,
		    const struct lm_c_sync_done *d, struct lm_evq *out);

#endif /* CSVFS_LM_STATE_I_H */
