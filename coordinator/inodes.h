/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the connected clients hold of each file: open handles and layouts.
 * The coordinator keeps an unlinked file as an orphan while any client
 * still has it open, and recalls the layouts of a file from every other
 * client before it frees or moves clusters of it (truncate, punch hole);
 * the request that needs the recall waits, parked, until every holder has
 * answered the LAYOUT_RECALL or lost its connection. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server.h"

/* Seconds a client has to answer a LAYOUT_RECALL before the coordinator
 * closes its connection (which ends its right to use any layout). */
#define INODES_RECALL_TIMEOUT_S 10

int inodes_init(struct server *s);
void inodes_free(struct server *s);

/* An OPEN of ref by c succeeded. */
int inodes_open(struct server *s, struct conn *c, uint64_t ref);
/* A RELEASE of ref by c: drops one open and, with it, c's layout when it
 * was c's last. Frees the file when it was an orphan and this was the
 * last open in the cluster. */
void inodes_release(struct server *s, struct conn *c, uint64_t ref);
/* True when some client has ref open. */
bool inodes_is_open(struct server *s, uint64_t ref);
/* ref lost its last link while open: free it at the last release. */
void inodes_set_orphan(struct server *s, uint64_t ref);

/* c was given a layout of ref; it returned it (LAYOUT_RETURN). */
int inodes_layout_granted(struct server *s, struct conn *c, uint64_t ref);
void inodes_layout_returned(struct server *s, struct conn *c, uint64_t ref);

/* Before an operation of c that frees or moves clusters of ref: when
 * other clients hold layouts of it, or other requests already wait on
 * it, recalls those layouts, parks the request (a copy of frame) and
 * returns 1; it is served again once they are returned. Returns 0 when
 * the operation may go on now (c's own layout is forgotten: the client
 * drops it before it asks), or a negative errno. */
int inodes_recall(struct server *s, struct conn *c, uint64_t ref, const void *frame, size_t len);
/* Before handing c a layout of ref: parks the request (returns 1) while
 * a recall of ref is in progress; 0 otherwise. */
int inodes_wait_recall(struct server *s, struct conn *c, uint64_t ref, const void *frame, size_t len);

/* The reply of c to callback req_id (a LAYOUT_RECALL, or anything else). */
void inodes_callback_answered(struct server *s, struct conn *c, uint64_t req_id);
/* c is going away: its opens and layouts are dropped, its parked
 * requests discarded, recalls waiting on it completed. */
void inodes_conn_closed(struct server *s, struct conn *c);
