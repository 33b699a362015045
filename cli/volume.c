/* SPDX-License-Identifier: GPL-2.0-or-later */
/* csvctl volume list|state|move|redirect: the volumes as csv-rmd places
 * them (lib/rmd-ipc.h), a coordinator moved to another node, file-system
 * redirected mode on or off. A move or a redirect is followed by asking
 * for the state every POLL_MS until it is done or the wait runs out. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "csvctl.h"
#include "rmd-ipc.h"

#define POLL_MS 200
#define MOVE_WAIT_S 60.0
#define REDIRECT_WAIT_S 10.0

/* ---- the command line ------------------------------------------------------------ */

enum { ALLOW_JSON = 1, ALLOW_TO = 2, ALLOW_WAIT = 4 };

/* Refuses options the command does not take, and a number of words other
 * than nwords (words[0] is "volume"). */
static int check_usage(const struct ctl_args *a, const char *cmd, int allow, int nwords, const char *missing)
{
	if (a->nwords < nwords)
		return usage_error("'%s' needs %s", cmd, missing);
	if (a->nwords > nwords)
		return usage_error("unexpected argument '%s' after '%s'", a->words[nwords], cmd);
	if (a->json && !(allow & ALLOW_JSON))
		return usage_error("'%s' takes no --json", cmd);
	if (a->to && !(allow & ALLOW_TO))
		return usage_error("--to is only for 'volume move', not '%s'", cmd);
	if (a->wait_s >= 0 && !(allow & ALLOW_WAIT))
		return usage_error("--wait is only for 'volume move' and 'volume redirect', not '%s'", cmd);
	return 0;
}

/* ---- printing -------------------------------------------------------------------- */

/* "node2 (2) 10.77.0.2:7000", "node2 (2)" while it has no address, "-". */
static const char *coordinator(struct json_object *state, struct json_object *v, char *buf, size_t len)
{
	char name[64];
	if (!has(v, "holder"))
		return "-";
	int64_t h = geti(v, "holder");
	const char *addr = gets(v, "coordinator", NULL);
	snprintf(buf, len, "%s (%" PRId64 ")%s%s", node_name(state, h, name, sizeof(name)), h, addr ? " " : "",
		 addr ? addr : "");
	return buf;
}

static void print_list(struct json_object *state)
{
	struct json_object *vols = get(state, "volumes");
	char buf[160];
	int wname = 4, wcoord = 11, wphase = 5;

	if (!count(vols)) {
		printf("no volumes\n");
		return;
	}
	for (size_t i = 0; i < count(vols); i++) {
		struct json_object *v = at(vols, i);
		wname = col_width(wname, volume_key(v));
		wcoord = col_width(wcoord, coordinator(state, v, buf, sizeof(buf)));
		wphase = col_width(wphase, gets(v, "phase", "?"));
	}
	printf("%-*s  %-8s  %-*s  %-*s  %-5s  %s\n", wname, "NAME", "UUID", wcoord, "COORDINATOR", wphase, "PHASE",
	       "EPOCH", "REDIRECT");
	for (size_t i = 0; i < count(vols); i++) {
		struct json_object *v = at(vols, i);
		printf("%-*s  %-8.8s  %-*s  %-*s  %-5" PRId64 "  %s\n", wname, volume_key(v), gets(v, "uuid", "-"),
		       wcoord, coordinator(state, v, buf, sizeof(buf)), wphase, gets(v, "phase", "?"),
		       geti(v, "epoch"), yesno(getb(v, "redirect")));
	}
}

static void print_state(struct json_object *state, struct json_object *v)
{
	struct json_object *vnodes = get(v, "nodes");
	const char *reason = gets(v, "reason", "");
	char buf[160];
	int wname = 4, waccess = 6;

	printf("Volume:      %s\n", volume_key(v));
	printf("UUID:        %s\n", gets(v, "uuid", "unknown"));
	printf("Phase:       %s\n", gets(v, "phase", "?"));
	printf("Holder:      %s\n", coordinator(state, v, buf, sizeof(buf)));
	printf("Epoch:       %" PRId64 "\n", geti(v, "epoch"));
	printf("Reason:      %s\n", reason[0] ? reason : "-");
	printf("Redirected:  %s\n", getb(v, "redirect") ? "yes (file-system redirected mode)" : "no");
	printf("Moves:       %" PRId64 "\n", geti(v, "moves"));

	printf("\nNodes:\n");
	if (!count(vnodes)) {
		printf("  none reported\n");
		return;
	}
	for (size_t i = 0; i < count(vnodes); i++) {
		struct json_object *n = at(vnodes, i);
		wname = col_width(wname, node_name(state, geti(n, "id"), buf, sizeof(buf)));
		waccess = col_width(waccess, gets(n, "access", "?"));
	}
	printf("  %-4s  %-*s  %-7s  %-*s  %s\n", "NODE", wname, "NAME", "SAN", waccess, "ACCESS", "REASON");
	for (size_t i = 0; i < count(vnodes); i++) {
		struct json_object *n = at(vnodes, i);
		const char *nr = gets(n, "reason", "");
		printf("  %-4" PRId64 "  %-*s  %-7s  %-*s  %s\n", geti(n, "id"), wname,
		       node_name(state, geti(n, "id"), buf, sizeof(buf)), gets(n, "san", "?"), waccess,
		       gets(n, "access", "?"), nr[0] ? nr : "-");
	}
}

