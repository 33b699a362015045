/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "volume.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta.h"
#include "util.h"

int geometry_layout(uint64_t size, uint32_t cluster_size, uint32_t max_nodes,
		    uint32_t alignment, uint64_t journal_bytes, struct csv_geometry *ret)
{
	struct csv_geometry g = { 0 };

	if (!IS_POWER_OF_2(cluster_size) || cluster_size < CSV_MIN_CLUSTER_SIZE ||
	    cluster_size > CSV_MAX_CLUSTER_SIZE)
		return -EINVAL;
	if (max_nodes < 1 || max_nodes > CSV_MAX_NODES_LIMIT)
		return -EINVAL;

	g.version_major = CSV_VERSION_MAJOR;
	g.version_minor = CSV_VERSION_MINOR;
	g.cluster_size = cluster_size;
	g.blocks_per_cluster = cluster_size / CSV_BLOCK_SIZE;
	g.total_clusters = size / cluster_size;
	g.total_blocks = g.total_clusters * g.blocks_per_cluster;
	if (g.total_blocks < 64)
		return -ENOSPC;
	g.backup_header_block = g.total_blocks - 1;
	g.max_nodes = max_nodes;
	g.state = CSV_STATE_CLEAN;

	uint64_t b = 1;
	g.cluster_area_block = b;
	g.cluster_area_blocks = CSV_CLUSTER_AREA_BLOCKS(max_nodes);
	b += g.cluster_area_blocks;

	if (journal_bytes == 0) {
		journal_bytes = size / 128;
		journal_bytes = MAX(journal_bytes, 1ull << 20);
		journal_bytes = MIN(journal_bytes, 128ull << 20);
	}
	g.journal_block = b;
	g.journal_blocks = MAX(journal_bytes / CSV_BLOCK_SIZE, 64u);
	b += g.journal_blocks;

	g.cbitmap_block = b;
	g.cbitmap_blocks = DIV_ROUND_UP(g.total_clusters, CSV_BITMAP_BITS);
	b += g.cbitmap_blocks;

	g.max_records = MAX(size / (32u << 10), 1024u);
	g.max_records = MIN(g.max_records, 0xffffffffull);
	g.rbitmap_block = b;
	g.rbitmap_blocks = DIV_ROUND_UP(g.max_records, CSV_BITMAP_BITS);
	b += g.rbitmap_blocks;

	g.mft_mirror_block = b;
	b += 1;

	/* The data area starts on a cluster, and on the device's preferred
	 * alignment when that is larger. */
	uint64_t align_blocks = g.blocks_per_cluster;
	if (alignment > cluster_size && alignment % cluster_size == 0 && alignment <= (16u << 20))
		align_blocks = alignment / CSV_BLOCK_SIZE;
	b = ROUND_UP(b, align_blocks);
	g.data_lcn = b / g.blocks_per_cluster;

	/* The MFT zone: room for the table to grow without fragmenting, an
	 * eighth of the data area at most. */
	uint64_t avail = g.total_clusters > g.data_lcn + 1 ? g.total_clusters - g.data_lcn - 1 : 0;
	uint64_t want = DIV_ROUND_UP(g.max_records * CSV_RECORD_SIZE, cluster_size);
	uint64_t initial = DIV_ROUND_UP(64u * CSV_RECORD_SIZE, cluster_size);
	g.mft_zone_lcn = g.data_lcn;
	g.mft_zone_clusters = MAX(MIN(want, avail / 8), initial);
	if (g.data_lcn + g.mft_zone_clusters + 16 > g.total_clusters - 1)
		return -ENOSPC;
	g.mft_block = lcn_to_block(&g, g.mft_zone_lcn);
	*ret = g;
	return 0;
}

