/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The local IPC server of csv-rmd (protocol in lib/rmd-ipc.h): the state
 * for csvctl, the coordinator's address for the csvfs clients (who report
 * their access as they ask), and the operator's requests, which become
 * messages of the group. Anyone may read; only root or the admin group
 * may change anything. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <json-c/json.h>
#include <qb/qbipc_common.h>
#include <qb/qblog.h>

#include "cred.h"
#include "ipc-server.h"
#include "rmd-ipc.h"
#include "rmd.h"

static struct rmd *ipc_daemon;

static void add(struct json_object *o, const char *k, struct json_object *v)
{
	json_object_object_add(o, k, v);
}

static int32_t ipc_closed(qb_ipcs_connection_t *c)
{
	return 0;
}

static const char *fence_str(enum r_fence f)
{
	return f == R_FENCED ? "fenced" : f == R_FENCE_PENDING ? "pending" : "none";
}

/* The access of node nf to state volume k, with its reason. */
static const char *access_of(const struct rmd *d, const struct r_node_facts *nf, unsigned k, const char **reason)
{
	const struct rmd_peer *p = rmd_peer(d, nf->id);
	*reason = "";
	if (!nf->member) {
		*reason = "the node is not in the quorate membership";
		return "unavailable";
	}
	for (uint32_t j = 0; p && j < p->nvolumes; j++)
		if (strcmp(p->volumes[j], d->st.volumes[k].name) == 0 && p->access[j].access[0]) {
			*reason = p->access[j].reason;
			return p->access[j].access;
		}
	*reason = p ? "no csvfs client reports on the node" : "no csv-rmd runs on the node";
	return "unavailable";
}

static struct json_object *state_json(struct rmd *d, const struct ipc_caller *cl)
{
	const struct r_facts *f = &d->facts;
	struct json_object *o = json_object_new_object(), *nodes = json_object_new_array(),
			   *vols = json_object_new_array(), *client = json_object_new_object();
	uint32_t leader = rmd_leader(d);
	add(o, "version", json_object_new_int(1));
	add(o, "node_id", json_object_new_uint64(d->node_id));
	add(o, "leader", leader ? json_object_new_uint64(leader) : NULL);
	add(o, "quorate", json_object_new_boolean(rmd_quorate(d)));
	add(o, "state_version", json_object_new_uint64(d->st.version));
	if (!d->quorumd_up)
		add(o, "quorumd_error", json_object_new_string(d->quorumd_error));
	for (uint32_t i = 0; i < f->nnodes; i++) {
		const struct r_node_facts *nf = &f->nodes[i];
		const struct rmd_peer *p = rmd_peer(d, nf->id);
		const struct r_node *a = r_node_find(&d->st, nf->id);
		struct json_object *n = json_object_new_object(), *roles = json_object_new_array();
		add(n, "id", json_object_new_uint64(nf->id));
		add(n, "name", json_object_new_string(rmd_node_name(d, nf->id)));
		add(n, "address", p && p->known && p->address[0] ? json_object_new_string(p->address) : NULL);
		add(n, "member", json_object_new_boolean(p != NULL));
		add(n, "quorate", json_object_new_boolean(nf->member && f->quorate));
		add(n, "fence", json_object_new_string(fence_str(nf->fence)));
		add(n, "admin", json_object_new_string(a && a->paused ? "paused" : "active"));
		for (uint32_t k = 0; k < d->st.nvolumes; k++)
			if (d->st.volumes[k].holder == nf->id && d->st.volumes[k].phase != R_UNPLACED)
				json_object_array_add(roles, json_object_new_string(d->st.volumes[k].name));
		add(n, "roles", roles);
		json_object_array_add(nodes, n);
	}
	for (uint32_t k = 0; k < d->st.nvolumes; k++) {
		const struct r_volume *v = &d->st.volumes[k];
		const struct rmd_peer *h = v->holder ? rmd_peer(d, v->holder) : NULL;
		struct json_object *j = json_object_new_object(), *per = json_object_new_array();
		char addr[128];
		add(j, "name", json_object_new_string(v->name));
		add(j, "uuid", v->uuid[0] ? json_object_new_string(v->uuid) : NULL);
		add(j, "port", json_object_new_uint64(v->port));
		add(j, "holder", v->holder ? json_object_new_uint64(v->holder) : NULL);
		add(j, "phase", json_object_new_string(r_phase_str(v->phase)));
		add(j, "reason", json_object_new_string(v->reason));
		add(j, "epoch", json_object_new_uint64(v->epoch));
		snprintf(addr, sizeof(addr), "%s:%u", h ? h->address : "", v->port);
		add(j, "coordinator", v->phase == R_RUNNING && h && h->address[0] ? json_object_new_string(addr) : NULL);
		add(j, "redirect", json_object_new_boolean(v->redirect));
		add(j, "moves", json_object_new_uint64(v->moves));
		for (uint32_t i = 0; i < f->nnodes; i++) {
			const struct r_node_facts *nf = &f->nodes[i];
			struct json_object *n = json_object_new_object();
			const char *reason;
			add(n, "id", json_object_new_uint64(nf->id));
			add(n, "san", json_object_new_string(!nf->has[k] && !rmd_peer(d, nf->id) ? "unknown" :
							     nf->san_ok[k] ? "ok" : "lost"));
			add(n, "access", json_object_new_string(access_of(d, nf, k, &reason)));
			add(n, "reason", json_object_new_string(reason));
			json_object_array_add(per, n);
		}
		add(j, "nodes", per);
		json_object_array_add(vols, j);
	}
	add(o, "nodes", nodes);
	add(o, "volumes", vols);
	add(client, "uid", json_object_new_uint64(cl->uid));
	add(client, "gid", json_object_new_uint64(cl->gid));
	add(client, "may_change", json_object_new_boolean(cl->may_change));
	add(o, "client", client);
	return o;
}

