/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The csv-rmd CPG group: every change of the replicated state is a
 * message, applied by every member in the agreed order. At each
 * membership change every member multicasts a hello with its state; when
 * the hellos of all members have arrived, all take the same one (highest
 * version, then lowest sender id), so a node that rejoins, or a cluster
 * that restarts from the states saved on disk, agrees on one state.
 * Messages that arrive during that round wait for its end.
 *
 * A message is a 32-bit type followed by a NUL-terminated JSON text. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <qb/qblog.h>

#include "rmd.h"

static struct rmd *group_daemon;

/* Member key of o when it is a string, else "". */
static const char *jstr(struct json_object *o, const char *key)
{
	const char *t = r_json_str(o, key);
	return t ? t : "";
}

static struct rmd_peer *peer_of(struct rmd *d, uint32_t id)
{
	for (uint32_t i = 0; i < d->npeers; i++)
		if (d->peers[i].id == id)
			return &d->peers[i];
	return NULL;
}

const struct rmd_peer *rmd_peer(const struct rmd *d, uint32_t id)
{
	return peer_of((struct rmd *)d, id);
}

int group_send(struct rmd *d, enum rmd_msg type, struct json_object *o)
{
	const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	uint32_t t = type;
	struct iovec iov[2] = {
		{ .iov_base = &t, .iov_len = sizeof(t) },
		{ .iov_base = (void *)text, .iov_len = strlen(text) + 1 },
	};
	int r = 0;
	if (!d->joined) {
		r = -ENOTCONN;
	} else {
		cs_error_t e;
		for (int tries = 0; tries < 50; tries++) {
			e = cpg_mcast_joined(d->cpg, CPG_TYPE_AGREED, iov, 2);
			if (e != CS_ERR_TRY_AGAIN)
				break;
			usleep(10000);
		}
		if (e != CS_OK) {
			qb_log(LOG_WARNING, "cannot multicast to the csv-rmd group: corosync error %d", e);
			r = -EIO;
		}
	}
	json_object_put(o);
	return r;
}

void group_send_hello(struct rmd *d)
{
	struct json_object *o = json_object_new_object(), *vols = json_object_new_array();
	json_object_object_add(o, "name", json_object_new_string(d->node_name));
	json_object_object_add(o, "address", json_object_new_string(d->address));
	json_object_object_add(o, "members", json_object_new_string(d->members_key));
	json_object_object_add(o, "synced", json_object_new_boolean(d->synced));
	json_object_object_add(o, "vm_memory_mb", json_object_new_uint64(d->vm_memory_mb));
	json_object_object_add(o, "cpus", json_object_new_uint64(d->cpus));
	json_object_object_add(o, "cpu_flags", json_object_new_string(d->cpu_flags));
	for (uint32_t c = 0; c < d->nconf; c++) {
		struct json_object *v = json_object_new_object();
		json_object_object_add(v, "name", json_object_new_string(d->conf[c].name));
		json_object_object_add(v, "uuid", json_object_new_string(d->conf[c].uuid));
		json_object_object_add(v, "port", json_object_new_uint64(d->conf[c].port));
		json_object_array_add(vols, v);
	}
	json_object_object_add(o, "volumes", vols);
	json_object_object_add(o, "state", r_state_json(&d->st));
	group_send(d, RMD_HELLO, o);
	d->hello_ms = rmd_now_ms();
	d->san_sent = false;  /* and the SAN report again, after the hello */
}

void group_round_check(struct rmd *d)
{
	uint64_t now = rmd_now_ms();
	if (!d->joined || d->synced || now - d->round_ms < RMD_HELLO_AGAIN_MS || now - d->hello_ms < RMD_HELLO_AGAIN_MS)
		return;
	char missing[256] = "";
	for (uint32_t i = 0; i < d->npeers; i++)
		if (!d->peers[i].hello) {
			size_t l = strlen(missing);
			snprintf(missing + l, sizeof(missing) - l, "%s%u", l ? ", " : "", d->peers[i].id);
		}
	qb_log(LOG_WARNING, "the hello round of the csv-rmd group (members %s) still lacks the hello of node(s) %s "
	       "after %llu ms: asking again", d->members_key, missing, (unsigned long long)(now - d->round_ms));
	group_send_hello(d);
}

