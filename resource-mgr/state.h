/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The replicated state of csv-rmd and its rules, with no I/O: every node
 * applies the same messages in the same (CPG agreed) order to the same
 * state, so every node holds the same state. The leader plans, from the
 * state and the facts it sees (csv-quorumd's membership, fences and SAN
 * access; the csv-rmd group), the next decision; decisions, the holders'
 * reports and the operator's requests are the messages that change it.
 *
 * A volume's coordinator role moves only through "stopping" (its holder
 * stops it and reports) or "waiting-fence" (its holder was lost and is
 * not free until csv-quorumd counts it fenced), so two nodes never serve
 * one volume. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#define R_MAX_NODES 64
#define R_MAX_VOLUMES 16
#define R_NAME_MAX 64
#define R_MAX_VMS 64
#define R_VM_MAX_PREFERRED 8
#define R_VM_MAX_OPERATORS 8
#define R_VM_MAX_FAILURES 16
#define R_GROUP_NAME_MAX 33
#define R_VM_SECONDS_MAX 604800  /* a week: the longest restart period or expiry */

enum r_phase { R_UNPLACED, R_STARTING, R_RUNNING, R_STOPPING, R_WAITING_FENCE };

struct r_volume {
	char name[R_NAME_MAX];
	char uuid[40];          /* "" until a node names it */
	uint16_t port;
	uint32_t holder;        /* 0: none */
	enum r_phase phase;
	char reason[200];
	uint64_t epoch;         /* of the last coordinator start */
	bool redirect;          /* file-system redirected mode */
	uint32_t target;        /* the operator asked to move it there; 0 none */
	uint64_t moves;         /* placements so far */
	uint32_t failed_node;   /* whose coordinator failed last: placed elsewhere first */
};

/* A node's admin state: draining moves its VMs and roles away, then it is
 * paused (it takes none until resumed). */
enum r_admin { R_ACTIVE, R_DRAINING, R_PAUSED };

struct r_node {
	uint32_t id;
	enum r_admin admin;
};

/* A VM's phase. Its QEMU runs on `node` while starting, running, stopping
 * or migrating; while migrating, the target's QEMU waits for it (live) or
 * the source saves it (quick). A VM leaves a lost node only through
 * "waiting-fence", so it never runs on two nodes. */
enum r_vm_phase { R_VM_STOPPED, R_VM_STARTING, R_VM_RUNNING, R_VM_STOPPING, R_VM_MIGRATING, R_VM_WAITING_FENCE };

struct r_vm_failure {
	uint32_t node;
	uint64_t time_ms;       /* wall clock (ms since the epoch), as reported */
};

/* A migration that ended. */
struct r_vm_migration {
	uint32_t from, to;
	bool quick, ok;
	uint64_t total_ms;
	int64_t downtime_ms;    /* -1: not known */
};

struct r_vm {
	char name[R_NAME_MAX];
	bool want;              /* the operator wants it running */
	enum r_vm_phase phase;
	uint32_t node;          /* where it runs, starts, stops or migrates from */
	uint32_t target;        /* migrating to, or where the operator wants it */
	bool quick;             /* the migration under way (or asked) is quick */
	bool force;             /* the stop asked is a power off */
	uint16_t port;          /* live migration: the target listens there */
	bool saved;             /* quick migration: start from the saved state */
	bool live_failed;       /* its last live migration failed: drain it quick */
	uint64_t mig_start_ms;  /* wall clock, when the migration was decided */
	char reason[200];
	/* From its definition. */
	int64_t priority;
	uint32_t memory_mb, vcpus;
	uint32_t preferred[R_VM_MAX_PREFERRED];
	uint32_t npreferred;
	char anti_affinity[R_NAME_MAX];
	bool anti_hard;
	char failback[16];      /* "never", "immediate" or "HH-HH" */
	bool prefer_quick;      /* its "migration" is quick */
	bool cpu_compat;
	uint32_t restart_max, restart_period_s, failure_expire_s;
	char operators[R_VM_MAX_OPERATORS][R_GROUP_NAME_MAX];
	uint32_t noperators;
	/* History. */
	struct r_vm_failure failures[R_VM_MAX_FAILURES];
	uint32_t nfailures;
	uint32_t return_to;     /* drained from that node: failback returns it */
	uint64_t starts, migrations;
	bool have_last_mig;
	struct r_vm_migration last_mig;
	uint64_t gen;           /* raised by every change of the VM */
};

struct r_state {
	uint64_t version;       /* raised by every change */
	uint32_t nvolumes, nnodes, nvms;
	struct r_volume volumes[R_MAX_VOLUMES];
	struct r_node nodes[R_MAX_NODES];
	struct r_vm vms[R_MAX_VMS];
};

