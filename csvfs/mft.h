/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The master file table on a volume: where record N lives, reading and
 * writing records. Record 0 ($MFT) maps the table through its DATA runs
 * and has a mirror copy in a fixed block. */
#pragma once

#include <stdint.h>

#include "nodeio.h"
#include "runlist.h"
#include "volume.h"

struct csv_mft {
	struct csv_volume *v;
	struct csv_runlist rl;   /* the table's clusters, from record 0 */
	uint64_t nrecords;       /* records the table holds now */
	uint32_t records_per_cluster;
};

/* Reads record 0 (or its mirror when record 0 is damaged; *ret_used_mirror
 * says so) and decodes the table's runs. err names the problem. */
int mft_load(struct csv_volume *v, struct csv_nodeio *io, struct csv_mft *ret,
	     bool *ret_used_mirror, char *err, size_t errlen);
void mft_release(struct csv_mft *m);

/* Block number of record recno; -ENOENT beyond the table. */
int mft_record_block(const struct csv_mft *m, uint64_t recno, uint64_t *ret_blocknr);

/* Reads record recno and verifies its block header and fields. err (when
 * given) names the problem. */
int mft_read(struct csv_mft *m, uint64_t recno, void *buf, char *err, size_t errlen);

/* Seals and writes record recno (record 0 also to its mirror). */
int mft_write(struct csv_mft *m, uint64_t recno, void *buf, uint64_t lsn);
