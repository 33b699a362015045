/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A wire-protocol client that drives a running csv-coordinatord, as
 * tests/test-coordinator.sh starts it.
 *   test-coordinator ops|persist|verify HOST PORT KEYFILE UUID
 * ops: every served request and the refusals; persist: creates p0..p19
 * and reports once each was acknowledged; verify: they are all there. */
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format.h"
#include "wire-auth.h"
#include "wire-conn.h"
#include "wire.h"

static const char *host, *port;
static struct csv_wire_key key;
static uint8_t uuid[16];
static int failures;
static uint64_t epoch = 1;

#define CHECK(cond, ...)                                          \
	do {                                                      \
		if (cond) {                                       \
			printf("ok: " __VA_ARGS__);               \
		} else {                                          \
			printf("FAIL (%s:%d): ", __FILE__, __LINE__); \
			printf(__VA_ARGS__);                      \
			failures++;                               \
		}                                                 \
		putchar('\n');                                    \
	} while (0)

static int tcp_connect(void)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	if (getaddrinfo(host, port, &hints, &ai) != 0)
		return -1;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

/* A connection of node, authenticated with k; NULL on failure. */
static struct csv_wire_conn *client(uint32_t node, const struct csv_wire_key *k, struct csv_wire_welcome *w,
				    char *err, size_t errlen)
{
	struct csv_wire_auth_client_params p = { .key = k, .node_id = node };
	struct csv_wire_welcome ww;
	struct csv_wire_conn *c;
	int fd = tcp_connect();
	memcpy(p.volume_uuid, uuid, 16);
	if (fd < 0 || csv_wire_conn_new(fd, &c) < 0) {
		snprintf(err, errlen, "cannot connect");
		return NULL;
	}
	if (csv_wire_auth_client_run(c, &p, 5000, &ww, err, errlen) < 0) {
		csv_wire_conn_free(c);
		return NULL;
	}
	if (w)
		*w = ww;
	epoch = ww.epoch;  /* requests name the epoch of the coordinator */
	return c;
}

struct rx {
	uint8_t *buf;
	size_t len;
};

static int grab(struct csv_wire_conn *c, const void *frame, size_t len, void *ud)
{
	struct rx *rx = ud;
	rx->buf = malloc(len);
	memcpy(rx->buf, frame, len);
	rx->len = len;
	return 1;
}

/* Callbacks received, and the name of the last INVAL_ENTRY. */
static int ncallbacks;
static char last_inval_name[256];

/* Callbacks received, by type. */
static int ncallbacks_of[128];

/* Waits for the reply to request id of type (malloc'd in *ret) and its
 * header; answers callbacks on the way. Returns the reply's status, or
 * -1000 for a transport failure or a timeout of ms. */
static int wait_reply(struct csv_wire_conn *c, uint64_t id, uint16_t type, int ms, struct rx *ret,
		      struct csv_wire_msghdr *ret_h)
{
	struct csv_wire_msghdr rh;
	for (;;) {
		struct rx rx = { 0 };
		if (csv_wire_conn_read_wait(c, ms, grab, &rx) <= 0)
			return -1000;
		if (csv_wire_hdr_decode(rx.buf, rx.len, &rh) < 0) {
			free(rx.buf);
			return -1000;
		}
		if (rh.flags & CSV_WIRE_F_CALLBACK) {
			struct csv_wire_frame r = { 0 };
			struct csv_wire_entry_req e;
			ncallbacks++;
			ncallbacks_of[rh.type & 127]++;
			if (rh.type == CSV_WIRE_INVAL_ENTRY && csv_wire_inval_entry_decode(rx.buf, rx.len, NULL, &e) == 0)
				snprintf(last_inval_name, sizeof(last_inval_name), "%s", e.name.s);
			csv_wire_reply_status_encode(&r, &rh, epoch, 0);
			csv_wire_conn_send_wait(c, &r, 5000);
			free(rx.buf);
			continue;
		}
		if (rh.req_id != id || rh.type != type) {
			free(rx.buf);
			return -1000;
		}
		if (ret && rh.status == 0)
			*ret = rx;
		else
			free(rx.buf);
		if (ret_h)
			*ret_h = rh;
		return rh.status;
	}
}

/* Sends f and returns the reply to it, as wait_reply(). */
static int call(struct csv_wire_conn *c, struct csv_wire_frame *f, struct rx *ret, struct csv_wire_msghdr *ret_h)
{
	struct csv_wire_msghdr h;
	if (csv_wire_hdr_decode(f->buf, f->len, &h) < 0 || csv_wire_conn_send_wait(c, f, 5000) < 0)
		return -1000;
	return wait_reply(c, h.req_id, h.type, 5000, ret, ret_h);
}

/* Requests answered with an attr: status, and *a when 0. */
static int call_attr(struct csv_wire_conn *c, struct csv_wire_frame *f, uint16_t type, struct csv_wire_attr *a)
{
	struct rx rx;
	int r = call(c, f, &rx, NULL);
	if (r == 0) {
		if (csv_wire_attr_reply_decode(rx.buf, rx.len, type, NULL, a) < 0)
			r = -1001;
		free(rx.buf);
	}
	return r;
}

static int lookup(struct csv_wire_conn *c, uint64_t parent, const char *name, struct csv_wire_attr *a)
{
	struct csv_wire_frame f = { 0 };
	struct csv_wire_entry_req m = { .parent = parent };
	csv_wire_name_set(&m.name, name);
	csv_wire_lookup_encode(&f, csv_wire_conn_next_id(c), epoch, &m);
	return call_attr(c, &f, CSV_WIRE_LOOKUP, a);
}

