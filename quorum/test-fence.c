/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The fence rules of csv-quorumd: the margin, when a lost node counts as
 * fenced and by what, when this node obeys a fence request in its own
 * mailbox, when it renews its lease, and who holds the disk witness. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"
#include "test-cluster-state.h"

/* A three-node state, node 1 being this one, one volume with a slot per
 * node, everything healthy and quorate at now = NOW. Timings: heartbeat
 * 500 ms, lease 3000 ms, token 1000 ms, so the margin is 500 ms and a lost
 * node's lease has run out 3500 ms after its loss. */
static const uint64_t NOW = 1000000;
static const uint64_t WAIT = 3000 + 500;

static void make_state(struct q_state *st)
{
	test_cluster_state(st, NOW);
}

/* The same as a two-node cluster (votequorum two_node), without witness. */
static void make_two_node(struct q_state *st)
{
	make_state(st);
	st->nnodes = 2;
	memset(&st->nodes[2], 0, sizeof(st->nodes[2]));
	st->expected_votes = st->total_votes = 2;
	st->quorum = 1;
	st->options = Q_OPT_TWO_NODE;
	st->volumes[0].max_nodes = 2;
	st->volumes[0].nslots = 2;
	memset(&st->volumes[0].slots[2], 0, sizeof(st->volumes[0].slots[2]));
}

/* One round of the daemon at t: this node read the volume and wrote its
 * slot just now, the members' slots changed, then the fence rules run. */
static void tick(struct q_state *st, uint64_t t)
{
	for (uint32_t k = 0; k < st->nvolumes; k++) {
		struct q_volume *v = &st->volumes[k];
		v->last_read_ok_ms = v->last_write_ok_ms = t;
		for (uint32_t i = 0; i < v->nslots; i++) {
			const struct q_node *n = q_state_node_c(st, v->slots[i].node_id);
			if (n && n->member && st->connected) {
				v->slots[i].seq++;
				v->slots[i].changed_ms = t;
			}
		}
	}
	q_fence_update(st, t);
}

/* Node id leaves the membership at t: corosync forms a new ring. */
static void leave(struct q_state *st, uint32_t id, uint64_t t)
{
	struct q_node *n = q_state_node(st, id);
	n->member = n->daemon = false;
	st->ring_seq += 4;
	tick(st, t);
}

static void assert_not_fenced(const struct q_node *n)
{
	ck_assert_int_eq(n->fence, Q_FENCE_NONE);
	ck_assert_int_eq(n->fenced_by, Q_FENCED_BY_NONE);
	ck_assert_uint_eq(n->lost_ms, 0);
	ck_assert_uint_eq(n->fenced_ms, 0);
	ck_assert_uint_eq(n->fence_seq, 0);
}

/* Node 3 leaves at T_LEAVE after a settled quorate start; the state at
 * T_JUDGE = T_LEAVE + Q_FENCE_SETTLE_MS, where node 3 is pending. */
static const uint64_t T_LEAVE = NOW + 2000;
static const uint64_t T_JUDGE = NOW + 2000 + Q_FENCE_SETTLE_MS;

static void make_pending(struct q_state *st)
{
	make_state(st);
	tick(st, NOW);
	tick(st, NOW + 1000);
	leave(st, 3, T_LEAVE);
	tick(st, T_JUDGE);
	ck_assert_int_eq(st->nodes[2].fence, Q_FENCE_PENDING);
	ck_assert_uint_eq(st->nodes[2].lost_ms, T_LEAVE);
}

/* ---- margin -------------------------------------------------------------------- */

START_TEST(test_margin)
{
	/* max(L / 6, 300), at most L / 2. */
	ck_assert_uint_eq(q_fence_margin_ms(3000), 500);
	ck_assert_uint_eq(q_fence_margin_ms(6000), 1000);
	ck_assert_uint_eq(q_fence_margin_ms(1800), 300);
	ck_assert_uint_eq(q_fence_margin_ms(1200), 300);
	ck_assert_uint_eq(q_fence_margin_ms(800), 300);
	ck_assert_uint_eq(q_fence_margin_ms(600), 300);
	ck_assert_uint_eq(q_fence_margin_ms(400), 200);
}
END_TEST

/* ---- a lost node -------------------------------------------------------------- */

START_TEST(test_fence_members_none)
{
	static struct q_state st;
	make_state(&st);
	tick(&st, NOW);
	tick(&st, NOW + Q_FENCE_SETTLE_MS);
	tick(&st, NOW + 60000);
	for (uint32_t i = 0; i < 3; i++) {
		assert_not_fenced(&st.nodes[i]);
		ck_assert_uint_eq(st.nodes[i].left_ms, 0);
	}
	ck_assert(st.nodes[1].seen_member);
	ck_assert(st.nodes[2].seen_member);
}
END_TEST

