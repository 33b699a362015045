/* SPDX-License-Identifier: GPL-2.0-or-later */
/* VM definitions as csv-vmagent reads them: a good one in full and at its
 * smallest, then each kind of mistake, refused with the field named; the
 * optional fields for the resource manager, cpu_compat and nics, good and
 * bad; the files they name; and the -drive argument with a comma in a file
 * name. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmdef.h"
#include "vmstore.h"

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
	ck_assert_str_eq(buf, "file=/v/a,,b.qcow2,format=qcow2,if=none,id=disk1,node-name=disk1-node,cache=none,"
			 "aio=threads");
	ck_assert_int_eq(vmdef_drive_arg(&d, 1, buf, 20), -ENAMETOOLONG);
}
END_TEST


/* The definition base plus the fields extra, as text. */
static const char *with(const char *extra)
{
	static char text[1024];
	snprintf(text, sizeof(text), "{\"name\": \"vm1\", \"vcpus\": 1, \"memory_mb\": 64, \"kernel\": \"k\", %s}", extra);
	return text;
}

/* with(extra) must be accepted; the result in *d. */
static void accepted(const char *extra, struct vmdef *d)
{
	char err[512];
	int r = parse("vm1", with(extra), d, err, sizeof(err));
	ck_assert_msg(r == 0, "refused (%d): %s: %s", r, extra, err);
}

START_TEST(test_policy_defaults)
{
	struct vmdef d;
	accepted("\"priority\": 0", &d);
	ck_assert(!d.has_anti_affinity);
	ck_assert(!d.has_restart);
	ck_assert_int_eq(d.failback, VMDEF_FAILBACK_NEVER);
	ck_assert_int_eq(d.migration, VMDEF_MIGRATION_LIVE);
	ck_assert(!d.cpu_compat);
	ck_assert_uint_eq(d.noperators, 0);
	ck_assert_uint_eq(d.nnics, 0);
}
END_TEST

START_TEST(test_anti_affinity)
{
	struct vmdef d;
	accepted("\"anti_affinity\": {\"class\": \"web-1\", \"hard\": true}", &d);
	ck_assert(d.has_anti_affinity);
	ck_assert_str_eq(d.anti_affinity_class, "web-1");
	ck_assert(d.anti_affinity_hard);
	accepted("\"anti_affinity\": {\"class\": \"db\"}", &d);
	ck_assert(!d.anti_affinity_hard);
	refused(with("\"anti_affinity\": \"web\""), "anti_affinity");
	refused(with("\"anti_affinity\": {\"hard\": true}"), "anti_affinity.class");
	refused(with("\"anti_affinity\": {\"class\": \"a/b\"}"), "anti_affinity.class");
	refused(with("\"anti_affinity\": {\"class\": \"\"}"), "anti_affinity.class");
	refused(with("\"anti_affinity\": {\"class\": \"web\", \"hard\": 1}"), "anti_affinity.hard");
	refused(with("\"anti_affinity\": {\"class\": \"web\", \"soft\": true}"), "anti_affinity.soft");
}
END_TEST

START_TEST(test_restart)
{
	struct vmdef d;
	accepted("\"restart\": {\"max\": 3, \"period_s\": 600, \"expire_s\": 3600}", &d);
	ck_assert(d.has_restart);
	ck_assert_uint_eq(d.restart_max, 3);
	ck_assert_uint_eq(d.restart_period_s, 600);
	ck_assert_uint_eq(d.restart_expire_s, 3600);
	accepted("\"restart\": {\"max\": 0}", &d);
	ck_assert_uint_eq(d.restart_max, 0);
	ck_assert_uint_eq(d.restart_period_s, 3600);
	ck_assert_uint_eq(d.restart_expire_s, 0);
	accepted("\"restart\": {\"max\": 100}", &d);
	refused(with("\"restart\": {\"max\": 101}"), "restart.max");
	refused(with("\"restart\": {\"max\": -1}"), "restart.max");
	refused(with("\"restart\": {\"period_s\": 60}"), "restart.max");
	refused(with("\"restart\": {\"max\": 1, \"period_s\": 0}"), "restart.period_s");
	refused(with("\"restart\": {\"max\": 1, \"period_s\": \"1h\"}"), "restart.period_s");
	refused(with("\"restart\": {\"max\": 1, \"expire_s\": 604801}"), "restart.expire_s");
	refused(with("\"restart\": {\"max\": 1, \"delay_s\": 5}"), "restart.delay_s");
	refused(with("\"restart\": [3]"), "restart");
}
END_TEST

