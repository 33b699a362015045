/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The rules of csv-quorumd: timing checks, the state of a node on a
 * volume from membership and heartbeat ages, the lease, and the events a
 * change gives. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"
#include "test-cluster-state.h"

/* ---- timing ------------------------------------------------------------------ */

START_TEST(test_timing_defaults_pass)
{
	char err[256] = "";
	struct q_timing t = { .heartbeat_ms = 500, .lease_ms = 3000, .token_ms = 1000 };
	ck_assert_int_eq(q_timing_check(&t, err, sizeof(err)), 0);
	/* The limits themselves pass: 3 H == L, L == T + 1. */
	t = (struct q_timing){ .heartbeat_ms = 1000, .lease_ms = 3000, .token_ms = 2999 };
	ck_assert_int_eq(q_timing_check(&t, err, sizeof(err)), 0);
}
END_TEST

START_TEST(test_timing_heartbeat_too_long)
{
	char err[512] = "";
	struct q_timing t = { .heartbeat_ms = 1001, .lease_ms = 3000, .token_ms = 1000 };
	ck_assert_int_eq(q_timing_check(&t, err, sizeof(err)), -EINVAL);
	/* The message names the values. */
	ck_assert_ptr_nonnull(strstr(err, "heartbeat 1001 ms"));
	ck_assert_ptr_nonnull(strstr(err, "lease 3000 ms"));
	ck_assert_ptr_nonnull(strstr(err, "3003"));
}
END_TEST

START_TEST(test_timing_lease_not_above_token)
{
	char err[512] = "";
	struct q_timing t = { .heartbeat_ms = 500, .lease_ms = 3000, .token_ms = 3000 };
	ck_assert_int_eq(q_timing_check(&t, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "lease 3000 ms"));
	ck_assert_ptr_nonnull(strstr(err, "token timeout 3000 ms"));
	t.token_ms = 5000;
	ck_assert_int_eq(q_timing_check(&t, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "5000"));
}
END_TEST

START_TEST(test_timing_zero)
{
	char err[512] = "";
	struct q_timing t = { .heartbeat_ms = 0, .lease_ms = 3000, .token_ms = 1000 };
	ck_assert_int_eq(q_timing_check(&t, err, sizeof(err)), -EINVAL);
	t = (struct q_timing){ .heartbeat_ms = 500, .lease_ms = 3000, .token_ms = 0 };
	ck_assert_int_eq(q_timing_check(&t, err, sizeof(err)), -EINVAL);
}
END_TEST

/* ---- classification ------------------------------------------------------------ */

START_TEST(test_classify_table)
{
	/* member, daemon, heartbeating, readable */
	ck_assert_int_eq(q_classify(true, true, true, true), Q_SAN_UP);
	ck_assert_int_eq(q_classify(true, true, false, true), Q_SAN_LOST);
	ck_assert_int_eq(q_classify(false, false, true, true), Q_SAN_PARTITIONED);
	ck_assert_int_eq(q_classify(false, false, false, true), Q_SAN_DEAD);
	/* A member whose daemon is not in the group and does not heartbeat:
	 * nothing tells its SAN access. */
	ck_assert_int_eq(q_classify(true, false, false, true), Q_SAN_NO_DAEMON);
	/* Heartbeating is what counts for a member, daemon or not. */
	ck_assert_int_eq(q_classify(true, false, true, true), Q_SAN_UP);
	/* This node cannot read the volume: no judgement at all. */
	ck_assert_int_eq(q_classify(true, true, true, false), Q_SAN_UNKNOWN);
	ck_assert_int_eq(q_classify(false, false, false, false), Q_SAN_UNKNOWN);
	ck_assert_str_eq(q_san_str(Q_SAN_LOST), "san-lost");
	ck_assert_str_eq(q_san_str(Q_SAN_PARTITIONED), "partitioned");
}
END_TEST

