/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The wire protocol's messages and framed connections: every message
 * round-trips; every decoder refuses truncated, flipped, extended and
 * random frames with -EBADMSG or -EPROTONOSUPPORT and accepts nothing but
 * the canonical encoding; connections reassemble frames written one byte
 * at a time or thousands at once, and refuse oversized frames before
 * buffering them. Ends with a benchmark (printed, not asserted). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "util.h"
#include "wire-conn.h"
#include "wire.h"
#include "test-util.h"

#define ID 0x1122334455667788ull
#define EPOCH 42ull
#define INO(rec, seq) ((uint64_t)(seq) << 48 | (uint64_t)(rec))

static struct csv_wire_name name_of(const char *s)
{
	struct csv_wire_name n;
	ck_assert_int_eq(csv_wire_name_set(&n, s), 0);
	return n;
}

static struct csv_wire_name xname_of(const char *s)
{
	struct csv_wire_name n;
	ck_assert_int_eq(csv_wire_xattr_name_set(&n, s), 0);
	return n;
}

static void assert_name_eq(const struct csv_wire_name *a, const struct csv_wire_name *b)
{
	ck_assert_uint_eq(a->len, b->len);
	ck_assert_str_eq(a->s, b->s);
}

/* Copies a frame into a buffer of exactly its size, so that ASan sees
 * any read past the end. */
static uint8_t *exact_copy(const void *p, size_t len)
{
	uint8_t *b = malloc(len ? len : 1);
	ck_assert_ptr_nonnull(b);
	if (len)
		memcpy(b, p, len);
	return b;
}

/* Rewrites the length fields of a frame of len bytes to len. */
static void patch_lengths(uint8_t *frame, size_t len)
{
	le32 l = cpu_to_le32((uint32_t)len);
	le32 p = cpu_to_le32((uint32_t)(len - CSV_WIRE_HDR_SIZE));
	memcpy(frame + 0x08, &l, 4);
	memcpy(frame + 0x24, &p, 4);
}

/* ---- Samples: one valid message of every kind ------------------------------ */

static const struct csv_wire_attr sample_attr = {
	.ino = INO(1234, 7), .mode = 0100644, .nlink = 2, .uid = 1000, .gid = 100,
	.rdev = 0x0801, .size = 123456789, .valid_data_length = 100000000,
	.alloc_clusters = 30142, .atime_ns = -5, .mtime_ns = 1700000000123456789ll,
	.ctime_ns = 1700000000987654321ll, .btime_ns = 1600000000000000001ll,
	.attr_version = 99,
};

static const char sample_target[] = "../some/where/else";
static const char sample_value[] = "a value\0with a NUL";
static const char sample_list[] = "user.a\0security.selinux\0trusted.x/y\0";
static const struct csv_wire_extent sample_extents[] = {
	{ 0, 1u << 20, 65536, 0 },
	{ 65536, 3u << 20, 8192, CSV_WIRE_EXTENT_UNWRITTEN },
	{ 1u << 30, 0, 4096, 0 },
};
static const struct csv_wire_range sample_ranges[] = {
	{ 0, 4096 }, { 8192, 1 << 20 }, { 5ull << 30, 12288 },
};
static uint8_t data1[1000], data2[5000], data3[3];

struct sample {
	const char *name;
	uint16_t type;
	uint16_t flags;
	int status;     /* error replies */
	int (*enc)(const struct sample *s, struct csv_wire_frame *f);
	/* Decodes; on success encodes the result again into out. */
	int (*rec)(const struct sample *s, const void *frame, size_t len, struct csv_wire_frame *out);
	/* Decodes and compares with the sample's message. */
	void (*check)(const struct sample *s, const void *frame, size_t len);
};

/* Empty frames. */
static int enc_empty(const struct sample *s, struct csv_wire_frame *f)
{
	return csv_wire_empty_encode(f, s->type, s->flags, ID, EPOCH, s->status);
}

static int rec_empty(const struct sample *s, const void *frame, size_t len, struct csv_wire_frame *out)
{
	struct csv_wire_msghdr h;
	int r = csv_wire_empty_decode(frame, len, s->type, s->flags, &h);
	if (r < 0)
		return r;
	return csv_wire_empty_encode(out, h.type, h.flags, h.req_id, h.epoch, h.status);
}

static void check_empty(const struct sample *s, const void *frame, size_t len)
{
	struct csv_wire_msghdr h;
	ck_assert_int_eq(csv_wire_empty_decode(frame, len, s->type, s->flags, &h), 0);
	ck_assert_int_eq(h.status, s->status);
	ck_assert_uint_eq(h.payload_len, 0);
}

/* Attribute replies. */
static int enc_attr(const struct sample *s, struct csv_wire_frame *f)
{
	return csv_wire_attr_reply_encode(f, s->type, ID, EPOCH, &sample_attr);
}

static int rec_attr(const struct sample *s, const void *frame, size_t len, struct csv_wire_frame *out)
{
	struct csv_wire_msghdr h;
	struct csv_wire_attr a;
	int r = csv_wire_attr_reply_decode(frame, len, s->type, &h, &a);
	if (r < 0)
		return r;
	return csv_wire_attr_reply_encode(out, h.type, h.req_id, h.epoch, &a);
}

static void assert_attr_eq(const struct csv_wire_attr *a, const struct csv_wire_attr *b)
{
	ck_assert_uint_eq(a->ino, b->ino);
	ck_assert_uint_eq(a->mode, b->mode);
	ck_assert_uint_eq(a->nlink, b->nlink);
	ck_assert_uint_eq(a->uid, b->uid);
	ck_assert_uint_eq(a->gid, b->gid);
	ck_assert_uint_eq(a->rdev, b->rdev);
	ck_assert_uint_eq(a->size, b->size);
	ck_assert_uint_eq(a->valid_data_length, b->valid_data_length);
	ck_assert_uint_eq(a->alloc_clusters, b->alloc_clusters);
	ck_assert_int_eq(a->atime_ns, b->atime_ns);
	ck_assert_int_eq(a->mtime_ns, b->mtime_ns);
	ck_assert_int_eq(a->ctime_ns, b->ctime_ns);
	ck_assert_int_eq(a->btime_ns, b->btime_ns);
	ck_assert_uint_eq(a->attr_version, b->attr_version);
}

static void check_attr(const struct sample *s, const void *frame, size_t len)
{
	struct csv_wire_msghdr h;
	struct csv_wire_attr a;
	ck_assert_int_eq(csv_wire_attr_reply_decode(frame, len, s->type, &h, &a), 0);
	assert_attr_eq(&a, &sample_attr);
}

/* The rest, one triple per message through this macro: SAMPLE_MSG(name,
 * struct type, value initialiser, comparison of d against v). */
#define SAMPLE_MSG(nm, T, INIT, CMP)                                                   \
	static const T nm##_value = INIT;                                               \
	static int enc_##nm(const struct sample *s, struct csv_wire_frame *f)           \
	{                                                                                \
		return csv_wire_##nm##_encode(f, ID, EPOCH, &nm##_value);               \
	}                                                                                \
	static int rec_##nm(const struct sample *s, const void *frame, size_t len,      \
			    struct csv_wire_frame *out)                                  \
	{                                                                                \
		struct csv_wire_msghdr h;                                                \
		T d;                                                                     \
		int r = csv_wire_##nm##_decode(frame, len, &h, &d);                      \
		if (r < 0)                                                               \
			return r;                                                        \
		r = csv_wire_##nm##_encode(out, h.req_id, h.epoch, &d);                  \
		free_##nm(&d);                                                           \
		return r;                                                                \
	}                                                                                \
	static void check_##nm(const struct sample *s, const void *frame, size_t len)   \
	{                                                                                \
		struct csv_wire_msghdr h;                                                \
		T d;                                                                     \
		const T *v = &nm##_value;                                                \
		ck_assert_int_eq(csv_wire_##nm##_decode(frame, len, &h, &d), 0);         \
		ck_assert_uint_eq(h.req_id, ID);                                         \
		ck_assert_uint_eq(h.epoch, EPOCH);                                       \
		CMP;                                                                     \
		free_##nm(&d);                                                           \
	}

#define NOFREE(nm, T) static void free_##nm(T *d) { (void)d; }
#define EQ(f) ck_assert_uint_eq(d.f, v->f)
#define EQI(f) ck_assert_int_eq(d.f, v->f)
#define EQMEM(f, n) ck_assert_mem_eq(d.f, v->f, n)
#define EQNAME(f) assert_name_eq(&d.f, &v->f)

NOFREE(hello, struct csv_wire_hello)
SAMPLE_MSG(hello, struct csv_wire_hello,
	   ((struct csv_wire_hello){ .version = CSV_WIRE_VERSION, .node_id = 7,
		.volume_uuid = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 },
		.nonce = { 0xaa, 0xbb, [31] = 0xcc } }),
	   EQ(version); EQ(node_id); EQMEM(volume_uuid, 16); EQMEM(nonce, 32))

NOFREE(challenge, struct csv_wire_challenge)
SAMPLE_MSG(challenge, struct csv_wire_challenge,
	   ((struct csv_wire_challenge){ .server_node = 3, .epoch = 9,
		.nonce = { 1, [31] = 2 }, .mac = { 3, [31] = 4 } }),
	   EQ(server_node); EQ(epoch); EQMEM(nonce, 32); EQMEM(mac, 32))

NOFREE(auth_msg, struct csv_wire_auth_msg)
SAMPLE_MSG(auth_msg, struct csv_wire_auth_msg,
	   ((struct csv_wire_auth_msg){ .mac = { 9, 8, 7, [31] = 6 } }),
	   EQMEM(mac, 32))

NOFREE(welcome, struct csv_wire_welcome)
SAMPLE_MSG(welcome, struct csv_wire_welcome,
	   ((struct csv_wire_welcome){ .epoch = 9, .session_id = 0xfeedfacecafebeefull,
		.server_node = 3, .flags = CSV_WIRE_VOL_REDIRECTED, .cluster_size = 65536,
		.block_size = 4096, .total_clusters = 1ull << 30, .root_ino = INO(1, 1),
		.max_io = 1u << 20, .name_max = 255 }),
	   EQ(epoch); EQ(session_id); EQ(server_node); EQ(flags); EQ(cluster_size);
	   EQ(block_size); EQ(total_clusters); EQ(root_ino); EQ(max_io); EQ(name_max))

#define ENTRY_SAMPLE(nm, nstr)                                                      \
	NOFREE(nm, struct csv_wire_entry_req)                                        \
	SAMPLE_MSG(nm, struct csv_wire_entry_req,                                    \
		   ((struct csv_wire_entry_req){ .parent = INO(16, 3),               \
			.name = { .len = sizeof(nstr) - 1, .s = nstr } }),          \
		   EQ(parent); EQNAME(name))
ENTRY_SAMPLE(lookup, "hello.txt")
ENTRY_SAMPLE(unlink, "x")
ENTRY_SAMPLE(rmdir, "a directory with spaces and \xc3\xa9")
ENTRY_SAMPLE(inval_entry, "some-entry")

NOFREE(getattr, struct csv_wire_ino_req)
SAMPLE_MSG(getattr, struct csv_wire_ino_req, ((struct csv_wire_ino_req){ .ino = INO(77, 2) }),
	   EQ(ino))
NOFREE(readlink, struct csv_wire_ino_req)
SAMPLE_MSG(readlink, struct csv_wire_ino_req, ((struct csv_wire_ino_req){ .ino = INO(78, 1) }),
	   EQ(ino))

NOFREE(setattr, struct csv_wire_setattr)
SAMPLE_MSG(setattr, struct csv_wire_setattr,
	   ((struct csv_wire_setattr){ .ino = INO(5, 5), .valid = CSV_WIRE_SET_MODE |
		CSV_WIRE_SET_UID | CSV_WIRE_SET_GID | CSV_WIRE_SET_SIZE | CSV_WIRE_SET_ATIME |
		CSV_WIRE_SET_MTIME | CSV_WIRE_SET_CTIME, .mode = 04755, .uid = 1, .gid = 2,
		.size = 1ull << 40, .atime_ns = -1000, .mtime_ns = 123, .ctime_ns = 456 }),
	   EQ(ino); EQ(valid); EQ(mode); EQ(uid); EQ(gid); EQ(size); EQI(atime_ns);
	   EQI(mtime_ns); EQI(ctime_ns))

NOFREE(mknod, struct csv_wire_mknod)
SAMPLE_MSG(mknod, struct csv_wire_mknod,
	   ((struct csv_wire_mknod){ .parent = INO(16, 1), .name = { 4, "sda1" },
		.mode = 060660, .rdev = 0x0801, .uid = 0, .gid = 6 }),
	   EQ(parent); EQNAME(name); EQ(mode); EQ(rdev); EQ(uid); EQ(gid))

NOFREE(mkdir, struct csv_wire_mkdir)
SAMPLE_MSG(mkdir, struct csv_wire_mkdir,
	   ((struct csv_wire_mkdir){ .parent = INO(16, 1), .name = { 3, "dir" },
		.mode = 0755, .uid = 1000, .gid = 1000 }),
	   EQ(parent); EQNAME(name); EQ(mode); EQ(uid); EQ(gid))

