/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Requests to engine calls: decode a request frame, call fs_*, encode the
 * reply. */
#pragma once

#include <stddef.h>

#include "server.h"

/* Serves one request frame (header already decoded into h, epoch already
 * checked) and leaves the reply in *reply. Errors of the operation go into
 * the reply as a status; the return value is 0, or a negative errno when
 * the frame itself is malformed (the caller closes the connection) or no
 * reply could be built, or DISPATCH_PARKED when the request waits for a
 * layout recall (inodes.h) and no reply is to be sent now. */
/* dispatch_request() parked the request: its reply comes later. */
#define DISPATCH_PARKED 1

int dispatch_request(struct conn *c, const struct csv_wire_msghdr *h, const void *frame, size_t len,
		     struct csv_wire_frame *reply);
