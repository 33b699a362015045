/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The VM roles of the replicated state and their rules, with no I/O (see
 * state.h): where each VM runs, how it gets there (start, live or quick
 * migration, restart after a failure or a fence), the restart policy,
 * placement by memory, preferred nodes and anti-affinity, drain and
 * failback. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"

static const char *const vm_phase_names[] = {
	[R_VM_STOPPED] = "stopped",     [R_VM_STARTING] = "starting",   [R_VM_RUNNING] = "running",
	[R_VM_STOPPING] = "stopping",   [R_VM_MIGRATING] = "migrating", [R_VM_WAITING_FENCE] = "waiting-fence",
};
static const char *const admin_names[] = { [R_ACTIVE] = "active", [R_DRAINING] = "draining", [R_PAUSED] = "paused" };
static const char *const report_names[] = {
	[R_VM_REP_RUNNING] = "running",   [R_VM_REP_STOPPED] = "stopped",
	[R_VM_REP_FAILED] = "failed",     [R_VM_REP_INCOMING] = "incoming",
	[R_VM_REP_MIGRATED] = "migrated", [R_VM_REP_MIGRATE_FAILED] = "migrate-failed",
	[R_VM_REP_SAVED] = "saved",
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* The index of s in names, or -EINVAL. */
static int parse_name(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; s && i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -EINVAL;
}

const char *r_vm_phase_str(enum r_vm_phase p)
{
	return (unsigned)p < N_OF(vm_phase_names) ? vm_phase_names[p] : "?";
}

int r_vm_phase_parse(const char *s, enum r_vm_phase *ret)
{
	int i = parse_name(vm_phase_names, N_OF(vm_phase_names), s);
	if (i >= 0)
		*ret = (enum r_vm_phase)i;
	return i < 0 ? i : 0;
}

const char *r_admin_str(enum r_admin a)
{
	return (unsigned)a < N_OF(admin_names) ? admin_names[a] : "?";
}

int r_admin_parse(const char *s, enum r_admin *ret)
{
	int i = parse_name(admin_names, N_OF(admin_names), s);
	if (i >= 0)
		*ret = (enum r_admin)i;
	return i < 0 ? i : 0;
}

const char *r_vm_report_str(enum r_vm_report r)
{
	return (unsigned)r < N_OF(report_names) ? report_names[r] : "?";
}

int r_vm_report_parse(const char *s, enum r_vm_report *ret)
{
	int i = parse_name(report_names, N_OF(report_names), s);
	if (i >= 0)
		*ret = (enum r_vm_report)i;
	return i < 0 ? i : 0;
}

enum r_admin r_admin_of(const struct r_state *s, uint32_t node)
{
	const struct r_node *n = r_node_find(s, node);
	return n ? n->admin : R_ACTIVE;
}

int r_vm_index(const struct r_state *s, const char *name)
{
	for (uint32_t i = 0; name && i < s->nvms; i++)
		if (strcmp(s->vms[i].name, name) == 0)
			return (int)i;
	return -ENOENT;
}

struct r_vm *r_vm_find(struct r_state *s, const char *name)
{
	int i = r_vm_index(s, name);
	return i < 0 ? NULL : &s->vms[i];
}

bool r_vm_on(const struct r_vm *v, uint32_t node)
{
	if (!node)
		return false;
	if ((v->phase == R_VM_MIGRATING || v->phase == R_VM_WAITING_FENCE) && v->target == node)
		return true;  /* its QEMU waits for the guest there, or runs it */
	return v->phase != R_VM_STOPPED && v->node == node;
}

uint32_t r_vm_memory_used(const struct r_state *s, uint32_t node)
{
	uint32_t mb = 0;
	for (uint32_t i = 0; i < s->nvms; i++)
		if (r_vm_on(&s->vms[i], node))
			mb += s->vms[i].memory_mb;
	return mb;
}

/* ---- the definition --------------------------------------------------------- */

/* Whether name may name a VM: 1 to 63 letters, digits, '-', '_', '.', not
 * starting with '.' (as csv-vmagent wants). */
static bool vm_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n >= R_NAME_MAX || name[0] == '.')
		return false;
	for (const char *p = name; *p; p++)
		if (!(*p == '-' || *p == '_' || *p == '.' || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= 'A' && *p <= 'Z')))
			return false;
	return true;
}

/* Whether s is "never", "immediate" or an hour window "HH-HH". */
static bool failback_ok(const char *s)
{
	if (strcmp(s, "never") == 0 || strcmp(s, "immediate") == 0)
		return true;
	if (strlen(s) != 5 || s[2] != '-')
		return false;
	for (int i = 0; i < 5; i++)
		if (i != 2 && (s[i] < '0' || s[i] > '9'))
			return false;
	return (s[0] - '0') * 10 + (s[1] - '0') < 24 && (s[3] - '0') * 10 + (s[4] - '0') < 24;
}

/* An optional unsigned member of o into *ret (kept when missing); false
 * when it is there and not a number in [min, max]. */
static bool opt_uint(struct json_object *o, const char *key, uint64_t min, uint64_t max, uint32_t *ret)
{
	struct json_object *x = r_json_get(o, key);
	uint64_t n;
	if (!x)
		return true;
	if (!r_json_u64(o, key, max, &n) || n < min)
		return false;
	*ret = (uint32_t)n;
	return true;
}

