/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The directory index: a B+ tree of names (format.h, "Directory index").
 * The root lives in the directory record's INDEX_ROOT attribute, the other
 * nodes are index blocks of one cluster reached through struct csv_nodeio.
 *
 * Every function verifies the nodes it reads before using them: a node
 * that fails its block header check returns the error of nodeio_read()
 * (-EBADMSG, -EUCLEAN, -EIO), a node whose contents are inconsistent
 * -EUCLEAN. Names are 1..CSV_NAME_MAX bytes, ordered by memcmp() over the
 * shorter length, then shorter first. A modifying call either fails before
 * writing anything (its new blocks are given back) or writes every node it
 * changed; the caller's journal transaction makes that atomic on disk. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "nodeio.h"

/* One directory's index. root is the INDEX_ROOT payload, owned by the
 * caller: CSV_INDEX_ROOT_BYTES in real use, any size from
 * BTREE_ROOT_MIN_BYTES to io->node_size - 0x40 is accepted. */
struct csv_btree {
	struct csv_nodeio *io;
	uint64_t owner;     /* file reference of the directory, stamped in its blocks */
	void *root;
	uint32_t root_size;
};

#define BTREE_ROOT_MIN_BYTES 512u
#define BTREE_MAX_LEVELS 16u  /* levels 0..15; deeper trees are refused */

/* Called for each entry in order; a non-zero return stops the walk. */
typedef int (*btree_iter_fn)(void *userdata, const uint8_t *name, size_t len,
			     uint64_t ref, uint8_t type);

/* What btree_check() reports to its caller (fsck); any member may be NULL. */
struct btree_check_ops {
	/* Each index block that verified and belongs to this directory, once. */
	void (*node)(void *ud, uint64_t blocknr, unsigned level);
	/* Each leaf entry, in order (also entries of nodes with other problems). */
	void (*entry)(void *ud, const uint8_t *name, size_t len, uint64_t ref, uint8_t type);
	/* One problem; blocknr 0 means the root, msg names the node. */
	void (*error)(void *ud, uint64_t blocknr, const char *msg);
};

/* Writes an empty leaf root into root_size bytes. */
void btree_root_init(void *root, uint32_t root_size);

/* Finds name: its file reference and DT_* type, or -ENOENT. */
int btree_lookup(struct csv_btree *t, const void *name, size_t len, uint64_t *ret_ref,
		 uint8_t *ret_type);

/* Adds name; -EEXIST if present, -EINVAL for len 0, -ENAMETOOLONG above 255. */
int btree_insert(struct csv_btree *t, const void *name, size_t len, uint64_t ref, uint8_t type);

/* Points an existing name at another file (rename over a target); -ENOENT. */
int btree_replace(struct csv_btree *t, const void *name, size_t len, uint64_t ref,
		  uint8_t type, uint64_t *ret_old_ref);

/* Removes name, returning the reference it held; -ENOENT. */
int btree_delete(struct csv_btree *t, const void *name, size_t len, uint64_t *ret_ref);

/* Calls fn for the entries strictly after 'after' (NULL: all) in order; returns
 * fn's first non-zero value, 0 at the end. The tree must not change meanwhile. */
int btree_iterate(struct csv_btree *t, const void *after, size_t after_len, btree_iter_fn fn,
		  void *userdata);

/* Counts the entries (reads every leaf). */
int btree_count(struct csv_btree *t, uint64_t *ret);

/* Frees every index block and re-inits the root. Returns 0, or the number of
 * nodes that could not be read (their subtrees are left for fsck to reclaim);
 * the root is empty in both cases. */
int btree_destroy(struct csv_btree *t);

/* Verifies the whole tree (fsck). Returns the number of problems reported
 * through ops->error (0 = sound), or a negative errno if checking itself
 * failed (-ENOMEM, -EINVAL for a bad struct csv_btree). */
int btree_check(struct csv_btree *t, const struct btree_check_ops *ops, void *ud);
