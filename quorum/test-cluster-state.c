/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "test-cluster-state.h"

#include <stdio.h>
#include <string.h>

void test_cluster_state(struct q_state *st, uint64_t now)
{
	memset(st, 0, sizeof(*st));
	st->node_id = 1;
	snprintf(st->node_name, sizeof(st->node_name), "node1");
	st->timing = (struct q_timing){ .heartbeat_ms = 500, .lease_ms = 3000, .token_ms = 1000 };
	st->connected = true;
	st->quorate = true;
	st->expected_votes = st->total_votes = 3;
	st->quorum = 2;
	st->node_votes = 1;
	st->ring_seq = 100;
	st->nnodes = 3;
	for (uint32_t i = 0; i < 3; i++) {
		struct q_node *n = &st->nodes[i];
		n->id = i + 1;
		n->position = i;
		snprintf(n->name, sizeof(n->name), "node%u", i + 1);
		n->member = n->daemon = true;
		n->votes = 1;
	}
	st->nvolumes = 1;
	struct q_volume *v = &st->volumes[0];
	snprintf(v->spec, sizeof(v->spec), "/dev/lun0");
	v->identified = true;
	snprintf(v->uuid_str, sizeof(v->uuid_str), "6b1e2c90-114d-470a-9c3e-5501deadbeef");
	snprintf(v->label, sizeof(v->label), "vol1");
	v->max_nodes = 3;
	v->nslots = 3;
	v->slot = 0;
	v->open = true;
	v->last_read_ok_ms = now - 100;
	v->last_write_ok_ms = now - 100;
	for (uint32_t i = 0; i < 3; i++)
		v->slots[i] = (struct q_slot){ .valid = true, .node_id = i + 1, .flags = CSV_HB_RUNNING,
					       .interval_ms = 500, .seq = 5, .changed_ms = now - 200 };
}
