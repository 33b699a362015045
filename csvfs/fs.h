/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Namespace and data operations on an open volume: creating, linking,
 * unlinking, renaming, listing, writing and reading files, attributes and
 * extended attributes, layouts (where a file's bytes lie on the LUN, for
 * clients that do their own data I/O), orphans, growing the MFT. Opened with
 * fs_open(), changes go straight to the LUN (the tools: test images, the
 * inspector; fs_sync() writes the bitmaps). Opened with fs_open_journaled(),
 * each operation that changes something is one journal transaction,
 * durable when it returns: the metadata engine of the coordinator. Queries
 * (lookups, reads, attributes, listings, read layouts) open none. Not
 * thread-safe: the coordinator serialises calls. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "alloc.h"
#include "bitmap.h"
#include "mft.h"
#include "nodeio-vol.h"
#include "volume.h"

struct csv_metatxn;
struct csv_journal;

struct csv_fs {
	struct csv_volume *v;
	struct csv_journal *journal;  /* NULL: direct to the LUN */
	struct csv_metatxn *mt;
	struct csv_bitmap rmap_dirty; /* record bitmap blocks changed in the open operation */
	uint64_t *quarantine;         /* metadata clusters freed since the last checkpoint */
	size_t nquarantine, quarantine_cap;
	bool quarantine_lost;         /* a cluster could not be remembered */
	struct csv_mft mft;
	struct csv_bitmap rmap;       /* record bitmap */
	struct csv_alloc *alloc;      /* NULL when opened read-only */
	struct csv_nodeio_vol nv;
	uint8_t *rec;                 /* one record buffer */
	uint8_t *dir;                 /* another, for the directory */
};

/* Opens the metadata of v: the MFT and, unless rdonly, the bitmaps and
 * the allocator. err names the problem. */
int fs_open(struct csv_volume *v, bool rdonly, struct csv_fs **ret, char *err, size_t errlen);
/* Opens v's metadata with every change going through journal j (which the
 * caller opened, replayed and keeps). */
int fs_open_journaled(struct csv_volume *v, struct csv_journal *j, struct csv_fs **ret, char *err,
		      size_t errlen);
/* Direct: writes the bitmaps and flushes. Journaled: checkpoints. */
int fs_sync(struct csv_fs *fs);
void fs_close(struct csv_fs *fs);

/* Looks a name up in directory dir; returns its file reference. */
int fs_lookup(struct csv_fs *fs, uint64_t dir, const char *name, uint64_t *ret_ref);
/* Resolves an absolute path ("/a/b") to a record number. */
int fs_resolve(struct csv_fs *fs, const char *path, uint64_t *ret_recno);

/* Creates a file, directory (S_IFDIR), fifo, socket or device node under
 * dir; -EEXIST when the name is taken. */
int fs_create(struct csv_fs *fs, uint64_t dir, const char *name, uint32_t mode, uint32_t uid, uint32_t gid,
	      uint32_t rdev, uint64_t *ret_recno);
/* Creates a symbolic link to target. */
int fs_symlink(struct csv_fs *fs, uint64_t dir, const char *name, const char *target, uint64_t *ret_recno);
/* Adds a hard link to a file that is not a directory. */
int fs_link(struct csv_fs *fs, uint64_t recno, uint64_t dir, const char *name);
/* Removes a name; the file is freed with its last link. -ENOTEMPTY for a
 * directory that holds entries. */
int fs_unlink(struct csv_fs *fs, uint64_t dir, const char *name);

/* Writes len bytes at off, allocating clusters (best fit, contiguous
 * where possible; files that fit stay resident in their record). */
int fs_write(struct csv_fs *fs, uint64_t recno, uint64_t off, const void *buf, size_t len);
/* Reads up to len bytes at off; holes, unwritten runs and bytes beyond the
 * valid data length read as zeros. *ret_n is short only at end of file. */
int fs_read(struct csv_fs *fs, uint64_t recno, uint64_t off, void *buf, size_t len, size_t *ret_n);
/* Sets an extended attribute (replacing an existing value). */
int fs_setxattr(struct csv_fs *fs, uint64_t recno, const char *name, const void *value, size_t len);

/* ---- what the coordinator serves ------------------------------------------ */

/* A file's attributes, as getattr returns them. */
struct fs_attr {
	uint64_t ino;  /* file reference (record number and sequence) */
	uint32_t mode, nlink, uid, gid, rdev;
	uint64_t size, valid_data_length, alloc_clusters;
	int64_t atime_ns, mtime_ns, ctime_ns, btime_ns;
};