START_TEST(test_slot_ages)
{
	struct q_slot s = { .valid = true, .node_id = 2, .flags = CSV_HB_RUNNING, .interval_ms = 500,
			    .seq = 10, .changed_ms = 10000 };
	/* Within 3 of the writer's own intervals: heartbeating. */
	ck_assert(q_slot_heartbeating(&s, 100, 10000));
	ck_assert(q_slot_heartbeating(&s, 100, 11500));
	ck_assert(!q_slot_heartbeating(&s, 100, 11501));
	/* The writer's interval, not the reader's, sets the window; the
	 * reader's serves when the slot names none. */
	s.interval_ms = 0;
	ck_assert(q_slot_heartbeating(&s, 100, 10300));
	ck_assert(!q_slot_heartbeating(&s, 100, 10301));
	s.interval_ms = 500;
	/* No change seen yet: no heartbeat. */
	s.changed_ms = 0;
	ck_assert(!q_slot_heartbeating(&s, 500, 10000));
	s.changed_ms = 10000;
	/* Stopped on purpose, or a damaged block. */
	s.flags = 0;
	ck_assert(!q_slot_heartbeating(&s, 500, 10001));
	s.flags = CSV_HB_RUNNING;
	s.valid = false;
	ck_assert(!q_slot_heartbeating(&s, 500, 10001));
	ck_assert(!q_slot_heartbeating(NULL, 500, 10001));
	/* A clock that reads earlier than the change: no heartbeat, no wrap. */
	s.valid = true;
	ck_assert(!q_slot_heartbeating(&s, 500, 9999));
}
END_TEST

/* A three-node state, node 1 being this one, one volume with a slot per
 * node, everything healthy at now = NOW. */
static const uint64_t NOW = 100000;

static void make_state(struct q_state *st)
{
	test_cluster_state(st, NOW);
}

START_TEST(test_node_states)
{
	static struct q_state st;
	make_state(&st);
	const struct q_node *n3 = &st.nodes[2];
	const uint64_t t1 = NOW + 1300, t2 = NOW + 1301; /* 1500 and 1501 ms after the last change */

	ck_assert_int_eq(q_node_san(&st, n3, 0, NOW), Q_SAN_UP);
	/* Its slot stops changing while this node keeps reading: after
	 * 3 x 500 ms it has lost the SAN. */
	st.volumes[0].last_read_ok_ms = t1;
	st.volumes[0].last_write_ok_ms = t1;
	ck_assert_int_eq(q_node_san(&st, n3, 0, t1), Q_SAN_UP);
	ck_assert_int_eq(q_node_san(&st, n3, 0, t2), Q_SAN_LOST);
	/* Out of the membership, still heartbeating: partitioned. */
	st.nodes[2].member = st.nodes[2].daemon = false;
	ck_assert_int_eq(q_node_san(&st, n3, 0, t1), Q_SAN_PARTITIONED);
	/* Neither: dead. */
	ck_assert_int_eq(q_node_san(&st, n3, 0, t2), Q_SAN_DEAD);
	/* A member without its daemon, not heartbeating. */
	st.nodes[2].member = true;
	ck_assert_int_eq(q_node_san(&st, n3, 0, t2), Q_SAN_NO_DAEMON);

	/* This node cannot read the volume: the others are unknown; its own
	 * state it knows from its writes. */
	make_state(&st);
	st.volumes[0].last_read_ok_ms = NOW - 1600;
	ck_assert_int_eq(q_node_san(&st, &st.nodes[1], 0, NOW), Q_SAN_UNKNOWN);
	ck_assert_int_eq(q_node_san(&st, &st.nodes[0], 0, NOW), Q_SAN_UP);
	st.volumes[0].last_write_ok_ms = NOW - 1600;
	ck_assert_int_eq(q_node_san(&st, &st.nodes[0], 0, NOW), Q_SAN_LOST);

	/* Disconnected from corosync: nobody counts as a member. */
	make_state(&st);
	st.connected = false;
	ck_assert_int_eq(q_node_san(&st, n3, 0, NOW), Q_SAN_PARTITIONED);
}
END_TEST