START_TEST(test_fence_pending_after_settle)
{
	static struct q_state st;
	struct q_node *n3 = &st.nodes[2];
	make_state(&st);
	/* An acknowledgement of an older request is in its slot. */
	st.volumes[0].slots[2].fence_ack_seq = 1000;
	tick(&st, NOW);
	tick(&st, NOW + 1000);

	/* It leaves; the new ring restarts the settle clock. */
	leave(&st, 3, T_LEAVE);
	ck_assert_uint_eq(n3->left_ms, T_LEAVE);
	assert_not_fenced(n3);
	tick(&st, T_LEAVE + Q_FENCE_SETTLE_MS - 1);
	assert_not_fenced(n3);

	/* Quorum held for Q_FENCE_SETTLE_MS: lost since it left, not since
	 * now, with a request newer than any it acknowledged. */
	tick(&st, T_LEAVE + Q_FENCE_SETTLE_MS);
	ck_assert_int_eq(n3->fence, Q_FENCE_PENDING);
	ck_assert_int_eq(n3->fenced_by, Q_FENCED_BY_NONE);
	ck_assert_uint_eq(n3->lost_ms, T_LEAVE);
	ck_assert_uint_eq(n3->fenced_ms, 0);
	ck_assert_uint_gt(n3->fence_seq, 1000);
	ck_assert_uint_eq(n3->left_ms, T_LEAVE);
	/* The others are not touched. */
	assert_not_fenced(&st.nodes[1]);
	assert_not_fenced(&st.nodes[0]);

	/* Its request number stays while it is pending. */
	uint64_t seq = n3->fence_seq;
	tick(&st, T_LEAVE + 1000);
	ck_assert_int_eq(n3->fence, Q_FENCE_PENDING);
	ck_assert_uint_eq(n3->fence_seq, seq);
	ck_assert_uint_eq(n3->lost_ms, T_LEAVE);
}
END_TEST

START_TEST(test_fence_settle_restarts_on_quorum_change)
{
	static struct q_state st;
	struct q_node *n3 = &st.nodes[2];
	make_state(&st);
	tick(&st, NOW);
	tick(&st, NOW + 1000);
	leave(&st, 3, T_LEAVE);
	/* votequorum takes a moment: quorum is lost, then back, in the same
	 * ring; the settle clock, and the loss, count from the return. */
	st.quorate = false;
	tick(&st, T_LEAVE + 100);
	st.quorate = true;
	tick(&st, T_LEAVE + 200);
	tick(&st, T_LEAVE + 200 + Q_FENCE_SETTLE_MS - 1);
	assert_not_fenced(n3);
	tick(&st, T_LEAVE + 200 + Q_FENCE_SETTLE_MS);
	ck_assert_int_eq(n3->fence, Q_FENCE_PENDING);
	ck_assert_uint_eq(n3->lost_ms, T_LEAVE + 200);
}
END_TEST

START_TEST(test_fence_by_lease)
{
	static struct q_state st;
	struct q_node *n3 = &st.nodes[2];
	make_pending(&st);
	/* Its slot no longer changes: its lease has run out L + margin after
	 * it was lost, and not a millisecond earlier. */
	tick(&st, T_LEAVE + 2000);
	tick(&st, T_LEAVE + WAIT - 1);
	ck_assert_int_eq(n3->fence, Q_FENCE_PENDING);
	ck_assert_int_eq(n3->fenced_by, Q_FENCED_BY_NONE);
	tick(&st, T_LEAVE + WAIT);
	ck_assert_int_eq(n3->fence, Q_FENCE_DONE);
	ck_assert_int_eq(n3->fenced_by, Q_FENCED_BY_LEASE);
	ck_assert_uint_eq(n3->fenced_ms, T_LEAVE + WAIT);
	ck_assert_uint_eq(n3->lost_ms, T_LEAVE);
	/* Fenced stays fenced. */
	tick(&st, T_LEAVE + 60000);
	ck_assert_int_eq(n3->fence, Q_FENCE_DONE);
	ck_assert_uint_eq(n3->fenced_ms, T_LEAVE + WAIT);
}
END_TEST

