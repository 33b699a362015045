/* SPDX-License-Identifier: GPL-2.0-or-later */
/* fsck against damage: a populated volume checks clean; flipping a byte of
 * any metadata block is reported (naming the block), never crashes the
 * checker, and a repair leaves a volume the next check finds clean. */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checker.h"
#include "fs.h"
#include "journal.h"
#include "record.h"
#include "meta.h"
#include "test-volume-util.h"
#include "util.h"
#include "volume.h"

#define VOL_SIZE (16u << 20)

static int run_fsck(struct csv_blockdev *bd, bool repair, char **ret_out)
{
	struct fsck_options o = { .repair = repair };
	size_t len;
	char *out = NULL;
	FILE *f = open_memstream(&out, &len);
	ck_assert_ptr_nonnull(f);
	int status = fsck_volume(bd, &o, f);
	fclose(f);
	if (ret_out)
		*ret_out = out;
	else
		free(out);
	return status;
}

static struct csv_blockdev *populated(uint32_t cs)
{
	struct csv_blockdev *bd;
	ck_assert_int_eq(tvol_make(VOL_SIZE, cs, &bd), 0);
	ck_assert_int_eq(tvol_populate(bd), 0);
	return bd;
}

START_TEST(test_populated_volume_is_clean)
{
	uint32_t cs = _i == 0 ? 4096 : 16384;
	struct csv_blockdev *bd = populated(cs);
	char *out, err[256] = "";
	int status = run_fsck(bd, false, &out);
	ck_assert_msg(status == FSCK_OK, "fsck -n of a fresh volume: status %d\n%s", status, out);
	free(out);
	status = run_fsck(bd, true, &out);
	ck_assert_msg(status == FSCK_OK, "fsck -y of a fresh volume: status %d\n%s", status, out);
	free(out);
	ck_assert_msg(tvol_verify(bd, err, sizeof(err)) == 0, "%s", err);
	blockdev_close(bd);
}
END_TEST

/* The metadata blocks of an image: every block whose header verifies
 * with its own magic and location. */
static size_t find_metadata_blocks(const uint8_t *img, size_t size, uint32_t cs, uint64_t **ret,
				   uint32_t **ret_len)
{
	static const uint32_t magics[] = {
		CSV_MAGIC_HEADER, CSV_MAGIC_CBITMAP, CSV_MAGIC_RBITMAP, CSV_MAGIC_RECORD, CSV_MAGIC_INDEX,
		CSV_MAGIC_EXTENT, CSV_MAGIC_JSUPER, CSV_MAGIC_LEASE, CSV_MAGIC_WITNESS, CSV_MAGIC_HEARTBEAT,
		CSV_MAGIC_MAILBOX,
	};
	uint64_t *list = NULL;
	uint32_t *lens = NULL;
	size_t n = 0;
	for (uint64_t b = 0; b < size / CSV_BLOCK_SIZE; b++) {
		const struct csv_d_blkhdr *h = (const void *)(img + b * CSV_BLOCK_SIZE);
		uint32_t magic = le32_to_cpu(h->magic);
		for (size_t m = 0; m < ARRAY_SIZE(magics); m++) {
			if (magic != magics[m])
				continue;
			size_t len = (magic == CSV_MAGIC_INDEX || magic == CSV_MAGIC_EXTENT) ? cs : CSV_BLOCK_SIZE;
			if (b * CSV_BLOCK_SIZE + len > size ||
			    meta_verify(img + b * CSV_BLOCK_SIZE, len, magic, b, h->uuid, NULL) != 0)
				continue;
			list = realloc(list, (n + 1) * sizeof(*list));
			lens = realloc(lens, (n + 1) * sizeof(*lens));
			lens[n] = (uint32_t)len;
			list[n++] = b;
		}
	}
	*ret = list;
	*ret_len = lens;
	return n;
}

/* Flips one byte of block b (at off, with mask) of a fresh copy of the
 * pristine image in bd and checks the three runs of fsck. */
static void flip_and_check(struct csv_blockdev *bd, const uint8_t *pristine, uint64_t b, uint32_t off,
			   uint8_t mask, unsigned *ret_runs)
{
	char *out, needle[64];
	memcpy(blockdev_mem_data(bd), pristine, VOL_SIZE);
	blockdev_mem_data(bd)[b * CSV_BLOCK_SIZE + off] ^= mask;
	if (getenv("TEST_VERBOSE"))
		fprintf(stderr, "flip block %" PRIu64 " byte %u ^0x%02x\n", b, off, mask);

	int status = run_fsck(bd, false, &out);
	snprintf(needle, sizeof(needle), "block %" PRIu64, b);
	ck_assert_msg(status != FSCK_OK && (status & FSCK_OPERATIONAL) == 0,
		      "block %" PRIu64 " byte %u ^0x%02x: fsck -n status %d\n%s", b, off, mask, status, out);
	ck_assert_msg(strstr(out, needle) != NULL, "block %" PRIu64 " byte %u: the report does not name the block:\n%s",
		      b, off, out);
	free(out);

	status = run_fsck(bd, true, &out);
	ck_assert_msg(status == FSCK_CORRECTED, "block %" PRIu64 " byte %u ^0x%02x: fsck -y status %d\n%s", b, off,
		      mask, status, out);
	char *first = out;
	status = run_fsck(bd, false, &out);
	ck_assert_msg(status == FSCK_OK, "block %" PRIu64 " byte %u ^0x%02x: not clean after repair (status %d)\n"
		      "repair said:\n%s\nsecond check said:\n%s", b, off, mask, status, first, out);
	free(first);
	free(out);
	(*ret_runs)++;
	if (getenv("TEST_VERBOSE") && *ret_runs % 100 == 0)
		fprintf(stderr, "%u flips\n", *ret_runs);
}

