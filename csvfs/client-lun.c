/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <inttypes.h>
#include <syslog.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "blockdev.h"
#include "client-conn.h"
#include "client-log.h"
#include "client-lun.h"
#include "lease-client.h"
#include "util.h"
#include "wire.h"

/* ---- in-doubt writes ----------------------------------------------------------- */

enum write_state {
	WRITE_INFLIGHT, /* issued on the path, not timed out: blocks nobody */
	WRITE_DOUBT,    /* timed out, not answered by its server: may still land */
	WRITE_ENDED,    /* answered before its writer took in the timeout (late_r) */
};

/* A direct write: registered while it is in flight and, once it timed
 * out, until its server answered it. */
struct lun_write {
	struct lun_doubts *d;
	uint64_t id;            /* never 0 */
	uint64_t off, len;
	enum write_state state;
	bool lost;              /* in doubt for good: its connection broke first */
	int late_r;             /* WRITE_ENDED */
	struct lun_write *next;
};

/* The direct writes of a mount. Freed by client_lun_close(), or, when
 * writes are still in doubt then, by the late callback of the last. */
struct lun_doubts {
	pthread_mutex_t lock;
	pthread_cond_t cond;    /* (CLOCK_MONOTONIC) an in-doubt write was resolved */
	struct lun_write *list;
	uint64_t next_id;
	unsigned in_doubt;      /* entries in WRITE_DOUBT */
	bool wait_logged;       /* a write waiting for them was logged since in_doubt was last 0 */
	bool orphaned;          /* the mount is closed */
	char *spec;             /* for the log */
};

static void cond_init_monotonic(pthread_cond_t *c)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
}

static void cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, uint64_t until_ns)
{
	struct timespec ts = { .tv_sec = until_ns / 1000000000ull, .tv_nsec = until_ns % 1000000000ull };
	pthread_cond_timedwait(c, m, &ts);
}

static struct lun_doubts *doubts_new(const char *spec)
{
	struct lun_doubts *d = calloc(1, sizeof(*d));
	if (!d || !(d->spec = strdup(spec))) {
		free(d);
		return NULL;
	}
	pthread_mutex_init(&d->lock, NULL);
	cond_init_monotonic(&d->cond);
	d->next_id = 1;
	return d;
}

static void doubts_free(struct lun_doubts *d)
{
	while (d->list) {
		struct lun_write *w = d->list;
		d->list = w->next;
		free(w);
	}
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->cond);
	free(d->spec);
	free(d);
}

/* An in-doubt write overlapping [off, off + len), other than write self. */
static struct lun_write *doubt_find_locked(struct lun_doubts *d, uint64_t off, uint64_t len, uint64_t self)
{
	for (struct lun_write *w = d->list; w; w = w->next)
		if (w->state == WRITE_DOUBT && w->id != self && w->off < off + len && off < w->off + w->len)
			return w;
	return NULL;
}

static void write_unlink_locked(struct lun_doubts *d, struct lun_write *w)
{
	for (struct lun_write **p = &d->list; *p; p = &(*p)->next)
		if (*p == w) {
			*p = w->next;
			return;
		}
}

/* LUN_RETRY: an in-doubt write overlaps: wait for it outside the gate,
 * then try again (a positive value, never a result). */
#define LUN_RETRY 1

/* Registers a direct write about to be issued: 0 and *ret, or LUN_RETRY
 * when an in-doubt write overlaps it. */
static int write_register(struct lun_doubts *d, uint64_t off, uint64_t len, struct lun_write **ret)
{
	struct lun_write *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	pthread_mutex_lock(&d->lock);
	if (doubt_find_locked(d, off, len, 0)) {
		pthread_mutex_unlock(&d->lock);
		free(w);
		return LUN_RETRY;
	}
	*w = (struct lun_write){ .d = d, .id = d->next_id++, .off = off, .len = len, .next = d->list };
	d->list = w;
	pthread_mutex_unlock(&d->lock);
	*ret = w;
	return 0;
}

static void log_lost(struct lun_doubts *d, const struct lun_write *w)
{
	client_log(LOG_ERR, "a write to %s at offset %" PRIu64 " (%" PRIu64 " bytes) stalled, then its SAN "
		   "connection broke before the server answered: the server may still write it, so writes to "
		   "that range by this mount fail from now on", d->spec, w->off, w->len);
}

