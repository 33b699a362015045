/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "bitmap.h"
#include "test-util.h"

static void assert_consistent(const struct csv_alloc *a)
{
	char err[256] = "";
	int r = alloc_check(a, err, sizeof(err));
	REQUIRE(r == 0, "alloc_check: %s", err);
}

/* A bitmap of nbits with everything in use except the listed extents. */
static void bitmap_with_free(struct csv_bitmap *bm, uint64_t nbits, const uint64_t (*ext)[2], size_t n)
{
	ck_assert_int_eq(bitmap_init(bm, nbits), 0);
	ck_assert_int_eq(bitmap_set_range(bm, 0, nbits), 0);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(bitmap_clear_range(bm, ext[i][0], ext[i][1]), 0);
}

static struct csv_alloc *alloc_with_free(uint64_t nbits, const uint64_t (*ext)[2], size_t n,
					 uint64_t zone_lcn, uint64_t zone_clusters)
{
	struct csv_bitmap bm;
	struct csv_alloc *a;
	bitmap_with_free(&bm, nbits, ext, n);
	ck_assert_int_eq(alloc_new(&bm, zone_lcn, zone_clusters, &a), 0);
	bitmap_free(&bm); /* the allocator keeps its own copy */
	assert_consistent(a);
	return a;
}

static void expect_alloc(struct csv_alloc *a, enum alloc_pool pool, uint64_t want, uint64_t goal,
			 uint64_t lcn, uint64_t len)
{
	uint64_t got_lcn = 0, got_len = 0;
	ck_assert_int_eq(alloc_extent(a, pool, want, goal, &got_lcn, &got_len), 0);
	ck_assert_msg(got_lcn == lcn && got_len == len, "want %lu goal %lu: got %lu+%lu, expected %lu+%lu",
		      (unsigned long)want, (unsigned long)goal, (unsigned long)got_lcn,
		      (unsigned long)got_len, (unsigned long)lcn, (unsigned long)len);
	ck_assert_uint_eq(bitmap_count_set(alloc_bitmap(a), lcn, len), len);
	assert_consistent(a);
}

static const uint64_t frag4[][2] = { { 100, 10 }, { 300, 5 }, { 500, 7 }, { 700, 5 } };

START_TEST(test_best_fit)
{
	struct csv_alloc *a = alloc_with_free(1000, frag4, 4, 0, 0);
	ck_assert_uint_eq(alloc_free_clusters(a), 27);
	ck_assert_uint_eq(alloc_free_extents(a), 4);
	ck_assert_uint_eq(alloc_total_clusters(a), 1000);

	/* Smallest sufficient extent: 5, the one nearer the goal. */
	expect_alloc(a, ALLOC_DATA, 5, 0, 300, 5);
	alloc_free_all(a);
	a = alloc_with_free(1000, frag4, 4, 0, 0);
	expect_alloc(a, ALLOC_DATA, 5, 690, 700, 5);
	alloc_free_all(a);
	a = alloc_with_free(1000, frag4, 4, 0, 0);
	expect_alloc(a, ALLOC_DATA, 3, 702, 700, 3);  /* goal inside: distance 0 */
	alloc_free_all(a);
	/* Equally far (198 clusters either way): the lower LCN. */
	a = alloc_with_free(1000, frag4, 4, 0, 0);
	expect_alloc(a, ALLOC_DATA, 4, 502, 300, 4);

	/* 6 fits 7 best, 8 fits 10 best; the remainders stay free. */
	expect_alloc(a, ALLOC_DATA, 6, 0, 500, 6);
	expect_alloc(a, ALLOC_DATA, 8, 0, 100, 8);
	ck_assert_uint_eq(alloc_free_clusters(a), 27 - 4 - 6 - 8);
	ck_assert(!bitmap_test(alloc_bitmap(a), 506));
	ck_assert(!bitmap_test(alloc_bitmap(a), 108));
	/* Now 1@304 1@506 2@108 5@700: want 2 takes 108, want 1 the nearest 1. */
	expect_alloc(a, ALLOC_DATA, 2, 0, 108, 2);
	expect_alloc(a, ALLOC_DATA, 1, 1000, 506, 1);
	alloc_free_all(a);
}
END_TEST

