/* SPDX-License-Identifier: GPL-2.0-or-later */
/* csv-vmagent: the daemon's parts and what they share. main.c runs the
 * loop and its tick; vm.c runs the VMs (QEMU processes driven over QMP,
 * qmp.c) and follows them; vm-save.c saves and restores them (quick
 * migration), vm-disk.c adds and removes their disks, vm-checkpoint.c
 * takes and applies their checkpoints; vmdef.c reads their definitions and
 * vmstore.c writes them; cpu.c limits their CPUs; vm-lease.c kills them
 * when the node loses its lease; ipc.c serves the requests of
 * lib/vmagent-ipc.h. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>
#include <qb/qbipcs.h>
#include <qb/qbloop.h>

#include "cpu.h"
#include "util.h"
#include "qmp.h"
#include "vmdef.h"

#define VMA_TICK_MS 100           /* the loop's tick: deadlines, starts */
#define VMA_STATUS_MS 500         /* query-status of each VM */
#define VMA_MIGRATE_POLL_MS 200   /* query-migrate of a migrating VM */
#define VMA_QMP_TIMEOUT_MS 2000   /* a command waited for during a request */
#define VMA_START_TIMEOUT_MS 20000 /* QEMU spawned to QMP saying it runs */
#define VMA_QUIT_TIMEOUT_MS 2000  /* quit sent to SIGKILL */
#define VMA_QMP_STUCK_MS 10000    /* a QMP reply this late is reported */
#define VMA_JOB_POLL_MS 200       /* query-jobs of a checkpoint */
#define VMA_JOB_TIMEOUT_MS 120000 /* a checkpoint job answered -ETIMEDOUT */
#define VMA_UNPLUG_TIMEOUT_MS 10000 /* device_del to DEVICE_DELETED */

enum vm_state {
	VM_STARTING,
	VM_RUNNING,
	VM_PAUSED,
	VM_INCOMING,
	VM_MIGRATING,
	VM_STOPPING,
	VM_STOPPED,
	VM_FAILED,
	VM_SAVING,               /* its state is being saved to VM_DIR/NAME.state */
};

/* A request that goes on in QEMU and is answered when it ends. */
enum vm_op {
	VM_OP_NONE,
	VM_OP_SAVE,              /* SAVE: followed with query-migrate (answered at once) */
	VM_OP_CHECKPOINT,        /* CHECKPOINT: a job followed with query-jobs */
	VM_OP_DISK_REMOVE,       /* DISK_REMOVE: waits for DEVICE_DELETED */
};

/* A disk attached to the running VM. */
struct vm_disk {
	char id[16];             /* diskN: the scsi-hd's id; N its SCSI target */
	char node[24];           /* diskN-node: its format node */
	char file[PATH_MAX];     /* absolute */
	char format[8];
	bool hot;                /* added by DISK_ADD (blockdev-add), not -drive */
};

/* What START or INCOMING asks beyond the VM's name. */
struct vm_start_opts {
	bool incoming;
	uint16_t port;           /* incoming: 0: QEMU picks one */
	bool restore;            /* from VM_DIR/NAME.state */
	const char *cpu_features; /* NULL, or the cluster's flags (cpu_compat) */
};

/* How far a stop has gone. */
enum vm_stop {
	VM_STOP_NONE,
	VM_STOP_POWERDOWN,       /* ACPI asked; quit at the deadline */
	VM_STOP_QUIT,            /* quit sent; SIGKILL at the deadline */
	VM_STOP_KILLED,          /* SIGKILL sent */
};

/* The last query-migrate of a migration from this node. */
struct vm_migration {
	bool present;
	char status[32];         /* QEMU's: setup, active, completed, failed, ... */
	int64_t total_ms;        /* -1: not known */
	int64_t downtime_ms;     /* -1: not known */
	double transferred_mb;
	double remaining_mb;
};

struct agent;

struct vm {
	struct agent *agent;
	char name[VMDEF_NAME_MAX];
	struct vmdef def;        /* as it was at the last start */
	enum vm_state state;
	pid_t pid;               /* of QEMU, 0 when none runs */
	char reason[512];
	uint64_t spawned_ns;
	bool incoming;           /* started with -incoming */
	uint16_t incoming_port;  /* 0 until known */
	bool incoming_port_asked;

