/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The csvfs on-disk format, all of it. man/csvfs.5 describes the same
 * structures for users; the two change together.
 *
 * Units: a "block" is 4096 bytes, numbered from the start of the LUN; a
 * "cluster" is cluster_size bytes (4 KiB to 64 KiB, a power of two), also
 * numbered from the start of the LUN (logical cluster number, LCN). File
 * data is addressed by virtual cluster number (VCN) within the file.
 * Metadata allocated at run time (directory index nodes, extent blocks)
 * takes one whole cluster and is addressed by the block number of its
 * first block. All integers are little-endian.
 *
 * Every metadata block or node starts with struct csv_d_blkhdr: magic,
 * CRC32C of the whole block/node (seed ~0, crc field zero while computing),
 * its own block number, the volume UUID and the LSN of the journal
 * transaction that wrote it last. Reserved bytes are zero.
 */
#pragma once

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "byteorder.h"

#define CSV_BLOCK_SIZE 4096u
#define CSV_BLOCK_SHIFT 12
#define CSV_RECORD_SIZE 4096u           /* one MFT file record */
#define CSV_MIN_CLUSTER_SIZE 4096u
#define CSV_MAX_CLUSTER_SIZE 65536u
#define CSV_DEFAULT_CLUSTER_SIZE 4096u
#define CSV_MAX_NODES_LIMIT 64u          /* the largest -N mkfs accepts */
#define CSV_DEFAULT_MAX_NODES 16u
#define CSV_LABEL_MAX 64                 /* bytes, NUL padded, no NUL needed */
#define CSV_NAME_MAX 255                 /* bytes in one directory entry name */
#define CSV_VERSION_MAJOR 1
#define CSV_VERSION_MINOR 0

