/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>

#include "client-attrs.h"
#include "client-conn.h"
#include "client-files.h"
#include "client-lun.h"
#include "client-ops.h"
#include "util.h"
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

/* Sends f (encoded with status enc); decodes an attr reply of type into
 * *a. *resent (when not NULL) says whether it went to a new coordinator
 * connection again (see client_conn_call()). */
static int call_attr_r(struct csvfs_client *cl, struct csv_wire_frame *f, int enc, uint16_t type,
		       struct csv_wire_attr *a, bool *resent)
{
	uint8_t *buf;
	size_t len;
	if (enc < 0) {
		csv_wire_frame_done(f);
		return enc;
	}
	uint64_t gen = client_conn_generation(cl->cc);
	int r = client_conn_call(cl->cc, f, &buf, &len, resent);
	if (r < 0)
		return r;
	r = csv_wire_attr_reply_decode(buf, len, type, NULL, a);
	free(buf);
	if (r < 0)
		return -EIO;
	/* Attributes received on the connection the request started on:
	 * invalidations sent meanwhile on another one were lost. */
	client_attrs_put(cl->attrs, gen, a);
	return 0;
}

static int call_attr(struct csvfs_client *cl, struct csv_wire_frame *f, int enc, uint16_t type,
		     struct csv_wire_attr *a)
{
	return call_attr_r(cl, f, enc, type, a, NULL);
}

static int call_empty_r(struct csvfs_client *cl, struct csv_wire_frame *f, int enc, bool *resent)
{
	if (enc < 0) {
		csv_wire_frame_done(f);
		return enc;
	}
	return client_conn_call(cl->cc, f, NULL, NULL, resent);
}

static int call_empty(struct csvfs_client *cl, struct csv_wire_frame *f, int enc)
{
	return call_empty_r(cl, f, enc, NULL);
}

static int call_buf(struct csvfs_client *cl, struct csv_wire_frame *f, int enc, uint8_t **buf, size_t *len)
{
	if (enc < 0) {
		csv_wire_frame_done(f);
		return enc;
	}
	return client_conn_call(cl->cc, f, buf, len, NULL);
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
	e.attr_timeout = cl->attr_timeout;
	e.entry_timeout = 0;  /* names are looked up on every use: see op_init() */
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
	fuse_reply_attr(req, &st, CL(req)->attr_timeout);
}

