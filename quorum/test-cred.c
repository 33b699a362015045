/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Who may change the cluster through csv-quorumd: root and the members of
 * the admin group, by primary group or by membership; nobody else. The
 * tests use groups that exist on any system (that of the caller, and one
 * that cannot exist). */
#include <check.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cred.h"

#define NO_SUCH_GROUP "csv-no-such-group-4d7e"

START_TEST(test_root_always)
{
	ck_assert(q_may_change(0, 0, Q_ADMIN_GROUP));
	ck_assert(q_may_change(0, 12345, NO_SUCH_GROUP));
	ck_assert(q_may_change(0, 0, NULL));
}
END_TEST

START_TEST(test_nobody_never)
{
	struct passwd *pw = getpwnam("nobody");
	uid_t uid = pw ? pw->pw_uid : 65534;
	gid_t gid = pw ? pw->pw_gid : 65534;
	ck_assert(!q_may_change(uid, gid, NO_SUCH_GROUP));
	ck_assert(!q_may_change(uid, gid, NULL));
	ck_assert(!q_may_change(uid, gid, ""));
	/* The real admin group, unless this system put nobody in it. */
	struct group *g = getgrnam(Q_ADMIN_GROUP);
	bool member = false;
	if (g) {
		member = g->gr_gid == gid;
		for (char **m = g->gr_mem; m && *m; m++)
			if (pw && strcmp(*m, pw->pw_name) == 0)
				member = true;
	}
	ck_assert_int_eq(q_may_change(uid, gid, Q_ADMIN_GROUP), member);
}
END_TEST

START_TEST(test_primary_group)
{
	/* A non-root caller whose primary group is the admin group. Take the
	 * group of some existing group entry other than root's. */
	struct group *g = getgrnam("nogroup");
	if (!g)
		g = getgrnam("users");
	if (!g)
		return;  /* a system without either: nothing to test with */
	char name[256];
	snprintf(name, sizeof(name), "%s", g->gr_name);
	gid_t gid = g->gr_gid;
	ck_assert(q_may_change(54321, gid, name));
	ck_assert(!q_may_change(54321, gid + 1000, name));
}
END_TEST

START_TEST(test_supplementary_group)
{
	/* A user listed as a member of a group that is not its primary one. */
	struct group *g;
	setgrent();
	while ((g = getgrent())) {
		for (char **m = g->gr_mem; m && *m; m++) {
			struct passwd *pw = getpwnam(*m);
			if (!pw || pw->pw_uid == 0 || pw->pw_gid == g->gr_gid)
				continue;
			char gname[256];
			uid_t uid = pw->pw_uid;
			gid_t pgid = pw->pw_gid;
			snprintf(gname, sizeof(gname), "%s", g->gr_name);
			endgrent();
			ck_assert_msg(q_may_change(uid, pgid, gname), "uid %u in %s", (unsigned)uid, gname);
			return;
		}
	}
	endgrent();
	/* No such user on this system: nothing to test with. */
}
END_TEST

int main(void)
{
	Suite *s = suite_create("quorum-cred");
	TCase *tc = tcase_create("cred");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_root_always);
	tcase_add_test(tc, test_nobody_never);
	tcase_add_test(tc, test_primary_group);
	tcase_add_test(tc, test_supplementary_group);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
