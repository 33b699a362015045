/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Namespace and data operations on an open volume: creating, linking,
 * unlinking, writing and reading files, growing the MFT. Opened with
 * fs_open(), changes go straight to the LUN (the tools: test images, the
 * inspector; fs_sync() writes the bitmaps). Opened with fs_open_journaled(),
 * each operation is one journal transaction, durable when it returns: the
 * metadata engine of the coordinator. */
#pragma once

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
