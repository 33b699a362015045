/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta.h"
#include "nodeio.h"
#include "runlist.h"
#include "test-util.h"

#define TOTAL (1ull << 40)

static void assert_valid(const struct csv_runlist *rl, uint64_t total)
{
	char err[256] = "";
	int r = runlist_validate(rl, total, err, sizeof(err));
	REQUIRE(r == 0, "runlist_validate: %s", err);
}

static void expect_run(const struct csv_runlist *rl, size_t i, uint64_t vcn, uint64_t lcn,
		       uint32_t len, uint32_t flags)
{
	ck_assert_uint_lt(i, rl->count);
	const struct csv_run *r = &rl->runs[i];
	ck_assert_msg(r->vcn == vcn && r->lcn == lcn && r->length == len && r->flags == flags,
		      "run %zu: %lu->%lu+%u/%u, expected %lu->%lu+%u/%u", i, (unsigned long)r->vcn,
		      (unsigned long)r->lcn, r->length, r->flags, (unsigned long)vcn,
		      (unsigned long)lcn, len, flags);
}

struct freed_log {
	uint64_t lcn[64], len[64];
	int n;
	uint64_t total;
};

static void log_freed(void *ud, uint64_t lcn, uint64_t len)
{
	struct freed_log *l = ud;
	if (l->n < 64) {
		l->lcn[l->n] = lcn;
		l->len[l->n] = len;
	}
	l->n++;
	l->total += len;
}

START_TEST(test_map_insert_merge)
{
	struct csv_runlist rl;
	struct csv_run m;
	runlist_init(&rl);

	ck_assert_int_eq(runlist_map(&rl, 0, &m), 0);
	ck_assert_uint_eq(m.flags, CSV_RUNLIST_HOLE);
	ck_assert_uint_eq(m.lcn, 0);
	ck_assert_uint_eq(m.length, UINT32_MAX);
	ck_assert_int_eq(runlist_map(&rl, UINT64_MAX, &m), -ERANGE);
	ck_assert_int_eq(runlist_map(&rl, UINT64_MAX - 3, &m), 0);
	ck_assert_uint_eq(m.length, 3);

	ck_assert_int_eq(runlist_insert(&rl, 10, 100, 5, 0), 0);
	ck_assert_int_eq(runlist_insert(&rl, 30, 200, 5, CSV_RUN_UNWRITTEN), 0);
	ck_assert_int_eq(runlist_map(&rl, 12, &m), 0);
	ck_assert_uint_eq(m.vcn, 12);
	ck_assert_uint_eq(m.lcn, 102);
	ck_assert_uint_eq(m.length, 3);
	ck_assert_uint_eq(m.flags, 0);
	ck_assert_int_eq(runlist_map(&rl, 15, &m), 0);
	ck_assert_uint_eq(m.flags, CSV_RUNLIST_HOLE);
	ck_assert_uint_eq(m.length, 15);
	ck_assert_int_eq(runlist_map(&rl, 34, &m), 0);
	ck_assert_uint_eq(m.lcn, 204);
	ck_assert_uint_eq(m.flags, CSV_RUN_UNWRITTEN);
	ck_assert_uint_eq(m.length, 1);

	/* Overlaps are refused, whatever part overlaps. */
	ck_assert_int_eq(runlist_insert(&rl, 8, 500, 3, 0), -EEXIST);
	ck_assert_int_eq(runlist_insert(&rl, 14, 500, 1, 0), -EEXIST);
	ck_assert_int_eq(runlist_insert(&rl, 5, 500, 40, 0), -EEXIST);
	ck_assert_int_eq(runlist_insert(&rl, 29, 500, 2, 0), -EEXIST);
	/* Bad arguments. */
	ck_assert_int_eq(runlist_insert(&rl, 50, 500, 0, 0), -EINVAL);
	ck_assert_int_eq(runlist_insert(&rl, 50, 0, 1, 0), -EINVAL);
	ck_assert_int_eq(runlist_insert(&rl, 50, 500, 1, CSV_RUNLIST_HOLE), -EINVAL);
	ck_assert_int_eq(runlist_insert(&rl, UINT64_MAX - 1, 500, 2, 0), -EINVAL);
	ck_assert_int_eq(runlist_insert(&rl, 50, UINT64_MAX - 1, 2, 0), -EINVAL);
	ck_assert_uint_eq(rl.count, 2);

	/* Continues the left run: merged. Then the gap to the right is
	 * filled contiguously on both sides, but the flags differ. */
	ck_assert_int_eq(runlist_insert(&rl, 15, 105, 5, 0), 0);
	ck_assert_uint_eq(rl.count, 2);
	expect_run(&rl, 0, 10, 100, 10, 0);
	ck_assert_int_eq(runlist_insert(&rl, 20, 190, 10, 0), 0);
	ck_assert_uint_eq(rl.count, 3);
	expect_run(&rl, 1, 20, 190, 10, 0);
	/* LCN not contiguous: separate runs. */
	ck_assert_int_eq(runlist_insert(&rl, 35, 300, 5, CSV_RUN_UNWRITTEN), 0);
	ck_assert_uint_eq(rl.count, 4);
	/* Fills a gap joining both neighbours. */
	ck_assert_int_eq(runlist_insert(&rl, 45, 310, 5, 0), 0);
	ck_assert_int_eq(runlist_insert(&rl, 41, 306, 3, 0), 0);
	ck_assert_uint_eq(rl.count, 6);
	ck_assert_int_eq(runlist_insert(&rl, 44, 309, 1, 0), 0);
	ck_assert_uint_eq(rl.count, 5);
	expect_run(&rl, 4, 41, 306, 9, 0);
	ck_assert_int_eq(runlist_insert(&rl, 40, 305, 1, CSV_RUN_UNWRITTEN), 0);
	expect_run(&rl, 3, 35, 300, 6, CSV_RUN_UNWRITTEN);
	ck_assert_uint_eq(runlist_clusters(&rl), 10 + 10 + 5 + 6 + 9);
	assert_valid(&rl, TOTAL);
	runlist_free(&rl);
	runlist_free(&rl);
}
END_TEST

