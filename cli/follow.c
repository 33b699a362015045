/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Following the state of csv-rmd after a request (lib/rmd-ipc.h): the
 * requests that change something return once the change is agreed, and the
 * commands that wait for its outcome ask for the state every
 * FOLLOW_POLL_MS until their step says it is over, or the time runs out. */
#include <errno.h>
#include <time.h>

#include "csvctl.h"

#define FOLLOW_POLL_MS 200

double elapsed_s(uint64_t t0)
{
	return (double)(monotonic_ns() - t0) / 1e9;
}

/* Sleeps one polling period. */
static void follow_pause(void)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = FOLLOW_POLL_MS * 1000000L };
	nanosleep(&ts, NULL);
}

int request_say(struct rmd_conn *r, const struct ctl_args *a, int32_t id, struct json_object *body, const char *what,
		bool waits)
{
	struct json_object *reply = NULL;
	if (rmd_conn_request(r, id, body, what, &reply) < 0)
		return EXIT_FAIL;
	const char *message = gets(reply, "message", "");
	if (a->json && !waits)
		print_json(reply);
	else if (message[0])
		fprintf(a->json ? stderr : stdout, "%s\n", message);
	fflush(stdout);
	json_object_put(reply);
	return EXIT_OK;
}

int follow(struct follow *f)
{
	struct json_object *s;

	f->now[0] = '\0';
	for (;;) {
		int r = rmd_conn_state(f->r, &s);
		if (r < 0)
			return r;
		r = f->step(f, f->state, s);
		json_object_put(f->state);
		f->state = s;
		if (r != 0)
			return r > 0 ? 0 : r;
		if (elapsed_s(f->t0) >= f->wait_s) {
			fprintf(stderr, PROG ": %s after %g s%s%s\n", f->goal, f->wait_s, f->now[0] ? ": " : "", f->now);
			return -ETIMEDOUT;
		}
		follow_pause();
	}
}
