/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The disk heartbeat of one volume: a thread of its own (so that a hung
 * SAN path stalls it and never the daemon's loop) that every interval
 * writes and flushes this node's heartbeat block in the volume's cluster
 * area, then reads every slot's block and notes when each one changed.
 * Failures are recorded, never fatal: the thread reopens the volume at the
 * next round. The loop copies the thread's findings under a mutex. */
#pragma once

#include <stdint.h>

#include "state.h"

struct hb_volume;

struct hb_config {
	const char *spec;        /* path or NBD URI */
	uint32_t node_id;
	uint32_t slot;
	uint32_t interval_ms;
	const char *node_name;
};

/* Checks once that spec opens as a csvfs volume whose cluster area has
 * the slot, free or already node_id's, giving up after timeout_ms (the
 * probe runs in a thread of its own). err receives a sentence. Returns 0,
 * the open or read error (a negative errno), -ERANGE for a slot beyond the
 * volume's slots, -EEXIST for a slot of another node, or -ETIMEDOUT. */
int hb_probe(const char *spec, uint32_t slot, uint32_t node_id, unsigned timeout_ms, char *err, size_t errlen);

/* Starts the thread of one volume. */
int hb_start(const struct hb_config *cfg, struct hb_volume **ret);

/* What the loop asks of the thread, taken at its next round. */
struct hb_control {
	bool fenced;             /* write CSV_HB_FENCED: this node's I/O is stopped */
	uint64_t fence_ack_seq;  /* the fence request acknowledged */
	bool witness;            /* run the disk witness of this volume */
	bool witness_want;       /* take it when free or not renewed for its lease */
	uint32_t witness_lease_ms;
	uint32_t nrequests;      /* fence requests to write, once each */
	struct {
		uint32_t slot;
		uint64_t seq;
	} requests[Q_MAX_NODES];
};

/* Hands the thread what the loop wants of it. */
void hb_set_control(struct hb_volume *h, const struct hb_control *c);

/* Copies what the thread found into out (under its mutex). */
void hb_read(struct hb_volume *h, struct q_volume *out);

/* Asks the thread to stop: it writes a last heartbeat without
 * CSV_HB_RUNNING and closes the volume. Waits up to timeout_ms for it;
 * returns 0, or -ETIMEDOUT when the thread is stuck in I/O (h is then
 * left to it, not freed). */
int hb_stop(struct hb_volume *h, unsigned timeout_ms);
