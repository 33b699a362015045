/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bitmap.h"
#include "blockdev.h"
#include "meta.h"
#include "volume.h"
#include "test-util.h"

/* A bool per bit, the model the bitmap is checked against. */
struct model {
	uint64_t n;
	unsigned char *b;
};

static void model_check(const struct csv_bitmap *bm, const struct model *m)
{
	ck_assert_uint_eq(bm->nbits, m->n);
	for (uint64_t i = 0; i < m->n; i++)
		REQUIRE(bitmap_test(bm, i) == (bool)m->b[i], "bit %lu", (unsigned long)i);
	/* Bits beyond nbits stay zero in the last word. */
	if (m->n % 64)
		ck_assert_uint_eq(bm->words[m->n / 64] >> (m->n % 64), 0);
}

static uint64_t model_next(const struct model *m, uint64_t from, bool set)
{
	for (uint64_t i = from; i < m->n; i++)
		if ((bool)m->b[i] == set)
			return i;
	return m->n;
}

START_TEST(test_word_boundaries)
{
	struct csv_bitmap bm;
	ck_assert_int_eq(bitmap_init(&bm, 200), 0);

	ck_assert_int_eq(bitmap_set_range(&bm, 63, 2), 0);
	ck_assert(!bitmap_test(&bm, 62));
	ck_assert(bitmap_test(&bm, 63));
	ck_assert(bitmap_test(&bm, 64));
	ck_assert(!bitmap_test(&bm, 65));
	ck_assert_uint_eq(bm.words[0], 1ull << 63);
	ck_assert_uint_eq(bm.words[1], 1ull);

	ck_assert_int_eq(bitmap_set_range(&bm, 64, 64), 0);
	ck_assert_uint_eq(bm.words[1], ~0ull);
	ck_assert_uint_eq(bm.words[2], 0);
	ck_assert_uint_eq(bitmap_count_set(&bm, 0, 200), 65);
	ck_assert_uint_eq(bitmap_count_set(&bm, 64, 64), 64);
	ck_assert_uint_eq(bitmap_count_set(&bm, 63, 1), 1);
	ck_assert_uint_eq(bitmap_count_set(&bm, 100, 1000), 28); /* clipped */

	ck_assert_int_eq(bitmap_clear_range(&bm, 0, 200), 0);
	ck_assert_uint_eq(bitmap_count_set(&bm, 0, 200), 0);

	/* The whole bitmap, then the tail word keeps its high bits clear. */
	ck_assert_int_eq(bitmap_set_range(&bm, 0, 200), 0);
	ck_assert_uint_eq(bm.words[3], (1ull << 8) - 1);
	ck_assert_uint_eq(bitmap_count_set(&bm, 0, UINT64_MAX), 200);
	ck_assert_uint_eq(bitmap_find_next_clear(&bm, 0), 200);
	ck_assert_uint_eq(bitmap_find_next_clear(&bm, 199), 200);

	/* Out of range: refused, nothing changed. */
	ck_assert_int_eq(bitmap_clear_range(&bm, 190, 11), -ERANGE);
	ck_assert_int_eq(bitmap_clear_range(&bm, 201, 0), -ERANGE);
	ck_assert_int_eq(bitmap_set_range(&bm, UINT64_MAX, 2), -ERANGE);
	ck_assert_uint_eq(bitmap_count_set(&bm, 0, 200), 200);
	ck_assert_int_eq(bitmap_clear_range(&bm, 200, 0), 0);
	ck_assert(!bitmap_test(&bm, 200));
	ck_assert(!bitmap_test(&bm, UINT64_MAX));
	bitmap_free(&bm);
	bitmap_free(&bm); /* harmless twice */

	ck_assert_int_eq(bitmap_init(&bm, 0), 0);
	ck_assert_uint_eq(bitmap_find_next_set(&bm, 0), 0);
	ck_assert_uint_eq(bitmap_find_next_clear(&bm, 0), 0);
	ck_assert_uint_eq(bitmap_count_set(&bm, 0, 10), 0);
	ck_assert_int_eq(bitmap_set_range(&bm, 0, 0), 0);
	ck_assert_int_eq(bitmap_set_range(&bm, 0, 1), -ERANGE);
	bitmap_free(&bm);
}
END_TEST