START_TEST(test_failback)
{
	struct vmdef d;
	accepted("\"failback\": \"never\"", &d);
	ck_assert_int_eq(d.failback, VMDEF_FAILBACK_NEVER);
	accepted("\"failback\": \"immediate\"", &d);
	ck_assert_int_eq(d.failback, VMDEF_FAILBACK_IMMEDIATE);
	accepted("\"failback\": \"22-06\"", &d);
	ck_assert_int_eq(d.failback, VMDEF_FAILBACK_WINDOW);
	ck_assert_uint_eq(d.failback_from, 22);
	ck_assert_uint_eq(d.failback_to, 6);
	accepted("\"failback\": \"00-23\"", &d);
	refused(with("\"failback\": \"24-06\""), "failback");
	refused(with("\"failback\": \"6-22\""), "failback");
	refused(with("\"failback\": \"06-06\""), "failback");
	refused(with("\"failback\": \"22:06\""), "failback");
	refused(with("\"failback\": \"sometimes\""), "failback");
	refused(with("\"failback\": true"), "failback");
}
END_TEST

START_TEST(test_migration_kind)
{
	struct vmdef d;
	accepted("\"migration\": \"quick\"", &d);
	ck_assert_int_eq(d.migration, VMDEF_MIGRATION_QUICK);
	accepted("\"migration\": \"live\"", &d);
	ck_assert_int_eq(d.migration, VMDEF_MIGRATION_LIVE);
	refused(with("\"migration\": \"fast\""), "migration");
	refused(with("\"migration\": 1"), "migration");
}
END_TEST

START_TEST(test_cpu_compat)
{
	struct vmdef d;
	accepted("\"cpu_compat\": true", &d);
	ck_assert(d.cpu_compat);
	accepted("\"cpu_compat\": false", &d);
	ck_assert(!d.cpu_compat);
	refused(with("\"cpu_compat\": \"yes\""), "cpu_compat");
	refused(with("\"cpu_compat\": 1"), "cpu_compat");
}
END_TEST

START_TEST(test_operators)
{
	struct vmdef d;
	accepted("\"operators\": [\"csvadmin\", \"web_ops\", \"Team-1.x\"]", &d);
	ck_assert_uint_eq(d.noperators, 3);
	ck_assert_str_eq(d.operators[2], "Team-1.x");
	accepted("\"operators\": []", &d);
	accepted("\"operators\": [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\", \"g\", \"h\"]", &d);
	ck_assert_uint_eq(d.noperators, 8);
	refused(with("\"operators\": [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\", \"g\", \"h\", \"i\"]"), "operators");
	refused(with("\"operators\": \"csvadmin\""), "operators");
	refused(with("\"operators\": [\"ok\", \"-bad\"]"), "operators[1]");
	refused(with("\"operators\": [\"1st\"]"), "operators[0]");
	refused(with("\"operators\": [\"a b\"]"), "operators[0]");
	refused(with("\"operators\": [7]"), "operators[0]");
	refused(with("\"operators\": [\"abcdefghijklmnopqrstuvwxyz0123456\"]"), "operators[0]");
}
END_TEST

