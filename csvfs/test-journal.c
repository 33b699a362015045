/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The journal on a memory device with a volatile cache: commit, replay,
 * checkpoint, the circular log, damage, crashes and group commit. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "journal.h"
#include "meta.h"
#include "util.h"

#define BS CSV_BLOCK_SIZE
#define TEST_MAGIC CSV_MAGIC('T', 'S', 'T', 'B')
#define MIB (1024ull * 1024ull)

/* ---- Fixture ---------------------------------------------------------- */

struct fx {
	struct csv_blockdev *bd;
	struct csv_volume *v;
	struct csv_journal *j;
	struct csv_geometry g;
	uint64_t home;       /* first block of the data area */
	uint64_t log_start;  /* absolute block of log offset 0 */
	uint64_t log_blocks;
	uint64_t size;
};

static void fx_open(struct fx *f)
{
	char err[256] = "";
	int r = volume_open_bdev(f->bd, &f->v, err, sizeof(err));
	ck_assert_msg(r == 0, "volume_open_bdev: %d %s", r, err);
	r = journal_open(f->v, &f->j);
	ck_assert_msg(r == 0, "journal_open: %d", r);
}

/* Closes journal and volume; neither writes anything. */
static void fx_close(struct fx *f)
{
	journal_close(f->j);
	f->j = NULL;
	volume_close(f->v);
	f->v = NULL;
}

static void fx_reopen(struct fx *f)
{
	fx_close(f);
	fx_open(f);
}

static void fx_format_on(struct fx *f, uint64_t journal_bytes)
{
	uint8_t buf[BS];
	ck_assert_int_eq(geometry_layout(f->size, 4096, 4, 4096, journal_bytes, &f->g), 0);
	for (int i = 0; i < 16; i++)
		f->g.uuid[i] = (uint8_t)(0x5a + 7 * i);
	header_encode(&f->g, 0, buf);
	ck_assert_int_eq(blockdev_pwrite(f->bd, buf, BS, 0), 0);
	header_encode(&f->g, f->g.backup_header_block, buf);
	ck_assert_int_eq(blockdev_pwrite(f->bd, buf, BS, f->g.backup_header_block * BS), 0);
	ck_assert_int_eq(blockdev_flush(f->bd), 0);
	char err[256] = "";
	ck_assert_int_eq(volume_open_bdev(f->bd, &f->v, err, sizeof(err)), 0);
	ck_assert_int_eq(journal_format(f->v), 0);
	ck_assert_int_eq(journal_open(f->v, &f->j), 0);
	f->home = f->g.data_lcn * f->g.blocks_per_cluster;
	f->log_start = f->g.journal_block + 1;
	f->log_blocks = f->g.journal_blocks - 1;
}

/* journal_bytes 0: the default (1 MiB for the sizes used here). */
static void fx_init(struct fx *f, uint64_t size, uint64_t journal_bytes)
{
	memset(f, 0, sizeof(*f));
	f->size = size;
	ck_assert_int_eq(blockdev_open_mem(size, true, &f->bd), 0);
	fx_format_on(f, journal_bytes);
}

static void fx_free(struct fx *f)
{
	fx_close(f);
	blockdev_close(f->bd);
}

/* ---- Images ------------------------------------------------------------ */

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* A made-up metadata block: a zero header (add seals it), then a pattern. */
static void fill_image(void *buf, uint32_t nblocks, uint64_t tag)
{
	uint64_t s = tag * 0x100000001b3ull + nblocks;
	uint8_t *p = buf;
	memset(p, 0, sizeof(struct csv_d_blkhdr));
	for (size_t off = sizeof(struct csv_d_blkhdr); off < (size_t)nblocks * BS; off += 8) {
		uint64_t x = splitmix(&s);
		memcpy(p + off, &x, 8);
	}
}

static uint8_t *new_image(uint32_t nblocks, uint64_t tag)
{
	uint8_t *p = malloc((size_t)nblocks * BS);
	ck_assert_ptr_nonnull(p);
	fill_image(p, nblocks, tag);
	return p;
}

static uint64_t hdr_lsn(const void *buf)
{
	return le64_to_cpu(((const struct csv_d_blkhdr *)buf)->lsn);
}

static void read_home(struct fx *f, uint64_t blocknr, uint32_t nblocks, void *buf)
{
	ck_assert_int_eq(volume_read_raw(f->v, blocknr, nblocks, buf), 0);
}

static bool home_equals(struct fx *f, uint64_t blocknr, uint32_t nblocks, const void *img)
{
	uint8_t *buf = malloc((size_t)nblocks * BS);
	read_home(f, blocknr, nblocks, buf);
	bool eq = memcmp(buf, img, (size_t)nblocks * BS) == 0;
	free(buf);
	return eq;
}

static bool home_is_zero(struct fx *f, uint64_t blocknr, uint32_t nblocks)
{
	uint8_t *buf = malloc((size_t)nblocks * BS);
	read_home(f, blocknr, nblocks, buf);
	bool z = true;
	for (size_t i = 0; i < (size_t)nblocks * BS; i++)
		if (buf[i])
			z = false;
	free(buf);
	return z;
}

/* What a reader of the volume sees: the journal's image, else home. */
static void read_view(struct fx *f, uint64_t blocknr, uint32_t nblocks, void *buf)
{
	int r = journal_lookup(f->j, blocknr, buf, nblocks);
	if (r == -ENOENT)
		read_home(f, blocknr, nblocks, buf);
	else
		ck_assert_int_eq(r, 0);
}

/* Commits one image; buf receives it as sealed. Returns the LSN. */
static uint64_t commit_one(struct fx *f, uint64_t blocknr, uint32_t nblocks, uint64_t tag, void *buf)
{
	struct csv_txn *t;
	ck_assert_int_eq(journal_txn_begin(f->j, &t), 0);
	uint64_t lsn = journal_txn_lsn(t);
	fill_image(buf, nblocks, tag);
	ck_assert_int_eq(journal_txn_add(t, blocknr, nblocks, TEST_MAGIC, buf), 0);
	ck_assert_int_eq(journal_txn_commit(t), 0);
	return lsn;
}

/* journal_scan into an array. */
struct scan_rec {
	uint64_t lsn, offset, time;
	uint32_t nimages, nblocks;
};
struct scan_list {
	struct scan_rec r[4096];
	size_t n;
	int stop_at;  /* return 7 on this call, -1 never */
};

static int scan_cb(void *ud, uint64_t lsn, uint64_t offset, uint32_t nimages, uint32_t nblocks,
		   uint64_t commit_time_ns)
{
	struct scan_list *l = ud;
	if (l->stop_at >= 0 && (size_t)l->stop_at == l->n)
		return 7;
	ck_assert_uint_lt(l->n, ARRAY_SIZE(l->r));
	l->r[l->n++] = (struct scan_rec){ lsn, offset, commit_time_ns, nimages, nblocks };
	return 0;
}

static struct scan_list *scan_all(struct fx *f)
{
	struct scan_list *l = calloc(1, sizeof(*l));
	l->stop_at = -1;
	ck_assert_int_eq(journal_scan(f->j, scan_cb, l), 0);
	return l;
}

static uint64_t txn_size(uint32_t nimages, uint32_t nblocks)
{
	return (nimages ? DIV_ROUND_UP(nimages, CSV_JOURNAL_TAGS) : 1) + nblocks + 1;
}

/* ---- Basics ------------------------------------------------------------ */

START_TEST(test_format_info)
{
	struct fx f;
	struct journal_info in;
	fx_init(&f, 64 * MIB, 0);

	journal_get_info(f.j, &in);
	ck_assert_uint_eq(in.head_lsn, 1);
	ck_assert_uint_eq(in.head_offset, 0);
	ck_assert_uint_eq(in.next_lsn, 1);
	ck_assert_uint_eq(in.tail_offset, 0);
	ck_assert_uint_eq(in.log_blocks, f.g.journal_blocks - 1);
	ck_assert_uint_eq(in.used_blocks, 0);
	ck_assert_uint_eq(in.pending_txns, 0);
	ck_assert(!journal_needs_replay(f.j));

	uint8_t sb[BS];
	read_home(&f, f.g.journal_block, 1, sb);
	ck_assert_int_eq(meta_verify(sb, BS, CSV_MAGIC_JSUPER, f.g.journal_block, f.g.uuid, NULL), 0);
	/* The log blocks were not touched. */
	ck_assert(home_is_zero(&f, f.log_start, 16));

	/* The first begin moves the LSNs past anything a crash could have left. */
	struct csv_txn *t;
	ck_assert_int_eq(journal_txn_begin(f.j, &t), 0);
	uint64_t lsn = journal_txn_lsn(t);
	ck_assert_uint_gt(lsn, 1);
	journal_get_info(f.j, &in);
	ck_assert_uint_eq(in.head_lsn, lsn);
	ck_assert_uint_eq(in.next_lsn, lsn);
	journal_txn_abort(t);

	/* A commit, once started, costs exactly one flush. */
	uint8_t *buf = malloc(BS);
	uint64_t flushes = blockdev_flush_count(f.bd);
	ck_assert_uint_eq(commit_one(&f, f.home, 1, 1, buf), lsn);
	ck_assert_uint_eq(blockdev_flush_count(f.bd), flushes + 1);
	ck_assert_uint_eq(blockdev_mem_pending(f.bd), 0);
	free(buf);
	fx_free(&f);
}
END_TEST

