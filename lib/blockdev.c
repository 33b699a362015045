/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "blockdev.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <libnbd.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "util.h"

enum bdev_kind { BDEV_PATH, BDEV_NBD, BDEV_MEM };

/* A write parked in a memory device's volatile cache. */
struct mem_pending {
	uint64_t off;
	size_t len;
	struct mem_pending *next;
	uint8_t data[];
};

struct csv_blockdev {
	enum bdev_kind kind;
	char *name;
	uint64_t size;
	uint32_t alignment;
	bool regular_file;
	bool rdonly;
	int fd;                /* BDEV_PATH */
	uint32_t dio_align;    /* BDEV_PATH opened O_DIRECT: its alignment; else 0 */
	pthread_mutex_t rmw_lock; /* a partial block written read-modify-write, one at a time */
	struct nbd_handle *nbd; /* BDEV_NBD */
	size_t nbd_max_io;      /* the largest request the server takes */
	unsigned io_timeout_ms; /* BDEV_NBD: 0 none (libnbd's synchronous calls) */
	/* BDEV_NBD with a timeout: the asynchronous requests (see blockdev.h). */
	int wake_fd;              /* eventfd: new commands to send, for the poller */
	pthread_mutex_t aio_lock; /* the fields below and every struct nbd_op */
	pthread_cond_t aio_cond;  /* (CLOCK_MONOTONIC) a request ended or the poller stepped down */
	bool polling;             /* a thread polls the socket: the poller */
	unsigned stalled;         /* requests that timed out and have not ended */
	bool drainer;             /* the thread that polls for the stalled ones runs */
	bool closing;             /* blockdev_close() was called: the drainer closes it */
	uint8_t *mem;          /* BDEV_MEM */
	bool volatile_cache;
	struct mem_pending *pending, **pending_tail;
	uint64_t flushes;
	int64_t fail_after;       /* BDEV_MEM: writes and flushes left before -EIO, -1 never */
	pthread_mutex_t mem_lock; /* BDEV_MEM: guards mem and pending */
};

static int open_path(const char *path, unsigned flags, struct csv_blockdev *bd)
{
	int oflags = O_CLOEXEC | ((flags & CSV_BDEV_RDONLY) ? O_RDONLY : O_RDWR);
	struct stat st;

	if (flags & CSV_BDEV_DIRECT) {
		oflags |= O_DIRECT;
		bd->dio_align = 4096;  /* a multiple of every logical block size */
	}
	bd->fd = open(path, oflags);
	if (bd->fd < 0)
		return negative_errno();
	if (fstat(bd->fd, &st) < 0)
		return negative_errno();
	if (S_ISBLK(st.st_mode)) {
		if ((flags & CSV_BDEV_EXCL) && !(flags & CSV_BDEV_RDONLY)) {
			/* Reopen exclusively: refuses a device that is mounted. */
			int fd = open(path, oflags | O_EXCL);
			if (fd < 0)
				return negative_errno();
			close(bd->fd);
			bd->fd = fd;
		}
		uint64_t sz;
		if (ioctl(bd->fd, BLKGETSIZE64, &sz) < 0)
			return negative_errno();
		bd->size = sz;
		unsigned int pbs = 0;
		if (ioctl(bd->fd, BLKPBSZGET, &pbs) == 0 && pbs > 0)
			bd->alignment = pbs;
	} else if (S_ISREG(st.st_mode)) {
		bd->size = st.st_size;
		bd->regular_file = true;
		bd->alignment = st.st_blksize > 0 ? st.st_blksize : 4096;
		/* O_DIRECT reaches whole blocks only: a file that ends inside
		 * one is used through the page cache. */
		if (bd->dio_align && bd->size % bd->dio_align) {
			if (fcntl(bd->fd, F_SETFL, fcntl(bd->fd, F_GETFL) & ~O_DIRECT) < 0)
				return negative_errno();
			bd->dio_align = 0;
		}
	} else {
		return -ENOTBLK;
	}
	return 0;
}

/* libnbd's error of the call that failed in this thread, else dflt. */
static int nbd_failure(int dflt)
{
	int e = nbd_get_errno();
	return e > 0 ? -e : dflt;
}

