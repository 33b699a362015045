/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Formatting a volume: the library behind mkfs.csvfs, used by tests too. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "blockdev.h"
#include "volume.h"

struct mkfs_options {
	const char *label;       /* NULL: no label */
	uint32_t cluster_size;   /* 0: CSV_DEFAULT_CLUSTER_SIZE */
	uint32_t max_nodes;      /* 0: CSV_DEFAULT_MAX_NODES */
	uint64_t journal_bytes;  /* 0: the default for the size */
	uint32_t alignment;      /* device's preferred I/O size, 0: none */
	bool uuid_set;
	uint8_t uuid[16];
	uint64_t time_ns;        /* 0: now */
	/* Called as work proceeds (done of total bytes written), or NULL. */
	void (*progress)(void *ud, const char *phase, uint64_t done, uint64_t total);
	void *progress_ud;
};

/* The number of records the MFT holds after mkfs. */
#define MKFS_INITIAL_RECORDS 64u

/* Writes a new empty volume (root directory and lost+found) on bd.
 * Computes the layout first and returns -ENOSPC, -EINVAL with err set when
 * the options do not fit the device. *ret_g receives the layout. */
int volume_format(struct csv_blockdev *bd, const struct mkfs_options *o,
		  struct csv_geometry *ret_g, char *err, size_t errlen);
