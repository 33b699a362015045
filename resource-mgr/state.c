/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "state.h"

static const char *const phase_names[] = {
	[R_UNPLACED] = "unplaced",
	[R_STARTING] = "starting",
	[R_RUNNING] = "running",
	[R_STOPPING] = "stopping",
	[R_WAITING_FENCE] = "waiting-fence",
};

const char *r_phase_str(enum r_phase p)
{
	return (unsigned)p < sizeof(phase_names) / sizeof(phase_names[0]) ? phase_names[p] : "?";
}

int r_phase_parse(const char *s, enum r_phase *ret)
{
	for (unsigned i = 0; i < sizeof(phase_names) / sizeof(phase_names[0]); i++)
		if (strcmp(s, phase_names[i]) == 0) {
			*ret = (enum r_phase)i;
			return 0;
		}
	return -EINVAL;
}

int r_volume_index(const struct r_state *s, const char *name_or_uuid)
{
	for (uint32_t k = 0; k < s->nvolumes; k++)
		if (strcmp(s->volumes[k].name, name_or_uuid) == 0 ||
		    (s->volumes[k].uuid[0] && strcmp(s->volumes[k].uuid, name_or_uuid) == 0))
			return (int)k;
	return -ENOENT;
}

struct r_volume *r_volume_find(struct r_state *s, const char *name_or_uuid)
{
	int k = r_volume_index(s, name_or_uuid);
	return k < 0 ? NULL : &s->volumes[k];
}

int r_volume_add(struct r_state *s, const char *name, const char *uuid, uint16_t port)
{
	int k = -1;
	for (uint32_t i = 0; i < s->nvolumes; i++)
		if (strcmp(s->volumes[i].name, name) == 0)
			k = (int)i;
	if (k < 0) {
		if (s->nvolumes >= R_MAX_VOLUMES)
			return -ENOSPC;
		k = (int)s->nvolumes++;
		struct r_volume *v = &s->volumes[k];
		memset(v, 0, sizeof(*v));
		snprintf(v->name, sizeof(v->name), "%s", name);
		v->phase = R_UNPLACED;
		snprintf(v->reason, sizeof(v->reason), "not placed yet");
		s->version++;
	}
	struct r_volume *v = &s->volumes[k];
	if (!v->uuid[0] && uuid && uuid[0]) {
		snprintf(v->uuid, sizeof(v->uuid), "%s", uuid);
		s->version++;
	}
	if (!v->port && port) {
		v->port = port;
		s->version++;
	}
	return k;
}

const struct r_node *r_node_find(const struct r_state *s, uint32_t id)
{
	for (uint32_t i = 0; i < s->nnodes; i++)
		if (s->nodes[i].id == id)
			return &s->nodes[i];
	return NULL;
}

const struct r_node_facts *r_facts_node(const struct r_facts *f, uint32_t id)
{
	for (uint32_t i = 0; i < f->nnodes; i++)
		if (f->nodes[i].id == id)
			return &f->nodes[i];
	return NULL;
}

unsigned r_roles_of(const struct r_state *s, uint32_t node)
{
	unsigned n = 0;
	for (uint32_t k = 0; k < s->nvolumes; k++)
		n += s->volumes[k].holder == node &&
		     (s->volumes[k].phase == R_STARTING || s->volumes[k].phase == R_RUNNING);
	return n;
}

bool r_eligible(const struct r_state *s, const struct r_facts *f, unsigned k, uint32_t node, char *why, size_t len)
{
	const struct r_node_facts *n = r_facts_node(f, node);
	const struct r_node *a = r_node_find(s, node);
	const char *no = NULL;
	if (!n)
		no = "is not a node of the cluster";
	else if (!n->member)
		no = "is not in the quorate membership";
	else if (!n->rmd)
		no = "runs no csv-rmd";
	else if (n->fence != R_FENCE_NONE)
		no = n->fence == R_FENCED ? "is fenced" : "is waiting for its fence";
	else if (a && a->admin != R_ACTIVE)
		no = a->admin == R_PAUSED ? "is paused (drained)" : "is being drained";
	else if (!n->has[k])
		no = "does not serve this volume (no --volume for it)";
	else if (!n->san_ok[k])
		no = "does not see the volume's LUN";
	if (no && why)
		snprintf(why, len, "node %u %s", node, no);
	return !no;
}

/* The node to place volume k on: the operator's target, else an eligible
 * node other than the one that failed last, with the fewest roles, then
 * the lowest id. 0 when none; why says why none. */
