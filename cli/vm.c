/* SPDX-License-Identifier: GPL-2.0-or-later */
/* csvctl vm list|show|create|start|stop|remove|migrate|disk|checkpoint:
 * the virtual machines as csv-rmd places them (lib/rmd-ipc.h; their
 * definitions: lib/vmagent-ipc.h, csv-vmagent(8)). Create --start, start,
 * stop and migrate follow the state (follow.c): the VM's "phase", "node",
 * "want" and "migrations"; disk and checkpoint pass csv-vmagent's answer on
 * the node that runs the VM. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "csvctl.h"
#include "rmd-ipc.h"

#define START_WAIT_S 30.0
#define STOP_WAIT_S 60.0
#define MIGRATE_WAIT_S 180.0
#define REASON_WIDTH 40
/* What a definition may take of a request, leaving room for the rest. */
#define DEFINITION_MAX (CSVR_IPC_MAX_MSG - 4096)

/* ---- words for vm list and vm show ------------------------------------------------ */

/* "node2", "node1->node2" while it migrates, "-" when it runs nowhere. */
static const char *vm_place(struct json_object *state, struct json_object *vm, char *buf, size_t len)
{
	char n[64], t[64];
	if (vm_node(vm) < 0)
		return "-";
	if (vm_in(vm, "migrating") && vm_target(vm) >= 0)
		snprintf(buf, len, "%s->%s", node_name(state, vm_node(vm), n, sizeof(n)),
			 node_name(state, vm_target(vm), t, sizeof(t)));
	else
		node_name(state, vm_node(vm), buf, len);
	return buf;
}

/* The VM's reason cut to REASON_WIDTH characters, or "-". */
static const char *short_reason(struct json_object *vm, char *buf, size_t len)
{
	const char *reason = gets(vm, "reason", "");
	if (!reason[0])
		return "-";
	if (strlen(reason) <= REASON_WIDTH)
		return reason;
	snprintf(buf, len, "%.*s...", REASON_WIDTH - 3, reason);
	return buf;
}

/* "ops, dev": the strings of an array, or dflt when it has none. */
static const char *strings(struct json_object *arr, const char *dflt, char *buf, size_t len)
{
	buf[0] = '\0';
	for (size_t i = 0; i < count(arr); i++) {
		size_t l = strlen(buf);
		snprintf(buf + l, len - l, "%s%s", l ? ", " : "", json_object_get_string(at(arr, i)));
	}
	return buf[0] ? buf : dflt;
}

/* "node1 (1), node2 (2)": the nodes of an array of ids, or dflt. */
static const char *nodes_of(struct json_object *state, struct json_object *ids, const char *dflt, char *buf, size_t len)
{
	char n[64];
	buf[0] = '\0';
	for (size_t i = 0; i < count(ids); i++) {
		int64_t id = json_object_get_int64(at(ids, i));
		size_t l = strlen(buf);
		snprintf(buf + l, len - l, "%s%s (%" PRId64 ")", l ? ", " : "", node_name(state, id, n, sizeof(n)), id);
	}
	return buf[0] ? buf : dflt;
}

/* "2024-05-01 12:03:04" of a time in milliseconds since 1970. */
static const char *ms_date(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	if (!localtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, len, "%" PRId64 " ms", ms);
	return buf;
}

/* "1234 ms" of a member in milliseconds, or "-" when null. */
static const char *ms_or_dash(struct json_object *o, const char *key, char *buf, size_t len)
{
	if (!has(o, key))
		return "-";
	snprintf(buf, len, "%" PRId64 " ms", geti(o, key));
	return buf;
}

/* ---- vm list, vm show -------------------------------------------------------------- */

/* The table of vm list. */
static void print_vms(struct json_object *state)
{
	struct json_object *vms = get(state, "vms");
	int wname = 4, wphase = 5, wnode = 4;
	char buf[160];

	if (!count(vms)) {
		printf("no VMs\n");
		return;
	}
	for (size_t i = 0; i < count(vms); i++) {
		struct json_object *vm = at(vms, i);
		wname = col_width(wname, gets(vm, "name", "?"));
		wphase = col_width(wphase, gets(vm, "phase", "?"));
		wnode = col_width(wnode, vm_place(state, vm, buf, sizeof(buf)));
	}
	printf("%-*s  %-7s  %-*s  %-*s  %8s  %5s  %4s  %s\n", wname, "NAME", "WANT", wphase, "PHASE", wnode, "NODE",
	       "MEMORY", "VCPUS", "PRIO", "REASON");
	for (size_t i = 0; i < count(vms); i++) {
		struct json_object *vm = at(vms, i);
		char mem[32], place[160];
		snprintf(mem, sizeof(mem), "%" PRId64 "M", geti(vm, "memory_mb"));
		printf("%-*s  %-7s  %-*s  %-*s  %8s  %5" PRId64 "  %4" PRId64 "  %s\n", wname, gets(vm, "name", "?"),
		       gets(vm, "want", "?"), wphase, gets(vm, "phase", "?"), wnode,
		       vm_place(state, vm, place, sizeof(place)), mem, geti(vm, "vcpus"), geti(vm, "priority"),
		       short_reason(vm, buf, sizeof(buf)));
	}
}