/* Why a command failed or could not be issued: a handle whose connection
 * died is -ENOTCONN (libnbd says EINVAL: the handle is in the wrong state),
 * which callers take for a lost path; else libnbd's error. */
static int nbd_issue_error(struct csv_blockdev *bd)
{
	if (nbd_aio_is_dead(bd->nbd) == 1 || nbd_aio_is_closed(bd->nbd) == 1)
		return -ENOTCONN;
	return nbd_failure(-EIO);
}

/* Connects and handshakes within timeout_ms. */
static int nbd_connect_timed(struct nbd_handle *h, const char *uri, unsigned timeout_ms)
{
	uint64_t until = monotonic_ns() + timeout_ms * 1000000ull;
	if (nbd_aio_connect_uri(h, uri) < 0)
		return nbd_failure(-ECONNREFUSED);
	while (nbd_aio_is_connecting(h) == 1) {
		uint64_t now = monotonic_ns();
		if (now >= until)
			return -ETIMEDOUT;
		/* The only user of the handle yet: nbd_poll() holding its lock is fine. */
		if (nbd_poll(h, (int)DIV_ROUND_UP(until - now, 1000000)) < 0)
			return nbd_failure(-ECONNREFUSED);
	}
	return nbd_aio_is_ready(h) == 1 ? 0 : nbd_failure(-ECONNREFUSED);
}

static int open_nbd(const char *uri, unsigned flags, unsigned timeout_ms, struct csv_blockdev *bd)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&bd->aio_cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&bd->aio_lock, NULL);
	bd->io_timeout_ms = timeout_ms;
	bd->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (bd->wake_fd < 0)
		return negative_errno();
	bd->nbd = nbd_create();
	if (!bd->nbd)
		return -ENOMEM;
	if (timeout_ms) {
		int r = nbd_connect_timed(bd->nbd, uri, timeout_ms);
		if (r < 0)
			return r;
	} else if (nbd_connect_uri(bd->nbd, uri) < 0) {
		return nbd_failure(-ECONNREFUSED);
	}
	int64_t sz = nbd_get_size(bd->nbd);
	if (sz < 0)
		return -EIO;
	bd->size = sz;
	/* libnbd refuses requests over 64 MiB; servers may say less. */
	int64_t max = nbd_get_block_size(bd->nbd, LIBNBD_SIZE_MAXIMUM);
	bd->nbd_max_io = (max > 0 && max < (64 << 20)) ? (size_t)max : (32u << 20);
	int64_t pref = nbd_get_block_size(bd->nbd, LIBNBD_SIZE_PREFERRED);
	bd->alignment = pref > 0 ? pref : 4096;
	if (!(flags & CSV_BDEV_RDONLY) && nbd_is_read_only(bd->nbd) == 1)
		return -EROFS;
	return 0;
}

int blockdev_open(const char *spec, unsigned flags, struct csv_blockdev **ret)
{
	return blockdev_open_timed(spec, flags, 0, ret);
}

int blockdev_open_timed(const char *spec, unsigned flags, unsigned io_timeout_ms, struct csv_blockdev **ret)
{
	struct csv_blockdev *bd = calloc(1, sizeof(*bd));
	int r;

	if (!bd)
		return -ENOMEM;
	bd->fd = -1;
	bd->wake_fd = -1;
	bd->alignment = 512;
	bd->rdonly = flags & CSV_BDEV_RDONLY;
	pthread_mutex_init(&bd->rmw_lock, NULL);
	bd->name = strdup(spec);
	if (!bd->name) {
		free(bd);
		return -ENOMEM;
	}
	if (strncmp(spec, "nbd://", 6) == 0 || strncmp(spec, "nbd+unix://", 11) == 0 ||
	    strncmp(spec, "nbds://", 7) == 0 || strncmp(spec, "nbds+unix://", 12) == 0) {
		bd->kind = BDEV_NBD;
		r = open_nbd(spec, flags, io_timeout_ms, bd);
	} else {
		bd->kind = BDEV_PATH;
		r = open_path(spec, flags, bd);
	}
	if (r < 0) {
		blockdev_close(bd);
		return r;
	}
	*ret = bd;
	return 0;
}

