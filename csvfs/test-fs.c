/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Namespace and data operations on a volume (fs.c), checked by reading
 * back and by fsck finding the volume clean after each scenario. */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checker.h"
#include "fs.h"
#include "journal.h"
#include "meta.h"
#include "record.h"
#include "test-util.h"
#include "test-volume-util.h"
#include "util.h"

struct fixture {
	struct csv_blockdev *bd;
	struct csv_volume *v;
	struct csv_journal *j;  /* NULL: direct mode */
	struct csv_fs *fs;
};

static void fx_open(struct fixture *x, uint64_t size, uint32_t cs)
{
	char err[256];
	x->j = NULL;
	ck_assert_int_eq(tvol_make(size, cs, &x->bd), 0);
	ck_assert_int_eq(volume_open_bdev(x->bd, &x->v, err, sizeof(err)), 0);
	ck_assert_int_eq(fs_open(x->v, false, &x->fs, err, sizeof(err)), 0);
}

/* The same volume, but with every operation a journal transaction. */
static void fx_open_journaled(struct fixture *x, uint64_t size, uint32_t cs)
{
	char err[256];
	ck_assert_int_eq(tvol_make(size, cs, &x->bd), 0);
	ck_assert_int_eq(volume_open_bdev(x->bd, &x->v, err, sizeof(err)), 0);
	ck_assert_int_eq(journal_open(x->v, &x->j), 0);
	ck_assert_int_eq(fs_open_journaled(x->v, x->j, &x->fs, err, sizeof(err)), 0);
}

/* Direct mode for 0, journaled for 1 (a loop test's _i & 1). */
static void fx_open_mode(struct fixture *x, uint64_t size, uint32_t cs, int journaled)
{
	if (journaled)
		fx_open_journaled(x, size, cs);
	else
		fx_open(x, size, cs);
}

/* Syncs, closes and runs fsck -n, which must find nothing. */
static void fx_close_clean(struct fixture *x)
{
	ck_assert_int_eq(fs_sync(x->fs), 0);
	fs_close(x->fs);
	if (x->j)
		journal_close(x->j);
	volume_close(x->v);
	struct fsck_options o = { 0 };
	char *out = NULL;
	size_t len;
	FILE *f = open_memstream(&out, &len);
	int status = fsck_volume(x->bd, &o, f);
	fclose(f);
	ck_assert_msg(status == FSCK_OK, "fsck after the scenario: status %d\n%s", status, out);
	free(out);
	blockdev_close(x->bd);
}

START_TEST(test_create_lookup_unlink)
{
	struct fixture x;
	uint64_t a, ref;
	fx_open(&x, 16u << 20, 4096);
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "a", S_IFREG | 0644, 1, 2, 0, &a), 0);
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "a", S_IFREG | 0644, 1, 2, 0, NULL), -EEXIST);
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "b/c", S_IFREG | 0644, 0, 0, 0, NULL), -EINVAL);
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "..", S_IFDIR | 0755, 0, 0, 0, NULL), -EINVAL);
	ck_assert_int_eq(fs_lookup(x.fs, CSV_RECNO_ROOT, "a", &ref), 0);
	ck_assert_uint_eq(CSV_REF_RECNO(ref), a);
	ck_assert_int_eq(fs_create(x.fs, a, "x", S_IFREG | 0644, 0, 0, 0, NULL), -ENOTDIR);
	ck_assert_int_eq(fs_unlink(x.fs, CSV_RECNO_ROOT, "a"), 0);
	ck_assert_int_eq(fs_lookup(x.fs, CSV_RECNO_ROOT, "a", &ref), -ENOENT);
	ck_assert_int_eq(fs_unlink(x.fs, CSV_RECNO_ROOT, "a"), -ENOENT);
	/* The record comes back with a new sequence number. */
	uint64_t again;
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "again", S_IFREG | 0644, 0, 0, 0, &again), 0);
	ck_assert_uint_eq(again, a);
	ck_assert_int_eq(fs_lookup(x.fs, CSV_RECNO_ROOT, "again", &ref), 0);
	ck_assert_uint_eq(CSV_REF_SEQ(ref), 2);
	fx_close_clean(&x);
}
END_TEST

START_TEST(test_directories)
{
	struct fixture x;
	uint64_t d, sub, rec;
	fx_open(&x, 16u << 20, 4096);
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "d", S_IFDIR | 0755, 0, 0, 0, &d), 0);
	ck_assert_int_eq(fs_create(x.fs, d, "sub", S_IFDIR | 0755, 0, 0, 0, &sub), 0);
	ck_assert_int_eq(fs_unlink(x.fs, CSV_RECNO_ROOT, "d"), -ENOTEMPTY);
	ck_assert_int_eq(fs_resolve(x.fs, "/d/sub/../sub", &rec), 0);
	ck_assert_uint_eq(rec, sub);
	ck_assert_int_eq(fs_link(x.fs, d, CSV_RECNO_ROOT, "d2"), -EPERM);
	ck_assert_int_eq(fs_unlink(x.fs, d, "sub"), 0);
	ck_assert_int_eq(fs_unlink(x.fs, CSV_RECNO_ROOT, "d"), 0);
	fx_close_clean(&x);
}
END_TEST

START_TEST(test_many_entries_grow_the_mft)
{
	struct fixture x;
	char name[32];
	uint64_t d, before;
	fx_open(&x, 64u << 20, 4096);
	before = x.fs->mft.nrecords;
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "d", S_IFDIR | 0755, 0, 0, 0, &d), 0);
	for (int i = 0; i < 2000; i++) {
		snprintf(name, sizeof(name), "f%05d", i);
		ck_assert_int_eq(fs_create(x.fs, d, name, S_IFREG | 0644, 0, 0, 0, NULL), 0);
	}
	ck_assert_uint_gt(x.fs->mft.nrecords, before);
	for (int i = 0; i < 2000; i += 2) {
		snprintf(name, sizeof(name), "f%05d", i);
		ck_assert_int_eq(fs_unlink(x.fs, d, name), 0);
	}
	fx_close_clean(&x);
}
END_TEST

START_TEST(test_write_read_and_free)
{
	struct fixture x;
	uint64_t f;
	size_t got;
	fx_open(&x, 32u << 20, _i ? 16384 : 4096);
	uint64_t free0 = alloc_free_clusters(x.fs->alloc);
	size_t n = 3u << 20;
	uint8_t *buf = malloc(n), *back = malloc(n);
	for (size_t i = 0; i < n; i++)
		buf[i] = tvol_pattern(9, i);
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "f", S_IFREG | 0644, 0, 0, 0, &f), 0);
	/* Resident first, then grown out of the record. */
	ck_assert_int_eq(fs_write(x.fs, f, 0, buf, 100), 0);
	ck_assert_int_eq(fs_write(x.fs, f, 100, buf + 100, n - 100), 0);
	ck_assert_int_eq(fs_read(x.fs, f, 0, back, n, &got), 0);
	ck_assert_uint_eq(got, n);
	ck_assert(memcmp(buf, back, n) == 0);
	/* Past the end: a gap that reads as zeros. */
	ck_assert_int_eq(fs_write(x.fs, f, n + 10000, "tail", 4), 0);
	ck_assert_int_eq(fs_read(x.fs, f, n, back, 10004, &got), 0);
	ck_assert_uint_eq(got, 10004);
	for (size_t i = 0; i < 10000; i++)
		ck_assert_msg(back[i] == 0, "byte %zu of the gap is %u", i, back[i]);
	ck_assert(memcmp(back + 10000, "tail", 4) == 0);
	ck_assert_uint_lt(alloc_free_clusters(x.fs->alloc), free0);
	ck_assert_int_eq(fs_unlink(x.fs, CSV_RECNO_ROOT, "f"), 0);
	ck_assert_uint_eq(alloc_free_clusters(x.fs->alloc), free0);
	free(buf);
	free(back);
	fx_close_clean(&x);
}
END_TEST

START_TEST(test_hard_links_and_symlinks)
{
	struct fixture x;
	uint64_t f, l, ref;
	size_t got;
	char buf[64];
	fx_open(&x, 16u << 20, 4096);
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "f", S_IFREG | 0644, 0, 0, 0, &f), 0);
	ck_assert_int_eq(fs_write(x.fs, f, 0, "data", 4), 0);
	ck_assert_int_eq(fs_link(x.fs, f, CSV_RECNO_ROOT, "g"), 0);
	ck_assert_int_eq(fs_link(x.fs, f, CSV_RECNO_ROOT, "g"), -EEXIST);
	ck_assert_int_eq(fs_unlink(x.fs, CSV_RECNO_ROOT, "f"), 0);
	ck_assert_int_eq(fs_lookup(x.fs, CSV_RECNO_ROOT, "g", &ref), 0);
	ck_assert_int_eq(fs_read(x.fs, CSV_REF_RECNO(ref), 0, buf, sizeof(buf), &got), 0);
	ck_assert_uint_eq(got, 4);
	ck_assert_int_eq(fs_symlink(x.fs, CSV_RECNO_ROOT, "l", "g", &l), 0);
	ck_assert_int_eq(fs_read(x.fs, l, 0, buf, sizeof(buf), &got), 0);
	ck_assert(got == 1 && buf[0] == 'g');
	ck_assert_int_eq(fs_setxattr(x.fs, l, "user.k", "v1", 2), 0);
	ck_assert_int_eq(fs_setxattr(x.fs, l, "user.k", "v22", 3), 0);
	ck_assert_int_eq(fs_setxattr(x.fs, l, "user.big", buf, 0), 0);
	char huge[4000] = { 0 };
	ck_assert_int_eq(fs_setxattr(x.fs, l, "user.huge", huge, sizeof(huge)), -ENOSPC);
	fx_close_clean(&x);
}
END_TEST

START_TEST(test_out_of_space)
{
	struct fixture x;
	uint64_t f;
	fx_open(&x, 8u << 20, 4096);
	size_t n = 16u << 20;
	uint8_t *buf = calloc(1, n);
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "f", S_IFREG | 0644, 0, 0, 0, &f), 0);
	ck_assert_int_eq(fs_write(x.fs, f, 0, buf, n), -ENOSPC);
	free(buf);
	/* What was allocated before the failure is not lost track of. */
	fx_close_clean(&x);
}
END_TEST

/* ---- journaled mode: every operation one transaction -------------------- */

/* Runs fsck -n; returns its status and prints its report on failure. */
static int fsck_status(struct csv_blockdev *bd)
{
	struct fsck_options o = { 0 };
	char *out = NULL;
	size_t len;
	FILE *f = open_memstream(&out, &len);
	int status = fsck_volume(bd, &o, f);
	fclose(f);
	if (status != FSCK_OK)
		fprintf(stderr, "%s", out);
	free(out);
	return status;
}

