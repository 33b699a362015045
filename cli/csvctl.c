/* SPDX-License-Identifier: GPL-2.0-or-later */
/* csvctl: the admin CLI of a csvfs cluster. It asks the local csv-quorumd
 * over libqb IPC (see lib/quorumd-ipc.h and csv-quorumd(8)). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <qb/qbipc_common.h>
#include <qb/qbipcc.h>

#include "config.h"
#include "quorumd-ipc.h"

#define PROG "csvctl"
#define REQUEST_TIMEOUT_MS 10000

/* Exit codes: 0 done, 1 failed (daemon not running, an error), 2 usage. */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: " PROG " [--ipc-name NAME] COMMAND [options]\n"
		"Administer a csvfs cluster from one of its nodes.\n\n"
		"Commands:\n"
		"  status [--json]   nodes, quorum, SAN access per volume and the lease, as the\n"
		"                    local csv-quorumd sees them; --json prints its snapshot as is\n"
		"  events [--json]   follow the changes csv-quorumd reports, one line each, until\n"
		"                    interrupted\n\n"
		"Options:\n"
		"  -i, --ipc-name NAME  the IPC endpoint of csv-quorumd (default " CSVQ_IPC_DEFAULT_NAME ")\n"
		"  -h, --help           show this help\n"
		"  -V, --version        show the version\n");
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, PROG ": ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see '" PROG " --help')\n");
	return EXIT_USAGE;
}

/* ---- IPC --------------------------------------------------------------------- */

static qb_ipcc_connection_t *connect_daemon(const char *name)
{
	qb_ipcc_connection_t *c = qb_ipcc_connect(name, CSVQ_IPC_MAX_MSG);
	if (c)
		return c;
	int e = errno;
	if (e == ECONNREFUSED || e == ENOENT || e == 0)
		fprintf(stderr, PROG ": csv-quorumd is not running (no IPC endpoint '%s')\n", name);
	else
		fprintf(stderr, PROG ": cannot connect to csv-quorumd (IPC endpoint '%s'): %s\n", name, strerror(e));
	return NULL;
}

/* Sends a request with no body and returns the JSON text of the reply
 * (in buf), or NULL with a message. */
static const char *request(qb_ipcc_connection_t *c, int32_t id, char *buf, size_t len)
{
	struct qb_ipc_request_header h = { .id = id, .size = sizeof(h) };
	struct iovec iov = { .iov_base = &h, .iov_len = sizeof(h) };
	ssize_t n = qb_ipcc_sendv_recv(c, &iov, 1, buf, len, REQUEST_TIMEOUT_MS);
	if (n < 0) {
		fprintf(stderr, PROG ": no answer from csv-quorumd: %s\n", strerror((int)-n));
		return NULL;
	}
	struct qb_ipc_response_header r;
	if ((size_t)n < sizeof(r)) {
		fprintf(stderr, PROG ": a short answer from csv-quorumd (%zd bytes)\n", n);
		return NULL;
	}
	memcpy(&r, buf, sizeof(r));
	if (r.error < 0) {
		fprintf(stderr, PROG ": csv-quorumd refused the request: %s\n", strerror(-r.error));
		return NULL;
	}
	if ((size_t)n == sizeof(r) || buf[n - 1] != '\0') {
		fprintf(stderr, PROG ": csv-quorumd answered without a text\n");
		return NULL;
	}
	return buf + sizeof(r);
}

/* ---- reading the snapshot ---------------------------------------------------- */

static struct json_object *get(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;
	if (o && json_object_is_type(o, json_type_object))
		json_object_object_get_ex(o, key, &v);
	return v;
}

static const char *gets(struct json_object *o, const char *key, const char *dflt)
{
	struct json_object *v = get(o, key);
	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : dflt;
}

static bool has(struct json_object *o, const char *key)
{
	return get(o, key) != NULL;
}

static int64_t geti(struct json_object *o, const char *key)
{
	struct json_object *v = get(o, key);
	return v ? json_object_get_int64(v) : 0;
}

static bool getb(struct json_object *o, const char *key)
{
	struct json_object *v = get(o, key);
	return v && json_object_get_boolean(v);
}

static size_t count(struct json_object *a)
{
	return a && json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
}

static struct json_object *at(struct json_object *a, size_t i)
{
	return json_object_array_get_idx(a, i);
}