START_TEST(test_commit_replay)
{
	struct fx f;
	struct journal_info in;
	fx_init(&f, 64 * MIB, 0);
	uint64_t b1 = f.home, b2 = f.home + 16, b3 = f.home + 40;
	uint8_t *i1 = new_image(1, 11), *i2 = new_image(16, 12), *i3 = new_image(4, 13);

	struct csv_txn *t;
	ck_assert_int_eq(journal_txn_begin(f.j, &t), 0);
	uint64_t lsn = journal_txn_lsn(t);
	ck_assert_int_eq(journal_txn_add(t, b1, 1, TEST_MAGIC, i1), 0);
	ck_assert_int_eq(journal_txn_add(t, b2, 16, TEST_MAGIC, i2), 0);
	ck_assert_int_eq(journal_txn_add(t, b3, 4, TEST_MAGIC, i3), 0);
	/* add sealed the caller's buffers with the transaction's LSN. */
	ck_assert_int_eq(meta_verify(i2, 16 * BS, TEST_MAGIC, b2, f.g.uuid, NULL), 0);
	ck_assert_uint_eq(hdr_lsn(i2), lsn);
	ck_assert_int_eq(journal_txn_commit(t), 0);

	/* Committed means in the log, not yet home. */
	ck_assert(home_is_zero(&f, b1, 1));
	ck_assert(home_is_zero(&f, b2, 16));
	ck_assert(home_is_zero(&f, b3, 4));
	ck_assert(journal_needs_replay(f.j));

	/* Power cut, then mount. */
	blockdev_mem_crash(f.bd);
	fx_reopen(&f);
	ck_assert(journal_needs_replay(f.j));
	journal_get_info(f.j, &in);
	ck_assert_uint_eq(in.pending_txns, 1);
	ck_assert_uint_eq(in.head_lsn, lsn);
	ck_assert_uint_eq(in.next_lsn, lsn + 1);
	ck_assert_uint_eq(in.used_blocks, txn_size(3, 21));
	ck_assert_uint_eq(in.tail_offset, (in.head_offset + txn_size(3, 21)) % in.log_blocks);

	uint64_t txns = 99, blocks = 99;
	ck_assert_int_eq(journal_replay(f.j, &txns, &blocks), 0);
	ck_assert_uint_eq(txns, 1);
	ck_assert_uint_eq(blocks, 21);
	ck_assert(!journal_needs_replay(f.j));
	ck_assert(home_equals(&f, b1, 1, i1));
	ck_assert(home_equals(&f, b2, 16, i2));
	ck_assert(home_equals(&f, b3, 4, i3));
	/* Stamped with the transaction's LSN. */
	uint8_t *buf = malloc(16 * BS);
	read_home(&f, b2, 16, buf);
	ck_assert_uint_eq(hdr_lsn(buf), lsn);
	free(buf);
	journal_get_info(f.j, &in);
	ck_assert_uint_eq(in.head_lsn, lsn + 1);
	ck_assert_uint_eq(in.used_blocks, 0);

	/* The superblock advance is durable: nothing left after another cut. */
	blockdev_mem_crash(f.bd);
	fx_reopen(&f);
	ck_assert(!journal_needs_replay(f.j));
	ck_assert_int_eq(journal_replay(f.j, &txns, &blocks), 0);
	ck_assert_uint_eq(txns, 0);
	ck_assert_uint_eq(blocks, 0);
	ck_assert(home_equals(&f, b2, 16, i2));
	free(i1);
	free(i2);
	free(i3);
	fx_free(&f);
}
END_TEST

START_TEST(test_uncommitted_not_applied)
{
	struct fx f;
	fx_init(&f, 64 * MIB, 0);
	uint64_t a = f.home, b = f.home + 1, c = f.home + 2;
	uint8_t ia[BS], ib[BS], ib2[BS], ic[BS], tmp[BS];

	commit_one(&f, a, 1, 1, ia);

	/* Aborted: its images go nowhere. */
	struct csv_txn *t;
	ck_assert_int_eq(journal_txn_begin(f.j, &t), 0);
	fill_image(ib, 1, 2);
	fill_image(ib2, 1, 3);
	ck_assert_int_eq(journal_txn_add(t, b, 1, TEST_MAGIC, ib), 0);
	ck_assert_int_eq(journal_txn_add(t, a, 1, TEST_MAGIC, ib2), 0);
	journal_txn_abort(t);
	ck_assert_int_eq(journal_lookup(f.j, b, tmp, 1), -ENOENT);

	/* Open at the power cut: never committed. */
	ck_assert_int_eq(journal_txn_begin(f.j, &t), 0);
	fill_image(ic, 1, 4);
	ck_assert_int_eq(journal_txn_add(t, c, 1, TEST_MAGIC, ic), 0);
	ck_assert_int_eq(journal_txn_add(t, a, 1, TEST_MAGIC, ib2), 0);
	ck_assert_int_eq(journal_lookup(f.j, c, tmp, 1), -ENOENT);
	ck_assert_int_eq(journal_lookup(f.j, a, tmp, 1), 0);
	ck_assert_mem_eq(tmp, ia, BS);
	blockdev_mem_crash_random(f.bd, 1);
	journal_txn_abort(t);

	fx_reopen(&f);
	uint64_t txns;
	ck_assert_int_eq(journal_replay(f.j, &txns, NULL), 0);
	ck_assert_uint_eq(txns, 1);
	ck_assert(home_equals(&f, a, 1, ia));
	ck_assert(home_is_zero(&f, b, 1));
	ck_assert(home_is_zero(&f, c, 1));
	fx_free(&f);
}
END_TEST

START_TEST(test_abort_leaves_no_gap)
{
	struct fx f;
	fx_init(&f, 64 * MIB, 0);
	uint8_t ia[BS], ib[BS], ic[BS], ie[BS];
	struct csv_txn *ta, *tb, *tc, *td, *te;

	/* An older LSN aborted: an empty transaction takes its place. */
	ck_assert_int_eq(journal_txn_begin(f.j, &ta), 0);
	ck_assert_int_eq(journal_txn_begin(f.j, &tb), 0);
	uint64_t la = journal_txn_lsn(ta), lb = journal_txn_lsn(tb);
	ck_assert_uint_eq(lb, la + 1);
	fill_image(ia, 1, 1);
	fill_image(ib, 1, 2);
	ck_assert_int_eq(journal_txn_add(ta, f.home, 1, TEST_MAGIC, ia), 0);
	ck_assert_int_eq(journal_txn_add(tb, f.home + 1, 1, TEST_MAGIC, ib), 0);
	journal_txn_abort(ta);
	ck_assert_int_eq(journal_txn_commit(tb), 0);

	/* The newest LSN aborted: handed out again. */
	ck_assert_int_eq(journal_txn_begin(f.j, &tc), 0);
	ck_assert_int_eq(journal_txn_begin(f.j, &td), 0);
	uint64_t lc = journal_txn_lsn(tc), ld = journal_txn_lsn(td);
	ck_assert_uint_eq(lc, lb + 1);
	ck_assert_uint_eq(ld, lc + 1);
	fill_image(ic, 1, 3);
	ck_assert_int_eq(journal_txn_add(tc, f.home + 2, 1, TEST_MAGIC, ic), 0);
	journal_txn_abort(td);
	ck_assert_int_eq(journal_txn_commit(tc), 0);
	ck_assert_int_eq(journal_txn_begin(f.j, &te), 0);
	ck_assert_uint_eq(journal_txn_lsn(te), ld);
	fill_image(ie, 1, 5);
	ck_assert_int_eq(journal_txn_add(te, f.home + 4, 1, TEST_MAGIC, ie), 0);
	ck_assert_int_eq(journal_txn_commit(te), 0);

	/* Several aborted at the end, out of order: all handed out again. */
	struct csv_txn *x1, *x2, *x3;
	ck_assert_int_eq(journal_txn_begin(f.j, &x1), 0);
	ck_assert_int_eq(journal_txn_begin(f.j, &x2), 0);
	ck_assert_int_eq(journal_txn_begin(f.j, &x3), 0);
	uint64_t l1 = journal_txn_lsn(x1);
	journal_txn_abort(x1);
	journal_txn_abort(x2);
	journal_txn_abort(x3);
	ck_assert_int_eq(journal_txn_begin(f.j, &x1), 0);
	ck_assert_uint_eq(journal_txn_lsn(x1), l1);
	journal_txn_abort(x1);

	blockdev_mem_crash(f.bd);
	fx_reopen(&f);
	struct scan_list *l = scan_all(&f);
	ck_assert_uint_eq(l->n, 4);
	ck_assert_uint_eq(l->r[0].lsn, la);
	ck_assert_uint_eq(l->r[0].nimages, 0);
	ck_assert_uint_eq(l->r[1].lsn, lb);
	ck_assert_uint_eq(l->r[1].nimages, 1);
	ck_assert_uint_eq(l->r[2].lsn, lc);
	ck_assert_uint_eq(l->r[3].lsn, ld);
	free(l);
	uint64_t txns, blocks;
	ck_assert_int_eq(journal_replay(f.j, &txns, &blocks), 0);
	ck_assert_uint_eq(txns, 4);
	ck_assert_uint_eq(blocks, 3);
	ck_assert(home_is_zero(&f, f.home, 1));
	ck_assert(home_equals(&f, f.home + 1, 1, ib));
	ck_assert(home_equals(&f, f.home + 2, 1, ic));
	ck_assert(home_equals(&f, f.home + 4, 1, ie));
	fx_free(&f);
}
END_TEST

