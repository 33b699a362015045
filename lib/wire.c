/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The wire protocol's frame header and the encode/decode pair of every
 * message. See wire.h for the rules every function here follows. */
#include "wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

/* ---- Message types ------------------------------------------------------ */

static const char *const type_names[] = {
	[CSV_WIRE_HELLO] = "HELLO",
	[CSV_WIRE_AUTH] = "AUTH",
	[CSV_WIRE_PING] = "PING",
	[CSV_WIRE_LOOKUP] = "LOOKUP",
	[CSV_WIRE_GETATTR] = "GETATTR",
	[CSV_WIRE_SETATTR] = "SETATTR",
	[CSV_WIRE_MKNOD] = "MKNOD",
	[CSV_WIRE_MKDIR] = "MKDIR",
	[CSV_WIRE_SYMLINK] = "SYMLINK",
	[CSV_WIRE_LINK] = "LINK",
	[CSV_WIRE_UNLINK] = "UNLINK",
	[CSV_WIRE_RMDIR] = "RMDIR",
	[CSV_WIRE_RENAME] = "RENAME",
	[CSV_WIRE_READLINK] = "READLINK",
	[CSV_WIRE_READDIR] = "READDIR",
	[CSV_WIRE_OPEN] = "OPEN",
	[CSV_WIRE_RELEASE] = "RELEASE",
	[CSV_WIRE_STATFS] = "STATFS",
	[CSV_WIRE_SETXATTR] = "SETXATTR",
	[CSV_WIRE_GETXATTR] = "GETXATTR",
	[CSV_WIRE_LISTXATTR] = "LISTXATTR",
	[CSV_WIRE_REMOVEXATTR] = "REMOVEXATTR",
	[CSV_WIRE_FSYNC] = "FSYNC",
	[CSV_WIRE_FALLOCATE] = "FALLOCATE",
	[CSV_WIRE_LAYOUT_GET] = "LAYOUT_GET",
	[CSV_WIRE_LAYOUT_COMMIT] = "LAYOUT_COMMIT",
	[CSV_WIRE_LAYOUT_RETURN] = "LAYOUT_RETURN",
	[CSV_WIRE_DATA_READ] = "DATA_READ",
	[CSV_WIRE_DATA_WRITE] = "DATA_WRITE",
	[CSV_WIRE_INVAL_INODE] = "INVAL_INODE",
	[CSV_WIRE_INVAL_ENTRY] = "INVAL_ENTRY",
	[CSV_WIRE_LAYOUT_RECALL] = "LAYOUT_RECALL",
	[CSV_WIRE_EPOCH_CHANGE] = "EPOCH_CHANGE",
};

bool csv_wire_type_known(uint16_t type)
{
	return type < ARRAY_SIZE(type_names) && type_names[type];
}

const char *csv_wire_type_name(uint16_t type)
{
	return csv_wire_type_known(type) ? type_names[type] : "unknown";
}

bool csv_wire_type_is_callback(uint16_t type)
{
	return csv_wire_type_known(type) && type >= 64;
}

bool csv_wire_type_replies_attr(uint16_t type)
{
	switch (type) {
	case CSV_WIRE_LOOKUP:
	case CSV_WIRE_GETATTR:
	case CSV_WIRE_SETATTR:
	case CSV_WIRE_MKNOD:
	case CSV_WIRE_MKDIR:
	case CSV_WIRE_SYMLINK:
	case CSV_WIRE_LINK:
	case CSV_WIRE_OPEN:
	case CSV_WIRE_LAYOUT_COMMIT:
	case CSV_WIRE_FALLOCATE:
		return true;
	default:
		return false;
	}
}

static bool flags_valid_for(uint16_t type, uint16_t flags)
{
	if (csv_wire_type_is_callback(type))
		return flags == CSV_WIRE_F_CALLBACK ||
		       flags == (CSV_WIRE_F_CALLBACK | CSV_WIRE_F_REPLY);
	return flags == CSV_WIRE_F_REQUEST || flags == CSV_WIRE_F_REPLY;
}

static bool is_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/* ---- Frames: building ---------------------------------------------------- */

void csv_wire_frame_done(struct csv_wire_frame *f)
{
	free(f->buf);
	free(f->iov);
	*f = (struct csv_wire_frame){ 0 };
}

int csv_wire_frame_flatten(const struct csv_wire_frame *f, uint8_t **ret, size_t *ret_len)
{
	size_t total = csv_wire_frame_size(f);
	uint8_t *p = malloc(total ? total : 1);
	if (!p)
		return -ENOMEM;
	if (f->len)
		memcpy(p, f->buf, f->len);
	size_t off = f->len;
	for (int i = 0; i < f->iovcnt; i++) {
		if (f->iov[i].iov_len)
			memcpy(p + off, f->iov[i].iov_base, f->iov[i].iov_len);
		off += f->iov[i].iov_len;
	}
	*ret = p;
	*ret_len = total;
	return 0;
}

/* Makes room for n more bytes in buf; on failure records the error in
 * f->err and returns NULL. */
static uint8_t *frame_put(struct csv_wire_frame *f, size_t n)
{
	if (f->err)
		return NULL;
	if (n > CSV_WIRE_FRAME_MAX || f->len + n > CSV_WIRE_FRAME_MAX) {
		f->err = -EMSGSIZE;
		return NULL;
	}
	if (f->len + n > f->cap) {
		size_t cap = MAX(MAX(f->cap * 2, (size_t)256), f->len + n);
		uint8_t *p = realloc(f->buf, cap);
		if (!p) {
			f->err = -ENOMEM;
			return NULL;
		}
		f->buf = p;
		f->cap = cap;
	}
	uint8_t *p = f->buf + f->len;
	f->len += n;
	return p;
}

static void frame_put_bytes(struct csv_wire_frame *f, const void *src, size_t n)
{
	uint8_t *p = frame_put(f, n);
	if (p && n)
		memcpy(p, src, n);
}

/* Starts a frame; payload_hint sizes the first allocation. */
static int frame_begin(struct csv_wire_frame *f, uint16_t type, uint16_t flags,
		       uint64_t req_id, uint64_t epoch, int status, size_t payload_hint)
{
	csv_wire_frame_done(f);
	if (payload_hint <= CSV_WIRE_PAYLOAD_MAX) {
		f->buf = malloc(CSV_WIRE_HDR_SIZE + payload_hint);
		if (!f->buf)
			return -ENOMEM;
		f->cap = CSV_WIRE_HDR_SIZE + payload_hint;
	}
	struct csv_wire_hdr h = {
		.magic = cpu_to_le32(CSV_WIRE_MAGIC),
		.version = cpu_to_le16(CSV_WIRE_VERSION),
		.type = cpu_to_le16(type),
		.flags = cpu_to_le16(flags),
		.req_id = cpu_to_le64(req_id),
		.epoch = cpu_to_le64(epoch),
		.status = cpu_to_le32((uint32_t)status),
	};
	frame_put_bytes(f, &h, sizeof h);
	return f->err;
}

/* Empties the frame and returns r (< 0). */
static int frame_fail(struct csv_wire_frame *f, int r)
{
	csv_wire_frame_done(f);
	return r;
}

/* Checks the size and fills in the lengths. */
static int frame_finish(struct csv_wire_frame *f)
{
	if (f->err)
		return frame_fail(f, f->err);
	size_t total = f->len + f->iov_len;
	if (f->len < CSV_WIRE_HDR_SIZE || total > CSV_WIRE_FRAME_MAX)
		return frame_fail(f, -EMSGSIZE);
	le32 length = cpu_to_le32((uint32_t)total);
	le32 payload = cpu_to_le32((uint32_t)(total - CSV_WIRE_HDR_SIZE));
	memcpy(f->buf + offsetof(struct csv_wire_hdr, length), &length, sizeof length);
	memcpy(f->buf + offsetof(struct csv_wire_hdr, payload_len), &payload, sizeof payload);
	return 0;
}

/* Attaches a copy of the iovec array (not the data). */
static int frame_set_iov(struct csv_wire_frame *f, const struct iovec *iov, int iovcnt,
			 size_t max_len)
{
	if (iovcnt < 0 || iovcnt > CSV_WIRE_IOV_MAX || (iovcnt > 0 && !iov))
		return -EINVAL;
	size_t total = 0;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > max_len || total + iov[i].iov_len > max_len)
			return -EMSGSIZE;
		if (iov[i].iov_len && !iov[i].iov_base)
			return -EINVAL;
		total += iov[i].iov_len;
	}
	if (iovcnt > 0) {
		f->iov = malloc(sizeof(*iov) * (size_t)iovcnt);
		if (!f->iov)
			return -ENOMEM;
		memcpy(f->iov, iov, sizeof(*iov) * (size_t)iovcnt);
	}
	f->iovcnt = iovcnt;
	f->iov_len = total;
	return 0;
}

/* ---- Frames: reading ------------------------------------------------------ */

int csv_wire_frame_peek(const void *buf, size_t avail, uint32_t *ret_len)
{
	struct {
		le32 magic;
		le16 version;
		le16 type;
		le32 length;
	} p;
	static_assert(sizeof(p) == 12, "frame prefix");

	if (avail < sizeof p)
		return -EAGAIN;
	memcpy(&p, buf, sizeof p);
	if (le32_to_cpu(p.magic) != CSV_WIRE_MAGIC)
		return -EBADMSG;
	uint32_t length = le32_to_cpu(p.length);
	if (length < CSV_WIRE_HDR_SIZE || length > CSV_WIRE_FRAME_MAX)
		return -EBADMSG;
	*ret_len = length;
	return 0;
}

int csv_wire_hdr_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret)
{
	struct csv_wire_hdr h;

	if (!frame || len < CSV_WIRE_HDR_SIZE || len > CSV_WIRE_FRAME_MAX)
		return -EBADMSG;
	memcpy(&h, frame, sizeof h);
	if (le32_to_cpu(h.magic) != CSV_WIRE_MAGIC)
		return -EBADMSG;
	if (le16_to_cpu(h.version) != CSV_WIRE_VERSION)
		return -EPROTONOSUPPORT;
	if (le32_to_cpu(h.length) != len ||
	    le32_to_cpu(h.payload_len) != len - CSV_WIRE_HDR_SIZE)
		return -EBADMSG;
	if (le16_to_cpu(h.reserved0) != 0 || !is_zero(h.reserved, sizeof h.reserved))
		return -EBADMSG;

	uint16_t type = le16_to_cpu(h.type);
	uint16_t flags = le16_to_cpu(h.flags);
	if (!csv_wire_type_known(type) || !flags_valid_for(type, flags))
		return -EBADMSG;

	int32_t status = (int32_t)le32_to_cpu(h.status);
	if (flags & CSV_WIRE_F_REPLY) {
		if (status > 0 || status < -CSV_WIRE_ERRNO_MAX)
			return -EBADMSG;
		if (status != 0 && len != CSV_WIRE_HDR_SIZE)
			return -EBADMSG;
	} else if (status != 0)
		return -EBADMSG;

	if (ret)
		*ret = (struct csv_wire_msghdr){
			.type = type,
			.flags = flags,
			.payload_len = (uint32_t)(len - CSV_WIRE_HDR_SIZE),
			.req_id = le64_to_cpu(h.req_id),
			.epoch = le64_to_cpu(h.epoch),
			.status = status,
		};
	return 0;
}

/* A cursor over a payload. */
struct rd {
	const uint8_t *p;
	size_t left;
};

/* Decodes and checks the header, then checks that the frame is of the
 * given type and direction and not an error reply. */
static int frame_open(const void *frame, size_t len, uint16_t type, uint16_t flags,
		      struct csv_wire_msghdr *h, struct rd *rd)
{
	int r = csv_wire_hdr_decode(frame, len, h);
	if (r < 0)
		return r;
	if (h->type != type || h->flags != flags)
		return -EBADMSG;
	if (h->status != 0)
		return -EINVAL; /* an error reply has no payload to decode */
	rd->p = (const uint8_t *)frame + CSV_WIRE_HDR_SIZE;
	rd->left = h->payload_len;
	return 0;
}

