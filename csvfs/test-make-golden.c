/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Writes the golden image: a small volume holding the known tree of
 * test-volume-util.c. Run it only when the format version changes, and
 * commit the result (gzip'ed) under tests/golden/. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "test-volume-util.h"
#include "util.h"

#define GOLDEN_SIZE (8u << 20)

int main(int argc, char **argv)
{
	struct csv_blockdev *bd;
	if (argc != 2) {
		fprintf(stderr, "usage: %s OUTPUT.img\n", argv[0]);
		return 16;
	}
	int r = tvol_make(GOLDEN_SIZE, 4096, &bd);
	if (r == 0)
		r = tvol_populate(bd);
	if (r < 0) {
		fprintf(stderr, "test-make-golden: cannot build the volume: %s\n", strerror(-r));
		return 1;
	}
	_cleanup_close_ int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, blockdev_mem_data(bd), GOLDEN_SIZE) != GOLDEN_SIZE) {
		fprintf(stderr, "test-make-golden: cannot write %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	blockdev_close(bd);
	return 0;
}
