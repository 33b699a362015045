/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "meta.h"

#include <errno.h>
#include <string.h>

#include "crc32c.h"

static uint32_t block_crc(const void *buf, size_t len)
{
	static const uint8_t zero[4];
	size_t off = offsetof(struct csv_d_blkhdr, crc);
	uint32_t c = crc32c_update(~0u, buf, off);
	c = crc32c_update(c, zero, sizeof(zero));
	c = crc32c_update(c, (const uint8_t *)buf + off + 4, len - off - 4);
	return ~c;
}

void meta_reseal(void *buf, size_t len)
{
	struct csv_d_blkhdr *h = buf;
	h->crc = cpu_to_le32(block_crc(buf, len));
}

void meta_seal(void *buf, size_t len, uint32_t magic, uint64_t blocknr,
	       const uint8_t uuid[16], uint64_t lsn)
{
	struct csv_d_blkhdr *h = buf;
	h->magic = cpu_to_le32(magic);
	h->blocknr = cpu_to_le64(blocknr);
	memcpy(h->uuid, uuid, 16);
	h->lsn = cpu_to_le64(lsn);
	memset(h->reserved, 0, sizeof(h->reserved));
	meta_reseal(buf, len);
}

static int all_zero(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return 0;
	return 1;
}

int meta_verify(const void *buf, size_t len, uint32_t magic, uint64_t blocknr,
		const uint8_t uuid[16], enum meta_fault *ret_fault)
{
	const struct csv_d_blkhdr *h = buf;
	enum meta_fault f = META_OK;

	if (len < sizeof(*h))
		f = META_BAD_CRC;
	else if (le32_to_cpu(h->crc) != block_crc(buf, len))
		f = all_zero(buf, len) ? META_ZERO : META_BAD_CRC;
	else if (le32_to_cpu(h->magic) != magic)
		f = META_BAD_MAGIC;
	else if (le64_to_cpu(h->blocknr) != blocknr)
		f = META_BAD_BLOCKNR;
	else if (uuid && memcmp(h->uuid, uuid, 16) != 0)
		f = META_BAD_UUID;
	if (ret_fault)
		*ret_fault = f;
	switch (f) {
	case META_OK:
		return 0;
	case META_BAD_CRC:
	case META_ZERO:
		return -EBADMSG;
	default:
		return -EUCLEAN;
	}
}

const char *meta_fault_str(enum meta_fault f)
{
	switch (f) {
	case META_OK: return "valid";
	case META_BAD_CRC: return "checksum mismatch";
	case META_BAD_MAGIC: return "wrong magic";
	case META_BAD_BLOCKNR: return "misdirected (block number of another block)";
	case META_BAD_UUID: return "belongs to another volume";
	case META_ZERO: return "never written (all zero)";
	}
	return "unknown";
}

const char *meta_magic_str(uint32_t magic, char out[5])
{
	for (int i = 0; i < 4; i++) {
		char c = (char)(magic >> (8 * i));
		out[i] = (c >= 0x20 && c < 0x7f) ? c : '?';
	}
	out[4] = '\0';
	return out;
}
