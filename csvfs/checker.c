/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsck: check every invariant of a volume and repair what can be repaired.
 *
 * The passes:
 *  1. headers, journal (replayed when repairing), cluster area;
 *  2. the MFT: every record is read and verified; damaged ones are noted;
 *     the runs and names of records in use are collected;
 *  3. cluster ownership: system regions, the MFT, every file's runs and
 *     extent blocks and every directory's index blocks; a cluster claimed
 *     twice stays with its first claimant;
 *  4. directories: every index is checked; a damaged one is rebuilt from
 *     the names the records hold; entries and names must match;
 *  5. connectivity: every directory reachable from the root, every file
 *     linked, or reconnected under /lost+found; open-unlinked orphans are
 *     reclaimed; link counts;
 *  6. the cluster and record bitmaps against what passes 2-5 found.
 * Repairs only ever use the redundancy the format has (two headers, the
 * MFT mirror, names in records as well as in indexes, bitmaps derived
 * from runs), so a repair never makes a volume worse.
 */
#include "checker.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "alloc.h"
#include "bitmap.h"
#include "btree.h"
#include "clusterarea.h"
#include "journal.h"
#include "meta.h"
#include "mft.h"
#include "nodeio-vol.h"
#include "record.h"
#include "runlist.h"
#include "util.h"
#include "volume.h"

enum rec_state {
	REC_FREE = 0,
	REC_IN_USE,
	REC_BAD,      /* damaged and not (yet) repaired */
	REC_RESERVED, /* system records 3..15 */
};

struct rec_info {
	uint8_t state;
	bool is_dir;
	bool index_bad;   /* directory index must be rebuilt */
	bool reached;     /* reachable from the root */
	bool orphan;      /* CSV_REC_ORPHAN */
	uint16_t seq;
	uint32_t mode;
	uint32_t nlink;   /* as recorded */
	uint32_t links;   /* valid (name, entry) pairs found */
	uint32_t subdirs; /* directories: linked subdirectories */
	uint64_t parent;  /* as recorded */
};

/* A NAME attribute of a record. */
struct name_ent {
	uint64_t recno;
	uint64_t parent;  /* file reference */
	uint32_t off;     /* into the string pool */
	uint16_t len;
	uint8_t linked;
};

/* A directory index entry. */
struct dent {
	uint64_t dir;     /* record number of the directory */
	uint64_t ref;
	uint32_t off;
	uint16_t len;
	uint8_t type;
	uint8_t linked;
};

/* A file whose run list lost damaged or conflicting ranges. */
struct run_fix {
	uint64_t recno;
	struct csv_runlist rl;
};

struct fsck {
	const struct fsck_options *o;
	FILE *out;
	struct csv_volume *v;
	struct csv_geometry *g;
	struct csv_mft mft;
	bool mft_loaded;
	struct csv_nodeio_vol nv;
	struct csv_alloc *alloc;    /* built before repairs that allocate */
	struct csv_bitmap claimed;  /* clusters found in use */
	struct rec_info *rec;
	uint64_t nrec;
	struct name_ent *names;
	size_t nnames, names_cap;
	struct dent *dents;
	size_t ndents, dents_cap;
	char *pool;
	size_t pool_len, pool_cap;
	struct run_fix *fixes;      /* files whose runs must be rewritten */
	size_t nfixes, fixes_cap;
	unsigned found, fixed, unfixed;
	bool operational;
	uint8_t *buf;               /* one record */
	uint8_t *node;              /* one cluster */
};

/* ---- reporting -------------------------------------------------------- */

/* Prints one problem on a line of its own; outcome() follows. */
_printf_(2, 3)
static void problem(struct fsck *f, const char *fmt, ...)
{
	va_list ap;
	f->found++;
	va_start(ap, fmt);
	vfprintf(f->out, fmt, ap);
	va_end(ap);
	fputc('\n', f->out);
}

/* Ends a problem line: fixed, or why not. */
static void outcome(struct fsck *f, int r, const char *what)
{
	if (!f->o->repair) {
		f->unfixed++;
		fprintf(f->out, "  not fixed (checking only)\n");
	} else if (r < 0) {
		f->unfixed++;
		fprintf(f->out, "  %s: failed: %s\n", what, strerror(-r));
	} else {
		f->fixed++;
		fprintf(f->out, "  %s.\n", what);
	}
}

static void phase(struct fsck *f, const char *name)
{
	if (f->o->verbose)
		fprintf(f->out, "%s\n", name);
	if (f->o->progress)
		f->o->progress(f->o->progress_ud, name, 0, 1);
}

/* ---- collections ------------------------------------------------------ */

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t ncap = MAX(*cap * 2, MAX(need, 64u));
	void *n = realloc(*p, ncap * elem);
	if (!n)
		return -ENOMEM;
	*p = n;
	*cap = ncap;
	return 0;
}

static int pool_add(struct fsck *f, const void *s, size_t len, uint32_t *ret_off)
{
	int r = grow((void **)&f->pool, &f->pool_cap, f->pool_len + len, 1);
	if (r < 0)
		return r;
	memcpy(f->pool + f->pool_len, s, len);
	*ret_off = (uint32_t)f->pool_len;
	f->pool_len += len;
	return 0;
}

static int name_add(struct fsck *f, uint64_t recno, uint64_t parent, const void *s, size_t len)
{
	uint32_t off;
	int r = grow((void **)&f->names, &f->names_cap, f->nnames + 1, sizeof(*f->names));
	if (r == 0)
		r = pool_add(f, s, len, &off);
	if (r < 0)
		return r;
	f->names[f->nnames++] = (struct name_ent){ .recno = recno, .parent = parent, .off = off, .len = (uint16_t)len };
	return 0;
}

static int dent_add(struct fsck *f, uint64_t dir, const void *s, size_t len, uint64_t ref, uint8_t type)
{
	uint32_t off;
	int r = grow((void **)&f->dents, &f->dents_cap, f->ndents + 1, sizeof(*f->dents));
	if (r == 0)
		r = pool_add(f, s, len, &off);
	if (r < 0)
		return r;
	f->dents[f->ndents++] = (struct dent){ .dir = dir, .ref = ref, .off = off, .len = (uint16_t)len, .type = type };
	return 0;
}

static const char *pool_str(struct fsck *f, uint32_t off, uint16_t len, char out[CSV_NAME_MAX + 1])
{
	memcpy(out, f->pool + off, len);
	out[len] = '\0';
	return out;
}

/* ---- cluster claims --------------------------------------------------- */

/* Marks clusters as found in use; returns -EEXIST (marking nothing) when
 * any of them is already claimed or out of range. */
static int claim(struct fsck *f, uint64_t lcn, uint64_t len)
{
	if (len == 0 || lcn >= f->g->total_clusters || len > f->g->total_clusters - lcn)
		return -ERANGE;
	for (uint64_t i = lcn; i < lcn + len; i++)
		if (bitmap_test(&f->claimed, i))
			return -EEXIST;
	bitmap_set_range(&f->claimed, lcn, len);
	return 0;
}

/* ---- record access for repairs ---------------------------------------- */

static int read_record(struct fsck *f, uint64_t recno, void *buf)
{
	return mft_read(&f->mft, recno, buf, NULL, 0);
}

static int write_record(struct fsck *f, uint64_t recno, void *buf)
{
	return mft_write(&f->mft, recno, buf, 0);
}

