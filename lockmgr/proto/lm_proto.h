/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lm_proto.h - wire formats of csvfs-lockd.
 *
 * Two message families share one framing:
 *   - cluster messages (lm_cmsg), multicast between lockd instances over
 *     corosync CPG with AGREED ordering; they are the only inputs of the
 *     replicated lock table (lm_state.h) besides membership changes;
 *   - socket messages (lm_smsg), exchanged on the local SOCK_SEQPACKET
 *     socket between lockd and its clients (csvfs, csvfs-admin), one
 *     message per packet.
 *
 * Every message starts with a 16-byte header, little endian:
 *
 *	u32 magic	LM_CMSG_MAGIC or LM_SMSG_MAGIC
 *	u16 version	the version the body is encoded at (see below)
 *	u16 type	enum lm_cmsg_type / enum lm_smsg_type
 *	u32 length	whole message, header included
 *	u32 seq		socket: request sequence, echoed in the reply
 *			(0 for pushed events); cluster: 0
 *
 * Bodies are fixed fields in the order of the structs below, integers
 * little endian, strings as fixed-size NUL-padded arrays, lists as a u32
 * count followed by the entries.  Byte-order conversion lives only in
 * lm_cur.h, the cursor the codecs walk with.
 *
 * Decoders are total: any input, of any length, either decodes into a
 * fully initialised struct or is rejected with -EBADMSG (malformed,
 * truncated, trailing bytes, counts over the limits below, strings without
 * NUL), -EPROTO (bad magic, unknown type) or -EPROTONOSUPPORT (a version
 * this build does not speak).  They never read outside [buf, buf + len).
 *
 * Versions.  Each family has a range of versions a build speaks
 * (LM_PROTO_VERSION_MIN..MAX for cluster messages, LM_CLIENT_VERSION_MIN..
 * MAX for socket messages); decoders accept any version of that range and
 * report it in the struct's version field, encoders write the version they
 * are given.  Which version is used is negotiated:
 *   - cluster: every node announces its range in its sync hello, and the
 *     replicated table picks the version the cluster runs at the same
 *     point of the order on every node (lm_proto_negotiate(), lm_state.h);
 *     a node whose range does not meet the cluster's is kept out;
 *   - socket: per connection, the client's hello gives its range and
 *     lockd's reply the chosen version (lm_proto_choose()) or a refusal
 *     naming both ranges.
 * The messages that carry the ranges (LM_C_SYNC_HELLO, LM_C_NODE_INFO,
 * LM_S_HELLO, LM_S_R_HELLO) have a frozen layout, always encoded at
 * LM_PROTO_FROZEN and read by every build whatever its range, so that
 * builds too old or too new for each other can still tell each other so.
 * Version 1 was the protocol before negotiation (one version, exact
 * match): this build does not speak it.
 *
 * Version history (cluster):
 *   2  negotiation (ranges in the sync hello);
 *   3  the heartbeat also carries the sender's lease_timeout_ms.  Built
 *      only when LM_PROTO_VERSION_MAX is raised to 3 (the test builds of
 *      tests/Makefile.am do): the next version, there to prove that a
 *      mixed cluster encodes at the negotiated version.
 * Socket: 2 negotiation (ranges in the hello).
 */
#ifndef CSVFS_LM_PROTO_H
#define CSVFS_LM_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The protocol's vocabulary (limits, status codes, resources, the rows
 * and replies clients see) is public, in lkm.h; this header adds the
 * wire: message types, layouts, versions and the codecs. */
#include "lkm.h"

#define LM_CMSG_MAGIC 0x43564c43u /* "CLVC": cluster message */
#define LM_SMSG_MAGIC 0x43564c53u /* "SLVC": socket message */
#define LM_HDR_LEN 16


