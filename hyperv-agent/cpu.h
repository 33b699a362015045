/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Processor compatibility: this node's CPU as /proc/cpuinfo names it, the
 * CPU flags QEMU knows and supports here (asked once, at the agent's start,
 * with query-cpu-model-expansion), and the -cpu argument that limits a
 * guest to the flags common to the cluster. Flag names are compared in one
 * form: lower case, '_' and '.' as '-' (cpuinfo's sse4_1 is QEMU's
 * sse4.1). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define CPU_FLAGS_MAX 8192       /* a space-separated list, with the NUL */

struct cpu_info {
	char vendor[64];
	char model[128];
	char flags[CPU_FLAGS_MAX];   /* sorted, space separated, as cpuinfo names them */
};

/* What QEMU says of its CPU models on this node. */
struct cpu_qemu {
	bool probed;
	char known[CPU_FLAGS_MAX];   /* every boolean property of the best model (normalized) */
	char usable[CPU_FLAGS_MAX];  /* those it turns on: host (KVM) or max (TCG) */
	char base[CPU_FLAGS_MAX];    /* those qemu64 turns on (TCG's base) */
};

/* Reads the first processor of path (/proc/cpuinfo). 0 or a negative
 * errno (-EBADMSG: no flags line). */
int cpu_info_read(const char *path, struct cpu_info *ret);

/* Runs qemu once (-machine none) and asks it over QMP, with a socket in
 * run_dir, for its CPU models. 0, or a negative errno with err. */
int cpu_probe(const char *qemu, const char *run_dir, bool kvm, struct cpu_qemu *ret, char *err, size_t errlen);

/* The -cpu value of a guest limited to features (space separated, as
 * cpuinfo names them) on a node whose CPU has host_flags: KVM: host with
 * each host flag that QEMU knows and features lacks turned off; TCG:
 * qemu64 with each of its flags that host_flags or features name and
 * features lacks turned off, and each flag of features that TCG supports
 * turned on. 0, or -ENAMETOOLONG. */
int cpu_arg(const struct cpu_qemu *q, bool kvm, const char *host_flags, const char *features, char *buf,
	    size_t len);

/* Whether the space-separated list (normalized) has flag (normalized). */
bool cpu_list_has(const char *list, const char *flag);

/* Checks a "cpu_features" value: flag names of letters, digits, '_', '.'
 * and '-', space separated. */
bool cpu_features_ok(const char *features);
