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
#include "vmagent-ipc.h"

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

/* The access of node nf to state volume k, with its reason in buf: what
 * its csvfs client reported, except that while no coordinator runs the
 * client's I/O that needs one waits, and the node is paused. */
static const char *access_of(const struct rmd *d, const struct r_node_facts *nf, unsigned k, char *buf,
			     size_t len)
{
	const struct rmd_peer *p = rmd_peer(d, nf->id);
	const struct r_volume *v = &d->st.volumes[k];
	if (!nf->member) {
		snprintf(buf, len, "the node is not in the quorate membership");
		return "unavailable";
	}
	for (uint32_t j = 0; p && j < p->nvolumes; j++) {
		if (strcmp(p->volumes[j], v->name) != 0 || !p->access[j].access[0])
			continue;
		const char *access = p->access[j].access;
		if (v->phase == R_RUNNING || strcmp(access, "paused") == 0) {
			snprintf(buf, len, "%s", p->access[j].reason);
			return access;
		}
		bool seen = false;
		for (uint32_t i = 0; i < d->facts.nnodes; i++)
			seen |= d->facts.nodes[i].member && d->facts.nodes[i].san_ok[k];
		if (!seen)
			snprintf(buf, len, "no node sees the volume's LUN: I/O waits until the SAN returns, up to the "
				 "clients' reconnect_timeout");
		else
			snprintf(buf, len, "no coordinator runs (%s%s%s): I/O waits for it", r_phase_str(v->phase),
				 v->reason[0] ? ": " : "", v->reason);
		return "paused";
	}
	snprintf(buf, len, "%s", p ? "no csvfs client reports on the node" : "no csv-rmd runs on the node");
	return "unavailable";
}

/* A node id, or null for none. */
static struct json_object *node_or_null(uint32_t id)
{
	return id ? json_object_new_uint64(id) : NULL;
}

/* How the VM's live migration goes, as its source said; null when it
 * said nothing of this migration. */
static struct json_object *progress_json(const struct rmd *d, const struct r_vm *v)
{
	const struct rmd_vm_progress *p = v->phase == R_VM_MIGRATING ? vms_progress(d, v->name, v->gen) : NULL;
	if (!p)
		return NULL;
	struct json_object *o = json_object_new_object();
	add(o, "status", json_object_new_string(p->status));
	add(o, "sent_mb", p->sent_mb >= 0 ? json_object_new_double(p->sent_mb) : NULL);
	add(o, "left_mb", p->left_mb >= 0 ? json_object_new_double(p->left_mb) : NULL);
	add(o, "elapsed_ms", json_object_new_uint64(p->elapsed_ms));
	return o;
}