/* The frozen layout of the messages that negotiate (see above). */
#define LM_PROTO_FROZEN 2
/* The highest version whose layout this source knows. */
#define LM_PROTO_VERSION_KNOWN 3
/* Range of cluster versions this build speaks; a test build overrides it
 * with -DLM_PROTO_VERSION_MIN=... / -DLM_PROTO_VERSION_MAX=... */
#ifndef LM_PROTO_VERSION_MIN
#define LM_PROTO_VERSION_MIN 2
#endif
#ifndef LM_PROTO_VERSION_MAX
#define LM_PROTO_VERSION_MAX 2
#endif
/* Range of socket (client) versions this build speaks. */
#ifndef LM_CLIENT_VERSION_MIN
#define LM_CLIENT_VERSION_MIN 2
#endif
#ifndef LM_CLIENT_VERSION_MAX
#define LM_CLIENT_VERSION_MAX 2
#endif
_Static_assert(LM_PROTO_FROZEN <= LM_PROTO_VERSION_MIN &&
		       LM_PROTO_VERSION_MIN <= LM_PROTO_VERSION_MAX &&
		       LM_PROTO_VERSION_MAX <= LM_PROTO_VERSION_KNOWN,
	       "bad cluster protocol version range");
_Static_assert(LM_PROTO_FROZEN <= LM_CLIENT_VERSION_MIN &&
		       LM_CLIENT_VERSION_MIN <= LM_CLIENT_VERSION_MAX &&
		       LM_CLIENT_VERSION_MAX <= LM_PROTO_FROZEN,
	       "bad client protocol version range");

#define LM_SYNC_CHUNK 32768	/* state transfer payload per message */
#define LM_BATCH_MAX 128	/* entries per query reply message */
#define LM_VOL_BATCH_MAX 32	/* entries per volumes reply message */
#define LM_LOG_BATCH_MAX 16384	/* debug-log bytes per log reply message */
#define LM_MSG_MAX 65536	/* no message is longer than this */


/* ------------------------------------------------------------------------
 * Cluster messages.  The sender's node id is not in the message: it is
 * the CPG delivery's nodeid, passed beside the message to lm_state.
 */
enum lm_cmsg_type {
	LM_C_SYNC_HELLO = 1, /* after a membership change with joins */
	LM_C_SYNC_DATA = 2,  /* one chunk of the donor's table */
	LM_C_SYNC_DONE = 3,  /* end of the donor's table */
	LM_C_NODE_INFO = 4,  /* votequorum figures of the sender */
	LM_C_HEARTBEAT = 5,  /* lease heartbeat (not applied to the table) */
	LM_C_QUORUM = 6,     /* votequorum's decision for a ring (sender's) */
	LM_C_ACQUIRE = 10,
	LM_C_RELEASE = 11,
	LM_C_HANDOFF = 12,
	LM_C_DRAIN = 13,
	LM_C_RESUME = 14,
	LM_C_PLOCK = 15,
	LM_C_FENCE = 16,
	LM_C_MOUNT = 17, /* a csvfs mount of the sender (not applied) */
};


/*
 * LM_C_MOUNT ops.  A node describes its own mounts only; a receiver keeps
 * one list per sender, beside the lock table.  RESET starts a full resend
 * (sent after every membership change), ADD and DEL follow mounts coming
 * and going.
 */
enum lm_mount_op {
	LM_MOUNT_RESET = 1, /* forget every mount of the sender */
	LM_MOUNT_ADD = 2,   /* add (or replace, same mount point) */
	LM_MOUNT_DEL = 3,   /* remove the mount at this mount point */
};

