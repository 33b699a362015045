/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The coordinator's network side: the listening socket, the connections
 * (handshake, then requests), the reply cache, all in one libqb loop. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <qb/qbloop.h>
#include <qb/qblog.h>

#include "wire-auth.h"
#include "wire-conn.h"
#include "wire.h"

struct csv_fs;
struct csv_journal;
struct held_reply;
struct csv_volume;
struct reply_cache;
struct inodes;

/* The longest a reply waits for other clients to answer the INVAL_INODE
 * callbacks sent before it. */
#define SERVER_INVAL_WAIT_MS 1000
/* Seconds a client has to finish the handshake. */
#define SERVER_HANDSHAKE_TIMEOUT_S 10
/* Replies remembered per client node. */
#define SERVER_REPLY_CACHE_SIZE 1024

struct conn {
	struct server *s;
	struct csv_wire_conn *wc;
	struct csv_wire_auth *auth;   /* until the handshake is done */
	qb_loop_timer_handle hs_timer;
	bool hs_timer_armed;
	bool authed;
	uint32_t node;                /* the client's node id, once authed */
	short events;                 /* what the loop polls for */
	bool dead;                    /* to be closed: reason says why */
	uint64_t inval_sent;          /* INVAL_INODE callbacks sent to it */
	uint64_t inval_answered;      /* and answered */
	bool inval_silent;            /* missed SERVER_INVAL_WAIT_MS: not waited for until it answers */
	char reason[256];
	struct conn *prev, *next;
};

struct server {
	qb_loop_t *loop;
	struct csv_volume *v;
	struct csv_fs *fs;
	struct csv_journal *j;        /* commits flushed in batches by the server */
	struct held_reply *held, *held_tail; /* replies waiting for that flush */
	bool sync_scheduled;
	qb_loop_timer_handle sync_timer;
	struct held_reply *acking;    /* durable, waiting for invalidations to be answered */
	bool ack_timer_armed;
	qb_loop_timer_handle ack_timer;
	struct csv_wire_key key;
	uint32_t node_id;
	uint64_t epoch;
	char volname[128];            /* "label (uuid)" or "uuid", for log lines */
	struct csv_wire_welcome welcome;
	uint64_t root_ino;
	int listen_fd;
	struct conn *conns;
	struct reply_cache *caches;
	struct inodes *inodes;        /* opens and layouts of the clients */
	uint64_t requests;
	qb_loop_timer_handle epoch_timer;
	bool superseded;              /* another coordinator took a newer epoch */
};

/* Log lines name the volume and, where there is one, the peer. */
#define vlog(s, prio, fmt, ...) qb_log(prio, "volume %s: " fmt, (s)->volname, ##__VA_ARGS__)
#define connlog(c, prio, fmt, ...) \
	qb_log(prio, "volume %s: %s: " fmt, (c)->s->volname, csv_wire_conn_peer((c)->wc), ##__VA_ARGS__)

/* Binds and listens on "HOST:PORT" and adds the socket to the loop; err
 * names the problem (address in use, bad address). */
int server_listen(struct server *s, const char *hostport, char *err, size_t errlen);
/* Closes every connection and the listening socket; frees the caches. */
void server_shutdown(struct server *s);

/* Queues a frame on a connection (taking it over), flushes and updates
 * what the loop polls for. On failure the connection is closed. */
int server_send(struct conn *c, struct csv_wire_frame *f);
/* Marks c to be closed at the loop's next turn, logging reason. */
void server_kill(struct conn *c, const char *reason);
/* Serves a request frame of c again (one that waited for a recall). */
void server_serve(struct conn *c, const void *frame, size_t len);
