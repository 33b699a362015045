/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A framed wire-protocol connection: buffered non-blocking reads that
 * yield whole frames, and a write queue flushed with sendmsg(). */
#include "wire-conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "util.h"

#define RBUF_DEFAULT (64u << 10)
/* iovecs per sendmsg(): at least one frame with CSV_WIRE_IOV_MAX data pieces. */
#define SEND_IOV_MAX 256
static_assert(SEND_IOV_MAX >= 1 + CSV_WIRE_IOV_MAX, "send iov");

struct out_frame {
	struct out_frame *next;
	uint8_t *buf;            /* header and payload, owned */
	size_t len;
	struct iovec *iov;       /* referenced data, array owned */
	int iovcnt;
	size_t total;            /* len + data */
	csv_wire_sent_fn done;
	void *userdata;
};

struct csv_wire_conn {
	int fd;
	char addr[128];
	char peer[160];
	uint32_t peer_node;
	uint64_t next_id;

	uint8_t *rbuf;
	size_t rcap;
	size_t rstart;           /* first unread byte */
	size_t rend;             /* end of the bytes received */

	struct out_frame *out_head;
	struct out_frame *out_tail;
	size_t out_bytes;        /* queued, not yet written */
	size_t out_off;          /* bytes of out_head already written */

	int broken;
	char err[400];
	uint64_t frames_in;
	uint64_t frames_out;
};

static void describe_peer(struct csv_wire_conn *c)
{
	if (c->peer_node)
		snprintf(c->peer, sizeof c->peer, "%s (node %" PRIu32 ")", c->addr, c->peer_node);
	else
		snprintf(c->peer, sizeof c->peer, "%s", c->addr);
}

