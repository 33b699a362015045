/* SPDX-License-Identifier: GPL-2.0-or-later */
#define FUSE_USE_VERSION 312
#include <errno.h>
#include <fuse_lowlevel.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "byteorder.h"
#include "client-conn.h"
#include "client-log.h"
#include "wire-auth.h"
#include "wire-conn.h"

#define SEND_TIMEOUT_MS 30000
#define HANDSHAKE_TIMEOUT_MS 5000
/* Pause between two attempts to reach the coordinator: from the first to
 * the last, doubling. */
#define RECONNECT_FIRST_MS 50
#define RECONNECT_MAX_MS 1000

/* A request waiting for its reply. */
struct pending {
	uint64_t id;
	uint8_t *frame;       /* as encoded, to send again on a new connection */
	size_t flen;
	uint64_t sent_gen;    /* connection it was last sent on; 0 none */
	bool done, resent;
	bool detached;        /* a reopen after a reconnect: nobody waits */
	int status;
	uint8_t *buf;
	size_t len;
	struct pending *next;
};

struct cb_item {
	uint8_t *buf;
	size_t len;
	uint64_t gen;         /* connection it came on: the reply goes there */
	struct cb_item *next;
};

/* A queue of callbacks and the thread that serves it. */
struct cbq {
	struct cb_item *head, *tail;
	pthread_cond_t cond;
	pthread_t thread;
	struct client_conn *cc;
};

struct client_conn {
	char host[256], port[32];   /* plock: the locator changes them */
	struct client_conn_locator locator;  /* locate NULL: the address is fixed */
	struct csv_wire_key key;
	uint32_t node_id;
	uint8_t volume_uuid[CSV_WIRE_UUID_SIZE];
	unsigned reconnect_timeout_s;

	pthread_mutex_t lock;       /* c: sending, reading, replacing */
	struct csv_wire_conn *c;    /* NULL while there is no connection */

	pthread_mutex_t plock;      /* everything below */
	pthread_cond_t pcond;
	struct pending *pending;
	bool up;                    /* connected; requests are sent at once */
	int fd;                     /* c's socket while up, else -1: shut from any thread without lock */
	bool stopping;
	uint64_t epoch, gen, next_id, root_ino;
	struct timespec lost_at;    /* when the connection was lost */
	struct fuse_session *se;
	struct client_conn_hooks hooks;
	pthread_t reader;
	bool started;
	struct cbq inval, entry, recall;
};

