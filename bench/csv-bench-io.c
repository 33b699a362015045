/* SPDX-License-Identifier: GPL-2.0-or-later */
/* csv-bench-io: direct I/O and metadata throughput on one path.
 *   csv-bench-io [options] seqwrite|seqread|randwrite|randread FILE
 *   csv-bench-io meta DIR N
 * Each measurement prints one line "NAME UNIT VALUE". */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"

#define PROG "csv-bench-io"

#define SEQ_BLOCK (1u << 20)  /* sequential tests: 1 MiB per request */
#define RAND_BLOCK 4096u      /* random tests: 4 KiB, aligned */
#define BUF_ALIGN 4096u       /* enough for O_DIRECT on any common device */
#define DEFAULT_SEED UINT64_C(0x637376667362656e)
#define DEFAULT_SECONDS 10.0

struct options {
	uint64_t size;       /* 0: not given */
	double seconds;      /* 0: not given */
	uint64_t count;      /* 0: not given */
	uint64_t seed;
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: " PROG " [options] seqwrite|seqread|randwrite|randread FILE\n"
		"       " PROG " meta DIR N\n"
		"Measure direct I/O or metadata throughput; print one line per measurement:\n"
		"NAME UNIT VALUE.\n\n"
		"Tests:\n"
		"  seqwrite FILE   1 MiB pwrite with O_DIRECT from offset 0 to --size (the file\n"
		"                  is created if missing, never truncated), then fdatasync;\n"
		"                  MiB/s including the fdatasync\n"
		"  seqread FILE    1 MiB pread with O_DIRECT from offset 0 to --size; MiB/s\n"
		"  randwrite FILE  4 KiB pwrite with O_DIRECT at random aligned offsets below\n"
		"                  --size, then fdatasync; IOPS including the fdatasync\n"
		"  randread FILE   4 KiB pread with O_DIRECT at random aligned offsets; IOPS\n"
		"  meta DIR N      create N empty files in DIR, stat them, unlink them;\n"
		"                  creates/s, stats/s and unlinks/s\n\n"
		"Options:\n"
		"  -s, --size SIZE     bytes to cover, with an optional K, M, G or T suffix\n"
		"                      (powers of 1024); required for seqwrite, otherwise the\n"
		"                      size of FILE; a multiple of 1 MiB (seq) or 4 KiB (rand)\n"
		"  -t, --seconds N     random tests: run for N seconds (default 10)\n"
		"  -n, --count N       random tests: stop after N requests\n"
		"                      (with --seconds too: whichever comes first)\n"
		"  -S, --seed N        random tests: seed of the offset generator (fixed default)\n"
		"  -h, --help          show this help\n"
		"  -V, --version       show the version\n\n"
		"The random tests need FILE to be at least --size long: write it with seqwrite\n"
		"first. Exit status: 0 on success, 1 on a failed test, 2 on a usage error.\n");
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* splitmix64: a small generator whose sequence depends only on the seed. */
static uint64_t rng_next(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static int parse_u64(const char *s, uint64_t *ret)
{
	char *end;
	if (!s[0] || s[0] == '-')
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* "512M" -> 536870912; suffixes K, M, G, T (powers of 1024), optional "iB"/"B". */
static int parse_size(const char *s, uint64_t *ret)
{
	char *end;
	if (!s[0] || s[0] == '-')
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	unsigned shift = 0;
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: return -EINVAL;
	}
	if (shift && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0))
		end += strlen(end);
	if (*end)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*ret = (uint64_t)v << shift;
	return 0;
}

/* An aligned buffer of len bytes, filled with a pattern that has no zero
 * byte (a filesystem cannot shortcut it as a hole). */
static int buffer_new(size_t len, uint8_t **ret)
{
	void *p;
	int r = posix_memalign(&p, BUF_ALIGN, len);
	if (r != 0)
		return -r;
	uint8_t *b = p;
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(0x5a ^ (i * 131 + (i >> 12) * 7)) | 0x01;
	*ret = b;
	return 0;
}

/* Opens path with O_DIRECT; says why when the filesystem refuses it. */
static int open_direct(const char *path, int flags, int *ret_fd)
{
	int fd = open(path, flags | O_DIRECT | O_CLOEXEC, 0644);
	if (fd < 0) {
		int e = errno;
		if (e == EINVAL)
			fprintf(stderr, PROG ": %s: open with O_DIRECT failed with EINVAL: "
				"the filesystem does not support direct I/O\n", path);
		else
			fprintf(stderr, PROG ": %s: cannot open: %s\n", path, strerror(e));
		return -e;
	}
	*ret_fd = fd;
	return 0;
}

