// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * cvfsx.c - a random file-operation exerciser with an in-memory model.
 *
 *	cvfsx [-s SEED] [-n OPS] [-l MAXLEN] [-c EVERY] [-MDF] [-q] FILE
 *
 * Runs OPS random operations on FILE (created, truncated first): buffered
 * pwrite and pread, reads and writes through a MAP_SHARED mapping (the
 * writes msync'ed), ftruncate, fallocate (each mode the file system
 * takes), O_DIRECT reads and writes through a second descriptor, fsync,
 * and closing and reopening both descriptors.  Every operation is also
 * applied to a copy of the file kept in memory; reads are compared with
 * it, the size is checked after every operation, and the whole file is
 * read back and compared every EVERY operations (default 1) and at the
 * end.  The first difference ends the run with its offset, the expected
 * and the found bytes, and the last operations.
 *
 * -M: no mmap, -D: no O_DIRECT, -F: no fallocate; -q: quieter.  The seed
 * (default: from the clock) is printed first, so that a failing run can
 * be replayed with -s.  Exit status: 0 passed, 1 mismatch or unexpected
 * error, 2 usage.
 *
 * Written for csvfs's cache modes and backends (tests/posix/t-cvfsx.sh)
 * in the spirit of the classic fsx exercisers; no code taken from them.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef FALLOC_FL_KEEP_SIZE
#define FALLOC_FL_KEEP_SIZE 0x01
#endif
#ifndef FALLOC_FL_PUNCH_HOLE
#define FALLOC_FL_PUNCH_HOLE 0x02
#endif
#ifndef FALLOC_FL_ZERO_RANGE
#define FALLOC_FL_ZERO_RANGE 0x10
#endif

#define DIO_ALIGN 4096
#define LOG_LEN 32

enum op {
	OP_WRITE, OP_READ, OP_MAPREAD, OP_MAPWRITE, OP_TRUNC, OP_FALLOC,
	OP_DWRITE, OP_DREAD, OP_FSYNC, OP_REOPEN, OP_N
};

static const char *const op_name[OP_N] = {
	"write", "read", "mapread", "mapwrite", "truncate", "fallocate",
	"dio-write", "dio-read", "fsync", "reopen",
};
/* relative frequencies */
static const unsigned op_weight[OP_N] = { 20, 15, 12, 12, 6, 6, 8, 8, 2, 1 };

static const int fa_modes[] = {
	0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
	FALLOC_FL_ZERO_RANGE, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
};
#define N_FA (sizeof(fa_modes) / sizeof(fa_modes[0]))

struct logent {
	unsigned long n;
	enum op op;
	long long off, len;
	int mode;
	long long size; /* model size after the op */
};

static struct {
	const char *path;
	int fd, dfd;		/* buffered; O_DIRECT (-1: none) */
	unsigned char *model;	/* maxlen bytes */
	unsigned char *buf;	/* maxlen bytes, page aligned */
	unsigned char *buf2;	/* maxlen bytes, page aligned */
	long long size, maxlen;
	unsigned long n, nops, every;
	uint64_t rng;
	bool enabled[OP_N];
	bool fa_ok[N_FA];
	unsigned long count[OP_N];
	struct logent log[LOG_LEN];
	bool quiet;
	long page;
} X;

static uint64_t rnd(void)
{
	/* xorshift64*: reproducible from the seed on every platform */
	X.rng ^= X.rng >> 12;
	X.rng ^= X.rng << 25;
	X.rng ^= X.rng >> 27;
	return X.rng * 0x2545f4914f6cdd1dull;
}

static long long rnd_below(long long n)
{
	return n > 0 ? (long long)(rnd() % (uint64_t)n) : 0;
}

static void log_op(enum op op, long long off, long long len, int mode)
{
	struct logent *e = &X.log[X.n % LOG_LEN];

	e->n = X.n;
	e->op = op;
	e->off = off;
	e->len = len;
	e->mode = mode;
	e->size = -1;
}

