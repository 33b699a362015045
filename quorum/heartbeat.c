/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "heartbeat.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blockdev.h"
#include "format.h"
#include "meta.h"
#include "util.h"
#include "volume.h"

struct hb_volume {
	/* Set at start, read-only after. */
	char spec[512];
	uint32_t node_id, slot, interval_ms;
	char node_name[Q_NAME_MAX + 1];

	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;                 /* under lock */
	bool done;                 /* under lock: the thread has finished */
	struct hb_control ctl;     /* under lock */

	/* The thread's own. */
	struct csv_volume *v;
	uint8_t *buf;              /* every heartbeat and mailbox block */
	bool seen[Q_MAX_NODES];    /* slot read at least once */
	bool incarnated;           /* the incarnation was bumped */
	uint64_t acked_at_start;   /* the own slot's fence_ack_seq when first read */
	uint64_t written_req[Q_MAX_NODES]; /* fence request last written per slot */
	struct hb_control cur;     /* ctl as taken at the start of the round */
	struct q_volume work;

	/* Published under lock. */
	struct q_volume shared;
};

static uint64_t mono_ms(void)
{
	return monotonic_ns() / 1000000u;
}

static uint64_t mono_us(void)
{
	return monotonic_ns() / 1000u;
}

_printf_(2, 3) static void fail(struct hb_volume *h, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(h->work.error, sizeof(h->work.error), fmt, ap);
	va_end(ap);
	h->work.error_ms = mono_ms();
}

static void close_volume(struct hb_volume *h)
{
	volume_close(h->v);
	h->v = NULL;
	h->work.open = false;
}

/* The block number of slot s's heartbeat. */
static uint64_t hb_block(const struct csv_volume *v, uint32_t s)
{
	return v->g.cluster_area_block + 2 + 2 * (uint64_t)s;
}

/* Writes one block of the cluster area and flushes it to the LUN. */
static int write_durable(struct hb_volume *h, uint64_t bnr, const uint8_t *blk)
{
	int r = volume_write_raw(h->v, bnr, 1, blk);
	return r < 0 ? r : blockdev_flush(h->v->bd);
}

/* The block numbers of the witness and of slot s's mailbox. */
static uint64_t witness_block(const struct csv_volume *v)
{
	return v->g.cluster_area_block + 1;
}

static uint64_t mailbox_block(const struct csv_volume *v, uint32_t s)
{
	return hb_block(v, s) + 1;
}

static int probe(const char *spec, uint32_t slot, uint32_t node_id, char *err, size_t errlen)
{
	struct csv_volume *v;
	char why[256] = "";
	int r = volume_open(spec, CSV_BDEV_DIRECT | CSV_BDEV_RDONLY, &v, why, sizeof(why));
	if (r < 0) {
		snprintf(err, errlen, "cannot open it: %s", why[0] ? why : strerror(-r));
		return r;
	}
	if (slot >= v->g.max_nodes) {
		snprintf(err, errlen, "it has %u node slots: slot %u is beyond them", v->g.max_nodes, slot);
		r = -ERANGE;
	} else {
		/* The slot must be free or this node's already. */
		_cleanup_free_ uint8_t *blk = malloc(CSV_BLOCK_SIZE);
		const struct csv_d_heartbeat *b = (const void *)blk;
		uint64_t bnr = hb_block(v, slot);
		if (!blk) {
			r = -ENOMEM;
			snprintf(err, errlen, "no memory");
		} else if ((r = volume_read_raw(v, bnr, 1, blk)) < 0) {
			snprintf(err, errlen, "cannot read the heartbeat of slot %u: %s", slot, strerror(-r));
		} else if (meta_verify(blk, CSV_BLOCK_SIZE, CSV_MAGIC_HEARTBEAT, bnr, v->g.uuid, NULL) == 0 &&
			   le32_to_cpu(b->node_id) != 0 && le32_to_cpu(b->node_id) != node_id) {
			char name[Q_NAME_MAX + 1];
			memcpy(name, b->node_name, Q_NAME_MAX);
			name[Q_NAME_MAX] = '\0';
			snprintf(err, errlen, "slot %u holds the heartbeat of node %u (%s), not of node %u "
				 "(give --slot, or check the corosync nodelist)", slot, le32_to_cpu(b->node_id), name,
				 node_id);
			r = -EEXIST;
		}
	}
	volume_close(v);
	return r;
}

