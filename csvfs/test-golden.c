/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The golden image, made by an earlier build of the format, must still
 * check clean and hold the known tree byte for byte: a format change that
 * breaks existing volumes fails here. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checker.h"
#include "test-volume-util.h"

static const char *golden_path;

/* Reads the gzip'ed image into a memory device. */
static struct csv_blockdev *load_golden(void)
{
	char cmd[4200];
	size_t cap = 64u << 20, len = 0, n;
	uint8_t *buf = malloc(cap);
	ck_assert_ptr_nonnull(buf);
	snprintf(cmd, sizeof(cmd), "gzip -dc '%s'", golden_path);
	FILE *p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	while ((n = fread(buf + len, 1, cap - len, p)) > 0)
		len += n;
	ck_assert_int_eq(pclose(p), 0);
	ck_assert_uint_gt(len, 1u << 20);
	struct csv_blockdev *bd;
	ck_assert_int_eq(blockdev_open_mem_from(buf, len, &bd), 0);
	free(buf);
	return bd;
}

START_TEST(test_golden_checks_clean)
{
	struct csv_blockdev *bd = load_golden();
	struct fsck_options o = { .repair = false };
	char *out = NULL;
	size_t len;
	FILE *f = open_memstream(&out, &len);
	int status = fsck_volume(bd, &o, f);
	fclose(f);
	ck_assert_msg(status == FSCK_OK, "fsck -n of the golden image: status %d\n%s", status, out);
	free(out);
	blockdev_close(bd);
}
END_TEST

START_TEST(test_golden_holds_the_tree)
{
	struct csv_blockdev *bd = load_golden();
	char err[256] = "";
	ck_assert_msg(tvol_verify(bd, err, sizeof(err)) == 0, "golden image: %s", err);
	blockdev_close(bd);
}
END_TEST

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s GOLDEN.img.gz\n", argv[0]);
		return 2;
	}
	golden_path = argv[1];
	Suite *s = suite_create("golden");
	TCase *tc = tcase_create("golden");
	tcase_add_test(tc, test_golden_checks_clean);
	tcase_add_test(tc, test_golden_holds_the_tree);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
