/* SPDX-License-Identifier: GPL-2.0-or-later */
/* CRC32C: published vectors, chaining, and both implementations (the
 * SSE4.2 instruction and the slice-by-8 table) against a bitwise reference
 * written here from the definition. */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"

/* The shipped source, compiled a second time into this test so that its two
 * static paths, crc32c_sw() and crc32c_hw(), can be called directly: the
 * library's crc32c_update() only ever takes one of them on a given CPU. The
 * dispatcher of this copy is renamed so that it does not clash with the
 * library's. */
uint32_t crc32c_update_copy(uint32_t crc, const void *buf, size_t len);
#define crc32c_update crc32c_update_copy
#include "crc32c.c"
#include "test-util.h"
#undef crc32c_update

/* Bit by bit from the definition: reflected polynomial 0x82F63B78. Takes
 * and returns the raw register, like crc32c_update(). */
static uint32_t ref_update(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
	}
	return crc;
}

static uint32_t ref_crc(const void *buf, size_t len)
{
	return ~ref_update(~0u, buf, len);
}

static void fill_random(uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(rng() >> 56);
}

static bool cpu_has_sse42(void)
{
#if defined(__x86_64__)
	return __builtin_cpu_supports("sse4.2");
#else
	return false;
#endif
}

/* ---- Known vectors ----------------------------------------------------- */

/* RFC 3720 appendix B.4: an iSCSI SCSI Read (10) command PDU. */
static const uint8_t iscsi_read_pdu[48] = {
	0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
	0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18,
	0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

struct vector {
	const char *what;
	uint8_t data[64];
	size_t len;
	uint32_t crc;
};

static void make_vectors(struct vector *v, size_t *n)
{
	size_t i = 0;

	v[i] = (struct vector){ .what = "empty", .len = 0, .crc = 0x00000000u };
	i++;
	v[i] = (struct vector){ .what = "\"a\"", .len = 1, .crc = 0xC1D04330u };
	memcpy(v[i].data, "a", 1);
	i++;
	v[i] = (struct vector){ .what = "\"123456789\"", .len = 9, .crc = 0xE3069283u };
	memcpy(v[i].data, "123456789", 9);
	i++;
	/* RFC 3720 B.4 */
	v[i] = (struct vector){ .what = "32 bytes of zeros", .len = 32, .crc = 0x8A9136AAu };
	i++;
	v[i] = (struct vector){ .what = "32 bytes of 0xff", .len = 32, .crc = 0x62A8AB43u };
	memset(v[i].data, 0xff, 32);
	i++;
	v[i] = (struct vector){ .what = "32 incrementing bytes", .len = 32, .crc = 0x46DD794Eu };
	for (int k = 0; k < 32; k++)
		v[i].data[k] = (uint8_t)k;
	i++;
	v[i] = (struct vector){ .what = "32 decrementing bytes", .len = 32, .crc = 0x113FDB5Cu };
	for (int k = 0; k < 32; k++)
		v[i].data[k] = (uint8_t)(31 - k);
	i++;
	v[i] = (struct vector){ .what = "iSCSI read PDU", .len = 48, .crc = 0xD9963A56u };
	memcpy(v[i].data, iscsi_read_pdu, 48);
	i++;
	*n = i;
}

START_TEST(test_known_vectors)
{
	struct vector v[16];
	size_t n;

	make_vectors(v, &n);
	for (size_t i = 0; i < n; i++) {
		/* The reference itself must agree with the published value, or
		 * every comparison below proves nothing. */
		ck_assert_msg(ref_crc(v[i].data, v[i].len) == v[i].crc,
			      "reference CRC of %s: 0x%08x, expected 0x%08x", v[i].what,
			      ref_crc(v[i].data, v[i].len), v[i].crc);
		ck_assert_msg(crc32c(v[i].data, v[i].len) == v[i].crc,
			      "crc32c(%s) = 0x%08x, expected 0x%08x", v[i].what,
			      crc32c(v[i].data, v[i].len), v[i].crc);
		ck_assert_msg(~crc32c_update(~0u, v[i].data, v[i].len) == v[i].crc,
			      "crc32c_update(%s) disagrees with crc32c()", v[i].what);
	}
}
END_TEST

START_TEST(test_known_vectors_both_paths)
{
	struct vector v[16];
	size_t n;

	make_vectors(v, &n);
	for (size_t i = 0; i < n; i++) {
		ck_assert_msg(~crc32c_sw(~0u, v[i].data, v[i].len) == v[i].crc,
			      "table path: CRC of %s = 0x%08x, expected 0x%08x", v[i].what,
			      ~crc32c_sw(~0u, v[i].data, v[i].len), v[i].crc);
#if defined(__x86_64__)
		if (cpu_has_sse42())
			ck_assert_msg(~crc32c_hw(~0u, v[i].data, v[i].len) == v[i].crc,
				      "SSE4.2 path: CRC of %s = 0x%08x, expected 0x%08x", v[i].what,
				      ~crc32c_hw(~0u, v[i].data, v[i].len), v[i].crc);
#endif
	}
	if (!cpu_has_sse42())
		fprintf(stderr, "test-crc32c: no SSE4.2 on this CPU, only the table path was checked\n");
}
END_TEST

START_TEST(test_zero_length_keeps_register)
{
	static const uint8_t b[1] = { 0x5a };
	const uint32_t seeds[] = { 0, ~0u, 0x12345678u, 0x80000001u };

	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		ck_assert_uint_eq(crc32c_update(seeds[i], b, 0), seeds[i]);
		ck_assert_uint_eq(crc32c_update(seeds[i], NULL, 0), seeds[i]);
		ck_assert_uint_eq(crc32c_sw(seeds[i], b, 0), seeds[i]);
	}
	ck_assert_uint_eq(crc32c(NULL, 0), 0);
}
END_TEST

