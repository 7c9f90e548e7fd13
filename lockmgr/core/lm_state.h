/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lm_state.h - the replicated lock table of csvfs-lockd.
 *
 * A pure, deterministic state machine.  Its only inputs are membership
 * changes and cluster messages, in the total order corosync CPG delivers
 * them; every node applies the same inputs in the same order and so holds
 * the same table without a master.  Nothing here reads a clock, does I/O,
 * draws random numbers or depends on which node it runs on: the daemon
 * (lockd.c) and the simulator (tests/sim) are thin shells around it.
 *
 * What the table holds
 *   - nodes: id, name, membership, state (up / down / fencing), draining,
 *     votes and expected votes as last reported by the node;
 *   - resources (volume, file id): the EX write owner with its epoch, a
 *     FIFO of waiting acquirers, a pending hand-off target, and whether a
 *     revoke was asked for;
 *   - POSIX byte-range locks and flock locks per resource, held and
 *     queued, keyed by (node, owner);
 *   - version: bumped by every applied change of the replicated content
 *     while ready and whenever the state becomes ready (after a ring or
 *     membership change, or an install); never while not ready, so that
 *     the latest quorate lineage always has the strictly highest version
 *     (a minority that merely saw members leave must not tie with it);
 *     epoch: the highest epoch ever granted (grants take epoch + 1).
 *
 * Readiness.  Requests are applied only while the state is ready: quorate
 * as corosync decided for the current ring (below) and no state transfer
 * under way.  A request
 * delivered while not ready is answered with LM_EV_REPLY status
 * LM_ERR_NOQUORUM or LM_ERR_SYNCING and changes nothing; its sender keeps
 * it and sends it again after LM_EV_READY.
 *
 * Quorum (lm_state_apply_ring, LM_C_QUORUM).  The table never counts
 * votes: votequorum decides (with its quorum device, two_node,
 * last_man_standing, auto_tie_breaker, wait_for_all) and each lockd
 * multicasts the decision its votequorum gave for ring R.  The daemon
 * applies every new totem ring (lm_state_apply_ring) where CPG reports
 * it, after the old ring's messages and before the new ring's.  A ring
 * change or a membership change forgets every decision; a decision is
 * applied only when it names the current ring and comes from a member.
 * Quorate = at least one member's latest decision for the current ring
 * says quorate and none says not quorate.  So a decision from an older
 * ring, delivered late, never counts, and every node applies the same
 * decisions at the same point of the order.  Becoming ready bumps the
 * version (see version above).
 *
 * Membership (lm_state_apply_confchg)
 *   - A node that leaves loses its queued waits at once (acquires, SETW).
 *     If it still holds anything (EX or locks) it becomes FENCING and keeps
 *     its holdings: nothing of it is granted to anyone until LM_C_FENCE for
 *     it is applied.  Otherwise it becomes DOWN.
 *   - A node that joins becomes UP, or stays FENCING (a member, but with
 *     old holdings that only a fence removes; it gets no grant meanwhile).
 *   - Any join starts a state transfer (see below); leaves alone do not:
 *     virtual synchrony guarantees the remaining members applied the same
 *     messages.
 *
 * State transfer (merge, new lockd process)
 *   1. On a membership change with joins every member multicasts
 *      LM_C_SYNC_HELLO naming the membership it answers.  The state counts
 *      one hello per member whose member list equals the current one.
 *      Since any membership change during a transfer restarts it, the
 *      daemon sends a hello after every confchg that leaves the state
 *      syncing (lm_state_status().syncing), with or without joins.
 *   2. When every member's hello is in, the donor is the member with the
 *      highest table version, ties to the lowest node id: the latest
 *      quorate lineage, since only a ready (quorate) partition changes the
 *      table.  LM_EV_SYNC_DONOR names it; that node's daemon sends
 *      lm_state_snapshot() in LM_C_SYNC_DATA chunks and LM_C_SYNC_DONE.
 *   3. On LM_C_SYNC_DONE from the donor, every member (donor included)
 *      replaces its table by the snapshot, drops every queued wait (their
 *      senders resend: LM_EV_SYNC_INSTALLED), takes the node names and
 *      votes from the hellos, recomputes node states from the membership,
 *      sets epoch to the highest of all hellos, and becomes ready if
 *      quorate.  A membership change during a transfer restarts it.
 *      Chunks or DONE from anyone but the donor of the current round, or
 *      before the donor is known, are ignored.
 *
 * Protocol version (rolling upgrades).  Each hello carries the range of
 * cluster versions its sender speaks.  When the last hello of a round is
 * in (step 2), before the donor is chosen, lm_proto_negotiate() picks the
 * version the cluster runs from the members' ranges, votes and table
 * versions (LM_EV_PROTO when it changes): the highest version all speak
 * when their ranges overlap.  A member that does not speak it is kept
 * out (LM_EV_EXCLUDED, state LM_NODE_INCOMPATIBLE): it counts as not a
 * member for quorum, grants, requests and fencing, and the donor is
 * chosen among the others.  Since the running lineage (the members with
 * the latest table, not counting those that say they were kept out)
 * ranks first, a newcomer too old or too new is kept out rather than a
 * running node.  Every later membership change with a
 * node kept out in the membership starts a round again, so it joins as
 * soon as the others would speak its version (or it was upgraded and
 * restarted, which is a join anyway).  A change with leaves only has no
 * round: the version is recomputed from the ranges the remaining members
 * announced; it can only rise then (they all spoke the old one), and it
 * can only fall in a round with a join.  The daemon encodes what it sends
 * at the version in force (lm_state_status().proto_version) and keeps
 * its requests until a round is over (lockd_cpg.c tells why).
 *
 * The snapshot format does not depend on the version today (format 1 at
 * versions 2 and 3).  A version that changes it must make the donor
 * write the format of the version in force, which every member that the
 * round admitted reads.
 *
 * Requests (all need ready; "reply" = LM_EV_REPLY to the sender's req_id)
 *   ACQUIRE(res) from N:
 *     N draining -> reply LM_ERR_DRAINING; N fencing -> LM_ERR_FENCING.
 *     Free -> grant: epoch = ++state epoch, LM_EV_GRANTED + LM_EV_OWNER.
 *     Owned by N -> reply OK with the current epoch (idempotent).
 *     Owned by another -> N queued FIFO (once), reply LM_EV_QUEUED, and
 *     LM_EV_REVOKE to the owner unless already asked (revoking).  An owner
 *     that is FENCING is not asked: the fence frees the resource.
 *   RELEASE(res, epoch) from N: N must own res with that epoch, else reply
 *     LM_ERR_NOTOWNER.  Owner cleared (LM_EV_RELEASED, LM_EV_OWNER), then
 *     the next grant: the hand-off target if set and eligible, else the
 *     first eligible waiter (up, member, not draining), each grant with a
 *     new epoch (LM_EV_GRANTED carrying the waiter's req_id, or 0 for a
 *     hand-off grant).  If more waiters remain, the new owner is asked to
 *     revoke at once.
 *   HANDOFF(res, T): T must be an up member not draining (LM_ERR_NONODE /
 *     LM_ERR_NOTMEMBER / LM_ERR_DRAINING).  Owned by T: OK.  Free: grant to
 *     T.  Else set the hand-off target T and revoke the owner; T is granted
 *     before any waiter on the owner's release.  Reply OK at once: the
 *     grant follows asynchronously.
 *   DRAIN(T) / RESUME(T): set / clear T's draining flag (T must be known,
 *     else LM_ERR_NONODE); DRAIN revokes everything T owns.  Draining
 *     nodes receive no grant and do not count as eligible waiters.
 *   PLOCK: see enum lm_plock_op.  POSIX semantics: an owner's own locks
 *     never conflict with it; a lock of another owner conflicts when the
 *     ranges overlap and either is WRITE.  SET on an owner's own range
 *     replaces the type on that range, splitting and merging adjacent
 *     ranges of the same type.  SET conflicting -> reply EAGAIN; SETW
 *     conflicting -> LM_EV_QUEUED, granted later in FIFO order by
 *     LM_EV_PLOCK_GRANTED (a queued wait only blocks later waits that
 *     conflict with it).  UNLOCK and RELEASE_OWNER wake waiters.  FLOCK
 *     space: the same on the whole file [0, LM_OFFSET_MAX], separate from
 *     the POSIX space.  Plocks need the sender not to be fencing.
 *   FENCE(T): applied only when ready and T is FENCING (else ignored):
 *     all of T's EX ownerships end (LM_EV_LOST for each, then the next
 *     grants as on release), all its locks are dropped (waiters woken),
 *     T becomes UP if a member, else DOWN; LM_EV_FENCED.
 *
 * Details fixed by the implementation:
 *   - a FENCING node's RELEASE is refused with LM_ERR_FENCING (it keeps
 *     its holdings until the fence), and so is a HANDOFF to it;
 *   - a second ACQUIRE from a queued node keeps its place and replaces
 *     the req_id that the grant will answer (lockd coalesces per file);
 *   - a node granted by hand-off while also queued is answered with its
 *     queued req_id;
 *   - a SETW replaced by a newer SETW of the same owner, or dropped by
 *     CANCEL / RELEASE_OWNER, is answered LM_ERR_CANCELED; RELEASE_OWNER
 *     acts on the message's lock space only;
 *   - a revoke asked before a transfer is asked again after the install.
 *
 * Limit: the table lives in memory.  If every process holding the latest
 * quorate table crashes (or stays out) while other nodes form a quorate
 * partition, that partition takes an older table: its owners and locks
 * are those of the older table, and by itself its epoch would go back
 * too.  The daemon closes the epoch part outside this pure core
 * (lockd_epoch.h): each lockd keeps a durable high-water mark above every
 * epoch it has applied, written before the events of an apply reach its
 * clients and kept 2048..4096 ahead of the table, and its hello carries
 * max(table epoch, mark).  Since the install takes the highest epoch of
 * all hellos, grants after any restart exceed every epoch a member saw
 * granted, and every epoch granted within 2048 grants after the last one
 * a member applied.  The simulator keeps to the in-memory assumption and
 * counts what it skips.
 *
 * Error handling: apply functions return 0, or -ENOMEM when memory ran
 * out; the table may then be inconsistent with the other nodes and the
 * daemon must exit (it is fenced like a crashed node).
 */
