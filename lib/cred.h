/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Who may change the cluster through the daemons' IPC: root, and the
 * members of the cluster admin group. Everyone may read. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#define Q_ADMIN_GROUP "csvadmin"

/* Whether the caller uid/gid may change anything: uid 0, or gid is the
 * group admin_group, or the user of uid belongs to it (as the group
 * database says). A group that does not exist admits root only. */
bool q_may_change(uid_t uid, gid_t gid, const char *admin_group);
