/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "cpu.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "qmp.h"
#include "util.h"

#define PROBE_TIMEOUT_MS 10000

/* flag in the one form: lower case, '_' and '.' as '-'. */
static void normalize(const char *flag, size_t n, char *out, size_t len)
{
	size_t i = 0;
	for (; i < n && i + 1 < len; i++) {
		char c = flag[i];
		out[i] = c == '_' || c == '.' ? '-' : (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	out[i] = '\0';
}

bool cpu_list_has(const char *list, const char *flag)
{
	size_t n = strlen(flag);
	for (const char *p = list; (p = strstr(p, flag)); p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return true;
	return false;
}

/* Appends word to the space-separated list (len bytes), once. */
static int list_add(char *list, size_t len, const char *word)
{
	if (cpu_list_has(list, word))
		return 0;
	size_t used = strlen(list);
	int n = snprintf(list + used, len - used, "%s%s", used ? " " : "", word);
	return n < 0 || (size_t)n >= len - used ? -ENAMETOOLONG : 0;
}

bool cpu_features_ok(const char *features)
{
	if (strlen(features) >= CPU_FLAGS_MAX)
		return false;
	for (const char *p = features; *p; p++)
		if (!(*p == ' ' || *p == '_' || *p == '.' || *p == '-' || (*p >= '0' && *p <= '9') ||
		      (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
			return false;
	return true;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The words of text, sorted and space separated, into out. */
static int sort_words(char *text, char *out, size_t len)
{
	char *words[1024];
	size_t n = 0;
	char *save = NULL;
	for (char *w = strtok_r(text, " \t\n", &save); w && n < ARRAY_SIZE(words); w = strtok_r(NULL, " \t\n", &save))
		words[n++] = w;
	qsort(words, n, sizeof(words[0]), cmp_str);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		if (list_add(out, len, words[i]) < 0)
			return -ENAMETOOLONG;
	return 0;
}

/* The value of a "key<tabs>: value" line, without its newline. */
static const char *line_value(char *line)
{
	char *colon = strchr(line, ':');
	if (!colon)
		return "";
	char *v = colon + 1 + (colon[1] == ' ');
	v[strcspn(v, "\n")] = '\0';
	return v;
}

int cpu_info_read(const char *path, struct cpu_info *ret)
{
	struct cpu_info ci = { .vendor = "", .model = "", .flags = "" };
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	bool have_flags = false;
	FILE *f = fopen(path, "re");
	if (!f)
		return negative_errno();
	while (getline(&line, &cap, f) > 0 && !have_flags) {
		if (strncmp(line, "vendor_id", 9) == 0 && !ci.vendor[0])
			snprintf(ci.vendor, sizeof(ci.vendor), "%s", line_value(line));
		else if (strncmp(line, "model name", 10) == 0 && !ci.model[0])
			snprintf(ci.model, sizeof(ci.model), "%s", line_value(line));
		else if (strncmp(line, "flags", 5) == 0 && (line[5] == '\t' || line[5] == ' ' || line[5] == ':')) {
			char *v = (char *)line_value(line);
			have_flags = sort_words(v, ci.flags, sizeof(ci.flags)) == 0;
		}
	}
	fclose(f);
	if (!have_flags)
		return -EBADMSG;
	*ret = ci;
	return 0;
}

/* query-cpu-model-expansion (full) of model: its boolean properties into
 * known (all) and on (the true ones), normalized. */
static int expand(struct qmp *q, const char *model, char *known, char *on, size_t len, char *err, size_t errlen)
{
	struct json_object *args = json_object_new_object(), *m = json_object_new_object(), *ret = NULL, *mo, *props;
	json_object_object_add(m, "name", json_object_new_string(model));
	json_object_object_add(args, "type", json_object_new_string("full"));
	json_object_object_add(args, "model", m);
	int r = qmp_call(q, "query-cpu-model-expansion", args, PROBE_TIMEOUT_MS, &ret, err, errlen);
	if (r < 0)
		return r;
	if (!json_object_object_get_ex(ret, "model", &mo) || !json_object_object_get_ex(mo, "props", &props)) {
		snprintf(err, errlen, "query-cpu-model-expansion of %s: no model properties in QEMU's answer", model);
		json_object_put(ret);
		return -EBADMSG;
	}
	json_object_object_foreach(props, key, val) {
		char name[64];
		if (!json_object_is_type(val, json_type_boolean))
			continue;
		normalize(key, strlen(key), name, sizeof(name));
		if ((known && list_add(known, len, name) < 0) || (json_object_get_boolean(val) && list_add(on, len, name) < 0))
			r = -ENAMETOOLONG;
	}
	json_object_put(ret);
	if (r < 0)
		snprintf(err, errlen, "query-cpu-model-expansion of %s: too many properties", model);
	return r;
}

/* Starts QEMU without a machine, its QMP on the socket path. */
static pid_t spawn_probe(const char *qemu, const char *path, bool kvm)
{
	char qmparg[PATH_MAX + 40];
	snprintf(qmparg, sizeof(qmparg), "unix:%s,server=on,wait=off", path);
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	int devnull = open("/dev/null", O_RDWR);
	if (devnull >= 0) {
		dup2(devnull, 0);
		dup2(devnull, 1);
		dup2(devnull, 2);
	}
	execl(qemu, qemu, "-machine", "none", "-accel", kvm ? "kvm" : "tcg", "-nodefaults", "-no-user-config",
	      "-display", "none", "-qmp", qmparg, (char *)NULL);
	_exit(127);
}

int cpu_probe(const char *qemu, const char *run_dir, bool kvm, struct cpu_qemu *ret, char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct qmp *q = NULL;
	_cleanup_free_ struct cpu_qemu *cq = calloc(1, sizeof(*cq));
	if (!cq || snprintf(path, sizeof(path), "%s/.cpu-probe-%d.qmp", run_dir, (int)getpid()) >= (int)sizeof(path)) {
		snprintf(err, errlen, "cannot ask QEMU for its CPU models: %s", cq ? "the run directory is too long" :
			 "out of memory");
		return cq ? -ENAMETOOLONG : -ENOMEM;
	}
	unlink(path);
	pid_t pid = spawn_probe(qemu, path, kvm);
	if (pid < 0) {
		snprintf(err, errlen, "cannot start %s to ask for its CPU models: %s", qemu, strerror(errno));
		return -errno;
	}
	int r = -ETIMEDOUT;
	uint64_t until = monotonic_ns() + PROBE_TIMEOUT_MS * 1000000ull;
	while (monotonic_ns() < until && waitpid(pid, NULL, WNOHANG) == 0) {
		r = qmp_connect(path, 1000, NULL, NULL, &q, err, errlen);
		if (r == 0 || (r != -ENOENT && r != -ECONNREFUSED))
			break;
		usleep(20000);
	}
	if (r == 0)
		r = expand(q, kvm ? "host" : "max", cq->known, cq->usable, sizeof(cq->usable), err, errlen);
	if (r == 0)
		r = expand(q, "qemu64", NULL, cq->base, sizeof(cq->base), err, errlen);
	if (q)
		qmp_close(q);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	unlink(path);
	if (r == -ETIMEDOUT || r == -ENOENT || r == -ECONNREFUSED)
		snprintf(err, errlen, "%s -machine none did not answer over QMP in %d ms", qemu, PROBE_TIMEOUT_MS);
	if (r < 0)
		return r;
	cq->probed = true;
	*ret = *cq;
	return 0;
}

/* Appends ",+flag" or ",-flag" to buf. */
static int put_flag(char *buf, size_t len, char sign, const char *flag)
{
	size_t used = strlen(buf);
	int n = snprintf(buf + used, len - used, ",%c%s", sign, flag);
	return n < 0 || (size_t)n >= len - used ? -ENAMETOOLONG : 0;
}

/* The normalized words of a space-separated list into out. */
static void normalize_list(const char *list, char *out, size_t len)
{
	out[0] = '\0';
	for (const char *p = list; *p;) {
		size_t n = strcspn(p, " ");
		char w[64];
		if (n) {
			normalize(p, n, w, sizeof(w));
			list_add(out, len, w);
		}
		p += n + (p[n] == ' ');
	}
}

int cpu_arg(const struct cpu_qemu *q, bool kvm, const char *host_flags, const char *features, char *buf,
	    size_t len)
{
	_cleanup_free_ char *host = malloc(CPU_FLAGS_MAX), *want = malloc(CPU_FLAGS_MAX);
	if (!host || !want)
		return -ENOMEM;
	normalize_list(host_flags, host, CPU_FLAGS_MAX);
	normalize_list(features, want, CPU_FLAGS_MAX);
	if (snprintf(buf, len, "%s", kvm ? "host" : "qemu64") >= (int)len)
		return -ENAMETOOLONG;
	int r = 0;
	/* Off: what the base model would give that the cluster lacks, among
	 * the CPU flags (not QEMU's other switches, which no cpuinfo names). */
	const char *base = kvm ? q->usable : q->base;
	for (const char *p = base; *p && r == 0;) {
		size_t n = strcspn(p, " ");
		char w[64];
		normalize(p, n, w, sizeof(w));
		if ((cpu_list_has(host, w) || cpu_list_has(want, w)) && !cpu_list_has(want, w))
			r = put_flag(buf, len, '-', w);
		p += n + (p[n] == ' ');
	}
	/* On (TCG): what the cluster has and TCG can give beyond qemu64. */
	for (const char *p = want; !kvm && *p && r == 0;) {
		size_t n = strcspn(p, " ");
		char w[64];
		normalize(p, n, w, sizeof(w));
		if (cpu_list_has(q->usable, w) && !cpu_list_has(q->base, w))
			r = put_flag(buf, len, '+', w);
		p += n + (p[n] == ' ');
	}
	return r;
}
