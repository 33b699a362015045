/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client-files.h"

#define FILES_BUCKETS 1024

struct client_files {
	pthread_mutex_t lock;
	struct client_file *b[FILES_BUCKETS];
};

static unsigned bucket(uint64_t ino)
{
	return (unsigned)((ino * 0x9e3779b97f4a7c15ull) >> 54) % FILES_BUCKETS;
}

int client_files_new(struct client_files **ret)
{
	struct client_files *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	*ret = t;
	return 0;
}

static void file_free(struct client_file *cf)
{
	pthread_mutex_destroy(&cf->lock);
	pthread_cond_destroy(&cf->cond);
	free(cf->ext);
	free(cf);
}

void client_files_free(struct client_files *t)
{
	if (!t)
		return;
	for (unsigned i = 0; i < FILES_BUCKETS; i++)
		while (t->b[i]) {
			struct client_file *cf = t->b[i];
			t->b[i] = cf->next;
			file_free(cf);
		}
	pthread_mutex_destroy(&t->lock);
	free(t);
}

struct client_file *client_files_get(struct client_files *t, uint64_t ino, bool create)
{
	struct client_file *cf;
	pthread_mutex_lock(&t->lock);
	for (cf = t->b[bucket(ino)]; cf; cf = cf->next)
		if (cf->ino == ino)
			break;
	if (!cf && create && (cf = calloc(1, sizeof(*cf)))) {
		cf->ino = ino;
		pthread_mutex_init(&cf->lock, NULL);
		pthread_cond_init(&cf->cond, NULL);
		cf->next = t->b[bucket(ino)];
		t->b[bucket(ino)] = cf;
	}
	if (cf)
		cf->refs++;
	pthread_mutex_unlock(&t->lock);
	return cf;
}

void client_files_put(struct client_files *t, struct client_file *cf)
{
	pthread_mutex_lock(&t->lock);
	if (--cf->refs == 0) {
		struct client_file **pp = &t->b[bucket(cf->ino)];
		while (*pp != cf)
			pp = &(*pp)->next;
		*pp = cf->next;
		file_free(cf);
	}
	pthread_mutex_unlock(&t->lock);
}

void client_files_opened(struct client_files *t, struct client_file *cf)
{
	pthread_mutex_lock(&t->lock);
	cf->nopen++;
	pthread_mutex_unlock(&t->lock);
}

void client_files_closed(struct client_files *t, struct client_file *cf)
{
	pthread_mutex_lock(&t->lock);
	cf->nopen--;
	pthread_mutex_unlock(&t->lock);
	client_files_put(t, cf);
}

void client_files_foreach_handle(struct client_files *t, void (*fn)(void *ud, uint64_t ino), void *ud)
{
	pthread_mutex_lock(&t->lock);
	for (unsigned i = 0; i < FILES_BUCKETS; i++)
		for (struct client_file *cf = t->b[i]; cf; cf = cf->next)
			for (unsigned k = 0; k < cf->nopen; k++)
				fn(ud, cf->ino);
	pthread_mutex_unlock(&t->lock);
}

/* ---- dropping -------------------------------------------------------------- */

/* With cf->lock held. */
static void drop_locked(struct client_file *cf)
{
	cf->inval_seq++;
	cf->conn_gen = 0;
	cf->n = 0;
	cf->lo = cf->hi = 0;
	while (cf->in_flight)
		pthread_cond_wait(&cf->cond, &cf->lock);
}

void client_file_drop(struct client_file *cf)
{
	pthread_mutex_lock(&cf->lock);
	drop_locked(cf);
	pthread_mutex_unlock(&cf->lock);
}

void client_file_block(struct client_file *cf)
{
	pthread_mutex_lock(&cf->lock);
	cf->blocked++;
	drop_locked(cf);
	pthread_mutex_unlock(&cf->lock);
}

void client_file_unblock(struct client_file *cf)
{
	pthread_mutex_lock(&cf->lock);
	cf->blocked--;
	cf->inval_seq++;
	pthread_cond_broadcast(&cf->cond);
	pthread_mutex_unlock(&cf->lock);
}