START_TEST(test_replace_in_txn)
{
	struct fx f;
	fx_init(&f, 64 * MIB, 0);
	uint8_t i1[BS], i2[4 * BS];
	struct csv_txn *t;

	ck_assert_int_eq(journal_txn_begin(f.j, &t), 0);
	fill_image(i1, 1, 1);
	fill_image(i2, 4, 2);
	ck_assert_int_eq(journal_txn_add(t, f.home, 1, TEST_MAGIC, i1), 0);
	ck_assert_int_eq(journal_txn_add(t, f.home, 4, TEST_MAGIC, i2), 0);
	ck_assert_int_eq(journal_txn_commit(t), 0);
	fx_reopen(&f);
	struct scan_list *l = scan_all(&f);
	ck_assert_uint_eq(l->n, 1);
	ck_assert_uint_eq(l->r[0].nimages, 1);
	ck_assert_uint_eq(l->r[0].nblocks, 4);
	free(l);
	ck_assert_int_eq(journal_replay(f.j, NULL, NULL), 0);
	ck_assert(home_equals(&f, f.home, 4, i2));
	fx_free(&f);
}
END_TEST

START_TEST(test_bad_args)
{
	struct fx f;
	fx_init(&f, 64 * MIB, 0);
	uint8_t buf[17 * BS];
	struct csv_txn *t;

	memset(buf, 0, sizeof(buf));
	ck_assert_int_eq(journal_txn_begin(f.j, &t), 0);
	ck_assert_int_eq(journal_txn_add(t, f.home, 0, TEST_MAGIC, buf), -EINVAL);
	ck_assert_int_eq(journal_txn_add(t, f.home, 17, TEST_MAGIC, buf), -EINVAL);
	ck_assert_int_eq(journal_txn_add(t, f.g.journal_block + 3, 1, TEST_MAGIC, buf), -EINVAL);
	ck_assert_int_eq(journal_txn_add(t, f.g.journal_block - 2, 4, TEST_MAGIC, buf), -EINVAL);
	ck_assert_int_eq(journal_txn_add(t, f.g.total_blocks - 1, 2, TEST_MAGIC, buf), -EINVAL);
	/* Nothing was sealed by the refused calls. */
	ck_assert_uint_eq(le32_to_cpu(((struct csv_d_blkhdr *)buf)->magic), 0);
	journal_txn_abort(t);
	fx_free(&f);
}
END_TEST

/* ---- Shapes of transactions -------------------------------------------- */

START_TEST(test_multi_descriptor)
{
	struct fx f;
	fx_init(&f, 64 * MIB, 8 * MIB);
	const uint32_t n1 = 600, n2 = CSV_JOURNAL_TAGS, n3 = CSV_JOURNAL_TAGS + 1;
	const uint32_t ns[3] = { n1, n2, n3 };
	uint8_t **img[3];
	uint64_t base[3] = { f.home, f.home + 1000, f.home + 2000 };
	uint64_t lsn[3];

	for (int k = 0; k < 3; k++) {
		struct csv_txn *t;
		img[k] = calloc(ns[k], sizeof(*img[k]));
		ck_assert_int_eq(journal_txn_begin(f.j, &t), 0);
		lsn[k] = journal_txn_lsn(t);
		for (uint32_t i = 0; i < ns[k]; i++) {
			img[k][i] = new_image(1, 1000 * k + i);
			ck_assert_int_eq(journal_txn_add(t, base[k] + i, 1, TEST_MAGIC, img[k][i]), 0);
		}
		ck_assert_int_eq(journal_txn_commit(t), 0);
	}

	/* Lookups before the power cut. */
	uint8_t tmp[BS];
	ck_assert_int_eq(journal_lookup(f.j, base[0] + 599, tmp, 1), 0);
	ck_assert_mem_eq(tmp, img[0][599], BS);

	blockdev_mem_crash(f.bd);
	fx_reopen(&f);
	struct scan_list *l = scan_all(&f);
	ck_assert_uint_eq(l->n, 3);
	uint64_t off = l->r[0].offset;
	for (int k = 0; k < 3; k++) {
		ck_assert_uint_eq(l->r[k].lsn, lsn[k]);
		ck_assert_uint_eq(l->r[k].nimages, ns[k]);
		ck_assert_uint_eq(l->r[k].nblocks, ns[k]);
		ck_assert_uint_eq(l->r[k].offset, off);
		off += txn_size(ns[k], ns[k]);
	}
	/* 600 images take three descriptors, 252 one, 253 two. */
	ck_assert_uint_eq(l->r[1].offset - l->r[0].offset, 3 + 600 + 1);
	ck_assert_uint_eq(l->r[2].offset - l->r[1].offset, 1 + CSV_JOURNAL_TAGS + 1);
	free(l);
	uint64_t txns, blocks;
	ck_assert_int_eq(journal_replay(f.j, &txns, &blocks), 0);
	ck_assert_uint_eq(txns, 3);
	ck_assert_uint_eq(blocks, n1 + n2 + n3);
	for (int k = 0; k < 3; k++) {
		for (uint32_t i = 0; i < ns[k]; i++) {
			ck_assert(home_equals(&f, base[k] + i, 1, img[k][i]));
			free(img[k][i]);
		}
		free(img[k]);
	}
	fx_free(&f);
}
END_TEST

START_TEST(test_multi_block)
{
	struct fx f;
	fx_init(&f, 64 * MIB, 0);
	uint8_t *img[5], *newer;
	struct csv_txn *t;

	ck_assert_int_eq(journal_txn_begin(f.j, &t), 0);
	for (int i = 0; i < 5; i++) {
		img[i] = new_image(16, 100 + i);
		ck_assert_int_eq(journal_txn_add(t, f.home + 16 * i, 16, TEST_MAGIC, img[i]), 0);
	}
	ck_assert_int_eq(journal_txn_commit(t), 0);
	newer = new_image(16, 200);
	uint64_t lsn2 = commit_one(&f, f.home + 32, 16, 200, newer);

	uint8_t *tmp = malloc(16 * BS);
	ck_assert_int_eq(journal_lookup(f.j, f.home + 32, tmp, 16), 0);
	ck_assert_mem_eq(tmp, newer, 16 * BS);
	ck_assert_int_eq(journal_lookup(f.j, f.home + 32, tmp, 1), -EINVAL);
	ck_assert_int_eq(journal_lookup(f.j, f.home + 33, tmp, 1), -ENOENT);

	fx_reopen(&f);
	uint64_t blocks;
	ck_assert_int_eq(journal_replay(f.j, NULL, &blocks), 0);
	ck_assert_uint_eq(blocks, 6 * 16);
	for (int i = 0; i < 5; i++)
		if (i != 2)
			ck_assert(home_equals(&f, f.home + 16 * i, 16, img[i]));
	ck_assert(home_equals(&f, f.home + 32, 16, newer));
	read_home(&f, f.home + 32, 16, tmp);
	ck_assert_uint_eq(hdr_lsn(tmp), lsn2);
	for (int i = 0; i < 5; i++)
		free(img[i]);
	free(newer);
	free(tmp);
	fx_free(&f);
}
END_TEST

/* ---- The circular log -------------------------------------------------- */

#define WSLOTS 8
static const uint32_t wrap_nb[WSLOTS] = { 1, 4, 16, 2, 16, 1, 8, 3 };

struct wrap_state {
	bool straddled;  /* a transaction crossed the end of the log */
	uint64_t log_blocks;
};

static int wrap_cb(void *ud, uint64_t lsn, uint64_t offset, uint32_t nimages, uint32_t nblocks,
		   uint64_t commit_time_ns)
{
	struct wrap_state *w = ud;
	if (offset + txn_size(nimages, nblocks) > w->log_blocks)
		w->straddled = true;
	return 0;
}

