/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"
#include "bitmap.h"
#include "callbacks.h"
#include "dispatch.h"
#include "format.h"
#include "fs.h"
#include "inodes.h"
#include "mft.h"
#include "record.h"
#include "util.h"

/* One record buffer for the dispatcher (the engine keeps its own). */
static uint8_t recbuf[CSV_RECORD_SIZE] __attribute__((aligned(8)));

/* Reads the record a file reference names and checks its sequence number:
 * -ESTALE when the record is free, a system record, or holds another file. */
static int load(struct conn *c, uint64_t ref, void *rec)
{
	uint64_t recno = CSV_REF_RECNO(ref);
	int r = mft_read(&c->s->fs->mft, recno, rec, NULL, 0);
	if (r == -ENOENT)
		return -ESTALE;  /* beyond the table */
	if (r < 0) {
		connlog(c, LOG_ERR, "cannot read record %llu: %s", (unsigned long long)recno, strerror(-r));
		return -EIO;
	}
	const struct csv_d_record *d = rec;
	if (!record_in_use(rec) || (le16_to_cpu(d->flags) & CSV_REC_SYSTEM) || record_ref(rec) != ref)
		return -ESTALE;
	return 0;
}

static uint32_t rec_mode(const void *rec)
{
	return le32_to_cpu(((const struct csv_d_record *)rec)->mode);
}

static void rec_to_attr(const void *rec, struct csv_wire_attr *a)
{
	const struct csv_d_record *d = rec;
	*a = (struct csv_wire_attr){
		.ino = record_ref(rec),
		.mode = le32_to_cpu(d->mode),
		.nlink = le32_to_cpu(d->nlink),
		.uid = le32_to_cpu(d->uid),
		.gid = le32_to_cpu(d->gid),
		.rdev = le32_to_cpu(d->rdev),
		.size = le64_to_cpu(d->size),
		.valid_data_length = le64_to_cpu(d->valid_data_length),
		.alloc_clusters = le64_to_cpu(d->alloc_clusters),
		.atime_ns = (int64_t)le64_to_cpu(d->atime_ns),
		.mtime_ns = (int64_t)le64_to_cpu(d->mtime_ns),
		.ctime_ns = (int64_t)le64_to_cpu(d->ctime_ns),
		.btime_ns = (int64_t)le64_to_cpu(d->btime_ns),
		/* Every change writes the record in a new transaction. */
		.attr_version = le64_to_cpu(d->h.lsn),
	};
}

/* Reads the record of ref and encodes its attributes as the reply. */
static int reply_attr(struct conn *c, const struct csv_wire_msghdr *h, uint64_t ref, struct csv_wire_frame *f)
{
	struct csv_wire_attr a;
	int r = load(c, ref, recbuf);
	if (r < 0)
		return csv_wire_reply_status_encode(f, h, c->s->epoch, r);
	rec_to_attr(recbuf, &a);
	return csv_wire_attr_reply_encode(f, h->type, h->req_id, c->s->epoch, &a);
}

/* The reference of the record recno now holds (after a create). */
static int ref_of(struct conn *c, uint64_t recno, uint64_t *ret)
{
	int r = mft_read(&c->s->fs->mft, recno, recbuf, NULL, 0);
	if (r < 0)
		return r;
	*ret = record_ref(recbuf);
	return 0;
}

static const char *errname(int r)
{
	return r ? strerror(-r) : "ok";
}

/* Logs a change the engine refused for a reason other than the caller's
 * (an I/O error, a damaged structure, a failed journal). */
static void log_engine_error(struct conn *c, const struct csv_wire_msghdr *h, int r)
{
	if (r == -EIO || r == -EUCLEAN || r == -EBADMSG || r == -ENOMEM || r == -E2BIG)
		connlog(c, LOG_ERR, "%s request %llu failed in the engine: %s", csv_wire_type_name(h->type),
			(unsigned long long)h->req_id, errname(r));
}

/* ---- namespace --------------------------------------------------------------- */

static int do_lookup(struct conn *c, const struct csv_wire_msghdr *h, const struct csv_wire_entry_req *m,
		     struct csv_wire_frame *f)
{
	uint64_t ref;
	int r = load(c, m->parent, recbuf);
	if (r == 0 && !S_ISDIR(rec_mode(recbuf)))
		r = -ENOTDIR;
	if (r == 0)
		r = fs_lookup(c->s->fs, CSV_REF_RECNO(m->parent), m->name.s, &ref);
	if (r < 0)
		return csv_wire_reply_status_encode(f, h, c->s->epoch, r);
	return reply_attr(c, h, ref, f);
}

/* A new file inherits the default ACL of its directory (POSIX.1e): it
 * becomes the file's access ACL, with the bits of the creation mode
 * applied to its owner, mask (or owning group) and other entries, and the
 * mode takes the ACL's bits; a directory keeps it as its default ACL too.
 * The ACLs are in the system.posix_acl_* format: a le32 version 2, then
 * entries of tag le16, perm le16, id le32. */