/* A probe in a thread of its own, so that a hung path cannot hang the
 * caller: whichever of the two finishes last frees it. */
struct probe_job {
	pthread_mutex_t lock;
	pthread_cond_t done_cond;
	int refs;
	bool done;
	int r;
	uint32_t slot, node_id;
	char spec[512];
	char err[512];
};

static void probe_put(struct probe_job *j)
{
	pthread_mutex_lock(&j->lock);
	bool last = --j->refs == 0;
	pthread_mutex_unlock(&j->lock);
	if (last) {
		pthread_cond_destroy(&j->done_cond);
		pthread_mutex_destroy(&j->lock);
		free(j);
	}
}

static void *probe_thread(void *arg)
{
	struct probe_job *j = arg;
	char err[512];
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	int r = probe(j->spec, j->slot, j->node_id, err, sizeof(err));
	pthread_mutex_lock(&j->lock);
	j->r = r;
	memcpy(j->err, err, sizeof(err));
	j->done = true;
	pthread_cond_broadcast(&j->done_cond);
	pthread_mutex_unlock(&j->lock);
	probe_put(j);
	return NULL;
}

int hb_probe(const char *spec, uint32_t slot, uint32_t node_id, unsigned timeout_ms, char *err, size_t errlen)
{
	struct probe_job *j = calloc(1, sizeof(*j));
	pthread_condattr_t ca;
	pthread_t t;
	if (!j)
		return -ENOMEM;
	pthread_mutex_init(&j->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&j->done_cond, &ca);
	pthread_condattr_destroy(&ca);
	snprintf(j->spec, sizeof(j->spec), "%s", spec);
	j->slot = slot;
	j->node_id = node_id;
	j->refs = 2;
	int r = pthread_create(&t, NULL, probe_thread, j);
	if (r != 0) {
		j->refs = 1;
		probe_put(j);
		snprintf(err, errlen, "cannot start a thread: %s", strerror(r));
		return -r;
	}
	pthread_detach(t);

	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += (time_t)(timeout_ms / 1000u);
	until.tv_nsec += (long)(timeout_ms % 1000u) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&j->lock);
	int w = 0;
	while (!j->done && w != ETIMEDOUT)
		w = pthread_cond_timedwait(&j->done_cond, &j->lock, &until);
	if (j->done) {
		r = j->r;
		snprintf(err, errlen, "%s", j->err);
	} else {
		r = -ETIMEDOUT;
		snprintf(err, errlen, "opening it did not finish within %u ms (a hung path?)", timeout_ms);
	}
	pthread_mutex_unlock(&j->lock);
	probe_put(j);
	return r;
}

/* Reads one slot's block from buf into s; returns whether it verified. */
static bool decode_slot(struct hb_volume *h, uint32_t i, const uint8_t *blk, struct q_slot *s)
{
	const struct csv_d_heartbeat *b = (const void *)blk;
	if (meta_verify(blk, CSV_BLOCK_SIZE, CSV_MAGIC_HEARTBEAT, hb_block(h->v, i), h->work.uuid, NULL) < 0 ||
	    (le32_to_cpu(b->flags) & ~(uint32_t)(CSV_HB_RUNNING | CSV_HB_FENCED)))
		return false;
	s->node_id = le32_to_cpu(b->node_id);
	s->flags = le32_to_cpu(b->flags);
	s->interval_ms = le32_to_cpu(b->interval_ms);
	s->seq = le64_to_cpu(b->seq);
	s->incarnation = le64_to_cpu(b->incarnation);
	s->wall_ns = le64_to_cpu(b->wall_ns);
	s->fence_ack_seq = le64_to_cpu(b->fence_ack_seq);
	memcpy(s->name, b->node_name, sizeof(b->node_name));
	s->name[Q_NAME_MAX] = '\0';
	return true;
}

