/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The state of csv-quorumd as JSON text: the snapshot that local clients
 * ask for, and the events pushed to subscribers. The format is described
 * in csv-quorumd(8). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "state.h"

/* Bumped when a field changes meaning or goes away (added fields do not). */
#define Q_SNAPSHOT_VERSION 1

/* The caller of an IPC request, as the daemon judged it. */
struct q_client {
	uid_t uid;
	gid_t gid;
	bool may_change;
};

/* The whole state at now_ms; client (optional) is shown back to the
 * caller. NULL on no memory. */
struct json_object *q_snapshot_json(const struct q_state *st, uint64_t now_ms, const struct q_client *client);

/* One event at now_ms. NULL on no memory. */
struct json_object *q_event_json(const struct q_state *st, const struct q_event *ev, uint64_t now_ms,
				 uint64_t wall_ns);

/* The text of obj on one line, as a malloc'd string; NULL on no memory. */
char *q_json_text(struct json_object *obj);

/* Copies a string from the disk or the network into out (len bytes,
 * always NUL-terminated), replacing each byte that is not part of valid
 * UTF-8 with '?': JSON text must be UTF-8, and json-c escapes quotes,
 * backslashes and control characters but passes other bytes through. */
void q_text_clean(const char *in, char *out, size_t len);
