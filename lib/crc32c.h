/* SPDX-License-Identifier: GPL-2.0-or-later */
/* CRC32C (Castagnoli), as used by iSCSI, ext4 and btrfs. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC32C over buf. Start with crc = ~0 and finish with ~crc,
 * or use crc32c() for a whole buffer. */
uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len);

/* CRC32C of one buffer: seed ~0, final inversion. */
static inline uint32_t crc32c(const void *buf, size_t len)
{
	return ~crc32c_update(~0u, buf, len);
}