NOFREE(symlink, struct csv_wire_symlink)
SAMPLE_MSG(symlink, struct csv_wire_symlink,
	   ((struct csv_wire_symlink){ .parent = INO(16, 1), .name = { 4, "link" },
		.target = sample_target, .target_len = sizeof(sample_target) - 1,
		.uid = 5, .gid = 6 }),
	   EQ(parent); EQNAME(name); EQ(target_len); ck_assert_mem_eq(d.target, v->target,
	   v->target_len); EQ(uid); EQ(gid))

NOFREE(link, struct csv_wire_link)
SAMPLE_MSG(link, struct csv_wire_link,
	   ((struct csv_wire_link){ .ino = INO(99, 4), .newparent = INO(17, 1),
		.newname = { 8, "hardlink" } }),
	   EQ(ino); EQ(newparent); EQNAME(newname))

NOFREE(rename, struct csv_wire_rename)
SAMPLE_MSG(rename, struct csv_wire_rename,
	   ((struct csv_wire_rename){ .parent = INO(16, 1), .name = { 3, "old" },
		.newparent = INO(18, 2), .newname = { 3, "new" },
		.flags = CSV_WIRE_RENAME_NOREPLACE }),
	   EQ(parent); EQNAME(name); EQ(newparent); EQNAME(newname); EQ(flags))

NOFREE(readlink_reply, struct csv_wire_readlink_reply)
SAMPLE_MSG(readlink_reply, struct csv_wire_readlink_reply,
	   ((struct csv_wire_readlink_reply){ .target = sample_target,
		.target_len = sizeof(sample_target) - 1 }),
	   EQ(target_len); ck_assert_mem_eq(d.target, v->target, v->target_len))

NOFREE(readdir, struct csv_wire_readdir)
SAMPLE_MSG(readdir, struct csv_wire_readdir,
	   ((struct csv_wire_readdir){ .ino = INO(16, 1), .cookie = 0x123456789ull,
		.max_bytes = 65536 }),
	   EQ(ino); EQ(cookie); EQ(max_bytes))

NOFREE(open, struct csv_wire_open)
SAMPLE_MSG(open, struct csv_wire_open,
	   ((struct csv_wire_open){ .ino = INO(40, 1),
		.flags = CSV_WIRE_OPEN_READ | CSV_WIRE_OPEN_WRITE | CSV_WIRE_OPEN_TRUNC }),
	   EQ(ino); EQ(flags))
NOFREE(release, struct csv_wire_open)
SAMPLE_MSG(release, struct csv_wire_open,
	   ((struct csv_wire_open){ .ino = INO(40, 1), .flags = CSV_WIRE_OPEN_READ }),
	   EQ(ino); EQ(flags))

NOFREE(statfs_reply, struct csv_wire_statfs)
SAMPLE_MSG(statfs_reply, struct csv_wire_statfs,
	   ((struct csv_wire_statfs){ .cluster_size = 4096, .name_max = 255,
		.total_clusters = 1u << 28, .free_clusters = 12345, .total_records = 1u << 20,
		.free_records = 1000 }),
	   EQ(cluster_size); EQ(name_max); EQ(total_clusters); EQ(free_clusters);
	   EQ(total_records); EQ(free_records))

NOFREE(setxattr, struct csv_wire_setxattr)
SAMPLE_MSG(setxattr, struct csv_wire_setxattr,
	   ((struct csv_wire_setxattr){ .ino = INO(41, 1), .name = { 13, "user.with/sla" },
		.value = sample_value, .value_len = sizeof(sample_value) - 1,
		.flags = CSV_WIRE_XATTR_CREATE }),
	   EQ(ino); EQNAME(name); EQ(value_len); ck_assert_mem_eq(d.value, v->value,
	   v->value_len); EQ(flags))

NOFREE(getxattr, struct csv_wire_getxattr)
SAMPLE_MSG(getxattr, struct csv_wire_getxattr,
	   ((struct csv_wire_getxattr){ .ino = INO(41, 1), .name = { 6, "user.a" },
		.max = 4096 }),
	   EQ(ino); EQNAME(name); EQ(max))

NOFREE(removexattr, struct csv_wire_removexattr)
SAMPLE_MSG(removexattr, struct csv_wire_removexattr,
	   ((struct csv_wire_removexattr){ .ino = INO(41, 1), .name = { 6, "user.b" } }),
	   EQ(ino); EQNAME(name))

NOFREE(listxattr, struct csv_wire_listxattr)
SAMPLE_MSG(listxattr, struct csv_wire_listxattr,
	   ((struct csv_wire_listxattr){ .ino = INO(41, 1), .max = 0 }),
	   EQ(ino); EQ(max))

NOFREE(getxattr_reply, struct csv_wire_xattr_reply)
SAMPLE_MSG(getxattr_reply, struct csv_wire_xattr_reply,
	   ((struct csv_wire_xattr_reply){ .size = sizeof(sample_value) - 1,
		.data = sample_value, .len = sizeof(sample_value) - 1 }),
	   EQ(size); EQ(len); ck_assert_mem_eq(d.data, v->data, v->len))

NOFREE(listxattr_reply, struct csv_wire_xattr_reply)
SAMPLE_MSG(listxattr_reply, struct csv_wire_xattr_reply,
	   ((struct csv_wire_xattr_reply){ .size = sizeof(sample_list) - 1,
		.data = sample_list, .len = sizeof(sample_list) - 1 }),
	   EQ(size); EQ(len); ck_assert_mem_eq(d.data, v->data, v->len))

NOFREE(layout_get, struct csv_wire_layout_get)
SAMPLE_MSG(layout_get, struct csv_wire_layout_get,
	   ((struct csv_wire_layout_get){ .ino = INO(42, 1), .offset = 1ull << 33,
		.length = 1u << 20, .flags = CSV_WIRE_LAYOUT_WRITE }),
	   EQ(ino); EQ(offset); EQ(length); EQ(flags))

static void free_layout_get_reply(struct csv_wire_layout *d) { csv_wire_layout_free(d); }
SAMPLE_MSG(layout_get_reply, struct csv_wire_layout,
	   ((struct csv_wire_layout){ .generation = 17, .size = 1ull << 31,
		.valid_data_length = 70000, .n_extents = 3,
		.extents = (struct csv_wire_extent *)sample_extents }),
	   EQ(generation); EQ(size); EQ(valid_data_length); EQ(n_extents);
	   for (uint32_t i = 0; i < v->n_extents; i++) {
		   EQ(extents[i].file_offset); EQ(extents[i].lun_offset);
		   EQ(extents[i].length); EQ(extents[i].flags);
	   })

static void free_layout_commit(struct csv_wire_layout_commit *d) { csv_wire_layout_commit_free(d); }
SAMPLE_MSG(layout_commit, struct csv_wire_layout_commit,
	   ((struct csv_wire_layout_commit){ .ino = INO(42, 1), .generation = 17,
		.size = 1ull << 31, .valid_data_length = 5ull << 30, .mtime_ns = 1234567,
		.flags = CSV_WIRE_COMMIT_SIZE | CSV_WIRE_COMMIT_VDL | CSV_WIRE_COMMIT_MTIME,
		.n_ranges = 3, .ranges = (struct csv_wire_range *)sample_ranges }),
	   EQ(ino); EQ(generation); EQ(size); EQ(valid_data_length); EQI(mtime_ns);
	   EQ(flags); EQ(n_ranges);
	   for (uint32_t i = 0; i < v->n_ranges; i++) {
		   EQ(ranges[i].offset); EQ(ranges[i].length);
	   })

NOFREE(layout_return, struct csv_wire_layout_return)
SAMPLE_MSG(layout_return, struct csv_wire_layout_return,
	   ((struct csv_wire_layout_return){ .ino = INO(42, 1), .generation = 17 }),
	   EQ(ino); EQ(generation))
NOFREE(layout_recall, struct csv_wire_layout_return)
SAMPLE_MSG(layout_recall, struct csv_wire_layout_return,
	   ((struct csv_wire_layout_return){ .ino = INO(43, 2), .generation = 18 }),
	   EQ(ino); EQ(generation))

NOFREE(fallocate, struct csv_wire_fallocate)
SAMPLE_MSG(fallocate, struct csv_wire_fallocate,
	   ((struct csv_wire_fallocate){ .ino = INO(44, 1),
		.mode = CSV_WIRE_FALLOC_KEEP_SIZE | CSV_WIRE_FALLOC_PUNCH_HOLE,
		.offset = 4096, .length = 1u << 20 }),
	   EQ(ino); EQ(mode); EQ(offset); EQ(length))

NOFREE(fsync, struct csv_wire_fsync)
SAMPLE_MSG(fsync, struct csv_wire_fsync,
	   ((struct csv_wire_fsync){ .ino = INO(45, 1), .flags = CSV_WIRE_FSYNC_DATASYNC }),
	   EQ(ino); EQ(flags))

NOFREE(data_read, struct csv_wire_data_read)
SAMPLE_MSG(data_read, struct csv_wire_data_read,
	   ((struct csv_wire_data_read){ .lun_offset = 1ull << 36, .length = 1u << 20 }),
	   EQ(lun_offset); EQ(length))

NOFREE(inval_inode, struct csv_wire_inval_inode)
SAMPLE_MSG(inval_inode, struct csv_wire_inval_inode,
	   ((struct csv_wire_inval_inode){ .ino = INO(46, 1), .offset = 8192, .length = 4096 }),
	   EQ(ino); EQI(offset); EQ(length))

NOFREE(epoch_change, struct csv_wire_epoch_change)
SAMPLE_MSG(epoch_change, struct csv_wire_epoch_change,
	   ((struct csv_wire_epoch_change){ .new_epoch = EPOCH + 1 }),
	   EQ(new_epoch))

/* READDIR reply: built entry by entry. */
static const struct csv_wire_dirent sample_dirents[] = {
	{ INO(100, 1), 1, 8, { 5, "file1" } },
	{ INO(101, 2), 2, 4, { 6, "subdir" } },
	{ INO(102, 3), 0xffffffffffffffffull, 10, { 1, "l" } },
};

static int enc_readdir_reply(const struct sample *s, struct csv_wire_frame *f)
{
	int r = csv_wire_readdir_reply_begin(f, ID, EPOCH, 4096);
	for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(sample_dirents); i++)
		r = csv_wire_readdir_reply_add(f, &sample_dirents[i]);
	if (r < 0)
		return r;
	return csv_wire_readdir_reply_end(f, true);
}

static int rec_readdir_reply(const struct sample *s, const void *frame, size_t len,
			     struct csv_wire_frame *out)
{
	struct csv_wire_msghdr h;
	struct csv_wire_readdir_reply m;
	struct csv_wire_dirent e;
	int r = csv_wire_readdir_reply_decode(frame, len, &h, &m);
	if (r < 0)
		return r;
	r = csv_wire_readdir_reply_begin(out, h.req_id, h.epoch, CSV_WIRE_READDIR_MAX);
	while (r >= 0 && csv_wire_readdir_next(&m, &e) == 1)
		r = csv_wire_readdir_reply_add(out, &e);
	if (r < 0)
		return r;
	return csv_wire_readdir_reply_end(out, m.eof);
}

static void check_readdir_reply(const struct sample *s, const void *frame, size_t len)
{
	struct csv_wire_readdir_reply m;
	struct csv_wire_dirent e;
	size_t i = 0;

	ck_assert_int_eq(csv_wire_readdir_reply_decode(frame, len, NULL, &m), 0);
	ck_assert_uint_eq(m.count, ARRAY_SIZE(sample_dirents));
	ck_assert(m.eof);
	while (csv_wire_readdir_next(&m, &e) == 1) {
		ck_assert_uint_lt(i, ARRAY_SIZE(sample_dirents));
		ck_assert_uint_eq(e.ino, sample_dirents[i].ino);
		ck_assert_uint_eq(e.cookie, sample_dirents[i].cookie);
		ck_assert_uint_eq(e.type, sample_dirents[i].type);
		assert_name_eq(&e.name, &sample_dirents[i].name);
		i++;
	}
	ck_assert_uint_eq(i, ARRAY_SIZE(sample_dirents));
}

/* DATA_WRITE request and DATA_READ reply: data by iovec. */
static const struct iovec sample_iov[] = {
	{ data1, sizeof data1 }, { data2, sizeof data2 }, { data3, sizeof data3 },
};
#define SAMPLE_DATA_LEN (sizeof data1 + sizeof data2 + sizeof data3)

static void assert_sample_data(const void *p, size_t len)
{
	const uint8_t *b = p;
	ck_assert_uint_eq(len, SAMPLE_DATA_LEN);
	ck_assert_mem_eq(b, data1, sizeof data1);
	ck_assert_mem_eq(b + sizeof data1, data2, sizeof data2);
	ck_assert_mem_eq(b + sizeof data1 + sizeof data2, data3, sizeof data3);
}

