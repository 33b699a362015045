/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The handshake that opens every wire-protocol connection: mutual
 * challenge-response with HMAC-SHA-256 over the cluster key, then the
 * coordinator's WELCOME (epoch, session, volume geometry).
 *
 *   client                                   coordinator
 *   HELLO {version, node, volume uuid, Nc}  ->
 *                                           <- CHALLENGE {node, epoch, Ns, server MAC}
 *   (checks the server MAC)
 *   AUTH {client MAC}                       ->
 *                                              (checks the client MAC)
 *                                           <- WELCOME {epoch, session, geometry}
 *
 * Nc and Ns are 32 random bytes (RAND_bytes). With K the cluster key (see
 * csv_wire_key_load()), "||" concatenation, integers little-endian:
 *
 *   server MAC = HMAC-SHA-256(K, "csvfs-server" || Nc || Ns
 *                || le32 client node || le32 server node || volume uuid
 *                || le64 epoch || le32 version)
 *   client MAC = HMAC-SHA-256(K, "csvfs-client" || Ns || Nc
 *                || le32 client node || le32 server node || volume uuid
 *                || le64 epoch || le32 version)
 *
 * The 12-byte labels (no NUL) keep a MAC of one side from ever serving as
 * the other's; the fresh Ns makes an AUTH of another session worthless.
 * All four handshake frames carry request id 0. A coordinator that refuses
 * the client answers with an error reply (-EPROTONOSUPPORT: unknown
 * version; -ENXIO: volume not served here; -EACCES: the client MAC does
 * not verify) and closes; a client that refuses the coordinator closes.
 *
 * The handshake authenticates the two ends; it does not encrypt or sign
 * the frames that follow. Run the protocol on the cluster's private
 * network.
 *
 * State machines. csv_wire_auth_client_new() / csv_wire_auth_server_new()
 * make one for a connection; csv_wire_auth_start() sends HELLO (client);
 * then csv_wire_auth_read() is called whenever the fd is readable, until it
 * returns 1 (done) or a negative errno (failed: csv_wire_auth_error() says
 * why, naming the peer). The machine queues its frames on the connection
 * and flushes what the socket takes; when csv_wire_conn_queued_bytes() is
 * not 0 the owner polls for POLLOUT and flushes. After a failure the
 * owner flushes what is queued (an error reply; best effort) and closes.
 * After success, frames that followed the handshake may already be
 * buffered: see csv_wire_conn_has_frame(). The owner bounds the time a
 * handshake may take.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire-conn.h"
#include "wire.h"

/* ---- The cluster key ------------------------------------------------------ */

#define CSV_WIRE_KEY_FILE_MIN 32u   /* bytes a key file holds at least */
#define CSV_WIRE_KEY_FILE_MAX 4096u /* and at most (corosync's authkey limit) */

/* The key the MACs use: K = HMAC-SHA-256(key = the key file's bytes,
 * "csvfs wire key v1"), so that the corosync authkey can serve as the key
 * file without its bytes being used directly for a second purpose. */
struct csv_wire_key {
	uint8_t k[32];
};

/* Reads a key file: a regular file of CSV_WIRE_KEY_FILE_MIN..MAX bytes,
 * that neither group nor others may read or write (mode & 066 == 0). On
 * failure, writes a sentence naming the file into err (if errlen > 0) and
 * returns -EPERM (group or others may access it), -EINVAL (too short, too
 * long, or not a regular file) or the errno of open() or read(). */
int csv_wire_key_load(const char *path, struct csv_wire_key *ret, char *err, size_t errlen);
/* Derives the key from bytes in memory (at least CSV_WIRE_KEY_FILE_MIN). */
int csv_wire_key_from_bytes(const void *material, size_t len, struct csv_wire_key *ret);
/* Overwrites a key (OPENSSL_cleanse). */
void csv_wire_key_wipe(struct csv_wire_key *key);

/* ---- MACs ------------------------------------------------------------------ */

enum csv_wire_mac_role {
	CSV_WIRE_MAC_SERVER, /* "csvfs-server", in the CHALLENGE */
	CSV_WIRE_MAC_CLIENT, /* "csvfs-client", in the AUTH */
};

