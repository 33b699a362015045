/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Metadata through the journal: while a metatxn is attached to a volume,
 * every metadata write of the format library (records, index and extent
 * blocks, bitmap blocks) joins the open journal transaction instead of
 * going to the LUN, and reads see the newest image: written in the open
 * transaction, else committed but not yet checkpointed, else the LUN.
 * The coordinator's metadata engine works this way. */
#pragma once

#include "journal.h"
#include "volume.h"

struct csv_metatxn;

/* Attaches a metatxn over journal j to v (v->hook). */
int metatxn_attach(struct csv_volume *v, struct csv_journal *j, struct csv_metatxn **ret);
/* Detaches it from the volume and frees it; an open transaction is aborted. */
void metatxn_detach(struct csv_metatxn *mt);

/* Opens a transaction; metadata writes before it fail with -EINVAL. */
int metatxn_begin(struct csv_metatxn *mt);
/* Commits the open transaction: durable on return. */
int metatxn_commit(struct csv_metatxn *mt);
/* Drops the open transaction and every write made in it. */
void metatxn_abort(struct csv_metatxn *mt);
/* Whether a transaction is open. */
bool metatxn_active(const struct csv_metatxn *mt);
