/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The local IPC of csv-rmd (libqb, shared memory), used by csvctl and the
 * csvfs clients of the node. A request is a struct qb_ipc_request_header
 * whose id is one of CSVR_REQ_*, followed by a NUL-terminated JSON text
 * (an empty object where a request takes nothing); a response is a
 * struct qb_ipc_response_header (id CSVR_RES_*, error 0 or a negative
 * errno) followed by a NUL-terminated JSON text. A response with an error
 * carries {"error": "what went wrong, in words"}. See csv-rmd(8).
 *
 * Anyone may read (STATE, LOCATE); only root or the cluster admin group
 * may change anything (-EPERM otherwise), except that the members of a
 * VM's operator groups (its definition's "operators") may start, stop,
 * migrate and checkpoint that VM. A csvfs client runs as root and reports
 * its access with LOCATE.
 *
 * VM requests name the VM by "vm"; a node is named by its id ("to",
 * "node"). Those that change the state return at once, once the change is
 * sent to the group (-EAGAIN when this node is not quorate, -EIO when the
 * group cannot be reached); csvctl follows the state to show the
 * progress. A caller who may not make a request gets -EPERM, also for a
 * VM or a request that does not exist. */
#pragma once

#define CSVR_IPC_DEFAULT_NAME "csv-rmd"
#define CSVR_IPC_MAX_MSG (1024 * 1024)

