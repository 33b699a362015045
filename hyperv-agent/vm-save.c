/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Quick migration: SAVE pauses the guest and has QEMU write its state
 * (a migration stream) to a descriptor passed over QMP (getfd), a
 * temporary file beside VM_DIR/NAME.state, followed with query-migrate as
 * a live migration is. Completed: the file is fsync'd and renamed to
 * NAME.state, and QEMU quits. Failed, cancelled or too slow: the file
 * goes and the guest runs on. A START with "restore" runs QEMU with
 * -incoming fd:3 on that file; once the guest runs, the file goes. No
 * shell runs: a VM's name never reaches a command line as text. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <qb/qblog.h>

#include "vmagent.h"
#include "vmstore.h"

#define MS (1000000ull)
#define SAVE_FDNAME "csv-save"

/* Removes the temporary file of a save and closes it. */
static void drop_temp(struct vm *vm)
{
	if (vm->save_fd >= 0)
		close(vm->save_fd);
	vm->save_fd = -1;
	if (vm->save_tmp[0] && unlink(vm->save_tmp) < 0 && errno != ENOENT)
		qb_log(LOG_WARNING, "VM %s: cannot remove the partial saved state %s: %s", vm->name, vm->save_tmp,
		       strerror(errno));
	vm->save_tmp[0] = '\0';
}

/* Creates the temporary file of a save, beside VM_DIR/NAME.state. */
static int create_temp(struct agent *a, struct vm *vm, char *msg, size_t msglen)
{
	if (vmstore_path(a->vm_dir, vm->name, "state", vm->state_path, sizeof(vm->state_path)) < 0 ||
	    snprintf(vm->save_tmp, sizeof(vm->save_tmp), "%s.tmpXXXXXX", vm->state_path) >= (int)sizeof(vm->save_tmp)) {
		snprintf(msg, msglen, "VM %s: the path of its saved state is too long", vm->name);
		vm->save_tmp[0] = '\0';
		return -ENAMETOOLONG;
	}
	vm->save_fd = mkostemp(vm->save_tmp, O_CLOEXEC);
	if (vm->save_fd < 0) {
		int r = -errno;
		snprintf(msg, msglen, "VM %s: cannot create %s for its saved state: %s", vm->name, vm->save_tmp,
			 strerror(-r));
		vm->save_tmp[0] = '\0';
		return r;
	}
	return 0;
}

/* Has QEMU stop the guest and write its state to the temporary file. */
static int start_stream(struct vm *vm, char *err, size_t errlen)
{
	struct json_object *args = json_object_new_object();
	json_object_object_add(args, "fdname", json_object_new_string(SAVE_FDNAME));
	int r = qmp_call_fd(vm->qmp, "getfd", args, vm->save_fd, VMA_QMP_TIMEOUT_MS, NULL, err, errlen);
	if (r < 0)
		return r;
	if (vm->state == VM_RUNNING) {
		r = qmp_call(vm->qmp, "stop", NULL, VMA_QMP_TIMEOUT_MS, NULL, err, errlen);
		if (r < 0)
			return r;
		vm->save_stopped = true;
	}
	/* No bandwidth limit (QEMU's default is 128 MiB/s): it is a file. */
	args = json_object_new_object();
	json_object_object_add(args, "max-bandwidth", json_object_new_uint64(8ull << 30));
	r = qmp_call(vm->qmp, "migrate-set-parameters", args, VMA_QMP_TIMEOUT_MS, NULL, err, errlen);
	if (r < 0)
		return r;
	args = json_object_new_object();
	json_object_object_add(args, "uri", json_object_new_string("fd:" SAVE_FDNAME));
	return qmp_call(vm->qmp, "migrate", args, VMA_QMP_TIMEOUT_MS, NULL, err, errlen);
}

/* The guest paused by a save that did not complete runs on. */
static void resume(struct vm *vm)
{
	if (vm->save_stopped && vm->qmp && qmp_ready(vm->qmp) && qmp_send(vm->qmp, "cont", NULL, NULL, NULL) < 0)
		qb_log(LOG_WARNING, "VM %s: cannot resume the guest after the failed save: QMP is gone", vm->name);
	vm->save_stopped = false;
	vm->next_status_ns = 0;
}

