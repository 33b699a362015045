/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The common metadata block header: sealing, and verification that tells
 * each kind of damage apart (torn, foreign, misdirected, never written). */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "format.h"
#include "meta.h"
#include "test-util.h"

static const uint8_t uuid_a[16] = { 0x6b, 0x1e, 0x2c, 0x90, 0x11, 0x4d, 0x47, 0x0a,
				    0x9c, 0x3e, 0x55, 0x01, 0xde, 0xad, 0xbe, 0xef };
static const uint8_t uuid_b[16] = { 0x6b, 0x1e, 0x2c, 0x90, 0x11, 0x4d, 0x47, 0x0a,
				    0x9c, 0x3e, 0x55, 0x01, 0xde, 0xad, 0xbe, 0xee };

/* A block of len bytes with random contents after the header, sealed. */
static uint8_t *make_block(size_t len, uint32_t magic, uint64_t blocknr, uint64_t lsn)
{
	uint8_t *b = malloc(len);
	ck_assert_ptr_nonnull(b);
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(rng() >> 56);
	meta_seal(b, len, magic, blocknr, uuid_a, lsn);
	return b;
}

static int verify(const void *b, size_t len, uint32_t magic, uint64_t blocknr,
		  const uint8_t *uuid, enum meta_fault *f)
{
	*f = (enum meta_fault)-1;
	return meta_verify(b, len, magic, blocknr, uuid, f);
}

/* ---- Seal and verify ----------------------------------------------------- */

START_TEST(test_seal_then_verify)
{
	const size_t len = _i ? 65536 : 4096;
	uint8_t *b = make_block(len, CSV_MAGIC_RECORD, 0x123456789aull, 77);
	enum meta_fault f;

	ck_assert_int_eq(verify(b, len, CSV_MAGIC_RECORD, 0x123456789aull, uuid_a, &f), 0);
	ck_assert_int_eq(f, META_OK);
	/* Without a UUID to compare (a header read before the UUID is known). */
	ck_assert_int_eq(verify(b, len, CSV_MAGIC_RECORD, 0x123456789aull, NULL, &f), 0);
	/* ret_fault is optional. */
	ck_assert_int_eq(meta_verify(b, len, CSV_MAGIC_RECORD, 0x123456789aull, uuid_a, NULL), 0);
	free(b);
}
END_TEST

/* The header as format.h lays it out, and the CRC as it defines it:
 * CRC32C of the whole block, seed ~0, the crc field zero while computing.
 * Another implementation (fsck in another language, a hex dump) must get
 * the same bytes. */
START_TEST(test_seal_layout)
{
	const size_t len = _i ? 65536 : 4096;
	uint8_t *b = make_block(len, CSV_MAGIC_INDEX, 0, 0);
	uint8_t *payload = malloc(len);
	ck_assert_ptr_nonnull(payload);
	memcpy(payload, b, len);

	memset(b, 0xff, sizeof(struct csv_d_blkhdr)); /* dirty header, reserved too */
	meta_seal(b, len, CSV_MAGIC_INDEX, 0x0102030405060708ull, uuid_a, 0x1122334455667788ull);

	static const uint8_t want[0x30] = {
		'C', 'S', 'I', 'X',                             /* 0x00 magic */
		0, 0, 0, 0,                                     /* 0x04 crc, checked below */
		0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* 0x08 blocknr */
		0x6b, 0x1e, 0x2c, 0x90, 0x11, 0x4d, 0x47, 0x0a, /* 0x10 uuid */
		0x9c, 0x3e, 0x55, 0x01, 0xde, 0xad, 0xbe, 0xef,
		0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* 0x20 lsn */
		0, 0, 0, 0, 0, 0, 0, 0,                         /* 0x28 reserved */
	};
	ck_assert_mem_eq(b, want, 4);
	ck_assert_mem_eq(b + 8, want + 8, sizeof(want) - 8);
	/* The payload is not touched. */
	ck_assert(memcmp(b + 0x30, payload + 0x30, len - 0x30) == 0);

	uint32_t stored = (uint32_t)b[4] | (uint32_t)b[5] << 8 | (uint32_t)b[6] << 16 | (uint32_t)b[7] << 24;
	memset(b + 4, 0, 4);
	ck_assert_uint_eq(stored, crc32c(b, len));
	free(b);
	free(payload);
}
END_TEST

/* meta_reseal recomputes the CRC after the caller changed the payload,
 * and changes nothing else. */
