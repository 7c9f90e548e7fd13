// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * dvw.c - data-verification workload for the fault scenarios.
 *
 * "dvw write" is one writer of a VM-disk-like file on a csvfs mount: it
 * takes write ownership, reads the epoch it was granted from the virtual
 * xattr user.csvfs.epoch, and then stamps 4 KiB blocks, one after the
 * other in a cycle, with (magic, node, epoch, seq, block, checksum).  Each
 * successful pwrite is logged ("W node epoch seq block"), each successful
 * fsync too ("S node epoch seq": every earlier write of this writer is
 * stable), each failure ("E node epoch seq block errno") - the log is on
 * the host, outside csvfs, and line-buffered, so it survives the node
 * being killed.  A writer stops at its first failure: that is what QEMU
 * does (the VM pauses).
 *
 * "dvw check FILE LOG..." reads the whole file (through the backing
 * directory or any mount) and the writers' logs and reports
 *   - a torn block: bad magic or checksum;
 *   - a stale block: the block holds a write that orders before the
 *     newest logged write of that block, by (epoch, seq) - an older
 *     epoch's write landing after a newer epoch wrote it, or a lost write;
 *     a lost write that was fsynced is reported as such;
 *   - a block from an epoch that no writer logged having (a write nobody
 *     acknowledged, or from a writer that had no ownership).
 * It prints one summary line and exits 0 when clean, 1 on a violation,
 * 2 on usage or I/O errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define DVW_BLOCK 4096
#define DVW_MAGIC 0x4456573130424c4bull /* "DVW10BLK" */
#define DVW_MAX_BLOCKS (1u << 20)
#define DVW_NODE_LEN 32

/* On-disk stamp at the start of every block; the rest is filler derived
 * from the stamp, covered by the checksum. */
struct dvw_stamp {
	uint64_t magic;
	uint64_t epoch;
	uint64_t seq;
	uint64_t block;
	char node[DVW_NODE_LEN];
	uint64_t sum; /* FNV-1a of the whole block with sum = 0 */
};

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void stamp_block(uint8_t *buf, const char *node, uint64_t epoch,
			uint64_t seq, uint64_t block)
{
	struct dvw_stamp s = { .magic = DVW_MAGIC, .epoch = epoch,
			       .seq = seq, .block = block };

	snprintf(s.node, sizeof(s.node), "%s", node);
	for (size_t i = sizeof(s); i < DVW_BLOCK; i++)
		buf[i] = (uint8_t)(seq * 131 + i * 7 + block);
	memcpy(buf, &s, sizeof(s));
	s.sum = fnv1a(buf, DVW_BLOCK);
	memcpy(buf, &s, sizeof(s));
}

/* 0: a good stamp in s; 1: all zero (never written); -1: torn. */
static int read_stamp(uint8_t *buf, struct dvw_stamp *s)
{
	uint64_t sum;
	size_t i;

	for (i = 0; i < DVW_BLOCK && !buf[i]; i++)
		;
	if (i == DVW_BLOCK)
		return 1;
	memcpy(s, buf, sizeof(*s));
	if (s->magic != DVW_MAGIC)
		return -1;
	sum = s->sum;
	s->sum = 0;
	memcpy(buf, s, sizeof(*s));
	s->sum = sum;
	s->node[DVW_NODE_LEN - 1] = 0;
	return fnv1a(buf, DVW_BLOCK) == sum ? 0 : -1;
}

/* ---- writer ---- */

struct wopts {
	const char *file, *node, *log;
	unsigned blocks, fsync_every, pause_ms;
	uint64_t count, duration_ms, first_block;
	uint64_t epoch; /* given: no ownership taken (checker self-test) */
	bool direct;	/* O_DIRECT, as QEMU with cache=none */
};

static int usage(void)
{
	fprintf(stderr,
		"usage: dvw write FILE NODE LOG [--blocks N] [--first B] "
		"[--count N] [--duration MS] [--fsync-every N] [--pause MS]\n"
		"                 [--direct 1 (O_DIRECT)]\n"
		"                 [--epoch E (no ownership: self-test only)]\n"
		"       dvw check FILE LOG...\n"
		"       dvw scan FILE BYTE LEN STOPFILE MAXSEC\n");
	return 2;
}

/* The first modifying operation takes ownership: rewrite block first as
 * it is (zeros past the end), then read the epoch granted. */
