/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The client's path to the LUN: direct I/O on its own SAN path, and, when
 * that path fails (an I/O error, a lost NBD connection), the same I/O
 * through the coordinator (DATA_READ, DATA_WRITE: block-level
 * redirection), without an error for the application. A redirected client
 * tries its own path again every LUN_PROBE_MS, opening it anew, and goes
 * back to direct I/O when it works. A volume in file-system redirected
 * mode sends all its I/O through the coordinator. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct client_conn;
struct csv_blockdev;
struct lease_client;

#define LUN_PROBE_MS 2000

struct client_lun {
	char *spec;                 /* path or NBD URI, to open it again */
	struct client_conn *cc;
	uint32_t max_io;            /* largest DATA_* transfer */
	bool fs_redirected;         /* the volume's mode: always through the coordinator */
	pthread_rwlock_t lock;      /* bd: I/O shares it, reopening takes it */
	struct csv_blockdev *bd;    /* NULL while the path is down */
	pthread_mutex_t state_lock;
	uint64_t retry_at_ns;       /* redirected until then (CLOCK_MONOTONIC); 0 direct */
	bool remote_unflushed;      /* writes went through the coordinator since its last flush */

	/* The lease gate: with a lease, every LUN I/O, direct or redirected,
	 * waits while the lease is not valid, and a fence closes the gate and
	 * waits for the I/O in flight. */
	struct lease_client *lease; /* NULL: no lease is followed */
	unsigned gate_timeout_s;    /* I/O waiting longer fails with EIO */
	pthread_mutex_t gate_lock;
	pthread_cond_t gate_cond;
	bool gate_closed;           /* fenced */
	bool gate_waiting_logged;
	unsigned inflight;
};

/* Opens spec (the LUN is needed at mount time). */
int client_lun_open(struct client_lun *l, const char *spec, struct client_conn *cc, uint32_t max_io,
		    bool fs_redirected);
void client_lun_close(struct client_lun *l);

int client_lun_pread(struct client_lun *l, void *buf, size_t len, uint64_t off);
int client_lun_pwrite(struct client_lun *l, const void *buf, size_t len, uint64_t off);
/* Makes the writes done so far durable, on the path they took. */
int client_lun_flush(struct client_lun *l);

/* Holds this node's lease from the csv-quorumd at IPC endpoint ipc_name
 * and gates every LUN I/O on it; waits up to wait_ms for the lease to be
 * valid (0: does not wait). I/O that waits longer than timeout_s for it
 * fails with EIO. err says what is missing. */
int client_lun_hold_lease(struct client_lun *l, const char *ipc_name, unsigned wait_ms, unsigned timeout_s,
			  char *err, size_t errlen);
/* Lets go of the lease (before a fork, and at the end). */
void client_lun_drop_lease(struct client_lun *l);