START_TEST(test_find_next)
{
	struct csv_bitmap bm;
	ck_assert_int_eq(bitmap_init(&bm, 1000), 0);
	ck_assert_uint_eq(bitmap_find_next_set(&bm, 0), 1000);
	ck_assert_uint_eq(bitmap_find_next_set(&bm, 5000), 1000);
	ck_assert_uint_eq(bitmap_find_next_clear(&bm, 999), 999);
	ck_assert_uint_eq(bitmap_find_next_clear(&bm, 1000), 1000);

	bitmap_set_range(&bm, 640, 1);
	bitmap_set_range(&bm, 999, 1);
	ck_assert_uint_eq(bitmap_find_next_set(&bm, 0), 640);
	ck_assert_uint_eq(bitmap_find_next_set(&bm, 640), 640);
	ck_assert_uint_eq(bitmap_find_next_set(&bm, 641), 999);
	ck_assert_uint_eq(bitmap_find_next_set(&bm, 999), 999);

	bitmap_set_range(&bm, 0, 1000);
	bitmap_clear_range(&bm, 127, 1);
	ck_assert_uint_eq(bitmap_find_next_clear(&bm, 0), 127);
	ck_assert_uint_eq(bitmap_find_next_clear(&bm, 127), 127);
	ck_assert_uint_eq(bitmap_find_next_clear(&bm, 128), 1000);
	bitmap_free(&bm);
}
END_TEST

START_TEST(test_random_against_model)
{
	struct model m = { 1000 + 37, NULL };
	struct csv_bitmap bm;
	srand(12345);
	m.b = calloc(m.n, 1);
	ck_assert_ptr_nonnull(m.b);
	ck_assert_int_eq(bitmap_init(&bm, m.n), 0);

	for (int step = 0; step < 3000; step++) {
		uint64_t s = (uint64_t)rand() % m.n;
		uint64_t len = (uint64_t)rand() % (rand() % 4 ? 70 : 400);
		len = len > m.n - s ? m.n - s : len;
		bool set = rand() % 2;
		REQUIRE((set ? bitmap_set_range(&bm, s, len) : bitmap_clear_range(&bm, s, len)) == 0, "range %d", step);
		memset(m.b + s, set, len);

		uint64_t from = (uint64_t)rand() % (m.n + 5);
		REQUIRE(bitmap_find_next_set(&bm, from) == model_next(&m, from, true), "next set %d", step);
		REQUIRE(bitmap_find_next_clear(&bm, from) == model_next(&m, from, false), "next clear %d", step);
		uint64_t cs = (uint64_t)rand() % m.n, cl = (uint64_t)rand() % 300, c = 0;
		for (uint64_t i = cs; i < cs + cl && i < m.n; i++)
			c += m.b[i];
		REQUIRE(bitmap_count_set(&bm, cs, cl) == c, "count %d", step);
		if (step % 100 == 0)
			model_check(&bm, &m);
	}
	model_check(&bm, &m);

	struct csv_bitmap cp;
	ck_assert_int_eq(bitmap_copy(&bm, &cp), 0);
	ck_assert(bitmap_equal(&bm, &cp));
	model_check(&cp, &m);
	bitmap_free(&cp);
	bitmap_free(&bm);
	free(m.b);
}
END_TEST

