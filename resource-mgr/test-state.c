/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The rules of csv-rmd as a cluster sees them: the state's JSON form, the
 * volumes it knows, which node may hold a volume, where the leader places
 * it, how a lost holder's role is freed only once the node is fenced,
 * moves, SAN loss, start timeouts, and the messages (decisions, reports,
 * moves, redirect) that change the state. The leader's loop is played as
 * the daemon plays it: plan, apply the decision, plan again. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"
#include "test-rmd.h"

/* ---- helpers ------------------------------------------------------------------ */

/* node(), lose(), assert_has(), from_text(), assert_rejected() and
 * ADD_CASE() are in test-rmd.h, shared with test-vm-state.c. */

/* A state of n unplaced volumes "vol1".."volN", each with a UUID and a
 * port, as the nodes' hellos add them. */
static void make_state(struct r_state *s, unsigned nvolumes)
{
	memset(s, 0, sizeof(*s));
	for (unsigned k = 0; k < nvolumes; k++) {
		char name[16], uuid[40];
		snprintf(name, sizeof(name), "vol%u", k + 1);
		snprintf(uuid, sizeof(uuid), "%08x-aaaa-bbbb-cccc-dddddddddddd", k + 1);
		ck_assert_int_eq(r_volume_add(s, name, uuid, (uint16_t)(7000 + k)), (int)k);
	}
}

/* A healthy quorate cluster of nodes 1..n: each runs csv-rmd, is a
 * member, is not fenced, serves and sees every volume of the state. */
static void facts_all_ok(struct r_facts *f, unsigned nnodes, unsigned nvolumes)
{
	memset(f, 0, sizeof(*f));
	f->quorate = true;
	f->now_ms = NOW;
	f->nnodes = nnodes;
	for (unsigned i = 0; i < nnodes; i++) {
		struct r_node_facts *n = &f->nodes[i];
		n->id = i + 1;
		n->rmd = n->member = true;
		n->fence = R_FENCE_NONE;
		for (unsigned k = 0; k < nvolumes; k++)
			n->has[k] = n->san_ok[k] = true;
	}
}

static struct r_volume *vol(struct r_state *s, const char *name)
{
	struct r_volume *v = r_volume_find(s, name);
	ck_assert_msg(v != NULL, "volume %s is not in the state", name);
	return v;
}

static void assert_volume(struct r_state *s, const char *name, uint32_t holder, enum r_phase phase)
{
	const struct r_volume *v = vol(s, name);
	ck_assert_msg(v->holder == holder && v->phase == phase, "volume %s: %s on node %u, expected %s on node %u",
		      name, r_phase_str(v->phase), v->holder, r_phase_str(phase), holder);
}

/* What must hold across any decision: a role passes to another node only
 * from unplaced, and a decision frees a role only when its holder cannot
 * run the coordinator any more (fenced, or its csv-rmd gone while the
 * node is a member: the coordinator dies with it). */
static void assert_safe(const struct r_volume *before, const struct r_volume *after, const struct r_facts *f)
{
	if (after->holder && after->holder != before->holder)
		ck_assert_msg(before->phase == R_UNPLACED, "volume %s passed from node %u (%s) to node %u (%s)",
			      before->name, before->holder, r_phase_str(before->phase), after->holder,
			      r_phase_str(after->phase));
	if (before->holder && before->phase != R_UNPLACED && !after->holder) {
		const struct r_node_facts *h = r_facts_node(f, before->holder);
		ck_assert_msg(!h || h->fence == R_FENCED || (!h->rmd && h->member && h->fence == R_FENCE_NONE),
			      "volume %s freed from node %u while it may still run it", before->name, before->holder);
	}
}

/* The leader plans once and the group applies its decision, as csv-rmd
 * does; false when there was nothing to decide. */
static bool step(struct r_state *s, const struct r_facts *f, struct r_decision *d)
{
	if (!r_plan(s, f, d))
		return false;
	ck_assert_uint_eq(d->based_on, s->version);
	struct r_volume *v = vol(s, d->volume), before = *v;
	uint64_t version = s->version;
	ck_assert_msg(r_apply_decision(s, d), "the decision on %s was not applied", d->volume);
	ck_assert_uint_eq(s->version, version + 1);
	assert_safe(&before, v, f);
	return true;
}

/* Plans and applies until the leader has nothing left to decide; returns
 * the number of decisions. */
static unsigned settle(struct r_state *s, const struct r_facts *f)
{
	struct r_decision d;
	unsigned n = 0;
	while (step(s, f, &d))
		ck_assert_msg(++n < 100, "the plan does not settle (last: %s %s on node %u)", d.volume,
			      r_phase_str(d.phase), d.holder);
	return n;
}

/* Every holder of a starting volume reports its coordinator running. */
static void report_all_running(struct r_state *s, uint64_t epoch)
{
	for (uint32_t k = 0; k < s->nvolumes; k++) {
		struct r_volume *v = &s->volumes[k];
		if (v->phase == R_STARTING)
			ck_assert(r_apply_report(s, v->holder, v->name, R_REPORT_RUNNING, epoch + k, NULL));
	}
}

/* Volume name running on node holder at epoch: the leader placed it
 * there and its coordinator reported. */
static void run_on(struct r_state *s, const char *name, uint32_t holder, uint64_t epoch)
{
	struct r_decision d = { .based_on = s->version, .holder = holder, .phase = R_STARTING, .clear_target = true };
	snprintf(d.volume, sizeof(d.volume), "%s", name);
	snprintf(d.reason, sizeof(d.reason), "placed on node %u", holder);
	ck_assert(r_apply_decision(s, &d));
	assert_volume(s, name, holder, R_STARTING);
	ck_assert(r_apply_report(s, holder, name, R_REPORT_RUNNING, epoch, NULL));
	assert_volume(s, name, holder, R_RUNNING);
	ck_assert_uint_eq(vol(s, name)->epoch, epoch);
}

/* ---- JSON ------------------------------------------------------------------ */

/* A state with something in every field: vol1 running on node 2 and
 * redirected, vol2 unplaced with a target and a failed node; node 1
 * active, node 3 paused. */
static void make_full_state(struct r_state *s)
{
	make_state(s, 2);
	struct r_facts f;
	facts_all_ok(&f, 3, 2);
	run_on(s, "vol1", 2, 41);
	r_apply_redirect(s, "vol1", true);
	r_apply_move(s, "vol2", 3);
	ck_assert(step(s, &f, &(struct r_decision){ 0 }));
	ck_assert(r_apply_report(s, 3, "vol2", R_REPORT_FAILED, 0, "the coordinator exited with status 1"));
	r_apply_move(s, "vol2", 1);
	s->nnodes = 2;
	s->nodes[0] = (struct r_node){ .id = 1, .admin = R_ACTIVE };
	s->nodes[1] = (struct r_node){ .id = 3, .admin = R_PAUSED };
}

