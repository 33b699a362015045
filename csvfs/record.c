/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "record.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "runlist.h"
#include "util.h"

#define ATTR_AREA_END CSV_RECORD_SIZE

void record_init(void *buf, uint64_t recno, uint16_t seq, uint16_t flags, uint32_t mode)
{
	struct csv_d_record *r = buf;
	memset(r, 0, sizeof(*r));
	r->recno = cpu_to_le64(recno);
	r->seq = cpu_to_le16(seq);
	r->flags = cpu_to_le16(flags);
	r->mode = cpu_to_le32(mode);
	r->attr_offset = cpu_to_le16(CSV_RECORD_ATTR_OFFSET);
	r->attr_used = cpu_to_le16(0);
}

static int verify_payload(const struct csv_d_attr *a, char *err, size_t errlen)
{
	uint16_t type = le16_to_cpu(a->type);
	uint32_t plen = attr_payload_len(a);
	const uint8_t *p = attr_payload_const(a);

	switch (type) {
	case CSV_ATTR_NAME: {
		const struct csv_d_attr_name *n = (const void *)p;
		if (plen < offsetof(struct csv_d_attr_name, name) + 1)
			return err_unclean(err, errlen, "NAME attribute of %u bytes is too short", plen);
		uint16_t nl = le16_to_cpu(n->name_len);
		if (nl < 1 || nl > CSV_NAME_MAX || offsetof(struct csv_d_attr_name, name) + nl > plen)
			return err_unclean(err, errlen, "NAME attribute has a name of %u bytes", nl);
		if (memchr(n->name, '/', nl) || memchr(n->name, '\0', nl))
			return err_unclean(err, errlen, "NAME attribute holds '/' or NUL");
		return 0;
	}
	case CSV_ATTR_DATA: {
		const struct csv_d_attr_data *d = (const void *)p;
		if (plen < sizeof(*d))
			return err_unclean(err, errlen, "DATA attribute of %u bytes is too short", plen);
		uint64_t count = le32_to_cpu(d->count), need;
		switch (le16_to_cpu(d->form)) {
		case CSV_DATA_RESIDENT: need = count; break;
		case CSV_DATA_RUNS: need = count * sizeof(struct csv_d_run); break;
		case CSV_DATA_EXTENTS: need = count * sizeof(struct csv_d_extent_ref); break;
		default:
			return err_unclean(err, errlen, "DATA attribute has unknown form %u", le16_to_cpu(d->form));
		}
		if (need > plen - sizeof(*d))
			return err_unclean(err, errlen, "DATA attribute holds %" PRIu64 " items that do not fit its %u bytes",
				   count, plen);
		return 0;
	}
	case CSV_ATTR_INDEX_ROOT:
		if (plen != CSV_INDEX_ROOT_BYTES)
			return err_unclean(err, errlen, "INDEX_ROOT attribute of %u bytes, expected %u", plen,
				   CSV_INDEX_ROOT_BYTES);
		return 0;
	case CSV_ATTR_XATTR: {
		const struct csv_d_attr_xattr *x = (const void *)p;
		if (plen < sizeof(*x))
			return err_unclean(err, errlen, "XATTR attribute of %u bytes is too short", plen);
		uint32_t nl = le16_to_cpu(x->name_len), vl = le16_to_cpu(x->value_len);
		if (nl < 1 || nl > 255 || sizeof(*x) + nl + vl > plen)
			return err_unclean(err, errlen, "XATTR attribute with name of %u and value of %u bytes overflows", nl, vl);
		return 0;
	}
	default:
		return err_unclean(err, errlen, "unknown attribute type %u", type);
	}
}