START_TEST(test_differences)
{
	struct csv_bitmap a, b, c;
	uint64_t s, l;
	bool in_a;

	ck_assert_int_eq(bitmap_init(&a, 300), 0);
	ck_assert_int_eq(bitmap_init(&b, 300), 0);
	ck_assert(bitmap_equal(&a, &b));
	ck_assert_uint_eq(bitmap_first_difference(&a, &b, 0), 300);
	ck_assert_int_eq(bitmap_next_difference(&a, &b, 0, &s, &l, &in_a), 0);

	bitmap_set_range(&a, 10, 100);  /* a: 10..109 */
	bitmap_set_range(&b, 50, 200);  /* b: 50..249 */
	ck_assert(!bitmap_equal(&a, &b));
	ck_assert_uint_eq(bitmap_first_difference(&a, &b, 0), 10);
	ck_assert_uint_eq(bitmap_first_difference(&a, &b, 30), 30);
	ck_assert_uint_eq(bitmap_first_difference(&a, &b, 50), 110);
	ck_assert_uint_eq(bitmap_first_difference(&a, &b, 250), 300);

	ck_assert_int_eq(bitmap_next_difference(&a, &b, 0, &s, &l, &in_a), 1);
	ck_assert_uint_eq(s, 10);
	ck_assert_uint_eq(l, 40);
	ck_assert(in_a);
	ck_assert_int_eq(bitmap_next_difference(&a, &b, s + l, &s, &l, &in_a), 1);
	ck_assert_uint_eq(s, 110);
	ck_assert_uint_eq(l, 140);
	ck_assert(!in_a);
	ck_assert_int_eq(bitmap_next_difference(&a, &b, s + l, &s, &l, &in_a), 0);

	/* Adjacent differences the other way round are separate runs. */
	bitmap_clear_range(&a, 0, 300);
	bitmap_clear_range(&b, 0, 300);
	bitmap_set_range(&a, 60, 10);   /* 60..69 in a only */
	bitmap_set_range(&b, 70, 10);   /* 70..79 in b only */
	ck_assert_int_eq(bitmap_next_difference(&a, &b, 0, &s, &l, &in_a), 1);
	ck_assert_uint_eq(s, 60);
	ck_assert_uint_eq(l, 10);
	ck_assert(in_a);
	ck_assert_int_eq(bitmap_next_difference(&a, &b, 70, &s, &l, &in_a), 1);
	ck_assert_uint_eq(s, 70);
	ck_assert_uint_eq(l, 10);
	ck_assert(!in_a);

	/* Different sizes: the missing bits count as clear. */
	ck_assert_int_eq(bitmap_init(&c, 100), 0);
	bitmap_set_range(&c, 60, 10);
	ck_assert(!bitmap_equal(&a, &c));
	ck_assert_uint_eq(bitmap_first_difference(&a, &c, 0), 300);
	bitmap_set_range(&a, 299, 1);
	ck_assert_uint_eq(bitmap_first_difference(&a, &c, 0), 299);
	ck_assert_uint_eq(bitmap_first_difference(&c, &a, 0), 299);
	bitmap_free(&a);
	bitmap_free(&b);
	bitmap_free(&c);
}
END_TEST

static void fill_random(struct csv_bitmap *bm, unsigned seed)
{
	srand(seed);
	for (uint64_t i = 0; i < bm->nbits; i += 1 + (uint64_t)rand() % 200) {
		uint64_t len = (uint64_t)rand() % 150;
		if (len > bm->nbits - i)
			len = bm->nbits - i;
		bitmap_set_range(bm, i, len);
	}
}

START_TEST(test_encode_decode)
{
	const uint64_t nbits = 3ull * CSV_BITMAP_BITS + 100;
	struct csv_bitmap bm, out;
	uint8_t buf[CSV_BLOCK_SIZE];
	struct csv_d_bitmap *d = (struct csv_d_bitmap *)buf;

	ck_assert_int_eq(bitmap_region_blocks(nbits), 4);
	ck_assert_int_eq(bitmap_region_blocks(CSV_BITMAP_BITS), 1);
	ck_assert_int_eq(bitmap_region_blocks(0), 0);
	ck_assert_int_eq(bitmap_init(&bm, nbits), 0);
	ck_assert_int_eq(bitmap_init(&out, nbits), 0);
	fill_random(&bm, 7);
	bitmap_set_range(&bm, nbits - 1, 1);

	for (uint64_t i = 0; i < 4; i++) {
		memset(buf, 0xee, sizeof(buf));
		ck_assert_int_eq(bitmap_encode_block(&bm, i, buf), 0);
		ck_assert_uint_eq(le64_to_cpu(d->first_bit), i * CSV_BITMAP_BITS);
		ck_assert_uint_eq(le32_to_cpu(d->nbits), i < 3 ? CSV_BITMAP_BITS : 100);
		ck_assert_uint_eq(le32_to_cpu(d->h.magic), 0); /* not sealed */
		/* Bit j of the region is bit j % 8 of byte j / 8. */
		for (uint64_t j = 0; j < le32_to_cpu(d->nbits); j += 97) {
			uint64_t bit = i * CSV_BITMAP_BITS + j;
			ck_assert_int_eq((d->bits[j / 8] >> (j % 8)) & 1, bitmap_test(&bm, bit));
		}
		ck_assert_int_eq(bitmap_decode_block(buf, i, nbits, &out), 0);
	}
	ck_assert(bitmap_equal(&bm, &out));
	ck_assert_int_eq((d->bits[99 / 8] >> (99 % 8)) & 1, 1); /* the last bit */
	ck_assert_int_eq(bitmap_encode_block(&bm, 4, buf), -EINVAL);
	ck_assert_int_eq(bitmap_decode_block(buf, 4, nbits, &out), -EINVAL);

	/* A bitmap of another size is refused. */
	struct csv_bitmap small;
	ck_assert_int_eq(bitmap_init(&small, 10), 0);
	ck_assert_int_eq(bitmap_encode_block(&bm, 0, buf), 0);
	ck_assert_int_eq(bitmap_decode_block(buf, 0, nbits, &small), -EINVAL);
	bitmap_free(&small);
	bitmap_free(&bm);
	bitmap_free(&out);
}
END_TEST

