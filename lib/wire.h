/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The csvfs wire protocol between the FUSE client of a node (csvfs) and the
 * metadata server of a volume (csv-coordinatord): frame header and the
 * encode/decode pair of every message. man/csvfs-protocol.7 describes the
 * same bytes for users; the two change together.
 *
 * Frames. Every message is one frame: a 48-byte header (struct
 * csv_wire_hdr) and a payload. All integers are little-endian; signed
 * fields are two's complement. Reserved bytes and padding are zero, and a
 * decoder refuses a frame where they are not. The payload of a message is
 * a fixed part (struct csv_wire_d_*, size asserted below) followed by its
 * variable-length fields, back to back, in the order their lengths appear
 * in the fixed part, with no padding. The payload must be exactly that
 * long: trailing bytes are an error.
 *
 * Directions. A REQUEST goes from client to coordinator and is answered by
 * one REPLY carrying the same type and request id. A CALLBACK goes from
 * coordinator to client and is answered by a frame with REPLY|CALLBACK.
 * A reply whose status is not 0 is an error reply: its payload is empty.
 *
 * Decoding. Every decoder takes a whole frame (header included), checks
 * the header, the type and the direction it expects, then every length
 * and count against the frame before touching the bytes. A malformed frame
 * (truncated, oversized, wrong magic, reserved bytes not zero, unknown
 * type or flags, a string or array running past the end, trailing bytes,
 * a field outside its range) gives -EBADMSG; a frame of another protocol
 * version gives -EPROTONOSUPPORT. Decoders never assert on received data.
 * Decoders accept only the canonical encoding: when one succeeds,
 * encoding its result again gives the same bytes.
 *
 * Memory. A decoded message borrows its large variable-length fields
 * (symlink targets, xattr values and lists, data, directory entries) from
 * the frame: they stay valid as long as the frame buffer does, and they
 * are not NUL-terminated. Names (at most 255 bytes) are copied into a
 * struct csv_wire_name, NUL-terminated. The two arrays of fixed-size
 * elements (extents of LAYOUT_GET replies, ranges of LAYOUT_COMMIT) are
 * copied into an array that the decoder allocates and the caller releases
 * with the matching _free() function (those two decoders may also return
 * -ENOMEM).
 *
 * Encoding. Encoders build a frame in a struct csv_wire_frame (header and
 * payload in one malloc'd buffer). DATA_WRITE requests and DATA_READ
 * replies reference the caller's data through an iovec instead of copying
 * it; csv_wire_conn_queue() (wire-conn.h) sends them with scatter-gather
 * sendmsg(). Encoders check their input like decoders do and return
 * -EINVAL (bad field), -ENAMETOOLONG (name or target too long), -ERANGE
 * (xattr name too long), -E2BIG (xattr value or list too large), -EMSGSIZE
 * (frame larger than CSV_WIRE_FRAME_MAX) or -ENOMEM. On failure the frame
 * is left empty.
 *
 * Rules the coordinator and the client implement on top (in full in the
 * man page): a request names the epoch of its session; one naming an older
 * epoch is answered -ESTALE and not applied, and the client handshakes
 * again. Request ids are never 0 and never reused by a client process;
 * requests are pipelined and answered in any order; after a reconnection
 * the client resends its unanswered requests with their original ids, and
 * the coordinator answers a request it already applied from its reply
 * cache, keyed by (client node, request id), without applying it twice.
 * A malformed frame closes the connection (no reply).
 *
 * Functions return 0 or a negative errno, and set ret_ parameters only on
 * success. Nothing here logs.
 */
#pragma once

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "byteorder.h"

/* ---- Constants -------------------------------------------------------- */

/* "CSWP" in wire order: the four ASCII bytes 'C' 'S' 'W' 'P'. */
#define CSV_WIRE_MAGIC 0x50575343u
#define CSV_WIRE_VERSION 1u

#define CSV_WIRE_HDR_SIZE 48u
/* The largest payload, and the largest frame: a frame whose length field
 * says more is refused before any buffer is allocated for it. */
#define CSV_WIRE_PAYLOAD_MAX (16u << 20)
#define CSV_WIRE_FRAME_MAX (CSV_WIRE_HDR_SIZE + CSV_WIRE_PAYLOAD_MAX)

/* Byte strings. A name is a directory entry name; it is 1..255 bytes with
 * no '/' and no NUL. An xattr name is 1..255 bytes with no NUL. */
#define CSV_WIRE_NAME_MAX 255u
#define CSV_WIRE_XATTR_NAME_MAX 255u
#define CSV_WIRE_SYMLINK_MAX 65536u     /* target bytes, no NUL, at least 1 */
#define CSV_WIRE_XATTR_VALUE_MAX 65536u /* value bytes, may be empty */
#define CSV_WIRE_XATTR_LIST_MAX 65536u  /* LISTXATTR reply list bytes */
#define CSV_WIRE_IO_MAX (8u << 20)      /* DATA_READ / DATA_WRITE bytes */
#define CSV_WIRE_READDIR_MAX (1u << 20) /* READDIR max_bytes */
#define CSV_WIRE_IOV_MAX 64             /* iovecs of one DATA_* frame's data */
#define CSV_WIRE_NONCE_SIZE 32u
#define CSV_WIRE_MAC_SIZE 32u           /* HMAC-SHA-256 */
#define CSV_WIRE_UUID_SIZE 16u
/* The largest error a status carries: -4095 .. -1 (as the kernel's
 * MAX_ERRNO). */
#define CSV_WIRE_ERRNO_MAX 4095

/* Header flags: the direction of a frame. Valid combinations are REQUEST
 * and REPLY (for request types), CALLBACK and CALLBACK|REPLY (for callback
 * types); nothing else. */
enum {
	CSV_WIRE_F_REQUEST = 1u << 0,  /* client to coordinator */
	CSV_WIRE_F_REPLY = 1u << 1,    /* answer to a request or callback */
	CSV_WIRE_F_CALLBACK = 1u << 2, /* coordinator to client, own id space */
};

/* Message types. Types 1..63 are requests from the client, 64..127 are
 * callbacks from the coordinator. The reply carries the request's type. */
enum csv_wire_type {
	/* Handshake (wire-auth.h); request ids 0. */
	CSV_WIRE_HELLO = 1,        /* csv_wire_hello -> csv_wire_challenge */
	CSV_WIRE_AUTH = 2,         /* csv_wire_auth_msg -> csv_wire_welcome */
	CSV_WIRE_PING = 3,         /* empty -> empty */
	/* Namespace and attributes. */
	CSV_WIRE_LOOKUP = 16,      /* csv_wire_entry_req -> csv_wire_attr */
	CSV_WIRE_GETATTR = 17,     /* csv_wire_ino_req -> csv_wire_attr */
	CSV_WIRE_SETATTR = 18,     /* csv_wire_setattr -> csv_wire_attr */
	CSV_WIRE_MKNOD = 19,       /* csv_wire_mknod -> csv_wire_attr */
	CSV_WIRE_MKDIR = 20,       /* csv_wire_mkdir -> csv_wire_attr */
	CSV_WIRE_SYMLINK = 21,     /* csv_wire_symlink -> csv_wire_attr */
	CSV_WIRE_LINK = 22,        /* csv_wire_link -> csv_wire_attr */
	CSV_WIRE_UNLINK = 23,      /* csv_wire_entry_req -> empty */
	CSV_WIRE_RMDIR = 24,       /* csv_wire_entry_req -> empty */
	CSV_WIRE_RENAME = 25,      /* csv_wire_rename -> empty */
	CSV_WIRE_READLINK = 26,    /* csv_wire_ino_req -> csv_wire_readlink_reply */
	CSV_WIRE_READDIR = 27,     /* csv_wire_readdir -> csv_wire_readdir_reply */
	CSV_WIRE_OPEN = 28,        /* csv_wire_open -> csv_wire_attr */
	CSV_WIRE_RELEASE = 29,     /* csv_wire_open -> empty */
	CSV_WIRE_STATFS = 30,      /* empty -> csv_wire_statfs */
	CSV_WIRE_SETXATTR = 31,    /* csv_wire_setxattr -> empty */
	CSV_WIRE_GETXATTR = 32,    /* csv_wire_getxattr -> csv_wire_xattr_reply */
	CSV_WIRE_LISTXATTR = 33,   /* csv_wire_listxattr -> csv_wire_xattr_reply */
	CSV_WIRE_REMOVEXATTR = 34, /* csv_wire_removexattr -> empty */
	CSV_WIRE_FSYNC = 35,       /* csv_wire_fsync -> empty */
	CSV_WIRE_FALLOCATE = 36,   /* csv_wire_fallocate -> csv_wire_attr */
	/* Layouts and data. */
	CSV_WIRE_LAYOUT_GET = 48,    /* csv_wire_layout_get -> csv_wire_layout */
	CSV_WIRE_LAYOUT_COMMIT = 49, /* csv_wire_layout_commit -> csv_wire_attr */
	CSV_WIRE_LAYOUT_RETURN = 50, /* csv_wire_layout_return -> empty */
	CSV_WIRE_DATA_READ = 51,     /* csv_wire_data_read -> data bytes */
	CSV_WIRE_DATA_WRITE = 52,    /* csv_wire_data_write -> empty */
	/* Callbacks: coordinator to client; the client replies empty. */
	CSV_WIRE_INVAL_INODE = 64,   /* csv_wire_inval_inode */
	CSV_WIRE_INVAL_ENTRY = 65,   /* csv_wire_entry_req */
	CSV_WIRE_LAYOUT_RECALL = 66, /* csv_wire_layout_return; reply after LAYOUT_RETURN */
	CSV_WIRE_EPOCH_CHANGE = 67,  /* csv_wire_epoch_change */
};

/* ---- Frame header ------------------------------------------------------- */

/* Magic, version and length sit at the same offsets in every version of
 * the protocol, so that a peer can always find the end of a frame and
 * answer a frame of an unknown version with -EPROTONOSUPPORT. */
struct csv_wire_hdr {
	le32 magic;          /* 0x00 CSV_WIRE_MAGIC "CSWP" */
	le16 version;        /* 0x04 CSV_WIRE_VERSION */
	le16 type;           /* 0x06 enum csv_wire_type */
	le32 length;         /* 0x08 header + payload, 48..CSV_WIRE_FRAME_MAX */
	le16 flags;          /* 0x0c CSV_WIRE_F_* */
	le16 reserved0;      /* 0x0e zero */
	le64 req_id;         /* 0x10 request id; a reply carries its request's */
	le64 epoch;          /* 0x18 coordinator epoch the sender believes in */
	le32 status;         /* 0x20 replies: 0 or -errno (-4095..-1); else 0 */
	le32 payload_len;    /* 0x24 length - 48 */
	uint8_t reserved[8]; /* 0x28 zero */
};                           /* 0x30 */
static_assert(sizeof(struct csv_wire_hdr) == CSV_WIRE_HDR_SIZE, "wire hdr size");
static_assert(offsetof(struct csv_wire_hdr, length) == 0x08, "wire hdr length");
static_assert(offsetof(struct csv_wire_hdr, req_id) == 0x10, "wire hdr req_id");
static_assert(offsetof(struct csv_wire_hdr, status) == 0x20, "wire hdr status");

/* The header, decoded. */
struct csv_wire_msghdr {
	uint16_t type;        /* enum csv_wire_type */
	uint16_t flags;       /* CSV_WIRE_F_* */
	uint32_t payload_len;
	uint64_t req_id;
	uint64_t epoch;
	int32_t status;       /* 0 or a negative errno */
};

/* ---- Wire structures of the payloads ---------------------------------- */

/* Handshake: see wire-auth.h for the MAC inputs. */
struct csv_wire_d_hello {
	le32 version;        /* 0x00 CSV_WIRE_VERSION, equal to the header's */
	le32 node_id;        /* 0x04 client's corosync node id, not 0 */
	uint8_t volume_uuid[16];   /* 0x08 the volume the client wants */
	uint8_t nonce[32];   /* 0x18 client nonce, random */
};                           /* 0x38 */
static_assert(sizeof(struct csv_wire_d_hello) == 0x38, "hello size");

struct csv_wire_d_challenge {
	le32 server_node;    /* 0x00 coordinator's node id, not 0 */
	le32 reserved;       /* 0x04 */
	le64 epoch;          /* 0x08 coordinator epoch, not 0 */
	uint8_t nonce[32];   /* 0x10 server nonce, random */
	uint8_t mac[32];     /* 0x30 server proof */
};                           /* 0x50 */
static_assert(sizeof(struct csv_wire_d_challenge) == 0x50, "challenge size");

struct csv_wire_d_auth {
	uint8_t mac[32];     /* 0x00 client proof */
};
static_assert(sizeof(struct csv_wire_d_auth) == 0x20, "auth size");

/* WELCOME flags: the mode of the volume. */
enum {
	CSV_WIRE_VOL_REDIRECTED = 1u << 0, /* file-system redirected: all I/O via DATA_* */
	CSV_WIRE_VOL_RDONLY = 1u << 1,     /* mounted read-only everywhere */
};
#define CSV_WIRE_VOL_KNOWN 0x3u

struct csv_wire_d_welcome {
	le64 epoch;          /* 0x00 as in the CHALLENGE */
	le64 session_id;     /* 0x08 not 0 */
	le32 server_node;    /* 0x10 as in the CHALLENGE */
	le32 flags;          /* 0x14 CSV_WIRE_VOL_* */
	le32 cluster_size;   /* 0x18 bytes, power of two, 4096..65536 */
	le32 block_size;     /* 0x1c bytes, power of two, 512..cluster_size */
	le64 total_clusters; /* 0x20 not 0 */
	le64 root_ino;       /* 0x28 file reference of the root directory */
	le32 max_io;         /* 0x30 largest DATA_* length, 4096..CSV_WIRE_IO_MAX */
	le32 name_max;       /* 0x34 1..CSV_WIRE_NAME_MAX */
	uint8_t reserved[8]; /* 0x38 */
};                           /* 0x40 */
static_assert(sizeof(struct csv_wire_d_welcome) == 0x40, "welcome size");

/* Attributes of an inode, the reply of LOOKUP, GETATTR, SETATTR, MKNOD,
 * MKDIR, SYMLINK, LINK, OPEN, LAYOUT_COMMIT and FALLOCATE. */
struct csv_wire_d_attr {
	le64 ino;            /* 0x00 file reference: recno low 48, seq high 16 */
	le64 size;           /* 0x08 bytes */
	le64 valid_data_length; /* 0x10 bytes; beyond it reads return zeros */
	le64 alloc_clusters; /* 0x18 */
	le64 atime_ns;       /* 0x20 signed, ns since 1970 */
	le64 mtime_ns;       /* 0x28 */
	le64 ctime_ns;       /* 0x30 */
	le64 btime_ns;       /* 0x38 birth */
	le64 attr_version;   /* 0x40 bumped at every change of the inode */
	le32 mode;           /* 0x48 st_mode: type and permission bits */
	le32 nlink;          /* 0x4c */
	le32 uid;            /* 0x50 */
	le32 gid;            /* 0x54 */
	le32 rdev;           /* 0x58 */
	le32 reserved;       /* 0x5c */
};                           /* 0x60 */
static_assert(sizeof(struct csv_wire_d_attr) == 0x60, "attr size");

/* GETATTR, READLINK. */
struct csv_wire_d_ino {
	le64 ino;            /* 0x00 */
};
static_assert(sizeof(struct csv_wire_d_ino) == 0x8, "ino size");

/* LOOKUP, UNLINK, RMDIR, INVAL_ENTRY; the name follows. */
struct csv_wire_d_entry {
	le64 parent;         /* 0x00 directory */
	le16 name_len;       /* 0x08 1..255 */
	uint8_t reserved[6]; /* 0x0a */
};                           /* 0x10, then name */
static_assert(sizeof(struct csv_wire_d_entry) == 0x10, "entry size");

/* SETATTR valid bits: which fields to set. ATIME_NOW and MTIME_NOW set
 * the time to the coordinator's clock (their time field is zero). The
 * fields a bit does not name are zero. */
enum {
	CSV_WIRE_SET_MODE = 1u << 0,
	CSV_WIRE_SET_UID = 1u << 1,
	CSV_WIRE_SET_GID = 1u << 2,
	CSV_WIRE_SET_SIZE = 1u << 3,
	CSV_WIRE_SET_ATIME = 1u << 4,
	CSV_WIRE_SET_MTIME = 1u << 5,
	CSV_WIRE_SET_CTIME = 1u << 6,
	CSV_WIRE_SET_ATIME_NOW = 1u << 7,
	CSV_WIRE_SET_MTIME_NOW = 1u << 8,
};
#define CSV_WIRE_SET_KNOWN 0x1ffu

struct csv_wire_d_setattr {
	le64 ino;            /* 0x00 */
	le32 valid;          /* 0x08 CSV_WIRE_SET_* */
	le32 mode;           /* 0x0c permission bits only (07777) */
	le32 uid;            /* 0x10 */
	le32 gid;            /* 0x14 */
	le64 size;           /* 0x18 truncate or extend to */
	le64 atime_ns;       /* 0x20 signed */
	le64 mtime_ns;       /* 0x28 signed */
	le64 ctime_ns;       /* 0x30 signed */
};                           /* 0x38 */
static_assert(sizeof(struct csv_wire_d_setattr) == 0x38, "setattr size");

/* MKNOD: a regular file, fifo, socket or device; the name follows. */
struct csv_wire_d_mknod {
	le64 parent;         /* 0x00 */
	le32 mode;           /* 0x08 type and permission bits */
	le32 rdev;           /* 0x0c */
	le32 uid;            /* 0x10 */
	le32 gid;            /* 0x14 */
	le16 name_len;       /* 0x18 */
	uint8_t reserved[6]; /* 0x1a */
};                           /* 0x20, then name */
static_assert(sizeof(struct csv_wire_d_mknod) == 0x20, "mknod size");

struct csv_wire_d_mkdir {
	le64 parent;         /* 0x00 */
	le32 mode;           /* 0x08 permission bits */
	le32 uid;            /* 0x0c */
	le32 gid;            /* 0x10 */
	le16 name_len;       /* 0x14 */
	le16 reserved;       /* 0x16 */
};                           /* 0x18, then name */
static_assert(sizeof(struct csv_wire_d_mkdir) == 0x18, "mkdir size");

struct csv_wire_d_symlink {
	le64 parent;         /* 0x00 */
	le32 uid;            /* 0x08 */
	le32 gid;            /* 0x0c */
	le16 name_len;       /* 0x10 */
	le16 reserved;       /* 0x12 */
	le32 target_len;     /* 0x14 1..CSV_WIRE_SYMLINK_MAX */
};                           /* 0x18, then name, then target */
static_assert(sizeof(struct csv_wire_d_symlink) == 0x18, "symlink size");

struct csv_wire_d_link {
	le64 ino;            /* 0x00 the file to link */
	le64 newparent;      /* 0x08 */
	le16 name_len;       /* 0x10 */
	uint8_t reserved[6]; /* 0x12 */
};                           /* 0x18, then the new name */
static_assert(sizeof(struct csv_wire_d_link) == 0x18, "link size");

/* RENAME flags, as renameat2(2). */
enum {
	CSV_WIRE_RENAME_NOREPLACE = 1u << 0,
	CSV_WIRE_RENAME_EXCHANGE = 1u << 1,
};
#define CSV_WIRE_RENAME_KNOWN 0x3u

struct csv_wire_d_rename {
	le64 parent;         /* 0x00 */
	le64 newparent;      /* 0x08 */
	le32 flags;          /* 0x10 CSV_WIRE_RENAME_* (not both) */
	le16 name_len;       /* 0x14 */
	le16 newname_len;    /* 0x16 */
};                           /* 0x18, then name, then newname */
static_assert(sizeof(struct csv_wire_d_rename) == 0x18, "rename size");

/* READLINK reply. */
struct csv_wire_d_readlink_reply {
	le32 target_len;     /* 0x00 1..CSV_WIRE_SYMLINK_MAX */
	le32 reserved;       /* 0x04 */
};                           /* 0x08, then target */
static_assert(sizeof(struct csv_wire_d_readlink_reply) == 0x8, "readlink reply size");

/* READDIR: entries after cookie (0 = from the start), at most max_bytes of
 * encoded entries (CSV_WIRE_DIRENT_SIZE each). The reply holds at least one
 * entry unless the directory has no more; "." and ".." are not sent. */
struct csv_wire_d_readdir {
	le64 ino;            /* 0x00 directory */
	le64 cookie;         /* 0x08 */
	le32 max_bytes;      /* 0x10 CSV_WIRE_DIRENT_SIZE(255)..CSV_WIRE_READDIR_MAX */
	le32 reserved;       /* 0x14 */
};                           /* 0x18 */
static_assert(sizeof(struct csv_wire_d_readdir) == 0x18, "readdir size");

enum { CSV_WIRE_READDIR_EOF = 1u << 0 }; /* no entry after the last one sent */

struct csv_wire_d_readdir_reply {
	le32 count;          /* 0x00 entries that follow */
	le32 flags;          /* 0x04 CSV_WIRE_READDIR_EOF */
};                           /* 0x08, then count entries */
static_assert(sizeof(struct csv_wire_d_readdir_reply) == 0x8, "readdir reply size");

/* One directory entry: its first 18 bytes, then the name. Entries are
 * back to back, unaligned; only the first CSV_WIRE_DIRENT_FIXED bytes of
 * this struct are on the wire (sizeof includes the compiler's tail
 * padding). */
struct csv_wire_d_dirent {
	le64 ino;            /* 0x00 file reference */
	le64 cookie;         /* 0x08 not 0; READDIR from it resumes after this entry */
	uint8_t type;        /* 0x10 DT_* of the file (0..15) */
	uint8_t name_len;    /* 0x11 1..255 */
	                     /* 0x12 name */
};
#define CSV_WIRE_DIRENT_FIXED 18u
static_assert(offsetof(struct csv_wire_d_dirent, name_len) + 1 == CSV_WIRE_DIRENT_FIXED,
	      "dirent fixed part");
#define CSV_WIRE_DIRENT_SIZE(name_len) (CSV_WIRE_DIRENT_FIXED + (name_len))

/* OPEN and RELEASE flags: how the file is opened. The coordinator counts
 * opens per node; RELEASE repeats the flags of its OPEN. */
enum {
	CSV_WIRE_OPEN_READ = 1u << 0,
	CSV_WIRE_OPEN_WRITE = 1u << 1,
	CSV_WIRE_OPEN_TRUNC = 1u << 2, /* OPEN only: truncate to 0, with WRITE */
};
#define CSV_WIRE_OPEN_KNOWN 0x7u

struct csv_wire_d_open {
	le64 ino;            /* 0x00 */
	le32 flags;          /* 0x08 CSV_WIRE_OPEN_*, READ or WRITE at least */
	le32 reserved;       /* 0x0c */
};                           /* 0x10 */
static_assert(sizeof(struct csv_wire_d_open) == 0x10, "open size");

struct csv_wire_d_statfs {
	le32 cluster_size;   /* 0x00 bytes */
	le32 name_max;       /* 0x04 */
	le64 total_clusters; /* 0x08 */
	le64 free_clusters;  /* 0x10 <= total_clusters */
	le64 total_records;  /* 0x18 MFT records the volume can hold */
	le64 free_records;   /* 0x20 <= total_records */
};                           /* 0x28 */
static_assert(sizeof(struct csv_wire_d_statfs) == 0x28, "statfs size");

/* SETXATTR flags, as setxattr(2). */
enum {
	CSV_WIRE_XATTR_CREATE = 1u << 0,
	CSV_WIRE_XATTR_REPLACE = 1u << 1,
};
#define CSV_WIRE_XATTR_KNOWN 0x3u

struct csv_wire_d_setxattr {
	le64 ino;            /* 0x00 */
	le32 flags;          /* 0x08 CSV_WIRE_XATTR_* (not both) */
	le16 name_len;       /* 0x0c 1..255 */
	le16 reserved;       /* 0x0e */
	le32 value_len;      /* 0x10 0..CSV_WIRE_XATTR_VALUE_MAX */
	le32 reserved2;      /* 0x14 */
};                           /* 0x18, then name, then value */
static_assert(sizeof(struct csv_wire_d_setxattr) == 0x18, "setxattr size");

/* GETXATTR (max: the largest value the caller takes; 0 asks for the size
 * only) and REMOVEXATTR (max zero); the name follows. */
struct csv_wire_d_getxattr {
	le64 ino;            /* 0x00 */
	le32 max;            /* 0x08 */
	le16 name_len;       /* 0x0c */
	le16 reserved;       /* 0x0e */
};                           /* 0x10, then name */
static_assert(sizeof(struct csv_wire_d_getxattr) == 0x10, "getxattr size");

struct csv_wire_d_listxattr {
	le64 ino;            /* 0x00 */
	le32 max;            /* 0x08 as GETXATTR */
	le32 reserved;       /* 0x0c */
};                           /* 0x10 */
static_assert(sizeof(struct csv_wire_d_listxattr) == 0x10, "listxattr size");

/* GETXATTR and LISTXATTR replies: size is the full size of the value (of
 * the list); the bytes follow only when the request's max was not 0, and
 * then len == size (a value larger than max is the error -ERANGE). A list
 * is names each followed by a NUL, as listxattr(2) returns. */
struct csv_wire_d_xattr_reply {
	le32 size;           /* 0x00 */
	le32 len;            /* 0x04 0 or size */
};                           /* 0x08, then len bytes */
static_assert(sizeof(struct csv_wire_d_xattr_reply) == 0x8, "xattr reply size");

/* LAYOUT_GET: the extents covering [offset, offset + length). For a read
 * layout holes are omitted; for a write layout the coordinator allocates
 * the holes and returns them as UNWRITTEN extents. */
enum { CSV_WIRE_LAYOUT_WRITE = 1u << 0 };

struct csv_wire_d_layout_get {
	le64 ino;            /* 0x00 */
	le64 offset;         /* 0x08 bytes */
	le64 length;         /* 0x10 bytes, not 0; offset + length <= 2^64 - 1 */
	le32 flags;          /* 0x18 CSV_WIRE_LAYOUT_WRITE */
	le32 reserved;       /* 0x1c */
};                           /* 0x20 */
static_assert(sizeof(struct csv_wire_d_layout_get) == 0x20, "layout get size");

enum { CSV_WIRE_EXTENT_UNWRITTEN = 1u << 0 }; /* allocated, reads return zeros */
#define CSV_WIRE_EXTENT_KNOWN 0x1u

/* An extent: length bytes of the file from file_offset are stored on the
 * LUN from lun_offset. Extents of a reply are sorted by file_offset and do
 * not overlap. */
struct csv_wire_d_extent {
	le64 file_offset;    /* 0x00 */
	le64 lun_offset;     /* 0x08 */
	le64 length;         /* 0x10 not 0, no overflow of either offset */
	le32 flags;          /* 0x18 CSV_WIRE_EXTENT_* */
	le32 reserved;       /* 0x1c */
};                           /* 0x20 */
static_assert(sizeof(struct csv_wire_d_extent) == 0x20, "extent size");

/* The most extents one LAYOUT_GET reply carries; a reply with that many
 * may stop short of the range asked for (ask again from its end). */
#define CSV_WIRE_LAYOUT_EXTENTS_MAX 1024

/* LAYOUT_GET reply. */
struct csv_wire_d_layout {
	le64 generation;     /* 0x00 names this layout in COMMIT, RETURN, RECALL */
	le64 size;           /* 0x08 file size */
	le64 valid_data_length; /* 0x10 */
	le32 count;          /* 0x18 extents that follow */
	le32 reserved;       /* 0x1c */
};                           /* 0x20, then count csv_wire_d_extent */
static_assert(sizeof(struct csv_wire_d_layout) == 0x20, "layout size");

/* LAYOUT_COMMIT flags: which of size, valid data length and mtime to
 * apply. Size and valid data length only grow by a commit (truncation is
 * SETATTR); fields a flag does not name are zero. */
enum {
	CSV_WIRE_COMMIT_SIZE = 1u << 0,
	CSV_WIRE_COMMIT_VDL = 1u << 1,
	CSV_WIRE_COMMIT_MTIME = 1u << 2,
};
#define CSV_WIRE_COMMIT_KNOWN 0x7u

struct csv_wire_d_layout_commit {
	le64 ino;            /* 0x00 */
	le64 generation;     /* 0x08 of the layout the writes went through */
	le64 size;           /* 0x10 */
	le64 valid_data_length; /* 0x18 */
	le64 mtime_ns;       /* 0x20 signed */
	le32 flags;          /* 0x28 CSV_WIRE_COMMIT_* */
	le32 count;          /* 0x2c ranges that follow */
};                           /* 0x30, then count csv_wire_d_range */
static_assert(sizeof(struct csv_wire_d_layout_commit) == 0x30, "layout commit size");

/* A byte range of a file, written, to convert from unwritten. Ranges are
 * sorted and do not overlap. */
struct csv_wire_d_range {
	le64 offset;         /* 0x00 */
	le64 length;         /* 0x08 not 0, no overflow */
};
static_assert(sizeof(struct csv_wire_d_range) == 0x10, "range size");

/* LAYOUT_RETURN and the LAYOUT_RECALL callback. */
struct csv_wire_d_layout_return {
	le64 ino;            /* 0x00 */
	le64 generation;     /* 0x08 */
};
static_assert(sizeof(struct csv_wire_d_layout_return) == 0x10, "layout return size");

/* FALLOCATE modes: the values of fallocate(2)'s FALLOC_FL_*. Mode 0
 * allocates and extends the size. */
enum {
	CSV_WIRE_FALLOC_KEEP_SIZE = 0x01u,
	CSV_WIRE_FALLOC_PUNCH_HOLE = 0x02u,
	CSV_WIRE_FALLOC_ZERO_RANGE = 0x10u,
};
#define CSV_WIRE_FALLOC_KNOWN 0x13u

struct csv_wire_d_fallocate {
	le64 ino;            /* 0x00 */
	le64 offset;         /* 0x08 */
	le64 length;         /* 0x10 not 0, no overflow */
	le32 mode;           /* 0x18 CSV_WIRE_FALLOC_* */
	le32 reserved;       /* 0x1c */
};                           /* 0x20 */
static_assert(sizeof(struct csv_wire_d_fallocate) == 0x20, "fallocate size");

enum { CSV_WIRE_FSYNC_DATASYNC = 1u << 0 };

struct csv_wire_d_fsync {
	le64 ino;            /* 0x00 */
	le32 flags;          /* 0x08 CSV_WIRE_FSYNC_* */
	le32 reserved;       /* 0x0c */
};                           /* 0x10 */
static_assert(sizeof(struct csv_wire_d_fsync) == 0x10, "fsync size");

/* DATA_READ: its reply's payload is the bytes read, nothing else (fewer
 * than asked only at the end of the LUN). */
struct csv_wire_d_data_read {
	le64 lun_offset;     /* 0x00 bytes */
	le32 length;         /* 0x08 1..CSV_WIRE_IO_MAX */
	le32 reserved;       /* 0x0c */
};                           /* 0x10 */
static_assert(sizeof(struct csv_wire_d_data_read) == 0x10, "data read size");

enum { CSV_WIRE_DATA_FUA = 1u << 0 }; /* flush the LUN's cache before replying */

struct csv_wire_d_data_write {
	le64 lun_offset;     /* 0x00 */
	le32 length;         /* 0x08 1..CSV_WIRE_IO_MAX, the bytes that follow */
	le32 flags;          /* 0x0c CSV_WIRE_DATA_* */
};                           /* 0x10, then the data */
static_assert(sizeof(struct csv_wire_d_data_write) == 0x10, "data write size");

/* INVAL_INODE callback, as fuse_lowlevel_notify_inval_inode(): the
 * attributes always, and cached data from offset for length bytes (0: to
 * the end); offset -1 invalidates the attributes only. */
struct csv_wire_d_inval_inode {
	le64 ino;            /* 0x00 */
	le64 offset;         /* 0x08 signed, -1 or >= 0 */
	le64 length;         /* 0x10 */
};
static_assert(sizeof(struct csv_wire_d_inval_inode) == 0x18, "inval inode size");

struct csv_wire_d_epoch_change {
	le64 new_epoch;      /* 0x00 greater than the header's epoch */
};
static_assert(sizeof(struct csv_wire_d_epoch_change) == 0x8, "epoch change size");

/* ---- In-memory messages ---------------------------------------------- */

/* A directory entry name or an xattr name, NUL-terminated. */
struct csv_wire_name {
	uint16_t len;                      /* 1..255 */
	char s[CSV_WIRE_NAME_MAX + 1];
};

struct csv_wire_hello {
	uint32_t version;
	uint32_t node_id;
	uint8_t volume_uuid[CSV_WIRE_UUID_SIZE];
	uint8_t nonce[CSV_WIRE_NONCE_SIZE];
};

struct csv_wire_challenge {
	uint32_t server_node;
	uint64_t epoch;
	uint8_t nonce[CSV_WIRE_NONCE_SIZE];
	uint8_t mac[CSV_WIRE_MAC_SIZE];
};

struct csv_wire_auth_msg {
	uint8_t mac[CSV_WIRE_MAC_SIZE];
};

struct csv_wire_welcome {
	uint64_t epoch;
	uint64_t session_id;
	uint32_t server_node;
	uint32_t flags;          /* CSV_WIRE_VOL_* */
	uint32_t cluster_size;
	uint32_t block_size;
	uint64_t total_clusters;
	uint64_t root_ino;
	uint32_t max_io;
	uint32_t name_max;
};

struct csv_wire_attr {
	uint64_t ino;
	uint32_t mode;
	uint32_t nlink;
	uint32_t uid;
	uint32_t gid;
	uint32_t rdev;
	uint64_t size;
	uint64_t valid_data_length;
	uint64_t alloc_clusters;
	int64_t atime_ns;
	int64_t mtime_ns;
	int64_t ctime_ns;
	int64_t btime_ns;
	uint64_t attr_version;
};

/* GETATTR, READLINK. */
struct csv_wire_ino_req {
	uint64_t ino;
};

/* LOOKUP, UNLINK, RMDIR, and the INVAL_ENTRY callback. */
struct csv_wire_entry_req {
	uint64_t parent;
	struct csv_wire_name name;
};

struct csv_wire_setattr {
	uint64_t ino;
	uint32_t valid;          /* CSV_WIRE_SET_* */
	uint32_t mode;
	uint32_t uid;
	uint32_t gid;
	uint64_t size;
	int64_t atime_ns;
	int64_t mtime_ns;
	int64_t ctime_ns;
};

struct csv_wire_mknod {
	uint64_t parent;
	struct csv_wire_name name;
	uint32_t mode;
	uint32_t rdev;
	uint32_t uid;
	uint32_t gid;
};

struct csv_wire_mkdir {
	uint64_t parent;
	struct csv_wire_name name;
	uint32_t mode;
	uint32_t uid;
	uint32_t gid;
};

struct csv_wire_symlink {
	uint64_t parent;
	struct csv_wire_name name;
	const char *target;      /* borrowed, not NUL-terminated */
	uint32_t target_len;
	uint32_t uid;
	uint32_t gid;
};

struct csv_wire_link {
	uint64_t ino;
	uint64_t newparent;
	struct csv_wire_name newname;
};

struct csv_wire_rename {
	uint64_t parent;
	struct csv_wire_name name;
	uint64_t newparent;
	struct csv_wire_name newname;
	uint32_t flags;          /* CSV_WIRE_RENAME_* */
};

struct csv_wire_readlink_reply {
	const char *target;      /* borrowed, not NUL-terminated */
	uint32_t target_len;
};

struct csv_wire_readdir {
	uint64_t ino;
	uint64_t cookie;
	uint32_t max_bytes;
};

struct csv_wire_dirent {
	uint64_t ino;
	uint64_t cookie;
	uint8_t type;            /* DT_* */
	struct csv_wire_name name;
};

/* A decoded READDIR reply: walk it with csv_wire_readdir_next(). */
struct csv_wire_readdir_reply {
	uint32_t count;
	bool eof;
	const uint8_t *entries;  /* borrowed: count validated entries */
	size_t entries_len;
	size_t pos;              /* iteration state */
	uint32_t index;
};

/* OPEN, RELEASE. */
struct csv_wire_open {
	uint64_t ino;
	uint32_t flags;          /* CSV_WIRE_OPEN_* */
};

struct csv_wire_statfs {
	uint32_t cluster_size;
	uint32_t name_max;
	uint64_t total_clusters;
	uint64_t free_clusters;
	uint64_t total_records;
	uint64_t free_records;
};

struct csv_wire_setxattr {
	uint64_t ino;
	struct csv_wire_name name;   /* xattr name rules */
	const void *value;       /* borrowed */
	uint32_t value_len;
	uint32_t flags;          /* CSV_WIRE_XATTR_* */
};

struct csv_wire_getxattr {
	uint64_t ino;
	struct csv_wire_name name;   /* xattr name rules */
	uint32_t max;
};

struct csv_wire_removexattr {
	uint64_t ino;
	struct csv_wire_name name;   /* xattr name rules */
};

struct csv_wire_listxattr {
	uint64_t ino;
	uint32_t max;
};

/* GETXATTR and LISTXATTR replies. */
struct csv_wire_xattr_reply {
	uint32_t size;           /* full size of the value or list */
	const void *data;        /* borrowed: len bytes, 0 or size */
	uint32_t len;
};

struct csv_wire_layout_get {
	uint64_t ino;
	uint64_t offset;
	uint64_t length;
	uint32_t flags;          /* CSV_WIRE_LAYOUT_WRITE */
};

struct csv_wire_extent {
	uint64_t file_offset;
	uint64_t lun_offset;
	uint64_t length;
	uint32_t flags;          /* CSV_WIRE_EXTENT_* */
};

/* LAYOUT_GET reply. Decoded, extents is allocated: csv_wire_layout_free(). */
struct csv_wire_layout {
	uint64_t generation;
	uint64_t size;
	uint64_t valid_data_length;
	uint32_t n_extents;
	struct csv_wire_extent *extents;
};

struct csv_wire_range {
	uint64_t offset;
	uint64_t length;
};

/* Decoded, ranges is allocated: csv_wire_layout_commit_free(). */
struct csv_wire_layout_commit {
	uint64_t ino;
	uint64_t generation;
	uint64_t size;
	uint64_t valid_data_length;
	int64_t mtime_ns;
	uint32_t flags;          /* CSV_WIRE_COMMIT_* */
	uint32_t n_ranges;
	struct csv_wire_range *ranges;
};

/* LAYOUT_RETURN, and the LAYOUT_RECALL callback. */
struct csv_wire_layout_return {
	uint64_t ino;
	uint64_t generation;
};

struct csv_wire_fallocate {
	uint64_t ino;
	uint32_t mode;           /* CSV_WIRE_FALLOC_* */
	uint64_t offset;
	uint64_t length;
};

struct csv_wire_fsync {
	uint64_t ino;
	uint32_t flags;          /* CSV_WIRE_FSYNC_* */
};

struct csv_wire_data_read {
	uint64_t lun_offset;
	uint32_t length;
};

/* A decoded DATA_WRITE request, or (lun_offset and flags 0) a decoded
 * DATA_READ reply: data is borrowed from the frame. */
struct csv_wire_data {
	uint64_t lun_offset;
	uint32_t flags;          /* CSV_WIRE_DATA_* */
	const void *data;
	uint32_t length;
};

struct csv_wire_inval_inode {
	uint64_t ino;
	int64_t offset;          /* -1: attributes only */
	uint64_t length;         /* 0: to the end */
};

struct csv_wire_epoch_change {
	uint64_t new_epoch;
};

/* ---- Frames ------------------------------------------------------------ */

/* An encoded frame: the header and payload in buf, and for DATA_WRITE
 * requests and DATA_READ replies the caller's data, referenced by a copy
 * of the caller's iovec array (the data itself is not copied and must stay
 * valid until the frame is sent or dropped). Zero-initialise before the
 * first use; an encoder replaces what the frame held. */
struct csv_wire_frame {
	uint8_t *buf;
	size_t len;              /* bytes of buf in use */
	size_t cap;
	struct iovec *iov;       /* trailing data, or NULL */
	int iovcnt;
	size_t iov_len;          /* bytes the iovecs hold */
	uint32_t count;          /* builders (READDIR reply): entries so far */
	uint32_t limit;          /* builders: max bytes of entries */
	int err;                 /* builders: first error */
};

/* Frees what the frame owns (not the referenced data) and empties it. */
void csv_wire_frame_done(struct csv_wire_frame *f);

/* The whole length on the wire: buf and referenced data. */
static inline size_t csv_wire_frame_size(const struct csv_wire_frame *f)
{
	return f->len + f->iov_len;
}

/* Copies the whole frame (buf and data) into one new buffer: for tests
 * and for callers that must keep a frame after its data goes away. */
int csv_wire_frame_flatten(const struct csv_wire_frame *f, uint8_t **ret, size_t *ret_len);

/* ---- Header ------------------------------------------------------------ */

/* Looks at the first bytes of a frame, as a reader that has received
 * avail bytes does: returns 0 and the frame's whole length in *ret_len
 * when at least 12 bytes are there and magic and length are acceptable
 * (the version is not checked here, so that a frame of another version can
 * still be read and refused); -EAGAIN when fewer than 12 bytes are there;
 * -EBADMSG for a wrong magic or a length below 48 or above
 * CSV_WIRE_FRAME_MAX. */
int csv_wire_frame_peek(const void *buf, size_t avail, uint32_t *ret_len);

/* Checks and decodes the header of a whole frame of len bytes: magic,
 * version (-EPROTONOSUPPORT), length == len, payload_len, a known type
 * with flags allowed for it, status (0 unless a reply; -4095..0; an error
 * reply has no payload), reserved bytes. */
int csv_wire_hdr_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret);