/* ---- following the state --------------------------------------------------------- */

static double seconds_since(uint64_t t0)
{
	return (double)(monotonic_ns() - t0) / 1e9;
}

static void pause_poll(void)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = POLL_MS * 1000000L };
	nanosleep(&ts, NULL);
}

/* Asks for the state again and finds the volume in it (by key, the name it
 * had); *state_io is replaced. */
static int refresh(struct rmd_conn *r, const char *key, struct json_object **state_io, struct json_object **ret_volume)
{
	struct json_object *s = NULL, *v = NULL;
	int rc = rmd_conn_state(r, &s);
	if (rc < 0)
		return rc;
	struct json_object *vols = get(s, "volumes");
	for (size_t i = 0; i < count(vols) && !v; i++)
		if (strcmp(volume_key(at(vols, i)), key) == 0)
			v = at(vols, i);
	if (!v) {
		fprintf(stderr, PROG ": volume %s is gone from the state of csv-rmd\n", key);
		json_object_put(s);
		return -ENOENT;
	}
	json_object_put(*state_io);
	*state_io = s;
	*ret_volume = v;
	return 0;
}

/* "stopping on node 1", "running on node 2, epoch 7", "unplaced". */
static const char *where(struct json_object *v, char *buf, size_t len)
{
	const char *phase = gets(v, "phase", "?");
	if (!has(v, "holder"))
		snprintf(buf, len, "%s", phase);
	else if (strcmp(phase, "running") == 0)
		snprintf(buf, len, "running on node %" PRId64 ", epoch %" PRId64, geti(v, "holder"), geti(v, "epoch"));
	else if (strcmp(phase, "waiting-fence") == 0)
		snprintf(buf, len, "waiting until node %" PRId64 " is fenced", geti(v, "holder"));
	else
		snprintf(buf, len, "%s on node %" PRId64, phase, geti(v, "holder"));
	return buf;
}

/* The reason of the volume, as " (REASON)", or "". */
static const char *why(struct json_object *v, char *buf, size_t len)
{
	const char *reason = gets(v, "reason", "");
	if (!reason[0])
		return "";
	snprintf(buf, len, " (%s)", reason);
	return buf;
}

/* Stopping or starting: the steps of a move, whose reason is the move. */
static bool moving(struct json_object *v)
{
	const char *phase = gets(v, "phase", "");
	return strcmp(phase, "stopping") == 0 || strcmp(phase, "starting") == 0;
}

static bool same_place(struct json_object *a, struct json_object *b)
{
	return strcmp(gets(a, "phase", ""), gets(b, "phase", "")) == 0 && has(a, "holder") == has(b, "holder") &&
	       geti(a, "holder") == geti(b, "holder");
}

/* Follows the move of the volume key to node `to` until it runs there. v0
 * is the volume as it was before the move. */
static int follow_move(struct rmd_conn *r, const struct ctl_args *a, const char *key, int64_t to,
		       struct json_object *v0, uint64_t t0)
{
	double wait_s = a->wait_s >= 0 ? a->wait_s : MOVE_WAIT_S;
	struct json_object *last = json_object_get(v0), *state = NULL, *v;
	char w[128], y[256];
	int rc = EXIT_FAIL;

	for (;;) {
		if (refresh(r, key, &state, &v) < 0)
			goto out;
		bool changed = !same_place(v, last);
		bool running = strcmp(gets(v, "phase", ""), "running") == 0;
		bool done = running && has(v, "holder") && geti(v, "holder") == to;

		if (changed || done) {
			if (a->json)
				print_json(v);
			else if (running)
				printf("%s: %s (%.1f s)\n", key, where(v, w, sizeof(w)), seconds_since(t0));
			else if (moving(v))
				printf("%s: %s\n", key, where(v, w, sizeof(w)));
			else
				printf("%s: %s%s\n", key, where(v, w, sizeof(w)), why(v, y, sizeof(y)));
			fflush(stdout);
			json_object_put(last);
			last = json_object_get(v);
		}
		if (done) {
			rc = EXIT_OK;
			goto out;
		}
		/* Started again elsewhere, with a new epoch: this move is over. */
		if (running && geti(v, "epoch") != geti(v0, "epoch")) {
			fprintf(stderr, PROG ": %s did not move to node %" PRId64 ": it is %s%s\n", key, to,
				where(v, w, sizeof(w)), why(v, y, sizeof(y)));
			goto out;
		}
		if (seconds_since(t0) >= wait_s) {
			fprintf(stderr, PROG ": %s is not running on node %" PRId64 " after %g s: it is %s%s\n", key, to,
				wait_s, where(v, w, sizeof(w)), why(v, y, sizeof(y)));
			goto out;
		}
		pause_poll();
	}
out:
	json_object_put(last);
	json_object_put(state);
	return rc;
}

