/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>

#include "blockdev.h"
#include "client-conn.h"
#include "client-ops.h"
#include "wire.h"

static struct csvfs_client *CL(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static uint64_t wino(struct csvfs_client *cl, fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? cl->root_ino : (uint64_t)ino;
}

static fuse_ino_t fino(struct csvfs_client *cl, uint64_t ino)
{
	return ino == cl->root_ino ? FUSE_ROOT_ID : (fuse_ino_t)ino;
}

static uint64_t ID(struct csvfs_client *cl)
{
	return client_conn_next_id(cl->cc);
}

static uint64_t EP(struct csvfs_client *cl)
{
	return client_conn_epoch(cl->cc);
}

static void ns_to_ts(int64_t ns, struct timespec *ts)
{
	int64_t s = ns / 1000000000, r = ns % 1000000000;
	if (r < 0) {
		r += 1000000000;
		s--;
	}
	ts->tv_sec = s;
	ts->tv_nsec = r;
}

static void attr_to_stat(struct csvfs_client *cl, const struct csv_wire_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = fino(cl, a->ino);
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_rdev = a->rdev;
	st->st_size = (off_t)a->size;
	st->st_blksize = cl->cluster_size;
	st->st_blocks = (blkcnt_t)(a->alloc_clusters * (cl->cluster_size / 512));
	ns_to_ts(a->atime_ns, &st->st_atim);
	ns_to_ts(a->mtime_ns, &st->st_mtim);
	ns_to_ts(a->ctime_ns, &st->st_ctim);
}

/* Sends f; decodes an attr reply of type into *a. */
static int call_attr(struct csvfs_client *cl, struct csv_wire_frame *f, int enc, uint16_t type,
		     struct csv_wire_attr *a)
{
	uint8_t *buf;
	size_t len;
	if (enc < 0) {
		csv_wire_frame_done(f);
		return enc;
	}
	int r = client_conn_call(cl->cc, f, &buf, &len);
	if (r < 0)
		return r;
	r = csv_wire_attr_reply_decode(buf, len, type, NULL, a);
	free(buf);
	return r < 0 ? -EIO : 0;
}

static int call_empty(struct csvfs_client *cl, struct csv_wire_frame *f, int enc)
{
	if (enc < 0) {
		csv_wire_frame_done(f);
		return enc;
	}
	return client_conn_call(cl->cc, f, NULL, NULL);
}

static int call_buf(struct csvfs_client *cl, struct csv_wire_frame *f, int enc, uint8_t **buf, size_t *len)
{
	if (enc < 0) {
		csv_wire_frame_done(f);
		return enc;
	}
	return client_conn_call(cl->cc, f, buf, len);
}

static void reply_entry(fuse_req_t req, int r, const struct csv_wire_attr *a)
{
	struct csvfs_client *cl = CL(req);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	struct fuse_entry_param e = { 0 };
	e.ino = fino(cl, a->ino);
	e.generation = 0;
	e.attr_timeout = 0;
	e.entry_timeout = 0;
	attr_to_stat(cl, a, &e.attr);
	fuse_reply_entry(req, &e);
}

static void reply_attr(fuse_req_t req, int r, const struct csv_wire_attr *a)
{
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	struct stat st;
	attr_to_stat(CL(req), a, &st);
	fuse_reply_attr(req, &st, 0);
}

static int getattr_ino(struct csvfs_client *cl, uint64_t ino, struct csv_wire_attr *a)
{
	struct csv_wire_frame f = { 0 };
	struct csv_wire_ino_req m = { .ino = ino };
	return call_attr(cl, &f, csv_wire_getattr_encode(&f, ID(cl), EP(cl), &m), CSV_WIRE_GETATTR, a);
}

/* ---- namespace ---------------------------------------------------------- */

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct csvfs_client *cl = CL(req);
	struct csv_wire_frame f = { 0 };
	struct csv_wire_entry_req m = { .parent = wino(cl, parent) };
	struct csv_wire_attr a;
	int r = csv_wire_name_set(&m.name, name);
	if (r == 0)
		r = call_attr(cl, &f, csv_wire_lookup_encode(&f, ID(cl), EP(cl), &m), CSV_WIRE_LOOKUP, &a);
	if (r == -ENOENT) {
		/* A negative entry, not cached (timeout 0). */
		struct fuse_entry_param e = { 0 };
		fuse_reply_entry(req, &e);
		return;
	}
	reply_entry(req, r, &a);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct csv_wire_attr a;
	int r = getattr_ino(CL(req), wino(CL(req), ino), &a);
	reply_attr(req, r, &a);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *st, int to_set, struct fuse_file_info *fi)
{
	struct csvfs_client *cl = CL(req);
	struct csv_wire_frame f = { 0 };
	struct csv_wire_setattr m = { .ino = wino(cl, ino) };
	struct csv_wire_attr a;
	if (to_set & FUSE_SET_ATTR_MODE) {
		m.valid |= CSV_WIRE_SET_MODE;
		m.mode = st->st_mode & 07777;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		m.valid |= CSV_WIRE_SET_UID;
		m.uid = st->st_uid;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		m.valid |= CSV_WIRE_SET_GID;
		m.gid = st->st_gid;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		m.valid |= CSV_WIRE_SET_SIZE;
		m.size = (uint64_t)st->st_size;
	}
	if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
		m.valid |= CSV_WIRE_SET_ATIME_NOW;
	} else if (to_set & FUSE_SET_ATTR_ATIME) {
		m.valid |= CSV_WIRE_SET_ATIME;
		m.atime_ns = (int64_t)st->st_atim.tv_sec * 1000000000 + st->st_atim.tv_nsec;
	}
	if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
		m.valid |= CSV_WIRE_SET_MTIME_NOW;
	} else if (to_set & FUSE_SET_ATTR_MTIME) {
		m.valid |= CSV_WIRE_SET_MTIME;
		m.mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	}
	if (to_set & FUSE_SET_ATTR_CTIME) {
		m.valid |= CSV_WIRE_SET_CTIME;
		m.ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
	}
	int r;
	if (m.valid == 0)
		r = getattr_ino(cl, m.ino, &a);
	else
		r = call_attr(cl, &f, csv_wire_setattr_encode(&f, ID(cl), EP(cl), &m), CSV_WIRE_SETATTR, &a);
	reply_attr(req, r, &a);
}

