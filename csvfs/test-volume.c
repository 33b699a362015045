/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Volume geometry (the layout mkfs writes), the volume header (encode,
 * decode and every refusal), opening a volume from its primary or backup
 * header, and metadata block I/O. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blockdev.h"
#include "format.h"
#include "meta.h"
#include "volume.h"
#include "test-util.h"

#define KiB 1024ull
#define MiB (1024ull * KiB)
#define GiB (1024ull * MiB)
#define TiB (1024ull * GiB)

static const uint8_t test_uuid[16] = { 0xc5, 0x7f, 0x5a, 0x10, 0x8e, 0x2b, 0x4f, 0x61,
				       0xa0, 0x33, 0x1d, 0x42, 0x90, 0x0b, 0x7e, 0x25 };

static uint64_t div_round_up(uint64_t n, uint64_t d)
{
	return n / d + (n % d != 0);
}

/* Field by field: the struct has padding, so no memcmp. */
static void require_geometry_eq(const struct csv_geometry *a, const struct csv_geometry *b, const char *what)
{
#define SAME(f) REQUIRE(a->f == b->f, "%s: " #f " %" PRIu64 " != %" PRIu64, what, (uint64_t)a->f, (uint64_t)b->f)
	SAME(cluster_size);
	SAME(blocks_per_cluster);
	SAME(total_clusters);
	SAME(total_blocks);
	SAME(backup_header_block);
	SAME(max_nodes);
	SAME(state);
	SAME(cluster_area_block);
	SAME(cluster_area_blocks);
	SAME(journal_block);
	SAME(journal_blocks);
	SAME(cbitmap_block);
	SAME(cbitmap_blocks);
	SAME(rbitmap_block);
	SAME(rbitmap_blocks);
	SAME(max_records);
	SAME(mft_block);
	SAME(mft_mirror_block);
	SAME(mft_zone_lcn);
	SAME(mft_zone_clusters);
	SAME(data_lcn);
	SAME(feature_compat);
	SAME(feature_ro_compat);
	SAME(feature_incompat);
	SAME(mkfs_time_ns);
	SAME(check_time_ns);
	SAME(version_major);
	SAME(version_minor);
#undef SAME
	REQUIRE(memcmp(a->uuid, b->uuid, 16) == 0, "%s: uuid differs", what);
	REQUIRE(strcmp(a->label, b->label) == 0, "%s: label \"%s\" != \"%s\"", what, a->label, b->label);
}

/* ---- geometry_layout ----------------------------------------------------- */

/* Everything a layout must satisfy for the volume to work, whatever the
 * size, cluster size, node count and alignment. */
static void check_layout(const struct csv_geometry *g, uint64_t size, uint32_t cs, uint32_t nodes,
			 uint32_t alignment)
{
	const uint64_t bpc = cs / CSV_BLOCK_SIZE;
	char what[128];
	snprintf(what, sizeof(what), "size %" PRIu64 " cluster %u nodes %u align %u", size, cs, nodes, alignment);

	REQUIRE(g->version_major == CSV_VERSION_MAJOR && g->version_minor == CSV_VERSION_MINOR, "%s: version", what);
	REQUIRE(g->cluster_size == cs && g->blocks_per_cluster == bpc, "%s: cluster size", what);
	REQUIRE(g->total_clusters == size / cs, "%s: %" PRIu64 " clusters", what, g->total_clusters);
	REQUIRE(g->total_blocks == g->total_clusters * bpc, "%s: total_blocks", what);
	REQUIRE(g->total_blocks * CSV_BLOCK_SIZE <= size, "%s: volume larger than the device", what);
	REQUIRE(g->backup_header_block == g->total_blocks - 1, "%s: backup header at %" PRIu64 " of %" PRIu64,
		what, g->backup_header_block, g->total_blocks);
	REQUIRE(g->max_nodes == nodes, "%s: max_nodes %u", what, g->max_nodes);
	REQUIRE(g->state == CSV_STATE_CLEAN, "%s: state %u", what, g->state);
	REQUIRE(g->feature_incompat == 0, "%s: incompat features", what);

	/* Fixed regions after the header block, in order, without overlap,
	 * all before the data area. */
	REQUIRE(g->cluster_area_blocks == CSV_CLUSTER_AREA_BLOCKS(nodes), "%s: cluster area of %" PRIu64 " blocks",
		what, g->cluster_area_blocks);
	REQUIRE(g->journal_blocks >= 64, "%s: journal of %" PRIu64 " blocks", what, g->journal_blocks);
	const struct { const char *name; uint64_t start, len; } rg[] = {
		{ "header", 0, 1 },
		{ "cluster area", g->cluster_area_block, g->cluster_area_blocks },
		{ "journal", g->journal_block, g->journal_blocks },
		{ "cluster bitmap", g->cbitmap_block, g->cbitmap_blocks },
		{ "record bitmap", g->rbitmap_block, g->rbitmap_blocks },
		{ "MFT mirror", g->mft_mirror_block, 1 },
	};
	uint64_t end = 0;
	for (size_t i = 0; i < sizeof(rg) / sizeof(rg[0]); i++) {
		REQUIRE(rg[i].len > 0, "%s: %s is empty", what, rg[i].name);
		REQUIRE(rg[i].start >= end, "%s: %s at %" PRIu64 " overlaps the region before (ends %" PRIu64 ")",
			what, rg[i].name, rg[i].start, end);
		end = rg[i].start + rg[i].len;
	}
	uint64_t data_block = g->data_lcn * bpc;
	REQUIRE(end <= data_block, "%s: fixed regions end at %" PRIu64 ", data area at %" PRIu64, what, end, data_block);
	REQUIRE(g->data_lcn < g->total_clusters, "%s: data area beyond the volume", what);

	/* The bitmaps cover every cluster and every record, with no spare block. */
	REQUIRE(g->cbitmap_blocks == div_round_up(g->total_clusters, CSV_BITMAP_BITS),
		"%s: %" PRIu64 " cluster bitmap blocks for %" PRIu64 " clusters", what, g->cbitmap_blocks, g->total_clusters);
	REQUIRE(g->max_records >= CSV_FIRST_USER_RECORD && g->max_records <= (1ull << 48),
		"%s: max_records %" PRIu64, what, g->max_records);
	REQUIRE(g->rbitmap_blocks == div_round_up(g->max_records, CSV_BITMAP_BITS),
		"%s: %" PRIu64 " record bitmap blocks for %" PRIu64 " records", what, g->rbitmap_blocks, g->max_records);

	/* The MFT zone: in the data area, holding at least the system records,
	 * record 0 at its start, and not reaching the backup header. */
	REQUIRE(g->mft_zone_lcn >= g->data_lcn, "%s: MFT zone before the data area", what);
	REQUIRE(g->mft_zone_clusters * cs >= (uint64_t)CSV_FIRST_USER_RECORD * CSV_RECORD_SIZE,
		"%s: MFT zone of %" PRIu64 " clusters cannot hold the system records", what, g->mft_zone_clusters);
	REQUIRE((g->mft_zone_lcn + g->mft_zone_clusters) * bpc <= g->backup_header_block,
		"%s: MFT zone reaches the backup header", what);
	REQUIRE(g->mft_block == g->mft_zone_lcn * bpc, "%s: MFT record 0 at %" PRIu64, what, g->mft_block);
	REQUIRE(g->mft_zone_lcn + g->mft_zone_clusters < g->total_clusters - 1, "%s: no data clusters left", what);

	if (alignment > cs && alignment % cs == 0 && alignment <= 16 * MiB)
		REQUIRE(data_block * CSV_BLOCK_SIZE % alignment == 0, "%s: data area at byte %" PRIu64 " not aligned",
			what, data_block * CSV_BLOCK_SIZE);

	/* What mkfs lays out, the header decoder accepts as it is. */
	uint8_t hdr[CSV_BLOCK_SIZE];
	struct csv_geometry d;
	char err[256] = "";
	struct csv_geometry e = *g;
	memcpy(e.uuid, test_uuid, 16);
	header_encode(&e, 0, hdr);
	int r = header_decode(hdr, 0, size, &d, err, sizeof(err));
	REQUIRE(r == 0, "%s: the header of this layout does not decode (%d): %s", what, r, err);
	require_geometry_eq(&d, &e, what);
	header_encode(&e, e.backup_header_block, hdr);
	r = header_decode(hdr, e.backup_header_block, size, &d, err, sizeof(err));
	REQUIRE(r == 0, "%s: the backup header of this layout does not decode (%d): %s", what, r, err);
}

