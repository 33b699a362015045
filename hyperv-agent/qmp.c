/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "qmp.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

/* Commands sent with qmp_send that may wait for their replies at once. */
#define QMP_MAX_WAIT 16
/* A line of QMP longer than this is not from QEMU. */
#define QMP_MAX_LINE (1024 * 1024)

struct qmp_wait {
	uint64_t id;             /* 0: a free slot */
	qmp_reply_fn fn;
	void *data;
	uint64_t sent_ns;
};

struct qmp {
	int fd;
	bool dead;
	bool greeted;
	bool ready;              /* qmp_capabilities answered */
	uint64_t caps_id;        /* the id of our qmp_capabilities */
	bool in_call;
	unsigned delivering;     /* inside a callback: no qmp_call there */
	char *buf;               /* what was read and not delivered yet */
	size_t len, cap;
	uint64_t next_id;
	struct qmp_wait wait[QMP_MAX_WAIT];
	qmp_event_fn on_event;
	void *event_data;
	/* The command that qmp_call waits for. */
	uint64_t call_id;
	bool call_done;
	int call_error;
	struct json_object *call_ret;
	char call_desc[256];
};

int qmp_fd(const struct qmp *q)
{
	return q->fd;
}

bool qmp_alive(const struct qmp *q)
{
	return !q->dead;
}

bool qmp_ready(const struct qmp *q)
{
	return q->ready && !q->dead;
}

static int send_command(struct qmp *q, const char *cmd, struct json_object *args, uint64_t id, int fd);
static void mark_dead(struct qmp *q);

static void json_putp(struct json_object **o)
{
	json_object_put(*o);
}

/* The "desc" of an error reply, or its whole text. */
static void error_desc(struct json_object *error, char *desc, size_t len)
{
	struct json_object *d;
	if (json_object_object_get_ex(error, "desc", &d) && json_object_is_type(d, json_type_string))
		snprintf(desc, len, "%s", json_object_get_string(d));
	else
		snprintf(desc, len, "%s", json_object_to_json_string_ext(error, JSON_C_TO_STRING_PLAIN));
}

/* Delivers one line; false when it is not a JSON object. */
static bool deliver(struct qmp *q, const char *line)
{
	_cleanup_(json_putp) struct json_object *o = json_tokener_parse(line);
	struct json_object *v, *ret = NULL, *error = NULL;
	if (!o || !json_object_is_type(o, json_type_object))
		return false;
	if (json_object_object_get_ex(o, "QMP", &v)) {
		if (q->greeted)
			return true;
		q->greeted = true;
		q->caps_id = ++q->next_id;
		if (send_command(q, "qmp_capabilities", NULL, q->caps_id, -1) < 0)
			mark_dead(q);
		return true;
	}
	if (json_object_object_get_ex(o, "event", &v)) {
		struct json_object *data = NULL;
		json_object_object_get_ex(o, "data", &data);
		if (q->on_event && json_object_is_type(v, json_type_string)) {
			q->delivering++;
			q->on_event(q->event_data, json_object_get_string(v), data);
			q->delivering--;
		}
		return true;
	}
	bool has_ret = json_object_object_get_ex(o, "return", &ret);
	bool has_error = json_object_object_get_ex(o, "error", &error);
	if (!has_ret && !has_error)
		return true;  /* something newer than this client: skipped */
	uint64_t id = 0;
	if (json_object_object_get_ex(o, "id", &v) && json_object_is_type(v, json_type_int))
		id = (uint64_t)json_object_get_int64(v);
	char desc[256] = "";
	if (has_error)
		error_desc(error, desc, sizeof(desc));
	if (id && id == q->caps_id) {
		q->caps_id = 0;
		if (has_error)
			return false;  /* QEMU refuses commands: useless */
		q->ready = true;
		return true;
	}
	if (id && id == q->call_id) {
		q->call_done = true;
		q->call_error = has_error ? -EIO : 0;
		snprintf(q->call_desc, sizeof(q->call_desc), "%s", desc);
		q->call_ret = has_ret ? json_object_get(ret) : NULL;
		return true;
	}
	for (unsigned i = 0; id && i < QMP_MAX_WAIT; i++) {
		struct qmp_wait *w = &q->wait[i];
		if (w->id != id)
			continue;
		struct qmp_wait copy = *w;
		memset(w, 0, sizeof(*w));  /* free before the callback, which may send */
		if (copy.fn) {
			q->delivering++;
			copy.fn(copy.data, has_error ? -EIO : 0, has_ret ? ret : NULL, desc);
			q->delivering--;
		}
		break;
	}
	return true;  /* a reply nobody waits for any more: dropped */
}

/* Fails every command still waiting (the connection broke). */
static void fail_waiting(struct qmp *q)
{
	for (unsigned i = 0; i < QMP_MAX_WAIT; i++) {
		struct qmp_wait w = q->wait[i];
		if (!w.id)
			continue;
		memset(&q->wait[i], 0, sizeof(q->wait[i]));
		if (w.fn) {
			q->delivering++;
			w.fn(w.data, -ECONNRESET, NULL, "the QMP connection broke");
			q->delivering--;
		}
	}
}