/* Opens the volume, checks it is the one first seen, and takes the
 * incarnation from the own slot at the first open. */
static int open_volume(struct hb_volume *h)
{
	struct q_volume *w = &h->work;
	char why[256] = "";
	int r = volume_open(h->spec, CSV_BDEV_DIRECT, &h->v, why, sizeof(why));
	if (r < 0) {
		h->v = NULL;
		if (why[0] && strstr(why, h->spec))
			fail(h, "%s", why);  /* names the path already */
		else
			fail(h, "cannot open %s: %s", h->spec, why[0] ? why : strerror(-r));
		return r;
	}
	const struct csv_geometry *g = &h->v->g;
	if (w->identified && memcmp(w->uuid, g->uuid, 16) != 0) {
		char other[37];
		uuid_format(g->uuid, other);
		fail(h, "%s now holds another volume (UUID %s, not %s): not writing to it", h->spec, other,
		     w->uuid_str);
		close_volume(h);
		return -ESTALE;
	}
	if (h->slot >= g->max_nodes) {
		fail(h, "slot %u is beyond the %u node slots of the volume: not writing", h->slot, g->max_nodes);
		close_volume(h);
		return -ERANGE;
	}
	if (!w->identified) {
		memcpy(w->uuid, g->uuid, 16);
		uuid_format(g->uuid, w->uuid_str);
		snprintf(w->label, sizeof(w->label), "%s", g->label);
		w->max_nodes = g->max_nodes;
		w->nslots = MIN(g->max_nodes, (uint32_t)Q_MAX_NODES);
		h->buf = malloc((size_t)(1 + 2 * g->max_nodes) * CSV_BLOCK_SIZE);
		if (!h->buf) {
			fail(h, "no memory for the cluster area of %s", h->spec);
			close_volume(h);
			return -ENOMEM;
		}
		w->identified = true;
	}
	if (!h->incarnated) {
		/* The own slot: continue its sequence, in a new incarnation. */
		struct q_slot s = { 0 };
		uint8_t *blk = h->buf;
		r = volume_read_raw(h->v, hb_block(h->v, h->slot), 1, blk);
		if (r < 0) {
			fail(h, "cannot read the heartbeat of slot %u: %s", h->slot, strerror(-r));
			close_volume(h);
			return r;
		}
		if (decode_slot(h, h->slot, blk, &s)) {
			if (s.node_id != 0 && s.node_id != h->node_id) {
				fail(h, "slot %u holds the heartbeat of node %u (%s), not of node %u: not writing "
				     "(give --slot, or check the corosync nodelist)",
				     h->slot, s.node_id, s.name, h->node_id);
				close_volume(h);
				return -EEXIST;
			}
			w->seq = s.seq;
			w->incarnation = s.incarnation + 1;
			h->acked_at_start = s.fence_ack_seq;
		} else {
			/* Torn by a crash of this node's last write: it is ours. */
			w->seq = 0;
			w->incarnation = 1;
		}
		h->incarnated = true;
	}
	w->open = true;
	return 0;
}

static int write_own(struct hb_volume *h, uint32_t flags)
{
	struct q_volume *w = &h->work;
	_cleanup_free_ uint8_t *blk = calloc(1, CSV_BLOCK_SIZE);
	if (!blk)
		return -ENOMEM;
	struct csv_d_heartbeat *b = (void *)blk;
	uint64_t seq = w->seq + 1;
	uint64_t acked = MAX(h->cur.fence_ack_seq, h->acked_at_start);
	if (h->cur.fenced && flags)
		flags |= CSV_HB_FENCED;
	b->node_id = cpu_to_le32(h->node_id);
	b->flags = cpu_to_le32(flags);
	b->seq = cpu_to_le64(seq);
	b->fence_ack_seq = cpu_to_le64(acked);
	b->incarnation = cpu_to_le64(w->incarnation);
	b->wall_ns = cpu_to_le64(realtime_ns());
	b->interval_ms = cpu_to_le32(h->interval_ms);
	memcpy(b->node_name, h->node_name, strnlen(h->node_name, sizeof(b->node_name)));
	uint64_t bnr = hb_block(h->v, h->slot);
	meta_seal(blk, CSV_BLOCK_SIZE, CSV_MAGIC_HEARTBEAT, bnr, w->uuid, 0);

	uint64_t t0 = mono_us();
	int r = write_durable(h, bnr, blk);
	if (r < 0) {
		w->writes_failed++;
		fail(h, "writing the heartbeat of slot %u failed: %s", h->slot, strerror(-r));
		return r;
	}
	uint64_t t1 = mono_us();
	w->seq = seq;
	w->writes_ok++;
	w->write_latency_us = (uint32_t)MIN(t1 - t0, (uint64_t)UINT32_MAX);
	w->last_write_ok_ms = t1 / 1000u;
	return 0;
}

