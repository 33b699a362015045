/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The attributes a csvfs client last received for each file, so that the
 * kernel's GETATTR (which it sends around every write, having dropped its
 * own copy) needs no request to the coordinator. An entry lives for the
 * attribute timeout at most, on one connection only, and goes at once
 * when the coordinator invalidates the file. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "wire.h"

struct client_attrs;

int client_attrs_new(double timeout_s, struct client_attrs **ret);
void client_attrs_free(struct client_attrs *t);
/* Remembers a, received on connection gen (0: not connected, nothing is
 * remembered). */
void client_attrs_put(struct client_attrs *t, uint64_t gen, const struct csv_wire_attr *a);
/* Copies the attributes of ino if they are known on connection gen and
 * fresh; returns whether it did. */
bool client_attrs_get(struct client_attrs *t, uint64_t gen, uint64_t ino, struct csv_wire_attr *ret);
void client_attrs_forget(struct client_attrs *t, uint64_t ino);
/* Forgets every entry (after a change of this client whose other effects
 * it cannot name: the link count of an unlinked or replaced file). */
void client_attrs_forget_all(struct client_attrs *t);
