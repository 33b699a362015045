/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "fs.h"
#include "inodes.h"

#define INODES_BUCKETS 1024

/* A request waiting for a recall of its file's layouts. */
struct parked {
	struct conn *c;
	uint8_t *frame;
	size_t len;
	struct parked *next;
};

/* One client's hold on one file. */
struct holder {
	struct conn *c;
	uint32_t opens;       /* OPENs not yet RELEASEd */
	bool layout;          /* holds a layout */
	uint64_t recall_id;   /* LAYOUT_RECALL sent and not answered; 0 none */
};

struct inode_state {
	uint64_t ref;
	struct holder *h;
	unsigned nh, caph;
	bool orphan;          /* no link left: freed at the last release */
	unsigned recalls;     /* holders with a recall outstanding */
	bool resuming;        /* serving its parked requests now */
	qb_loop_timer_handle timer;
	bool timer_armed;
	struct parked *parked, *parked_tail;
	struct inode_state *next;
};

struct inodes {
	struct inode_state *b[INODES_BUCKETS];
};

static unsigned bucket(uint64_t ref)
{
	return (unsigned)((ref * 0x9e3779b97f4a7c15ull) >> 54) % INODES_BUCKETS;
}

int inodes_init(struct server *s)
{
	s->inodes = calloc(1, sizeof(*s->inodes));
	return s->inodes ? 0 : -ENOMEM;
}

static void parked_free(struct parked *p)
{
	free(p->frame);
	free(p);
}

static void state_free(struct server *s, struct inode_state *st)
{
	if (st->timer_armed)
		qb_loop_timer_del(s->loop, st->timer);
	while (st->parked) {
		struct parked *p = st->parked;
		st->parked = p->next;
		parked_free(p);
	}
	free(st->h);
	free(st);
}

void inodes_free(struct server *s)
{
	if (!s->inodes)
		return;
	for (unsigned i = 0; i < INODES_BUCKETS; i++)
		while (s->inodes->b[i]) {
			struct inode_state *st = s->inodes->b[i];
			s->inodes->b[i] = st->next;
			state_free(s, st);
		}
	free(s->inodes);
	s->inodes = NULL;
}

static struct inode_state *find(struct server *s, uint64_t ref, bool create)
{
	struct inode_state **pp = &s->inodes->b[bucket(ref)];
	for (struct inode_state *st = *pp; st; st = st->next)
		if (st->ref == ref)
			return st;
	if (!create)
		return NULL;
	struct inode_state *st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	st->ref = ref;
	st->next = *pp;
	*pp = st;
	return st;
}

/* Frees the state of a file nobody holds and nothing waits on. */
static void forget_if_unused(struct server *s, struct inode_state *st)
{
	if (st->nh || st->parked || st->recalls || st->resuming || st->orphan)
		return;
	struct inode_state **pp = &s->inodes->b[bucket(st->ref)];
	while (*pp != st)
		pp = &(*pp)->next;
	*pp = st->next;
	state_free(s, st);
}

static struct holder *holder_of(struct inode_state *st, struct conn *c, bool create)
{
	for (unsigned i = 0; i < st->nh; i++)
		if (st->h[i].c == c)
			return &st->h[i];
	if (!create)
		return NULL;
	if (st->nh == st->caph) {
		unsigned cap = st->caph ? st->caph * 2 : 4;
		void *p = realloc(st->h, cap * sizeof(*st->h));
		if (!p)
			return NULL;
		st->h = p;
		st->caph = cap;
	}
	st->h[st->nh] = (struct holder){ .c = c };
	return &st->h[st->nh++];
}

static void holder_remove(struct inode_state *st, struct holder *h)
{
	*h = st->h[--st->nh];
}

/* ---- opens and orphans ----------------------------------------------------- */

int inodes_open(struct server *s, struct conn *c, uint64_t ref)
{
	struct inode_state *st = find(s, ref, true);
	struct holder *h = st ? holder_of(st, c, true) : NULL;
	if (!h)
		return -ENOMEM;
	h->opens++;
	return 0;
}

bool inodes_is_open(struct server *s, uint64_t ref)
{
	struct inode_state *st = find(s, ref, false);
	if (st)
		for (unsigned i = 0; i < st->nh; i++)
			if (st->h[i].opens)
				return true;
	return false;
}

void inodes_set_orphan(struct server *s, uint64_t ref)
{
	struct inode_state *st = find(s, ref, false);
	if (st)
		st->orphan = true;
}