int blockdev_open_mem(uint64_t size, bool volatile_cache, struct csv_blockdev **ret)
{
	struct csv_blockdev *bd = calloc(1, sizeof(*bd));
	if (!bd)
		return -ENOMEM;
	bd->kind = BDEV_MEM;
	bd->fd = -1;
	bd->wake_fd = -1;
	bd->size = size;
	bd->alignment = 4096;
	bd->name = strdup("(memory)");
	bd->mem = calloc(1, size ? size : 1);
	bd->volatile_cache = volatile_cache;
	bd->pending_tail = &bd->pending;
	bd->fail_after = -1;
	pthread_mutex_init(&bd->mem_lock, NULL);
	if (!bd->mem || !bd->name) {
		blockdev_close(bd);
		return -ENOMEM;
	}
	*ret = bd;
	return 0;
}

int blockdev_open_mem_from(const void *buf, uint64_t size, struct csv_blockdev **ret)
{
	struct csv_blockdev *bd;
	int r = blockdev_open_mem(size, false, &bd);
	if (r < 0)
		return r;
	memcpy(bd->mem, buf, size);
	*ret = bd;
	return 0;
}

static void mem_drop_pending(struct csv_blockdev *bd)
{
	while (bd->pending) {
		struct mem_pending *p = bd->pending;
		bd->pending = p->next;
		free(p);
	}
	bd->pending_tail = &bd->pending;
}

/* Tells the server goodbye, waiting at most the I/O timeout for it. */
static void nbd_disconnect_timed(struct csv_blockdev *bd)
{
	if (nbd_aio_is_ready(bd->nbd) != 1 || nbd_aio_disconnect(bd->nbd, 0) < 0)
		return;
	uint64_t until = monotonic_ns() + bd->io_timeout_ms * 1000000ull;
	while (nbd_aio_is_closed(bd->nbd) != 1 && nbd_aio_is_dead(bd->nbd) != 1) {
		uint64_t now = monotonic_ns();
		if (now >= until || nbd_poll(bd->nbd, (int)DIV_ROUND_UP(until - now, 1000000)) < 0)
			break;
	}
}

static void blockdev_free(struct csv_blockdev *bd)
{
	if (bd->fd >= 0)
		close(bd->fd);
	if (bd->nbd) {
		if (bd->io_timeout_ms)
			nbd_disconnect_timed(bd);
		else
			nbd_shutdown(bd->nbd, 0);
		nbd_close(bd->nbd);
	}
	if (bd->kind == BDEV_NBD && bd->wake_fd >= 0)
		close(bd->wake_fd);
	mem_drop_pending(bd);
	free(bd->mem);
	free(bd->name);
	free(bd);
}

static void drainer_start_locked(struct csv_blockdev *bd);

void blockdev_close(struct csv_blockdev *bd)
{
	if (!bd)
		return;
	if (bd->kind == BDEV_NBD && bd->wake_fd >= 0) {
		pthread_mutex_lock(&bd->aio_lock);
		bd->closing = true;
		if (bd->stalled && !bd->drainer)
			drainer_start_locked(bd);
		/* Stalled requests: the drainer closes it once they ended. If it
		 * could not start, the handle is left open on purpose: closing it
		 * would not stop the server from running them. */
		bool later = bd->stalled || bd->drainer;
		pthread_mutex_unlock(&bd->aio_lock);
		if (later)
			return;
	}
	blockdev_free(bd);
}

static int check_range(const struct csv_blockdev *bd, size_t len, uint64_t off)
{
	if (off > bd->size || len > bd->size - off)
		return -ENOSPC;
	return 0;
}

/* Counts down to a simulated power cut; true once it has happened. */
static bool mem_power_cut(struct csv_blockdev *bd)
{
	bool cut;
	pthread_mutex_lock(&bd->mem_lock);
	if (bd->fail_after > 0)
		bd->fail_after--;
	else if (bd->fail_after == 0)
		bd->fail_after = -2; /* cut: stays failed until re-armed */
	cut = bd->fail_after == -2;
	pthread_mutex_unlock(&bd->mem_lock);
	return cut;
}

/* Reads or writes over NBD in requests the server and libnbd accept. */
static int nbd_xfer(struct csv_blockdev *bd, void *buf, size_t len, uint64_t off, bool write)
{
	while (len > 0) {
		size_t n = MIN(len, bd->nbd_max_io);
		int r = write ? nbd_pwrite(bd->nbd, buf, n, off, 0) : nbd_pread(bd->nbd, buf, n, off, 0);
		if (r < 0)
			return nbd_issue_error(bd);
		buf = (uint8_t *)buf + n;
		len -= n;
		off += n;
	}
	return 0;
}

