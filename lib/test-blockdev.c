/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The block-device layer: memory devices and their volatile cache (the
 * crash simulator every journal test relies on), local files, and NBD
 * exports served by nbdkit when it is installed, with and without an I/O
 * timeout (a stalled server: nbdkit's pause filter). */
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "blockdev.h"
#include "test-util.h"

/* A pointer value that no open ever returns: an out-parameter still
 * holding it was left alone, as failing functions must. */
#define UNTOUCHED ((struct csv_blockdev *)(uintptr_t)0x5a5a5a5a)

static void fill_random(uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(rng() >> 56);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	ck_assert_ptr_nonnull(p);
	return p;
}

static bool all_bytes(const uint8_t *p, size_t len, uint8_t v)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* Reads the whole device and compares it with the model. */
static void check_device(struct csv_blockdev *bd, const uint8_t *model, size_t size)
{
	uint8_t *got = xmalloc(size);
	ck_assert_int_eq(blockdev_pread(bd, got, size, 0), 0);
	for (size_t i = 0; i < size; i++)
		REQUIRE(got[i] == model[i], "byte %zu reads 0x%02x, expected 0x%02x", i, got[i], model[i]);
	free(got);
}

/* ---- Temporary files ------------------------------------------------- */

/* main() makes one directory for the run and removes it at the end; each
 * test makes its own inside it. A failed assertion ends the test's process
 * (CK_FORK) at once, without cleaning up: main() still does. */
static char base_dir[256];
static char tmpdir[512];

/* snprintf into a path buffer; a path that does not fit fails the test. */
__attribute__((format(printf, 3, 4)))
static void path_printf(char *out, size_t outlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out, outlen, fmt, ap);
	va_end(ap);
	ck_assert_msg(n >= 0 && (size_t)n < outlen, "path too long");
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *pos)
{
	return remove(path) < 0 ? -1 : 0;
}

static void remove_tree(const char *dir)
{
	if (dir[0] && nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
		fprintf(stderr, "test-blockdev: could not remove %s\n", dir);
}

static void make_tmpdir(void)
{
	ck_assert_msg(base_dir[0], "no base directory");
	path_printf(tmpdir, sizeof(tmpdir), "%s/XXXXXX", base_dir);
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
	remove_tree(tmpdir);
	tmpdir[0] = '\0';
}

static void tmp_path(char *out, size_t outlen, const char *name)
{
	path_printf(out, outlen, "%s/%s", tmpdir, name);
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, data, len, 0), (ssize_t)len);
	ck_assert_int_eq(close(fd), 0);
}

/* The file's bytes as a plain read sees them, not through blockdev. */
static void read_file(const char *path, void *data, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, data, len, 0), (ssize_t)len);
	ck_assert_int_eq(close(fd), 0);
}

static off_t file_size(const char *path)
{
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	return st.st_size;
}

/* ---- Memory devices ----------------------------------------------------- */

START_TEST(test_mem_starts_zeroed)
{
	struct csv_blockdev *bd;
	const uint64_t size = 1 << 20;

	ck_assert_int_eq(blockdev_open_mem(size, _i, &bd), 0);
	ck_assert_uint_eq(blockdev_size(bd), size);
	ck_assert(!blockdev_is_regular_file(bd));
	ck_assert_ptr_nonnull(blockdev_name(bd));
	ck_assert_uint_gt(blockdev_alignment(bd), 0);
	ck_assert_uint_eq(blockdev_mem_pending(bd), 0);
	ck_assert_uint_eq(blockdev_flush_count(bd), 0);

	uint8_t *buf = xmalloc(size);
	memset(buf, 0xee, size);
	ck_assert_int_eq(blockdev_pread(bd, buf, size, 0), 0);
	ck_assert(all_bytes(buf, size, 0));
	ck_assert_ptr_nonnull(blockdev_mem_data(bd));
	ck_assert(all_bytes(blockdev_mem_data(bd), size, 0));
	free(buf);
	blockdev_close(bd);
}
END_TEST

/* Random writes of random lengths at random (unaligned) offsets read back
 * as a byte model of the device says, with or without the cache. */
START_TEST(test_mem_round_trip)
{
	struct csv_blockdev *bd;
	const size_t size = 256 << 10;
	uint8_t *model = calloc(1, size), *chunk = xmalloc(size);

	ck_assert_ptr_nonnull(model);
	ck_assert_int_eq(blockdev_open_mem(size, _i, &bd), 0);
	rng_seed(1234 + _i);
	for (int i = 0; i < 300; i++) {
		size_t len = (size_t)(rng() % 9000);
		size_t off = (size_t)(rng() % (size - len + 1));
		fill_random(chunk, len);
		ck_assert_int_eq(blockdev_pwrite(bd, chunk, len, off), 0);
		memcpy(model + off, chunk, len);
		/* A read of a random range sees the latest writes. */
		size_t rl = (size_t)(rng() % 20000);
		size_t ro = (size_t)(rng() % (size - rl + 1));
		ck_assert_int_eq(blockdev_pread(bd, chunk, rl, ro), 0);
		REQUIRE(memcmp(chunk, model + ro, rl) == 0, "read of %zu bytes at %zu after write %d differs",
			rl, ro, i);
	}
	check_device(bd, model, size);
	/* The last byte and a zero-length transfer at the very end. */
	uint8_t b = 0x7e;
	ck_assert_int_eq(blockdev_pwrite(bd, &b, 1, size - 1), 0);
	model[size - 1] = b;
	ck_assert_int_eq(blockdev_pwrite(bd, &b, 0, size), 0);
	ck_assert_int_eq(blockdev_pread(bd, &b, 0, size), 0);
	check_device(bd, model, size);
	blockdev_close(bd);
	free(model);
	free(chunk);
}
END_TEST

/* A transfer that does not fit fails and touches neither the caller's
 * buffer nor the device (ASan would also catch a copy past the end). */
START_TEST(test_mem_out_of_range)
{
	struct csv_blockdev *bd;
	const size_t size = 64 << 10;
	uint8_t *model = xmalloc(size), buf[512];

	ck_assert_int_eq(blockdev_open_mem(size, _i, &bd), 0);
	rng_seed(77);
	fill_random(model, size);
	ck_assert_int_eq(blockdev_pwrite(bd, model, size, 0), 0);
	ck_assert_int_eq(blockdev_flush(bd), 0);

	const struct { uint64_t off; size_t len; } bad[] = {
		{ size - 100, 200 },        /* straddles the end */
		{ size, 1 },                /* starts at the end */
		{ size + 4096, 16 },        /* beyond */
		{ UINT64_MAX - 10, 100 },   /* off + len wraps */
		{ 0, size + 1 },            /* longer than the device */
		{ 1, SIZE_MAX },            /* len wraps */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = bad[i].len < sizeof(buf) ? bad[i].len : sizeof(buf);
		memset(buf, 0xcd, sizeof(buf));
		/* The length passed is the real one; the buffer only needs to be
		 * as long as the part that must never be copied anyway. */
		ck_assert_msg(blockdev_pread(bd, buf, bad[i].len, bad[i].off) < 0,
			      "read of %zu bytes at %" PRIu64 " succeeded", bad[i].len, bad[i].off);
		ck_assert_msg(all_bytes(buf, len, 0xcd), "failed read at %" PRIu64 " wrote to the buffer", bad[i].off);
		ck_assert_msg(blockdev_pwrite(bd, buf, bad[i].len, bad[i].off) < 0,
			      "write of %zu bytes at %" PRIu64 " succeeded", bad[i].len, bad[i].off);
		ck_assert_msg(blockdev_discard(bd, bad[i].off, bad[i].len) < 0,
			      "discard of %zu bytes at %" PRIu64 " succeeded", bad[i].len, bad[i].off);
	}
	ck_assert_uint_eq(blockdev_mem_pending(bd), 0);
	check_device(bd, model, size);
	ck_assert_int_eq(blockdev_flush(bd), 0);
	check_device(bd, model, size);
	blockdev_close(bd);
	free(model);
}
END_TEST

