// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * rsend.c - a primary for the replica tests, built on libcvreplica: it
 * keeps "VM disks" in a local directory, changes them with a seeded
 * pseudo-random workload (writes, truncates, punched holes), ships each
 * change set as a recovery point, and writes the files' SHA-256 sums of
 * that point (sha256sum format) for the test to check a materialised
 * point against.
 *
 *	rsend [options] point P [--base B]	make and ship point P
 *	rsend [options] status			print the group's points
 *
 * --hash-extents: POINT_END carries hashes of the extents sent, not of
 * the files; --bad-hash: a wrong one for the first file.
 * --seeded: the initial point (no --base) takes the files in DIR as they
 * are and sends only the 1 MiB chunks whose SHA-256 differs from the
 * replica's image (seeded there from a copy with csvfs-replicad seed),
 * then each file's size.
 *
 * A point's operations are kept in DIR/.pending until the replica has
 * applied it, so running the same command again after an interruption
 * (--stop-after, a killed replica) resumes the same point.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "client.h"
#include "clock.h"
#include "tls.h"

#define MAX_OPS 4096

struct op {
	char kind; /* E, T, P */
	unsigned file;
	uint64_t off, len;
};

static struct cvr_client_conf conf = { .host = "127.0.0.1" };
static const char *dir = ".";
static uint64_t group = 1, point, base, stop_after, seed = 1;
static int seeded;	 /* initial copy: send only chunks the replica lacks */
static int hash_extents; /* POINT_END: hashes of the extents, not files */
static int bad_hash;	 /* POINT_END: a wrong hash for file 1 */
static EVP_MD_CTX *ext_ctx[64];
static int64_t time_ns;
static unsigned nfiles = 2, nwrites = 20;
static uint64_t init_size = 3 << 20;
static struct op ops[MAX_OPS];
static unsigned nops;

static uint64_t rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void path_of(unsigned f, char *buf, size_t len)
{
	snprintf(buf, len, "%s/vm%u/disk.img", dir, f);
}

static int open_file(unsigned f, int flags)
{
	char p[4096], d[4096];

	snprintf(d, sizeof(d), "%s/vm%u", dir, f);
	mkdir(d, 0755);
	path_of(f, p, sizeof(p));
	return open(p, flags | O_CLOEXEC, 0644);
}

static uint64_t size_of(int fd)
{
	struct stat st;

	return fstat(fd, &st) ? 0 : (uint64_t)st.st_size;
}

static void fill(uint8_t *p, size_t n, uint64_t s)
{
	s = s * 2654435761u + 1;
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(rng(&s) >> 24);
}

static void add_op(char kind, unsigned f, uint64_t off, uint64_t len)
{
	if (nops < MAX_OPS)
		ops[nops++] = (struct op){ kind, f, off, len };
}

/* Initial contents (a full point): every byte as 1 MiB extents. */
static int mutate_full(uint8_t *buf)
{
	for (unsigned f = 0; f < nfiles; f++) {
		int fd = open_file(f, O_RDWR | O_CREAT | O_TRUNC);
		uint64_t size = init_size + f * 12345;

		if (fd < 0)
			return -errno;
		for (uint64_t off = 0; off < size; off += CVR_DATA_MAX) {
			uint64_t n = size - off > CVR_DATA_MAX ? CVR_DATA_MAX
							       : size - off;

			fill(buf, n, seed * 1000003 + point * 7919 + off);
			if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n)
				return -EIO;
			add_op('E', f, off, n);
		}
		close(fd);
	}
	return 0;
}

static int mutate_one(uint8_t *buf, uint64_t *s)
{
	unsigned f = (unsigned)(rng(s) % nfiles), kind = rng(s) % 10;
	int fd = open_file(f, O_RDWR | O_CREAT);
	uint64_t size = fd < 0 ? 0 : size_of(fd), off, len;
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (kind < 8 || size < 8192) {
		off = (rng(s) % (size + 65536)) & ~511ull;
		len = 1 + rng(s) % (300 << 10);
		fill(buf, len, rng(s));
		if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len)
			rc = -EIO;
		add_op('E', f, off, len);
	} else if (kind == 8) {
		len = size / 2 + rng(s) % (size * 7 / 10);
		if (ftruncate(fd, (off_t)len))
			rc = -errno;
		add_op('T', f, len, 0);
	} else {
		off = rng(s) % size;
		len = 1 + rng(s) % (size - off);
		if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)off, (off_t)len))
			rc = -errno;
		add_op('P', f, off, len);
	}
	close(fd);
	return rc;
}

static int pending_path(char *p, size_t n)
{
	return snprintf(p, n, "%s/.pending", dir) >= (int)n ? -ENAMETOOLONG : 0;
}

