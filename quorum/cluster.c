/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The corosync side of csv-quorumd: cmap for the nodelist and the token
 * timeout, votequorum for quorum, votes and options, CPG for membership
 * (the totem ring) and for the group of csv-quorumd daemons (with agreed,
 * ordered delivery of their reports), cfg for the knet link status of
 * each node and for corosync's own shutdown. Every client is dispatched
 * from the qb_loop through its fd. A failed dispatch schedules the
 * teardown of all four; a timer then reconnects. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "report.h"
#include "quorumd.h"

/* The votequorum and cfg callbacks carry no pointer of the caller's: the
 * one daemon of the process, for every callback. */
static struct quorumd *the_daemon;

static void schedule_lost(struct quorumd *d, const char *which, cs_error_t e);
static void arm_reconnect(struct quorumd *d);
static void try_reconnect(void *data);

/* ---- cmap: nodelist and timings ---------------------------------------- */

static cs_error_t cmap_u32(cmap_handle_t h, const char *key, uint32_t *ret)
{
	cs_error_t e = cmap_get_uint32(h, key, ret);
	if (e == CS_ERR_INVALID_PARAM) {
		/* Stored with another type: take its text. */
		char *s = NULL;
		e = cmap_get_string(h, key, &s);
		if (e == CS_OK) {
			char *end;
			unsigned long v = strtoul(s, &end, 0);
			if (*s && !*end && v <= UINT32_MAX)
				*ret = (uint32_t)v;
			else
				e = CS_ERR_INVALID_PARAM;
			free(s);
		}
	}
	return e;
}

uint32_t cluster_token_ms(struct quorumd *d)
{
	uint32_t t = 0;
	if (!d->have_cmap)
		return 0;
	if (cmap_u32(d->cmap, "runtime.config.totem.token", &t) == CS_OK && t)
		return t;
	if (cmap_u32(d->cmap, "totem.token", &t) == CS_OK && t)
		return t;
	return 0;
}

/* Rebuilds the node table from nodelist.node.X.*, keeping what the
 * other clients found about each node id. */
static int load_nodelist(struct quorumd *d, char *err, size_t errlen)
{
	struct q_state *st = &d->st;
	static struct q_node fresh[Q_MAX_NODES];
	uint32_t n = 0;
	cmap_iter_handle_t it;
	char key[CMAP_KEYNAME_MAXLEN + 1];
	size_t len;
	cmap_value_types_t type;

	memset(fresh, 0, sizeof(fresh));
	cs_error_t e = cmap_iter_init(d->cmap, "nodelist.node.", &it);
	if (e != CS_OK) {
		snprintf(err, errlen, "cmap: cannot read the nodelist: %s", cs_strerror(e));
		return -EIO;
	}
	while (cmap_iter_next(d->cmap, it, key, &len, &type) == CS_OK) {
		unsigned pos;
		char field[CMAP_KEYNAME_MAXLEN + 1];
		if (sscanf(key, "nodelist.node.%u.%255s", &pos, field) != 2 || pos >= Q_MAX_NODES)
			continue;
		struct q_node *nd = &fresh[pos];
		if (pos + 1 > n)
			n = pos + 1;
		nd->position = pos;
		if (strcmp(field, "nodeid") == 0) {
			uint32_t id;
			if (cmap_u32(d->cmap, key, &id) == CS_OK)
				nd->id = id;
		} else if (strcmp(field, "name") == 0) {
			char *s = NULL;
			if (cmap_get_string(d->cmap, key, &s) == CS_OK) {
				snprintf(nd->name, sizeof(nd->name), "%s", s);
				free(s);
			}
		} else {
			unsigned ring;
			char tail;
			if (sscanf(field, "ring%u_add%c", &ring, &tail) == 2 && tail == 'r' && ring < Q_MAX_ADDRS) {
				char *s = NULL;
				if (cmap_get_string(d->cmap, key, &s) == CS_OK) {
					snprintf(nd->addrs[ring], sizeof(nd->addrs[ring]), "%s", s);
					if (ring + 1 > nd->naddrs)
						nd->naddrs = ring + 1;
					free(s);
				}
			}
		}
	}
	cmap_iter_finalize(d->cmap, it);

	/* Keep nodes with an id, in nodelist order, with their known facts. */
	static struct q_node merged[Q_MAX_NODES];
	uint32_t m = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (fresh[i].id == 0)
			continue;
		struct q_node *old = q_state_node(st, fresh[i].id);
		struct q_node *nd = &merged[m++];
		*nd = old ? *old : (struct q_node){ 0 };
		nd->id = fresh[i].id;
		nd->position = fresh[i].position;
		memcpy(nd->name, fresh[i].name, sizeof(nd->name));
		nd->naddrs = fresh[i].naddrs;
		memcpy(nd->addrs, fresh[i].addrs, sizeof(nd->addrs));
		if (!nd->name[0])
			snprintf(nd->name, sizeof(nd->name), "%s", nd->naddrs ? nd->addrs[0] : "");
	}
	if (m == 0) {
		snprintf(err, errlen, "cmap: the corosync nodelist is empty (csv-quorumd needs a nodelist "
			 "in corosync.conf to map node ids to slots)");
		return -ENOENT;
	}
	memcpy(st->nodes, merged, sizeof(merged[0]) * m);
	st->nnodes = m;
	return 0;
}