/* vm list [--json] */
static int vm_list(const struct ctl_args *a)
{
	return rmd_list_command(a, "vm list", "vms", print_vms);
}

/* The failures of vm show, a line each. */
static void print_failures(struct json_object *state, struct json_object *vm)
{
	struct json_object *failures = get(vm, "failures");
	char n[64], d[64];

	if (!count(failures)) {
		printf("Failures:       none\n");
		return;
	}
	printf("Failures:       %zu, not yet expired:\n", count(failures));
	for (size_t i = 0; i < count(failures); i++) {
		struct json_object *x = at(failures, i);
		printf("                on %s (%" PRId64 ") at %s\n", node_name(state, geti(x, "node"), n, sizeof(n)),
		       geti(x, "node"), ms_date(geti(x, "time"), d, sizeof(d)));
	}
}

/* "Last migration: live from node1 to node2, completed: total 1234 ms, downtime 12 ms". */
static void print_last_migration(struct json_object *state, struct json_object *vm)
{
	struct json_object *lm = get(vm, "last_migration");
	char from[64], to[64], t[32], d[32];

	if (!lm) {
		printf("Last migration: none\n");
		return;
	}
	printf("Last migration: %s from %s to %s, %s: total %s, downtime %s\n", gets(lm, "kind", "?"),
	       node_name(state, geti(lm, "from"), from, sizeof(from)), node_name(state, geti(lm, "to"), to, sizeof(to)),
	       gets(lm, "result", "?"), ms_or_dash(lm, "total_ms", t, sizeof(t)),
	       ms_or_dash(lm, "downtime_ms", d, sizeof(d)));
}

/* The placement part of vm show: where it is, and where it may go. */
static void print_vm_place(struct json_object *state, struct json_object *vm)
{
	char buf[1024], n[64];
	const char *class = gets(vm, "anti_affinity", NULL);

	printf("VM:             %s\n", gets(vm, "name", "?"));
	printf("Want:           %s\n", gets(vm, "want", "?"));
	printf("Phase:          %s\n", vm_where(state, vm, buf, sizeof(buf)));
	printf("Reason:         %s\n", gets(vm, "reason", "")[0] ? gets(vm, "reason", "") : "-");
	printf("Memory:         %" PRId64 " MB\n", geti(vm, "memory_mb"));
	printf("vCPUs:          %" PRId64 "\n", geti(vm, "vcpus"));
	printf("Priority:       %" PRId64 "\n", geti(vm, "priority"));
	printf("Preferred:      %s\n", nodes_of(state, get(vm, "preferred_nodes"), "any node", buf, sizeof(buf)));
	if (class)
		printf("Anti-affinity:  class %s, %s\n", class,
		       getb(vm, "anti_affinity_hard") ? "hard (never with another VM of the class)" : "soft (avoided)");
	else
		printf("Anti-affinity:  none\n");
	if (has(vm, "return_to"))
		printf("Return to:      %s (%" PRId64 "), drained from it\n", node_name(state, geti(vm, "return_to"), n, sizeof(n)),
		       geti(vm, "return_to"));
	else
		printf("Return to:      -\n");
}

/* vm show's text. */
static void print_vm(struct json_object *state, struct json_object *vm)
{
	struct json_object *restart = get(vm, "restart");
	char buf[1024];

	print_vm_place(state, vm);
	printf("Failback:       %s\n", gets(vm, "failback", "?"));
	printf("Migration:      %s by default%s\n", gets(vm, "default_migration", "live"),
	       getb(vm, "cpu_compat") ? "; CPU limited to the features common to the cluster" : "");
	if (restart && geti(restart, "expire_s"))
		printf("Restart:        at most %" PRId64 " in %" PRId64 " s; a failure expires after %" PRId64 " s\n",
		       geti(restart, "max"), geti(restart, "period_s"), geti(restart, "expire_s"));
	else if (restart)
		printf("Restart:        at most %" PRId64 " in %" PRId64 " s; failures do not expire\n",
		       geti(restart, "max"), geti(restart, "period_s"));
	else
		printf("Restart:        -\n");
	print_failures(state, vm);
	printf("Operators:      %s\n", strings(get(vm, "operators"), "none (root and " CTL_ADMIN_GROUP " only)", buf,
					       sizeof(buf)));
	printf("Starts:         %" PRId64 "\n", geti(vm, "starts"));
	printf("Migrations:     %" PRId64 "\n", geti(vm, "migrations"));
	print_last_migration(state, vm);
}

/* ---- one VM, one request ---------------------------------------------------------------- */

/* What a command on a VM holds: the connection, the state before the
 * request and the VM in it. Zeroed before vm_open(). */
struct vm_cmd {
	struct rmd_conn r;
	struct json_object *state;
	struct json_object *vm; /* in state */
	const char *name;       /* the VM's, in state */
	char who_may[512];
};

/* Connects to csv-rmd, reads the state and finds the VM arg in it; 0 or a
 * negative errno, said. */
