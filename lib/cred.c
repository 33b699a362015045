/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "cred.h"

#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

bool q_may_change(uid_t uid, gid_t gid, const char *admin_group)
{
	if (uid == 0)
		return true;
	if (!admin_group || !admin_group[0])
		return false;

	struct group grp, *g = NULL;
	char gbuf[16384];
	if (getgrnam_r(admin_group, &grp, gbuf, sizeof(gbuf), &g) != 0 || !g)
		return false;
	if (gid == g->gr_gid)
		return true;

	/* The caller's supplementary groups are not in the credentials the
	 * socket carries: ask the databases whether its user is a member. */
	struct passwd pw, *p = NULL;
	char pbuf[16384];
	if (getpwuid_r(uid, &pw, pbuf, sizeof(pbuf), &p) != 0 || !p)
		return false;
	for (char **m = g->gr_mem; m && *m; m++)
		if (strcmp(*m, p->pw_name) == 0)
			return true;
	int n = 64;
	gid_t *groups = malloc(sizeof(gid_t) * (size_t)n);
	if (!groups)
		return false;
	if (getgrouplist(p->pw_name, p->pw_gid, groups, &n) < 0) {
		gid_t *more = n > 0 ? realloc(groups, sizeof(gid_t) * (size_t)n) : NULL;
		if (!more || getgrouplist(p->pw_name, p->pw_gid, more, &n) < 0) {
			free(more ? more : groups);
			return false;
		}
		groups = more;
	}
	bool found = false;
	for (int i = 0; i < n; i++)
		if (groups[i] == g->gr_gid)
			found = true;
	free(groups);
	return found;
}
