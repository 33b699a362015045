/* SPDX-License-Identifier: GPL-2.0-or-later */
/* MFT file records in memory: the attribute list (add, find, remove,
 * resize, space), links and resident data, record_verify's refusal of each
 * kind of damage, and a mutation fuzzer for record_verify. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "format.h"
#include "record.h"
#include "test-util.h"

#define RECNO 1234u
#define PARENT CSV_REF(CSV_RECNO_ROOT, 1)

/* 8-byte aligned, as records are in the MFT buffers. */
typedef union {
	uint8_t b[CSV_RECORD_SIZE];
	struct csv_d_record r;
	uint64_t align;
} recbuf;

static void new_file(recbuf *rb)
{
	record_init(rb, RECNO, 3, CSV_REC_IN_USE, S_IFREG | 0644);
}

static void require_valid(const recbuf *rb, uint64_t recno)
{
	char err[256] = "";
	int r = record_verify(rb, recno, err, sizeof(err));
	ck_assert_msg(r == 0, "record_verify gave %d: %s", r, err);
}

/* record_verify refuses the record with -EUCLEAN and a sentence that
 * contains word. */
static void require_refused(const recbuf *rb, uint64_t recno, const char *word)
{
	char err[256];
	memset(err, 0, sizeof(err));
	int r = record_verify(rb, recno, err, sizeof(err));
	ck_assert_msg(r == -EUCLEAN, "record_verify gave %d, expected -EUCLEAN (looking for \"%s\")", r, word);
	ck_assert_msg(strstr(err, word), "err \"%s\" does not name \"%s\"", err, word);
	/* Without a buffer for the sentence, the same answer. */
	ck_assert_int_eq(record_verify(rb, recno, NULL, 0), -EUCLEAN);
}

static struct csv_d_attr *add_xattr(recbuf *rb, const char *name, const char *value)
{
	struct csv_d_attr_xattr *x;
	size_t nl = strlen(name), vl = strlen(value);
	ck_assert_int_eq(record_attr_add(rb, CSV_ATTR_XATTR, (uint32_t)(sizeof(*x) + nl + vl), (void **)&x), 0);
	x->name_len = cpu_to_le16((uint16_t)nl);
	x->value_len = cpu_to_le16((uint16_t)vl);
	memcpy(x->data, name, nl);
	memcpy(x->data + nl, value, vl);
	return (struct csv_d_attr *)((uint8_t *)x - sizeof(struct csv_d_attr));
}

static const char *xattr_name(const struct csv_d_attr *a, char *out, size_t outlen)
{
	const struct csv_d_attr_xattr *x = attr_payload_const(a);
	snprintf(out, outlen, "%.*s", (int)le16_to_cpu(x->name_len), (const char *)x->data);
	return out;
}

static const char *link_name(const struct csv_d_attr *a, char *out, size_t outlen)
{
	const struct csv_d_attr_name *n = attr_payload_const(a);
	snprintf(out, outlen, "%.*s", (int)le16_to_cpu(n->name_len), (const char *)n->name);
	return out;
}

static unsigned count_attrs(recbuf *rb)
{
	unsigned n = 0;
	for (struct csv_d_attr *a = record_attr_next(rb, NULL); a; a = record_attr_next(rb, a))
		n++;
	return n;
}

/* A file with two links, resident data and two extended attributes. */
static void make_rich(recbuf *rb)
{
	new_file(rb);
	ck_assert_int_eq(record_name_add(rb, PARENT, "file.txt", 8), 0);
	ck_assert_int_eq(record_name_add(rb, CSV_REF(77, 2), "hard-link", 9), 0);
	uint8_t data[100];
	for (int i = 0; i < 100; i++)
		data[i] = (uint8_t)(i + 1);
	ck_assert_int_eq(record_data_set_resident(rb, data, sizeof(data)), 0);
	add_xattr(rb, "user.a", "1");
	add_xattr(rb, "security.selinux", "system_u:object_r:etc_t:s0");
	require_valid(rb, RECNO);
}

/* ---- record_init ----------------------------------------------------------- */

START_TEST(test_init)
{
	recbuf rb, want;
	memset(&rb, 0xee, sizeof(rb));
	record_init(&rb, 0x0000123456789abcull, 7, CSV_REC_IN_USE | CSV_REC_DIRECTORY, S_IFDIR | 0755);

	memset(&want, 0, sizeof(want));
	want.r.recno = cpu_to_le64(0x0000123456789abcull);
	want.r.seq = cpu_to_le16(7);
	want.r.flags = cpu_to_le16(CSV_REC_IN_USE | CSV_REC_DIRECTORY);
	want.r.mode = cpu_to_le32(S_IFDIR | 0755);
	want.r.attr_offset = cpu_to_le16(CSV_RECORD_ATTR_OFFSET);
	ck_assert_msg(memcmp(&rb, &want, sizeof(rb)) == 0, "record_init left other bytes than its fields set");

	require_valid(&rb, 0x0000123456789abcull);
	ck_assert(record_in_use(&rb));
	ck_assert_uint_eq(record_ref(&rb), CSV_REF(0x0000123456789abcull, 7));
	ck_assert_uint_eq(record_attr_space(&rb), CSV_RECORD_ATTR_SPACE);
	ck_assert_ptr_null(record_attr_next(&rb, NULL));
	ck_assert_ptr_null(record_attr_find(&rb, CSV_ATTR_NAME, 0));

	/* A free record, sequence 0 allowed. */
	record_init(&rb, 99, 0, 0, 0);
	require_valid(&rb, 99);
	ck_assert(!record_in_use(&rb));
}
END_TEST

/* ---- Attributes ------------------------------------------------------------ */

/* Attributes are kept sorted by type; one added after others of its type
 * goes after them, so the nth of a type is the nth added. */