/* A csvfs client of this node reports its access to a volume. */
static void local_access(struct rmd *d, const char *volume, const char *access, const char *reason)
{
	for (uint32_t c = 0; c < d->nconf; c++) {
		int k = r_volume_index(&d->st, volume);
		if (k < 0 || strcmp(d->conf[c].name, d->st.volumes[k].name) != 0)
			continue;
		struct rmd_access *a = &d->local_access[c];
		d->local_access_ms[c] = rmd_now_ms();
		if (d->access_sent[c] && strcmp(a->access, access) == 0 && strcmp(a->reason, reason) == 0)
			return;
		snprintf(a->access, sizeof(a->access), "%s", access);
		snprintf(a->reason, sizeof(a->reason), "%s", reason);
		struct json_object *o = json_object_new_object();
		add(o, "volume", json_object_new_string(d->conf[c].name));
		add(o, "access", json_object_new_string(access));
		add(o, "reason", json_object_new_string(reason));
		d->access_sent[c] = group_send(d, RMD_ACCESS, o) == 0;
		return;
	}
}

static void locate(struct rmd *d, qb_ipcs_connection_t *c, const struct ipc_caller *cl, struct json_object *req)
{
	const char *name = r_json_str(req, "volume"), *access = r_json_str(req, "access");
	struct r_volume *v = name ? r_volume_find(&d->st, name) : NULL;
	if (!v) {
		ipc_reply_error(c, CSVR_RES_LOCATE, -ENOENT, "csv-rmd knows no volume %s", name ? name : "(none named)");
		return;
	}
	/* Only a client that may change the cluster (a csvfs client runs as
	 * root) reports this node's access. */
	if (access && cl->may_change)
		local_access(d, v->name, access, r_json_str(req, "reason") ? r_json_str(req, "reason") : "");
	const struct rmd_peer *h = v->holder ? rmd_peer(d, v->holder) : NULL;
	struct json_object *o = json_object_new_object();
	add(o, "volume", json_object_new_string(v->name));
	add(o, "uuid", json_object_new_string(v->uuid));
	add(o, "redirect", json_object_new_boolean(v->redirect));
	if (v->phase != R_RUNNING || !h || !h->address[0] || !d->synced) {
		char why[512];
		snprintf(why, sizeof(why), "no coordinator serves volume %s now (%s: %s)", v->name, r_phase_str(v->phase),
			 d->synced ? v->reason : "csv-rmd is not in its group yet");
		add(o, "error", json_object_new_string(why));
		ipc_reply_json(c, CSVR_RES_LOCATE, -EAGAIN, o);
		return;
	}
	add(o, "node", json_object_new_uint64(v->holder));
	add(o, "host", json_object_new_string(h->address));
	add(o, "port", json_object_new_uint64(v->port));
	add(o, "epoch", json_object_new_uint64(v->epoch));
	ipc_reply_json(c, CSVR_RES_LOCATE, 0, o);
}

static void move(struct rmd *d, qb_ipcs_connection_t *c, struct json_object *req)
{
	const char *name = r_json_str(req, "volume");
	struct json_object *to_o = r_json_get(req, "to");
	int k = name ? r_volume_index(&d->st, name) : -ENOENT;
	if (k < 0) {
		ipc_reply_error(c, CSVR_RES_MOVE, -ENOENT, "csv-rmd knows no volume %s", name ? name : "(none named)");
		return;
	}
	int64_t to = to_o && json_object_is_type(to_o, json_type_int) ? json_object_get_int64(to_o) : 0;
	if (to <= 0 || to > UINT32_MAX || !r_facts_node(&d->facts, (uint32_t)to)) {
		ipc_reply_error(c, CSVR_RES_MOVE, -ENOENT, "no node %lld in the cluster", (long long)to);
		return;
	}
	if (!rmd_quorate(d)) {
		ipc_reply_error(c, CSVR_RES_MOVE, -EAGAIN, "this node is not quorate (or not in the csv-rmd group yet)");
		return;
	}
	char why[200];
	if (!r_eligible(&d->st, &d->facts, (unsigned)k, (uint32_t)to, why, sizeof(why))) {
		ipc_reply_error(c, CSVR_RES_MOVE, -EINVAL, "volume %s cannot move: %s", d->st.volumes[k].name, why);
		return;
	}
	const struct r_volume *v = &d->st.volumes[k];
	struct json_object *o = json_object_new_object();
	char msg[300];
	if (v->holder == (uint32_t)to && (v->phase == R_RUNNING || v->phase == R_STARTING)) {
		snprintf(msg, sizeof(msg), "volume %s is on node %lld already", v->name, (long long)to);
	} else {
		struct json_object *m = json_object_new_object();
		add(m, "volume", json_object_new_string(v->name));
		add(m, "to", json_object_new_uint64((uint64_t)to));
		if (group_send(d, RMD_MOVE, m) < 0) {
			json_object_put(o);
			ipc_reply_error(c, CSVR_RES_MOVE, -EIO, "cannot reach the csv-rmd group");
			return;
		}
		snprintf(msg, sizeof(msg), "moving volume %s to node %lld", v->name, (long long)to);
	}
	add(o, "message", json_object_new_string(msg));
	ipc_reply_json(c, CSVR_RES_MOVE, 0, o);
}

