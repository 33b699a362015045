/* SPDX-License-Identifier: GPL-2.0-or-later */
/* csvctl: the admin CLI of a csvfs cluster. It asks the local csv-quorumd
 * (status, events: lib/quorumd-ipc.h, csv-quorumd(8)) and the local csv-rmd
 * (volume, node, vm: lib/rmd-ipc.h, csv-rmd(8); volume.c, node.c, vm.c)
 * over libqb IPC. The options of every command are checked here, against
 * the table of what each command takes. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <qb/qbipc_common.h>
#include <qb/qbipcc.h>

#include "config.h"
#include "csvctl.h"
#include "quorumd-ipc.h"
#include "rmd-ipc.h"

#define REQUEST_TIMEOUT_MS 10000

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: " PROG " [--ipc-name NAME] [--rmd NAME] COMMAND [options]\n"
		"Administer a csvfs cluster from one of its nodes.\n\n"
		"Commands of csv-quorumd (membership, quorum, SAN, leases):\n"
		"  status [--json]   nodes, quorum, SAN access per volume and the lease, as the\n"
		"                    local csv-quorumd sees them; --json prints its snapshot as is\n"
		"  events [--json]   follow the changes csv-quorumd reports, one line each, until\n"
		"                    interrupted\n\n"
		"Commands of csv-rmd (where each volume's coordinator runs):\n"
		"  volume list [--json]\n"
		"                    a line per volume: name, UUID, coordinator, phase, epoch,\n"
		"                    redirected mode; --json prints csv-rmd's \"volumes\" as is\n"
		"  volume state VOLUME [--json]\n"
		"                    a volume's phase, holder, epoch and reason, and the SAN and\n"
		"                    access of each node to it\n"
		"  volume move VOLUME --to NODE [--wait SECONDS] [--json]\n"
		"                    move the volume's coordinator to NODE (an id or a name) and\n"
		"                    follow it until it runs there (--wait: default 60, 0 returns\n"
		"                    at once); --json: the reply and each new state as JSON lines\n"
		"  volume redirect VOLUME on|off [--wait SECONDS] [--json]\n"
		"                    file-system redirected mode on or off, then wait until every\n"
		"                    member node's access follows (default 10 s, 0 returns at once);\n"
		"                    --json: the reply, then the volume once every node follows\n"
		"  node list [--json]\n"
		"                    a line per node: id, name, address, member, quorate, fence,\n"
		"                    admin state, the volumes it coordinates\n"
		"  node drain NODE [--wait SECONDS]\n"
		"                    maintenance: the node's VMs migrate away and its coordinators\n"
		"                    move, then it is paused; follows each VM that leaves until\n"
		"                    the node is paused and runs no VM (default 300 s)\n"
		"  node resume NODE [--failback] [--wait SECONDS]\n"
		"                    the node is active again; with --failback, follows the VMs\n"
		"                    drained from it until they run on it again (default 300 s)\n\n"
		"Commands of csv-rmd for virtual machines (VM: its name; NODE: an id or a name):\n"
		"  vm list [--json]  a line per VM: name, want, phase, node, memory, vCPUs,\n"
		"                    priority, reason; --json prints csv-rmd's \"vms\" as is\n"
		"  vm show VM [--json]\n"
		"                    everything csv-rmd knows of a VM: placement, policies,\n"
		"                    failures, operators, counts, the last migration\n"
		"  vm create FILE.json [--start [--wait SECONDS]]\n"
		"                    a new VM from its definition (FILE - reads stdin); --start\n"
		"                    starts it and waits until it runs (default 30 s)\n"
		"  vm start VM [--to NODE] [--wait SECONDS]\n"
		"                    start it (on NODE) and wait until it runs (default 30 s)\n"
		"  vm stop VM [--force] [--wait SECONDS]\n"
		"                    shut it down (--force: power off at once) and wait until it\n"
		"                    is stopped (default 60 s)\n"
		"  vm remove VM      remove a stopped VM and its definition\n"
		"  vm migrate VM --to NODE [--live|--quick] [--wait SECONDS]\n"
		"                    migrate it to NODE and follow until it runs there (default\n"
		"                    180 s); the kind defaults to the VM's \"migration\"\n"
		"  vm disk add VM FILE [--format raw|qcow2|vpc|vhdx]\n"
		"  vm disk remove VM ID|FILE\n"
		"                    hot add or remove a SCSI disk of the running VM (the format\n"
		"                    defaults from the extension: .qcow2, .vhd vpc, .vhdx, else\n"
		"                    raw; ID: disk2 or 2); on the node that runs the VM\n"
		"  vm checkpoint take|apply|delete VM NAME\n"
		"  vm checkpoint list VM\n"
		"                    checkpoints of the running VM (its qcow2 disks); list: name,\n"
		"                    date, size of the VM state; on the node that runs the VM\n"
		"Every vm and node command takes --json: the answer of csv-rmd, or for those\n"
		"that wait, the VM's or the node's object at the end; progress goes to stderr.\n\n"
		"Options:\n"
		"  -i, --ipc-name NAME  the IPC endpoint of csv-quorumd (default " CSVQ_IPC_DEFAULT_NAME ")\n"
		"      --rmd NAME       the IPC endpoint of csv-rmd (default " CSVR_IPC_DEFAULT_NAME ")\n"
		"      --json           print JSON instead of a table\n"
		"      --to NODE        where a volume moves or a VM starts or migrates to\n"
		"      --wait SECONDS   how long to follow what a command started (0: not at all)\n"
		"      --start          start the VM once created (vm create)\n"
		"      --force          power the VM off at once (vm stop)\n"
		"      --live, --quick  the kind of migration (vm migrate)\n"
		"      --failback       the VMs drained from the node go back to it (node resume)\n"
		"      --format FORMAT  the format of a disk file (vm disk add)\n"
		"  -h, --help           show this help\n"
		"  -V, --version        show the version\n\n"
		"Exit status: 0 done; 1 failed (a daemon not running, a refusal, no such volume,\n"
		"node or VM, a wait that ran out or ended otherwise); 2 a usage error.\n");
}

int usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, PROG ": ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, " (see '" PROG " --help')\n");
	va_end(ap);
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

/* A number of seconds for --wait: 0 or more, finite. */
static int parse_seconds(const char *s, double *ret)
{
	char *end;
	errno = 0;
	double d = strtod(s, &end);
	if (!*s || *end || errno || !isfinite(d) || d < 0)
		return -EINVAL;
	*ret = d;
	return 0;
}

