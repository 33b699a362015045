/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The JSON that csv-quorumd serves: escaping of what comes from the disk
 * and the network, and the fields of the snapshot and of events as a
 * client reads them back. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot.h"

/* ---- escaping and cleaning ------------------------------------------------------ */

START_TEST(test_clean_utf8)
{
	char out[64];
	q_text_clean("node1", out, sizeof(out));
	ck_assert_str_eq(out, "node1");
	/* Valid multibyte sequences stay. */
	q_text_clean("n\xc3\xa9ud \xe2\x82\xac \xf0\x9f\x98\x80", out, sizeof(out));
	ck_assert_str_eq(out, "n\xc3\xa9ud \xe2\x82\xac \xf0\x9f\x98\x80");
	/* Stray continuation bytes, bytes that never occur, a cut sequence. */
	q_text_clean("a\x80" "b\xff" "c\xe2\x82", out, sizeof(out));
	ck_assert_str_eq(out, "a?b?c??");
	/* Overlong '/', a UTF-16 surrogate, past U+10FFFF. */
	q_text_clean("\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80", out, sizeof(out));
	ck_assert_str_eq(out, "??|???|????");
	/* Cut at the buffer's end without splitting a sequence. */
	q_text_clean("ab\xc3\xa9", out, 4);
	ck_assert_str_eq(out, "ab");
	q_text_clean("abc", out, 1);
	ck_assert_str_eq(out, "");
}
END_TEST

static struct q_state *make_state(void)
{
	static struct q_state st;
	memset(&st, 0, sizeof(st));
	st.node_id = 2;
	snprintf(st.node_name, sizeof(st.node_name), "node2");
	st.timing = (struct q_timing){ .heartbeat_ms = 500, .lease_ms = 3000, .token_ms = 1650 };
	st.connected = true;
	st.quorate = true;
	st.expected_votes = st.total_votes = 3;
	st.quorum = 2;
	st.node_votes = 1;
	st.options = Q_OPT_WAIT_FOR_ALL | Q_OPT_AUTO_TIE_BREAKER;
	st.nnodes = 3;
	for (uint32_t i = 0; i < 3; i++) {
		struct q_node *n = &st.nodes[i];
		n->id = i + 1;
		n->position = i;
		snprintf(n->name, sizeof(n->name), "node%u", i + 1);
		n->naddrs = 1;
		snprintf(n->addrs[0], sizeof(n->addrs[0]), "10.77.0.%u", i + 1);
		n->member = n->daemon = true;
		n->votes = 1;
		n->status_known = true;
		n->reachable = true;
		n->nlinks = 1;
		n->links[0] = (struct q_link){ .enabled = true, .connected = true, .mtu = 1397 };
	}
	/* Node 3 is partitioned. */
	st.nodes[2].member = st.nodes[2].daemon = false;
	st.nodes[2].links[0].connected = false;
	/* Node 1 reported its writes. */
	st.nodes[0].report_ms = 99900;
	st.nodes[0].nreport = 1;
	st.nodes[0].report[0] = (struct q_report_vol){ .write_latency_us = 1250, .write_ok = true };
	st.nvolumes = 1;
	struct q_volume *v = &st.volumes[0];
	snprintf(v->spec, sizeof(v->spec), "nbd+unix:///?socket=/run/lab/node2/vol1.sock");
	v->identified = true;
	snprintf(v->uuid_str, sizeof(v->uuid_str), "6b1e2c90-114d-470a-9c3e-5501deadbeef");
	memcpy(st.nodes[0].report[0].uuid, v->uuid, 16);
	snprintf(v->label, sizeof(v->label), "vol1");
	v->max_nodes = 3;
	v->nslots = 3;
	v->slot = 1;
	v->open = true;
	v->last_read_ok_ms = 99900;
	v->last_write_ok_ms = 99900;
	v->write_latency_us = 420;
	for (uint32_t i = 0; i < 3; i++)
		v->slots[i] = (struct q_slot){ .valid = true, .node_id = i + 1, .flags = CSV_HB_RUNNING,
					       .interval_ms = 500, .seq = 40 + i, .incarnation = 2,
					       .changed_ms = 99800 };
	st.lease_renewed_ms = 100000;
	st.lease_renewing = true;
	return &st;
}

static struct json_object *field(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;
	ck_assert_msg(json_object_object_get_ex(o, key, &v), "no field %s", key);
	return v;
}

static struct json_object *roundtrip(struct json_object *o)
{
	char *text = q_json_text(o);
	ck_assert_ptr_nonnull(text);
	/* One line, no escaped slashes. */
	ck_assert_ptr_null(strchr(text, '\n'));
	struct json_tokener *tok = json_tokener_new();
	struct json_object *back = json_tokener_parse_ex(tok, text, (int)strlen(text) + 1);
	ck_assert_msg(back, "not JSON: %s", text);
	ck_assert_int_eq(json_tokener_get_error(tok), json_tokener_success);
	json_tokener_free(tok);
	free(text);
	return back;
}