static void nodelist_changed(cmap_handle_t h, cmap_track_handle_t t, int32_t event, const char *key,
			     struct cmap_notify_value nv, struct cmap_notify_value ov, void *data)
{
	struct quorumd *d = data;
	d->refresh_nodelist = true;
	quorumd_evaluate_soon(d);
}

/* ---- votequorum ------------------------------------------------------------ */

static void refresh_votes(struct quorumd *d)
{
	struct q_state *st = &d->st;
	struct votequorum_info info;
	if (!d->have_vq)
		return;
	cs_error_t e = votequorum_getinfo(d->vq, st->node_id, &info);
	if (e == CS_OK) {
		st->expected_votes = info.node_expected_votes;
		st->total_votes = info.total_votes;
		st->quorum = info.quorum;
		st->node_votes = info.node_votes;
		st->quorate = info.flags & VOTEQUORUM_INFO_QUORATE;
		st->options = ((info.flags & VOTEQUORUM_INFO_TWONODE) ? Q_OPT_TWO_NODE : 0) |
			      ((info.flags & VOTEQUORUM_INFO_WAIT_FOR_ALL) ? Q_OPT_WAIT_FOR_ALL : 0) |
			      ((info.flags & VOTEQUORUM_INFO_LAST_MAN_STANDING) ? Q_OPT_LAST_MAN_STANDING : 0) |
			      ((info.flags & VOTEQUORUM_INFO_AUTO_TIE_BREAKER) ? Q_OPT_AUTO_TIE_BREAKER : 0);
	} else if (e == CS_ERR_LIBRARY || e == CS_ERR_BAD_HANDLE) {
		schedule_lost(d, "votequorum", e);
		return;
	}
	for (uint32_t i = 0; i < st->nnodes; i++) {
		if (votequorum_getinfo(d->vq, st->nodes[i].id, &info) == CS_OK)
			st->nodes[i].votes = info.node_votes;
	}
}

static void vq_quorum(votequorum_handle_t h, uint64_t context, uint32_t quorate, uint32_t nentries,
		      votequorum_node_t nodes[])
{
	struct quorumd *d = the_daemon;
	d->st.quorate = quorate;
	d->refresh_votes = true;
	quorumd_evaluate_soon(d);
}

static void vq_nodelist(votequorum_handle_t h, uint64_t context, votequorum_ring_id_t ring, uint32_t nentries,
			uint32_t nodes[])
{
	struct quorumd *d = the_daemon;
	d->st.ring_seq = ring.seq;
	d->vq_ring = ring;
	d->have_vq_ring = true;
	d->refresh_votes = true;
	quorumd_evaluate_soon(d);
}

