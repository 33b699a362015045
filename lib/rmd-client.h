/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A small synchronous client of the local csv-rmd (lib/rmd-ipc.h): one
 * IPC connection per call, so that a csv-rmd that restarts costs nothing
 * to follow. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The reply to a request waits this long. */
#define RMD_CLIENT_TIMEOUT_MS 2000

/* Where the coordinator of a volume runs, as csv-rmd says. */
struct rmd_location {
	char volume[256];       /* the volume's name in csv-rmd */
	char uuid[40];          /* its UUID; "" when csv-rmd does not know it */
	char host[256];         /* the coordinator's address: "" when none serves */
	uint16_t port;          /* its port; 0 when none serves */
	uint32_t node;          /* the node that holds it; 0 when none serves */
	uint64_t epoch;         /* of its start */
	bool redirect;          /* the volume is in file-system redirected mode */
};

/* Asks the csv-rmd at IPC endpoint ipc_name where the coordinator of
 * volume (a name or a UUID) runs, reporting this node's access to it
 * (access: "direct", "block-redirected", "fs-redirected", "paused"; NULL
 * to report nothing) with reason (may be NULL). Waits up to
 * RMD_CLIENT_TIMEOUT_MS for the reply.
 *
 * Returns 0 with *out filled; or a negative errno with err saying what
 * went wrong, in words:
 *   -EAGAIN        no coordinator serves the volume right now; out->volume
 *                  and out->redirect are filled all the same (host "");
 *   -ENOENT        csv-rmd knows no such volume;
 *   -ECONNREFUSED  csv-rmd is not running (no such IPC endpoint);
 *   -ETIMEDOUT     csv-rmd did not answer in time;
 *   -ECONNRESET    the IPC connection broke;
 *   -EBADMSG       the reply is malformed;
 *   another        csv-rmd's own error, as it put it.
 * *out is left as it was on any other error. */
int rmd_locate(const char *ipc_name, const char *volume, const char *access, const char *reason,
	       struct rmd_location *out, char *err, size_t errlen);