/* Magic numbers: the four ASCII bytes in the comment, in disk order. */
#define CSV_MAGIC(a, b, c, d) \
	((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)
#define CSV_MAGIC_HEADER   CSV_MAGIC('C', 'S', 'V', 'H') /* "CSVH" volume header */
#define CSV_MAGIC_CBITMAP  CSV_MAGIC('C', 'S', 'B', 'C') /* "CSBC" cluster bitmap */
#define CSV_MAGIC_RBITMAP  CSV_MAGIC('C', 'S', 'B', 'R') /* "CSBR" record bitmap */
#define CSV_MAGIC_RECORD   CSV_MAGIC('C', 'S', 'F', 'R') /* "CSFR" MFT file record */
#define CSV_MAGIC_INDEX    CSV_MAGIC('C', 'S', 'I', 'X') /* "CSIX" directory index node */
#define CSV_MAGIC_EXTENT   CSV_MAGIC('C', 'S', 'E', 'X') /* "CSEX" extent block */
#define CSV_MAGIC_JSUPER   CSV_MAGIC('C', 'S', 'J', 'S') /* "CSJS" journal superblock */
#define CSV_MAGIC_JDESC    CSV_MAGIC('C', 'S', 'J', 'D') /* "CSJD" journal descriptor */
#define CSV_MAGIC_JCOMMIT  CSV_MAGIC('C', 'S', 'J', 'C') /* "CSJC" journal commit */
#define CSV_MAGIC_LEASE    CSV_MAGIC('C', 'S', 'L', 'S') /* "CSLS" coordinator lease */
#define CSV_MAGIC_WITNESS  CSV_MAGIC('C', 'S', 'W', 'T') /* "CSWT" disk witness */
#define CSV_MAGIC_HEARTBEAT CSV_MAGIC('C', 'S', 'H', 'B') /* "CSHB" node heartbeat */
#define CSV_MAGIC_MAILBOX  CSV_MAGIC('C', 'S', 'M', 'B') /* "CSMB" node mailbox */

/* ---- Common block header ------------------------------------------- */

struct csv_d_blkhdr {
	le32 magic;          /* 0x00 one of CSV_MAGIC_* */
	le32 crc;            /* 0x04 CRC32C of the block, this field zero */
	le64 blocknr;        /* 0x08 own address in 4 KiB blocks */
	uint8_t uuid[16];    /* 0x10 volume UUID */
	le64 lsn;            /* 0x20 LSN of the transaction that wrote it */
	uint8_t reserved[8]; /* 0x28 */
};                           /* 0x30 */
static_assert(sizeof(struct csv_d_blkhdr) == 0x30, "blkhdr size");
static_assert(offsetof(struct csv_d_blkhdr, crc) == 0x04, "blkhdr crc");
static_assert(offsetof(struct csv_d_blkhdr, lsn) == 0x20, "blkhdr lsn");

/* ---- Volume header: block 0, backup in the last block ---------------- */

/* Feature masks. A reader refuses a volume with an unknown incompat bit,
 * and mounts read-only one with an unknown ro_compat bit. */
#define CSV_FEATURE_COMPAT_SUPP    0ull
#define CSV_FEATURE_RO_COMPAT_SUPP 0ull
#define CSV_FEATURE_INCOMPAT_SUPP  0ull

enum {
	CSV_STATE_CLEAN = 1,    /* unmounted cleanly or checked */
	CSV_STATE_ERRORS = 2,   /* an error was found and not yet repaired */
};

struct csv_d_header {
	struct csv_d_blkhdr h;       /* 0x000 magic CSV_MAGIC_HEADER */
	le16 version_major;          /* 0x030 CSV_VERSION_MAJOR */
	le16 version_minor;          /* 0x032 */
	le32 block_size;             /* 0x034 CSV_BLOCK_SIZE */
	le32 cluster_size;           /* 0x038 bytes, power of two */
	le32 record_size;            /* 0x03c CSV_RECORD_SIZE */
	le64 feature_compat;         /* 0x040 */
	le64 feature_ro_compat;      /* 0x048 */
	le64 feature_incompat;       /* 0x050 */
	le64 total_clusters;         /* 0x058 clusters on the volume */
	le64 total_blocks;           /* 0x060 total_clusters in 4 KiB blocks */
	le64 backup_header_block;    /* 0x068 total_blocks - 1 */
	le32 max_nodes;              /* 0x070 node slots in the cluster area */
	le32 state;                  /* 0x074 CSV_STATE_* */
	le64 cluster_area_block;     /* 0x078 */
	le64 cluster_area_blocks;    /* 0x080 2 + 2 * max_nodes */
	le64 journal_block;          /* 0x088 */
	le64 journal_blocks;         /* 0x090 */
	le64 cbitmap_block;          /* 0x098 cluster bitmap */
	le64 cbitmap_blocks;         /* 0x0a0 */
	le64 rbitmap_block;          /* 0x0a8 record bitmap */
	le64 rbitmap_blocks;         /* 0x0b0 */
	le64 max_records;            /* 0x0b8 records the record bitmap covers */
	le64 mft_block;              /* 0x0c0 block of record 0 ($MFT) */
	le64 mft_mirror_block;       /* 0x0c8 a copy of record 0 */
	le64 mft_zone_lcn;           /* 0x0d0 clusters kept for MFT growth */
	le64 mft_zone_clusters;      /* 0x0d8 */
	le64 data_lcn;               /* 0x0e0 first cluster after fixed regions */
	le64 mkfs_time_ns;           /* 0x0e8 wall clock, ns since 1970 */
	le64 check_time_ns;          /* 0x0f0 last fsck, 0 if never */
	uint8_t label[CSV_LABEL_MAX];/* 0x0f8 UTF-8, NUL padded */
	uint8_t reserved[3784];      /* 0x138 zero */
};                                   /* 0x1000 */
static_assert(sizeof(struct csv_d_header) == CSV_BLOCK_SIZE, "header size");
static_assert(offsetof(struct csv_d_header, cluster_size) == 0x38, "header cluster_size");
static_assert(offsetof(struct csv_d_header, mft_block) == 0xc0, "header mft_block");
static_assert(offsetof(struct csv_d_header, label) == 0xf8, "header label");

/* ---- Cluster area: lease, witness and one slot pair per node ----------- */

/* Block 0 of the cluster area: the coordinator lease of this volume. The
 * holder bumps renew_seq at least every lease_ms / 3; others judge expiry
 * by their own monotonic clock from the last change they saw. */
struct csv_d_lease {
	struct csv_d_blkhdr h;  /* 0x00 magic CSV_MAGIC_LEASE */
	le32 holder_node;       /* 0x30 corosync node id, 0 = none */
	le32 flags;             /* 0x34 reserved, zero */
	le64 epoch;             /* 0x38 coordinator epoch, only grows */
	le64 renew_seq;         /* 0x40 */
	le64 lease_ms;          /* 0x48 */
	le64 wall_ns;           /* 0x50 holder's wall clock at the last renewal */
	uint8_t reserved[4008]; /* 0x58 */
};
static_assert(sizeof(struct csv_d_lease) == CSV_BLOCK_SIZE, "lease size");

/* Block 1: the disk witness that breaks ties in a two-node cluster. */
struct csv_d_witness {
	struct csv_d_blkhdr h;  /* 0x00 magic CSV_MAGIC_WITNESS */
	le32 holder_node;       /* 0x30 0 = none */
	le32 flags;             /* 0x34 */
	le64 generation;        /* 0x38 bumped on each change of holder */
	le64 renew_seq;         /* 0x40 */
	le64 lease_ms;          /* 0x48 */
	le64 wall_ns;           /* 0x50 */
	uint8_t reserved[4008]; /* 0x58 */
};
static_assert(sizeof(struct csv_d_witness) == CSV_BLOCK_SIZE, "witness size");

enum {
	CSV_HB_RUNNING = 1 << 0, /* node's daemons active */
	CSV_HB_FENCED = 1 << 1,  /* node has stopped all I/O (fence ack) */
};

/* Block 2 + 2 * slot: written only by the node owning the slot. */
struct csv_d_heartbeat {
	struct csv_d_blkhdr h;  /* 0x00 magic CSV_MAGIC_HEARTBEAT */
	le32 node_id;           /* 0x30 corosync node id, 0 = free slot */
	le32 flags;             /* 0x34 CSV_HB_* */
	le64 seq;               /* 0x38 bumped at every heartbeat */
	le64 incarnation;       /* 0x40 bumped at every daemon start */
	le64 wall_ns;           /* 0x48 */
	le64 fence_ack_seq;     /* 0x50 mailbox request_seq acknowledged */
	le32 interval_ms;       /* 0x58 */
	le32 reserved0;         /* 0x5c */
	uint8_t node_name[64];  /* 0x60 NUL padded */
	uint8_t reserved[3936]; /* 0xa0 */
};
static_assert(sizeof(struct csv_d_heartbeat) == CSV_BLOCK_SIZE, "heartbeat size");

enum { CSV_MAILBOX_FENCE = 1 };

/* Block 3 + 2 * slot: written by other nodes to ask the owner something. */
struct csv_d_mailbox {
	struct csv_d_blkhdr h;  /* 0x00 magic CSV_MAGIC_MAILBOX */
	le32 from_node;         /* 0x30 */
	le32 request;           /* 0x34 CSV_MAILBOX_* or 0 */
	le64 request_seq;       /* 0x38 */
	le64 wall_ns;           /* 0x40 */
	uint8_t reserved[4024]; /* 0x48 */
};
static_assert(sizeof(struct csv_d_mailbox) == CSV_BLOCK_SIZE, "mailbox size");

#define CSV_CLUSTER_AREA_BLOCKS(max_nodes) (2u + 2u * (max_nodes))

/* ---- Bitmaps ---------------------------------------------------------- */

/* Cluster bitmap (bit set = cluster in use) and record bitmap (bit set =
 * MFT record in use) share one block layout. Bit i of the region is bit
 * (i % 8) of byte ((i % CSV_BITMAP_BITS) / 8) of the bits of block
 * (i / CSV_BITMAP_BITS). */
#define CSV_BITMAP_BYTES (CSV_BLOCK_SIZE - 0x40)
#define CSV_BITMAP_BITS (CSV_BITMAP_BYTES * 8u)

struct csv_d_bitmap {
	struct csv_d_blkhdr h;  /* 0x00 CSV_MAGIC_CBITMAP or CSV_MAGIC_RBITMAP */
	le64 first_bit;         /* 0x30 index of the first bit in this block */
	le32 nbits;             /* 0x38 bits in use in this block; the rest zero */
	le32 reserved;          /* 0x3c */
	uint8_t bits[CSV_BITMAP_BYTES]; /* 0x40 */
};
static_assert(sizeof(struct csv_d_bitmap) == CSV_BLOCK_SIZE, "bitmap size");

/* ---- MFT: file records ------------------------------------------------ */

/* A file reference: record number in the low 48 bits, the record's
 * sequence number in the high 16, so a stale reference to a reused record
 * is detected. */
#define CSV_REF(recno, seq) ((uint64_t)(((uint64_t)(seq) << 48) | ((uint64_t)(recno) & 0xffffffffffffull)))
#define CSV_REF_RECNO(ref) ((uint64_t)((ref) & 0xffffffffffffull))
#define CSV_REF_SEQ(ref) ((uint16_t)((ref) >> 48))

/* Fixed record numbers. Records below CSV_FIRST_USER_RECORD belong to the
 * system: they are always marked in the record bitmap. */
#define CSV_RECNO_MFT 0          /* the MFT itself; its DATA maps the table */
#define CSV_RECNO_ROOT 1         /* root directory */
#define CSV_RECNO_LOST_FOUND 2   /* lost+found, where fsck reconnects orphans */
#define CSV_FIRST_USER_RECORD 16

enum {
	CSV_REC_IN_USE = 1 << 0,
	CSV_REC_DIRECTORY = 1 << 1,
	CSV_REC_SYSTEM = 1 << 2,   /* $MFT and the reserved records 3..15 */
	CSV_REC_ORPHAN = 1 << 3,   /* link count 0 but still open somewhere */
};
#define CSV_REC_FLAGS_KNOWN 0x000f

struct csv_d_record {
	struct csv_d_blkhdr h;  /* 0x000 magic CSV_MAGIC_RECORD, lsn */
	le64 recno;             /* 0x030 this record's number */
	le16 seq;               /* 0x038 bumped when the record is reused; never 0 in use */
	le16 flags;             /* 0x03a CSV_REC_* */
	le32 nlink;             /* 0x03c */
	le32 mode;              /* 0x040 st_mode: type and permission bits */
	le32 uid;               /* 0x044 */
	le32 gid;               /* 0x048 */
	le32 rdev;              /* 0x04c device number for device nodes */
	le64 size;              /* 0x050 bytes */
	le64 valid_data_length; /* 0x058 bytes; beyond it reads return zeros */
	le64 alloc_clusters;    /* 0x060 clusters mapped by DATA */
	le64 atime_ns;          /* 0x068 signed, ns since 1970 */
	le64 mtime_ns;          /* 0x070 */
	le64 ctime_ns;          /* 0x078 */
	le64 btime_ns;          /* 0x080 birth */
	le64 parent;            /* 0x088 file reference of the parent dir ("..") */
	le16 attr_offset;       /* 0x090 first attribute, CSV_RECORD_ATTR_OFFSET */
	le16 attr_used;         /* 0x092 bytes of attributes from attr_offset */
	le32 reserved0;         /* 0x094 */
	uint8_t reserved[40];   /* 0x098 */
	uint8_t attrs[3904];    /* 0x0c0 attributes, back to back */
};
static_assert(sizeof(struct csv_d_record) == CSV_RECORD_SIZE, "record size");
static_assert(offsetof(struct csv_d_record, attrs) == 0xc0, "record attrs");
#define CSV_RECORD_ATTR_OFFSET 0xc0u
#define CSV_RECORD_ATTR_SPACE (CSV_RECORD_SIZE - CSV_RECORD_ATTR_OFFSET)

/* Attributes. Each starts with this header; length covers the header and
 * the payload, is a multiple of 8, and the attributes of a record are kept
 * sorted by type. */
enum {
	CSV_ATTR_NAME = 1,        /* a link: parent reference and name (one per link) */
	CSV_ATTR_DATA = 2,        /* file contents: resident, runs or extent index */
	CSV_ATTR_INDEX_ROOT = 3,  /* directory: root node of the name B+ tree */
	CSV_ATTR_XATTR = 4,       /* one extended attribute */
};

struct csv_d_attr {
	le16 type;    /* 0x0 CSV_ATTR_* */
	le16 flags;   /* 0x2 reserved, zero */
	le32 length;  /* 0x4 header + payload, multiple of 8 */
};
static_assert(sizeof(struct csv_d_attr) == 8, "attr size");

/* CSV_ATTR_NAME payload. */
struct csv_d_attr_name {
	le64 parent;     /* 0x0 file reference of the directory */
	le16 name_len;   /* 0x8 1..CSV_NAME_MAX */
	uint8_t name[];  /* 0xa not NUL terminated */
};

enum {
	CSV_DATA_RESIDENT = 1,  /* bytes follow in the record */
	CSV_DATA_RUNS = 2,      /* struct csv_d_run[count] follow */
	CSV_DATA_EXTENTS = 3,   /* struct csv_d_extent_ref[count] follow */
};

/* CSV_ATTR_DATA payload header. */
struct csv_d_attr_data {
	le16 form;      /* 0x0 CSV_DATA_* */
	le16 reserved;  /* 0x2 */
	le32 count;     /* 0x4 bytes (resident), runs, or extent refs */
};
static_assert(sizeof(struct csv_d_attr_data) == 8, "attr_data size");

enum { CSV_RUN_UNWRITTEN = 1 << 0 }; /* allocated, reads return zeros */

/* A run: length clusters of the file from vcn are stored at lcn. Runs of a
 * file are sorted by vcn and never overlap; a gap between runs is a hole. */
struct csv_d_run {
	le64 vcn;     /* 0x00 */
	le64 lcn;     /* 0x08 */
	le32 length;  /* 0x10 clusters, at least 1 */
	le32 flags;   /* 0x14 CSV_RUN_* */
};
static_assert(sizeof(struct csv_d_run) == 24, "run size");

/* An extent index entry: the runs from first_vcn on (up to the next entry's
 * first_vcn) are in the extent block at blocknr. */
struct csv_d_extent_ref {
	le64 first_vcn;  /* 0x0 */
	le64 blocknr;    /* 0x8 */
};
static_assert(sizeof(struct csv_d_extent_ref) == 16, "extent ref size");

/* An extent block: one cluster holding sorted runs of one file. */
struct csv_d_extent_block {
	struct csv_d_blkhdr h;  /* 0x00 magic CSV_MAGIC_EXTENT */
	le64 owner;             /* 0x30 file reference of the file */
	le32 count;             /* 0x38 runs that follow */
	le32 reserved;          /* 0x3c */
	struct csv_d_run runs[];/* 0x40 */
};
static_assert(sizeof(struct csv_d_extent_block) == 0x40, "extent block header");
#define CSV_EXTENT_RUNS(cluster_size) (((cluster_size) - 0x40u) / sizeof(struct csv_d_run))

/* CSV_ATTR_XATTR payload: a namespace-qualified name ("user.x",
 * "system.posix_acl_access") and its value. */
struct csv_d_attr_xattr {
	le16 name_len;   /* 0x0 */
	le16 value_len;  /* 0x2 */
	le32 reserved;   /* 0x4 */
	uint8_t data[];  /* 0x8 name, then value */
};

/* ---- Directory index: a B+ tree of names ------------------------------- */

/* Names are ordered by memcmp over the shorter length, then by length.
 * A node is either the root, kept in the directory record's INDEX_ROOT
 * attribute (struct csv_d_index_node only), or an index block of one
 * cluster (struct csv_d_index_block). Leaves (level 0) hold the entries;
 * inner nodes hold (separator, child) pairs where the separator is the
 * smallest name in that child's subtree, except that the first pair of a
 * node carries an empty separator (minus infinity). */
struct csv_d_index_node {
	le16 level;     /* 0x0 0 = leaf */
	le16 count;     /* 0x2 entries */
	le32 used;      /* 0x4 bytes of entries that follow */
	le64 next_leaf; /* 0x8 leaves only: block of the next leaf, 0 = last */
	/* 0x10: entries, each 8-byte aligned */
};
static_assert(sizeof(struct csv_d_index_node) == 0x10, "index node size");

struct csv_d_index_block {
	struct csv_d_blkhdr h;        /* 0x00 magic CSV_MAGIC_INDEX */
	le64 owner;                   /* 0x30 file reference of the directory */
	le64 reserved;                /* 0x38 */
	struct csv_d_index_node node; /* 0x40 */
	/* 0x50: entries */
};
static_assert(sizeof(struct csv_d_index_block) == 0x50, "index block header");

/* A leaf entry; its size is CSV_INDEX_ENTRY_SIZE(name_len). */
struct csv_d_index_leaf_entry {
	le64 ref;         /* 0x0 file reference */
	uint8_t name_len; /* 0x8 1..255 */
	uint8_t type;     /* 0x9 DT_* of the file */
	uint8_t name[];   /* 0xa */
};

/* An inner entry; the same size rule. name_len 0 only for the first. */
struct csv_d_index_inner_entry {
	le64 child;       /* 0x0 block number of the child node */
	uint8_t name_len; /* 0x8 */
	uint8_t reserved; /* 0x9 */
	uint8_t name[];   /* 0xa */
};
/* The INDEX_ROOT attribute payload of every directory record has this
 * fixed size: struct csv_d_index_node and entries. */
#define CSV_INDEX_ROOT_BYTES 2048u

#define CSV_INDEX_ENTRY_SIZE(name_len) (((10u + (name_len)) + 7u) & ~7u)

/* ---- Journal ----------------------------------------------------------- */

/* The journal is a circular log of physical block images in the journal
 * region. Block 0 of the region is the journal superblock; the log is the
 * rest. A transaction with LSN n is: a descriptor block listing the home
 * locations of the images, the images, and a commit block. Transactions
 * carry consecutive LSNs; replay starts at head_lsn, found at head_offset,
 * and stops at the first transaction that is incomplete or whose LSN is not
 * the next one. Every block a transaction writes home carries its LSN. */
struct csv_d_journal_super {
	struct csv_d_blkhdr h;  /* 0x00 magic CSV_MAGIC_JSUPER, lsn = head_lsn */
	le64 log_blocks;        /* 0x30 journal_blocks - 1 */
	le64 head_lsn;          /* 0x38 oldest transaction not yet checkpointed */
	le64 head_offset;       /* 0x40 its descriptor, blocks from the log start */
	le32 flags;             /* 0x48 reserved, zero */
	le32 reserved0;         /* 0x4c */
	uint8_t reserved[4016]; /* 0x50 */
};
static_assert(sizeof(struct csv_d_journal_super) == CSV_BLOCK_SIZE, "jsuper size");

/* One image in a transaction: nblocks blocks to be written at blocknr. */
struct csv_d_journal_tag {
	le64 blocknr;  /* 0x0 home location */
	le32 nblocks;  /* 0x8 1..16 (one cluster-sized node at most) */
	le32 crc;      /* 0xc CRC32C of the image */
};
static_assert(sizeof(struct csv_d_journal_tag) == 16, "journal tag size");
#define CSV_JOURNAL_TAGS ((CSV_BLOCK_SIZE - 0x40u) / sizeof(struct csv_d_journal_tag))

enum { CSV_JDESC_MORE = 1 << 0 }; /* another descriptor of this LSN follows its images */

struct csv_d_journal_desc {
	struct csv_d_blkhdr h;  /* 0x00 magic CSV_MAGIC_JDESC, lsn, blocknr = own */
	le32 count;             /* 0x30 tags */
	le32 image_blocks;      /* 0x34 blocks of images following this block */
	le32 flags;             /* 0x38 CSV_JDESC_* */
	le32 index;             /* 0x3c 0 for the first descriptor of a transaction */
	struct csv_d_journal_tag tags[CSV_JOURNAL_TAGS]; /* 0x40 */
};
static_assert(sizeof(struct csv_d_journal_desc) == CSV_BLOCK_SIZE, "jdesc size");

struct csv_d_journal_commit {
	struct csv_d_blkhdr h;  /* 0x00 magic CSV_MAGIC_JCOMMIT, lsn */
	le32 desc_crc;          /* 0x30 crc field of the last descriptor */
	le32 image_blocks;      /* 0x34 images in the whole transaction */
	le64 commit_time_ns;    /* 0x38 */
	uint8_t reserved[4032]; /* 0x40 */
};
static_assert(sizeof(struct csv_d_journal_commit) == CSV_BLOCK_SIZE, "jcommit size");