/* The own mailbox: a request of another node, or nothing. */
static void decode_mailbox(struct hb_volume *h, const uint8_t *blk)
{
	const struct csv_d_mailbox *m = (const void *)blk;
	struct q_volume *w = &h->work;
	if (meta_verify(blk, CSV_BLOCK_SIZE, CSV_MAGIC_MAILBOX, mailbox_block(h->v, h->slot), w->uuid, NULL) < 0) {
		w->mailbox_from = w->mailbox_request = 0;
		w->mailbox_seq = 0;
		return;
	}
	w->mailbox_from = le32_to_cpu(m->from_node);
	w->mailbox_request = le32_to_cpu(m->request);
	w->mailbox_seq = le64_to_cpu(m->request_seq);
}

static void decode_witness(struct hb_volume *h, const uint8_t *blk, uint64_t now)
{
	const struct csv_d_witness *b = (const void *)blk;
	struct q_volume *w = &h->work;
	if (meta_verify(blk, CSV_BLOCK_SIZE, CSV_MAGIC_WITNESS, witness_block(h->v), w->uuid, NULL) < 0) {
		/* Never written (mkfs leaves it zero) or torn: free. */
		w->witness_valid = true;
		if (w->witness_holder || w->witness_seq)
			w->witness_changed_ms = now;
		w->witness_holder = 0;
		w->witness_generation = w->witness_seq = 0;
		return;
	}
	uint32_t holder = le32_to_cpu(b->holder_node);
	uint64_t gen = le64_to_cpu(b->generation), seq = le64_to_cpu(b->renew_seq);
	if (!w->witness_valid || holder != w->witness_holder || gen != w->witness_generation || seq != w->witness_seq)
		w->witness_changed_ms = now;  /* the first sight starts the clock too */
	w->witness_valid = true;
	w->witness_holder = holder;
	w->witness_generation = gen;
	w->witness_seq = seq;
}

/* Writes the witness block with this node as holder. */
static int write_witness(struct hb_volume *h, uint64_t generation, uint64_t seq)
{
	struct q_volume *w = &h->work;
	_cleanup_free_ uint8_t *blk = calloc(1, CSV_BLOCK_SIZE);
	if (!blk)
		return -ENOMEM;
	struct csv_d_witness *b = (void *)blk;
	b->holder_node = cpu_to_le32(h->node_id);
	b->generation = cpu_to_le64(generation);
	b->renew_seq = cpu_to_le64(seq);
	b->lease_ms = cpu_to_le64(h->cur.witness_lease_ms);
	b->wall_ns = cpu_to_le64(realtime_ns());
	uint64_t bnr = witness_block(h->v);
	meta_seal(blk, CSV_BLOCK_SIZE, CSV_MAGIC_WITNESS, bnr, w->uuid, 0);
	int r = write_durable(h, bnr, blk);
	if (r < 0)
		fail(h, "writing the disk witness failed: %s", strerror(-r));
	return r;
}

/* One round of the witness, after the read: the holder renews it; a node
 * that wants it takes it when it is free or has not changed for the
 * witness lease (plus a heartbeat, for the holder's last write in
 * flight). A taker holds it only once it reads its own write back at the
 * next round and renews it: of two takers, the later write wins. */
