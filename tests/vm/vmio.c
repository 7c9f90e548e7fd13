// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vmio.c - init (PID 1) of the test guest of tests/vm: verifiable writes
 * to its virtio disk, checked again at the next boot.
 *
 * tests/vm/build-guest.sh links it with -static into an initramfs next to
 * the virtio modules of a Debian kernel.  At boot it mounts /proc, /sys
 * and /dev, loads the modules named in /modules.list (in that order),
 * waits for /dev/vda, and then:
 *
 *  1. verifies the disk.  Block 0 is the header (magic, generation = boot
 *     count, slot count, checksum); blocks 1..slots are data blocks, each
 *     carrying (magic, generation, sequence number, slot, payload,
 *     checksum).  Write s of generation g goes to slot s % slots.  The
 *     kernel command line says up to which sequence number the host saw
 *     each earlier generation's writes acknowledged (vmio.acked=g:s,...).
 *     For every slot the newest acknowledged write must be there, or a
 *     newer write of the same slot.  A block that fails its checksum
 *     (torn), holds an older write (stale), is blank although a write was
 *     acknowledged (lost), names another slot (misplaced), or a write that
 *     cannot have been issued yet (future) fails the verify;
 *  2. starts a new generation: header with gen + 1, flushed;
 *  3. writes data blocks with O_DIRECT, one every vmio.pace ms; after every
 *     vmio.flush writes it calls fdatasync (a FLUSH on the virtio disk) and
 *     prints which sequence numbers are durable;
 *  4. powers off on "stop" read from the console, after vmio.blocks writes
 *     (0: no limit), or right after the verify with vmio.verify=only.
 * vmio.verify=unknown: the host cannot pass what was acknowledged (a
 * cluster manager restarts the guest with the command line of its domain
 * definition): every write of an earlier generation counts as issued, so
 * only torn and misplaced blocks fail the verify; a later boot with
 * vmio.acked checks for lost and stale writes.
 *
 * Console lines (one each, machine-readable, all starting "VMIO "):
 *   VMIO BAD slot=J reason=R have=G:S want=G:S      (at most 16)
 *   VMIO VERIFY result=ok|fail prevgen=G slots=N acked=A newer=W blank=B
 *        stale=S lost=L torn=T misplaced=M future=F
 *   VMIO GEN gen=G
 *   VMIO ACK gen=G seq=S t=MS     every write 0..S of generation G is durable
 *   VMIO ERROR op=O seq=S errno=E                   (then power off)
 *   VMIO STOPPED gen=G seq=S / VMIO DONE gen=G seq=S (then power off)
 *   VMIO STATUS gen=G next=S
 * Console input lines: "stop", "status".
 *
 * Single-threaded; every buffer is owned by the function that allocates it
 * except the I/O buffer in struct vmio (freed never: PID 1 never exits).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define VMIO_BLOCK    4096
#define VMIO_CHUNK    64 /* blocks per read while verifying */
#define VMIO_MAXGEN   64 /* generations vmio.acked may name */
#define VMIO_MAXBAD   16 /* BAD lines printed */
#define VMIO_DATA_MAG "VMIOBLK1"
#define VMIO_HEAD_MAG "VMIOHDR1"

/* One on-disk block: data block or header (slot = slot count there). */
struct vmio_block {
	char magic[8];
	uint64_t gen;
	uint64_t seq;
	uint64_t slot;
	uint8_t payload[VMIO_BLOCK - 40];
	uint64_t sum; /* FNV-1a 64 of every byte before it */
};

_Static_assert(sizeof(struct vmio_block) == VMIO_BLOCK, "block size");

struct vmio_conf {
	uint64_t blocks;		/* writes before DONE; 0: no limit */
	uint64_t flush;			/* writes per fdatasync */
	unsigned pace_ms;		/* pause between writes */
	uint64_t slots;			/* data slots on a blank disk */
	bool verify_only;		/* power off after the verify */
	bool acks_unknown;		/* vmio.verify=unknown */
	int64_t acked[VMIO_MAXGEN + 1]; /* [g]: last acked seq, -1 none */
};

struct vmio_count {
	uint64_t acked, newer, blank, stale, lost, torn, misplaced, future;
};