START_TEST(test_wraparound)
{
	struct fx f;
	fx_init(&f, 16 * MIB, 64 * BS);  /* a log of 63 blocks */
	ck_assert_uint_eq(f.log_blocks, 63);
	uint8_t *exp[WSLOTS];
	uint64_t rng = 42;
	struct wrap_state w = { .log_blocks = f.log_blocks };
	bool tail_before_head = false;
	uint8_t *buf = malloc(16 * BS);

	for (int s = 0; s < WSLOTS; s++)
		exp[s] = calloc(wrap_nb[s], BS);
	for (int i = 0; i < 400; i++) {
		struct csv_txn *t;
		ck_assert_int_eq(journal_txn_begin(f.j, &t), 0);
		int n = 1 + (int)(splitmix(&rng) % 3);
		for (int k = 0; k < n; k++) {
			int s = (int)(splitmix(&rng) % WSLOTS);
			fill_image(buf, wrap_nb[s], splitmix(&rng));
			ck_assert_int_eq(journal_txn_add(t, f.home + 16 * s, wrap_nb[s], TEST_MAGIC, buf), 0);
			memcpy(exp[s], buf, (size_t)wrap_nb[s] * BS);
		}
		ck_assert_int_eq(journal_txn_commit(t), 0);

		struct journal_info in;
		journal_get_info(f.j, &in);
		ck_assert_uint_le(in.used_blocks, in.log_blocks);
		if (in.used_blocks && in.tail_offset < in.head_offset && in.tail_offset > 0)
			tail_before_head = true;
		ck_assert_int_eq(journal_scan(f.j, wrap_cb, &w), 0);

		if (i % 25 == 24) {
			/* A power cut; replay now, or leave it to the next begin. */
			blockdev_mem_crash(f.bd);
			fx_reopen(&f);
			ck_assert_int_eq(journal_scan(f.j, wrap_cb, &w), 0);
			if (splitmix(&rng) % 2)
				ck_assert_int_eq(journal_replay(f.j, NULL, NULL), 0);
		}
		for (int s = 0; s < WSLOTS; s++) {
			read_view(&f, f.home + 16 * s, wrap_nb[s], buf);
			ck_assert_mem_eq(buf, exp[s], (size_t)wrap_nb[s] * BS);
		}
	}
	ck_assert(w.straddled);
	ck_assert(tail_before_head);
	ck_assert_int_eq(journal_replay(f.j, NULL, NULL), 0);
	for (int s = 0; s < WSLOTS; s++) {
		ck_assert(home_equals(&f, f.home + 16 * s, wrap_nb[s], exp[s]));
		free(exp[s]);
	}
	free(buf);
	fx_free(&f);
}
END_TEST

START_TEST(test_auto_checkpoint)
{
	struct fx f;
	fx_init(&f, 16 * MIB, 64 * BS);  /* 63 blocks: 21 one-image transactions */
	uint8_t img[40][BS];
	uint64_t first = 0;
	struct journal_info in;

	for (int i = 0; i < 40; i++) {
		uint64_t lsn = commit_one(&f, f.home + i, 1, 500 + i, img[i]);
		if (i == 0)
			first = lsn;
		journal_get_info(f.j, &in);
		ck_assert_uint_le(in.used_blocks, in.log_blocks);
	}
	/* The log filled up twice: the oldest images went home on their own. */
	journal_get_info(f.j, &in);
	ck_assert_uint_gt(in.head_lsn, first + 20);
	ck_assert_uint_lt(in.pending_txns, 21);
	uint8_t tmp[BS];
	for (int i = 0; i < 20; i++) {
		ck_assert_int_eq(journal_lookup(f.j, f.home + i, tmp, 1), -ENOENT);
		ck_assert(home_equals(&f, f.home + i, 1, img[i]));
	}
	ck_assert_int_eq(journal_lookup(f.j, f.home + 39, tmp, 1), 0);

	/* Exactly full: 21 transactions of 3 blocks, tail back at the head. */
	ck_assert_int_eq(journal_checkpoint(f.j), 0);
	uint64_t flushes = blockdev_flush_count(f.bd);
	for (int i = 0; i < 21; i++)
		commit_one(&f, f.home + 100 + i, 1, 600 + i, img[i]);
	ck_assert_uint_eq(blockdev_flush_count(f.bd), flushes + 21);
	journal_get_info(f.j, &in);
	ck_assert_uint_eq(in.used_blocks, 63);
	ck_assert_uint_eq(in.tail_offset, in.head_offset);
	fx_reopen(&f);
	journal_get_info(f.j, &in);
	ck_assert_uint_eq(in.pending_txns, 21);
	ck_assert_uint_eq(in.used_blocks, 63);
	/* One more: a checkpoint first (two flushes), then the commit. */
	flushes = blockdev_flush_count(f.bd);
	commit_one(&f, f.home + 200, 1, 700, img[21]);
	ck_assert_uint_eq(blockdev_flush_count(f.bd), flushes + 3);
	journal_get_info(f.j, &in);
	ck_assert_uint_eq(in.pending_txns, 1);
	for (int i = 0; i < 21; i++)
		ck_assert(home_equals(&f, f.home + 100 + i, 1, img[i]));
	fx_reopen(&f);
	ck_assert_int_eq(journal_replay(f.j, NULL, NULL), 0);
	ck_assert(home_equals(&f, f.home + 200, 1, img[21]));
	fx_free(&f);
}
END_TEST

START_TEST(test_e2big)
{
	struct fx f;
	fx_init(&f, 16 * MIB, 64 * BS);  /* a log of 63 blocks */
	uint8_t *big = malloc(16 * BS), small[BS];
	struct csv_txn *t;

	/* Some used blocks first, so that the fitting one needs a checkpoint. */
	commit_one(&f, f.home + 500, 1, 1, small);

	/* 4 x 16 image blocks + descriptor + commit = 66 > 63. */
	ck_assert_int_eq(journal_txn_begin(f.j, &t), 0);
	uint64_t lsn = journal_txn_lsn(t);
	for (int i = 0; i < 4; i++) {
		fill_image(big, 16, i);
		ck_assert_int_eq(journal_txn_add(t, f.home + 16 * i, 16, TEST_MAGIC, big), 0);
	}
	ck_assert_int_eq(journal_txn_commit(t), -E2BIG);
	/* 62 image blocks: 64 > 63. */
	ck_assert_int_eq(journal_txn_begin(f.j, &t), 0);
	ck_assert_uint_eq(journal_txn_lsn(t), lsn);  /* the failed LSN is reused */
	for (int i = 0; i < 3; i++) {
		fill_image(big, 16, 10 + i);
		ck_assert_int_eq(journal_txn_add(t, f.home + 16 * i, 16, TEST_MAGIC, big), 0);
	}
	for (int i = 0; i < 14; i++) {
		fill_image(small, 1, 20 + i);
		ck_assert_int_eq(journal_txn_add(t, f.home + 100 + i, 1, TEST_MAGIC, small), 0);
	}
	ck_assert_int_eq(journal_txn_commit(t), -E2BIG);

	/* 61 image blocks: exactly the whole log. */
	uint8_t *imgs[16];
	ck_assert_int_eq(journal_txn_begin(f.j, &t), 0);
	ck_assert_uint_eq(journal_txn_lsn(t), lsn);
	for (int i = 0; i < 16; i++) {
		uint32_t nb = i < 3 ? 16 : 1;
		uint64_t b = i < 3 ? f.home + 16 * (uint64_t)i : f.home + 100 + (uint64_t)i;
		imgs[i] = new_image(nb, 30 + i);
		ck_assert_int_eq(journal_txn_add(t, b, nb, TEST_MAGIC, imgs[i]), 0);
	}
	ck_assert_int_eq(journal_txn_commit(t), 0);
	struct journal_info in;
	journal_get_info(f.j, &in);
	ck_assert_uint_eq(in.used_blocks, 63);
	ck_assert_uint_eq(in.pending_txns, 1);

	blockdev_mem_crash(f.bd);
	fx_reopen(&f);
	uint64_t txns;
	ck_assert_int_eq(journal_replay(f.j, &txns, NULL), 0);
	ck_assert_uint_eq(txns, 1);
	for (int i = 0; i < 16; i++) {
		uint32_t nb = i < 3 ? 16 : 1;
		uint64_t b = i < 3 ? f.home + 16 * (uint64_t)i : f.home + 100 + (uint64_t)i;
		ck_assert(home_equals(&f, b, nb, imgs[i]));
		free(imgs[i]);
	}
	free(big);
	fx_free(&f);
}
END_TEST

/* ---- Lookup and scan ---------------------------------------------------- */

START_TEST(test_lookup)
{
	struct fx f;
	fx_init(&f, 64 * MIB, 0);
	uint8_t a1[BS], a2[BS], b[BS], tmp[BS];
	uint64_t A = f.home, B = f.home + 1;

	ck_assert_int_eq(journal_lookup(f.j, A, tmp, 1), -ENOENT);
	commit_one(&f, A, 1, 1, a1);
	ck_assert_int_eq(journal_lookup(f.j, A, tmp, 1), 0);
	ck_assert_mem_eq(tmp, a1, BS);

	struct csv_txn *t;
	ck_assert_int_eq(journal_txn_begin(f.j, &t), 0);
	fill_image(a2, 1, 2);
	fill_image(b, 1, 3);
	ck_assert_int_eq(journal_txn_add(t, A, 1, TEST_MAGIC, a2), 0);
	ck_assert_int_eq(journal_txn_add(t, B, 1, TEST_MAGIC, b), 0);
	/* Not committed yet: still the older image, nothing for B. */
	ck_assert_int_eq(journal_lookup(f.j, A, tmp, 1), 0);
	ck_assert_mem_eq(tmp, a1, BS);
	ck_assert_int_eq(journal_lookup(f.j, B, tmp, 1), -ENOENT);
	ck_assert_int_eq(journal_txn_commit(t), 0);
	ck_assert_int_eq(journal_lookup(f.j, A, tmp, 1), 0);
	ck_assert_mem_eq(tmp, a2, BS);
	ck_assert_int_eq(journal_lookup(f.j, B, tmp, 1), 0);
	ck_assert_mem_eq(tmp, b, BS);
	ck_assert_int_eq(journal_lookup(f.j, B + 1, tmp, 1), -ENOENT);

	/* Found again after a remount, from the log. */
	fx_reopen(&f);
	ck_assert_int_eq(journal_lookup(f.j, A, tmp, 1), 0);
	ck_assert_mem_eq(tmp, a2, BS);

	ck_assert_int_eq(journal_checkpoint(f.j), 0);
	ck_assert_int_eq(journal_lookup(f.j, A, tmp, 1), -ENOENT);
	ck_assert(home_equals(&f, A, 1, a2));
	ck_assert(home_equals(&f, B, 1, b));
	fx_free(&f);
}
END_TEST