/* The member nodes whose access to the volume is not yet what redirected
 * mode on (or off) makes it, as "node1 (direct), node3 (paused)" in buf;
 * returns how many. A node without a csvfs client ("unavailable") has
 * nothing to follow and is not waited for. */
static size_t pending_nodes(struct json_object *state, struct json_object *v, bool on, char *buf, size_t len)
{
	struct json_object *nodes = get(state, "nodes"), *vnodes = get(v, "nodes");
	size_t n = 0;
	char name[64];

	buf[0] = '\0';
	if (getb(v, "redirect") != on) {
		snprintf(buf, len, "csv-rmd (mode still %s)", on ? "off" : "on");
		n++;
	}
	for (size_t i = 0; i < count(nodes); i++) {
		struct json_object *node = at(nodes, i);
		if (!getb(node, "member"))
			continue;
		int64_t id = geti(node, "id");
		const char *access = "unavailable";
		for (size_t k = 0; k < count(vnodes); k++)
			if (geti(at(vnodes, k), "id") == id)
				access = gets(at(vnodes, k), "access", "unavailable");
		if (strcmp(access, "unavailable") == 0 || (strcmp(access, "fs-redirected") == 0) == on)
			continue;
		size_t l = strlen(buf);
		snprintf(buf + l, len - l, "%s%s (%s)", l ? ", " : "", node_name(state, id, name, sizeof(name)), access);
		n++;
	}
	return n;
}

static int follow_redirect(struct rmd_conn *r, const struct ctl_args *a, const char *key, bool on, uint64_t t0)
{
	double wait_s = a->wait_s >= 0 ? a->wait_s : REDIRECT_WAIT_S;
	struct json_object *state = NULL, *v;
	char pending[1024], shown[1024] = "";
	int rc = EXIT_FAIL;

	for (;;) {
		if (refresh(r, key, &state, &v) < 0)
			goto out;
		if (!pending_nodes(state, v, on, pending, sizeof(pending))) {
			printf("%s: %s on every node (%.1f s)\n", key,
			       on ? "file-system redirected" : "redirected mode off", seconds_since(t0));
			rc = EXIT_OK;
			goto out;
		}
		if (seconds_since(t0) >= wait_s) {
			fprintf(stderr, PROG ": %s: redirected mode %s: still pending after %g s: %s\n", key,
				on ? "on" : "off", wait_s, pending);
			goto out;
		}
		if (strcmp(pending, shown) != 0) {
			printf("%s: waiting for %s\n", key, pending);
			fflush(stdout);
			snprintf(shown, sizeof(shown), "%s", pending);
		}
		pause_poll();
	}
out:
	json_object_put(state);
	return rc;
}

/* ---- commands ---------------------------------------------------------------------- */

static int volume_list(const struct ctl_args *a)
{
	struct rmd_conn r;
	struct json_object *s = NULL;
	int rc = check_usage(a, "volume list", ALLOW_JSON, 2, "");
	if (rc)
		return rc;
	if (rmd_conn_open(&r, a->rmd_name) < 0)
		return EXIT_FAIL;
	rc = EXIT_FAIL;
	if (rmd_conn_state(&r, &s) < 0)
		goto out;
	if (a->json) {
		struct json_object *vols = get(s, "volumes");
		if (!vols) {
			fprintf(stderr, PROG ": the state of csv-rmd has no \"volumes\"\n");
			goto out;
		}
		print_json(vols);
	} else {
		print_list(s);
	}
	rc = EXIT_OK;
out:
	json_object_put(s);
	rmd_conn_close(&r);
	return fflush(stdout) == 0 ? rc : EXIT_FAIL;
}

static int volume_state(const struct ctl_args *a)
{
	struct rmd_conn r;
	struct json_object *s = NULL, *v;
	int rc = check_usage(a, "volume state", ALLOW_JSON, 3, "a VOLUME");
	if (rc)
		return rc;
	if (rmd_conn_open(&r, a->rmd_name) < 0)
		return EXIT_FAIL;
	rc = EXIT_FAIL;
	if (rmd_conn_state(&r, &s) < 0 || state_find_volume(s, a->words[2], &v) < 0)
		goto out;
	if (a->json)
		print_json(v);
	else
		print_state(s, v);
	rc = EXIT_OK;
out:
	json_object_put(s);
	rmd_conn_close(&r);
	return fflush(stdout) == 0 ? rc : EXIT_FAIL;
}

