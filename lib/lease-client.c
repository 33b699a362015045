/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "lease-client.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <qb/qbipcc.h>
#include <qb/qbipc_common.h>

#include "quorumd-ipc.h"
#include "util.h"

/* The thread wakes this often to check the deadline. */
#define LC_POLL_MS 50
/* A lost csv-quorumd is looked for again this often. */
#define LC_RETRY_MS 500
/* A request waits this long for its reply. */
#define LC_REQUEST_MS 5000
#define LC_MSG_MAX 4096

struct lease_client {
	char ipc_name[108];
	char body[512];                 /* the hold request: {"role", "what"} */
	struct lease_client_ops ops;
	void *ctx;
	pthread_t thread;

	pthread_mutex_t lock;
	pthread_cond_t changed;
	bool stop;
	uint64_t deadline_ms;           /* I/O allowed before this; 0: not */
	bool fenced;                    /* ops->fence was called, resume not yet */
	char why[320];                  /* why the lease is not valid */

	qb_ipcc_connection_t *c;        /* the thread's own */
};

/* Monotonic milliseconds. */
static uint64_t now_ms(void)
{
	return monotonic_ns() / 1000000u;
}

static void set_why(struct lease_client *lc, const char *why)
{
	pthread_mutex_lock(&lc->lock);
	snprintf(lc->why, sizeof(lc->why), "%s", why);
	pthread_mutex_unlock(&lc->lock);
}

/* Applies a lease message (JSON) received at t. Returns whether it asks
 * for a fence. */
static bool apply(struct lease_client *lc, const char *text, uint64_t t)
{
	struct json_object *o = json_tokener_parse(text), *v;
	bool valid = false, fence = false;
	int64_t valid_ms = 0;
	const char *reason = "";
	if (o && json_object_object_get_ex(o, "valid", &v))
		valid = json_object_get_boolean(v);
	if (o && json_object_object_get_ex(o, "valid_ms", &v))
		valid_ms = json_object_get_int64(v);
	if (o && json_object_object_get_ex(o, "fence", &v))
		fence = json_object_get_boolean(v);
	if (o && json_object_object_get_ex(o, "reason", &v))
		reason = json_object_get_string(v);
	pthread_mutex_lock(&lc->lock);
	if (!o) {
		snprintf(lc->why, sizeof(lc->why), "csv-quorumd sent a lease message that is not JSON");
	} else if (valid && valid_ms > 0 && !fence) {
		lc->deadline_ms = t + (uint64_t)valid_ms;
		lc->why[0] = '\0';
	} else {
		lc->deadline_ms = 0;
		snprintf(lc->why, sizeof(lc->why), "%s", fence && reason[0] ? reason : "the lease of this node is not valid");
	}
	pthread_cond_broadcast(&lc->changed);
	pthread_mutex_unlock(&lc->lock);
	json_object_put(o);
	return fence;
}

/* Sends request id and takes its reply; -errno on failure. */
static int request(struct lease_client *lc, int32_t id, const char *body, char *buf, size_t len)
{
	struct qb_ipc_request_header h = { .id = id };
	size_t blen = body ? strlen(body) : 0;
	struct iovec iov[2] = {
		{ .iov_base = &h, .iov_len = sizeof(h) },
		{ .iov_base = (void *)body, .iov_len = blen },
	};
	h.size = (int32_t)(sizeof(h) + blen);
	ssize_t n = qb_ipcc_sendv_recv(lc->c, iov, blen ? 2 : 1, buf, len - 1, LC_REQUEST_MS);
	if (n < 0)
		return (int)n;
	struct qb_ipc_response_header r;
	if ((size_t)n < sizeof(r))
		return -EBADMSG;
	memcpy(&r, buf, sizeof(r));
	if (r.error < 0)
		return r.error;
	buf[n] = '\0';
	return (int)sizeof(r);
}

static void disconnect(struct lease_client *lc)
{
	if (lc->c)
		qb_ipcc_disconnect(lc->c);
	lc->c = NULL;
}

static bool connect_hold(struct lease_client *lc, char *buf)
{
	char why[300];
	lc->c = qb_ipcc_connect(lc->ipc_name, CSVQ_IPC_MAX_MSG);
	if (!lc->c) {
		snprintf(why, sizeof(why), "csv-quorumd does not answer on IPC endpoint '%s' (is it running?)",
			 lc->ipc_name);
		set_why(lc, why);
		return false;
	}
	uint64_t t = now_ms();
	int r = request(lc, CSVQ_REQ_LEASE_HOLD, lc->body, buf, LC_MSG_MAX);
	if (r < 0) {
		snprintf(why, sizeof(why), "csv-quorumd refuses to give this process the lease: %s%s", strerror(-r),
			 r == -EPERM ? " (only root or the cluster admin group may hold it)" : "");
		set_why(lc, why);
		disconnect(lc);
		return false;
	}
	apply(lc, buf + r, t);
	return true;
}

/* Calls ops->fence once per loss, then tells csv-quorumd. */
static void do_fence(struct lease_client *lc)
{
	char why[320];
	pthread_mutex_lock(&lc->lock);
	bool first = !lc->fenced;
	lc->fenced = true;
	lc->deadline_ms = 0;
	snprintf(why, sizeof(why), "%s", lc->why[0] ? lc->why : "the lease of this node ran out");
	pthread_mutex_unlock(&lc->lock);
	if (!first)
		return;
	lc->ops.fence(lc->ctx, why);
	if (lc->c) {
		char *buf = malloc(LC_MSG_MAX);
		if (buf) {
			int r = request(lc, CSVQ_REQ_LEASE_STOPPED, NULL, buf, LC_MSG_MAX);
			if (r < 0)
				disconnect(lc);
			free(buf);
		}
	}
}

