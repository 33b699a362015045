/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Checking and repairing a volume: the library behind fsck.csvfs, used
 * by tests too. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "blockdev.h"

/* Exit status bits of fsck(8). */
enum {
	FSCK_OK = 0,
	FSCK_CORRECTED = 1,
	FSCK_UNCORRECTED = 4,
	FSCK_OPERATIONAL = 8,
	FSCK_USAGE = 16,
	FSCK_CANCELED = 32,
};

struct fsck_options {
	bool repair;        /* -y / -p: fix what can be fixed */
	bool verbose;       /* -v: a line per phase, and progress */
	/* Called with the phase and done of total, or NULL. */
	void (*progress)(void *ud, const char *phase, uint64_t done, uint64_t total);
	void *progress_ud;
};

/* Checks the volume on bd, printing each problem (and what was done about
 * it) to out, and returns fsck(8) exit status bits. */
int fsck_volume(struct csv_blockdev *bd, const struct fsck_options *o, FILE *out);
