/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "client-attrs.h"

/* One entry per slot: a file whose slot another file took is asked for
 * again. */
#define ATTR_SLOTS 4096

struct slot {
	uint64_t gen;     /* 0: empty */
	uint64_t round;   /* the table's round when it was put */
	uint64_t expires; /* CLOCK_MONOTONIC ns */
	struct csv_wire_attr a;
};

struct client_attrs {
	pthread_mutex_t lock;
	uint64_t timeout_ns;
	uint64_t round;   /* bumped by client_attrs_forget_all() */
	struct slot s[ATTR_SLOTS];
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct slot *slot_of(struct client_attrs *t, uint64_t ino)
{
	return &t->s[((ino * 0x9e3779b97f4a7c15ull) >> 40) % ATTR_SLOTS];
}

int client_attrs_new(double timeout_s, struct client_attrs **ret)
{
	struct client_attrs *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	t->timeout_ns = (uint64_t)(timeout_s * 1e9);
	*ret = t;
	return 0;
}

void client_attrs_free(struct client_attrs *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t);
}

void client_attrs_put(struct client_attrs *t, uint64_t gen, const struct csv_wire_attr *a)
{
	if (!gen || !t->timeout_ns)
		return;
	pthread_mutex_lock(&t->lock);
	struct slot *s = slot_of(t, a->ino);
	*s = (struct slot){ .gen = gen, .round = t->round, .expires = now_ns() + t->timeout_ns, .a = *a };
	pthread_mutex_unlock(&t->lock);
}

bool client_attrs_get(struct client_attrs *t, uint64_t gen, uint64_t ino, struct csv_wire_attr *ret)
{
	bool hit = false;
	pthread_mutex_lock(&t->lock);
	struct slot *s = slot_of(t, ino);
	if (gen && s->gen == gen && s->round == t->round && s->a.ino == ino && s->expires > now_ns()) {
		*ret = s->a;
		hit = true;
	}
	pthread_mutex_unlock(&t->lock);
	return hit;
}

void client_attrs_forget(struct client_attrs *t, uint64_t ino)
{
	pthread_mutex_lock(&t->lock);
	struct slot *s = slot_of(t, ino);
	if (s->a.ino == ino)
		s->gen = 0;
	pthread_mutex_unlock(&t->lock);
}

void client_attrs_forget_all(struct client_attrs *t)
{
	pthread_mutex_lock(&t->lock);
	t->round++;
	pthread_mutex_unlock(&t->lock);
}
