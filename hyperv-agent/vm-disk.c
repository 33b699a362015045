/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Hot add and removal of disks on the VM's virtio-scsi controller scsi0.
 * Disk diskN sits at SCSI target N; the disks of the definition are
 * disk0, disk1, ... (QEMU's -drive), a disk added is the next target
 * (blockdev-add of its format node diskN-node over its file node
 * diskN-file, cache=none, then device_add scsi-hd id=diskN). Each change is
 * written to the definition as well, so that the next start, an incoming
 * migration or a restore have the same disks at the same targets. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <qb/qblog.h>

#include "vmagent.h"
#include "vmstore.h"

#define MS (1000000ull)

void vm_disks_from_def(struct vm *vm)
{
	vm->ndisks = vm->def.ndisks;
	for (unsigned i = 0; i < vm->def.ndisks; i++) {
		struct vm_disk *d = &vm->disks[i];
		memset(d, 0, sizeof(*d));
		snprintf(d->id, sizeof(d->id), "disk%u", i);
		snprintf(d->node, sizeof(d->node), "disk%u-node", i);
		memcpy(d->file, vm->def.disks[i].file, sizeof(d->file));
		memcpy(d->format, vm->def.disks[i].format, sizeof(d->format));
	}
}

struct json_object *vm_disks_json(const struct vm *vm)
{
	struct json_object *a = json_object_new_array();
	for (unsigned i = 0; i < vm->ndisks; i++) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "id", json_object_new_string(vm->disks[i].id));
		json_object_object_add(o, "file", json_object_new_string(vm->disks[i].file));
		json_object_object_add(o, "format", json_object_new_string(vm->disks[i].format));
		json_object_array_add(a, o);
	}
	return a;
}

/* The attached disk with id, or with the absolute file; NULL. */
static struct vm_disk *find_disk(struct vm *vm, const char *id, const char *file)
{
	for (unsigned i = 0; i < vm->ndisks; i++)
		if ((id && strcmp(vm->disks[i].id, id) == 0) || (file && strcmp(vm->disks[i].file, file) == 0))
			return &vm->disks[i];
	return NULL;
}

/* The SCSI target of the next disk: after the definition's disks when
 * the running VM matches it, else the lowest free one. */
static unsigned next_target(struct vm *vm)
{
	for (unsigned n = vm->layout_differs ? 0 : vm->ndisks;; n++) {
		char id[16];
		snprintf(id, sizeof(id), "disk%u", n);
		if (!find_disk(vm, id, NULL))
			return n;
	}
}

/* Rewrites the definition of vm with the disk file (as the user wrote it,
 * resolved abs) added (format) or removed (format NULL); checked as a
 * definition before it is written. */
static int update_def(struct agent *a, struct vm *vm, const char *file, const char *abs, const char *format,
		      char *err, size_t errlen)
{
	static struct vmdef check;  /* large: not on the stack */
	struct json_object *o, *disks;
	char why[512];
	int r = vmdef_read_json(a->vm_dir, vm->name, &o, why, sizeof(why));
	if (r < 0) {
		snprintf(err, errlen, "updating the definition failed, reading it: %s", why);
		return r;
	}
	if (!json_object_object_get_ex(o, "disks", &disks) || !json_object_is_type(disks, json_type_array)) {
		disks = json_object_new_array();
		json_object_object_add(o, "disks", disks);
	}
	if (format) {
		struct json_object *d = json_object_new_object();
		json_object_object_add(d, "file", json_object_new_string(file));
		json_object_object_add(d, "format", json_object_new_string(format));
		json_object_array_add(disks, d);
	}
	for (size_t i = json_object_array_length(disks); !format && i-- > 0;) {
		char path[PATH_MAX];
		const char *f = vma_json_str(json_object_array_get_idx(disks, i), "file");
		if (f && vmdef_resolve(a->vm_dir, f, path, sizeof(path)) == 0 && strcmp(path, abs) == 0)
			json_object_array_del_idx(disks, i, 1);
	}
	r = vmdef_from_json(o, a->vm_dir, vm->name, &check, why, sizeof(why));
	if (r == 0)
		r = vmstore_write(a->vm_dir, vm->name, o, true, why, sizeof(why));
	json_object_put(o);
	if (r < 0)
		snprintf(err, errlen, "updating the definition failed: %s", why);
	return r;
}

