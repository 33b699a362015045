/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The VMs of this node: each is a QEMU process started from the VM's
 * definition, driven and followed over QMP (query-status every 500 ms,
 * query-migrate every 200 ms while it migrates) and by waitpid. QEMU dies
 * with the agent (PR_SET_PDEATHSIG), so that a node whose agent is gone
 * runs no VM. Nothing here waits for QEMU longer than a QMP command's
 * timeout: starts, stops and migrations go on at the tick. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <qb/qblog.h>

#include "util.h"
#include "vmagent.h"
#include "vmstore.h"

#define MS (1000000ull)

static const char *const state_names[] = {
	[VM_STARTING] = "starting",
	[VM_RUNNING] = "running",
	[VM_PAUSED] = "paused",
	[VM_INCOMING] = "incoming",
	[VM_MIGRATING] = "migrating",
	[VM_STOPPING] = "stopping",
	[VM_STOPPED] = "stopped",
	[VM_FAILED] = "failed",
	[VM_SAVING] = "saving",
};

const char *vm_state_str(enum vm_state s)
{
	return (unsigned)s < ARRAY_SIZE(state_names) ? state_names[s] : "unknown";
}

bool vm_active(const struct vm *vm)
{
	return vm->pid != 0;
}

struct vm *vm_find(struct agent *a, const char *name)
{
	for (unsigned i = 0; i < a->nvms; i++)
		if (strcmp(a->vms[i]->name, name) == 0)
			return a->vms[i];
	return NULL;
}

static void run_path(const struct agent *a, const char *name, const char *suffix, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s.%s", a->run_dir, name, suffix);
}

void vm_set_reason(struct vm *vm, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(vm->reason, sizeof(vm->reason), fmt, ap);
	va_end(ap);
}

/* Moves vm to state s with the reason, and logs it. */
void vm_set_state(struct vm *vm, enum vm_state s, const char *fmt, ...)
{
	enum vm_state old = vm->state;
	bool fresh = !vm->reason[0];  /* a VM new to this agent */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(vm->reason, sizeof(vm->reason), fmt, ap);
	va_end(ap);
	vm->state = s;
	qb_log(s == VM_FAILED ? LOG_WARNING : LOG_NOTICE, "VM %s: %s -> %s%s%s", vm->name,
	       fresh ? "(new)" : vm_state_str(old), vm_state_str(s), vm->reason[0] ? ": " : "", vm->reason);
}

/* What QEMU wrote to its log in its last run (after our last "# " line),
 * its lines joined with "; ", the end kept when it is too long. */
static void log_tail(const struct agent *a, const struct vm *vm, char *buf, size_t len)
{
	char path[PATH_MAX], block[4096];
	buf[0] = '\0';
	run_path(a, vm->name, "log", path, sizeof(path));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	off_t end = lseek(fd, 0, SEEK_END);
	off_t from = end > (off_t)sizeof(block) - 1 ? end - (off_t)sizeof(block) + 1 : 0;
	ssize_t n = pread(fd, block, sizeof(block) - 1, from);
	close(fd);
	if (n <= 0)
		return;
	block[n] = '\0';
	char *start = block, *p;
	if (strncmp(start, "# ", 2) == 0)
		start = strchr(start, '\n') ? strchr(start, '\n') + 1 : start + n;
	while ((p = strstr(start, "\n# ")))
		start = strchr(p + 1, '\n') ? strchr(p + 1, '\n') + 1 : p + strlen(p);
	size_t used = 0;
	char joined[4096];
	joined[0] = '\0';
	char *save = NULL;
	for (char *line = strtok_r(start, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!line[0])
			continue;
		int m = snprintf(joined + used, sizeof(joined) - used, "%s%s", used ? "; " : "", line);
		if (m < 0 || (size_t)m >= sizeof(joined) - used)
			break;
		used += (size_t)m;
	}
	size_t jl = strlen(joined), keep = jl < len ? jl : len - 1;
	memcpy(buf, joined + jl - keep, keep);
	buf[keep] = '\0';
}

/* ---- QMP -------------------------------------------------------------------- */

static void qmp_drop(struct vm *vm)
{
	if (!vm->qmp)
		return;
	if (vm->qmp_polled)
		qb_loop_poll_del(vm->agent->loop, qmp_fd(vm->qmp));
	vm->qmp_polled = false;
	qmp_forget(vm->qmp, vm);
	qmp_close(vm->qmp);
	vm->qmp = NULL;
	vm->qmp_ready = false;
	vm->status_waiting = false;
	vm->mig_poll_waiting = false;
}

static void qmp_became_ready(struct vm *vm);

static int32_t on_qmp_readable(int32_t fd, int32_t revents, void *data)
{
	struct vm *vm = data;
	if (!vm->qmp || qmp_fd(vm->qmp) != fd) {
		qb_loop_poll_del(vm->agent->loop, fd);  /* not ours any more */
		return 0;
	}
	if (qmp_dispatch(vm->qmp) < 0) {
		/* QEMU closed it: it exits, which waitpid tells. */
		qmp_drop(vm);
		vm_reap(vm->agent);
		return 0;
	}
	if (!vm->qmp_ready && qmp_ready(vm->qmp))
		qmp_became_ready(vm);
	return 0;
}

static void on_event(void *data, const char *event, struct json_object *ed)
{
	struct vm *vm = data;
	struct json_object *v;
	qb_log(LOG_DEBUG, "VM %s: QMP event %s", vm->name, event);
	if (strcmp(event, "SHUTDOWN") == 0) {
		vm->shutdown_seen = true;
		vm->shutdown_by_guest = ed && json_object_object_get_ex(ed, "guest", &v) && json_object_get_boolean(v);
		vm->shutdown_reason[0] = '\0';
		if (ed && json_object_object_get_ex(ed, "reason", &v) && json_object_is_type(v, json_type_string))
			snprintf(vm->shutdown_reason, sizeof(vm->shutdown_reason), "%s", json_object_get_string(v));
	} else if (strcmp(event, "DEVICE_DELETED") == 0) {
		const char *dev = vma_json_str(ed, "device");
		if (dev)
			vm_disk_deleted(vm, dev);
	} else if (strcmp(event, "STOP") == 0 || strcmp(event, "RESUME") == 0 ||
		   strcmp(event, "GUEST_PANICKED") == 0) {
		vm->next_status_ns = 0;  /* ask now, at the next tick */
	}
}