START_TEST(test_partial)
{
	struct csv_alloc *a = alloc_with_free(1000, frag4, 4, 0, 0);
	uint64_t lcn, len, got = 0;

	/* Nothing holds 11: the largest extent, whole. */
	expect_alloc(a, ALLOC_DATA, 11, 0, 100, 10);
	got += 10;
	/* The caller loops: 7, then the 5 nearer the goal, then the other. */
	expect_alloc(a, ALLOC_DATA, 17, 0, 500, 7);
	expect_alloc(a, ALLOC_DATA, 10, 800, 700, 5);
	expect_alloc(a, ALLOC_DATA, 10, 800, 300, 5);
	got += 17;
	ck_assert_uint_eq(got, 27);
	ck_assert_uint_eq(alloc_free_clusters(a), 0);
	ck_assert_int_eq(alloc_extent(a, ALLOC_DATA, 1, 0, &lcn, &len), -ENOSPC);
	ck_assert_int_eq(alloc_extent(a, ALLOC_MFT, 1, 0, &lcn, &len), -ENOSPC);
	assert_consistent(a);
	alloc_free_all(a);
}
END_TEST

static int collect_free(void *ud, uint64_t lcn, uint64_t len)
{
	uint64_t (*out)[2] = ud;
	size_t i = 0;
	while (out[i][1])
		i++;
	out[i][0] = lcn;
	out[i][1] = len;
	return 0;
}

START_TEST(test_mft_zone)
{
	static const uint64_t free1[][2] = { { 10, 990 } };
	uint64_t lcn, len, ext[8][2];

	/* Zone [400, 500): data fills the outside first, largest first here
	 * as nothing holds 1000. */
	struct csv_alloc *a = alloc_with_free(1000, free1, 1, 400, 100);
	ck_assert_uint_eq(alloc_free_clusters(a), 990);
	ck_assert_uint_eq(alloc_zone_free_clusters(a), 100);
	ck_assert_uint_eq(alloc_free_extents(a), 3);
	memset(ext, 0, sizeof(ext));
	ck_assert_int_eq(alloc_iterate_free(a, collect_free, ext), 0);
	ck_assert_uint_eq(ext[0][0], 10);  /* one extent across both boundaries */
	ck_assert_uint_eq(ext[0][1], 990);
	ck_assert_uint_eq(ext[1][1], 0);

	expect_alloc(a, ALLOC_DATA, 1000, 0, 500, 500);
	expect_alloc(a, ALLOC_DATA, 1000, 0, 10, 390);
	ck_assert_uint_eq(alloc_zone_free_clusters(a), 100);
	/* Only the zone is left: data goes there. */
	expect_alloc(a, ALLOC_DATA, 30, 0, 400, 30);
	expect_alloc(a, ALLOC_DATA, 1000, 0, 430, 70);
	ck_assert_int_eq(alloc_extent(a, ALLOC_DATA, 1, 0, &lcn, &len), -ENOSPC);

	/* Freed space outside is preferred again. */
	ck_assert_int_eq(alloc_release(a, 390, 20), 0);  /* 390..409: across zone_lcn */
	assert_consistent(a);
	ck_assert_uint_eq(alloc_zone_free_clusters(a), 10);
	ck_assert_uint_eq(alloc_free_extents(a), 2);
	memset(ext, 0, sizeof(ext));
	ck_assert_int_eq(alloc_iterate_free(a, collect_free, ext), 0);
	ck_assert_uint_eq(ext[0][0], 390);
	ck_assert_uint_eq(ext[0][1], 20);
	expect_alloc(a, ALLOC_DATA, 15, 0, 390, 10);
	expect_alloc(a, ALLOC_DATA, 5, 0, 400, 5);
	alloc_free_all(a);

	/* MFT: the zone first, best fit inside it, then anywhere. */
	a = alloc_with_free(1000, free1, 1, 400, 100);
	expect_alloc(a, ALLOC_MFT, 50, 0, 400, 50);
	expect_alloc(a, ALLOC_MFT, 100, 0, 450, 50);
	ck_assert_uint_eq(alloc_zone_free_clusters(a), 0);
	expect_alloc(a, ALLOC_MFT, 10, 0, 10, 10);        /* 390@10 fits better than 500@500 */
	expect_alloc(a, ALLOC_DATA, 385, 0, 500, 385);    /* 380@20 is too small */
	ck_assert_int_eq(alloc_release(a, 420, 5), 0);   /* back into the zone */
	expect_alloc(a, ALLOC_DATA, 5, 0, 885, 5);        /* data still avoids it */
	expect_alloc(a, ALLOC_MFT, 5, 0, 420, 5);
	alloc_free_all(a);

	/* A zone that is the whole volume, and an empty zone. */
	a = alloc_with_free(1000, free1, 1, 0, 1000);
	expect_alloc(a, ALLOC_DATA, 5, 0, 10, 5);
	alloc_free_all(a);
	a = alloc_with_free(1000, free1, 1, 1000, 0);
	expect_alloc(a, ALLOC_MFT, 5, 999, 10, 5);
	alloc_free_all(a);
}
END_TEST