static int getattr_ino(struct csvfs_client *cl, uint64_t ino, struct csv_wire_attr *a)
{
	if (client_attrs_get(cl->attrs, client_conn_generation(cl->cc), ino, a))
		return 0;
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
		/* A negative entry, not cached (timeout 0): a create on
		 * another node sends no invalidation for a name never seen. */
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

static int lookup_ino(struct csvfs_client *cl, uint64_t parent, const char *name, struct csv_wire_attr *a)
{
	struct csv_wire_frame f = { 0 };
	struct csv_wire_entry_req m = { .parent = parent };
	int r = csv_wire_name_set(&m.name, name);
	if (r == 0)
		r = call_attr(cl, &f, csv_wire_lookup_encode(&f, ID(cl), EP(cl), &m), CSV_WIRE_LOOKUP, a);
	return r;
}

/* A create sent again to a coordinator that restarted may have been
 * applied before: its -EEXIST then means success, and the entry is what
 * the name holds now. */
static int created_again(struct csvfs_client *cl, int r, bool resent, uint64_t parent, const char *name,
			 struct csv_wire_attr *a)
{
	if (r != -EEXIST || !resent)
		return r;
	return lookup_ino(cl, parent, name, a) == 0 ? 0 : r;
}

static int do_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev,
		    struct csv_wire_attr *a)
{
	struct csvfs_client *cl = CL(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct csv_wire_frame f = { 0 };
	struct csv_wire_mknod m = { .parent = wino(cl, parent), .mode = mode, .rdev = (uint32_t)rdev,
				    .uid = ctx->uid, .gid = ctx->gid };
	bool resent = false;
	int r = csv_wire_name_set(&m.name, name);
	if (r < 0)
		return r;
	r = call_attr_r(cl, &f, csv_wire_mknod_encode(&f, ID(cl), EP(cl), &m), CSV_WIRE_MKNOD, a, &resent);
	client_attrs_forget(cl->attrs, m.parent);
	return created_again(cl, r, resent, m.parent, name, a);
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
	bool resent = false;
	int r = csv_wire_name_set(&m.name, name);
	if (r == 0)
		r = call_attr_r(cl, &f, csv_wire_mkdir_encode(&f, ID(cl), EP(cl), &m), CSV_WIRE_MKDIR, &a, &resent);
	client_attrs_forget(cl->attrs, m.parent);
	reply_entry(req, created_again(cl, r, resent, m.parent, name, &a), &a);
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
	bool resent = false;
	if (r == 0)
		r = call_attr_r(cl, &f, csv_wire_symlink_encode(&f, ID(cl), EP(cl), &m), CSV_WIRE_SYMLINK, &a,
				&resent);
	client_attrs_forget(cl->attrs, m.parent);
	reply_entry(req, created_again(cl, r, resent, m.parent, name, &a), &a);
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
	bool resent = false;
	int r = csv_wire_name_set(&m.name, name);
	if (r == 0)
		r = call_empty_r(cl, &f, dir ? csv_wire_rmdir_encode(&f, ID(cl), EP(cl), &m)
					     : csv_wire_unlink_encode(&f, ID(cl), EP(cl), &m), &resent);
	/* Sent again to a restarted coordinator: it may have been done. */
	if (r == -ENOENT && resent)
		r = 0;
	/* The parents, and the link count of what lost a name. */
	client_attrs_forget_all(cl->attrs);
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
	bool resent = false;
	if (r == 0)
		r = call_empty_r(cl, &f, csv_wire_rename_encode(&f, ID(cl), EP(cl), &m), &resent);
	/* Sent again to a restarted coordinator: it may have been done. */
	if (r == -ENOENT && resent)
		r = 0;
	/* The parents, and the link count of what lost a name. */
	client_attrs_forget_all(cl->attrs);
	fuse_reply_err(req, -r);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct csvfs_client *cl = CL(req);
	struct csv_wire_frame f = { 0 };
	struct csv_wire_link m = { .ino = wino(cl, ino), .newparent = wino(cl, newparent) };
	struct csv_wire_attr a;
	bool resent = false;
	int r = csv_wire_name_set(&m.newname, newname);
	if (r == 0)
		r = call_attr_r(cl, &f, csv_wire_link_encode(&f, ID(cl), EP(cl), &m), CSV_WIRE_LINK, &a, &resent);
	/* Sent again to a restarted coordinator: done if the name is ours. */
	if (r == -EEXIST && resent && lookup_ino(cl, m.newparent, newname, &a) == 0 && a.ino == m.ino)
		r = 0;
	client_attrs_forget(cl->attrs, m.newparent);
	reply_entry(req, r, &a);
}

/* ---- open files ------------------------------------------------------------ */

/* An open handle: fi->fh points to it. */
struct handle {
	struct client_file *cf;
	uint32_t flags;  /* CSV_WIRE_OPEN_*, without TRUNC: RELEASE repeats them */
};

static struct handle *HANDLE(const struct fuse_file_info *fi)
{
	return (struct handle *)(uintptr_t)fi->fh;
}

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
	bool trunc = m.flags & CSV_WIRE_OPEN_TRUNC;
	struct handle *h = calloc(1, sizeof(*h));
	struct client_file *cf = h ? client_files_get(cl->files, ino, true) : NULL;
	if (!cf) {
		free(h);
		return -ENOMEM;
	}
	/* O_TRUNC frees clusters: this client's own layout goes first. */
	if (trunc)
		client_file_block(cf);
	int r = call_attr(cl, &f, csv_wire_open_encode(&f, ID(cl), EP(cl), &m), CSV_WIRE_OPEN, &a);
	if (trunc)
		client_file_unblock(cf);
	if (r < 0) {
		client_files_put(cl->files, cf);
		free(h);
		return r;
	}
	client_files_opened(cl->files, cf);
	h->cf = cf;
	h->flags = m.flags & ~(uint32_t)CSV_WIRE_OPEN_TRUNC;
	fi->fh = (uintptr_t)h;
	fi->keep_cache = 0;
	/* O_DIRECT (QEMU with cache=none): straight to the LUN, no page cache. */
	if (fi->flags & O_DIRECT)
		fi->direct_io = 1;
	return 0;
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
	e.attr_timeout = cl->attr_timeout;
	e.entry_timeout = 0;  /* names are looked up on every use: see op_init() */
	attr_to_stat(cl, &a, &e.attr);
	fuse_reply_create(req, &e, fi);
}

/* Sends the mtime of overwrites (which needed no commit) to the
 * coordinator. */
