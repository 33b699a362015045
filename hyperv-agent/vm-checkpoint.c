/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Checkpoints: QEMU's internal snapshots of a running VM, taken, applied
 * and deleted by the jobs snapshot-save, snapshot-load and snapshot-delete,
 * on every qcow2 disk of the VM, with the VM's state (memory, devices) in
 * the first one. Raw, vpc and vhdx disks have no internal snapshots: they
 * are left out, and keep their content when a checkpoint is applied. A
 * job is followed with query-jobs at the tick, and the request answered
 * when it has ended. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <qb/qblog.h>

#include "vmagent.h"

#define MS (1000000ull)

/* The format nodes of the qcow2 disks of vm; the first holds the state. */
static struct json_object *qcow2_nodes(const struct vm *vm)
{
	struct json_object *a = json_object_new_array();
	for (unsigned i = 0; i < vm->ndisks; i++)
		if (strcmp(vm->disks[i].format, "qcow2") == 0)
			json_object_array_add(a, json_object_new_string(vm->disks[i].node));
	return a;
}

/* The checkpoints of node (query-block's snapshots of its image) as
 * [{"name", "date", "vm_state_mb"}]; NULL with err. */
static struct json_object *list_of(struct vm *vm, const char *node, char *err, size_t errlen)
{
	struct json_object *ret = NULL, *out = NULL;
	if (qmp_call(vm->qmp, "query-block", NULL, VMA_QMP_TIMEOUT_MS, &ret, err, errlen) < 0)
		return NULL;
	for (size_t i = 0; !out && i < json_object_array_length(ret); i++) {
		struct json_object *b = json_object_array_get_idx(ret, i), *ins, *img, *snaps = NULL;
		const char *nn = json_object_object_get_ex(b, "inserted", &ins) ? vma_json_str(ins, "node-name") : NULL;
		if (!nn || strcmp(nn, node) != 0)
			continue;
		out = json_object_new_array();
		if (json_object_object_get_ex(ins, "image", &img))
			json_object_object_get_ex(img, "snapshots", &snaps);
		for (size_t k = 0; snaps && k < json_object_array_length(snaps); k++) {
			struct json_object *s = json_object_array_get_idx(snaps, k), *v, *c = json_object_new_object();
			time_t t = json_object_object_get_ex(s, "date-sec", &v) ? (time_t)json_object_get_int64(v) : 0;
			int64_t size = json_object_object_get_ex(s, "vm-state-size", &v) ? json_object_get_int64(v) : 0;
			char date[32];
			struct tm tm;
			strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
			const char *name = vma_json_str(s, "name");
			json_object_object_add(c, "name", json_object_new_string(name ? name : ""));
			json_object_object_add(c, "date", json_object_new_string(date));
			json_object_object_add(c, "vm_state_mb", json_object_new_double((double)size / (1024.0 * 1024.0)));
			json_object_array_add(out, c);
		}
	}
	json_object_put(ret);
	if (!out)
		snprintf(err, errlen, "QEMU does not list the disk node %s (query-block)", node);
	return out;
}

/* Whether list has a checkpoint named cp. */
static bool has(struct json_object *list, const char *cp)
{
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		const char *n = vma_json_str(json_object_array_get_idx(list, i), "name");
		if (n && strcmp(n, cp) == 0)
			return true;
	}
	return false;
}

/* Starts the job of op (take, apply, delete) on checkpoint cp. */
static int start_job(struct vm *vm, const char *op, const char *cp, const char *state_node, char *err,
		     size_t errlen)
{
	const char *cmd = strcmp(op, "take") == 0 ? "snapshot-save" : strcmp(op, "apply") == 0 ? "snapshot-load" :
			  "snapshot-delete";
	struct json_object *args = json_object_new_object();
	snprintf(vm->job_id, sizeof(vm->job_id), "csv-cp-%u", ++vm->job_seq);
	json_object_object_add(args, "job-id", json_object_new_string(vm->job_id));
	json_object_object_add(args, "tag", json_object_new_string(cp));
	if (strcmp(op, "delete") != 0)
		json_object_object_add(args, "vmstate", json_object_new_string(state_node));
	json_object_object_add(args, "devices", qcow2_nodes(vm));
	return qmp_call(vm->qmp, cmd, args, VMA_QMP_TIMEOUT_MS, NULL, err, errlen);
}

/* Checks op and cp, and that the checkpoint exists (apply, delete) or
 * not (take). */
static int check_op(struct vm *vm, const char *op, const char *cp, struct json_object *list, char *msg,
		    size_t msglen)
{
	if (strcmp(op, "take") != 0 && strcmp(op, "apply") != 0 && strcmp(op, "delete") != 0) {
		snprintf(msg, msglen, "\"op\" must be take, list, apply or delete, not \"%s\"", op);
		return -EINVAL;
	}
	if (!cp || !vmdef_name_ok(cp)) {
		snprintf(msg, msglen, "%s needs \"checkpoint\": a name of 1 to %d letters, digits, '-', '_' and '.', "
			 "not starting with '.'", op, VMDEF_NAME_MAX - 1);
		return -EINVAL;
	}
	bool exists = has(list, cp);
	if (strcmp(op, "take") == 0 && exists) {
		snprintf(msg, msglen, "VM %s has a checkpoint %s already: delete it first, or take another name",
			 vm->name, cp);
		return -EEXIST;
	}
	if (strcmp(op, "take") != 0 && !exists) {
		snprintf(msg, msglen, "VM %s has no checkpoint %s", vm->name, cp);
		return -ENOENT;
	}
	return 0;
}

