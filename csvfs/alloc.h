/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The cluster allocator: the cluster bitmap of a volume plus its free
 * extents, kept in balanced trees by LCN and by (length, LCN) so that
 * allocating and freeing cost O(log n) in the number of free extents.
 *
 * The MFT zone [zone_lcn, zone_lcn + zone_clusters) is kept apart: free
 * extents never cross its boundaries, ALLOC_DATA takes from it only when
 * nothing is left outside, ALLOC_MFT takes from it first.
 *
 * Not thread-safe: the coordinator serialises calls. */
#pragma once

#include <stdint.h>
#include <stddef.h>

#include "bitmap.h"

struct csv_alloc;

enum alloc_pool {
	ALLOC_DATA,  /* file data, extent and index blocks */
	ALLOC_MFT,   /* growth of the MFT */
};

/* Builds an allocator from the bitmap of clusters in use (copied; its
 * nbits is the volume's total clusters) and the MFT zone, which must lie
 * inside it (-EINVAL otherwise; zone_clusters may be 0). */
int alloc_new(const struct csv_bitmap *used, uint64_t zone_lcn, uint64_t zone_clusters,
	      struct csv_alloc **ret);
/* The same, taking over used's words instead of copying them (saves 32
 * MiB on a 1 TiB volume of 4 KiB clusters): on success *used is left
 * empty; on failure it is unchanged. */
int alloc_new_take(struct csv_bitmap *used, uint64_t zone_lcn, uint64_t zone_clusters,
		   struct csv_alloc **ret);
void alloc_free_all(struct csv_alloc *a);

/* Allocates up to want clusters as one extent, best fit: the smallest free
 * extent of at least want clusters (ties: the nearest to goal, its distance
 * being 0 when goal lies inside, then the lowest LCN), want clusters taken
 * from its start. When no free extent is that large, the largest one
 * (same tie rules) whole: *ret_len < want, and the caller loops. The pool
 * decides where to look (see above). -EINVAL for want 0, -ENOSPC when
 * nothing is free. */
int alloc_extent(struct csv_alloc *a, enum alloc_pool pool, uint64_t want, uint64_t goal,
		 uint64_t *ret_lcn, uint64_t *ret_len);

/* Marks [lcn, lcn + len) in use (mkfs, fsck, journal replay): -EUCLEAN
 * and no change if any of it is in use already, -EINVAL when the range
 * is empty or not inside the volume. */
int alloc_mark_used(struct csv_alloc *a, uint64_t lcn, uint64_t len);
/* Frees [lcn, lcn + len): -EUCLEAN and no change if any of it is free
 * already (a double free), -EINVAL as above. */
int alloc_release(struct csv_alloc *a, uint64_t lcn, uint64_t len);

uint64_t alloc_free_clusters(const struct csv_alloc *a);
uint64_t alloc_zone_free_clusters(const struct csv_alloc *a);
uint64_t alloc_total_clusters(const struct csv_alloc *a);
/* Number of free extents (maximal within the zone and outside it). */
size_t alloc_free_extents(const struct csv_alloc *a);
/* The bitmap of clusters in use, always in step with the free extents. */
const struct csv_bitmap *alloc_bitmap(const struct csv_alloc *a);

/* Dirty tracking for the coordinator: which blocks of the on-disk cluster
 * bitmap (indexes into the region, see bitmap_store_block) changed since
 * the last alloc_clear_dirty(). alloc_next_dirty returns the first dirty
 * index at or after from, or UINT64_MAX. */
uint64_t alloc_next_dirty(const struct csv_alloc *a, uint64_t from);
uint64_t alloc_dirty_count(const struct csv_alloc *a);
void alloc_clear_dirty(struct csv_alloc *a);

/* Calls fn for each free extent in LCN order, extents on both sides of a
 * zone boundary joined into one. Stops at the first non-zero return of fn
 * and returns it. fn must not change the allocator. */
int alloc_iterate_free(const struct csv_alloc *a, int (*fn)(void *ud, uint64_t lcn, uint64_t len),
		       void *ud);

/* Verifies every invariant (trees ordered and balanced, the two trees
 * holding the same extents, extents maximal and inside their pool, the
 * bitmap clear exactly over them, the free counts): 0, or -EUCLEAN with a
 * sentence in err. For tests and debugging; O(n log n + bitmap). */
int alloc_check(const struct csv_alloc *a, char *err, size_t errlen);
