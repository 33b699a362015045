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
 *    "priority": 0 (optional), "preferred_nodes": [1, 2] (optional)} */
#pragma once

#define CSVV_IPC_DEFAULT_NAME "csv-vmagent"
#define CSVV_IPC_MAX_MSG (1024 * 1024)

enum {
	/* {} -> {"node_id": N, "vm_dir": "...", "accel": "kvm"|"tcg",
	 * "vms": [VM...]} where VM is
	 * {"name", "state": "starting"|"running"|"paused"|"incoming"|
	 *  "migrating"|"stopping"|"stopped"|"failed", "pid": N|null,
	 *  "reason": "...", "migration": {"status", "total_ms", "downtime_ms",
	 *  "transferred_mb", "remaining_mb"}|null} for every VM this agent
	 * runs or ran since its start ("migration": the last migration from
	 * this node; its times null while QEMU does not give them). */
	CSVV_REQ_LIST = 1,
	/* {"name"} -> {"message"}: starts the VM from its definition; answered
	 * once QEMU runs it (at most 20 s). -ENOENT: no definition; -EINVAL: a
	 * bad definition, a missing kernel or disk (the error names the
	 * field); -EOPNOTSUPP: a disk's filesystem refuses O_DIRECT (cache=
	 * none); -EEXIST: it runs here already; -EIO: QEMU exited before the
	 * VM ran (the error says why, e.g. a disk locked by another QEMU);
	 * -ETIMEDOUT: it did not run in time; -ECANCELED: stopped first. */
	CSVV_REQ_START = 2,
	/* {"name", "timeout_s": N (default 30)} -> {"message"}: ACPI shutdown,
	 * then power off after the timeout. Returns at once; LIST follows.
	 * -ENOENT: a VM this agent has not run; -EBUSY: it is migrating. */
	CSVV_REQ_STOP = 3,
	/* {"name"} -> {"message"}: power off at once (QMP quit, then SIGKILL). */
	CSVV_REQ_KILL = 4,
	/* {"name", "port": N} -> {"message", "port": N}: starts the VM waiting
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
};

enum {
	CSVV_RES_LIST = 1,
	CSVV_RES_START = 2,
	CSVV_RES_STOP = 3,
	CSVV_RES_KILL = 4,
	CSVV_RES_INCOMING = 5,
	CSVV_RES_MIGRATE = 6,
};