int record_verify(const void *buf, uint64_t recno, char *err, size_t errlen)
{
	const struct csv_d_record *r = buf;
	uint16_t flags = le16_to_cpu(r->flags);

	if (le64_to_cpu(r->recno) != recno)
		return err_unclean(err, errlen, "holds record number %" PRIu64, le64_to_cpu(r->recno));
	if (flags & ~CSV_REC_FLAGS_KNOWN)
		return err_unclean(err, errlen, "unknown flags 0x%x", flags & ~CSV_REC_FLAGS_KNOWN);
	if ((flags & CSV_REC_IN_USE) && le16_to_cpu(r->seq) == 0)
		return err_unclean(err, errlen, "in use with sequence number 0");
	if (le16_to_cpu(r->attr_offset) != CSV_RECORD_ATTR_OFFSET)
		return err_unclean(err, errlen, "attributes at offset %u, expected %u",
			   le16_to_cpu(r->attr_offset), CSV_RECORD_ATTR_OFFSET);
	uint32_t used = le16_to_cpu(r->attr_used);
	if (used > CSV_RECORD_ATTR_SPACE || used % 8)
		return err_unclean(err, errlen, "attribute area of %u bytes is invalid", used);
	if (!(flags & CSV_REC_IN_USE) && used != 0)
		return err_unclean(err, errlen, "free but holds attributes");

	const uint8_t *p = r->attrs, *end = r->attrs + used;
	uint16_t last_type = 0;
	while (p < end) {
		const struct csv_d_attr *a = (const void *)p;
		if ((size_t)(end - p) < sizeof(*a))
			return err_unclean(err, errlen, "attribute header at offset %zu is cut off", (size_t)(p - (const uint8_t *)r));
		uint32_t len = le32_to_cpu(a->length);
		uint16_t type = le16_to_cpu(a->type);
		if (len < sizeof(*a) || len % 8 || len > (size_t)(end - p))
			return err_unclean(err, errlen, "attribute at offset %zu has length %u", (size_t)(p - (const uint8_t *)r), len);
		if (type < last_type)
			return err_unclean(err, errlen, "attributes are out of order (type %u after %u)", type, last_type);
		if (le16_to_cpu(a->flags) != 0)
			return err_unclean(err, errlen, "attribute type %u has reserved flags set", type);
		int rv = verify_payload(a, err, errlen);
		if (rv < 0)
			return rv;
		last_type = type;
		p += len;
	}
	/* Unused bytes after the attributes stay zero. */
	for (const uint8_t *q = end; q < (const uint8_t *)r + ATTR_AREA_END; q++)
		if (*q)
			return err_unclean(err, errlen, "non-zero bytes after the attributes at offset %zu",
				   (size_t)(q - (const uint8_t *)r));
	return 0;
}

const struct csv_d_attr *record_attr_next_const(const void *rec, const struct csv_d_attr *prev)
{
	const struct csv_d_record *r = rec;
	const uint8_t *end = r->attrs + le16_to_cpu(r->attr_used);
	const uint8_t *p = prev ? (const uint8_t *)prev + le32_to_cpu(prev->length) : r->attrs;
	return p < end ? (const struct csv_d_attr *)p : NULL;
}

struct csv_d_attr *record_attr_next(void *rec, struct csv_d_attr *prev)
{
	return (struct csv_d_attr *)record_attr_next_const(rec, prev);
}

const struct csv_d_attr *record_attr_find_const(const void *rec, uint16_t type, unsigned nth)
{
	for (const struct csv_d_attr *a = record_attr_next_const(rec, NULL); a; a = record_attr_next_const(rec, a))
		if (le16_to_cpu(a->type) == type && nth-- == 0)
			return a;
	return NULL;
}

struct csv_d_attr *record_attr_find(void *rec, uint16_t type, unsigned nth)
{
	return (struct csv_d_attr *)record_attr_find_const(rec, type, nth);
}

size_t record_attr_space(const void *rec)
{
	const struct csv_d_record *r = rec;
	return CSV_RECORD_ATTR_SPACE - le16_to_cpu(r->attr_used);
}

int record_attr_add(void *rec, uint16_t type, uint32_t payload_len, void **ret_payload)
{
	struct csv_d_record *r = rec;
	uint32_t len = ROUND_UP(payload_len + (uint32_t)sizeof(struct csv_d_attr), 8u);
	uint32_t used = le16_to_cpu(r->attr_used);

	if (payload_len > CSV_RECORD_ATTR_SPACE || len > record_attr_space(rec))
		return -ENOSPC;
	/* After the last attribute of a type <= ours. */
	uint8_t *at = r->attrs;
	for (struct csv_d_attr *a = record_attr_next(rec, NULL); a; a = record_attr_next(rec, a)) {
		if (le16_to_cpu(a->type) > type)
			break;
		at = (uint8_t *)a + le32_to_cpu(a->length);
	}
	memmove(at + len, at, (size_t)(r->attrs + used - at));
	memset(at, 0, len);
	struct csv_d_attr *na = (struct csv_d_attr *)at;
	na->type = cpu_to_le16(type);
	na->length = cpu_to_le32(len);
	r->attr_used = cpu_to_le16(used + len);
	if (ret_payload)
		*ret_payload = attr_payload(na);
	return 0;
}

void record_attr_remove(void *rec, struct csv_d_attr *a)
{
	struct csv_d_record *r = rec;
	uint32_t len = le32_to_cpu(a->length);
	uint32_t used = le16_to_cpu(r->attr_used);
	uint8_t *p = (uint8_t *)a, *end = r->attrs + used;

	memmove(p, p + len, (size_t)(end - p - len));
	memset(end - len, 0, len);
	r->attr_used = cpu_to_le16(used - len);
}