	struct qmp *qmp;         /* NULL until connected, and after QEMU exits */
	bool qmp_polled;         /* its fd is in the loop */
	bool qmp_ready;          /* QEMU greeted and accepts commands */
	uint64_t qmp_opened_ns;
	uint64_t next_status_ns;
	bool status_waiting;
	bool qmp_stuck_logged;

	/* A START or INCOMING request answered once QEMU runs (or fails). */
	qb_ipcs_connection_t *reply_conn;
	int32_t reply_id;

	enum vm_stop stop;
	bool stop_asked;         /* STOP, KILL, or the end of a migration */
	uint64_t stop_deadline_ns;
	unsigned stop_timeout_s;
	char stop_how[160];      /* what the stop did, for the reason */
	char fail_why[200];      /* the agent killed it: why (it failed) */

	/* The guest's last SHUTDOWN event. */
	bool shutdown_seen;
	bool shutdown_by_guest;
	char shutdown_reason[48];

	/* The disks QEMU has now (as started, then DISK_ADD and DISK_REMOVE). */
	struct vm_disk disks[VMDEF_MAX_DISKS];
	unsigned ndisks;
	bool layout_differs;     /* a disk removed from the middle: not as defined */
	char cpu_arg[CPU_FLAGS_MAX + 16]; /* -cpu, "" for QEMU's default */

	/* A restore from a saved state (START with "restore"). */
	bool restoring;
	int restore_fd;          /* -1 once QEMU has it */
	char state_path[PATH_MAX];

	/* The request going on in QEMU (vm_op), answered at its end. */
	enum vm_op op;
	uint64_t op_deadline_ns;
	int save_fd;             /* SAVE: the temporary file QEMU writes */
	char save_tmp[PATH_MAX + 16];
	bool save_stopped;       /* SAVE paused a running guest */
	char job_id[32];         /* CHECKPOINT: QEMU's job */
	char job_what[120];      /* "taking checkpoint cp1", for messages */
	bool job_poll_waiting;
	uint64_t next_job_poll_ns;
	unsigned job_seq;
	char unplug_id[16];      /* DISK_REMOVE: the disk being removed */
	bool unplug_seen;        /* its DEVICE_DELETED came */

	struct vm_migration mig;
	char mig_target[300];    /* HOST:PORT, or the file of a save */
	bool mig_active;         /* migrating from here, not over */
	bool mig_completed;      /* the source may be quit */
	bool mig_cancel_sent;
	char mig_cancel_why[160];
	uint64_t mig_deadline_ns;
	uint64_t next_mig_poll_ns;
	bool mig_poll_waiting;
	uint64_t mig_started_ns;
};

struct agent {
	qb_loop_t *loop;
	qb_ipcs_service_t *ipcs;
	const char *vm_dir;
	const char *address;
	const char *ipc_name;
	const char *run_dir;
	const char *qemu;
	uint32_t node_id;
	bool kvm;
	bool stopping;
	struct cpu_info cpu;     /* this node's, for LIST */
	bool have_cpu;
	struct cpu_qemu cpuq;    /* what QEMU knows, for cpu_compat */
	char cpuq_err[256];      /* why cpuq is not probed */
	struct vm **vms;
	unsigned nvms;
};

uint64_t vma_now_ns(void);
const char *vm_state_str(enum vm_state s);

/* vm-lease.c: the lease of this node, held for its VMs (--quorumd). */
/* Starts holding the lease of the csv-quorumd at IPC endpoint quorumd, and
 * waits a while for it to be valid. Returns 0 or a negative errno with err. */
int vm_lease_start(const char *quorumd, char *err, size_t errlen);
void vm_lease_stop(void);
/* Before a QEMU is forked: -ENOLCK with err when no VM may start here;
 * on 0, vm_lease_spawn_end(pid) must follow (pid <= 0: none was forked). */
int vm_lease_spawn_begin(char *err, size_t errlen);
void vm_lease_spawn_end(pid_t pid);
/* A QEMU was reaped. */
void vm_lease_forget(pid_t pid);

/* vm.c */
struct vm *vm_find(struct agent *a, const char *name);
/* Whether QEMU of vm runs (or is starting or stopping). */
bool vm_active(const struct vm *vm);
/* Starts VM name from its definition, for a START (o->incoming false; from
 * its saved state with o->restore) or an INCOMING on o->port (0: QEMU
 * picks one), its CPU limited to o->cpu_features when the definition has
 * cpu_compat. Returns 0 when QEMU is spawned
 * (the request is answered by ipc_answer once QMP says it runs, or fails),
 * or a negative errno with err: -ENOENT, -EINVAL, -EEXIST, -EOPNOTSUPP
 * (see lib/vmagent-ipc.h), -ENOLCK (this node holds no valid lease), -EIO
 * (QEMU could not be spawned). */
