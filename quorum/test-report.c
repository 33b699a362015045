/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The CPG report of a node's own heartbeat writes: encode, decode, and
 * the refusal of what is cut short, too long, foreign or too new. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

static void sample(struct q_report_vol *v, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		memset(v[i].uuid, (int)(0x10 + i), 16);
		v[i].write_latency_us = 1000 * (i + 1) + 7;
		v[i].write_ok = i % 2 == 0;
	}
}

START_TEST(test_roundtrip)
{
	struct q_report_vol in[3], out[Q_MAX_VOLUMES];
	uint8_t buf[Q_REPORT_MAX_SIZE];
	size_t len;
	uint32_t node, n;
	sample(in, 3);
	ck_assert_int_eq(q_report_encode(7, in, 3, buf, sizeof(buf), &len), 0);
	ck_assert_uint_eq(len, 16 + 3 * 24);
	/* The layout: magic "CSQR", version, count, node id, little-endian. */
	ck_assert_int_eq(memcmp(buf, "CSQR", 4), 0);
	ck_assert_uint_eq(buf[4], 1);
	ck_assert_uint_eq(buf[6], 3);
	ck_assert_uint_eq(buf[8], 7);
	ck_assert_int_eq(q_report_decode(buf, len, &node, out, Q_MAX_VOLUMES, &n), 0);
	ck_assert_uint_eq(node, 7);
	ck_assert_uint_eq(n, 3);
	for (uint32_t i = 0; i < 3; i++) {
		ck_assert_int_eq(memcmp(out[i].uuid, in[i].uuid, 16), 0);
		ck_assert_uint_eq(out[i].write_latency_us, in[i].write_latency_us);
		ck_assert_int_eq(out[i].write_ok, in[i].write_ok);
	}
	/* No volume at all is a valid report. */
	ck_assert_int_eq(q_report_encode(7, in, 0, buf, sizeof(buf), &len), 0);
	ck_assert_int_eq(q_report_decode(buf, len, &node, out, Q_MAX_VOLUMES, &n), 0);
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(test_rejects)
{
	struct q_report_vol in[2], out[Q_MAX_VOLUMES];
	uint8_t buf[Q_REPORT_MAX_SIZE + 8];
	size_t len;
	uint32_t node = 99, n = 99;
	sample(in, 2);
	ck_assert_int_eq(q_report_encode(3, in, 2, buf, sizeof(buf), &len), 0);
	/* Every shorter length, and one byte more. */
	for (size_t l = 0; l < len; l++)
		ck_assert_int_eq(q_report_decode(buf, l, &node, out, Q_MAX_VOLUMES, &n), -EBADMSG);
	ck_assert_int_eq(q_report_decode(buf, len + 1, &node, out, Q_MAX_VOLUMES, &n), -EBADMSG);
	/* A count that does not match the length. */
	buf[6] = 3;
	ck_assert_int_eq(q_report_decode(buf, len, &node, out, Q_MAX_VOLUMES, &n), -EBADMSG);
	buf[6] = 2;
	/* Another version. */
	buf[4] = 2;
	ck_assert_int_eq(q_report_decode(buf, len, &node, out, Q_MAX_VOLUMES, &n), -EPROTONOSUPPORT);
	buf[4] = 1;
	/* Not a report. */
	buf[0] = 'X';
	ck_assert_int_eq(q_report_decode(buf, len, &node, out, Q_MAX_VOLUMES, &n), -EBADMSG);
	/* Outputs untouched on failure. */
	ck_assert_uint_eq(node, 99);
	ck_assert_uint_eq(n, 99);
	/* A buffer too small to encode into. */
	ck_assert_int_eq(q_report_encode(3, in, 2, buf, 16 + 24, &len), -ENOBUFS);
}
END_TEST

START_TEST(test_more_than_room)
{
	struct q_report_vol in[4], out[2];
	uint8_t buf[Q_REPORT_MAX_SIZE];
	size_t len;
	uint32_t node, n;
	sample(in, 4);
	ck_assert_int_eq(q_report_encode(5, in, 4, buf, sizeof(buf), &len), 0);
	/* The caller's room bounds what is filled. */
	ck_assert_int_eq(q_report_decode(buf, len, &node, out, 2, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(out[1].write_latency_us, in[1].write_latency_us);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("quorum-report");
	TCase *tc = tcase_create("report");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_rejects);
	tcase_add_test(tc, test_more_than_room);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
