/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The wire protocol's handshake: the key file checks, the MACs against
 * values computed independently (Python's hmac), and the handshake over
 * socketpairs: success, a wrong key on either side, a tampered CHALLENGE,
 * HELLO or WELCOME, a replayed AUTH, an unknown version, the wrong volume,
 * a stale coordinator, and the blocking client over TCP. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"
#include "wire-auth.h"
#include "wire-conn.h"
#include "wire.h"

static const uint8_t vol_uuid[16] = { 0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1,
				      0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8 };
#define CLIENT_NODE 7u
#define SERVER_NODE 2u
#define SERVER_EPOCH 5u

static struct csv_wire_key key_a, key_b;

static void setup_keys(void)
{
	uint8_t m[64];
	for (size_t i = 0; i < sizeof m; i++)
		m[i] = (uint8_t)i;
	ck_assert_int_eq(csv_wire_key_from_bytes(m, sizeof m, &key_a), 0);
	m[63] ^= 1;
	ck_assert_int_eq(csv_wire_key_from_bytes(m, sizeof m, &key_b), 0);
}

static struct csv_wire_auth_client_params client_params(const struct csv_wire_key *k)
{
	struct csv_wire_auth_client_params p = { .key = k, .node_id = CLIENT_NODE };
	memcpy(p.volume_uuid, vol_uuid, 16);
	return p;
}

static struct csv_wire_auth_server_params server_params(const struct csv_wire_key *k)
{
	struct csv_wire_auth_server_params p = {
		.key = k,
		.node_id = SERVER_NODE,
		.epoch = SERVER_EPOCH,
		.welcome = {
			.flags = 0,
			.cluster_size = 4096,
			.block_size = 4096,
			.total_clusters = 1u << 20,
			.root_ino = (1ull << 48) | 1,
			.max_io = 1u << 20,
			.name_max = 255,
		},
	};
	memcpy(p.volume_uuid, vol_uuid, 16);
	return p;
}

static void assert_contains(const char *s, const char *part)
{
	ck_assert_msg(strstr(s, part), "\"%s\" does not contain \"%s\"", s, part);
}

/* ---- Key files ------------------------------------------------------------ */

static char tmpdir[64];

static void make_tmpdir(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/test-wire-auth.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void write_key_file(const char *path, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	for (size_t i = 0; i < len; i++) {
		uint8_t b = (uint8_t)i;
		ck_assert_int_eq(write(fd, &b, 1), 1);
	}
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
}

START_TEST(test_key_file)
{
	char path[128], err[256];
	struct csv_wire_key k;

	make_tmpdir();
	snprintf(path, sizeof path, "%s/authkey", tmpdir);

	write_key_file(path, 64, 0600);
	ck_assert_int_eq(csv_wire_key_load(path, &k, err, sizeof err), 0);
	ck_assert_mem_eq(k.k, key_a.k, sizeof k.k); /* same bytes as setup_keys() */
	write_key_file(path, 64, 0400);
	ck_assert_int_eq(csv_wire_key_load(path, &k, err, sizeof err), 0);

	/* Readable or writable by group or others: refused, naming the file. */
	const mode_t bad[] = { 0644, 0640, 0604, 0620, 0602, 0666 };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char mode[16];
		write_key_file(path, 64, bad[i]);
		err[0] = '\0';
		ck_assert_int_eq(csv_wire_key_load(path, &k, err, sizeof err), -EPERM);
		assert_contains(err, path);
		snprintf(mode, sizeof mode, "%04o", (unsigned)bad[i]);
		assert_contains(err, mode);
	}
	/* Too short, too long. */
	write_key_file(path, 31, 0600);
	ck_assert_int_eq(csv_wire_key_load(path, &k, err, sizeof err), -EINVAL);
	assert_contains(err, path);
	assert_contains(err, "31 bytes");
	write_key_file(path, 32, 0600);
	ck_assert_int_eq(csv_wire_key_load(path, &k, err, sizeof err), 0);
	write_key_file(path, CSV_WIRE_KEY_FILE_MAX + 1, 0600);
	ck_assert_int_eq(csv_wire_key_load(path, &k, err, sizeof err), -EINVAL);
	assert_contains(err, path);
	unlink(path);

	/* Missing; a directory. */
	ck_assert_int_eq(csv_wire_key_load(path, &k, err, sizeof err), -ENOENT);
	assert_contains(err, path);
	ck_assert_int_eq(csv_wire_key_load(tmpdir, &k, err, sizeof err), -EINVAL);
	assert_contains(err, tmpdir);
	assert_contains(err, "not a regular file");
	rmdir(tmpdir);

	/* Key material in memory: 32 bytes at least. */
	uint8_t m[31] = { 0 };
	ck_assert_int_eq(csv_wire_key_from_bytes(m, sizeof m, &k), -EINVAL);
}
END_TEST

/* ---- MACs ---------------------------------------------------------------------- */

/* Expected values computed with Python's hmac module from the inputs
 * below, following the description in wire-auth.h and the man page. */
START_TEST(test_mac_known_answers)
{
	static const uint8_t want_key[32] = {
		0xde, 0x37, 0x9c, 0x9e, 0x5f, 0x05, 0x91, 0xc5, 0x88, 0x32, 0x62, 0xd2, 0x91,
		0x99, 0xc9, 0xa2, 0x22, 0x90, 0x45, 0x6e, 0x01, 0x4e, 0x2a, 0x7e, 0x55, 0x21,
		0x59, 0x87, 0xa4, 0x8e, 0x1e, 0xbc };
	static const uint8_t want_server[32] = {
		0x20, 0x62, 0x35, 0x67, 0xa2, 0xe6, 0x2f, 0xf3, 0x02, 0x34, 0xeb, 0xd7, 0xf8,
		0x84, 0x9d, 0x08, 0x8c, 0xa6, 0x9f, 0xb1, 0x7f, 0x08, 0x50, 0xad, 0xdf, 0x74,
		0x16, 0x4b, 0x9f, 0x69, 0xc4, 0x36 };
	static const uint8_t want_client[32] = {
		0x03, 0xe9, 0x0c, 0x37, 0xc4, 0x9a, 0x7f, 0xe8, 0x9d, 0xf9, 0x4d, 0xdc, 0xaf,
		0x30, 0x99, 0xca, 0x01, 0xad, 0xb5, 0x41, 0xae, 0x24, 0x62, 0xe7, 0xb0, 0x78,
		0x94, 0xd1, 0x53, 0xee, 0x4e, 0xb5 };
	struct csv_wire_mac_input in = {
		.client_node = 7, .server_node = 3, .epoch = 0x0102030405060708ull, .version = 1,
	};
	uint8_t mac[32];

	for (int i = 0; i < 32; i++) {
		in.client_nonce[i] = (uint8_t)(0x10 + i);
		in.server_nonce[i] = (uint8_t)(0x80 + i);
	}
	for (int i = 0; i < 16; i++)
		in.volume_uuid[i] = (uint8_t)(0xa0 + i);
	ck_assert_mem_eq(key_a.k, want_key, 32);
	ck_assert_int_eq(csv_wire_auth_mac(&key_a, CSV_WIRE_MAC_SERVER, &in, mac), 0);
	ck_assert_mem_eq(mac, want_server, 32);
	ck_assert_int_eq(csv_wire_auth_mac(&key_a, CSV_WIRE_MAC_CLIENT, &in, mac), 0);
	ck_assert_mem_eq(mac, want_client, 32);
	/* Each input matters. */
	in.epoch++;
	ck_assert_int_eq(csv_wire_auth_mac(&key_a, CSV_WIRE_MAC_CLIENT, &in, mac), 0);
	ck_assert(memcmp(mac, want_client, 32) != 0);
	in.epoch--;
	ck_assert_int_eq(csv_wire_auth_mac(&key_b, CSV_WIRE_MAC_CLIENT, &in, mac), 0);
	ck_assert(memcmp(mac, want_client, 32) != 0);
}
END_TEST

/* ---- Handshake over a socketpair, both machines in this thread ---------- */

struct hs {
	struct csv_wire_conn *cc, *sc;
	struct csv_wire_auth *ca, *sa;
	int rc, rs;
};

static void hs_setup(struct hs *h, const struct csv_wire_auth_client_params *cp,
		     const struct csv_wire_auth_server_params *sp)
{
	int sv[2];
	*h = (struct hs){ 0 };
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(csv_wire_conn_new(sv[0], &h->cc), 0);
	ck_assert_int_eq(csv_wire_conn_new(sv[1], &h->sc), 0);
	ck_assert_int_eq(csv_wire_conn_set_peer_name(h->cc, "coord.test:7788"), 0);
	ck_assert_int_eq(csv_wire_conn_set_peer_name(h->sc, "client.test:40000"), 0);
	ck_assert_int_eq(csv_wire_auth_client_new(cp, &h->ca), 0);
	ck_assert_int_eq(csv_wire_auth_server_new(sp, &h->sa), 0);
}

/* Runs both sides; a side that fails closes its end, as an owner does. */
static void hs_drive(struct hs *h)
{
	h->rc = csv_wire_auth_start(h->ca, h->cc);
	if (h->rc < 0) {
		csv_wire_conn_free(h->cc);
		h->cc = NULL;
	}
	for (int i = 0; i < 100 && (h->rc == 0 || h->rs == 0); i++) {
		if (h->sc && h->rs == 0) {
			h->rs = csv_wire_auth_read(h->sa, h->sc);
			(void)csv_wire_conn_flush(h->sc);
			if (h->rs < 0) {
				csv_wire_conn_free(h->sc);
				h->sc = NULL;
			}
		}
		if (h->cc && h->rc == 0) {
			h->rc = csv_wire_auth_read(h->ca, h->cc);
			(void)csv_wire_conn_flush(h->cc);
			if (h->rc < 0) {
				csv_wire_conn_free(h->cc);
				h->cc = NULL;
			}
		}
	}
}

static void hs_free(struct hs *h)
{
	csv_wire_conn_free(h->cc);
	csv_wire_conn_free(h->sc);
	csv_wire_auth_free(h->ca);
	csv_wire_auth_free(h->sa);
}

START_TEST(test_handshake_ok)
{
	struct csv_wire_auth_client_params cp = client_params(&key_a);
	struct csv_wire_auth_server_params sp = server_params(&key_a);
	struct hs h;

	cp.min_epoch = SERVER_EPOCH;
	cp.expect_server_node = SERVER_NODE;
	hs_setup(&h, &cp, &sp);
	hs_drive(&h);
	ck_assert_msg(h.rc == 1, "client: %d %s", h.rc, csv_wire_auth_error(h.ca));
	ck_assert_msg(h.rs == 1, "server: %d %s", h.rs, csv_wire_auth_error(h.sa));
	ck_assert(csv_wire_auth_done(h.ca) && csv_wire_auth_done(h.sa));
	ck_assert_str_eq(csv_wire_auth_error(h.ca), "");

	const struct csv_wire_welcome *wc = csv_wire_auth_welcome(h.ca);
	const struct csv_wire_welcome *ws = csv_wire_auth_welcome(h.sa);
	ck_assert_ptr_nonnull(wc);
	ck_assert_uint_eq(wc->epoch, SERVER_EPOCH);
	ck_assert_uint_eq(wc->server_node, SERVER_NODE);
	ck_assert_uint_ne(wc->session_id, 0);
	ck_assert_uint_eq(wc->session_id, ws->session_id);
	ck_assert_uint_eq(wc->cluster_size, 4096);
	ck_assert_uint_eq(wc->total_clusters, 1u << 20);
	ck_assert_uint_eq(wc->root_ino, (1ull << 48) | 1);
	ck_assert_uint_eq(wc->max_io, 1u << 20);
	ck_assert_uint_eq(wc->name_max, 255);

	/* Each side knows the other's node, and its log lines say so. */
	ck_assert_uint_eq(csv_wire_auth_peer_node(h.ca), SERVER_NODE);
	ck_assert_uint_eq(csv_wire_auth_peer_node(h.sa), CLIENT_NODE);
	ck_assert_str_eq(csv_wire_conn_peer(h.cc), "coord.test:7788 (node 2)");
	ck_assert_str_eq(csv_wire_conn_peer(h.sc), "client.test:40000 (node 7)");

	/* Requests flow afterwards. */
	struct csv_wire_frame f = { 0 };
	uint64_t id = csv_wire_conn_next_id(h.cc);
	ck_assert_int_eq(csv_wire_empty_encode(&f, CSV_WIRE_PING, CSV_WIRE_F_REQUEST, id,
					       wc->epoch, 0), 0);
	ck_assert_int_eq(csv_wire_conn_send_wait(h.cc, &f, 1000), 0);
	hs_free(&h);
}
END_TEST

static int expect_epoch_change(struct csv_wire_conn *c, const void *frame, size_t len,
			       void *userdata)
{
	struct csv_wire_epoch_change m;
	int r = csv_wire_epoch_change_decode(frame, len, NULL, &m);
	if (r < 0)
		return r;
	ck_assert_uint_eq(m.new_epoch, SERVER_EPOCH + 1);
	(*(int *)userdata)++;
	return 0;
}

/* A callback the coordinator sends right after WELCOME may arrive in the
 * same read as the WELCOME: it stays buffered for the owner. */
START_TEST(test_handshake_then_buffered_frames)
{
	struct csv_wire_auth_client_params cp = client_params(&key_a);
	struct csv_wire_auth_server_params sp = server_params(&key_a);
	struct csv_wire_epoch_change ec = { .new_epoch = SERVER_EPOCH + 1 };
	struct csv_wire_frame f = { 0 };
	struct hs h;
	int got = 0;

	hs_setup(&h, &cp, &sp);
	ck_assert_int_eq(csv_wire_auth_start(h.ca, h.cc), 0);
	ck_assert_int_eq(csv_wire_auth_read(h.sa, h.sc), 0);     /* HELLO -> CHALLENGE */
	ck_assert_int_eq(csv_wire_auth_read(h.ca, h.cc), 0);     /* CHALLENGE -> AUTH */
	ck_assert_int_eq(csv_wire_auth_read(h.sa, h.sc), 1);     /* AUTH -> WELCOME */
	ck_assert_int_eq(csv_wire_epoch_change_encode(&f, csv_wire_conn_next_id(h.sc),
						      SERVER_EPOCH, &ec), 0);
	ck_assert_int_eq(csv_wire_conn_send_wait(h.sc, &f, 1000), 0);
	ck_assert_int_eq(csv_wire_auth_read(h.ca, h.cc), 1);     /* WELCOME, and no further */
	ck_assert(csv_wire_conn_has_frame(h.cc));
	ck_assert_int_eq(csv_wire_conn_read(h.cc, expect_epoch_change, &got), 1);
	ck_assert_int_eq(got, 1);
	ck_assert(!csv_wire_conn_has_frame(h.cc));
	/* Done is sticky. */
	ck_assert_int_eq(csv_wire_auth_read(h.ca, h.cc), 1);
	hs_free(&h);
}
END_TEST

START_TEST(test_sessions_differ)
{
	struct csv_wire_auth_client_params cp = client_params(&key_a);
	struct csv_wire_auth_server_params sp = server_params(&key_a);
	struct hs h1, h2;

	hs_setup(&h1, &cp, &sp);
	hs_drive(&h1);
	hs_setup(&h2, &cp, &sp);
	hs_drive(&h2);
	ck_assert_int_eq(h1.rc, 1);
	ck_assert_int_eq(h2.rc, 1);
	ck_assert_uint_ne(csv_wire_auth_welcome(h1.ca)->session_id,
			  csv_wire_auth_welcome(h2.ca)->session_id);
	hs_free(&h1);
	hs_free(&h2);

	/* A session id the coordinator chooses is kept. */
	sp.session_id = 1234;
	hs_setup(&h1, &cp, &sp);
	hs_drive(&h1);
	ck_assert_uint_eq(csv_wire_auth_welcome(h1.ca)->session_id, 1234);
	hs_free(&h1);
}
END_TEST

/* The coordinator has another key: the client finds out first (the
 * server MAC), refuses, and closes; the coordinator sees the close after
 * its CHALLENGE. Then the other way round: same outcome, since the client
 * always checks first. */
START_TEST(test_wrong_key_either_side)
{
	for (int side = 0; side < 2; side++) {
		struct csv_wire_auth_client_params cp = client_params(side ? &key_b : &key_a);
		struct csv_wire_auth_server_params sp = server_params(side ? &key_a : &key_b);
		struct hs h;

		hs_setup(&h, &cp, &sp);
		hs_drive(&h);
		ck_assert_int_eq(h.rc, -EACCES);
		assert_contains(csv_wire_auth_error(h.ca), "handshake with coordinator coord.test:7788");
		assert_contains(csv_wire_auth_error(h.ca), "could not prove it knows the cluster key");
		ck_assert_int_eq(h.rs, -ECONNRESET);
		assert_contains(csv_wire_auth_error(h.sa), "handshake with client client.test:40000");
		assert_contains(csv_wire_auth_error(h.sa), "node 7 closed the connection after our CHALLENGE");
		ck_assert(!csv_wire_auth_done(h.ca) && !csv_wire_auth_done(h.sa));
		ck_assert_ptr_null(csv_wire_auth_welcome(h.ca));
		hs_free(&h);
	}
}
END_TEST

/* ---- Raw peers: the test plays one side by hand -------------------------------- */

/* Reads one whole frame from a raw fd (waiting up to 2 s). */
static uint8_t *read_frame(int fd, size_t *ret_len)
{
	uint8_t hdr[CSV_WIRE_HDR_SIZE];
	size_t got = 0;
	uint32_t len;

	while (got < sizeof hdr) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ck_assert_int_eq(poll(&p, 1, 2000), 1);
		ssize_t n = read(fd, hdr + got, sizeof hdr - got);
		ck_assert_int_gt(n, 0);
		got += (size_t)n;
	}
	ck_assert_int_eq(csv_wire_frame_peek(hdr, sizeof hdr, &len), 0);
	uint8_t *buf = malloc(len);
	ck_assert_ptr_nonnull(buf);
	memcpy(buf, hdr, sizeof hdr);
	while (got < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ck_assert_int_eq(poll(&p, 1, 2000), 1);
		ssize_t n = read(fd, buf + got, len - got);
		ck_assert_int_gt(n, 0);
		got += (size_t)n;
	}
	*ret_len = len;
	return buf;
}