static int inherit_acl(struct conn *c, uint64_t dir, uint64_t recno, uint32_t mode)
{
	static uint8_t acl[CSV_WIRE_XATTR_VALUE_MAX];
	struct csv_fs *fs = c->s->fs;
	size_t n = 0;
	int r = fs_getxattr(fs, dir, "system.posix_acl_default", acl, sizeof(acl), &n);
	if (r == -ENODATA)
		return 0;
	if (r < 0)
		return r;
	if (n < 4 || (n - 4) % 8 || acl[0] != 2 || acl[1] || acl[2] || acl[3])
		return 0;  /* not an ACL the kernel wrote: nothing to inherit */
	if (S_ISDIR(mode) && (r = fs_setxattr(fs, recno, "system.posix_acl_default", acl, n)) < 0)
		return r;
	bool has_mask = false;
	for (size_t off = 4; off < n; off += 8)
		has_mask |= (acl[off] | acl[off + 1] << 8) == 0x10;
	uint32_t bits = 0;
	for (size_t off = 4; off < n; off += 8) {
		unsigned tag = acl[off] | acl[off + 1] << 8, shift;
		if (tag == 0x01)  /* ACL_USER_OBJ */
			shift = 6;
		else if (tag == 0x10 || (tag == 0x04 && !has_mask))  /* ACL_MASK, ACL_GROUP_OBJ */
			shift = 3;
		else if (tag == 0x20)  /* ACL_OTHER */
			shift = 0;
		else
			continue;
		acl[off + 2] &= (uint8_t)((mode >> shift) & 7);
		bits |= (uint32_t)(acl[off + 2] & 7) << shift;
	}
	r = fs_setxattr(fs, recno, "system.posix_acl_access", acl, n);
	if (r == 0 && (mode & 0777) != bits) {
		struct fs_attr in = { .mode = (mode & 07000) | bits };
		r = fs_setattr(fs, recno, FS_SET_MODE, &in, NULL);
	}
	return r;
}

/* MKNOD, MKDIR, SYMLINK: create, then answer the new file's attributes. */
static int do_create(struct conn *c, const struct csv_wire_msghdr *h, uint64_t parent, const char *name,
		     uint32_t mode, uint32_t uid, uint32_t gid, uint32_t rdev, const char *target,
		     struct csv_wire_frame *f)
{
	uint64_t recno = 0, ref = 0;
	int r = load(c, parent, recbuf);
	if (r == 0 && !S_ISDIR(rec_mode(recbuf)))
		r = -ENOTDIR;
	if (r == 0)
		r = target ? fs_symlink(c->s->fs, CSV_REF_RECNO(parent), name, target, &recno)
			   : fs_create(c->s->fs, CSV_REF_RECNO(parent), name, mode, uid, gid, rdev, &recno);
	if (r == 0 && !target)
		r = inherit_acl(c, CSV_REF_RECNO(parent), recno, mode);
	if (r == 0)
		r = ref_of(c, recno, &ref);
	connlog(c, LOG_DEBUG, "%s %llu/%s: %s", csv_wire_type_name(h->type), (unsigned long long)parent, name,
		errname(r));
	if (r < 0) {
		log_engine_error(c, h, r);
		return csv_wire_reply_status_encode(f, h, c->s->epoch, r);
	}
	callbacks_inval_entry(c->s, c, parent, name);
	callbacks_inval_inode(c->s, c, parent);
	return reply_attr(c, h, ref, f);
}

static int do_link(struct conn *c, const struct csv_wire_msghdr *h, const struct csv_wire_link *m,
		   struct csv_wire_frame *f)
{
	int r = load(c, m->ino, recbuf);
	if (r == 0 && S_ISDIR(rec_mode(recbuf)))
		r = -EPERM;
	if (r == 0)
		r = load(c, m->newparent, recbuf);
	if (r == 0 && !S_ISDIR(rec_mode(recbuf)))
		r = -ENOTDIR;
	if (r == 0)
		r = fs_link(c->s->fs, CSV_REF_RECNO(m->ino), CSV_REF_RECNO(m->newparent), m->newname.s);
	if (r < 0) {
		log_engine_error(c, h, r);
		return csv_wire_reply_status_encode(f, h, c->s->epoch, r);
	}
	callbacks_inval_entry(c->s, c, m->newparent, m->newname.s);
	callbacks_inval_inode(c->s, c, m->newparent);
	callbacks_inval_inode(c->s, c, m->ino);
	return reply_attr(c, h, m->ino, f);
}

/* After a file open somewhere lost a link: if that was its last, it is
 * freed at its last close. */
static void mark_if_orphan(struct conn *c, uint64_t ref)
{
	if (load(c, ref, recbuf) == 0 && le32_to_cpu(((const struct csv_d_record *)recbuf)->nlink) == 0)
		inodes_set_orphan(c->s, ref);
}

/* UNLINK (dir false) and RMDIR (dir true). */
static int do_remove(struct conn *c, const struct csv_wire_msghdr *h, const struct csv_wire_entry_req *m,
		     bool dir, struct csv_wire_frame *f)
{
	uint64_t ref = 0;
	int r = load(c, m->parent, recbuf);
	if (r == 0 && !S_ISDIR(rec_mode(recbuf)))
		r = -ENOTDIR;
	if (r == 0)
		r = fs_lookup(c->s->fs, CSV_REF_RECNO(m->parent), m->name.s, &ref);
	if (r == 0)
		r = load(c, ref, recbuf);
	if (r == 0 && dir && !S_ISDIR(rec_mode(recbuf)))
		r = -ENOTDIR;
	if (r == 0 && !dir && S_ISDIR(rec_mode(recbuf)))
		r = -EISDIR;
	/* A file open on some node loses its name but lives on until its
	 * last close. */
	bool open = r == 0 && !dir && inodes_is_open(c->s, ref);
	if (r == 0)
		r = open ? fs_unlink_open(c->s->fs, CSV_REF_RECNO(m->parent), m->name.s)
			 : fs_unlink(c->s->fs, CSV_REF_RECNO(m->parent), m->name.s);
	if (r < 0)
		log_engine_error(c, h, r);
	if (r == 0 && open)
		mark_if_orphan(c, ref);
	if (r == 0) {
		callbacks_inval_entry(c->s, c, m->parent, m->name.s);
		callbacks_inval_inode(c->s, c, m->parent);
		callbacks_inval_inode(c->s, c, ref);
	}
	return csv_wire_reply_status_encode(f, h, c->s->epoch, r);
}

