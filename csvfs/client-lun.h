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
};

/* Opens spec (the LUN is needed at mount time). */
int client_lun_open(struct client_lun *l, const char *spec, struct client_conn *cc, uint32_t max_io,
		    bool fs_redirected);
void client_lun_close(struct client_lun *l);

int client_lun_pread(struct client_lun *l, void *buf, size_t len, uint64_t off);
int client_lun_pwrite(struct client_lun *l, const void *buf, size_t len, uint64_t off);
/* Makes the writes done so far durable, on the path they took. */
int client_lun_flush(struct client_lun *l);
