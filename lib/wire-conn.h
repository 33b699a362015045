/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A framed connection of the wire protocol over a stream socket: a read
 * buffer that yields whole frames, a write queue, request ids, and a
 * description of the peer for log lines.
 *
 * Nothing here blocks unless its name says _wait: reads and writes use
 * MSG_DONTWAIT whatever the mode of the fd, so a connection works the same
 * in a poll/epoll loop (level-triggered) and in a client thread that
 * blocks with the _wait helpers. A connection is not thread-safe: one
 * thread at a time, or a lock around every call.
 *
 * After an error of the socket or of framing (a frame with a wrong magic or
 * a length outside 48..CSV_WIRE_FRAME_MAX, which is refused before any
 * buffer is sized for it; the peer closing) the connection is broken:
 * every later call returns the same error, and csv_wire_conn_error() says
 * what happened, naming the peer. The owner then frees it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

struct csv_wire_conn;

/* Called for each whole frame: frame points to len bytes (the header
 * included) that stay valid until the callback returns. The frame has
 * passed csv_wire_frame_peek() only: decode it with wire.h. Return 0 to go
 * on, > 0 to stop reading after this frame (the rest stays buffered), < 0
 * to stop and have csv_wire_conn_read() return that error (the connection
 * is not marked broken: the owner decides). The callback may queue and
 * flush frames on the connection; it must not read from it or free it. */
typedef int (*csv_wire_frame_fn)(struct csv_wire_conn *c, const void *frame, size_t len,
				 void *userdata);

/* Called once for each queued frame: status 0 when its last byte went to
 * the socket, or a negative errno when it was dropped (connection broken
 * or freed: -ECANCELED). Until then, the data a DATA_WRITE request or a
 * DATA_READ reply references must stay valid. */
typedef void (*csv_wire_sent_fn)(struct csv_wire_conn *c, int status, void *userdata);

/* Bytes read from the socket in one csv_wire_conn_read() at most, so that
 * one busy peer cannot starve the others of an event loop. */
#define CSV_WIRE_CONN_READ_BUDGET (4u << 20)

/* Wraps a connected stream socket; the connection owns fd from then on
 * (even on failure, fd is closed). The peer is described from
 * getpeername(): "10.0.0.2:7788", "[fd00::2]:7788", "unix:/run/x.sock" or
 * "local socket". The first request id is random (never 0). */
int csv_wire_conn_new(int fd, struct csv_wire_conn **ret);
/* Closes the fd; frames still queued are dropped (their sent callbacks
 * run with -ECANCELED). NULL is allowed. */
void csv_wire_conn_free(struct csv_wire_conn *c);

int csv_wire_conn_fd(const struct csv_wire_conn *c);

/* "10.0.0.2:7788 (node 3)": the address, and the node id once known.
 * For log lines: "LOOKUP from %s failed: ...". */
const char *csv_wire_conn_peer(const struct csv_wire_conn *c);
/* Replaces the address part of the description (e.g. with a host name). */
int csv_wire_conn_set_peer_name(struct csv_wire_conn *c, const char *name);
/* Sets the node id (wire-auth does it once the peer has proved it). */
void csv_wire_conn_set_peer_node(struct csv_wire_conn *c, uint32_t node_id);
uint32_t csv_wire_conn_peer_node(const struct csv_wire_conn *c);

/* Request ids (on a client connection) or callback ids (on a coordinator
 * connection): increasing, never 0. A client that reconnects carries its
 * counter over (peek on the old connection, set on the new one), so that
 * an id names one request for the whole life of the client. */
uint64_t csv_wire_conn_next_id(struct csv_wire_conn *c);
uint64_t csv_wire_conn_peek_next_id(const struct csv_wire_conn *c);
void csv_wire_conn_set_next_id(struct csv_wire_conn *c, uint64_t id);

/* Delivers the whole frames already buffered, then reads what the socket
 * has (never blocking, at most CSV_WIRE_CONN_READ_BUDGET bytes) and
 * delivers each frame it completes. Returns the number of frames delivered
 * (0: nothing whole yet), or a negative errno: -EBADMSG for a framing
 * error, -ECONNRESET when the peer closed (between frames or inside one),
 * the errno of recv(), or the callback's error. */
int csv_wire_conn_read(struct csv_wire_conn *c, csv_wire_frame_fn fn, void *userdata);
/* True when a whole frame is buffered: after a callback stopped the read,
 * call csv_wire_conn_read() again without waiting for POLLIN. */
bool csv_wire_conn_has_frame(const struct csv_wire_conn *c);

/* Appends an encoded frame to the write queue and takes it over (*f is
 * left empty); done may be NULL. Nothing is written until a flush. On
 * failure (broken connection, -EINVAL for an empty frame) the frame is
 * left to the caller and done is not called. */
int csv_wire_conn_queue(struct csv_wire_conn *c, struct csv_wire_frame *f,
			csv_wire_sent_fn done, void *userdata);
/* Writes what the socket takes (writev, no copy of data). Returns 0 when
 * the queue is empty, 1 when bytes remain (wait for POLLOUT), or a
 * negative errno (the connection is then broken). */
int csv_wire_conn_flush(struct csv_wire_conn *c);
size_t csv_wire_conn_queued_bytes(const struct csv_wire_conn *c);
/* The events to poll for: POLLIN, and POLLOUT while bytes are queued. */
short csv_wire_conn_events(const struct csv_wire_conn *c);

/* Blocking helpers for a client thread; timeout_ms < 0 waits forever.
 * flush_wait returns 0 once the queue is empty; read_wait returns once at
 * least one frame was delivered (the count), or -ETIMEDOUT. */
int csv_wire_conn_flush_wait(struct csv_wire_conn *c, int timeout_ms);
int csv_wire_conn_read_wait(struct csv_wire_conn *c, int timeout_ms,
			    csv_wire_frame_fn fn, void *userdata);
/* Queues the frame and flushes until it is written. */
int csv_wire_conn_send_wait(struct csv_wire_conn *c, struct csv_wire_frame *f, int timeout_ms);

/* The error that broke the connection, as a sentence naming the peer:
 * "10.0.0.2:7788 (node 3): sent a frame of 4294967295 bytes, more than
 * the maximum of 16777264". Empty while the connection is healthy. */
const char *csv_wire_conn_error(const struct csv_wire_conn *c);
/* The errno that broke it, or 0. */
int csv_wire_conn_broken(const struct csv_wire_conn *c);

/* Counters, for status output. */
uint64_t csv_wire_conn_frames_in(const struct csv_wire_conn *c);
uint64_t csv_wire_conn_frames_out(const struct csv_wire_conn *c);