/* ---- applying messages ------------------------------------------------------ */

static bool apply_decide(struct rmd *d, struct json_object *o)
{
	struct r_decision dec;
	if (r_decision_from_json(o, &dec) < 0) {
		qb_log(LOG_WARNING, "a decision csv-rmd cannot read: ignored");
		return false;
	}
	if (!r_apply_decision(&d->st, &dec))
		return false;
	if (dec.kind == R_DEC_VOLUME)
		qb_log(LOG_NOTICE, "volume %s: %s%s%s: %s", dec.volume, r_phase_str(dec.phase),
		       dec.holder ? " on node " : "", dec.holder ? rmd_node_name(d, dec.holder) : "", dec.reason);
	else if (dec.kind == R_DEC_VM)
		qb_log(LOG_NOTICE, "vm %s: %s%s%s: %s", dec.vm, r_vm_phase_str(dec.vm_phase), dec.node ? " on node " : "",
		       dec.node ? rmd_node_name(d, dec.node) : "", dec.reason);
	else
		qb_log(LOG_NOTICE, "node %s: %s", rmd_node_name(d, dec.node), r_admin_str(dec.admin));
	return true;
}

/* The operator's and the nodes' messages about VMs and node admin states. */
static bool apply_vm_message(struct rmd *d, uint32_t type, uint32_t from, struct json_object *o)
{
	const char *vm = jstr(o, "vm");
	uint64_t to = 0, node = 0;
	r_json_u64(o, "to", UINT32_MAX, &to);
	r_json_u64(o, "node", UINT32_MAX, &node);
	bool changed = false;
	switch (type) {
	case RMD_VM_ADD: {
		struct r_vm v;
		char err[200];
		if (r_vm_from_definition(r_json_get(o, "definition"), &v, err, sizeof(err)) < 0) {
			qb_log(LOG_WARNING, "node %u sent a VM definition csv-rmd cannot read (%s): ignored", from, err);
			return false;
		}
		changed = r_apply_vm_add(&d->st, &v, json_object_get_boolean(r_json_get(o, "start")));
		if (changed)
			qb_log(LOG_NOTICE, "vm %s: created (the operator, on node %s)", v.name, rmd_node_name(d, from));
		return changed;
	}
	case RMD_VM_REMOVE:
		changed = r_apply_vm_remove(&d->st, vm);
		if (changed)
			qb_log(LOG_NOTICE, "vm %s: removed (the operator, on node %s)", vm, rmd_node_name(d, from));
		return changed;
	case RMD_VM_WANT: {
		bool want = json_object_get_boolean(r_json_get(o, "want"));
		changed = r_apply_vm_want(&d->st, vm, want, (uint32_t)to, json_object_get_boolean(r_json_get(o, "force")));
		if (changed)
			qb_log(LOG_NOTICE, "vm %s: the operator (on node %s) wants it %s", vm, rmd_node_name(d, from),
			       want ? "running" : "stopped");
		return changed;
	}
	case RMD_VM_MIGRATE: {
		bool quick = json_object_get_boolean(r_json_get(o, "quick"));
		changed = r_apply_vm_migrate(&d->st, vm, (uint32_t)to, quick);
		if (changed)
			qb_log(LOG_NOTICE, "vm %s: the operator (on node %s) migrates it (%s) to node %s", vm,
			       rmd_node_name(d, from), quick ? "quick" : "live", rmd_node_name(d, (uint32_t)to));
		return changed;
	}
	case RMD_NODE_ADMIN: {
		bool drain = json_object_get_boolean(r_json_get(o, "drain"));
		bool failback = json_object_get_boolean(r_json_get(o, "failback"));
		changed = r_apply_node_admin(&d->st, (uint32_t)node, drain, failback);
		if (changed)
			qb_log(LOG_NOTICE, "node %s: %s (the operator, on node %s)", rmd_node_name(d, (uint32_t)node),
			       drain ? "draining" : failback ? "resumed, its VMs return" : "resumed",
			       rmd_node_name(d, from));
		return changed;
	}
	case RMD_VM_REPORT: {
		enum r_vm_report what;
		struct r_vm_report_info info = { .downtime_ms = -1, .reason = jstr(o, "reason") };
		uint64_t x;
		if (r_vm_report_parse(jstr(o, "what"), &what) < 0)
			return false;
		info.port = r_json_u64(o, "port", 65535, &x) ? (uint16_t)x : 0;
		info.time_ms = r_json_u64(o, "time_ms", UINT64_MAX >> 1, &x) ? x : 0;
		info.total_ms = r_json_u64(o, "total_ms", UINT64_MAX >> 1, &x) ? x : 0;
		if (r_json_get(o, "downtime_ms"))
			info.downtime_ms = json_object_get_int64(r_json_get(o, "downtime_ms"));
		changed = r_apply_vm_report(&d->st, from, vm, what, &info);
		if (changed) {
			struct r_vm *v = r_vm_find(&d->st, vm);
			qb_log(what == R_VM_REP_FAILED || what == R_VM_REP_MIGRATE_FAILED ? LOG_WARNING : LOG_NOTICE,
			       "vm %s: node %s reports it %s: now %s%s%s: %s", vm, rmd_node_name(d, from), jstr(o, "what"),
			       v ? r_vm_phase_str(v->phase) : "?", v && v->node ? " on node " : "",
			       v && v->node ? rmd_node_name(d, v->node) : "", v ? v->reason : "");
		}
		return changed;
	}
	}
	return false;
}