/* A fresh empty directory record (used to recreate root and lost+found). */
static int make_empty_dir(struct fsck *f, uint64_t recno, uint16_t seq, uint32_t mode, uint64_t parent)
{
	struct csv_d_record *r = (void *)f->buf;
	void *root;
	uint64_t t = realtime_ns();

	record_init(r, recno, seq ? seq : 1, CSV_REC_IN_USE | CSV_REC_DIRECTORY, S_IFDIR | mode);
	r->nlink = cpu_to_le32(2);
	r->parent = cpu_to_le64(parent);
	r->atime_ns = r->mtime_ns = r->ctime_ns = r->btime_ns = cpu_to_le64(t);
	int rv = record_attr_add(r, CSV_ATTR_INDEX_ROOT, CSV_INDEX_ROOT_BYTES, &root);
	if (rv < 0)
		return rv;
	btree_root_init(root, CSV_INDEX_ROOT_BYTES);
	if (recno != CSV_RECNO_ROOT) {
		rv = record_name_add(r, parent, "lost+found", strlen("lost+found"));
		if (rv < 0)
			return rv;
	}
	return write_record(f, recno, r);
}

/* The B+ tree of directory recno over its record in f->buf. */
static struct csv_btree dir_tree(struct fsck *f, uint64_t recno)
{
	struct csv_d_attr *a = record_attr_find(f->buf, CSV_ATTR_INDEX_ROOT, 0);
	return (struct csv_btree){
		.io = &f->nv.io,
		.owner = CSV_REF(recno, f->rec[recno].seq),
		.root = a ? attr_payload(a) : NULL,
		.root_size = CSV_INDEX_ROOT_BYTES,
	};
}

/* ---- pass 1: headers, journal, cluster area ---------------------------- */

static void check_headers(struct fsck *f)
{
	if (f->v->primary_header_bad) {
		problem(f, "Volume header (block 0) is damaged; the backup header is valid.");
		int r = f->o->repair ? volume_write_header(f->v, 0) : 0;
		outcome(f, r, "Restored from the backup");
	}
	if (f->v->backup_header_bad) {
		problem(f, "Backup volume header (block %" PRIu64 ") is damaged or differs.", f->g->backup_header_block);
		int r = f->o->repair ? volume_write_header(f->v, f->g->backup_header_block) : 0;
		outcome(f, r, "Rewritten from the primary");
	}
}

static void check_journal(struct fsck *f)
{
	struct csv_journal *j;
	int r = journal_open(f->v, &j);
	if (r < 0) {
		problem(f, "Journal superblock (block %" PRIu64 ") is damaged: %s; committed transactions in it cannot be found.",
			f->g->journal_block, strerror(-r));
		if (f->o->repair)
			r = journal_format(f->v);
		outcome(f, r, "Journal reset to empty");
		return;
	}
	if (journal_needs_replay(j)) {
		if (!f->o->repair) {
			problem(f, "Journal holds committed transactions that were not written home; replay is needed.");
			outcome(f, 0, "Replayed");
		} else {
			uint64_t txns = 0, blocks = 0;
			r = journal_replay(j, &txns, &blocks);
			if (r < 0) {
				problem(f, "Journal replay failed: %s.", strerror(-r));
				outcome(f, r, "Replay");
			} else {
				/* A replay changes the volume: fsck(8) says so with 1. */
				fprintf(f->out, "Journal replayed: %" PRIu64 " transactions, %" PRIu64 " blocks.\n",
					txns, blocks);
				f->fixed++;
			}
		}
	}
	journal_close(j);
}

static void check_cluster_area(struct fsck *f)
{
	char err[200], name[64];
	for (uint64_t i = 0; i < f->g->cluster_area_blocks; i++) {
		int r = clusterarea_verify_block(f->v, i, f->buf, err, sizeof(err));
		if (r == 0)
			continue;
		problem(f, "Cluster area block %" PRIu64 " (%s): %s.", f->g->cluster_area_block + i,
			clusterarea_block_name(i, name, sizeof(name)), err);
		r = f->o->repair ? clusterarea_reset_block(f->v, i) : 0;
		outcome(f, r, "Reset to empty");
	}
}

/* ---- pass 2: records ---------------------------------------------------- */

/* Reads the salvageable runs of a file whose DATA did not decode: runs in
 * the record, or the runs of each extent block that verifies; names each
 * extent block that does not. */
static void salvage_runs(struct fsck *f, uint64_t recno, uint64_t ref, const struct csv_d_attr *a,
			 struct csv_runlist *rl)
{
	const struct csv_d_attr_data *d = attr_payload_const(a);
	uint32_t count = le32_to_cpu(d->count);
	const uint8_t *items = (const uint8_t *)d + sizeof(*d);

	if (le16_to_cpu(d->form) == CSV_DATA_RUNS) {
		for (uint32_t i = 0; i < count; i++) {
			const struct csv_d_run *run = (const void *)(items + i * sizeof(*run));
			(void)runlist_insert(rl, le64_to_cpu(run->vcn), le64_to_cpu(run->lcn),
					     le32_to_cpu(run->length), le32_to_cpu(run->flags) & CSV_RUN_UNWRITTEN);
		}
		return;
	}
	for (uint32_t i = 0; i < count && le16_to_cpu(d->form) == CSV_DATA_EXTENTS; i++) {
		const struct csv_d_extent_ref *e = (const void *)(items + i * sizeof(*e));
		const struct csv_d_extent_block *eb = (const void *)f->node;
		uint64_t b = le64_to_cpu(e->blocknr);
		int r = b < f->g->total_blocks ? nodeio_read(&f->nv.io, b, CSV_MAGIC_EXTENT, f->node) : -ERANGE;
		if (r < 0 || le64_to_cpu(eb->owner) != ref || le32_to_cpu(eb->count) > CSV_EXTENT_RUNS(f->g->cluster_size)) {
			fprintf(f->out, "  record %" PRIu64 ": extent block %" PRIu64 " is unusable: %s\n", recno, b,
				r == -EBADMSG ? "checksum mismatch" : r < 0 ? strerror(-r) : "wrong owner or count");
			continue;
		}
		for (uint32_t k = 0; k < le32_to_cpu(eb->count); k++) {
			const struct csv_d_run *run = &eb->runs[k];
			(void)runlist_insert(rl, le64_to_cpu(run->vcn), le64_to_cpu(run->lcn),
					     le32_to_cpu(run->length), le32_to_cpu(run->flags) & CSV_RUN_UNWRITTEN);
		}
	}
}

/* Claims the clusters of one run; a run that conflicts is kept only for
 * the clusters not claimed yet. Returns true when the run was cut. */
static bool claim_run(struct fsck *f, const struct csv_run *run, struct csv_runlist *kept)
{
	if (run->lcn >= f->g->data_lcn && claim(f, run->lcn, run->length) == 0) {
		(void)runlist_insert(kept, run->vcn, run->lcn, run->length, run->flags);
		return false;
	}
	for (uint64_t k = 0; k < run->length; k++)
		if (run->lcn + k >= f->g->data_lcn && claim(f, run->lcn + k, 1) == 0)
			(void)runlist_insert(kept, run->vcn + k, run->lcn + k, 1, run->flags);
	return true;
}

/* Claims the runs and extent blocks of the file in f->buf. A file whose
 * runs are damaged or conflict keeps what is readable and unclaimed; the
 * rest reads as holes once the repair pass rewrites its run list. */
