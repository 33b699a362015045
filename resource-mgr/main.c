/* SPDX-License-Identifier: GPL-2.0-or-later */
/* csv-rmd: the resource manager of a node. It keeps the cluster's
 * replicated state (which node holds each volume's coordinator role), and
 * the leader (the lowest node id of the group, while quorate) plans; each
 * node runs its own coordinators. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <qb/qblog.h>

#include "config.h"
#include "daemon-log.h"
#include "rmd-ipc.h"
#include "quorumd-ipc.h"
#include "vmagent-ipc.h"
#include "rmd.h"

#define PROG "csv-rmd"
/* How long csv-rmd waits at its start for csv-quorumd to answer. */
#define QUORUMD_WAIT_MS 30000

static struct rmd the_rmd;

uint64_t rmd_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: " PROG " --volume NAME:PORT=LUN... --address HOST --keyfile FILE [options]\n"
		"Place the coordinator role of each csvfs volume on a node of the cluster, move it\n"
		"when its node fails, loses its SAN path or is asked to, and run this node's part.\n\n"
		"  -v, --volume NAME:PORT=LUN  a volume this node serves: its name in the cluster, the\n"
		"                              TCP port of its coordinator, and its LUN on this node\n"
		"                              (the same spec csv-quorumd heartbeats on); repeatable\n"
		"  -a, --address HOST      this node's address on the cluster network (coordinators\n"
		"                          listen there; clients of other nodes connect to it)\n"
		"  -k, --keyfile FILE      cluster key file, for the coordinators\n"
		"  -c, --coordinator PATH  the csv-coordinatord to run (default: csv-coordinatord\n"
		"                          next to csv-rmd, else in PATH)\n"
		"  -q, --quorumd NAME      IPC endpoint of this node's csv-quorumd (csv-quorumd)\n"
		"  -i, --ipc-name NAME     IPC endpoint to serve (csv-rmd)\n"
		"  -g, --vmagent NAME      IPC endpoint of this node's csv-vmagent (csv-vmagent)\n"
		"  -m, --vm-memory MB      memory the VMs may use on this node (default: all of it)\n"
		"  -s, --state-dir DIR     where the state and coordinator logs go (/var/lib/csv-rmd)\n"
		"  -f, --foreground        stay in the foreground and log to stderr\n"
		"  -h, --help              show this help\n"
		"  -V, --version           show the version\n");
}

/* ---- names ------------------------------------------------------------------ */

const char *rmd_node_name(const struct rmd *d, uint32_t id)
{
	static char bufs[4][R_NAME_MAX + 16];
	static unsigned next;
	const struct rmd_peer *p = rmd_peer(d, id);
	if (p && p->known && p->name[0])
		return p->name;
	for (uint32_t i = 0; i < d->facts.nnodes; i++)
		if (d->facts.nodes[i].id == id && d->node_names[i][0])
			return d->node_names[i];
	char *b = bufs[next++ % 4];
	snprintf(b, sizeof(bufs[0]), "%u", id);
	return b;
}

uint32_t rmd_leader(const struct rmd *d)
{
	return d->joined && d->npeers ? d->peers[0].id : 0;  /* peers are sorted by id */
}

bool rmd_quorate(const struct rmd *d)
{
	return d->joined && d->synced && d->quorumd_up && d->facts.quorate;
}

/* ---- the saved state -------------------------------------------------------- */

static void state_path(const struct rmd *d, char *buf, size_t len, const char *suffix)
{
	snprintf(buf, len, "%s/state.json%s", d->state_dir, suffix);
}