void header_encode(const struct csv_geometry *g, uint64_t blocknr, void *buf)
{
	struct csv_d_header *h = buf;

	memset(h, 0, sizeof(*h));
	h->version_major = cpu_to_le16(g->version_major);
	h->version_minor = cpu_to_le16(g->version_minor);
	h->block_size = cpu_to_le32(CSV_BLOCK_SIZE);
	h->cluster_size = cpu_to_le32(g->cluster_size);
	h->record_size = cpu_to_le32(CSV_RECORD_SIZE);
	h->feature_compat = cpu_to_le64(g->feature_compat);
	h->feature_ro_compat = cpu_to_le64(g->feature_ro_compat);
	h->feature_incompat = cpu_to_le64(g->feature_incompat);
	h->total_clusters = cpu_to_le64(g->total_clusters);
	h->total_blocks = cpu_to_le64(g->total_blocks);
	h->backup_header_block = cpu_to_le64(g->backup_header_block);
	h->max_nodes = cpu_to_le32(g->max_nodes);
	h->state = cpu_to_le32(g->state);
	h->cluster_area_block = cpu_to_le64(g->cluster_area_block);
	h->cluster_area_blocks = cpu_to_le64(g->cluster_area_blocks);
	h->journal_block = cpu_to_le64(g->journal_block);
	h->journal_blocks = cpu_to_le64(g->journal_blocks);
	h->cbitmap_block = cpu_to_le64(g->cbitmap_block);
	h->cbitmap_blocks = cpu_to_le64(g->cbitmap_blocks);
	h->rbitmap_block = cpu_to_le64(g->rbitmap_block);
	h->rbitmap_blocks = cpu_to_le64(g->rbitmap_blocks);
	h->max_records = cpu_to_le64(g->max_records);
	h->mft_block = cpu_to_le64(g->mft_block);
	h->mft_mirror_block = cpu_to_le64(g->mft_mirror_block);
	h->mft_zone_lcn = cpu_to_le64(g->mft_zone_lcn);
	h->mft_zone_clusters = cpu_to_le64(g->mft_zone_clusters);
	h->data_lcn = cpu_to_le64(g->data_lcn);
	h->mkfs_time_ns = cpu_to_le64(g->mkfs_time_ns);
	h->check_time_ns = cpu_to_le64(g->check_time_ns);
	memcpy(h->label, g->label, strnlen(g->label, CSV_LABEL_MAX));
	meta_seal(h, sizeof(*h), CSV_MAGIC_HEADER, blocknr, g->uuid, 0);
}

struct region {
	const char *name;
	uint64_t start, len;
};

int header_decode(const void *buf, uint64_t blocknr, uint64_t dev_size,
		  struct csv_geometry *ret, char *err, size_t errlen)
{
	const struct csv_d_header *h = buf;
	struct csv_geometry g = { 0 };
	enum meta_fault f;

	int r = meta_verify(buf, CSV_BLOCK_SIZE, CSV_MAGIC_HEADER, blocknr, NULL, &f);
	if (r < 0) {
		err_unclean(err, errlen, "volume header at block %" PRIu64 ": %s", blocknr, meta_fault_str(f));
		return r;
	}
	g.version_major = le16_to_cpu(h->version_major);
	g.version_minor = le16_to_cpu(h->version_minor);
	if (g.version_major != CSV_VERSION_MAJOR) {
		err_unclean(err, errlen, "format version %u.%u is not supported (this build reads %u.x)",
		     g.version_major, g.version_minor, CSV_VERSION_MAJOR);
		return -EPROTONOSUPPORT;
	}
	g.feature_compat = le64_to_cpu(h->feature_compat);
	g.feature_ro_compat = le64_to_cpu(h->feature_ro_compat);
	g.feature_incompat = le64_to_cpu(h->feature_incompat);
	if (g.feature_incompat & ~CSV_FEATURE_INCOMPAT_SUPP) {
		err_unclean(err, errlen, "unknown incompatible features 0x%" PRIx64,
		     (uint64_t)(g.feature_incompat & ~CSV_FEATURE_INCOMPAT_SUPP));
		return -EPROTONOSUPPORT;
	}
	if (le32_to_cpu(h->block_size) != CSV_BLOCK_SIZE || le32_to_cpu(h->record_size) != CSV_RECORD_SIZE)
		return err_unclean(err, errlen, "block size %u or record size %u is not 4096",
			    le32_to_cpu(h->block_size), le32_to_cpu(h->record_size));
	g.cluster_size = le32_to_cpu(h->cluster_size);
	if (!IS_POWER_OF_2(g.cluster_size) || g.cluster_size < CSV_MIN_CLUSTER_SIZE ||
	    g.cluster_size > CSV_MAX_CLUSTER_SIZE)
		return err_unclean(err, errlen, "invalid cluster size %u", g.cluster_size);
	g.blocks_per_cluster = g.cluster_size / CSV_BLOCK_SIZE;
	g.total_clusters = le64_to_cpu(h->total_clusters);
	g.total_blocks = le64_to_cpu(h->total_blocks);
	g.backup_header_block = le64_to_cpu(h->backup_header_block);
	g.max_nodes = le32_to_cpu(h->max_nodes);
	g.state = le32_to_cpu(h->state);
	g.cluster_area_block = le64_to_cpu(h->cluster_area_block);
	g.cluster_area_blocks = le64_to_cpu(h->cluster_area_blocks);
	g.journal_block = le64_to_cpu(h->journal_block);
	g.journal_blocks = le64_to_cpu(h->journal_blocks);
	g.cbitmap_block = le64_to_cpu(h->cbitmap_block);
	g.cbitmap_blocks = le64_to_cpu(h->cbitmap_blocks);
	g.rbitmap_block = le64_to_cpu(h->rbitmap_block);
	g.rbitmap_blocks = le64_to_cpu(h->rbitmap_blocks);
	g.max_records = le64_to_cpu(h->max_records);
	g.mft_block = le64_to_cpu(h->mft_block);
	g.mft_mirror_block = le64_to_cpu(h->mft_mirror_block);
	g.mft_zone_lcn = le64_to_cpu(h->mft_zone_lcn);
	g.mft_zone_clusters = le64_to_cpu(h->mft_zone_clusters);
	g.data_lcn = le64_to_cpu(h->data_lcn);
	g.mkfs_time_ns = le64_to_cpu(h->mkfs_time_ns);
	g.check_time_ns = le64_to_cpu(h->check_time_ns);
	memcpy(g.uuid, h->h.uuid, 16);
	memcpy(g.label, h->label, CSV_LABEL_MAX);
	g.label[CSV_LABEL_MAX] = '\0';