START_TEST(test_scan)
{
	struct fx f;
	fx_init(&f, 64 * MIB, 0);
	uint8_t *buf = malloc(16 * BS);
	uint64_t lsn0 = 0;
	const uint32_t nimg[5] = { 1, 3, 0, 2, 5 };
	uint32_t nblk[5] = { 0 };

	for (int k = 0; k < 5; k++) {
		struct csv_txn *t;
		ck_assert_int_eq(journal_txn_begin(f.j, &t), 0);
		if (k == 0)
			lsn0 = journal_txn_lsn(t);
		for (uint32_t i = 0; i < nimg[k]; i++) {
			uint32_t nb = 1 + i;
			fill_image(buf, nb, k * 10 + i);
			ck_assert_int_eq(journal_txn_add(t, f.home + 100 * k + 16 * i, nb, TEST_MAGIC, buf), 0);
			nblk[k] += nb;
		}
		ck_assert_int_eq(journal_txn_commit(t), 0);
	}
	for (int pass = 0; pass < 2; pass++) {
		struct scan_list *l = scan_all(&f);
		ck_assert_uint_eq(l->n, 5);
		for (int k = 0; k < 5; k++) {
			ck_assert_uint_eq(l->r[k].lsn, lsn0 + k);
			ck_assert_uint_eq(l->r[k].nimages, nimg[k]);
			ck_assert_uint_eq(l->r[k].nblocks, nblk[k]);
			ck_assert_uint_gt(l->r[k].time, 0);
			if (k > 0) {
				ck_assert_uint_eq(l->r[k].offset, l->r[k - 1].offset + txn_size(nimg[k - 1], nblk[k - 1]));
				ck_assert_uint_ge(l->r[k].time, l->r[k - 1].time);
			}
		}
		free(l);
		fx_reopen(&f);  /* the second pass lists what is on disk */
	}
	/* A callback stops the scan. */
	struct scan_list *l = calloc(1, sizeof(*l));
	l->stop_at = 2;
	ck_assert_int_eq(journal_scan(f.j, scan_cb, l), 7);
	ck_assert_uint_eq(l->n, 2);
	free(l);
	ck_assert_int_eq(journal_checkpoint(f.j), 0);
	l = scan_all(&f);
	ck_assert_uint_eq(l->n, 0);
	free(l);
	free(buf);
	fx_free(&f);
}
END_TEST

/* ---- Damage ------------------------------------------------------------- */

static void write_super(struct fx *f, uint32_t magic, uint64_t log_blocks, uint64_t head_lsn,
			uint64_t head_offset, uint64_t hdr_lsn_v, const uint8_t *uuid)
{
	struct csv_d_journal_super s;
	memset(&s, 0, sizeof(s));
	s.log_blocks = cpu_to_le64(log_blocks);
	s.head_lsn = cpu_to_le64(head_lsn);
	s.head_offset = cpu_to_le64(head_offset);
	meta_seal(&s, sizeof(s), magic, f->g.journal_block, uuid, hdr_lsn_v);
	ck_assert_int_eq(blockdev_pwrite(f->bd, &s, BS, f->g.journal_block * BS), 0);
	ck_assert_int_eq(blockdev_flush(f->bd), 0);
}

START_TEST(test_bad_superblock)
{
	struct fx f;
	fx_init(&f, 16 * MIB, 0);
	uint8_t other[16];
	char err[256];
	memset(other, 0x77, sizeof(other));
	fx_close(&f);
	ck_assert_int_eq(volume_open_bdev(f.bd, &f.v, err, sizeof(err)), 0);
	struct csv_journal *sentinel = (struct csv_journal *)&f, *j = sentinel;
	uint8_t *sb = blockdev_mem_data(f.bd) + f.g.journal_block * BS;
	uint64_t L = f.log_blocks;

	/* A flipped bit: bad checksum. */
	ck_assert_int_eq(journal_format(f.v), 0);
	sb[0x123] ^= 0x10;
	ck_assert_int_eq(journal_open(f.v, &j), -EBADMSG);
	ck_assert_ptr_eq(j, sentinel);
	/* Never written. */
	memset(sb, 0, BS);
	ck_assert_int_eq(journal_open(f.v, &j), -EBADMSG);
	/* A valid block, but not a journal superblock, or another volume's. */
	write_super(&f, CSV_MAGIC_JDESC, L, 1, 0, 1, f.g.uuid);
	ck_assert_int_eq(journal_open(f.v, &j), -EUCLEAN);
	write_super(&f, CSV_MAGIC_JSUPER, L, 1, 0, 1, other);
	ck_assert_int_eq(journal_open(f.v, &j), -EUCLEAN);
	/* Inconsistent fields. */
	write_super(&f, CSV_MAGIC_JSUPER, L + 1, 1, 0, 1, f.g.uuid);
	ck_assert_int_eq(journal_open(f.v, &j), -EUCLEAN);
	write_super(&f, CSV_MAGIC_JSUPER, L, 1, L, 1, f.g.uuid);
	ck_assert_int_eq(journal_open(f.v, &j), -EUCLEAN);
	write_super(&f, CSV_MAGIC_JSUPER, L, 0, 0, 0, f.g.uuid);
	ck_assert_int_eq(journal_open(f.v, &j), -EUCLEAN);
	write_super(&f, CSV_MAGIC_JSUPER, L, 5, 0, 4, f.g.uuid);
	ck_assert_int_eq(journal_open(f.v, &j), -EUCLEAN);
	ck_assert_ptr_eq(j, sentinel);
	/* And a good one opens. */
	write_super(&f, CSV_MAGIC_JSUPER, L, 5, 7, 5, f.g.uuid);
	ck_assert_int_eq(journal_open(f.v, &j), 0);
	struct journal_info in;
	journal_get_info(j, &in);
	ck_assert_uint_eq(in.head_lsn, 5);
	ck_assert_uint_eq(in.head_offset, 7);
	ck_assert_uint_eq(in.tail_offset, 7);
	journal_close(j);
	volume_close(f.v);
	blockdev_close(f.bd);
}
END_TEST

enum damage { DMG_IMAGE, DMG_IMAGE_TORN, DMG_DESC, DMG_DESC2, DMG_COMMIT, DMG_LSN, DMG_DESC_CRC, DMG_COUNT };

/* Three transactions; the second (two descriptors) is damaged on disk:
 * replay applies the first only. */
START_TEST(test_damaged_log)
{
	struct fx f;
	fx_init(&f, 64 * MIB, 4 * MIB);
	const uint32_t n2 = CSV_JOURNAL_TAGS + 2;
	uint8_t i1[BS], i3[BS];
	struct csv_txn *t;

	commit_one(&f, f.home, 1, 1, i1);
	ck_assert_int_eq(journal_txn_begin(f.j, &t), 0);
	for (uint32_t i = 0; i < n2; i++) {
		uint8_t b[BS];
		fill_image(b, 1, 100 + i);
		ck_assert_int_eq(journal_txn_add(t, f.home + 10 + i, 1, TEST_MAGIC, b), 0);
	}
	ck_assert_int_eq(journal_txn_commit(t), 0);
	commit_one(&f, f.home + 5, 1, 3, i3);

	struct scan_list *l = scan_all(&f);
	ck_assert_uint_eq(l->n, 3);
	uint64_t o2 = l->r[1].offset;
	free(l);
	uint8_t *mem = blockdev_mem_data(f.bd);
	uint64_t blk = 0;
	size_t at = 0x200;
	switch (_i) {
	case DMG_IMAGE:      blk = o2 + 1 + 7; break;
	case DMG_IMAGE_TORN: blk = o2 + 2 + CSV_JOURNAL_TAGS + 1; break; /* an image after the 2nd descriptor */
	case DMG_DESC:       blk = o2; at = 0x48; break;  /* a tag */
	case DMG_DESC2:      blk = o2 + 1 + CSV_JOURNAL_TAGS; at = 0x3c; break;
	case DMG_COMMIT:     blk = o2 + 1 + CSV_JOURNAL_TAGS + 1 + 2; at = 0x38; break;
	case DMG_LSN:
	case DMG_DESC_CRC:   blk = o2 + 1 + CSV_JOURNAL_TAGS + 1 + 2; break;
	}
	uint8_t *p = mem + (f.log_start + blk) * BS;
	if (_i == DMG_IMAGE_TORN) {
		memset(p + 1024, 0, BS - 1024);
	} else if (_i == DMG_LSN) {
		/* A well-formed commit of the wrong transaction. */
		struct csv_d_journal_commit *c = (struct csv_d_journal_commit *)p;
		ck_assert_int_eq(meta_verify(c, BS, CSV_MAGIC_JCOMMIT, f.log_start + blk, f.g.uuid, NULL), 0);
		meta_seal(c, BS, CSV_MAGIC_JCOMMIT, f.log_start + blk, f.g.uuid, hdr_lsn(c) + 1);
	} else if (_i == DMG_DESC_CRC) {
		/* A well-formed commit that does not match the last descriptor. */
		struct csv_d_journal_commit *c = (struct csv_d_journal_commit *)p;
		c->desc_crc = cpu_to_le32(le32_to_cpu(c->desc_crc) ^ 1);
		meta_reseal(c, BS);
		ck_assert_int_eq(meta_verify(c, BS, CSV_MAGIC_JCOMMIT, f.log_start + blk, f.g.uuid, NULL), 0);
	} else {
		p[at] ^= 0x01;
	}

	fx_reopen(&f);
	struct journal_info in;
	journal_get_info(f.j, &in);
	ck_assert_uint_eq(in.pending_txns, 1);
	uint64_t txns;
	ck_assert_int_eq(journal_replay(f.j, &txns, NULL), 0);
	ck_assert_uint_eq(txns, 1);
	ck_assert(home_equals(&f, f.home, 1, i1));
	ck_assert(home_is_zero(&f, f.home + 5, 1));
	for (uint32_t i = 0; i < n2; i++)
		ck_assert(home_is_zero(&f, f.home + 10 + i, 1));
	fx_free(&f);
}
END_TEST