START_TEST(test_attr_add_sorted)
{
	recbuf rb;
	char s[64];

	new_file(&rb);
	add_xattr(&rb, "user.first", "x");
	ck_assert_int_eq(record_name_add(&rb, PARENT, "one", 3), 0);
	ck_assert_int_eq(record_data_set_resident(&rb, "hello", 5), 0);
	ck_assert_int_eq(record_name_add(&rb, PARENT, "two", 3), 0);
	add_xattr(&rb, "user.second", "y");
	ck_assert_int_eq(record_name_add(&rb, PARENT, "three", 5), 0);
	require_valid(&rb, RECNO);

	const uint16_t types[] = { CSV_ATTR_NAME, CSV_ATTR_NAME, CSV_ATTR_NAME, CSV_ATTR_DATA,
				   CSV_ATTR_XATTR, CSV_ATTR_XATTR };
	unsigned i = 0;
	for (struct csv_d_attr *a = record_attr_next(&rb, NULL); a; a = record_attr_next(&rb, a), i++) {
		ck_assert_uint_lt(i, 6);
		ck_assert_msg(le16_to_cpu(a->type) == types[i], "attribute %u has type %u, expected %u", i,
			      le16_to_cpu(a->type), types[i]);
	}
	ck_assert_uint_eq(i, 6);

	ck_assert_str_eq(link_name(record_attr_find(&rb, CSV_ATTR_NAME, 0), s, sizeof(s)), "one");
	ck_assert_str_eq(link_name(record_attr_find(&rb, CSV_ATTR_NAME, 1), s, sizeof(s)), "two");
	ck_assert_str_eq(link_name(record_attr_find(&rb, CSV_ATTR_NAME, 2), s, sizeof(s)), "three");
	ck_assert_ptr_null(record_attr_find(&rb, CSV_ATTR_NAME, 3));
	ck_assert_str_eq(xattr_name(record_attr_find(&rb, CSV_ATTR_XATTR, 0), s, sizeof(s)), "user.first");
	ck_assert_str_eq(xattr_name(record_attr_find(&rb, CSV_ATTR_XATTR, 1), s, sizeof(s)), "user.second");
	ck_assert_ptr_null(record_attr_find(&rb, CSV_ATTR_XATTR, 2));
	ck_assert_ptr_nonnull(record_attr_find(&rb, CSV_ATTR_DATA, 0));
	ck_assert_ptr_null(record_attr_find(&rb, CSV_ATTR_DATA, 1));
	ck_assert_ptr_null(record_attr_find(&rb, CSV_ATTR_INDEX_ROOT, 0));
	ck_assert_ptr_null(record_attr_find(&rb, 99, 0));
	/* The const variant finds the same. */
	ck_assert_ptr_eq(record_attr_find_const(&rb, CSV_ATTR_XATTR, 1), record_attr_find(&rb, CSV_ATTR_XATTR, 1));
}
END_TEST

/* Lengths are header + payload rounded up to 8; the payload starts zeroed
 * and *ret_payload points at it; space shrinks by the length. */
START_TEST(test_attr_add_lengths_and_space)
{
	recbuf rb;
	const uint32_t payloads[] = { 0, 1, 7, 8, 9, 15, 16, 100 };
	size_t space = CSV_RECORD_ATTR_SPACE;

	new_file(&rb);
	for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
		void *p;
		ck_assert_int_eq(record_attr_add(&rb, CSV_ATTR_XATTR, payloads[i], &p), 0);
		struct csv_d_attr *a = record_attr_find(&rb, CSV_ATTR_XATTR, (unsigned)i);
		ck_assert_ptr_nonnull(a);
		ck_assert_ptr_eq(p, attr_payload(a));
		uint32_t len = le32_to_cpu(a->length);
		ck_assert_uint_eq(len, (payloads[i] + 8 + 7) / 8 * 8);
		ck_assert_uint_eq(attr_payload_len(a), len - 8);
		ck_assert_uint_eq(le16_to_cpu(a->flags), 0);
		for (uint32_t k = 0; k < len - 8; k++)
			ck_assert_uint_eq(((uint8_t *)p)[k], 0);
		space -= len;
		ck_assert_uint_eq(record_attr_space(&rb), space);
		ck_assert_uint_eq(le16_to_cpu(rb.r.attr_used), CSV_RECORD_ATTR_SPACE - space);
		/* Write the payload, so that a later add that clobbered it shows. */
		memset(p, (int)(0x10 + i), payloads[i]);
	}
	for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
		const uint8_t *p = attr_payload(record_attr_find(&rb, CSV_ATTR_XATTR, (unsigned)i));
		for (uint32_t k = 0; k < payloads[i]; k++)
			ck_assert_uint_eq(p[k], 0x10 + i);
	}
}
END_TEST

/* Filling the record to the last byte, then -ENOSPC with nothing changed. */
START_TEST(test_attr_add_nospc)
{
	recbuf rb, before;
	void *p = NULL;

	new_file(&rb);
	ck_assert_int_eq(record_attr_add(&rb, CSV_ATTR_DATA, CSV_RECORD_ATTR_SPACE - 16 - 8, &p), 0);
	ck_assert_uint_eq(record_attr_space(&rb), 16);
	ck_assert_int_eq(record_attr_add(&rb, CSV_ATTR_XATTR, 8, &p), 0);
	ck_assert_uint_eq(record_attr_space(&rb), 0);
	ck_assert_uint_eq(le16_to_cpu(rb.r.attr_used), CSV_RECORD_ATTR_SPACE);

	before = rb;
	p = NULL;
	ck_assert_int_eq(record_attr_add(&rb, CSV_ATTR_NAME, 0, &p), -ENOSPC);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(record_attr_add(&rb, CSV_ATTR_XATTR, 1, NULL), -ENOSPC);
	ck_assert(memcmp(&rb, &before, sizeof(rb)) == 0);

	/* Sizes that would wrap a 32-bit length. */
	new_file(&rb);
	before = rb;
	const uint32_t huge[] = { CSV_RECORD_ATTR_SPACE - 7, CSV_RECORD_ATTR_SPACE, 65536, UINT32_MAX - 7,
				  UINT32_MAX - 3, UINT32_MAX };
	for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
		ck_assert_msg(record_attr_add(&rb, CSV_ATTR_XATTR, huge[i], &p) == -ENOSPC,
			      "a payload of %u bytes was accepted", huge[i]);
		ck_assert(memcmp(&rb, &before, sizeof(rb)) == 0);
	}
	/* The largest payload that fits an empty record. */
	ck_assert_int_eq(record_attr_add(&rb, CSV_ATTR_XATTR, CSV_RECORD_ATTR_SPACE - 8, &p), 0);
	ck_assert_uint_eq(record_attr_space(&rb), 0);
}
END_TEST

START_TEST(test_attr_remove)
{
	recbuf rb;
	char s[64];

	make_rich(&rb);
	const size_t used = le16_to_cpu(rb.r.attr_used);
	ck_assert_uint_eq(count_attrs(&rb), 5);

	/* The middle one: the DATA attribute. */
	struct csv_d_attr *a = record_attr_find(&rb, CSV_ATTR_DATA, 0);
	const uint32_t len = le32_to_cpu(a->length);
	record_attr_remove(&rb, a);
	ck_assert_uint_eq(le16_to_cpu(rb.r.attr_used), used - len);
	ck_assert_uint_eq(record_attr_space(&rb), CSV_RECORD_ATTR_SPACE - (used - len));
	ck_assert_ptr_null(record_attr_find(&rb, CSV_ATTR_DATA, 0));
	ck_assert_uint_eq(count_attrs(&rb), 4);
	ck_assert_str_eq(link_name(record_attr_find(&rb, CSV_ATTR_NAME, 1), s, sizeof(s)), "hard-link");
	ck_assert_str_eq(xattr_name(record_attr_find(&rb, CSV_ATTR_XATTR, 0), s, sizeof(s)), "user.a");
	ck_assert_str_eq(xattr_name(record_attr_find(&rb, CSV_ATTR_XATTR, 1), s, sizeof(s)), "security.selinux");
	require_valid(&rb, RECNO); /* the freed tail is zero */

	/* The first and the last. */
	record_attr_remove(&rb, record_attr_find(&rb, CSV_ATTR_NAME, 0));
	record_attr_remove(&rb, record_attr_find(&rb, CSV_ATTR_XATTR, 1));
	require_valid(&rb, RECNO);
	ck_assert_uint_eq(count_attrs(&rb), 2);
	ck_assert_str_eq(link_name(record_attr_find(&rb, CSV_ATTR_NAME, 0), s, sizeof(s)), "hard-link");
	ck_assert_str_eq(xattr_name(record_attr_find(&rb, CSV_ATTR_XATTR, 0), s, sizeof(s)), "user.a");

	/* All of them: back to an empty record. */
	while ((a = record_attr_next(&rb, NULL)))
		record_attr_remove(&rb, a);
	ck_assert_uint_eq(record_attr_space(&rb), CSV_RECORD_ATTR_SPACE);
	recbuf empty;
	new_file(&empty);
	ck_assert(memcmp(&rb, &empty, sizeof(rb)) == 0);
}
END_TEST