START_TEST(test_journaled_ops_survive_without_checkpoint)
{
	struct csv_blockdev *bd;
	struct csv_volume *v;
	struct csv_journal *j;
	struct csv_fs *fs;
	char err[256];
	uint64_t d, f, ref;
	size_t got;
	uint8_t buf[9000];

	ck_assert_int_eq(tvol_make(16u << 20, 4096, &bd), 0);
	ck_assert_int_eq(volume_open_bdev(bd, &v, err, sizeof(err)), 0);
	ck_assert_int_eq(journal_open(v, &j), 0);
	ck_assert_int_eq(fs_open_journaled(v, j, &fs, err, sizeof(err)), 0);
	ck_assert_int_eq(fs_create(fs, CSV_RECNO_ROOT, "d", S_IFDIR | 0755, 0, 0, 0, &d), 0);
	ck_assert_int_eq(fs_create(fs, d, "f", S_IFREG | 0644, 0, 0, 0, &f), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = tvol_pattern(1, i);
	ck_assert_int_eq(fs_write(fs, f, 0, buf, sizeof(buf)), 0);
	ck_assert_int_eq(fs_create(fs, d, "f", S_IFREG | 0644, 0, 0, 0, NULL), -EEXIST);
	/* Reads in journaled mode see the journal, not the stale LUN. */
	ck_assert_int_eq(fs_lookup(fs, d, "f", &ref), 0);
	ck_assert_uint_eq(CSV_REF_RECNO(ref), f);
	struct journal_info info;
	journal_get_info(j, &info);
	ck_assert_uint_ge(info.pending_txns, 3);
	/* Stop without a checkpoint: everything is in the log only. */
	fs_close(fs);
	journal_close(j);
	volume_close(v);

	ck_assert_int_eq(volume_open_bdev(bd, &v, err, sizeof(err)), 0);
	ck_assert_int_eq(journal_open(v, &j), 0);
	ck_assert(journal_needs_replay(j));
	uint64_t txns, blocks;
	ck_assert_int_eq(journal_replay(j, &txns, &blocks), 0);
	ck_assert_uint_ge(txns, 3);
	journal_close(j);
	ck_assert_int_eq(fs_open(v, true, &fs, err, sizeof(err)), 0);
	uint8_t back[sizeof(buf)];
	ck_assert_int_eq(fs_resolve(fs, "/d/f", &f), 0);
	ck_assert_int_eq(fs_read(fs, f, 0, back, sizeof(back), &got), 0);
	ck_assert_uint_eq(got, sizeof(buf));
	ck_assert(memcmp(buf, back, sizeof(buf)) == 0);
	fs_close(fs);
	volume_close(v);
	ck_assert_int_eq(fsck_status(bd), FSCK_OK);
	blockdev_close(bd);
}
END_TEST

/* The power cut after a journaled run: closes everything, lets a random
 * part of the unflushed writes reach the disk, replays the journal as a
 * restarted coordinator does, requires fsck to find the volume clean, and
 * reopens it read-only for the caller to compare with its model. */
static void power_cut_and_replay(struct csv_blockdev *bd, struct csv_volume **v, struct csv_journal **j,
				 struct csv_fs **fs, unsigned crash_seed, unsigned seed, unsigned round)
{
	char err[256];
	fs_close(*fs);
	journal_close(*j);
	volume_close(*v);
	blockdev_mem_crash_random(bd, crash_seed);
	blockdev_mem_fail_after(bd, -1);

	ck_assert_int_eq(volume_open_bdev(bd, v, err, sizeof(err)), 0);
	ck_assert_int_eq(journal_open(*v, j), 0);
	if (journal_needs_replay(*j))
		ck_assert_int_eq(journal_replay(*j, NULL, NULL), 0);
	journal_close(*j);
	*j = NULL;
	volume_close(*v);
	ck_assert_msg(fsck_status(bd) == FSCK_OK, "seed %u round %u: not clean after replay", seed, round);

	ck_assert_int_eq(volume_open_bdev(bd, v, err, sizeof(err)), 0);
	ck_assert_int_eq(fs_open(*v, true, fs, err, sizeof(err)), 0);
}

/* What the test expects of one name after the operations acknowledged. */
struct model_file {
	char name[16];
	bool exists;
	bool uncertain;   /* the operation in flight at the power cut */
	unsigned pattern;
	size_t size;
};

/* A power cut at a random write or flush in the middle of a random
 * sequence of journaled operations: after the journal is replayed, fsck
 * finds the volume clean and every acknowledged operation is there. */
START_TEST(test_journaled_power_cut)
{
	unsigned seed = 1000 + (unsigned)_i;
	struct csv_blockdev *img, *bd;
	struct model_file files[24] = { 0 };
	char err[256];
	static uint8_t buf[70000];

	ck_assert_int_eq(tvol_make(16u << 20, 4096, &img), 0);
	ck_assert_int_eq(blockdev_open_mem(16u << 20, true, &bd), 0);
	ck_assert_int_eq(blockdev_pwrite(bd, blockdev_mem_data(img), 16u << 20, 0), 0);
	ck_assert_int_eq(blockdev_flush(bd), 0);
	blockdev_close(img);

	for (unsigned i = 0; i < ARRAY_SIZE(files); i++)
		snprintf(files[i].name, sizeof(files[i].name), "f%02u", i);
	unsigned rounds = 3;
	for (unsigned round = 0; round < rounds; round++) {
		struct csv_volume *v;
		struct csv_journal *j;
		struct csv_fs *fs;
		ck_assert_int_eq(volume_open_bdev(bd, &v, err, sizeof(err)), 0);
		ck_assert_int_eq(journal_open(v, &j), 0);
		if (journal_needs_replay(j))
			ck_assert_int_eq(journal_replay(j, NULL, NULL), 0);
		ck_assert_int_eq(fs_open_journaled(v, j, &fs, err, sizeof(err)), 0);
		blockdev_mem_fail_after(bd, 20 + rand_r(&seed) % 400);
		for (unsigned op = 0; op < 60; op++) {
			struct model_file *m = &files[rand_r(&seed) % ARRAY_SIZE(files)];
			uint64_t recno;
			int r;
			m->uncertain = true;
			if (!m->exists) {
				r = fs_create(fs, CSV_RECNO_ROOT, m->name, S_IFREG | 0644, 0, 0, 0, &recno);
				if (r < 0)
					break;
				m->exists = true;
				m->size = 0;
				m->uncertain = false;
				size_t size = (size_t[]){ 100, 5000, 70000 }[rand_r(&seed) % 3];
				unsigned pattern = rand_r(&seed) % 1000;
				for (size_t k = 0; k < size; k++)
					buf[k] = tvol_pattern(pattern, k);
				m->uncertain = true;
				r = fs_write(fs, recno, 0, buf, size);
				if (r < 0)
					break;
				m->size = size;
				m->pattern = pattern;
			} else {
				r = fs_unlink(fs, CSV_RECNO_ROOT, m->name);
				if (r < 0)
					break;
				m->exists = false;
			}
			m->uncertain = false;
		}
		power_cut_and_replay(bd, &v, &j, &fs, seed + round, seed, round);
		for (unsigned i = 0; i < ARRAY_SIZE(files); i++) {
			struct model_file *m = &files[i];
			uint64_t ref;
			int r = fs_lookup(fs, CSV_RECNO_ROOT, m->name, &ref);
			if (m->uncertain) {
				/* Either outcome; the model follows the volume. */
				m->exists = r == 0;
				m->uncertain = false;
				m->size = SIZE_MAX;
				continue;
			}
			ck_assert_msg((r == 0) == m->exists, "seed %u round %u: %s %s", seed, round, m->name,
				      m->exists ? "lost" : "came back");
			if (!m->exists || m->size == SIZE_MAX)
				continue;
			size_t got;
			ck_assert_int_eq(fs_read(fs, CSV_REF_RECNO(ref), 0, buf, sizeof(buf), &got), 0);
			ck_assert_msg(got == m->size, "seed %u: %s has %zu bytes, expected %zu", seed, m->name, got, m->size);
			for (size_t k = 0; k < got; k++)
				REQUIRE(buf[k] == tvol_pattern(m->pattern, k), "seed %u: %s byte %zu", seed, m->name, k);
		}
		fs_close(fs);
		volume_close(v);
	}
	blockdev_close(bd);
}
END_TEST

/* ---- what the coordinator serves --------------------------------------------- */

/* Fills buf with pattern n from file offset off on. */
static void fill_pattern(uint8_t *buf, unsigned n, uint64_t off, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = tvol_pattern(n, off + i);
}

/* Writes pattern n over [off, off + len) of a file with fs_write. */
static void write_pattern(struct csv_fs *fs, uint64_t recno, unsigned n, uint64_t off, size_t len)
{
	uint8_t *buf = malloc(len);
	fill_pattern(buf, n, off, len);
	ck_assert_int_eq(fs_write(fs, recno, off, buf, len), 0);
	free(buf);
}

/* Whether [off, off + len) of a file reads as pattern n (or as zeros when
 * n is UINT_MAX); reports the first byte that differs. */
static void check_bytes(struct csv_fs *fs, uint64_t recno, unsigned n, uint64_t off, size_t len)
{
	uint8_t *want = calloc(1, len), *got = malloc(len);
	size_t got_n;
	if (n != UINT_MAX)
		fill_pattern(want, n, off, len);
	ck_assert_int_eq(fs_read(fs, recno, off, got, len, &got_n), 0);
	ck_assert_uint_eq(got_n, len);
	size_t i = 0;
	while (i < len && got[i] == want[i])
		i++;
	ck_assert_msg(i == len, "file offset %llu reads %u, expected %u", (unsigned long long)(off + i), got[i],
		      want[i]);
	free(want);
	free(got);
}

static struct fs_attr getattr(struct csv_fs *fs, uint64_t recno)
{
	struct fs_attr a;
	ck_assert_int_eq(fs_getattr(fs, recno, &a), 0);
	return a;
}

/* Sets a file's size with fs_setattr. */
static int truncate_to(struct csv_fs *fs, uint64_t recno, uint64_t size)
{
	struct fs_attr in = { .size = size };
	return fs_setattr(fs, recno, FS_SET_SIZE, &in, NULL);
}

/* What a client node does to write: a write layout, its bytes on the LUN
 * (whole clusters of unwritten extents, with zeros around them), a flush,
 * and a commit of the new size and valid data length. */
static int client_write(struct csv_fs *fs, struct csv_blockdev *bd, uint64_t recno, uint64_t off, const uint8_t *buf,
			size_t len)
{
	uint32_t cs = fs->v->g.cluster_size;
	struct fs_extent ext[16];
	uint8_t *tmp = malloc(cs);
	size_t n;
	int r = 0;
	for (uint64_t pos = off; pos < off + len && r == 0;) {
		r = fs_layout_get(fs, recno, pos, off + len - pos, true, ext, ARRAY_SIZE(ext), &n);
		if (r < 0)
			break;
		ck_assert_uint_gt(n, 0);
		for (size_t i = 0; i < n && r == 0; i++) {
			const struct fs_extent *e = &ext[i];
			uint64_t s = MAX(e->file_offset, pos), t = MIN(e->file_offset + e->length, off + len);
			ck_assert_uint_eq(e->file_offset % cs, 0);
			if (s >= t)
				continue;
			if (!(e->flags & FS_EXTENT_UNWRITTEN)) {
				r = blockdev_pwrite(bd, buf + (s - off), t - s, e->lun_offset + (s - e->file_offset));
				continue;
			}
			for (uint64_t c = s / cs * cs; c < t && r == 0; c += cs) {
				memset(tmp, 0, cs);
				uint64_t a = MAX(c, s), b = MIN(c + cs, t);
				memcpy(tmp + (a - c), buf + (a - off), b - a);
				r = blockdev_pwrite(bd, tmp, cs, e->lun_offset + (c - e->file_offset));
			}
		}
		pos = ext[n - 1].file_offset + ext[n - 1].length;
	}
	free(tmp);
	if (r == 0)
		r = blockdev_flush(bd);
	struct fs_range w = { off, len };
	return r < 0 ? r : fs_layout_commit(fs, recno, off + len, off + len, 0, &w, 1);
}

/* The LUN offset of a file offset, through a read layout (0: not mapped). */
static uint64_t lun_offset_of(struct csv_fs *fs, uint64_t recno, uint64_t off)
{
	struct fs_extent e;
	size_t n;
	ck_assert_int_eq(fs_layout_get(fs, recno, off, 1, false, &e, 1, &n), 0);
	return n ? e.lun_offset + (off - e.file_offset) : 0;
}

/* Whether the LUN holds only zeros over [lun, lun + len). */
static bool lun_zero(struct csv_blockdev *bd, uint64_t lun, size_t len)
{
	uint8_t *b = malloc(len);
	ck_assert_int_eq(blockdev_pread(bd, b, len, lun), 0);
	bool zero = true;
	for (size_t i = 0; i < len; i++)
		zero = zero && b[i] == 0;
	free(b);
	return zero;
}

START_TEST(test_chmod_chown_utimens)
{
	struct fixture x;
	uint64_t f, d, l, again;
	struct fs_attr a, in, out;
	fx_open_mode(&x, 16u << 20, 4096, _i);
	uint32_t root_links = getattr(x.fs, CSV_RECNO_ROOT).nlink;
	ck_assert_uint_eq(root_links, 3); /* itself, "." and lost+found's ".." */
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "f", S_IFREG | 0644, 1, 2, 0, &f), 0);
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "d", S_IFDIR | 0755, 0, 0, 0, &d), 0);
	ck_assert_int_eq(fs_symlink(x.fs, CSV_RECNO_ROOT, "l", "f", &l), 0);
	a = getattr(x.fs, f);
	ck_assert_uint_eq(CSV_REF_RECNO(a.ino), f);
	ck_assert_uint_eq(a.mode, S_IFREG | 0644);
	ck_assert_uint_eq(a.nlink, 1);
	ck_assert(a.uid == 1 && a.gid == 2 && a.size == 0);
	ck_assert_uint_eq(getattr(x.fs, d).nlink, 2);
	ck_assert_uint_eq(getattr(x.fs, CSV_RECNO_ROOT).nlink, root_links + 1);

	/* ctime to a known value, then each change moves it to now. */
	in = (struct fs_attr){ .ctime_ns = 1 };
	ck_assert_int_eq(fs_setattr(x.fs, f, FS_SET_CTIME, &in, &out), 0);
	ck_assert_int_eq(out.ctime_ns, 1);
	in = (struct fs_attr){ .mode = S_IFDIR | 04750, .uid = 1000, .gid = 100 };
	ck_assert_int_eq(fs_setattr(x.fs, f, FS_SET_MODE | FS_SET_UID | FS_SET_GID, &in, &out), 0);
	ck_assert_uint_eq(out.mode, S_IFREG | 04750); /* the type stays */
	ck_assert(out.uid == 1000 && out.gid == 100);
	ck_assert_int_gt(out.ctime_ns, 1);
	a = getattr(x.fs, f);
	ck_assert(a.mode == out.mode && a.uid == 1000 && a.gid == 100 && a.ctime_ns == out.ctime_ns);
	/* utimens */
	in = (struct fs_attr){ .atime_ns = 1111, .mtime_ns = -2222, .ctime_ns = 3 };
	ck_assert_int_eq(fs_setattr(x.fs, f, FS_SET_CTIME, &in, NULL), 0);
	ck_assert_int_eq(fs_setattr(x.fs, f, FS_SET_ATIME | FS_SET_MTIME, &in, &out), 0);
	a = getattr(x.fs, f);
	ck_assert_int_eq(a.atime_ns, 1111);
	ck_assert_int_eq(a.mtime_ns, -2222);
	ck_assert_int_gt(a.ctime_ns, 3);
	ck_assert_int_eq(fs_setattr(x.fs, d, FS_SET_MODE, &(struct fs_attr){ .mode = 0700 }, &out), 0);
	ck_assert_uint_eq(out.mode, S_IFDIR | 0700);

	/* Sizes only for regular files; unknown bits refused. */
	in = (struct fs_attr){ .size = 10 };
	ck_assert_int_eq(fs_setattr(x.fs, d, FS_SET_SIZE, &in, NULL), -EISDIR);
	ck_assert_int_eq(fs_setattr(x.fs, l, FS_SET_SIZE, &in, NULL), -EINVAL);
	ck_assert_int_eq(fs_setattr(x.fs, f, 1u << 20, &in, NULL), -EINVAL);
	ck_assert_int_eq(truncate_to(x.fs, f, 1ull << 63), -EFBIG);

	/* Free records, system records and stale references. */
	ck_assert_int_eq(fs_getattr(x.fs, 5, &a), -ENOENT);
	ck_assert_int_eq(fs_getattr(x.fs, CSV_RECNO_MFT, &a), -ENOENT);
	ck_assert_int_eq(fs_setattr(x.fs, CSV_RECNO_MFT, FS_SET_MODE, &in, NULL), -ENOENT);
	uint64_t ref = getattr(x.fs, f).ino;
	ck_assert_int_eq(fs_getattr_ref(x.fs, ref, &a), 0);
	ck_assert_int_eq(fs_unlink(x.fs, CSV_RECNO_ROOT, "f"), 0);
	ck_assert_int_eq(fs_getattr(x.fs, f, &a), -ENOENT);
	ck_assert_int_eq(fs_getattr_ref(x.fs, ref, &a), -ESTALE);
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "again", S_IFREG | 0600, 0, 0, 0, &again), 0);
	ck_assert_uint_eq(again, f);
	ck_assert_int_eq(fs_getattr_ref(x.fs, ref, &a), -ESTALE);
	ck_assert_int_eq(fs_getattr_ref(x.fs, getattr(x.fs, f).ino, &a), 0);
	fx_close_clean(&x);
}
END_TEST