START_TEST(test_errors)
{
	struct csv_bitmap bm;
	struct csv_alloc *a = NULL;
	uint64_t lcn = 77, len = 77;

	ck_assert_int_eq(bitmap_init(&bm, 100), 0);
	ck_assert_int_eq(alloc_new(&bm, 90, 11, &a), -EINVAL);
	ck_assert_int_eq(alloc_new(&bm, 101, 0, &a), -EINVAL);
	ck_assert_ptr_null(a);
	ck_assert_int_eq(alloc_new(&bm, 100, 0, &a), 0);
	ck_assert_int_eq(alloc_extent(a, ALLOC_DATA, 0, 0, &lcn, &len), -EINVAL);
	ck_assert_uint_eq(lcn, 77);
	ck_assert_int_eq(alloc_mark_used(a, 0, 0), -EINVAL);
	ck_assert_int_eq(alloc_mark_used(a, 99, 2), -EINVAL);
	ck_assert_int_eq(alloc_mark_used(a, UINT64_MAX, 2), -EINVAL);
	ck_assert_int_eq(alloc_release(a, 100, 1), -EINVAL);
	ck_assert_int_eq(alloc_mark_used(a, 0, 100), 0);
	ck_assert_int_eq(alloc_extent(a, ALLOC_DATA, 1, 0, &lcn, &len), -ENOSPC);
	ck_assert_int_eq(alloc_extent(a, ALLOC_MFT, 1, 0, &lcn, &len), -ENOSPC);
	ck_assert_uint_eq(lcn, 77);
	ck_assert_uint_eq(len, 77);
	assert_consistent(a);
	alloc_free_all(a);
	alloc_free_all(NULL);

	/* Taking the bitmap over instead of copying it. */
	ck_assert_int_eq(alloc_new_take(&bm, 101, 0, &a), -EINVAL);
	ck_assert_ptr_nonnull(bm.words);
	bitmap_set_range(&bm, 0, 10);
	uint64_t *words = bm.words;
	ck_assert_int_eq(alloc_new_take(&bm, 50, 10, &a), 0);
	ck_assert_ptr_null(bm.words);
	ck_assert_uint_eq(bm.nbits, 0);
	ck_assert_ptr_eq(alloc_bitmap(a)->words, words);
	ck_assert_uint_eq(alloc_free_clusters(a), 90);
	ck_assert_uint_eq(alloc_zone_free_clusters(a), 10);
	assert_consistent(a);
	alloc_free_all(a);
	bitmap_free(&bm);
}
END_TEST