static int pending_save(void)
{
	char p[4096];
	FILE *f;

	pending_path(p, sizeof(p));
	f = fopen(p, "w");
	if (!f)
		return -errno;
	fprintf(f, "%" PRIu64 " %" PRIu64 " %" PRId64 "\n", point, base,
		time_ns);
	for (unsigned i = 0; i < nops; i++)
		fprintf(f, "%c %u %" PRIu64 " %" PRIu64 "\n", ops[i].kind,
			ops[i].file, ops[i].off, ops[i].len);
	return fclose(f) ? -errno : 0;
}

/* 1 if a pending point P was loaded, 0 if none. */
static int pending_load(void)
{
	char p[4096], k;
	unsigned long long a, b, c;
	unsigned f;
	long long t;
	FILE *fp;

	pending_path(p, sizeof(p));
	fp = fopen(p, "r");
	if (!fp)
		return 0;
	if (fscanf(fp, "%llu %llu %lld", &a, &b, &t) != 3 || a != point) {
		fclose(fp);
		fprintf(stderr, "rsend: %s is for another point\n", p);
		return -EINVAL;
	}
	base = b;
	time_ns = t;
	nops = 0;
	while (fscanf(fp, " %c %u %llu %llu", &k, &f, &b, &c) == 4)
		add_op(k, f, b, c);
	fclose(fp);
	return 1;
}

static int make_point(uint8_t *buf)
{
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + point;
	int rc = pending_load();

	if (rc)
		return rc < 0 ? rc : 0;
	if (!time_ns) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		time_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	}
	nops = 0;
	if (!base && !seeded)
		rc = mutate_full(buf);
	for (unsigned i = 0; !rc && base && i < nwrites; i++)
		rc = mutate_one(buf, &s);
	return rc ? rc : pending_save();
}

static int file_sha(unsigned f, uint8_t sha[CVR_SHA_LEN], uint64_t *size,
		    uint8_t *buf)
{
	int fd = open_file(f, O_RDONLY);
	uint64_t n;

	if (fd < 0)
		return -errno;
	*size = size_of(fd);
	/* small test files: hash in one go through a temporary buffer */
	uint8_t *all = malloc(*size ? *size : 1);

	n = all && pread(fd, all, *size, 0) == (ssize_t)*size ? *size : 0;
	close(fd);
	if (!all || n != *size) {
		free(all);
		return -EIO;
	}
	cvr_sha256(all, n, sha);
	(void)buf;
	free(all);
	return 0;
}

static int send_ops(struct cvr_client *c, uint8_t *buf)
{
	int rc = 0;

	for (unsigned i = 0; i < nops && !rc; i++) {
		const struct op *o = &ops[i];
		int fd;
		ssize_t n;

		if (stop_after && i == stop_after) {
			sleep(1); /* let the replica take what was sent */
			fprintf(stderr, "rsend: stopping after %u ops\n", i);
			_exit(3);
		}
		if (o->kind == 'T') {
			rc = cvr_client_truncate(c, o->file + 1, o->off);
			continue;
		}
		if (o->kind == 'P') {
			rc = cvr_client_punch(c, o->file + 1, o->off, o->len);
			continue;
		}
		fd = open_file(o->file, O_RDONLY);
		memset(buf, 0, o->len);
		n = fd < 0 ? -1 : pread(fd, buf, o->len, (off_t)o->off);
		if (fd >= 0)
			close(fd);
		if (n < 0)
			return -EIO;
		if (hash_extents)
			EVP_DigestUpdate(ext_ctx[o->file], buf, o->len);
		rc = cvr_client_extent(c, o->file + 1, o->off, buf, o->len);
	}
	return rc;
}

/* A seeded initial copy: the replica holds images copied from the disks
 * some time ago; ask for their chunk hashes and ship only the chunks
 * that differ, then the sizes. */
static int seeded_ops(struct cvr_client *c, uint8_t *buf)
{
	static uint8_t theirs[CVR_HASHES_MAX][CVR_SHA_LEN];
	uint8_t mine[CVR_SHA_LEN];
	unsigned total = 0;
	int rc = 0;

	nops = 0;
	for (unsigned f = 0; f < nfiles && !rc; f++) {
		int fd = open_file(f, O_RDONLY);
		uint64_t size = fd < 0 ? 0 : size_of(fd), isize, n;
		uint32_t count =
			(uint32_t)((size + CVR_DATA_MAX - 1) / CVR_DATA_MAX);

		if (fd < 0)
			return -errno;
		if (count > CVR_HASHES_MAX)
			count = CVR_HASHES_MAX; /* test files are small */
		rc = count ? cvr_client_hashes(c, group, f + 1, 0, CVR_DATA_MAX,
					       count, theirs, &isize)
			   : 0;
		for (uint32_t i = 0; !rc && i < count; i++) {
			uint64_t off = (uint64_t)i * CVR_DATA_MAX;

			n = size - off > CVR_DATA_MAX ? CVR_DATA_MAX
						      : size - off;
			if (pread(fd, buf, n, (off_t)off) != (ssize_t)n)
				rc = -EIO;
			cvr_sha256(buf, n, mine);
			if (memcmp(mine, theirs[i], CVR_SHA_LEN))
				add_op('E', f, off, n);
		}
		add_op('T', f, size, 0);
		total += count;
		close(fd);
	}
	printf("seeded: %u of %u chunks differ\n", nops - nfiles, total);
	return rc;
}

