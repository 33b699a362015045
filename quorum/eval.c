/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The evaluation of csv-quorumd's state, from the loop: the heartbeat
 * threads' findings are copied in, the lease renewed or not, the view
 * computed, and each change logged and pushed to the IPC subscribers. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "snapshot.h"
#include "quorumd.h"
#include "util.h"

uint64_t q_now_ms(void)
{
	return monotonic_ns() / 1000000u;
}

static int event_priority(const struct q_event *ev)
{
	switch (ev->kind) {
	case Q_EV_COROSYNC:
		return ev->on ? LOG_NOTICE : LOG_CRIT;
	case Q_EV_QUORUM:
		return ev->on ? LOG_NOTICE : LOG_CRIT;
	case Q_EV_MEMBERSHIP:
	case Q_EV_DAEMON:
		return ev->on ? LOG_NOTICE : LOG_WARNING;
	case Q_EV_SAN:
		return ev->to == Q_SAN_UP ? LOG_NOTICE : LOG_WARNING;
	case Q_EV_LEASE:
		return ev->to == Q_LEASE_VALID ? LOG_NOTICE : LOG_CRIT;
	case Q_EV_FENCE:
		return ev->to == Q_FENCE_NONE ? LOG_NOTICE : LOG_CRIT;
	case Q_EV_WITNESS:
		return ev->on ? LOG_NOTICE : LOG_WARNING;
	}
	return LOG_NOTICE;
}

static void on_event(const struct q_event *ev, void *ctx)
{
	struct quorumd *d = ctx;
	uint64_t now = q_now_ms();
	qb_log(event_priority(ev), "%s", ev->message);

	if (ev->kind == Q_EV_LEASE && ev->to == Q_LEASE_EXPIRED)
		qb_log(LOG_CRIT, "lease self-fence: the lease of this node has expired: the other nodes may now "
		       "take over what this node held; it must not issue any I/O on the shared volumes");

	struct json_object *o = q_event_json(&d->st, ev, now, realtime_ns());
	char *text = o ? q_json_text(o) : NULL;
	if (text)
		ipc_publish(d, text);
	else
		qb_log(LOG_ERR, "no memory for the event text: subscribers miss \"%s\"", ev->message);
	free(text);
	json_object_put(o);
}

static void log_volume_changes(struct quorumd *d, uint32_t k, uint64_t now)
{
	const struct q_volume *v = &d->st.volumes[k];
	char name[600];
	/* A failing path fails at every round: a new text is logged at once,
	 * the same one again only once a minute. */
	if (v->error_ms && v->error_ms != d->logged_error_ms[k]) {
		if (strcmp(v->error, d->logged_error[k]) != 0 || now - d->logged_error_at[k] >= Q_ERROR_RELOG_MS) {
			qb_log(LOG_WARNING, "volume %s: %s", q_volume_name(v, name, sizeof(name)), v->error);
			memcpy(d->logged_error[k], v->error, sizeof(d->logged_error[k]));  /* both Q_ERROR_MAX */
			d->logged_error_at[k] = now;
		}
		d->logged_error_ms[k] = v->error_ms;
	}
	bool readable = q_volume_readable(v, d->st.timing.heartbeat_ms, now);
	if (readable != d->logged_readable[k]) {
		if (readable)
			qb_log(LOG_NOTICE, "volume %s: this node reads and writes its heartbeats (slot %u of %u)",
			       q_volume_name(v, name, sizeof(name)), v->slot, v->max_nodes);
		else
			qb_log(LOG_WARNING, "volume %s: this node cannot read the heartbeats: the others' SAN "
			       "state on it is unknown", q_volume_name(v, name, sizeof(name)));
		d->logged_readable[k] = readable;
	}
}