START_TEST(test_mem_cache_unflushed_visible)
{
	struct csv_blockdev *bd;
	uint8_t a[8192], b[4096], got[16384];

	ck_assert_int_eq(blockdev_open_mem(1 << 20, true, &bd), 0);
	memset(a, 0xaa, sizeof(a));
	memset(b, 0xbb, sizeof(b));
	ck_assert_int_eq(blockdev_pwrite(bd, a, sizeof(a), 4096), 0);
	ck_assert_int_eq(blockdev_pwrite(bd, b, sizeof(b), 6144), 0); /* overlaps a */
	ck_assert_uint_eq(blockdev_mem_pending(bd), 2);

	/* Reads see the cache, the later write over the earlier one. */
	ck_assert_int_eq(blockdev_pread(bd, got, sizeof(got), 0), 0);
	ck_assert(all_bytes(got, 4096, 0));
	ck_assert(all_bytes(got + 4096, 2048, 0xaa));
	ck_assert(all_bytes(got + 6144, 4096, 0xbb));
	ck_assert(all_bytes(got + 10240, 2048, 0xaa));
	ck_assert(all_bytes(got + 12288, 4096, 0));

	/* The stable medium has none of it yet. */
	ck_assert(all_bytes(blockdev_mem_data(bd), 1 << 20, 0));
	blockdev_close(bd); /* with writes pending: no leak (ASan) */
}
END_TEST

START_TEST(test_mem_crash_loses_unflushed)
{
	struct csv_blockdev *bd;
	uint8_t a[4096], b[4096], got[4096];

	ck_assert_int_eq(blockdev_open_mem(1 << 20, true, &bd), 0);
	memset(a, 0xaa, sizeof(a));
	memset(b, 0xbb, sizeof(b));
	ck_assert_int_eq(blockdev_pwrite(bd, a, sizeof(a), 0), 0);
	ck_assert_int_eq(blockdev_flush(bd), 0);
	ck_assert_int_eq(blockdev_pwrite(bd, b, sizeof(b), 0), 0);
	ck_assert_int_eq(blockdev_pwrite(bd, b, sizeof(b), 65536), 0);

	blockdev_mem_crash(bd);
	ck_assert_uint_eq(blockdev_mem_pending(bd), 0);
	ck_assert_int_eq(blockdev_pread(bd, got, sizeof(got), 0), 0);
	ck_assert_msg(all_bytes(got, sizeof(got), 0xaa), "an unflushed overwrite survived the crash");
	ck_assert_int_eq(blockdev_pread(bd, got, sizeof(got), 65536), 0);
	ck_assert_msg(all_bytes(got, sizeof(got), 0), "an unflushed write survived the crash");

	/* The device works on after the crash. */
	ck_assert_int_eq(blockdev_pwrite(bd, b, sizeof(b), 8192), 0);
	ck_assert_int_eq(blockdev_flush(bd), 0);
	blockdev_mem_crash(bd);
	ck_assert_int_eq(blockdev_pread(bd, got, sizeof(got), 8192), 0);
	ck_assert(all_bytes(got, sizeof(got), 0xbb));
	blockdev_close(bd);
}
END_TEST

START_TEST(test_mem_flush_keeps)
{
	struct csv_blockdev *bd;
	const size_t size = 128 << 10;
	uint8_t *model = calloc(1, size), chunk[3000];

	ck_assert_ptr_nonnull(model);
	ck_assert_int_eq(blockdev_open_mem(size, true, &bd), 0);
	rng_seed(5);
	for (int i = 0; i < 50; i++) {
		size_t off = (size_t)(rng() % (size - sizeof(chunk)));
		fill_random(chunk, sizeof(chunk));
		ck_assert_int_eq(blockdev_pwrite(bd, chunk, sizeof(chunk), off), 0);
		memcpy(model + off, chunk, sizeof(chunk));
	}
	ck_assert_uint_eq(blockdev_mem_pending(bd), 50);
	ck_assert_int_eq(blockdev_flush(bd), 0);
	ck_assert_uint_eq(blockdev_mem_pending(bd), 0);
	/* Flushed writes reached the medium, in order. */
	ck_assert(memcmp(blockdev_mem_data(bd), model, size) == 0);
	blockdev_mem_crash(bd);
	check_device(bd, model, size);
	blockdev_mem_crash_random(bd, 1);
	check_device(bd, model, size);
	blockdev_close(bd);
	free(model);
}
END_TEST

START_TEST(test_mem_flush_count)
{
	struct csv_blockdev *bd;
	uint8_t b[512] = { 1 };

	ck_assert_int_eq(blockdev_open_mem(1 << 20, _i, &bd), 0);
	ck_assert_uint_eq(blockdev_flush_count(bd), 0);
	ck_assert_int_eq(blockdev_pwrite(bd, b, sizeof(b), 0), 0);
	ck_assert_uint_eq(blockdev_flush_count(bd), 0);
	for (unsigned i = 1; i <= 5; i++) {
		ck_assert_int_eq(blockdev_flush(bd), 0);
		ck_assert_uint_eq(blockdev_flush_count(bd), i);
	}
	/* A flush with nothing pending still counts: it is a barrier. */
	ck_assert_int_eq(blockdev_flush(bd), 0);
	ck_assert_uint_eq(blockdev_flush_count(bd), 6);
	/* Crashes are not flushes. */
	blockdev_mem_crash(bd);
	blockdev_mem_crash_random(bd, 3);
	ck_assert_uint_eq(blockdev_flush_count(bd), 6);
	blockdev_close(bd);
}
END_TEST

START_TEST(test_mem_open_from)
{
	struct csv_blockdev *bd;
	const size_t size = 40000; /* not a multiple of anything */
	uint8_t *src = xmalloc(size), *copy = xmalloc(size), *got = xmalloc(size);

	rng_seed(11);
	fill_random(src, size);
	memcpy(copy, src, size);
	ck_assert_int_eq(blockdev_open_mem_from(src, size, &bd), 0);
	ck_assert_uint_eq(blockdev_size(bd), size);
	check_device(bd, copy, size);

	/* A copy: changing the source later does not change the device... */
	memset(src, 0, size);
	check_device(bd, copy, size);
	/* ...and writing the device does not write the source. */
	memset(got, 0x11, 100);
	ck_assert_int_eq(blockdev_pwrite(bd, got, 100, 500), 0);
	ck_assert(all_bytes(src, size, 0));
	memcpy(copy + 500, got, 100);
	check_device(bd, copy, size);
	ck_assert(blockdev_pread(bd, got, 2, size - 1) < 0);
	blockdev_close(bd);

	/* An empty device. */
	ck_assert_int_eq(blockdev_open_mem_from(src, 0, &bd), 0);
	ck_assert_uint_eq(blockdev_size(bd), 0);
	ck_assert(blockdev_pread(bd, got, 1, 0) < 0);
	blockdev_close(bd);
	free(src);
	free(copy);
	free(got);
}
END_TEST

/* "Devices that cannot do it return 0 and leave the data." */
START_TEST(test_mem_discard_keeps_data)
{
	struct csv_blockdev *bd;
	uint8_t a[8192], got[8192];

	ck_assert_int_eq(blockdev_open_mem(1 << 20, false, &bd), 0);
	memset(a, 0x3c, sizeof(a));
	ck_assert_int_eq(blockdev_pwrite(bd, a, sizeof(a), 0), 0);
	ck_assert_int_eq(blockdev_discard(bd, 0, sizeof(a)), 0);
	ck_assert_int_eq(blockdev_pread(bd, got, sizeof(got), 0), 0);
	ck_assert(memcmp(got, a, sizeof(a)) == 0);
	blockdev_close(bd);
}
END_TEST

/* ---- The random crash ------------------------------------------------------ */

#define CR_BLOCK 4096u
#define CR_BLOCKS 64u

static uint8_t old_byte(unsigned blk, size_t i) { return (uint8_t)(0x40 + blk + i * 7); }
static uint8_t new_byte(unsigned blk, size_t i) { return (uint8_t)(0x91 + blk * 3 + i * 13); }

enum block_fate { FATE_OLD, FATE_NEW, FATE_TORN, FATE_INVENTED };

/* What a block holds after a crash: the old image, the new one, or the
 * new one up to a 512-byte boundary and the old one after it. */