/* Loop: bit 0 journaled, bit 1 16 KiB clusters. */
START_TEST(test_truncate)
{
	struct fixture x;
	uint32_t cs = _i & 2 ? 16384 : 4096;
	uint64_t f, s;
	struct fs_attr a;
	fx_open_mode(&x, 32u << 20, cs, _i & 1);
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "f", S_IFREG | 0644, 0, 0, 0, &f), 0);
	uint64_t free0 = alloc_free_clusters(x.fs->alloc);
	size_t n = (1u << 20) + 123;
	write_pattern(x.fs, f, 3, 0, n);
	ck_assert_uint_eq(alloc_free_clusters(x.fs->alloc), free0 - DIV_ROUND_UP(n, cs));

	/* Down to an odd size: the clusters beyond go back, the rest of the
	 * last one is zero on the LUN. */
	uint64_t cut = 100007;
	uint64_t tail_lun = lun_offset_of(x.fs, f, cut);
	ck_assert_uint_ne(tail_lun, 0);
	ck_assert(!lun_zero(x.bd, tail_lun, cs - cut % cs));
	ck_assert_int_eq(truncate_to(x.fs, f, cut), 0);
	a = getattr(x.fs, f);
	ck_assert_uint_eq(a.size, cut);
	ck_assert_uint_eq(a.valid_data_length, cut);
	ck_assert_uint_eq(a.alloc_clusters, DIV_ROUND_UP(cut, cs));
	ck_assert_uint_eq(alloc_free_clusters(x.fs->alloc), free0 - DIV_ROUND_UP(cut, cs));
	ck_assert(lun_zero(x.bd, tail_lun, cs - cut % cs));
	check_bytes(x.fs, f, 3, 0, cut);

	/* Up again: only the size changes; past the old cut, zeros. */
	ck_assert_int_eq(truncate_to(x.fs, f, n), 0);
	a = getattr(x.fs, f);
	ck_assert_uint_eq(a.size, n);
	ck_assert_uint_eq(a.valid_data_length, cut);
	ck_assert_uint_eq(a.alloc_clusters, DIV_ROUND_UP(cut, cs));
	check_bytes(x.fs, f, 3, 0, cut);
	check_bytes(x.fs, f, UINT_MAX, cut, n - cut);
	/* A client's write further on raises the valid data length over the
	 * rest of the cluster the truncate kept: zeros there. */
	uint8_t wbuf[1000];
	fill_pattern(wbuf, 3, 300000, sizeof(wbuf));
	ck_assert_int_eq(client_write(x.fs, x.bd, f, 300000, wbuf, sizeof(wbuf)), 0);
	ck_assert_uint_eq(getattr(x.fs, f).valid_data_length, 301000);
	check_bytes(x.fs, f, UINT_MAX, cut, 300000 - cut);
	check_bytes(x.fs, f, 3, 300000, 1000);
	check_bytes(x.fs, f, UINT_MAX, 301000, n - 301000);
	/* To zero: every cluster back. */
	ck_assert_int_eq(truncate_to(x.fs, f, 0), 0);
	a = getattr(x.fs, f);
	ck_assert(a.size == 0 && a.valid_data_length == 0 && a.alloc_clusters == 0);
	ck_assert_uint_eq(alloc_free_clusters(x.fs->alloc), free0);

	/* Resident files stay resident when they fit. */
	write_pattern(x.fs, f, 4, 0, 100);
	ck_assert_int_eq(truncate_to(x.fs, f, 50), 0);
	ck_assert_int_eq(truncate_to(x.fs, f, 1000), 0);
	a = getattr(x.fs, f);
	ck_assert(a.size == 1000 && a.valid_data_length == 1000 && a.alloc_clusters == 0);
	check_bytes(x.fs, f, 4, 0, 50);
	check_bytes(x.fs, f, UINT_MAX, 50, 950);
	/* and move to clusters when they do not. */
	s = 3 * (uint64_t)cs + 5;
	ck_assert_int_eq(truncate_to(x.fs, f, s), 0);
	a = getattr(x.fs, f);
	ck_assert(a.size == s && a.alloc_clusters == 1);
	check_bytes(x.fs, f, 4, 0, 50);
	check_bytes(x.fs, f, UINT_MAX, 50, s - 50);
	fx_close_clean(&x);
}
END_TEST

