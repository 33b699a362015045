/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Invalidation callbacks: after a change, tell the other connected clients
 * to drop what they cached of it. */
#pragma once

#include <stdint.h>

#include "server.h"

/* INVAL_ENTRY(parent, name) to every authenticated client but origin. */
void callbacks_inval_entry(struct server *s, struct conn *origin, uint64_t parent, const char *name);
/* INVAL_INODE(ino, attributes only) to every authenticated client but origin. */
void callbacks_inval_inode(struct server *s, struct conn *origin, uint64_t ino);
/* INVAL_INODE(ino, attributes and cached data, layouts with them) to every
 * authenticated client but origin: after the file's data or its mapping
 * changed. */
void callbacks_inval_data(struct server *s, struct conn *origin, uint64_t ino);
