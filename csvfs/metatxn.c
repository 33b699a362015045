/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "metatxn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "util.h"

/* A unit written in the open transaction, as the journal sealed it. */
struct unit_image {
	uint64_t blocknr;
	uint32_t nblocks;
	uint8_t *data;
};

struct csv_metatxn {
	struct csv_volume *v;
	struct csv_journal *j;
	struct csv_txn *txn;
	struct unit_image *imgs;
	size_t nimgs, cap;
	struct csv_meta_hook hook;
};

static struct unit_image *find_image(struct csv_metatxn *mt, uint64_t blocknr)
{
	for (size_t i = mt->nimgs; i > 0; i--)
		if (mt->imgs[i - 1].blocknr == blocknr)
			return &mt->imgs[i - 1];
	return NULL;
}

static void drop_images(struct csv_metatxn *mt)
{
	for (size_t i = 0; i < mt->nimgs; i++)
		free(mt->imgs[i].data);
	mt->nimgs = 0;
}

static int mt_patch(void *ctx, uint64_t blocknr, uint32_t nblocks, uint32_t unit, void *buf)
{
	struct csv_metatxn *mt = ctx;
	for (uint32_t off = 0; off < nblocks; off += unit) {
		uint8_t *dst = (uint8_t *)buf + (size_t)off * CSV_BLOCK_SIZE;
		struct unit_image *im = mt->txn ? find_image(mt, blocknr + off) : NULL;
		if (im && im->nblocks == unit) {
			memcpy(dst, im->data, (size_t)unit * CSV_BLOCK_SIZE);
			continue;
		}
		int r = journal_lookup(mt->j, blocknr + off, dst, unit);
		if (r < 0 && r != -ENOENT && r != -EINVAL)
			return r;
	}
	return 0;
}

static int mt_write(void *ctx, uint64_t blocknr, uint32_t nblocks, uint32_t unit, const void *buf)
{
	struct csv_metatxn *mt = ctx;
	if (!mt->txn)
		return -EINVAL; /* metadata changes happen inside transactions */
	for (uint32_t off = 0; off < nblocks; off += unit) {
		const uint8_t *src = (const uint8_t *)buf + (size_t)off * CSV_BLOCK_SIZE;
		size_t len = (size_t)unit * CSV_BLOCK_SIZE;
		struct unit_image *im = find_image(mt, blocknr + off);
		if (im && im->nblocks != unit)
			return -EINVAL;
		if (!im) {
			if (mt->nimgs == mt->cap) {
				size_t ncap = mt->cap ? mt->cap * 2 : 32;
				struct unit_image *n = realloc(mt->imgs, ncap * sizeof(*n));
				if (!n)
					return -ENOMEM;
				mt->imgs = n;
				mt->cap = ncap;
			}
			uint8_t *data = malloc(len);
			if (!data)
				return -ENOMEM;
			im = &mt->imgs[mt->nimgs++];
			*im = (struct unit_image){ .blocknr = blocknr + off, .nblocks = unit, .data = data };
		}
		memcpy(im->data, src, len);
		uint32_t magic = le32_to_cpu(((const struct csv_d_blkhdr *)src)->magic);
		int r = journal_txn_add(mt->txn, blocknr + off, unit, magic, im->data);
		if (r < 0)
			return r;
	}
	return 0;
}

int metatxn_attach(struct csv_volume *v, struct csv_journal *j, struct csv_metatxn **ret)
{
	struct csv_metatxn *mt = calloc(1, sizeof(*mt));
	if (!mt)
		return -ENOMEM;
	mt->v = v;
	mt->j = j;
	mt->hook = (struct csv_meta_hook){ .patch = mt_patch, .write = mt_write, .ctx = mt };
	v->hook = &mt->hook;
	*ret = mt;
	return 0;
}

void metatxn_detach(struct csv_metatxn *mt)
{
	if (!mt)
		return;
	metatxn_abort(mt);
	mt->v->hook = NULL;
	free(mt->imgs);
	free(mt);
}

int metatxn_begin(struct csv_metatxn *mt)
{
	if (mt->txn)
		return -EBUSY;
	return journal_txn_begin(mt->j, &mt->txn);
}

int metatxn_commit(struct csv_metatxn *mt)
{
	if (!mt->txn)
		return -EINVAL;
	int r = journal_txn_commit(mt->txn);
	mt->txn = NULL;
	drop_images(mt);
	return r;
}

void metatxn_abort(struct csv_metatxn *mt)
{
	if (!mt->txn)
		return;
	journal_txn_abort(mt->txn);
	mt->txn = NULL;
	drop_images(mt);
}

bool metatxn_active(const struct csv_metatxn *mt)
{
	return mt->txn != NULL;
}