START_TEST(test_decode_rejects)
{
	const uint64_t nbits = CSV_BITMAP_BITS + 70;
	struct csv_bitmap bm, out, before;
	uint8_t buf[CSV_BLOCK_SIZE], good[CSV_BLOCK_SIZE];
	struct csv_d_bitmap *d = (struct csv_d_bitmap *)buf;

	ck_assert_int_eq(bitmap_init(&bm, nbits), 0);
	ck_assert_int_eq(bitmap_init(&out, nbits), 0);
	bitmap_set_range(&bm, 0, nbits);
	bitmap_set_range(&out, 5, 1000);
	ck_assert_int_eq(bitmap_copy(&out, &before), 0);
	ck_assert_int_eq(bitmap_encode_block(&bm, 1, good), 0);

	/* A set bit beyond nbits: in the same word, and in a later word. */
	memcpy(buf, good, sizeof(buf));
	d->bits[70 / 8] |= 1u << (70 % 8);
	ck_assert_int_eq(bitmap_decode_block(buf, 1, nbits, &out), -EUCLEAN);
	memcpy(buf, good, sizeof(buf));
	d->bits[CSV_BITMAP_BYTES - 1] = 0x80;
	ck_assert_int_eq(bitmap_decode_block(buf, 1, nbits, &out), -EUCLEAN);
	/* Wrong first_bit, nbits, reserved; a block decoded at the wrong index. */
	memcpy(buf, good, sizeof(buf));
	d->first_bit = cpu_to_le64(0);
	ck_assert_int_eq(bitmap_decode_block(buf, 1, nbits, &out), -EUCLEAN);
	memcpy(buf, good, sizeof(buf));
	d->nbits = cpu_to_le32(71);
	ck_assert_int_eq(bitmap_decode_block(buf, 1, nbits, &out), -EUCLEAN);
	memcpy(buf, good, sizeof(buf));
	d->reserved = cpu_to_le32(1);
	ck_assert_int_eq(bitmap_decode_block(buf, 1, nbits, &out), -EUCLEAN);
	ck_assert_int_eq(bitmap_encode_block(&bm, 0, buf), 0);
	ck_assert_int_eq(bitmap_decode_block(buf, 1, nbits, &out), -EUCLEAN);
	ck_assert(bitmap_equal(&out, &before));

	/* The good one goes in, block 0 untouched. */
	ck_assert_int_eq(bitmap_decode_block(good, 1, nbits, &out), 0);
	ck_assert_uint_eq(bitmap_count_set(&out, 0, CSV_BITMAP_BITS), 1000);
	ck_assert_uint_eq(bitmap_count_set(&out, CSV_BITMAP_BITS, 70), 70);
	bitmap_free(&bm);
	bitmap_free(&out);
	bitmap_free(&before);
}
END_TEST

/* ---- On a memory volume ------------------------------------------------- */

#define VOL_SIZE (256ull << 20)

static struct csv_volume *mem_volume(struct csv_blockdev **ret_bd)
{
	struct csv_blockdev *bd;
	struct csv_geometry g;
	struct csv_volume *v;
	uint8_t buf[CSV_BLOCK_SIZE];
	char err[256];

	ck_assert_int_eq(blockdev_open_mem(VOL_SIZE, false, &bd), 0);
	ck_assert_int_eq(geometry_layout(VOL_SIZE, 4096, 4, 4096, 0, &g), 0);
	for (int i = 0; i < 16; i++)
		g.uuid[i] = (uint8_t)(0x11 * (i + 1));
	header_encode(&g, 0, buf);
	ck_assert_int_eq(blockdev_pwrite(bd, buf, sizeof(buf), 0), 0);
	header_encode(&g, g.backup_header_block, buf);
	ck_assert_int_eq(blockdev_pwrite(bd, buf, sizeof(buf), g.backup_header_block * CSV_BLOCK_SIZE), 0);
	ck_assert_msg(volume_open_bdev(bd, &v, err, sizeof(err)) == 0, "%s", err);
	*ret_bd = bd;
	return v;
}

struct bad_list {
	uint64_t blocknr[16];
	int err[16];
	int n;
};

