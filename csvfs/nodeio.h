/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Where the format library reads, writes, allocates and frees the
 * cluster-sized metadata nodes (directory index blocks, extent blocks):
 * on a volume (directly, as mkfs and fsck do, or through a journal
 * transaction, as the coordinator does) or in memory (unit tests). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct csv_nodeio;

struct csv_nodeio_ops {
	/* Reads node_size bytes at blocknr into buf and verifies the block
	 * header against magic (meta_verify): -EBADMSG / -EUCLEAN on damage. */
	int (*read)(struct csv_nodeio *io, uint64_t blocknr, uint32_t magic, void *buf);
	/* Seals buf (magic, blocknr, uuid, the current LSN, CRC) and writes it. */
	int (*write)(struct csv_nodeio *io, uint64_t blocknr, uint32_t magic, void *buf);
	/* Allocates one node (one cluster); returns its block number. */
	int (*alloc)(struct csv_nodeio *io, uint64_t *ret_blocknr);
	/* Frees a node allocated with alloc. */
	int (*free)(struct csv_nodeio *io, uint64_t blocknr);
};

struct csv_nodeio {
	const struct csv_nodeio_ops *ops;
	uint32_t node_size;   /* bytes: the volume's cluster size */
	uint8_t uuid[16];     /* volume UUID stamped into every node */
	uint64_t lsn;         /* LSN stamped into nodes written now */
	void *ctx;            /* the implementation's own state */
};

static inline int nodeio_read(struct csv_nodeio *io, uint64_t b, uint32_t magic, void *buf)
{
	return io->ops->read(io, b, magic, buf);
}
static inline int nodeio_write(struct csv_nodeio *io, uint64_t b, uint32_t magic, void *buf)
{
	return io->ops->write(io, b, magic, buf);
}
static inline int nodeio_alloc(struct csv_nodeio *io, uint64_t *ret)
{
	return io->ops->alloc(io, ret);
}
static inline int nodeio_free(struct csv_nodeio *io, uint64_t b)
{
	return io->ops->free(io, b);
}

/* An in-memory node store for tests: nodes live in a table, allocation
 * hands out increasing block numbers (reusing freed ones), and reading a
 * node that was never written or was freed fails with -EIO. */
int nodeio_mem_new(uint32_t node_size, struct csv_nodeio **ret);
void nodeio_mem_free(struct csv_nodeio *io);
/* Nodes currently allocated in a memory store. */
size_t nodeio_mem_allocated(const struct csv_nodeio *io);
/* A pointer to the stored bytes of a node (to damage it in tests), or NULL. */
uint8_t *nodeio_mem_peek(struct csv_nodeio *io, uint64_t blocknr);