static int do_readlink(struct conn *c, const struct csv_wire_msghdr *h, const struct csv_wire_ino_req *m,
		       struct csv_wire_frame *f)
{
	size_t n = 0;
	char *buf = NULL;
	int r = load(c, m->ino, recbuf);
	uint64_t size = r == 0 ? le64_to_cpu(((struct csv_d_record *)recbuf)->size) : 0;
	if (r == 0 && !S_ISLNK(rec_mode(recbuf)))
		r = -EINVAL;
	if (r == 0 && (size == 0 || size > CSV_WIRE_SYMLINK_MAX))
		r = -EUCLEAN;
	if (r == 0)
		r = (buf = malloc(size)) ? 0 : -ENOMEM;
	if (r == 0)
		r = fs_read(c->s->fs, CSV_REF_RECNO(m->ino), 0, buf, size, &n);
	if (r == 0 && n != size)
		r = -EUCLEAN;
	if (r < 0) {
		log_engine_error(c, h, r);
		r = csv_wire_reply_status_encode(f, h, c->s->epoch, r);
	} else {
		struct csv_wire_readlink_reply rep = { .target = buf, .target_len = (uint32_t)n };
		r = csv_wire_readlink_reply_encode(f, h->req_id, c->s->epoch, &rep);
	}
	free(buf);
	return r;
}

/* READDIR cookies are positions: entry i (from 1) in name order. */
struct readdir_state {
	struct csv_wire_frame *f;
	uint64_t cookie, index;
	bool full;
};

static int readdir_one(void *ud, const uint8_t *name, size_t len, uint64_t ref, uint8_t type)
{
	struct readdir_state *st = ud;
	struct csv_wire_dirent d = { .ino = ref, .type = type };
	if (++st->index <= st->cookie)
		return 0;
	d.cookie = st->index;
	if (csv_wire_name_setn(&d.name, (const char *)name, len) < 0)
		return -EUCLEAN;
	int r = csv_wire_readdir_reply_add(st->f, &d);
	if (r == -ENOSPC) {
		st->full = true;
		return 1;
	}
	return r;
}

static int do_readdir(struct conn *c, const struct csv_wire_msghdr *h, const struct csv_wire_readdir *m,
		      struct csv_wire_frame *f)
{
	struct readdir_state st = { .f = f, .cookie = m->cookie };
	int r = load(c, m->ino, recbuf);
	if (r == 0 && !S_ISDIR(rec_mode(recbuf)))
		r = -ENOTDIR;
	if (r == 0)
		r = csv_wire_readdir_reply_begin(f, h->req_id, c->s->epoch, m->max_bytes);
	if (r == 0) {
		r = fs_readdir(c->s->fs, CSV_REF_RECNO(m->ino), readdir_one, &st);
		if (r > 0)
			r = 0;
	}
	if (r == 0)
		return csv_wire_readdir_reply_end(f, !st.full);
	log_engine_error(c, h, r);
	return csv_wire_reply_status_encode(f, h, c->s->epoch, r);
}

static int do_open(struct conn *c, const struct csv_wire_msghdr *h, const struct csv_wire_open *m,
		   const void *frame, size_t len, struct csv_wire_frame *f)
{
	int r = load(c, m->ino, recbuf);
	if (r == 0 && S_ISDIR(rec_mode(recbuf)) && (m->flags & CSV_WIRE_OPEN_WRITE))
		r = -EISDIR;
	/* O_TRUNC of a regular file that is not empty; other kinds ignore it.
	 * Its clusters are freed: the other nodes' layouts are recalled first. */
	bool trunc = r == 0 && (m->flags & CSV_WIRE_OPEN_TRUNC) && S_ISREG(rec_mode(recbuf)) &&
		     le64_to_cpu(((struct csv_d_record *)recbuf)->size);
	if (trunc) {
		r = inodes_recall(c->s, c, m->ino, frame, len);
		if (r == DISPATCH_PARKED)
			return r;
	}
	if (trunc && r == 0) {
		struct fs_attr in = { .size = 0 };
		r = fs_setattr(c->s->fs, CSV_REF_RECNO(m->ino), FS_SET_SIZE, &in, NULL);
		if (r < 0)
			log_engine_error(c, h, r);
		else
			callbacks_inval_inode(c->s, c, m->ino);
	}
	if (r == 0 && S_ISREG(rec_mode(recbuf)))
		r = inodes_open(c->s, c, m->ino);
	if (r < 0)
		return csv_wire_reply_status_encode(f, h, c->s->epoch, r);
	return reply_attr(c, h, m->ino, f);
}