/* blockdev-add of file as the nodes of disk d. */
static int blockdev_add(struct vm *vm, const struct vm_disk *d, char *err, size_t errlen)
{
	struct stat st;
	struct json_object *args = json_object_new_object(), *file = json_object_new_object(),
			   *cache = json_object_new_object(), *fcache = json_object_new_object();
	char fnode[32];
	snprintf(fnode, sizeof(fnode), "%s-file", d->id);
	bool blk = stat(d->file, &st) == 0 && S_ISBLK(st.st_mode);
	json_object_object_add(file, "driver", json_object_new_string(blk ? "host_device" : "file"));
	json_object_object_add(file, "filename", json_object_new_string(d->file));
	json_object_object_add(file, "node-name", json_object_new_string(fnode));
	json_object_object_add(file, "aio", json_object_new_string("threads"));
	json_object_object_add(fcache, "direct", json_object_new_boolean(true));
	json_object_object_add(file, "cache", fcache);
	json_object_object_add(cache, "direct", json_object_new_boolean(true));
	json_object_object_add(args, "driver", json_object_new_string(d->format));
	json_object_object_add(args, "node-name", json_object_new_string(d->node));
	json_object_object_add(args, "cache", cache);
	json_object_object_add(args, "file", file);
	return qmp_call(vm->qmp, "blockdev-add", args, VMA_QMP_TIMEOUT_MS, NULL, err, errlen);
}

/* device_add of the scsi-hd of disk d at SCSI target n. */
static int device_add(struct vm *vm, const struct vm_disk *d, unsigned n, char *err, size_t errlen)
{
	struct json_object *args = json_object_new_object();
	json_object_object_add(args, "driver", json_object_new_string("scsi-hd"));
	json_object_object_add(args, "drive", json_object_new_string(d->node));
	json_object_object_add(args, "id", json_object_new_string(d->id));
	json_object_object_add(args, "bus", json_object_new_string("scsi0.0"));
	json_object_object_add(args, "channel", json_object_new_int(0));
	json_object_object_add(args, "scsi-id", json_object_new_int((int)n));
	json_object_object_add(args, "lun", json_object_new_int(0));
	return qmp_call(vm->qmp, "device_add", args, VMA_QMP_TIMEOUT_MS, NULL, err, errlen);
}

/* blockdev-del of node; a node still in use (its device going away) is
 * tried again for up to a second. */
static int blockdev_del(struct vm *vm, const char *node, char *err, size_t errlen)
{
	int r = -EIO;
	for (unsigned i = 0; i < 20 && r == -EIO; i++) {
		struct json_object *args = json_object_new_object();
		json_object_object_add(args, "node-name", json_object_new_string(node));
		r = qmp_call(vm->qmp, "blockdev-del", args, VMA_QMP_TIMEOUT_MS, NULL, err, errlen);
		if (r == -EIO && strstr(err, "Failed to find node"))
			return 0;  /* gone with its device */
		if (r == -EIO)
			usleep(50000);
	}
	return r;
}

/* device_del of id: 0 once QEMU has taken the request. */
static int device_del(struct vm *vm, const char *id, char *err, size_t errlen)
{
	struct json_object *args = json_object_new_object();
	json_object_object_add(args, "id", json_object_new_string(id));
	return qmp_call(vm->qmp, "device_del", args, VMA_QMP_TIMEOUT_MS, NULL, err, errlen);
}