/* A VM as lib/rmd-ipc.h shows it: the state's form, with nulls for none. */
static struct json_object *vm_json(const struct rmd *d, const struct r_vm *v)
{
	struct json_object *o = r_vm_json(v);
	add(o, "progress", progress_json(d, v));
	bool migrating = v->phase == R_VM_MIGRATING;
	add(o, "node", node_or_null(v->node));
	add(o, "target", node_or_null(v->target));
	add(o, "return_to", node_or_null(v->return_to));
	add(o, "anti_affinity", v->anti_affinity[0] ? json_object_new_string(v->anti_affinity) : NULL);
	add(o, "default_migration", json_object_new_string(v->prefer_quick ? "quick" : "live"));
	add(o, "migration", migrating ? json_object_new_string(v->quick ? "quick" : "live") : NULL);
	return o;
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
		add(n, "admin", json_object_new_string(r_admin_str(a ? a->admin : R_ACTIVE)));
		for (uint32_t k = 0; k < d->st.nvolumes; k++)
			if (d->st.volumes[k].holder == nf->id && d->st.volumes[k].phase != R_UNPLACED)
				json_object_array_add(roles, json_object_new_string(d->st.volumes[k].name));
		add(n, "roles", roles);
		struct json_object *vms = json_object_new_array();
		for (uint32_t j = 0; j < d->st.nvms; j++)
			if (r_vm_on(&d->st.vms[j], nf->id))
				json_object_array_add(vms, json_object_new_string(d->st.vms[j].name));
		add(n, "vms", vms);
		add(n, "vm_memory_mb", json_object_new_uint64(nf->vm_memory_mb));
		add(n, "vm_memory_used_mb", json_object_new_uint64(r_vm_memory_used(&d->st, nf->id)));
		add(n, "cpus", json_object_new_uint64(nf->cpus));
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
			char reason[512];
			add(n, "id", json_object_new_uint64(nf->id));
			add(n, "san", json_object_new_string(!nf->has[k] && !rmd_peer(d, nf->id) ? "unknown" :
							     nf->san_ok[k] ? "ok" : "lost"));
			add(n, "access", json_object_new_string(access_of(d, nf, k, reason, sizeof(reason))));
			add(n, "reason", json_object_new_string(reason));
			json_object_array_add(per, n);
		}
		add(j, "nodes", per);
		json_object_array_add(vols, j);
	}
	add(o, "nodes", nodes);
	add(o, "volumes", vols);
	struct json_object *vms = json_object_new_array();
	for (uint32_t i = 0; i < d->st.nvms; i++)
		json_object_array_add(vms, vm_json(d, &d->st.vms[i]));
	add(o, "vms", vms);
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

/* ---- VMs and node admin states ---------------------------------------------- */

/* The state's VM the request names; NULL after an -ENOENT answer. */
static struct r_vm *req_vm(struct rmd *d, qb_ipcs_connection_t *c, int32_t res, struct json_object *req)
{
	const char *name = r_json_str(req, "vm");
	struct r_vm *v = name ? r_vm_find(&d->st, name) : NULL;
	if (!v) {
		char known[512] = "";
		for (uint32_t i = 0; i < d->st.nvms; i++) {
			size_t l = strlen(known);
			snprintf(known + l, sizeof(known) - l, "%s%s", l ? ", " : "", d->st.vms[i].name);
		}
		ipc_reply_error(c, res, -ENOENT, "no VM %s (known: %s)", name ? name : "(none named)",
				known[0] ? known : "none");
	}
	return v;
}

/* The node the request names under key (0 when absent and optional);
 * -1 after an -ENOENT answer. */
static int64_t req_node(struct rmd *d, qb_ipcs_connection_t *c, int32_t res, struct json_object *req,
			const char *key, bool required)
{
	struct json_object *x = r_json_get(req, key);
	if (!x && !required)
		return 0;
	int64_t id = x && json_object_is_type(x, json_type_int) ? json_object_get_int64(x) : 0;
	if (id <= 0 || id > UINT32_MAX || !r_facts_node(&d->facts, (uint32_t)id)) {
		ipc_reply_error(c, res, -ENOENT, "no node %lld in the cluster", (long long)id);
		return -1;
	}
	return id;
}

/* Whether the caller may act on VM v as its operator: an admin, or a
 * member of one of its operator groups. */
static bool may_operate(const struct ipc_caller *cl, const struct r_vm *v)
{
	if (cl->may_change)
		return true;
	for (uint32_t i = 0; i < v->noperators; i++)
		if (q_may_change(cl->uid, cl->gid, v->operators[i]))
			return true;
	return false;
}

/* Sends message type o to the group and answers message (or the error). */
static void send_and_answer(struct rmd *d, qb_ipcs_connection_t *c, int32_t res, enum rmd_msg type,
			    struct json_object *m, const char *message)
{
	if (!rmd_quorate(d)) {
		json_object_put(m);
		ipc_reply_error(c, res, -EAGAIN, "this node is not quorate (or not in the csv-rmd group yet)");
		return;
	}
	if (group_send(d, type, m) < 0) {
		ipc_reply_error(c, res, -EIO, "cannot reach the csv-rmd group");
		return;
	}
	struct json_object *o = json_object_new_object();
	add(o, "message", json_object_new_string(message));
	ipc_reply_json(c, res, 0, o);
}