START_TEST(test_attr_resize)
{
	recbuf rb, before;
	char s[64];
	void *p;

	make_rich(&rb);
	struct csv_d_attr *a = record_attr_find(&rb, CSV_ATTR_NAME, 1); /* "hard-link", then DATA... */
	const uint32_t old_plen = attr_payload_len(a);
	const size_t used = le16_to_cpu(rb.r.attr_used);
	uint8_t payload[64];
	memcpy(payload, attr_payload(a), old_plen);

	/* Grow: the payload keeps its bytes, the new ones are zero, the
	 * attributes after it move intact. */
	ck_assert_int_eq(record_attr_resize(&rb, a, 200, &p), 0);
	a = record_attr_find(&rb, CSV_ATTR_NAME, 1);
	ck_assert_ptr_eq(p, attr_payload(a));
	ck_assert_uint_eq(le32_to_cpu(a->length), 208);
	ck_assert(memcmp(p, payload, old_plen) == 0);
	for (uint32_t k = old_plen; k < 200; k++)
		ck_assert_uint_eq(((uint8_t *)p)[k], 0);
	ck_assert_uint_eq(le16_to_cpu(rb.r.attr_used), used - (old_plen + 8) + 208);
	ck_assert_str_eq(xattr_name(record_attr_find(&rb, CSV_ATTR_XATTR, 1), s, sizeof(s)), "security.selinux");
	const struct csv_d_attr_data *d = attr_payload(record_attr_find(&rb, CSV_ATTR_DATA, 0));
	ck_assert_uint_eq(le32_to_cpu(d->count), 100);
	ck_assert_uint_eq(((const uint8_t *)(d + 1))[99], 100);
	require_valid(&rb, RECNO);

	/* Shrink to 13 bytes (length 24): the first bytes stay, the padding
	 * after them is zero, and so is the freed tail of the record. */
	ck_assert_int_eq(record_attr_resize(&rb, a, 13, &p), 0);
	a = record_attr_find(&rb, CSV_ATTR_NAME, 1);
	ck_assert_uint_eq(le32_to_cpu(a->length), 24);
	ck_assert(memcmp(p, payload, 13) == 0);
	for (uint32_t k = 13; k < 16; k++)
		ck_assert_uint_eq(((uint8_t *)p)[k], 0);
	ck_assert_uint_eq(le16_to_cpu(rb.r.attr_used), used - (old_plen + 8) + 24);
	ck_assert_str_eq(xattr_name(record_attr_find(&rb, CSV_ATTR_XATTR, 1), s, sizeof(s)), "security.selinux");
	/* Cut the name to what 13 bytes hold. */
	((struct csv_d_attr_name *)p)->name_len = cpu_to_le16(3);
	require_valid(&rb, RECNO);
	ck_assert_str_eq(link_name(a, s, sizeof(s)), "har");

	/* The same rounded length: only the padding changes. */
	((struct csv_d_attr_name *)p)->name_len = cpu_to_le16(1);
	ck_assert_int_eq(record_attr_resize(&rb, a, 11, &p), 0);
	ck_assert_uint_eq(le32_to_cpu(a->length), 24);
	ck_assert_uint_eq(((uint8_t *)p)[11], 0);
	ck_assert_uint_eq(((uint8_t *)p)[12], 0);
	require_valid(&rb, RECNO);

	/* Too big: -ENOSPC and not one byte changed. */
	before = rb;
	const uint32_t plen = attr_payload_len(a);
	const uint32_t too_big[] = { plen + (uint32_t)record_attr_space(&rb) + 1, CSV_RECORD_ATTR_SPACE,
				     UINT32_MAX - 7, UINT32_MAX };
	for (size_t i = 0; i < sizeof(too_big) / sizeof(too_big[0]); i++) {
		ck_assert_msg(record_attr_resize(&rb, a, too_big[i], &p) == -ENOSPC, "resize to %u accepted", too_big[i]);
		ck_assert_msg(memcmp(&rb, &before, sizeof(rb)) == 0, "a refused resize to %u changed the record",
			      too_big[i]);
	}
	/* Exactly the free space: fits, and the record is full. */
	const uint32_t fit = (uint32_t)(le32_to_cpu(a->length) - 8 + record_attr_space(&rb));
	ck_assert_int_eq(record_attr_resize(&rb, a, fit, &p), 0);
	ck_assert_uint_eq(record_attr_space(&rb), 0);
	ck_assert_str_eq(xattr_name(record_attr_find(&rb, CSV_ATTR_XATTR, 1), s, sizeof(s)), "security.selinux");
}
END_TEST

/* ---- Links ---------------------------------------------------------------- */

START_TEST(test_name_add_remove)
{
	recbuf rb, before;
	char s[300];

	new_file(&rb);
	ck_assert_int_eq(record_name_add(&rb, PARENT, "foo", 3), 0);
	ck_assert_int_eq(record_name_add(&rb, CSV_REF(50, 9), "foo", 3), 0);
	ck_assert_int_eq(record_name_add(&rb, PARENT, "bar", 3), 0);
	require_valid(&rb, RECNO);

	const struct csv_d_attr *a = record_attr_find(&rb, CSV_ATTR_NAME, 1);
	const struct csv_d_attr_name *n = attr_payload_const(a);
	ck_assert_uint_eq(le64_to_cpu(n->parent), CSV_REF(50, 9));
	ck_assert_uint_eq(le16_to_cpu(n->name_len), 3);
	ck_assert(memcmp(n->name, "foo", 3) == 0);

	/* Only an exact (parent, name) removes a link. */
	before = rb;
	ck_assert_int_eq(record_name_remove(&rb, PARENT, "fo", 2), -ENOENT);
	ck_assert_int_eq(record_name_remove(&rb, PARENT, "fooo", 4), -ENOENT);
	ck_assert_int_eq(record_name_remove(&rb, PARENT, "FOO", 3), -ENOENT);
	ck_assert_int_eq(record_name_remove(&rb, CSV_REF(51, 9), "foo", 3), -ENOENT);
	ck_assert_int_eq(record_name_remove(&rb, CSV_REF(50, 8), "foo", 3), -ENOENT); /* stale reference */
	ck_assert(memcmp(&rb, &before, sizeof(rb)) == 0);

	ck_assert_int_eq(record_name_remove(&rb, CSV_REF(50, 9), "foo", 3), 0);
	ck_assert_int_eq(record_name_remove(&rb, CSV_REF(50, 9), "foo", 3), -ENOENT);
	require_valid(&rb, RECNO);
	ck_assert_uint_eq(count_attrs(&rb), 2);
	ck_assert_str_eq(link_name(record_attr_find(&rb, CSV_ATTR_NAME, 0), s, sizeof(s)), "foo");
	ck_assert_str_eq(link_name(record_attr_find(&rb, CSV_ATTR_NAME, 1), s, sizeof(s)), "bar");
	ck_assert_int_eq(record_name_remove(&rb, PARENT, "bar", 3), 0);
	ck_assert_int_eq(record_name_remove(&rb, PARENT, "foo", 3), 0);
	ck_assert_uint_eq(count_attrs(&rb), 0);
	ck_assert_int_eq(record_name_remove(&rb, PARENT, "foo", 3), -ENOENT);
}
END_TEST

