/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The fence rules on csv-quorumd's state: when a lost node counts as
 * fenced, when a fence request in this node's own mailbox is to be obeyed,
 * and who holds the disk witness. Pure logic, like state.c. */
#include <stdio.h>
#include <string.h>

#include "state.h"
#include "util.h"

uint64_t q_fence_margin_ms(uint32_t lease_ms)
{
	uint64_t m = lease_ms / 6u;
	if (m < 300u)
		m = 300u;
	if (m > lease_ms / 2u)
		m = lease_ms / 2u;
	return m;
}

const char *q_fence_str(enum q_fence f)
{
	switch (f) {
	case Q_FENCE_NONE: return "none";
	case Q_FENCE_PENDING: return "pending";
	case Q_FENCE_DONE: return "fenced";
	}
	return "?";
}

const char *q_fenced_by_str(enum q_fenced_by b)
{
	switch (b) {
	case Q_FENCED_BY_NONE: return "none";
	case Q_FENCED_BY_LEASE: return "lease-expired";
	case Q_FENCED_BY_ACK: return "acknowledged";
	case Q_FENCED_BY_AGENT: return "agent";
	}
	return "?";
}

/* Whether both sides of a split may stay quorate: two_node without the
 * witness. */
static bool split_stays_quorate(const struct q_state *st)
{
	return (st->options & Q_OPT_TWO_NODE) && !st->witness;
}

bool q_mailbox_check(struct q_state *st)
{
	bool fresh = false;
	for (uint32_t k = 0; k < st->nvolumes; k++) {
		const struct q_volume *v = &st->volumes[k];
		if (!v->identified || v->mailbox_request != CSV_MAILBOX_FENCE || v->mailbox_from == st->node_id ||
		    v->mailbox_seq <= st->fence_acked_seq || v->mailbox_seq <= st->fence_request_seq ||
		    v->mailbox_seq <= st->fence_ignored_seq)
			continue;
		const struct q_node *from = q_state_node_c(st, v->mailbox_from);
		/* A requester that shares the membership with this node sees
		 * it: the request is from before (this node restarted). */
		if (from && st->connected && from->member) {
			st->fence_ignored_seq = v->mailbox_seq;
			continue;
		}
		/* Only one side of a split is quorate, and it fences the
		 * other: a quorate node ignores a request from outside its
		 * membership (sent while the requester still thought it was
		 * quorate). Where both sides stay quorate, the lower id wins. */
		if (st->connected && st->quorate &&
		    (!split_stays_quorate(st) || st->node_id < v->mailbox_from)) {
			st->fence_ignored_seq = v->mailbox_seq;
			continue;
		}
		st->fence_request_seq = v->mailbox_seq;
		st->fence_request_from = v->mailbox_from;
		fresh = true;
	}
	return fresh;
}

/* The later of since_ms and the last change of node id's heartbeat while
 * it ran unfenced, on every volume this node reads. */
static uint64_t last_active(const struct q_state *st, uint32_t id, uint64_t since_ms, uint64_t now_ms)
{
	uint64_t last = since_ms;
	for (uint32_t k = 0; k < st->nvolumes; k++) {
		const struct q_volume *v = &st->volumes[k];
		const struct q_slot *s = q_volume_slot_of(v, id);
		if (!s || !q_volume_readable(v, st->timing.heartbeat_ms, now_ms))
			continue;
		if ((s->flags & CSV_HB_RUNNING) && !(s->flags & CSV_HB_FENCED) && s->changed_ms > last)
			last = s->changed_ms;
	}
	return last;
}

/* Whether node n's slot on some volume says it has stopped its I/O since
 * it was lost, or answers the request written to its mailbox. */
static bool acknowledged(const struct q_state *st, const struct q_node *n)
{
	for (uint32_t k = 0; k < st->nvolumes; k++) {
		const struct q_slot *s = q_volume_slot_of(&st->volumes[k], n->id);
		if (!s || !(s->flags & CSV_HB_FENCED))
			continue;
		if ((n->fence_seq && s->fence_ack_seq >= n->fence_seq) || s->changed_ms >= n->lost_ms)
			return true;
	}
	return false;
}

