/* SPDX-License-Identifier: GPL-2.0-or-later */
#define FUSE_USE_VERSION 312
#include <errno.h>
#include <fuse_lowlevel.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client-conn.h"
#include "wire-auth.h"
#include "wire-conn.h"

#define SEND_TIMEOUT_MS 30000

struct pending {
	uint64_t id;
	bool done;
	int status;
	uint8_t *buf;
	size_t len;
	struct pending *next;
};

struct cb_item {
	uint8_t *buf;
	size_t len;
	struct cb_item *next;
};

struct client_conn {
	struct csv_wire_conn *c;
	pthread_mutex_t lock;       /* the csv_wire_conn */
	pthread_mutex_t plock;      /* pending, broken, epoch, callbacks */
	pthread_cond_t pcond;
	struct pending *pending;
	bool broken;
	bool stopping;
	uint64_t epoch;
	uint64_t root_ino;
	struct fuse_session *se;
	pthread_t reader, cbthread;
	bool started;
	pthread_cond_t cbcond;
	struct cb_item *cb_head, *cb_tail;
};

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

int client_conn_open(const struct client_conn_params *p, struct client_conn **ret,
		     struct csv_wire_welcome *ret_welcome, char *err, size_t errlen)
{
	struct csv_wire_key key;
	struct csv_wire_auth_client_params ap = { .key = &key, .node_id = p->node_id };
	struct csv_wire_welcome w;
	struct client_conn *cc;
	int r = csv_wire_key_load(p->keyfile, &key, err, errlen);
	if (r < 0)
		return r;
	memcpy(ap.volume_uuid, p->volume_uuid, sizeof(ap.volume_uuid));
	int fd = tcp_connect(p->host, p->port);
	if (fd < 0) {
		snprintf(err, errlen, "cannot connect to coordinator %s:%s: %s", p->host, p->port, strerror(-fd));
		csv_wire_key_wipe(&key);
		return fd;
	}
	cc = calloc(1, sizeof(*cc));
	if (!cc) {
		close(fd);
		csv_wire_key_wipe(&key);
		return -ENOMEM;
	}
	r = csv_wire_conn_new(fd, &cc->c);
	if (r == 0)
		r = csv_wire_auth_client_run(cc->c, &ap, 10000, &w, err, errlen);
	csv_wire_key_wipe(&key);
	if (r < 0) {
		csv_wire_conn_free(cc->c);
		free(cc);
		return r;
	}
	pthread_mutex_init(&cc->lock, NULL);
	pthread_mutex_init(&cc->plock, NULL);
	pthread_cond_init(&cc->pcond, NULL);
	pthread_cond_init(&cc->cbcond, NULL);
	cc->epoch = w.epoch;
	cc->root_ino = w.root_ino;
	*ret_welcome = w;
	*ret = cc;
	return 0;
}

uint64_t client_conn_next_id(struct client_conn *cc)
{
	pthread_mutex_lock(&cc->lock);
	uint64_t id = csv_wire_conn_next_id(cc->c);
	pthread_mutex_unlock(&cc->lock);
	return id;
}

uint64_t client_conn_epoch(struct client_conn *cc)
{
	pthread_mutex_lock(&cc->plock);
	uint64_t e = cc->epoch;
	pthread_mutex_unlock(&cc->plock);
	return e;
}

static void mark_broken(struct client_conn *cc)
{
	pthread_mutex_lock(&cc->plock);
	cc->broken = true;
	pthread_cond_broadcast(&cc->pcond);
	pthread_cond_broadcast(&cc->cbcond);
	pthread_mutex_unlock(&cc->plock);
}

int client_conn_call(struct client_conn *cc, struct csv_wire_frame *f, uint8_t **ret_buf, size_t *ret_len)
{
	struct csv_wire_msghdr h;
	struct pending p = { 0 };
	int r = csv_wire_hdr_decode(f->buf, f->len, &h);
	if (r < 0) {
		csv_wire_frame_done(f);
		return -EIO;
	}
	p.id = h.req_id;
	pthread_mutex_lock(&cc->plock);
	if (cc->broken) {
		pthread_mutex_unlock(&cc->plock);
		csv_wire_frame_done(f);
		return -EIO;
	}
	p.next = cc->pending;
	cc->pending = &p;
	pthread_mutex_unlock(&cc->plock);

	pthread_mutex_lock(&cc->lock);
	r = csv_wire_conn_send_wait(cc->c, f, SEND_TIMEOUT_MS);
	pthread_mutex_unlock(&cc->lock);
	csv_wire_frame_done(f);
	if (r < 0) {
		fprintf(stderr, "csvfs: sending %s to the coordinator failed: %s\n", csv_wire_type_name(h.type),
			strerror(-r));
		mark_broken(cc);
	}

	pthread_mutex_lock(&cc->plock);
	while (!p.done && !cc->broken)
		pthread_cond_wait(&cc->pcond, &cc->plock);
	/* Unlink. */
	for (struct pending **pp = &cc->pending; *pp; pp = &(*pp)->next)
		if (*pp == &p) {
			*pp = p.next;
			break;
		}
	pthread_mutex_unlock(&cc->plock);
	if (!p.done)
		return -EIO;
	if (p.status == 0 && ret_buf) {
		*ret_buf = p.buf;
		*ret_len = p.len;
	} else {
		free(p.buf);
	}
	return p.status;
}