/* Copies n bytes out (a fixed part into its wire struct). */
static bool rd_get(struct rd *rd, void *dst, size_t n)
{
	if (rd->left < n)
		return false;
	memcpy(dst, rd->p, n);
	rd->p += n;
	rd->left -= n;
	return true;
}

/* Borrows n bytes; NULL if fewer are left. */
static const uint8_t *rd_take(struct rd *rd, size_t n)
{
	if (rd->left < n)
		return NULL;
	const uint8_t *p = rd->p;
	rd->p += n;
	rd->left -= n;
	return p;
}

static void hdr_out(struct csv_wire_msghdr *ret_hdr, const struct csv_wire_msghdr *h)
{
	if (ret_hdr)
		*ret_hdr = *h;
}

/* ---- Names and strings ------------------------------------------------- */

static bool name_bytes_ok(const void *s, size_t len, bool xattr)
{
	if (len == 0 || len > CSV_WIRE_NAME_MAX)
		return false;
	if (memchr(s, '\0', len))
		return false;
	if (!xattr && memchr(s, '/', len))
		return false;
	return true;
}

int csv_wire_name_setn(struct csv_wire_name *n, const char *s, size_t len)
{
	if (!s)
		return -EINVAL;
	if (len > CSV_WIRE_NAME_MAX)
		return -ENAMETOOLONG;
	if (!name_bytes_ok(s, len, false))
		return -EINVAL;
	memcpy(n->s, s, len);
	n->s[len] = '\0';
	n->len = (uint16_t)len;
	return 0;
}

int csv_wire_name_set(struct csv_wire_name *n, const char *s)
{
	if (!s)
		return -EINVAL;
	return csv_wire_name_setn(n, s, strnlen(s, CSV_WIRE_NAME_MAX + 1));
}

int csv_wire_xattr_name_set(struct csv_wire_name *n, const char *s)
{
	if (!s)
		return -EINVAL;
	size_t len = strnlen(s, CSV_WIRE_XATTR_NAME_MAX + 1);
	if (len > CSV_WIRE_XATTR_NAME_MAX)
		return -ERANGE; /* as setxattr(2) for a too-long name */
	if (!name_bytes_ok(s, len, true))
		return -EINVAL;
	memcpy(n->s, s, len);
	n->s[len] = '\0';
	n->len = (uint16_t)len;
	return 0;
}

/* Checks a name a caller hands to an encoder. */
static int name_check(const struct csv_wire_name *n, bool xattr)
{
	if (n->len > CSV_WIRE_NAME_MAX)
		return xattr ? -ERANGE : -ENAMETOOLONG; /* as setxattr(2), open(2) */
	return name_bytes_ok(n->s, n->len, xattr) ? 0 : -EINVAL;
}

static int rd_name(struct rd *rd, size_t len, bool xattr, struct csv_wire_name *ret)
{
	const uint8_t *p;

	if (len == 0 || len > CSV_WIRE_NAME_MAX)
		return -EBADMSG;
	p = rd_take(rd, len);
	if (!p || !name_bytes_ok(p, len, xattr))
		return -EBADMSG;
	memcpy(ret->s, p, len);
	ret->s[len] = '\0';
	ret->len = (uint16_t)len;
	return 0;
}

/* A symlink target: 1..CSV_WIRE_SYMLINK_MAX bytes, no NUL. */
static bool target_ok(const void *s, size_t len)
{
	return s && len >= 1 && len <= CSV_WIRE_SYMLINK_MAX && !memchr(s, '\0', len);
}

/* A list of xattr names, each followed by a NUL. */
static bool xattr_list_ok(const uint8_t *p, size_t len)
{
	size_t start = 0;

	if (len == 0)
		return true;
	if (p[len - 1] != '\0')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (p[i] != '\0')
			continue;
		if (i == start || i - start > CSV_WIRE_XATTR_NAME_MAX)
			return false;
		start = i + 1;
	}
	return true;
}

/* off + len does not pass 2^64 - 1. */
static bool range_ok(uint64_t off, uint64_t len)
{
	return len <= UINT64_MAX - off;
}

/* ---- Empty frames ------------------------------------------------------------ */

int csv_wire_empty_encode(struct csv_wire_frame *f, uint16_t type, uint16_t flags,
			  uint64_t req_id, uint64_t epoch, int status)
{
	if (!csv_wire_type_known(type) || !flags_valid_for(type, flags))
		return frame_fail(f, -EINVAL);
	if (status > 0 || status < -CSV_WIRE_ERRNO_MAX ||
	    (status != 0 && !(flags & CSV_WIRE_F_REPLY)))
		return frame_fail(f, -EINVAL);
	int r = frame_begin(f, type, flags, req_id, epoch, status, 0);
	if (r < 0)
		return frame_fail(f, r);
	return frame_finish(f);
}

int csv_wire_empty_decode(const void *frame, size_t len, uint16_t type, uint16_t flags,
			  struct csv_wire_msghdr *ret_hdr)
{
	struct csv_wire_msghdr h;
	int r = csv_wire_hdr_decode(frame, len, &h);
	if (r < 0)
		return r;
	if (h.type != type || h.flags != flags || h.payload_len != 0)
		return -EBADMSG;
	hdr_out(ret_hdr, &h);
	return 0;
}

int csv_wire_reply_status_encode(struct csv_wire_frame *f, const struct csv_wire_msghdr *req,
				 uint64_t epoch, int status)
{
	if (!req || (req->flags & CSV_WIRE_F_REPLY))
		return frame_fail(f, -EINVAL);
	uint16_t flags = (req->flags & CSV_WIRE_F_CALLBACK) ?
			 (CSV_WIRE_F_CALLBACK | CSV_WIRE_F_REPLY) : CSV_WIRE_F_REPLY;
	return csv_wire_empty_encode(f, req->type, flags, req->req_id, epoch, status);
}

/* ---- Handshake --------------------------------------------------------- */

int csv_wire_hello_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			  const struct csv_wire_hello *m)
{
	struct csv_wire_d_hello d = {
		.version = cpu_to_le32(m->version),
		.node_id = cpu_to_le32(m->node_id),
	};
	if (m->node_id == 0)
		return frame_fail(f, -EINVAL);
	memcpy(d.volume_uuid, m->volume_uuid, sizeof d.volume_uuid);
	memcpy(d.nonce, m->nonce, sizeof d.nonce);
	int r = frame_begin(f, CSV_WIRE_HELLO, CSV_WIRE_F_REQUEST, req_id, epoch, 0, sizeof d);
	if (r < 0)
		return frame_fail(f, r);
	frame_put_bytes(f, &d, sizeof d);
	return frame_finish(f);
}

int csv_wire_hello_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			  struct csv_wire_hello *ret)
{
	struct csv_wire_msghdr h;
	struct csv_wire_d_hello d;
	struct rd rd;
	int r = frame_open(frame, len, CSV_WIRE_HELLO, CSV_WIRE_F_REQUEST, &h, &rd);
	if (r < 0)
		return r;
	if (!rd_get(&rd, &d, sizeof d) || rd.left)
		return -EBADMSG;
	if (le32_to_cpu(d.version) != CSV_WIRE_VERSION)
		return -EPROTONOSUPPORT;
	if (le32_to_cpu(d.node_id) == 0)
		return -EBADMSG;
	ret->version = le32_to_cpu(d.version);
	ret->node_id = le32_to_cpu(d.node_id);
	memcpy(ret->volume_uuid, d.volume_uuid, sizeof d.volume_uuid);
	memcpy(ret->nonce, d.nonce, sizeof d.nonce);
	hdr_out(ret_hdr, &h);
	return 0;
}

int csv_wire_challenge_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			      const struct csv_wire_challenge *m)
{
	struct csv_wire_d_challenge d = {
		.server_node = cpu_to_le32(m->server_node),
		.epoch = cpu_to_le64(m->epoch),
	};
	if (m->server_node == 0 || m->epoch == 0)
		return frame_fail(f, -EINVAL);
	memcpy(d.nonce, m->nonce, sizeof d.nonce);
	memcpy(d.mac, m->mac, sizeof d.mac);
	int r = frame_begin(f, CSV_WIRE_HELLO, CSV_WIRE_F_REPLY, req_id, epoch, 0, sizeof d);
	if (r < 0)
		return frame_fail(f, r);
	frame_put_bytes(f, &d, sizeof d);
	return frame_finish(f);
}

int csv_wire_challenge_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			      struct csv_wire_challenge *ret)
{
	struct csv_wire_msghdr h;
	struct csv_wire_d_challenge d;
	struct rd rd;
	int r = frame_open(frame, len, CSV_WIRE_HELLO, CSV_WIRE_F_REPLY, &h, &rd);
	if (r < 0)
		return r;
	if (!rd_get(&rd, &d, sizeof d) || rd.left)
		return -EBADMSG;
	if (le32_to_cpu(d.server_node) == 0 || le64_to_cpu(d.epoch) == 0 ||
	    le32_to_cpu(d.reserved) != 0)
		return -EBADMSG;
	ret->server_node = le32_to_cpu(d.server_node);
	ret->epoch = le64_to_cpu(d.epoch);
	memcpy(ret->nonce, d.nonce, sizeof d.nonce);
	memcpy(ret->mac, d.mac, sizeof d.mac);
	hdr_out(ret_hdr, &h);
	return 0;
}

int csv_wire_auth_msg_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			     const struct csv_wire_auth_msg *m)
{
	struct csv_wire_d_auth d;
	memcpy(d.mac, m->mac, sizeof d.mac);
	int r = frame_begin(f, CSV_WIRE_AUTH, CSV_WIRE_F_REQUEST, req_id, epoch, 0, sizeof d);
	if (r < 0)
		return frame_fail(f, r);
	frame_put_bytes(f, &d, sizeof d);
	return frame_finish(f);
}

int csv_wire_auth_msg_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			     struct csv_wire_auth_msg *ret)
{
	struct csv_wire_msghdr h;
	struct csv_wire_d_auth d;
	struct rd rd;
	int r = frame_open(frame, len, CSV_WIRE_AUTH, CSV_WIRE_F_REQUEST, &h, &rd);
	if (r < 0)
		return r;
	if (!rd_get(&rd, &d, sizeof d) || rd.left)
		return -EBADMSG;
	memcpy(ret->mac, d.mac, sizeof d.mac);
	hdr_out(ret_hdr, &h);
	return 0;
}

static bool welcome_ok(const struct csv_wire_welcome *m)
{
	return m->epoch != 0 && m->session_id != 0 && m->server_node != 0 &&
	       !(m->flags & ~CSV_WIRE_VOL_KNOWN) &&
	       IS_POWER_OF_2(m->cluster_size) && m->cluster_size >= 4096 &&
	       m->cluster_size <= 65536 &&
	       IS_POWER_OF_2(m->block_size) && m->block_size >= 512 &&
	       m->block_size <= m->cluster_size &&
	       m->total_clusters != 0 && m->root_ino != 0 &&
	       m->max_io >= 4096 && m->max_io <= CSV_WIRE_IO_MAX &&
	       m->name_max >= 1 && m->name_max <= CSV_WIRE_NAME_MAX;
}

int csv_wire_welcome_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			    const struct csv_wire_welcome *m)
{
	if (!welcome_ok(m))
		return frame_fail(f, -EINVAL);
	struct csv_wire_d_welcome d = {
		.epoch = cpu_to_le64(m->epoch),
		.session_id = cpu_to_le64(m->session_id),
		.server_node = cpu_to_le32(m->server_node),
		.flags = cpu_to_le32(m->flags),
		.cluster_size = cpu_to_le32(m->cluster_size),
		.block_size = cpu_to_le32(m->block_size),
		.total_clusters = cpu_to_le64(m->total_clusters),
		.root_ino = cpu_to_le64(m->root_ino),
		.max_io = cpu_to_le32(m->max_io),
		.name_max = cpu_to_le32(m->name_max),
	};
	int r = frame_begin(f, CSV_WIRE_AUTH, CSV_WIRE_F_REPLY, req_id, epoch, 0, sizeof d);
	if (r < 0)
		return frame_fail(f, r);
	frame_put_bytes(f, &d, sizeof d);
	return frame_finish(f);
}