static int vm_open(struct vm_cmd *c, const struct ctl_args *a, const char *arg)
{
	int r = rmd_conn_open(&c->r, a->rmd_name);
	if (r < 0)
		return r;
	r = rmd_conn_state(&c->r, &c->state);
	if (r < 0)
		return r;
	r = state_find_vm(c->state, arg, &c->vm);
	if (r < 0)
		return r;
	c->name = gets(c->vm, "name", arg);
	return 0;
}

static void vm_close(struct vm_cmd *c)
{
	json_object_put(c->state);
	rmd_conn_close(&c->r);
}

/* For a request that the VM's operator groups may make too: who may, for
 * a refusal. */
static void operators_may(struct vm_cmd *c)
{
	char groups[400];
	snprintf(c->who_may, sizeof(c->who_may), "root, the " CTL_ADMIN_GROUP " group or the VM's operator groups (%s)",
		 strings(get(c->vm, "operators"), "none", groups, sizeof(groups)));
	c->r.who_may = c->who_may;
}

/* A request body naming the VM, with op when given; NULL after saying so. */
static struct json_object *vm_body(struct vm_cmd *c, const char *op)
{
	struct json_object *body = json_object_new_object();
	if (body && body_add(body, "vm", json_object_new_string(c->name)) &&
	    (!op || body_add(body, "op", json_object_new_string(op))))
		return body;
	json_object_put(body);
	fprintf(stderr, PROG ": no memory\n");
	return NULL;
}

/* vm show VM [--json] */
static int vm_show(const struct ctl_args *a)
{
	struct vm_cmd c = { 0 };
	int rc = check_words(a, "vm show", 3, "a VM");

	if (rc)
		return rc;
	rc = EXIT_FAIL;
	if (vm_open(&c, a, a->words[2]) == 0) {
		if (a->json)
			print_json(c.vm);
		else
			print_vm(c.state, c.vm);
		rc = EXIT_OK;
	}
	vm_close(&c);
	return fflush(stdout) == 0 ? rc : EXIT_FAIL;
}

/* vm remove VM [--json] */
static int vm_remove(const struct ctl_args *a)
{
	struct vm_cmd c = { 0 };
	struct json_object *body = NULL;
	char what[128];
	int rc = check_words(a, "vm remove", 3, "a VM");

	if (rc)
		return rc;
	rc = EXIT_FAIL;
	if (vm_open(&c, a, a->words[2]) == 0 && (body = vm_body(&c, NULL))) {
		snprintf(what, sizeof(what), "remove %s", c.name);
		rc = request_say(&c.r, a, CSVR_REQ_VM_REMOVE, body, what, false);
	}
	json_object_put(body);
	vm_close(&c);
	return fflush(stdout) == 0 ? rc : EXIT_FAIL;
}

/* ---- following a VM ---------------------------------------------------------------------- */

/* What the steps keep between two states of the VM they follow. */
struct vm_wait {
	const char *name;
	int64_t to;           /* the node it should run on, or -1 */
	int64_t migrations0;  /* its "migrations" before the request */
	char last0[512];      /* its "last_migration" before the request, as JSON */
	bool present;         /* seen in the state (or there before the request) */
	bool wanted;          /* seen wanted as the request asks */
	bool left;            /* seen starting, stopping, migrating or waiting-fence */
	bool migrating;       /* seen migrating */
	char kind[16];        /* of the migration, as seen */
	const char *asked;    /* the kind asked (--live, --quick), or NULL */
	char progress[128];   /* the last progress line said */
};

/* f->now: "it is stopping on node1 (REASON)". */
static void vm_now(struct follow *f, struct json_object *state, struct json_object *vm)
{
	char where[256], why[512];
	snprintf(f->now, sizeof(f->now), "it is %s%s", vm_where(state, vm, where, sizeof(where)),
		 vm_why(vm, why, sizeof(why)));
}

/* The VM followed in the state, with its progress said; NULL with *ret_err
 * -ENOENT after saying that it is gone, or 0 while it has not appeared
 * (vm create). */
static struct json_object *followed_vm(struct follow *f, struct json_object *prev, struct json_object *state,
				       int *ret_err)
{
	struct vm_wait *w = f->data;
	struct json_object *vm = state_vm(state, w->name);
	if (!vm && w->present) {
		fprintf(stderr, PROG ": %s is gone from the state of csv-rmd\n", w->name);
		*ret_err = -ENOENT;
		return NULL;
	}
	if (!vm) {
		snprintf(f->now, sizeof(f->now), "it is not in the state of csv-rmd");
		*ret_err = 0;
		return NULL;
	}
	w->present = true;
	vm_progress(state, state_vm(prev, w->name), vm, f->t0);
	vm_now(f, state, vm);
	return vm;
}

/* Whether the VM's want is no longer what the request asked, once it was:
 * someone else changed it meanwhile. */
static bool want_changed(struct vm_wait *w, struct json_object *vm, const char *asked)
{
	bool as_asked = strcmp(gets(vm, "want", ""), asked) == 0;
	if (as_asked)
		w->wanted = true;
	return !as_asked && w->wanted;
}

/* One state of a start: over once the VM runs (on w->to when given);
 * failed when it is stopped again with a reason, runs elsewhere after it
 * started, or was asked to stop meanwhile. */