static void witness_round(struct hb_volume *h)
{
	struct q_volume *w = &h->work;
	if (!h->cur.witness || !w->witness_valid)
		return;
	uint64_t now = mono_ms();
	if (w->witness_holder == h->node_id) {
		if (write_witness(h, w->witness_generation, w->witness_seq + 1) == 0) {
			w->witness_held_ms = now;
			w->witness_seq++;
			w->witness_changed_ms = now;
		}
		return;
	}
	if (!h->cur.witness_want)
		return;
	bool stale = w->witness_changed_ms && now >= w->witness_changed_ms + h->cur.witness_lease_ms + h->interval_ms;
	if (w->witness_holder == 0 || stale) {
		(void)write_witness(h, w->witness_generation + 1, w->witness_seq + 1);
	}
}

/* Writes the fence requests the loop asked for, each once. */
static void write_requests(struct hb_volume *h)
{
	struct q_volume *w = &h->work;
	for (uint32_t i = 0; i < h->cur.nrequests; i++) {
		uint32_t slot = h->cur.requests[i].slot;
		uint64_t seq = h->cur.requests[i].seq;
		if (slot >= w->nslots || slot == h->slot || h->written_req[slot] == seq)
			continue;
		_cleanup_free_ uint8_t *blk = calloc(1, CSV_BLOCK_SIZE);
		if (!blk)
			return;
		struct csv_d_mailbox *m = (void *)blk;
		m->from_node = cpu_to_le32(h->node_id);
		m->request = cpu_to_le32(CSV_MAILBOX_FENCE);
		m->request_seq = cpu_to_le64(seq);
		m->wall_ns = cpu_to_le64(realtime_ns());
		uint64_t bnr = mailbox_block(h->v, slot);
		meta_seal(blk, CSV_BLOCK_SIZE, CSV_MAGIC_MAILBOX, bnr, w->uuid, 0);
		int r = write_durable(h, bnr, blk);
		if (r < 0) {
			fail(h, "writing a fence request to the mailbox of slot %u failed: %s", slot, strerror(-r));
			return;
		}
		h->written_req[slot] = seq;
	}
}

static int read_all(struct hb_volume *h, bool wrote)
{
	struct q_volume *w = &h->work;
	/* The witness, then every heartbeat and mailbox, in one read. */
	int r = volume_read_raw(h->v, witness_block(h->v), 1 + 2 * w->max_nodes, h->buf);
	uint64_t now = mono_ms();
	if (r < 0) {
		w->reads_failed++;
		fail(h, "reading the heartbeats failed: %s", strerror(-r));
		return r;
	}
	w->last_read_ok_ms = now;
	for (uint32_t i = 0; i < w->nslots; i++) {
		struct q_slot *s = &w->slots[i], n = *s;
		if (!decode_slot(h, i, h->buf + (size_t)(1 + 2 * i) * CSV_BLOCK_SIZE, &n)) {
			s->valid = false;
			continue;
		}
		n.valid = true;
		bool changed = n.seq != s->seq || n.incarnation != s->incarnation || n.node_id != s->node_id;
		if (i == h->slot && wrote && n.seq == w->seq && n.node_id == h->node_id)
			n.changed_ms = now;  /* the write of this round, read back */
		else if (h->seen[i] && changed)
			n.changed_ms = now;
		else if (!h->seen[i])
			n.changed_ms = 0;    /* no change seen yet: no judgement */
		*s = n;
		h->seen[i] = true;
	}
	decode_mailbox(h, h->buf + (size_t)(2 + 2 * h->slot) * CSV_BLOCK_SIZE);
	if (h->cur.witness)
		decode_witness(h, h->buf, now);
	return 0;
}

static void round_once(struct hb_volume *h)
{
	pthread_mutex_lock(&h->lock);
	h->cur = h->ctl;
	pthread_mutex_unlock(&h->lock);
	if (!h->v && open_volume(h) < 0)
		return;
	int r = write_own(h, CSV_HB_RUNNING);
	bool wrote = r == 0;
	/* The others' slots are worth reading even when the own write failed
	 * (a write error, not a dead path); a read failure closes. */
	if (read_all(h, wrote) < 0 || !wrote) {
		close_volume(h);
		return;
	}
	write_requests(h);
	witness_round(h);
}