/* A VM_CREATE or VM_REMOVE waiting for csv-vmagent: who asked, and what
 * goes to the group once csv-vmagent has done its part. */
struct vm_change {
	qb_ipcs_connection_t *conn;
	int32_t res;
	enum rmd_msg type;
	struct json_object *msg;
	char what[128];          /* "write the definition of vm1", for an error */
	char message[300];       /* the answer when all went well */
	bool missing_ok;         /* -ENOENT from csv-vmagent is no error */
};

/* csv-vmagent did its part of a VM_CREATE or VM_REMOVE: the group is told,
 * and the caller answered. */
static void vm_change_done(struct rmd *d, int r, int32_t error, struct json_object *reply, const char *err, void *ctx)
{
	struct vm_change *ch = ctx;
	int e = r < 0 ? r : error == -ENOENT && ch->missing_ok ? 0 : error;
	if (e < 0) {
		json_object_put(ch->msg);
		ipc_reply_error(ch->conn, ch->res, e, "csv-vmagent cannot %s: %s", ch->what, err[0] ? err : strerror(-e));
	} else {
		send_and_answer(d, ch->conn, ch->res, ch->type, ch->msg, ch->message);
	}
	qb_ipcs_connection_unref(ch->conn);
	free(ch);
}

/* Asks csv-vmagent for request id with body (consumed), then sends msg
 * (consumed) of type to the group and answers message. */
static void vm_change(struct rmd *d, qb_ipcs_connection_t *c, int32_t res, int32_t id, struct json_object *body,
		      enum rmd_msg type, struct json_object *msg, const char *what, const char *message)
{
	struct vm_change *ch = calloc(1, sizeof(*ch));
	if (!ch) {
		json_object_put(body);
		json_object_put(msg);
		ipc_reply_error(c, res, -ENOMEM, "out of memory");
		return;
	}
	ch->conn = c;
	ch->res = res;
	ch->type = type;
	ch->msg = msg;
	ch->missing_ok = id == CSVV_REQ_UNDEFINE;
	snprintf(ch->what, sizeof(ch->what), "%s", what);
	snprintf(ch->message, sizeof(ch->message), "%s", message);
	qb_ipcs_connection_ref(c);
	vms_call(d, id, body, vm_change_done, ch);
}

/* VM_CREATE: the local csv-vmagent writes the definition, then the group
 * takes the VM. */
static void vm_create(struct rmd *d, qb_ipcs_connection_t *c, struct json_object *req)
{
	struct json_object *def = r_json_get(req, "definition");
	struct r_vm v;
	char err[512], msg[300], what[128];
	bool start = json_object_get_boolean(r_json_get(req, "start"));
	if (r_vm_from_definition(def, &v, err, sizeof(err)) < 0) {
		ipc_reply_error(c, CSVR_RES_VM_CREATE, -EINVAL, "the definition is refused: %s", err);
		return;
	}
	if (r_vm_index(&d->st, v.name) >= 0) {
		ipc_reply_error(c, CSVR_RES_VM_CREATE, -EEXIST, "there is a VM %s already", v.name);
		return;
	}
	if (d->st.nvms >= R_MAX_VMS) {
		ipc_reply_error(c, CSVR_RES_VM_CREATE, -ENOSPC, "the cluster holds %d VMs at most", R_MAX_VMS);
		return;
	}
	if (!rmd_quorate(d)) {
		ipc_reply_error(c, CSVR_RES_VM_CREATE, -EAGAIN, "this node is not quorate (or not in the csv-rmd group yet)");
		return;
	}
	struct json_object *b = json_object_new_object(), *m = json_object_new_object(), *copy = NULL;
	/* The thread that sends b has a copy of its own: json-c's objects
	 * are not shared between threads. */
	if (json_object_deep_copy(def, &copy, NULL) < 0) {
		json_object_put(b);
		json_object_put(m);
		ipc_reply_error(c, CSVR_RES_VM_CREATE, -ENOMEM, "out of memory");
		return;
	}
	add(b, "definition", copy);
	add(b, "replace", json_object_new_boolean(true));
	add(m, "definition", json_object_get(def));
	add(m, "start", json_object_new_boolean(start));
	snprintf(msg, sizeof(msg), "vm %s created%s", v.name, start ? ", starting" : "");
	snprintf(what, sizeof(what), "write the definition of %s", v.name);
	vm_change(d, c, CSVR_RES_VM_CREATE, CSVV_REQ_DEFINE, b, RMD_VM_ADD, m, what, msg);
}

