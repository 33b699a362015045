/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "test-volume-util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "fs.h"
#include "mkfs-format.h"
#include "record.h"
#include "util.h"

#define BIG_DIR_ENTRIES 300
#define FRAG_CHUNKS 400

int tvol_make(uint64_t size, uint32_t cluster_size, struct csv_blockdev **ret_bd)
{
	struct csv_blockdev *bd;
	struct csv_geometry g;
	struct mkfs_options o = { .cluster_size = cluster_size, .max_nodes = 4, .label = "test", .uuid_set = true,
				  .time_ns = 1700000000000000000ull };
	char err[256];
	for (int i = 0; i < 16; i++)
		o.uuid[i] = (uint8_t)(0x10 + i);
	int r = blockdev_open_mem(size, false, &bd);
	if (r < 0)
		return r;
	r = volume_format(bd, &o, &g, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "tvol_make: %s\n", err);
		blockdev_close(bd);
		return r;
	}
	*ret_bd = bd;
	return 0;
}

static int write_pattern(struct csv_fs *fs, uint64_t recno, unsigned n, uint64_t off, size_t len)
{
	uint8_t *buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++)
		buf[i] = tvol_pattern(n, off + i);
	int r = fs_write(fs, recno, off, buf, len);
	free(buf);
	return r;
}

#define TRY(x) do { r = (x); if (r < 0) { fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, strerror(-r)); goto out; } } while (0)

int tvol_populate(struct csv_blockdev *bd)
{
	struct csv_volume *v = NULL;
	struct csv_fs *fs = NULL;
	char err[256], name[64];
	uint64_t dir1, big, sub, deeper, f, fa, fb, tmp;
	int r;

	TRY(volume_open_bdev(bd, &v, err, sizeof(err)));
	TRY(fs_open(v, false, &fs, err, sizeof(err)));
	TRY(fs_create(fs, CSV_RECNO_ROOT, "dir1", S_IFDIR | 0755, 1000, 1000, 0, &dir1));
	TRY(fs_create(fs, dir1, "small.txt", S_IFREG | 0644, 1000, 1000, 0, &f));
	TRY(fs_write(fs, f, 0, "hello, csvfs\n", 13));
	TRY(fs_setxattr(fs, f, "user.color", "blue", 4));
	TRY(fs_create(fs, dir1, "medium.bin", S_IFREG | 0600, 0, 0, 0, &f));
	TRY(write_pattern(fs, f, 1, 0, 100 * 1024));
	TRY(fs_link(fs, f, CSV_RECNO_ROOT, "medium-link"));
	TRY(fs_create(fs, dir1, "sub", S_IFDIR | 0750, 0, 0, 0, &sub));
	TRY(fs_create(fs, sub, "deeper", S_IFDIR | 0700, 0, 0, 0, &deeper));
	TRY(fs_create(fs, deeper, "leaf", S_IFREG | 0644, 0, 0, 0, &f));
	TRY(write_pattern(fs, f, 2, 0, 5000));

	TRY(fs_create(fs, CSV_RECNO_ROOT, "big", S_IFDIR | 0755, 0, 0, 0, &big));
	for (unsigned i = 0; i < BIG_DIR_ENTRIES; i++) {
		snprintf(name, sizeof(name), "entry-%04u-with-a-longer-name", i);
		TRY(fs_create(fs, big, name, S_IFREG | 0644, 0, 0, 0, &f));
		TRY(write_pattern(fs, f, 100 + i, 0, 16));
	}

	/* Two files written in turns get fragmented: extent blocks. */
	TRY(fs_create(fs, CSV_RECNO_ROOT, "frag-a.bin", S_IFREG | 0644, 0, 0, 0, &fa));
	TRY(fs_create(fs, CSV_RECNO_ROOT, "frag-b.bin", S_IFREG | 0644, 0, 0, 0, &fb));
	uint32_t cs = v->g.cluster_size;
	for (unsigned i = 0; i < FRAG_CHUNKS; i++) {
		TRY(write_pattern(fs, fa, 3, (uint64_t)i * cs, cs));
		TRY(write_pattern(fs, fb, 4, (uint64_t)i * cs, cs));
	}

	TRY(fs_create(fs, CSV_RECNO_ROOT, "sparse.bin", S_IFREG | 0644, 0, 0, 0, &f));
	TRY(write_pattern(fs, f, 5, 1ull << 30, 4096));
	TRY(fs_symlink(fs, CSV_RECNO_ROOT, "link", "dir1/small.txt", NULL));
	TRY(fs_create(fs, CSV_RECNO_ROOT, "fifo", S_IFIFO | 0644, 0, 0, 0, NULL));
	TRY(fs_create(fs, CSV_RECNO_ROOT, "null", S_IFCHR | 0666, 0, 0, makedev(1, 3), NULL));
	TRY(fs_create(fs, CSV_RECNO_ROOT, "removed", S_IFREG | 0644, 0, 0, 0, &tmp));
	TRY(write_pattern(fs, tmp, 6, 0, 50000));
	TRY(fs_unlink(fs, CSV_RECNO_ROOT, "removed"));
	TRY(fs_sync(fs));
out:
	fs_close(fs);
	volume_close(v);
	return r;
}

#define EXPECT(cond, ...) do { if (!(cond)) { snprintf(err, errlen, __VA_ARGS__); r = -EUCLEAN; goto out; } } while (0)