START_TEST(test_merge_limit)
{
	struct csv_runlist rl;
	const uint32_t big = UINT32_MAX - 5;
	struct csv_run m;
	runlist_init(&rl);

	ck_assert_int_eq(runlist_insert(&rl, 0, 1, big, 0), 0);
	ck_assert_int_eq(runlist_insert(&rl, (uint64_t)big + 5, (uint64_t)big + 6, 10, 0), 0);
	/* 5 more fit in 32 bits on the left, the right run stays apart. */
	ck_assert_int_eq(runlist_insert(&rl, big, (uint64_t)big + 1, 5, 0), 0);
	ck_assert_uint_eq(rl.count, 2);
	expect_run(&rl, 0, 0, 1, UINT32_MAX, 0);
	expect_run(&rl, 1, UINT32_MAX, (uint64_t)UINT32_MAX + 1, 10, 0);
	/* A hole longer than 32 bits maps as UINT32_MAX at most. */
	ck_assert_int_eq(runlist_map(&rl, (uint64_t)UINT32_MAX + 10, &m), 0);
	ck_assert_uint_eq(m.length, UINT32_MAX);
	/* Punch the middle of the big one, then set_written both halves. */
	ck_assert_int_eq(runlist_punch(&rl, 1000, 1, NULL, NULL), 0);
	ck_assert_uint_eq(rl.count, 3);
	ck_assert_int_eq(runlist_insert(&rl, 1000, 1001, 1, 0), 0);
	ck_assert_uint_eq(rl.count, 2);
	expect_run(&rl, 0, 0, 1, UINT32_MAX, 0);
	ck_assert_int_eq(runlist_map(&rl, UINT32_MAX - 1, &m), 0);
	ck_assert_uint_eq(m.length, 1);
	ck_assert_uint_eq(m.lcn, UINT32_MAX);
	assert_valid(&rl, TOTAL);
	runlist_free(&rl);
}
END_TEST

START_TEST(test_punch_truncate)
{
	struct csv_runlist rl;
	struct freed_log fl = { .n = 0 };
	runlist_init(&rl);

	ck_assert_int_eq(runlist_insert(&rl, 0, 1000, 100, 0), 0);
	ck_assert_int_eq(runlist_insert(&rl, 200, 5000, 50, CSV_RUN_UNWRITTEN), 0);

	/* Inside one run: split in two. */
	ck_assert_int_eq(runlist_punch(&rl, 10, 20, log_freed, &fl), 0);
	ck_assert_int_eq(fl.n, 1);
	ck_assert_uint_eq(fl.lcn[0], 1010);
	ck_assert_uint_eq(fl.len[0], 20);
	ck_assert_uint_eq(rl.count, 3);
	expect_run(&rl, 0, 0, 1000, 10, 0);
	expect_run(&rl, 1, 30, 1030, 70, 0);

	/* Across a hole, trimming one run's tail and another's head, unwritten
	 * clusters reported as well. */
	fl.n = 0;
	ck_assert_int_eq(runlist_punch(&rl, 90, 120, log_freed, &fl), 0);
	ck_assert_int_eq(fl.n, 2);
	ck_assert_uint_eq(fl.lcn[0], 1090);
	ck_assert_uint_eq(fl.len[0], 10);
	ck_assert_uint_eq(fl.lcn[1], 5000);
	ck_assert_uint_eq(fl.len[1], 10);
	expect_run(&rl, 1, 30, 1030, 60, 0);
	expect_run(&rl, 2, 210, 5010, 40, CSV_RUN_UNWRITTEN);

	/* A hole only: nothing happens. */
	fl.n = 0;
	ck_assert_int_eq(runlist_punch(&rl, 100, 100, log_freed, &fl), 0);
	ck_assert_int_eq(runlist_punch(&rl, 5, 0, log_freed, &fl), 0);
	ck_assert_int_eq(fl.n, 0);
	ck_assert_uint_eq(rl.count, 3);

	/* Whole runs. */
	ck_assert_int_eq(runlist_punch(&rl, 0, 10, log_freed, &fl), 0);
	ck_assert_uint_eq(rl.count, 2);
	expect_run(&rl, 0, 30, 1030, 60, 0);

	/* Truncate mid-run, then past everything, then to 0 (a huge range). */
	fl.n = 0;
	fl.total = 0;
	ck_assert_int_eq(runlist_truncate(&rl, 220, log_freed, &fl), 0);
	ck_assert_int_eq(fl.n, 1);
	ck_assert_uint_eq(fl.lcn[0], 5020);
	ck_assert_uint_eq(fl.total, 30);
	expect_run(&rl, 1, 210, 5010, 10, CSV_RUN_UNWRITTEN);
	ck_assert_int_eq(runlist_truncate(&rl, 1000, log_freed, &fl), 0);
	ck_assert_int_eq(fl.n, 1);
	ck_assert_int_eq(runlist_truncate(&rl, 0, log_freed, &fl), 0);
	ck_assert_uint_eq(rl.count, 0);
	ck_assert_uint_eq(fl.total, 30 + 60 + 10);
	ck_assert_uint_eq(runlist_clusters(&rl), 0);

	/* Punch to the end of the VCN space (the range wraps). */
	ck_assert_int_eq(runlist_insert(&rl, 100, 10, 10, 0), 0);
	ck_assert_int_eq(runlist_punch(&rl, 105, UINT64_MAX, NULL, NULL), 0);
	expect_run(&rl, 0, 100, 10, 5, 0);
	runlist_free(&rl);
}
END_TEST