static const uint32_t cluster_sizes[] = { 4096, 8192, 16384, 32768, 65536 };
static const uint32_t node_counts[] = { 1, 2, 3, 4, 8, 16, 31, 32, 33, 63, 64 };

/* From the smallest size that works up to 1 TiB, every size works and its
 * layout holds; every smaller size is -ENOSPC. */
START_TEST(test_layout_sizes)
{
	const uint32_t alignment = _i ? (uint32_t)MiB : 4096;

	for (size_t c = 0; c < sizeof(cluster_sizes) / sizeof(cluster_sizes[0]); c++) {
		for (size_t n = 0; n < sizeof(node_counts) / sizeof(node_counts[0]); n++) {
			const uint32_t cs = cluster_sizes[c], nodes = node_counts[n];
			struct csv_geometry g;
			uint64_t size;
			int r;

			/* Cluster by cluster up to the first size that works. */
			for (size = 0;; size += cs) {
				r = geometry_layout(size, cs, nodes, alignment, 0, &g);
				if (r == 0)
					break;
				REQUIRE(r == -ENOSPC, "size %" PRIu64 " cluster %u nodes %u: %d", size, cs, nodes, r);
				/* Below the size of one cluster too. */
				r = geometry_layout(size + cs - 1, cs, nodes, alignment, 0, &g);
				REQUIRE(r == -ENOSPC, "size %" PRIu64 " cluster %u nodes %u: %d", size + cs - 1, cs, nodes, r);
				REQUIRE(size < 64 * MiB, "cluster %u nodes %u: no size up to 64 MiB works", cs, nodes);
			}
			const uint64_t min = size;
			REQUIRE(min >= 64 * CSV_BLOCK_SIZE, "cluster %u nodes %u: a volume of %" PRIu64 " bytes",
				cs, nodes, min);
			/* Densely above the minimum, then growing to 1 TiB. */
			for (uint64_t s = min; s < min + 256 * (uint64_t)cs; s += cs + (rng() % 3 ? 0 : rng() % cs)) {
				r = geometry_layout(s, cs, nodes, alignment, 0, &g);
				REQUIRE(r == 0, "size %" PRIu64 " (minimum %" PRIu64 ") cluster %u nodes %u: %d",
					s, min, cs, nodes, r);
				check_layout(&g, s, cs, nodes, alignment);
			}
			for (uint64_t s = min; s <= TiB; s += s / 7 + rng() % (s / 3 + 1)) {
				r = geometry_layout(s, cs, nodes, alignment, 0, &g);
				REQUIRE(r == 0, "size %" PRIu64 " cluster %u nodes %u: %d", s, cs, nodes, r);
				check_layout(&g, s, cs, nodes, alignment);
			}
			r = geometry_layout(TiB, cs, nodes, alignment, 0, &g);
			REQUIRE(r == 0, "1 TiB cluster %u nodes %u: %d", cs, nodes, r);
			check_layout(&g, TiB, cs, nodes, alignment);
		}
	}
}
END_TEST