const char *vma_json_str(struct json_object *o, const char *key)
{
	struct json_object *v;
	return o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) ?
	       json_object_get_string(v) : NULL;
}

static int64_t json_int(struct json_object *o, const char *key, int64_t dflt)
{
	struct json_object *v;
	return o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int) ?
	       json_object_get_int64(v) : dflt;
}

struct json_object *vma_message(const char *fmt, ...)
{
	char text[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "message", json_object_new_string(text));
	return o;
}

struct json_object *vma_error(const char *text)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "error", json_object_new_string(text));
	return o;
}

/* What a QEMU run status other than running means for the VM. */
static const char *paused_why(const char *status)
{
	if (strcmp(status, "guest-panicked") == 0)
		return "the guest panicked";
	if (strcmp(status, "io-error") == 0)
		return "paused by QEMU on a disk I/O error";
	if (strcmp(status, "internal-error") == 0)
		return "paused by QEMU on an internal error of the emulation";
	if (strcmp(status, "watchdog") == 0)
		return "paused by the guest's watchdog";
	if (strcmp(status, "suspended") == 0)
		return "the guest suspended itself";
	return NULL;
}

static void answer_incoming(struct vm *vm)
{
	if (!vm->reply_conn || !vm->incoming_port)
		return;
	struct json_object *o = vma_message("VM %s waits for an incoming live migration on %s:%u (pid %d)", vm->name,
					vm->agent->address, vm->incoming_port, (int)vm->pid);
	json_object_object_add(o, "port", json_object_new_uint64(vm->incoming_port));
	ipc_answer(vm, 0, o);
}

static void on_status(void *data, int error, struct json_object *ret, const char *desc)
{
	struct vm *vm = data;
	vm->status_waiting = false;
	vm->qmp_stuck_logged = false;
	const char *status = vma_json_str(ret, "status");
	if (error < 0 || !status) {
		if (error == -EIO)
			qb_log(LOG_WARNING, "VM %s: query-status: %s", vm->name, desc);
		return;
	}
	switch (vm->state) {
	case VM_STARTING:
		if (vm->restoring && strcmp(status, "paused") == 0) {
			/* Saved paused (SAVE stops the guest first): it goes on. */
			qmp_send(vm->qmp, "cont", NULL, NULL, NULL);
		} else if (strcmp(status, "running") == 0 && vm->restoring) {
			vm_restore_done(vm);
		} else if (strcmp(status, "running") == 0) {
			vm_set_state(vm, VM_RUNNING, "started");
			ipc_answer(vm, 0, vma_message("VM %s runs (pid %d, %s)", vm->name, (int)vm->pid,
						  vm->agent->kvm ? "KVM" : "TCG"));
		}
		break;
	case VM_INCOMING:
		if (strcmp(status, "running") == 0) {
			vm_set_state(vm, VM_RUNNING, "live-migrated here");
			answer_incoming(vm);
		}
		break;
	case VM_RUNNING:
		if (vm->op == VM_OP_CHECKPOINT && strcmp(status, "paused") == 0)
			break;  /* a checkpoint pauses the guest while it is taken */
		if (paused_why(status) || strcmp(status, "paused") == 0)
			vm_set_state(vm, VM_PAUSED, "%s", paused_why(status) ? paused_why(status) :
				  "paused (QEMU status paused)");
		break;
	case VM_PAUSED:
		if (strcmp(status, "running") == 0)
			vm_set_state(vm, VM_RUNNING, "resumed");
		break;
	default:
		break;
	}
}

/* The port QEMU listens on for an incoming migration (-incoming tcp:...:0). */
static void on_incoming_info(void *data, int error, struct json_object *ret, const char *desc)
{
	struct vm *vm = data;
	struct json_object *addrs, *a0, *p;
	if (error < 0) {
		qb_log(LOG_WARNING, "VM %s: query-migrate: %s", vm->name, desc);
		return;
	}
	if (!vm->incoming_port && json_object_object_get_ex(ret, "socket-address", &addrs) &&
	    json_object_is_type(addrs, json_type_array) && json_object_array_length(addrs) > 0 &&
	    (a0 = json_object_array_get_idx(addrs, 0)) && json_object_object_get_ex(a0, "port", &p)) {
		/* QEMU gives it as a string. */
		long port = json_object_is_type(p, json_type_int) ? (long)json_object_get_int64(p) :
			    json_object_is_type(p, json_type_string) ? strtol(json_object_get_string(p), NULL, 10) : 0;
		if (port > 0 && port <= 65535)
			vm->incoming_port = (uint16_t)port;
	}
	if (!vm->incoming_port) {
		qb_log(LOG_WARNING, "VM %s: QEMU does not say on which port it waits for the migration", vm->name);
		return;
	}
	if (vm->state == VM_INCOMING)
		vm_set_reason(vm, "waiting for an incoming live migration on %s:%u", vm->agent->address,
			   vm->incoming_port);
	answer_incoming(vm);
}

/* Connects to the QMP socket of a QEMU that has just started (or whose
 * connection broke); QEMU's greeting comes through the loop. */
static void try_connect(struct agent *a, struct vm *vm)
{
	char path[PATH_MAX], err[300];
	struct qmp *q;
	run_path(a, vm->name, "qmp", path, sizeof(path));
	int r = qmp_open(path, on_event, vm, &q, err, sizeof(err));
	if (r < 0) {
		if (r != -ENOENT && r != -ECONNREFUSED)
			qb_log(LOG_DEBUG, "VM %s: %s", vm->name, err);
		return;
	}
	if (qb_loop_poll_add(a->loop, QB_LOOP_MED, qmp_fd(q), POLLIN, vm, on_qmp_readable) < 0) {
		qmp_close(q);
		return;
	}
	vm->qmp = q;
	vm->qmp_polled = true;
	vm->qmp_ready = false;
	vm->qmp_opened_ns = vma_now_ns();
}

/* The connection has become ready: what waited for it. */
static void qmp_became_ready(struct vm *vm)
{
	vm->qmp_ready = true;
	qb_log(LOG_INFO, "VM %s: QMP connected (QEMU pid %d)", vm->name, (int)vm->pid);
	vm->next_status_ns = 0;
	if (vm->incoming && !vm->incoming_port_asked) {
		if (qmp_send(vm->qmp, "query-migrate", NULL, on_incoming_info, vm) == 0)
			vm->incoming_port_asked = true;
		else
			qb_log(LOG_WARNING, "VM %s: cannot ask QEMU for its migration port", vm->name);
	}
}