static int do_statfs(struct conn *c, const struct csv_wire_msghdr *h, struct csv_wire_frame *f)
{
	struct csv_fs *fs = c->s->fs;
	const struct csv_geometry *g = &c->s->v->g;
	uint64_t used = bitmap_count_set(&fs->rmap, 0, fs->rmap.nbits);
	struct csv_wire_statfs m = {
		.cluster_size = g->cluster_size,
		.name_max = CSV_NAME_MAX,
		.total_clusters = g->total_clusters,
		.free_clusters = alloc_free_clusters(fs->alloc),
		.total_records = g->max_records,
		.free_records = g->max_records > used ? g->max_records - used : 0,
	};
	if (m.free_clusters > m.total_clusters)
		m.free_clusters = m.total_clusters;
	return csv_wire_statfs_reply_encode(f, h->req_id, c->s->epoch, &m);
}

/* ---- attributes, renames, space ------------------------------------------------ */

static int do_setattr(struct conn *c, const struct csv_wire_msghdr *h, const struct csv_wire_setattr *m,
		      const void *frame, size_t len, struct csv_wire_frame *f)
{
	struct fs_attr in = {
		.mode = m->mode & 07777,
		.uid = m->uid,
		.gid = m->gid,
		.size = m->size,
		.atime_ns = m->atime_ns,
		.mtime_ns = m->mtime_ns,
		.ctime_ns = m->ctime_ns,
	};
	unsigned valid = 0;
	int r = load(c, m->ino, recbuf);
	if (m->valid & CSV_WIRE_SET_MODE)
		valid |= FS_SET_MODE;
	if (m->valid & CSV_WIRE_SET_UID)
		valid |= FS_SET_UID;
	if (m->valid & CSV_WIRE_SET_GID)
		valid |= FS_SET_GID;
	if (m->valid & CSV_WIRE_SET_SIZE)
		valid |= FS_SET_SIZE;
	if (m->valid & CSV_WIRE_SET_ATIME)
		valid |= FS_SET_ATIME;
	if (m->valid & CSV_WIRE_SET_MTIME)
		valid |= FS_SET_MTIME;
	if (m->valid & CSV_WIRE_SET_CTIME)
		valid |= FS_SET_CTIME;
	if (m->valid & (CSV_WIRE_SET_ATIME_NOW | CSV_WIRE_SET_MTIME_NOW)) {
		int64_t now = (int64_t)realtime_ns();
		if (m->valid & CSV_WIRE_SET_ATIME_NOW) {
			valid |= FS_SET_ATIME;
			in.atime_ns = now;
		}
		if (m->valid & CSV_WIRE_SET_MTIME_NOW) {
			valid |= FS_SET_MTIME;
			in.mtime_ns = now;
		}
	}
	/* A shrink frees clusters: the other nodes' layouts are recalled first. */
	if (r == 0 && (valid & FS_SET_SIZE) && m->size < le64_to_cpu(((struct csv_d_record *)recbuf)->size)) {
		r = inodes_recall(c->s, c, m->ino, frame, len);
		if (r == DISPATCH_PARKED)
			return r;
	}
	if (r == 0)
		r = fs_setattr(c->s->fs, CSV_REF_RECNO(m->ino), valid, &in, NULL);
	connlog(c, LOG_DEBUG, "SETATTR %llu valid 0x%x: %s", (unsigned long long)m->ino, m->valid, errname(r));
	if (r < 0) {
		log_engine_error(c, h, r);
		return csv_wire_reply_status_encode(f, h, c->s->epoch, r);
	}
	callbacks_inval_inode(c->s, c, m->ino);
	return reply_attr(c, h, m->ino, f);
}

static int do_rename(struct conn *c, const struct csv_wire_msghdr *h, const struct csv_wire_rename *m,
		     struct csv_wire_frame *f)
{
	uint64_t src = 0, dst = 0;
	unsigned flags = 0;
	int r = load(c, m->parent, recbuf);
	if (r == 0 && !S_ISDIR(rec_mode(recbuf)))
		r = -ENOTDIR;
	if (r == 0)
		r = load(c, m->newparent, recbuf);
	if (r == 0 && !S_ISDIR(rec_mode(recbuf)))
		r = -ENOTDIR;
	if (m->flags & CSV_WIRE_RENAME_NOREPLACE)
		flags |= FS_RENAME_NOREPLACE;
	if (m->flags & CSV_WIRE_RENAME_EXCHANGE)
		flags |= FS_RENAME_EXCHANGE;
	/* The files behind both names, to invalidate them afterwards. */
	if (r == 0)
		r = fs_lookup(c->s->fs, CSV_REF_RECNO(m->parent), m->name.s, &src);
	if (r == 0 && fs_lookup(c->s->fs, CSV_REF_RECNO(m->newparent), m->newname.s, &dst) < 0)
		dst = 0;
	bool dst_open = r == 0 && dst && dst != src && !(flags & FS_RENAME_EXCHANGE) && inodes_is_open(c->s, dst);
	if (dst_open)
		flags |= FS_RENAME_TARGET_OPEN;
	if (r == 0)
		r = fs_rename(c->s->fs, CSV_REF_RECNO(m->parent), m->name.s, CSV_REF_RECNO(m->newparent),
			      m->newname.s, flags);
	if (r == 0 && dst_open)
		mark_if_orphan(c, dst);
	connlog(c, LOG_DEBUG, "RENAME %llu/%s to %llu/%s flags 0x%x: %s", (unsigned long long)m->parent,
		m->name.s, (unsigned long long)m->newparent, m->newname.s, m->flags, errname(r));
	if (r < 0) {
		log_engine_error(c, h, r);
		return csv_wire_reply_status_encode(f, h, c->s->epoch, r);
	}
	callbacks_inval_entry(c->s, c, m->parent, m->name.s);
	callbacks_inval_entry(c->s, c, m->newparent, m->newname.s);
	callbacks_inval_inode(c->s, c, m->parent);
	if (m->newparent != m->parent)
		callbacks_inval_inode(c->s, c, m->newparent);
	callbacks_inval_inode(c->s, c, src);
	if (dst && dst != src)
		callbacks_inval_inode(c->s, c, dst);
	return csv_wire_reply_status_encode(f, h, c->s->epoch, 0);
}

