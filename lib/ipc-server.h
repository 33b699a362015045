/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A libqb IPC service (shared memory) served from a qb loop: the glue both
 * daemons share. One loop per process. */
#pragma once

#include <stddef.h>

#include <qb/qbipcs.h>
#include <qb/qbloop.h>

#include <json-c/json.h>

/* Creates and runs the service NAME with the handlers on loop, messages up
 * to max_msg bytes; context goes to qb_ipcs_service_context_set. daemon
 * names the program for the "already running" error. Returns 0 and the
 * service, or -errno with err saying what went wrong. */
int ipc_server_start(qb_loop_t *loop, const char *name, struct qb_ipcs_service_handlers *handlers,
		     size_t max_msg, void *context, const char *daemon, qb_ipcs_service_t **ret, char *err,
		     size_t errlen);

/* Stops and frees the service *s, if any. */
void ipc_server_stop(qb_ipcs_service_t **s);

/* Answers request id with error and o (consumed; NULL: an empty object)
 * as a NUL-terminated JSON text; a reply too large for the service goes
 * as -EMSGSIZE without a body. Returns what libqb returned. */
ssize_t ipc_reply_json(qb_ipcs_connection_t *c, int32_t id, int32_t error, struct json_object *o);
/* Answers request id with error and {"error": the formatted text}. */
ssize_t ipc_reply_error(qb_ipcs_connection_t *c, int32_t id, int32_t error, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