struct lm_cmsg {
	uint16_t type;	  /* enum lm_cmsg_type */
	uint16_t version; /* wire version: set by the decoder, used by the
			   * encoder (0: LM_PROTO_VERSION_MAX); frozen
			   * types always travel at LM_PROTO_FROZEN */
	union {
		struct lm_c_sync_hello { /* frozen */
			/* the membership this hello answers (sorted ids) */
			uint32_t n_members;
			uint32_t members[LM_MAX_NODES];
			uint64_t version; /* sender's table version */
			uint64_t epoch;	  /* sender's highest epoch seen */
			uint32_t votes;
			uint32_t expected_votes;
			char name[LM_NAME_MAX]; /* sender's node name */
			/* cluster versions the sender speaks, 1 <= min <= max */
			uint16_t proto_min;
			uint16_t proto_max;
			/* 1: the sender was kept out by the last round (its
			 * table, even if current, is not a running one) */
			uint8_t kept_out;
		} hello;
		struct lm_c_sync_data {
			uint32_t index; /* chunk number, from 0 */
			uint32_t len;	/* <= LM_SYNC_CHUNK */
			/* points into the buffer given to the decoder;
			 * the encoder reads len bytes from it */
			const uint8_t *data;
		} sync_data;
		struct lm_c_sync_done {
			uint32_t chunks;
			uint64_t total_len;
			uint64_t checksum; /* lm_checksum64 of the table */
		} sync_done;
		struct lm_c_node_info { /* frozen */
			uint32_t votes;
			uint32_t expected_votes;
		} node_info;
		struct lm_c_heartbeat {
			uint64_t seq;
			/* version >= 3 only: the sender's lease, so that
			 * the fencer can tell a longer one than its own */
			uint32_t lease_timeout_ms;
		} heartbeat;
		struct lm_quorum quorum;
		struct lm_c_acquire {
			uint64_t req_id; /* sender-local; echoed in events */
			struct lm_res res;
		} acquire;
		struct lm_c_release {
			uint64_t req_id;
			struct lm_res res;
			uint64_t epoch; /* the grant being released */
		} release;
		struct lm_c_handoff {
			uint64_t req_id;
			struct lm_res res;
			uint32_t target; /* node id */
		} handoff;
		struct lm_c_drain {	 /* LM_C_DRAIN and LM_C_RESUME */
			uint64_t req_id;
			uint32_t target; /* node id */
		} drain;
		struct lm_c_plock {
			uint64_t req_id;
			struct lm_res res;
			uint8_t space; /* enum lm_lock_space */
			uint8_t op;    /* enum lm_plock_op */
			uint8_t type;  /* enum lm_lock_type (SET/SETW) */
			uint64_t owner; /* lock owner, unique on sender */
			uint64_t start; /* first byte */
			uint64_t end;	/* last byte, inclusive */
			uint32_t pid;	/* for F_GETLK and display */
		} plock;
		struct lm_c_fence {
			uint32_t target; /* node id */
		} fence;
		struct lm_c_mount {
			uint8_t op; /* enum lm_mount_op */
			struct lm_mount m; /* zero for RESET */
		} mount;
	} u;
};

/* Encode m at m->version into buf[0..cap); returns the length or -EINVAL
 * (also for a version this build does not speak) / -ENOSPC. */
int lm_cmsg_encode(const struct lm_cmsg *m, uint8_t *buf, size_t cap);
/* Decode; on success m->u.sync_data.data points into buf. */
int lm_cmsg_decode(const uint8_t *buf, size_t len, struct lm_cmsg *m);
/* The version in a message's header, 0 if too short to have one. */
unsigned lm_msg_version(const uint8_t *buf, size_t len);
/* Travels at LM_PROTO_FROZEN whatever the negotiated version. */
bool lm_cmsg_frozen(unsigned type);

/*
 * Negotiation of the cluster version from the members' hellos (pure, used
 * by lm_state at the point of the order where the last hello arrives).
 * One peer per member, in member order.  The result is the version v
 * that maximises, in this order: the votes of the peers holding the
 * latest table that speak v (the running lineage is kept, not a newcomer),
 * the votes of all peers speaking v, their number, and v itself.  When
 * every range overlaps this is the highest version every peer speaks (the
 * lowest max, which is >= every min).  admitted[i] is set for the peers
 * that speak v; the others are kept out.  Returns 0 when n == 0.
 */
