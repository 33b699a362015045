/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The node store of mkfs and fsck: nodes are read from and written to the
 * volume directly, allocated from an in-memory allocator (or refused with
 * -EROFS when there is none, for read-only use). */
#pragma once

#include "alloc.h"
#include "nodeio.h"
#include "volume.h"

struct csv_nodeio_vol {
	struct csv_nodeio io;
	struct csv_volume *v;
	struct csv_alloc *alloc;
	/* Told of each cluster freed, or NULL. */
	void (*on_free)(void *ud, uint64_t lcn);
	void *on_free_ud;
};

void nodeio_vol_init(struct csv_nodeio_vol *nv, struct csv_volume *v, struct csv_alloc *a, uint64_t lsn);
