/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The in-memory node store used by unit tests. */
#include "nodeio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "meta.h"

struct mem_store {
	uint8_t **nodes;   /* indexed by blocknr - base; NULL when not allocated */
	uint8_t *written;  /* 1 when the node has been written since alloc */
	size_t cap;
	size_t allocated;
	uint64_t *freelist;
	size_t nfree, freecap;
	uint64_t next;
};

#define MEM_BASE 1000u /* block numbers start here so that 0 never names a node */

static uint8_t **slot(struct csv_nodeio *io, uint64_t b)
{
	struct mem_store *s = io->ctx;
	if (b < MEM_BASE || b - MEM_BASE >= s->cap)
		return NULL;
	return &s->nodes[b - MEM_BASE];
}

static int mem_read(struct csv_nodeio *io, uint64_t b, uint32_t magic, void *buf)
{
	struct mem_store *s = io->ctx;
	uint8_t **p = slot(io, b);
	if (!p || !*p || !s->written[b - MEM_BASE])
		return -EIO;
	memcpy(buf, *p, io->node_size);
	return meta_verify(buf, io->node_size, magic, b, io->uuid, NULL);
}

static int mem_write(struct csv_nodeio *io, uint64_t b, uint32_t magic, void *buf)
{
	struct mem_store *s = io->ctx;
	uint8_t **p = slot(io, b);
	if (!p || !*p)
		return -EIO;
	meta_seal(buf, io->node_size, magic, b, io->uuid, io->lsn);
	memcpy(*p, buf, io->node_size);
	s->written[b - MEM_BASE] = 1;
	return 0;
}

static int mem_alloc(struct csv_nodeio *io, uint64_t *ret)
{
	struct mem_store *s = io->ctx;
	uint64_t b;

	if (s->nfree > 0) {
		b = s->freelist[--s->nfree];
	} else {
		b = s->next++;
		if (b - MEM_BASE >= s->cap) {
			size_t ncap = s->cap ? s->cap * 2 : 64;
			uint8_t **n = realloc(s->nodes, ncap * sizeof(*n));
			if (!n)
				return -ENOMEM;
			s->nodes = n;
			uint8_t *w = realloc(s->written, ncap);
			if (!w)
				return -ENOMEM;
			s->written = w;
			memset(s->nodes + s->cap, 0, (ncap - s->cap) * sizeof(*n));
			memset(s->written + s->cap, 0, ncap - s->cap);
			s->cap = ncap;
		}
	}
	uint8_t *node = calloc(1, io->node_size);
	if (!node)
		return -ENOMEM;
	s->nodes[b - MEM_BASE] = node;
	s->written[b - MEM_BASE] = 0;
	s->allocated++;
	*ret = b;
	return 0;
}

static int mem_free(struct csv_nodeio *io, uint64_t b)
{
	struct mem_store *s = io->ctx;
	uint8_t **p = slot(io, b);
	if (!p || !*p)
		return -EUCLEAN; /* double free or never allocated */
	free(*p);
	*p = NULL;
	s->written[b - MEM_BASE] = 0;
	s->allocated--;
	if (s->nfree == s->freecap) {
		size_t ncap = s->freecap ? s->freecap * 2 : 64;
		uint64_t *n = realloc(s->freelist, ncap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		s->freelist = n;
		s->freecap = ncap;
	}
	s->freelist[s->nfree++] = b;
	return 0;
}

static const struct csv_nodeio_ops mem_ops = {
	.read = mem_read,
	.write = mem_write,
	.alloc = mem_alloc,
	.free = mem_free,
};

int nodeio_mem_new(uint32_t node_size, struct csv_nodeio **ret)
{
	struct csv_nodeio *io = calloc(1, sizeof(*io));
	struct mem_store *s = calloc(1, sizeof(*s));
	if (!io || !s) {
		free(io);
		free(s);
		return -ENOMEM;
	}
	s->next = MEM_BASE;
	io->ops = &mem_ops;
	io->node_size = node_size;
	io->ctx = s;
	io->lsn = 1;
	for (int i = 0; i < 16; i++)
		io->uuid[i] = (uint8_t)(0xa0 + i);
	*ret = io;
	return 0;
}

void nodeio_mem_free(struct csv_nodeio *io)
{
	if (!io)
		return;
	struct mem_store *s = io->ctx;
	for (size_t i = 0; i < s->cap; i++)
		free(s->nodes[i]);
	free(s->nodes);
	free(s->written);
	free(s->freelist);
	free(s);
	free(io);
}

size_t nodeio_mem_allocated(const struct csv_nodeio *io)
{
	return ((const struct mem_store *)io->ctx)->allocated;
}

uint8_t *nodeio_mem_peek(struct csv_nodeio *io, uint64_t b)
{
	uint8_t **p = slot(io, b);
	return p ? *p : NULL;
}
