/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The self-fence of this node. The local processes that act on the shared
 * volumes (csvfs clients, coordinators, VMs) hold the lease over IPC:
 * they are told how long they may issue I/O, and told to stop when the
 * lease is about to expire unrenewed (quorum lost, corosync gone) or at
 * once when another node asked this one to fence itself. Whatever has not said it stopped by a
 * margin before the lease expires (or a short grace after a fence
 * request) is killed. Once nothing acts on the volumes any more, this
 * node is fenced: its heartbeat says so (CSV_HB_FENCED, with the request
 * acknowledged), and it stays fenced until it is quorate in a new ring. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "quorumd.h"
#include "util.h"

/* After a fence request, holders get this long to stop before the kill. */
#define LF_REQUEST_GRACE_MS 1000u
/* A killed holder still alive after this is logged: it may be held in an
 * I/O that no signal ends, so this node does not call itself fenced. */
#define LF_KILL_WAIT_MS 1000u

char *lf_lease_text(struct quorumd *d, uint64_t now_ms)
{
	uint64_t left;
	enum q_lease l = q_lease_state(&d->st, now_ms, &left);
	uint64_t margin = q_fence_margin_ms(d->st.timing.lease_ms);
	/* Unrenewed (expiring), it still holds until a margin before its end. */
	bool valid = l != Q_LEASE_EXPIRED && !d->stopping && left > margin;
	struct json_object *o = json_object_new_object();
	if (!o)
		return NULL;
	json_object_object_add(o, "valid", json_object_new_boolean(valid));
	json_object_object_add(o, "valid_ms", json_object_new_int64(valid && left > margin ? (int64_t)(left - margin) : 0));
	json_object_object_add(o, "fence", json_object_new_boolean(d->stopping));
	json_object_object_add(o, "reason", json_object_new_string(d->stopping ? d->stop_reason : ""));
	const char *t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	char *text = t ? strdup(t) : NULL;
	json_object_put(o);
	return text;
}

/* Why this node must stop now, or NULL when it need not. */
static const char *must_stop(struct quorumd *d, uint64_t now_ms, char *buf, size_t len)
{
	const struct q_state *st = &d->st;
	if (st->fence_request_seq) {
		snprintf(buf, len, "node %u asked this node to fence itself (request %" PRIu64 ")",
			 st->fence_request_from, st->fence_request_seq);
		return buf;
	}
	uint64_t left;
	if (q_lease_state(st, now_ms, &left) == Q_LEASE_VALID)
		return NULL;
	/* A lease that may still come back (quorum lost for a moment, in a
	 * membership change) is held on to until twice the margin before it
	 * expires: the holders' own deadline is one margin before it. */
	if (left > 2 * q_fence_margin_ms(st->timing.lease_ms))
		return NULL;
	if (!st->connected)
		snprintf(buf, len, "corosync is not reachable");
	else if (!st->quorate)
		snprintf(buf, len, "this node is not quorate");
	else if (st->self_fenced)
		snprintf(buf, len, "this node was fenced and has not yet rejoined in a new membership");
	else
		snprintf(buf, len, "the lease is not renewed");
	return buf;
}

static void start_stopping(struct quorumd *d, const char *why, uint64_t now_ms)
{
	uint64_t left;
	q_lease_state(&d->st, now_ms, &left);
	uint64_t margin = q_fence_margin_ms(d->st.timing.lease_ms);
	uint64_t grace = left > margin / 2 ? left - margin / 2 : 0;
	if (d->st.fence_request_seq && grace > LF_REQUEST_GRACE_MS)
		grace = LF_REQUEST_GRACE_MS;
	d->stopping = true;
	d->kill_at_ms = now_ms + grace;
	snprintf(d->stop_reason, sizeof(d->stop_reason), "%s", why);
	unsigned n = 0;
	pid_t pid;
	struct ipc_holder *h;
	for (struct ipc_client *cl = ipc_next_holder(d, NULL, &pid, &h); cl; cl = ipc_next_holder(d, cl, &pid, &h))
		n++;
	qb_log(LOG_CRIT, "self-fence: %s: telling %u lease holder(s) to stop all I/O; any still running in %" PRIu64
	       " ms is killed", why, n, grace);
}

