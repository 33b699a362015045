/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The directory index B+ tree, on the in-memory node store. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "btree.h"
#include "format.h"
#include "meta.h"
#include "nodeio.h"
#include "util.h"

#define OWNER CSV_REF(4242, 7)

/* Assertions for hot loops. Check's ck_assert*() record every check that
 * passes with a write(2) (_mark_point()), which costs more than the tree
 * itself over millions of checks; these call Check only on failure. */
#define req(expr)                                                               \
	do {                                                                    \
		if (!(expr))                                                    \
			ck_abort_msg("Assertion '%s' failed", #expr);           \
	} while (0)
#define req_cmp(type, fmt, x, op, y)                                            \
	do {                                                                    \
		type _rx = (x), _ry = (y);                                      \
		if (!(_rx op _ry))                                              \
			ck_abort_msg("Assertion '%s %s %s' failed: " fmt ", " fmt, \
				     #x, #op, #y, _rx, _ry);                    \
	} while (0)
#define req_int_eq(x, y) req_cmp(intmax_t, "%jd", x, ==, y)
#define req_int_ge(x, y) req_cmp(intmax_t, "%jd", x, >=, y)
#define req_int_le(x, y) req_cmp(intmax_t, "%jd", x, <=, y)
#define req_int_ne(x, y) req_cmp(intmax_t, "%jd", x, !=, y)
#define req_uint_eq(x, y) req_cmp(uintmax_t, "%ju", x, ==, y)
#define req_mem_eq(x, y, n) req(memcmp((x), (y), (n)) == 0)
#define req_ptr_nonnull(x) req((x) != NULL)

/* ---- Helpers ------------------------------------------------------------- */

struct fx {
	struct csv_nodeio *io;
	uint8_t *root;
	struct csv_btree t;
};

static void fx_init(struct fx *f, uint32_t node_size, uint32_t root_size)
{
	ck_assert_int_eq(nodeio_mem_new(node_size, &f->io), 0);
	f->root = malloc(root_size);
	ck_assert_ptr_nonnull(f->root);
	memset(f->root, 0xee, root_size);
	btree_root_init(f->root, root_size);
	f->t = (struct csv_btree){ .io = f->io, .owner = OWNER, .root = f->root, .root_size = root_size };
}

static void fx_done(struct fx *f)
{
	nodeio_mem_free(f->io);
	free(f->root);
}

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static void rnd_seed(uint64_t seed)
{
	rng_state = seed ? seed : 1;
}

static int name_order(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	for (size_t i = 0; i < alen && i < blen; i++)
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	return alen < blen ? -1 : alen > blen ? 1 : 0;
}

static bool root_is_empty_leaf(const struct fx *f)
{
	struct csv_d_index_node h;
	memcpy(&h, f->root, sizeof(h));
	return le16_to_cpu(h.level) == 0 && le16_to_cpu(h.count) == 0 && le32_to_cpu(h.used) == 0 &&
	       le64_to_cpu(h.next_leaf) == 0;
}

static unsigned root_level(const struct fx *f)
{
	struct csv_d_index_node h;
	memcpy(&h, f->root, sizeof(h));
	return le16_to_cpu(h.level);
}

/* What btree_check reported. */
struct report {
	unsigned nerr;
	uint64_t err_block[64];
	char err_msg[64][400];
	uint64_t *nodes;
	unsigned *levels;
	size_t nnodes, cap;
	uint64_t nentries;
};

static void rep_node(void *ud, uint64_t blocknr, unsigned level)
{
	struct report *r = ud;
	if (r->nnodes == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 256;
		r->nodes = realloc(r->nodes, r->cap * sizeof(*r->nodes));
		r->levels = realloc(r->levels, r->cap * sizeof(*r->levels));
		req(r->nodes && r->levels);
	}
	r->nodes[r->nnodes] = blocknr;
	r->levels[r->nnodes++] = level;
}

static void rep_entry(void *ud, const uint8_t *name, size_t len, uint64_t ref, uint8_t type)
{
	struct report *r = ud;
	req(len >= 1 && len <= CSV_NAME_MAX);
	r->nentries++;
}

static void rep_error(void *ud, uint64_t blocknr, const char *msg)
{
	struct report *r = ud;
	ck_assert_ptr_nonnull(msg);
	if (r->nerr < 64) {
		r->err_block[r->nerr] = blocknr;
		snprintf(r->err_msg[r->nerr], sizeof(r->err_msg[0]), "%s", msg);
	}
	r->nerr++;
}

static const struct btree_check_ops rep_ops = { rep_node, rep_entry, rep_error };

static void rep_free(struct report *r)
{
	free(r->nodes);
	free(r->levels);
	memset(r, 0, sizeof(*r));
}

/* Runs btree_check, printing what it found. */
static int run_check(struct csv_btree *t, struct report *r)
{
	memset(r, 0, sizeof(*r));
	int n = btree_check(t, &rep_ops, r);
	for (unsigned i = 0; i < r->nerr && i < 64 && n != 0; i++)
		fprintf(stderr, "  check: %s\n", r->err_msg[i]);
	if (n >= 0)
		ck_assert_uint_eq(r->nerr, (unsigned)n);
	return n;
}

static void assert_sound(struct csv_btree *t)
{
	struct report r;
	ck_assert_int_eq(run_check(t, &r), 0);
	rep_free(&r);
}

/* Did check report something containing what, about any block? */
static bool reported_any(const struct report *r, const char *what)
{
	for (unsigned i = 0; i < r->nerr && i < 64; i++)
		if (strstr(r->err_msg[i], what))
			return true;
	return false;
}

/* Did check report something about blocknr whose message contains what? */
static bool reported(const struct report *r, uint64_t blocknr, const char *what)
{
	char prefix[64];
	if (blocknr)
		snprintf(prefix, sizeof(prefix), "index block %" PRIu64 ":", blocknr);
	else
		snprintf(prefix, sizeof(prefix), "index root:");
	for (unsigned i = 0; i < r->nerr && i < 64; i++)
		if (r->err_block[i] == blocknr && strncmp(r->err_msg[i], prefix, strlen(prefix)) == 0 &&
		    (!what || strstr(r->err_msg[i], what)))
			return true;
	return false;
}

/* Collects entries by iteration. */
struct collected {
	size_t n, cap;
	uint8_t (*names)[CSV_NAME_MAX];
	uint8_t *lens;
	uint64_t *refs;
	uint8_t *types;
	size_t stop_after;  /* 0: never */
	int stop_value;
};

static int collect_fn(void *ud, const uint8_t *name, size_t len, uint64_t ref, uint8_t type)
{
	struct collected *c = ud;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 1024;
		c->names = realloc(c->names, c->cap * sizeof(*c->names));
		c->lens = realloc(c->lens, c->cap);
		c->refs = realloc(c->refs, c->cap * sizeof(*c->refs));
		c->types = realloc(c->types, c->cap);
		req(c->names && c->lens && c->refs && c->types);
	}
	req(len >= 1 && len <= CSV_NAME_MAX);
	memcpy(c->names[c->n], name, len);
	c->lens[c->n] = (uint8_t)len;
	c->refs[c->n] = ref;
	c->types[c->n] = type;
	c->n++;
	if (c->stop_after && c->n >= c->stop_after)
		return c->stop_value;
	return 0;
}

static void collected_free(struct collected *c)
{
	free(c->names);
	free(c->lens);
	free(c->refs);
	free(c->types);
	memset(c, 0, sizeof(*c));
}

static double clock_s(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_s(void)
{
	return clock_s(CLOCK_MONOTONIC);
}

/* A phase of the scale test, timed by the wall clock and by this process's
 * CPU time (the figure that means something on a shared machine). */
struct phase {
	double wall, cpu;
};

static struct phase phase_start(void)
{
	return (struct phase){ now_s(), clock_s(CLOCK_PROCESS_CPUTIME_ID) };
}

static struct phase phase_end(struct phase p)
{
	return (struct phase){ now_s() - p.wall, clock_s(CLOCK_PROCESS_CPUTIME_ID) - p.cpu };
}

/* ---- Basics -------------------------------------------------------------- */

START_TEST(test_empty)
{
	struct fx f;
	struct collected c = { 0 };
	uint64_t ref = 0, n = 99;
	uint8_t type;

	fx_init(&f, 4096, CSV_INDEX_ROOT_BYTES);
	ck_assert(root_is_empty_leaf(&f));
	ck_assert_int_eq(btree_lookup(&f.t, "a", 1, &ref, &type), -ENOENT);
	ck_assert_int_eq(btree_delete(&f.t, "a", 1, &ref), -ENOENT);
	ck_assert_int_eq(btree_replace(&f.t, "a", 1, 1, 1, &ref), -ENOENT);
	ck_assert_int_eq(btree_iterate(&f.t, NULL, 0, collect_fn, &c), 0);
	ck_assert_uint_eq(c.n, 0);
	ck_assert_int_eq(btree_iterate(&f.t, "m", 1, collect_fn, &c), 0);
	ck_assert_uint_eq(c.n, 0);
	ck_assert_int_eq(btree_count(&f.t, &n), 0);
	ck_assert_uint_eq(n, 0);
	assert_sound(&f.t);
	ck_assert_int_eq(btree_destroy(&f.t), 0);
	ck_assert(root_is_empty_leaf(&f));
	ck_assert_uint_eq(nodeio_mem_allocated(f.io), 0);
	collected_free(&c);
	fx_done(&f);
}
END_TEST

START_TEST(test_single)
{
	struct fx f;
	uint64_t ref = 0, n;
	uint8_t type = 0;

	fx_init(&f, 4096, CSV_INDEX_ROOT_BYTES);
	ck_assert_int_eq(btree_insert(&f.t, "hello", 5, CSV_REF(77, 2), 4), 0);
	ck_assert_int_eq(btree_lookup(&f.t, "hello", 5, &ref, &type), 0);
	ck_assert_uint_eq(ref, CSV_REF(77, 2));
	ck_assert_uint_eq(type, 4);
	/* Prefixes and extensions of the name are other names. */
	ck_assert_int_eq(btree_lookup(&f.t, "hell", 4, &ref, &type), -ENOENT);
	ck_assert_int_eq(btree_lookup(&f.t, "hello!", 6, &ref, &type), -ENOENT);
	ck_assert_int_eq(btree_insert(&f.t, "hello", 5, 1, 1), -EEXIST);
	ck_assert_int_eq(btree_count(&f.t, &n), 0);
	ck_assert_uint_eq(n, 1);
	assert_sound(&f.t);
	ck_assert_int_eq(btree_delete(&f.t, "hello", 5, &ref), 0);
	ck_assert_uint_eq(ref, CSV_REF(77, 2));
	ck_assert_int_eq(btree_lookup(&f.t, "hello", 5, &ref, &type), -ENOENT);
	ck_assert_int_eq(btree_delete(&f.t, "hello", 5, &ref), -ENOENT);
	ck_assert(root_is_empty_leaf(&f));
	ck_assert_uint_eq(nodeio_mem_allocated(f.io), 0);
	/* NULL out-parameters are allowed. */
	ck_assert_int_eq(btree_insert(&f.t, "x", 1, 5, 8), 0);
	ck_assert_int_eq(btree_lookup(&f.t, "x", 1, NULL, NULL), 0);
	ck_assert_int_eq(btree_delete(&f.t, "x", 1, NULL), 0);
	fx_done(&f);
}
END_TEST

START_TEST(test_bad_arguments)
{
	struct fx f;
	uint8_t big[CSV_NAME_MAX + 1];
	uint64_t ref;

	memset(big, 'q', sizeof(big));
	fx_init(&f, 4096, CSV_INDEX_ROOT_BYTES);
	ck_assert_int_eq(btree_insert(&f.t, "", 0, 1, 1), -EINVAL);
	ck_assert_int_eq(btree_insert(&f.t, big, sizeof(big), 1, 1), -ENAMETOOLONG);
	ck_assert_int_eq(btree_lookup(&f.t, "", 0, &ref, NULL), -EINVAL);
	ck_assert_int_eq(btree_lookup(&f.t, big, sizeof(big), &ref, NULL), -ENAMETOOLONG);
	ck_assert_int_eq(btree_delete(&f.t, "", 0, &ref), -EINVAL);
	ck_assert_int_eq(btree_replace(&f.t, big, sizeof(big), 1, 1, &ref), -ENAMETOOLONG);
	ck_assert_int_eq(btree_insert(&f.t, big, CSV_NAME_MAX, 1, 1), 0);
	ck_assert_int_eq(btree_lookup(&f.t, big, CSV_NAME_MAX, &ref, NULL), 0);
	ck_assert_uint_eq(ref, 1);

	/* Roots too small, or larger than an index block can take over. */
	struct csv_btree t = f.t;
	t.root_size = 256;
	ck_assert_int_eq(btree_lookup(&t, "a", 1, &ref, NULL), -EINVAL);
	t.root_size = 4096 - 0x40 + 8;
	ck_assert_int_eq(btree_insert(&t, "a", 1, 1, 1), -EINVAL);
	ck_assert_int_eq(btree_check(&t, NULL, NULL), -EINVAL);
	t = f.t;
	t.root = NULL;
	ck_assert_int_eq(btree_count(&t, &ref), -EINVAL);
	fx_done(&f);
}
END_TEST

START_TEST(test_long_names)
{
	struct fx f;
	uint8_t name[CSV_NAME_MAX];
	uint64_t ref, n;

	/* Entries of 272 bytes: 14 in a leaf, 7 in the root. */
	fx_init(&f, 4096, CSV_INDEX_ROOT_BYTES);
	for (unsigned i = 0; i < 600; i++) {
		memset(name, 'L', sizeof(name));
		name[0] = (uint8_t)(i % 7);          /* names differ at both ends */
		name[CSV_NAME_MAX - 2] = (uint8_t)(i >> 8);
		name[CSV_NAME_MAX - 1] = (uint8_t)i;
		req_int_eq(btree_insert(&f.t, name, sizeof(name), i, 1), 0);
		if (i % 50 == 0)
			assert_sound(&f.t);
	}
	assert_sound(&f.t);
	ck_assert_uint_ge(root_level(&f), 2);
	req_int_eq(btree_count(&f.t, &n), 0);
	req_uint_eq(n, 600);
	for (unsigned i = 0; i < 600; i++) {
		memset(name, 'L', sizeof(name));
		name[0] = (uint8_t)(i % 7);
		name[CSV_NAME_MAX - 2] = (uint8_t)(i >> 8);
		name[CSV_NAME_MAX - 1] = (uint8_t)i;
		req_int_eq(btree_lookup(&f.t, name, sizeof(name), &ref, NULL), 0);
		req_uint_eq(ref, i);
		/* The same bytes one shorter is not there. */
		req_int_eq(btree_lookup(&f.t, name, sizeof(name) - 1, &ref, NULL), -ENOENT);
	}
	for (unsigned i = 0; i < 600; i++) {
		unsigned k = (i * 7919u) % 600;  /* a permutation */
		memset(name, 'L', sizeof(name));
		name[0] = (uint8_t)(k % 7);
		name[CSV_NAME_MAX - 2] = (uint8_t)(k >> 8);
		name[CSV_NAME_MAX - 1] = (uint8_t)k;
		req_int_eq(btree_delete(&f.t, name, sizeof(name), &ref), 0);
		req_uint_eq(ref, k);
		if (i % 50 == 0)
			assert_sound(&f.t);
	}
	req(root_is_empty_leaf(&f));
	req_uint_eq(nodeio_mem_allocated(f.io), 0);
	fx_done(&f);
}
END_TEST

struct bname {
	uint8_t len;
	uint8_t b[8];
};

static int bname_cmp(const void *x, const void *y)
{
	const struct bname *a = x, *b = y;
	return name_order(a->b, a->len, b->b, b->len);
}

START_TEST(test_binary_names)
{
	/* Any bytes at all are names to the tree, ordered as unsigned bytes. */
	struct bname names[] = {
		{ 1, { 0x00 } }, { 2, { 0x00, 0x00 } }, { 1, { 0x01 } }, { 2, { 0x01, 0xff } },
		{ 1, { 0x7f } }, { 1, { 0x80 } }, { 1, { 0xff } }, { 2, { 0xff, 0x00 } },
		{ 3, { 0xff, 0xff, 0xff } }, { 1, { 'a' } }, { 2, { 'a', 0x00 } }, { 2, { 'a', '/' } },
		{ 2, { 'a', 'b' } }, { 1, { '/' } }, { 8, { 'a', 'b', 'c', 0, 'd', 0xfe, 1, 2 } },
	};
	size_t n = ARRAY_SIZE(names);
	struct collected c = { 0 };
	struct fx f;
	uint64_t ref;

	fx_init(&f, 4096, BTREE_ROOT_MIN_BYTES);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(btree_insert(&f.t, names[i].b, names[i].len, 100 + i, (uint8_t)i), 0);
	for (size_t i = 0; i < n; i++) {
		uint8_t type;
		ck_assert_int_eq(btree_lookup(&f.t, names[i].b, names[i].len, &ref, &type), 0);
		ck_assert_uint_eq(ref, 100 + i);
		ck_assert_uint_eq(type, i);
	}
	qsort(names, n, sizeof(names[0]), bname_cmp);
	ck_assert_int_eq(btree_iterate(&f.t, NULL, 0, collect_fn, &c), 0);
	ck_assert_uint_eq(c.n, n);
	for (size_t i = 0; i < n; i++) {
		ck_assert_uint_eq(c.lens[i], names[i].len);
		ck_assert_mem_eq(c.names[i], names[i].b, names[i].len);
	}
	assert_sound(&f.t);
	collected_free(&c);
	fx_done(&f);
}
END_TEST

/* ---- Randomized model test ----------------------------------------------- */

struct mname {
	uint64_t ref;
	uint8_t type;
	uint8_t len;
	uint8_t b[CSV_NAME_MAX];
};

/* The model: the names in order, a sorted array kept in chunks so that an
 * insert or delete moves at most one chunk (a memmove of a whole array per
 * operation is slow under AddressSanitizer). */
#define MCHUNK 256u

struct mchunk {
	unsigned n;
	struct mname *v[MCHUNK];
};

struct model {
	struct mchunk **c;
	size_t nc, ccap;
	size_t n;
};

static int mname_cmp(const struct mname *a, const uint8_t *b, size_t blen)
{
	return name_order(a->b, a->len, b, blen);
}

/* Chunk k and offset o of global index at (at == n: the end of the last). */
static void model_locate(const struct model *m, size_t at, size_t *k, unsigned *o)
{
	size_t i = 0;
	for (; i + 1 < m->nc && at >= m->c[i]->n; i++)
		at -= m->c[i]->n;
	*k = i;
	*o = (unsigned)at;
}

static struct mname *model_get(const struct model *m, size_t at)
{
	size_t k;
	unsigned o;
	req(at < m->n);
	model_locate(m, at, &k, &o);
	return m->c[k]->v[o];
}

/* Index of the first name >= b; *found if equal. */
static size_t model_find(const struct model *m, const uint8_t *b, size_t len, bool *found)
{
	size_t base = 0, k = 0;
	/* The first chunk whose last name is >= b. */
	while (k < m->nc) {
		const struct mchunk *c = m->c[k];
		if (mname_cmp(c->v[c->n - 1], b, len) >= 0)
			break;
		base += c->n;
		k++;
	}
	*found = false;
	if (k == m->nc)
		return base;
	const struct mchunk *c = m->c[k];
	unsigned lo = 0, hi = c->n;
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		if (mname_cmp(c->v[mid], b, len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < c->n && mname_cmp(c->v[lo], b, len) == 0;
	return base + lo;
}

static void model_insert(struct model *m, size_t at, struct mname *e)
{
	size_t k;
	unsigned o;

	if (m->nc == m->ccap) {
		m->ccap = m->ccap ? m->ccap * 2 : 64;
		m->c = realloc(m->c, m->ccap * sizeof(*m->c));
		req_ptr_nonnull(m->c);
	}
	if (m->nc == 0) {
		m->c[0] = calloc(1, sizeof(struct mchunk));
		req_ptr_nonnull(m->c[0]);
		m->nc = 1;
	}
	model_locate(m, at, &k, &o);
	struct mchunk *c = m->c[k];
	if (c->n == MCHUNK) {
		/* Split: the upper half goes to a new chunk after this one. */
		struct mchunk *d = calloc(1, sizeof(*d));
		req_ptr_nonnull(d);
		d->n = MCHUNK / 2;
		memcpy(d->v, c->v + MCHUNK / 2, d->n * sizeof(d->v[0]));
		c->n = MCHUNK / 2;
		memmove(m->c + k + 2, m->c + k + 1, (m->nc - k - 1) * sizeof(*m->c));
		m->c[k + 1] = d;
		m->nc++;
		if (o > c->n) {
			o -= c->n;
			c = d;
		}
	}
	memmove(c->v + o + 1, c->v + o, (c->n - o) * sizeof(c->v[0]));
	c->v[o] = e;
	c->n++;
	m->n++;
}

static void model_remove(struct model *m, size_t at)
{
	size_t k;
	unsigned o;

	req(at < m->n);
	model_locate(m, at, &k, &o);
	struct mchunk *c = m->c[k];
	free(c->v[o]);
	memmove(c->v + o, c->v + o + 1, (c->n - o - 1) * sizeof(c->v[0]));
	c->n--;
	m->n--;
	if (c->n == 0) {
		free(c);
		memmove(m->c + k, m->c + k + 1, (m->nc - k - 1) * sizeof(*m->c));
		m->nc--;
	}
}

static void model_free(struct model *m)
{
	for (size_t k = 0; k < m->nc; k++) {
		for (unsigned i = 0; i < m->c[k]->n; i++)
			free(m->c[k]->v[i]);
		free(m->c[k]);
	}
	free(m->c);
	memset(m, 0, sizeof(*m));
}

static uint8_t prefixes[16][200];
static uint8_t prefix_len[16];

static uint8_t rnd_byte(void)
{
	for (;;) {
		uint8_t b = (uint8_t)(rnd() % 255 + 1);
		if (b != '/')
			return b;
	}
}

/* Varied names: short ones from a small alphabet (so they collide), long
 * ones with shared prefixes, and uniformly random ones of 1..255 bytes. */
static void gen_name(struct mname *e)
{
	unsigned mode = (unsigned)(rnd() % 10);
	if (mode < 4) {
		e->len = (uint8_t)(1 + rnd() % 6);
		for (unsigned i = 0; i < e->len; i++)
			e->b[i] = (uint8_t)('a' + rnd() % 4);
	} else if (mode < 7) {
		unsigned p = (unsigned)(rnd() % 16), pl = prefix_len[p];
		e->len = (uint8_t)(pl + 1 + rnd() % (CSV_NAME_MAX - pl));
		memcpy(e->b, prefixes[p], pl);
		for (unsigned i = pl; i < e->len; i++)
			e->b[i] = (uint8_t)(rnd() % 3 ? 'a' + rnd() % 3 : rnd_byte());
	} else {
		e->len = (uint8_t)(1 + rnd() % CSV_NAME_MAX);
		for (unsigned i = 0; i < e->len; i++)
			e->b[i] = rnd_byte();
	}
	e->ref = rnd();
	e->type = (uint8_t)(rnd() % 15);
}

static void model_compare(struct fx *f, const struct model *m)
{
	struct collected c = { 0 };
	uint64_t n;

	req_int_eq(btree_iterate(&f->t, NULL, 0, collect_fn, &c), 0);
	req_uint_eq(c.n, m->n);
	size_t i = 0;
	for (size_t k = 0; k < m->nc; k++) {
		for (unsigned j = 0; j < m->c[k]->n; j++, i++) {
			const struct mname *e = m->c[k]->v[j];
			req_uint_eq(c.lens[i], e->len);
			req_mem_eq(c.names[i], e->b, e->len);
			req_uint_eq(c.refs[i], e->ref);
			req_uint_eq(c.types[i], e->type);
		}
	}
	req_uint_eq(i, m->n);
	req_int_eq(btree_count(&f->t, &n), 0);
	req_uint_eq(n, m->n);
	struct report r;
	req_int_eq(run_check(&f->t, &r), 0);
	req_uint_eq(r.nentries, m->n);
	/* Every allocated block is a node of the tree. */
	req_uint_eq(r.nnodes, nodeio_mem_allocated(f->io));
	rep_free(&r);
	collected_free(&c);
}

static const struct {
	uint32_t node_size, root_size;
	unsigned inserts;
} model_params[] = {
	{ 4096, CSV_INDEX_ROOT_BYTES, 100000 },
	{ 65536, CSV_INDEX_ROOT_BYTES, 100000 },
	{ 4096, BTREE_ROOT_MIN_BYTES, 30000 },
	{ 16384, 1024, 30000 },
};

START_TEST(test_model)
{
	uint32_t node_size = model_params[_i].node_size, root_size = model_params[_i].root_size;
	unsigned target = model_params[_i].inserts, inserted = 0, max_level = 0;
	struct model m = { 0 };
	struct fx f;
	uint64_t ref, ops = 0, seed = 0x5eed0000u + (uint64_t)_i;
	uint8_t type;
	double t0 = now_s();

	fprintf(stderr, "model: node %" PRIu32 ", root %" PRIu32 ", seed %#" PRIx64 "\n",
		node_size, root_size, seed);
	rnd_seed(seed);
	for (unsigned p = 0; p < 16; p++) {
		prefix_len[p] = (uint8_t)(1 + rnd() % 199);
		for (unsigned k = 0; k < prefix_len[p]; k++)
			prefixes[p][k] = rnd_byte();
	}
	fx_init(&f, node_size, root_size);

	while (inserted < target) {
		unsigned op = (unsigned)(rnd() % 100);
		bool found;
		ops++;
		if (op < 60 || m.n == 0) {
			struct mname *e = malloc(sizeof(*e));
			req_ptr_nonnull(e);
			gen_name(e);
			size_t at = model_find(&m, e->b, e->len, &found);
			int r = btree_insert(&f.t, e->b, e->len, e->ref, e->type);
			if (found) {
				req_int_eq(r, -EEXIST);
				free(e);
			} else {
				req_int_eq(r, 0);
				model_insert(&m, at, e);
				inserted++;
			}
		} else if (op < 85) {
			size_t at = (size_t)(rnd() % m.n);
			struct mname *e = model_get(&m, at);
			req_int_eq(btree_delete(&f.t, e->b, e->len, &ref), 0);
			req_uint_eq(ref, e->ref);
			model_remove(&m, at);
		} else if (op < 93) {
			struct mname *e = model_get(&m, (size_t)(rnd() % m.n));
			req_int_eq(btree_lookup(&f.t, e->b, e->len, &ref, &type), 0);
			req_uint_eq(ref, e->ref);
			req_uint_eq(type, e->type);
		} else if (op < 97) {
			struct mname x;
			gen_name(&x);
			model_find(&m, x.b, x.len, &found);
			if (!found) {
				req_int_eq(btree_lookup(&f.t, x.b, x.len, &ref, &type), -ENOENT);
				req_int_eq(btree_delete(&f.t, x.b, x.len, &ref), -ENOENT);
				req_int_eq(btree_replace(&f.t, x.b, x.len, 1, 1, &ref), -ENOENT);
			}
		} else {
			struct mname *e = model_get(&m, (size_t)(rnd() % m.n));
			uint64_t nref = rnd();
			uint8_t ntype = (uint8_t)(rnd() % 15);
			req_int_eq(btree_replace(&f.t, e->b, e->len, nref, ntype, &ref), 0);
			req_uint_eq(ref, e->ref);
			e->ref = nref;
			e->type = ntype;
		}
		max_level = MAX(max_level, root_level(&f));
		if (ops % 10000 == 0 || (ops < 3000 && ops % 97 == 0))
			model_compare(&f, &m);
	}
	model_compare(&f, &m);
	fprintf(stderr, "model: %" PRIu64 " operations, %zu names, %zu blocks, root level %u (max %u)\n",
		ops, m.n, nodeio_mem_allocated(f.io), root_level(&f), max_level);
	ck_assert_uint_ge(max_level, 1);

	/* Delete everything in random order. */
	for (size_t k = m.n; k > 0; k--) {
		size_t at = (size_t)(rnd() % m.n);
		struct mname *e = model_get(&m, at);
		req_int_eq(btree_delete(&f.t, e->b, e->len, &ref), 0);
		req_uint_eq(ref, e->ref);
		model_remove(&m, at);
		if (k % 10000 == 0 || (k < 3000 && k % 89 == 0))
			model_compare(&f, &m);
	}
	model_compare(&f, &m);
	req_uint_eq(nodeio_mem_allocated(f.io), 0);
	req(root_is_empty_leaf(&f));
	fprintf(stderr, "model: done in %.1f s\n", now_s() - t0);
	model_free(&m);
	fx_done(&f);
}
END_TEST

/* ---- Iteration ------------------------------------------------------------ */

static void seq_name(unsigned i, char out[16], size_t *len)
{
	*len = (size_t)snprintf(out, 16, "name%05u", i);
}

static void build_seq(struct fx *f, unsigned n)
{
	char name[16];
	size_t len;
	for (unsigned k = 0; k < n; k++) {
		unsigned i = (unsigned)(((uint64_t)k * 7919u) % n);  /* n not a multiple of 7919 */
		seq_name(i, name, &len);
		req_int_eq(btree_insert(&f->t, name, len, i, (uint8_t)(i % 7)), 0);
	}
}

START_TEST(test_iterate_after)
{
	const unsigned n = 5000;
	struct collected c = { 0 };
	struct fx f;
	char name[16];
	size_t len;

	fx_init(&f, 4096, CSV_INDEX_ROOT_BYTES);
	build_seq(&f, n);
	assert_sound(&f.t);

	req_int_eq(btree_iterate(&f.t, NULL, 0, collect_fn, &c), 0);
	req_uint_eq(c.n, n);
	for (unsigned i = 0; i < n; i++) {
		seq_name(i, name, &len);
		req_uint_eq(c.lens[i], len);
		req_mem_eq(c.names[i], name, len);
		req_uint_eq(c.refs[i], i);
		req_uint_eq(c.types[i], i % 7);
	}
	collected_free(&c);

	/* After a present name: the rest, from the next one. */
	req_int_eq(btree_iterate(&f.t, "name02500", 9, collect_fn, &c), 0);
	req_uint_eq(c.n, n - 2501);
	req_uint_eq(c.refs[0], 2501);
	req_uint_eq(c.refs[c.n - 1], n - 1);
	collected_free(&c);

	/* After an absent name between two. */
	req_int_eq(btree_iterate(&f.t, "name02500x", 10, collect_fn, &c), 0);
	req_uint_eq(c.n, n - 2501);
	req_uint_eq(c.refs[0], 2501);
	collected_free(&c);

	/* Before everything, the empty name, after everything. */
	req_int_eq(btree_iterate(&f.t, "a", 1, collect_fn, &c), 0);
	req_uint_eq(c.n, n);
	collected_free(&c);
	req_int_eq(btree_iterate(&f.t, "", 0, collect_fn, &c), 0);
	req_uint_eq(c.n, n);
	collected_free(&c);
	req_int_eq(btree_iterate(&f.t, "name04999", 9, collect_fn, &c), 0);
	req_uint_eq(c.n, 0);
	req_int_eq(btree_iterate(&f.t, "zzz", 3, collect_fn, &c), 0);
	req_uint_eq(c.n, 0);

	/* From every position (leaf ends included), one step, stopping early. */
	for (unsigned i = 0; i + 1 < n; i++) {
		seq_name(i, name, &len);
		c.stop_after = 1;
		c.stop_value = 7;
		req_int_eq(btree_iterate(&f.t, name, len, collect_fn, &c), 7);
		req_uint_eq(c.n, 1);
		req_uint_eq(c.refs[0], i + 1);
		c.n = 0;
	}
	/* Stop after 1234 with a negative value: it is returned as is. */
	c.stop_after = 1234;
	c.stop_value = -EINTR;
	req_int_eq(btree_iterate(&f.t, NULL, 0, collect_fn, &c), -EINTR);
	req_uint_eq(c.n, 1234);
	collected_free(&c);
	fx_done(&f);
}
END_TEST

/* ---- Replace and destroy ----------------------------------------------- */

START_TEST(test_replace)
{
	struct fx f;
	uint64_t ref, old = 0;
	uint8_t type;
	char name[16];
	size_t len;

	fx_init(&f, 4096, CSV_INDEX_ROOT_BYTES);
	req_int_eq(btree_insert(&f.t, "target", 6, 10, 1), 0);
	req_int_eq(btree_replace(&f.t, "target", 6, 20, 2, &old), 0);
	req_uint_eq(old, 10);
	req_int_eq(btree_lookup(&f.t, "target", 6, &ref, &type), 0);
	req_uint_eq(ref, 20);
	req_uint_eq(type, 2);
	req_int_eq(btree_replace(&f.t, "targe", 5, 30, 3, &old), -ENOENT);
	req_int_eq(btree_replace(&f.t, "targets", 7, 30, 3, &old), -ENOENT);

	/* In a tree of several levels. */
	build_seq(&f, 3000);
	ck_assert_uint_ge(root_level(&f), 1);
	size_t before = nodeio_mem_allocated(f.io);
	for (unsigned i = 0; i < 3000; i += 3) {
		seq_name(i, name, &len);
		req_int_eq(btree_replace(&f.t, name, len, 1000000 + i, 9, &old), 0);
		req_uint_eq(old, i);
	}
	req_uint_eq(nodeio_mem_allocated(f.io), before);
	for (unsigned i = 0; i < 3000; i++) {
		seq_name(i, name, &len);
		req_int_eq(btree_lookup(&f.t, name, len, &ref, &type), 0);
		req_uint_eq(ref, i % 3 ? i : 1000000 + i);
		req_uint_eq(type, i % 3 ? i % 7 : 9);
	}
	assert_sound(&f.t);
	fx_done(&f);
}
END_TEST

START_TEST(test_destroy)
{
	struct fx f;
	uint64_t n;

	fx_init(&f, 4096, CSV_INDEX_ROOT_BYTES);
	build_seq(&f, 20000);
	ck_assert_uint_gt(nodeio_mem_allocated(f.io), 50);
	ck_assert_int_eq(btree_destroy(&f.t), 0);
	ck_assert_uint_eq(nodeio_mem_allocated(f.io), 0);
	ck_assert(root_is_empty_leaf(&f));
	ck_assert_int_eq(btree_count(&f.t, &n), 0);
	ck_assert_uint_eq(n, 0);
	assert_sound(&f.t);
	/* The tree is usable again. */
	build_seq(&f, 2000);
	ck_assert_int_eq(btree_count(&f.t, &n), 0);
	ck_assert_uint_eq(n, 2000);
	assert_sound(&f.t);
	ck_assert_int_eq(btree_destroy(&f.t), 0);
	ck_assert_uint_eq(nodeio_mem_allocated(f.io), 0);
	fx_done(&f);
}
END_TEST

START_TEST(test_destroy_damaged)
{
	struct fx f;
	struct report r;

	fx_init(&f, 4096, CSV_INDEX_ROOT_BYTES);
	build_seq(&f, 20000);
	ck_assert_int_eq(run_check(&f.t, &r), 0);
	/* Damage one leaf: it cannot be verified as ours, so it stays. */
	uint64_t victim = r.nodes[r.nnodes / 2];
	ck_assert_uint_eq(r.levels[r.nnodes / 2], 0);
	nodeio_mem_peek(f.io, victim)[0x60] ^= 0x55;
	ck_assert_int_eq(btree_destroy(&f.t), 1);
	ck_assert(root_is_empty_leaf(&f));
	/* Everything else went back; the damaged block is left for fsck. */
	ck_assert_uint_eq(nodeio_mem_allocated(f.io), 1);
	ck_assert_ptr_nonnull(nodeio_mem_peek(f.io, victim));
	/* A root that cannot be parsed: nothing can be found to free. */
	memset(f.root, 0xff, CSV_INDEX_ROOT_BYTES);
	ck_assert_int_eq(btree_destroy(&f.t), 1);
	ck_assert(root_is_empty_leaf(&f));
	rep_free(&r);
	fx_done(&f);
}
END_TEST

/* ---- Allocation failures ---------------------------------------------- */

/* The memory store with allocation failing on a countdown, counting writes. */
static const struct csv_nodeio_ops *real_ops;
static int alloc_countdown = -1;  /* -1: never fail */
static unsigned writes;

static int fa_read(struct csv_nodeio *io, uint64_t b, uint32_t magic, void *buf)
{
	return real_ops->read(io, b, magic, buf);
}

static int fa_write(struct csv_nodeio *io, uint64_t b, uint32_t magic, void *buf)
{
	writes++;
	return real_ops->write(io, b, magic, buf);
}

static int fa_alloc(struct csv_nodeio *io, uint64_t *ret)
{
	if (alloc_countdown == 0)
		return -ENOSPC;
	if (alloc_countdown > 0)
		alloc_countdown--;
	return real_ops->alloc(io, ret);
}

static int fa_free(struct csv_nodeio *io, uint64_t b)
{
	return real_ops->free(io, b);
}

static const struct csv_nodeio_ops fa_ops = { fa_read, fa_write, fa_alloc, fa_free };

START_TEST(test_alloc_failure)
{
	static uint8_t names[3000][CSV_NAME_MAX];
	static size_t lens[3000];
	uint8_t before[CSV_INDEX_ROOT_BYTES];
	unsigned failed = 0, failed_del = 0, succeeded = 0, live = 0;
	struct fx f;
	uint64_t ref;

	rnd_seed(0xa110c);
	fx_init(&f, 4096, CSV_INDEX_ROOT_BYTES);
	real_ops = f.io->ops;
	f.io->ops = &fa_ops;
	for (unsigned i = 0; i < 4000; i++) {
		bool del = i % 4 == 3 && live > 0;
		unsigned j = del ? (unsigned)(rnd() % live) : live;
		if (!del) {
			/* Long names split often, so that many inserts need blocks;
			 * deleting a leaf's first name can grow a separator and
			 * split an inner node too. */
			req(live < 3000);
			lens[j] = 120 + rnd() % 136;
			for (size_t k = 0; k < lens[j]; k++)
				names[j][k] = (uint8_t)('a' + rnd() % 26);
		}
		size_t allocated = nodeio_mem_allocated(f.io);
		memcpy(before, f.root, sizeof(before));
		writes = 0;
		alloc_countdown = (int)(rnd() % 3);
		int r = del ? btree_delete(&f.t, names[j], lens[j], &ref)
			    : btree_insert(&f.t, names[j], lens[j], j, 1);
		alloc_countdown = -1;
		if (r == -ENOSPC) {
			/* Nothing written, nothing kept, the tree as before. */
			failed++;
			failed_del += del;
			req_uint_eq(writes, 0);
			req_uint_eq(nodeio_mem_allocated(f.io), allocated);
			req_mem_eq(f.root, before, sizeof(before));
			req_int_eq(btree_lookup(&f.t, names[j], lens[j], &ref, NULL), del ? 0 : -ENOENT);
			r = del ? btree_delete(&f.t, names[j], lens[j], &ref)
				: btree_insert(&f.t, names[j], lens[j], j, 1);
		} else {
			succeeded++;
		}
		req_int_eq(r, 0);
		req_int_eq(btree_lookup(&f.t, names[j], lens[j], &ref, NULL), del ? -ENOENT : 0);
		if (del) {
			live--;
			memcpy(names[j], names[live], lens[live]);
			lens[j] = lens[live];
		} else {
			live++;
		}
		if (i % 100 == 0)
			assert_sound(&f.t);
	}
	assert_sound(&f.t);
	fprintf(stderr, "alloc failure: %u operations failed cleanly (%u deletes), %u succeeded\n",
		failed, failed_del, succeeded);
	ck_assert_uint_gt(failed, 20);
	ck_assert_int_eq(btree_destroy(&f.t), 0);
	ck_assert_uint_eq(nodeio_mem_allocated(f.io), 0);
	f.io->ops = real_ops;
	fx_done(&f);
}
END_TEST

/* Deleting the first name of a leaf gives its separator the next name; a
 * longer one can overflow the inner node, which then needs a new block.
 * With allocation failing that delete must change nothing. */
START_TEST(test_alloc_failure_delete)
{
	const unsigned n = 3000;
	uint8_t name[CSV_NAME_MAX], before[CSV_INDEX_ROOT_BYTES];
	unsigned failed = 0, tried = 0;
	struct report r;
	struct fx f;
	uint64_t ref;

	fx_init(&f, 4096, CSV_INDEX_ROOT_BYTES);
	real_ops = f.io->ops;
	f.io->ops = &fa_ops;
	/* Short and 255-byte names alternate in order. */
	for (unsigned k = 0; k < n; k++) {
		unsigned i = (unsigned)(((uint64_t)k * 7919u) % n);
		size_t len = i % 2 ? CSV_NAME_MAX : 7;
		memset(name, '~', sizeof(name));
		snprintf((char *)name, 7, "%06u", i);
		name[6] = '~';
		req_int_eq(btree_insert(&f.t, name, len, i, 1), 0);
	}
	ck_assert_int_eq(run_check(&f.t, &r), 0);
	for (size_t b = 0; b < r.nnodes; b++) {
		const uint8_t *p = nodeio_mem_peek(f.io, r.nodes[b]);
		if (r.levels[b] != 0 || !p)
			continue;  /* inner, or merged away meanwhile */
		const struct csv_d_index_block *blk_hdr = (const void *)p;
		const uint8_t *e0 = p + sizeof(*blk_hdr), *e1 = e0 + CSV_INDEX_ENTRY_SIZE(e0[8]);
		if (le16_to_cpu(blk_hdr->node.count) < 2 || e0[8] != 7 || e1[8] != CSV_NAME_MAX)
			continue;
		size_t len = e0[8];
		memcpy(name, e0 + 10, len);
		size_t allocated = nodeio_mem_allocated(f.io);
		memcpy(before, f.root, sizeof(before));
		writes = 0;
		alloc_countdown = 0;
		int rr = btree_delete(&f.t, name, len, &ref);
		alloc_countdown = -1;
		tried++;
		if (rr == -ENOSPC) {
			failed++;
			req_uint_eq(writes, 0);
			req_uint_eq(nodeio_mem_allocated(f.io), allocated);
			req_mem_eq(f.root, before, sizeof(before));
			req_int_eq(btree_lookup(&f.t, name, len, &ref, NULL), 0);
		} else {
			req_int_eq(rr, 0);
		}
	}
	rep_free(&r);
	assert_sound(&f.t);
	fprintf(stderr, "alloc failure: %u of %u deletes of a leaf's first name needed a block\n",
		failed, tried);
	ck_assert_uint_gt(failed, 0);
	f.io->ops = real_ops;
	fx_done(&f);
}
END_TEST

/* ---- Corruption ------------------------------------------------------------ */

/* A leaf from the middle of the tree (not the one holding the smallest
 * names) and a level-1 node. */
static void pick_nodes(struct fx *f, uint64_t *leaf, uint64_t *inner)
{
	struct report r;
	size_t leaves = 0, k = 0;
	ck_assert_int_eq(run_check(&f->t, &r), 0);
	*leaf = *inner = 0;
	for (size_t i = 0; i < r.nnodes; i++)
		leaves += r.levels[i] == 0;
	ck_assert_uint_ge(leaves, 3);
	for (size_t i = 0; i < r.nnodes; i++) {
		if (r.levels[i] == 0 && k++ == leaves / 2)
			*leaf = r.nodes[i];
		if (r.levels[i] == 1 && !*inner)
			*inner = r.nodes[i];
	}
	ck_assert_uint_ne(*leaf, 0);
	ck_assert_uint_ne(*inner, 0);
	rep_free(&r);
}

static struct csv_d_index_block *blk(struct fx *f, uint64_t b)
{
	uint8_t *p = nodeio_mem_peek(f->io, b);
	ck_assert_ptr_nonnull(p);
	return (struct csv_d_index_block *)(void *)p;
}

/* The first name in a leaf block. */
static size_t leaf_first_name(struct fx *f, uint64_t b, uint8_t *out)
{
	const uint8_t *e = nodeio_mem_peek(f->io, b) + sizeof(struct csv_d_index_block);
	memcpy(out, e + 10, e[8]);
	return e[8];
}

START_TEST(test_corrupt_checksum)
{
	struct fx f;
	struct report r;
	uint64_t leaf, inner, ref;
	uint8_t name[CSV_NAME_MAX];
	struct collected c = { 0 };

	fx_init(&f, 4096, CSV_INDEX_ROOT_BYTES);
	build_seq(&f, 20000);
	pick_nodes(&f, &leaf, &inner);
	size_t nl = leaf_first_name(&f, leaf, name);
	size_t allocated = nodeio_mem_allocated(f.io);

	/* One byte of a leaf, CRC left stale. */
	uint8_t *p = nodeio_mem_peek(f.io, leaf);
	p[0x200] ^= 0x01;
	int n = run_check(&f.t, &r);
	ck_assert_int_ge(n, 1);
	ck_assert(reported(&r, leaf, "checksum mismatch"));
	rep_free(&r);
	ck_assert_int_eq(btree_lookup(&f.t, name, nl, &ref, NULL), -EBADMSG);
	name[nl] = 'x';  /* sorts right after the leaf's first name */
	ck_assert_int_eq(btree_insert(&f.t, name, nl + 1, 1, 1), -EBADMSG);
	ck_assert_int_eq(btree_delete(&f.t, name, nl, &ref), -EBADMSG);
	ck_assert_int_lt(btree_iterate(&f.t, NULL, 0, collect_fn, &c), 0);
	ck_assert_uint_eq(nodeio_mem_allocated(f.io), allocated);
	collected_free(&c);
	/* Names elsewhere are still found. */
	ck_assert_int_eq(btree_lookup(&f.t, "name00000", 9, &ref, NULL), 0);
	p[0x200] ^= 0x01;
	assert_sound(&f.t);

	/* An inner block: reported, and nothing below it is visited. */
	p = nodeio_mem_peek(f.io, inner);
	p[0x58] ^= 0x80;
	n = run_check(&f.t, &r);
	ck_assert_int_ge(n, 1);
	ck_assert(reported(&r, inner, "checksum mismatch"));
	ck_assert_uint_lt(r.nentries, 20000);
	rep_free(&r);
	p[0x58] ^= 0x80;
	assert_sound(&f.t);
	fx_done(&f);
}
END_TEST

START_TEST(test_corrupt_structure)
{
	struct fx f;
	struct report r;
	uint64_t leaf, inner, ref;
	uint8_t name[CSV_NAME_MAX], saved[4096];
	uint32_t ns = 4096;

	fx_init(&f, ns, CSV_INDEX_ROOT_BYTES);
	build_seq(&f, 20000);
	pick_nodes(&f, &leaf, &inner);
	size_t nl = leaf_first_name(&f, leaf, name);
	struct csv_d_index_block *b;

#define DAMAGE(blocknr, stmt)                                         \
	do {                                                          \
		memcpy(saved, nodeio_mem_peek(f.io, blocknr), ns);    \
		b = blk(&f, blocknr);                                 \
		stmt;                                                 \
		meta_reseal(b, ns);                                   \
		ck_assert_int_ge(run_check(&f.t, &r), 1);             \
	} while (0)
#define RESTORE(blocknr)                                              \
	do {                                                          \
		rep_free(&r);                                         \
		memcpy(nodeio_mem_peek(f.io, blocknr), saved, ns);    \
		assert_sound(&f.t);                                   \
	} while (0)

	/* used beyond the block: reads refuse the node. */
	DAMAGE(leaf, b->node.used = cpu_to_le32(ns));
	ck_assert(reported(&r, leaf, "bytes of entries"));
	ck_assert_int_eq(btree_lookup(&f.t, name, nl, &ref, NULL), -EUCLEAN);
	RESTORE(leaf);

	/* A count that does not match the entries. */
	DAMAGE(leaf, b->node.count = cpu_to_le16(le16_to_cpu(b->node.count) + 1));
	ck_assert(reported(&r, leaf, "runs past"));
	ck_assert_int_eq(btree_lookup(&f.t, name, nl, &ref, NULL), -EUCLEAN);
	RESTORE(leaf);

	/* An entry's name length no longer matching the layout. */
	DAMAGE(leaf, ((uint8_t *)b)[0x50 + 8] = 250);
	ck_assert(reported(&r, leaf, NULL));
	ck_assert_int_eq(btree_lookup(&f.t, name, nl, &ref, NULL), -EUCLEAN);
	RESTORE(leaf);

	/* Names out of order inside a leaf (the first one made bigger). */
	DAMAGE(leaf, ((uint8_t *)b)[0x50 + 10 + 8] = 'z');
	ck_assert(reported(&r, leaf, "out of order"));
	ck_assert_int_eq(btree_lookup(&f.t, name, nl, &ref, NULL), -EUCLEAN);
	RESTORE(leaf);

	/* The leaf chain broken. */
	DAMAGE(leaf, b->node.next_leaf = cpu_to_le64(0));
	ck_assert(reported(&r, leaf, "next_leaf"));
	RESTORE(leaf);
	DAMAGE(leaf, b->node.next_leaf = cpu_to_le64(leaf));
	ck_assert(reported(&r, leaf, "next_leaf"));
	RESTORE(leaf);

	/* A leaf claiming to be inner, another directory's block. */
	DAMAGE(leaf, b->node.level = cpu_to_le16(1));
	ck_assert(reported(&r, leaf, "level 1, expected 0"));
	ck_assert_int_eq(btree_lookup(&f.t, name, nl, &ref, NULL), -EUCLEAN);
	RESTORE(leaf);
	DAMAGE(leaf, b->owner = cpu_to_le64(OWNER + 1));
	ck_assert(reported(&r, leaf, "belongs to directory"));
	ck_assert_int_eq(btree_lookup(&f.t, name, nl, &ref, NULL), -EUCLEAN);
	RESTORE(leaf);

	/* Inner nodes: a separator no longer the smallest name below it and a
	 * child reached twice (both found at the child), a child at block 0,
	 * a first entry with a name. */
	uint8_t *e1 = (uint8_t *)blk(&f, inner) + 0x50 + 16;  /* entry 1, after the empty one */
	ck_assert_uint_gt(e1[8], 0);
	DAMAGE(inner, ((uint8_t *)b)[0x50 + 16 + 10 + e1[8] - 1] -= 1);
	ck_assert(reported_any(&r, "separator"));
	RESTORE(inner);
	DAMAGE(inner, memcpy((uint8_t *)b + 0x50 + 16, (uint8_t *)b + 0x50, 8));
	ck_assert(reported_any(&r, "reached twice"));
	RESTORE(inner);
	DAMAGE(inner, memset((uint8_t *)b + 0x50 + 16, 0, 8));
	ck_assert(reported(&r, inner, "block 0"));
	RESTORE(inner);
	DAMAGE(inner, ((uint8_t *)b)[0x50 + 8] = 1);
	ck_assert(reported(&r, inner, "first entry"));
	ck_assert_int_eq(btree_lookup(&f.t, name, nl, &ref, NULL), -EUCLEAN);
	RESTORE(inner);

	/* The root: a level beyond the limit, used beyond its size. */
	uint8_t root_saved[CSV_INDEX_ROOT_BYTES];
	memcpy(root_saved, f.root, sizeof(root_saved));
	((struct csv_d_index_node *)(void *)f.root)->level = cpu_to_le16(40);
	ck_assert_int_ge(run_check(&f.t, &r), 1);
	ck_assert(reported(&r, 0, "level"));
	rep_free(&r);
	ck_assert_int_eq(btree_lookup(&f.t, name, nl, &ref, NULL), -EUCLEAN);
	memcpy(f.root, root_saved, sizeof(root_saved));
	((struct csv_d_index_node *)(void *)f.root)->used = cpu_to_le32(5000);
	ck_assert_int_ge(run_check(&f.t, &r), 1);
	ck_assert(reported(&r, 0, NULL));
	rep_free(&r);
	ck_assert_int_eq(btree_insert(&f.t, "new", 3, 1, 1), -EUCLEAN);
	memcpy(f.root, root_saved, sizeof(root_saved));
	assert_sound(&f.t);
	fx_done(&f);
#undef DAMAGE
#undef RESTORE
}
END_TEST

static int count_capped(void *ud, const uint8_t *name, size_t len, uint64_t ref, uint8_t type)
{
	uint64_t *n = ud;
	req(len >= 1 && len <= CSV_NAME_MAX);
	return ++*n > 10000000 ? 1 : 0;
}

/* Throws every read operation at a root; only crashing or hanging fails. */
static void poke_reads(struct fx *f)
{
	uint64_t ref, n = 0;
	uint8_t name[16];
	size_t len;

	int c = btree_check(&f->t, NULL, NULL);
	req_int_ge(c, 0);
	for (int k = 0; k < 4; k++) {
		len = 1 + rnd() % 12;
		for (size_t i = 0; i < len; i++)
			name[i] = (uint8_t)("name0123456789"[rnd() % 14]);
		int r = btree_lookup(&f->t, name, len, &ref, NULL);
		req(r == 0 || r < 0);
	}
	int r = btree_iterate(&f->t, NULL, 0, count_capped, &n);
	req_int_ne(r, 1);  /* never looped past the cap */
	n = 0;
	r = btree_iterate(&f->t, "name01000", 9, count_capped, &n);
	req_int_ne(r, 1);
	r = btree_count(&f->t, &n);
	req_int_le(r, 0);
}

START_TEST(test_garbage_roots)
{
	struct fx f;
	uint8_t good[CSV_INDEX_ROOT_BYTES];
	struct report r;

	rnd_seed(0xbadc0ffee);
	fx_init(&f, 4096, CSV_INDEX_ROOT_BYTES);
	build_seq(&f, 3000);
	req_int_eq(run_check(&f.t, &r), 0);
	memcpy(good, f.root, sizeof(good));
	size_t allocated = nodeio_mem_allocated(f.io);

	for (unsigned it = 0; it < 4000; it++) {
		uint8_t *root = f.root;
		unsigned mode = it % 4;
		if (mode == 0) {
			/* Anything. */
			for (size_t i = 0; i < sizeof(good); i++)
				root[i] = (uint8_t)rnd();
		} else if (mode == 1) {
			/* A plausible header over random entries pointing at real blocks. */
			for (size_t i = 0; i < sizeof(good); i++)
				root[i] = (uint8_t)rnd();
			struct csv_d_index_node h = {
				.level = cpu_to_le16((uint16_t)(rnd() % 4)),
				.count = cpu_to_le16((uint16_t)(rnd() % 130)),
				.used = cpu_to_le32((uint32_t)(rnd() % 2100)),
				.next_leaf = cpu_to_le64(rnd() % 3 ? 0 : r.nodes[rnd() % r.nnodes]),
			};
			memcpy(root, &h, sizeof(h));
			for (uint32_t o = 16; o + 16 <= sizeof(good); o += 8 * (1 + rnd() % 6)) {
				le64 child = cpu_to_le64(r.nodes[rnd() % r.nnodes]);
				memcpy(root + o, &child, 8);
				root[o + 8] = (uint8_t)(rnd() % 4 ? rnd() % 24 : rnd());
			}
		} else if (mode == 2) {
			/* The real root with a few bytes changed. */
			memcpy(root, good, sizeof(good));
			for (unsigned k = 1 + (unsigned)(rnd() % 8); k > 0; k--)
				root[rnd() % 320] ^= (uint8_t)(1 + rnd() % 255);
		} else {
			/* A well-formed inner root over random real blocks at a
			 * random level, separators in order or not. */
			unsigned cnt = 1 + (unsigned)(rnd() % 40);
			uint32_t o = 16;
			memset(root, 0, sizeof(good));
			for (unsigned i = 0; i < cnt && o + 24 <= sizeof(good); i++) {
				le64 child = cpu_to_le64(r.nodes[rnd() % r.nnodes]);
				memcpy(root + o, &child, 8);
				if (i > 0) {
					int k = snprintf((char *)root + o + 10, 14, "name%05u",
							 (unsigned)(rnd() % 2 ? i * 3000 / cnt : rnd() % 3000));
					root[o + 8] = (uint8_t)k;
				}
				o += CSV_INDEX_ENTRY_SIZE(root[o + 8]);
			}
			struct csv_d_index_node h = {
				.level = cpu_to_le16((uint16_t)(1 + rnd() % 3)),
				.count = cpu_to_le16((uint16_t)cnt),
				.used = cpu_to_le32(o - 16),
			};
			memcpy(root, &h, sizeof(h));
		}
		poke_reads(&f);
	}
	/* Reads changed nothing. */
	req_uint_eq(nodeio_mem_allocated(f.io), allocated);
	memcpy(f.root, good, sizeof(good));
	assert_sound(&f.t);
	rep_free(&r);
	fx_done(&f);
}
END_TEST

START_TEST(test_damaged_blocks_fuzz)
{
	/* Random damage to a block, with a valid checksum so that the node
	 * parser has to catch it, then reads and writes on the damaged tree:
	 * results may be errors, but nothing may crash, hang or overrun. */
	rnd_seed(0xfeedface);
	for (unsigned it = 0; it < 250; it++) {
		struct fx f;
		struct report r;
		uint64_t ref;
		uint32_t ns = it % 5 == 0 ? 16384 : 4096;
		char name[16];
		size_t len;

		fx_init(&f, ns, it % 3 == 0 ? BTREE_ROOT_MIN_BYTES : CSV_INDEX_ROOT_BYTES);
		build_seq(&f, 1500);
		req_int_eq(run_check(&f.t, &r), 0);
		uint64_t victim = r.nodes[rnd() % r.nnodes];
		uint8_t *p = nodeio_mem_peek(f.io, victim);
		for (unsigned k = 1 + (unsigned)(rnd() % 4); k > 0; k--) {
			/* Mostly the node header and the first entries. */
			size_t at = rnd() % 2 ? 0x30 + rnd() % 0x40 : 0x50 + rnd() % (ns - 0x50);
			p[at] ^= (uint8_t)(1 + rnd() % 255);
		}
		if (rnd() % 8)
			meta_reseal(p, ns);
		rep_free(&r);

		req_int_ge(btree_check(&f.t, NULL, NULL), 0);
		poke_reads(&f);
		for (unsigned k = 0; k < 300; k++) {
			unsigned i = (unsigned)(rnd() % 3000);
			seq_name(i, name, &len);
			switch (rnd() % 4) {
			case 0:
				(void)btree_insert(&f.t, name, len, i, 1);
				break;
			case 1:
				(void)btree_delete(&f.t, name, len, &ref);
				break;
			case 2:
				(void)btree_replace(&f.t, name, len, i, 2, &ref);
				break;
			default:
				(void)btree_lookup(&f.t, name, len, &ref, NULL);
			}
		}
		req_int_ge(btree_check(&f.t, NULL, NULL), 0);
		poke_reads(&f);
		req_int_ge(btree_destroy(&f.t), 0);
		req(root_is_empty_leaf(&f));
		fx_done(&f);
	}
}
END_TEST

/* ---- Scale --------------------------------------------------------------- */

static int count_fn(void *ud, const uint8_t *name, size_t len, uint64_t ref, uint8_t type)
{
	uint64_t *n = ud;
	(*n)++;
	return 0;
}

START_TEST(test_million)
{
	const unsigned n = 1000000;
	struct fx f;
	uint32_t *perm = malloc(n * sizeof(*perm));
	char name[32];
	uint64_t ref, cnt = 0;
	struct phase t, ins, look, iter, chk, del;

	req_ptr_nonnull(perm);
	rnd_seed(0x1000000);
	for (unsigned i = 0; i < n; i++)
		perm[i] = i;
	for (unsigned i = n - 1; i > 0; i--) {
		unsigned j = (unsigned)(rnd() % (i + 1));
		uint32_t x = perm[i];
		perm[i] = perm[j];
		perm[j] = x;
	}
	fx_init(&f, 4096, CSV_INDEX_ROOT_BYTES);

	t = phase_start();
	for (unsigned i = 0; i < n; i++) {
		int len = snprintf(name, sizeof(name), "file-%07u.dat", perm[i]);
		req_int_eq(btree_insert(&f.t, name, (size_t)len, perm[i], 8), 0);
	}
	ins = phase_end(t);

	for (unsigned i = n - 1; i > 0; i--) {
		unsigned j = (unsigned)(rnd() % (i + 1));
		uint32_t x = perm[i];
		perm[i] = perm[j];
		perm[j] = x;
	}
	t = phase_start();
	for (unsigned i = 0; i < n; i++) {
		int len = snprintf(name, sizeof(name), "file-%07u.dat", perm[i]);
		req_int_eq(btree_lookup(&f.t, name, (size_t)len, &ref, NULL), 0);
		req_uint_eq(ref, perm[i]);
	}
	look = phase_end(t);

	t = phase_start();
	req_int_eq(btree_iterate(&f.t, NULL, 0, count_fn, &cnt), 0);
	iter = phase_end(t);
	req_uint_eq(cnt, n);

	t = phase_start();
	req_int_eq(btree_check(&f.t, NULL, NULL), 0);
	chk = phase_end(t);
	size_t blocks = nodeio_mem_allocated(f.io);
	unsigned levels = root_level(&f) + 1;

	t = phase_start();
	for (unsigned i = 0; i < n; i++) {
		int len = snprintf(name, sizeof(name), "file-%07u.dat", perm[i]);
		req_int_eq(btree_delete(&f.t, name, (size_t)len, &ref), 0);
	}
	del = phase_end(t);
	req_uint_eq(nodeio_mem_allocated(f.io), 0);
	req(root_is_empty_leaf(&f));

	fprintf(stderr,
		"million: %u names, %zu index blocks of 4 KiB, %u levels\n"
		"million: wall clock: insert %.0f/s, lookup %.0f/s, iterate %.0f/s, check %.0f/s, delete %.0f/s\n"
		"million: CPU time:   insert %.0f/s, lookup %.0f/s, iterate %.0f/s, check %.0f/s, delete %.0f/s\n",
		n, blocks, levels, n / ins.wall, n / look.wall, n / iter.wall, n / chk.wall, n / del.wall,
		n / ins.cpu, n / look.cpu, n / iter.cpu, n / chk.cpu, n / del.cpu);
	free(perm);
	fx_done(&f);
}
END_TEST

static Suite *btree_suite(void)
{
	Suite *s = suite_create("btree");
	TCase *tc;

	tc = tcase_create("basic");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_single);
	tcase_add_test(tc, test_bad_arguments);
	tcase_add_test(tc, test_long_names);
	tcase_add_test(tc, test_binary_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("model");
	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, test_model, 0, (int)ARRAY_SIZE(model_params));
	suite_add_tcase(s, tc);

	tc = tcase_create("iterate");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_iterate_after);
	suite_add_tcase(s, tc);

	tc = tcase_create("replace-destroy");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_replace);
	tcase_add_test(tc, test_destroy);
	tcase_add_test(tc, test_destroy_damaged);
	suite_add_tcase(s, tc);

	tc = tcase_create("failures");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_alloc_failure);
	tcase_add_test(tc, test_alloc_failure_delete);
	suite_add_tcase(s, tc);

	tc = tcase_create("corruption");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_corrupt_checksum);
	tcase_add_test(tc, test_corrupt_structure);
	tcase_add_test(tc, test_garbage_roots);
	tcase_add_test(tc, test_damaged_blocks_fuzz);
	suite_add_tcase(s, tc);

	tc = tcase_create("scale");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_million);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(btree_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