static void note_bad(void *ud, uint64_t blocknr, int err)
{
	struct bad_list *l = ud;
	ck_assert_int_lt(l->n, 16);
	l->blocknr[l->n] = blocknr;
	l->err[l->n] = err;
	l->n++;
}

START_TEST(test_load_store)
{
	struct csv_blockdev *bd;
	struct csv_volume *v = mem_volume(&bd);
	const struct csv_geometry *g = &v->g;
	struct csv_bitmap bm, got;
	struct bad_list bad = { .n = 0 };

	ck_assert_uint_eq(g->cbitmap_blocks, 3);
	ck_assert_int_eq(bitmap_init(&bm, g->total_clusters), 0);
	fill_random(&bm, 99);
	ck_assert_int_eq(bitmap_store(v, g->cbitmap_block, CSV_MAGIC_CBITMAP, &bm, 42), 0);

	/* Each block is sealed: its own number, the magic, the LSN. */
	uint8_t blk[CSV_BLOCK_SIZE];
	for (uint64_t i = 0; i < 3; i++) {
		ck_assert_int_eq(volume_read_meta(v, g->cbitmap_block + i, 1, CSV_MAGIC_CBITMAP, blk), 0);
		ck_assert_uint_eq(le64_to_cpu(((struct csv_d_blkhdr *)blk)->lsn), 42);
	}

	ck_assert_int_eq(bitmap_load(v, g->cbitmap_block, g->cbitmap_blocks, CSV_MAGIC_CBITMAP,
				     g->total_clusters, &got, note_bad, &bad), 0);
	ck_assert_int_eq(bad.n, 0);
	ck_assert(bitmap_equal(&bm, &got));
	bitmap_free(&got);

	/* The record bitmap's magic does not pass for the cluster bitmap. */
	ck_assert_int_eq(bitmap_load(v, g->cbitmap_block, g->cbitmap_blocks, CSV_MAGIC_RBITMAP,
				     g->total_clusters, &got, note_bad, &bad), 3);
	ck_assert_int_eq(bad.n, 3);
	ck_assert_int_eq(bad.err[0], -EUCLEAN);
	ck_assert_uint_eq(bitmap_count_set(&got, 0, got.nbits), 0);
	bitmap_free(&got);
	bad.n = 0;

	/* A wrong region size is the caller's mistake. */
	ck_assert_int_eq(bitmap_load(v, g->cbitmap_block, 2, CSV_MAGIC_CBITMAP,
				     g->total_clusters, &got, NULL, NULL), -EINVAL);

	/* Damage block 1 (a flipped byte): reported by block number, its
	 * bits clear, the others intact. */
	uint8_t *mem = blockdev_mem_data(bd);
	mem[(g->cbitmap_block + 1) * CSV_BLOCK_SIZE + 700] ^= 0x10;
	ck_assert_int_eq(bitmap_load(v, g->cbitmap_block, g->cbitmap_blocks, CSV_MAGIC_CBITMAP,
				     g->total_clusters, &got, note_bad, &bad), 1);
	ck_assert_int_eq(bad.n, 1);
	ck_assert_uint_eq(bad.blocknr[0], g->cbitmap_block + 1);
	ck_assert_int_eq(bad.err[0], -EBADMSG);
	ck_assert_uint_eq(bitmap_count_set(&got, CSV_BITMAP_BITS, CSV_BITMAP_BITS), 0);
	ck_assert_uint_eq(bitmap_first_difference(&bm, &got, 0), bitmap_find_next_set(&bm, CSV_BITMAP_BITS));
	ck_assert_uint_eq(bitmap_first_difference(&bm, &got, 2ull * CSV_BITMAP_BITS), got.nbits);
	bitmap_free(&got);
	bad.n = 0;

	/* Rewriting that one block repairs it. */
	ck_assert_int_eq(bitmap_store_block(v, g->cbitmap_block, CSV_MAGIC_CBITMAP, &bm, 1, 43), 0);
	ck_assert_int_eq(bitmap_store_block(v, g->cbitmap_block, CSV_MAGIC_CBITMAP, &bm, 3, 43), -EINVAL);
	ck_assert_int_eq(bitmap_load(v, g->cbitmap_block, g->cbitmap_blocks, CSV_MAGIC_CBITMAP,
				     g->total_clusters, &got, note_bad, &bad), 0);
	ck_assert(bitmap_equal(&bm, &got));
	bitmap_free(&got);

	/* A misdirected write: block 0's image found at block 2. */
	memcpy(mem + (g->cbitmap_block + 2) * CSV_BLOCK_SIZE, mem + g->cbitmap_block * CSV_BLOCK_SIZE,
	       CSV_BLOCK_SIZE);
	ck_assert_int_eq(bitmap_load(v, g->cbitmap_block, g->cbitmap_blocks, CSV_MAGIC_CBITMAP,
				     g->total_clusters, &got, note_bad, &bad), 1);
	ck_assert_uint_eq(bad.blocknr[0], g->cbitmap_block + 2);
	ck_assert_int_eq(bad.err[0], -EUCLEAN);
	bitmap_free(&got);
	bad.n = 0;

	/* A validly sealed block whose content is inconsistent (tail bits). */
	ck_assert_int_eq(bitmap_store_block(v, g->cbitmap_block, CSV_MAGIC_CBITMAP, &bm, 2, 44), 0);
	uint8_t *last = mem + (g->cbitmap_block + 2) * CSV_BLOCK_SIZE;
	last[CSV_BLOCK_SIZE - 1] = 1;
	meta_reseal(last, CSV_BLOCK_SIZE);
	ck_assert_int_eq(bitmap_load(v, g->cbitmap_block, g->cbitmap_blocks, CSV_MAGIC_CBITMAP,
				     g->total_clusters, &got, NULL, NULL), 1);
	bitmap_free(&got);

	/* A region past the end of the volume fails as a whole. */
	ck_assert_int_lt(bitmap_load(v, g->total_blocks - 1, g->cbitmap_blocks, CSV_MAGIC_CBITMAP,
				     g->total_clusters, &got, NULL, NULL), 0);
	bitmap_free(&bm);
	volume_close(v);
	blockdev_close(bd);
}
END_TEST