static void vq_expected(votequorum_handle_t h, uint64_t context, uint32_t expected)
{
	struct quorumd *d = the_daemon;
	d->st.expected_votes = expected;
	d->refresh_votes = true;
	quorumd_evaluate_soon(d);
}

/* ---- CPG ---------------------------------------------------------------------- */

static void on_fenced(struct quorumd *d, uint32_t nodeid, const void *msg, size_t len)
{
	uint32_t fencer, target;
	int r = q_fenced_decode(msg, len, &fencer, &target);
	if (r < 0 || fencer != nodeid) {
		qb_log(LOG_WARNING, "node %u: a fence message that does not decode or names another sender (%s): ignored",
		       nodeid, r < 0 ? strerror(-r) : "sender");
		return;
	}
	struct q_node *n = q_state_node(&d->st, target);
	if (fencer == d->st.node_id || !n)
		return;
	if (n->fence == Q_FENCE_PENDING && !n->agent_done) {
		qb_log(LOG_NOTICE, "node %u reports that its fence agent fenced node %u", fencer, target);
		n->agent_done = true;
		quorumd_evaluate_soon(d);
	}
}

void cluster_send_fenced(struct quorumd *d, uint32_t target)
{
	struct q_fenced_msg m;
	if (!d->have_cpg || d->lost_pending)
		return;
	q_fenced_encode(d->st.node_id, target, &m);
	struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
	cs_error_t e = cpg_mcast_joined(d->cpg, CPG_TYPE_AGREED, &iov, 1);
	if (e != CS_OK)
		qb_log(LOG_WARNING, "cannot tell the other nodes that node %u is fenced: %s (they wait for its lease "
		       "or acknowledgement)", target, cs_strerror(e));
}

/* ---- the disk witness as quorum device ---------------------------------------- */

#define Q_QDEVICE_NAME "csv-disk-witness"

int cluster_qdevice_register(struct quorumd *d, char *err, size_t errlen)
{
	cs_error_t e = votequorum_qdevice_register(d->vq, Q_QDEVICE_NAME);
	if (e != CS_OK) {
		snprintf(err, errlen, "votequorum refuses the disk witness as its quorum device (%s): corosync.conf "
			 "needs quorum { device { model: csvfs; votes: 1 } } and none of two_node, last_man_standing "
			 "or auto_tie_breaker", cs_strerror(e));
		return -EINVAL;
	}
	d->qdevice_registered = true;
	return 0;
}

void cluster_qdevice_poll(struct quorumd *d, bool cast_vote)
{
	if (!d->qdevice_registered || !d->have_vq_ring || d->lost_pending)
		return;
	cs_error_t e = votequorum_qdevice_poll(d->vq, Q_QDEVICE_NAME, cast_vote, d->vq_ring);
	if (e != CS_OK && e != CS_ERR_MESSAGE_ERROR)
		qb_log(LOG_WARNING, "votequorum: cannot poll the disk witness: %s", cs_strerror(e));
}

static void cpg_deliver(cpg_handle_t h, const struct cpg_name *group, uint32_t nodeid, uint32_t pid, void *msg,
			size_t len)
{
	struct quorumd *d = the_daemon;
	struct q_report_vol vols[Q_MAX_VOLUMES];
	uint32_t sender, n;
	if (q_is_fenced_msg(msg, len)) {
		on_fenced(d, nodeid, msg, len);
		return;
	}
	int r = q_report_decode(msg, len, &sender, vols, Q_MAX_VOLUMES, &n);
	if (r < 0) {
		qb_log(LOG_WARNING, "node %u: a CPG message of %zu bytes that is not a report (%s): ignored",
		       nodeid, len, strerror(-r));
		return;
	}
	if (sender != nodeid) {
		qb_log(LOG_WARNING, "node %u sent a report in the name of node %u: ignored", nodeid, sender);
		return;
	}
	struct q_node *nd = q_state_node(&d->st, nodeid);
	if (!nd)
		return;
	memcpy(nd->report, vols, sizeof(vols[0]) * n);
	nd->nreport = n;
	nd->report_ms = q_now_ms();
}