static int run_step(struct follow *f, struct json_object *prev, struct json_object *state)
{
	struct vm_wait *w = f->data;
	int err;
	struct json_object *vm = followed_vm(f, prev, state, &err);

	if (!vm)
		return err;
	if (vm_in(vm, "running") && (w->to < 0 || vm_node(vm) == w->to))
		return 1;
	if (want_changed(w, vm, "running")) {
		fprintf(stderr, PROG ": %s did not start: it was asked to stop meanwhile\n", w->name);
		return -ECANCELED;
	}
	if (vm_in(vm, "stopped") && w->left && gets(vm, "reason", "")[0]) {
		fprintf(stderr, PROG ": %s did not start: %s\n", w->name, gets(vm, "reason", ""));
		return -EIO;
	}
	if (vm_in(vm, "running") && w->left) {
		fprintf(stderr, PROG ": %s did not start where asked: %s\n", w->name, f->now);
		return -EIO;
	}
	w->left |= !vm_in(vm, "stopped") && !vm_in(vm, "running");
	return 0;
}

/* One state of a stop: over once the VM is stopped; failed when it was
 * asked to run again meanwhile. */
static int stop_step(struct follow *f, struct json_object *prev, struct json_object *state)
{
	struct vm_wait *w = f->data;
	int err;
	struct json_object *vm = followed_vm(f, prev, state, &err);

	if (!vm)
		return err;
	if (vm_in(vm, "stopped"))
		return 1;
	if (want_changed(w, vm, "stopped")) {
		fprintf(stderr, PROG ": %s was asked to run again before it stopped\n", w->name);
		return -ECANCELED;
	}
	return 0;
}

/* " (last migration: live from node1 to node2, failed)", or "". */
static const char *last_migration_words(struct json_object *state, struct json_object *vm, char *buf, size_t len)
{
	struct json_object *lm = get(vm, "last_migration");
	char from[64], to[64];
	if (!lm)
		return "";
	snprintf(buf, len, " (last migration: %s from %s to %s, %s)", gets(lm, "kind", "?"),
		 node_name(state, geti(lm, "from"), from, sizeof(from)), node_name(state, geti(lm, "to"), to, sizeof(to)),
		 gets(lm, "result", "?"));
	return buf;
}

/* One state of a migration: over once the VM runs on w->to; failed when,
 * the migration over, it runs elsewhere or stopped. */
/* Says how a live migration goes, as its source tells csv-rmd: "vm1:
 * 120 MiB sent, 30 MiB left (active, 1.2 s)", when that changed. */
static void say_progress(struct vm_wait *w, struct json_object *vm)
{
	struct json_object *p = get(vm, "progress");
	char line[128];
	if (!p)
		return;
	snprintf(line, sizeof(line), "%s: %s%.0f MiB sent, %s%.0f MiB left (%s, %.1f s)", w->name,
		 has(p, "sent_mb") ? "" : "? ", has(p, "sent_mb") ? json_object_get_double(get(p, "sent_mb")) : 0,
		 has(p, "left_mb") ? "" : "? ", has(p, "left_mb") ? json_object_get_double(get(p, "left_mb")) : 0,
		 gets(p, "status", "?"), (double)geti(p, "elapsed_ms") / 1000);
	if (strcmp(line, w->progress) != 0)
		fprintf(stderr, "%s\n", line);
	snprintf(w->progress, sizeof(w->progress), "%s", line);
}

static int migrate_step(struct follow *f, struct json_object *prev, struct json_object *state)
{
	struct vm_wait *w = f->data;
	int err;
	struct json_object *vm = followed_vm(f, prev, state, &err);
	char lm[256], n[64];

	if (!vm)
		return err;
	if (vm_in(vm, "running") && vm_node(vm) == w->to)
		return 1;
	if (vm_in(vm, "migrating")) {
		w->migrating = true;
		snprintf(w->kind, sizeof(w->kind), "%s", gets(vm, "migration", w->kind));
		say_progress(w, vm);
		return 0;
	}
	const char *last = json_object_to_json_string(get(vm, "last_migration"));
	bool over = w->migrating || geti(vm, "migrations") != w->migrations0 || strcmp(last, w->last0) != 0;
	if (over && (vm_in(vm, "running") || vm_in(vm, "stopped") || vm_in(vm, "waiting-fence"))) {
		fprintf(stderr, PROG ": %s did not migrate to %s: %s%s\n", w->name, node_name(state, w->to, n, sizeof(n)),
			f->now, last_migration_words(state, vm, lm, sizeof(lm)));
		return -EIO;
	}
	return 0;
}

/* "vm1 runs on node2 after a live migration of 1.23 s (QEMU: total
 * 1100 ms, downtime 12 ms)". */
