/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The report each csv-quorumd multicasts to the others over CPG: its own
 * heartbeat writes per volume (latency, success), which the others cannot
 * see on the disk. Little-endian, versioned; decode checks every length
 * against the message before reading it. */
#pragma once

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "byteorder.h"
#include "state.h"

#define Q_REPORT_MAGIC 0x52515343u  /* "CSQR" in disk order */
#define Q_REPORT_VERSION 1

enum { Q_REPORT_WRITE_OK = 1 << 0 };

struct q_report_hdr {
	le32 magic;       /* 0x00 Q_REPORT_MAGIC */
	le16 version;     /* 0x04 Q_REPORT_VERSION */
	le16 nvol;        /* 0x06 entries that follow */
	le32 node_id;     /* 0x08 the sender */
	le32 reserved;    /* 0x0c zero */
};
static_assert(sizeof(struct q_report_hdr) == 16, "report header size");

struct q_report_ent {
	uint8_t uuid[16];       /* 0x00 the volume */
	le32 write_latency_us;  /* 0x10 of the last write and flush of the own slot */
	le32 flags;             /* 0x14 Q_REPORT_* */
};
static_assert(sizeof(struct q_report_ent) == 24, "report entry size");

#define Q_REPORT_MAX_SIZE (sizeof(struct q_report_hdr) + Q_MAX_VOLUMES * sizeof(struct q_report_ent))

/* Encodes node_id's report from its volumes (identified ones only) into
 * buf of len bytes; *ret_len receives the size. -ENOBUFS if too small. */
int q_report_encode(uint32_t node_id, const struct q_report_vol *vols, uint32_t nvol, void *buf, size_t len,
		    size_t *ret_len);

/* Decodes a report of len bytes: -EBADMSG when it is cut short, too long
 * or not a report, -EPROTONOSUPPORT for another version. On success fills
 * at most max entries of ret_vols and sets *ret_node_id and *ret_nvol. */
int q_report_decode(const void *buf, size_t len, uint32_t *ret_node_id, struct q_report_vol *ret_vols,
		    uint32_t max, uint32_t *ret_nvol);

/* The other CPG message: a fence agent run by the sender confirmed the
 * fence of node target. */
#define Q_FENCED_MAGIC 0x46515343u  /* "CSQF" in disk order */
#define Q_FENCED_VERSION 1

struct q_fenced_msg {
	le32 magic;       /* 0x00 Q_FENCED_MAGIC */
	le16 version;     /* 0x04 Q_FENCED_VERSION */
	le16 reserved;    /* 0x06 zero */
	le32 fencer;      /* 0x08 the sender */
	le32 target;      /* 0x0c the fenced node */
};
static_assert(sizeof(struct q_fenced_msg) == 16, "fenced message size");

/* Whether a CPG message of len bytes starts with the fenced magic. */
bool q_is_fenced_msg(const void *buf, size_t len);
void q_fenced_encode(uint32_t fencer, uint32_t target, struct q_fenced_msg *ret);
/* -EBADMSG when it is not exactly a fenced message, -EPROTONOSUPPORT for
 * another version. */
int q_fenced_decode(const void *buf, size_t len, uint32_t *ret_fencer, uint32_t *ret_target);
