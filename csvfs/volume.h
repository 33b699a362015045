/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A volume in memory: its geometry decoded from the volume header, and
 * reading and writing of its metadata blocks. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "blockdev.h"
#include "format.h"

/* The decoded volume header. Block numbers are 4 KiB blocks, LCNs are
 * clusters; see format.h. */
struct csv_geometry {
	uint32_t cluster_size;
	uint32_t blocks_per_cluster;
	uint64_t total_clusters;
	uint64_t total_blocks;
	uint64_t backup_header_block;
	uint32_t max_nodes;
	uint32_t state;
	uint64_t cluster_area_block, cluster_area_blocks;
	uint64_t journal_block, journal_blocks;
	uint64_t cbitmap_block, cbitmap_blocks;
	uint64_t rbitmap_block, rbitmap_blocks;
	uint64_t max_records;
	uint64_t mft_block, mft_mirror_block;
	uint64_t mft_zone_lcn, mft_zone_clusters;
	uint64_t data_lcn;
	uint64_t feature_compat, feature_ro_compat, feature_incompat;
	uint64_t mkfs_time_ns, check_time_ns;
	uint8_t uuid[16];
	char label[CSV_LABEL_MAX + 1];
	uint16_t version_major, version_minor;
};

/* Lays out a new volume of size bytes (mkfs). alignment is the device's
 * preferred I/O size; regions start on it where it is a multiple of the
 * block size. journal_bytes 0 picks the default. */
int geometry_layout(uint64_t size, uint32_t cluster_size, uint32_t max_nodes,
		    uint32_t alignment, uint64_t journal_bytes, struct csv_geometry *ret);

/* Encodes the header block at blocknr (0, or the backup's location). */
void header_encode(const struct csv_geometry *g, uint64_t blocknr, void *buf);

/* Verifies and decodes a header block read from blocknr. Every region is
 * checked to lie inside the volume and not overlap another; err (when
 * given) receives a sentence naming what is wrong. Returns 0, -EBADMSG,
 * -EUCLEAN, or -EPROTONOSUPPORT for an unknown version or incompat feature. */
int header_decode(const void *buf, uint64_t blocknr, uint64_t dev_size,
		  struct csv_geometry *ret, char *err, size_t errlen);

/* Redirects metadata block I/O: the tools read and write the LUN; the
 * coordinator sends writes to its journal and reads the newest images
 * back from it (metatxn.h). A unit is the blocks one header seals. */
struct csv_meta_hook {
	/* Replaces in buf the units of [blocknr, blocknr + nblocks) that have
	 * images newer than what the LUN holds. */
	int (*patch)(void *ctx, uint64_t blocknr, uint32_t nblocks, uint32_t unit, void *buf);
	/* Takes sealed units instead of the LUN. */
	int (*write)(void *ctx, uint64_t blocknr, uint32_t nblocks, uint32_t unit, const void *buf);
	void *ctx;
};

struct csv_volume {
	struct csv_blockdev *bd;
	const struct csv_meta_hook *hook;  /* NULL: metadata goes to the LUN */
	struct csv_geometry g;
	bool primary_header_bad;  /* opened from the backup header */
	bool backup_header_bad;
	bool owns_bd;
};

/* Opens the volume on bd: reads the primary header, or the backup in the
 * last block when the primary is damaged. err receives the reason when it
 * fails. volume_close() closes bd only for volumes opened by path. */
int volume_open_bdev(struct csv_blockdev *bd, struct csv_volume **ret, char *err, size_t errlen);
int volume_open(const char *spec, unsigned bdev_flags, struct csv_volume **ret, char *err, size_t errlen);
void volume_close(struct csv_volume *v);

/* Writes v's geometry as a header at blocknr (0, or the backup's block),
 * straight to the LUN. */
int volume_write_header(struct csv_volume *v, uint64_t blocknr);

/* Reads nblocks blocks at blocknr and verifies the header (magic,
 * blocknr, uuid, crc) over the whole length. */
int volume_read_meta(struct csv_volume *v, uint64_t blocknr, uint32_t nblocks,
		     uint32_t magic, void *buf);
/* Reads metadata blocks (units of unit blocks) without verifying, through
 * the hook when there is one. */
int volume_read_blocks(struct csv_volume *v, uint64_t blocknr, uint32_t nblocks, uint32_t unit, void *buf);
/* Writes sealed metadata units, through the hook when there is one. */
int volume_write_blocks(struct csv_volume *v, uint64_t blocknr, uint32_t nblocks, uint32_t unit,
			const void *buf);
/* Reads the LUN itself, bypassing any hook (the journal, headers). */
int volume_read_raw(struct csv_volume *v, uint64_t blocknr, uint32_t nblocks, void *buf);
/* Seals (magic, blocknr, uuid, lsn, crc) and writes nblocks blocks. */
int volume_write_meta(struct csv_volume *v, uint64_t blocknr, uint32_t nblocks,
		      uint32_t magic, uint64_t lsn, void *buf);
/* Writes the LUN itself without sealing, bypassing any hook. */
int volume_write_raw(struct csv_volume *v, uint64_t blocknr, uint32_t nblocks, const void *buf);

static inline uint64_t lcn_to_block(const struct csv_geometry *g, uint64_t lcn)
{
	return lcn * g->blocks_per_cluster;
}
static inline uint64_t block_to_lcn(const struct csv_geometry *g, uint64_t b)
{
	return b / g->blocks_per_cluster;
}

/* Formats a UUID as the usual 36 characters. */
void uuid_format(const uint8_t uuid[16], char out[37]);
