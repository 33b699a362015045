/* SPDX-License-Identifier: GPL-2.0-or-later */
/* fsck.csvfs: checks and repairs a csvfs volume. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "checker.h"
#include "clusterarea.h"
#include "config.h"
#include "format.h"
#include "volume.h"

static const char *prog = "fsck.csvfs";

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [-n|-y|-p|-a] [-f] [-v] DEVICE\n"
		"Check a csvfs volume and repair what can be repaired.\n\n"
		"  -n          check only: change nothing\n"
		"  -y          repair every problem found\n"
		"  -p, -a      preen: repair automatically (same repairs as -y)\n"
		"  -f          check even a volume marked clean (every check is complete)\n"
		"  -v          verbose: name each pass and show progress\n"
		"  -h, --help  show this help\n"
		"  -V, --version\n"
		"              show the version\n\n"
		"Exit status (as fsck(8)): 0 no errors, 1 errors corrected, 4 errors left\n"
		"uncorrected, 8 operational error, 16 usage error.\n", prog);
}

static void show_progress(void *ud, const char *phase, uint64_t done, uint64_t total)
{
	if (!isatty(STDERR_FILENO))
		return;
	fprintf(stderr, "\r\033[K%s: %s %3u%%", prog, phase, (unsigned)(total ? done * 100 / total : 100));
	if (done == 0 && total == 1)
		fprintf(stderr, "\r\033[K");
}

/* Refuses to repair a volume whose coordinator lease is being renewed:
 * another node has it mounted. Returns 1 when it is in use. */
static int volume_in_use(const char *path)
{
	struct csv_volume *v;
	struct csv_d_lease l1, l2;
	int in_use = 0;

	if (volume_open(path, CSV_BDEV_RDONLY, &v, NULL, 0) < 0)
		return 0; /* fsck reports the damage */
	if (volume_read_meta(v, v->g.cluster_area_block, 1, CSV_MAGIC_LEASE, &l1) == 0 &&
	    le32_to_cpu(l1.holder_node) != 0) {
		uint64_t ms = le64_to_cpu(l1.lease_ms);
		ms = ms < 100 ? 100 : ms > 10000 ? 10000 : ms;
		struct timespec ts = { .tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000 };
		nanosleep(&ts, NULL);
		if (volume_read_meta(v, v->g.cluster_area_block, 1, CSV_MAGIC_LEASE, &l2) == 0 &&
		    le64_to_cpu(l2.renew_seq) != le64_to_cpu(l1.renew_seq))
			in_use = (int)le32_to_cpu(l2.holder_node);
	}
	volume_close(v);
	return in_use;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct fsck_options o = { 0 };
	int modes = 0, c;

	while ((c = getopt_long(argc, argv, "nypafvhV", opts, NULL)) != -1) {
		switch (c) {
		case 'n': o.repair = false; modes |= 1; break;
		case 'y': o.repair = true; modes |= 2; break;
		case 'p': case 'a': o.repair = true; modes |= 4; break;
		case 'f': break;
		case 'v': o.verbose = true; break;
		case 'h': usage(stdout); return FSCK_OK;
		case 'V': printf("%s (%s) %s\n", prog, PACKAGE_NAME, PACKAGE_VERSION); return FSCK_OK;
		default: usage(stderr); return FSCK_USAGE;
		}
	}
	if (modes & (modes - 1)) {
		fprintf(stderr, "%s: only one of -n, -y and -p may be given\n", prog);
		return FSCK_USAGE;
	}
	if (optind != argc - 1) {
		fprintf(stderr, "%s: expected one DEVICE\n", prog);
		usage(stderr);
		return FSCK_USAGE;
	}
	const char *path = argv[optind];
	if (o.verbose) {
		o.progress = show_progress;
	}
	if (o.repair) {
		int node = volume_in_use(path);
		if (node) {
			fprintf(stderr, "%s: %s is in use: node %d renews its coordinator lease; unmount it everywhere first\n",
				prog, path, node);
			return FSCK_OPERATIONAL;
		}
	}
	struct csv_blockdev *bd;
	int r = blockdev_open(path, o.repair ? 0 : CSV_BDEV_RDONLY, &bd);
	if (r < 0) {
		fprintf(stderr, "%s: cannot open %s: %s\n", prog, path, strerror(-r));
		return FSCK_OPERATIONAL;
	}
	int status = fsck_volume(bd, &o, stdout);
	blockdev_close(bd);
	return status;
}