static void write_all(int fd, const void *p, size_t len)
{
	ck_assert_int_eq(write(fd, p, len), (ssize_t)len);
}

/* A conn whose other end is a raw fd for the test. */
static struct csv_wire_conn *conn_with_raw(int *ret_raw, const char *name)
{
	int sv[2];
	struct csv_wire_conn *c;
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(csv_wire_conn_new(sv[0], &c), 0);
	ck_assert_int_eq(csv_wire_conn_set_peer_name(c, name), 0);
	*ret_raw = sv[1];
	return c;
}

/* A relay between a real client and a real server, frame by frame, with a
 * hook that may alter each frame in transit. Records the client's HELLO
 * and AUTH. */
enum { HOP_HELLO, HOP_CHALLENGE, HOP_AUTH, HOP_WELCOME };
typedef void (*tamper_fn)(int hop, uint8_t *frame, size_t len);

struct relay {
	int rc, rs;
	uint8_t *hello, *auth;
	size_t hello_len, auth_len;
	char cerr[600], serr[600];
};

static void relay_run(const struct csv_wire_key *ck, const struct csv_wire_key *sk,
		      tamper_fn tamper, struct relay *out)
{
	struct csv_wire_auth_client_params cp = client_params(ck);
	struct csv_wire_auth_server_params sp = server_params(sk);
	struct csv_wire_auth *ca, *sa;
	int craw, sraw;
	struct csv_wire_conn *cc = conn_with_raw(&craw, "coord.test:7788");
	struct csv_wire_conn *sc = conn_with_raw(&sraw, "client.test:40000");
	uint8_t *fr;
	size_t len;

	*out = (struct relay){ 0 };
	ck_assert_int_eq(csv_wire_auth_client_new(&cp, &ca), 0);
	ck_assert_int_eq(csv_wire_auth_server_new(&sp, &sa), 0);
	ck_assert_int_eq(csv_wire_auth_start(ca, cc), 0);

	for (int hop = HOP_HELLO; hop <= HOP_WELCOME; hop++) {
		bool to_server = hop == HOP_HELLO || hop == HOP_AUTH;
		fr = read_frame(to_server ? craw : sraw, &len);
		if (hop == HOP_HELLO) {
			out->hello = malloc(len);
			memcpy(out->hello, fr, len);
			out->hello_len = len;
		} else if (hop == HOP_AUTH) {
			out->auth = malloc(len);
			memcpy(out->auth, fr, len);
			out->auth_len = len;
		}
		if (tamper)
			tamper(hop, fr, len);
		write_all(to_server ? sraw : craw, fr, len);
		free(fr);
		if (to_server) {
			out->rs = csv_wire_auth_read(sa, sc);
			if (out->rs < 0) {
				/* Relay the refusal, if the server sent one. */
				struct pollfd p = { .fd = sraw, .events = POLLIN };
				if (poll(&p, 1, 200) == 1) {
					fr = read_frame(sraw, &len);
					write_all(craw, fr, len);
					free(fr);
					out->rc = csv_wire_auth_read(ca, cc);
				}
				break;
			}
		} else {
			out->rc = csv_wire_auth_read(ca, cc);
			if (out->rc != 0)
				break;
		}
	}
	snprintf(out->cerr, sizeof out->cerr, "%s", csv_wire_auth_error(ca));
	snprintf(out->serr, sizeof out->serr, "%s", csv_wire_auth_error(sa));
	csv_wire_auth_free(ca);
	csv_wire_auth_free(sa);
	csv_wire_conn_free(cc);
	csv_wire_conn_free(sc);
	close(craw);
	close(sraw);
}

