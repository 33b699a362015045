/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Sealing and verifying the common header of metadata blocks. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "format.h"

/* Fills magic, blocknr, uuid and lsn of the block header at buf and sets
 * its CRC32C over len bytes. */
void meta_seal(void *buf, size_t len, uint32_t magic, uint64_t blocknr,
	       const uint8_t uuid[16], uint64_t lsn);

/* Recomputes only the CRC (after the caller changed other fields). */
void meta_reseal(void *buf, size_t len);

/* Why a block failed to verify. */
enum meta_fault {
	META_OK = 0,
	META_BAD_CRC,      /* torn or damaged */
	META_BAD_MAGIC,    /* not the structure expected there */
	META_BAD_BLOCKNR,  /* a misdirected write: the block belongs elsewhere */
	META_BAD_UUID,     /* a block of another volume */
	META_ZERO,         /* never written */
};

/* Checks a block read from blocknr: CRC, magic, own block number and
 * volume UUID. Returns 0, or -EBADMSG (bad CRC or an all-zero block) or
 * -EUCLEAN (valid CRC but wrong magic, location or volume); *ret_fault,
 * when given, says which. */
int meta_verify(const void *buf, size_t len, uint32_t magic, uint64_t blocknr,
		const uint8_t uuid[16], enum meta_fault *ret_fault);

const char *meta_fault_str(enum meta_fault f);

/* The magic as four printable characters, for messages. */
const char *meta_magic_str(uint32_t magic, char out[5]);
