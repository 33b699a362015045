/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "alloc.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* ---- An intrusive AVL tree --------------------------------------------- */

struct avl {
	struct avl *c[2];
	int h;
};

typedef int (*avl_cmp_fn)(const struct avl *a, const struct avl *b);

static int avl_height(const struct avl *n)
{
	return n ? n->h : 0;
}

static void avl_fix(struct avl *n)
{
	n->h = 1 + MAX(avl_height(n->c[0]), avl_height(n->c[1]));
}

/* dir 1 rotates right (the left child comes up), dir 0 left. */
static struct avl *avl_rotate(struct avl *n, int dir)
{
	struct avl *x = n->c[!dir];
	n->c[!dir] = x->c[dir];
	x->c[dir] = n;
	avl_fix(n);
	avl_fix(x);
	return x;
}

static struct avl *avl_balance(struct avl *n)
{
	avl_fix(n);
	int bf = avl_height(n->c[0]) - avl_height(n->c[1]);
	if (bf > 1) {
		if (avl_height(n->c[0]->c[0]) < avl_height(n->c[0]->c[1]))
			n->c[0] = avl_rotate(n->c[0], 0);
		return avl_rotate(n, 1);
	}
	if (bf < -1) {
		if (avl_height(n->c[1]->c[1]) < avl_height(n->c[1]->c[0]))
			n->c[1] = avl_rotate(n->c[1], 1);
		return avl_rotate(n, 0);
	}
	return n;
}

/* Keys are unique in every tree here. */
static struct avl *avl_insert(struct avl *root, struct avl *n, avl_cmp_fn cmp)
{
	if (!root) {
		n->c[0] = n->c[1] = NULL;
		n->h = 1;
		return n;
	}
	int d = cmp(n, root) > 0;
	root->c[d] = avl_insert(root->c[d], n, cmp);
	return avl_balance(root);
}

static struct avl *avl_remove_min(struct avl *root, struct avl **ret_min)
{
	if (!root->c[0]) {
		*ret_min = root;
		return root->c[1];
	}
	root->c[0] = avl_remove_min(root->c[0], ret_min);
	return avl_balance(root);
}

/* Removes n, which is in the tree with its current key. */
static struct avl *avl_remove(struct avl *root, struct avl *n, avl_cmp_fn cmp)
{
	assert(root);
	if (root == n) {
		struct avl *m;
		if (!n->c[1])
			return n->c[0];
		struct avl *rest = avl_remove_min(n->c[1], &m);
		m->c[0] = n->c[0];
		m->c[1] = rest;
		return avl_balance(m);
	}
	int d = cmp(n, root) > 0;
	root->c[d] = avl_remove(root->c[d], n, cmp);
	return avl_balance(root);
}

/* ---- Free extents ------------------------------------------------------ */

struct fext {
	uint64_t lcn, len;
	struct avl by_lcn;  /* key lcn */
	struct avl by_len;  /* key (len, lcn) */
};

#define LCN_EXT(p) container_of(p, struct fext, by_lcn)
#define LEN_EXT(p) container_of(p, struct fext, by_len)

static int cmp_u64(uint64_t a, uint64_t b)
{
	return (a > b) - (a < b);
}

static int cmp_by_lcn(const struct avl *a, const struct avl *b)
{
	return cmp_u64(LCN_EXT(a)->lcn, LCN_EXT(b)->lcn);
}

static int cmp_by_len(const struct avl *a, const struct avl *b)
{
	const struct fext *x = LEN_EXT(a), *y = LEN_EXT(b);
	return x->len != y->len ? cmp_u64(x->len, y->len) : cmp_u64(x->lcn, y->lcn);
}

enum { POOL_OUTSIDE, POOL_ZONE, N_POOLS };

struct pool {
	struct avl *by_lcn, *by_len;
	uint64_t free;  /* clusters */
	size_t n;       /* extents */
};

#define CHUNK_NODES 1024u

struct chunk {
	struct chunk *next;
	struct fext nodes[CHUNK_NODES];
};

struct csv_alloc {
	struct csv_bitmap bm;     /* clusters in use */
	struct csv_bitmap dirty;  /* blocks of the on-disk bitmap */
	uint64_t zone_lcn, zone_end;
	struct pool pool[N_POOLS];
	struct chunk *chunks;
	struct fext *spare;       /* linked through by_lcn.c[0] */
	size_t n_spare;
};

