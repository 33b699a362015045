/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A node's report of its own writes counts for this long. */
#define REPORT_FRESH_MS 5000u

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	size_t len;
	uint32_t min, cp;
	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0) {
		len = 2; min = 0x80; cp = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		len = 3; min = 0x800; cp = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		len = 4; min = 0x10000; cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	/* Overlong forms, surrogates and code points past U+10FFFF. */
	if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

void q_text_clean(const char *in, char *out, size_t len)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t n = strlen(in), o = 0;
	if (len == 0)
		return;
	for (size_t i = 0; i < n;) {
		size_t s = utf8_seq(p + i, n - i);
		if (s == 0) {
			if (o + 1 >= len)
				break;
			out[o++] = '?';
			i++;
			continue;
		}
		if (o + s >= len)
			break;
		memcpy(out + o, p + i, s);
		o += s;
		i += s;
	}
	out[o] = '\0';
}

/* ---- small builders that tolerate NULL (no memory): the result is then
 * NULL as a whole, checked once at the end. The texts are built on the
 * daemon's loop only, so one flag serves. */

static bool oom;

static void add(struct json_object *o, const char *key, struct json_object *v)
{
	if (!v || !o || json_object_object_add(o, key, v) < 0) {
		oom = true;
		json_object_put(v);
	}
}

static void push(struct json_object *a, struct json_object *v)
{
	if (!v || !a || json_object_array_add(a, v) < 0) {
		oom = true;
		json_object_put(v);
	}
}

static struct json_object *str(const char *s)
{
	char clean[1024];
	q_text_clean(s, clean, sizeof(clean));
	return json_object_new_string(clean);
}

static struct json_object *u64(uint64_t v)
{
	return json_object_new_int64(v > INT64_MAX ? INT64_MAX : (int64_t)v);
}

static struct json_object *boolean(bool b)
{
	return json_object_new_boolean(b);
}

/* JSON null is a NULL object in json-c: added as is, not as no memory. */
static void add_null(struct json_object *o, const char *key)
{
	if (!o || json_object_object_add(o, key, NULL) < 0)
		oom = true;
}

static void add_age(struct json_object *o, const char *key, uint64_t then_ms, uint64_t now_ms)
{
	if (then_ms == 0)
		add_null(o, key);
	else
		add(o, key, u64(now_ms >= then_ms ? now_ms - then_ms : 0));
}

/* Milliseconds with three decimals, printed as such (json-c would print
 * the shortest text that reads back as the same double: 1.6299999...). */
static void add_ms_from_us(struct json_object *o, const char *key, uint32_t us)
{
	char text[32];
	snprintf(text, sizeof(text), "%u.%03u", us / 1000u, us % 1000u);
	add(o, key, json_object_new_double_s((double)us / 1000.0, text));
}

static const struct q_report_vol *report_of(const struct q_node *n, const struct q_volume *v, uint64_t now_ms)
{
	if (!v->identified || !n->daemon || n->report_ms == 0 || now_ms - n->report_ms > REPORT_FRESH_MS)
		return NULL;
	for (uint32_t i = 0; i < n->nreport && i < Q_MAX_VOLUMES; i++)
		if (memcmp(n->report[i].uuid, v->uuid, 16) == 0)
			return &n->report[i];
	return NULL;
}

