/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The cluster area of a volume: the coordinator lease, the disk witness,
 * and a heartbeat and a mailbox block per node slot. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "volume.h"

/* The magic of the index-th block of the cluster area. */
uint32_t clusterarea_magic(uint64_t index);

/* A short name for the index-th block ("lease", "witness",
 * "heartbeat of slot 3", "mailbox of slot 3"). */
const char *clusterarea_block_name(uint64_t index, char *buf, size_t len);

/* Writes the empty (never used) form of the index-th block. */
int clusterarea_reset_block(struct csv_volume *v, uint64_t index);

/* Writes every block of the area in its empty form (mkfs). */
int clusterarea_format(struct csv_volume *v);

/* Verifies the index-th block: header and fields. err names the problem.
 * Returns 0, -EBADMSG or -EUCLEAN. */
int clusterarea_verify_block(struct csv_volume *v, uint64_t index, void *buf, char *err, size_t errlen);

/* Raises the coordinator epoch in the lease block by one, naming node as
 * its holder, and flushes: the new coordinator of the volume takes it at
 * its start, so that every epoch is used by one coordinator only. err
 * names the problem (a damaged lease block). */
int clusterarea_take_epoch(struct csv_volume *v, uint32_t node, uint64_t *ret_epoch, char *err, size_t errlen);
/* Reads the coordinator epoch and its holder from the lease block. */
int clusterarea_read_epoch(struct csv_volume *v, uint64_t *ret_epoch, uint32_t *ret_holder, char *err,
			   size_t errlen);
