/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The csvfs client's one connection to the coordinator of its volume:
 * handshake, then synchronous request/reply from any FUSE worker thread.
 * A reader thread matches replies to requests by id and hands callbacks
 * (INVAL_ENTRY, INVAL_INODE, ...) to a callback thread, which turns them
 * into fuse_lowlevel_notify_inval_*() and replies to them. The callback
 * thread is separate so that a notification waiting on a kernel lock held
 * by a request in progress never stops the replies that request needs. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

struct fuse_session;
struct client_conn;

struct client_conn_params {
	const char *host;
	const char *port;
	const char *keyfile;
	uint32_t node_id;
	uint8_t volume_uuid[CSV_WIRE_UUID_SIZE];
};

/* Connects and handshakes (blocking, bounded). err receives the reason. */
int client_conn_open(const struct client_conn_params *p, struct client_conn **ret,
		     struct csv_wire_welcome *ret_welcome, char *err, size_t errlen);
/* Starts the reader and callback threads (after fuse_daemonize()); se is
 * where invalidations go. */
int client_conn_start(struct client_conn *cc, struct fuse_session *se);
void client_conn_close(struct client_conn *cc);

/* The request id and epoch to encode a request with. */
uint64_t client_conn_next_id(struct client_conn *cc);
uint64_t client_conn_epoch(struct client_conn *cc);

/* Sends the encoded request f (taken over) and waits for its reply.
 * Returns the reply's status (0 or -errno), or -EIO when the connection
 * failed. On status 0 with ret_buf, *ret_buf (malloc'd) and *ret_len hold
 * the whole reply frame. */
int client_conn_call(struct client_conn *cc, struct csv_wire_frame *f, uint8_t **ret_buf, size_t *ret_len);