static int enc_data_write(const struct sample *s, struct csv_wire_frame *f)
{
	return csv_wire_data_write_encode(f, ID, EPOCH, 1ull << 40, CSV_WIRE_DATA_FUA,
					  sample_iov, ARRAY_SIZE(sample_iov));
}

static int rec_data_write(const struct sample *s, const void *frame, size_t len,
			  struct csv_wire_frame *out)
{
	struct csv_wire_msghdr h;
	struct csv_wire_data d;
	int r = csv_wire_data_write_decode(frame, len, &h, &d);
	if (r < 0)
		return r;
	struct iovec iov = { (void *)d.data, d.length };
	return csv_wire_data_write_encode(out, h.req_id, h.epoch, d.lun_offset, d.flags, &iov, 1);
}

static void check_data_write(const struct sample *s, const void *frame, size_t len)
{
	struct csv_wire_data d;
	ck_assert_int_eq(csv_wire_data_write_decode(frame, len, NULL, &d), 0);
	ck_assert_uint_eq(d.lun_offset, 1ull << 40);
	ck_assert_uint_eq(d.flags, CSV_WIRE_DATA_FUA);
	assert_sample_data(d.data, d.length);
}

static int enc_data_read_reply(const struct sample *s, struct csv_wire_frame *f)
{
	return csv_wire_data_read_reply_encode(f, ID, EPOCH, sample_iov, ARRAY_SIZE(sample_iov));
}

static int rec_data_read_reply(const struct sample *s, const void *frame, size_t len,
			       struct csv_wire_frame *out)
{
	struct csv_wire_msghdr h;
	struct csv_wire_data d;
	int r = csv_wire_data_read_reply_decode(frame, len, &h, &d);
	if (r < 0)
		return r;
	struct iovec iov = { (void *)d.data, d.length };
	return csv_wire_data_read_reply_encode(out, h.req_id, h.epoch, &iov, 1);
}

static void check_data_read_reply(const struct sample *s, const void *frame, size_t len)
{
	struct csv_wire_data d;
	ck_assert_int_eq(csv_wire_data_read_reply_decode(frame, len, NULL, &d), 0);
	assert_sample_data(d.data, d.length);
}

#define REQ CSV_WIRE_F_REQUEST
#define REP CSV_WIRE_F_REPLY
#define CB CSV_WIRE_F_CALLBACK
#define S(nm, t, fl) { #nm, t, fl, 0, enc_##nm, rec_##nm, check_##nm }
#define EMPTY(t, fl, st) { "empty " #t, t, fl, st, enc_empty, rec_empty, check_empty }
#define ATTR(t) { "attr reply " #t, t, REP, 0, enc_attr, rec_attr, check_attr }

static const struct sample samples[] = {
	S(hello, CSV_WIRE_HELLO, REQ),
	S(challenge, CSV_WIRE_HELLO, REP),
	S(auth_msg, CSV_WIRE_AUTH, REQ),
	S(welcome, CSV_WIRE_AUTH, REP),
	EMPTY(CSV_WIRE_PING, REQ, 0),
	EMPTY(CSV_WIRE_PING, REP, 0),
	EMPTY(CSV_WIRE_STATFS, REQ, 0),
	EMPTY(CSV_WIRE_UNLINK, REP, 0),
	EMPTY(CSV_WIRE_RMDIR, REP, 0),
	EMPTY(CSV_WIRE_RENAME, REP, 0),
	EMPTY(CSV_WIRE_RELEASE, REP, 0),
	EMPTY(CSV_WIRE_SETXATTR, REP, 0),
	EMPTY(CSV_WIRE_REMOVEXATTR, REP, 0),
	EMPTY(CSV_WIRE_FSYNC, REP, 0),
	EMPTY(CSV_WIRE_LAYOUT_RETURN, REP, 0),
	EMPTY(CSV_WIRE_DATA_WRITE, REP, 0),
	EMPTY(CSV_WIRE_INVAL_INODE, CB | REP, 0),
	EMPTY(CSV_WIRE_INVAL_ENTRY, CB | REP, 0),
	EMPTY(CSV_WIRE_LAYOUT_RECALL, CB | REP, 0),
	EMPTY(CSV_WIRE_EPOCH_CHANGE, CB | REP, 0),
	EMPTY(CSV_WIRE_LOOKUP, REP, -ENOENT),
	EMPTY(CSV_WIRE_LAYOUT_GET, REP, -ENOSPC),
	EMPTY(CSV_WIRE_LOOKUP, REP, -ESTALE),
	EMPTY(CSV_WIRE_LAYOUT_RECALL, CB | REP, -EBUSY),
	ATTR(CSV_WIRE_LOOKUP),
	ATTR(CSV_WIRE_GETATTR),
	ATTR(CSV_WIRE_SETATTR),
	ATTR(CSV_WIRE_MKNOD),
	ATTR(CSV_WIRE_MKDIR),
	ATTR(CSV_WIRE_SYMLINK),
	ATTR(CSV_WIRE_LINK),
	ATTR(CSV_WIRE_OPEN),
	ATTR(CSV_WIRE_LAYOUT_COMMIT),
	ATTR(CSV_WIRE_FALLOCATE),
	S(lookup, CSV_WIRE_LOOKUP, REQ),
	S(getattr, CSV_WIRE_GETATTR, REQ),
	S(setattr, CSV_WIRE_SETATTR, REQ),
	S(mknod, CSV_WIRE_MKNOD, REQ),
	S(mkdir, CSV_WIRE_MKDIR, REQ),
	S(symlink, CSV_WIRE_SYMLINK, REQ),
	S(link, CSV_WIRE_LINK, REQ),
	S(unlink, CSV_WIRE_UNLINK, REQ),
	S(rmdir, CSV_WIRE_RMDIR, REQ),
	S(rename, CSV_WIRE_RENAME, REQ),
	S(readlink, CSV_WIRE_READLINK, REQ),
	S(readlink_reply, CSV_WIRE_READLINK, REP),
	S(readdir, CSV_WIRE_READDIR, REQ),
	S(readdir_reply, CSV_WIRE_READDIR, REP),
	S(open, CSV_WIRE_OPEN, REQ),
	S(release, CSV_WIRE_RELEASE, REQ),
	S(statfs_reply, CSV_WIRE_STATFS, REP),
	S(setxattr, CSV_WIRE_SETXATTR, REQ),
	S(getxattr, CSV_WIRE_GETXATTR, REQ),
	S(getxattr_reply, CSV_WIRE_GETXATTR, REP),
	S(listxattr, CSV_WIRE_LISTXATTR, REQ),
	S(listxattr_reply, CSV_WIRE_LISTXATTR, REP),
	S(removexattr, CSV_WIRE_REMOVEXATTR, REQ),
	S(layout_get, CSV_WIRE_LAYOUT_GET, REQ),
	S(layout_get_reply, CSV_WIRE_LAYOUT_GET, REP),
	S(layout_commit, CSV_WIRE_LAYOUT_COMMIT, REQ),
	S(layout_return, CSV_WIRE_LAYOUT_RETURN, REQ),
	S(fallocate, CSV_WIRE_FALLOCATE, REQ),
	S(fsync, CSV_WIRE_FSYNC, REQ),
	S(data_read, CSV_WIRE_DATA_READ, REQ),
	S(data_read_reply, CSV_WIRE_DATA_READ, REP),
	S(data_write, CSV_WIRE_DATA_WRITE, REQ),
	S(inval_inode, CSV_WIRE_INVAL_INODE, CB),
	S(inval_entry, CSV_WIRE_INVAL_ENTRY, CB),
	S(layout_recall, CSV_WIRE_LAYOUT_RECALL, CB),
	S(epoch_change, CSV_WIRE_EPOCH_CHANGE, CB),
};
#define N_SAMPLES ARRAY_SIZE(samples)

static void fill_data(void)
{
	rng_seed(7);
	for (size_t i = 0; i < sizeof data1; i++)
		data1[i] = (uint8_t)rng();
	for (size_t i = 0; i < sizeof data2; i++)
		data2[i] = (uint8_t)rng();
	for (size_t i = 0; i < sizeof data3; i++)
		data3[i] = (uint8_t)rng();
}

/* The sample's frame, flattened into one malloc'd buffer. */
static uint8_t *sample_frame(const struct sample *s, size_t *ret_len)
{
	struct csv_wire_frame f = { 0 };
	uint8_t *p;
	int r = s->enc(s, &f);
	ck_assert_msg(r == 0, "%s: encode failed: %s", s->name, strerror(-r));
	ck_assert_int_eq(csv_wire_frame_flatten(&f, &p, ret_len), 0);
	csv_wire_frame_done(&f);
	return p;
}

/* Decodes frame with the sample's decoder. On success the re-encoding
 * must give exactly the same bytes (decoders accept only the canonical
 * form). Returns the decoder's result. */
static int recode_canonical(const struct sample *s, const uint8_t *frame, size_t len)
{
	struct csv_wire_frame out = { 0 };
	uint8_t *copy = exact_copy(frame, len);
	int r = s->rec(s, copy, len, &out);
	if (r == 0) {
		uint8_t *p;
		size_t plen;
		REQUIRE(csv_wire_frame_flatten(&out, &p, &plen) == 0, "flatten");
		REQUIRE(plen == len && memcmp(p, frame, len) == 0,
			"%s: accepted a frame that does not re-encode identically", s->name);
		free(p);
	}
	csv_wire_frame_done(&out);
	free(copy);
	return r;
}

/* ---- Round trips ------------------------------------------------------------- */

START_TEST(test_roundtrip_every_message)
{
	fill_data();
	for (size_t i = 0; i < N_SAMPLES; i++) {
		const struct sample *s = &samples[i];
		size_t len;
		uint8_t *frame = sample_frame(s, &len);
		struct csv_wire_msghdr h;

		ck_assert_int_eq(csv_wire_hdr_decode(frame, len, &h), 0);
		ck_assert_uint_eq(h.type, s->type);
		ck_assert_uint_eq(h.flags, s->flags);
		ck_assert_uint_eq(h.req_id, ID);
		ck_assert_uint_eq(h.epoch, EPOCH);
		ck_assert_int_eq(h.status, s->status);
		ck_assert_uint_eq(h.payload_len, len - CSV_WIRE_HDR_SIZE);
		uint8_t *copy = exact_copy(frame, len);
		s->check(s, copy, len);
		free(copy);
		ck_assert_int_eq(recode_canonical(s, frame, len), 0);
		free(frame);
	}
}
END_TEST

/* Every type has at least one sample in each direction it can take. */
START_TEST(test_every_type_sampled)
{
	for (unsigned t = 0; t < 65536; t++) {
		if (!csv_wire_type_known((uint16_t)t)) {
			ck_assert_str_eq(csv_wire_type_name((uint16_t)t), "unknown");
			continue;
		}
		bool cb = csv_wire_type_is_callback((uint16_t)t);
		bool req = false, rep = false;
		for (size_t i = 0; i < N_SAMPLES; i++) {
			if (samples[i].type != t || samples[i].status)
				continue;
			if (samples[i].flags == (cb ? CB : REQ))
				req = true;
			if (samples[i].flags == (cb ? (CB | REP) : REP))
				rep = true;
		}
		ck_assert_msg(req && rep, "type %s lacks a sample", csv_wire_type_name((uint16_t)t));
	}
	ck_assert_str_eq(csv_wire_type_name(CSV_WIRE_LAYOUT_RECALL), "LAYOUT_RECALL");
}
END_TEST