static struct json_object *node_volume_json(const struct q_state *st, const struct q_node *n, uint32_t k,
					    uint64_t now_ms)
{
	const struct q_volume *v = &st->volumes[k];
	const struct q_slot *s = q_volume_slot_of(v, n->id);
	uint32_t h = st->timing.heartbeat_ms;
	struct json_object *o = json_object_new_object();
	enum q_san state = q_node_san(st, n, k, now_ms);
	bool self = n->id == st->node_id;

	if (v->identified)
		add(o, "volume", str(v->uuid_str));
	else
		add_null(o, "volume");
	add(o, "label", str(v->label));
	add(o, "state", str(q_san_str(state)));
	/* SAN access as the disk shows it, apart from membership: "stopped"
	 * when the node's daemon cleared CSV_HB_RUNNING as it stopped. */
	const char *san;
	if (self)
		san = q_volume_writing(v, h, now_ms) && q_slot_heartbeating(s, h, now_ms) ? "ok" : "lost";
	else if (!q_volume_readable(v, h, now_ms))
		san = "unknown";
	else if (q_slot_heartbeating(s, h, now_ms))
		san = "ok";
	else
		san = s && !(s->flags & CSV_HB_RUNNING) ? "stopped" : "lost";
	add(o, "san", str(san));
	if (s) {
		add(o, "slot", u64((uint64_t)(s - v->slots)));
		add_age(o, "heartbeat_age_ms", s->changed_ms, now_ms);
		add(o, "seq", u64(s->seq));
		add(o, "incarnation", u64(s->incarnation));
		add(o, "interval_ms", u64(s->interval_ms));
		add(o, "running", boolean(s->flags & CSV_HB_RUNNING));
	} else {
		add_null(o, "slot");
		add_null(o, "heartbeat_age_ms");
	}
	if (self) {
		if (v->last_write_ok_ms)
			add_ms_from_us(o, "write_latency_ms", v->write_latency_us);
		else
			add_null(o, "write_latency_ms");
		add_age(o, "last_write_age_ms", v->last_write_ok_ms, now_ms);
	} else {
		const struct q_report_vol *r = report_of(n, v, now_ms);
		if (r)
			add_ms_from_us(o, "write_latency_ms", r->write_latency_us);
		else
			add_null(o, "write_latency_ms");
	}
	return o;
}

static struct json_object *node_json(const struct q_state *st, const struct q_node *n, uint64_t now_ms)
{
	struct json_object *o = json_object_new_object();
	add(o, "id", u64(n->id));
	add(o, "name", str(n->name));
	add(o, "local", boolean(n->id == st->node_id));
	struct json_object *a = json_object_new_array();
	for (uint32_t i = 0; i < n->naddrs && i < Q_MAX_ADDRS; i++)
		push(a, str(n->addrs[i]));
	add(o, "addresses", a);
	add(o, "member", boolean(st->connected && n->member));
	add(o, "daemon", boolean(st->connected && n->daemon));
	add(o, "votes", u64(n->votes));
	if (n->status_known)
		add(o, "reachable", boolean(n->reachable));
	else
		add_null(o, "reachable");
	a = json_object_new_array();
	for (uint32_t i = 0; n->status_known && i < n->nlinks && i < Q_MAX_LINKS; i++) {
		const struct q_link *l = &n->links[i];
		if (!l->enabled)
			continue;
		struct json_object *lo = json_object_new_object();
		add(lo, "link", u64(i));
		add(lo, "connected", boolean(l->connected));
		add(lo, "mtu", u64(l->mtu));
		add(lo, "src", str(l->src));
		add(lo, "dst", str(l->dst));
		push(a, lo);
	}
	add(o, "links", a);
	if (n->id != st->node_id) {
		struct json_object *f = json_object_new_object();
		add(f, "state", str(q_fence_str(n->fence)));
		add(f, "by", str(q_fenced_by_str(n->fenced_by)));
		add_age(f, "lost_age_ms", n->lost_ms, now_ms);
		add_age(f, "fenced_age_ms", n->fenced_ms, now_ms);
		add(f, "request_seq", u64(n->fence_seq));
		add(o, "fence", f);
	} else {
		add_null(o, "fence");
	}
	a = json_object_new_array();
	for (uint32_t k = 0; k < st->nvolumes && k < Q_MAX_VOLUMES; k++)
		push(a, node_volume_json(st, n, k, now_ms));
	add(o, "volumes", a);
	return o;
}