int csv_wire_welcome_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			    struct csv_wire_welcome *ret)
{
	struct csv_wire_msghdr h;
	struct csv_wire_d_welcome d;
	struct rd rd;
	int r = frame_open(frame, len, CSV_WIRE_AUTH, CSV_WIRE_F_REPLY, &h, &rd);
	if (r < 0)
		return r;
	if (!rd_get(&rd, &d, sizeof d) || rd.left || !is_zero(d.reserved, sizeof d.reserved))
		return -EBADMSG;
	struct csv_wire_welcome m = {
		.epoch = le64_to_cpu(d.epoch),
		.session_id = le64_to_cpu(d.session_id),
		.server_node = le32_to_cpu(d.server_node),
		.flags = le32_to_cpu(d.flags),
		.cluster_size = le32_to_cpu(d.cluster_size),
		.block_size = le32_to_cpu(d.block_size),
		.total_clusters = le64_to_cpu(d.total_clusters),
		.root_ino = le64_to_cpu(d.root_ino),
		.max_io = le32_to_cpu(d.max_io),
		.name_max = le32_to_cpu(d.name_max),
	};
	if (!welcome_ok(&m))
		return -EBADMSG;
	*ret = m;
	hdr_out(ret_hdr, &h);
	return 0;
}

/* ---- Attributes ------------------------------------------------------------- */

int csv_wire_attr_reply_encode(struct csv_wire_frame *f, uint16_t type, uint64_t req_id,
			       uint64_t epoch, const struct csv_wire_attr *m)
{
	if (!csv_wire_type_replies_attr(type))
		return frame_fail(f, -EINVAL);
	struct csv_wire_d_attr d = {
		.ino = cpu_to_le64(m->ino),
		.size = cpu_to_le64(m->size),
		.valid_data_length = cpu_to_le64(m->valid_data_length),
		.alloc_clusters = cpu_to_le64(m->alloc_clusters),
		.atime_ns = cpu_to_le64((uint64_t)m->atime_ns),
		.mtime_ns = cpu_to_le64((uint64_t)m->mtime_ns),
		.ctime_ns = cpu_to_le64((uint64_t)m->ctime_ns),
		.btime_ns = cpu_to_le64((uint64_t)m->btime_ns),
		.attr_version = cpu_to_le64(m->attr_version),
		.mode = cpu_to_le32(m->mode),
		.nlink = cpu_to_le32(m->nlink),
		.uid = cpu_to_le32(m->uid),
		.gid = cpu_to_le32(m->gid),
		.rdev = cpu_to_le32(m->rdev),
	};
	int r = frame_begin(f, type, CSV_WIRE_F_REPLY, req_id, epoch, 0, sizeof d);
	if (r < 0)
		return frame_fail(f, r);
	frame_put_bytes(f, &d, sizeof d);
	return frame_finish(f);
}

int csv_wire_attr_reply_decode(const void *frame, size_t len, uint16_t type,
			       struct csv_wire_msghdr *ret_hdr, struct csv_wire_attr *ret)
{
	struct csv_wire_msghdr h;
	struct csv_wire_d_attr d;
	struct rd rd;

	if (!csv_wire_type_replies_attr(type))
		return -EINVAL;
	int r = frame_open(frame, len, type, CSV_WIRE_F_REPLY, &h, &rd);
	if (r < 0)
		return r;
	if (!rd_get(&rd, &d, sizeof d) || rd.left || le32_to_cpu(d.reserved) != 0)
		return -EBADMSG;
	*ret = (struct csv_wire_attr){
		.ino = le64_to_cpu(d.ino),
		.mode = le32_to_cpu(d.mode),
		.nlink = le32_to_cpu(d.nlink),
		.uid = le32_to_cpu(d.uid),
		.gid = le32_to_cpu(d.gid),
		.rdev = le32_to_cpu(d.rdev),
		.size = le64_to_cpu(d.size),
		.valid_data_length = le64_to_cpu(d.valid_data_length),
		.alloc_clusters = le64_to_cpu(d.alloc_clusters),
		.atime_ns = (int64_t)le64_to_cpu(d.atime_ns),
		.mtime_ns = (int64_t)le64_to_cpu(d.mtime_ns),
		.ctime_ns = (int64_t)le64_to_cpu(d.ctime_ns),
		.btime_ns = (int64_t)le64_to_cpu(d.btime_ns),
		.attr_version = le64_to_cpu(d.attr_version),
	};
	hdr_out(ret_hdr, &h);
	return 0;
}

/* ---- Single-inode requests ---------------------------------------------- */

static int ino_encode(struct csv_wire_frame *f, uint16_t type, uint64_t req_id, uint64_t epoch,
		      const struct csv_wire_ino_req *m)
{
	struct csv_wire_d_ino d = { .ino = cpu_to_le64(m->ino) };
	int r = frame_begin(f, type, CSV_WIRE_F_REQUEST, req_id, epoch, 0, sizeof d);
	if (r < 0)
		return frame_fail(f, r);
	frame_put_bytes(f, &d, sizeof d);
	return frame_finish(f);
}

static int ino_decode(const void *frame, size_t len, uint16_t type,
		      struct csv_wire_msghdr *ret_hdr, struct csv_wire_ino_req *ret)
{
	struct csv_wire_msghdr h;
	struct csv_wire_d_ino d;
	struct rd rd;
	int r = frame_open(frame, len, type, CSV_WIRE_F_REQUEST, &h, &rd);
	if (r < 0)
		return r;
	if (!rd_get(&rd, &d, sizeof d) || rd.left)
		return -EBADMSG;
	ret->ino = le64_to_cpu(d.ino);
	hdr_out(ret_hdr, &h);
	return 0;
}

int csv_wire_getattr_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			    const struct csv_wire_ino_req *m)
{
	return ino_encode(f, CSV_WIRE_GETATTR, req_id, epoch, m);
}

int csv_wire_getattr_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			    struct csv_wire_ino_req *ret)
{
	return ino_decode(frame, len, CSV_WIRE_GETATTR, ret_hdr, ret);
}

int csv_wire_readlink_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			     const struct csv_wire_ino_req *m)
{
	return ino_encode(f, CSV_WIRE_READLINK, req_id, epoch, m);
}

int csv_wire_readlink_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			     struct csv_wire_ino_req *ret)
{
	return ino_decode(frame, len, CSV_WIRE_READLINK, ret_hdr, ret);
}

/* ---- Entry requests: LOOKUP, UNLINK, RMDIR, INVAL_ENTRY ---------------- */

static int entry_encode(struct csv_wire_frame *f, uint16_t type, uint16_t flags,
			uint64_t req_id, uint64_t epoch, const struct csv_wire_entry_req *m)
{
	int r = name_check(&m->name, false);
	if (r < 0)
		return frame_fail(f, r);
	struct csv_wire_d_entry d = {
		.parent = cpu_to_le64(m->parent),
		.name_len = cpu_to_le16(m->name.len),
	};
	r = frame_begin(f, type, flags, req_id, epoch, 0, sizeof d + m->name.len);
	if (r < 0)
		return frame_fail(f, r);
	frame_put_bytes(f, &d, sizeof d);
	frame_put_bytes(f, m->name.s, m->name.len);
	return frame_finish(f);
}

static int entry_decode(const void *frame, size_t len, uint16_t type, uint16_t flags,
			struct csv_wire_msghdr *ret_hdr, struct csv_wire_entry_req *ret)
{
	struct csv_wire_msghdr h;
	struct csv_wire_d_entry d;
	struct csv_wire_entry_req m;
	struct rd rd;
	int r = frame_open(frame, len, type, flags, &h, &rd);
	if (r < 0)
		return r;
	if (!rd_get(&rd, &d, sizeof d) || !is_zero(d.reserved, sizeof d.reserved))
		return -EBADMSG;
	m.parent = le64_to_cpu(d.parent);
	r = rd_name(&rd, le16_to_cpu(d.name_len), false, &m.name);
	if (r < 0 || rd.left)
		return -EBADMSG;
	*ret = m;
	hdr_out(ret_hdr, &h);
	return 0;
}

int csv_wire_lookup_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			   const struct csv_wire_entry_req *m)
{
	return entry_encode(f, CSV_WIRE_LOOKUP, CSV_WIRE_F_REQUEST, req_id, epoch, m);
}

int csv_wire_lookup_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			   struct csv_wire_entry_req *ret)
{
	return entry_decode(frame, len, CSV_WIRE_LOOKUP, CSV_WIRE_F_REQUEST, ret_hdr, ret);
}

int csv_wire_unlink_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			   const struct csv_wire_entry_req *m)
{
	return entry_encode(f, CSV_WIRE_UNLINK, CSV_WIRE_F_REQUEST, req_id, epoch, m);
}

int csv_wire_unlink_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			   struct csv_wire_entry_req *ret)
{
	return entry_decode(frame, len, CSV_WIRE_UNLINK, CSV_WIRE_F_REQUEST, ret_hdr, ret);
}

int csv_wire_rmdir_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			  const struct csv_wire_entry_req *m)
{
	return entry_encode(f, CSV_WIRE_RMDIR, CSV_WIRE_F_REQUEST, req_id, epoch, m);
}

int csv_wire_rmdir_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			  struct csv_wire_entry_req *ret)
{
	return entry_decode(frame, len, CSV_WIRE_RMDIR, CSV_WIRE_F_REQUEST, ret_hdr, ret);
}

int csv_wire_inval_entry_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
				const struct csv_wire_entry_req *m)
{
	return entry_encode(f, CSV_WIRE_INVAL_ENTRY, CSV_WIRE_F_CALLBACK, req_id, epoch, m);
}

int csv_wire_inval_entry_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
				struct csv_wire_entry_req *ret)
{
	return entry_decode(frame, len, CSV_WIRE_INVAL_ENTRY, CSV_WIRE_F_CALLBACK, ret_hdr, ret);
}

/* ---- SETATTR --------------------------------------------------------------- */

/* The canonical form: fields a valid bit does not name are zero. */
static bool setattr_ok(const struct csv_wire_setattr *m)
{
	uint32_t v = m->valid;

	if (v & ~CSV_WIRE_SET_KNOWN)
		return false;
	if ((v & CSV_WIRE_SET_ATIME) && (v & CSV_WIRE_SET_ATIME_NOW))
		return false;
	if ((v & CSV_WIRE_SET_MTIME) && (v & CSV_WIRE_SET_MTIME_NOW))
		return false;
	if (m->mode & ~07777u)
		return false;
	if ((!(v & CSV_WIRE_SET_MODE) && m->mode) ||
	    (!(v & CSV_WIRE_SET_UID) && m->uid) ||
	    (!(v & CSV_WIRE_SET_GID) && m->gid) ||
	    (!(v & CSV_WIRE_SET_SIZE) && m->size) ||
	    (!(v & CSV_WIRE_SET_ATIME) && m->atime_ns) ||
	    (!(v & CSV_WIRE_SET_MTIME) && m->mtime_ns) ||
	    (!(v & CSV_WIRE_SET_CTIME) && m->ctime_ns))
		return false;
	return true;
}

int csv_wire_setattr_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			    const struct csv_wire_setattr *m)
{
	if (!setattr_ok(m))
		return frame_fail(f, -EINVAL);
	struct csv_wire_d_setattr d = {
		.ino = cpu_to_le64(m->ino),
		.valid = cpu_to_le32(m->valid),
		.mode = cpu_to_le32(m->mode),
		.uid = cpu_to_le32(m->uid),
		.gid = cpu_to_le32(m->gid),
		.size = cpu_to_le64(m->size),
		.atime_ns = cpu_to_le64((uint64_t)m->atime_ns),
		.mtime_ns = cpu_to_le64((uint64_t)m->mtime_ns),
		.ctime_ns = cpu_to_le64((uint64_t)m->ctime_ns),
	};
	int r = frame_begin(f, CSV_WIRE_SETATTR, CSV_WIRE_F_REQUEST, req_id, epoch, 0, sizeof d);
	if (r < 0)
		return frame_fail(f, r);
	frame_put_bytes(f, &d, sizeof d);
	return frame_finish(f);
}