/* Sends quit; SIGKILL follows at the deadline, or now without QMP. */
void vm_send_quit(struct vm *vm, const char *how)
{
	vm->stop_asked = true;
	snprintf(vm->stop_how, sizeof(vm->stop_how), "%s", how);
	if (vm->qmp && qmp_ready(vm->qmp) && qmp_send(vm->qmp, "quit", NULL, NULL, NULL) == 0) {
		vm->stop = VM_STOP_QUIT;
		vm->stop_deadline_ns = vma_now_ns() + VMA_QUIT_TIMEOUT_MS * MS;
		return;
	}
	qb_log(LOG_WARNING, "VM %s: no QMP to quit QEMU (pid %d): SIGKILL", vm->name, (int)vm->pid);
	kill(vm->pid, SIGKILL);
	vm->stop = VM_STOP_KILLED;
	snprintf(vm->stop_how, sizeof(vm->stop_how), "%s, by SIGKILL (no QMP connection)", how);
}

/* ---- migration -------------------------------------------------------------- */

static double mib(int64_t bytes)
{
	return bytes < 0 ? 0 : (double)bytes / (1024.0 * 1024.0);
}

static void on_migrate_info(void *data, int error, struct json_object *ret, const char *desc)
{
	struct vm *vm = data;
	vm->mig_poll_waiting = false;
	const char *status = vma_json_str(ret, "status");
	if (error < 0 || !status) {
		if (error == -EIO)
			qb_log(LOG_WARNING, "VM %s: query-migrate: %s", vm->name, desc);
		return;
	}
	if (!vm->mig_active)
		return;
	struct json_object *ram = NULL;
	json_object_object_get_ex(ret, "ram", &ram);
	snprintf(vm->mig.status, sizeof(vm->mig.status), "%s", status);
	vm->mig.total_ms = json_int(ret, "total-time", -1);
	vm->mig.downtime_ms = json_int(ret, "downtime", -1);  /* once completed */
	if (ram) {
		vm->mig.transferred_mb = mib(json_int(ram, "transferred", 0));
		vm->mig.remaining_mb = mib(json_int(ram, "remaining", 0));
	}
	if (vm->op == VM_OP_SAVE) {
		vm_save_progress(vm, status, vma_json_str(ret, "error-desc"));
		return;
	}
	if (strcmp(status, "completed") == 0) {
		vm->mig_active = false;
		vm->mig_completed = true;
		qb_log(LOG_NOTICE, "VM %s: migrated to %s in %" PRId64 " ms, downtime %" PRId64 " ms, %.1f MiB sent",
		       vm->name, vm->mig_target, vm->mig.total_ms, vm->mig.downtime_ms, vm->mig.transferred_mb);
		vm_set_state(vm, VM_STOPPING, "migrated to %s; powering off the source", vm->mig_target);
		char how[400];
		snprintf(how, sizeof(how), "migrated to %s", vm->mig_target);
		vm_send_quit(vm, how);
	} else if (strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0) {
		const char *why = vma_json_str(ret, "error-desc");
		vm->mig_active = false;
		if (vm->mig_cancel_sent)
			vm_set_state(vm, VM_RUNNING, "migration to %s cancelled: %s", vm->mig_target, vm->mig_cancel_why);
		else
			vm_set_state(vm, VM_RUNNING, "migration to %s %s%s%s", vm->mig_target, status, why ? ": " : "",
				  why ? why : "");
		vm->next_status_ns = 0;
	}
}

int vm_migrate(struct agent *a, struct vm *vm, const char *host, uint16_t port, unsigned downtime_ms,
	       unsigned timeout_s, char *msg, size_t msglen)
{
	char err[400], uri[320];
	if (vm->state == VM_MIGRATING) {
		snprintf(msg, msglen, "VM %s is migrating to %s already", vm->name, vm->mig_target);
		return -EBUSY;
	}
	int r = vm_ready_for(vm, "migrate", msg, msglen);
	if (r < 0)
		return r;
	if (vm->layout_differs) {
		snprintf(msg, msglen, "VM %s: a disk was removed from the middle of its disks since it started, so "
			 "its SCSI targets differ from its definition, which the target would start from: restart it "
			 "first", vm->name);
		return -EBUSY;
	}
	bool v6 = strchr(host, ':') != NULL;
	snprintf(vm->mig_target, sizeof(vm->mig_target), v6 ? "[%s]:%u" : "%s:%u", host, port);
	snprintf(uri, sizeof(uri), "tcp:%s", vm->mig_target);

	/* auto-converge throttles a guest that dirties its memory faster
	 * than it can be sent. Not return-path, which would make the source
	 * wait for the target to confirm that it loaded the state (a target
	 * that fails then would leave the VM running here): measured here, it
	 * took the guest's blackout from a few ms to hundreds. */
	struct json_object *caps = json_object_new_array();
	const char *names[] = { "auto-converge" };
	for (unsigned i = 0; i < ARRAY_SIZE(names); i++) {
		struct json_object *c = json_object_new_object();
		json_object_object_add(c, "capability", json_object_new_string(names[i]));
		json_object_object_add(c, "state", json_object_new_boolean(true));
		json_object_array_add(caps, c);
	}
	struct json_object *args = json_object_new_object();
	json_object_object_add(args, "capabilities", caps);
	r = qmp_call(vm->qmp, "migrate-set-capabilities", args, VMA_QMP_TIMEOUT_MS, NULL, err, sizeof(err));
	if (r < 0)
		goto fail;
	/* The downtime limit; the bandwidth is not limited (QEMU's default
	 * of 128 MiB/s would make the limit unreachable on a fast link). */
	args = json_object_new_object();
	json_object_object_add(args, "downtime-limit", json_object_new_uint64(downtime_ms));
	json_object_object_add(args, "max-bandwidth", json_object_new_uint64(8ull << 30));
	r = qmp_call(vm->qmp, "migrate-set-parameters", args, VMA_QMP_TIMEOUT_MS, NULL, err, sizeof(err));
	if (r < 0)
		goto fail;
	args = json_object_new_object();
	json_object_object_add(args, "uri", json_object_new_string(uri));
	r = qmp_call(vm->qmp, "migrate", args, VMA_QMP_TIMEOUT_MS, NULL, err, sizeof(err));
	if (r < 0)
		goto fail;

	uint64_t now = vma_now_ns();
	memset(&vm->mig, 0, sizeof(vm->mig));
	vm->mig.present = true;
	snprintf(vm->mig.status, sizeof(vm->mig.status), "setup");
	vm->mig.total_ms = -1;
	vm->mig.downtime_ms = -1;
	vm->mig_active = true;
	vm->mig_completed = false;
	vm->mig_cancel_sent = false;
	vm->mig_cancel_why[0] = '\0';
	vm->mig_started_ns = now;
	vm->mig_deadline_ns = now + (uint64_t)timeout_s * 1000 * MS;
	vm->next_mig_poll_ns = now + VMA_MIGRATE_POLL_MS * MS;
	vm_set_state(vm, VM_MIGRATING, "migrating to %s (downtime limit %u ms, timeout %u s)", vm->mig_target,
		  downtime_ms, timeout_s);
	snprintf(msg, msglen, "VM %s: live migration to %s started", vm->name, vm->mig_target);
	return 0;
fail:
	snprintf(msg, msglen, "VM %s: cannot migrate to %s: %s", vm->name, vm->mig_target, err);
	qb_log(LOG_WARNING, "%s", msg);
	return r == -ETIMEDOUT || r == -ECONNRESET ? -EIO : r;
}