START_TEST(test_json_round_trip)
{
	struct r_state s, t;
	char err[256] = "";
	make_full_state(&s);
	struct json_object *o = r_state_json(&s);
	ck_assert_int_eq(from_text(o, &t, err, sizeof(err)), 0);
	json_object_put(o);

	ck_assert_uint_eq(t.version, s.version);
	ck_assert_uint_eq(t.nvolumes, 2);
	for (unsigned k = 0; k < 2; k++) {
		const struct r_volume *a = &s.volumes[k], *b = &t.volumes[k];
		ck_assert_str_eq(b->name, a->name);
		ck_assert_str_eq(b->uuid, a->uuid);
		ck_assert_uint_eq(b->port, a->port);
		ck_assert_uint_eq(b->holder, a->holder);
		ck_assert_int_eq(b->phase, a->phase);
		ck_assert_str_eq(b->reason, a->reason);
		ck_assert_uint_eq(b->epoch, a->epoch);
		ck_assert_int_eq(b->redirect, a->redirect);
		ck_assert_uint_eq(b->target, a->target);
		ck_assert_uint_eq(b->moves, a->moves);
		ck_assert_uint_eq(b->failed_node, a->failed_node);
	}
	/* What was put in is what comes back, not merely equal to itself. */
	ck_assert_str_eq(t.volumes[0].name, "vol1");
	ck_assert_uint_eq(t.volumes[0].holder, 2);
	ck_assert_int_eq(t.volumes[0].phase, R_RUNNING);
	ck_assert_uint_eq(t.volumes[0].epoch, 41);
	ck_assert(t.volumes[0].redirect);
	ck_assert_uint_eq(t.volumes[0].port, 7000);
	ck_assert_int_eq(t.volumes[1].phase, R_UNPLACED);
	ck_assert_uint_eq(t.volumes[1].target, 1);
	ck_assert_uint_eq(t.volumes[1].failed_node, 3);
	assert_has(t.volumes[1].reason, "status 1");
	ck_assert_uint_eq(t.nnodes, 2);
	ck_assert_uint_eq(t.nodes[0].id, 1);
	ck_assert_int_eq(t.nodes[0].admin, R_ACTIVE);
	ck_assert_uint_eq(t.nodes[1].id, 3);
	ck_assert_int_eq(t.nodes[1].admin, R_PAUSED);

	/* And a second trip gives the same text. */
	struct json_object *a = r_state_json(&s), *b = r_state_json(&t);
	ck_assert_str_eq(json_object_to_json_string(a), json_object_to_json_string(b));
	json_object_put(a);
	json_object_put(b);
}
END_TEST

START_TEST(test_json_empty_state)
{
	struct r_state s, t;
	char err[256] = "";
	memset(&s, 0, sizeof(s));
	struct json_object *o = r_state_json(&s);
	memset(&t, 0xff, sizeof(t));
	ck_assert_int_eq(from_text(o, &t, err, sizeof(err)), 0);
	json_object_put(o);
	ck_assert_uint_eq(t.version, 0);
	ck_assert_uint_eq(t.nvolumes, 0);
	ck_assert_uint_eq(t.nnodes, 0);
}
END_TEST

static struct json_object *good_json(void)
{
	struct r_state s;
	make_full_state(&s);
	return r_state_json(&s);
}

static struct json_object *array_of(struct json_object *o, const char *key)
{
	struct json_object *a = NULL;
	ck_assert(json_object_object_get_ex(o, key, &a));
	return a;
}

static struct json_object *volume_json(struct json_object *o, size_t k)
{
	return json_object_array_get_idx(array_of(o, "volumes"), k);
}

static struct json_object *node_json(struct json_object *o, size_t i)
{
	return json_object_array_get_idx(array_of(o, "nodes"), i);
}

START_TEST(test_json_not_object)
{
	assert_rejected(json_object_new_array(), "not a csv-rmd state");
	assert_rejected(json_object_new_string("state"), "not a csv-rmd state");
	assert_rejected(json_object_new_object(), "not a csv-rmd state");
}
END_TEST

START_TEST(test_json_missing_top_fields)
{
	static const char *const keys[] = { "version", "volumes", "nodes" };
	for (unsigned i = 0; i < 3; i++) {
		struct json_object *o = good_json();
		json_object_object_del(o, keys[i]);
		assert_rejected(o, "version, volumes and nodes are needed");
	}
	/* Of the wrong type. */
	struct json_object *o = good_json();
	json_object_object_add(o, "volumes", json_object_new_object());
	assert_rejected(o, "not a csv-rmd state");
	o = good_json();
	json_object_object_add(o, "version", json_object_new_string("7"));
	assert_rejected(o, "not a csv-rmd state");
}
END_TEST

START_TEST(test_json_missing_volume_fields)
{
	static const char *const keys[] = { "name",  "uuid",     "port",   "holder", "phase",      "reason",
					     "epoch", "redirect", "target", "moves",  "failed_node" };
	for (unsigned i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		struct json_object *o = good_json();
		json_object_object_del(volume_json(o, 1), keys[i]);
		assert_rejected(o, "volume 2 of the state");
	}
	/* A volume that is not an object, or has no name. */
	struct json_object *o = good_json();
	json_object_array_put_idx(array_of(o, "volumes"), 0, json_object_new_int(3));
	assert_rejected(o, "volume 1 of the state");
	o = good_json();
	json_object_object_add(volume_json(o, 0), "name", json_object_new_string(""));
	assert_rejected(o, "volume 1 of the state");
	/* A name too long for the state. */
	char longname[R_NAME_MAX + 1];
	memset(longname, 'x', R_NAME_MAX);
	longname[R_NAME_MAX] = '\0';
	o = good_json();
	json_object_object_add(volume_json(o, 0), "name", json_object_new_string(longname));
	assert_rejected(o, "volume 1 of the state");
}
END_TEST

START_TEST(test_json_volume_twice)
{
	struct json_object *o = good_json();
	json_object_object_add(volume_json(o, 1), "name", json_object_new_string("vol1"));
	assert_rejected(o, "volume vol1 is in the state twice");
}
END_TEST

START_TEST(test_json_wrong_phase)
{
	static const char *const bad[] = { "runing", "RUNNING", "", "waiting_fence" };
	for (unsigned i = 0; i < 4; i++) {
		struct json_object *o = good_json();
		json_object_object_add(volume_json(o, 0), "phase", json_object_new_string(bad[i]));
		assert_rejected(o, "volume 1 of the state");
	}
	/* Every phase the state writes is read back. */
	for (enum r_phase p = R_UNPLACED; p <= R_WAITING_FENCE; p++) {
		struct json_object *o = good_json();
		struct r_state s;
		char err[256] = "";
		json_object_object_add(volume_json(o, 0), "phase", json_object_new_string(r_phase_str(p)));
		ck_assert_int_eq(r_state_from_json(o, &s, err, sizeof(err)), 0);
		ck_assert_int_eq(s.volumes[0].phase, p);
		json_object_put(o);
	}
}
END_TEST