START_TEST(test_layout_all_node_counts)
{
	for (uint32_t nodes = 1; nodes <= CSV_MAX_NODES_LIMIT; nodes++) {
		for (size_t c = 0; c < sizeof(cluster_sizes) / sizeof(cluster_sizes[0]); c++) {
			const uint64_t sizes[] = { 64 * MiB, 10 * GiB + 12345, 3 * TiB / 4 };
			for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
				struct csv_geometry g;
				int r = geometry_layout(sizes[i], cluster_sizes[c], nodes, 4096, 0, &g);
				REQUIRE(r == 0, "size %" PRIu64 " cluster %u nodes %u: %d", sizes[i], cluster_sizes[c], nodes, r);
				check_layout(&g, sizes[i], cluster_sizes[c], nodes, 4096);
			}
		}
	}
}
END_TEST

/* A 1 MiB optimal I/O size aligns the data area on 1 MiB; sizes that are
 * not a multiple of the cluster size, or alignments that are no multiple
 * of it, still give cluster-aligned layouts. */
START_TEST(test_layout_alignment)
{
	const uint32_t aligns[] = { 512, 4096, 6144, 65536, 128 * 1024, 1 << 20, 4 << 20, 16 << 20 };

	for (size_t a = 0; a < sizeof(aligns) / sizeof(aligns[0]); a++) {
		for (size_t c = 0; c < sizeof(cluster_sizes) / sizeof(cluster_sizes[0]); c++) {
			for (int k = 0; k < 20; k++) {
				uint64_t size = 256 * MiB + (rng() % (64 * GiB));
				struct csv_geometry g;
				ck_assert_int_eq(geometry_layout(size, cluster_sizes[c], 8, aligns[a], 0, &g), 0);
				check_layout(&g, size, cluster_sizes[c], 8, aligns[a]);
			}
		}
	}
	/* 1 MiB, the common case, checked on its own terms. */
	struct csv_geometry g;
	for (size_t c = 0; c < sizeof(cluster_sizes) / sizeof(cluster_sizes[0]); c++) {
		ck_assert_int_eq(geometry_layout(10 * GiB, cluster_sizes[c], 16, 1 << 20, 0, &g), 0);
		ck_assert_uint_eq(g.data_lcn * g.cluster_size % MiB, 0);
		ck_assert_uint_eq(g.mft_block * CSV_BLOCK_SIZE % MiB, 0);
	}
}
END_TEST

START_TEST(test_layout_journal_size)
{
	struct csv_geometry g;

	ck_assert_int_eq(geometry_layout(10 * GiB, 4096, 4, 4096, 8 * MiB, &g), 0);
	ck_assert_uint_eq(g.journal_blocks, 8 * MiB / CSV_BLOCK_SIZE);
	check_layout(&g, 10 * GiB, 4096, 4, 4096);
	/* A tiny journal is raised to the minimum. */
	ck_assert_int_eq(geometry_layout(10 * GiB, 4096, 4, 4096, 4096, &g), 0);
	ck_assert_uint_ge(g.journal_blocks, 64);
	check_layout(&g, 10 * GiB, 4096, 4, 4096);
	/* A journal larger than the volume does not fit. */
	ck_assert_int_eq(geometry_layout(64 * MiB, 4096, 4, 4096, 128 * MiB, &g), -ENOSPC);
}
END_TEST

START_TEST(test_layout_invalid)
{
	struct csv_geometry g, before;
	memset(&g, 0xa5, sizeof(g));
	before = g;

	const uint32_t bad_cs[] = { 0, 512, 2048, 3000, 4097, 6144, 65535, 131072, 1u << 31 };
	for (size_t i = 0; i < sizeof(bad_cs) / sizeof(bad_cs[0]); i++)
		ck_assert_msg(geometry_layout(10 * GiB, bad_cs[i], 4, 4096, 0, &g) == -EINVAL,
			      "cluster size %u accepted", bad_cs[i]);
	ck_assert_int_eq(geometry_layout(10 * GiB, 4096, 0, 4096, 0, &g), -EINVAL);
	ck_assert_int_eq(geometry_layout(10 * GiB, 4096, CSV_MAX_NODES_LIMIT + 1, 4096, 0, &g), -EINVAL);
	ck_assert_int_eq(geometry_layout(10 * GiB, 4096, UINT32_MAX, 4096, 0, &g), -EINVAL);

	/* Too small. */
	const uint64_t small[] = { 0, 1, 4095, 4096, 64 * CSV_BLOCK_SIZE - 1, 64 * CSV_BLOCK_SIZE, 1 * MiB };
	for (size_t i = 0; i < sizeof(small) / sizeof(small[0]); i++)
		for (size_t c = 0; c < sizeof(cluster_sizes) / sizeof(cluster_sizes[0]); c++)
			ck_assert_msg(geometry_layout(small[i], cluster_sizes[c], 1, 4096, 0, &g) == -ENOSPC,
				      "%" PRIu64 " bytes with cluster %u accepted", small[i], cluster_sizes[c]);
	/* The result is set only on success. */
	ck_assert(memcmp(&g, &before, sizeof(g)) == 0);
}
END_TEST

/* ---- Header encode / decode -------------------------------------------- */

static void test_geometry(uint64_t size, uint32_t cs, uint32_t nodes, struct csv_geometry *g)
{
	ck_assert_int_eq(geometry_layout(size, cs, nodes, 4096, 0, g), 0);
	memcpy(g->uuid, test_uuid, 16);
	snprintf(g->label, sizeof(g->label), "shared-lun-%u", cs);
	g->mkfs_time_ns = 1700000000123456789ull;
	g->check_time_ns = 1700000999000000000ull;
}