/* A crash tears transaction n (its commit lost) while n + 1 after it made
 * it whole. After the remount a new transaction of the same size lands
 * where n was: the stale n + 1 behind it must never be replayed. */
START_TEST(test_stale_txn_not_revived)
{
	struct fx f;
	fx_init(&f, 64 * MIB, 0);
	uint8_t x[BS], y[BS], z[BS];

	commit_one(&f, f.home, 1, 1, x);
	commit_one(&f, f.home + 1, 1, 2, y);
	struct scan_list *l = scan_all(&f);
	ck_assert_uint_eq(l->n, 2);
	uint64_t ox = l->r[0].offset;
	free(l);
	/* Lose x's commit block. */
	fx_close(&f);
	memset(blockdev_mem_data(f.bd) + (f.log_start + ox + 2) * BS, 0, BS);
	fx_open(&f);
	ck_assert(!journal_needs_replay(f.j));

	commit_one(&f, f.home + 2, 1, 3, z);
	l = scan_all(&f);
	ck_assert_uint_eq(l->n, 1);
	ck_assert_uint_eq(l->r[0].offset, ox);
	free(l);
	blockdev_mem_crash(f.bd);
	fx_reopen(&f);
	uint64_t txns;
	ck_assert_int_eq(journal_replay(f.j, &txns, NULL), 0);
	ck_assert_uint_eq(txns, 1);
	ck_assert(home_equals(&f, f.home + 2, 1, z));
	ck_assert(home_is_zero(&f, f.home, 1));
	ck_assert(home_is_zero(&f, f.home + 1, 1));
	fx_free(&f);
}
END_TEST

/* ---- Crashes ------------------------------------------------------------ */

#define NSLOTS 24

struct model {
	uint64_t blk[NSLOTS];
	uint32_t nb[NSLOTS];
	uint8_t *exp[NSLOTS];    /* as of the last transaction whose commit returned 0 */
	uint8_t *maybe[NSLOTS];  /* the transaction whose commit failed at the crash */
	uint64_t rng;
	uint64_t tag;
};

static uint32_t slot_nblocks(int s)
{
	return s % 8 == 0 ? 16 : s % 5 == 0 ? 4 : 1;
}

static void model_init(struct model *m, struct fx *f, uint64_t seed)
{
	memset(m, 0, sizeof(*m));
	m->rng = seed * 7919 + 1;
	for (int s = 0; s < NSLOTS; s++) {
		m->blk[s] = f->home + 16 * (uint64_t)s;
		m->nb[s] = slot_nblocks(s);
		m->exp[s] = calloc(m->nb[s], BS);
	}
}

static void model_free(struct model *m)
{
	for (int s = 0; s < NSLOTS; s++) {
		free(m->exp[s]);
		free(m->maybe[s]);
	}
}

static uint64_t mrand(struct model *m, uint64_t n)
{
	return splitmix(&m->rng) % n;
}

/* Every slot reads back as expected; the transaction in flight at the
 * crash shows wholly or not at all. */
static void model_verify(struct fx *f, struct model *m)
{
	int nmaybe = 0, nnew = 0;
	uint8_t *buf = malloc(16 * BS);
	bool isnew[NSLOTS] = { false };

	for (int s = 0; s < NSLOTS; s++) {
		size_t len = (size_t)m->nb[s] * BS;
		read_view(f, m->blk[s], m->nb[s], buf);
		bool old = memcmp(buf, m->exp[s], len) == 0;
		isnew[s] = m->maybe[s] && memcmp(buf, m->maybe[s], len) == 0;
		ck_assert_msg(old || isnew[s], "slot %d (block %" PRIu64 ", lsn %" PRIu64 ") holds neither the committed nor the in-flight image",
			      s, m->blk[s], hdr_lsn(buf));
		if (m->maybe[s]) {
			nmaybe++;
			nnew += isnew[s];
		}
	}
	ck_assert_msg(nnew == 0 || nnew == nmaybe, "in-flight transaction half applied (%d of %d)", nnew, nmaybe);
	for (int s = 0; s < NSLOTS; s++) {
		if (m->maybe[s] && nnew) {
			free(m->exp[s]);
			m->exp[s] = m->maybe[s];
		} else {
			free(m->maybe[s]);
		}
		m->maybe[s] = NULL;
	}
	free(buf);
}

struct wtxn {
	struct csv_txn *t;
	int n;
	int slot[8];
	uint8_t *img[8];
};

static int wtxn_begin(struct fx *f, struct wtxn *w)
{
	memset(w, 0, sizeof(*w));
	return journal_txn_begin(f->j, &w->t);
}

static void wtxn_add(struct model *m, struct wtxn *w, int nimages)
{
	for (int k = 0; k < nimages; k++) {
		int s = (int)mrand(m, NSLOTS);
		uint8_t *img = new_image(m->nb[s], ++m->tag * 1000003 + m->rng % 1000);
		ck_assert_int_eq(journal_txn_add(w->t, m->blk[s], m->nb[s], TEST_MAGIC, img), 0);
		int i;
		for (i = 0; i < w->n; i++)
			if (w->slot[i] == s)
				break;
		if (i < w->n) {
			free(w->img[i]);  /* added again: replaced */
		} else {
			ck_assert_int_lt(w->n, 8);
			w->n++;
		}
		w->slot[i] = s;
		w->img[i] = img;
	}
}

static void wtxn_drop(struct wtxn *w)
{
	for (int i = 0; i < w->n; i++)
		free(w->img[i]);
	w->n = 0;
}

static int wtxn_commit(struct model *m, struct wtxn *w)
{
	int r = journal_txn_commit(w->t);
	for (int i = 0; i < w->n; i++) {
		int s = w->slot[i];
		if (r == 0) {
			memcpy(m->exp[s], w->img[i], (size_t)m->nb[s] * BS);
			free(w->img[i]);
		} else {
			ck_assert_ptr_null(m->maybe[s]);
			m->maybe[s] = w->img[i];
		}
	}
	w->n = 0;
	return r;
}

static void wtxn_abort(struct wtxn *w)
{
	journal_txn_abort(w->t);
	wtxn_drop(w);
}

/* A random workload until the armed fault stops the journal. */
static void workload(struct fx *f, struct model *m, int nops)
{
	struct wtxn a, b;
	int r = 0;

	for (int op = 0; op < nops && r == 0; op++) {
		int kind = (int)mrand(m, 12);
		if (kind < 6) {
			if ((r = wtxn_begin(f, &a)) < 0)
				break;
			wtxn_add(m, &a, 1 + (int)mrand(m, 4));
			r = wtxn_commit(m, &a);
		} else if (kind == 6) {
			if ((r = wtxn_begin(f, &a)) < 0)
				break;
			wtxn_add(m, &a, 1 + (int)mrand(m, 3));
			wtxn_abort(&a);
		} else if (kind < 10) {
			/* Two open at once, finished in the three legal ways. */
			if ((r = wtxn_begin(f, &a)) < 0)
				break;
			if ((r = wtxn_begin(f, &b)) < 0) {
				wtxn_abort(&a);
				break;
			}
			wtxn_add(m, &a, 1 + (int)mrand(m, 3));
			wtxn_add(m, &b, 1 + (int)mrand(m, 3));
			switch (mrand(m, 3)) {
			case 0:
				r = wtxn_commit(m, &a);
				if (r == 0)
					r = wtxn_commit(m, &b);
				else
					wtxn_abort(&b);
				break;
			case 1:
				wtxn_abort(&a);
				r = wtxn_commit(m, &b);
				break;
			default:
				wtxn_abort(&b);
				r = wtxn_commit(m, &a);
				break;
			}
		} else if (kind == 10) {
			r = journal_checkpoint(f->j);
		} else {
			/* The same block twice in one transaction. */
			if ((r = wtxn_begin(f, &a)) < 0)
				break;
			wtxn_add(m, &a, 2);
			int s = a.slot[0];
			uint8_t *img = new_image(m->nb[s], ++m->tag * 7 + 3);
			ck_assert_int_eq(journal_txn_add(a.t, m->blk[s], m->nb[s], TEST_MAGIC, img), 0);
			free(a.img[0]);
			a.img[0] = img;
			r = wtxn_commit(m, &a);
		}
	}
	if (r == 0 && mrand(m, 2)) {
		/* Open at the crash: none of it may appear. */
		if (wtxn_begin(f, &a) == 0) {
			wtxn_add(m, &a, 1 + (int)mrand(m, 3));
			blockdev_mem_crash_random(f->bd, (unsigned)m->rng);
			wtxn_abort(&a);
		}
	}
}