static int reserve_nodes(struct csv_alloc *a, size_t k)
{
	while (a->n_spare < k) {
		struct chunk *c = malloc(sizeof(*c));
		if (!c)
			return -ENOMEM;
		c->next = a->chunks;
		a->chunks = c;
		for (size_t i = 0; i < CHUNK_NODES; i++) {
			c->nodes[i].by_lcn.c[0] = a->spare ? &a->spare->by_lcn : NULL;
			a->spare = &c->nodes[i];
		}
		a->n_spare += CHUNK_NODES;
	}
	return 0;
}

static struct fext *node_get(struct csv_alloc *a)
{
	struct fext *e = a->spare;
	assert(e);  /* reserve_nodes() ran first */
	a->spare = e->by_lcn.c[0] ? LCN_EXT(e->by_lcn.c[0]) : NULL;
	a->n_spare--;
	return e;
}

static void node_put(struct csv_alloc *a, struct fext *e)
{
	e->by_lcn.c[0] = a->spare ? &a->spare->by_lcn : NULL;
	a->spare = e;
	a->n_spare++;
}

/* The extent with the greatest lcn <= lcn. */
static struct fext *lcn_floor(const struct pool *p, uint64_t lcn)
{
	struct fext *best = NULL;
	for (struct avl *n = p->by_lcn; n;) {
		struct fext *e = LCN_EXT(n);
		if (e->lcn <= lcn) {
			best = e;
			n = n->c[1];
		} else {
			n = n->c[0];
		}
	}
	return best;
}

/* The extent with the smallest lcn > lcn. */
static struct fext *lcn_after(const struct pool *p, uint64_t lcn)
{
	struct fext *best = NULL;
	for (struct avl *n = p->by_lcn; n;) {
		struct fext *e = LCN_EXT(n);
		if (e->lcn > lcn) {
			best = e;
			n = n->c[0];
		} else {
			n = n->c[1];
		}
	}
	return best;
}

/* The extent with the smallest (len, lcn) >= (len, lcn). */
static struct fext *len_ge(const struct pool *p, uint64_t len, uint64_t lcn)
{
	struct fext *best = NULL;
	for (struct avl *n = p->by_len; n;) {
		struct fext *e = LEN_EXT(n);
		if (e->len > len || (e->len == len && e->lcn >= lcn)) {
			best = e;
			n = n->c[0];
		} else {
			n = n->c[1];
		}
	}
	return best;
}

/* The extent with the greatest (len, lcn) < (len, lcn). */
static struct fext *len_lt(const struct pool *p, uint64_t len, uint64_t lcn)
{
	struct fext *best = NULL;
	for (struct avl *n = p->by_len; n;) {
		struct fext *e = LEN_EXT(n);
		if (e->len < len || (e->len == len && e->lcn < lcn)) {
			best = e;
			n = n->c[1];
		} else {
			n = n->c[0];
		}
	}
	return best;
}

static struct fext *len_max(const struct pool *p)
{
	struct avl *n = p->by_len;
	while (n && n->c[1])
		n = n->c[1];
	return n ? LEN_EXT(n) : NULL;
}

static void insert_ext(struct csv_alloc *a, struct pool *p, uint64_t lcn, uint64_t len)
{
	struct fext *e = node_get(a);
	e->lcn = lcn;
	e->len = len;
	p->by_lcn = avl_insert(p->by_lcn, &e->by_lcn, cmp_by_lcn);
	p->by_len = avl_insert(p->by_len, &e->by_len, cmp_by_len);
	p->free += len;
	p->n++;
}

static void remove_ext(struct csv_alloc *a, struct pool *p, struct fext *e)
{
	p->by_lcn = avl_remove(p->by_lcn, &e->by_lcn, cmp_by_lcn);
	p->by_len = avl_remove(p->by_len, &e->by_len, cmp_by_len);
	p->free -= e->len;
	p->n--;
	node_put(a, e);
}

/* Changes the range of e. The new range must keep e's place in the LCN
 * order (it does: extents of a pool are disjoint and never cross), so
 * only the length tree needs the node taken out and put back. */
static void reshape_ext(struct pool *p, struct fext *e, uint64_t lcn, uint64_t len)
{
	p->by_len = avl_remove(p->by_len, &e->by_len, cmp_by_len);
	p->free = p->free - e->len + len;
	e->lcn = lcn;
	e->len = len;
	p->by_len = avl_insert(p->by_len, &e->by_len, cmp_by_len);
}

