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

/* I/O timeouts (NBD only).
 *
 * With an I/O timeout, a request of an NBD device that the server has not
 * answered within io_timeout_ms returns -ETIMEDOUT: a stalled SAN path
 * (a hung target, a paused nbdkit) no longer stalls the caller forever.
 * Requests then go through libnbd's asynchronous API, one handle shared
 * by every thread: each request is one or more commands (a transfer over
 * the server's limit is split) with a buffer of its own, since libnbd may
 * still fill or send it after the caller gave up. Only one thread at a time
 * polls the socket (libnbd's nbd_poll() would hold the handle's lock for
 * the whole wait and stop the others from issuing): a waiter whose request
 * is not done takes that role if it is free, else sleeps until a
 * completion wakes it; new requests wake the poller to send.
 *
 * A request that timed out stays with the server and may still run: a
 * write may land later. The device keeps polling such requests, from a
 * thread of its own, until they end, and reports each timed-out write
 * through its late callback (blockdev_pwrite_late()).
 *
 * Local paths (block devices, files) have no timeout: pread(2) and
 * pwrite(2) cannot be abandoned, and a stalled local device stalls its
 * caller (the kernel's SCSI, multipath and NBD timeouts apply there).
 * Memory devices ignore it. 0 (the default) means no timeout: NBD
 * requests then use libnbd's synchronous calls, as they always did. */

/* Like blockdev_open(); on NBD the connection and handshake are bounded
 * by io_timeout_ms too (-ETIMEDOUT), and requests use it. */
int blockdev_open_timed(const char *spec, unsigned flags, unsigned io_timeout_ms, struct csv_blockdev **ret);
/* Sets the I/O timeout of a device; call it while no request is in flight. */
void blockdev_set_io_timeout(struct csv_blockdev *bd, unsigned io_timeout_ms);
unsigned blockdev_io_timeout(const struct csv_blockdev *bd);

/* Called once for a write that returned -ETIMEDOUT, when it has ended on
 * the device: r is 0 (it was written, late), a server's error (it was not,
 * and cannot be any more), or -ENOTCONN: its connection broke before the
 * server answered, so the server may have it still, and may yet write it.
 * It runs on a thread that drives the device: it must not call into
 * blockdev for that device, nor wait for anything that does. */
typedef void (*blockdev_late_fn)(void *ctx, int r);

/* blockdev_pwrite() that reports what became of it after a timeout:
 * late(ctx, r) is called exactly once if and only if it returns
 * -ETIMEDOUT (possibly before it returns, from another thread). */
int blockdev_pwrite_late(struct csv_blockdev *bd, const void *buf, size_t len, uint64_t off,
			 blockdev_late_fn late, void *ctx);

/* Requests of bd that timed out and have not ended yet. */
unsigned blockdev_stalled(struct csv_blockdev *bd);

/* Creates a zero-filled memory device of size bytes. With volatile_cache,
 * writes stay in a cache until blockdev_flush(), and blockdev_mem_crash()
 * drops what was not flushed: a power cut at the block layer. */
int blockdev_open_mem(uint64_t size, bool volatile_cache, struct csv_blockdev **ret);

/* A memory device that starts as a copy of bytes [0, size) of buf. */
int blockdev_open_mem_from(const void *buf, uint64_t size, struct csv_blockdev **ret);

/* Closes bd. It never waits for a stalled server: an NBD device with
 * requests that timed out and may still run is closed by its own thread
 * once they have ended (closing the connection earlier would not stop a
 * server from running what it already read), and their late callbacks are
 * called before that. With a timeout the disconnect is bounded by it. */
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