/* Reads the attributes of record recno; -ENOENT when it holds no file. */
int fs_getattr(struct csv_fs *fs, uint64_t recno, struct fs_attr *ret);
/* The same for a file reference: -ESTALE when the record no longer holds
 * that file (freed, or reused with another sequence number). */
int fs_getattr_ref(struct csv_fs *fs, uint64_t ref, struct fs_attr *ret);

/* Which fields fs_setattr() changes. */
enum {
	FS_SET_MODE = 1 << 0,   /* permission bits (07777); the type stays */
	FS_SET_UID = 1 << 1,
	FS_SET_GID = 1 << 2,
	FS_SET_SIZE = 1 << 3,   /* truncate: regular files only */
	FS_SET_ATIME = 1 << 4,
	FS_SET_MTIME = 1 << 5,
	FS_SET_CTIME = 1 << 6,  /* otherwise ctime becomes now on any change */
};

/* Changes the fields of record recno that valid names, from in, and
 * returns the new attributes in ret (when given). A new size shrinks the
 * file (clusters beyond it freed, the rest of its last cluster zeroed on the
 * LUN, the valid data length cut) or grows it (the gap reads as zeros);
 * a changed size also sets mtime unless FS_SET_MTIME is given. -EISDIR
 * (-EINVAL) for a size on a directory (another non-regular file), -EFBIG. */
int fs_setattr(struct csv_fs *fs, uint64_t recno, unsigned valid, const struct fs_attr *in, struct fs_attr *ret);

/* fs_rename() flags: the first two as renameat2(2). */
enum {
	FS_RENAME_NOREPLACE = 1 << 0,    /* -EEXIST when newname exists */
	FS_RENAME_EXCHANGE = 1 << 1,     /* swap two existing names */
	FS_RENAME_TARGET_OPEN = 1 << 16, /* a replaced target is open: keep it as an orphan (fs_unlink_open) */
};

/* Renames olddir/oldname to newdir/newname as rename(2) and renameat2(2)
 * do: a file replaces a file, a directory an empty directory (-ENOTEMPTY,
 * -EISDIR, -ENOTDIR otherwise); the replaced target loses that link. A
 * directory cannot move under itself (-EINVAL). Two names of one file:
 * nothing happens. */
int fs_rename(struct csv_fs *fs, uint64_t olddir, const char *oldname, uint64_t newdir, const char *newname,
	      unsigned flags);

/* Called by fs_readdir() for each entry, in name order; name is not NUL
 * terminated; type is DT_*. A non-zero return stops the listing. It must
 * not call into fs. */
typedef int (*fs_readdir_fn)(void *ud, const uint8_t *name, size_t len, uint64_t ref, uint8_t type);
/* Lists directory dir ("." and ".." are not stored and not listed).
 * Returns 0 at the end, or the non-zero value fn stopped with. */
int fs_readdir(struct csv_fs *fs, uint64_t dir, fs_readdir_fn fn, void *ud);
/* Lists the entries of dir whose names come strictly after 'after' (which
 * may have been removed since): resuming from the last name returned
 * neither repeats nor skips an entry that existed throughout, whatever
 * was added and removed in between. */
int fs_readdir_after(struct csv_fs *fs, uint64_t dir, const void *after, size_t after_len, fs_readdir_fn fn,
		     void *ud);

struct fs_statfs {
	uint32_t cluster_size;
	uint32_t name_max;
	uint64_t total_clusters, free_clusters;
	uint64_t total_records, free_records;
};

/* Space and records of the volume; -EROFS when opened read-only (no
 * allocator). */
int fs_statfs(struct csv_fs *fs, struct fs_statfs *ret);

/* fs_setxattr_flags() flags, as setxattr(2). */
enum {
	FS_XATTR_CREATE = 1 << 0,   /* -EEXIST when the attribute exists */
	FS_XATTR_REPLACE = 1 << 1,  /* -ENODATA when it does not */
};

/* Sets an extended attribute under the rules of flags. */
int fs_setxattr_flags(struct csv_fs *fs, uint64_t recno, const char *name, const void *value, size_t len,
		      unsigned flags);
/* Copies the value of an extended attribute into buf; with size 0, only
 * its length goes to *ret_len. -ENODATA when there is none, -ERANGE when
 * size is too small. */
int fs_getxattr(struct csv_fs *fs, uint64_t recno, const char *name, void *buf, size_t size, size_t *ret_len);
/* The names of the extended attributes, each followed by a NUL; size 0
 * and -ERANGE as fs_getxattr(). */