/* ---- Chaining ------------------------------------------------------------ */

START_TEST(test_update_chaining_random_splits)
{
	enum { MAX = 4096 };
	uint8_t *buf = malloc(MAX);
	ck_assert_ptr_nonnull(buf);
	rng_seed(0xc0ffee);
	fill_random(buf, MAX);

	for (size_t len = 0; len <= MAX; len++) {
		uint32_t whole = crc32c(buf, len);
		REQUIRE(whole == ref_crc(buf, len), "length %zu: crc32c 0x%08x, reference 0x%08x",
			len, whole, ref_crc(buf, len));
		/* A few different random splits per length, into 1..8 pieces
		 * (pieces of length 0 included). */
		for (int trial = 0; trial < 3; trial++) {
			uint32_t c = ~0u;
			size_t done = 0;
			int pieces = 1 + (int)(rng() % 8);
			for (int k = 0; k < pieces - 1; k++) {
				size_t n = (size_t)(rng() % (len - done + 1));
				c = crc32c_update(c, buf + done, n);
				done += n;
			}
			c = crc32c_update(c, buf + done, len - done);
			REQUIRE(~c == whole, "length %zu split in %d pieces: 0x%08x, one-shot 0x%08x",
				len, pieces, ~c, whole);
		}
	}
	free(buf);
}
END_TEST

/* Every split point of one buffer, through both implementations: the
 * running register crosses each path's 8-byte and tail loops at every
 * possible phase. */
START_TEST(test_update_chaining_every_split)
{
	enum { LEN = 523 };
	uint8_t buf[LEN];
	rng_seed(7);
	fill_random(buf, LEN);
	uint32_t whole = ref_crc(buf, LEN);

	for (size_t s = 0; s <= LEN; s++) {
		uint32_t c = crc32c_update(crc32c_update(~0u, buf, s), buf + s, LEN - s);
		REQUIRE(~c == whole, "split at %zu: 0x%08x, expected 0x%08x", s, ~c, whole);
		c = crc32c_sw(crc32c_sw(~0u, buf, s), buf + s, LEN - s);
		REQUIRE(~c == whole, "table path, split at %zu: 0x%08x, expected 0x%08x", s, ~c, whole);
#if defined(__x86_64__)
		if (cpu_has_sse42()) {
			c = crc32c_hw(crc32c_hw(~0u, buf, s), buf + s, LEN - s);
			REQUIRE(~c == whole, "SSE4.2 path, split at %zu: 0x%08x, expected 0x%08x", s, ~c, whole);
		}
#endif
	}
}
END_TEST

/* ---- Both paths against the reference ------------------------------------ */

/* Misaligned starts (0..15 bytes into an aligned buffer), every length up
 * to 300, and a few long odd lengths; arbitrary starting registers, not
 * only ~0, so the table path's "w ^= crc" and the instruction's 64-bit
 * register are both exercised with all bits live. */