static enum block_fate block_fate(const uint8_t *b, unsigned blk, size_t *ret_torn_at)
{
	size_t i = 0;
	while (i < CR_BLOCK && b[i] == new_byte(blk, i))
		i++;
	if (i == CR_BLOCK)
		return FATE_NEW;
	if (i % 512)
		return FATE_INVENTED;
	for (size_t k = i; k < CR_BLOCK; k++)
		if (b[k] != old_byte(blk, k))
			return FATE_INVENTED;
	if (i == 0)
		return FATE_OLD;
	*ret_torn_at = i;
	return FATE_TORN;
}

/* Sets up flushed old images, writes new images to some blocks without a
 * flush, and crashes with seed. ret_written says which blocks got a new
 * image; ret_data receives the device's contents after the crash. */
static void crash_scenario(unsigned seed, bool written[CR_BLOCKS], uint8_t *ret_data)
{
	struct csv_blockdev *bd;
	uint8_t blk[CR_BLOCK];

	ck_assert_int_eq(blockdev_open_mem(CR_BLOCKS * CR_BLOCK, true, &bd), 0);
	for (unsigned b = 0; b < CR_BLOCKS; b++) {
		for (size_t i = 0; i < CR_BLOCK; i++)
			blk[i] = old_byte(b, i);
		ck_assert_int_eq(blockdev_pwrite(bd, blk, CR_BLOCK, (uint64_t)b * CR_BLOCK), 0);
	}
	ck_assert_int_eq(blockdev_flush(bd), 0);

	rng_seed(seed * 2654435761u + 1);
	size_t n = 0;
	for (unsigned b = 0; b < CR_BLOCKS; b++) {
		written[b] = rng() % 3 != 0;
		if (!written[b])
			continue;
		for (size_t i = 0; i < CR_BLOCK; i++)
			blk[i] = new_byte(b, i);
		ck_assert_int_eq(blockdev_pwrite(bd, blk, CR_BLOCK, (uint64_t)b * CR_BLOCK), 0);
		n++;
	}
	ck_assert_uint_eq(blockdev_mem_pending(bd), n);
	blockdev_mem_crash_random(bd, seed);
	ck_assert_uint_eq(blockdev_mem_pending(bd), 0);
	ck_assert_int_eq(blockdev_pread(bd, ret_data, CR_BLOCKS * CR_BLOCK, 0), 0);
	/* What reads see is what the medium holds: nothing left in a cache. */
	ck_assert(memcmp(blockdev_mem_data(bd), ret_data, CR_BLOCKS * CR_BLOCK) == 0);
	blockdev_close(bd);
}

START_TEST(test_mem_crash_random_subset)
{
	uint8_t *data = xmalloc(CR_BLOCKS * CR_BLOCK);
	unsigned kept_total = 0, lost_total = 0, torn_total = 0;

	for (unsigned seed = 1; seed <= 400; seed++) {
		bool written[CR_BLOCKS];
		unsigned torn = 0;

		crash_scenario(seed, written, data);
		for (unsigned b = 0; b < CR_BLOCKS; b++) {
			size_t at = 0;
			enum block_fate f = block_fate(data + (size_t)b * CR_BLOCK, b, &at);
			REQUIRE(f != FATE_INVENTED, "seed %u: block %u holds data that was never written", seed, b);
			if (!written[b]) {
				REQUIRE(f == FATE_OLD, "seed %u: block %u was not written but changed", seed, b);
				continue;
			}
			if (f == FATE_OLD)
				lost_total++;
			else if (f == FATE_NEW)
				kept_total++;
			else {
				REQUIRE(at > 0 && at < CR_BLOCK, "seed %u: block %u torn at %zu", seed, b, at);
				torn++;
			}
		}
		REQUIRE(torn <= 1, "seed %u: %u writes torn, at most one may be", seed, torn);
		torn_total += torn;
	}
	/* Over 400 crashes the simulator did drop, keep and tear writes: a
	 * simulator that always keeps or always drops tests nothing. */
	ck_assert_uint_gt(kept_total, 0);
	ck_assert_uint_gt(lost_total, 0);
	ck_assert_uint_gt(torn_total, 0);
	free(data);
}
END_TEST

START_TEST(test_mem_crash_random_deterministic)
{
	uint8_t *a = xmalloc(CR_BLOCKS * CR_BLOCK), *b = xmalloc(CR_BLOCKS * CR_BLOCK);
	bool wa[CR_BLOCKS], wb[CR_BLOCKS];
	bool some_differ = false;

	for (unsigned seed = 1; seed <= 20; seed++) {
		crash_scenario(seed, wa, a);
		crash_scenario(seed, wb, b);
		ck_assert_msg(memcmp(a, b, CR_BLOCKS * CR_BLOCK) == 0, "seed %u gave two different crashes", seed);
	}
	/* Same writes, different seeds: different outcomes (some of them). */
	for (unsigned seed = 1; seed <= 20 && !some_differ; seed++) {
		crash_scenario(seed, wa, a);
		/* Same write set as seed, crashed with another seed. */
		struct csv_blockdev *bd;
		uint8_t blk[CR_BLOCK];
		ck_assert_int_eq(blockdev_open_mem(CR_BLOCKS * CR_BLOCK, true, &bd), 0);
		for (unsigned k = 0; k < CR_BLOCKS; k++) {
			for (size_t i = 0; i < CR_BLOCK; i++)
				blk[i] = old_byte(k, i);
			ck_assert_int_eq(blockdev_pwrite(bd, blk, CR_BLOCK, (uint64_t)k * CR_BLOCK), 0);
		}
		ck_assert_int_eq(blockdev_flush(bd), 0);
		for (unsigned k = 0; k < CR_BLOCKS; k++) {
			if (!wa[k])
				continue;
			for (size_t i = 0; i < CR_BLOCK; i++)
				blk[i] = new_byte(k, i);
			ck_assert_int_eq(blockdev_pwrite(bd, blk, CR_BLOCK, (uint64_t)k * CR_BLOCK), 0);
		}
		blockdev_mem_crash_random(bd, seed + 1000);
		ck_assert_int_eq(blockdev_pread(bd, b, CR_BLOCKS * CR_BLOCK, 0), 0);
		blockdev_close(bd);
		some_differ = memcmp(a, b, CR_BLOCKS * CR_BLOCK) != 0;
	}
	ck_assert_msg(some_differ, "the seed does not change which writes survive");
	free(a);
	free(b);
}
END_TEST

/* Overlapping writes of several sectors: after the crash every sector
 * holds its old contents or the contents some write put there, never a
 * mix inside a sector and never anything else. Each sector image carries
 * a tag (write number, sector of the device) in its first bytes. */
START_TEST(test_mem_crash_random_overlapping)
{
	enum { SECTORS = 256, SEC = 512, WRITES = 40 };
	uint8_t *buf = xmalloc(16 * SEC), *data = xmalloc(SECTORS * SEC);

	for (unsigned seed = 1; seed <= 200; seed++) {
		struct csv_blockdev *bd;
		/* covered[w][s]: write w (1-based; 0 = the old image) wrote sector s */
		static bool covered[WRITES + 1][SECTORS];
		memset(covered, 0, sizeof(covered));

		ck_assert_int_eq(blockdev_open_mem(SECTORS * SEC, true, &bd), 0);
		for (unsigned s = 0; s < SECTORS; s++) {
			memset(buf, 0, SEC);
			buf[0] = 0;
			buf[1] = (uint8_t)s;
			memset(buf + 2, (int)(s * 5 + 1), SEC - 2);
			ck_assert_int_eq(blockdev_pwrite(bd, buf, SEC, (uint64_t)s * SEC), 0);
			covered[0][s] = true;
		}
		ck_assert_int_eq(blockdev_flush(bd), 0);

		rng_seed(seed);
		for (unsigned w = 1; w <= WRITES; w++) {
			unsigned n = 1 + (unsigned)(rng() % 16);
			unsigned first = (unsigned)(rng() % (SECTORS - n + 1));
			for (unsigned k = 0; k < n; k++) {
				uint8_t *sec = buf + (size_t)k * SEC;
				sec[0] = (uint8_t)w;
				sec[1] = (uint8_t)(first + k);
				memset(sec + 2, (int)(w * 31 + (first + k) * 5 + 1), SEC - 2);
				covered[w][first + k] = true;
			}
			ck_assert_int_eq(blockdev_pwrite(bd, buf, (size_t)n * SEC, (uint64_t)first * SEC), 0);
		}
		blockdev_mem_crash_random(bd, seed);
		ck_assert_int_eq(blockdev_pread(bd, data, SECTORS * SEC, 0), 0);
		blockdev_close(bd);

		for (unsigned s = 0; s < SECTORS; s++) {
			const uint8_t *sec = data + (size_t)s * SEC;
			unsigned w = sec[0];
			REQUIRE(w <= WRITES && sec[1] == (uint8_t)s && covered[w][s],
				"seed %u: sector %u holds a tag (write %u, sector %u) never written there",
				seed, s, w, sec[1]);
			uint8_t fill = (uint8_t)(w ? w * 31 + s * 5 + 1 : s * 5 + 1);
			REQUIRE(all_bytes(sec + 2, SEC - 2, fill), "seed %u: sector %u is a mix of writes", seed, s);
		}
	}
	free(buf);
	free(data);
}
END_TEST