int vm_checkpoint(struct agent *a, struct vm *vm, const char *op, const char *cp, struct json_object **ret,
		  char *msg, size_t msglen)
{
	char err[400];
	const char *state_node = NULL;
	int r = vm_ready_for(vm, "have checkpoints", msg, msglen);
	if (r < 0)
		return r;
	for (unsigned i = 0; i < vm->ndisks && !state_node; i++)
		if (strcmp(vm->disks[i].format, "qcow2") == 0)
			state_node = vm->disks[i].node;
	if (!state_node) {
		snprintf(msg, msglen, "checkpoints need a qcow2 disk (%s has none)", vm->name);
		return -EOPNOTSUPP;
	}
	struct json_object *list = list_of(vm, state_node, err, sizeof(err));
	if (!list) {
		snprintf(msg, msglen, "VM %s: cannot list its checkpoints: %s", vm->name, err);
		return -EIO;
	}
	if (strcmp(op, "list") == 0) {
		*ret = list;
		return 0;
	}
	r = check_op(vm, op, cp, list, msg, msglen);
	json_object_put(list);
	if (r < 0)
		return r;
	r = start_job(vm, op, cp, state_node, err, sizeof(err));
	if (r < 0) {
		snprintf(msg, msglen, "VM %s: cannot %s checkpoint %s: %s", vm->name, op, cp, err);
		return -EIO;
	}
	snprintf(vm->job_what, sizeof(vm->job_what), "%s checkpoint %s",
		 strcmp(op, "take") == 0 ? "taking" : strcmp(op, "apply") == 0 ? "applying" : "deleting", cp);
	vm->op = VM_OP_CHECKPOINT;
	vm->op_deadline_ns = vma_now_ns() + VMA_JOB_TIMEOUT_MS * MS;
	vm->next_job_poll_ns = 0;
	vm->job_poll_waiting = false;
	qb_log(LOG_NOTICE, "VM %s: %s (QEMU job %s)", vm->name, vm->job_what, vm->job_id);
	(void)a;
	return 0;
}

/* The job of vm in query-jobs' answer; NULL. */
static struct json_object *our_job(const struct vm *vm, struct json_object *jobs)
{
	for (size_t i = 0; jobs && i < json_object_array_length(jobs); i++) {
		struct json_object *j = json_object_array_get_idx(jobs, i);
		const char *id = vma_json_str(j, "id");
		if (id && strcmp(id, vm->job_id) == 0)
			return j;
	}
	return NULL;
}

static void on_jobs(void *data, int error, struct json_object *ret, const char *desc)
{
	struct vm *vm = data;
	char msg[600];
	vm->job_poll_waiting = false;
	struct json_object *j = error < 0 ? NULL : our_job(vm, ret);
	const char *status = vma_json_str(j, "status");
	if (vm->op != VM_OP_CHECKPOINT || !status || strcmp(status, "concluded") != 0)
		return;
	const char *why = vma_json_str(j, "error");
	struct json_object *args = json_object_new_object();
	json_object_object_add(args, "id", json_object_new_string(vm->job_id));
	qmp_send(vm->qmp, "job-dismiss", args, NULL, NULL);
	vm->next_status_ns = 0;
	if (why) {
		snprintf(msg, sizeof(msg), "VM %s: %s failed: %s", vm->name, vm->job_what, why);
		qb_log(LOG_WARNING, "%s", msg);
		vm_op_done(vm, -EIO, vma_error(msg));
		return;
	}
	qb_log(LOG_NOTICE, "VM %s: %s: done", vm->name, vm->job_what);
	vm_op_done(vm, 0, vma_message("VM %s: %s: done", vm->name, vm->job_what));
	(void)desc;
}

void vm_checkpoint_tick(struct vm *vm, uint64_t now)
{
	if (vm->op != VM_OP_CHECKPOINT)
		return;
	if (now >= vm->op_deadline_ns) {
		char msg[300];
		snprintf(msg, sizeof(msg), "VM %s: %s has not ended in %d s (QEMU job %s goes on)", vm->name,
			 vm->job_what, VMA_JOB_TIMEOUT_MS / 1000, vm->job_id);
		qb_log(LOG_WARNING, "%s", msg);
		vm_op_done(vm, -ETIMEDOUT, vma_error(msg));
		return;
	}
	if (vm->job_poll_waiting || now < vm->next_job_poll_ns)
		return;
	if (qmp_send(vm->qmp, "query-jobs", NULL, on_jobs, vm) == 0)
		vm->job_poll_waiting = true;
	vm->next_job_poll_ns = now + VMA_JOB_POLL_MS * MS;
}