int record_attr_resize(void *rec, struct csv_d_attr *a, uint32_t payload_len, void **ret_payload)
{
	struct csv_d_record *r = rec;
	uint32_t old = le32_to_cpu(a->length);
	uint32_t len = ROUND_UP(payload_len + (uint32_t)sizeof(struct csv_d_attr), 8u);
	uint32_t used = le16_to_cpu(r->attr_used);
	uint8_t *p = (uint8_t *)a, *end = r->attrs + used;

	if (payload_len > CSV_RECORD_ATTR_SPACE || (len > old && len - old > record_attr_space(rec)))
		return -ENOSPC;
	if (len != old) {
		memmove(p + len, p + old, (size_t)(end - p - old));
		if (len > old)
			memset(p + old, 0, len - old);
		else
			memset(end - (old - len), 0, old - len);
		a->length = cpu_to_le32(len);
		r->attr_used = cpu_to_le16(used - old + len);
	}
	/* Bytes past the new payload length inside the padding stay zero. */
	memset(p + sizeof(*a) + payload_len, 0, len - sizeof(*a) - payload_len);
	if (ret_payload)
		*ret_payload = attr_payload(a);
	return 0;
}

int record_name_add(void *rec, uint64_t parent, const void *name, size_t len)
{
	struct csv_d_attr_name *n;
	if (len < 1 || len > CSV_NAME_MAX)
		return -ENAMETOOLONG;
	if (memchr(name, '/', len) || memchr(name, '\0', len))
		return -EINVAL;
	int r = record_attr_add(rec, CSV_ATTR_NAME, (uint32_t)(offsetof(struct csv_d_attr_name, name) + len),
				(void **)&n);
	if (r < 0)
		return r;
	n->parent = cpu_to_le64(parent);
	n->name_len = cpu_to_le16((uint16_t)len);
	memcpy(n->name, name, len);
	return 0;
}

int record_name_remove(void *rec, uint64_t parent, const void *name, size_t len)
{
	struct csv_d_attr *a;
	for (unsigned i = 0; (a = record_attr_find(rec, CSV_ATTR_NAME, i)); i++) {
		struct csv_d_attr_name *n = attr_payload(a);
		if (le64_to_cpu(n->parent) == parent && le16_to_cpu(n->name_len) == len &&
		    memcmp(n->name, name, len) == 0) {
			record_attr_remove(rec, a);
			return 0;
		}
	}
	return -ENOENT;
}

int record_data_set_resident(void *rec, const void *data, uint32_t len)
{
	struct csv_d_attr *a = record_attr_find(rec, CSV_ATTR_DATA, 0);
	struct csv_d_attr_data *d;
	int r;

	if (len > CSV_RECORD_ATTR_SPACE - sizeof(struct csv_d_attr) - sizeof(*d))
		return -ENOSPC;
	if (a)
		r = record_attr_resize(rec, a, (uint32_t)sizeof(*d) + len, (void **)&d);
	else
		r = record_attr_add(rec, CSV_ATTR_DATA, (uint32_t)sizeof(*d) + len, (void **)&d);
	if (r < 0)
		return r;
	d->form = cpu_to_le16(CSV_DATA_RESIDENT);
	d->reserved = cpu_to_le16(0);
	d->count = cpu_to_le32(len);
	if (len)
		memcpy((uint8_t *)d + sizeof(*d), data, len);
	return 0;
}

uint8_t mode_to_dtype(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return DT_REG;
	case S_IFDIR: return DT_DIR;
	case S_IFLNK: return DT_LNK;
	case S_IFCHR: return DT_CHR;
	case S_IFBLK: return DT_BLK;
	case S_IFIFO: return DT_FIFO;
	case S_IFSOCK: return DT_SOCK;
	default: return DT_UNKNOWN;
	}
}

int record_data_set_runs(void *rec, struct csv_runlist *rl, struct csv_nodeio *io, uint64_t owner)
{
	struct csv_d_attr *a = record_attr_find(rec, CSV_ATTR_DATA, 0);
	void *payload;
	size_t len, cap;
	int r;

	if (a)
		record_attr_remove(rec, a);
	cap = (record_attr_space(rec) - sizeof(struct csv_d_attr)) & ~(size_t)7;
	r = record_attr_add(rec, CSV_ATTR_DATA, (uint32_t)cap, &payload);
	if (r < 0)
		return r;
	r = runlist_encode(rl, payload, cap, &len, io, owner);
	a = record_attr_find(rec, CSV_ATTR_DATA, 0);
	if (r < 0) {
		record_attr_remove(rec, a);
		return r;
	}
	r = record_attr_resize(rec, a, (uint32_t)len, NULL);
	if (r < 0)
		return r;
	((struct csv_d_record *)rec)->alloc_clusters = cpu_to_le64(runlist_clusters(rl));
	return 0;
}

int record_data_get_runs(const void *rec, struct csv_nodeio *io, uint64_t owner, uint64_t total_clusters,
			 struct csv_runlist *ret)
{
	const struct csv_d_attr *a = record_attr_find_const(rec, CSV_ATTR_DATA, 0);
	if (!a) {
		runlist_init(ret);
		return 0;
	}
	const struct csv_d_attr_data *d = attr_payload_const(a);
	if (le16_to_cpu(d->form) == CSV_DATA_RESIDENT)
		return -EINVAL;
	return runlist_decode(attr_payload_const(a), attr_payload_len(a), io, owner, total_clusters, ret);
}