/* The placement fields of a definition, past name, memory and vCPUs. */
static int placement_from_definition(struct json_object *def, struct r_vm *v, char *err, size_t errlen)
{
	struct json_object *x;
	if ((x = r_json_get(def, "priority")) && !json_object_is_type(x, json_type_int))
		return snprintf(err, errlen, "\"priority\" is not a whole number"), -EINVAL;
	v->priority = x ? json_object_get_int64(x) : 0;
	if ((x = r_json_get(def, "preferred_nodes"))) {
		if (!json_object_is_type(x, json_type_array) || json_object_array_length(x) > R_VM_MAX_PREFERRED)
			return snprintf(err, errlen, "\"preferred_nodes\" is not an array of at most %d node ids",
					R_VM_MAX_PREFERRED), -EINVAL;
		for (size_t i = 0; i < json_object_array_length(x); i++) {
			struct json_object *n = json_object_array_get_idx(x, i);
			int64_t id = json_object_is_type(n, json_type_int) ? json_object_get_int64(n) : 0;
			if (id <= 0 || id > UINT32_MAX)
				return snprintf(err, errlen, "\"preferred_nodes\"[%zu] is not a node id", i), -EINVAL;
			v->preferred[v->npreferred++] = (uint32_t)id;
		}
	}
	if ((x = r_json_get(def, "anti_affinity"))) {
		struct json_object *hard = r_json_get(x, "hard");
		if (!r_json_strcpy(x, "class", v->anti_affinity, sizeof(v->anti_affinity)) || !v->anti_affinity[0] ||
		    (hard && !json_object_is_type(hard, json_type_boolean)))
			return snprintf(err, errlen, "\"anti_affinity\" is not {\"class\": NAME, \"hard\": BOOL}"),
			       -EINVAL;
		v->anti_hard = hard && json_object_get_boolean(hard);
	}
	if ((x = r_json_get(def, "restart"))) {
		/* Given, its period is an hour and its failures never expire
		 * unless it says otherwise (as csv-vmagent reads it). */
		v->restart_period_s = 3600;
		v->failure_expire_s = 0;
		if (!json_object_is_type(x, json_type_object) || !opt_uint(x, "max", 0, 100, &v->restart_max) ||
		    !opt_uint(x, "period_s", 1, R_VM_SECONDS_MAX, &v->restart_period_s) ||
		    !opt_uint(x, "expire_s", 0, R_VM_SECONDS_MAX, &v->failure_expire_s))
			return snprintf(err, errlen, "\"restart\" is not {\"max\": 0..100, \"period_s\": 1..%d, "
					"\"expire_s\": 0..%d (0: never)}", R_VM_SECONDS_MAX, R_VM_SECONDS_MAX), -EINVAL;
	}
	if ((x = r_json_get(def, "failback")) &&
	    (!r_json_strcpy(def, "failback", v->failback, sizeof(v->failback)) || !failback_ok(v->failback)))
		return snprintf(err, errlen, "\"failback\" is not \"never\", \"immediate\" or \"HH-HH\""), -EINVAL;
	if ((x = r_json_get(def, "migration"))) {
		const char *m = r_json_str(def, "migration");
		if (!m || (strcmp(m, "live") != 0 && strcmp(m, "quick") != 0))
			return snprintf(err, errlen, "\"migration\" is not \"live\" or \"quick\""), -EINVAL;
		v->prefer_quick = strcmp(m, "quick") == 0;
	}
	if ((x = r_json_get(def, "cpu_compat"))) {
		if (!json_object_is_type(x, json_type_boolean))
			return snprintf(err, errlen, "\"cpu_compat\" is not true or false"), -EINVAL;
		v->cpu_compat = json_object_get_boolean(x);
	}
	if ((x = r_json_get(def, "operators"))) {
		if (!json_object_is_type(x, json_type_array) || json_object_array_length(x) > R_VM_MAX_OPERATORS)
			return snprintf(err, errlen, "\"operators\" is not an array of at most %d group names",
					R_VM_MAX_OPERATORS), -EINVAL;
		for (size_t i = 0; i < json_object_array_length(x); i++) {
			struct json_object *g = json_object_array_get_idx(x, i);
			const char *t = json_object_is_type(g, json_type_string) ? json_object_get_string(g) : "";
			if (!t[0] || strlen(t) >= R_GROUP_NAME_MAX)
				return snprintf(err, errlen, "\"operators\"[%zu] is not a group name", i), -EINVAL;
			snprintf(v->operators[v->noperators++], R_GROUP_NAME_MAX, "%s", t);
		}
	}
	return 0;
}

int r_vm_from_definition(struct json_object *def, struct r_vm *ret, char *err, size_t errlen)
{
	struct r_vm v;
	uint64_t n;
	memset(&v, 0, sizeof(v));
	if (!json_object_is_type(def, json_type_object))
		return snprintf(err, errlen, "the definition is not a JSON object"), -EINVAL;
	if (!r_json_strcpy(def, "name", v.name, sizeof(v.name)) || !vm_name_ok(v.name))
		return snprintf(err, errlen, "\"name\" is not 1 to 63 letters, digits, '-', '_' or '.'"), -EINVAL;
	if (!r_json_u64(def, "memory_mb", 65536, &n) || n < 16)
		return snprintf(err, errlen, "\"memory_mb\" is not 16..65536"), -EINVAL;
	v.memory_mb = (uint32_t)n;
	if (!r_json_u64(def, "vcpus", 64, &n) || n < 1)
		return snprintf(err, errlen, "\"vcpus\" is not 1..64"), -EINVAL;
	v.vcpus = (uint32_t)n;
	v.restart_max = 1;
	v.restart_period_s = 900;
	v.failure_expire_s = 3600;
	snprintf(v.failback, sizeof(v.failback), "never");
	int r = placement_from_definition(def, &v, err, errlen);
	if (r < 0)
		return r;
	v.phase = R_VM_STOPPED;
	snprintf(v.reason, sizeof(v.reason), "created");
	*ret = v;
	return 0;
}

/* ---- placement -------------------------------------------------------------- */

/* Whether a failure of v at t_ms has expired at now_ms (expire_s 0:
 * never). */
static bool expired(const struct r_vm *v, uint64_t t_ms, uint64_t now_ms)
{
	return v->failure_expire_s && now_ms - t_ms >= (uint64_t)v->failure_expire_s * 1000u;
}

/* The failures of v on node that count against it now: those younger than
 * the restart period, and not expired. */
static unsigned recent_failures(const struct r_vm *v, uint32_t node, uint64_t now_ms)
{
	uint64_t window = (uint64_t)(v->failure_expire_s && v->failure_expire_s < v->restart_period_s ?
				     v->failure_expire_s : v->restart_period_s) * 1000u;
	unsigned n = 0;
	for (uint32_t i = 0; i < v->nfailures; i++)
		n += v->failures[i].node == node && now_ms - v->failures[i].time_ms < window;
	return n;
}

/* Whether another VM of v's anti-affinity class is on node. */
static bool anti_conflict(const struct r_state *s, const struct r_vm *v, uint32_t node)
{
	if (!v->anti_affinity[0])
		return false;
	for (uint32_t i = 0; i < s->nvms; i++) {
		const struct r_vm *o = &s->vms[i];
		if (o != v && strcmp(o->anti_affinity, v->anti_affinity) == 0 && r_vm_on(o, node))
			return true;
	}
	return false;
}

/* Whether the space-separated list has word. */
static bool has_word(const char *list, const char *word, size_t wlen)
{
	for (const char *p = list; *p;) {
		size_t l = strcspn(p, " ");
		if (l == wlen && strncmp(p, word, wlen) == 0)
			return true;
		p += l;
		p += strspn(p, " ");
	}
	return false;
}