static struct json_object *volume_json(const struct q_state *st, const struct q_volume *v, uint64_t now_ms)
{
	uint32_t h = st->timing.heartbeat_ms;
	struct json_object *o = json_object_new_object();
	add(o, "spec", str(v->spec));
	if (v->identified) {
		add(o, "uuid", str(v->uuid_str));
		add(o, "label", str(v->label));
		add(o, "max_nodes", u64(v->max_nodes));
	} else {
		add_null(o, "uuid");
		add_null(o, "label");
		add_null(o, "max_nodes");
	}
	add(o, "slot", u64(v->slot));
	add(o, "open", boolean(v->open));
	add(o, "readable", boolean(q_volume_readable(v, h, now_ms)));
	add(o, "writing", boolean(q_volume_writing(v, h, now_ms)));
	add_age(o, "last_read_age_ms", v->last_read_ok_ms, now_ms);
	add_age(o, "last_write_age_ms", v->last_write_ok_ms, now_ms);
	if (v->last_write_ok_ms)
		add_ms_from_us(o, "write_latency_ms", v->write_latency_us);
	else
		add_null(o, "write_latency_ms");
	add(o, "seq", u64(v->seq));
	add(o, "incarnation", u64(v->incarnation));
	add(o, "writes_ok", u64(v->writes_ok));
	add(o, "writes_failed", u64(v->writes_failed));
	add(o, "reads_failed", u64(v->reads_failed));
	if (v->error[0]) {
		add(o, "error", str(v->error));
		add_age(o, "error_age_ms", v->error_ms, now_ms);
	} else {
		add_null(o, "error");
	}
	return o;
}

struct json_object *q_snapshot_json(const struct q_state *st, uint64_t now_ms, const struct q_client *client)
{
	struct json_object *root = json_object_new_object(), *o, *a;
	uint64_t left;
	enum q_lease lease = q_lease_state(st, now_ms, &left);

	oom = false;
	add(root, "version", u64(Q_SNAPSHOT_VERSION));
	add(root, "node_id", u64(st->node_id));
	add(root, "node_name", str(st->node_name));
	add(root, "corosync", str(st->connected ? "connected" : "disconnected"));
	if (!st->connected && st->disconnect_reason[0])
		add(root, "corosync_error", str(st->disconnect_reason));

	o = json_object_new_object();
	add(o, "quorate", boolean(st->connected && st->quorate));
	add(o, "expected_votes", u64(st->expected_votes));
	add(o, "total_votes", u64(st->total_votes));
	add(o, "quorum", u64(st->quorum));
	add(o, "node_votes", u64(st->node_votes));
	struct json_object *opts = json_object_new_object();
	add(opts, "two_node", boolean(st->options & Q_OPT_TWO_NODE));
	add(opts, "wait_for_all", boolean(st->options & Q_OPT_WAIT_FOR_ALL));
	add(opts, "last_man_standing", boolean(st->options & Q_OPT_LAST_MAN_STANDING));
	add(opts, "auto_tie_breaker", boolean(st->options & Q_OPT_AUTO_TIE_BREAKER));
	add(o, "options", opts);
	add(root, "quorum", o);

	a = json_object_new_array();
	struct json_object *d = json_object_new_array();
	for (uint32_t i = 0; i < st->nnodes && i < Q_MAX_NODES; i++) {
		if (st->connected && st->nodes[i].member)
			push(a, u64(st->nodes[i].id));
		if (st->connected && st->nodes[i].daemon)
			push(d, u64(st->nodes[i].id));
	}
	add(root, "members", a);
	add(root, "daemons", d);

	o = json_object_new_object();
	add(o, "state", str(q_lease_str(lease)));
	add(o, "valid", boolean(lease == Q_LEASE_VALID));
	add(o, "remaining_ms", u64(left));
	add(o, "lease_ms", u64(st->timing.lease_ms));
	add_age(o, "renewed_age_ms", st->lease_renewed_ms, now_ms);
	add(o, "self_fenced", boolean(st->self_fenced));
	if (st->fence_request_seq) {
		add(o, "fence_request_seq", u64(st->fence_request_seq));
		add(o, "fence_request_from", u64(st->fence_request_from));
	} else {
		add_null(o, "fence_request_seq");
		add_null(o, "fence_request_from");
	}
	add(o, "fence_acked_seq", u64(st->fence_acked_seq));
	add(root, "lease", o);

