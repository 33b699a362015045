/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A client of QEMU's machine protocol (QMP): JSON objects, one a line,
 * over a unix socket. Every command carries an "id" that QEMU echoes in
 * its reply, so that replies are matched to their commands whatever comes
 * in between (events, the late reply of a command whose caller gave up).
 *
 * A command is either sent and waited for (qmp_call, with a timeout, for
 * the short exchanges of a request), or sent with a callback
 * (qmp_send), whose reply qmp_dispatch delivers when the socket is
 * readable: the caller registers qmp_fd() in its event loop. A callback
 * may send (qmp_send) but not wait (qmp_call, refused with -EBUSY there),
 * dispatch or close the connection. Nothing here logs; errors come back
 * as a negative errno with a sentence. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

struct qmp;

/* The reply to a command sent with qmp_send: error 0 with ret (the
 * "return" member, owned by the caller of the callback: get it to keep
 * it), or a negative errno with a sentence in desc (-EIO: QEMU refused
 * the command, desc is its "desc"; -ECONNRESET: the connection broke
 * before the reply came). */
typedef void (*qmp_reply_fn)(void *data, int error, struct json_object *ret, const char *desc);
/* An event: its name and its "data" member (may be NULL). */
typedef void (*qmp_event_fn)(void *data, const char *event, struct json_object *event_data);

/* Connects to the QMP socket at path and returns at once: QEMU's greeting
 * and the answer to qmp_capabilities, which this client sends when the
 * greeting comes, arrive through qmp_dispatch, after which qmp_ready()
 * is true. Returns 0 and the connection (its socket non-blocking), or a
 * negative errno with err saying what went wrong: -ENOENT or
 * -ECONNREFUSED when nobody serves the socket yet. */
int qmp_open(const char *path, qmp_event_fn on_event, void *event_data, struct qmp **ret, char *err,
	     size_t errlen);
/* qmp_open, then waits up to timeout_ms until the connection is ready. */
int qmp_connect(const char *path, int timeout_ms, qmp_event_fn on_event, void *event_data, struct qmp **ret,
		char *err, size_t errlen);
/* Whether QEMU has accepted commands (qmp_capabilities answered). */
bool qmp_ready(const struct qmp *q);

/* Closes the connection and frees it; the callbacks of the commands still
 * waiting are called with -ECONNRESET first. NULL is fine. */
void qmp_close(struct qmp *q);

int qmp_fd(const struct qmp *q);
/* Whether the connection still works (no EOF, no error, no garbage). */
bool qmp_alive(const struct qmp *q);

/* Sends command cmd with args (a JSON object, consumed; may be NULL) on a
 * ready connection and waits up to timeout_ms for its reply, delivering the events and the
 * replies of other commands that come first. Returns 0 and, when ret is
 * given, the "return" member (the caller puts it); -EIO with err set to
 * QEMU's description when QEMU refuses the command; -ETIMEDOUT;
 * -ECONNRESET when the connection broke. */
int qmp_call(struct qmp *q, const char *cmd, struct json_object *args, int timeout_ms, struct json_object **ret,
	     char *err, size_t errlen);

/* qmp_call, with the descriptor fd passed along (SCM_RIGHTS), as QEMU's
 * getfd and add-fd want it; fd stays open here. */
int qmp_call_fd(struct qmp *q, const char *cmd, struct json_object *args, int fd, int timeout_ms,
		struct json_object **ret, char *err, size_t errlen);

/* Sends command cmd with args (consumed; may be NULL) and returns at once;
 * fn (may be NULL) gets the reply. Returns 0, or a negative errno (the
 * connection is broken or not ready, or too many commands wait) and then
 * fn is not called. */
int qmp_send(struct qmp *q, const char *cmd, struct json_object *args, qmp_reply_fn fn, void *data);

/* Reads what the socket has and delivers the complete replies and events.
 * Returns 0, or -ECONNRESET once the connection is broken (EOF, an error,
 * a line that is not JSON). */
int qmp_dispatch(struct qmp *q);

/* How long, in ms, the oldest command sent with qmp_send has waited for
 * its reply; 0 when none waits. now_ns is CLOCK_MONOTONIC. */
uint64_t qmp_oldest_wait_ms(const struct qmp *q, uint64_t now_ns);

/* Forgets the callbacks that were given data (a VM that goes away): their
 * replies are dropped when they come. */
void qmp_forget(struct qmp *q, void *data);