static void report_io_error(const char *path, const char *what, uint64_t off, size_t len, ssize_t n,
			    int e)
{
	if (n >= 0)
		fprintf(stderr, PROG ": %s: short %s at offset %" PRIu64 ": %zd of %zu bytes\n", path,
			what, off, n, len);
	else if (e == EINVAL)
		fprintf(stderr, PROG ": %s: %s of %zu bytes at offset %" PRIu64 " with O_DIRECT "
			"failed with EINVAL: the filesystem refuses this alignment for direct I/O\n",
			path, what, len, off);
	else
		fprintf(stderr, PROG ": %s: %s of %zu bytes at offset %" PRIu64 " failed: %s\n", path,
			what, len, off, strerror(e));
}

/* The size of the file on fd, into *ret. */
static int file_size(int fd, const char *path, uint64_t *ret)
{
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		fprintf(stderr, PROG ": %s: cannot stat: %s\n", path, strerror(e));
		return -e;
	}
	if (!S_ISREG(st.st_mode)) {
		fprintf(stderr, PROG ": %s: not a regular file\n", path);
		return -EINVAL;
	}
	*ret = (uint64_t)st.st_size;
	return 0;
}

/* The byte count a test covers: --size, or the file's size rounded down to
 * unit; in both cases at least one unit and no more than the file holds
 * (unless the test writes sequentially and may extend it). */
static int test_size(const struct options *o, int fd, const char *path, const char *test,
		     uint64_t unit, bool may_extend, uint64_t *ret)
{
	uint64_t fsize = 0, size;
	int r = file_size(fd, path, &fsize);
	if (r < 0)
		return r;
	if (o->size) {
		if (o->size % unit) {
			fprintf(stderr, PROG ": %s: --size %" PRIu64 " is not a multiple of %" PRIu64
				" bytes\n", test, o->size, unit);
			return -EINVAL;
		}
		size = o->size;
		if (!may_extend && fsize < size) {
			fprintf(stderr, PROG ": %s: %s holds %" PRIu64 " bytes, fewer than --size %"
				PRIu64 " (write it with seqwrite first)\n", test, path, fsize, size);
			return -EINVAL;
		}
	} else {
		size = fsize - fsize % unit;
	}
	if (size < unit) {
		fprintf(stderr, PROG ": %s: %s holds %" PRIu64 " bytes, fewer than one %" PRIu64
			"-byte request (write it with seqwrite first, or give --size)\n", test, path,
			fsize, unit);
		return -EINVAL;
	}
	*ret = size;
	return 0;
}

static void print_result(const char *name, const char *unit, double value)
{
	printf("%s %s %.1f\n", name, unit, value);
	fflush(stdout);
}

static int test_seq(const struct options *o, const char *path, bool write)
{
	const char *name = write ? "seqwrite" : "seqread";
	uint8_t *buf = NULL;
	uint64_t size;
	int fd = -1, r;

	r = open_direct(path, write ? (O_WRONLY | O_CREAT) : O_RDONLY, &fd);
	if (r < 0)
		return r;
	r = test_size(o, fd, path, name, SEQ_BLOCK, write, &size);
	if (r < 0)
		goto out;
	r = buffer_new(SEQ_BLOCK, &buf);
	if (r < 0) {
		fprintf(stderr, PROG ": cannot allocate a buffer: %s\n", strerror(-r));
		goto out;
	}

	double t0 = now();
	for (uint64_t off = 0; off < size; off += SEQ_BLOCK) {
		ssize_t n = write ? pwrite(fd, buf, SEQ_BLOCK, (off_t)off)
				  : pread(fd, buf, SEQ_BLOCK, (off_t)off);
		if (n != (ssize_t)SEQ_BLOCK) {
			int e = errno;
			report_io_error(path, write ? "write" : "read", off, SEQ_BLOCK, n, e);
			r = n < 0 ? -e : -EIO;
			goto out;
		}
	}
	if (write && fdatasync(fd) < 0) {
		r = -errno;
		fprintf(stderr, PROG ": %s: fdatasync failed: %s\n", path, strerror(-r));
		goto out;
	}
	double dt = now() - t0;
	print_result(name, "MiB/s", (double)size / (1024.0 * 1024.0) / dt);
	r = 0;
out:
	free(buf);
	if (fd >= 0 && close(fd) < 0 && r == 0) {
		r = -errno;
		fprintf(stderr, PROG ": %s: close failed: %s\n", path, strerror(-r));
	}
	return r;
}