void hb_set_control(struct hb_volume *h, const struct hb_control *c)
{
	pthread_mutex_lock(&h->lock);
	h->ctl = *c;
	pthread_mutex_unlock(&h->lock);
}

static void publish(struct hb_volume *h)
{
	pthread_mutex_lock(&h->lock);
	memcpy(&h->shared, &h->work, sizeof(h->shared));
	pthread_mutex_unlock(&h->lock);
}

static void *hb_thread(void *arg)
{
	struct hb_volume *h = arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);

	uint64_t next = mono_ms();
	for (;;) {
		round_once(h);
		publish(h);

		next += h->interval_ms;
		uint64_t now = mono_ms();
		if (next < now)
			next = now;  /* a slow round: no burst to catch up */
		struct timespec until = { .tv_sec = (time_t)(next / 1000u), .tv_nsec = (long)(next % 1000u) * 1000000L };
		pthread_mutex_lock(&h->lock);
		while (!h->stop && pthread_cond_timedwait(&h->wake, &h->lock, &until) != ETIMEDOUT)
			;
		bool stop = h->stop;
		pthread_mutex_unlock(&h->lock);
		if (stop)
			break;
	}
	/* Tell the others this node's daemon stopped on purpose. */
	if (h->v)
		(void)write_own(h, 0);
	if (h->v)
		close_volume(h);
	publish(h);
	pthread_mutex_lock(&h->lock);
	h->done = true;
	pthread_cond_broadcast(&h->wake);
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

int hb_start(const struct hb_config *cfg, struct hb_volume **ret)
{
	struct hb_volume *h = calloc(1, sizeof(*h));
	pthread_condattr_t ca;
	int r;
	if (!h)
		return -ENOMEM;
	snprintf(h->spec, sizeof(h->spec), "%s", cfg->spec);
	snprintf(h->node_name, sizeof(h->node_name), "%s", cfg->node_name ? cfg->node_name : "");
	h->node_id = cfg->node_id;
	h->slot = cfg->slot;
	h->interval_ms = cfg->interval_ms;
	snprintf(h->work.spec, sizeof(h->work.spec), "%s", cfg->spec);
	h->work.slot = cfg->slot;
	h->shared = h->work;
	pthread_mutex_init(&h->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->wake, &ca);
	pthread_condattr_destroy(&ca);
	r = pthread_create(&h->thread, NULL, hb_thread, h);
	if (r != 0) {
		pthread_cond_destroy(&h->wake);
		pthread_mutex_destroy(&h->lock);
		free(h);
		return -r;
	}
	*ret = h;
	return 0;
}

void hb_read(struct hb_volume *h, struct q_volume *out)
{
	pthread_mutex_lock(&h->lock);
	memcpy(out, &h->shared, sizeof(*out));
	pthread_mutex_unlock(&h->lock);
}

int hb_stop(struct hb_volume *h, unsigned timeout_ms)
{
	struct timespec until;
	int r = 0;
	if (!h)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += (time_t)(timeout_ms / 1000u);
	until.tv_nsec += (long)(timeout_ms % 1000u) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&h->lock);
	h->stop = true;
	pthread_cond_broadcast(&h->wake);
	while (!h->done && r != ETIMEDOUT)
		r = pthread_cond_timedwait(&h->wake, &h->lock, &until);
	bool done = h->done;
	pthread_mutex_unlock(&h->lock);
	if (!done) {
		/* Stuck in I/O on a hung path: leave it; the exit ends it. */
		pthread_detach(h->thread);
		return -ETIMEDOUT;
	}
	pthread_join(h->thread, NULL);
	pthread_cond_destroy(&h->wake);
	pthread_mutex_destroy(&h->lock);
	free(h->buf);
	free(h);
	return 0;
}