START_TEST(test_name_lengths)
{
	recbuf rb, before;
	char name[300];
	memset(name, 'n', sizeof(name));

	new_file(&rb);
	before = rb;
	ck_assert_int_eq(record_name_add(&rb, PARENT, name, 0), -ENAMETOOLONG);
	ck_assert_int_eq(record_name_add(&rb, PARENT, name, CSV_NAME_MAX + 1), -ENAMETOOLONG);
	ck_assert_int_eq(record_name_add(&rb, PARENT, name, 65536 + 5), -ENAMETOOLONG); /* not cut to 16 bits */
	ck_assert(memcmp(&rb, &before, sizeof(rb)) == 0);

	ck_assert_int_eq(record_name_add(&rb, PARENT, name, CSV_NAME_MAX), 0);
	ck_assert_int_eq(record_name_add(&rb, PARENT, name, 1), 0);
	require_valid(&rb, RECNO);
	ck_assert_uint_eq(le16_to_cpu(((const struct csv_d_attr_name *)
				       attr_payload(record_attr_find(&rb, CSV_ATTR_NAME, 0)))->name_len), CSV_NAME_MAX);
	ck_assert_int_eq(record_name_remove(&rb, PARENT, name, CSV_NAME_MAX), 0);
	ck_assert_int_eq(record_name_remove(&rb, PARENT, name, 1), 0);

	/* Links until the record is full: then -ENOSPC, nothing changed. */
	unsigned links = 0;
	int r;
	while ((r = record_name_add(&rb, CSV_REF(100 + links, 1), name, CSV_NAME_MAX)) == 0)
		links++;
	ck_assert_int_eq(r, -ENOSPC);
	ck_assert_uint_eq(links, CSV_RECORD_ATTR_SPACE / ((8 + 10 + CSV_NAME_MAX + 7) / 8 * 8));
	require_valid(&rb, RECNO);
	before = rb;
	ck_assert_int_eq(record_name_add(&rb, PARENT, name, CSV_NAME_MAX), -ENOSPC);
	ck_assert(memcmp(&rb, &before, sizeof(rb)) == 0);
}
END_TEST

/* ---- Resident data ---------------------------------------------------------- */

static void require_resident(recbuf *rb, const void *data, uint32_t len)
{
	const struct csv_d_attr *a = record_attr_find(rb, CSV_ATTR_DATA, 0);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_null(record_attr_find(rb, CSV_ATTR_DATA, 1));
	const struct csv_d_attr_data *d = attr_payload_const(a);
	ck_assert_uint_eq(le16_to_cpu(d->form), CSV_DATA_RESIDENT);
	ck_assert_uint_eq(le32_to_cpu(d->count), len);
	ck_assert_uint_ge(attr_payload_len(a), sizeof(*d) + len);
	ck_assert(len == 0 || memcmp(d + 1, data, len) == 0);
	require_valid(rb, RECNO);
}

START_TEST(test_data_resident)
{
	recbuf rb, before;
	uint8_t data[CSV_RECORD_ATTR_SPACE];
	char s[64];

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 13 + 5);
	new_file(&rb);
	ck_assert_int_eq(record_name_add(&rb, PARENT, "f", 1), 0);
	add_xattr(&rb, "user.after", "data");

	ck_assert_int_eq(record_data_set_resident(&rb, data, 100), 0);
	require_resident(&rb, data, 100);
	/* Longer, shorter, empty: one DATA attribute, the neighbours intact. */
	ck_assert_int_eq(record_data_set_resident(&rb, data + 1, 1000), 0);
	require_resident(&rb, data + 1, 1000);
	ck_assert_int_eq(record_data_set_resident(&rb, data + 2, 3), 0);
	require_resident(&rb, data + 2, 3);
	ck_assert_int_eq(record_data_set_resident(&rb, NULL, 0), 0);
	require_resident(&rb, NULL, 0);
	ck_assert_str_eq(link_name(record_attr_find(&rb, CSV_ATTR_NAME, 0), s, sizeof(s)), "f");
	ck_assert_str_eq(xattr_name(record_attr_find(&rb, CSV_ATTR_XATTR, 0), s, sizeof(s)), "user.after");

	/* All the room there is, then one byte more: -ENOSPC, unchanged. */
	const uint32_t max = (uint32_t)(record_attr_space(&rb) + le32_to_cpu(record_attr_find(&rb, CSV_ATTR_DATA, 0)->length)
				        - 8 - sizeof(struct csv_d_attr_data));
	ck_assert_int_eq(record_data_set_resident(&rb, data, max), 0);
	require_resident(&rb, data, max);
	ck_assert_uint_eq(record_attr_space(&rb), 0);
	ck_assert_int_eq(record_data_set_resident(&rb, data, 10), 0);
	before = rb;
	ck_assert_int_eq(record_data_set_resident(&rb, data, max + 1), -ENOSPC);
	ck_assert(memcmp(&rb, &before, sizeof(rb)) == 0);

	/* In a record without DATA, too: -ENOSPC leaves no attribute behind. */
	new_file(&rb);
	before = rb;
	ck_assert_int_eq(record_data_set_resident(&rb, data, CSV_RECORD_ATTR_SPACE - 15), -ENOSPC);
	ck_assert(memcmp(&rb, &before, sizeof(rb)) == 0);
	ck_assert_int_eq(record_data_set_resident(&rb, data, CSV_RECORD_ATTR_SPACE - 16), 0);
	require_resident(&rb, data, CSV_RECORD_ATTR_SPACE - 16);
}
END_TEST

/* A resident length near 4 GiB is refused with -ENOSPC: the payload size
 * must not wrap in 32 bits and let memcpy() run past the record. */
START_TEST(test_data_resident_huge_len)
{
	recbuf rb, before;
	static const uint8_t data[64];

	new_file(&rb);
	before = rb;
	int r = record_data_set_resident(&rb, data, UINT32_MAX - 7);
	ck_assert_int_eq(r, -ENOSPC);
	ck_assert(memcmp(&rb, &before, sizeof(rb)) == 0);
	ck_assert_int_eq(record_data_set_resident(&rb, data, 10), 0);
	before = rb;
	r = record_data_set_resident(&rb, data, UINT32_MAX - 3);
	ck_assert_int_eq(r, -ENOSPC);
	ck_assert(memcmp(&rb, &before, sizeof(rb)) == 0);
}
END_TEST