	if (g.total_clusters > (UINT64_MAX / g.cluster_size) ||
	    g.total_blocks != g.total_clusters * g.blocks_per_cluster)
		return err_unclean(err, errlen, "total_blocks %" PRIu64 " does not match %" PRIu64 " clusters of %u bytes",
			    g.total_blocks, g.total_clusters, g.cluster_size);
	if (g.total_blocks < 64 || g.backup_header_block != g.total_blocks - 1)
		return err_unclean(err, errlen, "backup header block %" PRIu64 " is not the last block %" PRIu64,
			    g.backup_header_block, g.total_blocks - 1);
	if (dev_size && g.total_blocks > dev_size / CSV_BLOCK_SIZE)
		return err_unclean(err, errlen, "the volume needs %" PRIu64 " bytes but the device has only %" PRIu64,
			    g.total_blocks * CSV_BLOCK_SIZE, dev_size);
	if (g.max_nodes < 1 || g.max_nodes > CSV_MAX_NODES_LIMIT ||
	    g.cluster_area_blocks != CSV_CLUSTER_AREA_BLOCKS(g.max_nodes))
		return err_unclean(err, errlen, "max_nodes %u does not fit a cluster area of %" PRIu64 " blocks",
			    g.max_nodes, g.cluster_area_blocks);
	if (g.cbitmap_blocks != DIV_ROUND_UP(g.total_clusters, CSV_BITMAP_BITS))
		return err_unclean(err, errlen, "cluster bitmap of %" PRIu64 " blocks does not cover %" PRIu64 " clusters",
			    g.cbitmap_blocks, g.total_clusters);
	if (g.max_records < CSV_FIRST_USER_RECORD || g.max_records > (1ull << 48) ||
	    g.rbitmap_blocks != DIV_ROUND_UP(g.max_records, CSV_BITMAP_BITS))
		return err_unclean(err, errlen, "record bitmap of %" PRIu64 " blocks does not cover %" PRIu64 " records",
			    g.rbitmap_blocks, g.max_records);
	if (g.journal_blocks < 64)
		return err_unclean(err, errlen, "journal of %" PRIu64 " blocks is too small", g.journal_blocks);