enum r_fence { R_FENCE_NONE, R_FENCE_PENDING, R_FENCED };

/* What the leader knows of a node. */
struct r_node_facts {
	uint32_t id;
	bool rmd;                        /* its csv-rmd is in the group */
	bool member;                     /* in the quorate membership */
	enum r_fence fence;
	bool has[R_MAX_VOLUMES];         /* it serves the state's volume k */
	bool san_ok[R_MAX_VOLUMES];      /* it sees volume k's LUN */
	uint32_t vm_memory_mb;           /* what VMs may use on it (its csv-rmd says) */
	uint32_t cpus;
	const char *cpu_flags;           /* its CPU's, space separated; NULL unknown */
};

struct r_facts {
	bool quorate;
	uint32_t nnodes;
	struct r_node_facts nodes[R_MAX_NODES];
	uint64_t now_ms;
	/* The group is forming (the leader just started, and members of the
	 * cluster still lack csv-rmd): nothing is placed yet, so that the
	 * volumes spread over the nodes that come. */
	bool settling;
	/* Per volume: since when (now_ms clock) it has been in its phase, as
	 * the leader saw it; 0 unknown. */
	uint64_t phase_since_ms[R_MAX_VOLUMES];
	/* The same per VM. */
	uint64_t vm_phase_since_ms[R_MAX_VMS];
	uint64_t wall_ms;                /* the wall clock: VM failures age by it */
	int hour;                        /* the local hour, for failback windows */
};

/* A starting coordinator that is not running after this is stopped. */
#define R_START_TIMEOUT_MS 30000

/* A starting VM that does not run after this is stopped. */
#define R_VM_START_TIMEOUT_MS 60000

enum r_decision_kind { R_DEC_VOLUME, R_DEC_VM, R_DEC_NODE };

/* A decision of the leader. R_DEC_VOLUME: volume `volume` gets this
 * holder, phase and reason; target is cleared when clear_target.
 * R_DEC_VM: VM `vm` gets vm_phase, node, target, quick and reason (and
 * return_to when set_return_to). R_DEC_NODE: node `node` gets admin. */
struct r_decision {
	enum r_decision_kind kind;
	uint64_t based_on;      /* the state version it was made from */
	char volume[R_NAME_MAX];
	uint32_t holder;
	enum r_phase phase;
	bool clear_target;
	char reason[200];
	char vm[R_NAME_MAX];
	enum r_vm_phase vm_phase;
	uint32_t node, target;
	bool quick;
	bool set_return_to;
	uint32_t return_to;
	uint64_t wall_ms;       /* the leader's clock, for a migration's start */
	enum r_admin admin;
};

const char *r_phase_str(enum r_phase p);
int r_phase_parse(const char *s, enum r_phase *ret);

struct r_volume *r_volume_find(struct r_state *s, const char *name_or_uuid);
int r_volume_index(const struct r_state *s, const char *name_or_uuid);
/* Adds a volume (unplaced) unless one of that name is there; returns its
 * index, or -ENOSPC. Sets the uuid and port when they were unknown. */
int r_volume_add(struct r_state *s, const char *name, const char *uuid, uint16_t port);
const struct r_node *r_node_find(const struct r_state *s, uint32_t id);
const struct r_node_facts *r_facts_node(const struct r_facts *f, uint32_t id);

/* The number of volumes node holds (starting or running). */
unsigned r_roles_of(const struct r_state *s, uint32_t node);

/* Whether node may hold volume k now; if not, why in why. */
bool r_eligible(const struct r_state *s, const struct r_facts *f, unsigned k, uint32_t node, char *why,
		size_t len);

/* The next decision the leader should take, if any. */
bool r_plan(const struct r_state *s, const struct r_facts *f, struct r_decision *d);

/* Messages: each returns true when the state changed (version raised). */
bool r_apply_decision(struct r_state *s, const struct r_decision *d);
/* A holder's report on its coordinator of a volume: running (with its
 * epoch), or stopped/failed (with the reason). */
enum r_report { R_REPORT_RUNNING, R_REPORT_STOPPED, R_REPORT_FAILED };
bool r_apply_report(struct r_state *s, uint32_t node, const char *volume, enum r_report what, uint64_t epoch,
		    const char *reason);
bool r_apply_move(struct r_state *s, const char *volume, uint32_t to);
bool r_apply_redirect(struct r_state *s, const char *volume, bool on);

/* ---- VMs (vm-state.c) ---- */

