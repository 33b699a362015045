/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Little-endian integer types for on-disk and on-wire structures. Each is a
 * struct so that a forgotten conversion does not compile. */
#pragma once

#include <endian.h>
#include <stdint.h>

typedef struct { uint16_t v; } __attribute__((packed, aligned(2))) le16;
typedef struct { uint32_t v; } __attribute__((packed, aligned(4))) le32;
typedef struct { uint64_t v; } __attribute__((packed, aligned(8))) le64;

static inline uint16_t le16_to_cpu(le16 x) { return le16toh(x.v); }
static inline uint32_t le32_to_cpu(le32 x) { return le32toh(x.v); }
static inline uint64_t le64_to_cpu(le64 x) { return le64toh(x.v); }
static inline le16 cpu_to_le16(uint16_t x) { return (le16){ htole16(x) }; }
static inline le32 cpu_to_le32(uint32_t x) { return (le32){ htole32(x) }; }
static inline le64 cpu_to_le64(uint64_t x) { return (le64){ htole64(x) }; }
