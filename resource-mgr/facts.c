/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The facts csv-rmd decides on, from the local csv-quorumd's snapshot
 * (quorum, membership, fences, each node's SAN access per volume) joined
 * with the csv-rmd group (who runs csv-rmd, which volumes it serves). A
 * csv-quorumd that does not answer leaves this node not quorate: it
 * decides nothing and starts nothing. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <json-c/json.h>
#include <qb/qbipc_common.h>
#include <qb/qblog.h>

#include "quorumd-ipc.h"
#include "rmd.h"

#define SNAPSHOT_TIMEOUT_MS 1000

/* Member key of o when it is a string, else "". */
static const char *member_str(struct json_object *o, const char *key)
{
	const char *t = r_json_str(o, key);
	return t ? t : "";
}

/* Records why the facts are missing, logging each new reason once. */
static void facts_lost(struct rmd *d, const char *why)
{
	if (d->quorumd_up || strcmp(d->quorumd_error, why) != 0)
		qb_log(LOG_WARNING, "no facts from csv-quorumd (%s): this node decides and starts nothing", why);
	d->quorumd_up = false;
	snprintf(d->quorumd_error, sizeof(d->quorumd_error), "%s", why);
	d->facts.quorate = false;
	if (d->qc) {
		qb_ipcc_disconnect(d->qc);
		d->qc = NULL;
	}
}

/* The snapshot of csv-quorumd, parsed; NULL with why set. */
static struct json_object *snapshot(struct rmd *d, char *why, size_t len)
{
	static char buf[CSVQ_IPC_MAX_MSG];
	if (!d->qc) {
		d->qc = qb_ipcc_connect(d->quorumd_name, CSVQ_IPC_MAX_MSG);
		if (!d->qc) {
			snprintf(why, len, "csv-quorumd is not running (no IPC endpoint %s)", d->quorumd_name);
			return NULL;
		}
	}
	struct qb_ipc_request_header h = { .id = CSVQ_REQ_SNAPSHOT, .size = sizeof(h) };
	struct iovec iov = { .iov_base = &h, .iov_len = sizeof(h) };
	ssize_t n = qb_ipcc_sendv_recv(d->qc, &iov, 1, buf, sizeof(buf) - 1, SNAPSHOT_TIMEOUT_MS);
	struct qb_ipc_response_header r;
	if (n < (ssize_t)sizeof(r)) {
		snprintf(why, len, "csv-quorumd does not answer: %s", n < 0 ? strerror((int)-n) : "short reply");
		return NULL;
	}
	memcpy(&r, buf, sizeof(r));
	buf[n] = '\0';
	if (r.error) {
		snprintf(why, len, "csv-quorumd refused the snapshot: %s", strerror(-r.error));
		return NULL;
	}
	struct json_object *o = json_tokener_parse(buf + sizeof(r));
	if (!o)
		snprintf(why, len, "csv-quorumd sent a snapshot that is not JSON");
	return o;
}

static enum r_fence fence_of(struct json_object *node)
{
	const char *s = member_str(r_json_get(node, "fence"), "state");
	if (strcmp(s, "fenced") == 0)
		return R_FENCED;
	if (strcmp(s, "pending") == 0)
		return R_FENCE_PENDING;
	return R_FENCE_NONE;
}

void facts_refresh(struct rmd *d)
{
	char why[200];
	struct json_object *s = snapshot(d, why, sizeof(why));
	if (!s) {
		facts_lost(d, why);
		return;
	}
	if (!d->quorumd_up) {
		qb_log(LOG_NOTICE, "csv-quorumd answers: following its facts");
		d->quorumd_since_ms = rmd_now_ms();
	}
	d->quorumd_up = true;
	d->quorumd_error[0] = '\0';
	if (!d->node_id) {
		int64_t id = json_object_get_int64(r_json_get(s, "node_id"));
		d->node_id = id > 0 && id <= UINT32_MAX ? (uint32_t)id : 0;
		snprintf(d->node_name, sizeof(d->node_name), "%s", member_str(s, "node_name"));
	}

	/* This node's volumes: the UUID csv-quorumd read from each LUN. */
	struct json_object *vols = r_json_get(s, "volumes");
	for (size_t i = 0; vols && i < json_object_array_length(vols); i++) {
		struct json_object *v = json_object_array_get_idx(vols, i);
		for (uint32_t c = 0; c < d->nconf; c++)
			if (strcmp(member_str(v, "spec"), d->conf[c].spec) == 0) {
				if (member_str(v, "uuid")[0])
					snprintf(d->conf[c].uuid, sizeof(d->conf[c].uuid), "%s", member_str(v, "uuid"));
				d->conf[c].san_ok = r_json_get(v, "writing") && json_object_get_boolean(r_json_get(v, "writing"));
			}
	}

	struct r_facts *f = &d->facts;
	memset(f, 0, sizeof(*f));
	f->now_ms = rmd_now_ms();
	struct json_object *q = r_json_get(s, "quorum");
	f->quorate = r_json_get(q, "quorate") && json_object_get_boolean(r_json_get(q, "quorate")) &&
		     strcmp(member_str(s, "corosync"), "connected") == 0;
	struct json_object *nodes = r_json_get(s, "nodes");
	for (size_t i = 0; nodes && i < json_object_array_length(nodes) && f->nnodes < R_MAX_NODES; i++) {
		struct json_object *n = json_object_array_get_idx(nodes, i);
		struct r_node_facts *nf = &f->nodes[f->nnodes];
		int64_t id = json_object_get_int64(r_json_get(n, "id"));
		if (id <= 0 || id > UINT32_MAX)
			continue;
		nf->id = (uint32_t)id;
		snprintf(d->node_names[f->nnodes], R_NAME_MAX, "%s", member_str(n, "name"));
		nf->member = json_object_get_boolean(r_json_get(n, "member"));
		nf->fence = fence_of(n);
		const struct rmd_peer *p = rmd_peer(d, nf->id);
		nf->rmd = p && p->known;
		nf->vm_memory_mb = p ? p->vm_memory_mb : 0;
		nf->cpus = p ? p->cpus : 0;
		nf->cpu_flags = p && p->cpu_flags[0] ? p->cpu_flags : NULL;
		struct json_object *nv = r_json_get(n, "volumes");
		for (uint32_t k = 0; k < d->st.nvolumes; k++) {
			const struct r_volume *v = &d->st.volumes[k];
			/* Each node's own word on its SAN access first: a node
			 * that cannot read the LUN sees nobody's heartbeat. */
			bool told = false;
			for (uint32_t j = 0; p && j < p->nvolumes; j++)
				if (strcmp(p->volumes[j], v->name) == 0) {
					nf->has[k] = true;
					if (p->san_known) {
						nf->san_ok[k] = p->san_ok[j];
						told = true;
					}
				}
			for (size_t j = 0; !told && nv && v->uuid[0] && j < json_object_array_length(nv); j++) {
				struct json_object *x = json_object_array_get_idx(nv, j);
				if (strcmp(member_str(x, "volume"), v->uuid) == 0)
					nf->san_ok[k] = strcmp(member_str(x, "san"), "ok") == 0;
			}
		}
		f->nnodes++;
	}
	json_object_put(s);
	d->facts_ms = f->now_ms;
}

void facts_stop(struct rmd *d)
{
	if (d->qc)
		qb_ipcc_disconnect(d->qc);
	d->qc = NULL;
}

const struct rmd_volume_conf *facts_conf_of(const struct rmd *d, unsigned k)
{
	if (k >= d->st.nvolumes)
		return NULL;
	for (uint32_t c = 0; c < d->nconf; c++)
		if (strcmp(d->conf[c].name, d->st.volumes[k].name) == 0)
			return &d->conf[c];
	return NULL;
}
