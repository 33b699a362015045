/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The local IPC server of csv-quorumd (libqb, shared memory): a snapshot
 * of the state on request, events pushed to subscribers, and the lease
 * for the local processes that hold it. Anyone may connect and read; the
 * credentials of each caller are judged when it connects, and only root
 * or the admin group may hold the lease. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <json-c/json.h>
#include <qb/qbipc_common.h>

#include "cred.h"
#include "ipc-server.h"
#include "quorumd-ipc.h"
#include "snapshot.h"
#include "quorumd.h"

struct ipc_client {
	qb_ipcs_connection_t *c;
	struct q_client cred;
	pid_t pid;
	bool subscribed;
	struct ipc_holder h;
	struct ipc_client *prev, *next;
};

static struct quorumd *ipc_daemon;

static int32_t ipc_accept(qb_ipcs_connection_t *c, uid_t uid, gid_t gid)
{
	struct ipc_client *cl = calloc(1, sizeof(*cl));
	if (!cl)
		return -ENOMEM;
	cl->c = c;
	cl->cred.uid = uid;
	cl->cred.gid = gid;
	cl->cred.may_change = q_may_change(uid, gid, Q_ADMIN_GROUP);
	qb_ipcs_context_set(c, cl);
	return 0;
}

static void ipc_created(qb_ipcs_connection_t *c)
{
	struct quorumd *d = ipc_daemon;
	struct ipc_client *cl = qb_ipcs_context_get(c);
	struct qb_ipcs_connection_stats st;
	if (!cl)
		return;
	if (qb_ipcs_connection_stats_get(c, &st, QB_FALSE) == 0)
		cl->pid = st.client_pid;
	cl->next = d->clients;
	if (d->clients)
		d->clients->prev = cl;
	d->clients = cl;
	qb_log(LOG_DEBUG, "IPC client pid %d (uid %u, gid %u) connected; it %s change the cluster", (int)cl->pid,
	       (unsigned)cl->cred.uid, (unsigned)cl->cred.gid, cl->cred.may_change ? "may" : "may not");
}

static int32_t ipc_closed(qb_ipcs_connection_t *c)
{
	return 0;
}

static void ipc_destroyed(qb_ipcs_connection_t *c)
{
	struct quorumd *d = ipc_daemon;
	struct ipc_client *cl = qb_ipcs_context_get(c);
	if (!cl)
		return;
	if (cl->prev)
		cl->prev->next = cl->next;
	else if (d->clients == cl)
		d->clients = cl->next;
	if (cl->next)
		cl->next->prev = cl->prev;
	if (cl->h.holder)
		qb_log(cl->h.killed ? LOG_NOTICE : d->stopping && !cl->h.stopped ? LOG_WARNING : LOG_INFO,
		       "lease holder pid %d (%s %s) is gone%s", (int)cl->pid, cl->h.role, cl->h.what,
		       cl->h.killed ? " after its kill" : "");
	qb_ipcs_context_set(c, NULL);
	free(cl);
	quorumd_evaluate_soon(d);
}

static ssize_t reply(qb_ipcs_connection_t *c, int32_t id, int32_t error, const char *text)
{
	struct qb_ipc_response_header h = { .id = id, .error = error };
	size_t len = text ? strlen(text) + 1 : 0;
	struct iovec iov[2] = {
		{ .iov_base = &h, .iov_len = sizeof(h) },
		{ .iov_base = (void *)text, .iov_len = len },
	};
	if (sizeof(h) + len > CSVQ_IPC_MAX_MSG) {
		h.error = -EMSGSIZE;
		len = 0;
		iov[1].iov_len = 0;
	}
	h.size = (int32_t)(sizeof(h) + len);
	return qb_ipcs_response_sendv(c, iov, len ? 2 : 1);
}

/* Records cl as a holder from the request body {"role", "what"}. */
static bool hold(struct quorumd *d, struct ipc_client *cl, const char *body, size_t len)
{
	char text[512];
	if (len == 0 || len >= sizeof(text)) {
		qb_log(LOG_WARNING, "IPC client pid %d: a lease request of %zu bytes: refused", (int)cl->pid, len);
		return false;
	}
	memcpy(text, body, len);
	text[len] = '\0';
	struct json_object *o = json_tokener_parse(text), *role, *what;
	bool ok = o && json_object_object_get_ex(o, "role", &role) && json_object_is_type(role, json_type_string) &&
		  json_object_object_get_ex(o, "what", &what) && json_object_is_type(what, json_type_string);
	if (!ok) {
		qb_log(LOG_WARNING, "IPC client pid %d: a lease request that is not {\"role\", \"what\"}: refused",
		       (int)cl->pid);
		json_object_put(o);
		return false;
	}
	bool was = cl->h.holder;
	snprintf(cl->h.role, sizeof(cl->h.role), "%s", json_object_get_string(role));
	snprintf(cl->h.what, sizeof(cl->h.what), "%s", json_object_get_string(what));
	json_object_put(o);
	cl->h.holder = true;
	/* A holder that joins while this node is stopping has not started. */
	cl->h.stopped = d->stopping;
	cl->h.told_fence = d->stopping;
	if (!was)
		qb_log(LOG_NOTICE, "lease holder pid %d: %s %s", (int)cl->pid, cl->h.role, cl->h.what);
	return true;
}

static void lease_reply(struct quorumd *d, qb_ipcs_connection_t *c, struct ipc_client *cl)
{
	quorumd_evaluate(d);
	char *text = lf_lease_text(d, q_now_ms());
	reply(c, CSVQ_RES_LEASE, text ? 0 : -ENOMEM, text);
	cl->h.pushed_ms = q_now_ms();
	free(text);
}