START_TEST(test_reseal_after_change)
{
	uint8_t *b = make_block(4096, CSV_MAGIC_RECORD, 9, 1);
	enum meta_fault f;

	b[1000] ^= 0x40;
	ck_assert_int_eq(verify(b, 4096, CSV_MAGIC_RECORD, 9, uuid_a, &f), -EBADMSG);
	uint8_t before[4096];
	memcpy(before, b, sizeof(before));
	meta_reseal(b, 4096);
	ck_assert_int_eq(verify(b, 4096, CSV_MAGIC_RECORD, 9, uuid_a, &f), 0);
	ck_assert(memcmp(b, before, 4) == 0);
	ck_assert(memcmp(b + 8, before + 8, 4096 - 8) == 0);
	free(b);
}
END_TEST

/* The CRC covers len bytes, no more: a seal over the first 4 KiB of a
 * larger buffer ignores what follows, and a verify over more fails. */
START_TEST(test_seal_covers_len)
{
	uint8_t *b = make_block(8192, CSV_MAGIC_EXTENT, 3, 1);
	enum meta_fault f;

	meta_seal(b, 4096, CSV_MAGIC_EXTENT, 3, uuid_a, 1);
	b[5000] ^= 1;
	ck_assert_int_eq(verify(b, 4096, CSV_MAGIC_EXTENT, 3, uuid_a, &f), 0);
	ck_assert_int_eq(verify(b, 8192, CSV_MAGIC_EXTENT, 3, uuid_a, &f), -EBADMSG);
	ck_assert_int_eq(f, META_BAD_CRC);
	free(b);
}
END_TEST

/* ---- Each fault, detected and named ----------------------------------------- */

/* Return codes as documented: -EBADMSG for damage (a bad CRC, an all-zero
 * block), -EUCLEAN for a valid block that is not the one expected there
 * (wrong magic, block number or volume). */

/* Any single damaged byte anywhere in a 4 KiB block, the header and the
 * crc field included, is a bad checksum: -EBADMSG. */
START_TEST(test_any_byte_flip_is_bad_crc)
{
	uint8_t *b = make_block(4096, CSV_MAGIC_RECORD, 42, 5);
	enum meta_fault f;

	for (size_t off = 0; off < 4096; off++) {
		for (unsigned k = 0; k < 3; k++) {
			/* Every bit alone, then all bits, then a random change. */
			uint8_t x = k == 0 ? (uint8_t)(1u << (off % 8)) : k == 1 ? 0xff : (uint8_t)(1 + rng() % 255);
			b[off] ^= x;
			int r = verify(b, 4096, CSV_MAGIC_RECORD, 42, uuid_a, &f);
			REQUIRE(r == -EBADMSG && f == META_BAD_CRC,
				"byte %zu ^ 0x%02x: verify gave %d, fault %d", off, x, r, (int)f);
			b[off] ^= x;
		}
	}
	ck_assert_int_eq(verify(b, 4096, CSV_MAGIC_RECORD, 42, uuid_a, &f), 0);
	free(b);
}
END_TEST

/* The same over a 64 KiB node: every header byte, the first and last
 * 4 KiB, and a stride through the rest. */
START_TEST(test_byte_flip_64k_is_bad_crc)
{
	const size_t len = 65536;
	uint8_t *b = make_block(len, CSV_MAGIC_INDEX, 4096, 5);
	enum meta_fault f;

	for (size_t off = 0; off < len; off += (off < 4096 || off >= len - 4096) ? 1 : 61) {
		b[off] ^= 0x10;
		int r = verify(b, len, CSV_MAGIC_INDEX, 4096, uuid_a, &f);
		REQUIRE(r == -EBADMSG && f == META_BAD_CRC, "byte %zu: verify gave %d, fault %d", off, r, (int)f);
		b[off] ^= 0x10;
	}
	ck_assert_int_eq(verify(b, len, CSV_MAGIC_INDEX, 4096, uuid_a, &f), 0);
	free(b);
}
END_TEST

/* A block torn at a sector boundary: the first sectors new, the rest old. */
START_TEST(test_torn_block_is_bad_crc)
{
	uint8_t *old = make_block(4096, CSV_MAGIC_RECORD, 42, 5);
	uint8_t *new = make_block(4096, CSV_MAGIC_RECORD, 42, 6);
	uint8_t torn[4096];
	enum meta_fault f;

	for (size_t cut = 512; cut < 4096; cut += 512) {
		memcpy(torn, new, cut);
		memcpy(torn + cut, old + cut, 4096 - cut);
		ck_assert_int_eq(verify(torn, 4096, CSV_MAGIC_RECORD, 42, uuid_a, &f), -EBADMSG);
		ck_assert_int_eq(f, META_BAD_CRC);
	}
	free(old);
	free(new);
}
END_TEST

