/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Processor compatibility: this node's CPU read from a cpuinfo file, and
 * the -cpu argument that limits a guest to the cluster's flags, under KVM
 * and TCG, from what QEMU says it knows (given here, not asked). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu.h"

START_TEST(test_info)
{
	char path[] = "/tmp/test-cpu.XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	FILE *f = fdopen(fd, "w");
	fputs("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Test CPU @ 2.00GHz\n"
	      "flags\t\t: sse2 fpu sse4_1 lm\n\nprocessor\t: 1\nflags\t\t: other\n", f);
	fclose(f);
	struct cpu_info ci;
	ck_assert_int_eq(cpu_info_read(path, &ci), 0);
	ck_assert_str_eq(ci.vendor, "GenuineIntel");
	ck_assert_str_eq(ci.model, "Test CPU @ 2.00GHz");
	ck_assert_str_eq(ci.flags, "fpu lm sse2 sse4_1");
	f = fopen(path, "w");
	fputs("processor\t: 0\n", f);
	fclose(f);
	ck_assert_int_eq(cpu_info_read(path, &ci), -EBADMSG);
	unlink(path);
	ck_assert_int_lt(cpu_info_read("/nonexistent/cpuinfo", &ci), 0);
}
END_TEST

static struct cpu_qemu q = {
	.probed = true,
	.known = "fpu sse2 sse4-1 avx lahf-lm lm check migratable",
	.usable = "fpu sse2 sse4-1 lahf-lm lm check migratable",  /* TCG max, or host under KVM */
	.base = "fpu sse2 lahf-lm lm check",                      /* qemu64 */
};

START_TEST(test_arg_tcg)
{
	char buf[512];
	/* The cluster lacks lahf_lm; has sse4_1 (TCG can) and avx (TCG cannot). */
	ck_assert_int_eq(cpu_arg(&q, false, "fpu lahf_lm lm sse2 sse4_1 avx", "fpu lm sse2 sse4_1 avx", buf,
				 sizeof(buf)), 0);
	ck_assert_str_eq(buf, "qemu64,-lahf-lm,+sse4-1");
	/* QEMU's own switches (check) are never touched. */
	ck_assert_ptr_null(strstr(buf, "check"));
	ck_assert_int_eq(cpu_arg(&q, false, "fpu", "fpu sse4_1", buf, 10), -ENAMETOOLONG);
}
END_TEST

START_TEST(test_arg_kvm)
{
	char buf[512];
	ck_assert_int_eq(cpu_arg(&q, true, "fpu lahf_lm lm sse2 sse4_1", "fpu lm sse2", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "host,-sse4-1,-lahf-lm");
	ck_assert_int_eq(cpu_arg(&q, true, "fpu lm", "fpu lm", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "host");
}
END_TEST

START_TEST(test_lists)
{
	ck_assert(cpu_list_has("a bb ccc", "bb"));
	ck_assert(!cpu_list_has("a bbb ccc", "bb"));
	ck_assert(cpu_list_has("a", "a"));
	ck_assert(cpu_features_ok("fpu sse4_1 sse4.2 lahf-lm"));
	ck_assert(!cpu_features_ok("fpu,+x"));
	ck_assert(!cpu_features_ok("fpu;reboot"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vmagent-cpu");
	TCase *tc = tcase_create("cpu");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_info);
	tcase_add_test(tc, test_arg_tcg);
	tcase_add_test(tc, test_arg_kvm);
	tcase_add_test(tc, test_lists);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