static uint32_t choose(const struct r_state *s, const struct r_facts *f, unsigned k, char *why, size_t len)
{
	const struct r_volume *v = &s->volumes[k];
	if (v->target && r_eligible(s, f, k, v->target, NULL, 0))
		return v->target;
	uint32_t best = 0, best_failed = 0;
	unsigned best_roles = 0;
	snprintf(why, len, "no node may hold it");
	for (uint32_t i = 0; i < f->nnodes; i++) {
		uint32_t id = f->nodes[i].id;
		char w[120];
		if (!r_eligible(s, f, k, id, w, sizeof(w))) {
			snprintf(why, len, "no node may hold it (%s)", w);
			continue;
		}
		if (id == v->failed_node) {
			best_failed = id;
			continue;
		}
		unsigned roles = r_roles_of(s, id);
		if (!best || roles < best_roles || (roles == best_roles && id < best)) {
			best = id;
			best_roles = roles;
		}
	}
	return best ? best : best_failed;
}

static void decide(struct r_decision *d, const struct r_state *s, const struct r_volume *v, uint32_t holder,
		   enum r_phase phase, bool clear_target, const char *reason)
{
	memset(d, 0, sizeof(*d));
	d->based_on = s->version;
	snprintf(d->volume, sizeof(d->volume), "%s", v->name);
	d->holder = holder;
	d->phase = phase;
	d->clear_target = clear_target;
	snprintf(d->reason, sizeof(d->reason), "%s", reason);
}

/* Whether a VM has a QEMU on node. */
static bool runs_vms(const struct r_state *s, uint32_t node)
{
	for (uint32_t i = 0; i < s->nvms; i++)
		if (r_vm_on(&s->vms[i], node))
			return true;
	return false;
}

/* A stop for a move that should end on node to. */
static void decide_target(struct r_decision *d, uint32_t to)
{
	d->target = to;
}

/* The next decision for volume k, if it needs one. */
static bool plan_volume(const struct r_state *s, const struct r_facts *f, unsigned k, struct r_decision *d)
{
	const struct r_volume *v = &s->volumes[k];
	const struct r_node_facts *h = v->holder ? r_facts_node(f, v->holder) : NULL;
	char why[200], w[160];

	/* A lost holder: free only once fenced. Its csv-rmd alone gone, the
	 * node still a member: its coordinator died with it. */
	if (v->holder && v->phase != R_UNPLACED && v->phase != R_WAITING_FENCE && (!h || !h->rmd)) {
		if (h && h->member && h->fence == R_FENCE_NONE) {
			snprintf(why, sizeof(why), "csv-rmd of node %u stopped, and its coordinator with it", v->holder);
			decide(d, s, v, 0, R_UNPLACED, false, why);
		} else {
			snprintf(why, sizeof(why), "node %u was lost: waiting until it is fenced", v->holder);
			decide(d, s, v, v->holder, R_WAITING_FENCE, false, why);
		}
		return true;
	}
	switch (v->phase) {
	case R_WAITING_FENCE:
		if (h && h->fence == R_FENCED) {
			snprintf(why, sizeof(why), "node %u is fenced: its coordinator role is free", v->holder);
			decide(d, s, v, 0, R_UNPLACED, false, why);
			return true;
		}
		/* Back in the membership, unfenced, without csv-rmd: its
		 * coordinator died with its csv-rmd. */
		if (h && h->member && h->fence == R_FENCE_NONE && !h->rmd) {
			snprintf(why, sizeof(why), "node %u is back without csv-rmd, and so without its coordinator",
				 v->holder);
			decide(d, s, v, 0, R_UNPLACED, false, why);
			return true;
		}
		return false;
	case R_STOPPING:
		return false;  /* the holder reports */
	case R_STARTING:
		if (f->phase_since_ms[k] && f->now_ms - f->phase_since_ms[k] > R_START_TIMEOUT_MS) {
			snprintf(why, sizeof(why), "the coordinator did not start on node %u within %u s", v->holder,
				 R_START_TIMEOUT_MS / 1000);
			decide(d, s, v, v->holder, R_STOPPING, false, why);
			return true;
		}
		return false;
	case R_RUNNING:
		if (v->target && v->target != v->holder) {
			if (r_eligible(s, f, k, v->target, w, sizeof(w))) {
				snprintf(why, sizeof(why), "moving to node %u on the operator's request", v->target);
				decide(d, s, v, v->holder, R_STOPPING, false, why);
			} else {
				snprintf(why, sizeof(why), "not moved: %s", w);
				decide(d, s, v, v->holder, R_RUNNING, true, why);
			}
			return true;
		}
		if (v->target == v->holder && v->target) {
			decide(d, s, v, v->holder, R_RUNNING, true, v->reason);
			return true;
		}
		/* The holder is drained: the role goes to another node, once
		 * its VMs have left (a move pauses the volume they use). */
		if (r_admin_of(s, v->holder) == R_DRAINING && !runs_vms(s, v->holder)) {
			uint32_t to = choose(s, f, k, w, sizeof(w));
			if (to && to != v->holder) {
				snprintf(why, sizeof(why), "node %u is being drained: moving to node %u", v->holder, to);
				decide(d, s, v, v->holder, R_STOPPING, false, why);
				decide_target(d, to);
				return true;
			}
		}
		/* The holder lost its path to the LUN: a node that sees it
		 * takes over (its clients go on through the new one). */
		if (h && !h->san_ok[k]) {
			uint32_t to = choose(s, f, k, w, sizeof(w));
			if (to && to != v->holder) {
				snprintf(why, sizeof(why), "node %u lost its SAN path: moving to a node that sees the LUN",
					 v->holder);
				decide(d, s, v, v->holder, R_STOPPING, false, why);
				return true;
			}
		}
		return false;
	case R_UNPLACED: {
		if (f->settling)
			return false;
		uint32_t to = choose(s, f, k, w, sizeof(w));
		if (to) {
			snprintf(why, sizeof(why), "placed on node %u", to);
			decide(d, s, v, to, R_STARTING, true, why);
			return true;
		}
		if (strcmp(v->reason, w) != 0 || v->holder) {
			decide(d, s, v, 0, R_UNPLACED, false, w);
			return true;
		}
		return false;
	}
	}
	return false;
}

