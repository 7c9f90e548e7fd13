// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lm_bench - figures for the lock manager (printed, not pass/fail).
 *
 *	lm_bench memory [--resources N]
 *		In-process lm_state: a one-node table made ready (confchg,
 *		hello, state transfer from itself), then N distinct
 *		resources acquired.  Prints heap bytes per resource
 *		(mallinfo2, or the RSS delta when the allocator does not
 *		report, as under ASan), apply rate and snapshot size.
 *	lm_bench acquire --socket PATH [--count N] [--volume UUID]
 *		Uncontended acquire + release through liblockmgr against a
 *		running lockd: rate and latency median / p99.
 *	lm_bench pingpong --socket PATH --volume UUID --fileid F [--count N]
 *		Run one on each of two nodes: each acquires F, and on a
 *		revoke releases it and acquires again, so ownership
 *		ping-pongs.  Prints the hand-off latency each side observed
 *		(acquire request -> grant) and hand-offs per second.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lkm.h"
#include "lm_state.h"

struct opts {
	const char *socket;
	uint8_t volume[LM_VOLUME_LEN];
	uint64_t fileid;
	long count;
	long resources;
	int idle_ms;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Prints "LABEL: median X us, p99 Y us, max Z us (n samples)". */
static void print_latency(const char *label, double *v, size_t n)
{
	if (n == 0) {
		printf("%-22s no samples\n", label);
		return;
	}
	qsort(v, n, sizeof(*v), cmp_double);
	printf("%-22s median %.1f us, p99 %.1f us, max %.1f us (%zu samples)\n",
	       label, v[n / 2] * 1e6, v[(n * 99) / 100] * 1e6, v[n - 1] * 1e6,
	       n);
}

/* ------------------------------------------------------------ memory */

static long rss_bytes(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return 0;
	if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
		rss = 0;
	fclose(f);
	return rss * sysconf(_SC_PAGESIZE);
}

static size_t heap_bytes(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

/* Send this node's snapshot when the state asks (LM_EV_SYNC_DONOR). */
static int donate(struct lm_state *st, struct lm_evq *q)
{
	struct lm_cmsg m = { .type = LM_C_SYNC_DATA };
	uint8_t *snap;
	size_t len, off = 0;
	uint32_t idx = 0;
	int r;

	r = lm_state_snapshot(st, &snap, &len);
	if (r < 0)
		return r;
	while (off < len) {
		m.u.sync_data.index = idx++;
		m.u.sync_data.len = (uint32_t)(len - off > LM_SYNC_CHUNK ?
					       LM_SYNC_CHUNK : len - off);
		m.u.sync_data.data = snap + off;
		off += m.u.sync_data.len;
		r = lm_state_apply_msg(st, 1, &m, q);
		if (r < 0)
			goto out;
	}
	m = (struct lm_cmsg){ .type = LM_C_SYNC_DONE };
	m.u.sync_done.chunks = idx;
	m.u.sync_done.total_len = len;
	m.u.sync_done.checksum = lm_checksum64(LM_CHECKSUM_SEED, snap, len);
	r = lm_state_apply_msg(st, 1, &m, q);
out:
	free(snap);
	return r;
}

/* A one-node table, quorate and ready. */
static int make_ready(struct lm_state *st)
{
	static const uint32_t one[] = { 1 };
	struct lm_confchg cc = { .members = one, .n_members = 1,
				 .joined = one, .n_joined = 1 };
	struct lm_cmsg m = { .type = LM_C_SYNC_HELLO };
	struct lm_status_info si;
	struct lm_evq q;
	int r;

	lm_evq_init(&q);
	r = lm_state_apply_confchg(st, &cc, &q);
	m.u.hello.n_members = 1;
	m.u.hello.members[0] = 1;
	m.u.hello.votes = 1;
	m.u.hello.expected_votes = 1;
	snprintf(m.u.hello.name, sizeof(m.u.hello.name), "n1");
	if (r == 0)
		r = lm_state_apply_msg(st, 1, &m, &q);
	for (size_t i = 0; r == 0 && i < q.n; i++)
		if (q.ev[i].type == LM_EV_SYNC_DONOR && q.ev[i].node == 1)
			r = donate(st, &q);
	lm_evq_free(&q);
	if (r < 0)
		return r;
	lm_state_status(st, &si);
	return si.ready ? 0 : -EAGAIN;
}

static int bench_memory(const struct opts *o)
{
	struct lm_cmsg m = { .type = LM_C_ACQUIRE };
	struct lm_state *st = lm_state_new();
	struct lm_status_info si;
	size_t heap0, heap1, snap_len;
	long rss0, rss1;
	uint8_t *snap;
	struct lm_evq q;
	double t0, t1;
	int r;

	if (!st || make_ready(st) < 0) {
		fprintf(stderr, "lm_bench: cannot make a ready lm_state\n");
		return 1;
	}
	lm_evq_init(&q);
	memset(m.u.acquire.res.volume, 0xab, LM_VOLUME_LEN);
	heap0 = heap_bytes();
	rss0 = rss_bytes();
	t0 = now_s();
	for (long i = 0; i < o->resources; i++) {
		m.u.acquire.req_id = (uint64_t)i + 1;
		m.u.acquire.res.fileid = (uint64_t)i + 1;
		r = lm_state_apply_msg(st, 1, &m, &q);
		if (r < 0) {
			fprintf(stderr, "lm_bench: apply: %s\n", strerror(-r));
			return 1;
		}
		lm_evq_reset(&q);
	}
	t1 = now_s();
	heap1 = heap_bytes();
	rss1 = rss_bytes();
	lm_state_status(st, &si);
	if (lm_state_snapshot(st, &snap, &snap_len) < 0)
		snap_len = 0;
	else
		free(snap);
	printf("resources:             %" PRIu64 " (epoch %" PRIu64 ")\n",
	       si.n_resources, si.epoch);
	printf("apply rate:            %.0f acquires/s (%.2f us each)\n",
	       (double)o->resources / (t1 - t0),
	       (t1 - t0) * 1e6 / (double)o->resources);
	if (heap1 > heap0)
		printf("heap:                  %.1f bytes/resource "
		       "(mallinfo2, %.1f MiB total)\n",
		       (double)(heap1 - heap0) / (double)o->resources,
		       (double)(heap1 - heap0) / 1048576.0);
	else
		printf("heap:                  not reported by the allocator\n");
	printf("rss delta:             %.1f bytes/resource (%.1f MiB)\n",
	       (double)(rss1 - rss0) / (double)o->resources,
	       (double)(rss1 - rss0) / 1048576.0);
	printf("snapshot:              %zu bytes, %.1f bytes/resource, "
	       "%zu transfer chunks\n", snap_len,
	       (double)snap_len / (double)o->resources,
	       (snap_len + LM_SYNC_CHUNK - 1) / LM_SYNC_CHUNK);
	lm_evq_free(&q);
	lm_state_free(st);
	return 0;
}

/* ----------------------------------------------------------- acquire */

static int connect_csvfs(const struct opts *o, const char *label,
			 struct lkm_client **c)
{
	struct lkm_hello h = { .kind = LM_CLIENT_CSVFS, .label = label };
	int r;

	memcpy(h.volume, o->volume, LM_VOLUME_LEN);
	r = lkm_connect(o->socket, &h, 5000, c);
	if (r < 0)
		fprintf(stderr, "lm_bench: cannot reach csvfs-lockd: %s\n",
			lkm_strerror(r));
	return r;
}

static int bench_acquire(const struct opts *o)
{
	struct lkm_client *c;
	double *acq, *rel, t0, t1, t;
	uint64_t epoch;
	int r = 0;

	if (connect_csvfs(o, "lm_bench acquire", &c) < 0)
		return 1;
	acq = calloc((size_t)o->count, sizeof(*acq));
	rel = calloc((size_t)o->count, sizeof(*rel));
	if (!acq || !rel) {
		r = -ENOMEM;
		goto out;
	}
	t0 = now_s();
	for (long i = 0; i < o->count; i++) {
		uint64_t fid = o->fileid + (uint64_t)(i % 1024);

		t = now_s();
		r = lkm_acquire(c, fid, 0, 10000, &epoch);
		acq[i] = now_s() - t;
		if (r < 0)
			break;
		t = now_s();
		r = lkm_release(c, fid, epoch, 10000);
		rel[i] = now_s() - t;
		if (r < 0)
			break;
	}
	t1 = now_s();
	if (r < 0)
		goto out;
	printf("node:                  %s\n", lkm_server(c)->node_name);
	printf("acquire+release:       %.0f pairs/s (%ld pairs in %.2f s)\n",
	       (double)o->count / (t1 - t0), o->count, t1 - t0);
	print_latency("acquire latency:", acq, (size_t)o->count);
	print_latency("release latency:", rel, (size_t)o->count);
out:
	if (r < 0)
		fprintf(stderr, "lm_bench: %s\n", lkm_strerror(r));
	free(acq);
	free(rel);
	lkm_close(c);
	return r < 0;
}

/* ---------------------------------------------------------- pingpong */

struct pingpong {
	pthread_mutex_t m;
	pthread_cond_t cv;	/* CLOCK_MONOTONIC */
	uint64_t fileid;
	unsigned revokes;	/* protected by m */
	bool broken;		/* protected by m */
};

static void pp_event(const struct lkm_event *ev, void *arg)
{
	struct pingpong *pp = arg;

	pthread_mutex_lock(&pp->m);
	if (ev->type == LKM_EV_BROKEN)
		pp->broken = true;
	else if (ev->type == LKM_EV_REVOKE && ev->fileid == pp->fileid)
		pp->revokes++;
	pthread_cond_broadcast(&pp->cv);
	pthread_mutex_unlock(&pp->m);
}

/* Wait for a revoke; false after idle_ms without one. */
static bool pp_wait_revoke(struct pingpong *pp, int idle_ms)
{
	struct timespec d;
	bool got;

	clock_gettime(CLOCK_MONOTONIC, &d);
	d.tv_sec += idle_ms / 1000;
	d.tv_nsec += (long)(idle_ms % 1000) * 1000000L;
	if (d.tv_nsec >= 1000000000L) {
		d.tv_sec++;
		d.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&pp->m);
	while (!pp->revokes && !pp->broken)
		if (pthread_cond_timedwait(&pp->cv, &pp->m, &d) == ETIMEDOUT)
			break;
	got = pp->revokes > 0;
	pp->revokes = 0;
	pthread_mutex_unlock(&pp->m);
	return got;
}

static void pp_report(double *lat, size_t n, size_t handoffs, double secs)
{
	printf("hand-offs:             %zu in %.2f s: %.1f hand-offs/s "
	       "(this side)\n", handoffs, secs, (double)handoffs / secs);
	print_latency("hand-off latency:", lat, n);
}

static int pp_loop(const struct opts *o, struct lkm_client *c,
		   struct pingpong *pp, double *lat, size_t *n)
{
	double t, t_first = 0;
	uint64_t epoch;
	int r;

	for (long i = 0; i < o->count; i++) {
		t = now_s();
		r = lkm_acquire(c, o->fileid, 0, 30000, &epoch);
		if (r < 0) {
			fprintf(stderr, "lm_bench: acquire: %s\n",
				lkm_strerror(r));
			return r;
		}
		if (i == 0)
			t_first = now_s();
		else
			lat[(*n)++] = now_s() - t;
		if (!pp_wait_revoke(pp, o->idle_ms))
			break; /* the peer is done */
		r = lkm_release(c, o->fileid, epoch, 10000);
		if (r < 0) {
			fprintf(stderr, "lm_bench: release: %s\n",
				lkm_strerror(r));
			return r;
		}
	}
	pp_report(lat, *n, *n, now_s() - t_first);
	return 0;
}

static int bench_pingpong(const struct opts *o)
{
	struct pingpong pp = { .fileid = o->fileid };
	pthread_condattr_t ca;
	struct lkm_client *c;
	double *lat;
	size_t n = 0;
	int r;

	pthread_mutex_init(&pp.m, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&pp.cv, &ca);
	if (connect_csvfs(o, "lm_bench pingpong", &c) < 0)
		return 1;
	r = lkm_start_events(c, pp_event, &pp);
	lat = calloc((size_t)o->count, sizeof(*lat));
	if (r < 0 || !lat) {
		fprintf(stderr, "lm_bench: %s\n", lkm_strerror(r ? r : -ENOMEM));
		r = -ENOMEM;
		goto out;
	}
	printf("node:                  %s, file %" PRIu64 "\n",
	       lkm_server(c)->node_name, o->fileid);
	r = pp_loop(o, c, &pp, lat, &n);
out:
	free(lat);
	lkm_close(c);
	return r < 0;
}

/* -------------------------------------------------------------- main */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: lm_bench memory [--resources N]\n"
		"       lm_bench acquire --socket PATH [--count N] "
		"[--volume UUID]\n"
		"       lm_bench pingpong --socket PATH --volume UUID "
		"--fileid F [--count N] [--idle-ms MS]\n");
}