static void relay_free(struct relay *r)
{
	free(r->hello);
	free(r->auth);
}

START_TEST(test_relay_untouched)
{
	struct relay r;
	relay_run(&key_a, &key_a, NULL, &r);
	ck_assert_int_eq(r.rs, 1);
	ck_assert_int_eq(r.rc, 1);
	relay_free(&r);
}
END_TEST

/* One byte of the CHALLENGE changed in transit, in each of its fields:
 * the client refuses it. */
static size_t tamper_offset;

static void tamper_challenge(int hop, uint8_t *frame, size_t len)
{
	if (hop == HOP_CHALLENGE)
		frame[CSV_WIRE_HDR_SIZE + tamper_offset] ^= 0x01;
}

START_TEST(test_tampered_challenge)
{
	const size_t offs[] = {
		offsetof(struct csv_wire_d_challenge, server_node),
		offsetof(struct csv_wire_d_challenge, epoch),
		offsetof(struct csv_wire_d_challenge, epoch) + 7,
		offsetof(struct csv_wire_d_challenge, nonce),
		offsetof(struct csv_wire_d_challenge, nonce) + 31,
		offsetof(struct csv_wire_d_challenge, mac),
		offsetof(struct csv_wire_d_challenge, mac) + 31,
	};
	for (size_t i = 0; i < ARRAY_SIZE(offs); i++) {
		struct relay r;
		tamper_offset = offs[i];
		relay_run(&key_a, &key_a, tamper_challenge, &r);
		ck_assert_msg(r.rc == -EACCES, "offset %zu: %d %s", offs[i], r.rc, r.cerr);
		assert_contains(r.cerr, "could not prove it knows the cluster key");
		relay_free(&r);
	}
}
END_TEST