START_TEST(test_double_free_and_mark)
{
	static const uint64_t f[][2] = { { 100, 50 }, { 400, 100 } };
	struct csv_alloc *a = alloc_with_free(1000, f, 2, 420, 40);
	struct csv_bitmap before;
	uint64_t free0 = alloc_free_clusters(a);

	ck_assert_int_eq(bitmap_copy(alloc_bitmap(a), &before), 0);
	alloc_clear_dirty(a);

	ck_assert_int_eq(alloc_release(a, 100, 1), -EUCLEAN);    /* free already */
	ck_assert_int_eq(alloc_release(a, 90, 20), -EUCLEAN);    /* partly free */
	ck_assert_int_eq(alloc_release(a, 149, 2), -EUCLEAN);
	ck_assert_int_eq(alloc_mark_used(a, 95, 10), -EUCLEAN);  /* partly in use */
	ck_assert_int_eq(alloc_mark_used(a, 0, 1), -EUCLEAN);
	ck_assert_int_eq(alloc_mark_used(a, 399, 2), -EUCLEAN);
	ck_assert(bitmap_equal(alloc_bitmap(a), &before));
	ck_assert_uint_eq(alloc_free_clusters(a), free0);
	ck_assert_uint_eq(alloc_dirty_count(a), 0);
	assert_consistent(a);

	/* mark_used in the middle of an extent, across both zone edges. */
	ck_assert_int_eq(alloc_mark_used(a, 120, 10), 0);
	ck_assert_int_eq(alloc_mark_used(a, 410, 60), 0);
	assert_consistent(a);
	ck_assert_uint_eq(alloc_free_clusters(a), free0 - 70);
	ck_assert_uint_eq(alloc_zone_free_clusters(a), 0);
	ck_assert_int_eq(alloc_mark_used(a, 410, 1), -EUCLEAN);
	ck_assert_int_eq(alloc_release(a, 410, 60), 0);
	ck_assert_int_eq(alloc_release(a, 120, 10), 0);
	ck_assert_int_eq(alloc_release(a, 120, 10), -EUCLEAN);
	ck_assert(bitmap_equal(alloc_bitmap(a), &before));
	ck_assert_uint_eq(alloc_free_extents(a), 4);  /* 100+50, 400+20, zone 420+40, 460+40 */
	assert_consistent(a);
	bitmap_free(&before);
	alloc_free_all(a);
}
END_TEST

START_TEST(test_dirty)
{
	struct csv_bitmap bm;
	struct csv_alloc *a;
	uint64_t lcn, len;

	ck_assert_int_eq(bitmap_init(&bm, 3ull * CSV_BITMAP_BITS + 5), 0);
	ck_assert_int_eq(alloc_new(&bm, 0, 0, &a), 0);
	ck_assert_uint_eq(alloc_dirty_count(a), 0);
	ck_assert_uint_eq(alloc_next_dirty(a, 0), UINT64_MAX);

	ck_assert_int_eq(alloc_mark_used(a, CSV_BITMAP_BITS - 1, 2), 0);
	ck_assert_uint_eq(alloc_dirty_count(a), 2);
	ck_assert_uint_eq(alloc_next_dirty(a, 0), 0);
	ck_assert_uint_eq(alloc_next_dirty(a, 1), 1);
	ck_assert_uint_eq(alloc_next_dirty(a, 2), UINT64_MAX);
	alloc_clear_dirty(a);
	ck_assert_uint_eq(alloc_dirty_count(a), 0);

	/* Best fit of 1 is the 5-cluster tail in block 3. */
	ck_assert_int_eq(alloc_mark_used(a, 3ull * CSV_BITMAP_BITS - 10, 10), 0);
	ck_assert_uint_eq(alloc_next_dirty(a, 0), 2);
	alloc_clear_dirty(a);
	ck_assert_int_eq(alloc_extent(a, ALLOC_DATA, 1, 0, &lcn, &len), 0);
	ck_assert_uint_eq(lcn, 3ull * CSV_BITMAP_BITS);
	ck_assert_uint_eq(alloc_next_dirty(a, 0), 3);
	ck_assert_uint_eq(alloc_dirty_count(a), 1);
	alloc_clear_dirty(a);
	ck_assert_int_eq(alloc_release(a, CSV_BITMAP_BITS, 1), 0);
	ck_assert_uint_eq(alloc_next_dirty(a, 0), 1);
	ck_assert_uint_eq(alloc_dirty_count(a), 1);
	alloc_free_all(a);
	bitmap_free(&bm);
}
END_TEST