/* ---- Local files ---------------------------------------------------------- */

START_TEST(test_path_round_trip)
{
	char path[PATH_MAX];
	struct csv_blockdev *bd;
	const size_t size = (1 << 20) + 512;
	uint8_t *model = xmalloc(size), *chunk = xmalloc(70000);

	make_tmpdir();
	tmp_path(path, sizeof(path), "lun.img");
	rng_seed(21);
	fill_random(model, size);
	write_file(path, model, size);

	ck_assert_int_eq(blockdev_open(path, 0, &bd), 0);
	ck_assert_uint_eq(blockdev_size(bd), size);
	ck_assert(blockdev_is_regular_file(bd));
	ck_assert_str_eq(blockdev_name(bd), path);
	uint32_t al = blockdev_alignment(bd);
	ck_assert_msg(al >= 512 && (al & (al - 1)) == 0, "alignment %u", al);
	ck_assert_ptr_null(blockdev_mem_data(bd));
	check_device(bd, model, size);

	for (int i = 0; i < 100; i++) {
		size_t len = (size_t)(rng() % 70000);
		size_t off = (size_t)(rng() % (size - len + 1));
		fill_random(chunk, len);
		ck_assert_int_eq(blockdev_pwrite(bd, chunk, len, off), 0);
		memcpy(model + off, chunk, len);
	}
	ck_assert_int_eq(blockdev_flush(bd), 0);
	ck_assert_uint_eq(blockdev_flush_count(bd), 1);
	check_device(bd, model, size);
	blockdev_close(bd);

	/* The file itself, read without blockdev, holds the writes. */
	uint8_t *file = xmalloc(size);
	ck_assert_int_eq(file_size(path), (off_t)size);
	read_file(path, file, size);
	ck_assert(memcmp(file, model, size) == 0);
	free(file);
	free(model);
	free(chunk);
	remove_tmpdir();
}
END_TEST

/* O_DIRECT on a file: writes and reads at any offset and length, from
 * buffers at any address, land byte-exact (the partial blocks of a write
 * are read, changed and written back). */
START_TEST(test_path_direct_unaligned)
{
	char path[PATH_MAX];
	struct csv_blockdev *bd;
	const size_t size = 4 << 20;
	uint8_t *model = xmalloc(size), *chunk = xmalloc(210000), *back = xmalloc(210000);

	make_tmpdir();
	tmp_path(path, sizeof(path), "lun.img");
	rng_seed(23);
	fill_random(model, size);
	write_file(path, model, size);

	ck_assert_int_eq(blockdev_open(path, CSV_BDEV_DIRECT, &bd), 0);
	ck_assert_uint_eq(blockdev_size(bd), size);
	for (int i = 0; i < 300; i++) {
		size_t len = 1 + (size_t)(rng() % 200000);
		size_t off = (size_t)(rng() % (size - len + 1));
		/* Every third request aligned, the others not; memory off by 0..3. */
		if (i % 3 == 0) {
			off &= ~(size_t)4095;
			len = (len + 4095) & ~(size_t)4095;
			if (off + len > size)
				len = size - off;
		}
		uint8_t *p = chunk + (i % 4);
		fill_random(p, len);
		ck_assert_int_eq(blockdev_pwrite(bd, p, len, off), 0);
		memcpy(model + off, p, len);
		size_t roff = (size_t)(rng() % (size - len + 1));
		ck_assert_int_eq(blockdev_pread(bd, back + (i % 3), len, roff), 0);
		ck_assert(memcmp(back + (i % 3), model + roff, len) == 0);
	}
	ck_assert_int_eq(blockdev_flush(bd), 0);
	check_device(bd, model, size);
	blockdev_close(bd);
	uint8_t *file = xmalloc(size);
	ck_assert_int_eq(file_size(path), (off_t)size);
	read_file(path, file, size);
	ck_assert(memcmp(file, model, size) == 0);

	/* A file that ends inside a block still works (without O_DIRECT). */
	write_file(path, model, size - 100);
	ck_assert_int_eq(blockdev_open(path, CSV_BDEV_DIRECT, &bd), 0);
	ck_assert_int_eq(blockdev_pwrite(bd, chunk, 300, size - 400), 0);
	ck_assert_int_eq(blockdev_pread(bd, back, 300, size - 400), 0);
	ck_assert(memcmp(back, chunk, 300) == 0);
	ck_assert_int_eq(blockdev_pwrite(bd, chunk, 300, size - 200), -ENOSPC);
	blockdev_close(bd);
	ck_assert_int_eq(file_size(path), (off_t)(size - 100));
	free(file);
	free(model);
	free(chunk);
	free(back);
	remove_tmpdir();
}
END_TEST

/* Out of range on a file: an error, and above all no write that grows the
 * file past the volume. */
START_TEST(test_path_out_of_range)
{
	char path[PATH_MAX];
	struct csv_blockdev *bd;
	const size_t size = 64 << 10;
	uint8_t *model = xmalloc(size), buf[4096];

	make_tmpdir();
	tmp_path(path, sizeof(path), "small.img");
	rng_seed(22);
	fill_random(model, size);
	write_file(path, model, size);
	ck_assert_int_eq(blockdev_open(path, 0, &bd), 0);

	memset(buf, 0xcd, sizeof(buf));
	ck_assert(blockdev_pread(bd, buf, sizeof(buf), size - 100) < 0);
	ck_assert(all_bytes(buf, sizeof(buf), 0xcd));
	ck_assert(blockdev_pread(bd, buf, 1, size) < 0);
	ck_assert(blockdev_pread(bd, buf, 16, UINT64_MAX - 8) < 0);
	ck_assert(all_bytes(buf, sizeof(buf), 0xcd));
	ck_assert(blockdev_pwrite(bd, buf, sizeof(buf), size - 100) < 0);
	ck_assert(blockdev_pwrite(bd, buf, 1, size) < 0);
	ck_assert(blockdev_pwrite(bd, buf, 16, UINT64_MAX - 8) < 0);
	ck_assert(blockdev_discard(bd, size - 4096, 8192) < 0);
	blockdev_close(bd);

	ck_assert_int_eq(file_size(path), (off_t)size);
	uint8_t *file = xmalloc(size);
	read_file(path, file, size);
	ck_assert(memcmp(file, model, size) == 0);
	free(file);
	free(model);
	remove_tmpdir();
}
END_TEST

/* Whether the filesystem under dir can punch holes. */
static bool can_punch_hole(const char *dir)
{
	char path[PATH_MAX];
	path_printf(path, sizeof(path), "%s/probe", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 65536), 0);
	bool ok = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096) == 0;
	close(fd);
	unlink(path);
	return ok;
}