struct lm_proto_peer {
	uint16_t min, max;
	uint32_t votes;
	bool latest; /* holds the highest table version of the round */
};
unsigned lm_proto_negotiate(const struct lm_proto_peer *p, size_t n,
			    bool *admitted);
/* Highest version in both ranges, 0 if none (socket hello). */
unsigned lm_proto_choose(unsigned min_a, unsigned max_a, unsigned min_b,
			 unsigned max_b);

/* FNV-1a 64 over bytes; used for state-transfer checksums and digests. */
uint64_t lm_checksum64(uint64_t seed, const void *data, size_t len);
#define LM_CHECKSUM_SEED 0xcbf29ce484222325ull

/* ------------------------------------------------------------------------
 * Socket messages.  Requests from clients, replies (same seq), and events
 * pushed by lockd (seq 0).
 */

enum lm_smsg_type {
	/* requests */
	LM_S_HELLO = 1,
	LM_S_ACQUIRE = 2,
	LM_S_RELEASE = 3,
	LM_S_PLOCK = 4,
	LM_S_GETLK = 5,
	LM_S_QUERY = 6,
	LM_S_ADMIN = 7,
	LM_S_CANCEL = 8,
	/* replies */
	LM_S_R_HELLO = 64,
	LM_S_R_RESULT = 65, /* status (+ epoch) for most requests */
	LM_S_R_GETLK = 66,
	LM_S_R_STATUS = 67,
	LM_S_R_NODES = 68,  /* batches; last has more = 0 */
	LM_S_R_OWNERS = 69,
	LM_S_R_LOCKS = 70,
	LM_S_R_VOLUMES = 71, /* batches of LM_VOL_BATCH_MAX */
	LM_S_R_METRICS = 72,
	LM_S_R_LOG = 73,     /* batches of LM_LOG_BATCH_MAX bytes */
	/* events, seq 0: the numbers of enum lkm_event_type */
	LM_S_EV_LEASE = LKM_EV_LEASE,   /* new lease deadline for this node */
	LM_S_EV_GRANTED = LKM_EV_GRANTED, /* unsolicited grant (hand-off target) */
	LM_S_EV_REVOKE = LKM_EV_REVOKE,  /* give up ownership: flush, then release */
	LM_S_EV_OWNER = LKM_EV_OWNER,   /* owner of a file changed (invalidate) */
	LM_S_EV_LOST = LKM_EV_LOST,    /* ownership lost: poison open handles */
};

enum lm_query_what {
	LM_QUERY_STATUS = 1,
	LM_QUERY_NODES = 2,
	LM_QUERY_OWNERS = 3,
	LM_QUERY_LOCKS = 4,
	LM_QUERY_VOLUMES = 5, /* csvfs mounts of every member */
	LM_QUERY_METRICS = 6, /* this lockd's counters */
	LM_QUERY_LOG = 7,     /* this lockd's debug ring, oldest first */
};

enum lm_admin_op {
	LM_ADMIN_HANDOFF = 1,
	LM_ADMIN_DRAIN = 2,
	LM_ADMIN_RESUME = 3,
};


