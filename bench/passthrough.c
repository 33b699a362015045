/* SPDX-License-Identifier: GPL-2.0-or-later */
/* csv-bench-passthrough: a FUSE3 filesystem that mirrors a source directory,
 * the "FUSE passthrough" baseline of the benchmarks.
 *   csv-bench-passthrough SRC MOUNTPOINT [FUSE options]
 * High-level API, multithreaded. Every path is resolved relative to a
 * descriptor of SRC with the *at() calls; open files keep the descriptor of
 * the file in SRC. A file opened with O_DIRECT is opened with O_DIRECT in
 * SRC too, and answered with direct_io (no page cache in the FUSE mount). */
#define FUSE_USE_VERSION 312

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "config.h"

#define PROG "csv-bench-passthrough"

/* Direct I/O in SRC needs buffers aligned to the logical block size. */
#define DIRECT_ALIGN 4096u

/* fi->fh: the descriptor in SRC, and whether it was opened with O_DIRECT. */
#define FH_DIRECT (UINT64_C(1) << 32)

static int src_fd = -1;

/* "/a/b" -> "a/b", "/" -> ".": a path relative to src_fd. */
static const char *rel(const char *path)
{
	while (*path == '/')
		path++;
	return *path ? path : ".";
}

static int fh_fd(const struct fuse_file_info *fi)
{
	return (int)(uint32_t)fi->fh;
}

static void *pt_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	/* Inode numbers of SRC; operations on open files by descriptor, so
	 * they need no path, and an unlinked open file needs no hiding. */
	cfg->use_ino = 1;
	cfg->nullpath_ok = 1;
	cfg->hard_remove = 1;
	return NULL;
}

static int pt_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	int r = fi ? fstat(fh_fd(fi), st) : fstatat(src_fd, rel(path), st, AT_SYMLINK_NOFOLLOW);
	return r < 0 ? -errno : 0;
}

static int pt_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	if (fi)
		return ftruncate(fh_fd(fi), size) < 0 ? -errno : 0;
	int fd = openat(src_fd, rel(path), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	int r = ftruncate(fd, size) < 0 ? -errno : 0;
	close(fd);
	return r;
}

static int pt_mkdir(const char *path, mode_t mode)
{
	return mkdirat(src_fd, rel(path), mode) < 0 ? -errno : 0;
}

static int pt_unlink(const char *path)
{
	return unlinkat(src_fd, rel(path), 0) < 0 ? -errno : 0;
}

static int pt_rmdir(const char *path)
{
	return unlinkat(src_fd, rel(path), AT_REMOVEDIR) < 0 ? -errno : 0;
}

/* Opens path in SRC with the caller's flags (O_DIRECT included). */
static int open_in_src(const char *path, int flags, mode_t mode, struct fuse_file_info *fi)
{
	int fd = openat(src_fd, rel(path), flags | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	fi->fh = (uint64_t)(uint32_t)fd;
	if (flags & O_DIRECT) {
		fi->fh |= FH_DIRECT;
		fi->direct_io = 1;
	}
	return 0;
}

static int pt_open(const char *path, struct fuse_file_info *fi)
{
	return open_in_src(path, fi->flags & ~O_CREAT, 0, fi);
}

static int pt_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	return open_in_src(path, fi->flags | O_CREAT, mode, fi);
}

static int pt_read_buf(const char *path, struct fuse_bufvec **bufp, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	/* Memory buffers, aligned for O_DIRECT; libfuse frees both. */
	struct fuse_bufvec *bv = malloc(sizeof(*bv));
	void *mem = NULL;
	if (!bv)
		return -ENOMEM;
	if (posix_memalign(&mem, DIRECT_ALIGN, size ? size : 1) != 0) {
		free(bv);
		return -ENOMEM;
	}
	ssize_t n = pread(fh_fd(fi), mem, size, off);
	if (n < 0) {
		int e = errno;
		free(mem);
		free(bv);
		return -e;
	}
	*bv = (struct fuse_bufvec)FUSE_BUFVEC_INIT((size_t)n);
	bv->buf[0].mem = mem;
	*bufp = bv;
	return 0;
}

/* One aligned buffer per thread for direct writes, grown on demand and
 * freed when the thread ends. */
struct write_buf {
	void *mem;
	size_t len;
};

static pthread_key_t write_buf_key;

static void write_buf_free(void *p)
{
	struct write_buf *wb = p;
	free(wb->mem);
	free(wb);
}

static void *write_buf_get(size_t size)
{
	struct write_buf *wb = pthread_getspecific(write_buf_key);
	if (!wb) {
		wb = calloc(1, sizeof(*wb));
		if (!wb || pthread_setspecific(write_buf_key, wb) != 0) {
			free(wb);
			return NULL;
		}
	}
	if (wb->len < size) {
		void *mem;
		if (posix_memalign(&mem, DIRECT_ALIGN, size) != 0)
			return NULL;
		free(wb->mem);
		wb->mem = mem;
		wb->len = size;
	}
	return wb->mem;
}

static int pt_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	const void *src = buf;

	/* The request's payload follows its header in libfuse's buffer: copy
	 * it to an aligned buffer when SRC does direct I/O. */
	if ((fi->fh & FH_DIRECT) && ((uintptr_t)buf % DIRECT_ALIGN) != 0 && size > 0) {
		void *aligned = write_buf_get(size);
		if (!aligned)
			return -ENOMEM;
		memcpy(aligned, buf, size);
		src = aligned;
	}
	ssize_t n = pwrite(fh_fd(fi), src, size, off);
	return n < 0 ? -errno : (int)n;
}