/* ---- which command takes which option ------------------------------------------ */

enum {
	TAKES_JSON = 1 << 0,
	TAKES_TO = 1 << 1,
	TAKES_WAIT = 1 << 2,
	TAKES_START = 1 << 3,
	TAKES_FORCE = 1 << 4,
	TAKES_KIND = 1 << 5,
	TAKES_FAILBACK = 1 << 6,
	TAKES_FORMAT = 1 << 7,
};

static const struct {
	const char *cmd; /* its words */
	unsigned takes;
} commands[] = {
	{ "status", TAKES_JSON },
	{ "events", TAKES_JSON },
	{ "volume list", TAKES_JSON },
	{ "volume state", TAKES_JSON },
	{ "volume move", TAKES_JSON | TAKES_TO | TAKES_WAIT },
	{ "volume redirect", TAKES_JSON | TAKES_WAIT },
	{ "node list", TAKES_JSON },
	{ "node drain", TAKES_JSON | TAKES_WAIT },
	{ "node resume", TAKES_JSON | TAKES_FAILBACK | TAKES_WAIT },
	{ "vm list", TAKES_JSON },
	{ "vm show", TAKES_JSON },
	{ "vm create", TAKES_JSON | TAKES_START | TAKES_WAIT },
	{ "vm start", TAKES_JSON | TAKES_TO | TAKES_WAIT },
	{ "vm stop", TAKES_JSON | TAKES_FORCE | TAKES_WAIT },
	{ "vm remove", TAKES_JSON },
	{ "vm migrate", TAKES_JSON | TAKES_TO | TAKES_KIND | TAKES_WAIT },
	{ "vm disk add", TAKES_JSON | TAKES_FORMAT },
	{ "vm disk remove", TAKES_JSON },
	{ "vm checkpoint take", TAKES_JSON },
	{ "vm checkpoint apply", TAKES_JSON },
	{ "vm checkpoint delete", TAKES_JSON },
	{ "vm checkpoint list", TAKES_JSON },
};