int csv_wire_setattr_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			    struct csv_wire_setattr *ret)
{
	struct csv_wire_msghdr h;
	struct csv_wire_d_setattr d;
	struct rd rd;
	int r = frame_open(frame, len, CSV_WIRE_SETATTR, CSV_WIRE_F_REQUEST, &h, &rd);
	if (r < 0)
		return r;
	if (!rd_get(&rd, &d, sizeof d) || rd.left)
		return -EBADMSG;
	struct csv_wire_setattr m = {
		.ino = le64_to_cpu(d.ino),
		.valid = le32_to_cpu(d.valid),
		.mode = le32_to_cpu(d.mode),
		.uid = le32_to_cpu(d.uid),
		.gid = le32_to_cpu(d.gid),
		.size = le64_to_cpu(d.size),
		.atime_ns = (int64_t)le64_to_cpu(d.atime_ns),
		.mtime_ns = (int64_t)le64_to_cpu(d.mtime_ns),
		.ctime_ns = (int64_t)le64_to_cpu(d.ctime_ns),
	};
	if (!setattr_ok(&m))
		return -EBADMSG;
	*ret = m;
	hdr_out(ret_hdr, &h);
	return 0;
}

/* ---- MKNOD, MKDIR, SYMLINK, LINK, RENAME --------------------------------- */

/* A regular file, fifo, socket or device; rdev only for devices. */
static bool mknod_mode_ok(uint32_t mode, uint32_t rdev)
{
	if (mode & ~(uint32_t)(S_IFMT | 07777))
		return false;
	switch (mode & S_IFMT) {
	case S_IFREG:
	case S_IFIFO:
	case S_IFSOCK:
		return rdev == 0;
	case S_IFCHR:
	case S_IFBLK:
		return true;
	default:
		return false;
	}
}

int csv_wire_mknod_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			  const struct csv_wire_mknod *m)
{
	int r = name_check(&m->name, false);
	if (r < 0)
		return frame_fail(f, r);
	if (!mknod_mode_ok(m->mode, m->rdev))
		return frame_fail(f, -EINVAL);
	struct csv_wire_d_mknod d = {
		.parent = cpu_to_le64(m->parent),
		.mode = cpu_to_le32(m->mode),
		.rdev = cpu_to_le32(m->rdev),
		.uid = cpu_to_le32(m->uid),
		.gid = cpu_to_le32(m->gid),
		.name_len = cpu_to_le16(m->name.len),
	};
	r = frame_begin(f, CSV_WIRE_MKNOD, CSV_WIRE_F_REQUEST, req_id, epoch, 0,
			sizeof d + m->name.len);
	if (r < 0)
		return frame_fail(f, r);
	frame_put_bytes(f, &d, sizeof d);
	frame_put_bytes(f, m->name.s, m->name.len);
	return frame_finish(f);
}

int csv_wire_mknod_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			  struct csv_wire_mknod *ret)
{
	struct csv_wire_msghdr h;
	struct csv_wire_d_mknod d;
	struct csv_wire_mknod m;
	struct rd rd;
	int r = frame_open(frame, len, CSV_WIRE_MKNOD, CSV_WIRE_F_REQUEST, &h, &rd);
	if (r < 0)
		return r;
	if (!rd_get(&rd, &d, sizeof d) || !is_zero(d.reserved, sizeof d.reserved))
		return -EBADMSG;
	m.parent = le64_to_cpu(d.parent);
	m.mode = le32_to_cpu(d.mode);
	m.rdev = le32_to_cpu(d.rdev);
	m.uid = le32_to_cpu(d.uid);
	m.gid = le32_to_cpu(d.gid);
	if (!mknod_mode_ok(m.mode, m.rdev))
		return -EBADMSG;
	r = rd_name(&rd, le16_to_cpu(d.name_len), false, &m.name);
	if (r < 0 || rd.left)
		return -EBADMSG;
	*ret = m;
	hdr_out(ret_hdr, &h);
	return 0;
}

int csv_wire_mkdir_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			  const struct csv_wire_mkdir *m)
{
	int r = name_check(&m->name, false);
	if (r < 0)
		return frame_fail(f, r);
	if (m->mode & ~07777u)
		return frame_fail(f, -EINVAL);
	struct csv_wire_d_mkdir d = {
		.parent = cpu_to_le64(m->parent),
		.mode = cpu_to_le32(m->mode),
		.uid = cpu_to_le32(m->uid),
		.gid = cpu_to_le32(m->gid),
		.name_len = cpu_to_le16(m->name.len),
	};
	r = frame_begin(f, CSV_WIRE_MKDIR, CSV_WIRE_F_REQUEST, req_id, epoch, 0,
			sizeof d + m->name.len);
	if (r < 0)
		return frame_fail(f, r);
	frame_put_bytes(f, &d, sizeof d);
	frame_put_bytes(f, m->name.s, m->name.len);
	return frame_finish(f);
}

int csv_wire_mkdir_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			  struct csv_wire_mkdir *ret)
{
	struct csv_wire_msghdr h;
	struct csv_wire_d_mkdir d;
	struct csv_wire_mkdir m;
	struct rd rd;
	int r = frame_open(frame, len, CSV_WIRE_MKDIR, CSV_WIRE_F_REQUEST, &h, &rd);
	if (r < 0)
		return r;
	if (!rd_get(&rd, &d, sizeof d) || le16_to_cpu(d.reserved) != 0)
		return -EBADMSG;
	m.parent = le64_to_cpu(d.parent);
	m.mode = le32_to_cpu(d.mode);
	m.uid = le32_to_cpu(d.uid);
	m.gid = le32_to_cpu(d.gid);
	if (m.mode & ~07777u)
		return -EBADMSG;
	r = rd_name(&rd, le16_to_cpu(d.name_len), false, &m.name);
	if (r < 0 || rd.left)
		return -EBADMSG;
	*ret = m;
	hdr_out(ret_hdr, &h);
	return 0;
}

int csv_wire_symlink_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			    const struct csv_wire_symlink *m)
{
	int r = name_check(&m->name, false);
	if (r < 0)
		return frame_fail(f, r);
	if (m->target_len > CSV_WIRE_SYMLINK_MAX)
		return frame_fail(f, -ENAMETOOLONG);
	if (!target_ok(m->target, m->target_len))
		return frame_fail(f, -EINVAL);
	struct csv_wire_d_symlink d = {
		.parent = cpu_to_le64(m->parent),
		.uid = cpu_to_le32(m->uid),
		.gid = cpu_to_le32(m->gid),
		.name_len = cpu_to_le16(m->name.len),
		.target_len = cpu_to_le32(m->target_len),
	};
	r = frame_begin(f, CSV_WIRE_SYMLINK, CSV_WIRE_F_REQUEST, req_id, epoch, 0,
			sizeof d + m->name.len + m->target_len);
	if (r < 0)
		return frame_fail(f, r);
	frame_put_bytes(f, &d, sizeof d);
	frame_put_bytes(f, m->name.s, m->name.len);
	frame_put_bytes(f, m->target, m->target_len);
	return frame_finish(f);
}

int csv_wire_symlink_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			    struct csv_wire_symlink *ret)
{
	struct csv_wire_msghdr h;
	struct csv_wire_d_symlink d;
	struct csv_wire_symlink m;
	struct rd rd;
	int r = frame_open(frame, len, CSV_WIRE_SYMLINK, CSV_WIRE_F_REQUEST, &h, &rd);
	if (r < 0)
		return r;
	if (!rd_get(&rd, &d, sizeof d) || le16_to_cpu(d.reserved) != 0)
		return -EBADMSG;
	m.parent = le64_to_cpu(d.parent);
	m.uid = le32_to_cpu(d.uid);
	m.gid = le32_to_cpu(d.gid);
	m.target_len = le32_to_cpu(d.target_len);
	r = rd_name(&rd, le16_to_cpu(d.name_len), false, &m.name);
	if (r < 0 || m.target_len > CSV_WIRE_SYMLINK_MAX)
		return -EBADMSG;
	m.target = (const char *)rd_take(&rd, m.target_len);
	if (!m.target || rd.left || !target_ok(m.target, m.target_len))
		return -EBADMSG;
	*ret = m;
	hdr_out(ret_hdr, &h);
	return 0;
}

int csv_wire_link_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			 const struct csv_wire_link *m)
{
	int r = name_check(&m->newname, false);
	if (r < 0)
		return frame_fail(f, r);
	struct csv_wire_d_link d = {
		.ino = cpu_to_le64(m->ino),
		.newparent = cpu_to_le64(m->newparent),
		.name_len = cpu_to_le16(m->newname.len),
	};
	r = frame_begin(f, CSV_WIRE_LINK, CSV_WIRE_F_REQUEST, req_id, epoch, 0,
			sizeof d + m->newname.len);
	if (r < 0)
		return frame_fail(f, r);
	frame_put_bytes(f, &d, sizeof d);
	frame_put_bytes(f, m->newname.s, m->newname.len);
	return frame_finish(f);
}

int csv_wire_link_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			 struct csv_wire_link *ret)
{
	struct csv_wire_msghdr h;
	struct csv_wire_d_link d;
	struct csv_wire_link m;
	struct rd rd;
	int r = frame_open(frame, len, CSV_WIRE_LINK, CSV_WIRE_F_REQUEST, &h, &rd);
	if (r < 0)
		return r;
	if (!rd_get(&rd, &d, sizeof d) || !is_zero(d.reserved, sizeof d.reserved))
		return -EBADMSG;
	m.ino = le64_to_cpu(d.ino);
	m.newparent = le64_to_cpu(d.newparent);
	r = rd_name(&rd, le16_to_cpu(d.name_len), false, &m.newname);
	if (r < 0 || rd.left)
		return -EBADMSG;
	*ret = m;
	hdr_out(ret_hdr, &h);
	return 0;
}

static bool rename_flags_ok(uint32_t flags)
{
	return !(flags & ~CSV_WIRE_RENAME_KNOWN) && flags != CSV_WIRE_RENAME_KNOWN;
}

int csv_wire_rename_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			   const struct csv_wire_rename *m)
{
	int r = name_check(&m->name, false);
	if (r >= 0)
		r = name_check(&m->newname, false);
	if (r < 0)
		return frame_fail(f, r);
	if (!rename_flags_ok(m->flags))
		return frame_fail(f, -EINVAL);
	struct csv_wire_d_rename d = {
		.parent = cpu_to_le64(m->parent),
		.newparent = cpu_to_le64(m->newparent),
		.flags = cpu_to_le32(m->flags),
		.name_len = cpu_to_le16(m->name.len),
		.newname_len = cpu_to_le16(m->newname.len),
	};
	r = frame_begin(f, CSV_WIRE_RENAME, CSV_WIRE_F_REQUEST, req_id, epoch, 0,
			sizeof d + m->name.len + m->newname.len);
	if (r < 0)
		return frame_fail(f, r);
	frame_put_bytes(f, &d, sizeof d);
	frame_put_bytes(f, m->name.s, m->name.len);
	frame_put_bytes(f, m->newname.s, m->newname.len);
	return frame_finish(f);
}

int csv_wire_rename_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			   struct csv_wire_rename *ret)
{
	struct csv_wire_msghdr h;
	struct csv_wire_d_rename d;
	struct csv_wire_rename m;
	struct rd rd;
	int r = frame_open(frame, len, CSV_WIRE_RENAME, CSV_WIRE_F_REQUEST, &h, &rd);
	if (r < 0)
		return r;
	if (!rd_get(&rd, &d, sizeof d))
		return -EBADMSG;
	m.parent = le64_to_cpu(d.parent);
	m.newparent = le64_to_cpu(d.newparent);
	m.flags = le32_to_cpu(d.flags);
	if (!rename_flags_ok(m.flags))
		return -EBADMSG;
	if (rd_name(&rd, le16_to_cpu(d.name_len), false, &m.name) < 0 ||
	    rd_name(&rd, le16_to_cpu(d.newname_len), false, &m.newname) < 0 || rd.left)
		return -EBADMSG;
	*ret = m;
	hdr_out(ret_hdr, &h);
	return 0;
}

