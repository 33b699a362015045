/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "vmstore.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

int vmstore_path(const char *vm_dir, const char *name, const char *suffix, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s.%s", vm_dir, name, suffix);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int vmstore_sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	int r = fsync(fd) < 0 ? negative_errno() : 0;
	close(fd);
	return r;
}

/* Writes all of text to fd. */
static int write_all(int fd, const char *text, size_t len)
{
	while (len) {
		ssize_t n = write(fd, text, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? negative_errno() : -EIO;
		text += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Writes text to a new temporary file beside path and fsyncs it; its
 * name into tmp. */
static int write_temp(const char *path, const char *text, char *tmp, size_t tmplen, char *err, size_t errlen)
{
	if (snprintf(tmp, tmplen, "%s.tmpXXXXXX", path) >= (int)tmplen) {
		snprintf(err, errlen, "the path %s is too long", path);
		return -ENAMETOOLONG;
	}
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		int r = negative_errno();
		snprintf(err, errlen, "cannot create a temporary file beside %s: %s", path, strerror(-r));
		return r;
	}
	int r = fchmod(fd, 0644) < 0 ? negative_errno() : 0;
	if (r == 0)
		r = write_all(fd, text, strlen(text));
	if (r == 0 && fsync(fd) < 0)
		r = negative_errno();
	if (close(fd) < 0 && r == 0)
		r = negative_errno();
	if (r < 0) {
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(-r));
		unlink(tmp);
	}
	return r;
}

/* Renames tmp to path; without replace, refuses an existing path. */
static int rename_in(const char *tmp, const char *path, bool replace)
{
	if (replace)
		return rename(tmp, path) < 0 ? negative_errno() : 0;
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return negative_errno();
	/* A filesystem without RENAME_NOREPLACE: link fails on an existing
	 * name, atomically too. */
	if (link(tmp, path) < 0)
		return negative_errno();
	unlink(tmp);
	return 0;
}

int vmstore_write(const char *vm_dir, const char *name, struct json_object *o, bool replace, char *err,
		  size_t errlen)
{
	char path[PATH_MAX], tmp[PATH_MAX + 16];
	if (vmstore_path(vm_dir, name, "json", path, sizeof(path)) < 0) {
		snprintf(err, errlen, "the path of the definition of %s is too long", name);
		return -ENAMETOOLONG;
	}
	const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
							  JSON_C_TO_STRING_NOSLASHESCAPE);
	_cleanup_free_ char *line = text ? malloc(strlen(text) + 2) : NULL;
	if (!line) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	snprintf(line, strlen(text) + 2, "%s\n", text);
	if (!replace && access(path, F_OK) == 0) {
		snprintf(err, errlen, "VM %s is defined already (%s): give \"replace\": true to replace it", name, path);
		return -EEXIST;
	}
	int r = write_temp(path, line, tmp, sizeof(tmp), err, errlen);
	if (r < 0)
		return r;
	r = rename_in(tmp, path, replace);
	if (r < 0) {
		unlink(tmp);
		if (r == -EEXIST)
			snprintf(err, errlen, "VM %s is defined already (%s): give \"replace\": true to replace it", name,
				 path);
		else
			snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(-r));
		return r;
	}
	r = vmstore_sync_dir(vm_dir);
	if (r < 0) {
		snprintf(err, errlen, "%s written, but the directory %s cannot be synced: %s", path, vm_dir,
			 strerror(-r));
		return r;
	}
	return 0;
}

int vmstore_remove(const char *vm_dir, const char *name, char *err, size_t errlen)
{
	char path[PATH_MAX];
	if (vmstore_path(vm_dir, name, "json", path, sizeof(path)) < 0) {
		snprintf(err, errlen, "the path of the definition of %s is too long", name);
		return -ENAMETOOLONG;
	}
	if (unlink(path) < 0) {
		int r = negative_errno();
		if (r == -ENOENT)
			snprintf(err, errlen, "no VM %s: no definition %s", name, path);
		else
			snprintf(err, errlen, "cannot remove the definition %s: %s", path, strerror(-r));
		return r;
	}
	if (vmstore_path(vm_dir, name, "state", path, sizeof(path)) == 0 && unlink(path) < 0 && errno != ENOENT) {
		int r = negative_errno();
		snprintf(err, errlen, "the definition of %s is removed, but not its saved state %s: %s", name, path,
			 strerror(-r));
		return r;
	}
	int r = vmstore_sync_dir(vm_dir);
	if (r < 0) {
		snprintf(err, errlen, "the definition of %s is removed, but the directory %s cannot be synced: %s",
			 name, vm_dir, strerror(-r));
		return r;
	}
	return 0;
}
