/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * chan_i.h - what the channel's server and client share (private):
 * the TLS contexts with their PSK callbacks, socket set-up, blocking
 * I/O with a deadline for the handshake and HELLO, and the link: one
 * connection's I/O loop, run by the one thread that owns its SSL.
 */
#ifndef CSVFS_BLOCK_CHAN_I_H
#define CSVFS_BLOCK_CHAN_I_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "chan.h"

#define CVB_DEF_CONNECT_MS     5000
#define CVB_DEF_KEEPALIVE_MS   1000
#define CVB_DEF_DEAD_MS	       5000
#define CVB_DEF_BACKOFF_MIN_MS 100
#define CVB_DEF_BACKOFF_MAX_MS 2000

void cvb_times_fill(struct cvb_chan_times *t);

/* What the PSK callbacks saw during one handshake (for the log). */
struct cvb_psk_seen {
	const struct cvb_chan_key *key;
	bool offered;	   /* server: the client offered a PSK */
	bool identity_ok;  /* ... with this volume's identity */
	char identity[64]; /* ... printable copy of what it offered */
};

/* TLS 1.3 only, PSK only (psk_dhe_ke), no tickets.  The SSL's app data
 * must be a struct cvb_psk_seen while it handshakes. */
SSL_CTX *cvb_tls_ctx(bool server);

/* Put socket fd under ssl (sends never raise SIGPIPE); the caller
 * keeps the fd. */
int cvb_ssl_set_sock(SSL *ssl, int fd);
/* Socket helpers: -errno. */
int cvb_sock_tune(int fd, int dead_ms);
int cvb_tcp_connect(const char *host, uint16_t port, uint64_t deadline_ms,
		    char *err, size_t errlen);
/* Handshake on a non-blocking socket until deadline; 0 or -errno with a
 * sentence in err (what the peer or openssl said, and what to check). */
int cvb_tls_handshake(SSL *ssl, bool server, uint64_t deadline_ms, char *err,
		      size_t errlen);
/* Write len bytes / read one whole message (malloc'ed, *buf, *len)
 * before deadline; used before the link's loop runs. */
int cvb_tls_write_all(SSL *ssl, const uint8_t *p, size_t len,
		      uint64_t deadline_ms);
int cvb_tls_read_msg(SSL *ssl, uint8_t **buf, size_t *len,
		     uint64_t deadline_ms);
/* Encode m into a malloc'ed buffer: 0 or -errno. */
int cvb_encode_alloc(const struct cvb_msg *m, uint8_t **buf, size_t *len);

/* ------------------------------------------------------------------------
 * The link.
 */
struct cvb_obuf {
	struct cvb_obuf *next;
	size_t len, off;
	uint8_t data[];
};

struct cvb_link;
struct cvb_link_ops {
	/* One whole message (framed, not decoded); owns buf.  Non-zero
	 * ends the loop with that error. */
	int (*on_msg)(struct cvb_link *l, uint8_t *buf, size_t len);
};

struct cvb_link {
	int fd;	  /* socket, non-blocking */
	SSL *ssl; /* owned by the I/O thread */
	int evfd; /* wakes the I/O thread: queue or stop */
	const struct cvb_link_ops *ops;
	void *owner;
	char peer[300]; /* for the log: "node 3 (10.0.0.3:41000)" */
	struct cvb_chan_times times;

	/* protects head, tail and stop (and, in the server, a connection's
	 * recall waiters and dead flag); taken after the owner's lock */
	pthread_mutex_t lock;
	struct cvb_obuf *head, *tail; /* queued to send, in order; only the
				       * I/O thread unlinks or frees */
	bool stop;		      /* end the loop */

	/* I/O thread only */
	uint8_t hdr[CVB_HDR_LEN];
	size_t hdr_got;
	uint8_t *rbuf;
	size_t rlen, rgot;
	uint64_t last_rx_ms, last_tx_ms;
	uint64_t ping_seq;
};

int cvb_link_init(struct cvb_link *l, int fd, SSL *ssl,
		  const struct cvb_link_ops *ops, void *owner,
		  const struct cvb_chan_times *t);
/* Free the SSL, close the socket and the eventfd, drop the queue. */
void cvb_link_destroy(struct cvb_link *l);
/* Queue a message (takes b) / an encoded copy of m; -ENOTCONN once
 * the link stopped. */
int cvb_link_send(struct cvb_link *l, struct cvb_obuf *b);
int cvb_link_send_msg(struct cvb_link *l, const struct cvb_msg *m);
void cvb_link_stop(struct cvb_link *l);
/* The loop: until stopped (0) or the connection fails (-errno, with a
 * sentence in why). */
int cvb_link_run(struct cvb_link *l, char *why, size_t whylen);
/* Answer a PING request arriving in buf (owned). */
int cvb_link_pong(struct cvb_link *l, uint8_t *buf, size_t len);

#endif /* CSVFS_BLOCK_CHAN_I_H */