START_TEST(test_header_round_trip)
{
	struct csv_geometry g, d;
	uint8_t hdr[CSV_BLOCK_SIZE];
	char err[256] = "";
	const uint64_t size = 3 * GiB + 7 * 4096 + 100;

	test_geometry(size, cluster_sizes[_i], 12, &g);
	header_encode(&g, 0, hdr);
	ck_assert_int_eq(header_decode(hdr, 0, size, &d, err, sizeof(err)), 0);
	require_geometry_eq(&d, &g, "primary");
	ck_assert_int_eq(meta_verify(hdr, sizeof(hdr), CSV_MAGIC_HEADER, 0, test_uuid, NULL), 0);

	header_encode(&g, g.backup_header_block, hdr);
	ck_assert_int_eq(header_decode(hdr, g.backup_header_block, size, &d, err, sizeof(err)), 0);
	require_geometry_eq(&d, &g, "backup");

	/* A label of the full 64 bytes has no NUL on disk and gets one back. */
	memset(g.label, 'L', CSV_LABEL_MAX);
	g.label[CSV_LABEL_MAX] = '\0';
	header_encode(&g, 0, hdr);
	ck_assert_int_eq(header_decode(hdr, 0, size, &d, err, sizeof(err)), 0);
	ck_assert_uint_eq(strlen(d.label), CSV_LABEL_MAX);
	require_geometry_eq(&d, &g, "long label");

	/* Another state, a minor version and features a reader may not know
	 * but may still read (compat, ro_compat) all survive. */
	g.state = CSV_STATE_ERRORS;
	g.version_minor = 7;
	g.feature_compat = 1ull << 63;
	g.feature_ro_compat = 1ull << 5;
	g.label[0] = '\0';
	header_encode(&g, 0, hdr);
	ck_assert_int_eq(header_decode(hdr, 0, size, &d, err, sizeof(err)), 0);
	require_geometry_eq(&d, &g, "features");
	/* Without a device size, or an err buffer. */
	ck_assert_int_eq(header_decode(hdr, 0, 0, &d, NULL, 0), 0);
}
END_TEST

/* Encodes g at blocknr and expects header_decode to refuse it with code
 * and a sentence naming each of words. */
static void expect_refused(const struct csv_geometry *g, uint64_t blocknr, uint64_t dev_size, int code,
			   const char *const *words)
{
	uint8_t hdr[CSV_BLOCK_SIZE];
	struct csv_geometry d, before;
	char err[256];

	memset(&d, 0x5c, sizeof(d));
	before = d;
	memset(err, 0, sizeof(err));
	header_encode(g, blocknr, hdr);
	int r = header_decode(hdr, blocknr, dev_size, &d, err, sizeof(err));
	ck_assert_msg(r == code, "decode gave %d, expected %d (err \"%s\")", r, code, err);
	ck_assert_msg(strlen(err) > 10, "no sentence in err: \"%s\"", err);
	for (size_t i = 0; words[i]; i++)
		ck_assert_msg(strstr(err, words[i]), "err \"%s\" does not name \"%s\"", err, words[i]);
	ck_assert_msg(memcmp(&d, &before, sizeof(d)) == 0, "a refused header changed the result");
	/* A short buffer gets a cut sentence, never an overflow (ASan). */
	char tiny[8];
	memset(tiny, 'x', sizeof(tiny));
	ck_assert_int_eq(header_decode(hdr, blocknr, dev_size, &d, tiny, 5), code);
	ck_assert_uint_le(strlen(tiny), 4);
	ck_assert_int_eq(tiny[5], 'x');
	ck_assert_int_eq(header_decode(hdr, blocknr, dev_size, &d, NULL, 0), code);
}

#define WORDS(...) ((const char *const[]){ __VA_ARGS__, NULL })

START_TEST(test_header_rejects_version)
{
	struct csv_geometry g;
	test_geometry(1 * GiB, 4096, 4, &g);
	g.version_major = CSV_VERSION_MAJOR + 1;
	expect_refused(&g, 0, 1 * GiB, -EPROTONOSUPPORT, WORDS("version", "2.0"));
	g.version_major = 0;
	expect_refused(&g, 0, 1 * GiB, -EPROTONOSUPPORT, WORDS("version"));
}
END_TEST

START_TEST(test_header_rejects_incompat)
{
	struct csv_geometry g;
	test_geometry(1 * GiB, 4096, 4, &g);
	for (int bit = 0; bit < 64; bit += 9) {
		g.feature_incompat = 1ull << bit;
		char hex[32];
		snprintf(hex, sizeof(hex), "0x%" PRIx64, g.feature_incompat);
		expect_refused(&g, 0, 1 * GiB, -EPROTONOSUPPORT, WORDS("incompat", hex));
	}
}
END_TEST

START_TEST(test_header_rejects_cluster_size)
{
	struct csv_geometry g;
	const uint32_t bad[] = { 0, 2048, 3000, 12288, 131072 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		test_geometry(1 * GiB, 4096, 4, &g);
		g.cluster_size = bad[i];
		expect_refused(&g, 0, 1 * GiB, -EUCLEAN, WORDS("cluster size"));
	}
}
END_TEST

START_TEST(test_header_rejects_overlap)
{
	struct csv_geometry g;

	/* The journal starting inside the cluster area. */
	test_geometry(1 * GiB, 4096, 4, &g);
	g.journal_block = g.cluster_area_block + 1;
	expect_refused(&g, 0, 1 * GiB, -EUCLEAN, WORDS("journal", "overlap"));
	/* The cluster bitmap inside the journal. */
	test_geometry(1 * GiB, 4096, 4, &g);
	g.cbitmap_block = g.journal_block + g.journal_blocks - 1;
	expect_refused(&g, 0, 1 * GiB, -EUCLEAN, WORDS("bitmap", "overlap"));
	/* The record bitmap before the cluster bitmap (out of order). */
	test_geometry(1 * GiB, 4096, 4, &g);
	uint64_t t = g.rbitmap_block;
	g.rbitmap_block = g.cbitmap_block;
	g.cbitmap_block = t;
	expect_refused(&g, 0, 1 * GiB, -EUCLEAN, WORDS("bitmap", "overlap"));
	/* The MFT mirror in the data area. */
	test_geometry(1 * GiB, 4096, 4, &g);
	g.mft_mirror_block = g.data_lcn * g.blocks_per_cluster;
	expect_refused(&g, 0, 1 * GiB, -EUCLEAN, WORDS("MFT mirror"));
	/* The cluster area over the header block. */
	test_geometry(1 * GiB, 4096, 4, &g);
	g.cluster_area_block = 0;
	expect_refused(&g, 0, 1 * GiB, -EUCLEAN, WORDS("cluster area"));
	/* A journal so long that it wraps around. */
	test_geometry(1 * GiB, 4096, 4, &g);
	g.journal_blocks = UINT64_MAX - 10;
	expect_refused(&g, 0, 1 * GiB, -EUCLEAN, WORDS("journal"));
}
END_TEST