/* ---- Ranges and pools --------------------------------------------------- */

struct piece {
	int pool;
	uint64_t lcn, len;
};

static int pool_of(const struct csv_alloc *a, uint64_t lcn)
{
	return lcn >= a->zone_lcn && lcn < a->zone_end ? POOL_ZONE : POOL_OUTSIDE;
}

/* Cuts [lcn, lcn + len) at the zone boundaries; returns the piece count. */
static int cut_pieces(const struct csv_alloc *a, uint64_t lcn, uint64_t len, struct piece out[3])
{
	uint64_t end = lcn + len, cuts[2] = { a->zone_lcn, a->zone_end };
	int n = 0;

	if (a->zone_lcn == a->zone_end) {
		out[0] = (struct piece){ POOL_OUTSIDE, lcn, len };
		return 1;
	}
	for (int i = 0; i < 2; i++) {
		if (cuts[i] > lcn && cuts[i] < end) {
			out[n] = (struct piece){ pool_of(a, lcn), lcn, cuts[i] - lcn };
			n++;
			lcn = cuts[i];
		}
	}
	out[n] = (struct piece){ pool_of(a, lcn), lcn, end - lcn };
	return n + 1;
}

static void mark_dirty(struct csv_alloc *a, uint64_t lcn, uint64_t len)
{
	uint64_t first = lcn / CSV_BITMAP_BITS, last = (lcn + len - 1) / CSV_BITMAP_BITS;
	int r = bitmap_set_range(&a->dirty, first, last - first + 1);
	assert(r == 0);
	(void)r;
}

/* Takes n clusters from the start of e. */
static void take_front(struct csv_alloc *a, struct pool *p, struct fext *e, uint64_t n)
{
	if (n == e->len)
		remove_ext(a, p, e);
	else
		reshape_ext(p, e, e->lcn + n, e->len - n);
}

/* Removes [s, s + n) from the free extents of pool p (it lies inside one). */
static void use_piece(struct csv_alloc *a, struct pool *p, uint64_t s, uint64_t n)
{
	struct fext *e = lcn_floor(p, s);
	assert(e && e->lcn + e->len >= s + n);
	uint64_t end = e->lcn + e->len;

	if (e->lcn == s) {
		take_front(a, p, e, n);
		return;
	}
	reshape_ext(p, e, e->lcn, s - e->lcn);
	if (end > s + n)
		insert_ext(a, p, s + n, end - (s + n));
}

/* Adds [s, s + n) to the free extents of pool p, joining neighbours. */
static void free_piece(struct csv_alloc *a, struct pool *p, uint64_t s, uint64_t n)
{
	struct fext *prev = lcn_floor(p, s), *next = lcn_after(p, s);
	bool join_prev = prev && prev->lcn + prev->len == s;
	bool join_next = next && next->lcn == s + n;

	assert(!prev || prev->lcn + prev->len <= s);
	assert(!next || next->lcn >= s + n);
	if (join_prev && join_next) {
		uint64_t next_len = next->len;
		remove_ext(a, p, next);
		reshape_ext(p, prev, prev->lcn, prev->len + n + next_len);
	} else if (join_prev) {
		reshape_ext(p, prev, prev->lcn, prev->len + n);
	} else if (join_next) {
		reshape_ext(p, next, s, next->len + n);
	} else {
		insert_ext(a, p, s, n);
	}
}

/* ---- Building from a bitmap ----------------------------------------------- */

/* A perfectly balanced tree over v[0..n), already in key order: subtree
 * sizes differ by one at most, so it is a valid AVL tree. */
static struct avl *build_balanced(struct fext **v, size_t n, bool by_len)
{
	if (n == 0)
		return NULL;
	size_t mid = n / 2;
	struct avl *node = by_len ? &v[mid]->by_len : &v[mid]->by_lcn;
	node->c[0] = build_balanced(v, mid, by_len);
	node->c[1] = build_balanced(v + mid + 1, n - mid - 1, by_len);
	avl_fix(node);
	return node;
}

/* Sorts v (in LCN order) by length, stably, so by (length, LCN): an LSD
 * radix sort on 16-bit digits, as many passes as the longest needs. */