static bool apply_report(struct rmd *d, uint32_t from, struct json_object *o)
{
	const char *what = jstr(o, "what");
	enum r_report r = strcmp(what, "running") == 0 ? R_REPORT_RUNNING :
			  strcmp(what, "failed") == 0 ? R_REPORT_FAILED : R_REPORT_STOPPED;
	const char *vol = jstr(o, "volume");
	uint64_t epoch = (uint64_t)json_object_get_int64(r_json_get(o, "epoch"));
	if (!r_apply_report(&d->st, from, vol, r, epoch, jstr(o, "reason")))
		return false;
	qb_log(r == R_REPORT_FAILED ? LOG_WARNING : LOG_NOTICE, "volume %s: node %s reports its coordinator %s%s%s",
	       vol, rmd_node_name(d, from), what, r == R_REPORT_RUNNING ? "" : ": ",
	       r == R_REPORT_RUNNING ? "" : jstr(o, "reason"));
	return true;
}

static void apply_access(struct rmd *d, uint32_t from, struct json_object *o)
{
	struct rmd_peer *p = peer_of(d, from);
	for (uint32_t j = 0; p && j < p->nvolumes; j++)
		if (strcmp(p->volumes[j], jstr(o, "volume")) == 0) {
			snprintf(p->access[j].access, sizeof(p->access[j].access), "%s", jstr(o, "access"));
			snprintf(p->access[j].reason, sizeof(p->access[j].reason), "%s", jstr(o, "reason"));
		}
}

static void apply_san(struct rmd *d, uint32_t from, struct json_object *o)
{
	struct rmd_peer *p = peer_of(d, from);
	struct json_object *san = r_json_get(o, "san");
	if (!p || !san)
		return;
	for (uint32_t j = 0; j < p->nvolumes; j++) {
		struct json_object *x = r_json_get(san, p->volumes[j]);
		bool ok = x && json_object_get_boolean(x);
		if (p->san_known && p->san_ok[j] != ok)
			qb_log(ok ? LOG_NOTICE : LOG_WARNING, "node %s %s volume %s's LUN", rmd_node_name(d, from),
			       ok ? "sees again" : "lost its path to", p->volumes[j]);
		p->san_ok[j] = ok;
	}
	p->san_known = true;
}