int csv_wire_readlink_reply_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
				   const struct csv_wire_readlink_reply *m)
{
	if (m->target_len > CSV_WIRE_SYMLINK_MAX)
		return frame_fail(f, -ENAMETOOLONG);
	if (!target_ok(m->target, m->target_len))
		return frame_fail(f, -EINVAL);
	struct csv_wire_d_readlink_reply d = { .target_len = cpu_to_le32(m->target_len) };
	int r = frame_begin(f, CSV_WIRE_READLINK, CSV_WIRE_F_REPLY, req_id, epoch, 0,
			    sizeof d + m->target_len);
	if (r < 0)
		return frame_fail(f, r);
	frame_put_bytes(f, &d, sizeof d);
	frame_put_bytes(f, m->target, m->target_len);
	return frame_finish(f);
}

int csv_wire_readlink_reply_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
				   struct csv_wire_readlink_reply *ret)
{
	struct csv_wire_msghdr h;
	struct csv_wire_d_readlink_reply d;
	struct rd rd;
	int r = frame_open(frame, len, CSV_WIRE_READLINK, CSV_WIRE_F_REPLY, &h, &rd);
	if (r < 0)
		return r;
	if (!rd_get(&rd, &d, sizeof d) || le32_to_cpu(d.reserved) != 0)
		return -EBADMSG;
	uint32_t tlen = le32_to_cpu(d.target_len);
	if (tlen > CSV_WIRE_SYMLINK_MAX)
		return -EBADMSG;
	const char *t = (const char *)rd_take(&rd, tlen);
	if (!t || rd.left || !target_ok(t, tlen))
		return -EBADMSG;
	ret->target = t;
	ret->target_len = tlen;
	hdr_out(ret_hdr, &h);
	return 0;
}

/* ---- READDIR ------------------------------------------------------------- */

#define READDIR_MIN CSV_WIRE_DIRENT_SIZE(CSV_WIRE_NAME_MAX)

int csv_wire_readdir_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			    const struct csv_wire_readdir *m)
{
	if (m->max_bytes < READDIR_MIN || m->max_bytes > CSV_WIRE_READDIR_MAX)
		return frame_fail(f, -EINVAL);
	struct csv_wire_d_readdir d = {
		.ino = cpu_to_le64(m->ino),
		.cookie = cpu_to_le64(m->cookie),
		.max_bytes = cpu_to_le32(m->max_bytes),
	};
	int r = frame_begin(f, CSV_WIRE_READDIR, CSV_WIRE_F_REQUEST, req_id, epoch, 0, sizeof d);
	if (r < 0)
		return frame_fail(f, r);
	frame_put_bytes(f, &d, sizeof d);
	return frame_finish(f);
}

int csv_wire_readdir_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			    struct csv_wire_readdir *ret)
{
	struct csv_wire_msghdr h;
	struct csv_wire_d_readdir d;
	struct rd rd;
	int r = frame_open(frame, len, CSV_WIRE_READDIR, CSV_WIRE_F_REQUEST, &h, &rd);
	if (r < 0)
		return r;
	if (!rd_get(&rd, &d, sizeof d) || rd.left || le32_to_cpu(d.reserved) != 0)
		return -EBADMSG;
	uint32_t max = le32_to_cpu(d.max_bytes);
	if (max < READDIR_MIN || max > CSV_WIRE_READDIR_MAX)
		return -EBADMSG;
	ret->ino = le64_to_cpu(d.ino);
	ret->cookie = le64_to_cpu(d.cookie);
	ret->max_bytes = max;
	hdr_out(ret_hdr, &h);
	return 0;
}

int csv_wire_readdir_reply_begin(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
				 uint32_t max_bytes)
{
	struct csv_wire_d_readdir_reply d = { 0 };

	if (max_bytes < READDIR_MIN || max_bytes > CSV_WIRE_READDIR_MAX)
		return frame_fail(f, -EINVAL);
	int r = frame_begin(f, CSV_WIRE_READDIR, CSV_WIRE_F_REPLY, req_id, epoch, 0,
			    sizeof d + MIN(max_bytes, 16384u));
	if (r < 0)
		return frame_fail(f, r);
	frame_put_bytes(f, &d, sizeof d);
	if (f->err)
		return frame_fail(f, f->err);
	f->count = 0;
	f->limit = max_bytes;
	return 0;
}

int csv_wire_readdir_reply_add(struct csv_wire_frame *f, const struct csv_wire_dirent *e)
{
	const size_t start = CSV_WIRE_HDR_SIZE + sizeof(struct csv_wire_d_readdir_reply);
	int r;

	if (f->err)
		return f->err;
	if (!f->buf || f->len < start) {
		f->err = -EINVAL; /* not begun */
		return f->err;
	}
	r = name_check(&e->name, false);
	if (r < 0 || e->cookie == 0 || e->type > 15) {
		f->err = r < 0 ? r : -EINVAL;
		return f->err;
	}
	size_t used = f->len - start;
	if (used + CSV_WIRE_DIRENT_SIZE(e->name.len) > f->limit)
		return -ENOSPC;
	struct csv_wire_d_dirent d = {
		.ino = cpu_to_le64(e->ino),
		.cookie = cpu_to_le64(e->cookie),
		.type = e->type,
		.name_len = (uint8_t)e->name.len,
	};
	frame_put_bytes(f, &d, CSV_WIRE_DIRENT_FIXED);
	frame_put_bytes(f, e->name.s, e->name.len);
	if (f->err)
		return f->err;
	f->count++;
	return 0;
}

int csv_wire_readdir_reply_end(struct csv_wire_frame *f, bool eof)
{
	if (!f->err && (!f->buf || f->len < CSV_WIRE_HDR_SIZE + sizeof(struct csv_wire_d_readdir_reply)))
		f->err = -EINVAL;
	if (f->err)
		return frame_fail(f, f->err);
	struct csv_wire_d_readdir_reply d = {
		.count = cpu_to_le32(f->count),
		.flags = cpu_to_le32(eof ? CSV_WIRE_READDIR_EOF : 0),
	};
	memcpy(f->buf + CSV_WIRE_HDR_SIZE, &d, sizeof d);
	f->count = 0;
	f->limit = 0;
	return frame_finish(f);
}

/* Reads one entry at *rd; checks it. */
static int rd_dirent(struct rd *rd, struct csv_wire_dirent *ret)
{
	struct csv_wire_d_dirent d;

	if (!rd_get(rd, &d, CSV_WIRE_DIRENT_FIXED))
		return -EBADMSG;
	ret->ino = le64_to_cpu(d.ino);
	ret->cookie = le64_to_cpu(d.cookie);
	ret->type = d.type;
	if (ret->cookie == 0 || ret->type > 15)
		return -EBADMSG;
	return rd_name(rd, d.name_len, false, &ret->name);
}

int csv_wire_readdir_reply_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
				  struct csv_wire_readdir_reply *ret)
{
	struct csv_wire_msghdr h;
	struct csv_wire_d_readdir_reply d;
	struct csv_wire_dirent e;
	struct rd rd;
	int r = frame_open(frame, len, CSV_WIRE_READDIR, CSV_WIRE_F_REPLY, &h, &rd);
	if (r < 0)
		return r;
	if (!rd_get(&rd, &d, sizeof d))
		return -EBADMSG;
	uint32_t count = le32_to_cpu(d.count);
	uint32_t flags = le32_to_cpu(d.flags);
	if (flags & ~(uint32_t)CSV_WIRE_READDIR_EOF)
		return -EBADMSG;
	/* Each entry takes at least 19 bytes: the count must fit. */
	if (count > rd.left / CSV_WIRE_DIRENT_SIZE(1))
		return -EBADMSG;
	const uint8_t *entries = rd.p;
	size_t entries_len = rd.left;
	for (uint32_t i = 0; i < count; i++)
		if (rd_dirent(&rd, &e) < 0)
			return -EBADMSG;
	if (rd.left)
		return -EBADMSG;
	*ret = (struct csv_wire_readdir_reply){
		.count = count,
		.eof = flags & CSV_WIRE_READDIR_EOF,
		.entries = entries,
		.entries_len = entries_len,
	};
	hdr_out(ret_hdr, &h);
	return 0;
}

int csv_wire_readdir_next(struct csv_wire_readdir_reply *m, struct csv_wire_dirent *ret)
{
	if (m->index >= m->count || m->pos >= m->entries_len)
		return 0;
	struct rd rd = { .p = m->entries + m->pos, .left = m->entries_len - m->pos };
	struct csv_wire_dirent e;
	if (rd_dirent(&rd, &e) < 0)
		return 0; /* cannot happen: checked by the decoder */
	m->pos = m->entries_len - rd.left;
	m->index++;
	*ret = e;
	return 1;
}

/* ---- OPEN, RELEASE ---------------------------------------------------------- */

static bool open_flags_ok(uint32_t flags)
{
	if (flags & ~CSV_WIRE_OPEN_KNOWN)
		return false;
	if (!(flags & (CSV_WIRE_OPEN_READ | CSV_WIRE_OPEN_WRITE)))
		return false;
	if ((flags & CSV_WIRE_OPEN_TRUNC) && !(flags & CSV_WIRE_OPEN_WRITE))
		return false;
	return true;
}

static int open_encode(struct csv_wire_frame *f, uint16_t type, uint64_t req_id, uint64_t epoch,
		       const struct csv_wire_open *m)
{
	if (!open_flags_ok(m->flags))
		return frame_fail(f, -EINVAL);
	struct csv_wire_d_open d = {
		.ino = cpu_to_le64(m->ino),
		.flags = cpu_to_le32(m->flags),
	};
	int r = frame_begin(f, type, CSV_WIRE_F_REQUEST, req_id, epoch, 0, sizeof d);
	if (r < 0)
		return frame_fail(f, r);
	frame_put_bytes(f, &d, sizeof d);
	return frame_finish(f);
}

static int open_decode(const void *frame, size_t len, uint16_t type,
		       struct csv_wire_msghdr *ret_hdr, struct csv_wire_open *ret)
{
	struct csv_wire_msghdr h;
	struct csv_wire_d_open d;
	struct rd rd;
	int r = frame_open(frame, len, type, CSV_WIRE_F_REQUEST, &h, &rd);
	if (r < 0)
		return r;
	if (!rd_get(&rd, &d, sizeof d) || rd.left || le32_to_cpu(d.reserved) != 0 ||
	    !open_flags_ok(le32_to_cpu(d.flags)))
		return -EBADMSG;
	ret->ino = le64_to_cpu(d.ino);
	ret->flags = le32_to_cpu(d.flags);
	hdr_out(ret_hdr, &h);
	return 0;
}

int csv_wire_open_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			 const struct csv_wire_open *m)
{
	return open_encode(f, CSV_WIRE_OPEN, req_id, epoch, m);
}

int csv_wire_open_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			 struct csv_wire_open *ret)
{
	return open_decode(frame, len, CSV_WIRE_OPEN, ret_hdr, ret);
}

int csv_wire_release_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			    const struct csv_wire_open *m)
{
	return open_encode(f, CSV_WIRE_RELEASE, req_id, epoch, m);
}

int csv_wire_release_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			    struct csv_wire_open *ret)
{
	return open_decode(frame, len, CSV_WIRE_RELEASE, ret_hdr, ret);
}

/* ---- STATFS ------------------------------------------------------------------ */

int csv_wire_statfs_reply_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
				 const struct csv_wire_statfs *m)
{
	if (m->free_clusters > m->total_clusters || m->free_records > m->total_records)
		return frame_fail(f, -EINVAL);
	struct csv_wire_d_statfs d = {
		.cluster_size = cpu_to_le32(m->cluster_size),
		.name_max = cpu_to_le32(m->name_max),
		.total_clusters = cpu_to_le64(m->total_clusters),
		.free_clusters = cpu_to_le64(m->free_clusters),
		.total_records = cpu_to_le64(m->total_records),
		.free_records = cpu_to_le64(m->free_records),
	};
	int r = frame_begin(f, CSV_WIRE_STATFS, CSV_WIRE_F_REPLY, req_id, epoch, 0, sizeof d);
	if (r < 0)
		return frame_fail(f, r);
	frame_put_bytes(f, &d, sizeof d);
	return frame_finish(f);
}