static int stop_at_second(void *ud, uint64_t lcn, uint64_t len)
{
	int *n = ud;
	return ++*n == 2 ? 42 : 0;
}

START_TEST(test_iterate)
{
	struct csv_alloc *a = alloc_with_free(1000, frag4, 4, 300, 450);
	uint64_t ext[8][2];
	int n = 0;

	memset(ext, 0, sizeof(ext));
	ck_assert_int_eq(alloc_iterate_free(a, collect_free, ext), 0);
	for (int i = 0; i < 4; i++) {
		ck_assert_uint_eq(ext[i][0], frag4[i][0]);
		ck_assert_uint_eq(ext[i][1], frag4[i][1]);
	}
	ck_assert_uint_eq(ext[4][1], 0);
	ck_assert_int_eq(alloc_iterate_free(a, stop_at_second, &n), 42);
	ck_assert_int_eq(n, 2);
	alloc_free_all(a);
}
END_TEST

/* ---- Random operations against a model ------------------------------- */

#define M_CLUSTERS 20000u
#define M_ZONE_LCN 3000u
#define M_ZONE_LEN 2000u

struct held {
	uint64_t lcn, len;
};

struct amodel {
	unsigned char used[M_CLUSTERS];
	uint64_t nfree;
	struct held *held;
	size_t nheld, capheld;
};

static void hold(struct amodel *m, uint64_t lcn, uint64_t len)
{
	if (m->nheld == m->capheld) {
		m->capheld = m->capheld ? m->capheld * 2 : 256;
		m->held = realloc(m->held, m->capheld * sizeof(*m->held));
		ck_assert_ptr_nonnull(m->held);
	}
	m->held[m->nheld++] = (struct held){ lcn, len };
}

static int model_pool(uint64_t lcn)
{
	return lcn >= M_ZONE_LCN && lcn < M_ZONE_LCN + M_ZONE_LEN;
}

static uint64_t dist(uint64_t lcn, uint64_t len, uint64_t goal)
{
	if (goal < lcn)
		return lcn - goal;
	if (goal < lcn + len)
		return 0;
	return goal - (lcn + len - 1);
}

/* What best fit must return, from the model alone. */
static bool model_expect(const struct amodel *m, enum alloc_pool pool, uint64_t want, uint64_t goal,
			 uint64_t *ret_lcn, uint64_t *ret_len)
{
	int order[2] = { 0, 1 };
	if (pool == ALLOC_MFT) {
		order[0] = 1;
		order[1] = 0;
	}
	for (int k = 0; k < 2; k++) {
		bool found = false, fits = false;
		uint64_t bl = 0, bn = 0, bd = 0;
		for (uint64_t i = 0; i < M_CLUSTERS;) {
			if (m->used[i]) {
				i++;
				continue;
			}
			uint64_t s = i;
			int p = model_pool(s);
			while (i < M_CLUSTERS && !m->used[i] && model_pool(i) == p)
				i++;
			if (p != order[k])
				continue;
			uint64_t n = i - s, d = dist(s, n, goal);
			bool f = n >= want;
			bool better;
			if (!found)
				better = true;
			else if (f != fits)
				better = f;
			else if (n != bn)
				better = f ? n < bn : n > bn;
			else
				better = d < bd || (d == bd && s < bl);
			if (better) {
				found = true;
				fits = f;
				bl = s;
				bn = n;
				bd = d;
			}
		}
		if (found) {
			*ret_lcn = bl;
			*ret_len = bn < want ? bn : want;
			return true;
		}
	}
	return false;
}