/* The write w returned r: true when it is in doubt now (w then belongs to
 * the registry and may be gone at any time); else w is freed. */
static bool write_done(struct lun_doubts *d, struct lun_write *w, int r)
{
	bool lost = false, doubt = false;
	pthread_mutex_lock(&d->lock);
	if (r != -ETIMEDOUT || (w->state == WRITE_ENDED && w->late_r != -ENOTCONN)) {
		write_unlink_locked(d, w);
	} else {
		lost = w->state == WRITE_ENDED;
		w->state = WRITE_DOUBT;
		w->lost = lost;
		d->in_doubt++;
		doubt = true;
	}
	pthread_mutex_unlock(&d->lock);
	if (lost)
		log_lost(d, w);
	if (!doubt)
		free(w);
	return doubt;
}

/* The late callback of a direct write that timed out: its server answered
 * it (r 0 or an error) or its connection broke (-ENOTCONN). Runs on the
 * thread that drives the abandoned handle. */
static void write_late(void *ctx, int r)
{
	struct lun_write *w = ctx;
	struct lun_doubts *d = w->d;
	pthread_mutex_lock(&d->lock);
	if (w->state == WRITE_INFLIGHT) {
		/* Its writer has not taken in the timeout yet: write_done() will. */
		w->state = WRITE_ENDED;
		w->late_r = r;
		pthread_mutex_unlock(&d->lock);
		return;
	}
	if (r == -ENOTCONN) {
		w->lost = true;
		pthread_mutex_unlock(&d->lock);
		log_lost(d, w);
		return;
	}
	write_unlink_locked(d, w);
	free(w);
	bool last = --d->in_doubt == 0;
	if (last)
		d->wait_logged = false;
	pthread_cond_broadcast(&d->cond);
	bool orphan = d->orphaned && !d->list;
	pthread_mutex_unlock(&d->lock);
	if (last)
		client_log(LOG_NOTICE, "the writes to %s that stalled on the SAN path have been answered: "
			   "none is in doubt any more", d->spec);
	if (orphan)
		doubts_free(d);
}

/* Waits until no write other than self that overlaps [off, off + len) is
 * in doubt: 0, or -EIO at until. */
static int doubt_wait(struct client_lun *l, uint64_t off, uint64_t len, uint64_t self, uint64_t until)
{
	struct lun_doubts *d = l->doubts;
	struct lun_write *w;
	pthread_mutex_lock(&d->lock);
	while ((w = doubt_find_locked(d, off, len, self))) {
		uint64_t now = monotonic_ns();
		if (now >= until) {
			uint64_t woff = w->off, wlen = w->len;
			bool lost = w->lost;
			pthread_mutex_unlock(&d->lock);
			client_log(LOG_ERR, "a write to %s at offset %" PRIu64 " (%" PRIu64 " bytes) waited %u s for "
				   "an earlier write at offset %" PRIu64 " (%" PRIu64 " bytes) that stalled on the SAN "
				   "path%s and may still land over it: it fails with EIO", l->spec, off, len,
				   l->gate_timeout_s, woff, wlen, lost ? " and lost its connection" : "");
			return -EIO;
		}
		if (!d->wait_logged) {
			d->wait_logged = true;
			client_log(LOG_WARNING, "writes to %s over a write that stalled on the SAN path wait until "
				   "its server has answered it (it may still land, and would overwrite them)", l->spec);
		}
		cond_wait_until(&d->cond, &d->lock, MIN(until, now + 1000000000ull));
	}
	pthread_mutex_unlock(&d->lock);
	return 0;
}

/* LUN_RETRY when a write other than self that overlaps is in doubt. */
static int doubt_check(struct client_lun *l, uint64_t off, uint64_t len, uint64_t self)
{
	pthread_mutex_lock(&l->doubts->lock);
	bool busy = doubt_find_locked(l->doubts, off, len, self) != NULL;
	pthread_mutex_unlock(&l->doubts->lock);
	return busy ? LUN_RETRY : 0;
}