/* A frame without payload: PING and STATFS requests, PING, UNLINK, RMDIR,
 * RENAME, RELEASE, SETXATTR, REMOVEXATTR, FSYNC, LAYOUT_RETURN, DATA_WRITE
 * replies, callback replies, and error replies (status < 0, flags REPLY or
 * REPLY|CALLBACK). */
int csv_wire_empty_encode(struct csv_wire_frame *f, uint16_t type, uint16_t flags,
			  uint64_t req_id, uint64_t epoch, int status);
/* Decodes a frame without payload of the given type and flags; any status
 * the header allows. */
int csv_wire_empty_decode(const void *frame, size_t len, uint16_t type, uint16_t flags,
			  struct csv_wire_msghdr *ret_hdr);

/* The empty reply (status 0) or the error reply (status < 0) to a
 * decoded request or callback: same type and id, REPLY set. */
int csv_wire_reply_status_encode(struct csv_wire_frame *f, const struct csv_wire_msghdr *req,
				 uint64_t epoch, int status);

/* "LOOKUP", "LAYOUT_RECALL", ...; "unknown" for others. */
const char *csv_wire_type_name(uint16_t type);
/* True for the types above. */
bool csv_wire_type_known(uint16_t type);
bool csv_wire_type_is_callback(uint16_t type);

