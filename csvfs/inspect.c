/* SPDX-License-Identifier: GPL-2.0-or-later */
/* csvfs-inspect: a read-only look at a csvfs volume: headers, records,
 * directories, free space, the journal and the cluster area. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "btree.h"
#include "clusterarea.h"
#include "config.h"
#include "fs.h"
#include "journal.h"
#include "meta.h"
#include "record.h"
#include "runlist.h"
#include "util.h"

#define EXIT_USAGE 16

static const char *prog = "csvfs-inspect";

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [options] DEVICE [COMMAND [ARG]]\n"
		"Show what is on a csvfs volume, without changing it.\n\n"
		"Commands:\n"
		"  header              both volume headers and the region layout (default)\n"
		"  record NUMBER|PATH  a file record: fields, names, runs, extended attributes\n"
		"  ls PATH             a directory's entries in index order\n"
		"  free                the free-space map\n"
		"  journal             the journal's superblock and committed transactions\n"
		"  nodes               the cluster area: lease, witness, node slots\n\n"
		"  -h, --help          show this help\n"
		"  -V, --version       show the version\n", prog);
}

static const char *fmt_time(uint64_t ns, char *buf, size_t len)
{
	time_t t = (time_t)(ns / 1000000000ull);
	struct tm tm;
	if (ns == 0) {
		snprintf(buf, len, "never");
		return buf;
	}
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
	return buf;
}

static int cmd_header(struct csv_volume *v)
{
	const struct csv_geometry *g = &v->g;
	char uuid[37], t[64];
	uuid_format(g->uuid, uuid);
	printf("Primary header (block 0):     %s\n", v->primary_header_bad ? "DAMAGED (using the backup)" : "valid");
	printf("Backup header (block %" PRIu64 "): %s\n", g->backup_header_block,
	       v->backup_header_bad ? "DAMAGED or different" : "valid");
	printf("Format version:    %u.%u\n", g->version_major, g->version_minor);
	printf("UUID:              %s\n", uuid);
	printf("Label:             %s\n", g->label);
	printf("State:             %s\n", g->state == CSV_STATE_CLEAN ? "clean" : "errors found");
	printf("Features:          compat 0x%" PRIx64 ", ro_compat 0x%" PRIx64 ", incompat 0x%" PRIx64 "\n",
	       g->feature_compat, g->feature_ro_compat, g->feature_incompat);
	printf("Cluster size:      %u bytes\n", g->cluster_size);
	printf("Clusters:          %" PRIu64 " (%" PRIu64 " bytes)\n", g->total_clusters,
	       g->total_clusters * g->cluster_size);
	printf("Created:           %s\n", fmt_time(g->mkfs_time_ns, t, sizeof(t)));
	printf("Last checked:      %s\n", fmt_time(g->check_time_ns, t, sizeof(t)));
	printf("\n%-18s %12s %12s\n", "Region", "Block", "Blocks");
	printf("%-18s %12u %12u\n", "volume header", 0, 1);
	printf("%-18s %12" PRIu64 " %12" PRIu64 "  (%u node slots)\n", "cluster area", g->cluster_area_block,
	       g->cluster_area_blocks, g->max_nodes);
	printf("%-18s %12" PRIu64 " %12" PRIu64 "\n", "journal", g->journal_block, g->journal_blocks);
	printf("%-18s %12" PRIu64 " %12" PRIu64 "\n", "cluster bitmap", g->cbitmap_block, g->cbitmap_blocks);
	printf("%-18s %12" PRIu64 " %12" PRIu64 "  (%" PRIu64 " records at most)\n", "record bitmap",
	       g->rbitmap_block, g->rbitmap_blocks, g->max_records);
	printf("%-18s %12" PRIu64 " %12u\n", "MFT mirror", g->mft_mirror_block, 1);
	printf("%-18s %12" PRIu64 " %12" PRIu64 "  (clusters %" PRIu64 "-%" PRIu64 ")\n", "MFT zone",
	       lcn_to_block(g, g->mft_zone_lcn), lcn_to_block(g, g->mft_zone_clusters), g->mft_zone_lcn,
	       g->mft_zone_lcn + g->mft_zone_clusters - 1);
	printf("%-18s %12" PRIu64 "\n", "MFT record 0", g->mft_block);
	printf("%-18s %12" PRIu64 " %12u\n", "backup header", g->backup_header_block, 1);
	return 0;
}

static const char *type_name(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return "file";
	case S_IFDIR: return "directory";
	case S_IFLNK: return "symlink";
	case S_IFCHR: return "character device";
	case S_IFBLK: return "block device";
	case S_IFIFO: return "fifo";
	case S_IFSOCK: return "socket";
	default: return "unknown";
	}
}

static void print_runs(struct csv_fs *fs, const void *rec)
{
	struct csv_runlist rl;
	int r = record_data_get_runs(rec, &fs->nv.io, record_ref(rec), fs->v->g.total_clusters, &rl);
	if (r < 0) {
		printf("Runs:          unreadable: %s\n", strerror(-r));
		return;
	}
	printf("Runs:          %zu%s\n", rl.count, rl.n_ext ? "" : " (in the record)");
	for (size_t i = 0; i < rl.n_ext; i++)
		printf("  extent block %" PRIu64 "\n", rl.ext_blocks[i]);
	for (size_t i = 0; i < rl.count; i++)
		printf("  vcn %10" PRIu64 "  lcn %12" PRIu64 "  length %10u%s\n", rl.runs[i].vcn, rl.runs[i].lcn,
		       rl.runs[i].length, rl.runs[i].flags & CSV_RUN_UNWRITTEN ? "  unwritten" : "");
	runlist_free(&rl);
}

static int cmd_record(struct csv_fs *fs, const char *arg)
{
	uint64_t recno, block;
	char *end, err[256] = "", t[64];
	_cleanup_free_ uint8_t *buf = malloc(CSV_RECORD_SIZE);
	int r;

	if (!buf)
		return -ENOMEM;
	recno = strtoull(arg, &end, 10);
	if (arg[0] == '/') {
		r = fs_resolve(fs, arg, &recno);
		if (r < 0) {
			fprintf(stderr, "%s: %s: %s\n", prog, arg, strerror(-r));
			return r;
		}
	} else if (*arg == '\0' || *end) {
		fprintf(stderr, "%s: '%s' is neither a record number nor an absolute path\n", prog, arg);
		return -EINVAL;
	}
	r = mft_record_block(&fs->mft, recno, &block);
	if (r < 0) {
		fprintf(stderr, "%s: record %" PRIu64 " is beyond the MFT (%" PRIu64 " records)\n", prog, recno,
			fs->mft.nrecords);
		return r;
	}
	r = mft_read(&fs->mft, recno, buf, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "%s: record %" PRIu64 " (block %" PRIu64 ") is damaged: %s\n", prog, recno, block, err);
		return r;
	}
	const struct csv_d_record *rec = (const void *)buf;
	uint16_t flags = le16_to_cpu(rec->flags);
	uint32_t mode = le32_to_cpu(rec->mode);
	printf("Record:        %" PRIu64 " (block %" PRIu64 "), sequence %u, LSN %" PRIu64 "\n", recno, block,
	       le16_to_cpu(rec->seq), le64_to_cpu(rec->h.lsn));
	printf("Flags:         %s%s%s%s\n", flags & CSV_REC_IN_USE ? "in-use " : "free ",
	       flags & CSV_REC_DIRECTORY ? "directory " : "", flags & CSV_REC_SYSTEM ? "system " : "",
	       flags & CSV_REC_ORPHAN ? "orphan " : "");
	if (!(flags & CSV_REC_IN_USE))
		return 0;
	printf("Type:          %s, mode %04o\n", type_name(mode), mode & 07777);
	printf("Links:         %u\n", le32_to_cpu(rec->nlink));
	printf("Owner:         uid %u, gid %u\n", le32_to_cpu(rec->uid), le32_to_cpu(rec->gid));
	if (S_ISCHR(mode) || S_ISBLK(mode))
		printf("Device:        %u:%u\n", le32_to_cpu(rec->rdev) >> 20, le32_to_cpu(rec->rdev) & 0xfffff);
	printf("Size:          %" PRIu64 " bytes, valid data length %" PRIu64 ", %" PRIu64 " clusters\n",
	       le64_to_cpu(rec->size), le64_to_cpu(rec->valid_data_length), le64_to_cpu(rec->alloc_clusters));
	printf("Parent:        record %" PRIu64 "\n", CSV_REF_RECNO(le64_to_cpu(rec->parent)));
	printf("Modified:      %s\n", fmt_time(le64_to_cpu(rec->mtime_ns), t, sizeof(t)));
	printf("Changed:       %s\n", fmt_time(le64_to_cpu(rec->ctime_ns), t, sizeof(t)));
	printf("Accessed:      %s\n", fmt_time(le64_to_cpu(rec->atime_ns), t, sizeof(t)));
	printf("Born:          %s\n", fmt_time(le64_to_cpu(rec->btime_ns), t, sizeof(t)));
	const struct csv_d_attr *a;
	for (unsigned i = 0; (a = record_attr_find_const(buf, CSV_ATTR_NAME, i)); i++) {
		const struct csv_d_attr_name *n = attr_payload_const(a);
		printf("Name:          \"%.*s\" in record %" PRIu64 "\n", le16_to_cpu(n->name_len), n->name,
		       CSV_REF_RECNO(le64_to_cpu(n->parent)));
	}
	a = record_attr_find_const(buf, CSV_ATTR_DATA, 0);
	if (a) {
		const struct csv_d_attr_data *d = attr_payload_const(a);
		if (le16_to_cpu(d->form) == CSV_DATA_RESIDENT)
			printf("Data:          %u bytes in the record\n", le32_to_cpu(d->count));
		else
			print_runs(fs, buf);
	}
	a = record_attr_find_const(buf, CSV_ATTR_INDEX_ROOT, 0);
	if (a) {
		struct csv_btree tree = { .io = &fs->nv.io, .owner = record_ref(buf),
					  .root = (void *)attr_payload_const(a), .root_size = CSV_INDEX_ROOT_BYTES };
		uint64_t count = 0;
		const struct csv_d_index_node *node = attr_payload_const(a);
		r = btree_count(&tree, &count);
		printf("Index:         %" PRIu64 " entries, %u levels below the root%s\n", count,
		       le16_to_cpu(node->level), r < 0 ? " (damaged)" : "");
	}
	for (unsigned i = 0; (a = record_attr_find_const(buf, CSV_ATTR_XATTR, i)); i++) {
		const struct csv_d_attr_xattr *x = attr_payload_const(a);
		printf("Xattr:         %.*s (%u bytes)\n", le16_to_cpu(x->name_len), x->data, le16_to_cpu(x->value_len));
	}
	return 0;
}

static const char *dtype_char(uint8_t t)
{
	switch (t) {
	case 1: return "fifo";
	case 2: return "chr";
	case 4: return "dir";
	case 6: return "blk";
	case 8: return "file";
	case 10: return "link";
	case 12: return "sock";
	default: return "?";
	}
}

static int print_entry(void *ud, const uint8_t *name, size_t len, uint64_t ref, uint8_t type)
{
	printf("%10" PRIu64 " %5u  %-4s  %.*s\n", CSV_REF_RECNO(ref), CSV_REF_SEQ(ref), dtype_char(type), (int)len,
	       name);
	return 0;
}

static int cmd_ls(struct csv_fs *fs, const char *path)
{
	uint64_t recno;
	_cleanup_free_ uint8_t *buf = malloc(CSV_RECORD_SIZE);
	char err[256] = "";
	int r = fs_resolve(fs, path, &recno);
	if (r < 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(-r));
		return r;
	}
	r = mft_read(&fs->mft, recno, buf, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "%s: record %" PRIu64 " is damaged: %s\n", prog, recno, err);
		return r;
	}
	struct csv_d_attr *a = record_attr_find(buf, CSV_ATTR_INDEX_ROOT, 0);
	if (!a) {
		fprintf(stderr, "%s: %s is not a directory\n", prog, path);
		return -ENOTDIR;
	}
	struct csv_btree t = { .io = &fs->nv.io, .owner = record_ref(buf), .root = attr_payload(a),
			       .root_size = CSV_INDEX_ROOT_BYTES };
	printf("%10s %5s  %-4s  %s\n", "record", "seq", "type", "name");
	r = btree_iterate(&t, NULL, 0, print_entry, NULL);
	if (r < 0)
		fprintf(stderr, "%s: the index of %s is damaged: %s\n", prog, path, strerror(-r));
	return r;
}

struct free_walk {
	uint64_t extents, clusters, largest;
	uint32_t cs;
};

static int print_free(void *ud, uint64_t lcn, uint64_t len)
{
	struct free_walk *w = ud;
	printf("%14" PRIu64 " %14" PRIu64 " %14" PRIu64 "\n", lcn, lcn + len - 1, len);
	w->extents++;
	w->clusters += len;
	w->largest = MAX(w->largest, len);
	return 0;
}

static int cmd_free(struct csv_fs *fs)
{
	const struct csv_geometry *g = &fs->v->g;
	struct free_walk w = { .cs = g->cluster_size };
	printf("%14s %14s %14s\n", "first", "last", "clusters");
	int r = alloc_iterate_free(fs->alloc, print_free, &w);
	if (r < 0)
		return r;
	printf("\n%" PRIu64 " free clusters (%" PRIu64 " bytes) in %" PRIu64 " extents; the largest has %" PRIu64
	       " clusters.\n", w.clusters, w.clusters * g->cluster_size, w.extents, w.largest);
	printf("MFT zone: clusters %" PRIu64 "-%" PRIu64 ", kept for the MFT while other space remains.\n",
	       g->mft_zone_lcn, g->mft_zone_lcn + g->mft_zone_clusters - 1);
	return 0;
}

static int print_txn(void *ud, uint64_t lsn, uint64_t offset, uint32_t nimages, uint32_t nblocks,
		     uint64_t commit_time_ns)
{
	char t[64];
	printf("  LSN %10" PRIu64 "  at log block %8" PRIu64 "  %4u images, %5u blocks  %s\n", lsn, offset, nimages,
	       nblocks, fmt_time(commit_time_ns, t, sizeof(t)));
	return 0;
}

static int cmd_journal(struct csv_volume *v)
{
	struct csv_journal *j;
	struct journal_info info;
	int r = journal_open(v, &j);
	if (r < 0) {
		fprintf(stderr, "%s: the journal superblock (block %" PRIu64 ") is damaged: %s\n", prog,
			v->g.journal_block, strerror(-r));
		return r;
	}
	journal_get_info(j, &info);
	printf("Journal:       blocks %" PRIu64 "-%" PRIu64 " (log of %" PRIu64 " blocks)\n", v->g.journal_block,
	       v->g.journal_block + v->g.journal_blocks - 1, info.log_blocks);
	printf("Head:          LSN %" PRIu64 " at log block %" PRIu64 "\n", info.head_lsn, info.head_offset);
	printf("Next LSN:      %" PRIu64 "\n", info.next_lsn);
	printf("In use:        %" PRIu64 " blocks\n", info.used_blocks);
	printf("Replay:        %s\n", journal_needs_replay(j) ? "needed" : "not needed");
	printf("Committed transactions in the log:\n");
	r = journal_scan(j, print_txn, NULL);
	journal_close(j);
	return r;
}

static int cmd_nodes(struct csv_volume *v)
{
	_cleanup_free_ uint8_t *buf = malloc(CSV_BLOCK_SIZE);
	char err[200], name[64];
	int bad = 0;

	if (!buf)
		return -ENOMEM;
	for (uint64_t i = 0; i < v->g.cluster_area_blocks; i++) {
		clusterarea_block_name(i, name, sizeof(name));
		if (clusterarea_verify_block(v, i, buf, err, sizeof(err)) < 0) {
			printf("%-26s block %" PRIu64 ": DAMAGED: %s\n", name, v->g.cluster_area_block + i, err);
			bad++;
			continue;
		}
		switch (clusterarea_magic(i)) {
		case CSV_MAGIC_LEASE: {
			const struct csv_d_lease *l = (const void *)buf;
			printf("%-26s holder node %u, epoch %" PRIu64 ", renewal %" PRIu64 ", lease %" PRIu64 " ms\n", name,
			       le32_to_cpu(l->holder_node), le64_to_cpu(l->epoch), le64_to_cpu(l->renew_seq),
			       le64_to_cpu(l->lease_ms));
			break;
		}
		case CSV_MAGIC_WITNESS: {
			const struct csv_d_witness *w = (const void *)buf;
			printf("%-26s holder node %u, generation %" PRIu64 ", renewal %" PRIu64 "\n", name,
			       le32_to_cpu(w->holder_node), le64_to_cpu(w->generation), le64_to_cpu(w->renew_seq));
			break;
		}
		case CSV_MAGIC_HEARTBEAT: {
			const struct csv_d_heartbeat *h = (const void *)buf;
			if (le32_to_cpu(h->node_id) == 0) {
				printf("%-26s free\n", name);
				break;
			}
			printf("%-26s node %u (%.64s), beat %" PRIu64 ", incarnation %" PRIu64 ", every %u ms%s%s\n",
			       name, le32_to_cpu(h->node_id), (const char *)h->node_name, le64_to_cpu(h->seq),
			       le64_to_cpu(h->incarnation), le32_to_cpu(h->interval_ms),
			       le32_to_cpu(h->flags) & CSV_HB_RUNNING ? ", running" : "",
			       le32_to_cpu(h->flags) & CSV_HB_FENCED ? ", fenced" : "");
			break;
		}
		case CSV_MAGIC_MAILBOX: {
			const struct csv_d_mailbox *m = (const void *)buf;
			if (le32_to_cpu(m->request))
				printf("%-26s fence request %" PRIu64 " from node %u\n", name,
				       le64_to_cpu(m->request_seq), le32_to_cpu(m->from_node));
			break;
		}
		}
	}
	return bad ? -EUCLEAN : 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	int c, r;
	char err[512] = "";

	while ((c = getopt_long(argc, argv, "+hV", opts, NULL)) != -1) {
		switch (c) {
		case 'h': usage(stdout); return 0;
		case 'V': printf("%s (%s) %s\n", prog, PACKAGE_NAME, PACKAGE_VERSION); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "%s: expected a DEVICE\n", prog);
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *path = argv[optind++];
	const char *cmd = optind < argc ? argv[optind++] : "header";
	const char *arg = optind < argc ? argv[optind++] : NULL;
	bool needs_arg = strcmp(cmd, "record") == 0 || strcmp(cmd, "ls") == 0;
	bool known = needs_arg || strcmp(cmd, "header") == 0 || strcmp(cmd, "free") == 0 ||
		     strcmp(cmd, "journal") == 0 || strcmp(cmd, "nodes") == 0;
	if (!known) {
		fprintf(stderr, "%s: unknown command '%s'\n", prog, cmd);
		return EXIT_USAGE;
	}
	if (needs_arg != (arg != NULL) || optind < argc) {
		fprintf(stderr, "%s: '%s' takes %s\n", prog, cmd, needs_arg ? "one argument" : "no argument");
		return EXIT_USAGE;
	}

	struct csv_volume *v;
	r = volume_open(path, CSV_BDEV_RDONLY, &v, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return 1;
	}
	if (strcmp(cmd, "header") == 0) {
		r = cmd_header(v);
	} else if (strcmp(cmd, "journal") == 0) {
		r = cmd_journal(v);
	} else if (strcmp(cmd, "nodes") == 0) {
		r = cmd_nodes(v);
	} else {
		struct csv_fs *fs;
		r = fs_open(v, strcmp(cmd, "free") != 0, &fs, err, sizeof(err));
		if (r < 0) {
			fprintf(stderr, "%s: %s\n", prog, err[0] ? err : strerror(-r));
		} else {
			if (strcmp(cmd, "record") == 0)
				r = cmd_record(fs, arg);
			else if (strcmp(cmd, "ls") == 0)
				r = cmd_ls(fs, arg);
			else
				r = cmd_free(fs);
			fs_close(fs);
		}
	}
	volume_close(v);
	return r < 0 ? 1 : 0;
}