/* The client nonce, node or volume changed in the HELLO: the server's
 * MAC no longer matches what the client expects (or the volume is not
 * served). */
static void tamper_hello(int hop, uint8_t *frame, size_t len)
{
	if (hop == HOP_HELLO)
		frame[CSV_WIRE_HDR_SIZE + tamper_offset] ^= 0x01;
}

START_TEST(test_tampered_hello)
{
	struct relay r;

	tamper_offset = offsetof(struct csv_wire_d_hello, nonce) + 3;
	relay_run(&key_a, &key_a, tamper_hello, &r);
	ck_assert_int_eq(r.rc, -EACCES);
	relay_free(&r);
	tamper_offset = offsetof(struct csv_wire_d_hello, node_id);
	relay_run(&key_a, &key_a, tamper_hello, &r);
	ck_assert_int_eq(r.rc, -EACCES);
	relay_free(&r);
	tamper_offset = offsetof(struct csv_wire_d_hello, volume_uuid);
	relay_run(&key_a, &key_a, tamper_hello, &r);
	ck_assert_int_eq(r.rs, -ENXIO);
	ck_assert_int_eq(r.rc, -ENXIO);
	assert_contains(r.cerr, "does not serve volume 6ba7b810-9dad-11d1-80b4-00c04fd430c8");
	assert_contains(r.serr, "asks for volume 6aa7b810");
	relay_free(&r);
}
END_TEST