START_TEST(test_rename_over_file)
{
	struct fixture x;
	uint64_t a, b, c, d, ref;
	struct fs_statfs st0, st;
	fx_open_mode(&x, 16u << 20, 4096, _i);
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "a", S_IFREG | 0644, 0, 0, 0, &a), 0);
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "b", S_IFREG | 0644, 0, 0, 0, &b), 0);
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "d", S_IFDIR | 0755, 0, 0, 0, &d), 0);
	write_pattern(x.fs, a, 1, 0, 50000);
	ck_assert_int_eq(fs_statfs(x.fs, &st0), 0);
	write_pattern(x.fs, b, 2, 0, 80000);

	/* Over an existing file: the old target is freed with its clusters. */
	ck_assert_int_eq(fs_rename(x.fs, CSV_RECNO_ROOT, "a", CSV_RECNO_ROOT, "b", 0), 0);
	ck_assert_int_eq(fs_lookup(x.fs, CSV_RECNO_ROOT, "a", &ref), -ENOENT);
	ck_assert_int_eq(fs_lookup(x.fs, CSV_RECNO_ROOT, "b", &ref), 0);
	ck_assert_uint_eq(CSV_REF_RECNO(ref), a);
	check_bytes(x.fs, a, 1, 0, 50000);
	ck_assert_int_eq(fs_getattr(x.fs, b, &(struct fs_attr){ 0 }), -ENOENT);
	ck_assert_int_eq(fs_statfs(x.fs, &st), 0);
	ck_assert_uint_eq(st.free_clusters, st0.free_clusters);
	ck_assert_uint_eq(st.free_records, st0.free_records + 1);

	/* Into another directory and back under a new name. */
	ck_assert_int_eq(fs_rename(x.fs, CSV_RECNO_ROOT, "b", d, "inner", 0), 0);
	ck_assert_int_eq(fs_resolve(x.fs, "/d/inner", &ref), 0);
	ck_assert_uint_eq(ref, a);
	ck_assert_int_eq(fs_rename(x.fs, d, "inner", CSV_RECNO_ROOT, "a", 0), 0);

	/* NOREPLACE */
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "c", S_IFREG | 0644, 0, 0, 0, &c), 0);
	ck_assert_int_eq(fs_rename(x.fs, CSV_RECNO_ROOT, "c", CSV_RECNO_ROOT, "a", FS_RENAME_NOREPLACE), -EEXIST);
	ck_assert_int_eq(fs_rename(x.fs, CSV_RECNO_ROOT, "c", CSV_RECNO_ROOT, "c", FS_RENAME_NOREPLACE), -EEXIST);
	ck_assert_int_eq(fs_rename(x.fs, CSV_RECNO_ROOT, "c", CSV_RECNO_ROOT, "e", FS_RENAME_NOREPLACE), 0);
	ck_assert_int_eq(fs_lookup(x.fs, CSV_RECNO_ROOT, "e", &ref), 0);
	ck_assert_uint_eq(CSV_REF_RECNO(ref), c);
	check_bytes(x.fs, a, 1, 0, 50000);

	/* Onto itself, and onto another name of the same file: nothing. */
	ck_assert_int_eq(fs_rename(x.fs, CSV_RECNO_ROOT, "e", CSV_RECNO_ROOT, "e", 0), 0);
	ck_assert_int_eq(fs_link(x.fs, c, d, "e2"), 0);
	ck_assert_int_eq(fs_rename(x.fs, CSV_RECNO_ROOT, "e", d, "e2", 0), 0);
	ck_assert_int_eq(fs_lookup(x.fs, CSV_RECNO_ROOT, "e", &ref), 0);
	ck_assert_int_eq(fs_lookup(x.fs, d, "e2", &ref), 0);
	ck_assert_uint_eq(getattr(x.fs, c).nlink, 2);
	/* A hard link replaced: the file keeps its other name. */
	ck_assert_int_eq(fs_rename(x.fs, CSV_RECNO_ROOT, "a", d, "e2", 0), 0);
	ck_assert_uint_eq(getattr(x.fs, c).nlink, 1);
	ck_assert_int_eq(fs_rename(x.fs, d, "e2", CSV_RECNO_ROOT, "a", 0), 0);

	/* Type mismatches and bad names. */
	ck_assert_int_eq(fs_rename(x.fs, CSV_RECNO_ROOT, "a", CSV_RECNO_ROOT, "d", 0), -EISDIR);
	ck_assert_int_eq(fs_rename(x.fs, CSV_RECNO_ROOT, "d", CSV_RECNO_ROOT, "a", 0), -ENOTDIR);
	ck_assert_int_eq(fs_rename(x.fs, CSV_RECNO_ROOT, "nope", CSV_RECNO_ROOT, "x", 0), -ENOENT);
	ck_assert_int_eq(fs_rename(x.fs, CSV_RECNO_ROOT, "a", CSV_RECNO_ROOT, "..", 0), -EINVAL);
	ck_assert_int_eq(fs_rename(x.fs, CSV_RECNO_ROOT, "a", a, "x", 0), -ENOTDIR);
	ck_assert_int_eq(fs_rename(x.fs, CSV_RECNO_ROOT, "a", CSV_RECNO_ROOT, "x",
				   FS_RENAME_EXCHANGE | FS_RENAME_NOREPLACE), -EINVAL);
	ck_assert_int_eq(fs_rename(x.fs, CSV_RECNO_ROOT, "a", CSV_RECNO_ROOT, "x", 1u << 5), -EINVAL);
	check_bytes(x.fs, a, 1, 0, 50000);
	fx_close_clean(&x);
}
END_TEST

START_TEST(test_rename_exchange)
{
	struct fixture x;
	uint64_t f, d, p, sub, child, ref, rec;
	fx_open_mode(&x, 16u << 20, 4096, _i);
	uint32_t rl0 = getattr(x.fs, CSV_RECNO_ROOT).nlink;
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "f", S_IFREG | 0644, 0, 0, 0, &f), 0);
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "d", S_IFDIR | 0755, 0, 0, 0, &d), 0);
	ck_assert_int_eq(fs_create(x.fs, d, "child", S_IFREG | 0644, 0, 0, 0, &child), 0);
	write_pattern(x.fs, f, 5, 0, 20000);
	ck_assert_int_eq(fs_rename(x.fs, CSV_RECNO_ROOT, "f", CSV_RECNO_ROOT, "none", FS_RENAME_EXCHANGE), -ENOENT);

	/* A file and a directory in one directory swap names. */
	ck_assert_int_eq(fs_rename(x.fs, CSV_RECNO_ROOT, "f", CSV_RECNO_ROOT, "d", FS_RENAME_EXCHANGE), 0);
	ck_assert_int_eq(fs_resolve(x.fs, "/d", &rec), 0);
	ck_assert_uint_eq(rec, f);
	ck_assert_int_eq(fs_resolve(x.fs, "/f/child", &rec), 0);
	ck_assert_uint_eq(rec, child);
	check_bytes(x.fs, f, 5, 0, 20000);
	ck_assert_uint_eq(getattr(x.fs, CSV_RECNO_ROOT).nlink, rl0 + 1);

	/* Across directories: the link counts follow the directory. */
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "p", S_IFDIR | 0755, 0, 0, 0, &p), 0);
	ck_assert_int_eq(fs_create(x.fs, p, "sub", S_IFDIR | 0755, 0, 0, 0, &sub), 0);
	ck_assert_uint_eq(getattr(x.fs, CSV_RECNO_ROOT).nlink, rl0 + 2);
	ck_assert_uint_eq(getattr(x.fs, p).nlink, 3);
	ck_assert_int_eq(fs_rename(x.fs, p, "sub", CSV_RECNO_ROOT, "d", FS_RENAME_EXCHANGE), 0);
	ck_assert_uint_eq(getattr(x.fs, CSV_RECNO_ROOT).nlink, rl0 + 3);
	ck_assert_uint_eq(getattr(x.fs, p).nlink, 2);
	ck_assert_int_eq(fs_resolve(x.fs, "/d/..", &rec), 0);
	ck_assert_uint_eq(rec, CSV_RECNO_ROOT);
	ck_assert_int_eq(fs_resolve(x.fs, "/p/sub", &rec), 0);
	ck_assert_uint_eq(rec, f);
	ck_assert_int_eq(fs_lookup(x.fs, CSV_RECNO_ROOT, "d", &ref), 0);
	ck_assert_uint_eq(CSV_REF_RECNO(ref), sub);
	/* Two directories; then one into the other's subtree. */
	ck_assert_int_eq(fs_rename(x.fs, CSV_RECNO_ROOT, "d", CSV_RECNO_ROOT, "f", FS_RENAME_EXCHANGE), 0);
	ck_assert_int_eq(fs_resolve(x.fs, "/d/child", &rec), 0);
	ck_assert_uint_eq(rec, child);
	ck_assert_int_eq(fs_create(x.fs, d, "deep", S_IFDIR | 0755, 0, 0, 0, NULL), 0);
	ck_assert_int_eq(fs_rename(x.fs, d, "deep", CSV_RECNO_ROOT, "d", FS_RENAME_EXCHANGE), -EINVAL);
	ck_assert_int_eq(fs_rename(x.fs, CSV_RECNO_ROOT, "d", d, "deep", FS_RENAME_EXCHANGE), -EINVAL);
	ck_assert_uint_eq(getattr(x.fs, CSV_RECNO_ROOT).nlink, rl0 + 3);
	ck_assert_uint_eq(getattr(x.fs, d).nlink, 3);
	fx_close_clean(&x);
}
END_TEST

