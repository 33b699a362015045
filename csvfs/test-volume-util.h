/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared by the test suites and the golden-image generator: making a
 * small volume in memory and filling it with a known tree that uses every
 * kind of metadata (resident and run-mapped data, extent blocks, index
 * blocks, a grown MFT, hard links, symlinks, special files, xattrs). */
#pragma once

#include <stdint.h>

#include "blockdev.h"
#include "volume.h"

/* A fresh volume of size bytes on a memory device (fixed UUID). */
int tvol_make(uint64_t size, uint32_t cluster_size, struct csv_blockdev **ret_bd);

/* Fills a fresh volume with the known tree. */
int tvol_populate(struct csv_blockdev *bd);

/* Checks that the known tree is there, byte for byte; returns 0, or a
 * negative errno and a sentence in err naming what differs. */
int tvol_verify(struct csv_blockdev *bd, char *err, size_t errlen);

/* The byte at offset off of the pattern file number n. */
static inline uint8_t tvol_pattern(unsigned n, uint64_t off)
{
	return (uint8_t)((off * 131u + n * 7u + (off >> 12)) & 0xff);
}