/* Writes the state to STATE_DIR/state.json, durably and atomically. */
static void save_state(struct rmd *d)
{
	char path[1024], tmp[1100];
	state_path(d, path, sizeof(path), "");
	state_path(d, tmp, sizeof(tmp), ".new");
	struct json_object *o = r_state_json(&d->st);
	const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	bool ok = fd >= 0;
	size_t len = strlen(text);
	ok = ok && write(fd, text, len) == (ssize_t)len && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
	if (fd >= 0)
		close(fd);
	ok = ok && rename(tmp, path) == 0;
	if (ok) {
		int dfd = open(d->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
		d->state_dirty = false;
	} else {
		qb_log(LOG_ERR, "cannot save the state to %s: %s (the group still has it)", path, strerror(errno));
	}
	json_object_put(o);
}

/* Reads the saved state; a damaged one is set aside (the group has it). */
static void load_state(struct rmd *d)
{
	char path[1024], bad[1100], err[300];
	state_path(d, path, sizeof(path), "");
	struct json_object *o = json_object_from_file(path);
	if (!o) {
		if (access(path, F_OK) == 0) {
			state_path(d, bad, sizeof(bad), ".bad");
			rename(path, bad);
			qb_log(LOG_ERR, "the saved state %s is not JSON: set aside as %s; starting from the group's",
			       path, bad);
		}
		return;
	}
	if (r_state_from_json(o, &d->st, err, sizeof(err)) < 0) {
		memset(&d->st, 0, sizeof(d->st));
		state_path(d, bad, sizeof(bad), ".bad");
		rename(path, bad);
		qb_log(LOG_ERR, "the saved state %s is damaged (%s): set aside as %s; starting from the group's", path,
		       err, bad);
	} else {
		qb_log(LOG_INFO, "saved state of version %llu read from %s", (unsigned long long)d->st.version, path);
	}
	json_object_put(o);
}

/* ---- the plan --------------------------------------------------------------- */

static void plan(struct rmd *d)
{
	if (rmd_leader(d) != d->node_id || !rmd_quorate(d))
		return;
	/* Facts of now: the group may have changed since the last tick. */
	facts_refresh(d);
	if (!rmd_quorate(d))
		return;
	uint64_t now = rmd_now_ms();
	for (uint32_t k = 0; k < d->st.nvolumes; k++) {
		if (d->phase_seen[k] != d->st.volumes[k].phase || !d->phase_since_ms[k]) {
			d->phase_seen[k] = d->st.volumes[k].phase;
			d->phase_since_ms[k] = now;
		}
		d->facts.phase_since_ms[k] = d->phase_since_ms[k];
	}
	for (uint32_t i = 0; i < d->st.nvms; i++) {
		if (d->vm_phase_seen_gen[i] != d->st.vms[i].gen || !d->vm_phase_since_ms[i]) {
			d->vm_phase_seen_gen[i] = d->st.vms[i].gen;
			d->vm_phase_since_ms[i] = now;
		}
		d->facts.vm_phase_since_ms[i] = d->vm_phase_since_ms[i];
	}
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	d->facts.wall_ms = (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
	d->facts.hour = tm.tm_hour;
	d->facts.now_ms = now;
	d->facts.settling = false;
	for (uint32_t i = 0; i < d->facts.nnodes && now - d->started_ms < RMD_SETTLE_MS; i++)
		if (d->facts.nodes[i].member && !d->facts.nodes[i].rmd)
			d->facts.settling = true;
	struct r_decision dec;
	if (!r_plan(&d->st, &d->facts, &dec))
		return;
	/* One decision in flight per state version. */
	if (d->last_decision_version == d->st.version && now - d->last_decision_ms < 1000)
		return;
	dec.wall_ms = d->facts.wall_ms;
	if (group_send(d, RMD_DECIDE, r_decision_json(&dec)) == 0) {
		d->last_decision_version = d->st.version;
		d->last_decision_ms = now;
	}
}

void rmd_changed(struct rmd *d)
{
	d->state_dirty = true;
	save_state(d);
	roles_act(d);
	vms_act(d);
	plan(d);
}

/* ---- the tick --------------------------------------------------------------- */

/* Tells the group when this node's SAN access to its volumes changed. */
static void report_san(struct rmd *d)
{
	if (!d->synced || !d->quorumd_up)
		return;
	bool same = d->san_sent;
	for (uint32_t c = 0; c < d->nconf && same; c++)
		same = d->san_sent_ok[c] == d->conf[c].san_ok;
	if (same)
		return;
	struct json_object *o = json_object_new_object(), *san = json_object_new_object();
	for (uint32_t c = 0; c < d->nconf; c++)
		json_object_object_add(san, d->conf[c].name, json_object_new_boolean(d->conf[c].san_ok));
	json_object_object_add(o, "san", san);
	if (group_send(d, RMD_SAN, o) == 0) {
		d->san_sent = true;
		for (uint32_t c = 0; c < d->nconf; c++)
			d->san_sent_ok[c] = d->conf[c].san_ok;
	}
}

/* A csvfs client that stopped reporting is gone. */
static void expire_access(struct rmd *d)
{
	uint64_t now = rmd_now_ms();
	for (uint32_t c = 0; c < d->nconf; c++) {
		struct rmd_access *a = &d->local_access[c];
		if (!d->synced || !d->local_access_ms[c] || now - d->local_access_ms[c] < RMD_ACCESS_STALE_MS ||
		    strcmp(a->access, "unavailable") == 0)
			continue;
		snprintf(a->access, sizeof(a->access), "unavailable");
		snprintf(a->reason, sizeof(a->reason), "no csvfs client reports on the node");
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "volume", json_object_new_string(d->conf[c].name));
		json_object_object_add(o, "access", json_object_new_string(a->access));
		json_object_object_add(o, "reason", json_object_new_string(a->reason));
		group_send(d, RMD_ACCESS, o);
	}
}

static void on_tick(void *data)
{
	struct rmd *d = data;
	static uint64_t last_join_try;
	uint64_t now = rmd_now_ms();
	char err[300];
	bool had_uuids = true;
	for (uint32_t c = 0; c < d->nconf; c++)
		had_uuids &= d->conf[c].uuid[0] != '\0';
	facts_refresh(d);
	if (!d->joined && now - last_join_try >= 1000) {
		last_join_try = now;
		if (group_start(d, err, sizeof(err)) == 0)
			qb_log(LOG_NOTICE, "joined the csv-rmd group again");
	}
	if (d->joined && d->synced && !had_uuids) {
		bool has_uuids = true;
		for (uint32_t c = 0; c < d->nconf; c++)
			has_uuids &= d->conf[c].uuid[0] != '\0';
		if (has_uuids)
			group_send_hello(d);  /* the volumes' UUIDs, now known */
	}
	group_round_check(d);
	report_san(d);
	expire_access(d);
	roles_act(d);
	vms_act(d);
	plan(d);
	if (d->state_dirty)
		save_state(d);
	if (!d->stopping)
		qb_loop_timer_add(d->loop, QB_LOOP_MED, (uint64_t)RMD_TICK_MS * QB_TIME_NS_IN_MSEC, d, on_tick, NULL);
}

static int32_t on_stop_signal(int32_t sig, void *data)
{
	struct rmd *d = data;
	qb_log(LOG_NOTICE, "%s received: stopping this node's coordinators, then csv-rmd", strsignal(sig));
	d->stopping = true;
	qb_loop_stop(d->loop);
	return 0;
}

/* ---- options ---------------------------------------------------------------- */

/* Parses NAME:PORT=LUN into c; false with a message on stderr. */
static bool parse_volume(const char *arg, struct rmd_volume_conf *c)
{
	const char *colon = strchr(arg, ':'), *eq = strchr(arg, '=');
	char *end;
	if (!colon || !eq || colon > eq || colon == arg || !eq[1] || (size_t)(colon - arg) >= sizeof(c->name)) {
		fprintf(stderr, PROG ": --volume '%s' is not NAME:PORT=LUN\n", arg);
		return false;
	}
	memcpy(c->name, arg, (size_t)(colon - arg));
	c->name[colon - arg] = '\0';
	for (const char *p = c->name; *p; p++)
		if (!(*p == '-' || *p == '_' || *p == '.' || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= 'A' && *p <= 'Z'))) {
			fprintf(stderr, PROG ": --volume '%s': a name has letters, digits, '-', '_' and '.' only\n", arg);
			return false;
		}
	errno = 0;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (errno || end != eq || port == 0 || port > 65535) {
		fprintf(stderr, PROG ": --volume '%s': the port is not 1..65535\n", arg);
		return false;
	}
	c->port = (uint16_t)port;
	if (strlen(eq + 1) >= sizeof(c->spec)) {
		fprintf(stderr, PROG ": --volume '%s': the LUN spec is too long\n", arg);
		return false;
	}
	snprintf(c->spec, sizeof(c->spec), "%s", eq + 1);
	return true;
}