START_TEST(test_fence_by_lease_counts_from_last_write)
{
	static struct q_state st;
	struct q_node *n3 = &st.nodes[2];
	struct q_slot *s3 = &st.volumes[0].slots[2];
	make_pending(&st);
	/* Partitioned, it still runs and writes its heartbeat. */
	s3->seq++;
	s3->changed_ms = T_LEAVE + 1000;
	tick(&st, T_LEAVE + 1000);
	s3->seq++;
	s3->changed_ms = T_LEAVE + 2000;
	tick(&st, T_LEAVE + 2000);
	tick(&st, T_LEAVE + WAIT);
	ck_assert_int_eq(n3->fence, Q_FENCE_PENDING);
	tick(&st, T_LEAVE + 2000 + WAIT - 1);
	ck_assert_int_eq(n3->fence, Q_FENCE_PENDING);
	tick(&st, T_LEAVE + 2000 + WAIT);
	ck_assert_int_eq(n3->fence, Q_FENCE_DONE);
	ck_assert_int_eq(n3->fenced_by, Q_FENCED_BY_LEASE);
	ck_assert_uint_eq(n3->fenced_ms, T_LEAVE + 2000 + WAIT);
}
END_TEST

START_TEST(test_fence_by_lease_ignores_stopped_writer)
{
	static struct q_state st;
	struct q_node *n3 = &st.nodes[2];
	struct q_slot *s3 = &st.volumes[0].slots[2];
	make_pending(&st);
	/* Its slot changed after the loss, but without CSV_HB_RUNNING (its
	 * daemons stopped): that is no I/O, the lease counts from the loss. */
	s3->flags = 0;
	s3->seq++;
	s3->changed_ms = T_LEAVE + 2000;
	tick(&st, T_LEAVE + 2000);
	tick(&st, T_LEAVE + WAIT - 1);
	ck_assert_int_eq(n3->fence, Q_FENCE_PENDING);
	tick(&st, T_LEAVE + WAIT);
	ck_assert_int_eq(n3->fence, Q_FENCE_DONE);
	ck_assert_int_eq(n3->fenced_by, Q_FENCED_BY_LEASE);
}
END_TEST

START_TEST(test_fence_by_ack)
{
	static struct q_state st;
	struct q_node *n3 = &st.nodes[2];
	struct q_slot *s3 = &st.volumes[0].slots[2];
	make_pending(&st);
	tick(&st, T_LEAVE + 1000);
	ck_assert_int_eq(n3->fence, Q_FENCE_PENDING);
	/* It read its mailbox, stopped its I/O and wrote the acknowledgement:
	 * fenced at once, long before its lease would have run out. */
	s3->flags = CSV_HB_RUNNING | CSV_HB_FENCED;
	s3->fence_ack_seq = n3->fence_seq;
	s3->seq++;
	s3->changed_ms = T_LEAVE + 1100;
	tick(&st, T_LEAVE + 1200);
	ck_assert_int_eq(n3->fence, Q_FENCE_DONE);
	ck_assert_int_eq(n3->fenced_by, Q_FENCED_BY_ACK);
	ck_assert_uint_eq(n3->fenced_ms, T_LEAVE + 1200);
}
END_TEST

START_TEST(test_fence_by_ack_seq_alone)
{
	static struct q_state st;
	struct q_node *n3 = &st.nodes[2];
	struct q_slot *s3 = &st.volumes[0].slots[2];
	make_pending(&st);
	/* The acknowledgement names the request: that alone counts, whenever
	 * this node saw the slot change. */
	s3->flags = CSV_HB_FENCED;
	s3->fence_ack_seq = n3->fence_seq + 3;
	s3->changed_ms = T_LEAVE - 1000;
	tick(&st, T_LEAVE + 1000);
	ck_assert_int_eq(n3->fence, Q_FENCE_DONE);
	ck_assert_int_eq(n3->fenced_by, Q_FENCED_BY_ACK);
	ck_assert_uint_eq(n3->fenced_ms, T_LEAVE + 1000);
}
END_TEST

START_TEST(test_fence_stale_fenced_flag)
{
	static struct q_state st;
	struct q_node *n3 = &st.nodes[2];
	struct q_slot *s3 = &st.volumes[0].slots[2];
	make_pending(&st);
	/* A FENCED flag written before it was lost, acknowledging an older
	 * request: it says nothing about now. */
	s3->flags = CSV_HB_RUNNING | CSV_HB_FENCED;
	s3->fence_ack_seq = n3->fence_seq - 1;
	s3->changed_ms = T_LEAVE - 1;
	tick(&st, T_LEAVE + 1000);
	ck_assert_int_eq(n3->fence, Q_FENCE_PENDING);
	ck_assert_int_eq(n3->fenced_by, Q_FENCED_BY_NONE);
	tick(&st, T_LEAVE + WAIT - 1);
	ck_assert_int_eq(n3->fence, Q_FENCE_PENDING);
	/* Written after the loss, the same flag counts, even without the
	 * request number. */
	s3->seq++;
	s3->changed_ms = T_LEAVE + WAIT - 1;
	tick(&st, T_LEAVE + WAIT - 1);
	ck_assert_int_eq(n3->fence, Q_FENCE_DONE);
	ck_assert_int_eq(n3->fenced_by, Q_FENCED_BY_ACK);
	ck_assert_uint_eq(n3->fenced_ms, T_LEAVE + WAIT - 1);
}
END_TEST

