/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The directory index B+ tree.
 *
 * A modifying call works on copies: it descends from the root, keeping
 * every node it touches in memory (struct bt_op), changes them there,
 * repairs overflow (split) and underflow (merge, or borrow from a sibling)
 * bottom-up, and only then writes: the changed blocks, then the root,
 * then the frees. Blocks it allocated are given back if it fails before
 * writing. Node buffers carry BT_SLACK bytes beyond the on-disk
 * capacity so that a node may overflow in memory until it is split.
 *
 * Separators are exact: the separator of a child is the smallest name in
 * its subtree. Only deleting the smallest name of a subtree (or emptying
 * a leftmost leaf and refilling it from its right sibling) changes such a
 * minimum; subtree_min_changed() then rewrites the one separator that
 * names it, in the nearest ancestor that reaches the subtree through an
 * entry other than its first. */
#include "btree.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define BT_BLOCK_HDR ((uint32_t)sizeof(struct csv_d_index_block))              /* 0x50 */
#define BT_NODE_OFF ((uint32_t)offsetof(struct csv_d_index_block, node))       /* 0x40 */
#define BT_ROOT_HDR ((uint32_t)sizeof(struct csv_d_index_node))                /* 0x10 */
#define BT_MIN_ENTRY CSV_INDEX_ENTRY_SIZE(0)                                   /* 16 */
#define BT_MAX_ENTRY CSV_INDEX_ENTRY_SIZE(CSV_NAME_MAX)                        /* 272 */
#define BT_ENTRY_FIXED 10u                  /* ref/child, name_len, type/reserved */
/* Room for a node to overflow in memory: one added entry plus one grown
 * separator at most between two repairs, with margin. */
#define BT_SLACK (4u * BT_MAX_ENTRY)
/* Nodes one operation may hold: the path, and per level a sibling, a split
 * half and the pushed-down root. */
#define BT_MAX_OP_NODES (4u * (BTREE_MAX_LEVELS + 1u))

static_assert(BT_BLOCK_HDR == 0x50, "index block header");
static_assert(BT_MAX_ENTRY == 272, "largest entry");

/* ---- Entries ----------------------------------------------------------- */

static uint64_t ent_ref(const uint8_t *e)
{
	le64 v;
	memcpy(&v, e, sizeof(v));
	return le64_to_cpu(v);
}

static void ent_set_ref(uint8_t *e, uint64_t ref)
{
	le64 v = cpu_to_le64(ref);
	memcpy(e, &v, sizeof(v));
}

static size_t ent_len(const uint8_t *e)
{
	return e[8];
}

static const uint8_t *ent_name(const uint8_t *e)
{
	return e + BT_ENTRY_FIXED;
}

static uint32_t ent_size(const uint8_t *e)
{
	return CSV_INDEX_ENTRY_SIZE(e[8]);
}

/* Builds a leaf entry (type) or an inner entry (type 0 = reserved) in out,
 * padding zeroed; returns its size. len is at most CSV_NAME_MAX. */
static uint32_t ent_build(uint8_t out[BT_MAX_ENTRY], uint64_t ref, const uint8_t *name,
			  size_t len, uint8_t type)
{
	uint32_t size = CSV_INDEX_ENTRY_SIZE(len);
	memset(out, 0, size);
	ent_set_ref(out, ref);
	out[8] = (uint8_t)len;
	out[9] = type;
	if (len)
		memcpy(out + BT_ENTRY_FIXED, name, len);
	return size;
}

/* memcmp() over the shorter length, then the shorter name first. */
static int name_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	size_t m = MIN(alen, blen);
	int c = m ? memcmp(a, b, m) : 0;
	if (c)
		return c;
	return (alen > blen) - (alen < blen);
}

static int ent_cmp(const uint8_t *e, const uint8_t *name, size_t len)
{
	return name_cmp(ent_name(e), ent_len(e), name, len);
}

static int check_name(const void *name, size_t len)
{
	if (len == 0 || !name)
		return -EINVAL;
	if (len > CSV_NAME_MAX)
		return -ENAMETOOLONG;
	return 0;
}

/* ---- Entry sequences --------------------------------------------------- */

/* The entries of a node, with the offset of each. */
struct bt_seq {
	uint8_t *e;          /* entries, back to back */
	uint32_t *off;       /* off[i] = offset of entry i, off[count] = used */
	unsigned count;
	uint32_t used;
	uint32_t space;      /* bytes e holds */
	unsigned max_count;  /* off holds max_count + 1 */
};

/* Sets up s over space bytes at e with room for offsets at off. */
static void seq_init(struct bt_seq *s, uint8_t *e, uint32_t space, uint32_t *off)
{
	s->e = e;
	s->space = space;
	s->max_count = space / BT_MIN_ENTRY;
	s->off = off;
	s->count = 0;
	s->used = 0;
	s->off[0] = 0;
}

/* Bytes of offsets a sequence of space bytes needs, kept 8-aligned. */
static size_t seq_off_bytes(uint32_t space)
{
	return ROUND_UP((space / BT_MIN_ENTRY + 1u) * sizeof(uint32_t), 8u);
}

static uint8_t *seq_at(const struct bt_seq *s, unsigned i)
{
	return s->e + s->off[i];
}

/* Recomputes the offsets of entries this code wrote itself. */
static void seq_reindex(struct bt_seq *s)
{
	uint32_t o = 0;
	for (unsigned i = 0; i < s->count; i++) {
		s->off[i] = o;
		o += ent_size(s->e + o);
	}
	s->off[s->count] = o;
}

static int seq_insert(struct bt_seq *s, unsigned i, const uint8_t *ent, uint32_t size)
{
	if (i > s->count || size > s->space - s->used || s->count + 1 > s->max_count)
		return -EUCLEAN;
	uint32_t at = s->off[i];
	memmove(s->e + at + size, s->e + at, s->used - at);
	memcpy(s->e + at, ent, size);
	s->used += size;
	s->count++;
	seq_reindex(s);
	return 0;
}

static int seq_remove(struct bt_seq *s, unsigned i)
{
	if (i >= s->count)
		return -EUCLEAN;
	uint32_t at = s->off[i], end = s->off[i + 1];
	memmove(s->e + at, s->e + end, s->used - end);
	s->used -= end - at;
	s->count--;
	seq_reindex(s);
	return 0;
}