static int volume_move(const struct ctl_args *a)
{
	struct rmd_conn r;
	struct json_object *s = NULL, *v, *body = NULL, *reply = NULL;
	char what[512];
	const char *key;
	int64_t to;
	int rc = check_usage(a, "volume move", ALLOW_JSON | ALLOW_TO | ALLOW_WAIT, 3, "a VOLUME");
	if (rc)
		return rc;
	if (!a->to)
		return usage_error("'volume move' needs --to NODE");
	if (rmd_conn_open(&r, a->rmd_name) < 0)
		return EXIT_FAIL;
	rc = EXIT_FAIL;
	if (rmd_conn_state(&r, &s) < 0 || state_find_volume(s, a->words[2], &v) < 0 || state_find_node(s, a->to, &to) < 0)
		goto out;
	key = volume_key(v); /* in s, which lives until the end */
	snprintf(what, sizeof(what), "move %s to node %" PRId64, key, to);
	body = json_object_new_object();
	if (!body || json_object_object_add(body, "volume", json_object_new_string(key)) < 0 ||
	    json_object_object_add(body, "to", json_object_new_int64(to)) < 0) {
		fprintf(stderr, PROG ": no memory\n");
		goto out;
	}
	uint64_t t0 = monotonic_ns();
	if (rmd_conn_request(&r, CSVR_REQ_MOVE, body, what, &reply) < 0)
		goto out;
	if (a->json)
		print_json(reply);
	else if (gets(reply, "message", "")[0])
		printf("%s\n", gets(reply, "message", ""));
	fflush(stdout);
	rc = a->wait_s == 0 ? EXIT_OK : follow_move(&r, a, key, to, v, t0);
out:
	json_object_put(reply);
	json_object_put(body);
	json_object_put(s);
	rmd_conn_close(&r);
	return fflush(stdout) == 0 ? rc : EXIT_FAIL;
}

static int volume_redirect(const struct ctl_args *a)
{
	struct rmd_conn r;
	struct json_object *s = NULL, *v, *body = NULL, *reply = NULL;
	char what[512];
	const char *key;
	bool on;
	int rc = check_usage(a, "volume redirect", ALLOW_WAIT, 4, a->nwords < 3 ? "a VOLUME and on or off" : "on or off");
	if (rc)
		return rc;
	if (strcmp(a->words[3], "on") == 0)
		on = true;
	else if (strcmp(a->words[3], "off") == 0)
		on = false;
	else
		return usage_error("'volume redirect' takes on or off, not '%s'", a->words[3]);
	if (rmd_conn_open(&r, a->rmd_name) < 0)
		return EXIT_FAIL;
	rc = EXIT_FAIL;
	if (rmd_conn_state(&r, &s) < 0 || state_find_volume(s, a->words[2], &v) < 0)
		goto out;
	key = volume_key(v); /* in s, which lives until the end */
	snprintf(what, sizeof(what), "turn redirected mode of %s %s", key, on ? "on" : "off");
	body = json_object_new_object();
	if (!body || json_object_object_add(body, "volume", json_object_new_string(key)) < 0 ||
	    json_object_object_add(body, "on", json_object_new_boolean(on)) < 0) {
		fprintf(stderr, PROG ": no memory\n");
		goto out;
	}
	uint64_t t0 = monotonic_ns();
	if (rmd_conn_request(&r, CSVR_REQ_REDIRECT, body, what, &reply) < 0)
		goto out;
	if (gets(reply, "message", "")[0])
		printf("%s\n", gets(reply, "message", ""));
	fflush(stdout);
	rc = a->wait_s == 0 ? EXIT_OK : follow_redirect(&r, a, key, on, t0);
out:
	json_object_put(reply);
	json_object_put(body);
	json_object_put(s);
	rmd_conn_close(&r);
	return fflush(stdout) == 0 ? rc : EXIT_FAIL;
}

int cmd_volume(const struct ctl_args *a)
{
	static const struct {
		const char *name;
		int (*run)(const struct ctl_args *a);
	} cmds[] = {
		{ "list", volume_list },
		{ "state", volume_state },
		{ "move", volume_move },
		{ "redirect", volume_redirect },
	};
	if (a->nwords < 2)
		return usage_error("%s", "'volume' needs a command: list, state, move or redirect");
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
		if (strcmp(a->words[1], cmds[i].name) == 0)
			return cmds[i].run(a);
	return usage_error("unknown volume command '%s' (list, state, move or redirect)", a->words[1]);
}
