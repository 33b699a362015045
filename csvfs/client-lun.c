/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
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
	pthread_rwlock_init(&l->lock, NULL);
	pthread_mutex_init(&l->state_lock, NULL);
	pthread_mutex_init(&l->gate_lock, NULL);
	pthread_cond_init(&l->gate_cond, NULL);
	/* No page cache of the LUN: other nodes write it. */
	int r = blockdev_open(spec, CSV_BDEV_DIRECT, &l->bd);
	if (r < 0)
		client_lun_close(l);
	return r;
}

void client_lun_close(struct client_lun *l)
{
	client_lun_drop_lease(l);
	if (l->bd)
		blockdev_close(l->bd);
	l->bd = NULL;
	if (l->spec) {
		pthread_rwlock_destroy(&l->lock);
		pthread_mutex_destroy(&l->state_lock);
		pthread_mutex_destroy(&l->gate_lock);
		pthread_cond_destroy(&l->gate_cond);
	}
	free(l->spec);
	l->spec = NULL;
}

/* Errors of the path, as opposed to errors of the request. */
static bool path_failed(int r)
{
	return r == -EIO || r == -ENOTCONN || r == -ECONNRESET || r == -EPIPE || r == -ESHUTDOWN ||
	       r == -ETIMEDOUT || r == -ECONNREFUSED || r == -ENOENT || r == -ENXIO;
}

/* The path failed with r: redirect until the next probe. */
static void path_down(struct client_lun *l, int r)
{
	pthread_mutex_lock(&l->state_lock);
	bool first = l->retry_at_ns == 0;
	l->retry_at_ns = monotonic_ns() + LUN_PROBE_MS * 1000000ull;
	pthread_mutex_unlock(&l->state_lock);
	if (first)
		client_log(LOG_WARNING, "the SAN path to %s failed (%s): I/O goes through the coordinator", l->spec,
			strerror(-r));
}

/* Whether to try the direct path now; a due probe opens the path anew. */
static bool use_direct(struct client_lun *l)
{
	if (l->fs_redirected)
		return false;
	pthread_mutex_lock(&l->state_lock);
	uint64_t retry = l->retry_at_ns;
	bool due = retry && monotonic_ns() >= retry;
	if (due)
		l->retry_at_ns = monotonic_ns() + LUN_PROBE_MS * 1000000ull;  /* one prober at a time */
	pthread_mutex_unlock(&l->state_lock);
	if (!retry)
		return true;
	if (!due)
		return false;
	struct csv_blockdev *bd;
	if (blockdev_open(l->spec, CSV_BDEV_DIRECT, &bd) < 0)
		return false;
	pthread_rwlock_wrlock(&l->lock);
	struct csv_blockdev *old = l->bd;
	l->bd = bd;
	pthread_rwlock_unlock(&l->lock);
	if (old)
		blockdev_close(old);
	pthread_mutex_lock(&l->state_lock);
	l->retry_at_ns = 0;
	pthread_mutex_unlock(&l->state_lock);
	client_log(LOG_NOTICE, "the SAN path to %s works again: direct I/O", l->spec);
	return true;
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
	while (l->inflight)
		pthread_cond_wait(&l->gate_cond, &l->gate_lock);
	pthread_mutex_unlock(&l->gate_lock);
	client_log(LOG_CRIT, "self-fence: no I/O in flight on %s any more", l->spec);
}

static void lease_resume(void *ctx)
{
	struct client_lun *l = ctx;
	pthread_mutex_lock(&l->gate_lock);
	l->gate_closed = false;
	pthread_cond_broadcast(&l->gate_cond);
	pthread_mutex_unlock(&l->gate_lock);
	client_log(LOG_NOTICE, "the lease of this node is valid again: I/O on %s resumes", l->spec);
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

static int lun_pread(struct client_lun *l, void *buf, size_t len, uint64_t off)
{
	if (use_direct(l)) {
		pthread_rwlock_rdlock(&l->lock);
		int r = blockdev_pread(l->bd, buf, len, off);
		pthread_rwlock_unlock(&l->lock);
		if (r == 0 || !path_failed(r))
			return r;
		path_down(l, r);
	}
	return remote_pread(l, buf, len, off);
}

static int lun_pwrite(struct client_lun *l, const void *buf, size_t len, uint64_t off)
{
	if (use_direct(l)) {
		pthread_rwlock_rdlock(&l->lock);
		int r = blockdev_pwrite(l->bd, buf, len, off);
		pthread_rwlock_unlock(&l->lock);
		if (r == 0 || !path_failed(r))
			return r;
		path_down(l, r);
	}
	return remote_pwrite(l, buf, len, off);
}

static int lun_flush(struct client_lun *l)
{
	int r = -EIO;
	if (use_direct(l)) {
		pthread_rwlock_rdlock(&l->lock);
		r = blockdev_flush(l->bd);
		pthread_rwlock_unlock(&l->lock);
		if (r < 0 && !path_failed(r))
			return r;
		if (r < 0)
			path_down(l, r);
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

int client_lun_pwrite(struct client_lun *l, const void *buf, size_t len, uint64_t off)
{
	int r = gate_enter(l);
	if (r < 0)
		return r;
	r = lun_pwrite(l, buf, len, off);
	gate_leave(l);
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