START_TEST(test_header_rejects_backup_not_last)
{
	struct csv_geometry g;
	test_geometry(1 * GiB, 4096, 4, &g);
	g.backup_header_block = g.total_blocks - 2;
	expect_refused(&g, 0, 1 * GiB, -EUCLEAN, WORDS("backup"));
	g.backup_header_block = g.total_blocks;
	expect_refused(&g, 0, 1 * GiB, -EUCLEAN, WORDS("backup"));
}
END_TEST

START_TEST(test_header_rejects_small_device)
{
	struct csv_geometry g;
	test_geometry(1 * GiB, cluster_sizes[_i], 4, &g);
	const uint64_t vol = g.total_blocks * CSV_BLOCK_SIZE;
	expect_refused(&g, 0, vol - 1, -EUCLEAN, WORDS("device"));
	expect_refused(&g, 0, vol / 2, -EUCLEAN, WORDS("device"));
	/* Exactly the volume, or more, is fine. */
	uint8_t hdr[CSV_BLOCK_SIZE];
	struct csv_geometry d;
	header_encode(&g, 0, hdr);
	ck_assert_int_eq(header_decode(hdr, 0, vol, &d, NULL, 0), 0);
	ck_assert_int_eq(header_decode(hdr, 0, vol + 12345, &d, NULL, 0), 0);
}
END_TEST

/* A header whose MFT zone starts beyond the volume is refused (the size
 * check must not wrap around). */
START_TEST(test_header_rejects_mft_zone_outside)
{
	struct csv_geometry g;
	test_geometry(1 * GiB, 4096, 4, &g);
	g.mft_zone_lcn = g.total_clusters + 100;
	g.mft_zone_clusters = 64;
	expect_refused(&g, 0, 1 * GiB, -EUCLEAN, WORDS("MFT zone"));
}
END_TEST

/* Damage and misplacement, as meta_verify reports them, in a sentence. */
START_TEST(test_header_rejects_damage)
{
	struct csv_geometry g, d;
	uint8_t hdr[CSV_BLOCK_SIZE];
	char err[256];

	test_geometry(1 * GiB, 4096, 4, &g);
	header_encode(&g, 0, hdr);
	hdr[0x100] ^= 1;
	ck_assert_int_eq(header_decode(hdr, 0, 1 * GiB, &d, err, sizeof(err)), -EBADMSG);
	ck_assert_msg(strstr(err, "checksum"), "err: %s", err);
	memset(hdr, 0, sizeof(hdr));
	ck_assert_int_eq(header_decode(hdr, 0, 1 * GiB, &d, err, sizeof(err)), -EBADMSG);
	ck_assert_msg(strstr(err, "block 0"), "err: %s", err);
	/* The backup's image read at block 0: a misdirected write. */
	header_encode(&g, g.backup_header_block, hdr);
	ck_assert_int_eq(header_decode(hdr, 0, 1 * GiB, &d, err, sizeof(err)), -EUCLEAN);
	ck_assert_msg(strstr(err, "misdirected"), "err: %s", err);
	/* A valid block that is no header. */
	header_encode(&g, 0, hdr);
	meta_seal(hdr, sizeof(hdr), CSV_MAGIC_RECORD, 0, test_uuid, 0);
	ck_assert_int_eq(header_decode(hdr, 0, 1 * GiB, &d, err, sizeof(err)), -EUCLEAN);
	ck_assert_msg(strstr(err, "magic"), "err: %s", err);
}
END_TEST

/* ---- Opening a volume ------------------------------------------------------- */

/* A memory device of dev_size holding the headers of a volume of vol_size. */
static struct csv_blockdev *make_volume(uint64_t vol_size, uint64_t dev_size, uint32_t cs, uint32_t nodes,
					struct csv_geometry *g)
{
	struct csv_blockdev *bd;
	uint8_t hdr[CSV_BLOCK_SIZE];

	ck_assert_int_eq(blockdev_open_mem(dev_size, false, &bd), 0);
	test_geometry(vol_size, cs, nodes, g);
	header_encode(g, 0, hdr);
	ck_assert_int_eq(blockdev_pwrite(bd, hdr, sizeof(hdr), 0), 0);
	header_encode(g, g->backup_header_block, hdr);
	ck_assert_int_eq(blockdev_pwrite(bd, hdr, sizeof(hdr), g->backup_header_block * CSV_BLOCK_SIZE), 0);
	return bd;
}

static void smash_block(struct csv_blockdev *bd, uint64_t blocknr, uint8_t fill)
{
	uint8_t b[CSV_BLOCK_SIZE];
	memset(b, fill, sizeof(b));
	ck_assert_int_eq(blockdev_pwrite(bd, b, sizeof(b), blocknr * CSV_BLOCK_SIZE), 0);
}

/* Sizes that are no multiple of the cluster size, so that the backup is
 * not simply the device's last block for every cluster size. */
static uint64_t odd_size(uint32_t cs)
{
	return 48 * MiB + 3 * (uint64_t)cs + 4096 + 1000;
}

