/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ipc-client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <qb/qbipc_common.h>
#include <qb/qbipcc.h>

/* Connects to endpoint; NULL with err and *r set when it cannot. */
static qb_ipcc_connection_t *connect_to(const char *daemon, const char *endpoint, size_t max_msg, int *r,
					char *err, size_t errlen)
{
	qb_ipcc_connection_t *c = qb_ipcc_connect(endpoint, max_msg);
	if (c)
		return c;
	if (errno == EACCES || errno == EPERM) {
		snprintf(err, errlen, "%s refuses this process its IPC endpoint %s: %s", daemon, endpoint,
			 strerror(errno));
		*r = -EACCES;
	} else {
		snprintf(err, errlen, "%s is not running (no IPC endpoint %s)", daemon, endpoint);
		*r = -ECONNREFUSED;
	}
	return NULL;
}

int ipc_call(const char *daemon, const char *endpoint, size_t max_msg, int32_t id, struct json_object *body,
	     int timeout_ms, int32_t *ret_error, struct json_object **ret_reply, char *err, size_t errlen)
{
	const char *text = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
	size_t blen = strlen(text) + 1;  /* the NUL goes with the text */
	struct qb_ipc_request_header h = { .id = id, .size = (int32_t)(sizeof(h) + blen) };
	struct qb_ipc_response_header rh;
	int r = 0;
	err[0] = '\0';
	if (sizeof(h) + blen > max_msg) {
		snprintf(err, errlen, "the request to %s is too long (%zu bytes)", daemon, blen);
		return -EMSGSIZE;
	}
	char *buf = malloc(max_msg + 1);
	if (!buf) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	qb_ipcc_connection_t *c = connect_to(daemon, endpoint, max_msg, &r, err, errlen);
	if (!c) {
		free(buf);
		return r;
	}
	struct iovec iov[2] = {
		{ .iov_base = &h, .iov_len = sizeof(h) },
		{ .iov_base = (void *)text, .iov_len = blen },
	};
	ssize_t n = qb_ipcc_sendv_recv(c, iov, 2, buf, max_msg, timeout_ms);
	qb_ipcc_disconnect(c);
	if (n == -ETIMEDOUT) {
		snprintf(err, errlen, "%s (IPC endpoint %s) did not answer in %d ms", daemon, endpoint, timeout_ms);
		r = -ETIMEDOUT;
	} else if (n < 0) {
		snprintf(err, errlen, "lost the IPC connection to %s (IPC endpoint %s): %s", daemon, endpoint,
			 strerror((int)-n));
		r = -ECONNRESET;
	} else if ((size_t)n <= sizeof(rh)) {
		snprintf(err, errlen, "%s (IPC endpoint %s) sent a short reply (%zd bytes)", daemon, endpoint, n);
		r = -EBADMSG;
	}
	if (r < 0) {
		free(buf);
		return r;
	}
	buf[n] = '\0';
	memcpy(&rh, buf, sizeof(rh));
	struct json_object *o = json_tokener_parse(buf + sizeof(rh));
	free(buf);
	if (!o) {
		snprintf(err, errlen, "%s (IPC endpoint %s) sent a reply that is not JSON", daemon, endpoint);
		return -EBADMSG;
	}
	struct json_object *e = NULL;
	if (json_object_object_get_ex(o, "error", &e) && json_object_is_type(e, json_type_string))
		snprintf(err, errlen, "%s", json_object_get_string(e));
	*ret_error = rh.error;
	*ret_reply = o;
	return 0;
}
