// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * csvfs-admin - the operator's view of csvfs-lockd and its controls.
 *
 *	csvfs-admin [--socket PATH] [--json] COMMAND [ARGS]
 *
 * Queries (status, nodes, volumes, owners, locks) print aligned tables
 * with node names, readable ages and canonical volume UUIDs, or with
 * --json a stable document described in csvfs-admin(8).  Controls
 * (handoff, drain, resume) ask lockd and then watch the table until the
 * change took effect, so that a script can rely on "exit 0" meaning
 * "done".  format writes a volume record with csvfs's own code; metrics
 * prints the Prometheus text format.  Any node's lockd answers for the
 * whole cluster: the table is replicated, and the mounts list is
 * exchanged between lockds.
 *
 * Exit status: 0 success, 1 failure (one line on stderr saying what failed
 * and what to do), 2 usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "cvtool.h"
#include "json.h"
#include "lkm.h"
#include "prom.h"
#include "admin_replica.h"
#include "volume.h"
#ifdef CSVFS_HAVE_BLOCK
#include "meta.h"
#endif
#include "lun.h"

#define EXIT_USAGE 2
#define CONNECT_TIMEOUT_MS 5000
#define POLL_INTERVAL_MS 200

struct admin {
	const char *socket;	/* as resolved, for messages */
	bool json;
	int timeout_s;		/* handoff and drain */
	const char *label;	/* format --label */
	bool force;		/* format --force */
	struct admin_replica_opts rep; /* replica enable */
	struct lkm_client *c;
	struct lm_node_entry *nodes; /* loaded by load_nodes() */
	size_t n_nodes;
	struct json j;
};

struct command {
	const char *name;
	int min_args;
	int max_args; /* -1: any */
	int (*run)(struct admin *a, int argc, char **argv);
	const char *args;
};

static const char *prog = "csvfs-admin";

static void usage(FILE *f);

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_FAILURE;
}

static int usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n\n", stderr);
	usage(stderr);
	return EXIT_USAGE;
}

/* ------------------------------------------------------------ lockd */

/* lkm_strerror() text, first letter in lower case to fit a sentence. */
static const char *errtext(int err, char *buf, size_t len)
{
	snprintf(buf, len, "%s", lkm_strerror(err));
	if (buf[0] >= 'A' && buf[0] <= 'Z' && buf[1] >= 'a' && buf[1] <= 'z')
		buf[0] = (char)(buf[0] - 'A' + 'a');
	return buf;
}

static const char *connect_hint(int err)
{
	switch (-err) {
	case ENOENT:
	case ECONNREFUSED:
		return " (is csvfs-lockd running? see --socket and "
		       LKM_SOCKET_ENV ")";
	case EACCES:
	case EPERM:
		return " (run as root or as a member of lockd's client group)";
	case ETIMEDOUT:
		return " (csvfs-lockd does not answer; is it hung?)";
	case EPROTONOSUPPORT:
	case EPROTO:
		return " (csvfs-admin and csvfs-lockd versions differ)";
	default:
		return "";
	}
}

static int admin_connect(struct admin *a)
{
	struct lkm_hello hello = {
		.kind = LM_CLIENT_ADMIN,
		.label = "csvfs-admin",
	};
	char eb[128], why[256] = "";
	int r;

	if (!a->socket || !*a->socket)
		a->socket = getenv(LKM_SOCKET_ENV);
	if (!a->socket || !*a->socket)
		a->socket = LKM_DEFAULT_SOCKET;
	if (a->c)
		return 0;
	r = lkm_connect_err(a->socket, &hello, CONNECT_TIMEOUT_MS, &a->c, why,
			    sizeof(why));
	if (r == -EPROTONOSUPPORT || r == -ECONNRESET)
		return fail("cannot use csvfs-lockd at %s: %s", a->socket, why);
	if (r < 0)
		return fail("cannot reach csvfs-lockd at %s: %s%s", a->socket,
			    errtext(r, eb, sizeof(eb)), connect_hint(r));
	return 0;
}

static const char *lockd_hint(int err)
{
	switch (-err) {
	case LM_ERR_NOQUORUM:
		return " (this node's partition is not quorate: see "
		       "'csvfs-admin status' and corosync-quorumtool)";
	case LM_ERR_SYNCING:
		return " (a state transfer is under way: retry in a moment)";
	case LM_ERR_SHUTDOWN:
		return " (csvfs-lockd is shutting down)";
	case ECONNRESET:
		return " (csvfs-lockd went away: check its log)";
	case ETIMEDOUT:
		return " (csvfs-lockd did not answer in time)";
	default:
		return "";
	}
}

static int lockd_fail(const char *what, int err)
{
	char eb[128];

	return fail("%s failed: %s%s", what, errtext(err, eb, sizeof(eb)),
		    lockd_hint(err));
}

static int load_nodes(struct admin *a)
{
	int r;

	if (a->nodes)
		return 0;
	r = admin_connect(a);
	if (r)
		return r;
	r = lkm_nodes(a->c, &a->nodes, &a->n_nodes);
	if (r < 0)
		return lockd_fail("nodes query", r);
	return 0;
}

static const struct lm_node_entry *node_by_id(const struct admin *a,
					      uint32_t id)
{
	for (size_t i = 0; i < a->n_nodes; i++)
		if (a->nodes[i].id == id)
			return &a->nodes[i];
	return NULL;
}

static const struct lm_node_entry *node_by_name(const struct admin *a,
						const char *name)
{
	for (size_t i = 0; i < a->n_nodes; i++)
		if (strcmp(a->nodes[i].name, name) == 0)
			return &a->nodes[i];
	return NULL;
}

/* Name of node id: its name, "node<id>" when unnamed; NULL for id 0. */
static const char *node_name(const struct admin *a, uint32_t id, char *buf,
			     size_t len)
{
	const struct lm_node_entry *e;

	if (id == 0)
		return NULL;
	e = node_by_id(a, id);
	if (e && e->name[0])
		return e->name;
	snprintf(buf, len, "node%" PRIu32, id);
	return buf;
}

/* "n1 n2 n3" of the nodes (members only if members_only). */
static void node_list(const struct admin *a, bool members_only, char *buf,
		      size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < a->n_nodes && off < len; i++) {
		const struct lm_node_entry *e = &a->nodes[i];

		if (members_only && !e->member)
			continue;
		off += snprintf(buf + off, len - off, "%s%s", off ? " " : "",
				e->name);
	}
	if (!buf[0])
		snprintf(buf, len, "(none)");
}

static const char *node_state(const struct lm_node_entry *e)
{
	if (e->draining && e->state == LM_NODE_UP)
		return "draining";
	switch (e->state) {
	case LM_NODE_UP:
		return "up";
	case LM_NODE_FENCING:
		return "fencing";
	case LM_NODE_DOWN:
		return "down";
	case LM_NODE_INCOMPATIBLE:
		return "incompatible";
	default:
		return "unknown";
	}
}

/* A node argument: must be known; "" or NULL is the local node. */
static int resolve_node(struct admin *a, const char *name,
			const struct lm_node_entry **out)
{
	char list[1024];
	int r;

	r = load_nodes(a);
	if (r)
		return r;
	if (!name || !*name)
		name = lkm_server(a->c)->node_name;
	*out = node_by_name(a, name);
	if (*out)
		return 0;
	node_list(a, false, list, sizeof(list));
	return fail("no node named %s; nodes: %s", name, list);
}

/* Explain an admin error about node name. */
static int node_fail(struct admin *a, const char *what, const char *node,
		     int err)
{
	char list[1024], name[LM_NAME_MAX];

	/* node may point into a->nodes, which is reloaded here */
	snprintf(name, sizeof(name), "%s", node);
	free(a->nodes);
	a->nodes = NULL;
	if (load_nodes(a))
		return EXIT_FAILURE;
	switch (-err) {
	case LM_ERR_NONODE:
		node_list(a, false, list, sizeof(list));
		return fail("no node named %s; nodes: %s", name, list);
	case LM_ERR_NOTMEMBER:
		node_list(a, true, list, sizeof(list));
		return fail("node %s is not a member; members: %s", name,
			    list);
	case LM_ERR_DRAINING:
		return fail("node %s is draining; run 'csvfs-admin resume %s' "
			    "first", name, name);
	case LM_ERR_FENCING:
		return fail("node %s awaits fencing and cannot take ownership",
			    name);
	default:
		return lockd_fail(what, err);
	}
}

/* ------------------------------------------------------------- paths */

struct target {
	const char *path; /* NULL: no path given */
	struct lm_res res;
};

static int resolve_paths(int argc, char **argv, struct target **out)
{
	struct target *t;
	int r;

	*out = NULL;
	t = calloc(argc ? argc : 1, sizeof(*t));
	if (!t)
		return fail("out of memory");
	for (int i = 0; i < argc; i++) {
		t[i].path = argv[i];
		r = cv_path_res(argv[i], &t[i].res);
		if (r == -ENOTSUP) {
			free(t);
			return fail("%s is not on a csvfs mount", argv[i]);
		}
		if (r < 0) {
			free(t);
			return fail("%s: %s", argv[i], strerror(-r));
		}
	}
	*out = t;
	return 0;
}