/* ---- record_verify: each refusal -------------------------------------------- */

START_TEST(test_verify_valid_kinds)
{
	recbuf rb;
	void *p;

	make_rich(&rb);
	require_valid(&rb, RECNO);
	/* A directory with its index root. */
	record_init(&rb, CSV_RECNO_ROOT, 1, CSV_REC_IN_USE | CSV_REC_DIRECTORY | CSV_REC_SYSTEM, S_IFDIR | 0755);
	ck_assert_int_eq(record_attr_add(&rb, CSV_ATTR_INDEX_ROOT, CSV_INDEX_ROOT_BYTES, &p), 0);
	require_valid(&rb, CSV_RECNO_ROOT);
	/* DATA as runs and as extent references. */
	new_file(&rb);
	struct csv_d_attr_data *d;
	ck_assert_int_eq(record_attr_add(&rb, CSV_ATTR_DATA, sizeof(*d) + 3 * sizeof(struct csv_d_run), (void **)&d), 0);
	d->form = cpu_to_le16(CSV_DATA_RUNS);
	d->count = cpu_to_le32(3);
	require_valid(&rb, RECNO);
	new_file(&rb);
	ck_assert_int_eq(record_attr_add(&rb, CSV_ATTR_DATA, sizeof(*d) + 5 * sizeof(struct csv_d_extent_ref), (void **)&d), 0);
	d->form = cpu_to_le16(CSV_DATA_EXTENTS);
	d->count = cpu_to_le32(5);
	require_valid(&rb, RECNO);
	/* An orphan: in use, no link. */
	record_init(&rb, RECNO, 9, CSV_REC_IN_USE | CSV_REC_ORPHAN, S_IFREG | 0600);
	require_valid(&rb, RECNO);
}
END_TEST

START_TEST(test_verify_header_fields)
{
	recbuf rb;

	make_rich(&rb);
	require_refused(&rb, RECNO + 1, "record number");
	require_refused(&rb, RECNO | (1ull << 40), "record number");

	make_rich(&rb);
	rb.r.flags = cpu_to_le16(CSV_REC_IN_USE | 0x10);
	require_refused(&rb, RECNO, "flags");
	rb.r.flags = cpu_to_le16(CSV_REC_IN_USE | 0x8000);
	require_refused(&rb, RECNO, "flags");

	make_rich(&rb);
	rb.r.seq = cpu_to_le16(0);
	require_refused(&rb, RECNO, "sequence");

	make_rich(&rb);
	rb.r.attr_offset = cpu_to_le16(CSV_RECORD_ATTR_OFFSET + 8);
	require_refused(&rb, RECNO, "offset");
	rb.r.attr_offset = cpu_to_le16(0);
	require_refused(&rb, RECNO, "offset");

	/* attr_used not a multiple of 8, or beyond the record. */
	make_rich(&rb);
	const uint16_t used = le16_to_cpu(rb.r.attr_used);
	rb.r.attr_used = cpu_to_le16(used - 4);
	require_refused(&rb, RECNO, "attribute area");
	rb.r.attr_used = cpu_to_le16(CSV_RECORD_ATTR_SPACE + 8);
	require_refused(&rb, RECNO, "attribute area");
	rb.r.attr_used = cpu_to_le16(0xffff);
	require_refused(&rb, RECNO, "attribute area");

	/* A free record that still holds attributes. */
	make_rich(&rb);
	rb.r.flags = cpu_to_le16(0);
	require_refused(&rb, RECNO, "free");
}
END_TEST

START_TEST(test_verify_attr_lengths)
{
	recbuf rb;
	const uint32_t bad[] = { 0, 4, 12, 17 };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		make_rich(&rb);
		struct csv_d_attr *a = record_attr_find(&rb, CSV_ATTR_DATA, 0);
		a->length = cpu_to_le32(bad[i]);
		require_refused(&rb, RECNO, "length");
	}
	/* Overflowing attr_used: the last attribute, and a huge length that
	 * would wrap a pointer. */
	make_rich(&rb);
	struct csv_d_attr *last = record_attr_find(&rb, CSV_ATTR_XATTR, 1);
	last->length = cpu_to_le32(le32_to_cpu(last->length) + 8);
	require_refused(&rb, RECNO, "length");
	make_rich(&rb);
	record_attr_find(&rb, CSV_ATTR_NAME, 0)->length = cpu_to_le32(0xfffffff8u);
	require_refused(&rb, RECNO, "length");
	/* An attribute that overflows attr_used but not the record. */
	make_rich(&rb);
	rb.r.attr_used = cpu_to_le16(le16_to_cpu(rb.r.attr_used) - 8);
	require_refused(&rb, RECNO, "length");
}
END_TEST

/* Swaps the first two attributes of the record in place. */
static void swap_first_two(recbuf *rb)
{
	struct csv_d_attr *a = record_attr_next(rb, NULL), *b = record_attr_next(rb, a);
	uint32_t la = le32_to_cpu(a->length), lb = le32_to_cpu(b->length);
	uint8_t tmp[CSV_RECORD_SIZE];
	memcpy(tmp, b, lb);
	memcpy(tmp + lb, a, la);
	memcpy(a, tmp, la + lb);
}

START_TEST(test_verify_order_and_type)
{
	recbuf rb;

	/* XATTR before NAME. */
	new_file(&rb);
	ck_assert_int_eq(record_name_add(&rb, PARENT, "n", 1), 0);
	add_xattr(&rb, "user.x", "v");
	require_valid(&rb, RECNO);
	swap_first_two(&rb);
	require_refused(&rb, RECNO, "order");

	/* DATA before NAME. */
	new_file(&rb);
	ck_assert_int_eq(record_name_add(&rb, PARENT, "n", 1), 0);
	ck_assert_int_eq(record_data_set_resident(&rb, "abc", 3), 0);
	swap_first_two(&rb);
	require_refused(&rb, RECNO, "order");

	/* Unknown types: at the end (in order), at the start, and 0. */
	const uint16_t unknown[] = { 5, 0x100, 0xffff };
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		make_rich(&rb);
		ck_assert_int_eq(record_attr_add(&rb, unknown[i], 8, NULL), 0);
		require_refused(&rb, RECNO, "unknown attribute type");
	}
	new_file(&rb);
	ck_assert_int_eq(record_attr_add(&rb, 0, 8, NULL), 0);
	ck_assert_int_eq(record_name_add(&rb, PARENT, "n", 1), 0);
	require_refused(&rb, RECNO, "unknown attribute type");

	/* Reserved attribute flags. */
	make_rich(&rb);
	record_attr_find(&rb, CSV_ATTR_XATTR, 0)->flags = cpu_to_le16(1);
	require_refused(&rb, RECNO, "reserved");
}
END_TEST

/* A record with one NAME attribute of payload plen, returned for editing. */
static struct csv_d_attr_name *one_name(recbuf *rb, uint32_t plen)
{
	struct csv_d_attr_name *n;
	new_file(rb);
	ck_assert_int_eq(record_attr_add(rb, CSV_ATTR_NAME, plen, (void **)&n), 0);
	if (plen >= sizeof(n->parent))
		n->parent = cpu_to_le64(PARENT);
	return n;
}