static const char *yesno(bool b)
{
	return b ? "yes" : "no";
}

/* "120 ms", "3.2 s", "-" */
static const char *age(struct json_object *o, const char *key, char *buf, size_t len)
{
	if (!has(o, key))
		return "-";
	int64_t ms = geti(o, key);
	if (ms < 10000)
		snprintf(buf, len, "%" PRId64 " ms", ms);
	else
		snprintf(buf, len, "%.1f s", (double)ms / 1000.0);
	return buf;
}

static const char *latency(struct json_object *o, const char *key, char *buf, size_t len)
{
	struct json_object *v = get(o, key);
	if (!v)
		return "-";
	snprintf(buf, len, "%.2f ms", json_object_get_double(v));
	return buf;
}

/* A volume's short name: its label, else the start of its UUID, else
 * "volume K". */
static const char *volname(struct json_object *vols, size_t k, char *buf, size_t len)
{
	struct json_object *v = at(vols, k);
	const char *label = gets(v, "label", "");
	const char *uuid = gets(v, "uuid", NULL);
	if (label[0])
		snprintf(buf, len, "%s", label);
	else if (uuid)
		snprintf(buf, len, "%.8s", uuid);
	else
		snprintf(buf, len, "volume%zu", k + 1);
	return buf;
}

static void print_status(struct json_object *s)
{
	struct json_object *q = get(s, "quorum"), *opts = get(q, "options"), *lease = get(s, "lease");
	struct json_object *timing = get(s, "timing"), *nodes = get(s, "nodes"), *vols = get(s, "volumes");
	char b1[64], b2[64], vn[80];
	bool connected = strcmp(gets(s, "corosync", ""), "connected") == 0;

	printf("This node:  %" PRId64 " (%s)\n", geti(s, "node_id"), gets(s, "node_name", "?"));
	if (!connected)
		printf("Corosync:   NOT CONNECTED (%s)\n", gets(s, "corosync_error", "no reason given"));
	printf("Quorum:     %s; %zu member(s); votes: expected %" PRId64 ", total %" PRId64 ", quorum %" PRId64
	       ", this node %" PRId64 "\n",
	       getb(q, "quorate") ? "quorate" : "NOT QUORATE", count(get(s, "members")), geti(q, "expected_votes"),
	       geti(q, "total_votes"), geti(q, "quorum"), geti(q, "node_votes"));
	char optbuf[128] = "";
	static const char *const names[] = { "two_node", "wait_for_all", "last_man_standing", "auto_tie_breaker" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (getb(opts, names[i]))
			snprintf(optbuf + strlen(optbuf), sizeof(optbuf) - strlen(optbuf), "%s%s",
				 optbuf[0] ? " " : "", names[i]);
	printf("Options:    %s\n", optbuf[0] ? optbuf : "none");
	printf("Lease:      %s, %" PRId64 " ms left (lease %" PRId64 " ms)%s\n", gets(lease, "state", "?"),
	       geti(lease, "remaining_ms"), geti(lease, "lease_ms"),
	       getb(lease, "self_fenced") ? "; this node is FENCED (its I/O is stopped)" : "");
	if (has(lease, "fence_request_seq"))
		printf("Fence:      node %" PRId64 " asks this node to fence itself (request %" PRId64 ")\n",
		       geti(lease, "fence_request_from"), geti(lease, "fence_request_seq"));
	struct json_object *w = get(s, "witness");
	if (getb(w, "enabled")) {
		char holder[32] = "nobody";
		if (has(w, "holder") && geti(w, "holder"))
			snprintf(holder, sizeof(holder), "node %" PRId64, geti(w, "holder"));
		printf("Witness:    disk witness held by %s; its vote %s this partition\n", holder,
		       getb(w, "cast_vote") ? "counts for" : "does NOT count for");
	}
	printf("Timing:     heartbeat %" PRId64 " ms, lease %" PRId64 " ms, corosync token %" PRId64 " ms\n",
	       geti(timing, "heartbeat_ms"), geti(timing, "lease_ms"), geti(timing, "token_ms"));

	/* Nodes. */
	int wname = 4;
	for (size_t i = 0; i < count(nodes); i++) {
		int l = (int)strlen(gets(at(nodes, i), "name", "")) + 1;
		if (l > wname)
			wname = l;
	}
	printf("\nNodes:\n  %-4s %-*s %-7s %-8s %-6s %-24s %-16s %s\n", "ID", wname, "NAME", "MEMBER", "QUORUMD",
	       "VOTES", "FENCE", "ADDRESS", "LINKS");
	for (size_t i = 0; i < count(nodes); i++) {
		struct json_object *n = at(nodes, i), *links = get(n, "links"), *addrs = get(n, "addresses");
		char name[128], linkbuf[256] = "";
		snprintf(name, sizeof(name), "%s%s", gets(n, "name", ""), getb(n, "local") ? "*" : "");
		for (size_t l = 0; l < count(links); l++) {
			struct json_object *lk = at(links, l);
			snprintf(linkbuf + strlen(linkbuf), sizeof(linkbuf) - strlen(linkbuf), "%s%" PRId64 ":%s",
				 linkbuf[0] ? " " : "", geti(lk, "link"), getb(lk, "connected") ? "up" : "down");
		}
		if (!has(n, "reachable"))
			snprintf(linkbuf, sizeof(linkbuf), "unknown");
		struct json_object *f = get(n, "fence");
		char fence[64] = "-";
		if (f && strcmp(gets(f, "state", "none"), "none") != 0)
			snprintf(fence, sizeof(fence), "%s%s%s", gets(f, "state", "?"),
				 strcmp(gets(f, "by", "none"), "none") ? " by " : "",
				 strcmp(gets(f, "by", "none"), "none") ? gets(f, "by", "") : "");
		printf("  %-4" PRId64 " %-*s %-7s %-8s %-6" PRId64 " %-24s %-16s %s\n", geti(n, "id"), wname, name,
		       yesno(getb(n, "member")), yesno(getb(n, "daemon")), geti(n, "votes"), fence,
		       count(addrs) ? json_object_get_string(at(addrs, 0)) : "-", linkbuf[0] ? linkbuf : "-");
	}

	/* SAN access per node and volume. */
	if (count(vols)) {
		printf("\nSAN access (heartbeat age as this node sees it; write latency of the node's own writes):\n");
		printf("  %-4s %-*s %-12s %-12s %-5s %-14s %s\n", "NODE", wname, "NAME", "VOLUME", "STATE", "SAN",
		       "HEARTBEAT AGE", "WRITE LATENCY");
		for (size_t i = 0; i < count(nodes); i++) {
			struct json_object *n = at(nodes, i), *nv = get(n, "volumes");
			for (size_t k = 0; k < count(nv); k++) {
				struct json_object *x = at(nv, k);
				printf("  %-4" PRId64 " %-*s %-12s %-12s %-5s %-14s %s\n", geti(n, "id"), wname,
				       gets(n, "name", ""), volname(vols, k, vn, sizeof(vn)), gets(x, "state", "?"),
				       gets(x, "san", "?"), age(x, "heartbeat_age_ms", b1, sizeof(b1)),
				       latency(x, "write_latency_ms", b2, sizeof(b2)));
			}
		}
	}

	/* Volumes. */
	printf("\nVolumes:\n");
	if (!count(vols))
		printf("  none (csv-quorumd runs without --volume)\n");
	for (size_t k = 0; k < count(vols); k++) {
		struct json_object *v = at(vols, k);
		printf("  %s: UUID %s, slot %" PRId64, volname(vols, k, vn, sizeof(vn)), gets(v, "uuid", "unknown"),
		       geti(v, "slot"));
		if (has(v, "max_nodes"))
			printf(" of %" PRId64, geti(v, "max_nodes"));
		printf("; this node: %s, %s, %s\n", getb(v, "open") ? "open" : "NOT OPEN",
		       getb(v, "readable") ? "reading" : "NOT READING", getb(v, "writing") ? "writing" : "NOT WRITING");
		printf("    path %s; writes %" PRId64 " ok, %" PRId64 " failed; reads failed %" PRId64 "\n",
		       gets(v, "spec", "?"), geti(v, "writes_ok"), geti(v, "writes_failed"), geti(v, "reads_failed"));
		if (has(v, "error"))
			printf("    last error (%s ago): %s\n", age(v, "error_age_ms", b1, sizeof(b1)),
			       gets(v, "error", ""));
	}
}

/* ---- commands ------------------------------------------------------------------ */

static int cmd_status(const char *ipc_name, bool json)
{
	char *buf = malloc(CSVQ_IPC_MAX_MSG);
	int rc = EXIT_FAIL;
	if (!buf) {
		fprintf(stderr, PROG ": no memory\n");
		return EXIT_FAIL;
	}
	qb_ipcc_connection_t *c = connect_daemon(ipc_name);
	if (!c)
		goto out;
	const char *text = request(c, CSVQ_REQ_SNAPSHOT, buf, CSVQ_IPC_MAX_MSG);
	if (!text)
		goto out;
	if (json) {
		printf("%s\n", text);
		rc = EXIT_OK;
		goto out;
	}
	struct json_object *s = json_tokener_parse(text);
	if (!s || !json_object_is_type(s, json_type_object)) {
		fprintf(stderr, PROG ": csv-quorumd answered with a text that is not JSON\n");
		json_object_put(s);
		goto out;
	}
	print_status(s);
	json_object_put(s);
	rc = EXIT_OK;
out:
	if (c)
		qb_ipcc_disconnect(c);
	free(buf);
	return fflush(stdout) == 0 ? rc : EXIT_FAIL;
}

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	interrupted = 1;
}

