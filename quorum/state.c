/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "state.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int q_timing_check(const struct q_timing *t, char *err, size_t errlen)
{
	if (t->heartbeat_ms == 0 || t->lease_ms == 0 || t->token_ms == 0) {
		snprintf(err, errlen, "heartbeat %u ms, lease %u ms, token %u ms: none of them may be 0",
			 t->heartbeat_ms, t->lease_ms, t->token_ms);
		return -EINVAL;
	}
	if ((uint64_t)t->heartbeat_ms * 3 > t->lease_ms) {
		snprintf(err, errlen,
			 "heartbeat %u ms is too long for lease %u ms: the heartbeat must be at most a third "
			 "of the lease (3 x %u = %u ms > %u ms), so that several heartbeats renew each lease",
			 t->heartbeat_ms, t->lease_ms, t->heartbeat_ms, 3 * t->heartbeat_ms, t->lease_ms);
		return -EINVAL;
	}
	if (t->lease_ms <= t->token_ms) {
		snprintf(err, errlen,
			 "lease %u ms is not longer than the corosync token timeout %u ms: a node would hold "
			 "its lease no longer than membership takes to notice that it is lost",
			 t->lease_ms, t->token_ms);
		return -EINVAL;
	}
	return 0;
}

const char *q_san_str(enum q_san s)
{
	switch (s) {
	case Q_SAN_UP: return "up";
	case Q_SAN_LOST: return "san-lost";
	case Q_SAN_PARTITIONED: return "partitioned";
	case Q_SAN_DEAD: return "dead";
	case Q_SAN_NO_DAEMON: return "no-daemon";
	case Q_SAN_UNKNOWN: return "unknown";
	}
	return "?";
}

const char *q_lease_str(enum q_lease l)
{
	switch (l) {
	case Q_LEASE_VALID: return "valid";
	case Q_LEASE_EXPIRING: return "expiring";
	case Q_LEASE_EXPIRED: return "expired";
	}
	return "?";
}

const char *q_event_kind_str(enum q_event_kind k)
{
	switch (k) {
	case Q_EV_COROSYNC: return "corosync";
	case Q_EV_QUORUM: return "quorum";
	case Q_EV_MEMBERSHIP: return "membership";
	case Q_EV_DAEMON: return "daemon";
	case Q_EV_SAN: return "san";
	case Q_EV_LEASE: return "lease";
	case Q_EV_FENCE: return "fence";
	case Q_EV_WITNESS: return "witness";
	}
	return "?";
}

enum q_san q_classify(bool member, bool daemon, bool heartbeating, bool readable)
{
	if (!readable)
		return Q_SAN_UNKNOWN;
	if (member)
		return heartbeating ? Q_SAN_UP : daemon ? Q_SAN_LOST : Q_SAN_NO_DAEMON;
	return heartbeating ? Q_SAN_PARTITIONED : Q_SAN_DEAD;
}

static bool within(uint64_t then_ms, uint64_t window_ms, uint64_t now_ms)
{
	return then_ms != 0 && now_ms >= then_ms && now_ms - then_ms <= window_ms;
}

bool q_slot_heartbeating(const struct q_slot *s, uint32_t default_interval_ms, uint64_t now_ms)
{
	if (!s || !s->valid || !(s->flags & CSV_HB_RUNNING))
		return false;
	uint32_t interval = s->interval_ms ? s->interval_ms : default_interval_ms;
	return within(s->changed_ms, (uint64_t)Q_HB_MISSES * interval, now_ms);
}

bool q_volume_readable(const struct q_volume *v, uint32_t heartbeat_ms, uint64_t now_ms)
{
	return v->identified && within(v->last_read_ok_ms, (uint64_t)Q_HB_MISSES * heartbeat_ms, now_ms);
}

bool q_volume_writing(const struct q_volume *v, uint32_t heartbeat_ms, uint64_t now_ms)
{
	return v->identified && within(v->last_write_ok_ms, (uint64_t)Q_HB_MISSES * heartbeat_ms, now_ms);
}

const struct q_slot *q_volume_slot_of(const struct q_volume *v, uint32_t node_id)
{
	if (node_id == 0)
		return NULL;
	for (uint32_t i = 0; i < v->nslots && i < Q_MAX_NODES; i++)
		if (v->slots[i].valid && v->slots[i].node_id == node_id)
			return &v->slots[i];
	return NULL;
}

