/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The VM rules of csv-rmd as a cluster sees them: definitions, the VMs in
 * the state's JSON form, placement (memory, preferred nodes, anti-affinity,
 * priority), stops, the restart policy, a lost node's VMs freed only once
 * it is fenced, live and quick migration, drain and resume, failback and
 * removal. The leader's loop is played as the daemon plays it: plan, stamp
 * the decision with the wall clock, apply it, plan again; the nodes' reports
 * and the operator's requests come in between as messages. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"
#include "test-rmd.h"

static const uint64_t WALL = 1700000000000ull;  /* ms since the epoch */

/* ---- helpers ------------------------------------------------------------------ */

/* node(), lose(), assert_has(), from_text(), assert_rejected() and
 * ADD_CASE() are in test-rmd.h, shared with test-state.c. */

/* The VM of definition json, which must be good. */
static struct r_vm vm_def(const char *json)
{
	struct json_object *o = json_tokener_parse(json);
	struct r_vm v;
	char err[256] = "";
	ck_assert_msg(o != NULL, "the test's JSON does not parse: %s", json);
	ck_assert_msg(r_vm_from_definition(o, &v, err, sizeof(err)) == 0, "%s refused: %s", json, err);
	json_object_put(o);
	return v;
}

/* Adds VM name of memory_mb (2 vCPUs), with the definition's fields extra
 * ("" or ", \"key\": value..."), wanted running when start. */
static void add_vm(struct r_state *s, const char *name, uint32_t memory_mb, const char *extra, bool start)
{
	char json[512];
	snprintf(json, sizeof(json), "{\"name\": \"%s\", \"memory_mb\": %u, \"vcpus\": 2%s}", name, memory_mb, extra);
	struct r_vm v = vm_def(json);
	ck_assert(r_apply_vm_add(s, &v, start));
}

/* A quorate cluster of nodes 1..n, each running csv-rmd, a member, not
 * fenced, with memory_mb for VMs and 8 CPUs; at noon. */
static void facts_vms(struct r_facts *f, unsigned nnodes, uint32_t memory_mb)
{
	memset(f, 0, sizeof(*f));
	f->quorate = true;
	f->now_ms = NOW;
	f->wall_ms = WALL;
	f->hour = 12;
	f->nnodes = nnodes;
	for (unsigned i = 0; i < nnodes; i++) {
		struct r_node_facts *n = &f->nodes[i];
		n->id = i + 1;
		n->rmd = n->member = true;
		n->fence = R_FENCE_NONE;
		n->vm_memory_mb = memory_mb;
		n->cpus = 8;
	}
}

static struct r_vm *vm(struct r_state *s, const char *name)
{
	struct r_vm *v = r_vm_find(s, name);
	ck_assert_msg(v != NULL, "VM %s is not in the state", name);
	return v;
}

static void assert_vm(struct r_state *s, const char *name, enum r_vm_phase phase, uint32_t on)
{
	const struct r_vm *v = vm(s, name);
	ck_assert_msg(v->phase == phase && v->node == on, "VM %s: %s on node %u, expected %s on node %u (%s)", name,
		      r_vm_phase_str(v->phase), v->node, r_vm_phase_str(phase), on, v->reason);
}

/* The nodes that may run a QEMU of v: its node unless it is stopped, and
 * the target of a live migration (under way, or cut by the loss of the
 * source): that QEMU waits for the guest, or runs it once it came. */
static unsigned qemu_nodes(const struct r_vm *v, uint32_t out[2])
{
	unsigned n = 0;
	if (v->phase != R_VM_STOPPED && v->node)
		out[n++] = v->node;
	if (v->target && !v->quick && (v->phase == R_VM_MIGRATING || v->phase == R_VM_WAITING_FENCE))
		out[n++] = v->target;
	return n;
}