START_TEST(test_path_discard_reads_zeros)
{
	char path[PATH_MAX];
	struct csv_blockdev *bd;
	const size_t size = 1 << 20;
	uint8_t *model = xmalloc(size);

	make_tmpdir();
	tmp_path(path, sizeof(path), "lun.img");
	rng_seed(23);
	memset(model, 0x5a, size);
	write_file(path, model, size);
	bool punch = can_punch_hole(tmpdir);
	if (!punch)
		fprintf(stderr, "test-blockdev: %s cannot punch holes: discard must keep the data\n", tmpdir);

	ck_assert_int_eq(blockdev_open(path, 0, &bd), 0);
	/* Whole blocks, then an unaligned range inside a block. */
	ck_assert_int_eq(blockdev_discard(bd, 65536, 131072), 0);
	ck_assert_int_eq(blockdev_discard(bd, 300000, 1000), 0);
	if (punch) {
		memset(model + 65536, 0, 131072);
		memset(model + 300000, 0, 1000);
	}
	check_device(bd, model, size);
	/* The device stays writable over the hole. */
	uint8_t b[100];
	memset(b, 0x77, sizeof(b));
	ck_assert_int_eq(blockdev_pwrite(bd, b, sizeof(b), 70000), 0);
	memcpy(model + 70000, b, sizeof(b));
	check_device(bd, model, size);
	blockdev_close(bd);
	ck_assert_int_eq(file_size(path), (off_t)size);
	free(model);
	remove_tmpdir();
}
END_TEST

/* Discarding an empty range of a file succeeds, as on memory and NBD
 * devices: fallocate() refuses a length of 0, so it must not be called. */
START_TEST(test_path_discard_empty_range)
{
	char path[PATH_MAX];
	struct csv_blockdev *bd;
	uint8_t data[8192], got[8192];

	make_tmpdir();
	tmp_path(path, sizeof(path), "lun.img");
	memset(data, 0x5a, sizeof(data));
	write_file(path, data, sizeof(data));
	ck_assert_int_eq(blockdev_open(path, 0, &bd), 0);
	int r = blockdev_discard(bd, 4096, 0);
	ck_assert_msg(r == 0, "discarding 0 bytes of a file gave %d (%s)", r, strerror(-r));
	ck_assert_int_eq(blockdev_discard(bd, sizeof(data), 0), 0);
	ck_assert_int_eq(blockdev_pread(bd, got, sizeof(got), 0), 0);
	ck_assert(memcmp(got, data, sizeof(data)) == 0);
	blockdev_close(bd);
	remove_tmpdir();
}
END_TEST

START_TEST(test_path_rdonly_refuses_writes)
{
	char path[PATH_MAX];
	struct csv_blockdev *bd;
	const size_t size = 256 << 10;
	uint8_t *model = xmalloc(size), b[4096];

	make_tmpdir();
	tmp_path(path, sizeof(path), "ro.img");
	rng_seed(24);
	fill_random(model, size);
	write_file(path, model, size);

	ck_assert_int_eq(blockdev_open(path, CSV_BDEV_RDONLY, &bd), 0);
	ck_assert_uint_eq(blockdev_size(bd), size);
	check_device(bd, model, size);
	memset(b, 0, sizeof(b));
	int r = blockdev_pwrite(bd, b, sizeof(b), 0);
	ck_assert_msg(r == -EROFS || r == -EBADF, "write on a read-only device gave %d", r);
	r = blockdev_discard(bd, 0, 65536);
	ck_assert_msg(r == 0 || r == -EROFS || r == -EBADF, "discard on a read-only device gave %d", r);
	ck_assert_int_eq(blockdev_flush(bd), 0);
	check_device(bd, model, size);
	blockdev_close(bd);

	uint8_t *file = xmalloc(size);
	read_file(path, file, size);
	ck_assert_msg(memcmp(file, model, size) == 0, "a read-only device changed the file");
	free(file);
	free(model);
	remove_tmpdir();
}
END_TEST

START_TEST(test_path_missing_enoent)
{
	char path[PATH_MAX];
	struct csv_blockdev *bd = UNTOUCHED;

	make_tmpdir();
	tmp_path(path, sizeof(path), "no-such.img");
	ck_assert_int_eq(blockdev_open(path, 0, &bd), -ENOENT);
	ck_assert_int_eq(blockdev_open(path, CSV_BDEV_RDONLY, &bd), -ENOENT);
	ck_assert_ptr_eq(bd, UNTOUCHED);
	/* Opening did not create it. */
	ck_assert_int_eq(access(path, F_OK), -1);
	remove_tmpdir();
}
END_TEST

START_TEST(test_path_not_a_device)
{
	struct csv_blockdev *bd = UNTOUCHED;

	make_tmpdir();
	int r = blockdev_open(tmpdir, 0, &bd);
	ck_assert_msg(r < 0, "opening a directory read-write gave %d", r);
	r = blockdev_open(tmpdir, CSV_BDEV_RDONLY, &bd);
	ck_assert_msg(r < 0, "opening a directory read-only gave %d", r);
	/* A character device is no block device either. */
	if (access("/dev/null", R_OK) == 0) {
		r = blockdev_open("/dev/null", CSV_BDEV_RDONLY, &bd);
		ck_assert_msg(r < 0, "opening /dev/null gave %d", r);
	}
	ck_assert_ptr_eq(bd, UNTOUCHED);
	remove_tmpdir();
}
END_TEST

/* ---- NBD, through nbdkit ---------------------------------------------------- */

static char nbdkit_bin[PATH_MAX];

static bool find_nbdkit(void)
{
	const char *path = getenv("PATH");
	if (!path)
		path = "/usr/bin:/bin:/usr/sbin:/sbin";
	while (*path) {
		const char *colon = strchr(path, ':');
		size_t n = colon ? (size_t)(colon - path) : strlen(path);
		snprintf(nbdkit_bin, sizeof(nbdkit_bin), "%.*s/nbdkit", (int)n, path);
		if (n && access(nbdkit_bin, X_OK) == 0)
			return true;
		path += n + (colon ? 1 : 0);
	}
	nbdkit_bin[0] = '\0';
	return false;
}

/* Whether this nbdkit has the pause filter (nbdkit 1.22 or later). */
static bool have_pause_filter(void)
{
	if (!nbdkit_bin[0])
		return false;
	pid_t pid = fork();
	if (pid < 0)
		return false;
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 1);
		dup2(fd, 2);
		execl(nbdkit_bin, nbdkit_bin, "--filter=pause", "null", "--dump-plugin", (char *)NULL);
		_exit(127);
	}
	int status;
	return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

struct nbd_server {
	pid_t pid;
	char sock[PATH_MAX];
	char uri[PATH_MAX + 32];
	char pause_sock[PATH_MAX]; /* the pause filter's control socket, or "" */
	char pause_arg[PATH_MAX + 16];
};

/* Starts nbdkit serving one plugin on a Unix socket in tmpdir and waits
 * until a client can connect. extra is an optional server flag ("-r");
 * with pausable, under the pause filter (see pause_ctl()). */
static void nbd_start_with(struct nbd_server *s, const char *extra, const char *plugin, const char *arg,
			   bool pausable)
{
	ck_assert_msg(nbdkit_bin[0], "nbdkit is not installed");
	path_printf(s->sock, sizeof(s->sock), "%s/nbd.sock", tmpdir);
	path_printf(s->uri, sizeof(s->uri), "nbd+unix:///?socket=%s", s->sock);
	unlink(s->sock);
	s->pause_sock[0] = '\0';
	if (pausable) {
		path_printf(s->pause_sock, sizeof(s->pause_sock), "%s/pause.sock", tmpdir);
		ck_assert_msg(strlen(s->pause_sock) < sizeof(((struct sockaddr_un *)0)->sun_path),
			      "%s is too long for a socket", s->pause_sock);
		path_printf(s->pause_arg, sizeof(s->pause_arg), "pause-control=%s", s->pause_sock);
		unlink(s->pause_sock);
	}

	s->pid = fork();
	ck_assert_int_ge(s->pid, 0);
	if (s->pid == 0) {
		const char *argv[12];
		int n = 0;
		argv[n++] = nbdkit_bin;
		argv[n++] = "-f";
		argv[n++] = "--exit-with-parent";
		if (extra)
			argv[n++] = extra;
		if (pausable)
			argv[n++] = "--filter=pause";
		argv[n++] = "-U";
		argv[n++] = s->sock;
		argv[n++] = plugin;
		argv[n++] = arg;
		if (pausable)
			argv[n++] = s->pause_arg;
		argv[n] = NULL;
		execv(nbdkit_bin, (char *const *)argv);
		_exit(127);
	}

	/* Ready when its socket accepts a connection: up to 15 s. */
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	for (int i = 0; i < 750; i++) {
		struct csv_blockdev *bd;
		int status;
		ck_assert_msg(waitpid(s->pid, &status, WNOHANG) == 0, "nbdkit %s exited at start", plugin);
		if (access(s->sock, F_OK) == 0 && blockdev_open(s->uri, CSV_BDEV_RDONLY, &bd) == 0) {
			blockdev_close(bd);
			return;
		}
		nanosleep(&ts, NULL);
	}
	ck_abort_msg("nbdkit did not start listening on %s", s->sock);
}

