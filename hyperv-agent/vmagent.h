/* SPDX-License-Identifier: GPL-2.0-or-later */
/* csv-vmagent: the daemon's parts and what they share. main.c runs the
 * loop and its tick; vm.c runs the VMs (QEMU processes driven over QMP,
 * qmp.c) and follows them; vmdef.c reads their definitions; ipc.c serves
 * the requests of lib/vmagent-ipc.h. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>
#include <qb/qbipcs.h>
#include <qb/qbloop.h>

#include "qmp.h"
#include "vmdef.h"

#define VMA_TICK_MS 100           /* the loop's tick: deadlines, starts */
#define VMA_STATUS_MS 500         /* query-status of each VM */
#define VMA_MIGRATE_POLL_MS 200   /* query-migrate of a migrating VM */
#define VMA_QMP_TIMEOUT_MS 2000   /* a command waited for during a request */
#define VMA_START_TIMEOUT_MS 20000 /* QEMU spawned to QMP saying it runs */
#define VMA_QUIT_TIMEOUT_MS 2000  /* quit sent to SIGKILL */
#define VMA_QMP_STUCK_MS 10000    /* a QMP reply this late is reported */

enum vm_state {
	VM_STARTING,
	VM_RUNNING,
	VM_PAUSED,
	VM_INCOMING,
	VM_MIGRATING,
	VM_STOPPING,
	VM_STOPPED,
	VM_FAILED,
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

	struct vm_migration mig;
	char mig_target[300];    /* HOST:PORT */
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
	struct vm **vms;
	unsigned nvms;
};

uint64_t vma_now_ns(void);
const char *vm_state_str(enum vm_state s);

/* vm.c */
struct vm *vm_find(struct agent *a, const char *name);
/* Whether QEMU of vm runs (or is starting or stopping). */
bool vm_active(const struct vm *vm);
/* Starts VM name from its definition, for a START (incoming false) or an
 * INCOMING on port (0: QEMU picks one). Returns 0 when QEMU is spawned
 * (the request is answered by ipc_answer once QMP says it runs, or fails),
 * or a negative errno with err: -ENOENT, -EINVAL, -EEXIST, -EOPNOTSUPP
 * (see lib/vmagent-ipc.h), -EIO (QEMU could not be spawned). */
int vm_start(struct agent *a, const char *name, bool incoming, uint16_t port, struct vm **ret, char *err,
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

/* ipc.c */
int ipc_start(struct agent *a, char *err, size_t errlen);
void ipc_stop(struct agent *a);
/* Answers the START or INCOMING request that vm waits to answer, if any:
 * error 0 with o, or a negative errno with o carrying "error"; o is
 * consumed. */
void ipc_answer(struct vm *vm, int32_t error, struct json_object *o);
/* Drops the request that vm waits to answer, unanswered. */
void ipc_forget(struct vm *vm);
