/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "btree.h"
#include "journal.h"
#include "metatxn.h"
#include "meta.h"
#include "record.h"
#include "runlist.h"
#include "util.h"

/* Files up to this size keep their data in their record. */
#define FS_RESIDENT_MAX 2048u
/* The MFT grows by this many records at a time. */
#define FS_MFT_GROW_RECORDS 256u

static void count_bad(void *ud, uint64_t blocknr, int err)
{
	(*(unsigned *)ud)++;
}

/* Loads the MFT, the record bitmap and (unless rdonly) the allocator from
 * what the volume holds now (through the journal in journaled mode). */
static int load_state(struct csv_fs *fs, bool rdonly, char *err, size_t errlen)
{
	struct csv_volume *v = fs->v;
	struct csv_bitmap cmap = { 0 };
	unsigned bad = 0;
	int r;

	r = mft_load(v, &fs->nv.io, &fs->mft, NULL, err, errlen);
	if (r < 0)
		return r;
	r = bitmap_load(v, v->g.rbitmap_block, v->g.rbitmap_blocks, CSV_MAGIC_RBITMAP, v->g.max_records,
			&fs->rmap, count_bad, &bad);
	if (r == 0 && !rdonly) {
		r = bitmap_load(v, v->g.cbitmap_block, v->g.cbitmap_blocks, CSV_MAGIC_CBITMAP,
				v->g.total_clusters, &cmap, count_bad, &bad);
		if (r >= 0 && bad == 0)
			r = alloc_new_take(&cmap, v->g.mft_zone_lcn, v->g.mft_zone_clusters, &fs->alloc);
		bitmap_free(&cmap);
		fs->nv.alloc = fs->alloc;
	}
	if (r >= 0 && bad) {
		snprintf(err, errlen, "%u bitmap blocks are damaged; run fsck.csvfs", bad);
		r = -EUCLEAN;
	}
	return r < 0 ? r : 0;
}

static void unload_state(struct csv_fs *fs)
{
	if (fs->mft.v)
		mft_release(&fs->mft);
	memset(&fs->mft, 0, sizeof(fs->mft));
	bitmap_free(&fs->rmap);
	if (fs->alloc)
		alloc_free_all(fs->alloc);
	fs->alloc = fs->nv.alloc = NULL;
}

int fs_open(struct csv_volume *v, bool rdonly, struct csv_fs **ret, char *err, size_t errlen)
{
	struct csv_fs *fs = calloc(1, sizeof(*fs));
	int r;

	if (!fs)
		return -ENOMEM;
	fs->v = v;
	fs->rec = malloc(CSV_RECORD_SIZE);
	fs->dir = malloc(CSV_RECORD_SIZE);
	if (!fs->rec || !fs->dir) {
		fs_close(fs);
		return -ENOMEM;
	}
	nodeio_vol_init(&fs->nv, v, NULL, 0);
	r = load_state(fs, rdonly, err, errlen);
	if (r < 0) {
		fs_close(fs);
		return r;
	}
	*ret = fs;
	return 0;
}

/* Remembers a metadata cluster freed in journaled mode: until a checkpoint
 * writes home the transactions that still hold its old contents, replay
 * could write them over file data placed there. */
static void quarantine_cluster(void *ud, uint64_t lcn)
{
	struct csv_fs *fs = ud;
	if (fs->nquarantine == fs->quarantine_cap) {
		size_t ncap = fs->quarantine_cap ? fs->quarantine_cap * 2 : 64;
		uint64_t *n = realloc(fs->quarantine, ncap * sizeof(*n));
		if (!n) {
			fs->quarantine_lost = true; /* then every data allocation checkpoints */
			return;
		}
		fs->quarantine = n;
		fs->quarantine_cap = ncap;
	}
	fs->quarantine[fs->nquarantine++] = lcn;
}

int fs_open_journaled(struct csv_volume *v, struct csv_journal *j, struct csv_fs **ret, char *err,
		      size_t errlen)
{
	struct csv_fs *fs;
	struct csv_metatxn *mt;
	int r = metatxn_attach(v, j, &mt);
	if (r < 0)
		return r;
	r = fs_open(v, false, &fs, err, errlen);
	if (r == 0)
		r = bitmap_init(&fs->rmap_dirty, v->g.rbitmap_blocks);
	if (r < 0) {
		if (r != -ENOMEM || !fs)
			fs = NULL;
		fs_close(fs);
		metatxn_detach(mt);
		return r;
	}
	fs->journal = j;
	fs->mt = mt;
	fs->nv.on_free = quarantine_cluster;
	fs->nv.on_free_ud = fs;
	*ret = fs;
	return 0;
}