#ifndef CSVFS_LM_STATE_H
#define CSVFS_LM_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lm_proto.h"

struct lm_state;

enum lm_ev_type {
	LM_EV_REPLY = 1,	/* node's req_id done: status, epoch */
	LM_EV_QUEUED,		/* node's req_id waits (acquire or SETW) */
	LM_EV_GRANTED,		/* res granted to node at epoch; req_id or 0 */
	LM_EV_REVOKE,		/* node (owner) asked to give res up */
	LM_EV_RELEASED,		/* node gave res up (epoch it had) */
	LM_EV_LOST,		/* node's ownership of res ended by a fence */
	LM_EV_OWNER,		/* owner of res is now node (0 = free), epoch */
	LM_EV_PLOCK_GRANTED,	/* node's queued SETW req_id now granted */
	LM_EV_FENCED,		/* node was fenced */
	LM_EV_NODE,		/* node changed state (see lm_state_node) */
	LM_EV_READY,		/* requests are applied again */
	LM_EV_NOT_READY,	/* quorum lost or transfer started */
	LM_EV_SYNC_DONOR,	/* node must send its snapshot now */
	LM_EV_SYNC_INSTALLED,	/* transfer done; queued waits dropped */
	LM_EV_SYNC_FAILED,	/* snapshot rejected (bug): daemon exits */
	LM_EV_PROTO,		/* cluster version now epoch (was owner) */
	LM_EV_EXCLUDED,		/* node kept out: its range misses epoch */
};

