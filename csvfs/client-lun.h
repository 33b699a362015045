/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The client's path to the LUN: direct I/O on its own SAN path, and, when
 * that path fails (an I/O error, a lost NBD connection) or stalls (an NBD
 * request not answered within io_timeout_ms), the same I/O through the
 * coordinator (DATA_READ, DATA_WRITE: block-level redirection), without an
 * error for the application. A redirected client has a thread that tries
 * its own path again every LUN_PROBE_MS, opening it anew and reading from
 * it (a stalled server still accepts connections), and goes back to direct
 * I/O when that works. A volume in file-system redirected mode sends all
 * its I/O through the coordinator.
 *
 * A path that stalls is abandoned, never reused: the I/O that timed out is
 * done again through the coordinator, before it is answered, and the old
 * handle is closed by a thread of its own once its server has answered
 * what it still holds (see blockdev.h). Local paths have no timeout.
 *
 * In-doubt writes. A direct write that timed out may still land on the LUN
 * later: the server holds it and may run it at any time (the pause filter
 * of nbdkit runs it on resume, even after the connection was closed). It
 * is in doubt from its timeout until the server answers it (written or
 * failed). The rule:
 *   - a later write (direct or redirected, from any thread) whose range
 *     overlaps an in-doubt write waits until that write is resolved, so
 *     that the late write can never overwrite newer data. The redo of the
 *     timed-out write itself does not wait for it: it carries the same
 *     bytes. The wait is outside the lease gate (a fence need not wait for
 *     it) and lasts at most gate_timeout_s; then the write fails with EIO,
 *     and the log says which range and why;
 *   - a write whose connection broke before its server answered stays in
 *     doubt for good (nothing says the server will not still run it): its
 *     range cannot be written again by this mount;
 *   - reads never wait. Until the redo is acknowledged the write is not,
 *     so old or new bytes are both right; after it, the LUN holds the new
 *     bytes and the late copy carries the same ones, and nothing newer can
 *     be there for it to overwrite (the rule above).
 * This covers the writes of this mount only: another node writing the same
 * clusters meanwhile (after a recall, or a file shared between nodes) is
 * not protected; client_lun_settle() is what a recall answer needs, and
 * only a storage-side fence stops a stalled write after a self-fence. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct client_conn;
struct csv_blockdev;
struct lease_client;

#define LUN_PROBE_MS 2000
#define LUN_IO_TIMEOUT_MS 2000 /* default io_timeout_ms */
#define LUN_WAIT_TIMEOUT_S 120 /* default gate_timeout_s, as reconnect_timeout's */

struct lun_doubts;

struct client_lun {
	char *spec;                 /* path or NBD URI, to open it again */
	struct client_conn *cc;
	uint32_t max_io;            /* largest DATA_* transfer */
	bool fs_redirected;         /* the volume's mode: always through the coordinator (state_lock) */
	pthread_rwlock_t lock;      /* bd: I/O shares it, reopening takes it */
	struct csv_blockdev *bd;    /* the last path opened (not used while redirected) */
	unsigned io_timeout_ms;     /* a direct NBD I/O not answered within it: the path stalled; 0 never */
	pthread_mutex_t state_lock;
	uint64_t bd_gen;            /* bumped at each new bd (under lock and state_lock) */
	uint64_t retry_at_ns;       /* redirected; next probe then (CLOCK_MONOTONIC); 0 direct */
	bool path_stalled;          /* redirected because the path stalled, not failed */
	bool remote_unflushed;      /* writes went through the coordinator since its last flush */

	/* The prober (state_lock): runs while the path is down. */
	pthread_cond_t probe_cond;  /* (CLOCK_MONOTONIC) wakes it to stop */
	pthread_t prober;
	bool prober_started;        /* to join */
	bool prober_running;
	bool stopping;
	struct csv_blockdev *probe_bd; /* the prober's: a probe whose read stalled, until it ends */

	struct lun_doubts *doubts;  /* direct writes in flight or in doubt */

	/* The lease gate: with a lease, every LUN I/O, direct or redirected,
	 * waits while the lease is not valid, and a fence closes the gate and
	 * waits for the I/O in flight. */
	struct lease_client *lease; /* NULL: no lease is followed */
	unsigned gate_timeout_s;    /* I/O waiting longer (for the lease or an in-doubt write) fails with EIO */
	pthread_mutex_t gate_lock;
	pthread_cond_t gate_cond;
	bool gate_closed;           /* fenced */
	bool gate_waiting_logged;
	unsigned inflight;
	/* Told when the access changes (state_lock guards the pointers). */
	void (*on_access)(void *ctx);
	void *on_access_ctx;
};

/* Opens spec (the LUN is needed at mount time), with io_timeout_ms
 * LUN_IO_TIMEOUT_MS and gate_timeout_s LUN_WAIT_TIMEOUT_S. */
int client_lun_open(struct client_lun *l, const char *spec, struct client_conn *cc, uint32_t max_io,
		    bool fs_redirected);
/* Sets io_timeout_ms (0: a stalled path stalls I/O, as before) and the
 * longest an I/O waits for the lease or an in-doubt write (wait_s); call
 * it after client_lun_open(), before any I/O. */
void client_lun_set_timeouts(struct client_lun *l, unsigned io_timeout_ms, unsigned wait_s);
/* Does not wait for a stalled server; says so when in-doubt writes remain. */
void client_lun_close(struct client_lun *l);

int client_lun_pread(struct client_lun *l, void *buf, size_t len, uint64_t off);
int client_lun_pwrite(struct client_lun *l, const void *buf, size_t len, uint64_t off);
/* Makes the writes done so far durable, on the path they took. */
int client_lun_flush(struct client_lun *l);

/* Waits until no write of this mount to [off, off + len) is in doubt:
 * before clusters are given back (a layout recall) and reused by another
 * node. -EIO after gate_timeout_s. */
int client_lun_settle(struct client_lun *l, uint64_t off, uint64_t len);
/* Writes in doubt now (see above). */
unsigned client_lun_in_doubt(struct client_lun *l);

/* Holds this node's lease from the csv-quorumd at IPC endpoint ipc_name
 * and gates every LUN I/O on it; waits up to wait_ms for the lease to be
 * valid (0: does not wait). I/O that waits longer than timeout_s for it
 * fails with EIO. err says what is missing. */
int client_lun_hold_lease(struct client_lun *l, const char *ipc_name, unsigned wait_ms, unsigned timeout_s,
			  char *err, size_t errlen);
/* Lets go of the lease (before a fork, and at the end). */
void client_lun_drop_lease(struct client_lun *l);

/* Sets the volume's file-system redirected mode (all I/O through the
 * coordinator) or clears it. */
void client_lun_set_fs_redirected(struct client_lun *l, bool on);

/* This node's access to the volume, as csvctl volume state shows it:
 * "direct", "block-redirected", "fs-redirected" or "paused" (waiting for
 * the lease), with the reason in reason (may be empty). */
const char *client_lun_access(struct client_lun *l, char *reason, size_t len);
/* Calls fn(ctx), from whatever thread saw it, when client_lun_access() may
 * say something new: the path failed or works again, the lease was lost or
 * is back. fn must not block; NULL stops the calls. */
void client_lun_on_access(struct client_lun *l, void (*fn)(void *ctx), void *ctx);
