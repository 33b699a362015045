/* SPDX-License-Identifier: GPL-2.0-or-later */
/* csvctl node list|drain|resume: the nodes as csv-rmd knows them
 * (lib/rmd-ipc.h); a node drained for maintenance (its VMs migrate away,
 * its coordinators move, then it is paused) and resumed, with its VMs
 * failing back on request. Drain and resume follow the state (follow.c):
 * the node's "admin", and the "node", "phase" and "return_to" of each VM. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "csvctl.h"
#include "rmd-ipc.h"

#define DRAIN_WAIT_S 300.0
#define RESUME_WAIT_S 300.0

/* ---- node list ------------------------------------------------------------------- */

/* "vol1,vol2", or "-". */
static const char *roles(struct json_object *n, char *buf, size_t len)
{
	struct json_object *r = get(n, "roles");
	buf[0] = '\0';
	for (size_t i = 0; i < count(r); i++) {
		size_t l = strlen(buf);
		snprintf(buf + l, len - l, "%s%s", l ? "," : "", json_object_get_string(at(r, i)));
	}
	return buf[0] ? buf : "-";
}

/* The table of node list. */
static void print_nodes(struct json_object *state)
{
	struct json_object *nodes = get(state, "nodes");
	int64_t self = geti(state, "node_id");
	int wname = 4, waddr = 7;
	char name[128];

	if (!count(nodes)) {
		printf("no nodes\n");
		return;
	}
	for (size_t i = 0; i < count(nodes); i++) {
		struct json_object *n = at(nodes, i);
		snprintf(name, sizeof(name), "%s%s", gets(n, "name", "-"), geti(n, "id") == self ? "*" : "");
		wname = col_width(wname, name);
		waddr = col_width(waddr, gets(n, "address", "-"));
	}
	printf("%-4s  %-*s  %-*s  %-6s  %-7s  %-7s  %-8s  %s\n", "ID", wname, "NAME", waddr, "ADDRESS", "MEMBER",
	       "QUORATE", "FENCE", "ADMIN", "ROLES");
	for (size_t i = 0; i < count(nodes); i++) {
		struct json_object *n = at(nodes, i);
		const char *fence = gets(n, "fence", "?");
		char rbuf[1024];
		snprintf(name, sizeof(name), "%s%s", gets(n, "name", "-"), geti(n, "id") == self ? "*" : "");
		printf("%-4" PRId64 "  %-*s  %-*s  %-6s  %-7s  %-7s  %-8s  %s\n", geti(n, "id"), wname, name, waddr,
		       gets(n, "address", "-"), yesno(getb(n, "member")), yesno(getb(n, "quorate")),
		       strcmp(fence, "none") == 0 ? "-" : fence, gets(n, "admin", "?"), roles(n, rbuf, sizeof(rbuf)));
	}
}

/* node list [--json] */
static int node_list(const struct ctl_args *a)
{
	return rmd_list_command(a, "node list", "nodes", print_nodes);
}

/* ---- following a drain or a resume -------------------------------------------------- */

/* What the steps of drain and resume keep between two states. */
struct node_wait {
	int64_t id;
	char name[64];
	bool failback;
	bool left_active;           /* the node was seen draining or paused (drain) */
	struct json_object *leaving; /* drain: VM name -> {"since": S, "kind": K} of those on the node */
	struct json_object *vms;    /* resume: VM name -> its VM_* progress */
	size_t given_up;            /* VMs that did not fail back (resume) */
};

/* The progress of a VM followed by a resume. */
enum { VM_ON = 0, VM_MIGRATING = 1, VM_BACK = 2, VM_GAVE_UP = 3 };

static int vm_mark(struct node_wait *w, const char *name)
{
	struct json_object *v = get(w->vms, name);
	return v ? json_object_get_int(v) : -1;
}

static void vm_set_mark(struct node_wait *w, const char *name, int mark)
{
	json_object_object_add(w->vms, name, json_object_new_int(mark));
}

/* The node of the state, or NULL after saying that it is gone. */
static struct json_object *followed_node(struct node_wait *w, struct json_object *state)
{
	struct json_object *n = state_node(state, w->id);
	if (!n)
		fprintf(stderr, PROG ": %s is gone from the state of csv-rmd\n", w->name);
	return n;
}