START_TEST(test_error_reply)
{
	struct csv_wire_frame f = { 0 };
	struct csv_wire_msghdr req = { .type = CSV_WIRE_LOOKUP, .flags = REQ, .req_id = 5 };
	struct csv_wire_msghdr h;
	struct csv_wire_attr a;
	uint8_t *p;
	size_t len;

	ck_assert_int_eq(csv_wire_reply_status_encode(&f, &req, 9, -ENOENT), 0);
	ck_assert_int_eq(csv_wire_frame_flatten(&f, &p, &len), 0);
	ck_assert_uint_eq(len, CSV_WIRE_HDR_SIZE);
	ck_assert_int_eq(csv_wire_hdr_decode(p, len, &h), 0);
	ck_assert_int_eq(h.status, -ENOENT);
	ck_assert_uint_eq(h.req_id, 5);
	ck_assert_uint_eq(h.flags, REP);
	/* The status on the wire is le32 two's complement. */
	ck_assert_uint_eq(p[0x20], 0xfe);
	ck_assert_uint_eq(p[0x23], 0xff);
	/* A payload decoder given an error reply: a caller error. */
	ck_assert_int_eq(csv_wire_attr_reply_decode(p, len, CSV_WIRE_LOOKUP, NULL, &a), -EINVAL);
	free(p);

	/* Callback replies keep the callback bit. */
	req = (struct csv_wire_msghdr){ .type = CSV_WIRE_LAYOUT_RECALL, .flags = CB, .req_id = 6 };
	ck_assert_int_eq(csv_wire_reply_status_encode(&f, &req, 9, 0), 0);
	ck_assert_int_eq(csv_wire_empty_decode(f.buf, f.len, CSV_WIRE_LAYOUT_RECALL, CB | REP, &h), 0);
	ck_assert_uint_eq(h.req_id, 6);

	/* Statuses outside -4095..0, or on a request, are refused. */
	ck_assert_int_eq(csv_wire_empty_encode(&f, CSV_WIRE_LOOKUP, REP, 1, 1, 1), -EINVAL);
	ck_assert_int_eq(csv_wire_empty_encode(&f, CSV_WIRE_LOOKUP, REP, 1, 1, -4096), -EINVAL);
	ck_assert_int_eq(csv_wire_empty_encode(&f, CSV_WIRE_LOOKUP, REQ, 1, 1, -EIO), -EINVAL);
	ck_assert_ptr_null(f.buf);
	ck_assert_int_eq(csv_wire_empty_encode(&f, CSV_WIRE_LOOKUP, REP, 1, 1, -4095), 0);
	/* A reply cannot be answered. */
	ck_assert_int_eq(csv_wire_hdr_decode(f.buf, f.len, &h), 0);
	ck_assert_int_eq(csv_wire_reply_status_encode(&f, &h, 1, 0), -EINVAL);
	/* Direction and type must agree. */
	ck_assert_int_eq(csv_wire_empty_encode(&f, CSV_WIRE_LOOKUP, CB, 1, 1, 0), -EINVAL);
	ck_assert_int_eq(csv_wire_empty_encode(&f, CSV_WIRE_INVAL_INODE, REQ, 1, 1, 0), -EINVAL);
	ck_assert_int_eq(csv_wire_empty_encode(&f, 99, REQ, 1, 1, 0), -EINVAL);
	csv_wire_frame_done(&f);
}
END_TEST

START_TEST(test_names)
{
	struct csv_wire_name n;
	char big[300];

	ck_assert_int_eq(csv_wire_name_set(&n, ""), -EINVAL);
	ck_assert_int_eq(csv_wire_name_set(&n, "a/b"), -EINVAL);
	ck_assert_int_eq(csv_wire_name_setn(&n, "a\0b", 3), -EINVAL);
	memset(big, 'x', sizeof big);
	big[256] = '\0';
	ck_assert_int_eq(csv_wire_name_set(&n, big), -ENAMETOOLONG);
	big[255] = '\0';
	ck_assert_int_eq(csv_wire_name_set(&n, big), 0);
	ck_assert_uint_eq(n.len, 255);
	ck_assert_int_eq(csv_wire_xattr_name_set(&n, "user.a/b"), 0);
	ck_assert_int_eq(csv_wire_xattr_name_set(&n, ""), -EINVAL);

	/* Encoders check names a caller filled in by hand. */
	struct csv_wire_frame f = { 0 };
	struct csv_wire_entry_req e = { .parent = 1, .name = { 3, "a/b" } };
	ck_assert_int_eq(csv_wire_lookup_encode(&f, 1, 1, &e), -EINVAL);
	e.name = (struct csv_wire_name){ 0, "" };
	ck_assert_int_eq(csv_wire_lookup_encode(&f, 1, 1, &e), -EINVAL);
	e.name.len = 300;
	ck_assert_int_eq(csv_wire_lookup_encode(&f, 1, 1, &e), -ENAMETOOLONG);
	ck_assert_ptr_null(f.buf);
}
END_TEST

/* A LOOKUP whose name is patched on the wire: '/', NUL, a length of 0,
 * 256, or past the end of the frame. */
START_TEST(test_bad_names_refused)
{
	struct csv_wire_frame f = { 0 };
	struct csv_wire_entry_req e = { .parent = 1, .name = name_of("abcdef") };
	struct csv_wire_entry_req d;
	const size_t name_off = CSV_WIRE_HDR_SIZE + sizeof(struct csv_wire_d_entry);
	const size_t len_off = CSV_WIRE_HDR_SIZE + offsetof(struct csv_wire_d_entry, name_len);

	ck_assert_int_eq(csv_wire_lookup_encode(&f, 1, 1, &e), 0);
	ck_assert_int_eq(csv_wire_lookup_decode(f.buf, f.len, NULL, &d), 0);
	ck_assert_str_eq(d.name.s, "abcdef");

	const uint8_t bad[] = { '/', '\0' };
	for (size_t i = 0; i < sizeof bad; i++)
		for (size_t pos = 0; pos < 6; pos++) {
			uint8_t *p = exact_copy(f.buf, f.len);
			p[name_off + pos] = bad[i];
			ck_assert_int_eq(csv_wire_lookup_decode(p, f.len, NULL, &d), -EBADMSG);
			free(p);
		}
	const uint16_t lens[] = { 0, 5, 7, 256, 0xffff };
	for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
		uint8_t *p = exact_copy(f.buf, f.len);
		le16 l = cpu_to_le16(lens[i]);
		memcpy(p + len_off, &l, 2);
		ck_assert_int_eq(csv_wire_lookup_decode(p, f.len, NULL, &d), -EBADMSG);
		free(p);
	}
	/* xattr names may hold '/', but not NUL. */
	struct csv_wire_getxattr g = { .ino = 1, .name = xname_of("user.abc"), .max = 1 };
	struct csv_wire_getxattr gd;
	ck_assert_int_eq(csv_wire_getxattr_encode(&f, 1, 1, &g), 0);
	f.buf[CSV_WIRE_HDR_SIZE + sizeof(struct csv_wire_d_getxattr) + 5] = '/';
	ck_assert_int_eq(csv_wire_getxattr_decode(f.buf, f.len, NULL, &gd), 0);
	ck_assert_str_eq(gd.name.s, "user./bc");
	f.buf[CSV_WIRE_HDR_SIZE + sizeof(struct csv_wire_d_getxattr) + 5] = '\0';
	ck_assert_int_eq(csv_wire_getxattr_decode(f.buf, f.len, NULL, &gd), -EBADMSG);
	csv_wire_frame_done(&f);
}
END_TEST

START_TEST(test_encoder_limits)
{
	struct csv_wire_frame f = { 0 };
	char *big = malloc(CSV_WIRE_XATTR_VALUE_MAX + 1);
	ck_assert_ptr_nonnull(big);
	memset(big, 'v', CSV_WIRE_XATTR_VALUE_MAX + 1);

	struct csv_wire_setxattr sx = { .ino = 1, .name = xname_of("user.big"), .value = big,
					.value_len = CSV_WIRE_XATTR_VALUE_MAX };
	ck_assert_int_eq(csv_wire_setxattr_encode(&f, 1, 1, &sx), 0);
	sx.value_len++;
	ck_assert_int_eq(csv_wire_setxattr_encode(&f, 1, 1, &sx), -E2BIG);
	sx.value_len = 0;
	sx.flags = CSV_WIRE_XATTR_CREATE | CSV_WIRE_XATTR_REPLACE;
	ck_assert_int_eq(csv_wire_setxattr_encode(&f, 1, 1, &sx), -EINVAL);

	struct csv_wire_symlink sl = { .parent = 1, .name = name_of("l"), .target = big,
				       .target_len = CSV_WIRE_SYMLINK_MAX };
	ck_assert_int_eq(csv_wire_symlink_encode(&f, 1, 1, &sl), 0);
	sl.target_len++;
	ck_assert_int_eq(csv_wire_symlink_encode(&f, 1, 1, &sl), -ENAMETOOLONG);
	sl.target_len = 0;
	ck_assert_int_eq(csv_wire_symlink_encode(&f, 1, 1, &sl), -EINVAL);

	/* SETATTR: fields the mask does not name must be zero. */
	struct csv_wire_setattr sa = { .ino = 1, .valid = CSV_WIRE_SET_MODE, .mode = 0644, .uid = 5 };
	ck_assert_int_eq(csv_wire_setattr_encode(&f, 1, 1, &sa), -EINVAL);
	sa.uid = 0;
	ck_assert_int_eq(csv_wire_setattr_encode(&f, 1, 1, &sa), 0);
	sa.mode = 0100644;
	ck_assert_int_eq(csv_wire_setattr_encode(&f, 1, 1, &sa), -EINVAL);
	sa = (struct csv_wire_setattr){ .ino = 1,
		.valid = CSV_WIRE_SET_ATIME | CSV_WIRE_SET_ATIME_NOW, .atime_ns = 1 };
	ck_assert_int_eq(csv_wire_setattr_encode(&f, 1, 1, &sa), -EINVAL);

	/* MKNOD: files, fifos, sockets and devices only. */
	struct csv_wire_mknod mk = { .parent = 1, .name = name_of("d"), .mode = 040755 };
	ck_assert_int_eq(csv_wire_mknod_encode(&f, 1, 1, &mk), -EINVAL);
	mk.mode = 0100644;
	mk.rdev = 5;
	ck_assert_int_eq(csv_wire_mknod_encode(&f, 1, 1, &mk), -EINVAL);
	mk.rdev = 0;
	ck_assert_int_eq(csv_wire_mknod_encode(&f, 1, 1, &mk), 0);

	/* Ranges must not wrap, extents must be sorted. */
	struct csv_wire_layout_get lg = { .ino = 1, .offset = UINT64_MAX - 10, .length = 10 };
	ck_assert_int_eq(csv_wire_layout_get_encode(&f, 1, 1, &lg), 0);
	lg.length = 11;
	ck_assert_int_eq(csv_wire_layout_get_encode(&f, 1, 1, &lg), -EINVAL);
	lg.length = 0;
	ck_assert_int_eq(csv_wire_layout_get_encode(&f, 1, 1, &lg), -EINVAL);
	struct csv_wire_extent ex[2] = { { 4096, 0, 4096, 0 }, { 0, 0, 4096, 0 } };
	struct csv_wire_layout lr = { .generation = 1, .n_extents = 2, .extents = ex };
	ck_assert_int_eq(csv_wire_layout_get_reply_encode(&f, 1, 1, &lr), -EINVAL);
	ex[1].file_offset = 8192;
	ck_assert_int_eq(csv_wire_layout_get_reply_encode(&f, 1, 1, &lr), 0);
	ex[1].file_offset = 4096 + 4095; /* overlaps */
	ck_assert_int_eq(csv_wire_layout_get_reply_encode(&f, 1, 1, &lr), -EINVAL);

	/* DATA_WRITE: 1..CSV_WIRE_IO_MAX bytes. */
	struct iovec iov = { big, 0 };
	ck_assert_int_eq(csv_wire_data_write_encode(&f, 1, 1, 0, 0, &iov, 1), -EINVAL);
	ck_assert_int_eq(csv_wire_data_write_encode(&f, 1, 1, 0, 0, &iov, CSV_WIRE_IOV_MAX + 1),
			 -EINVAL);
	uint8_t *io = calloc(1, CSV_WIRE_IO_MAX + 1);
	ck_assert_ptr_nonnull(io);
	iov = (struct iovec){ io, CSV_WIRE_IO_MAX };
	ck_assert_int_eq(csv_wire_data_write_encode(&f, 1, 1, 0, 0, &iov, 1), 0);
	iov.iov_len++;
	ck_assert_int_eq(csv_wire_data_write_encode(&f, 1, 1, 0, 0, &iov, 1), -EMSGSIZE);
	free(io);

	/* READDIR max_bytes: room for the longest entry at least. */
	struct csv_wire_readdir rd = { .ino = 1, .max_bytes = CSV_WIRE_DIRENT_SIZE(255) - 1 };
	ck_assert_int_eq(csv_wire_readdir_encode(&f, 1, 1, &rd), -EINVAL);
	rd.max_bytes++;
	ck_assert_int_eq(csv_wire_readdir_encode(&f, 1, 1, &rd), 0);

	csv_wire_frame_done(&f);
	free(big);
}
END_TEST

static const struct sample *sample_named(const char *name, uint16_t flags)
{
	for (size_t i = 0; i < N_SAMPLES; i++)
		if (strcmp(samples[i].name, name) == 0 && samples[i].flags == flags)
			return &samples[i];
	ck_abort_msg("no sample %s", name);
	return NULL;
}

/* Field rules the decoders enforce beyond lengths: each row patches one
 * field of a valid sample to a value the protocol does not allow. */