/* Checks a DISK_ADD: the VM, the format, the file; d filled. */
static int check_add(struct agent *a, struct vm *vm, const char *file, const char *format, struct vm_disk *d,
		     char *msg, size_t msglen)
{
	char err[600];
	int r = vm_ready_for(vm, "have a disk added", msg, msglen);
	if (r < 0)
		return r;
	if (!vmdef_format_ok(format)) {
		snprintf(msg, msglen, "\"format\" must be raw, qcow2, vpc or vhdx, not \"%s\"", format);
		return -EINVAL;
	}
	memset(d, 0, sizeof(*d));
	if (vmdef_resolve(a->vm_dir, file, d->file, sizeof(d->file)) < 0) {
		snprintf(msg, msglen, "\"file\": the path is too long");
		return -EINVAL;
	}
	if (find_disk(vm, NULL, d->file)) {
		snprintf(msg, msglen, "VM %s has %s attached already, as %s", vm->name, d->file,
			 find_disk(vm, NULL, d->file)->id);
		return -EEXIST;
	}
	if (vm->ndisks >= VMDEF_MAX_DISKS) {
		snprintf(msg, msglen, "VM %s has %d disks already, the most it may have", vm->name, VMDEF_MAX_DISKS);
		return -ENOSPC;
	}
	r = vmdef_check_disk(d->file, "file", err, sizeof(err));
	if (r < 0) {
		snprintf(msg, msglen, "VM %s: %s", vm->name, err);
		return r == -EINVAL || r == -EOPNOTSUPP ? r : -EIO;
	}
	snprintf(d->format, sizeof(d->format), "%s", format);
	return 0;
}

/* Takes the disk just attached away again after a later step failed;
 * says how in msg after what is there. */
static void roll_back(struct vm *vm, const struct vm_disk *d, bool device, char *msg, size_t msglen)
{
	char err[400];
	size_t n = strlen(msg);
	int r = device ? device_del(vm, d->id, err, sizeof(err)) : 0;
	if (r == 0)
		r = blockdev_del(vm, d->node, err, sizeof(err));
	if (r == 0)
		snprintf(msg + n, msglen - n, "; the disk was detached again");
	else
		snprintf(msg + n, msglen - n, "; detaching the disk again failed too: %s", err);
	qb_log(LOG_WARNING, "%s", msg);
}

int vm_disk_add(struct agent *a, struct vm *vm, const char *file, const char *format, char *id, size_t idlen,
		char *msg, size_t msglen)
{
	struct vm_disk d;
	char err[600];
	int r = check_add(a, vm, file, format, &d, msg, msglen);
	if (r < 0)
		return r;
	unsigned n = next_target(vm);
	snprintf(d.id, sizeof(d.id), "disk%u", n);
	snprintf(d.node, sizeof(d.node), "disk%u-node", n);
	d.hot = true;
	r = blockdev_add(vm, &d, err, sizeof(err));
	if (r < 0) {
		snprintf(msg, msglen, "VM %s: adding %s failed at blockdev-add: %s", vm->name, d.file, err);
		return -EIO;
	}
	r = device_add(vm, &d, n, err, sizeof(err));
	if (r < 0) {
		snprintf(msg, msglen, "VM %s: adding %s failed at device_add: %s", vm->name, d.file, err);
		roll_back(vm, &d, false, msg, msglen);
		return -EIO;
	}
	r = update_def(a, vm, file, d.file, format, err, sizeof(err));
	if (r < 0) {
		snprintf(msg, msglen, "VM %s: %s attached as %s, but %s", vm->name, d.file, d.id, err);
		roll_back(vm, &d, true, msg, msglen);
		return r == -ENOENT || r == -EINVAL ? r : -EIO;
	}
	vm->disks[vm->ndisks++] = d;
	snprintf(id, idlen, "%s", d.id);
	snprintf(msg, msglen, "VM %s: %s (%s) added as %s at SCSI target %u, and to its definition", vm->name, d.file,
		 format, d.id, n);
	qb_log(LOG_NOTICE, "%s", msg);
	return 0;
}