void r_cpu_common(const char *const *lists, unsigned n, char *buf, size_t len)
{
	size_t used = 0;
	buf[0] = '\0';
	for (const char *p = n ? lists[0] : ""; *p;) {
		size_t l = strcspn(p, " ");
		bool all = l > 0;
		for (unsigned i = 1; i < n && all; i++)
			all = has_word(lists[i], p, l);
		if (all && used + l + 2 <= len) {
			used += (size_t)snprintf(buf + used, len - used, "%s%.*s", used ? " " : "", (int)l, p);
		}
		p += l;
		p += strspn(p, " ");
	}
}

/* Whether a running VM may move to node `to` as its CPU goes: a VM with
 * cpu_compat uses the flags common to the cluster; another one those of
 * its node, which `to` must all have. */
static bool cpu_ok(const struct r_vm *v, const struct r_facts *f, uint32_t to, char *why, size_t len)
{
	const struct r_node_facts *from = r_facts_node(f, v->node), *n = r_facts_node(f, to);
	char missing[200] = "";
	size_t used = 0;
	if (v->cpu_compat || !from || !n || !from->cpu_flags || !n->cpu_flags)
		return true;
	for (const char *p = from->cpu_flags; *p;) {
		size_t l = strcspn(p, " ");
		if (l && !has_word(n->cpu_flags, p, l) && used + l + 5 < sizeof(missing))
			used += (size_t)snprintf(missing + used, sizeof(missing) - used, "%s%.*s", used ? " " : "", (int)l, p);
		p += l;
		p += strspn(p, " ");
	}
	if (missing[0])
		snprintf(why, len, "lacks CPU feature(s) %s that %s uses (it runs on node %u; \"cpu_compat\": true "
			 "limits it to the cluster's common set)", missing, v->name, v->node);
	return !missing[0];
}

bool r_vm_eligible(const struct r_state *s, const struct r_facts *f, unsigned i, uint32_t node, char *why,
		   size_t len)
{
	const struct r_vm *v = &s->vms[i];
	const struct r_node_facts *n = r_facts_node(f, node);
	enum r_admin admin = r_admin_of(s, node);
	char no[300] = "";
	uint32_t used = r_vm_memory_used(s, node) - (r_vm_on(v, node) ? v->memory_mb : 0);
	unsigned fails = recent_failures(v, node, f->wall_ms);
	if (!n)
		snprintf(no, sizeof(no), "is not a node of the cluster");
	else if (!n->member)
		snprintf(no, sizeof(no), "is not in the quorate membership");
	else if (!n->rmd)
		snprintf(no, sizeof(no), "runs no csv-rmd");
	else if (n->fence != R_FENCE_NONE)
		snprintf(no, sizeof(no), "%s", n->fence == R_FENCED ? "is fenced" : "is waiting for its fence");
	else if (admin != R_ACTIVE)
		snprintf(no, sizeof(no), "%s", admin == R_PAUSED ? "is paused (drained)" : "is being drained");
	else if (used + v->memory_mb > n->vm_memory_mb)
		snprintf(no, sizeof(no), "has %u MB free for VMs of %u, and %s needs %u MB",
			 n->vm_memory_mb > used ? n->vm_memory_mb - used : 0, n->vm_memory_mb, v->name, v->memory_mb);
	else if (v->anti_hard && anti_conflict(s, v, node))
		snprintf(no, sizeof(no), "runs another VM of anti-affinity class %s", v->anti_affinity);
	else if (fails > v->restart_max)
		snprintf(no, sizeof(no), "saw %s fail %u times in %u s (restart max %u)", v->name, fails,
			 v->restart_period_s, v->restart_max);
	else if (v->phase == R_VM_RUNNING && v->node && node != v->node)
		cpu_ok(v, f, node, no, sizeof(no));  /* no says which features are missing */
	if (no[0] && why)
		snprintf(why, len, "node %u %s", node, no);
	return !no[0];
}

/* The position of node in v's preferred nodes; npreferred when not there. */
static uint32_t preference(const struct r_vm *v, uint32_t node)
{
	for (uint32_t i = 0; i < v->npreferred; i++)
		if (v->preferred[i] == node)
			return i;
	return v->npreferred;
}

/* The node whose failure of v is the latest and still counts; 0 none. */
static uint32_t last_failed_node(const struct r_vm *v, uint64_t now_ms)
{
	uint32_t node = 0;
	uint64_t t = 0;
	for (uint32_t i = 0; i < v->nfailures; i++)
		if (!expired(v, v->failures[i].time_ms, now_ms) && v->failures[i].time_ms >= t) {
			t = v->failures[i].time_ms;
			node = v->failures[i].node;
		}
	return node;
}

/* Whether node a is a better home than b for VM i: preferred first, then
 * without a VM of its anti-affinity class, then more free memory, then
 * fewer vCPUs per CPU, then the lower id. */
static bool better(const struct r_state *s, const struct r_facts *f, const struct r_vm *v, uint32_t a, uint32_t b)
{
	uint32_t pa = preference(v, a), pb = preference(v, b);
	if (pa != pb)
		return pa < pb;
	bool ca = anti_conflict(s, v, a), cb = anti_conflict(s, v, b);
	if (ca != cb)
		return !ca;
	const struct r_node_facts *na = r_facts_node(f, a), *nb = r_facts_node(f, b);
	int64_t fa = (int64_t)na->vm_memory_mb - r_vm_memory_used(s, a);
	int64_t fb = (int64_t)nb->vm_memory_mb - r_vm_memory_used(s, b);
	if (fa != fb)
		return fa > fb;
	uint64_t va = 0, vb = 0;
	for (uint32_t i = 0; i < s->nvms; i++) {
		va += r_vm_on(&s->vms[i], a) ? s->vms[i].vcpus : 0;
		vb += r_vm_on(&s->vms[i], b) ? s->vms[i].vcpus : 0;
	}
	uint64_t la = va * (nb->cpus ? nb->cpus : 1), lb = vb * (na->cpus ? na->cpus : 1);
	if (la != lb)
		return la < lb;
	return a < b;
}

/* The node VM i should go to, other than `away`: the operator's target,
 * else the node it failed on last while the restart policy allows, else
 * the best eligible node. 0 when none; why says why none. */