START_TEST(test_store_batches)
{
	/* 600 blocks: more than two batches of 256, written into the data
	 * area of the memory volume. */
	struct csv_blockdev *bd;
	struct csv_volume *v = mem_volume(&bd);
	const uint64_t nbits = 600ull * CSV_BITMAP_BITS - 1;
	const uint64_t region = v->g.data_lcn * v->g.blocks_per_cluster + 1000;
	struct csv_bitmap bm, got;
	struct bad_list bad = { .n = 0 };

	ck_assert_int_eq(bitmap_init(&bm, nbits), 0);
	fill_random(&bm, 5);
	bitmap_set_range(&bm, nbits - 1, 1);
	ck_assert_int_eq(bitmap_store(v, region, CSV_MAGIC_RBITMAP, &bm, 7), 0);
	ck_assert_int_eq(bitmap_load(v, region, 600, CSV_MAGIC_RBITMAP, nbits, &got, note_bad, &bad), 0);
	ck_assert(bitmap_equal(&bm, &got));
	bitmap_free(&got);

	/* Damage one block in each batch. */
	uint8_t *mem = blockdev_mem_data(bd);
	uint64_t hit[3] = { 0, 300, 599 };
	for (int i = 0; i < 3; i++)
		mem[(region + hit[i]) * CSV_BLOCK_SIZE + 0x100] ^= 1;
	ck_assert_int_eq(bitmap_load(v, region, 600, CSV_MAGIC_RBITMAP, nbits, &got, note_bad, &bad), 3);
	for (int i = 0; i < 3; i++)
		ck_assert_uint_eq(bad.blocknr[i], region + hit[i]);
	bitmap_free(&got);

	/* The block before the region is untouched by the store. */
	uint8_t zero[CSV_BLOCK_SIZE] = { 0 };
	ck_assert_int_eq(memcmp(mem + (region - 1) * CSV_BLOCK_SIZE, zero, CSV_BLOCK_SIZE), 0);
	ck_assert_int_eq(memcmp(mem + (region + 600) * CSV_BLOCK_SIZE, zero, CSV_BLOCK_SIZE), 0);
	bitmap_free(&bm);
	volume_close(v);
	blockdev_close(bd);
}
END_TEST

static Suite *bitmap_suite(void)
{
	Suite *s = suite_create("bitmap");
	TCase *tc;

	tc = tcase_create("ranges");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_word_boundaries);
	tcase_add_test(tc, test_find_next);
	tcase_add_test(tc, test_random_against_model);
	suite_add_tcase(s, tc);

	tc = tcase_create("differences");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_differences);
	suite_add_tcase(s, tc);

	tc = tcase_create("blocks");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_encode_decode);
	tcase_add_test(tc, test_decode_rejects);
	suite_add_tcase(s, tc);

	tc = tcase_create("volume");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_load_store);
	tcase_add_test(tc, test_store_batches);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(bitmap_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