START_TEST(test_field_rules)
{
#define P(type, field) (CSV_WIRE_HDR_SIZE + offsetof(type, field))
	static const struct {
		const char *sample;
		uint16_t flags;
		size_t off;
		unsigned size;
		uint64_t value;
	} rows[] = {
		{ "hello", REQ, P(struct csv_wire_d_hello, node_id), 4, 0 },
		{ "challenge", REP, P(struct csv_wire_d_challenge, epoch), 8, 0 },
		{ "challenge", REP, P(struct csv_wire_d_challenge, server_node), 4, 0 },
		{ "welcome", REP, P(struct csv_wire_d_welcome, session_id), 8, 0 },
		{ "welcome", REP, P(struct csv_wire_d_welcome, cluster_size), 4, 3000 },
		{ "welcome", REP, P(struct csv_wire_d_welcome, cluster_size), 4, 1u << 17 },
		{ "welcome", REP, P(struct csv_wire_d_welcome, block_size), 4, 1u << 17 },
		{ "welcome", REP, P(struct csv_wire_d_welcome, max_io), 4, CSV_WIRE_IO_MAX + 1 },
		{ "welcome", REP, P(struct csv_wire_d_welcome, name_max), 4, 256 },
		{ "welcome", REP, P(struct csv_wire_d_welcome, flags), 4, 4 },
		{ "setattr", REQ, P(struct csv_wire_d_setattr, valid), 4, CSV_WIRE_SET_MODE },
		{ "setattr", REQ, P(struct csv_wire_d_setattr, valid), 4, 1u << 9 },
		{ "setattr", REQ, P(struct csv_wire_d_setattr, mode), 4, 0100644 },
		{ "mknod", REQ, P(struct csv_wire_d_mknod, mode), 4, 040755 },
		{ "mkdir", REQ, P(struct csv_wire_d_mkdir, mode), 4, 010755 },
		{ "rename", REQ, P(struct csv_wire_d_rename, flags), 4, 3 },
		{ "rename", REQ, P(struct csv_wire_d_rename, flags), 4, 4 },
		{ "readdir", REQ, P(struct csv_wire_d_readdir, max_bytes), 4, 272 },
		{ "readdir", REQ, P(struct csv_wire_d_readdir, max_bytes), 4, CSV_WIRE_READDIR_MAX + 1 },
		{ "readdir_reply", REP, P(struct csv_wire_d_readdir_reply, flags), 4, 2 },
		{ "readdir_reply", REP, CSV_WIRE_HDR_SIZE + 8 + 8, 8, 0 },        /* first cookie */
		{ "readdir_reply", REP, CSV_WIRE_HDR_SIZE + 8 + 16, 1, 16 },      /* first type */
		{ "open", REQ, P(struct csv_wire_d_open, flags), 4, 0 },
		{ "open", REQ, P(struct csv_wire_d_open, flags), 4, CSV_WIRE_OPEN_READ | CSV_WIRE_OPEN_TRUNC },
		{ "open", REQ, P(struct csv_wire_d_open, flags), 4, 8 | CSV_WIRE_OPEN_READ },
		{ "statfs_reply", REP, P(struct csv_wire_d_statfs, free_clusters), 8, 1ull << 40 },
		{ "statfs_reply", REP, P(struct csv_wire_d_statfs, free_records), 8, 1ull << 40 },
		{ "setxattr", REQ, P(struct csv_wire_d_setxattr, flags), 4, 3 },
		{ "getxattr_reply", REP, P(struct csv_wire_d_xattr_reply, size), 4, 5 },
		{ "getxattr_reply", REP, P(struct csv_wire_d_xattr_reply, size), 4, CSV_WIRE_XATTR_VALUE_MAX + 1 },
		{ "listxattr_reply", REP, CSV_WIRE_HDR_SIZE + 8 + sizeof(sample_list) - 2, 1, 'x' },
		{ "listxattr_reply", REP, CSV_WIRE_HDR_SIZE + 8 + 7, 1, 0 },        /* empty name */
		{ "listxattr_reply", REP, CSV_WIRE_HDR_SIZE + 8, 1, 0 },
		{ "layout_get", REQ, P(struct csv_wire_d_layout_get, length), 8, 0 },
		{ "layout_get", REQ, P(struct csv_wire_d_layout_get, offset), 8, UINT64_MAX },
		{ "layout_get", REQ, P(struct csv_wire_d_layout_get, flags), 4, 2 },
		{ "layout_get_reply", REP, CSV_WIRE_HDR_SIZE + 32 + 32 + 0, 8, 0 },           /* 2nd before 1st */
		{ "layout_get_reply", REP, CSV_WIRE_HDR_SIZE + 32 + 32 + 0, 8, 65535 },       /* overlap */
		{ "layout_get_reply", REP, CSV_WIRE_HDR_SIZE + 32 + 16, 8, 0 },               /* empty */
		{ "layout_get_reply", REP, CSV_WIRE_HDR_SIZE + 32 + 8, 8, UINT64_MAX - 10 },  /* wraps */
		{ "layout_get_reply", REP, CSV_WIRE_HDR_SIZE + 32 + 24, 4, 2 },               /* flag */
		{ "layout_commit", REQ, CSV_WIRE_HDR_SIZE + 48 + 16, 8, 4095 },               /* overlap */
		{ "layout_commit", REQ, CSV_WIRE_HDR_SIZE + 48 + 8, 8, 0 },                   /* empty */
		{ "layout_commit", REQ, P(struct csv_wire_d_layout_commit, flags), 4, CSV_WIRE_COMMIT_VDL | CSV_WIRE_COMMIT_MTIME },
		{ "layout_commit", REQ, P(struct csv_wire_d_layout_commit, flags), 4, 8 | 7 },
		{ "fallocate", REQ, P(struct csv_wire_d_fallocate, mode), 4, 4 },
		{ "fallocate", REQ, P(struct csv_wire_d_fallocate, length), 8, 0 },
		{ "fsync", REQ, P(struct csv_wire_d_fsync, flags), 4, 2 },
		{ "data_read", REQ, P(struct csv_wire_d_data_read, length), 4, 0 },
		{ "data_read", REQ, P(struct csv_wire_d_data_read, length), 4, CSV_WIRE_IO_MAX + 1 },
		{ "data_read", REQ, P(struct csv_wire_d_data_read, lun_offset), 8, UINT64_MAX },
		{ "data_write", REQ, P(struct csv_wire_d_data_write, length), 4, SAMPLE_DATA_LEN - 1 },
		{ "data_write", REQ, P(struct csv_wire_d_data_write, flags), 4, 2 },
		{ "data_write", REQ, P(struct csv_wire_d_data_write, lun_offset), 8, UINT64_MAX - 5 },
		{ "inval_inode", CB, P(struct csv_wire_d_inval_inode, offset), 8, (uint64_t)-2 },
		{ "inval_inode", CB, P(struct csv_wire_d_inval_inode, offset), 8, (uint64_t)-1 }, /* with a length */
		{ "epoch_change", CB, P(struct csv_wire_d_epoch_change, new_epoch), 8, EPOCH },
		{ "epoch_change", CB, P(struct csv_wire_d_epoch_change, new_epoch), 8, 1 },
	};
#undef P
	fill_data();
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		const struct sample *s = sample_named(rows[i].sample, rows[i].flags);
		size_t len;
		uint8_t *frame = sample_frame(s, &len);
		uint8_t v[8];
		uint64_t x = rows[i].value;
		for (unsigned k = 0; k < 8; k++, x >>= 8)
			v[k] = (uint8_t)x;
		ck_assert_uint_le(rows[i].off + rows[i].size, len);
		memcpy(frame + rows[i].off, v, rows[i].size);
		int r = recode_canonical(s, frame, len);
		ck_assert_msg(r == -EBADMSG, "row %zu (%s at %zu): %d", i, s->name, rows[i].off, r);
		free(frame);
	}

	/* The INVAL_INODE "attributes only" form: offset -1 and length 0. */
	struct csv_wire_frame f = { 0 };
	struct csv_wire_inval_inode ii = { .ino = 1, .offset = -1, .length = 0 }, di;
	ck_assert_int_eq(csv_wire_inval_inode_encode(&f, 1, 1, &ii), 0);
	ck_assert_int_eq(csv_wire_inval_inode_decode(f.buf, f.len, NULL, &di), 0);
	ck_assert_int_eq(di.offset, -1);
	ii.length = 5;
	ck_assert_int_eq(csv_wire_inval_inode_encode(&f, 1, 1, &ii), -EINVAL);
	csv_wire_frame_done(&f);
}
END_TEST

/* The largest LAYOUT_GET reply fits in a frame; one extent more does not. */
START_TEST(test_frame_size_limit)
{
	const uint32_t max = (CSV_WIRE_PAYLOAD_MAX - sizeof(struct csv_wire_d_layout)) /
			     sizeof(struct csv_wire_d_extent);
	struct csv_wire_extent *ex = calloc(max + 1, sizeof(*ex));
	struct csv_wire_frame f = { 0 };
	struct csv_wire_layout m = { .generation = 1 }, d;

	ck_assert_ptr_nonnull(ex);
	for (uint32_t i = 0; i <= max; i++)
		ex[i] = (struct csv_wire_extent){ (uint64_t)i * 8192, (uint64_t)i * 4096, 4096, 0 };
	m.extents = ex;
	m.n_extents = max;
	ck_assert_int_eq(csv_wire_layout_get_reply_encode(&f, 1, 1, &m), 0);
	ck_assert_uint_le(f.len, CSV_WIRE_FRAME_MAX);
	ck_assert_int_eq(csv_wire_layout_get_reply_decode(f.buf, f.len, NULL, &d), 0);
	ck_assert_uint_eq(d.n_extents, max);
	ck_assert_uint_eq(d.extents[max - 1].file_offset, (uint64_t)(max - 1) * 8192);
	csv_wire_layout_free(&d);
	ck_assert_ptr_null(d.extents);
	m.n_extents = max + 1;
	ck_assert_int_eq(csv_wire_layout_get_reply_encode(&f, 1, 1, &m), -EMSGSIZE);
	ck_assert_ptr_null(f.buf);
	free(ex);
}
END_TEST

/* Counts that claim more than the frame holds are refused before
 * anything is allocated for them. */
START_TEST(test_counts_checked_before_allocation)
{
	struct csv_wire_frame f = { 0 };
	struct csv_wire_layout m = { .generation = 1, .n_extents = 3,
				     .extents = (struct csv_wire_extent *)sample_extents }, d;
	struct csv_wire_layout_commit c;
	struct csv_wire_readdir_reply rr;
	const uint32_t counts[] = { 2, 4, 1u << 20, 0x7fffffff, 0xffffffff };

	ck_assert_int_eq(csv_wire_layout_get_reply_encode(&f, 1, 1, &m), 0);
	for (size_t i = 0; i < ARRAY_SIZE(counts); i++) {
		uint8_t *p = exact_copy(f.buf, f.len);
		le32 n = cpu_to_le32(counts[i]);
		memcpy(p + CSV_WIRE_HDR_SIZE + offsetof(struct csv_wire_d_layout, count), &n, 4);
		ck_assert_int_eq(csv_wire_layout_get_reply_decode(p, f.len, NULL, &d), -EBADMSG);
		free(p);
	}
	struct csv_wire_layout_commit cm = { .ino = 1, .n_ranges = 3,
					     .ranges = (struct csv_wire_range *)sample_ranges };
	ck_assert_int_eq(csv_wire_layout_commit_encode(&f, 1, 1, &cm), 0);
	for (size_t i = 0; i < ARRAY_SIZE(counts); i++) {
		uint8_t *p = exact_copy(f.buf, f.len);
		le32 n = cpu_to_le32(counts[i]);
		memcpy(p + CSV_WIRE_HDR_SIZE + offsetof(struct csv_wire_d_layout_commit, count), &n, 4);
		ck_assert_int_eq(csv_wire_layout_commit_decode(p, f.len, NULL, &c), -EBADMSG);
		free(p);
	}
	ck_assert_int_eq(enc_readdir_reply(NULL, &f), 0);
	for (size_t i = 0; i < ARRAY_SIZE(counts); i++) {
		uint8_t *p = exact_copy(f.buf, f.len);
		le32 n = cpu_to_le32(counts[i]);
		memcpy(p + CSV_WIRE_HDR_SIZE, &n, 4);
		ck_assert_int_eq(csv_wire_readdir_reply_decode(p, f.len, NULL, &rr), -EBADMSG);
		free(p);
	}
	csv_wire_frame_done(&f);
}
END_TEST

START_TEST(test_readdir_builder_limit)
{
	struct csv_wire_frame f = { 0 };
	struct csv_wire_readdir_reply m;
	struct csv_wire_dirent e = { .ino = 5, .type = 8 };
	const uint32_t max = 4096;
	uint32_t added = 0;
	int r;

	ck_assert_int_eq(csv_wire_readdir_reply_begin(&f, 1, 1, max), 0);
	for (;;) {
		char nm[32];
		snprintf(nm, sizeof nm, "entry-%05u", added);
		e.name = name_of(nm);
		e.cookie = added + 1;
		r = csv_wire_readdir_reply_add(&f, &e);
		if (r == -ENOSPC)
			break;
		ck_assert_int_eq(r, 0);
		added++;
	}
	/* entry-NNNNN: 11 bytes, 29 on the wire. */
	ck_assert_uint_eq(added, max / CSV_WIRE_DIRENT_SIZE(11));
	ck_assert_int_eq(csv_wire_readdir_reply_end(&f, false), 0);
	ck_assert_uint_le(f.len - CSV_WIRE_HDR_SIZE - 8, max);
	ck_assert_int_eq(csv_wire_readdir_reply_decode(f.buf, f.len, NULL, &m), 0);
	ck_assert_uint_eq(m.count, added);
	ck_assert(!m.eof);
	uint32_t seen = 0;
	while (csv_wire_readdir_next(&m, &e) == 1) {
		char nm[32];
		snprintf(nm, sizeof nm, "entry-%05u", seen);
		ck_assert_str_eq(e.name.s, nm);
		ck_assert_uint_eq(e.cookie, seen + 1);
		seen++;
	}
	ck_assert_uint_eq(seen, added);

	/* An empty, final reply; and a cookie of 0 is refused. */
	ck_assert_int_eq(csv_wire_readdir_reply_begin(&f, 1, 1, max), 0);
	e.cookie = 0;
	ck_assert_int_eq(csv_wire_readdir_reply_add(&f, &e), -EINVAL);
	ck_assert_int_eq(csv_wire_readdir_reply_end(&f, true), -EINVAL);
	ck_assert_ptr_null(f.buf);
	ck_assert_int_eq(csv_wire_readdir_reply_begin(&f, 1, 1, max), 0);
	ck_assert_int_eq(csv_wire_readdir_reply_end(&f, true), 0);
	ck_assert_int_eq(csv_wire_readdir_reply_decode(f.buf, f.len, NULL, &m), 0);
	ck_assert_uint_eq(m.count, 0);
	ck_assert(m.eof);
	ck_assert_int_eq(csv_wire_readdir_next(&m, &e), 0);
	csv_wire_frame_done(&f);
}
END_TEST