static void describe_addr(struct csv_wire_conn *c)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char host[INET6_ADDRSTRLEN];

	snprintf(c->addr, sizeof c->addr, "fd %d", c->fd);
	if (getpeername(c->fd, (struct sockaddr *)&ss, &sl) < 0)
		return;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
		if (inet_ntop(AF_INET, &in->sin_addr, host, sizeof host))
			snprintf(c->addr, sizeof c->addr, "%s:%u", host, ntohs(in->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
		if (inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host))
			snprintf(c->addr, sizeof c->addr, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else if (ss.ss_family == AF_UNIX) {
		const struct sockaddr_un *un = (const struct sockaddr_un *)&ss;
		size_t n = sl > offsetof(struct sockaddr_un, sun_path) ?
			   sl - offsetof(struct sockaddr_un, sun_path) : 0;
		if (n > 0 && un->sun_path[0] != '\0')
			snprintf(c->addr, sizeof c->addr, "unix:%.*s",
				 (int)strnlen(un->sun_path, n), un->sun_path);
		else
			snprintf(c->addr, sizeof c->addr, "local socket");
	}
}

static uint64_t random_id(void)
{
	uint64_t v = 0;
	if (getrandom(&v, sizeof v, GRND_NONBLOCK) != sizeof v)
		v = (uint64_t)time(NULL) << 20;
	v &= INT64_MAX; /* room before wrapping */
	return v ? v : 1;
}

int csv_wire_conn_new(int fd, struct csv_wire_conn **ret)
{
	if (fd < 0)
		return -EBADF;
	struct csv_wire_conn *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->fd = fd;
	c->rbuf = malloc(RBUF_DEFAULT);
	if (!c->rbuf) {
		free(c);
		close(fd);
		return -ENOMEM;
	}
	c->rcap = RBUF_DEFAULT;
	c->next_id = random_id();
	/* Requests and replies are small and waited for: no Nagle delay (a
	 * socket that is not TCP refuses the option, which is fine). */
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	describe_addr(c);
	describe_peer(c);
	*ret = c;
	return 0;
}

static void out_frame_free(struct out_frame *o)
{
	free(o->buf);
	free(o->iov);
	free(o);
}

/* Drops every queued frame, telling its owner. */
static void drop_queue(struct csv_wire_conn *c, int status)
{
	while (c->out_head) {
		struct out_frame *o = c->out_head;
		c->out_head = o->next;
		if (!c->out_head)
			c->out_tail = NULL;
		if (o->done)
			o->done(c, status, o->userdata);
		out_frame_free(o);
	}
	c->out_bytes = 0;
	c->out_off = 0;
}

void csv_wire_conn_free(struct csv_wire_conn *c)
{
	if (!c)
		return;
	drop_queue(c, -ECANCELED);
	if (c->fd >= 0)
		close(c->fd);
	free(c->rbuf);
	free(c);
}

int csv_wire_conn_fd(const struct csv_wire_conn *c)
{
	return c->fd;
}

const char *csv_wire_conn_peer(const struct csv_wire_conn *c)
{
	return c->peer;
}

int csv_wire_conn_set_peer_name(struct csv_wire_conn *c, const char *name)
{
	if (!name || !*name)
		return -EINVAL;
	snprintf(c->addr, sizeof c->addr, "%s", name);
	describe_peer(c);
	return 0;
}

void csv_wire_conn_set_peer_node(struct csv_wire_conn *c, uint32_t node_id)
{
	c->peer_node = node_id;
	describe_peer(c);
}

uint32_t csv_wire_conn_peer_node(const struct csv_wire_conn *c)
{
	return c->peer_node;
}

uint64_t csv_wire_conn_next_id(struct csv_wire_conn *c)
{
	uint64_t id = c->next_id++;
	if (c->next_id == 0)
		c->next_id = 1;
	return id;
}

uint64_t csv_wire_conn_peek_next_id(const struct csv_wire_conn *c)
{
	return c->next_id;
}

void csv_wire_conn_set_next_id(struct csv_wire_conn *c, uint64_t id)
{
	c->next_id = id ? id : 1;
}

const char *csv_wire_conn_error(const struct csv_wire_conn *c)
{
	return c->err;
}

int csv_wire_conn_broken(const struct csv_wire_conn *c)
{
	return c->broken;
}

uint64_t csv_wire_conn_frames_in(const struct csv_wire_conn *c)
{
	return c->frames_in;
}

uint64_t csv_wire_conn_frames_out(const struct csv_wire_conn *c)
{
	return c->frames_out;
}

/* Marks the connection broken with error r and a reason; returns r. */
_printf_(3, 4)
static int conn_fail(struct csv_wire_conn *c, int r, const char *fmt, ...)
{
	char reason[200];
	va_list ap;

	if (c->broken)
		return c->broken;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	snprintf(c->err, sizeof c->err, "%s: %s", c->peer, reason);
	c->broken = r;
	return r;
}

/* Explains why csv_wire_frame_peek() refused the bytes at p. */
static int framing_error(struct csv_wire_conn *c, const uint8_t *p)
{
	le32 magic, length;

	memcpy(&magic, p + offsetof(struct csv_wire_hdr, magic), sizeof magic);
	memcpy(&length, p + offsetof(struct csv_wire_hdr, length), sizeof length);
	if (le32_to_cpu(magic) != CSV_WIRE_MAGIC)
		return conn_fail(c, -EBADMSG,
				 "sent bytes that are not a csvfs frame (magic 0x%08" PRIx32
				 ", expected 0x%08x \"CSWP\")",
				 le32_to_cpu(magic), CSV_WIRE_MAGIC);
	if (le32_to_cpu(length) < CSV_WIRE_HDR_SIZE)
		return conn_fail(c, -EBADMSG,
				 "sent a frame of %" PRIu32 " bytes, shorter than its %u-byte header",
				 le32_to_cpu(length), CSV_WIRE_HDR_SIZE);
	return conn_fail(c, -EBADMSG,
			 "sent a frame of %" PRIu32 " bytes, more than the maximum of %u",
			 le32_to_cpu(length), CSV_WIRE_FRAME_MAX);
}

bool csv_wire_conn_has_frame(const struct csv_wire_conn *c)
{
	uint32_t flen;
	size_t avail = c->rend - c->rstart;

	if (c->broken)
		return false;
	if (csv_wire_frame_peek(c->rbuf + c->rstart, avail, &flen) < 0)
		return avail >= 12; /* a framing error to report */
	return avail >= flen;
}

/* Makes room in the read buffer for the rest of the frame being
 * received (its length known once 12 bytes are in). */
static int make_room(struct csv_wire_conn *c)
{
	size_t avail = c->rend - c->rstart;
	size_t need = CSV_WIRE_HDR_SIZE;
	uint32_t flen;

	if (avail == 0) {
		c->rstart = c->rend = 0;
		if (c->rcap > RBUF_DEFAULT) {
			uint8_t *p = malloc(RBUF_DEFAULT);
			if (p) {
				free(c->rbuf);
				c->rbuf = p;
				c->rcap = RBUF_DEFAULT;
			}
		}
		return 0;
	}
	if (csv_wire_frame_peek(c->rbuf + c->rstart, avail, &flen) == 0)
		need = flen;
	if (need > c->rcap) {
		/* Only for a length already checked against the maximum. */
		uint8_t *p = malloc(need);
		if (!p)
			return conn_fail(c, -ENOMEM, "cannot buffer a frame of %zu bytes", need);
		memcpy(p, c->rbuf + c->rstart, avail);
		free(c->rbuf);
		c->rbuf = p;
		c->rcap = need;
		c->rstart = 0;
		c->rend = avail;
	} else if (c->rstart + need > c->rcap || c->rend == c->rcap) {
		memmove(c->rbuf, c->rbuf + c->rstart, avail);
		c->rstart = 0;
		c->rend = avail;
	}
	return 0;
}

int csv_wire_conn_read(struct csv_wire_conn *c, csv_wire_frame_fn fn, void *userdata)
{
	int delivered = 0;
	size_t budget = CSV_WIRE_CONN_READ_BUDGET;
	int r;

	if (c->broken)
		return c->broken;
	for (;;) {
		/* Deliver every whole frame in the buffer. */
		for (;;) {
			size_t avail = c->rend - c->rstart;
			uint32_t flen;
			r = csv_wire_frame_peek(c->rbuf + c->rstart, avail, &flen);
			if (r == -EAGAIN)
				break;
			if (r < 0)
				return framing_error(c, c->rbuf + c->rstart);
			if (avail < flen)
				break;
			const uint8_t *frame = c->rbuf + c->rstart;
			c->rstart += flen;
			c->frames_in++;
			delivered++;
			r = fn(c, frame, flen, userdata);
			if (r < 0)
				return r;
			if (r > 0)
				return delivered;
		}
		if (budget == 0)
			return delivered;

		r = make_room(c);
		if (r < 0)
			return r;
		size_t room = MIN(c->rcap - c->rend, budget);
		ssize_t n = recv(c->fd, c->rbuf + c->rend, room, MSG_DONTWAIT);
		if (n > 0) {
			c->rend += (size_t)n;
			budget -= (size_t)n;
			continue;
		}
		if (n == 0) {
			if (c->rend > c->rstart)
				return conn_fail(c, -ECONNRESET,
						 "closed the connection in the middle of a frame "
						 "(%zu bytes received)", c->rend - c->rstart);
			return conn_fail(c, -ECONNRESET, "closed the connection");
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return delivered;
		r = -errno;
		return conn_fail(c, r, "receive failed: %s", strerror(-r));
	}
}

int csv_wire_conn_queue(struct csv_wire_conn *c, struct csv_wire_frame *f,
			csv_wire_sent_fn done, void *userdata)
{
	if (c->broken)
		return c->broken;
	if (!f->buf || f->len < CSV_WIRE_HDR_SIZE)
		return -EINVAL;
	struct out_frame *o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->buf = f->buf;
	o->len = f->len;
	o->iov = f->iov;
	o->iovcnt = f->iovcnt;
	o->total = f->len + f->iov_len;
	o->done = done;
	o->userdata = userdata;
	*f = (struct csv_wire_frame){ 0 };

	if (c->out_tail)
		c->out_tail->next = o;
	else
		c->out_head = o;
	c->out_tail = o;
	c->out_bytes += o->total;
	return 0;
}

size_t csv_wire_conn_queued_bytes(const struct csv_wire_conn *c)
{
	return c->out_bytes;
}

short csv_wire_conn_events(const struct csv_wire_conn *c)
{
	return (short)(POLLIN | (c->out_bytes ? POLLOUT : 0));
}

/* Adds the unwritten part of [base, base + len) at position pos of the
 * frame to the iovec array; skip is how much of the frame was written. */
static void add_iov(struct iovec *iov, int *n, void *base, size_t len, size_t pos, size_t skip)
{
	if (len == 0 || pos + len <= skip)
		return;
	size_t from = skip > pos ? skip - pos : 0;
	iov[*n].iov_base = (uint8_t *)base + from;
	iov[*n].iov_len = len - from;
	(*n)++;
}

int csv_wire_conn_flush(struct csv_wire_conn *c)
{
	if (c->broken)
		return c->broken;
	while (c->out_head) {
		struct iovec iov[SEND_IOV_MAX];
		int n = 0;
		size_t skip = c->out_off;

		for (struct out_frame *o = c->out_head; o; o = o->next) {
			if (n > 0 && n + 1 + o->iovcnt > SEND_IOV_MAX)
				break;
			size_t pos = 0;
			add_iov(iov, &n, o->buf, o->len, pos, skip);
			pos += o->len;
			for (int i = 0; i < o->iovcnt; i++) {
				add_iov(iov, &n, o->iov[i].iov_base, o->iov[i].iov_len, pos, skip);
				pos += o->iov[i].iov_len;
			}
			skip = 0;
		}
		struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)n };
		ssize_t w = sendmsg(c->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 1;
			int r = -errno;
			conn_fail(c, r, "send failed: %s", strerror(-r));
			drop_queue(c, r);
			return r;
		}
		size_t left = (size_t)w;
		c->out_bytes -= left;
		while (left > 0 && c->out_head) {
			struct out_frame *o = c->out_head;
			size_t rest = o->total - c->out_off;
			if (left < rest) {
				c->out_off += left;
				break;
			}
			left -= rest;
			c->out_off = 0;
			c->out_head = o->next;
			if (!c->out_head)
				c->out_tail = NULL;
			c->frames_out++;
			if (o->done)
				o->done(c, 0, o->userdata);
			out_frame_free(o);
		}
	}
	return 0;
}

