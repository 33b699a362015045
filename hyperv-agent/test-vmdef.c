/* SPDX-License-Identifier: GPL-2.0-or-later */
/* VM definitions as csv-vmagent reads them: a good one in full and at its
 * smallest, then each kind of mistake, refused with the field named; the
 * files they name; and the -drive argument with a comma in a file name. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmdef.h"

static char dir[64];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test-vmdef.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void write_file(const char *name, const char *text)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

/* Parses text as the definition of name; returns the result, err filled. */
static int parse(const char *name, const char *text, struct vmdef *d, char *err, size_t len)
{
	struct json_object *o = json_tokener_parse(text);
	ck_assert_msg(o != NULL, "test JSON does not parse: %s", text);
	err[0] = '\0';
	int r = vmdef_from_json(o, "/vms", name, d, err, len);
	json_object_put(o);
	return r;
}

/* The definition text must be refused with -EINVAL and an error naming
 * the field. */
static void refused(const char *text, const char *field)
{
	struct vmdef d;
	char err[512], quoted[80];
	int r = parse("vm1", text, &d, err, sizeof(err));
	ck_assert_msg(r == -EINVAL, "accepted (%d): %s", r, text);
	snprintf(quoted, sizeof(quoted), "\"%s\"", field);
	ck_assert_msg(strstr(err, quoted) != NULL, "the error for %s does not name %s: %s", text, quoted, err);
}

START_TEST(test_full)
{
	struct vmdef d;
	char err[512];
	int r = parse("vm1", "{\"name\": \"vm1\", \"vcpus\": 2, \"memory_mb\": 256, \"kernel\": \"csv-tiny-guest\","
		      " \"append\": \"tick=100\", \"disks\": [{\"file\": \"vm1.qcow2\", \"format\": \"qcow2\"},"
		      " {\"file\": \"/abs/d.vhdx\", \"format\": \"vhdx\"}], \"priority\": -3,"
		      " \"preferred_nodes\": [2, 1]}", &d, err, sizeof(err));
	ck_assert_msg(r == 0, "refused: %s", err);
	ck_assert_str_eq(d.name, "vm1");
	ck_assert_uint_eq(d.vcpus, 2);
	ck_assert_uint_eq(d.memory_mb, 256);
	ck_assert_str_eq(d.kernel, "/vms/csv-tiny-guest");
	ck_assert_str_eq(d.append, "tick=100");
	ck_assert_uint_eq(d.ndisks, 2);
	ck_assert_str_eq(d.disks[0].file, "/vms/vm1.qcow2");
	ck_assert_str_eq(d.disks[0].format, "qcow2");
	ck_assert_str_eq(d.disks[1].file, "/abs/d.vhdx");
	ck_assert_int_eq(d.priority, -3);
	ck_assert_uint_eq(d.npreferred, 2);
	ck_assert_uint_eq(d.preferred_nodes[0], 2);
	ck_assert_uint_eq(d.preferred_nodes[1], 1);
}
END_TEST

START_TEST(test_smallest)
{
	struct vmdef d;
	char err[512];
	int r = parse("a.b-c_1", "{\"name\": \"a.b-c_1\", \"vcpus\": 64, \"memory_mb\": 16, \"kernel\": \"/k\"}", &d,
		      err, sizeof(err));
	ck_assert_msg(r == 0, "refused: %s", err);
	ck_assert_uint_eq(d.ndisks, 0);
	ck_assert_str_eq(d.append, "");
	ck_assert_str_eq(d.kernel, "/k");
}
END_TEST

START_TEST(test_bad_fields)
{
	const char *base = "\"vcpus\": 1, \"memory_mb\": 64, \"kernel\": \"k\"";
	char text[512];
	refused("{\"vcpus\": 1, \"memory_mb\": 64, \"kernel\": \"k\"}", "name");
	snprintf(text, sizeof(text), "{\"name\": \"vm2\", %s}", base);
	refused(text, "name");
	snprintf(text, sizeof(text), "{\"name\": 7, %s}", base);
	refused(text, "name");
	refused("{\"name\": \"vm1\", \"vcpus\": 0, \"memory_mb\": 64, \"kernel\": \"k\"}", "vcpus");
	refused("{\"name\": \"vm1\", \"vcpus\": 65, \"memory_mb\": 64, \"kernel\": \"k\"}", "vcpus");
	refused("{\"name\": \"vm1\", \"vcpus\": \"2\", \"memory_mb\": 64, \"kernel\": \"k\"}", "vcpus");
	refused("{\"name\": \"vm1\", \"memory_mb\": 64, \"kernel\": \"k\"}", "vcpus");
	refused("{\"name\": \"vm1\", \"vcpus\": 1, \"memory_mb\": 15, \"kernel\": \"k\"}", "memory_mb");
	refused("{\"name\": \"vm1\", \"vcpus\": 1, \"memory_mb\": 65537, \"kernel\": \"k\"}", "memory_mb");
	refused("{\"name\": \"vm1\", \"vcpus\": 1, \"memory_mb\": 1.5, \"kernel\": \"k\"}", "memory_mb");
	refused("{\"name\": \"vm1\", \"vcpus\": 1, \"memory_mb\": 64}", "kernel");
	refused("{\"name\": \"vm1\", \"vcpus\": 1, \"memory_mb\": 64, \"kernel\": \"\"}", "kernel");
	snprintf(text, sizeof(text), "{\"name\": \"vm1\", %s, \"append\": 3}", base);
	refused(text, "append");
	snprintf(text, sizeof(text), "{\"name\": \"vm1\", %s, \"disks\": {}}", base);
	refused(text, "disks");
	snprintf(text, sizeof(text), "{\"name\": \"vm1\", %s, \"disks\": [\"d.raw\"]}", base);
	refused(text, "disks[0]");
	snprintf(text, sizeof(text), "{\"name\": \"vm1\", %s, \"disks\": [{\"file\": \"d\", \"format\": \"raw\"},"
		 " {\"file\": \"e\", \"format\": \"vmdk\"}]}", base);
	refused(text, "disks[1].format");
	snprintf(text, sizeof(text), "{\"name\": \"vm1\", %s, \"disks\": [{\"format\": \"raw\"}]}", base);
	refused(text, "disks[0].file");
	snprintf(text, sizeof(text), "{\"name\": \"vm1\", %s, \"disks\": [{\"file\": \"d\"}]}", base);
	refused(text, "disks[0].format");
	snprintf(text, sizeof(text), "{\"name\": \"vm1\", %s, \"disks\": [{\"file\": \"d\", \"format\": \"raw\","
		 " \"cache\": \"none\"}]}", base);
	refused(text, "disks[0].cache");
	snprintf(text, sizeof(text), "{\"name\": \"vm1\", %s, \"priority\": \"high\"}", base);
	refused(text, "priority");
	snprintf(text, sizeof(text), "{\"name\": \"vm1\", %s, \"preferred_nodes\": [1, 0]}", base);
	refused(text, "preferred_nodes[1]");
	snprintf(text, sizeof(text), "{\"name\": \"vm1\", %s, \"memory\": 64}", base);
	refused(text, "memory");
	struct vmdef d;
	char err[256];
	ck_assert_int_eq(parse("vm1", "[1, 2]", &d, err, sizeof(err)), -EINVAL);
}
END_TEST