START_TEST(test_fence_by_agent)
{
	static struct q_state st;
	struct q_node *n3 = &st.nodes[2];
	make_pending(&st);
	tick(&st, T_LEAVE + 800);
	ck_assert_int_eq(n3->fence, Q_FENCE_PENDING);
	n3->agent_done = true;
	tick(&st, T_LEAVE + 900);
	ck_assert_int_eq(n3->fence, Q_FENCE_DONE);
	ck_assert_int_eq(n3->fenced_by, Q_FENCED_BY_AGENT);
	ck_assert_uint_eq(n3->fenced_ms, T_LEAVE + 900);
}
END_TEST

START_TEST(test_fence_not_quorate_never_starts)
{
	static struct q_state st;
	struct q_node *n3 = &st.nodes[2];

	/* Not quorate. */
	make_state(&st);
	st.quorate = false;
	tick(&st, NOW);
	tick(&st, NOW + 1000);
	leave(&st, 3, T_LEAVE);
	tick(&st, T_LEAVE + Q_FENCE_SETTLE_MS);
	tick(&st, T_LEAVE + WAIT);
	tick(&st, T_LEAVE + 60000);
	assert_not_fenced(n3);
	/* It saw it leave all the same. */
	ck_assert_uint_eq(n3->left_ms, T_LEAVE);

	/* Disconnected from corosync: no member at all, nobody judged. */
	make_state(&st);
	tick(&st, NOW);
	tick(&st, NOW + 1000);
	st.connected = false;
	tick(&st, T_LEAVE);
	tick(&st, T_LEAVE + Q_FENCE_SETTLE_MS);
	tick(&st, T_LEAVE + 60000);
	assert_not_fenced(&st.nodes[1]);
	assert_not_fenced(n3);
}
END_TEST

START_TEST(test_fence_witness_needs_vote)
{
	static struct q_state st;
	struct q_node *n3 = &st.nodes[2];
	/* Quorate, but the witness is not this partition's: never. */
	make_state(&st);
	st.witness = true;
	st.cast_vote = false;
	tick(&st, NOW);
	tick(&st, NOW + 1000);
	leave(&st, 3, T_LEAVE);
	tick(&st, T_LEAVE + Q_FENCE_SETTLE_MS);
	tick(&st, T_LEAVE + WAIT);
	tick(&st, T_LEAVE + 60000);
	assert_not_fenced(n3);

	/* This partition takes the witness soon after the split: the loss
	 * counts from then, not from the leave (before it, this side could
	 * not tell that node 3 had not kept running elsewhere). */
	make_state(&st);
	st.witness = true;
	st.cast_vote = false;
	tick(&st, NOW);
	tick(&st, NOW + 1000);
	leave(&st, 3, T_LEAVE);
	const uint64_t t = T_LEAVE + 1000;
	st.cast_vote = true;
	tick(&st, t);
	tick(&st, t + Q_FENCE_SETTLE_MS - 1);
	assert_not_fenced(n3);
	tick(&st, t + Q_FENCE_SETTLE_MS);
	ck_assert_int_eq(n3->fence, Q_FENCE_PENDING);
	ck_assert_uint_eq(n3->lost_ms, t);
	tick(&st, t + WAIT - 1);
	ck_assert_int_eq(n3->fence, Q_FENCE_PENDING);
	tick(&st, t + WAIT);
	ck_assert_int_eq(n3->fence, Q_FENCE_DONE);
	ck_assert_int_eq(n3->fenced_by, Q_FENCED_BY_LEASE);
}
END_TEST