static int do_removexattr(struct conn *c, const struct csv_wire_msghdr *h, const struct csv_wire_removexattr *m,
			  struct csv_wire_frame *f)
{
	int r = load(c, m->ino, recbuf);
	if (r == 0)
		r = fs_removexattr(c->s->fs, CSV_REF_RECNO(m->ino), m->name.s);
	if (r < 0)
		log_engine_error(c, h, r);
	else
		callbacks_inval_inode(c->s, c, m->ino);
	return csv_wire_reply_status_encode(f, h, c->s->epoch, r);
}

/* Regular files only: -EISDIR for a directory, -EINVAL for other kinds. */
static int check_regular(const void *rec)
{
	uint32_t mode = rec_mode(rec);
	return S_ISREG(mode) ? 0 : S_ISDIR(mode) ? -EISDIR : -EINVAL;
}

static int do_fallocate(struct conn *c, const struct csv_wire_msghdr *h, const struct csv_wire_fallocate *m,
			const void *frame, size_t len, struct csv_wire_frame *f)
{
	unsigned mode = 0;
	int r = load(c, m->ino, recbuf);
	if (r == 0)
		r = check_regular(recbuf);
	if (m->mode & CSV_WIRE_FALLOC_KEEP_SIZE)
		mode |= FS_FALLOC_KEEP_SIZE;
	if (m->mode & CSV_WIRE_FALLOC_PUNCH_HOLE)
		mode |= FS_FALLOC_PUNCH_HOLE;
	/* The engine has no ZERO_RANGE. */
	if (r == 0 && (m->mode & CSV_WIRE_FALLOC_ZERO_RANGE))
		r = -EOPNOTSUPP;
	/* A punched hole frees clusters: the other nodes' layouts are
	 * recalled first. */
	if (r == 0 && (mode & FS_FALLOC_PUNCH_HOLE)) {
		r = inodes_recall(c->s, c, m->ino, frame, len);
		if (r == DISPATCH_PARKED)
			return r;
	}
	if (r == 0)
		r = fs_fallocate(c->s->fs, CSV_REF_RECNO(m->ino), mode, m->offset, m->length);
	connlog(c, LOG_DEBUG, "FALLOCATE %llu mode 0x%x %llu+%llu: %s", (unsigned long long)m->ino, m->mode,
		(unsigned long long)m->offset, (unsigned long long)m->length, errname(r));
	if (r < 0) {
		log_engine_error(c, h, r);
		return csv_wire_reply_status_encode(f, h, c->s->epoch, r);
	}
	callbacks_inval_data(c->s, c, m->ino);
	return reply_attr(c, h, m->ino, f);
}

/* ---- layouts ------------------------------------------------------------------- */


static int do_layout_get(struct conn *c, const struct csv_wire_msghdr *h, const struct csv_wire_layout_get *m,
			 const void *frame, size_t len, struct csv_wire_frame *f)
{
	struct fs_extent *ext = NULL;
	struct csv_wire_extent *wext = NULL;
	size_t n = 0;
	bool for_write = m->flags & CSV_WIRE_LAYOUT_WRITE;
	int r = load(c, m->ino, recbuf);
	if (r == 0)
		r = check_regular(recbuf);
	/* No new layout while one of this file is being recalled. */
	if (r == 0) {
		r = inodes_wait_recall(c->s, c, m->ino, frame, len);
		if (r == DISPATCH_PARKED)
			return r;
	}
	if (r == 0)
		r = inodes_layout_granted(c->s, c, m->ino);
	if (r == 0) {
		ext = calloc(CSV_WIRE_LAYOUT_EXTENTS_MAX, sizeof(*ext));
		wext = calloc(CSV_WIRE_LAYOUT_EXTENTS_MAX, sizeof(*wext));
		if (!ext || !wext)
			r = -ENOMEM;
	}
	if (r == 0)
		r = fs_layout_get(c->s->fs, CSV_REF_RECNO(m->ino), m->offset, m->length, for_write, ext,
				  CSV_WIRE_LAYOUT_EXTENTS_MAX, &n);
	/* The record as it is now (a write layout may have allocated). */
	if (r == 0)
		r = load(c, m->ino, recbuf);
	connlog(c, LOG_DEBUG, "LAYOUT_GET %llu %llu+%llu%s: %s, %zu extents", (unsigned long long)m->ino,
		(unsigned long long)m->offset, (unsigned long long)m->length, for_write ? " for write" : "",
		errname(r), n);
	if (r < 0) {
		log_engine_error(c, h, r);
		r = csv_wire_reply_status_encode(f, h, c->s->epoch, r);
	} else {
		const struct csv_d_record *d = (const void *)recbuf;
		for (size_t i = 0; i < n; i++)
			wext[i] = (struct csv_wire_extent){
				.file_offset = ext[i].file_offset,
				.lun_offset = ext[i].lun_offset,
				.length = ext[i].length,
				.flags = (ext[i].flags & FS_EXTENT_UNWRITTEN) ? CSV_WIRE_EXTENT_UNWRITTEN : 0,
			};
		struct csv_wire_layout rep = {
			/* The record's version names the layout. */
			.generation = le64_to_cpu(d->h.lsn),
			.size = le64_to_cpu(d->size),
			.valid_data_length = le64_to_cpu(d->valid_data_length),
			.n_extents = (uint32_t)n,
			.extents = wext,
		};
		r = csv_wire_layout_get_reply_encode(f, h->req_id, c->s->epoch, &rep);
		if (for_write)
			callbacks_inval_data(c->s, c, m->ino);
	}
	free(ext);
	free(wext);
	return r;
}