START_TEST(test_verify_name)
{
	recbuf rb;
	struct csv_d_attr_name *n;

	n = one_name(&rb, 10 + 5);
	n->name_len = cpu_to_le16(5);
	memcpy(n->name, "a/b.c", 5);
	require_refused(&rb, RECNO, "'/'");
	memcpy(n->name, "/abcd", 5);
	require_refused(&rb, RECNO, "'/'");
	memcpy(n->name, "ab\0cd", 5);
	require_refused(&rb, RECNO, "NUL");
	memcpy(n->name, "abcd\0", 5);
	require_refused(&rb, RECNO, "NUL");
	memcpy(n->name, "abcde", 5);
	require_valid(&rb, RECNO);

	n->name_len = cpu_to_le16(0);
	require_refused(&rb, RECNO, "NAME");

	/* Longer than its payload. */
	n->name_len = cpu_to_le16(7);
	require_refused(&rb, RECNO, "NAME");

	/* 256 bytes, with room for them. */
	n = one_name(&rb, 10 + 300);
	memset(n->name, 'x', 300);
	n->name_len = cpu_to_le16(CSV_NAME_MAX);
	require_valid(&rb, RECNO);
	n->name_len = cpu_to_le16(CSV_NAME_MAX + 1);
	require_refused(&rb, RECNO, "NAME");
	n->name_len = cpu_to_le16(0xffff);
	require_refused(&rb, RECNO, "NAME");

	/* A payload too short for the fixed part. */
	one_name(&rb, 8);
	require_refused(&rb, RECNO, "NAME");
	one_name(&rb, 0);
	require_refused(&rb, RECNO, "NAME");
}
END_TEST

/* A record with one DATA attribute of payload plen. */
static struct csv_d_attr_data *one_data(recbuf *rb, uint32_t plen)
{
	struct csv_d_attr_data *d;
	new_file(rb);
	ck_assert_int_eq(record_attr_add(rb, CSV_ATTR_DATA, plen, (void **)&d), 0);
	return d;
}

START_TEST(test_verify_data)
{
	recbuf rb;
	struct csv_d_attr_data *d;

	/* Unknown forms. */
	const uint16_t forms[] = { 0, 4, 0xffff };
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		d = one_data(&rb, 8 + 48);
		d->form = cpu_to_le16(forms[i]);
		require_refused(&rb, RECNO, "form");
	}

	/* Counts that overflow the attribute, per form; the largest that fits
	 * passes. The payload is 8 + 48 bytes: 48 resident bytes, 2 runs, or
	 * 3 extent references. */
	const struct { uint16_t form; uint32_t fits; } f[] = {
		{ CSV_DATA_RESIDENT, 48 }, { CSV_DATA_RUNS, 2 }, { CSV_DATA_EXTENTS, 3 },
	};
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		d = one_data(&rb, 8 + 48);
		d->form = cpu_to_le16(f[i].form);
		d->count = cpu_to_le32(f[i].fits);
		require_valid(&rb, RECNO);
		d->count = cpu_to_le32(f[i].fits + 1);
		require_refused(&rb, RECNO, "DATA");
		d->count = cpu_to_le32(UINT32_MAX);
		require_refused(&rb, RECNO, "DATA");
		/* A count whose byte size wraps 32 bits. */
		d->count = cpu_to_le32(0x80000000u);
		require_refused(&rb, RECNO, "DATA");
	}

	/* Too short for the DATA header. */
	d = one_data(&rb, 0);
	require_refused(&rb, RECNO, "DATA");
}
END_TEST

START_TEST(test_verify_index_root)
{
	recbuf rb;
	const uint32_t sizes[] = { 0, 8, CSV_INDEX_ROOT_BYTES - 8, CSV_INDEX_ROOT_BYTES + 8 };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		record_init(&rb, RECNO, 1, CSV_REC_IN_USE | CSV_REC_DIRECTORY, S_IFDIR | 0755);
		ck_assert_int_eq(record_attr_add(&rb, CSV_ATTR_INDEX_ROOT, sizes[i], NULL), 0);
		require_refused(&rb, RECNO, "INDEX_ROOT");
	}
}
END_TEST

START_TEST(test_verify_xattr)
{
	recbuf rb;
	struct csv_d_attr_xattr *x;

	new_file(&rb);
	ck_assert_int_eq(record_attr_add(&rb, CSV_ATTR_XATTR, 8 + 16, (void **)&x), 0);
	memcpy(x->data, "user.k0123456789", 16);
	x->name_len = cpu_to_le16(6);
	x->value_len = cpu_to_le16(10);
	require_valid(&rb, RECNO);
	x->value_len = cpu_to_le16(11);
	require_refused(&rb, RECNO, "XATTR");
	x->value_len = cpu_to_le16(0xffff);
	require_refused(&rb, RECNO, "XATTR");
	x->value_len = cpu_to_le16(0);
	x->name_len = cpu_to_le16(17);
	require_refused(&rb, RECNO, "XATTR");
	x->name_len = cpu_to_le16(0);
	require_refused(&rb, RECNO, "XATTR");
	x->name_len = cpu_to_le16(256);
	require_refused(&rb, RECNO, "XATTR");

	/* Too short for the XATTR header. */
	new_file(&rb);
	ck_assert_int_eq(record_attr_add(&rb, CSV_ATTR_XATTR, 0, NULL), 0);
	require_refused(&rb, RECNO, "XATTR");
}
END_TEST

START_TEST(test_verify_trailing_bytes)
{
	recbuf rb;

	make_rich(&rb);
	const size_t end = CSV_RECORD_ATTR_OFFSET + le16_to_cpu(rb.r.attr_used);
	const size_t offs[] = { end, end + 1, end + 100, CSV_RECORD_SIZE - 1 };
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		make_rich(&rb);
		rb.b[offs[i]] = 0x01;
		require_refused(&rb, RECNO, "non-zero");
	}
	/* In an empty record, the whole attribute area must be zero. */
	new_file(&rb);
	rb.b[CSV_RECORD_ATTR_OFFSET] = 0x80;
	require_refused(&rb, RECNO, "non-zero");
	record_init(&rb, RECNO, 0, 0, 0);
	rb.b[CSV_RECORD_SIZE - 1] = 0x80;
	require_refused(&rb, RECNO, "non-zero");
}
END_TEST

/* ---- The fuzzer --------------------------------------------------------------- */

/* Everything a caller of a verified record relies on, checked from the
 * format's rules without record_verify's code: iteration with
 * record_attr_next stays inside attr_used, every attribute is whole,
 * sorted, of a known type, and its payload is consistent. */