START_TEST(test_set_written)
{
	struct csv_runlist rl;
	runlist_init(&rl);

	ck_assert_int_eq(runlist_insert(&rl, 0, 1000, 100, CSV_RUN_UNWRITTEN), 0);
	ck_assert_int_eq(runlist_set_written(&rl, 10, 20), 0);
	ck_assert_uint_eq(rl.count, 3);
	expect_run(&rl, 0, 0, 1000, 10, CSV_RUN_UNWRITTEN);
	expect_run(&rl, 1, 10, 1010, 20, 0);
	expect_run(&rl, 2, 30, 1030, 70, CSV_RUN_UNWRITTEN);

	/* Writing the rest joins everything back into one run. */
	ck_assert_int_eq(runlist_set_written(&rl, 30, 70), 0);
	ck_assert_uint_eq(rl.count, 2);
	ck_assert_int_eq(runlist_set_written(&rl, 0, 10), 0);
	ck_assert_uint_eq(rl.count, 1);
	expect_run(&rl, 0, 0, 1000, 100, 0);

	/* Over holes and written runs: nothing to split. */
	ck_assert_int_eq(runlist_insert(&rl, 200, 2000, 10, CSV_RUN_UNWRITTEN), 0);
	ck_assert_int_eq(runlist_insert(&rl, 210, 2010, 10, 0), 0);
	ck_assert_uint_eq(rl.count, 3);
	ck_assert_int_eq(runlist_set_written(&rl, 50, 1000), 0);
	ck_assert_uint_eq(rl.count, 2);
	expect_run(&rl, 1, 200, 2000, 20, 0);
	ck_assert_int_eq(runlist_set_written(&rl, 0, 0), 0);
	ck_assert_int_eq(runlist_set_written(&rl, 5, UINT64_MAX), 0);
	ck_assert_uint_eq(rl.count, 2);
	assert_valid(&rl, TOTAL);
	runlist_free(&rl);
}
END_TEST

START_TEST(test_validate)
{
	struct csv_runlist rl;
	char err[200];
	runlist_init(&rl);

	ck_assert_int_eq(runlist_insert(&rl, 0, 10, 10, 0), 0);
	ck_assert_int_eq(runlist_insert(&rl, 20, 30, 10, 0), 0);
	ck_assert_int_eq(runlist_validate(&rl, 40, err, sizeof(err)), 0);
	ck_assert_int_eq(runlist_validate(&rl, 39, err, sizeof(err)), -EUCLEAN);
	ck_assert_ptr_nonnull(strstr(err, "outside the volume"));

	struct csv_run save = rl.runs[1];
	rl.runs[1].vcn = 5;
	ck_assert_int_eq(runlist_validate(&rl, 100, err, sizeof(err)), -EUCLEAN);
	ck_assert_ptr_nonnull(strstr(err, "overlaps"));
	rl.runs[1] = save;
	rl.runs[1].length = 0;
	ck_assert_int_eq(runlist_validate(&rl, 100, err, sizeof(err)), -EUCLEAN);
	rl.runs[1] = save;
	rl.runs[1].flags = CSV_RUNLIST_HOLE;
	ck_assert_int_eq(runlist_validate(&rl, 100, err, sizeof(err)), -EUCLEAN);
	rl.runs[1].flags = 2;
	ck_assert_int_eq(runlist_validate(&rl, 100, NULL, 0), -EUCLEAN);
	rl.runs[1] = save;
	rl.runs[1].lcn = 0;
	ck_assert_int_eq(runlist_validate(&rl, 100, err, sizeof(err)), -EUCLEAN);
	rl.runs[1] = save;
	rl.runs[1].vcn = UINT64_MAX - 5;
	ck_assert_int_eq(runlist_validate(&rl, 100, err, sizeof(err)), -EUCLEAN);
	rl.runs[1] = save;
	rl.runs[1].lcn = UINT64_MAX - 5;
	ck_assert_int_eq(runlist_validate(&rl, UINT64_MAX, err, sizeof(err)), -EUCLEAN);
	rl.runs[1] = save;
	ck_assert_int_eq(runlist_validate(&rl, 100, err, sizeof(err)), 0);
	runlist_free(&rl);
}
END_TEST

/* ---- Random operations against a per-cluster model ------------------- */

#define V 3000u        /* VCNs modelled */
#define L 200000u      /* LCNs handed out */

struct rmodel {
	uint64_t lcn[V];        /* 0 = hole */
	uint32_t flags[V];
	uint32_t owner[L];      /* vcn + 1 using the lcn, 0 = free */
	uint32_t reported[L];
	uint64_t n_reported;
};

static void model_freed(void *ud, uint64_t lcn, uint64_t len)
{
	struct rmodel *m = ud;
	for (uint64_t i = lcn; i < lcn + len; i++) {
		REQUIRE(i < L, "freed lcn %lu out of range", (unsigned long)i);
		m->reported[i]++;
	}
	m->n_reported += len;
}

static bool lcn_range_free(const struct rmodel *m, uint64_t lcn, uint64_t len)
{
	if (lcn == 0 || lcn + len > L)
		return false;
	for (uint64_t i = lcn; i < lcn + len; i++)
		if (m->owner[i])
			return false;
	return true;
}

static void model_unmap(struct rmodel *m, uint64_t from, uint64_t to)
{
	uint64_t expect = 0;
	for (uint64_t v = from; v < to && v < V; v++) {
		if (!m->lcn[v])
			continue;
		REQUIRE(m->reported[m->lcn[v]] == 1, "lcn %lu (vcn %lu) reported %u times",
			(unsigned long)m->lcn[v], (unsigned long)v, m->reported[m->lcn[v]]);
		m->reported[m->lcn[v]] = 0;
		m->owner[m->lcn[v]] = 0;
		m->lcn[v] = 0;
		m->flags[v] = 0;
		expect++;
	}
	REQUIRE(m->n_reported == expect, "%lu clusters reported freed, expected %lu",
		(unsigned long)m->n_reported, (unsigned long)expect);
	m->n_reported = 0;
}

static bool continues(const struct csv_run *a, const struct csv_run *b)
{
	return a->flags == b->flags && a->vcn + a->length == b->vcn && a->lcn + a->length == b->lcn;
}

