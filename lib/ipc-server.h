/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A libqb IPC service (shared memory) served from a qb loop: the glue both
 * daemons share. One loop per process. */
#pragma once

#include <stddef.h>

#include <qb/qbipcs.h>
#include <qb/qbloop.h>

/* Creates and runs the service NAME with the handlers on loop, messages up
 * to max_msg bytes; context goes to qb_ipcs_service_context_set. daemon
 * names the program for the "already running" error. Returns 0 and the
 * service, or -errno with err saying what went wrong. */
int ipc_server_start(qb_loop_t *loop, const char *name, struct qb_ipcs_service_handlers *handlers,
		     size_t max_msg, void *context, const char *daemon, qb_ipcs_service_t **ret, char *err,
		     size_t errlen);

/* Stops and frees the service *s, if any. */
void ipc_server_stop(qb_ipcs_service_t **s);
