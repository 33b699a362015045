/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The local IPC of csv-vmagent (libqb, shared memory), used by csv-rmd and
 * csvctl. A request is a struct qb_ipc_request_header whose id is one of
 * CSVV_REQ_*, followed by a NUL-terminated JSON object; a response is a
 * struct qb_ipc_response_header (id CSVV_RES_*, error 0 or a negative
 * errno) followed by a NUL-terminated JSON text; with an error it carries
 * {"error": "what went wrong, in words"}. See csv-vmagent(8).
 *
 * Anyone may read (LIST); only root or the cluster admin group may change
 * anything (-EPERM otherwise). A VM's name has 1 to 63 letters, digits,
 * '-', '_' and '.', and does not start with '.' (-EINVAL otherwise).
 *
 * A VM's definition is the file VM_DIR/NAME.json on a shared volume (the
 * agent's --vm-dir), so that any node can run it:
 *   {"name": "vm1", "vcpus": 1, "memory_mb": 256,
 *    "kernel": "csv-tiny-guest" (relative to VM_DIR, or absolute),
 *    "append": "tick=100" (optional),
 *    "disks": [{"file": "vm1.qcow2", "format": "raw|qcow2|vpc|vhdx"}] (optional),
 *    "priority": 0 (optional), "preferred_nodes": [1, 2] (optional),
 *    "anti_affinity": {"class": "NAME", "hard": false} (optional),
 *    "restart": {"max": 0..100, "period_s": 1..604800 (default 3600),
 *                "expire_s": 0..604800 (default 0: never)} (optional),
 *    "failback": "never" (default) | "immediate" | "HH-HH" (an hour window,
 *                e.g. "22-06") (optional),
 *    "migration": "live" (default) | "quick" (optional),
 *    "operators": ["unix group", ...] (at most 8) (optional),
 *    "cpu_compat": false (optional),
 *    "nics": [{"mac": "52:54:00:12:34:56"}] (at most 8) (optional)}
 * anti_affinity, restart, failback, migration and operators are for the
 * resource manager: the agent only checks them. cpu_compat limits the
 * guest's CPU to the "cpu_features" of START or INCOMING; each of "nics"
 * is a virtio-net-pci on QEMU's user-mode network with restrict=on (no
 * packet leaves the VM). Every VM has a virtio-scsi controller "scsi0";
 * disk I of the definition is "diskI" at SCSI target I. */
#pragma once

#define CSVV_IPC_DEFAULT_NAME "csv-vmagent"
#define CSVV_IPC_MAX_MSG (1024 * 1024)

