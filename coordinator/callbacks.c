/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <string.h>

#include "callbacks.h"

/* Sends a callback to every authenticated client but origin; counted
 * ones are INVAL_INODE, whose answers the origin's reply waits for. */
static void broadcast(struct server *s, struct conn *origin, const char *what, bool counted,
		      int (*enc)(struct csv_wire_frame *, struct conn *, const void *), const void *m)
{
	struct conn *c, *next;
	for (c = s->conns; c; c = next) {
		next = c->next;  /* server_send() may close c */
		if (c == origin || !c->authed)
			continue;
		struct csv_wire_frame f = { 0 };
		int r = enc(&f, c, m);
		if (r < 0) {
			connlog(c, LOG_ERR, "cannot encode %s callback: %s", what, strerror(-r));
			continue;
		}
		if (counted)
			c->inval_sent++;
		server_send(c, &f);
	}
}

static int enc_entry(struct csv_wire_frame *f, struct conn *c, const void *m)
{
	return csv_wire_inval_entry_encode(f, csv_wire_conn_next_id(c->wc), c->s->epoch, m);
}

static int enc_inode(struct csv_wire_frame *f, struct conn *c, const void *m)
{
	return csv_wire_inval_inode_encode(f, csv_wire_conn_next_id(c->wc), c->s->epoch, m);
}

void callbacks_inval_entry(struct server *s, struct conn *origin, uint64_t parent, const char *name)
{
	struct csv_wire_entry_req m = { .parent = parent };
	if (csv_wire_name_set(&m.name, name) < 0)
		return;
	broadcast(s, origin, "INVAL_ENTRY", false, enc_entry, &m);
}

void callbacks_inval_inode(struct server *s, struct conn *origin, uint64_t ino)
{
	struct csv_wire_inval_inode m = { .ino = ino, .offset = -1, .length = 0 };
	broadcast(s, origin, "INVAL_INODE", true, enc_inode, &m);
}

void callbacks_inval_data(struct server *s, struct conn *origin, uint64_t ino)
{
	struct csv_wire_inval_inode m = { .ino = ino, .offset = 0, .length = 0 };
	broadcast(s, origin, "INVAL_INODE", true, enc_inode, &m);
}
