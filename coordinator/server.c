/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dispatch.h"
#include "inodes.h"
#include "journal.h"
#include "server.h"
#include "volume.h"

/* A client's queued replies beyond this: stop reading its requests until
 * it reads them. */
#define CONN_QUEUE_HIGH (64u << 20)

struct cached_reply {
	uint64_t req_id;  /* 0: empty slot */
	uint8_t *buf;
	size_t len;
};

/* The last SERVER_REPLY_CACHE_SIZE replies to one client node. */
struct reply_cache {
	uint32_t node;
	unsigned next;
	struct cached_reply e[SERVER_REPLY_CACHE_SIZE];
	struct reply_cache *next_cache;
};

static int32_t conn_event(int32_t fd, int32_t revents, void *data);

/* An invalidation count a reply waits for: until c has answered that many
 * (c NULL once it is gone). */
struct inval_wait {
	struct conn *c;
	uint64_t until;
};

/* A reply held until the journal flush that makes its change durable, and
 * until the other clients have answered the INVAL_INODE callbacks sent
 * before it: the attributes and data it changed are then seen everywhere
 * when the caller learns it is done. INVAL_ENTRY is not waited for: the
 * kernel runs it under the directory's lock, which that client's own
 * request in the same directory may hold while it waits for its reply
 * (the clients look names up again on every use instead). */
struct held_reply {
	struct conn *c;
	struct csv_wire_frame f;
	struct inval_wait *waits;
	unsigned nwaits;
	uint64_t held_ns;      /* CLOCK_MONOTONIC */
	struct held_reply *next;
};

/* ---- reply cache ---------------------------------------------------------- */

static struct reply_cache *cache_for(struct server *s, uint32_t node, bool create)
{
	struct reply_cache *rc;
	for (rc = s->caches; rc; rc = rc->next_cache)
		if (rc->node == node)
			return rc;
	if (!create)
		return NULL;
	rc = calloc(1, sizeof(*rc));
	if (!rc)
		return NULL;
	rc->node = node;
	rc->next_cache = s->caches;
	s->caches = rc;
	return rc;
}

static const struct cached_reply *cache_find(struct server *s, uint32_t node, uint64_t req_id)
{
	struct reply_cache *rc = cache_for(s, node, false);
	if (!rc)
		return NULL;
	for (unsigned i = 0; i < SERVER_REPLY_CACHE_SIZE; i++)
		if (rc->e[i].req_id == req_id)
			return &rc->e[i];
	return NULL;
}

/* Remembers a reply; a failure only costs the idempotence of a resend. */
static void cache_store(struct server *s, uint32_t node, uint64_t req_id, const struct csv_wire_frame *f)
{
	struct reply_cache *rc = cache_for(s, node, true);
	uint8_t *buf;
	size_t len;
	if (!rc || csv_wire_frame_flatten(f, &buf, &len) < 0) {
		vlog(s, LOG_WARNING, "node %u: no memory to remember the reply to request %llu", node,
		     (unsigned long long)req_id);
		return;
	}
	struct cached_reply *e = &rc->e[rc->next];
	free(e->buf);
	*e = (struct cached_reply){ .req_id = req_id, .buf = buf, .len = len };
	rc->next = (rc->next + 1) % SERVER_REPLY_CACHE_SIZE;
}

static void caches_free(struct server *s)
{
	while (s->caches) {
		struct reply_cache *rc = s->caches;
		s->caches = rc->next_cache;
		for (unsigned i = 0; i < SERVER_REPLY_CACHE_SIZE; i++)
			free(rc->e[i].buf);
		free(rc);
	}
}

/* ---- group commit ---------------------------------------------------------- */

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void held_free(struct held_reply *h)
{
	csv_wire_frame_done(&h->f);
	free(h->waits);
	free(h);
}

/* Whether every invalidation h waits for has been answered. */
static bool waits_done(const struct held_reply *h)
{
	for (unsigned i = 0; i < h->nwaits; i++)
		if (h->waits[i].c && h->waits[i].c->inval_answered < h->waits[i].until)
			return false;
	return true;
}

