/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * chan.h - the coordinator channel of a block volume: bmsg.h messages
 * over TCP and TLS 1.3, between every node's csvfs (client) and the
 * volume's coordinator (server).
 *
 * Authentication, both ways, with nothing to manage: the two ends share
 * an external TLS 1.3 pre-shared key derived with HKDF-SHA256 from the
 * cluster's corosync authkey and the volume's uuid (cvb_chan_key_load).
 * Only a node holding this cluster's key can connect, and only for this
 * volume; the handshake uses psk_dhe_ke (ECDHE under the PSK), so
 * traffic keys are not derivable from the authkey alone.
 *
 * Connections: one per node.  The client's first message is HELLO
 * (node id, versions spoken, volume uuid); a second connection of the
 * same node replaces the first.  Both ends send PING when they have sent
 * nothing for keepalive_ms and drop a connection on which nothing
 * arrived for dead_ms (TCP_USER_TIMEOUT bounds unacknowledged data the
 * same way), so a dead or hung peer is noticed within dead_ms.
 *
 * Threads: each connection has one I/O thread that owns its SSL object
 * (an SSL is not safe to read and write from two threads); other threads
 * hand it encoded messages through a queue and an eventfd.  The server
 * has an accept thread and one I/O thread per node; the client one I/O
 * thread that connects, reconnects with back-off and matches replies to
 * waiting callers by request id.
 *
 * Errors (every call returns 0 or -errno; a call's own result otherwise):
 *   -ETIMEDOUT     no reply (or no connection) within the call's timeout
 *   -ECONNRESET    the connection was lost with the request sent: the
 *                  coordinator may or may not have carried it out
 *   -ECONNREFUSED, -EHOSTUNREACH, ...  the coordinator cannot be reached
 *                  (the last connect attempt's error, when a call timed
 *                  out waiting for a connection)
 *   -EKEYREJECTED  the coordinator refused this node's key
 *   -ENOKEY        no key file (cvb_chan_key_load)
 * Every failure is logged with what failed and on what (common/log.h).
 */
#ifndef CSVFS_BLOCK_CHAN_H
#define CSVFS_BLOCK_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bmsg.h"

#define CVB_CHAN_AUTHKEY "/etc/corosync/authkey"
#define CVB_CHAN_PSK_LEN 32

/* The volume's channel key (derived; the authkey itself is not kept). */
struct cvb_chan_key {
	uint8_t psk[CVB_CHAN_PSK_LEN];
	uint8_t volume[CVB_UUID_LEN];
	char identity[48]; /* "csvfs-vol-" + uuid hex: the PSK identity */
};

/*
 * Read the authkey at path (NULL: CVB_CHAN_AUTHKEY) and derive the key of
 * volume.  -ENOKEY (missing file), -EACCES, -EINVAL (empty or over 64
 * KiB); err gets a sentence naming the file.
 */
int cvb_chan_key_load(const char *path, const uint8_t volume[CVB_UUID_LEN],
		      struct cvb_chan_key *key, char *err, size_t errlen);
/* The derivation itself: HKDF-SHA256(authkey, salt, "volume" || uuid). */
int cvb_chan_key_derive(const void *authkey, size_t len,
			const uint8_t volume[CVB_UUID_LEN],
			struct cvb_chan_key *key);

/* Time-outs in ms; 0 fields take the defaults in brackets. */
struct cvb_chan_times {
	int connect_ms;	    /* TCP connect + TLS handshake + HELLO [5000] */
	int keepalive_ms;   /* PING after this much send silence [1000] */
	int dead_ms;	    /* drop after this much receive silence [5000] */
	int backoff_min_ms; /* first reconnect delay [100] */
	int backoff_max_ms; /* reconnect delay cap [2000] */
};

/* ------------------------------------------------------------------------
 * Server (the coordinator).
 */
struct cvb_srv;
struct cvb_srv_req; /* one request from a node, until answered */

/*
 * A request arrived (on its connection's I/O thread).  The handler must
 * not block: it queues req (to the metadata thread) and someone answers
 * it later, from any thread, with cvb_srv_reply exactly once.
 */
typedef void (*cvb_srv_handler_fn)(void *arg, struct cvb_srv_req *req);
/* A node's connection came up (HELLO done) or went away. */
typedef void (*cvb_srv_node_fn)(void *arg, uint32_t node, bool up);

struct cvb_srv_opts {
	const char *host; /* address to bind; NULL: every address (v6+v4) */
	uint16_t port;	  /* 0: any (cvb_srv_port says which) */
	const struct cvb_chan_key *key;
	uint32_t node_id; /* this node's, told to clients */
	cvb_srv_handler_fn handler;
	cvb_srv_node_fn node_event; /* may be NULL */
	void *arg;
	struct cvb_chan_times times;
};

int cvb_srv_start(const struct cvb_srv_opts *opts, struct cvb_srv **out);
uint16_t cvb_srv_port(const struct cvb_srv *srv);
/* Close every connection and stop.  Requests not yet answered must still
 * be answered (their replies go nowhere) to be freed. */
void cvb_srv_stop(struct cvb_srv *srv);

/* The decoded request (valid until the reply) and the sender. */
const struct cvb_msg *cvb_srv_req_msg(const struct cvb_srv_req *req);
uint32_t cvb_srv_req_node(const struct cvb_srv_req *req);
/* Answer and free req.  rep's type, status and req_id are set here from
 * req and status; rep may be NULL when status is not 0. */
void cvb_srv_reply(struct cvb_srv_req *req, int status, struct cvb_msg *rep);

/*
 * Ask node to drop its map of ino (generation gen) and wait for its
 * acknowledgement: 0, -ETIMEDOUT, or -ENOTCONN when the node has no
 * connection (a node drops every map when its connection goes, but a
 * partitioned node may not know yet: the caller fences or waits).
 */
int cvb_srv_recall(struct cvb_srv *srv, uint32_t node, uint64_t ino,
		   uint64_t gen, int timeout_ms);
/* The same to every connected node at once, waiting for all: 0 when
 * all acknowledged, else the first error (each failure is logged). */
int cvb_srv_recall_all(struct cvb_srv *srv, uint64_t ino, uint64_t gen,
		       int timeout_ms);
/* Connected nodes' ids into ids (up to max); returns how many. */
unsigned cvb_srv_nodes(struct cvb_srv *srv, uint32_t *ids, unsigned max);

/* ------------------------------------------------------------------------
 * Client (every node, the coordinator's own included if it wishes).
 */
struct cvb_cli;

/* RECALL from the coordinator (on the I/O thread; must not block on the
 * channel): drop the cached map of ino; the ack is sent on return. */
typedef void (*cvb_cli_recall_fn)(void *arg, uint64_t ino, uint64_t gen);
/* The connection went away: drop every cached map. */
typedef void (*cvb_cli_reset_fn)(void *arg);

struct cvb_cli_opts {
	const char *host; /* the coordinator */
	uint16_t port;
	const struct cvb_chan_key *key;
	uint32_t node_id;
	cvb_cli_recall_fn recall; /* NULL: ack only */
	cvb_cli_reset_fn reset;	  /* may be NULL */
	void *arg;
	struct cvb_chan_times times;
};

/* Start connecting (in the background); fails only on bad options. */
int cvb_cli_open(const struct cvb_cli_opts *opts, struct cvb_cli **out);
void cvb_cli_close(struct cvb_cli *cl);
/* Point the client at another coordinator (after a move); the current
 * connection is dropped. */
int cvb_cli_retarget(struct cvb_cli *cl, const char *host, uint16_t port);

/*
 * Send req (type and body; req_id and version are set here) and wait up
 * to timeout_ms for the reply, decoded into rep.  Returns the reply's
 * status or a channel error (above; also -EINVAL for a request that does
 * not encode, -ENOTCONN when the connection closed as it was queued,
 * -ESHUTDOWN after cvb_cli_close began).  When a reply arrived, *rbuf
 * (if rbuf) is the received message, owned by the caller (free()), into
 * which rep's payload pointers point; with rbuf NULL it is freed and
 * those pointers must not be used.  Thread-safe: many threads call at
 * once on one connection; all must have returned before cvb_cli_close.
 */
int cvb_cli_call(struct cvb_cli *cl, struct cvb_msg *req, struct cvb_msg *rep,
		 uint8_t **rbuf, int timeout_ms);
/* Connected (HELLO done)?  If not, the last error and its sentence. */
bool cvb_cli_connected(struct cvb_cli *cl, int *last_err, char *why,
		       size_t whylen);

#endif /* CSVFS_BLOCK_CHAN_H */
