/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "bitmap.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "meta.h"
#include "util.h"
#include "volume.h"

#define WORD_BITS 64u
#define BLOCK_WORDS (CSV_BITMAP_BITS / WORD_BITS)   /* 504 */
static_assert(CSV_BITMAP_BITS % WORD_BITS == 0, "bitmap block holds whole words");

/* Blocks written or read per system call by bitmap_store and bitmap_load. */
#define BATCH_BLOCKS 256u

static uint64_t nwords(uint64_t nbits)
{
	return DIV_ROUND_UP(nbits, WORD_BITS);
}

int bitmap_init(struct csv_bitmap *bm, uint64_t nbits)
{
	uint64_t n = nwords(nbits);
	if (n > SIZE_MAX / sizeof(uint64_t))
		return -ENOMEM;
	uint64_t *w = calloc(n ? n : 1, sizeof(uint64_t));
	if (!w)
		return -ENOMEM;
	bm->nbits = nbits;
	bm->words = w;
	return 0;
}

void bitmap_free(struct csv_bitmap *bm)
{
	if (!bm)
		return;
	free(bm->words);
	bm->words = NULL;
	bm->nbits = 0;
}

int bitmap_copy(const struct csv_bitmap *src, struct csv_bitmap *ret)
{
	struct csv_bitmap b;
	int r = bitmap_init(&b, src->nbits);
	if (r < 0)
		return r;
	memcpy(b.words, src->words, nwords(src->nbits) * sizeof(uint64_t));
	*ret = b;
	return 0;
}

bool bitmap_test(const struct csv_bitmap *bm, uint64_t bit)
{
	if (bit >= bm->nbits)
		return false;
	return (bm->words[bit / WORD_BITS] >> (bit % WORD_BITS)) & 1;
}

static int range_op(struct csv_bitmap *bm, uint64_t start, uint64_t len, bool set)
{
	if (start > bm->nbits || len > bm->nbits - start)
		return -ERANGE;
	if (len == 0)
		return 0;

	uint64_t end = start + len;
	uint64_t i = start / WORD_BITS, last = (end - 1) / WORD_BITS;
	uint64_t first_mask = ~0ull << (start % WORD_BITS);
	uint64_t last_mask = ~0ull >> (WORD_BITS - 1 - (end - 1) % WORD_BITS);
	uint64_t *w = bm->words;

	if (i == last) {
		uint64_t m = first_mask & last_mask;
		w[i] = set ? w[i] | m : w[i] & ~m;
		return 0;
	}
	w[i] = set ? w[i] | first_mask : w[i] & ~first_mask;
	if (last > i + 1)
		memset(&w[i + 1], set ? 0xff : 0, (last - i - 1) * sizeof(uint64_t));
	w[last] = set ? w[last] | last_mask : w[last] & ~last_mask;
	return 0;
}

int bitmap_set_range(struct csv_bitmap *bm, uint64_t start, uint64_t len)
{
	return range_op(bm, start, len, true);
}

int bitmap_clear_range(struct csv_bitmap *bm, uint64_t start, uint64_t len)
{
	return range_op(bm, start, len, false);
}

/* The first bit at or after from where (word ^ invert) has a one. */
static uint64_t find_next(const struct csv_bitmap *bm, uint64_t from, uint64_t invert)
{
	if (from >= bm->nbits)
		return bm->nbits;
	uint64_t n = nwords(bm->nbits);
	uint64_t i = from / WORD_BITS;
	uint64_t w = (bm->words[i] ^ invert) & (~0ull << (from % WORD_BITS));
	while (!w) {
		if (++i >= n)
			return bm->nbits;
		w = bm->words[i] ^ invert;
	}
	uint64_t bit = i * WORD_BITS + (uint64_t)__builtin_ctzll(w);
	return MIN(bit, bm->nbits);
}

uint64_t bitmap_find_next_set(const struct csv_bitmap *bm, uint64_t from)
{
	return find_next(bm, from, 0);
}

uint64_t bitmap_find_next_clear(const struct csv_bitmap *bm, uint64_t from)
{
	return find_next(bm, from, ~0ull);
}