/* ---- Names ------------------------------------------------------------- */

/* Sets a directory entry name: 1..255 bytes, no '/' or NUL. Returns
 * -ENAMETOOLONG or -EINVAL. */
int csv_wire_name_set(struct csv_wire_name *n, const char *s);
int csv_wire_name_setn(struct csv_wire_name *n, const char *s, size_t len);
/* Sets an xattr name: 1..255 bytes, no NUL ('/' allowed). Returns
 * -ERANGE (too long, as setxattr(2)) or -EINVAL. */
int csv_wire_xattr_name_set(struct csv_wire_name *n, const char *s);

/* ---- Messages ----------------------------------------------------------
 *
 * One encode/decode pair per message. Requests and callbacks take the
 * request id and the sender's epoch; replies take the id of the request
 * they answer and the coordinator's epoch, and carry status 0 (errors go
 * as csv_wire_reply_status_encode()). Messages without a payload (PING,
 * the STATFS request, the empty replies) use csv_wire_empty_encode() and
 * csv_wire_empty_decode(). A payload decoder given an error reply returns
 * -EINVAL: decode the header first, and the payload only when the status
 * is 0. ret_hdr may be NULL.
 */

/* Handshake (wire-auth.h drives these; they are here for completeness). */
/* HELLO request: version, node id, volume UUID, client nonce. */
int csv_wire_hello_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			  const struct csv_wire_hello *m);
int csv_wire_hello_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			  struct csv_wire_hello *ret);
/* HELLO reply: server node, epoch, server nonce, server MAC. */
int csv_wire_challenge_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			      const struct csv_wire_challenge *m);
int csv_wire_challenge_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			      struct csv_wire_challenge *ret);
/* AUTH request: the client MAC. */
int csv_wire_auth_msg_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			     const struct csv_wire_auth_msg *m);
int csv_wire_auth_msg_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			     struct csv_wire_auth_msg *ret);
/* AUTH reply: epoch, session, volume geometry (all checked). */
int csv_wire_welcome_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			    const struct csv_wire_welcome *m);
int csv_wire_welcome_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			    struct csv_wire_welcome *ret);