/* ---- start ------------------------------------------------------------------ */

/* Argument storage of one QEMU command line. */
struct cmdline {
	char *argv[96];
	unsigned argc;
	char store[16384];
	size_t used;
};

_printf_(2, 3) static int arg(struct cmdline *c, const char *fmt, ...)
{
	va_list ap;
	if (c->argc + 2 > ARRAY_SIZE(c->argv))
		return -E2BIG;
	va_start(ap, fmt);
	int n = vsnprintf(c->store + c->used, sizeof(c->store) - c->used, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(c->store) - c->used)
		return -E2BIG;
	c->argv[c->argc++] = c->store + c->used;
	c->argv[c->argc] = NULL;
	c->used += (size_t)n + 1;
	return 0;
}

/* The disks (on scsi0, disk I at SCSI target I) and the network
 * interfaces (QEMU's user-mode network, restrict=on: no packet leaves the
 * VM) of the definition. */
static int devices_args(const struct vm *vm, struct cmdline *c)
{
	const struct vmdef *d = &vm->def;
	char drive[PATH_MAX + 160];
	int r = arg(c, "-device") | arg(c, "virtio-scsi-pci,id=scsi0");
	for (unsigned i = 0; i < d->ndisks; i++) {
		if (vmdef_drive_arg(d, i, drive, sizeof(drive)) < 0)
			return -E2BIG;
		r |= arg(c, "-drive") | arg(c, "%s", drive);
		r |= arg(c, "-device") | arg(c, "scsi-hd,drive=disk%u,bus=scsi0.0,channel=0,scsi-id=%u,lun=0,id=disk%u", i,
					   i, i);
	}
	for (unsigned i = 0; i < d->nnics; i++) {
		r |= arg(c, "-netdev") | arg(c, "user,id=net%u,restrict=on", i);
		r |= arg(c, "-device") | arg(c, "virtio-net-pci,netdev=net%u,mac=%s,id=nic%u,romfile=", i,
					   d->nics[i].mac, i);
	}
	return r;
}

static int build_cmdline(const struct agent *a, const struct vm *vm, uint16_t port, struct cmdline *c)
{
	const struct vmdef *d = &vm->def;
	char path[PATH_MAX];
	int r = 0;
	r |= arg(c, "%s", a->qemu);
	r |= arg(c, "-name") | arg(c, "guest=%s", d->name);
	r |= arg(c, "-nodefaults") | arg(c, "-no-user-config") | arg(c, "-display") | arg(c, "none");
	r |= arg(c, "-machine") | arg(c, "q35") | arg(c, "-accel") | arg(c, "%s", a->kvm ? "kvm" : "tcg");
	r |= arg(c, "-m") | arg(c, "%u", d->memory_mb) | arg(c, "-smp") | arg(c, "%u", d->vcpus);
	if (vm->cpu_arg[0])
		r |= arg(c, "-cpu") | arg(c, "%s", vm->cpu_arg);
	r |= arg(c, "-kernel") | arg(c, "%s", d->kernel);
	if (d->append[0])
		r |= arg(c, "-append") | arg(c, "%s", d->append);
	run_path(a, vm->name, "serial", path, sizeof(path));
	r |= arg(c, "-serial") | arg(c, "file:%s", path);
	run_path(a, vm->name, "qmp", path, sizeof(path));
	r |= arg(c, "-qmp") | arg(c, "unix:%s,server=on,wait=off", path);
	run_path(a, vm->name, "pid", path, sizeof(path));
	r |= arg(c, "-pidfile") | arg(c, "%s", path);
	r |= devices_args(vm, c);
	if (vm->incoming) {
		bool v6 = strchr(a->address, ':') != NULL;
		r |= arg(c, "-incoming") | arg(c, v6 ? "tcp:[%s]:%u" : "tcp:%s:%u", a->address, port);
	} else if (vm->restoring) {
		r |= arg(c, "-incoming") | arg(c, "fd:3");  /* the saved state, open for reading */
	}
	return r ? -E2BIG : 0;
}