	/* Fixed regions: inside [1, data area), in this order, no overlap. */
	uint64_t data_block = g.data_lcn * g.blocks_per_cluster;
	if (g.data_lcn >= g.total_clusters)
		return err_unclean(err, errlen, "data area starts at cluster %" PRIu64 ", beyond the volume", g.data_lcn);
	struct region regions[] = {
		{ "cluster area", g.cluster_area_block, g.cluster_area_blocks },
		{ "journal", g.journal_block, g.journal_blocks },
		{ "cluster bitmap", g.cbitmap_block, g.cbitmap_blocks },
		{ "record bitmap", g.rbitmap_block, g.rbitmap_blocks },
		{ "MFT mirror", g.mft_mirror_block, 1 },
	};
	uint64_t next = 1;
	for (size_t i = 0; i < ARRAY_SIZE(regions); i++) {
		struct region *rg = &regions[i];
		if (rg->start < next || rg->len > data_block || rg->start > data_block - rg->len)
			return err_unclean(err, errlen, "%s at block %" PRIu64 " (+%" PRIu64 ") overlaps another region or the data area",
				    rg->name, rg->start, rg->len);
		next = rg->start + rg->len;
	}
	if (g.mft_zone_lcn < g.data_lcn || g.mft_zone_lcn >= g.total_clusters || g.mft_zone_clusters == 0 ||
	    g.mft_zone_clusters >= g.total_clusters - g.mft_zone_lcn)
		return err_unclean(err, errlen, "MFT zone at cluster %" PRIu64 " (+%" PRIu64 ") lies outside the data area",
			    g.mft_zone_lcn, g.mft_zone_clusters);
	if (g.mft_block < data_block || g.mft_block % g.blocks_per_cluster ||
	    g.mft_block >= g.backup_header_block)
		return err_unclean(err, errlen, "MFT record 0 at block %" PRIu64 " is outside the data area", g.mft_block);
	*ret = g;
	return 0;
}

int volume_write_header(struct csv_volume *v, uint64_t blocknr)
{
	_cleanup_free_ void *buf = malloc(CSV_BLOCK_SIZE);
	if (!buf)
		return -ENOMEM;
	header_encode(&v->g, blocknr, buf);
	return volume_write_raw(v, blocknr, 1, buf);
}

int volume_read_raw(struct csv_volume *v, uint64_t blocknr, uint32_t nblocks, void *buf)
{
	if (blocknr >= v->g.total_blocks || nblocks > v->g.total_blocks - blocknr)
		return -EUCLEAN;
	return blockdev_pread(v->bd, buf, (size_t)nblocks * CSV_BLOCK_SIZE, blocknr * CSV_BLOCK_SIZE);
}

int volume_write_raw(struct csv_volume *v, uint64_t blocknr, uint32_t nblocks, const void *buf)
{
	if (blocknr >= v->g.total_blocks || nblocks > v->g.total_blocks - blocknr)
		return -EUCLEAN;
	return blockdev_pwrite(v->bd, buf, (size_t)nblocks * CSV_BLOCK_SIZE, blocknr * CSV_BLOCK_SIZE);
}

int volume_read_blocks(struct csv_volume *v, uint64_t blocknr, uint32_t nblocks, uint32_t unit, void *buf)
{
	int r = volume_read_raw(v, blocknr, nblocks, buf);
	if (r == 0 && v->hook)
		r = v->hook->patch(v->hook->ctx, blocknr, nblocks, unit, buf);
	return r;
}

int volume_write_blocks(struct csv_volume *v, uint64_t blocknr, uint32_t nblocks, uint32_t unit,
			const void *buf)
{
	if (blocknr >= v->g.total_blocks || nblocks > v->g.total_blocks - blocknr || unit == 0 || nblocks % unit)
		return -EUCLEAN;
	if (v->hook)
		return v->hook->write(v->hook->ctx, blocknr, nblocks, unit, buf);
	return volume_write_raw(v, blocknr, nblocks, buf);
}

int volume_read_meta(struct csv_volume *v, uint64_t blocknr, uint32_t nblocks,
		     uint32_t magic, void *buf)
{
	int r = volume_read_blocks(v, blocknr, nblocks, nblocks, buf);
	if (r < 0)
		return r;
	return meta_verify(buf, (size_t)nblocks * CSV_BLOCK_SIZE, magic, blocknr, v->g.uuid, NULL);
}

