/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The QMP client against a fake QEMU (a thread on a unix socket) that
 * greets, wants qmp_capabilities first, answers by id, sends events in
 * between, refuses a command, never answers another, answers a third out
 * of order, and hangs up on request: replies go to their commands, a
 * timed-out call's late reply confuses nothing, waiting commands learn of
 * the broken connection. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "qmp.h"

static char dir[64], path[100];
static int listen_fd = -1;
static pthread_t server;

static void say(FILE *f, const char *text)
{
	fprintf(f, "%s\r\n", text);
	fflush(f);
}

/* The fake QEMU: one connection, then it ends. */
static void *serve(void *arg)
{
	(void)arg;
	int fd = accept(listen_fd, NULL, NULL);
	if (fd < 0)
		return NULL;
	FILE *in = fdopen(fd, "r"), *out = fdopen(dup(fd), "w");
	char line[4096], held[64] = "";
	bool caps = false;
	say(out, "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}}, \"capabilities\": []}}");
	while (fgets(line, sizeof(line), in)) {
		struct json_object *m = json_tokener_parse(line), *v, *id = NULL;
		if (!m)
			break;
		const char *cmd = json_object_object_get_ex(m, "execute", &v) ? json_object_get_string(v) : "";
		json_object_object_get_ex(m, "id", &id);
		char ids[64];
		snprintf(ids, sizeof(ids), "%s", id ? json_object_to_json_string(id) : "null");
		char reply[512];
		if (!caps && strcmp(cmd, "qmp_capabilities") != 0) {
			snprintf(reply, sizeof(reply), "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"Expecting "
				 "capabilities negotiation with 'qmp_capabilities'\"}, \"id\": %s}", ids);
			say(out, reply);
		} else if (strcmp(cmd, "qmp_capabilities") == 0) {
			caps = true;
			snprintf(reply, sizeof(reply), "{\"return\": {}, \"id\": %s}", ids);
			say(out, reply);
		} else if (strcmp(cmd, "query-status") == 0) {
			say(out, "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"RESUME\"}");
			snprintf(reply, sizeof(reply), "{\"return\": {\"status\": \"running\", \"running\": true}, \"id\": %s}",
				 ids);
			say(out, reply);
		} else if (strcmp(cmd, "bad") == 0) {
			snprintf(reply, sizeof(reply), "{\"error\": {\"class\": \"GenericError\", \"desc\": \"no such "
				 "thing\"}, \"id\": %s}", ids);
			say(out, reply);
		} else if (strcmp(cmd, "hold") == 0) {
			snprintf(held, sizeof(held), "%s", ids);  /* answered after the next */
		} else if (strcmp(cmd, "hang") == 0) {
			/* never answered */
		} else if (strcmp(cmd, "hangup") == 0) {
			json_object_put(m);
			break;
		} else {
			json_object_object_get_ex(m, "arguments", &v);
			snprintf(reply, sizeof(reply), "{\"return\": {\"echo\": \"%s\"}, \"id\": %s}", cmd, ids);
			say(out, reply);
			if (held[0]) {
				snprintf(reply, sizeof(reply), "{\"return\": {\"echo\": \"hold\"}, \"id\": %s}", held);
				say(out, reply);
				held[0] = '\0';
			}
		}
		json_object_put(m);
	}
	fclose(in);
	fclose(out);
	return NULL;
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test-qmp.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/q.sock", dir);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(listen_fd, 0);
	ck_assert_int_eq(bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(listen_fd, 4), 0);
	ck_assert_int_eq(pthread_create(&server, NULL, serve, NULL), 0);
}

static void teardown(void)
{
	shutdown(listen_fd, SHUT_RDWR);
	close(listen_fd);
	pthread_join(server, NULL);
	unlink(path);
	rmdir(dir);
}

static int events;
static void on_event(void *data, const char *event, struct json_object *ed)
{
	(void)data;
	(void)ed;
	if (strcmp(event, "RESUME") == 0)
		events++;
}

struct got {
	int calls;
	int error;
	char echo[64];
};

static void on_reply(void *data, int error, struct json_object *ret, const char *desc)
{
	struct got *g = data;
	struct json_object *v;
	g->calls++;
	g->error = error;
	if (ret && json_object_object_get_ex(ret, "echo", &v))
		snprintf(g->echo, sizeof(g->echo), "%s", json_object_get_string(v));
	else if (desc)
		snprintf(g->echo, sizeof(g->echo), "%s", desc);
}

/* Dispatches until cond or a second passed. */
#define PUMP(q, cond) do { \
	for (int _i = 0; _i < 1000 && !(cond); _i++) { usleep(1000); qmp_dispatch(q); } \
} while (0)