static void mark_dead(struct qmp *q)
{
	if (q->dead)
		return;
	q->dead = true;
	fail_waiting(q);
}

/* Reads what there is and delivers the complete lines. 0, or -ECONNRESET. */
static int read_some(struct qmp *q)
{
	for (;;) {
		if (q->dead)
			return -ECONNRESET;
		if (q->cap - q->len < 4096) {
			if (q->cap >= QMP_MAX_LINE) {
				mark_dead(q);
				return -ECONNRESET;
			}
			size_t cap = q->cap ? q->cap * 2 : 16384;
			char *b = realloc(q->buf, cap);
			if (!b) {
				mark_dead(q);
				return -ECONNRESET;
			}
			q->buf = b;
			q->cap = cap;
		}
		ssize_t n = read(q->fd, q->buf + q->len, q->cap - q->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0) {
			mark_dead(q);
			return -ECONNRESET;
		}
		q->len += (size_t)n;
		q->buf[q->len] = '\0';
		char *start = q->buf, *nl;
		while ((nl = memchr(start, '\n', q->len - (size_t)(start - q->buf)))) {
			*nl = '\0';
			if (nl > start && nl[-1] == '\r')
				nl[-1] = '\0';
			if (*start && !deliver(q, start)) {
				mark_dead(q);
				return -ECONNRESET;
			}
			start = nl + 1;
			if (q->dead)
				return -ECONNRESET;
		}
		q->len -= (size_t)(start - q->buf);
		memmove(q->buf, start, q->len);
	}
}

int qmp_dispatch(struct qmp *q)
{
	return read_some(q);
}

/* Waits up to timeout_ms for cond; reading and delivering meanwhile. */
static int wait_until(struct qmp *q, bool *cond, int timeout_ms)
{
	uint64_t until = monotonic_ns() + (uint64_t)timeout_ms * 1000000u;
	for (;;) {
		int r = read_some(q);
		if (*cond)
			return 0;
		if (r < 0)
			return r;
		uint64_t now = monotonic_ns();
		if (now >= until)
			return -ETIMEDOUT;
		struct pollfd p = { .fd = q->fd, .events = POLLIN };
		int left = (int)((until - now + 999999u) / 1000000u);
		if (poll(&p, 1, left) < 0 && errno != EINTR) {
			mark_dead(q);
			return -ECONNRESET;
		}
	}
}

/* Sends text from done on, with fd (-1: none) as SCM_RIGHTS on its first
 * byte. */
static ssize_t send_some(struct qmp *q, const char *text, size_t len, size_t done, int fd)
{
	if (fd < 0 || done > 0)
		return send(q->fd, text + done, len - done, MSG_NOSIGNAL);
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = (void *)text, .iov_len = len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			    .msg_controllen = sizeof(control.buf) };
	memset(control.buf, 0, sizeof(control.buf));
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(q->fd, &m, MSG_NOSIGNAL);
}

/* Writes all of text (with fd, -1: none); the socket is non-blocking, so a
 * full buffer waits a little. */
static int send_text(struct qmp *q, const char *text, size_t len, int fd)
{
	size_t done = 0;
	uint64_t until = monotonic_ns() + 1000u * 1000000u;
	while (done < len) {
		ssize_t n = send_some(q, text, len, done, fd);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && monotonic_ns() < until) {
			struct pollfd p = { .fd = q->fd, .events = POLLOUT };
			poll(&p, 1, 100);
			continue;
		}
		mark_dead(q);
		return -ECONNRESET;
	}
	return 0;
}

/* Sends cmd with args (consumed), id and fd (-1: none). */
static int send_command(struct qmp *q, const char *cmd, struct json_object *args, uint64_t id, int fd)
{
	_cleanup_(json_putp) struct json_object *m = json_object_new_object();
	if (!m) {
		json_object_put(args);
		return -ENOMEM;
	}
	json_object_object_add(m, "execute", json_object_new_string(cmd));
	if (args)
		json_object_object_add(m, "arguments", args);
	json_object_object_add(m, "id", json_object_new_uint64(id));
	const char *text = json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN);
	if (!text)
		return -ENOMEM;
	size_t len = strlen(text);
	_cleanup_free_ char *line = malloc(len + 2);
	if (!line)
		return -ENOMEM;
	memcpy(line, text, len);
	line[len] = '\n';
	return send_text(q, line, len + 1, fd);
}

int qmp_call(struct qmp *q, const char *cmd, struct json_object *args, int timeout_ms, struct json_object **ret,
	     char *err, size_t errlen)
{
	return qmp_call_fd(q, cmd, args, -1, timeout_ms, ret, err, errlen);
}