static void cpg_group_change(cpg_handle_t h, const struct cpg_name *group, const struct cpg_address *members,
			     size_t nmembers, const struct cpg_address *left, size_t nleft,
			     const struct cpg_address *joined, size_t njoined)
{
	struct quorumd *d = the_daemon;
	for (uint32_t i = 0; i < d->st.nnodes; i++) {
		struct q_node *nd = &d->st.nodes[i];
		nd->daemon = false;
		for (size_t j = 0; j < nmembers; j++)
			if (members[j].nodeid == nd->id)
				nd->daemon = true;
	}
	/* The newcomers learn this node's writes at once. */
	if (njoined)
		cluster_send_report(d);
	quorumd_evaluate_soon(d);
}

static void cpg_ring_change(cpg_handle_t h, struct cpg_ring_id ring, uint32_t nmembers, const uint32_t *members)
{
	struct quorumd *d = the_daemon;
	d->st.ring_seq = ring.seq;
	d->vq_ring.nodeid = ring.nodeid;
	d->vq_ring.seq = ring.seq;
	d->have_vq_ring = true;
	for (uint32_t i = 0; i < d->st.nnodes; i++) {
		struct q_node *nd = &d->st.nodes[i];
		nd->member = false;
		for (uint32_t j = 0; j < nmembers; j++)
			if (members[j] == nd->id)
				nd->member = true;
	}
	d->refresh_votes = true;
	quorumd_evaluate_soon(d);
}

void cluster_send_report(struct quorumd *d)
{
	struct q_report_vol vols[Q_MAX_VOLUMES];
	uint8_t buf[Q_REPORT_MAX_SIZE];
	uint32_t n = 0;
	size_t len;
	if (!d->have_cpg || d->lost_pending)
		return;
	uint64_t now = q_now_ms();
	for (uint32_t k = 0; k < d->st.nvolumes; k++) {
		const struct q_volume *v = &d->st.volumes[k];
		if (!v->identified)
			continue;
		memcpy(vols[n].uuid, v->uuid, 16);
		vols[n].write_latency_us = v->write_latency_us;
		vols[n].write_ok = q_volume_writing(v, d->st.timing.heartbeat_ms, now);
		n++;
	}
	if (q_report_encode(d->st.node_id, vols, n, buf, sizeof(buf), &len) < 0)
		return;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	cs_error_t e = cpg_mcast_joined(d->cpg, CPG_TYPE_AGREED, &iov, 1);
	if (e == CS_ERR_LIBRARY || e == CS_ERR_BAD_HANDLE)
		schedule_lost(d, "cpg", e);
	/* CS_ERR_TRY_AGAIN (flow control, a membership change): the next
	 * report goes out in Q_REPORT_MS. */
	d->last_report_ms = now;
}

/* ---- cfg ------------------------------------------------------------------ */

static void cfg_shutdown(corosync_cfg_handle_t h, corosync_cfg_shutdown_flags_t flags)
{
	qb_log(LOG_NOTICE, "corosync is shutting down: csv-quorumd lets it (membership and quorum will be lost)");
	corosync_cfg_replyto_shutdown(h, COROSYNC_CFG_SHUTDOWN_FLAG_YES);
}

