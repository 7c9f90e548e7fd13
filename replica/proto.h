/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * proto.h - wire messages between a primary site's csvfs (the sender of
 * recovery points) and csvfs-replicad at the replica site.
 *
 * One TLS 1.3 connection, mutual certificates.  The primary sends
 * requests, the replica answers each one with a reply of the same type
 * and seq (| CVR_REPLY); a primary may send up to a window of requests
 * before it reads their replies, which come in order.  Every message
 * starts with a 24-byte header, little endian:
 *
 *	u32 magic	CVR_MAGIC
 *	u16 version	CVR_VERSION_MIN..CVR_VERSION_MAX (HELLO: always 1)
 *	u16 type	enum cvr_msg_type, | CVR_REPLY for a reply
 *	u32 length	whole message, header included, <= CVR_MSG_MAX
 *	s32 status	replies: 0 or -errno (Linux numbers, >= -4095) or a
 *			CVR_E_* code; requests: 0
 *	u64 seq		chosen by the primary, echoed in the reply
 *
 * A session: HELLO (who the primary is, which replication group, which
 * generation), then points.  A point is POINT_BEGIN (the files and their
 * sizes), then numbered operations (EXTENT, TRUNCATE, PUNCH; op 0, 1, 2
 * ... in the order the primary produced them), then POINT_END (count and
 * hashes), whose reply says the point is applied: it replaced the
 * previous one atomically.  The reply to POINT_BEGIN and to each
 * operation is an ACK carrying the resume position: how many operations
 * of the point the replica holds.  A primary that reconnects after an
 * interruption sends the same POINT_BEGIN and skips the operations the
 * replica already has.  STATUS lists the group's recovery points.
 *
 * A reply whose status is not 0 carries an error text (u16 length, the
 * bytes) saying what failed; nothing else.
 *
 * Bodies are the fields of the structs below in order: integers little
 * endian, names as u16 length then the bytes (no NUL), payloads as u32
 * length then the bytes, lists as u32 count then the entries.  Byte order
 * is converted only in the cursor (lockmgr/proto/lm_cur.h).
 *
 * Decoders are total: any input decodes into a fully set struct or is
 * rejected with -EBADMSG (truncated, trailing bytes, a length or count
 * over the limits, a bad name or value), -EPROTO (bad magic, unknown
 * type) or -EPROTONOSUPPORT (a version this build does not speak).  They
 * never read outside the input.  The format is canonical:
 * encode(decode(x)) == x.
 *
 * Buffers: payload pointers of a decoded message (extent data, the file
 * and point lists) point into the buffer given to the decoder or into
 * the struct itself, and live as long as both.  The encoder copies.
 * Pure: no I/O, no allocation, no clock, no hashing (the caller computes
 * and checks SHA-256).
 */
#ifndef CSVFS_REPLICA_PROTO_H
#define CSVFS_REPLICA_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CVR_MAGIC	  0x50525643u /* "CVRP" */
#define CVR_HDR_LEN	  24
#define CVR_VERSION_MIN	  1
#define CVR_VERSION_MAX	  1
#define CVR_VERSION_HELLO 1 /* HELLO's layout is frozen at this one */

#define CVR_ID_LEN     16	  /* primary and replica ids (uuids) */
#define CVR_SHA_LEN    32	  /* SHA-256 */
#define CVR_NAME_MAX   1024	  /* file names (relative paths), bytes */
#define CVR_TEXT_MAX   1024	  /* error texts, bytes */
#define CVR_FILES_MAX  256	  /* files per point (per group) */
#define CVR_POINTS_MAX 2048	  /* points per STATUS reply */
#define CVR_HASHES_MAX 1024	  /* chunks per HASHES reply */
#define CVR_DATA_MAX   (1u << 20) /* extent payload, bytes */
#define CVR_MSG_MAX    (CVR_DATA_MAX + 4096)
/* The largest message without payload: a point's file list. */
#define CVR_LIST_MAX (CVR_FILES_MAX * (CVR_NAME_MAX + 64) + 4096)

#define CVR_DEFAULT_PORT 7789 /* csvfs-replicad's TCP port */

#define CVR_REPLY 0x8000u