/* ---- NBD with a timeout: libnbd's asynchronous API ------------------------ */

/* The longest a poller polls before looking at its deadline again. */
#define POLL_SLICE_NS (500 * 1000000ull)

enum nbd_cmd { NBD_OP_READ, NBD_OP_WRITE, NBD_OP_FLUSH, NBD_OP_TRIM };

/* One request of a caller: one or more NBD commands sharing a buffer of
 * their own. Fields under the device's aio_lock. */
struct nbd_op {
	struct csv_blockdev *bd;
	uint8_t *buf;           /* NBD_OP_READ, NBD_OP_WRITE */
	unsigned refs;          /* the caller until it returns, and each command libnbd holds */
	unsigned left;          /* commands issued and not completed */
	int result;             /* 0, or the first error; -ENOTCONN wins (the command may still run) */
	bool timed_out;         /* the caller gave up: the device finishes it */
	blockdev_late_fn late;
	void *late_ctx;
};

static void op_put_locked(struct nbd_op *op)
{
	if (--op->refs == 0) {
		free(op->buf);
		free(op);
	}
}

/* libnbd's completion callback: runs on the thread that drives the handle,
 * under the handle's lock (so it takes aio_lock after it, never before). */
static int op_completed(void *user_data, int *error)
{
	struct nbd_op *op = user_data;
	struct csv_blockdev *bd = op->bd;
	blockdev_late_fn late = NULL;
	void *late_ctx = NULL;
	int late_r = 0;

	pthread_mutex_lock(&bd->aio_lock);
	if (*error && (op->result == 0 || *error == ENOTCONN))
		op->result = -*error;
	if (--op->left == 0) {
		if (op->timed_out) {
			bd->stalled--;
			late = op->late;
			late_ctx = op->late_ctx;
			late_r = op->result;
		}
		pthread_cond_broadcast(&bd->aio_cond);
	}
	pthread_mutex_unlock(&bd->aio_lock);
	if (late)
		late(late_ctx, late_r);
	return 1; /* retire the command */
}

/* libnbd's free callback: the command no longer uses op. */
static void op_released(void *user_data)
{
	struct nbd_op *op = user_data;
	struct csv_blockdev *bd = op->bd;
	pthread_mutex_lock(&bd->aio_lock);
	op_put_locked(op);
	pthread_mutex_unlock(&bd->aio_lock);
}

/* Polls the socket once, for at most timeout_ms, and lets libnbd do what
 * it can: send queued commands, read replies (completion callbacks run
 * here). Only the poller calls it; the handle's lock is not held while
 * polling, so other threads issue commands meanwhile and wake it through
 * wake_fd when there is something to send. */
static void nbd_drive(struct csv_blockdev *bd, int timeout_ms)
{
	int fd = nbd_aio_get_fd(bd->nbd); /* < 0 once the connection is gone: poll ignores it */
	unsigned dir = nbd_aio_get_direction(bd->nbd);
	struct pollfd p[2] = { { .fd = fd }, { .fd = bd->wake_fd, .events = POLLIN } };

	if (dir & LIBNBD_AIO_DIRECTION_READ)
		p[0].events |= POLLIN;
	if (dir & LIBNBD_AIO_DIRECTION_WRITE)
		p[0].events |= POLLOUT;
	if (poll(p, 2, timeout_ms) <= 0)
		return;
	if (p[1].revents & POLLIN) {
		uint64_t v;
		(void)!read(bd->wake_fd, &v, sizeof(v));
	}
	short ev = fd >= 0 ? p[0].revents : 0;
	/* One notification per poll, as nbd_poll() does: the first may
	 * change what the state machine waits for. */
	if ((ev & POLLIN) || ((ev & (POLLHUP | POLLERR)) && (dir & LIBNBD_AIO_DIRECTION_READ)))
		(void)nbd_aio_notify_read(bd->nbd);
	else if (ev & (POLLOUT | POLLHUP | POLLERR))
		(void)nbd_aio_notify_write(bd->nbd);
}

