/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "rmd-client.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <json-c/json.h>
#include <qb/qbipcc.h>
#include <qb/qbipc_common.h>

#include "rmd-ipc.h"
#include "util.h"

/* A LOCATE reply is a few hundred bytes. */
#define RMD_REPLY_MAX (64 * 1024)

static void disconnectp(qb_ipcc_connection_t **c)
{
	if (*c)
		qb_ipcc_disconnect(*c);
}

static void json_putp(struct json_object **o)
{
	json_object_put(*o);
}

/* Sends request id with body (a JSON text) and takes the reply into buf
 * (NUL-terminated). Returns the reply's length, or a negative errno of
 * the transport with err set. */
static ssize_t exchange(const char *ipc_name, int32_t id, const char *body, char *buf, size_t len, char *err,
			size_t errlen)
{
	_cleanup_(disconnectp) qb_ipcc_connection_t *c = qb_ipcc_connect(ipc_name, CSVR_IPC_MAX_MSG);
	if (!c) {
		if (errno == EACCES || errno == EPERM) {
			snprintf(err, errlen, "csv-rmd refuses this process its IPC endpoint %s: %s", ipc_name,
				 strerror(errno));
			return -EACCES;
		}
		snprintf(err, errlen, "csv-rmd is not running (no IPC endpoint %s)", ipc_name);
		return -ECONNREFUSED;
	}
	struct qb_ipc_request_header h = { .id = id };
	size_t blen = strlen(body) + 1;  /* the NUL goes with the text */
	struct iovec iov[2] = {
		{ .iov_base = &h, .iov_len = sizeof(h) },
		{ .iov_base = (void *)body, .iov_len = blen },
	};
	if (sizeof(h) + blen > CSVR_IPC_MAX_MSG) {
		snprintf(err, errlen, "the request to csv-rmd is too long (%zu bytes)", blen);
		return -EMSGSIZE;
	}
	h.size = (int32_t)(sizeof(h) + blen);
	ssize_t n = qb_ipcc_sendv_recv(c, iov, 2, buf, len - 1, RMD_CLIENT_TIMEOUT_MS);
	if (n == -ETIMEDOUT) {
		snprintf(err, errlen, "csv-rmd (IPC endpoint %s) did not answer in %u ms", ipc_name,
			 RMD_CLIENT_TIMEOUT_MS);
		return -ETIMEDOUT;
	}
	if (n < 0) {
		/* Not the transport's errno as it is: -EAGAIN and -ENOENT mean
		 * something else in a reply. */
		snprintf(err, errlen, "lost the IPC connection to csv-rmd (IPC endpoint %s): %s", ipc_name,
			 strerror((int)-n));
		return -ECONNRESET;
	}
	buf[n] = '\0';
	return n;
}

/* Copies the string member key of o into dst. */
static int get_string(struct json_object *o, const char *key, bool required, char *dst, size_t len,
		      const char **why)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null)) {
		if (required)
			*why = key;
		return required ? -EBADMSG : 0;
	}
	if (!json_object_is_type(v, json_type_string) || (size_t)json_object_get_string_len(v) >= len ||
	    (required && json_object_get_string_len(v) == 0)) {
		*why = key;
		return -EBADMSG;
	}
	snprintf(dst, len, "%s", json_object_get_string(v));
	return 0;
}

static int get_uint(struct json_object *o, const char *key, uint64_t min, uint64_t max, uint64_t *ret,
		    const char **why)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int)) {
		*why = key;
		return -EBADMSG;
	}
	int64_t x = json_object_get_int64(v);
	if (x < 0 || (uint64_t)x < min || (uint64_t)x > max) {
		*why = key;
		return -EBADMSG;
	}
	*ret = (uint64_t)x;
	return 0;
}

static int get_bool(struct json_object *o, const char *key, bool *ret, const char **why)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_boolean)) {
		*why = key;
		return -EBADMSG;
	}
	*ret = json_object_get_boolean(v);
	return 0;
}

int rmd_locate(const char *ipc_name, const char *volume, const char *access, const char *reason,
	       struct rmd_location *out, char *err, size_t errlen)
{
	_cleanup_(json_putp) struct json_object *req = json_object_new_object();
	_cleanup_(json_putp) struct json_object *o = NULL;
	_cleanup_free_ char *buf = malloc(RMD_REPLY_MAX);
	struct qb_ipc_response_header rh;
	struct rmd_location l = { 0 };
	const char *why = NULL;
	uint64_t port, node, epoch;