int csv_wire_statfs_reply_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
				 struct csv_wire_statfs *ret)
{
	struct csv_wire_msghdr h;
	struct csv_wire_d_statfs d;
	struct rd rd;
	int r = frame_open(frame, len, CSV_WIRE_STATFS, CSV_WIRE_F_REPLY, &h, &rd);
	if (r < 0)
		return r;
	if (!rd_get(&rd, &d, sizeof d) || rd.left)
		return -EBADMSG;
	struct csv_wire_statfs m = {
		.cluster_size = le32_to_cpu(d.cluster_size),
		.name_max = le32_to_cpu(d.name_max),
		.total_clusters = le64_to_cpu(d.total_clusters),
		.free_clusters = le64_to_cpu(d.free_clusters),
		.total_records = le64_to_cpu(d.total_records),
		.free_records = le64_to_cpu(d.free_records),
	};
	if (m.free_clusters > m.total_clusters || m.free_records > m.total_records)
		return -EBADMSG;
	*ret = m;
	hdr_out(ret_hdr, &h);
	return 0;
}

/* ---- Extended attributes ------------------------------------------------- */

static bool xattr_flags_ok(uint32_t flags)
{
	return !(flags & ~CSV_WIRE_XATTR_KNOWN) && flags != CSV_WIRE_XATTR_KNOWN;
}

int csv_wire_setxattr_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			     const struct csv_wire_setxattr *m)
{
	int r = name_check(&m->name, true);
	if (r < 0)
		return frame_fail(f, r);
	if (m->value_len > CSV_WIRE_XATTR_VALUE_MAX)
		return frame_fail(f, -E2BIG);
	if ((m->value_len && !m->value) || !xattr_flags_ok(m->flags))
		return frame_fail(f, -EINVAL);
	struct csv_wire_d_setxattr d = {
		.ino = cpu_to_le64(m->ino),
		.flags = cpu_to_le32(m->flags),
		.name_len = cpu_to_le16(m->name.len),
		.value_len = cpu_to_le32(m->value_len),
	};
	r = frame_begin(f, CSV_WIRE_SETXATTR, CSV_WIRE_F_REQUEST, req_id, epoch, 0,
			sizeof d + m->name.len + m->value_len);
	if (r < 0)
		return frame_fail(f, r);
	frame_put_bytes(f, &d, sizeof d);
	frame_put_bytes(f, m->name.s, m->name.len);
	frame_put_bytes(f, m->value, m->value_len);
	return frame_finish(f);
}

int csv_wire_setxattr_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			     struct csv_wire_setxattr *ret)
{
	struct csv_wire_msghdr h;
	struct csv_wire_d_setxattr d;
	struct csv_wire_setxattr m;
	struct rd rd;
	int r = frame_open(frame, len, CSV_WIRE_SETXATTR, CSV_WIRE_F_REQUEST, &h, &rd);
	if (r < 0)
		return r;
	if (!rd_get(&rd, &d, sizeof d) || le16_to_cpu(d.reserved) != 0 ||
	    le32_to_cpu(d.reserved2) != 0)
		return -EBADMSG;
	m.ino = le64_to_cpu(d.ino);
	m.flags = le32_to_cpu(d.flags);
	m.value_len = le32_to_cpu(d.value_len);
	if (!xattr_flags_ok(m.flags) || m.value_len > CSV_WIRE_XATTR_VALUE_MAX)
		return -EBADMSG;
	if (rd_name(&rd, le16_to_cpu(d.name_len), true, &m.name) < 0)
		return -EBADMSG;
	m.value = rd_take(&rd, m.value_len);
	if (!m.value || rd.left)
		return -EBADMSG;
	*ret = m;
	hdr_out(ret_hdr, &h);
	return 0;
}

static int xname_encode(struct csv_wire_frame *f, uint16_t type, uint64_t req_id, uint64_t epoch,
			uint64_t ino, const struct csv_wire_name *name, uint32_t max)
{
	int r = name_check(name, true);
	if (r < 0)
		return frame_fail(f, r);
	struct csv_wire_d_getxattr d = {
		.ino = cpu_to_le64(ino),
		.max = cpu_to_le32(max),
		.name_len = cpu_to_le16(name->len),
	};
	r = frame_begin(f, type, CSV_WIRE_F_REQUEST, req_id, epoch, 0, sizeof d + name->len);
	if (r < 0)
		return frame_fail(f, r);
	frame_put_bytes(f, &d, sizeof d);
	frame_put_bytes(f, name->s, name->len);
	return frame_finish(f);
}

static int xname_decode(const void *frame, size_t len, uint16_t type,
			struct csv_wire_msghdr *ret_hdr, uint64_t *ret_ino,
			struct csv_wire_name *ret_name, uint32_t *ret_max)
{
	struct csv_wire_msghdr h;
	struct csv_wire_d_getxattr d;
	struct csv_wire_name name;
	struct rd rd;
	int r = frame_open(frame, len, type, CSV_WIRE_F_REQUEST, &h, &rd);
	if (r < 0)
		return r;
	if (!rd_get(&rd, &d, sizeof d) || le16_to_cpu(d.reserved) != 0)
		return -EBADMSG;
	if (type == CSV_WIRE_REMOVEXATTR && le32_to_cpu(d.max) != 0)
		return -EBADMSG;
	if (rd_name(&rd, le16_to_cpu(d.name_len), true, &name) < 0 || rd.left)
		return -EBADMSG;
	*ret_ino = le64_to_cpu(d.ino);
	*ret_name = name;
	*ret_max = le32_to_cpu(d.max);
	hdr_out(ret_hdr, &h);
	return 0;
}

int csv_wire_getxattr_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			     const struct csv_wire_getxattr *m)
{
	return xname_encode(f, CSV_WIRE_GETXATTR, req_id, epoch, m->ino, &m->name, m->max);
}

int csv_wire_getxattr_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			     struct csv_wire_getxattr *ret)
{
	struct csv_wire_getxattr m;
	int r = xname_decode(frame, len, CSV_WIRE_GETXATTR, ret_hdr, &m.ino, &m.name, &m.max);
	if (r < 0)
		return r;
	*ret = m;
	return 0;
}

int csv_wire_removexattr_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
				const struct csv_wire_removexattr *m)
{
	return xname_encode(f, CSV_WIRE_REMOVEXATTR, req_id, epoch, m->ino, &m->name, 0);
}

int csv_wire_removexattr_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
				struct csv_wire_removexattr *ret)
{
	struct csv_wire_removexattr m;
	uint32_t max;
	int r = xname_decode(frame, len, CSV_WIRE_REMOVEXATTR, ret_hdr, &m.ino, &m.name, &max);
	if (r < 0)
		return r;
	*ret = m;
	return 0;
}

int csv_wire_listxattr_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			      const struct csv_wire_listxattr *m)
{
	struct csv_wire_d_listxattr d = {
		.ino = cpu_to_le64(m->ino),
		.max = cpu_to_le32(m->max),
	};
	int r = frame_begin(f, CSV_WIRE_LISTXATTR, CSV_WIRE_F_REQUEST, req_id, epoch, 0, sizeof d);
	if (r < 0)
		return frame_fail(f, r);
	frame_put_bytes(f, &d, sizeof d);
	return frame_finish(f);
}

int csv_wire_listxattr_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			      struct csv_wire_listxattr *ret)
{
	struct csv_wire_msghdr h;
	struct csv_wire_d_listxattr d;
	struct rd rd;
	int r = frame_open(frame, len, CSV_WIRE_LISTXATTR, CSV_WIRE_F_REQUEST, &h, &rd);
	if (r < 0)
		return r;
	if (!rd_get(&rd, &d, sizeof d) || rd.left || le32_to_cpu(d.reserved) != 0)
		return -EBADMSG;
	ret->ino = le64_to_cpu(d.ino);
	ret->max = le32_to_cpu(d.max);
	hdr_out(ret_hdr, &h);
	return 0;
}

/* GETXATTR (list false) and LISTXATTR (list true) replies. */
static bool xattr_reply_ok(const struct csv_wire_xattr_reply *m, bool list)
{
	uint32_t max = list ? CSV_WIRE_XATTR_LIST_MAX : CSV_WIRE_XATTR_VALUE_MAX;

	if (m->size > max || (m->len != 0 && m->len != m->size))
		return false;
	if (m->len && !m->data)
		return false;
	return !list || xattr_list_ok(m->data, m->len);
}

static int xattr_reply_encode(struct csv_wire_frame *f, uint16_t type, uint64_t req_id,
			      uint64_t epoch, const struct csv_wire_xattr_reply *m)
{
	bool list = type == CSV_WIRE_LISTXATTR;
	if (m->size > (list ? CSV_WIRE_XATTR_LIST_MAX : CSV_WIRE_XATTR_VALUE_MAX))
		return frame_fail(f, -E2BIG);
	if (!xattr_reply_ok(m, list))
		return frame_fail(f, -EINVAL);
	struct csv_wire_d_xattr_reply d = {
		.size = cpu_to_le32(m->size),
		.len = cpu_to_le32(m->len),
	};
	int r = frame_begin(f, type, CSV_WIRE_F_REPLY, req_id, epoch, 0, sizeof d + m->len);
	if (r < 0)
		return frame_fail(f, r);
	frame_put_bytes(f, &d, sizeof d);
	frame_put_bytes(f, m->data, m->len);
	return frame_finish(f);
}

static int xattr_reply_decode(const void *frame, size_t len, uint16_t type,
			      struct csv_wire_msghdr *ret_hdr, struct csv_wire_xattr_reply *ret)
{
	struct csv_wire_msghdr h;
	struct csv_wire_d_xattr_reply d;
	struct csv_wire_xattr_reply m;
	struct rd rd;
	int r = frame_open(frame, len, type, CSV_WIRE_F_REPLY, &h, &rd);
	if (r < 0)
		return r;
	if (!rd_get(&rd, &d, sizeof d))
		return -EBADMSG;
	m.size = le32_to_cpu(d.size);
	m.len = le32_to_cpu(d.len);
	if (m.len != rd.left)
		return -EBADMSG;
	m.data = rd_take(&rd, m.len);
	if (!m.data || !xattr_reply_ok(&m, type == CSV_WIRE_LISTXATTR))
		return -EBADMSG;
	*ret = m;
	hdr_out(ret_hdr, &h);
	return 0;
}

int csv_wire_getxattr_reply_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
				   const struct csv_wire_xattr_reply *m)
{
	return xattr_reply_encode(f, CSV_WIRE_GETXATTR, req_id, epoch, m);
}

int csv_wire_getxattr_reply_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
				   struct csv_wire_xattr_reply *ret)
{
	return xattr_reply_decode(frame, len, CSV_WIRE_GETXATTR, ret_hdr, ret);
}

int csv_wire_listxattr_reply_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
				    const struct csv_wire_xattr_reply *m)
{
	return xattr_reply_encode(f, CSV_WIRE_LISTXATTR, req_id, epoch, m);
}

int csv_wire_listxattr_reply_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
				    struct csv_wire_xattr_reply *ret)
{
	return xattr_reply_decode(frame, len, CSV_WIRE_LISTXATTR, ret_hdr, ret);
}

/* ---- Layouts ------------------------------------------------------------------ */

int csv_wire_layout_get_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			       const struct csv_wire_layout_get *m)
{
	if (m->length == 0 || !range_ok(m->offset, m->length) ||
	    (m->flags & ~(uint32_t)CSV_WIRE_LAYOUT_WRITE))
		return frame_fail(f, -EINVAL);
	struct csv_wire_d_layout_get d = {
		.ino = cpu_to_le64(m->ino),
		.offset = cpu_to_le64(m->offset),
		.length = cpu_to_le64(m->length),
		.flags = cpu_to_le32(m->flags),
	};
	int r = frame_begin(f, CSV_WIRE_LAYOUT_GET, CSV_WIRE_F_REQUEST, req_id, epoch, 0, sizeof d);
	if (r < 0)
		return frame_fail(f, r);
	frame_put_bytes(f, &d, sizeof d);
	return frame_finish(f);
}