static int spawn(struct agent *a, struct vm *vm, uint16_t port, char *err, size_t errlen)
{
	char logpath[PATH_MAX], path[PATH_MAX];
	struct cmdline *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (build_cmdline(a, vm, port, c) < 0) {
		snprintf(err, errlen, "the QEMU command line of VM %s is too long", vm->name);
		free(c);
		return -E2BIG;
	}
	/* Left over by a QEMU that was killed. */
	run_path(a, vm->name, "qmp", path, sizeof(path));
	unlink(path);
	run_path(a, vm->name, "pid", path, sizeof(path));
	unlink(path);

	run_path(a, vm->name, "log", logpath, sizeof(logpath));
	int logfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (logfd < 0) {
		int r = negative_errno();
		snprintf(err, errlen, "cannot open QEMU's log %s: %s", logpath, strerror(-r));
		free(c);
		return r;
	}
	char when[64];
	time_t t = time(NULL);
	struct tm tm;
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %z", localtime_r(&t, &tm));
	dprintf(logfd, "# %s: csv-vmagent (node %u) starts VM %s:", when, a->node_id, vm->name);
	for (unsigned i = 0; i < c->argc; i++)
		dprintf(logfd, " %s", c->argv[i]);
	dprintf(logfd, "\n");

	int lr = vm_lease_spawn_begin(err, errlen);
	if (lr < 0) {
		dprintf(logfd, "# not started: %s\n", err);
		close(logfd);
		free(c);
		return lr;
	}
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid != 0)
		vm_lease_spawn_end(pid);
	if (pid < 0) {
		int r = negative_errno();
		snprintf(err, errlen, "cannot start QEMU: fork: %s", strerror(-r));
		close(logfd);
		free(c);
		return r;
	}
	if (pid == 0) {
		/* A VM must not outlive its agent: a node without its agent
		 * runs no VM, and the VM can be started elsewhere. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		setsid();  /* the agent's terminal and its signals are not QEMU's */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(logfd, 1);
		dup2(logfd, 2);
		if (vm->restore_fd >= 0) {
			/* -incoming fd:3; dup2 clears its O_CLOEXEC. */
			if (vm->restore_fd == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup2(vm->restore_fd, 3) < 0)
				_exit(127);
			close_range(4, ~0u, 0);
		} else {
			close_range(3, ~0u, 0);
		}
		execv(c->argv[0], c->argv);
		dprintf(2, "csv-vmagent: cannot run %s: %s\n", c->argv[0], strerror(errno));
		_exit(127);
	}
	close(logfd);
	free(c);
	if (vm->restore_fd >= 0)
		close(vm->restore_fd);
	vm->restore_fd = -1;
	vm->pid = pid;
	vm->spawned_ns = vma_now_ns();
	qb_log(LOG_NOTICE, "VM %s: started QEMU (pid %d, %s, %u vCPU, %u MiB, %u disk(s))%s; its log: %s", vm->name,
	       (int)pid, a->kvm ? "KVM" : "TCG", vm->def.vcpus, vm->def.memory_mb, vm->def.ndisks,
	       vm->incoming ? ", waiting for an incoming migration" : "", logpath);
	return 0;
}

/* Clears what a run of the VM left, before the next. */
static void reset_run(struct vm *vm)
{
	vm->pid = 0;
	vm->incoming = false;
	vm->incoming_port = 0;
	vm->incoming_port_asked = false;
	vm->next_status_ns = 0;
	vm->status_waiting = false;
	vm->qmp_stuck_logged = false;
	vm->stop = VM_STOP_NONE;
	vm->stop_asked = false;
	vm->stop_how[0] = '\0';
	vm->fail_why[0] = '\0';
	vm->shutdown_seen = false;
	vm->shutdown_by_guest = false;
	vm->shutdown_reason[0] = '\0';
	vm->mig_active = false;
	vm->mig_completed = false;
	vm->mig_cancel_sent = false;
	vm->mig_poll_waiting = false;
	vm->layout_differs = false;
	vm->cpu_arg[0] = '\0';
	vm->restoring = false;
	vm->restore_fd = -1;
	vm->op = VM_OP_NONE;
	vm->save_fd = -1;
	vm->job_poll_waiting = false;
}

/* The -cpu value of def, limited to features when it asks cpu_compat. */
static int cpu_for(const struct agent *a, const struct vmdef *def, const char *features, char *buf, size_t len,
		   char *err, size_t errlen)
{
	buf[0] = '\0';
	if (!def->cpu_compat || !features || !features[0])
		return 0;
	if (!a->cpuq.probed || !a->have_cpu) {
		snprintf(err, errlen, "VM %s has cpu_compat, but this node cannot limit its CPU: %s", def->name,
			 !a->have_cpu ? "/proc/cpuinfo has no CPU flags" : a->cpuq_err);
		return -EOPNOTSUPP;
	}
	if (cpu_arg(&a->cpuq, a->kvm, a->cpu.flags, features, buf, len) < 0) {
		snprintf(err, errlen, "VM %s: the -cpu argument for cpu_features is too long", def->name);
		return -E2BIG;
	}
	return 0;
}

/* Opens VM_DIR/NAME.state for a restore into vm. */
static int open_state(struct agent *a, struct vm *vm, char *err, size_t errlen)
{
	if (vmstore_path(a->vm_dir, vm->name, "state", vm->state_path, sizeof(vm->state_path)) < 0) {
		snprintf(err, errlen, "the path of the saved state of %s is too long", vm->name);
		return -ENAMETOOLONG;
	}
	vm->restore_fd = open(vm->state_path, O_RDONLY | O_CLOEXEC);
	if (vm->restore_fd < 0) {
		int r = negative_errno();
		if (r == -ENOENT)
			snprintf(err, errlen, "VM %s has no saved state to restore: no %s (SAVE makes it)", vm->name,
				 vm->state_path);
		else
			snprintf(err, errlen, "cannot open the saved state %s: %s", vm->state_path, strerror(-r));
		return r;
	}
	vm->restoring = true;
	return 0;
}

/* The VM name of this agent, added (stopped) when it has none yet. */
static int vm_get(struct agent *a, const char *name, struct vm **ret, char *err, size_t errlen)
{
	struct vm *vm = vm_find(a, name);
	if (vm) {
		*ret = vm;
		return 0;
	}
	struct vm **vms = realloc(a->vms, sizeof(*vms) * (a->nvms + 1));
	if (!vms) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	a->vms = vms;
	vm = calloc(1, sizeof(*vm));
	if (!vm) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	vm->agent = a;
	snprintf(vm->name, sizeof(vm->name), "%s", name);
	vm->state = VM_STOPPED;
	vm->restore_fd = vm->save_fd = -1;
	a->vms[a->nvms++] = vm;
	*ret = vm;
	return 0;
}

/* The definition of name, checked with its files, into def. */
static int load_checked(struct agent *a, const char *name, struct vmdef *def, char *err, size_t errlen)
{
	int r = vmdef_load(a->vm_dir, name, def, err, errlen);
	if (r < 0)
		return r == -ENOENT || r == -EINVAL ? r : -EIO;
	r = vmdef_check_files(def, err, errlen);
	if (r < 0)
		return r == -EINVAL || r == -EOPNOTSUPP ? r : -EIO;
	char path[PATH_MAX];
	run_path(a, name, "qmp", path, sizeof(path));
	if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		snprintf(err, errlen, "the QMP socket %s would be longer than a unix socket path may be", path);
		return -ENAMETOOLONG;
	}
	return 0;
}