/* Rounds of: mount (sometimes crashing during replay too), check, random
 * workload with a power cut at a random write or flush. */
static void crash_random_seed(uint64_t seed)
{
	struct fx f;
	struct model m;

	fx_init(&f, 4 * MIB, seed % 2 ? 64 * BS : 0);
	model_init(&m, &f, seed);
	fx_close(&f);
	for (int round = 0; round < 5; round++) {
		fx_open(&f);
		if (journal_needs_replay(f.j) && mrand(&m, 3) == 0) {
			journal_test_fail_after(f.j, (int64_t)mrand(&m, 12));
			if (journal_replay(f.j, NULL, NULL) < 0) {
				blockdev_mem_crash_random(f.bd, (unsigned)mrand(&m, 1u << 30));
				fx_reopen(&f);
			} else {
				journal_test_fail_after(f.j, -1);
			}
		}
		if (mrand(&m, 4)) {
			ck_assert_int_eq(journal_replay(f.j, NULL, NULL), 0);
			ck_assert(!journal_needs_replay(f.j));
		}
		model_verify(&f, &m);

		if (mrand(&m, 5))
			journal_test_fail_after(f.j, (int64_t)mrand(&m, 40));
		workload(&f, &m, 4 + (int)mrand(&m, 20));
		blockdev_mem_crash_random(f.bd, (unsigned)mrand(&m, 1u << 30));
		fx_close(&f);
	}
	fx_open(&f);
	ck_assert_int_eq(journal_replay(f.j, NULL, NULL), 0);
	model_verify(&f, &m);
	model_free(&m);
	fx_free(&f);
}

#define CRASH_SEEDS_PER_RUN 10

START_TEST(test_crash_random)
{
	for (int k = 0; k < CRASH_SEEDS_PER_RUN; k++)
		crash_random_seed((uint64_t)_i * CRASH_SEEDS_PER_RUN + (uint64_t)k);
}
END_TEST

/* Replay interrupted by a power cut and run again gives the same device,
 * byte for byte, as one replay. */
static void replay_twice_seed(uint64_t seed)
{
	struct fx f;
	struct model m;

	fx_init(&f, 4 * MIB, seed % 2 ? 64 * BS : 0);
	model_init(&m, &f, seed);
	journal_test_fail_after(f.j, 10 + (int64_t)mrand(&m, 60));
	workload(&f, &m, 30);
	blockdev_mem_crash_random(f.bd, (unsigned)seed);
	fx_close(&f);

	/* A copy of the crashed device, on a volatile device too. */
	struct fx g = f;
	ck_assert_int_eq(blockdev_open_mem(f.size, true, &g.bd), 0);
	ck_assert_int_eq(blockdev_pwrite(g.bd, blockdev_mem_data(f.bd), f.size, 0), 0);
	ck_assert_int_eq(blockdev_flush(g.bd), 0);

	fx_open(&f);
	ck_assert_int_eq(journal_replay(f.j, NULL, NULL), 0);
	model_verify(&f, &m);

	fx_open(&g);
	for (int k = 0; k < 3; k++) {
		journal_test_fail_after(g.j, (int64_t)mrand(&m, 8));
		if (journal_replay(g.j, NULL, NULL) == 0)
			break;
		blockdev_mem_crash_random(g.bd, (unsigned)mrand(&m, 1u << 30));
		fx_reopen(&g);
	}
	journal_test_fail_after(g.j, -1);
	ck_assert_int_eq(journal_replay(g.j, NULL, NULL), 0);
	ck_assert_int_eq(journal_replay(g.j, NULL, NULL), 0);
	fx_reopen(&g);
	ck_assert_int_eq(journal_replay(g.j, NULL, NULL), 0);
	ck_assert(memcmp(blockdev_mem_data(f.bd), blockdev_mem_data(g.bd), f.size) == 0);
	model_free(&m);
	fx_free(&g);
	fx_free(&f);
}

START_TEST(test_replay_twice)
{
	for (int k = 0; k < CRASH_SEEDS_PER_RUN; k++)
		replay_twice_seed(1000 + (uint64_t)_i * CRASH_SEEDS_PER_RUN + (uint64_t)k);
}
END_TEST

/* ---- Threads ------------------------------------------------------------ */

struct later {
	struct fx *f;
	int committed;
	int result;
	uint64_t lsn;
	uint8_t img[BS];
};