int fs_listxattr(struct csv_fs *fs, uint64_t recno, char *buf, size_t size, size_t *ret_len);
/* Removes an extended attribute; -ENODATA when there is none. */
int fs_removexattr(struct csv_fs *fs, uint64_t recno, const char *name);

/* Copies the target of a symbolic link (not NUL terminated, cut at size
 * as readlink(2) does); -EINVAL for another kind of file. */
int fs_readlink(struct csv_fs *fs, uint64_t recno, char *buf, size_t size, size_t *ret_len);

/* ---- layouts: where a file's bytes are on the LUN ------------------------- */

enum { FS_EXTENT_UNWRITTEN = 1 << 0 }; /* allocated, but reads as zeros */

/* A piece of a file on the LUN, in bytes. */
struct fs_extent {
	uint64_t file_offset, lun_offset, length;
	uint32_t flags;  /* FS_EXTENT_* */
};

/* A byte range of a file. */
struct fs_range {
	uint64_t offset, length;
};

/* Where bytes [offset, offset + length) of a regular file lie on the LUN:
 * extents in file order, at most max of them in out, *ret_n saying how
 * many (when it is max, ask again from the end of the last one). No data
 * is read or written.
 * For reading (no transaction): the mapped extents of exactly that range,
 * holes left out, those that must read as zeros flagged
 * FS_EXTENT_UNWRITTEN: unwritten runs, and the bytes at and beyond the
 * valid data length. -EOPNOTSUPP for a file whose bytes are resident in
 * its record (read them with fs_read()).
 * For writing: the holes of the range, rounded out to whole clusters, are
 * allocated as unwritten runs (best fit, after the run before them); when
 * the write extends the file, so are the clusters after it up to a
 * preallocation of 1 MiB or a quarter of the size, whichever is larger,
 * but at most an eighth of the free clusters and none when space runs out
 * (fs_fallocate() PUNCH_HOLE beyond the size trims it). A resident file is
 * first moved to clusters. The extents cover those whole clusters, the
 * range and the preallocation, unwritten ones flagged. A writer fills
 * whole clusters of an unwritten extent (zeros around its bytes), flushes,
 * then commits. The size does not change. -EFBIG beyond the largest file
 * size. */
int fs_layout_get(struct csv_fs *fs, uint64_t recno, uint64_t offset, uint64_t length, bool for_write,
		  struct fs_extent *out, size_t max, size_t *ret_n);
/* After a writer's data is on the LUN (flushed; this writes no data):
 * every cluster that the written ranges touch becomes written, the size
 * grows to new_size and the valid data length to new_vdl (at most the
 * size), mtime becomes mtime_ns (0: now). Ranges over holes are ignored
 * (clusters recalled meanwhile). -EINVAL for a file with resident data. */
int fs_layout_commit(struct csv_fs *fs, uint64_t recno, uint64_t new_size, uint64_t new_vdl, int64_t mtime_ns,
		     const struct fs_range *written, size_t n);

/* fs_fallocate() modes, as fallocate(2). */
enum {
	FS_FALLOC_KEEP_SIZE = 0x01,
	FS_FALLOC_PUNCH_HOLE = 0x02,  /* only with FS_FALLOC_KEEP_SIZE */
};

/* Mode 0 or FS_FALLOC_KEEP_SIZE: allocates the holes of the range as
 * unwritten runs, growing the size to its end unless KEEP_SIZE. PUNCH_HOLE:
 * unmaps the whole clusters of the range and writes zeros over its partial
 * clusters. -EOPNOTSUPP for other modes, -EINVAL for length 0. */
int fs_fallocate(struct csv_fs *fs, uint64_t recno, unsigned mode, uint64_t offset, uint64_t length);

/* ---- orphans: files unlinked while open ------------------------------------ */

/* As fs_unlink(), but a file (not a directory) that loses its last link is
 * kept, flagged CSV_REC_ORPHAN with no links, until fs_release_orphan();
 * fsck reclaims such records after a crash. */
int fs_unlink_open(struct csv_fs *fs, uint64_t dir, const char *name);
/* Frees an orphan when its last user closed it; -EINVAL when the record is
 * not an orphan. */
int fs_release_orphan(struct csv_fs *fs, uint64_t recno);
/* Frees every orphan (at the coordinator's start, when no client holds a
 * file open); *ret_n says how many. */
int fs_reclaim_orphans(struct csv_fs *fs, uint64_t *ret_n);