int client_lun_settle(struct client_lun *l, uint64_t off, uint64_t len)
{
	len = MIN(len, UINT64_MAX - off); /* (0, UINT64_MAX): all of it */
	return doubt_wait(l, off, len, 0, monotonic_ns() + (uint64_t)l->gate_timeout_s * 1000000000ull);
}

unsigned client_lun_in_doubt(struct client_lun *l)
{
	pthread_mutex_lock(&l->doubts->lock);
	unsigned n = l->doubts->in_doubt;
	pthread_mutex_unlock(&l->doubts->lock);
	return n;
}

/* ---- opening and closing ------------------------------------------------------- */

int client_lun_open(struct client_lun *l, const char *spec, struct client_conn *cc, uint32_t max_io,
		    bool fs_redirected)
{
	memset(l, 0, sizeof(*l));
	l->spec = strdup(spec);
	if (!l->spec)
		return -ENOMEM;
	l->cc = cc;
	l->max_io = max_io;
	l->fs_redirected = fs_redirected;
	l->io_timeout_ms = LUN_IO_TIMEOUT_MS;
	l->gate_timeout_s = LUN_WAIT_TIMEOUT_S;
	pthread_rwlock_init(&l->lock, NULL);
	pthread_mutex_init(&l->state_lock, NULL);
	cond_init_monotonic(&l->probe_cond);
	pthread_mutex_init(&l->gate_lock, NULL);
	pthread_cond_init(&l->gate_cond, NULL);
	l->doubts = doubts_new(spec);
	if (!l->doubts) {
		client_lun_close(l);
		return -ENOMEM;
	}
	/* No page cache of the LUN: other nodes write it. */
	int r = blockdev_open_timed(spec, CSV_BDEV_DIRECT, l->io_timeout_ms, &l->bd);
	if (r < 0)
		client_lun_close(l);
	return r;
}

void client_lun_set_timeouts(struct client_lun *l, unsigned io_timeout_ms, unsigned wait_s)
{
	l->io_timeout_ms = io_timeout_ms;
	l->gate_timeout_s = wait_s;
	if (l->bd)
		blockdev_set_io_timeout(l->bd, io_timeout_ms);
}

void client_lun_close(struct client_lun *l)
{
	client_lun_drop_lease(l);
	if (l->spec) {
		pthread_mutex_lock(&l->state_lock);
		l->stopping = true;
		pthread_cond_broadcast(&l->probe_cond);
		bool join = l->prober_started;
		l->prober_started = false;
		pthread_mutex_unlock(&l->state_lock);
		if (join)
			pthread_join(l->prober, NULL);
	}
	/* Neither waits for a stalled server. */
	blockdev_close(l->probe_bd);
	l->probe_bd = NULL;
	if (l->bd)
		blockdev_close(l->bd);
	l->bd = NULL;
	if (l->doubts) {
		struct lun_doubts *d = l->doubts;
		pthread_mutex_lock(&d->lock);
		unsigned n = d->in_doubt;
		/* Lost writes hear nothing more; the others' late callbacks are
		 * still to come, and the last one frees the registry. */
		for (struct lun_write **p = &d->list; *p;) {
			struct lun_write *w = *p;
			if (w->lost) {
				*p = w->next;
				free(w);
			} else {
				p = &w->next;
			}
		}
		d->orphaned = d->list != NULL;
		pthread_mutex_unlock(&d->lock);
		if (n)
			client_log(LOG_WARNING, "%u write(s) to %s that stalled on the SAN path have not been answered "
				   "by its server: they may still land", n, l->spec);
		if (!d->orphaned)
			doubts_free(d);
		l->doubts = NULL;
	}
	if (l->spec) {
		pthread_rwlock_destroy(&l->lock);
		pthread_mutex_destroy(&l->state_lock);
		pthread_cond_destroy(&l->probe_cond);
		pthread_mutex_destroy(&l->gate_lock);
		pthread_cond_destroy(&l->gate_cond);
	}
	free(l->spec);
	l->spec = NULL;
}

/* Errors of the path, as opposed to errors of the request. */
static bool path_failed(int r)
{
	/* EINVAL too: the client computes every offset itself, so a direct
	 * I/O refused as invalid says the path is in a bad state (libnbd on
	 * a dead handle), not that the application erred. */
	return r == -EIO || r == -ENOTCONN || r == -ECONNRESET || r == -EPIPE || r == -ESHUTDOWN ||
	       r == -ETIMEDOUT || r == -ECONNREFUSED || r == -ENOENT || r == -ENXIO || r == -EINVAL;
}