struct cmp_state {
	const struct amodel *m;
	uint64_t pos;
};

static int compare_free(void *ud, uint64_t lcn, uint64_t len)
{
	struct cmp_state *st = ud;
	/* The next maximal free run of the model starts at lcn, is len long. */
	uint64_t i = st->pos;
	while (i < M_CLUSTERS && st->m->used[i])
		i++;
	REQUIRE(i == lcn, "free extent at %lu, model %lu", (unsigned long)lcn, (unsigned long)i);
	uint64_t s = i;
	while (i < M_CLUSTERS && !st->m->used[i])
		i++;
	REQUIRE(i - s == len, "free extent at %lu: %lu long, model %lu", (unsigned long)lcn,
		(unsigned long)len, (unsigned long)(i - s));
	st->pos = i;
	return 0;
}

static void model_compare(const struct csv_alloc *a, const struct amodel *m)
{
	const struct csv_bitmap *bm = alloc_bitmap(a);
	for (uint64_t i = 0; i < M_CLUSTERS; i++)
		REQUIRE(bitmap_test(bm, i) == m->used[i], "cluster %lu", (unsigned long)i);
	struct cmp_state st = { m, 0 };
	REQUIRE(alloc_iterate_free(a, compare_free, &st) == 0, "iterate");
	while (st.pos < M_CLUSTERS)
		REQUIRE(m->used[st.pos++], "free cluster %lu not listed", (unsigned long)st.pos - 1);
}