START_TEST(test_calls)
{
	struct qmp *q;
	char err[300];
	struct json_object *ret = NULL, *v;
	ck_assert_msg(qmp_connect(path, 2000, on_event, NULL, &q, err, sizeof(err)) == 0, "%s", err);
	ck_assert(qmp_ready(q));
	events = 0;
	ck_assert_msg(qmp_call(q, "query-status", NULL, 2000, &ret, err, sizeof(err)) == 0, "%s", err);
	ck_assert(json_object_object_get_ex(ret, "status", &v));
	ck_assert_str_eq(json_object_get_string(v), "running");
	json_object_put(ret);
	ck_assert_int_eq(events, 1);
	ck_assert_int_eq(qmp_call(q, "bad", NULL, 2000, NULL, err, sizeof(err)), -EIO);
	ck_assert_msg(strstr(err, "no such thing"), "%s", err);
	/* A call that is never answered times out; the next is fine. */
	ck_assert_int_eq(qmp_call(q, "hang", NULL, 200, NULL, err, sizeof(err)), -ETIMEDOUT);
	ck_assert_msg(qmp_call(q, "echo1", json_object_new_object(), 2000, &ret, err, sizeof(err)) == 0, "%s", err);
	ck_assert(json_object_object_get_ex(ret, "echo", &v));
	ck_assert_str_eq(json_object_get_string(v), "echo1");
	json_object_put(ret);
	qmp_close(q);
}
END_TEST

START_TEST(test_async)
{
	struct qmp *q;
	char err[300];
	struct got held = { 0 }, second = { 0 }, refused = { 0 }, hung = { 0 }, forgotten = { 0 };
	/* Not ready until the greeting is answered. */
	ck_assert_msg(qmp_open(path, on_event, NULL, &q, err, sizeof(err)) == 0, "%s", err);
	ck_assert(!qmp_ready(q));
	ck_assert_int_eq(qmp_send(q, "early", NULL, on_reply, &held), -ENOTCONN);
	PUMP(q, qmp_ready(q));
	ck_assert(qmp_ready(q));
	/* Out of order: "hold" is answered after "second". */
	ck_assert_int_eq(qmp_send(q, "hold", NULL, on_reply, &held), 0);
	ck_assert_int_eq(qmp_send(q, "second", NULL, on_reply, &second), 0);
	ck_assert_int_eq(qmp_send(q, "bad", NULL, on_reply, &refused), 0);
	ck_assert_int_eq(qmp_send(q, "x", NULL, on_reply, &forgotten), 0);
	qmp_forget(q, &forgotten);
	PUMP(q, held.calls && second.calls && refused.calls);
	ck_assert_int_eq(held.calls, 1);
	ck_assert_str_eq(held.echo, "hold");
	ck_assert_int_eq(second.calls, 1);
	ck_assert_str_eq(second.echo, "second");
	ck_assert_int_eq(refused.error, -EIO);
	ck_assert_str_eq(refused.echo, "no such thing");
	PUMP(q, false);
	ck_assert_int_eq(forgotten.calls, 0);
	/* The server hangs up: the waiting command learns it. */
	ck_assert_int_eq(qmp_send(q, "hang", NULL, on_reply, &hung), 0);
	ck_assert_uint_eq(qmp_oldest_wait_ms(q, 0), 0);
	ck_assert_int_eq(qmp_send(q, "hangup", NULL, NULL, NULL), 0);
	PUMP(q, !qmp_alive(q));
	ck_assert(!qmp_alive(q));
	ck_assert_int_eq(qmp_dispatch(q), -ECONNRESET);
	ck_assert_int_eq(hung.calls, 1);
	ck_assert_int_eq(hung.error, -ECONNRESET);
	ck_assert_int_eq(qmp_send(q, "more", NULL, NULL, NULL), -ECONNRESET);
	qmp_close(q);
}
END_TEST

START_TEST(test_nobody)
{
	struct qmp *q;
	char err[300], other[160];
	snprintf(other, sizeof(other), "%s/none.sock", dir);
	ck_assert_int_eq(qmp_open(other, NULL, NULL, &q, err, sizeof(err)), -ENOENT);
	ck_assert_msg(strstr(err, "none.sock"), "%s", err);
	/* Let the fake QEMU's accept end. */
	ck_assert_int_eq(qmp_connect(path, 2000, NULL, NULL, &q, err, sizeof(err)), 0);
	qmp_close(q);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vmagent-qmp");
	TCase *tc = tcase_create("qmp");
	tcase_set_timeout(tc, 20);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_calls);
	tcase_add_test(tc, test_async);
	tcase_add_test(tc, test_nobody);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
