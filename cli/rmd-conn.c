/* SPDX-License-Identifier: GPL-2.0-or-later */
/* csvctl's side of the csv-rmd IPC (lib/rmd-ipc.h): connect, ask, and find
 * volumes and nodes in the state it answers. Every failure is said on
 * stderr here, so that a command only turns it into its exit code. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>

#include <qb/qbipc_common.h>

#include "csvctl.h"
#include "rmd-ipc.h"

#define RMD_REQUEST_TIMEOUT_MS 10000
#define RMD_STATE_VERSION 1

void print_json(struct json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}

int rmd_conn_open(struct rmd_conn *r, const char *name)
{
	*r = (struct rmd_conn){ .name = name };
	r->buf = malloc(CSVR_IPC_MAX_MSG);
	if (!r->buf) {
		fprintf(stderr, PROG ": no memory\n");
		return -ENOMEM;
	}
	r->conn = qb_ipcc_connect(name, CSVR_IPC_MAX_MSG);
	if (r->conn)
		return 0;
	int e = errno;
	if (e == ECONNREFUSED || e == ENOENT || e == 0)
		fprintf(stderr, PROG ": csv-rmd is not running on this node (no IPC endpoint '%s')\n", name);
	else
		fprintf(stderr, PROG ": cannot connect to csv-rmd (IPC endpoint '%s'): %s\n", name, strerror(e));
	free(r->buf);
	r->buf = NULL;
	return e > 0 ? -e : -ECONNREFUSED;
}

void rmd_conn_close(struct rmd_conn *r)
{
	if (r->conn)
		qb_ipcc_disconnect(r->conn);
	free(r->buf);
	*r = (struct rmd_conn){ 0 };
}

int rmd_conn_request(struct rmd_conn *r, int32_t id, struct json_object *body, const char *what,
		struct json_object **ret_reply)
{
	const char *text = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
	size_t len = strlen(text) + 1;
	struct qb_ipc_request_header h = { .id = id, .size = (int32_t)(sizeof(h) + len) };
	struct iovec iov[2] = {
		{ .iov_base = &h, .iov_len = sizeof(h) },
		{ .iov_base = (void *)text, .iov_len = len },
	};
	struct qb_ipc_response_header rh;

	ssize_t n = qb_ipcc_sendv_recv(r->conn, iov, 2, r->buf, CSVR_IPC_MAX_MSG, RMD_REQUEST_TIMEOUT_MS);
	if (n == -ENOTCONN) {
		fprintf(stderr, PROG ": cannot %s: csv-rmd closed the connection (it stopped?)\n", what);
		return -ENOTCONN;
	}
	if (n < 0) {
		fprintf(stderr, PROG ": cannot %s: no answer from csv-rmd: %s\n", what, strerror((int)-n));
		return (int)n;
	}
	if ((size_t)n < sizeof(rh)) {
		fprintf(stderr, PROG ": cannot %s: a short answer from csv-rmd (%zd bytes)\n", what, n);
		return -EBADMSG;
	}
	memcpy(&rh, r->buf, sizeof(rh));
	if (rh.id != id) {
		fprintf(stderr, PROG ": cannot %s: csv-rmd answered request %" PRId32 " with response %" PRId32 "\n",
			what, id, rh.id);
		return -EBADMSG;
	}
	struct json_object *reply = NULL;
	if ((size_t)n > sizeof(rh) && r->buf[n - 1] == '\0')
		reply = json_tokener_parse(r->buf + sizeof(rh));
	if (rh.error < 0) {
		const char *why = gets(reply, "error", NULL);
		fprintf(stderr, PROG ": cannot %s: %s\n", what, why ? why : strerror(-rh.error));
		if (rh.error == -EPERM && r->who_may)
			fprintf(stderr, PROG ": only %s may %s\n", r->who_may, what);
		else if (rh.error == -EPERM)
			fprintf(stderr, PROG ": to %s, you need to be root or in the cluster admin group (" CTL_ADMIN_GROUP
				")\n", what);
		json_object_put(reply);
		return rh.error;
	}
	if (!reply || !json_object_is_type(reply, json_type_object)) {
		fprintf(stderr, PROG ": cannot %s: csv-rmd answered with a text that is not a JSON object\n", what);
		json_object_put(reply);
		return -EBADMSG;
	}
	*ret_reply = reply;
	return 0;
}

int rmd_conn_state(struct rmd_conn *r, struct json_object **ret_state)
{
	struct json_object *body = json_object_new_object(), *s = NULL;
	if (!body) {
		fprintf(stderr, PROG ": no memory\n");
		return -ENOMEM;
	}
	int rc = rmd_conn_request(r, CSVR_REQ_STATE, body, "read the state of csv-rmd", &s);
	json_object_put(body);
	if (rc < 0)
		return rc;
	if (geti(s, "version") != RMD_STATE_VERSION) {
		fprintf(stderr, PROG ": csv-rmd answered with state version %" PRId64 "; this csvctl reads version %d\n",
			geti(s, "version"), RMD_STATE_VERSION);
		json_object_put(s);
		return -EPROTONOSUPPORT;
	}
	*ret_state = s;
	return 0;
}

const char *volume_key(struct json_object *v)
{
	const char *name = gets(v, "name", "");
	return name[0] ? name : gets(v, "uuid", "?");
}

int state_find_volume(struct json_object *state, const char *arg, struct json_object **ret_volume)
{
	struct json_object *vols = get(state, "volumes");
	for (size_t i = 0; i < count(vols); i++) {
		struct json_object *v = at(vols, i);
		const char *uuid = gets(v, "uuid", NULL);
		if (strcmp(gets(v, "name", ""), arg) == 0 || (uuid && strcasecmp(uuid, arg) == 0)) {
			*ret_volume = v;
			return 0;
		}
	}
	fprintf(stderr, PROG ": no volume %s (known: ", arg);
	for (size_t i = 0; i < count(vols); i++)
		fprintf(stderr, "%s%s", i ? ", " : "", volume_key(at(vols, i)));
	fprintf(stderr, "%s)\n", count(vols) ? "" : "none");
	return -ENOENT;
}

struct json_object *state_node(struct json_object *state, int64_t id)
{
	struct json_object *nodes = get(state, "nodes");
	for (size_t i = 0; i < count(nodes); i++)
		if (geti(at(nodes, i), "id") == id)
			return at(nodes, i);
	return NULL;
}

const char *node_name(struct json_object *state, int64_t id, char *buf, size_t len)
{
	const char *name = gets(state_node(state, id), "name", "");
	if (name[0])
		snprintf(buf, len, "%s", name);
	else
		snprintf(buf, len, "node %" PRId64, id);
	return buf;
}

int state_find_node(struct json_object *state, const char *arg, int64_t *ret_id)
{
	struct json_object *nodes = get(state, "nodes");
	char *end;
	errno = 0;
	long long id = strtoll(arg, &end, 10);
	bool numeric = arg[0] >= '0' && arg[0] <= '9' && !*end && errno == 0;

	/* An id first: a node named "2" does not hide node 2. */
	for (int by_name = 0; by_name < 2; by_name++)
		for (size_t i = 0; i < count(nodes); i++) {
			struct json_object *n = at(nodes, i);
			if (by_name ? strcmp(gets(n, "name", ""), arg) == 0 : numeric && geti(n, "id") == id) {
				*ret_id = geti(n, "id");
				return 0;
			}
		}
	fprintf(stderr, PROG ": no node %s (known: ", arg);
	for (size_t i = 0; i < count(nodes); i++) {
		struct json_object *n = at(nodes, i);
		fprintf(stderr, "%s%" PRId64 "%s%s%s", i ? ", " : "", geti(n, "id"), has(n, "name") ? " (" : "",
			gets(n, "name", ""), has(n, "name") ? ")" : "");
	}
	fprintf(stderr, "%s)\n", count(nodes) ? "" : "none");
	return -ENOENT;
}

int rmd_list_command(const struct ctl_args *a, const char *command, const char *key,
		     void (*print)(struct json_object *state))
{
	struct rmd_conn r;
	struct json_object *s = NULL;
	int rc = check_words(a, command, 2, "");
	if (rc)
		return rc;
	if (rmd_conn_open(&r, a->rmd_name) < 0)
		return EXIT_FAIL;
	rc = EXIT_FAIL;
	if (rmd_conn_state(&r, &s) < 0)
		goto out;
	if (a->json && !get(s, key)) {
		fprintf(stderr, PROG ": the state of csv-rmd has no \"%s\"\n", key);
		goto out;
	}
	if (a->json)
		print_json(get(s, key));
	else
		print(s);
	rc = EXIT_OK;
out:
	json_object_put(s);
	rmd_conn_close(&r);
	return fflush(stdout) == 0 ? rc : EXIT_FAIL;
}