START_TEST(test_random_model)
{
	struct amodel *m = calloc(1, sizeof(*m));
	struct csv_bitmap bm;
	struct csv_alloc *a;
	uint64_t lcn, len;
	unsigned long n_alloc = 0, n_partial = 0, n_enospc = 0, n_free = 0, n_refused = 0;
	bool filling = false, draining = false;

	srand(20240607);
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(bitmap_init(&bm, M_CLUSTERS), 0);
	/* Fragmented: used runs of 1..40 every few dozen clusters, each
	 * owned by the model so that it can be freed later. */
	for (uint64_t i = 0; i < M_CLUSTERS;) {
		uint64_t gap = (uint64_t)rand() % 60, n = 1 + (uint64_t)rand() % 40;
		i += gap;
		if (i >= M_CLUSTERS)
			break;
		n = n > M_CLUSTERS - i ? M_CLUSTERS - i : n;
		bitmap_set_range(&bm, i, n);
		memset(m->used + i, 1, n);
		hold(m, i, n);
		i += n;
	}
	m->nfree = M_CLUSTERS - bitmap_count_set(&bm, 0, M_CLUSTERS);
	ck_assert_int_eq(alloc_new(&bm, M_ZONE_LCN, M_ZONE_LEN, &a), 0);
	bitmap_free(&bm);
	model_compare(a, m);

	for (int step = 0; step < 20000; step++) {
		/* Mostly an even mix of allocations and frees; when less than
		 * a twentieth is left free, frees dominate until half is free
		 * again; and now and then, allocations until the volume is
		 * full. So the volume goes through fragmented, nearly full
		 * and full states: best fits, partial fits and ENOSPC. */
		int op = rand() % 100;
		if (m->nfree < M_CLUSTERS / 20)
			draining = true;
		else if (m->nfree > M_CLUSTERS / 2)
			draining = false;
		if (step % 4000 == 3000)
			filling = true;
		int alloc_share = filling ? 100 : draining ? 20 : 48;
		int kind = op < alloc_share ? 0 : op < 90 ? 1 : op < 95 ? 2 : 3;
		if (kind == 0) {
			enum alloc_pool pool = rand() % 5 ? ALLOC_DATA : ALLOC_MFT;
			int size = rand() % 20;
			uint64_t want = 1 + (uint64_t)(size < 10 ? rand() % 16 : size < 17 ? rand() % 64 : rand() % 3000);
			uint64_t goal = (uint64_t)rand() % M_CLUSTERS;
			uint64_t el, en;
			bool expect = model_expect(m, pool, want, goal, &el, &en);
			int r = alloc_extent(a, pool, want, goal, &lcn, &len);
			if (!expect) {
				REQUIRE(r == -ENOSPC, "step %d: %d, expected ENOSPC", step, r);
				n_enospc++;
				filling = false;
			} else {
				REQUIRE(r == 0, "step %d: %d", step, r);
				REQUIRE(lcn == el && len == en, "step %d: got %lu+%lu expected %lu+%lu",
					step, (unsigned long)lcn, (unsigned long)len,
					(unsigned long)el, (unsigned long)en);
				for (uint64_t i = lcn; i < lcn + len; i++) {
					REQUIRE(!m->used[i], "cluster %lu handed out twice", (unsigned long)i);
					m->used[i] = 1;
				}
				m->nfree -= len;
				hold(m, lcn, len);
				n_alloc++;
				n_partial += len < want;
			}
		} else if (kind == 1) {
			if (!m->nheld)
				continue;
			/* Free a held extent, or a piece of it. */
			size_t k = (size_t)rand() % m->nheld;
			struct held h = m->held[k];
			uint64_t off = 0, n = h.len;
			if (rand() % 4 == 0) {
				off = (uint64_t)rand() % h.len;
				n = 1 + (uint64_t)rand() % (h.len - off);
			}
			REQUIRE(alloc_release(a, h.lcn + off, n) == 0, "step %d: release", step);
			memset(m->used + h.lcn + off, 0, n);
			m->nfree += n;
			m->held[k] = m->held[--m->nheld];
			if (off)
				hold(m, h.lcn, off);
			if (off + n < h.len)
				hold(m, h.lcn + off + n, h.len - off - n);
			n_free++;
		} else if (kind == 2) {
			/* Double free and double mark: refused, nothing changes. */
			uint64_t i = (uint64_t)rand() % M_CLUSTERS;
			uint64_t n = 1 + (uint64_t)rand() % 50;
			n = n > M_CLUSTERS - i ? M_CLUSTERS - i : n;
			uint64_t used = 0;
			for (uint64_t j = i; j < i + n; j++)
				used += m->used[j];
			uint64_t before = alloc_free_clusters(a);
			if (used < n)
				REQUIRE(alloc_release(a, i, n) == -EUCLEAN, "step %d: double free", step);
			if (used > 0)
				REQUIRE(alloc_mark_used(a, i, n) == -EUCLEAN, "step %d: double mark", step);
			REQUIRE(alloc_free_clusters(a) == before, "step %d: free count changed", step);
			n_refused++;
		} else {
			/* mark_used of a free range, as journal replay does. */
			uint64_t i = (uint64_t)rand() % M_CLUSTERS, n = 0;
			while (i < M_CLUSTERS && m->used[i])
				i++;
			while (i + n < M_CLUSTERS && !m->used[i + n] && n < 1 + (uint64_t)rand() % 100)
				n++;
			if (n) {
				REQUIRE(alloc_mark_used(a, i, n) == 0, "step %d: mark_used", step);
				memset(m->used + i, 1, n);
				m->nfree -= n;
				hold(m, i, n);
			}
		}
		assert_consistent(a);
		REQUIRE(alloc_free_clusters(a) == m->nfree, "step %d: free count", step);
		if (step % 10 == 0)
			model_compare(a, m);
	}
	model_compare(a, m);
	/* Free everything: one extent per side of each zone edge, all free. */
	for (size_t k = 0; k < m->nheld; k++)
		ck_assert_int_eq(alloc_release(a, m->held[k].lcn, m->held[k].len), 0);
	assert_consistent(a);
	ck_assert_uint_eq(alloc_free_clusters(a), M_CLUSTERS);
	ck_assert_uint_eq(alloc_free_extents(a), 3);
	fprintf(stderr, "alloc model: %lu allocations (%lu partial), %lu ENOSPC, %lu frees, %lu refused\n",
		n_alloc, n_partial, n_enospc, n_free, n_refused);
	ck_assert_uint_gt(n_partial, 100);
	ck_assert_uint_gt(n_alloc - n_partial, 1000);
	ck_assert_uint_ge(n_enospc, 4);
	alloc_free_all(a);
	free(m->held);
	free(m);
}
END_TEST

