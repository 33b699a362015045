/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The block-device layer: one interface over a local path (block device or
 * file), an NBD URI (libnbd), or memory (tests). Every function returns 0 or
 * a negative errno; short transfers are retried inside, so a caller sees
 * either the whole transfer or an error. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct csv_blockdev;

enum csv_bdev_flags {
	CSV_BDEV_RDONLY = 1 << 0, /* open read-only */
	CSV_BDEV_DIRECT = 1 << 1, /* O_DIRECT for local paths; any buffer, offset and length still work */
	CSV_BDEV_EXCL = 1 << 2,   /* O_EXCL on block devices (mkfs) */
};

/* Opens a local path ("/dev/sdb", "/srv/lun.img") or an NBD URI
 * ("nbd+unix:///?socket=/run/san.sock", "nbd://host:port/export"). */
int blockdev_open(const char *spec, unsigned flags, struct csv_blockdev **ret);

/* Creates a zero-filled memory device of size bytes. With volatile_cache,
 * writes stay in a cache until blockdev_flush(), and blockdev_mem_crash()
 * drops what was not flushed: a power cut at the block layer. */
int blockdev_open_mem(uint64_t size, bool volatile_cache, struct csv_blockdev **ret);

/* A memory device that starts as a copy of bytes [0, size) of buf. */
int blockdev_open_mem_from(const void *buf, uint64_t size, struct csv_blockdev **ret);

void blockdev_close(struct csv_blockdev *bd);

int blockdev_pread(struct csv_blockdev *bd, void *buf, size_t len, uint64_t off);
int blockdev_pwrite(struct csv_blockdev *bd, const void *buf, size_t len, uint64_t off);
int blockdev_flush(struct csv_blockdev *bd);

/* Tells the device a range no longer holds data (punch hole / discard).
 * Devices that cannot do it return 0 and leave the data. */
int blockdev_discard(struct csv_blockdev *bd, uint64_t off, uint64_t len);

uint64_t blockdev_size(const struct csv_blockdev *bd);
/* Preferred I/O alignment in bytes (physical sector or optimal I/O size). */
uint32_t blockdev_alignment(const struct csv_blockdev *bd);
const char *blockdev_name(const struct csv_blockdev *bd);
bool blockdev_is_regular_file(const struct csv_blockdev *bd);

/* Memory devices only. */
void blockdev_mem_crash(struct csv_blockdev *bd);
uint8_t *blockdev_mem_data(struct csv_blockdev *bd);

/* A power cut with a disk that reorders: each unflushed write is kept or
 * dropped at random (seeded), and one kept write of several sectors may be
 * torn at a 512-byte boundary. Memory devices with a volatile cache only. */
void blockdev_mem_crash_random(struct csv_blockdev *bd, unsigned seed);
/* Makes every write and flush of a memory device fail with -EIO after
 * the next ios succeed (the moment of a power cut); -1 disarms. */
void blockdev_mem_fail_after(struct csv_blockdev *bd, int64_t ios);
/* Unflushed writes pending in a memory device's cache. */
size_t blockdev_mem_pending(const struct csv_blockdev *bd);
/* Flushes counted on a device since it was opened. */
uint64_t blockdev_flush_count(const struct csv_blockdev *bd);