static int take_ownership(int fd, const struct wopts *o, uint64_t *epoch)
{
	static uint8_t buf[DVW_BLOCK] __attribute__((aligned(4096)));
	off_t off = (off_t)o->first_block * DVW_BLOCK;
	char val[32] = "";
	ssize_t n;

	n = pread(fd, buf, DVW_BLOCK, off);
	if (n < 0)
		return -errno;
	if (n < DVW_BLOCK)
		memset(buf + n, 0, DVW_BLOCK - (size_t)n);
	if (pwrite(fd, buf, DVW_BLOCK, off) != DVW_BLOCK)
		return errno ? -errno : -EIO;
	n = fgetxattr(fd, "user.csvfs.epoch", val, sizeof(val) - 1);
	if (n <= 0)
		return n < 0 ? -errno : -ENODATA;
	val[n] = 0;
	*epoch = strtoull(val, NULL, 10);
	return *epoch ? 0 : -ENODATA;
}

static int write_loop(int fd, FILE *log, const struct wopts *o,
		      uint64_t epoch)
{
	static uint8_t buf[DVW_BLOCK] __attribute__((aligned(4096)));
	uint64_t t_end = o->duration_ms ? now_ms() + o->duration_ms : 0;
	/* seq grows across writers of one host too (two writers of one
	 * node may share an epoch when no hand-off came between them) */
	uint64_t base = now_ms() * 1000, seq, blk, i;
	int saverr;

	for (i = 0; !o->count || i < o->count; i++) {
		if (t_end && now_ms() >= t_end)
			break;
		seq = base + i;
		blk = o->first_block + i % o->blocks;
		stamp_block(buf, o->node, epoch, seq, blk);
		if (pwrite(fd, buf, DVW_BLOCK, (off_t)blk * DVW_BLOCK) !=
		    DVW_BLOCK) {
			saverr = errno ? errno : EIO;
			fprintf(log, "E %s %" PRIu64 " %" PRIu64 " %" PRIu64
				" %d %" PRIu64 "\n", o->node, epoch, seq, blk,
				saverr, now_ms());
			return -saverr;
		}
		fprintf(log, "W %s %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
			o->node, epoch, seq, blk);
		if (o->fsync_every && (i + 1) % o->fsync_every == 0) {
			if (fsync(fd) < 0) {
				saverr = errno;
				fprintf(log, "E %s %" PRIu64 " %" PRIu64
					" fsync %d %" PRIu64 "\n", o->node,
					epoch, seq, saverr, now_ms());
				return -saverr;
			}
			fprintf(log, "S %s %" PRIu64 " %" PRIu64 "\n", o->node,
				epoch, seq);
		}
		if (o->pause_ms)
			usleep(o->pause_ms * 1000);
	}
	return 0;
}

static int parse_wopts(int argc, char **argv, struct wopts *o)
{
	if (argc < 5)
		return -EINVAL;
	*o = (struct wopts){ .file = argv[2], .node = argv[3], .log = argv[4],
			     .blocks = 64, .fsync_every = 8 };
	for (int i = 5; i < argc; i += 2) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			return -EINVAL;
		if (!strcmp(k, "--blocks"))
			o->blocks = (unsigned)strtoul(v, NULL, 0);
		else if (!strcmp(k, "--first"))
			o->first_block = strtoull(v, NULL, 0);
		else if (!strcmp(k, "--count"))
			o->count = strtoull(v, NULL, 0);
		else if (!strcmp(k, "--duration"))
			o->duration_ms = strtoull(v, NULL, 0);
		else if (!strcmp(k, "--fsync-every"))
			o->fsync_every = (unsigned)strtoul(v, NULL, 0);
		else if (!strcmp(k, "--epoch"))
			o->epoch = strtoull(v, NULL, 0);
		else if (!strcmp(k, "--pause"))
			o->pause_ms = (unsigned)strtoul(v, NULL, 0);
		else if (!strcmp(k, "--direct"))
			o->direct = strtoul(v, NULL, 0) != 0;
		else
			return -EINVAL;
	}
	if (!o->blocks || o->blocks > DVW_MAX_BLOCKS)
		return -EINVAL;
	return 0;
}

static int cmd_write(int argc, char **argv)
{
	struct wopts o;
	uint64_t epoch = 0, t0;
	FILE *log;
	int fd, ret;

	if (parse_wopts(argc, argv, &o))
		return usage();
	log = fopen(o.log, "a");
	if (!log) {
		fprintf(stderr, "dvw: %s: %s\n", o.log, strerror(errno));
		return 2;
	}
	setvbuf(log, NULL, _IOLBF, 0);
	fd = open(o.file, O_RDWR | O_CREAT | (o.direct ? O_DIRECT : 0), 0644);
	if (fd < 0) {
		fprintf(stderr, "dvw: %s: %s\n", o.file, strerror(errno));
		fclose(log);
		return 2;
	}
	t0 = now_ms();
	epoch = o.epoch;
	ret = o.epoch ? 0 : take_ownership(fd, &o, &epoch);
	if (ret) {
		fprintf(log, "E %s 0 0 acquire %d %" PRIu64 "\n", o.node, -ret,
			now_ms());
		fprintf(stderr, "dvw: %s: taking ownership: %s\n", o.file,
			strerror(-ret));
		goto out;
	}
	fprintf(log, "A %s %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", o.node,
		epoch, t0, now_ms());
	ret = write_loop(fd, log, &o, epoch);
	if (!ret && fsync(fd) < 0)
		ret = -errno;
	if (!ret)
		fprintf(log, "D %s %" PRIu64 "\n", o.node, epoch);
	else
		fprintf(stderr, "dvw: %s: %s (epoch %" PRIu64 ")\n", o.file,
			strerror(-ret), epoch);
out:
	close(fd);
	fclose(log);
	return ret ? 3 : 0;
}