static void dump_log(void)
{
	unsigned long first = X.n >= LOG_LEN ? X.n - LOG_LEN + 1 : 0;

	fprintf(stderr, "cvfsx: last operations (op off len [mode] -> size):\n");
	for (unsigned long k = first; k <= X.n; k++) {
		struct logent *e = &X.log[k % LOG_LEN];

		if (e->n != k)
			continue;
		fprintf(stderr, "  #%lu %-9s 0x%llx 0x%llx", e->n,
			op_name[e->op], e->off, e->len);
		if (e->op == OP_FALLOC)
			fprintf(stderr, " mode 0x%x", e->mode);
		if (e->size >= 0)
			fprintf(stderr, " -> 0x%llx", e->size);
		fprintf(stderr, "\n");
	}
}

static uint64_t seed_used;

static void __attribute__((noreturn, format(printf, 1, 2)))
fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "cvfsx: FAILED at op #%lu: ", X.n);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	dump_log();
	fprintf(stderr, "cvfsx: replay with -s %" PRIu64 "\n", seed_used);
	exit(1);
}

static void hexline(const char *what, const unsigned char *p, long long base,
		    long long from, long long to)
{
	fprintf(stderr, "  %-8s 0x%06llx:", what, from);
	for (long long k = from; k < to; k++)
		fprintf(stderr, " %02x", p[k - base]);
	fprintf(stderr, "\n");
}

/* got[0..len) read at off must equal the model there. */
static void compare(const char *how, const unsigned char *got, long long off,
		    long long len)
{
	long long k, from, to;

	for (k = 0; k < len; k++)
		if (got[k] != X.model[off + k])
			break;
	if (k == len)
		return;
	from = (off + k) & ~15LL;
	if (from < off)
		from = off;
	to = from + 16 < off + len ? from + 16 : off + len;
	fprintf(stderr, "cvfsx: %s mismatch at offset 0x%llx (read of 0x%llx "
		"bytes at 0x%llx): expected 0x%02x, got 0x%02x\n", how,
		off + k, len, off, X.model[off + k], got[k]);
	hexline("expected", X.model, 0, from, to);
	hexline("got", got, off, from, to);
	fail("data mismatch");
}

static void fill(unsigned char *p, long long off, long long len)
{
	/* never 0, so that zeros (holes, extensions) stand out; the op
	 * number shows which op wrote what */
	for (long long k = 0; k < len; k++)
		p[k] = (unsigned char)((X.n * 37 + (uint64_t)(off + k)) % 251 +
				       1);
}

static void check_size(void)
{
	struct stat st;

	if (fstat(X.fd, &st))
		fail("fstat: %s", strerror(errno));
	if (st.st_size != X.size)
		fail("size is 0x%llx, expected 0x%llx",
		     (long long)st.st_size, X.size);
}

static void full_check(void)
{
	ssize_t n;

	check_size();
	n = pread(X.fd, X.buf, (size_t)X.maxlen, 0);
	if (n < 0)
		fail("pread of the whole file: %s", strerror(errno));
	if (n != X.size)
		fail("pread of the whole file gave 0x%zx bytes, size 0x%llx",
		     n, X.size);
	compare("full-file", X.buf, 0, n);
}

static void model_resize(long long size)
{
	if (size > X.size)
		memset(X.model + X.size, 0, (size_t)(size - X.size));
	X.size = size;
}

static void do_write(void)
{
	long long off = rnd_below(X.maxlen), len = 1 + rnd_below(X.maxlen / 8);
	ssize_t n;

	if (off + len > X.maxlen)
		len = X.maxlen - off;
	log_op(OP_WRITE, off, len, 0);
	fill(X.buf, off, len);
	n = pwrite(X.fd, X.buf, (size_t)len, off);
	if (n != len)
		fail("pwrite 0x%llx at 0x%llx: %zd (%s)", len, off, n,
		     strerror(errno));
	if (off + len > X.size)
		model_resize(off + len);
	memcpy(X.model + off, X.buf, (size_t)len);
}