START_TEST(test_open_valid)
{
	const uint32_t cs = cluster_sizes[_i];
	const uint64_t size = odd_size(cs);
	struct csv_geometry g;
	struct csv_blockdev *bd = make_volume(size, size, cs, 6, &g);
	struct csv_volume *v;
	char err[256] = "";

	ck_assert_msg(volume_open_bdev(bd, &v, err, sizeof(err)) == 0, "open: %s", err);
	ck_assert_ptr_eq(v->bd, bd);
	require_geometry_eq(&v->g, &g, "opened");
	ck_assert(!v->primary_header_bad);
	ck_assert(!v->backup_header_bad);
	volume_close(v);
	/* The device belongs to the caller: still open (ASan would see a
	 * use after free). */
	uint8_t b[16];
	ck_assert_int_eq(blockdev_pread(bd, b, sizeof(b), 0), 0);
	blockdev_close(bd);
}
END_TEST

START_TEST(test_open_from_backup)
{
	const uint32_t cs = cluster_sizes[_i];
	const uint64_t size = odd_size(cs);
	struct csv_geometry g;
	struct csv_volume *v;
	char err[256] = "";
	const uint8_t fills[] = { 0x00, 0xff, 0x42 };

	for (size_t i = 0; i < sizeof(fills); i++) {
		struct csv_blockdev *bd = make_volume(size, size, cs, 6, &g);
		smash_block(bd, 0, fills[i]);
		ck_assert_msg(volume_open_bdev(bd, &v, err, sizeof(err)) == 0, "open with block 0 = 0x%02x: %s",
			      fills[i], err);
		ck_assert(v->primary_header_bad);
		ck_assert(!v->backup_header_bad);
		require_geometry_eq(&v->g, &g, "from backup");
		volume_close(v);
		blockdev_close(bd);
	}

	/* A primary that decodes but is inconsistent counts as damaged too. */
	struct csv_blockdev *bd = make_volume(size, size, cs, 6, &g);
	struct csv_geometry bad = g;
	uint8_t hdr[CSV_BLOCK_SIZE];
	bad.journal_block = bad.cluster_area_block;
	header_encode(&bad, 0, hdr);
	ck_assert_int_eq(blockdev_pwrite(bd, hdr, sizeof(hdr), 0), 0);
	ck_assert_msg(volume_open_bdev(bd, &v, err, sizeof(err)) == 0, "open: %s", err);
	ck_assert(v->primary_header_bad);
	require_geometry_eq(&v->g, &g, "from backup after a bad primary");
	volume_close(v);
	blockdev_close(bd);
}
END_TEST

START_TEST(test_open_backup_bad)
{
	const uint32_t cs = cluster_sizes[_i];
	const uint64_t size = odd_size(cs);
	struct csv_geometry g;
	struct csv_volume *v;
	char err[256] = "";

	/* Destroyed. */
	struct csv_blockdev *bd = make_volume(size, size, cs, 6, &g);
	smash_block(bd, g.backup_header_block, 0);
	ck_assert_msg(volume_open_bdev(bd, &v, err, sizeof(err)) == 0, "open: %s", err);
	ck_assert(!v->primary_header_bad);
	ck_assert(v->backup_header_bad);
	require_geometry_eq(&v->g, &g, "without backup");
	volume_close(v);
	blockdev_close(bd);

	/* A valid header of another volume. */
	bd = make_volume(size, size, cs, 6, &g);
	struct csv_geometry other = g;
	uint8_t hdr[CSV_BLOCK_SIZE];
	other.uuid[15] ^= 1;
	header_encode(&other, g.backup_header_block, hdr);
	ck_assert_int_eq(blockdev_pwrite(bd, hdr, sizeof(hdr), g.backup_header_block * CSV_BLOCK_SIZE), 0);
	ck_assert_int_eq(volume_open_bdev(bd, &v, err, sizeof(err)), 0);
	ck_assert(v->backup_header_bad);
	require_geometry_eq(&v->g, &g, "foreign backup");
	volume_close(v);
	blockdev_close(bd);
}
END_TEST

START_TEST(test_open_both_bad)
{
	const uint32_t cs = cluster_sizes[_i];
	const uint64_t size = odd_size(cs);
	struct csv_geometry g;
	struct csv_volume *v = (struct csv_volume *)(uintptr_t)0x5a5a5a5a;
	char err[256] = "";

	struct csv_blockdev *bd = make_volume(size, size, cs, 6, &g);
	smash_block(bd, 0, 0);
	smash_block(bd, g.backup_header_block, 0x33);
	int r = volume_open_bdev(bd, &v, err, sizeof(err));
	ck_assert_msg(r == -EBADMSG || r == -EUCLEAN, "open gave %d", r);
	ck_assert_ptr_eq(v, (struct csv_volume *)(uintptr_t)0x5a5a5a5a);
	ck_assert_msg(strstr(err, "block 0") && strstr(err, "backup"), "err: %s", err);
	/* No err buffer: still refused, no crash. */
	ck_assert_int_eq(volume_open_bdev(bd, &v, NULL, 0), r);
	blockdev_close(bd);

	/* A blank device is no volume. */
	ck_assert_int_eq(blockdev_open_mem(size, false, &bd), 0);
	r = volume_open_bdev(bd, &v, err, sizeof(err));
	ck_assert_int_lt(r, 0);
	ck_assert_msg(strstr(err, "never written") || strstr(err, "zero"), "err: %s", err);
	blockdev_close(bd);
}
END_TEST

