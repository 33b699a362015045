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
};

enum {
	CSVQ_RES_SNAPSHOT = 1,
	CSVQ_RES_SUBSCRIBE = 2,
	CSVQ_EVENT = 3,
};