static void do_read(void)
{
	long long off = rnd_below(X.size + 1), len = 1 + rnd_below(X.maxlen / 4);
	long long want;
	ssize_t n;

	if (off + len > X.maxlen)
		len = X.maxlen - off;
	log_op(OP_READ, off, len, 0);
	n = pread(X.fd, X.buf, (size_t)len, off);
	want = off + len <= X.size ? len : X.size - off;
	if (n != want)
		fail("pread 0x%llx at 0x%llx: %zd, expected 0x%llx (%s)", len,
		     off, n, want, n < 0 ? strerror(errno) : "short");
	compare("read", X.buf, off, want);
}

/* Map [off, off+len) of the file (inside its size) MAP_SHARED. */
static unsigned char *map_range(long long off, long long len, bool wr,
				long long *pgoff, size_t *maplen)
{
	void *p;

	*pgoff = off & ~((long long)X.page - 1);
	*maplen = (size_t)(off + len - *pgoff);
	p = mmap(NULL, *maplen, PROT_READ | (wr ? PROT_WRITE : 0), MAP_SHARED,
		 X.fd, *pgoff);
	if (p == MAP_FAILED)
		fail("mmap%s 0x%zx at 0x%llx: %s", wr ? " (shared, writable)"
		     : " (shared)", *maplen, *pgoff, strerror(errno));
	return (unsigned char *)p + (off - *pgoff);
}

static void do_mapread(void)
{
	long long off, len, pgoff;
	unsigned char *p;
	size_t maplen;

	if (!X.size) {
		do_read();
		return;
	}
	off = rnd_below(X.size);
	len = 1 + rnd_below(X.size - off);
	log_op(OP_MAPREAD, off, len, 0);
	p = map_range(off, len, false, &pgoff, &maplen);
	memcpy(X.buf, p, (size_t)len);
	munmap(p - (off - pgoff), maplen);
	compare("mapped read", X.buf, off, len);
}

static void do_mapwrite(void)
{
	long long off, len, pgoff;
	unsigned char *p;
	size_t maplen;

	if (!X.size) {
		do_write();
		return;
	}
	off = rnd_below(X.size);
	len = 1 + rnd_below(X.size - off < X.maxlen / 8 ? X.size - off
						     : X.maxlen / 8);
	log_op(OP_MAPWRITE, off, len, 0);
	p = map_range(off, len, true, &pgoff, &maplen);
	fill(X.buf, off, len);
	memcpy(p, X.buf, (size_t)len);
	if (msync(p - (off - pgoff), maplen, MS_SYNC))
		fail("msync: %s", strerror(errno));
	if (munmap(p - (off - pgoff), maplen))
		fail("munmap: %s", strerror(errno));
	memcpy(X.model + off, X.buf, (size_t)len);
}

static void do_trunc(void)
{
	long long size = rnd_below(X.maxlen + 1);

	log_op(OP_TRUNC, size, 0, 0);
	if (ftruncate(X.fd, size))
		fail("ftruncate 0x%llx: %s", size, strerror(errno));
	if (size < X.size)
		X.size = size;
	else
		model_resize(size);
}

static void falloc_model(int mode, long long off, long long len)
{
	long long end = off + len;

	if (mode & FALLOC_FL_PUNCH_HOLE) {
		if (end > X.size)
			end = X.size;
		if (end > off)
			memset(X.model + off, 0, (size_t)(end - off));
		return;
	}
	if (mode & FALLOC_FL_ZERO_RANGE) {
		long long zend = end < X.size ? end : X.size;

		if (zend > off)
			memset(X.model + off, 0, (size_t)(zend - off));
	}
	if (!(mode & FALLOC_FL_KEEP_SIZE) && end > X.size)
		model_resize(end);
}