/* Applies one message other than a hello; true if the state changed. */
static bool apply(struct rmd *d, uint32_t type, uint32_t from, const char *body)
{
	struct json_object *o = json_tokener_parse(body);
	bool changed = false;
	if (!o) {
		qb_log(LOG_WARNING, "node %u sent a csv-rmd message that is not JSON: ignored", from);
		return false;
	}
	switch (type) {
	case RMD_DECIDE:
		changed = apply_decide(d, o);
		break;
	case RMD_REPORT:
		changed = apply_report(d, from, o);
		break;
	case RMD_MOVE: {
		uint32_t to = (uint32_t)json_object_get_int64(r_json_get(o, "to"));
		changed = r_apply_move(&d->st, jstr(o, "volume"), to);
		if (changed)
			qb_log(LOG_NOTICE, "volume %s: the operator (on node %s) moves it to node %s", jstr(o, "volume"),
			       rmd_node_name(d, from), rmd_node_name(d, to));
		break;
	}
	case RMD_REDIRECT: {
		bool on = json_object_get_boolean(r_json_get(o, "on"));
		changed = r_apply_redirect(&d->st, jstr(o, "volume"), on);
		if (changed)
			qb_log(LOG_NOTICE, "volume %s: file-system redirected mode %s (the operator, on node %s)",
			       jstr(o, "volume"), on ? "on" : "off", rmd_node_name(d, from));
		break;
	}
	case RMD_ACCESS:
		apply_access(d, from, o);
		break;
	case RMD_SAN:
		apply_san(d, from, o);
		break;
	case RMD_VM_ADD:
	case RMD_VM_REMOVE:
	case RMD_VM_WANT:
	case RMD_VM_MIGRATE:
	case RMD_NODE_ADMIN:
	case RMD_VM_REPORT:
		changed = apply_vm_message(d, type, from, o);
		break;
	case RMD_VM_PROGRESS:
		vms_take_progress(d, o);
		break;
	default:
		qb_log(LOG_WARNING, "node %u sent a csv-rmd message of unknown type %u: ignored", from, type);
		break;
	}
	json_object_put(o);
	return changed;
}