START_TEST(test_bad_magic)
{
	const size_t len = _i ? 65536 : 4096;
	uint8_t *b = make_block(len, CSV_MAGIC_RECORD, 42, 5);
	struct csv_d_blkhdr *h = (void *)b;
	enum meta_fault f;

	/* Valid block, but not what the caller expects there. */
	ck_assert_int_eq(verify(b, len, CSV_MAGIC_INDEX, 42, uuid_a, &f), -EUCLEAN);
	ck_assert_int_eq(f, META_BAD_MAGIC);
	/* The field changed and the CRC made to match. */
	h->magic = cpu_to_le32(CSV_MAGIC('C', 'S', 'F', 'S'));
	meta_reseal(b, len);
	ck_assert_int_eq(verify(b, len, CSV_MAGIC_RECORD, 42, uuid_a, &f), -EUCLEAN);
	ck_assert_int_eq(f, META_BAD_MAGIC);
	h->magic = cpu_to_le32(0);
	meta_reseal(b, len);
	ck_assert_int_eq(verify(b, len, CSV_MAGIC_RECORD, 42, uuid_a, &f), -EUCLEAN);
	ck_assert_int_eq(f, META_BAD_MAGIC);
	free(b);
}
END_TEST

START_TEST(test_bad_blocknr)
{
	const size_t len = _i ? 65536 : 4096;
	uint8_t *b = make_block(len, CSV_MAGIC_RECORD, 42, 5);
	struct csv_d_blkhdr *h = (void *)b;
	enum meta_fault f;

	/* A misdirected write: a valid block read from another address. */
	ck_assert_int_eq(verify(b, len, CSV_MAGIC_RECORD, 43, uuid_a, &f), -EUCLEAN);
	ck_assert_int_eq(f, META_BAD_BLOCKNR);
	ck_assert_int_eq(verify(b, len, CSV_MAGIC_RECORD, 42 | (1ull << 40), uuid_a, &f), -EUCLEAN);
	ck_assert_int_eq(f, META_BAD_BLOCKNR);
	h->blocknr = cpu_to_le64(0);
	meta_reseal(b, len);
	ck_assert_int_eq(verify(b, len, CSV_MAGIC_RECORD, 42, uuid_a, &f), -EUCLEAN);
	ck_assert_int_eq(f, META_BAD_BLOCKNR);
	ck_assert_int_eq(verify(b, len, CSV_MAGIC_RECORD, 0, uuid_a, &f), 0);
	free(b);
}
END_TEST

START_TEST(test_bad_uuid)
{
	const size_t len = _i ? 65536 : 4096;
	uint8_t *b = make_block(len, CSV_MAGIC_RECORD, 42, 5);
	struct csv_d_blkhdr *h = (void *)b;
	enum meta_fault f;

	/* A block of another volume, one UUID byte apart. */
	ck_assert_int_eq(verify(b, len, CSV_MAGIC_RECORD, 42, uuid_b, &f), -EUCLEAN);
	ck_assert_int_eq(f, META_BAD_UUID);
	for (int i = 0; i < 16; i++) {
		h->uuid[i] ^= 0x80;
		meta_reseal(b, len);
		ck_assert_int_eq(verify(b, len, CSV_MAGIC_RECORD, 42, uuid_a, &f), -EUCLEAN);
		ck_assert_int_eq(f, META_BAD_UUID);
		h->uuid[i] ^= 0x80;
	}
	meta_reseal(b, len);
	ck_assert_int_eq(verify(b, len, CSV_MAGIC_RECORD, 42, uuid_a, &f), 0);
	free(b);
}
END_TEST

START_TEST(test_zero_block)
{
	const size_t len = _i ? 65536 : 4096;
	uint8_t *b = calloc(1, len);
	enum meta_fault f;

	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(verify(b, len, CSV_MAGIC_RECORD, 0, uuid_a, &f), -EBADMSG);
	ck_assert_int_eq(f, META_ZERO);
	ck_assert_int_eq(verify(b, len, CSV_MAGIC_RECORD, 7, NULL, &f), -EBADMSG);
	ck_assert_int_eq(f, META_ZERO);
	/* One non-zero byte is damage, not "never written". */
	b[len - 1] = 1;
	ck_assert_int_eq(verify(b, len, CSV_MAGIC_RECORD, 0, uuid_a, &f), -EBADMSG);
	ck_assert_int_eq(f, META_BAD_CRC);
	free(b);
}
END_TEST

