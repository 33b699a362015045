/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The state the unit tests of csv-quorumd start from. */
#pragma once

#include <stdint.h>

#include "state.h"

/* A quorate three-node state, node 1 being this one (ring 100), one
 * volume with a slot per node, every node a member heartbeating at now. */
void test_cluster_state(struct q_state *st, uint64_t now);