/* An unsupported version is not damage: no fallback to the backup. */
START_TEST(test_open_unsupported)
{
	const uint64_t size = 64 * MiB;
	struct csv_geometry g;
	struct csv_volume *v;
	char err[256] = "";
	uint8_t hdr[CSV_BLOCK_SIZE];

	struct csv_blockdev *bd = make_volume(size, size, 4096, 4, &g);
	struct csv_geometry newer = g;
	newer.feature_incompat = 1ull << 3;
	header_encode(&newer, 0, hdr);
	ck_assert_int_eq(blockdev_pwrite(bd, hdr, sizeof(hdr), 0), 0);
	ck_assert_int_eq(volume_open_bdev(bd, &v, err, sizeof(err)), -EPROTONOSUPPORT);
	ck_assert_msg(strstr(err, "incompat"), "err: %s", err);

	newer = g;
	newer.version_major = 2;
	header_encode(&newer, 0, hdr);
	ck_assert_int_eq(blockdev_pwrite(bd, hdr, sizeof(hdr), 0), 0);
	ck_assert_int_eq(volume_open_bdev(bd, &v, err, sizeof(err)), -EPROTONOSUPPORT);
	ck_assert_msg(strstr(err, "version"), "err: %s", err);
	blockdev_close(bd);
}
END_TEST

START_TEST(test_open_too_small)
{
	struct csv_blockdev *bd;
	struct csv_volume *v;
	char err[256] = "";

	ck_assert_int_eq(blockdev_open_mem(63 * CSV_BLOCK_SIZE, false, &bd), 0);
	ck_assert_int_lt(volume_open_bdev(bd, &v, err, sizeof(err)), 0);
	ck_assert_msg(strstr(err, "too small"), "err: %s", err);
	blockdev_close(bd);

	/* A volume on a device that has since shrunk. */
	struct csv_geometry g;
	uint8_t *img = malloc(64 * MiB);
	ck_assert_ptr_nonnull(img);
	bd = make_volume(64 * MiB, 64 * MiB, 4096, 4, &g);
	ck_assert_int_eq(blockdev_pread(bd, img, 64 * MiB, 0), 0);
	blockdev_close(bd);
	ck_assert_int_eq(blockdev_open_mem_from(img, 32 * MiB, &bd), 0);
	ck_assert_int_lt(volume_open_bdev(bd, &v, err, sizeof(err)), 0);
	ck_assert_msg(strstr(err, "device"), "err: %s", err);
	blockdev_close(bd);
	free(img);
}
END_TEST

START_TEST(test_open_path)
{
	char dir[] = "/tmp/test-volume-XXXXXX", path[64], err[256] = "";
	struct csv_geometry g;
	struct csv_volume *v;
	const uint64_t size = 64 * MiB;
	uint8_t *img = malloc(size);

	ck_assert_ptr_nonnull(img);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/lun.img", dir);
	struct csv_blockdev *bd = make_volume(size, size, 8192, 2, &g);
	ck_assert_int_eq(blockdev_pread(bd, img, size, 0), 0);
	blockdev_close(bd);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, img, size), (ssize_t)size);
	close(fd);
	free(img);

	ck_assert_msg(volume_open(path, CSV_BDEV_RDONLY, &v, err, sizeof(err)) == 0, "open: %s", err);
	require_geometry_eq(&v->g, &g, "by path");
	volume_close(v); /* closes the device it opened (ASan: no leak) */

	unlink(path);
	ck_assert_int_eq(volume_open(path, 0, &v, err, sizeof(err)), -ENOENT);
	ck_assert_msg(strstr(err, path), "err: %s", err);
	rmdir(dir);
}
END_TEST

/* ---- Metadata block I/O ---------------------------------------------------- */