static int write_sums(const uint8_t (*sha)[CVR_SHA_LEN])
{
	char p[4096];
	FILE *f;

	snprintf(p, sizeof(p), "%s/.sums-%" PRIu64, dir, point);
	f = fopen(p, "w");
	if (!f)
		return -errno;
	for (unsigned i = 0; i < nfiles; i++) {
		for (unsigned j = 0; j < CVR_SHA_LEN; j++)
			fprintf(f, "%02x", sha[i][j]);
		fprintf(f, "  vm%u/disk.img\n", i);
	}
	return fclose(f) ? -errno : 0;
}

static struct cvr_client *connect_replica(void)
{
	struct cvr_q_hello h = { .group = group, .generation = 1 };
	struct cvr_r_hello rh;
	struct cvr_client *c;
	char err[512];

	memset(h.primary, 0x11, CVR_ID_LEN);
	snprintf(h.name, sizeof(h.name), "rsend");
	if (cvr_client_open(&conf, &h, &c, &rh, err, sizeof(err))) {
		fprintf(stderr, "rsend: %s\n", err);
		return NULL;
	}
	if (rh.open_point)
		printf("open point %" PRIu64 " at op %" PRIu64 "\n",
		       rh.open_point, rh.open_next_op);
	return c;
}

/* POINT_END's hashes: the files' (also written as the point's sums),
 * or their extents'. */
static void end_hashes(struct cvr_file_hash *h, const uint8_t (*fsha)[32])
{
	for (unsigned f = 0; f < nfiles; f++) {
		h[f].kind = hash_extents ? CVR_HASH_EXTENTS : CVR_HASH_FILE;
		if (hash_extents)
			EVP_DigestFinal_ex(ext_ctx[f], h[f].sha256, NULL);
		else
			memcpy(h[f].sha256, fsha[f], CVR_SHA_LEN);
	}
	if (bad_hash)
		h[0].sha256[0] ^= 1;
}

static int ship(struct cvr_client *c, uint8_t *buf)
{
	static struct cvr_file files[CVR_FILES_MAX];
	static struct cvr_file_hash hashes[CVR_FILES_MAX];
	static uint8_t fsha[CVR_FILES_MAX][CVR_SHA_LEN];
	struct cvr_q_point_begin b = { .group = group,
				       .point = point,
				       .base_point = base,
				       .time_ns = time_ns,
				       .nfiles = nfiles,
				       .files = files };
	struct cvr_q_point_end e = { .nfiles = nfiles, .files = hashes };
	uint64_t next = 0, t0 = cv_now_ms();
	int rc = 0;

	for (unsigned f = 0; f < nfiles && !rc; f++) {
		files[f] = (struct cvr_file){ .file_id = f + 1 };
		snprintf(files[f].name, sizeof(files[f].name), "vm%u/disk.img",
			 f);
		hashes[f] = (struct cvr_file_hash){ .file_id = f + 1 };
		rc = file_sha(f, fsha[f], &files[f].size, buf);
		hashes[f].size = files[f].size;
		ext_ctx[f] = EVP_MD_CTX_new();
		if (!ext_ctx[f] ||
		    !EVP_DigestInit_ex(ext_ctx[f], EVP_sha256(), NULL))
			rc = -ENOMEM;
	}
	if (!rc && seeded && !base)
		rc = seeded_ops(c, buf);
	if (!rc)
		rc = cvr_client_begin(c, &b, &next);
	if (!rc)
		rc = send_ops(c, buf);
	if (!rc) {
		end_hashes(hashes, (const uint8_t(*)[32])fsha);
		rc = cvr_client_end(c, &e);
	}
	for (unsigned f = 0; f < nfiles; f++)
		EVP_MD_CTX_free(ext_ctx[f]);
	if (rc == -EALREADY)
		rc = 0; /* applied before the reply was lost */
	if (rc) {
		fprintf(stderr, "rsend: point %" PRIu64 ": %s\n", point,
			cvr_client_error(c));
		return rc;
	}
	printf("point %" PRIu64 " applied: %u ops, resumed at op %" PRIu64
	       ", %" PRIu64 " bytes in %" PRIu64 " ms\n",
	       point, nops, next, cvr_client_sent(c), cv_now_ms() - t0);
	return write_sums((const uint8_t(*)[32])fsha);
}

