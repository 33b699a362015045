/* SPDX-License-Identifier: GPL-2.0-or-later */
/* csvctl volume list|state|move|redirect: the volumes as csv-rmd places
 * them (lib/rmd-ipc.h), a coordinator moved to another node, file-system
 * redirected mode on or off. A move or a redirect is followed in the state
 * (follow.c) until it is done or the wait runs out. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "csvctl.h"
#include "rmd-ipc.h"

#define MOVE_WAIT_S 60.0
#define REDIRECT_WAIT_S 10.0

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

/* ---- following the state (follow.c) ------------------------------------------------ */

/* The volume followed in the state, found by key (the name it had), or
 * NULL after saying that it is gone. */
static struct json_object *followed_volume(struct json_object *state, const char *key)
{
	struct json_object *vols = get(state, "volumes");
	for (size_t i = 0; i < count(vols); i++)
		if (strcmp(volume_key(at(vols, i)), key) == 0)
			return at(vols, i);
	fprintf(stderr, PROG ": volume %s is gone from the state of csv-rmd\n", key);
	return NULL;
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

/* What the steps keep: the volume followed, and for a move where it goes
 * and what it was before, for a redirect the mode and the nodes last said
 * to be pending. */
struct volume_wait {
	const char *key;
	int64_t to;
	struct json_object *before; /* the volume in the state read before the move */
	bool json;                  /* --json: each new place as the volume's object */
	bool on;
	char shown[1024];
};

/* One state of a move: each new place of the volume on stdout (as JSON
 * with --json); over once it runs on node `to`, or failed when it started
 * again elsewhere. */
static int move_step(struct follow *f, struct json_object *prev, struct json_object *state)
{
	struct volume_wait *w = f->data;
	struct json_object *v = followed_volume(state, w->key);
	char place[128], reason[256];

	if (!v)
		return -ENOENT;
	/* prev held the volume, or this step would have failed on it. */
	struct json_object *last = prev ? followed_volume(prev, w->key) : w->before;
	bool running = strcmp(gets(v, "phase", ""), "running") == 0;
	bool done = running && has(v, "holder") && geti(v, "holder") == w->to;

	if (!same_place(v, last) || done) {
		if (w->json)
			print_json(v);
		else if (running)
			printf("%s: %s (%.1f s)\n", w->key, where(v, place, sizeof(place)), elapsed_s(f->t0));
		else if (moving(v))
			printf("%s: %s\n", w->key, where(v, place, sizeof(place)));
		else
			printf("%s: %s%s\n", w->key, where(v, place, sizeof(place)), why(v, reason, sizeof(reason)));
		fflush(stdout);
	}
	if (done)
		return 1;
	/* Started again elsewhere, with a new epoch: this move is over. */
	if (running && geti(v, "epoch") != geti(w->before, "epoch")) {
		fprintf(stderr, PROG ": %s did not move to node %" PRId64 ": it is %s%s\n", w->key, w->to,
			where(v, place, sizeof(place)), why(v, reason, sizeof(reason)));
		return -ECANCELED;
	}
	snprintf(f->now, sizeof(f->now), "it is %s%s", where(v, place, sizeof(place)),
		 why(v, reason, sizeof(reason)));
	return 0;
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

/* One state of a redirect: the nodes still pending on stdout when they
 * change; over once the mode and every member node's access follow. */
static int redirect_step(struct follow *f, struct json_object *prev, struct json_object *state)
{
	struct volume_wait *w = f->data;
	struct json_object *v = followed_volume(state, w->key);

	if (!v)
		return -ENOENT;
	if (!pending_nodes(state, v, w->on, f->now, sizeof(f->now))) {
		if (w->json)
			print_json(v);
		else
			printf("%s: %s on every node (%.1f s)\n", w->key,
			       w->on ? "file-system redirected" : "redirected mode off", elapsed_s(f->t0));
		return 1;
	}
	/* Once the time is up, the nodes pending are said by follow() alone.
	 * With --json, stdout carries JSON only. */
	if (elapsed_s(f->t0) < f->wait_s && strcmp(f->now, w->shown) != 0) {
		fprintf(w->json ? stderr : stdout, "%s: waiting for %s\n", w->key, f->now);
		fflush(stdout);
		snprintf(w->shown, sizeof(w->shown), "%s", f->now);
	}
	return 0;
}

/* ---- commands ---------------------------------------------------------------------- */

static int volume_list(const struct ctl_args *a)
{
	return rmd_list_command(a, "volume list", "volumes", print_list);
}

static int volume_state(const struct ctl_args *a)
{
	struct rmd_conn r;
	struct json_object *s = NULL, *v;
	int rc = check_words(a, "volume state", 3, "a VOLUME");
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

/* Sends a move (to node w->to) or a redirect (w->on) of the volume w->key,
 * then follows it with f->step unless --wait 0. The reply is said as for a
 * request that does not wait: with --json it is the first of the JSON
 * lines, before each new place of the volume (move) or the volume once
 * every node follows (redirect). */
static int volume_change(const struct ctl_args *a, struct rmd_conn *r, int32_t req, const char *what,
			 struct follow *f)
{
	struct volume_wait *w = f->data;
	struct json_object *body = json_object_new_object();
	int rc = EXIT_FAIL;

	if (!body || !body_add(body, "volume", json_object_new_string(w->key)) ||
	    !(req == CSVR_REQ_MOVE ? body_add(body, "to", json_object_new_int64(w->to))
				   : body_add(body, "on", json_object_new_boolean(w->on)))) {
		fprintf(stderr, PROG ": no memory\n");
		goto out;
	}
	f->r = r;
	f->t0 = monotonic_ns();
	if (request_say(r, a, req, body, what, false) != EXIT_OK)
		goto out;
	rc = a->wait_s == 0 || follow(f) == 0 ? EXIT_OK : EXIT_FAIL;
out:
	json_object_put(f->state);
	json_object_put(body);
	return rc;
}

/* volume move VOLUME --to NODE [--wait S] [--json] */
static int volume_move(const struct ctl_args *a)
{
	struct volume_wait w = { .json = a->json };
	struct follow f = { .step = move_step, .data = &w, .wait_s = a->wait_s >= 0 ? a->wait_s : MOVE_WAIT_S };
	struct rmd_conn r;
	struct json_object *s = NULL;
	char what[512], goal[512];
	int rc = check_words(a, "volume move", 3, "a VOLUME");
	if (rc)
		return rc;
	if (!a->to)
		return usage_error("%s", "'volume move' needs --to NODE");
	if (rmd_conn_open(&r, a->rmd_name) < 0)
		return EXIT_FAIL;
	rc = EXIT_FAIL;
	if (rmd_conn_state(&r, &s) < 0 || state_find_volume(s, a->words[2], &w.before) < 0 ||
	    state_find_node(s, a->to, &w.to) < 0)
		goto out;
	w.key = volume_key(w.before); /* in s, which lives until the end */
	snprintf(what, sizeof(what), "move %s to node %" PRId64, w.key, w.to);
	snprintf(goal, sizeof(goal), "%s is not running on node %" PRId64, w.key, w.to);
	f.goal = goal;
	rc = volume_change(a, &r, CSVR_REQ_MOVE, what, &f);
out:
	json_object_put(s);
	rmd_conn_close(&r);
	return fflush(stdout) == 0 ? rc : EXIT_FAIL;
}

/* volume redirect VOLUME on|off [--wait S] [--json] */
static int volume_redirect(const struct ctl_args *a)
{
	struct volume_wait w = { .json = a->json };
	struct follow f = { .step = redirect_step,
			    .data = &w,
			    .wait_s = a->wait_s >= 0 ? a->wait_s : REDIRECT_WAIT_S };
	struct rmd_conn r;
	struct json_object *s = NULL, *v;
	char what[512], goal[512];
	int rc = check_words(a, "volume redirect", 4, a->nwords < 3 ? "a VOLUME and on or off" : "on or off");
	if (rc)
		return rc;
	if (strcmp(a->words[3], "on") == 0)
		w.on = true;
	else if (strcmp(a->words[3], "off") == 0)
		w.on = false;
	else
		return usage_error("'volume redirect' takes on or off, not '%s'", a->words[3]);
	if (rmd_conn_open(&r, a->rmd_name) < 0)
		return EXIT_FAIL;
	rc = EXIT_FAIL;
	if (rmd_conn_state(&r, &s) < 0 || state_find_volume(s, a->words[2], &v) < 0)
		goto out;
	w.key = volume_key(v); /* in s, which lives until the end */
	snprintf(what, sizeof(what), "turn redirected mode of %s %s", w.key, w.on ? "on" : "off");
	snprintf(goal, sizeof(goal), "%s: redirected mode %s: still pending", w.key, w.on ? "on" : "off");
	f.goal = goal;
	rc = volume_change(a, &r, CSVR_REQ_REDIRECT, what, &f);
out:
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
