/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared by the Check suites: a fast assertion for hot loops and a seeded
 * pseudo-random generator (xorshift64*), so that a failing randomized test
 * can be replayed from its seed. Tests only. */
#pragma once

#include <check.h>
#include <stdint.h>

/* A passing ck_assert records a mark point (a write to the parent
 * process): far too slow in loops of many thousands, so hot loops use
 * this, which calls Check only on failure. */
#define REQUIRE(cond, ...) do { if (!(cond)) ck_abort_msg(__VA_ARGS__); } while (0)

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

/* Starts the sequence from seed s (0 picks a fixed non-zero seed). */
static inline void rng_seed(uint64_t s)
{
	rng_state = s ? s : 0x9e3779b97f4a7c15ull;
}

/* The next 64 pseudo-random bits. */
static inline uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1Dull;
}