static void redirect(struct rmd *d, qb_ipcs_connection_t *c, struct json_object *req)
{
	const char *name = r_json_str(req, "volume");
	struct json_object *on_o = r_json_get(req, "on");
	struct r_volume *v = name ? r_volume_find(&d->st, name) : NULL;
	if (!v) {
		ipc_reply_error(c, CSVR_RES_REDIRECT, -ENOENT, "csv-rmd knows no volume %s", name ? name : "(none named)");
		return;
	}
	if (!on_o || !json_object_is_type(on_o, json_type_boolean)) {
		ipc_reply_error(c, CSVR_RES_REDIRECT, -EINVAL, "the request needs \"on\": true or false");
		return;
	}
	if (!rmd_quorate(d)) {
		ipc_reply_error(c, CSVR_RES_REDIRECT, -EAGAIN, "this node is not quorate (or not in the csv-rmd group yet)");
		return;
	}
	bool on = json_object_get_boolean(on_o);
	struct json_object *m = json_object_new_object();
	add(m, "volume", json_object_new_string(v->name));
	add(m, "on", json_object_new_boolean(on));
	if (group_send(d, RMD_REDIRECT, m) < 0) {
		ipc_reply_error(c, CSVR_RES_REDIRECT, -EIO, "cannot reach the csv-rmd group");
		return;
	}
	struct json_object *o = json_object_new_object();
	char msg[200];
	snprintf(msg, sizeof(msg), "volume %s: file-system redirected mode %s", v->name, on ? "on" : "off");
	add(o, "message", json_object_new_string(msg));
	ipc_reply_json(c, CSVR_RES_REDIRECT, 0, o);
}

static int32_t ipc_msg(qb_ipcs_connection_t *c, void *data, size_t size)
{
	struct rmd *d = ipc_daemon;
	struct ipc_caller *cl = qb_ipcs_context_get(c);
	struct qb_ipc_request_header h;
	if (!cl || size < sizeof(h)) {
		qb_ipcs_disconnect(c);
		return 0;
	}
	memcpy(&h, data, sizeof(h));
	const char *body = (const char *)data + sizeof(h);
	size_t blen = size - sizeof(h);
	struct json_object *req = NULL;
	if (blen && memchr(body, '\0', blen))
		req = json_tokener_parse(body);
	int32_t res = h.id;  /* CSVR_RES_* mirror the requests */
	if (h.id != CSVR_REQ_STATE && !json_object_is_type(req, json_type_object)) {
		ipc_reply_error(c, res, -EINVAL, "the request carries no JSON object");
		json_object_put(req);
		return 0;
	}
	switch (h.id) {
	case CSVR_REQ_STATE:
		ipc_reply_json(c, CSVR_RES_STATE, 0, state_json(d, cl));
		break;
	case CSVR_REQ_LOCATE:
		locate(d, c, cl, req);
		break;
	case CSVR_REQ_MOVE:
	case CSVR_REQ_REDIRECT:
		if (!cl->may_change) {
			ipc_reply_error(c, res, -EPERM, "only root or the %s group may change the cluster", Q_ADMIN_GROUP);
			qb_log(LOG_WARNING, "uid %u may not change the cluster: %s refused", (unsigned)cl->uid,
			       h.id == CSVR_REQ_MOVE ? "move" : "redirect");
			break;
		}
		if (h.id == CSVR_REQ_MOVE)
			move(d, c, req);
		else
			redirect(d, c, req);
		break;
	default:
		ipc_reply_error(c, res, -EOPNOTSUPP, "unknown request %d", h.id);
		break;
	}
	json_object_put(req);
	return 0;
}

int ipc_start(struct rmd *d, char *err, size_t errlen)
{
	static struct qb_ipcs_service_handlers handlers = {
		.connection_accept = ipc_caller_accept,
		.msg_process = ipc_msg,
		.connection_closed = ipc_closed,
		.connection_destroyed = ipc_caller_destroyed,
	};
	ipc_daemon = d;
	return ipc_server_start(d->loop, d->ipc_name, &handlers, CSVR_IPC_MAX_MSG, NULL, "csv-rmd", &d->ipcs, err,
				errlen);
}

void ipc_stop(struct rmd *d)
{
	ipc_server_stop(&d->ipcs);
}