/* DATA_WRITE references the caller's buffers: no copy of the data. */
START_TEST(test_data_write_zero_copy)
{
	struct csv_wire_frame f = { 0 };

	fill_data();
	ck_assert_int_eq(enc_data_write(NULL, &f), 0);
	ck_assert_uint_eq(f.len, CSV_WIRE_HDR_SIZE + sizeof(struct csv_wire_d_data_write));
	ck_assert_int_eq(f.iovcnt, 3);
	ck_assert_ptr_eq(f.iov[0].iov_base, data1);
	ck_assert_ptr_eq(f.iov[1].iov_base, data2);
	ck_assert_ptr_eq(f.iov[2].iov_base, data3);
	ck_assert_uint_eq(csv_wire_frame_size(&f), f.len + SAMPLE_DATA_LEN);
	csv_wire_frame_done(&f);
}
END_TEST

/* ---- Malformed frames -------------------------------------------------------- */

/* Every truncation of every valid frame: -EBADMSG, whether the header's
 * length fields are left alone or rewritten to match (so that the payload
 * parser meets the short payload); a rewritten truncation may only be
 * accepted if it is itself canonical (a shorter DATA_READ reply). */
START_TEST(test_truncations)
{
	fill_data();
	for (size_t i = 0; i < N_SAMPLES; i++) {
		const struct sample *s = &samples[i];
		size_t len;
		uint8_t *frame = sample_frame(s, &len);
		struct csv_wire_msghdr h;

		for (size_t l = 0; l < len; l++) {
			uint8_t *p = exact_copy(frame, l);
			REQUIRE(csv_wire_hdr_decode(p, l, &h) == -EBADMSG, "%s: hdr at %zu", s->name, l);
			int r = recode_canonical(s, p, l);
			REQUIRE(r == -EBADMSG, "%s: truncated to %zu: %d", s->name, l, r);
			free(p);
			if (l >= CSV_WIRE_HDR_SIZE) {
				p = exact_copy(frame, l);
				patch_lengths(p, l);
				r = recode_canonical(s, p, l);
				REQUIRE(r == -EBADMSG || (r == 0 && s->type == CSV_WIRE_DATA_READ &&
								  s->flags == REP),
					"%s: truncated consistently to %zu: %d", s->name, l, r);
				free(p);
			}
		}
		/* Trailing bytes after a valid payload. */
		for (size_t extra = 1; extra <= 9; extra += 4) {
			uint8_t *p = calloc(1, len + extra);
			ck_assert_ptr_nonnull(p);
			memcpy(p, frame, len);
			patch_lengths(p, len + extra);
			int r = recode_canonical(s, p, len + extra);
			REQUIRE(r == -EBADMSG || (r == 0 && s->type == CSV_WIRE_DATA_READ &&
						      s->flags == REP),
				"%s: %zu trailing bytes: %d", s->name, extra, r);
			free(p);
		}
		free(frame);
	}
}
END_TEST

/* A byte of the header flipped, at every offset, three ways. */
START_TEST(test_header_flips)
{
	static const uint8_t flips[] = { 0x01, 0x80, 0xff };

	fill_data();
	for (size_t i = 0; i < N_SAMPLES; i++) {
		const struct sample *s = &samples[i];
		size_t len;
		uint8_t *frame = sample_frame(s, &len);

		for (size_t off = 0; off < CSV_WIRE_HDR_SIZE; off++)
			for (size_t k = 0; k < ARRAY_SIZE(flips); k++) {
				uint8_t *p = exact_copy(frame, len);
				p[off] ^= flips[k];
				int r = recode_canonical(s, p, len);
				int hr = csv_wire_hdr_decode(p, len, NULL);
				free(p);
				if (off >= 0x04 && off < 0x06) {
					REQUIRE(r == -EPROTONOSUPPORT && hr == -EPROTONOSUPPORT,
						"%s: version flip at %zu: %d", s->name, off, r);
				} else if (off >= 0x10 && off < 0x18) {
					REQUIRE(r == 0, "%s: req_id flip at %zu: %d", s->name, off, r);
				} else if (off >= 0x18 && off < 0x20) {
					REQUIRE(r == 0 || (r == -EBADMSG &&
						s->type == CSV_WIRE_EPOCH_CHANGE && s->flags == CB),
						"%s: epoch flip at %zu: %d", s->name, off, r);
				} else if (off >= 0x20 && off < 0x24 && s->status) {
					REQUIRE(r == 0 || r == -EBADMSG,
						"%s: status flip at %zu: %d", s->name, off, r);
				} else {
					REQUIRE(r == -EBADMSG, "%s: flip 0x%02x at 0x%02zx accepted (%d)",
						s->name, flips[k], off, r);
				}
			}
		free(frame);
	}
}
END_TEST

/* Every byte of every payload flipped: accepted only when the result is
 * canonical (a data byte), else -EBADMSG (or -EPROTONOSUPPORT for the
 * version field of HELLO). */
START_TEST(test_payload_flips)
{
	static const uint8_t flips[] = { 0x01, 0x20, 0x80, 0xff };
	unsigned accepted = 0, refused = 0;

	fill_data();
	for (size_t i = 0; i < N_SAMPLES; i++) {
		const struct sample *s = &samples[i];
		size_t len;
		uint8_t *frame = sample_frame(s, &len);
		for (size_t off = CSV_WIRE_HDR_SIZE; off < len; off++)
			for (size_t k = 0; k < ARRAY_SIZE(flips); k++) {
				uint8_t *p = exact_copy(frame, len);
				p[off] ^= flips[k];
				int r = recode_canonical(s, p, len);
				free(p);
				REQUIRE(r == 0 || r == -EBADMSG ||
					(r == -EPROTONOSUPPORT && s->type == CSV_WIRE_HELLO),
					"%s: flip at %zu: %d", s->name, off, r);
				if (r == 0)
					accepted++;
				else
					refused++;
			}
		free(frame);
	}
	ck_assert_uint_gt(accepted, 0);
	ck_assert_uint_gt(refused, 0);
}
END_TEST

/* Random bytes: never a valid frame. */
START_TEST(test_random_bytes)
{
	uint8_t buf[400];

	rng_seed(1234);
	fill_data();
	for (unsigned n = 0; n < 3000; n++) {
		size_t len = rng() % sizeof buf;
		for (size_t j = 0; j < len; j++)
			buf[j] = (uint8_t)rng();
		if (n % 2 && len >= 12) {
			/* Half of them with the right magic and length. */
			le32 m = cpu_to_le32(CSV_WIRE_MAGIC);
			memcpy(buf, &m, 4);
			if (len >= CSV_WIRE_HDR_SIZE)
				patch_lengths(buf, len);
		}
		for (size_t i = 0; i < N_SAMPLES; i++) {
			int r = recode_canonical(&samples[i], buf, len);
			REQUIRE(r == -EBADMSG || r == -EPROTONOSUPPORT,
				"random frame %u accepted by %s (%d)", n, samples[i].name, r);
		}
	}
}
END_TEST

/* A valid header for each sample and a random payload of random length,
 * and valid frames with several random bytes changed. */
START_TEST(test_random_payloads)
{
	unsigned accepted = 0;

	rng_seed(99);
	fill_data();
	for (size_t i = 0; i < N_SAMPLES; i++) {
		const struct sample *s = &samples[i];
		size_t len;
		uint8_t *frame = sample_frame(s, &len);

		for (unsigned n = 0; n < 60; n++) {
			size_t plen = rng() % 300;
			uint8_t *p = malloc(CSV_WIRE_HDR_SIZE + plen + 1);
			ck_assert_ptr_nonnull(p);
			memcpy(p, frame, CSV_WIRE_HDR_SIZE);
			for (size_t j = 0; j < plen; j++)
				p[CSV_WIRE_HDR_SIZE + j] = (uint8_t)rng();
			patch_lengths(p, CSV_WIRE_HDR_SIZE + plen);
			int r = recode_canonical(s, p, CSV_WIRE_HDR_SIZE + plen);
			REQUIRE(r == 0 || r == -EBADMSG || r == -EPROTONOSUPPORT,
				"%s: random payload: %d", s->name, r);
			accepted += r == 0;
			free(p);
		}
		for (unsigned n = 0; len > CSV_WIRE_HDR_SIZE && n < 60; n++) {
			uint8_t *p = exact_copy(frame, len);
			unsigned changes = 1 + (unsigned)(rng() % 4);
			for (unsigned c = 0; c < changes; c++)
				p[CSV_WIRE_HDR_SIZE + rng() % (len - CSV_WIRE_HDR_SIZE)] ^=
					(uint8_t)(1 + rng() % 255);
			int r = recode_canonical(s, p, len);
			REQUIRE(r == 0 || r == -EBADMSG || r == -EPROTONOSUPPORT,
				"%s: mutated: %d", s->name, r);
			free(p);
		}
		free(frame);
	}
	/* Some random payloads are valid (DATA_READ replies at least). */
	ck_assert_uint_gt(accepted, 0);
}
END_TEST

START_TEST(test_oversized_and_versions)
{
	uint8_t hdr[CSV_WIRE_HDR_SIZE];
	uint32_t flen;
	struct csv_wire_frame f = { 0 };

	ck_assert_int_eq(csv_wire_empty_encode(&f, CSV_WIRE_PING, REQ, 1, 1, 0), 0);
	memcpy(hdr, f.buf, sizeof hdr);
	ck_assert_int_eq(csv_wire_frame_peek(hdr, 11, &flen), -EAGAIN);
	ck_assert_int_eq(csv_wire_frame_peek(hdr, 12, &flen), 0);
	ck_assert_uint_eq(flen, CSV_WIRE_HDR_SIZE);

	const uint32_t lens[] = { 0, 47, CSV_WIRE_FRAME_MAX + 1, 0xffffffffu };
	for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
		le32 l = cpu_to_le32(lens[i]);
		memcpy(hdr + 8, &l, 4);
		ck_assert_int_eq(csv_wire_frame_peek(hdr, sizeof hdr, &flen), -EBADMSG);
	}
	le32 l = cpu_to_le32(CSV_WIRE_FRAME_MAX);
	memcpy(hdr + 8, &l, 4);
	ck_assert_int_eq(csv_wire_frame_peek(hdr, sizeof hdr, &flen), 0);
	ck_assert_uint_eq(flen, CSV_WIRE_FRAME_MAX);

	/* A whole frame one byte over the maximum. */
	size_t big = CSV_WIRE_FRAME_MAX + 1;
	uint8_t *p = calloc(1, big);
	ck_assert_ptr_nonnull(p);
	memcpy(p, f.buf, CSV_WIRE_HDR_SIZE);
	patch_lengths(p, big);
	ck_assert_int_eq(csv_wire_hdr_decode(p, big, NULL), -EBADMSG);
	ck_assert_int_eq(csv_wire_empty_decode(p, big, CSV_WIRE_PING, REQ, NULL), -EBADMSG);
	free(p);

	/* Another version: refused as such, by the header and by HELLO. */
	for (unsigned v = 0; v < 4; v++) {
		if (v == CSV_WIRE_VERSION)
			continue;
		le16 ver = cpu_to_le16((uint16_t)v);
		p = exact_copy(f.buf, f.len);
		memcpy(p + 4, &ver, 2);
		ck_assert_int_eq(csv_wire_hdr_decode(p, f.len, NULL), -EPROTONOSUPPORT);
		ck_assert_int_eq(csv_wire_frame_peek(p, f.len, &flen), 0);
		free(p);
	}
	struct csv_wire_hello hello = hello_value, hd;
	hello.version = 2;
	ck_assert_int_eq(csv_wire_hello_encode(&f, 0, 0, &hello), 0);
	ck_assert_int_eq(csv_wire_hello_decode(f.buf, f.len, NULL, &hd), -EPROTONOSUPPORT);
	csv_wire_frame_done(&f);
}
END_TEST

/* ---- Connections ---------------------------------------------------------------- */