static void ack_timeout(void *data);

/* Sends the durable replies whose invalidations are all answered, and,
 * with force, those that waited too long (naming the slow clients). */
static void release_acked(struct server *s, bool force)
{
	uint64_t now = mono_ns();
	struct held_reply **pp = &s->acking;
	while (*pp) {
		struct held_reply *h = *pp;
		bool late = force && now - h->held_ns >= SERVER_INVAL_WAIT_MS * 1000000ull;
		if (!waits_done(h) && !late) {
			pp = &h->next;
			continue;
		}
		if (!waits_done(h))
			for (unsigned i = 0; i < h->nwaits; i++) {
				struct conn *x = h->waits[i].c;
				if (!x || x->inval_answered >= h->waits[i].until || x->inval_silent)
					continue;
				/* One that does not answer (cut off, frozen) would
				 * hold every later reply as long: until it answers
				 * again, replies go without waiting for it. */
				x->inval_silent = true;
				connlog(x, LOG_WARNING,
					"did not answer invalidations within %u ms: replies go without waiting for "
					"it until it answers again", SERVER_INVAL_WAIT_MS);
			}
		*pp = h->next;
		server_send(h->c, &h->f);
		held_free(h);
	}
	if (s->acking && !s->ack_timer_armed &&
	    qb_loop_timer_add(s->loop, QB_LOOP_HIGH, SERVER_INVAL_WAIT_MS * QB_TIME_NS_IN_MSEC / 4, s, ack_timeout,
			      &s->ack_timer) == 0)
		s->ack_timer_armed = true;
}

static void ack_timeout(void *data)
{
	struct server *s = data;
	s->ack_timer_armed = false;
	release_acked(s, true);
}

/* Notes that c answered an invalidation. */
static void inval_answered(struct conn *c)
{
	c->inval_answered++;
	if (c->inval_silent) {
		c->inval_silent = false;
		connlog(c, LOG_NOTICE, "answers invalidations again: replies wait for it again");
	}
	if (c->s->acking)
		release_acked(c->s, false);
}

/* Flushes the journal once for every change made since the last flush,
 * then sends the replies that waited for it. Runs from a timer of 0 ns,
 * after the loop has served every connection that was ready (a loop job
 * would wait for a poll of 50 ms first). */
static void sync_and_reply(void *data)
{
	struct server *s = data;
	s->sync_scheduled = false;
	int r = journal_sync(s->j);
	struct held_reply *h = s->held;
	s->held = s->held_tail = NULL;
	if (r < 0) {
		/* Nothing answered since the last flush may be durable: stop
		 * without answering; the next coordinator replays the journal. */
		vlog(s, LOG_CRIT, "the journal flush failed: %s; stopping at once without answering (exit 5)",
		     strerror(-r));
		_exit(5);
	}
	while (h) {
		struct held_reply *next = h->next;
		if (r == 0 && waits_done(h)) {
			server_send(h->c, &h->f);
			held_free(h);
		} else if (r == 0) {
			h->next = s->acking;
			s->acking = h;
		} else {
			held_free(h);
		}
		h = next;
	}
	if (s->acking)
		release_acked(s, false);
}

/* Sends a reply once the changes made so far are durable. */
static void reply_when_durable(struct conn *c, struct csv_wire_frame *f)
{
	struct server *s = c->s;
	struct held_reply *h = calloc(1, sizeof(*h));
	if (!h || (!s->sync_scheduled && qb_loop_timer_add(s->loop, QB_LOOP_HIGH, 0, s, sync_and_reply, &s->sync_timer) < 0)) {
		free(h);
		/* No memory to wait: flush now. */
		if (journal_sync(s->j) < 0) {
			csv_wire_frame_done(f);
			server_kill(c, "the journal flush failed");
			return;
		}
		server_send(c, f);
		return;
	}
	s->sync_scheduled = true;
	h->c = c;
	h->f = *f;
	h->held_ns = mono_ns();
	*f = (struct csv_wire_frame){ 0 };
	/* The invalidations sent so far to the other clients. */
	for (struct conn *x = s->conns; x; x = x->next) {
		if (x == c || !x->authed || x->inval_answered >= x->inval_sent || x->inval_silent)
			continue;
		void *p = realloc(h->waits, (h->nwaits + 1) * sizeof(*h->waits));
		if (!p)
			break;  /* then it waits for fewer: no worse than before */
		h->waits = p;
		h->waits[h->nwaits++] = (struct inval_wait){ .c = x, .until = x->inval_sent };
	}
	if (s->held_tail)
		s->held_tail->next = h;
	else
		s->held = h;
	s->held_tail = h;
}