static int mkdir_id(struct csv_wire_conn *c, uint64_t id, uint64_t parent, const char *name,
		    struct csv_wire_attr *a)
{
	struct csv_wire_frame f = { 0 };
	struct csv_wire_mkdir m = { .parent = parent, .mode = 0755, .uid = 1000, .gid = 100 };
	csv_wire_name_set(&m.name, name);
	csv_wire_mkdir_encode(&f, id, epoch, &m);
	return call_attr(c, &f, CSV_WIRE_MKDIR, a);
}

static int do_mkdir(struct csv_wire_conn *c, uint64_t parent, const char *name, struct csv_wire_attr *a)
{
	return mkdir_id(c, csv_wire_conn_next_id(c), parent, name, a);
}

static int do_mknod(struct csv_wire_conn *c, uint64_t parent, const char *name, struct csv_wire_attr *a)
{
	struct csv_wire_frame f = { 0 };
	struct csv_wire_mknod m = { .parent = parent, .mode = S_IFREG | 0640, .uid = 1000, .gid = 100 };
	csv_wire_name_set(&m.name, name);
	csv_wire_mknod_encode(&f, csv_wire_conn_next_id(c), epoch, &m);
	return call_attr(c, &f, CSV_WIRE_MKNOD, a);
}

static int remove_entry(struct csv_wire_conn *c, bool dir, uint64_t parent, const char *name)
{
	struct csv_wire_frame f = { 0 };
	struct csv_wire_entry_req m = { .parent = parent };
	csv_wire_name_set(&m.name, name);
	if (dir)
		csv_wire_rmdir_encode(&f, csv_wire_conn_next_id(c), epoch, &m);
	else
		csv_wire_unlink_encode(&f, csv_wire_conn_next_id(c), epoch, &m);
	return call(c, &f, NULL, NULL);
}

static int ping(struct csv_wire_conn *c)
{
	struct csv_wire_frame f = { 0 };
	csv_wire_empty_encode(&f, CSV_WIRE_PING, CSV_WIRE_F_REQUEST, csv_wire_conn_next_id(c), epoch, 0);
	return call(c, &f, NULL, NULL);
}

/* Writes raw bytes and reports whether the daemon then closed the
 * connection (within 5 s). */
static bool closed_after(int fd, const void *bytes, size_t n)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char buf[4096];
	if (send(fd, bytes, n, MSG_NOSIGNAL) != (ssize_t)n)
		return true;
	for (;;) {
		if (poll(&p, 1, 5000) <= 0)
			return false;
		ssize_t got = recv(fd, buf, sizeof(buf), 0);
		if (got == 0 || (got < 0 && errno == ECONNRESET))
			return true;
		if (got < 0)
			return false;
	}
}

static int getattr(struct csv_wire_conn *c, uint64_t ino, struct csv_wire_attr *a)
{
	struct csv_wire_frame f = { 0 };
	struct csv_wire_ino_req m = { .ino = ino };
	csv_wire_getattr_encode(&f, csv_wire_conn_next_id(c), epoch, &m);
	return call_attr(c, &f, CSV_WIRE_GETATTR, a);
}

static int setattr(struct csv_wire_conn *c, const struct csv_wire_setattr *m, struct csv_wire_attr *a)
{
	struct csv_wire_frame f = { 0 };
	csv_wire_setattr_encode(&f, csv_wire_conn_next_id(c), epoch, m);
	return call_attr(c, &f, CSV_WIRE_SETATTR, a);
}

static int rename_entry(struct csv_wire_conn *c, uint64_t parent, const char *name, uint64_t newparent,
			const char *newname, uint32_t flags)
{
	struct csv_wire_frame f = { 0 };
	struct csv_wire_rename m = { .parent = parent, .newparent = newparent, .flags = flags };
	csv_wire_name_set(&m.name, name);
	csv_wire_name_set(&m.newname, newname);
	csv_wire_rename_encode(&f, csv_wire_conn_next_id(c), epoch, &m);
	return call(c, &f, NULL, NULL);
}

static int fallocate_req(struct csv_wire_conn *c, uint64_t ino, uint32_t mode, uint64_t off, uint64_t len,
			 struct csv_wire_attr *a)
{
	struct csv_wire_frame f = { 0 };
	struct csv_wire_fallocate m = { .ino = ino, .mode = mode, .offset = off, .length = len };
	csv_wire_fallocate_encode(&f, csv_wire_conn_next_id(c), epoch, &m);
	return call_attr(c, &f, CSV_WIRE_FALLOCATE, a);
}

/* LAYOUT_GET: status, and the layout (extents to free) when 0. */
static int layout_get(struct csv_wire_conn *c, uint64_t ino, uint64_t off, uint64_t len, bool write,
		      struct csv_wire_layout *l)
{
	struct csv_wire_frame f = { 0 };
	struct csv_wire_layout_get m = { .ino = ino, .offset = off, .length = len,
					 .flags = write ? CSV_WIRE_LAYOUT_WRITE : 0 };
	struct rx rx;
	csv_wire_layout_get_encode(&f, csv_wire_conn_next_id(c), epoch, &m);
	int r = call(c, &f, &rx, NULL);
	if (r == 0) {
		*l = (struct csv_wire_layout){ 0 };
		if (csv_wire_layout_get_reply_decode(rx.buf, rx.len, NULL, l) < 0)
			r = -1001;
		free(rx.buf);
	}
	return r;
}

static int xattr_call(struct csv_wire_conn *c, uint64_t ino, const char *name, bool remove)
{
	struct csv_wire_frame f = { 0 };
	if (remove) {
		struct csv_wire_removexattr m = { .ino = ino };
		csv_wire_xattr_name_set(&m.name, name);
		csv_wire_removexattr_encode(&f, csv_wire_conn_next_id(c), epoch, &m);
	} else {
		struct csv_wire_getxattr m = { .ino = ino, .max = 64 };
		csv_wire_xattr_name_set(&m.name, name);
		csv_wire_getxattr_encode(&f, csv_wire_conn_next_id(c), epoch, &m);
	}
	struct rx rx;
	int r = call(c, &f, &rx, NULL);
	if (r == 0)
		free(rx.buf);
	return r;
}

