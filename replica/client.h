/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * client.h - libcvreplica: the primary side of the replication link, for
 * the csvfs that ships recovery points to a csvfs-replicad.  No daemon
 * code; the wire format is proto.h.
 *
 * Use, on one thread per connection (a cvr_client is not shared):
 *
 *	cvr_client_open()		TLS 1.3, mutual certificates, HELLO
 *	cvr_client_begin()		a point's files and sizes
 *	cvr_client_extent() ...		its operations, in a fixed order
 *	cvr_client_truncate/punch()
 *	cvr_client_end()		hashes; returns once applied
 *
 * Resuming: after a broken connection, open again and call begin with the
 * same point; the replica tells how many operations it holds, and the
 * library then skips that many of the calls that follow, so the caller
 * simply produces the point's operations again in the same order.
 *
 * Flow: up to conf.window operations are in flight before the library
 * reads their acknowledgements.  Bandwidth: every message waits for
 * tokens of a bucket of rate bytes/s (cvr_bucket below) before it is
 * sent.  Timeouts: each connect+handshake, send and receive has its
 * deadline (connect_ms, io_ms); POINT_END's reply waits apply_ms.
 *
 * Errors: 0 or -errno, or a CVR_E_* status from the replica; the text of
 * the last failure is in cvr_client_error().  After any failure but a
 * refused request the connection is unusable: close and open again.
 * begin answers -EALREADY for a point the replica applied already (the
 * reply of its end was lost): it is done.  A refused operation may
 * surface on a later call (they are pipelined).
 *
 * Seeded initial copy: cvr_client_hashes() gives the SHA-256 of chunks
 * of the replica's images, so a base-0 point need carry only the chunks
 * that differ (and each file's size); the same serves a resync.
 *
 * Buffers: data passed in is only read during the call.
 */
#ifndef CSVFS_REPLICA_CLIENT_H
#define CSVFS_REPLICA_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/*
 * A token bucket: rate bytes per second, at most burst bytes saved up.
 * Pure (the caller passes the time), for the client and its tests.
 */
struct cvr_bucket {
	uint64_t rate;	  /* bytes/s; 0: no cap */
	uint64_t burst;	  /* bytes */
	double tokens;	  /* may go negative: a debt paid by waiting */
	uint64_t last_ns; /* when tokens was last brought up to date */
};

void cvr_bucket_init(struct cvr_bucket *b, uint64_t rate, uint64_t burst,
		     uint64_t now_ns);
/* Take n bytes' worth at now_ns; returns how long (ns) to wait before
 * sending them, 0 if at once. */
uint64_t cvr_bucket_take(struct cvr_bucket *b, uint64_t n, uint64_t now_ns);

struct cvr_client_conf {
	const char *host;	 /* the replica's address */
	uint16_t port;		 /* default CVR_DEFAULT_PORT */
	const char *cert;	 /* this primary's certificate (PEM) */
	const char *key;	 /* its private key (PEM) */
	const char *ca;		 /* CA certifying the replica (PEM) */
	const char *server_name; /* the replica's certificate name; NULL:
				  * any certified by ca */
	uint64_t rate;		 /* bandwidth cap, bytes/s; 0: none */
	uint64_t burst;		 /* bucket size; 0: rate / 10, >= 64 KiB */
	int connect_ms;		 /* default 10000 */
	int io_ms;		 /* default 30000 */
	int apply_ms;		 /* default 600000 */
	unsigned window;	 /* operations in flight, default 16 */
};

struct cvr_client;

/* Connect and say HELLO; *rh is the replica's answer (its generation,
 * last point, unfinished point).  *out owned by the caller (close). */
int cvr_client_open(const struct cvr_client_conf *conf,
		    const struct cvr_q_hello *hello, struct cvr_client **out,
		    struct cvr_r_hello *rh, char *err, size_t errlen);
void cvr_client_close(struct cvr_client *c);
const char *cvr_client_error(const struct cvr_client *c);

/* Open a point; *next_op (if not NULL): operations the replica holds of
 * it already (0 for a new point), which the next calls will skip. */
int cvr_client_begin(struct cvr_client *c,
		     const struct cvr_q_point_begin *begin, uint64_t *next_op);
int cvr_client_extent(struct cvr_client *c, uint64_t file_id, uint64_t offset,
		      const void *data, size_t len);
int cvr_client_truncate(struct cvr_client *c, uint64_t file_id, uint64_t size);
int cvr_client_punch(struct cvr_client *c, uint64_t file_id, uint64_t offset,
		     uint64_t len);
/* Close the point: end->point and end->nops are filled in by the
 * library; the files' hashes are the caller's. */
int cvr_client_end(struct cvr_client *c, struct cvr_q_point_end *end);
/* The group's points; *reply malloc'ed (free it), u.r_status valid. */
int cvr_client_status(struct cvr_client *c, uint64_t group,
		      struct cvr_msg **reply);
/* SHA-256 of count chunks of the replica's image of file_id (see
 * struct cvr_q_hashes): into sha[count]; *size the image's size. */
int cvr_client_hashes(struct cvr_client *c, uint64_t group, uint64_t file_id,
		      uint64_t offset, uint32_t chunk, uint32_t count,
		      uint8_t (*sha)[CVR_SHA_LEN], uint64_t *size);
/* Bytes sent so far on this connection (messages, headers included). */
uint64_t cvr_client_sent(const struct cvr_client *c);

#endif /* CSVFS_REPLICA_CLIENT_H */
