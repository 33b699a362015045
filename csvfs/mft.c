/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "mft.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta.h"
#include "record.h"
#include "util.h"

/* Decodes the table's runs from record 0 and checks that they map the
 * table contiguously from VCN 0, starting at the header's mft_block. */
static int mft_from_record0(struct csv_volume *v, struct csv_nodeio *io, const void *rec,
			    struct csv_mft *m, char *err, size_t errlen)
{
	const struct csv_d_attr *a = record_attr_find_const(rec, CSV_ATTR_DATA, 0);
	int r;

	if (!a) {
		snprintf(err, errlen, "$MFT record has no DATA attribute");
		return -EUCLEAN;
	}
	r = runlist_decode(attr_payload_const(a), attr_payload_len(a), io, CSV_REF(0, 1),
			   v->g.total_clusters, &m->rl);
	if (r < 0) {
		snprintf(err, errlen, "$MFT runs are damaged: %s", strerror(-r));
		return r;
	}
	uint64_t vcn = 0;
	for (size_t i = 0; i < m->rl.count; i++) {
		const struct csv_run *run = &m->rl.runs[i];
		if (run->vcn != vcn || run->flags != 0 || run->lcn < v->g.data_lcn) {
			snprintf(err, errlen, "$MFT run %zu (vcn %" PRIu64 ") is a hole, unwritten or in a fixed region",
				 i, run->vcn);
			runlist_free(&m->rl);
			return -EUCLEAN;
		}
		vcn += run->length;
	}
	if (m->rl.count == 0 || lcn_to_block(&v->g, m->rl.runs[0].lcn) != v->g.mft_block) {
		snprintf(err, errlen, "$MFT does not start at block %" PRIu64, v->g.mft_block);
		runlist_free(&m->rl);
		return -EUCLEAN;
	}
	m->records_per_cluster = v->g.cluster_size / CSV_RECORD_SIZE;
	m->nrecords = MIN(vcn * m->records_per_cluster, v->g.max_records);
	m->v = v;
	return 0;
}

int mft_load(struct csv_volume *v, struct csv_nodeio *io, struct csv_mft *ret,
	     bool *ret_used_mirror, char *err, size_t errlen)
{
	_cleanup_free_ void *buf = malloc(CSV_RECORD_SIZE);
	char why[200] = "";
	struct csv_mft m = { 0 };
	int r;

	if (!buf)
		return -ENOMEM;
	r = volume_read_meta(v, v->g.mft_block, 1, CSV_MAGIC_RECORD, buf);
	if (r == 0)
		r = record_verify(buf, 0, why, sizeof(why));
	else
		snprintf(why, sizeof(why), "%s", strerror(-r));
	if (r == 0)
		r = mft_from_record0(v, io, buf, &m, why, sizeof(why));
	if (r == 0) {
		if (ret_used_mirror)
			*ret_used_mirror = false;
		*ret = m;
		return 0;
	}
	char why0[200];
	snprintf(why0, sizeof(why0), "%s", why);
	r = volume_read_meta(v, v->g.mft_mirror_block, 1, CSV_MAGIC_RECORD, buf);
	if (r == 0)
		r = record_verify(buf, 0, why, sizeof(why));
	if (r == 0)
		r = mft_from_record0(v, io, buf, &m, why, sizeof(why));
	if (r < 0) {
		snprintf(err, errlen, "$MFT record 0 at block %" PRIu64 ": %s; its mirror at block %" PRIu64 " is unusable too",
			 v->g.mft_block, why0, v->g.mft_mirror_block);
		return r;
	}
	if (ret_used_mirror)
		*ret_used_mirror = true;
	*ret = m;
	return 0;
}

void mft_release(struct csv_mft *m)
{
	runlist_free(&m->rl);
	m->nrecords = 0;
}

int mft_record_block(const struct csv_mft *m, uint64_t recno, uint64_t *ret_blocknr)
{
	struct csv_run run;
	if (recno >= m->nrecords)
		return -ENOENT;
	uint64_t vcn = recno / m->records_per_cluster;
	int r = runlist_map(&m->rl, vcn, &run);
	if (r < 0)
		return r;
	if (run.flags & CSV_RUNLIST_HOLE)
		return -EUCLEAN;
	*ret_blocknr = lcn_to_block(&m->v->g, run.lcn) + recno % m->records_per_cluster;
	return 0;
}

int mft_read(struct csv_mft *m, uint64_t recno, void *buf, char *err, size_t errlen)
{
	uint64_t b;
	enum meta_fault f;
	int r = mft_record_block(m, recno, &b);
	if (r < 0)
		return r;
	r = volume_read_blocks(m->v, b, 1, 1, buf);
	if (r < 0) {
		if (err)
			snprintf(err, errlen, "cannot read block %" PRIu64 ": %s", b, strerror(-r));
		return r;
	}
	r = meta_verify(buf, CSV_RECORD_SIZE, CSV_MAGIC_RECORD, b, m->v->g.uuid, &f);
	if (r < 0) {
		if (err)
			snprintf(err, errlen, "block %" PRIu64 ": %s", b, meta_fault_str(f));
		return r;
	}
	return record_verify(buf, recno, err, errlen);
}

int mft_write(struct csv_mft *m, uint64_t recno, void *buf, uint64_t lsn)
{
	uint64_t b;
	int r = mft_record_block(m, recno, &b);
	if (r < 0)
		return r;
	r = volume_write_meta(m->v, b, 1, CSV_MAGIC_RECORD, lsn, buf);
	if (r < 0 || recno != 0)
		return r;
	return volume_write_meta(m->v, m->v->g.mft_mirror_block, 1, CSV_MAGIC_RECORD, lsn, buf);
}