/* CLOCK_MONOTONIC in milliseconds; deadlines below are in it, -1 for none. */
static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_fd(struct csv_wire_conn *c, short events, int64_t deadline)
{
	for (;;) {
		int t = -1;
		if (deadline >= 0) {
			int64_t left = deadline - now_ms();
			if (left <= 0)
				return -ETIMEDOUT;
			t = (int)MIN(left, (int64_t)INT_MAX);
		}
		struct pollfd p = { .fd = c->fd, .events = events };
		int r = poll(&p, 1, t);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -ETIMEDOUT;
		return 0;
	}
}

int csv_wire_conn_flush_wait(struct csv_wire_conn *c, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	for (;;) {
		int r = csv_wire_conn_flush(c);
		if (r <= 0)
			return r;
		r = wait_fd(c, POLLOUT, deadline);
		if (r < 0)
			return r;
	}
}

int csv_wire_conn_read_wait(struct csv_wire_conn *c, int timeout_ms,
			    csv_wire_frame_fn fn, void *userdata)
{
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	for (;;) {
		int r = csv_wire_conn_read(c, fn, userdata);
		if (r != 0)
			return r;
		r = wait_fd(c, POLLIN, deadline);
		if (r < 0)
			return r;
	}
}

int csv_wire_conn_send_wait(struct csv_wire_conn *c, struct csv_wire_frame *f, int timeout_ms)
{
	int r = csv_wire_conn_queue(c, f, NULL, NULL);
	if (r < 0)
		return r;
	return csv_wire_conn_flush_wait(c, timeout_ms);
}