struct csv_wire_mac_input {
	uint8_t client_nonce[CSV_WIRE_NONCE_SIZE];
	uint8_t server_nonce[CSV_WIRE_NONCE_SIZE];
	uint32_t client_node;
	uint32_t server_node;
	uint8_t volume_uuid[CSV_WIRE_UUID_SIZE];
	uint64_t epoch;
	uint32_t version;
};

/* Computes the MAC of a role over the inputs, as described above. */
int csv_wire_auth_mac(const struct csv_wire_key *key, enum csv_wire_mac_role role,
		      const struct csv_wire_mac_input *in, uint8_t ret[CSV_WIRE_MAC_SIZE]);

/* ---- State machines ------------------------------------------------------ */

struct csv_wire_auth_client_params {
	const struct csv_wire_key *key;
	uint32_t node_id;                         /* this node, not 0 */
	uint8_t volume_uuid[CSV_WIRE_UUID_SIZE];
	uint32_t expect_server_node;              /* 0: any node */
	uint64_t min_epoch;   /* the highest epoch seen; an older coordinator is stale */
	uint64_t last_epoch;  /* the epoch HELLO's header names (informative) */
};

struct csv_wire_auth_server_params {
	const struct csv_wire_key *key;
	uint32_t node_id;                         /* this node, not 0 */
	uint8_t volume_uuid[CSV_WIRE_UUID_SIZE];  /* the volume served */
	uint64_t epoch;                           /* the coordinator epoch, not 0 */
	uint64_t session_id;                      /* 0: random */
	/* The rest of the WELCOME: flags, cluster_size, block_size,
	 * total_clusters, root_ino, max_io, name_max (epoch, session_id and
	 * server_node are filled in from the fields above). */
	struct csv_wire_welcome welcome;
};

struct csv_wire_auth;

int csv_wire_auth_client_new(const struct csv_wire_auth_client_params *p,
			     struct csv_wire_auth **ret);
int csv_wire_auth_server_new(const struct csv_wire_auth_server_params *p,
			     struct csv_wire_auth **ret);
/* Wipes the nonces and the key copy. NULL is allowed. */
void csv_wire_auth_free(struct csv_wire_auth *a);

/* Client: queues HELLO and flushes. Server: nothing to do. */
int csv_wire_auth_start(struct csv_wire_auth *a, struct csv_wire_conn *c);
/* Reads from the connection and advances: 0 in progress, 1 done, < 0
 * failed (the same error from then on). */
int csv_wire_auth_read(struct csv_wire_auth *a, struct csv_wire_conn *c);
/* Advances with one frame the owner has read itself. */
int csv_wire_auth_feed(struct csv_wire_auth *a, struct csv_wire_conn *c,
		       const void *frame, size_t len);
/* Records a failure the owner detected (timeout, connection error), so
 * that csv_wire_auth_error() describes it; returns r. */
int csv_wire_auth_abort(struct csv_wire_auth *a, struct csv_wire_conn *c, int r,
			const char *reason);

bool csv_wire_auth_done(const struct csv_wire_auth *a);
/* The failure as a sentence naming the peer and the reason, e.g.
 * "handshake with coordinator 10.0.0.2:7788 failed: it could not prove it
 * knows the cluster key (the keys differ, or the CHALLENGE was altered)".
 * Empty while none. */
const char *csv_wire_auth_error(const struct csv_wire_auth *a);
/* After success: the WELCOME sent or received, and the peer's node id
 * (also set on the connection). */
const struct csv_wire_welcome *csv_wire_auth_welcome(const struct csv_wire_auth *a);
uint32_t csv_wire_auth_peer_node(const struct csv_wire_auth *a);

/* ---- Blocking ---------------------------------------------------------- */

/* Runs the client side to the end on a connected conn, within timeout_ms
 * (< 0: no limit). On success *ret is the WELCOME; on failure err gets
 * the sentence of csv_wire_auth_error(). */
int csv_wire_auth_client_run(struct csv_wire_conn *c, const struct csv_wire_auth_client_params *p,
			     int timeout_ms, struct csv_wire_welcome *ret, char *err, size_t errlen);
/* The same for the server side (tools and tests; the coordinator runs the
 * state machine in its event loop). *ret_client_node is the client's node. */
int csv_wire_auth_server_run(struct csv_wire_conn *c, const struct csv_wire_auth_server_params *p,
			     int timeout_ms, uint32_t *ret_client_node, char *err, size_t errlen);
