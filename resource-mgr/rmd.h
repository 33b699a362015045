/* SPDX-License-Identifier: GPL-2.0-or-later */
/* csv-rmd: the daemon's parts and what they share. main.c runs the loop
 * and the plan; group.c the CPG group that replicates the state; facts.c
 * follows csv-quorumd; roles.c runs this node's coordinators; ipc.c
 * answers csvctl and the csvfs clients. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <corosync/cpg.h>
#include <qb/qbipcc.h>
#include <qb/qbipcs.h>
#include <qb/qbloop.h>

#include "state.h"

#define RMD_GROUP "csv-rmd"
#define RMD_TICK_MS 200
/* A hello round not over after this asks the members again. */
#define RMD_HELLO_AGAIN_MS 2000
/* A csvfs client that has not reported for this long is counted gone. */
#define RMD_ACCESS_STALE_MS 5000
/* At its start, the leader waits this long, at most, for the csv-rmd of
 * every member before it places roles. */
#define RMD_SETTLE_MS 10000
/* A coordinator asked to stop is killed after this. */
#define RMD_STOP_TIMEOUT_MS 5000
/* csv-vmagent is asked for its VMs this often. */
#define RMD_VM_LIST_MS 400
/* A report of a VM not yet seen applied is sent again after this. */
#define RMD_VM_REPORT_AGAIN_MS 3000
/* This node's VMs are killed once it has been out of quorum this long
 * (while csv-quorumd answers) ... */
#define RMD_VM_QUORUM_GRACE_MS 1000
/* ... and not in the first moments of a csv-quorumd that (re)started,
 * which says "not quorate" until corosync has told it. */
#define RMD_QUORUMD_SETTLE_MS 10000
/* A node's CPU flags, space separated, fit in this. */
#define RMD_CPU_FLAGS_MAX 4096
/* A VM's ACPI shutdown is followed by a power off after this. */
#define RMD_VM_STOP_TIMEOUT_S 30

/* A volume as this node's command line names it. */
struct rmd_volume_conf {
	char name[R_NAME_MAX];
	uint16_t port;
	char spec[512];          /* the LUN on this node */
	char uuid[40];           /* from csv-quorumd, "" until known */
	bool san_ok;             /* this node writes its heartbeat on it */
};

/* A node's csvfs access to a volume, as it last reported it. */
struct rmd_access {
	char access[24];
	char reason[160];
};

/* What a member said of itself when it joined. */
struct rmd_peer {
	uint32_t id;
	uint32_t pid;
	bool known;              /* it said hello once: name, address, volumes */
	bool hello;              /* its hello of this membership arrived */
	char name[R_NAME_MAX];
	char address[64];
	char volumes[R_MAX_VOLUMES][R_NAME_MAX];
	char volume_uuid[R_MAX_VOLUMES][40];
	uint16_t volume_port[R_MAX_VOLUMES];
	uint32_t nvolumes;
	uint32_t vm_memory_mb;   /* what VMs may use on it */
	uint32_t cpus;
	char cpu_flags[RMD_CPU_FLAGS_MAX]; /* its CPU's, space separated */
	bool san_known;          /* its SAN report arrived */
	bool san_ok[R_MAX_VOLUMES]; /* by its volumes[] */
	struct rmd_access access[R_MAX_VOLUMES]; /* by its volumes[] */
};

/* A message kept until the round of hellos ends. */
struct rmd_queued {
	uint32_t type, from;
	char *body;
};

/* A VM of the state as this node's csv-vmagent last listed it, and what
 * this node asked and reported of it (vms.c). */
struct rmd_vm_local {
	char name[R_NAME_MAX];
	bool listed;             /* in csv-vmagent's last LIST */
	char state[16];          /* csv-vmagent's: running, incoming, migrating, ... */
	char reason[256];
	char mig_status[24];     /* of its last migration from here */
	int64_t mig_total_ms, mig_downtime_ms;
	double mig_sent_mb, mig_left_mb; /* -1: not known */
	uint64_t progress_ms;    /* its progress last sent to the group */
	bool busy;               /* a request to csv-vmagent is under way */
	uint64_t list_ms;        /* when the LIST that says the above was asked */
	uint64_t answered_ms;    /* when csv-vmagent answered the last request */
	uint64_t asked_gen;      /* the VM's generation of the last request ... */
	uint16_t asked_port;     /* ... and the port it was for */
	char asked[16];          /* ... and what it was: start, incoming, migrate, save, stop, kill */
	char report[16];         /* the last report sent ... */
	uint64_t report_gen;     /* ... for this generation ... */
	uint64_t report_ms;      /* ... at that time */
};