/* Drops the held replies to c, and what others wait for from c (closing). */
static void held_drop(struct server *s, struct conn *c)
{
	struct held_reply **pp = &s->held;
	s->held_tail = NULL;
	while (*pp) {
		struct held_reply *h = *pp;
		if (h->c == c) {
			*pp = h->next;
			held_free(h);
		} else {
			s->held_tail = h;
			pp = &h->next;
		}
	}
	for (pp = &s->acking; *pp;) {
		struct held_reply *h = *pp;
		if (h->c == c) {
			*pp = h->next;
			held_free(h);
			continue;
		}
		pp = &h->next;
	}
	for (int list = 0; list < 2; list++)
		for (struct held_reply *h = list ? s->acking : s->held; h; h = h->next)
			for (unsigned i = 0; i < h->nwaits; i++)
				if (h->waits[i].c == c)
					h->waits[i].c = NULL;
	if (s->acking)
		release_acked(s, false);
}

/* ---- connections ---------------------------------------------------------- */

static void conn_close(struct conn *c, int prio, const char *reason)
{
	struct server *s = c->s;
	connlog(c, prio, "connection closed: %s", reason);
	if (c->authed)
		inodes_conn_closed(s, c);
	held_drop(s, c);
	qb_loop_poll_del(s->loop, csv_wire_conn_fd(c->wc));
	if (c->hs_timer_armed)
		qb_loop_timer_del(s->loop, c->hs_timer);
	csv_wire_auth_free(c->auth);
	csv_wire_conn_free(c->wc);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
}

static void conn_update_events(struct conn *c)
{
	short ev = csv_wire_conn_events(c->wc);
	if (c->dead)
		ev = POLLOUT;  /* fires at once: the handler closes it */
	else if (csv_wire_conn_queued_bytes(c->wc) > CONN_QUEUE_HIGH)
		ev &= (short)~POLLIN;
	if (ev == c->events)
		return;
	c->events = ev;
	qb_loop_poll_mod(c->s->loop, QB_LOOP_MED, csv_wire_conn_fd(c->wc), ev, c, conn_event);
}

int server_send(struct conn *c, struct csv_wire_frame *f)
{
	int r = csv_wire_conn_queue(c->wc, f, NULL, NULL);
	if (r < 0)
		csv_wire_frame_done(f);
	else
		r = csv_wire_conn_flush(c->wc);
	if (r < 0 && !c->dead) {
		c->dead = true;
		snprintf(c->reason, sizeof(c->reason), "cannot send: %s",
			 csv_wire_conn_broken(c->wc) ? csv_wire_conn_error(c->wc) : strerror(-r));
	}
	conn_update_events(c);
	return r < 0 ? r : 0;
}

void server_kill(struct conn *c, const char *reason)
{
	if (!c->dead) {
		c->dead = true;
		snprintf(c->reason, sizeof(c->reason), "%s", reason);
	}
	conn_update_events(c);
}

static int reject(struct conn *c, const char *fmt, const struct csv_wire_msghdr *h, int r)
{
	snprintf(c->reason, sizeof(c->reason), fmt, h ? csv_wire_type_name(h->type) : "", strerror(-r));
	return r;
}

/* Requests that change nothing: sent again, they are simply served
 * again, and need no place in the reply cache (a DATA_READ reply would
 * fill it with data). */