int qmp_call_fd(struct qmp *q, const char *cmd, struct json_object *args, int fd, int timeout_ms,
		struct json_object **ret, char *err, size_t errlen)
{
	if (q->dead || !q->ready || q->in_call || q->delivering) {
		json_object_put(args);
		snprintf(err, errlen, "%s: %s", cmd, q->dead ? "the QMP connection is broken" :
			 !q->ready ? "QEMU has not accepted QMP commands yet" :
			 "called from a QMP callback or while another command is waited for");
		return q->dead ? -ECONNRESET : !q->ready ? -ENOTCONN : -EBUSY;
	}
	uint64_t id = ++q->next_id;
	int r = send_command(q, cmd, args, id, fd);
	if (r < 0) {
		snprintf(err, errlen, "%s: cannot send the command over QMP: %s", cmd, strerror(-r));
		return r;
	}
	q->in_call = true;
	q->call_id = id;
	q->call_done = false;
	q->call_ret = NULL;
	r = wait_until(q, &q->call_done, timeout_ms);
	q->in_call = false;
	q->call_id = 0;
	if (r == -ETIMEDOUT) {
		snprintf(err, errlen, "%s: QEMU did not answer over QMP within %d ms", cmd, timeout_ms);
		return r;
	}
	if (r < 0) {
		snprintf(err, errlen, "%s: the QMP connection broke (QEMU exited?)", cmd);
		return r;
	}
	if (q->call_error < 0) {
		json_object_put(q->call_ret);
		snprintf(err, errlen, "%s: %s", cmd, q->call_desc);
		return q->call_error;
	}
	if (ret)
		*ret = q->call_ret;
	else
		json_object_put(q->call_ret);
	q->call_ret = NULL;
	return 0;
}

int qmp_send(struct qmp *q, const char *cmd, struct json_object *args, qmp_reply_fn fn, void *data)
{
	if (q->dead || !q->ready) {
		json_object_put(args);
		return q->dead ? -ECONNRESET : -ENOTCONN;
	}
	struct qmp_wait *w = NULL;
	for (unsigned i = 0; i < QMP_MAX_WAIT && !w; i++)
		if (!q->wait[i].id)
			w = &q->wait[i];
	if (!w) {
		json_object_put(args);
		return -EBUSY;
	}
	uint64_t id = ++q->next_id;
	int r = send_command(q, cmd, args, id, -1);
	if (r < 0)
		return r;
	w->id = id;
	w->fn = fn;
	w->data = data;
	w->sent_ns = monotonic_ns();
	return 0;
}

uint64_t qmp_oldest_wait_ms(const struct qmp *q, uint64_t now_ns)
{
	uint64_t oldest = 0;
	for (unsigned i = 0; i < QMP_MAX_WAIT; i++)
		if (q->wait[i].id && now_ns > q->wait[i].sent_ns && now_ns - q->wait[i].sent_ns > oldest)
			oldest = now_ns - q->wait[i].sent_ns;
	return oldest / 1000000u;
}

void qmp_forget(struct qmp *q, void *data)
{
	for (unsigned i = 0; i < QMP_MAX_WAIT; i++)
		if (q->wait[i].id && q->wait[i].data == data)
			q->wait[i].fn = NULL;
}

int qmp_open(const char *path, qmp_event_fn on_event, void *event_data, struct qmp **ret, char *err,
	     size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "the QMP socket path %s is too long", path);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	struct qmp *q = calloc(1, sizeof(*q));
	if (!q) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	q->on_event = on_event;
	q->event_data = event_data;
	q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (q->fd < 0) {
		int r = negative_errno();
		snprintf(err, errlen, "socket: %s", strerror(-r));
		free(q);
		return r;
	}
	/* A unix socket connects at once, or fails (-EAGAIN: its backlog is
	 * full, as good as refused). */
	if (connect(q->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = negative_errno();
		snprintf(err, errlen, "cannot connect to the QMP socket %s: %s", path, strerror(-r));
		close(q->fd);
		free(q);
		return r == -EAGAIN ? -ECONNREFUSED : r;
	}
	*ret = q;
	return 0;
}

int qmp_connect(const char *path, int timeout_ms, qmp_event_fn on_event, void *event_data, struct qmp **ret,
		char *err, size_t errlen)
{
	struct qmp *q;
	int r = qmp_open(path, on_event, event_data, &q, err, errlen);
	if (r < 0)
		return r;
	r = wait_until(q, &q->ready, timeout_ms);
	if (r < 0) {
		snprintf(err, errlen, "QEMU did not %s on %s%s", q->greeted ? "accept QMP commands" : "greet",
			 path, r == -ETIMEDOUT ? " in time" : ": the connection broke");
		qmp_close(q);
		return r;
	}
	*ret = q;
	return 0;
}

void qmp_close(struct qmp *q)
{
	if (!q)
		return;
	mark_dead(q);
	if (q->fd >= 0)
		close(q->fd);
	json_object_put(q->call_ret);
	free(q->buf);
	free(q);
}