/* Namespace requests. */
/* LOOKUP(parent, name) -> attr. */
int csv_wire_lookup_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			   const struct csv_wire_entry_req *m);
int csv_wire_lookup_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			   struct csv_wire_entry_req *ret);
/* GETATTR(ino) -> attr. */
int csv_wire_getattr_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			    const struct csv_wire_ino_req *m);
int csv_wire_getattr_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			    struct csv_wire_ino_req *ret);
/* SETATTR(ino, valid, values) -> attr. Fields valid does not name must be
 * zero; mode is permission bits only; ATIME/ATIME_NOW (MTIME/MTIME_NOW)
 * exclude each other. */
int csv_wire_setattr_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			    const struct csv_wire_setattr *m);
int csv_wire_setattr_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			    struct csv_wire_setattr *ret);
/* MKNOD(parent, name, mode, rdev, uid, gid) -> attr: a regular file,
 * fifo, socket or device (mode carries the S_IF* type); rdev is zero
 * unless a device. */
int csv_wire_mknod_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			  const struct csv_wire_mknod *m);
int csv_wire_mknod_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			  struct csv_wire_mknod *ret);
/* MKDIR(parent, name, mode (07777), uid, gid) -> attr. */
int csv_wire_mkdir_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			  const struct csv_wire_mkdir *m);
int csv_wire_mkdir_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			  struct csv_wire_mkdir *ret);
/* SYMLINK(parent, name, target, uid, gid) -> attr. */
int csv_wire_symlink_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			    const struct csv_wire_symlink *m);
int csv_wire_symlink_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			    struct csv_wire_symlink *ret);
/* LINK(ino, newparent, newname) -> attr. */
int csv_wire_link_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			 const struct csv_wire_link *m);
int csv_wire_link_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			 struct csv_wire_link *ret);
/* UNLINK(parent, name) -> empty. */
int csv_wire_unlink_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			   const struct csv_wire_entry_req *m);
int csv_wire_unlink_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			   struct csv_wire_entry_req *ret);
/* RMDIR(parent, name) -> empty. */
int csv_wire_rmdir_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			  const struct csv_wire_entry_req *m);
int csv_wire_rmdir_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			  struct csv_wire_entry_req *ret);
/* RENAME(parent, name, newparent, newname, flags) -> empty. */
int csv_wire_rename_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			   const struct csv_wire_rename *m);
int csv_wire_rename_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			   struct csv_wire_rename *ret);
/* READLINK(ino) -> csv_wire_readlink_reply. */
int csv_wire_readlink_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			     const struct csv_wire_ino_req *m);
int csv_wire_readlink_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			     struct csv_wire_ino_req *ret);
/* READDIR(ino, cookie, max_bytes) -> READDIR reply (builder below). */
int csv_wire_readdir_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			    const struct csv_wire_readdir *m);
int csv_wire_readdir_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			    struct csv_wire_readdir *ret);
/* OPEN(ino, flags) -> attr. The coordinator counts opens per node. */
int csv_wire_open_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			 const struct csv_wire_open *m);
int csv_wire_open_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			 struct csv_wire_open *ret);
/* RELEASE(ino, flags of the OPEN) -> empty. */
int csv_wire_release_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			    const struct csv_wire_open *m);
int csv_wire_release_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			    struct csv_wire_open *ret);
/* SETXATTR(ino, name, value, flags) -> empty. */
int csv_wire_setxattr_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			     const struct csv_wire_setxattr *m);
int csv_wire_setxattr_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			     struct csv_wire_setxattr *ret);
/* GETXATTR(ino, name, max) -> csv_wire_xattr_reply (-ERANGE if larger
 * than max, -ENODATA if absent). */