/* The WELCOME altered: its epoch differs from the CHALLENGE's. */
static void tamper_welcome(int hop, uint8_t *frame, size_t len)
{
	if (hop == HOP_WELCOME)
		frame[CSV_WIRE_HDR_SIZE + offsetof(struct csv_wire_d_welcome, epoch)] ^= 0x02;
}

START_TEST(test_tampered_welcome)
{
	struct relay r;
	relay_run(&key_a, &key_a, tamper_welcome, &r);
	ck_assert_int_eq(r.rs, 1);
	ck_assert_int_eq(r.rc, -EPROTO);
	assert_contains(r.cerr, "does not match its CHALLENGE");
	relay_free(&r);
}
END_TEST

/* A raw client: sends frames to a real server machine and reads its
 * answers. */
struct raw_server {
	struct csv_wire_conn *sc;
	struct csv_wire_auth *sa;
	int raw;
};

static void raw_server_setup(struct raw_server *s, const struct csv_wire_key *k)
{
	struct csv_wire_auth_server_params sp = server_params(k);
	s->sc = conn_with_raw(&s->raw, "client.test:40000");
	ck_assert_int_eq(csv_wire_auth_server_new(&sp, &s->sa), 0);
}

static void raw_server_free(struct raw_server *s)
{
	csv_wire_auth_free(s->sa);
	csv_wire_conn_free(s->sc);
	close(s->raw);
}

/* Sends a frame to the server and returns what the machine said. */
static int raw_send(struct raw_server *s, const void *frame, size_t len)
{
	write_all(s->raw, frame, len);
	return csv_wire_auth_read(s->sa, s->sc);
}

/* Reads the server's reply and checks its type and status. */
static uint8_t *raw_expect(struct raw_server *s, uint16_t type, int status, size_t *ret_len)
{
	struct csv_wire_msghdr h;
	uint8_t *fr = read_frame(s->raw, ret_len);
	ck_assert_int_eq(csv_wire_hdr_decode(fr, *ret_len, &h), 0);
	ck_assert_uint_eq(h.type, type);
	ck_assert_uint_eq(h.flags, CSV_WIRE_F_REPLY);
	ck_assert_int_eq(h.status, status);
	ck_assert_uint_eq(h.req_id, 0);
	return fr;
}

/* The AUTH of one session, replayed in another (with the same HELLO,
 * even): the coordinator's fresh nonce makes it worthless. */
START_TEST(test_replayed_auth)
{
	struct relay rec;
	struct raw_server s;
	size_t len;

	relay_run(&key_a, &key_a, NULL, &rec);
	ck_assert_int_eq(rec.rs, 1);

	raw_server_setup(&s, &key_a);
	ck_assert_int_eq(raw_send(&s, rec.hello, rec.hello_len), 0);
	free(raw_expect(&s, CSV_WIRE_HELLO, 0, &len));
	ck_assert_int_eq(raw_send(&s, rec.auth, rec.auth_len), -EACCES);
	free(raw_expect(&s, CSV_WIRE_AUTH, -EACCES, &len));
	assert_contains(csv_wire_auth_error(s.sa), "node 7 failed to prove it knows the cluster key");
	assert_contains(csv_wire_auth_error(s.sa), "replayed");
	raw_server_free(&s);
	relay_free(&rec);
}
END_TEST