/* SETATTR, OPEN with TRUNC, RENAME, REMOVEXATTR, FALLOCATE, LAYOUT_GET and
 * LAYOUT_COMMIT, in a directory /t removed at the end. */
static void test_changes(struct csv_wire_conn *A, struct csv_wire_conn *B, uint64_t root)
{
	struct csv_wire_attr t, fa, ca, a;
	struct csv_wire_frame f = { 0 };
	int r;

	r = do_mkdir(A, root, "t", &t);
	CHECK(r == 0, "MKDIR /t: %d", r);
	r = do_mknod(A, t.ino, "a", &fa);
	CHECK(r == 0, "MKNOD /t/a: %d", r);

	/* SETATTR */
	struct csv_wire_setattr sm = { .ino = fa.ino, .valid = CSV_WIRE_SET_MODE, .mode = 0600 };
	r = setattr(A, &sm, &a);
	CHECK(r == 0 && a.mode == (S_IFREG | 0600), "SETATTR mode 0600 (chmod): %d, mode 0%o", r, a.mode);
	r = getattr(A, fa.ino, &a);
	CHECK(r == 0 && a.mode == (S_IFREG | 0600), "GETATTR shows mode 0%o", a.mode);
	sm = (struct csv_wire_setattr){ .ino = fa.ino, .valid = CSV_WIRE_SET_UID | CSV_WIRE_SET_GID | CSV_WIRE_SET_MTIME,
					.uid = 42, .gid = 43, .mtime_ns = 1234567890123456789ll };
	r = setattr(A, &sm, &a);
	CHECK(r == 0 && a.uid == 42 && a.gid == 43 && a.mtime_ns == 1234567890123456789ll,
	      "SETATTR uid, gid, mtime (chown, utimes): %d", r);
	sm = (struct csv_wire_setattr){ .ino = fa.ino, .valid = CSV_WIRE_SET_ATIME_NOW | CSV_WIRE_SET_MTIME_NOW };
	r = setattr(A, &sm, &a);
	CHECK(r == 0 && a.atime_ns > 1600000000000000000ll && a.mtime_ns > 1600000000000000000ll &&
	      a.mtime_ns != 1234567890123456789ll, "SETATTR ATIME_NOW, MTIME_NOW: %d", r);
	sm = (struct csv_wire_setattr){ .ino = fa.ino, .valid = CSV_WIRE_SET_SIZE, .size = 5000 };
	r = setattr(A, &sm, &a);
	CHECK(r == 0 && a.size == 5000, "SETATTR size 5000 (extend): %d, size %llu", r, (unsigned long long)a.size);
	sm.size = 10;
	r = setattr(A, &sm, &a);
	CHECK(r == 0 && a.size == 10, "SETATTR size 10 (truncate): %d, size %llu", r, (unsigned long long)a.size);
	r = getattr(A, fa.ino, &a);
	CHECK(r == 0 && a.size == 10, "GETATTR shows size %llu", (unsigned long long)a.size);
	sm.ino = t.ino;
	r = setattr(A, &sm, &a);
	CHECK(r == -EISDIR, "SETATTR size of a directory: %d", r);
	sm.ino = CSV_REF(CSV_REF_RECNO(fa.ino), CSV_REF_SEQ(fa.ino) + 1);
	r = setattr(A, &sm, &a);
	CHECK(r == -ESTALE, "SETATTR with a stale sequence number: %d", r);
	if (B) {
		ping(B);
		ncallbacks = 0;
		sm = (struct csv_wire_setattr){ .ino = fa.ino, .valid = CSV_WIRE_SET_MODE, .mode = 0640 };
		r = setattr(A, &sm, &a);
		CHECK(r == 0 && ping(B) == 0 && ncallbacks >= 1, "SETATTR sends node 3 INVAL_INODE (%d callbacks)",
		      ncallbacks);
	}

	/* OPEN with TRUNC */
	struct csv_wire_open om = { .ino = fa.ino, .flags = CSV_WIRE_OPEN_WRITE | CSV_WIRE_OPEN_TRUNC };
	csv_wire_open_encode(&f, csv_wire_conn_next_id(A), epoch, &om);
	r = call_attr(A, &f, CSV_WIRE_OPEN, &a);
	CHECK(r == 0 && a.size == 0, "OPEN with TRUNC empties the file: %d, size %llu", r, (unsigned long long)a.size);
	om.flags = CSV_WIRE_OPEN_WRITE;
	csv_wire_release_encode(&f, csv_wire_conn_next_id(A), epoch, &om);
	CHECK(call(A, &f, NULL, NULL) == 0, "RELEASE");

	/* RENAME */
	if (B)
		ping(B);
	ncallbacks = 0;
	last_inval_name[0] = '\0';
	r = rename_entry(A, t.ino, "a", t.ino, "b", 0);
	CHECK(r == 0, "RENAME /t/a to /t/b: %d", r);
	r = lookup(A, t.ino, "a", &a);
	CHECK(r == -ENOENT, "LOOKUP /t/a after RENAME: %d", r);
	r = lookup(A, t.ino, "b", &a);
	CHECK(r == 0 && a.ino == fa.ino, "LOOKUP /t/b gives the renamed file: %d", r);
	if (B)
		CHECK(ping(B) == 0 && ncallbacks >= 2, "RENAME sends node 3 callbacks (%d)", ncallbacks);
	r = do_mknod(A, t.ino, "c", &ca);
	CHECK(r == 0, "MKNOD /t/c: %d", r);
	r = rename_entry(A, t.ino, "b", t.ino, "c", CSV_WIRE_RENAME_NOREPLACE);
	CHECK(r == -EEXIST, "RENAME NOREPLACE over /t/c: %d", r);
	r = rename_entry(A, t.ino, "b", t.ino, "c", CSV_WIRE_RENAME_EXCHANGE);
	CHECK(r == 0, "RENAME EXCHANGE /t/b and /t/c: %d", r);
	r = lookup(A, t.ino, "b", &a);
	CHECK(r == 0 && a.ino == ca.ino, "/t/b is now the former /t/c");
	r = lookup(A, t.ino, "c", &a);
	CHECK(r == 0 && a.ino == fa.ino, "/t/c is now the former /t/b");
	r = rename_entry(A, CSV_REF(CSV_REF_RECNO(t.ino), CSV_REF_SEQ(t.ino) + 1), "b", t.ino, "x", 0);
	CHECK(r == -ESTALE, "RENAME from a stale parent: %d", r);
	r = rename_entry(A, t.ino, "missing", t.ino, "x", 0);
	CHECK(r == -ENOENT, "RENAME of a missing name: %d", r);
	r = rename_entry(A, root, "t", t.ino, "x", 0);
	CHECK(r == -EINVAL, "RENAME of /t under itself: %d", r);

	/* REMOVEXATTR */
	struct csv_wire_setxattr sx = { .ino = fa.ino, .value = "v", .value_len = 1 };
	csv_wire_xattr_name_set(&sx.name, "user.x");
	csv_wire_setxattr_encode(&f, csv_wire_conn_next_id(A), epoch, &sx);
	CHECK(call(A, &f, NULL, NULL) == 0, "SETXATTR user.x");
	CHECK(xattr_call(A, fa.ino, "user.x", false) == 0, "GETXATTR user.x");
	r = xattr_call(A, fa.ino, "user.x", true);
	CHECK(r == 0, "REMOVEXATTR user.x: %d", r);
	r = xattr_call(A, fa.ino, "user.x", false);
	CHECK(r == -ENODATA, "GETXATTR after REMOVEXATTR: %d", r);
	r = xattr_call(A, fa.ino, "user.x", true);
	CHECK(r == -ENODATA, "REMOVEXATTR of a missing attribute: %d", r);
	r = xattr_call(A, CSV_REF(CSV_REF_RECNO(fa.ino), CSV_REF_SEQ(fa.ino) + 1), "user.x", true);
	CHECK(r == -ESTALE, "REMOVEXATTR with a stale sequence number: %d", r);

	/* FALLOCATE */
	r = fallocate_req(A, ca.ino, 0, 0, 65536, &a);
	CHECK(r == 0 && a.size == 65536 && a.alloc_clusters > 0, "FALLOCATE 64 KiB: %d, size %llu, %llu clusters", r,
	      (unsigned long long)a.size, (unsigned long long)a.alloc_clusters);
	uint64_t clusters = a.alloc_clusters;
	r = fallocate_req(A, ca.ino, CSV_WIRE_FALLOC_KEEP_SIZE, 65536, 65536, &a);
	CHECK(r == 0 && a.size == 65536 && a.alloc_clusters > clusters, "FALLOCATE KEEP_SIZE beyond the end: %d", r);
	r = fallocate_req(A, ca.ino, CSV_WIRE_FALLOC_KEEP_SIZE | CSV_WIRE_FALLOC_PUNCH_HOLE, 0, 131072, &a);
	CHECK(r == 0 && a.size == 65536 && a.alloc_clusters == 0, "FALLOCATE PUNCH_HOLE: %d, %llu clusters left", r,
	      (unsigned long long)a.alloc_clusters);
	r = fallocate_req(A, ca.ino, CSV_WIRE_FALLOC_ZERO_RANGE, 0, 4096, &a);
	CHECK(r == -EOPNOTSUPP, "FALLOCATE ZERO_RANGE: %d", r);
	r = fallocate_req(A, t.ino, 0, 0, 4096, &a);
	CHECK(r == -EISDIR, "FALLOCATE of a directory: %d", r);

	/* LAYOUT_GET and LAYOUT_COMMIT */
	struct csv_wire_attr na;
	struct csv_wire_layout l;
	r = do_mknod(A, t.ino, "n", &na);
	CHECK(r == 0, "MKNOD /t/n: %d", r);
	r = layout_get(A, na.ino, 0, 8192, true, &l);
	bool unwritten = r == 0 && l.n_extents > 0 && l.extents[0].file_offset == 0;
	uint64_t covered = 0;
	for (uint32_t i = 0; r == 0 && i < l.n_extents; i++) {
		unwritten = unwritten && (l.extents[i].flags & CSV_WIRE_EXTENT_UNWRITTEN) && l.extents[i].length > 0;
		covered += l.extents[i].length;
	}
	CHECK(unwritten && covered >= 8192 && l.size == 0, "LAYOUT_GET for write on a new file: %d, %u unwritten extents",
	      r, r == 0 ? l.n_extents : 0);
	if (r == 0)
		csv_wire_layout_free(&l);
	struct csv_wire_range wr = { .offset = 0, .length = 8192 };
	struct csv_wire_layout_commit lc = { .ino = na.ino, .size = 8192, .valid_data_length = 8192,
					     .flags = CSV_WIRE_COMMIT_SIZE | CSV_WIRE_COMMIT_VDL,
					     .n_ranges = 1, .ranges = &wr };
	csv_wire_layout_commit_encode(&f, csv_wire_conn_next_id(A), epoch, &lc);
	r = call_attr(A, &f, CSV_WIRE_LAYOUT_COMMIT, &a);
	CHECK(r == 0 && a.size == 8192 && a.valid_data_length == 8192, "LAYOUT_COMMIT sets the size: %d, size %llu",
	      r, (unsigned long long)a.size);
	r = getattr(A, na.ino, &a);
	CHECK(r == 0 && a.size == 8192, "GETATTR shows size %llu", (unsigned long long)a.size);
	r = layout_get(A, na.ino, 0, 8192, false, &l);
	CHECK(r == 0 && l.n_extents >= 1 && !(l.extents[0].flags & CSV_WIRE_EXTENT_UNWRITTEN) && l.size == 8192,
	      "LAYOUT_GET for read: written extents: %d", r);
	if (r == 0)
		csv_wire_layout_free(&l);
	r = layout_get(A, t.ino, 0, 4096, false, &l);
	CHECK(r == -EISDIR, "LAYOUT_GET of a directory: %d", r);
	r = layout_get(A, CSV_REF(CSV_REF_RECNO(na.ino), CSV_REF_SEQ(na.ino) + 1), 0, 4096, true, &l);
	CHECK(r == -ESTALE, "LAYOUT_GET with a stale sequence number: %d", r);
	lc.ino = CSV_REF(CSV_REF_RECNO(na.ino), CSV_REF_SEQ(na.ino) + 1);
	csv_wire_layout_commit_encode(&f, csv_wire_conn_next_id(A), epoch, &lc);
	r = call_attr(A, &f, CSV_WIRE_LAYOUT_COMMIT, &a);
	CHECK(r == -ESTALE, "LAYOUT_COMMIT with a stale sequence number: %d", r);
	csv_wire_frame_done(&f);

	CHECK(remove_entry(A, false, t.ino, "b") == 0 && remove_entry(A, false, t.ino, "c") == 0 &&
	      remove_entry(A, false, t.ino, "n") == 0 && remove_entry(A, true, root, "t") == 0, "/t removed");
}