static int commit_mtime(struct csvfs_client *cl, struct client_file *cf)
{
	pthread_mutex_lock(&cf->lock);
	bool dirty = cf->mtime_dirty;
	cf->mtime_dirty = false;
	pthread_mutex_unlock(&cf->lock);
	if (!dirty)
		return 0;
	struct csv_wire_frame f = { 0 };
	struct csv_wire_layout_commit m = { .ino = cf->ino, .mtime_ns = (int64_t)realtime_ns(),
					    .flags = CSV_WIRE_COMMIT_MTIME };
	struct csv_wire_attr a;
	return call_attr(cl, &f, csv_wire_layout_commit_encode(&f, ID(cl), EP(cl), &m), CSV_WIRE_LAYOUT_COMMIT, &a);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct csvfs_client *cl = CL(req);
	struct handle *h = HANDLE(fi);
	struct csv_wire_frame f = { 0 };
	struct csv_wire_open m = { .ino = h->cf->ino, .flags = h->flags };
	int r = commit_mtime(cl, h->cf);
	/* The coordinator forgets this client's layout at its last close:
	 * drop it before. */
	client_file_drop(h->cf);
	int r2 = call_empty(cl, &f, csv_wire_release_encode(&f, ID(cl), EP(cl), &m));
	client_files_closed(cl->files, h->cf);
	free(h);
	fuse_reply_err(req, -(r < 0 ? r : r2));
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* Writes that changed the size or allocation were committed before
	 * they were answered; overwrites leave only their mtime. */
	fuse_reply_err(req, -commit_mtime(CL(req), HANDLE(fi)->cf));
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct csvfs_client *cl = CL(req);
	/* Every metadata change was durable when the coordinator answered
	 * it: the data on the LUN is what remains. */
	int r = client_lun_flush(&cl->lun);
	if (r == 0 && !datasync)
		r = commit_mtime(cl, HANDLE(fi)->cf);
	fuse_reply_err(req, -r);
}

/* ---- data -------------------------------------------------------------- */

/* Bytes of a read layout asked for beyond a miss, so that one request
 * serves many reads. */
#define LAYOUT_READ_WINDOW (256ull << 20)

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

/* Asks the coordinator for the layout of [off, end) and caches it. A
 * reply with the most extents a reply holds may stop short: it describes
 * the file up to its last extent only. */
static int fetch_layout(struct csvfs_client *cl, struct client_file *cf, uint64_t off, uint64_t end, bool write)
{
	uint64_t gen = client_conn_generation(cl->cc), seq = client_file_seq(cf);
	/* From a cluster boundary: an extent then starts inside a cluster
	 * only where the valid data length splits it (see write_view()). */
	off = off / cl->cluster_size * cl->cluster_size;
	struct csv_wire_layout l;
	int r = layout_get(cl, cf->ino, off, end - off, write, &l);
	if (r < 0)
		return r;
	if (l.n_extents >= CSV_WIRE_LAYOUT_EXTENTS_MAX) {
		const struct csv_wire_extent *last = &l.extents[l.n_extents - 1];
		end = last->file_offset + last->length;
	}
	client_file_merge(cf, gen, seq, off, end, &l);
	csv_wire_layout_free(&l);
	return 0;
}

/* A view of the cached layout over [off, end), asking the coordinator
 * for what is missing: a read layout of a window first, then, for a
 * write into holes, a write layout of them (which allocates). */
static int get_view(struct csvfs_client *cl, struct client_file *cf, uint64_t off, uint64_t end, bool write,
		    struct layout_view *v)
{
	for (;;) {
		uint64_t from;
		int r = client_file_view(cf, client_conn_generation(cl->cc), off, end, write, v, &from);
		if (r == 1 || r < 0)
			return r < 0 ? r : 0;
		if (r == 2) {
			r = fetch_layout(cl, cf, from, end, true);
		} else {
			uint64_t want = end > from + LAYOUT_READ_WINDOW ? end : from + LAYOUT_READ_WINDOW;
			if (want < from)  /* past the largest offset */
				want = UINT64_MAX - 1;
			r = fetch_layout(cl, cf, from, want, false);
		}
		if (r < 0)
			return r;
	}
}

/* Reads [off, end) of the file into buf through a view: zeros for holes,
 * unwritten extents and bytes at or beyond limit. */
