/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The local IPC of csv-quorumd (libqb, shared memory), used by csvctl and
 * by the other daemons of the node. A request is a struct
 * qb_ipc_request_header whose id is one of CSVQ_REQ_*; a response is a
 * struct qb_ipc_response_header (id CSVQ_RES_*, error 0 or a negative
 * errno) followed by a NUL-terminated UTF-8 JSON text. Events pushed to a
 * subscriber have the same form with id CSVQ_EVENT. See csv-quorumd(8). */
#pragma once

#define CSVQ_IPC_DEFAULT_NAME "csv-quorumd"
/* The largest message either side sends (a snapshot of 64 nodes and 16
 * volumes fits many times over). */
#define CSVQ_IPC_MAX_MSG (1024 * 1024)

enum {
	CSVQ_REQ_SNAPSHOT = 1,  /* reply: the whole state */
	CSVQ_REQ_SUBSCRIBE = 2, /* reply: the whole state; then events */
	/* A process that acts on the shared volumes (a csvfs client, a
	 * coordinator, a VM) holds this node's lease: the request carries
	 * {"role": "...", "what": "..."}; the reply and then CSVQ_LEASE events
	 * carry the lease (see below). Root or the admin group only. */
	CSVQ_REQ_LEASE_HOLD = 3,
	/* The holder has stopped all its I/O after a fence: reply the lease. */
	CSVQ_REQ_LEASE_STOPPED = 4,
};

enum {
	CSVQ_RES_SNAPSHOT = 1,
	CSVQ_RES_SUBSCRIBE = 2,
	CSVQ_EVENT = 3,
	CSVQ_RES_LEASE = 4,
	/* {"valid": bool, "valid_ms": N, "fence": bool, "reason": "..."}:
	 * the holder may issue I/O for valid_ms from its receipt (the lease
	 * less a margin); fence true: stop all I/O now, then send
	 * CSVQ_REQ_LEASE_STOPPED, or be killed when the lease runs out. A
	 * later message with valid true lets it resume. Sent at every change
	 * and at least every quarter of the lease while it is valid. */
	CSVQ_LEASE = 5,
};