static void test_ops(void)
{
	struct csv_wire_welcome w;
	struct csv_wire_attr d, fa, a, sa;
	struct csv_wire_frame f = { 0 };
	struct rx rx;
	char err[512];
	int r;

	struct csv_wire_conn *A = client(2, &key, &w, err, sizeof(err));
	CHECK(A != NULL, "handshake of node 2 (%s)", A ? "welcome" : err);
	if (!A)
		return;
	struct csv_wire_conn *B = client(3, &key, NULL, err, sizeof(err));
	CHECK(B != NULL, "handshake of node 3");
	uint64_t root = w.root_ino;
	CHECK(CSV_REF_RECNO(root) == CSV_RECNO_ROOT && w.epoch == 1, "WELCOME names the root and epoch 1");
	CHECK(ping(A) == 0, "PING");

	r = do_mkdir(A, root, "d", &d);
	CHECK(r == 0 && S_ISDIR(d.mode) && (d.mode & 07777) == 0755 && d.uid == 1000 && d.gid == 100,
	      "MKDIR /d: %d", r);
	r = lookup(A, root, "d", &a);
	CHECK(r == 0 && a.ino == d.ino && a.nlink == 2, "LOOKUP /d gives the same inode (nlink %u)", a.nlink);
	ncallbacks = 0;
	last_inval_name[0] = '\0';
	if (B) {
		CHECK(ping(B) == 0 && ncallbacks >= 1 && strcmp(last_inval_name, "d") == 0,
		      "node 3 received INVAL_ENTRY(/, d) (%d callbacks)", ncallbacks);
	}
	r = do_mknod(A, d.ino, "f", &fa);
	CHECK(r == 0 && S_ISREG(fa.mode) && fa.nlink == 1 && fa.size == 0 && fa.uid == 1000, "MKNOD /d/f: %d", r);
	r = do_mknod(A, d.ino, "f", &a);
	CHECK(r == -EEXIST, "MKNOD of an existing name: %d", r);

	struct csv_wire_symlink sm = { .parent = d.ino, .target = "../some/target", .target_len = 14 };
	csv_wire_name_set(&sm.name, "s");
	csv_wire_symlink_encode(&f, csv_wire_conn_next_id(A), epoch, &sm);
	r = call_attr(A, &f, CSV_WIRE_SYMLINK, &sa);
	CHECK(r == 0 && S_ISLNK(sa.mode) && sa.size == 14, "SYMLINK /d/s: %d", r);
	struct csv_wire_ino_req ir = { .ino = sa.ino };
	csv_wire_readlink_encode(&f, csv_wire_conn_next_id(A), epoch, &ir);
	r = call(A, &f, &rx, NULL);
	if (r == 0) {
		struct csv_wire_readlink_reply rl;
		r = csv_wire_readlink_reply_decode(rx.buf, rx.len, NULL, &rl);
		CHECK(r == 0 && rl.target_len == 14 && memcmp(rl.target, "../some/target", 14) == 0,
		      "READLINK /d/s gives the target");
		free(rx.buf);
	} else {
		CHECK(0, "READLINK: %d", r);
	}

	struct csv_wire_readdir rd = { .ino = d.ino, .cookie = 0, .max_bytes = 4096 };
	csv_wire_readdir_encode(&f, csv_wire_conn_next_id(A), epoch, &rd);
	r = call(A, &f, &rx, NULL);
	if (r == 0) {
		struct csv_wire_readdir_reply rr;
		struct csv_wire_dirent de;
		char names[64] = "";
		bool f_ok = false;
		r = csv_wire_readdir_reply_decode(rx.buf, rx.len, NULL, &rr);
		while (r == 0 && csv_wire_readdir_next(&rr, &de) == 1) {
			strncat(names, de.name.s, sizeof(names) - strlen(names) - 2);
			strcat(names, " ");
			if (strcmp(de.name.s, "f") == 0 && de.ino == fa.ino && de.type == DT_REG)
				f_ok = true;
		}
		CHECK(r == 0 && rr.eof && f_ok && strcmp(names, "f s ") == 0, "READDIR /d lists: %s", names);
		free(rx.buf);
	} else {
		CHECK(0, "READDIR: %d", r);
	}

	struct csv_wire_link lm = { .ino = fa.ino, .newparent = root };
	csv_wire_name_set(&lm.newname, "f2");
	csv_wire_link_encode(&f, csv_wire_conn_next_id(A), epoch, &lm);
	r = call_attr(A, &f, CSV_WIRE_LINK, &a);
	CHECK(r == 0 && a.ino == fa.ino && a.nlink == 2, "LINK /d/f to /f2 (nlink %u)", a.nlink);
	r = remove_entry(A, false, root, "f2");
	CHECK(r == 0, "UNLINK /f2: %d", r);
	r = lookup(A, root, "f2", &a);
	CHECK(r == -ENOENT, "LOOKUP /f2 after UNLINK: %d", r);
	r = lookup(A, d.ino, "f", &a);
	CHECK(r == 0 && a.nlink == 1, "/d/f is back to one link");
	r = remove_entry(A, true, root, "d");
	CHECK(r == -ENOTEMPTY, "RMDIR of a non-empty /d: %d", r);
	r = remove_entry(A, false, root, "d");
	CHECK(r == -EISDIR, "UNLINK of a directory: %d", r);
	r = remove_entry(A, true, d.ino, "f");
	CHECK(r == -ENOTDIR, "RMDIR of a file: %d", r);
	r = lookup(A, root, "missing", &a);
	CHECK(r == -ENOENT, "LOOKUP of a missing name: %d", r);

	/* A stale sequence number. */
	uint64_t stale = CSV_REF(CSV_REF_RECNO(fa.ino), CSV_REF_SEQ(fa.ino) + 1);
	ir.ino = stale;
	csv_wire_getattr_encode(&f, csv_wire_conn_next_id(A), epoch, &ir);
	r = call_attr(A, &f, CSV_WIRE_GETATTR, &a);
	CHECK(r == -ESTALE, "GETATTR with a stale sequence number: %d", r);
	r = do_mknod(A, CSV_REF(CSV_REF_RECNO(d.ino), CSV_REF_SEQ(d.ino) + 1), "g", &a);
	CHECK(r == -ESTALE, "MKNOD under a stale parent: %d", r);
	r = lookup(A, d.ino, "g", &a);
	CHECK(r == -ENOENT, "... and nothing was created");
	ir.ino = fa.ino;
	csv_wire_getattr_encode(&f, csv_wire_conn_next_id(A), epoch, &ir);
	r = call_attr(A, &f, CSV_WIRE_GETATTR, &a);
	CHECK(r == 0 && a.ino == fa.ino && a.mode == fa.mode, "GETATTR of /d/f: %d", r);

	/* The wrong epoch. */
	epoch = 7;
	r = lookup(A, root, "d", &a);
	epoch = 1;
	CHECK(r == -ESTALE, "LOOKUP naming epoch 7: %d", r);

	/* Other served requests. */
	csv_wire_empty_encode(&f, CSV_WIRE_STATFS, CSV_WIRE_F_REQUEST, csv_wire_conn_next_id(A), epoch, 0);
	r = call(A, &f, &rx, NULL);
	if (r == 0) {
		struct csv_wire_statfs st;
		r = csv_wire_statfs_reply_decode(rx.buf, rx.len, NULL, &st);
		CHECK(r == 0 && st.total_clusters == w.total_clusters && st.free_clusters > 0 &&
		      st.free_clusters < st.total_clusters && st.free_records < st.total_records, "STATFS");
		free(rx.buf);
	} else {
		CHECK(0, "STATFS: %d", r);
	}
	struct csv_wire_setxattr sx = { .ino = fa.ino, .value = "v1", .value_len = 2,
					.flags = CSV_WIRE_XATTR_CREATE };
	csv_wire_xattr_name_set(&sx.name, "user.k");
	csv_wire_setxattr_encode(&f, csv_wire_conn_next_id(A), epoch, &sx);
	CHECK(call(A, &f, NULL, NULL) == 0, "SETXATTR user.k");
	csv_wire_setxattr_encode(&f, csv_wire_conn_next_id(A), epoch, &sx);
	CHECK(call(A, &f, NULL, NULL) == -EEXIST, "SETXATTR CREATE of an existing one: -EEXIST");
	struct csv_wire_getxattr gx = { .ino = fa.ino, .max = 64 };
	csv_wire_xattr_name_set(&gx.name, "user.k");
	csv_wire_getxattr_encode(&f, csv_wire_conn_next_id(A), epoch, &gx);
	r = call(A, &f, &rx, NULL);
	if (r == 0) {
		struct csv_wire_xattr_reply xr;
		r = csv_wire_getxattr_reply_decode(rx.buf, rx.len, NULL, &xr);
		CHECK(r == 0 && xr.len == 2 && memcmp(xr.data, "v1", 2) == 0, "GETXATTR user.k");
		free(rx.buf);
	} else {
		CHECK(0, "GETXATTR: %d", r);
	}
	struct csv_wire_fsync fm = { .ino = fa.ino };
	csv_wire_fsync_encode(&f, csv_wire_conn_next_id(A), epoch, &fm);
	CHECK(call(A, &f, NULL, NULL) == 0, "FSYNC");
	test_changes(A, B, root);

	/* A request resent with its id after a reconnection. */
	uint64_t id = csv_wire_conn_next_id(A);
	struct csv_wire_attr r1, r2;
	r = mkdir_id(A, id, root, "r", &r1);
	CHECK(r == 0, "MKDIR /r: %d", r);
	struct csv_wire_conn *A2 = client(2, &key, NULL, err, sizeof(err));
	CHECK(A2 != NULL, "node 2 reconnects");
	if (A2) {
		r = mkdir_id(A2, id, root, "r", &r2);
		CHECK(r == 0 && r2.ino == r1.ino, "the resent MKDIR /r is answered from the cache: %d", r);
		r = do_mkdir(A2, root, "r", &r2);
		CHECK(r == -EEXIST, "a new MKDIR /r (new id) gets -EEXIST: %d", r);
		csv_wire_conn_free(A2);
	}

	/* A wrong key is refused; the daemon keeps serving. */
	struct csv_wire_key bad;
	uint8_t other[64];
	memset(other, 0x5a, sizeof(other));
	csv_wire_key_from_bytes(other, sizeof(other), &bad);
	struct csv_wire_conn *X = client(4, &bad, NULL, err, sizeof(err));
	CHECK(X == NULL, "a client with a wrong key is refused (%s)", err);
	csv_wire_conn_free(X);
	CHECK(ping(A) == 0, "node 2 is still served");

	/* Garbage before the handshake. */
	int fd = tcp_connect();
	char junk[64];
	memset(junk, 'G', sizeof(junk));
	CHECK(fd >= 0 && closed_after(fd, junk, sizeof(junk)), "garbage bytes close the connection");
	close(fd);
	/* A request before the handshake. */
	struct csv_wire_entry_req lm2 = { .parent = root };
	csv_wire_name_set(&lm2.name, "d");
	csv_wire_lookup_encode(&f, 1, epoch, &lm2);
	fd = tcp_connect();
	CHECK(fd >= 0 && closed_after(fd, f.buf, f.len), "an unauthenticated LOOKUP closes the connection");
	close(fd);
	/* A truncated frame after the handshake: its lengths cut short. */
	X = client(5, &key, NULL, err, sizeof(err));
	if (X) {
		size_t n = f.len - 1;
		struct csv_wire_hdr *hd = (void *)f.buf;
		hd->length = cpu_to_le32((uint32_t)n);
		hd->payload_len = cpu_to_le32((uint32_t)(n - CSV_WIRE_HDR_SIZE));
		CHECK(closed_after(csv_wire_conn_fd(X), f.buf, n), "a truncated LOOKUP closes the connection");
		csv_wire_conn_free(X);
	}
	X = client(5, &key, NULL, err, sizeof(err));
	if (X) {
		struct csv_wire_hdr *hd = (void *)f.buf;
		hd->length = cpu_to_le32(0xffffffffu);
		CHECK(closed_after(csv_wire_conn_fd(X), f.buf, CSV_WIRE_HDR_SIZE), "an oversized frame closes the connection");
		csv_wire_conn_free(X);
	}
	csv_wire_frame_done(&f);
	CHECK(ping(A) == 0, "node 2 is still served after the bad clients");
	r = lookup(A, root, "d", &a);
	CHECK(r == 0 && a.ino == d.ino, "and /d is still there");

	/* Clean up the names, so that fsck sees an ordinary tree. */
	r = remove_entry(A, false, d.ino, "s");
	CHECK(r == 0, "UNLINK /d/s");
	r = remove_entry(A, false, d.ino, "f");
	if (r == -ENOENT)
		r = remove_entry(A, false, d.ino, "g");
	CHECK(r == 0, "UNLINK /d/f");
	CHECK(remove_entry(A, true, root, "d") == 0, "RMDIR /d once empty");
	CHECK(lookup(A, root, "d", &a) == -ENOENT, "/d is gone");
	csv_wire_conn_free(B);
	csv_wire_conn_free(A);
}

