/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The csvfs client's connection to the coordinator of its volume:
 * handshake, then synchronous request/reply from any FUSE worker thread.
 *
 * A reader thread matches replies to requests by id and hands callbacks
 * to three callback threads: one for LAYOUT_RECALL, one for INVAL_INODE
 * and one for INVAL_ENTRY, which they turn into
 * fuse_lowlevel_notify_inval_*(). They are separate threads so that a
 * notification waiting on a kernel lock held by a request in progress (the
 * kernel runs INVAL_ENTRY under the directory's lock) never stops the
 * replies, the recall or the INVAL_INODE answers that request needs.
 *
 * When the connection is lost (the coordinator restarted or moved), the
 * reader reconnects (to where the locator, if any, says it is now), reopens the client's open files, and sends again
 * every request still without a reply, under the new epoch; callers just
 * wait. A caller gives up with -EIO only when no coordinator answered for
 * the reconnect timeout. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

struct fuse_session;
struct client_conn;

/* Where the coordinator is when it is not fixed (csv-rmd moves it): asked
 * before the first connection and before every attempt to reconnect. */
struct client_conn_locator {
	/* Fills host and port with the coordinator's address and returns 0;
	 * or returns a negative errno with err saying why: -EAGAIN or -ENOENT,
	 * there is no coordinator to connect to now; any other, the locator
	 * cannot tell (its daemon is not running), and the last address it
	 * gave is tried again. Called from the reader thread. */
	int (*locate)(void *ud, char *host, size_t hostlen, char *port, size_t portlen, char *err, size_t errlen);
	void *ud;
};

struct client_conn_params {
	const char *host;              /* the coordinator, without a locator */
	const char *port;
	const struct client_conn_locator *locator;  /* NULL: host and port */
	unsigned locate_wait_s;        /* with a locator: how long client_conn_open tries */
	const char *keyfile;
	uint32_t node_id;
	uint8_t volume_uuid[CSV_WIRE_UUID_SIZE];
	unsigned reconnect_timeout_s;  /* how long a request waits for a coordinator */
};

/* What the connection asks of the filesystem side. */
struct client_conn_hooks {
	/* Forget the cached attributes of ino and, with layout, its
	 * cached layout after the I/O using it (INVAL_INODE of data, or a
	 * LAYOUT_RECALL). */
	void (*invalidate)(void *ud, uint64_t ino, bool layout);
	/* Call fn once for every open handle of the client (reclaimed on a
	 * new connection). */
	void (*foreach_open)(void *ud, void (*fn)(void *fud, uint64_t ino), void *fud);
	void *ud;
};

/* Connects and handshakes (blocking, bounded). With a locator, tries
 * again until a coordinator answers, for up to locate_wait_s, except when
 * the locator knows no such volume or the coordinator refuses this client
 * (key, protocol version). err receives the reason. */
int client_conn_open(const struct client_conn_params *p, struct client_conn **ret,
		     struct csv_wire_welcome *ret_welcome, char *err, size_t errlen);
/* Starts the reader and callback threads (after fuse_daemonize()); se is
 * where invalidations go. */
int client_conn_start(struct client_conn *cc, struct fuse_session *se, const struct client_conn_hooks *hooks);
void client_conn_close(struct client_conn *cc);

/* The request id and epoch to encode a request with (the epoch is set
 * again when the request is sent). */
uint64_t client_conn_next_id(struct client_conn *cc);
uint64_t client_conn_epoch(struct client_conn *cc);
/* A coordinator of a newer epoch serves the volume (csv-rmd says so):
 * drops the connection to the old one, which a lost link may keep
 * half-open for long, so that the reader connects again; true if it did. */
bool client_conn_drop_older(struct client_conn *cc, uint64_t epoch);
/* Changes at each new connection; layouts of another generation are void. */
uint64_t client_conn_generation(struct client_conn *cc);

/* Sends the encoded request f (taken over) and waits for its reply.
 * Returns the reply's status (0 or -errno), or -EIO when no coordinator
 * answered in time. On status 0 with ret_buf, *ret_buf (malloc'd) and
 * *ret_len hold the whole reply frame. *ret_resent (when not NULL) says
 * whether the request was sent again on a new connection: a coordinator
 * that restarted may have applied it already without remembering it. */
int client_conn_call(struct client_conn *cc, struct csv_wire_frame *f, uint8_t **ret_buf, size_t *ret_len,
		     bool *ret_resent);