static double seconds_since(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static int tcp_connect(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai, *p;
	int fd = -1;
	if (getaddrinfo(host, port, &hints, &ai) != 0)
		return -EHOSTUNREACH;
	for (p = ai; p; p = p->ai_next) {
		fd = socket(p->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		if (connect(fd, p->ai_addr, p->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd < 0 ? -ECONNREFUSED : fd;
}

/* One connection and handshake, to host:port. */
static int connect_once(struct client_conn *cc, const char *host, const char *port, struct csv_wire_conn **ret,
			struct csv_wire_welcome *w, char *err, size_t errlen)
{
	struct csv_wire_auth_client_params ap = { .key = &cc->key, .node_id = cc->node_id };
	memcpy(ap.volume_uuid, cc->volume_uuid, sizeof(ap.volume_uuid));
	int fd = tcp_connect(host, port);
	if (fd < 0) {
		snprintf(err, errlen, "cannot connect to coordinator %s:%s: %s", host, port, strerror(-fd));
		return fd;
	}
	int r = csv_wire_conn_new(fd, ret);
	if (r < 0) {
		close(fd);
		snprintf(err, errlen, "%s", strerror(-r));
		return r;
	}
	r = csv_wire_auth_client_run(*ret, &ap, HANDSHAKE_TIMEOUT_MS, w, err, errlen);
	if (r < 0)
		csv_wire_conn_free(*ret);
	return r;
}

/* Copies the coordinator's address (under plock once there are threads). */
static void address_get(struct client_conn *cc, char host[static 256], char port[static 32])
{
	pthread_mutex_lock(&cc->plock);
	memcpy(host, cc->host, sizeof(cc->host));
	memcpy(port, cc->port, sizeof(cc->port));
	pthread_mutex_unlock(&cc->plock);
}

/* Asks the locator, if any, where the coordinator is, then connects and
 * handshakes there. A locator that cannot tell leaves the last address it
 * gave to try; -EAGAIN and -ENOENT from it are returned as they are. */
static int locate_connect(struct client_conn *cc, struct csv_wire_conn **ret, struct csv_wire_welcome *w, char *err,
			  size_t errlen)
{
	char host[256], port[32], lerr[512] = "";
	int r = 0;
	if (cc->locator.locate) {
		r = cc->locator.locate(cc->locator.ud, host, sizeof(host), port, sizeof(port), lerr, sizeof(lerr));
		if (r < 0 && !lerr[0])
			snprintf(lerr, sizeof(lerr), "cannot locate the coordinator: %s", strerror(-r));
		if (r == 0) {
			pthread_mutex_lock(&cc->plock);
			snprintf(cc->host, sizeof(cc->host), "%s", host);
			snprintf(cc->port, sizeof(cc->port), "%s", port);
			pthread_mutex_unlock(&cc->plock);
		}
	}
	address_get(cc, host, port);
	if (r < 0 && (r == -EAGAIN || r == -ENOENT || !host[0])) {
		snprintf(err, errlen, "%s", lerr);
		return r;
	}
	int c = connect_once(cc, host, port, ret, w, err, errlen);
	if (c < 0 && r < 0) {
		/* Both: the locator is down and the last address is dead. */
		char cerr[512];
		snprintf(cerr, sizeof(cerr), "%s", err);
		snprintf(err, errlen, "%s; %s", lerr, cerr);
	}
	return c;
}

/* Errors of a coordinator that answered, which trying again does not mend. */
static bool refused_for_good(int r)
{
	return r == -EACCES || r == -EPERM || r == -EPROTONOSUPPORT;
}

static void conn_free(struct client_conn *cc)
{
	csv_wire_key_wipe(&cc->key);
	free(cc);
}

/* The first connection through the locator: tries again, pausing as
 * reconnect() does, until a coordinator answers or wait_s have passed. */
static int open_located(struct client_conn *cc, unsigned wait_s, struct csv_wire_welcome *w, char *err,
			size_t errlen)
{
	struct timespec start;
	unsigned pause = RECONNECT_FIRST_MS;
	char last[512] = "";
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct csv_wire_conn *c;
		int r = locate_connect(cc, &c, w, err, errlen);
		if (r == 0) {
			cc->c = c;
			return 0;
		}
		if (r == -ENOENT || refused_for_good(r))
			return r;
		double left = wait_s - seconds_since(&start);
		if (left <= 0) {
			char why[512];
			snprintf(why, sizeof(why), "%s", err);
			snprintf(err, errlen, "no coordinator answered within %u s: %s", wait_s, why);
			return r;
		}
		if (strcmp(err, last) != 0)
			client_log(LOG_INFO, "waiting for the coordinator: %s", err);
		snprintf(last, sizeof(last), "%s", err);
		/* The last attempt at the end of the wait. */
		usleep(left * 1000 < pause ? (unsigned)(left * 1e6) : pause * 1000u);
		pause = pause * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : pause * 2;
	}
}

int client_conn_open(const struct client_conn_params *p, struct client_conn **ret,
		     struct csv_wire_welcome *ret_welcome, char *err, size_t errlen)
{
	struct csv_wire_welcome w;
	struct client_conn *cc = calloc(1, sizeof(*cc));
	int r = 0;
	if (!cc)
		return -ENOMEM;
	cc->fd = -1;
	pthread_mutex_init(&cc->lock, NULL);
	pthread_mutex_init(&cc->plock, NULL);
	if (p->locator) {
		cc->locator = *p->locator;
	} else if (snprintf(cc->host, sizeof(cc->host), "%s", p->host) >= (int)sizeof(cc->host) ||
		   snprintf(cc->port, sizeof(cc->port), "%s", p->port) >= (int)sizeof(cc->port)) {
		snprintf(err, errlen, "coordinator %s:%s: the address is too long", p->host, p->port);
		r = -ENAMETOOLONG;
	}
	cc->node_id = p->node_id;
	cc->reconnect_timeout_s = p->reconnect_timeout_s;
	memcpy(cc->volume_uuid, p->volume_uuid, sizeof(cc->volume_uuid));
	if (r == 0)
		r = csv_wire_key_load(p->keyfile, &cc->key, err, errlen);
	if (r == 0 && !p->locator)
		r = connect_once(cc, cc->host, cc->port, &cc->c, &w, err, errlen);
	if (r == 0 && p->locator)
		r = open_located(cc, p->locate_wait_s, &w, err, errlen);
	if (r < 0) {
		pthread_mutex_destroy(&cc->lock);
		pthread_mutex_destroy(&cc->plock);
		conn_free(cc);
		return r;
	}
	pthread_cond_init(&cc->pcond, NULL);
	pthread_cond_init(&cc->inval.cond, NULL);
	pthread_cond_init(&cc->entry.cond, NULL);
	pthread_cond_init(&cc->recall.cond, NULL);
	cc->inval.cc = cc->entry.cc = cc->recall.cc = cc;
	cc->epoch = w.epoch;
	cc->root_ino = w.root_ino;
	cc->gen = 1;
	cc->up = true;
	cc->fd = csv_wire_conn_fd(cc->c);
	/* Ids go on growing across connections: a coordinator that stayed
	 * remembers replies by id. */
	cc->next_id = csv_wire_conn_next_id(cc->c);
	*ret_welcome = w;
	*ret = cc;
	return 0;
}

uint64_t client_conn_next_id(struct client_conn *cc)
{
	pthread_mutex_lock(&cc->plock);
	uint64_t id = cc->next_id++;
	pthread_mutex_unlock(&cc->plock);
	return id;
}

uint64_t client_conn_epoch(struct client_conn *cc)
{
	pthread_mutex_lock(&cc->plock);
	uint64_t e = cc->epoch;
	pthread_mutex_unlock(&cc->plock);
	return e;
}

bool client_conn_drop_older(struct client_conn *cc, uint64_t epoch)
{
	/* Not under lock: a send blocked on the old coordinator holds it,
	 * and this shutdown is what ends that send. The socket stays open
	 * while fd is set (lose_connection clears fd before closing it). */
	pthread_mutex_lock(&cc->plock);
	bool older = cc->up && cc->fd >= 0 && cc->epoch < epoch;
	uint64_t had = cc->epoch;
	if (older)
		shutdown(cc->fd, SHUT_RDWR);
	pthread_mutex_unlock(&cc->plock);
	if (older)
		client_log(LOG_NOTICE, "a coordinator of epoch %llu serves the volume; this connection is of epoch %llu: "
			   "connecting again", (unsigned long long)epoch, (unsigned long long)had);
	return older;
}

uint64_t client_conn_generation(struct client_conn *cc)
{
	pthread_mutex_lock(&cc->plock);
	uint64_t g = cc->up ? cc->gen : 0;
	pthread_mutex_unlock(&cc->plock);
	return g;
}

/* Sends a copy of frame on the connection, under epoch. With cc->lock
 * held. A failure shuts the socket so that the reader reconnects. */
static void send_locked(struct client_conn *cc, const uint8_t *frame, size_t len, uint64_t epoch)
{
	if (!cc->c)
		return;
	struct csv_wire_frame f = { .buf = malloc(len), .len = len, .cap = len };
	if (!f.buf) {
		shutdown(csv_wire_conn_fd(cc->c), SHUT_RDWR);
		return;
	}
	memcpy(f.buf, frame, len);
	le64 e = cpu_to_le64(epoch);
	memcpy(f.buf + offsetof(struct csv_wire_hdr, epoch), &e, sizeof(e));
	int r = csv_wire_conn_send_wait(cc->c, &f, SEND_TIMEOUT_MS);
	csv_wire_frame_done(&f);
	if (r < 0) {
		client_log(LOG_WARNING, "sending to the coordinator failed: %s", strerror(-r));
		shutdown(csv_wire_conn_fd(cc->c), SHUT_RDWR);
	}
}

static void unlink_pending(struct client_conn *cc, struct pending *p)
{
	for (struct pending **pp = &cc->pending; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			return;
		}
}

static void pending_free(struct pending *p)
{
	free(p->frame);
	free(p->buf);
	free(p);
}

int client_conn_call(struct client_conn *cc, struct csv_wire_frame *f, uint8_t **ret_buf, size_t *ret_len,
		     bool *ret_resent)
{
	struct csv_wire_msghdr h;
	struct pending p = { 0 };
	struct timespec start;
	/* Flat first: a frame may reference its data (DATA_WRITE). */
	int r = csv_wire_frame_flatten(f, &p.frame, &p.flen);
	csv_wire_frame_done(f);
	if (r == 0)
		r = csv_wire_hdr_decode(p.frame, p.flen, &h);
	if (r < 0) {
		free(p.frame);
		return -EIO;
	}
	p.id = h.req_id;
	clock_gettime(CLOCK_MONOTONIC, &start);

	pthread_mutex_lock(&cc->plock);
	if (cc->stopping) {
		pthread_mutex_unlock(&cc->plock);
		free(p.frame);
		return -EIO;
	}
	p.next = cc->pending;
	cc->pending = &p;
	if (cc->up)
		p.sent_gen = cc->gen;
	uint64_t epoch = cc->epoch;
	pthread_mutex_unlock(&cc->plock);

	if (p.sent_gen) {
		pthread_mutex_lock(&cc->lock);
		pthread_mutex_lock(&cc->plock);
		/* A reconnect in between sends it itself. */
		bool still = cc->up && cc->gen == p.sent_gen;
		pthread_mutex_unlock(&cc->plock);
		if (still)
			send_locked(cc, p.frame, p.flen, epoch);
		pthread_mutex_unlock(&cc->lock);
	}

	pthread_mutex_lock(&cc->plock);
	while (!p.done && !cc->stopping) {
		if (cc->up) {
			pthread_cond_wait(&cc->pcond, &cc->plock);
			continue;
		}
		/* No coordinator: wait up to the reconnect timeout, counted
		 * from the loss (or this call, if later). */
		double since_lost = seconds_since(&cc->lost_at), since_call = seconds_since(&start);
		double left = cc->reconnect_timeout_s - (since_lost < since_call ? since_lost : since_call);
		if (left <= 0)
			break;
		struct timespec dl;
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_sec += (time_t)(left < 1 ? 0 : 1);
		dl.tv_nsec += left < 1 ? (long)(left * 1e9) : 0;
		if (dl.tv_nsec >= 1000000000) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&cc->pcond, &cc->plock, &dl);
	}
	unlink_pending(cc, &p);
	pthread_mutex_unlock(&cc->plock);
	free(p.frame);
	if (ret_resent)
		*ret_resent = p.resent;
	if (!p.done) {
		if (!cc->stopping)
			client_log(LOG_WARNING, "%s: no coordinator answered in %u s: -EIO", csv_wire_type_name(h.type),
				cc->reconnect_timeout_s);
		return -EIO;
	}
	if (p.status == 0 && ret_buf) {
		*ret_buf = p.buf;
		*ret_len = p.len;
	} else {
		free(p.buf);
	}
	return p.status;
}

/* ---- the reader -------------------------------------------------------------- */

static void cbq_push(struct cbq *q, struct cb_item *it)
{
	if (q->tail)
		q->tail->next = it;
	else
		q->head = it;
	q->tail = it;
	pthread_cond_signal(&q->cond);
}

/* Called with cc->lock held, for each whole frame. */
static int on_frame(struct csv_wire_conn *c, const void *frame, size_t len, void *ud)
{
	struct client_conn *cc = ud;
	struct csv_wire_msghdr h;
	if (csv_wire_hdr_decode(frame, len, &h) < 0)
		return -EBADMSG;
	uint8_t *copy = malloc(len);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, frame, len);
	pthread_mutex_lock(&cc->plock);
	if (h.flags & CSV_WIRE_F_CALLBACK) {
		struct cb_item *it = calloc(1, sizeof(*it));
		if (!it) {
			pthread_mutex_unlock(&cc->plock);
			free(copy);
			return -ENOMEM;
		}
		*it = (struct cb_item){ .buf = copy, .len = len, .gen = cc->gen };
		cbq_push(h.type == CSV_WIRE_LAYOUT_RECALL ? &cc->recall :
			 h.type == CSV_WIRE_INVAL_ENTRY ? &cc->entry : &cc->inval, it);
		pthread_mutex_unlock(&cc->plock);
		return 0;
	}
	struct pending *p;
	for (p = cc->pending; p; p = p->next)
		if (p->id == h.req_id && !p->done)
			break;
	if (p && p->detached) {
		if (h.status < 0)
			client_log(LOG_WARNING, "reopening file after reconnecting: %s", strerror(-h.status));
		unlink_pending(cc, p);
		pending_free(p);
		free(copy);
	} else if (p) {
		p->done = true;
		p->status = h.status;
		p->buf = copy;
		p->len = len;
		pthread_cond_broadcast(&cc->pcond);
	} else {
		client_log(LOG_WARNING, "reply %llu to no request in flight, ignored", (unsigned long long)h.req_id);
		free(copy);
	}
	pthread_mutex_unlock(&cc->plock);
	return 0;
}

/* The connection is gone: requests wait for the next one. */
static void lose_connection(struct client_conn *cc)
{
	pthread_mutex_lock(&cc->lock);
	pthread_mutex_lock(&cc->plock);
	cc->fd = -1;  /* before the socket closes: see client_conn_drop_older() */
	pthread_mutex_unlock(&cc->plock);
	csv_wire_conn_free(cc->c);
	cc->c = NULL;
	pthread_mutex_lock(&cc->plock);
	cc->up = false;
	cc->gen++;
	clock_gettime(CLOCK_MONOTONIC, &cc->lost_at);
	for (struct pending **pp = &cc->pending; *pp;) {
		struct pending *p = *pp;
		if (p->detached) {
			*pp = p->next;
			pending_free(p);
		} else {
			pp = &p->next;
		}
	}
	pthread_cond_broadcast(&cc->pcond);
	pthread_mutex_unlock(&cc->plock);
	pthread_mutex_unlock(&cc->lock);
}

struct reopen_ctx {
	struct client_conn *cc;
	uint64_t epoch;
};

/* Sends OPEN for one open handle, on a new connection (cc->lock held). */
static void reopen_one(void *ud, uint64_t ino)
{
	struct reopen_ctx *x = ud;
	struct client_conn *cc = x->cc;
	struct csv_wire_frame f = { 0 };
	struct csv_wire_open m = { .ino = ino, .flags = CSV_WIRE_OPEN_READ };
	struct pending *p = calloc(1, sizeof(*p));
	if (!p)
		return;
	p->detached = true;
	p->id = client_conn_next_id(cc);
	if (csv_wire_open_encode(&f, p->id, x->epoch, &m) < 0 || csv_wire_frame_flatten(&f, &p->frame, &p->flen) < 0) {
		csv_wire_frame_done(&f);
		free(p);
		return;
	}
	csv_wire_frame_done(&f);
	pthread_mutex_lock(&cc->plock);
	p->next = cc->pending;
	cc->pending = p;
	pthread_mutex_unlock(&cc->plock);
	send_locked(cc, p->frame, p->flen, x->epoch);
}

static int by_id(const void *a, const void *b)
{
	const struct pending *x = *(struct pending *const *)a, *y = *(struct pending *const *)b;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Connects again, reopens the open files, and sends every request still
 * without a reply, in order. Tries until it works or the client stops. */
static void reconnect(struct client_conn *cc)
{
	unsigned pause = RECONNECT_FIRST_MS;
	struct csv_wire_welcome w;
	struct csv_wire_conn *c;
	char err[512], last[512] = "";
	for (;;) {
		pthread_mutex_lock(&cc->plock);
		bool stop = cc->stopping;
		pthread_mutex_unlock(&cc->plock);
		if (stop)
			return;
		if (locate_connect(cc, &c, &w, err, sizeof(err)) == 0)
			break;
		if (strcmp(err, last) != 0)
			client_log(LOG_WARNING, "reconnecting: %s", err);
		snprintf(last, sizeof(last), "%s", err);
		usleep(pause * 1000u);
		pause = pause * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : pause * 2;
	}

	pthread_mutex_lock(&cc->lock);
	cc->c = c;
	pthread_mutex_lock(&cc->plock);
	cc->gen++;
	cc->epoch = w.epoch;
	size_t n = 0;
	for (struct pending *p = cc->pending; p; p = p->next)
		n += !p->done;
	struct pending **resend = calloc(n ? n : 1, sizeof(*resend));
	n = 0;
	for (struct pending *p = cc->pending; p && resend; p = p->next)
		if (!p->done) {
			p->sent_gen = cc->gen;
			p->resent = true;
			resend[n++] = p;
		}
	cc->up = true;
	cc->fd = csv_wire_conn_fd(cc->c);
	struct reopen_ctx x = { .cc = cc, .epoch = cc->epoch };
	client_log(LOG_NOTICE, "reconnected to coordinator %s:%s, epoch %llu; sending %zu requests again",
		cc->host, cc->port, (unsigned long long)w.epoch, n);
	pthread_mutex_unlock(&cc->plock);

	/* The coordinator knows nothing of this client's open files yet. */
	if (cc->hooks.foreach_open)
		cc->hooks.foreach_open(cc->hooks.ud, reopen_one, &x);
	if (resend) {
		qsort(resend, n, sizeof(*resend), by_id);
		/* The pending entries stay until their callers take them,
		 * which needs plock, and those callers wait for replies. */
		for (size_t i = 0; i < n; i++)
			send_locked(cc, resend[i]->frame, resend[i]->flen, x.epoch);
		free(resend);
	} else {
		shutdown(csv_wire_conn_fd(cc->c), SHUT_RDWR);  /* out of memory: try again */
	}
	pthread_mutex_unlock(&cc->lock);
}

static void *reader_main(void *arg)
{
	struct client_conn *cc = arg;
	for (;;) {
		pthread_mutex_lock(&cc->plock);
		bool stop = cc->stopping;
		pthread_mutex_unlock(&cc->plock);
		if (stop)
			break;
		if (!cc->c) {
			reconnect(cc);
			continue;
		}
		struct pollfd pfd = { .fd = csv_wire_conn_fd(cc->c), .events = POLLIN };
		int n = poll(&pfd, 1, 1000);
		if (n <= 0)
			continue;
		pthread_mutex_lock(&cc->lock);
		int r;
		do
			r = csv_wire_conn_read(cc->c, on_frame, cc);
		while (r > 0 && csv_wire_conn_has_frame(cc->c));
		if (r < 0 && r != -EAGAIN) {
			const char *e = csv_wire_conn_error(cc->c);
			client_log(LOG_WARNING, "connection to the coordinator lost: %s", *e ? e : strerror(-r));
		}
		pthread_mutex_unlock(&cc->lock);
		if (r < 0 && r != -EAGAIN)
			lose_connection(cc);
	}
	return NULL;
}

/* ---- callbacks ---------------------------------------------------------------- */

static uint64_t fuse_ino(struct client_conn *cc, uint64_t ino)
{
	return ino == cc->root_ino ? FUSE_ROOT_ID : ino;
}

static void handle_callback(struct client_conn *cc, const struct cb_item *it)
{
	struct csv_wire_msghdr h;
	struct csv_wire_frame r = { 0 };
	const uint8_t *buf = it->buf;
	size_t len = it->len;
	if (csv_wire_hdr_decode(buf, len, &h) < 0)
		return;
	switch (h.type) {
	case CSV_WIRE_INVAL_ENTRY: {
		struct csv_wire_entry_req e;
		if (csv_wire_inval_entry_decode(buf, len, NULL, &e) == 0 && cc->se)
			fuse_lowlevel_notify_inval_entry(cc->se, fuse_ino(cc, e.parent), e.name.s, e.name.len);
		break;
	}
	case CSV_WIRE_INVAL_INODE: {
		struct csv_wire_inval_inode m;
		if (csv_wire_inval_inode_decode(buf, len, NULL, &m) == 0) {
			/* Data changed: the layout may have too. */
			if (cc->hooks.invalidate)
				cc->hooks.invalidate(cc->hooks.ud, m.ino, m.offset >= 0);
			if (cc->se)
				fuse_lowlevel_notify_inval_inode(cc->se, fuse_ino(cc, m.ino), m.offset, (off_t)m.length);
		}
		break;
	}
	case CSV_WIRE_LAYOUT_RECALL: {
		struct csv_wire_layout_return m;
		if (csv_wire_layout_recall_decode(buf, len, NULL, &m) == 0 && cc->hooks.invalidate)
			cc->hooks.invalidate(cc->hooks.ud, m.ino, true);
		break;
	}
	case CSV_WIRE_EPOCH_CHANGE: {
		struct csv_wire_epoch_change m;
		if (csv_wire_epoch_change_decode(buf, len, NULL, &m) == 0) {
			pthread_mutex_lock(&cc->plock);
			if (m.new_epoch > cc->epoch)
				cc->epoch = m.new_epoch;
			pthread_mutex_unlock(&cc->plock);
		}
		break;
	}
	default:
		break;
	}
	/* The answer goes to the connection the callback came on, if it is
	 * still there. */
	if (csv_wire_reply_status_encode(&r, &h, client_conn_epoch(cc), 0) == 0) {
		pthread_mutex_lock(&cc->lock);
		pthread_mutex_lock(&cc->plock);
		bool same = cc->up && cc->gen == it->gen;
		pthread_mutex_unlock(&cc->plock);
		if (same && cc->c && csv_wire_conn_send_wait(cc->c, &r, SEND_TIMEOUT_MS) < 0)
			client_log(LOG_WARNING, "cannot answer a %s callback", csv_wire_type_name(h.type));
		pthread_mutex_unlock(&cc->lock);
		csv_wire_frame_done(&r);
	}
}

static void *cb_main(void *arg)
{
	struct cbq *q = arg;
	struct client_conn *cc = q->cc;
	pthread_mutex_lock(&cc->plock);
	for (;;) {
		while (!q->head && !cc->stopping)
			pthread_cond_wait(&q->cond, &cc->plock);
		if (!q->head)
			break;
		struct cb_item *it = q->head;
		q->head = it->next;
		if (!q->head)
			q->tail = NULL;
		pthread_mutex_unlock(&cc->plock);
		handle_callback(cc, it);
		free(it->buf);
		free(it);
		pthread_mutex_lock(&cc->plock);
	}
	pthread_mutex_unlock(&cc->plock);
	return NULL;
}

/* Stops the reader (with reader) and the first nq callback threads. */
static void stop_threads(struct client_conn *cc, bool reader, int nq)
{
	struct cbq *qs[] = { &cc->inval, &cc->entry, &cc->recall };
	pthread_mutex_lock(&cc->plock);
	cc->stopping = true;
	pthread_cond_broadcast(&cc->pcond);
	for (int i = 0; i < 3; i++)
		pthread_cond_broadcast(&qs[i]->cond);
	pthread_mutex_unlock(&cc->plock);
	if (reader)
		pthread_join(cc->reader, NULL);
	for (int i = 0; i < nq; i++)
		pthread_join(qs[i]->thread, NULL);
}

int client_conn_start(struct client_conn *cc, struct fuse_session *se, const struct client_conn_hooks *hooks)
{
	cc->se = se;
	if (hooks)
		cc->hooks = *hooks;
	struct cbq *qs[] = { &cc->inval, &cc->entry, &cc->recall };
	int r = pthread_create(&cc->reader, NULL, reader_main, cc);
	if (r)
		return -r;
	for (int i = 0; i < 3; i++) {
		r = pthread_create(&qs[i]->thread, NULL, cb_main, qs[i]);
		if (r) {
			stop_threads(cc, true, i);
			return -r;
		}
	}
	cc->started = true;
	return 0;
}

static void cbq_clear(struct cbq *q)
{
	while (q->head) {
		struct cb_item *it = q->head;
		q->head = it->next;
		free(it->buf);
		free(it);
	}
	pthread_cond_destroy(&q->cond);
}

void client_conn_close(struct client_conn *cc)
{
	if (!cc)
		return;
	if (cc->started)
		stop_threads(cc, true, 3);
	cbq_clear(&cc->inval);
	cbq_clear(&cc->entry);
	cbq_clear(&cc->recall);
	while (cc->pending) {
		struct pending *p = cc->pending;
		cc->pending = p->next;
		if (p->detached)
			pending_free(p);
	}
	csv_wire_conn_free(cc->c);
	pthread_mutex_destroy(&cc->lock);
	pthread_mutex_destroy(&cc->plock);
	pthread_cond_destroy(&cc->pcond);
	conn_free(cc);
}