static void cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, uint64_t until_ns)
{
	struct timespec ts = { .tv_sec = until_ns / 1000000000ull, .tv_nsec = until_ns % 1000000000ull };
	pthread_cond_timedwait(c, m, &ts);
}

/* Polls for one slice, if no other thread does: with aio_lock held. */
static void drive_or_wait_locked(struct csv_blockdev *bd, uint64_t until_ns)
{
	uint64_t now = monotonic_ns();
	uint64_t slice = until_ns > now ? MIN(until_ns - now, POLL_SLICE_NS) : 0;
	if (bd->polling) {
		cond_wait_until(&bd->aio_cond, &bd->aio_lock, now + slice);
		return;
	}
	bd->polling = true;
	pthread_mutex_unlock(&bd->aio_lock);
	nbd_drive(bd, (int)DIV_ROUND_UP(slice, 1000000));
	pthread_mutex_lock(&bd->aio_lock);
	bd->polling = false;
	pthread_cond_broadcast(&bd->aio_cond); /* a waiter may take over */
}

/* The thread of a device with stalled requests: it polls until they have
 * ended (a FUSE thread must not wait for that), then closes the device if
 * blockdev_close() was called meanwhile. */
static void *drainer_main(void *arg)
{
	struct csv_blockdev *bd = arg;
	pthread_mutex_lock(&bd->aio_lock);
	while (bd->stalled)
		drive_or_wait_locked(bd, monotonic_ns() + POLL_SLICE_NS);
	bd->drainer = false;
	bool close_now = bd->closing;
	pthread_mutex_unlock(&bd->aio_lock);
	if (close_now)
		blockdev_free(bd);
	return NULL;
}

static void drainer_start_locked(struct csv_blockdev *bd)
{
	pthread_attr_t a;
	pthread_t t;
	if (bd->drainer || pthread_attr_init(&a) != 0)
		return;
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &a, drainer_main, bd) == 0)
		bd->drainer = true;
	pthread_attr_destroy(&a);
}


/* Issues the commands of op over [off, off + len), in pieces the server
 * takes; stops at the first that cannot be issued (op->result says why). */
static void op_issue(struct csv_blockdev *bd, struct nbd_op *op, enum nbd_cmd cmd, size_t len, uint64_t off)
{
	size_t done = 0;
	do {
		size_t n = cmd == NBD_OP_READ || cmd == NBD_OP_WRITE ? MIN(len - done, bd->nbd_max_io) : len;
		nbd_completion_callback cb = { .callback = op_completed, .user_data = op, .free = op_released };
		int64_t c = -1;
		pthread_mutex_lock(&bd->aio_lock);
		op->refs++; /* dropped by op_released(), also when issuing fails */
		op->left++;
		pthread_mutex_unlock(&bd->aio_lock);
		switch (cmd) {
		case NBD_OP_READ:
			c = nbd_aio_pread(bd->nbd, op->buf + done, n, off + done, cb, 0);
			break;
		case NBD_OP_WRITE:
			c = nbd_aio_pwrite(bd->nbd, op->buf + done, n, off + done, cb, 0);
			break;
		case NBD_OP_FLUSH:
			c = nbd_aio_flush(bd->nbd, cb, 0);
			break;
		case NBD_OP_TRIM:
			c = nbd_aio_trim(bd->nbd, n, off, cb, 0);
			break;
		}
		int e = c < 0 ? nbd_issue_error(bd) : 0;
		pthread_mutex_lock(&bd->aio_lock);
		if (c < 0) {
			op->left--; /* not queued: its completion callback never runs */
			if (op->result == 0)
				op->result = e;
		}
		bool wake = bd->polling;
		pthread_mutex_unlock(&bd->aio_lock);
		if (wake) {
			uint64_t one = 1;
			(void)!write(bd->wake_fd, &one, sizeof(one));
		}
		if (c < 0)
			return;
		done += n;
	} while (done < len);
}

/* One request with the device's timeout: its result, or -ETIMEDOUT. A
 * read lands in buf only on success. */