START_TEST(test_rename_directories)
{
	struct fixture x;
	uint64_t p1, p2, d, e, full, empty, rec;
	fx_open_mode(&x, 16u << 20, 4096, _i);
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "p1", S_IFDIR | 0755, 0, 0, 0, &p1), 0);
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "p2", S_IFDIR | 0755, 0, 0, 0, &p2), 0);
	ck_assert_int_eq(fs_create(x.fs, p1, "d", S_IFDIR | 0755, 0, 0, 0, &d), 0);
	ck_assert_int_eq(fs_create(x.fs, d, "e", S_IFDIR | 0755, 0, 0, 0, &e), 0);
	ck_assert_int_eq(fs_create(x.fs, d, "file", S_IFREG | 0644, 0, 0, 0, NULL), 0);

	/* Between parents: both link counts and the moved directory's "..". */
	ck_assert_int_eq(fs_rename(x.fs, p1, "d", p2, "moved", 0), 0);
	ck_assert_uint_eq(getattr(x.fs, p1).nlink, 2);
	ck_assert_uint_eq(getattr(x.fs, p2).nlink, 3);
	ck_assert_uint_eq(getattr(x.fs, d).nlink, 3);
	ck_assert_int_eq(fs_resolve(x.fs, "/p2/moved/..", &rec), 0);
	ck_assert_uint_eq(rec, p2);
	ck_assert_int_eq(fs_resolve(x.fs, "/p2/moved/e/../..", &rec), 0);
	ck_assert_uint_eq(rec, p2);
	ck_assert_int_eq(fs_resolve(x.fs, "/p2/moved/file", &rec), 0);

	/* Into its own subtree, or into itself. */
	ck_assert_int_eq(fs_rename(x.fs, CSV_RECNO_ROOT, "p2", e, "x", 0), -EINVAL);
	ck_assert_int_eq(fs_rename(x.fs, p2, "moved", d, "x", 0), -EINVAL);
	ck_assert_int_eq(fs_rename(x.fs, p2, "moved", e, "x", 0), -EINVAL);
	ck_assert_int_eq(fs_rename(x.fs, p2, "moved", p2, "moved", 0), 0);

	/* Over directories: a non-empty one refuses, an empty one goes. */
	ck_assert_int_eq(fs_create(x.fs, p1, "full", S_IFDIR | 0755, 0, 0, 0, &full), 0);
	ck_assert_int_eq(fs_create(x.fs, full, "x", S_IFREG | 0644, 0, 0, 0, NULL), 0);
	ck_assert_int_eq(fs_create(x.fs, p1, "empty", S_IFDIR | 0755, 0, 0, 0, &empty), 0);
	ck_assert_int_eq(fs_rename(x.fs, p2, "moved", p1, "full", 0), -ENOTEMPTY);
	ck_assert_int_eq(fs_rename(x.fs, p2, "moved", p1, "empty", 0), 0);
	ck_assert_int_eq(fs_getattr(x.fs, empty, &(struct fs_attr){ 0 }), -ENOENT);
	ck_assert_uint_eq(getattr(x.fs, p1).nlink, 4);
	ck_assert_uint_eq(getattr(x.fs, p2).nlink, 2);
	ck_assert_int_eq(fs_resolve(x.fs, "/p1/empty/e/..", &rec), 0);
	ck_assert_uint_eq(rec, d);
	ck_assert_int_eq(fs_resolve(x.fs, "/p1/empty/..", &rec), 0);
	ck_assert_uint_eq(rec, p1);
	/* Within one directory, and over an empty sibling. */
	ck_assert_int_eq(fs_create(x.fs, p1, "sib", S_IFDIR | 0755, 0, 0, 0, NULL), 0);
	ck_assert_uint_eq(getattr(x.fs, p1).nlink, 5);
	ck_assert_int_eq(fs_rename(x.fs, p1, "empty", p1, "sib", 0), 0);
	ck_assert_uint_eq(getattr(x.fs, p1).nlink, 4);
	ck_assert_int_eq(fs_rename(x.fs, p1, "sib", p1, "back", 0), 0);
	ck_assert_uint_eq(getattr(x.fs, p1).nlink, 4);
	ck_assert_int_eq(fs_resolve(x.fs, "/p1/back/e/../..", &rec), 0);
	ck_assert_uint_eq(rec, p1);
	fx_close_clean(&x);
}
END_TEST

#define RD_NAMES 1000

struct listing {
	char last[CSV_NAME_MAX + 1];
	size_t last_len;
	unsigned *seen;   /* times each name index was listed */
	unsigned limit;   /* entries per call */
	unsigned got;
	bool order_ok;
};

static int list_one(void *ud, const uint8_t *name, size_t len, uint64_t ref, uint8_t type)
{
	struct listing *l = ud;
	unsigned idx;
	int c = memcmp(name, l->last, MIN(len, l->last_len));
	if (l->last_len && (c < 0 || (c == 0 && len <= l->last_len)))
		l->order_ok = false;
	memcpy(l->last, name, len);
	l->last[len] = '\0';
	l->last_len = len;
	if (sscanf(l->last, "n%05u", &idx) == 1 && idx < 2 * RD_NAMES + 8)
		l->seen[idx]++;
	return ++l->got == l->limit;
}

static void rd_name(char *buf, unsigned i)
{
	/* Not in creation order: the tree gets entries all over. */
	snprintf(buf, 32, "n%05u-%x", i, (i * 2654435761u) >> 20);
}

/* Lists one entry per call, resuming from the last name returned, while
 * entries come and go between the calls: every entry that existed
 * throughout is listed exactly once, in order; none twice. */
START_TEST(test_readdir_resume)
{
	struct fixture x;
	uint64_t d, plain;
	char name[32];
	unsigned seed = 7, next = RD_NAMES;
	bool *present = calloc(2 * RD_NAMES + 8, sizeof(bool)), *stable = calloc(2 * RD_NAMES + 8, sizeof(bool));
	struct listing l = { .seen = calloc(2 * RD_NAMES + 8, sizeof(unsigned)), .limit = 1, .order_ok = true };
	fx_open_mode(&x, 64u << 20, 4096, _i);
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "d", S_IFDIR | 0755, 0, 0, 0, &d), 0);
	for (unsigned i = 0; i < RD_NAMES; i++) {
		rd_name(name, i);
		ck_assert_int_eq(fs_create(x.fs, d, name, S_IFREG | 0644, 0, 0, 0, NULL), 0);
		present[i] = stable[i] = true;
	}
	ck_assert_int_eq(fs_create(x.fs, d, "sub", S_IFDIR | 0755, 0, 0, 0, NULL), 0);
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "plain", S_IFREG | 0644, 0, 0, 0, &plain), 0);
	for (;;) {
		l.got = 0;
		int r = fs_readdir_after(x.fs, d, l.last_len ? l.last : NULL, l.last_len, list_one, &l);
		ck_assert_int_ge(r, 0);
		if (r == 0)
			break;
		/* Remove a random entry (perhaps the one just listed), add one. */
		unsigned victim = rand_r(&seed) % next;
		if (present[victim]) {
			rd_name(name, victim);
			ck_assert_int_eq(fs_unlink(x.fs, d, name), 0);
			present[victim] = stable[victim] = false;
		}
		if (next < 2 * RD_NAMES) {
			rd_name(name, next);
			ck_assert_int_eq(fs_create(x.fs, d, name, S_IFREG | 0644, 0, 0, 0, NULL), 0);
			present[next++] = true;
		}
	}
	ck_assert(l.order_ok);
	unsigned checked = 0;
	for (unsigned i = 0; i < next; i++) {
		ck_assert_msg(l.seen[i] <= 1, "entry %u listed %u times", i, l.seen[i]);
		if (stable[i]) {
			ck_assert_msg(l.seen[i] == 1, "entry %u, present throughout, was skipped", i);
			checked++;
		}
	}
	ck_assert_uint_gt(checked, RD_NAMES / 3);
	/* A listing at rest has exactly what is there, and no "." or "..". */
	memset(l.seen, 0, (2 * RD_NAMES + 8) * sizeof(unsigned));
	l = (struct listing){ .seen = l.seen, .limit = UINT_MAX, .order_ok = true };
	ck_assert_int_eq(fs_readdir(x.fs, d, list_one, &l), 0);
	unsigned want = 1;
	for (unsigned i = 0; i < next; i++) {
		ck_assert_uint_eq(l.seen[i], present[i]);
		want += present[i];
	}
	ck_assert_uint_eq(l.got, want);
	ck_assert(l.order_ok);
	struct listing root = { .seen = l.seen, .limit = 5, .order_ok = true };
	ck_assert_int_eq(fs_readdir(x.fs, CSV_RECNO_ROOT, list_one, &root), 0);
	ck_assert(root.got == 3 && root.order_ok); /* d, lost+found, plain */
	/* A name that is not there resumes after where it would be. */
	l = (struct listing){ .seen = l.seen, .limit = 1 };
	ck_assert_int_eq(fs_readdir_after(x.fs, d, "n00000-", 7, list_one, &l), 1);
	ck_assert_int_gt(strcmp(l.last, "n00000-"), 0);
	ck_assert_int_eq(fs_readdir_after(x.fs, d, "", 0, list_one, &l), -EINVAL);
	ck_assert_int_eq(fs_readdir(x.fs, plain, list_one, &l), -ENOTDIR);
	free(l.seen);
	free(present);
	free(stable);
	fx_close_clean(&x);
}
END_TEST

START_TEST(test_statfs)
{
	struct fixture x;
	struct fs_statfs st;
	char name[32];
	uint64_t f;
	fx_open_mode(&x, 16u << 20, 4096, _i);
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, name, i % 10 ? S_IFREG | 0644 : S_IFDIR | 0755, 0, 0,
					   0, NULL), 0);
	}
	for (int i = 0; i < 300; i += 3) {
		snprintf(name, sizeof(name), "f%d", i);
		ck_assert_int_eq(fs_unlink(x.fs, CSV_RECNO_ROOT, name), 0);
	}
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "data", S_IFREG | 0644, 0, 0, 0, &f), 0);
	ck_assert_int_eq(fs_statfs(x.fs, &st), 0);
	ck_assert_uint_eq(st.cluster_size, 4096);
	ck_assert_uint_eq(st.name_max, 255);
	ck_assert_uint_eq(st.total_clusters, x.v->g.total_clusters);
	ck_assert_uint_eq(st.total_records, x.v->g.max_records);
	/* Records in use, counted one by one: the system's and the files. */
	uint64_t used = CSV_FIRST_USER_RECORD;
	struct fs_attr a;
	for (uint64_t r = CSV_FIRST_USER_RECORD; r < x.fs->mft.nrecords; r++)
		used += fs_getattr(x.fs, r, &a) == 0;
	ck_assert_uint_eq(used, CSV_FIRST_USER_RECORD + 201);
	ck_assert_uint_eq(st.total_records - st.free_records, used);
	/* Clusters: a file of 40 clusters takes 40. */
	uint64_t free0 = st.free_clusters;
	ck_assert_uint_eq(free0, alloc_free_clusters(x.fs->alloc));
	write_pattern(x.fs, f, 1, 0, 40 * 4096);
	ck_assert_int_eq(fs_statfs(x.fs, &st), 0);
	ck_assert_uint_eq(st.free_clusters, free0 - 40);
	ck_assert_uint_eq(st.total_records - st.free_records, used);
	ck_assert_int_eq(fs_unlink(x.fs, CSV_RECNO_ROOT, "data"), 0);
	ck_assert_int_eq(fs_statfs(x.fs, &st), 0);
	ck_assert_uint_eq(st.free_clusters, free0);
	ck_assert_uint_eq(st.total_records - st.free_records, used - 1);
	fx_close_clean(&x);
}
END_TEST