/* ------------------------------------------------------------ status */

static const char *transport_name(uint8_t t)
{
	return t == 1 ? "corosync" : t == 2 ? "standalone" : "unknown";
}

/* A lockd is kept out exactly when it does not speak the version the
 * cluster runs (csvfs-lockd(8), ROLLING UPGRADES). */
static bool kept_out(const struct lm_s_r_status *s)
{
	return s->proto_version && (s->proto_version < s->proto_min ||
				    s->proto_version > s->proto_max);
}

static const char *nq_name(uint8_t d)
{
	return d == LM_NQ_QUORATE ? "quorate" :
	       d == LM_NQ_NOT_QUORATE ? "not quorate" : NULL;
}

static void qdevice_json(struct json *j, const struct lm_quorum *q)
{
	json_key(j, "qdevice");
	if (!(q->flags & LM_QF_QDEV_REGISTERED)) {
		json_null(j);
		return;
	}
	json_obj_begin(j);
	json_kstr(j, "name", q->qdevice_name);
	json_kuint(j, "votes", q->qdevice_votes);
	json_kbool(j, "registered", true);
	json_kbool(j, "alive", q->flags & LM_QF_QDEV_ALIVE);
	json_kbool(j, "cast_vote", q->flags & LM_QF_QDEV_CAST_VOTE);
	json_kbool(j, "master_wins", q->flags & LM_QF_QDEV_MASTER_WINS);
	json_obj_end(j);
}

/* The "quorum" object: where the table's quorate flag comes from. */
static void quorum_json(struct admin *a, const struct lm_s_r_status *s)
{
	const struct lm_quorum *q = &s->q;
	struct json *j = &a->j;
	char buf[48];

	json_key(j, "quorum");
	json_obj_begin(j);
	json_kstr(j, "source", s->transport == 2 ? "standalone" :
						    "votequorum");
	snprintf(buf, sizeof(buf), "%" PRIu32 ".%" PRIu64, q->ring.nodeid,
		 q->ring.seq);
	json_kstr(j, "ring", buf);
	json_key(j, "decided_by");
	if (s->quorum_from)
		json_str(j, node_name(a, s->quorum_from, buf, sizeof(buf)));
	else
		json_null(j);
	json_kbool(j, "quorate", s->quorate);
	json_kbool(j, "local_quorate", s->local_quorate);
	json_kuint(j, "node_votes", q->node_votes);
	json_kuint(j, "expected_votes", q->expected_votes);
	json_kuint(j, "total_votes", q->total_votes);
	json_kuint(j, "quorum", q->quorum);
	json_kbool(j, "two_node", q->flags & LM_QF_TWO_NODE);
	json_kbool(j, "last_man_standing", q->flags & LM_QF_LMS);
	json_kbool(j, "auto_tie_breaker", q->flags & LM_QF_ATB);
	json_kbool(j, "wait_for_all", q->flags & LM_QF_WAIT_FOR_ALL);
	json_kbool(j, "allow_downscale", q->flags & LM_QF_ALLOW_DOWNSCALE);
	qdevice_json(j, q);
	json_obj_end(j);
}

static void status_json(struct admin *a, const struct lm_s_r_status *s)
{
	struct json *j = &a->j;
	char buf[32], digest[17];

	snprintf(digest, sizeof(digest), "%016" PRIx64, s->digest);
	json_obj_begin(j);
	json_kstr(j, "cluster", s->cluster_name);
	json_kstr(j, "node", s->node_name);
	json_kuint(j, "node_id", s->node_id);
	json_kstr(j, "transport", transport_name(s->transport));
	json_kbool(j, "quorate", s->quorate);
	json_kbool(j, "ready", s->ready);
	json_kbool(j, "syncing", s->syncing);
	json_key(j, "members");
	json_arr_begin(j);
	for (uint32_t i = 0; i < s->n_members && i < LM_MAX_NODES; i++)
		json_str(j, node_name(a, s->members[i], buf, sizeof(buf)));
	json_arr_end(j);
	json_kuint(j, "expected_votes", s->expected_votes);
	json_kuint(j, "total_votes", s->total_votes);
	quorum_json(a, s);
	json_key(j, "lease_remaining_ms");
	if (s->lease_remaining_ms < 0)
		json_null(j);
	else
		json_int(j, s->lease_remaining_ms);
	json_kuint(j, "lease_timeout_ms", s->lease_timeout_ms);
	json_kuint(j, "table_version", s->version);
	json_kuint(j, "epoch", s->epoch);
	json_kstr(j, "table_digest", digest);
	json_kuint(j, "resources", s->n_resources);
	json_kuint(j, "locks", s->n_locks);
	json_kuint(j, "clients", s->n_clients);
	json_key(j, "cluster_protocol");
	if (s->proto_version)
		json_int(j, s->proto_version);
	else
		json_null(j);
	json_kuint(j, "protocol_min", s->proto_min);
	json_kuint(j, "protocol_max", s->proto_max);
	json_kbool(j, "kept_out", kept_out(s));
	json_obj_end(j);
	json_finish(j);
}

/* One line: who decided, with what figures and settings. */
static void quorum_human(struct admin *a, const struct lm_s_r_status *s)
{
	const struct lm_quorum *q = &s->q;
	char buf[32];

	if (s->transport == 2) {
		printf("q. source:  standalone (always quorate)\n");
		return;
	}
	printf("q. source:  votequorum, ring %" PRIu32 ".%" PRIu64 ", ",
	       q->ring.nodeid, q->ring.seq);
	if (s->quorum_from)
		printf("decided by %s",
		       node_name(a, s->quorum_from, buf, sizeof(buf)));
	else
		printf("no decision for this ring yet");
	printf("; %" PRIu32 " of %" PRIu32 " votes, %" PRIu32 " needed; "
	       "this node's corosync: %s\n", q->total_votes,
	       q->expected_votes, q->quorum,
	       s->local_quorate ? "quorate" : "not quorate");
	printf("q. flags:  %s%s%s%s%s\n",
	       q->flags & LM_QF_TWO_NODE ? " two_node" : "",
	       q->flags & LM_QF_LMS ? " last_man_standing" : "",
	       q->flags & LM_QF_ATB ? " auto_tie_breaker" : "",
	       q->flags & LM_QF_WAIT_FOR_ALL ? " wait_for_all" : "",
	       q->flags & (LM_QF_TWO_NODE | LM_QF_LMS | LM_QF_ATB |
			   LM_QF_WAIT_FOR_ALL) ? "" : " (none)");
	if (q->flags & LM_QF_QDEV_REGISTERED)
		printf("q. device:  %s, %" PRIu32 " vote(s), %s, %s\n",
		       q->qdevice_name, q->qdevice_votes,
		       q->flags & LM_QF_QDEV_ALIVE ? "alive" : "NOT ALIVE",
		       q->flags & LM_QF_QDEV_CAST_VOTE ? "casting its vote" :
		       "NOT casting its vote");
	else
		printf("q. device:  none\n");
}

static void status_human(struct admin *a, const struct lm_s_r_status *s)
{
	char buf[32], left[16], total[16];

	printf("cluster:    %s\n", s->cluster_name);
	printf("node:       %s (id %" PRIu32 ")\n", s->node_name, s->node_id);
	printf("transport:  %s\n", transport_name(s->transport));
	printf("quorum:     %s%s, %" PRIu32 " of %" PRIu32
	       " expected votes\n",
	       s->quorate ? "quorate" : "NOT QUORATE",
	       s->syncing ? ", state transfer under way" :
	       s->ready ? ", ready" : ", not ready",
	       s->total_votes, s->expected_votes);
	quorum_human(a, s);
	printf("members:   ");
	for (uint32_t i = 0; i < s->n_members && i < LM_MAX_NODES; i++)
		printf(" %s", node_name(a, s->members[i], buf, sizeof(buf)));
	printf("%s\n", s->n_members ? "" : " (none)");
	cv_age_format(s->lease_remaining_ms, left, sizeof(left));
	cv_age_format(s->lease_timeout_ms, total, sizeof(total));
	if (s->lease_remaining_ms >= 0)
		printf("lease:      valid, %s left of %s\n", left, total);
	else
		printf("lease:      NONE (writes are refused; timeout %s)\n",
		       total);
	printf("table:      version %" PRIu64 ", epoch %" PRIu64
	       ", digest %016" PRIx64 "\n", s->version, s->epoch, s->digest);
	printf("resources:  %" PRIu64 " tracked, %" PRIu64 " locks\n",
	       s->n_resources, s->n_locks);
	printf("clients:    %" PRIu32 "\n", s->n_clients);
	if (s->proto_version)
		printf("protocol:   cluster runs version %u, this node speaks "
		       "%u..%u%s\n", s->proto_version, s->proto_min,
		       s->proto_max, kept_out(s) ? ": this node is KEPT OUT "
		       "(see csvfs-lockd(8), ROLLING UPGRADES)" : "");
	else
		printf("protocol:   none negotiated yet, this node speaks "
		       "%u..%u\n", s->proto_min, s->proto_max);
}

