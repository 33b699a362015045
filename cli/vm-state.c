/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The VMs of the state of csv-rmd (its "vms", lib/rmd-ipc.h): finding one,
 * and saying where it is and what changed, for the vm and node commands. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "csvctl.h"

struct json_object *state_vm(struct json_object *state, const char *name)
{
	struct json_object *vms = get(state, "vms");
	for (size_t i = 0; i < count(vms); i++)
		if (strcmp(gets(at(vms, i), "name", ""), name) == 0)
			return at(vms, i);
	return NULL;
}

int state_find_vm(struct json_object *state, const char *arg, struct json_object **ret_vm)
{
	struct json_object *vms = get(state, "vms"), *vm = state_vm(state, arg);
	if (vm) {
		*ret_vm = vm;
		return 0;
	}
	fprintf(stderr, PROG ": no VM %s (known: ", arg);
	for (size_t i = 0; i < count(vms); i++)
		fprintf(stderr, "%s%s", i ? ", " : "", gets(at(vms, i), "name", "?"));
	fprintf(stderr, "%s)\n", count(vms) ? "" : "none");
	return -ENOENT;
}

int64_t vm_node(struct json_object *vm)
{
	return has(vm, "node") ? geti(vm, "node") : -1;
}

int64_t vm_target(struct json_object *vm)
{
	return has(vm, "target") ? geti(vm, "target") : -1;
}

bool vm_in(struct json_object *vm, const char *phase)
{
	return strcmp(gets(vm, "phase", ""), phase) == 0;
}

const char *vm_where(struct json_object *state, struct json_object *vm, char *buf, size_t len)
{
	const char *phase = gets(vm, "phase", "?");
	char n[64], t[64];

	if (vm_node(vm) < 0)
		snprintf(buf, len, "%s", phase);
	else if (vm_in(vm, "migrating"))
		snprintf(buf, len, "migrating (%s) from %s to %s", gets(vm, "migration", "?"),
			 node_name(state, vm_node(vm), n, sizeof(n)),
			 vm_target(vm) < 0 ? "?" : node_name(state, vm_target(vm), t, sizeof(t)));
	else if (vm_in(vm, "waiting-fence"))
		snprintf(buf, len, "waiting until %s is fenced", node_name(state, vm_node(vm), n, sizeof(n)));
	else
		snprintf(buf, len, "%s on %s", phase, node_name(state, vm_node(vm), n, sizeof(n)));
	return buf;
}

const char *vm_why(struct json_object *vm, char *buf, size_t len)
{
	const char *reason = gets(vm, "reason", "");
	if (!reason[0])
		return "";
	snprintf(buf, len, " (%s)", reason);
	return buf;
}

/* Whether the member key of a and b is the same (both missing counts). */
static bool same(struct json_object *a, struct json_object *b, const char *key)
{
	struct json_object *x = get(a, key), *y = get(b, key);
	if (!x || !y)
		return !x && !y;
	return strcmp(json_object_get_string(x), json_object_get_string(y)) == 0;
}

void vm_progress(struct json_object *state, struct json_object *prev, struct json_object *vm, uint64_t t0)
{
	static const char *const keys[] = { "want", "phase", "node", "target", "migration", "reason" };
	bool changed = !prev;
	char w[256], y[512];

	for (size_t i = 0; i < ARRAY_SIZE(keys) && !changed; i++)
		changed = !same(prev, vm, keys[i]);
	if (!changed)
		return;
	bool stopping = strcmp(gets(vm, "want", "running"), "stopped") == 0 && !vm_in(vm, "stopped") &&
			!vm_in(vm, "stopping");
	fprintf(stderr, "%s: %s%s%s (%.1f s)\n", gets(vm, "name", "?"), vm_where(state, vm, w, sizeof(w)),
		vm_why(vm, y, sizeof(y)), stopping ? ", to be stopped" : "", elapsed_s(t0));
}