static int do_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev,
		    struct csv_wire_attr *a)
{
	struct csvfs_client *cl = CL(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct csv_wire_frame f = { 0 };
	struct csv_wire_mknod m = { .parent = wino(cl, parent), .mode = mode, .rdev = (uint32_t)rdev,
				    .uid = ctx->uid, .gid = ctx->gid };
	int r = csv_wire_name_set(&m.name, name);
	if (r < 0)
		return r;
	return call_attr(cl, &f, csv_wire_mknod_encode(&f, ID(cl), EP(cl), &m), CSV_WIRE_MKNOD, a);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct csv_wire_attr a;
	int r = do_mknod(req, parent, name, mode, rdev, &a);
	reply_entry(req, r, &a);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct csvfs_client *cl = CL(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct csv_wire_frame f = { 0 };
	struct csv_wire_mkdir m = { .parent = wino(cl, parent), .mode = mode & 07777, .uid = ctx->uid,
				    .gid = ctx->gid };
	struct csv_wire_attr a;
	int r = csv_wire_name_set(&m.name, name);
	if (r == 0)
		r = call_attr(cl, &f, csv_wire_mkdir_encode(&f, ID(cl), EP(cl), &m), CSV_WIRE_MKDIR, &a);
	reply_entry(req, r, &a);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct csvfs_client *cl = CL(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct csv_wire_frame f = { 0 };
	size_t tl = strlen(link);
	struct csv_wire_symlink m = { .parent = wino(cl, parent), .target = link, .target_len = (uint32_t)tl,
				      .uid = ctx->uid, .gid = ctx->gid };
	struct csv_wire_attr a;
	int r = tl > CSV_WIRE_SYMLINK_MAX ? -ENAMETOOLONG : csv_wire_name_set(&m.name, name);
	if (r == 0)
		r = call_attr(cl, &f, csv_wire_symlink_encode(&f, ID(cl), EP(cl), &m), CSV_WIRE_SYMLINK, &a);
	reply_entry(req, r, &a);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct csvfs_client *cl = CL(req);
	struct csv_wire_frame f = { 0 };
	struct csv_wire_ino_req m = { .ino = wino(cl, ino) };
	struct csv_wire_readlink_reply rep;
	uint8_t *buf;
	size_t len;
	int r = call_buf(cl, &f, csv_wire_readlink_encode(&f, ID(cl), EP(cl), &m), &buf, &len);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	if (csv_wire_readlink_reply_decode(buf, len, NULL, &rep) < 0) {
		free(buf);
		fuse_reply_err(req, EIO);
		return;
	}
	char *s = malloc(rep.target_len + 1u);
	if (!s) {
		free(buf);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	memcpy(s, rep.target, rep.target_len);
	s[rep.target_len] = '\0';
	free(buf);
	fuse_reply_readlink(req, s);
	free(s);
}

static void remove_entry(fuse_req_t req, fuse_ino_t parent, const char *name, bool dir)
{
	struct csvfs_client *cl = CL(req);
	struct csv_wire_frame f = { 0 };
	struct csv_wire_entry_req m = { .parent = wino(cl, parent) };
	int r = csv_wire_name_set(&m.name, name);
	if (r == 0)
		r = call_empty(cl, &f, dir ? csv_wire_rmdir_encode(&f, ID(cl), EP(cl), &m)
					   : csv_wire_unlink_encode(&f, ID(cl), EP(cl), &m));
	fuse_reply_err(req, -r);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_entry(req, parent, name, false);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_entry(req, parent, name, true);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	struct csvfs_client *cl = CL(req);
	struct csv_wire_frame f = { 0 };
	struct csv_wire_rename m = { .parent = wino(cl, parent), .newparent = wino(cl, newparent) };
	int r = 0;
	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		r = -EINVAL;
	m.flags = (flags & RENAME_NOREPLACE ? CSV_WIRE_RENAME_NOREPLACE : 0) |
		  (flags & RENAME_EXCHANGE ? CSV_WIRE_RENAME_EXCHANGE : 0);
	if (r == 0)
		r = csv_wire_name_set(&m.name, name);
	if (r == 0)
		r = csv_wire_name_set(&m.newname, newname);
	if (r == 0)
		r = call_empty(cl, &f, csv_wire_rename_encode(&f, ID(cl), EP(cl), &m));
	fuse_reply_err(req, -r);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct csvfs_client *cl = CL(req);
	struct csv_wire_frame f = { 0 };
	struct csv_wire_link m = { .ino = wino(cl, ino), .newparent = wino(cl, newparent) };
	struct csv_wire_attr a;
	int r = csv_wire_name_set(&m.newname, newname);
	if (r == 0)
		r = call_attr(cl, &f, csv_wire_link_encode(&f, ID(cl), EP(cl), &m), CSV_WIRE_LINK, &a);
	reply_entry(req, r, &a);
}

/* ---- open files ------------------------------------------------------------ */

static uint32_t open_flags(int flags)
{
	uint32_t w = 0;
	switch (flags & O_ACCMODE) {
	case O_RDONLY: w = CSV_WIRE_OPEN_READ; break;
	case O_WRONLY: w = CSV_WIRE_OPEN_WRITE; break;
	default: w = CSV_WIRE_OPEN_READ | CSV_WIRE_OPEN_WRITE; break;
	}
	if ((flags & O_TRUNC) && (w & CSV_WIRE_OPEN_WRITE))
		w |= CSV_WIRE_OPEN_TRUNC;
	return w;
}

static int do_open(struct csvfs_client *cl, uint64_t ino, struct fuse_file_info *fi)
{
	struct csv_wire_frame f = { 0 };
	struct csv_wire_open m = { .ino = ino, .flags = open_flags(fi->flags) };
	struct csv_wire_attr a;
	int r = call_attr(cl, &f, csv_wire_open_encode(&f, ID(cl), EP(cl), &m), CSV_WIRE_OPEN, &a);
	if (r == 0) {
		/* RELEASE repeats the flags, without TRUNC. */
		fi->fh = m.flags & ~(uint32_t)CSV_WIRE_OPEN_TRUNC;
		fi->keep_cache = 0;
	}
	return r;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int r = do_open(CL(req), wino(CL(req), ino), fi);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_open(req, fi);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi)
{
	struct csvfs_client *cl = CL(req);
	struct csv_wire_attr a;
	int r = do_mknod(req, parent, name, S_IFREG | (mode & 07777), 0, &a);
	if (r == 0)
		r = do_open(cl, a.ino, fi);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	struct fuse_entry_param e = { 0 };
	e.ino = fino(cl, a.ino);
	attr_to_stat(cl, &a, &e.attr);
	fuse_reply_create(req, &e, fi);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct csvfs_client *cl = CL(req);
	struct csv_wire_frame f = { 0 };
	struct csv_wire_open m = { .ino = wino(cl, ino), .flags = (uint32_t)fi->fh };
	int r = call_empty(cl, &f, csv_wire_release_encode(&f, ID(cl), EP(cl), &m));
	fuse_reply_err(req, -r);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* Every write is committed before it is answered. */
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct csvfs_client *cl = CL(req);
	struct csv_wire_frame f = { 0 };
	struct csv_wire_fsync m = { .ino = wino(cl, ino), .flags = datasync ? CSV_WIRE_FSYNC_DATASYNC : 0 };
	int r = blockdev_flush(cl->bd);
	if (r == 0)
		r = call_empty(cl, &f, csv_wire_fsync_encode(&f, ID(cl), EP(cl), &m));
	fuse_reply_err(req, -r);
}

/* ---- data -------------------------------------------------------------- */

static int layout_get(struct csvfs_client *cl, uint64_t ino, uint64_t off, uint64_t len, bool write,
		      struct csv_wire_layout *l)
{
	struct csv_wire_frame f = { 0 };
	struct csv_wire_layout_get m = { .ino = ino, .offset = off, .length = len,
					 .flags = write ? CSV_WIRE_LAYOUT_WRITE : 0 };
	uint8_t *buf;
	size_t blen;
	int r = call_buf(cl, &f, csv_wire_layout_get_encode(&f, ID(cl), EP(cl), &m), &buf, &blen);
	if (r < 0)
		return r;
	*l = (struct csv_wire_layout){ 0 };
	r = csv_wire_layout_get_reply_decode(buf, blen, NULL, l);
	free(buf);
	return r < 0 ? -EIO : 0;
}

/* Reads [off, end) of the file into buf (zeros where there is no written
 * data), for bytes below limit (the valid data length). */
static int read_range(struct csvfs_client *cl, uint64_t ino, char *buf, uint64_t off, uint64_t end,
		      uint64_t limit)
{
	uint64_t cur = off;
	memset(buf, 0, end - off);
	if (limit < end)
		end = limit;
	while (cur < end) {
		struct csv_wire_layout l;
		int r = layout_get(cl, ino, cur, end - cur, false, &l);
		if (r < 0)
			return r;
		uint64_t last = cur;
		for (uint32_t i = 0; i < l.n_extents; i++) {
			const struct csv_wire_extent *e = &l.extents[i];
			uint64_t s = e->file_offset > cur ? e->file_offset : cur;
			uint64_t t = e->file_offset + e->length < end ? e->file_offset + e->length : end;
			if (e->file_offset + e->length > last)
				last = e->file_offset + e->length;
			if (s >= t || (e->flags & CSV_WIRE_EXTENT_UNWRITTEN))
				continue;
			r = blockdev_pread(cl->bd, buf + (s - off), t - s, e->lun_offset + (s - e->file_offset));
			if (r < 0) {
				csv_wire_layout_free(&l);
				return r;
			}
		}
		uint32_t n = l.n_extents;
		csv_wire_layout_free(&l);
		if (n == 0 || last <= cur)
			break;
		cur = last;
	}
	return 0;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct csvfs_client *cl = CL(req);
	uint64_t w = wino(cl, ino);
	struct csv_wire_attr a;
	int r = getattr_ino(cl, w, &a);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	if ((uint64_t)off >= a.size || size == 0) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	uint64_t end = (uint64_t)off + size < a.size ? (uint64_t)off + size : a.size;
	char *buf = malloc(end - (uint64_t)off);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	r = read_range(cl, w, buf, (uint64_t)off, end, a.valid_data_length);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_buf(req, buf, end - (uint64_t)off);
	free(buf);
}

struct ranges {
	struct csv_wire_range *v;
	uint32_t n, cap;
};

static int ranges_add(struct ranges *rs, uint64_t off, uint64_t len)
{
	if (rs->n && rs->v[rs->n - 1].offset + rs->v[rs->n - 1].length == off) {
		rs->v[rs->n - 1].length += len;
		return 0;
	}
	if (rs->n == rs->cap) {
		uint32_t cap = rs->cap ? rs->cap * 2 : 8;
		void *p = realloc(rs->v, cap * sizeof(*rs->v));
		if (!p)
			return -ENOMEM;
		rs->v = p;
		rs->cap = cap;
	}
	rs->v[rs->n++] = (struct csv_wire_range){ .offset = off, .length = len };
	return 0;
}

/* Zeroes the written clusters of [from, to): bytes past the valid data
 * length that a write beyond it would otherwise expose. */
static int zero_written(struct csvfs_client *cl, uint64_t ino, uint64_t from, uint64_t to)
{
	uint64_t cur = from;
	while (cur < to) {
		struct csv_wire_layout l;
		int r = layout_get(cl, ino, cur, to - cur, false, &l);
		if (r < 0)
			return r;
		uint64_t last = cur;
		for (uint32_t i = 0; i < l.n_extents && r == 0; i++) {
			const struct csv_wire_extent *e = &l.extents[i];
			uint64_t s = e->file_offset > cur ? e->file_offset : cur;
			uint64_t t = e->file_offset + e->length < to ? e->file_offset + e->length : to;
			if (e->file_offset + e->length > last)
				last = e->file_offset + e->length;
			if (s >= t || (e->flags & CSV_WIRE_EXTENT_UNWRITTEN))
				continue;
			while (s < t && r == 0) {
				static const char zeros[65536];
				uint64_t n = t - s < sizeof(zeros) ? t - s : sizeof(zeros);
				r = blockdev_pwrite(cl->bd, zeros, n, e->lun_offset + (s - e->file_offset));
				s += n;
			}
		}
		uint32_t n = l.n_extents;
		csv_wire_layout_free(&l);
		if (r < 0)
			return r;
		if (n == 0 || last <= cur)
			break;
		cur = last;
	}
	return 0;
}

static int do_write(struct csvfs_client *cl, uint64_t ino, const char *data, uint64_t off, uint64_t len)
{
	uint64_t cs = cl->cluster_size, end = off + len, cur = off;
	uint64_t size = 0, vdl = 0, generation = 0;
	struct ranges rs = { 0 };
	char *cbuf = NULL;
	bool first = true;
	int r = 0;

	while (cur < end && r == 0) {
		struct csv_wire_layout l;
		r = layout_get(cl, ino, cur, end - cur, true, &l);
		if (r < 0)
			break;
		if (first) {
			size = l.size;
			vdl = l.valid_data_length;
			generation = l.generation;
			first = false;
			/* Written data past the valid data length reads as
			 * zeros: keep it so once the length grows over it. */
			if (vdl < off)
				r = zero_written(cl, ino, vdl, off);
		}
		uint64_t last = cur;
		for (uint32_t i = 0; i < l.n_extents && r == 0; i++) {
			const struct csv_wire_extent *e = &l.extents[i];
			uint64_t eend = e->file_offset + e->length;
			uint64_t s = e->file_offset > cur ? e->file_offset : cur;
			uint64_t t = eend < end ? eend : end;
			if (eend > last)
				last = eend;
			if (s >= t)
				continue;
			if (!(e->flags & CSV_WIRE_EXTENT_UNWRITTEN)) {
				r = blockdev_pwrite(cl->bd, data + (s - off), t - s, e->lun_offset + (s - e->file_offset));
				continue;
			}
			/* Unwritten: whole clusters, zeros around the bytes. */
			uint64_t cs0 = s / cs * cs, ct = (t + cs - 1) / cs * cs;
			if (cs0 < e->file_offset)
				cs0 = e->file_offset;
			if (ct > eend)
				ct = eend;
			if (!cbuf && !(cbuf = malloc(cs))) {
				r = -ENOMEM;
				break;
			}
			for (uint64_t c = cs0; c < ct && r == 0; c += cs) {
				uint64_t cend = c + cs < ct ? c + cs : ct;
				uint64_t ds = c > s ? c : s, dt = cend < t ? cend : t;
				if (ds == c && dt == cend) {
					r = blockdev_pwrite(cl->bd, data + (ds - off), cend - c,
							    e->lun_offset + (c - e->file_offset));
				} else {
					memset(cbuf, 0, cend - c);
					memcpy(cbuf + (ds - c), data + (ds - off), dt - ds);
					r = blockdev_pwrite(cl->bd, cbuf, cend - c, e->lun_offset + (c - e->file_offset));
				}
			}
			if (r == 0)
				r = ranges_add(&rs, cs0, ct - cs0);
		}
		uint32_t n = l.n_extents;
		csv_wire_layout_free(&l);
		if (r == 0 && (n == 0 || last <= cur)) {
			/* The coordinator must cover a write range entirely. */
			r = -EIO;
			break;
		}
		cur = last;
	}
	free(cbuf);
	if (r == 0)
		r = blockdev_flush(cl->bd);
	if (r == 0) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		struct csv_wire_frame f = { 0 };
		struct csv_wire_layout_commit m = {
			.ino = ino,
			.generation = generation,
			.size = size > end ? size : end,
			.valid_data_length = vdl > end ? vdl : end,
			.mtime_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec,
			.flags = CSV_WIRE_COMMIT_SIZE | CSV_WIRE_COMMIT_VDL | CSV_WIRE_COMMIT_MTIME,
			.n_ranges = rs.n,
			.ranges = rs.v,
		};
		struct csv_wire_attr a;
		r = call_attr(cl, &f, csv_wire_layout_commit_encode(&f, ID(cl), EP(cl), &m), CSV_WIRE_LAYOUT_COMMIT,
			      &a);
	}
	free(rs.v);
	return r;
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct csvfs_client *cl = CL(req);
	if (size == 0) {
		fuse_reply_write(req, 0);
		return;
	}
	int r = do_write(cl, wino(cl, ino), buf, (uint64_t)off, size);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_write(req, size);
}

/* ---- directories --------------------------------------------------------- */

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_open(req, fi);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct csvfs_client *cl = CL(req);
	struct csv_wire_frame f = { 0 };
	uint32_t max = size < CSV_WIRE_DIRENT_SIZE(255) ? CSV_WIRE_DIRENT_SIZE(255)
		       : size > CSV_WIRE_READDIR_MAX ? CSV_WIRE_READDIR_MAX : (uint32_t)size;
	struct csv_wire_readdir m = { .ino = wino(cl, ino), .cookie = (uint64_t)off, .max_bytes = max };
	struct csv_wire_readdir_reply rep;
	struct csv_wire_dirent d;
	uint8_t *buf;
	size_t len, used = 0;
	int r = call_buf(cl, &f, csv_wire_readdir_encode(&f, ID(cl), EP(cl), &m), &buf, &len);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	if (csv_wire_readdir_reply_decode(buf, len, NULL, &rep) < 0) {
		free(buf);
		fuse_reply_err(req, EIO);
		return;
	}
	char *out = malloc(size);
	if (!out) {
		free(buf);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	while (csv_wire_readdir_next(&rep, &d) == 1) {
		struct stat st = { .st_ino = fino(cl, d.ino), .st_mode = (mode_t)d.type << 12 };
		size_t need = fuse_add_direntry(req, out + used, size - used, d.name.s, &st, (off_t)d.cookie);
		if (need > size - used)
			break;
		used += need;
	}
	free(buf);
	fuse_reply_buf(req, out, used);
	free(out);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct csvfs_client *cl = CL(req);
	struct csv_wire_frame f = { 0 };
	struct csv_wire_statfs s;
	uint8_t *buf;
	size_t len;
	int r = call_buf(cl, &f,
			 csv_wire_empty_encode(&f, CSV_WIRE_STATFS, CSV_WIRE_F_REQUEST, ID(cl), EP(cl), 0), &buf,
			 &len);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	r = csv_wire_statfs_reply_decode(buf, len, NULL, &s);
	free(buf);
	if (r < 0) {
		fuse_reply_err(req, EIO);
		return;
	}
	struct statvfs v = { 0 };
	v.f_bsize = s.cluster_size;
	v.f_frsize = s.cluster_size;
	v.f_blocks = s.total_clusters;
	v.f_bfree = s.free_clusters;
	v.f_bavail = s.free_clusters;
	v.f_files = s.total_records;
	v.f_ffree = s.free_records;
	v.f_favail = s.free_records;
	v.f_namemax = s.name_max;
	fuse_reply_statfs(req, &v);
}

/* ---- extended attributes --------------------------------------------------- */

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
			int flags)
{
	struct csvfs_client *cl = CL(req);
	struct csv_wire_frame f = { 0 };
	struct csv_wire_setxattr m = { .ino = wino(cl, ino), .value = value, .value_len = (uint32_t)size };
	int r = size > CSV_WIRE_XATTR_VALUE_MAX ? -E2BIG : csv_wire_xattr_name_set(&m.name, name);
	m.flags = (flags & XATTR_CREATE ? CSV_WIRE_XATTR_CREATE : 0) |
		  (flags & XATTR_REPLACE ? CSV_WIRE_XATTR_REPLACE : 0);
	if (r == 0)
		r = call_empty(cl, &f, csv_wire_setxattr_encode(&f, ID(cl), EP(cl), &m));
	fuse_reply_err(req, -r);
}

static void reply_xattr(fuse_req_t req, int r, uint8_t *buf, size_t len, size_t size, bool list)
{
	struct csv_wire_xattr_reply rep;
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	r = list ? csv_wire_listxattr_reply_decode(buf, len, NULL, &rep)
		 : csv_wire_getxattr_reply_decode(buf, len, NULL, &rep);
	if (r < 0)
		fuse_reply_err(req, EIO);
	else if (size == 0)
		fuse_reply_xattr(req, rep.size);
	else if (rep.len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, rep.data, rep.len);
	free(buf);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct csvfs_client *cl = CL(req);
	struct csv_wire_frame f = { 0 };
	struct csv_wire_getxattr m = { .ino = wino(cl, ino),
				       .max = size > CSV_WIRE_XATTR_VALUE_MAX ? CSV_WIRE_XATTR_VALUE_MAX
									     : (uint32_t)size };
	uint8_t *buf = NULL;
	size_t len = 0;
	int r = csv_wire_xattr_name_set(&m.name, name);
	if (r == 0)
		r = call_buf(cl, &f, csv_wire_getxattr_encode(&f, ID(cl), EP(cl), &m), &buf, &len);
	reply_xattr(req, r, buf, len, size, false);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct csvfs_client *cl = CL(req);
	struct csv_wire_frame f = { 0 };
	struct csv_wire_listxattr m = { .ino = wino(cl, ino),
					.max = size > CSV_WIRE_XATTR_LIST_MAX ? CSV_WIRE_XATTR_LIST_MAX
									      : (uint32_t)size };
	uint8_t *buf = NULL;
	size_t len = 0;
	int r = call_buf(cl, &f, csv_wire_listxattr_encode(&f, ID(cl), EP(cl), &m), &buf, &len);
	reply_xattr(req, r, buf, len, size, true);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct csvfs_client *cl = CL(req);
	struct csv_wire_frame f = { 0 };
	struct csv_wire_removexattr m = { .ino = wino(cl, ino) };
	int r = csv_wire_xattr_name_set(&m.name, name);
	if (r == 0)
		r = call_empty(cl, &f, csv_wire_removexattr_encode(&f, ID(cl), EP(cl), &m));
	fuse_reply_err(req, -r);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	/* Caching is off for now: no writeback cache, no readdirplus. */
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS;
}

const struct fuse_lowlevel_ops csvfs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.releasedir = op_releasedir,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.create = op_create,
};