/* ---- views ----------------------------------------------------------------- */

int client_file_view(struct client_file *cf, uint64_t gen, uint64_t off, uint64_t end, bool need_mapped,
		     struct layout_view *v, uint64_t *ret_from)
{
	*v = (struct layout_view){ 0 };
	*ret_from = off;
	pthread_mutex_lock(&cf->lock);
	while (cf->blocked)
		pthread_cond_wait(&cf->cond, &cf->lock);
	if (gen == 0 || cf->conn_gen != gen || off < cf->lo || end > cf->hi) {
		if (gen && cf->conn_gen == gen && off >= cf->lo && off < cf->hi)
			*ret_from = cf->hi;
		pthread_mutex_unlock(&cf->lock);
		return 0;
	}
	uint32_t first = 0, count = 0;
	uint64_t covered = off;
	for (uint32_t i = 0; i < cf->n; i++) {
		const struct csv_wire_extent *e = &cf->ext[i];
		if (e->file_offset + e->length <= off)
			continue;
		if (e->file_offset >= end)
			break;
		if (need_mapped && e->file_offset > covered)
			break;  /* a hole, where a write needs none */
		if (!count)
			first = i;
		count++;
		if (e->file_offset <= covered)
			covered = e->file_offset + e->length;
	}
	if (need_mapped && covered < end) {
		*ret_from = covered;
		pthread_mutex_unlock(&cf->lock);
		return 2;
	}
	if (count && !(v->ext = malloc(count * sizeof(*v->ext)))) {
		pthread_mutex_unlock(&cf->lock);
		return -ENOMEM;
	}
	if (count)
		memcpy(v->ext, cf->ext + first, count * sizeof(*v->ext));
	v->n = count;
	v->size = cf->size;
	v->vdl = cf->vdl;
	cf->in_flight++;
	pthread_mutex_unlock(&cf->lock);
	return 1;
}

void client_file_io_done(struct client_file *cf, struct layout_view *v)
{
	free(v->ext);
	v->ext = NULL;
	pthread_mutex_lock(&cf->lock);
	if (--cf->in_flight == 0)
		pthread_cond_broadcast(&cf->cond);
	pthread_mutex_unlock(&cf->lock);
}

uint64_t client_file_seq(struct client_file *cf)
{
	pthread_mutex_lock(&cf->lock);
	uint64_t s = cf->inval_seq;
	pthread_mutex_unlock(&cf->lock);
	return s;
}

/* ---- changing the cached layout ------------------------------------------ */

struct ext_list {
	struct csv_wire_extent *v;
	uint32_t n, cap;
};

static int push(struct ext_list *l, uint64_t file_offset, uint64_t lun_offset, uint64_t length, uint32_t flags)
{
	if (length == 0)
		return 0;
	if (l->n && l->v[l->n - 1].flags == flags &&
	    l->v[l->n - 1].file_offset + l->v[l->n - 1].length == file_offset &&
	    l->v[l->n - 1].lun_offset + l->v[l->n - 1].length == lun_offset) {
		l->v[l->n - 1].length += length;
		return 0;
	}
	if (l->n == l->cap) {
		uint32_t cap = l->cap ? l->cap * 2 : 16;
		void *p = realloc(l->v, cap * sizeof(*l->v));
		if (!p)
			return -ENOMEM;
		l->v = p;
		l->cap = cap;
	}
	l->v[l->n++] = (struct csv_wire_extent){ .file_offset = file_offset, .lun_offset = lun_offset,
						 .length = length, .flags = flags };
	return 0;
}

/* Pushes the part of e inside [from, to). */
static int push_part(struct ext_list *l, const struct csv_wire_extent *e, uint64_t from, uint64_t to, uint32_t flags)
{
	uint64_t s = e->file_offset > from ? e->file_offset : from;
	uint64_t t = e->file_offset + e->length < to ? e->file_offset + e->length : to;
	if (s >= t)
		return 0;
	return push(l, s, e->lun_offset + (s - e->file_offset), t - s, flags);
}