START_TEST(test_xattrs_with_flags)
{
	struct fixture x;
	uint64_t f;
	char buf[64];
	size_t len;
	fx_open_mode(&x, 16u << 20, 4096, _i);
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "f", S_IFREG | 0644, 0, 0, 0, &f), 0);
	ck_assert_int_eq(fs_setxattr_flags(x.fs, f, "user.a", "one", 3, FS_XATTR_REPLACE), -ENODATA);
	ck_assert_int_eq(fs_setxattr_flags(x.fs, f, "user.a", "one", 3, FS_XATTR_CREATE), 0);
	ck_assert_int_eq(fs_setxattr_flags(x.fs, f, "user.a", "two", 3, FS_XATTR_CREATE), -EEXIST);
	ck_assert_int_eq(fs_setxattr_flags(x.fs, f, "user.a", "three", 5, FS_XATTR_REPLACE), 0);
	ck_assert_int_eq(fs_setxattr_flags(x.fs, f, "user.a", "x", 1, FS_XATTR_CREATE | FS_XATTR_REPLACE), -EINVAL);
	ck_assert_int_eq(fs_setxattr(x.fs, f, "security.b", "", 0), 0);
	ck_assert_int_eq(fs_setxattr(x.fs, f, "user.c", "cc", 2), 0);

	ck_assert_int_eq(fs_getxattr(x.fs, f, "user.a", NULL, 0, &len), 0);
	ck_assert_uint_eq(len, 5);
	ck_assert_int_eq(fs_getxattr(x.fs, f, "user.a", buf, 4, &len), -ERANGE);
	ck_assert_int_eq(fs_getxattr(x.fs, f, "user.a", buf, sizeof(buf), &len), 0);
	ck_assert(len == 5 && memcmp(buf, "three", 5) == 0);
	ck_assert_int_eq(fs_getxattr(x.fs, f, "security.b", buf, sizeof(buf), &len), 0);
	ck_assert_uint_eq(len, 0);
	ck_assert_int_eq(fs_getxattr(x.fs, f, "user.none", buf, sizeof(buf), &len), -ENODATA);
	ck_assert_int_eq(fs_getxattr(x.fs, f, "", buf, sizeof(buf), &len), -ERANGE);

	static const char names[] = "user.a\0security.b\0user.c";
	ck_assert_int_eq(fs_listxattr(x.fs, f, NULL, 0, &len), 0);
	ck_assert_uint_eq(len, sizeof(names));
	ck_assert_int_eq(fs_listxattr(x.fs, f, buf, sizeof(names) - 1, &len), -ERANGE);
	ck_assert_int_eq(fs_listxattr(x.fs, f, buf, sizeof(buf), &len), 0);
	ck_assert(len == sizeof(names) && memcmp(buf, names, len) == 0);

	ck_assert_int_eq(fs_removexattr(x.fs, f, "security.b"), 0);
	ck_assert_int_eq(fs_removexattr(x.fs, f, "security.b"), -ENODATA);
	ck_assert_int_eq(fs_getxattr(x.fs, f, "security.b", buf, sizeof(buf), &len), -ENODATA);
	ck_assert_int_eq(fs_listxattr(x.fs, f, buf, sizeof(buf), &len), 0);
	ck_assert(len == 14 && memcmp(buf, "user.a\0user.c", 14) == 0);
	/* On a directory too; never on free or system records. */
	ck_assert_int_eq(fs_setxattr_flags(x.fs, CSV_RECNO_ROOT, "user.r", "1", 1, FS_XATTR_CREATE), 0);
	ck_assert_int_eq(fs_getxattr(x.fs, CSV_RECNO_ROOT, "user.r", buf, sizeof(buf), &len), 0);
	ck_assert_int_eq(fs_setxattr(x.fs, 5, "user.a", "x", 1), -ENOENT);
	ck_assert_int_eq(fs_listxattr(x.fs, CSV_RECNO_MFT, buf, sizeof(buf), &len), -ENOENT);
	fx_close_clean(&x);
}
END_TEST

START_TEST(test_readlink)
{
	struct fixture x;
	uint64_t s, l, f;
	char buf[4096], target[3001];
	size_t len;
	fx_open_mode(&x, 16u << 20, 4096, _i);
	memset(target, 'a', sizeof(target) - 1);
	target[sizeof(target) - 1] = '\0';
	ck_assert_int_eq(fs_symlink(x.fs, CSV_RECNO_ROOT, "s", "../x/y", &s), 0);
	ck_assert_int_eq(fs_symlink(x.fs, CSV_RECNO_ROOT, "l", target, &l), 0);
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "f", S_IFREG | 0644, 0, 0, 0, &f), 0);
	ck_assert_int_eq(fs_readlink(x.fs, s, buf, sizeof(buf), &len), 0);
	ck_assert(len == 6 && memcmp(buf, "../x/y", 6) == 0);
	ck_assert_int_eq(fs_readlink(x.fs, s, buf, 3, &len), 0);
	ck_assert(len == 3 && memcmp(buf, "../", 3) == 0);
	ck_assert_int_eq(fs_readlink(x.fs, l, buf, sizeof(buf), &len), 0);
	ck_assert(len == 3000 && memcmp(buf, target, 3000) == 0);
	ck_assert_uint_gt(getattr(x.fs, l).alloc_clusters, 0);
	ck_assert_int_eq(fs_readlink(x.fs, f, buf, sizeof(buf), &len), -EINVAL);
	ck_assert_int_eq(fs_readlink(x.fs, CSV_RECNO_ROOT, buf, sizeof(buf), &len), -EINVAL);
	ck_assert_int_eq(fs_readlink(x.fs, 7, buf, sizeof(buf), &len), -ENOENT);
	fx_close_clean(&x);
}
END_TEST

/* A write layout over a hole: unwritten extents that read as zeros until
 * committed, and a preallocation visible in alloc_clusters only. */
START_TEST(test_layout_write_commit)
{
	struct fixture x;
	uint64_t f, r;
	struct fs_extent ext[16];
	size_t n;
	struct fs_attr a;
	const uint32_t cs = 4096;
	const size_t len = 100000;
	fx_open_mode(&x, 32u << 20, cs, _i);
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "f", S_IFREG | 0644, 0, 0, 0, &f), 0);
	uint64_t free0 = alloc_free_clusters(x.fs->alloc);
	ck_assert_int_eq(fs_layout_get(x.fs, f, 0, len, true, ext, ARRAY_SIZE(ext), &n), 0);
	uint64_t want = DIV_ROUND_UP(len, cs) + (1u << 20) / cs, covered = 0;
	ck_assert_uint_ge(n, 1);
	for (size_t i = 0; i < n; i++) {
		ck_assert_uint_eq(ext[i].flags, FS_EXTENT_UNWRITTEN);
		ck_assert_uint_eq(ext[i].file_offset, covered);
		ck_assert_uint_eq(ext[i].lun_offset % cs, 0);
		covered += ext[i].length;
	}
	ck_assert_uint_eq(covered, want * cs);
	a = getattr(x.fs, f);
	ck_assert_uint_eq(a.size, 0);
	ck_assert_uint_eq(a.alloc_clusters, want);
	ck_assert_uint_eq(alloc_free_clusters(x.fs->alloc), free0 - want);
	/* The same range again allocates nothing more. */
	ck_assert_int_eq(fs_layout_get(x.fs, f, 0, len, false, ext, ARRAY_SIZE(ext), &n), 0);
	ck_assert_int_eq(fs_layout_get(x.fs, f, 4096, 4096, true, ext, ARRAY_SIZE(ext), &n), 0);
	ck_assert_uint_eq(alloc_free_clusters(x.fs->alloc), free0 - want);

	/* The client writes all of it on the LUN but commits only the first
	 * twelve clusters: the rest still reads as zeros. */
	uint8_t *buf = malloc(len);
	fill_pattern(buf, 6, 0, len);
	ck_assert_int_eq(fs_layout_get(x.fs, f, 0, len, true, ext, ARRAY_SIZE(ext), &n), 0);
	for (size_t i = 0; i < n; i++)
		if (ext[i].file_offset < len)
			ck_assert_int_eq(blockdev_pwrite(x.bd, buf + ext[i].file_offset,
							 MIN(ext[i].length, len - ext[i].file_offset), ext[i].lun_offset), 0);
	ck_assert_int_eq(blockdev_flush(x.bd), 0);
	struct fs_range w = { 0, 12 * cs };
	ck_assert_int_eq(fs_layout_commit(x.fs, f, len, len, 12345, &w, 1), 0);
	a = getattr(x.fs, f);
	ck_assert(a.size == len && a.valid_data_length == len && a.mtime_ns == 12345);
	check_bytes(x.fs, f, 6, 0, 12 * cs);
	check_bytes(x.fs, f, UINT_MAX, 12 * cs, len - 12 * cs);
	/* A reader sees the rest flagged, and beyond the valid data length too. */
	ck_assert_int_eq(fs_layout_get(x.fs, f, 0, 2 * len, false, ext, ARRAY_SIZE(ext), &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert(ext[0].file_offset == 0 && ext[0].length == 12 * cs && ext[0].flags == 0);
	ck_assert(ext[1].file_offset == 12 * cs && ext[1].length == 2 * len - 12 * cs &&
		  ext[1].flags == FS_EXTENT_UNWRITTEN);
	w = (struct fs_range){ 12 * cs, len - 12 * cs };
	ck_assert_int_eq(fs_layout_commit(x.fs, f, len, len, 0, &w, 1), 0);
	check_bytes(x.fs, f, 6, 0, len);
	ck_assert_int_eq(fs_layout_get(x.fs, f, 1, 2 * len, false, ext, ARRAY_SIZE(ext), &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert(ext[0].file_offset == 1 && ext[0].length == len - 1 && ext[0].flags == 0);
	ck_assert(ext[1].file_offset == len && ext[1].flags == FS_EXTENT_UNWRITTEN);
	ck_assert_int_eq(fs_layout_get(x.fs, f, 1, 2 * len, false, ext, 1, &n), 0);
	ck_assert_uint_eq(n, 1);
	/* The preallocation stays beyond the size. */
	a = getattr(x.fs, f);
	ck_assert(a.size == len && a.alloc_clusters == want);

	/* A client append through the preallocation. */
	fill_pattern(buf, 6, len, len);
	ck_assert_int_eq(client_write(x.fs, x.bd, f, len, buf, len), 0);
	check_bytes(x.fs, f, 6, 0, 2 * len);
	a = getattr(x.fs, f);
	ck_assert(a.size == 2 * len && a.valid_data_length == 2 * len);
	/* A write into the middle, unaligned, over written clusters. */
	fill_pattern(buf, 7, 5000, 3000);
	ck_assert_int_eq(client_write(x.fs, x.bd, f, 5000, buf, 3000), 0);
	check_bytes(x.fs, f, 6, 0, 5000);
	check_bytes(x.fs, f, 7, 5000, 3000);
	check_bytes(x.fs, f, 6, 8000, 2 * len - 8000);
	ck_assert_uint_eq(getattr(x.fs, f).size, 2 * len);

	/* A resident file moves to clusters first; its bytes stay. */
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "small", S_IFREG | 0644, 0, 0, 0, &r), 0);
	write_pattern(x.fs, r, 8, 0, 100);
	ck_assert_int_eq(fs_layout_get(x.fs, r, 0, 100, false, ext, ARRAY_SIZE(ext), &n), -EOPNOTSUPP);
	ck_assert_int_eq(fs_layout_commit(x.fs, r, 200, 200, 0, NULL, 0), -EINVAL);
	fill_pattern(buf, 8, 100, 100);
	ck_assert_int_eq(client_write(x.fs, x.bd, r, 100, buf, 100), 0);
	check_bytes(x.fs, r, 8, 0, 200);
	ck_assert_uint_gt(getattr(x.fs, r).alloc_clusters, 1);
	/* Not for directories or symbolic links; no room left. */
	ck_assert_int_eq(fs_layout_get(x.fs, CSV_RECNO_ROOT, 0, 1, true, ext, 1, &n), -EISDIR);
	ck_assert_int_eq(fs_symlink(x.fs, CSV_RECNO_ROOT, "sym", "small", &r), 0);
	ck_assert_int_eq(fs_layout_get(x.fs, r, 0, 1, true, ext, 1, &n), -EINVAL);
	ck_assert_int_eq(fs_layout_get(x.fs, f, 1ull << 62, 1ull << 62, true, ext, 1, &n), -EFBIG);
	ck_assert_int_eq(fs_layout_get(x.fs, f, 0, 1ull << 40, true, ext, 1, &n), -ENOSPC);
	ck_assert(getattr(x.fs, f).size == 2 * len);
	free(buf);
	fx_close_clean(&x);
}
END_TEST

/* The clusters of a freed file, handed out again in a write layout, read
 * as zeros until the new owner commits what it wrote there. */
START_TEST(test_layout_reused_clusters_read_zeros)
{
	struct fixture x;
	uint64_t a, b, c;
	struct fs_extent ext[8];
	size_t n;
	const size_t len = 16 * 4096;
	fx_open_mode(&x, 16u << 20, 4096, _i);
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "a", S_IFREG | 0644, 0, 0, 0, &a), 0);
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "c", S_IFREG | 0644, 0, 0, 0, &c), 0);
	write_pattern(x.fs, a, 9, 0, len);
	write_pattern(x.fs, c, 1, 0, 4096); /* behind a, so a's clusters become a hole of their own */
	uint64_t a_lun = lun_offset_of(x.fs, a, 0);
	ck_assert_int_eq(fs_unlink(x.fs, CSV_RECNO_ROOT, "a"), 0);

	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "b", S_IFREG | 0644, 0, 0, 0, &b), 0);
	ck_assert_int_eq(fs_layout_get(x.fs, b, 0, len, true, ext, ARRAY_SIZE(ext), &n), 0);
	ck_assert(n >= 1 && ext[0].file_offset == 0 && ext[0].lun_offset == a_lun && ext[0].length >= len);
	ck_assert_uint_eq(ext[0].flags, FS_EXTENT_UNWRITTEN);
	/* A's bytes are still on the LUN; B claims a valid data length over
	 * them without having written anything. */
	ck_assert(!lun_zero(x.bd, a_lun, len));
	ck_assert_int_eq(fs_layout_commit(x.fs, b, len, len, 0, NULL, 0), 0);
	ck_assert_uint_eq(getattr(x.fs, b).valid_data_length, len);
	check_bytes(x.fs, b, UINT_MAX, 0, len);
	ck_assert_int_eq(fs_layout_get(x.fs, b, 0, len, false, ext, ARRAY_SIZE(ext), &n), 0);
	ck_assert(n == 1 && ext[0].flags == FS_EXTENT_UNWRITTEN);
	/* fs_write into the unwritten clusters: the rest of the cluster zero. */
	ck_assert_int_eq(fs_write(x.fs, b, 10, "xy", 2), 0);
	check_bytes(x.fs, b, UINT_MAX, 0, 10);
	check_bytes(x.fs, b, UINT_MAX, 12, len - 12);
	/* Committing a range makes what is on the LUN there visible: that is
	 * the writer's promise, and why nothing is visible before it. */
	struct fs_range w = { 4096, 4096 };
	ck_assert_int_eq(fs_layout_commit(x.fs, b, len, len, 0, &w, 1), 0);
	check_bytes(x.fs, b, 9, 4096, 4096);
	check_bytes(x.fs, b, UINT_MAX, 8192, len - 8192);
	fx_close_clean(&x);
}
END_TEST

