/* SPDX-License-Identifier: GPL-2.0-or-later */
/* csv-quorumd: the daemon as a whole. One process, one qb_loop: the
 * corosync clients (cluster.c), the disk heartbeat threads
 * (heartbeat.c), the evaluation of the state (eval.c) and the local IPC
 * server (ipc.c) share this struct; only the heartbeat threads run
 * outside the loop, and they share nothing but their own mutex-guarded
 * findings. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <corosync/cfg.h>
#include <corosync/cmap.h>
#include <corosync/corotypes.h>
#include <corosync/cpg.h>
#include <corosync/votequorum.h>
#include <qb/qbipcs.h>
#include <qb/qblog.h>
#include <qb/qbloop.h>

#include "heartbeat.h"
#include "state.h"

#define Q_CPG_GROUP "csv-quorumd"
/* The loop re-evaluates the state this often (and at once on a corosync
 * event). */
#define Q_TICK_MS 100u
/* Each daemon multicasts its report over CPG this often. */
#define Q_REPORT_MS 1000u
/* cfg link status and votes are polled this often. */
#define Q_POLL_MS 1000u
/* At start, the first heartbeat rounds and corosync's first callbacks
 * settle the state for this long (plus 3 heartbeat intervals) before
 * changes are logged and published: then the whole state is logged once. */
#define Q_SETTLE_MS 300u
/* The same heartbeat failure of a volume is logged again this often. */
#define Q_ERROR_RELOG_MS 60000u
/* A lost corosync connection is retried this often. */
#define Q_RECONNECT_MS 1000u

struct ipc_client;

struct quorumd {
	qb_loop_t *loop;
	struct q_state st;
	struct q_view view;          /* as last evaluated */
	bool evaluated;              /* view holds something */
	uint64_t started_ms;         /* changes are logged from Q_SETTLE after this */

	/* Options. */
	uint32_t opt_node_id;        /* 0: from corosync */
	int64_t opt_slot;            /* -1: from the nodelist position */
	uint32_t opt_token_ms;       /* 0: from cmap */
	char ipc_name[108];
	uint32_t nspecs;
	const char *specs[Q_MAX_VOLUMES];

	struct hb_volume *hb[Q_MAX_VOLUMES];
	uint64_t logged_error_ms[Q_MAX_VOLUMES]; /* the volume error last seen */
	uint64_t logged_error_at[Q_MAX_VOLUMES]; /* when its text was last logged */
	char logged_error[Q_MAX_VOLUMES][Q_ERROR_MAX];
	bool logged_readable[Q_MAX_VOLUMES];

	/* corosync: handles valid while connected. */
	cmap_handle_t cmap;
	votequorum_handle_t vq;
	cpg_handle_t cpg;
	corosync_cfg_handle_t cfg;
	cmap_track_handle_t nodelist_track;
	int cmap_fd, vq_fd, cpg_fd, cfg_fd; /* -1: not in the loop */
	bool have_cmap, have_vq, have_cpg, have_cfg;
	bool lost_pending;           /* a connection failed: teardown scheduled */
	char lost_reason[200];
	bool refresh_nodelist, refresh_votes;
	bool cfg_status_works;       /* corosync_cfg_node_status_get answered */
	bool cfg_status_warned;
	qb_loop_timer_handle reconnect_timer;
	uint32_t reconnect_tries;

	/* Timers. */
	qb_loop_timer_handle tick_timer, poll_timer, report_timer, now_timer;
	bool now_armed;              /* an immediate evaluation is scheduled */
	uint64_t last_report_ms, last_poll_ms;

	/* IPC. */
	qb_ipcs_service_t *ipcs;
	struct ipc_client *clients;
	uint64_t ipc_requests;

	/* Self-fence (localfence.c). */
	bool stopping;               /* the holders were told to stop */
	uint64_t kill_at_ms;         /* holders not stopped by then are killed */
	char stop_reason[300];

	/* Fence agent (agent.c). */
	const char *agent_path;      /* NULL: none */
	const char *agent_action;    /* off, reboot */
	uint32_t agent_nargs;
	const char *agent_args[32];  /* key=value lines */
	uint32_t agent_timeout_ms;
	pid_t agent_pid;             /* running, 0: none */
	uint32_t agent_target;
	uint64_t agent_started_ms;
	int agent_out;               /* its stdout and stderr, -1: none */
	char agent_output[1024];
	size_t agent_output_len;
	uint64_t agent_retry_ms[Q_MAX_NODES]; /* per node index: not before */