/* A hello: the peer's description, and its state for this round. */
static void hello(struct rmd *d, uint32_t from, const char *body)
{
	struct rmd_peer *p = peer_of(d, from);
	struct json_object *o = json_tokener_parse(body), *vols = r_json_get(o, "volumes");
	if (!o || !p) {
		json_object_put(o);
		return;
	}
	snprintf(p->name, sizeof(p->name), "%s", jstr(o, "name"));
	snprintf(p->address, sizeof(p->address), "%s", jstr(o, "address"));
	uint64_t n;
	p->vm_memory_mb = r_json_u64(o, "vm_memory_mb", UINT32_MAX, &n) ? (uint32_t)n : 0;
	p->cpus = r_json_u64(o, "cpus", UINT32_MAX, &n) ? (uint32_t)n : 0;
	if (!r_json_strcpy(o, "cpu_flags", p->cpu_flags, sizeof(p->cpu_flags)))
		p->cpu_flags[0] = '\0';
	p->nvolumes = 0;
	p->san_known = false;
	for (size_t i = 0; vols && i < json_object_array_length(vols) && p->nvolumes < R_MAX_VOLUMES; i++) {
		struct json_object *v = json_object_array_get_idx(vols, i);
		snprintf(p->volumes[p->nvolumes], R_NAME_MAX, "%s", jstr(v, "name"));
		snprintf(p->volume_uuid[p->nvolumes], sizeof(p->volume_uuid[0]), "%s", jstr(v, "uuid"));
		int64_t port = json_object_get_int64(r_json_get(v, "port"));
		p->volume_port[p->nvolumes++] = port > 0 && port < 65536 ? (uint16_t)port : 0;
	}
	p->known = true;

	/* A member still in this round (it says so) may lack this node's
	 * hello: it gets it again, once a second at most. */
	struct json_object *ps = r_json_get(o, "synced");
	if (d->synced && from != d->node_id && ps && !json_object_get_boolean(ps) &&
	    strcmp(jstr(o, "members"), d->members_key) == 0 && rmd_now_ms() - d->hello_answer_ms >= 1000) {
		d->hello_answer_ms = rmd_now_ms();
		group_send_hello(d);
	}
	/* A hello within a round that is over: new facts of its volumes. */
	if (d->synced) {
		uint64_t before = d->st.version;
		for (uint32_t j = 0; j < p->nvolumes; j++)
			r_volume_add(&d->st, p->volumes[j], p->volume_uuid[j], p->volume_port[j]);
		json_object_put(o);
		if (d->st.version != before)
			rmd_changed(d);
		return;
	}
	if (strcmp(jstr(o, "members"), d->members_key) == 0 && !p->hello) {
		struct r_state s;
		char err[200];
		p->hello = true;
		if (r_state_from_json(r_json_get(o, "state"), &s, err, sizeof(err)) < 0) {
			qb_log(LOG_WARNING, "node %u sent a state csv-rmd cannot read (%s): not taken", from, err);
		} else if (!d->have_best || s.version > d->best.version ||
			   (s.version == d->best.version && from < d->best_from)) {
			d->best = s;
			d->best_from = from;
			d->have_best = true;
		}
	}
	json_object_put(o);

	for (uint32_t i = 0; i < d->npeers; i++)
		if (!d->peers[i].hello)
			return;
	if (d->synced)
		return;
	/* The round is over: one state for all, then what waited. */
	if (d->have_best) {
		/* The volumes every member serves are in the state. */
		for (uint32_t i = 0; i < d->npeers; i++)
			for (uint32_t j = 0; j < d->peers[i].nvolumes; j++)
				if (r_volume_add(&d->best, d->peers[i].volumes[j], d->peers[i].volume_uuid[j],
						 d->peers[i].volume_port[j]) == -ENOSPC)
					qb_log(LOG_ERR, "volume %s of node %u: the state holds %d volumes at most",
					       d->peers[i].volumes[j], d->peers[i].id, R_MAX_VOLUMES);
		if (d->best.version != d->st.version || d->best_from != d->node_id)
			qb_log(LOG_INFO, "the group agrees on the state of version %llu (from node %u)",
			       (unsigned long long)d->best.version, d->best_from);
		d->st = d->best;
	}
	d->synced = true;
	qb_log(LOG_NOTICE, "in the csv-rmd group with %u member(s); state version %llu", d->npeers,
	       (unsigned long long)d->st.version);
	for (size_t i = 0; i < d->nqueued; i++) {
		apply(d, d->queued[i].type, d->queued[i].from, d->queued[i].body);
		free(d->queued[i].body);
	}
	free(d->queued);
	d->queued = NULL;
	d->nqueued = 0;
	rmd_changed(d);
}

static void deliver(cpg_handle_t h, const struct cpg_name *group, uint32_t nodeid, uint32_t pid, void *msg,
		    size_t len)
{
	struct rmd *d = group_daemon;
	uint32_t type;
	if (len <= sizeof(type) || ((char *)msg)[len - 1] != '\0') {
		qb_log(LOG_WARNING, "node %u sent a truncated csv-rmd message (%zu bytes): ignored", nodeid, len);
		return;
	}
	memcpy(&type, msg, sizeof(type));
	const char *body = (const char *)msg + sizeof(type);
	if (type == RMD_HELLO) {
		hello(d, nodeid, body);
		return;
	}
	if (!d->synced) {
		struct rmd_queued *q = realloc(d->queued, (d->nqueued + 1) * sizeof(*q));
		char *copy = strdup(body);
		if (!q || !copy) {
			free(copy);
			if (q)
				d->queued = q;
			qb_log(LOG_ERR, "out of memory: a csv-rmd message of node %u is lost", nodeid);
			return;
		}
		d->queued = q;
		q[d->nqueued++] = (struct rmd_queued){ .type = type, .from = nodeid, .body = copy };
		return;
	}
	if (apply(d, type, nodeid, body))
		rmd_changed(d);
}

static int by_nodeid(const void *a, const void *b)
{
	const struct cpg_address *x = a, *y = b;
	return x->nodeid < y->nodeid ? -1 : x->nodeid > y->nodeid;
}