/* The whole state in a few lines, once the start has settled. */
static void log_initial(struct quorumd *d, const struct q_view *v)
{
	char line[1024], name[600];
	size_t o = 0;
	line[0] = '\0';
	for (uint32_t i = 0; i < v->nnodes && o < sizeof(line) - 16; i++)
		if (v->nodes[i].member)
			o += (size_t)snprintf(line + o, sizeof(line) - o, "%s%u", o ? " " : "", v->nodes[i].id);
	qb_log(LOG_NOTICE, "%s, %u member(s): %s; lease %s", v->connected ? (v->quorate ? "quorate" : "NOT quorate")
	       : "corosync not connected", v->nmembers, line[0] ? line : "none", q_lease_str(v->lease));
	for (uint32_t k = 0; k < v->nvolumes; k++) {
		o = 0;
		line[0] = '\0';
		for (uint32_t i = 0; i < v->nnodes && o < sizeof(line) - 80; i++)
			o += (size_t)snprintf(line + o, sizeof(line) - o, "%s%u %s", o ? ", " : "", v->nodes[i].id,
					      q_san_str(v->nodes[i].san[k]));
		qb_log(LOG_NOTICE, "volume %s: %s", q_volume_name(&d->st.volumes[k], name, sizeof(name)), line);
	}
}

/* This node's fence acknowledgements and requests as its volumes show
 * them, and the witness vote, before the lease is judged. */
static void fence_inputs(struct quorumd *d, uint64_t now)
{
	struct q_state *st = &d->st;
	for (uint32_t k = 0; k < st->nvolumes; k++) {
		const struct q_slot *own = q_volume_slot_of(&st->volumes[k], st->node_id);
		if (own && own->fence_ack_seq > st->fence_acked_seq)
			st->fence_acked_seq = own->fence_ack_seq;
	}
	if (q_mailbox_check(st))
		qb_log(LOG_CRIT, "node %u asks this node to fence itself (request %" PRIu64 ")", st->fence_request_from,
		       st->fence_request_seq);
	if (st->witness) {
		st->cast_vote = q_witness_vote(st, now);
		cluster_qdevice_poll(d, st->cast_vote);
	}
}

/* Hands each heartbeat thread what it must write: the fence flag and
 * acknowledgement, the fence requests for pending nodes, the witness. */
static void set_controls(struct quorumd *d)
{
	const struct q_state *st = &d->st;
	for (uint32_t k = 0; k < st->nvolumes; k++) {
		const struct q_volume *v = &st->volumes[k];
		struct hb_control c = {
			.fenced = st->self_fenced,
			.fence_ack_seq = st->fence_acked_seq,
			.witness = st->witness && k == 0,
			.witness_want = k == 0 && q_witness_want(st),
			.witness_lease_ms = st->timing.lease_ms,
		};
		for (uint32_t i = 0; i < st->nnodes && c.nrequests < Q_MAX_NODES; i++) {
			const struct q_node *n = &st->nodes[i];
			if (n->fence != Q_FENCE_PENDING)
				continue;
			/* Its slot: where its heartbeat is, else its nodelist position. */
			const struct q_slot *hb = q_volume_slot_of(v, n->id);
			c.requests[c.nrequests].slot = hb ? (uint32_t)(hb - v->slots) : n->position;
			c.requests[c.nrequests].seq = n->fence_seq;
			c.nrequests++;
		}
		hb_set_control(d->hb[k], &c);
	}
}

void quorumd_evaluate(struct quorumd *d)
{
	uint64_t now = q_now_ms();
	struct q_view v;

	cluster_refresh(d, now);
	for (uint32_t k = 0; k < d->st.nvolumes; k++) {
		hb_read(d->hb[k], &d->st.volumes[k]);
		log_volume_changes(d, k, now);
	}
	fence_inputs(d, now);
	q_lease_renew(&d->st, now);
	q_fence_update(&d->st, now);
	lf_update(d, now);
	agent_update(d, now);
	set_controls(d);
	q_view_compute(&d->st, now, &v);
	if (d->evaluated) {
		q_view_diff(&d->st, &d->view, &v, on_event, d);
	} else if (now - d->started_ms >= Q_SETTLE_MS + 3 * d->st.timing.heartbeat_ms) {
		log_initial(d, &v);
		d->evaluated = true;
	}
	d->view = v;
}

static void evaluate_now(void *data)
{
	struct quorumd *d = data;
	d->now_armed = false;
	quorumd_evaluate(d);
}

void quorumd_evaluate_soon(struct quorumd *d)
{
	if (d->now_armed)
		return;
	if (qb_loop_timer_add(d->loop, QB_LOOP_HIGH, 0, d, evaluate_now, &d->now_timer) == 0)
		d->now_armed = true;
}