struct vmio {
	struct vmio_conf conf;
	int fd;			/* /dev/vda, O_RDWR | O_DIRECT */
	uint64_t prevgen;	/* generation on disk at boot */
	uint64_t gen;		/* this boot's generation */
	uint64_t slots;		/* data slots (from the header if any) */
	uint64_t next;		/* next sequence number to write */
	uint64_t durable;	/* writes before this one are acked */
	struct vmio_block *buf; /* VMIO_CHUNK aligned blocks */
	char line[128];		/* console input being assembled */
	size_t linelen;
};

static uint64_t ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* say: one console line; a single write(2) so lines stay whole. */
static void say(const char *fmt, ...)
{
	char b[256];
	va_list ap;
	int n;

	memcpy(b, "VMIO ", 5);
	va_start(ap, fmt);
	n = vsnprintf(b + 5, sizeof(b) - 6, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	n += 5;
	if (n > (int)sizeof(b) - 1)
		n = sizeof(b) - 1;
	b[n++] = '\n';
	if (write(STDOUT_FILENO, b, n) < 0)
		return;
}

/* power_off: QEMU runs with -no-reboot, so a reset ends it (with or
 * without ACPI in the guest). */
static void power_off(void)
{
	sync();
	reboot(RB_AUTOBOOT);
	for (;;)
		pause();
}

static uint64_t fnv1a(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = 0xcbf29ce484222325ULL;

	while (n--) {
		h ^= *b++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* block_fill: a block for (gen, seq, slot) with magic MAG, summed. */
static void block_fill(struct vmio_block *b, const char *mag, uint64_t gen,
		       uint64_t seq, uint64_t slot)
{
	uint64_t x = (gen << 40) ^ (seq << 8) ^ slot ^ 0x9e3779b97f4a7c15ULL;
	size_t i;

	memcpy(b->magic, mag, 8);
	b->gen = gen;
	b->seq = seq;
	b->slot = slot;
	for (i = 0; i + 8 <= sizeof(b->payload); i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(b->payload + i, &x, 8);
	}
	b->sum = fnv1a(b, offsetof(struct vmio_block, sum));
}

static bool block_valid(const struct vmio_block *b, const char *mag)
{
	return memcmp(b->magic, mag, 8) == 0 &&
	       b->sum == fnv1a(b, offsetof(struct vmio_block, sum));
}

static bool block_blank(const struct vmio_block *b)
{
	const uint8_t *p = (const uint8_t *)b;
	size_t i;

	for (i = 0; i < sizeof(*b); i++)
		if (p[i])
			return false;
	return true;
}

/* ------------------------------------------------------------------ */
/* Start-up: file systems, console, modules, command line, the disk.   */

static void setup_console(void)
{
	struct termios t;
	int fd;

	fd = open("/dev/console", O_RDWR | O_NOCTTY);
	if (fd < 0)
		return;
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	if (fd > 2)
		close(fd);
	/* Commands are read a line at a time, not echoed into the log. */
	if (tcgetattr(0, &t) == 0) {
		t.c_lflag &= ~(ECHO | ECHONL);
		t.c_lflag |= ICANON;
		tcsetattr(0, TCSANOW, &t);
	}
}

static void setup_mounts(void)
{
	mkdir("/proc", 0755);
	mkdir("/sys", 0755);
	mkdir("/dev", 0755);
	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
}

/* load_modules: finit_module every file named in /modules.list. */
static int load_modules(void)
{
	char name[256];
	FILE *f;
	int fd, rc = 0;

	f = fopen("/modules.list", "r");
	if (!f)
		return -errno;
	while (fgets(name, sizeof(name), f)) {
		name[strcspn(name, "\n")] = '\0';
		if (!name[0])
			continue;
		fd = open(name, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			rc = -errno;
			say("ERROR op=open-module name=%s errno=%d", name, -rc);
			break;
		}
		if (syscall(SYS_finit_module, fd, "", 0) != 0 &&
		    errno != EEXIST) {
			rc = -errno;
			say("ERROR op=load-module name=%s errno=%d", name, -rc);
		}
		close(fd);
		if (rc)
			break;
	}
	fclose(f);
	return rc;
}

/* parse_acked: "g:s,g:s,..." into conf->acked. */
static int parse_acked(struct vmio_conf *c, const char *v)
{
	unsigned long long g, s;
	int n;

	while (*v) {
		if (sscanf(v, "%llu:%llu%n", &g, &s, &n) != 2 ||
		    g > VMIO_MAXGEN)
			return -EINVAL;
		c->acked[g] = (int64_t)s;
		v += n;
		if (*v == ',')
			v++;
		else if (*v)
			return -EINVAL;
	}
	return 0;
}

static int parse_word(struct vmio_conf *c, const char *w)
{
	if (!strncmp(w, "vmio.blocks=", 12))
		c->blocks = strtoull(w + 12, NULL, 10);
	else if (!strncmp(w, "vmio.flush=", 11))
		c->flush = strtoull(w + 11, NULL, 10);
	else if (!strncmp(w, "vmio.pace=", 10))
		c->pace_ms = (unsigned)strtoul(w + 10, NULL, 10);
	else if (!strncmp(w, "vmio.slots=", 11))
		c->slots = strtoull(w + 11, NULL, 10);
	else if (!strcmp(w, "vmio.verify=only"))
		c->verify_only = true;
	else if (!strcmp(w, "vmio.verify=unknown"))
		c->acks_unknown = true;
	else if (!strncmp(w, "vmio.acked=", 11))
		return parse_acked(c, w + 11);
	return 0;
}

static int parse_cmdline(struct vmio_conf *c)
{
	char buf[4096], *w, *save = NULL;
	ssize_t n;
	int fd, i, rc;

	c->blocks = 0;
	c->flush = 8;
	c->pace_ms = 20;
	c->slots = 256;
	c->verify_only = false;
	c->acks_unknown = false;
	for (i = 0; i <= VMIO_MAXGEN; i++)
		c->acked[i] = -1;
	fd = open("/proc/cmdline", O_RDONLY);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -EIO;
	buf[n] = '\0';
	for (w = strtok_r(buf, " \n", &save); w;
	     w = strtok_r(NULL, " \n", &save))
		if ((rc = parse_word(c, w)) < 0) {
			say("ERROR op=cmdline word=%s errno=%d", w, -rc);
			return rc;
		}
	if (c->flush == 0)
		c->flush = 1;
	return 0;
}

/* open_disk: wait (bounded) for /dev/vda, open it O_DIRECT, size it. */
static int open_disk(struct vmio *v)
{
	uint64_t deadline = ms_now() + 30000, bytes = 0;

	while ((v->fd = open("/dev/vda", O_RDWR | O_DIRECT)) < 0) {
		if (errno != ENOENT && errno != ENXIO)
			return -errno;
		if (ms_now() > deadline)
			return -ETIMEDOUT;
		usleep(50000);
	}
	if (ioctl(v->fd, BLKGETSIZE64, &bytes) != 0)
		return -errno;
	if (bytes / VMIO_BLOCK < 2)
		return -ENOSPC;
	v->slots = v->conf.slots;
	if (v->slots > bytes / VMIO_BLOCK - 1)
		v->slots = bytes / VMIO_BLOCK - 1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Verify.                                                             */

/* read_header: generation and slot count on disk; -EBADMSG if torn. */
static int read_header(struct vmio *v)
{
	struct vmio_block *h = v->buf;

	if (pread(v->fd, h, VMIO_BLOCK, 0) != VMIO_BLOCK)
		return -EIO;
	if (block_blank(h)) {
		v->prevgen = 0;
		return 0;
	}
	if (!block_valid(h, VMIO_HEAD_MAG) || h->slot == 0)
		return -EBADMSG;
	v->prevgen = h->gen;
	v->slots = h->slot;
	return 0;
}

/* want_of: the newest acknowledged write of SLOT over every generation,
 * as (gen, seq); false if none. */
static bool want_of(const struct vmio *v, uint64_t slot, uint64_t *g,
		    uint64_t *s)
{
	int64_t gen, a;

	for (gen = VMIO_MAXGEN; gen >= 1; gen--) {
		a = v->conf.acked[gen];
		if (a < 0 || (uint64_t)a < slot)
			continue;
		*g = (uint64_t)gen;
		*s = slot + ((uint64_t)a - slot) / v->slots * v->slots;
		return true;
	}
	return false;
}

static void bad(struct vmio_count *c, uint64_t slot, const char *why,
		const struct vmio_block *b, bool want, uint64_t wg, uint64_t ws)
{
	uint64_t n = c->stale + c->lost + c->torn + c->misplaced + c->future;

	if (n > VMIO_MAXBAD)
		return;
	say("BAD slot=%" PRIu64 " reason=%s have=%" PRIu64 ":%" PRIu64
	    " want=%s%" PRIu64 ":%" PRIu64,
	    slot, why, b->gen, b->seq, want ? "" : "none-", wg, ws);
}

/* issued: could write (g, s) have been issued by a generation before
 * this boot?  Beyond the last ack seen, a writer has at most two
 * batches in flight (the one being flushed, the ack not yet seen). */
static bool issued(const struct vmio *v, uint64_t g, uint64_t s)
{
	int64_t a;

	if (g == 0 || g > v->prevgen)
		return false;
	if (g > VMIO_MAXGEN || v->conf.acks_unknown)
		return true;
	a = v->conf.acked[g];
	return (int64_t)s <= a + 2 * (int64_t)v->conf.flush;
}

static void check_block(const struct vmio *v, uint64_t slot,
			const struct vmio_block *b, struct vmio_count *c)
{
	uint64_t wg = 0, ws = 0;
	bool want = want_of(v, slot, &wg, &ws);

	if (block_blank(b)) {
		if (want) {
			c->lost++;
			bad(c, slot, "lost", b, want, wg, ws);
		} else {
			c->blank++;
		}
	} else if (!block_valid(b, VMIO_DATA_MAG)) {
		c->torn++;
		bad(c, slot, "torn", b, want, wg, ws);
	} else if (b->slot != slot || b->seq % v->slots != slot) {
		c->misplaced++;
		bad(c, slot, "misplaced", b, want, wg, ws);
	} else if (!issued(v, b->gen, b->seq)) {
		c->future++;
		bad(c, slot, "future", b, want, wg, ws);
	} else if (want && (b->gen < wg || (b->gen == wg && b->seq < ws))) {
		c->stale++;
		bad(c, slot, "stale", b, want, wg, ws);
	} else if (want && b->gen == wg && b->seq == ws) {
		c->acked++;
	} else {
		c->newer++;
	}
}

/* verify: every data slot against vmio.acked; prints the verdict.
 * Returns 0 if clean, 1 if not, -errno if the disk cannot be read. */
static int verify(struct vmio *v)
{
	struct vmio_count c = { 0 };
	uint64_t slot, i, n;
	int rc, fail;

	rc = read_header(v);
	if (rc == -EBADMSG) {
		say("BAD slot=header reason=torn");
		say("VERIFY result=fail reason=header-torn");
		return 1;
	}
	if (rc)
		return rc;
	for (slot = 0; slot < v->slots; slot += n) {
		n = v->slots - slot < VMIO_CHUNK ? v->slots - slot : VMIO_CHUNK;
		if (pread(v->fd, v->buf, n * VMIO_BLOCK,
			  (off_t)((slot + 1) * VMIO_BLOCK)) !=
		    (ssize_t)(n * VMIO_BLOCK))
			return -EIO;
		for (i = 0; i < n; i++)
			check_block(v, slot + i, &v->buf[i], &c);
	}
	fail = c.stale || c.lost || c.torn || c.misplaced || c.future;
	say("VERIFY result=%s prevgen=%" PRIu64 " slots=%" PRIu64
	    " acked=%" PRIu64 " newer=%" PRIu64 " blank=%" PRIu64
	    " stale=%" PRIu64 " lost=%" PRIu64 " torn=%" PRIu64
	    " misplaced=%" PRIu64 " future=%" PRIu64,
	    fail ? "fail" : "ok", v->prevgen, v->slots, c.acked, c.newer,
	    c.blank, c.stale, c.lost, c.torn, c.misplaced, c.future);
	return fail ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* Writing.                                                            */

static int new_generation(struct vmio *v)
{
	v->gen = v->prevgen + 1;
	block_fill(v->buf, VMIO_HEAD_MAG, v->gen, 0, v->slots);
	if (pwrite(v->fd, v->buf, VMIO_BLOCK, 0) != VMIO_BLOCK) {
		say("ERROR op=write-header seq=0 errno=%d", errno);
		return -EIO;
	}
	if (fdatasync(v->fd) != 0) {
		say("ERROR op=flush-header seq=0 errno=%d", errno);
		return -EIO;
	}
	say("GEN gen=%" PRIu64, v->gen);
	return 0;
}

static int write_one(struct vmio *v)
{
	uint64_t slot = v->next % v->slots;

	block_fill(v->buf, VMIO_DATA_MAG, v->gen, v->next, slot);
	if (pwrite(v->fd, v->buf, VMIO_BLOCK,
		   (off_t)((slot + 1) * VMIO_BLOCK)) != VMIO_BLOCK) {
		say("ERROR op=write seq=%" PRIu64 " errno=%d", v->next, errno);
		return -EIO;
	}
	v->next++;
	return 0;
}

/* flush_ack: fdatasync, then tell the host what is durable. */
static int flush_ack(struct vmio *v)
{
	if (v->next == v->durable)
		return 0;
	if (fdatasync(v->fd) != 0) {
		say("ERROR op=flush seq=%" PRIu64 " errno=%d", v->next - 1,
		    errno);
		return -EIO;
	}
	v->durable = v->next;
	say("ACK gen=%" PRIu64 " seq=%" PRIu64 " t=%" PRIu64, v->gen,
	    v->next - 1, ms_now());
	return 0;
}

/* console_poll: wait up to MS for console input; returns 1 on "stop". */
static int console_poll(struct vmio *v, unsigned ms)
{
	struct pollfd p = { .fd = 0, .events = POLLIN };
	char *nl;
	ssize_t n;

	if (poll(&p, 1, (int)ms) <= 0 || !(p.revents & POLLIN))
		return 0;
	n = read(0, v->line + v->linelen, sizeof(v->line) - 1 - v->linelen);
	if (n <= 0)
		return 0;
	v->linelen += (size_t)n;
	v->line[v->linelen] = '\0';
	nl = strpbrk(v->line, "\r\n");
	if (!nl) {
		if (v->linelen == sizeof(v->line) - 1)
			v->linelen = 0; /* overlong: drop */
		return 0;
	}
	*nl = '\0';
	v->linelen = 0;
	if (!strcmp(v->line, "stop"))
		return 1;
	if (!strcmp(v->line, "status"))
		say("STATUS gen=%" PRIu64 " next=%" PRIu64, v->gen, v->next);
	return 0;
}

/* write_loop: write, flush every conf.flush writes, until stopped. */
static int write_loop(struct vmio *v)
{
	const char *end = "DONE";
	int rc;

	for (;;) {
		if (v->conf.blocks && v->next >= v->conf.blocks)
			break;
		if (console_poll(v, v->conf.pace_ms)) {
			end = "STOPPED";
			break;
		}
		rc = write_one(v);
		if (!rc && v->next % v->conf.flush == 0)
			rc = flush_ack(v);
		if (rc)
			return rc;
	}
	rc = flush_ack(v);
	if (rc)
		return rc;
	say("%s gen=%" PRIu64 " seq=%" PRIu64, end, v->gen,
	    v->next ? v->next - 1 : 0);
	return 0;
}

static int start(struct vmio *v)
{
	int fd, rc;

	setup_mounts();
	setup_console();
	say("INIT t=%" PRIu64, ms_now());
	rc = load_modules();
	if (rc)
		return rc;
	/* From here on the console carries our lines, not the kernel's. */
	fd = open("/proc/sys/kernel/printk", O_WRONLY);
	if (fd >= 0) {
		if (write(fd, "1\n", 2) < 0)
			say("ERROR op=printk errno=%d", errno);
		close(fd);
	}
	rc = parse_cmdline(&v->conf);
	if (rc)
		return rc;
	if (posix_memalign((void **)&v->buf, VMIO_BLOCK,
			   VMIO_CHUNK * VMIO_BLOCK) != 0)
		return -ENOMEM;
	rc = open_disk(v);
	if (rc)
		say("ERROR op=open-disk errno=%d", -rc);
	return rc;
}

int main(void)
{
	struct vmio v = { .fd = -1 };
	int rc;

	rc = start(&v);
	if (rc)
		goto out;
	rc = verify(&v);
	if (rc < 0)
		say("ERROR op=verify errno=%d", -rc);
	if (rc != 0 || v.conf.verify_only)
		goto out;
	rc = new_generation(&v);
	if (rc)
		goto out;
	rc = write_loop(&v);
out:
	power_off();
	return 0;
}