/* A client that skips the server's proof and answers with a MAC under
 * another key: the coordinator refuses it with -EACCES, and says so. */
START_TEST(test_wrong_key_client_proof)
{
	struct raw_server s;
	struct csv_wire_frame f = { 0 };
	struct csv_wire_hello hello = { .version = CSV_WIRE_VERSION, .node_id = CLIENT_NODE };
	struct csv_wire_challenge ch;
	struct csv_wire_auth_msg am;
	struct csv_wire_mac_input in = { .client_node = CLIENT_NODE, .version = CSV_WIRE_VERSION };
	size_t len;

	memcpy(hello.volume_uuid, vol_uuid, 16);
	memset(hello.nonce, 0x5a, 32);
	raw_server_setup(&s, &key_a);
	ck_assert_int_eq(csv_wire_hello_encode(&f, 0, 0, &hello), 0);
	ck_assert_int_eq(raw_send(&s, f.buf, f.len), 0);
	uint8_t *fr = raw_expect(&s, CSV_WIRE_HELLO, 0, &len);
	ck_assert_int_eq(csv_wire_challenge_decode(fr, len, NULL, &ch), 0);
	free(fr);
	ck_assert_uint_eq(ch.server_node, SERVER_NODE);
	ck_assert_uint_eq(ch.epoch, SERVER_EPOCH);

	/* With the right key this MAC would pass; prove it first. */
	memcpy(in.client_nonce, hello.nonce, 32);
	memcpy(in.server_nonce, ch.nonce, 32);
	in.server_node = ch.server_node;
	memcpy(in.volume_uuid, vol_uuid, 16);
	in.epoch = ch.epoch;
	uint8_t good[32];
	ck_assert_int_eq(csv_wire_auth_mac(&key_a, CSV_WIRE_MAC_SERVER, &in, good), 0);
	ck_assert_mem_eq(good, ch.mac, 32);

	ck_assert_int_eq(csv_wire_auth_mac(&key_b, CSV_WIRE_MAC_CLIENT, &in, am.mac), 0);
	ck_assert_int_eq(csv_wire_auth_msg_encode(&f, 0, ch.epoch, &am), 0);
	ck_assert_int_eq(raw_send(&s, f.buf, f.len), -EACCES);
	free(raw_expect(&s, CSV_WIRE_AUTH, -EACCES, &len));
	assert_contains(csv_wire_auth_error(s.sa), "handshake with client client.test:40000 failed");
	assert_contains(csv_wire_auth_error(s.sa), "cluster keys differ");
	raw_server_free(&s);

	/* The server's own proof reflected as the client's: the labels
	 * differ, so it does not verify. */

	raw_server_setup(&s, &key_a);
	ck_assert_int_eq(csv_wire_hello_encode(&f, 0, 0, &hello), 0);
	ck_assert_int_eq(raw_send(&s, f.buf, f.len), 0);
	fr = raw_expect(&s, CSV_WIRE_HELLO, 0, &len);
	ck_assert_int_eq(csv_wire_challenge_decode(fr, len, NULL, &ch), 0);
	free(fr);
	memcpy(am.mac, ch.mac, 32); /* reflect the server's proof */
	ck_assert_int_eq(csv_wire_auth_msg_encode(&f, 0, ch.epoch, &am), 0);
	ck_assert_int_eq(raw_send(&s, f.buf, f.len), -EACCES);
	raw_server_free(&s);
	csv_wire_frame_done(&f);
}
END_TEST

/* A client of another protocol version, in the frame header or in the
 * HELLO: refused with -EPROTONOSUPPORT, and told so. */
START_TEST(test_unknown_version_client)
{
	struct csv_wire_frame f = { 0 };
	struct csv_wire_hello hello = { .version = CSV_WIRE_VERSION, .node_id = CLIENT_NODE };
	size_t len;

	memcpy(hello.volume_uuid, vol_uuid, 16);
	for (int where = 0; where < 2; where++) {
		struct raw_server s;
		raw_server_setup(&s, &key_a);
		ck_assert_int_eq(csv_wire_hello_encode(&f, 0, 0, &hello), 0);
		if (where == 0) {
			le16 v = cpu_to_le16(2);
			memcpy(f.buf + offsetof(struct csv_wire_hdr, version), &v, 2);
		} else {
			le32 v = cpu_to_le32(2);
			memcpy(f.buf + CSV_WIRE_HDR_SIZE, &v, 4);
		}
		ck_assert_int_eq(raw_send(&s, f.buf, f.len), -EPROTONOSUPPORT);
		free(raw_expect(&s, CSV_WIRE_HELLO, -EPROTONOSUPPORT, &len));
		assert_contains(csv_wire_auth_error(s.sa), "version 2");
		assert_contains(csv_wire_auth_error(s.sa), "speaks 1");
		raw_server_free(&s);
	}
	csv_wire_frame_done(&f);
}
END_TEST

/* A real client against a raw coordinator that answers HELLO in various
 * wrong ways. */
static int client_against(const void *reply, size_t len, char *err, size_t errlen)
{
	struct csv_wire_auth_client_params cp = client_params(&key_a);
	struct csv_wire_auth *ca;
	int raw;
	struct csv_wire_conn *cc = conn_with_raw(&raw, "coord.test:7788");
	size_t hl;

	ck_assert_int_eq(csv_wire_auth_client_new(&cp, &ca), 0);
	ck_assert_int_eq(csv_wire_auth_start(ca, cc), 0);
	free(read_frame(raw, &hl));
	write_all(raw, reply, len);
	int r = csv_wire_auth_read(ca, cc);
	snprintf(err, errlen, "%s", csv_wire_auth_error(ca));
	csv_wire_auth_free(ca);
	csv_wire_conn_free(cc);
	close(raw);
	return r;
}