/* ---- scanner ---- */

/*
 * "dvw scan": one descriptor, kept open, reading [0, LEN) over and over
 * until STOPFILE exists (at most MAXSEC seconds); every byte must be
 * BYTE or 0 (a hole, or past the end).  Another byte is another file's:
 * exit 1 naming it.  A reader that keeps its file open is one whose
 * cached map and size outlive another node's truncation.
 */
static int cmd_scan(int argc, char **argv)
{
	static uint8_t buf[1 << 20] __attribute__((aligned(4096)));
	unsigned byte, maxsec;
	uint64_t len, t_end, scans = 0;
	int fd;

	if (argc != 7)
		return usage();
	byte = (unsigned)strtoul(argv[3], NULL, 0);
	len = strtoull(argv[4], NULL, 0);
	maxsec = (unsigned)strtoul(argv[6], NULL, 0);
	fd = open(argv[2], O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "dvw: %s: %s\n", argv[2], strerror(errno));
		return 2;
	}
	t_end = now_ms() + (uint64_t)maxsec * 1000;
	while (access(argv[5], F_OK) && now_ms() < t_end) {
		for (uint64_t off = 0; off < len; off += sizeof(buf)) {
			ssize_t n = pread(fd, buf, sizeof(buf), (off_t)off);

			for (ssize_t i = 0; i < n; i++)
				if (buf[i] && buf[i] != byte) {
					printf("scan %" PRIu64 ": byte 0x%02x "
					       "at %" PRIu64 "\n",
					       scans, buf[i], off + (uint64_t)i);
					close(fd);
					return 1;
				}
			if (n <= 0)
				break;
		}
		scans++;
	}
	printf("scans: %" PRIu64 "%s\n", scans,
	       access(argv[5], F_OK) ? "" : ", until the writers were done");
	close(fd);
	return 0;
}

/* ---- checker ---- */

struct blk_rec {
	uint64_t epoch, seq; /* newest logged write (0 0: none) */
	bool synced;
};

struct epoch_rec {
	uint64_t epoch;
	char node[DVW_NODE_LEN];
	uint64_t synced_seq; /* highest S line */
};

struct check {
	struct blk_rec *blk;
	uint64_t nblk;
	struct epoch_rec ep[256];
	unsigned nep;
	unsigned long torn, stale, lost_synced, unknown, written, logged;
};

static struct epoch_rec *epoch_get(struct check *c, uint64_t e,
				   const char *node)
{
	for (unsigned i = 0; i < c->nep; i++)
		if (c->ep[i].epoch == e)
			return &c->ep[i];
	if (c->nep == sizeof(c->ep) / sizeof(c->ep[0]))
		return NULL;
	c->ep[c->nep] = (struct epoch_rec){ .epoch = e };
	snprintf(c->ep[c->nep].node, DVW_NODE_LEN, "%s", node);
	return &c->ep[c->nep++];
}

static bool newer(uint64_t e1, uint64_t s1, uint64_t e2, uint64_t s2)
{
	return e1 > e2 || (e1 == e2 && s1 > s2);
}

static int blk_note(struct check *c, uint64_t b, uint64_t e, uint64_t s)
{
	if (b >= DVW_MAX_BLOCKS)
		return -EINVAL;
	if (b >= c->nblk) {
		uint64_t n = b + 1024;
		struct blk_rec *p = realloc(c->blk, n * sizeof(*p));

		if (!p)
			return -ENOMEM;
		memset(p + c->nblk, 0, (n - c->nblk) * sizeof(*p));
		c->blk = p;
		c->nblk = n;
	}
	if (newer(e, s, c->blk[b].epoch, c->blk[b].seq)) {
		c->blk[b].epoch = e;
		c->blk[b].seq = s;
	}
	return 0;
}