enum {
	/* {} -> the replicated state as this node knows it:
	 * {"version": 1, "node_id": N, "leader": N|null, "quorate": bool,
	 *  "state_version": N,
	 *  "nodes": [{"id": N, "name": "...", "address": "..."|null,
	 *             "member": bool (csv-rmd of the node is in the group),
	 *             "quorate": bool, "fence": "none"|"pending"|"fenced",
	 *             "admin": "active"|"draining"|"paused",
	 *             "roles": ["VOLUME", ...]}],
	 *  "volumes": [{"name": "...", "uuid": "..."|null, "port": N,
	 *               "holder": N|null, "phase": PHASE, "reason": "...",
	 *               "epoch": N (of the last coordinator start; 0 none),
	 *               "coordinator": "HOST:PORT"|null (while running),
	 *               "redirect": bool (file-system redirected mode),
	 *               "moves": N,
	 *               "nodes": [{"id": N, "san": "ok"|"lost"|"unknown",
	 *                          "access": ACCESS, "reason": "..."}]}],
	 *  "vms": [VM...],
	 *  "client": {"uid": N, "gid": N, "may_change": bool}}
	 * A node also has "vm_memory_mb" (what VMs may use on it),
	 * "vm_memory_used_mb", "cpus" and "vms": ["NAME", ...] (the VMs that
	 * have a QEMU there: running, starting, stopping, waiting for its
	 * fence, or migrating from or to it).
	 * VM: {"name", "want": "running"|"stopped", "phase": VMPHASE,
	 *      "node": N|null (where it runs, starts, stops or migrates from),
	 *      "target": N|null (where it migrates to, or is asked to move),
	 *      "migration": "live"|"quick"|null (while migrating),
	 *      "reason": "...", "priority": N, "memory_mb": N, "vcpus": N,
	 *      "preferred_nodes": [N...], "anti_affinity": "CLASS"|null,
	 *      "anti_affinity_hard": bool, "failback": "never"|"immediate"|"HH-HH",
	 *      "restart": {"max": N, "period_s": N, "expire_s": N},
	 *      "failures": [{"node": N, "time": UNIX_MS}...] (the last ones;
	 *                   expired ones go when the next is added),
	 *      "operators": ["GROUP"...], "return_to": N|null (drained from),
	 *      "starts": N, "migrations": N,
	 *      "last_migration": {"from", "to", "kind", "result", "total_ms",
	 *                         "downtime_ms"}|null,
	 *      "progress": {"status", "sent_mb", "left_mb", "elapsed_ms"}|null
	 *                  (a live migration under way, as its source said it
	 *                  within the last second; QEMU's status and figures),
	 *      "default_migration": "live"|"quick", "cpu_compat": bool,
	 *      and the fields of its saved form (csv-rmd(8), FILES): "quick",
	 *      "force", "port", "saved", "live_failed", "mig_start_ms", "gen"}
	 * VMPHASE: "stopped" (it runs nowhere; with want "running", reason says
	 * why it is not placed), "starting", "running", "stopping",
	 * "migrating", "waiting-fence" (its node was lost: it may not start
	 * elsewhere until that node is fenced).
	 * PHASE: "running" (the holder serves), "starting" (the holder was
	 * told to start), "stopping" (the holder was told to stop, for a move),
	 * "waiting-fence" (the holder was lost: waiting until it is fenced),
	 * "unplaced" (no node may hold it now; reason says why).
	 * ACCESS (as the node's csvfs client reports it): "direct",
	 * "block-redirected", "fs-redirected", "paused", or "unavailable"
	 * (no csvfs client reports, or the node is not a member). */
	CSVR_REQ_STATE = 1,
	/* {"volume": NAME|UUID, "access": ACCESS, "reason": "..."} (access and
	 * reason are optional: a csvfs client reports its own every time it
	 * asks) -> {"volume": NAME, "uuid": "...", "node": N,
	 * "host": "...", "port": N, "epoch": N, "redirect": bool}.
	 * -ENOENT: no such volume; -EAGAIN: no coordinator serves it right now
	 * (the response still carries "volume", "redirect" and "error"). */
	CSVR_REQ_LOCATE = 2,
	/* {"volume": NAME|UUID, "to": N} -> {"message": "..."}: the
	 * coordinator role moves to node N (stopped on its holder, then started
	 * on N with a new epoch). Returns at once; csvctl follows the state.
	 * -ENOENT: no such volume or node; -EINVAL: node N cannot hold it now
	 * (the error says why); -EAGAIN: this node is not quorate. */
	CSVR_REQ_MOVE = 3,
	/* {"volume": NAME|UUID, "on": bool} -> {"message": "..."}: file-system
	 * redirected mode of the volume on or off, on every node. */
	CSVR_REQ_REDIRECT = 4,
	/* {"definition": {...} (lib/vmagent-ipc.h), "start": bool} ->
	 * {"message"}: the local csv-vmagent checks the definition and writes
	 * it on the shared volume, then the VM joins the state (stopped, or
	 * started when "start"). An existing definition file of that name
	 * that the state does not know is replaced. Admin only. -EEXIST: a VM
	 * of that name; -EINVAL: a bad definition (the error names the
	 * field); -ENOSPC: the state holds its most VMs; csv-vmagent's errors
	 * (lib/vmagent-ipc.h, DEFINE). */
	CSVR_REQ_VM_CREATE = 5,
	/* {"vm"} -> {"message"}: a stopped VM leaves the state and its
	 * definition is removed. Admin only. -EBUSY: it is not stopped, or it
	 * is wanted running. */
	CSVR_REQ_VM_REMOVE = 6,
	/* {"vm", "to": N (optional)} -> {"message"}: the VM should run (on
	 * node N when given). -ENOENT: no such VM or node; -EINVAL: it runs
	 * on another node than N (VM_MIGRATE moves it), or node N cannot take
	 * it (the error says why). */
	CSVR_REQ_VM_START = 7,
	/* {"vm", "force": bool} -> {"message"}: the VM should be stopped
	 * (ACPI shutdown, power off after its timeout; at once with force). */
	CSVR_REQ_VM_STOP = 8,
	/* {"vm", "to": N, "kind": "live"|"quick" (default: the VM's
	 * "migration")} -> {"message"}: migrates the running VM to node N.
	 * -EINVAL: it does not run, it runs on N already, "kind" is neither,
	 * or node N cannot take it (the error says why: not a member, no
	 * csv-rmd, fenced, draining or paused, memory, anti-affinity, the
	 * restart policy, a CPU feature). */
	CSVR_REQ_VM_MIGRATE = 9,
	/* {"node": N} -> {"message"}: maintenance: the node's VMs migrate away
	 * in priority order (live, quick where live is not possible), its
	 * coordinator roles move, then it is paused. Admin only. Idempotent. */
	CSVR_REQ_NODE_DRAIN = 10,
	/* {"node": N, "failback": bool} -> {"message"}: the node is active
	 * again; with failback the VMs drained from it migrate back. Admin
	 * only. Idempotent. */
	CSVR_REQ_NODE_RESUME = 11,
	/* {"vm", "op": "add"|"remove", "file", "format", "id"} -> csv-vmagent's
	 * answer on the node that runs the VM (DISK_ADD, DISK_REMOVE). Admin
	 * only. -EINVAL: the VM does not run, or "op" is neither; -EREMOTE: it
	 * runs on another node (the error names it: ask csv-rmd there). */
	CSVR_REQ_VM_DISK = 12,
	/* {"vm", "op": "take"|"list"|"apply"|"delete", "checkpoint": NAME} ->
	 * csv-vmagent's answer on the node that runs the VM (CHECKPOINT), with
	 * VM_DISK's errors. */
	CSVR_REQ_VM_CHECKPOINT = 13,
};

enum {
	CSVR_RES_STATE = 1,
	CSVR_RES_LOCATE = 2,
	CSVR_RES_MOVE = 3,
	CSVR_RES_REDIRECT = 4,
	CSVR_RES_VM_CREATE = 5,
	CSVR_RES_VM_REMOVE = 6,
	CSVR_RES_VM_START = 7,
	CSVR_RES_VM_STOP = 8,
	CSVR_RES_VM_MIGRATE = 9,
	CSVR_RES_NODE_DRAIN = 10,
	CSVR_RES_NODE_RESUME = 11,
	CSVR_RES_VM_DISK = 12,
	CSVR_RES_VM_CHECKPOINT = 13,
};