uint64_t bitmap_count_set(const struct csv_bitmap *bm, uint64_t start, uint64_t len)
{
	if (start >= bm->nbits || len == 0)
		return 0;
	uint64_t end = len > bm->nbits - start ? bm->nbits : start + len;
	uint64_t i = start / WORD_BITS, last = (end - 1) / WORD_BITS;
	uint64_t first_mask = ~0ull << (start % WORD_BITS);
	uint64_t last_mask = ~0ull >> (WORD_BITS - 1 - (end - 1) % WORD_BITS);
	const uint64_t *w = bm->words;

	if (i == last)
		return (uint64_t)__builtin_popcountll(w[i] & first_mask & last_mask);
	uint64_t c = (uint64_t)__builtin_popcountll(w[i] & first_mask);
	for (uint64_t k = i + 1; k < last; k++)
		c += (uint64_t)__builtin_popcountll(w[k]);
	return c + (uint64_t)__builtin_popcountll(w[last] & last_mask);
}

bool bitmap_equal(const struct csv_bitmap *a, const struct csv_bitmap *b)
{
	return a->nbits == b->nbits &&
	       memcmp(a->words, b->words, nwords(a->nbits) * sizeof(uint64_t)) == 0;
}

static uint64_t word_or_zero(const struct csv_bitmap *bm, uint64_t i)
{
	return i < nwords(bm->nbits) ? bm->words[i] : 0;
}

uint64_t bitmap_first_difference(const struct csv_bitmap *a, const struct csv_bitmap *b,
				 uint64_t from)
{
	uint64_t nbits = MAX(a->nbits, b->nbits);
	if (from >= nbits)
		return nbits;
	uint64_t n = nwords(nbits);
	uint64_t i = from / WORD_BITS;
	uint64_t w = (word_or_zero(a, i) ^ word_or_zero(b, i)) & (~0ull << (from % WORD_BITS));
	while (!w) {
		if (++i >= n)
			return nbits;
		w = word_or_zero(a, i) ^ word_or_zero(b, i);
	}
	return MIN(i * WORD_BITS + (uint64_t)__builtin_ctzll(w), nbits);
}

int bitmap_next_difference(const struct csv_bitmap *a, const struct csv_bitmap *b, uint64_t from,
			   uint64_t *ret_start, uint64_t *ret_len, bool *ret_set_in_a)
{
	uint64_t nbits = MAX(a->nbits, b->nbits);
	uint64_t start = bitmap_first_difference(a, b, from);
	if (start >= nbits)
		return 0;

	/* Extend while the bits still differ the same way round: a set and b
	 * clear, or the opposite. */
	bool in_a = bitmap_test(a, start);
	uint64_t i = start / WORD_BITS, n = nwords(nbits), end = nbits;
	uint64_t shift = start % WORD_BITS;
	for (; i < n; i++, shift = 0) {
		uint64_t wa = word_or_zero(a, i), wb = word_or_zero(b, i);
		uint64_t same_way = in_a ? wa & ~wb : ~wa & wb;
		uint64_t stop = ~same_way & (~0ull << shift);
		if (stop) {
			end = MIN(i * WORD_BITS + (uint64_t)__builtin_ctzll(stop), nbits);
			break;
		}
	}
	*ret_start = start;
	*ret_len = end - start;
	*ret_set_in_a = in_a;
	return 1;
}

/* ---- On disk ---------------------------------------------------------- */

/* Bits block index holds in a region of total_bits, or 0 beyond it. */
static uint32_t block_nbits(uint64_t total_bits, uint64_t index)
{
	if (index >= bitmap_region_blocks(total_bits))
		return 0;
	return (uint32_t)MIN((uint64_t)CSV_BITMAP_BITS, total_bits - index * CSV_BITMAP_BITS);
}

int bitmap_encode_block(const struct csv_bitmap *bm, uint64_t index, void *buf)
{
	struct csv_d_bitmap *d = buf;
	uint32_t nb = block_nbits(bm->nbits, index);
	if (nb == 0)
		return -EINVAL;

	memset(d, 0, sizeof(*d));
	d->first_bit = cpu_to_le64(index * CSV_BITMAP_BITS);
	d->nbits = cpu_to_le32(nb);
	uint64_t w0 = index * BLOCK_WORDS, n = nwords(bm->nbits);
	for (uint64_t k = 0; k < BLOCK_WORDS && w0 + k < n; k++) {
		uint64_t le = htole64(bm->words[w0 + k]);
		memcpy(d->bits + k * sizeof(le), &le, sizeof(le));
	}
	return 0;
}