static int read_view(struct csvfs_client *cl, const struct layout_view *v, char *buf, uint64_t off, uint64_t end,
		     uint64_t limit)
{
	memset(buf, 0, end - off);
	if (limit < end)
		end = limit;
	for (uint32_t i = 0; i < v->n; i++) {
		const struct csv_wire_extent *e = &v->ext[i];
		uint64_t s = e->file_offset > off ? e->file_offset : off;
		uint64_t t = e->file_offset + e->length < end ? e->file_offset + e->length : end;
		if (s >= t || (e->flags & CSV_WIRE_EXTENT_UNWRITTEN))
			continue;
		int r = client_lun_pread(&cl->lun, buf + (s - off), t - s, e->lun_offset + (s - e->file_offset));
		if (r < 0)
			return r;
	}
	return 0;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct csvfs_client *cl = CL(req);
	struct client_file *cf = HANDLE(fi)->cf;
	struct layout_view v;
	uint64_t start = (uint64_t)off, end = start + size;
	int r = size ? get_view(cl, cf, start, end, false, &v) : 0;
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	if (size == 0 || start >= v.size) {
		if (size)
			client_file_io_done(cf, &v);
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (end > v.size)
		end = v.size;
	char *buf = malloc(end - start);
	r = buf ? read_view(cl, &v, buf, start, end, v.vdl) : -ENOMEM;
	client_file_io_done(cf, &v);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_buf(req, buf, end - start);
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

/* Writes zeros over the written clusters of [from, to): bytes past the
 * valid data length that a write beyond it would otherwise expose. */
static int zero_written(struct csvfs_client *cl, struct client_file *cf, uint64_t from, uint64_t to)
{
	static const char zeros[65536];
	struct layout_view v;
	int r = get_view(cl, cf, from, to, false, &v);
	if (r < 0)
		return r;
	for (uint32_t i = 0; r == 0 && i < v.n; i++) {
		const struct csv_wire_extent *e = &v.ext[i];
		uint64_t s = e->file_offset > from ? e->file_offset : from;
		uint64_t t = e->file_offset + e->length < to ? e->file_offset + e->length : to;
		if (e->flags & CSV_WIRE_EXTENT_UNWRITTEN)
			continue;
		while (s < t && r == 0) {
			uint64_t n = t - s < sizeof(zeros) ? t - s : sizeof(zeros);
			r = client_lun_pwrite(&cl->lun, zeros, n, e->lun_offset + (s - e->file_offset));
			s += n;
		}
	}
	client_file_io_done(cf, &v);
	return r;
}

/* Writes the bytes through a view that maps [off, off + len): straight
 * into written extents, and as whole clusters (zeros around the bytes)
 * into unwritten ones, whose ranges go into rs for the commit. */
static int write_view(struct csvfs_client *cl, const struct layout_view *v, const char *data, uint64_t off,
		      uint64_t len, struct ranges *rs)
{
	uint64_t cs = cl->cluster_size, end = off + len;
	char *cbuf = NULL;
	int r = 0;
	for (uint32_t i = 0; i < v->n && r == 0; i++) {
		const struct csv_wire_extent *e = &v->ext[i];
		uint64_t eend = e->file_offset + e->length;
		uint64_t s = e->file_offset > off ? e->file_offset : off;
		uint64_t t = eend < end ? eend : end;
		if (s >= t)
			continue;
		if (!(e->flags & CSV_WIRE_EXTENT_UNWRITTEN)) {
			r = client_lun_pwrite(&cl->lun, data + (s - off), t - s, e->lun_offset + (s - e->file_offset));
			continue;
		}
		/* Cluster by cluster: the part of each cluster that is in the
		 * extent is written whole. Layouts are asked for from cluster
		 * boundaries, so such a part starts inside a cluster only where
		 * the valid data length splits a written cluster: beyond it,
		 * zeros are what the bytes hold. */
		for (uint64_t c = s / cs * cs; c < t && r == 0; c += cs) {
			uint64_t ps = c > e->file_offset ? c : e->file_offset;
			uint64_t pe = c + cs < eend ? c + cs : eend;
			uint64_t ds = ps > s ? ps : s, dt = pe < t ? pe : t;
			if (ds == ps && dt == pe) {
				r = client_lun_pwrite(&cl->lun, data + (ds - off), pe - ps, e->lun_offset + (ps - e->file_offset));
			} else if (!cbuf && !(cbuf = malloc(cs))) {
				r = -ENOMEM;
			} else {
				memset(cbuf, 0, pe - ps);
				memcpy(cbuf + (ds - ps), data + (ds - off), dt - ds);
				r = client_lun_pwrite(&cl->lun, cbuf, pe - ps, e->lun_offset + (ps - e->file_offset));
			}
			if (r == 0)
				r = ranges_add(rs, ps, pe - ps);
		}
	}
	free(cbuf);
	return r;
}

static int do_write(struct csvfs_client *cl, struct client_file *cf, const char *data, uint64_t off, uint64_t len)
{
	uint64_t end = off + len;
	struct layout_view v;
	struct ranges rs = { 0 };
	bool zeroed = false;
	int r;

	for (;;) {
		r = get_view(cl, cf, off, end, true, &v);
		if (r < 0)
			return r;
		if (v.vdl >= off || zeroed)
			break;
		/* Written data past the valid data length reads as zeros:
		 * keep it so once the length grows over it. */
		uint64_t vdl = v.vdl;
		client_file_io_done(cf, &v);
		r = zero_written(cl, cf, vdl, off);
		if (r < 0)
			return r;
		zeroed = true;
	}
	r = write_view(cl, &v, data, off, len, &rs);
	uint64_t size = v.size, vdl = v.vdl;
	client_file_io_done(cf, &v);

	if (r == 0 && (rs.n || end > vdl || end > size)) {
		/* Clusters that were unwritten become written by the commit:
		 * their data must be on the LUN before. */
		if (rs.n)
			r = client_lun_flush(&cl->lun);
		struct csv_wire_frame f = { 0 };
		struct csv_wire_layout_commit m = {
			.ino = cf->ino,
			.size = size > end ? size : end,
			.valid_data_length = vdl > end ? vdl : end,
			.mtime_ns = (int64_t)realtime_ns(),
			.flags = CSV_WIRE_COMMIT_SIZE | CSV_WIRE_COMMIT_VDL | CSV_WIRE_COMMIT_MTIME,
			.n_ranges = rs.n,
			.ranges = rs.v,
		};
		struct csv_wire_attr a;
		if (r == 0)
			r = call_attr(cl, &f, csv_wire_layout_commit_encode(&f, ID(cl), EP(cl), &m),
				      CSV_WIRE_LAYOUT_COMMIT, &a);
		if (r == 0)
			client_file_committed(cf, rs.v, rs.n, a.size, a.valid_data_length);
	} else if (r == 0) {
		pthread_mutex_lock(&cf->lock);
		cf->mtime_dirty = true;
		pthread_mutex_unlock(&cf->lock);
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
	int r = do_write(cl, HANDLE(fi)->cf, buf, (uint64_t)off, size);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_write(req, size);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
			 struct fuse_file_info *fi)
{
	struct csvfs_client *cl = CL(req);
	struct client_file *cf = HANDLE(fi)->cf;
	struct csv_wire_frame f = { 0 };
	struct csv_wire_fallocate m = { .ino = cf->ino, .offset = (uint64_t)offset, .length = (uint64_t)length };
	struct csv_wire_attr a;
	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	m.mode = (mode & FALLOC_FL_KEEP_SIZE ? CSV_WIRE_FALLOC_KEEP_SIZE : 0) |
		 (mode & FALLOC_FL_PUNCH_HOLE ? CSV_WIRE_FALLOC_PUNCH_HOLE : 0) |
		 (mode & FALLOC_FL_ZERO_RANGE ? CSV_WIRE_FALLOC_ZERO_RANGE : 0);
	/* The mapping changes (and a punched hole frees clusters): this
	 * client's layout goes first. */
	client_file_block(cf);
	int r = call_attr(cl, &f, csv_wire_fallocate_encode(&f, ID(cl), EP(cl), &m), CSV_WIRE_FALLOCATE, &a);
	client_file_unblock(cf);
	fuse_reply_err(req, -r);
}

/* SEEK_DATA and SEEK_HOLE: unwritten extents and bytes beyond the valid
 * data length read as zeros, and count as holes. */
static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
	struct csvfs_client *cl = CL(req);
	uint64_t ino_w = HANDLE(fi)->cf->ino, pos = (uint64_t)off, cur = pos;
	const uint64_t span = 1ull << 62;
	if (whence != SEEK_DATA && whence != SEEK_HOLE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	for (;;) {
		struct csv_wire_layout l;
		int r = layout_get(cl, ino_w, cur, span, false, &l);
		if (r < 0) {
			fuse_reply_err(req, -r);
			return;
		}
		uint64_t size = l.size, last = cur;
		bool found = false;
		if (pos >= size) {
			csv_wire_layout_free(&l);
			fuse_reply_err(req, ENXIO);
			return;
		}
		for (uint32_t i = 0; i < l.n_extents && !found; i++) {
			const struct csv_wire_extent *e = &l.extents[i];
			uint64_t eend = e->file_offset + e->length;
			last = eend;
			if (e->flags & CSV_WIRE_EXTENT_UNWRITTEN || eend <= pos)
				continue;
			if (whence == SEEK_DATA) {
				pos = e->file_offset > pos ? e->file_offset : pos;
				found = true;
			} else if (e->file_offset > pos) {
				found = true;  /* the hole before this extent */
			} else {
				pos = eend;
			}
		}
		bool more = l.n_extents >= CSV_WIRE_LAYOUT_EXTENTS_MAX;
		csv_wire_layout_free(&l);
		if (!found && more && last > cur) {
			cur = last;
			continue;
		}
		if (whence == SEEK_DATA && (!found || pos >= size)) {
			fuse_reply_err(req, ENXIO);
			return;
		}
		fuse_reply_lseek(req, (off_t)(pos < size ? pos : size));
		return;
	}
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

/* The permission bits an access ACL (in the system.posix_acl_access
 * format: a 4-byte version 2, then entries of tag le16, perm le16, id le32)
 * stands for: the owner's, the mask's or else the owning group's, the
 * others'. Returns -1 for a value that is not such an ACL. */
static int acl_mode_bits(const void *value, size_t size)
{
	const uint8_t *p = value;
	int user = -1, group = -1, mask = -1, other = -1;
	if (size < 4 || (size - 4) % 8 || (p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24) != 2)
		return -1;
	for (size_t off = 4; off < size; off += 8) {
		unsigned tag = p[off] | p[off + 1] << 8, perm = (p[off + 2] | p[off + 3] << 8) & 7;
		switch (tag) {
		case 0x01: user = (int)perm; break;  /* ACL_USER_OBJ */
		case 0x04: group = (int)perm; break; /* ACL_GROUP_OBJ */
		case 0x10: mask = (int)perm; break;  /* ACL_MASK */
		case 0x20: other = (int)perm; break; /* ACL_OTHER */
		}
	}
	if (user < 0 || group < 0 || other < 0)
		return -1;
	return user << 6 | (mask >= 0 ? mask : group) << 3 | other;
}

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
	/* An access ACL and the mode's permission bits say the same thing:
	 * the kernel consults the ACL only through the group bits (its mask). */
	int bits = r == 0 && strcmp(name, "system.posix_acl_access") == 0 ? acl_mode_bits(value, size) : -1;
	struct csv_wire_attr a;
	if (bits >= 0 && (r = getattr_ino(cl, m.ino, &a)) == 0 && (a.mode & 0777) != (uint32_t)bits) {
		struct csv_wire_setattr sm = { .ino = m.ino, .valid = CSV_WIRE_SET_MODE,
					       .mode = (a.mode & 07000) | (uint32_t)bits };
		r = call_attr(cl, &f, csv_wire_setattr_encode(&f, ID(cl), EP(cl), &sm), CSV_WIRE_SETATTR, &a);
	}
	client_attrs_forget(cl->attrs, m.ino);
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
	/* No writeback cache: a write is on the LUN (and committed where it
	 * must be) when it is answered. No readdirplus. */
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS;
	/* POSIX ACLs: stored as system.posix_acl_* extended attributes,
	 * enforced by the kernel (with default_permissions). */
	if (conn->capable & FUSE_CAP_POSIX_ACL)
		conn->want |= FUSE_CAP_POSIX_ACL;
	/* Entries are not cached (entry timeout 0): a rename or unlink on
	 * another node is seen by the next path walk, without waiting for an
	 * INVAL_ENTRY that the kernel can only run under the directory's
	 * lock. Attributes are cached, and the coordinator answers a change
	 * only after every other client has dropped them. */
	/* Large requests, as the LUN likes them. */
	conn->max_write = 1u << 20;
	conn->max_readahead = 1u << 20;
}

void csvfs_invalidate(void *ud, uint64_t ino, bool layout)
{
	struct csvfs_client *cl = ud;
	client_attrs_forget(cl->attrs, ino);
	struct client_file *cf = layout ? client_files_get(cl->files, ino, false) : NULL;
	if (cf) {
		client_file_drop(cf);
		client_files_put(cl->files, cf);
	}
}

void csvfs_foreach_open(void *ud, void (*fn)(void *fud, uint64_t ino), void *fud)
{
	struct csvfs_client *cl = ud;
	client_files_foreach_handle(cl->files, fn, fud);
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
	.fallocate = op_fallocate,
	.lseek = op_lseek,
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
