/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Namespace and data operations on a volume (fs.c), checked by reading
 * back and by fsck finding the volume clean after each scenario. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checker.h"
#include "fs.h"
#include "journal.h"
#include "meta.h"
#include "record.h"
#include "test-volume-util.h"
#include "util.h"

struct fixture {
	struct csv_blockdev *bd;
	struct csv_volume *v;
	struct csv_fs *fs;
};

static void fx_open(struct fixture *x, uint64_t size, uint32_t cs)
{
	char err[256];
	ck_assert_int_eq(tvol_make(size, cs, &x->bd), 0);
	ck_assert_int_eq(volume_open_bdev(x->bd, &x->v, err, sizeof(err)), 0);
	ck_assert_int_eq(fs_open(x->v, false, &x->fs, err, sizeof(err)), 0);
}

/* Syncs, closes and runs fsck -n, which must find nothing. */
static void fx_close_clean(struct fixture *x)
{
	ck_assert_int_eq(fs_sync(x->fs), 0);
	fs_close(x->fs);
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
		/* The power cut: some unflushed writes reach the disk, some not. */
		fs_close(fs);
		journal_close(j);
		volume_close(v);
		blockdev_mem_crash_random(bd, seed + round);
		blockdev_mem_fail_after(bd, -1);

		ck_assert_int_eq(volume_open_bdev(bd, &v, err, sizeof(err)), 0);
		ck_assert_int_eq(journal_open(v, &j), 0);
		if (journal_needs_replay(j))
			ck_assert_int_eq(journal_replay(j, NULL, NULL), 0);
		journal_close(j);
		volume_close(v);
		ck_assert_msg(fsck_status(bd) == FSCK_OK, "seed %u round %u: not clean after replay", seed, round);

		ck_assert_int_eq(volume_open_bdev(bd, &v, err, sizeof(err)), 0);
		ck_assert_int_eq(fs_open(v, true, &fs, err, sizeof(err)), 0);
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
				ck_assert_msg(buf[k] == tvol_pattern(m->pattern, k), "seed %u: %s byte %zu", seed, m->name, k);
		}
		fs_close(fs);
		volume_close(v);
	}
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