struct collected {
	size_t n;
	size_t cap;
	uint8_t **frames;
	size_t *lens;
	int stop_after;   /* > 0: return 1 after this many frames in one call */
	int per_call;
};

static int collect(struct csv_wire_conn *c, const void *frame, size_t len, void *userdata)
{
	struct collected *col = userdata;
	if (col->n == col->cap) {
		col->cap = col->cap ? col->cap * 2 : 64;
		col->frames = realloc(col->frames, col->cap * sizeof(*col->frames));
		col->lens = realloc(col->lens, col->cap * sizeof(*col->lens));
		REQUIRE(col->frames && col->lens, "realloc");
	}
	col->frames[col->n] = exact_copy(frame, len);
	col->lens[col->n] = len;
	col->n++;
	col->per_call++;
	if (col->stop_after && col->per_call >= col->stop_after)
		return 1;
	return 0;
}

static void collected_free(struct collected *col)
{
	for (size_t i = 0; i < col->n; i++)
		free(col->frames[i]);
	free(col->frames);
	free(col->lens);
	*col = (struct collected){ 0 };
}

static void make_pair(int sv[2])
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

/* A stream of n sample frames, concatenated; *ret_ends gets the end
 * offset of each. */
static uint8_t *sample_stream(size_t n, size_t *ret_len, size_t **ret_ends)
{
	size_t cap = 1 << 16, len = 0;
	uint8_t *buf = malloc(cap);
	size_t *ends = malloc(n * sizeof(*ends));
	ck_assert(buf && ends);
	for (size_t i = 0; i < n; i++) {
		size_t flen;
		uint8_t *f = sample_frame(&samples[i % N_SAMPLES], &flen);
		if (len + flen > cap) {
			cap = (len + flen) * 2;
			buf = realloc(buf, cap);
			ck_assert_ptr_nonnull(buf);
		}
		memcpy(buf + len, f, flen);
		len += flen;
		ends[i] = len;
		free(f);
	}
	*ret_len = len;
	*ret_ends = ends;
	return buf;
}

static void assert_stream_eq(const struct collected *col, const uint8_t *stream, const size_t *ends,
			     size_t n)
{
	ck_assert_uint_eq(col->n, n);
	for (size_t i = 0; i < n; i++) {
		size_t start = i ? ends[i - 1] : 0;
		REQUIRE(col->lens[i] == ends[i] - start, "frame %zu length", i);
		REQUIRE(memcmp(col->frames[i], stream + start, col->lens[i]) == 0, "frame %zu bytes", i);
	}
}

/* Frames written one byte at a time: each is delivered when, and only
 * when, its last byte arrives. */
START_TEST(test_conn_one_byte_at_a_time)
{
	int sv[2];
	struct csv_wire_conn *c;
	struct collected col = { 0 };
	size_t len, *ends;

	fill_data();
	uint8_t *stream = sample_stream(N_SAMPLES, &len, &ends);
	make_pair(sv);
	ck_assert_int_eq(csv_wire_conn_new(sv[0], &c), 0);
	size_t next = 0;
	for (size_t i = 0; i < len; i++) {
		ck_assert_int_eq(write(sv[1], stream + i, 1), 1);
		int r = csv_wire_conn_read(c, collect, &col);
		REQUIRE(r >= 0, "read: %d", r);
		if (i + 1 == ends[next]) {
			REQUIRE(r == 1 && col.n == next + 1, "frame %zu not delivered at its end", next);
			next++;
		} else
			REQUIRE(r == 0, "frame delivered early at byte %zu", i);
	}
	assert_stream_eq(&col, stream, ends, N_SAMPLES);
	ck_assert_uint_eq(csv_wire_conn_frames_in(c), N_SAMPLES);
	csv_wire_conn_free(c);
	close(sv[1]);
	collected_free(&col);
	free(stream);
	free(ends);
}
END_TEST

/* Thousands of frames (with big DATA frames among them) written in large
 * random chunks while the reader keeps up. */
START_TEST(test_conn_many_at_once)
{
	int sv[2];
	struct csv_wire_conn *c;
	struct collected col = { 0 };
	size_t len, *ends;
	const size_t n = 3000;

	fill_data();
	rng_seed(5);
	uint8_t *stream = sample_stream(n, &len, &ends);
	make_pair(sv);
	ck_assert_int_eq(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	ck_assert_int_eq(csv_wire_conn_new(sv[0], &c), 0);
	size_t off = 0;
	while (off < len) {
		size_t want = 1 + rng() % (1 << 18);
		size_t chunk = MIN(len - off, want);
		ssize_t w = write(sv[1], stream + off, chunk);
		if (w > 0)
			off += (size_t)w;
		else
			ck_assert_int_eq(errno, EAGAIN);
		int r = csv_wire_conn_read(c, collect, &col);
		ck_assert_msg(r >= 0, "%d: %s", r, csv_wire_conn_error(c));
	}
	while (col.n < n)
		ck_assert_int_ge(csv_wire_conn_read(c, collect, &col), 0);
	assert_stream_eq(&col, stream, ends, n);
	printf("conn: %zu frames, %zu bytes, reassembled\n", n, len);
	csv_wire_conn_free(c);
	close(sv[1]);
	collected_free(&col);
	free(stream);
	free(ends);
}
END_TEST

/* All frames in the socket before the first read: one read delivers
 * them, and a callback can stop it, leaving the rest buffered. */
START_TEST(test_conn_stop_and_buffered)
{
	int sv[2];
	struct csv_wire_conn *c;
	struct collected col = { .stop_after = 1 };
	size_t len, *ends;

	fill_data();
	uint8_t *stream = sample_stream(20, &len, &ends);
	make_pair(sv);
	ck_assert_int_eq(write(sv[1], stream, len), (ssize_t)len);
	ck_assert_int_eq(csv_wire_conn_new(sv[0], &c), 0);
	ck_assert_int_eq(csv_wire_conn_read(c, collect, &col), 1);
	ck_assert(csv_wire_conn_has_frame(c));
	for (int i = 1; i < 20; i++) {
		col.per_call = 0;
		ck_assert(csv_wire_conn_has_frame(c));
		ck_assert_int_eq(csv_wire_conn_read(c, collect, &col), 1);
	}
	ck_assert(!csv_wire_conn_has_frame(c));
	col.stop_after = 0;
	ck_assert_int_eq(csv_wire_conn_read(c, collect, &col), 0);
	assert_stream_eq(&col, stream, ends, 20);
	csv_wire_conn_free(c);
	close(sv[1]);
	collected_free(&col);
	free(stream);
	free(ends);
}
END_TEST

static int fail_cb(struct csv_wire_conn *c, const void *frame, size_t len, void *userdata)
{
	return -EBADMSG;
}

START_TEST(test_conn_callback_error)
{
	int sv[2];
	struct csv_wire_conn *c;
	struct csv_wire_frame f = { 0 };

	make_pair(sv);
	ck_assert_int_eq(csv_wire_empty_encode(&f, CSV_WIRE_PING, REQ, 1, 1, 0), 0);
	ck_assert_int_eq(write(sv[1], f.buf, f.len), (ssize_t)f.len);
	ck_assert_int_eq(csv_wire_conn_new(sv[0], &c), 0);
	ck_assert_int_eq(csv_wire_conn_read(c, fail_cb, NULL), -EBADMSG);
	/* The callback's error does not break the connection. */
	ck_assert_int_eq(csv_wire_conn_broken(c), 0);
	csv_wire_conn_free(c);
	close(sv[1]);
	csv_wire_frame_done(&f);
}
END_TEST

/* A length beyond the maximum is refused from the header alone: the rest
 * of the 4 GiB never needs to arrive, nor a buffer for it. */
START_TEST(test_conn_oversized_refused)
{
	const uint32_t lens[] = { CSV_WIRE_FRAME_MAX + 1, 0xffffffffu, 20 };
	for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
		int sv[2];
		struct csv_wire_conn *c;
		struct collected col = { 0 };
		struct csv_wire_frame f = { 0 };
		char want[64];

		make_pair(sv);
		ck_assert_int_eq(csv_wire_empty_encode(&f, CSV_WIRE_PING, REQ, 1, 1, 0), 0);
		le32 l = cpu_to_le32(lens[i]);
		memcpy(f.buf + 8, &l, 4);
		ck_assert_int_eq(write(sv[1], f.buf, f.len), (ssize_t)f.len);
		ck_assert_int_eq(csv_wire_conn_new(sv[0], &c), 0);
		ck_assert_int_eq(csv_wire_conn_read(c, collect, &col), -EBADMSG);
		ck_assert_uint_eq(col.n, 0);
		snprintf(want, sizeof want, "frame of %u bytes", lens[i]);
		ck_assert_msg(strstr(csv_wire_conn_error(c), want), "%s", csv_wire_conn_error(c));
		ck_assert_msg(strstr(csv_wire_conn_error(c), "local socket"), "%s",
			      csv_wire_conn_error(c));
		/* Broken for good. */
		ck_assert_int_eq(csv_wire_conn_read(c, collect, &col), -EBADMSG);
		ck_assert_int_eq(csv_wire_conn_broken(c), -EBADMSG);
		csv_wire_conn_free(c);
		close(sv[1]);
		csv_wire_frame_done(&f);
	}
}
END_TEST

START_TEST(test_conn_bad_magic_and_eof)
{
	int sv[2];
	struct csv_wire_conn *c;
	struct collected col = { 0 };
	struct csv_wire_frame f = { 0 };

	ck_assert_int_eq(csv_wire_empty_encode(&f, CSV_WIRE_PING, REQ, 1, 1, 0), 0);

	/* Not a csvfs frame. */
	make_pair(sv);
	ck_assert_int_eq(write(sv[1], "GET / HTTP/1.1\r\n\r\n", 18), 18);
	ck_assert_int_eq(csv_wire_conn_new(sv[0], &c), 0);
	ck_assert_int_eq(csv_wire_conn_read(c, collect, &col), -EBADMSG);
	ck_assert_msg(strstr(csv_wire_conn_error(c), "not a csvfs frame"), "%s", csv_wire_conn_error(c));
	csv_wire_conn_free(c);
	close(sv[1]);

	/* The peer closes in the middle of a frame... */
	make_pair(sv);
	ck_assert_int_eq(write(sv[1], f.buf, f.len), (ssize_t)f.len);
	ck_assert_int_eq(write(sv[1], f.buf, 20), 20);
	close(sv[1]);
	ck_assert_int_eq(csv_wire_conn_new(sv[0], &c), 0);
	ck_assert_int_eq(csv_wire_conn_read(c, collect, &col), -ECONNRESET);
	ck_assert_uint_eq(col.n, 1); /* the whole frame before it was delivered */
	ck_assert_msg(strstr(csv_wire_conn_error(c), "in the middle of a frame"), "%s",
		      csv_wire_conn_error(c));
	csv_wire_conn_free(c);

	/* ...or between frames. */
	make_pair(sv);
	close(sv[1]);
	ck_assert_int_eq(csv_wire_conn_new(sv[0], &c), 0);
	ck_assert_int_eq(csv_wire_conn_read(c, collect, &col), -ECONNRESET);
	ck_assert_msg(strstr(csv_wire_conn_error(c), "closed the connection"), "%s",
		      csv_wire_conn_error(c));
	csv_wire_conn_free(c);

	collected_free(&col);
	csv_wire_frame_done(&f);
}
END_TEST

struct sent_log {
	int calls;
	int last_status;
	int zeros;
};

static void on_sent(struct csv_wire_conn *c, int status, void *userdata)
{
	struct sent_log *l = userdata;
	l->calls++;
	l->last_status = status;
	l->zeros += status == 0;
}

/* Two connections over a socketpair: queued frames, DATA_WRITE among
 * them, arrive whole and in order; every sent callback runs once. */
START_TEST(test_conn_queue_flush)
{
	int sv[2];
	struct csv_wire_conn *a, *b;
	struct collected col = { 0 };
	struct sent_log log = { 0 };
	const int n = 500;
	size_t expect_bytes = 0;

	fill_data();
	make_pair(sv);
	ck_assert_int_eq(csv_wire_conn_new(sv[0], &a), 0);
	ck_assert_int_eq(csv_wire_conn_new(sv[1], &b), 0);
	for (int i = 0; i < n; i++) {
		struct csv_wire_frame f = { 0 };
		const struct sample *s = &samples[(size_t)i % N_SAMPLES];
		ck_assert_int_eq(s->enc(s, &f), 0);
		expect_bytes += csv_wire_frame_size(&f);
		ck_assert_int_eq(csv_wire_conn_queue(a, &f, on_sent, &log), 0);
		ck_assert_ptr_null(f.buf);
	}
	ck_assert_uint_eq(csv_wire_conn_queued_bytes(a), expect_bytes);
	ck_assert(csv_wire_conn_events(a) & POLLOUT);
	while (col.n < (size_t)n) {
		int r = csv_wire_conn_flush(a);
		ck_assert_int_ge(r, 0);
		ck_assert_int_ge(csv_wire_conn_read(b, collect, &col), 0);
	}
	ck_assert_int_eq(csv_wire_conn_flush(a), 0);
	ck_assert_uint_eq(csv_wire_conn_queued_bytes(a), 0);
	ck_assert(!(csv_wire_conn_events(a) & POLLOUT));
	ck_assert_int_eq(log.calls, n);
	ck_assert_int_eq(log.zeros, n);
	ck_assert_uint_eq(csv_wire_conn_frames_out(a), (uint64_t)n);
	for (int i = 0; i < n; i++) {
		const struct sample *s = &samples[(size_t)i % N_SAMPLES];
		s->check(s, col.frames[i], col.lens[i]);
	}
	csv_wire_conn_free(a);
	csv_wire_conn_free(b);
	collected_free(&col);
}
END_TEST