/* Appends src's entries from 'from' on to dst. */
static int seq_append_from(struct bt_seq *dst, const struct bt_seq *src, unsigned from)
{
	if (from >= src->count)
		return 0;
	uint32_t bytes = src->used - src->off[from];
	unsigned n = src->count - from;
	if (bytes > dst->space - dst->used || dst->count + n > dst->max_count)
		return -EUCLEAN;
	memcpy(dst->e + dst->used, src->e + src->off[from], bytes);
	dst->used += bytes;
	dst->count += n;
	seq_reindex(dst);
	return 0;
}

static int seq_copy(struct bt_seq *dst, const struct bt_seq *src)
{
	dst->count = 0;
	dst->used = 0;
	dst->off[0] = 0;
	return seq_append_from(dst, src, 0);
}

/* Gives inner entry i the separator name (keeping its child). */
static int seq_set_name(struct bt_seq *s, unsigned i, const uint8_t *name, size_t len)
{
	uint8_t ent[BT_MAX_ENTRY];
	if (i >= s->count)
		return -EUCLEAN;
	uint32_t size = ent_build(ent, ent_ref(seq_at(s, i)), name, len, 0);
	int r = seq_remove(s, i);
	return r < 0 ? r : seq_insert(s, i, ent, size);
}

/* Validates count entries in used bytes at s->e for a node at level with
 * cap bytes of room, filling the offsets. Every length is checked before
 * the bytes it covers are read. strict adds the ordering rules, which
 * btree_check() reports itself. */
static int seq_parse(struct bt_seq *s, unsigned count, uint32_t used, uint32_t cap,
		     unsigned level, bool strict, char *err, size_t errlen)
{
	uint32_t o = 0;

	s->count = 0;
	s->used = 0;
	s->off[0] = 0;
	if (used > cap)
		return err_unclean(err, errlen, "%" PRIu32 " bytes of entries in a node of %" PRIu32,
			    used, cap);
	if (count > cap / BT_MIN_ENTRY || count > s->max_count)
		return err_unclean(err, errlen, "%u entries cannot fit in %" PRIu32 " bytes", count, cap);
	for (unsigned i = 0; i < count; i++) {
		if (used - o < BT_ENTRY_FIXED || ent_size(s->e + o) > used - o)
			return err_unclean(err, errlen, "entry %u runs past the %" PRIu32 " used bytes",
				    i, used);
		size_t nl = ent_len(s->e + o);
		if (level == 0 && nl == 0)
			return err_unclean(err, errlen, "entry %u has an empty name", i);
		if (level > 0 && i == 0 && nl != 0)
			return err_unclean(err, errlen, "first entry of an inner node has a separator");
		if (level > 0 && i > 0 && nl == 0)
			return err_unclean(err, errlen, "entry %u has an empty separator", i);
		s->off[i] = o;
		o += ent_size(s->e + o);
	}
	if (o != used)
		return err_unclean(err, errlen, "entries end at byte %" PRIu32 ", used is %" PRIu32, o, used);
	s->off[count] = o;
	s->count = count;
	s->used = used;
	if (!strict)
		return 0;
	if (level > 0 && count == 0)
		return err_unclean(err, errlen, "inner node without entries");
	for (unsigned i = level > 0 ? 2 : 1; i < count; i++) {
		const uint8_t *a = seq_at(s, i - 1), *b = seq_at(s, i);
		if (ent_cmp(a, ent_name(b), ent_len(b)) >= 0)
			return err_unclean(err, errlen, "entries %u and %u out of order", i - 1, i);
	}
	return 0;
}

/* Inner node: the index of the child whose subtree holds name (the last
 * entry whose separator is <= name; entry 0 is minus infinity). */