/* ---- the path and its prober --------------------------------------------------- */

void client_lun_on_access(struct client_lun *l, void (*fn)(void *ctx), void *ctx)
{
	pthread_mutex_lock(&l->state_lock);
	l->on_access = fn;
	l->on_access_ctx = ctx;
	pthread_mutex_unlock(&l->state_lock);
}

/* Tells the one who asked that the access changed. */
static void access_changed(struct client_lun *l)
{
	pthread_mutex_lock(&l->state_lock);
	void (*fn)(void *) = l->on_access;
	void *ctx = l->on_access_ctx;
	pthread_mutex_unlock(&l->state_lock);
	if (fn)
		fn(ctx);
}

/* Opens the path anew and reads its first block; installs it when that
 * works. A probe whose read stalls is kept until the read ends (one
 * stalled probe at a time, not one more per period). Prober only. */
static bool probe(struct client_lun *l)
{
	if (l->probe_bd) {
		if (blockdev_stalled(l->probe_bd))
			return false; /* its read still stalls: so does the path */
		blockdev_close(l->probe_bd);
		l->probe_bd = NULL;
	}
	struct csv_blockdev *bd;
	if (blockdev_open_timed(l->spec, CSV_BDEV_DIRECT, l->io_timeout_ms, &bd) < 0)
		return false;
	size_t n = MIN(4096, blockdev_size(bd));
	void *blk = malloc(n ? n : 1);
	int r = blk ? blockdev_pread(bd, blk, n, 0) : -ENOMEM;
	free(blk);
	if (r == -ETIMEDOUT) {
		l->probe_bd = bd;
		return false;
	}
	if (r < 0) {
		blockdev_close(bd);
		return false;
	}
	pthread_rwlock_wrlock(&l->lock); /* waits for the I/O still on the old path (bounded by the timeout) */
	struct csv_blockdev *old = l->bd;
	l->bd = bd;
	pthread_mutex_lock(&l->state_lock);
	l->bd_gen++;
	l->retry_at_ns = 0;
	l->path_stalled = false;
	pthread_mutex_unlock(&l->state_lock);
	pthread_rwlock_unlock(&l->lock);
	blockdev_close(old); /* one with stalled requests: by its own thread, once they end */
	client_log(LOG_NOTICE, "the SAN path to %s works again: direct I/O", l->spec);
	access_changed(l);
	return true;
}

/* The prober: probes every LUN_PROBE_MS until the path works again, off
 * the I/O threads (a probe of a stalled path takes io_timeout_ms). */
static void *prober_main(void *arg)
{
	struct client_lun *l = arg;
	pthread_mutex_lock(&l->state_lock);
	while (!l->stopping && l->retry_at_ns) {
		uint64_t now = monotonic_ns();
		if (now < l->retry_at_ns) {
			cond_wait_until(&l->probe_cond, &l->state_lock, l->retry_at_ns);
			continue;
		}
		l->retry_at_ns = now + LUN_PROBE_MS * 1000000ull;
		pthread_mutex_unlock(&l->state_lock);
		probe(l); /* success sets retry_at_ns to 0 */
		pthread_mutex_lock(&l->state_lock);
	}
	l->prober_running = false;
	pthread_mutex_unlock(&l->state_lock);
	return NULL;
}

/* The path of generation gen failed with r: redirect, and probe. A failure
 * of a path already replaced changes nothing. */
static void path_down(struct client_lun *l, uint64_t gen, int r)
{
	pthread_mutex_lock(&l->state_lock);
	bool first = gen == l->bd_gen && l->retry_at_ns == 0;
	if (first) {
		l->retry_at_ns = monotonic_ns() + LUN_PROBE_MS * 1000000ull;
		l->path_stalled = r == -ETIMEDOUT;
		if (!l->prober_running && !l->stopping) {
			if (l->prober_started)
				pthread_join(l->prober, NULL); /* it has ended */
			l->prober_started = l->prober_running =
				pthread_create(&l->prober, NULL, prober_main, l) == 0;
		}
	}
	bool prober = l->prober_running;
	pthread_mutex_unlock(&l->state_lock);
	if (!first)
		return;
	access_changed(l);
	if (r == -ETIMEDOUT)
		client_log(LOG_WARNING, "the SAN path to %s stalled for %u ms: I/O goes through the coordinator",
			   l->spec, l->io_timeout_ms);
	else
		client_log(LOG_WARNING, "the SAN path to %s failed (%s): I/O goes through the coordinator", l->spec,
			   strerror(-r));
	if (!prober)
		client_log(LOG_ERR, "cannot start the thread that probes the SAN path to %s: I/O stays redirected",
			   l->spec);
}