static void *later_thread(void *arg)
{
	struct later *l = arg;
	struct csv_txn *t;
	ck_assert_int_eq(journal_txn_begin(l->f->j, &t), 0);
	l->lsn = journal_txn_lsn(t);
	fill_image(l->img, 1, 77);
	ck_assert_int_eq(journal_txn_add(t, l->f->home + 1, 1, TEST_MAGIC, l->img), 0);
	l->result = journal_txn_commit(t);
	__atomic_store_n(&l->committed, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* A transaction begun later does not reach the log before an earlier one. */
START_TEST(test_lsn_order)
{
	struct fx f;
	fx_init(&f, 64 * MIB, 0);
	for (int variant = 0; variant < 2; variant++) {
		struct csv_txn *a;
		uint8_t ia[BS];
		struct later l = { .f = &f };
		pthread_t th;

		ck_assert_int_eq(journal_txn_begin(f.j, &a), 0);
		uint64_t la = journal_txn_lsn(a);
		fill_image(ia, 1, 66);
		ck_assert_int_eq(journal_txn_add(a, f.home, 1, TEST_MAGIC, ia), 0);
		ck_assert_int_eq(pthread_create(&th, NULL, later_thread, &l), 0);
		usleep(200 * 1000);
		ck_assert_int_eq(__atomic_load_n(&l.committed, __ATOMIC_SEQ_CST), 0);
		if (variant == 0)
			ck_assert_int_eq(journal_txn_commit(a), 0);
		else
			journal_txn_abort(a);
		ck_assert_int_eq(pthread_join(th, NULL), 0);
		ck_assert_int_eq(l.result, 0);
		ck_assert_uint_eq(l.lsn, la + 1);

		fx_reopen(&f);
		struct scan_list *sl = scan_all(&f);
		ck_assert_uint_eq(sl->n, 2);
		ck_assert_uint_eq(sl->r[0].lsn, la);
		ck_assert_uint_eq(sl->r[0].nimages, variant == 0 ? 1 : 0);
		ck_assert_uint_eq(sl->r[1].lsn, la + 1);
		free(sl);
		ck_assert_int_eq(journal_replay(f.j, NULL, NULL), 0);
		if (variant == 0)
			ck_assert(home_equals(&f, f.home, 1, ia));
		ck_assert(home_equals(&f, f.home + 1, 1, l.img));
		/* Clean slate for the next variant. */
		memset(ia, 0, BS);
		ck_assert_int_eq(volume_write_raw(f.v, f.home, 1, ia), 0);
		ck_assert_int_eq(blockdev_flush(f.bd), 0);
	}
	fx_free(&f);
}
END_TEST

#define GC_THREADS 8
#define GC_TXNS 200

struct gc_thread {
	struct fx *f;
	int id;
	int ntxns;
	uint64_t lsn[GC_TXNS];
	int result[GC_TXNS];  /* 0 committed, < 0 failed, 1 never tried */
};

static uint64_t gc_block(struct fx *f, int id, int i, int k)
{
	return f->home + 2 * ((uint64_t)id * GC_TXNS + (uint64_t)i) + (uint64_t)k;
}

static void gc_image(struct fx *f, int id, int i, int k, uint64_t lsn, uint8_t *buf)
{
	fill_image(buf, 1, ((uint64_t)id << 32) | ((uint64_t)i << 8) | (uint64_t)k);
	meta_seal(buf, BS, TEST_MAGIC, gc_block(f, id, i, k), f->g.uuid, lsn);
}

static void *gc_worker(void *arg)
{
	struct gc_thread *g = arg;
	uint8_t buf[BS];

	for (int i = 0; i < g->ntxns; i++)
		g->result[i] = 1;
	for (int i = 0; i < g->ntxns; i++) {
		struct csv_txn *t;
		int r = journal_txn_begin(g->f->j, &t);
		if (r < 0) {
			g->result[i] = r;
			break;
		}
		g->lsn[i] = journal_txn_lsn(t);
		for (int k = 0; k < 2; k++) {
			fill_image(buf, 1, ((uint64_t)g->id << 32) | ((uint64_t)i << 8) | (uint64_t)k);
			ck_assert_int_eq(journal_txn_add(t, gc_block(g->f, g->id, i, k), 1, TEST_MAGIC, buf), 0);
		}
		g->result[i] = journal_txn_commit(t);
		if (g->result[i] < 0)
			break;
	}
	return NULL;
}

static void gc_run(struct fx *f, struct gc_thread *g, int ntxns)
{
	pthread_t th[GC_THREADS];
	for (int n = 0; n < GC_THREADS; n++) {
		g[n] = (struct gc_thread){ .f = f, .id = n, .ntxns = ntxns };
		ck_assert_int_eq(pthread_create(&th[n], NULL, gc_worker, &g[n]), 0);
	}
	for (int n = 0; n < GC_THREADS; n++)
		ck_assert_int_eq(pthread_join(th[n], NULL), 0);
}

START_TEST(test_group_commit)
{
	struct fx f;
	static struct gc_thread g[GC_THREADS];
	fx_init(&f, 64 * MIB, 8 * MIB);

	/* Start the journal (its one-time superblock write) outside the count. */
	struct csv_txn *t;
	ck_assert_int_eq(journal_txn_begin(f.j, &t), 0);
	journal_txn_abort(t);
	uint64_t flushes = blockdev_flush_count(f.bd);
	gc_run(&f, g, GC_TXNS);
	flushes = blockdev_flush_count(f.bd) - flushes;
	int commits = GC_THREADS * GC_TXNS;
	fprintf(stderr, "group commit: %d commits in %" PRIu64 " flushes (%.1f commits per flush)\n",
		commits, flushes, (double)commits / (double)flushes);
	for (int n = 0; n < GC_THREADS; n++)
		for (int i = 0; i < GC_TXNS; i++)
			ck_assert_int_eq(g[n].result[i], 0);
	ck_assert_uint_lt(flushes, (uint64_t)commits / 3);

	/* Every commit that returned is durable. */
	blockdev_mem_crash(f.bd);
	fx_reopen(&f);
	ck_assert_int_eq(journal_replay(f.j, NULL, NULL), 0);
	uint8_t buf[BS];
	for (int n = 0; n < GC_THREADS; n++)
		for (int i = 0; i < GC_TXNS; i++)
			for (int k = 0; k < 2; k++) {
				gc_image(&f, n, i, k, g[n].lsn[i], buf);
				ck_assert(home_equals(&f, gc_block(&f, n, i, k), 1, buf));
			}
	fx_free(&f);
}
END_TEST

/* Concurrent committers and a power cut at a random write or flush: every
 * commit that returned 0 is there, the others wholly or not at all, and
 * the ones there form a prefix in LSN order. */
static void group_crash_seed(uint64_t seed)
{
	struct fx f;
	static struct gc_thread g[GC_THREADS];
	const int ntxns = 40;
	bool first = seed == 500;

	fx_init(&f, 16 * MIB, seed % 2 ? 64 * BS : 0);
	journal_test_fail_after(f.j, (int64_t)(splitmix(&seed) % 150));
	gc_run(&f, g, ntxns);
	blockdev_mem_crash_random(f.bd, (unsigned)seed);
	fx_reopen(&f);
	ck_assert_int_eq(journal_replay(f.j, NULL, NULL), 0);

	uint64_t max_present = 0, min_absent = UINT64_MAX;
	uint8_t buf[BS];
	int committed = 0;
	for (int n = 0; n < GC_THREADS; n++)
		for (int i = 0; i < ntxns; i++) {
			bool there[2];
			for (int k = 0; k < 2; k++) {
				gc_image(&f, n, i, k, g[n].lsn[i], buf);
				there[k] = home_equals(&f, gc_block(&f, n, i, k), 1, buf);
				if (!there[k])
					ck_assert(home_is_zero(&f, gc_block(&f, n, i, k), 1));
			}
			ck_assert_int_eq(there[0], there[1]);
			if (g[n].result[i] == 0) {
				committed++;
				ck_assert_msg(there[0], "thread %d txn %d committed but lost", n, i);
			}
			if (g[n].result[i] == 1 || g[n].lsn[i] == 0)
				continue; /* never began */
			if (there[0])
				max_present = MAX(max_present, g[n].lsn[i]);
			else
				min_absent = MIN(min_absent, g[n].lsn[i]);
		}
	ck_assert_uint_lt(max_present, min_absent);
	if (first)
		fprintf(stderr, "group crash: %d commits returned before the cut\n", committed);
	fx_free(&f);
}

START_TEST(test_group_crash)
{
	for (int k = 0; k < 5; k++)
		group_crash_seed(500 + (uint64_t)_i * 5 + (uint64_t)k);
}
END_TEST

/* With deferred flush a commit is durable only after journal_sync(): a
 * power cut before it loses the batch whole (nothing torn), one after it
 * loses nothing; a checkpoint flushes the log before writing home. */
START_TEST(test_deferred_flush)
{
	struct fx f;
	struct journal_info in;
	fx_init(&f, 64 * MIB, 0);
	uint8_t b1[BS], b2[BS], b3[BS];
	journal_set_deferred_flush(f.j, true);

	/* The first transaction after open moves the LSNs on (a flush). */
	commit_one(&f, f.home + 3, 1, 20, b3);
	ck_assert_int_eq(journal_sync(f.j), 0);

	/* Committed, not synced, cut: gone, and the journal is consistent. */
	uint64_t txns, blocks, flushes = blockdev_flush_count(f.bd);
	commit_one(&f, f.home, 1, 21, b1);
	commit_one(&f, f.home + 1, 1, 22, b2);
	ck_assert_uint_eq(blockdev_flush_count(f.bd), flushes);
	blockdev_mem_crash(f.bd);
	fx_reopen(&f);
	/* Only the synced warm-up transaction is there. */
	journal_get_info(f.j, &in);
	ck_assert_uint_eq(in.pending_txns, 1);
	ck_assert_int_eq(journal_replay(f.j, &txns, &blocks), 0);
	ck_assert(home_is_zero(&f, f.home, 1));
	ck_assert(home_is_zero(&f, f.home + 1, 1));

	/* Committed and synced (one flush for both), cut: both replayed. */
	journal_set_deferred_flush(f.j, true);
	commit_one(&f, f.home + 3, 1, 20, b3);
	ck_assert_int_eq(journal_sync(f.j), 0);
	commit_one(&f, f.home, 1, 23, b1);
	commit_one(&f, f.home + 1, 1, 24, b2);
	flushes = blockdev_flush_count(f.bd);
	ck_assert_int_eq(journal_sync(f.j), 0);
	ck_assert_uint_eq(blockdev_flush_count(f.bd), flushes + 1);
	ck_assert_int_eq(journal_sync(f.j), 0);
	ck_assert_uint_eq(blockdev_flush_count(f.bd), flushes + 1);
	blockdev_mem_crash(f.bd);
	fx_reopen(&f);
	ck_assert_int_eq(journal_replay(f.j, &txns, &blocks), 0);
	ck_assert(home_equals(&f, f.home, 1, b1));
	ck_assert(home_equals(&f, f.home + 1, 1, b2));

	/* A checkpoint of unsynced commits makes them durable first. */
	journal_set_deferred_flush(f.j, true);
	commit_one(&f, f.home + 2, 1, 25, b3);
	ck_assert_int_eq(journal_checkpoint(f.j), 0);
	blockdev_mem_crash(f.bd);
	fx_reopen(&f);
	ck_assert(!journal_needs_replay(f.j));
	ck_assert(home_equals(&f, f.home + 2, 1, b3));
	fx_free(&f);
}
END_TEST

static Suite *journal_suite(void)
{
	Suite *s = suite_create("journal");
	TCase *tc;

	tc = tcase_create("basics");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_format_info);
	tcase_add_test(tc, test_commit_replay);
	tcase_add_test(tc, test_uncommitted_not_applied);
	tcase_add_test(tc, test_abort_leaves_no_gap);
	tcase_add_test(tc, test_replace_in_txn);
	tcase_add_test(tc, test_bad_args);
	tcase_add_test(tc, test_deferred_flush);
	suite_add_tcase(s, tc);

	tc = tcase_create("shapes");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_multi_descriptor);
	tcase_add_test(tc, test_multi_block);
	tcase_add_test(tc, test_wraparound);
	tcase_add_test(tc, test_auto_checkpoint);
	tcase_add_test(tc, test_e2big);
	tcase_add_test(tc, test_lookup);
	tcase_add_test(tc, test_scan);
	suite_add_tcase(s, tc);

	tc = tcase_create("damage");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_bad_superblock);
	tcase_add_loop_test(tc, test_damaged_log, 0, DMG_COUNT);
	tcase_add_test(tc, test_stale_txn_not_revived);
	suite_add_tcase(s, tc);

	tc = tcase_create("crash");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_crash_random, 0, 300 / CRASH_SEEDS_PER_RUN);
	tcase_add_loop_test(tc, test_replay_twice, 0, 60 / CRASH_SEEDS_PER_RUN);
	suite_add_tcase(s, tc);

	tc = tcase_create("threads");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_lsn_order);
	tcase_add_test(tc, test_group_commit);
	tcase_add_loop_test(tc, test_group_crash, 0, 6);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(journal_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