static void model_compare(const struct csv_runlist *rl, const struct rmodel *m, uint64_t *scratch_lcn,
			  uint32_t *scratch_flags)
{
	memset(scratch_lcn, 0, V * sizeof(*scratch_lcn));
	for (size_t i = 0; i < rl->count; i++) {
		const struct csv_run *r = &rl->runs[i];
		REQUIRE(r->vcn + r->length <= V, "run %zu beyond the model", i);
		/* Canonical: nothing left that could have been merged. */
		REQUIRE(i == 0 || !continues(&rl->runs[i - 1], r), "runs %zu and %zu not merged", i - 1, i);
		for (uint64_t k = 0; k < r->length; k++) {
			scratch_lcn[r->vcn + k] = r->lcn + k;
			scratch_flags[r->vcn + k] = r->flags;
		}
	}
	for (uint64_t v = 0; v < V; v++) {
		REQUIRE(scratch_lcn[v] == m->lcn[v], "vcn %lu: lcn %lu, model %lu", (unsigned long)v,
			(unsigned long)scratch_lcn[v], (unsigned long)m->lcn[v]);
		REQUIRE(!m->lcn[v] || scratch_flags[v] == m->flags[v], "vcn %lu: flags", (unsigned long)v);
	}
	assert_valid(rl, L);
}

static void model_check_map(const struct csv_runlist *rl, const struct rmodel *m, uint64_t vcn)
{
	struct csv_run r;
	REQUIRE(runlist_map(rl, vcn, &r) == 0 && r.vcn == vcn, "map %lu", (unsigned long)vcn);
	uint64_t n = 1;
	if (m->lcn[vcn]) {
		REQUIRE(r.lcn == m->lcn[vcn] && r.flags == m->flags[vcn], "map %lu", (unsigned long)vcn);
		while (vcn + n < V && m->lcn[vcn + n] == m->lcn[vcn] + n && m->flags[vcn + n] == m->flags[vcn])
			n++;
		REQUIRE(r.length == n, "map %lu: length %u, model %lu", (unsigned long)vcn, r.length,
			(unsigned long)n);
	} else {
		REQUIRE(r.flags == CSV_RUNLIST_HOLE && r.lcn == 0, "map %lu: not a hole", (unsigned long)vcn);
		while (vcn + n < V && !m->lcn[vcn + n])
			n++;
		REQUIRE(r.length == (vcn + n < V ? n : UINT32_MAX), "map %lu: hole length %u",
			(unsigned long)vcn, r.length);
	}
}

START_TEST(test_random_model)
{
	struct rmodel *m = calloc(1, sizeof(*m));
	uint64_t *sl = malloc(V * sizeof(uint64_t));
	uint32_t *sf = malloc(V * sizeof(uint32_t));
	struct csv_runlist rl;
	unsigned long n_ins = 0, n_exist = 0, n_punch = 0, n_written = 0, n_trunc = 0;
	size_t max_runs = 0;

	ck_assert(m && sl && sf);
	runlist_init(&rl);
	srand(4242);
	for (int step = 0; step < 30000; step++) {
		int op = rand() % 100;
		uint64_t vcn = (uint64_t)rand() % V;
		uint64_t len = 1 + (uint64_t)rand() % (rand() % 10 ? 20 : 300);
		if (len > V - vcn)
			len = V - vcn;

		if (op < 45) {
			bool mapped = false;
			for (uint64_t v = vcn; v < vcn + len; v++)
				mapped |= m->lcn[v] != 0;
			/* Prefer LCNs continuing a neighbour, to exercise merging. */
			uint64_t lcn = 0;
			int how = rand() % 3;
			if (how == 0 && vcn > 0 && m->lcn[vcn - 1])
				lcn = m->lcn[vcn - 1] + 1;
			else if (how == 1 && vcn + len < V && m->lcn[vcn + len] > len)
				lcn = m->lcn[vcn + len] - len;
			for (int tries = 0; !lcn_range_free(m, lcn, len) && tries < 50; tries++)
				lcn = 1 + (uint64_t)rand() % (L - len - 1);
			if (!lcn_range_free(m, lcn, len))
				continue;
			uint32_t flags = rand() % 2 ? CSV_RUN_UNWRITTEN : 0;
			if (how != 2 && vcn > 0 && m->lcn[vcn - 1] && rand() % 2)
				flags = m->flags[vcn - 1];
			int r = runlist_insert(&rl, vcn, lcn, (uint32_t)len, flags);
			if (mapped) {
				REQUIRE(r == -EEXIST, "step %d: insert over a mapped range: %d", step, r);
				n_exist++;
			} else {
				REQUIRE(r == 0, "step %d: insert: %d", step, r);
				for (uint64_t k = 0; k < len; k++) {
					m->lcn[vcn + k] = lcn + k;
					m->flags[vcn + k] = flags;
					m->owner[lcn + k] = (uint32_t)(vcn + k + 1);
				}
				n_ins++;
			}
		} else if (op < 70) {
			REQUIRE(runlist_punch(&rl, vcn, len, model_freed, m) == 0, "step %d: punch", step);
			model_unmap(m, vcn, vcn + len);
			n_punch++;
		} else if (op < 98) {
			REQUIRE(runlist_set_written(&rl, vcn, len) == 0, "step %d: set_written", step);
			for (uint64_t v = vcn; v < vcn + len; v++)
				m->flags[v] = 0;
			n_written++;
		} else {
			vcn = V - 1 - (uint64_t)rand() % (V / 4);
			REQUIRE(runlist_truncate(&rl, vcn, model_freed, m) == 0, "step %d: truncate", step);
			model_unmap(m, vcn, V);
			n_trunc++;
		}
		model_compare(&rl, m, sl, sf);
		for (int k = 0; k < 4; k++)
			model_check_map(&rl, m, (uint64_t)rand() % V);
		uint64_t clusters = 0;
		for (uint64_t v = 0; v < V; v++)
			clusters += m->lcn[v] != 0;
		REQUIRE(runlist_clusters(&rl) == clusters, "step %d: clusters", step);
		if (rl.count > max_runs)
			max_runs = rl.count;
	}
	fprintf(stderr, "runlist model: %lu inserts (%lu EEXIST), %lu punches, %lu set_written, "
		"%lu truncates, up to %zu runs\n", n_ins, n_exist, n_punch, n_written, n_trunc, max_runs);
	ck_assert_uint_gt(max_runs, 100);
	runlist_free(&rl);
	free(sl);
	free(sf);
	free(m);
}
END_TEST

