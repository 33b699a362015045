/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A node store that writes straight to the volume and allocates from an
 * in-memory allocator: what mkfs and fsck use (the coordinator goes through
 * its journal instead). */
#include "nodeio-vol.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct csv_nodeio_vol *vol_of(struct csv_nodeio *io)
{
	return io->ctx;
}

static int vol_read(struct csv_nodeio *io, uint64_t b, uint32_t magic, void *buf)
{
	struct csv_nodeio_vol *nv = vol_of(io);
	return volume_read_meta(nv->v, b, nv->v->g.blocks_per_cluster, magic, buf);
}

static int vol_write(struct csv_nodeio *io, uint64_t b, uint32_t magic, void *buf)
{
	struct csv_nodeio_vol *nv = vol_of(io);
	return volume_write_meta(nv->v, b, nv->v->g.blocks_per_cluster, magic, io->lsn, buf);
}

static int vol_alloc(struct csv_nodeio *io, uint64_t *ret)
{
	struct csv_nodeio_vol *nv = vol_of(io);
	uint64_t lcn, len;
	if (!nv->alloc)
		return -EROFS;
	int r = alloc_extent(nv->alloc, ALLOC_DATA, 1, nv->v->g.data_lcn, &lcn, &len);
	if (r < 0)
		return r;
	*ret = lcn_to_block(&nv->v->g, lcn);
	return 0;
}

static int vol_free(struct csv_nodeio *io, uint64_t b)
{
	struct csv_nodeio_vol *nv = vol_of(io);
	if (!nv->alloc)
		return -EROFS;
	if (b % nv->v->g.blocks_per_cluster)
		return -EUCLEAN;
	int r = alloc_release(nv->alloc, block_to_lcn(&nv->v->g, b), 1);
	if (r == 0 && nv->on_free)
		nv->on_free(nv->on_free_ud, block_to_lcn(&nv->v->g, b));
	return r;
}

static const struct csv_nodeio_ops vol_ops = {
	.read = vol_read,
	.write = vol_write,
	.alloc = vol_alloc,
	.free = vol_free,
};

void nodeio_vol_init(struct csv_nodeio_vol *nv, struct csv_volume *v, struct csv_alloc *a, uint64_t lsn)
{
	memset(nv, 0, sizeof(*nv));
	nv->v = v;
	nv->alloc = a;
	nv->io.ops = &vol_ops;
	nv->io.node_size = v->g.cluster_size;
	memcpy(nv->io.uuid, v->g.uuid, 16);
	nv->io.lsn = lsn;
	nv->io.ctx = nv;
}
