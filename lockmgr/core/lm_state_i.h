/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lm_state_i.h - private layout of the replicated lock table (lm_state.c).
 *
 * Only lm_state.c includes this.  It documents the in-memory shapes and the
 * snapshot format in one place so that the encoder, the decoder and
 * lm_state_check() agree on them.
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

#endif /* CSVFS_LM_STATE_I_H */