static void require_sound(recbuf *rb, uint64_t iter)
{
	const uint8_t *base = rb->r.attrs;
	const uint32_t used = le16_to_cpu(rb->r.attr_used);
	REQUIRE(used <= CSV_RECORD_ATTR_SPACE && used % 8 == 0, "iter %lu: attr_used %u", (unsigned long)iter, used);
	REQUIRE(record_attr_space(rb) == CSV_RECORD_ATTR_SPACE - used, "iter %lu: space", (unsigned long)iter);

	uint16_t last = 0;
	unsigned n = 0;
	size_t expect = 0;
	for (const struct csv_d_attr *a = record_attr_next_const(rb, NULL); a; a = record_attr_next_const(rb, a)) {
		const size_t off = (size_t)((const uint8_t *)a - base);
		REQUIRE(off == expect, "iter %lu: attribute at %zu, expected %zu", (unsigned long)iter, off, expect);
		REQUIRE(off + sizeof(*a) <= used, "iter %lu: attribute header at %zu past attr_used %u",
			(unsigned long)iter, off, used);
		const uint32_t len = le32_to_cpu(a->length);
		REQUIRE(len >= 8 && len % 8 == 0 && len <= used - off, "iter %lu: attribute at %zu of length %u, used %u",
			(unsigned long)iter, off, len, used);
		const uint16_t type = le16_to_cpu(a->type);
		REQUIRE(type >= CSV_ATTR_NAME && type <= CSV_ATTR_XATTR && type >= last,
			"iter %lu: type %u after %u", (unsigned long)iter, type, last);
		REQUIRE(a->flags.v == 0, "iter %lu: attribute flags", (unsigned long)iter);
		const uint32_t plen = len - 8;
		const uint8_t *p = attr_payload_const(a);
		if (type == CSV_ATTR_NAME) {
			REQUIRE(plen >= 11, "iter %lu: NAME payload %u", (unsigned long)iter, plen);
			const struct csv_d_attr_name *nm = (const void *)p;
			const uint32_t nl = le16_to_cpu(nm->name_len);
			REQUIRE(nl >= 1 && nl <= CSV_NAME_MAX && 10 + nl <= plen, "iter %lu: name_len %u in %u",
				(unsigned long)iter, nl, plen);
			REQUIRE(!memchr(nm->name, '/', nl) && !memchr(nm->name, 0, nl), "iter %lu: name bytes",
				(unsigned long)iter);
		} else if (type == CSV_ATTR_DATA) {
			REQUIRE(plen >= 8, "iter %lu: DATA payload %u", (unsigned long)iter, plen);
			const struct csv_d_attr_data *d = (const void *)p;
			const uint64_t count = le32_to_cpu(d->count);
			const uint16_t form = le16_to_cpu(d->form);
			const uint64_t unit = form == CSV_DATA_RESIDENT ? 1 : form == CSV_DATA_RUNS ? 24 :
					      form == CSV_DATA_EXTENTS ? 16 : 0;
			REQUIRE(unit && count * unit <= plen - 8, "iter %lu: DATA form %u count %lu in %u",
				(unsigned long)iter, form, (unsigned long)count, plen);
		} else if (type == CSV_ATTR_INDEX_ROOT) {
			REQUIRE(plen == CSV_INDEX_ROOT_BYTES, "iter %lu: INDEX_ROOT of %u", (unsigned long)iter, plen);
		} else {
			REQUIRE(plen >= 8, "iter %lu: XATTR payload %u", (unsigned long)iter, plen);
			const struct csv_d_attr_xattr *x = (const void *)p;
			const uint32_t nl = le16_to_cpu(x->name_len), vl = le16_to_cpu(x->value_len);
			REQUIRE(nl >= 1 && nl <= 255 && 8 + nl + vl <= plen, "iter %lu: XATTR %u+%u in %u",
				(unsigned long)iter, nl, vl, plen);
		}
		last = type;
		expect = off + len;
		REQUIRE(++n <= CSV_RECORD_ATTR_SPACE / 8, "iter %lu: iteration does not end", (unsigned long)iter);
	}
	REQUIRE(expect == used, "iter %lu: attributes end at %zu, attr_used %u", (unsigned long)iter, expect, used);
	for (size_t i = CSV_RECORD_ATTR_OFFSET + used; i < CSV_RECORD_SIZE; i++)
		REQUIRE(rb->b[i] == 0, "iter %lu: byte %zu after the attributes", (unsigned long)iter, i);
	REQUIRE(!(used && !(le16_to_cpu(rb->r.flags) & CSV_REC_IN_USE)), "iter %lu: free with attributes",
		(unsigned long)iter);
}

static uint32_t interesting(void)
{
	static const uint32_t v[] = { 0, 1, 7, 8, 9, 10, 11, 16, 24, 255, 256, 2048, 2056, 3904, 3912,
				      0x7fff, 0x8000, 0xfff8, 0xffff, 0x10000, 0x7ffffff8u, 0xfffffff8u, 0xffffffffu };
	return rng() % 4 ? v[rng() % (sizeof(v) / sizeof(v[0]))] : (uint32_t)rng();
}

static void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, v); put16(p + 2, v >> 16); }

/* One random change to the record. */
static void mutate(recbuf *rb)
{
	const uint32_t used = le16_to_cpu(rb->r.attr_used) <= CSV_RECORD_ATTR_SPACE ? le16_to_cpu(rb->r.attr_used) : 0;
	/* An 8-aligned spot inside the attributes (an attribute header, or a
	 * payload's first fields, most likely). */
	const size_t spot = CSV_RECORD_ATTR_OFFSET + (used >= 8 ? (size_t)(rng() % (used / 8)) * 8 : 0);

	switch (rng() % 10) {
	case 0: /* any byte after the block header */
		rb->b[0x30 + rng() % (CSV_RECORD_SIZE - 0x30)] = (uint8_t)rng();
		break;
	case 1: /* a bit in the attributes or just after them */
		rb->b[CSV_RECORD_ATTR_OFFSET + rng() % (used + 16 < CSV_RECORD_ATTR_SPACE ? used + 16 : CSV_RECORD_ATTR_SPACE)]
			^= (uint8_t)(1u << (rng() % 8));
		break;
	case 2: /* an attribute type */
		put16(rb->b + spot, rng() % 2 ? (uint32_t)(rng() % 6) : interesting());
		break;
	case 3: /* an attribute length */
		put32(rb->b + spot + 4, rng() % 2 ? (uint32_t)(8 * (rng() % 64)) : interesting());
		break;
	case 4: { /* a payload field: name_len, form, count, name/value lengths */
		const bool wide = rng() % 2;
		const size_t o = spot + 8 + (wide ? 4 * (rng() % 3) : 2 * (rng() % 6));
		if (o + 4 > CSV_RECORD_SIZE)
			break;
		if (wide)
			put32(rb->b + o, interesting());
		else
			put16(rb->b + o, interesting());
		break;
	}
	case 5: /* attr_used */
		rb->r.attr_used = cpu_to_le16((uint16_t)(rng() % 2 ? (used + 8 * ((int)(rng() % 5) - 2)) & 0xffff
							   : interesting()));
		break;
	case 6: /* attr_offset, flags, sequence */
		if (rng() % 3 == 0)
			rb->r.attr_offset = cpu_to_le16((uint16_t)interesting());
		else if (rng() % 2)
			rb->r.flags = cpu_to_le16((uint16_t)(rng() % 32));
		else
			rb->r.seq = cpu_to_le16((uint16_t)(rng() % 3));
		break;
	case 7: /* a '/' or NUL somewhere in the attributes */
		rb->b[CSV_RECORD_ATTR_OFFSET + rng() % (used ? used : 1)] = rng() % 2 ? '/' : 0;
		break;
	case 8: /* a byte just past the attributes */
		if (CSV_RECORD_ATTR_OFFSET + used < CSV_RECORD_SIZE)
			rb->b[CSV_RECORD_ATTR_OFFSET + used] = (uint8_t)(1 + rng() % 255);
		break;
	default: /* two attribute headers swapped (their first 8 bytes) */
		if (used >= 16) {
			const size_t other = CSV_RECORD_ATTR_OFFSET + (size_t)(rng() % (used / 8)) * 8;
			uint8_t t[8];
			memcpy(t, rb->b + spot, 8);
			memcpy(rb->b + spot, rb->b + other, 8);
			memcpy(rb->b + other, t, 8);
		}
		break;
	}
}