START_TEST(test_json_too_many)
{
	struct r_state s;
	char err[256] = "";
	make_state(&s, R_MAX_VOLUMES);
	struct json_object *o = r_state_json(&s);
	ck_assert_int_eq(r_state_from_json(o, &s, err, sizeof(err)), 0);
	ck_assert_uint_eq(s.nvolumes, R_MAX_VOLUMES);
	/* One more volume. */
	struct json_object *copy = NULL;
	ck_assert_int_eq(json_object_deep_copy(volume_json(o, 0), &copy, NULL), 0);
	json_object_object_add(copy, "name", json_object_new_string("vol17"));
	json_object_array_add(array_of(o, "volumes"), copy);
	assert_rejected(o, "17 volumes");

	/* Too many nodes. */
	o = good_json();
	struct json_object *nodes = array_of(o, "nodes");
	for (uint32_t id = 10; json_object_array_length(nodes) <= R_MAX_NODES; id++) {
		struct json_object *n = json_object_new_object();
		json_object_object_add(n, "id", json_object_new_int64(id));
		json_object_object_add(n, "admin", json_object_new_string("active"));
		json_object_array_add(nodes, n);
	}
	struct r_state t;
	err[0] = '\0';
	ck_assert_int_eq(r_state_from_json(o, &t, err, sizeof(err)), -EINVAL);
	assert_has(err, "65 nodes");
	assert_has(err, "at most 16 and 64");
	json_object_put(o);
}
END_TEST

START_TEST(test_json_negative_numbers)
{
	static const char *const keys[] = { "port", "holder", "epoch", "target", "moves", "failed_node" };
	for (unsigned i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		struct json_object *o = good_json();
		json_object_object_add(volume_json(o, 0), keys[i], json_object_new_int64(-1));
		assert_rejected(o, "volume 1 of the state");
	}
	struct json_object *o = good_json();
	json_object_object_add(o, "version", json_object_new_int64(-1));
	assert_rejected(o, "not a csv-rmd state");
	/* Numbers too big for their field. */
	o = good_json();
	json_object_object_add(volume_json(o, 0), "port", json_object_new_int64(65536));
	assert_rejected(o, "volume 1 of the state");
	o = good_json();
	json_object_object_add(volume_json(o, 0), "holder", json_object_new_int64((int64_t)UINT32_MAX + 1));
	assert_rejected(o, "volume 1 of the state");
	o = good_json();
	json_object_object_add(node_json(o, 0), "id", json_object_new_int64(-3));
	assert_rejected(o, "node 1 of the state");
}
END_TEST

START_TEST(test_json_node_zero)
{
	struct json_object *o = good_json();
	json_object_object_add(node_json(o, 1), "id", json_object_new_int64(0));
	assert_rejected(o, "node 2 of the state");
	o = good_json();
	json_object_object_del(node_json(o, 0), "id");
	assert_rejected(o, "node 1 of the state");
}
END_TEST

START_TEST(test_json_unknown_admin)
{
	static const char *const bad[] = { "drained", "Paused", "" };
	for (unsigned i = 0; i < 3; i++) {
		struct json_object *o = good_json();
		json_object_object_add(node_json(o, 0), "admin", json_object_new_string(bad[i]));
		assert_rejected(o, "node 1 of the state");
	}
	struct json_object *o = good_json();
	json_object_object_del(node_json(o, 1), "admin");
	assert_rejected(o, "node 2 of the state");
}
END_TEST

/* ---- volumes ------------------------------------------------------------------ */

START_TEST(test_volume_add_unplaced)
{
	struct r_state s;
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(r_volume_add(&s, "data", "11111111-2222-3333-4444-555555555555", 7001), 0);
	ck_assert_uint_eq(s.nvolumes, 1);
	ck_assert_uint_gt(s.version, 0);
	assert_volume(&s, "data", 0, R_UNPLACED);
	ck_assert_uint_eq(vol(&s, "data")->port, 7001);
	/* Found by its UUID as well as by its name. */
	ck_assert_ptr_eq(r_volume_find(&s, "11111111-2222-3333-4444-555555555555"), vol(&s, "data"));
	ck_assert_ptr_null(r_volume_find(&s, "other"));

	uint64_t v = s.version;
	ck_assert_int_eq(r_volume_add(&s, "logs", "", 0), 1);
	ck_assert_uint_gt(s.version, v);
	assert_volume(&s, "logs", 0, R_UNPLACED);
	ck_assert_str_eq(vol(&s, "logs")->uuid, "");
	/* An unknown UUID does not match every volume without one. */
	ck_assert_ptr_null(r_volume_find(&s, ""));
}
END_TEST

START_TEST(test_volume_add_again)
{
	struct r_state s;
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(r_volume_add(&s, "data", "", 0), 0);
	uint64_t v = s.version;

	/* Nothing new: nothing changes. */
	ck_assert_int_eq(r_volume_add(&s, "data", "", 0), 0);
	ck_assert_uint_eq(s.version, v);
	ck_assert_uint_eq(s.nvolumes, 1);

	/* Another node knows the UUID and the port: they fill the blanks. */
	ck_assert_int_eq(r_volume_add(&s, "data", "aaaaaaaa-0000-0000-0000-000000000001", 7005), 0);
	ck_assert_uint_gt(s.version, v);
	ck_assert_str_eq(vol(&s, "data")->uuid, "aaaaaaaa-0000-0000-0000-000000000001");
	ck_assert_uint_eq(vol(&s, "data")->port, 7005);

	/* A third names others: the first ones stay. */
	v = s.version;
	ck_assert_int_eq(r_volume_add(&s, "data", "bbbbbbbb-0000-0000-0000-000000000002", 7009), 0);
	ck_assert_uint_eq(s.version, v);
	ck_assert_str_eq(vol(&s, "data")->uuid, "aaaaaaaa-0000-0000-0000-000000000001");
	ck_assert_uint_eq(vol(&s, "data")->port, 7005);
	ck_assert_uint_eq(s.nvolumes, 1);

	/* Adding it again does not unplace it. */
	struct r_facts f;
	facts_all_ok(&f, 2, 1);
	run_on(&s, "data", 2, 5);
	v = s.version;
	ck_assert_int_eq(r_volume_add(&s, "data", "", 0), 0);
	assert_volume(&s, "data", 2, R_RUNNING);
	ck_assert_uint_eq(s.version, v);
}
END_TEST

START_TEST(test_volume_add_full)
{
	struct r_state s;
	make_state(&s, R_MAX_VOLUMES);
	uint64_t v = s.version;
	ck_assert_int_eq(r_volume_add(&s, "one-too-many", "", 7100), -ENOSPC);
	ck_assert_uint_eq(s.nvolumes, R_MAX_VOLUMES);
	ck_assert_uint_eq(s.version, v);
	ck_assert_ptr_null(r_volume_find(&s, "one-too-many"));
	/* The ones it has are still found. */
	ck_assert_int_eq(r_volume_add(&s, "vol16", "", 0), R_MAX_VOLUMES - 1);
}
END_TEST

