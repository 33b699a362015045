/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The open files of a csvfs client and the layouts it caches for them, so
 * that reads and overwrites of mapped data need no request to the
 * coordinator.
 *
 * A cached layout is a sorted list of extents and the file range it
 * describes completely (bytes of the range in no extent are holes), with
 * the size and valid data length the coordinator last reported. It is
 * valid only on the connection it was obtained on: a new connection means
 * a coordinator that may have moved clusters. The coordinator's
 * LAYOUT_RECALL and INVAL_INODE drop it, after the I/O in progress with it
 * has finished; I/O takes a copy of the extents it needs and counts
 * itself in flight while it uses them. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "wire.h"

struct client_file {
	uint64_t ino;
	unsigned refs;          /* under the table's lock */
	unsigned nopen;         /* open handles, reclaimed after a reconnect */
	pthread_mutex_t lock;   /* everything below */
	pthread_cond_t cond;    /* in_flight reached 0, or blocked dropped */
	unsigned in_flight;     /* I/O using a copy of the layout */
	unsigned blocked;       /* truncates of this client in progress: no new layout */
	uint64_t inval_seq;     /* bumped at each drop */
	uint64_t conn_gen;      /* connection the layout was obtained on; 0 none */
	uint64_t lo, hi;        /* range the layout describes */
	struct csv_wire_extent *ext;
	uint32_t n, cap;
	uint64_t size, vdl;     /* as last reported with the layout or a commit */
	bool mtime_dirty;       /* overwritten since the last commit */
	struct client_file *next;
};

struct client_files;

int client_files_new(struct client_files **ret);
void client_files_free(struct client_files *t);

/* The file ino with a reference (created when create is set), or NULL. */
struct client_file *client_files_get(struct client_files *t, uint64_t ino, bool create);
void client_files_put(struct client_files *t, struct client_file *cf);
/* An open handle of cf now exists, holding the reference taken by
 * client_files_get(); closed drops both. */
void client_files_opened(struct client_files *t, struct client_file *cf);
void client_files_closed(struct client_files *t, struct client_file *cf);
/* Calls fn for every open handle (ino once per handle). */
void client_files_foreach_handle(struct client_files *t, void (*fn)(void *ud, uint64_t ino), void *ud);

/* Drops the layout of cf and waits for the I/O using it (a recall, an
 * invalidation, or this client's own truncate). */
void client_file_drop(struct client_file *cf);
/* As client_file_drop(), and no layout is cached or used again until
 * client_file_unblock(). */
void client_file_block(struct client_file *cf);
void client_file_unblock(struct client_file *cf);

/* A copy of the extents of the cached layout over [off, end), for I/O;
 * the caller is then in flight until client_file_io_done(). */
struct layout_view {
	struct csv_wire_extent *ext;
	uint32_t n;
	uint64_t size, vdl;
};

/* Returns 1 with a view when the layout on connection gen describes
 * [off, end) (and, with need_mapped, no hole in it); -ENOMEM; or, when it
 * does not, 0 with *ret_from the first offset to ask the coordinator about
 * (then client_file_merge()), or 2 with *ret_from the first hole of a
 * range it describes (ask for a write layout). The view holds the size
 * and valid data length too. */
int client_file_view(struct client_file *cf, uint64_t gen, uint64_t off, uint64_t end, bool need_mapped,
		     struct layout_view *v, uint64_t *ret_from);
void client_file_io_done(struct client_file *cf, struct layout_view *v);

/* The sequence to pass to client_file_merge(), read before asking. */
uint64_t client_file_seq(struct client_file *cf);
/* Caches a layout reply describing [off, end) completely (end is extended
 * to the last extent's end by a write layout's preallocation), unless the
 * layout was dropped since seq was read. */
void client_file_merge(struct client_file *cf, uint64_t gen, uint64_t seq, uint64_t off, uint64_t end,
		       const struct csv_wire_layout *l);
/* After a commit: the ranges are written, size and vdl as the reply says.
 * Bytes between the old and the new valid data length that the layout
 * shows unwritten may be written clusters (a read layout flags everything
 * beyond the valid data length): then the layout is dropped. */
void client_file_committed(struct client_file *cf, const struct csv_wire_range *r, uint32_t n, uint64_t size,
			   uint64_t vdl);
