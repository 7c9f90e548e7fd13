/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * replicad.h - csvfs-replicad's daemon parts: options, the allow-list,
 * the registry of groups in session, one session per connection.
 */
#ifndef CSVFS_REPLICA_REPLICAD_H
#define CSVFS_REPLICA_REPLICAD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "store.h"

struct rd_allow {
	char **fpr; /* SHA-256 fingerprints, 64 lower-case hex digits */
	size_t nfpr;
	char **cn; /* certificate subject common names */
	size_t ncn;
};

struct rd_conf {
	const char *store;
	const char *listen_host; /* NULL: every address */
	uint16_t port;
	const char *cert, *key, *ca;
	const char *allow_file;
	int handshake_ms; /* TLS handshake deadline */
	int idle_ms;	  /* a session with nothing received this long ends */
	int lock_ms;	  /* waiting for a group's lock */
	unsigned max_sessions;
};

struct rd_daemon {
	struct rd_conf conf;
	struct rs_store store;
	SSL_CTX *ctx;
	pthread_mutex_t lock;  /* protects the fields below */
	struct rd_allow allow; /* swapped whole on SIGHUP */
	uint64_t *busy;	       /* groups in a session */
	size_t nbusy, capbusy;
	unsigned sessions;
};

int rd_allow_load(const char *path, struct rd_allow *a, char *err,
		  size_t errlen);
void rd_allow_free(struct rd_allow *a);
bool rd_allowed(const struct rd_allow *a, const char *fpr, const char *cn);

/* Serve one accepted connection (a thread's body; closes fd). */
void rd_session(struct rd_daemon *d, int fd, const char *peer);

#endif /* CSVFS_REPLICA_REPLICAD_H */