enum cvr_msg_type {
	CVR_HELLO = 1,	     /* first message of a session */
	CVR_PING = 2,	     /* keep-alive */
	CVR_POINT_BEGIN = 3, /* a recovery point's files; reply: ACK */
	CVR_EXTENT = 4,	     /* data of one range; reply: ACK */
	CVR_TRUNCATE = 5,    /* set a file's size; reply: ACK */
	CVR_PUNCH = 6,	     /* zero (deallocate) a range; reply: ACK */
	CVR_POINT_END = 7,   /* count and hashes; reply: ACK once applied */
	CVR_STATUS = 8,	     /* the group's points; reply: cvr_r_status */
	CVR_HASHES = 9,	     /* SHA-256 of chunks of a replica image */
};

/* Error statuses of csvfs-replicad beyond -errno (-4095 < code < 0
 * would clash): a documented range of its own, negative. */
enum cvr_error {
	CVR_E_NOT_ALLOWED = -5001, /* this primary may not use this group */
	CVR_E_SPLIT_BRAIN = -5002, /* generations diverged (failed over) */
	CVR_E_NO_POINT = -5003,	   /* op or END without a POINT_BEGIN */
	CVR_E_OP_ORDER = -5004,	   /* op number not the next expected */
	CVR_E_HASH = -5005,	   /* an extent or file hash did not match */
	CVR_E_BASE = -5006,	   /* the point's base is not the last one */
	CVR_E_STORE = -5007,	   /* the replica's storage failed */
	CVR_E_MIN = -5099,
};

/* POINT_END: what a file's hash covers. */
enum cvr_hash_kind {
	CVR_HASH_NONE = 0,
	CVR_HASH_FILE = 1,    /* the whole file at this point */
	CVR_HASH_EXTENTS = 2, /* this point's EXTENT data, in op order */
};

struct cvr_q_hello {
	uint16_t proto_min, proto_max; /* versions the primary speaks */
	uint8_t primary[CVR_ID_LEN];   /* the sending site's id */
	uint64_t group;		       /* replication group */
	uint64_t generation;	       /* the primary's generation */
	uint64_t base_generation;      /* the one it believes the replica
					* follows (0: initial) */
	char name[CVR_NAME_MAX + 1];   /* the primary's name, for logs */
};

struct cvr_r_hello {
	uint16_t version;	     /* chosen for the session */
	uint8_t replica[CVR_ID_LEN]; /* the replica site's id */
	uint64_t generation;	     /* what the replica follows */
	uint64_t last_point;	     /* last applied point, 0: none */
	uint64_t open_point;	     /* unfinished point, 0: none */
	uint64_t open_next_op;	     /* ops of it held */
};

struct cvr_file {
	uint64_t file_id;
	uint64_t size;		     /* at this point */
	char name[CVR_NAME_MAX + 1]; /* relative path: cvr_name_ok() */
};

struct cvr_q_point_begin {
	uint64_t group;
	uint64_t point;		/* > the group's last point */
	uint64_t base_point;	/* the point this delta is on, 0:
				 * a full copy (initial sync) */
	int64_t time_ns;	/* when the point was taken (UTC) */
	uint32_t nfiles;	/* 1..CVR_FILES_MAX */
	struct cvr_file *files; /* encoder: nfiles entries */
};

/* EXTENT, TRUNCATE, PUNCH: one operation of the open point. */
struct cvr_q_op {
	uint64_t point;
	uint64_t op; /* 0, 1, 2 ... within the point */
	uint64_t file_id;
	uint64_t offset;	     /* TRUNCATE: the new size */
	uint64_t len;		     /* PUNCH: bytes; EXTENT: = data len */
	const uint8_t *data;	     /* EXTENT: len <= CVR_DATA_MAX */
	uint8_t sha256[CVR_SHA_LEN]; /* EXTENT: of data */
};

struct cvr_file_hash {
	uint64_t file_id;
	uint64_t size;
	uint8_t kind;		     /* enum cvr_hash_kind */
	uint8_t sha256[CVR_SHA_LEN]; /* zero for CVR_HASH_NONE */
};

struct cvr_q_point_end {
	uint64_t point;
	uint64_t nops;	 /* operations in the point */
	uint32_t nfiles; /* 0..CVR_FILES_MAX */
	struct cvr_file_hash *files;
};

/* The reply to POINT_BEGIN, an operation and POINT_END. */
struct cvr_r_ack {
	uint64_t point;
	uint64_t next_op; /* resume position: ops held */
	uint8_t applied;  /* POINT_END: 1 once applied */
};