static int do_layout_commit(struct conn *c, const struct csv_wire_msghdr *h,
			    const struct csv_wire_layout_commit *m, struct csv_wire_frame *f)
{
	struct fs_range *ranges = NULL;
	int r = load(c, m->ino, recbuf);
	if (r == 0)
		r = check_regular(recbuf);
	if (r == 0 && m->n_ranges && !(ranges = calloc(m->n_ranges, sizeof(*ranges))))
		r = -ENOMEM;
	if (r == 0) {
		const struct csv_d_record *d = (const void *)recbuf;
		uint64_t size = le64_to_cpu(d->size), vdl = le64_to_cpu(d->valid_data_length);
		/* A commit only grows the size and the valid data length. */
		if ((m->flags & CSV_WIRE_COMMIT_SIZE) && m->size > size)
			size = m->size;
		if ((m->flags & CSV_WIRE_COMMIT_VDL) && m->valid_data_length > vdl)
			vdl = m->valid_data_length;
		if (vdl > size)
			vdl = size;
		for (uint32_t i = 0; i < m->n_ranges; i++)
			ranges[i] = (struct fs_range){ .offset = m->ranges[i].offset, .length = m->ranges[i].length };
		r = fs_layout_commit(c->s->fs, CSV_REF_RECNO(m->ino), size, vdl,
				     (m->flags & CSV_WIRE_COMMIT_MTIME) ? m->mtime_ns : 0, ranges, m->n_ranges);
	}
	free(ranges);
	connlog(c, LOG_DEBUG, "LAYOUT_COMMIT %llu size %llu, %u ranges: %s", (unsigned long long)m->ino,
		(unsigned long long)m->size, m->n_ranges, errname(r));
	if (r < 0) {
		log_engine_error(c, h, r);
		return csv_wire_reply_status_encode(f, h, c->s->epoch, r);
	}
	/* Other nodes drop their layouts and cached data of the file. */
	callbacks_inval_data(c->s, c, m->ino);
	return reply_attr(c, h, m->ino, f);
}

/* ---- redirected I/O: a client's data through the coordinator's path ---------- */

/* Redirected I/O reaches the data area only (clusters from data_lcn to the
 * end), never the headers, the journal or the bitmaps in front of it. */
static int check_data_range(struct conn *c, uint64_t off, uint32_t len)
{
	const struct csv_geometry *g = &c->s->v->g;
	uint64_t lo = g->data_lcn * g->cluster_size, hi = g->total_clusters * g->cluster_size;
	if (off < lo || off > hi || len > hi - off) {
		connlog(c, LOG_WARNING, "redirected I/O of %u bytes at %llu is outside the data area", len,
			(unsigned long long)off);
		return -EINVAL;
	}
	return 0;
}

static int do_data_read(struct conn *c, const struct csv_wire_msghdr *h, const struct csv_wire_data_read *m,
			struct csv_wire_frame *f)
{
	uint8_t *buf = NULL;
	int r = check_data_range(c, m->lun_offset, m->length);
	if (r == 0 && !(buf = malloc(m->length)))
		r = -ENOMEM;
	if (r == 0)
		r = blockdev_pread(c->s->v->bd, buf, m->length, m->lun_offset);
	if (r < 0) {
		free(buf);
		return csv_wire_reply_status_encode(f, h, c->s->epoch, r);
	}
	/* The reply references the bytes: flatten it so that it owns them. */
	struct csv_wire_frame tmp = { 0 };
	struct iovec iov = { .iov_base = buf, .iov_len = m->length };
	uint8_t *flat = NULL;
	size_t flen = 0;
	r = csv_wire_data_read_reply_encode(&tmp, h->req_id, c->s->epoch, &iov, 1);
	if (r == 0)
		r = csv_wire_frame_flatten(&tmp, &flat, &flen);
	csv_wire_frame_done(&tmp);
	free(buf);
	if (r < 0)
		return r;
	*f = (struct csv_wire_frame){ .buf = flat, .len = flen, .cap = flen };
	return 0;
}

static int do_data_write(struct conn *c, const struct csv_wire_msghdr *h, const struct csv_wire_data *m,
			 struct csv_wire_frame *f)
{
	int r = check_data_range(c, m->lun_offset, m->length);
	if (r == 0)
		r = blockdev_pwrite(c->s->v->bd, m->data, m->length, m->lun_offset);
	if (r == 0 && (m->flags & CSV_WIRE_DATA_FUA))
		r = blockdev_flush(c->s->v->bd);
	if (r < 0)
		connlog(c, LOG_ERR, "redirected write of %u bytes at %llu failed: %s", m->length,
			(unsigned long long)m->lun_offset, strerror(-r));
	return csv_wire_reply_status_encode(f, h, c->s->epoch, r);
}