static uint32_t choose_vm(const struct r_state *s, const struct r_facts *f, unsigned i, uint32_t away, char *why,
			  size_t len)
{
	const struct r_vm *v = &s->vms[i];
	if (v->target && v->target != away && r_vm_eligible(s, f, i, v->target, NULL, 0))
		return v->target;
	uint32_t last = last_failed_node(v, f->wall_ms);
	if (last && last != away && r_vm_eligible(s, f, i, last, NULL, 0))
		return last;
	uint32_t best = 0;
	snprintf(why, len, "no node may run it");
	for (uint32_t k = 0; k < f->nnodes; k++) {
		uint32_t id = f->nodes[k].id;
		char w[136];
		if (id == away)
			continue;
		if (!r_vm_eligible(s, f, i, id, w, sizeof(w))) {
			snprintf(why, len, "no node may run it (%s)", w);
			continue;
		}
		if (!best || better(s, f, v, id, best))
			best = id;
	}
	return best;
}

/* ---- the plan --------------------------------------------------------------- */

static bool decide_vm(struct r_decision *d, const struct r_state *s, const struct r_vm *v, enum r_vm_phase phase,
		      uint32_t node, uint32_t target, bool quick, const char *reason)
{
	memset(d, 0, sizeof(*d));
	d->kind = R_DEC_VM;
	d->based_on = s->version;
	snprintf(d->vm, sizeof(d->vm), "%s", v->name);
	d->vm_phase = phase;
	d->node = node;
	d->target = target;
	d->quick = quick;
	d->return_to = v->return_to;
	snprintf(d->reason, sizeof(d->reason), "%.199s", reason);
	return true;
}

/* Only the reason of v changes (and its target is dropped), if it is new. */
static bool decide_reason(struct r_decision *d, const struct r_state *s, const struct r_vm *v, const char *reason)
{
	if (strcmp(v->reason, reason) == 0 && !v->target)
		return false;
	return decide_vm(d, s, v, v->phase, v->node, 0, v->quick, reason);
}

/* Whether the failback policy of v allows a move now. */
static bool failback_now(const struct r_vm *v, int hour)
{
	unsigned a, b;
	if (strcmp(v->failback, "immediate") == 0)
		return true;
	if (sscanf(v->failback, "%2u-%2u", &a, &b) != 2)
		return false;
	return a <= b ? hour >= (int)a && hour < (int)b : hour >= (int)a || hour < (int)b;
}

/* The preferred node v should fail back to now, if one ranks above its
 * node and may take it; 0 none. */
static uint32_t failback_target(const struct r_state *s, const struct r_facts *f, unsigned i)
{
	const struct r_vm *v = &s->vms[i];
	uint32_t here = preference(v, v->node);
	if (!v->npreferred || !failback_now(v, f->hour))
		return 0;
	/* A failback that failed is not tried again on its own: the
	 * operator migrates it, or a later failover makes a new start. */
	if (v->have_last_mig && !v->last_mig.ok && preference(v, v->last_mig.to) < here)
		return 0;
	for (uint32_t p = 0; p < here; p++)
		if (r_vm_eligible(s, f, i, v->preferred[p], NULL, 0))
			return v->preferred[p];
	return 0;
}

/* Whether node n is gone: out of the membership, or being fenced. */
static bool lost(const struct r_node_facts *n)
{
	return !n || !n->member || n->fence != R_FENCE_NONE;
}

/* The next decision for a running VM, if any. */
static bool plan_running(const struct r_state *s, const struct r_facts *f, unsigned i, struct r_decision *d)
{
	const struct r_vm *v = &s->vms[i];
	char why[224], w[160];
	if (!v->want) {
		snprintf(why, sizeof(why), "stopping on node %u%s", v->node, v->force ? " (power off)" : "");
		return decide_vm(d, s, v, R_VM_STOPPING, v->node, 0, false, why);
	}
	if (r_admin_of(s, v->node) == R_DRAINING) {
		uint32_t to = choose_vm(s, f, i, v->node, w, sizeof(w));
		bool quick = v->prefer_quick || v->live_failed;
		if (!to) {
			snprintf(why, sizeof(why), "cannot leave node %u, which is being drained: %s", v->node, w);
			return decide_reason(d, s, v, why);
		}
		snprintf(why, sizeof(why), "node %u is being drained: %s migration to node %u", v->node,
			 quick ? "quick" : "live", to);
		decide_vm(d, s, v, R_VM_MIGRATING, v->node, to, quick, why);
		d->set_return_to = true;
		d->return_to = v->node;
		return true;
	}
	if (v->target && v->target != v->node) {
		if (!r_vm_eligible(s, f, i, v->target, w, sizeof(w))) {
			snprintf(why, sizeof(why), "not migrated: %s", w);
			return decide_vm(d, s, v, R_VM_RUNNING, v->node, 0, false, why);
		}
		snprintf(why, sizeof(why), "%s migration to node %u", v->quick ? "quick" : "live", v->target);
		return decide_vm(d, s, v, R_VM_MIGRATING, v->node, v->target, v->quick, why);
	}
	if (v->target == v->node && v->target)
		return decide_vm(d, s, v, R_VM_RUNNING, v->node, 0, false, v->reason);
	uint32_t back = failback_target(s, f, i);
	if (back) {
		bool quick = v->prefer_quick || v->live_failed;
		snprintf(why, sizeof(why), "failback to its preferred node %u: %s migration", back,
			 quick ? "quick" : "live");
		return decide_vm(d, s, v, R_VM_MIGRATING, v->node, back, quick, why);
	}
	return false;
}