/* Frames of the largest sizes through a connection: an 8 MiB DATA_WRITE
 * from three buffers and a DATA_READ reply, between small frames; the
 * reader buffers each whole and goes back to its small buffer. */
START_TEST(test_conn_big_frames)
{
	int sv[2];
	struct csv_wire_conn *a, *b;
	struct collected col = { 0 };
	struct sent_log log = { 0 };
	struct csv_wire_frame f = { 0 };
	uint8_t *big = malloc(CSV_WIRE_IO_MAX);
	const size_t cut1 = 12345, cut2 = 5u << 20;

	ck_assert_ptr_nonnull(big);
	rng_seed(3);
	for (size_t i = 0; i < CSV_WIRE_IO_MAX; i += 8) {
		uint64_t v = rng();
		memcpy(big + i, &v, 8);
	}
	struct iovec iov[3] = {
		{ big, cut1 }, { big + cut1, cut2 - cut1 }, { big + cut2, CSV_WIRE_IO_MAX - cut2 },
	};
	make_pair(sv);
	ck_assert_int_eq(csv_wire_conn_new(sv[0], &a), 0);
	ck_assert_int_eq(csv_wire_conn_new(sv[1], &b), 0);
	for (int round = 0; round < 3; round++) {
		ck_assert_int_eq(csv_wire_empty_encode(&f, CSV_WIRE_PING, REQ, 1, 1, 0), 0);
		ck_assert_int_eq(csv_wire_conn_queue(a, &f, on_sent, &log), 0);
		ck_assert_int_eq(csv_wire_data_write_encode(&f, 2, 1, 1ull << 30, 0, iov, 3), 0);
		ck_assert_int_eq(csv_wire_conn_queue(a, &f, on_sent, &log), 0);
		ck_assert_int_eq(csv_wire_data_read_reply_encode(&f, 3, 1, iov + 1, 1), 0);
		ck_assert_int_eq(csv_wire_conn_queue(a, &f, on_sent, &log), 0);
	}
	while (col.n < 9) {
		ck_assert_int_ge(csv_wire_conn_flush(a), 0);
		ck_assert_int_ge(csv_wire_conn_read(b, collect, &col), 0);
	}
	ck_assert_int_eq(log.zeros, 9);
	for (int round = 0; round < 3; round++) {
		struct csv_wire_data d;
		size_t k = (size_t)round * 3;
		ck_assert_int_eq(csv_wire_empty_decode(col.frames[k], col.lens[k], CSV_WIRE_PING, REQ, NULL), 0);
		ck_assert_int_eq(csv_wire_data_write_decode(col.frames[k + 1], col.lens[k + 1], NULL, &d), 0);
		ck_assert_uint_eq(d.length, CSV_WIRE_IO_MAX);
		ck_assert_uint_eq(d.lun_offset, 1ull << 30);
		ck_assert(memcmp(d.data, big, CSV_WIRE_IO_MAX) == 0);
		ck_assert_int_eq(csv_wire_data_read_reply_decode(col.frames[k + 2], col.lens[k + 2], NULL, &d), 0);
		ck_assert_uint_eq(d.length, cut2 - cut1);
		ck_assert(memcmp(d.data, big + cut1, cut2 - cut1) == 0);
	}
	csv_wire_conn_free(a);
	csv_wire_conn_free(b);
	collected_free(&col);
	free(big);
}
END_TEST

/* Frames still queued when the connection goes: dropped, with
 * -ECANCELED; a write to a closed peer breaks it with -EPIPE. */
START_TEST(test_conn_drop_and_epipe)
{
	int sv[2];
	struct csv_wire_conn *c;
	struct csv_wire_frame f = { 0 };
	struct sent_log log = { 0 };

	make_pair(sv);
	ck_assert_int_eq(csv_wire_conn_new(sv[0], &c), 0);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(csv_wire_empty_encode(&f, CSV_WIRE_PING, REQ, 1, 1, 0), 0);
		ck_assert_int_eq(csv_wire_conn_queue(c, &f, on_sent, &log), 0);
	}
	csv_wire_conn_free(c);
	ck_assert_int_eq(log.calls, 3);
	ck_assert_int_eq(log.last_status, -ECANCELED);

	log = (struct sent_log){ 0 };
	ck_assert_int_eq(csv_wire_conn_new(sv[1], &c), 0);
	ck_assert_int_eq(csv_wire_empty_encode(&f, CSV_WIRE_PING, REQ, 1, 1, 0), 0);
	ck_assert_int_eq(csv_wire_conn_queue(c, &f, on_sent, &log), 0);
	ck_assert_int_eq(csv_wire_conn_flush(c), -EPIPE);
	ck_assert_int_eq(log.calls, 1);
	ck_assert_int_eq(log.last_status, -EPIPE);
	ck_assert_msg(strstr(csv_wire_conn_error(c), "send failed"), "%s", csv_wire_conn_error(c));
	/* Broken: queueing is refused and the frame stays with the caller. */
	ck_assert_int_eq(csv_wire_empty_encode(&f, CSV_WIRE_PING, REQ, 1, 1, 0), 0);
	ck_assert_int_eq(csv_wire_conn_queue(c, &f, on_sent, &log), -EPIPE);
	ck_assert_ptr_nonnull(f.buf);
	csv_wire_frame_done(&f);
	csv_wire_conn_free(c);
	ck_assert_int_eq(log.calls, 1);
}
END_TEST

START_TEST(test_conn_ids_and_peer)
{
	int sv[2];
	struct csv_wire_conn *c;

	make_pair(sv);
	ck_assert_int_eq(csv_wire_conn_new(sv[0], &c), 0);
	uint64_t first = csv_wire_conn_next_id(c);
	ck_assert_uint_ne(first, 0);
	ck_assert_uint_eq(csv_wire_conn_next_id(c), first + 1);
	ck_assert_uint_eq(csv_wire_conn_peek_next_id(c), first + 2);
	csv_wire_conn_set_next_id(c, UINT64_MAX);
	ck_assert_uint_eq(csv_wire_conn_next_id(c), UINT64_MAX);
	ck_assert_uint_eq(csv_wire_conn_next_id(c), 1); /* 0 is skipped */
	csv_wire_conn_set_next_id(c, 0);
	ck_assert_uint_eq(csv_wire_conn_next_id(c), 1);

	ck_assert_str_eq(csv_wire_conn_peer(c), "local socket");
	csv_wire_conn_set_peer_node(c, 3);
	ck_assert_str_eq(csv_wire_conn_peer(c), "local socket (node 3)");
	ck_assert_uint_eq(csv_wire_conn_peer_node(c), 3);
	ck_assert_int_eq(csv_wire_conn_set_peer_name(c, "node3.lab"), 0);
	ck_assert_str_eq(csv_wire_conn_peer(c), "node3.lab (node 3)");
	csv_wire_conn_free(c);
	close(sv[1]);

	/* Over TCP: the address and port of the peer. */
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof sa;
	ck_assert_int_ge(l, 0);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&sa, sizeof sa), 0);
	ck_assert_int_eq(listen(l, 1), 0);
	ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sa, &sl), 0);
	int cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(connect(cfd, (struct sockaddr *)&sa, sizeof sa), 0);
	int afd = accept(l, NULL, NULL);
	ck_assert_int_ge(afd, 0);
	struct sockaddr_in local;
	sl = sizeof local;
	ck_assert_int_eq(getsockname(cfd, (struct sockaddr *)&local, &sl), 0);
	char want[64];
	snprintf(want, sizeof want, "127.0.0.1:%u (node 12)", ntohs(local.sin_port));
	ck_assert_int_eq(csv_wire_conn_new(afd, &c), 0);
	csv_wire_conn_set_peer_node(c, 12);
	ck_assert_str_eq(csv_wire_conn_peer(c), want);
	csv_wire_conn_free(c);
	close(cfd);
	close(l);
}
END_TEST

START_TEST(test_conn_wait_helpers)
{
	int sv[2];
	struct csv_wire_conn *a, *b;
	struct collected col = { 0 };
	struct csv_wire_frame f = { 0 };
	struct timespec t0, t1;

	make_pair(sv);
	ck_assert_int_eq(csv_wire_conn_new(sv[0], &a), 0);
	ck_assert_int_eq(csv_wire_conn_new(sv[1], &b), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(csv_wire_conn_read_wait(b, 50, collect, &col), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	ck_assert_msg(ms >= 45 && ms < 2000, "waited %.1f ms", ms);

	ck_assert_int_eq(csv_wire_empty_encode(&f, CSV_WIRE_PING, REQ, 77, 1, 0), 0);
	ck_assert_int_eq(csv_wire_conn_send_wait(a, &f, 1000), 0);
	ck_assert_int_eq(csv_wire_conn_read_wait(b, 1000, collect, &col), 1);
	struct csv_wire_msghdr h;
	ck_assert_int_eq(csv_wire_empty_decode(col.frames[0], col.lens[0], CSV_WIRE_PING, REQ, &h), 0);
	ck_assert_uint_eq(h.req_id, 77);
	csv_wire_conn_free(a);
	csv_wire_conn_free(b);
	collected_free(&col);
}
END_TEST

/* ---- Benchmark ------------------------------------------------------------------- */

START_TEST(test_bench_layout_reply)
{
	struct csv_wire_extent ex[64];
	struct csv_wire_layout m = { .generation = 5, .size = 1ull << 34,
				     .valid_data_length = 1ull << 33, .n_extents = 64,
				     .extents = ex }, d;
	struct csv_wire_frame f = { 0 };
	struct timespec t0, t1;
	unsigned long n = 0;
	double secs;

	for (int i = 0; i < 64; i++)
		ex[i] = (struct csv_wire_extent){ (uint64_t)i << 24, (uint64_t)(i * 7 + 3) << 24,
						  1u << 23, (uint32_t)(i & 1) };
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		for (int k = 0; k < 1000; k++, n++) {
			REQUIRE(csv_wire_layout_get_reply_encode(&f, n + 1, 9, &m) == 0, "encode");
			REQUIRE(csv_wire_layout_get_reply_decode(f.buf, f.len, NULL, &d) == 0, "decode");
			REQUIRE(d.n_extents == 64 && d.extents[63].lun_offset == ex[63].lun_offset, "eq");
			csv_wire_layout_free(&d);
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	} while (secs < 0.5);
	printf("bench: LAYOUT_GET reply, 64 extents (%zu bytes): %.0f encode+decode per second\n",
	       f.len, (double)n / secs);
	csv_wire_frame_done(&f);
}
END_TEST

static Suite *wire_suite(void)
{
	Suite *s = suite_create("wire");
	TCase *tc;

	tc = tcase_create("messages");
	tcase_add_test(tc, test_roundtrip_every_message);
	tcase_add_test(tc, test_every_type_sampled);
	tcase_add_test(tc, test_error_reply);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_bad_names_refused);
	tcase_add_test(tc, test_encoder_limits);
	tcase_add_test(tc, test_field_rules);
	tcase_add_test(tc, test_frame_size_limit);
	tcase_add_test(tc, test_counts_checked_before_allocation);
	tcase_add_test(tc, test_readdir_builder_limit);
	tcase_add_test(tc, test_data_write_zero_copy);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_create("malformed");
	tcase_add_test(tc, test_truncations);
	tcase_add_test(tc, test_header_flips);
	tcase_add_test(tc, test_payload_flips);
	tcase_add_test(tc, test_random_bytes);
	tcase_add_test(tc, test_random_payloads);
	tcase_add_test(tc, test_oversized_and_versions);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);

	tc = tcase_create("conn");
	tcase_add_test(tc, test_conn_one_byte_at_a_time);
	tcase_add_test(tc, test_conn_many_at_once);
	tcase_add_test(tc, test_conn_stop_and_buffered);
	tcase_add_test(tc, test_conn_callback_error);
	tcase_add_test(tc, test_conn_oversized_refused);
	tcase_add_test(tc, test_conn_bad_magic_and_eof);
	tcase_add_test(tc, test_conn_queue_flush);
	tcase_add_test(tc, test_conn_big_frames);
	tcase_add_test(tc, test_conn_drop_and_epipe);
	tcase_add_test(tc, test_conn_ids_and_peer);
	tcase_add_test(tc, test_conn_wait_helpers);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_create("bench");
	tcase_add_test(tc, test_bench_layout_reply);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(wire_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