int vm_disk_remove(struct agent *a, struct vm *vm, const char *id, const char *file, char *msg, size_t msglen)
{
	char abs[PATH_MAX], err[400];
	int r = vm_ready_for(vm, "have a disk removed", msg, msglen);
	if (r < 0)
		return r;
	if (file && vmdef_resolve(a->vm_dir, file, abs, sizeof(abs)) < 0) {
		snprintf(msg, msglen, "\"file\": the path is too long");
		return -EINVAL;
	}
	struct vm_disk *d = find_disk(vm, id, file ? abs : NULL);
	if (!d) {
		snprintf(msg, msglen, "VM %s has no disk %s attached", vm->name, id ? id : abs);
		return -ENOENT;
	}
	r = device_del(vm, d->id, err, sizeof(err));
	if (r < 0) {
		snprintf(msg, msglen, "VM %s: removing %s (%s) failed at device_del: %s", vm->name, d->id, d->file, err);
		return -EIO;
	}
	snprintf(vm->unplug_id, sizeof(vm->unplug_id), "%s", d->id);
	vm->unplug_seen = false;
	vm->op = VM_OP_DISK_REMOVE;
	vm->op_deadline_ns = vma_now_ns() + VMA_UNPLUG_TIMEOUT_MS * MS;
	return 0;
}

void vm_disk_deleted(struct vm *vm, const char *id)
{
	/* Called from QMP's dispatch, where no command may be waited for:
	 * the rest is done at the next tick. */
	if (vm->op == VM_OP_DISK_REMOVE && strcmp(vm->unplug_id, id) == 0)
		vm->unplug_seen = true;
}

/* The disk is out of the guest: its nodes go, then its definition entry. */
static void finish_remove(struct vm *vm)
{
	char err[600], msg[PATH_MAX + 1400];
	struct vm_disk *d = find_disk(vm, vm->unplug_id, NULL);
	if (!d) {
		vm_op_done(vm, -ENOENT, vma_error("the disk being removed is not known any more"));
		return;
	}
	struct vm_disk gone = *d;
	unsigned i = (unsigned)(d - vm->disks);
	if (i + 1 < vm->ndisks)
		vm->layout_differs = true;
	memmove(d, d + 1, (vm->ndisks - i - 1) * sizeof(*d));
	vm->ndisks--;
	/* A disk of the definition (-drive) goes with its device. */
	int r = gone.hot ? blockdev_del(vm, gone.node, err, sizeof(err)) : 0;
	if (r < 0) {
		snprintf(msg, sizeof(msg), "VM %s: %s is out of the guest, but blockdev-del failed: %s", vm->name, gone.id,
			 err);
		vm_op_done(vm, -EIO, vma_error(msg));
		return;
	}
	r = update_def(vm->agent, vm, gone.file, gone.file, NULL, err, sizeof(err));
	if (r < 0) {
		snprintf(msg, sizeof(msg), "VM %s: %s (%s) is detached, but %s", vm->name, gone.id, gone.file, err);
		vm_op_done(vm, r == -ENOENT || r == -EINVAL ? r : -EIO, vma_error(msg));
		return;
	}
	qb_log(LOG_NOTICE, "VM %s: disk %s (%s) removed, and from its definition", vm->name, gone.id, gone.file);
	vm_op_done(vm, 0, vma_message("VM %s: disk %s (%s) removed, and from its definition", vm->name, gone.id,
				      gone.file));
}

void vm_disk_tick(struct vm *vm, uint64_t now)
{
	if (vm->op == VM_OP_DISK_REMOVE && vm->unplug_seen) {
		finish_remove(vm);
		return;
	}
	if (vm->op != VM_OP_DISK_REMOVE || now < vm->op_deadline_ns)
		return;
	char msg[300];
	snprintf(msg, sizeof(msg), "VM %s: QEMU did not say that disk %s is out of the guest (DEVICE_DELETED) within "
		 "%d s; it may still be attached", vm->name, vm->unplug_id, VMA_UNPLUG_TIMEOUT_MS / 1000);
	qb_log(LOG_WARNING, "%s", msg);
	vm_op_done(vm, -ETIMEDOUT, vma_error(msg));
}