static int cmd_status(struct admin *a, int argc, char **argv)
{
	struct lm_s_r_status s;
	int r;

	r = admin_connect(a);
	if (r)
		return r;
	r = lkm_status(a->c, &s);
	if (r < 0)
		return lockd_fail("status query", r);
	r = load_nodes(a);
	if (r)
		return r;
	if (a->json)
		status_json(a, &s);
	else
		status_human(a, &s);
	return 0;
}

/* ------------------------------------------------------------- nodes */

/* This node's lease (ms left, -1 none): only lockd's own is known;
 * for the others the heartbeat age tells how alive they look. */
static int64_t self_lease_ms(struct admin *a)
{
	struct lm_s_r_status s;

	if (lkm_status(a->c, &s) < 0)
		return -1;
	return s.lease_remaining_ms;
}

/* Protocol fields of a nodes row; null when not known. */
static void nodes_json_proto(struct json *j, const struct lm_node_entry *e)
{
	json_key(j, "protocol_min");
	if (e->proto_min)
		json_int(j, e->proto_min);
	else
		json_null(j);
	json_key(j, "protocol_max");
	if (e->proto_max)
		json_int(j, e->proto_max);
	else
		json_null(j);
	json_key(j, "heartbeat_protocol");
	if (e->heartbeat_version)
		json_int(j, e->heartbeat_version);
	else
		json_null(j);
	json_key(j, "lease_timeout_ms");
	if (e->lease_timeout_ms)
		json_int(j, e->lease_timeout_ms);
	else
		json_null(j);
}