static void say_migrated(struct follow *f)
{
	struct vm_wait *w = f->data;
	struct json_object *vm = state_vm(f->state, w->name), *lm = get(vm, "last_migration");
	const char *kind = w->kind[0] ? w->kind : w->asked ? w->asked : "";
	char n[64], t[32], d[32];

	if (lm && geti(lm, "to") == w->to)
		kind = gets(lm, "kind", kind);
	printf("%s runs on %s after a%s%s migration of %.2f s", w->name, node_name(f->state, w->to, n, sizeof(n)),
	       kind[0] ? " " : "", kind, elapsed_s(f->t0));
	if (lm && geti(lm, "to") == w->to && (has(lm, "total_ms") || has(lm, "downtime_ms")))
		printf(" (QEMU: total %s, downtime %s)", ms_or_dash(lm, "total_ms", t, sizeof(t)),
		       ms_or_dash(lm, "downtime_ms", d, sizeof(d)));
	printf("\n");
}

/* "vm1 runs on node2 (2.3 s)". */
static void say_running(struct follow *f)
{
	struct vm_wait *w = f->data;
	char n[64];
	printf("%s runs on %s (%.1f s)\n", w->name,
	       node_name(f->state, vm_node(state_vm(f->state, w->name)), n, sizeof(n)), elapsed_s(f->t0));
}

/* "vm1 is stopped (4.1 s)". */
static void say_stopped(struct follow *f)
{
	struct vm_wait *w = f->data;
	printf("%s is stopped (%.1f s)\n", w->name, elapsed_s(f->t0));
}

/* Follows the VM after the request (f->t0 set before it); at the end
 * prints the VM's object with --json, else say_done's line when done. An
 * exit code. */
static int vm_follow(const struct ctl_args *a, struct follow *f, void (*say_done)(struct follow *f))
{
	struct vm_wait *w = f->data;
	int rc = follow(f) == 0 ? EXIT_OK : EXIT_FAIL;
	struct json_object *vm = state_vm(f->state, w->name);

	if (a->json && vm)
		print_json(vm);
	else if (rc == EXIT_OK)
		say_done(f);
	json_object_put(f->state);
	f->state = NULL;
	return rc;
}

/* Sends the request of a VM command that waits, then follows it with step
 * unless --wait is 0. An exit code. */
static int vm_change(struct vm_cmd *c, const struct ctl_args *a, int32_t req, struct json_object *body,
		     const char *what, struct follow *f, void (*say_done)(struct follow *f))
{
	if (a->wait_s >= 0)
		f->wait_s = a->wait_s;
	f->r = &c->r;
	f->t0 = monotonic_ns();
	if (request_say(&c->r, a, req, body, what, f->wait_s > 0) != EXIT_OK)
		return EXIT_FAIL;
	return f->wait_s > 0 ? vm_follow(a, f, say_done) : EXIT_OK;
}

/* ---- vm start, stop, migrate ---------------------------------------------------------------- */

/* vm start VM [--to NODE] [--wait S] */
static int vm_start(const struct ctl_args *a)
{
	struct vm_cmd c = { 0 };
	struct vm_wait w = { .to = -1 };
	struct follow f = { .wait_s = START_WAIT_S, .step = run_step, .data = &w };
	struct json_object *body = NULL;
	char what[160], goal[160], n[64];
	int rc = check_words(a, "vm start", 3, "a VM");

	if (rc)
		return rc;
	rc = EXIT_FAIL;
	if (vm_open(&c, a, a->words[2]) < 0 || (a->to && state_find_node(c.state, a->to, &w.to) < 0) ||
	    !(body = vm_body(&c, NULL)) || (a->to && !body_add(body, "to", json_object_new_int64(w.to))))
		goto out;
	w.name = c.name;
	w.present = true;
	operators_may(&c);
	snprintf(what, sizeof(what), "start %s%s%s", c.name, a->to ? " on " : "",
		 a->to ? node_name(c.state, w.to, n, sizeof(n)) : "");
	snprintf(goal, sizeof(goal), "%s is not running%s%s", c.name, a->to ? " on " : "", a->to ? n : "");
	f.goal = goal;
	rc = vm_change(&c, a, CSVR_REQ_VM_START, body, what, &f, say_running);
out:
	json_object_put(body);
	vm_close(&c);
	return fflush(stdout) == 0 ? rc : EXIT_FAIL;
}

/* vm stop VM [--force] [--wait S] */
static int vm_stop(const struct ctl_args *a)
{
	struct vm_cmd c = { 0 };
	struct vm_wait w = { .to = -1 };
	struct follow f = { .wait_s = STOP_WAIT_S, .step = stop_step, .data = &w };
	struct json_object *body = NULL;
	char what[160], goal[160];
	int rc = check_words(a, "vm stop", 3, "a VM");

	if (rc)
		return rc;
	rc = EXIT_FAIL;
	if (vm_open(&c, a, a->words[2]) < 0 || !(body = vm_body(&c, NULL)) ||
	    !body_add(body, "force", json_object_new_boolean(a->force)))
		goto out;
	w.name = c.name;
	w.present = true;
	operators_may(&c);
	snprintf(what, sizeof(what), "%s %s", a->force ? "power off" : "stop", c.name);
	snprintf(goal, sizeof(goal), "%s is not stopped", c.name);
	f.goal = goal;
	rc = vm_change(&c, a, CSVR_REQ_VM_STOP, body, what, &f, say_stopped);
out:
	json_object_put(body);
	vm_close(&c);
	return fflush(stdout) == 0 ? rc : EXIT_FAIL;
}