static int check_pattern(struct csv_fs *fs, const char *path, unsigned n, uint64_t off, size_t len,
			 uint64_t size, char *err, size_t errlen)
{
	uint64_t recno;
	size_t got;
	uint8_t *buf = malloc(len);
	int r = buf ? fs_resolve(fs, path, &recno) : -ENOMEM;
	if (r == 0)
		r = fs_read(fs, recno, off, buf, len, &got);
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		free(buf);
		return r;
	}
	EXPECT(got == len, "%s: read %zu bytes of %zu", path, got, len);
	for (size_t i = 0; i < len; i++)
		EXPECT(buf[i] == tvol_pattern(n, off + i), "%s: byte %" PRIu64 " differs", path, off + i);
	r = fs_read(fs, recno, 0, buf, 0, &got);
	struct csv_d_record *rec = (void *)fs->rec;
	EXPECT(le64_to_cpu(rec->size) == size, "%s: size %" PRIu64 ", expected %" PRIu64, path,
	       le64_to_cpu(rec->size), size);
out:
	free(buf);
	return r;
}

int tvol_verify(struct csv_blockdev *bd, char *err, size_t errlen)
{
	struct csv_volume *v = NULL;
	struct csv_fs *fs = NULL;
	uint64_t recno, recno2;
	char name[64], buf[64];
	size_t got;
	int r;

	r = volume_open_bdev(bd, &v, err, errlen);
	if (r == 0)
		r = fs_open(v, true, &fs, err, errlen);
	if (r < 0)
		goto out;
	uint32_t cs = v->g.cluster_size;
	r = fs_resolve(fs, "/dir1/small.txt", &recno);
	EXPECT(r == 0, "/dir1/small.txt: %s", strerror(-r));
	r = fs_read(fs, recno, 0, buf, sizeof(buf), &got);
	EXPECT(r == 0 && got == 13 && memcmp(buf, "hello, csvfs\n", 13) == 0, "/dir1/small.txt: wrong contents");
	EXPECT(record_attr_find(fs->rec, CSV_ATTR_XATTR, 0) != NULL, "/dir1/small.txt: xattr missing");
	r = check_pattern(fs, "/dir1/medium.bin", 1, 0, 100 * 1024, 100 * 1024, err, errlen);
	if (r < 0)
		goto out;
	r = fs_resolve(fs, "/dir1/medium.bin", &recno);
	r = r ? r : fs_resolve(fs, "/medium-link", &recno2);
	EXPECT(r == 0 && recno == recno2, "/medium-link is not a hard link of /dir1/medium.bin");
	EXPECT(le32_to_cpu(((struct csv_d_record *)fs->rec)->nlink) == 2, "/medium-link: link count is not 2");
	r = check_pattern(fs, "/dir1/sub/deeper/leaf", 2, 0, 5000, 5000, err, errlen);
	if (r < 0)
		goto out;
	for (unsigned i = 0; i < BIG_DIR_ENTRIES; i++) {
		snprintf(name, sizeof(name), "/big/entry-%04u-with-a-longer-name", i);
		r = check_pattern(fs, name, 100 + i, 0, 16, 16, err, errlen);
		if (r < 0)
			goto out;
	}
	r = check_pattern(fs, "/frag-a.bin", 3, 0, (size_t)FRAG_CHUNKS * cs, (uint64_t)FRAG_CHUNKS * cs, err, errlen);
	if (r == 0)
		r = check_pattern(fs, "/frag-b.bin", 4, 0, (size_t)FRAG_CHUNKS * cs, (uint64_t)FRAG_CHUNKS * cs, err,
				  errlen);
	if (r == 0)
		r = check_pattern(fs, "/sparse.bin", 5, 1ull << 30, 4096, (1ull << 30) + 4096, err, errlen);
	if (r < 0)
		goto out;
	r = fs_resolve(fs, "/sparse.bin", &recno);
	memset(buf, 0xff, sizeof(buf));
	r = r ? r : fs_read(fs, recno, 12345, buf, sizeof(buf), &got);
	EXPECT(r == 0 && got == sizeof(buf) && buf[0] == 0 && buf[63] == 0, "/sparse.bin: the hole does not read zeros");
	r = fs_resolve(fs, "/link", &recno);
	r = r ? r : fs_read(fs, recno, 0, buf, sizeof(buf), &got);
	EXPECT(r == 0 && got == 14 && memcmp(buf, "dir1/small.txt", 14) == 0, "/link: wrong target");
	EXPECT(S_ISLNK(le32_to_cpu(((struct csv_d_record *)fs->rec)->mode)), "/link is not a symlink");
	r = fs_resolve(fs, "/null", &recno);
	r = r ? r : fs_read(fs, recno, 0, buf, 0, &got);
	EXPECT(r == 0 && S_ISCHR(le32_to_cpu(((struct csv_d_record *)fs->rec)->mode)) &&
	       le32_to_cpu(((struct csv_d_record *)fs->rec)->rdev) == makedev(1, 3), "/null is not device 1:3");
	r = fs_resolve(fs, "/fifo", &recno);
	EXPECT(r == 0, "/fifo is missing");
	r = fs_resolve(fs, "/removed", &recno);
	EXPECT(r == -ENOENT, "/removed still exists");
	r = 0;
out:
	fs_close(fs);
	volume_close(v);
	return r;
}