static void refresh_links(struct quorumd *d)
{
	if (!d->have_cfg)
		return;
	for (uint32_t i = 0; i < d->st.nnodes; i++) {
		struct q_node *nd = &d->st.nodes[i];
		struct corosync_cfg_node_status_v1 ns;
		memset(&ns, 0, sizeof(ns));
		cs_error_t e = corosync_cfg_node_status_get(d->cfg, nd->id, CFG_NODE_STATUS_V1, &ns);
		if (e == CS_ERR_LIBRARY || e == CS_ERR_BAD_HANDLE) {
			schedule_lost(d, "cfg", e);
			return;
		}
		if (e != CS_OK) {
			nd->status_known = false;
			if (!d->cfg_status_warned && !d->cfg_status_works) {
				qb_log(LOG_WARNING, "cfg: no knet link status for node %u: %s", nd->id, cs_strerror(e));
				d->cfg_status_warned = true;
			}
			continue;
		}
		d->cfg_status_works = true;
		nd->status_known = true;
		nd->reachable = ns.reachable;
		nd->nlinks = 0;
		for (uint32_t l = 0; l < CFG_MAX_LINKS && l < Q_MAX_LINKS; l++) {
			struct q_link *ql = &nd->links[l];
			ql->enabled = ns.link_status[l].enabled;
			ql->connected = ns.link_status[l].connected;
			ql->mtu = ns.link_status[l].mtu;
			snprintf(ql->src, sizeof(ql->src), "%.*s", (int)sizeof(ql->src) - 1, ns.link_status[l].src_ipaddr);
			snprintf(ql->dst, sizeof(ql->dst), "%.*s", (int)sizeof(ql->dst) - 1, ns.link_status[l].dst_ipaddr);
			if (ql->enabled)
				nd->nlinks = l + 1;
		}
	}
}

/* ---- dispatch from the loop -------------------------------------------------- */

#define DISPATCHER(client, dispatch_fn, handle_field)                                  \
	static int32_t client##_event(int32_t fd, int32_t revents, void *data)         \
	{                                                                              \
		struct quorumd *d = data;                                              \
		if (d->lost_pending)                                                   \
			return 0;                                                      \
		cs_error_t e = dispatch_fn(d->handle_field, CS_DISPATCH_ALL);          \
		if (e != CS_OK && e != CS_ERR_TRY_AGAIN)                               \
			schedule_lost(d, #client, e);                                  \
		return 0;                                                              \
	}

DISPATCHER(cmap, cmap_dispatch, cmap)
DISPATCHER(votequorum, votequorum_dispatch, vq)
DISPATCHER(cpg, cpg_dispatch, cpg)
DISPATCHER(cfg, corosync_cfg_dispatch, cfg)

static void on_lost(void *data)
{
	struct quorumd *d = data;
	snprintf(d->st.disconnect_reason, sizeof(d->st.disconnect_reason), "%s", d->lost_reason);
	cluster_disconnect(d);
	d->st.connected = false;
	d->st.quorate = false;
	for (uint32_t i = 0; i < d->st.nnodes; i++) {
		d->st.nodes[i].member = d->st.nodes[i].daemon = false;
		d->st.nodes[i].status_known = false;
	}
	d->lost_pending = false;
	quorumd_evaluate(d);
	qb_log(LOG_WARNING, "until corosync is back, membership and quorum are unknown and this node counts as "
	       "not quorate; reconnecting every %u ms", Q_RECONNECT_MS);
	arm_reconnect(d);
}

static void arm_reconnect(struct quorumd *d)
{
	qb_loop_timer_add(d->loop, QB_LOOP_MED, (uint64_t)Q_RECONNECT_MS * 1000000u, d, try_reconnect,
			  &d->reconnect_timer);
}

static void try_reconnect(void *data)
{
	struct quorumd *d = data;
	char err[256];
	if (d->st.connected)
		return;
	if (cluster_connect(d, err, sizeof(err)) < 0) {
		if (d->reconnect_tries++ % 30 == 0)
			qb_log(LOG_WARNING, "corosync is still unreachable: %s", err);
		arm_reconnect(d);
		return;
	}
	qb_log(LOG_NOTICE, "connected to corosync again after %u attempt(s)", d->reconnect_tries + 1);
	d->reconnect_tries = 0;
	d->st.disconnect_reason[0] = '\0';
	quorumd_evaluate(d);
}

static void schedule_lost(struct quorumd *d, const char *which, cs_error_t e)
{
	if (d->lost_pending || !d->st.connected)
		return;
	d->lost_pending = true;
	snprintf(d->lost_reason, sizeof(d->lost_reason), "%s: %s", which, cs_strerror(e));
	/* Not from inside the client's own dispatch: at the loop's next turn. */
	qb_loop_job_add(d->loop, QB_LOOP_HIGH, d, on_lost);
}

/* ---- connect and disconnect ------------------------------------------------ */

static int add_fd(struct quorumd *d, int fd, int *slot, qb_loop_poll_dispatch_fn fn)
{
	int r = qb_loop_poll_add(d->loop, QB_LOOP_HIGH, fd, POLLIN, d, fn);
	if (r < 0)
		return r;
	*slot = fd;
	return 0;
}

void cluster_disconnect(struct quorumd *d)
{
	int *fds[] = { &d->cmap_fd, &d->vq_fd, &d->cpg_fd, &d->cfg_fd };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			qb_loop_poll_del(d->loop, *fds[i]);
		*fds[i] = -1;
	}
	if (d->have_cpg) {
		struct cpg_name g = { .length = sizeof(Q_CPG_GROUP) - 1 };
		memcpy(g.value, Q_CPG_GROUP, sizeof(Q_CPG_GROUP) - 1);
		if (d->st.connected && !d->lost_pending)
			cpg_leave(d->cpg, &g);
		cpg_finalize(d->cpg);
	}
	if (d->have_vq) {
		if (d->qdevice_registered && d->st.connected && !d->lost_pending)
			votequorum_qdevice_unregister(d->vq, Q_QDEVICE_NAME);
		votequorum_finalize(d->vq);
	}
	d->qdevice_registered = false;
	d->have_vq_ring = false;
	if (d->have_cfg)
		corosync_cfg_finalize(d->cfg);
	if (d->have_cmap) {
		if (d->nodelist_track)
			cmap_track_delete(d->cmap, d->nodelist_track);
		cmap_finalize(d->cmap);
	}
	d->nodelist_track = 0;
	d->have_cpg = d->have_vq = d->have_cfg = d->have_cmap = false;
}