START_TEST(test_unknown_version_server)
{
	struct csv_wire_frame f = { 0 };
	char err[600];

	/* The coordinator refuses our version. */
	ck_assert_int_eq(csv_wire_empty_encode(&f, CSV_WIRE_HELLO, CSV_WIRE_F_REPLY, 0, 5,
					       -EPROTONOSUPPORT), 0);
	ck_assert_int_eq(client_against(f.buf, f.len, err, sizeof err), -EPROTONOSUPPORT);
	assert_contains(err, "handshake with coordinator coord.test:7788 failed");
	assert_contains(err, "does not speak protocol version 1");

	/* The coordinator answers in version 3. */
	struct csv_wire_challenge ch = { .server_node = 2, .epoch = 5 };
	ck_assert_int_eq(csv_wire_challenge_encode(&f, 0, 5, &ch), 0);
	le16 v = cpu_to_le16(3);
	memcpy(f.buf + offsetof(struct csv_wire_hdr, version), &v, 2);
	ck_assert_int_eq(client_against(f.buf, f.len, err, sizeof err), -EPROTONOSUPPORT);
	assert_contains(err, "speaks protocol version 3");

	/* Something else than the CHALLENGE. */
	ck_assert_int_eq(csv_wire_empty_encode(&f, CSV_WIRE_PING, CSV_WIRE_F_REPLY, 0, 5, 0), 0);
	ck_assert_int_eq(client_against(f.buf, f.len, err, sizeof err), -EPROTO);
	assert_contains(err, "PING");

	/* A malformed CHALLENGE. */
	ck_assert_int_eq(csv_wire_challenge_encode(&f, 0, 5, &ch), 0);
	f.buf[CSV_WIRE_HDR_SIZE + offsetof(struct csv_wire_d_challenge, reserved)] = 1;
	ck_assert_int_eq(client_against(f.buf, f.len, err, sizeof err), -EBADMSG);
	assert_contains(err, "malformed CHALLENGE");
	csv_wire_frame_done(&f);
}
END_TEST

START_TEST(test_wrong_volume_stale_epoch_wrong_node)
{
	struct csv_wire_auth_client_params cp = client_params(&key_a);
	struct csv_wire_auth_server_params sp = server_params(&key_a);
	struct hs h;

	/* Another volume. */
	cp.volume_uuid[0] ^= 0xff;
	hs_setup(&h, &cp, &sp);
	hs_drive(&h);
	ck_assert_int_eq(h.rs, -ENXIO);
	ck_assert_int_eq(h.rc, -ENXIO);
	assert_contains(csv_wire_auth_error(h.ca), "does not serve volume 94a7b810");
	hs_free(&h);

	/* A coordinator older than an epoch the client has seen. */
	cp = client_params(&key_a);
	cp.min_epoch = SERVER_EPOCH + 1;
	hs_setup(&h, &cp, &sp);
	hs_drive(&h);
	ck_assert_int_eq(h.rc, -ESTALE);
	assert_contains(csv_wire_auth_error(h.ca), "offers epoch 5, older than epoch 6");
	ck_assert_int_eq(h.rs, -ECONNRESET);
	hs_free(&h);

	/* Another node than the one that holds the role. */
	cp = client_params(&key_a);
	cp.expect_server_node = 9;
	hs_setup(&h, &cp, &sp);
	hs_drive(&h);
	ck_assert_int_eq(h.rc, -ESTALE);
	assert_contains(csv_wire_auth_error(h.ca), "node 2 answered");
	hs_free(&h);
}
END_TEST

/* A request before the handshake is refused. */
START_TEST(test_request_before_handshake)
{
	struct raw_server s;
	struct csv_wire_frame f = { 0 };
	struct csv_wire_ino_req g = { .ino = 1 };
	size_t len;

	raw_server_setup(&s, &key_a);
	ck_assert_int_eq(csv_wire_getattr_encode(&f, 0, 5, &g), 0);
	ck_assert_int_eq(raw_send(&s, f.buf, f.len), -EPROTO);
	free(raw_expect(&s, CSV_WIRE_GETATTR, -EACCES, &len));
	assert_contains(csv_wire_auth_error(s.sa), "GETATTR before the handshake");
	raw_server_free(&s);

	/* Garbage: closed without an answer. */
	raw_server_setup(&s, &key_a);
	ck_assert_int_eq(raw_send(&s, "0123456789abcdef", 16), -EBADMSG);
	assert_contains(csv_wire_auth_error(s.sa), "not a csvfs frame");
	raw_server_free(&s);
	csv_wire_frame_done(&f);
}
END_TEST

START_TEST(test_bad_parameters)
{
	struct csv_wire_auth_client_params cp = client_params(&key_a);
	struct csv_wire_auth_server_params sp = server_params(&key_a);
	struct csv_wire_auth *a;

	cp.node_id = 0;
	ck_assert_int_eq(csv_wire_auth_client_new(&cp, &a), -EINVAL);
	sp.epoch = 0;
	ck_assert_int_eq(csv_wire_auth_server_new(&sp, &a), -EINVAL);
	sp = server_params(&key_a);
	sp.welcome.cluster_size = 3000;
	ck_assert_int_eq(csv_wire_auth_server_new(&sp, &a), -EINVAL);
	sp = server_params(&key_a);
	sp.key = NULL;
	ck_assert_int_eq(csv_wire_auth_server_new(&sp, &a), -EINVAL);
}
END_TEST