static void nodes_json(struct admin *a)
{
	uint32_t self = lkm_server(a->c)->node_id;
	int64_t lease = self_lease_ms(a);
	struct json *j = &a->j;

	json_arr_begin(j);
	for (size_t i = 0; i < a->n_nodes; i++) {
		const struct lm_node_entry *e = &a->nodes[i];

		json_obj_begin(j);
		json_kstr(j, "name", e->name);
		json_kuint(j, "id", e->id);
		json_kstr(j, "state", node_state(e));
		json_kbool(j, "member", e->member);
		json_kbool(j, "draining", e->draining);
		json_kuint(j, "votes", e->votes);
		json_key(j, "quorum_decision");
		if (nq_name(e->quorum_decision))
			json_str(j, nq_name(e->quorum_decision));
		else
			json_null(j);
		json_kuint(j, "owned", e->n_owned);
		json_kuint(j, "locks", e->n_locks);
		json_key(j, "heartbeat_age_ms");
		if (e->heartbeat_age_ms < 0)
			json_null(j);
		else
			json_int(j, e->heartbeat_age_ms);
		json_kbool(j, "this_node", e->id == self);
		nodes_json_proto(j, e);
		json_key(j, "lease_remaining_ms");
		if (e->id != self || lease < 0)
			json_null(j);
		else
			json_int(j, lease);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_finish(j);
}

/* Below the nodes table: the quorum the table follows, and why. */
static int quorum_summary(struct admin *a)
{
	struct lm_s_r_status s;

	if (lkm_status(a->c, &s) < 0)
		return 0;
	printf("quorum:     %s, %" PRIu32 " of %" PRIu32 " votes\n",
	       s.quorate ? "quorate" : "NOT QUORATE", s.q.total_votes,
	       s.q.expected_votes);
	quorum_human(a, &s);
	return 0;
}

static int nodes_human(struct admin *a)
{
	static const char *const hdr[] = { "NAME",   ">ID",    "STATE",
					   "MEMBER", ">VOTES", "QUORUM",
					   ">OWNED", ">LOCKS", "HEARTBEAT",
					   "LEASE", "PROTOCOL" };
	uint32_t self = lkm_server(a->c)->node_id;
	int64_t lease_ms = self_lease_ms(a);
	struct cv_table t;
	int r;

	if (cv_table_init(&t, 11, hdr) < 0)
		return fail("out of memory");
	for (size_t i = 0; i < a->n_nodes; i++) {
		const struct lm_node_entry *e = &a->nodes[i];
		char name[LM_NAME_MAX + 4], id[16], votes[16], owned[16];
		char locks[16], age[16], lease[24], proto[16];
		const char *nq = nq_name(e->quorum_decision);
		const char *row[11] = { name, id, node_state(e),
					e->member ? "yes" : "no", votes,
					nq ? nq : "-", owned, locks, age,
					lease, proto };

		snprintf(name, sizeof(name), "%s%s", e->name,
			 e->id == self ? " *" : "");
		snprintf(id, sizeof(id), "%" PRIu32, e->id);
		snprintf(votes, sizeof(votes), "%" PRIu32, e->votes);
		snprintf(owned, sizeof(owned), "%" PRIu32, e->n_owned);
		snprintf(locks, sizeof(locks), "%" PRIu32, e->n_locks);
		cv_age_format(e->heartbeat_age_ms, age, sizeof(age));
		if (e->proto_max)
			snprintf(proto, sizeof(proto), "%u..%u", e->proto_min,
				 e->proto_max);
		else
			snprintf(proto, sizeof(proto), "-");
		if (e->id != self)
			snprintf(lease, sizeof(lease), "-");
		else if (lease_ms < 0)
			snprintf(lease, sizeof(lease), "NONE");
		else
			cv_age_format(lease_ms, lease, sizeof(lease));
		r = cv_table_row(&t, row);
		if (r < 0) {
			cv_table_free(&t);
			return fail("out of memory");
		}
	}
	cv_table_print(&t, stdout);
	cv_table_free(&t);
	printf("(* = this node; LEASE is known for this node only, "
	       "HEARTBEAT is the age of\n each node's last heartbeat, "
	       "QUORUM the node's corosync decision for the current ring,\n "
	       "PROTOCOL the cluster protocol versions it speaks)\n");
	return quorum_summary(a);
}

static int cmd_nodes(struct admin *a, int argc, char **argv)
{
	int r = admin_connect(a);

	if (r)
		return r;
	r = load_nodes(a);

	if (r)
		return r;
	if (a->json) {
		nodes_json(a);
		return 0;
	}
	return nodes_human(a);
}

/* ------------------------------------------------------------ owners */

struct owner_row {
	const char *path;
	struct lm_owner_entry e;
};

/* Owners of the given paths (a free row when lockd knows nothing), or
 * of every resource when argc is 0. */
static int collect_owners(struct admin *a, int argc, const struct target *t,
			  struct owner_row **rows, size_t *n)
{
	struct lm_owner_entry *v;
	size_t nv;
	int r;

	*rows = calloc(argc ? argc : 1, sizeof(**rows));
	*n = 0;
	if (!*rows)
		return -ENOMEM;
	if (argc == 0) {
		r = lkm_owners(a->c, NULL, &v, &nv);
		if (r < 0)
			return r;
		free(*rows);
		*rows = calloc(nv ? nv : 1, sizeof(**rows));
		for (size_t i = 0; *rows && i < nv; i++)
			(*rows)[i].e = v[i];
		free(v);
		*n = nv;
		return *rows ? 0 : -ENOMEM;
	}
	for (int i = 0; i < argc; i++) {
		r = lkm_owners(a->c, &t[i].res, &v, &nv);
		if (r < 0)
			return r;
		(*rows)[i].path = t[i].path;
		(*rows)[i].e.res = t[i].res;
		(*rows)[i].e.age_ms = -1;
		if (nv > 0)
			(*rows)[i].e = v[0];
		free(v);
	}
	*n = argc;
	return 0;
}

static void owners_json(struct admin *a, const struct owner_row *rows,
			size_t n)
{
	struct json *j = &a->j;
	char uuid[CV_UUID_STR_LEN], b1[32], b2[32];

	json_arr_begin(j);
	for (size_t i = 0; i < n; i++) {
		const struct lm_owner_entry *e = &rows[i].e;

		cv_uuid_unparse(e->res.volume, uuid);
		json_obj_begin(j);
		if (rows[i].path)
			json_kstr(j, "path", rows[i].path);
		json_kstr(j, "volume", uuid);
		json_kuint(j, "fileid", e->res.fileid);
		json_kstr(j, "owner", node_name(a, e->owner, b1, sizeof(b1)));
		json_kuint(j, "owner_id", e->owner);
		json_kuint(j, "epoch", e->epoch);
		json_kuint(j, "waiters", e->n_waiters);
		json_kstr(j, "handoff_target",
			  node_name(a, e->handoff_target, b2, sizeof(b2)));
		json_kbool(j, "revoking", e->revoking);
		json_key(j, "age_ms");
		if (e->age_ms < 0)
			json_null(j);
		else
			json_int(j, e->age_ms);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_finish(j);
}

static int owners_human(struct admin *a, const struct owner_row *rows,
			size_t n, bool paths)
{
	static const char *const hdr[] = { "PATH",     "VOLUME",   ">FILEID",
					   "OWNER",    ">EPOCH",   ">WAITERS",
					   "HANDOFF",  "REVOKING", "AGE" };
	size_t skip = paths ? 0 : 1; /* no PATH column without paths */
	struct cv_table t;

	if (!paths && n == 0) {
		printf("no file is owned, waited for or locked\n");
		return 0;
	}
	if (cv_table_init(&t, 9 - skip, hdr + skip) < 0)
		return fail("out of memory");
	for (size_t i = 0; i < n; i++) {
		const struct lm_owner_entry *e = &rows[i].e;
		char uuid[CV_UUID_STR_LEN], fid[24], ep[24], w[16], age[16];
		char b1[32], b2[32];
		const char *row[9] = {
			rows[i].path, uuid, fid,
			node_name(a, e->owner, b1, sizeof(b1)), ep, w,
			node_name(a, e->handoff_target, b2, sizeof(b2)),
			e->revoking ? "yes" : "no", age
		};

		cv_uuid_unparse(e->res.volume, uuid);
		snprintf(fid, sizeof(fid), "%" PRIu64, e->res.fileid);
		snprintf(ep, sizeof(ep), "%" PRIu64, e->epoch);
		snprintf(w, sizeof(w), "%" PRIu32, e->n_waiters);
		cv_age_format(e->age_ms, age, sizeof(age));
		if (cv_table_row(&t, row + skip) < 0) {
			cv_table_free(&t);
			return fail("out of memory");
		}
	}
	cv_table_print(&t, stdout);
	cv_table_free(&t);
	return 0;
}

static int cmd_owners(struct admin *a, int argc, char **argv)
{
	struct target *t;
	struct owner_row *rows = NULL;
	size_t n;
	int r;

	r = resolve_paths(argc, argv, &t);
	if (r)
		return r;
	r = load_nodes(a);
	if (r)
		goto out;
	r = collect_owners(a, argc, t, &rows, &n);
	if (r < 0) {
		r = lockd_fail("owners query", r);
		goto out;
	}
	if (a->json)
		owners_json(a, rows, n);
	else
		r = owners_human(a, rows, n, argc > 0);
out:
	free(rows);
	free(t);
	return r;
}

/* ------------------------------------------------------------- locks */

struct lock_row {
	const char *path;
	struct lm_lock_entry e;
};

static int collect_locks(struct admin *a, int argc, const struct target *t,
			 struct lock_row **rows, size_t *n)
{
	struct lm_lock_entry *v;
	struct lock_row *nr;
	size_t nv;
	int r;

	*rows = NULL;
	*n = 0;
	for (int i = 0; i < (argc ? argc : 1); i++) {
		r = lkm_locks(a->c, argc ? &t[i].res : NULL, &v, &nv);
		if (r < 0)
			return r;
		nr = realloc(*rows, (*n + nv + 1) * sizeof(*nr));
		if (!nr) {
			free(v);
			return -ENOMEM;
		}
		*rows = nr;
		for (size_t k = 0; k < nv; k++) {
			nr[*n].path = argc ? t[i].path : NULL;
			nr[*n].e = v[k];
			(*n)++;
		}
		free(v);
	}
	return 0;
}

static void locks_json(struct admin *a, const struct lock_row *rows,
		       size_t n)
{
	struct json *j = &a->j;
	char uuid[CV_UUID_STR_LEN], b[32];

	json_arr_begin(j);
	for (size_t i = 0; i < n; i++) {
		const struct lm_lock_entry *e = &rows[i].e;

		cv_uuid_unparse(e->res.volume, uuid);
		json_obj_begin(j);
		if (rows[i].path)
			json_kstr(j, "path", rows[i].path);
		json_kstr(j, "volume", uuid);
		json_kuint(j, "fileid", e->res.fileid);
		json_kstr(j, "kind",
			  e->space == LM_SPACE_FLOCK ? "flock" : "posix");
		json_kstr(j, "type",
			  e->type == LM_LK_WRITE ? "write" : "read");
		json_kstr(j, "node", node_name(a, e->node, b, sizeof(b)));
		json_kuint(j, "node_id", e->node);
		json_kuint(j, "owner", e->owner);
		json_kuint(j, "pid", e->pid);
		json_kuint(j, "start", e->start);
		if (e->end == LM_OFFSET_MAX)
			json_knull(j, "end");
		else
			json_kuint(j, "end", e->end);
		json_kbool(j, "waiting", e->waiting);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_finish(j);
}

static int locks_human(struct admin *a, const struct lock_row *rows,
		       size_t n, bool paths)
{
	static const char *const hdr[] = { "PATH", "VOLUME", ">FILEID",
					   "KIND", "TYPE",   "NODE",
					   ">PID", "OWNER",  "RANGE",
					   "STATE" };
	size_t skip = paths ? 0 : 1;
	struct cv_table t;

	if (n == 0) {
		printf("no locks\n");
		return 0;
	}
	if (cv_table_init(&t, 10 - skip, hdr + skip) < 0)
		return fail("out of memory");
	for (size_t i = 0; i < n; i++) {
		const struct lm_lock_entry *e = &rows[i].e;
		char uuid[CV_UUID_STR_LEN], fid[24], pid[16], own[24];
		char range[64], b[32];
		const char *row[10] = {
			rows[i].path, uuid, fid,
			e->space == LM_SPACE_FLOCK ? "flock" : "posix",
			e->type == LM_LK_WRITE ? "write" : "read",
			node_name(a, e->node, b, sizeof(b)), pid, own, range,
			e->waiting ? "waiting" : "held"
		};

		cv_uuid_unparse(e->res.volume, uuid);
		snprintf(fid, sizeof(fid), "%" PRIu64, e->res.fileid);
		snprintf(pid, sizeof(pid), "%" PRIu32, e->pid);
		snprintf(own, sizeof(own), "%" PRIx64, e->owner);
		if (e->end == LM_OFFSET_MAX)
			snprintf(range, sizeof(range), "%" PRIu64 "-EOF",
				 e->start);
		else
			snprintf(range, sizeof(range), "%" PRIu64 "-%" PRIu64,
				 e->start, e->end);
		if (cv_table_row(&t, row + skip) < 0) {
			cv_table_free(&t);
			return fail("out of memory");
		}
	}
	cv_table_print(&t, stdout);
	cv_table_free(&t);
	return 0;
}

static int cmd_locks(struct admin *a, int argc, char **argv)
{
	struct target *t;
	struct lock_row *rows = NULL;
	size_t n = 0;
	int r;

	r = resolve_paths(argc, argv, &t);
	if (r)
		return r;
	r = load_nodes(a);
	if (r)
		goto out;
	r = collect_locks(a, argc, t, &rows, &n);
	if (r < 0) {
		r = lockd_fail("locks query", r);
		goto out;
	}
	if (a->json)
		locks_json(a, rows, n);
	else
		r = locks_human(a, rows, n, argc > 0);
out:
	free(rows);
	free(t);
	return r;
}

/* ----------------------------------------------------------- handoff */

/* Owner of res now; 0 when free. */
static int current_owner(struct admin *a, const struct lm_res *res,
			 struct lm_owner_entry *out)
{
	struct lm_owner_entry *v;
	size_t n;
	int r;

	memset(out, 0, sizeof(*out));
	r = lkm_owners(a->c, res, &v, &n);
	if (r < 0)
		return r;
	if (n > 0)
		*out = v[0];
	free(v);
	return 0;
}

static void result_json(struct admin *a, const char *op, const char *path,
			const char *node, int64_t elapsed, uint64_t epoch)
{
	struct json *j = &a->j;

	json_obj_begin(j);
	json_kstr(j, "op", op);
	if (path)
		json_kstr(j, "path", path);
	json_kstr(j, "node", node);
	json_kint(j, "elapsed_ms", elapsed);
	if (epoch)
		json_kuint(j, "epoch", epoch);
	json_obj_end(j);
	json_finish(j);
}

static int handoff_wait(struct admin *a, const char *path,
			const struct lm_res *res,
			const struct lm_node_entry *to, int64_t t0)
{
	struct lm_owner_entry e;
	char b[32], age[16];
	int r;

	for (;;) {
		r = current_owner(a, res, &e);
		if (r < 0)
			return lockd_fail("owners query", r);
		if (e.owner == to->id)
			break;
		if ((int64_t)cv_now_ms() - t0 >= (int64_t)a->timeout_s * 1000)
			return fail("handoff of %s to %s requested, but after "
				    "%ds it is still owned by %s (it must "
				    "flush and release first)", path,
				    to->name, a->timeout_s,
				    node_name(a, e.owner, b, sizeof(b)) ?:
				    "nobody");
		usleep(POLL_INTERVAL_MS * 1000 / 4);
	}
	cv_age_format((int64_t)cv_now_ms() - t0, age, sizeof(age));
	if (a->json)
		result_json(a, "handoff", path, to->name, (int64_t)cv_now_ms() - t0,
			    e.epoch);
	else
		printf("%s: now owned by %s (epoch %" PRIu64 ") after %s\n",
		       path, to->name, e.epoch, age);
	return 0;
}

static int cmd_handoff(struct admin *a, int argc, char **argv)
{
	const struct lm_node_entry *to;
	struct target *t;
	int64_t t0 = (int64_t)cv_now_ms();
	int r;

	r = resolve_paths(1, argv, &t);
	if (r)
		return r;
	r = resolve_node(a, argv[1], &to);
	if (r)
		goto out;
	r = lkm_handoff(a->c, &t->res, to->name);
	if (r < 0) {
		r = node_fail(a, "handoff", to->name, r);
		goto out;
	}
	r = handoff_wait(a, t->path, &t->res, to, t0);
out:
	free(t);
	return r;
}

/* ------------------------------------------------------ drain/resume */

/* Count what node id still owns; lists up to a few file ids in buf. */
static int owned_by(struct admin *a, uint32_t id, size_t *count, char *buf,
		    size_t len)
{
	struct lm_owner_entry *v;
	size_t n, off = 0;
	int r;

	*count = 0;
	buf[0] = '\0';
	r = lkm_owners(a->c, NULL, &v, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		if (v[i].owner != id)
			continue;
		if (*count < 8 && off < len)
			off += snprintf(buf + off, len - off, "%s%" PRIu64,
					off ? " " : "", v[i].res.fileid);
		(*count)++;
	}
	if (*count > 8 && off < len)
		snprintf(buf + off, len - off, " ...");
	free(v);
	return 0;
}

static int drain_wait(struct admin *a, const struct lm_node_entry *node,
		      int64_t t0)
{
	size_t n, last = SIZE_MAX;
	char ids[256], age[16];
	int r;

	for (;;) {
		r = owned_by(a, node->id, &n, ids, sizeof(ids));
		if (r < 0)
			return lockd_fail("owners query", r);
		if (n == 0)
			break;
		if (n != last && !a->json)
			printf("draining %s: %zu file%s still owned\n",
			       node->name, n, n == 1 ? "" : "s");
		fflush(stdout);
		last = n;
		if ((int64_t)cv_now_ms() - t0 >= (int64_t)a->timeout_s * 1000)
			return fail("drain of %s timed out after %ds: still "
				    "owns %zu file%s (file ids %s); its csvfs "
				    "must flush and release them; the node "
				    "stays draining", node->name,
				    a->timeout_s, n, n == 1 ? "" : "s", ids);
		usleep(POLL_INTERVAL_MS * 1000);
	}
	cv_age_format((int64_t)cv_now_ms() - t0, age, sizeof(age));
	if (a->json)
		result_json(a, "drain", NULL, node->name, (int64_t)cv_now_ms() - t0, 0);
	else
		printf("%s drained in %s: owns nothing, takes no new "
		       "ownership until 'csvfs-admin resume %s'\n",
		       node->name, age, node->name);
	return 0;
}

static int cmd_drain(struct admin *a, int argc, char **argv)
{
	const struct lm_node_entry *node;
	int64_t t0 = (int64_t)cv_now_ms();
	int r;

	r = resolve_node(a, argc ? argv[0] : NULL, &node);
	if (r)
		return r;
	r = lkm_drain(a->c, node->name);
	if (r < 0)
		return node_fail(a, "drain", node->name, r);
	return drain_wait(a, node, t0);
}

static int cmd_resume(struct admin *a, int argc, char **argv)
{
	const struct lm_node_entry *node;
	int r;

	r = resolve_node(a, argc ? argv[0] : NULL, &node);
	if (r)
		return r;
	r = lkm_resume(a->c, node->name);
	if (r < 0)
		return node_fail(a, "resume", node->name, r);
	if (a->json)
		result_json(a, "resume", NULL, node->name, 0, 0);
	else
		printf("%s resumed: takes ownership again\n", node->name);
	return 0;
}

/* ----------------------------------------------------------- volumes */

/* One volume: the mounts of every node that has it. */
struct volume_row {
	uint8_t uuid[LM_VOLUME_LEN];
	const struct lm_volume_entry **mounts;
	size_t n;
};

/* Group mount rows by volume, in order of first appearance. */
static int group_volumes(const struct lm_volume_entry *v, size_t n,
			 struct volume_row **out, size_t *n_out)
{
	struct volume_row *rows = calloc(n ? n : 1, sizeof(*rows));
	size_t nr = 0, k;

	if (!rows)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		for (k = 0; k < nr; k++)
			if (!memcmp(rows[k].uuid, v[i].m.volume,
				    LM_VOLUME_LEN))
				break;
		if (k == nr) {
			memcpy(rows[nr].uuid, v[i].m.volume, LM_VOLUME_LEN);
			rows[nr].mounts = calloc(n, sizeof(*rows[nr].mounts));
			if (!rows[nr].mounts)
				goto fail;
			nr++;
		}
		rows[k].mounts[rows[k].n++] = &v[i];
	}
	*out = rows;
	*n_out = nr;
	return 0;
fail:
	for (k = 0; k < nr; k++)
		free(rows[k].mounts);
	free(rows);
	return -ENOMEM;
}

static bool is_block(const char *source)
{
	return !strncmp(source, "block:", 6) || !strncmp(source, "iscsi://", 8);
}

/*
 * An iSCSI volume's SCSI-3 reservation, read through a session of our
 * own (READ KEYS and READ RESERVATION need no registration): 0, or
 * -errno (-EOPNOTSUPP: not an iSCSI LUN, or fencing=lease).
 */
static int reservation_of(const char *source, struct cvb_pr_state *st)
{
#ifdef CSVFS_HAVE_BLOCK
	struct cvb_lun *l;
	char err[256];
	int rc;

	if (strncmp(source, "iscsi://", 8))
		return -EOPNOTSUPP;
	rc = cvb_lun_open(source, CVB_LUN_RDONLY, NULL, &l, err, sizeof(err));
	if (rc)
		return rc;
	rc = cvb_pr_read(l, st);
	cvb_lun_close(l);
	return rc;
#else
	(void)source;
	(void)st;
	return -EOPNOTSUPP;
#endif
}

/* "node N incarnation I": what a key made by cvb_pr_key says. */
static void key_text(uint64_t k, char *buf, size_t cap)
{
	snprintf(buf, cap, "%016" PRIx64 " (node %" PRIu32 ")", k,
		 (uint32_t)(k >> 32));
}

static void reservation_human(const char *source)
{
	struct cvb_pr_state st;
	char kt[64];
	int rc = reservation_of(source, &st);

	if (rc == -EOPNOTSUPP)
		return;
	if (rc) {
		printf("%s: reservation unreadable: %s\n", source,
		       strerror(-rc));
		return;
	}
	printf("%s: generation %" PRIu32 ", ", source, st.generation);
	if (st.reserved) {
		key_text(st.holder, kt, sizeof(kt));
		printf("reserved by %s, type %u%s\n", kt, st.type,
		       st.type == CVB_PR_WE_RO
			       ? " (write exclusive, registrants only)"
			       : "");
	} else {
		printf("not reserved\n");
	}
	for (unsigned i = 0; i < st.nkeys; i++) {
		key_text(st.keys[i], kt, sizeof(kt));
		printf("  registered %s\n", kt);
	}
}

static void reservation_json(struct json *j, const char *source)
{
	struct cvb_pr_state st;
	char kt[32];

	if (reservation_of(source, &st))
		return;
	json_key(j, "reservation");
	json_obj_begin(j);
	json_kuint(j, "generation", st.generation);
	snprintf(kt, sizeof(kt), "%016" PRIx64, st.holder);
	json_kstr(j, "holder", st.reserved ? kt : "");
	json_kuint(j, "type", st.reserved ? st.type : 0);
	json_key(j, "keys");
	json_arr_begin(j);
	for (unsigned i = 0; i < st.nkeys; i++) {
		snprintf(kt, sizeof(kt), "%016" PRIx64, st.keys[i]);
		json_str(j, kt);
	}
	json_arr_end(j);
	json_obj_end(j);
}

/*
 * A block volume's coordinator: the owner of its file id 1 (ext4's
 * bad-blocks inode, held by the mount that serves the metadata); "" for
 * other backends or when none.
 */
static const char *coordinator_of(struct admin *a, const struct volume_row *r,
				  char *buf, size_t cap)
{
	struct lm_res res = { .fileid = 1 };
	struct lm_owner_entry o;

	buf[0] = '\0';
	if (!is_block(r->mounts[0]->m.source))
		return buf;
	memcpy(res.volume, r->uuid, LM_VOLUME_LEN);
	if (!current_owner(a, &res, &o) && o.owner) {
		const char *name = node_name(a, o.owner, buf, cap);

		if (name != buf)
			snprintf(buf, cap, "%s", name);
	}
	return buf;
}

/*
 * A block volume's space and journal.  The LUN is read here when this
 * node sees its path (cvb_lun_info: the journal's state, and the space
 * as of the last checkpoint); the space comes from statfs of the mount
 * instead when this node mounts the volume (the coordinator's own
 * figures, or the figures it serves).
 */
struct block_state {
	bool lun;      /* the LUN read on this node */
	bool mounted;  /* space from a mount on this node */
	char err[200]; /* why the LUN was not read */
	uint64_t size, free, inodes, free_inodes;
	bool needs_recovery;
	uint64_t journal_size, journal_used;
	uint32_t journal_txns, journal_seq;
};

static void block_space_mounted(struct admin *a, const struct volume_row *r,
				struct block_state *s)
{
	uint32_t self = lkm_server(a->c)->node_id;
	struct statvfs v;

	for (size_t k = 0; k < r->n; k++) {
		const struct lm_volume_entry *e = r->mounts[k];

		if (e->node != self || statvfs(e->m.mountpoint, &v))
			continue;
		s->mounted = true;
		s->size = (uint64_t)v.f_blocks * v.f_frsize;
		s->free = (uint64_t)v.f_bavail * v.f_frsize;
		s->inodes = v.f_files;
		s->free_inodes = v.f_favail;
		return;
	}
}

static void block_state_of(struct admin *a, const struct volume_row *r,
			   struct block_state *s)
{
	memset(s, 0, sizeof(*s));
#ifdef CSVFS_HAVE_BLOCK
	struct cvb_lun_info li;
	const char *path = r->mounts[0]->m.source + 6;

	if (strncmp(r->mounts[0]->m.source, "block:", 6)) {
		snprintf(s->err, sizeof(s->err),
			 "the journal of an iSCSI LUN is not read here");
	} else if (access(path, R_OK)) {
		snprintf(s->err, sizeof(s->err), "%s: %s", path,
			 strerror(errno));
	} else if (!cvb_lun_info(path, &li, s->err, sizeof(s->err))) {
		s->lun = true;
		s->size = li.size;
		s->free = li.free;
		s->inodes = li.inodes;
		s->free_inodes = li.free_inodes;
		s->needs_recovery = li.needs_recovery;
		s->journal_size = li.journal_size;
		s->journal_used = li.journal_used;
		s->journal_txns = li.journal_txns;
		s->journal_seq = li.journal_seq;
	}
#else
	snprintf(s->err, sizeof(s->err),
		 "csvfs-admin built without block "
		 "volume support (libext2fs-dev)");
#endif
	block_space_mounted(a, r, s);
}

/* "clean", "needs recovery", or "in use" while a coordinator has it
 * open (its journal always holds the recovery flag then); NULL when the
 * LUN could not be read here. */
static const char *journal_state(const struct block_state *s, const char *coord)
{
	if (!s->lun)
		return NULL;
	if (!s->needs_recovery)
		return "clean";
	return coord[0] ? "in use" : "needs recovery";
}

static void block_json(struct admin *a, const struct volume_row *r,
		       const char *coord)
{
	struct json *j = &a->j;
	struct block_state s;
	const char *st;

	block_state_of(a, r, &s);
	st = journal_state(&s, coord);
	if (s.lun || s.mounted) {
		json_kstr(j, "space_from", s.mounted ? "mount" : "lun");
		json_kuint(j, "size_bytes", s.size);
		json_kuint(j, "free_bytes", s.free);
		json_kuint(j, "inodes", s.inodes);
		json_kuint(j, "free_inodes", s.free_inodes);
	}
	json_key(j, "journal");
	json_obj_begin(j);
	if (st) {
		json_kstr(j, "state",
			  !strcmp(st, "in use")	 ? "in_use"
			  : !strcmp(st, "clean") ? "clean"
						 : "needs_recovery");
		json_kbool(j, "needs_recovery", s.needs_recovery);
		json_kuint(j, "size_bytes", s.journal_size);
		json_kuint(j, "used_bytes", s.journal_used);
		json_kuint(j, "transactions", s.journal_txns);
		json_kuint(j, "sequence", s.journal_seq);
	} else {
		json_kstr(j, "state", "unknown");
		json_kstr(j, "error", s.err);
	}
	json_obj_end(j);
}

/* Bytes as "3.9G", "512M", "24K". */
static void human_bytes(uint64_t v, char *buf, size_t cap)
{
	static const char units[] = "KMGTPE";
	double d = (double)v;
	int u = -1;

	while (d >= 1024 && u < 5)
		d /= 1024, u++;
	if (u < 0)
		snprintf(buf, cap, "%lluB", (unsigned long long)v);
	else
		snprintf(buf, cap, d < 10 ? "%.1f%c" : "%.0f%c", d, units[u]);
}

/* The FREE and JOURNAL cells of a block volume. */
static void block_cells(struct admin *a, const struct volume_row *r,
			const char *coord, char *fr, size_t frcap, char *jn,
			size_t jncap)
{
	struct block_state s;
	const char *st;
	char f[16], t[16], u[16];

	block_state_of(a, r, &s);
	st = journal_state(&s, coord);
	snprintf(fr, frcap, "-");
	if (s.lun || s.mounted) {
		human_bytes(s.free, f, sizeof(f));
		human_bytes(s.size, t, sizeof(t));
		snprintf(fr, frcap, "%s/%s", f, t);
	}
	if (!st) {
		snprintf(jn, jncap, "unknown (%s)", s.err);
		return;
	}
	human_bytes(s.journal_used, u, sizeof(u));
	human_bytes(s.journal_size, t, sizeof(t));
	snprintf(jn, jncap, "%s, %s/%s", st, u, t);
}

static void volumes_json(struct admin *a, const struct volume_row *rows,
			 size_t n)
{
	struct json *j = &a->j;
	char uuid[CV_UUID_STR_LEN], b[32];

	json_arr_begin(j);
	for (size_t i = 0; i < n; i++) {
		const struct lm_volume_entry *first = rows[i].mounts[0];

		cv_uuid_unparse(rows[i].uuid, uuid);
		json_obj_begin(j);
		json_kstr(j, "uuid", uuid);
		json_kstr(j, "label", first->m.label);
		json_kstr(j, "source", first->m.source);
		if (is_block(first->m.source))
			json_kstr(j, "coordinator",
				  coordinator_of(a, &rows[i], b, sizeof(b)));
		if (is_block(first->m.source))
			block_json(a, &rows[i], b);
		reservation_json(j, first->m.source);
		json_key(j, "nodes");
		json_arr_begin(j);
		for (size_t k = 0; k < rows[i].n; k++)
			json_str(j, node_name(a, rows[i].mounts[k]->node, b,
					      sizeof(b)));
		json_arr_end(j);
		json_key(j, "mounts");
		json_arr_begin(j);
		for (size_t k = 0; k < rows[i].n; k++) {
			const struct lm_volume_entry *e = rows[i].mounts[k];

			json_obj_begin(j);
			json_kstr(j, "node", node_name(a, e->node, b,
						       sizeof(b)));
			json_kuint(j, "node_id", e->node);
			json_kstr(j, "mountpoint", e->m.mountpoint);
			json_kstr(j, "source", e->m.source);
			json_obj_end(j);
		}
		json_arr_end(j);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_finish(j);
}

/* "n1 n2 n3" of the nodes mounting a volume. */
static void volume_nodes(struct admin *a, const struct volume_row *r,
			 char *buf, size_t len)
{
	size_t off = 0;
	char b[32];

	buf[0] = '\0';
	for (size_t k = 0; k < r->n && off < len; k++)
		off += snprintf(buf + off, len - off, "%s%s", k ? " " : "",
				node_name(a, r->mounts[k]->node, b,
					  sizeof(b)));
}

static int volumes_human(struct admin *a, const struct volume_row *rows,
			 size_t n)
{
	static const char *const hdr[] = { "VOLUME", "LABEL", "SOURCE",
					   "MOUNTED ON", "FREE", "JOURNAL" };
	struct cv_table t;

	if (n == 0) {
		printf("no csvfs volume is mounted on any member node\n");
		return 0;
	}
	if (cv_table_init(&t, 6, hdr) < 0)
		return fail("out of memory");
	for (size_t i = 0; i < n; i++) {
		const struct lm_volume_entry *first = rows[i].mounts[0];
		char uuid[CV_UUID_STR_LEN], nodes[1024], coord[64];
		char fr[40] = "-", jn[256] = "-";
		const char *row[6] = { uuid, first->m.label[0] ? first->m.label : "-",
				       first->m.source, nodes, fr, jn };

		cv_uuid_unparse(rows[i].uuid, uuid);
		volume_nodes(a, &rows[i], nodes, sizeof(nodes));
		if (coordinator_of(a, &rows[i], coord, sizeof(coord))[0]) {
			size_t l = strlen(nodes);

			snprintf(nodes + l, sizeof(nodes) - l,
				 " (coordinator %s)", coord);
		}
		if (is_block(first->m.source))
			block_cells(a, &rows[i], coord, fr, sizeof(fr), jn,
				    sizeof(jn));
		if (cv_table_row(&t, row) < 0) {
			cv_table_free(&t);
			return fail("out of memory");
		}
	}
	cv_table_print(&t, stdout);
	cv_table_free(&t);
	for (size_t i = 0; i < n; i++)
		reservation_human(rows[i].mounts[0]->m.source);
	return 0;
}

static int cmd_volumes(struct admin *a, int argc, char **argv)
{
	struct lm_volume_entry *v = NULL;
	struct volume_row *rows = NULL;
	size_t n, nr = 0;
	int r;

	r = load_nodes(a);
	if (r)
		return r;
	r = lkm_volumes(a->c, &v, &n);
	if (r < 0)
		return lockd_fail("volumes query", r);
	if (group_volumes(v, n, &rows, &nr) < 0) {
		free(v);
		return fail("out of memory");
	}
	if (a->json)
		volumes_json(a, rows, nr);
	else
		r = volumes_human(a, rows, nr);
	for (size_t i = 0; i < nr; i++)
		free(rows[i].mounts);
	free(rows);
	free(v);
	return r;
}

/* ------------------------------------------------------------ format */

static int cmd_format(struct admin *a, int argc, char **argv)
{
	struct cv_volrec rec;
	char err[512], uuid[CV_UUID_STR_LEN];
	int r;

	r = cv_volume_format(argv[0], a->label ? a->label : "", a->force,
			     &rec, err, sizeof(err));
	if (r == -EINVAL && strstr(err, "SOURCE must be"))
		return usage_error("%s", err);
	if (r)
		return fail("%s", err);
	cv_uuid_unparse(rec.uuid, uuid);
	if (a->json) {
		json_obj_begin(&a->j);
		json_kstr(&a->j, "uuid", uuid);
		json_kstr(&a->j, "label", rec.label);
		json_kstr(&a->j, "source", argv[0]);
		json_kuint(&a->j, "format", rec.format_version);
		json_obj_end(&a->j);
		json_finish(&a->j);
	} else {
		printf("%s\n", uuid);
	}
	return 0;
}

/* ----------------------------------------------------------- preempt */

/* This node's lockd node id, 0 when no lockd answers (nothing said). */
static uint32_t own_node_id(struct admin *a)
{
	struct lkm_hello hello = { .kind = LM_CLIENT_ADMIN,
				   .label = "csvfs-admin" };
	const char *path =
		a->socket && *a->socket ? a->socket : getenv(LKM_SOCKET_ENV);
	char why[256];

	if (!path || !*path)
		path = LKM_DEFAULT_SOCKET;
	if (!a->c && lkm_connect_err(path, &hello, CONNECT_TIMEOUT_MS, &a->c,
				     why, sizeof(why)) < 0)
		return 0;
	return lkm_server(a->c)->node_id;
}

/*
 * Fence NODE at an iSCSI volume's storage: PREEMPT its reservation keys
 * (lun.h cvb_pr_fence_node) with a key of this node's (its lockd node
 * id, incarnation 0xffffffff).  NODE is a node id, or a name lockd
 * knows.  A fence_command for csvfs-lockd can run it before its own
 * fence confirmation.
 */
static int cmd_preempt(struct admin *a, int argc, char **argv)
{
#ifdef CSVFS_HAVE_BLOCK
	uint32_t victim = 0, self = 0;
	struct cvb_lun *l;
	unsigned removed;
	char err[512], *end;
	int r;

	(void)argc;
	victim = (uint32_t)strtoul(argv[1], &end, 0);
	if (*end || !argv[1][0]) {
		const struct lm_node_entry *e;

		r = load_nodes(a);
		if (r)
			return r;
		e = node_by_name(a, argv[1]);
		if (!e)
			return fail("no node '%s' in the cluster", argv[1]);
		victim = e->id;
	}
	self = own_node_id(a);
	r = cvb_lun_open(argv[0], 0, NULL, &l, err, sizeof(err));
	if (r)
		return fail("%s", err);
	cvb_pr_keep(l);
	r = cvb_pr_fence_node(l, cvb_pr_key(self, 0xffffffffu), victim,
			      &removed);
	cvb_lun_close(l);
	if (r == -EOPNOTSUPP)
		return fail("%s: no persistent reservations (fencing=lease, "
			    "or the target has none)",
			    argv[0]);
	if (r)
		return fail("%s: preempting node %" PRIu32 ": %s", argv[0],
			    victim, strerror(-r));
	printf("node %" PRIu32 ": %u key%s preempted on %s\n", victim, removed,
	       removed == 1 ? "" : "s", argv[0]);
	return 0;
#else
	(void)a;
	(void)argc;
	(void)argv;
	return fail("this csvfs-admin was built without block volumes");
#endif
}

/* ----------------------------------------------------------- metrics */

static void metrics_counters(FILE *f, const struct lm_s_r_metrics *m,
			     const char *self)
{
	static const struct {
		const char *name, *help;
		size_t off;
	} c[] = {
#define C(n, field, h) { "csvfs_" n "_total", h, \
	offsetof(struct lm_s_r_metrics, field) }
		C("grants", grants, "Write ownership grants (any node)."),
		C("handoffs", handoffs, "Grants made by a hand-off."),
		C("revokes", revokes, "Owners asked to give a file up."),
		C("releases", releases, "Ownerships given up by owners."),
		C("ownership_lost", lost, "Ownerships ended by fencing."),
		C("fence_events", fences, "Nodes fenced."),
		C("acquire_requests", acquires,
		  "Acquire requests of this node's csvfs mounts."),
		C("acquire_errors", acquire_errors,
		  "Acquire requests of this node refused."),
#undef C
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		uint64_t v;

		memcpy(&v, (const char *)m + c[i].off, sizeof(v));
		prom_family(f, c[i].name, "counter", c[i].help);
		prom_uint(f, c[i].name, self, v);
	}
}

static void metrics_nodes(struct admin *a, FILE *f)
{
	static const char *const fam[][2] = {
		{ "csvfs_node_up", "1 if the node is a member, not draining." },
		{ "csvfs_node_member", "1 if the node is a cluster member." },
		{ "csvfs_node_draining", "1 if the node is draining." },
		{ "csvfs_node_fencing", "1 if the node awaits fencing." },
		{ "csvfs_node_owned_files", "Files the node owns." },
		{ "csvfs_node_locks", "POSIX and flock locks the node holds." },
	};

	for (size_t k = 0; k < sizeof(fam) / sizeof(fam[0]); k++) {
		prom_family(f, fam[k][0], "gauge", fam[k][1]);
		for (size_t i = 0; i < a->n_nodes; i++) {
			const struct lm_node_entry *e = &a->nodes[i];
			uint64_t v[] = {
				e->state == LM_NODE_UP && !e->draining,
				e->member, e->draining,
				e->state == LM_NODE_FENCING, e->n_owned,
				e->n_locks,
			};
			char l[160] = "";

			prom_label(l, sizeof(l), "node", e->name);
			prom_uint(f, fam[k][0], l, v[k]);
		}
	}
	prom_family(f, "csvfs_node_heartbeat_age_seconds", "gauge",
		    "Age of the node's last heartbeat seen here.");
	for (size_t i = 0; i < a->n_nodes; i++) {
		char l[160] = "";

		if (a->nodes[i].heartbeat_age_ms < 0)
			continue;
		prom_label(l, sizeof(l), "node", a->nodes[i].name);
		prom_ms_as_seconds(f, "csvfs_node_heartbeat_age_seconds", l,
				   a->nodes[i].heartbeat_age_ms);
	}
}

/* Why the cluster is (not) quorate: corosync's figures and settings. */
static void metrics_quorum(FILE *f, const struct lm_s_r_status *s,
			   const char *self)
{
	static const struct {
		const char *name;
		uint32_t flag;
	} flags[] = {
		{ "two_node", LM_QF_TWO_NODE },
		{ "last_man_standing", LM_QF_LMS },
		{ "auto_tie_breaker", LM_QF_ATB },
		{ "wait_for_all", LM_QF_WAIT_FOR_ALL },
		{ "qdevice_registered", LM_QF_QDEV_REGISTERED },
		{ "qdevice_alive", LM_QF_QDEV_ALIVE },
		{ "qdevice_cast_vote", LM_QF_QDEV_CAST_VOTE },
	};
	const struct lm_quorum *q = &s->q;
	char l[256];

	prom_family(f, "csvfs_quorum_decided", "gauge",
		    "1 if the table applied corosync's quorum decision for "
		    "the current ring.");
	prom_uint(f, "csvfs_quorum_decided", self, s->quorum_from != 0);
	prom_family(f, "csvfs_quorum_local_quorate", "gauge",
		    "1 if this node's own corosync view is quorate for the "
		    "current ring.");
	prom_uint(f, "csvfs_quorum_local_quorate", self, s->local_quorate);
	prom_family(f, "csvfs_quorum_votes", "gauge",
		    "Votes in corosync's decision: present (quorum device "
		    "included), expected, needed.");
	for (int k = 0; k < 3; k++) {
		snprintf(l, sizeof(l), "%s", self);
		prom_label(l, sizeof(l), "kind", k == 0 ? "total" :
			   k == 1 ? "expected" : "needed");
		prom_uint(f, "csvfs_quorum_votes", l, k == 0 ? q->total_votes :
			  k == 1 ? q->expected_votes : q->quorum);
	}
	prom_family(f, "csvfs_quorum_setting", "gauge",
		    "votequorum settings and quorum device state (1 = on).");
	for (size_t k = 0; k < sizeof(flags) / sizeof(flags[0]); k++) {
		snprintf(l, sizeof(l), "%s", self);
		prom_label(l, sizeof(l), "setting", flags[k].name);
		prom_uint(f, "csvfs_quorum_setting", l,
			  (q->flags & flags[k].flag) != 0);
	}
	prom_family(f, "csvfs_qdevice_votes", "gauge",
		    "Votes of the quorum device (0 without one).");
	prom_uint(f, "csvfs_qdevice_votes", self, q->qdevice_votes);
}

static void metrics_print(struct admin *a, FILE *f,
			  const struct lm_s_r_status *s,
			  const struct lm_s_r_metrics *m)
{
	char self[160] = "";

	prom_label(self, sizeof(self), "node", s->node_name);
	prom_family(f, "csvfs_cluster_quorate", "gauge",
		    "1 if this node's partition is quorate.");
	prom_uint(f, "csvfs_cluster_quorate", self, s->quorate);
	prom_family(f, "csvfs_cluster_members", "gauge",
		    "Members in this node's view.");
	prom_uint(f, "csvfs_cluster_members", self, s->n_members);
	metrics_quorum(f, s, self);
	prom_family(f, "csvfs_lease_valid", "gauge",
		    "1 if this node holds a valid write lease.");
	prom_uint(f, "csvfs_lease_valid", self, m->lease_remaining_ms >= 0);
	prom_family(f, "csvfs_lease_remaining_seconds", "gauge",
		    "Time left on this node's lease (0 without one).");
	prom_ms_as_seconds(f, "csvfs_lease_remaining_seconds", self,
			   m->lease_remaining_ms < 0 ? 0 :
			   m->lease_remaining_ms);
	prom_family(f, "csvfs_lease_timeout_seconds", "gauge",
		    "Configured lease timeout.");
	prom_ms_as_seconds(f, "csvfs_lease_timeout_seconds", self,
			   m->lease_timeout_ms);
	prom_family(f, "csvfs_owned_files", "gauge",
		    "Files with a write owner, cluster-wide.");
	prom_uint(f, "csvfs_owned_files", self, s->n_resources);
	metrics_counters(f, m, self);
	prom_family(f, "csvfs_acquire_latency_seconds", "histogram",
		    "From a local acquire reaching lockd to its grant.");
	prom_histogram_us(f, "csvfs_acquire_latency_seconds", self,
			  &m->acquire_latency);
	prom_family(f, "csvfs_lockd_uptime_seconds", "gauge",
		    "Time since this csvfs-lockd started.");
	prom_ms_as_seconds(f, "csvfs_lockd_uptime_seconds", self,
			   (int64_t)m->uptime_ms);
	metrics_nodes(a, f);
}

static int cmd_metrics(struct admin *a, int argc, char **argv)
{
	struct lm_s_r_metrics m;
	struct lm_s_r_status s;
	int r;

	r = load_nodes(a);
	if (r)
		return r;
	r = lkm_status(a->c, &s);
	if (r < 0)
		return lockd_fail("status query", r);
	r = lkm_metrics(a->c, &m);
	if (r < 0)
		return lockd_fail("metrics query", r);
	metrics_print(a, stdout, &s, &m);
	return 0;
}

/* --------------------------------------------------------------- log */

static void log_json(struct admin *a, char *text)
{
	char *line, *save = NULL;

	json_obj_begin(&a->j);
	json_kstr(&a->j, "node", lkm_server(a->c)->node_name);
	json_key(&a->j, "lines");
	json_arr_begin(&a->j);
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		json_str(&a->j, line);
	json_arr_end(&a->j);
	json_obj_end(&a->j);
}

/* lockd's debug ring: every level, whatever the configured log level. */
static int cmd_log(struct admin *a, int argc, char **argv)
{
	char *text;
	size_t len;
	int r;

	r = admin_connect(a);
	if (r)
		return r;
	r = lkm_log(a->c, &text, &len);
	if (r < 0)
		return lockd_fail("log query", r);
	if (a->json)
		log_json(a, text);
	else
		fwrite(text, 1, len, stdout);
	free(text);
	return 0;
}

static int cmd_replica(struct admin *a, int argc, char **argv)
{
	return admin_replica(&a->rep, a->json, &a->j, argc, argv);
}

/* -------------------------------------------------------------- main */

static const struct command commands[] = {
	{ "status", 0, 0, cmd_status, "" },
	{ "nodes", 0, 0, cmd_nodes, "" },
	{ "owners", 0, -1, cmd_owners, "[PATH...]" },
	{ "locks", 0, -1, cmd_locks, "[PATH...]" },
	{ "handoff", 2, 2, cmd_handoff, "PATH NODE" },
	{ "drain", 0, 1, cmd_drain, "[NODE] [--timeout SECONDS]" },
	{ "resume", 0, 1, cmd_resume, "[NODE]" },
	{ "volumes", 0, 0, cmd_volumes, "" },
	{ "format", 1, 1, cmd_format, "SOURCE [--label LABEL] [--force]" },
	{ "preempt", 2, 2, cmd_preempt, "iscsi://... NODE" },
	{ "metrics", 0, 0, cmd_metrics, "" },
	{ "log", 0, 0, cmd_log, "" },
	{ "replica", 1, -1, cmd_replica,
	  "enable|disable|status|metrics PATH... (see below)" },
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [--socket PATH] [--json] [--timeout SECONDS] "
		"COMMAND [ARGS]\n\nCommands:\n", prog);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].args);
	fprintf(f,
		"\nOptions:\n"
		"  -s, --socket PATH    lockd socket (default $%s, else %s)\n"
		"  -j, --json           machine-readable output\n"
		"  -t, --timeout SECS   handoff/drain: give up after SECS "
		"(default 60)\n"
		"  -l, --label LABEL    format: the new volume's label\n"
		"  -f, --force          format: erase what a block LUN holds\n"
		"  --group G --target HOST:PORT --ca F --cert F --key F\n"
		"  [--interval D] [--rpo D] [--hook CMD]\n"
		"                       replica enable: group (default: the\n"
		"                       directory's name), replica site, TLS\n"
		"                       files, interval 5s..24h (default 30s)\n"
		"  -h, --help           this text\n"
		"\nExit status: 0 success, 1 failure, 2 usage error.  "
		"See csvfs-admin(8).\n", LKM_SOCKET_ENV, LKM_DEFAULT_SOCKET);
}