static uint64_t next_fence_seq(const struct q_state *st, uint32_t id)
{
	uint64_t seq = st->ring_seq ? st->ring_seq : 1;
	for (uint32_t k = 0; k < st->nvolumes; k++) {
		const struct q_slot *s = q_volume_slot_of(&st->volumes[k], id);
		if (s && s->fence_ack_seq >= seq)
			seq = s->fence_ack_seq + 1;
	}
	return seq;
}

static void fenced(struct q_node *n, enum q_fenced_by by, uint64_t now_ms)
{
	n->fence = Q_FENCE_DONE;
	n->fenced_by = by;
	n->fenced_ms = now_ms;
}

void q_fence_update(struct q_state *st, uint64_t now_ms)
{
	/* Quorum as seen right after a membership change may be stale: judge
	 * only once it has held for Q_FENCE_SETTLE_MS. */
	bool quorate = st->connected && st->quorate && (!st->witness || st->cast_vote);
	if (quorate != st->settle_quorate || st->ring_seq != st->settle_ring) {
		st->settle_quorate = quorate;
		st->settle_ring = st->ring_seq;
		st->settle_ms = now_ms;
	}
	bool judge = quorate && now_ms - st->settle_ms >= Q_FENCE_SETTLE_MS;
	uint64_t wait = (uint64_t)st->timing.lease_ms + q_fence_margin_ms(st->timing.lease_ms);
	for (uint32_t i = 0; i < st->nnodes; i++) {
		struct q_node *n = &st->nodes[i];
		if (n->id == st->node_id)
			continue;
		if (st->connected && n->member) {
			n->seen_member = true;
			n->left_ms = 0;
			n->fence = Q_FENCE_NONE;
			n->fenced_by = Q_FENCED_BY_NONE;
			n->lost_ms = n->fenced_ms = n->fence_seq = 0;
			n->agent_done = false;
			continue;
		}
		if (n->seen_member && !n->left_ms)
			n->left_ms = now_ms;
		if (n->fence == Q_FENCE_DONE)
			continue;
		if (n->fence == Q_FENCE_NONE) {
			if (!judge)
				continue;
			n->fence = Q_FENCE_PENDING;
			/* Its loss counts from when it left, if this node saw it,
			 * but not from before this side could judge it. */
			n->lost_ms = MAX(n->left_ms, st->settle_ms);
			n->fence_seq = next_fence_seq(st, n->id);
		}
		/* A side that lost quorum concludes nothing. */
		if (!quorate)
			continue;
		if (n->agent_done)
			fenced(n, Q_FENCED_BY_AGENT, now_ms);
		else if (acknowledged(st, n))
			fenced(n, Q_FENCED_BY_ACK, now_ms);
		else if (!split_stays_quorate(st) && now_ms >= last_active(st, n->id, n->lost_ms, now_ms) + wait)
			fenced(n, Q_FENCED_BY_LEASE, now_ms);
	}
}

bool q_witness_vote(const struct q_state *st, uint64_t now_ms)
{
	if (!st->witness || st->nvolumes == 0)
		return false;
	const struct q_volume *v = &st->volumes[0];
	uint64_t lease = st->timing.lease_ms;
	if (!v->witness_valid)
		return false;
	if (v->witness_holder == st->node_id)
		return v->witness_held_ms && now_ms < v->witness_held_ms + lease - q_fence_margin_ms(st->timing.lease_ms);
	const struct q_node *h = q_state_node_c(st, v->witness_holder);
	return h && st->connected && h->member && v->witness_changed_ms && now_ms < v->witness_changed_ms + lease;
}

bool q_witness_want(const struct q_state *st)
{
	if (!st->witness || st->nvolumes == 0 || !st->connected)
		return false;
	const struct q_volume *v = &st->volumes[0];
	if (!v->witness_valid || v->witness_holder == 0 || v->witness_holder == st->node_id)
		return true;
	const struct q_node *h = q_state_node_c(st, v->witness_holder);
	return !h || !h->member;
}