static int sort_by_len(struct fext **v, size_t n)
{
	uint64_t max = 0;
	for (size_t i = 0; i < n; i++)
		max = MAX(max, v[i]->len);
	if (n < 2 || max < 2)
		return 0;
	_cleanup_free_ struct fext **tmp = malloc(n * sizeof(*tmp));
	_cleanup_free_ size_t *count = malloc(65536 * sizeof(size_t));
	if (!tmp || !count)
		return -ENOMEM;
	for (unsigned shift = 0; shift < 64 && (max >> shift); shift += 16) {
		memset(count, 0, 65536 * sizeof(size_t));
		for (size_t i = 0; i < n; i++)
			count[(v[i]->len >> shift) & 0xffff]++;
		size_t pos = 0;
		for (size_t d = 0; d < 65536; d++) {
			size_t c = count[d];
			count[d] = pos;
			pos += c;
		}
		for (size_t i = 0; i < n; i++)
			tmp[count[(v[i]->len >> shift) & 0xffff]++] = v[i];
		memcpy(v, tmp, n * sizeof(*v));
	}
	return 0;
}

struct ext_vec {
	struct fext **v;
	size_t n, cap;
};

static int vec_push(struct ext_vec *x, struct fext *e)
{
	if (x->n == x->cap) {
		size_t ncap = x->cap ? x->cap * 2 : 256;
		struct fext **nv = realloc(x->v, ncap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		x->v = nv;
		x->cap = ncap;
	}
	x->v[x->n++] = e;
	return 0;
}

/* Fills the empty pools with the free runs of a->bm, word by word through
 * the bitmap (a mostly free volume has few runs), then builds both trees
 * of each pool in one go from the sorted extents. */
static int build_pools(struct csv_alloc *a)
{
	struct ext_vec vec[N_POOLS] = { { NULL, 0, 0 }, { NULL, 0, 0 } };
	uint64_t nbits = a->bm.nbits;
	int r = 0;

	for (uint64_t pos = 0; pos < nbits && r == 0;) {
		uint64_t s = bitmap_find_next_clear(&a->bm, pos);
		if (s >= nbits)
			break;
		uint64_t e = bitmap_find_next_set(&a->bm, s);
		struct piece pc[3];
		int n = cut_pieces(a, s, e - s, pc);
		r = reserve_nodes(a, (size_t)n);
		for (int i = 0; i < n && r == 0; i++) {
			struct fext *x = node_get(a);
			x->lcn = pc[i].lcn;
			x->len = pc[i].len;
			r = vec_push(&vec[pc[i].pool], x);
			if (r < 0)
				node_put(a, x);
		}
		pos = e;
	}
	for (int pi = 0; pi < N_POOLS && r == 0; pi++) {
		struct pool *p = &a->pool[pi];
		struct ext_vec *x = &vec[pi];
		for (size_t i = 0; i < x->n; i++)
			p->free += x->v[i]->len;
		p->n = x->n;
		p->by_lcn = build_balanced(x->v, x->n, false);
		r = sort_by_len(x->v, x->n);
		if (r == 0)
			p->by_len = build_balanced(x->v, x->n, true);
	}
	free(vec[0].v);
	free(vec[1].v);
	return r;
}

/* ---- The interface ------------------------------------------------------ */

/* take is used itself, when the allocator is to own its words. */
static int alloc_create(const struct csv_bitmap *used, struct csv_bitmap *take, uint64_t zone_lcn,
			uint64_t zone_clusters, struct csv_alloc **ret)
{
	uint64_t nbits = used->nbits;
	int r;

	if (zone_lcn > nbits || zone_clusters > nbits - zone_lcn)
		return -EINVAL;
	struct csv_alloc *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->zone_lcn = zone_lcn;
	a->zone_end = zone_lcn + zone_clusters;
	if (take) {
		a->bm = *take;
	} else {
		r = bitmap_copy(used, &a->bm);
		if (r < 0)
			goto fail;
	}
	r = bitmap_init(&a->dirty, bitmap_region_blocks(nbits));
	if (r == 0)
		r = build_pools(a);
	if (r < 0)
		goto fail;
	if (take)
		*take = (struct csv_bitmap){ 0, NULL };
	*ret = a;
	return 0;
fail:
	if (take)
		a->bm = (struct csv_bitmap){ 0, NULL };
	alloc_free_all(a);
	return r;
}

int alloc_new(const struct csv_bitmap *used, uint64_t zone_lcn, uint64_t zone_clusters,
	      struct csv_alloc **ret)
{
	return alloc_create(used, NULL, zone_lcn, zone_clusters, ret);
}

int alloc_new_take(struct csv_bitmap *used, uint64_t zone_lcn, uint64_t zone_clusters,
		   struct csv_alloc **ret)
{
	return alloc_create(used, used, zone_lcn, zone_clusters, ret);
}

void alloc_free_all(struct csv_alloc *a)
{
	if (!a)
		return;
	while (a->chunks) {
		struct chunk *c = a->chunks;
		a->chunks = c->next;
		free(c);
	}
	bitmap_free(&a->bm);
	bitmap_free(&a->dirty);
	free(a);
}

static uint64_t distance(const struct fext *e, uint64_t goal)
{
	if (goal < e->lcn)
		return e->lcn - goal;
	if (goal - e->lcn < e->len)
		return 0;
	return goal - (e->lcn + e->len - 1);
}

/* Among the extents of exactly len clusters (there is one at least), the
 * nearest to goal, the lower LCN on a tie. */
static struct fext *nearest_of_len(const struct pool *p, uint64_t len, uint64_t goal)
{
	struct fext *hi = len_ge(p, len, goal), *lo = len_lt(p, len, goal);
	if (hi && hi->len != len)
		hi = NULL;
	if (lo && lo->len != len)
		lo = NULL;
	if (!hi)
		return lo;
	if (!lo)
		return hi;
	return distance(lo, goal) <= distance(hi, goal) ? lo : hi;
}

int alloc_extent(struct csv_alloc *a, enum alloc_pool pool, uint64_t want, uint64_t goal,
		 uint64_t *ret_lcn, uint64_t *ret_len)
{
	int order[2] = { POOL_OUTSIDE, POOL_ZONE };

	if (want == 0)
		return -EINVAL;
	if (pool == ALLOC_MFT) {
		order[0] = POOL_ZONE;
		order[1] = POOL_OUTSIDE;
	}
	for (int k = 0; k < 2; k++) {
		struct pool *p = &a->pool[order[k]];
		if (!p->by_len)
			continue;
		struct fext *e = len_ge(p, want, 0);
		e = nearest_of_len(p, e ? e->len : len_max(p)->len, goal);
		uint64_t lcn = e->lcn, len = MIN(want, e->len);
		take_front(a, p, e, len);
		int r = bitmap_set_range(&a->bm, lcn, len);
		assert(r == 0);
		(void)r;
		mark_dirty(a, lcn, len);
		*ret_lcn = lcn;
		*ret_len = len;
		return 0;
	}
	return -ENOSPC;
}

int alloc_mark_used(struct csv_alloc *a, uint64_t lcn, uint64_t len)
{
	struct piece pc[3];
	int r;

	if (len == 0 || lcn > a->bm.nbits || len > a->bm.nbits - lcn)
		return -EINVAL;
	if (bitmap_count_set(&a->bm, lcn, len) != 0)
		return -EUCLEAN;
	r = reserve_nodes(a, 3);
	if (r < 0)
		return r;
	int n = cut_pieces(a, lcn, len, pc);
	for (int i = 0; i < n; i++)
		use_piece(a, &a->pool[pc[i].pool], pc[i].lcn, pc[i].len);
	r = bitmap_set_range(&a->bm, lcn, len);
	assert(r == 0);
	mark_dirty(a, lcn, len);
	return 0;
}

int alloc_release(struct csv_alloc *a, uint64_t lcn, uint64_t len)
{
	struct piece pc[3];
	int r;

	if (len == 0 || lcn > a->bm.nbits || len > a->bm.nbits - lcn)
		return -EINVAL;
	if (bitmap_count_set(&a->bm, lcn, len) != len)
		return -EUCLEAN;
	r = reserve_nodes(a, 3);
	if (r < 0)
		return r;
	int n = cut_pieces(a, lcn, len, pc);
	for (int i = 0; i < n; i++)
		free_piece(a, &a->pool[pc[i].pool], pc[i].lcn, pc[i].len);
	r = bitmap_clear_range(&a->bm, lcn, len);
	assert(r == 0);
	mark_dirty(a, lcn, len);
	return 0;
}

uint64_t alloc_free_clusters(const struct csv_alloc *a)
{
	return a->pool[POOL_OUTSIDE].free + a->pool[POOL_ZONE].free;
}

uint64_t alloc_zone_free_clusters(const struct csv_alloc *a)
{
	return a->pool[POOL_ZONE].free;
}

uint64_t alloc_total_clusters(const struct csv_alloc *a)
{
	return a->bm.nbits;
}

size_t alloc_free_extents(const struct csv_alloc *a)
{
	return a->pool[POOL_OUTSIDE].n + a->pool[POOL_ZONE].n;
}

const struct csv_bitmap *alloc_bitmap(const struct csv_alloc *a)
{
	return &a->bm;
}

uint64_t alloc_next_dirty(const struct csv_alloc *a, uint64_t from)
{
	uint64_t i = bitmap_find_next_set(&a->dirty, from);
	return i < a->dirty.nbits ? i : UINT64_MAX;
}

uint64_t alloc_dirty_count(const struct csv_alloc *a)
{
	return bitmap_count_set(&a->dirty, 0, a->dirty.nbits);
}

void alloc_clear_dirty(struct csv_alloc *a)
{
	bitmap_clear_range(&a->dirty, 0, a->dirty.nbits);
}

/* ---- Iteration ----------------------------------------------------------- */

struct iter {
	int (*fn)(void *ud, uint64_t lcn, uint64_t len);
	void *ud;
	uint64_t lcn, len;  /* pending extent, len 0 when none */
};

static int iter_emit(struct iter *it, uint64_t lcn, uint64_t len)
{
	if (it->len && it->lcn + it->len == lcn) {
		it->len += len;
		return 0;
	}
	int r = it->len ? it->fn(it->ud, it->lcn, it->len) : 0;
	it->lcn = lcn;
	it->len = len;
	return r;
}

/* In order, the extents of the subtree with lo <= lcn < hi. */
static int iter_walk(const struct avl *n, uint64_t lo, uint64_t hi, struct iter *it)
{
	int r = 0;
	if (!n)
		return 0;
	const struct fext *e = LCN_EXT(n);
	if (e->lcn > lo && (r = iter_walk(n->c[0], lo, hi, it)))
		return r;
	if (e->lcn >= lo && e->lcn < hi && (r = iter_emit(it, e->lcn, e->len)))
		return r;
	if (e->lcn < hi)
		r = iter_walk(n->c[1], lo, hi, it);
	return r;
}

int alloc_iterate_free(const struct csv_alloc *a, int (*fn)(void *ud, uint64_t lcn, uint64_t len),
		       void *ud)
{
	struct iter it = { fn, ud, 0, 0 };
	const struct avl *out = a->pool[POOL_OUTSIDE].by_lcn;
	int r;

	if ((r = iter_walk(out, 0, a->zone_lcn, &it)) ||
	    (r = iter_walk(a->pool[POOL_ZONE].by_lcn, 0, UINT64_MAX, &it)) ||
	    (r = iter_walk(out, a->zone_end, UINT64_MAX, &it)))
		return r;
	return it.len ? fn(ud, it.lcn, it.len) : 0;
}

/* ---- Self-check ---------------------------------------------------------- */

/* Height of a valid AVL subtree, -1 if heights or balance are wrong. */
static int check_avl(const struct avl *n)
{
	if (!n)
		return 0;
	int l = check_avl(n->c[0]), r = check_avl(n->c[1]);
	if (l < 0 || r < 0 || abs(l - r) > 1 || n->h != 1 + MAX(l, r))
		return -1;
	return n->h;
}

static void collect(const struct avl *n, const struct fext **out, size_t *k, size_t max, bool by_len)
{
	if (!n)
		return;
	collect(n->c[0], out, k, max, by_len);
	if (*k < max)
		out[*k] = by_len ? LEN_EXT(n) : LCN_EXT(n);
	(*k)++;
	collect(n->c[1], out, k, max, by_len);
}

static int check_pool(const struct csv_alloc *a, int pi, const struct fext ***ret_sorted,
		      char *err, size_t errlen)
{
	const struct pool *p = &a->pool[pi];
	const char *name = pi == POOL_ZONE ? "zone" : "outside";
	size_t k = 0, n = p->n;
	uint64_t sum = 0;

	if (check_avl(p->by_lcn) < 0 || check_avl(p->by_len) < 0)
		return err_unclean(err, errlen, "%s: a tree is not a valid AVL tree", name);
	_cleanup_free_ const struct fext **v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	collect(p->by_len, v, &k, n, true);
	if (k != n)
		return err_unclean(err, errlen, "%s: length tree has %zu extents, count says %zu", name, k, n);
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && cmp_by_len(&v[i - 1]->by_len, &v[i]->by_len) >= 0)
			return err_unclean(err, errlen, "%s: length tree out of order at %zu", name, i);
		if (lcn_floor(p, v[i]->lcn) != v[i])
			return err_unclean(err, errlen, "%s: extent %" PRIu64 "+%" PRIu64 " not in the LCN tree",
					  name, v[i]->lcn, v[i]->len);
	}
	k = 0;
	collect(p->by_lcn, v, &k, n, false);
	if (k != n)
		return err_unclean(err, errlen, "%s: LCN tree has %zu extents, count says %zu", name, k, n);
	for (size_t i = 0; i < n; i++) {
		const struct fext *e = v[i];
		if (e->len == 0 || e->lcn > a->bm.nbits || e->len > a->bm.nbits - e->lcn)
			return err_unclean(err, errlen, "%s: extent %" PRIu64 "+%" PRIu64 " empty or outside the volume",
					  name, e->lcn, e->len);
		bool in_zone = e->lcn >= a->zone_lcn && e->lcn + e->len <= a->zone_end;
		bool outside = e->lcn + e->len <= a->zone_lcn || e->lcn >= a->zone_end;
		if ((pi == POOL_ZONE && !in_zone) || (pi == POOL_OUTSIDE && !outside))
			return err_unclean(err, errlen, "%s: extent %" PRIu64 "+%" PRIu64 " is in the wrong pool",
					  name, e->lcn, e->len);
		if (i > 0 && v[i - 1]->lcn + v[i - 1]->len >= e->lcn)
			return err_unclean(err, errlen, "%s: extents at %" PRIu64 " and %" PRIu64 " overlap or touch",
					  name, v[i - 1]->lcn, e->lcn);
		sum += e->len;
	}
	if (sum != p->free)
		return err_unclean(err, errlen, "%s: extents hold %" PRIu64 " clusters, count says %" PRIu64,
				  name, sum, p->free);
	*ret_sorted = TAKE_PTR(v);
	return 0;
}

