/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-vmagent-client: sends one request of lib/vmagent-ipc.h to a
 * csv-vmagent and prints its reply, for tests/test-vmagent.sh (not
 * installed).
 *
 *   test-vmagent-client [--ipc-name NAME] [--timeout-ms N] REQUEST [JSON]
 *
 * REQUEST is list, start, stop, kill, incoming, migrate, define, undefine,
 * save, disk-add, disk-remove, checkpoint or a number; JSON
 * the request's body ({} when not given). The reply's JSON text goes to
 * standard output, on one line. Exit status: 0 when the reply's error is
 * 0, else the errno of the error (1 EPERM, 2 ENOENT, 17 EEXIST, 22 EINVAL,
 * ...); 100 when no reply came (no agent, a timeout), with a message on
 * standard error. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <qb/qbipc_common.h>
#include <qb/qbipcc.h>

#include "vmagent-ipc.h"

#define PROG "test-vmagent-client"
#define NO_REPLY 100

static const struct {
	const char *name;
	int32_t id;
} requests[] = {
	{ "list", CSVV_REQ_LIST }, { "start", CSVV_REQ_START }, { "stop", CSVV_REQ_STOP },
	{ "kill", CSVV_REQ_KILL }, { "incoming", CSVV_REQ_INCOMING }, { "migrate", CSVV_REQ_MIGRATE },
	{ "define", CSVV_REQ_DEFINE }, { "undefine", CSVV_REQ_UNDEFINE }, { "save", CSVV_REQ_SAVE },
	{ "disk-add", CSVV_REQ_DISK_ADD }, { "disk-remove", CSVV_REQ_DISK_REMOVE },
	{ "checkpoint", CSVV_REQ_CHECKPOINT },
};

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ipc-name", required_argument, NULL, 'i' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ 0 },
	};
	const char *ipc_name = CSVV_IPC_DEFAULT_NAME;
	int timeout_ms = 60000, opt;
	while ((opt = getopt_long(argc, argv, "i:t:", opts, NULL)) != -1) {
		switch (opt) {
		case 'i': ipc_name = optarg; break;
		case 't': timeout_ms = atoi(optarg); break;
		default:
			fprintf(stderr, "Usage: " PROG " [--ipc-name NAME] [--timeout-ms N] REQUEST [JSON]\n");
			return NO_REPLY;
		}
	}
	if (optind >= argc || argc - optind > 2) {
		fprintf(stderr, "Usage: " PROG " [--ipc-name NAME] [--timeout-ms N] REQUEST [JSON]\n");
		return NO_REPLY;
	}
	int32_t id = -1;
	for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++)
		if (strcmp(argv[optind], requests[i].name) == 0)
			id = requests[i].id;
	if (id < 0) {
		char *end;
		long n = strtol(argv[optind], &end, 10);
		if (*end || !argv[optind][0]) {
			fprintf(stderr, PROG ": unknown request '%s'\n", argv[optind]);
			return NO_REPLY;
		}
		id = (int32_t)n;
	}
	const char *body = optind + 1 < argc ? argv[optind + 1] : "{}";

	qb_ipcc_connection_t *c = qb_ipcc_connect(ipc_name, CSVV_IPC_MAX_MSG);
	if (!c) {
		fprintf(stderr, PROG ": cannot connect to the IPC endpoint %s: %s\n", ipc_name, strerror(errno));
		return NO_REPLY;
	}
	struct qb_ipc_request_header h = { .id = id };
	size_t blen = strlen(body) + 1;
	struct iovec iov[2] = {
		{ .iov_base = &h, .iov_len = sizeof(h) },
		{ .iov_base = (void *)body, .iov_len = blen },
	};
	h.size = (int32_t)(sizeof(h) + blen);
	char *buf = malloc(CSVV_IPC_MAX_MSG + 1);
	if (!buf) {
		qb_ipcc_disconnect(c);
		return NO_REPLY;
	}
	ssize_t n = qb_ipcc_sendv_recv(c, iov, 2, buf, CSVV_IPC_MAX_MSG, timeout_ms);
	qb_ipcc_disconnect(c);
	if (n < (ssize_t)sizeof(struct qb_ipc_response_header)) {
		fprintf(stderr, PROG ": no reply from %s: %s\n", ipc_name, n < 0 ? strerror((int)-n) : "too short");
		free(buf);
		return NO_REPLY;
	}
	buf[n] = '\0';
	struct qb_ipc_response_header rh;
	memcpy(&rh, buf, sizeof(rh));
	if (rh.id != id)
		fprintf(stderr, PROG ": the reply's id is %d, not %d\n", rh.id, id);
	printf("%s\n", n > (ssize_t)sizeof(rh) ? buf + sizeof(rh) : "");
	free(buf);
	if (rh.error > 0) {
		fprintf(stderr, PROG ": the reply's error is positive (%d)\n", rh.error);
		return NO_REPLY;
	}
	return rh.error < 0 ? (-rh.error > 99 ? 99 : -rh.error) : 0;
}