int csv_wire_getxattr_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			     const struct csv_wire_getxattr *m);
int csv_wire_getxattr_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			     struct csv_wire_getxattr *ret);
/* LISTXATTR(ino, max) -> csv_wire_xattr_reply. */
int csv_wire_listxattr_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			      const struct csv_wire_listxattr *m);
int csv_wire_listxattr_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			      struct csv_wire_listxattr *ret);
/* REMOVEXATTR(ino, name) -> empty. */
int csv_wire_removexattr_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
				const struct csv_wire_removexattr *m);
int csv_wire_removexattr_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
				struct csv_wire_removexattr *ret);
/* FSYNC(ino, flags) -> empty, sent once the journal commit is durable. */
int csv_wire_fsync_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			  const struct csv_wire_fsync *m);
int csv_wire_fsync_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			  struct csv_wire_fsync *ret);
/* FALLOCATE(ino, mode, offset, length) -> attr. */
int csv_wire_fallocate_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			      const struct csv_wire_fallocate *m);
int csv_wire_fallocate_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			      struct csv_wire_fallocate *ret);

/* Layouts and redirected I/O. */
/* LAYOUT_GET(ino, offset, length, flags) -> csv_wire_layout. */
int csv_wire_layout_get_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			       const struct csv_wire_layout_get *m);
int csv_wire_layout_get_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			       struct csv_wire_layout_get *ret);
/* LAYOUT_COMMIT(ino, generation, size, VDL, mtime, written ranges) ->
 * attr. The decoder allocates ranges: csv_wire_layout_commit_free(). */