const struct q_node *q_state_node_c(const struct q_state *st, uint32_t node_id)
{
	for (uint32_t i = 0; i < st->nnodes; i++)
		if (st->nodes[i].id == node_id)
			return &st->nodes[i];
	return NULL;
}

struct q_node *q_state_node(struct q_state *st, uint32_t node_id)
{
	return (struct q_node *)q_state_node_c(st, node_id);
}

enum q_san q_node_san(const struct q_state *st, const struct q_node *n, uint32_t k, uint64_t now_ms)
{
	const struct q_volume *v = &st->volumes[k];
	uint32_t h = st->timing.heartbeat_ms;
	bool hb;
	if (n->id == st->node_id)
		/* This node knows its own writes first hand. */
		hb = q_volume_writing(v, h, now_ms) &&
		     q_slot_heartbeating(q_volume_slot_of(v, n->id), h, now_ms);
	else
		hb = q_slot_heartbeating(q_volume_slot_of(v, n->id), h, now_ms);
	/* Its own state this node can tell without reading the others. */
	bool readable = n->id == st->node_id || q_volume_readable(v, h, now_ms);
	bool member = st->connected && n->member;
	return q_classify(member, st->connected && n->daemon, hb, readable);
}

bool q_lease_renew(struct q_state *st, uint64_t now_ms)
{
	st->lease_renewing = false;
	if (!st->connected || !st->quorate || st->fence_request_seq)
		return false;
	if (st->self_fenced && st->fenced_on_request && st->ring_seq == st->self_fenced_ring)
		return false;
	st->self_fenced = false;
	st->fenced_on_request = false;
	st->lease_renewed_ms = now_ms;
	st->lease_renewing = true;
	return true;
}

enum q_lease q_lease_state(const struct q_state *st, uint64_t now_ms, uint64_t *ret_remaining_ms)
{
	uint64_t expiry = st->lease_renewed_ms ? st->lease_renewed_ms + st->timing.lease_ms : 0;
	uint64_t left = expiry > now_ms ? expiry - now_ms : 0;
	if (ret_remaining_ms)
		*ret_remaining_ms = left;
	if (left == 0)
		return Q_LEASE_EXPIRED;
	return st->lease_renewing ? Q_LEASE_VALID : Q_LEASE_EXPIRING;
}

void q_view_compute(const struct q_state *st, uint64_t now_ms, struct q_view *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->connected = st->connected;
	ret->quorate = st->connected && st->quorate;
	ret->lease = q_lease_state(st, now_ms, NULL);
	ret->cast_vote = st->witness && st->cast_vote;
	ret->nnodes = st->nnodes;
	ret->nvolumes = st->nvolumes;
	for (uint32_t i = 0; i < st->nnodes && i < Q_MAX_NODES; i++) {
		const struct q_node *n = &st->nodes[i];
		ret->nodes[i].id = n->id;
		ret->nodes[i].member = st->connected && n->member;
		ret->nodes[i].daemon = st->connected && n->daemon;
		ret->nodes[i].fence = n->fence;
		if (ret->nodes[i].member)
			ret->nmembers++;
		for (uint32_t k = 0; k < st->nvolumes && k < Q_MAX_VOLUMES; k++)
			ret->nodes[i].san[k] = q_node_san(st, n, k, now_ms);
	}
}

const char *q_volume_name(const struct q_volume *v, char *buf, size_t len)
{
	if (!v->identified)
		snprintf(buf, len, "%s", v->spec);
	else if (v->label[0])
		snprintf(buf, len, "%s (%s)", v->label, v->uuid_str);
	else
		snprintf(buf, len, "%s", v->uuid_str);
	return buf;
}

static const char *node_name(const struct q_state *st, uint32_t id, char *buf, size_t len)
{
	const struct q_node *n = q_state_node_c(st, id);
	if (n && n->name[0])
		snprintf(buf, len, "node %u (%s)%s", id, n->name, id == st->node_id ? " (this node)" : "");
	else
		snprintf(buf, len, "node %u%s", id, id == st->node_id ? " (this node)" : "");
	return buf;
}

static int old_index(const struct q_view *old, uint32_t id)
{
	for (uint32_t i = 0; i < old->nnodes && i < Q_MAX_NODES; i++)
		if (old->nodes[i].id == id)
			return (int)i;
	return -1;
}