bool r_plan(const struct r_state *s, const struct r_facts *f, struct r_decision *d)
{
	if (!f->quorate)
		return false;
	for (uint32_t k = 0; k < s->nvolumes; k++)
		if (plan_volume(s, f, k, d))
			return true;
	return r_plan_vms(s, f, d);
}

static bool apply_node_decision(struct r_state *s, const struct r_decision *d)
{
	for (uint32_t i = 0; i < s->nnodes; i++)
		if (s->nodes[i].id == d->node) {
			if (s->nodes[i].admin == d->admin)
				return false;
			s->nodes[i].admin = d->admin;
			s->version++;
			return true;
		}
	return false;
}

static bool apply_vm_decision(struct r_state *s, const struct r_decision *d)
{
	struct r_vm *v = r_vm_find(s, d->vm);
	if (!v)
		return false;
	if (d->vm_phase == R_VM_MIGRATING && v->phase != R_VM_MIGRATING) {
		v->mig_start_ms = d->wall_ms;
		v->port = 0;
	}
	if (d->vm_phase != R_VM_MIGRATING && d->vm_phase != R_VM_WAITING_FENCE)
		v->port = 0;
	/* A wanted VM stopped while starting did not start in time: that
	 * counts against the node like a failed start. */
	if (d->vm_phase == R_VM_STOPPING && v->phase == R_VM_STARTING && v->want)
		r_vm_add_failure(v, v->node, d->wall_ms);
	v->phase = d->vm_phase;
	v->node = d->node;
	v->target = d->target;
	v->quick = d->quick;
	if (d->set_return_to)
		v->return_to = d->return_to;
	if (d->vm_phase == R_VM_STOPPED)
		v->force = false;
	snprintf(v->reason, sizeof(v->reason), "%s", d->reason);
	v->gen++;
	s->version++;
	return true;
}

bool r_apply_decision(struct r_state *s, const struct r_decision *d)
{
	if (d->based_on != s->version)
		return false;  /* made from an older state: the leader plans again */
	if (d->kind == R_DEC_NODE)
		return apply_node_decision(s, d);
	if (d->kind == R_DEC_VM)
		return apply_vm_decision(s, d);
	struct r_volume *v = r_volume_find(s, d->volume);
	if (!v)
		return false;
	if (d->phase == R_STARTING && d->holder != v->holder)
		v->moves++;
	v->holder = d->holder;
	v->phase = d->phase;
	if (d->clear_target)
		v->target = 0;
	else if (d->target)
		v->target = d->target;
	snprintf(v->reason, sizeof(v->reason), "%s", d->reason);
	s->version++;
	return true;
}