/* ---- extended attributes: read from the record ------------------------------- */

static const struct csv_d_attr_xattr *xattr_find(const void *rec, const struct csv_wire_name *name)
{
	const struct csv_d_attr *a;
	for (unsigned i = 0; (a = record_attr_find_const(rec, CSV_ATTR_XATTR, i)); i++) {
		const struct csv_d_attr_xattr *x = attr_payload_const(a);
		if (le16_to_cpu(x->name_len) == name->len && memcmp(x->data, name->s, name->len) == 0)
			return x;
	}
	return NULL;
}

static int do_setxattr(struct conn *c, const struct csv_wire_msghdr *h, const struct csv_wire_setxattr *m,
		       struct csv_wire_frame *f)
{
	int r = load(c, m->ino, recbuf);
	if (r == 0) {
		bool exists = xattr_find(recbuf, &m->name) != NULL;
		if ((m->flags & CSV_WIRE_XATTR_CREATE) && exists)
			r = -EEXIST;
		else if ((m->flags & CSV_WIRE_XATTR_REPLACE) && !exists)
			r = -ENODATA;
	}
	if (r == 0)
		r = fs_setxattr(c->s->fs, CSV_REF_RECNO(m->ino), m->name.s, m->value, m->value_len);
	if (r < 0)
		log_engine_error(c, h, r);
	else
		callbacks_inval_inode(c->s, c, m->ino);
	return csv_wire_reply_status_encode(f, h, c->s->epoch, r);
}

static int do_getxattr(struct conn *c, const struct csv_wire_msghdr *h, const struct csv_wire_getxattr *m,
		       struct csv_wire_frame *f)
{
	const struct csv_d_attr_xattr *x = NULL;
	int r = load(c, m->ino, recbuf);
	if (r == 0 && !(x = xattr_find(recbuf, &m->name)))
		r = -ENODATA;
	if (r == 0 && m->max && le16_to_cpu(x->value_len) > m->max)
		r = -ERANGE;
	if (r < 0)
		return csv_wire_reply_status_encode(f, h, c->s->epoch, r);
	struct csv_wire_xattr_reply rep = { .size = le16_to_cpu(x->value_len) };
	if (m->max) {
		rep.data = x->data + le16_to_cpu(x->name_len);
		rep.len = rep.size;
	}
	return csv_wire_getxattr_reply_encode(f, h->req_id, c->s->epoch, &rep);
}

static int do_listxattr(struct conn *c, const struct csv_wire_msghdr *h, const struct csv_wire_listxattr *m,
			struct csv_wire_frame *f)
{
	static char list[CSV_RECORD_SIZE];
	const struct csv_d_attr *a;
	uint32_t n = 0;
	int r = load(c, m->ino, recbuf);
	if (r < 0)
		return csv_wire_reply_status_encode(f, h, c->s->epoch, r);
	for (unsigned i = 0; (a = record_attr_find_const(recbuf, CSV_ATTR_XATTR, i)); i++) {
		const struct csv_d_attr_xattr *x = attr_payload_const(a);
		uint16_t nl = le16_to_cpu(x->name_len);
		if (n + nl + 1u > sizeof(list))
			return csv_wire_reply_status_encode(f, h, c->s->epoch, -EUCLEAN);
		memcpy(list + n, x->data, nl);
		list[n + nl] = '\0';
		n += nl + 1u;
	}
	if (m->max && n > m->max)
		return csv_wire_reply_status_encode(f, h, c->s->epoch, -ERANGE);
	struct csv_wire_xattr_reply rep = { .size = n };
	if (m->max) {
		rep.data = list;
		rep.len = n;
	}
	return csv_wire_listxattr_reply_encode(f, h->req_id, c->s->epoch, &rep);
}

/* ---- the table ----------------------------------------------------------------- */

/* Decodes the request into m with dec; a malformed frame returns. */
#define DECODE(dec, m)                                   \
	do {                                             \
		r = dec(frame, len, NULL, &(m));         \
		if (r < 0)                               \
			return r;                        \
	} while (0)

int dispatch_request(struct conn *c, const struct csv_wire_msghdr *h, const void *frame, size_t len,
		     struct csv_wire_frame *f)
{
	uint64_t ep = c->s->epoch;
	int r;