static int test_rand(const struct options *o, const char *path, bool write)
{
	const char *name = write ? "randwrite" : "randread";
	double seconds = o->seconds > 0 ? o->seconds : (o->count ? 0 : DEFAULT_SECONDS);
	uint64_t state = o->seed, size, done = 0;
	uint8_t *buf = NULL;
	int fd = -1, r;

	r = open_direct(path, write ? O_WRONLY : O_RDONLY, &fd);
	if (r < 0)
		return r;
	r = test_size(o, fd, path, name, RAND_BLOCK, false, &size);
	if (r < 0)
		goto out;
	r = buffer_new(RAND_BLOCK, &buf);
	if (r < 0) {
		fprintf(stderr, PROG ": cannot allocate a buffer: %s\n", strerror(-r));
		goto out;
	}

	uint64_t blocks = size / RAND_BLOCK;
	double t0 = now(), deadline = seconds > 0 ? t0 + seconds : 0;
	for (;;) {
		if (o->count && done >= o->count)
			break;
		if (deadline && now() >= deadline)
			break;
		uint64_t off = (rng_next(&state) % blocks) * RAND_BLOCK;
		ssize_t n = write ? pwrite(fd, buf, RAND_BLOCK, (off_t)off)
				  : pread(fd, buf, RAND_BLOCK, (off_t)off);
		if (n != (ssize_t)RAND_BLOCK) {
			int e = errno;
			report_io_error(path, write ? "write" : "read", off, RAND_BLOCK, n, e);
			r = n < 0 ? -e : -EIO;
			goto out;
		}
		done++;
	}
	if (write && fdatasync(fd) < 0) {
		r = -errno;
		fprintf(stderr, PROG ": %s: fdatasync failed: %s\n", path, strerror(-r));
		goto out;
	}
	double dt = now() - t0;
	print_result(name, "IOPS", (double)done / dt);
	r = 0;
out:
	free(buf);
	if (fd >= 0 && close(fd) < 0 && r == 0) {
		r = -errno;
		fprintf(stderr, PROG ": %s: close failed: %s\n", path, strerror(-r));
	}
	return r;
}

/* DIR/csvb-NNNNNNNN: names that sort in creation order. */
static void meta_name(char *out, size_t len, const char *dir, uint64_t i)
{
	snprintf(out, len, "%s/csvb-%08" PRIu64, dir, i);
}

/* Unlinks the files [0, n) that a failed run leaves behind. */
static void meta_cleanup(const char *dir, uint64_t n)
{
	char path[PATH_MAX];
	for (uint64_t i = 0; i < n; i++) {
		meta_name(path, sizeof(path), dir, i);
		(void)unlink(path);
	}
}

