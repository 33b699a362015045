/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The local IPC of csv-rmd (libqb, shared memory), used by csvctl and the
 * csvfs clients of the node. A request is a struct qb_ipc_request_header
 * whose id is one of CSVR_REQ_*, followed by a NUL-terminated JSON text
 * (an empty object where a request takes nothing); a response is a
 * struct qb_ipc_response_header (id CSVR_RES_*, error 0 or a negative
 * errno) followed by a NUL-terminated JSON text. A response with an error
 * carries {"error": "what went wrong, in words"}. See csv-rmd(8).
 *
 * Anyone may read (STATE, LOCATE); only root or the cluster admin group
 * may change anything (MOVE, REDIRECT: -EPERM otherwise). A csvfs client
 * runs as root and reports its access with LOCATE. */
#pragma once

#define CSVR_IPC_DEFAULT_NAME "csv-rmd"
#define CSVR_IPC_MAX_MSG (1024 * 1024)

enum {
	/* {} -> the replicated state as this node knows it:
	 * {"version": 1, "node_id": N, "leader": N|null, "quorate": bool,
	 *  "state_version": N,
	 *  "nodes": [{"id": N, "name": "...", "address": "..."|null,
	 *             "member": bool (csv-rmd of the node is in the group),
	 *             "quorate": bool, "fence": "none"|"pending"|"fenced",
	 *             "admin": "active"|"paused",
	 *             "roles": ["VOLUME", ...]}],
	 *  "volumes": [{"name": "...", "uuid": "..."|null, "port": N,
	 *               "holder": N|null, "phase": PHASE, "reason": "...",
	 *               "epoch": N (of the last coordinator start; 0 none),
	 *               "coordinator": "HOST:PORT"|null (while running),
	 *               "redirect": bool (file-system redirected mode),
	 *               "moves": N,
	 *               "nodes": [{"id": N, "san": "ok"|"lost"|"unknown",
	 *                          "access": ACCESS, "reason": "..."}]}],
	 *  "client": {"uid": N, "gid": N, "may_change": bool}}
	 * PHASE: "running" (the holder serves), "starting" (the holder was
	 * told to start), "stopping" (the holder was told to stop, for a move),
	 * "waiting-fence" (the holder was lost: waiting until it is fenced),
	 * "unplaced" (no node may hold it now; reason says why).
	 * ACCESS (as the node's csvfs client reports it): "direct",
	 * "block-redirected", "fs-redirected", "paused", or "unavailable"
	 * (no csvfs client reports, or the node is not a member). */
	CSVR_REQ_STATE = 1,
	/* {"volume": NAME|UUID, "access": ACCESS, "reason": "..."} (access and
	 * reason are optional: a csvfs client reports its own every time it
	 * asks) -> {"volume": NAME, "uuid": "...", "node": N,
	 * "host": "...", "port": N, "epoch": N, "redirect": bool}.
	 * -ENOENT: no such volume; -EAGAIN: no coordinator serves it right now
	 * (the response still carries "volume", "redirect" and "error"). */
	CSVR_REQ_LOCATE = 2,
	/* {"volume": NAME|UUID, "to": N} -> {"message": "..."}: the
	 * coordinator role moves to node N (stopped on its holder, then started
	 * on N with a new epoch). Returns at once; csvctl follows the state.
	 * -ENOENT: no such volume or node; -EINVAL: node N cannot hold it now
	 * (the error says why); -EAGAIN: this node is not quorate. */
	CSVR_REQ_MOVE = 3,
	/* {"volume": NAME|UUID, "on": bool} -> {"message": "..."}: file-system
	 * redirected mode of the volume on or off, on every node. */
	CSVR_REQ_REDIRECT = 4,
};

enum {
	CSVR_RES_STATE = 1,
	CSVR_RES_LOCATE = 2,
	CSVR_RES_MOVE = 3,
	CSVR_RES_REDIRECT = 4,
};