START_TEST(test_phase_names)
{
	for (enum r_phase p = R_UNPLACED; p <= R_WAITING_FENCE; p++) {
		enum r_phase q;
		ck_assert_int_eq(r_phase_parse(r_phase_str(p), &q), 0);
		ck_assert_int_eq(q, p);
	}
	ck_assert_str_eq(r_phase_str(R_WAITING_FENCE), "waiting-fence");
	enum r_phase q = R_RUNNING;
	ck_assert_int_eq(r_phase_parse("gone", &q), -EINVAL);
	ck_assert_int_eq(q, R_RUNNING);
}
END_TEST

/* ---- eligibility -------------------------------------------------------------- */

/* Node 2 of three may not hold vol1 because of what break_it did; why
 * says word. */
static void assert_not_eligible(void (*break_it)(struct r_state *, struct r_facts *), const char *word)
{
	struct r_state s;
	struct r_facts f;
	char why[200] = "";
	make_state(&s, 1);
	facts_all_ok(&f, 3, 1);
	ck_assert(r_eligible(&s, &f, 0, 2, why, sizeof(why)));
	break_it(&s, &f);
	ck_assert(!r_eligible(&s, &f, 0, 2, why, sizeof(why)));
	assert_has(why, "node 2 ");
	assert_has(why, word);
	ck_assert(!r_eligible(&s, &f, 0, 2, NULL, 0));
	/* The others still may. */
	ck_assert(r_eligible(&s, &f, 0, 1, why, sizeof(why)));
	ck_assert(r_eligible(&s, &f, 0, 3, why, sizeof(why)));
}

static void not_a_node(struct r_state *s, struct r_facts *f)
{
	(void)s;
	node(f, 2)->id = 9;
}

static void not_member(struct r_state *s, struct r_facts *f)
{
	(void)s;
	node(f, 2)->member = false;
}

static void no_rmd(struct r_state *s, struct r_facts *f)
{
	(void)s;
	node(f, 2)->rmd = false;
}

static void fenced(struct r_state *s, struct r_facts *f)
{
	(void)s;
	node(f, 2)->fence = R_FENCED;
}

static void fence_pending(struct r_state *s, struct r_facts *f)
{
	(void)s;
	node(f, 2)->fence = R_FENCE_PENDING;
}

static void paused(struct r_state *s, struct r_facts *f)
{
	(void)f;
	s->nnodes = 2;
	s->nodes[0] = (struct r_node){ .id = 1, .admin = R_ACTIVE };
	s->nodes[1] = (struct r_node){ .id = 2, .admin = R_PAUSED };
}

static void no_volume(struct r_state *s, struct r_facts *f)
{
	(void)s;
	node(f, 2)->has[0] = false;
}

static void no_san(struct r_state *s, struct r_facts *f)
{
	(void)s;
	node(f, 2)->san_ok[0] = false;
}

START_TEST(test_eligible_reasons)
{
	assert_not_eligible(not_a_node, "is not a node of the cluster");
	assert_not_eligible(not_member, "is not in the quorate membership");
	assert_not_eligible(no_rmd, "runs no csv-rmd");
	assert_not_eligible(fenced, "is fenced");
	assert_not_eligible(fence_pending, "waiting for its fence");
	assert_not_eligible(paused, "paused");
	assert_not_eligible(no_volume, "--volume");
	assert_not_eligible(no_san, "LUN");
}
END_TEST

START_TEST(test_eligible_per_volume)
{
	struct r_state s;
	struct r_facts f;
	char why[200];
	make_state(&s, 2);
	facts_all_ok(&f, 2, 2);
	node(&f, 1)->san_ok[1] = false;
	ck_assert(r_eligible(&s, &f, 0, 1, why, sizeof(why)));
	ck_assert(!r_eligible(&s, &f, 1, 1, why, sizeof(why)));
	ck_assert(r_eligible(&s, &f, 1, 2, why, sizeof(why)));
	/* An active admin entry does not stop it. */
	s.nnodes = 1;
	s.nodes[0] = (struct r_node){ .id = 1, .admin = R_ACTIVE };
	ck_assert(r_eligible(&s, &f, 0, 1, why, sizeof(why)));
}
END_TEST

/* ---- placement ------------------------------------------------------------------ */

START_TEST(test_place_lowest_id)
{
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	make_state(&s, 1);
	facts_all_ok(&f, 3, 1);
	ck_assert(r_plan(&s, &f, &d));
	ck_assert_str_eq(d.volume, "vol1");
	ck_assert_uint_eq(d.holder, 1);
	ck_assert_int_eq(d.phase, R_STARTING);
	ck_assert_uint_eq(d.based_on, s.version);
	assert_has(d.reason, "placed on node 1");
	uint64_t moves = vol(&s, "vol1")->moves;
	ck_assert(step(&s, &f, &d));
	assert_volume(&s, "vol1", 1, R_STARTING);
	ck_assert_uint_eq(vol(&s, "vol1")->moves, moves + 1);
	/* Starting: nothing more until its holder reports. */
	ck_assert(!r_plan(&s, &f, &d));
}
END_TEST

START_TEST(test_place_fewest_roles)
{
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	make_state(&s, 3);
	facts_all_ok(&f, 3, 3);
	run_on(&s, "vol1", 1, 10);
	ck_assert(r_plan(&s, &f, &d));
	ck_assert_str_eq(d.volume, "vol2");
	ck_assert_uint_eq(d.holder, 2);      /* 2 and 3 hold none: the lower id */
	ck_assert(step(&s, &f, &d));
	ck_assert(step(&s, &f, &d));
	assert_volume(&s, "vol3", 3, R_STARTING);  /* a starting role counts */

	/* Node 1 holds two, node 2 one: a new volume goes to node 2. */
	struct r_state t;
	make_state(&t, 4);
	facts_all_ok(&f, 2, 4);
	run_on(&t, "vol1", 1, 10);
	run_on(&t, "vol2", 1, 11);
	run_on(&t, "vol3", 2, 12);
	ck_assert(r_plan(&t, &f, &d));
	ck_assert_str_eq(d.volume, "vol4");
	ck_assert_uint_eq(d.holder, 2);
}
END_TEST

START_TEST(test_place_spread)
{
	struct r_state s;
	struct r_facts f;
	make_state(&s, 7);
	facts_all_ok(&f, 3, 7);
	ck_assert_uint_eq(settle(&s, &f), 7);
	report_all_running(&s, 100);
	ck_assert_uint_eq(settle(&s, &f), 0);
	ck_assert_uint_eq(r_roles_of(&s, 1), 3);
	ck_assert_uint_eq(r_roles_of(&s, 2), 2);
	ck_assert_uint_eq(r_roles_of(&s, 3), 2);
	assert_volume(&s, "vol1", 1, R_RUNNING);
	assert_volume(&s, "vol2", 2, R_RUNNING);
	assert_volume(&s, "vol3", 3, R_RUNNING);
	assert_volume(&s, "vol4", 1, R_RUNNING);
	assert_volume(&s, "vol7", 1, R_RUNNING);
	ck_assert_uint_eq(vol(&s, "vol7")->epoch, 106);
	assert_has(vol(&s, "vol7")->reason, "node 1");
}
END_TEST

