/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Bitmaps in memory (bit set = in use) and the bitmap regions on disk that
 * hold them: the cluster bitmap and the record bitmap (format.h, struct
 * csv_d_bitmap). Bits at and beyond nbits are always zero in memory. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format.h"

struct csv_volume;

struct csv_bitmap {
	uint64_t nbits;
	uint64_t *words;  /* DIV_ROUND_UP(nbits, 64) words, bit i in word i / 64 */
};

/* Blocks of a bitmap region that holds nbits bits. */
static inline uint64_t bitmap_region_blocks(uint64_t nbits)
{
	return (nbits + CSV_BITMAP_BITS - 1) / CSV_BITMAP_BITS;
}

/* Allocates an all-clear bitmap of nbits bits (nbits may be 0). */
int bitmap_init(struct csv_bitmap *bm, uint64_t nbits);
/* Frees the words and leaves an empty bitmap; accepts a zeroed struct. */
void bitmap_free(struct csv_bitmap *bm);
/* Allocates a copy of src in *ret. */
int bitmap_copy(const struct csv_bitmap *src, struct csv_bitmap *ret);

/* false for a bit at or beyond nbits. */
bool bitmap_test(const struct csv_bitmap *bm, uint64_t bit);
/* Set or clear bits [start, start + len); -ERANGE (and no change) when the
 * range does not lie inside the bitmap. len 0 does nothing. */
int bitmap_set_range(struct csv_bitmap *bm, uint64_t start, uint64_t len);
int bitmap_clear_range(struct csv_bitmap *bm, uint64_t start, uint64_t len);
/* The first set (clear) bit at or after from, or nbits when there is none. */
uint64_t bitmap_find_next_set(const struct csv_bitmap *bm, uint64_t from);
uint64_t bitmap_find_next_clear(const struct csv_bitmap *bm, uint64_t from);
/* Set bits in [start, start + len), the range clipped to the bitmap. */
uint64_t bitmap_count_set(const struct csv_bitmap *bm, uint64_t start, uint64_t len);

/* Same size and same bits. */
bool bitmap_equal(const struct csv_bitmap *a, const struct csv_bitmap *b);
/* The first bit at or after from that differs between a and b, bits
 * beyond the shorter one counting as clear; MAX(a->nbits, b->nbits) when
 * there is none. */
uint64_t bitmap_first_difference(const struct csv_bitmap *a, const struct csv_bitmap *b,
				 uint64_t from);
/* The next run of bits at or after from that are set in one bitmap and
 * clear in the other, the same way round throughout the run (for fsck:
 * "clusters 100-163 are marked in use but nothing uses them"). Returns 1
 * and fills *ret_start, *ret_len and *ret_set_in_a, or 0 when a and b
 * agree from from on. */
int bitmap_next_difference(const struct csv_bitmap *a, const struct csv_bitmap *b, uint64_t from,
			   uint64_t *ret_start, uint64_t *ret_len, bool *ret_set_in_a);

/* ---- On disk ---------------------------------------------------------- */

/* Fills the CSV_BLOCK_SIZE bytes at buf with block index of bm's region:
 * first_bit, nbits, bits, and a zeroed block header for the caller to seal
 * (meta_seal or volume_write_meta). -EINVAL when index is beyond the
 * region. */
int bitmap_encode_block(const struct csv_bitmap *bm, uint64_t index, void *buf);

/* Checks block index of a region of total_bits bits (its header already
 * verified by the caller): first_bit and nbits must be the ones the index
 * implies, reserved and the bits beyond nbits zero (-EUCLEAN otherwise).
 * Then copies its bits into bm, which must have total_bits bits (-EINVAL
 * otherwise). bm is unchanged on error. */
int bitmap_decode_block(const void *buf, uint64_t index, uint64_t total_bits, struct csv_bitmap *bm);

/* Reads a bitmap region of region_blocks blocks at region_block holding
 * nbits bits (region_blocks must be bitmap_region_blocks(nbits), -EINVAL
 * otherwise). Each block is verified (CRC, magic, block number, volume
 * UUID) and decoded; a block that fails is reported through bad_block
 * (when given) with its block number and the error, and its bits are left
 * clear. Returns the number of bad blocks and the bitmap in *bm, or a
 * negative errno when the region cannot be read at all. */
int bitmap_load(struct csv_volume *v, uint64_t region_block, uint64_t region_blocks, uint32_t magic,
		uint64_t nbits, struct csv_bitmap *bm,
		void (*bad_block)(void *ud, uint64_t blocknr, int err), void *ud);

/* Writes every block of bm's region at region_block, sealed with magic and
 * lsn, in large batches. */
int bitmap_store(struct csv_volume *v, uint64_t region_block, uint32_t magic,
		 const struct csv_bitmap *bm, uint64_t lsn);
/* Writes block index of bm's region only. */
int bitmap_store_block(struct csv_volume *v, uint64_t region_block, uint32_t magic,
		       const struct csv_bitmap *bm, uint64_t index, uint64_t lsn);
