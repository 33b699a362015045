/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The FUSE low-level operations of csvfs. Metadata goes to the coordinator
 * (one RPC per operation); data goes straight to the LUN through layouts.
 * First version: no layout cache (every read and write asks for a layout
 * and every write commits at once), and attribute and entry timeouts of 0,
 * so that another node's changes are seen at once. */
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <stdint.h>

struct client_conn;
struct csv_blockdev;

struct csvfs_client {
	struct client_conn *cc;
	struct csv_blockdev *bd;
	uint64_t root_ino;      /* wire reference of the root directory */
	uint32_t cluster_size;
	uint32_t name_max;
	bool rdonly;
};

extern const struct fuse_lowlevel_ops csvfs_ops;