static void do_falloc(void)
{
	long long off = rnd_below(X.maxlen), len = 1 + rnd_below(X.maxlen / 8);
	unsigned k = (unsigned)rnd_below(N_FA);

	while (!X.fa_ok[k])
		k = (k + 1) % N_FA;
	if (off + len > X.maxlen)
		len = X.maxlen - off;
	log_op(OP_FALLOC, off, len, fa_modes[k]);
	if (fallocate(X.fd, fa_modes[k], off, len))
		fail("fallocate mode 0x%x 0x%llx at 0x%llx: %s", fa_modes[k],
		     len, off, strerror(errno));
	falloc_model(fa_modes[k], off, len);
}

static long long dio_len(long long off)
{
	long long len = DIO_ALIGN * (1 + rnd_below(X.maxlen / 8 / DIO_ALIGN));

	return off + len > X.maxlen ? X.maxlen - off : len;
}

static void do_dwrite(void)
{
	long long off = rnd_below(X.maxlen / DIO_ALIGN) * DIO_ALIGN;
	long long len = dio_len(off);
	ssize_t n;

	log_op(OP_DWRITE, off, len, 0);
	fill(X.buf2, off, len);
	n = pwrite(X.dfd, X.buf2, (size_t)len, off);
	if (n != len)
		fail("O_DIRECT pwrite 0x%llx at 0x%llx: %zd (%s)", len, off, n,
		     strerror(errno));
	if (off + len > X.size)
		model_resize(off + len);
	memcpy(X.model + off, X.buf2, (size_t)len);
}

static void do_dread(void)
{
	long long off = rnd_below(X.size / DIO_ALIGN + 1) * DIO_ALIGN;
	long long len, want;
	ssize_t n;

	if (off >= X.maxlen)
		off -= DIO_ALIGN;
	len = dio_len(off);
	log_op(OP_DREAD, off, len, 0);
	n = pread(X.dfd, X.buf2, (size_t)len, off);
	want = off >= X.size ? 0 : off + len <= X.size ? len : X.size - off;
	if (n != want)
		fail("O_DIRECT pread 0x%llx at 0x%llx: %zd, expected 0x%llx "
		     "(%s)", len, off, n, want, n < 0 ? strerror(errno)
						       : "short");
	compare("O_DIRECT read", X.buf2, off, want);
}

static void open_fds(int extra)
{
	X.fd = open(X.path, O_RDWR | extra, 0644);
	if (X.fd < 0)
		fail("open %s: %s", X.path, strerror(errno));
	X.dfd = -1;
	if (X.enabled[OP_DWRITE]) {
		X.dfd = open(X.path, O_RDWR | O_DIRECT);
		if (X.dfd < 0)
			fail("open %s O_DIRECT: %s", X.path, strerror(errno));
	}
}

static void do_reopen(void)
{
	log_op(OP_REOPEN, 0, 0, 0);
	if (close(X.fd) || (X.dfd >= 0 && close(X.dfd)))
		fail("close: %s", strerror(errno));
	open_fds(0);
}

static void do_fsync(void)
{
	log_op(OP_FSYNC, 0, 0, 0);
	if (fsync(X.fd))
		fail("fsync: %s", strerror(errno));
}

static enum op pick(void)
{
	unsigned total = 0, r;

	for (int k = 0; k < OP_N; k++)
		total += X.enabled[k] ? op_weight[k] : 0;
	r = (unsigned)rnd_below(total);
	for (int k = 0; k < OP_N; k++) {
		if (!X.enabled[k])
			continue;
		if (r < op_weight[k])
			return (enum op)k;
		r -= op_weight[k];
	}
	return OP_WRITE;
}

static void run_one(enum op op)
{
	static void (*const fn[OP_N])(void) = {
		do_write, do_read, do_mapread, do_mapwrite, do_trunc,
		do_falloc, do_dwrite, do_dread, do_fsync, do_reopen,
	};

	fn[op]();
	X.count[op]++;
	X.log[X.n % LOG_LEN].size = X.size;
	check_size();
	if (X.every && (X.n + 1) % X.every == 0)
		full_check();
}

