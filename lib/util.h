/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Small helpers shared by every component: cleanup attributes, errno
 * wrappers, arithmetic on sizes. No dependencies beyond libc. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))
#define ROUND_UP(n, d) (DIV_ROUND_UP(n, d) * (d))
#define IS_POWER_OF_2(x) ((x) != 0 && ((x) & ((x) - 1)) == 0)

static inline void freep(void *p) { free(*(void **)p); }
static inline void closep(int *fd) { if (*fd >= 0) close(*fd); }

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))

/* Returns -errno of the last failed libc call, never 0. */
static inline int negative_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

/* Takes ownership of a pointer, leaving NULL behind (for _cleanup_free_). */
#define TAKE_PTR(p) ({ __typeof__(p) _p = (p); (p) = NULL; _p; })

/* Parses a size such as 4096, 64K, 16M, 1G or 1T (binary units). */
int parse_size(const char *s, uint64_t *ret);

/* Whether process pid has ended: gone, or a zombie, which holds no file
 * and issues no I/O. A process that a SIGKILL has not ended yet is still
 * inside a system call, possibly a write on its way to a LUN. */
bool process_ended(pid_t pid);

#include <time.h>

/* Wall-clock time in nanoseconds since 1970, as records store times. */
static inline uint64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CLOCK_MONOTONIC in nanoseconds: deadlines, leases, timeouts. */
static inline uint64_t monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Writes a sentence into err (when err is given) and returns -EUCLEAN:
 * the way decoders say what is inconsistent in a structure. */
_printf_(3, 4) int err_unclean(char *err, size_t errlen, const char *fmt, ...);