/* The options given on the command line, as TAKES_* bits. */
static unsigned given_options(const struct ctl_args *a)
{
	return (a->json ? TAKES_JSON : 0) | (a->to ? TAKES_TO : 0) | (a->wait_s >= 0 ? TAKES_WAIT : 0) |
	       (a->start ? TAKES_START : 0) | (a->force ? TAKES_FORCE : 0) | (a->kind ? TAKES_KIND : 0) |
	       (a->failback ? TAKES_FAILBACK : 0) | (a->format ? TAKES_FORMAT : 0);
}

/* An option as the user wrote it. */
static const char *option_name(const struct ctl_args *a, unsigned opt)
{
	switch (opt) {
	case TAKES_JSON: return "--json";
	case TAKES_TO: return "--to";
	case TAKES_WAIT: return "--wait";
	case TAKES_START: return "--start";
	case TAKES_FORCE: return "--force";
	case TAKES_KIND: return strcmp(a->kind, "live") == 0 ? "--live" : "--quick";
	case TAKES_FAILBACK: return "--failback";
	default: return "--format";
	}
}

/* Whether the words start with those of cmd; *ret_len: how many. */
static bool names_command(const struct ctl_args *a, const char *cmd, int *ret_len)
{
	int n = 0;
	for (const char *p = cmd; *p; n++) {
		size_t l = strcspn(p, " ");
		if (n >= a->nwords || strlen(a->words[n]) != l || strncmp(a->words[n], p, l) != 0)
			return false;
		p += l + (p[l] == ' ');
	}
	*ret_len = n;
	return true;
}

/* The entry of commands[] that the words name, or -1 (an unknown or
 * incomplete command, which its dispatcher reports). */
static int find_command(const struct ctl_args *a)
{
	int best = -1, best_len = 0, len;
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (names_command(a, commands[i].cmd, &len) && len > best_len) {
			best = (int)i;
			best_len = len;
		}
	return best;
}

/* "'volume move', 'vm start' and 'vm migrate'": the commands that take opt. */
static const char *takers(unsigned opt, char *buf, size_t len)
{
	size_t n = 0, k = 0;
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		n += (commands[i].takes & opt) != 0;
	buf[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		if (!(commands[i].takes & opt))
			continue;
		size_t l = strlen(buf);
		k++;
		snprintf(buf + l, len - l, "%s'%s'", k == 1 ? "" : k == n ? " and " : ", ", commands[i].cmd);
	}
	return buf;
}

/* Refuses the options the command does not take, naming those that do. */
static int check_options(const struct ctl_args *a)
{
	int i = find_command(a);
	if (i < 0)
		return 0;
	unsigned extra = given_options(a) & ~commands[i].takes;
	if (!extra)
		return 0;
	unsigned opt = extra & -extra;
	char buf[1024];
	if (opt == TAKES_JSON)
		return usage_error("'%s' takes no --json", commands[i].cmd);
	return usage_error("%s is only for %s, not '%s'", option_name(a, opt), takers(opt, buf, sizeof(buf)),
			   commands[i].cmd);
}

int check_words(const struct ctl_args *a, const char *cmd, int nwords, const char *missing)
{
	if (a->nwords < nwords)
		return usage_error("'%s' needs %s", cmd, missing);
	if (a->nwords > nwords)
		return usage_error("unexpected argument '%s' after '%s'", a->words[nwords], cmd);
	return 0;
}

/* Sets a->kind from --live or --quick, refusing both. */
static int set_kind(struct ctl_args *a, const char *kind)
{
	if (a->kind && strcmp(a->kind, kind) != 0)
		return usage_error("%s", "--live and --quick exclude each other");
	a->kind = kind;
	return 0;
}

