/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "mkfs-format.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "alloc.h"
#include "bitmap.h"
#include "btree.h"
#include "clusterarea.h"
#include "journal.h"
#include "meta.h"
#include "nodeio-vol.h"
#include "record.h"
#include "runlist.h"
#include "util.h"

static void set_times(struct csv_d_record *r, uint64_t t)
{
	r->atime_ns = r->mtime_ns = r->ctime_ns = r->btime_ns = cpu_to_le64(t);
}

/* A directory record with an empty index root. */
static int make_dir(void *rec, uint64_t recno, uint32_t mode, uint32_t nlink, uint64_t parent, uint64_t t)
{
	struct csv_d_record *r = rec;
	void *root;

	record_init(rec, recno, 1, CSV_REC_IN_USE | CSV_REC_DIRECTORY, S_IFDIR | mode);
	r->nlink = cpu_to_le32(nlink);
	r->parent = cpu_to_le64(parent);
	set_times(r, t);
	int rv = record_attr_add(rec, CSV_ATTR_INDEX_ROOT, CSV_INDEX_ROOT_BYTES, &root);
	if (rv < 0)
		return rv;
	btree_root_init(root, CSV_INDEX_ROOT_BYTES);
	return 0;
}

/* Builds the initial records 0 .. nrecords-1 into recs (not sealed). */
static int build_records(struct csv_volume *v, struct csv_nodeio *io, uint8_t *recs,
			 uint64_t nrecords, uint64_t mft_clusters, uint64_t t)
{
	const struct csv_geometry *g = &v->g;
	uint64_t root_ref = CSV_REF(CSV_RECNO_ROOT, 1), lf_ref = CSV_REF(CSV_RECNO_LOST_FOUND, 1);
	struct csv_runlist rl;
	int r;

	for (uint64_t i = 0; i < nrecords; i++) {
		uint16_t flags = i < CSV_FIRST_USER_RECORD ? CSV_REC_SYSTEM : 0;
		record_init(recs + i * CSV_RECORD_SIZE, i, i < CSV_FIRST_USER_RECORD ? 1 : 0, flags, 0);
	}

	/* Record 0: $MFT, whose runs map the table itself. */
	struct csv_d_record *mft = (void *)recs;
	record_init(mft, CSV_RECNO_MFT, 1, CSV_REC_IN_USE | CSV_REC_SYSTEM, S_IFREG | 0400);
	mft->size = mft->valid_data_length = cpu_to_le64(nrecords * CSV_RECORD_SIZE);
	mft->parent = cpu_to_le64(root_ref);
	set_times(mft, t);
	runlist_init(&rl);
	r = runlist_insert(&rl, 0, g->mft_zone_lcn, (uint32_t)mft_clusters, 0);
	if (r == 0)
		r = record_data_set_runs(mft, &rl, io, CSV_REF(0, 1));
	runlist_free(&rl);
	if (r < 0)
		return r;

	/* Record 1: the root directory, holding lost+found. */
	void *root = recs + CSV_RECNO_ROOT * CSV_RECORD_SIZE;
	r = make_dir(root, CSV_RECNO_ROOT, 0755, 3, root_ref, t);
	if (r < 0)
		return r;
	struct csv_btree tree = {
		.io = io, .owner = root_ref,
		.root = attr_payload(record_attr_find(root, CSV_ATTR_INDEX_ROOT, 0)),
		.root_size = CSV_INDEX_ROOT_BYTES,
	};
	r = btree_insert(&tree, "lost+found", strlen("lost+found"), lf_ref, mode_to_dtype(S_IFDIR));
	if (r < 0)
		return r;

	/* Record 2: lost+found, where fsck reconnects what it finds. */
	void *lf = recs + CSV_RECNO_LOST_FOUND * CSV_RECORD_SIZE;
	r = make_dir(lf, CSV_RECNO_LOST_FOUND, 0700, 2, root_ref, t);
	if (r < 0)
		return r;
	((struct csv_d_record *)lf)->flags = cpu_to_le16(CSV_REC_IN_USE | CSV_REC_DIRECTORY);
	((struct csv_d_record *)root)->flags = cpu_to_le16(CSV_REC_IN_USE | CSV_REC_DIRECTORY);
	return record_name_add(lf, root_ref, "lost+found", strlen("lost+found"));
}

static void progress(const struct mkfs_options *o, const char *phase, uint64_t done, uint64_t total)
{
	if (o->progress)
		o->progress(o->progress_ud, phase, done, total);
}

int volume_format(struct csv_blockdev *bd, const struct mkfs_options *o,
		  struct csv_geometry *ret_g, char *err, size_t errlen)
{
	struct csv_geometry g;
	struct csv_volume vol = { .bd = bd };
	struct csv_bitmap cmap = { 0 }, rmap = { 0 };
	struct csv_nodeio_vol nv;
	_cleanup_free_ uint8_t *recs = NULL;
	_cleanup_free_ void *zero = calloc(1, CSV_BLOCK_SIZE);
	uint32_t cs = o->cluster_size ? o->cluster_size : CSV_DEFAULT_CLUSTER_SIZE;
	uint32_t nodes = o->max_nodes ? o->max_nodes : CSV_DEFAULT_MAX_NODES;
	int r;