START_TEST(test_place_only_where_served)
{
	/* vol2 is only on nodes 2 and 3's command lines, and node 2 does not
	 * see its LUN. */
	struct r_state s;
	struct r_facts f;
	make_state(&s, 2);
	facts_all_ok(&f, 3, 2);
	node(&f, 1)->has[1] = false;
	node(&f, 2)->san_ok[1] = false;
	settle(&s, &f);
	assert_volume(&s, "vol1", 1, R_STARTING);
	assert_volume(&s, "vol2", 3, R_STARTING);
}
END_TEST

START_TEST(test_place_target_wins)
{
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	make_state(&s, 2);
	facts_all_ok(&f, 3, 2);
	run_on(&s, "vol1", 3, 10);
	/* Node 3 already holds one role; the operator wants vol2 there too. */
	ck_assert(r_apply_move(&s, "vol2", 3));
	ck_assert(step(&s, &f, &d));
	ck_assert(d.clear_target);
	assert_volume(&s, "vol2", 3, R_STARTING);
	ck_assert_uint_eq(vol(&s, "vol2")->target, 0);
	ck_assert_uint_eq(r_roles_of(&s, 3), 2);
}
END_TEST

START_TEST(test_place_target_not_eligible)
{
	/* The operator's target cannot hold it: placed by the usual rule, and
	 * the request is done with. */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	make_state(&s, 1);
	facts_all_ok(&f, 3, 1);
	node(&f, 3)->san_ok[0] = false;
	ck_assert(r_apply_move(&s, "vol1", 3));
	ck_assert(step(&s, &f, &d));
	assert_volume(&s, "vol1", 1, R_STARTING);
	ck_assert_uint_eq(vol(&s, "vol1")->target, 0);
}
END_TEST

START_TEST(test_place_avoids_failed_node)
{
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	make_state(&s, 2);
	facts_all_ok(&f, 2, 2);
	run_on(&s, "vol2", 2, 10);
	/* vol1's coordinator failed on node 1; node 1 holds fewer roles, yet
	 * node 2 is tried first. */
	ck_assert(step(&s, &f, &d));
	assert_volume(&s, "vol1", 1, R_STARTING);
	ck_assert(r_apply_report(&s, 1, "vol1", R_REPORT_FAILED, 0, "the coordinator exited with status 2"));
	ck_assert(step(&s, &f, &d));
	assert_volume(&s, "vol1", 2, R_STARTING);

	/* When node 2 may not, node 1 is tried again rather than nobody. */
	ck_assert(r_apply_report(&s, 2, "vol1", R_REPORT_STOPPED, 0, "stopped"));
	ck_assert_uint_eq(vol(&s, "vol1")->failed_node, 1);
	node(&f, 2)->san_ok[0] = false;
	ck_assert(step(&s, &f, &d));
	assert_volume(&s, "vol1", 1, R_STARTING);
}
END_TEST

START_TEST(test_place_nowhere)
{
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	make_state(&s, 1);
	facts_all_ok(&f, 3, 1);
	for (uint32_t id = 1; id <= 3; id++)
		node(&f, id)->san_ok[0] = false;
	ck_assert(r_plan(&s, &f, &d));
	ck_assert_uint_eq(d.holder, 0);
	ck_assert_int_eq(d.phase, R_UNPLACED);
	assert_has(d.reason, "no node may hold it");
	assert_has(d.reason, "LUN");
	ck_assert(step(&s, &f, &d));
	assert_volume(&s, "vol1", 0, R_UNPLACED);
	assert_has(vol(&s, "vol1")->reason, "no node may hold it");
	/* Said once, not again on every round. */
	ck_assert(!r_plan(&s, &f, &d));

	/* A node that sees it comes: it is placed. */
	node(&f, 2)->san_ok[0] = true;
	ck_assert(step(&s, &f, &d));
	assert_volume(&s, "vol1", 2, R_STARTING);
}
END_TEST

START_TEST(test_place_no_nodes)
{
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	make_state(&s, 1);
	facts_all_ok(&f, 0, 1);
	ck_assert(step(&s, &f, &d));
	assert_volume(&s, "vol1", 0, R_UNPLACED);
	assert_has(d.reason, "no node may hold it");
	ck_assert(!r_plan(&s, &f, &d));
}
END_TEST

START_TEST(test_place_not_while_settling)
{
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	make_state(&s, 2);
	facts_all_ok(&f, 3, 2);
	f.settling = true;
	ck_assert(!r_plan(&s, &f, &d));
	assert_volume(&s, "vol1", 0, R_UNPLACED);
	f.settling = false;
	ck_assert(r_plan(&s, &f, &d));
	ck_assert_int_eq(d.phase, R_STARTING);
}
END_TEST

START_TEST(test_settling_still_guards_lost_holder)
{
	/* While settling, a lost holder is still held until fenced. */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	make_state(&s, 1);
	facts_all_ok(&f, 3, 1);
	run_on(&s, "vol1", 1, 10);
	f.settling = true;
	lose(&f, 1);
	ck_assert(step(&s, &f, &d));
	assert_volume(&s, "vol1", 1, R_WAITING_FENCE);
}
END_TEST

START_TEST(test_not_quorate_nothing)
{
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	make_state(&s, 2);
	facts_all_ok(&f, 3, 2);
	run_on(&s, "vol2", 1, 10);
	f.quorate = false;
	ck_assert(!r_plan(&s, &f, &d));  /* vol1 unplaced: not placed */
	lose(&f, 1);
	node(&f, 1)->fence = R_FENCED;
	ck_assert(!r_plan(&s, &f, &d));  /* vol2's holder lost: not touched */
	assert_volume(&s, "vol2", 1, R_RUNNING);
}
END_TEST

/* ---- a lost holder ------------------------------------------------------------ */

START_TEST(test_lost_holder_waits_for_fence)
{
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	make_state(&s, 1);
	facts_all_ok(&f, 3, 1);
	run_on(&s, "vol1", 1, 10);
	lose(&f, 1);
	ck_assert(r_plan(&s, &f, &d));
	ck_assert_uint_eq(d.holder, 1);
	ck_assert_int_eq(d.phase, R_WAITING_FENCE);
	assert_has(d.reason, "node 1 was lost");
	assert_has(d.reason, "fenced");
	ck_assert(step(&s, &f, &d));
	assert_volume(&s, "vol1", 1, R_WAITING_FENCE);
	ck_assert_uint_eq(r_roles_of(&s, 1), 0);

	/* Nodes 2 and 3 are fine, but nothing moves until node 1 is fenced. */
	ck_assert(!r_plan(&s, &f, &d));
	node(&f, 1)->fence = R_FENCE_PENDING;
	ck_assert(!r_plan(&s, &f, &d));
	assert_volume(&s, "vol1", 1, R_WAITING_FENCE);

	node(&f, 1)->fence = R_FENCED;
	ck_assert(r_plan(&s, &f, &d));
	ck_assert_uint_eq(d.holder, 0);
	ck_assert_int_eq(d.phase, R_UNPLACED);
	assert_has(d.reason, "node 1 is fenced");
	ck_assert(step(&s, &f, &d));
	assert_volume(&s, "vol1", 0, R_UNPLACED);
}
END_TEST