static int nbd_request(struct csv_blockdev *bd, enum nbd_cmd cmd, void *buf, size_t len, uint64_t off,
		       blockdev_late_fn late, void *late_ctx)
{
	if ((cmd == NBD_OP_READ || cmd == NBD_OP_WRITE) && len == 0)
		return 0;
	uint64_t until = monotonic_ns() + bd->io_timeout_ms * 1000000ull;
	struct nbd_op *op = calloc(1, sizeof(*op));
	if (!op)
		return -ENOMEM;
	if (cmd == NBD_OP_READ || cmd == NBD_OP_WRITE) {
		op->buf = malloc(len);
		if (!op->buf) {
			free(op);
			return -ENOMEM;
		}
		if (cmd == NBD_OP_WRITE)
			memcpy(op->buf, buf, len);
	}
	op->bd = bd;
	op->refs = 1;
	op->late = late;
	op->late_ctx = late_ctx;
	op_issue(bd, op, cmd, len, off);

	int r;
	pthread_mutex_lock(&bd->aio_lock);
	for (;;) {
		if (op->left == 0) {
			r = op->result;
			if (r == 0 && cmd == NBD_OP_READ) {
				/* Still ours: the reference is dropped below. */
				pthread_mutex_unlock(&bd->aio_lock);
				memcpy(buf, op->buf, len);
				pthread_mutex_lock(&bd->aio_lock);
			}
			break;
		}
		if (monotonic_ns() >= until) {
			op->timed_out = true;
			bd->stalled++;
			drainer_start_locked(bd);
			r = -ETIMEDOUT;
			break;
		}
		drive_or_wait_locked(bd, until);
	}
	op_put_locked(op);
	pthread_mutex_unlock(&bd->aio_lock);
	return r;
}