struct lm_ev {
	enum lm_ev_type type;
	uint32_t node;	 /* requester, owner, fenced node, donor... */
	uint64_t req_id; /* the node's own request id, or 0 */
	int32_t status;	 /* REPLY: 0, errno value or LM_ERR_* */
	struct lm_res res;
	uint64_t epoch;
	uint64_t owner;	 /* plock owner for PLOCK_GRANTED */
};

/* A growable list of events; the caller owns it and resets it between
 * applies (or not: apply appends). */
struct lm_evq {
	struct lm_ev *ev;
	size_t n;
	size_t cap;
};

void lm_evq_init(struct lm_evq *q);
void lm_evq_reset(struct lm_evq *q);
void lm_evq_free(struct lm_evq *q);

struct lm_state *lm_state_new(void);
void lm_state_free(struct lm_state *st);

struct lm_confchg {
	const uint32_t *members; /* after the change, any order */
	size_t n_members;
	const uint32_t *left;
	size_t n_left;
	const uint32_t *joined;
	size_t n_joined;
};

int lm_state_apply_confchg(struct lm_state *st, const struct lm_confchg *cc,
			   struct lm_evq *out);
int lm_state_apply_msg(struct lm_state *st, uint32_t from,
		       const struct lm_cmsg *m, struct lm_evq *out);