static int cmd_events(const char *ipc_name, bool json)
{
	char *buf = malloc(CSVQ_IPC_MAX_MSG);
	int rc = EXIT_FAIL;
	if (!buf) {
		fprintf(stderr, PROG ": no memory\n");
		return EXIT_FAIL;
	}
	qb_ipcc_connection_t *c = connect_daemon(ipc_name);
	if (!c)
		goto out;
	if (!request(c, CSVQ_REQ_SUBSCRIBE, buf, CSVQ_IPC_MAX_MSG))
		goto out;
	struct sigaction sa = { .sa_handler = on_interrupt };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	while (!interrupted) {
		ssize_t n = qb_ipcc_event_recv(c, buf, CSVQ_IPC_MAX_MSG, 500);
		if (n == -EAGAIN || n == -ETIMEDOUT || n == -EINTR) {
			if (!qb_ipcc_is_connected(c))
				break;
			continue;
		}
		if (n < 0)
			break;
		struct qb_ipc_response_header h;
		if ((size_t)n <= sizeof(h) || buf[n - 1] != '\0')
			continue;
		memcpy(&h, buf, sizeof(h));
		if (h.id != CSVQ_EVENT)
			continue;
		const char *text = buf + sizeof(h);
		if (json) {
			printf("%s\n", text);
		} else {
			struct json_object *e = json_tokener_parse(text);
			struct json_object *w = get(e, "wall_ns");
			char when[32] = "";
			if (w) {
				time_t sec = (time_t)(json_object_get_int64(w) / 1000000000);
				struct tm tm;
				localtime_r(&sec, &tm);
				strftime(when, sizeof(when), "%H:%M:%S", &tm);
			}
			printf("%s %-10s %s\n", when, gets(e, "event", "?"), gets(e, "message", text));
			json_object_put(e);
		}
		fflush(stdout);
	}
	if (interrupted) {
		rc = EXIT_OK;
	} else {
		fprintf(stderr, PROG ": csv-quorumd closed the connection (it stopped?)\n");
	}
out:
	if (c)
		qb_ipcc_disconnect(c);
	free(buf);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ipc-name", required_argument, NULL, 'i' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	const char *ipc_name = CSVQ_IPC_DEFAULT_NAME, *cmd = NULL;
	bool json = false;
	int opt;

	/* Options may come before or after the command. */
	while ((opt = getopt_long(argc, argv, "i:hV", opts, NULL)) != -1) {
		switch (opt) {
		case 'i':
			if (!*optarg)
				return usage_error("%s", "--ipc-name needs a name");
			ipc_name = optarg;
			break;
		case 'j': json = true; break;
		case 'h': usage(stdout); return EXIT_OK;
		case 'V': printf(PROG " " PACKAGE_VERSION "\n"); return EXIT_OK;
		default:
			fprintf(stderr, "See '" PROG " --help'.\n");
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		cmd = argv[optind++];
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (!cmd)
		return usage_error("%s", "a command is needed");
	if (strcmp(cmd, "status") == 0)
		return cmd_status(ipc_name, json);
	if (strcmp(cmd, "events") == 0)
		return cmd_events(ipc_name, json);
	return usage_error("unknown command '%s'", cmd);
}