/* The next decision for VM i, if it needs one. */
static bool plan_vm(const struct r_state *s, const struct r_facts *f, unsigned i, struct r_decision *d)
{
	const struct r_vm *v = &s->vms[i];
	const struct r_node_facts *h = v->node ? r_facts_node(f, v->node) : NULL;
	char why[200], w[160];

	if (v->phase != R_VM_STOPPED && v->phase != R_VM_WAITING_FENCE && lost(h)) {
		snprintf(why, sizeof(why), "node %u was lost: %s waits until it is fenced", v->node, v->name);
		return decide_vm(d, s, v, R_VM_WAITING_FENCE, v->node, v->target, v->quick, why);
	}
	switch (v->phase) {
	case R_VM_STOPPED: {
		if (!v->want || f->settling)
			return false;
		uint32_t to = choose_vm(s, f, i, 0, w, sizeof(w));
		if (!to)
			return decide_reason(d, s, v, w);
		snprintf(why, sizeof(why), "starting on node %u%s", to, v->saved ? " from its saved state" : "");
		return decide_vm(d, s, v, R_VM_STARTING, to, 0, false, why);
	}
	case R_VM_STARTING:
		if (f->vm_phase_since_ms[i] && f->now_ms - f->vm_phase_since_ms[i] > R_VM_START_TIMEOUT_MS) {
			snprintf(why, sizeof(why), "it did not start on node %u within %u s", v->node,
				 R_VM_START_TIMEOUT_MS / 1000);
			return decide_vm(d, s, v, R_VM_STOPPING, v->node, 0, false, why);
		}
		if (!v->want)
			return decide_vm(d, s, v, R_VM_STOPPING, v->node, 0, false, "stopping on the operator's request");
		return false;
	case R_VM_RUNNING:
		return plan_running(s, f, i, d);
	case R_VM_STOPPING:
	case R_VM_MIGRATING:
		return false;  /* the node reports */
	case R_VM_WAITING_FENCE:
		if (h && h->fence == R_FENCED && v->target && !v->quick) {
			/* A live migration was cut: the target's QEMU may run the
			 * guest (it resumes it once the state came) or wait for it.
			 * The target is its node now: it says it runs, or starts it
			 * afresh; lost too, it waits for that node's fence. */
			if (lost(r_facts_node(f, v->target))) {
				snprintf(why, sizeof(why), "node %u is fenced; node %u, the target of its live migration, "
					 "was lost too: waiting until it is fenced", v->node, v->target);
				return decide_vm(d, s, v, R_VM_WAITING_FENCE, v->target, 0, false, why);
			}
			snprintf(why, sizeof(why), "node %u is fenced during a live migration: %s goes on, or starts "
				 "again, on node %u", v->node, v->name, v->target);
			return decide_vm(d, s, v, R_VM_STARTING, v->target, 0, false, why);
		}
		if (h && h->fence == R_FENCED) {
			/* Started elsewhere at once when it should run: one
			 * decision less between the fence and the restart. */
			uint32_t to = v->want && !f->settling ? choose_vm(s, f, i, v->node, w, sizeof(w)) : 0;
			if (to) {
				snprintf(why, sizeof(why), "node %u is fenced: starting on node %u%s", v->node, to,
					 v->saved ? " from its saved state" : "");
				return decide_vm(d, s, v, R_VM_STARTING, to, 0, false, why);
			}
			snprintf(why, sizeof(why), "node %u is fenced: %s may run elsewhere", v->node, v->name);
			return decide_vm(d, s, v, R_VM_STOPPED, 0, 0, false, why);
		}
		return false;  /* or the node, back unfenced, reports */
	}
	return false;
}

/* A drained node that runs no VM and holds no role any more is paused. */
static bool plan_nodes(const struct r_state *s, struct r_decision *d)
{
	for (uint32_t n = 0; n < s->nnodes; n++) {
		const struct r_node *node = &s->nodes[n];
		bool busy = false;
		if (node->admin != R_DRAINING)
			continue;
		for (uint32_t i = 0; i < s->nvms && !busy; i++)
			busy = r_vm_on(&s->vms[i], node->id);
		for (uint32_t k = 0; k < s->nvolumes && !busy; k++)
			busy = s->volumes[k].holder == node->id && s->volumes[k].phase != R_UNPLACED;
		if (busy)
			continue;
		memset(d, 0, sizeof(*d));
		d->kind = R_DEC_NODE;
		d->based_on = s->version;
		d->node = node->id;
		d->admin = R_PAUSED;
		snprintf(d->reason, sizeof(d->reason), "node %u is drained: paused", node->id);
		return true;
	}
	return false;
}

/* Orders VM indexes by priority (highest first), then name. */
static const struct r_state *sort_state;
static int by_priority(const void *a, const void *b)
{
	const struct r_vm *x = &sort_state->vms[*(const unsigned *)a], *y = &sort_state->vms[*(const unsigned *)b];
	if (x->priority != y->priority)
		return x->priority > y->priority ? -1 : 1;
	return strcmp(x->name, y->name);
}

bool r_plan_vms(const struct r_state *s, const struct r_facts *f, struct r_decision *d)
{
	unsigned order[R_MAX_VMS];
	bool migrating_from[R_MAX_NODES] = { 0 };
	for (unsigned i = 0; i < s->nvms; i++)
		order[i] = i;
	sort_state = s;
	qsort(order, s->nvms, sizeof(order[0]), by_priority);
	/* One migration at a time from a node being drained, in priority order. */
	for (unsigned i = 0; i < s->nvms; i++)
		for (uint32_t n = 0; n < s->nnodes; n++)
			if (s->vms[i].phase == R_VM_MIGRATING && s->vms[i].node == s->nodes[n].id)
				migrating_from[n] = true;
	for (unsigned j = 0; j < s->nvms; j++) {
		const struct r_vm *v = &s->vms[order[j]];
		bool draining_busy = false;
		for (uint32_t n = 0; n < s->nnodes; n++)
			draining_busy |= s->nodes[n].id == v->node && s->nodes[n].admin == R_DRAINING &&
					 migrating_from[n] && v->phase == R_VM_RUNNING && v->want;
		if (!draining_busy && plan_vm(s, f, order[j], d))
			return true;
	}
	return plan_nodes(s, d);
}

/* ---- messages --------------------------------------------------------------- */

/* VM v changed: a new generation of it, a new version of the state. */
static void touch(struct r_state *s, struct r_vm *v)
{
	v->gen++;
	s->version++;
}

bool r_apply_vm_add(struct r_state *s, const struct r_vm *vm, bool start)
{
	if (r_vm_index(s, vm->name) >= 0 || s->nvms >= R_MAX_VMS)
		return false;
	struct r_vm *v = &s->vms[s->nvms++];
	*v = *vm;
	v->want = start;
	touch(s, v);
	return true;
}

bool r_apply_vm_remove(struct r_state *s, const char *name)
{
	int i = r_vm_index(s, name);
	if (i < 0 || s->vms[i].phase != R_VM_STOPPED)
		return false;
	memmove(&s->vms[i], &s->vms[i + 1], (s->nvms - (uint32_t)i - 1) * sizeof(s->vms[0]));
	s->nvms--;
	s->version++;
	return true;
}

bool r_apply_vm_want(struct r_state *s, const char *name, bool want, uint32_t to, bool force)
{
	struct r_vm *v = r_vm_find(s, name);
	if (!v)
		return false;
	uint32_t target = want && to ? to : v->target;
	bool f = !want && force;
	if (v->want == want && v->target == target && v->force == f)
		return false;
	v->want = want;
	v->target = target;
	v->force = f;
	if (want)
		v->quick = false;
	touch(s, v);
	return true;
}

bool r_apply_vm_migrate(struct r_state *s, const char *name, uint32_t to, bool quick)
{
	struct r_vm *v = r_vm_find(s, name);
	if (!v || v->phase != R_VM_RUNNING || (v->target == to && v->quick == quick))
		return false;
	v->target = to;
	v->quick = quick;
	touch(s, v);
	return true;
}

/* The admin entry of node, added (active) when it has none; NULL when the
 * table is full. */