static int test_meta(const char *dir, uint64_t n)
{
	char path[PATH_MAX];
	struct stat st;
	uint64_t i;
	double t0, dt;

	if (stat(dir, &st) < 0) {
		int e = errno;
		fprintf(stderr, PROG ": meta: %s: %s\n", dir, strerror(e));
		return -e;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, PROG ": meta: %s: not a directory\n", dir);
		return -ENOTDIR;
	}
	if (strlen(dir) + 32 > sizeof(path)) {
		fprintf(stderr, PROG ": meta: %s: path too long\n", dir);
		return -ENAMETOOLONG;
	}

	t0 = now();
	for (i = 0; i < n; i++) {
		meta_name(path, sizeof(path), dir, i);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0 || close(fd) < 0) {
			int e = errno;
			fprintf(stderr, PROG ": meta: cannot create %s: %s\n", path, strerror(e));
			meta_cleanup(dir, fd < 0 ? i : i + 1);
			return -e;
		}
	}
	dt = now() - t0;
	print_result("create", "creates/s", (double)n / dt);

	t0 = now();
	for (i = 0; i < n; i++) {
		meta_name(path, sizeof(path), dir, i);
		if (stat(path, &st) < 0) {
			int e = errno;
			fprintf(stderr, PROG ": meta: cannot stat %s: %s\n", path, strerror(e));
			meta_cleanup(dir, n);
			return -e;
		}
		if (!S_ISREG(st.st_mode) || st.st_size != 0) {
			fprintf(stderr, PROG ": meta: %s: expected an empty regular file, found mode "
				"%o size %jd\n", path, (unsigned)st.st_mode, (intmax_t)st.st_size);
			meta_cleanup(dir, n);
			return -EIO;
		}
	}
	dt = now() - t0;
	print_result("stat", "stats/s", (double)n / dt);

	t0 = now();
	for (i = 0; i < n; i++) {
		meta_name(path, sizeof(path), dir, i);
		if (unlink(path) < 0) {
			int e = errno;
			fprintf(stderr, PROG ": meta: cannot unlink %s: %s\n", path, strerror(e));
			meta_cleanup(dir, n);
			return -e;
		}
	}
	dt = now() - t0;
	print_result("unlink", "unlinks/s", (double)n / dt);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "seconds", required_argument, NULL, 't' },
		{ "count", required_argument, NULL, 'n' },
		{ "seed", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	struct options o = { .seed = DEFAULT_SEED };
	int c, r;

	while ((c = getopt_long(argc, argv, "s:t:n:S:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			r = parse_size(optarg, &o.size);
			if (r < 0 || o.size == 0) {
				fprintf(stderr, PROG ": --size %s: expected a positive size such as "
					"512M or 4G\n", optarg);
				return 2;
			}
			break;
		case 't': {
			char *end;
			errno = 0;
			o.seconds = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(o.seconds > 0) || o.seconds > 1e6) {
				fprintf(stderr, PROG ": --seconds %s: expected a positive number of "
					"seconds\n", optarg);
				return 2;
			}
			break;
		}
		case 'n':
			if (parse_u64(optarg, &o.count) < 0 || o.count == 0) {
				fprintf(stderr, PROG ": --count %s: expected a positive integer\n", optarg);
				return 2;
			}
			break;
		case 'S':
			if (parse_u64(optarg, &o.seed) < 0) {
				fprintf(stderr, PROG ": --seed %s: expected a non-negative integer\n",
					optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf(PROG " %s\n", PACKAGE_VERSION);
			return 0;
		default:
			fprintf(stderr, "Try '" PROG " --help'.\n");
			return 2;
		}
	}
	int nargs = argc - optind;
	if (nargs < 1) {
		fprintf(stderr, PROG ": a test is needed: seqwrite, seqread, randwrite, randread or "
			"meta (see --help)\n");
		return 2;
	}
	const char *test = argv[optind];
	if (strcmp(test, "meta") == 0) {
		uint64_t n;
		if (nargs != 3) {
			fprintf(stderr, PROG ": usage: " PROG " meta DIR N\n");
			return 2;
		}
		if (parse_u64(argv[optind + 2], &n) < 0 || n == 0 || n > 100000000) {
			fprintf(stderr, PROG ": meta: N %s: expected an integer from 1 to 100000000\n",
				argv[optind + 2]);
			return 2;
		}
		return test_meta(argv[optind + 1], n) < 0 ? 1 : 0;
	}

	bool seq = false, write = false;
	if (strcmp(test, "seqwrite") == 0)
		seq = write = true;
	else if (strcmp(test, "seqread") == 0)
		seq = true;
	else if (strcmp(test, "randwrite") == 0)
		write = true;
	else if (strcmp(test, "randread") != 0) {
		fprintf(stderr, PROG ": unknown test '%s': expected seqwrite, seqread, randwrite, "
			"randread or meta\n", test);
		return 2;
	}
	if (nargs != 2) {
		fprintf(stderr, PROG ": usage: " PROG " [options] %s FILE\n", test);
		return 2;
	}
	if (seq && (o.seconds > 0 || o.count)) {
		fprintf(stderr, PROG ": %s: --seconds and --count apply to the random tests only\n",
			test);
		return 2;
	}
	if (write && seq && !o.size) {
		fprintf(stderr, PROG ": seqwrite needs --size\n");
		return 2;
	}
	const char *path = argv[optind + 1];
	r = seq ? test_seq(&o, path, write) : test_rand(&o, path, write);
	return r < 0 ? 1 : 0;
}