START_TEST(test_flip_every_metadata_block)
{
	uint32_t cs = _i == 0 ? 4096 : 16384;
	struct csv_blockdev *bd = populated(cs);
	uint8_t *pristine = malloc(VOL_SIZE);
	ck_assert_ptr_nonnull(pristine);
	memcpy(pristine, blockdev_mem_data(bd), VOL_SIZE);

	uint64_t *blocks;
	uint32_t *lens;
	size_t n = find_metadata_blocks(pristine, VOL_SIZE, cs, &blocks, &lens);
	ck_assert_uint_gt(n, 50);
	unsigned seed = 12345 + _i, runs = 0, free_records = 0;
	/* Every field of the block header, then random places in the rest.
	 * By default each block gets one header field (taking turns across
	 * blocks, so every field is hit many times) and two random bytes;
	 * CSVFS_CORRUPT_FULL=1 flips every header field and four random bytes
	 * of every block. */
	static const uint32_t fields[] = { 0x00, 0x04, 0x08, 0x10, 0x20, 0x30, 0x38, 0x40 };
	bool full = getenv("CSVFS_CORRUPT_FULL") != NULL;
	for (size_t i = 0; i < n; i++) {
		const struct csv_d_record *rec = (const void *)(pristine + blocks[i] * CSV_BLOCK_SIZE);
		free_records += le32_to_cpu(rec->h.magic) == CSV_MAGIC_RECORD && !(le16_to_cpu(rec->flags) & CSV_REC_IN_USE);
		for (unsigned k = 0; k < (full ? ARRAY_SIZE(fields) : 1u); k++)
			flip_and_check(bd, pristine, blocks[i], fields[full ? k : i % ARRAY_SIZE(fields)],
				       (uint8_t)(1 + rand_r(&seed) % 255), &runs);
		for (unsigned k = 0; k < (full ? 4u : 2u); k++)
			flip_and_check(bd, pristine, blocks[i], 0x30 + rand_r(&seed) % (lens[i] - 0x30),
				       (uint8_t)(1 + rand_r(&seed) % 255), &runs);
	}
	printf("cluster size %u: %zu metadata blocks (%u free records), %u single-byte flips, each reported and "
	       "repaired\n", cs, n, free_records, runs);
	free(blocks);
	free(lens);
	free(pristine);
	blockdev_close(bd);
}
END_TEST

/* A committed transaction that never reached its home block: fsck -n
 * says replay is needed, fsck -y replays it, and the change is there. */
START_TEST(test_replays_a_dirty_journal)
{
	struct csv_blockdev *bd = populated(4096);
	struct csv_volume *v;
	struct csv_fs *fs;
	struct csv_journal *j;
	struct csv_txn *t;
	char err[256], *out;
	uint64_t block;
	uint8_t buf[CSV_RECORD_SIZE];

	ck_assert_int_eq(volume_open_bdev(bd, &v, err, sizeof(err)), 0);
	ck_assert_int_eq(fs_open(v, true, &fs, err, sizeof(err)), 0);
	ck_assert_int_eq(mft_read(&fs->mft, CSV_RECNO_ROOT, buf, err, sizeof(err)), 0);
	ck_assert_int_eq(mft_record_block(&fs->mft, CSV_RECNO_ROOT, &block), 0);
	fs_close(fs);
	((struct csv_d_record *)buf)->mode = cpu_to_le32(S_IFDIR | 0701);
	ck_assert_int_eq(journal_open(v, &j), 0);
	ck_assert_int_eq(journal_txn_begin(j, &t), 0);
	ck_assert_int_eq(journal_txn_add(t, block, 1, CSV_MAGIC_RECORD, buf), 0);
	ck_assert_int_eq(journal_txn_commit(t), 0);
	journal_close(j);
	volume_close(v);

	int status = run_fsck(bd, false, &out);
	ck_assert_msg(status == FSCK_UNCORRECTED && strstr(out, "replay"), "fsck -n: status %d\n%s", status, out);
	free(out);
	status = run_fsck(bd, true, &out);
	ck_assert_msg(status == FSCK_CORRECTED && strstr(out, "Journal replayed: 1 transactions"),
		      "fsck -y: status %d\n%s", status, out);
	free(out);
	status = run_fsck(bd, false, &out);
	ck_assert_msg(status == FSCK_OK, "fsck -n after the replay: status %d\n%s", status, out);
	free(out);

	ck_assert_int_eq(volume_open_bdev(bd, &v, err, sizeof(err)), 0);
	ck_assert_int_eq(fs_open(v, true, &fs, err, sizeof(err)), 0);
	ck_assert_int_eq(mft_read(&fs->mft, CSV_RECNO_ROOT, buf, err, sizeof(err)), 0);
	ck_assert_uint_eq(le32_to_cpu(((struct csv_d_record *)buf)->mode), S_IFDIR | 0701);
	fs_close(fs);
	volume_close(v);
	ck_assert_msg(tvol_verify(bd, err, sizeof(err)) == 0, "%s", err);
	blockdev_close(bd);
}
END_TEST

static Suite *check_suite(void)
{
	Suite *s = suite_create("fsck");
	TCase *tc = tcase_create("clean");
	tcase_add_loop_test(tc, test_populated_volume_is_clean, 0, 2);
	tcase_add_test(tc, test_replays_a_dirty_journal);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	tc = tcase_create("corruption");
	tcase_add_loop_test(tc, test_flip_every_metadata_block, 0, 2);
	tcase_set_timeout(tc, 1800);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(check_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