static struct r_node *node_entry(struct r_state *s, uint32_t node)
{
	for (uint32_t i = 0; i < s->nnodes; i++)
		if (s->nodes[i].id == node)
			return &s->nodes[i];
	if (s->nnodes >= R_MAX_NODES)
		return NULL;
	struct r_node *n = &s->nodes[s->nnodes++];
	n->id = node;
	n->admin = R_ACTIVE;
	return n;
}

bool r_apply_node_admin(struct r_state *s, uint32_t node, bool drain, bool failback)
{
	struct r_node *n = node ? node_entry(s, node) : NULL;
	bool changed = false;
	if (!n)
		return false;
	if (drain && n->admin == R_ACTIVE) {
		n->admin = R_DRAINING;
		changed = true;
	}
	if (!drain) {
		changed = n->admin != R_ACTIVE;
		n->admin = R_ACTIVE;
		/* What the drain left behind goes: the VMs return, or stay. */
		for (uint32_t i = 0; i < s->nvms; i++) {
			struct r_vm *v = &s->vms[i];
			if (v->return_to != node)
				continue;
			if (failback && v->want && v->node != node) {
				v->target = node;
				v->quick = v->prefer_quick || v->live_failed;  /* as the drain took it */
			}
			v->return_to = 0;
			v->gen++;
			changed = true;
		}
	}
	if (changed)
		s->version++;
	return changed;
}

/* Records a failure of v on node at time_ms, forgetting the expired ones
 * (and the oldest when the table is full). */
void r_vm_add_failure(struct r_vm *v, uint32_t node, uint64_t time_ms)
{
	uint32_t k = 0;
	for (uint32_t i = 0; i < v->nfailures; i++)
		if (!expired(v, v->failures[i].time_ms, time_ms))
			v->failures[k++] = v->failures[i];
	v->nfailures = k;
	if (v->nfailures == R_VM_MAX_FAILURES) {
		memmove(&v->failures[0], &v->failures[1], (R_VM_MAX_FAILURES - 1) * sizeof(v->failures[0]));
		v->nfailures--;
	}
	v->failures[v->nfailures++] = (struct r_vm_failure){ .node = node, .time_ms = time_ms };
}

/* A migration of v ended: on the target (ok), or back on the source. */
static void migration_ended(struct r_vm *v, bool ok, const struct r_vm_report_info *info, const char *reason)
{
	v->have_last_mig = true;
	v->last_mig.from = v->node;
	v->last_mig.to = v->target;
	v->last_mig.quick = v->quick;
	v->last_mig.ok = ok;
	v->last_mig.total_ms = info->total_ms ? info->total_ms :
			       info->time_ms > v->mig_start_ms && v->mig_start_ms ? info->time_ms - v->mig_start_ms : 0;
	v->last_mig.downtime_ms = info->downtime_ms;
	if (ok) {
		v->node = v->target;
		v->migrations++;
		v->live_failed = false;
	} else if (!v->quick) {
		v->live_failed = true;
	}
	v->target = 0;
	v->port = 0;
	v->quick = false;
	v->phase = R_VM_RUNNING;
	snprintf(v->reason, sizeof(v->reason), "%s", reason);
}

/* A report of the VM's own node, on its QEMU running or gone. */
static bool report_of_node(struct r_vm *v, uint32_t from, enum r_vm_report what, const struct r_vm_report_info *info)
{
	const char *why = info->reason && info->reason[0] ? info->reason : "";
	if (what == R_VM_REP_RUNNING) {
		if (v->phase != R_VM_STARTING && v->phase != R_VM_WAITING_FENCE)
			return false;
		if (v->phase == R_VM_STARTING)
			v->starts++;
		if (v->saved) {  /* a quick migration ends: the VM was down all along */
			v->have_last_mig = true;
			v->last_mig.to = from;
			v->last_mig.quick = true;
			v->last_mig.ok = true;
			v->last_mig.total_ms = info->time_ms > v->mig_start_ms && v->mig_start_ms ?
					       info->time_ms - v->mig_start_ms : 0;
			v->last_mig.downtime_ms = (int64_t)v->last_mig.total_ms;
			v->migrations++;
			v->saved = false;
			v->quick = false;
		}
		v->phase = R_VM_RUNNING;
		snprintf(v->reason, sizeof(v->reason), "running on node %u", from);
		return true;
	}
	if (v->phase == R_VM_STOPPED || v->phase == R_VM_MIGRATING)
		return false;
	bool asked = v->phase == R_VM_STOPPING;
	if (what == R_VM_REP_FAILED && !asked) {
		r_vm_add_failure(v, from, info->time_ms);
		snprintf(v->reason, sizeof(v->reason), "failed on node %u: %s", from, why);
	} else if (!asked && v->phase == R_VM_RUNNING) {
		v->want = false;  /* the guest shut itself down */
		snprintf(v->reason, sizeof(v->reason), "stopped on node %u: %s", from, why);
	} else {
		snprintf(v->reason, sizeof(v->reason), "stopped on node %u%s%s", from, why[0] ? ": " : "", why);
	}
	v->phase = R_VM_STOPPED;
	v->node = 0;
	v->target = 0;
	v->force = false;
	return true;
}

bool r_apply_vm_report(struct r_state *s, uint32_t from, const char *name, enum r_vm_report what,
		       const struct r_vm_report_info *info)
{
	struct r_vm *v = r_vm_find(s, name);
	char why[200];
	if (!v || !from)
		return false;
	bool migrating = v->phase == R_VM_MIGRATING || (v->phase == R_VM_WAITING_FENCE && v->target);
	bool party = from == v->node || from == v->target;
	switch (what) {
	case R_VM_REP_RUNNING:
		if (migrating && !v->quick && from == v->target && from != v->node)
			goto migrated;  /* the target runs it: the migration is over */
		if (from != v->node)
			return false;
		break;
	case R_VM_REP_STOPPED:
	case R_VM_REP_FAILED:
		if (from != v->node)
			return false;
		break;
	case R_VM_REP_INCOMING:
		if (v->phase != R_VM_MIGRATING || v->quick || from != v->target || v->port == info->port)
			return false;
		v->port = info->port;
		touch(s, v);
		return true;
	case R_VM_REP_MIGRATED:
		if (!migrating || v->quick || !party)
			return false;
migrated:
		snprintf(why, sizeof(why), "running on node %u after a live migration from node %u", v->target, v->node);
		migration_ended(v, true, info, why);
		touch(s, v);
		return true;
	case R_VM_REP_MIGRATE_FAILED:
		if (v->phase != R_VM_MIGRATING || !party)
			return false;
		snprintf(why, sizeof(why), "the %s migration to node %u failed: %s", v->quick ? "quick" : "live",
			 v->target, info->reason && info->reason[0] ? info->reason : "no reason given");
		migration_ended(v, false, info, why);
		touch(s, v);
		return true;
	case R_VM_REP_SAVED:
		if (v->phase != R_VM_MIGRATING || !v->quick || from != v->node)
			return false;
		v->last_mig.from = v->node;
		snprintf(v->reason, sizeof(v->reason), "saved on node %u: starting on node %u from its saved state",
			 v->node, v->target);
		v->node = v->target;
		v->target = 0;
		v->phase = R_VM_STARTING;
		v->saved = true;
		touch(s, v);
		return true;
	}
	if (!report_of_node(v, from, what, info))
		return false;
	touch(s, v);
	return true;
}