int vm_save(struct agent *a, struct vm *vm, unsigned timeout_s, char *msg, size_t msglen)
{
	char err[400];
	int r = vm_ready_for(vm, "be saved", msg, msglen);
	if (r < 0)
		return r;
	r = create_temp(a, vm, msg, msglen);
	if (r < 0)
		return r;
	vm->save_stopped = false;
	r = start_stream(vm, err, sizeof(err));
	if (r < 0) {
		resume(vm);
		drop_temp(vm);
		snprintf(msg, msglen, "VM %s: cannot save its state: %s", vm->name, err);
		qb_log(LOG_WARNING, "%s", msg);
		return r == -ETIMEDOUT || r == -ECONNRESET ? -EIO : r;
	}
	uint64_t now = vma_now_ns();
	memset(&vm->mig, 0, sizeof(vm->mig));
	vm->mig.present = true;
	snprintf(vm->mig.status, sizeof(vm->mig.status), "setup");
	vm->mig.total_ms = vm->mig.downtime_ms = -1;
	snprintf(vm->mig_target, sizeof(vm->mig_target), "%.290s", vm->state_path);
	vm->mig_active = true;
	vm->mig_completed = vm->mig_cancel_sent = false;
	vm->mig_cancel_why[0] = '\0';
	vm->mig_started_ns = now;
	vm->mig_deadline_ns = now + (uint64_t)timeout_s * 1000 * MS;
	vm->next_mig_poll_ns = now + VMA_MIGRATE_POLL_MS * MS;
	vm->op = VM_OP_SAVE;
	vm_set_state(vm, VM_SAVING, "saving its state to %s (timeout %u s)", vm->state_path, timeout_s);
	snprintf(msg, msglen, "VM %s: saving its state to %s; it stops once saved", vm->name, vm->state_path);
	return 0;
}

/* The written state becomes VM_DIR/NAME.state, durably. */
static int commit(struct vm *vm, char *err, size_t errlen)
{
	if (fsync(vm->save_fd) < 0) {
		snprintf(err, errlen, "cannot fsync %s: %s", vm->save_tmp, strerror(errno));
		return -errno;
	}
	if (rename(vm->save_tmp, vm->state_path) < 0) {
		snprintf(err, errlen, "cannot rename %s to %s: %s", vm->save_tmp, vm->state_path, strerror(errno));
		return -errno;
	}
	vm->save_tmp[0] = '\0';
	int r = vmstore_sync_dir(vm->agent->vm_dir);
	if (r < 0)
		qb_log(LOG_WARNING, "VM %s: %s is saved, but %s cannot be synced: %s", vm->name, vm->state_path,
		       vm->agent->vm_dir, strerror(-r));
	close(vm->save_fd);
	vm->save_fd = -1;
	return 0;
}

/* The save did not complete: the guest runs on, the file goes. */
static void failed(struct vm *vm, const char *why)
{
	vm->mig_active = false;
	drop_temp(vm);
	resume(vm);
	vm->op = VM_OP_NONE;
	vm_set_state(vm, VM_RUNNING, "saving its state to %s failed: %s; it runs on", vm->state_path, why);
}

void vm_save_progress(struct vm *vm, const char *status, const char *why)
{
	char err[3 * PATH_MAX], how[PATH_MAX + 32];
	if (vm->state != VM_SAVING || !vm->mig_active)
		return;
	if (strcmp(status, "completed") == 0) {
		vm->mig_active = false;
		if (commit(vm, err, sizeof(err)) < 0) {
			failed(vm, err);
			return;
		}
		qb_log(LOG_NOTICE, "VM %s: state saved to %s in %" PRId64 " ms, %.1f MiB", vm->name, vm->state_path,
		       vm->mig.total_ms, vm->mig.transferred_mb);
		vm->op = VM_OP_NONE;
		vm_set_state(vm, VM_STOPPING, "saved to %s; powering off", vm->state_path);
		snprintf(how, sizeof(how), "saved to %s", vm->state_path);
		vm_send_quit(vm, how);
	} else if (strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0) {
		if (vm->mig_cancel_sent)
			snprintf(err, sizeof(err), "cancelled: %s", vm->mig_cancel_why);
		else
			snprintf(err, sizeof(err), "QEMU says %s%s%s", status, why ? ": " : "", why ? why : "");
		failed(vm, err);
	}
}

void vm_save_abandon(struct vm *vm)
{
	vm->mig_active = false;
	drop_temp(vm);
	vm->op = VM_OP_NONE;
}

void vm_restore_done(struct vm *vm)
{
	vm->restoring = false;
	if (unlink(vm->state_path) < 0 && errno != ENOENT)
		qb_log(LOG_WARNING, "VM %s: restored, but its saved state %s cannot be removed: %s", vm->name,
		       vm->state_path, strerror(errno));
	vmstore_sync_dir(vm->agent->vm_dir);
	vm_set_state(vm, VM_RUNNING, "restored from %s", vm->state_path);
	ipc_answer(vm, 0, vma_message("VM %s runs, restored from %s (pid %d, %s)", vm->name, vm->state_path,
				      (int)vm->pid, vm->agent->kvm ? "KVM" : "TCG"));
}