static void maybe_resume(struct lease_client *lc)
{
	pthread_mutex_lock(&lc->lock);
	bool resume = lc->fenced && lc->deadline_ms > now_ms();
	if (resume)
		lc->fenced = false;
	pthread_mutex_unlock(&lc->lock);
	if (resume && lc->ops.resume)
		lc->ops.resume(lc->ctx);
}

static void *lease_thread(void *arg)
{
	struct lease_client *lc = arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	char *buf = malloc(LC_MSG_MAX);
	uint64_t next_try = 0;
	for (;;) {
		pthread_mutex_lock(&lc->lock);
		bool stop = lc->stop;
		uint64_t deadline = lc->deadline_ms;
		bool fenced = lc->fenced;
		pthread_mutex_unlock(&lc->lock);
		if (stop || !buf)
			break;
		uint64_t t = now_ms();
		if (!lc->c && t >= next_try) {
			if (!connect_hold(lc, buf))
				next_try = t + LC_RETRY_MS;
			maybe_resume(lc);
			continue;
		}
		/* The lease ran out unrenewed: fence, whatever the reason. */
		if (!fenced && deadline && t >= deadline) {
			set_why(lc, lc->c ? "the lease was not renewed in time" : "csv-quorumd went away");
			do_fence(lc);
			continue;
		}
		if (!lc->c) {
			usleep(LC_POLL_MS * 1000);
			continue;
		}
		ssize_t n = qb_ipcc_event_recv(lc->c, buf, LC_MSG_MAX - 1, LC_POLL_MS);
		t = now_ms();
		if (n == -ETIMEDOUT || n == -EAGAIN)
			continue;
		if (n < 0 || !qb_ipcc_is_connected(lc->c)) {
			set_why(lc, "lost the connection to csv-quorumd");
			disconnect(lc);
			next_try = t + LC_RETRY_MS;
			continue;
		}
		struct qb_ipc_response_header r;
		if ((size_t)n < sizeof(r))
			continue;
		memcpy(&r, buf, sizeof(r));
		if (r.id != CSVQ_LEASE)
			continue;
		buf[n] = '\0';
		if (apply(lc, buf + sizeof(r), t))
			do_fence(lc);
		else
			maybe_resume(lc);
	}
	disconnect(lc);
	free(buf);
	return NULL;
}

int lease_client_start(const char *ipc_name, const char *role, const char *what,
		       const struct lease_client_ops *ops, void *ctx, struct lease_client **ret)
{
	struct lease_client *lc = calloc(1, sizeof(*lc));
	pthread_condattr_t ca;
	if (!lc)
		return -ENOMEM;
	if (strlen(ipc_name) >= sizeof(lc->ipc_name)) {
		free(lc);
		return -ENAMETOOLONG;
	}
	snprintf(lc->ipc_name, sizeof(lc->ipc_name), "%s", ipc_name);
	struct json_object *o = json_object_new_object();
	if (!o) {
		free(lc);
		return -ENOMEM;
	}
	json_object_object_add(o, "role", json_object_new_string(role));
	json_object_object_add(o, "what", json_object_new_string(what));
	snprintf(lc->body, sizeof(lc->body), "%s", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	lc->ops = *ops;
	lc->ctx = ctx;
	snprintf(lc->why, sizeof(lc->why), "no word from csv-quorumd yet");
	pthread_mutex_init(&lc->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&lc->changed, &ca);
	pthread_condattr_destroy(&ca);
	int r = pthread_create(&lc->thread, NULL, lease_thread, lc);
	if (r != 0) {
		pthread_cond_destroy(&lc->changed);
		pthread_mutex_destroy(&lc->lock);
		free(lc);
		return -r;
	}
	*ret = lc;
	return 0;
}

bool lease_client_valid(struct lease_client *lc)
{
	pthread_mutex_lock(&lc->lock);
	bool ok = !lc->fenced && lc->deadline_ms > now_ms();
	pthread_mutex_unlock(&lc->lock);
	return ok;
}

int lease_client_wait(struct lease_client *lc, unsigned timeout_ms, char *why, size_t whylen)
{
	uint64_t until = now_ms() + timeout_ms;
	struct timespec ts = { .tv_sec = (time_t)(until / 1000u), .tv_nsec = (long)(until % 1000u) * 1000000L };
	pthread_mutex_lock(&lc->lock);
	int r = 0;
	for (;;) {
		uint64_t t = now_ms();
		if (!lc->fenced && lc->deadline_ms > t)
			break;
		if (t >= until) {
			r = -ETIMEDOUT;
			break;
		}
		pthread_cond_timedwait(&lc->changed, &lc->lock, &ts);
	}
	if (r < 0 && why)
		snprintf(why, whylen, "%s", lc->why[0] ? lc->why : "the lease of this node is not valid");
	pthread_mutex_unlock(&lc->lock);
	return r;
}

void lease_client_stop(struct lease_client *lc)
{
	if (!lc)
		return;
	pthread_mutex_lock(&lc->lock);
	lc->stop = true;
	pthread_mutex_unlock(&lc->lock);
	pthread_join(lc->thread, NULL);
	pthread_cond_destroy(&lc->changed);
	pthread_mutex_destroy(&lc->lock);
	free(lc);
}