/* ---- Blocking client against a server thread, over TCP ------------------------ */

struct server_thread {
	int listen_fd;
	const struct csv_wire_key *key;
	int result;
	uint32_t client_node;
	char err[600];
	bool silent; /* accept, then never answer */
};

static void *server_main(void *arg)
{
	struct server_thread *t = arg;
	struct csv_wire_auth_server_params sp = server_params(t->key);
	struct csv_wire_conn *c;
	int fd = accept(t->listen_fd, NULL, NULL);

	if (fd < 0 || csv_wire_conn_new(fd, &c) < 0) {
		t->result = -EIO;
		return NULL;
	}
	if (t->silent) {
		usleep(300 * 1000);
		t->result = 0;
	} else
		t->result = csv_wire_auth_server_run(c, &sp, 2000, &t->client_node, t->err, sizeof t->err);
	csv_wire_conn_free(c);
	return NULL;
}

static int tcp_listener(struct sockaddr_in *sa)
{
	socklen_t sl = sizeof(*sa);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(l, 0);
	*sa = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	ck_assert_int_eq(bind(l, (struct sockaddr *)sa, sizeof(*sa)), 0);
	ck_assert_int_eq(listen(l, 4), 0);
	ck_assert_int_eq(getsockname(l, (struct sockaddr *)sa, &sl), 0);
	return l;
}

static struct csv_wire_conn *tcp_connect(const struct sockaddr_in *sa)
{
	struct csv_wire_conn *c;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (const struct sockaddr *)sa, sizeof(*sa)), 0);
	ck_assert_int_eq(csv_wire_conn_new(fd, &c), 0);
	return c;
}

START_TEST(test_blocking_tcp)
{
	struct sockaddr_in sa;
	struct server_thread t = { .key = &key_a };
	pthread_t th;
	struct csv_wire_auth_client_params cp = client_params(&key_a);
	struct csv_wire_welcome w;
	char err[600] = "";
	char want[64];

	t.listen_fd = tcp_listener(&sa);
	ck_assert_int_eq(pthread_create(&th, NULL, server_main, &t), 0);
	struct csv_wire_conn *c = tcp_connect(&sa);
	int r = csv_wire_auth_client_run(c, &cp, 2000, &w, err, sizeof err);
	ck_assert_msg(r == 0, "%d %s", r, err);
	ck_assert_uint_eq(w.epoch, SERVER_EPOCH);
	ck_assert_uint_eq(w.server_node, SERVER_NODE);
	snprintf(want, sizeof want, "127.0.0.1:%u (node 2)", ntohs(sa.sin_port));
	ck_assert_str_eq(csv_wire_conn_peer(c), want);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_msg(t.result == 0, "%s", t.err);
	ck_assert_uint_eq(t.client_node, CLIENT_NODE);
	csv_wire_conn_free(c);

	/* Wrong key, blocking: both ends fail, each saying why. */
	t = (struct server_thread){ .key = &key_b, .listen_fd = t.listen_fd };
	ck_assert_int_eq(pthread_create(&th, NULL, server_main, &t), 0);
	c = tcp_connect(&sa);
	r = csv_wire_auth_client_run(c, &cp, 2000, &w, err, sizeof err);
	ck_assert_int_eq(r, -EACCES);
	assert_contains(err, "127.0.0.1:");
	assert_contains(err, "could not prove it knows the cluster key");
	csv_wire_conn_free(c);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(t.result, -ECONNRESET);
	assert_contains(t.err, "node 7 closed the connection after our CHALLENGE");

	/* A coordinator that never answers: the client gives up in time. */
	t = (struct server_thread){ .key = &key_a, .listen_fd = t.listen_fd, .silent = true };
	ck_assert_int_eq(pthread_create(&th, NULL, server_main, &t), 0);
	c = tcp_connect(&sa);
	r = csv_wire_auth_client_run(c, &cp, 100, &w, err, sizeof err);
	ck_assert_int_eq(r, -ETIMEDOUT);
	assert_contains(err, "no answer in time");
	csv_wire_conn_free(c);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	close(t.listen_fd);
}
END_TEST

static Suite *wire_auth_suite(void)
{
	Suite *s = suite_create("wire-auth");
	TCase *tc;

	tc = tcase_create("key");
	tcase_add_checked_fixture(tc, setup_keys, NULL);
	tcase_add_test(tc, test_key_file);
	tcase_add_test(tc, test_mac_known_answers);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("handshake");
	tcase_add_checked_fixture(tc, setup_keys, NULL);
	tcase_add_test(tc, test_handshake_ok);
	tcase_add_test(tc, test_handshake_then_buffered_frames);
	tcase_add_test(tc, test_sessions_differ);
	tcase_add_test(tc, test_wrong_key_either_side);
	tcase_add_test(tc, test_relay_untouched);
	tcase_add_test(tc, test_tampered_challenge);
	tcase_add_test(tc, test_tampered_hello);
	tcase_add_test(tc, test_tampered_welcome);
	tcase_add_test(tc, test_replayed_auth);
	tcase_add_test(tc, test_wrong_key_client_proof);
	tcase_add_test(tc, test_unknown_version_client);
	tcase_add_test(tc, test_unknown_version_server);
	tcase_add_test(tc, test_wrong_volume_stale_epoch_wrong_node);
	tcase_add_test(tc, test_request_before_handshake);
	tcase_add_test(tc, test_bad_parameters);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("blocking");
	tcase_add_checked_fixture(tc, setup_keys, NULL);
	tcase_add_test(tc, test_blocking_tcp);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(wire_auth_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