START_TEST(test_nics)
{
	struct vmdef d;
	accepted("\"nics\": [{\"mac\": \"52:54:00:12:34:56\"}, {\"mac\": \"52:54:00:AB:cd:EF\"}]", &d);
	ck_assert_uint_eq(d.nnics, 2);
	ck_assert_str_eq(d.nics[0].mac, "52:54:00:12:34:56");
	ck_assert_str_eq(d.nics[1].mac, "52:54:00:ab:cd:ef");
	refused(with("\"nics\": {\"mac\": \"52:54:00:12:34:56\"}"), "nics");
	refused(with("\"nics\": [\"52:54:00:12:34:56\"]"), "nics[0]");
	refused(with("\"nics\": [{}]"), "nics[0].mac");
	refused(with("\"nics\": [{\"mac\": \"52:54:00:12:34\"}]"), "nics[0].mac");
	refused(with("\"nics\": [{\"mac\": \"52-54-00-12-34-56\"}]"), "nics[0].mac");
	refused(with("\"nics\": [{\"mac\": \"52:54:00:12:34:5g\"}]"), "nics[0].mac");
	refused(with("\"nics\": [{\"mac\": \"01:00:5e:00:00:01\"}]"), "nics[0].mac");
	refused(with("\"nics\": [{\"mac\": \"00:00:00:00:00:00\"}]"), "nics[0].mac");
	refused(with("\"nics\": [{\"mac\": \"52:54:00:12:34:56\"}, {\"mac\": \"52:54:00:12:34:56\"}]"), "nics[1].mac");
	refused(with("\"nics\": [{\"mac\": \"52:54:00:12:34:56\", \"model\": \"e1000\"}]"), "nics[0].model");
	char many[600] = "\"nics\": [";
	for (int i = 0; i < 9; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "%s{\"mac\": \"52:54:00:00:00:0%d\"}",
			 i ? ", " : "", i + 1);
	strcat(many, "]");
	refused(with(many), "nics");
}
END_TEST

START_TEST(test_check_disk)
{
	char err[512], path[256];
	snprintf(path, sizeof(path), "%s/none.raw", dir);
	ck_assert_int_eq(vmdef_check_disk(path, "file", err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "\"file\"") && strstr(err, "none.raw"), "%s", err);
	write_file("d.raw", "");
	snprintf(path, sizeof(path), "%s/d.raw", dir);
	ck_assert_int_eq(truncate(path, 1 << 20), 0);
	ck_assert_msg(vmdef_check_disk(path, "file", err, sizeof(err)) == 0, "%s", err);
	ck_assert(vmdef_format_ok("vhdx"));
	ck_assert(!vmdef_format_ok("vmdk"));
}
END_TEST

START_TEST(test_store)
{
	struct vmdef d;
	char err[512], path[256];
	struct json_object *o = json_tokener_parse("{\"name\": \"vm1\", \"vcpus\": 1, \"memory_mb\": 64, \"kernel\": \"k\"}");
	ck_assert_msg(vmstore_write(dir, "vm1", o, false, err, sizeof(err)) == 0, "%s", err);
	ck_assert_msg(vmdef_load(dir, "vm1", &d, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(d.vcpus, 1);
	ck_assert_int_eq(vmstore_write(dir, "vm1", o, false, err, sizeof(err)), -EEXIST);
	ck_assert_msg(strstr(err, "replace"), "%s", err);
	json_object_object_add(o, "vcpus", json_object_new_int(3));
	ck_assert_msg(vmstore_write(dir, "vm1", o, true, err, sizeof(err)) == 0, "%s", err);
	ck_assert_msg(vmdef_load(dir, "vm1", &d, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(d.vcpus, 3);
	json_object_put(o);
	write_file("vm1.state", "saved");
	ck_assert_msg(vmstore_remove(dir, "vm1", err, sizeof(err)) == 0, "%s", err);
	snprintf(path, sizeof(path), "%s/vm1.state", dir);
	ck_assert_int_eq(access(path, F_OK), -1);
	ck_assert_int_eq(vmdef_load(dir, "vm1", &d, err, sizeof(err)), -ENOENT);
	ck_assert_int_eq(vmstore_remove(dir, "vm1", err, sizeof(err)), -ENOENT);
	/* No temporary file is left behind. */
	snprintf(path, sizeof(path), "ls %s | grep -q tmp", dir);
	ck_assert_int_ne(system(path), 0);
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
	tcase_add_test(tc, test_policy_defaults);
	tcase_add_test(tc, test_anti_affinity);
	tcase_add_test(tc, test_restart);
	tcase_add_test(tc, test_failback);
	tcase_add_test(tc, test_migration_kind);
	tcase_add_test(tc, test_cpu_compat);
	tcase_add_test(tc, test_operators);
	tcase_add_test(tc, test_nics);
	tcase_add_test(tc, test_check_disk);
	tcase_add_test(tc, test_store);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