START_TEST(test_slot_found_by_node_id)
{
	static struct q_state st;
	make_state(&st);
	/* Slots are matched by the node id written in them, not by position. */
	st.volumes[0].slots[0].node_id = 3;
	st.volumes[0].slots[2].node_id = 1;
	ck_assert_ptr_eq(q_volume_slot_of(&st.volumes[0], 3), &st.volumes[0].slots[0]);
	ck_assert_ptr_eq(q_volume_slot_of(&st.volumes[0], 1), &st.volumes[0].slots[2]);
	ck_assert_ptr_null(q_volume_slot_of(&st.volumes[0], 7));
	ck_assert_ptr_null(q_volume_slot_of(&st.volumes[0], 0));
	/* A damaged slot: its node is not heartbeating. */
	st.volumes[0].slots[1].valid = false;
	ck_assert_ptr_null(q_volume_slot_of(&st.volumes[0], 2));
	ck_assert_int_eq(q_node_san(&st, &st.nodes[1], 0, NOW), Q_SAN_LOST);
}
END_TEST

/* ---- lease ------------------------------------------------------------------- */

START_TEST(test_lease)
{
	static struct q_state st;
	uint64_t left;
	make_state(&st);

	ck_assert_int_eq(q_lease_state(&st, NOW, &left), Q_LEASE_EXPIRED);  /* never renewed */
	ck_assert(q_lease_renew(&st, NOW));
	ck_assert_int_eq(q_lease_state(&st, NOW, &left), Q_LEASE_VALID);
	ck_assert_uint_eq(left, 3000);

	/* Quorum lost: not renewed; it expires L after the last renewal. */
	st.quorate = false;
	ck_assert(!q_lease_renew(&st, NOW + 1000));
	ck_assert_int_eq(q_lease_state(&st, NOW + 1000, &left), Q_LEASE_EXPIRING);
	ck_assert_uint_eq(left, 2000);
	ck_assert_int_eq(q_lease_state(&st, NOW + 2999, &left), Q_LEASE_EXPIRING);
	ck_assert_uint_eq(left, 1);
	ck_assert_int_eq(q_lease_state(&st, NOW + 3000, &left), Q_LEASE_EXPIRED);
	ck_assert_uint_eq(left, 0);

	/* Quorate, but the own heartbeat writes fail: the SAN path alone is
	 * lost, and the node keeps its lease (redirected I/O, no fence). */
	st.quorate = true;
	st.volumes[0].last_write_ok_ms = NOW - 60000;
	ck_assert(q_lease_renew(&st, NOW));

	/* A fence request stops the renewal; so does a fence in this ring. */
	st.fence_request_seq = 7;
	ck_assert(!q_lease_renew(&st, NOW));
	st.fence_request_seq = 0;
	st.self_fenced = true;
	st.fenced_on_request = true;
	st.self_fenced_ring = st.ring_seq;
	ck_assert(!q_lease_renew(&st, NOW));
	st.ring_seq += 4;
	ck_assert(q_lease_renew(&st, NOW));
	ck_assert(!st.self_fenced);
	/* Fenced for lost quorum alone: quorum back is enough. */
	st.self_fenced = true;
	st.self_fenced_ring = st.ring_seq;
	ck_assert(q_lease_renew(&st, NOW));

	/* No volume: quorum alone renews. */
	st.nvolumes = 0;
	ck_assert(q_lease_renew(&st, NOW + 5000));
	st.connected = false;
	ck_assert(!q_lease_renew(&st, NOW + 5001));
	ck_assert_int_eq(q_lease_state(&st, NOW + 5001, &left), Q_LEASE_EXPIRING);
	ck_assert_uint_eq(left, 2999);
}
END_TEST

/* ---- events ------------------------------------------------------------------ */

struct seen {
	unsigned n;
	struct q_event ev[16];
};

static void collect(const struct q_event *ev, void *ctx)
{
	struct seen *s = ctx;
	if (s->n < 16)
		s->ev[s->n++] = *ev;
}