static int32_t ipc_msg(qb_ipcs_connection_t *c, void *data, size_t size)
{
	struct quorumd *d = ipc_daemon;
	struct ipc_client *cl = qb_ipcs_context_get(c);
	struct qb_ipc_request_header h;
	if (!cl || size < sizeof(h)) {
		qb_ipcs_disconnect(c);
		return 0;
	}
	memcpy(&h, data, sizeof(h));
	d->ipc_requests++;
	switch (h.id) {
	case CSVQ_REQ_SNAPSHOT:
	case CSVQ_REQ_SUBSCRIBE: {
		/* Fresh facts for the answer. */
		quorumd_evaluate(d);
		struct json_object *o = q_snapshot_json(&d->st, q_now_ms(), &cl->cred);
		char *text = o ? q_json_text(o) : NULL;
		int32_t id = h.id == CSVQ_REQ_SNAPSHOT ? CSVQ_RES_SNAPSHOT : CSVQ_RES_SUBSCRIBE;
		ssize_t r = reply(c, id, text ? 0 : -ENOMEM, text);
		free(text);
		json_object_put(o);
		if (r < 0)
			qb_log(LOG_WARNING, "IPC client pid %d: cannot send the snapshot: %s", (int)cl->pid,
			       strerror((int)-r));
		else if (h.id == CSVQ_REQ_SUBSCRIBE && !cl->subscribed) {
			cl->subscribed = true;
			qb_log(LOG_INFO, "IPC client pid %d (uid %u) subscribed to events", (int)cl->pid,
			       (unsigned)cl->cred.uid);
		}
		break;
	}
	case CSVQ_REQ_LEASE_HOLD:
		if (!cl->cred.may_change) {
			qb_log(LOG_WARNING, "IPC client pid %d (uid %u) may not hold the lease: refused", (int)cl->pid,
			       (unsigned)cl->cred.uid);
			reply(c, CSVQ_RES_LEASE, -EPERM, NULL);
			break;
		}
		if (!hold(d, cl, (const char *)data + sizeof(h), size - sizeof(h))) {
			reply(c, CSVQ_RES_LEASE, -EINVAL, NULL);
			break;
		}
		lease_reply(d, c, cl);
		break;
	case CSVQ_REQ_LEASE_STOPPED:
		if (!cl->h.holder) {
			reply(c, CSVQ_RES_LEASE, -ENOENT, NULL);
			break;
		}
		if (!cl->h.stopped)
			qb_log(LOG_NOTICE, "lease holder pid %d (%s %s) has stopped its I/O", (int)cl->pid, cl->h.role,
			       cl->h.what);
		cl->h.stopped = true;
		lease_reply(d, c, cl);
		quorumd_evaluate_soon(d);
		break;
	default:
		reply(c, h.id, -EOPNOTSUPP, NULL);
		break;
	}
	return 0;
}

struct ipc_client *ipc_next_holder(struct quorumd *d, struct ipc_client *cl, pid_t *ret_pid,
				   struct ipc_holder **ret_h)
{
	for (cl = cl ? cl->next : d->clients; cl; cl = cl->next) {
		if (cl->h.holder) {
			*ret_pid = cl->pid;
			*ret_h = &cl->h;
			return cl;
		}
	}
	return NULL;
}

bool ipc_send_lease(struct ipc_client *cl, const char *json)
{
	struct qb_ipc_response_header h = { .id = CSVQ_LEASE, .error = 0 };
	size_t len = strlen(json) + 1;
	struct iovec iov[2] = {
		{ .iov_base = &h, .iov_len = sizeof(h) },
		{ .iov_base = (void *)json, .iov_len = len },
	};
	h.size = (int32_t)(sizeof(h) + len);
	return qb_ipcs_event_sendv(cl->c, iov, 2) >= 0;
}

void ipc_publish(struct quorumd *d, const char *json)
{
	struct qb_ipc_response_header h = { .id = CSVQ_EVENT, .error = 0 };
	size_t len = strlen(json) + 1;
	struct iovec iov[2] = {
		{ .iov_base = &h, .iov_len = sizeof(h) },
		{ .iov_base = (void *)json, .iov_len = len },
	};
	h.size = (int32_t)(sizeof(h) + len);
	for (struct ipc_client *cl = d->clients, *next; cl; cl = next) {
		next = cl->next;
		if (!cl->subscribed)
			continue;
		ssize_t r = qb_ipcs_event_sendv(cl->c, iov, 2);
		if (r < 0) {
			/* It does not read its events: drop it rather than
			 * queue without bound. */
			qb_log(LOG_WARNING, "IPC subscriber pid %d does not take its events (%s): disconnecting it",
			       (int)cl->pid, strerror((int)-r));
			cl->subscribed = false;
			qb_ipcs_disconnect(cl->c);
		}
	}
}

int ipc_start(struct quorumd *d, char *err, size_t errlen)
{
	static struct qb_ipcs_service_handlers handlers = {
		.connection_accept = ipc_accept,
		.connection_created = ipc_created,
		.msg_process = ipc_msg,
		.connection_closed = ipc_closed,
		.connection_destroyed = ipc_destroyed,
	};
	ipc_daemon = d;
	return ipc_server_start(d->loop, d->ipc_name, &handlers, CSVQ_IPC_MAX_MSG, d, "csv-quorumd", &d->ipcs, err,
				errlen);
}

void ipc_stop(struct quorumd *d)
{
	ipc_server_stop(&d->ipcs);
}