START_TEST(test_paths_match_reference_unaligned)
{
	enum { MAX = 8192 + 64 };
	uint8_t *base = aligned_alloc(64, MAX);
	ck_assert_ptr_nonnull(base);
	rng_seed(0x5eed);
	fill_random(base, MAX);
	bool hw = cpu_has_sse42();

	static const size_t long_lens[] = { 511, 1023, 4095, 4097, 8191 };
	for (size_t off = 0; off < 16; off++) {
		for (size_t len = 0; len <= 300 + sizeof(long_lens) / sizeof(long_lens[0]); len++) {
			size_t l = len <= 300 ? len : long_lens[len - 301];
			uint32_t seed = (uint32_t)rng();
			const uint8_t *p = base + off;
			uint32_t want = ref_update(seed, p, l);

			uint32_t got = crc32c_update(seed, p, l);
			REQUIRE(got == want, "crc32c_update offset %zu length %zu seed 0x%08x: 0x%08x, reference 0x%08x",
				off, l, seed, got, want);
			got = crc32c_sw(seed, p, l);
			REQUIRE(got == want, "table path offset %zu length %zu seed 0x%08x: 0x%08x, reference 0x%08x",
				off, l, seed, got, want);
#if defined(__x86_64__)
			if (hw) {
				got = crc32c_hw(seed, p, l);
				REQUIRE(got == want, "SSE4.2 path offset %zu length %zu seed 0x%08x: 0x%08x, reference 0x%08x",
					off, l, seed, got, want);
			}
#endif
		}
	}
	free(base);
}
END_TEST

/* The dispatcher picks the instruction when the CPU has it and the table
 * otherwise; either way its result is that of the path it picked, and the
 * two paths agree on random data of random lengths. */
START_TEST(test_paths_agree_random)
{
	enum { MAX = 70000 };
	uint8_t *buf = malloc(MAX);
	ck_assert_ptr_nonnull(buf);
	rng_seed(0xfeedface);
	fill_random(buf, MAX);

	for (int i = 0; i < 2000; i++) {
		size_t off = (size_t)(rng() % 64);
		size_t len = (size_t)(rng() % (MAX - 64));
		uint32_t seed = (uint32_t)rng();
		uint32_t sw = crc32c_sw(seed, buf + off, len);
		REQUIRE(crc32c_update(seed, buf + off, len) == sw,
			"crc32c_update and the table path differ at offset %zu length %zu", off, len);
#if defined(__x86_64__)
		if (cpu_has_sse42())
			REQUIRE(crc32c_hw(seed, buf + off, len) == sw,
				"SSE4.2 and table paths differ at offset %zu length %zu", off, len);
#endif
	}
	/* One long buffer against the reference too. */
	ck_assert_uint_eq(crc32c(buf, MAX), ref_crc(buf, MAX));
	free(buf);
}
END_TEST

/* A CRC detects every single-bit error: flipping any bit of a 4 KiB block
 * changes crc32c(). The on-disk format relies on it. */
START_TEST(test_single_bit_errors_detected)
{
	enum { LEN = 4096 };
	uint8_t *buf = malloc(LEN);
	ck_assert_ptr_nonnull(buf);
	rng_seed(99);
	fill_random(buf, LEN);
	uint32_t good = crc32c(buf, LEN);

	for (size_t bit = 0; bit < LEN * 8; bit++) {
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		REQUIRE(crc32c(buf, LEN) != good, "flipping bit %zu left the CRC unchanged", bit);
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	ck_assert_uint_eq(crc32c(buf, LEN), good);
	free(buf);
}
END_TEST

static Suite *crc32c_suite(void)
{
	Suite *s = suite_create("crc32c");
	TCase *tc;

	tc = tcase_create("vectors");
	tcase_add_test(tc, test_known_vectors);
	tcase_add_test(tc, test_known_vectors_both_paths);
	tcase_add_test(tc, test_zero_length_keeps_register);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("chaining");
	tcase_add_test(tc, test_update_chaining_random_splits);
	tcase_add_test(tc, test_update_chaining_every_split);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_create("paths");
	tcase_add_test(tc, test_paths_match_reference_unaligned);
	tcase_add_test(tc, test_paths_agree_random);
	tcase_add_test(tc, test_single_bit_errors_detected);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(crc32c_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