int vm_start(struct agent *a, const char *name, const struct vm_start_opts *o, struct vm **ret, char *err,
	     size_t errlen)
{
	static struct vmdef def;  /* large: not on the stack */
	static char cpu[sizeof(((struct vm *)0)->cpu_arg)];
	struct vm *vm = vm_find(a, name);
	if (vm && vm_active(vm)) {
		snprintf(err, errlen, "VM %s runs here already (%s, pid %d)", name, vm_state_str(vm->state),
			 (int)vm->pid);
		return -EEXIST;
	}
	int r = load_checked(a, name, &def, err, errlen);
	if (r == 0)
		r = cpu_for(a, &def, o->cpu_features, cpu, sizeof(cpu), err, errlen);
	if (r == 0)
		r = vm_get(a, name, &vm, err, errlen);
	if (r < 0)
		return r;
	reset_run(vm);
	if (o->restore && (r = open_state(a, vm, err, errlen)) < 0)
		return r;
	memset(&vm->mig, 0, sizeof(vm->mig));
	vm->def = def;
	snprintf(vm->cpu_arg, sizeof(vm->cpu_arg), "%s", cpu);
	vm_disks_from_def(vm);
	vm->incoming = o->incoming;
	vm->incoming_port = o->port;
	r = spawn(a, vm, o->port, err, errlen);
	if (r < 0) {
		if (vm->restore_fd >= 0)
			close(vm->restore_fd);
		vm->restore_fd = -1;
		vm_set_state(vm, VM_FAILED, "%s", err);
		return -EIO;
	}
	if (o->incoming && o->port)
		vm_set_state(vm, VM_INCOMING, "waiting for an incoming live migration on %s:%u", a->address, o->port);
	else if (o->incoming)
		vm_set_state(vm, VM_INCOMING, "waiting for an incoming live migration on %s (QEMU picks the port)",
			     a->address);
	else if (vm->restoring)
		vm_set_state(vm, VM_STARTING, "QEMU started (pid %d), restoring the state saved in %s", (int)vm->pid,
			     vm->state_path);
	else
		vm_set_state(vm, VM_STARTING, "QEMU started (pid %d)", (int)vm->pid);
	*ret = vm;
	return 0;
}

/* ---- stop ------------------------------------------------------------------- */

int vm_stop(struct agent *a, struct vm *vm, unsigned timeout_s, char *msg, size_t msglen)
{
	char err[400];
	if (!vm_active(vm)) {
		snprintf(msg, msglen, "VM %s is %s already", vm->name, vm_state_str(vm->state));
		return 0;
	}
	if (vm->state == VM_MIGRATING) {
		snprintf(msg, msglen, "VM %s is migrating to %s: wait for the end of the migration, or KILL it",
			 vm->name, vm->mig_target);
		return -EBUSY;
	}
	if (vm->state == VM_SAVING) {
		snprintf(msg, msglen, "VM %s is being saved: wait for the end of the save, or KILL it", vm->name);
		return -EBUSY;
	}
	if (vm->state == VM_STOPPING) {
		snprintf(msg, msglen, "VM %s is stopping already", vm->name);
		return 0;
	}
	if (vm->state == VM_STARTING || vm->state == VM_INCOMING) {
		/* No guest runs yet to shut down. */
		ipc_answer(vm, -ECANCELED, vma_error("the VM was stopped before it ran"));
		vm_set_state(vm, VM_STOPPING, "stop asked before the guest ran: powering off");
		vm_send_quit(vm, "stopped before the guest ran");
		snprintf(msg, msglen, "VM %s: powering off (the guest was not running yet)", vm->name);
		return 0;
	}
	int r = vm->qmp && qmp_ready(vm->qmp) ? qmp_call(vm->qmp, "system_powerdown", NULL, VMA_QMP_TIMEOUT_MS, NULL, err, sizeof(err)) :
		-ENOTCONN;
	if (r < 0) {
		qb_log(LOG_WARNING, "VM %s: cannot ask for an ACPI shutdown (%s): powering off", vm->name,
		       r == -ENOTCONN ? "no QMP connection" : err);
		vm_set_state(vm, VM_STOPPING, "stop asked; no ACPI shutdown possible: powering off");
		vm_send_quit(vm, "powered off (QMP quit): the ACPI shutdown could not be asked");
		snprintf(msg, msglen, "VM %s: powering off (the ACPI shutdown could not be asked)", vm->name);
		return 0;
	}
	vm->stop = VM_STOP_POWERDOWN;
	vm->stop_asked = true;
	vm->stop_timeout_s = timeout_s;
	vm->stop_deadline_ns = vma_now_ns() + (uint64_t)timeout_s * 1000 * MS;
	snprintf(vm->stop_how, sizeof(vm->stop_how), "the guest shut down (ACPI)");
	vm_set_state(vm, VM_STOPPING, "ACPI shutdown asked; power off in %u s if the guest does not stop", timeout_s);
	snprintf(msg, msglen, "VM %s: ACPI shutdown asked; powered off in %u s if the guest does not stop", vm->name,
		 timeout_s);
	(void)a;
	return 0;
}

int vm_kill(struct agent *a, struct vm *vm, char *msg, size_t msglen)
{
	if (!vm_active(vm)) {
		snprintf(msg, msglen, "VM %s is %s already", vm->name, vm_state_str(vm->state));
		return 0;
	}
	if (vm->stop == VM_STOP_QUIT || vm->stop == VM_STOP_KILLED) {
		snprintf(msg, msglen, "VM %s is being powered off already", vm->name);
		return 0;
	}
	ipc_answer(vm, -ECANCELED, vma_error(vm->op != VM_OP_NONE ? "the VM was killed before the request ended" :
					     "the VM was killed before it ran"));
	vm->op = vm->op == VM_OP_SAVE ? VM_OP_SAVE : VM_OP_NONE;  /* a save's file is removed at the exit */
	if (vm->state == VM_MIGRATING || vm->state == VM_SAVING) {
		vm->mig_active = false;
		snprintf(vm->mig.status, sizeof(vm->mig.status), "cancelled");
	}
	vm_set_state(vm, VM_STOPPING, "power off asked (KILL)");
	vm_send_quit(vm, "powered off (KILL)");
	snprintf(msg, msglen, "VM %s: powering off", vm->name);
	(void)a;
	return 0;
}

/* ---- the tick and the end of QEMU ------------------------------------------ */