START_TEST(test_fallocate)
{
	struct fixture x;
	uint64_t f, r;
	struct fs_attr a;
	const uint32_t cs = 4096;
	fx_open_mode(&x, 32u << 20, cs, _i);
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "f", S_IFREG | 0644, 0, 0, 0, &f), 0);
	uint64_t free0 = alloc_free_clusters(x.fs->alloc);
	ck_assert_int_eq(fs_fallocate(x.fs, f, FS_FALLOC_PUNCH_HOLE, 0, 4096), -EOPNOTSUPP);
	ck_assert_int_eq(fs_fallocate(x.fs, f, 0x10, 0, 4096), -EOPNOTSUPP);
	ck_assert_int_eq(fs_fallocate(x.fs, f, 0, 0, 0), -EINVAL);
	ck_assert_int_eq(fs_fallocate(x.fs, CSV_RECNO_ROOT, 0, 0, 1), -EISDIR);

	/* KEEP_SIZE: clusters, no size. */
	ck_assert_int_eq(fs_fallocate(x.fs, f, FS_FALLOC_KEEP_SIZE, 0, 1u << 20), 0);
	a = getattr(x.fs, f);
	ck_assert(a.size == 0 && a.alloc_clusters == 256);
	ck_assert_uint_eq(alloc_free_clusters(x.fs->alloc), free0 - 256);
	/* Default mode: the size grows to the end, the new bytes read as zeros. */
	ck_assert_int_eq(fs_fallocate(x.fs, f, 0, 100, 2u << 20), 0);
	a = getattr(x.fs, f);
	ck_assert(a.size == 100 + (2u << 20) && a.valid_data_length == 0 && a.alloc_clusters == 513);
	check_bytes(x.fs, f, UINT_MAX, 0, a.size);
	/* Writes into allocated clusters take no more. */
	write_pattern(x.fs, f, 2, 0, 256 * 1024);
	ck_assert_uint_eq(getattr(x.fs, f).alloc_clusters, 513);
	ck_assert_uint_eq(alloc_free_clusters(x.fs->alloc), free0 - 513);

	/* PUNCH_HOLE: the whole clusters go, the edges are zeroed on the LUN. */
	uint64_t head_lun = lun_offset_of(x.fs, f, 10000);
	uint64_t tail_lun = lun_offset_of(x.fs, f, 14 * cs);
	ck_assert(!lun_zero(x.bd, head_lun, 3 * cs - 10000));
	ck_assert_int_eq(fs_fallocate(x.fs, f, FS_FALLOC_KEEP_SIZE | FS_FALLOC_PUNCH_HOLE, 10000, 50000), 0);
	a = getattr(x.fs, f);
	ck_assert(a.size == 100 + (2u << 20) && a.alloc_clusters == 513 - 11);
	ck_assert_uint_eq(alloc_free_clusters(x.fs->alloc), free0 - 513 + 11);
	ck_assert(lun_zero(x.bd, head_lun, 3 * cs - 10000));
	ck_assert(lun_zero(x.bd, tail_lun, 60000 - 14 * cs));
	ck_assert(!lun_zero(x.bd, tail_lun + (60000 - 14 * cs), 1));
	check_bytes(x.fs, f, 2, 0, 10000);
	check_bytes(x.fs, f, UINT_MAX, 10000, 50000);
	check_bytes(x.fs, f, 2, 60000, 256 * 1024 - 60000);
	/* Inside one cluster: nothing unmapped, the bytes zeroed. */
	ck_assert_int_eq(fs_fallocate(x.fs, f, FS_FALLOC_KEEP_SIZE | FS_FALLOC_PUNCH_HOLE, 70001, 10), 0);
	ck_assert_uint_eq(getattr(x.fs, f).alloc_clusters, 513 - 11);
	check_bytes(x.fs, f, 2, 60000, 10001);
	check_bytes(x.fs, f, UINT_MAX, 70001, 10);
	check_bytes(x.fs, f, 2, 70011, 1000);
	/* A hole punched is allocated again, unwritten. */
	ck_assert_int_eq(fs_fallocate(x.fs, f, FS_FALLOC_KEEP_SIZE, 0, 1u << 20), 0);
	ck_assert_uint_eq(getattr(x.fs, f).alloc_clusters, 513);
	check_bytes(x.fs, f, UINT_MAX, 12288, 14 * cs - 12288);
	/* Punch beyond the size drops the preallocation there. */
	ck_assert_int_eq(fs_fallocate(x.fs, f, FS_FALLOC_KEEP_SIZE, 3u << 20, 1u << 20), 0);
	ck_assert_uint_eq(getattr(x.fs, f).alloc_clusters, 513 + 256);
	ck_assert_int_eq(fs_fallocate(x.fs, f, FS_FALLOC_KEEP_SIZE | FS_FALLOC_PUNCH_HOLE, 3u << 20, 1u << 20), 0);
	ck_assert_uint_eq(getattr(x.fs, f).alloc_clusters, 513);

	/* A resident file: punch zeroes bytes in the record. */
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "r", S_IFREG | 0644, 0, 0, 0, &r), 0);
	write_pattern(x.fs, r, 3, 0, 100);
	ck_assert_int_eq(fs_fallocate(x.fs, r, FS_FALLOC_KEEP_SIZE | FS_FALLOC_PUNCH_HOLE, 10, 20), 0);
	check_bytes(x.fs, r, 3, 0, 10);
	check_bytes(x.fs, r, UINT_MAX, 10, 20);
	check_bytes(x.fs, r, 3, 30, 70);
	ck_assert_uint_eq(getattr(x.fs, r).alloc_clusters, 0);
	ck_assert_int_eq(fs_unlink(x.fs, CSV_RECNO_ROOT, "f"), 0);
	ck_assert_uint_eq(alloc_free_clusters(x.fs->alloc), free0);
	fx_close_clean(&x);
}
END_TEST

START_TEST(test_orphans)
{
	struct fixture x;
	uint64_t f, g, d, ref;
	struct fs_attr a;
	fx_open_mode(&x, 16u << 20, 4096, _i);
	uint32_t root_links = getattr(x.fs, CSV_RECNO_ROOT).nlink;
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "f", S_IFREG | 0644, 0, 0, 0, &f), 0);
	uint64_t free0 = alloc_free_clusters(x.fs->alloc);
	write_pattern(x.fs, f, 4, 0, 20000);
	ck_assert_int_eq(fs_link(x.fs, f, CSV_RECNO_ROOT, "f2"), 0);

	/* With another link left, it is a plain unlink. */
	ck_assert_int_eq(fs_unlink_open(x.fs, CSV_RECNO_ROOT, "f"), 0);
	a = getattr(x.fs, f);
	ck_assert_uint_eq(a.nlink, 1);
	ck_assert_int_eq(fs_release_orphan(x.fs, f), -EINVAL);
	/* The last one: the file stays, with no name, readable. */
	ck_assert_int_eq(fs_unlink_open(x.fs, CSV_RECNO_ROOT, "f2"), 0);
	ck_assert_int_eq(fs_lookup(x.fs, CSV_RECNO_ROOT, "f2", &ref), -ENOENT);
	a = getattr(x.fs, f);
	ck_assert(a.nlink == 0 && a.size == 20000);
	check_bytes(x.fs, f, 4, 0, 20000);
	write_pattern(x.fs, f, 4, 20000, 5000);
	ck_assert_int_eq(fs_link(x.fs, f, CSV_RECNO_ROOT, "back"), -ENOENT);
	/* fsck would reclaim it after a crash. */
	ck_assert_int_eq(fs_sync(x.fs), 0);
	struct fsck_options o = { 0 };
	char *out = NULL;
	size_t out_len;
	FILE *mf = open_memstream(&out, &out_len);
	ck_assert_int_ne(fsck_volume(x.bd, &o, mf), FSCK_OK);
	fclose(mf);
	ck_assert_msg(strstr(out, "orphan") != NULL, "fsck said:\n%s", out);
	free(out);
	ck_assert_int_eq(fs_release_orphan(x.fs, f), 0);
	ck_assert_int_eq(fs_getattr(x.fs, f, &a), -ENOENT);
	ck_assert_int_eq(fs_release_orphan(x.fs, f), -ENOENT);
	ck_assert_uint_eq(alloc_free_clusters(x.fs->alloc), free0);

	/* A rename over an open target keeps it the same way. */
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "new", S_IFREG | 0644, 0, 0, 0, &f), 0);
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "old", S_IFREG | 0644, 0, 0, 0, &g), 0);
	write_pattern(x.fs, g, 5, 0, 9000);
	ck_assert_int_eq(fs_rename(x.fs, CSV_RECNO_ROOT, "new", CSV_RECNO_ROOT, "old", FS_RENAME_TARGET_OPEN), 0);
	ck_assert_int_eq(fs_lookup(x.fs, CSV_RECNO_ROOT, "old", &ref), 0);
	ck_assert_uint_eq(CSV_REF_RECNO(ref), f);
	ck_assert_uint_eq(getattr(x.fs, g).nlink, 0);
	check_bytes(x.fs, g, 5, 0, 9000);
	ck_assert_int_eq(fs_release_orphan(x.fs, g), 0);
	/* Directories are never kept. */
	ck_assert_int_eq(fs_create(x.fs, CSV_RECNO_ROOT, "d", S_IFDIR | 0755, 0, 0, 0, &d), 0);
	ck_assert_int_eq(fs_unlink_open(x.fs, CSV_RECNO_ROOT, "d"), 0);
	ck_assert_int_eq(fs_getattr(x.fs, d, &a), -ENOENT);
	ck_assert_uint_eq(getattr(x.fs, CSV_RECNO_ROOT).nlink, root_links);
	ck_assert_uint_eq(alloc_free_clusters(x.fs->alloc), free0);
	fx_close_clean(&x);
}
END_TEST