/* How a VM's migration goes, as its source last said (not replicated
 * state: a word of the source, shown by STATE while it migrates). */
struct rmd_vm_progress {
	char name[R_NAME_MAX];
	uint64_t gen;            /* of the VM when it was said */
	char status[24];         /* QEMU's: setup, active, ... */
	double sent_mb, left_mb; /* -1: not known */
	uint64_t elapsed_ms;
};

/* A coordinator this node runs, by volume of the command line. */
struct rmd_child {
	pid_t pid;               /* 0: none */
	uint64_t generation;     /* the volume's placement (moves) it started for */
	bool stop_asked;
	int ready_fd;            /* read end of its --ready-fd, -1 closed */
	bool ready;
	uint64_t epoch;
	uint64_t stop_at_ms;     /* asked to stop: SIGKILL then; 0 not asked */
	bool killed;
	char ready_buf[64];
	size_t ready_len;
};

struct rmd {
	qb_loop_t *loop;
	uint32_t node_id;
	char node_name[R_NAME_MAX];
	char address[64];
	const char *ipc_name, *quorumd_name, *state_dir, *coordinator, *keyfile, *vmagent_name;
	uint32_t vm_memory_mb;    /* what VMs may use on this node */
	uint32_t cpus;
	char cpu_flags[RMD_CPU_FLAGS_MAX];
	struct rmd_volume_conf conf[R_MAX_VOLUMES];
	uint32_t nconf;

	struct r_state st;
	bool state_dirty;         /* to be saved */

	/* The group. */
	cpg_handle_t cpg;
	int cpg_fd;
	bool joined;
	struct rmd_peer peers[R_MAX_NODES];
	uint32_t npeers;
	bool synced;              /* every member's hello of this membership arrived */
	char members_key[512];    /* the sorted member ids of this membership */
	uint64_t round_ms;        /* when this membership's hello round began */
	uint64_t hello_ms;        /* when this node last sent its hello */
	uint64_t hello_answer_ms; /* when it last sent one again for a peer still in its round */
	struct r_state best;      /* the best state among this round's hellos */
	uint32_t best_from;
	bool have_best;
	struct rmd_queued *queued; /* messages delivered before the round ended */
	size_t nqueued;

	/* csv-quorumd's facts. */
	qb_ipcc_connection_t *qc;
	bool quorumd_up;
	char quorumd_error[200];
	struct r_facts facts;     /* nodes: quorumd's, joined with the group */
	char node_names[R_MAX_NODES][R_NAME_MAX];
	uint64_t facts_ms;
	uint64_t last_log_ms;

	/* The plan (leader only). */
	uint64_t phase_seen_version[R_MAX_VOLUMES];
	enum r_phase phase_seen[R_MAX_VOLUMES];
	uint64_t phase_since_ms[R_MAX_VOLUMES];
	uint64_t last_decision_version;
	uint64_t last_decision_ms;

	/* This node's coordinators and what it last reported of them, by
	 * volume of the command line. */
	struct rmd_child child[R_MAX_VOLUMES];
	char report_sent[R_MAX_VOLUMES][16];
	uint64_t report_sent_version[R_MAX_VOLUMES];
	uint64_t report_sent_ms[R_MAX_VOLUMES];
	/* What this node's csvfs clients reported, by volume of the command
	 * line. */
	struct rmd_access local_access[R_MAX_VOLUMES];
	uint64_t local_access_ms[R_MAX_VOLUMES];
	bool access_sent[R_MAX_VOLUMES];

	bool san_sent;            /* this node's SAN report went out ... */
	bool san_sent_ok[R_MAX_VOLUMES]; /* ... with these values, by conf */