static bool changes_nothing(uint16_t type)
{
	switch (type) {
	case CSV_WIRE_LOOKUP: case CSV_WIRE_GETATTR: case CSV_WIRE_READLINK: case CSV_WIRE_READDIR:
	case CSV_WIRE_STATFS: case CSV_WIRE_GETXATTR: case CSV_WIRE_LISTXATTR: case CSV_WIRE_DATA_READ:
		return true;
	default:
		return false;
	}
}

/* Errors of the path to the LUN, as opposed to errors of the request. */
static bool lun_failed(int status)
{
	return status == -EIO || status == -ENOTCONN || status == -ESHUTDOWN || status == -ECONNRESET ||
	       status == -EPIPE || status == -ETIMEDOUT || status == -ENXIO;
}

/* Serves a request whose header and epoch are checked: from the reply
 * cache, or by the dispatcher. */
static int serve_request(struct conn *c, const struct csv_wire_msghdr *h, const void *frame, size_t len)
{
	struct server *s = c->s;
	struct csv_wire_frame reply = { 0 };
	const struct cached_reply *cr = cache_find(s, c->node, h->req_id);
	if (cr) {
		uint8_t *copy = malloc(cr->len);
		if (!copy)
			return reject(c, "cannot answer %s: %s", h, -ENOMEM);
		memcpy(copy, cr->buf, cr->len);
		reply = (struct csv_wire_frame){ .buf = copy, .len = cr->len, .cap = cr->len };
		connlog(c, LOG_INFO, "%s request %llu was already applied: answered from the reply cache",
			csv_wire_type_name(h->type), (unsigned long long)h->req_id);
		server_send(c, &reply);
		return 0;
	}
	int r = dispatch_request(c, h, frame, len, &reply);
	if (r == -EBADMSG || r == -EPROTONOSUPPORT)
		return reject(c, "sent a malformed %s request (%s)", h, r);
	if (r < 0)
		return reject(c, "cannot answer %s: %s", h, r);
	if (r == DISPATCH_PARKED)
		return 0;  /* answered when the recall it waits for is over */
	struct csv_wire_msghdr rh;
	if (csv_wire_hdr_decode(reply.buf, reply.len, &rh) == 0 && lun_failed(rh.status)) {
		/* The LUN failed under this coordinator: an answer would be an
		 * error for an application, while a coordinator on a node that
		 * sees the LUN can serve the request (clients resend it). */
		vlog(s, LOG_CRIT, "%s request %llu failed on the LUN (%s): stopping at once without answering "
		     "(exit 5); the next coordinator replays the journal", csv_wire_type_name(h->type),
		     (unsigned long long)h->req_id, strerror(-rh.status));
		_exit(5);
	}
	if (!changes_nothing(h->type))
		cache_store(s, c->node, h->req_id, &reply);
	reply_when_durable(c, &reply);
	return 0;
}

/* Answers a request naming another epoch with -ESTALE; true if it did. */
static bool stale_epoch(struct conn *c, const struct csv_wire_msghdr *h)
{
	struct server *s = c->s;
	struct csv_wire_frame reply = { 0 };
	if (h->epoch == s->epoch)
		return false;
	connlog(c, LOG_INFO, "%s request %llu names epoch %llu, the current one is %llu: -ESTALE",
		csv_wire_type_name(h->type), (unsigned long long)h->req_id, (unsigned long long)h->epoch,
		(unsigned long long)s->epoch);
	if (csv_wire_reply_status_encode(&reply, h, s->epoch, -ESTALE) < 0)
		server_kill(c, "cannot answer a request of an old epoch");
	else
		server_send(c, &reply);
	return true;
}

void server_serve(struct conn *c, const void *frame, size_t len)
{
	struct csv_wire_msghdr h;
	if (c->dead || csv_wire_hdr_decode(frame, len, &h) < 0 || stale_epoch(c, &h))
		return;
	c->reason[0] = '\0';
	if (serve_request(c, &h, frame, len) < 0)
		server_kill(c, c->reason[0] ? c->reason : "a waiting request failed");
}