/* Writes home what the journal holds and forgets the quarantine. */
static int fs_checkpoint(struct csv_fs *fs)
{
	int r = journal_checkpoint(fs->journal);
	if (r == 0) {
		fs->nquarantine = 0;
		fs->quarantine_lost = false;
	}
	return r;
}

int fs_sync(struct csv_fs *fs)
{
	int r = 0;
	if (fs->journal)
		return fs_checkpoint(fs);
	if (fs->alloc)
		r = bitmap_store(fs->v, fs->v->g.cbitmap_block, CSV_MAGIC_CBITMAP, alloc_bitmap(fs->alloc), 0);
	if (r == 0)
		r = bitmap_store(fs->v, fs->v->g.rbitmap_block, CSV_MAGIC_RBITMAP, &fs->rmap, 0);
	if (r == 0)
		r = blockdev_flush(fs->v->bd);
	return r;
}

void fs_close(struct csv_fs *fs)
{
	if (!fs)
		return;
	unload_state(fs);
	if (fs->mt)
		metatxn_detach(fs->mt);
	bitmap_free(&fs->rmap_dirty);
	free(fs->quarantine);
	free(fs->rec);
	free(fs->dir);
	free(fs);
}

/* ---- operations as transactions ----------------------------------------- */

static int op_begin(struct csv_fs *fs)
{
	return fs->mt ? metatxn_begin(fs->mt) : 0;
}

/* Adds the bitmap blocks the operation changed to its transaction. */
static int store_dirty_bitmaps(struct csv_fs *fs)
{
	const struct csv_geometry *g = &fs->v->g;
	int r = 0;
	for (uint64_t i = alloc_next_dirty(fs->alloc, 0); i != UINT64_MAX && r == 0;
	     i = alloc_next_dirty(fs->alloc, i + 1))
		r = bitmap_store_block(fs->v, g->cbitmap_block, CSV_MAGIC_CBITMAP, alloc_bitmap(fs->alloc), i, 0);
	for (uint64_t i = bitmap_find_next_set(&fs->rmap_dirty, 0); i < fs->rmap_dirty.nbits && r == 0;
	     i = bitmap_find_next_set(&fs->rmap_dirty, i + 1))
		r = bitmap_store_block(fs->v, g->rbitmap_block, CSV_MAGIC_RBITMAP, &fs->rmap, i, 0);
	return r;
}

/* Ends an operation: journaled, commits it when it succeeded, or drops it
 * and reloads the in-memory state from the last commit when it failed. */
static int op_end(struct csv_fs *fs, int r)
{
	char err[200];
	if (!fs->mt)
		return r;
	if (r >= 0) {
		r = store_dirty_bitmaps(fs);
		if (r == 0)
			r = metatxn_commit(fs->mt);
		else
			metatxn_abort(fs->mt);
	} else {
		metatxn_abort(fs->mt);
	}
	alloc_clear_dirty(fs->alloc);
	bitmap_clear_range(&fs->rmap_dirty, 0, fs->rmap_dirty.nbits);
	if (r < 0) {
		unload_state(fs);
		int rl = load_state(fs, false, err, sizeof(err));
		if (rl < 0)
			return rl;
	}
	return r;
}

/* Sets or clears a record's bit in the record bitmap. */
static void rmap_mark(struct csv_fs *fs, uint64_t recno, bool used)
{
	if (used)
		bitmap_set_range(&fs->rmap, recno, 1);
	else
		bitmap_clear_range(&fs->rmap, recno, 1);
	if (fs->rmap_dirty.nbits)
		bitmap_set_range(&fs->rmap_dirty, recno / CSV_BITMAP_BITS, 1);
}

/* Before file data goes to clusters [lcn, lcn + len): checkpoints when one
 * of them held metadata the journal may still replay. */
static int fs_checkpoint_if_quarantined(struct csv_fs *fs, uint64_t lcn, uint64_t len)
{
	if (!fs->journal)
		return 0;
	if (fs->quarantine_lost)
		return fs_checkpoint(fs);
	for (size_t i = 0; i < fs->nquarantine; i++)
		if (fs->quarantine[i] >= lcn && fs->quarantine[i] < lcn + len)
			return fs_checkpoint(fs);
	return 0;
}