/* corosync formed a new totem ring: every quorum decision is forgotten
 * until one for this ring is delivered (see Quorum above).  Applying the
 * ring the table is already in changes nothing. */
int lm_state_apply_ring(struct lm_state *st, const struct lm_ring *ring,
			struct lm_evq *out);

/* ---- read-only views (for the daemon, queries and tests) ---- */

struct lm_status_info {
	bool quorate;
	bool ready;
	bool syncing;
	uint32_t donor; /* 0 until chosen */
	uint32_t expected_votes; /* of the latest decision, 0 = none */
	uint32_t total_votes;	 /* likewise */
	struct lm_ring ring;	 /* the ring the table is in */
	uint32_t quorum_from;	 /* sender of the latest decision, 0 none */
	struct lm_quorum q;	 /* that decision (zero when none) */
	uint32_t n_members;
	uint32_t members[LM_MAX_NODES]; /* sorted */
	uint64_t version;
	uint64_t epoch;
	uint64_t n_resources;
	uint64_t n_locks;
	uint16_t proto_version; /* cluster version in force; 0 none yet */
};
void lm_state_status(const struct lm_state *st, struct lm_status_info *out);

/* Fills e (heartbeat_age_ms = -1); -ENOENT if the node was never seen. */
int lm_state_node(const struct lm_state *st, uint32_t id,
		  struct lm_node_entry *e);
int lm_state_node_by_name(const struct lm_state *st, const char *name,
			  uint32_t *id);
/* Calls fn for every known node in id order; stops when fn returns != 0
 * and returns that value. */
int lm_state_foreach_node(const struct lm_state *st,
			  int (*fn)(const struct lm_node_entry *, void *),
			  void *arg);

/* -ENOENT when the resource has no owner, waiter or lock. */
int lm_state_owner(const struct lm_state *st, const struct lm_res *res,
		   struct lm_owner_entry *e);
int lm_state_foreach_owner(const struct lm_state *st,
			   int (*fn)(const struct lm_owner_entry *, void *),
			   void *arg);
/* Held locks then queued ones, per resource; res NULL = all. */
int lm_state_foreach_lock(const struct lm_state *st, const struct lm_res *res,
			  int (*fn)(const struct lm_lock_entry *, void *),
			  void *arg);
/* F_GETLK: 1 and *conflict filled if a held lock of another owner
 * conflicts with (type, start, end); 0 if none. */
int lm_state_getlk(const struct lm_state *st, const struct lm_res *res,
		   uint8_t space, uint32_t node, uint64_t owner, uint8_t type,
		   uint64_t start, uint64_t end,
		   struct lm_lock_entry *conflict);

/* The lowest member id not kept out, 0 if not ready.  The fencer (the
 * node that sends LM_C_FENCE) is the lowest of those not itself awaiting
 * a fence, this one when all are (lm_node.c). */
uint32_t lm_state_fencer(const struct lm_state *st);
/* Nodes that await a fence; returns the count (may exceed max, only max
 * ids are stored).  This includes FENCING nodes that are members again
 * (they rejoined before being fenced): their old lease ended when they
 * left, and nothing else would ever free their old holdings.  The fencer
 * measures the lease from when it saw the node leave, or from when it
 * first saw it pending. */
size_t lm_state_fence_pending(const struct lm_state *st, uint32_t *ids,
			      size_t max);

/* Serialise the replicated table (nodes, resources, locks, version,
 * epoch; not membership, readiness or transfer progress).  *buf is
 * malloc'd, the caller frees it.  Deterministic: equal tables give equal
 * bytes. */
int lm_state_snapshot(const struct lm_state *st, uint8_t **buf, size_t *len);
/* Check that a snapshot decodes (used by the fuzzer); 0 or -EBADMSG. */
int lm_state_snapshot_check(const uint8_t *buf, size_t len);
/* lm_checksum64 of the snapshot bytes: equal tables, equal digests. */
uint64_t lm_state_digest(const struct lm_state *st);
/* Internal consistency (no two EX holders, waiters not holders, sorted
 * non-overlapping ranges per owner, counts); 0 or -EUCLEAN with why. */
int lm_state_check(const struct lm_state *st, char *why, size_t whylen);

#endif /* CSVFS_LM_STATE_H */