	if (!zero)
		return -ENOMEM;
	r = geometry_layout(blockdev_size(bd), cs, nodes, o->alignment, o->journal_bytes, &g);
	if (r == -ENOSPC) {
		snprintf(err, errlen, "%s: %" PRIu64 " bytes are too small for a volume with %u-byte clusters and %u node slots",
			 blockdev_name(bd), blockdev_size(bd), cs, nodes);
		return r;
	}
	if (r < 0) {
		snprintf(err, errlen, "invalid cluster size %u or node count %u", cs, nodes);
		return r;
	}
	if (o->label && strlen(o->label) > CSV_LABEL_MAX) {
		snprintf(err, errlen, "label is longer than %d bytes", CSV_LABEL_MAX);
		return -EINVAL;
	}
	snprintf(g.label, sizeof(g.label), "%s", o->label ? o->label : "");
	if (o->uuid_set) {
		memcpy(g.uuid, o->uuid, 16);
	} else {
		if (getrandom(g.uuid, 16, 0) != 16)
			return negative_errno();
		g.uuid[6] = (g.uuid[6] & 0x0f) | 0x40; /* version 4 */
		g.uuid[8] = (g.uuid[8] & 0x3f) | 0x80; /* variant 1 */
	}
	g.mkfs_time_ns = o->time_ns ? o->time_ns : realtime_ns();
	vol.g = g;

	uint64_t mft_clusters = DIV_ROUND_UP((uint64_t)MKFS_INITIAL_RECORDS * CSV_RECORD_SIZE, cs);
	uint64_t nrecords = mft_clusters * (cs / CSV_RECORD_SIZE);

	/* Invalidate whatever was there before, so that a crash half-way
	 * leaves no header that describes a half-written volume: the primary
	 * header and every place an older volume of any cluster size kept its
	 * backup. */
	r = blockdev_pwrite(bd, zero, CSV_BLOCK_SIZE, 0);
	for (uint32_t c = CSV_MIN_CLUSTER_SIZE; c <= CSV_MAX_CLUSTER_SIZE && r == 0; c *= 2) {
		uint64_t last = (blockdev_size(bd) / c) * (c / CSV_BLOCK_SIZE);
		if (last > 0)
			r = blockdev_pwrite(bd, zero, CSV_BLOCK_SIZE, (last - 1) * CSV_BLOCK_SIZE);
	}
	if (r == 0)
		r = blockdev_flush(bd);
	if (r < 0)
		goto io_error;

	/* Cluster bitmap: fixed regions, the initial MFT, the backup header. */
	r = bitmap_init(&cmap, g.total_clusters);
	if (r == 0)
		r = bitmap_init(&rmap, g.max_records);
	if (r < 0)
		goto out;
	bitmap_set_range(&cmap, 0, g.data_lcn);
	bitmap_set_range(&cmap, g.mft_zone_lcn, mft_clusters);
	bitmap_set_range(&cmap, g.total_clusters - 1, 1);
	bitmap_set_range(&rmap, 0, CSV_FIRST_USER_RECORD);

	nodeio_vol_init(&nv, &vol, NULL, 0);
	recs = calloc(nrecords, CSV_RECORD_SIZE);
	if (!recs) {
		r = -ENOMEM;
		goto out;
	}
	r = build_records(&vol, &nv.io, recs, nrecords, mft_clusters, g.mkfs_time_ns);
	if (r < 0) {
		snprintf(err, errlen, "cannot build the initial records: %s", strerror(-r));
		goto out;
	}

	progress(o, "cluster area", 0, 1);
	r = clusterarea_format(&vol);
	if (r < 0)
		goto io_error;
	progress(o, "journal", 0, 1);
	r = journal_format(&vol);
	if (r < 0)
		goto io_error;
	progress(o, "cluster bitmap", 0, g.cbitmap_blocks);
	r = bitmap_store(&vol, g.cbitmap_block, CSV_MAGIC_CBITMAP, &cmap, 0);
	if (r < 0)
		goto io_error;
	progress(o, "record bitmap", 0, g.rbitmap_blocks);
	r = bitmap_store(&vol, g.rbitmap_block, CSV_MAGIC_RBITMAP, &rmap, 0);
	if (r < 0)
		goto io_error;
	progress(o, "MFT", 0, nrecords);
	for (uint64_t i = 0; i < nrecords; i++)
		meta_seal(recs + i * CSV_RECORD_SIZE, CSV_RECORD_SIZE, CSV_MAGIC_RECORD,
			  g.mft_block + i, g.uuid, 0);
	r = volume_write_raw(&vol, g.mft_block, (uint32_t)nrecords, recs);
	if (r < 0)
		goto io_error;
	meta_seal(recs, CSV_RECORD_SIZE, CSV_MAGIC_RECORD, g.mft_mirror_block, g.uuid, 0);
	r = volume_write_raw(&vol, g.mft_mirror_block, 1, recs);
	if (r == 0)
		r = blockdev_flush(bd);
	if (r < 0)
		goto io_error;

	/* The headers last: the volume exists once they are on disk. */
	r = volume_write_header(&vol, g.backup_header_block);
	if (r == 0)
		r = volume_write_header(&vol, 0);
	if (r == 0)
		r = blockdev_flush(bd);
	if (r < 0)
		goto io_error;
	progress(o, "done", 1, 1);
	*ret_g = g;
	goto out;

io_error:
	snprintf(err, errlen, "%s: write failed: %s", blockdev_name(bd), strerror(-r));
out:
	bitmap_free(&cmap);
	bitmap_free(&rmap);
	return r;
}