static void nbd_start(struct nbd_server *s, const char *extra, const char *plugin, const char *arg)
{
	nbd_start_with(s, extra, plugin, arg, false);
}

/* Sends c to the pause filter ('p' pause, 'r' resume) and waits for its
 * answer: 'P' once the requests already running have ended, 'R'. From
 * then on, requests the server reads wait (the handshake does not). */
static void pause_ctl(struct nbd_server *s, char c)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 10 };
	char ack = 0;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	memcpy(a.sun_path, s->pause_sock, strlen(s->pause_sock) + 1); /* its length was checked */
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	ck_assert_msg(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect %s: %s", a.sun_path,
		      strerror(errno));
	ck_assert_int_eq(write(fd, &c, 1), 1);
	ck_assert_int_eq(read(fd, &ack, 1), 1);
	ck_assert_int_eq(ack, toupper((unsigned char)c));
	close(fd);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Waits up to ms for blockdev_stalled(bd) to be 0. */
static bool wait_unstalled(struct csv_blockdev *bd, unsigned ms)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	for (uint64_t until = now_ms() + ms; now_ms() < until; nanosleep(&ts, NULL))
		if (blockdev_stalled(bd) == 0)
			return true;
	return blockdev_stalled(bd) == 0;
}

static void nbd_stop(struct nbd_server *s)
{
	int status;
	if (s->pid <= 0)
		return;
	kill(s->pid, SIGTERM);
	waitpid(s->pid, &status, 0);
	s->pid = 0;
}

/* Loop tests over NBD run with _i = 0 (no timeout: libnbd's synchronous
 * calls) and 1 (a timeout: its asynchronous ones). */
static unsigned loop_timeout(int i) { return i ? 30000 : 0; } /* 80 MiB takes seconds under ASan */

START_TEST(test_nbd_memory_round_trip)
{
	struct nbd_server srv;
	struct csv_blockdev *bd;
	const size_t size = 16 << 20;
	uint8_t *model = calloc(1, size), *chunk = xmalloc(300000);

	ck_assert_ptr_nonnull(model);
	make_tmpdir();
	nbd_start(&srv, NULL, "memory", "16M");
	ck_assert_int_eq(blockdev_open_timed(srv.uri, 0, loop_timeout(_i), &bd), 0);
	ck_assert_uint_eq(blockdev_io_timeout(bd), loop_timeout(_i));
	ck_assert_uint_eq(blockdev_size(bd), size);
	ck_assert(!blockdev_is_regular_file(bd));
	ck_assert_str_eq(blockdev_name(bd), srv.uri);
	ck_assert_uint_gt(blockdev_alignment(bd), 0);

	rng_seed(31);
	for (int i = 0; i < 60; i++) {
		size_t len = (size_t)(rng() % 300000);
		size_t off = (size_t)(rng() % (size - len + 1));
		fill_random(chunk, len);
		ck_assert_int_eq(blockdev_pwrite(bd, chunk, len, off), 0);
		memcpy(model + off, chunk, len);
	}
	ck_assert_int_eq(blockdev_flush(bd), 0);
	ck_assert_uint_eq(blockdev_flush_count(bd), 1);
	ck_assert_int_eq(blockdev_flush(bd), 0);
	ck_assert_uint_eq(blockdev_flush_count(bd), 2);
	check_device(bd, model, size);

	/* Out of range: errors, the buffer untouched. */
	memset(chunk, 0xcd, 8192);
	ck_assert(blockdev_pread(bd, chunk, 8192, size - 4096) < 0);
	ck_assert(all_bytes(chunk, 8192, 0xcd));
	ck_assert(blockdev_pwrite(bd, chunk, 8192, size - 4096) < 0);
	ck_assert(blockdev_pwrite(bd, chunk, 1, size) < 0);

	/* Discard: the range reads zeros or its old data, the rest is intact. */
	ck_assert_int_eq(blockdev_discard(bd, 1 << 20, 1 << 20), 0);
	uint8_t *got = xmalloc(size);
	ck_assert_int_eq(blockdev_pread(bd, got, size, 0), 0);
	ck_assert(memcmp(got, model, 1 << 20) == 0);
	ck_assert(memcmp(got + (2 << 20), model + (2 << 20), size - (2 << 20)) == 0);
	ck_assert(all_bytes(got + (1 << 20), 1 << 20, 0) ||
		  memcmp(got + (1 << 20), model + (1 << 20), 1 << 20) == 0);
	memcpy(model + (1 << 20), got + (1 << 20), 1 << 20);
	blockdev_close(bd);

	/* Another connection to the same export sees the data. */
	ck_assert_int_eq(blockdev_open(srv.uri, CSV_BDEV_RDONLY, &bd), 0);
	check_device(bd, model, size);
	blockdev_close(bd);
	nbd_stop(&srv);
	free(got);
	free(model);
	free(chunk);
	remove_tmpdir();
}
END_TEST

START_TEST(test_nbd_file_round_trip)
{
	struct nbd_server srv;
	struct csv_blockdev *bd;
	char path[PATH_MAX];
	const size_t size = 1 << 20;
	uint8_t *model = xmalloc(size), chunk[5000];

	make_tmpdir();
	tmp_path(path, sizeof(path), "export.img");
	rng_seed(32);
	fill_random(model, size);
	write_file(path, model, size);
	nbd_start(&srv, NULL, "file", path);

	ck_assert_int_eq(blockdev_open(srv.uri, 0, &bd), 0);
	ck_assert_uint_eq(blockdev_size(bd), size);
	check_device(bd, model, size);
	for (int i = 0; i < 40; i++) {
		size_t off = (size_t)(rng() % (size - sizeof(chunk)));
		fill_random(chunk, sizeof(chunk));
		ck_assert_int_eq(blockdev_pwrite(bd, chunk, sizeof(chunk), off), 0);
		memcpy(model + off, chunk, sizeof(chunk));
	}
	ck_assert_int_eq(blockdev_flush(bd), 0);
	ck_assert_uint_eq(blockdev_flush_count(bd), 1);
	check_device(bd, model, size);

	/* The writes reached the file behind the export. */
	uint8_t *file = xmalloc(size);
	read_file(path, file, size);
	ck_assert(memcmp(file, model, size) == 0);
	blockdev_close(bd);
	nbd_stop(&srv);
	ck_assert_int_eq(file_size(path), (off_t)size);
	free(file);
	free(model);
	remove_tmpdir();
}
END_TEST

START_TEST(test_nbd_readonly_export)
{
	struct nbd_server srv;
	struct csv_blockdev *bd = UNTOUCHED;
	char path[PATH_MAX];
	uint8_t data[65536], got[65536];

	make_tmpdir();
	tmp_path(path, sizeof(path), "ro.img");
	rng_seed(33);
	fill_random(data, sizeof(data));
	write_file(path, data, sizeof(data));
	nbd_start(&srv, "-r", "file", path);

	/* Opening for writing is refused up front, not at the first write. */
	ck_assert_int_eq(blockdev_open(srv.uri, 0, &bd), -EROFS);
	ck_assert_ptr_eq(bd, UNTOUCHED);

	ck_assert_int_eq(blockdev_open(srv.uri, CSV_BDEV_RDONLY, &bd), 0);
	ck_assert_int_eq(blockdev_pread(bd, got, sizeof(got), 0), 0);
	ck_assert(memcmp(got, data, sizeof(data)) == 0);
	ck_assert_int_eq(blockdev_pwrite(bd, got, 512, 0), -EROFS);
	ck_assert_int_eq(blockdev_flush(bd), 0);
	blockdev_close(bd);
	nbd_stop(&srv);
	read_file(path, got, sizeof(got));
	ck_assert(memcmp(got, data, sizeof(data)) == 0);
	remove_tmpdir();
}
END_TEST