	switch (h->type) {
	case CSV_WIRE_LOOKUP: {
		struct csv_wire_entry_req m;
		DECODE(csv_wire_lookup_decode, m);
		return do_lookup(c, h, &m, f);
	}
	case CSV_WIRE_GETATTR: {
		struct csv_wire_ino_req m;
		DECODE(csv_wire_getattr_decode, m);
		return reply_attr(c, h, m.ino, f);
	}
	case CSV_WIRE_MKNOD: {
		struct csv_wire_mknod m;
		DECODE(csv_wire_mknod_decode, m);
		if (S_ISDIR(m.mode) || S_ISLNK(m.mode) || !(m.mode & S_IFMT))
			return csv_wire_reply_status_encode(f, h, ep, -EINVAL);
		return do_create(c, h, m.parent, m.name.s, m.mode, m.uid, m.gid, m.rdev, NULL, f);
	}
	case CSV_WIRE_MKDIR: {
		struct csv_wire_mkdir m;
		DECODE(csv_wire_mkdir_decode, m);
		return do_create(c, h, m.parent, m.name.s, S_IFDIR | (m.mode & 07777), m.uid, m.gid, 0, NULL, f);
	}
	case CSV_WIRE_SYMLINK: {
		struct csv_wire_symlink m;
		DECODE(csv_wire_symlink_decode, m);
		if (memchr(m.target, '\0', m.target_len))
			return csv_wire_reply_status_encode(f, h, ep, -EINVAL);
		char *target = strndup(m.target, m.target_len);
		if (!target)
			return -ENOMEM;
		r = do_create(c, h, m.parent, m.name.s, 0, m.uid, m.gid, 0, target, f);
		free(target);
		return r;
	}
	case CSV_WIRE_LINK: {
		struct csv_wire_link m;
		DECODE(csv_wire_link_decode, m);
		return do_link(c, h, &m, f);
	}
	case CSV_WIRE_UNLINK: {
		struct csv_wire_entry_req m;
		DECODE(csv_wire_unlink_decode, m);
		return do_remove(c, h, &m, false, f);
	}
	case CSV_WIRE_RMDIR: {
		struct csv_wire_entry_req m;
		DECODE(csv_wire_rmdir_decode, m);
		return do_remove(c, h, &m, true, f);
	}
	case CSV_WIRE_READLINK: {
		struct csv_wire_ino_req m;
		DECODE(csv_wire_readlink_decode, m);
		return do_readlink(c, h, &m, f);
	}
	case CSV_WIRE_READDIR: {
		struct csv_wire_readdir m;
		DECODE(csv_wire_readdir_decode, m);
		return do_readdir(c, h, &m, f);
	}
	case CSV_WIRE_OPEN: {
		struct csv_wire_open m;
		DECODE(csv_wire_open_decode, m);
		return do_open(c, h, &m, frame, len, f);
	}
	case CSV_WIRE_RELEASE: {
		struct csv_wire_open m;
		DECODE(csv_wire_release_decode, m);
		r = load(c, m.ino, recbuf);
		if (r == 0)
			inodes_release(c->s, c, m.ino);
		return csv_wire_reply_status_encode(f, h, ep, r);
	}
	case CSV_WIRE_STATFS:
		r = csv_wire_empty_decode(frame, len, CSV_WIRE_STATFS, CSV_WIRE_F_REQUEST, NULL);
		if (r < 0)
			return r;
		return do_statfs(c, h, f);
	case CSV_WIRE_SETXATTR: {
		struct csv_wire_setxattr m;
		DECODE(csv_wire_setxattr_decode, m);
		return do_setxattr(c, h, &m, f);
	}
	case CSV_WIRE_GETXATTR: {
		struct csv_wire_getxattr m;
		DECODE(csv_wire_getxattr_decode, m);
		return do_getxattr(c, h, &m, f);
	}
	case CSV_WIRE_LISTXATTR: {
		struct csv_wire_listxattr m;
		DECODE(csv_wire_listxattr_decode, m);
		return do_listxattr(c, h, &m, f);
	}
	case CSV_WIRE_FSYNC: {
		/* Metadata is journaled, durable when answered; what is left is
		 * the data written through this path (redirected I/O). Ino 0
		 * names no file: the LUN only. */
		struct csv_wire_fsync m;
		DECODE(csv_wire_fsync_decode, m);
		r = m.ino ? load(c, m.ino, recbuf) : 0;
		if (r == 0)
			r = blockdev_flush(c->s->v->bd);
		return csv_wire_reply_status_encode(f, h, ep, r);
	}
	case CSV_WIRE_SETATTR: {
		struct csv_wire_setattr m;
		DECODE(csv_wire_setattr_decode, m);
		return do_setattr(c, h, &m, frame, len, f);
	}
	case CSV_WIRE_RENAME: {
		struct csv_wire_rename m;
		DECODE(csv_wire_rename_decode, m);
		return do_rename(c, h, &m, f);
	}
	case CSV_WIRE_REMOVEXATTR: {
		struct csv_wire_removexattr m;
		DECODE(csv_wire_removexattr_decode, m);
		return do_removexattr(c, h, &m, f);
	}
	case CSV_WIRE_FALLOCATE: {
		struct csv_wire_fallocate m;
		DECODE(csv_wire_fallocate_decode, m);
		return do_fallocate(c, h, &m, frame, len, f);
	}
	case CSV_WIRE_LAYOUT_GET: {
		struct csv_wire_layout_get m;
		DECODE(csv_wire_layout_get_decode, m);
		return do_layout_get(c, h, &m, frame, len, f);
	}
	case CSV_WIRE_LAYOUT_COMMIT: {
		struct csv_wire_layout_commit m = { 0 };
		DECODE(csv_wire_layout_commit_decode, m);
		r = do_layout_commit(c, h, &m, f);
		csv_wire_layout_commit_free(&m);
		return r;
	}
	case CSV_WIRE_LAYOUT_RETURN: {
		struct csv_wire_layout_return m;
		DECODE(csv_wire_layout_return_decode, m);
		inodes_layout_returned(c->s, c, m.ino);
		return csv_wire_reply_status_encode(f, h, ep, 0);
	}
	case CSV_WIRE_DATA_READ: {
		struct csv_wire_data_read m;
		DECODE(csv_wire_data_read_decode, m);
		return do_data_read(c, h, &m, f);
	}
	case CSV_WIRE_DATA_WRITE: {
		struct csv_wire_data m;
		DECODE(csv_wire_data_write_decode, m);
		return do_data_write(c, h, &m, f);
	}
	default:
		/* A callback type sent as a request: csv_wire_hdr_decode() refuses it. */
		return -EBADMSG;
	}
}