static int pt_statfs(const char *path, struct statvfs *st)
{
	return fstatvfs(src_fd, st) < 0 ? -errno : 0;
}

static int pt_release(const char *path, struct fuse_file_info *fi)
{
	close(fh_fd(fi));
	return 0;
}

static int pt_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	int r = datasync ? fdatasync(fh_fd(fi)) : fsync(fh_fd(fi));
	return r < 0 ? -errno : 0;
}

static int pt_opendir(const char *path, struct fuse_file_info *fi)
{
	int fd = openat(src_fd, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = errno;
		close(fd);
		return -e;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	return 0;
}

static int pt_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	DIR *d = (DIR *)(uintptr_t)fi->fh;
	struct dirent *de;

	/* Offsets are 0 for every entry: libfuse asks for the whole directory
	 * at once, from the start, and serves the kernel from its copy. */
	rewinddir(d);
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		struct stat st = { .st_ino = de->d_ino, .st_mode = (mode_t)DTTOIF(de->d_type) };
		if (filler(buf, de->d_name, &st, 0, 0) != 0)
			return 0;
		errno = 0;
	}
	return errno ? -errno : 0;
}

static int pt_releasedir(const char *path, struct fuse_file_info *fi)
{
	closedir((DIR *)(uintptr_t)fi->fh);
	return 0;
}

static const struct fuse_operations pt_ops = {
	.init = pt_init,
	.getattr = pt_getattr,
	.truncate = pt_truncate,
	.mkdir = pt_mkdir,
	.unlink = pt_unlink,
	.rmdir = pt_rmdir,
	.open = pt_open,
	.create = pt_create,
	.read_buf = pt_read_buf,
	.write = pt_write,
	.statfs = pt_statfs,
	.release = pt_release,
	.fsync = pt_fsync,
	.opendir = pt_opendir,
	.readdir = pt_readdir,
	.releasedir = pt_releasedir,
};

struct options {
	char *src;
	int nonopts;
};

/* The first non-option argument is SRC; the rest go to libfuse. */
static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct options *o = data;
	if (key == FUSE_OPT_KEY_NONOPT && o->nonopts++ == 0) {
		o->src = strdup(arg);
		return o->src ? 0 : -1;
	}
	return 1;
}

static void usage(void)
{
	printf("Usage: " PROG " SRC MOUNTPOINT [options]\n"
	       "\n"
	       "Mounts a FUSE filesystem at MOUNTPOINT that mirrors the directory SRC\n"
	       "(the FUSE passthrough baseline of the csvfs benchmarks).\n"
	       "\n");
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct options o = { 0 };
	struct fuse_cmdline_opts co = { 0 };
	struct fuse_loop_config *lc = NULL;
	struct fuse *f = NULL;
	int ret = 1;

	if (fuse_opt_parse(&args, &o, NULL, opt_proc) < 0)
		return 1;
	if (fuse_parse_cmdline(&args, &co) != 0)
		return 1;
	if (co.show_help) {
		usage();
		fuse_cmdline_help();
		fuse_lib_help(&args);
		ret = 0;
		goto out;
	}
	if (co.show_version) {
		printf(PROG " %s\n", PACKAGE_VERSION);
		fuse_lowlevel_version();
		ret = 0;
		goto out;
	}
	if (!o.src || !co.mountpoint) {
		fprintf(stderr, PROG ": a source directory and a mount point are needed (see --help)\n");
		goto out;
	}
	if (pthread_key_create(&write_buf_key, write_buf_free) != 0) {
		fprintf(stderr, PROG ": cannot create a thread-specific key\n");
		goto out;
	}
	src_fd = open(o.src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (src_fd < 0) {
		fprintf(stderr, PROG ": %s: %s\n", o.src, strerror(errno));
		goto out;
	}

	fuse_opt_add_arg(&args, "-ofsname=csv-bench-passthrough");
	f = fuse_new(&args, &pt_ops, sizeof(pt_ops), NULL);
	if (!f)
		goto out;
	if (fuse_mount(f, co.mountpoint) != 0)
		goto out;
	if (fuse_daemonize(co.foreground) != 0)
		goto out_unmount;
	if (fuse_set_signal_handlers(fuse_get_session(f)) != 0)
		goto out_unmount;
	if (co.singlethread) {
		ret = fuse_loop(f) ? 1 : 0;
	} else {
		lc = fuse_loop_cfg_create();
		if (!lc)
			goto out_signals;
		fuse_loop_cfg_set_clone_fd(lc, co.clone_fd);
		if (co.max_threads > 0 && co.max_threads <= 100000)
			fuse_loop_cfg_set_max_threads(lc, co.max_threads);
		/* UINT_MAX: not given, keep libfuse's default. */
		if (co.max_idle_threads != UINT_MAX)
			fuse_loop_cfg_set_idle_threads(lc, co.max_idle_threads);
		ret = fuse_loop_mt(f, lc) ? 1 : 0;
	}
out_signals:
	fuse_remove_signal_handlers(fuse_get_session(f));
out_unmount:
	fuse_unmount(f);
out:
	if (f)
		fuse_destroy(f);
	if (lc)
		fuse_loop_cfg_destroy(lc);
	if (src_fd >= 0)
		close(src_fd);
	free(co.mountpoint);
	free(o.src);
	fuse_opt_free_args(&args);
	return ret;
}