int csv_wire_layout_commit_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
				  const struct csv_wire_layout_commit *m);
int csv_wire_layout_commit_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
				  struct csv_wire_layout_commit *ret);
/* LAYOUT_RETURN(ino, generation) -> empty. */
int csv_wire_layout_return_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
				  const struct csv_wire_layout_return *m);
int csv_wire_layout_return_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
				  struct csv_wire_layout_return *ret);
/* DATA_READ(lun_offset, length) -> the bytes (csv_wire_data_read_reply_*). */
int csv_wire_data_read_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			      const struct csv_wire_data_read *m);
int csv_wire_data_read_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			      struct csv_wire_data_read *ret);

/* Replies with a payload of their own (the attr reply and the READDIR
 * and DATA_READ replies are further below). */
/* READLINK reply: the target, borrowed from the frame when decoded. */
int csv_wire_readlink_reply_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
				   const struct csv_wire_readlink_reply *m);
int csv_wire_readlink_reply_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
				   struct csv_wire_readlink_reply *ret);
/* STATFS reply. (The STATFS request is empty.) */
int csv_wire_statfs_reply_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
				 const struct csv_wire_statfs *m);
int csv_wire_statfs_reply_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
				 struct csv_wire_statfs *ret);
/* GETXATTR reply: size, and the value when the request's max was not 0. */
int csv_wire_getxattr_reply_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
				   const struct csv_wire_xattr_reply *m);