START_TEST(test_lost_holder_any_phase)
{
	/* Starting or stopping, a lost holder's role waits for its fence too. */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	make_state(&s, 2);
	facts_all_ok(&f, 3, 2);
	ck_assert(step(&s, &f, &d));
	assert_volume(&s, "vol1", 1, R_STARTING);
	run_on(&s, "vol2", 1, 10);
	ck_assert(r_apply_move(&s, "vol2", 2));
	ck_assert(step(&s, &f, &d));
	assert_volume(&s, "vol2", 1, R_STOPPING);

	lose(&f, 1);
	settle(&s, &f);
	assert_volume(&s, "vol1", 1, R_WAITING_FENCE);
	assert_volume(&s, "vol2", 1, R_WAITING_FENCE);
}
END_TEST

START_TEST(test_lost_holder_member_pending)
{
	/* Its csv-rmd gone while csv-quorumd already counts the node to be
	 * fenced: it waits for the fence. */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	make_state(&s, 1);
	facts_all_ok(&f, 2, 1);
	run_on(&s, "vol1", 1, 10);
	node(&f, 1)->rmd = false;
	node(&f, 1)->fence = R_FENCE_PENDING;
	ck_assert(step(&s, &f, &d));
	assert_volume(&s, "vol1", 1, R_WAITING_FENCE);
}
END_TEST

START_TEST(test_holder_rmd_died)
{
	/* csv-rmd of the holder stopped, the node still a member and not to
	 * be fenced: its coordinator died with it, the role is free. */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	make_state(&s, 1);
	facts_all_ok(&f, 3, 1);
	run_on(&s, "vol1", 1, 10);
	node(&f, 1)->rmd = false;
	ck_assert(r_plan(&s, &f, &d));
	ck_assert_uint_eq(d.holder, 0);
	ck_assert_int_eq(d.phase, R_UNPLACED);
	assert_has(d.reason, "csv-rmd of node 1 stopped");
	assert_has(d.reason, "coordinator");
	ck_assert(step(&s, &f, &d));
	assert_volume(&s, "vol1", 0, R_UNPLACED);
	/* And it goes to a node that runs csv-rmd. */
	ck_assert(step(&s, &f, &d));
	assert_volume(&s, "vol1", 2, R_STARTING);
}
END_TEST

START_TEST(test_failover_walk)
{
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	make_state(&s, 1);
	facts_all_ok(&f, 3, 1);

	/* Running on node 1. */
	run_on(&s, "vol1", 1, 10);
	uint64_t moves = vol(&s, "vol1")->moves;

	/* Node 1 is lost: held for it. */
	lose(&f, 1);
	ck_assert(step(&s, &f, &d));
	assert_volume(&s, "vol1", 1, R_WAITING_FENCE);
	ck_assert(!r_plan(&s, &f, &d));

	/* csv-quorumd judges it: pending, still held. */
	node(&f, 1)->fence = R_FENCE_PENDING;
	ck_assert(!r_plan(&s, &f, &d));
	assert_volume(&s, "vol1", 1, R_WAITING_FENCE);

	/* Fenced: free. */
	node(&f, 1)->fence = R_FENCED;
	ck_assert(step(&s, &f, &d));
	assert_volume(&s, "vol1", 0, R_UNPLACED);

	/* Placed on node 2 (node 1 may not). */
	ck_assert(step(&s, &f, &d));
	assert_volume(&s, "vol1", 2, R_STARTING);
	ck_assert_uint_eq(vol(&s, "vol1")->moves, moves + 1);

	/* Node 1 knows nothing of this; its late word is not taken. */
	ck_assert(!r_apply_report(&s, 1, "vol1", R_REPORT_RUNNING, 10, NULL));
	assert_volume(&s, "vol1", 2, R_STARTING);

	/* Node 2's coordinator runs. */
	ck_assert(r_apply_report(&s, 2, "vol1", R_REPORT_RUNNING, 11, NULL));
	assert_volume(&s, "vol1", 2, R_RUNNING);
	ck_assert_uint_eq(vol(&s, "vol1")->epoch, 11);
	assert_has(vol(&s, "vol1")->reason, "node 2");
	assert_has(vol(&s, "vol1")->reason, "11");
	ck_assert(!r_plan(&s, &f, &d));

	/* Node 1 comes back, unfenced: vol1 stays where it is. */
	facts_all_ok(&f, 3, 1);
	ck_assert(!r_plan(&s, &f, &d));
	assert_volume(&s, "vol1", 2, R_RUNNING);
	ck_assert_uint_eq(r_roles_of(&s, 1), 0);
}
END_TEST

/* ---- moves -------------------------------------------------------------------- */

START_TEST(test_move)
{
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	make_state(&s, 1);
	facts_all_ok(&f, 3, 1);
	run_on(&s, "vol1", 1, 10);
	uint64_t moves = vol(&s, "vol1")->moves, v = s.version;

	ck_assert(r_apply_move(&s, "vol1", 3));
	ck_assert_uint_eq(s.version, v + 1);
	ck_assert(!r_apply_move(&s, "vol1", 3));  /* asked twice */
	ck_assert_uint_eq(s.version, v + 1);

	ck_assert(step(&s, &f, &d));
	assert_volume(&s, "vol1", 1, R_STOPPING);
	assert_has(d.reason, "moving to node 3");
	assert_has(d.reason, "operator");
	ck_assert_uint_eq(vol(&s, "vol1")->target, 3);
	ck_assert(!r_plan(&s, &f, &d));  /* the holder stops it first */

	ck_assert(r_apply_report(&s, 1, "vol1", R_REPORT_STOPPED, 0, "moving to node 3 on the operator's request"));
	assert_volume(&s, "vol1", 0, R_UNPLACED);
	ck_assert_uint_eq(vol(&s, "vol1")->failed_node, 0);

	ck_assert(step(&s, &f, &d));
	ck_assert(d.clear_target);
	assert_volume(&s, "vol1", 3, R_STARTING);
	ck_assert_uint_eq(vol(&s, "vol1")->target, 0);
	ck_assert_uint_eq(vol(&s, "vol1")->moves, moves + 1);

	ck_assert(r_apply_report(&s, 3, "vol1", R_REPORT_RUNNING, 11, NULL));
	assert_volume(&s, "vol1", 3, R_RUNNING);
	ck_assert(!r_plan(&s, &f, &d));
}
END_TEST

START_TEST(test_move_not_eligible)
{
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	make_state(&s, 1);
	facts_all_ok(&f, 3, 1);
	run_on(&s, "vol1", 1, 10);
	node(&f, 3)->san_ok[0] = false;
	ck_assert(r_apply_move(&s, "vol1", 3));
	ck_assert(step(&s, &f, &d));
	assert_volume(&s, "vol1", 1, R_RUNNING);
	ck_assert_uint_eq(vol(&s, "vol1")->target, 0);
	assert_has(vol(&s, "vol1")->reason, "not moved");
	assert_has(vol(&s, "vol1")->reason, "node 3");
	assert_has(vol(&s, "vol1")->reason, "LUN");
	ck_assert_uint_eq(vol(&s, "vol1")->epoch, 10);
	ck_assert(!r_plan(&s, &f, &d));

	/* To a node that is not in the cluster at all. */
	ck_assert(r_apply_move(&s, "vol1", 42));
	ck_assert(step(&s, &f, &d));
	assert_volume(&s, "vol1", 1, R_RUNNING);
	assert_has(vol(&s, "vol1")->reason, "node 42 is not a node of the cluster");
	ck_assert_uint_eq(vol(&s, "vol1")->target, 0);
}
END_TEST