/* What the mixed power-cut test expects of one name. */
struct model_mixed {
	char name[16];
	bool exists;
	bool uncertain;   /* an operation naming it was in flight at the power cut */
	bool unknown;     /* its contents are not known (after an uncertain change) */
	unsigned pattern;
	uint64_t size;
	uint64_t valid;   /* bytes [0, valid) hold the pattern, the rest to size zeros */
};

#define MIX_MAX (400u * 1024)

/* Like test_journaled_power_cut, with renames, truncates and client writes
 * through layouts mixed in. */
START_TEST(test_journaled_power_cut_mixed)
{
	const unsigned seed0 = 5000 + (unsigned)_i;
	unsigned seed = seed0;
	struct csv_blockdev *img, *bd;
	struct model_mixed files[12] = { 0 };
	const uint64_t vol = 32u << 20;
	char err[256];
	uint8_t *buf = malloc(MIX_MAX), *want = malloc(MIX_MAX);

	ck_assert_int_eq(tvol_make(vol, 4096, &img), 0);
	ck_assert_int_eq(blockdev_open_mem(vol, true, &bd), 0);
	ck_assert_int_eq(blockdev_pwrite(bd, blockdev_mem_data(img), vol, 0), 0);
	ck_assert_int_eq(blockdev_flush(bd), 0);
	blockdev_close(img);
	for (unsigned i = 0; i < ARRAY_SIZE(files); i++)
		snprintf(files[i].name, sizeof(files[i].name), "m%02u", i);

	for (unsigned round = 0; round < 4; round++) {
		struct csv_volume *v;
		struct csv_journal *j;
		struct csv_fs *fs;
		ck_assert_int_eq(volume_open_bdev(bd, &v, err, sizeof(err)), 0);
		ck_assert_int_eq(journal_open(v, &j), 0);
		if (journal_needs_replay(j))
			ck_assert_int_eq(journal_replay(j, NULL, NULL), 0);
		ck_assert_int_eq(fs_open_journaled(v, j, &fs, err, sizeof(err)), 0);
		blockdev_mem_fail_after(bd, 20 + rand_r(&seed) % 300);
		for (unsigned op = 0; op < 60; op++) {
			struct model_mixed *m = &files[rand_r(&seed) % ARRAY_SIZE(files)];
			uint64_t recno, ref;
			struct fs_attr a;
			unsigned what = rand_r(&seed) % 5;
			int r = 0;
			if (!m->exists) {
				m->uncertain = true;
				r = fs_create(fs, CSV_RECNO_ROOT, m->name, S_IFREG | 0644, 0, 0, 0, &recno);
				if (r < 0)
					break;
				m->exists = true;
				m->unknown = false;
				m->pattern = rand_r(&seed) % 1000;
				m->size = m->valid = 0;
				size_t size = (size_t[]){ 100, 5000, 70000 }[rand_r(&seed) % 3];
				fill_pattern(buf, m->pattern, 0, size);
				r = fs_write(fs, recno, 0, buf, size);
				if (r < 0 && r != -ENOSPC)
					break;
				if (r == 0)
					m->size = m->valid = size;
			} else if (what == 0) {
				m->uncertain = true;
				r = fs_unlink(fs, CSV_RECNO_ROOT, m->name);
				if (r < 0)
					break;
				m->exists = false;
			} else if (what == 1) {
				struct model_mixed *t = &files[rand_r(&seed) % ARRAY_SIZE(files)];
				m->uncertain = t->uncertain = true;
				r = fs_rename(fs, CSV_RECNO_ROOT, m->name, CSV_RECNO_ROOT, t->name, 0);
				if (r < 0)
					break;
				if (t != m) {
					char name[16];
					memcpy(name, t->name, sizeof(name));
					*t = *m;
					memcpy(t->name, name, sizeof(name));
					m->exists = false;
				}
				t->uncertain = false;
			} else {
				ck_assert_int_eq(fs_lookup(fs, CSV_RECNO_ROOT, m->name, &ref), 0);
				recno = CSV_REF_RECNO(ref);
				ck_assert_int_eq(fs_getattr(fs, recno, &a), 0);
				if (!m->unknown)
					ck_assert_msg(a.size == m->size && a.valid_data_length == m->valid,
						      "seed %u: %s size %llu vdl %llu", seed0, m->name,
						      (unsigned long long)a.size, (unsigned long long)a.valid_data_length);
				m->uncertain = true;
				if (what == 2 || a.valid_data_length + 70000 > MIX_MAX) {
					uint64_t s = (uint64_t[]){ 0, a.size / 2 + 3, a.size + 5000 }[rand_r(&seed) % 3];
					r = truncate_to(fs, recno, MIN(s, MIX_MAX));
					if (r < 0 && r != -ENOSPC)
						break;
					if (r == 0) {
						m->size = MIN(s, MIX_MAX);
						m->valid = MIN(m->valid, m->size);
					}
				} else {
					/* A client writes at the valid data length. */
					size_t n = (size_t[]){ 100, 5000, 70000 }[rand_r(&seed) % 3];
					uint64_t off = a.valid_data_length;
					fill_pattern(buf, m->pattern, off, n);
					r = client_write(fs, bd, recno, off, buf, n);
					if (r < 0 && r != -ENOSPC)
						break;
					if (r == 0) {
						m->valid = off + n;
						m->size = MAX(m->size, off + n);
					}
				}
			}
			m->uncertain = false;
		}
		power_cut_and_replay(bd, &v, &j, &fs, seed + round, seed0, round);
		for (unsigned i = 0; i < ARRAY_SIZE(files); i++) {
			struct model_mixed *m = &files[i];
			uint64_t ref;
			int r = fs_lookup(fs, CSV_RECNO_ROOT, m->name, &ref);
			if (m->uncertain) {
				m->exists = r == 0;
				m->uncertain = false;
				m->unknown = true;
				continue;
			}
			ck_assert_msg((r == 0) == m->exists, "seed %u round %u: %s %s", seed0, round, m->name,
				      m->exists ? "lost" : "came back");
			if (!m->exists || m->unknown)
				continue;
			size_t got;
			ck_assert_int_eq(fs_read(fs, CSV_REF_RECNO(ref), 0, buf, MIX_MAX, &got), 0);
			ck_assert_msg(got == m->size, "seed %u: %s has %zu bytes, expected %llu", seed0, m->name, got,
				      (unsigned long long)m->size);
			memset(want, 0, got);
			fill_pattern(want, m->pattern, 0, m->valid);
			ck_assert_msg(memcmp(buf, want, got) == 0, "seed %u round %u: %s differs", seed0, round, m->name);
		}
		fs_close(fs);
		volume_close(v);
	}
	free(buf);
	free(want);
	blockdev_close(bd);
}
END_TEST

static Suite *fs_suite(void)
{
	Suite *s = suite_create("fs");
	TCase *tc = tcase_create("namespace");
	tcase_add_test(tc, test_create_lookup_unlink);
	tcase_add_test(tc, test_directories);
	tcase_add_test(tc, test_many_entries_grow_the_mft);
	tcase_add_test(tc, test_hard_links_and_symlinks);
	tcase_set_timeout(tc, 300);
	suite_add_tcase(s, tc);
	tc = tcase_create("data");
	tcase_add_loop_test(tc, test_write_read_and_free, 0, 2);
	tcase_add_test(tc, test_out_of_space);
	tcase_set_timeout(tc, 300);
	suite_add_tcase(s, tc);
	tc = tcase_create("journaled");
	tcase_add_test(tc, test_journaled_ops_survive_without_checkpoint);
	tcase_add_loop_test(tc, test_journaled_power_cut, 0, 12);
	tcase_set_timeout(tc, 600);
	suite_add_tcase(s, tc);
	tc = tcase_create("journaled-mixed");
	tcase_add_loop_test(tc, test_journaled_power_cut_mixed, 0, 12);
	tcase_set_timeout(tc, 600);
	suite_add_tcase(s, tc);
	/* What the coordinator serves; loop index bit 0: journaled. */
	tc = tcase_create("attributes");
	tcase_add_loop_test(tc, test_chmod_chown_utimens, 0, 2);
	tcase_add_loop_test(tc, test_truncate, 0, 4);
	tcase_add_loop_test(tc, test_statfs, 0, 2);
	tcase_add_loop_test(tc, test_xattrs_with_flags, 0, 2);
	tcase_add_loop_test(tc, test_readlink, 0, 2);
	tcase_set_timeout(tc, 300);
	suite_add_tcase(s, tc);
	tc = tcase_create("rename");
	tcase_add_loop_test(tc, test_rename_over_file, 0, 2);
	tcase_add_loop_test(tc, test_rename_exchange, 0, 2);
	tcase_add_loop_test(tc, test_rename_directories, 0, 2);
	tcase_set_timeout(tc, 300);
	suite_add_tcase(s, tc);
	tc = tcase_create("readdir");
	tcase_add_loop_test(tc, test_readdir_resume, 0, 2);
	tcase_set_timeout(tc, 300);
	suite_add_tcase(s, tc);
	tc = tcase_create("layout");
	tcase_add_loop_test(tc, test_layout_write_commit, 0, 2);
	tcase_add_loop_test(tc, test_layout_reused_clusters_read_zeros, 0, 2);
	tcase_add_loop_test(tc, test_fallocate, 0, 2);
	tcase_set_timeout(tc, 300);
	suite_add_tcase(s, tc);
	tc = tcase_create("orphans");
	tcase_add_loop_test(tc, test_orphans, 0, 2);
	tcase_set_timeout(tc, 300);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(fs_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
