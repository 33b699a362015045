/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A VM's definition: the file VM_DIR/NAME.json on the shared volume (its
 * fields in lib/vmagent-ipc.h and csv-vmagent(8)), read and checked field
 * by field, so that an error names the field and what is wrong with it. */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define VMDEF_NAME_MAX 64        /* with the NUL */
#define VMDEF_MAX_DISKS 16
#define VMDEF_MAX_NODES 64
#define VMDEF_APPEND_MAX 1024    /* with the NUL */
#define VMDEF_VCPUS_MIN 1
#define VMDEF_VCPUS_MAX 64
#define VMDEF_MEMORY_MIN_MB 16
#define VMDEF_MEMORY_MAX_MB 65536
#define VMDEF_MAX_OPERATORS 8
#define VMDEF_GROUP_MAX 33       /* a unix group name, with the NUL */
#define VMDEF_MAX_NICS 8
#define VMDEF_RESTART_MAX 100
#define VMDEF_SECONDS_MAX 604800 /* a week: restart.period_s, restart.expire_s */

struct vmdef_disk {
	char file[PATH_MAX];     /* absolute: relative names are resolved in VM_DIR */
	char format[8];          /* raw, qcow2, vpc or vhdx */
};

/* When the resource manager moves a VM back to its preferred node. */
enum vmdef_failback {
	VMDEF_FAILBACK_NEVER,
	VMDEF_FAILBACK_IMMEDIATE,
	VMDEF_FAILBACK_WINDOW,   /* from failback_from to failback_to o'clock */
};

/* The kind of migration the resource manager prefers for a VM. */
enum vmdef_migration {
	VMDEF_MIGRATION_LIVE,
	VMDEF_MIGRATION_QUICK,
};

struct vmdef_nic {
	char mac[18];            /* 52:54:00:12:34:56, lower case */
};

struct vmdef {
	char name[VMDEF_NAME_MAX];
	unsigned vcpus;
	unsigned memory_mb;
	char kernel[PATH_MAX];   /* absolute */
	char append[VMDEF_APPEND_MAX];
	struct vmdef_disk disks[VMDEF_MAX_DISKS];
	unsigned ndisks;
	int64_t priority;
	uint32_t preferred_nodes[VMDEF_MAX_NODES];
	unsigned npreferred;

	/* Read by the resource manager; checked here. */
	bool has_anti_affinity;
	char anti_affinity_class[VMDEF_NAME_MAX];
	bool anti_affinity_hard;
	bool has_restart;
	unsigned restart_max;        /* restarts within restart_period_s */
	unsigned restart_period_s;
	unsigned restart_expire_s;   /* a failure forgotten after this; 0: never */
	enum vmdef_failback failback;
	unsigned failback_from;      /* hours, 0 to 23 */
	unsigned failback_to;
	enum vmdef_migration migration;
	char operators[VMDEF_MAX_OPERATORS][VMDEF_GROUP_MAX];
	unsigned noperators;

	/* Used by csv-vmagent. */
	bool cpu_compat;             /* limit the guest CPU to the cluster's flags */
	struct vmdef_nic nics[VMDEF_MAX_NICS];
	unsigned nnics;
};

/* Whether name may name a VM: 1 to 63 letters, digits, '-', '_' and '.',
 * not starting with '.'. */
bool vmdef_name_ok(const char *name);

/* Checks the definition o of VM name (whose file is in vm_dir) and fills
 * *ret (only on success). Checks the fields only, not the files they name.
 * Returns 0, or -EINVAL with err naming the field. */
int vmdef_from_json(struct json_object *o, const char *vm_dir, const char *name, struct vmdef *ret, char *err,
		    size_t errlen);

/* Reads VM_DIR/NAME.json as JSON (not checked): its object into *ret (the
 * caller puts it). Errors as vmdef_load. */
int vmdef_read_json(const char *vm_dir, const char *name, struct json_object **ret, char *err, size_t errlen);

/* Reads VM_DIR/NAME.json and checks it (vmdef_from_json). Returns 0, or:
 * -ENOENT (no such file), -EINVAL (not JSON, or a bad field), another
 * negative errno when the file cannot be read; err says which and why. */
int vmdef_load(const char *vm_dir, const char *name, struct vmdef *ret, char *err, size_t errlen);

/* Checks the files that def names: the kernel is a readable regular file;
 * each disk is a regular file or a block device that opens for reading and
 * writing with O_DIRECT (QEMU attaches it with cache=none). Returns 0, or
 * -EINVAL (a kernel or disk that is missing or not a file), -EOPNOTSUPP
 * (the filesystem of a disk refuses O_DIRECT), -EACCES or another
 * negative errno; err names the field and the file. */
int vmdef_check_files(const struct vmdef *def, char *err, size_t errlen);

/* Checks one disk as vmdef_check_files does, its field named field in
 * err (e.g. "disks[2].file" or "file"). */
int vmdef_check_disk(const char *file, const char *field, char *err, size_t errlen);

/* The format of a disk: raw, qcow2, vpc or vhdx. */
bool vmdef_format_ok(const char *format);

/* path, absolute or relative to vm_dir, into buf; -ENAMETOOLONG. */
int vmdef_resolve(const char *vm_dir, const char *path, char *buf, size_t len);

/* The -drive value of disk i of def: file=...,format=...,if=none,
 * id=diskI,node-name=diskI-node,cache=none,aio=threads, commas in the file
 * name doubled as QEMU wants them (diskI-node names its format node, for
 * checkpoints). Returns 0, or -ENAMETOOLONG when buf is too small. */
int vmdef_drive_arg(const struct vmdef *def, unsigned i, char *buf, size_t len);