/* Frees an orphan once no client has it open any more. */
static void free_orphan_if_closed(struct server *s, struct inode_state *st)
{
	if (!st->orphan || inodes_is_open(s, st->ref))
		return;
	st->orphan = false;
	int r = fs_release_orphan(s->fs, CSV_REF_RECNO(st->ref));
	if (r < 0)
		vlog(s, LOG_ERR, "cannot free the unlinked file %llu after its last close: %s (fsck.csvfs reclaims it)",
		     (unsigned long long)st->ref, strerror(-r));
	else
		vlog(s, LOG_DEBUG, "unlinked file %llu freed after its last close", (unsigned long long)st->ref);
}

void inodes_release(struct server *s, struct conn *c, uint64_t ref)
{
	struct inode_state *st = find(s, ref, false);
	struct holder *h = st ? holder_of(st, c, false) : NULL;
	if (!h || !h->opens)
		return;
	if (--h->opens == 0 && !h->recall_id)
		holder_remove(st, h);
	free_orphan_if_closed(s, st);
	forget_if_unused(s, st);
}

/* ---- layouts and recalls ------------------------------------------------------ */

int inodes_layout_granted(struct server *s, struct conn *c, uint64_t ref)
{
	struct inode_state *st = find(s, ref, true);
	struct holder *h = st ? holder_of(st, c, true) : NULL;
	if (!h)
		return -ENOMEM;
	h->layout = true;
	return 0;
}

static void schedule_resume(struct server *s, struct inode_state *st);

/* h's recall is over: answered, or its connection is gone. */
static void recall_done(struct server *s, struct inode_state *st, struct holder *h)
{
	if (h->recall_id) {
		h->recall_id = 0;
		st->recalls--;
	}
	h->layout = false;
	if (!h->opens)
		holder_remove(st, h);
	if (st->recalls == 0) {
		if (st->timer_armed) {
			qb_loop_timer_del(s->loop, st->timer);
			st->timer_armed = false;
		}
		schedule_resume(s, st);
	}
}

void inodes_layout_returned(struct server *s, struct conn *c, uint64_t ref)
{
	struct inode_state *st = find(s, ref, false);
	struct holder *h = st ? holder_of(st, c, false) : NULL;
	if (!h)
		return;
	if (h->recall_id)
		recall_done(s, st, h);
	else if ((h->layout = false, !h->opens))
		holder_remove(st, h);
	forget_if_unused(s, st);
}

/* Parks a copy of the request, behind the others, or in front of them
 * (front) when it was taken from there and must wait again. */
static int park(struct inode_state *st, struct conn *c, const void *frame, size_t len, bool front)
{
	struct parked *p = calloc(1, sizeof(*p));
	if (!p || !(p->frame = malloc(len))) {
		free(p);
		return -ENOMEM;
	}
	memcpy(p->frame, frame, len);
	p->len = len;
	p->c = c;
	if (front) {
		p->next = st->parked;
		st->parked = p;
		if (!st->parked_tail)
			st->parked_tail = p;
	} else {
		if (st->parked_tail)
			st->parked_tail->next = p;
		else
			st->parked = p;
		st->parked_tail = p;
	}
	return 1;
}

static void recall_timeout(void *data)
{
	struct inode_state *st = data;
	struct conn *late[64];
	unsigned n = 0;
	st->timer_armed = false;
	for (unsigned i = 0; i < st->nh && n < 64; i++)
		if (st->h[i].recall_id)
			late[n++] = st->h[i].c;
	/* Closing the connection ends its right to the layout; the recall
	 * completes when it is gone. */
	for (unsigned i = 0; i < n; i++)
		server_kill(late[i], "did not return a recalled layout in time");
}