START_TEST(test_nbd_no_server)
{
	struct csv_blockdev *bd = UNTOUCHED;
	char uri[PATH_MAX + 32];

	make_tmpdir();
	path_printf(uri, sizeof(uri), "nbd+unix:///?socket=%s/nobody.sock", tmpdir);
	int r = blockdev_open(uri, 0, &bd);
	ck_assert_msg(r < 0, "connecting to a missing socket gave %d", r);
	ck_assert_ptr_eq(bd, UNTOUCHED);
	remove_tmpdir();
}
END_TEST

/* A transfer over libnbd's 64 MiB request limit works on NBD as it does
 * on a file or in memory: the block layer splits it. */
START_TEST(test_nbd_large_transfer)
{
	struct nbd_server srv;
	struct csv_blockdev *bd;
	const size_t len = 80 << 20;
	uint8_t *data = xmalloc(len), *got = xmalloc(len);

	make_tmpdir();
	nbd_start(&srv, NULL, "memory", "100M");
	ck_assert_int_eq(blockdev_open_timed(srv.uri, 0, loop_timeout(_i), &bd), 0);
	rng_seed(34);
	fill_random(data, len);
	int r = blockdev_pwrite(bd, data, len, 4096);
	ck_assert_msg(r == 0, "a write of 80 MiB over NBD failed: %s", strerror(-r));
	r = blockdev_pread(bd, got, len, 4096);
	ck_assert_msg(r == 0, "a read of 80 MiB over NBD failed: %s", strerror(-r));
	ck_assert(memcmp(got, data, len) == 0);
	blockdev_close(bd);
	nbd_stop(&srv);
	free(data);
	free(got);
	remove_tmpdir();
}
END_TEST

/* ---- NBD with an I/O timeout: a stalled server ------------------------------ */

/* A read from a server that stalls fails with -ETIMEDOUT after the
 * timeout, not later and without touching the buffer; so does a discard.
 * Once the server goes on, the stalled requests end and the same handle
 * works again. */
START_TEST(test_nbd_timeout_read)
{
	struct nbd_server srv;
	struct csv_blockdev *bd;
	char path[PATH_MAX];
	const size_t len = 65536;
	uint8_t *data = xmalloc(len), *got = xmalloc(len);

	make_tmpdir();
	tmp_path(path, sizeof(path), "export.img");
	ck_assert_int_eq(truncate(path, 0), -1); /* (does not exist yet) */
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 1 << 20), 0);
	close(fd);
	nbd_start_with(&srv, NULL, "file", path, true); /* the file plugin flushes */
	ck_assert_int_eq(blockdev_open_timed(srv.uri, 0, 300, &bd), 0);
	rng_seed(35);
	fill_random(data, len);
	ck_assert_int_eq(blockdev_pwrite(bd, data, len, 4096), 0);
	ck_assert_uint_eq(blockdev_stalled(bd), 0);

	pause_ctl(&srv, 'p');
	memset(got, 0xcd, len);
	uint64_t t0 = now_ms();
	int r = blockdev_pread(bd, got, len, 4096);
	uint64_t took = now_ms() - t0;
	ck_assert_msg(r == -ETIMEDOUT, "a read from a stalled server gave %d", r);
	ck_assert_msg(took >= 290 && took < 2000, "a 300 ms timeout fired after %" PRIu64 " ms", took);
	ck_assert(all_bytes(got, len, 0xcd));
	ck_assert_uint_eq(blockdev_stalled(bd), 1);
	/* A discard may still run, as a late write would: the caller hears
	 * of its timeout. (The pause filter of nbdkit 1.32 lets flushes
	 * through: their timeout is the same code.) */
	ck_assert_int_eq(blockdev_discard(bd, 0, 4096), -ETIMEDOUT);
	ck_assert_uint_eq(blockdev_stalled(bd), 2);

	/* A new connection handshakes while the server stalls (a probe that
	 * only connected would say the path works): its reads time out too. */
	struct csv_blockdev *probe;
	ck_assert_int_eq(blockdev_open_timed(srv.uri, 0, 300, &probe), 0);
	ck_assert_int_eq(blockdev_pread(probe, got, 512, 0), -ETIMEDOUT);

	pause_ctl(&srv, 'r');
	ck_assert_msg(wait_unstalled(bd, 5000), "the stalled requests did not end after the resume");
	ck_assert(wait_unstalled(probe, 5000));
	ck_assert_int_eq(blockdev_pread(bd, got, len, 4096), 0);
	ck_assert(memcmp(got, data, len) == 0);
	ck_assert_int_eq(blockdev_flush(bd), 0);
	ck_assert_int_eq(blockdev_pread(probe, got, len, 4096), 0);
	ck_assert(memcmp(got, data, len) == 0);
	blockdev_close(probe);
	blockdev_close(bd);
	nbd_stop(&srv);
	free(data);
	free(got);
	remove_tmpdir();
}
END_TEST

/* What a late callback saw. */
struct late_seen {
	pthread_mutex_t lock;
	unsigned calls;
	int r;
};

static void late_record(void *ctx, int r)
{
	struct late_seen *l = ctx;
	pthread_mutex_lock(&l->lock);
	l->calls++;
	l->r = r;
	pthread_mutex_unlock(&l->lock);
}

static unsigned late_calls(struct late_seen *l, int *ret_r)
{
	pthread_mutex_lock(&l->lock);
	unsigned n = l->calls;
	*ret_r = l->r;
	pthread_mutex_unlock(&l->lock);
	return n;
}

/* A write that timed out is not lost nor cancelled: the server writes it
 * when it goes on, even after the caller closed the device (which does
 * not wait for the server), and the late callback says so, once. */
START_TEST(test_nbd_timeout_write_lands_late)
{
	struct nbd_server srv;
	struct csv_blockdev *bd;
	char path[PATH_MAX];
	const size_t size = 1 << 20, len = 8192, off = 12288;
	uint8_t *model = xmalloc(size), *file = xmalloc(size), data[8192];
	struct late_seen seen = { .lock = PTHREAD_MUTEX_INITIALIZER };
	int late_r;

	make_tmpdir();
	tmp_path(path, sizeof(path), "export.img");
	rng_seed(36);
	fill_random(model, size);
	write_file(path, model, size);
	fill_random(data, sizeof(data));
	nbd_start_with(&srv, NULL, "file", path, true);
	ck_assert_int_eq(blockdev_open_timed(srv.uri, 0, 300, &bd), 0);

	pause_ctl(&srv, 'p');
	int r = blockdev_pwrite_late(bd, data, len, off, late_record, &seen);
	ck_assert_msg(r == -ETIMEDOUT, "a write to a stalled server gave %d", r);
	ck_assert_uint_eq(blockdev_stalled(bd), 1);
	ck_assert_uint_eq(late_calls(&seen, &late_r), 0);
	read_file(path, file, size);
	ck_assert_msg(memcmp(file, model, size) == 0, "the stalled write landed before the resume");

	uint64_t t0 = now_ms();
	blockdev_close(bd); /* the device finishes it on its own */
	ck_assert_msg(now_ms() - t0 < 250, "closing a stalled device waited %" PRIu64 " ms", now_ms() - t0);

	pause_ctl(&srv, 'r');
	for (uint64_t until = now_ms() + 5000; now_ms() < until && late_calls(&seen, &late_r) == 0;)
		usleep(10000);
	ck_assert_msg(late_calls(&seen, &late_r) == 1, "the late callback was not called after the resume");
	ck_assert_int_eq(late_r, 0);
	memcpy(model + off, data, len);
	read_file(path, file, size);
	ck_assert_msg(memcmp(file, model, size) == 0, "the timed-out write did not land after the resume");
	usleep(100000);
	ck_assert_uint_eq(late_calls(&seen, &late_r), 1);

	/* The server is fine: a new connection reads the late write. */
	ck_assert_int_eq(blockdev_open_timed(srv.uri, 0, 300, &bd), 0);
	check_device(bd, model, size);
	blockdev_close(bd);
	nbd_stop(&srv);
	free(model);
	free(file);
	remove_tmpdir();
}
END_TEST