/* ---- JSON ------------------------------------------------------------------- */

static void add(struct json_object *o, const char *k, struct json_object *v)
{
	json_object_object_add(o, k, v);
}

struct json_object *r_vm_json(const struct r_vm *v)
{
	struct json_object *o = json_object_new_object(), *pref = json_object_new_array(),
			   *ops = json_object_new_array(), *fails = json_object_new_array(),
			   *restart = json_object_new_object();
	add(o, "name", json_object_new_string(v->name));
	add(o, "want", json_object_new_string(v->want ? "running" : "stopped"));
	add(o, "phase", json_object_new_string(r_vm_phase_str(v->phase)));
	add(o, "node", json_object_new_uint64(v->node));
	add(o, "target", json_object_new_uint64(v->target));
	add(o, "quick", json_object_new_boolean(v->quick));
	add(o, "force", json_object_new_boolean(v->force));
	add(o, "port", json_object_new_uint64(v->port));
	add(o, "saved", json_object_new_boolean(v->saved));
	add(o, "live_failed", json_object_new_boolean(v->live_failed));
	add(o, "mig_start_ms", json_object_new_uint64(v->mig_start_ms));
	add(o, "reason", json_object_new_string(v->reason));
	add(o, "priority", json_object_new_int64(v->priority));
	add(o, "memory_mb", json_object_new_uint64(v->memory_mb));
	add(o, "vcpus", json_object_new_uint64(v->vcpus));
	for (uint32_t i = 0; i < v->npreferred; i++)
		json_object_array_add(pref, json_object_new_uint64(v->preferred[i]));
	add(o, "preferred_nodes", pref);
	add(o, "anti_affinity", json_object_new_string(v->anti_affinity));
	add(o, "anti_affinity_hard", json_object_new_boolean(v->anti_hard));
	add(o, "failback", json_object_new_string(v->failback));
	add(o, "migration", json_object_new_string(v->prefer_quick ? "quick" : "live"));
	add(o, "cpu_compat", json_object_new_boolean(v->cpu_compat));
	add(restart, "max", json_object_new_uint64(v->restart_max));
	add(restart, "period_s", json_object_new_uint64(v->restart_period_s));
	add(restart, "expire_s", json_object_new_uint64(v->failure_expire_s));
	add(o, "restart", restart);
	for (uint32_t i = 0; i < v->noperators; i++)
		json_object_array_add(ops, json_object_new_string(v->operators[i]));
	add(o, "operators", ops);
	for (uint32_t i = 0; i < v->nfailures; i++) {
		struct json_object *x = json_object_new_object();
		add(x, "node", json_object_new_uint64(v->failures[i].node));
		add(x, "time", json_object_new_uint64(v->failures[i].time_ms));
		json_object_array_add(fails, x);
	}
	add(o, "failures", fails);
	add(o, "return_to", json_object_new_uint64(v->return_to));
	add(o, "starts", json_object_new_uint64(v->starts));
	add(o, "migrations", json_object_new_uint64(v->migrations));
	add(o, "gen", json_object_new_uint64(v->gen));
	if (v->have_last_mig) {
		struct json_object *m = json_object_new_object();
		add(m, "from", json_object_new_uint64(v->last_mig.from));
		add(m, "to", json_object_new_uint64(v->last_mig.to));
		add(m, "kind", json_object_new_string(v->last_mig.quick ? "quick" : "live"));
		add(m, "result", json_object_new_string(v->last_mig.ok ? "completed" : "failed"));
		add(m, "total_ms", json_object_new_uint64(v->last_mig.total_ms));
		add(m, "downtime_ms", v->last_mig.downtime_ms >= 0 ? json_object_new_int64(v->last_mig.downtime_ms) :
			NULL);
		add(o, "last_migration", m);
	} else {
		add(o, "last_migration", NULL);
	}
	return o;
}

/* The history and the run-time fields of a VM of a saved state. */
static bool vm_runtime_from_json(struct json_object *o, struct r_vm *v)
{
	uint64_t node, target, port, mig, ret, starts, migs;
	char phase[32];
	struct json_object *fails = r_json_get(o, "failures"), *m = r_json_get(o, "last_migration");
	if (!r_json_strcpy(o, "phase", phase, sizeof(phase)) || r_vm_phase_parse(phase, &v->phase) < 0 ||
	    !r_json_u64(o, "node", UINT32_MAX, &node) || !r_json_u64(o, "target", UINT32_MAX, &target) ||
	    !r_json_u64(o, "port", 65535, &port) || !r_json_u64(o, "mig_start_ms", UINT64_MAX >> 1, &mig) ||
	    !r_json_strcpy(o, "reason", v->reason, sizeof(v->reason)) ||
	    !r_json_u64(o, "return_to", UINT32_MAX, &ret) || !r_json_u64(o, "starts", UINT64_MAX >> 1, &starts) ||
	    !r_json_u64(o, "migrations", UINT64_MAX >> 1, &migs) || !json_object_is_type(fails, json_type_array) ||
	    json_object_array_length(fails) > R_VM_MAX_FAILURES)
		return false;
	v->want = strcmp(r_json_str(o, "want") ? r_json_str(o, "want") : "", "running") == 0;
	v->node = (uint32_t)node;
	v->target = (uint32_t)target;
	v->port = (uint16_t)port;
	v->mig_start_ms = mig;
	v->return_to = (uint32_t)ret;
	v->starts = starts;
	v->migrations = migs;
	v->quick = json_object_get_boolean(r_json_get(o, "quick"));
	v->force = json_object_get_boolean(r_json_get(o, "force"));
	v->saved = json_object_get_boolean(r_json_get(o, "saved"));
	v->live_failed = json_object_get_boolean(r_json_get(o, "live_failed"));
	uint64_t gen;
	v->gen = r_json_u64(o, "gen", UINT64_MAX >> 1, &gen) ? gen : 0;
	for (size_t i = 0; i < json_object_array_length(fails); i++) {
		struct json_object *x = json_object_array_get_idx(fails, i);
		uint64_t fn, ft;
		if (!r_json_u64(x, "node", UINT32_MAX, &fn) || !r_json_u64(x, "time", UINT64_MAX >> 1, &ft))
			return false;
		v->failures[v->nfailures++] = (struct r_vm_failure){ .node = (uint32_t)fn, .time_ms = ft };
	}
	if (m) {
		uint64_t from, to, total;
		if (!r_json_u64(m, "from", UINT32_MAX, &from) || !r_json_u64(m, "to", UINT32_MAX, &to) ||
		    !r_json_u64(m, "total_ms", UINT64_MAX >> 1, &total))
			return false;
		v->have_last_mig = true;
		v->last_mig.from = (uint32_t)from;
		v->last_mig.to = (uint32_t)to;
		v->last_mig.total_ms = total;
		v->last_mig.quick = strcmp(r_json_str(m, "kind") ? r_json_str(m, "kind") : "", "quick") == 0;
		v->last_mig.ok = strcmp(r_json_str(m, "result") ? r_json_str(m, "result") : "", "completed") == 0;
		struct json_object *dt = r_json_get(m, "downtime_ms");
		v->last_mig.downtime_ms = dt ? json_object_get_int64(dt) : -1;
	}
	return true;
}