/* Which fallocate modes and whether O_DIRECT work here (empty file). */
static void probe(void)
{
	bool any = false;
	int fd;

	for (unsigned k = 0; k < N_FA && X.enabled[OP_FALLOC]; k++) {
		X.fa_ok[k] = !fallocate(X.fd, fa_modes[k], 0, DIO_ALIGN);
		any |= X.fa_ok[k];
		if (ftruncate(X.fd, 0))
			fail("ftruncate 0: %s", strerror(errno));
		if (!X.quiet)
			printf("cvfsx: fallocate mode 0x%x: %s\n", fa_modes[k],
			       X.fa_ok[k] ? "supported" : strerror(errno));
	}
	X.enabled[OP_FALLOC] = any;
	if (X.enabled[OP_DWRITE]) {
		fd = open(X.path, O_RDWR | O_DIRECT);
		if (fd < 0) {
			printf("cvfsx: O_DIRECT not supported here (%s)\n",
			       strerror(errno));
			X.enabled[OP_DWRITE] = X.enabled[OP_DREAD] = false;
		} else {
			close(fd);
		}
	}
}

static int usage(void)
{
	fprintf(stderr, "usage: cvfsx [-s SEED] [-n OPS] [-l MAXLEN] "
		"[-c EVERY] [-MDFq] FILE\n");
	return 2;
}

static int parse(int argc, char **argv)
{
	int c;

	X.nops = 1000;
	X.maxlen = 256 * 1024;
	X.every = 1;
	seed_used = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16);
	for (int k = 0; k < OP_N; k++)
		X.enabled[k] = true;
	while ((c = getopt(argc, argv, "s:n:l:c:MDFq")) != -1) {
		switch (c) {
		case 's': seed_used = strtoull(optarg, NULL, 0); break;
		case 'n': X.nops = strtoul(optarg, NULL, 0); break;
		case 'l': X.maxlen = strtoll(optarg, NULL, 0); break;
		case 'c': X.every = strtoul(optarg, NULL, 0); break;
		case 'M': X.enabled[OP_MAPREAD] = X.enabled[OP_MAPWRITE] = false;
			break;
		case 'D': X.enabled[OP_DWRITE] = X.enabled[OP_DREAD] = false;
			break;
		case 'F': X.enabled[OP_FALLOC] = false; break;
		case 'q': X.quiet = true; break;
		default: return usage();
		}
	}
	if (optind != argc - 1 || X.maxlen < 4 * DIO_ALIGN ||
	    X.maxlen % DIO_ALIGN)
		return usage();
	X.path = argv[optind];
	return 0;
}

int main(int argc, char **argv)
{
	int rc = parse(argc, argv);

	if (rc)
		return rc;
	X.rng = seed_used ? seed_used : 1;
	X.page = sysconf(_SC_PAGESIZE);
	X.model = calloc(1, (size_t)X.maxlen);
	if (!X.model || posix_memalign((void **)&X.buf, DIO_ALIGN,
				       (size_t)X.maxlen) ||
	    posix_memalign((void **)&X.buf2, DIO_ALIGN, (size_t)X.maxlen)) {
		fprintf(stderr, "cvfsx: out of memory\n");
		return 1;
	}
	printf("cvfsx: seed %" PRIu64 ", %lu ops, file %s, max size %lld\n",
	       seed_used, X.nops, X.path, X.maxlen);
	fflush(stdout);
	open_fds(O_CREAT | O_TRUNC);
	probe();
	for (X.n = 0; X.n < X.nops; X.n++)
		run_one(pick());
	X.n--;
	full_check();
	printf("cvfsx: %lu ops passed:", X.nops);
	for (int k = 0; k < OP_N; k++)
		printf(" %s %lu", op_name[k], X.count[k]);
	printf(" (final size 0x%llx)\n", X.size);
	return 0;
}