START_TEST(test_meta_round_trip)
{
	const uint32_t cs = cluster_sizes[_i];
	const uint64_t size = 64 * MiB;
	struct csv_geometry g;
	struct csv_volume *v;
	struct csv_blockdev *bd = make_volume(size, size, cs, 4, &g);
	const uint32_t n = g.blocks_per_cluster;
	uint8_t *buf = malloc(cs), *got = malloc(cs), *disk = malloc(cs);

	ck_assert(buf && got && disk);
	ck_assert_int_eq(volume_open_bdev(bd, &v, NULL, 0), 0);
	const uint64_t b = lcn_to_block(&g, g.data_lcn + 5);
	for (uint32_t i = 0; i < cs; i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	ck_assert_int_eq(volume_write_meta(v, b, n, CSV_MAGIC_INDEX, 99, buf), 0);

	/* On the device, at the block's address, sealed for this volume. */
	ck_assert_int_eq(blockdev_pread(bd, disk, cs, b * CSV_BLOCK_SIZE), 0);
	ck_assert(memcmp(disk, buf, cs) == 0);
	const struct csv_d_blkhdr *h = (const void *)disk;
	ck_assert_uint_eq(le32_to_cpu(h->magic), CSV_MAGIC_INDEX);
	ck_assert_uint_eq(le64_to_cpu(h->blocknr), b);
	ck_assert_uint_eq(le64_to_cpu(h->lsn), 99);
	ck_assert_mem_eq(h->uuid, test_uuid, 16);
	ck_assert_int_eq(meta_verify(disk, cs, CSV_MAGIC_INDEX, b, test_uuid, NULL), 0);

	memset(got, 0, cs);
	ck_assert_int_eq(volume_read_meta(v, b, n, CSV_MAGIC_INDEX, got), 0);
	ck_assert(memcmp(got, buf, cs) == 0);
	ck_assert_int_eq(volume_read_raw(v, b, n, got), 0);
	ck_assert(memcmp(got, buf, cs) == 0);

	/* Expected somewhere else, or as something else. */
	ck_assert_int_eq(volume_read_meta(v, b, n, CSV_MAGIC_EXTENT, got), -EUCLEAN);
	ck_assert_int_eq(volume_read_meta(v, b + n, n, CSV_MAGIC_INDEX, got), -EBADMSG); /* never written */
	/* The same image written raw one cluster further: misdirected. */
	ck_assert_int_eq(volume_write_raw(v, b + n, n, buf), 0);
	ck_assert_int_eq(volume_read_meta(v, b + n, n, CSV_MAGIC_INDEX, got), -EUCLEAN);
	/* Damaged on the device. */
	disk[cs - 1] ^= 0x20;
	ck_assert_int_eq(blockdev_pwrite(bd, disk, cs, b * CSV_BLOCK_SIZE), 0);
	ck_assert_int_eq(volume_read_meta(v, b, n, CSV_MAGIC_INDEX, got), -EBADMSG);
	/* A block of another volume. */
	meta_seal(buf, cs, CSV_MAGIC_INDEX, b, (const uint8_t[16]){ 1 }, 99);
	ck_assert_int_eq(volume_write_raw(v, b, n, buf), 0);
	ck_assert_int_eq(volume_read_meta(v, b, n, CSV_MAGIC_INDEX, got), -EUCLEAN);

	volume_close(v);
	blockdev_close(bd);
	free(buf);
	free(got);
	free(disk);
}
END_TEST

/* Transfers outside the volume are refused with -EUCLEAN, even where the
 * device is larger than the volume, and change nothing. */
START_TEST(test_meta_range)
{
	const uint64_t vol = 64 * MiB, dev = vol + 1 * MiB;
	struct csv_geometry g;
	struct csv_volume *v;
	struct csv_blockdev *bd = make_volume(vol, dev, 4096, 4, &g);
	uint8_t *before = malloc(dev), *after = malloc(dev), buf[2 * CSV_BLOCK_SIZE];

	ck_assert(before && after);
	ck_assert_int_eq(volume_open_bdev(bd, &v, NULL, 0), 0);
	ck_assert_int_eq(blockdev_pread(bd, before, dev, 0), 0);
	memset(buf, 0xab, sizeof(buf));

	const struct { uint64_t b; uint32_t n; } bad[] = {
		{ g.total_blocks, 1 },
		{ g.total_blocks - 1, 2 },
		{ g.total_blocks + 10, 1 },
		{ UINT64_MAX, 1 },
		{ UINT64_MAX / CSV_BLOCK_SIZE + 1, 1 }, /* byte offset wraps */
		{ 1, UINT32_MAX },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* write_meta seals the whole buffer before it writes, so it
		 * needs one of nblocks blocks even for a refused write. */
		if (bad[i].n * (uint64_t)CSV_BLOCK_SIZE <= sizeof(buf))
			ck_assert_msg(volume_write_meta(v, bad[i].b, bad[i].n, CSV_MAGIC_RECORD, 1, buf) == -EUCLEAN,
				      "write_meta at %" PRIu64 " +%u", bad[i].b, bad[i].n);
		ck_assert_msg(volume_write_raw(v, bad[i].b, bad[i].n, buf) == -EUCLEAN,
			      "write_raw at %" PRIu64 " +%u", bad[i].b, bad[i].n);
		ck_assert_msg(volume_read_meta(v, bad[i].b, bad[i].n, CSV_MAGIC_RECORD, buf) == -EUCLEAN,
			      "read_meta at %" PRIu64 " +%u", bad[i].b, bad[i].n);
		ck_assert_msg(volume_read_raw(v, bad[i].b, bad[i].n, buf) == -EUCLEAN,
			      "read_raw at %" PRIu64 " +%u", bad[i].b, bad[i].n);
	}
	ck_assert_int_eq(blockdev_pread(bd, after, dev, 0), 0);
	ck_assert_msg(memcmp(before, after, dev) == 0, "a refused write changed the device");

	/* The last block of the volume is inside. */
	ck_assert_int_eq(volume_read_raw(v, g.total_blocks - 1, 1, buf), 0);
	ck_assert_int_eq(volume_read_meta(v, g.backup_header_block, 1, CSV_MAGIC_HEADER, buf), 0);
	volume_close(v);
	blockdev_close(bd);
	free(before);
	free(after);
}
END_TEST

START_TEST(test_uuid_format)
{
	char out[37];
	uuid_format(test_uuid, out);
	ck_assert_str_eq(out, "c57f5a10-8e2b-4f61-a033-1d42900b7e25");
}
END_TEST

static Suite *volume_suite(void)
{
	Suite *s = suite_create("volume");
	TCase *tc;
	const int ncs = (int)(sizeof(cluster_sizes) / sizeof(cluster_sizes[0]));

	tc = tcase_create("layout");
	tcase_add_loop_test(tc, test_layout_sizes, 0, 2); /* 4 KiB, then 1 MiB alignment */
	tcase_add_test(tc, test_layout_all_node_counts);
	tcase_add_test(tc, test_layout_alignment);
	tcase_add_test(tc, test_layout_journal_size);
	tcase_add_test(tc, test_layout_invalid);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);

	tc = tcase_create("header");
	tcase_add_loop_test(tc, test_header_round_trip, 0, ncs);
	tcase_add_test(tc, test_header_rejects_version);
	tcase_add_test(tc, test_header_rejects_incompat);
	tcase_add_test(tc, test_header_rejects_cluster_size);
	tcase_add_test(tc, test_header_rejects_overlap);
	tcase_add_test(tc, test_header_rejects_backup_not_last);
	tcase_add_loop_test(tc, test_header_rejects_small_device, 0, ncs);
	tcase_add_test(tc, test_header_rejects_mft_zone_outside);
	tcase_add_test(tc, test_header_rejects_damage);
	tcase_add_test(tc, test_uuid_format);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("open");
	tcase_add_loop_test(tc, test_open_valid, 0, ncs);
	tcase_add_loop_test(tc, test_open_from_backup, 0, ncs);
	tcase_add_loop_test(tc, test_open_backup_bad, 0, ncs);
	tcase_add_loop_test(tc, test_open_both_bad, 0, ncs);
	tcase_add_test(tc, test_open_unsupported);
	tcase_add_test(tc, test_open_too_small);
	tcase_add_test(tc, test_open_path);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_create("meta io");
	tcase_add_loop_test(tc, test_meta_round_trip, 0, ncs);
	tcase_add_test(tc, test_meta_range);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(volume_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