/* One whole frame from an authenticated client. */
static int on_frame(struct csv_wire_conn *wc, const void *frame, size_t len, void *userdata)
{
	struct conn *c = userdata;
	struct server *s = c->s;
	struct csv_wire_msghdr h;
	struct csv_wire_frame reply = { 0 };
	int r;

	if (c->dead)
		return -EPIPE;
	r = csv_wire_hdr_decode(frame, len, &h);
	if (r < 0)
		return reject(c, "sent a malformed frame header%s (%s)", NULL, r);
	if (h.flags & CSV_WIRE_F_CALLBACK) {
		if (h.status < 0)
			connlog(c, LOG_DEBUG, "%s callback %llu answered %s", csv_wire_type_name(h.type),
				(unsigned long long)h.req_id, strerror(-h.status));
		if (h.type == CSV_WIRE_INVAL_INODE)
			inval_answered(c);
		else  /* a recall may wait for it */
			inodes_callback_answered(s, c, h.req_id);
		return 0;
	}
	if (!(h.flags & CSV_WIRE_F_REQUEST))
		return reject(c, "sent a %s reply to no request (%s)", &h, -EBADMSG);
	if (h.type == CSV_WIRE_HELLO || h.type == CSV_WIRE_AUTH)
		return reject(c, "sent a %s after the handshake (%s)", &h, -EBADMSG);
	if (h.req_id == 0)
		return reject(c, "sent a %s request with id 0 (%s)", &h, -EBADMSG);
	s->requests++;

	if (h.type == CSV_WIRE_PING) {
		r = csv_wire_empty_decode(frame, len, CSV_WIRE_PING, CSV_WIRE_F_REQUEST, NULL);
		if (r < 0)
			return reject(c, "sent a malformed %s request (%s)", &h, r);
		r = csv_wire_reply_status_encode(&reply, &h, s->epoch, 0);
		return r < 0 ? reject(c, "cannot answer %s: %s", &h, r) : (server_send(c, &reply), 0);
	}
	if (stale_epoch(c, &h))
		return 0;
	return serve_request(c, &h, frame, len);
}

static void conn_authed(struct conn *c)
{
	c->authed = true;
	c->node = csv_wire_auth_peer_node(c->auth);
	csv_wire_auth_free(c->auth);
	c->auth = NULL;
	if (c->hs_timer_armed) {
		qb_loop_timer_del(c->s->loop, c->hs_timer);
		c->hs_timer_armed = false;
	}
	connlog(c, LOG_INFO, "node %u authenticated, epoch %llu", c->node, (unsigned long long)c->s->epoch);
}

static int32_t conn_event(int32_t fd, int32_t revents, void *data)
{
	struct conn *c = data;
	int r;

	if (c->dead) {
		conn_close(c, LOG_WARNING, c->reason);
		return 0;
	}
	if (revents & POLLOUT) {
		r = csv_wire_conn_flush(c->wc);
		if (r < 0) {
			conn_close(c, LOG_WARNING, csv_wire_conn_error(c->wc));
			return 0;
		}
	}
	if (revents & (POLLIN | POLLHUP | POLLERR)) {
		if (!c->authed) {
			r = csv_wire_auth_read(c->auth, c->wc);
			if (r < 0) {
				(void)csv_wire_conn_flush(c->wc);  /* the error reply, best effort */
				conn_close(c, LOG_WARNING, csv_wire_auth_error(c->auth));
				return 0;
			}
			if (r == 1)
				conn_authed(c);
		}
		if (c->authed) {
			c->reason[0] = '\0';
			r = csv_wire_conn_read(c->wc, on_frame, c);
			if (r < 0) {
				if (c->reason[0])
					conn_close(c, LOG_WARNING, c->reason);
				else if (r == -ECONNRESET)
					conn_close(c, LOG_INFO, "the client closed it");
				else
					conn_close(c, LOG_WARNING, csv_wire_conn_error(c->wc));
				return 0;
			}
		}
	}
	conn_update_events(c);
	return 0;
}

