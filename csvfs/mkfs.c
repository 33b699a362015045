/* SPDX-License-Identifier: GPL-2.0-or-later */
/* mkfs.csvfs: formats a LUN (block device, image file or NBD URI) as a
 * csvfs volume. */
#include <blkid/blkid.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "mkfs-format.h"
#include "util.h"
#include "volume.h"

#define EXIT_USAGE 16

static const char *prog = "mkfs.csvfs";

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [options] DEVICE-OR-FILE\n"
		"Format a shared LUN as a csvfs volume.\n\n"
		"  -L, --label LABEL         volume label (up to 64 bytes)\n"
		"  -c, --cluster-size SIZE   cluster size, a power of two from 4K to 64K (default 4K)\n"
		"  -N, --max-nodes N         node slots in the cluster area, 1 to 64 (default 16)\n"
		"  -J, --journal-size SIZE   metadata journal size (default 1/128 of the volume,\n"
		"                            from 1M to 128M)\n"
		"  -U, --uuid UUID           volume UUID (default: random)\n"
		"  -s, --size SIZE           create the image file, or grow it, to SIZE\n"
		"  -f, --force               format even over an existing signature\n"
		"  -n, --dry-run             print the layout, write nothing\n"
		"  -q, --quiet               print nothing but errors\n"
		"  -h, --help                show this help\n"
		"  -V, --version             show the version\n\n"
		"SIZE takes the suffixes K, M, G and T (powers of 1024).\n", prog);
}

static int parse_uuid(const char *s, uint8_t out[16])
{
	size_t n = 0;
	for (const char *p = s; *p && n < 32; p++) {
		if (*p == '-')
			continue;
		int v;
		if (*p >= '0' && *p <= '9') v = *p - '0';
		else if (*p >= 'a' && *p <= 'f') v = *p - 'a' + 10;
		else if (*p >= 'A' && *p <= 'F') v = *p - 'A' + 10;
		else return -EINVAL;
		if (n % 2 == 0) out[n / 2] = (uint8_t)(v << 4);
		else out[n / 2] |= (uint8_t)v;
		n++;
	}
	return n == 32 && strlen(s) <= 36 ? 0 : -EINVAL;
}

/* Creates or grows a regular file to size bytes (sparse). */
static int ensure_file_size(const char *path, uint64_t size)
{
	struct stat st;
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
		return -ENOTSUP;
	_cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return negative_errno();
	if (fstat(fd, &st) < 0)
		return negative_errno();
	if ((uint64_t)st.st_size < size && ftruncate(fd, (off_t)size) < 0)
		return negative_errno();
	return 0;
}

/* Looks for signatures of other filesystems, RAID members and partition
 * tables with libblkid, and for an existing csvfs volume; fills what (the
 * name of what was found) and returns 1 when something is there. Reads the
 * device's topology on the way. With wipe, erases what libblkid finds. */
