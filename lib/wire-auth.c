/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The wire protocol's handshake: the cluster key, the MACs, and the client
 * and server state machines. The crypto is OpenSSL's libcrypto. */
#include "wire-auth.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "byteorder.h"
#include "util.h"

/* ---- Key ----------------------------------------------------------------- */

static const char key_label[] = "csvfs wire key v1";

int csv_wire_key_from_bytes(const void *material, size_t len, struct csv_wire_key *ret)
{
	unsigned int outlen = 0;
	struct csv_wire_key k;

	if (!material || len < CSV_WIRE_KEY_FILE_MIN || len > INT_MAX)
		return -EINVAL;
	if (!HMAC(EVP_sha256(), material, (int)len, (const unsigned char *)key_label,
		  sizeof key_label - 1, k.k, &outlen) || outlen != sizeof k.k) {
		OPENSSL_cleanse(&k, sizeof k);
		return -EIO;
	}
	*ret = k;
	OPENSSL_cleanse(&k, sizeof k);
	return 0;
}

void csv_wire_key_wipe(struct csv_wire_key *key)
{
	if (key)
		OPENSSL_cleanse(key, sizeof(*key));
}

_printf_(3, 4)
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int csv_wire_key_load(const char *path, struct csv_wire_key *ret, char *err, size_t errlen)
{
	uint8_t buf[CSV_WIRE_KEY_FILE_MAX + 1];
	size_t n = 0;
	struct stat st;
	int r;

	if (!path) {
		set_err(err, errlen, "no cluster key file given");
		return -EINVAL;
	}
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = negative_errno();
		set_err(err, errlen, "cannot open cluster key file %s: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = negative_errno();
		set_err(err, errlen, "cannot stat cluster key file %s: %s", path, strerror(-r));
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		set_err(err, errlen, "cluster key file %s is not a regular file", path);
		return -EINVAL;
	}
	if (st.st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)) {
		set_err(err, errlen,
			"cluster key file %s has mode %04o: group or others may read or write it; "
			"refusing it (chmod 600 %s)",
			path, (unsigned)(st.st_mode & 07777), path);
		return -EPERM;
	}
	while (n < sizeof buf) {
		ssize_t k = read(fd, buf + n, sizeof buf - n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			r = negative_errno();
			OPENSSL_cleanse(buf, sizeof buf);
			set_err(err, errlen, "cannot read cluster key file %s: %s", path, strerror(-r));
			return r;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	if (n < CSV_WIRE_KEY_FILE_MIN || n > CSV_WIRE_KEY_FILE_MAX) {
		OPENSSL_cleanse(buf, sizeof buf);
		if (n < CSV_WIRE_KEY_FILE_MIN)
			set_err(err, errlen,
				"cluster key file %s holds %zu bytes; a key needs at least %u",
				path, n, CSV_WIRE_KEY_FILE_MIN);
		else
			set_err(err, errlen,
				"cluster key file %s is larger than %u bytes: not a key file",
				path, CSV_WIRE_KEY_FILE_MAX);
		return -EINVAL;
	}
	r = csv_wire_key_from_bytes(buf, n, ret);
	OPENSSL_cleanse(buf, sizeof buf);
	if (r < 0)
		set_err(err, errlen, "cannot derive the key from %s: %s", path, strerror(-r));
	return r;
}

/* ---- MACs ------------------------------------------------------------------ */

int csv_wire_auth_mac(const struct csv_wire_key *key, enum csv_wire_mac_role role,
		      const struct csv_wire_mac_input *in, uint8_t ret[CSV_WIRE_MAC_SIZE])
{
	uint8_t msg[12 + 2 * CSV_WIRE_NONCE_SIZE + 4 + 4 + CSV_WIRE_UUID_SIZE + 8 + 4];
	size_t n = 0;
	unsigned int outlen = 0;
	le32 cn = cpu_to_le32(in->client_node);
	le32 sn = cpu_to_le32(in->server_node);
	le64 ep = cpu_to_le64(in->epoch);
	le32 ver = cpu_to_le32(in->version);

#define PUT(p, len) do { memcpy(msg + n, (p), (len)); n += (len); } while (0)
	if (role == CSV_WIRE_MAC_SERVER) {
		PUT("csvfs-server", 12);
		PUT(in->client_nonce, CSV_WIRE_NONCE_SIZE);
		PUT(in->server_nonce, CSV_WIRE_NONCE_SIZE);
	} else {
		PUT("csvfs-client", 12);
		PUT(in->server_nonce, CSV_WIRE_NONCE_SIZE);
		PUT(in->client_nonce, CSV_WIRE_NONCE_SIZE);
	}
	PUT(&cn, 4);
	PUT(&sn, 4);
	PUT(in->volume_uuid, CSV_WIRE_UUID_SIZE);
	PUT(&ep, 8);
	PUT(&ver, 4);
#undef PUT
	static_assert(sizeof msg == 112, "mac input");

	if (!HMAC(EVP_sha256(), key->k, sizeof key->k, msg, n, ret, &outlen) ||
	    outlen != CSV_WIRE_MAC_SIZE)
		return -EIO;
	return 0;
}

/* ---- State machines -------------------------------------------------------- */

enum state {
	ST_WAIT_HELLO,      /* server */
	ST_WAIT_AUTH,       /* server */
	ST_START,           /* client, before HELLO */
	ST_WAIT_CHALLENGE,  /* client */
	ST_WAIT_WELCOME,    /* client */
	ST_DONE,
	ST_FAILED,
};

struct csv_wire_auth {
	bool server;
	enum state st;
	struct csv_wire_key key;
	uint32_t node_id;
	uint32_t peer_node;
	uint8_t uuid[CSV_WIRE_UUID_SIZE];
	uint64_t epoch;           /* server: its epoch; client: the CHALLENGE's */
	uint64_t min_epoch;
	uint64_t last_epoch;
	uint32_t expect_server_node;
	uint8_t client_nonce[CSV_WIRE_NONCE_SIZE];
	uint8_t server_nonce[CSV_WIRE_NONCE_SIZE];
	struct csv_wire_welcome welcome;
	int error;
	char err[600];
};

static void uuid_str(const uint8_t u[16], char out[37])
{
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7],
		 u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

/* Records the failure: "handshake with coordinator|client PEER failed:
 * REASON". Returns r. */
_printf_(4, 5)
static int fail(struct csv_wire_auth *a, struct csv_wire_conn *c, int r, const char *fmt, ...)
{
	char reason[320];
	va_list ap;

	if (a->st == ST_FAILED)
		return a->error;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	snprintf(a->err, sizeof a->err, "handshake with %s %s failed: %s",
		 a->server ? "client" : "coordinator", c ? csv_wire_conn_peer(c) : "(none)", reason);
	a->st = ST_FAILED;
	a->error = r < 0 ? r : -EPROTO;
	OPENSSL_cleanse(a->client_nonce, sizeof a->client_nonce);
	OPENSSL_cleanse(a->server_nonce, sizeof a->server_nonce);
	return a->error;
}

int csv_wire_auth_abort(struct csv_wire_auth *a, struct csv_wire_conn *c, int r, const char *reason)
{
	return fail(a, c, r, "%s", reason ? reason : strerror(r < 0 ? -r : EPROTO));
}

static int auth_new(bool server, const struct csv_wire_key *key, uint32_t node_id,
		    const uint8_t uuid[CSV_WIRE_UUID_SIZE], struct csv_wire_auth **ret)
{
	if (!key || node_id == 0)
		return -EINVAL;
	struct csv_wire_auth *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->server = server;
	a->key = *key;
	a->node_id = node_id;
	memcpy(a->uuid, uuid, CSV_WIRE_UUID_SIZE);
	*ret = a;
	return 0;
}

int csv_wire_auth_client_new(const struct csv_wire_auth_client_params *p,
			     struct csv_wire_auth **ret)
{
	struct csv_wire_auth *a;
	int r = auth_new(false, p->key, p->node_id, p->volume_uuid, &a);
	if (r < 0)
		return r;
	a->st = ST_START;
	a->min_epoch = p->min_epoch;
	a->last_epoch = p->last_epoch;
	a->expect_server_node = p->expect_server_node;
	*ret = a;
	return 0;
}

int csv_wire_auth_server_new(const struct csv_wire_auth_server_params *p,
			     struct csv_wire_auth **ret)
{
	struct csv_wire_auth *a;
	struct csv_wire_welcome w = p->welcome;

	if (p->epoch == 0)
		return -EINVAL;
	w.epoch = p->epoch;
	w.server_node = p->node_id;
	w.session_id = p->session_id;
	while (w.session_id == 0)
		if (RAND_bytes((unsigned char *)&w.session_id, sizeof w.session_id) != 1)
			return -EIO;
	/* Check the geometry now rather than at the first client. */
	struct csv_wire_frame f = { 0 };
	int r = csv_wire_welcome_encode(&f, 0, p->epoch, &w);
	csv_wire_frame_done(&f);
	if (r < 0)
		return r;

	r = auth_new(true, p->key, p->node_id, p->volume_uuid, &a);
	if (r < 0)
		return r;
	a->st = ST_WAIT_HELLO;
	a->epoch = p->epoch;
	a->welcome = w;
	*ret = a;
	return 0;
}

void csv_wire_auth_free(struct csv_wire_auth *a)
{
	if (!a)
		return;
	OPENSSL_cleanse(a, sizeof(*a));
	free(a);
}

bool csv_wire_auth_done(const struct csv_wire_auth *a)
{
	return a->st == ST_DONE;
}

const char *csv_wire_auth_error(const struct csv_wire_auth *a)
{
	return a->err;
}

const struct csv_wire_welcome *csv_wire_auth_welcome(const struct csv_wire_auth *a)
{
	return a->st == ST_DONE ? &a->welcome : NULL;
}

uint32_t csv_wire_auth_peer_node(const struct csv_wire_auth *a)
{
	return a->st == ST_DONE ? a->peer_node : 0;
}

/* Queues a frame and writes what the socket takes. */
static int send_frame(struct csv_wire_auth *a, struct csv_wire_conn *c, struct csv_wire_frame *f)
{
	int r = csv_wire_conn_queue(c, f, NULL, NULL);
	csv_wire_frame_done(f);
	if (r >= 0)
		r = csv_wire_conn_flush(c);
	if (r < 0)
		return fail(a, c, r, "%s", csv_wire_conn_error(c)[0] ? csv_wire_conn_error(c) :
			    strerror(-r));
	return 0;
}

/* Server: answers the handshake request with an error status (best
 * effort: the connection is closed right after). */
static void send_refusal(struct csv_wire_auth *a, struct csv_wire_conn *c, uint16_t type, int status)
{
	struct csv_wire_frame f = { 0 };
	if (csv_wire_empty_encode(&f, type, CSV_WIRE_F_REPLY, 0, a->epoch, status) < 0)
		return;
	if (csv_wire_conn_queue(c, &f, NULL, NULL) == 0)
		(void)csv_wire_conn_flush(c);
	csv_wire_frame_done(&f);
}

static void mac_input(const struct csv_wire_auth *a, uint32_t client_node, uint32_t server_node,
		      uint64_t epoch, struct csv_wire_mac_input *in)
{
	memcpy(in->client_nonce, a->client_nonce, sizeof in->client_nonce);
	memcpy(in->server_nonce, a->server_nonce, sizeof in->server_nonce);
	in->client_node = client_node;
	in->server_node = server_node;
	memcpy(in->volume_uuid, a->uuid, sizeof in->volume_uuid);
	in->epoch = epoch;
	in->version = CSV_WIRE_VERSION;
}

/* The version of a frame that csv_wire_hdr_decode() refused with
 * -EPROTONOSUPPORT (offset 4 in every version). */
static unsigned frame_version(const void *frame)
{
	le16 v;
	memcpy(&v, (const uint8_t *)frame + offsetof(struct csv_wire_hdr, version), sizeof v);
	return le16_to_cpu(v);
}

int csv_wire_auth_start(struct csv_wire_auth *a, struct csv_wire_conn *c)
{
	if (a->server || a->st != ST_START)
		return a->st == ST_FAILED ? a->error : 0;
	if (RAND_bytes(a->client_nonce, sizeof a->client_nonce) != 1)
		return fail(a, c, -EIO, "no random bytes for the nonce");
	struct csv_wire_hello h = {
		.version = CSV_WIRE_VERSION,
		.node_id = a->node_id,
	};
	memcpy(h.volume_uuid, a->uuid, sizeof h.volume_uuid);
	memcpy(h.nonce, a->client_nonce, sizeof h.nonce);
	struct csv_wire_frame f = { 0 };
	int r = csv_wire_hello_encode(&f, 0, a->last_epoch, &h);
	if (r < 0)
		return fail(a, c, r, "cannot encode HELLO: %s", strerror(-r));
	a->st = ST_WAIT_CHALLENGE;
	return send_frame(a, c, &f);
}

static int server_on_hello(struct csv_wire_auth *a, struct csv_wire_conn *c,
			   const void *frame, size_t len)
{
	struct csv_wire_msghdr h;
	struct csv_wire_hello hello;
	char u[37];

	int r = csv_wire_hdr_decode(frame, len, &h);
	if (r == -EPROTONOSUPPORT) {
		send_refusal(a, c, CSV_WIRE_HELLO, -EPROTONOSUPPORT);
		return fail(a, c, r, "it speaks protocol version %u; this coordinator speaks %u",
			    frame_version(frame), CSV_WIRE_VERSION);
	}
	if (r < 0)
		return fail(a, c, -EBADMSG, "it sent a malformed frame instead of HELLO");
	if (h.type != CSV_WIRE_HELLO || h.flags != CSV_WIRE_F_REQUEST) {
		if (h.flags == CSV_WIRE_F_REQUEST)
			send_refusal(a, c, h.type, -EACCES);
		return fail(a, c, -EPROTO, "it sent %s before the handshake",
			    csv_wire_type_name(h.type));
	}
	r = csv_wire_hello_decode(frame, len, NULL, &hello);
	if (r == -EPROTONOSUPPORT) {
		le32 v;
		memcpy(&v, (const uint8_t *)frame + CSV_WIRE_HDR_SIZE, sizeof v);
		send_refusal(a, c, CSV_WIRE_HELLO, -EPROTONOSUPPORT);
		return fail(a, c, r, "it asks for protocol version %" PRIu32
			    "; this coordinator speaks %u", le32_to_cpu(v), CSV_WIRE_VERSION);
	}
	if (r < 0)
		return fail(a, c, -EBADMSG, "it sent a malformed HELLO");
	if (memcmp(hello.volume_uuid, a->uuid, sizeof a->uuid) != 0) {
		uuid_str(hello.volume_uuid, u);
		send_refusal(a, c, CSV_WIRE_HELLO, -ENXIO);
		return fail(a, c, -ENXIO,
			    "node %" PRIu32 " asks for volume %s, which this coordinator does not serve",
			    hello.node_id, u);
	}
	a->peer_node = hello.node_id;
	memcpy(a->client_nonce, hello.nonce, sizeof a->client_nonce);
	if (RAND_bytes(a->server_nonce, sizeof a->server_nonce) != 1)
		return fail(a, c, -EIO, "no random bytes for the nonce");

	struct csv_wire_challenge ch = {
		.server_node = a->node_id,
		.epoch = a->epoch,
	};
	struct csv_wire_mac_input in;
	memcpy(ch.nonce, a->server_nonce, sizeof ch.nonce);
	mac_input(a, a->peer_node, a->node_id, a->epoch, &in);
	r = csv_wire_auth_mac(&a->key, CSV_WIRE_MAC_SERVER, &in, ch.mac);
	OPENSSL_cleanse(&in, sizeof in);
	if (r < 0)
		return fail(a, c, r, "cannot compute the MAC");

	struct csv_wire_frame f = { 0 };
	r = csv_wire_challenge_encode(&f, h.req_id, a->epoch, &ch);
	if (r < 0)
		return fail(a, c, r, "cannot encode the CHALLENGE: %s", strerror(-r));
	a->st = ST_WAIT_AUTH;
	return send_frame(a, c, &f);
}

static int server_on_auth(struct csv_wire_auth *a, struct csv_wire_conn *c,
			  const void *frame, size_t len)
{
	struct csv_wire_msghdr h;
	struct csv_wire_auth_msg m;
	uint8_t want[CSV_WIRE_MAC_SIZE];

	int r = csv_wire_hdr_decode(frame, len, &h);
	if (r < 0)
		return fail(a, c, r == -EPROTONOSUPPORT ? r : -EBADMSG,
			    "node %" PRIu32 " sent a malformed frame instead of AUTH", a->peer_node);
	if (h.type != CSV_WIRE_AUTH || h.flags != CSV_WIRE_F_REQUEST) {
		if (h.flags == CSV_WIRE_F_REQUEST)
			send_refusal(a, c, h.type, -EACCES);
		return fail(a, c, -EPROTO, "node %" PRIu32 " sent %s instead of AUTH",
			    a->peer_node, csv_wire_type_name(h.type));
	}
	r = csv_wire_auth_msg_decode(frame, len, NULL, &m);
	if (r < 0)
		return fail(a, c, -EBADMSG, "node %" PRIu32 " sent a malformed AUTH", a->peer_node);

	struct csv_wire_mac_input in;
	mac_input(a, a->peer_node, a->node_id, a->epoch, &in);
	r = csv_wire_auth_mac(&a->key, CSV_WIRE_MAC_CLIENT, &in, want);
	OPENSSL_cleanse(&in, sizeof in);
	if (r < 0)
		return fail(a, c, r, "cannot compute the MAC");
	if (CRYPTO_memcmp(want, m.mac, sizeof want) != 0) {
		send_refusal(a, c, CSV_WIRE_AUTH, -EACCES);
		return fail(a, c, -EACCES,
			    "node %" PRIu32 " failed to prove it knows the cluster key "
			    "(the cluster keys differ, or the AUTH was replayed from another session)",
			    a->peer_node);
	}

	struct csv_wire_frame f = { 0 };
	r = csv_wire_welcome_encode(&f, h.req_id, a->epoch, &a->welcome);
	if (r < 0)
		return fail(a, c, r, "cannot encode the WELCOME: %s", strerror(-r));
	r = send_frame(a, c, &f);
	if (r < 0)
		return r;
	csv_wire_conn_set_peer_node(c, a->peer_node);
	a->st = ST_DONE;
	OPENSSL_cleanse(a->client_nonce, sizeof a->client_nonce);
	OPENSSL_cleanse(a->server_nonce, sizeof a->server_nonce);
	return 1;
}

/* Client: checks that frame is the reply of the given type, and explains
 * an error reply. Returns 0 when it is a successful reply. */
static int client_check_reply(struct csv_wire_auth *a, struct csv_wire_conn *c,
			      const void *frame, size_t len, uint16_t type)
{
	struct csv_wire_msghdr h;
	char u[37];
	const char *what = type == CSV_WIRE_HELLO ? "HELLO" : "AUTH";

	int r = csv_wire_hdr_decode(frame, len, &h);
	if (r == -EPROTONOSUPPORT)
		return fail(a, c, r, "it speaks protocol version %u; this node speaks %u",
			    frame_version(frame), CSV_WIRE_VERSION);
	if (r < 0)
		return fail(a, c, -EBADMSG, "it sent a malformed frame in answer to %s", what);
	if (h.type != type || h.flags != CSV_WIRE_F_REPLY || h.req_id != 0)
		return fail(a, c, -EPROTO, "it sent %s%s when the answer to %s was due",
			    csv_wire_type_name(h.type),
			    (h.flags & CSV_WIRE_F_CALLBACK) ? " (callback)" : "", what);
	switch (h.status) {
	case 0:
		return 0;
	case -EPROTONOSUPPORT:
		return fail(a, c, h.status, "it does not speak protocol version %u", CSV_WIRE_VERSION);
	case -ENXIO:
		uuid_str(a->uuid, u);
		return fail(a, c, h.status, "it does not serve volume %s", u);
	case -EACCES:
		if (type == CSV_WIRE_AUTH)
			return fail(a, c, h.status,
				    "it refused our proof of the cluster key (the cluster keys differ)");
		return fail(a, c, h.status, "it refused the HELLO: %s", strerror(-h.status));
	default:
		return fail(a, c, h.status, "it refused the %s: %s", what, strerror(-h.status));
	}
}

static int client_on_challenge(struct csv_wire_auth *a, struct csv_wire_conn *c,
			       const void *frame, size_t len)
{
	struct csv_wire_challenge ch;
	uint8_t want[CSV_WIRE_MAC_SIZE];

	int r = client_check_reply(a, c, frame, len, CSV_WIRE_HELLO);
	if (r < 0)
		return r;
	r = csv_wire_challenge_decode(frame, len, NULL, &ch);
	if (r < 0)
		return fail(a, c, -EBADMSG, "it sent a malformed CHALLENGE");

	memcpy(a->server_nonce, ch.nonce, sizeof a->server_nonce);
	struct csv_wire_mac_input in;
	mac_input(a, a->node_id, ch.server_node, ch.epoch, &in);
	r = csv_wire_auth_mac(&a->key, CSV_WIRE_MAC_SERVER, &in, want);
	if (r < 0) {
		OPENSSL_cleanse(&in, sizeof in);
		return fail(a, c, r, "cannot compute the MAC");
	}
	if (CRYPTO_memcmp(want, ch.mac, sizeof want) != 0) {
		OPENSSL_cleanse(&in, sizeof in);
		return fail(a, c, -EACCES,
			    "it could not prove it knows the cluster key "
			    "(the cluster keys differ, or the CHALLENGE was altered in transit)");
	}
	if (a->expect_server_node && ch.server_node != a->expect_server_node) {
		OPENSSL_cleanse(&in, sizeof in);
		return fail(a, c, -ESTALE,
			    "node %" PRIu32 " answered, but the coordinator is expected on node %" PRIu32,
			    ch.server_node, a->expect_server_node);
	}
	if (ch.epoch < a->min_epoch) {
		OPENSSL_cleanse(&in, sizeof in);
		return fail(a, c, -ESTALE,
			    "node %" PRIu32 " offers epoch %" PRIu64 ", older than epoch %" PRIu64
			    " already seen: it is a stale coordinator",
			    ch.server_node, ch.epoch, a->min_epoch);
	}
	a->peer_node = ch.server_node;
	a->epoch = ch.epoch;

	struct csv_wire_auth_msg m;
	r = csv_wire_auth_mac(&a->key, CSV_WIRE_MAC_CLIENT, &in, m.mac);
	OPENSSL_cleanse(&in, sizeof in);
	if (r < 0)
		return fail(a, c, r, "cannot compute the MAC");
	struct csv_wire_frame f = { 0 };
	r = csv_wire_auth_msg_encode(&f, 0, a->epoch, &m);
	OPENSSL_cleanse(&m, sizeof m);
	if (r < 0)
		return fail(a, c, r, "cannot encode AUTH: %s", strerror(-r));
	a->st = ST_WAIT_WELCOME;
	return send_frame(a, c, &f);
}

static int client_on_welcome(struct csv_wire_auth *a, struct csv_wire_conn *c,
			     const void *frame, size_t len)
{
	struct csv_wire_welcome w;

	int r = client_check_reply(a, c, frame, len, CSV_WIRE_AUTH);
	if (r < 0)
		return r;
	r = csv_wire_welcome_decode(frame, len, NULL, &w);
	if (r < 0)
		return fail(a, c, -EBADMSG, "it sent a malformed WELCOME");
	if (w.epoch != a->epoch || w.server_node != a->peer_node)
		return fail(a, c, -EPROTO,
			    "its WELCOME (node %" PRIu32 ", epoch %" PRIu64 ") does not match its "
			    "CHALLENGE (node %" PRIu32 ", epoch %" PRIu64 ")",
			    w.server_node, w.epoch, a->peer_node, a->epoch);
	a->welcome = w;
	a->st = ST_DONE;
	csv_wire_conn_set_peer_node(c, a->peer_node);
	OPENSSL_cleanse(a->client_nonce, sizeof a->client_nonce);
	OPENSSL_cleanse(a->server_nonce, sizeof a->server_nonce);
	return 1;
}

int csv_wire_auth_feed(struct csv_wire_auth *a, struct csv_wire_conn *c,
		       const void *frame, size_t len)
{
	switch (a->st) {
	case ST_WAIT_HELLO:
		return server_on_hello(a, c, frame, len);
	case ST_WAIT_AUTH:
		return server_on_auth(a, c, frame, len);
	case ST_WAIT_CHALLENGE:
		return client_on_challenge(a, c, frame, len);
	case ST_WAIT_WELCOME:
		return client_on_welcome(a, c, frame, len);
	case ST_START:
		return fail(a, c, -EPROTO, "it sent a frame before our HELLO");
	case ST_DONE:
		return 1;
	case ST_FAILED:
	default:
		return a->error;
	}
}

static int on_frame(struct csv_wire_conn *c, const void *frame, size_t len, void *userdata)
{
	struct csv_wire_auth *a = userdata;
	int r = csv_wire_auth_feed(a, c, frame, len);
	return r; /* 1 stops at the end of the handshake; < 0 at a failure */
}

/* Turns an error of the connection into the handshake's failure. */
static int conn_failed(struct csv_wire_auth *a, struct csv_wire_conn *c, int r)
{
	if (a->st == ST_FAILED)
		return a->error;
	if (r == -ETIMEDOUT)
		return fail(a, c, r, "no answer in time");
	if (r != -ECONNRESET)
		return fail(a, c, r, "%s", csv_wire_conn_error(c)[0] ? csv_wire_conn_error(c) :
			    strerror(-r));
	switch (a->st) {
	case ST_WAIT_HELLO:
		return fail(a, c, r, "it closed the connection before HELLO");
	case ST_WAIT_AUTH:
		return fail(a, c, r,
			    "node %" PRIu32 " closed the connection after our CHALLENGE "
			    "(it probably found that the cluster keys differ)", a->peer_node);
	case ST_WAIT_CHALLENGE:
		return fail(a, c, r, "it closed the connection without answering our HELLO");
	default:
		return fail(a, c, r, "it closed the connection after our AUTH");
	}
}

int csv_wire_auth_read(struct csv_wire_auth *a, struct csv_wire_conn *c)
{
	if (a->st == ST_DONE)
		return 1;
	if (a->st == ST_FAILED)
		return a->error;
	int r = csv_wire_conn_read(c, on_frame, a);
	if (r < 0)
		return conn_failed(a, c, r);
	return a->st == ST_DONE ? 1 : 0;
}

/* ---- Blocking ---------------------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int left_ms(int64_t deadline)
{
	if (deadline < 0)
		return -1;
	int64_t left = deadline - now_ms();
	return left <= 0 ? 0 : (int)MIN(left, (int64_t)INT_MAX);
}

/* Drives a started machine to its end. */
static int run(struct csv_wire_auth *a, struct csv_wire_conn *c, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	int r;

	while (a->st != ST_DONE && a->st != ST_FAILED) {
		r = csv_wire_conn_flush_wait(c, left_ms(deadline));
		if (r >= 0)
			r = csv_wire_conn_read_wait(c, left_ms(deadline), on_frame, a);
		if (r < 0)
			conn_failed(a, c, r);
	}
	if (a->st == ST_FAILED) {
		/* Send the refusal if there is one; best effort, briefly. */
		int t = left_ms(deadline);
		(void)csv_wire_conn_flush_wait(c, t < 0 || t > 1000 ? 1000 : t);
		return a->error;
	}
	r = csv_wire_conn_flush_wait(c, left_ms(deadline));
	if (r < 0)
		return conn_failed(a, c, r);
	return 0;
}

int csv_wire_auth_client_run(struct csv_wire_conn *c, const struct csv_wire_auth_client_params *p,
			     int timeout_ms, struct csv_wire_welcome *ret, char *err, size_t errlen)
{
	struct csv_wire_auth *a;
	int r = csv_wire_auth_client_new(p, &a);
	if (r < 0) {
		set_err(err, errlen, "handshake with coordinator %s: bad parameters: %s",
			csv_wire_conn_peer(c), strerror(-r));
		return r;
	}
	r = csv_wire_auth_start(a, c);
	if (r >= 0)
		r = run(a, c, timeout_ms);
	if (r < 0)
		set_err(err, errlen, "%s", csv_wire_auth_error(a));
	else if (ret)
		*ret = a->welcome;
	csv_wire_auth_free(a);
	return r;
}

int csv_wire_auth_server_run(struct csv_wire_conn *c, const struct csv_wire_auth_server_params *p,
			     int timeout_ms, uint32_t *ret_client_node, char *err, size_t errlen)
{
	struct csv_wire_auth *a;
	int r = csv_wire_auth_server_new(p, &a);
	if (r < 0) {
		set_err(err, errlen, "handshake with client %s: bad parameters: %s",
			csv_wire_conn_peer(c), strerror(-r));
		return r;
	}
	r = run(a, c, timeout_ms);
	if (r < 0)
		set_err(err, errlen, "%s", csv_wire_auth_error(a));
	else if (ret_client_node)
		*ret_client_node = a->peer_node;
	csv_wire_auth_free(a);
	return r;
}
