/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A libqb IPC service (shared memory) served from a qb loop: the glue both
 * daemons share. One loop per process. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

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

/* Who calls on a connection: its credentials, judged once when it
 * connects (root or the cluster admin group may change anything). */
struct ipc_caller {
	uid_t uid;
	gid_t gid;
	bool may_change;
};
/* connection_accept and connection_destroyed handlers that keep a struct
 * ipc_caller as the connection's context (qb_ipcs_context_get). */
int32_t ipc_caller_accept(qb_ipcs_connection_t *c, uid_t uid, gid_t gid);
void ipc_caller_destroyed(qb_ipcs_connection_t *c);

/* Stops and frees the service *s, if any. */
void ipc_server_stop(qb_ipcs_service_t **s);

/* Answers request id with error and o (consumed; NULL: an empty object)
 * as a NUL-terminated JSON text; a reply too large for the service goes
 * as -EMSGSIZE without a body. Returns what libqb returned. */
ssize_t ipc_reply_json(qb_ipcs_connection_t *c, int32_t id, int32_t error, struct json_object *o);
/* Answers request id with error and {"error": the formatted text}. */
ssize_t ipc_reply_error(qb_ipcs_connection_t *c, int32_t id, int32_t error, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