static int cmd_status(struct cvr_client *c)
{
	struct cvr_msg *r;
	int rc = cvr_client_status(c, group, &r);

	if (rc) {
		fprintf(stderr, "rsend: status: %s\n", cvr_client_error(c));
		return rc;
	}
	printf("last %" PRIu64 " open %" PRIu64 " next_op %" PRIu64 "\n",
	       r->u.r_status.last_point, r->u.r_status.open_point,
	       r->u.r_status.open_next_op);
	for (uint32_t i = 0; i < r->u.r_status.npoints; i++)
		printf("point %" PRIu64 " %" PRId64 "\n",
		       r->u.r_status.points[i].point,
		       r->u.r_status.points[i].time_ns);
	free(r);
	return 0;
}

static const struct option longopts[] = {
	{ "host", required_argument, NULL, 'H' },
	{ "port", required_argument, NULL, 'p' },
	{ "cert", required_argument, NULL, 'c' },
	{ "key", required_argument, NULL, 'k' },
	{ "ca", required_argument, NULL, 'a' },
	{ "server-name", required_argument, NULL, 'n' },
	{ "group", required_argument, NULL, 'g' },
	{ "dir", required_argument, NULL, 'd' },
	{ "rate", required_argument, NULL, 'r' },
	{ "files", required_argument, NULL, 'F' },
	{ "writes", required_argument, NULL, 'w' },
	{ "size", required_argument, NULL, 'S' },
	{ "seed", required_argument, NULL, 's' },
	{ "time-ns", required_argument, NULL, 't' },
	{ "stop-after", required_argument, NULL, 'x' },
	{ "base", required_argument, NULL, 'b' },
	{ "seeded", no_argument, NULL, 'E' },
	{ "hash-extents", no_argument, NULL, 'X' },
	{ "bad-hash", no_argument, NULL, 'B' },
	{ 0 }
};

static int parse(int argc, char **argv)
{
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'H':
			conf.host = optarg;
			break;
		case 'p':
			conf.port = (uint16_t)atoi(optarg);
			break;
		case 'c':
			conf.cert = optarg;
			break;
		case 'k':
			conf.key = optarg;
			break;
		case 'a':
			conf.ca = optarg;
			break;
		case 'n':
			conf.server_name = optarg;
			break;
		case 'g':
			group = strtoull(optarg, NULL, 0);
			break;
		case 'd':
			dir = optarg;
			break;
		case 'r':
			conf.rate = strtoull(optarg, NULL, 0);
			break;
		case 'F':
			nfiles = (unsigned)atoi(optarg);
			break;
		case 'w':
			nwrites = (unsigned)atoi(optarg);
			break;
		case 'S':
			init_size = strtoull(optarg, NULL, 0);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 't':
			time_ns = strtoll(optarg, NULL, 0);
			break;
		case 'x':
			stop_after = strtoull(optarg, NULL, 0);
			break;
		case 'b':
			base = strtoull(optarg, NULL, 0);
			break;
		case 'E':
			seeded = 1;
			break;
		case 'X':
			hash_extents = 1;
			break;
		case 'B':
			bad_hash = 1;
			break;
		default:
			return -EINVAL;
		}
	}
	if (!nfiles || nfiles > 64 || optind >= argc)
		return -EINVAL;
	return 0;
}

int main(int argc, char **argv)
{
	struct cvr_client *c;
	uint8_t *buf = malloc(CVR_DATA_MAX);
	char p[4096];
	int rc;

	if (!buf || parse(argc, argv) ||
	    (!strcmp(argv[optind], "point") && optind + 2 != argc)) {
		fprintf(stderr, "usage: rsend --cert C --key K --ca A [--port "
				"N] [--dir D] point P [--base B] | status\n");
		free(buf);
		return 2;
	}
	mkdir(dir, 0755);
	if (!strcmp(argv[optind], "point")) {
		point = strtoull(argv[optind + 1], NULL, 0);
		rc = make_point(buf);
		if (rc) {
			fprintf(stderr, "rsend: cannot make point: %s\n",
				strerror(-rc));
			free(buf);
			return 1;
		}
	}
	c = connect_replica();
	if (!c) {
		free(buf);
		return 1;
	}
	if (!strcmp(argv[optind], "status")) {
		rc = cmd_status(c);
	} else {
		rc = ship(c, buf);
		pending_path(p, sizeof(p));
		if (!rc)
			unlink(p);
	}
	cvr_client_close(c);
	free(buf);
	return rc ? 1 : 0;
}