enum {
	/* {} -> {"node_id": N, "vm_dir": "...", "accel": "kvm"|"tcg",
	 * "vms": [VM...]} where VM is
	 * {"name", "state": "starting"|"running"|"paused"|"incoming"|
	 *  "migrating"|"saving"|"stopping"|"stopped"|"failed", "pid": N|null,
	 *  "reason": "...", "migration": {"status", "total_ms", "downtime_ms",
	 *  "transferred_mb", "remaining_mb"}|null,
	 *  "disks": [{"id": "diskN", "file", "format"}] (while QEMU runs)}
	 * for every VM this agent runs or ran since its start ("migration":
	 * the last migration (or save) from this node; its times null while
	 * QEMU does not give them). The top level also has "cpu": {"vendor",
	 * "model", "flags": "sorted, space separated"}|null, this node's CPU
	 * as /proc/cpuinfo names it. */
	CSVV_REQ_LIST = 1,
	/* {"name", "restore": false, "cpu_features": "flag flag ..." (optional)}
	 * -> {"message"}: starts the VM from its definition ("restore": true:
	 * from its state in VM_DIR/NAME.state, which SAVE wrote and which is
	 * removed once the VM runs; -ENOENT when there is none); answered
	 * once QEMU runs it (at most 20 s). -ENOENT: no definition; -EINVAL: a
	 * bad definition, a missing kernel or disk (the error names the
	 * field); -EOPNOTSUPP: a disk's filesystem refuses O_DIRECT (cache=
	 * none); -EEXIST: it runs here already; -ENOLCK: this node holds no
	 * valid lease (an agent run with --quorumd); -EIO: QEMU exited before the
	 * VM ran (the error says why, e.g. a disk locked by another QEMU);
	 * -ETIMEDOUT: it did not run in time; -ECANCELED: stopped first.
	 * "cpu_features" (the CPU flags common to the cluster, as
	 * /proc/cpuinfo names them) limits the guest's CPU when the definition
	 * has cpu_compat (-EOPNOTSUPP when this node cannot). */
	CSVV_REQ_START = 2,
	/* {"name", "timeout_s": N (default 30)} -> {"message"}: ACPI shutdown,
	 * then power off after the timeout. Returns at once; LIST follows.
	 * -ENOENT: a VM this agent has not run; -EBUSY: it is migrating. */
	CSVV_REQ_STOP = 3,
	/* {"name"} -> {"message"}: power off at once (QMP quit, then SIGKILL). */
	CSVV_REQ_KILL = 4,
	/* {"name", "port": N, "cpu_features" (as START)} -> {"message",
	 * "port": N}: starts the VM waiting
	 * for an incoming live migration on TCP ADDRESS:PORT (the agent's
	 * --address; port 0 or none: QEMU picks one); answered once QEMU
	 * listens, with START's errors. */
	CSVV_REQ_INCOMING = 5,
	/* {"name", "host", "port", "downtime_ms": N (default 50),
	 *  "timeout_s": N (default 120)} -> {"message"}: live-migrates the
	 * running VM to an incoming VM at HOST:PORT with auto-converge and the
	 * downtime limit; a migration that has not completed in timeout_s is
	 * cancelled and the VM keeps running here. Returns at once; LIST shows
	 * the progress, then "stopped" (migrated) or "running" (failed, with
	 * the reason). -EINVAL: the VM does not run here; -EBUSY: it is
	 * migrating already; -EIO: QEMU refused to migrate. */
	CSVV_REQ_MIGRATE = 6,
	/* {"definition": {...}, "replace": false} -> {"message", "name"}:
	 * checks the definition (its fields, then its kernel and disks as
	 * START does) and writes VM_DIR/NAME.json atomically (a temporary
	 * file, fsync, rename, fsync of VM_DIR). -EINVAL: a bad definition
	 * (the error names the field); -EOPNOTSUPP: a disk refuses O_DIRECT;
	 * -EEXIST: defined already and "replace" is not true. */
	CSVV_REQ_DEFINE = 7,
	/* {"name"} -> {"message"}: removes VM_DIR/NAME.json and NAME.state.
	 * -EBUSY: the VM is active on this node; -ENOENT: no definition. */
	CSVV_REQ_UNDEFINE = 8,
	/* {"name", "timeout_s": N (default 120)} -> {"message"}: quick
	 * migration, first half: pauses the running VM and saves its state to
	 * VM_DIR/NAME.state (through a temporary file, renamed once complete),
	 * then powers it off. Returns at once; LIST shows "saving", then
	 * "stopped" ("saved to FILE"); a save that fails or takes longer than
	 * timeout_s leaves the VM "running", the reason saying why, and no
	 * file. START with "restore" is the second half. -EINVAL: the VM does
	 * not run here; -EBUSY: it is migrating, saving or busy. */
	CSVV_REQ_SAVE = 9,
	/* {"name", "file" (relative to VM_DIR, or absolute), "format": "raw"|
	 *  "qcow2"|"vpc"|"vhdx"} -> {"message", "id": "diskN"}: attaches the
	 * disk to the running VM (blockdev-add with cache=none, device_add
	 * scsi-hd on scsi0 at target N) and adds it to the definition; a step
	 * that fails undoes the earlier ones and the error names it. -EINVAL:
	 * the VM does not run here, a bad field, a missing file; -EOPNOTSUPP:
	 * the file refuses O_DIRECT; -EEXIST: attached already; -ENOSPC: 16
	 * disks already; -EIO: QEMU refused (its words). */
	CSVV_REQ_DISK_ADD = 10,
	/* {"name", "id": "diskN" or "file"} -> {"message"}: detaches the disk
	 * (device_del, DEVICE_DELETED waited for up to 10 s, blockdev-del) and
	 * removes it from the definition; answered then. -ENOENT: no such
	 * disk attached; -ETIMEDOUT: QEMU did not say it is out; -EINVAL,
	 * -EBUSY, -EIO as DISK_ADD. */
	CSVV_REQ_DISK_REMOVE = 11,
	/* {"name", "op": "take"|"list"|"apply"|"delete", "checkpoint": "CP"
	 *  (not for list)} -> take, apply, delete: {"message"}, answered once
	 * QEMU's job (snapshot-save, -load, -delete) has ended (at most
	 * 120 s, then -ETIMEDOUT); list: {"checkpoints": [{"name", "date":
	 * "2024-05-01T12:00:00Z", "vm_state_mb"}]}. A checkpoint is an internal
	 * snapshot of every qcow2 disk, with the VM's state in the first one;
	 * other disks are left out. apply makes the running guest go on from
	 * the checkpoint. -EOPNOTSUPP: the VM has no qcow2 disk; -EEXIST:
	 * take of a name there is; -ENOENT: apply or delete of one there is
	 * not; -EINVAL: the VM does not run here, a bad field; -EBUSY: busy. */
	CSVV_REQ_CHECKPOINT = 12,
};

enum {
	CSVV_RES_LIST = 1,
	CSVV_RES_START = 2,
	CSVV_RES_STOP = 3,
	CSVV_RES_KILL = 4,
	CSVV_RES_INCOMING = 5,
	CSVV_RES_MIGRATE = 6,
	CSVV_RES_DEFINE = 7,
	CSVV_RES_UNDEFINE = 8,
	CSVV_RES_SAVE = 9,
	CSVV_RES_DISK_ADD = 10,
	CSVV_RES_DISK_REMOVE = 11,
	CSVV_RES_CHECKPOINT = 12,
};