/* Prints "node1: admin draining" when the node's admin state changed. */
static void admin_progress(struct node_wait *w, struct json_object *prev, struct json_object *n, uint64_t t0)
{
	const char *admin = gets(n, "admin", "?");
	if (!prev || strcmp(gets(state_node(prev, w->id), "admin", "?"), admin) != 0)
		fprintf(stderr, "%s: admin %s (%.1f s)\n", w->name, admin, elapsed_s(t0));
}

/* "vm2 (migrating (live) from node1 to node3), vm3 (running on node1)":
 * the VMs of the state that match (VM on the node, or VM not yet back). */
static size_t vms_pending(struct node_wait *w, struct json_object *state, bool back, char *buf, size_t len)
{
	struct json_object *vms = get(state, "vms");
	size_t n = 0;
	char where[256];

	buf[0] = '\0';
	for (size_t i = 0; i < count(vms); i++) {
		struct json_object *vm = at(vms, i);
		const char *name = gets(vm, "name", "?");
		if (back ? vm_mark(w, name) != VM_ON && vm_mark(w, name) != VM_MIGRATING : vm_node(vm) != w->id)
			continue;
		size_t l = strlen(buf);
		snprintf(buf + l, len - l, "%s%s (%s)", n ? ", " : "", name, vm_where(state, vm, where, sizeof(where)));
		n++;
	}
	return n;
}

/* Notes a VM on the drained node: since when (the drain's start, or when
 * it was first seen migrating) and the kind of its migration. */
static void note_on_node(struct follow *f, struct node_wait *w, struct json_object *vm)
{
	const char *name = gets(vm, "name", "?");
	struct json_object *o = get(w->leaving, name);

	if (!o) {
		o = json_object_new_object();
		if (!o || json_object_object_add(w->leaving, name, o) < 0)
			return;
		body_add(o, "since", json_object_new_double(0));
	}
	if (vm_in(vm, "migrating") && !has(o, "kind")) {
		body_add(o, "since", json_object_new_double(elapsed_s(f->t0)));
		body_add(o, "kind", json_object_new_string(gets(vm, "migration", "?")));
	}
}

/* Says where a VM that ran on the drained node went: "vm1 left node1 for
 * node3: live migration, 1.23 s" (QEMU's time when the state has it, else
 * the time since it was seen migrating). */
static void say_left(struct follow *f, struct node_wait *w, struct json_object *state, struct json_object *vm)
{
	struct json_object *lm = get(vm, "last_migration"), *o = get(w->leaving, gets(vm, "name", "?"));
	bool by_lm = lm && geti(lm, "from") == w->id && geti(lm, "to") == vm_node(vm) && has(lm, "total_ms");
	double took = by_lm ? (double)geti(lm, "total_ms") / 1000.0
			    : elapsed_s(f->t0) - json_object_get_double(get(o, "since"));
	char where[256], why[512], to[64];

	if (vm_in(vm, "running")) {
		fprintf(stderr, "%s left %s for %s: %s migration, %.2f s\n", gets(vm, "name", "?"), w->name,
			node_name(state, vm_node(vm), to, sizeof(to)),
			by_lm ? gets(lm, "kind", "?") : gets(o, "kind", "?"), took);
		return;
	}
	fprintf(stderr, "%s left %s: it is %s%s (%.1f s)\n", gets(vm, "name", "?"), w->name,
		vm_where(state, vm, where, sizeof(where)), vm_why(vm, why, sizeof(why)), elapsed_s(f->t0));
}

/* One state of a drain: the VMs on the node and those that left it; over
 * once the node is paused and runs no VM. */