static void exited(struct agent *a, struct vm *vm, int status)
{
	char how[96], tail[400], path[PATH_MAX];
	bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (WIFEXITED(status))
		snprintf(how, sizeof(how), "exited with status %d", WEXITSTATUS(status));
	else
		snprintf(how, sizeof(how), "was killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
	qb_log(clean || vm->stop_asked ? LOG_INFO : LOG_WARNING, "VM %s: QEMU (pid %d) %s", vm->name, (int)vm->pid,
	       how);
	qmp_drop(vm);
	run_path(a, vm->name, "qmp", path, sizeof(path));
	unlink(path);
	run_path(a, vm->name, "pid", path, sizeof(path));
	unlink(path);
	pid_t pid = vm->pid;
	vm->pid = 0;
	log_tail(a, vm, tail, sizeof(tail));

	if (vm->op == VM_OP_SAVE)
		vm_save_abandon(vm);
	if (vm->restore_fd >= 0)
		close(vm->restore_fd);
	vm->restore_fd = -1;
	if (vm->reply_conn) {
		char text[600];
		snprintf(text, sizeof(text), "QEMU (pid %d) %s before %s%s%s", (int)pid, how,
			 vm->op != VM_OP_NONE ? "the request ended" : "the VM ran", tail[0] ? ": " : "", tail);
		ipc_answer(vm, -EIO, vma_error(text));
	}
	vm->op = VM_OP_NONE;
	if (vm->mig_active) {
		vm->mig_active = false;
		snprintf(vm->mig.status, sizeof(vm->mig.status), "failed");
	}
	if (vm->fail_why[0]) {
		vm_set_state(vm, VM_FAILED, "%s", vm->fail_why);
	} else if (vm->mig_completed) {
		vm_set_state(vm, VM_STOPPED, "migrated to %s", vm->mig_target);
	} else if (vm->stop_asked) {
		if (vm->stop == VM_STOP_KILLED || clean)
			vm_set_state(vm, VM_STOPPED, "%s", vm->stop_how);
		else
			vm_set_state(vm, VM_STOPPED, "%s (QEMU %s)", vm->stop_how, how);
	} else if (clean && vm->state != VM_STARTING && vm->state != VM_INCOMING) {
		if (vm->shutdown_seen && vm->shutdown_by_guest)
			vm_set_state(vm, VM_STOPPED, "the guest shut down");
		else if (vm->shutdown_seen)
			vm_set_state(vm, VM_STOPPED, "QEMU quit (%s)", vm->shutdown_reason);
		else
			vm_set_state(vm, VM_STOPPED, "QEMU exited");
	} else {
		vm_set_state(vm, VM_FAILED, "QEMU %s%s%s", how, tail[0] ? ": " : "", tail);
	}
	vm->stop = VM_STOP_NONE;
}

void vm_reap(struct agent *a)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0)
			return;
		vm_lease_forget(pid);
		bool ours = false;
		for (unsigned i = 0; i < a->nvms; i++)
			if (a->vms[i]->pid == pid) {
				exited(a, a->vms[i], status);
				ours = true;
			}
		if (!ours)
			qb_log(LOG_DEBUG, "reaped process %d, not a VM's", (int)pid);
	}
}

/* The time from then to now, 0 when then is later (taken after now). */
static uint64_t since(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}

static void tick_one(struct agent *a, struct vm *vm, uint64_t now)
{
	if (!vm->pid)
		return;
	if (!vm->qmp && vm->stop == VM_STOP_NONE)
		try_connect(a, vm);
	if ((vm->state == VM_STARTING || (vm->state == VM_INCOMING && !vm->incoming_port)) &&
	    since(now, vm->spawned_ns) > VMA_START_TIMEOUT_MS * MS && vm->stop == VM_STOP_NONE) {
		char text[200];
		snprintf(text, sizeof(text), "QEMU (pid %d) did not %s within %d s: killed", (int)vm->pid,
			 vm->state == VM_STARTING ? "run the VM" : "listen for the migration",
			 VMA_START_TIMEOUT_MS / 1000);
		ipc_answer(vm, -ETIMEDOUT, vma_error(text));
		qb_log(LOG_WARNING, "VM %s: %s", vm->name, text);
		kill(vm->pid, SIGKILL);
		vm->stop = VM_STOP_KILLED;
		snprintf(vm->fail_why, sizeof(vm->fail_why), "%s", text);
		vm_set_reason(vm, "%s", text);
	}
	if (vm->qmp && !qmp_alive(vm->qmp))
		qmp_drop(vm);  /* connected again at the next tick, if QEMU is still there */
	if (vm->qmp && !vm->qmp_ready && qmp_ready(vm->qmp))
		qmp_became_ready(vm);
	if (vm->qmp && !vm->qmp_ready && since(now, vm->qmp_opened_ns) > VMA_QMP_TIMEOUT_MS * MS) {
		qb_log(LOG_DEBUG, "VM %s: QEMU did not greet on QMP in %d ms: connecting again", vm->name,
		       VMA_QMP_TIMEOUT_MS);
		qmp_drop(vm);
	}
	if (vm->qmp && vm->qmp_ready) {
		if (!vm->status_waiting && now >= vm->next_status_ns) {
			if (qmp_send(vm->qmp, "query-status", NULL, on_status, vm) == 0)
				vm->status_waiting = true;
			vm->next_status_ns = now + VMA_STATUS_MS * MS;
		}
		if (vm->mig_active && !vm->mig_poll_waiting && now >= vm->next_mig_poll_ns) {
			if (qmp_send(vm->qmp, "query-migrate", NULL, on_migrate_info, vm) == 0)
				vm->mig_poll_waiting = true;
			vm->next_mig_poll_ns = now + VMA_MIGRATE_POLL_MS * MS;
		}
		vm_checkpoint_tick(vm, now);
		vm_disk_tick(vm, now);
		uint64_t late = qmp_oldest_wait_ms(vm->qmp, now);
		if (late >= VMA_QMP_STUCK_MS && !vm->qmp_stuck_logged) {
			vm->qmp_stuck_logged = true;
			qb_log(LOG_WARNING, "VM %s: QEMU (pid %d) has not answered over QMP for %" PRIu64 " s", vm->name,
			       (int)vm->pid, late / 1000);
			vm_set_reason(vm, "QEMU has not answered over QMP for %" PRIu64 " s", late / 1000);
		}
	}
	if (vm->mig_active && !vm->mig_cancel_sent && now >= vm->mig_deadline_ns && vm->qmp) {
		snprintf(vm->mig_cancel_why, sizeof(vm->mig_cancel_why), "it did not complete in %" PRIu64 " s",
			 (uint64_t)((vm->mig_deadline_ns - vm->mig_started_ns) / (1000 * MS)));
		qb_log(LOG_WARNING, "VM %s: the migration to %s %s: cancelling it", vm->name, vm->mig_target,
		       vm->mig_cancel_why);
		if (qmp_send(vm->qmp, "migrate_cancel", NULL, NULL, NULL) == 0)
			vm->mig_cancel_sent = true;
	}
	if (vm->stop == VM_STOP_POWERDOWN && now >= vm->stop_deadline_ns) {
		char how[160];
		qb_log(LOG_NOTICE, "VM %s: the guest did not shut down in %u s: powering off", vm->name,
		       vm->stop_timeout_s);
		snprintf(how, sizeof(how), "powered off (QMP quit): the guest did not shut down in %u s",
			 vm->stop_timeout_s);
		vm_set_reason(vm, "the guest did not shut down in %u s: powering off", vm->stop_timeout_s);
		vm_send_quit(vm, how);
	} else if (vm->stop == VM_STOP_QUIT && now >= vm->stop_deadline_ns) {
		qb_log(LOG_WARNING, "VM %s: QEMU (pid %d) did not quit in %d ms: SIGKILL", vm->name, (int)vm->pid,
		       VMA_QUIT_TIMEOUT_MS);
		kill(vm->pid, SIGKILL);
		vm->stop = VM_STOP_KILLED;
		size_t n = strlen(vm->stop_how);
		snprintf(vm->stop_how + n, sizeof(vm->stop_how) - n, ", by SIGKILL (QEMU did not quit in %d ms)",
			 VMA_QUIT_TIMEOUT_MS);
	}
}