int volume_write_meta(struct csv_volume *v, uint64_t blocknr, uint32_t nblocks,
		      uint32_t magic, uint64_t lsn, void *buf)
{
	if (blocknr >= v->g.total_blocks || nblocks > v->g.total_blocks - blocknr)
		return -EUCLEAN;
	meta_seal(buf, (size_t)nblocks * CSV_BLOCK_SIZE, magic, blocknr, v->g.uuid, lsn);
	return volume_write_blocks(v, blocknr, nblocks, nblocks, buf);
}

/* Where the backup header would be for each possible cluster size. */
static int read_backup_header(struct csv_blockdev *bd, struct csv_geometry *ret, char *err, size_t errlen)
{
	uint64_t size = blockdev_size(bd);
	uint64_t tried = UINT64_MAX;
	_cleanup_free_ void *buf = malloc(CSV_BLOCK_SIZE);
	int r = -EBADMSG;

	if (!buf)
		return -ENOMEM;
	for (uint32_t cs = CSV_MIN_CLUSTER_SIZE; cs <= CSV_MAX_CLUSTER_SIZE; cs *= 2) {
		uint64_t blocks = (size / cs) * (cs / CSV_BLOCK_SIZE);
		if (blocks < 64 || blocks - 1 == tried)
			continue;
		tried = blocks - 1;
		if (blockdev_pread(bd, buf, CSV_BLOCK_SIZE, tried * CSV_BLOCK_SIZE) < 0)
			continue;
		r = header_decode(buf, tried, size, ret, err, errlen);
		if (r == 0 || r == -EPROTONOSUPPORT)
			return r;
	}
	return r;
}

int volume_open_bdev(struct csv_blockdev *bd, struct csv_volume **ret, char *err, size_t errlen)
{
	_cleanup_free_ void *buf = malloc(CSV_BLOCK_SIZE);
	struct csv_volume *v;
	char perr[256] = "";
	int r;

	if (!buf)
		return -ENOMEM;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->bd = bd;
	if (blockdev_size(bd) < 64 * CSV_BLOCK_SIZE) {
		free(v);
		return err_unclean(err, errlen, "%s is too small to hold a csvfs volume", blockdev_name(bd));
	}
	r = blockdev_pread(bd, buf, CSV_BLOCK_SIZE, 0);
	if (r == 0)
		r = header_decode(buf, 0, blockdev_size(bd), &v->g, perr, sizeof(perr));
	if (r == -EPROTONOSUPPORT) {
		snprintf(err, errlen, "%s", perr);
		free(v);
		return r;
	}
	if (r < 0) {
		char berr[256] = "";
		int rb = read_backup_header(bd, &v->g, berr, sizeof(berr));
		if (rb < 0) {
			if (err)
				snprintf(err, errlen, "%s; no valid backup header either", perr);
			free(v);
			return rb == -EPROTONOSUPPORT ? rb : r;
		}
		v->primary_header_bad = true;
	} else {
		/* Check the backup too, so that fsck can repair it. */
		struct csv_geometry bg;
		if (blockdev_pread(bd, buf, CSV_BLOCK_SIZE, v->g.backup_header_block * CSV_BLOCK_SIZE) < 0 ||
		    header_decode(buf, v->g.backup_header_block, blockdev_size(bd), &bg, NULL, 0) < 0 ||
		    memcmp(bg.uuid, v->g.uuid, 16) != 0)
			v->backup_header_bad = true;
	}
	*ret = v;
	return 0;
}

int volume_open(const char *spec, unsigned bdev_flags, struct csv_volume **ret, char *err, size_t errlen)
{
	struct csv_blockdev *bd;
	int r = blockdev_open(spec, bdev_flags, &bd);
	if (r < 0) {
		if (err)
			snprintf(err, errlen, "cannot open %s: %s", spec, strerror(-r));
		return r;
	}
	r = volume_open_bdev(bd, ret, err, errlen);
	if (r < 0) {
		blockdev_close(bd);
		return r;
	}
	(*ret)->owns_bd = true;
	return 0;
}

void volume_close(struct csv_volume *v)
{
	if (!v)
		return;
	if (v->owns_bd)
		blockdev_close(v->bd);
	free(v);
}

void uuid_format(const uint8_t u[16], char out[37])
{
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
		 u[12], u[13], u[14], u[15]);
}