START_TEST(test_escaping_in_snapshot)
{
	struct q_state *st = make_state();
	/* A node name with everything JSON must escape, and a byte that is
	 * not UTF-8 (names come from corosync.conf and from the disk). */
	snprintf(st->nodes[0].name, sizeof(st->nodes[0].name), "a\"b\\c\nd\te\x01" "f\xff/g");
	struct json_object *o = q_snapshot_json(st, 100000, NULL);
	ck_assert_ptr_nonnull(o);
	char *text = q_json_text(o);
	ck_assert_ptr_nonnull(strstr(text, "\"a\\\"b\\\\c\\nd\\te\\u0001f?/g\""));
	free(text);
	struct json_object *back = roundtrip(o);
	struct json_object *n0 = json_object_array_get_idx(field(back, "nodes"), 0);
	ck_assert_str_eq(json_object_get_string(field(n0, "name")), "a\"b\\c\nd\te\x01" "f?/g");
	json_object_put(back);
	json_object_put(o);
}
END_TEST

START_TEST(test_snapshot_fields)
{
	struct q_state *st = make_state();
	struct q_client cl = { .uid = 65534, .gid = 65534, .may_change = false };
	struct json_object *o = q_snapshot_json(st, 100000, &cl);
	ck_assert_ptr_nonnull(o);
	struct json_object *s = roundtrip(o);
	json_object_put(o);

	ck_assert_int_eq(json_object_get_int(field(s, "version")), Q_SNAPSHOT_VERSION);
	ck_assert_int_eq(json_object_get_int(field(s, "node_id")), 2);
	ck_assert_str_eq(json_object_get_string(field(s, "corosync")), "connected");
	struct json_object *q = field(s, "quorum");
	ck_assert(json_object_get_boolean(field(q, "quorate")));
	ck_assert_int_eq(json_object_get_int(field(q, "expected_votes")), 3);
	ck_assert_int_eq(json_object_get_int(field(q, "quorum")), 2);
	struct json_object *opts = field(q, "options");
	ck_assert(!json_object_get_boolean(field(opts, "two_node")));
	ck_assert(json_object_get_boolean(field(opts, "wait_for_all")));
	ck_assert(!json_object_get_boolean(field(opts, "last_man_standing")));
	ck_assert(json_object_get_boolean(field(opts, "auto_tie_breaker")));
	ck_assert_uint_eq(json_object_array_length(field(s, "members")), 2);

	struct json_object *lease = field(s, "lease");
	ck_assert_str_eq(json_object_get_string(field(lease, "state")), "valid");
	ck_assert_int_eq(json_object_get_int(field(lease, "remaining_ms")), 3000);

	struct json_object *nodes = field(s, "nodes");
	ck_assert_uint_eq(json_object_array_length(nodes), 3);
	struct json_object *n1 = json_object_array_get_idx(nodes, 0);
	struct json_object *n2 = json_object_array_get_idx(nodes, 1);
	struct json_object *n3 = json_object_array_get_idx(nodes, 2);
	ck_assert(json_object_get_boolean(field(n2, "local")));
	ck_assert(!json_object_get_boolean(field(n1, "local")));
	ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(field(n1, "addresses"), 0)), "10.77.0.1");
	ck_assert(!json_object_get_boolean(field(n3, "member")));
	struct json_object *l3 = json_object_array_get_idx(field(n3, "links"), 0);
	ck_assert(!json_object_get_boolean(field(l3, "connected")));
	ck_assert_int_eq(json_object_get_int(field(l3, "mtu")), 1397);

	/* Per node and volume: state, SAN, heartbeat age, latency. */
	struct json_object *v3 = json_object_array_get_idx(field(n3, "volumes"), 0);
	ck_assert_str_eq(json_object_get_string(field(v3, "state")), "partitioned");
	ck_assert_str_eq(json_object_get_string(field(v3, "san")), "ok");
	ck_assert_int_eq(json_object_get_int(field(v3, "heartbeat_age_ms")), 200);
	ck_assert_int_eq(json_object_get_int(field(v3, "seq")), 42);
	ck_assert_ptr_null(field(v3, "write_latency_ms"));  /* node 3 sent no report */
	struct json_object *v1 = json_object_array_get_idx(field(n1, "volumes"), 0);
	ck_assert_str_eq(json_object_get_string(field(v1, "state")), "up");
	ck_assert_double_eq_tol(json_object_get_double(field(v1, "write_latency_ms")), 1.25, 1e-9);
	struct json_object *v2 = json_object_array_get_idx(field(n2, "volumes"), 0);
	ck_assert_double_eq_tol(json_object_get_double(field(v2, "write_latency_ms")), 0.42, 1e-9);
	ck_assert_int_eq(json_object_get_int(field(v2, "last_write_age_ms")), 100);

	struct json_object *vol = json_object_array_get_idx(field(s, "volumes"), 0);
	ck_assert_str_eq(json_object_get_string(field(vol, "uuid")), "6b1e2c90-114d-470a-9c3e-5501deadbeef");
	ck_assert_str_eq(json_object_get_string(field(vol, "label")), "vol1");
	ck_assert_int_eq(json_object_get_int(field(vol, "slot")), 1);
	ck_assert(json_object_get_boolean(field(vol, "readable")));
	ck_assert_ptr_null(field(vol, "error"));

	struct json_object *c = field(s, "client");
	ck_assert_int_eq(json_object_get_int(field(c, "uid")), 65534);
	ck_assert(!json_object_get_boolean(field(c, "may_change")));
	json_object_put(s);
}
END_TEST

