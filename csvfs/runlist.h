/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A file's mapping from VCN to LCN in memory, and its encoding in the DATA
 * attribute of the file record: the runs themselves (CSV_DATA_RUNS) or,
 * when they do not fit, an index of extent blocks (CSV_DATA_EXTENTS). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "format.h"

struct csv_nodeio;

/* Flags of a run: CSV_RUN_UNWRITTEN from format.h, and in memory only
 * CSV_RUNLIST_HOLE, which runlist_map sets for an unmapped range. */
#define CSV_RUNLIST_HOLE (1u << 31)
#define CSV_RUNLIST_FLAGS_KNOWN ((uint32_t)CSV_RUN_UNWRITTEN)

struct csv_run {
	uint64_t vcn, lcn;
	uint32_t length;  /* clusters, at least 1 */
	uint32_t flags;
};

/* Runs sorted by vcn, never overlapping. ext_blocks are the extent blocks
 * this list occupies on disk (block numbers in index order): filled by
 * runlist_decode, maintained by runlist_encode. */
struct csv_runlist {
	struct csv_run *runs;
	size_t count, cap;
	uint64_t *ext_blocks;
	size_t n_ext;
};

void runlist_init(struct csv_runlist *rl);
/* Frees the memory only; the extent blocks stay allocated on disk. */
void runlist_free(struct csv_runlist *rl);

/* The run containing vcn, trimmed to start at vcn; or, when vcn is in a
 * hole, lcn 0, flags CSV_RUNLIST_HOLE and the length up to the next run
 * (at most UINT32_MAX). -ERANGE for vcn UINT64_MAX, which no run reaches. */
int runlist_map(const struct csv_runlist *rl, uint64_t vcn, struct csv_run *ret);

/* Maps the hole [vcn, vcn + len) to lcn: -EEXIST if any of it is mapped,
 * -EINVAL for len 0, lcn 0, unknown flags or a range that wraps. The new
 * run is merged with the neighbours it continues (same flags, VCN and LCN
 * contiguous, the sum fitting 32 bits). */
int runlist_insert(struct csv_runlist *rl, uint64_t vcn, uint64_t lcn, uint32_t len, uint32_t flags);

/* Unmaps [vcn, vcn + len) (to the end of the VCN space if that wraps),
 * splitting runs at the edges, and reports each freed cluster range
 * through freed (when given). Holes in the range are fine. */
int runlist_punch(struct csv_runlist *rl, uint64_t vcn, uint64_t len,
		  void (*freed)(void *ud, uint64_t lcn, uint64_t len), void *ud);

/* Clears CSV_RUN_UNWRITTEN over [vcn, vcn + len), splitting runs at the
 * edges and merging what becomes contiguous. Holes in the range are fine. */
int runlist_set_written(struct csv_runlist *rl, uint64_t vcn, uint64_t len);

/* Unmaps everything from vcn on. */
int runlist_truncate(struct csv_runlist *rl, uint64_t vcn,
		     void (*freed)(void *ud, uint64_t lcn, uint64_t len), void *ud);

/* Clusters mapped. */
uint64_t runlist_clusters(const struct csv_runlist *rl);

/* Checks the runs: sorted, length > 0, no overlap, no VCN or LCN wrap,
 * LCNs in [1, total_clusters), only known flags. 0 or -EUCLEAN with a
 * sentence in err (when given). */
int runlist_validate(const struct csv_runlist *rl, uint64_t total_clusters, char *err, size_t errlen);

/* Encodes rl as the payload of a DATA attribute (struct csv_d_attr_data
 * and what follows) in at most cap bytes, *ret_len receiving its size.
 * When the runs fit: CSV_DATA_RUNS, and the extent blocks rl held are
 * freed. Otherwise CSV_DATA_EXTENTS: the runs are packed into extent
 * blocks of CSV_EXTENT_RUNS(io->node_size) runs, reusing rl->ext_blocks in
 * order, allocating more and freeing the surplus through io, each written
 * with owner (a file reference); the payload holds the index. -EFBIG (and
 * no change) when even the index does not fit. */
int runlist_encode(struct csv_runlist *rl, void *payload, size_t cap, size_t *ret_len,
		   struct csv_nodeio *io, uint64_t owner);

/* Decodes a DATA payload of len bytes in form CSV_DATA_RUNS or
 * CSV_DATA_EXTENTS into *ret (overwritten, not freed first), reading
 * extent blocks through io. Everything is checked before use: -EBADMSG
 * for a damaged extent block, -EUCLEAN for an inconsistent structure
 * (including runlist_validate against total_clusters), -EINVAL for a
 * resident payload, or the read error of io. */
int runlist_decode(const void *payload, size_t len, struct csv_nodeio *io, uint64_t owner,
		   uint64_t total_clusters, struct csv_runlist *ret);

/* Frees every extent block rl holds (deleting a file, or after the DATA
 * attribute changed to another form). */
int runlist_drop_extent_blocks(struct csv_runlist *rl, struct csv_nodeio *io);
