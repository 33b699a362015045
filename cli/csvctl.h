/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the files of csvctl share: exit codes, the parsed command line,
 * getters over the JSON the daemons answer, csvctl's client of csv-rmd
 * (rmd-conn.c), the VMs of its state (vm-state.c) and the loop that
 * follows that state after a request (follow.c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>
#include <qb/qbipcc.h>

#include "util.h"

#define PROG "csvctl"

/* Exit codes: 0 done, 1 failed (a daemon not running, a refusal, an
 * unknown volume or node, a wait that ran out), 2 usage. */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* The command line past the options: words[0] is the command, the others
 * its subcommand and arguments. */
struct ctl_args {
	const char *quorumd_name; /* --ipc-name */
	const char *rmd_name;     /* --rmd */
	bool json;                /* --json */
	const char *to;           /* --to NODE, or NULL */
	double wait_s;            /* --wait SECONDS, or < 0 when not given */
	bool start;               /* --start (vm create) */
	bool force;               /* --force (vm stop) */
	const char *kind;         /* "live" (--live), "quick" (--quick) or NULL (vm migrate) */
	bool failback;            /* --failback (node resume) */
	const char *format;       /* --format FORMAT (vm disk add), or NULL */
	char **words;
	int nwords;
};

/* Says what is wrong with the command line, on stderr; returns EXIT_USAGE. */
_printf_(1, 2) int usage_error(const char *fmt, ...);

/* Refuses a number of words other than nwords for command cmd ("vm
 * start"), saying what is missing; 0 when right. The options were checked
 * against the command before it runs (csvctl.c). */
int check_words(const struct ctl_args *a, const char *cmd, int nwords, const char *missing);

/* Commands (volume.c, node.c, vm.c): each returns an exit code. */
int cmd_volume(const struct ctl_args *a);
int cmd_node(const struct ctl_args *a);
int cmd_vm(const struct ctl_args *a);

/* ---- reading JSON ------------------------------------------------------------- */

/* The member key of an object; NULL when o is no object, the key is
 * missing or its value is null. */
static inline struct json_object *get(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;
	if (o && json_object_is_type(o, json_type_object))
		json_object_object_get_ex(o, key, &v);
	return v;
}

static inline const char *gets(struct json_object *o, const char *key, const char *dflt)
{
	struct json_object *v = get(o, key);
	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : dflt;
}

static inline bool has(struct json_object *o, const char *key)
{
	return get(o, key) != NULL;
}

static inline int64_t geti(struct json_object *o, const char *key)
{
	struct json_object *v = get(o, key);
	return v ? json_object_get_int64(v) : 0;
}

static inline bool getb(struct json_object *o, const char *key)
{
	struct json_object *v = get(o, key);
	return v && json_object_get_boolean(v);
}

static inline size_t count(struct json_object *a)
{
	return a && json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
}

static inline struct json_object *at(struct json_object *a, size_t i)
{
	return json_object_array_get_idx(a, i);
}

static inline const char *yesno(bool b)
{
	return b ? "yes" : "no";
}

/* The width of a table column that must hold s too. */
static inline int col_width(int w, const char *s)
{
	int l = (int)strlen(s);
	return l > w ? l : w;
}

/* Prints a JSON value on one line of stdout. */
void print_json(struct json_object *o);

/* ---- csv-rmd (rmd-conn.c) ----------------------------------------------------- */

/* The cluster admin group, whose members may change things as root may. */
#define CTL_ADMIN_GROUP "csvadmin"

struct rmd_conn {
	const char *name; /* its IPC endpoint */
	qb_ipcc_connection_t *conn;
	char *buf; /* CSVR_IPC_MAX_MSG bytes for the responses */
	/* Who may make the next request, for a refusal with -EPERM ("root,
	 * the csvadmin group or the VM's operator groups (ops)"); NULL: root
	 * or the cluster admin group. */
	const char *who_may;
};

/* Each of these says on stderr why it failed, and returns a negative errno. */
int rmd_conn_open(struct rmd_conn *r, const char *name);
void rmd_conn_close(struct rmd_conn *r);

/* Sends request id with body (a JSON object) and returns the response's
 * object. A refusal is printed as "csvctl: cannot WHAT: csv-rmd's words",
 * and says who may when it is -EPERM. */
int rmd_conn_request(struct rmd_conn *r, int32_t id, struct json_object *body, const char *what,
		struct json_object **ret_reply);

/* STATE: the replicated state as this node knows it (checked to be of
 * version 1). */
int rmd_conn_state(struct rmd_conn *r, struct json_object **ret_state);

/* A list command (COMMAND of "volume list", "node list", "vm list"): reads
 * the state, then prints its member key as JSON with --json, else the
 * table print makes of the state. Returns the exit code. */
int rmd_list_command(const struct ctl_args *a, const char *command, const char *key,
		     void (*print)(struct json_object *state));

/* A volume of the state by its name or UUID; -ENOENT with "no volume ARG
 * (known: ...)". */
int state_find_volume(struct json_object *state, const char *arg, struct json_object **ret_volume);

/* The volume named as v is (its name, else its UUID): to find it again in
 * a later state, or to name it in a request. */
const char *volume_key(struct json_object *v);

/* A node of the state by its id or name; -ENOENT with "no node ARG
 * (known: ...)". */
int state_find_node(struct json_object *state, const char *arg, int64_t *ret_id);

/* The node of the state with this id, or NULL. */
struct json_object *state_node(struct json_object *state, int64_t id);

/* "node1", or "node 3" for a node without a name in the state. */
const char *node_name(struct json_object *state, int64_t id, char *buf, size_t len);

/* ---- VMs of the state (vm-state.c) ---------------------------------------------- */

/* The VM of the state with this name, or NULL. */
struct json_object *state_vm(struct json_object *state, const char *name);

/* A VM of the state by its name; -ENOENT with "no VM ARG (known: ...)". */
int state_find_vm(struct json_object *state, const char *arg, struct json_object **ret_vm);

/* The VM's node ("node"), or -1 when it has none; the same for "target". */
int64_t vm_node(struct json_object *vm);
int64_t vm_target(struct json_object *vm);

/* Whether the VM is in this phase. */
bool vm_in(struct json_object *vm, const char *phase);

/* Where the VM is, in words: "running on node2", "migrating (live) from
 * node1 to node2", "waiting until node1 is fenced", "stopped". */
const char *vm_where(struct json_object *state, struct json_object *vm, char *buf, size_t len);

/* " (REASON)" when the VM has a reason, else "". */
const char *vm_why(struct json_object *vm, char *buf, size_t len);

/* Prints "VM: WHERE (REASON) (T s)" on stderr when its want, phase, node,
 * target, migration or reason differs from prev (NULL: the first time);
 * t0: when the request was sent. */
void vm_progress(struct json_object *state, struct json_object *prev, struct json_object *vm, uint64_t t0);

/* ---- following the state (follow.c) ---------------------------------------------- */

/* A wait on the state of csv-rmd after a request: follow() asks for the
 * state every FOLLOW_POLL_MS and hands it to step() until step() says the
 * wait is over or wait_s runs out. */
struct follow {
	struct rmd_conn *r;
	double wait_s;
	uint64_t t0;      /* monotonic_ns() when the request was sent */
	const char *goal; /* "vm1 is not running on node2": said when the time runs out */
	/* Looks at the state (prev: the one before, NULL the first time),
	 * prints what changed on stderr; returns 1 when the wait is over, 0
	 * when not yet (with what it is now in f->now, "it is stopping on
	 * node1"), or a negative errno when it failed, having said why. */
	int (*step)(struct follow *f, struct json_object *prev, struct json_object *state);
	void *data;       /* the step's own */
	char now[1024];
	struct json_object *state; /* the last state read, or NULL; the caller puts it */
};

/* 0 when step() said done; a negative errno when it failed, the state could
 * not be read, or the time ran out (said on stderr). */
int follow(struct follow *f);

/* Seconds since t0 (monotonic_ns()). */
double elapsed_s(uint64_t t0);

/* Adds key: v to the body of a request; false when v is NULL (no memory). */
static inline bool body_add(struct json_object *body, const char *key, struct json_object *v)
{
	if (!v)
		return false;
	if (json_object_object_add(body, key, v) < 0) {
		json_object_put(v);
		return false;
	}
	return true;
}

/* Sends a request (r->who_may for a refusal) and says csv-rmd's answer:
 * with --json and nothing to wait for, the answer itself on stdout; else
 * its message, on stdout, or on stderr with --json since the object
 * followed is printed at the end. An exit code. */
int request_say(struct rmd_conn *r, const struct ctl_args *a, int32_t id, struct json_object *body, const char *what,
		bool waits);