static int open_file(struct csv_wire_conn *c, uint64_t ino, uint32_t flags, bool release)
{
	struct csv_wire_frame f = { 0 };
	struct csv_wire_open om = { .ino = ino, .flags = flags };
	struct csv_wire_attr a;
	if (release) {
		csv_wire_release_encode(&f, csv_wire_conn_next_id(c), epoch, &om);
		return call(c, &f, NULL, NULL);
	}
	csv_wire_open_encode(&f, csv_wire_conn_next_id(c), epoch, &om);
	return call_attr(c, &f, CSV_WIRE_OPEN, &a);
}

/* Node 5 holds a layout of a file: node 4's truncate waits until node 5
 * returned it; a node that never answers loses its connection. A file
 * unlinked on node 4 while open on node 5 lives until node 5 closes it. */
static void test_recall(void)
{
	struct csv_wire_welcome w;
	struct csv_wire_attr fa, a;
	struct csv_wire_frame f = { 0 };
	struct csv_wire_layout l;
	char err[512];
	struct csv_wire_conn *A = client(4, &key, &w, err, sizeof(err));
	struct csv_wire_conn *B = client(5, &key, NULL, err, sizeof(err));
	CHECK(A && B, "handshakes of nodes 4 and 5");
	if (!A || !B)
		goto out;
	int r = do_mknod(A, w.root_ino, "recall", &fa);
	if (r == 0)
		r = fallocate_req(A, fa.ino, 0, 0, 1 << 20, &a);
	CHECK(r == 0 && a.size == 1 << 20, "a file of 1 MiB allocated: %d", r);
	r = open_file(B, fa.ino, CSV_WIRE_OPEN_READ | CSV_WIRE_OPEN_WRITE, false);
	if (r == 0)
		r = layout_get(B, fa.ino, 0, 1 << 20, false, &l);
	CHECK(r == 0 && l.n_extents >= 1, "node 5 opens it and holds a layout: %d", r);
	if (r == 0)
		csv_wire_layout_free(&l);

	/* The truncate waits for the recall. */
	struct csv_wire_setattr sm = { .ino = fa.ino, .valid = CSV_WIRE_SET_SIZE, .size = 4096 };
	uint64_t id = csv_wire_conn_next_id(A);
	csv_wire_setattr_encode(&f, id, epoch, &sm);
	r = csv_wire_conn_send_wait(A, &f, 5000);
	CHECK(r == 0 && wait_reply(A, id, CSV_WIRE_SETATTR, 300, NULL, NULL) == -1000,
	      "node 4's truncate is not answered while node 5 holds the layout");
	int recalls = ncallbacks_of[CSV_WIRE_LAYOUT_RECALL];
	CHECK(ping(B) == 0 && ncallbacks_of[CSV_WIRE_LAYOUT_RECALL] == recalls + 1,
	      "node 5 receives LAYOUT_RECALL and answers it");
	struct rx rx;
	r = wait_reply(A, id, CSV_WIRE_SETATTR, 5000, &rx, NULL);
	if (r == 0) {
		r = csv_wire_attr_reply_decode(rx.buf, rx.len, CSV_WIRE_SETATTR, NULL, &a) < 0 ? -1001 : 0;
		free(rx.buf);
	}
	CHECK(r == 0 && a.size == 4096, "then the truncate is done: %d, size %llu", r, (unsigned long long)a.size);

	/* Unlinked while open on node 5. */
	r = remove_entry(A, false, w.root_ino, "recall");
	CHECK(r == 0, "node 4 unlinks the file node 5 has open: %d", r);
	r = getattr(B, fa.ino, &a);
	CHECK(r == 0 && a.nlink == 0 && a.size == 4096, "node 5 still reaches it, with no link: %d, nlink %u", r,
	      r == 0 ? a.nlink : 0);
	r = open_file(B, fa.ino, CSV_WIRE_OPEN_READ | CSV_WIRE_OPEN_WRITE, true);
	CHECK(r == 0 && getattr(A, fa.ino, &a) == -ESTALE, "after node 5's close the file is gone (%d)", r);

	/* A holder that never answers a recall is cut off. */
	r = do_mknod(A, w.root_ino, "recall2", &fa);
	if (r == 0)
		r = fallocate_req(A, fa.ino, 0, 0, 1 << 20, &a);
	if (r == 0)
		r = open_file(B, fa.ino, CSV_WIRE_OPEN_READ, false);
	if (r == 0)
		r = layout_get(B, fa.ino, 0, 1 << 20, false, &l);
	if (r == 0)
		csv_wire_layout_free(&l);
	sm = (struct csv_wire_setattr){ .ino = fa.ino, .valid = CSV_WIRE_SET_SIZE, .size = 0 };
	id = csv_wire_conn_next_id(A);
	csv_wire_setattr_encode(&f, id, epoch, &sm);
	if (r == 0)
		r = csv_wire_conn_send_wait(A, &f, 5000);
	if (r == 0)
		r = wait_reply(A, id, CSV_WIRE_SETATTR, 15000, NULL, NULL);
	CHECK(r == 0, "a truncate goes on after the holder failed to answer the recall: %d", r);
	CHECK(ping(B) == -1000, "and that holder's connection is closed");
	CHECK(remove_entry(A, false, w.root_ino, "recall2") == 0, "recall2 removed");
out:
	if (A)
		csv_wire_conn_free(A);
	if (B)
		csv_wire_conn_free(B);
}