START_TEST(test_snapshot_unidentified_volume)
{
	struct q_state *st = make_state();
	st->volumes[0].identified = false;
	snprintf(st->volumes[0].error, sizeof(st->volumes[0].error), "cannot open x: Connection refused");
	st->volumes[0].error_ms = 99000;
	st->connected = false;
	snprintf(st->disconnect_reason, sizeof(st->disconnect_reason), "cpg: CS_ERR_LIBRARY");
	struct json_object *o = q_snapshot_json(st, 100000, NULL);
	struct json_object *s = roundtrip(o);
	json_object_put(o);
	ck_assert_str_eq(json_object_get_string(field(s, "corosync")), "disconnected");
	ck_assert_str_eq(json_object_get_string(field(s, "corosync_error")), "cpg: CS_ERR_LIBRARY");
	ck_assert(!json_object_get_boolean(field(field(s, "quorum"), "quorate")));
	ck_assert_uint_eq(json_object_array_length(field(s, "members")), 0);
	struct json_object *vol = json_object_array_get_idx(field(s, "volumes"), 0);
	ck_assert_ptr_null(field(vol, "uuid"));
	ck_assert_str_eq(json_object_get_string(field(vol, "error")), "cannot open x: Connection refused");
	ck_assert_int_eq(json_object_get_int(field(vol, "error_age_ms")), 1000);
	/* Others cannot be judged from a volume this node cannot read. */
	struct json_object *n1 = json_object_array_get_idx(field(s, "nodes"), 0);
	struct json_object *v1 = json_object_array_get_idx(field(n1, "volumes"), 0);
	ck_assert_str_eq(json_object_get_string(field(v1, "state")), "unknown");
	ck_assert(!json_object_object_get_ex(s, "client", NULL));  /* no caller given */
	json_object_put(s);
}
END_TEST

START_TEST(test_event_json)
{
	struct q_state *st = make_state();
	struct q_event ev = { .kind = Q_EV_SAN, .node_id = 3, .volume = 0, .from = Q_SAN_UP, .to = Q_SAN_LOST };
	snprintf(ev.message, sizeof(ev.message), "node 3 (node3) on volume vol1: up -> san-lost");
	struct json_object *o = q_event_json(st, &ev, 100000, 1700000000000000000ull);
	struct json_object *e = roundtrip(o);
	json_object_put(o);
	ck_assert_str_eq(json_object_get_string(field(e, "event")), "san");
	ck_assert_int_eq(json_object_get_int(field(e, "node")), 3);
	ck_assert_str_eq(json_object_get_string(field(e, "from")), "up");
	ck_assert_str_eq(json_object_get_string(field(e, "to")), "san-lost");
	ck_assert_str_eq(json_object_get_string(field(e, "volume")), "6b1e2c90-114d-470a-9c3e-5501deadbeef");
	ck_assert_str_eq(json_object_get_string(field(e, "message")), ev.message);
	ck_assert_int_eq(json_object_get_int64(field(e, "wall_ns")), 1700000000000000000ll);
	json_object_put(e);

	ev = (struct q_event){ .kind = Q_EV_LEASE, .from = Q_LEASE_VALID, .to = Q_LEASE_EXPIRING };
	st->lease_renewing = false;
	o = q_event_json(st, &ev, 101000, 0);
	e = roundtrip(o);
	json_object_put(o);
	ck_assert_str_eq(json_object_get_string(field(e, "to")), "expiring");
	ck_assert_int_eq(json_object_get_int(field(e, "remaining_ms")), 2000);
	json_object_put(e);
}
END_TEST

static Suite *snapshot_suite(void)
{
	Suite *s = suite_create("quorum-snapshot");
	TCase *tc = tcase_create("escaping");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_clean_utf8);
	tcase_add_test(tc, test_escaping_in_snapshot);
	suite_add_tcase(s, tc);

	tc = tcase_create("content");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_snapshot_fields);
	tcase_add_test(tc, test_snapshot_unidentified_volume);
	tcase_add_test(tc, test_event_json);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(snapshot_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