/* ---- Encoding ---------------------------------------------------------- */

#define OWNER 0x0003000000000123ull
#define CAP 1024u

/* n runs that do not merge: gaps in VCN, scattered LCNs, mixed flags. */
static void make_runs(struct csv_runlist *rl, size_t n, unsigned seed)
{
	uint64_t vcn = (uint64_t)seed % 7;
	srand(seed);
	runlist_truncate(rl, 0, NULL, NULL);
	for (size_t i = 0; i < n; i++) {
		uint32_t len = 1 + (uint32_t)(rand() % 1000);
		uint64_t lcn = 1 + ((uint64_t)rand() << 16) % (TOTAL / 2);
		ck_assert_int_eq(runlist_insert(rl, vcn, lcn, len, rand() % 4 ? 0 : CSV_RUN_UNWRITTEN), 0);
		vcn += len + 1 + (uint64_t)(rand() % 3);
	}
	ck_assert_uint_eq(rl->count, n);
}

static void assert_same_runs(const struct csv_runlist *a, const struct csv_runlist *b)
{
	ck_assert_uint_eq(a->count, b->count);
	ck_assert(a->count == 0 || memcmp(a->runs, b->runs, a->count * sizeof(a->runs[0])) == 0);
}

static uint16_t payload_form(const uint8_t *p)
{
	struct csv_d_attr_data h;
	memcpy(&h, p, sizeof(h));
	return le16_to_cpu(h.form);
}

START_TEST(test_encode_forms)
{
	struct csv_nodeio *io;
	struct csv_runlist rl, got;
	uint8_t payload[CAP];
	size_t len;
	const size_t per = CSV_EXTENT_RUNS(4096);

	ck_assert_uint_eq(per, 168);
	ck_assert_int_eq(nodeio_mem_new(4096, &io), 0);
	runlist_init(&rl);

	/* Empty, then small: runs in the record. */
	ck_assert_int_eq(runlist_encode(&rl, payload, CAP, &len, io, OWNER), 0);
	ck_assert_uint_eq(len, 8);
	ck_assert_int_eq(runlist_decode(payload, len, io, OWNER, TOTAL, &got), 0);
	ck_assert_uint_eq(got.count, 0);
	runlist_free(&got);

	make_runs(&rl, 42, 1);  /* 8 + 42 * 24 = 1016 bytes: just fits */
	ck_assert_int_eq(runlist_encode(&rl, payload, CAP, &len, io, OWNER), 0);
	ck_assert_uint_eq(len, 1016);
	ck_assert_uint_eq(payload_form(payload), CSV_DATA_RUNS);
	ck_assert_uint_eq(nodeio_mem_allocated(io), 0);
	ck_assert_int_eq(runlist_decode(payload, len, io, OWNER, TOTAL, &got), 0);
	assert_same_runs(&rl, &got);
	ck_assert_uint_eq(got.n_ext, 0);
	runlist_free(&got);

	/* One more: extent blocks. */
	make_runs(&rl, 43, 1);
	ck_assert_int_eq(runlist_encode(&rl, payload, CAP, &len, io, OWNER), 0);
	ck_assert_uint_eq(payload_form(payload), CSV_DATA_EXTENTS);
	ck_assert_uint_eq(len, 8 + 16);
	ck_assert_uint_eq(rl.n_ext, 1);
	ck_assert_uint_eq(nodeio_mem_allocated(io), 1);
	ck_assert_int_eq(runlist_decode(payload, len, io, OWNER, TOTAL, &got), 0);
	assert_same_runs(&rl, &got);
	ck_assert_uint_eq(got.n_ext, 1);
	ck_assert_uint_eq(got.ext_blocks[0], rl.ext_blocks[0]);
	runlist_free(&got);

	/* Growing keeps the blocks it has, in order, and adds more. */
	uint64_t first = rl.ext_blocks[0];
	make_runs(&rl, 1000, 2);
	ck_assert_int_eq(runlist_encode(&rl, payload, CAP, &len, io, OWNER), 0);
	ck_assert_uint_eq(rl.n_ext, 6);  /* ceil(1000 / 168) */
	ck_assert_uint_eq(rl.ext_blocks[0], first);
	ck_assert_uint_eq(nodeio_mem_allocated(io), 6);
	ck_assert_int_eq(runlist_decode(payload, len, io, OWNER, TOTAL, &got), 0);
	assert_same_runs(&rl, &got);
	ck_assert_int_eq(memcmp(got.ext_blocks, rl.ext_blocks, 6 * sizeof(uint64_t)), 0);
	runlist_free(&got);

	/* The same owner only. */
	ck_assert_int_eq(runlist_decode(payload, len, io, OWNER + 1, TOTAL, &got), -EUCLEAN);

	/* -EFBIG when even the index does not fit: nothing changes. */
	uint8_t small[8 + 5 * 16];
	uint64_t blocks[6];
	memcpy(blocks, rl.ext_blocks, sizeof(blocks));
	memset(small, 0x5a, sizeof(small));
	ck_assert_int_eq(runlist_encode(&rl, small, sizeof(small), &len, io, OWNER), -EFBIG);
	ck_assert_int_eq(runlist_encode(&rl, small, 7, &len, io, OWNER), -EFBIG);
	ck_assert_uint_eq(small[0], 0x5a);
	ck_assert_uint_eq(rl.n_ext, 6);
	ck_assert_int_eq(memcmp(blocks, rl.ext_blocks, sizeof(blocks)), 0);
	ck_assert_uint_eq(nodeio_mem_allocated(io), 6);
	ck_assert_int_eq(runlist_encode(&rl, small, sizeof(small) + 0, &len, io, OWNER), -EFBIG);

	/* Shrinking frees the surplus from the end. */
	make_runs(&rl, 200, 3);
	ck_assert_int_eq(runlist_encode(&rl, payload, CAP, &len, io, OWNER), 0);
	ck_assert_uint_eq(rl.n_ext, 2);
	ck_assert_uint_eq(rl.ext_blocks[0], blocks[0]);
	ck_assert_uint_eq(rl.ext_blocks[1], blocks[1]);
	ck_assert_uint_eq(nodeio_mem_allocated(io), 2);
	ck_assert_int_eq(runlist_decode(payload, len, io, OWNER, TOTAL, &got), 0);
	assert_same_runs(&rl, &got);
	runlist_free(&got);

	/* Back to runs in the record: every block freed. */
	make_runs(&rl, 3, 4);
	ck_assert_int_eq(runlist_encode(&rl, payload, CAP, &len, io, OWNER), 0);
	ck_assert_uint_eq(payload_form(payload), CSV_DATA_RUNS);
	ck_assert_uint_eq(rl.n_ext, 0);
	ck_assert_uint_eq(nodeio_mem_allocated(io), 0);

	/* A file being deleted gives its blocks back. */
	make_runs(&rl, 400, 5);
	ck_assert_int_eq(runlist_encode(&rl, payload, CAP, &len, io, OWNER), 0);
	ck_assert_uint_eq(nodeio_mem_allocated(io), 3);
	ck_assert_int_eq(runlist_drop_extent_blocks(&rl, io), 0);
	ck_assert_uint_eq(nodeio_mem_allocated(io), 0);
	runlist_free(&rl);
	nodeio_mem_free(io);
}
END_TEST