static bool among(const uint32_t *ids, unsigned n, uint32_t id)
{
	for (unsigned i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/* What must hold across any decision: a VM gets a new node only when no
 * node may run it (stopped), or when a migration starts from the node that
 * runs it; and a decision takes it off a node only when that node is
 * fenced (otherwise only the node's own report does). */
static void assert_vm_safe(const struct r_vm *before, const struct r_vm *after, const struct r_facts *f)
{
	uint32_t b[2], a[2];
	unsigned nb = qemu_nodes(before, b), na = qemu_nodes(after, a);
	for (unsigned i = 0; i < na; i++)
		if (!among(b, nb, a[i]))
			ck_assert_msg(before->phase == R_VM_STOPPED ||
					      (before->phase == R_VM_RUNNING && after->phase == R_VM_MIGRATING &&
					       after->node == before->node) ||
					      (before->phase == R_VM_WAITING_FENCE && r_facts_node(f, before->node) &&
					       r_facts_node(f, before->node)->fence == R_FENCED),
				      "VM %s got node %u (%s) while %s on node %u", before->name, a[i],
				      r_vm_phase_str(after->phase), r_vm_phase_str(before->phase), before->node);
	for (unsigned i = 0; i < nb; i++)
		if (!among(a, na, b[i])) {
			const struct r_node_facts *h = r_facts_node(f, b[i]);
			ck_assert_msg(h && h->fence == R_FENCED,
				      "VM %s left node %u (%s -> %s on node %u) while that node may still run it",
				      before->name, b[i], r_vm_phase_str(before->phase), r_vm_phase_str(after->phase),
				      after->node);
		}
}

/* The leader plans once and the group applies its decision, as csv-rmd
 * does (stamped with the leader's wall clock); false when there was
 * nothing to decide. */
static bool step(struct r_state *s, const struct r_facts *f, struct r_decision *d)
{
	if (!r_plan(s, f, d))
		return false;
	ck_assert_uint_eq(d->based_on, s->version);
	d->wall_ms = f->wall_ms;
	struct r_state before = *s;
	ck_assert_msg(r_apply_decision(s, d), "the decision on %s was not applied (%s)", d->vm, d->reason);
	ck_assert_uint_eq(s->version, before.version + 1);
	for (uint32_t i = 0; i < before.nvms; i++) {
		int k = r_vm_index(s, before.vms[i].name);
		ck_assert_int_ge(k, 0);
		assert_vm_safe(&before.vms[i], &s->vms[k], f);
	}
	return true;
}

/* Plans and applies until the leader has nothing left to decide. */
static unsigned settle(struct r_state *s, const struct r_facts *f)
{
	struct r_decision d;
	unsigned n = 0;
	while (step(s, f, &d))
		ck_assert_msg(++n < 100, "the plan does not settle (last: %s %s on node %u)", d.vm,
			      r_vm_phase_str(d.vm_phase), d.node);
	return n;
}

/* Node from reports what on VM name, at the facts' wall clock. */
static bool report(struct r_state *s, const struct r_facts *f, uint32_t from, const char *name, enum r_vm_report what)
{
	struct r_vm_report_info info = { .time_ms = f->wall_ms, .downtime_ms = -1, .reason = "QEMU exited" };
	return r_apply_vm_report(s, from, name, what, &info);
}

/* The next decision is on VM name: phase on node on. */
static void expect_step(struct r_state *s, const struct r_facts *f, const char *name, enum r_vm_phase phase,
			uint32_t on, struct r_decision *d)
{
	ck_assert_msg(step(s, f, d), "no decision; expected VM %s %s on node %u", name, r_vm_phase_str(phase), on);
	ck_assert_int_eq(d->kind, R_DEC_VM);
	ck_assert_msg(strcmp(d->vm, name) == 0 && d->vm_phase == phase && d->node == on,
		      "decision: VM %s %s on node %u (%s); expected VM %s %s on node %u", d->vm,
		      r_vm_phase_str(d->vm_phase), d->node, d->reason, name, r_vm_phase_str(phase), on);
}

/* VM name runs on node on: the operator asked it there, the leader
 * started it, the node reported it running. */
static void run_on(struct r_state *s, const struct r_facts *f, const char *name, uint32_t on)
{
	struct r_decision d;
	ck_assert(r_apply_vm_want(s, name, true, on, false));
	expect_step(s, f, name, R_VM_STARTING, on, &d);
	ck_assert(report(s, f, on, name, R_VM_REP_RUNNING));
	assert_vm(s, name, R_VM_RUNNING, on);
}

/* A live migration of name to node to, decided and under way. */
static void migrating(struct r_state *s, const struct r_facts *f, const char *name, uint32_t to, bool quick)
{
	struct r_decision d;
	uint32_t from = vm(s, name)->node;
	ck_assert(r_apply_vm_migrate(s, name, to, quick));
	expect_step(s, f, name, R_VM_MIGRATING, from, &d);
	ck_assert_uint_eq(d.target, to);
	ck_assert_int_eq(d.quick, quick);
	ck_assert_uint_eq(vm(s, name)->target, to);
}

/* ---- definitions ---------------------------------------------------------------- */

START_TEST(test_def_defaults)
{
	/* Only name, memory and vCPUs: the defaults of the restart policy,
	 * failback never, live migration; stopped, not wanted. */
	struct r_vm v = vm_def("{\"name\": \"web1\", \"memory_mb\": 1024, \"vcpus\": 2}");
	ck_assert_str_eq(v.name, "web1");
	ck_assert_uint_eq(v.memory_mb, 1024);
	ck_assert_uint_eq(v.vcpus, 2);
	ck_assert_uint_eq(v.restart_max, 1);
	ck_assert_uint_eq(v.restart_period_s, 900);
	ck_assert_uint_eq(v.failure_expire_s, 3600);
	ck_assert_str_eq(v.failback, "never");
	ck_assert(!v.prefer_quick);
	ck_assert(!v.cpu_compat);
	ck_assert_int_eq(v.priority, 0);
	ck_assert_uint_eq(v.npreferred, 0);
	ck_assert_str_eq(v.anti_affinity, "");
	ck_assert(!v.anti_hard);
	ck_assert_uint_eq(v.noperators, 0);
	ck_assert_int_eq(v.phase, R_VM_STOPPED);
	ck_assert(!v.want);
	ck_assert_uint_eq(v.node, 0);
	ck_assert_uint_eq(v.nfailures, 0);
	ck_assert_str_eq(v.reason, "created");
}
END_TEST

START_TEST(test_def_all_fields)
{
	/* Every field of a definition is read. */
	struct r_vm v = vm_def("{\"name\": \"db-1.prod_a\", \"memory_mb\": 4096, \"vcpus\": 4, \"priority\": -7, "
			       "\"preferred_nodes\": [3, 1], \"anti_affinity\": {\"class\": \"db\", \"hard\": true}, "
			       "\"restart\": {\"max\": 3, \"period_s\": 60, \"expire_s\": 120}, \"failback\": \"22-06\", "
			       "\"migration\": \"quick\", \"cpu_compat\": true, \"operators\": [\"dba\", \"ops\"]}");
	ck_assert_str_eq(v.name, "db-1.prod_a");
	ck_assert_uint_eq(v.memory_mb, 4096);
	ck_assert_uint_eq(v.vcpus, 4);
	ck_assert_int_eq(v.priority, -7);
	ck_assert_uint_eq(v.npreferred, 2);
	ck_assert_uint_eq(v.preferred[0], 3);
	ck_assert_uint_eq(v.preferred[1], 1);
	ck_assert_str_eq(v.anti_affinity, "db");
	ck_assert(v.anti_hard);
	ck_assert_uint_eq(v.restart_max, 3);
	ck_assert_uint_eq(v.restart_period_s, 60);
	ck_assert_uint_eq(v.failure_expire_s, 120);
	ck_assert_str_eq(v.failback, "22-06");
	ck_assert(v.prefer_quick);
	ck_assert(v.cpu_compat);
	ck_assert_uint_eq(v.noperators, 2);
	ck_assert_str_eq(v.operators[0], "dba");
	ck_assert_str_eq(v.operators[1], "ops");
	/* Soft anti-affinity, and a live migration, said explicitly. */
	v = vm_def("{\"name\": \"w\", \"memory_mb\": 16, \"vcpus\": 64, \"anti_affinity\": {\"class\": \"web\"}, "
		   "\"migration\": \"live\", \"failback\": \"immediate\", \"restart\": {\"max\": 0}}");
	ck_assert_str_eq(v.anti_affinity, "web");
	ck_assert(!v.anti_hard);
	ck_assert(!v.prefer_quick);
	ck_assert_str_eq(v.failback, "immediate");
	/* A "restart" given without a period or an expiry: an hour, never. */
	ck_assert_uint_eq(v.restart_max, 0);
	ck_assert_uint_eq(v.restart_period_s, 3600);
	ck_assert_uint_eq(v.failure_expire_s, 0);
}
END_TEST

#define BASE "\"name\": \"vm1\", \"memory_mb\": 1024, \"vcpus\": 1, "

START_TEST(test_def_bad_fields)
{
	/* Each bad field is refused with an error that names it. */
	static const struct {
		const char *json, *word;
	} bad[] = {
		{ "[]", "not a JSON object" },
		{ "{\"memory_mb\": 1024, \"vcpus\": 1}", "\"name\"" },
		{ "{\"name\": \"\", \"memory_mb\": 1024, \"vcpus\": 1}", "\"name\"" },
		{ "{\"name\": \".hidden\", \"memory_mb\": 1024, \"vcpus\": 1}", "\"name\"" },
		{ "{\"name\": \"a b\", \"memory_mb\": 1024, \"vcpus\": 1}", "\"name\"" },
		{ "{\"name\": \"a/b\", \"memory_mb\": 1024, \"vcpus\": 1}", "\"name\"" },
		{ "{\"name\": 7, \"memory_mb\": 1024, \"vcpus\": 1}", "\"name\"" },
		{ "{\"name\": \"vm1\", \"vcpus\": 1}", "\"memory_mb\"" },
		{ "{\"name\": \"vm1\", \"memory_mb\": 8, \"vcpus\": 1}", "\"memory_mb\"" },
		{ "{\"name\": \"vm1\", \"memory_mb\": 65537, \"vcpus\": 1}", "\"memory_mb\"" },
		{ "{\"name\": \"vm1\", \"memory_mb\": \"1024\", \"vcpus\": 1}", "\"memory_mb\"" },
		{ "{\"name\": \"vm1\", \"memory_mb\": -1024, \"vcpus\": 1}", "\"memory_mb\"" },
		{ "{\"name\": \"vm1\", \"memory_mb\": 1024}", "\"vcpus\"" },
		{ "{\"name\": \"vm1\", \"memory_mb\": 1024, \"vcpus\": 0}", "\"vcpus\"" },
		{ "{\"name\": \"vm1\", \"memory_mb\": 1024, \"vcpus\": 65}", "\"vcpus\"" },
		{ "{" BASE "\"priority\": \"high\"}", "\"priority\"" },
		{ "{" BASE "\"priority\": 1.5}", "\"priority\"" },
		{ "{" BASE "\"preferred_nodes\": 1}", "\"preferred_nodes\"" },
		{ "{" BASE "\"preferred_nodes\": [0]}", "\"preferred_nodes\"" },
		{ "{" BASE "\"preferred_nodes\": [-2]}", "\"preferred_nodes\"" },
		{ "{" BASE "\"preferred_nodes\": [\"n1\"]}", "\"preferred_nodes\"" },
		{ "{" BASE "\"preferred_nodes\": [4294967296]}", "\"preferred_nodes\"" },
		{ "{" BASE "\"preferred_nodes\": [1, 2, 3, 4, 5, 6, 7, 8, 9]}", "\"preferred_nodes\"" },
		{ "{" BASE "\"anti_affinity\": \"db\"}", "\"anti_affinity\"" },
		{ "{" BASE "\"anti_affinity\": {\"hard\": true}}", "\"anti_affinity\"" },
		{ "{" BASE "\"anti_affinity\": {\"class\": \"\"}}", "\"anti_affinity\"" },
		{ "{" BASE "\"anti_affinity\": {\"class\": \"db\", \"hard\": \"yes\"}}", "\"anti_affinity\"" },
		{ "{" BASE "\"restart\": \"always\"}", "\"restart\"" },
		{ "{" BASE "\"restart\": {\"max\": 101}}", "\"restart\"" },
		{ "{" BASE "\"restart\": {\"max\": -1}}", "\"restart\"" },
		{ "{" BASE "\"restart\": {\"period_s\": 0}}", "\"restart\"" },
		{ "{" BASE "\"restart\": {\"expire_s\": \"1h\"}}", "\"restart\"" },
		{ "{" BASE "\"failback\": \"25-03\"}", "\"failback\"" },
		{ "{" BASE "\"failback\": \"03-24\"}", "\"failback\"" },
		{ "{" BASE "\"failback\": \"abc\"}", "\"failback\"" },
		{ "{" BASE "\"failback\": \"1-234\"}", "\"failback\"" },
		{ "{" BASE "\"failback\": \"always\"}", "\"failback\"" },
		{ "{" BASE "\"failback\": 3}", "\"failback\"" },
		{ "{" BASE "\"migration\": \"slow\"}", "\"migration\"" },
		{ "{" BASE "\"migration\": true}", "\"migration\"" },
		{ "{" BASE "\"cpu_compat\": \"yes\"}", "\"cpu_compat\"" },
		{ "{" BASE "\"cpu_compat\": 1}", "\"cpu_compat\"" },
		{ "{" BASE "\"operators\": \"ops\"}", "\"operators\"" },
		{ "{" BASE "\"operators\": [\"\"]}", "\"operators\"" },
		{ "{" BASE "\"operators\": [1]}", "\"operators\"" },
		{ "{" BASE "\"operators\": [\"a-group-name-of-thirty-three-char\"]}", "\"operators\"" },
		{ "{" BASE "\"operators\": [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\", \"g\", \"h\", \"i\"]}",
		  "\"operators\"" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct json_object *o = json_tokener_parse(bad[i].json);
		struct r_vm v;
		char err[256] = "";
		ck_assert_msg(o != NULL, "the test's JSON does not parse: %s", bad[i].json);
		ck_assert_msg(r_vm_from_definition(o, &v, err, sizeof(err)) == -EINVAL, "%s was accepted",
			      bad[i].json);
		ck_assert_msg(strstr(err, bad[i].word) != NULL, "%s: \"%s\" does not say %s", bad[i].json, err,
			      bad[i].word);
		json_object_put(o);
	}
}
END_TEST

/* ---- JSON --------------------------------------------------------------------- */

/* A state with VMs in every phase, with history: node 3 paused. */
static void make_vm_state(struct r_state *s)
{
	memset(s, 0, sizeof(*s));
	add_vm(s, "a-stopped", 1024,
	       ", \"priority\": -3, \"preferred_nodes\": [2, 3], \"anti_affinity\": {\"class\": \"web\", \"hard\": "
	       "true}, \"restart\": {\"max\": 2, \"period_s\": 60, \"expire_s\": 600}, \"failback\": \"08-18\", "
	       "\"cpu_compat\": true, \"operators\": [\"ops\", \"web\"]",
	       true);
	add_vm(s, "b-starting", 2048, ", \"priority\": 5", true);
	add_vm(s, "c-running", 512, ", \"migration\": \"quick\", \"failback\": \"immediate\"", true);
	add_vm(s, "d-stopping", 256, "", false);
	add_vm(s, "e-migrating", 4096, ", \"anti_affinity\": {\"class\": \"db\"}", true);
	add_vm(s, "f-waiting", 1024, "", true);
	struct r_vm *v = vm(s, "a-stopped");
	v->failures[0] = (struct r_vm_failure){ .node = 2, .time_ms = WALL - 1000 };
	v->failures[1] = (struct r_vm_failure){ .node = 3, .time_ms = WALL - 500 };
	v->nfailures = 2;
	v->target = 3;
	snprintf(v->reason, sizeof(v->reason), "failed on node 3: QEMU exited");
	v = vm(s, "b-starting");
	v->phase = R_VM_STARTING;
	v->node = 1;
	v->saved = true;
	v->starts = 2;
	v = vm(s, "c-running");
	v->phase = R_VM_RUNNING;
	v->node = 2;
	v->starts = 1;
	v->migrations = 3;
	v->return_to = 3;
	v->live_failed = true;
	v->have_last_mig = true;
	v->last_mig = (struct r_vm_migration){ .from = 1, .to = 2, .ok = true, .total_ms = 1234, .downtime_ms = 40 };
	v = vm(s, "d-stopping");
	v->phase = R_VM_STOPPING;
	v->node = 3;
	v->force = true;
	v = vm(s, "e-migrating");
	v->phase = R_VM_MIGRATING;
	v->node = 1;
	v->target = 2;
	v->port = 49152;
	v->mig_start_ms = WALL - 2000;
	v->have_last_mig = true;
	v->last_mig = (struct r_vm_migration){ .from = 2, .to = 1, .quick = true, .total_ms = 9, .downtime_ms = -1 };
	v = vm(s, "f-waiting");
	v->phase = R_VM_WAITING_FENCE;
	v->node = 3;
	v->target = 1;
	v->quick = true;
	s->nnodes = 2;
	s->nodes[0] = (struct r_node){ .id = 1, .admin = R_DRAINING };
	s->nodes[1] = (struct r_node){ .id = 3, .admin = R_PAUSED };
}

static void assert_vm_same(const struct r_vm *a, const struct r_vm *b)
{
	ck_assert_str_eq(b->name, a->name);
	ck_assert_int_eq(b->want, a->want);
	ck_assert_int_eq(b->phase, a->phase);
	ck_assert_uint_eq(b->node, a->node);
	ck_assert_uint_eq(b->target, a->target);
	ck_assert_int_eq(b->quick, a->quick);
	ck_assert_int_eq(b->force, a->force);
	ck_assert_uint_eq(b->port, a->port);
	ck_assert_int_eq(b->saved, a->saved);
	ck_assert_int_eq(b->live_failed, a->live_failed);
	ck_assert_uint_eq(b->mig_start_ms, a->mig_start_ms);
	ck_assert_str_eq(b->reason, a->reason);
	ck_assert_int_eq(b->priority, a->priority);
	ck_assert_uint_eq(b->memory_mb, a->memory_mb);
	ck_assert_uint_eq(b->vcpus, a->vcpus);
	ck_assert_uint_eq(b->npreferred, a->npreferred);
	for (uint32_t i = 0; i < a->npreferred; i++)
		ck_assert_uint_eq(b->preferred[i], a->preferred[i]);
	ck_assert_str_eq(b->anti_affinity, a->anti_affinity);
	ck_assert_int_eq(b->anti_hard, a->anti_hard);
	ck_assert_str_eq(b->failback, a->failback);
	ck_assert_int_eq(b->prefer_quick, a->prefer_quick);
	ck_assert_int_eq(b->cpu_compat, a->cpu_compat);
	ck_assert_uint_eq(b->restart_max, a->restart_max);
	ck_assert_uint_eq(b->restart_period_s, a->restart_period_s);
	ck_assert_uint_eq(b->failure_expire_s, a->failure_expire_s);
	ck_assert_uint_eq(b->noperators, a->noperators);
	for (uint32_t i = 0; i < a->noperators; i++)
		ck_assert_str_eq(b->operators[i], a->operators[i]);
	ck_assert_uint_eq(b->nfailures, a->nfailures);
	for (uint32_t i = 0; i < a->nfailures; i++) {
		ck_assert_uint_eq(b->failures[i].node, a->failures[i].node);
		ck_assert_uint_eq(b->failures[i].time_ms, a->failures[i].time_ms);
	}
	ck_assert_uint_eq(b->return_to, a->return_to);
	ck_assert_uint_eq(b->starts, a->starts);
	ck_assert_uint_eq(b->migrations, a->migrations);
	ck_assert_uint_eq(b->gen, a->gen);
	ck_assert_int_eq(b->have_last_mig, a->have_last_mig);
	if (a->have_last_mig) {
		ck_assert_uint_eq(b->last_mig.from, a->last_mig.from);
		ck_assert_uint_eq(b->last_mig.to, a->last_mig.to);
		ck_assert_int_eq(b->last_mig.quick, a->last_mig.quick);
		ck_assert_int_eq(b->last_mig.ok, a->last_mig.ok);
		ck_assert_uint_eq(b->last_mig.total_ms, a->last_mig.total_ms);
		ck_assert_int_eq(b->last_mig.downtime_ms, a->last_mig.downtime_ms);
	}
}

START_TEST(test_json_vms_round_trip)
{
	/* Every VM, in every phase and with its history, comes back. */
	struct r_state s, t;
	char err[256] = "";
	make_vm_state(&s);
	struct json_object *o = r_state_json(&s);
	ck_assert_msg(from_text(o, &t, err, sizeof(err)) == 0, "%s", err);
	json_object_put(o);
	ck_assert_uint_eq(t.nvms, 6);
	for (uint32_t i = 0; i < 6; i++)
		assert_vm_same(&s.vms[i], &t.vms[i]);
	/* What was put in is what comes back, not merely equal to itself. */
	ck_assert_int_eq(t.vms[0].phase, R_VM_STOPPED);
	ck_assert_uint_eq(t.vms[0].nfailures, 2);
	ck_assert_uint_eq(t.vms[0].failures[1].node, 3);
	ck_assert_uint_eq(t.vms[0].failures[1].time_ms, WALL - 500);
	ck_assert_str_eq(t.vms[0].anti_affinity, "web");
	ck_assert(t.vms[0].anti_hard);
	ck_assert_str_eq(t.vms[0].operators[1], "web");
	ck_assert_int_eq(t.vms[1].phase, R_VM_STARTING);
	ck_assert(t.vms[1].saved);
	ck_assert_uint_eq(t.vms[2].last_mig.downtime_ms, 40);
	ck_assert(t.vms[2].prefer_quick);
	ck_assert(t.vms[3].force);
	ck_assert(!t.vms[3].want);
	ck_assert_uint_eq(t.vms[4].port, 49152);
	ck_assert_int_eq(t.vms[4].last_mig.downtime_ms, -1);
	ck_assert_int_eq(t.vms[5].phase, R_VM_WAITING_FENCE);
	ck_assert_uint_eq(t.vms[5].target, 1);
	ck_assert_int_eq(t.nodes[0].admin, R_DRAINING);
	/* And a second trip gives the same text. */
	struct json_object *a = r_state_json(&s), *b = r_state_json(&t);
	ck_assert_str_eq(json_object_to_json_string(a), json_object_to_json_string(b));
	json_object_put(a);
	json_object_put(b);
}
END_TEST

static struct json_object *vm_json_of(struct json_object *o, size_t i)
{
	struct json_object *a = NULL;
	ck_assert(json_object_object_get_ex(o, "vms", &a));
	return json_object_array_get_idx(a, i);
}

static struct json_object *good_json(void)
{
	struct r_state s;
	make_vm_state(&s);
	return r_state_json(&s);
}

START_TEST(test_json_vm_damaged)
{
	/* A damaged VM entry refuses the state, saying which VM and why. */
	struct json_object *o = good_json();
	json_object_object_del(vm_json_of(o, 1), "phase");
	assert_rejected(o, "VM 2 of the state: VM b-starting");
	o = good_json();
	json_object_object_add(vm_json_of(o, 2), "phase", json_object_new_string("flying"));
	assert_rejected(o, "c-running");
	o = good_json();
	json_object_object_add(vm_json_of(o, 0), "memory_mb", json_object_new_string("lots"));
	assert_rejected(o, "\"memory_mb\"");
	o = good_json();
	json_object_object_add(vm_json_of(o, 0), "failures", json_object_new_string("none"));
	assert_rejected(o, "a-stopped");
	o = good_json();
	json_object_object_add(vm_json_of(o, 4), "last_migration", json_object_new_object());
	assert_rejected(o, "e-migrating");
	o = good_json();
	json_object_object_add(vm_json_of(o, 3), "node", json_object_new_int(-1));
	assert_rejected(o, "d-stopping");
	o = good_json();
	json_object_object_add(vm_json_of(o, 1), "name", json_object_new_string("a-stopped"));
	assert_rejected(o, "twice");
	o = good_json();
	json_object_object_add(o, "vms", json_object_new_object());
	assert_rejected(o, "VMs of the state");
}
END_TEST

START_TEST(test_json_no_vms)
{
	/* A state saved before VMs were kept has none, and is taken. */
	struct r_state t;
	char err[256] = "";
	struct json_object *o = good_json();
	json_object_object_del(o, "vms");
	memset(&t, 0xff, sizeof(t));
	ck_assert_msg(from_text(o, &t, err, sizeof(err)) == 0, "%s", err);
	json_object_put(o);
	ck_assert_uint_eq(t.nvms, 0);
	ck_assert_uint_eq(t.nnodes, 2);
	ck_assert_int_eq(t.nodes[1].admin, R_PAUSED);
}
END_TEST

START_TEST(test_json_decisions)
{
	/* VM and node decisions go through JSON unchanged, as the leader sends them. */
	struct r_decision d = { .kind = R_DEC_VM, .based_on = 42, .vm_phase = R_VM_MIGRATING, .node = 1,
				.target = 3, .quick = true, .set_return_to = true, .return_to = 1, .wall_ms = WALL };
	struct r_decision e;
	snprintf(d.vm, sizeof(d.vm), "web1");
	snprintf(d.reason, sizeof(d.reason), "node 1 is being drained");
	struct json_object *o = r_decision_json(&d);
	ck_assert_int_eq(r_decision_from_json(o, &e), 0);
	json_object_put(o);
	ck_assert_int_eq(e.kind, R_DEC_VM);
	ck_assert_uint_eq(e.based_on, 42);
	ck_assert_str_eq(e.vm, "web1");
	ck_assert_int_eq(e.vm_phase, R_VM_MIGRATING);
	ck_assert_uint_eq(e.node, 1);
	ck_assert_uint_eq(e.target, 3);
	ck_assert(e.quick && e.set_return_to);
	ck_assert_uint_eq(e.return_to, 1);
	ck_assert_uint_eq(e.wall_ms, WALL);
	ck_assert_str_eq(e.reason, d.reason);
	d = (struct r_decision){ .kind = R_DEC_NODE, .based_on = 43, .node = 2, .admin = R_PAUSED };
	o = r_decision_json(&d);
	ck_assert_int_eq(r_decision_from_json(o, &e), 0);
	json_object_put(o);
	ck_assert_int_eq(e.kind, R_DEC_NODE);
	ck_assert_uint_eq(e.node, 2);
	ck_assert_int_eq(e.admin, R_PAUSED);
}
END_TEST

/* ---- start and placement ---------------------------------------------------------- */

START_TEST(test_start_most_free_memory)
{
	/* A created and started VM goes to the node with the most free memory. */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	memset(&s, 0, sizeof(s));
	facts_vms(&f, 3, 4096);
	node(&f, 2)->vm_memory_mb = 16384;
	node(&f, 3)->vm_memory_mb = 8192;
	add_vm(&s, "vm1", 1024, "", true);
	expect_step(&s, &f, "vm1", R_VM_STARTING, 2, &d);
	assert_has(d.reason, "starting on node 2");
	ck_assert(!r_plan(&s, &f, &d));
	ck_assert(!report(&s, &f, 1, "vm1", R_VM_REP_RUNNING));  /* not its node */
	ck_assert(report(&s, &f, 2, "vm1", R_VM_REP_RUNNING));
	assert_vm(&s, "vm1", R_VM_RUNNING, 2);
	ck_assert_uint_eq(vm(&s, "vm1")->starts, 1);
	assert_has(vm(&s, "vm1")->reason, "running on node 2");
	ck_assert_uint_eq(r_vm_memory_used(&s, 2), 1024);
	ck_assert(!r_plan(&s, &f, &d));
}
END_TEST

START_TEST(test_start_memory)
{
	/* Placement counts the memory of the VMs there: what does not fit stays stopped, saying why. */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	memset(&s, 0, sizeof(s));
	facts_vms(&f, 2, 8192);
	add_vm(&s, "huge", 16384, "", true);
	expect_step(&s, &f, "huge", R_VM_STOPPED, 0, &d);
	assert_has(d.reason, "MB free");
	assert_has(d.reason, "needs 16384 MB");
	ck_assert(!r_plan(&s, &f, &d));  /* said once */

	add_vm(&s, "a", 6000, ", \"priority\": 2", true);
	add_vm(&s, "b", 6000, ", \"priority\": 1", true);
	add_vm(&s, "c", 6000, "", true);
	settle(&s, &f);
	assert_vm(&s, "a", R_VM_STARTING, 1);
	assert_vm(&s, "b", R_VM_STARTING, 2);
	assert_vm(&s, "c", R_VM_STOPPED, 0);
	assert_has(vm(&s, "c")->reason, "has 2192 MB free");
}
END_TEST

START_TEST(test_start_preferred_wins)
{
	/* The preferred nodes come first, in their order, over free memory. */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	memset(&s, 0, sizeof(s));
	facts_vms(&f, 3, 4096);
	node(&f, 2)->vm_memory_mb = 32768;
	add_vm(&s, "p", 1024, ", \"preferred_nodes\": [3, 1]", true);
	add_vm(&s, "q", 1024, ", \"preferred_nodes\": [3, 1]", true);
	lose(&f, 3);
	expect_step(&s, &f, "p", R_VM_STARTING, 1, &d);
	facts_vms(&f, 3, 4096);
	node(&f, 2)->vm_memory_mb = 32768;
	expect_step(&s, &f, "q", R_VM_STARTING, 3, &d);
}
END_TEST

START_TEST(test_start_anti_soft)
{
	/* Soft anti-affinity spreads two VMs of a class over two nodes. */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	memset(&s, 0, sizeof(s));
	facts_vms(&f, 2, 8192);
	node(&f, 1)->vm_memory_mb = 32768;
	add_vm(&s, "web1", 1024, ", \"anti_affinity\": {\"class\": \"web\"}", true);
	add_vm(&s, "web2", 1024, ", \"anti_affinity\": {\"class\": \"web\"}", true);
	add_vm(&s, "x1", 1024, "", true);
	add_vm(&s, "x2", 1024, "", true);
	expect_step(&s, &f, "web1", R_VM_STARTING, 1, &d);
	expect_step(&s, &f, "web2", R_VM_STARTING, 2, &d);
	/* Without a class, both go where the memory is. */
	expect_step(&s, &f, "x1", R_VM_STARTING, 1, &d);
	expect_step(&s, &f, "x2", R_VM_STARTING, 1, &d);
}
END_TEST

START_TEST(test_start_anti_hard)
{
	/* Hard anti-affinity with one node: the second VM stays stopped, naming the class. */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	memset(&s, 0, sizeof(s));
	facts_vms(&f, 1, 32768);
	add_vm(&s, "db1", 1024, ", \"anti_affinity\": {\"class\": \"db\", \"hard\": true}", true);
	add_vm(&s, "db2", 1024, ", \"anti_affinity\": {\"class\": \"db\", \"hard\": true}", true);
	expect_step(&s, &f, "db1", R_VM_STARTING, 1, &d);
	expect_step(&s, &f, "db2", R_VM_STOPPED, 0, &d);
	assert_has(d.reason, "anti-affinity class db");
	ck_assert(!r_plan(&s, &f, &d));
	ck_assert(report(&s, &f, 1, "db1", R_VM_REP_RUNNING));
	ck_assert(!r_plan(&s, &f, &d));
	assert_vm(&s, "db2", R_VM_STOPPED, 0);
}
END_TEST

START_TEST(test_start_priority)
{
	/* The higher priority VM is decided first, and gets the room. */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	memset(&s, 0, sizeof(s));
	facts_vms(&f, 1, 8192);
	add_vm(&s, "a-low", 6000, ", \"priority\": 1", true);
	add_vm(&s, "b-high", 6000, ", \"priority\": 10", true);
	expect_step(&s, &f, "b-high", R_VM_STARTING, 1, &d);
	expect_step(&s, &f, "a-low", R_VM_STOPPED, 0, &d);
	assert_has(d.reason, "MB free");
}
END_TEST

START_TEST(test_start_timeout_counts)
{
	/* A start that hangs is stopped, and counts against the restart policy
	 * like a failed start: it is not restarted on that node forever. */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	memset(&s, 0, sizeof(s));
	facts_vms(&f, 1, 8192);
	add_vm(&s, "hang", 1024, "", true);
	for (unsigned round = 0; round < 2; round++) {
		f.now_ms = NOW + round * 1000000;
		expect_step(&s, &f, "hang", R_VM_STARTING, 1, &d);
		f.vm_phase_since_ms[0] = f.now_ms;
		ck_assert(!r_plan(&s, &f, &d));
		f.now_ms += R_VM_START_TIMEOUT_MS + 1;
		f.wall_ms += R_VM_START_TIMEOUT_MS + 1;
		expect_step(&s, &f, "hang", R_VM_STOPPING, 1, &d);
		assert_has(d.reason, "did not start");
		ck_assert(report(&s, &f, 1, "hang", R_VM_REP_STOPPED));
		assert_vm(&s, "hang", R_VM_STOPPED, 0);
	}
	/* Twice in the period, restart max 1: not on node 1 again. */
	ck_assert(!step(&s, &f, &d) || d.vm_phase != R_VM_STARTING);
	assert_vm(&s, "hang", R_VM_STOPPED, 0);
}
END_TEST

/* ---- stop ------------------------------------------------------------------------ */

START_TEST(test_stop)
{
	/* Stopping: stopping on its node, stopped once the node says so. */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	memset(&s, 0, sizeof(s));
	facts_vms(&f, 3, 8192);
	add_vm(&s, "vm1", 1024, "", false);
	run_on(&s, &f, "vm1", 2);
	ck_assert(r_apply_vm_want(&s, "vm1", false, 0, false));
	expect_step(&s, &f, "vm1", R_VM_STOPPING, 2, &d);
	ck_assert(!vm(&s, "vm1")->force);
	ck_assert(!r_plan(&s, &f, &d));
	ck_assert(!report(&s, &f, 1, "vm1", R_VM_REP_STOPPED));
	ck_assert(report(&s, &f, 2, "vm1", R_VM_REP_STOPPED));
	assert_vm(&s, "vm1", R_VM_STOPPED, 0);
	ck_assert(!vm(&s, "vm1")->want);
	ck_assert_uint_eq(vm(&s, "vm1")->nfailures, 0);
	ck_assert(!r_plan(&s, &f, &d));
}
END_TEST

START_TEST(test_stop_force)
{
	/* A power off: the stop carries the force flag until it is stopped. */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	memset(&s, 0, sizeof(s));
	facts_vms(&f, 2, 8192);
	add_vm(&s, "vm1", 1024, "", false);
	run_on(&s, &f, "vm1", 1);
	ck_assert(r_apply_vm_want(&s, "vm1", false, 0, true));
	ck_assert(vm(&s, "vm1")->force);
	expect_step(&s, &f, "vm1", R_VM_STOPPING, 1, &d);
	assert_has(d.reason, "power off");
	ck_assert(vm(&s, "vm1")->force);
	ck_assert(report(&s, &f, 1, "vm1", R_VM_REP_STOPPED));
	assert_vm(&s, "vm1", R_VM_STOPPED, 0);
	ck_assert(!vm(&s, "vm1")->force);
}
END_TEST

START_TEST(test_stop_by_guest)
{
	/* A guest that shuts itself down stays stopped: not wanted any more. */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	memset(&s, 0, sizeof(s));
	facts_vms(&f, 2, 8192);
	add_vm(&s, "vm1", 1024, "", false);
	run_on(&s, &f, "vm1", 1);
	ck_assert(report(&s, &f, 1, "vm1", R_VM_REP_STOPPED));
	assert_vm(&s, "vm1", R_VM_STOPPED, 0);
	ck_assert(!vm(&s, "vm1")->want);
	assert_has(vm(&s, "vm1")->reason, "stopped on node 1");
	ck_assert_uint_eq(vm(&s, "vm1")->nfailures, 0);
	ck_assert(!r_plan(&s, &f, &d));
}
END_TEST

/* ---- the restart policy ------------------------------------------------------------ */

START_TEST(test_restart_policy)
{
	/* A failed VM restarts on its node once, then elsewhere. */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	char why[200] = "";
	memset(&s, 0, sizeof(s));
	facts_vms(&f, 3, 8192);
	add_vm(&s, "vm1", 1024, "", false);
	run_on(&s, &f, "vm1", 2);
	ck_assert(report(&s, &f, 2, "vm1", R_VM_REP_FAILED));
	assert_vm(&s, "vm1", R_VM_STOPPED, 0);
	ck_assert(vm(&s, "vm1")->want);
	ck_assert_uint_eq(vm(&s, "vm1")->nfailures, 1);
	ck_assert_uint_eq(vm(&s, "vm1")->failures[0].node, 2);
	ck_assert_uint_eq(vm(&s, "vm1")->failures[0].time_ms, WALL);
	assert_has(vm(&s, "vm1")->reason, "failed on node 2");
	/* Node 1 would win on a tie: node 2 is chosen because it failed there. */
	expect_step(&s, &f, "vm1", R_VM_STARTING, 2, &d);
	ck_assert(report(&s, &f, 2, "vm1", R_VM_REP_RUNNING));

	f.wall_ms += 60000;
	ck_assert(report(&s, &f, 2, "vm1", R_VM_REP_FAILED));
	ck_assert_uint_eq(vm(&s, "vm1")->nfailures, 2);
	expect_step(&s, &f, "vm1", R_VM_STARTING, 1, &d);
	ck_assert(!r_vm_eligible(&s, &f, 0, 2, why, sizeof(why)));
	assert_has(why, "fail 2 times");
	ck_assert(report(&s, &f, 1, "vm1", R_VM_REP_RUNNING));
	ck_assert(!r_plan(&s, &f, &d));
}
END_TEST

START_TEST(test_restart_expire)
{
	/* Failures expire: the node is eligible again after expire_s. */
	struct r_state s;
	struct r_facts f;
	char why[200] = "";
	memset(&s, 0, sizeof(s));
	facts_vms(&f, 3, 8192);
	add_vm(&s, "vm1", 1024, ", \"restart\": {\"max\": 0, \"period_s\": 7200, \"expire_s\": 600}", false);
	run_on(&s, &f, "vm1", 2);
	ck_assert(report(&s, &f, 2, "vm1", R_VM_REP_FAILED));
	f.wall_ms += 599000;
	ck_assert(!r_vm_eligible(&s, &f, 0, 2, why, sizeof(why)));
	assert_has(why, "restart max 0");
	f.wall_ms += 2000;
	ck_assert_msg(r_vm_eligible(&s, &f, 0, 2, why, sizeof(why)), "%s", why);
	/* The default policy: node 2 back after the hour. */
	memset(&s, 0, sizeof(s));
	facts_vms(&f, 3, 8192);
	add_vm(&s, "vm2", 1024, "", false);
	run_on(&s, &f, "vm2", 2);
	ck_assert(report(&s, &f, 2, "vm2", R_VM_REP_FAILED));
	ck_assert(r_apply_vm_want(&s, "vm2", true, 2, false));
	struct r_decision d;
	expect_step(&s, &f, "vm2", R_VM_STARTING, 2, &d);
	ck_assert(report(&s, &f, 2, "vm2", R_VM_REP_FAILED));
	ck_assert(!r_vm_eligible(&s, &f, 0, 2, NULL, 0));
	f.wall_ms += 3601000;
	ck_assert(r_vm_eligible(&s, &f, 0, 2, NULL, 0));
	expect_step(&s, &f, "vm2", R_VM_STARTING, 1, &d);  /* no failure counts: a tie, lowest id */
}
END_TEST

/* ---- a lost node -------------------------------------------------------------------- */

START_TEST(test_lost_waits_for_fence)
{
	/* A lost node's VM waits for its fence, then runs on a survivor. */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	memset(&s, 0, sizeof(s));
	facts_vms(&f, 3, 8192);
	add_vm(&s, "vm1", 1024, "", false);
	run_on(&s, &f, "vm1", 1);
	lose(&f, 1);
	expect_step(&s, &f, "vm1", R_VM_WAITING_FENCE, 1, &d);
	assert_has(d.reason, "node 1 was lost");
	for (unsigned i = 0; i < 5; i++) {
		f.now_ms += 10000;
		f.wall_ms += 10000;
		ck_assert(!r_plan(&s, &f, &d));
	}
	node(&f, 1)->fence = R_FENCE_PENDING;
	for (unsigned i = 0; i < 3; i++)
		ck_assert(!r_plan(&s, &f, &d));
	assert_vm(&s, "vm1", R_VM_WAITING_FENCE, 1);
	ck_assert(r_vm_on(vm(&s, "vm1"), 1));

	/* Fenced: started on a survivor in the same decision. */
	node(&f, 1)->fence = R_FENCED;
	expect_step(&s, &f, "vm1", R_VM_STARTING, 2, &d);
	assert_has(d.reason, "fenced");
	ck_assert(!report(&s, &f, 1, "vm1", R_VM_REP_RUNNING));  /* node 1's late word */
	ck_assert(report(&s, &f, 2, "vm1", R_VM_REP_RUNNING));
	assert_vm(&s, "vm1", R_VM_RUNNING, 2);
	ck_assert(!r_plan(&s, &f, &d));
}
END_TEST

START_TEST(test_lost_any_phase)
{
	/* Starting or stopping on a lost node, a VM waits for the fence too. */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	memset(&s, 0, sizeof(s));
	facts_vms(&f, 2, 8192);
	add_vm(&s, "going", 1024, "", false);
	add_vm(&s, "coming", 1024, "", false);
	run_on(&s, &f, "going", 1);
	ck_assert(r_apply_vm_want(&s, "going", false, 0, false));
	expect_step(&s, &f, "going", R_VM_STOPPING, 1, &d);
	ck_assert(r_apply_vm_want(&s, "coming", true, 1, false));
	expect_step(&s, &f, "coming", R_VM_STARTING, 1, &d);
	lose(&f, 1);
	settle(&s, &f);
	assert_vm(&s, "going", R_VM_WAITING_FENCE, 1);
	assert_vm(&s, "coming", R_VM_WAITING_FENCE, 1);
	node(&f, 1)->fence = R_FENCED;
	settle(&s, &f);
	assert_vm(&s, "going", R_VM_STOPPED, 0);
	assert_vm(&s, "coming", R_VM_STARTING, 2);
}
END_TEST

START_TEST(test_lost_priority_order)
{
	/* The VMs of a fenced node start again, the highest priority first. */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	static const char *const names[] = { "lo", "hi", "mid" };
	static const char *const want[] = { "hi", "mid", "lo" };
	char order[3][R_NAME_MAX];
	unsigned n = 0;
	memset(&s, 0, sizeof(s));
	facts_vms(&f, 3, 4096);
	node(&f, 1)->vm_memory_mb = 16384;
	add_vm(&s, "lo", 1024, ", \"priority\": 1", false);
	add_vm(&s, "hi", 1024, ", \"priority\": 9", false);
	add_vm(&s, "mid", 1024, ", \"priority\": 5", false);
	for (unsigned i = 0; i < 3; i++)
		run_on(&s, &f, names[i], 1);
	lose(&f, 1);
	settle(&s, &f);
	for (unsigned i = 0; i < 3; i++)
		assert_vm(&s, names[i], R_VM_WAITING_FENCE, 1);
	node(&f, 1)->fence = R_FENCED;
	while (step(&s, &f, &d))
		if (d.vm_phase == R_VM_STARTING) {
			ck_assert_uint_lt(n, 3);
			ck_assert_uint_ne(d.node, 1);
			snprintf(order[n++], R_NAME_MAX, "%s", d.vm);
		}
	ck_assert_uint_eq(n, 3);
	for (unsigned i = 0; i < 3; i++)
		ck_assert_str_eq(order[i], want[i]);
}
END_TEST

START_TEST(test_lost_source_migration_lands)
{
	/* The source lost during a live migration: waiting for its fence, the
	 * target kept; the target's report lands the VM there. */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	memset(&s, 0, sizeof(s));
	facts_vms(&f, 3, 8192);
	add_vm(&s, "vm1", 1024, "", false);
	run_on(&s, &f, "vm1", 1);
	migrating(&s, &f, "vm1", 2, false);
	struct r_vm_report_info in = { .port = 49152, .time_ms = WALL, .downtime_ms = -1 };
	ck_assert(r_apply_vm_report(&s, 2, "vm1", R_VM_REP_INCOMING, &in));
	lose(&f, 1);
	expect_step(&s, &f, "vm1", R_VM_WAITING_FENCE, 1, &d);
	ck_assert_uint_eq(d.target, 2);
	ck_assert_uint_eq(vm(&s, "vm1")->target, 2);
	for (unsigned i = 0; i < 3; i++)
		ck_assert(!r_plan(&s, &f, &d));
	node(&f, 1)->fence = R_FENCE_PENDING;
	ck_assert(!r_plan(&s, &f, &d));
	ck_assert(report(&s, &f, 2, "vm1", R_VM_REP_MIGRATED));
	assert_vm(&s, "vm1", R_VM_RUNNING, 2);
	ck_assert_uint_eq(vm(&s, "vm1")->target, 0);
	ck_assert_uint_eq(vm(&s, "vm1")->migrations, 1);
	node(&f, 1)->fence = R_FENCED;
	ck_assert(!r_plan(&s, &f, &d));
}
END_TEST

START_TEST(test_lost_source_target_keeps_memory)
{
	/* While the source of a live migration waits for its fence, the
	 * target's QEMU (which may run the guest) keeps its memory taken. */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	memset(&s, 0, sizeof(s));
	facts_vms(&f, 3, 8192);
	add_vm(&s, "big", 6000, "", false);
	run_on(&s, &f, "big", 1);
	migrating(&s, &f, "big", 2, false);
	lose(&f, 1);
	expect_step(&s, &f, "big", R_VM_WAITING_FENCE, 1, &d);
	ck_assert_uint_ge(r_vm_memory_used(&s, 2), 6000);
	add_vm(&s, "other", 6000, "", true);
	expect_step(&s, &f, "other", R_VM_STARTING, 3, &d);
}
END_TEST

START_TEST(test_lost_source_fenced_before_target_reports)
{
	/* The source is fenced before the target of a live migration said how
	 * it ended: the target may run the guest (its QEMU resumes it by
	 * itself once the state came), so the VM is not freed from it nor
	 * started on another node until node 2 says. */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	memset(&s, 0, sizeof(s));
	facts_vms(&f, 3, 8192);
	add_vm(&s, "vm1", 1024, "", false);
	run_on(&s, &f, "vm1", 1);
	migrating(&s, &f, "vm1", 2, false);
	struct r_vm_report_info in = { .port = 49152, .time_ms = WALL, .downtime_ms = -1 };
	ck_assert(r_apply_vm_report(&s, 2, "vm1", R_VM_REP_INCOMING, &in));
	lose(&f, 1);
	expect_step(&s, &f, "vm1", R_VM_WAITING_FENCE, 1, &d);
	node(&f, 1)->fence = R_FENCED;
	settle(&s, &f);  /* assert_vm_safe: never off node 2 without its word */
	const struct r_vm *v = vm(&s, "vm1");
	ck_assert_msg(r_vm_on(v, 2) && !r_vm_on(v, 1) && !r_vm_on(v, 3), "VM vm1: %s on node %u, target %u (%s)",
		      r_vm_phase_str(v->phase), v->node, v->target, v->reason);
	/* Node 2 says its QEMU is gone: only now it may start anywhere. */
	ck_assert(report(&s, &f, 2, "vm1", R_VM_REP_STOPPED) || v->phase == R_VM_STOPPED);
	settle(&s, &f);
	ck_assert(vm(&s, "vm1")->phase == R_VM_STARTING);
}
END_TEST

/* ---- live and quick migration -------------------------------------------------------- */

START_TEST(test_migrate_live)
{
	/* Live migration: target listens, source says migrated: running on the target. */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	memset(&s, 0, sizeof(s));
	facts_vms(&f, 3, 8192);
	add_vm(&s, "vm1", 1024, "", false);
	run_on(&s, &f, "vm1", 1);
	migrating(&s, &f, "vm1", 2, false);
	ck_assert_uint_eq(vm(&s, "vm1")->mig_start_ms, WALL);
	ck_assert(r_vm_on(vm(&s, "vm1"), 1) && r_vm_on(vm(&s, "vm1"), 2));
	struct r_vm_report_info in = { .port = 49152, .time_ms = WALL, .downtime_ms = -1 };
	ck_assert(!r_apply_vm_report(&s, 3, "vm1", R_VM_REP_INCOMING, &in));
	ck_assert(!r_apply_vm_report(&s, 1, "vm1", R_VM_REP_INCOMING, &in));
	ck_assert(r_apply_vm_report(&s, 2, "vm1", R_VM_REP_INCOMING, &in));
	ck_assert_uint_eq(vm(&s, "vm1")->port, 49152);
	ck_assert(!r_apply_vm_report(&s, 2, "vm1", R_VM_REP_INCOMING, &in));  /* said already */
	ck_assert(!r_plan(&s, &f, &d));
	ck_assert(!report(&s, &f, 3, "vm1", R_VM_REP_MIGRATED));
	f.wall_ms += 2500;
	ck_assert(report(&s, &f, 1, "vm1", R_VM_REP_MIGRATED));
	const struct r_vm *v = vm(&s, "vm1");
	assert_vm(&s, "vm1", R_VM_RUNNING, 2);
	ck_assert_uint_eq(v->target, 0);
	ck_assert_uint_eq(v->port, 0);
	ck_assert_uint_eq(v->migrations, 1);
	ck_assert(v->have_last_mig);
	ck_assert_uint_eq(v->last_mig.from, 1);
	ck_assert_uint_eq(v->last_mig.to, 2);
	ck_assert(!v->last_mig.quick && v->last_mig.ok);
	ck_assert_uint_eq(v->last_mig.total_ms, 2500);
	assert_has(v->reason, "live migration from node 1");
	ck_assert(!r_vm_on(v, 1));
	ck_assert(!r_plan(&s, &f, &d));
}
END_TEST

START_TEST(test_migrate_live_target_reports)
{
	/* The target's word ends a live migration too: migrated, or running. */
	struct r_state s;
	struct r_facts f;
	memset(&s, 0, sizeof(s));
	facts_vms(&f, 3, 8192);
	add_vm(&s, "vm1", 1024, "", false);
	add_vm(&s, "vm2", 1024, "", false);
	run_on(&s, &f, "vm1", 1);
	run_on(&s, &f, "vm2", 1);
	migrating(&s, &f, "vm1", 2, false);
	migrating(&s, &f, "vm2", 3, false);
	struct r_vm_report_info info = { .time_ms = WALL + 900, .total_ms = 800, .downtime_ms = 25 };
	ck_assert(r_apply_vm_report(&s, 2, "vm1", R_VM_REP_MIGRATED, &info));
	assert_vm(&s, "vm1", R_VM_RUNNING, 2);
	ck_assert_uint_eq(vm(&s, "vm1")->migrations, 1);
	ck_assert_uint_eq(vm(&s, "vm1")->last_mig.total_ms, 800);
	ck_assert_int_eq(vm(&s, "vm1")->last_mig.downtime_ms, 25);
	ck_assert(!r_apply_vm_report(&s, 2, "vm1", R_VM_REP_MIGRATED, &info));  /* over already */
	ck_assert(report(&s, &f, 3, "vm2", R_VM_REP_RUNNING));
	assert_vm(&s, "vm2", R_VM_RUNNING, 3);
	ck_assert_uint_eq(vm(&s, "vm2")->migrations, 1);
	ck_assert_uint_eq(vm(&s, "vm2")->last_mig.from, 1);
	ck_assert_uint_eq(vm(&s, "vm2")->last_mig.to, 3);
	ck_assert(vm(&s, "vm2")->last_mig.ok);
}
END_TEST

START_TEST(test_migrate_quick_done)
{
	/* Once a quick migration landed, no migration is under way: not quick any more. */
	struct r_state s;
	struct r_facts f;
	memset(&s, 0, sizeof(s));
	facts_vms(&f, 2, 8192);
	add_vm(&s, "vm1", 1024, "", false);
	run_on(&s, &f, "vm1", 1);
	migrating(&s, &f, "vm1", 2, true);
	ck_assert(report(&s, &f, 1, "vm1", R_VM_REP_SAVED));
	ck_assert(report(&s, &f, 2, "vm1", R_VM_REP_RUNNING));
	assert_vm(&s, "vm1", R_VM_RUNNING, 2);
	ck_assert_msg(!vm(&s, "vm1")->quick, "VM vm1 runs on node 2, its state still says a quick migration");
}
END_TEST

START_TEST(test_migrate_failed)
{
	/* A failed live migration: running on the source, no retry loop. */
	struct r_state s;
	struct r_facts f;
	memset(&s, 0, sizeof(s));
	facts_vms(&f, 3, 8192);
	add_vm(&s, "vm1", 1024, "", false);
	run_on(&s, &f, "vm1", 1);
	migrating(&s, &f, "vm1", 2, false);
	struct r_vm_report_info info = { .time_ms = WALL + 100, .downtime_ms = -1, .reason = "CPU mismatch" };
	ck_assert(r_apply_vm_report(&s, 1, "vm1", R_VM_REP_MIGRATE_FAILED, &info));
	const struct r_vm *v = vm(&s, "vm1");
	assert_vm(&s, "vm1", R_VM_RUNNING, 1);
	ck_assert_uint_eq(v->target, 0);
	ck_assert_uint_eq(v->port, 0);
	ck_assert_uint_eq(v->migrations, 0);
	ck_assert(v->live_failed);
	ck_assert(v->have_last_mig && !v->last_mig.ok);
	ck_assert_uint_eq(v->last_mig.to, 2);
	assert_has(v->reason, "CPU mismatch");
	ck_assert(!r_vm_on(v, 2));
	ck_assert_uint_eq(settle(&s, &f), 0);
	ck_assert(!r_apply_vm_report(&s, 1, "vm1", R_VM_REP_MIGRATE_FAILED, &info));
}
END_TEST

START_TEST(test_cpu_common)
{
	/* The flags every node has, in the order of the first node's. */
	const char *lists[] = { "fpu sse4_1 avx2 aes", "aes fpu avx2", "avx2 fpu aes sse4_1" };
	char buf[64];
	r_cpu_common(lists, 3, buf, sizeof(buf));
	ck_assert_str_eq(buf, "fpu avx2 aes");
	r_cpu_common(lists, 1, buf, sizeof(buf));
	ck_assert_str_eq(buf, "fpu sse4_1 avx2 aes");
	r_cpu_common(lists, 0, buf, sizeof(buf));
	ck_assert_str_eq(buf, "");
	r_cpu_common(lists, 3, buf, 8);  /* the whole words that fit: a subset */
	ck_assert_str_eq(buf, "fpu aes");
}
END_TEST

START_TEST(test_migrate_cpu)
{
	/* A VM may migrate only to a node with every CPU flag of its node,
	 * unless cpu_compat limits it to the cluster's common set. */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	char why[300];
	memset(&s, 0, sizeof(s));
	facts_vms(&f, 3, 8192);
	node(&f, 1)->cpu_flags = "fpu sse4_1 avx2";
	node(&f, 2)->cpu_flags = "fpu sse4_1";
	node(&f, 3)->cpu_flags = "avx2 sse4_1 fpu aes";
	add_vm(&s, "vm1", 1024, "", false);
	add_vm(&s, "vm2", 1024, ", \"cpu_compat\": true", false);
	run_on(&s, &f, "vm1", 1);
	run_on(&s, &f, "vm2", 1);
	ck_assert(!r_vm_eligible(&s, &f, 0, 2, why, sizeof(why)));
	assert_has(why, "lacks CPU feature(s) avx2 that vm1 uses");
	ck_assert(r_vm_eligible(&s, &f, 0, 3, why, sizeof(why)));
	ck_assert(r_vm_eligible(&s, &f, 1, 2, why, sizeof(why)));
	ck_assert(r_apply_vm_migrate(&s, "vm1", 2, false));
	expect_step(&s, &f, "vm1", R_VM_RUNNING, 1, &d);
	assert_has(d.reason, "avx2");
	ck_assert(r_apply_vm_migrate(&s, "vm2", 2, false));
	expect_step(&s, &f, "vm2", R_VM_MIGRATING, 1, &d);
	ck_assert_uint_eq(d.target, 2);
	/* A stopped VM starts anywhere: it takes the node's CPU. */
	ck_assert(r_apply_vm_want(&s, "vm1", false, 0, false));
	expect_step(&s, &f, "vm1", R_VM_STOPPING, 1, &d);
	ck_assert(report(&s, &f, 1, "vm1", R_VM_REP_STOPPED));
	ck_assert(r_vm_eligible(&s, &f, 0, 2, why, sizeof(why)));
}
END_TEST

START_TEST(test_migrate_refused)
{
	/* A migration to a node that cannot take it is refused with the reason. */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	memset(&s, 0, sizeof(s));
	facts_vms(&f, 3, 8192);
	node(&f, 3)->vm_memory_mb = 512;
	add_vm(&s, "vm1", 1024, "", false);
	run_on(&s, &f, "vm1", 1);
	ck_assert(r_apply_vm_migrate(&s, "vm1", 3, false));
	expect_step(&s, &f, "vm1", R_VM_RUNNING, 1, &d);
	assert_has(d.reason, "not migrated");
	assert_has(d.reason, "needs 1024 MB");
	ck_assert_uint_eq(vm(&s, "vm1")->target, 0);
	ck_assert(!r_plan(&s, &f, &d));
	/* Node 2 drained and paused. */
	ck_assert(r_apply_node_admin(&s, 2, true, false));
	ck_assert(step(&s, &f, &d));
	ck_assert_int_eq(d.kind, R_DEC_NODE);
	ck_assert_int_eq(r_admin_of(&s, 2), R_PAUSED);
	ck_assert(r_apply_vm_migrate(&s, "vm1", 2, false));
	expect_step(&s, &f, "vm1", R_VM_RUNNING, 1, &d);
	assert_has(d.reason, "paused");
	ck_assert(!r_plan(&s, &f, &d));
	/* Only a running VM migrates. */
	ck_assert(r_apply_vm_want(&s, "vm1", false, 0, false));
	expect_step(&s, &f, "vm1", R_VM_STOPPING, 1, &d);
	ck_assert(!r_apply_vm_migrate(&s, "vm1", 3, false));
}
END_TEST

START_TEST(test_migrate_quick)
{
	/* Quick migration: saved on the source, started from it on the target. */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	memset(&s, 0, sizeof(s));
	facts_vms(&f, 3, 8192);
	add_vm(&s, "vm1", 1024, "", false);
	run_on(&s, &f, "vm1", 1);
	migrating(&s, &f, "vm1", 2, true);
	struct r_vm_report_info in = { .port = 49152, .time_ms = WALL, .downtime_ms = -1 };
	ck_assert(!r_apply_vm_report(&s, 2, "vm1", R_VM_REP_INCOMING, &in));
	ck_assert(!report(&s, &f, 1, "vm1", R_VM_REP_MIGRATED));
	ck_assert(!report(&s, &f, 2, "vm1", R_VM_REP_SAVED));
	ck_assert(report(&s, &f, 1, "vm1", R_VM_REP_SAVED));
	assert_vm(&s, "vm1", R_VM_STARTING, 2);
	ck_assert(vm(&s, "vm1")->saved);
	ck_assert(!r_vm_on(vm(&s, "vm1"), 1));
	ck_assert(!r_plan(&s, &f, &d));
	f.wall_ms += 5000;
	ck_assert(report(&s, &f, 2, "vm1", R_VM_REP_RUNNING));
	const struct r_vm *v = vm(&s, "vm1");
	assert_vm(&s, "vm1", R_VM_RUNNING, 2);
	ck_assert(!v->saved);
	ck_assert_uint_eq(v->migrations, 1);
	ck_assert(v->have_last_mig && v->last_mig.quick && v->last_mig.ok);
	ck_assert_uint_eq(v->last_mig.from, 1);
	ck_assert_uint_eq(v->last_mig.to, 2);
	ck_assert_uint_eq(v->last_mig.total_ms, 5000);
	ck_assert(!r_plan(&s, &f, &d));
}
END_TEST

/* ---- drain and resume ------------------------------------------------------------------ */

/* Node 1 runs the VMs of names (1024 MB each); nodes 2 and 3 are empty. */
static void three_nodes_with(struct r_state *s, struct r_facts *f, const char *const *names, const char *const *extra,
			     unsigned n)
{
	memset(s, 0, sizeof(*s));
	facts_vms(f, 3, 16384);
	for (unsigned i = 0; i < n; i++) {
		add_vm(s, names[i], 1024, extra[i], false);
		run_on(s, f, names[i], 1);
	}
}

/* How many VMs migrate from node. */
static unsigned migrating_from(const struct r_state *s, uint32_t from)
{
	unsigned n = 0;
	for (uint32_t i = 0; i < s->nvms; i++)
		n += s->vms[i].phase == R_VM_MIGRATING && s->vms[i].node == from;
	return n;
}

START_TEST(test_drain_one_at_a_time)
{
	/* Drain: one migration at a time, in priority order, each to return to node 1; then paused. */
	static const char *const names[] = { "lo", "hi", "mid" };
	static const char *const extra[] = { ", \"priority\": 1", ", \"priority\": 9", ", \"priority\": 5" };
	static const char *const want[] = { "hi", "mid", "lo" };
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	three_nodes_with(&s, &f, names, extra, 3);
	ck_assert(r_apply_node_admin(&s, 1, true, false));
	ck_assert_int_eq(r_admin_of(&s, 1), R_DRAINING);
	for (unsigned i = 0; i < 3; i++) {
		ck_assert(step(&s, &f, &d));
		ck_assert_int_eq(d.kind, R_DEC_VM);
		ck_assert_str_eq(d.vm, want[i]);
		ck_assert_int_eq(d.vm_phase, R_VM_MIGRATING);
		ck_assert_uint_eq(d.node, 1);
		ck_assert_uint_ne(d.target, 1);
		ck_assert(!d.quick);
		ck_assert(d.set_return_to);
		ck_assert_uint_eq(vm(&s, want[i])->return_to, 1);
		assert_has(d.reason, "drained");
		ck_assert_uint_eq(migrating_from(&s, 1), 1);
		ck_assert(!r_plan(&s, &f, &d));  /* the next waits */
		ck_assert(report(&s, &f, 1, want[i], R_VM_REP_MIGRATED));
		ck_assert_uint_ne(vm(&s, want[i])->node, 1);
	}
	ck_assert(step(&s, &f, &d));
	ck_assert_int_eq(d.kind, R_DEC_NODE);
	ck_assert_uint_eq(d.node, 1);
	ck_assert_int_eq(d.admin, R_PAUSED);
	ck_assert_int_eq(r_admin_of(&s, 1), R_PAUSED);
	ck_assert(!r_plan(&s, &f, &d));
}
END_TEST

START_TEST(test_drain_quick)
{
	/* A VM whose migration is quick is drained by a quick migration. */
	static const char *const names[] = { "q" };
	static const char *const extra[] = { ", \"migration\": \"quick\"" };
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	three_nodes_with(&s, &f, names, extra, 1);
	ck_assert(r_apply_node_admin(&s, 1, true, false));
	ck_assert(step(&s, &f, &d));
	ck_assert_int_eq(d.vm_phase, R_VM_MIGRATING);
	ck_assert(d.quick);
	ck_assert(vm(&s, "q")->quick);
	uint32_t to = d.target;
	ck_assert(report(&s, &f, 1, "q", R_VM_REP_SAVED));
	assert_vm(&s, "q", R_VM_STARTING, to);
	ck_assert(report(&s, &f, to, "q", R_VM_REP_RUNNING));
	ck_assert(vm(&s, "q")->last_mig.quick);
	ck_assert(step(&s, &f, &d));
	ck_assert_int_eq(d.kind, R_DEC_NODE);
	ck_assert_int_eq(r_admin_of(&s, 1), R_PAUSED);
}
END_TEST

START_TEST(test_drain_after_live_failed)
{
	/* After a failed live migration, the drain tries a quick one. */
	static const char *const names[] = { "vm1" };
	static const char *const extra[] = { "" };
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	three_nodes_with(&s, &f, names, extra, 1);
	ck_assert(r_apply_node_admin(&s, 1, true, false));
	ck_assert(step(&s, &f, &d));
	ck_assert(d.vm_phase == R_VM_MIGRATING && !d.quick);
	ck_assert(report(&s, &f, 1, "vm1", R_VM_REP_MIGRATE_FAILED));
	assert_vm(&s, "vm1", R_VM_RUNNING, 1);
	ck_assert(step(&s, &f, &d));
	ck_assert_str_eq(d.vm, "vm1");
	ck_assert(d.vm_phase == R_VM_MIGRATING && d.quick);
	assert_has(d.reason, "quick");
}
END_TEST

START_TEST(test_drain_holds_volume)
{
	/* A drained node that still holds a volume role is not paused until the role is gone. */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	memset(&s, 0, sizeof(s));
	facts_vms(&f, 2, 8192);
	ck_assert_int_eq(r_volume_add(&s, "vol1", "0001-aaaa", 7000), 0);
	node(&f, 1)->has[0] = node(&f, 1)->san_ok[0] = true;  /* only node 1 serves it */
	struct r_decision v = { .kind = R_DEC_VOLUME, .based_on = s.version, .holder = 1, .phase = R_STARTING };
	snprintf(v.volume, sizeof(v.volume), "vol1");
	ck_assert(r_apply_decision(&s, &v));
	ck_assert(r_apply_report(&s, 1, "vol1", R_REPORT_RUNNING, 7, NULL));
	ck_assert(r_apply_node_admin(&s, 1, true, false));
	ck_assert(!r_plan(&s, &f, &d));
	ck_assert_int_eq(r_admin_of(&s, 1), R_DRAINING);
	ck_assert(r_apply_report(&s, 1, "vol1", R_REPORT_STOPPED, 0, "stopped"));
	settle(&s, &f);
	ck_assert_int_eq(r_admin_of(&s, 1), R_PAUSED);
}
END_TEST

START_TEST(test_drain_idempotent)
{
	/* Draining a draining or paused node changes nothing. */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	memset(&s, 0, sizeof(s));
	facts_vms(&f, 2, 8192);
	ck_assert(r_apply_node_admin(&s, 1, true, false));
	uint64_t version = s.version;
	ck_assert(!r_apply_node_admin(&s, 1, true, false));
	ck_assert_uint_eq(s.version, version);
	ck_assert(step(&s, &f, &d));
	ck_assert_int_eq(r_admin_of(&s, 1), R_PAUSED);
	version = s.version;
	ck_assert(!r_apply_node_admin(&s, 1, true, true));
	ck_assert_uint_eq(s.version, version);
	ck_assert_int_eq(r_admin_of(&s, 1), R_PAUSED);
	ck_assert_uint_eq(s.nnodes, 1);
	ck_assert(!r_apply_node_admin(&s, 0, true, false));
}
END_TEST

/* vm1 (with extra) drained from node 1 to another node, node 1 paused. */
static uint32_t drained(struct r_state *s, struct r_facts *f, const char *extra)
{
	static const char *const names[] = { "vm1" };
	const char *extras[] = { extra };
	struct r_decision d;
	three_nodes_with(s, f, names, extras, 1);
	ck_assert(r_apply_node_admin(s, 1, true, false));
	ck_assert(step(s, f, &d));
	uint32_t to = d.target;
	if (d.quick) {
		ck_assert(report(s, f, 1, "vm1", R_VM_REP_SAVED));
		ck_assert(report(s, f, to, "vm1", R_VM_REP_RUNNING));
	} else {
		ck_assert(report(s, f, 1, "vm1", R_VM_REP_MIGRATED));
	}
	settle(s, f);
	assert_vm(s, "vm1", R_VM_RUNNING, to);
	ck_assert_uint_eq(vm(s, "vm1")->return_to, 1);
	ck_assert_int_eq(r_admin_of(s, 1), R_PAUSED);
	return to;
}

START_TEST(test_resume_no_failback)
{
	/* Resume without failback: the VMs stay, return_to is forgotten. */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	uint32_t to = drained(&s, &f, "");
	ck_assert(r_apply_node_admin(&s, 1, false, false));
	ck_assert_int_eq(r_admin_of(&s, 1), R_ACTIVE);
	ck_assert_uint_eq(vm(&s, "vm1")->return_to, 0);
	ck_assert_uint_eq(vm(&s, "vm1")->target, 0);
	ck_assert(!r_plan(&s, &f, &d));
	assert_vm(&s, "vm1", R_VM_RUNNING, to);
	ck_assert(!r_apply_node_admin(&s, 1, false, false));  /* active already */
}
END_TEST

START_TEST(test_resume_failback)
{
	/* Resume with failback: the drained VMs migrate back. */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	uint32_t to = drained(&s, &f, "");
	ck_assert(r_apply_node_admin(&s, 1, false, true));
	ck_assert_int_eq(r_admin_of(&s, 1), R_ACTIVE);
	ck_assert_uint_eq(vm(&s, "vm1")->return_to, 0);
	expect_step(&s, &f, "vm1", R_VM_MIGRATING, to, &d);
	ck_assert_uint_eq(d.target, 1);
	ck_assert(report(&s, &f, to, "vm1", R_VM_REP_MIGRATED));
	assert_vm(&s, "vm1", R_VM_RUNNING, 1);
	ck_assert(!r_plan(&s, &f, &d));
}
END_TEST

START_TEST(test_resume_failback_quick)
{
	/* A VM whose migration is quick returns by a quick migration too, even
	 * when something happened to it meanwhile (its node lost, restarted). */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	uint32_t to = drained(&s, &f, ", \"migration\": \"quick\"");
	uint32_t other = to == 2 ? 3 : 2;
	lose(&f, to);
	node(&f, to)->fence = R_FENCED;
	settle(&s, &f);
	assert_vm(&s, "vm1", R_VM_STARTING, other);
	ck_assert(report(&s, &f, other, "vm1", R_VM_REP_RUNNING));
	ck_assert_uint_eq(vm(&s, "vm1")->return_to, 1);
	ck_assert(r_apply_node_admin(&s, 1, false, true));
	expect_step(&s, &f, "vm1", R_VM_MIGRATING, other, &d);
	ck_assert_uint_eq(d.target, 1);
	ck_assert_msg(d.quick, "a VM whose migration is quick returns by a live migration: %s", d.reason);
}
END_TEST

START_TEST(test_paused_no_new_vm)
{
	/* A paused node gets no new VM, however much memory it has. */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	char why[200] = "";
	memset(&s, 0, sizeof(s));
	facts_vms(&f, 2, 4096);
	node(&f, 1)->vm_memory_mb = 65536;
	ck_assert(r_apply_node_admin(&s, 1, true, false));
	ck_assert(step(&s, &f, &d));
	ck_assert_int_eq(r_admin_of(&s, 1), R_PAUSED);
	add_vm(&s, "vm1", 1024, ", \"preferred_nodes\": [1]", true);
	expect_step(&s, &f, "vm1", R_VM_STARTING, 2, &d);
	ck_assert(!r_vm_eligible(&s, &f, 0, 1, why, sizeof(why)));
	assert_has(why, "paused");
}
END_TEST

/* ---- failback ----------------------------------------------------------------------- */

/* VM fb, preferred node 1 with failback policy, started on node 2 while
 * node 1 was lost; node 1 is back at hour. Whether the leader moves it
 * back (checking the decision when it does). */
static bool fails_back_at(struct r_state *s, struct r_facts *f, const char *failback, int hour)
{
	struct r_decision d;
	char extra[128];
	memset(s, 0, sizeof(*s));
	facts_vms(f, 2, 8192);
	snprintf(extra, sizeof(extra), ", \"preferred_nodes\": [1], \"failback\": \"%s\"", failback);
	add_vm(s, "fb", 1024, extra, true);
	lose(f, 1);
	expect_step(s, f, "fb", R_VM_STARTING, 2, &d);
	ck_assert(report(s, f, 2, "fb", R_VM_REP_RUNNING));
	ck_assert(!r_plan(s, f, &d));
	facts_vms(f, 2, 8192);
	f->hour = hour;
	if (!step(s, f, &d))
		return false;
	ck_assert_str_eq(d.vm, "fb");
	ck_assert_int_eq(d.vm_phase, R_VM_MIGRATING);
	ck_assert_uint_eq(d.node, 2);
	ck_assert_uint_eq(d.target, 1);
	assert_has(d.reason, "failback");
	return true;
}

START_TEST(test_failback_immediate)
{
	/* failback immediate: back on node 1 as soon as it is back. */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	ck_assert(fails_back_at(&s, &f, "immediate", 3));
	ck_assert(report(&s, &f, 2, "fb", R_VM_REP_MIGRATED));
	assert_vm(&s, "fb", R_VM_RUNNING, 1);
	ck_assert(!r_plan(&s, &f, &d));
}
END_TEST

START_TEST(test_failback_never)
{
	/* failback never: it stays where it is. */
	struct r_state s;
	struct r_facts f;
	ck_assert(!fails_back_at(&s, &f, "never", 12));
	assert_vm(&s, "fb", R_VM_RUNNING, 2);
}
END_TEST

START_TEST(test_failback_window)
{
	/* failback 08-18: only from 8:00 to 17:59. */
	struct r_state s;
	struct r_facts f;
	ck_assert(fails_back_at(&s, &f, "08-18", 12));
	ck_assert(fails_back_at(&s, &f, "08-18", 8));
	ck_assert(!fails_back_at(&s, &f, "08-18", 18));
	ck_assert(!fails_back_at(&s, &f, "08-18", 20));
	ck_assert(!fails_back_at(&s, &f, "08-18", 3));
}
END_TEST

START_TEST(test_failback_window_midnight)
{
	/* failback 22-06: from 22:00 to 5:59, across midnight. */
	struct r_state s;
	struct r_facts f;
	ck_assert(fails_back_at(&s, &f, "22-06", 23));
	ck_assert(fails_back_at(&s, &f, "22-06", 22));
	ck_assert(fails_back_at(&s, &f, "22-06", 0));
	ck_assert(fails_back_at(&s, &f, "22-06", 5));
	ck_assert(!fails_back_at(&s, &f, "22-06", 6));
	ck_assert(!fails_back_at(&s, &f, "22-06", 12));
	ck_assert(!fails_back_at(&s, &f, "22-06", 21));
}
END_TEST

/* ---- remove ----------------------------------------------------------------------- */

START_TEST(test_remove_only_stopped)
{
	/* Only a stopped VM is removed. */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	memset(&s, 0, sizeof(s));
	facts_vms(&f, 2, 8192);
	add_vm(&s, "vm1", 1024, "", false);
	add_vm(&s, "vm2", 1024, "", false);
	run_on(&s, &f, "vm1", 1);
	uint64_t version = s.version;
	ck_assert(!r_apply_vm_remove(&s, "vm1"));
	ck_assert(!r_apply_vm_remove(&s, "nope"));
	ck_assert_uint_eq(s.version, version);
	ck_assert(r_apply_vm_want(&s, "vm1", false, 0, false));
	expect_step(&s, &f, "vm1", R_VM_STOPPING, 1, &d);
	ck_assert(!r_apply_vm_remove(&s, "vm1"));
	ck_assert(report(&s, &f, 1, "vm1", R_VM_REP_STOPPED));
	version = s.version;
	ck_assert(r_apply_vm_remove(&s, "vm1"));
	ck_assert_uint_gt(s.version, version);
	ck_assert_uint_eq(s.nvms, 1);
	ck_assert_ptr_null(r_vm_find(&s, "vm1"));
	ck_assert_str_eq(s.vms[0].name, "vm2");
	ck_assert(r_apply_vm_remove(&s, "vm2"));
	ck_assert_uint_eq(s.nvms, 0);
}
END_TEST

/* ---- the suite ------------------------------------------------------------------------- */

static Suite *vm_state_suite(void)
{
	Suite *s = suite_create("rmd-vm-state");
	ADD_CASE(s, "definition", test_def_defaults, test_def_all_fields, test_def_bad_fields);
	ADD_CASE(s, "json", test_json_vms_round_trip, test_json_vm_damaged, test_json_no_vms, test_json_decisions);
	ADD_CASE(s, "start", test_start_most_free_memory, test_start_memory, test_start_preferred_wins,
		 test_start_anti_soft, test_start_anti_hard, test_start_priority, test_start_timeout_counts);
	ADD_CASE(s, "stop", test_stop, test_stop_force, test_stop_by_guest);
	ADD_CASE(s, "restart", test_restart_policy, test_restart_expire);
	ADD_CASE(s, "lost-node", test_lost_waits_for_fence, test_lost_any_phase, test_lost_priority_order,
		 test_lost_source_migration_lands, test_lost_source_target_keeps_memory,
		 test_lost_source_fenced_before_target_reports);
	ADD_CASE(s, "migration", test_migrate_live, test_migrate_live_target_reports, test_migrate_failed,
		 test_migrate_refused, test_migrate_quick, test_migrate_quick_done, test_cpu_common, test_migrate_cpu);
	ADD_CASE(s, "drain", test_drain_one_at_a_time, test_drain_quick, test_drain_after_live_failed,
		 test_drain_holds_volume, test_drain_idempotent, test_resume_no_failback, test_resume_failback,
		 test_resume_failback_quick, test_paused_no_new_vm);
	ADD_CASE(s, "failback", test_failback_immediate, test_failback_never, test_failback_window,
		 test_failback_window_midnight);
	ADD_CASE(s, "remove", test_remove_only_stopped);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(vm_state_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
