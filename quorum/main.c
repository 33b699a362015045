/* SPDX-License-Identifier: GPL-2.0-or-later */
/* csv-quorumd: the facts about the cluster for this node. Membership and
 * quorum from corosync, SAN access of every node from the disk heartbeat
 * in each volume's cluster area, this node's lease; published to local
 * clients over libqb IPC. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "daemon-log.h"
#include "quorumd-ipc.h"
#include "quorumd.h"

#define PROG "csv-quorumd"

#define DEFAULT_HEARTBEAT_MS 500u
#define DEFAULT_LEASE_MS 3000u
#define DEFAULT_FENCE_TIMEOUT_MS 60000u
/* A volume that does not open within this at start is left to its
 * heartbeat thread. */
#define PROBE_TIMEOUT_MS 5000u
/* A heartbeat thread stuck in I/O is left behind after this at stop. */
#define STOP_TIMEOUT_MS 2000u

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: " PROG " [options]\n"
		"Watch membership, quorum and every node's SAN access, and serve them to local clients.\n\n"
		"  -n, --node-id N          this node's corosync node id (default: corosync's own;\n"
		"                           refused when it differs)\n"
		"  -v, --volume PATH|URI    a shared volume to heartbeat on (repeatable): a block device,\n"
		"                           an image file or an nbd:// or nbd+unix:// URI\n"
		"  -s, --slot N             this node's slot in the cluster areas (default: its position\n"
		"                           in the corosync nodelist)\n"
		"  -H, --heartbeat-ms H     disk heartbeat interval (default %u)\n"
		"  -L, --lease-ms L         lease of this node (default %u)\n"
		"  -T, --token-ms T         the corosync token timeout to check L against (default: read\n"
		"                           from corosync)\n"
		"  -w, --witness            run the disk witness of the first volume as votequorum's\n"
		"                           quorum device (two-node clusters)\n"
		"  -F, --fence-agent PATH   fence agent to run against lost nodes (fence-agents\n"
		"                           interface: key=value lines on standard input)\n"
		"  -a, --fence-action ACT   the agent's action: off or reboot (default reboot)\n"
		"  -o, --fence-option K=V   a line to add to the agent's input (repeatable)\n"
		"  -t, --fence-timeout-ms N the agent is killed and retried after this (default %u)\n"
		"  -i, --ipc-name NAME      IPC endpoint to serve (default " CSVQ_IPC_DEFAULT_NAME ")\n"
		"  -f, --foreground         stay in the foreground and log to stderr\n"
		"  -h, --help               show this help\n"
		"  -V, --version            show the version\n",
		DEFAULT_HEARTBEAT_MS, DEFAULT_LEASE_MS, DEFAULT_FENCE_TIMEOUT_MS);
}

static bool log_to_stderr;

/* Fails the start with a message in the log and, for a daemon, on stderr
 * too (which it still shares with the parent that waits for it). */
#define die(...)                                                  \
	do {                                                      \
		if (!log_to_stderr) {                             \
			fprintf(stderr, PROG ": " __VA_ARGS__);   \
			fputc('\n', stderr);                      \
		}                                                 \
		qb_log(LOG_ERR, __VA_ARGS__);                     \
		goto out;                                         \
	} while (0)

static bool parse_u32(const char *opt, const char *s, uint32_t min, uint32_t max, uint32_t *ret)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || !*s || *end || *s == '-' || v < min || v > max) {
		fprintf(stderr, PROG ": %s '%s' is not a number from %u to %u\n", opt, s, min, max);
		return false;
	}
	*ret = (uint32_t)v;
	return true;
}

static int32_t on_stop_signal(int32_t sig, void *data)
{
	struct quorumd *d = data;
	qb_log(LOG_NOTICE, "%s received: stopping", strsignal(sig));
	qb_loop_stop(d->loop);
	return 0;
}

static void on_tick(void *data)
{
	struct quorumd *d = data;
	quorumd_evaluate(d);
	qb_loop_timer_add(d->loop, QB_LOOP_MED, (uint64_t)Q_TICK_MS * 1000000u, d, on_tick, &d->tick_timer);
}