	o = json_object_new_object();
	add(o, "enabled", boolean(st->witness));
	if (st->witness && st->nvolumes && st->volumes[0].witness_valid) {
		const struct q_volume *wv = &st->volumes[0];
		add(o, "holder", u64(wv->witness_holder));
		add(o, "generation", u64(wv->witness_generation));
		add_age(o, "changed_age_ms", wv->witness_changed_ms, now_ms);
	} else {
		add_null(o, "holder");
		add_null(o, "generation");
		add_null(o, "changed_age_ms");
	}
	add(o, "cast_vote", boolean(st->witness && st->cast_vote));
	add(root, "witness", o);

	o = json_object_new_object();
	add(o, "heartbeat_ms", u64(st->timing.heartbeat_ms));
	add(o, "lease_ms", u64(st->timing.lease_ms));
	add(o, "token_ms", u64(st->timing.token_ms));
	add(root, "timing", o);

	a = json_object_new_array();
	for (uint32_t i = 0; i < st->nnodes && i < Q_MAX_NODES; i++)
		push(a, node_json(st, &st->nodes[i], now_ms));
	add(root, "nodes", a);

	a = json_object_new_array();
	for (uint32_t k = 0; k < st->nvolumes && k < Q_MAX_VOLUMES; k++)
		push(a, volume_json(st, &st->volumes[k], now_ms));
	add(root, "volumes", a);

	if (client) {
		o = json_object_new_object();
		add(o, "uid", u64(client->uid));
		add(o, "gid", u64(client->gid));
		add(o, "may_change", boolean(client->may_change));
		add(root, "client", o);
	}
	if (oom) {
		json_object_put(root);
		return NULL;
	}
	return root;
}

struct json_object *q_event_json(const struct q_state *st, const struct q_event *ev, uint64_t now_ms,
				 uint64_t wall_ns)
{
	struct json_object *o = json_object_new_object();
	oom = false;
	add(o, "event", str(q_event_kind_str(ev->kind)));
	add(o, "message", str(ev->message));
	add(o, "wall_ns", u64(wall_ns));
	add(o, "node_id", u64(st->node_id));
	switch (ev->kind) {
	case Q_EV_COROSYNC:
		add(o, "connected", boolean(ev->on));
		break;
	case Q_EV_QUORUM:
		add(o, "quorate", boolean(ev->on));
		break;
	case Q_EV_MEMBERSHIP:
		add(o, "node", u64(ev->node_id));
		add(o, "member", boolean(ev->on));
		break;
	case Q_EV_DAEMON:
		add(o, "node", u64(ev->node_id));
		add(o, "daemon", boolean(ev->on));
		break;
	case Q_EV_SAN: {
		const struct q_volume *v = &st->volumes[ev->volume];
		add(o, "node", u64(ev->node_id));
		if (v->identified)
			add(o, "volume", str(v->uuid_str));
		else
			add_null(o, "volume");
		add(o, "label", str(v->label));
		add(o, "from", str(q_san_str((enum q_san)ev->from)));
		add(o, "to", str(q_san_str((enum q_san)ev->to)));
		break;
	}
	case Q_EV_LEASE: {
		uint64_t left;
		q_lease_state(st, now_ms, &left);
		add(o, "from", str(q_lease_str((enum q_lease)ev->from)));
		add(o, "to", str(q_lease_str((enum q_lease)ev->to)));
		add(o, "remaining_ms", u64(left));
		break;
	}
	case Q_EV_FENCE: {
		const struct q_node *n = q_state_node_c(st, ev->node_id);
		add(o, "node", u64(ev->node_id));
		add(o, "from", str(q_fence_str((enum q_fence)ev->from)));
		add(o, "to", str(q_fence_str((enum q_fence)ev->to)));
		add(o, "by", str(q_fenced_by_str(n ? n->fenced_by : Q_FENCED_BY_NONE)));
		break;
	}
	case Q_EV_WITNESS:
		add(o, "held", boolean(ev->on));
		break;
	}
	if (oom) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

char *q_json_text(struct json_object *obj)
{
	const char *t = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	return t ? strdup(t) : NULL;
}