int main(int argc, char **argv)
{
	enum { OPT_JSON = 0x100, OPT_RMD, OPT_TO, OPT_WAIT, OPT_START, OPT_FORCE, OPT_LIVE, OPT_QUICK, OPT_FAILBACK,
	       OPT_FORMAT };
	static const struct option opts[] = {
		{ "ipc-name", required_argument, NULL, 'i' },
		{ "rmd", required_argument, NULL, OPT_RMD },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "to", required_argument, NULL, OPT_TO },
		{ "wait", required_argument, NULL, OPT_WAIT },
		{ "start", no_argument, NULL, OPT_START },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "live", no_argument, NULL, OPT_LIVE },
		{ "quick", no_argument, NULL, OPT_QUICK },
		{ "failback", no_argument, NULL, OPT_FAILBACK },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct ctl_args a = {
		.quorumd_name = CSVQ_IPC_DEFAULT_NAME,
		.rmd_name = CSVR_IPC_DEFAULT_NAME,
		.wait_s = -1,
	};
	int opt, rc;

	/* Options may come before, between or after the command's words. */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":i:hV", opts, NULL)) != -1) {
		switch (opt) {
		case 'i':
			if (!*optarg)
				return usage_error("%s", "--ipc-name needs a name");
			a.quorumd_name = optarg;
			break;
		case OPT_RMD:
			if (!*optarg)
				return usage_error("%s", "--rmd needs a name");
			a.rmd_name = optarg;
			break;
		case OPT_JSON: a.json = true; break;
		case OPT_TO:
			if (!*optarg)
				return usage_error("%s", "--to needs a node id or name");
			a.to = optarg;
			break;
		case OPT_WAIT:
			if (parse_seconds(optarg, &a.wait_s) < 0)
				return usage_error("--wait needs a number of seconds, 0 or more, not '%s'", optarg);
			break;
		case OPT_START: a.start = true; break;
		case OPT_FORCE: a.force = true; break;
		case OPT_LIVE:
		case OPT_QUICK:
			if ((rc = set_kind(&a, opt == OPT_LIVE ? "live" : "quick")))
				return rc;
			break;
		case OPT_FAILBACK: a.failback = true; break;
		case OPT_FORMAT:
			if (!*optarg)
				return usage_error("%s", "--format needs raw, qcow2, vpc or vhdx");
			a.format = optarg;
			break;
		case 'h': usage(stdout); return EXIT_OK;
		case 'V': printf(PROG " " PACKAGE_VERSION "\n"); return EXIT_OK;
		case ':':
			return usage_error("option '%s' needs an argument", argv[optind - 1]);
		default:
			/* optopt: 0 for an unknown long option, the option's
			 * value for a known one given an argument it does not
			 * take, the letter of an unknown short one. */
			if (!optopt)
				return usage_error("unknown option '%s'", argv[optind - 1]);
			if (optopt >= OPT_JSON || strncmp(argv[optind - 1], "--", 2) == 0)
				return usage_error("option '%s' takes no argument", argv[optind - 1]);
			return usage_error("unknown option '-%c'", optopt);
		}
	}
	a.words = argv + optind;
	a.nwords = argc - optind;
	if (!a.nwords)
		return usage_error("%s", "a command is needed");
	const char *cmd = a.words[0];
	if ((rc = check_options(&a)))
		return rc;
	if (strcmp(cmd, "status") == 0)
		return (rc = check_words(&a, cmd, 1, "")) ? rc : cmd_status(a.quorumd_name, a.json);
	if (strcmp(cmd, "events") == 0)
		return (rc = check_words(&a, cmd, 1, "")) ? rc : cmd_events(a.quorumd_name, a.json);
	if (strcmp(cmd, "volume") == 0)
		return cmd_volume(&a);
	if (strcmp(cmd, "node") == 0)
		return cmd_node(&a);
	if (strcmp(cmd, "vm") == 0)
		return cmd_vm(&a);
	return usage_error("unknown command '%s'", cmd);
}