unsigned q_view_diff(const struct q_state *st, const struct q_view *old, const struct q_view *cur,
		     void (*fn)(const struct q_event *ev, void *ctx), void *ctx)
{
	struct q_event ev;
	char nb[128], vb[600];
	unsigned n = 0;

#define EMIT(...)                                                          \
	do {                                                               \
		snprintf(ev.message, sizeof(ev.message), __VA_ARGS__);     \
		fn(&ev, ctx);                                              \
		n++;                                                       \
	} while (0)

	if (old->connected != cur->connected) {
		ev = (struct q_event){ .kind = Q_EV_COROSYNC, .on = cur->connected };
		if (cur->connected)
			EMIT("connected to corosync");
		else
			EMIT("lost the connection to corosync%s%s",
			     st->disconnect_reason[0] ? ": " : "", st->disconnect_reason);
	}
	if (old->quorate != cur->quorate) {
		ev = (struct q_event){ .kind = Q_EV_QUORUM, .on = cur->quorate };
		if (cur->quorate)
			EMIT("this node is quorate, with %u member(s)", cur->nmembers);
		else
			EMIT("this node lost quorum (%u member(s) seen)", cur->nmembers);
	}
	for (uint32_t i = 0; i < cur->nnodes && i < Q_MAX_NODES; i++) {
		int o = old_index(old, cur->nodes[i].id);
		uint32_t id = cur->nodes[i].id;
		if (o < 0)
			continue;  /* new in the nodelist: nothing to compare */
		node_name(st, id, nb, sizeof(nb));
		if (old->nodes[o].member != cur->nodes[i].member) {
			ev = (struct q_event){ .kind = Q_EV_MEMBERSHIP, .node_id = id, .on = cur->nodes[i].member };
			EMIT("%s %s the membership", nb, cur->nodes[i].member ? "joined" : "left");
		}
		if (old->nodes[o].daemon != cur->nodes[i].daemon) {
			ev = (struct q_event){ .kind = Q_EV_DAEMON, .node_id = id, .on = cur->nodes[i].daemon };
			EMIT("csv-quorumd of %s %s the group", nb, cur->nodes[i].daemon ? "joined" : "left");
		}
		for (uint32_t k = 0; k < cur->nvolumes && k < old->nvolumes && k < Q_MAX_VOLUMES; k++) {
			if (old->nodes[o].san[k] == cur->nodes[i].san[k])
				continue;
			ev = (struct q_event){ .kind = Q_EV_SAN, .node_id = id, .volume = k,
					       .from = (int)old->nodes[o].san[k], .to = (int)cur->nodes[i].san[k] };
			EMIT("%s on volume %s: %s -> %s", nb, q_volume_name(&st->volumes[k], vb, sizeof(vb)),
			     q_san_str(old->nodes[o].san[k]), q_san_str(cur->nodes[i].san[k]));
		}
		if (old->nodes[o].fence != cur->nodes[i].fence) {
			const struct q_node *nd = q_state_node_c(st, id);
			ev = (struct q_event){ .kind = Q_EV_FENCE, .node_id = id,
					       .from = (int)old->nodes[o].fence, .to = (int)cur->nodes[i].fence };
			if (cur->nodes[i].fence == Q_FENCE_PENDING)
				EMIT("%s is lost: fencing it; its roles wait until it is fenced", nb);
			else if (cur->nodes[i].fence == Q_FENCE_DONE)
				EMIT("%s is fenced (%s): its roles may be taken over", nb,
				     nd ? q_fenced_by_str(nd->fenced_by) : "?");
			else
				EMIT("%s is a member again: its fence (%s) is over", nb, q_fence_str(old->nodes[o].fence));
		}
	}
	if (old->cast_vote != cur->cast_vote) {
		ev = (struct q_event){ .kind = Q_EV_WITNESS, .on = cur->cast_vote };
		EMIT("the disk witness is %s by this node's partition: its vote %s", cur->cast_vote ? "held" : "not held",
		     cur->cast_vote ? "counts" : "does not count");
	}
	if (old->lease != cur->lease) {
		ev = (struct q_event){ .kind = Q_EV_LEASE, .from = (int)old->lease, .to = (int)cur->lease };
		EMIT("the lease of this node: %s -> %s", q_lease_str(old->lease), q_lease_str(cur->lease));
	}
#undef EMIT
	return n;
}