/* csv-coordinatord next to this program, else from PATH. */
static const char *default_coordinator(const char *argv0)
{
	static char path[4200];
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			const char *rel[] = { "/csv-coordinatord", "/../coordinator/csv-coordinatord" };
			for (unsigned i = 0; i < 2; i++) {
				snprintf(path, sizeof(path), "%s%s", self, rel[i]);
				if (access(path, X_OK) == 0)
					return path;
			}
		}
	}
	const char *env = getenv("PATH");
	char *dirs = strdup(env ? env : "/usr/sbin:/usr/bin:/sbin:/bin");
	for (char *save = NULL, *dir = strtok_r(dirs, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		snprintf(path, sizeof(path), "%s/csv-coordinatord", dir);
		if (access(path, X_OK) == 0) {
			free(dirs);
			return path;
		}
	}
	free(dirs);
	return NULL;
}

/* Waits for csv-quorumd to answer: this node's id and name come from it. */
static bool wait_quorumd(struct rmd *d)
{
	uint64_t until = rmd_now_ms() + QUORUMD_WAIT_MS;
	while (rmd_now_ms() < until) {
		facts_refresh(d);
		if (d->quorumd_up && d->node_id)
			return true;
		usleep(200000);
	}
	return false;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "volume", required_argument, NULL, 'v' },
		{ "address", required_argument, NULL, 'a' },
		{ "keyfile", required_argument, NULL, 'k' },
		{ "coordinator", required_argument, NULL, 'c' },
		{ "quorumd", required_argument, NULL, 'q' },
		{ "ipc-name", required_argument, NULL, 'i' },
		{ "vmagent", required_argument, NULL, 'g' },
		{ "vm-memory", required_argument, NULL, 'm' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct rmd *d = &the_rmd;
	bool foreground = false;
	char err[512];
	int opt, ready_fd = -1, status = 1;

	d->ipc_name = CSVR_IPC_DEFAULT_NAME;
	d->quorumd_name = CSVQ_IPC_DEFAULT_NAME;
	d->vmagent_name = CSVV_IPC_DEFAULT_NAME;
	d->state_dir = "/var/lib/csv-rmd";
	d->cpg_fd = -1;
	for (unsigned c = 0; c < R_MAX_VOLUMES; c++)
		d->child[c].ready_fd = -1;
	while ((opt = getopt_long(argc, argv, "v:a:k:c:q:i:g:m:s:fhV", opts, NULL)) != -1) {
		switch (opt) {
		case 'v':
			if (d->nconf == R_MAX_VOLUMES) {
				fprintf(stderr, PROG ": at most %d volumes\n", R_MAX_VOLUMES);
				return 1;
			}
			if (!parse_volume(optarg, &d->conf[d->nconf]))
				return 1;
			for (uint32_t c = 0; c < d->nconf; c++)
				if (strcmp(d->conf[c].name, d->conf[d->nconf].name) == 0 ||
				    d->conf[c].port == d->conf[d->nconf].port) {
					fprintf(stderr, PROG ": --volume '%s': its name or port is another volume's\n",
						optarg);
					return 1;
				}
			d->nconf++;
			break;
		case 'a':
			if (strlen(optarg) >= sizeof(d->address) || !optarg[0]) {
				fprintf(stderr, PROG ": --address '%s' is not an address\n", optarg);
				return 1;
			}
			snprintf(d->address, sizeof(d->address), "%s", optarg);
			break;
		case 'k': d->keyfile = optarg; break;
		case 'c': d->coordinator = optarg; break;
		case 'q': d->quorumd_name = optarg; break;
		case 'i': d->ipc_name = optarg; break;
		case 'g': d->vmagent_name = optarg; break;
		case 'm': {
			char *end;
			errno = 0;
			unsigned long mb = strtoul(optarg, &end, 10);
			if (errno || *end || end == optarg || mb == 0 || mb > UINT32_MAX) {
				fprintf(stderr, PROG ": --vm-memory '%s' is not a number of MB\n", optarg);
				return 1;
			}
			d->vm_memory_mb = (uint32_t)mb;
			break;
		}
		case 's': d->state_dir = optarg; break;
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
	if (!d->address[0] || !d->keyfile) {
		fprintf(stderr, PROG ": --address and --keyfile are required\n");
		usage(stderr);
		return 1;
	}
	if (access(d->keyfile, R_OK) < 0) {
		fprintf(stderr, PROG ": --keyfile %s: %s\n", d->keyfile, strerror(errno));
		return 1;
	}
	if (!d->coordinator)
		d->coordinator = default_coordinator(argv[0]);
	if (!d->coordinator || access(d->coordinator, X_OK) < 0) {
		fprintf(stderr, PROG ": no csv-coordinatord to run%s%s: give --coordinator PATH\n",
			d->coordinator ? " at " : " (not next to csv-rmd, not in PATH)",
			d->coordinator ? d->coordinator : "");
		return 1;
	}
	if (mkdir(d->state_dir, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, PROG ": --state-dir %s: %s\n", d->state_dir, strerror(errno));
		return 1;
	}

	if (!foreground)
		ready_fd = daemon_start(PROG);
	daemon_log_setup(PROG, foreground);
	signal(SIGPIPE, SIG_IGN);
	d->loop = qb_loop_create();
	if (!d->loop) {
		qb_log(LOG_ERR, "cannot create the event loop");
		goto out;
	}
	if (!wait_quorumd(d)) {
		qb_log(LOG_ERR, "refusing to start: %s", d->quorumd_error[0] ? d->quorumd_error :
		       "csv-quorumd did not say this node's id");
		goto out;
	}
	load_state(d);
	d->cpus = vms_host_cpus();
	vms_host_cpu_flags(d->cpu_flags, sizeof(d->cpu_flags));
	if (!d->vm_memory_mb)
		d->vm_memory_mb = vms_host_memory_mb();
	if (vms_start(d, err, sizeof(err)) < 0) {
		qb_log(LOG_ERR, "refusing to start: %s", err);
		goto out;
	}
	if (ipc_start(d, err, sizeof(err)) < 0) {
		qb_log(LOG_ERR, "refusing to start: %s", err);
		goto out;
	}
	if (group_start(d, err, sizeof(err)) < 0) {
		qb_log(LOG_ERR, "refusing to start: %s", err);
		goto out;
	}
	qb_loop_signal_add(d->loop, QB_LOOP_HIGH, SIGTERM, d, on_stop_signal, NULL);
	qb_loop_signal_add(d->loop, QB_LOOP_HIGH, SIGINT, d, on_stop_signal, NULL);
	qb_loop_timer_add(d->loop, QB_LOOP_MED, (uint64_t)RMD_TICK_MS * QB_TIME_NS_IN_MSEC, d, on_tick, NULL);
	d->started_ms = rmd_now_ms();
	qb_log(LOG_NOTICE, "started as node %u (%s) at %s, %u volume(s); coordinator %s; state in %s; IPC "
	       "endpoint '%s'", d->node_id, d->node_name, d->address, d->nconf, d->coordinator, d->state_dir,
	       d->ipc_name);
	if (ready_fd >= 0) {
		daemon_ready(ready_fd);
		ready_fd = -1;
	}
	qb_loop_run(d->loop);

	roles_stop_all(d, false, "csv-rmd stops");
	status = 0;
out:
	group_stop(d);
	vms_stop(d);
	ipc_stop(d);
	facts_stop(d);
	if (d->state_dirty)
		save_state(d);
	if (d->loop)
		qb_loop_destroy(d->loop);
	qb_log_fini();
	return status;
}