START_TEST(test_names)
{
	ck_assert(vmdef_name_ok("vm1"));
	ck_assert(vmdef_name_ok("A-b_c.d"));
	ck_assert(!vmdef_name_ok(""));
	ck_assert(!vmdef_name_ok(".hidden"));
	ck_assert(!vmdef_name_ok("../etc"));
	ck_assert(!vmdef_name_ok("a/b"));
	ck_assert(!vmdef_name_ok("a,b"));
	ck_assert(!vmdef_name_ok("a b"));
	char longname[80];
	memset(longname, 'x', sizeof(longname));
	longname[63] = '\0';
	ck_assert(vmdef_name_ok(longname));
	longname[63] = 'x';
	longname[64] = '\0';
	ck_assert(!vmdef_name_ok(longname));
}
END_TEST

START_TEST(test_load)
{
	struct vmdef d;
	char err[512];
	ck_assert_int_eq(vmdef_load(dir, "none", &d, err, sizeof(err)), -ENOENT);
	ck_assert_msg(strstr(err, "none.json"), "%s", err);
	write_file("broken.json", "{\"name\": \"broken\", \"vcpus\": 1,");
	ck_assert_int_eq(vmdef_load(dir, "broken", &d, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "not JSON"), "%s", err);
	write_file("trailing.json", "{\"name\": \"trailing\"} x");
	ck_assert_int_eq(vmdef_load(dir, "trailing", &d, err, sizeof(err)), -EINVAL);
	write_file("vm1.json", "{\"name\": \"vm1\", \"vcpus\": 1, \"memory_mb\": 64, \"kernel\": \"k\"}\n");
	ck_assert_msg(vmdef_load(dir, "vm1", &d, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(vmdef_load(dir, "../vm1", &d, err, sizeof(err)), -EINVAL);
}
END_TEST

START_TEST(test_files)
{
	struct vmdef d;
	char err[512];
	write_file("vm1.json", "{\"name\": \"vm1\", \"vcpus\": 1, \"memory_mb\": 64, \"kernel\": \"k\","
		   " \"disks\": [{\"file\": \"d.raw\", \"format\": \"raw\"}]}");
	ck_assert_msg(vmdef_load(dir, "vm1", &d, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(vmdef_check_files(&d, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "\"kernel\""), "%s", err);
	write_file("k", "kernel");
	ck_assert_int_eq(vmdef_check_files(&d, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "\"disks[0].file\""), "%s", err);
	write_file("d.raw", "");
	ck_assert_int_eq(truncate(d.disks[0].file, 1 << 20), 0);
	ck_assert_msg(vmdef_check_files(&d, err, sizeof(err)) == 0, "%s", err);
	/* A directory is not a disk. */
	char sub[128];
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	snprintf(d.disks[0].file, sizeof(d.disks[0].file), "%s", sub);
	ck_assert_int_eq(vmdef_check_files(&d, err, sizeof(err)), -EINVAL);
}
END_TEST

START_TEST(test_drive_arg)
{
	struct vmdef d;
	char buf[256];
	memset(&d, 0, sizeof(d));
	d.ndisks = 2;
	snprintf(d.disks[1].file, sizeof(d.disks[1].file), "/v/a,b.qcow2");
	snprintf(d.disks[1].format, sizeof(d.disks[1].format), "qcow2");
	ck_assert_int_eq(vmdef_drive_arg(&d, 1, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "file=/v/a,,b.qcow2,format=qcow2,if=none,id=disk1,cache=none,aio=threads");
	ck_assert_int_eq(vmdef_drive_arg(&d, 1, buf, 20), -ENAMETOOLONG);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vmagent-vmdef");
	TCase *tc = tcase_create("vmdef");
	tcase_set_timeout(tc, 10);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_full);
	tcase_add_test(tc, test_smallest);
	tcase_add_test(tc, test_bad_fields);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_load);
	tcase_add_test(tc, test_files);
	tcase_add_test(tc, test_drive_arg);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
