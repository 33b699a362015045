/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The lease of this node, as a process that acts on the shared volumes
 * holds it: a thread connects to the local csv-quorumd over libqb IPC,
 * holds the lease there and follows it. The process may issue I/O only
 * while lease_client_valid() is true; when the lease is lost or a fence
 * is asked for, the thread calls ops->fence, which must stop all I/O and
 * return once it has (csv-quorumd kills the process otherwise), and tells
 * csv-quorumd so. When the lease is valid again it calls ops->resume. A
 * lost csv-quorumd lets the lease run out: the fence follows. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct lease_client;

struct lease_client_ops {
	/* Stop all I/O on the shared volumes; return once it has stopped (or
	 * never, for a process that exits). why is a sentence. */
	void (*fence)(void *ctx, const char *why);
	/* The lease is valid again after a fence. */
	void (*resume)(void *ctx);
};

/* Starts following the lease of the csv-quorumd at IPC endpoint ipc_name,
 * as role ("csvfs", "coordinator", "vm") acting on what (a volume, a VM).
 * Returns 0 or a negative errno. */
int lease_client_start(const char *ipc_name, const char *role, const char *what,
		       const struct lease_client_ops *ops, void *ctx, struct lease_client **ret);

/* Whether I/O may be issued now: the lease is valid and its margin has
 * not run out on the monotonic clock. */
bool lease_client_valid(struct lease_client *lc);

/* Waits until the lease is valid, up to timeout_ms: 0, or -ETIMEDOUT with
 * why (if not NULL) saying what is missing. */
int lease_client_wait(struct lease_client *lc, unsigned timeout_ms, char *why, size_t whylen);

/* Stops the thread and disconnects. */
void lease_client_stop(struct lease_client *lc);