/* Whether to do I/O on the path (the prober brings it back). */
static bool use_direct(struct client_lun *l)
{
	pthread_mutex_lock(&l->state_lock);
	bool direct = !l->fs_redirected && l->retry_at_ns == 0;
	pthread_mutex_unlock(&l->state_lock);
	return direct;
}

static int call_data(struct client_lun *l, struct csv_wire_frame *f, int enc, uint8_t **buf, size_t *len)
{
	if (enc < 0) {
		csv_wire_frame_done(f);
		return enc;
	}
	return client_conn_call(l->cc, f, buf, len, NULL);
}

static int remote_pread(struct client_lun *l, uint8_t *buf, size_t len, uint64_t off)
{
	while (len) {
		uint32_t n = len < l->max_io ? (uint32_t)len : l->max_io;
		struct csv_wire_frame f = { 0 };
		struct csv_wire_data_read m = { .lun_offset = off, .length = n };
		struct csv_wire_data d;
		uint8_t *rep;
		size_t rlen;
		int r = call_data(l, &f, csv_wire_data_read_encode(&f, client_conn_next_id(l->cc),
								   client_conn_epoch(l->cc), &m), &rep, &rlen);
		if (r < 0)
			return r;
		r = csv_wire_data_read_reply_decode(rep, rlen, NULL, &d);
		if (r == 0 && d.length != n)
			r = -EIO;
		if (r == 0)
			memcpy(buf, d.data, n);
		free(rep);
		if (r < 0)
			return -EIO;
		buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int remote_pwrite(struct client_lun *l, const uint8_t *buf, size_t len, uint64_t off)
{
	while (len) {
		uint32_t n = len < l->max_io ? (uint32_t)len : l->max_io;
		struct csv_wire_frame f = { 0 };
		struct iovec iov = { .iov_base = (void *)buf, .iov_len = n };
		int r = call_data(l, &f, csv_wire_data_write_encode(&f, client_conn_next_id(l->cc),
								    client_conn_epoch(l->cc), off, 0, &iov, 1),
				  NULL, NULL);
		if (r < 0)
			return r;
		pthread_mutex_lock(&l->state_lock);
		l->remote_unflushed = true;
		pthread_mutex_unlock(&l->state_lock);
		buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* ---- the lease gate --------------------------------------------------------- */

/* Waits until I/O may be issued and counts it in flight: 0, or -EIO after
 * gate_timeout_s. */
static int gate_enter(struct client_lun *l)
{
	if (!l->lease)
		return 0;
	uint64_t until = monotonic_ns() + (uint64_t)l->gate_timeout_s * 1000000000u;
	pthread_mutex_lock(&l->gate_lock);
	while (l->gate_closed || !lease_client_valid(l->lease)) {
		if (monotonic_ns() >= until) {
			pthread_mutex_unlock(&l->gate_lock);
			client_log(LOG_ERR, "an I/O waited %u s for this node's lease: it fails with EIO",
				   l->gate_timeout_s);
			return -EIO;
		}
		if (!l->gate_waiting_logged) {
			l->gate_waiting_logged = true;
			client_log(LOG_WARNING, "I/O waits: this node's lease is not valid");
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&l->gate_cond, &l->gate_lock, &ts);
	}
	l->gate_waiting_logged = false;
	l->inflight++;
	pthread_mutex_unlock(&l->gate_lock);
	return 0;
}

static void gate_leave(struct client_lun *l)
{
	if (!l->lease)
		return;
	pthread_mutex_lock(&l->gate_lock);
	if (--l->inflight == 0)
		pthread_cond_broadcast(&l->gate_cond);
	pthread_mutex_unlock(&l->gate_lock);
}

/* The lease is lost: no new I/O, and back once what is in flight ended. */
static void lease_fence(void *ctx, const char *why)
{
	struct client_lun *l = ctx;
	client_log(LOG_CRIT, "self-fence: %s: stopping all I/O on %s", why, l->spec);
	pthread_mutex_lock(&l->gate_lock);
	l->gate_closed = true;
	pthread_mutex_unlock(&l->gate_lock);
	access_changed(l);
	pthread_mutex_lock(&l->gate_lock);
	while (l->inflight)
		pthread_cond_wait(&l->gate_cond, &l->gate_lock);
	pthread_mutex_unlock(&l->gate_lock);
	client_log(LOG_CRIT, "self-fence: no I/O in flight on %s any more", l->spec);
	unsigned doubt = client_lun_in_doubt(l);
	if (doubt)
		client_log(LOG_CRIT, "self-fence: %u write(s) that stalled on the SAN path to %s may still land: "
			   "only a storage-side fence stops them", doubt, l->spec);
}

static void lease_resume(void *ctx)
{
	struct client_lun *l = ctx;
	pthread_mutex_lock(&l->gate_lock);
	l->gate_closed = false;
	pthread_cond_broadcast(&l->gate_cond);
	pthread_mutex_unlock(&l->gate_lock);
	client_log(LOG_NOTICE, "the lease of this node is valid again: I/O on %s resumes", l->spec);
	access_changed(l);
}

int client_lun_hold_lease(struct client_lun *l, const char *ipc_name, unsigned wait_ms, unsigned timeout_s,
			  char *err, size_t errlen)
{
	static const struct lease_client_ops ops = { .fence = lease_fence, .resume = lease_resume };
	char why[320];
	int r = lease_client_start(ipc_name, "csvfs", l->spec, &ops, l, &l->lease);
	if (r < 0) {
		snprintf(err, errlen, "cannot follow this node's lease: %s", strerror(-r));
		l->lease = NULL;
		return r;
	}
	l->gate_timeout_s = timeout_s;
	if (wait_ms && lease_client_wait(l->lease, wait_ms, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "this node holds no valid lease after %u ms: %s", wait_ms, why);
		client_lun_drop_lease(l);
		return -ENOLCK;
	}
	return 0;
}

void client_lun_drop_lease(struct client_lun *l)
{
	if (!l->lease)
		return;
	lease_client_stop(l->lease);
	l->lease = NULL;
}

/* ---- I/O -------------------------------------------------------------------- */

/* Reads never wait for in-doubt writes (see client-lun.h). */
static int lun_pread(struct client_lun *l, void *buf, size_t len, uint64_t off)
{
	if (use_direct(l)) {
		pthread_rwlock_rdlock(&l->lock);
		uint64_t gen = l->bd_gen;
		int r = blockdev_pread(l->bd, buf, len, off);
		pthread_rwlock_unlock(&l->lock);
		if (r == 0 || !path_failed(r))
			return r;
		path_down(l, gen, r);
	}
	return remote_pread(l, buf, len, off);
}

/* A write across its attempts. */
struct write_try {
	bool direct_done;   /* tried on the path */
	uint64_t self;      /* its own in-doubt entry, which its redo does not wait for; 0 none */
};

/* One attempt of a write, inside the gate: its result, or LUN_RETRY
 * when an in-doubt write overlaps it. */
static int lun_pwrite(struct client_lun *l, const void *buf, size_t len, uint64_t off, struct write_try *t)
{
	if (!t->direct_done && use_direct(l)) {
		struct lun_write *w;
		int r = write_register(l->doubts, off, len, &w);
		if (r != 0)
			return r;
		t->direct_done = true;
		pthread_rwlock_rdlock(&l->lock);
		uint64_t gen = l->bd_gen;
		r = blockdev_pwrite_late(l->bd, buf, len, off, write_late, w);
		pthread_rwlock_unlock(&l->lock);
		uint64_t id = w->id;
		if (write_done(l->doubts, w, r))
			t->self = id;
		if (r == 0 || !path_failed(r))
			return r;
		path_down(l, gen, r);
	}
	/* Checked here, and acted on after: a write that becomes in doubt
	 * meanwhile was in flight, not acknowledged, so ours may go first. */
	if (doubt_check(l, off, len, t->self))
		return LUN_RETRY;
	return remote_pwrite(l, buf, len, off);
}

static int lun_flush(struct client_lun *l)
{
	int r = -EIO;
	if (use_direct(l)) {
		pthread_rwlock_rdlock(&l->lock);
		uint64_t gen = l->bd_gen;
		r = blockdev_flush(l->bd);
		pthread_rwlock_unlock(&l->lock);
		if (r < 0 && !path_failed(r))
			return r;
		if (r < 0)
			path_down(l, gen, r);
	}
	pthread_mutex_lock(&l->state_lock);
	bool remote = l->remote_unflushed || r < 0;
	l->remote_unflushed = false;
	pthread_mutex_unlock(&l->state_lock);
	if (!remote)
		return 0;
	/* Writes that went through the coordinator (and, the path being
	 * down, those that did not: the LUN is one) are flushed by it. */
	struct csv_wire_frame f = { 0 };
	struct csv_wire_fsync m = { .ino = 0, .flags = CSV_WIRE_FSYNC_DATASYNC };
	r = call_data(l, &f, csv_wire_fsync_encode(&f, client_conn_next_id(l->cc), client_conn_epoch(l->cc), &m),
		      NULL, NULL);
	if (r < 0) {
		pthread_mutex_lock(&l->state_lock);
		l->remote_unflushed = true;
		pthread_mutex_unlock(&l->state_lock);
	}
	return r;
}

/* ---- through the gate ---------------------------------------------------------- */

int client_lun_pread(struct client_lun *l, void *buf, size_t len, uint64_t off)
{
	int r = gate_enter(l);
	if (r < 0)
		return r;
	r = lun_pread(l, buf, len, off);
	gate_leave(l);
	return r;
}

/* An in-doubt write that overlaps is waited for outside the gate, so that
 * a fence never waits for it; the wait and the gate each last at most
 * gate_timeout_s. */
int client_lun_pwrite(struct client_lun *l, const void *buf, size_t len, uint64_t off)
{
	uint64_t until = monotonic_ns() + (uint64_t)l->gate_timeout_s * 1000000000ull;
	struct write_try t = { 0 };
	int r;
	do {
		r = doubt_wait(l, off, len, t.self, until);
		if (r < 0)
			break;
		r = gate_enter(l);
		if (r < 0)
			break;
		r = lun_pwrite(l, buf, len, off, &t);
		gate_leave(l);
	} while (r == LUN_RETRY);
	return r;
}

int client_lun_flush(struct client_lun *l)
{
	int r = gate_enter(l);
	if (r < 0)
		return r;
	r = lun_flush(l);
	gate_leave(l);
	return r;
}

void client_lun_set_fs_redirected(struct client_lun *l, bool on)
{
	pthread_mutex_lock(&l->state_lock);
	bool changed = l->fs_redirected != on;
	l->fs_redirected = on;
	pthread_mutex_unlock(&l->state_lock);
	if (changed)
		client_log(LOG_NOTICE, "volume %s: file-system redirected mode %s", l->spec,
			   on ? "on: all I/O goes through the coordinator" : "off: direct I/O");
}

const char *client_lun_access(struct client_lun *l, char *reason, size_t len)
{
	if (len)
		reason[0] = 0;
	if (l->lease) {
		pthread_mutex_lock(&l->gate_lock);
		bool closed = l->gate_closed;
		pthread_mutex_unlock(&l->gate_lock);
		if (closed || !lease_client_valid(l->lease)) {
			snprintf(reason, len, "%s", closed ? "this node is fenced" : "this node's lease is not valid");
			return "paused";
		}
	}
	pthread_mutex_lock(&l->state_lock);
	bool fs = l->fs_redirected, down = l->retry_at_ns != 0, stalled = l->path_stalled;
	pthread_mutex_unlock(&l->state_lock);
	if (fs) {
		snprintf(reason, len, "the operator's request");
		return "fs-redirected";
	}
	if (down) {
		snprintf(reason, len, "%s", stalled ? "the SAN path stalled" : "the SAN path failed");
		return "block-redirected";
	}
	return "direct";
}