/* Several threads share one handle with a timeout (one of them polls
 * for all): writes and reads of their own regions, then the whole device
 * reads back as the model says. */
#define THR_N 6
#define THR_REGION (2u << 20)

struct thr_arg {
	struct csv_blockdev *bd;
	uint8_t *model; /* the whole device; each thread writes its own region */
	unsigned id;
	int err;        /* the first failure, or 0 */
	char what[128];
};

static void *thr_main(void *p)
{
	struct thr_arg *a = p;
	uint64_t st = 0x1234567ull * (a->id + 1);
	uint8_t *buf = malloc(200000), *got = malloc(200000);
	uint64_t base = (uint64_t)a->id * THR_REGION;

	for (int i = 0; i < 150 && !a->err && buf && got; i++) {
		st ^= st >> 12, st ^= st << 25, st ^= st >> 27;
		size_t len = 1 + (size_t)(st % 200000);
		uint64_t off = base + (st >> 20) % (THR_REGION - len);
		for (size_t k = 0; k < len; k++)
			buf[k] = (uint8_t)(st >> (k % 56)) ^ (uint8_t)k;
		int r = blockdev_pwrite(a->bd, buf, len, off);
		if (r < 0) {
			a->err = r;
			snprintf(a->what, sizeof(a->what), "write %zu at %" PRIu64, len, off);
			break;
		}
		memcpy(a->model + off, buf, len);
		r = blockdev_pread(a->bd, got, len, off);
		if (r < 0 || memcmp(got, buf, len) != 0) {
			a->err = r < 0 ? r : -EBADMSG;
			snprintf(a->what, sizeof(a->what), "read back %zu at %" PRIu64, len, off);
		}
		if (i % 25 == 0 && (r = blockdev_flush(a->bd)) < 0) {
			a->err = r;
			snprintf(a->what, sizeof(a->what), "flush");
		}
	}
	if (!buf || !got)
		a->err = -ENOMEM;
	free(buf);
	free(got);
	return NULL;
}

START_TEST(test_nbd_timeout_threads)
{
	struct nbd_server srv;
	struct csv_blockdev *bd;
	const size_t size = THR_N * THR_REGION;
	uint8_t *model = calloc(1, size);
	struct thr_arg args[THR_N];
	pthread_t t[THR_N];

	ck_assert_ptr_nonnull(model);
	make_tmpdir();
	nbd_start(&srv, NULL, "memory", "12M");
	ck_assert_int_eq(blockdev_open_timed(srv.uri, 0, 10000, &bd), 0);
	for (unsigned i = 0; i < THR_N; i++) {
		args[i] = (struct thr_arg){ .bd = bd, .model = model, .id = i };
		ck_assert_int_eq(pthread_create(&t[i], NULL, thr_main, &args[i]), 0);
	}
	for (unsigned i = 0; i < THR_N; i++)
		pthread_join(t[i], NULL);
	for (unsigned i = 0; i < THR_N; i++)
		ck_assert_msg(args[i].err == 0, "thread %u: %s: %s", i, args[i].what, strerror(-args[i].err));
	ck_assert_uint_eq(blockdev_stalled(bd), 0);
	check_device(bd, model, size);
	blockdev_close(bd);
	nbd_stop(&srv);
	free(model);
	remove_tmpdir();
}
END_TEST

/* The connection is bounded too: a server that accepts and never speaks
 * (no nbdkit needed) fails the open with -ETIMEDOUT. */
START_TEST(test_nbd_timeout_silent_server)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct csv_blockdev *bd = UNTOUCHED;
	char uri[PATH_MAX + 32];

	make_tmpdir();
	path_printf(a.sun_path, sizeof(a.sun_path), "%s/silent.sock", tmpdir);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	path_printf(uri, sizeof(uri), "nbd+unix:///?socket=%s", a.sun_path);
	uint64_t t0 = now_ms();
	int r = blockdev_open_timed(uri, 0, 300, &bd);
	uint64_t took = now_ms() - t0;
	ck_assert_msg(r == -ETIMEDOUT, "opening a silent server gave %d", r);
	ck_assert_msg(took >= 290 && took < 2000, "a 300 ms timeout fired after %" PRIu64 " ms", took);
	ck_assert_ptr_eq(bd, UNTOUCHED);
	close(fd);
	remove_tmpdir();
}
END_TEST

static Suite *blockdev_suite(void)
{
	Suite *s = suite_create("blockdev");
	TCase *tc;

	/* Loop tests run with _i = 0 (no cache) and 1 (volatile cache). */
	tc = tcase_create("memory");
	tcase_add_loop_test(tc, test_mem_starts_zeroed, 0, 2);
	tcase_add_loop_test(tc, test_mem_round_trip, 0, 2);
	tcase_add_loop_test(tc, test_mem_out_of_range, 0, 2);
	tcase_add_loop_test(tc, test_mem_flush_count, 0, 2);
	tcase_add_test(tc, test_mem_open_from);
	tcase_add_test(tc, test_mem_discard_keeps_data);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("volatile cache");
	tcase_add_test(tc, test_mem_cache_unflushed_visible);
	tcase_add_test(tc, test_mem_crash_loses_unflushed);
	tcase_add_test(tc, test_mem_flush_keeps);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("random crash");
	tcase_add_test(tc, test_mem_crash_random_subset);
	tcase_add_test(tc, test_mem_crash_random_deterministic);
	tcase_add_test(tc, test_mem_crash_random_overlapping);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_create("path");
	tcase_add_test(tc, test_path_round_trip);
	tcase_add_test(tc, test_path_direct_unaligned);
	tcase_add_test(tc, test_path_out_of_range);
	tcase_add_test(tc, test_path_discard_reads_zeros);
	tcase_add_test(tc, test_path_discard_empty_range);
	tcase_add_test(tc, test_path_rdonly_refuses_writes);
	tcase_add_test(tc, test_path_missing_enoent);
	tcase_add_test(tc, test_path_not_a_device);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	/* NBD needs nbdkit. Without it the cases are skipped on a developer's
	 * machine, but CI has it, so there its absence fails the suite. */
	bool have = find_nbdkit();
	if (have || getenv("CI")) {
		tc = tcase_create("nbd");
		tcase_add_loop_test(tc, test_nbd_memory_round_trip, 0, 2);
		tcase_add_test(tc, test_nbd_file_round_trip);
		tcase_add_test(tc, test_nbd_readonly_export);
		tcase_add_test(tc, test_nbd_no_server);
		tcase_add_loop_test(tc, test_nbd_large_transfer, 0, 2);
		tcase_add_test(tc, test_nbd_timeout_threads);
		tcase_set_timeout(tc, 60);
		suite_add_tcase(s, tc);
	}
	if (!have)
		fprintf(stderr, "test-blockdev: nbdkit not found in PATH: NBD cases %s\n",
			getenv("CI") ? "will fail (CI must have it)" : "skipped");

	/* A stalled server: nbdkit's pause filter. */
	bool pause = have && have_pause_filter();
	if (pause || getenv("CI")) {
		tc = tcase_create("nbd stalled");
		tcase_add_test(tc, test_nbd_timeout_read);
		tcase_add_test(tc, test_nbd_timeout_write_lands_late);
		tcase_set_timeout(tc, 60);
		suite_add_tcase(s, tc);
	} else if (have) {
		fprintf(stderr, "test-blockdev: nbdkit has no pause filter (nbdkit 1.22 or later): "
				"stalled-server cases skipped\n");
	}
	tc = tcase_create("nbd silent");
	tcase_add_test(tc, test_nbd_timeout_silent_server);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	const char *t = getenv("TMPDIR");
	snprintf(base_dir, sizeof(base_dir), "%s/test-blockdev-XXXXXX", t && *t && strlen(t) < 200 ? t : "/tmp");
	if (!mkdtemp(base_dir)) {
		perror("test-blockdev: mkdtemp");
		return EXIT_FAILURE;
	}
	SRunner *sr = srunner_create(blockdev_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	remove_tree(base_dir);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