int vm_start(struct agent *a, const char *name, const struct vm_start_opts *o, struct vm **ret, char *err,
	     size_t errlen);
int vm_stop(struct agent *a, struct vm *vm, unsigned timeout_s, char *msg, size_t msglen);
int vm_kill(struct agent *a, struct vm *vm, char *msg, size_t msglen);
int vm_migrate(struct agent *a, struct vm *vm, const char *host, uint16_t port, unsigned downtime_ms,
	       unsigned timeout_s, char *msg, size_t msglen);
/* The tick: connects to starting VMs, polls status and migrations,
 * enforces deadlines, reaps exited QEMUs. */
void vm_tick(struct agent *a);
/* Reaps the QEMU processes that exited (SIGCHLD). */
void vm_reap(struct agent *a);
/* Powers off every VM (quit, then SIGKILL) and waits for them: the agent
 * stops. */
void vm_stop_all(struct agent *a);
/* The VM as LIST shows it. */
struct json_object *vm_json(const struct vm *vm);

/* Shared by vm*.c. */
_printf_(3, 4) void vm_set_state(struct vm *vm, enum vm_state s, const char *fmt, ...);
_printf_(2, 3) void vm_set_reason(struct vm *vm, const char *fmt, ...);
_printf_(1, 2) struct json_object *vma_message(const char *fmt, ...);
struct json_object *vma_error(const char *text);
const char *vma_json_str(struct json_object *o, const char *key);
/* Sends quit; SIGKILL follows at the deadline. how: the stop's reason. */
void vm_send_quit(struct vm *vm, const char *how);
/* Whether vm runs here and QMP takes commands; otherwise msg says why
 * (-EINVAL: not running here; -EBUSY: migrating, saving or busy with
 * another request; -EIO: no QMP). what names the request. */
int vm_ready_for(const struct vm *vm, const char *what, char *msg, size_t msglen);
/* Answers the request going on (vm->op) and ends it. */
void vm_op_done(struct vm *vm, int32_t error, struct json_object *o);

/* vm-save.c: SAVE, and the end of a save and of a restore. */
int vm_save(struct agent *a, struct vm *vm, unsigned timeout_s, char *msg, size_t msglen);
void vm_save_progress(struct vm *vm, const char *status, const char *why);
/* QEMU exited during a save: the partial file goes. */
void vm_save_abandon(struct vm *vm);
/* The state a restore came from is loaded and runs: its file goes. */
void vm_restore_done(struct vm *vm);

/* vm-disk.c: DISK_ADD, DISK_REMOVE. */
void vm_disks_from_def(struct vm *vm);
int vm_disk_add(struct agent *a, struct vm *vm, const char *file, const char *format, char *id, size_t idlen,
		char *msg, size_t msglen);
/* Starts removing a disk (id or file, one NULL); answered by vm_op_done. */
int vm_disk_remove(struct agent *a, struct vm *vm, const char *id, const char *file, char *msg, size_t msglen);
void vm_disk_deleted(struct vm *vm, const char *id);
void vm_disk_tick(struct vm *vm, uint64_t now);
struct json_object *vm_disks_json(const struct vm *vm);

/* vm-checkpoint.c: CHECKPOINT. list answers at once (*ret); the others
 * start a job, answered by vm_op_done. */
int vm_checkpoint(struct agent *a, struct vm *vm, const char *op, const char *cp, struct json_object **ret,
		  char *msg, size_t msglen);
void vm_checkpoint_tick(struct vm *vm, uint64_t now);

/* ipc.c */
int ipc_start(struct agent *a, char *err, size_t errlen);
void ipc_stop(struct agent *a);
/* Answers the START or INCOMING request that vm waits to answer, if any:
 * error 0 with o, or a negative errno with o carrying "error"; o is
 * consumed. */
void ipc_answer(struct vm *vm, int32_t error, struct json_object *o);
/* Drops the request that vm waits to answer, unanswered. */
void ipc_forget(struct vm *vm);
/* Whether vm waits to answer a request. */
bool ipc_waiting(const struct vm *vm);