START_TEST(test_encode_switching)
{
	struct csv_nodeio *io;
	struct csv_runlist rl, got;
	uint8_t payload[CAP];
	size_t len;
	const size_t per = CSV_EXTENT_RUNS(8192);

	/* 8 KiB nodes this time. */
	ck_assert_int_eq(nodeio_mem_new(8192, &io), 0);
	runlist_init(&rl);
	srand(77);
	for (int it = 0; it < 300; it++) {
		size_t n = (size_t)(rand() % 3 ? rand() % 60 : rand() % 4000);
		uint64_t before[64];
		size_t n_before = rl.n_ext < 64 ? rl.n_ext : 64;
		if (n_before)
			memcpy(before, rl.ext_blocks, n_before * sizeof(uint64_t));

		make_runs(&rl, n, (unsigned)it + 100);
		ck_assert_int_eq(runlist_encode(&rl, payload, CAP, &len, io, OWNER), 0);
		size_t expect = 8 + n * 24 <= CAP ? 0 : (n + per - 1) / per;
		ck_assert_uint_eq(rl.n_ext, expect);
		ck_assert_uint_eq(nodeio_mem_allocated(io), expect);
		for (size_t k = 0; k < expect && k < n_before; k++)
			ck_assert_uint_eq(rl.ext_blocks[k], before[k]);
		ck_assert_uint_eq(payload_form(payload), expect ? CSV_DATA_EXTENTS : CSV_DATA_RUNS);

		ck_assert_int_eq(runlist_decode(payload, len, io, OWNER, TOTAL, &got), 0);
		assert_same_runs(&rl, &got);
		ck_assert_uint_eq(got.n_ext, rl.n_ext);
		runlist_free(&got);
	}
	ck_assert_int_eq(runlist_drop_extent_blocks(&rl, io), 0);
	ck_assert_uint_eq(nodeio_mem_allocated(io), 0);
	runlist_free(&rl);
	nodeio_mem_free(io);
}
END_TEST

/* ---- Damage ----------------------------------------------------------------- */

struct damaged {
	struct csv_nodeio *io;
	struct csv_runlist rl;
	uint8_t payload[CAP];
	size_t len;
};

static void damaged_setup(struct damaged *d)
{
	ck_assert_int_eq(nodeio_mem_new(4096, &d->io), 0);
	runlist_init(&d->rl);
	make_runs(&d->rl, 600, 9);  /* 4 blocks */
	ck_assert_int_eq(runlist_encode(&d->rl, d->payload, CAP, &d->len, d->io, OWNER), 0);
	ck_assert_uint_eq(d->rl.n_ext, 4);
}

static void damaged_teardown(struct damaged *d)
{
	runlist_free(&d->rl);
	nodeio_mem_free(d->io);
}

static int decode(struct damaged *d, const uint8_t *payload)
{
	struct csv_runlist got;
	int r = runlist_decode(payload, d->len, d->io, OWNER, TOTAL, &got);
	if (r == 0) {
		assert_same_runs(&d->rl, &got);
		runlist_free(&got);
	}
	return r;
}