static int claim_file(struct fsck *f, uint64_t recno)
{
	const struct csv_d_attr *a = record_attr_find_const(f->buf, CSV_ATTR_DATA, 0);
	uint64_t ref = CSV_REF(recno, f->rec[recno].seq);
	struct csv_runlist rl, kept;
	bool damaged = false, cut = false;
	int r;

	if (!a || le16_to_cpu(((const struct csv_d_attr_data *)attr_payload_const(a))->form) == CSV_DATA_RESIDENT)
		return 0;
	r = runlist_decode(attr_payload_const(a), attr_payload_len(a), &f->nv.io, ref, f->g->total_clusters, &rl);
	if (r < 0) {
		problem(f, "Record %" PRIu64 ": its run list or one of its extent blocks is damaged (%s).",
			recno, strerror(-r));
		runlist_init(&rl);
		salvage_runs(f, recno, ref, a, &rl);
		damaged = true;
	}
	for (size_t i = 0; i < rl.n_ext && !damaged; i++) {
		if (claim(f, block_to_lcn(f->g, rl.ext_blocks[i]), 1) < 0) {
			problem(f, "Record %" PRIu64 ": extent block %" PRIu64 " lies in clusters used elsewhere.",
				recno, rl.ext_blocks[i]);
			damaged = true;
			for (size_t k = 0; k < i; k++)
				bitmap_clear_range(&f->claimed, block_to_lcn(f->g, rl.ext_blocks[k]), 1);
		}
	}
	runlist_init(&kept);
	for (size_t i = 0; i < rl.count; i++) {
		if (claim_run(f, &rl.runs[i], &kept) && !cut) {
			problem(f, "Record %" PRIu64 ": clusters %" PRIu64 "-%" PRIu64 " (from file cluster %" PRIu64
				   ") are outside the data area or used by other metadata or files.",
				recno, rl.runs[i].lcn, rl.runs[i].lcn + rl.runs[i].length - 1, rl.runs[i].vcn);
			cut = true;
		}
	}
	if (!damaged && !cut) {
		runlist_free(&kept);
		runlist_free(&rl);
		return 0;
	}
	/* The repair pass rewrites the run list; extent blocks of a damaged
	 * list are not claimed and so become free. */
	if (!damaged) {
		kept.ext_blocks = rl.ext_blocks;
		kept.n_ext = rl.n_ext;
		rl.ext_blocks = NULL;
		rl.n_ext = 0;
	}
	runlist_free(&rl);
	r = grow((void **)&f->fixes, &f->fixes_cap, f->nfixes + 1, sizeof(*f->fixes));
	if (r < 0) {
		runlist_free(&kept);
		return r;
	}
	f->fixes[f->nfixes++] = (struct run_fix){ .recno = recno, .rl = kept };
	return 0;
}

/* Checks the fields of an in-use record in f->buf; fixes the simple ones
 * in the buffer and returns 1 when it must be written back, or -EUCLEAN
 * when the record cannot describe a file. */
static int check_record_fields(struct fsck *f, uint64_t recno)
{
	struct csv_d_record *r = (void *)f->buf;
	uint32_t mode = le32_to_cpu(r->mode);
	bool has_index = record_attr_find(r, CSV_ATTR_INDEX_ROOT, 0) != NULL;
	struct csv_d_attr *data = record_attr_find(r, CSV_ATTR_DATA, 0);
	int dirty = 0;

	if (mode_to_dtype(mode) == DT_UNKNOWN && recno != CSV_RECNO_MFT) {
		problem(f, "Record %" PRIu64 ": invalid file type in mode 0%o.", recno, mode);
		return -EUCLEAN;
	}
	if (S_ISDIR(mode) != has_index || S_ISDIR(mode) != !!(le16_to_cpu(r->flags) & CSV_REC_DIRECTORY)) {
		problem(f, "Record %" PRIu64 ": mode 0%o, the directory flag and the index root disagree.", recno, mode);
		return -EUCLEAN;
	}
	if (has_index && data) {
		problem(f, "Record %" PRIu64 ": a directory with a DATA attribute.", recno);
		return -EUCLEAN;
	}
	if (le64_to_cpu(r->valid_data_length) > le64_to_cpu(r->size)) {
		problem(f, "Record %" PRIu64 ": valid data length %" PRIu64 " is beyond the size %" PRIu64 ".", recno,
			le64_to_cpu(r->valid_data_length), le64_to_cpu(r->size));
		r->valid_data_length = r->size;
		outcome(f, 0, "Valid data length set to the size");
		dirty = 1;
	}
	if (data) {
		const struct csv_d_attr_data *d = attr_payload(data);
		if (le16_to_cpu(d->form) == CSV_DATA_RESIDENT && le32_to_cpu(d->count) != le64_to_cpu(r->size)) {
			problem(f, "Record %" PRIu64 ": size %" PRIu64 " but %u resident bytes.", recno,
				le64_to_cpu(r->size), le32_to_cpu(d->count));
			r->size = r->valid_data_length = cpu_to_le64(le32_to_cpu(d->count));
			outcome(f, 0, "Size set to the resident length");
			dirty = 1;
		}
	}
	return dirty;
}

/* Rewrites record recno as a free (or reserved system) record, keeping
 * the sequence number moving so that old references stay stale. */
static int clear_record(struct fsck *f, uint64_t recno, uint16_t old_seq)
{
	void *buf = f->node; /* f->buf may hold the caller's data */
	uint16_t seq = (uint16_t)(old_seq + 1);
	bool reserved = recno < CSV_FIRST_USER_RECORD;
	record_init(buf, recno, reserved ? 1 : (seq ? seq : 1), reserved ? CSV_REC_SYSTEM : 0, 0);
	return write_record(f, recno, buf);
}

