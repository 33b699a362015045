/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "runlist.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nodeio.h"
#include "util.h"

void runlist_init(struct csv_runlist *rl)
{
	memset(rl, 0, sizeof(*rl));
}

void runlist_free(struct csv_runlist *rl)
{
	if (!rl)
		return;
	free(rl->runs);
	free(rl->ext_blocks);
	runlist_init(rl);
}

static uint64_t run_end(const struct csv_run *r)
{
	return r->vcn + r->length;
}

/* Index of the first run that ends after vcn, or count. */
static size_t find_from(const struct csv_runlist *rl, uint64_t vcn)
{
	size_t lo = 0, hi = rl->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (run_end(&rl->runs[mid]) > vcn)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* Room for extra more runs, so that what follows cannot fail half way. */
static int reserve(struct csv_runlist *rl, size_t extra)
{
	if (rl->cap - rl->count >= extra)
		return 0;
	if (extra > SIZE_MAX / sizeof(struct csv_run) / 2 - rl->count)
		return -ENOMEM;
	size_t need = rl->count + extra, ncap = MAX(rl->cap * 2, (size_t)16);
	while (ncap < need)
		ncap *= 2;
	struct csv_run *n = realloc(rl->runs, ncap * sizeof(*n));
	if (!n)
		return -ENOMEM;
	rl->runs = n;
	rl->cap = ncap;
	return 0;
}

static void insert_at(struct csv_runlist *rl, size_t i, const struct csv_run *run)
{
	memmove(&rl->runs[i + 1], &rl->runs[i], (rl->count - i) * sizeof(*run));
	rl->runs[i] = *run;
	rl->count++;
}

/* Removes runs [i, j). */
static void remove_range(struct csv_runlist *rl, size_t i, size_t j)
{
	if (j <= i)
		return;
	memmove(&rl->runs[i], &rl->runs[j], (rl->count - j) * sizeof(rl->runs[0]));
	rl->count -= j - i;
}

static bool mergeable(const struct csv_run *a, const struct csv_run *b)
{
	return a->flags == b->flags && run_end(a) == b->vcn && a->lcn + a->length == b->lcn &&
	       (uint64_t)a->length + b->length <= UINT32_MAX;
}

/* Joins, left to right, the runs among [lo, hi] that continue each other. */
static void merge_range(struct csv_runlist *rl, size_t lo, size_t hi)
{
	if (rl->count == 0)
		return;
	hi = MIN(hi, rl->count - 1);
	if (lo >= hi)
		return;
	size_t w = lo;
	for (size_t r = lo + 1; r <= hi; r++) {
		if (mergeable(&rl->runs[w], &rl->runs[r]))
			rl->runs[w].length += rl->runs[r].length;
		else
			rl->runs[++w] = rl->runs[r];
	}
	remove_range(rl, w + 1, hi + 1);
}

/* Splits the run that has v strictly inside it in two at v. The caller
 * reserved room for one more run. */
static void split_at(struct csv_runlist *rl, uint64_t v)
{
	size_t i = find_from(rl, v);
	if (i >= rl->count || rl->runs[i].vcn >= v)
		return;
	struct csv_run *r = &rl->runs[i];
	uint64_t off = v - r->vcn;
	struct csv_run right = { v, r->lcn + off, (uint32_t)(r->length - off), r->flags };
	r->length = (uint32_t)off;
	insert_at(rl, i + 1, &right);
}

int runlist_map(const struct csv_runlist *rl, uint64_t vcn, struct csv_run *ret)
{
	if (vcn == UINT64_MAX)
		return -ERANGE;
	size_t i = find_from(rl, vcn);
	if (i < rl->count && rl->runs[i].vcn <= vcn) {
		const struct csv_run *r = &rl->runs[i];
		uint64_t off = vcn - r->vcn;
		*ret = (struct csv_run){ vcn, r->lcn + off, (uint32_t)(r->length - off), r->flags };
		return 0;
	}
	uint64_t next = i < rl->count ? rl->runs[i].vcn : UINT64_MAX;
	*ret = (struct csv_run){ vcn, 0, (uint32_t)MIN(next - vcn, (uint64_t)UINT32_MAX), CSV_RUNLIST_HOLE };
	return 0;
}

int runlist_insert(struct csv_runlist *rl, uint64_t vcn, uint64_t lcn, uint32_t len, uint32_t flags)
{
	if (len == 0 || lcn == 0 || (flags & ~CSV_RUNLIST_FLAGS_KNOWN) ||
	    vcn > UINT64_MAX - len || lcn > UINT64_MAX - len)
		return -EINVAL;
	size_t i = find_from(rl, vcn);
	if (i < rl->count && rl->runs[i].vcn < vcn + len)
		return -EEXIST;
	int r = reserve(rl, 1);
	if (r < 0)
		return r;
	struct csv_run run = { vcn, lcn, len, flags };
	insert_at(rl, i, &run);
	merge_range(rl, i ? i - 1 : 0, i + 1);
	return 0;
}

static void report(void (*freed)(void *ud, uint64_t lcn, uint64_t len), void *ud,
		   uint64_t lcn, uint64_t len)
{
	if (freed && len)
		freed(ud, lcn, len);
}

int runlist_punch(struct csv_runlist *rl, uint64_t vcn, uint64_t len,
		  void (*freed)(void *ud, uint64_t lcn, uint64_t len), void *ud)
{
	if (len == 0)
		return 0;
	uint64_t end = vcn > UINT64_MAX - len ? UINT64_MAX : vcn + len;
	size_t i = find_from(rl, vcn);
	if (i >= rl->count)
		return 0;

	struct csv_run *r = &rl->runs[i];
	if (r->vcn < vcn && run_end(r) > end) {
		/* Strictly inside one run: it becomes two. */
		int e = reserve(rl, 1);
		if (e < 0)
			return e;
		r = &rl->runs[i];
		struct csv_run right = { end, r->lcn + (end - r->vcn), (uint32_t)(run_end(r) - end), r->flags };
		report(freed, ud, r->lcn + (vcn - r->vcn), end - vcn);
		r->length = (uint32_t)(vcn - r->vcn);
		insert_at(rl, i + 1, &right);
		return 0;
	}
	if (r->vcn < vcn) {
		uint64_t off = vcn - r->vcn;
		report(freed, ud, r->lcn + off, r->length - off);
		r->length = (uint32_t)off;
		i++;
	}
	size_t j = i;
	for (; j < rl->count && run_end(&rl->runs[j]) <= end; j++)
		report(freed, ud, rl->runs[j].lcn, rl->runs[j].length);
	if (j < rl->count && rl->runs[j].vcn < end) {
		r = &rl->runs[j];
		uint64_t off = end - r->vcn;
		report(freed, ud, r->lcn, off);
		r->vcn = end;
		r->lcn += off;
		r->length -= (uint32_t)off;
	}
	remove_range(rl, i, j);
	return 0;
}

int runlist_truncate(struct csv_runlist *rl, uint64_t vcn,
		     void (*freed)(void *ud, uint64_t lcn, uint64_t len), void *ud)
{
	/* Never splits a run in two, so never allocates. */
	return runlist_punch(rl, vcn, UINT64_MAX, freed, ud);
}

int runlist_set_written(struct csv_runlist *rl, uint64_t vcn, uint64_t len)
{
	if (len == 0)
		return 0;
	uint64_t end = vcn > UINT64_MAX - len ? UINT64_MAX : vcn + len;
	int r = reserve(rl, 2);
	if (r < 0)
		return r;

	size_t i = find_from(rl, vcn);
	if (i < rl->count && rl->runs[i].vcn < vcn && (rl->runs[i].flags & CSV_RUN_UNWRITTEN))
		split_at(rl, vcn);
	size_t j = find_from(rl, end);
	if (j < rl->count && rl->runs[j].vcn < end && (rl->runs[j].flags & CSV_RUN_UNWRITTEN))
		split_at(rl, end);

	i = find_from(rl, vcn);
	size_t k = i;
	for (; k < rl->count && rl->runs[k].vcn < end; k++)
		rl->runs[k].flags &= ~(uint32_t)CSV_RUN_UNWRITTEN;
	if (k > i)
		merge_range(rl, i ? i - 1 : 0, k);
	return 0;
}

uint64_t runlist_clusters(const struct csv_runlist *rl)
{
	uint64_t n = 0;
	for (size_t i = 0; i < rl->count; i++)
		n += rl->runs[i].length;
	return n;
}

int runlist_validate(const struct csv_runlist *rl, uint64_t total_clusters, char *err, size_t errlen)
{
	for (size_t i = 0; i < rl->count; i++) {
		const struct csv_run *r = &rl->runs[i];
		if (r->length == 0)
			return err_unclean(err, errlen, "run %zu at vcn %" PRIu64 " has length 0", i, r->vcn);
		if (r->flags & ~CSV_RUNLIST_FLAGS_KNOWN)
			return err_unclean(err, errlen, "run %zu at vcn %" PRIu64 " has unknown flags 0x%x",
				    i, r->vcn, r->flags & ~CSV_RUNLIST_FLAGS_KNOWN);
		if (r->vcn > UINT64_MAX - r->length)
			return err_unclean(err, errlen, "run %zu at vcn %" PRIu64 " (+%u) goes past the last vcn",
				    i, r->vcn, r->length);
		if (r->lcn == 0 || r->lcn >= total_clusters || r->length > total_clusters - r->lcn)
			return err_unclean(err, errlen, "run %zu at vcn %" PRIu64 " maps clusters %" PRIu64 "+%u"
				    " outside the volume's %" PRIu64, i, r->vcn, r->lcn, r->length, total_clusters);
		if (i > 0 && r->vcn < run_end(&rl->runs[i - 1]))
			return err_unclean(err, errlen, "run %zu at vcn %" PRIu64 " overlaps or precedes run %zu at vcn %" PRIu64,
				    i, r->vcn, i - 1, rl->runs[i - 1].vcn);
	}
	return 0;
}

/* ---- Encoding -------------------------------------------------------------- */

static void put_run(void *d, const struct csv_run *r)
{
	struct csv_d_run x = {
		.vcn = cpu_to_le64(r->vcn),
		.lcn = cpu_to_le64(r->lcn),
		.length = cpu_to_le32(r->length),
		.flags = cpu_to_le32(r->flags),
	};
	memcpy(d, &x, sizeof(x));
}

static void get_run(const void *d, struct csv_run *r)
{
	struct csv_d_run x;
	memcpy(&x, d, sizeof(x));
	r->vcn = le64_to_cpu(x.vcn);
	r->lcn = le64_to_cpu(x.lcn);
	r->length = le32_to_cpu(x.length);
	r->flags = le32_to_cpu(x.flags);
}

static void put_header(void *payload, uint16_t form, uint32_t count)
{
	struct csv_d_attr_data h = {
		.form = cpu_to_le16(form),
		.count = cpu_to_le32(count),
	};
	memcpy(payload, &h, sizeof(h));
}

int runlist_drop_extent_blocks(struct csv_runlist *rl, struct csv_nodeio *io)
{
	/* From the end, so that rl->ext_blocks lists what is still held if
	 * a free fails. */
	while (rl->n_ext > 0) {
		int r = nodeio_free(io, rl->ext_blocks[rl->n_ext - 1]);
		if (r < 0)
			return r;
		rl->n_ext--;
	}
	free(rl->ext_blocks);
	rl->ext_blocks = NULL;
	return 0;
}

int runlist_encode(struct csv_runlist *rl, void *payload, size_t cap, size_t *ret_len,
		   struct csv_nodeio *io, uint64_t owner)
{
	const size_t hdr = sizeof(struct csv_d_attr_data);
	uint8_t *out = payload;
	int r;

	if (cap < hdr)
		return -EFBIG;
	if (rl->count <= UINT32_MAX && rl->count <= (cap - hdr) / sizeof(struct csv_d_run)) {
		r = runlist_drop_extent_blocks(rl, io);
		if (r < 0)
			return r;
		put_header(out, CSV_DATA_RUNS, (uint32_t)rl->count);
		for (size_t i = 0; i < rl->count; i++)
			put_run(out + hdr + i * sizeof(struct csv_d_run), &rl->runs[i]);
		*ret_len = hdr + rl->count * sizeof(struct csv_d_run);
		return 0;
	}

	size_t per = CSV_EXTENT_RUNS(io->node_size);
	if (per == 0 || io->node_size < sizeof(struct csv_d_extent_block))
		return -EINVAL;
	size_t nb = DIV_ROUND_UP(rl->count, per);
	if (nb > (cap - hdr) / sizeof(struct csv_d_extent_ref) || nb > UINT32_MAX)
		return -EFBIG;

	_cleanup_free_ uint8_t *buf = malloc(io->node_size);
	_cleanup_free_ uint64_t *blocks = malloc(nb * sizeof(uint64_t));
	if (!buf || !blocks)
		return -ENOMEM;
	size_t reuse = MIN(rl->n_ext, nb), got = reuse;
	if (reuse)
		memcpy(blocks, rl->ext_blocks, reuse * sizeof(uint64_t));
	for (; got < nb; got++) {
		r = nodeio_alloc(io, &blocks[got]);
		if (r < 0)
			goto undo;
	}

	for (size_t b = 0; b < nb; b++) {
		struct csv_d_extent_block *eb = (struct csv_d_extent_block *)(void *)buf;
		size_t first = b * per, n = MIN(per, rl->count - first);
		memset(buf, 0, io->node_size);
		eb->owner = cpu_to_le64(owner);
		eb->count = cpu_to_le32((uint32_t)n);
		for (size_t k = 0; k < n; k++)
			put_run(&eb->runs[k], &rl->runs[first + k]);
		r = nodeio_write(io, blocks[b], CSV_MAGIC_EXTENT, buf);
		if (r < 0)
			goto undo;
	}

	if (nb > rl->n_ext) {
		free(rl->ext_blocks);
		rl->ext_blocks = TAKE_PTR(blocks);
		rl->n_ext = nb;
	} else {
		/* The surplus, from the end: what a failure leaves in
		 * rl->ext_blocks is still allocated. */
		while (rl->n_ext > nb) {
			r = nodeio_free(io, rl->ext_blocks[rl->n_ext - 1]);
			if (r < 0)
				return r;
			rl->n_ext--;
		}
	}

	put_header(out, CSV_DATA_EXTENTS, (uint32_t)nb);
	for (size_t b = 0; b < nb; b++) {
		struct csv_d_extent_ref ref = {
			.first_vcn = cpu_to_le64(rl->runs[b * per].vcn),
			.blocknr = cpu_to_le64(rl->ext_blocks[b]),
		};
		memcpy(out + hdr + b * sizeof(ref), &ref, sizeof(ref));
	}
	*ret_len = hdr + nb * sizeof(struct csv_d_extent_ref);
	return 0;

undo:
	for (size_t k = reuse; k < got; k++)
		(void)nodeio_free(io, blocks[k]);
	return r;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static int cmp_u64p(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static int decode_extents(const uint8_t *p, uint32_t count, struct csv_nodeio *io, uint64_t owner,
			  struct csv_runlist *rl)
{
	const size_t hdr = sizeof(struct csv_d_attr_data);
	size_t per = CSV_EXTENT_RUNS(io->node_size);
	int r;

	if (count == 0)
		return -EUCLEAN;
	if (per == 0 || io->node_size < sizeof(struct csv_d_extent_block))
		return -EINVAL;

	_cleanup_free_ uint64_t *first = malloc(count * sizeof(uint64_t));
	_cleanup_free_ uint64_t *sorted = malloc(count * sizeof(uint64_t));
	rl->ext_blocks = malloc(count * sizeof(uint64_t));
	if (!first || !sorted || !rl->ext_blocks)
		return -ENOMEM;
	for (uint32_t k = 0; k < count; k++) {
		struct csv_d_extent_ref ref;
		memcpy(&ref, p + hdr + k * sizeof(ref), sizeof(ref));
		first[k] = le64_to_cpu(ref.first_vcn);
		rl->ext_blocks[k] = sorted[k] = le64_to_cpu(ref.blocknr);
		if (rl->ext_blocks[k] == 0 || (k > 0 && first[k] <= first[k - 1]))
			return -EUCLEAN;
	}
	rl->n_ext = count;
	qsort(sorted, count, sizeof(uint64_t), cmp_u64p);
	for (uint32_t k = 1; k < count; k++)
		if (sorted[k] == sorted[k - 1])
			return -EUCLEAN;

	_cleanup_free_ uint8_t *buf = malloc(io->node_size);
	if (!buf)
		return -ENOMEM;
	const struct csv_d_extent_block *eb = (const struct csv_d_extent_block *)(const void *)buf;
	for (uint32_t k = 0; k < count; k++) {
		r = nodeio_read(io, rl->ext_blocks[k], CSV_MAGIC_EXTENT, buf);
		if (r < 0)
			return r;
		uint32_t n = le32_to_cpu(eb->count);
		if (le64_to_cpu(eb->owner) != owner || le32_to_cpu(eb->reserved) != 0 ||
		    n == 0 || n > per)
			return -EUCLEAN;
		size_t used = sizeof(*eb) + n * sizeof(struct csv_d_run);
		if (!all_zero(buf + used, io->node_size - used))
			return -EUCLEAN;
		r = reserve(rl, n);
		if (r < 0)
			return r;
		for (uint32_t j = 0; j < n; j++) {
			struct csv_run run;
			get_run(&eb->runs[j], &run);
			if (run.vcn < first[k] || run.vcn > UINT64_MAX - run.length ||
			    (k + 1 < count && run_end(&run) > first[k + 1]))
				return -EUCLEAN;
			rl->runs[rl->count++] = run;
		}
	}
	return 0;
}

int runlist_decode(const void *payload, size_t len, struct csv_nodeio *io, uint64_t owner,
		   uint64_t total_clusters, struct csv_runlist *ret)
{
	const size_t hdr = sizeof(struct csv_d_attr_data);
	const uint8_t *p = payload;
	struct csv_d_attr_data h;
	struct csv_runlist rl;
	uint64_t need;
	int r;

	runlist_init(&rl);
	if (len < hdr)
		return -EUCLEAN;
	memcpy(&h, p, hdr);
	uint32_t count = le32_to_cpu(h.count);
	if (le16_to_cpu(h.reserved) != 0)
		return -EUCLEAN;

	switch (le16_to_cpu(h.form)) {
	case CSV_DATA_RESIDENT:
		return -EINVAL;
	case CSV_DATA_RUNS:
		need = hdr + (uint64_t)count * sizeof(struct csv_d_run);
		if (need > len || !all_zero(p + need, len - need))
			return -EUCLEAN;
		r = reserve(&rl, count);
		if (r < 0)
			return r;
		for (uint32_t i = 0; i < count; i++)
			get_run(p + hdr + i * sizeof(struct csv_d_run), &rl.runs[i]);
		rl.count = count;
		break;
	case CSV_DATA_EXTENTS:
		need = hdr + (uint64_t)count * sizeof(struct csv_d_extent_ref);
		if (need > len || !all_zero(p + need, len - need))
			return -EUCLEAN;
		r = decode_extents(p, count, io, owner, &rl);
		if (r < 0) {
			runlist_free(&rl);
			return r;
		}
		break;
	default:
		return -EUCLEAN;
	}

	r = runlist_validate(&rl, total_clusters, NULL, 0);
	if (r < 0) {
		runlist_free(&rl);
		return r;
	}
	*ret = rl;
	return 0;
}