void vm_tick(struct agent *a)
{
	vm_reap(a);
	uint64_t now = vma_now_ns();
	for (unsigned i = 0; i < a->nvms; i++)
		tick_one(a, a->vms[i], now);
}

void vm_stop_all(struct agent *a)
{
	unsigned n = 0;
	for (unsigned i = 0; i < a->nvms; i++) {
		struct vm *vm = a->vms[i];
		if (!vm->pid)
			continue;
		n++;
		ipc_answer(vm, -ECANCELED, vma_error("csv-vmagent stops"));
		vm->mig_active = false;
		if (vm->state != VM_STOPPING)
			vm_set_state(vm, VM_STOPPING, "csv-vmagent stops: powering off");
		if (vm->stop != VM_STOP_KILLED)
			vm_send_quit(vm, "powered off: csv-vmagent stopped");
	}
	if (!n)
		return;
	qb_log(LOG_NOTICE, "powering off %u VM(s) before exiting", n);
	uint64_t until = vma_now_ns() + VMA_QUIT_TIMEOUT_MS * MS;
	for (;;) {
		vm_reap(a);
		bool left = false;
		for (unsigned i = 0; i < a->nvms; i++)
			left |= a->vms[i]->pid != 0;
		if (!left)
			return;
		if (vma_now_ns() >= until)
			break;
		/* Let QEMU read its quit. */
		for (unsigned i = 0; i < a->nvms; i++)
			if (a->vms[i]->qmp && qmp_alive(a->vms[i]->qmp))
				qmp_dispatch(a->vms[i]->qmp);
		usleep(20000);
	}
	for (unsigned i = 0; i < a->nvms; i++) {
		struct vm *vm = a->vms[i];
		if (!vm->pid)
			continue;
		qb_log(LOG_WARNING, "VM %s: QEMU (pid %d) did not quit: SIGKILL", vm->name, (int)vm->pid);
		kill(vm->pid, SIGKILL);
		vm->stop = VM_STOP_KILLED;
		int status;
		if (waitpid(vm->pid, &status, 0) == vm->pid) {
			vm_lease_forget(vm->pid);
			exited(a, vm, status);
		}
	}
}

/* ---- LIST ------------------------------------------------------------------- */

static struct json_object *mb_json(double v)
{
	char s[32];
	snprintf(s, sizeof(s), "%.1f", v);
	return json_object_new_double_s(v, s);
}

struct json_object *vm_json(const struct vm *vm)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(vm->name));
	json_object_object_add(o, "state", json_object_new_string(vm_state_str(vm->state)));
	json_object_object_add(o, "pid", vm->pid ? json_object_new_int64(vm->pid) : NULL);
	json_object_object_add(o, "reason", json_object_new_string(vm->reason));
	struct json_object *m = NULL;
	if (vm->mig.present) {
		m = json_object_new_object();
		json_object_object_add(m, "status", json_object_new_string(vm->mig.status));
		json_object_object_add(m, "total_ms", vm->mig.total_ms >= 0 ? json_object_new_int64(vm->mig.total_ms) :
				       NULL);
		json_object_object_add(m, "downtime_ms", vm->mig.downtime_ms >= 0 ?
				       json_object_new_int64(vm->mig.downtime_ms) : NULL);
		json_object_object_add(m, "transferred_mb", mb_json(vm->mig.transferred_mb));
		json_object_object_add(m, "remaining_mb", mb_json(vm->mig.remaining_mb));
	}
	json_object_object_add(o, "migration", m);
	if (vm_active(vm))
		json_object_object_add(o, "disks", vm_disks_json(vm));
	return o;
}

/* ---- requests going on in QEMU ----------------------------------------------- */

int vm_ready_for(const struct vm *vm, const char *what, char *msg, size_t msglen)
{
	if (vm->state == VM_MIGRATING || vm->state == VM_SAVING) {
		snprintf(msg, msglen, "VM %s cannot %s: it is %s", vm->name, what,
			 vm->state == VM_MIGRATING ? "migrating" : "being saved");
		return -EBUSY;
	}
	if (vm->state != VM_RUNNING && vm->state != VM_PAUSED) {
		snprintf(msg, msglen, "VM %s cannot %s: it is %s here, not running", vm->name, what,
			 vm_state_str(vm->state));
		return -EINVAL;
	}
	if (vm->op != VM_OP_NONE || ipc_waiting(vm)) {
		snprintf(msg, msglen, "VM %s cannot %s: it is busy with another request (%s)", vm->name, what,
			 vm->op == VM_OP_CHECKPOINT ? vm->job_what : vm->op == VM_OP_DISK_REMOVE ? "removing a disk" :
			 "a request");
		return -EBUSY;
	}
	if (!vm->qmp || !qmp_ready(vm->qmp)) {
		snprintf(msg, msglen, "VM %s cannot %s: no QMP connection to its QEMU (pid %d)", vm->name, what,
			 (int)vm->pid);
		return -EIO;
	}
	return 0;
}

void vm_op_done(struct vm *vm, int32_t error, struct json_object *o)
{
	vm->op = VM_OP_NONE;
	ipc_answer(vm, error, o);
}