/* vm migrate VM --to NODE [--live|--quick] [--wait S] */
static int vm_migrate(const struct ctl_args *a)
{
	struct vm_cmd c = { 0 };
	struct vm_wait w = { .asked = a->kind };
	struct follow f = { .wait_s = MIGRATE_WAIT_S, .step = migrate_step, .data = &w };
	struct json_object *body = NULL;
	char what[160], goal[160], n[64];
	int rc = check_words(a, "vm migrate", 3, "a VM");

	if (rc)
		return rc;
	if (!a->to)
		return usage_error("%s", "'vm migrate' needs --to NODE");
	rc = EXIT_FAIL;
	if (vm_open(&c, a, a->words[2]) < 0 || state_find_node(c.state, a->to, &w.to) < 0 ||
	    !(body = vm_body(&c, NULL)) || !body_add(body, "to", json_object_new_int64(w.to)) ||
	    (a->kind && !body_add(body, "kind", json_object_new_string(a->kind))))
		goto out;
	w.name = c.name;
	w.present = true;
	w.migrations0 = geti(c.vm, "migrations");
	snprintf(w.last0, sizeof(w.last0), "%s", json_object_to_json_string(get(c.vm, "last_migration")));
	operators_may(&c);
	node_name(c.state, w.to, n, sizeof(n));
	snprintf(what, sizeof(what), "migrate %s to %s", c.name, n);
	snprintf(goal, sizeof(goal), "%s is not running on %s", c.name, n);
	f.goal = goal;
	rc = vm_change(&c, a, CSVR_REQ_VM_MIGRATE, body, what, &f, say_migrated);
out:
	json_object_put(body);
	vm_close(&c);
	return fflush(stdout) == 0 ? rc : EXIT_FAIL;
}

/* ---- vm create ------------------------------------------------------------------------------ */

/* Reads all of path ("-": stdin) as a NUL-terminated text; said when it
 * fails. */
static int read_text(const char *path, const char *shown, char **ret_text)
{
	FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
	_cleanup_free_ char *text = NULL;
	size_t len = 0;

	if (!in) {
		int err = errno;
		fprintf(stderr, PROG ": cannot read %s: %s\n", shown, strerror(err));
		return -err;
	}
	text = malloc(DEFINITION_MAX + 1);
	if (text)
		len = fread(text, 1, DEFINITION_MAX + 1, in);
	int err = text ? (ferror(in) ? EIO : 0) : ENOMEM;
	if (in != stdin)
		fclose(in);
	if (err) {
		fprintf(stderr, PROG ": cannot read %s: %s\n", shown, strerror(err));
		return -err;
	}
	if (len > DEFINITION_MAX) {
		fprintf(stderr, PROG ": %s: larger than %d bytes: not a VM definition\n", shown, DEFINITION_MAX);
		return -EFBIG;
	}
	text[len] = '\0';
	*ret_text = TAKE_PTR(text);
	return 0;
}

/* Says "FILE: line L, column C: [invalid JSON: ]what" of a byte offset in
 * text. */
static void say_at(const char *shown, const char *text, size_t off, bool json_error, const char *what)
{
	size_t line = 1, col = 1;
	for (size_t i = 0; i < off && text[i]; i++) {
		col = text[i] == '\n' ? 1 : col + 1;
		line += text[i] == '\n';
	}
	fprintf(stderr, PROG ": %s: line %zu, column %zu: %s%s\n", shown, line, col, json_error ? "invalid JSON: " : "",
		what);
}

/* The definition in text: one JSON object with a "name", nothing after
 * it; an error names the file and the position. */
static int parse_definition(const char *shown, const char *text, struct json_object **ret_def)
{
	struct json_tokener *tok = json_tokener_new();
	size_t len = strlen(text);
	if (!tok) {
		fprintf(stderr, PROG ": no memory\n");
		return -ENOMEM;
	}
	/* With its NUL, so that a text that ends too soon is an error. */
	struct json_object *def = json_tokener_parse_ex(tok, text, (int)len + 1);
	enum json_tokener_error e = json_tokener_get_error(tok);
	size_t end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);

	if (e == json_tokener_continue)
		say_at(shown, text, len, true, "the text ends too soon");
	else if (e != json_tokener_success)
		say_at(shown, text, end, true, json_tokener_error_desc(e));
	else if (text[end + strspn(text + end, " \t\r\n")])
		say_at(shown, text, end + strspn(text + end, " \t\r\n"), false, "text after the definition");
	else if (!json_object_is_type(def, json_type_object))
		fprintf(stderr, PROG ": %s: a VM definition is a JSON object, not %s\n", shown,
			json_type_to_name(json_object_get_type(def)));
	else if (!gets(def, "name", NULL))
		fprintf(stderr, PROG ": %s: the definition has no \"name\" (a string)\n", shown);
	else {
		*ret_def = def;
		return 0;
	}
	json_object_put(def);
	return -EINVAL;
}