int inodes_recall(struct server *s, struct conn *c, uint64_t ref, const void *frame, size_t len)
{
	struct inode_state *st = find(s, ref, false);
	if (!st)
		return 0;
	if (!st->resuming && (st->recalls || st->parked))
		return park(st, c, frame, len, false);
	struct holder *own = holder_of(st, c, false);
	if (own)
		own->layout = false;
	bool sent = false;
	for (unsigned i = 0; i < st->nh; i++) {
		struct holder *h = &st->h[i];
		if (h->c == c || !h->layout || h->recall_id)
			continue;
		struct csv_wire_layout_return m = { .ino = ref, .generation = 0 };
		struct csv_wire_frame f = { 0 };
		uint64_t id = csv_wire_conn_next_id(h->c->wc);
		if (csv_wire_layout_recall_encode(&f, id, s->epoch, &m) < 0) {
			server_kill(h->c, "cannot encode a LAYOUT_RECALL");
			continue;
		}
		h->recall_id = id;
		st->recalls++;
		sent = true;
		connlog(h->c, LOG_DEBUG, "LAYOUT_RECALL %llu (callback %llu)", (unsigned long long)ref,
			(unsigned long long)id);
		server_send(h->c, &f);
	}
	if (!sent && !st->recalls) {
		forget_if_unused(s, st);
		return 0;
	}
	if (!st->timer_armed &&
	    qb_loop_timer_add(s->loop, QB_LOOP_MED, INODES_RECALL_TIMEOUT_S * QB_TIME_NS_IN_SEC, st, recall_timeout,
			      &st->timer) == 0)
		st->timer_armed = true;
	/* A request served again from the parked list goes back to its head. */
	return park(st, c, frame, len, st->resuming);
}

int inodes_wait_recall(struct server *s, struct conn *c, uint64_t ref, const void *frame, size_t len)
{
	struct inode_state *st = find(s, ref, false);
	if (!st || st->resuming || (!st->recalls && !st->parked))
		return 0;
	return park(st, c, frame, len, false);
}

void inodes_callback_answered(struct server *s, struct conn *c, uint64_t req_id)
{
	for (unsigned b = 0; b < INODES_BUCKETS; b++)
		for (struct inode_state *st = s->inodes->b[b]; st; st = st->next)
			for (unsigned i = 0; i < st->nh; i++)
				if (st->h[i].c == c && st->h[i].recall_id == req_id) {
					connlog(c, LOG_DEBUG, "layout of %llu returned", (unsigned long long)st->ref);
					recall_done(s, st, &st->h[i]);
					forget_if_unused(s, st);
					return;
				}
}

/* ---- serving parked requests --------------------------------------------------- */

struct resume_job {
	struct server *s;
	uint64_t ref;
};

/* Serves the requests parked on a file, in order, until one parks again. */
static void resume(void *data)
{
	struct resume_job *job = data;
	struct server *s = job->s;
	struct inode_state *st = find(s, job->ref, false);
	free(job);
	while (st && st->parked && !st->recalls) {
		struct parked *p = st->parked;
		st->parked = p->next;
		if (!st->parked)
			st->parked_tail = NULL;
		st->resuming = true;
		server_serve(p->c, p->frame, p->len);
		st->resuming = false;
		parked_free(p);
	}
	if (st)
		forget_if_unused(s, st);
}

static void schedule_resume(struct server *s, struct inode_state *st)
{
	if (!st->parked)
		return;
	struct resume_job *job = malloc(sizeof(*job));
	if (job) {
		*job = (struct resume_job){ .s = s, .ref = st->ref };
		qb_loop_timer_handle t;
		/* A timer of 0 ns: a loop job would wait for a poll of 50 ms. */
		if (qb_loop_timer_add(s->loop, QB_LOOP_MED, 0, job, resume, &t) == 0)
			return;
		free(job);
	}
	vlog(s, LOG_ERR, "cannot schedule the requests waiting on %llu: closing their connections",
	     (unsigned long long)st->ref);
	for (struct parked *p = st->parked; p; p = p->next)
		server_kill(p->c, "its request could not be served after a layout recall");
}

void inodes_conn_closed(struct server *s, struct conn *c)
{
	if (!s->inodes)
		return;
	for (unsigned b = 0; b < INODES_BUCKETS; b++) {
		struct inode_state *st = s->inodes->b[b];
		while (st) {
			struct inode_state *next = st->next;
			/* Its parked requests go with it. */
			for (struct parked **pp = &st->parked; *pp;) {
				struct parked *p = *pp;
				if (p->c != c) {
					pp = &p->next;
					continue;
				}
				*pp = p->next;
				parked_free(p);
			}
			st->parked_tail = NULL;
			for (struct parked *p = st->parked; p; p = p->next)
				st->parked_tail = p;
			struct holder *h = holder_of(st, c, false);
			if (h) {
				h->opens = 0;
				recall_done(s, st, h);
				free_orphan_if_closed(s, st);
			}
			forget_if_unused(s, st);
			st = next;
		}
	}
}
