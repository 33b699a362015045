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
/* The largest file size (off_t). */
#define FS_MAX_SIZE ((uint64_t)INT64_MAX)
/* A write layout that extends a file preallocates at least this much. */
#define FS_PREALLOC_MIN (1u << 20)
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
	struct csv_fs *fs = NULL;
	struct csv_metatxn *mt;
	int r = metatxn_attach(v, j, &mt);
	if (r < 0)
		return r;
	r = fs_open(v, false, &fs, err, errlen);
	if (r == 0)
		r = bitmap_init(&fs->rmap_dirty, v->g.rbitmap_blocks);
	if (r < 0) {
		fs_close(fs); /* NULL when fs_open failed */
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

/* Reads record recno into buf when it holds a file (in use, not one of
 * the system's); -ENOENT otherwise. */
static int read_file(struct csv_fs *fs, uint64_t recno, void *buf)
{
	int r = read_rec(fs, recno, buf);
	if (r < 0)
		return r;
	uint16_t flags = le16_to_cpu(((struct csv_d_record *)buf)->flags);
	return (flags & CSV_REC_IN_USE) && !(flags & CSV_REC_SYSTEM) ? 0 : -ENOENT;
}

/* read_file() for a regular file: -EISDIR for a directory, -EINVAL for
 * another kind of file. */
static int read_regular(struct csv_fs *fs, uint64_t recno, void *buf)
{
	int r = read_file(fs, recno, buf);
	if (r < 0)
		return r;
	uint32_t mode = le32_to_cpu(((struct csv_d_record *)buf)->mode);
	if (S_ISDIR(mode))
		return -EISDIR;
	return S_ISREG(mode) ? 0 : -EINVAL;
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

/* Reads directory dir into buf and returns its tree. */
static int open_dir(struct csv_fs *fs, uint64_t dir, void *buf, struct csv_btree *ret)
{
	int r = read_rec(fs, dir, buf);
	return r < 0 ? r : dir_tree(fs, buf, ret);
}

/* Looks name up in t and reads the file it names into buf; -ESTALE when
 * the entry names a record that was reused. */
static int read_entry(struct csv_fs *fs, struct csv_btree *t, const char *name, size_t len, void *buf,
		      uint64_t *ret_ref)
{
	uint64_t ref;
	uint8_t type;
	int r = btree_lookup(t, name, len, &ref, &type);
	if (r == 0)
		r = read_rec(fs, CSV_REF_RECNO(ref), buf);
	if (r < 0)
		return r;
	if (record_ref(buf) != ref || !record_in_use(buf))
		return -ESTALE;
	*ret_ref = ref;
	return 0;
}

int fs_lookup(struct csv_fs *fs, uint64_t dir, const char *name, uint64_t *ret_ref)
{
	struct csv_btree t;
	uint8_t type;
	int r = open_dir(fs, dir, fs->dir, &t);
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
	/* The fresh records go to the LUN itself, not through the journal
	 * (whose log may be smaller than they are): nothing refers to them
	 * until record 0 maps them, which commits after they are durable. */
	r = fs_checkpoint_if_quarantined(fs, lcn, got);
	if (r == 0)
		r = volume_write_raw(fs->v, lcn_to_block(g, lcn), (uint32_t)(got * rpc), blocks);
	if (r == 0 && fs->journal)
		r = blockdev_flush(fs->v->bd);
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
	int r = open_dir(fs, dir, fs->dir, ret);
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
		r = read_file(fs, recno, fs->rec);
	if (r < 0)
		return r;
	struct csv_d_record *rec = (void *)fs->rec;
	if (le16_to_cpu(rec->flags) & CSV_REC_ORPHAN)
		return -ENOENT; /* as linkat(2) of a file with no links left */
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

/* Whether the file in rec is a directory; -ENOTEMPTY for one that holds
 * entries. */
static int check_removable(struct csv_fs *fs, void *rec, bool *ret_is_dir)
{
	struct csv_btree sub;
	uint64_t count;
	bool is_dir = dir_tree(fs, rec, &sub) == 0;
	if (is_dir) {
		int r = btree_count(&sub, &count);
		if (r < 0)
			return r;
		if (count)
			return -ENOTEMPTY;
	}
	*ret_is_dir = is_dir;
	return 0;
}

/* Takes the link (parent, name) away from the file in rec, whose entry is
 * gone already: a directory, or a file with no link left, is freed, or
 * kept as an orphan when keep_open (files only). */
static int drop_link(struct csv_fs *fs, void *rec, uint64_t parent, const char *name, size_t len, bool keep_open)
{
	struct csv_d_record *r = rec;
	uint64_t recno = le64_to_cpu(r->recno);
	uint32_t nlink = le32_to_cpu(r->nlink);
	bool is_dir = S_ISDIR(le32_to_cpu(r->mode));

	(void)record_name_remove(rec, parent, name, len);
	if (is_dir || (nlink <= 1 && !keep_open))
		return free_record(fs, recno, rec);
	if (nlink <= 1)
		r->flags = cpu_to_le16(le16_to_cpu(r->flags) | CSV_REC_ORPHAN);
	r->nlink = cpu_to_le32(nlink ? nlink - 1 : 0);
	touch(rec, realtime_ns(), false);
	return write_rec(fs, recno, rec);
}

static int do_unlink(struct csv_fs *fs, uint64_t dir, const char *name, bool keep_open)
{
	struct csv_btree t;
	uint64_t ref, old;
	size_t len;
	bool is_dir;
	int r;

	r = check_name(name, &len);
	if (r == 0)
		r = open_dir(fs, dir, fs->dir, &t);
	if (r == 0)
		r = read_entry(fs, &t, name, len, fs->rec, &ref);
	if (r == 0)
		r = check_removable(fs, fs->rec, &is_dir);
	if (r == 0)
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
	return drop_link(fs, fs->rec, t.owner, name, len, keep_open);
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

/* Maps up to n clusters of the hole at vcn to one fresh extent (best fit,
 * after the run before it) with run flags; *ret_lcn and *ret_len say where
 * and how much. */
static int alloc_hole(struct csv_fs *fs, struct csv_runlist *rl, uint64_t vcn, uint64_t n, uint32_t flags,
		      uint64_t *ret_lcn, uint64_t *ret_len)
{
	uint64_t lcn, got, goal = fs->v->g.data_lcn;
	for (size_t i = 0; i < rl->count && rl->runs[i].vcn < vcn; i++)
		goal = rl->runs[i].lcn + rl->runs[i].length;
	int r = alloc_extent(fs->alloc, ALLOC_DATA, n, goal, &lcn, &got);
	if (r < 0)
		return r;
	r = fs_checkpoint_if_quarantined(fs, lcn, got);
	if (r == 0)
		r = runlist_insert(rl, vcn, lcn, (uint32_t)got, flags);
	if (r < 0) {
		(void)alloc_release(fs->alloc, lcn, got);
		return r;
	}
	*ret_lcn = lcn;
	*ret_len = got;
	return 0;
}

/* Allocates every hole of clusters [vcn, end) as runs with flags. */
static int alloc_holes(struct csv_fs *fs, struct csv_runlist *rl, uint64_t vcn, uint64_t end, uint32_t flags)
{
	while (vcn < end) {
		struct csv_run m;
		uint64_t lcn, n;
		int r = runlist_map(rl, vcn, &m);
		if (r < 0)
			return r;
		n = MIN((uint64_t)m.length, end - vcn);
		if (m.flags & CSV_RUNLIST_HOLE) {
			r = alloc_hole(fs, rl, vcn, n, flags, &lcn, &n);
			if (r < 0)
				return r;
		}
		vcn += n;
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
			uint64_t lcn;
			r = alloc_hole(fs, rl, vcn, n, 0, &lcn, &n);
			if (r == 0)
				r = write_fresh(fs, vcn, lcn, n, off, buf, len);
			if (r < 0)
				return r;
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

/* Stores rl as the runs of the file in rec and writes the record. After a
 * failure (r < 0) it still does, so that clusters allocated before the
 * failure stay mapped (unwritten or beyond the valid data length, they
 * read as zeros), and returns r. */
static int store_runs(struct csv_fs *fs, void *rec, struct csv_runlist *rl, int r)
{
	int rs = record_data_set_runs(rec, rl, &fs->nv.io, record_ref(rec));
	if (rs == 0)
		rs = write_rec(fs, le64_to_cpu(((struct csv_d_record *)rec)->recno), rec);
	return r < 0 ? r : rs;
}

/* The DATA payload of the file in rec when its bytes are resident, else NULL. */
static struct csv_d_attr_data *resident_data(void *rec)
{
	struct csv_d_attr *a = record_attr_find(rec, CSV_ATTR_DATA, 0);
	struct csv_d_attr_data *d = a ? attr_payload(a) : NULL;
	return d && le16_to_cpu(d->form) == CSV_DATA_RESIDENT ? d : NULL;
}

/* Decodes the runs of the file in rec into rl (initialized by the caller).
 * Resident bytes are first written to fresh clusters (durably, in
 * journaled mode), which rl then maps; the caller stores rl in the record. */
static int data_runs(struct csv_fs *fs, void *rec, struct csv_runlist *rl)
{
	struct csv_d_attr_data *d = resident_data(rec);
	if (!d)
		return record_data_get_runs(rec, &fs->nv.io, record_ref(rec), fs->v->g.total_clusters, rl);
	uint32_t have = le32_to_cpu(d->count);
	int r = have ? write_runs(fs, rl, 0, (const uint8_t *)d + sizeof(*d), have) : 0;
	if (r == 0 && have && fs->journal)
		r = blockdev_flush(fs->v->bd);
	return r;
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
	r = data_runs(fs, rec, &rl);
	if (r < 0)
		goto out;
	if (off > vdl) {
		r = zero_mapped(fs, &rl, vdl, off - vdl);
		if (r < 0)
			goto out;
	}
	r = write_runs(fs, &rl, off, buf, len);
	if (r == 0 && fs->journal)
		r = blockdev_flush(fs->v->bd); /* the data is durable before the metadata naming it */
	if (r == 0) {
		rec->size = cpu_to_le64(MAX(size, end));
		rec->valid_data_length = cpu_to_le64(MAX(vdl, end));
		touch(rec, realtime_ns(), true);
	}
	r = store_runs(fs, rec, &rl, r);
out:
	runlist_free(&rl);
	return r;
}

/* Reads up to len bytes at off of the file in rec, as fs_read(). */
static int read_data(struct csv_fs *fs, void *rec_buf, uint64_t off, void *buf, size_t len, size_t *ret_n)
{
	struct csv_runlist rl;
	uint32_t cs = fs->v->g.cluster_size;
	struct csv_d_record *rec = rec_buf;
	uint64_t size = le64_to_cpu(rec->size), vdl = le64_to_cpu(rec->valid_data_length);
	int r;

	if (off >= size) {
		*ret_n = 0;
		return 0;
	}
	len = (size_t)MIN((uint64_t)len, size - off);
	memset(buf, 0, len);
	struct csv_d_attr_data *d = resident_data(rec);
	if (d) {
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

int fs_read(struct csv_fs *fs, uint64_t recno, uint64_t off, void *buf, size_t len, size_t *ret_n)
{
	int r = read_rec(fs, recno, fs->rec);
	return r < 0 ? r : read_data(fs, fs->rec, off, buf, len, ret_n);
}

/* ---- attributes ------------------------------------------------------------ */

/* The attributes of the file in rec_buf. */
static void fill_attr(const void *rec_buf, struct fs_attr *ret)
{
	const struct csv_d_record *r = rec_buf;
	*ret = (struct fs_attr){
		.ino = record_ref(r),
		.mode = le32_to_cpu(r->mode),
		.nlink = le32_to_cpu(r->nlink),
		.uid = le32_to_cpu(r->uid),
		.gid = le32_to_cpu(r->gid),
		.rdev = le32_to_cpu(r->rdev),
		.size = le64_to_cpu(r->size),
		.valid_data_length = le64_to_cpu(r->valid_data_length),
		.alloc_clusters = le64_to_cpu(r->alloc_clusters),
		.atime_ns = (int64_t)le64_to_cpu(r->atime_ns),
		.mtime_ns = (int64_t)le64_to_cpu(r->mtime_ns),
		.ctime_ns = (int64_t)le64_to_cpu(r->ctime_ns),
		.btime_ns = (int64_t)le64_to_cpu(r->btime_ns),
	};
}

int fs_getattr(struct csv_fs *fs, uint64_t recno, struct fs_attr *ret)
{
	int r = read_file(fs, recno, fs->rec);
	if (r == 0)
		fill_attr(fs->rec, ret);
	return r;
}

int fs_getattr_ref(struct csv_fs *fs, uint64_t ref, struct fs_attr *ret)
{
	int r = read_file(fs, CSV_REF_RECNO(ref), fs->rec);
	if (r == -ENOENT || (r == 0 && record_ref(fs->rec) != ref))
		return -ESTALE;
	if (r == 0)
		fill_attr(fs->rec, ret);
	return r;
}

/* -EFBIG when [off, off + len) goes beyond the largest file size. */
static int check_range(uint64_t off, uint64_t len)
{
	return off > FS_MAX_SIZE || len > FS_MAX_SIZE - off ? -EFBIG : 0;
}

/* Where release_clusters() gives clusters back, and its first error. */
struct release_ctx {
	struct csv_alloc *alloc;
	int err;
};

/* runlist_punch() callback: gives freed clusters back to the allocator. */
static void release_clusters(void *ud, uint64_t lcn, uint64_t len)
{
	struct release_ctx *c = ud;
	int r = alloc_release(c->alloc, lcn, len);
	if (r < 0 && c->err == 0)
		c->err = r;
}

/* Writes zeros over [start, end) of the file where it is mapped, written
 * and below its valid data length vdl (the partial clusters at the edge of
 * a truncate or a punched hole), durably in journaled mode. */
static int zero_valid(struct csv_fs *fs, const struct csv_runlist *rl, uint64_t start, uint64_t end, uint64_t vdl)
{
	end = MIN(end, vdl);
	if (start >= end)
		return 0;
	int r = zero_mapped(fs, rl, start, end - start);
	if (r == 0 && fs->journal)
		r = blockdev_flush(fs->v->bd);
	return r;
}

/* Unmaps the whole clusters of bytes [start, end) of rl, releasing them,
 * and zeroes the partial clusters at its edges (end UINT64_MAX: to the end
 * of the file, a truncate). */
static int punch_range(struct csv_fs *fs, struct csv_runlist *rl, uint64_t start, uint64_t end, uint64_t vdl)
{
	uint32_t cs = fs->v->g.cluster_size;
	uint64_t first = DIV_ROUND_UP(start, cs), last = end / cs;
	struct release_ctx c = { fs->alloc, 0 };

	if (first >= last)
		return zero_valid(fs, rl, start, end, vdl);
	int r = zero_valid(fs, rl, start, first * cs, vdl);
	if (r == 0)
		r = zero_valid(fs, rl, last * cs, end, vdl);
	if (r == 0)
		r = runlist_punch(rl, first, last - first, release_clusters, &c);
	return r < 0 ? r : c.err;
}

/* Sets the size of the regular file in rec (the caller writes the record):
 * resident bytes stay resident when they fit; shrinking frees the clusters
 * beyond the new size and zeroes the rest of the last one; growing leaves
 * a gap that reads as zeros (beyond the valid data length). */
static int set_size(struct csv_fs *fs, void *rec_buf, uint64_t size)
{
	struct csv_d_record *rec = rec_buf;
	uint64_t old = le64_to_cpu(rec->size), vdl = le64_to_cpu(rec->valid_data_length);
	struct csv_d_attr_data *d = resident_data(rec);
	struct csv_runlist rl;
	int r;

	if (size > FS_MAX_SIZE)
		return -EFBIG;
	if (d && size <= FS_RESIDENT_MAX) {
		uint8_t data[FS_RESIDENT_MAX] = { 0 };
		memcpy(data, (uint8_t *)d + sizeof(*d), MIN(le32_to_cpu(d->count), size));
		r = record_data_set_resident(rec, data, (uint32_t)size);
		if (r == 0) {
			rec->size = rec->valid_data_length = cpu_to_le64(size);
			return 0;
		}
		if (r != -ENOSPC)
			return r;
	}
	if (record_attr_find(rec, CSV_ATTR_DATA, 0)) {
		runlist_init(&rl);
		r = data_runs(fs, rec, &rl);
		if (r == 0 && size < old)
			r = punch_range(fs, &rl, size, UINT64_MAX, vdl);
		if (r == 0)
			r = record_data_set_runs(rec, &rl, &fs->nv.io, record_ref(rec));
		runlist_free(&rl);
		if (r < 0)
			return r;
		if (size == 0) /* nothing left: small writes may go resident again */
			record_attr_remove(rec, record_attr_find(rec, CSV_ATTR_DATA, 0));
	}
	rec->size = cpu_to_le64(size);
	rec->valid_data_length = cpu_to_le64(MIN(vdl, size));
	return 0;
}

static int do_setattr(struct csv_fs *fs, uint64_t recno, unsigned valid, const struct fs_attr *in,
		      struct fs_attr *ret)
{
	const unsigned known = FS_SET_MODE | FS_SET_UID | FS_SET_GID | FS_SET_SIZE | FS_SET_ATIME | FS_SET_MTIME |
			       FS_SET_CTIME;
	uint64_t now = realtime_ns();
	int r;

	if (valid & ~known)
		return -EINVAL;
	r = read_file(fs, recno, fs->rec);
	if (r < 0)
		return r;
	struct csv_d_record *rec = (void *)fs->rec;
	uint32_t mode = le32_to_cpu(rec->mode);
	if (valid & FS_SET_SIZE) {
		if (S_ISDIR(mode))
			return -EISDIR;
		if (!S_ISREG(mode))
			return -EINVAL;
		uint64_t old = le64_to_cpu(rec->size);
		r = set_size(fs, rec, in->size);
		if (r < 0)
			return r;
		if (in->size != old)
			rec->mtime_ns = cpu_to_le64(now);
	}
	if (valid & FS_SET_MODE)
		rec->mode = cpu_to_le32((mode & S_IFMT) | (in->mode & 07777));
	if (valid & FS_SET_UID)
		rec->uid = cpu_to_le32(in->uid);
	if (valid & FS_SET_GID)
		rec->gid = cpu_to_le32(in->gid);
	if (valid & FS_SET_ATIME)
		rec->atime_ns = cpu_to_le64((uint64_t)in->atime_ns);
	if (valid & FS_SET_MTIME)
		rec->mtime_ns = cpu_to_le64((uint64_t)in->mtime_ns);
	if (valid) {
		rec->ctime_ns = cpu_to_le64(valid & FS_SET_CTIME ? (uint64_t)in->ctime_ns : now);
		r = write_rec(fs, recno, rec);
	}
	if (r == 0 && ret)
		fill_attr(rec, ret);
	return r;
}

/* ---- renames ----------------------------------------------------------------- */

/* Moves the link (from, fname) of the file in rec to (to, tname); a
 * directory also gets its new parent. */
static int move_name(void *rec, uint64_t from, const char *fname, size_t flen, uint64_t to, const char *tname,
		     size_t tlen, uint64_t now)
{
	struct csv_d_record *r = rec;
	int ret = record_name_remove(rec, from, fname, flen);
	if (ret == -ENOENT)
		return -EUCLEAN; /* a directory entry names a file that does not name it back */
	if (ret == 0)
		ret = record_name_add(rec, to, tname, tlen);
	if (ret < 0)
		return ret;
	if (S_ISDIR(le32_to_cpu(r->mode)))
		r->parent = cpu_to_le64(to);
	touch(rec, now, false);
	return 0;
}

/* -EINVAL when directory dir is directory recno or lies under it: walks
 * the parents from dir up to the root, reading them into buf. */
static int check_not_under(struct csv_fs *fs, uint64_t dir, uint64_t recno, void *buf)
{
	for (uint64_t depth = 0;; depth++) {
		if (dir == recno)
			return -EINVAL;
		if (dir == CSV_RECNO_ROOT)
			return 0;
		if (depth >= fs->mft.nrecords)
			return -EUCLEAN; /* the parents make a loop */
		int r = read_rec(fs, dir, buf);
		if (r < 0)
			return r;
		dir = CSV_REF_RECNO(le64_to_cpu(((struct csv_d_record *)buf)->parent));
	}
}

/* Adds delta (which may be negative) to a record's link count. */
static void add_links(void *rec, int delta)
{
	struct csv_d_record *r = rec;
	r->nlink = cpu_to_le32((uint32_t)((int64_t)le32_to_cpu(r->nlink) + delta));
}

static int do_rename(struct csv_fs *fs, uint64_t olddir, const char *oldname, uint64_t newdir, const char *newname,
		     unsigned flags)
{
	const unsigned known = FS_RENAME_NOREPLACE | FS_RENAME_EXCHANGE | FS_RENAME_TARGET_OPEN;
	bool exchange = flags & FS_RENAME_EXCHANGE, have_dst, sdir, ddir = false;
	struct csv_btree ot, nt, *ntp = olddir == newdir ? &ot : &nt;
	_cleanup_free_ uint8_t *bufs = NULL;
	uint64_t sref, dref, old, now = realtime_ns();
	size_t olen, nlen;
	int r;

	if ((flags & ~known) || (exchange && flags != FS_RENAME_EXCHANGE))
		return -EINVAL;
	r = check_name(oldname, &olen);
	if (r == 0)
		r = check_name(newname, &nlen);
	if (r < 0)
		return r;
	bufs = malloc(3 * CSV_RECORD_SIZE);
	if (!bufs)
		return -ENOMEM;
	/* The old directory in fs->dir, the new one in its own buffer unless
	 * it is the same, the file in fs->rec, the target in dst. */
	uint8_t *src = fs->rec, *dst = bufs, *ndbuf = olddir == newdir ? fs->dir : bufs + CSV_RECORD_SIZE;
	uint8_t *scratch = bufs + 2 * CSV_RECORD_SIZE;

	r = open_dir(fs, olddir, fs->dir, &ot);
	if (r == 0)
		r = read_entry(fs, &ot, oldname, olen, src, &sref);
	if (r == 0 && olddir != newdir)
		r = open_dir(fs, newdir, ndbuf, &nt);
	if (r < 0)
		return r;
	r = read_entry(fs, ntp, newname, nlen, dst, &dref);
	if (r < 0 && r != -ENOENT)
		return r;
	have_dst = r == 0;
	if (have_dst && (flags & FS_RENAME_NOREPLACE))
		return -EEXIST;
	if (!have_dst && exchange)
		return -ENOENT;
	if (have_dst && dref == sref)
		return 0; /* two names of one file */
	sdir = S_ISDIR(le32_to_cpu(((struct csv_d_record *)src)->mode));
	ddir = have_dst && S_ISDIR(le32_to_cpu(((struct csv_d_record *)dst)->mode));
	r = 0;
	if (sdir && olddir != newdir)
		r = check_not_under(fs, newdir, CSV_REF_RECNO(sref), scratch);
	if (r == 0 && exchange && ddir && olddir != newdir)
		r = check_not_under(fs, olddir, CSV_REF_RECNO(dref), scratch);
	if (r < 0)
		return r;
	if (have_dst && !exchange) {
		if (sdir != ddir)
			return sdir ? -ENOTDIR : -EISDIR;
		bool is_dir;
		r = check_removable(fs, dst, &is_dir);
		if (r < 0)
			return r;
	}

	uint8_t stype = mode_to_dtype(le32_to_cpu(((struct csv_d_record *)src)->mode));
	uint8_t dtype = have_dst ? mode_to_dtype(le32_to_cpu(((struct csv_d_record *)dst)->mode)) : 0;
	r = move_name(src, ot.owner, oldname, olen, ntp->owner, newname, nlen, now);
	if (r == 0 && exchange)
		r = move_name(dst, ntp->owner, newname, nlen, ot.owner, oldname, olen, now);
	if (r == 0)
		r = have_dst ? btree_replace(ntp, newname, nlen, sref, stype, &old)
			     : btree_insert(ntp, newname, nlen, sref, stype);
	if (r == 0)
		r = exchange ? btree_replace(&ot, oldname, olen, dref, dtype, &old) : btree_delete(&ot, oldname, olen, &old);
	if (r < 0)
		return r;
	/* Each directory's link count follows the subdirectories it gains or loses. */
	add_links(fs->dir, -(int)sdir + (int)(exchange && ddir));
	add_links(ndbuf, (int)sdir - (int)ddir);
	touch(fs->dir, now, true);
	touch(ndbuf, now, true);
	r = write_rec(fs, CSV_REF_RECNO(sref), src);
	if (r == 0)
		r = write_rec(fs, olddir, fs->dir);
	if (r == 0 && olddir != newdir)
		r = write_rec(fs, newdir, ndbuf);
	if (r == 0 && exchange)
		r = write_rec(fs, CSV_REF_RECNO(dref), dst);
	else if (r == 0 && have_dst)
		r = drop_link(fs, dst, ntp->owner, newname, nlen, flags & FS_RENAME_TARGET_OPEN);
	return r;
}

/* ---- listings, space, symbolic links --------------------------------------- */

int fs_readdir_after(struct csv_fs *fs, uint64_t dir, const void *after, size_t after_len, fs_readdir_fn fn,
		     void *ud)
{
	struct csv_btree t;
	if (after && (after_len == 0 || after_len > CSV_NAME_MAX))
		return -EINVAL;
	int r = open_dir(fs, dir, fs->dir, &t);
	return r < 0 ? r : btree_iterate(&t, after, after ? after_len : 0, fn, ud);
}

int fs_readdir(struct csv_fs *fs, uint64_t dir, fs_readdir_fn fn, void *ud)
{
	return fs_readdir_after(fs, dir, NULL, 0, fn, ud);
}

int fs_statfs(struct csv_fs *fs, struct fs_statfs *ret)
{
	const struct csv_geometry *g = &fs->v->g;
	if (!fs->alloc)
		return -EROFS;
	*ret = (struct fs_statfs){
		.cluster_size = g->cluster_size,
		.name_max = CSV_NAME_MAX,
		.total_clusters = g->total_clusters,
		.free_clusters = alloc_free_clusters(fs->alloc),
		.total_records = g->max_records,
		.free_records = g->max_records - bitmap_count_set(&fs->rmap, 0, g->max_records),
	};
	return 0;
}

int fs_readlink(struct csv_fs *fs, uint64_t recno, char *buf, size_t size, size_t *ret_len)
{
	int r = read_file(fs, recno, fs->rec);
	if (r < 0)
		return r;
	if (!S_ISLNK(le32_to_cpu(((struct csv_d_record *)fs->rec)->mode)))
		return -EINVAL;
	return read_data(fs, fs->rec, 0, buf, size, ret_len);
}

/* ---- layouts and preallocation ----------------------------------------------- */

/* Describes bytes [start, end) of rl as extents in out (at most max;
 * returns how many), leaving holes out. Unwritten runs, and written ones
 * from zero_from on (a reader's valid data length), are flagged
 * FS_EXTENT_UNWRITTEN. */
static size_t map_extents(const struct csv_runlist *rl, uint32_t cs, uint64_t start, uint64_t end,
			  uint64_t zero_from, struct fs_extent *out, size_t max)
{
	size_t n = 0;
	for (uint64_t p = start; p < end;) {
		struct csv_run m;
		uint64_t vcn = p / cs;
		if (runlist_map(rl, vcn, &m) < 0)
			break;
		uint64_t e = MIN((vcn + m.length) * cs, end), lun = m.lcn * cs + (p - vcn * cs);
		uint32_t flags = (m.flags & CSV_RUN_UNWRITTEN) || p >= zero_from ? FS_EXTENT_UNWRITTEN : 0;
		if (!flags && e > zero_from)
			e = zero_from;
		if (m.flags & CSV_RUNLIST_HOLE) {
			p = e;
			continue;
		}
		struct fs_extent *last = n ? &out[n - 1] : NULL;
		if (last && last->flags == flags && last->file_offset + last->length == p &&
		    last->lun_offset + last->length == lun) {
			last->length += e - p;
		} else if (n < max) {
			out[n++] = (struct fs_extent){ .file_offset = p, .lun_offset = lun, .length = e - p, .flags = flags };
		} else {
			break;
		}
		p = e;
	}
	return n;
}

/* fs_layout_get() for reading: nothing changes, so no transaction. */
static int layout_read(struct csv_fs *fs, uint64_t recno, uint64_t off, uint64_t len, struct fs_extent *out,
		       size_t max, size_t *ret_n)
{
	struct csv_runlist rl;
	int r = read_regular(fs, recno, fs->rec);
	if (r < 0)
		return r;
	if (resident_data(fs->rec))
		return -EOPNOTSUPP;
	runlist_init(&rl);
	r = record_data_get_runs(fs->rec, &fs->nv.io, record_ref(fs->rec), fs->v->g.total_clusters, &rl);
	if (r == 0)
		*ret_n = map_extents(&rl, fs->v->g.cluster_size, off, off + len,
				     le64_to_cpu(((struct csv_d_record *)fs->rec)->valid_data_length), out, max);
	runlist_free(&rl);
	return r;
}

static int do_layout_write(struct csv_fs *fs, uint64_t recno, uint64_t off, uint64_t len, struct fs_extent *out,
			   size_t max, size_t *ret_n)
{
	uint32_t cs = fs->v->g.cluster_size;
	struct csv_runlist rl;
	int r = read_regular(fs, recno, fs->rec);
	if (r < 0)
		return r;
	struct csv_d_record *rec = (void *)fs->rec;
	uint64_t size = le64_to_cpu(rec->size), vcn = off / cs, end = DIV_ROUND_UP(off + len, cs), pend = end;
	if (len == 0) {
		*ret_n = 0;
		return 0;
	}
	if (off + len > size) /* a growing file: preallocate after the write, from plenty of space only */
		pend = end + MIN(DIV_ROUND_UP(MAX((uint64_t)FS_PREALLOC_MIN, size / 4), cs),
				 alloc_free_clusters(fs->alloc) / 8);
	bool moved = resident_data(rec) != NULL;
	runlist_init(&rl);
	r = data_runs(fs, rec, &rl);
	if (r < 0)
		goto out;
	uint64_t had = runlist_clusters(&rl);
	r = alloc_holes(fs, &rl, vcn, end, CSV_RUN_UNWRITTEN);
	if (r == 0 && pend > end) {
		r = alloc_holes(fs, &rl, end, pend, CSV_RUN_UNWRITTEN);
		if (r == -ENOSPC)
			r = 0; /* preallocation is best effort */
	}
	if (r < 0 || moved || runlist_clusters(&rl) != had)
		r = store_runs(fs, rec, &rl, r);
	if (r == 0)
		*ret_n = map_extents(&rl, cs, vcn * cs, pend * cs, UINT64_MAX, out, max);
out:
	runlist_free(&rl);
	return r;
}

static int do_layout_commit(struct csv_fs *fs, uint64_t recno, uint64_t new_size, uint64_t new_vdl,
			    int64_t mtime_ns, const struct fs_range *written, size_t n)
{
	uint32_t cs = fs->v->g.cluster_size;
	uint64_t now = realtime_ns();
	struct csv_runlist rl;
	int r = read_regular(fs, recno, fs->rec);
	if (r < 0)
		return r;
	struct csv_d_record *rec = (void *)fs->rec;
	if (new_size > FS_MAX_SIZE)
		return -EFBIG;
	if (resident_data(rec))
		return -EINVAL; /* no layout was handed out for it */
	runlist_init(&rl);
	r = record_data_get_runs(rec, &fs->nv.io, record_ref(rec), fs->v->g.total_clusters, &rl);
	for (size_t i = 0; i < n && r == 0; i++) {
		uint64_t vcn = written[i].offset / cs;
		r = check_range(written[i].offset, written[i].length);
		if (r == 0 && written[i].length)
			r = runlist_set_written(&rl, vcn, DIV_ROUND_UP(written[i].offset + written[i].length, cs) - vcn);
	}
	if (r == 0)
		r = record_data_set_runs(rec, &rl, &fs->nv.io, record_ref(rec));
	runlist_free(&rl);
	if (r < 0)
		return r;
	uint64_t size = MAX(le64_to_cpu(rec->size), new_size);
	rec->size = cpu_to_le64(size);
	rec->valid_data_length = cpu_to_le64(MIN(MAX(le64_to_cpu(rec->valid_data_length), new_vdl), size));
	rec->mtime_ns = cpu_to_le64(mtime_ns ? (uint64_t)mtime_ns : now);
	rec->ctime_ns = cpu_to_le64(now);
	return write_rec(fs, recno, rec);
}

static int do_fallocate(struct csv_fs *fs, uint64_t recno, unsigned mode, uint64_t off, uint64_t len)
{
	uint32_t cs = fs->v->g.cluster_size;
	bool punch = mode & FS_FALLOC_PUNCH_HOLE;
	struct csv_runlist rl;
	int r;

	if ((mode & ~(unsigned)(FS_FALLOC_KEEP_SIZE | FS_FALLOC_PUNCH_HOLE)) ||
	    (punch && !(mode & FS_FALLOC_KEEP_SIZE)))
		return -EOPNOTSUPP;
	if (len == 0)
		return -EINVAL;
	r = check_range(off, len);
	if (r == 0)
		r = read_regular(fs, recno, fs->rec);
	if (r < 0)
		return r;
	struct csv_d_record *rec = (void *)fs->rec;
	uint64_t size = le64_to_cpu(rec->size), end = off + len;
	struct csv_d_attr_data *d = resident_data(rec);
	touch(rec, realtime_ns(), punch || (!(mode & FS_FALLOC_KEEP_SIZE) && end > size));
	if (punch && d) {
		uint32_t have = le32_to_cpu(d->count);
		if (off < have)
			memset((uint8_t *)d + sizeof(*d) + off, 0, (size_t)MIN(len, have - off));
		return write_rec(fs, recno, rec);
	}
	if (punch && !record_attr_find(rec, CSV_ATTR_DATA, 0))
		return write_rec(fs, recno, rec); /* nothing mapped */
	runlist_init(&rl);
	r = data_runs(fs, rec, &rl);
	if (r < 0)
		goto out;
	if (punch)
		r = punch_range(fs, &rl, off, end, le64_to_cpu(rec->valid_data_length));
	else
		r = alloc_holes(fs, &rl, off / cs, DIV_ROUND_UP(end, cs), CSV_RUN_UNWRITTEN);
	if (r == 0 && !(mode & FS_FALLOC_KEEP_SIZE) && end > size)
		rec->size = cpu_to_le64(end);
	r = store_runs(fs, rec, &rl, r);
out:
	runlist_free(&rl);
	return r;
}

/* ---- orphans ------------------------------------------------------------------ */

static int do_release_orphan(struct csv_fs *fs, uint64_t recno)
{
	int r = read_file(fs, recno, fs->rec);
	if (r < 0)
		return r;
	struct csv_d_record *rec = (void *)fs->rec;
	if (!(le16_to_cpu(rec->flags) & CSV_REC_ORPHAN) || le32_to_cpu(rec->nlink) != 0)
		return -EINVAL;
	return free_record(fs, recno, rec);
}

/* ---- extended attributes ------------------------------------------------- */

/* Reads file recno into fs->rec and finds its extended attribute name:
 * *ret is NULL when it has none. -ERANGE for an invalid name. */
static int find_xattr(struct csv_fs *fs, uint64_t recno, const char *name, struct csv_d_attr **ret)
{
	size_t nl = strlen(name);
	struct csv_d_attr *a;
	int r;

	if (nl == 0 || nl > 255)
		return -ERANGE;
	r = read_file(fs, recno, fs->rec);
	if (r < 0)
		return r;
	for (unsigned i = 0; (a = record_attr_find(fs->rec, CSV_ATTR_XATTR, i)); i++) {
		struct csv_d_attr_xattr *x = attr_payload(a);
		if (le16_to_cpu(x->name_len) == nl && memcmp(x->data, name, nl) == 0)
			break;
	}
	*ret = a;
	return 0;
}

static int do_setxattr(struct csv_fs *fs, uint64_t recno, const char *name, const void *value, size_t len,
		       unsigned flags)
{
	size_t nl = strlen(name);
	struct csv_d_attr *a;
	struct csv_d_attr_xattr *x;
	int r;

	if ((flags & ~(unsigned)(FS_XATTR_CREATE | FS_XATTR_REPLACE)) ||
	    flags == (FS_XATTR_CREATE | FS_XATTR_REPLACE))
		return -EINVAL;
	r = find_xattr(fs, recno, name, &a);
	if (r < 0)
		return r;
	if (len > UINT16_MAX)
		return -E2BIG;
	if (a && (flags & FS_XATTR_CREATE))
		return -EEXIST;
	if (!a && (flags & FS_XATTR_REPLACE))
		return -ENODATA;
	if (a)
		record_attr_remove(fs->rec, a);
	r = record_attr_add(fs->rec, CSV_ATTR_XATTR, (uint32_t)(sizeof(*x) + nl + len), (void **)&x);
	if (r < 0)
		return r;
	x->name_len = cpu_to_le16((uint16_t)nl);
	x->value_len = cpu_to_le16((uint16_t)len);
	memcpy(x->data, name, nl);
	memcpy(x->data + nl, value, len);
	touch(fs->rec, realtime_ns(), false);
	return write_rec(fs, recno, fs->rec);
}

static int do_removexattr(struct csv_fs *fs, uint64_t recno, const char *name)
{
	struct csv_d_attr *a;
	int r = find_xattr(fs, recno, name, &a);
	if (r < 0)
		return r;
	if (!a)
		return -ENODATA;
	record_attr_remove(fs->rec, a);
	touch(fs->rec, realtime_ns(), false);
	return write_rec(fs, recno, fs->rec);
}

int fs_getxattr(struct csv_fs *fs, uint64_t recno, const char *name, void *buf, size_t size, size_t *ret_len)
{
	struct csv_d_attr *a;
	int r = find_xattr(fs, recno, name, &a);
	if (r < 0)
		return r;
	if (!a)
		return -ENODATA;
	struct csv_d_attr_xattr *x = attr_payload(a);
	size_t vl = le16_to_cpu(x->value_len);
	if (size && size < vl)
		return -ERANGE;
	if (size)
		memcpy(buf, x->data + le16_to_cpu(x->name_len), vl);
	*ret_len = vl;
	return 0;
}

int fs_listxattr(struct csv_fs *fs, uint64_t recno, char *buf, size_t size, size_t *ret_len)
{
	struct csv_d_attr *a;
	size_t total = 0;
	int r = read_file(fs, recno, fs->rec);
	if (r < 0)
		return r;
	for (unsigned i = 0; (a = record_attr_find(fs->rec, CSV_ATTR_XATTR, i)); i++) {
		struct csv_d_attr_xattr *x = attr_payload(a);
		size_t nl = le16_to_cpu(x->name_len);
		if (size) {
			if (total + nl + 1 > size)
				return -ERANGE;
			memcpy(buf + total, x->data, nl);
			buf[total + nl] = '\0';
		}
		total += nl + 1;
	}
	*ret_len = total;
	return 0;
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
	return r < 0 ? r : op_end(fs, do_unlink(fs, dir, name, false));
}

int fs_write(struct csv_fs *fs, uint64_t recno, uint64_t off, const void *buf, size_t len)
{
	int r = op_begin(fs);
	return r < 0 ? r : op_end(fs, do_write(fs, recno, off, buf, len));
}

int fs_setxattr(struct csv_fs *fs, uint64_t recno, const char *name, const void *value, size_t len)
{
	int r = op_begin(fs);
	return r < 0 ? r : op_end(fs, do_setxattr(fs, recno, name, value, len, 0));
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

int fs_unlink_open(struct csv_fs *fs, uint64_t dir, const char *name)
{
	int r = op_begin(fs);
	return r < 0 ? r : op_end(fs, do_unlink(fs, dir, name, true));
}

int fs_release_orphan(struct csv_fs *fs, uint64_t recno)
{
	int r = op_begin(fs);
	return r < 0 ? r : op_end(fs, do_release_orphan(fs, recno));
}

int fs_reclaim_orphans(struct csv_fs *fs, uint64_t *ret_n)
{
	_cleanup_free_ void *rec = malloc(CSV_RECORD_SIZE);
	*ret_n = 0;
	if (!rec)
		return -ENOMEM;
	for (uint64_t recno = bitmap_find_next_set(&fs->rmap, CSV_FIRST_USER_RECORD); recno < fs->rmap.nbits;
	     recno = bitmap_find_next_set(&fs->rmap, recno + 1)) {
		int r = mft_read(&fs->mft, recno, rec, NULL, 0);
		if (r < 0)
			return r;
		const struct csv_d_record *d = rec;
		if (!record_in_use(rec) || !(le16_to_cpu(d->flags) & CSV_REC_ORPHAN) || le32_to_cpu(d->nlink))
			continue;
		r = fs_release_orphan(fs, recno);
		if (r < 0)
			return r;
		(*ret_n)++;
	}
	return 0;
}

int fs_setattr(struct csv_fs *fs, uint64_t recno, unsigned valid, const struct fs_attr *in, struct fs_attr *ret)
{
	int r = op_begin(fs);
	return r < 0 ? r : op_end(fs, do_setattr(fs, recno, valid, in, ret));
}

int fs_rename(struct csv_fs *fs, uint64_t olddir, const char *oldname, uint64_t newdir, const char *newname,
	      unsigned flags)
{
	int r = op_begin(fs);
	return r < 0 ? r : op_end(fs, do_rename(fs, olddir, oldname, newdir, newname, flags));
}

int fs_setxattr_flags(struct csv_fs *fs, uint64_t recno, const char *name, const void *value, size_t len,
		      unsigned flags)
{
	int r = op_begin(fs);
	return r < 0 ? r : op_end(fs, do_setxattr(fs, recno, name, value, len, flags));
}

int fs_removexattr(struct csv_fs *fs, uint64_t recno, const char *name)
{
	int r = op_begin(fs);
	return r < 0 ? r : op_end(fs, do_removexattr(fs, recno, name));
}

/* Read layouts change nothing and need no transaction. */
int fs_layout_get(struct csv_fs *fs, uint64_t recno, uint64_t offset, uint64_t length, bool for_write,
		  struct fs_extent *out, size_t max, size_t *ret_n)
{
	int r = check_range(offset, length);
	if (r < 0 || !for_write)
		return r < 0 ? r : layout_read(fs, recno, offset, length, out, max, ret_n);
	r = op_begin(fs);
	return r < 0 ? r : op_end(fs, do_layout_write(fs, recno, offset, length, out, max, ret_n));
}

int fs_layout_commit(struct csv_fs *fs, uint64_t recno, uint64_t new_size, uint64_t new_vdl, int64_t mtime_ns,
		     const struct fs_range *written, size_t n)
{
	int r = op_begin(fs);
	return r < 0 ? r : op_end(fs, do_layout_commit(fs, recno, new_size, new_vdl, mtime_ns, written, n));
}

int fs_fallocate(struct csv_fs *fs, uint64_t recno, unsigned mode, uint64_t offset, uint64_t length)
{
	int r = op_begin(fs);
	return r < 0 ? r : op_end(fs, do_fallocate(fs, recno, mode, offset, length));
}