static int parse_options(struct admin *a, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ "label", required_argument, NULL, 'l' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ "group", required_argument, NULL, 1000 },
		{ "target", required_argument, NULL, 1001 },
		{ "interval", required_argument, NULL, 1002 },
		{ "rpo", required_argument, NULL, 1003 },
		{ "hook", required_argument, NULL, 1004 },
		{ "ca", required_argument, NULL, 1005 },
		{ "cert", required_argument, NULL, 1006 },
		{ "key", required_argument, NULL, 1007 },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	long v;
	int ch;

	while ((ch = getopt_long(argc, argv, "s:jt:l:fh", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			a->socket = optarg;
			break;
		case 'j':
			a->json = true;
			break;
		case 't':
			v = strtol(optarg, &end, 10);
			if (*end || end == optarg || v <= 0 || v > 86400)
				return usage_error("--timeout wants seconds "
						   "(1-86400), not '%s'",
						   optarg);
			a->timeout_s = (int)v;
			break;
		case 'l':
			a->label = optarg;
			break;
		case 'f':
			a->force = true;
			break;
		case 'h':
			usage(stdout);
			exit(EXIT_SUCCESS);
		case 1000: a->rep.group = optarg; break;
		case 1001: a->rep.target = optarg; break;
		case 1002: a->rep.interval = optarg; break;
		case 1003: a->rep.rpo = optarg; break;
		case 1004: a->rep.hook = optarg; break;
		case 1005: a->rep.ca = optarg; break;
		case 1006: a->rep.cert = optarg; break;
		case 1007: a->rep.key = optarg; break;
		default:
			fputc('\n', stderr);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct admin a = { .timeout_s = 60 };
	const struct command *cmd = NULL;
	int r, nargs;

	json_init(&a.j, stdout);
	r = parse_options(&a, argc, argv);
	if (r)
		return r;
	if (optind >= argc)
		return usage_error("no command given");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[optind], commands[i].name) == 0)
			cmd = &commands[i];
	if (!cmd)
		return usage_error("unknown command '%s'", argv[optind]);
	nargs = argc - optind - 1;
	if (nargs < cmd->min_args ||
	    (cmd->max_args >= 0 && nargs > cmd->max_args))
		return usage_error("usage: %s %s %s", prog, cmd->name,
				   cmd->args);
	r = cmd->run(&a, nargs, argv + optind + 1);
	free(a.nodes);
	lkm_close(a.c);
	return r;
}