int r_vm_from_json(struct json_object *o, struct r_vm *v, char *err, size_t errlen)
{
	/* The definition's fields read as a definition, then the rest. */
	struct json_object *def = json_object_new_object(), *x;
	static const char *const keys[] = { "name",	"memory_mb",  "vcpus",	    "priority",	 "preferred_nodes",
					    "failback", "migration",  "cpu_compat", "operators", "restart" };
	for (size_t i = 0; i < N_OF(keys); i++)
		if ((x = r_json_get(o, keys[i])))
			json_object_object_add(def, keys[i], json_object_get(x));
	const char *cls = r_json_str(o, "anti_affinity");
	if (cls && cls[0]) {
		struct json_object *a = json_object_new_object();
		json_object_object_add(a, "class", json_object_new_string(cls));
		json_object_object_add(a, "hard", json_object_new_boolean(
							  json_object_get_boolean(r_json_get(o, "anti_affinity_hard"))));
		json_object_object_add(def, "anti_affinity", a);
	}
	int r = r_vm_from_definition(def, v, err, errlen);
	json_object_put(def);
	if (r < 0)
		return r;
	if (!vm_runtime_from_json(o, v)) {
		snprintf(err, errlen, "VM %s: its phase, placement or history is incomplete or wrong", v->name);
		return -EINVAL;
	}
	return 0;
}

struct json_object *r_decision_json(const struct r_decision *d)
{
	struct json_object *o = json_object_new_object();
	static const char *const kinds[] = { [R_DEC_VOLUME] = "volume", [R_DEC_VM] = "vm", [R_DEC_NODE] = "node" };
	add(o, "kind", json_object_new_string(kinds[d->kind]));
	add(o, "based_on", json_object_new_uint64(d->based_on));
	add(o, "reason", json_object_new_string(d->reason));
	if (d->kind == R_DEC_VOLUME) {
		add(o, "volume", json_object_new_string(d->volume));
		add(o, "holder", json_object_new_uint64(d->holder));
		add(o, "phase", json_object_new_string(r_phase_str(d->phase)));
		add(o, "clear_target", json_object_new_boolean(d->clear_target));
		add(o, "target", json_object_new_uint64(d->target));
	} else if (d->kind == R_DEC_VM) {
		add(o, "vm", json_object_new_string(d->vm));
		add(o, "phase", json_object_new_string(r_vm_phase_str(d->vm_phase)));
		add(o, "node", json_object_new_uint64(d->node));
		add(o, "target", json_object_new_uint64(d->target));
		add(o, "quick", json_object_new_boolean(d->quick));
		add(o, "set_return_to", json_object_new_boolean(d->set_return_to));
		add(o, "return_to", json_object_new_uint64(d->return_to));
		add(o, "wall_ms", json_object_new_uint64(d->wall_ms));
	} else {
		add(o, "node", json_object_new_uint64(d->node));
		add(o, "admin", json_object_new_string(r_admin_str(d->admin)));
	}
	return o;
}

int r_decision_from_json(struct json_object *o, struct r_decision *d)
{
	const char *kind = r_json_str(o, "kind") ? r_json_str(o, "kind") : "volume";
	const char *phase = r_json_str(o, "phase");
	uint64_t n;
	memset(d, 0, sizeof(*d));
	if (!r_json_u64(o, "based_on", UINT64_MAX >> 1, &d->based_on) ||
	    !r_json_strcpy(o, "reason", d->reason, sizeof(d->reason)))
		return -EINVAL;
	d->target = r_json_u64(o, "target", UINT32_MAX, &n) ? (uint32_t)n : 0;
	d->node = r_json_u64(o, "node", UINT32_MAX, &n) ? (uint32_t)n : 0;
	if (strcmp(kind, "volume") == 0) {
		d->kind = R_DEC_VOLUME;
		if (!r_json_strcpy(o, "volume", d->volume, sizeof(d->volume)) || !phase ||
		    r_phase_parse(phase, &d->phase) < 0 || !r_json_u64(o, "holder", UINT32_MAX, &n))
			return -EINVAL;
		d->holder = (uint32_t)n;
		d->clear_target = json_object_get_boolean(r_json_get(o, "clear_target"));
	} else if (strcmp(kind, "vm") == 0) {
		d->kind = R_DEC_VM;
		if (!r_json_strcpy(o, "vm", d->vm, sizeof(d->vm)) || !phase || r_vm_phase_parse(phase, &d->vm_phase) < 0)
			return -EINVAL;
		d->quick = json_object_get_boolean(r_json_get(o, "quick"));
		d->set_return_to = json_object_get_boolean(r_json_get(o, "set_return_to"));
		d->return_to = r_json_u64(o, "return_to", UINT32_MAX, &n) ? (uint32_t)n : 0;
		d->wall_ms = r_json_u64(o, "wall_ms", UINT64_MAX >> 1, &n) ? n : 0;
	} else if (strcmp(kind, "node") == 0) {
		d->kind = R_DEC_NODE;
		if (!d->node || !r_json_str(o, "admin") || r_admin_parse(r_json_str(o, "admin"), &d->admin) < 0)
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	return 0;
}