static int parse_uuid(const char *s, uint8_t *out)
{
	unsigned v;
	int n = 0;

	for (; *s && n < LM_VOLUME_LEN; s++) {
		if (*s == '-')
			continue;
		if (sscanf(s, "%2x", &v) != 1)
			return -EINVAL;
		out[n++] = (uint8_t)v;
		s++;
	}
	return n == LM_VOLUME_LEN && !*s ? 0 : -EINVAL;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "volume", required_argument, NULL, 'v' },
		{ "fileid", required_argument, NULL, 'f' },
		{ "count", required_argument, NULL, 'n' },
		{ "resources", required_argument, NULL, 'r' },
		{ "idle-ms", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .count = 10000, .resources = 100000,
			  .fileid = 1000000, .idle_ms = 3000 };
	const char *mode;
	int ch;

	memset(o.volume, 0xbe, sizeof(o.volume));
	while ((ch = getopt_long(argc, argv, "s:v:f:n:r:i:h", lo, NULL)) != -1) {
		switch (ch) {
		case 's':
			o.socket = optarg;
			break;
		case 'v':
			if (parse_uuid(optarg, o.volume) < 0) {
				fprintf(stderr, "lm_bench: bad UUID %s\n",
					optarg);
				return 2;
			}
			break;
		case 'f':
			o.fileid = strtoull(optarg, NULL, 0);
			break;
		case 'n':
			o.count = atol(optarg);
			break;
		case 'r':
			o.resources = atol(optarg);
			break;
		case 'i':
			o.idle_ms = atoi(optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc || o.count <= 0 || o.resources <= 0) {
		usage(stderr);
		return 2;
	}
	mode = argv[optind];
	if (strcmp(mode, "memory") == 0)
		return bench_memory(&o);
	if (strcmp(mode, "acquire") == 0)
		return bench_acquire(&o);
	if (strcmp(mode, "pingpong") == 0)
		return bench_pingpong(&o);
	usage(stderr);
	return 2;
}