/* Thousands of random mutations of valid records: record_verify never
 * crashes or reads outside the record (ASan/UBSan), answers 0 or -EUCLEAN
 * with a sentence, and what it accepts is sound and stays sound through
 * the attribute operations. */
START_TEST(test_verify_fuzz)
{
	recbuf seeds[3], rb, copy;
	char err[256];
	unsigned long accepted = 0, refused = 0;

	make_rich(&seeds[0]);
	/* A directory with a resident-data twin: INDEX_ROOT and DATA. */
	record_init(&seeds[1], RECNO, 5, CSV_REC_IN_USE | CSV_REC_DIRECTORY, S_IFDIR | 0755);
	ck_assert_int_eq(record_name_add(&seeds[1], PARENT, "dir", 3), 0);
	ck_assert_int_eq(record_attr_add(&seeds[1], CSV_ATTR_INDEX_ROOT, CSV_INDEX_ROOT_BYTES, NULL), 0);
	add_xattr(&seeds[1], "system.posix_acl_default", "0123456789abcdef");
	require_valid(&seeds[1], RECNO);
	/* A small record: one link, runs. */
	new_file(&seeds[2]);
	ck_assert_int_eq(record_name_add(&seeds[2], PARENT, "x", 1), 0);
	struct csv_d_attr_data *d;
	ck_assert_int_eq(record_attr_add(&seeds[2], CSV_ATTR_DATA, 8 + 2 * 24, (void **)&d), 0);
	d->form = cpu_to_le16(CSV_DATA_RUNS);
	d->count = cpu_to_le32(2);
	require_valid(&seeds[2], RECNO);

	rng_seed(0x5eed0001);
	for (uint64_t iter = 0; iter < 200000; iter++) {
		rb = seeds[iter % 3];
		const unsigned nmut = 1 + (unsigned)(rng() % 3);
		for (unsigned k = 0; k < nmut; k++)
			mutate(&rb);
		copy = rb;
		err[0] = '\0';
		int r = record_verify(&rb, RECNO, err, sizeof(err));
		REQUIRE(memcmp(&rb, &copy, sizeof(rb)) == 0, "iter %lu: record_verify changed the record",
			(unsigned long)iter);
		if (r < 0) {
			REQUIRE(r == -EUCLEAN, "iter %lu: record_verify gave %d", (unsigned long)iter, r);
			REQUIRE(strlen(err) > 5, "iter %lu: refused without a sentence", (unsigned long)iter);
			refused++;
			continue;
		}
		accepted++;
		require_sound(&rb, iter);
		if (!record_in_use(&rb))
			continue;
		/* What was accepted stays valid through the operations. */
		int a = record_name_add(&rb, CSV_REF(4242, 1), "fuzz-link", 9);
		REQUIRE(a == 0 || a == -ENOSPC, "iter %lu: name_add gave %d", (unsigned long)iter, a);
		REQUIRE(record_verify(&rb, RECNO, err, sizeof(err)) == 0, "iter %lu: after name_add: %s",
			(unsigned long)iter, err);
		if (a == 0)
			REQUIRE(record_name_remove(&rb, CSV_REF(4242, 1), "fuzz-link", 9) == 0,
				"iter %lu: the added link is gone", (unsigned long)iter);
		REQUIRE(memcmp(&rb, &copy, sizeof(rb)) == 0, "iter %lu: add and remove did not restore the record",
			(unsigned long)iter);
	}
	/* Both answers were exercised, or the fuzzer tests nothing. */
	ck_assert_uint_gt(accepted, 1000);
	ck_assert_uint_gt(refused, 1000);
	fprintf(stderr, "test-record: fuzz: %lu mutated records accepted, %lu refused\n", accepted, refused);
}
END_TEST

/* ---- mode_to_dtype ------------------------------------------------------------ */

START_TEST(test_mode_to_dtype)
{
	const struct { uint32_t mode; uint8_t dt; } m[] = {
		{ S_IFREG, DT_REG }, { S_IFDIR, DT_DIR }, { S_IFLNK, DT_LNK }, { S_IFCHR, DT_CHR },
		{ S_IFBLK, DT_BLK }, { S_IFIFO, DT_FIFO }, { S_IFSOCK, DT_SOCK },
	};
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		ck_assert_uint_eq(mode_to_dtype(m[i].mode), m[i].dt);
		/* Permission, setuid/setgid/sticky bits do not matter. */
		ck_assert_uint_eq(mode_to_dtype(m[i].mode | 07777), m[i].dt);
		ck_assert_uint_eq(mode_to_dtype(m[i].mode | 0644), m[i].dt);
	}
	ck_assert_uint_eq(mode_to_dtype(0), DT_UNKNOWN);
	ck_assert_uint_eq(mode_to_dtype(0755), DT_UNKNOWN);
	ck_assert_uint_eq(mode_to_dtype(S_IFMT), DT_UNKNOWN);
}
END_TEST

static Suite *record_suite(void)
{
	Suite *s = suite_create("record");
	TCase *tc;

	tc = tcase_create("attributes");
	tcase_add_test(tc, test_init);
	tcase_add_test(tc, test_attr_add_sorted);
	tcase_add_test(tc, test_attr_add_lengths_and_space);
	tcase_add_test(tc, test_attr_add_nospc);
	tcase_add_test(tc, test_attr_remove);
	tcase_add_test(tc, test_attr_resize);
	tcase_add_test(tc, test_name_add_remove);
	tcase_add_test(tc, test_name_lengths);
	tcase_add_test(tc, test_data_resident);
	tcase_add_test(tc, test_data_resident_huge_len);
	tcase_add_test(tc, test_mode_to_dtype);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("verify");
	tcase_add_test(tc, test_verify_valid_kinds);
	tcase_add_test(tc, test_verify_header_fields);
	tcase_add_test(tc, test_verify_attr_lengths);
	tcase_add_test(tc, test_verify_order_and_type);
	tcase_add_test(tc, test_verify_name);
	tcase_add_test(tc, test_verify_data);
	tcase_add_test(tc, test_verify_index_root);
	tcase_add_test(tc, test_verify_xattr);
	tcase_add_test(tc, test_verify_trailing_bytes);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("fuzz");
	tcase_add_test(tc, test_verify_fuzz);
	tcase_set_timeout(tc, 240);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(record_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