/* Replaces cf's extents with l's (taking them over). */
static void install(struct client_file *cf, struct ext_list *l)
{
	free(cf->ext);
	cf->ext = l->v;
	cf->n = l->n;
	cf->cap = l->cap;
}

void client_file_merge(struct client_file *cf, uint64_t gen, uint64_t seq, uint64_t off, uint64_t end,
		       const struct csv_wire_layout *lay)
{
	struct ext_list l = { 0 };
	int r = 0;
	if (lay->n_extents) {
		const struct csv_wire_extent *last = &lay->extents[lay->n_extents - 1];
		if (last->file_offset + last->length > end)
			end = last->file_offset + last->length;
		if (lay->extents[0].file_offset < off)
			off = lay->extents[0].file_offset;
	}
	pthread_mutex_lock(&cf->lock);
	if (gen == 0 || cf->inval_seq != seq || cf->blocked) {
		pthread_mutex_unlock(&cf->lock);
		return;
	}
	bool keep = cf->conn_gen == gen && cf->hi > cf->lo && cf->lo <= end && off <= cf->hi;
	uint64_t lo = keep && cf->lo < off ? cf->lo : off, hi = keep && cf->hi > end ? cf->hi : end;
	/* The old extents before off, the new ones, the old ones after end. */
	for (uint32_t i = 0; keep && i < cf->n && r == 0; i++)
		r = push_part(&l, &cf->ext[i], 0, off, cf->ext[i].flags);
	for (uint32_t i = 0; i < lay->n_extents && r == 0; i++)
		r = push_part(&l, &lay->extents[i], off, end, lay->extents[i].flags);
	for (uint32_t i = 0; keep && i < cf->n && r == 0; i++)
		r = push_part(&l, &cf->ext[i], end, UINT64_MAX, cf->ext[i].flags);
	if (r < 0) {
		free(l.v);
		pthread_mutex_unlock(&cf->lock);
		return;
	}
	install(cf, &l);
	cf->lo = lo;
	cf->hi = hi;
	cf->conn_gen = gen;
	cf->size = lay->size;
	cf->vdl = lay->valid_data_length;
	pthread_mutex_unlock(&cf->lock);
}

void client_file_committed(struct client_file *cf, const struct csv_wire_range *rs, uint32_t n, uint64_t size,
			   uint64_t vdl)
{
	pthread_mutex_lock(&cf->lock);
	uint64_t old_vdl = cf->vdl;
	cf->size = size;
	cf->vdl = vdl;
	if (n && cf->n) {
		/* Split the unwritten extents at the written ranges. */
		struct ext_list l = { 0 };
		int r = 0;
		for (uint32_t i = 0; i < cf->n && r == 0; i++) {
			const struct csv_wire_extent *e = &cf->ext[i];
			if (!(e->flags & CSV_WIRE_EXTENT_UNWRITTEN)) {
				r = push_part(&l, e, 0, UINT64_MAX, e->flags);
				continue;
			}
			uint64_t cur = e->file_offset;
			for (uint32_t k = 0; k < n && r == 0; k++) {
				uint64_t a = rs[k].offset, b = rs[k].offset + rs[k].length;
				if (b <= cur || a >= e->file_offset + e->length)
					continue;
				r = push_part(&l, e, cur, a, e->flags);
				if (r == 0)
					r = push_part(&l, e, a, b, e->flags & ~(uint32_t)CSV_WIRE_EXTENT_UNWRITTEN);
				cur = b;
			}
			if (r == 0)
				r = push_part(&l, e, cur, UINT64_MAX, e->flags);
		}
		if (r == 0) {
			install(cf, &l);
		} else {
			free(l.v);
			drop_locked(cf);  /* cannot describe it: ask again */
		}
	}
	for (uint32_t i = 0; i < cf->n && vdl > old_vdl; i++) {
		const struct csv_wire_extent *e = &cf->ext[i];
		if ((e->flags & CSV_WIRE_EXTENT_UNWRITTEN) && e->file_offset < vdl &&
		    e->file_offset + e->length > old_vdl) {
			drop_locked(cf);
			break;
		}
	}
	pthread_mutex_unlock(&cf->lock);
}