/* vm create FILE.json [--start [--wait S]] */
static int vm_create(const struct ctl_args *a)
{
	struct vm_cmd c = { 0 };
	struct vm_wait w = { .to = -1 };
	struct follow f = { .wait_s = START_WAIT_S, .step = run_step, .data = &w };
	struct json_object *def = NULL, *body = NULL;
	_cleanup_free_ char *text = NULL;
	const char *path = a->nwords > 2 ? a->words[2] : "", *shown = strcmp(path, "-") == 0 ? "stdin" : path;
	char what[160], goal[160];
	int rc = check_words(a, "vm create", 3, "a FILE (a VM definition, - for stdin)");

	if (rc)
		return rc;
	if (a->wait_s >= 0 && !a->start)
		return usage_error("%s", "--wait with 'vm create' needs --start");
	if (read_text(path, shown, &text) < 0 || parse_definition(shown, text, &def) < 0)
		return EXIT_FAIL;
	rc = EXIT_FAIL;
	body = json_object_new_object();
	if (!body || !body_add(body, "definition", json_object_get(def)) ||
	    !body_add(body, "start", json_object_new_boolean(a->start))) {
		fprintf(stderr, PROG ": no memory\n");
		goto out;
	}
	if (rmd_conn_open(&c.r, a->rmd_name) < 0)
		goto out;
	w.name = gets(def, "name", "?");
	snprintf(what, sizeof(what), "create %s (from %s)", w.name, shown);
	snprintf(goal, sizeof(goal), "%s is not running", w.name);
	f.goal = goal;
	if (!a->start)
		f.wait_s = 0;
	rc = vm_change(&c, a, CSVR_REQ_VM_CREATE, body, what, &f, say_running);
out:
	json_object_put(body);
	json_object_put(def);
	vm_close(&c);
	return fflush(stdout) == 0 ? rc : EXIT_FAIL;
}

/* ---- vm disk ------------------------------------------------------------------------------------ */

/* The format of a disk file: --format, else from its extension. */
static int disk_format(const struct ctl_args *a, const char *file, const char **ret_format)
{
	static const char *const formats[] = { "raw", "qcow2", "vpc", "vhdx" };
	static const struct {
		const char *ext, *format;
	} exts[] = { { ".qcow2", "qcow2" }, { ".vhd", "vpc" }, { ".vhdx", "vhdx" } };
	const char *dot = strrchr(file, '.');

	if (a->format) {
		for (size_t i = 0; i < ARRAY_SIZE(formats); i++)
			if (strcmp(a->format, formats[i]) == 0) {
				*ret_format = formats[i];
				return 0;
			}
		return usage_error("--format takes raw, qcow2, vpc or vhdx, not '%s'", a->format);
	}
	*ret_format = "raw";
	for (size_t i = 0; dot && i < ARRAY_SIZE(exts); i++)
		if (strcasecmp(dot, exts[i].ext) == 0)
			*ret_format = exts[i].format;
	return 0;
}

/* Whether arg names a disk by its id, "disk2" or "2"; the id in buf. */
static bool disk_id(const char *arg, char *buf, size_t len)
{
	const char *n = strncmp(arg, "disk", 4) == 0 ? arg + 4 : arg;
	if (!n[0] || n[strspn(n, "0123456789")] || strlen(n) > 9)
		return false;
	snprintf(buf, len, "disk%s", n);
	return true;
}

/* Sends a request that csv-vmagent answers, and says its answer: with
 * --json as is, else its message, and the disk's id when it gives one that
 * the message does not name. */
static int vm_agent_request(struct vm_cmd *c, const struct ctl_args *a, int32_t req, struct json_object *body,
			    const char *what, struct json_object **ret_reply)
{
	struct json_object *reply = NULL;
	if (rmd_conn_request(&c->r, req, body, what, &reply) < 0)
		return EXIT_FAIL;
	const char *message = gets(reply, "message", "");
	if (a->json)
		print_json(reply);
	else if (has(reply, "id") && !strstr(message, json_object_get_string(get(reply, "id"))))
		printf("%s%s(id %s)\n", message, message[0] ? " " : "", json_object_get_string(get(reply, "id")));
	else if (message[0])
		printf("%s\n", message);
	if (ret_reply)
		*ret_reply = reply;
	else
		json_object_put(reply);
	return EXIT_OK;
}

/* vm disk add VM FILE [--format F] | vm disk remove VM ID|FILE */
static int vm_disk(const struct ctl_args *a)
{
	struct vm_cmd c = { 0 };
	struct json_object *body = NULL;
	const char *op = a->nwords > 2 ? a->words[2] : "", *format = NULL;
	char what[512];
	int rc;

	if (strcmp(op, "add") != 0 && strcmp(op, "remove") != 0)
		return a->nwords < 3 ? usage_error("%s", "'vm disk' needs add or remove")
				     : usage_error("unknown vm disk command '%s' (add or remove)", op);
	if ((rc = check_words(a, strcmp(op, "add") == 0 ? "vm disk add" : "vm disk remove", 5,
			      strcmp(op, "add") == 0 ? "a VM and a FILE" : "a VM and a disk's ID or FILE")))
		return rc;
	const char *disk = a->words[4];
	char id[32];
	bool by_id = strcmp(op, "remove") == 0 && disk_id(disk, id, sizeof(id));
	if (strcmp(op, "add") == 0 && (rc = disk_format(a, disk, &format)))
		return rc;
	rc = EXIT_FAIL;
	if (vm_open(&c, a, a->words[3]) < 0 || !(body = vm_body(&c, op)) ||
	    !body_add(body, by_id ? "id" : "file", json_object_new_string(by_id ? id : disk)) ||
	    (format && !body_add(body, "format", json_object_new_string(format))))
		goto out;
	if (format)
		snprintf(what, sizeof(what), "add disk %s (%s) to %s", disk, format, c.name);
	else
		snprintf(what, sizeof(what), "remove disk %s of %s", by_id ? id : disk, c.name);
	rc = vm_agent_request(&c, a, CSVR_REQ_VM_DISK, body, what, NULL);
out:
	json_object_put(body);
	vm_close(&c);
	return fflush(stdout) == 0 ? rc : EXIT_FAIL;
}