START_TEST(test_damaged_extent_blocks)
{
	struct damaged d;
	uint8_t saved[4096];
	damaged_setup(&d);
	ck_assert_int_eq(decode(&d, d.payload), 0);

	for (size_t k = 0; k < 4; k++) {
		uint8_t *blk = nodeio_mem_peek(d.io, d.rl.ext_blocks[k]);
		struct csv_d_extent_block *eb = (struct csv_d_extent_block *)blk;
		ck_assert_ptr_nonnull(blk);
		memcpy(saved, blk, sizeof(saved));

		/* A flipped bit anywhere: bad checksum. */
		for (int i = 0; i < 20; i++) {
			size_t off = (size_t)rand() % 4096;
			blk[off] ^= (uint8_t)(1u << (rand() % 8));
			ck_assert_int_eq(decode(&d, d.payload), -EBADMSG);
			memcpy(blk, saved, sizeof(saved));
		}
		/* Sealed, but inconsistent. */
		eb->owner = cpu_to_le64(OWNER ^ 1);
		meta_reseal(blk, 4096);
		ck_assert_int_eq(decode(&d, d.payload), -EUCLEAN);
		memcpy(blk, saved, sizeof(saved));

		eb->count = cpu_to_le32(0);
		meta_reseal(blk, 4096);
		ck_assert_int_eq(decode(&d, d.payload), -EUCLEAN);
		eb->count = cpu_to_le32(169);
		meta_reseal(blk, 4096);
		ck_assert_int_eq(decode(&d, d.payload), -EUCLEAN);
		memcpy(blk, saved, sizeof(saved));

		if (le32_to_cpu(eb->count) < 168) {
			/* One run dropped: the tail is not zero any more. */
			eb->count = cpu_to_le32(le32_to_cpu(eb->count) - 1);
			meta_reseal(blk, 4096);
			ck_assert_int_eq(decode(&d, d.payload), -EUCLEAN);
			memcpy(blk, saved, sizeof(saved));
		}

		eb->reserved = cpu_to_le32(1);
		meta_reseal(blk, 4096);
		ck_assert_int_eq(decode(&d, d.payload), -EUCLEAN);
		memcpy(blk, saved, sizeof(saved));

		/* A run outside the volume, a run of length 0, unknown flags. */
		eb->runs[5].lcn = cpu_to_le64(TOTAL);
		meta_reseal(blk, 4096);
		ck_assert_int_eq(decode(&d, d.payload), -EUCLEAN);
		memcpy(blk, saved, sizeof(saved));
		eb->runs[5].length = cpu_to_le32(0);
		meta_reseal(blk, 4096);
		ck_assert_int_eq(decode(&d, d.payload), -EUCLEAN);
		memcpy(blk, saved, sizeof(saved));
		eb->runs[5].flags = cpu_to_le32(0x80);
		meta_reseal(blk, 4096);
		ck_assert_int_eq(decode(&d, d.payload), -EUCLEAN);
		memcpy(blk, saved, sizeof(saved));

		/* Runs out of order inside the block. */
		struct csv_d_run t = eb->runs[3];
		eb->runs[3] = eb->runs[4];
		eb->runs[4] = t;
		meta_reseal(blk, 4096);
		ck_assert_int_eq(decode(&d, d.payload), -EUCLEAN);
		memcpy(blk, saved, sizeof(saved));

		/* The first run before first_vcn, the last one past the next
		 * block's first_vcn. */
		eb->runs[0].vcn = cpu_to_le64(le64_to_cpu(eb->runs[0].vcn) - 1);
		meta_reseal(blk, 4096);
		ck_assert_int_eq(decode(&d, d.payload), -EUCLEAN);
		memcpy(blk, saved, sizeof(saved));
		if (k < 3) {
			size_t last = le32_to_cpu(eb->count) - 1;
			eb->runs[last].length = cpu_to_le32(le32_to_cpu(eb->runs[last].length) + 5);
			meta_reseal(blk, 4096);
			ck_assert_int_eq(decode(&d, d.payload), -EUCLEAN);
			memcpy(blk, saved, sizeof(saved));
		}

		/* Another block's image here: misdirected. */
		uint8_t *other = nodeio_mem_peek(d.io, d.rl.ext_blocks[(k + 1) % 4]);
		memcpy(blk, other, 4096);
		ck_assert_int_eq(decode(&d, d.payload), -EUCLEAN);
		memcpy(blk, saved, sizeof(saved));
		ck_assert_int_eq(decode(&d, d.payload), 0);
	}

	/* A block that was freed cannot be read. */
	ck_assert_int_eq(nodeio_free(d.io, d.rl.ext_blocks[2]), 0);
	ck_assert_int_lt(decode(&d, d.payload), 0);
	damaged_teardown(&d);
}
END_TEST

static void set_ref(uint8_t *payload, size_t k, uint64_t first_vcn, uint64_t blocknr)
{
	struct csv_d_extent_ref ref = { cpu_to_le64(first_vcn), cpu_to_le64(blocknr) };
	memcpy(payload + 8 + k * 16, &ref, 16);
}

static struct csv_d_extent_ref get_ref(const uint8_t *payload, size_t k)
{
	struct csv_d_extent_ref ref;
	memcpy(&ref, payload + 8 + k * 16, 16);
	return ref;
}