static int read_log(struct check *c, const char *path)
{
	char line[256], node[DVW_NODE_LEN + 1];
	uint64_t e, s, b;
	struct epoch_rec *r;
	FILE *f = fopen(path, "r");

	if (!f) {
		fprintf(stderr, "dvw: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "W %32s %" SCNu64 " %" SCNu64 " %" SCNu64,
			   node, &e, &s, &b) == 4) {
			if (!epoch_get(c, e, node) || blk_note(c, b, e, s))
				goto bad;
			c->logged++;
		} else if (sscanf(line, "S %32s %" SCNu64 " %" SCNu64, node,
				  &e, &s) == 3) {
			r = epoch_get(c, e, node);
			if (!r)
				goto bad;
			if (s > r->synced_seq)
				r->synced_seq = s;
		} else if (sscanf(line, "A %32s %" SCNu64, node, &e) == 2) {
			if (!epoch_get(c, e, node))
				goto bad;
		}
	}
	fclose(f);
	return 0;
bad:
	fprintf(stderr, "dvw: %s: bad or too many entries\n", path);
	fclose(f);
	return -EINVAL;
}

static struct epoch_rec *epoch_find(struct check *c, uint64_t e)
{
	for (unsigned i = 0; i < c->nep; i++)
		if (c->ep[i].epoch == e)
			return &c->ep[i];
	return NULL;
}

static void check_block(struct check *c, uint64_t b, uint8_t *buf)
{
	struct blk_rec none = { 0 }, *want = b < c->nblk ? &c->blk[b] : &none;
	struct epoch_rec *we = epoch_find(c, want->epoch);
	struct dvw_stamp s;
	int r = read_stamp(buf, &s);
	bool synced = we && want->seq <= we->synced_seq;

	if (r < 0) {
		c->torn++;
		printf("TORN block %" PRIu64 "\n", b);
		return;
	}
	if (r == 1) {
		if (want->epoch) {
			c->stale++;
			c->lost_synced += synced;
			printf("LOST block %" PRIu64 ": zero, but %s wrote it "
			       "(epoch %" PRIu64 " seq %" PRIu64 "%s)\n", b,
			       we ? we->node : "?", want->epoch, want->seq,
			       synced ? ", fsynced" : "");
		}
		return;
	}
	c->written++;
	if (s.block != b) {
		c->torn++;
		printf("MISPLACED block %" PRIu64 " holds block %" PRIu64 "\n",
		       b, s.block);
		return;
	}
	if (!epoch_find(c, s.epoch)) {
		c->unknown++;
		printf("UNKNOWN block %" PRIu64 ": epoch %" PRIu64 " (%s) seq %"
		       PRIu64 " in no writer's log\n", b, s.epoch, s.node,
		       s.seq);
	}
	if (newer(want->epoch, want->seq, s.epoch, s.seq)) {
		c->stale++;
		c->lost_synced += synced;
		printf("%s block %" PRIu64 ": holds %s epoch %" PRIu64 " seq %"
		       PRIu64 ", but %s wrote epoch %" PRIu64 " seq %" PRIu64
		       "%s\n", s.epoch < want->epoch ? "STALE" : "LOST", b,
		       s.node, s.epoch, s.seq, we ? we->node : "?",
		       want->epoch, want->seq, synced ? " (fsynced)" : "");
	}
}

static int cmd_check(int argc, char **argv)
{
	static uint8_t buf[DVW_BLOCK];
	struct check c = { 0 };
	uint64_t b = 0, fblocks;
	ssize_t n;
	int fd, ret = 2;

	if (argc < 3)
		return usage();
	for (int i = 3; i < argc; i++)
		if (read_log(&c, argv[i]))
			goto out;
	fd = open(argv[2], O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "dvw: %s: %s\n", argv[2], strerror(errno));
		goto out;
	}
	while ((n = pread(fd, buf, DVW_BLOCK, (off_t)b * DVW_BLOCK)) > 0) {
		if (n < DVW_BLOCK)
			memset(buf + n, 0, DVW_BLOCK - (size_t)n);
		check_block(&c, b++, buf);
	}
	close(fd);
	if (n < 0) {
		fprintf(stderr, "dvw: reading %s: %s\n", argv[2],
			strerror(errno));
		goto out;
	}
	fblocks = b;
	for (; b < c.nblk; b++)
		if (c.blk[b].epoch) {
			memset(buf, 0, sizeof(buf));
			check_block(&c, b, buf);
		}
	printf("dvw check: %" PRIu64 " blocks, %lu stamped, %lu writes logged "
	       "by %u epochs; torn %lu, stale/lost %lu (fsynced %lu), unknown "
	       "%lu\n", fblocks, c.written, c.logged, c.nep, c.torn, c.stale,
	       c.lost_synced, c.unknown);
	ret = (c.torn || c.stale || c.unknown) ? 1 : 0;
out:
	free(c.blk);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "write"))
		return cmd_write(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "check"))
		return cmd_check(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "scan"))
		return cmd_scan(argc, argv);
	return usage();
}