int csv_wire_layout_get_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			       struct csv_wire_layout_get *ret)
{
	struct csv_wire_msghdr h;
	struct csv_wire_d_layout_get d;
	struct rd rd;
	int r = frame_open(frame, len, CSV_WIRE_LAYOUT_GET, CSV_WIRE_F_REQUEST, &h, &rd);
	if (r < 0)
		return r;
	if (!rd_get(&rd, &d, sizeof d) || rd.left || le32_to_cpu(d.reserved) != 0)
		return -EBADMSG;
	struct csv_wire_layout_get m = {
		.ino = le64_to_cpu(d.ino),
		.offset = le64_to_cpu(d.offset),
		.length = le64_to_cpu(d.length),
		.flags = le32_to_cpu(d.flags),
	};
	if (m.length == 0 || !range_ok(m.offset, m.length) ||
	    (m.flags & ~(uint32_t)CSV_WIRE_LAYOUT_WRITE))
		return -EBADMSG;
	*ret = m;
	hdr_out(ret_hdr, &h);
	return 0;
}

/* Extents sorted by file offset, not overlapping, not empty. */
static bool extent_ok(const struct csv_wire_extent *e, const struct csv_wire_extent *prev)
{
	if (e->length == 0 || !range_ok(e->file_offset, e->length) ||
	    !range_ok(e->lun_offset, e->length) || (e->flags & ~CSV_WIRE_EXTENT_KNOWN))
		return false;
	return !prev || e->file_offset >= prev->file_offset + prev->length;
}

static bool ranges_ok_one(const struct csv_wire_range *g, const struct csv_wire_range *prev)
{
	if (g->length == 0 || !range_ok(g->offset, g->length))
		return false;
	return !prev || g->offset >= prev->offset + prev->length;
}

int csv_wire_layout_get_reply_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
				     const struct csv_wire_layout *m)
{
	if (m->n_extents && !m->extents)
		return frame_fail(f, -EINVAL);
	if (m->n_extents > (CSV_WIRE_PAYLOAD_MAX - sizeof(struct csv_wire_d_layout)) /
			   sizeof(struct csv_wire_d_extent))
		return frame_fail(f, -EMSGSIZE);
	for (uint32_t i = 0; i < m->n_extents; i++)
		if (!extent_ok(&m->extents[i], i ? &m->extents[i - 1] : NULL))
			return frame_fail(f, -EINVAL);
	struct csv_wire_d_layout d = {
		.generation = cpu_to_le64(m->generation),
		.size = cpu_to_le64(m->size),
		.valid_data_length = cpu_to_le64(m->valid_data_length),
		.count = cpu_to_le32(m->n_extents),
	};
	size_t bytes = (size_t)m->n_extents * sizeof(struct csv_wire_d_extent);
	int r = frame_begin(f, CSV_WIRE_LAYOUT_GET, CSV_WIRE_F_REPLY, req_id, epoch, 0,
			    sizeof d + bytes);
	if (r < 0)
		return frame_fail(f, r);
	frame_put_bytes(f, &d, sizeof d);
	uint8_t *p = frame_put(f, bytes);
	for (uint32_t i = 0; p && i < m->n_extents; i++) {
		const struct csv_wire_extent *e = &m->extents[i];
		struct csv_wire_d_extent de = {
			.file_offset = cpu_to_le64(e->file_offset),
			.lun_offset = cpu_to_le64(e->lun_offset),
			.length = cpu_to_le64(e->length),
			.flags = cpu_to_le32(e->flags),
		};
		memcpy(p + (size_t)i * sizeof de, &de, sizeof de);
	}
	return frame_finish(f);
}

int csv_wire_layout_get_reply_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
				     struct csv_wire_layout *ret)
{
	struct csv_wire_msghdr h;
	struct csv_wire_d_layout d;
	struct rd rd;
	int r = frame_open(frame, len, CSV_WIRE_LAYOUT_GET, CSV_WIRE_F_REPLY, &h, &rd);
	if (r < 0)
		return r;
	if (!rd_get(&rd, &d, sizeof d) || le32_to_cpu(d.reserved) != 0)
		return -EBADMSG;
	uint32_t count = le32_to_cpu(d.count);
	/* The count is checked against the frame before allocating. */
	if (count > rd.left / sizeof(struct csv_wire_d_extent) ||
	    (size_t)count * sizeof(struct csv_wire_d_extent) != rd.left)
		return -EBADMSG;
	struct csv_wire_extent *ext = NULL;
	if (count) {
		ext = calloc(count, sizeof(*ext));
		if (!ext)
			return -ENOMEM;
	}
	for (uint32_t i = 0; i < count; i++) {
		struct csv_wire_d_extent de;
		rd_get(&rd, &de, sizeof de);
		ext[i] = (struct csv_wire_extent){
			.file_offset = le64_to_cpu(de.file_offset),
			.lun_offset = le64_to_cpu(de.lun_offset),
			.length = le64_to_cpu(de.length),
			.flags = le32_to_cpu(de.flags),
		};
		if (le32_to_cpu(de.reserved) != 0 || !extent_ok(&ext[i], i ? &ext[i - 1] : NULL)) {
			free(ext);
			return -EBADMSG;
		}
	}
	*ret = (struct csv_wire_layout){
		.generation = le64_to_cpu(d.generation),
		.size = le64_to_cpu(d.size),
		.valid_data_length = le64_to_cpu(d.valid_data_length),
		.n_extents = count,
		.extents = ext,
	};
	hdr_out(ret_hdr, &h);
	return 0;
}

void csv_wire_layout_free(struct csv_wire_layout *m)
{
	free(m->extents);
	m->extents = NULL;
	m->n_extents = 0;
}

static bool commit_ok(const struct csv_wire_layout_commit *m)
{
	if (m->flags & ~CSV_WIRE_COMMIT_KNOWN)
		return false;
	if ((!(m->flags & CSV_WIRE_COMMIT_SIZE) && m->size) ||
	    (!(m->flags & CSV_WIRE_COMMIT_VDL) && m->valid_data_length) ||
	    (!(m->flags & CSV_WIRE_COMMIT_MTIME) && m->mtime_ns))
		return false;
	return true;
}

int csv_wire_layout_commit_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
				  const struct csv_wire_layout_commit *m)
{
	if (!commit_ok(m) || (m->n_ranges && !m->ranges))
		return frame_fail(f, -EINVAL);
	if (m->n_ranges > (CSV_WIRE_PAYLOAD_MAX - sizeof(struct csv_wire_d_layout_commit)) /
			  sizeof(struct csv_wire_d_range))
		return frame_fail(f, -EMSGSIZE);
	for (uint32_t i = 0; i < m->n_ranges; i++)
		if (!ranges_ok_one(&m->ranges[i], i ? &m->ranges[i - 1] : NULL))
			return frame_fail(f, -EINVAL);
	struct csv_wire_d_layout_commit d = {
		.ino = cpu_to_le64(m->ino),
		.generation = cpu_to_le64(m->generation),
		.size = cpu_to_le64(m->size),
		.valid_data_length = cpu_to_le64(m->valid_data_length),
		.mtime_ns = cpu_to_le64((uint64_t)m->mtime_ns),
		.flags = cpu_to_le32(m->flags),
		.count = cpu_to_le32(m->n_ranges),
	};
	size_t bytes = (size_t)m->n_ranges * sizeof(struct csv_wire_d_range);
	int r = frame_begin(f, CSV_WIRE_LAYOUT_COMMIT, CSV_WIRE_F_REQUEST, req_id, epoch, 0,
			    sizeof d + bytes);
	if (r < 0)
		return frame_fail(f, r);
	frame_put_bytes(f, &d, sizeof d);
	uint8_t *p = frame_put(f, bytes);
	for (uint32_t i = 0; p && i < m->n_ranges; i++) {
		struct csv_wire_d_range dr = {
			.offset = cpu_to_le64(m->ranges[i].offset),
			.length = cpu_to_le64(m->ranges[i].length),
		};
		memcpy(p + (size_t)i * sizeof dr, &dr, sizeof dr);
	}
	return frame_finish(f);
}

int csv_wire_layout_commit_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
				  struct csv_wire_layout_commit *ret)
{
	struct csv_wire_msghdr h;
	struct csv_wire_d_layout_commit d;
	struct rd rd;
	int r = frame_open(frame, len, CSV_WIRE_LAYOUT_COMMIT, CSV_WIRE_F_REQUEST, &h, &rd);
	if (r < 0)
		return r;
	if (!rd_get(&rd, &d, sizeof d))
		return -EBADMSG;
	struct csv_wire_layout_commit m = {
		.ino = le64_to_cpu(d.ino),
		.generation = le64_to_cpu(d.generation),
		.size = le64_to_cpu(d.size),
		.valid_data_length = le64_to_cpu(d.valid_data_length),
		.mtime_ns = (int64_t)le64_to_cpu(d.mtime_ns),
		.flags = le32_to_cpu(d.flags),
		.n_ranges = le32_to_cpu(d.count),
	};
	if (!commit_ok(&m))
		return -EBADMSG;
	if (m.n_ranges > rd.left / sizeof(struct csv_wire_d_range) ||
	    (size_t)m.n_ranges * sizeof(struct csv_wire_d_range) != rd.left)
		return -EBADMSG;
	if (m.n_ranges) {
		m.ranges = calloc(m.n_ranges, sizeof(*m.ranges));
		if (!m.ranges)
			return -ENOMEM;
	}
	for (uint32_t i = 0; i < m.n_ranges; i++) {
		struct csv_wire_d_range dr;
		rd_get(&rd, &dr, sizeof dr);
		m.ranges[i].offset = le64_to_cpu(dr.offset);
		m.ranges[i].length = le64_to_cpu(dr.length);
		if (!ranges_ok_one(&m.ranges[i], i ? &m.ranges[i - 1] : NULL)) {
			free(m.ranges);
			return -EBADMSG;
		}
	}
	*ret = m;
	hdr_out(ret_hdr, &h);
	return 0;
}

void csv_wire_layout_commit_free(struct csv_wire_layout_commit *m)
{
	free(m->ranges);
	m->ranges = NULL;
	m->n_ranges = 0;
}

static int layout_return_encode(struct csv_wire_frame *f, uint16_t type, uint16_t flags,
				uint64_t req_id, uint64_t epoch,
				const struct csv_wire_layout_return *m)
{
	struct csv_wire_d_layout_return d = {
		.ino = cpu_to_le64(m->ino),
		.generation = cpu_to_le64(m->generation),
	};
	int r = frame_begin(f, type, flags, req_id, epoch, 0, sizeof d);
	if (r < 0)
		return frame_fail(f, r);
	frame_put_bytes(f, &d, sizeof d);
	return frame_finish(f);
}

static int layout_return_decode(const void *frame, size_t len, uint16_t type, uint16_t flags,
				struct csv_wire_msghdr *ret_hdr,
				struct csv_wire_layout_return *ret)
{
	struct csv_wire_msghdr h;
	struct csv_wire_d_layout_return d;
	struct rd rd;
	int r = frame_open(frame, len, type, flags, &h, &rd);
	if (r < 0)
		return r;
	if (!rd_get(&rd, &d, sizeof d) || rd.left)
		return -EBADMSG;
	ret->ino = le64_to_cpu(d.ino);
	ret->generation = le64_to_cpu(d.generation);
	hdr_out(ret_hdr, &h);
	return 0;
}

int csv_wire_layout_return_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
				  const struct csv_wire_layout_return *m)
{
	return layout_return_encode(f, CSV_WIRE_LAYOUT_RETURN, CSV_WIRE_F_REQUEST, req_id, epoch, m);
}

int csv_wire_layout_return_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
				  struct csv_wire_layout_return *ret)
{
	return layout_return_decode(frame, len, CSV_WIRE_LAYOUT_RETURN, CSV_WIRE_F_REQUEST,
				    ret_hdr, ret);
}