static int probe_device(const char *path, bool wipe, char *what, size_t whatlen, uint32_t *ret_align,
			uint64_t *ret_size)
{
	_cleanup_close_ int fd = open(path, (wipe ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	blkid_probe pr;
	int found = 0;

	*ret_align = 0;
	if (fd < 0)
		return negative_errno();
	pr = blkid_new_probe();
	if (!pr)
		return -ENOMEM;
	if (blkid_probe_set_device(pr, fd, 0, 0) < 0) {
		blkid_free_probe(pr);
		return -EIO;
	}
	blkid_loff_t sz = blkid_probe_get_size(pr);
	if (ret_size && sz > 0)
		*ret_size = (uint64_t)sz;
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_USAGE | BLKID_SUBLKS_MAGIC);
	blkid_probe_enable_partitions(pr, 1);
	blkid_probe_set_partitions_flags(pr, BLKID_PARTS_MAGIC);

	blkid_topology tp = blkid_probe_get_topology(pr);
	if (tp) {
		unsigned long opt = blkid_topology_get_optimal_io_size(tp);
		unsigned long min = blkid_topology_get_minimum_io_size(tp);
		*ret_align = (uint32_t)(opt ? opt : min);
	}

	if (wipe) {
		while (blkid_do_probe(pr) == 0) {
			if (blkid_do_wipe(pr, 0) < 0)
				break;
		}
	} else if (blkid_do_safeprobe(pr) == 0) {
		const char *type = NULL, *usage = NULL, *pttype = NULL;
		blkid_probe_lookup_value(pr, "TYPE", &type, NULL);
		blkid_probe_lookup_value(pr, "USAGE", &usage, NULL);
		blkid_probe_lookup_value(pr, "PTTYPE", &pttype, NULL);
		if (pttype)
			snprintf(what, whatlen, "a %s partition table", pttype);
		else if (usage && strcmp(usage, "raid") == 0)
			snprintf(what, whatlen, "a %s RAID member signature", type ? type : "RAID");
		else
			snprintf(what, whatlen, "a %s %s signature", type ? type : "unknown",
				 usage ? usage : "filesystem");
		found = 1;
	}
	blkid_free_probe(pr);
	return found;
}

static void show_progress(void *ud, const char *phase, uint64_t done, uint64_t total)
{
	if (!isatty(STDERR_FILENO))
		return;
	fprintf(stderr, "\r%s: writing %-16s", prog, phase);
	if (strcmp(phase, "done") == 0)
		fprintf(stderr, "\r\033[K");
}

static void print_layout(const struct csv_geometry *g)
{
	char uuid[37];
	uuid_format(g->uuid, uuid);
	printf("Volume:        %s, label \"%s\"\n", uuid, g->label);
	printf("Size:          %" PRIu64 " bytes in %" PRIu64 " clusters of %u bytes\n",
	       g->total_clusters * g->cluster_size, g->total_clusters, g->cluster_size);
	printf("Node slots:    %u (cluster area at block %" PRIu64 ", %" PRIu64 " blocks)\n",
	       g->max_nodes, g->cluster_area_block, g->cluster_area_blocks);
	printf("Journal:       block %" PRIu64 ", %" PRIu64 " blocks (%" PRIu64 " KiB)\n",
	       g->journal_block, g->journal_blocks, g->journal_blocks * 4);
	printf("Bitmaps:       clusters at block %" PRIu64 " (%" PRIu64 " blocks), records at block %" PRIu64
	       " (%" PRIu64 " blocks, up to %" PRIu64 " records)\n",
	       g->cbitmap_block, g->cbitmap_blocks, g->rbitmap_block, g->rbitmap_blocks, g->max_records);
	printf("MFT:           block %" PRIu64 ", mirror of record 0 at block %" PRIu64 "\n",
	       g->mft_block, g->mft_mirror_block);
	printf("MFT zone:      clusters %" PRIu64 "-%" PRIu64 "\n", g->mft_zone_lcn,
	       g->mft_zone_lcn + g->mft_zone_clusters - 1);
	printf("Data area:     from cluster %" PRIu64 "; backup header at block %" PRIu64 "\n",
	       g->data_lcn, g->backup_header_block);
}

/* Prints the layout mkfs would write on size bytes; 0 or exit status 1. */
static int dry_run_layout(uint64_t size, const struct mkfs_options *o, uint32_t align)
{
	struct csv_geometry g;
	if (geometry_layout(size, o->cluster_size ? o->cluster_size : CSV_DEFAULT_CLUSTER_SIZE,
			    o->max_nodes ? o->max_nodes : CSV_DEFAULT_MAX_NODES, align, o->journal_bytes, &g) < 0) {
		fprintf(stderr, "%s: %" PRIu64 " bytes are too small for this layout\n", prog, size);
		return 1;
	}
	snprintf(g.label, sizeof(g.label), "%s", o->label ? o->label : "");
	memcpy(g.uuid, o->uuid, 16);
	print_layout(&g);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "label", required_argument, NULL, 'L' },
		{ "cluster-size", required_argument, NULL, 'c' },
		{ "max-nodes", required_argument, NULL, 'N' },
		{ "journal-size", required_argument, NULL, 'J' },
		{ "uuid", required_argument, NULL, 'U' },
		{ "size", required_argument, NULL, 's' },
		{ "force", no_argument, NULL, 'f' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct mkfs_options o = { 0 };
	bool force = false, dry_run = false, quiet = false;
	uint64_t size = 0, v;
	char err[512] = "";
	int c, r;

	while ((c = getopt_long(argc, argv, "L:c:N:J:U:s:fnqhV", opts, NULL)) != -1) {
		switch (c) {
		case 'L':
			if (strlen(optarg) > CSV_LABEL_MAX) {
				fprintf(stderr, "%s: label \"%s\" is longer than %d bytes\n", prog, optarg, CSV_LABEL_MAX);
				return EXIT_USAGE;
			}
			o.label = optarg;
			break;
		case 'c':
			if (parse_size(optarg, &v) < 0 || !IS_POWER_OF_2(v) || v < CSV_MIN_CLUSTER_SIZE ||
			    v > CSV_MAX_CLUSTER_SIZE) {
				fprintf(stderr, "%s: cluster size '%s' is not a power of two from 4K to 64K\n", prog, optarg);
				return EXIT_USAGE;
			}
			o.cluster_size = (uint32_t)v;
			break;
		case 'N': {
			char *end;
			unsigned long n = strtoul(optarg, &end, 10);
			if (*optarg == '\0' || *end || n < 1 || n > CSV_MAX_NODES_LIMIT) {
				fprintf(stderr, "%s: max nodes '%s' is not a number from 1 to %u\n", prog, optarg,
					CSV_MAX_NODES_LIMIT);
				return EXIT_USAGE;
			}
			o.max_nodes = (uint32_t)n;
			break;
		}
		case 'J':
			if (parse_size(optarg, &v) < 0 || v < (256u << 10) || v > (1ull << 30)) {
				fprintf(stderr, "%s: journal size '%s' is not between 256K and 1G\n", prog, optarg);
				return EXIT_USAGE;
			}
			o.journal_bytes = v;
			break;
		case 'U':
			if (parse_uuid(optarg, o.uuid) < 0) {
				fprintf(stderr, "%s: '%s' is not a UUID\n", prog, optarg);
				return EXIT_USAGE;
			}
			o.uuid_set = true;
			break;
		case 's':
			if (parse_size(optarg, &size) < 0 || size == 0) {
				fprintf(stderr, "%s: size '%s' is not a size (such as 64M or 1T)\n", prog, optarg);
				return EXIT_USAGE;
			}
			break;
		case 'f': force = true; break;
		case 'n': dry_run = true; break;
		case 'q': quiet = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("%s (%s) %s\n", prog, PACKAGE_NAME, PACKAGE_VERSION); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "%s: expected one DEVICE-OR-FILE\n", prog);
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *path = argv[optind];
	bool is_nbd = strncmp(path, "nbd", 3) == 0 && strstr(path, "://");

	if (dry_run && size)
		return dry_run_layout(size, &o, 0); /* the file need not exist */
	if (size && !is_nbd) {
		r = ensure_file_size(path, size);
		if (r < 0) {
			fprintf(stderr, "%s: cannot create or grow %s to %" PRIu64 " bytes: %s\n", prog, path, size,
				strerror(-r));
			return 1;
		}
	}

	struct csv_blockdev *bd;
	r = blockdev_open(path, (dry_run ? CSV_BDEV_RDONLY : 0) | CSV_BDEV_EXCL, &bd);
	if (r < 0) {
		fprintf(stderr, "%s: cannot open %s: %s\n", prog, path, strerror(-r));
		return 1;
	}

	/* An existing csvfs volume counts as a signature too. */
	struct csv_volume *old;
	char what[256] = "";
	bool found = false;
	if (volume_open_bdev(bd, &old, NULL, 0) == 0) {
		char u[37];
		uuid_format(old->g.uuid, u);
		snprintf(what, sizeof(what), "a csvfs volume (UUID %s, label \"%s\")", u, old->g.label);
		found = true;
		volume_close(old);
	}
	uint32_t align = blockdev_alignment(bd);
	if (!is_nbd) {
		uint32_t topo_align;
		char other[128] = "";
		uint64_t blkid_size = 0;
		r = probe_device(path, false, other, sizeof(other), &topo_align, &blkid_size);
		if (blkid_size && blkid_size != blockdev_size(bd)) {
			fprintf(stderr, "%s: %s: libblkid sees %" PRIu64 " bytes but the device reports %" PRIu64 "\n",
				prog, path, blkid_size, blockdev_size(bd));
			blockdev_close(bd);
			return 1;
		}
		if (r > 0) {
			size_t n = strlen(what);
			snprintf(what + n, sizeof(what) - n, "%s%s", found ? " and " : "", other);
			found = true;
		}
		if (topo_align)
			align = topo_align;
	}
	if (found && !force && !dry_run) {
		fprintf(stderr, "%s: %s holds %s; use -f to format it anyway\n", prog, path, what);
		blockdev_close(bd);
		return 1;
	}
	o.alignment = align;

	if (dry_run) {
		uint64_t dev_size = blockdev_size(bd);
		blockdev_close(bd);
		if (found)
			printf("Note:          %s holds %s; formatting it needs -f\n", path, what);
		return dry_run_layout(dev_size, &o, align);
	}
	if (found && !is_nbd) {
		uint32_t dummy;
		(void)probe_device(path, true, what, sizeof(what), &dummy, NULL);
	}

	struct csv_geometry g;
	if (!quiet)
		o.progress = show_progress;
	r = volume_format(bd, &o, &g, err, sizeof(err));
	blockdev_close(bd);
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return 1;
	}
	if (!quiet)
		print_layout(&g);
	return 0;
}