START_TEST(test_fence_two_node_no_lease)
{
	static struct q_state st;
	struct q_node *n2 = &st.nodes[1];
	struct q_slot *s2 = &st.volumes[0].slots[1];

	/* Without the witness both sides stay quorate: the other may still
	 * renew its lease, so its expiry proves nothing. */
	make_two_node(&st);
	tick(&st, NOW);
	tick(&st, NOW + 1000);
	leave(&st, 2, T_LEAVE);
	tick(&st, T_JUDGE);
	ck_assert_int_eq(n2->fence, Q_FENCE_PENDING);
	ck_assert_uint_eq(n2->lost_ms, T_LEAVE);
	tick(&st, T_LEAVE + WAIT);
	tick(&st, T_LEAVE + 10 * WAIT);
	tick(&st, T_LEAVE + 3600000);
	ck_assert_int_eq(n2->fence, Q_FENCE_PENDING);
	ck_assert_int_eq(n2->fenced_by, Q_FENCED_BY_NONE);
	/* Its acknowledgement works. */
	s2->flags = CSV_HB_FENCED;
	s2->fence_ack_seq = n2->fence_seq;
	s2->seq++;
	s2->changed_ms = T_LEAVE + 3600100;
	tick(&st, T_LEAVE + 3600200);
	ck_assert_int_eq(n2->fence, Q_FENCE_DONE);
	ck_assert_int_eq(n2->fenced_by, Q_FENCED_BY_ACK);

	/* So does a fence agent. */
	make_two_node(&st);
	tick(&st, NOW);
	tick(&st, NOW + 1000);
	leave(&st, 2, T_LEAVE);
	tick(&st, T_LEAVE + 60000);
	ck_assert_int_eq(n2->fence, Q_FENCE_PENDING);
	n2->agent_done = true;
	tick(&st, T_LEAVE + 61000);
	ck_assert_int_eq(n2->fence, Q_FENCE_DONE);
	ck_assert_int_eq(n2->fenced_by, Q_FENCED_BY_AGENT);
	ck_assert_uint_eq(n2->fenced_ms, T_LEAVE + 61000);

	/* With the witness held by this side, only one side is quorate: the
	 * lease counts again. */
	make_two_node(&st);
	st.witness = true;
	st.cast_vote = true;
	tick(&st, NOW);
	tick(&st, NOW + 1000);
	leave(&st, 2, T_LEAVE);
	tick(&st, T_JUDGE);
	tick(&st, T_LEAVE + WAIT - 1);
	ck_assert_int_eq(n2->fence, Q_FENCE_PENDING);
	tick(&st, T_LEAVE + WAIT);
	ck_assert_int_eq(n2->fence, Q_FENCE_DONE);
	ck_assert_int_eq(n2->fenced_by, Q_FENCED_BY_LEASE);
}
END_TEST

START_TEST(test_fence_rejoin_clears)
{
	static struct q_state st;
	struct q_node *n3 = &st.nodes[2];
	make_pending(&st);
	n3->agent_done = true;
	tick(&st, T_LEAVE + 1000);
	ck_assert_int_eq(n3->fence, Q_FENCE_DONE);

	/* Back in the membership: its fence is over. */
	const uint64_t back = T_LEAVE + 30000;
	n3->member = n3->daemon = true;
	st.ring_seq += 4;
	tick(&st, back);
	assert_not_fenced(n3);
	ck_assert(!n3->agent_done);
	ck_assert_uint_eq(n3->left_ms, 0);

	/* Lost again: a new loss, counted from the new leave; the old agent
	 * confirmation does not carry over. */
	const uint64_t again = back + 10000;
	leave(&st, 3, again);
	ck_assert_uint_eq(n3->left_ms, again);
	tick(&st, again + Q_FENCE_SETTLE_MS);
	ck_assert_int_eq(n3->fence, Q_FENCE_PENDING);
	ck_assert_uint_eq(n3->lost_ms, again);
	ck_assert_uint_ne(n3->fence_seq, 0);

	/* A pending node that comes back is cleared too. */
	n3->member = n3->daemon = true;
	st.ring_seq += 4;
	tick(&st, again + 1000);
	assert_not_fenced(n3);
	ck_assert_uint_eq(n3->left_ms, 0);
}
END_TEST

/* ---- this node's mailbox ---------------------------------------------------- */

/* Node `from` asks this node to fence itself, on volume 0. */
static void request(struct q_state *st, uint32_t from, uint64_t seq)
{
	st->volumes[0].mailbox_from = from;
	st->volumes[0].mailbox_request = CSV_MAILBOX_FENCE;
	st->volumes[0].mailbox_seq = seq;
}