void lf_update(struct quorumd *d, uint64_t now_ms)
{
	struct q_state *st = &d->st;
	char why[300];
	pid_t pid;
	struct ipc_holder *h;
	char *text = NULL;

	if (must_stop(d, now_ms, why, sizeof(why))) {
		if (!d->stopping)
			start_stopping(d, why, now_ms);
		bool all = true;
		for (struct ipc_client *cl = ipc_next_holder(d, NULL, &pid, &h); cl;
		     cl = ipc_next_holder(d, cl, &pid, &h)) {
			if (!h->told_fence) {
				if (!text)
					text = lf_lease_text(d, now_ms);
				if (text && ipc_send_lease(cl, text))
					h->told_fence = true;
				h->pushed_ms = now_ms;
			}
			if (h->stopped)
				continue;
			if (!h->killed && now_ms >= d->kill_at_ms) {
				int r = kill(pid, SIGKILL);
				qb_log(LOG_CRIT, "self-fence: lease holder pid %d (%s %s) did not stop in time: %s", (int)pid,
				       h->role, h->what, r == 0 ? "killed" : strerror(errno));
				h->killed = true;
				h->killed_ms = now_ms;
			}
			if (h->killed && process_ended(pid))
				continue;
			if (h->killed && !h->stuck_logged && now_ms - h->killed_ms >= LF_KILL_WAIT_MS) {
				qb_log(LOG_CRIT, "self-fence: lease holder pid %d (%s %s) is still alive %" PRIu64
				       " ms after SIGKILL: this node does not acknowledge its fence; the others wait "
				       "for its lease to expire or for a fence agent", (int)pid, h->role, h->what,
				       now_ms - h->killed_ms);
				h->stuck_logged = true;
			}
			all = false;
		}
		if (all && st->self_fenced && st->fence_request_seq) {
			qb_log(LOG_NOTICE, "self-fence: acknowledging fence request %" PRIu64 " of node %u",
			       st->fence_request_seq, st->fence_request_from);
			st->fence_acked_seq = st->fence_request_seq;
			st->fence_request_seq = 0;
			st->fenced_on_request = true;
			st->self_fenced_ring = st->ring_seq;
		} else if (all && !st->self_fenced) {
			st->self_fenced = true;
			st->self_fenced_ring = st->ring_seq;
			if (st->fence_request_seq) {
				st->fence_acked_seq = st->fence_request_seq;
				st->fence_request_seq = 0;
				st->fenced_on_request = true;
			}
			qb_log(LOG_CRIT, "self-fence: done: no lease holder of this node acts on the shared volumes (%s); "
			       "its heartbeat says it is fenced%s", d->stop_reason,
			       st->fence_acked_seq ? ", acknowledging the last fence request" : "");
		}
		free(text);
		return;
	}

	if (d->stopping) {
		d->stopping = false;
		qb_log(LOG_NOTICE, "the lease of this node is valid again: its lease holders may resume I/O");
		for (struct ipc_client *cl = ipc_next_holder(d, NULL, &pid, &h); cl; cl = ipc_next_holder(d, cl, &pid, &h)) {
			h->told_fence = h->stopped = h->killed = h->stuck_logged = false;
			h->pushed_ms = 0;
		}
	}
	/* A valid lease, pushed often enough that a holder never runs out. */
	uint64_t every = d->st.timing.lease_ms / 4u;
	for (struct ipc_client *cl = ipc_next_holder(d, NULL, &pid, &h); cl; cl = ipc_next_holder(d, cl, &pid, &h)) {
		if (h->pushed_ms && now_ms - h->pushed_ms < every)
			continue;
		if (!text)
			text = lf_lease_text(d, now_ms);
		if (text && !ipc_send_lease(cl, text))
			qb_log(LOG_WARNING, "lease holder pid %d (%s %s) does not take its lease messages", (int)pid,
			       h->role, h->what);
		h->pushed_ms = now_ms;
	}
	free(text);
}