int csv_wire_getxattr_reply_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
				   struct csv_wire_xattr_reply *ret);
/* LISTXATTR reply: size, and the NUL-separated list when max was not 0. */
int csv_wire_listxattr_reply_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
				    const struct csv_wire_xattr_reply *m);
int csv_wire_listxattr_reply_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
				    struct csv_wire_xattr_reply *ret);
/* LAYOUT_GET reply. The decoder allocates extents: csv_wire_layout_free(). */
int csv_wire_layout_get_reply_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
				     const struct csv_wire_layout *m);
int csv_wire_layout_get_reply_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
				     struct csv_wire_layout *ret);

/* Callbacks: flags CALLBACK, ids from the coordinator's own counter; the
 * client answers each with csv_wire_reply_status_encode(). */
/* INVAL_INODE(ino, offset, length). */
int csv_wire_inval_inode_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
				const struct csv_wire_inval_inode *m);
int csv_wire_inval_inode_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
				struct csv_wire_inval_inode *ret);
/* INVAL_ENTRY(parent, name). */
int csv_wire_inval_entry_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
				const struct csv_wire_entry_req *m);
int csv_wire_inval_entry_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
				struct csv_wire_entry_req *ret);
/* LAYOUT_RECALL(ino, generation): reply after LAYOUT_RETURN's reply. */
int csv_wire_layout_recall_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
				  const struct csv_wire_layout_return *m);