#define TRY(what, call)                                                                \
	do {                                                                           \
		cs_error_t e_ = (call);                                                \
		if (e_ != CS_OK) {                                                     \
			snprintf(err, errlen, "%s: %s", what, cs_strerror(e_));        \
			goto fail;                                                     \
		}                                                                      \
	} while (0)

int cluster_connect(struct quorumd *d, char *err, size_t errlen)
{
	static votequorum_callbacks_t vq_cb = {
		.votequorum_quorum_notify_fn = vq_quorum,
		.votequorum_expectedvotes_notify_fn = vq_expected,
		.votequorum_nodelist_notify_fn = vq_nodelist,
	};
	static cpg_model_v1_data_t cpg_model = {
		.model = CPG_MODEL_V1,
		.cpg_deliver_fn = cpg_deliver,
		.cpg_confchg_fn = cpg_group_change,
		.cpg_totem_confchg_fn = cpg_ring_change,
		.flags = CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF,
	};
	static corosync_cfg_callbacks_t cfg_cb = { .corosync_cfg_shutdown_callback = cfg_shutdown };
	struct cpg_name g = { .length = sizeof(Q_CPG_GROUP) - 1 };
	unsigned int local = 0;
	int fd;

	memcpy(g.value, Q_CPG_GROUP, sizeof(Q_CPG_GROUP) - 1);
	the_daemon = d;
	d->cmap_fd = d->vq_fd = d->cpg_fd = d->cfg_fd = -1;
	d->lost_pending = false;

	TRY("cmap: cannot connect", cmap_initialize(&d->cmap));
	d->have_cmap = true;
	TRY("cpg: cannot connect", cpg_model_initialize(&d->cpg, CPG_MODEL_V1, (cpg_model_data_t *)&cpg_model, d));
	d->have_cpg = true;
	TRY("cpg: cannot get the local node id", cpg_local_get(d->cpg, &local));
	if (d->opt_node_id && d->opt_node_id != local) {
		snprintf(err, errlen, "--node-id %u, but corosync says this node is %u", d->opt_node_id, local);
		cluster_disconnect(d);
		return -EINVAL;
	}
	d->st.node_id = local;
	if (load_nodelist(d, err, errlen) < 0) {
		cluster_disconnect(d);
		return -EINVAL;
	}
	const struct q_node *self = q_state_node(&d->st, local);
	if (!self) {
		snprintf(err, errlen, "this node's id %u is not in the corosync nodelist", local);
		cluster_disconnect(d);
		return -EINVAL;
	}
	if (self->name[0]) {
		snprintf(d->st.node_name, sizeof(d->st.node_name), "%s", self->name);
	} else {
		struct utsname u;
		uname(&u);
		snprintf(d->st.node_name, sizeof(d->st.node_name), "%s", u.nodename);
	}
	TRY("cmap: cannot track the nodelist",
	    cmap_track_add(d->cmap, "nodelist.", CMAP_TRACK_ADD | CMAP_TRACK_DELETE | CMAP_TRACK_MODIFY | CMAP_TRACK_PREFIX,
			   nodelist_changed, d, &d->nodelist_track));

	TRY("votequorum: cannot connect", votequorum_initialize(&d->vq, &vq_cb));
	d->have_vq = true;
	TRY("votequorum: cannot track quorum", votequorum_trackstart(d->vq, 0, CS_TRACK_CURRENT | CS_TRACK_CHANGES));
	if (d->st.witness && cluster_qdevice_register(d, err, errlen) < 0) {
		cluster_disconnect(d);
		return -EINVAL;
	}

	TRY("cfg: cannot connect", corosync_cfg_initialize(&d->cfg, &cfg_cb));
	d->have_cfg = true;
	/* Told before corosync shuts down; not fatal where unsupported. */
	(void)corosync_cfg_trackstart(d->cfg, 0);

	TRY("cpg: cannot join the group " Q_CPG_GROUP, cpg_join(d->cpg, &g));

	TRY("cmap: no fd", cmap_fd_get(d->cmap, &fd));
	if (add_fd(d, fd, &d->cmap_fd, cmap_event) < 0)
		goto nofd;
	TRY("votequorum: no fd", votequorum_fd_get(d->vq, &fd));
	if (add_fd(d, fd, &d->vq_fd, votequorum_event) < 0)
		goto nofd;
	TRY("cpg: no fd", cpg_fd_get(d->cpg, &fd));
	if (add_fd(d, fd, &d->cpg_fd, cpg_event) < 0)
		goto nofd;
	TRY("cfg: no fd", corosync_cfg_fd_get(d->cfg, &fd));
	if (add_fd(d, fd, &d->cfg_fd, cfg_event) < 0)
		goto nofd;

	d->st.connected = true;
	refresh_votes(d);
	refresh_links(d);
	d->last_poll_ms = q_now_ms();
	return 0;
nofd:
	snprintf(err, errlen, "cannot add a corosync fd to the loop");
fail:
	cluster_disconnect(d);
	return -ENOTCONN;
}

void cluster_refresh(struct quorumd *d, uint64_t now_ms)
{
	char err[256];
	if (!d->st.connected || d->lost_pending)
		return;
	if (d->refresh_nodelist) {
		d->refresh_nodelist = false;
		if (load_nodelist(d, err, sizeof(err)) < 0)
			qb_log(LOG_ERR, "the corosync nodelist changed and cannot be read: %s", err);
		else
			qb_log(LOG_NOTICE, "the corosync nodelist changed: %u node(s)", d->st.nnodes);
		d->refresh_votes = true;
	}
	if (d->refresh_votes || now_ms - d->last_poll_ms >= Q_POLL_MS) {
		d->refresh_votes = false;
		refresh_votes(d);
	}
	if (now_ms - d->last_poll_ms >= Q_POLL_MS) {
		refresh_links(d);
		d->last_poll_ms = now_ms;
	}
	if (now_ms - d->last_report_ms >= Q_REPORT_MS)
		cluster_send_report(d);
}
