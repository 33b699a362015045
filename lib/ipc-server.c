/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>

#include <qb/qbipc_common.h>

#include "cred.h"
#include "ipc-server.h"

static qb_loop_t *ipc_loop;
static size_t ipc_max_msg;

static int32_t poll_add(enum qb_loop_priority p, int32_t fd, int32_t events, void *data, qb_ipcs_dispatch_fn_t fn)
{
	return qb_loop_poll_add(ipc_loop, p, fd, events, data, fn);
}

static int32_t poll_mod(enum qb_loop_priority p, int32_t fd, int32_t events, void *data, qb_ipcs_dispatch_fn_t fn)
{
	return qb_loop_poll_mod(ipc_loop, p, fd, events, data, fn);
}

static int32_t poll_del(int32_t fd)
{
	return qb_loop_poll_del(ipc_loop, fd);
}

static int32_t job_add(enum qb_loop_priority p, void *data, qb_loop_job_dispatch_fn fn)
{
	return qb_loop_job_add(ipc_loop, p, data, fn);
}

int ipc_server_start(qb_loop_t *loop, const char *name, struct qb_ipcs_service_handlers *handlers,
		     size_t max_msg, void *context, const char *daemon, qb_ipcs_service_t **ret, char *err,
		     size_t errlen)
{
	static struct qb_ipcs_poll_handlers poll = {
		.job_add = job_add,
		.dispatch_add = poll_add,
		.dispatch_mod = poll_mod,
		.dispatch_del = poll_del,
	};
	ipc_loop = loop;
	ipc_max_msg = max_msg;
	*ret = NULL;
	qb_ipcs_service_t *s = qb_ipcs_create(name, 0, QB_IPC_SHM, handlers);
	if (!s) {
		int e = errno;
		snprintf(err, errlen, "cannot create the IPC server '%s': %s", name, strerror(e));
		return -e;
	}
	if (context)
		qb_ipcs_service_context_set(s, context);
	qb_ipcs_poll_handlers_set(s, &poll);
	qb_ipcs_enforce_buffer_size(s, (uint32_t)max_msg);
	int r = qb_ipcs_run(s);
	if (r < 0) {
		if (r == -EADDRINUSE)
			snprintf(err, errlen, "another process already serves the IPC endpoint '%s' (is %s running "
				 "already?)", name, daemon);
		else
			snprintf(err, errlen, "cannot serve the IPC endpoint '%s': %s", name, strerror(-r));
		/* qb_ipcs_run() has dropped the service itself on failure. */
		return r;
	}
	*ret = s;
	return 0;
}

int32_t ipc_caller_accept(qb_ipcs_connection_t *c, uid_t uid, gid_t gid)
{
	struct ipc_caller *cl = calloc(1, sizeof(*cl));
	if (!cl)
		return -ENOMEM;
	cl->uid = uid;
	cl->gid = gid;
	cl->may_change = q_may_change(uid, gid, Q_ADMIN_GROUP);
	qb_ipcs_context_set(c, cl);
	return 0;
}

void ipc_caller_destroyed(qb_ipcs_connection_t *c)
{
	free(qb_ipcs_context_get(c));
	qb_ipcs_context_set(c, NULL);
}

void ipc_server_stop(qb_ipcs_service_t **s)
{
	if (*s) {
		qb_ipcs_destroy(*s);
		*s = NULL;
	}
}

ssize_t ipc_reply_json(qb_ipcs_connection_t *c, int32_t id, int32_t error, struct json_object *o)
{
	if (!o)
		o = json_object_new_object();
	const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	struct qb_ipc_response_header h = { .id = id, .error = error };
	size_t len = strlen(text) + 1;
	struct iovec iov[2] = {
		{ .iov_base = &h, .iov_len = sizeof(h) },
		{ .iov_base = (void *)text, .iov_len = len },
	};
	h.size = (int32_t)(sizeof(h) + len);
	ssize_t r;
	if ((size_t)h.size > ipc_max_msg) {
		h.error = -EMSGSIZE;
		h.size = sizeof(h);
		r = qb_ipcs_response_sendv(c, iov, 1);
	} else {
		r = qb_ipcs_response_sendv(c, iov, 2);
	}
	json_object_put(o);
	return r;
}

ssize_t ipc_reply_error(qb_ipcs_connection_t *c, int32_t id, int32_t error, const char *fmt, ...)
{
	char text[1200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "error", json_object_new_string(text));
	return ipc_reply_json(c, id, error, o);
}