START_TEST(test_damaged_payload)
{
	struct damaged d;
	uint8_t p[CAP];
	struct csv_runlist got;
	damaged_setup(&d);

	struct csv_d_extent_ref r0 = get_ref(d.payload, 0), r1 = get_ref(d.payload, 1);
	ck_assert_uint_eq(d.len, 8 + 4 * 16);

	/* Index refs swapped: the runs no longer lie where the index says. */
	memcpy(p, d.payload, CAP);
	set_ref(p, 0, le64_to_cpu(r0.first_vcn), le64_to_cpu(r1.blocknr));
	set_ref(p, 1, le64_to_cpu(r1.first_vcn), le64_to_cpu(r0.blocknr));
	ck_assert_int_eq(decode(&d, p), -EUCLEAN);
	/* Unsorted first_vcn, equal first_vcn, duplicate block, block 0. */
	memcpy(p, d.payload, CAP);
	set_ref(p, 1, le64_to_cpu(r0.first_vcn), le64_to_cpu(r1.blocknr));
	ck_assert_int_eq(decode(&d, p), -EUCLEAN);
	memcpy(p, d.payload, CAP);
	set_ref(p, 0, le64_to_cpu(r1.first_vcn) + 1, le64_to_cpu(r0.blocknr));
	ck_assert_int_eq(decode(&d, p), -EUCLEAN);
	memcpy(p, d.payload, CAP);
	set_ref(p, 1, le64_to_cpu(r1.first_vcn), le64_to_cpu(r0.blocknr));
	ck_assert_int_eq(decode(&d, p), -EUCLEAN);
	memcpy(p, d.payload, CAP);
	set_ref(p, 1, le64_to_cpu(r1.first_vcn), 0);
	ck_assert_int_eq(decode(&d, p), -EUCLEAN);
	/* A block number nobody wrote. */
	memcpy(p, d.payload, CAP);
	set_ref(p, 1, le64_to_cpu(r1.first_vcn), 999999);
	ck_assert_int_lt(decode(&d, p), 0);

	/* Header: count beyond len, count 0, unknown form, resident,
	 * reserved set, too short, trailing garbage. */
	memcpy(p, d.payload, CAP);
	p[4] = 5;
	ck_assert_int_eq(decode(&d, p), -EUCLEAN);
	p[4] = 0;
	ck_assert_int_eq(runlist_decode(p, 8, d.io, OWNER, TOTAL, &got), -EUCLEAN);
	memcpy(p, d.payload, CAP);
	p[0] = 9;
	ck_assert_int_eq(decode(&d, p), -EUCLEAN);
	p[0] = CSV_DATA_RESIDENT;
	ck_assert_int_eq(decode(&d, p), -EINVAL);
	memcpy(p, d.payload, CAP);
	p[2] = 1;
	ck_assert_int_eq(decode(&d, p), -EUCLEAN);
	ck_assert_int_eq(runlist_decode(d.payload, 7, d.io, OWNER, TOTAL, &got), -EUCLEAN);
	ck_assert_int_eq(runlist_decode(d.payload, 0, d.io, OWNER, TOTAL, &got), -EUCLEAN);
	memcpy(p, d.payload, CAP);
	memset(p + d.len, 0, 16);
	ck_assert_int_eq(runlist_decode(p, d.len + 16, d.io, OWNER, TOTAL, &got), 0);  /* zero padding */
	runlist_free(&got);
	p[d.len + 3] = 1;
	ck_assert_int_eq(runlist_decode(p, d.len + 16, d.io, OWNER, TOTAL, &got), -EUCLEAN);
	ck_assert_int_eq(runlist_decode(p, d.len - 1, d.io, OWNER, TOTAL, &got), -EUCLEAN);

	/* Runs in the record, damaged: overlapping, beyond the volume. */
	struct csv_runlist small;
	size_t len;
	runlist_init(&small);
	make_runs(&small, 5, 11);
	ck_assert_int_eq(runlist_encode(&small, p, CAP, &len, d.io, OWNER), 0);
	ck_assert_int_eq(runlist_decode(p, len, d.io, OWNER, TOTAL, &got), 0);
	runlist_free(&got);
	ck_assert_int_eq(runlist_decode(p, len, d.io, OWNER, small.runs[4].lcn, &got), -EUCLEAN);
	memcpy(p + 8 + 24, p + 8, 8);  /* run 1 starts where run 0 does */
	ck_assert_int_eq(runlist_decode(p, len, d.io, OWNER, TOTAL, &got), -EUCLEAN);
	runlist_free(&small);
	damaged_teardown(&d);
}
END_TEST

START_TEST(test_garbage)
{
	struct damaged d;
	uint8_t p[CAP];
	struct csv_runlist got;
	unsigned long ok = 0, bad = 0;
	damaged_setup(&d);
	srand(99);

	for (int it = 0; it < 30000; it++) {
		size_t len = (size_t)rand() % (CAP + 1);
		for (size_t i = 0; i < len; i++)
			p[i] = (uint8_t)rand();
		int kind = rand() % 4;
		if (len >= 8 && kind > 0) {
			/* Plausible headers, to get past the first checks. */
			bool runs = kind == 1;
			size_t each = runs ? 24 : 16;
			uint32_t count = (uint32_t)((len - 8) / each);
			if (rand() % 2)
				count = (uint32_t)rand() % (count + 2);
			struct csv_d_attr_data h = { cpu_to_le16(runs ? CSV_DATA_RUNS : CSV_DATA_EXTENTS),
						     cpu_to_le16(0), cpu_to_le32(count) };
			memcpy(p, &h, 8);
			if (kind == 3) {
				/* Real blocks in the index, random first_vcn; sometimes the true ones. */
				for (size_t k = 0; k < count && 8 + (k + 1) * 16 <= len; k++) {
					struct csv_d_extent_ref t = get_ref(d.payload, k % 4);
					uint64_t fv = rand() % 3 ? le64_to_cpu(t.first_vcn) : (uint64_t)rand();
					set_ref(p, k, fv, le64_to_cpu(t.blocknr));
				}
			}
			size_t used = 8 + (size_t)count * each;
			if (used <= len && rand() % 2)
				memset(p + used, 0, len - used);
			if (runs && rand() % 2) {
				/* Make the runs look sane-ish: small numbers. */
				for (size_t k = 0; k < count && 8 + (k + 1) * 24 <= len; k++) {
					struct csv_d_run r = { cpu_to_le64(k * 100 + (uint64_t)(rand() % 120)),
							       cpu_to_le64(1 + (uint64_t)(rand() % 1000)),
							       cpu_to_le32((uint32_t)(rand() % 110)),
							       cpu_to_le32((uint32_t)(rand() % 3 ? 0 : rand() % 3)) };
					memcpy(p + 8 + k * 24, &r, 24);
				}
			}
		}
		int r = runlist_decode(p, len, d.io, OWNER, 5000, &got);
		if (r == 0) {
			assert_valid(&got, 5000);
			runlist_free(&got);
			ok++;
		} else {
			REQUIRE(r == -EUCLEAN || r == -EBADMSG || r == -EIO || r == -EINVAL, "unexpected %d", r);
			bad++;
		}
	}
	fprintf(stderr, "garbage payloads: %lu decoded, %lu rejected\n", ok, bad);
	ck_assert_uint_gt(ok, 10);
	damaged_teardown(&d);
}
END_TEST

static Suite *runlist_suite(void)
{
	Suite *s = suite_create("runlist");
	TCase *tc;

	tc = tcase_create("edit");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_map_insert_merge);
	tcase_add_test(tc, test_merge_limit);
	tcase_add_test(tc, test_punch_truncate);
	tcase_add_test(tc, test_set_written);
	tcase_add_test(tc, test_validate);
	suite_add_tcase(s, tc);

	tc = tcase_create("model");
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, test_random_model);
	suite_add_tcase(s, tc);

	tc = tcase_create("encode");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_encode_forms);
	tcase_add_test(tc, test_encode_switching);
	suite_add_tcase(s, tc);

	tc = tcase_create("damage");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_damaged_extent_blocks);
	tcase_add_test(tc, test_damaged_payload);
	tcase_add_test(tc, test_garbage);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(runlist_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