	/* This node's VMs (vms.c): csv-vmagent's view, and the requests under
	 * way in threads, whose results come back through a pipe. */
	struct rmd_vm_local vm_local[R_MAX_VMS];
	uint32_t nvm_local;
	struct rmd_vm_progress vm_progress[R_MAX_VMS];
	uint32_t nvm_progress;
	uint64_t quorate_seen_ms;  /* when csv-quorumd last said quorate (or was silent) */
	uint64_t quorumd_since_ms; /* since when csv-quorumd answers */
	bool vmagent_up;
	char vmagent_error[300];
	uint64_t vmagent_seen_ms;  /* its last answer */
	uint64_t vm_list_ms;
	bool vm_list_busy;         /* a LIST is under way */
	int job_pipe[2];
	unsigned jobs;             /* under way */
	uint64_t vm_phase_seen_gen[R_MAX_VMS];
	uint64_t vm_phase_since_ms[R_MAX_VMS];

	qb_ipcs_service_t *ipcs;
	bool stopping;
	uint64_t started_ms;
};

uint64_t rmd_now_ms(void);

/* main.c */
void rmd_changed(struct rmd *d);           /* the state changed: save, act, plan */
uint32_t rmd_leader(const struct rmd *d);  /* 0 none */
bool rmd_quorate(const struct rmd *d);
const char *rmd_node_name(const struct rmd *d, uint32_t id);
const struct rmd_peer *rmd_peer(const struct rmd *d, uint32_t id);

/* group.c */
enum rmd_msg {
	RMD_HELLO = 1, RMD_DECIDE, RMD_REPORT, RMD_MOVE, RMD_REDIRECT, RMD_ACCESS, RMD_SAN,
	RMD_VM_ADD, RMD_VM_REMOVE, RMD_VM_WANT, RMD_VM_MIGRATE, RMD_NODE_ADMIN, RMD_VM_REPORT, RMD_VM_PROGRESS,
};
int group_start(struct rmd *d, char *err, size_t errlen);
void group_stop(struct rmd *d);
/* Multicasts o (consumed) as a message of the given type. */
int group_send(struct rmd *d, enum rmd_msg type, struct json_object *o);
/* Says who this node is, its volumes and its state. */
void group_send_hello(struct rmd *d);
/* A hello round that lasts: says whose hello it lacks and sends this
 * node's again (marked not synced, so that the members that are answer). */
void group_round_check(struct rmd *d);

/* facts.c */
void facts_refresh(struct rmd *d);
void facts_stop(struct rmd *d);
/* The LUN spec of the state's volume k on this node; NULL none. */
const struct rmd_volume_conf *facts_conf_of(const struct rmd *d, unsigned k);

/* roles.c */
void roles_act(struct rmd *d);             /* start, stop, report */
/* Stops every coordinator of this node (now: SIGKILL) and waits. */
void roles_stop_all(struct rmd *d, bool now, const char *why);

/* vms.c */
int vms_start(struct rmd *d, char *err, size_t errlen);
void vms_stop(struct rmd *d);
void vms_act(struct rmd *d);               /* follow csv-vmagent, start, stop, migrate, report */
/* The answer of csv-vmagent to a vms_call: r is ipc_call's (0: it
 * answered), error csv-vmagent's, reply its JSON (NULL when none), err
 * the words of either. */
typedef void vms_done_fn(struct rmd *d, int r, int32_t error, struct json_object *reply, const char *err, void *ctx);
/* Runs request id of csv-vmagent with body (consumed) in a thread, so that
 * csv-vmagent never holds up the loop; done(ctx) runs in the loop. */
void vms_call(struct rmd *d, int32_t id, struct json_object *body, vms_done_fn *done, void *ctx);
/* Runs request id of csv-vmagent with body (consumed) in a thread; the
 * IPC connection c (held until then) gets its answer as response res. */
void vms_forward(struct rmd *d, qb_ipcs_connection_t *c, int32_t res, int32_t id, struct json_object *body);
/* The progress of VM name's migration as its source said it, when it is
 * of the VM's generation gen; NULL otherwise. */
const struct rmd_vm_progress *vms_progress(const struct rmd *d, const char *name, uint64_t gen);
/* A migration's progress from the group (RMD_VM_PROGRESS). */
void vms_take_progress(struct rmd *d, struct json_object *o);
/* The CPU count and the memory VMs may use on this node, by default. */
uint32_t vms_host_cpus(void);
uint32_t vms_host_memory_mb(void);
/* This node's CPU flags, from /proc/cpuinfo ("" when unknown). */
void vms_host_cpu_flags(char *buf, size_t len);

/* ipc.c */
int ipc_start(struct rmd *d, char *err, size_t errlen);
void ipc_stop(struct rmd *d);