/* Reader: called with cc->lock held, for each whole frame. */
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
		it->buf = copy;
		it->len = len;
		if (cc->cb_tail)
			cc->cb_tail->next = it;
		else
			cc->cb_head = it;
		cc->cb_tail = it;
		pthread_cond_signal(&cc->cbcond);
		pthread_mutex_unlock(&cc->plock);
		return 0;
	}
	struct pending *p;
	for (p = cc->pending; p; p = p->next)
		if (p->id == h.req_id && !p->done)
			break;
	if (p) {
		p->done = true;
		p->status = h.status;
		p->buf = copy;
		p->len = len;
		pthread_cond_broadcast(&cc->pcond);
	} else {
		fprintf(stderr, "csvfs: reply %llu to no request in flight, ignored\n", (unsigned long long)h.req_id);
		free(copy);
	}
	pthread_mutex_unlock(&cc->plock);
	return 0;
}

static void *reader_main(void *arg)
{
	struct client_conn *cc = arg;
	int fd = csv_wire_conn_fd(cc->c);
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int n = poll(&pfd, 1, 1000);
		pthread_mutex_lock(&cc->plock);
		bool stop = cc->stopping;
		pthread_mutex_unlock(&cc->plock);
		if (stop)
			break;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			continue;
		pthread_mutex_lock(&cc->lock);
		int r;
		do
			r = csv_wire_conn_read(cc->c, on_frame, cc);
		while (r > 0 && csv_wire_conn_has_frame(cc->c));
		pthread_mutex_unlock(&cc->lock);
		if (r < 0 && r != -EAGAIN) {
			pthread_mutex_lock(&cc->lock);
			const char *e = csv_wire_conn_error(cc->c);
			fprintf(stderr, "csvfs: connection to the coordinator lost: %s\n", *e ? e : strerror(-r));
			pthread_mutex_unlock(&cc->lock);
			break;
		}
	}
	mark_broken(cc);
	return NULL;
}

static uint64_t fuse_ino(struct client_conn *cc, uint64_t ino)
{
	return ino == cc->root_ino ? FUSE_ROOT_ID : ino;
}

static void handle_callback(struct client_conn *cc, const uint8_t *buf, size_t len)
{
	struct csv_wire_msghdr h;
	struct csv_wire_frame r = { 0 };
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
		if (csv_wire_inval_inode_decode(buf, len, NULL, &m) == 0 && cc->se)
			fuse_lowlevel_notify_inval_inode(cc->se, fuse_ino(cc, m.ino), m.offset, (off_t)m.length);
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
		/* LAYOUT_RECALL: no layout is cached, nothing to return. */
		break;
	}
	if (csv_wire_reply_status_encode(&r, &h, client_conn_epoch(cc), 0) == 0) {
		pthread_mutex_lock(&cc->lock);
		if (csv_wire_conn_send_wait(cc->c, &r, SEND_TIMEOUT_MS) < 0)
			fprintf(stderr, "csvfs: cannot answer a %s callback\n", csv_wire_type_name(h.type));
		pthread_mutex_unlock(&cc->lock);
		csv_wire_frame_done(&r);
	}
}

static void *cb_main(void *arg)
{
	struct client_conn *cc = arg;
	pthread_mutex_lock(&cc->plock);
	for (;;) {
		while (!cc->cb_head && !cc->broken && !cc->stopping)
			pthread_cond_wait(&cc->cbcond, &cc->plock);
		if (!cc->cb_head)
			break;
		struct cb_item *it = cc->cb_head;
		cc->cb_head = it->next;
		if (!cc->cb_head)
			cc->cb_tail = NULL;
		pthread_mutex_unlock(&cc->plock);
		handle_callback(cc, it->buf, it->len);
		free(it->buf);
		free(it);
		pthread_mutex_lock(&cc->plock);
	}
	pthread_mutex_unlock(&cc->plock);
	return NULL;
}

int client_conn_start(struct client_conn *cc, struct fuse_session *se)
{
	cc->se = se;
	int r = pthread_create(&cc->reader, NULL, reader_main, cc);
	if (r)
		return -r;
	r = pthread_create(&cc->cbthread, NULL, cb_main, cc);
	if (r) {
		pthread_mutex_lock(&cc->plock);
		cc->stopping = true;
		pthread_mutex_unlock(&cc->plock);
		pthread_join(cc->reader, NULL);
		return -r;
	}
	cc->started = true;
	return 0;
}

void client_conn_close(struct client_conn *cc)
{
	if (!cc)
		return;
	pthread_mutex_lock(&cc->plock);
	cc->stopping = true;
	pthread_cond_broadcast(&cc->cbcond);
	pthread_mutex_unlock(&cc->plock);
	if (cc->started) {
		pthread_join(cc->reader, NULL);
		pthread_join(cc->cbthread, NULL);
	}
	while (cc->cb_head) {
		struct cb_item *it = cc->cb_head;
		cc->cb_head = it->next;
		free(it->buf);
		free(it);
	}
	csv_wire_conn_free(cc->c);
	pthread_mutex_destroy(&cc->lock);
	pthread_mutex_destroy(&cc->plock);
	pthread_cond_destroy(&cc->pcond);
	pthread_cond_destroy(&cc->cbcond);
	free(cc);
}