	if (!req || !buf) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	json_object_object_add(req, "volume", json_object_new_string(volume));
	if (access)
		json_object_object_add(req, "access", json_object_new_string(access));
	if (access && reason)
		json_object_object_add(req, "reason", json_object_new_string(reason));
	const char *body = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	if (!body) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}

	ssize_t n = exchange(ipc_name, CSVR_REQ_LOCATE, body, buf, RMD_REPLY_MAX, err, errlen);
	if (n < 0)
		return (int)n;
	if ((size_t)n < sizeof(rh)) {
		snprintf(err, errlen, "csv-rmd (IPC endpoint %s) sent a reply of %zd bytes, shorter than its header",
			 ipc_name, n);
		return -EBADMSG;
	}
	memcpy(&rh, buf, sizeof(rh));
	if (rh.id != CSVR_RES_LOCATE || rh.size < (int32_t)sizeof(rh) || rh.size > n || rh.error > 0) {
		snprintf(err, errlen, "csv-rmd (IPC endpoint %s) sent a malformed reply to LOCATE (id %d, size %d, error %d)",
			 ipc_name, rh.id, rh.size, rh.error);
		return -EBADMSG;
	}
	o = json_tokener_parse(buf + sizeof(rh));
	if (!o || !json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "csv-rmd (IPC endpoint %s) sent a reply to LOCATE that is not a JSON object",
			 ipc_name);
		return -EBADMSG;
	}

	if (rh.error < 0) {
		char text[512] = "";
		(void)get_string(o, "error", false, text, sizeof(text), &why);
		if (rh.error == -EAGAIN) {
			/* Nobody serves it; the mode is still the volume's. */
			if (get_bool(o, "redirect", &l.redirect, &why) < 0) {
				snprintf(err, errlen, "csv-rmd (IPC endpoint %s) sent a reply to LOCATE without a valid \"%s\"",
					 ipc_name, why);
				return -EBADMSG;
			}
			if (get_string(o, "volume", false, l.volume, sizeof(l.volume), &why) < 0 || !l.volume[0])
				snprintf(l.volume, sizeof(l.volume), "%s", volume);
			out->redirect = l.redirect;
			snprintf(out->volume, sizeof(out->volume), "%s", l.volume);
			out->host[0] = '\0';
			out->port = 0;
			out->node = 0;
			if (text[0])
				snprintf(err, errlen, "csv-rmd: %s", text);
			else
				snprintf(err, errlen, "csv-rmd: no coordinator serves volume %s right now", volume);
		} else if (text[0]) {
			snprintf(err, errlen, "csv-rmd: %s", text);
		} else if (rh.error == -ENOENT) {
			snprintf(err, errlen, "csv-rmd knows no volume %s", volume);
		} else {
			snprintf(err, errlen, "csv-rmd cannot locate the coordinator of volume %s: %s", volume,
				 strerror(-rh.error));
		}
		return rh.error;
	}

	if (get_string(o, "volume", false, l.volume, sizeof(l.volume), &why) < 0 ||
	    get_string(o, "uuid", false, l.uuid, sizeof(l.uuid), &why) < 0 ||
	    get_string(o, "host", true, l.host, sizeof(l.host), &why) < 0 ||
	    get_uint(o, "port", 1, UINT16_MAX, &port, &why) < 0 ||
	    get_uint(o, "node", 1, UINT32_MAX, &node, &why) < 0 ||
	    get_uint(o, "epoch", 0, INT64_MAX, &epoch, &why) < 0 ||
	    get_bool(o, "redirect", &l.redirect, &why) < 0) {
		snprintf(err, errlen, "csv-rmd (IPC endpoint %s) sent a reply to LOCATE without a valid \"%s\"",
			 ipc_name, why);
		return -EBADMSG;
	}
	if (!l.volume[0])
		snprintf(l.volume, sizeof(l.volume), "%s", volume);
	l.port = (uint16_t)port;
	l.node = (uint32_t)node;
	l.epoch = epoch;
	*out = l;
	return 0;
}