START_TEST(test_too_short)
{
	uint8_t b[0x30];
	enum meta_fault f;

	memset(b, 0, sizeof(b));
	meta_seal(b, sizeof(b), CSV_MAGIC_RECORD, 1, uuid_a, 1);
	ck_assert_int_eq(verify(b, sizeof(b), CSV_MAGIC_RECORD, 1, uuid_a, &f), 0);
	/* Shorter than a header: never valid, never read past len (ASan). */
	uint8_t *small = malloc(0x2f);
	ck_assert_ptr_nonnull(small);
	memcpy(small, b, 0x2f);
	ck_assert_int_eq(verify(small, 0x2f, CSV_MAGIC_RECORD, 1, uuid_a, &f), -EBADMSG);
	ck_assert_int_eq(f, META_BAD_CRC);
	ck_assert_int_eq(verify(small, 0, CSV_MAGIC_RECORD, 1, uuid_a, &f), -EBADMSG);
	free(small);
}
END_TEST

/* Each fault has its own sentence for messages. */
START_TEST(test_fault_strings)
{
	const enum meta_fault all[] = { META_OK, META_BAD_CRC, META_BAD_MAGIC, META_BAD_BLOCKNR,
					META_BAD_UUID, META_ZERO };
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		const char *s = meta_fault_str(all[i]);
		ck_assert_ptr_nonnull(s);
		ck_assert_uint_gt(strlen(s), 3);
		for (size_t j = 0; j < i; j++)
			ck_assert_msg(strcmp(s, meta_fault_str(all[j])) != 0,
				      "faults %d and %d read the same: \"%s\"", (int)all[i], (int)all[j], s);
	}
	ck_assert_ptr_nonnull(strstr(meta_fault_str(META_BAD_CRC), "checksum"));
	ck_assert_ptr_nonnull(strstr(meta_fault_str(META_BAD_UUID), "volume"));
}
END_TEST

START_TEST(test_magic_str)
{
	char out[5];

	ck_assert_str_eq(meta_magic_str(CSV_MAGIC_HEADER, out), "CSVH");
	ck_assert_ptr_eq(meta_magic_str(CSV_MAGIC_HEADER, out), out);
	ck_assert_str_eq(meta_magic_str(CSV_MAGIC_RECORD, out), "CSFR");
	ck_assert_str_eq(meta_magic_str(CSV_MAGIC_INDEX, out), "CSIX");
	ck_assert_str_eq(meta_magic_str(CSV_MAGIC_JCOMMIT, out), "CSJC");
	ck_assert_str_eq(meta_magic_str(CSV_MAGIC_HEARTBEAT, out), "CSHB");
	/* Unprintable bytes become '?', in disk order. */
	ck_assert_str_eq(meta_magic_str(0, out), "????");
	ck_assert_str_eq(meta_magic_str(CSV_MAGIC('A', 0x7f, 'z', 0x80), out), "A?z?");
	ck_assert_str_eq(meta_magic_str(CSV_MAGIC(' ', '~', 0x1f, 0xff), out), " ~??");
}
END_TEST

static Suite *meta_suite(void)
{
	Suite *s = suite_create("meta");
	TCase *tc;

	/* Loop tests run with _i = 0 (a 4 KiB block) and 1 (a 64 KiB node). */
	tc = tcase_create("seal");
	tcase_add_loop_test(tc, test_seal_then_verify, 0, 2);
	tcase_add_loop_test(tc, test_seal_layout, 0, 2);
	tcase_add_test(tc, test_reseal_after_change);
	tcase_add_test(tc, test_seal_covers_len);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("faults");
	tcase_add_test(tc, test_any_byte_flip_is_bad_crc);
	tcase_add_test(tc, test_byte_flip_64k_is_bad_crc);
	tcase_add_test(tc, test_torn_block_is_bad_crc);
	tcase_add_loop_test(tc, test_bad_magic, 0, 2);
	tcase_add_loop_test(tc, test_bad_blocknr, 0, 2);
	tcase_add_loop_test(tc, test_bad_uuid, 0, 2);
	tcase_add_loop_test(tc, test_zero_block, 0, 2);
	tcase_add_test(tc, test_too_short);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_create("strings");
	tcase_add_test(tc, test_fault_strings);
	tcase_add_test(tc, test_magic_str);
	tcase_set_timeout(tc, 10);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(meta_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