START_TEST(test_move_to_holder)
{
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	make_state(&s, 1);
	facts_all_ok(&f, 3, 1);
	run_on(&s, "vol1", 2, 10);
	uint64_t moves = vol(&s, "vol1")->moves;
	char reason[200];
	snprintf(reason, sizeof(reason), "%s", vol(&s, "vol1")->reason);
	ck_assert(r_apply_move(&s, "vol1", 2));
	ck_assert(step(&s, &f, &d));
	ck_assert(d.clear_target);
	assert_volume(&s, "vol1", 2, R_RUNNING);
	ck_assert_uint_eq(vol(&s, "vol1")->target, 0);
	ck_assert_uint_eq(vol(&s, "vol1")->moves, moves);
	ck_assert_str_eq(vol(&s, "vol1")->reason, reason);
	ck_assert(!r_plan(&s, &f, &d));
}
END_TEST

START_TEST(test_move_request)
{
	struct r_state s;
	make_state(&s, 1);
	uint64_t v = s.version;
	ck_assert(!r_apply_move(&s, "nosuch", 2));
	ck_assert_uint_eq(s.version, v);
	/* By UUID. */
	ck_assert(r_apply_move(&s, "00000001-aaaa-bbbb-cccc-dddddddddddd", 2));
	ck_assert_uint_eq(vol(&s, "vol1")->target, 2);
	/* Cancelled. */
	ck_assert(r_apply_move(&s, "vol1", 0));
	ck_assert_uint_eq(vol(&s, "vol1")->target, 0);
}
END_TEST

/* ---- SAN loss --------------------------------------------------------------- */

START_TEST(test_san_loss_moves)
{
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	make_state(&s, 1);
	facts_all_ok(&f, 3, 1);
	run_on(&s, "vol1", 1, 10);
	node(&f, 1)->san_ok[0] = false;
	node(&f, 2)->san_ok[0] = false;
	ck_assert(step(&s, &f, &d));
	assert_volume(&s, "vol1", 1, R_STOPPING);
	assert_has(d.reason, "node 1 lost its SAN path");
	ck_assert(r_apply_report(&s, 1, "vol1", R_REPORT_STOPPED, 0, d.reason));
	ck_assert(step(&s, &f, &d));
	assert_volume(&s, "vol1", 3, R_STARTING);  /* the node that sees it */
}
END_TEST

START_TEST(test_san_loss_everywhere_stays)
{
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	make_state(&s, 1);
	facts_all_ok(&f, 3, 1);
	run_on(&s, "vol1", 2, 10);
	uint64_t v = s.version;
	for (uint32_t id = 1; id <= 3; id++)
		node(&f, id)->san_ok[0] = false;
	ck_assert(!r_plan(&s, &f, &d));
	assert_volume(&s, "vol1", 2, R_RUNNING);
	ck_assert_uint_eq(s.version, v);
}
END_TEST

/* ---- start timeout ------------------------------------------------------------ */

START_TEST(test_start_timeout)
{
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	make_state(&s, 2);
	facts_all_ok(&f, 2, 2);
	ck_assert(step(&s, &f, &d));
	ck_assert(step(&s, &f, &d));
	assert_volume(&s, "vol1", 1, R_STARTING);
	assert_volume(&s, "vol2", 2, R_STARTING);

	/* Unknown since when, or not yet too long: it waits. */
	ck_assert(!r_plan(&s, &f, &d));
	f.phase_since_ms[1] = NOW - R_START_TIMEOUT_MS;
	ck_assert(!r_plan(&s, &f, &d));

	f.phase_since_ms[1] = NOW - R_START_TIMEOUT_MS - 1;
	ck_assert(step(&s, &f, &d));
	assert_volume(&s, "vol2", 2, R_STOPPING);
	assert_has(d.reason, "did not start on node 2");
	assert_has(d.reason, "30 s");
	assert_volume(&s, "vol1", 1, R_STARTING);
	ck_assert(!r_plan(&s, &f, &d));
}
END_TEST

/* ---- messages ------------------------------------------------------------------- */

START_TEST(test_decision_stale)
{
	struct r_state s, before;
	struct r_facts f;
	struct r_decision d;
	make_state(&s, 1);
	facts_all_ok(&f, 2, 1);
	ck_assert(r_plan(&s, &f, &d));
	/* Something else came first. */
	ck_assert(r_apply_redirect(&s, "vol1", true));
	memcpy(&before, &s, sizeof(s));
	ck_assert(!r_apply_decision(&s, &d));
	ck_assert(memcmp(&s, &before, sizeof(s)) == 0);
	assert_volume(&s, "vol1", 0, R_UNPLACED);

	/* For a volume the state does not have. */
	ck_assert(r_plan(&s, &f, &d));
	snprintf(d.volume, sizeof(d.volume), "gone");
	ck_assert(!r_apply_decision(&s, &d));
	ck_assert(memcmp(&s, &before, sizeof(s)) == 0);

	/* Planned again from the new state: taken. */
	ck_assert(step(&s, &f, &d));
	assert_volume(&s, "vol1", 1, R_STARTING);
}
END_TEST

START_TEST(test_report_from_non_holder)
{
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	make_state(&s, 1);
	facts_all_ok(&f, 2, 1);
	ck_assert(step(&s, &f, &d));
	assert_volume(&s, "vol1", 1, R_STARTING);
	uint64_t v = s.version;
	ck_assert(!r_apply_report(&s, 2, "vol1", R_REPORT_RUNNING, 5, NULL));
	ck_assert(!r_apply_report(&s, 2, "vol1", R_REPORT_STOPPED, 0, "x"));
	ck_assert(!r_apply_report(&s, 2, "vol1", R_REPORT_FAILED, 0, "x"));
	ck_assert(!r_apply_report(&s, 1, "nosuch", R_REPORT_RUNNING, 5, NULL));
	ck_assert_uint_eq(s.version, v);
	assert_volume(&s, "vol1", 1, R_STARTING);
	ck_assert_uint_eq(vol(&s, "vol1")->failed_node, 0);

	/* Unplaced: nobody's report counts. */
	struct r_state t;
	make_state(&t, 1);
	v = t.version;
	ck_assert(!r_apply_report(&t, 0, "vol1", R_REPORT_RUNNING, 5, NULL));
	ck_assert(!r_apply_report(&t, 1, "vol1", R_REPORT_RUNNING, 5, NULL));
	ck_assert_uint_eq(t.version, v);
}
END_TEST