	/* Disk witness as a votequorum quorum device. */
	bool qdevice_registered;
	bool have_vq_ring;
	votequorum_ring_id_t vq_ring;
};

/* Monotonic milliseconds (CLOCK_MONOTONIC). */
uint64_t q_now_ms(void);

/* ---- cluster.c: the corosync clients ------------------------------------- */

/* Connects cmap, votequorum, CPG and cfg, reads the nodelist, this node's
 * id and the token timeout, joins the CPG group and adds every fd to the
 * loop. err says which client failed and why. */
int cluster_connect(struct quorumd *d, char *err, size_t errlen);
/* Leaves and finalizes every client. */
void cluster_disconnect(struct quorumd *d);
/* Re-reads the nodelist, votes, options and link status when flagged or
 * due. Called by the evaluation. */
void cluster_refresh(struct quorumd *d, uint64_t now_ms);
/* Multicasts this node's report (its own writes) to the group. */
void cluster_send_report(struct quorumd *d);
/* The token timeout corosync uses (runtime.config.totem.token, else
 * totem.token); 0 when cmap has neither. */
uint32_t cluster_token_ms(struct quorumd *d);

/* Registers the disk witness as votequorum's quorum device; err names
 * what corosync needs when it refuses. */
int cluster_qdevice_register(struct quorumd *d, char *err, size_t errlen);
/* Tells votequorum whether the witness votes for this partition. */
void cluster_qdevice_poll(struct quorumd *d, bool cast_vote);
/* Multicasts that a fence agent confirmed the fence of node target. */
void cluster_send_fenced(struct quorumd *d, uint32_t target);

/* ---- eval.c: judging the state -------------------------------------------- */

/* Copies the heartbeat findings, renews the lease, computes the view and
 * logs and publishes every change. */
void quorumd_evaluate(struct quorumd *d);
/* Schedules an evaluation at the loop's next turn (from callbacks). */
void quorumd_evaluate_soon(struct quorumd *d);

/* ---- localfence.c: the lease holders of this node -------------------------- */

/* Tells the holders the lease, stops them when it is lost or a fence is
 * requested, kills those that do not stop in time, and marks this node
 * fenced once all have stopped. */
void lf_update(struct quorumd *d, uint64_t now_ms);
/* What a holder may do now, as the JSON text of a CSVQ_LEASE message
 * (malloc'd). */
char *lf_lease_text(struct quorumd *d, uint64_t now_ms);

/* ---- agent.c: the fence agent ----------------------------------------------- */

/* Runs the fence agent for a pending node when this node is the fencer
 * (the quorate member with the lowest id whose csv-quorumd runs), and
 * collects its outcome. */
void agent_update(struct quorumd *d, uint64_t now_ms);
/* Kills a running agent (at stop). */
void agent_stop(struct quorumd *d);

/* ---- ipc.c: the local IPC server ------------------------------------------ */

int ipc_start(struct quorumd *d, char *err, size_t errlen);
void ipc_stop(struct quorumd *d);
/* Pushes an event text to every subscriber. */
void ipc_publish(struct quorumd *d, const char *json);

/* A local process holding the lease (struct ipc_client of ipc.c). */
struct ipc_holder {
	bool holder;
	char role[32];
	char what[256];
	bool told_fence;             /* sent fence: true */
	bool stopped;                /* said it stopped (or never started) */
	bool killed;
	uint64_t killed_ms;
	bool stuck_logged;           /* said it outlives its SIGKILL */
	uint64_t pushed_ms;          /* the last lease message */
};
/* Iterates over the holders: returns the next after cl (NULL: the first),
 * with its pid and its holder record. */
struct ipc_client *ipc_next_holder(struct quorumd *d, struct ipc_client *cl, pid_t *ret_pid,
				   struct ipc_holder **ret_h);
/* Sends a lease message to one holder; false when it cannot be sent. */
bool ipc_send_lease(struct ipc_client *cl, const char *json);