/* VM_REMOVE: a stopped VM leaves the state, and its definition goes. */
static void vm_remove(struct rmd *d, qb_ipcs_connection_t *c, struct json_object *req)
{
	struct r_vm *v = req_vm(d, c, CSVR_RES_VM_REMOVE, req);
	char msg[200], what[128];
	if (!v)
		return;
	if (v->phase != R_VM_STOPPED || v->want) {
		ipc_reply_error(c, CSVR_RES_VM_REMOVE, -EBUSY, "vm %s is %s%s: stop it first", v->name,
				r_vm_phase_str(v->phase), v->want ? " and wanted running" : "");
		return;
	}
	if (!rmd_quorate(d)) {
		ipc_reply_error(c, CSVR_RES_VM_REMOVE, -EAGAIN, "this node is not quorate (or not in the csv-rmd group yet)");
		return;
	}
	struct json_object *b = json_object_new_object(), *m = json_object_new_object();
	add(b, "name", json_object_new_string(v->name));
	add(m, "vm", json_object_new_string(v->name));
	snprintf(msg, sizeof(msg), "vm %s removed", v->name);
	snprintf(what, sizeof(what), "remove the definition of %s", v->name);
	vm_change(d, c, CSVR_RES_VM_REMOVE, CSVV_REQ_UNDEFINE, b, RMD_VM_REMOVE, m, what, msg);
}

/* VM_START and VM_STOP. */
static void vm_want(struct rmd *d, qb_ipcs_connection_t *c, int32_t res, struct json_object *req, bool want)
{
	struct r_vm *v = req_vm(d, c, res, req);
	char msg[200], why[200];
	if (!v)
		return;
	int64_t to = want ? req_node(d, c, res, req, "to", false) : 0;
	if (to < 0)
		return;
	int i = r_vm_index(&d->st, v->name);
	if (to && v->phase != R_VM_STOPPED && v->node != (uint32_t)to) {
		ipc_reply_error(c, res, -EINVAL, "vm %s is %s on node %u: csvctl vm migrate moves it", v->name,
				r_vm_phase_str(v->phase), v->node);
		return;
	}
	if (to && v->phase == R_VM_STOPPED &&
	    !r_vm_eligible(&d->st, &d->facts, (unsigned)i, (uint32_t)to, why, sizeof(why))) {
		ipc_reply_error(c, res, -EINVAL, "vm %s cannot start there: %s", v->name, why);
		return;
	}
	struct json_object *m = json_object_new_object();
	add(m, "vm", json_object_new_string(v->name));
	add(m, "want", json_object_new_boolean(want));
	add(m, "to", json_object_new_uint64((uint64_t)to));
	add(m, "force", json_object_new_boolean(json_object_get_boolean(r_json_get(req, "force"))));
	snprintf(msg, sizeof(msg), "vm %s: %s", v->name, want ? "starting" : "stopping");
	send_and_answer(d, c, res, RMD_VM_WANT, m, msg);
}

