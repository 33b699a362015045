/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the files of csvctl share: exit codes, the parsed command line,
 * getters over the JSON the daemons answer, and csvctl's client of csv-rmd
 * (rmd-conn.c). */
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
	char **words;
	int nwords;
};

/* Says what is wrong with the command line, on stderr; returns EXIT_USAGE. */
_printf_(1, 2) int usage_error(const char *fmt, ...);

/* Commands (volume.c, node.c): each returns an exit code. */
int cmd_volume(const struct ctl_args *a);
int cmd_node(const struct ctl_args *a);

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
