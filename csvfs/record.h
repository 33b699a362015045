/* SPDX-License-Identifier: GPL-2.0-or-later */
/* MFT file records and their attributes, in a 4 KiB record buffer. The
 * functions here work on one record in memory; mft.h reads and writes
 * records on the volume. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format.h"

/* Initializes buf as a record: in use when flags has CSV_REC_IN_USE, with
 * no attributes. The block header is left for sealing. */
void record_init(void *buf, uint64_t recno, uint16_t seq, uint16_t flags, uint32_t mode);

/* Checks a record's fields and attribute list after its block header
 * verified: record number, known flags, attribute bounds, order and sizes,
 * the payload of each attribute type. err receives a sentence naming the
 * problem. Returns 0 or -EUCLEAN. */
int record_verify(const void *buf, uint64_t recno, char *err, size_t errlen);

/* The attribute after prev (NULL: the first), or NULL at the end. Only for
 * records that passed record_verify(). */
struct csv_d_attr *record_attr_next(void *rec, struct csv_d_attr *prev);
const struct csv_d_attr *record_attr_next_const(const void *rec, const struct csv_d_attr *prev);

/* The nth (from 0) attribute of a type, or NULL. */
struct csv_d_attr *record_attr_find(void *rec, uint16_t type, unsigned nth);
const struct csv_d_attr *record_attr_find_const(const void *rec, uint16_t type, unsigned nth);

static inline void *attr_payload(struct csv_d_attr *a) { return (uint8_t *)a + sizeof(*a); }
static inline const void *attr_payload_const(const struct csv_d_attr *a)
{
	return (const uint8_t *)a + sizeof(*a);
}
static inline uint32_t attr_payload_len(const struct csv_d_attr *a)
{
	return le32_to_cpu(a->length) - (uint32_t)sizeof(*a);
}

/* Bytes still free for attributes (headers included). */
size_t record_attr_space(const void *rec);

/* Adds an attribute of payload_len bytes (zeroed) after the others of its
 * type; *ret_payload points at its payload. -ENOSPC when it does not fit. */
int record_attr_add(void *rec, uint16_t type, uint32_t payload_len, void **ret_payload);

/* Removes an attribute. */
void record_attr_remove(void *rec, struct csv_d_attr *a);

/* Changes an attribute's payload size, keeping its first bytes; *ret_payload
 * may move. -ENOSPC when it does not fit (the record is unchanged). */
int record_attr_resize(void *rec, struct csv_d_attr *a, uint32_t payload_len, void **ret_payload);

/* Adds a link (NAME attribute) to parent under name. */
int record_name_add(void *rec, uint64_t parent, const void *name, size_t len);
/* Removes the link to parent under name; -ENOENT if there is none. */
int record_name_remove(void *rec, uint64_t parent, const void *name, size_t len);

/* Sets DATA to resident bytes (creating or resizing the attribute). */
int record_data_set_resident(void *rec, const void *data, uint32_t len);

/* Whether the record describes a file (CSV_REC_IN_USE). */
static inline bool record_in_use(const void *rec)
{
	const struct csv_d_record *r = rec;
	return le16_to_cpu(r->flags) & CSV_REC_IN_USE;
}

/* The file reference (record number and sequence) of a record. */
static inline uint64_t record_ref(const void *rec)
{
	const struct csv_d_record *r = rec;
	return CSV_REF(le64_to_cpu(r->recno), le16_to_cpu(r->seq));
}

/* DT_* for a mode, as directory entries store it. */
uint8_t mode_to_dtype(uint32_t mode);

struct csv_runlist;
struct csv_nodeio;

/* Stores rl as the record's DATA (runs in the record, or extent blocks
 * through io when they do not fit) and sets alloc_clusters. */
int record_data_set_runs(void *rec, struct csv_runlist *rl, struct csv_nodeio *io, uint64_t owner);

/* Decodes the record's DATA runs into ret (an empty list when the record
 * has no DATA); -EINVAL when the data is resident. */
int record_data_get_runs(const void *rec, struct csv_nodeio *io, uint64_t owner, uint64_t total_clusters,
			 struct csv_runlist *ret);
