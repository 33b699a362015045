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
#include "record.h"
#include "test-volume-util.h"

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
