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

struct r_node {
	uint32_t id;
	bool paused;            /* admin state */
};

struct r_state {
	uint64_t version;       /* raised by every change */
	uint32_t nvolumes, nnodes;
	struct r_volume volumes[R_MAX_VOLUMES];
	struct r_node nodes[R_MAX_NODES];
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
};

/* A starting coordinator that is not running after this is stopped. */
#define R_START_TIMEOUT_MS 30000

/* A decision of the leader: volume `volume` gets this holder, phase and
 * reason; target is cleared when clear_target. */
struct r_decision {
	uint64_t based_on;      /* the state version it was made from */
	char volume[R_NAME_MAX];
	uint32_t holder;
	enum r_phase phase;
	bool clear_target;
	char reason[200];
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

/* Member key of o, or NULL (o may be NULL). */
struct json_object *r_json_get(struct json_object *o, const char *key);
/* Member key of o when it is a string, or NULL. */
const char *r_json_str(struct json_object *o, const char *key);

/* JSON forms: the state (persisted, and sent when nodes join). */
struct json_object *r_state_json(const struct r_state *s);
int r_state_from_json(struct json_object *o, struct r_state *s, char *err, size_t errlen);