/* VM_MIGRATE. */
static void vm_migrate(struct rmd *d, qb_ipcs_connection_t *c, struct json_object *req)
{
	struct r_vm *v = req_vm(d, c, CSVR_RES_VM_MIGRATE, req);
	const char *kind = r_json_str(req, "kind");
	char msg[200], why[200];
	if (!v)
		return;
	int64_t to = req_node(d, c, CSVR_RES_VM_MIGRATE, req, "to", true);
	if (to < 0)
		return;
	if (kind && strcmp(kind, "live") != 0 && strcmp(kind, "quick") != 0) {
		ipc_reply_error(c, CSVR_RES_VM_MIGRATE, -EINVAL, "\"kind\" is \"live\" or \"quick\", not \"%s\"", kind);
		return;
	}
	bool quick = kind ? strcmp(kind, "quick") == 0 : v->prefer_quick;
	if (v->phase != R_VM_RUNNING) {
		ipc_reply_error(c, CSVR_RES_VM_MIGRATE, -EINVAL, "vm %s is %s, not running: %s", v->name,
				r_vm_phase_str(v->phase), v->reason);
		return;
	}
	if (v->node == (uint32_t)to) {
		ipc_reply_error(c, CSVR_RES_VM_MIGRATE, -EINVAL, "vm %s runs on node %lld already", v->name,
				(long long)to);
		return;
	}
	int i = r_vm_index(&d->st, v->name);
	if (!r_vm_eligible(&d->st, &d->facts, (unsigned)i, (uint32_t)to, why, sizeof(why))) {
		ipc_reply_error(c, CSVR_RES_VM_MIGRATE, -EINVAL, "vm %s cannot migrate there: %s", v->name, why);
		return;
	}
	struct json_object *m = json_object_new_object();
	add(m, "vm", json_object_new_string(v->name));
	add(m, "to", json_object_new_uint64((uint64_t)to));
	add(m, "quick", json_object_new_boolean(quick));
	snprintf(msg, sizeof(msg), "vm %s: %s migration to node %lld", v->name, quick ? "quick" : "live", (long long)to);
	send_and_answer(d, c, CSVR_RES_VM_MIGRATE, RMD_VM_MIGRATE, m, msg);
}

/* NODE_DRAIN and NODE_RESUME. */
static void node_admin(struct rmd *d, qb_ipcs_connection_t *c, int32_t res, struct json_object *req, bool drain)
{
	int64_t node = req_node(d, c, res, req, "node", true);
	char msg[200];
	if (node < 0)
		return;
	bool failback = !drain && json_object_get_boolean(r_json_get(req, "failback"));
	struct json_object *m = json_object_new_object();
	add(m, "node", json_object_new_uint64((uint64_t)node));
	add(m, "drain", json_object_new_boolean(drain));
	add(m, "failback", json_object_new_boolean(failback));
	snprintf(msg, sizeof(msg), "node %lld: %s", (long long)node,
		 drain ? "draining" : failback ? "resumed; its VMs return" : "resumed");
	send_and_answer(d, c, res, RMD_NODE_ADMIN, m, msg);
}

/* VM_DISK and VM_CHECKPOINT: the local csv-vmagent does it when the VM
 * runs here. */