static int read_rec(struct csv_fs *fs, uint64_t recno, void *buf)
{
	return mft_read(&fs->mft, recno, buf, NULL, 0);
}

static int write_rec(struct csv_fs *fs, uint64_t recno, void *buf)
{
	return mft_write(&fs->mft, recno, buf, 0);
}

/* The directory tree over a directory record in buf. */
static int dir_tree(struct csv_fs *fs, void *buf, struct csv_btree *ret)
{
	struct csv_d_attr *a = record_attr_find(buf, CSV_ATTR_INDEX_ROOT, 0);
	if (!record_in_use(buf) || !a)
		return -ENOTDIR;
	*ret = (struct csv_btree){ .io = &fs->nv.io, .owner = record_ref(buf), .root = attr_payload(a),
				   .root_size = CSV_INDEX_ROOT_BYTES };
	return 0;
}

static int check_name(const char *name, size_t *ret_len)
{
	size_t len = strlen(name);
	if (len == 0 || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -EINVAL;
	if (len > CSV_NAME_MAX)
		return -ENAMETOOLONG;
	*ret_len = len;
	return 0;
}

int fs_lookup(struct csv_fs *fs, uint64_t dir, const char *name, uint64_t *ret_ref)
{
	struct csv_btree t;
	uint8_t type;
	int r = read_rec(fs, dir, fs->dir);
	if (r == 0)
		r = dir_tree(fs, fs->dir, &t);
	if (r == 0)
		r = btree_lookup(&t, name, strlen(name), ret_ref, &type);
	return r;
}

int fs_resolve(struct csv_fs *fs, const char *path, uint64_t *ret_recno)
{
	uint64_t cur = CSV_RECNO_ROOT, ref;
	char comp[CSV_NAME_MAX + 1];

	if (path[0] != '/')
		return -EINVAL;
	for (const char *p = path; *p;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		size_t n = strcspn(p, "/");
		if (n > CSV_NAME_MAX)
			return -ENAMETOOLONG;
		memcpy(comp, p, n);
		comp[n] = '\0';
		p += n;
		if (strcmp(comp, ".") == 0)
			continue;
		if (strcmp(comp, "..") == 0) {
			int r = read_rec(fs, cur, fs->rec);
			if (r < 0)
				return r;
			cur = CSV_REF_RECNO(le64_to_cpu(((struct csv_d_record *)fs->rec)->parent));
			continue;
		}
		int r = fs_lookup(fs, cur, comp, &ref);
		if (r < 0)
			return r;
		cur = CSV_REF_RECNO(ref);
	}
	*ret_recno = cur;
	return 0;
}

/* Adds FS_MFT_GROW_RECORDS free records to the MFT, from the MFT zone. */
static int grow_mft(struct csv_fs *fs)
{
	const struct csv_geometry *g = &fs->v->g;
	uint32_t rpc = g->cluster_size / CSV_RECORD_SIZE;
	uint64_t have = runlist_clusters(&fs->mft.rl);
	uint64_t want = DIV_ROUND_UP(FS_MFT_GROW_RECORDS, rpc), lcn, got;
	const struct csv_run *last = &fs->mft.rl.runs[fs->mft.rl.count - 1];
	_cleanup_free_ uint8_t *blocks = NULL;
	char err[200];
	int r;

	if (fs->mft.nrecords >= g->max_records)
		return -ENOSPC;
	r = alloc_extent(fs->alloc, ALLOC_MFT, want, last->lcn + last->length, &lcn, &got);
	if (r < 0)
		return r;
	blocks = calloc(got * rpc, CSV_RECORD_SIZE);
	if (!blocks)
		return -ENOMEM;
	for (uint64_t i = 0; i < got * rpc; i++) {
		uint8_t *b = blocks + i * CSV_RECORD_SIZE;
		record_init(b, have * rpc + i, 0, 0, 0);
		meta_seal(b, CSV_RECORD_SIZE, CSV_MAGIC_RECORD, lcn_to_block(g, lcn) + i, g->uuid, 0);
	}
	r = volume_write_blocks(fs->v, lcn_to_block(g, lcn), (uint32_t)(got * rpc), 1, blocks);
	if (r < 0)
		return r;
	/* Then record 0 maps them. */
	r = read_rec(fs, CSV_RECNO_MFT, fs->rec);
	if (r < 0)
		return r;
	r = runlist_insert(&fs->mft.rl, have, lcn, (uint32_t)got, 0);
	if (r < 0)
		return r;
	r = record_data_set_runs(fs->rec, &fs->mft.rl, &fs->nv.io, CSV_REF(0, 1));
	if (r < 0)
		return r;
	struct csv_d_record *m = (void *)fs->rec;
	m->size = m->valid_data_length = cpu_to_le64((have + got) * g->cluster_size);
	r = write_rec(fs, CSV_RECNO_MFT, fs->rec);
	if (r < 0)
		return r;
	mft_release(&fs->mft);
	return mft_load(fs->v, &fs->nv.io, &fs->mft, NULL, err, sizeof(err));
}

/* Finds a free record, growing the MFT when it is full, and initializes
 * it in buf as in use with the next sequence number. */
static int alloc_record(struct csv_fs *fs, uint16_t flags, uint32_t mode, void *buf, uint64_t *ret_recno)
{
	uint64_t recno = bitmap_find_next_clear(&fs->rmap, CSV_FIRST_USER_RECORD);
	int r;

	if (recno >= fs->v->g.max_records)
		return -ENOSPC;
	while (recno >= fs->mft.nrecords) {
		r = grow_mft(fs);
		if (r < 0)
			return r;
	}
	r = read_rec(fs, recno, buf);
	if (r < 0)
		return r;
	if (record_in_use(buf))
		return -EUCLEAN; /* the record bitmap says free */
	uint16_t seq = (uint16_t)(le16_to_cpu(((struct csv_d_record *)buf)->seq) + 1);
	record_init(buf, recno, seq ? seq : 1, CSV_REC_IN_USE | flags, mode);
	rmap_mark(fs, recno, true);
	*ret_recno = recno;
	return 0;
}

static void touch(void *rec, uint64_t t, bool mtime)
{
	struct csv_d_record *r = rec;
	r->ctime_ns = cpu_to_le64(t);
	if (mtime)
		r->mtime_ns = cpu_to_le64(t);
}

/* Reads directory dir into fs->dir for adding name; -EEXIST when the
 * name is taken. */
static int open_dir_for_new_name(struct csv_fs *fs, uint64_t dir, const char *name, size_t len,
				 struct csv_btree *ret)
{
	uint64_t ref;
	uint8_t type;
	int r = read_rec(fs, dir, fs->dir);
	if (r == 0)
		r = dir_tree(fs, fs->dir, ret);
	if (r < 0)
		return r;
	r = btree_lookup(ret, name, len, &ref, &type);
	if (r == 0)
		return -EEXIST;
	return r == -ENOENT ? 0 : r;
}

static int do_create(struct csv_fs *fs, uint64_t dir, const char *name, uint32_t mode, uint32_t uid, uint32_t gid,
	      uint32_t rdev, uint64_t *ret_recno)
{
	struct csv_btree t;
	uint64_t recno, now = realtime_ns();
	size_t len;
	bool is_dir = S_ISDIR(mode);
	int r;

	if (mode_to_dtype(mode) == DT_UNKNOWN)
		return -EINVAL;
	r = check_name(name, &len);
	if (r == 0)
		r = open_dir_for_new_name(fs, dir, name, len, &t);
	if (r < 0)
		return r;

	r = alloc_record(fs, is_dir ? CSV_REC_DIRECTORY : 0, mode, fs->rec, &recno);
	if (r < 0)
		return r;
	struct csv_d_record *rec = (void *)fs->rec;
	rec->nlink = cpu_to_le32(is_dir ? 2 : 1);
	rec->uid = cpu_to_le32(uid);
	rec->gid = cpu_to_le32(gid);
	rec->rdev = cpu_to_le32(rdev);
	rec->atime_ns = rec->mtime_ns = rec->ctime_ns = rec->btime_ns = cpu_to_le64(now);
	rec->parent = cpu_to_le64(t.owner);
	r = record_name_add(rec, t.owner, name, len);
	if (r == 0 && is_dir) {
		void *root;
		r = record_attr_add(rec, CSV_ATTR_INDEX_ROOT, CSV_INDEX_ROOT_BYTES, &root);
		if (r == 0)
			btree_root_init(root, CSV_INDEX_ROOT_BYTES);
	}
	if (r == 0)
		r = write_rec(fs, recno, rec);
	if (r == 0)
		r = btree_insert(&t, name, len, record_ref(rec), mode_to_dtype(mode));
	if (r < 0)
		return r;
	if (is_dir) {
		struct csv_d_record *d = (void *)fs->dir;
		d->nlink = cpu_to_le32(le32_to_cpu(d->nlink) + 1);
	}
	touch(fs->dir, now, true);
	r = write_rec(fs, dir, fs->dir);
	if (r == 0 && ret_recno)
		*ret_recno = recno;
	return r;
}

static int do_link(struct csv_fs *fs, uint64_t recno, uint64_t dir, const char *name)
{
	struct csv_btree t;
	size_t len;
	int r;

	r = check_name(name, &len);
	if (r == 0)
		r = read_rec(fs, recno, fs->rec);
	if (r < 0)
		return r;
	struct csv_d_record *rec = (void *)fs->rec;
	if (!record_in_use(rec))
		return -ENOENT;
	if (S_ISDIR(le32_to_cpu(rec->mode)))
		return -EPERM;
	r = open_dir_for_new_name(fs, dir, name, len, &t);
	if (r < 0)
		return r;
	r = record_name_add(rec, t.owner, name, len);
	if (r == -ENOSPC)
		return -EMLINK;
	rec->nlink = cpu_to_le32(le32_to_cpu(rec->nlink) + 1);
	touch(rec, realtime_ns(), false);
	if (r == 0)
		r = write_rec(fs, recno, rec);
	if (r == 0)
		r = btree_insert(&t, name, len, record_ref(rec), mode_to_dtype(le32_to_cpu(rec->mode)));
	if (r == 0) {
		touch(fs->dir, realtime_ns(), true);
		r = write_rec(fs, dir, fs->dir);
	}
	return r;
}

/* Frees a record and everything it maps. */
static int free_record(struct csv_fs *fs, uint64_t recno, void *buf)
{
	struct csv_runlist rl;
	struct csv_btree t;
	int r;

	if (dir_tree(fs, buf, &t) == 0) {
		r = btree_destroy(&t);
		if (r < 0)
			return r;
	}
	r = record_data_get_runs(buf, &fs->nv.io, record_ref(buf), fs->v->g.total_clusters, &rl);
	if (r == 0) {
		for (size_t i = 0; i < rl.count && r == 0; i++)
			r = alloc_release(fs->alloc, rl.runs[i].lcn, rl.runs[i].length);
		for (size_t i = 0; i < rl.n_ext && r == 0; i++)
			r = nodeio_free(&fs->nv.io, rl.ext_blocks[i]);
		runlist_free(&rl);
		if (r < 0)
			return r;
	} else if (r != -EINVAL) {
		return r;
	}
	record_init(buf, recno, le16_to_cpu(((struct csv_d_record *)buf)->seq), 0, 0);
	r = write_rec(fs, recno, buf);
	if (r == 0)
		rmap_mark(fs, recno, false);
	return r;
}

static int do_unlink(struct csv_fs *fs, uint64_t dir, const char *name)
{
	struct csv_btree t, sub;
	uint64_t ref, old, count;
	uint8_t type;
	size_t len;
	int r;

	r = check_name(name, &len);
	if (r == 0)
		r = read_rec(fs, dir, fs->dir);
	if (r == 0)
		r = dir_tree(fs, fs->dir, &t);
	if (r == 0)
		r = btree_lookup(&t, name, len, &ref, &type);
	if (r == 0)
		r = read_rec(fs, CSV_REF_RECNO(ref), fs->rec);
	if (r < 0)
		return r;
	if (record_ref(fs->rec) != ref)
		return -ESTALE;
	struct csv_d_record *rec = (void *)fs->rec;
	bool is_dir = dir_tree(fs, rec, &sub) == 0;
	if (is_dir) {
		r = btree_count(&sub, &count);
		if (r < 0)
			return r;
		if (count)
			return -ENOTEMPTY;
	}
	r = btree_delete(&t, name, len, &old);
	if (r < 0)
		return r;
	struct csv_d_record *d = (void *)fs->dir;
	if (is_dir)
		d->nlink = cpu_to_le32(le32_to_cpu(d->nlink) - 1);
	touch(d, realtime_ns(), true);
	r = write_rec(fs, dir, d);
	if (r < 0)
		return r;
	(void)record_name_remove(rec, t.owner, name, len);
	uint32_t nlink = le32_to_cpu(rec->nlink);
	if (is_dir || nlink <= 1)
		return free_record(fs, CSV_REF_RECNO(ref), rec);
	rec->nlink = cpu_to_le32(nlink - 1);
	touch(rec, realtime_ns(), false);
	return write_rec(fs, CSV_REF_RECNO(ref), rec);
}

/* ---- data ---------------------------------------------------------------- */

/* Writes zeros to the LUN over [off, off + len) of the file's mapped,
 * written clusters (the gap between the old valid data length and a write
 * beyond it). */
static int zero_mapped(struct csv_fs *fs, const struct csv_runlist *rl, uint64_t off, uint64_t len)
{
	uint32_t cs = fs->v->g.cluster_size;
	_cleanup_free_ void *zero = NULL;

	for (size_t i = 0; i < rl->count; i++) {
		const struct csv_run *run = &rl->runs[i];
		if (run->flags & CSV_RUN_UNWRITTEN)
			continue;
		uint64_t rs = run->vcn * cs, re = (run->vcn + run->length) * cs;
		uint64_t s = MAX(rs, off), e = MIN(re, off + len);
		if (s >= e)
			continue;
		if (!zero && !(zero = calloc(1, 1u << 20)))
			return -ENOMEM;
		for (uint64_t p = s; p < e;) {
			size_t n = (size_t)MIN(e - p, 1u << 20);
			int r = blockdev_pwrite(fs->v->bd, zero, n, run->lcn * cs + (p - rs));
			if (r < 0)
				return r;
			p += n;
		}
	}
	return 0;
}

/* Writes into clusters [vcn, vcn + n) that start at lcn and held nothing
 * before: whole clusters, zeros around the caller's bytes. */
static int write_fresh(struct csv_fs *fs, uint64_t vcn, uint64_t lcn, uint64_t n, uint64_t off,
		       const uint8_t *buf, size_t len)
{
	uint32_t cs = fs->v->g.cluster_size;
	uint64_t start = vcn * cs, end = (vcn + n) * cs;
	_cleanup_free_ uint8_t *tmp = calloc(1, (size_t)MIN(end - start, 1u << 20));
	if (!tmp)
		return -ENOMEM;
	for (uint64_t p = start; p < end;) {
		size_t chunk = (size_t)MIN(end - p, 1u << 20);
		memset(tmp, 0, chunk);
		uint64_t s = MAX(p, off), e = MIN(p + chunk, off + len);
		if (s < e)
			memcpy(tmp + (s - p), buf + (s - off), e - s);
		int r = blockdev_pwrite(fs->v->bd, tmp, chunk, lcn * cs + (p - start));
		if (r < 0)
			return r;
		p += chunk;
	}
	return 0;
}

/* Writes through the run list, allocating holes. */
static int write_runs(struct csv_fs *fs, struct csv_runlist *rl, uint64_t off, const uint8_t *buf, size_t len)
{
	uint32_t cs = fs->v->g.cluster_size;
	uint64_t vcn = off / cs, last = (off + len - 1) / cs;
	int r;

	while (vcn <= last) {
		struct csv_run m;
		r = runlist_map(rl, vcn, &m);
		if (r < 0)
			return r;
		uint64_t n = MIN((uint64_t)m.length, last - vcn + 1);
		if (m.flags & CSV_RUNLIST_HOLE) {
			uint64_t lcn, got, goal = fs->v->g.data_lcn;
			for (size_t i = 0; i < rl->count; i++)
				if (rl->runs[i].vcn < vcn)
					goal = rl->runs[i].lcn + rl->runs[i].length;
			r = alloc_extent(fs->alloc, ALLOC_DATA, n, goal, &lcn, &got);
			if (r < 0)
				return r;
			r = fs_checkpoint_if_quarantined(fs, lcn, got);
			if (r == 0)
				r = runlist_insert(rl, vcn, lcn, (uint32_t)got, 0);
			if (r == 0)
				r = write_fresh(fs, vcn, lcn, got, off, buf, len);
			if (r < 0)
				return r;
			n = got;
		} else if (m.flags & CSV_RUN_UNWRITTEN) {
			r = write_fresh(fs, vcn, m.lcn, n, off, buf, len);
			if (r == 0)
				r = runlist_set_written(rl, vcn, (uint32_t)n);
			if (r < 0)
				return r;
		} else {
			uint64_t s = MAX(vcn * cs, off), e = MIN((vcn + n) * cs, off + len);
			r = blockdev_pwrite(fs->v->bd, buf + (s - off), e - s, m.lcn * cs + (s - vcn * cs));
			if (r < 0)
				return r;
		}
		vcn += n;
	}
	return 0;
}

static int do_write(struct csv_fs *fs, uint64_t recno, uint64_t off, const void *buf, size_t len)
{
	struct csv_runlist rl;
	int r;

	r = read_rec(fs, recno, fs->rec);
	if (r < 0)
		return r;
	struct csv_d_record *rec = (void *)fs->rec;
	if (!record_in_use(rec) || S_ISDIR(le32_to_cpu(rec->mode)))
		return -EISDIR;
	if (len == 0)
		return 0;
	uint64_t size = le64_to_cpu(rec->size), vdl = le64_to_cpu(rec->valid_data_length);
	uint64_t end = off + len;
	struct csv_d_attr *a = record_attr_find(rec, CSV_ATTR_DATA, 0);
	bool resident = !a || le16_to_cpu(((struct csv_d_attr_data *)attr_payload(a))->form) == CSV_DATA_RESIDENT;

	if (resident && MAX(end, size) <= FS_RESIDENT_MAX) {
		uint8_t data[FS_RESIDENT_MAX] = { 0 };
		if (a)
			memcpy(data, (uint8_t *)attr_payload(a) + sizeof(struct csv_d_attr_data), size);
		memcpy(data + off, buf, len);
		size = MAX(size, end);
		r = record_data_set_resident(rec, data, (uint32_t)size);
		if (r == 0) {
			rec->size = rec->valid_data_length = cpu_to_le64(size);
			touch(rec, realtime_ns(), true);
			r = write_rec(fs, recno, rec);
		}
		if (r != -ENOSPC)
			return r;
		r = read_rec(fs, recno, fs->rec); /* no room: go non-resident */
		if (r < 0)
			return r;
		a = record_attr_find(rec, CSV_ATTR_DATA, 0);
	}
	runlist_init(&rl);
	if (resident) {
		/* Move the resident bytes into clusters first. */
		uint8_t data[FS_RESIDENT_MAX];
		size_t have = a ? le32_to_cpu(((struct csv_d_attr_data *)attr_payload(a))->count) : 0;
		if (have) {
			memcpy(data, (uint8_t *)attr_payload(a) + sizeof(struct csv_d_attr_data), have);
			r = write_runs(fs, &rl, 0, data, have);
			if (r < 0)
				goto out;
		}
		vdl = have;
	} else {
		r = record_data_get_runs(rec, &fs->nv.io, record_ref(rec), fs->v->g.total_clusters, &rl);
		if (r < 0)
			return r;
	}
	if (off > vdl) {
		r = zero_mapped(fs, &rl, vdl, off - vdl);
		if (r < 0)
			goto out;
	}
	r = write_runs(fs, &rl, off, buf, len);
	if (r == 0 && fs->journal)
		r = blockdev_flush(fs->v->bd); /* the data is durable before the metadata naming it */
	if (r < 0) {
		/* Keep what was allocated before the failure mapped (beyond the
		 * valid data length, it reads as zeros). */
		if (record_data_set_runs(rec, &rl, &fs->nv.io, record_ref(rec)) == 0)
			(void)write_rec(fs, recno, rec);
		goto out;
	}
	r = record_data_set_runs(rec, &rl, &fs->nv.io, record_ref(rec));
	if (r < 0)
		goto out;
	rec->size = cpu_to_le64(MAX(size, end));
	rec->valid_data_length = cpu_to_le64(MAX(vdl, end));
	touch(rec, realtime_ns(), true);
	r = write_rec(fs, recno, rec);
out:
	runlist_free(&rl);
	return r;
}

int fs_read(struct csv_fs *fs, uint64_t recno, uint64_t off, void *buf, size_t len, size_t *ret_n)
{
	struct csv_runlist rl;
	uint32_t cs = fs->v->g.cluster_size;
	int r = read_rec(fs, recno, fs->rec);
	if (r < 0)
		return r;
	struct csv_d_record *rec = (void *)fs->rec;
	uint64_t size = le64_to_cpu(rec->size), vdl = le64_to_cpu(rec->valid_data_length);
	if (off >= size) {
		*ret_n = 0;
		return 0;
	}
	len = (size_t)MIN((uint64_t)len, size - off);
	memset(buf, 0, len);
	struct csv_d_attr *a = record_attr_find(rec, CSV_ATTR_DATA, 0);
	if (!a) {
		*ret_n = len;
		return 0;
	}
	struct csv_d_attr_data *d = attr_payload(a);
	if (le16_to_cpu(d->form) == CSV_DATA_RESIDENT) {
		uint64_t have = le32_to_cpu(d->count);
		if (off < have)
			memcpy(buf, (uint8_t *)d + sizeof(*d) + off, (size_t)MIN(len, have - off));
		*ret_n = len;
		return 0;
	}
	r = record_data_get_runs(rec, &fs->nv.io, record_ref(rec), fs->v->g.total_clusters, &rl);
	if (r < 0)
		return r;
	uint64_t limit = MIN(off + len, vdl);
	for (uint64_t p = off; p < limit;) {
		struct csv_run m;
		uint64_t vcn = p / cs;
		r = runlist_map(&rl, vcn, &m);
		if (r < 0)
			break;
		uint64_t e = MIN((vcn + m.length) * cs, limit);
		if (!(m.flags & (CSV_RUNLIST_HOLE | CSV_RUN_UNWRITTEN))) {
			r = blockdev_pread(fs->v->bd, (uint8_t *)buf + (p - off), e - p, m.lcn * cs + (p - vcn * cs));
			if (r < 0)
				break;
		}
		p = e;
	}
	runlist_free(&rl);
	if (r == 0)
		*ret_n = len;
	return r;
}

static int do_setxattr(struct csv_fs *fs, uint64_t recno, const char *name, const void *value, size_t len)
{
	size_t nl = strlen(name);
	struct csv_d_attr *a;
	struct csv_d_attr_xattr *x;
	int r;

	if (nl == 0 || nl > 255)
		return -ERANGE;
	if (len > UINT16_MAX)
		return -E2BIG;
	r = read_rec(fs, recno, fs->rec);
	if (r < 0)
		return r;
	for (unsigned i = 0; (a = record_attr_find(fs->rec, CSV_ATTR_XATTR, i)); i++) {
		x = attr_payload(a);
		if (le16_to_cpu(x->name_len) == nl && memcmp(x->data, name, nl) == 0) {
			record_attr_remove(fs->rec, a);
			break;
		}
	}
	r = record_attr_add(fs->rec, CSV_ATTR_XATTR, (uint32_t)(sizeof(*x) + nl + len), (void **)&x);
	if (r < 0)
		return r == -ENOSPC ? -ENOSPC : r;
	x->name_len = cpu_to_le16((uint16_t)nl);
	x->value_len = cpu_to_le16((uint16_t)len);
	memcpy(x->data, name, nl);
	memcpy(x->data + nl, value, len);
	touch(fs->rec, realtime_ns(), false);
	return write_rec(fs, recno, fs->rec);
}

/* ---- the public operations: one transaction each ------------------------ */

int fs_create(struct csv_fs *fs, uint64_t dir, const char *name, uint32_t mode, uint32_t uid, uint32_t gid,
	      uint32_t rdev, uint64_t *ret_recno)
{
	int r = op_begin(fs);
	return r < 0 ? r : op_end(fs, do_create(fs, dir, name, mode, uid, gid, rdev, ret_recno));
}

int fs_link(struct csv_fs *fs, uint64_t recno, uint64_t dir, const char *name)
{
	int r = op_begin(fs);
	return r < 0 ? r : op_end(fs, do_link(fs, recno, dir, name));
}

int fs_unlink(struct csv_fs *fs, uint64_t dir, const char *name)
{
	int r = op_begin(fs);
	return r < 0 ? r : op_end(fs, do_unlink(fs, dir, name));
}

int fs_write(struct csv_fs *fs, uint64_t recno, uint64_t off, const void *buf, size_t len)
{
	int r = op_begin(fs);
	return r < 0 ? r : op_end(fs, do_write(fs, recno, off, buf, len));
}

int fs_setxattr(struct csv_fs *fs, uint64_t recno, const char *name, const void *value, size_t len)
{
	int r = op_begin(fs);
	return r < 0 ? r : op_end(fs, do_setxattr(fs, recno, name, value, len));
}

int fs_symlink(struct csv_fs *fs, uint64_t dir, const char *name, const char *target, uint64_t *ret_recno)
{
	uint64_t recno;
	size_t len = strlen(target);
	if (len == 0 || len >= 4096)
		return -ENAMETOOLONG;
	int r = op_begin(fs);
	if (r < 0)
		return r;
	r = do_create(fs, dir, name, S_IFLNK | 0777, 0, 0, 0, &recno);
	if (r == 0)
		r = do_write(fs, recno, 0, target, len);
	if (r == 0 && ret_recno)
		*ret_recno = recno;
	return op_end(fs, r);
}