int alloc_check(const struct csv_alloc *a, char *err, size_t errlen)
{
	const struct fext **sorted[N_POOLS] = { NULL, NULL };
	size_t next[N_POOLS] = { 0, 0 };
	uint64_t nbits = a->bm.nbits;
	int r = 0;

	for (int pi = 0; pi < N_POOLS && r == 0; pi++)
		r = check_pool(a, pi, &sorted[pi], err, errlen);
	if (r < 0)
		goto out;

	/* The bitmap's free runs, cut at the zone boundaries, are exactly
	 * the extents of the two pools. */
	for (uint64_t pos = 0; pos < nbits;) {
		uint64_t s = bitmap_find_next_clear(&a->bm, pos);
		if (s >= nbits)
			break;
		uint64_t e = bitmap_find_next_set(&a->bm, s);
		struct piece pc[3];
		int n = cut_pieces(a, s, e - s, pc);
		for (int i = 0; i < n; i++) {
			int pi = pc[i].pool;
			const struct fext *x = next[pi] < a->pool[pi].n ? sorted[pi][next[pi]] : NULL;
			if (!x || x->lcn != pc[i].lcn || x->len != pc[i].len) {
				r = err_unclean(err, errlen, "bitmap free run %" PRIu64 "+%" PRIu64
					       " has no matching free extent", pc[i].lcn, pc[i].len);
				goto out;
			}
			next[pi]++;
		}
		pos = e;
	}
	for (int pi = 0; pi < N_POOLS; pi++) {
		if (next[pi] != a->pool[pi].n) {
			const struct fext *x = sorted[pi][next[pi]];
			r = err_unclean(err, errlen, "free extent %" PRIu64 "+%" PRIu64 " is in use in the bitmap",
				       x->lcn, x->len);
			goto out;
		}
	}
	if (nbits - bitmap_count_set(&a->bm, 0, nbits) != alloc_free_clusters(a))
		r = err_unclean(err, errlen, "bitmap and free count disagree");
out:
	free(sorted[0]);
	free(sorted[1]);
	return r;
}
