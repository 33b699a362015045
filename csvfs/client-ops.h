/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The FUSE low-level operations of csvfs. Metadata goes to the coordinator
 * (one RPC per operation); data goes straight to the LUN through layouts
 * cached per open file (client-files.h). A write that allocates, or grows
 * the size or the valid data length, is committed before it is answered;
 * an overwrite of written data needs no RPC. Attributes and entries are
 * cached by the kernel for attr_timeout seconds, and dropped at once by
 * the coordinator's invalidations when another node changes them. */
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <stdint.h>

#include "client-lun.h"

struct client_conn;
struct client_attrs;
struct client_files;

struct csvfs_client {
	struct client_conn *cc;
	struct client_lun lun;  /* the LUN: direct, or through the coordinator */
	struct client_files *files;
	struct client_attrs *attrs;
	double attr_timeout;    /* seconds the kernel caches attributes and entries */
	uint64_t root_ino;      /* wire reference of the root directory */
	uint32_t cluster_size;
	uint32_t name_max;
	bool rdonly;
};

extern const struct fuse_lowlevel_ops csvfs_ops;

/* What the connection calls back into: invalidating what is cached of a
 * file, listing the open handles to reopen on a new connection. */
void csvfs_invalidate(void *ud, uint64_t ino, bool layout);
void csvfs_foreach_open(void *ud, void (*fn)(void *fud, uint64_t ino), void *fud);