int csv_wire_layout_recall_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
				  struct csv_wire_layout_return *ret);
/* EPOCH_CHANGE(new_epoch): new_epoch must exceed the header's epoch. */
int csv_wire_epoch_change_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
				 const struct csv_wire_epoch_change *m);
int csv_wire_epoch_change_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
				 struct csv_wire_epoch_change *ret);

/* The attribute reply of LOOKUP, GETATTR, SETATTR, MKNOD, MKDIR, SYMLINK,
 * LINK, OPEN, LAYOUT_COMMIT and FALLOCATE; type says which. */
int csv_wire_attr_reply_encode(struct csv_wire_frame *f, uint16_t type, uint64_t req_id,
			       uint64_t epoch, const struct csv_wire_attr *m);
int csv_wire_attr_reply_decode(const void *frame, size_t len, uint16_t type,
			       struct csv_wire_msghdr *ret_hdr, struct csv_wire_attr *ret);
/* True for the types whose reply is an attr. */
bool csv_wire_type_replies_attr(uint16_t type);

/* Frees what a decoder allocated, and NULLs it. Safe on encoder input
 * that was not allocated by a decoder only if the array pointer is NULL. */
void csv_wire_layout_free(struct csv_wire_layout *m);
void csv_wire_layout_commit_free(struct csv_wire_layout_commit *m);

/* READDIR reply, built entry by entry: begin, add until it returns
 * -ENOSPC (the entry does not fit in max_bytes, the request's limit) or the
 * directory ends, then end. The frame is complete only after end; an
 * error of add other than -ENOSPC is returned again by end. */
int csv_wire_readdir_reply_begin(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
				 uint32_t max_bytes);
int csv_wire_readdir_reply_add(struct csv_wire_frame *f, const struct csv_wire_dirent *d);
int csv_wire_readdir_reply_end(struct csv_wire_frame *f, bool eof);
int csv_wire_readdir_reply_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
				  struct csv_wire_readdir_reply *ret);
/* The next entry of a decoded reply: 1 and *ret, or 0 at the end. */
int csv_wire_readdir_next(struct csv_wire_readdir_reply *m, struct csv_wire_dirent *ret);

/* DATA_WRITE request and DATA_READ reply: the data is referenced through
 * iov (0..CSV_WIRE_IOV_MAX entries), not copied; it must stay valid until the
 * frame has been sent (the sent callback of csv_wire_conn_queue()). */
int csv_wire_data_write_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			       uint64_t lun_offset, uint32_t flags,
			       const struct iovec *iov, int iovcnt);
int csv_wire_data_write_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			       struct csv_wire_data *ret);
int csv_wire_data_read_reply_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
				    const struct iovec *iov, int iovcnt);
int csv_wire_data_read_reply_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
				    struct csv_wire_data *ret);