static void test_persist(bool verify)
{
	struct csv_wire_welcome w;
	struct csv_wire_attr a;
	char err[512], name[16];
	int ok = 0;
	struct csv_wire_conn *A = client(6, &key, &w, err, sizeof(err));
	CHECK(A != NULL, "handshake (%s)", A ? "" : err);
	if (!A)
		return;
	if (verify)
		CHECK(w.epoch > 1, "the restarted coordinator took a new epoch (%llu)", (unsigned long long)w.epoch);
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "p%d", i);
		int r = verify ? lookup(A, w.root_ino, name, &a) : do_mkdir(A, w.root_ino, name, &a);
		ok += r == 0 && S_ISDIR(a.mode);
	}
	int r = verify ? lookup(A, a.ino, "file", &a) : do_mknod(A, a.ino, "file", &a);
	CHECK(ok == 20 && r == 0, "%s 20 directories and a file (%d, %d)", verify ? "found" : "acknowledged", ok, r);
	csv_wire_conn_free(A);
}

int main(int argc, char **argv)
{
	char err[512];
	if (argc != 6) {
		fprintf(stderr, "usage: test-coordinator ops|persist|verify HOST PORT KEYFILE UUID\n");
		return 2;
	}
	host = argv[2];
	port = argv[3];
	if (csv_wire_key_load(argv[4], &key, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	unsigned u[16];
	if (sscanf(argv[5], "%2x%2x%2x%2x-%2x%2x-%2x%2x-%2x%2x-%2x%2x%2x%2x%2x%2x", &u[0], &u[1], &u[2], &u[3],
		   &u[4], &u[5], &u[6], &u[7], &u[8], &u[9], &u[10], &u[11], &u[12], &u[13], &u[14], &u[15]) != 16)
		return 2;
	for (int i = 0; i < 16; i++)
		uuid[i] = (uint8_t)u[i];
	if (strcmp(argv[1], "ops") == 0) {
		test_ops();
		test_recall();
	} else if (strcmp(argv[1], "persist") == 0)
		test_persist(false);
	else if (strcmp(argv[1], "verify") == 0)
		test_persist(true);
	else
		return 2;
	printf("%d failure(s)\n", failures);
	return failures ? 1 : 0;
}