static void vm_forward(struct rmd *d, qb_ipcs_connection_t *c, int32_t res, struct json_object *req)
{
	struct r_vm *v = req_vm(d, c, res, req);
	const char *op = r_json_str(req, "op");
	if (!v)
		return;
	if (v->phase != R_VM_RUNNING) {
		ipc_reply_error(c, res, -EINVAL, "vm %s is %s, not running", v->name, r_vm_phase_str(v->phase));
		return;
	}
	if (v->node != d->node_id) {
		const struct rmd_peer *p = rmd_peer(d, v->node);
		ipc_reply_error(c, res, -EREMOTE, "vm %s runs on node %s: run this on that node%s%s", v->name,
				rmd_node_name(d, v->node), p && p->address[0] ? " at " : "", p ? p->address : "");
		return;
	}
	struct json_object *b = json_object_new_object();
	int32_t id;
	add(b, "name", json_object_new_string(v->name));
	if (res == CSVR_RES_VM_DISK) {
		if (!op || (strcmp(op, "add") != 0 && strcmp(op, "remove") != 0)) {
			json_object_put(b);
			ipc_reply_error(c, res, -EINVAL, "\"op\" is \"add\" or \"remove\"");
			return;
		}
		id = strcmp(op, "add") == 0 ? CSVV_REQ_DISK_ADD : CSVV_REQ_DISK_REMOVE;
		static const char *const keys[] = { "file", "format", "id" };
		for (size_t k = 0; k < 3; k++)
			if (r_json_str(req, keys[k]))  /* copied: b goes to another thread */
				add(b, keys[k], json_object_new_string(r_json_str(req, keys[k])));
	} else {
		id = CSVV_REQ_CHECKPOINT;
		add(b, "op", op ? json_object_new_string(op) : NULL);
		if (r_json_str(req, "checkpoint"))
			add(b, "checkpoint", json_object_new_string(r_json_str(req, "checkpoint")));
	}
	vms_forward(d, c, res, id, b);
}

/* Whether the caller may make request id (of VM req's "vm"); answers
 * -EPERM when not. */
static bool allowed(struct rmd *d, qb_ipcs_connection_t *c, const struct ipc_caller *cl, int32_t id,
		    struct json_object *req)
{
	bool vm_op = id == CSVR_REQ_VM_START || id == CSVR_REQ_VM_STOP || id == CSVR_REQ_VM_MIGRATE ||
		     id == CSVR_REQ_VM_CHECKPOINT;
	const struct r_vm *v = vm_op ? r_vm_find(&d->st, r_json_str(req, "vm")) : NULL;
	if (id == CSVR_REQ_STATE || id == CSVR_REQ_LOCATE || cl->may_change || (v && may_operate(cl, v)))
		return true;
	if (vm_op && v) {
		char groups[300] = "";
		for (uint32_t i = 0; i < v->noperators; i++) {
			size_t l = strlen(groups);
			snprintf(groups + l, sizeof(groups) - l, "%s%s", l ? ", " : "", v->operators[i]);
		}
		ipc_reply_error(c, id, -EPERM, "only root, the %s group or the operator groups of vm %s (%s) may do "
				"this", Q_ADMIN_GROUP, v->name, groups[0] ? groups : "none");
	} else {
		ipc_reply_error(c, id, -EPERM, "only root or the %s group may %s", Q_ADMIN_GROUP,
				vm_op || id == CSVR_REQ_VM_CREATE || id == CSVR_REQ_VM_REMOVE || id == CSVR_REQ_VM_DISK ?
				"manage VMs" : "change the cluster");
	}
	qb_log(LOG_WARNING, "uid %u may not make request %d: refused", (unsigned)cl->uid, id);
	return false;
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
	if (!allowed(d, c, cl, h.id, req)) {
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
		move(d, c, req);
		break;
	case CSVR_REQ_REDIRECT:
		redirect(d, c, req);
		break;
	case CSVR_REQ_VM_CREATE:
		vm_create(d, c, req);
		break;
	case CSVR_REQ_VM_REMOVE:
		vm_remove(d, c, req);
		break;
	case CSVR_REQ_VM_START:
	case CSVR_REQ_VM_STOP:
		vm_want(d, c, res, req, h.id == CSVR_REQ_VM_START);
		break;
	case CSVR_REQ_VM_MIGRATE:
		vm_migrate(d, c, req);
		break;
	case CSVR_REQ_NODE_DRAIN:
	case CSVR_REQ_NODE_RESUME:
		node_admin(d, c, res, req, h.id == CSVR_REQ_NODE_DRAIN);
		break;
	case CSVR_REQ_VM_DISK:
	case CSVR_REQ_VM_CHECKPOINT:
		vm_forward(d, c, res, req);
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