struct lm_smsg {
	uint16_t type;	  /* enum lm_smsg_type */
	uint16_t version; /* wire version, as in struct lm_cmsg (0 encodes
			   * at LM_CLIENT_VERSION_MAX) */
	uint32_t seq;
	union {
		struct lm_s_hello { /* frozen */
			/* socket versions the client speaks, 1 <= min <= max */
			uint32_t proto_min;
			uint32_t proto_max;
			uint32_t kind; /* enum lm_client_kind */
			uint8_t volume[LM_VOLUME_LEN]; /* csvfs only */
			uint32_t pid;
			char label[LM_PATH_MAX]; /* free text: mount point */
			char vol_label[LM_NAME_MAX]; /* csvfs: volume label */
			char source[LM_PATH_MAX];    /* csvfs: its SOURCE */
		} hello;
		struct lm_s_acquire {
			uint64_t fileid;
			uint32_t flags; /* LM_ACQ_* */
		} acquire;
		struct lm_s_release {
			uint64_t fileid;
			uint64_t epoch;
		} release;
		struct lm_s_plock {
			uint64_t fileid;
			uint8_t space;
			uint8_t op;
			uint8_t type;
			uint64_t owner;
			uint64_t start;
			uint64_t end;
			uint32_t pid;
		} plock; /* LM_S_PLOCK and LM_S_GETLK (op ignored) */
		struct lm_s_query {
			uint32_t what; /* enum lm_query_what */
			uint8_t has_res;
			struct lm_res res; /* filter for OWNERS/LOCKS */
		} query;
		struct lm_s_admin {
			uint32_t op; /* enum lm_admin_op */
			struct lm_res res; /* HANDOFF */
			char node[LM_NAME_MAX]; /* target; "" = this node */
		} admin;
		struct lm_s_cancel {
			uint32_t seq; /* of the request to cancel */
		} cancel;

		struct lm_s_r_hello { /* frozen */
			/* 0, or EPROTONOSUPPORT when the ranges do not meet */
			int32_t status;
			uint32_t version;   /* chosen; 0 when refused */
			uint32_t proto_min; /* lockd's range */
			uint32_t proto_max;
			uint32_t node_id;
			char node_name[LM_NAME_MAX];
			char cluster_name[LM_NAME_MAX];
		} r_hello;
		struct lm_s_r_result {
			int32_t status;
			uint64_t epoch;
		} r_result;
		struct lm_s_r_getlk {
			int32_t status;
			uint8_t found; /* 0: no conflict (F_UNLCK) */
			struct lm_lock_entry conflict;
		} r_getlk;
		struct lm_s_r_status r_status;
		struct lm_s_r_nodes {
			int32_t status;
			uint8_t more;
			uint32_t n;
			struct lm_node_entry e[LM_BATCH_MAX];
		} r_nodes;
		struct lm_s_r_owners {
			int32_t status;
			uint8_t more;
			uint32_t n;
			struct lm_owner_entry e[LM_BATCH_MAX];
		} r_owners;
		struct lm_s_r_locks {
			int32_t status;
			uint8_t more;
			uint32_t n;
			struct lm_lock_entry e[LM_BATCH_MAX];
		} r_locks;
		struct lm_s_r_volumes {
			int32_t status;
			uint8_t more;
			uint32_t n;
			struct lm_volume_entry e[LM_VOL_BATCH_MAX];
		} r_volumes;
		struct lm_s_r_metrics r_metrics;
		/* The debug ring as text: whole lines, every level. */
		struct lm_s_r_log {
			int32_t status;
			uint8_t more;
			uint32_t n;
			char e[LM_LOG_BATCH_MAX];
		} r_log;

		struct lm_s_ev_lease {
			uint8_t valid;
			uint64_t deadline_ns; /* CLOCK_MONOTONIC, this host */
		} ev_lease;
		struct lm_s_ev_file {
			uint64_t fileid;
			uint64_t epoch;
			uint32_t owner; /* EV_OWNER: new owner, 0 = free */
		} ev_file; /* GRANTED, REVOKE, OWNER, LOST */
	} u;
};


/* As lm_cmsg_encode(), at m->version; _v at version instead. */
int lm_smsg_encode(const struct lm_smsg *m, uint8_t *buf, size_t cap);
int lm_smsg_encode_v(const struct lm_smsg *m, unsigned version, uint8_t *buf,
		     size_t cap);
int lm_smsg_decode(const uint8_t *buf, size_t len, struct lm_smsg *m);
bool lm_smsg_frozen(unsigned type);

/* Names for logs and JSON; "unknown" for values out of range. */
const char *lm_cmsg_type_name(unsigned type);
const char *lm_smsg_type_name(unsigned type);

#endif /* CSVFS_LM_PROTO_H */