static void handshake_timeout(void *data)
{
	struct conn *c = data;
	c->hs_timer_armed = false;
	conn_close(c, LOG_WARNING, "the handshake did not finish in time");
}

static void conn_new(struct server *s, int fd)
{
	struct csv_wire_auth_server_params p = {
		.key = &s->key,
		.node_id = s->node_id,
		.epoch = s->epoch,
		.welcome = s->welcome,
	};
	struct csv_wire_conn *wc;
	struct conn *c;
	int r;

	memcpy(p.volume_uuid, s->v->g.uuid, sizeof(p.volume_uuid));
	r = csv_wire_conn_new(fd, &wc);
	if (r < 0) {
		vlog(s, LOG_ERR, "cannot set up a new connection: %s", strerror(-r));
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		vlog(s, LOG_ERR, "%s: no memory for the connection", csv_wire_conn_peer(wc));
		csv_wire_conn_free(wc);
		return;
	}
	c->s = s;
	c->wc = wc;
	r = csv_wire_auth_server_new(&p, &c->auth);
	if (r == 0)
		r = csv_wire_auth_start(c->auth, wc);
	if (r == 0)
		r = qb_loop_poll_add(s->loop, QB_LOOP_MED, fd, POLLIN, c, conn_event);
	if (r < 0) {
		vlog(s, LOG_ERR, "%s: cannot start the handshake: %s", csv_wire_conn_peer(wc), strerror(-r));
		csv_wire_auth_free(c->auth);
		csv_wire_conn_free(wc);
		free(c);
		return;
	}
	c->events = POLLIN;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	if (qb_loop_timer_add(s->loop, QB_LOOP_MED, SERVER_HANDSHAKE_TIMEOUT_S * QB_TIME_NS_IN_SEC, c,
			      handshake_timeout, &c->hs_timer) == 0)
		c->hs_timer_armed = true;
	connlog(c, LOG_INFO, "connection accepted");
	conn_update_events(c);
}

static int32_t listen_event(int32_t fd, int32_t revents, void *data)
{
	struct server *s = data;
	for (int i = 0; i < 64; i++) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
				vlog(s, LOG_ERR, "accept failed: %s", strerror(errno));
			break;
		}
		conn_new(s, cfd);
	}
	return 0;
}

/* ---- listening ------------------------------------------------------------- */

int server_listen(struct server *s, const char *hostport, char *err, size_t errlen)
{
	char host[256];
	const char *colon = strrchr(hostport, ':');
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *ai = NULL;
	int fd = -1, r, one = 1;

	if (!colon || colon == hostport || !colon[1] || (size_t)(colon - hostport) >= sizeof(host)) {
		snprintf(err, errlen, "'%s' is not HOST:PORT", hostport);
		return -EINVAL;
	}
	memcpy(host, hostport, (size_t)(colon - hostport));
	host[colon - hostport] = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	r = getaddrinfo(host, colon + 1, &hints, &ai);
	if (r != 0) {
		snprintf(err, errlen, "cannot resolve '%s': %s", hostport, gai_strerror(r));
		return -EINVAL;
	}
	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot create a socket for %s: %s", hostport, strerror(errno));
		goto fail;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot listen on %s: %s", hostport, strerror(errno));
		goto fail;
	}
	r = qb_loop_poll_add(s->loop, QB_LOOP_HIGH, fd, POLLIN, s, listen_event);
	if (r < 0) {
		snprintf(err, errlen, "cannot watch the socket of %s: %s", hostport, strerror(-r));
		goto fail;
	}
	freeaddrinfo(ai);
	s->listen_fd = fd;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return r;
}

void server_shutdown(struct server *s)
{
	if (s->listen_fd >= 0) {
		qb_loop_poll_del(s->loop, s->listen_fd);
		close(s->listen_fd);
		s->listen_fd = -1;
	}
	/* What the clients hold is theirs to reclaim from the next coordinator. */
	inodes_free(s);
	while (s->conns)
		conn_close(s->conns, LOG_INFO, "the coordinator is stopping");
	caches_free(s);
}