bool r_apply_report(struct r_state *s, uint32_t node, const char *volume, enum r_report what, uint64_t epoch,
		    const char *reason)
{
	struct r_volume *v = r_volume_find(s, volume);
	if (!v || v->holder != node || v->phase == R_UNPLACED)
		return false;
	if (what == R_REPORT_RUNNING) {
		if (v->phase == R_STOPPING || (v->phase == R_RUNNING && v->epoch == epoch))
			return false;
		v->phase = R_RUNNING;
		v->epoch = epoch;
		snprintf(v->reason, sizeof(v->reason), "served by node %u since epoch %llu", node,
			 (unsigned long long)epoch);
	} else {
		if (what == R_REPORT_FAILED)
			v->failed_node = node;
		v->holder = 0;
		v->phase = R_UNPLACED;
		snprintf(v->reason, sizeof(v->reason), "%s", reason && reason[0] ? reason : "stopped");
	}
	s->version++;
	return true;
}

bool r_apply_move(struct r_state *s, const char *volume, uint32_t to)
{
	struct r_volume *v = r_volume_find(s, volume);
	if (!v || v->target == to)
		return false;
	v->target = to;
	s->version++;
	return true;
}

bool r_apply_redirect(struct r_state *s, const char *volume, bool on)
{
	struct r_volume *v = r_volume_find(s, volume);
	if (!v || v->redirect == on)
		return false;
	v->redirect = on;
	s->version++;
	return true;
}

/* ---- JSON ------------------------------------------------------------------- */

struct json_object *r_json_get(struct json_object *o, const char *key)
{
	struct json_object *x = NULL;
	return o && json_object_object_get_ex(o, key, &x) ? x : NULL;
}

const char *r_json_str(struct json_object *o, const char *key)
{
	struct json_object *x = r_json_get(o, key);
	return x && json_object_is_type(x, json_type_string) ? json_object_get_string(x) : NULL;
}

static void add(struct json_object *o, const char *k, struct json_object *v)
{
	json_object_object_add(o, k, v);
}

struct json_object *r_state_json(const struct r_state *s)
{
	struct json_object *o = json_object_new_object(), *vols = json_object_new_array(),
			   *nodes = json_object_new_array();
	add(o, "version", json_object_new_uint64(s->version));
	for (uint32_t k = 0; k < s->nvolumes; k++) {
		const struct r_volume *v = &s->volumes[k];
		struct json_object *j = json_object_new_object();
		add(j, "name", json_object_new_string(v->name));
		add(j, "uuid", json_object_new_string(v->uuid));
		add(j, "port", json_object_new_uint64(v->port));
		add(j, "holder", json_object_new_uint64(v->holder));
		add(j, "phase", json_object_new_string(r_phase_str(v->phase)));
		add(j, "reason", json_object_new_string(v->reason));
		add(j, "epoch", json_object_new_uint64(v->epoch));
		add(j, "redirect", json_object_new_boolean(v->redirect));
		add(j, "target", json_object_new_uint64(v->target));
		add(j, "moves", json_object_new_uint64(v->moves));
		add(j, "failed_node", json_object_new_uint64(v->failed_node));
		json_object_array_add(vols, j);
	}
	for (uint32_t i = 0; i < s->nnodes; i++) {
		struct json_object *j = json_object_new_object();
		add(j, "id", json_object_new_uint64(s->nodes[i].id));
		add(j, "admin", json_object_new_string(r_admin_str(s->nodes[i].admin)));
		json_object_array_add(nodes, j);
	}
	add(o, "volumes", vols);
	add(o, "nodes", nodes);
	struct json_object *vms = json_object_new_array();
	for (uint32_t i = 0; i < s->nvms; i++)
		json_object_array_add(vms, r_vm_json(&s->vms[i]));
	add(o, "vms", vms);
	return o;
}

/* Reads member key of o as an unsigned number below max. */
bool r_json_u64(struct json_object *o, const char *key, uint64_t max, uint64_t *ret)
{
	struct json_object *x;
	if (!json_object_object_get_ex(o, key, &x) || !json_object_is_type(x, json_type_int))
		return false;
	int64_t n = json_object_get_int64(x);
	if (n < 0 || (uint64_t)n > max)
		return false;
	*ret = (uint64_t)n;
	return true;
}

bool r_json_strcpy(struct json_object *o, const char *key, char *buf, size_t len)
{
	struct json_object *x;
	if (!json_object_object_get_ex(o, key, &x) || !json_object_is_type(x, json_type_string))
		return false;
	const char *t = json_object_get_string(x);
	if (strlen(t) >= len)
		return false;
	snprintf(buf, len, "%s", t);
	return true;
}