static bool is_nbd_uri(const char *spec)
{
	return strncmp(spec, "nbd", 3) == 0 && strstr(spec, "://");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "node-id", required_argument, NULL, 'n' },
		{ "volume", required_argument, NULL, 'v' },
		{ "slot", required_argument, NULL, 's' },
		{ "heartbeat-ms", required_argument, NULL, 'H' },
		{ "lease-ms", required_argument, NULL, 'L' },
		{ "token-ms", required_argument, NULL, 'T' },
		{ "ipc-name", required_argument, NULL, 'i' },
		{ "witness", no_argument, NULL, 'w' },
		{ "fence-agent", required_argument, NULL, 'F' },
		{ "fence-action", required_argument, NULL, 'a' },
		{ "fence-option", required_argument, NULL, 'o' },
		{ "fence-timeout-ms", required_argument, NULL, 't' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	static struct quorumd daemon_state;
	struct quorumd *d = &daemon_state;
	struct q_timing *t = &d->st.timing;
	bool foreground = false, started = false;
	int opt, r, status = 1, ready_fd = -1;
	uint32_t v32;
	char err[768];

	d->opt_slot = -1;
	t->heartbeat_ms = DEFAULT_HEARTBEAT_MS;
	t->lease_ms = DEFAULT_LEASE_MS;
	snprintf(d->ipc_name, sizeof(d->ipc_name), "%s", CSVQ_IPC_DEFAULT_NAME);
	d->cmap_fd = d->vq_fd = d->cpg_fd = d->cfg_fd = -1;
	d->agent_out = -1;
	d->agent_action = "reboot";
	d->agent_timeout_ms = DEFAULT_FENCE_TIMEOUT_MS;

	while ((opt = getopt_long(argc, argv, "n:v:s:H:L:T:i:wF:a:o:t:fhV", opts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			if (!parse_u32("--node-id", optarg, 1, UINT32_MAX, &d->opt_node_id))
				return 1;
			break;
		case 'v':
			if (d->nspecs == Q_MAX_VOLUMES) {
				fprintf(stderr, PROG ": at most %u --volume options\n", Q_MAX_VOLUMES);
				return 1;
			}
			if (strlen(optarg) >= sizeof(d->st.volumes[0].spec)) {
				fprintf(stderr, PROG ": --volume '%s' is too long\n", optarg);
				return 1;
			}
			d->specs[d->nspecs++] = optarg;
			break;
		case 's':
			if (!parse_u32("--slot", optarg, 0, CSV_MAX_NODES_LIMIT - 1, &v32))
				return 1;
			d->opt_slot = v32;
			break;
		case 'H':
			if (!parse_u32("--heartbeat-ms", optarg, 10, 600000, &t->heartbeat_ms))
				return 1;
			break;
		case 'L':
			if (!parse_u32("--lease-ms", optarg, 30, 3600000, &t->lease_ms))
				return 1;
			break;
		case 'T':
			if (!parse_u32("--token-ms", optarg, 1, 3600000, &d->opt_token_ms))
				return 1;
			break;
		case 'i':
			if (!*optarg || strlen(optarg) >= sizeof(d->ipc_name) - 16) {
				fprintf(stderr, PROG ": --ipc-name '%s' is empty or too long\n", optarg);
				return 1;
			}
			snprintf(d->ipc_name, sizeof(d->ipc_name), "%s", optarg);
			break;
		case 'w': d->st.witness = true; break;
		case 'F':
			if (access(optarg, X_OK) < 0) {
				fprintf(stderr, PROG ": --fence-agent '%s' is not an executable file: %s\n", optarg,
					strerror(errno));
				return 1;
			}
			d->agent_path = optarg;
			break;
		case 'a':
			if (strcmp(optarg, "off") != 0 && strcmp(optarg, "reboot") != 0) {
				fprintf(stderr, PROG ": --fence-action '%s' is neither off nor reboot\n", optarg);
				return 1;
			}
			d->agent_action = optarg;
			break;
		case 'o':
			if (!strchr(optarg, '=') || optarg[0] == '=' || strchr(optarg, '\n')) {
				fprintf(stderr, PROG ": --fence-option '%s' is not KEY=VALUE on one line\n", optarg);
				return 1;
			}
			if (d->agent_nargs == sizeof(d->agent_args) / sizeof(d->agent_args[0])) {
				fprintf(stderr, PROG ": at most %zu --fence-option options\n",
					sizeof(d->agent_args) / sizeof(d->agent_args[0]));
				return 1;
			}
			d->agent_args[d->agent_nargs++] = optarg;
			break;
		case 't':
			if (!parse_u32("--fence-timeout-ms", optarg, 100, 3600000, &d->agent_timeout_ms))
				return 1;
			break;
		case 'f': foreground = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf(PROG " " PACKAGE_VERSION "\n"); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 1;
	}
	if (d->st.witness && d->nspecs == 0) {
		fprintf(stderr, PROG ": --witness needs a --volume: the witness is in the first volume's cluster area\n");
		return 1;
	}
	/* The checks that need no corosync come before anything starts. */
	if (d->opt_token_ms) {
		t->token_ms = d->opt_token_ms;
		if (q_timing_check(t, err, sizeof(err)) < 0) {
			fprintf(stderr, PROG ": refusing to start: %s\n", err);
			return 1;
		}
	} else if ((uint64_t)t->heartbeat_ms * 3 > t->lease_ms) {
		struct q_timing probe = *t;
		probe.token_ms = 1;
		q_timing_check(&probe, err, sizeof(err));
		fprintf(stderr, PROG ": refusing to start: %s\n", err);
		return 1;
	}

	if (!foreground)
		ready_fd = daemon_start(PROG);
	daemon_log_setup(PROG, foreground);
	log_to_stderr = foreground;
	signal(SIGPIPE, SIG_IGN);

	d->loop = qb_loop_create();
	if (!d->loop)
		die("cannot create the event loop");
	if (ipc_start(d, err, sizeof(err)) < 0)
		die("%s", err);
	r = cluster_connect(d, err, sizeof(err));
	if (r == -ENOTCONN)
		die("cannot use corosync (is it running?): %s", err);
	if (r < 0)
		die("refusing to start: %s", err);

	if (!d->opt_token_ms) {
		t->token_ms = cluster_token_ms(d);
		if (!t->token_ms)
			die("corosync has neither runtime.config.totem.token nor totem.token in cmap: give --token-ms");
	}
	if (q_timing_check(t, err, sizeof(err)) < 0)
		die("refusing to start: %s%s", err, d->opt_token_ms ? "" : " (token read from corosync)");

	uint32_t slot;
	if (d->opt_slot >= 0) {
		slot = (uint32_t)d->opt_slot;
	} else {
		const struct q_node *self = q_state_node(&d->st, d->st.node_id);
		slot = self->position;
	}
	for (uint32_t k = 0; k < d->nspecs; k++) {
		r = hb_probe(d->specs[k], slot, d->st.node_id, PROBE_TIMEOUT_MS, err, sizeof(err));
		if (r == -ETIMEDOUT || (r < 0 && r != -ERANGE && r != -EEXIST && is_nbd_uri(d->specs[k]) &&
					r != -EBADMSG && r != -EUCLEAN && r != -EPROTONOSUPPORT))
			/* A SAN path that is down now: its thread keeps trying. */
			qb_log(LOG_WARNING, "volume %s: %s; heartbeating starts when it opens", d->specs[k], err);
		else if (r < 0)
			die("refusing to start: volume %s: %s", d->specs[k], err);
	}
	d->st.nvolumes = d->nspecs;
	for (uint32_t k = 0; k < d->nspecs; k++) {
		struct hb_config c = {
			.spec = d->specs[k],
			.node_id = d->st.node_id,
			.slot = slot,
			.interval_ms = t->heartbeat_ms,
			.node_name = d->st.node_name,
		};
		snprintf(d->st.volumes[k].spec, sizeof(d->st.volumes[k].spec), "%s", d->specs[k]);
		d->st.volumes[k].slot = slot;
		r = hb_start(&c, &d->hb[k]);
		if (r < 0)
			die("volume %s: cannot start its heartbeat thread: %s", d->specs[k], strerror(-r));
	}

	qb_loop_signal_add(d->loop, QB_LOOP_HIGH, SIGTERM, d, on_stop_signal, NULL);
	qb_loop_signal_add(d->loop, QB_LOOP_HIGH, SIGINT, d, on_stop_signal, NULL);
	qb_loop_timer_add(d->loop, QB_LOOP_MED, (uint64_t)Q_TICK_MS * 1000000u, d, on_tick, &d->tick_timer);

	d->started_ms = q_now_ms();
	qb_log(LOG_NOTICE, "started as node %u (%s), slot %u, %u volume(s); heartbeat %u ms, lease %u ms, "
	       "token %u ms; IPC endpoint '%s'; disk witness %s; fence agent %s%s%s", d->st.node_id, d->st.node_name,
	       slot, d->st.nvolumes, t->heartbeat_ms, t->lease_ms, t->token_ms, d->ipc_name,
	       d->st.witness ? "on" : "off", d->agent_path ? d->agent_path : "none",
	       d->agent_path ? " action=" : "", d->agent_path ? d->agent_action : "");
	quorumd_evaluate(d);
	started = true;
	if (ready_fd >= 0) {
		daemon_ready(ready_fd);
		ready_fd = -1;
	}

	qb_loop_run(d->loop);
	status = 0;
out:
	/* The endpoint goes first: a client must not read a state that is
	 * being taken apart. */
	ipc_stop(d);
	agent_stop(d);
	for (uint32_t k = 0; k < Q_MAX_VOLUMES; k++) {
		if (!d->hb[k])
			continue;
		if (hb_stop(d->hb[k], STOP_TIMEOUT_MS) == -ETIMEDOUT)
			qb_log(LOG_WARNING, "volume %s: its heartbeat thread is stuck in I/O; leaving it behind",
			       d->specs[k]);
		d->hb[k] = NULL;
	}
	cluster_disconnect(d);
	if (started)
		qb_log(LOG_NOTICE, "stopped after %" PRIu64 " IPC requests", d->ipc_requests);
	if (d->loop)
		qb_loop_destroy(d->loop);
	qb_log_fini();
	return status;
}