START_TEST(test_diff_events)
{
	static struct q_state st;
	struct q_view a, b;
	struct seen seen = { 0 };
	make_state(&st);
	q_lease_renew(&st, NOW);
	q_view_compute(&st, NOW, &a);
	ck_assert_uint_eq(a.nmembers, 3);
	ck_assert(a.quorate);

	/* Nothing changed: no event. */
	q_view_compute(&st, NOW, &b);
	ck_assert_uint_eq(q_view_diff(&st, &a, &b, collect, &seen), 0);

	/* Node 3 leaves the membership but keeps heartbeating. */
	st.nodes[2].member = st.nodes[2].daemon = false;
	q_view_compute(&st, NOW, &b);
	ck_assert_uint_eq(q_view_diff(&st, &a, &b, collect, &seen), 3);
	ck_assert_int_eq(seen.ev[0].kind, Q_EV_MEMBERSHIP);
	ck_assert_uint_eq(seen.ev[0].node_id, 3);
	ck_assert(!seen.ev[0].on);
	ck_assert_str_eq(seen.ev[0].message, "node 3 (node3) left the membership");
	ck_assert_int_eq(seen.ev[1].kind, Q_EV_DAEMON);
	ck_assert_int_eq(seen.ev[2].kind, Q_EV_SAN);
	ck_assert_int_eq(seen.ev[2].from, Q_SAN_UP);
	ck_assert_int_eq(seen.ev[2].to, Q_SAN_PARTITIONED);
	ck_assert_str_eq(seen.ev[2].message,
			 "node 3 (node3) on volume vol1 (6b1e2c90-114d-470a-9c3e-5501deadbeef): up -> partitioned");

	/* This node loses quorum; its lease is no longer renewed. */
	seen.n = 0;
	a = b;
	st.quorate = false;
	q_lease_renew(&st, NOW + 100);
	q_view_compute(&st, NOW + 100, &b);
	ck_assert_uint_eq(q_view_diff(&st, &a, &b, collect, &seen), 2);
	ck_assert_int_eq(seen.ev[0].kind, Q_EV_QUORUM);
	ck_assert(!seen.ev[0].on);
	ck_assert_int_eq(seen.ev[1].kind, Q_EV_LEASE);
	ck_assert_int_eq(seen.ev[1].from, Q_LEASE_VALID);
	ck_assert_int_eq(seen.ev[1].to, Q_LEASE_EXPIRING);

	/* corosync goes away. */
	seen.n = 0;
	a = b;
	st.connected = false;
	snprintf(st.disconnect_reason, sizeof(st.disconnect_reason), "cpg: CS_ERR_LIBRARY");
	q_view_compute(&st, NOW + 100, &b);
	ck_assert_uint_ge(q_view_diff(&st, &a, &b, collect, &seen), 1);
	ck_assert_int_eq(seen.ev[0].kind, Q_EV_COROSYNC);
	ck_assert_str_eq(seen.ev[0].message, "lost the connection to corosync: cpg: CS_ERR_LIBRARY");
}
END_TEST

START_TEST(test_diff_new_node_ignored)
{
	static struct q_state st;
	struct q_view a, b;
	struct seen seen = { 0 };
	make_state(&st);
	st.nnodes = 2;
	q_view_compute(&st, NOW, &a);
	st.nnodes = 3;
	q_view_compute(&st, NOW, &b);
	/* A node new in the nodelist has nothing to compare with. */
	ck_assert_uint_eq(q_view_diff(&st, &a, &b, collect, &seen), 0);
}
END_TEST

static Suite *state_suite(void)
{
	Suite *s = suite_create("quorum-state");
	TCase *tc;

	tc = tcase_create("timing");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_timing_defaults_pass);
	tcase_add_test(tc, test_timing_heartbeat_too_long);
	tcase_add_test(tc, test_timing_lease_not_above_token);
	tcase_add_test(tc, test_timing_zero);
	suite_add_tcase(s, tc);

	tc = tcase_create("classification");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_classify_table);
	tcase_add_test(tc, test_slot_ages);
	tcase_add_test(tc, test_node_states);
	tcase_add_test(tc, test_slot_found_by_node_id);
	suite_add_tcase(s, tc);

	tc = tcase_create("lease");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_lease);
	suite_add_tcase(s, tc);

	tc = tcase_create("events");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_diff_events);
	tcase_add_test(tc, test_diff_new_node_ignored);
	suite_add_tcase(s, tc);
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