static int drain_step(struct follow *f, struct json_object *prev, struct json_object *state)
{
	struct node_wait *w = f->data;
	struct json_object *n = followed_node(w, state), *vms = get(state, "vms");
	char pending[768];

	if (!n)
		return -ENOENT;
	admin_progress(w, prev, n, f->t0);
	for (size_t i = 0; i < count(vms); i++) {
		struct json_object *vm = at(vms, i);
		const char *name = gets(vm, "name", "?");
		if (vm_node(vm) == w->id) {
			note_on_node(f, w, vm);
			vm_progress(state, state_vm(prev, name), vm, f->t0);
		} else if (get(w->leaving, name)) {
			say_left(f, w, state, vm);
			json_object_object_del(w->leaving, name);
		}
	}
	const char *admin = gets(n, "admin", "?");
	if (strcmp(admin, "active") != 0)
		w->left_active = true;
	else if (w->left_active) {
		fprintf(stderr, PROG ": %s is active again: resumed before it was drained\n", w->name);
		return -ECANCELED;
	}
	size_t on = vms_pending(w, state, false, pending, sizeof(pending));
	if (strcmp(admin, "paused") == 0 && !on && !count(get(n, "vms")))
		return 1;
	snprintf(f->now, sizeof(f->now), "it is %s%s%s", admin, on ? " and still runs " : "", pending);
	return 0;
}

/* Follows a VM that should fail back: back, migrating, or given up (not
 * wanted running any more, or running elsewhere after a migration). */
static void failback_vm(struct follow *f, struct node_wait *w, struct json_object *prev, struct json_object *state,
			struct json_object *vm)
{
	const char *name = gets(vm, "name", "?");
	char where[256], why[512];

	if (vm_in(vm, "running") && vm_node(vm) == w->id) {
		fprintf(stderr, "%s: back on %s (%.1f s)\n", name, w->name, elapsed_s(f->t0));
		vm_set_mark(w, name, VM_BACK);
		return;
	}
	vm_progress(state, state_vm(prev, name), vm, f->t0);
	if (vm_in(vm, "migrating")) {
		vm_set_mark(w, name, VM_MIGRATING);
	} else if (strcmp(gets(vm, "want", ""), "running") != 0 ||
		   (vm_mark(w, name) == VM_MIGRATING && (vm_in(vm, "running") || vm_in(vm, "stopped")))) {
		fprintf(stderr, PROG ": %s did not fail back to %s: it is %s%s\n", name, w->name,
			vm_where(state, vm, where, sizeof(where)), vm_why(vm, why, sizeof(why)));
		vm_set_mark(w, name, VM_GAVE_UP);
		w->given_up++;
	}
}

/* One state of a resume: over once the node is active and, with
 * failback, each VM drained from it runs on it again or gave up. */
static int resume_step(struct follow *f, struct json_object *prev, struct json_object *state)
{
	struct node_wait *w = f->data;
	struct json_object *n = followed_node(w, state), *vms = get(state, "vms");
	char pending[768];

	if (!n)
		return -ENOENT;
	admin_progress(w, prev, n, f->t0);
	for (size_t i = 0; w->failback && i < count(vms); i++) {
		struct json_object *vm = at(vms, i);
		const char *name = gets(vm, "name", "?");
		if (vm_mark(w, name) < 0 && has(vm, "return_to") && geti(vm, "return_to") == w->id)
			vm_set_mark(w, name, VM_ON);
		if (vm_mark(w, name) != VM_ON && vm_mark(w, name) != VM_MIGRATING)
			continue;
		failback_vm(f, w, prev, state, vm);
	}
	const char *admin = gets(n, "admin", "?");
	size_t left = vms_pending(w, state, true, pending, sizeof(pending));
	if (strcmp(admin, "active") == 0 && !left) {
		if (!w->given_up)
			return 1;
		fprintf(stderr, PROG ": %zu VM(s) did not fail back to %s\n", w->given_up, w->name);
		return -EAGAIN;
	}
	snprintf(f->now, sizeof(f->now), "it is %s%s%s", admin, left ? "; not back yet: " : "", pending);
	return 0;
}

/* ---- node drain, node resume ---------------------------------------------------------- */

/* Before a resume with failback: the VMs drained from the node, to follow. */
static void seed_failback(struct node_wait *w, struct json_object *state)
{
	struct json_object *vms = get(state, "vms");
	for (size_t i = 0; i < count(vms); i++) {
		struct json_object *vm = at(vms, i);
		if (has(vm, "return_to") && geti(vm, "return_to") == w->id)
			vm_set_mark(w, gets(vm, "name", "?"), VM_ON);
	}
}