const char *r_vm_phase_str(enum r_vm_phase p);
int r_vm_phase_parse(const char *s, enum r_vm_phase *ret);
const char *r_admin_str(enum r_admin a);
int r_admin_parse(const char *s, enum r_admin *ret);
enum r_admin r_admin_of(const struct r_state *s, uint32_t node);

int r_vm_index(const struct r_state *s, const char *name);
struct r_vm *r_vm_find(struct r_state *s, const char *name);
/* Whether VM v has a QEMU on node (running, starting, stopping, migrating
 * from it, or waiting for its fence there), or one coming to it. */
bool r_vm_on(const struct r_vm *v, uint32_t node);
/* The memory the VMs placed on node take, in MB. */
uint32_t r_vm_memory_used(const struct r_state *s, uint32_t node);

/* Records a failure of v on node at time_ms (wall clock), forgetting the
 * expired ones. */
void r_vm_add_failure(struct r_vm *v, uint32_t node, uint64_t time_ms);
/* A VM from its definition (the JSON of lib/vmagent-ipc.h), stopped;
 * -EINVAL with err naming the field. */
int r_vm_from_definition(struct json_object *def, struct r_vm *ret, char *err, size_t errlen);
/* Whether VM i may run on node now (placed there, or migrated there); if
 * not, why. */
bool r_vm_eligible(const struct r_state *s, const struct r_facts *f, unsigned i, uint32_t node, char *why,
		   size_t len);
/* The flags (space separated) that every list of lists[0..n) has, in the
 * order of the first; "" when n is 0. */
void r_cpu_common(const char *const *lists, unsigned n, char *buf, size_t len);
/* The next decision on the VMs and the nodes' admin states, if any. */
bool r_plan_vms(const struct r_state *s, const struct r_facts *f, struct r_decision *d);

/* The operator's requests and the nodes' reports, as messages. */
bool r_apply_vm_add(struct r_state *s, const struct r_vm *vm, bool start);
bool r_apply_vm_remove(struct r_state *s, const char *name);
/* want: run it (on `to` when not 0) or stop it (force: power off). */
bool r_apply_vm_want(struct r_state *s, const char *name, bool want, uint32_t to, bool force);
bool r_apply_vm_migrate(struct r_state *s, const char *name, uint32_t to, bool quick);
/* drain, or resume (failback: the VMs drained from it return). */
bool r_apply_node_admin(struct r_state *s, uint32_t node, bool drain, bool failback);

enum r_vm_report {
	R_VM_REP_RUNNING,        /* its QEMU runs the guest */
	R_VM_REP_STOPPED,        /* it was stopped (by the operator or the guest) */
	R_VM_REP_FAILED,         /* it failed to start, or crashed */
	R_VM_REP_INCOMING,       /* the target listens on port */
	R_VM_REP_MIGRATED,       /* the migration completed (source or target says) */
	R_VM_REP_MIGRATE_FAILED, /* it goes on running on the source */
	R_VM_REP_SAVED,          /* quick migration: the state is saved */
};
const char *r_vm_report_str(enum r_vm_report r);
int r_vm_report_parse(const char *s, enum r_vm_report *ret);
struct r_vm_report_info {
	uint16_t port;
	uint64_t time_ms;        /* the reporter's wall clock */
	uint64_t total_ms;       /* of a migration; 0 not known */
	int64_t downtime_ms;     /* -1 not known */
	const char *reason;
};
bool r_apply_vm_report(struct r_state *s, uint32_t from, const char *name, enum r_vm_report what,
		       const struct r_vm_report_info *info);

struct json_object *r_vm_json(const struct r_vm *v);
int r_vm_from_json(struct json_object *o, struct r_vm *v, char *err, size_t errlen);
struct json_object *r_decision_json(const struct r_decision *d);
int r_decision_from_json(struct json_object *o, struct r_decision *d);

/* Member key of o, or NULL (o may be NULL). */
struct json_object *r_json_get(struct json_object *o, const char *key);
/* Member key of o when it is a string, or NULL. */
const char *r_json_str(struct json_object *o, const char *key);
/* Member key of o as an unsigned number not above max: false when it is
 * missing, not a number or out of range. */
bool r_json_u64(struct json_object *o, const char *key, uint64_t max, uint64_t *ret);
/* Member key of o, a string shorter than len, copied to buf: false when
 * it is missing, not a string or too long. */
bool r_json_strcpy(struct json_object *o, const char *key, char *buf, size_t len);

/* JSON forms: the state (persisted, and sent when nodes join). */
struct json_object *r_state_json(const struct r_state *s);
int r_state_from_json(struct json_object *o, struct r_state *s, char *err, size_t errlen);