/* ---- vm checkpoint ---------------------------------------------------------------------------- */

/* The table of vm checkpoint list, from csv-vmagent's answer
 * (lib/vmagent-ipc.h, CHECKPOINT): {"checkpoints": [{"name", "date":
 * "2024-05-01T12:00:00Z", "vm_state_mb"}...]}. */
static void print_checkpoints(const char *vm, struct json_object *reply)
{
	struct json_object *cps = get(reply, "checkpoints");
	int wname = 4, wdate = 4;
	char size[32];

	if (!count(cps)) {
		printf("%s has no checkpoints\n", vm);
		return;
	}
	for (size_t i = 0; i < count(cps); i++) {
		wname = col_width(wname, gets(at(cps, i), "name", "?"));
		wdate = col_width(wdate, gets(at(cps, i), "date", "-"));
	}
	printf("%-*s  %-*s  %s\n", wname, "NAME", wdate, "DATE", "VM STATE");
	for (size_t i = 0; i < count(cps); i++) {
		struct json_object *cp = at(cps, i);
		if (has(cp, "vm_state_mb"))
			snprintf(size, sizeof(size), "%" PRId64 " MB", geti(cp, "vm_state_mb"));
		printf("%-*s  %-*s  %s\n", wname, gets(cp, "name", "?"), wdate, gets(cp, "date", "-"),
		       has(cp, "vm_state_mb") ? size : "-");
	}
}

/* vm checkpoint take|apply|delete VM NAME | vm checkpoint list VM */
static int vm_checkpoint(const struct ctl_args *a)
{
	static const char *const ops[] = { "take", "apply", "delete", "list" };
	struct vm_cmd c = { 0 };
	struct json_object *body = NULL, *reply = NULL;
	const char *op = a->nwords > 2 ? a->words[2] : "";
	char cmd[64], what[512];
	bool list = strcmp(op, "list") == 0, known = false;
	int rc;

	for (size_t i = 0; i < ARRAY_SIZE(ops); i++)
		known |= strcmp(op, ops[i]) == 0;
	if (!known)
		return a->nwords < 3 ? usage_error("%s", "'vm checkpoint' needs take, apply, delete or list")
				     : usage_error("unknown vm checkpoint command '%s' (take, apply, delete or list)", op);
	snprintf(cmd, sizeof(cmd), "vm checkpoint %s", op);
	if ((rc = check_words(a, cmd, list ? 4 : 5, list ? "a VM" : "a VM and a checkpoint NAME")))
		return rc;
	rc = EXIT_FAIL;
	if (vm_open(&c, a, a->words[3]) < 0 || !(body = vm_body(&c, op)) ||
	    (!list && !body_add(body, "checkpoint", json_object_new_string(a->words[4]))))
		goto out;
	operators_may(&c);
	if (list)
		snprintf(what, sizeof(what), "list the checkpoints of %s", c.name);
	else
		snprintf(what, sizeof(what), "%s checkpoint %s of %s", op, a->words[4], c.name);
	if (!list || a->json)
		rc = vm_agent_request(&c, a, CSVR_REQ_VM_CHECKPOINT, body, what, NULL);
	else if (rmd_conn_request(&c.r, CSVR_REQ_VM_CHECKPOINT, body, what, &reply) == 0) {
		print_checkpoints(c.name, reply);
		rc = EXIT_OK;
	}
out:
	json_object_put(reply);
	json_object_put(body);
	vm_close(&c);
	return fflush(stdout) == 0 ? rc : EXIT_FAIL;
}

int cmd_vm(const struct ctl_args *a)
{
	static const struct {
		const char *name;
		int (*run)(const struct ctl_args *a);
	} cmds[] = {
		{ "list", vm_list },       { "show", vm_show },       { "create", vm_create },
		{ "start", vm_start },     { "stop", vm_stop },       { "remove", vm_remove },
		{ "migrate", vm_migrate }, { "disk", vm_disk },       { "checkpoint", vm_checkpoint },
	};
	static const char names[] = "list, show, create, start, stop, remove, migrate, disk or checkpoint";

	if (a->nwords < 2)
		return usage_error("'vm' needs a command: %s", names);
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
		if (strcmp(a->words[1], cmds[i].name) == 0)
			return cmds[i].run(a);
	return usage_error("unknown vm command '%s' (%s)", a->words[1], names);
}