static unsigned inner_find(const struct bt_seq *s, const uint8_t *name, size_t len)
{
	unsigned lo = 1, hi = s->count;
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		if (ent_cmp(seq_at(s, mid), name, len) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo - 1;
}

/* Leaf: the first entry >= name (or > name when after is set). */
static unsigned leaf_find(const struct bt_seq *s, const uint8_t *name, size_t len, bool after)
{
	unsigned lo = 0, hi = s->count;
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		int c = ent_cmp(seq_at(s, mid), name, len);
		if (c < 0 || (after && c == 0))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* ---- Nodes in memory --------------------------------------------------- */

struct bt_node {
	uint64_t blocknr;    /* 0: the root */
	unsigned level;
	uint64_t next_leaf;
	uint32_t cap;        /* bytes of entries the node holds on disk */
	bool dirty;          /* to be written */
	bool is_new;         /* allocated by this operation */
	bool freed;          /* to be freed */
	uint8_t *buf;        /* an index block image, entries at BT_BLOCK_HDR */
	struct bt_seq s;
};

static void node_free(struct bt_node *n)
{
	free(n);
}

/* One allocation per node: the struct, the offsets, the block image. */
static struct bt_node *node_new(uint32_t node_size)
{
	uint32_t space = node_size - BT_BLOCK_HDR + BT_SLACK;
	size_t head = ROUND_UP(sizeof(struct bt_node), 8u), offs = seq_off_bytes(space);
	/* Not zeroed: reads fill node_size bytes, new blocks clear their
	 * header, and stores clear what follows the entries. */
	uint8_t *p = malloc(head + offs + node_size + BT_SLACK);
	if (!p)
		return NULL;
	struct bt_node *n = (struct bt_node *)(void *)p;
	memset(n, 0, sizeof(*n));
	n->buf = p + head + offs;
	seq_init(&n->s, n->buf + BT_BLOCK_HDR, space, (uint32_t *)(void *)(p + head));
	return n;
}

static struct csv_d_index_block *node_block(struct bt_node *n)
{
	return (struct csv_d_index_block *)(void *)n->buf;
}

static int bt_validate(const struct csv_btree *t)
{
	if (!t || !t->io || !t->root)
		return -EINVAL;
	uint32_t ns = t->io->node_size;
	if (ns < CSV_MIN_CLUSTER_SIZE || ns > CSV_MAX_CLUSTER_SIZE || !IS_POWER_OF_2(ns))
		return -EINVAL;
	if (t->root_size < BTREE_ROOT_MIN_BYTES || t->root_size > ns - BT_NODE_OFF)
		return -EINVAL;
	return 0;
}

static const char *read_error_str(int r)
{
	switch (r) {
	case -EBADMSG:
		return "checksum mismatch (damaged, torn or never written)";
	case -EUCLEAN:
		return "not this index block (wrong magic, block number or volume UUID)";
	default:
		return NULL;
	}
}

/* Reads the index block at blocknr into n and decodes its header; the
 * entries are left to node_parse(). */
static int node_read(struct csv_btree *t, struct bt_node *n, uint64_t blocknr)
{
	if (blocknr == 0)
		return -EUCLEAN;  /* block 0 is the volume header */
	int r = nodeio_read(t->io, blocknr, CSV_MAGIC_INDEX, n->buf);
	if (r < 0)
		return r;
	const struct csv_d_index_block *b = node_block(n);
	n->blocknr = blocknr;
	n->level = le16_to_cpu(b->node.level);
	n->next_leaf = le64_to_cpu(b->node.next_leaf);
	n->cap = t->io->node_size - BT_BLOCK_HDR;
	n->dirty = n->is_new = n->freed = false;
	return 0;
}

static int node_parse(struct bt_node *n, bool strict, char *err, size_t errlen)
{
	const struct csv_d_index_node *h = &node_block(n)->node;
	return seq_parse(&n->s, le16_to_cpu(h->count), le32_to_cpu(h->used), n->cap, n->level,
			 strict, err, errlen);
}

/* Reads, verifies and parses an index block expected at level. */
static int node_load(struct csv_btree *t, struct bt_node *n, uint64_t blocknr, unsigned level)
{
	int r = node_read(t, n, blocknr);
	if (r < 0)
		return r;
	if (le64_to_cpu(node_block(n)->owner) != t->owner || n->level != level)
		return -EUCLEAN;
	return node_parse(n, true, NULL, 0);
}

/* Copies the root from the record into n (an index block image). Returns
 * -EUCLEAN with err filled when the root is unusable. */
static int root_load(struct csv_btree *t, struct bt_node *n, bool strict, char *err, size_t errlen)
{
	struct csv_d_index_node h;
	memcpy(&h, t->root, sizeof(h));
	n->blocknr = 0;
	n->level = le16_to_cpu(h.level);
	n->next_leaf = le64_to_cpu(h.next_leaf);
	n->cap = t->root_size - BT_ROOT_HDR;
	n->dirty = n->is_new = n->freed = false;
	uint32_t used = le32_to_cpu(h.used);
	n->s.count = 0;
	n->s.used = 0;
	n->s.off[0] = 0;
	if (n->level >= BTREE_MAX_LEVELS)
		return err_unclean(err, errlen, "level %u, more than %u levels", n->level, BTREE_MAX_LEVELS);
	if (used > n->cap)
		return err_unclean(err, errlen, "%" PRIu32 " bytes of entries in a root of %" PRIu32,
			    used, n->cap);
	memcpy(&node_block(n)->node, &h, sizeof(h));
	memcpy(n->s.e, (const uint8_t *)t->root + BT_ROOT_HDR, used);
	return seq_parse(&n->s, le16_to_cpu(h.count), used, n->cap, n->level, strict, err, errlen);
}

/* Writes n: the root back into the record, a block through nodeio. */
static int node_store(struct csv_btree *t, struct bt_node *n)
{
	struct csv_d_index_node h = {
		.level = cpu_to_le16((uint16_t)n->level),
		.count = cpu_to_le16((uint16_t)n->s.count),
		.used = cpu_to_le32(n->s.used),
		.next_leaf = cpu_to_le64(n->level == 0 ? n->next_leaf : 0),
	};
	if (n->s.used > n->cap || n->s.count > UINT16_MAX)
		return -EUCLEAN;
	if (n->blocknr == 0) {
		uint8_t *root = t->root;
		h.next_leaf = cpu_to_le64(0);
		memcpy(root, &h, sizeof(h));
		memcpy(root + BT_ROOT_HDR, n->s.e, n->s.used);
		memset(root + BT_ROOT_HDR + n->s.used, 0, t->root_size - BT_ROOT_HDR - n->s.used);
		return 0;
	}
	struct csv_d_index_block *b = node_block(n);
	b->owner = cpu_to_le64(t->owner);
	b->reserved = cpu_to_le64(0);
	b->node = h;
	memset(n->s.e + n->s.used, 0, n->cap - n->s.used);
	return nodeio_write(t->io, n->blocknr, CSV_MAGIC_INDEX, n->buf);
}

/* ---- One operation ----------------------------------------------------- */

struct bt_op {
	struct csv_btree *t;
	uint32_t block_cap;
	struct bt_node *path[BTREE_MAX_LEVELS + 1];
	unsigned idx[BTREE_MAX_LEVELS + 1];  /* path[d + 1] is entry idx[d] of path[d] */
	unsigned depth;                      /* path[depth] is the leaf */
	struct bt_node *nodes[BT_MAX_OP_NODES];
	unsigned nnodes;
	struct bt_seq scratch;               /* two nodes' worth, for splits and merges */
	uint8_t *scratch_buf;                /* its offsets, then its entries */
};

static int op_init(struct bt_op *op, struct csv_btree *t)
{
	memset(op, 0, sizeof(*op));
	int r = bt_validate(t);
	if (r < 0)
		return r;
	op->t = t;
	op->block_cap = t->io->node_size - BT_BLOCK_HDR;
	return 0;
}

/* Ends an operation: on failure gives back the blocks it allocated. */
static void op_finish(struct bt_op *op, int r)
{
	for (unsigned i = 0; i < op->nnodes; i++) {
		if (r < 0 && op->nodes[i]->is_new)
			(void)nodeio_free(op->t->io, op->nodes[i]->blocknr);
		node_free(op->nodes[i]);
	}
	op->nnodes = 0;
	free(op->scratch_buf);
	op->scratch_buf = NULL;
}

static int op_add(struct bt_op *op, struct bt_node **ret)
{
	if (op->nnodes == BT_MAX_OP_NODES)
		return -EUCLEAN;
	struct bt_node *n = node_new(op->t->io->node_size);
	if (!n)
		return -ENOMEM;
	op->nodes[op->nnodes++] = n;
	*ret = n;
	return 0;
}

/* The node at blocknr at level: the copy this operation already holds, or
 * read from disk. */
static int op_get(struct bt_op *op, uint64_t blocknr, unsigned level, struct bt_node **ret)
{
	struct bt_node *n;
	int r;

	if (blocknr == 0)
		return -EUCLEAN;
	for (unsigned i = 0; i < op->nnodes; i++) {
		n = op->nodes[i];
		if (n->blocknr != blocknr)
			continue;
		if (n->freed || n->level != level)
			return -EUCLEAN;
		*ret = n;
		return 0;
	}
	r = op_add(op, &n);
	if (r < 0)
		return r;
	r = node_load(op->t, n, blocknr, level);
	if (r < 0) {
		n->blocknr = 0;  /* never match it again */
		return r;
	}
	*ret = n;
	return 0;
}

/* A new, empty index block at level. */
static int op_new_block(struct bt_op *op, unsigned level, struct bt_node **ret)
{
	struct bt_node *n;
	uint64_t b;
	int r = op_add(op, &n);
	if (r < 0)
		return r;
	r = nodeio_alloc(op->t->io, &b);
	if (r < 0)
		return r;
	if (b == 0)
		return -EUCLEAN;  /* block 0 is the volume header: a broken allocator */
	/* A block the tree already uses was free in the allocator: the tree
	 * or the bitmap is damaged. Give it back and stop. */
	for (unsigned i = 0; i + 1 < op->nnodes; i++) {
		if (op->nodes[i]->blocknr == b) {
			(void)nodeio_free(op->t->io, b);
			return -EUCLEAN;
		}
	}
	memset(n->buf, 0, BT_BLOCK_HDR);
	n->blocknr = b;
	n->is_new = true;
	n->dirty = true;
	n->level = level;
	n->next_leaf = 0;
	n->cap = op->block_cap;
	*ret = n;
	return 0;
}

static int op_scratch(struct bt_op *op)
{
	if (!op->scratch_buf) {
		uint32_t space = 2u * (op->t->io->node_size + BT_SLACK);
		size_t offs = seq_off_bytes(space);
		op->scratch_buf = malloc(offs + space);
		if (!op->scratch_buf)
			return -ENOMEM;
		seq_init(&op->scratch, op->scratch_buf + offs, space, (uint32_t *)(void *)op->scratch_buf);
	}
	op->scratch.count = 0;
	op->scratch.used = 0;
	op->scratch.off[0] = 0;
	return 0;
}

/* Loads the root and the nodes down to the leaf where name belongs (the
 * leftmost leaf when name is NULL). */
static int op_descend(struct bt_op *op, const uint8_t *name, size_t len)
{
	struct bt_node *n;
	int r = op_add(op, &n);
	if (r < 0)
		return r;
	r = root_load(op->t, n, true, NULL, 0);
	if (r < 0)
		return r;
	op->path[0] = n;
	unsigned d = 0;
	while (op->path[d]->level > 0) {
		const struct bt_node *p = op->path[d];
		unsigned i = name ? inner_find(&p->s, name, len) : 0;
		op->idx[d] = i;
		r = op_get(op, ent_ref(seq_at(&p->s, i)), p->level - 1, &op->path[d + 1]);
		if (r < 0)
			return r;
		d++;
	}
	op->depth = d;
	return 0;
}

/* The smallest name under path[d] is now name: rewrite the separator that
 * records it, in the nearest ancestor reaching it through a non-first
 * entry. name must not point into a node of the path. */
static int subtree_min_changed(struct bt_op *op, unsigned d, const uint8_t *name, size_t len)
{
	while (d-- > 0) {
		if (op->idx[d] == 0)
			continue;
		op->path[d]->dirty = true;
		return seq_set_name(&op->path[d]->s, op->idx[d], name, len);
	}
	return 0;
}

/* Splits the entries in the scratch sequence (a node at level) into L and
 * R, both within block capacity and as even as possible; the name of R's
 * first entry goes to sep (and for an inner R, its entry 0 loses it). */
static int distribute(struct bt_op *op, unsigned level, struct bt_node *l, struct bt_node *rn,
		      uint8_t sep[CSV_NAME_MAX], size_t *ret_sep_len)
{
	const struct bt_seq *s = &op->scratch;
	uint32_t best = UINT32_MAX, cap = op->block_cap;
	unsigned k = 0;

	for (unsigned i = 1; i < s->count; i++) {
		uint32_t left = s->off[i], right = s->used - s->off[i];
		if (level > 0)
			right = right - ent_size(seq_at(s, i)) + BT_MIN_ENTRY;
		if (left > cap || right > cap)
			continue;
		if (MAX(left, right) < best) {
			best = MAX(left, right);
			k = i;
		}
	}
	if (k == 0)
		return -EUCLEAN;

	const uint8_t *ek = seq_at(s, k);
	*ret_sep_len = ent_len(ek);
	memcpy(sep, ent_name(ek), ent_len(ek));

	memcpy(l->s.e, s->e, s->off[k]);
	l->s.count = k;
	l->s.used = s->off[k];
	seq_reindex(&l->s);

	uint32_t from = s->off[k], o = 0;
	if (level > 0) {
		uint8_t ent[BT_MAX_ENTRY];
		o = ent_build(ent, ent_ref(ek), NULL, 0, 0);
		memcpy(rn->s.e, ent, o);
		from = s->off[k + 1];
	}
	memcpy(rn->s.e + o, s->e + from, s->used - from);
	rn->s.count = s->count - k;
	rn->s.used = o + (s->used - from);
	seq_reindex(&rn->s);
	return 0;
}

/* n, entry i of p, is too big: move its upper part to a new block. */
static int split(struct bt_op *op, struct bt_node *n, struct bt_node *p, unsigned i)
{
	uint8_t sep[CSV_NAME_MAX], ent[BT_MAX_ENTRY];
	struct bt_node *m;
	size_t sep_len;
	int r;

	if ((r = op_scratch(op)) < 0 || (r = seq_copy(&op->scratch, &n->s)) < 0)
		return r;
	r = op_new_block(op, n->level, &m);
	if (r < 0)
		return r;
	r = distribute(op, n->level, n, m, sep, &sep_len);
	if (r < 0)
		return r;
	if (n->level == 0) {
		m->next_leaf = n->next_leaf;
		n->next_leaf = m->blocknr;
	}
	n->dirty = m->dirty = p->dirty = true;
	uint32_t size = ent_build(ent, m->blocknr, sep, sep_len, 0);
	return seq_insert(&p->s, i + 1, ent, size);
}

/* path[d] is under a quarter full: merge it with a sibling, or even the
 * two out when they do not fit in one block. */
static int rebalance(struct bt_op *op, unsigned d)
{
	struct bt_node *n = op->path[d], *p = op->path[d - 1], *l, *rn;
	unsigned i = op->idx[d - 1], ri;
	uint8_t sep[CSV_NAME_MAX], ent[BT_MAX_ENTRY];
	size_t sep_len;
	int r;

	if (i > 0) {
		r = op_get(op, ent_ref(seq_at(&p->s, i - 1)), n->level, &l);
		rn = n;
		ri = i;
	} else {
		l = n;
		r = op_get(op, ent_ref(seq_at(&p->s, 1)), n->level, &rn);
		ri = 1;
	}
	if (r < 0)
		return r;
	/* Inner nodes are never empty (a damaged tree is refused on load). */
	if (l == rn || (n->level > 0 && (l->s.count == 0 || rn->s.count == 0)))
		return -EUCLEAN;
	const uint8_t *pe = seq_at(&p->s, ri);
	sep_len = ent_len(pe);
	memcpy(sep, ent_name(pe), sep_len);
	bool left_was_empty = l->s.count == 0;

	if ((r = op_scratch(op)) < 0 || (r = seq_copy(&op->scratch, &l->s)) < 0)
		return r;
	if (n->level > 0) {
		/* R's first child comes with the separator from the parent. */
		uint32_t size = ent_build(ent, ent_ref(seq_at(&rn->s, 0)), sep, sep_len, 0);
		if ((r = seq_insert(&op->scratch, op->scratch.count, ent, size)) < 0 ||
		    (r = seq_append_from(&op->scratch, &rn->s, 1)) < 0)
			return r;
	} else if ((r = seq_append_from(&op->scratch, &rn->s, 0)) < 0) {
		return r;
	}

	l->dirty = rn->dirty = p->dirty = true;
	if (op->scratch.used <= op->block_cap) {
		if ((r = seq_copy(&l->s, &op->scratch)) < 0)
			return r;
		if (n->level == 0)
			l->next_leaf = rn->next_leaf;
		rn->freed = true;
		r = seq_remove(&p->s, ri);
	} else {
		uint8_t nsep[CSV_NAME_MAX];
		size_t nsep_len;
		if ((r = distribute(op, n->level, l, rn, nsep, &nsep_len)) < 0)
			return r;
		r = seq_set_name(&p->s, ri, nsep, nsep_len);
	}
	if (r < 0)
		return r;
	/* An emptied leftmost leaf now starts with its right sibling's old
	 * smallest name. */
	if (l == n && left_was_empty)
		r = subtree_min_changed(op, d, sep, sep_len);
	return r;
}

/* The root: push it down into a new block when it overflows the record,
 * pull a single child up into it when that child fits. */
static int fix_root(struct bt_op *op)
{
	struct bt_node *root = op->path[0], *c;
	uint8_t ent[BT_MAX_ENTRY];
	int r;

	if (root->s.used > root->cap) {
		if (root->level + 1 >= BTREE_MAX_LEVELS)
			return -ENOSPC;  /* the index cannot grow another level */
		r = op_new_block(op, root->level, &c);
		if (r < 0)
			return r;
		if ((r = seq_copy(&c->s, &root->s)) < 0)
			return r;
		root->level++;
		root->next_leaf = 0;
		root->s.count = 0;
		root->s.used = 0;
		root->s.off[0] = 0;
		root->dirty = true;
		uint32_t size = ent_build(ent, c->blocknr, NULL, 0, 0);
		if ((r = seq_insert(&root->s, 0, ent, size)) < 0)
			return r;
		if (c->s.used > c->cap && (r = split(op, c, root, 0)) < 0)
			return r;
	}
	while (root->level > 0 && root->s.count == 1) {
		r = op_get(op, ent_ref(seq_at(&root->s, 0)), root->level - 1, &c);
		if (r < 0)
			return r;
		if (c->s.used > root->cap)
			break;
		if ((r = seq_copy(&root->s, &c->s)) < 0)
			return r;
		root->level = c->level;
		root->next_leaf = 0;
		root->dirty = true;
		c->freed = true;
	}
	return 0;
}

/* Repairs the path bottom-up after the leaf changed. */
static int op_fixup(struct bt_op *op)
{
	for (unsigned d = op->depth; d > 0; d--) {
		struct bt_node *n = op->path[d], *p = op->path[d - 1];
		unsigned i = op->idx[d - 1];
		int r = 0;

		if (!n->dirty || n->freed)
			continue;
		if (i >= p->s.count || ent_ref(seq_at(&p->s, i)) != n->blocknr)
			return -EUCLEAN;
		if (n->s.used > n->cap)
			r = split(op, n, p, i);
		else if (n->s.used < n->cap / 4 && p->s.count >= 2)
			r = rebalance(op, d);
		if (r < 0)
			return r;
	}
	return fix_root(op);
}

/* Writes what changed, then frees what was dropped. */
static int op_commit(struct bt_op *op)
{
	int r;
	/* From the first write on, a failure leaves new blocks allocated
	 * rather than freeing blocks a written node may point to. */
	for (unsigned i = 0; i < op->nnodes; i++)
		op->nodes[i]->is_new = false;
	for (unsigned i = 0; i < op->nnodes; i++) {
		struct bt_node *n = op->nodes[i];
		if (n->dirty && !n->freed && n->blocknr != 0 && (r = node_store(op->t, n)) < 0)
			return r;
	}
	if (op->path[0]->dirty && (r = node_store(op->t, op->path[0])) < 0)
		return r;
	for (unsigned i = 0; i < op->nnodes; i++) {
		struct bt_node *n = op->nodes[i];
		if (n->freed && (r = nodeio_free(op->t->io, n->blocknr)) < 0)
			return r;
	}
	return 0;
}

/* ---- The interface ----------------------------------------------------- */

void btree_root_init(void *root, uint32_t root_size)
{
	memset(root, 0, root_size);  /* level 0, no entries, no next leaf */
}

/* Starts an operation on t and finds name's entry in the leaf it descends
 * to (*ret_pos); -ENOENT when there is none. End it with op_finish()
 * whatever this returns. */
static int op_find(struct bt_op *op, struct csv_btree *t, const void *name, size_t len, unsigned *ret_pos)
{
	int r = op_init(op, t);
	if (r == 0)
		r = op_descend(op, name, len);
	if (r < 0)
		return r;
	const struct bt_seq *s = &op->path[op->depth]->s;
	unsigned pos = leaf_find(s, name, len, false);
	if (pos >= s->count || ent_cmp(seq_at(s, pos), name, len) != 0)
		return -ENOENT;
	*ret_pos = pos;
	return 0;
}

int btree_lookup(struct csv_btree *t, const void *name, size_t len, uint64_t *ret_ref,
		 uint8_t *ret_type)
{
	struct bt_op op;
	int r = check_name(name, len);
	if (r < 0)
		return r;
	unsigned pos;
	r = op_find(&op, t, name, len, &pos);
	if (r == 0) {
		const uint8_t *e = seq_at(&op.path[op.depth]->s, pos);
		if (ret_ref)
			*ret_ref = ent_ref(e);
		if (ret_type)
			*ret_type = e[9];
	}
	op_finish(&op, r);
	return r;
}

int btree_insert(struct csv_btree *t, const void *name, size_t len, uint64_t ref, uint8_t type)
{
	uint8_t ent[BT_MAX_ENTRY];
	struct bt_op op;
	int r = check_name(name, len);
	if (r < 0)
		return r;
	if ((r = op_init(&op, t)) < 0)
		return r;
	if ((r = op_descend(&op, name, len)) < 0)
		goto out;
	struct bt_node *leaf = op.path[op.depth];
	unsigned pos = leaf_find(&leaf->s, name, len, false);
	if (pos < leaf->s.count && ent_cmp(seq_at(&leaf->s, pos), name, len) == 0) {
		r = -EEXIST;
		goto out;
	}
	uint32_t size = ent_build(ent, ref, name, len, type);
	if ((r = seq_insert(&leaf->s, pos, ent, size)) < 0)
		goto out;
	leaf->dirty = true;
	/* Only under a damaged separator can a new name become a subtree's
	 * smallest; keep the separator exact then too. */
	if (pos == 0 && op.depth > 0 && (r = subtree_min_changed(&op, op.depth, name, len)) < 0)
		goto out;
	if ((r = op_fixup(&op)) < 0)
		goto out;
	r = op_commit(&op);
out:
	op_finish(&op, r);
	return r;
}

int btree_replace(struct csv_btree *t, const void *name, size_t len, uint64_t ref,
		  uint8_t type, uint64_t *ret_old_ref)
{
	struct bt_op op;
	int r = check_name(name, len);
	if (r < 0)
		return r;
	unsigned pos;
	if ((r = op_find(&op, t, name, len, &pos)) < 0)
		goto out;
	struct bt_node *leaf = op.path[op.depth];
	uint8_t *e = seq_at(&leaf->s, pos);
	uint64_t old = ent_ref(e);
	ent_set_ref(e, ref);
	e[9] = type;
	leaf->dirty = true;
	if ((r = op_commit(&op)) < 0)
		goto out;
	if (ret_old_ref)
		*ret_old_ref = old;
out:
	op_finish(&op, r);
	return r;
}

int btree_delete(struct csv_btree *t, const void *name, size_t len, uint64_t *ret_ref)
{
	uint8_t first[CSV_NAME_MAX];
	struct bt_op op;
	int r = check_name(name, len);
	if (r < 0)
		return r;
	unsigned pos;
	if ((r = op_find(&op, t, name, len, &pos)) < 0)
		goto out;
	struct bt_node *leaf = op.path[op.depth];
	uint64_t old = ent_ref(seq_at(&leaf->s, pos));
	if ((r = seq_remove(&leaf->s, pos)) < 0)
		goto out;
	leaf->dirty = true;
	if (pos == 0 && op.depth > 0 && leaf->s.count > 0) {
		const uint8_t *e = seq_at(&leaf->s, 0);
		size_t flen = ent_len(e);
		memcpy(first, ent_name(e), flen);
		if ((r = subtree_min_changed(&op, op.depth, first, flen)) < 0)
			goto out;
	}
	if ((r = op_fixup(&op)) < 0)
		goto out;
	if ((r = op_commit(&op)) < 0)
		goto out;
	if (ret_ref)
		*ret_ref = old;
out:
	op_finish(&op, r);
	return r;
}

int btree_iterate(struct csv_btree *t, const void *after, size_t after_len, btree_iter_fn fn,
		  void *userdata)
{
	uint8_t last[CSV_NAME_MAX];
	size_t last_len = 0;
	bool have_last = false;
	struct bt_node *chain = NULL;
	struct bt_op op;
	int r;

	if (!fn)
		return -EINVAL;
	if ((r = op_init(&op, t)) < 0)
		return r;
	if ((r = op_descend(&op, after, after_len)) < 0)
		goto out;
	struct bt_node *n = op.path[op.depth];
	unsigned pos = after ? leaf_find(&n->s, after, after_len, true) : 0;
	for (;;) {
		/* Non-empty leaves with rising names: a cycle cannot go on. */
		if (n->blocknr != 0 && n->s.count == 0) {
			r = -EUCLEAN;
			break;
		}
		if (have_last && ent_cmp(seq_at(&n->s, 0), last, last_len) <= 0) {
			r = -EUCLEAN;
			break;
		}
		for (unsigned i = pos; i < n->s.count; i++) {
			const uint8_t *e = seq_at(&n->s, i);
			r = fn(userdata, ent_name(e), ent_len(e), ent_ref(e), e[9]);
			if (r)
				goto out;
		}
		if (n->blocknr == 0 || n->next_leaf == 0) {
			r = 0;
			break;
		}
		const uint8_t *e = seq_at(&n->s, n->s.count - 1);
		last_len = ent_len(e);
		memcpy(last, ent_name(e), last_len);
		have_last = true;
		uint64_t next = n->next_leaf;
		if (!chain && !(chain = node_new(t->io->node_size))) {
			r = -ENOMEM;
			break;
		}
		if ((r = node_load(t, chain, next, 0)) < 0)
			break;
		n = chain;
		pos = 0;
	}
out:
	node_free(chain);
	op_finish(&op, r < 0 ? r : 0);
	return r;
}

static int count_one(void *ud, const uint8_t *name, size_t len, uint64_t ref, uint8_t type)
{
	(*(uint64_t *)ud)++;
	return 0;
}

int btree_count(struct csv_btree *t, uint64_t *ret)
{
	uint64_t n = 0;
	int r = btree_iterate(t, NULL, 0, count_one, &n);
	if (r < 0)
		return r;
	*ret = n;
	return 0;
}

/* ---- A set of block numbers -------------------------------------------- */

struct bt_set {
	uint64_t *v;  /* open addressing, 0 = empty slot (block 0 is never a node) */
	size_t cap, n;
};

static size_t set_slot(const struct bt_set *s, uint64_t key)
{
	return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 32) & (s->cap - 1);
}

static bool set_has(const struct bt_set *s, uint64_t key)
{
	if (!s->cap)
		return false;
	for (size_t i = set_slot(s, key);; i = (i + 1) & (s->cap - 1)) {
		if (s->v[i] == key)
			return true;
		if (s->v[i] == 0)
			return false;
	}
}

/* Puts key in a table with room; returns 1 if added, 0 if present. */
static int set_put(struct bt_set *s, uint64_t key)
{
	size_t i = set_slot(s, key);
	while (s->v[i] && s->v[i] != key)
		i = (i + 1) & (s->cap - 1);
	if (s->v[i] == key)
		return 0;
	s->v[i] = key;
	s->n++;
	return 1;
}

/* Returns 1 if added, 0 if present, -ENOMEM. */
static int set_add(struct bt_set *s, uint64_t key)
{
	if ((s->n + 1) * 2 > s->cap) {
		struct bt_set g = { .cap = s->cap ? s->cap * 2 : 256 };
		g.v = calloc(g.cap, sizeof(*g.v));
		if (!g.v)
			return -ENOMEM;
		for (size_t i = 0; i < s->cap; i++)
			if (s->v[i])
				(void)set_put(&g, s->v[i]);
		free(s->v);
		*s = g;
	}
	return set_put(s, key);
}

/* ---- Destroy ----------------------------------------------------------- */

struct bt_destroy {
	struct csv_btree *t;
	struct bt_set blocks;   /* verified blocks of this tree, to free */
	struct bt_node *nodes[BTREE_MAX_LEVELS + 1];
	int unreadable;
};

static int destroy_collect(struct bt_destroy *z, const struct bt_node *p, unsigned depth)
{
	for (unsigned i = 0; i < p->s.count; i++) {
		uint64_t b = ent_ref(seq_at(&p->s, i));
		struct bt_node *n;
		int r;

		if (set_has(&z->blocks, b))
			continue;  /* shared by two parents: free it once */
		if (depth > BTREE_MAX_LEVELS) {
			z->unreadable++;
			continue;
		}
		if (!z->nodes[depth] && !(z->nodes[depth] = node_new(z->t->io->node_size)))
			return -ENOMEM;
		n = z->nodes[depth];
		/* Only blocks that verify as ours are freed. */
		if (node_read(z->t, n, b) < 0 || le64_to_cpu(node_block(n)->owner) != z->t->owner ||
		    n->level != p->level - 1) {
			z->unreadable++;
			continue;
		}
		if ((r = set_add(&z->blocks, b)) < 0)
			return r;
		if (n->level == 0)
			continue;
		if (node_parse(n, false, NULL, 0) < 0) {
			z->unreadable++;
			continue;
		}
		if ((r = destroy_collect(z, n, depth + 1)) < 0)
			return r;
	}
	return 0;
}

int btree_destroy(struct csv_btree *t)
{
	struct bt_destroy z = { .t = t };
	struct bt_node *root = NULL;
	int r = bt_validate(t);
	if (r < 0)
		return r;
	if (!(root = node_new(t->io->node_size))) {
		r = -ENOMEM;
		goto out;
	}
	if (root_load(t, root, false, NULL, 0) < 0)
		z.unreadable++;
	else if (root->level > 0 && (r = destroy_collect(&z, root, 1)) < 0)
		goto out;  /* nothing freed yet */
	for (size_t i = 0; i < z.blocks.cap; i++) {
		int q;
		if (z.blocks.v[i] && (q = nodeio_free(t->io, z.blocks.v[i])) < 0 && r == 0)
			r = q;
	}
	btree_root_init(t->root, t->root_size);
	if (r == 0)
		r = z.unreadable;
out:
	node_free(root);
	for (unsigned d = 0; d <= BTREE_MAX_LEVELS; d++)
		node_free(z.nodes[d]);
	free(z.blocks.v);
	return r;
}

/* ---- Check ------------------------------------------------------------- */

struct bt_bound {
	const uint8_t *name;  /* NULL: unbounded */
	size_t len;
};

struct bt_check {
	struct csv_btree *t;
	const struct btree_check_ops *ops;
	void *ud;
	int problems;
	struct bt_set seen;
	struct bt_node *nodes[BTREE_MAX_LEVELS + 1];  /* one per depth */
	/* The leaf chain: the last leaf seen in order and its next_leaf. When
	 * a subtree could not be read, what follows it is unknown. */
	bool chain_known, have_prev;
	uint64_t prev_leaf, prev_next;
};

_printf_(3, 4)
static void report(struct bt_check *c, uint64_t blocknr, const char *fmt, ...)
{
	char msg[384];
	int k;
	va_list ap;

	if (blocknr)
		k = snprintf(msg, sizeof(msg), "index block %" PRIu64 ": ", blocknr);
	else
		k = snprintf(msg, sizeof(msg), "index root: ");
	va_start(ap, fmt);
	vsnprintf(msg + k, sizeof(msg) - (size_t)k, fmt, ap);
	va_end(ap);
	if (c->ops && c->ops->error)
		c->ops->error(c->ud, blocknr, msg);
	if (c->problems < INT_MAX)
		c->problems++;
}

static void chain_lost(struct bt_check *c)
{
	c->chain_known = false;
}

static void check_leaf_chain(struct bt_check *c, const struct bt_node *n)
{
	if (c->chain_known && c->have_prev && c->prev_next != n->blocknr)
		report(c, c->prev_leaf, "next_leaf is %" PRIu64 ", but the next leaf in order is %" PRIu64,
		       c->prev_next, n->blocknr);
	c->have_prev = true;
	c->chain_known = true;
	c->prev_leaf = n->blocknr;
	c->prev_next = n->next_leaf;
}

static int check_block(struct bt_check *c, uint64_t blocknr, unsigned depth, unsigned level,
		       struct bt_bound lo, bool lo_exact, struct bt_bound hi);

/* The entries of a parsed node, whose names must lie in [lo, hi); with
 * lo_exact the smallest name under it must be lo itself. */
static int check_contents(struct bt_check *c, struct bt_node *n, unsigned depth,
			  struct bt_bound lo, bool lo_exact, struct bt_bound hi)
{
	const struct bt_seq *s = &n->s;
	uint64_t b = n->blocknr;
	bool bad_order = false, bad_lo = false, bad_hi = false;

	if (n->level == 0) {
		if (depth > 0 && s->count == 0)
			report(c, b, "leaf without entries");
		for (unsigned i = 0; i < s->count; i++) {
			const uint8_t *e = seq_at(s, i);
			if (c->ops && c->ops->entry)
				c->ops->entry(c->ud, ent_name(e), ent_len(e), ent_ref(e), e[9]);
			if (i > 0 && !bad_order &&
			    ent_cmp(seq_at(s, i - 1), ent_name(e), ent_len(e)) >= 0) {
				report(c, b, "entries %u and %u out of order", i - 1, i);
				bad_order = true;
			}
			if (lo.name && !bad_lo && ent_cmp(e, lo.name, lo.len) < 0) {
				report(c, b, "entry %u sorts before the separator leading here", i);
				bad_lo = true;
			}
			if (hi.name && !bad_hi && ent_cmp(e, hi.name, hi.len) >= 0) {
				report(c, b, "entry %u sorts at or after the next separator in the parent", i);
				bad_hi = true;
			}
		}
		if (lo.name && lo_exact && s->count > 0 && !bad_lo &&
		    ent_cmp(seq_at(s, 0), lo.name, lo.len) != 0)
			report(c, b, "smallest name differs from the separator leading here");
		if (depth == 0) {
			if (n->next_leaf)
				report(c, b, "root leaf has next_leaf %" PRIu64, n->next_leaf);
		} else {
			check_leaf_chain(c, n);
		}
		return 0;
	}

	if (n->next_leaf)
		report(c, b, "inner node has next_leaf %" PRIu64, n->next_leaf);
	if (s->count == 0) {
		report(c, b, "inner node without entries");
		chain_lost(c);
		return 0;
	}
	for (unsigned i = 0; i < s->count; i++) {
		const uint8_t *e = seq_at(s, i);
		if (e[9])
			report(c, b, "entry %u: reserved byte is %u", i, e[9]);
		if (i == 0)
			continue;
		if (i > 1 && !bad_order && ent_cmp(seq_at(s, i - 1), ent_name(e), ent_len(e)) >= 0) {
			report(c, b, "separators %u and %u out of order", i - 1, i);
			bad_order = true;
		}
		if (lo.name && !bad_lo && ent_cmp(e, lo.name, lo.len) <= 0) {
			report(c, b, "separator %u not above the separator leading here", i);
			bad_lo = true;
		}
		if (hi.name && !bad_hi && ent_cmp(e, hi.name, hi.len) >= 0) {
			report(c, b, "separator %u at or after the next separator in the parent", i);
			bad_hi = true;
		}
	}
	for (unsigned i = 0; i < s->count; i++) {
		const uint8_t *e = seq_at(s, i);
		uint64_t child = ent_ref(e);
		struct bt_bound clo = lo, chi = hi;
		bool cexact = lo_exact;

		if (i > 0) {
			clo = (struct bt_bound){ ent_name(e), ent_len(e) };
			cexact = true;
		}
		if (i + 1 < s->count) {
			const uint8_t *nx = seq_at(s, i + 1);
			chi = (struct bt_bound){ ent_name(nx), ent_len(nx) };
		}
		if (child == 0) {
			report(c, b, "entry %u points to block 0", i);
			chain_lost(c);
			continue;
		}
		int r = check_block(c, child, depth + 1, n->level - 1, clo, cexact, chi);
		if (r < 0)
			return r;
	}
	return 0;
}

static int check_block(struct bt_check *c, uint64_t blocknr, unsigned depth, unsigned level,
		       struct bt_bound lo, bool lo_exact, struct bt_bound hi)
{
	char err[160];
	int r;

	if (depth > BTREE_MAX_LEVELS) {
		report(c, blocknr, "more than %u levels below the root", BTREE_MAX_LEVELS);
		chain_lost(c);
		return 0;
	}
	r = set_add(&c->seen, blocknr);
	if (r < 0)
		return r;
	if (r == 0) {
		report(c, blocknr, "reached twice (two parents, or a cycle)");
		chain_lost(c);
		return 0;
	}
	if (!c->nodes[depth] && !(c->nodes[depth] = node_new(c->t->io->node_size)))
		return -ENOMEM;
	struct bt_node *n = c->nodes[depth];
	r = node_read(c->t, n, blocknr);
	if (r < 0) {
		const char *why = read_error_str(r);
		if (why)
			report(c, blocknr, "%s", why);
		else
			report(c, blocknr, "cannot be read: %s", strerror(-r));
		chain_lost(c);
		return 0;
	}
	const struct csv_d_index_block *blk = node_block(n);
	if (le64_to_cpu(blk->owner) != c->t->owner) {
		report(c, blocknr, "belongs to directory %#" PRIx64 ", not %#" PRIx64,
		       le64_to_cpu(blk->owner), c->t->owner);
		chain_lost(c);
		return 0;
	}
	if (c->ops && c->ops->node)
		c->ops->node(c->ud, blocknr, n->level);
	if (n->level != level) {
		report(c, blocknr, "level %u, expected %u", n->level, level);
		chain_lost(c);
		return 0;
	}
	if (le64_to_cpu(blk->reserved) != 0)
		report(c, blocknr, "reserved header field is not zero");
	if (node_parse(n, false, err, sizeof(err)) < 0) {
		report(c, blocknr, "%s", err);
		chain_lost(c);
		return 0;
	}
	return check_contents(c, n, depth, lo, lo_exact, hi);
}

int btree_check(struct csv_btree *t, const struct btree_check_ops *ops, void *ud)
{
	struct bt_check c = { .t = t, .ops = ops, .ud = ud, .chain_known = true };
	const struct bt_bound none = { NULL, 0 };
	char err[160];
	int r = bt_validate(t);
	if (r < 0)
		return r;
	if (!(c.nodes[0] = node_new(t->io->node_size)))
		return -ENOMEM;
	if (root_load(t, c.nodes[0], false, err, sizeof(err)) < 0) {
		report(&c, 0, "%s", err);
	} else {
		r = check_contents(&c, c.nodes[0], 0, none, false, none);
		if (r >= 0 && c.chain_known && c.have_prev && c.prev_next != 0)
			report(&c, c.prev_leaf, "next_leaf is %" PRIu64 " after the last leaf", c.prev_next);
	}
	for (unsigned d = 0; d <= BTREE_MAX_LEVELS; d++)
		node_free(c.nodes[d]);
	free(c.seen.v);
	return r < 0 ? r : c.problems;
}