/* pread or pwrite on a path, to the last byte. */
static int path_xfer(struct csv_blockdev *bd, void *buf, size_t len, uint64_t off, bool write)
{
	while (len > 0) {
		ssize_t n = write ? pwrite(bd->fd, buf, len, off) : pread(bd->fd, buf, len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		if (n == 0)
			return -EIO;
		buf = (uint8_t *)buf + n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* Each thread's aligned bounce buffer, kept between requests (allocating
 * one per request costs an mmap and a page fault per page) and freed when
 * the thread ends. */
struct bounce {
	void *buf;
	size_t cap;
};

static pthread_key_t bounce_key;
static pthread_once_t bounce_once = PTHREAD_ONCE_INIT;

static void bounce_free(void *p)
{
	struct bounce *b = p;
	free(b->buf);
	free(b);
}

static void bounce_key_init(void)
{
	(void)pthread_key_create(&bounce_key, bounce_free);
}

static void *bounce_get(size_t len, size_t align)
{
	pthread_once(&bounce_once, bounce_key_init);
	struct bounce *b = pthread_getspecific(bounce_key);
	if (!b) {
		if (!(b = calloc(1, sizeof(*b))))
			return NULL;
		if (pthread_setspecific(bounce_key, b) != 0) {
			free(b);
			return NULL;
		}
	}
	if (len <= b->cap)
		return b->buf;
	void *p;
	if (posix_memalign(&p, align, len) != 0)
		return NULL;
	free(b->buf);
	b->buf = p;
	b->cap = len;
	return p;
}

/* I/O on a path opened O_DIRECT: aligned requests go straight; others
 * through an aligned bounce buffer covering whole blocks, the partial
 * blocks of a write read first. */
static int path_direct(struct csv_blockdev *bd, void *buf, size_t len, uint64_t off, bool write)
{
	uint64_t a = bd->dio_align;
	if ((uintptr_t)buf % a == 0 && len % a == 0 && off % a == 0)
		return path_xfer(bd, buf, len, off, write);
	uint64_t s = off / a * a, e = (off + len + a - 1) / a * a;
	void *bounce = bounce_get(e - s, a);
	if (!bounce)
		return -ENOMEM;
	int r;
	if (!write) {
		r = path_xfer(bd, bounce, e - s, s, false);
		if (r == 0)
			memcpy(buf, (uint8_t *)bounce + (off - s), len);
	} else {
		bool partial = s < off || e > off + len;
		if (partial)
			pthread_mutex_lock(&bd->rmw_lock);
		r = 0;
		if (s < off)
			r = path_xfer(bd, bounce, a, s, false);
		if (r == 0 && e > off + len && (e - a > s || s == off))
			r = path_xfer(bd, (uint8_t *)bounce + (e - a - s), a, e - a, false);
		if (r == 0) {
			memcpy((uint8_t *)bounce + (off - s), buf, len);
			r = path_xfer(bd, bounce, e - s, s, true);
		}
		if (partial)
			pthread_mutex_unlock(&bd->rmw_lock);
	}
	return r;
}

int blockdev_pread(struct csv_blockdev *bd, void *buf, size_t len, uint64_t off)
{
	int r = check_range(bd, len, off);
	if (r < 0)
		return r == -ENOSPC ? -EIO : r;
	switch (bd->kind) {
	case BDEV_PATH:
		return bd->dio_align ? path_direct(bd, buf, len, off, false) : path_xfer(bd, buf, len, off, false);
	case BDEV_NBD:
		if (bd->io_timeout_ms)
			return nbd_request(bd, NBD_OP_READ, buf, len, off, NULL, NULL);
		return nbd_xfer(bd, buf, len, off, false);
	case BDEV_MEM:
		pthread_mutex_lock(&bd->mem_lock);
		memcpy(buf, bd->mem + off, len);
		/* Later cached writes shadow the stable copy. */
		for (struct mem_pending *p = bd->pending; p; p = p->next) {
			uint64_t s = MAX(off, p->off), e = MIN(off + len, p->off + p->len);
			if (s < e)
				memcpy((uint8_t *)buf + (s - off), p->data + (s - p->off), e - s);
		}
		pthread_mutex_unlock(&bd->mem_lock);
		return 0;
	}
	return -EINVAL;
}

int blockdev_pwrite(struct csv_blockdev *bd, const void *buf, size_t len, uint64_t off)
{
	return blockdev_pwrite_late(bd, buf, len, off, NULL, NULL);
}

int blockdev_pwrite_late(struct csv_blockdev *bd, const void *buf, size_t len, uint64_t off,
			 blockdev_late_fn late, void *ctx)
{
	int r = check_range(bd, len, off);
	if (r < 0)
		return r;
	if (bd->rdonly)
		return -EROFS;
	switch (bd->kind) {
	case BDEV_PATH:
		return bd->dio_align ? path_direct(bd, (void *)buf, len, off, true)
				     : path_xfer(bd, (void *)buf, len, off, true);
	case BDEV_NBD:
		if (bd->io_timeout_ms)
			return nbd_request(bd, NBD_OP_WRITE, (void *)buf, len, off, late, ctx);
		return nbd_xfer(bd, (void *)buf, len, off, true);
	case BDEV_MEM:
		if (mem_power_cut(bd))
			return -EIO;
		if (!bd->volatile_cache) {
			pthread_mutex_lock(&bd->mem_lock);
			memcpy(bd->mem + off, buf, len);
			pthread_mutex_unlock(&bd->mem_lock);
			return 0;
		} else {
			struct mem_pending *p = malloc(sizeof(*p) + len);
			if (!p)
				return -ENOMEM;
			p->off = off;
			p->len = len;
			p->next = NULL;
			memcpy(p->data, buf, len);
			pthread_mutex_lock(&bd->mem_lock);
			*bd->pending_tail = p;
			bd->pending_tail = &p->next;
			pthread_mutex_unlock(&bd->mem_lock);
			return 0;
		}
	}
	return -EINVAL;
}

int blockdev_flush(struct csv_blockdev *bd)
{
	__atomic_add_fetch(&bd->flushes, 1, __ATOMIC_RELAXED);
	switch (bd->kind) {
	case BDEV_PATH:
		if (bd->rdonly)
			return 0;
		return fdatasync(bd->fd) < 0 ? negative_errno() : 0;
	case BDEV_NBD:
		if (bd->rdonly || nbd_can_flush(bd->nbd) != 1)
			return 0;
		if (bd->io_timeout_ms)
			return nbd_request(bd, NBD_OP_FLUSH, NULL, 0, 0, NULL, NULL);
		if (nbd_flush(bd->nbd, 0) < 0)
			return nbd_issue_error(bd);
		return 0;
	case BDEV_MEM:
		if (mem_power_cut(bd))
			return -EIO;
		pthread_mutex_lock(&bd->mem_lock);
		for (struct mem_pending *p = bd->pending; p; p = p->next)
			memcpy(bd->mem + p->off, p->data, p->len);
		mem_drop_pending(bd);
		pthread_mutex_unlock(&bd->mem_lock);
		return 0;
	}
	return -EINVAL;
}

int blockdev_discard(struct csv_blockdev *bd, uint64_t off, uint64_t len)
{
	int r = check_range(bd, len, off);
	if (r < 0 || len == 0)
		return r;
	switch (bd->kind) {
	case BDEV_PATH:
		if (bd->regular_file) {
			if (fallocate(bd->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) < 0 &&
			    errno != EOPNOTSUPP)
				return negative_errno();
		} else {
			uint64_t range[2] = { off, len };
			(void)ioctl(bd->fd, BLKDISCARD, range); /* advisory */
		}
		return 0;
	case BDEV_NBD:
		if (nbd_can_trim(bd->nbd) != 1)
			return 0;
		if (bd->io_timeout_ms) {
			/* Advisory, but one that timed out may still run, as a late
			 * write would: the caller hears of it. */
			r = nbd_request(bd, NBD_OP_TRIM, NULL, len, off, NULL, NULL);
			return r == -ETIMEDOUT ? r : 0;
		}
		(void)nbd_trim(bd->nbd, len, off, 0);
		return 0;
	case BDEV_MEM:
		return 0;
	}
	return -EINVAL;
}

void blockdev_mem_crash(struct csv_blockdev *bd)
{
	if (bd->kind != BDEV_MEM)
		return;
	pthread_mutex_lock(&bd->mem_lock);
	mem_drop_pending(bd);
	pthread_mutex_unlock(&bd->mem_lock);
}

uint8_t *blockdev_mem_data(struct csv_blockdev *bd)
{
	return bd->kind == BDEV_MEM ? bd->mem : NULL;
}

void blockdev_set_io_timeout(struct csv_blockdev *bd, unsigned io_timeout_ms)
{
	bd->io_timeout_ms = io_timeout_ms;
}

unsigned blockdev_io_timeout(const struct csv_blockdev *bd) { return bd->io_timeout_ms; }

unsigned blockdev_stalled(struct csv_blockdev *bd)
{
	if (bd->kind != BDEV_NBD)
		return 0;
	pthread_mutex_lock(&bd->aio_lock);
	unsigned n = bd->stalled;
	pthread_mutex_unlock(&bd->aio_lock);
	return n;
}

uint64_t blockdev_size(const struct csv_blockdev *bd) { return bd->size; }
uint32_t blockdev_alignment(const struct csv_blockdev *bd) { return bd->alignment; }
const char *blockdev_name(const struct csv_blockdev *bd) { return bd->name; }
bool blockdev_is_regular_file(const struct csv_blockdev *bd) { return bd->regular_file; }

void blockdev_mem_crash_random(struct csv_blockdev *bd, unsigned seed)
{
	if (bd->kind != BDEV_MEM)
		return;
	pthread_mutex_lock(&bd->mem_lock);
	bool torn = false;
	for (struct mem_pending *p = bd->pending; p; p = p->next) {
		if (rand_r(&seed) % 2)
			continue; /* lost */
		size_t len = p->len;
		if (!torn && len > 512 && rand_r(&seed) % 4 == 0) {
			len = 512 * (1 + rand_r(&seed) % ((len - 1) / 512));
			torn = true;
		}
		memcpy(bd->mem + p->off, p->data, len);
	}
	mem_drop_pending(bd);
	pthread_mutex_unlock(&bd->mem_lock);
}

size_t blockdev_mem_pending(const struct csv_blockdev *bd)
{
	size_t n = 0;
	pthread_mutex_lock((pthread_mutex_t *)&bd->mem_lock);
	for (const struct mem_pending *p = bd->pending; p; p = p->next)
		n++;
	pthread_mutex_unlock((pthread_mutex_t *)&bd->mem_lock);
	return n;
}

uint64_t blockdev_flush_count(const struct csv_blockdev *bd)
{
	return __atomic_load_n(&bd->flushes, __ATOMIC_RELAXED);
}

void blockdev_mem_fail_after(struct csv_blockdev *bd, int64_t ios)
{
	pthread_mutex_lock(&bd->mem_lock);
	bd->fail_after = ios;
	pthread_mutex_unlock(&bd->mem_lock);
}