int bitmap_decode_block(const void *buf, uint64_t index, uint64_t total_bits, struct csv_bitmap *bm)
{
	const struct csv_d_bitmap *d = buf;
	uint32_t nb = block_nbits(total_bits, index);
	uint64_t w[BLOCK_WORDS];

	if (nb == 0 || bm->nbits != total_bits)
		return -EINVAL;
	if (le64_to_cpu(d->first_bit) != index * CSV_BITMAP_BITS ||
	    le32_to_cpu(d->nbits) != nb || le32_to_cpu(d->reserved) != 0)
		return -EUCLEAN;
	for (uint64_t k = 0; k < BLOCK_WORDS; k++) {
		uint64_t le;
		memcpy(&le, d->bits + k * sizeof(le), sizeof(le));
		w[k] = le64toh(le);
	}
	/* Bits beyond nbits must be zero. */
	uint64_t used_words = DIV_ROUND_UP(nb, WORD_BITS);
	if (nb % WORD_BITS && (w[used_words - 1] >> (nb % WORD_BITS)))
		return -EUCLEAN;
	for (uint64_t k = used_words; k < BLOCK_WORDS; k++)
		if (w[k])
			return -EUCLEAN;
	memcpy(&bm->words[index * BLOCK_WORDS], w, used_words * sizeof(uint64_t));
	return 0;
}

int bitmap_load(struct csv_volume *v, uint64_t region_block, uint64_t region_blocks, uint32_t magic,
		uint64_t nbits, struct csv_bitmap *bm,
		void (*bad_block)(void *ud, uint64_t blocknr, int err), void *ud)
{
	struct csv_bitmap b = { 0 };
	int bad = 0, r;

	if (region_blocks != bitmap_region_blocks(nbits))
		return -EINVAL;
	if (region_block > UINT64_MAX - region_blocks)
		return -EINVAL;
	_cleanup_free_ uint8_t *buf = malloc((size_t)BATCH_BLOCKS * CSV_BLOCK_SIZE);
	if (!buf)
		return -ENOMEM;
	r = bitmap_init(&b, nbits);
	if (r < 0)
		return r;

	for (uint64_t i = 0; i < region_blocks; i += BATCH_BLOCKS) {
		uint32_t n = (uint32_t)MIN((uint64_t)BATCH_BLOCKS, region_blocks - i);
		r = volume_read_blocks(v, region_block + i, n, 1, buf);
		if (r < 0) {
			bitmap_free(&b);
			return r;
		}
		for (uint32_t k = 0; k < n; k++) {
			const uint8_t *blk = buf + (size_t)k * CSV_BLOCK_SIZE;
			uint64_t blocknr = region_block + i + k;
			r = meta_verify(blk, CSV_BLOCK_SIZE, magic, blocknr, v->g.uuid, NULL);
			if (r == 0)
				r = bitmap_decode_block(blk, i + k, nbits, &b);
			if (r < 0) {
				bad++;
				if (bad_block)
					bad_block(ud, blocknr, r);
			}
		}
	}
	*bm = b;
	return bad;
}

static int store_range(struct csv_volume *v, uint64_t region_block, uint32_t magic,
		       const struct csv_bitmap *bm, uint64_t first, uint64_t count, uint64_t lsn)
{
	uint32_t batch = (uint32_t)MIN((uint64_t)BATCH_BLOCKS, count);
	_cleanup_free_ uint8_t *buf = malloc((size_t)MAX(batch, 1u) * CSV_BLOCK_SIZE);
	int r;

	if (!buf)
		return -ENOMEM;
	if (region_block > UINT64_MAX - first - count)
		return -EINVAL;
	for (uint64_t i = first; i < first + count; i += batch) {
		uint32_t n = (uint32_t)MIN((uint64_t)batch, first + count - i);
		for (uint32_t k = 0; k < n; k++) {
			uint8_t *blk = buf + (size_t)k * CSV_BLOCK_SIZE;
			r = bitmap_encode_block(bm, i + k, blk);
			if (r < 0)
				return r;
			meta_seal(blk, CSV_BLOCK_SIZE, magic, region_block + i + k, v->g.uuid, lsn);
		}
		r = volume_write_blocks(v, region_block + i, n, 1, buf);
		if (r < 0)
			return r;
	}
	return 0;
}

int bitmap_store(struct csv_volume *v, uint64_t region_block, uint32_t magic,
		 const struct csv_bitmap *bm, uint64_t lsn)
{
	return store_range(v, region_block, magic, bm, 0, bitmap_region_blocks(bm->nbits), lsn);
}

int bitmap_store_block(struct csv_volume *v, uint64_t region_block, uint32_t magic,
		       const struct csv_bitmap *bm, uint64_t index, uint64_t lsn)
{
	if (index >= bitmap_region_blocks(bm->nbits))
		return -EINVAL;
	return store_range(v, region_block, magic, bm, index, 1, lsn);
}