/* ---- A 1 TiB volume ----------------------------------------------------- */

/* Sanitizers slow allocation and first touch of memory a lot. */
#if defined(__SANITIZE_ADDRESS__)
#define SLOWDOWN 4.0
#else
#define SLOWDOWN 1.0
#endif

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

START_TEST(test_big_volume)
{
	const uint64_t nbits = 1ull << 28;  /* 1 TiB of 4 KiB clusters */
	const uint64_t zone = 40000, zone_len = 1ull << 22;
	struct csv_bitmap bm;
	struct csv_alloc *a;
	uint64_t lcn, len;

	ck_assert_int_eq(bitmap_init(&bm, nbits), 0);
	ck_assert_int_eq(bitmap_set_range(&bm, 0, zone), 0);  /* fixed regions */
	ck_assert_int_eq(bitmap_set_range(&bm, zone, 64), 0);  /* the first records */
	double t0 = now();
	ck_assert_int_eq(alloc_new(&bm, zone, zone_len, &a), 0);
	double t = now() - t0;
	fprintf(stderr, "alloc_new, 1 TiB mostly free: %.3f s, %zu extents\n", t, alloc_free_extents(a));
	ck_assert_msg(t < 1.0 * SLOWDOWN, "alloc_new took %.3f s", t);
	ck_assert_uint_eq(alloc_free_clusters(a), nbits - zone - 64);
	ck_assert_int_eq(alloc_extent(a, ALLOC_DATA, 1ull << 20, 0, &lcn, &len), 0);
	ck_assert_uint_eq(lcn, zone + zone_len);
	ck_assert_uint_eq(len, 1ull << 20);
	ck_assert_int_eq(alloc_extent(a, ALLOC_MFT, 16, 0, &lcn, &len), 0);
	ck_assert_uint_eq(lcn, zone + 64);
	assert_consistent(a);
	alloc_free_all(a);

	/* Fragmented: one cluster in use every 4096. */
	for (uint64_t i = zone; i < nbits; i += 4096)
		bitmap_set_range(&bm, i, 1);
	t0 = now();
	ck_assert_int_eq(alloc_new(&bm, zone, zone_len, &a), 0);
	t = now() - t0;
	fprintf(stderr, "alloc_new, 1 TiB, %zu free extents: %.3f s\n", alloc_free_extents(a), t);
	ck_assert_msg(t < 2.0 * SLOWDOWN, "alloc_new took %.3f s", t);
	t0 = now();
	for (int i = 0; i < 100000; i++) {
		int r = alloc_extent(a, ALLOC_DATA, 1 + (uint64_t)(i % 700), (uint64_t)i * 2654435761u % nbits,
				     &lcn, &len);
		REQUIRE(r == 0, "alloc %d: %d", i, r);
		if (i % 2)
			REQUIRE(alloc_release(a, lcn, len) == 0, "release %d", i);
	}
	fprintf(stderr, "100000 allocations + 50000 frees: %.3f s\n", now() - t0);
	assert_consistent(a);
	alloc_free_all(a);
	bitmap_free(&bm);
}
END_TEST

static Suite *alloc_suite(void)
{
	Suite *s = suite_create("alloc");
	TCase *tc;

	tc = tcase_create("policy");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_best_fit);
	tcase_add_test(tc, test_partial);
	tcase_add_test(tc, test_mft_zone);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_double_free_and_mark);
	suite_add_tcase(s, tc);

	tc = tcase_create("tracking");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_dirty);
	tcase_add_test(tc, test_iterate);
	suite_add_tcase(s, tc);

	tc = tcase_create("model");
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, test_random_model);
	suite_add_tcase(s, tc);

	tc = tcase_create("scale");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_big_volume);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(alloc_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