static void confchg(cpg_handle_t h, const struct cpg_name *group, const struct cpg_address *members,
		    size_t nmembers, const struct cpg_address *left, size_t nleft, const struct cpg_address *joined,
		    size_t njoined)
{
	struct rmd *d = group_daemon;
	struct cpg_address sorted[R_MAX_NODES];
	size_t n = nmembers < R_MAX_NODES ? nmembers : R_MAX_NODES;
	memcpy(sorted, members, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), by_nodeid);

	struct rmd_peer peers[R_MAX_NODES];
	uint32_t np = 0;
	d->members_key[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		/* One csv-rmd per node: a second one of a node is not counted. */
		if (np && peers[np - 1].id == sorted[i].nodeid)
			continue;
		struct rmd_peer *old = peer_of(d, sorted[i].nodeid);
		if (old)
			peers[np] = *old;
		else
			memset(&peers[np], 0, sizeof(peers[np]));
		peers[np].id = sorted[i].nodeid;
		peers[np].pid = sorted[i].pid;
		peers[np].hello = false;
		np++;
		size_t l = strlen(d->members_key);
		snprintf(d->members_key + l, sizeof(d->members_key) - l, "%s%u", l ? "," : "", sorted[i].nodeid);
	}
	for (size_t i = 0; i < nleft; i++)
		qb_log(LOG_NOTICE, "csv-rmd of node %s left the group", rmd_node_name(d, left[i].nodeid));
	for (size_t i = 0; i < njoined; i++)
		if (joined[i].nodeid != d->node_id)
			qb_log(LOG_NOTICE, "csv-rmd of node %u joined the group", joined[i].nodeid);
	memcpy(d->peers, peers, np * sizeof(*peers));
	d->npeers = np;
	d->synced = false;
	d->have_best = false;
	d->round_ms = rmd_now_ms();
	group_send_hello(d);
}

static int32_t on_cpg(int32_t fd, int32_t revents, void *data)
{
	struct rmd *d = data;
	cs_error_t e = cpg_dispatch(d->cpg, CS_DISPATCH_ALL);
	if (e != CS_OK && e != CS_ERR_TRY_AGAIN) {
		qb_log(LOG_CRIT, "lost the csv-rmd group (corosync error %d): this node stops its coordinators "
		       "and joins again when corosync is back", e);
		group_stop(d);
		roles_stop_all(d, true, "this node left the csv-rmd group");
		return -1;
	}
	return 0;
}

int group_start(struct rmd *d, char *err, size_t errlen)
{
	static cpg_model_v1_data_t model = {
		.model = CPG_MODEL_V1,
		.cpg_deliver_fn = deliver,
		.cpg_confchg_fn = confchg,
	};
	struct cpg_name name;
	group_daemon = d;
	cs_error_t e = cpg_model_initialize(&d->cpg, CPG_MODEL_V1, (cpg_model_data_t *)&model, d);
	if (e != CS_OK) {
		snprintf(err, errlen, "cannot connect to corosync's CPG service (error %d): is corosync running?", e);
		return -ENOTCONN;
	}
	snprintf(name.value, sizeof(name.value), "%s", RMD_GROUP);
	name.length = (uint32_t)strlen(RMD_GROUP);
	e = cpg_join(d->cpg, &name);
	for (int tries = 0; e == CS_ERR_TRY_AGAIN && tries < 100; tries++) {
		usleep(20000);
		e = cpg_join(d->cpg, &name);
	}
	if (e != CS_OK) {
		cpg_finalize(d->cpg);
		snprintf(err, errlen, "cannot join the CPG group %s (corosync error %d)", RMD_GROUP, e);
		return -EIO;
	}
	int fd;
	cpg_fd_get(d->cpg, &fd);
	d->cpg_fd = fd;
	qb_loop_poll_add(d->loop, QB_LOOP_HIGH, fd, POLLIN, d, on_cpg);
	d->joined = true;
	return 0;
}

void group_stop(struct rmd *d)
{
	if (!d->joined)
		return;
	qb_loop_poll_del(d->loop, d->cpg_fd);
	cpg_finalize(d->cpg);
	d->joined = false;
	d->synced = false;
	d->npeers = 0;
	for (size_t i = 0; i < d->nqueued; i++)
		free(d->queued[i].body);
	free(d->queued);
	d->queued = NULL;
	d->nqueued = 0;
}