START_TEST(test_report_running_while_stopping)
{
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	make_state(&s, 1);
	facts_all_ok(&f, 2, 1);
	run_on(&s, "vol1", 1, 10);
	ck_assert(r_apply_move(&s, "vol1", 2));
	ck_assert(step(&s, &f, &d));
	assert_volume(&s, "vol1", 1, R_STOPPING);
	uint64_t v = s.version;
	ck_assert(!r_apply_report(&s, 1, "vol1", R_REPORT_RUNNING, 12, NULL));
	assert_volume(&s, "vol1", 1, R_STOPPING);
	ck_assert_uint_eq(vol(&s, "vol1")->epoch, 10);
	ck_assert_uint_eq(s.version, v);
}
END_TEST

START_TEST(test_report_failed)
{
	struct r_state s;
	struct r_facts f;
	make_state(&s, 1);
	facts_all_ok(&f, 2, 1);
	run_on(&s, "vol1", 2, 10);
	uint64_t v = s.version;
	ck_assert(r_apply_report(&s, 2, "vol1", R_REPORT_FAILED, 0, "the coordinator was killed by Killed"));
	ck_assert_uint_eq(s.version, v + 1);
	assert_volume(&s, "vol1", 0, R_UNPLACED);
	ck_assert_uint_eq(vol(&s, "vol1")->failed_node, 2);
	assert_has(vol(&s, "vol1")->reason, "killed");
}
END_TEST

START_TEST(test_report_stopped)
{
	struct r_state s;
	struct r_facts f;
	make_state(&s, 1);
	facts_all_ok(&f, 2, 1);
	run_on(&s, "vol1", 2, 10);
	uint64_t v = s.version;
	ck_assert(r_apply_report(&s, 2, "vol1", R_REPORT_STOPPED, 0, "the coordinator is not running on its node"));
	ck_assert_uint_eq(s.version, v + 1);
	assert_volume(&s, "vol1", 0, R_UNPLACED);
	ck_assert_uint_eq(vol(&s, "vol1")->failed_node, 0);
	assert_has(vol(&s, "vol1")->reason, "not running");
	/* Without a reason, it still says something. */
	run_on(&s, "vol1", 1, 11);
	ck_assert(r_apply_report(&s, 1, "vol1", R_REPORT_STOPPED, 0, NULL));
	assert_has(vol(&s, "vol1")->reason, "stopped");
}
END_TEST

START_TEST(test_report_running_duplicate)
{
	struct r_state s;
	struct r_facts f;
	make_state(&s, 1);
	facts_all_ok(&f, 2, 1);
	run_on(&s, "vol1", 1, 10);
	uint64_t v = s.version;
	ck_assert(!r_apply_report(&s, 1, "vol1", R_REPORT_RUNNING, 10, NULL));
	ck_assert_uint_eq(s.version, v);
	/* A new epoch (the coordinator restarted under it) is news. */
	ck_assert(r_apply_report(&s, 1, "vol1", R_REPORT_RUNNING, 13, NULL));
	ck_assert_uint_eq(s.version, v + 1);
	ck_assert_uint_eq(vol(&s, "vol1")->epoch, 13);
	assert_volume(&s, "vol1", 1, R_RUNNING);
}
END_TEST

START_TEST(test_report_waiting_fence)
{
	/* The lost holder comes back without a fence (the partition healed):
	 * its word ends the wait, and its role stays its own. */
	struct r_state s;
	struct r_facts f;
	struct r_decision d;
	make_state(&s, 2);
	facts_all_ok(&f, 2, 2);
	run_on(&s, "vol1", 1, 10);
	run_on(&s, "vol2", 1, 20);
	lose(&f, 1);
	settle(&s, &f);
	assert_volume(&s, "vol1", 1, R_WAITING_FENCE);
	assert_volume(&s, "vol2", 1, R_WAITING_FENCE);
	facts_all_ok(&f, 2, 2);
	ck_assert(!r_plan(&s, &f, &d));
	ck_assert(r_apply_report(&s, 1, "vol1", R_REPORT_RUNNING, 10, NULL));
	assert_volume(&s, "vol1", 1, R_RUNNING);
	ck_assert(r_apply_report(&s, 1, "vol2", R_REPORT_STOPPED, 0, NULL));
	assert_volume(&s, "vol2", 0, R_UNPLACED);
	/* Node 2 holds none: vol2 goes there. */
	ck_assert(step(&s, &f, &d));
	assert_volume(&s, "vol2", 2, R_STARTING);
}
END_TEST

START_TEST(test_redirect)
{
	struct r_state s;
	make_state(&s, 1);
	uint64_t v = s.version;
	ck_assert(r_apply_redirect(&s, "vol1", true));
	ck_assert(vol(&s, "vol1")->redirect);
	ck_assert_uint_eq(s.version, v + 1);
	ck_assert(!r_apply_redirect(&s, "vol1", true));
	ck_assert_uint_eq(s.version, v + 1);
	ck_assert(r_apply_redirect(&s, "vol1", false));
	ck_assert(!vol(&s, "vol1")->redirect);
	ck_assert_uint_eq(s.version, v + 2);
	ck_assert(!r_apply_redirect(&s, "vol1", false));
	ck_assert(!r_apply_redirect(&s, "nosuch", true));
	ck_assert_uint_eq(s.version, v + 2);
}
END_TEST

/* ---- the suite ------------------------------------------------------------------ */

static Suite *state_suite(void)
{
	Suite *s = suite_create("rmd-state");
	ADD_CASE(s, "json", test_json_round_trip, test_json_empty_state, test_json_not_object,
		 test_json_missing_top_fields, test_json_missing_volume_fields, test_json_volume_twice,
		 test_json_wrong_phase, test_json_too_many, test_json_negative_numbers, test_json_node_zero,
		 test_json_unknown_admin);
	ADD_CASE(s, "volumes", test_volume_add_unplaced, test_volume_add_again, test_volume_add_full,
		 test_phase_names);
	ADD_CASE(s, "eligible", test_eligible_reasons, test_eligible_per_volume);
	ADD_CASE(s, "placement", test_place_lowest_id, test_place_fewest_roles, test_place_spread,
		 test_place_only_where_served, test_place_target_wins, test_place_target_not_eligible,
		 test_place_avoids_failed_node, test_place_nowhere, test_place_no_nodes,
		 test_place_not_while_settling, test_settling_still_guards_lost_holder, test_not_quorate_nothing);
	ADD_CASE(s, "lost-holder", test_lost_holder_waits_for_fence, test_lost_holder_any_phase,
		 test_lost_holder_member_pending, test_holder_rmd_died, test_failover_walk);
	ADD_CASE(s, "move", test_move, test_move_not_eligible, test_move_to_holder, test_move_request);
	ADD_CASE(s, "san-loss", test_san_loss_moves, test_san_loss_everywhere_stays);
	ADD_CASE(s, "start-timeout", test_start_timeout);
	ADD_CASE(s, "messages", test_decision_stale, test_report_from_non_holder, test_report_running_while_stopping,
		 test_report_failed, test_report_stopped, test_report_running_duplicate, test_report_waiting_fence,
		 test_redirect);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(state_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