/* Sends a drain or a resume of node words[2], then follows it with step
 * (the VMs to follow are in w->vms). */
static int node_change(const struct ctl_args *a, const char *cmd, int32_t req, double wait_s,
		       int (*step)(struct follow *f, struct json_object *prev, struct json_object *state))
{
	struct node_wait w = { .failback = a->failback };
	struct follow f = { .step = step, .data = &w, .wait_s = a->wait_s >= 0 ? a->wait_s : wait_s };
	struct rmd_conn r;
	struct json_object *s = NULL, *body = NULL;
	char what[128], goal[160];
	int rc = check_words(a, cmd, 3, "a NODE");

	if (rc)
		return rc;
	if (rmd_conn_open(&r, a->rmd_name) < 0)
		return EXIT_FAIL;
	rc = EXIT_FAIL;
	if (rmd_conn_state(&r, &s) < 0 || state_find_node(s, a->words[2], &w.id) < 0)
		goto out;
	node_name(s, w.id, w.name, sizeof(w.name));
	snprintf(what, sizeof(what), "%s %s", strcmp(cmd, "node drain") == 0 ? "drain" : "resume", w.name);
	body = json_object_new_object();
	w.vms = json_object_new_object();
	w.leaving = json_object_new_object();
	if (!body || !w.vms || !w.leaving || !body_add(body, "node", json_object_new_int64(w.id)) ||
	    (req == CSVR_REQ_NODE_RESUME && !body_add(body, "failback", json_object_new_boolean(a->failback)))) {
		fprintf(stderr, PROG ": no memory\n");
		goto out;
	}
	if (a->failback) {
		seed_failback(&w, s);
		if (!json_object_object_length(w.vms))
			fprintf(stderr, "no VM was drained from %s: none to fail back\n", w.name);
	}
	f.r = &r;
	f.t0 = monotonic_ns();
	f.goal = goal;
	if (request_say(&r, a, req, body, what, f.wait_s > 0) != EXIT_OK)
		goto out;
	if (f.wait_s == 0) {
		rc = EXIT_OK;
		goto out;
	}
	snprintf(goal, sizeof(goal), "%s is not %s", w.name,
		 req == CSVR_REQ_NODE_DRAIN ? "drained" : a->failback ? "back with its VMs" : "active");
	rc = follow(&f) == 0 ? EXIT_OK : EXIT_FAIL;
	if (a->json && state_node(f.state, w.id))
		print_json(state_node(f.state, w.id));
	else if (rc == EXIT_OK)
		printf("%s is %s (%.1f s)\n", w.name,
		       req == CSVR_REQ_NODE_DRAIN ? "paused and runs no VM" : a->failback ? "active, its VMs back" : "active",
		       elapsed_s(f.t0));
out:
	json_object_put(f.state);
	json_object_put(w.vms);
	json_object_put(w.leaving);
	json_object_put(body);
	json_object_put(s);
	rmd_conn_close(&r);
	return fflush(stdout) == 0 ? rc : EXIT_FAIL;
}

/* node drain NODE [--wait S] */
static int node_drain(const struct ctl_args *a)
{
	return node_change(a, "node drain", CSVR_REQ_NODE_DRAIN, DRAIN_WAIT_S, drain_step);
}

/* node resume NODE [--failback] [--wait S] */
static int node_resume(const struct ctl_args *a)
{
	return node_change(a, "node resume", CSVR_REQ_NODE_RESUME, RESUME_WAIT_S, resume_step);
}

int cmd_node(const struct ctl_args *a)
{
	static const struct {
		const char *name;
		int (*run)(const struct ctl_args *a);
	} cmds[] = {
		{ "list", node_list },
		{ "drain", node_drain },
		{ "resume", node_resume },
	};
	if (a->nwords < 2)
		return usage_error("%s", "'node' needs a command: list, drain or resume");
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
		if (strcmp(a->words[1], cmds[i].name) == 0)
			return cmds[i].run(a);
	return usage_error("unknown node command '%s' (list, drain or resume)", a->words[1]);
}