int csv_wire_layout_recall_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
				  const struct csv_wire_layout_return *m)
{
	return layout_return_encode(f, CSV_WIRE_LAYOUT_RECALL, CSV_WIRE_F_CALLBACK, req_id, epoch, m);
}

int csv_wire_layout_recall_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
				  struct csv_wire_layout_return *ret)
{
	return layout_return_decode(frame, len, CSV_WIRE_LAYOUT_RECALL, CSV_WIRE_F_CALLBACK,
				    ret_hdr, ret);
}

/* ---- FALLOCATE, FSYNC ----------------------------------------------------- */

static bool fallocate_ok(const struct csv_wire_fallocate *m)
{
	return !(m->mode & ~CSV_WIRE_FALLOC_KNOWN) && m->length != 0 &&
	       range_ok(m->offset, m->length);
}

int csv_wire_fallocate_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			      const struct csv_wire_fallocate *m)
{
	if (!fallocate_ok(m))
		return frame_fail(f, -EINVAL);
	struct csv_wire_d_fallocate d = {
		.ino = cpu_to_le64(m->ino),
		.offset = cpu_to_le64(m->offset),
		.length = cpu_to_le64(m->length),
		.mode = cpu_to_le32(m->mode),
	};
	int r = frame_begin(f, CSV_WIRE_FALLOCATE, CSV_WIRE_F_REQUEST, req_id, epoch, 0, sizeof d);
	if (r < 0)
		return frame_fail(f, r);
	frame_put_bytes(f, &d, sizeof d);
	return frame_finish(f);
}

int csv_wire_fallocate_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			      struct csv_wire_fallocate *ret)
{
	struct csv_wire_msghdr h;
	struct csv_wire_d_fallocate d;
	struct rd rd;
	int r = frame_open(frame, len, CSV_WIRE_FALLOCATE, CSV_WIRE_F_REQUEST, &h, &rd);
	if (r < 0)
		return r;
	if (!rd_get(&rd, &d, sizeof d) || rd.left || le32_to_cpu(d.reserved) != 0)
		return -EBADMSG;
	struct csv_wire_fallocate m = {
		.ino = le64_to_cpu(d.ino),
		.mode = le32_to_cpu(d.mode),
		.offset = le64_to_cpu(d.offset),
		.length = le64_to_cpu(d.length),
	};
	if (!fallocate_ok(&m))
		return -EBADMSG;
	*ret = m;
	hdr_out(ret_hdr, &h);
	return 0;
}

int csv_wire_fsync_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			  const struct csv_wire_fsync *m)
{
	if (m->flags & ~(uint32_t)CSV_WIRE_FSYNC_DATASYNC)
		return frame_fail(f, -EINVAL);
	struct csv_wire_d_fsync d = {
		.ino = cpu_to_le64(m->ino),
		.flags = cpu_to_le32(m->flags),
	};
	int r = frame_begin(f, CSV_WIRE_FSYNC, CSV_WIRE_F_REQUEST, req_id, epoch, 0, sizeof d);
	if (r < 0)
		return frame_fail(f, r);
	frame_put_bytes(f, &d, sizeof d);
	return frame_finish(f);
}

int csv_wire_fsync_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			  struct csv_wire_fsync *ret)
{
	struct csv_wire_msghdr h;
	struct csv_wire_d_fsync d;
	struct rd rd;
	int r = frame_open(frame, len, CSV_WIRE_FSYNC, CSV_WIRE_F_REQUEST, &h, &rd);
	if (r < 0)
		return r;
	if (!rd_get(&rd, &d, sizeof d) || rd.left || le32_to_cpu(d.reserved) != 0 ||
	    (le32_to_cpu(d.flags) & ~(uint32_t)CSV_WIRE_FSYNC_DATASYNC))
		return -EBADMSG;
	ret->ino = le64_to_cpu(d.ino);
	ret->flags = le32_to_cpu(d.flags);
	hdr_out(ret_hdr, &h);
	return 0;
}

/* ---- Redirected I/O --------------------------------------------------------- */

int csv_wire_data_read_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			      const struct csv_wire_data_read *m)
{
	if (m->length == 0 || m->length > CSV_WIRE_IO_MAX || !range_ok(m->lun_offset, m->length))
		return frame_fail(f, -EINVAL);
	struct csv_wire_d_data_read d = {
		.lun_offset = cpu_to_le64(m->lun_offset),
		.length = cpu_to_le32(m->length),
	};
	int r = frame_begin(f, CSV_WIRE_DATA_READ, CSV_WIRE_F_REQUEST, req_id, epoch, 0, sizeof d);
	if (r < 0)
		return frame_fail(f, r);
	frame_put_bytes(f, &d, sizeof d);
	return frame_finish(f);
}

int csv_wire_data_read_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			      struct csv_wire_data_read *ret)
{
	struct csv_wire_msghdr h;
	struct csv_wire_d_data_read d;
	struct rd rd;
	int r = frame_open(frame, len, CSV_WIRE_DATA_READ, CSV_WIRE_F_REQUEST, &h, &rd);
	if (r < 0)
		return r;
	if (!rd_get(&rd, &d, sizeof d) || rd.left || le32_to_cpu(d.reserved) != 0)
		return -EBADMSG;
	uint64_t off = le64_to_cpu(d.lun_offset);
	uint32_t length = le32_to_cpu(d.length);
	if (length == 0 || length > CSV_WIRE_IO_MAX || !range_ok(off, length))
		return -EBADMSG;
	ret->lun_offset = off;
	ret->length = length;
	hdr_out(ret_hdr, &h);
	return 0;
}

int csv_wire_data_read_reply_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
				    const struct iovec *iov, int iovcnt)
{
	int r = frame_begin(f, CSV_WIRE_DATA_READ, CSV_WIRE_F_REPLY, req_id, epoch, 0, 0);
	if (r < 0)
		return frame_fail(f, r);
	r = frame_set_iov(f, iov, iovcnt, CSV_WIRE_IO_MAX);
	if (r < 0)
		return frame_fail(f, r);
	return frame_finish(f);
}

int csv_wire_data_read_reply_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
				    struct csv_wire_data *ret)
{
	struct csv_wire_msghdr h;
	struct rd rd;
	int r = frame_open(frame, len, CSV_WIRE_DATA_READ, CSV_WIRE_F_REPLY, &h, &rd);
	if (r < 0)
		return r;
	if (rd.left > CSV_WIRE_IO_MAX)
		return -EBADMSG;
	*ret = (struct csv_wire_data){ .data = rd.p, .length = (uint32_t)rd.left };
	hdr_out(ret_hdr, &h);
	return 0;
}

int csv_wire_data_write_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
			       uint64_t lun_offset, uint32_t flags,
			       const struct iovec *iov, int iovcnt)
{
	if (flags & ~(uint32_t)CSV_WIRE_DATA_FUA)
		return frame_fail(f, -EINVAL);
	int r = frame_begin(f, CSV_WIRE_DATA_WRITE, CSV_WIRE_F_REQUEST, req_id, epoch, 0,
			    sizeof(struct csv_wire_d_data_write));
	if (r < 0)
		return frame_fail(f, r);
	r = frame_set_iov(f, iov, iovcnt, CSV_WIRE_IO_MAX);
	if (r < 0)
		return frame_fail(f, r);
	if (f->iov_len == 0 || !range_ok(lun_offset, f->iov_len))
		return frame_fail(f, -EINVAL);
	struct csv_wire_d_data_write d = {
		.lun_offset = cpu_to_le64(lun_offset),
		.length = cpu_to_le32((uint32_t)f->iov_len),
		.flags = cpu_to_le32(flags),
	};
	frame_put_bytes(f, &d, sizeof d);
	return frame_finish(f);
}

int csv_wire_data_write_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
			       struct csv_wire_data *ret)
{
	struct csv_wire_msghdr h;
	struct csv_wire_d_data_write d;
	struct rd rd;
	int r = frame_open(frame, len, CSV_WIRE_DATA_WRITE, CSV_WIRE_F_REQUEST, &h, &rd);
	if (r < 0)
		return r;
	if (!rd_get(&rd, &d, sizeof d))
		return -EBADMSG;
	uint64_t off = le64_to_cpu(d.lun_offset);
	uint32_t length = le32_to_cpu(d.length);
	uint32_t flags = le32_to_cpu(d.flags);
	if (length == 0 || length > CSV_WIRE_IO_MAX || length != rd.left ||
	    !range_ok(off, length) || (flags & ~(uint32_t)CSV_WIRE_DATA_FUA))
		return -EBADMSG;
	*ret = (struct csv_wire_data){
		.lun_offset = off,
		.flags = flags,
		.data = rd.p,
		.length = length,
	};
	hdr_out(ret_hdr, &h);
	return 0;
}

/* ---- Callbacks ------------------------------------------------------------- */

static bool inval_inode_ok(const struct csv_wire_inval_inode *m)
{
	if (m->offset < -1)
		return false;
	if (m->offset == -1)
		return m->length == 0;
	return range_ok((uint64_t)m->offset, m->length);
}

int csv_wire_inval_inode_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
				const struct csv_wire_inval_inode *m)
{
	if (!inval_inode_ok(m))
		return frame_fail(f, -EINVAL);
	struct csv_wire_d_inval_inode d = {
		.ino = cpu_to_le64(m->ino),
		.offset = cpu_to_le64((uint64_t)m->offset),
		.length = cpu_to_le64(m->length),
	};
	int r = frame_begin(f, CSV_WIRE_INVAL_INODE, CSV_WIRE_F_CALLBACK, req_id, epoch, 0, sizeof d);
	if (r < 0)
		return frame_fail(f, r);
	frame_put_bytes(f, &d, sizeof d);
	return frame_finish(f);
}

int csv_wire_inval_inode_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
				struct csv_wire_inval_inode *ret)
{
	struct csv_wire_msghdr h;
	struct csv_wire_d_inval_inode d;
	struct rd rd;
	int r = frame_open(frame, len, CSV_WIRE_INVAL_INODE, CSV_WIRE_F_CALLBACK, &h, &rd);
	if (r < 0)
		return r;
	if (!rd_get(&rd, &d, sizeof d) || rd.left)
		return -EBADMSG;
	struct csv_wire_inval_inode m = {
		.ino = le64_to_cpu(d.ino),
		.offset = (int64_t)le64_to_cpu(d.offset),
		.length = le64_to_cpu(d.length),
	};
	if (!inval_inode_ok(&m))
		return -EBADMSG;
	*ret = m;
	hdr_out(ret_hdr, &h);
	return 0;
}

int csv_wire_epoch_change_encode(struct csv_wire_frame *f, uint64_t req_id, uint64_t epoch,
				 const struct csv_wire_epoch_change *m)
{
	if (m->new_epoch <= epoch)
		return frame_fail(f, -EINVAL);
	struct csv_wire_d_epoch_change d = { .new_epoch = cpu_to_le64(m->new_epoch) };
	int r = frame_begin(f, CSV_WIRE_EPOCH_CHANGE, CSV_WIRE_F_CALLBACK, req_id, epoch, 0, sizeof d);
	if (r < 0)
		return frame_fail(f, r);
	frame_put_bytes(f, &d, sizeof d);
	return frame_finish(f);
}

int csv_wire_epoch_change_decode(const void *frame, size_t len, struct csv_wire_msghdr *ret_hdr,
				 struct csv_wire_epoch_change *ret)
{
	struct csv_wire_msghdr h;
	struct csv_wire_d_epoch_change d;
	struct rd rd;
	int r = frame_open(frame, len, CSV_WIRE_EPOCH_CHANGE, CSV_WIRE_F_CALLBACK, &h, &rd);
	if (r < 0)
		return r;
	if (!rd_get(&rd, &d, sizeof d) || rd.left || le64_to_cpu(d.new_epoch) <= h.epoch)
		return -EBADMSG;
	ret->new_epoch = le64_to_cpu(d.new_epoch);
	hdr_out(ret_hdr, &h);
	return 0;
}