static int scan_records(struct fsck *f)
{
	char err[256];
	int r;

	for (uint64_t recno = 0; recno < f->nrec; recno++) {
		struct rec_info *ri = &f->rec[recno];
		if (f->o->progress && recno % 4096 == 0)
			f->o->progress(f->o->progress_ud, "records", recno, f->nrec);
		r = mft_read(&f->mft, recno, f->buf, err, sizeof(err));
		if (r == -EIO || r == -ENOMEM)
			return r;
		if (r < 0) {
			const struct csv_d_record *raw = (const void *)f->buf;
			ri->state = REC_BAD;
			ri->seq = le16_to_cpu(raw->seq);
			if (recno == CSV_RECNO_MFT) {
				problem(f, "Record 0 ($MFT) is damaged: %s; its mirror is valid.", err);
				r = 0;
				if (f->o->repair && volume_read_meta(f->v, f->g->mft_mirror_block, 1, CSV_MAGIC_RECORD,
								     f->buf) == 0)
					r = write_record(f, 0, f->buf);
				outcome(f, r, "Restored from the mirror");
				ri->state = REC_IN_USE;
				ri->seq = 1;
				continue;
			}
			problem(f, "Record %" PRIu64 ": %s.", recno, err);
			if (recno == CSV_RECNO_ROOT || recno == CSV_RECNO_LOST_FOUND)
				continue; /* recreated once the names are known */
			r = f->o->repair ? clear_record(f, recno, ri->seq) : 0;
			outcome(f, r, "Record cleared; its names are dropped from their directories");
			if (r == 0 && f->o->repair)
				ri->state = recno < CSV_FIRST_USER_RECORD ? REC_RESERVED : REC_FREE;
			continue;
		}
		const struct csv_d_record *rec = (const void *)f->buf;
		uint16_t flags = le16_to_cpu(rec->flags);
		ri->seq = le16_to_cpu(rec->seq);
		if (!(flags & CSV_REC_IN_USE)) {
			bool want_system = recno < CSV_FIRST_USER_RECORD;
			ri->state = want_system ? REC_RESERVED : REC_FREE;
			if (recno <= CSV_RECNO_LOST_FOUND) {
				problem(f, "Record %" PRIu64 " (%s) is not in use.", recno,
					recno == 0 ? "$MFT" : recno == 1 ? "root directory" : "lost+found");
				ri->state = REC_BAD;
			} else if (!!(flags & CSV_REC_SYSTEM) != want_system || (flags & ~CSV_REC_SYSTEM)) {
				problem(f, "Record %" PRIu64 ": free record with flags 0x%x.", recno, flags);
				r = f->o->repair ? clear_record(f, recno, ri->seq) : 0;
				outcome(f, r, "Flags reset");
			}
			continue;
		}
		if (recno == CSV_RECNO_MFT)
			continue; /* mapped by mft_load */
		ri->state = REC_IN_USE;
		r = check_record_fields(f, recno);
		if (r < 0 || ((recno == CSV_RECNO_ROOT || recno == CSV_RECNO_LOST_FOUND) &&
			      !(flags & CSV_REC_DIRECTORY))) {
			if (r >= 0)
				problem(f, "Record %" PRIu64 " is not a directory.", recno);
			ri->state = REC_BAD;
			if (recno == CSV_RECNO_ROOT || recno == CSV_RECNO_LOST_FOUND)
				continue;
			r = f->o->repair ? clear_record(f, recno, ri->seq) : 0;
			outcome(f, r, "Record cleared");
			if (r == 0 && f->o->repair)
				ri->state = recno < CSV_FIRST_USER_RECORD ? REC_RESERVED : REC_FREE;
			continue;
		}
		if (r > 0 && f->o->repair) {
			r = write_record(f, recno, f->buf);
			if (r < 0)
				return r;
		}
		ri->is_dir = S_ISDIR(le32_to_cpu(rec->mode));
		ri->mode = le32_to_cpu(rec->mode);
		ri->nlink = le32_to_cpu(rec->nlink);
		ri->parent = le64_to_cpu(rec->parent);
		ri->orphan = flags & CSV_REC_ORPHAN;
		if (recno < CSV_FIRST_USER_RECORD && recno > CSV_RECNO_LOST_FOUND) {
			problem(f, "Reserved record %" PRIu64 " is in use.", recno);
			ri->state = REC_BAD;
			r = f->o->repair ? clear_record(f, recno, ri->seq) : 0;
			outcome(f, r, "Record cleared");
			if (r == 0 && f->o->repair)
				ri->state = REC_RESERVED;
			continue;
		}
		const struct csv_d_attr *a;
		for (unsigned i = 0; (a = record_attr_find_const(f->buf, CSV_ATTR_NAME, i)); i++) {
			const struct csv_d_attr_name *n = attr_payload_const(a);
			r = name_add(f, recno, le64_to_cpu(n->parent), n->name, le16_to_cpu(n->name_len));
			if (r < 0)
				return r;
		}
		r = claim_file(f, recno);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The sequence number most names give to the directory recno, so that a
 * recreated root or lost+found keeps its children's references valid. */
static uint16_t infer_seq(struct fsck *f, uint64_t recno, uint16_t fallback)
{
	uint16_t best = 0;
	size_t best_n = 0;
	for (size_t i = 0; i < f->nnames; i++) {
		if (CSV_REF_RECNO(f->names[i].parent) != recno)
			continue;
		uint16_t s = CSV_REF_SEQ(f->names[i].parent);
		size_t n = 0;
		for (size_t k = 0; k < f->nnames; k++)
			if (f->names[k].parent == f->names[i].parent)
				n++;
		if (n > best_n) {
			best_n = n;
			best = s;
		}
	}
	if (best)
		return best;
	return fallback ? fallback : 1;
}

/* Recreates the root directory or lost+found when its record is damaged;
 * its index is then rebuilt from the names its children hold. */
static void recreate_system_dirs(struct fsck *f)
{
	for (uint64_t recno = CSV_RECNO_ROOT; recno <= CSV_RECNO_LOST_FOUND; recno++) {
		struct rec_info *ri = &f->rec[recno];
		if (ri->state != REC_BAD)
			continue;
		uint16_t seq = infer_seq(f, recno, ri->seq);
		uint64_t root_ref = CSV_REF(CSV_RECNO_ROOT, f->rec[CSV_RECNO_ROOT].seq);
		if (recno == CSV_RECNO_ROOT)
			root_ref = CSV_REF(CSV_RECNO_ROOT, seq);
		int r = 0;
		if (f->o->repair) {
			f->rec[recno].seq = seq;
			r = make_empty_dir(f, recno, seq, recno == CSV_RECNO_ROOT ? 0755 : 0700, root_ref);
		}
		outcome(f, r, recno == CSV_RECNO_ROOT ? "Root directory recreated" : "lost+found recreated");
		if (r == 0 && f->o->repair) {
			*ri = (struct rec_info){ .state = REC_IN_USE, .is_dir = true, .index_bad = true, .seq = seq,
						 .mode = S_IFDIR | (recno == CSV_RECNO_ROOT ? 0755 : 0700), .nlink = 2,
						 .parent = root_ref };
			if (recno == CSV_RECNO_LOST_FOUND)
				(void)name_add(f, recno, root_ref, "lost+found", strlen("lost+found"));
		}
	}
}

/* ---- pass 3: directory indexes ----------------------------------------- */

struct dir_walk {
	struct fsck *f;
	uint64_t recno;
	uint64_t *blocks;
	size_t nblocks, cap;
	size_t first_dent;
	unsigned errors;
	char first_error[200];
	int oom;
};

static void walk_node(void *ud, uint64_t blocknr, unsigned level)
{
	struct dir_walk *w = ud;
	if (grow((void **)&w->blocks, &w->cap, w->nblocks + 1, sizeof(*w->blocks)) < 0) {
		w->oom = -ENOMEM;
		return;
	}
	w->blocks[w->nblocks++] = blocknr;
}

static void walk_entry(void *ud, const uint8_t *name, size_t len, uint64_t ref, uint8_t type)
{
	struct dir_walk *w = ud;
	if (dent_add(w->f, w->recno, name, len, ref, type) < 0)
		w->oom = -ENOMEM;
}

static void walk_error(void *ud, uint64_t blocknr, const char *msg)
{
	struct dir_walk *w = ud;
	if (w->errors++ == 0)
		snprintf(w->first_error, sizeof(w->first_error), "%s", msg);
}

static const struct btree_check_ops walk_ops = {
	.node = walk_node,
	.entry = walk_entry,
	.error = walk_error,
};

/* Checks every directory's index; an intact one contributes its entries
 * and claims its blocks, a damaged one is marked for rebuilding. */
static int check_indexes(struct fsck *f)
{
	for (uint64_t recno = 0; recno < f->nrec; recno++) {
		struct rec_info *ri = &f->rec[recno];
		if (ri->state != REC_IN_USE || !ri->is_dir || ri->index_bad)
			continue;
		if (f->o->progress && recno % 1024 == 0)
			f->o->progress(f->o->progress_ud, "directories", recno, f->nrec);
		int r = read_record(f, recno, f->buf);
		if (r < 0)
			return r;
		struct csv_btree t = dir_tree(f, recno);
		struct dir_walk w = { .f = f, .recno = recno, .first_dent = f->ndents };
		r = btree_check(&t, &walk_ops, &w);
		if (w.oom) {
			free(w.blocks);
			return w.oom;
		}
		bool conflict = false;
		if (r == 0) {
			for (size_t i = 0; i < w.nblocks && !conflict; i++) {
				if (w.blocks[i] % f->g->blocks_per_cluster ||
				    claim(f, block_to_lcn(f->g, w.blocks[i]), 1) < 0) {
					snprintf(w.first_error, sizeof(w.first_error),
						 "index block %" PRIu64 " lies in clusters used elsewhere", w.blocks[i]);
					for (size_t k = 0; k < i; k++)
						bitmap_clear_range(&f->claimed, block_to_lcn(f->g, w.blocks[k]), 1);
					conflict = true;
				}
			}
		}
		if (r != 0 || conflict) {
			problem(f, "Directory record %" PRIu64 ": its index is damaged: %s.", recno,
				r < 0 ? strerror(-r) : w.first_error);
			ri->index_bad = true;
			f->ndents = w.first_dent; /* drop what the damaged index said */
		}
		free(w.blocks);
	}
	return 0;
}

/* ---- pass 4: names against entries ------------------------------------- */

static struct fsck *sort_ctx;

static int cmp_name_bytes(struct fsck *f, uint32_t ao, uint16_t al, uint32_t bo, uint16_t bl)
{
	int c = memcmp(f->pool + ao, f->pool + bo, MIN(al, bl));
	return c ? c : (al > bl) - (al < bl);
}

static int cmp_names(const void *a, const void *b)
{
	const struct name_ent *x = a, *y = b;
	uint64_t px = CSV_REF_RECNO(x->parent), py = CSV_REF_RECNO(y->parent);
	if (px != py)
		return px < py ? -1 : 1;
	int c = cmp_name_bytes(sort_ctx, x->off, x->len, y->off, y->len);
	if (c)
		return c;
	return (x->recno > y->recno) - (x->recno < y->recno);
}

static int cmp_dents(const void *a, const void *b)
{
	const struct dent *x = a, *y = b;
	if (x->dir != y->dir)
		return x->dir < y->dir ? -1 : 1;
	return cmp_name_bytes(sort_ctx, x->off, x->len, y->off, y->len);
}

static bool parent_valid(struct fsck *f, uint64_t parent)
{
	uint64_t p = CSV_REF_RECNO(parent);
	return p < f->nrec && f->rec[p].state == REC_IN_USE && f->rec[p].is_dir &&
	       f->rec[p].seq == CSV_REF_SEQ(parent);
}

static bool target_valid(struct fsck *f, uint64_t ref)
{
	uint64_t t = CSV_REF_RECNO(ref);
	return t < f->nrec && f->rec[t].state == REC_IN_USE && f->rec[t].seq == CSV_REF_SEQ(ref) &&
	       t != CSV_RECNO_MFT;
}

/* Removes the NAME (parent, name) from record recno. */
static int drop_name(struct fsck *f, uint64_t recno, uint64_t parent, const void *name, size_t len)
{
	int r = read_record(f, recno, f->buf);
	if (r == 0)
		r = record_name_remove(f->buf, parent, name, len);
	if (r == 0)
		r = write_record(f, recno, f->buf);
	return r;
}

/* Applies one change to directory recno's index: insert (ref != 0),
 * delete (ref == 0) or, with replace, a changed entry. */
static int edit_dir(struct fsck *f, uint64_t dir, const void *name, size_t len, uint64_t ref, uint8_t type,
		    bool replace)
{
	uint64_t old;
	int r = read_record(f, dir, f->buf);
	if (r < 0)
		return r;
	struct csv_btree t = dir_tree(f, dir);
	if (!t.root)
		return -EUCLEAN;
	if (replace)
		r = btree_replace(&t, name, len, ref, type, &old);
	else if (ref)
		r = btree_insert(&t, name, len, ref, type);
	else
		r = btree_delete(&t, name, len, &old);
	if (r == 0)
		r = write_record(f, dir, f->buf);
	return r;
}

/* Gives a directory whose index was damaged a fresh, empty index; the
 * entries are inserted by match_names(). */
static int reset_index(struct fsck *f, uint64_t dir)
{
	int r = read_record(f, dir, f->buf);
	if (r < 0)
		return r;
	struct csv_d_attr *a = record_attr_find(f->buf, CSV_ATTR_INDEX_ROOT, 0);
	if (!a)
		return -EUCLEAN;
	btree_root_init(attr_payload(a), CSV_INDEX_ROOT_BYTES);
	return write_record(f, dir, f->buf);
}

/* Matches the names records hold with the entries indexes hold: a pair is
 * a link. Entries without a name are removed; names without an entry are
 * entered again (all of them for a rebuilt index); names under a parent
 * that is not a directory are dropped. */
static int match_names(struct fsck *f)
{
	char s[CSV_NAME_MAX + 1];
	size_t i = 0, k = 0;
	int r;

	sort_ctx = f;
	qsort(f->names, f->nnames, sizeof(*f->names), cmp_names);
	qsort(f->dents, f->ndents, sizeof(*f->dents), cmp_dents);

	if (f->o->repair)
		for (uint64_t d = 0; d < f->nrec; d++)
			if (f->rec[d].state == REC_IN_USE && f->rec[d].is_dir && f->rec[d].index_bad) {
				r = reset_index(f, d);
				if (r < 0)
					return r;
			}

	while (i < f->nnames || k < f->ndents) {
		struct name_ent *n = i < f->nnames ? &f->names[i] : NULL;
		struct dent *e = k < f->ndents ? &f->dents[k] : NULL;
		int c;
		if (!n)
			c = 1;
		else if (!e)
			c = -1;
		else {
			uint64_t pn = CSV_REF_RECNO(n->parent);
			c = pn != e->dir ? (pn < e->dir ? -1 : 1) : cmp_name_bytes(f, n->off, n->len, e->off, e->len);
		}
		if (c > 0) {
			/* An entry no record's name backs. */
			problem(f, "Directory record %" PRIu64 ": entry \"%s\" points to record %" PRIu64
				   " which does not hold that name (%s).",
				e->dir, pool_str(f, e->off, e->len, s), CSV_REF_RECNO(e->ref),
				target_valid(f, e->ref) ? "stale entry" : "record free, damaged or reused");
			r = f->o->repair ? edit_dir(f, e->dir, f->pool + e->off, e->len, 0, 0, false) : 0;
			outcome(f, r, "Entry removed");
			k++;
			continue;
		}
		/* Names with this key (several records may claim it), and the
		 * entry with it, if any. */
		size_t end = i;
		while (end < f->nnames && f->names[end].parent == n->parent &&
		       cmp_name_bytes(f, f->names[end].off, f->names[end].len, n->off, n->len) == 0)
			end++;
		bool have_entry = c == 0;
		uint64_t dir = CSV_REF_RECNO(n->parent);
		struct name_ent *winner = NULL;
		if (have_entry) {
			for (size_t x = i; x < end; x++)
				if (CSV_REF_RECNO(e->ref) == f->names[x].recno && target_valid(f, e->ref) &&
				    parent_valid(f, n->parent))
					winner = &f->names[x];
			if (winner) {
				winner->linked = e->linked = 1;
				uint8_t want = mode_to_dtype(f->rec[winner->recno].mode);
				if (e->type != want) {
					problem(f, "Directory record %" PRIu64 ": entry \"%s\" has type %u, record %" PRIu64
						   " is of type %u.", dir, pool_str(f, e->off, e->len, s), e->type,
						winner->recno, want);
					r = f->o->repair ? edit_dir(f, dir, f->pool + e->off, e->len, e->ref, want, true) : 0;
					outcome(f, r, "Type corrected");
				}
			} else {
				problem(f, "Directory record %" PRIu64 ": entry \"%s\" points to record %" PRIu64
					   " which is free, damaged or reused.", dir, pool_str(f, e->off, e->len, s),
					CSV_REF_RECNO(e->ref));
				r = f->o->repair ? edit_dir(f, dir, f->pool + e->off, e->len, 0, 0, false) : 0;
				outcome(f, r, "Entry removed");
				have_entry = false;
			}
			k++;
		}
		for (size_t x = i; x < end; x++) {
			struct name_ent *m = &f->names[x];
			if (m == winner)
				continue;
			pool_str(f, m->off, m->len, s);
			if (!parent_valid(f, m->parent)) {
				problem(f, "Record %" PRIu64 ": name \"%s\" is under record %" PRIu64
					   " which is not a directory in use.", m->recno, s, CSV_REF_RECNO(m->parent));
				r = f->o->repair ? drop_name(f, m->recno, m->parent, f->pool + m->off, m->len) : 0;
				outcome(f, r, "Name dropped");
			} else if (winner || (have_entry && !winner)) {
				problem(f, "Record %" PRIu64 ": name \"%s\" in directory record %" PRIu64
					   " is taken by another record.", m->recno, s, dir);
				r = f->o->repair ? drop_name(f, m->recno, m->parent, f->pool + m->off, m->len) : 0;
				outcome(f, r, "Name dropped");
			} else {
				/* No entry: enter it (always, for a rebuilt index). */
				if (!f->rec[dir].index_bad)
					problem(f, "Directory record %" PRIu64 ": no entry for \"%s\" (record %" PRIu64 ").",
						dir, s, m->recno);
				r = 0;
				if (f->o->repair)
					r = edit_dir(f, dir, f->pool + m->off, m->len, CSV_REF(m->recno, f->rec[m->recno].seq),
						     mode_to_dtype(f->rec[m->recno].mode), false);
				if (!f->rec[dir].index_bad)
					outcome(f, r, "Entry restored");
				if (r == 0) {
					m->linked = 1;
					winner = m;
				}
			}
		}
		i = end;
	}
	for (uint64_t d = 0; d < f->nrec; d++)
		if (f->rec[d].index_bad && f->rec[d].state == REC_IN_USE)
			outcome(f, 0, "Index rebuilt from the names its files hold");
	return 0;
}

/* ---- pass 5: connectivity and link counts -------------------------------- */

/* Releases the clusters of a file that is being freed. */
static void release_file(struct fsck *f, uint64_t recno)
{
	const struct csv_d_attr *a = record_attr_find_const(f->buf, CSV_ATTR_DATA, 0);
	struct csv_runlist rl;
	if (!a || !f->alloc)
		return;
	if (le16_to_cpu(((const struct csv_d_attr_data *)attr_payload_const(a))->form) == CSV_DATA_RESIDENT)
		return;
	if (runlist_decode(attr_payload_const(a), attr_payload_len(a), &f->nv.io, CSV_REF(recno, f->rec[recno].seq),
			   f->g->total_clusters, &rl) < 0)
		return;
	for (size_t i = 0; i < rl.count; i++)
		(void)alloc_release(f->alloc, rl.runs[i].lcn, rl.runs[i].length);
	for (size_t i = 0; i < rl.n_ext; i++)
		(void)alloc_release(f->alloc, block_to_lcn(f->g, rl.ext_blocks[i]), 1);
	runlist_free(&rl);
}

static void clear_orphan_flag(void *rec)
{
	struct csv_d_record *r = rec;
	r->flags = cpu_to_le16(le16_to_cpu(r->flags) & (uint16_t)~CSV_REC_ORPHAN);
}

/* Links record recno under /lost+found as "#recno". */
static int reconnect(struct fsck *f, uint64_t recno)
{
	struct rec_info *lf = &f->rec[CSV_RECNO_LOST_FOUND];
	uint64_t lf_ref = CSV_REF(CSV_RECNO_LOST_FOUND, lf->seq);
	char name[40];
	int r = -ENOENT;

	if (lf->state != REC_IN_USE || !lf->is_dir)
		return -ENOENT;
	for (unsigned attempt = 0; attempt < 100 && r != 0; attempt++) {
		if (attempt == 0)
			snprintf(name, sizeof(name), "#%" PRIu64, recno);
		else
			snprintf(name, sizeof(name), "#%" PRIu64 ".%u", recno, attempt);
		r = edit_dir(f, CSV_RECNO_LOST_FOUND, name, strlen(name), CSV_REF(recno, f->rec[recno].seq),
			     mode_to_dtype(f->rec[recno].mode), false);
		if (r < 0 && r != -EEXIST)
			return r;
	}
	if (r < 0)
		return r;
	r = read_record(f, recno, f->buf);
	if (r == 0 && f->rec[recno].is_dir) {
		/* A directory keeps exactly one name. */
		struct csv_d_attr *a;
		while ((a = record_attr_find(f->buf, CSV_ATTR_NAME, 0)))
			record_attr_remove(f->buf, a);
	}
	if (r == 0)
		r = record_name_add(f->buf, lf_ref, name, strlen(name));
	if (r == 0) {
		clear_orphan_flag(f->buf);
		r = write_record(f, recno, f->buf);
	}
	return r;
}

static int cmp_names_by_parent(const void *a, const void *b)
{
	const struct name_ent *x = a, *y = b;
	uint64_t px = CSV_REF_RECNO(x->parent), py = CSV_REF_RECNO(y->parent);
	return (px > py) - (px < py);
}

/* Marks what is reachable from dir through linked names (names sorted by
 * parent). Iterative, so deep trees do not exhaust the stack. */
static int mark_reachable(struct fsck *f, uint64_t start)
{
	uint64_t *stack = NULL;
	size_t n = 0, cap = 0;
	int r = grow((void **)&stack, &cap, 1, sizeof(*stack));
	if (r < 0)
		return r;
	f->rec[start].reached = true;
	stack[n++] = start;
	while (n > 0) {
		uint64_t d = stack[--n];
		/* Binary search for the first name under d. */
		size_t lo = 0, hi = f->nnames;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (CSV_REF_RECNO(f->names[mid].parent) < d)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (size_t i = lo; i < f->nnames && CSV_REF_RECNO(f->names[i].parent) == d; i++) {
			struct name_ent *m = &f->names[i];
			if (!m->linked || f->rec[m->recno].reached)
				continue;
			f->rec[m->recno].reached = true;
			if (f->rec[m->recno].is_dir) {
				r = grow((void **)&stack, &cap, n + 1, sizeof(*stack));
				if (r < 0)
					break;
				stack[n++] = m->recno;
			}
		}
	}
	free(stack);
	return r;
}

static int check_connectivity(struct fsck *f)
{
	int r;

	sort_ctx = f;
	qsort(f->names, f->nnames, sizeof(*f->names), cmp_names_by_parent);
	/* A directory has one link; extra ones are unlinked. */
	for (size_t i = 0; i < f->nnames; i++) {
		struct name_ent *m = &f->names[i];
		if (!m->linked)
			continue;
		struct rec_info *ri = &f->rec[m->recno];
		if (ri->is_dir && (ri->links > 0 || m->recno == CSV_RECNO_ROOT)) {
			char s[CSV_NAME_MAX + 1];
			problem(f, "Directory record %" PRIu64 " has a second name \"%s\" in directory record %" PRIu64 ".",
				m->recno, pool_str(f, m->off, m->len, s), CSV_REF_RECNO(m->parent));
			r = 0;
			if (f->o->repair) {
				r = edit_dir(f, CSV_REF_RECNO(m->parent), f->pool + m->off, m->len, 0, 0, false);
				if (r == 0)
					r = drop_name(f, m->recno, m->parent, f->pool + m->off, m->len);
			}
			outcome(f, r, "Second name removed");
			m->linked = 0;
			continue;
		}
		ri->links++;
	}

	if (f->rec[CSV_RECNO_ROOT].state == REC_IN_USE) {
		r = mark_reachable(f, CSV_RECNO_ROOT);
		if (r < 0)
			return r;
	}
	for (uint64_t recno = CSV_RECNO_ROOT; recno < f->nrec; recno++) {
		struct rec_info *ri = &f->rec[recno];
		if (ri->state != REC_IN_USE || ri->reached)
			continue;
		if (!ri->is_dir && ri->links == 0 && ri->orphan) {
			/* Unlinked while open and never closed: reclaim it. */
			problem(f, "Record %" PRIu64 " was unlinked while open (orphan).", recno);
			r = 0;
			if (f->o->repair) {
				r = read_record(f, recno, f->buf);
				if (r == 0) {
					release_file(f, recno);
					r = clear_record(f, recno, ri->seq);
				}
			}
			outcome(f, r, "Orphan reclaimed");
			if (r == 0 && f->o->repair)
				ri->state = REC_FREE;
			continue;
		}
		if (!ri->is_dir && ri->links > 0)
			continue; /* linked from a directory reconnected below */
		if (recno == CSV_RECNO_ROOT)
			continue;
		problem(f, "%s record %" PRIu64 " is not reachable from the root.", ri->is_dir ? "Directory" : "File",
			recno);
		r = 0;
		if (f->o->repair)
			r = reconnect(f, recno);
		outcome(f, r, "Reconnected under /lost+found");
		if (ri->is_dir && (r == 0 || !f->o->repair)) {
			if (ri->links == 0 && f->rec[CSV_RECNO_LOST_FOUND].state == REC_IN_USE)
				f->rec[CSV_RECNO_LOST_FOUND].subdirs++;
			ri->links = 1;
			ri->parent = CSV_REF(CSV_RECNO_LOST_FOUND, f->rec[CSV_RECNO_LOST_FOUND].seq);
			r = mark_reachable(f, recno);
			if (r < 0)
				return r;
		} else if (r == 0) {
			ri->links = 1;
			ri->reached = true;
		}
	}

	/* Subdirectory counts and each directory's parent, from the links. */
	for (size_t i = 0; i < f->nnames; i++) {
		struct name_ent *m = &f->names[i];
		if (!m->linked || !f->rec[m->recno].is_dir)
			continue;
		f->rec[CSV_REF_RECNO(m->parent)].subdirs++;
		f->rec[m->recno].parent = m->parent;
	}

	for (uint64_t recno = CSV_RECNO_ROOT; recno < f->nrec; recno++) {
		struct rec_info *ri = &f->rec[recno];
		if (ri->state != REC_IN_USE)
			continue;
		uint32_t want = ri->is_dir ? 2 + ri->subdirs : ri->links;
		uint64_t want_parent = recno == CSV_RECNO_ROOT ? CSV_REF(CSV_RECNO_ROOT, ri->seq) : ri->parent;
		bool fix_orphan = ri->orphan && ri->links > 0;
		if (want == ri->nlink && !fix_orphan) {
			if (!ri->is_dir || recno != CSV_RECNO_ROOT)
				continue;
		}
		r = read_record(f, recno, f->buf);
		if (r < 0)
			return r;
		struct csv_d_record *rec = (void *)f->buf;
		bool dirty = false;
		if (want != le32_to_cpu(rec->nlink)) {
			problem(f, "Record %" PRIu64 ": link count is %u, should be %u.", recno, le32_to_cpu(rec->nlink), want);
			rec->nlink = cpu_to_le32(want);
			outcome(f, 0, "Link count corrected");
			dirty = true;
		}
		if (ri->is_dir && le64_to_cpu(rec->parent) != want_parent) {
			problem(f, "Directory record %" PRIu64 ": parent is %" PRIu64 ", should be record %" PRIu64 ".",
				recno, CSV_REF_RECNO(le64_to_cpu(rec->parent)), CSV_REF_RECNO(want_parent));
			rec->parent = cpu_to_le64(want_parent);
			outcome(f, 0, "Parent corrected");
			dirty = true;
		}
		if (fix_orphan) {
			problem(f, "Record %" PRIu64 " is flagged orphan but has %u links.", recno, ri->links);
			clear_orphan_flag(rec);
			outcome(f, 0, "Orphan flag cleared");
			dirty = true;
		}
		if (dirty && f->o->repair) {
			r = write_record(f, recno, f->buf);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* Rewrites the run lists of files that lost ranges in pass 2. */
static int apply_run_fixes(struct fsck *f)
{
	for (size_t i = 0; i < f->nfixes; i++) {
		struct run_fix *x = &f->fixes[i];
		int r = 0;
		if (f->o->repair && f->rec[x->recno].state == REC_IN_USE) {
			r = read_record(f, x->recno, f->buf);
			if (r == 0)
				r = record_data_set_runs(f->buf, &x->rl, &f->nv.io, CSV_REF(x->recno, f->rec[x->recno].seq));
			if (r == 0)
				r = write_record(f, x->recno, f->buf);
		}
		outcome(f, r, "Run list rewritten; lost ranges read as holes");
	}
	return 0;
}

/* ---- pass 6: bitmaps ------------------------------------------------------ */

struct bad_blocks {
	struct fsck *f;
	const char *what;
	uint64_t region;
	uint64_t *list;
	size_t n, cap;
};

static void note_bad_block(void *ud, uint64_t blocknr, int err)
{
	struct bad_blocks *b = ud;
	problem(b->f, "%s block %" PRIu64 " is damaged: %s.", b->what, blocknr,
		err == -EBADMSG ? "checksum mismatch" : strerror(-err));
	if (grow((void **)&b->list, &b->cap, b->n + 1, sizeof(*b->list)) == 0)
		b->list[b->n++] = blocknr - b->region;
}

/* Compares a bitmap region with the bitmap it should hold, reports the
 * differences by range and, when repairing, rewrites the blocks that
 * differ or are damaged. */
static int check_bitmap(struct fsck *f, const char *what, const char *unit, uint64_t region, uint64_t blocks,
			uint32_t magic, const struct csv_bitmap *want)
{
	struct csv_bitmap disk = { 0 };
	struct bad_blocks bad = { .f = f, .what = what, .region = region };
	unsigned ranges = 0;
	int r = bitmap_load(f->v, region, blocks, magic, want->nbits, &disk, note_bad_block, &bad);
	if (r < 0) {
		bitmap_free(&disk);
		free(bad.list);
		return r;
	}
	uint8_t *dirty = calloc(blocks, 1);
	if (!dirty) {
		bitmap_free(&disk);
		free(bad.list);
		return -ENOMEM;
	}
	for (size_t i = 0; i < bad.n; i++)
		dirty[bad.list[i]] = 1;
	uint64_t bit, len;
	bool w;
	for (uint64_t from = 0; bitmap_next_difference(want, &disk, from, &bit, &len, &w) == 1; from = bit + len) {
		uint64_t end = bit + len;
		if (!dirty[bit / CSV_BITMAP_BITS]) {
			/* A range in a damaged block was reported with the block. */
			if (ranges < 20)
				fprintf(f->out, "%s block %" PRIu64 ": %s %" PRIu64 "-%" PRIu64 " marked %s but %s.\n", what,
					region + bit / CSV_BITMAP_BITS, unit, bit, end - 1, w ? "free" : "in use",
					w ? "in use" : "free");
			ranges++;
		}
		for (uint64_t b = bit / CSV_BITMAP_BITS; b <= (end - 1) / CSV_BITMAP_BITS; b++)
			dirty[b] = 1;
	}
	if (ranges > 20)
		fprintf(f->out, "%s: %u more differing ranges not listed.\n", what, ranges - 20);
	f->found += ranges;
	unsigned problems = ranges + (unsigned)bad.n;
	r = 0;
	for (uint64_t b = 0; b < blocks && f->o->repair && r == 0; b++)
		if (dirty[b])
			r = bitmap_store_block(f->v, region, magic, want, b, 0);
	if (problems) {
		/* One outcome line covers every problem of the bitmap. */
		outcome(f, r, "Bitmap blocks rewritten");
		if (f->o->repair && r == 0)
			f->fixed += problems - 1;
		else
			f->unfixed += problems - 1;
	}
	free(dirty);
	free(bad.list);
	bitmap_free(&disk);
	return 0;
}

static int check_bitmaps(struct fsck *f)
{
	struct csv_bitmap rec_want = { 0 };
	int r = bitmap_init(&rec_want, f->g->max_records);
	if (r < 0)
		return r;
	bitmap_set_range(&rec_want, 0, CSV_FIRST_USER_RECORD);
	for (uint64_t i = CSV_FIRST_USER_RECORD; i < f->nrec; i++)
		if (f->rec[i].state == REC_IN_USE || f->rec[i].state == REC_BAD)
			bitmap_set_range(&rec_want, i, 1);
	const struct csv_bitmap *clusters = f->alloc ? alloc_bitmap(f->alloc) : &f->claimed;
	r = check_bitmap(f, "Cluster bitmap", "clusters", f->g->cbitmap_block, f->g->cbitmap_blocks,
			 CSV_MAGIC_CBITMAP, clusters);
	if (r == 0)
		r = check_bitmap(f, "Record bitmap", "records", f->g->rbitmap_block, f->g->rbitmap_blocks,
				 CSV_MAGIC_RBITMAP, &rec_want);
	bitmap_free(&rec_want);
	return r;
}

/* ---- the whole check -------------------------------------------------- */

/* The mirror of record 0 must hold record 0's contents. */
static void check_mft_mirror(struct fsck *f)
{
	_cleanup_free_ uint8_t *rec0 = malloc(CSV_RECORD_SIZE);
	enum meta_fault mf = META_OK;
	if (!rec0 || read_record(f, 0, rec0) < 0)
		return; /* pass 2 reports record 0 */
	int r = volume_read_raw(f->v, f->g->mft_mirror_block, 1, f->buf);
	if (r == 0)
		r = meta_verify(f->buf, CSV_RECORD_SIZE, CSV_MAGIC_RECORD, f->g->mft_mirror_block, f->g->uuid, &mf);
	size_t body = offsetof(struct csv_d_blkhdr, lsn);
	if (r == 0 && memcmp(rec0 + body, f->buf + body, CSV_RECORD_SIZE - body) == 0)
		return;
	problem(f, "MFT mirror (block %" PRIu64 ") %s.", f->g->mft_mirror_block,
		r < 0 ? meta_fault_str(mf) : "differs from record 0");
	r = 0;
	if (f->o->repair)
		r = volume_write_meta(f->v, f->g->mft_mirror_block, 1, CSV_MAGIC_RECORD,
				      le64_to_cpu(((struct csv_d_blkhdr *)rec0)->lsn), rec0);
	outcome(f, r, "Mirror rewritten from record 0");
}

/* Claims the fixed regions, the backup header and the MFT's clusters. */
static int claim_system(struct fsck *f)
{
	int r = claim(f, 0, f->g->data_lcn);
	if (r == 0)
		r = claim(f, f->g->total_clusters - 1, 1);
	for (size_t i = 0; i < f->mft.rl.count && r == 0; i++)
		r = claim(f, f->mft.rl.runs[i].lcn, f->mft.rl.runs[i].length);
	for (size_t i = 0; i < f->mft.rl.n_ext && r == 0; i++)
		r = claim(f, block_to_lcn(f->g, f->mft.rl.ext_blocks[i]), 1);
	return r;
}

/* Marks the volume checked in both headers. */
static int stamp_headers(struct fsck *f)
{
	f->g->check_time_ns = realtime_ns();
	f->g->state = f->unfixed ? CSV_STATE_ERRORS : CSV_STATE_CLEAN;
	int r = volume_write_header(f->v, f->g->backup_header_block);
	return r == 0 ? volume_write_header(f->v, 0) : r;
}

static void summary(struct fsck *f)
{
	uint64_t files = 0, dirs = 0, used = 0;
	const struct csv_bitmap *clusters = f->alloc ? alloc_bitmap(f->alloc) : &f->claimed;
	for (uint64_t i = CSV_RECNO_ROOT; i < f->nrec; i++)
		if (f->rec[i].state == REC_IN_USE && (i < CSV_FIRST_USER_RECORD ? i <= CSV_RECNO_LOST_FOUND : true))
			f->rec[i].is_dir ? dirs++ : files++;
	used = bitmap_count_set(clusters, 0, clusters->nbits);
	char uuid[37];
	uuid_format(f->g->uuid, uuid);
	fprintf(f->out, "%s%s%s: %" PRIu64 " files, %" PRIu64 " directories, %" PRIu64 "/%" PRIu64 " clusters in use.\n",
		f->g->label[0] ? f->g->label : uuid, f->g->label[0] ? " " : "", f->g->label[0] ? uuid : "",
		files, dirs, used, f->g->total_clusters);
}

static int run_passes(struct fsck *f)
{
	char err[512];
	bool used_mirror;
	int r;

	phase(f, "Pass 1: headers, journal and cluster area");
	check_headers(f);
	check_journal(f);
	check_cluster_area(f);

	r = mft_load(f->v, &f->nv.io, &f->mft, &used_mirror, err, sizeof(err));
	if (r < 0) {
		fprintf(f->out, "%s\nThe MFT cannot be found; nothing more can be checked.\n", err);
		f->found++;
		f->unfixed++;
		return 0;
	}
	f->mft_loaded = true;
	f->nrec = f->mft.nrecords;
	f->rec = calloc(f->nrec, sizeof(*f->rec));
	if (!f->rec)
		return -ENOMEM;
	r = bitmap_init(&f->claimed, f->g->total_clusters);
	if (r < 0)
		return r;
	r = claim_system(f);
	if (r < 0) {
		fprintf(f->out, "The MFT's runs overlap the fixed regions; nothing more can be checked.\n");
		f->found++;
		f->unfixed++;
		return 0;
	}
	if (!used_mirror)
		check_mft_mirror(f);

	phase(f, "Pass 2: records");
	r = scan_records(f);
	if (r < 0)
		return r;
	recreate_system_dirs(f);

	phase(f, "Pass 3: directory indexes");
	r = check_indexes(f);
	if (r < 0)
		return r;

	if (f->o->repair) {
		r = alloc_new(&f->claimed, f->g->mft_zone_lcn, f->g->mft_zone_clusters, &f->alloc);
		if (r < 0)
			return r;
		f->nv.alloc = f->alloc;
	}
	r = apply_run_fixes(f);
	if (r < 0)
		return r;

	phase(f, "Pass 4: names and directory entries");
	r = match_names(f);
	if (r < 0)
		return r;

	phase(f, "Pass 5: connectivity and link counts");
	r = check_connectivity(f);
	if (r < 0)
		return r;

	phase(f, "Pass 6: cluster and record bitmaps");
	return check_bitmaps(f);
}

int fsck_volume(struct csv_blockdev *bd, const struct fsck_options *o, FILE *out)
{
	struct fsck f = { .o = o, .out = out };
	char err[512] = "";
	int r, status;

	r = volume_open_bdev(bd, &f.v, err, sizeof(err));
	if (r < 0) {
		fprintf(out, "%s: %s\n", blockdev_name(bd), err[0] ? err : strerror(-r));
		return FSCK_OPERATIONAL;
	}
	f.g = &f.v->g;
	f.buf = malloc(CSV_RECORD_SIZE);
	f.node = malloc(f.g->cluster_size);
	if (!f.buf || !f.node) {
		r = -ENOMEM;
		goto out;
	}
	nodeio_vol_init(&f.nv, f.v, NULL, 0);

	r = run_passes(&f);
	if (r == 0 && o->repair) {
		r = stamp_headers(&f);
		if (r == 0)
			r = blockdev_flush(bd);
	}
	if (r == 0 && f.mft_loaded)
		summary(&f);
out:
	if (r < 0) {
		fprintf(out, "%s: check stopped: %s\n", blockdev_name(bd), strerror(-r));
		status = FSCK_OPERATIONAL | (f.found ? FSCK_UNCORRECTED : 0);
	} else if (f.unfixed) {
		status = FSCK_UNCORRECTED;
	} else {
		status = f.fixed || f.found ? FSCK_CORRECTED : FSCK_OK;
	}
	for (size_t i = 0; i < f.nfixes; i++)
		runlist_free(&f.fixes[i].rl);
	free(f.fixes);
	if (f.mft_loaded)
		mft_release(&f.mft);
	if (f.alloc)
		alloc_free_all(f.alloc);
	bitmap_free(&f.claimed);
	free(f.rec);
	free(f.names);
	free(f.dents);
	free(f.pool);
	free(f.buf);
	free(f.node);
	volume_close(f.v);
	return status;
}