int r_state_from_json(struct json_object *o, struct r_state *s, char *err, size_t errlen)
{
	struct json_object *vols, *nodes, *x;
	memset(s, 0, sizeof(*s));
	if (!json_object_is_type(o, json_type_object) || !r_json_u64(o, "version", UINT64_MAX >> 1, &s->version) ||
	    !json_object_object_get_ex(o, "volumes", &vols) || !json_object_is_type(vols, json_type_array) ||
	    !json_object_object_get_ex(o, "nodes", &nodes) || !json_object_is_type(nodes, json_type_array)) {
		snprintf(err, errlen, "not a csv-rmd state (version, volumes and nodes are needed)");
		return -EINVAL;
	}
	size_t nv = json_object_array_length(vols), nn = json_object_array_length(nodes);
	if (nv > R_MAX_VOLUMES || nn > R_MAX_NODES) {
		snprintf(err, errlen, "%zu volumes and %zu nodes: at most %d and %d", nv, nn, R_MAX_VOLUMES,
			 R_MAX_NODES);
		return -EINVAL;
	}
	for (size_t k = 0; k < nv; k++) {
		struct json_object *j = json_object_array_get_idx(vols, k);
		struct r_volume *v = &s->volumes[k];
		uint64_t port, holder, epoch, target, moves, failed;
		char phase[32];
		if (!json_object_is_type(j, json_type_object) || !r_json_strcpy(j, "name", v->name, sizeof(v->name)) ||
		    !v->name[0] || !r_json_strcpy(j, "uuid", v->uuid, sizeof(v->uuid)) ||
		    !r_json_u64(j, "port", 65535, &port) || !r_json_u64(j, "holder", UINT32_MAX, &holder) ||
		    !r_json_strcpy(j, "phase", phase, sizeof(phase)) || r_phase_parse(phase, &v->phase) < 0 ||
		    !r_json_strcpy(j, "reason", v->reason, sizeof(v->reason)) ||
		    !r_json_u64(j, "epoch", UINT64_MAX >> 1, &epoch) ||
		    !json_object_object_get_ex(j, "redirect", &x) || !json_object_is_type(x, json_type_boolean) ||
		    !r_json_u64(j, "target", UINT32_MAX, &target) || !r_json_u64(j, "moves", UINT64_MAX >> 1, &moves) ||
		    !r_json_u64(j, "failed_node", UINT32_MAX, &failed)) {
			snprintf(err, errlen, "volume %zu of the state is incomplete or wrong", k + 1);
			return -EINVAL;
		}
		if (r_volume_index(s, v->name) >= 0) {
			snprintf(err, errlen, "volume %s is in the state twice", v->name);
			return -EINVAL;
		}
		v->port = (uint16_t)port;
		v->holder = (uint32_t)holder;
		v->epoch = epoch;
		v->redirect = json_object_get_boolean(x);
		v->target = (uint32_t)target;
		v->moves = moves;
		v->failed_node = (uint32_t)failed;
		s->nvolumes++;
	}
	for (size_t i = 0; i < nn; i++) {
		struct json_object *j = json_object_array_get_idx(nodes, i);
		uint64_t id;
		char admin[16];
		if (!json_object_is_type(j, json_type_object) || !r_json_u64(j, "id", UINT32_MAX, &id) || id == 0 ||
		    !r_json_strcpy(j, "admin", admin, sizeof(admin)) || r_admin_parse(admin, &s->nodes[i].admin) < 0) {
			snprintf(err, errlen, "node %zu of the state is incomplete or wrong", i + 1);
			return -EINVAL;
		}
		s->nodes[i].id = (uint32_t)id;
		s->nnodes++;
	}
	/* A state saved before VMs were kept has none. */
	struct json_object *vms = r_json_get(o, "vms");
	if (vms && (!json_object_is_type(vms, json_type_array) || json_object_array_length(vms) > R_MAX_VMS)) {
		snprintf(err, errlen, "the VMs of the state are not an array of at most %d", R_MAX_VMS);
		return -EINVAL;
	}
	for (size_t i = 0; vms && i < json_object_array_length(vms); i++) {
		char e[200];
		if (r_vm_from_json(json_object_array_get_idx(vms, i), &s->vms[i], e, sizeof(e)) < 0) {
			snprintf(err, errlen, "VM %zu of the state: %s", i + 1, e);
			return -EINVAL;
		}
		if (r_vm_index(s, s->vms[i].name) >= 0) {
			snprintf(err, errlen, "VM %s is in the state twice", s->vms[i].name);
			return -EINVAL;
		}
		s->nvms++;
	}
	return 0;
}
