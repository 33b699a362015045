/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The files of a VM in VM_DIR, written so that a crash leaves the old file
 * or the new one, never a mix: a definition (NAME.json) is written to a
 * temporary file in VM_DIR, fsync'd, renamed over the old one, and the
 * directory fsync'd. Nothing here logs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

/* Writes the definition o of VM name to VM_DIR/NAME.json. replace false:
 * -EEXIST when there is one already. Returns 0, or a negative errno with
 * err naming the file and the step that failed. */
int vmstore_write(const char *vm_dir, const char *name, struct json_object *o, bool replace, char *err,
		  size_t errlen);

/* Removes VM_DIR/NAME.json and VM_DIR/NAME.state (when there), then
 * fsyncs the directory. -ENOENT when there is no definition. */
int vmstore_remove(const char *vm_dir, const char *name, char *err, size_t errlen);

/* fsyncs directory dir (after a rename or an unlink in it). */
int vmstore_sync_dir(const char *dir);

/* VM_DIR/NAME.SUFFIX into buf; -ENAMETOOLONG. */
int vmstore_path(const char *vm_dir, const char *name, const char *suffix, char *buf, size_t len);