struct cvr_point_info {
	uint64_t point;
	int64_t time_ns;
	uint64_t bytes; /* undo bytes kept for it */
	uint32_t nfiles;
};

struct cvr_q_status {
	uint64_t group;
};

/*
 * HASHES: for an initial copy seeded at the replica (an image put there
 * from a copy of the disk), the primary asks for the SHA-256 of count
 * chunks of chunk bytes from offset of the replica's image at its last
 * point, and sends only the chunks that differ.  A chunk that reaches
 * past the image's end is hashed over the bytes that exist (none: the
 * hash of nothing).
 */
struct cvr_q_hashes {
	uint64_t group;
	uint64_t file_id;
	uint64_t offset; /* a multiple of chunk */
	uint32_t chunk;	 /* 4 KiB .. 64 MiB, a power of two */
	uint32_t count;	 /* 1..CVR_HASHES_MAX */
};

struct cvr_r_hashes {
	uint64_t file_id;
	uint64_t size; /* the image's size, 0: none */
	uint32_t count;
	uint8_t (*sha256)[CVR_SHA_LEN]; /* count entries */
};

struct cvr_r_status {
	uint64_t group;
	uint64_t generation;
	uint64_t last_point;
	uint64_t open_point;
	uint64_t open_next_op;
	uint8_t promoted; /* failed over: no more points */
	uint32_t npoints; /* oldest first */
	struct cvr_point_info *points;
};

struct cvr_msg {
	uint16_t type;	  /* enum cvr_msg_type, | CVR_REPLY */
	uint16_t version; /* set by the decoder; encoder: 0 = MAX */
	int32_t status;	  /* replies */
	uint64_t seq;
	union {
		struct cvr_q_hello hello;
		uint64_t ping;
		struct cvr_q_point_begin begin;
		struct cvr_q_op op;
		struct cvr_q_point_end end;
		struct cvr_q_status status;
		struct cvr_q_hashes hashes;

		struct cvr_r_hello r_hello;
		uint64_t r_ping;
		struct cvr_r_ack r_ack;
		struct cvr_r_status r_status;
		struct cvr_r_hashes r_hashes;
		char r_error[CVR_TEXT_MAX + 1]; /* status != 0 */
	} u;
	/*
	 * Storage the decoder fills the lists into (u.begin.files,
	 * u.end.files, u.r_status.points point here after decoding); an
	 * encoder reads the lists through the pointers and ignores these.
	 */
	union {
		struct cvr_file files[CVR_FILES_MAX];
		struct cvr_file_hash hashes[CVR_FILES_MAX];
		struct cvr_point_info points[CVR_POINTS_MAX];
		uint8_t sha[CVR_HASHES_MAX][CVR_SHA_LEN];
	} store;
};

/*
 * Encode m into buf (cap bytes); returns the length or -EINVAL (a value
 * a decoder would refuse, unknown type) or -ENOSPC.  cvr_msg_bound(m)
 * bytes are always enough.
 */
int cvr_msg_encode(const struct cvr_msg *m, uint8_t *buf, size_t cap);
size_t cvr_msg_bound(const struct cvr_msg *m);
/* Decode a whole message of len bytes (see above for errors).  m is
 * large (the list storage): callers allocate it, not the stack. */
int cvr_msg_decode(const uint8_t *buf, size_t len, struct cvr_msg *m);
/*
 * From the first CVR_HDR_LEN bytes of a stream: the whole message's
 * length in *msglen, or -EPROTO (not our magic) or -EBADMSG (a length
 * under the header or over CVR_MSG_MAX).  For framing a byte stream.
 */
int cvr_msg_frame(const uint8_t *hdr, size_t len, size_t *msglen);

const char *cvr_msg_type_name(unsigned type); /* "unknown" if so */
bool cvr_msg_type_known(unsigned type);	      /* without CVR_REPLY */
/* A status's meaning, errno or CVR_E_* ("Success" for 0). */
const char *cvr_strerror(int status);
/* A file name the replica accepts: relative, no "." or ".." component,
 * no empty component, no control character, 1..CVR_NAME_MAX bytes. */
bool cvr_name_ok(const char *name);

#endif /* CSVFS_REPLICA_PROTO_H */