START_TEST(test_mailbox_taken_when_not_quorate)
{
	static struct q_state st;
	make_state(&st);
	/* This node is alone: 2 and 3 form the quorate side and fence it. */
	st.nodes[1].member = st.nodes[1].daemon = false;
	st.nodes[2].member = st.nodes[2].daemon = false;
	st.quorate = false;
	request(&st, 3, 108);
	ck_assert(q_mailbox_check(&st));
	ck_assert_uint_eq(st.fence_request_seq, 108);
	ck_assert_uint_eq(st.fence_request_from, 3);
	/* The same request is not new a second time. */
	ck_assert(!q_mailbox_check(&st));
	ck_assert_uint_eq(st.fence_request_seq, 108);
	/* A newer one is. */
	request(&st, 2, 112);
	ck_assert(q_mailbox_check(&st));
	ck_assert_uint_eq(st.fence_request_seq, 112);
	ck_assert_uint_eq(st.fence_request_from, 2);

	/* Disconnected from corosync: no quorum either. */
	make_state(&st);
	st.connected = false;
	request(&st, 3, 108);
	ck_assert(q_mailbox_check(&st));
	ck_assert_uint_eq(st.fence_request_seq, 108);
	ck_assert_uint_eq(st.fence_request_from, 3);
}
END_TEST

START_TEST(test_mailbox_ignored_when_quorate)
{
	static struct q_state st;
	make_state(&st);
	/* 1 and 2 are the quorate side; 3 asked before it knew it was alone. */
	st.nodes[2].member = st.nodes[2].daemon = false;
	request(&st, 3, 108);
	ck_assert(!q_mailbox_check(&st));
	ck_assert_uint_eq(st.fence_request_seq, 0);
	ck_assert_uint_eq(st.fence_request_from, 0);
	/* Ignored for good: not obeyed when this node loses quorum later. */
	st.quorate = false;
	ck_assert(!q_mailbox_check(&st));
	ck_assert_uint_eq(st.fence_request_seq, 0);
	/* Control: a new request is. */
	request(&st, 3, 109);
	ck_assert(q_mailbox_check(&st));
	ck_assert_uint_eq(st.fence_request_seq, 109);
}
END_TEST

START_TEST(test_mailbox_ignored_from_member)
{
	static struct q_state st;
	make_state(&st);
	/* Not quorate, yet the requester shares the membership with it: the
	 * request is from before. */
	st.quorate = false;
	request(&st, 3, 108);
	ck_assert(!q_mailbox_check(&st));
	ck_assert_uint_eq(st.fence_request_seq, 0);
	/* Control: once it is outside, its new request is taken (the old
	 * one stays ignored). */
	st.nodes[2].member = st.nodes[2].daemon = false;
	ck_assert(!q_mailbox_check(&st));
	request(&st, 3, 109);
	ck_assert(q_mailbox_check(&st));
	ck_assert_uint_eq(st.fence_request_seq, 109);
}
END_TEST

START_TEST(test_mailbox_ignored_when_acked)
{
	static struct q_state st;
	make_state(&st);
	st.nodes[2].member = st.nodes[2].daemon = false;
	st.quorate = false;
	st.fence_acked_seq = 108;
	request(&st, 3, 100);
	ck_assert(!q_mailbox_check(&st));
	request(&st, 3, 108);
	ck_assert(!q_mailbox_check(&st));
	ck_assert_uint_eq(st.fence_request_seq, 0);
	request(&st, 3, 109);
	ck_assert(q_mailbox_check(&st));
	ck_assert_uint_eq(st.fence_request_seq, 109);
	ck_assert_uint_eq(st.fence_request_from, 3);
}
END_TEST

START_TEST(test_mailbox_ignored_from_self)
{
	static struct q_state st;
	make_state(&st);
	/* Disconnected, so nobody counts as a member: only the id tells. */
	st.connected = false;
	request(&st, 1, 108);
	ck_assert(!q_mailbox_check(&st));
	ck_assert_uint_eq(st.fence_request_seq, 0);
	ck_assert_uint_eq(st.fence_request_from, 0);
	/* Control: from node 3 in the same state. */
	request(&st, 3, 108);
	ck_assert(q_mailbox_check(&st));
	ck_assert_uint_eq(st.fence_request_seq, 108);
}
END_TEST

START_TEST(test_mailbox_two_node_lower_id_wins)
{
	static struct q_state st;
	/* Node 1, quorate alone after the split: node 2's request is ignored. */
	make_two_node(&st);
	st.nodes[1].member = st.nodes[1].daemon = false;
	request(&st, 2, 108);
	ck_assert(!q_mailbox_check(&st));
	ck_assert_uint_eq(st.fence_request_seq, 0);

	/* Node 2, quorate alone too: node 1's request is obeyed. */
	make_two_node(&st);
	st.node_id = 2;
	st.volumes[0].slot = 1;
	st.nodes[0].member = st.nodes[0].daemon = false;
	request(&st, 1, 108);
	ck_assert(q_mailbox_check(&st));
	ck_assert_uint_eq(st.fence_request_seq, 108);
	ck_assert_uint_eq(st.fence_request_from, 1);

	/* With the witness only one side is quorate: node 2, quorate, ignores
	 * node 1 like any quorate node. */
	make_two_node(&st);
	st.witness = true;
	st.cast_vote = true;
	st.node_id = 2;
	st.volumes[0].slot = 1;
	st.nodes[0].member = st.nodes[0].daemon = false;
	request(&st, 1, 108);
	ck_assert(!q_mailbox_check(&st));
	ck_assert_uint_eq(st.fence_request_seq, 0);
}
END_TEST

