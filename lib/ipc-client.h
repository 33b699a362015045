/* SPDX-License-Identifier: GPL-2.0-or-later */
/* One request to a local daemon's libqb IPC (csv-rmd, csv-vmagent): a
 * struct qb_ipc_request_header and a NUL-terminated JSON text, answered by
 * a struct qb_ipc_response_header (error 0 or a negative errno) and a
 * NUL-terminated JSON text. One connection per call, so that a daemon that
 * restarts costs its callers nothing. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/* Sends request id with body (a JSON object; not consumed) to the daemon
 * `daemon` (its name, for the messages) at IPC endpoint `endpoint`, whose
 * messages are at most max_msg bytes, and waits up to timeout_ms.
 *
 * Returns 0 when the daemon answered: *ret_error is its error (0 or a
 * negative errno) and *ret_reply its JSON (the caller puts it); err then
 * holds the daemon's "error" words when it gave some. Or, when it did not
 * answer, a negative errno with err saying why:
 *   -ECONNREFUSED  the daemon is not running (no such endpoint);
 *   -EACCES        the daemon refuses this process its endpoint;
 *   -ETIMEDOUT     no answer in time;
 *   -ECONNRESET    the connection broke;
 *   -EMSGSIZE      the request is too long;
 *   -EBADMSG       the answer is not a response with a JSON text. */
int ipc_call(const char *daemon, const char *endpoint, size_t max_msg, int32_t id, struct json_object *body,
	     int timeout_ms, int32_t *ret_error, struct json_object **ret_reply, char *err, size_t errlen);