/* ---- this node's lease -------------------------------------------------------- */

START_TEST(test_lease_renew_rules)
{
	static struct q_state st;
	uint64_t left;
	make_state(&st);

	/* The own heartbeat writes fail: the SAN path alone is lost; the node
	 * keeps its lease and goes to redirected I/O. */
	st.volumes[0].last_write_ok_ms = NOW - 60000;
	st.volumes[0].writes_failed = 120;
	st.volumes[0].open = false;
	snprintf(st.volumes[0].error, sizeof(st.volumes[0].error), "write: Input/output error");
	ck_assert(q_lease_renew(&st, NOW));
	ck_assert(st.lease_renewing);
	ck_assert_uint_eq(st.lease_renewed_ms, NOW);
	ck_assert_int_eq(q_lease_state(&st, NOW, &left), Q_LEASE_VALID);
	ck_assert_uint_eq(left, 3000);

	/* A fence request pending: no renewal, the lease runs out. */
	st.fence_request_seq = 108;
	st.fence_request_from = 3;
	ck_assert(!q_lease_renew(&st, NOW + 500));
	ck_assert(!st.lease_renewing);
	ck_assert_uint_eq(st.lease_renewed_ms, NOW);
	ck_assert_int_eq(q_lease_state(&st, NOW + 500, &left), Q_LEASE_EXPIRING);
	ck_assert_uint_eq(left, 2500);
	ck_assert_int_eq(q_lease_state(&st, NOW + 3000, &left), Q_LEASE_EXPIRED);

	/* Acknowledged, so fenced on request in this ring: still none. */
	st.fence_request_seq = 0;
	st.fence_acked_seq = 108;
	st.self_fenced = true;
	st.fenced_on_request = true;
	st.self_fenced_ring = st.ring_seq;
	ck_assert(!q_lease_renew(&st, NOW + 4000));
	ck_assert(!st.lease_renewing);
	ck_assert(st.self_fenced);
	ck_assert_uint_eq(st.lease_renewed_ms, NOW);

	/* A new ring (it rejoined): renewed, the self-fence is over. */
	st.ring_seq += 4;
	ck_assert(q_lease_renew(&st, NOW + 5000));
	ck_assert(st.lease_renewing);
	ck_assert(!st.self_fenced);
	ck_assert(!st.fenced_on_request);
	ck_assert_uint_eq(st.lease_renewed_ms, NOW + 5000);
	ck_assert_int_eq(q_lease_state(&st, NOW + 5000, &left), Q_LEASE_VALID);

	/* Fenced for lost quorum alone, nobody asked: quorum back in the same
	 * ring is enough. */
	st.self_fenced = true;
	st.fenced_on_request = false;
	st.self_fenced_ring = st.ring_seq;
	ck_assert(q_lease_renew(&st, NOW + 6000));
	ck_assert(!st.self_fenced);
	ck_assert_uint_eq(st.lease_renewed_ms, NOW + 6000);
}
END_TEST

/* ---- disk witness ----------------------------------------------------------------- */

static void make_witness(struct q_state *st, uint32_t holder)
{
	make_two_node(st);
	st->witness = true;
	st->volumes[0].witness_valid = true;
	st->volumes[0].witness_holder = holder;
	st->volumes[0].witness_generation = 3;
	st->volumes[0].witness_seq = 40;
}

START_TEST(test_witness_vote_held_by_self)
{
	static struct q_state st;
	make_witness(&st, 1);
	/* Renewed within L - margin = 2500 ms. */
	st.volumes[0].witness_held_ms = NOW - 2499;
	ck_assert(q_witness_vote(&st, NOW));
	st.volumes[0].witness_held_ms = NOW - 2500;
	ck_assert(!q_witness_vote(&st, NOW));
	st.volumes[0].witness_held_ms = NOW - 10000;
	ck_assert(!q_witness_vote(&st, NOW));
	/* A block that does not verify tells nothing. */
	st.volumes[0].witness_held_ms = NOW - 100;
	st.volumes[0].witness_valid = false;
	ck_assert(!q_witness_vote(&st, NOW));
	st.volumes[0].witness_valid = true;
	/* Never renewed by this node. */
	st.volumes[0].witness_held_ms = 0;
	st.volumes[0].witness_changed_ms = NOW - 100;
	ck_assert(!q_witness_vote(&st, NOW));
}
END_TEST

START_TEST(test_witness_vote_held_by_member)
{
	static struct q_state st;
	make_witness(&st, 2);
	/* Node 2 is a member and its renewals are seen within L. */
	st.volumes[0].witness_changed_ms = NOW - 2999;
	ck_assert(q_witness_vote(&st, NOW));
	st.volumes[0].witness_changed_ms = NOW - 3000;
	ck_assert(!q_witness_vote(&st, NOW));
	/* No change seen yet. */
	st.volumes[0].witness_changed_ms = 0;
	ck_assert(!q_witness_vote(&st, NOW));

	/* Held by a node outside the membership: not this partition's. */
	st.volumes[0].witness_changed_ms = NOW - 100;
	st.nodes[1].member = st.nodes[1].daemon = false;
	ck_assert(!q_witness_vote(&st, NOW));
	/* Nor by a node not in the nodelist. */
	st.nodes[1].member = st.nodes[1].daemon = true;
	st.volumes[0].witness_holder = 9;
	ck_assert(!q_witness_vote(&st, NOW));
}
END_TEST

START_TEST(test_witness_want)
{
	static struct q_state st;
	make_witness(&st, 0);
	ck_assert(q_witness_want(&st));        /* free */
	st.volumes[0].witness_holder = 1;
	ck_assert(q_witness_want(&st));        /* this node's: renew it */
	st.volumes[0].witness_holder = 2;
	st.volumes[0].witness_changed_ms = NOW - 100;
	ck_assert(!q_witness_want(&st));       /* a live member's */
	st.nodes[1].member = st.nodes[1].daemon = false;
	ck_assert(q_witness_want(&st));        /* held by a lost node */
}
END_TEST

START_TEST(test_witness_off)
{
	static struct q_state st;
	static const uint32_t holders[] = { 0, 1, 2 };
	for (size_t i = 0; i < sizeof(holders) / sizeof(holders[0]); i++) {
		make_witness(&st, holders[i]);
		st.witness = false;
		st.nodes[1].member = false;
		st.volumes[0].witness_held_ms = NOW - 100;
		st.volumes[0].witness_changed_ms = NOW - 100;
		ck_assert(!q_witness_vote(&st, NOW));
		ck_assert(!q_witness_want(&st));
	}
	/* Control: the last state with the witness on wants it. */
	st.witness = true;
	ck_assert(q_witness_want(&st));
}
END_TEST

static Suite *fence_suite(void)
{
	Suite *s = suite_create("quorum-fence");
	TCase *tc;

	tc = tcase_create("margin");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_margin);
	suite_add_tcase(s, tc);

	tc = tcase_create("lost-node");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_fence_members_none);
	tcase_add_test(tc, test_fence_pending_after_settle);
	tcase_add_test(tc, test_fence_settle_restarts_on_quorum_change);
	tcase_add_test(tc, test_fence_by_lease);
	tcase_add_test(tc, test_fence_by_lease_counts_from_last_write);
	tcase_add_test(tc, test_fence_by_lease_ignores_stopped_writer);
	tcase_add_test(tc, test_fence_by_ack);
	tcase_add_test(tc, test_fence_by_ack_seq_alone);
	tcase_add_test(tc, test_fence_stale_fenced_flag);
	tcase_add_test(tc, test_fence_by_agent);
	tcase_add_test(tc, test_fence_not_quorate_never_starts);
	tcase_add_test(tc, test_fence_witness_needs_vote);
	tcase_add_test(tc, test_fence_two_node_no_lease);
	tcase_add_test(tc, test_fence_rejoin_clears);
	suite_add_tcase(s, tc);

	tc = tcase_create("mailbox");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_mailbox_taken_when_not_quorate);
	tcase_add_test(tc, test_mailbox_ignored_when_quorate);
	tcase_add_test(tc, test_mailbox_ignored_from_member);
	tcase_add_test(tc, test_mailbox_ignored_when_acked);
	tcase_add_test(tc, test_mailbox_ignored_from_self);
	tcase_add_test(tc, test_mailbox_two_node_lower_id_wins);
	suite_add_tcase(s, tc);

	tc = tcase_create("lease");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_lease_renew_rules);
	suite_add_tcase(s, tc);

	tc = tcase_create("witness");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_witness_vote_held_by_self);
	tcase_add_test(tc, test_witness_vote_held_by_member);
	tcase_add_test(tc, test_witness_want);
	tcase_add_test(tc, test_witness_off);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(fence_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
