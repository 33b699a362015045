/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "vmdef.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

/* The fields a definition may have; any other is refused (a misspelt
 * field would otherwise be silently ignored). */
static const char *const known_fields[] = {
	"name", "vcpus", "memory_mb", "kernel", "append", "disks", "priority", "preferred_nodes",
	"anti_affinity", "restart", "failback", "migration", "cpu_compat", "operators", "nics",
};

static const char *const formats[] = { "raw", "qcow2", "vpc", "vhdx" };

bool vmdef_format_ok(const char *format)
{
	for (unsigned k = 0; k < ARRAY_SIZE(formats); k++)
		if (strcmp(format, formats[k]) == 0)
			return true;
	return false;
}

bool vmdef_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n >= VMDEF_NAME_MAX || name[0] == '.')
		return false;
	for (const char *p = name; *p; p++)
		if (!(*p == '-' || *p == '_' || *p == '.' || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= 'A' && *p <= 'Z')))
			return false;
	return true;
}

static const char *type_name(struct json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null: return "null";
	case json_type_boolean: return "a boolean";
	case json_type_double: return "a number with a fraction";
	case json_type_int: return "an integer";
	case json_type_object: return "an object";
	case json_type_array: return "an array";
	case json_type_string: return "a string";
	}
	return "something else";
}

/* An integer member key of o (named where + key) in min..max; -ENOENT
 * when absent. */
static int get_int_at(struct json_object *o, const char *where, const char *key, int64_t min, int64_t max,
		      int64_t *ret, char *err, size_t errlen)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v))
		return -ENOENT;
	if (!json_object_is_type(v, json_type_int)) {
		snprintf(err, errlen, "field \"%s%s\": must be an integer from %lld to %lld, not %s", where, key,
			 (long long)min, (long long)max, type_name(v));
		return -EINVAL;
	}
	errno = 0;
	int64_t x = json_object_get_int64(v);
	if (errno == ERANGE || x < min || x > max) {
		snprintf(err, errlen, "field \"%s%s\": must be from %lld to %lld, not %s", where, key, (long long)min,
			 (long long)max, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
		return -EINVAL;
	}
	*ret = x;
	return 0;
}

/* An integer member key of o in min..max; -ENOENT when absent. */
static int get_int(struct json_object *o, const char *key, int64_t min, int64_t max, int64_t *ret, char *err,
		   size_t errlen)
{
	return get_int_at(o, "", key, min, max, ret, err, errlen);
}

/* A string member key of o, not empty, shorter than max; -ENOENT when absent. */
static int get_str(struct json_object *o, const char *key, const char *where, size_t max, const char **ret,
		   char *err, size_t errlen)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v))
		return -ENOENT;
	if (!json_object_is_type(v, json_type_string)) {
		snprintf(err, errlen, "field \"%s%s\": must be a string, not %s", where, key, type_name(v));
		return -EINVAL;
	}
	const char *s = json_object_get_string(v);
	size_t n = (size_t)json_object_get_string_len(v);
	if (n == 0 || n >= max || strlen(s) != n) {
		snprintf(err, errlen, "field \"%s%s\": must be a text of 1 to %zu bytes without NUL", where, key,
			 max - 1);
		return -EINVAL;
	}
	*ret = s;
	return 0;
}

int vmdef_resolve(const char *vm_dir, const char *path, char *buf, size_t len)
{
	int n = path[0] == '/' ? snprintf(buf, len, "%s", path) : snprintf(buf, len, "%s/%s", vm_dir, path);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int parse_disk(struct json_object *d, unsigned i, const char *vm_dir, struct vmdef_disk *out, char *err,
		      size_t errlen)
{
	char where[32];
	const char *file, *format;
	snprintf(where, sizeof(where), "disks[%u].", i);
	if (!json_object_is_type(d, json_type_object)) {
		snprintf(err, errlen, "field \"disks[%u]\": must be an object {\"file\", \"format\"}, not %s", i,
			 type_name(d));
		return -EINVAL;
	}
	json_object_object_foreach(d, key, val) {
		(void)val;
		if (strcmp(key, "file") != 0 && strcmp(key, "format") != 0) {
			snprintf(err, errlen, "field \"disks[%u].%s\": unknown (a disk has \"file\" and \"format\")", i,
				 key);
			return -EINVAL;
		}
	}
	int r = get_str(d, "file", where, PATH_MAX, &file, err, errlen);
	if (r == -ENOENT)
		snprintf(err, errlen, "field \"disks[%u].file\": missing", i);
	if (r < 0)
		return -EINVAL;
	r = get_str(d, "format", where, sizeof(out->format), &format, err, errlen);
	if (r == -ENOENT)
		snprintf(err, errlen, "field \"disks[%u].format\": missing (raw, qcow2, vpc or vhdx)", i);
	if (r == -EINVAL)
		snprintf(err, errlen, "field \"disks[%u].format\": must be raw, qcow2, vpc or vhdx", i);
	if (r < 0)
		return -EINVAL;
	if (!vmdef_format_ok(format)) {
		snprintf(err, errlen, "field \"disks[%u].format\": must be raw, qcow2, vpc or vhdx, not \"%s\"", i,
			 format);
		return -EINVAL;
	}
	if (vmdef_resolve(vm_dir, file, out->file, sizeof(out->file)) < 0) {
		snprintf(err, errlen, "field \"disks[%u].file\": the path is too long", i);
		return -EINVAL;
	}
	snprintf(out->format, sizeof(out->format), "%s", format);
	return 0;
}

/* Refuses a member of object o (field where) that is not in allowed. */
static int only_members(struct json_object *o, const char *where, const char *const *allowed, unsigned n,
			const char *list, char *err, size_t errlen)
{
	json_object_object_foreach(o, key, val) {
		(void)val;
		bool known = false;
		for (unsigned k = 0; k < n; k++)
			known |= strcmp(key, allowed[k]) == 0;
		if (!known) {
			snprintf(err, errlen, "field \"%s.%s\": unknown (%s has %s)", where, key, where, list);
			return -EINVAL;
		}
	}
	return 0;
}

/* A boolean member key of o (named where + key); -ENOENT when absent. */
static int get_bool(struct json_object *o, const char *where, const char *key, bool *ret, char *err,
		    size_t errlen)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v))
		return -ENOENT;
	if (!json_object_is_type(v, json_type_boolean)) {
		snprintf(err, errlen, "field \"%s%s\": must be true or false, not %s", where, key, type_name(v));
		return -EINVAL;
	}
	*ret = json_object_get_boolean(v);
	return 0;
}

/* The member key of o as an object, NULL when absent; -EINVAL otherwise. */
static int get_object(struct json_object *o, const char *key, const char *shape, struct json_object **ret,
		      char *err, size_t errlen)
{
	struct json_object *v;
	*ret = NULL;
	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_object)) {
		snprintf(err, errlen, "field \"%s\": must be an object %s, not %s", key, shape, type_name(v));
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

/* "anti_affinity": {"class": NAME, "hard": bool (default false)}. */
static int parse_anti_affinity(struct json_object *o, struct vmdef *def, char *err, size_t errlen)
{
	static const char *const members[] = { "class", "hard" };
	struct json_object *aa;
	const char *cls;
	int r = get_object(o, "anti_affinity", "{\"class\", \"hard\"}", &aa, err, errlen);
	if (r < 0 || !aa)
		return r;
	r = only_members(aa, "anti_affinity", members, ARRAY_SIZE(members), "\"class\" and \"hard\"", err, errlen);
	if (r < 0)
		return r;
	r = get_str(aa, "class", "anti_affinity.", VMDEF_NAME_MAX, &cls, err, errlen);
	if (r == -ENOENT)
		snprintf(err, errlen, "field \"anti_affinity.class\": missing (the name of the class)");
	if (r < 0)
		return -EINVAL;
	if (!vmdef_name_ok(cls)) {
		snprintf(err, errlen, "field \"anti_affinity.class\": \"%s\" is not a class name (1 to %d letters, "
			 "digits, '-', '_' and '.', not starting with '.')", cls, VMDEF_NAME_MAX - 1);
		return -EINVAL;
	}
	r = get_bool(aa, "anti_affinity.", "hard", &def->anti_affinity_hard, err, errlen);
	if (r == -EINVAL)
		return r;
	snprintf(def->anti_affinity_class, sizeof(def->anti_affinity_class), "%s", cls);
	def->has_anti_affinity = true;
	return 0;
}

/* "restart": {"max": 0..100, "period_s" (default 3600), "expire_s"
 * (default 0)}. */
static int parse_restart(struct json_object *o, struct vmdef *def, char *err, size_t errlen)
{
	static const char *const members[] = { "max", "period_s", "expire_s" };
	struct json_object *rs;
	int64_t x;
	int r = get_object(o, "restart", "{\"max\", \"period_s\", \"expire_s\"}", &rs, err, errlen);
	if (r < 0 || !rs)
		return r;
	r = only_members(rs, "restart", members, ARRAY_SIZE(members), "\"max\", \"period_s\" and \"expire_s\"", err,
			 errlen);
	if (r < 0)
		return r;
	r = get_int_at(rs, "restart.", "max", 0, VMDEF_RESTART_MAX, &x, err, errlen);
	if (r == -ENOENT)
		snprintf(err, errlen, "field \"restart.max\": missing (0 to %d restarts)", VMDEF_RESTART_MAX);
	if (r < 0)
		return -EINVAL;
	def->restart_max = (unsigned)x;
	r = get_int_at(rs, "restart.", "period_s", 1, VMDEF_SECONDS_MAX, &x, err, errlen);
	if (r == -EINVAL)
		return r;
	def->restart_period_s = r == 0 ? (unsigned)x : 3600;
	r = get_int_at(rs, "restart.", "expire_s", 0, VMDEF_SECONDS_MAX, &x, err, errlen);
	if (r == -EINVAL)
		return r;
	def->restart_expire_s = r == 0 ? (unsigned)x : 0;
	def->has_restart = true;
	return 0;
}

/* An hour of "HH-HH": two digits, 00 to 23. */
static bool parse_hour(const char *s, unsigned *ret)
{
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
		return false;
	*ret = (unsigned)(s[0] - '0') * 10 + (unsigned)(s[1] - '0');
	return *ret <= 23;
}

/* "failback": "never" (default), "immediate" or "HH-HH". */
static int parse_failback(struct json_object *o, struct vmdef *def, char *err, size_t errlen)
{
	const char *s;
	int r = get_str(o, "failback", "", 16, &s, err, errlen);
	if (r == -ENOENT)
		return 0;
	if (r == 0 && strcmp(s, "never") == 0) {
		def->failback = VMDEF_FAILBACK_NEVER;
		return 0;
	}
	if (r == 0 && strcmp(s, "immediate") == 0) {
		def->failback = VMDEF_FAILBACK_IMMEDIATE;
		return 0;
	}
	if (r == 0 && strlen(s) == 5 && s[2] == '-' && parse_hour(s, &def->failback_from) &&
	    parse_hour(s + 3, &def->failback_to) && def->failback_from != def->failback_to) {
		def->failback = VMDEF_FAILBACK_WINDOW;
		return 0;
	}
	snprintf(err, errlen, "field \"failback\": must be \"never\", \"immediate\" or a window of hours "
		 "\"HH-HH\" (00 to 23, two different hours, e.g. \"22-06\")%s%s%s", r == 0 ? ", not \"" : "",
		 r == 0 ? s : "", r == 0 ? "\"" : "");
	return -EINVAL;
}

/* "migration": "live" (default) or "quick". */
static int parse_migration(struct json_object *o, struct vmdef *def, char *err, size_t errlen)
{
	const char *s;
	int r = get_str(o, "migration", "", 16, &s, err, errlen);
	if (r == -ENOENT)
		return 0;
	if (r == 0 && (strcmp(s, "live") == 0 || strcmp(s, "quick") == 0)) {
		def->migration = strcmp(s, "live") == 0 ? VMDEF_MIGRATION_LIVE : VMDEF_MIGRATION_QUICK;
		return 0;
	}
	snprintf(err, errlen, "field \"migration\": must be \"live\" or \"quick\"%s%s%s", r == 0 ? ", not \"" : "",
		 r == 0 ? s : "", r == 0 ? "\"" : "");
	return -EINVAL;
}

/* Whether s is a unix group name: letters, digits, '_', '-' and '.', not
 * starting with '-' or a digit, 1 to 32 bytes. */
static bool group_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= VMDEF_GROUP_MAX || s[0] == '-' || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (const char *p = s; *p; p++)
		if (!(*p == '-' || *p == '_' || *p == '.' || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= 'A' && *p <= 'Z')))
			return false;
	return true;
}

/* "operators": an array of at most 8 unix group names. */
static int parse_operators(struct json_object *o, struct vmdef *def, char *err, size_t errlen)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, "operators", &v))
		return 0;
	if (!json_object_is_type(v, json_type_array)) {
		snprintf(err, errlen, "field \"operators\": must be an array of unix group names, not %s", type_name(v));
		return -EINVAL;
	}
	size_t n = json_object_array_length(v);
	if (n > VMDEF_MAX_OPERATORS) {
		snprintf(err, errlen, "field \"operators\": at most %d groups, not %zu", VMDEF_MAX_OPERATORS, n);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(v, i);
		const char *g = json_object_is_type(e, json_type_string) ? json_object_get_string(e) : NULL;
		if (!g || !group_name_ok(g) || strlen(g) != (size_t)json_object_get_string_len(e)) {
			snprintf(err, errlen, "field \"operators[%zu]\": must be a unix group name (1 to %d letters, "
				 "digits, '_', '-' and '.', not starting with '-' or a digit), not %s", i,
				 VMDEF_GROUP_MAX - 1, json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN));
			return -EINVAL;
		}
		snprintf(def->operators[i], sizeof(def->operators[i]), "%s", g);
	}
	def->noperators = (unsigned)n;
	return 0;
}

/* Whether s is a unicast MAC address "xx:xx:xx:xx:xx:xx", not all zero;
 * its lower-case form into out. */
static bool mac_ok(const char *s, char out[18])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char bytes[6];
	if (strlen(s) != 17)
		return false;
	for (unsigned i = 0; i < 6; i++) {
		const char *p = s + 3 * i;
		const char *hi = strchr(hex, p[0] | 0x20), *lo = strchr(hex, p[1] | 0x20);
		if (!p[0] || !p[1] || !hi || !lo || (i < 5 && p[2] != ':'))
			return false;
		bytes[i] = (unsigned char)((hi - hex) * 16 + (lo - hex));
	}
	if (bytes[0] & 1)
		return false;  /* a multicast address */
	if ((bytes[0] | bytes[1] | bytes[2] | bytes[3] | bytes[4] | bytes[5]) == 0)
		return false;
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2], bytes[3], bytes[4],
		 bytes[5]);
	return true;
}

/* One of "nics": {"mac": "52:54:00:12:34:56"}. */
static int parse_nic(struct json_object *e, unsigned i, struct vmdef *def, char *err, size_t errlen)
{
	static const char *const members[] = { "mac" };
	char where[24];
	const char *mac;
	snprintf(where, sizeof(where), "nics[%u]", i);
	if (!json_object_is_type(e, json_type_object)) {
		snprintf(err, errlen, "field \"%s\": must be an object {\"mac\"}, not %s", where, type_name(e));
		return -EINVAL;
	}
	int r = only_members(e, where, members, ARRAY_SIZE(members), "\"mac\"", err, errlen);
	if (r < 0)
		return r;
	snprintf(where, sizeof(where), "nics[%u].", i);
	r = get_str(e, "mac", where, 18, &mac, err, errlen);
	if (r == -ENOENT)
		snprintf(err, errlen, "field \"nics[%u].mac\": missing (e.g. \"52:54:00:12:34:56\")", i);
	if (r < 0)
		return -EINVAL;
	if (!mac_ok(mac, def->nics[i].mac)) {
		snprintf(err, errlen, "field \"nics[%u].mac\": \"%s\" is not a unicast MAC address such as "
			 "\"52:54:00:12:34:56\"", i, mac);
		return -EINVAL;
	}
	for (unsigned k = 0; k < i; k++)
		if (strcmp(def->nics[k].mac, def->nics[i].mac) == 0) {
			snprintf(err, errlen, "field \"nics[%u].mac\": %s is nics[%u] already", i, mac, k);
			return -EINVAL;
		}
	return 0;
}

/* "nics": an array of at most 8 {"mac"}. */
static int parse_nics(struct json_object *o, struct vmdef *def, char *err, size_t errlen)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, "nics", &v))
		return 0;
	if (!json_object_is_type(v, json_type_array)) {
		snprintf(err, errlen, "field \"nics\": must be an array of {\"mac\"}, not %s", type_name(v));
		return -EINVAL;
	}
	size_t n = json_object_array_length(v);
	if (n > VMDEF_MAX_NICS) {
		snprintf(err, errlen, "field \"nics\": at most %d network interfaces, not %zu", VMDEF_MAX_NICS, n);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		int r = parse_nic(json_object_array_get_idx(v, i), (unsigned)i, def, err, errlen);
		if (r < 0)
			return r;
	}
	def->nnics = (unsigned)n;
	return 0;
}

/* The optional fields for placement and failover, cpu_compat and nics. */
static int parse_policy(struct json_object *o, struct vmdef *def, char *err, size_t errlen)
{
	int r = parse_anti_affinity(o, def, err, errlen);
	if (r == 0)
		r = parse_restart(o, def, err, errlen);
	if (r == 0)
		r = parse_failback(o, def, err, errlen);
	if (r == 0)
		r = parse_migration(o, def, err, errlen);
	if (r == 0 && get_bool(o, "", "cpu_compat", &def->cpu_compat, err, errlen) == -EINVAL)
		r = -EINVAL;
	if (r == 0)
		r = parse_operators(o, def, err, errlen);
	if (r == 0)
		r = parse_nics(o, def, err, errlen);
	return r;
}

int vmdef_from_json(struct json_object *o, const char *vm_dir, const char *name, struct vmdef *ret, char *err,
		    size_t errlen)
{
	struct vmdef def;
	const char *s;
	int64_t x;
	int r;

	memset(&def, 0, sizeof(def));
	if (!json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "the definition must be a JSON object, not %s", type_name(o));
		return -EINVAL;
	}
	json_object_object_foreach(o, key, val) {
		(void)val;
		bool known = false;
		for (unsigned k = 0; k < ARRAY_SIZE(known_fields); k++)
			known |= strcmp(key, known_fields[k]) == 0;
		if (!known) {
			snprintf(err, errlen, "field \"%s\": unknown (known: name, vcpus, memory_mb, kernel, append, "
				 "disks, priority, preferred_nodes, anti_affinity, restart, failback, migration, "
				 "cpu_compat, operators, nics)", key);
			return -EINVAL;
		}
	}

	r = get_str(o, "name", "", VMDEF_NAME_MAX, &s, err, errlen);
	if (r == -ENOENT)
		snprintf(err, errlen, "field \"name\": missing");
	if (r < 0)
		return -EINVAL;
	if (strcmp(s, name) != 0) {
		snprintf(err, errlen, "field \"name\": \"%s\" is not the name of its file (%s.json)", s, name);
		return -EINVAL;
	}
	snprintf(def.name, sizeof(def.name), "%s", s);

	r = get_int(o, "vcpus", VMDEF_VCPUS_MIN, VMDEF_VCPUS_MAX, &x, err, errlen);
	if (r == -ENOENT)
		snprintf(err, errlen, "field \"vcpus\": missing (%d to %d)", VMDEF_VCPUS_MIN, VMDEF_VCPUS_MAX);
	if (r < 0)
		return -EINVAL;
	def.vcpus = (unsigned)x;

	r = get_int(o, "memory_mb", VMDEF_MEMORY_MIN_MB, VMDEF_MEMORY_MAX_MB, &x, err, errlen);
	if (r == -ENOENT)
		snprintf(err, errlen, "field \"memory_mb\": missing (%d to %d)", VMDEF_MEMORY_MIN_MB,
			 VMDEF_MEMORY_MAX_MB);
	if (r < 0)
		return -EINVAL;
	def.memory_mb = (unsigned)x;

	r = get_str(o, "kernel", "", PATH_MAX, &s, err, errlen);
	if (r == -ENOENT)
		snprintf(err, errlen, "field \"kernel\": missing (a kernel image, relative to %s or absolute)", vm_dir);
	if (r < 0)
		return -EINVAL;
	if (vmdef_resolve(vm_dir, s, def.kernel, sizeof(def.kernel)) < 0) {
		snprintf(err, errlen, "field \"kernel\": the path is too long");
		return -EINVAL;
	}

	struct json_object *v;
	if (json_object_object_get_ex(o, "append", &v)) {
		if (!json_object_is_type(v, json_type_string)) {
			snprintf(err, errlen, "field \"append\": must be a string, not %s", type_name(v));
			return -EINVAL;
		}
		size_t n = (size_t)json_object_get_string_len(v);
		if (n >= sizeof(def.append) || strlen(json_object_get_string(v)) != n) {
			snprintf(err, errlen, "field \"append\": must be a text of at most %zu bytes without NUL",
				 sizeof(def.append) - 1);
			return -EINVAL;
		}
		snprintf(def.append, sizeof(def.append), "%s", json_object_get_string(v));
	}

	if (json_object_object_get_ex(o, "disks", &v)) {
		if (!json_object_is_type(v, json_type_array)) {
			snprintf(err, errlen, "field \"disks\": must be an array of {\"file\", \"format\"}, not %s",
				 type_name(v));
			return -EINVAL;
		}
		size_t n = json_object_array_length(v);
		if (n > VMDEF_MAX_DISKS) {
			snprintf(err, errlen, "field \"disks\": at most %d disks, not %zu", VMDEF_MAX_DISKS, n);
			return -EINVAL;
		}
		for (size_t i = 0; i < n; i++) {
			r = parse_disk(json_object_array_get_idx(v, i), (unsigned)i, vm_dir, &def.disks[i], err, errlen);
			if (r < 0)
				return r;
		}
		def.ndisks = (unsigned)n;
	}

	r = get_int(o, "priority", INT32_MIN, INT32_MAX, &x, err, errlen);
	if (r == -EINVAL)
		return r;
	def.priority = r == 0 ? x : 0;

	if (json_object_object_get_ex(o, "preferred_nodes", &v)) {
		if (!json_object_is_type(v, json_type_array)) {
			snprintf(err, errlen, "field \"preferred_nodes\": must be an array of node ids, not %s",
				 type_name(v));
			return -EINVAL;
		}
		size_t n = json_object_array_length(v);
		if (n > VMDEF_MAX_NODES) {
			snprintf(err, errlen, "field \"preferred_nodes\": at most %d nodes, not %zu", VMDEF_MAX_NODES, n);
			return -EINVAL;
		}
		for (size_t i = 0; i < n; i++) {
			struct json_object *e = json_object_array_get_idx(v, i);
			int64_t id = json_object_is_type(e, json_type_int) ? json_object_get_int64(e) : 0;
			if (id < 1 || id > UINT32_MAX) {
				snprintf(err, errlen, "field \"preferred_nodes[%zu]\": must be a node id from 1 to %u, "
					 "not %s", i, UINT32_MAX, json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN));
				return -EINVAL;
			}
			def.preferred_nodes[i] = (uint32_t)id;
		}
		def.npreferred = (unsigned)n;
	}

	r = parse_policy(o, &def, err, errlen);
	if (r < 0)
		return r;
	*ret = def;
	return 0;
}

int vmdef_read_json(const char *vm_dir, const char *name, struct json_object **ret, char *err, size_t errlen)
{
	char path[PATH_MAX];
	if (!vmdef_name_ok(name)) {
		snprintf(err, errlen, "\"%s\" is not a VM name (1 to %d letters, digits, '-', '_' and '.', not "
			 "starting with '.')", name, VMDEF_NAME_MAX - 1);
		return -EINVAL;
	}
	if (snprintf(path, sizeof(path), "%s/%s.json", vm_dir, name) >= (int)sizeof(path)) {
		snprintf(err, errlen, "the path of the definition of %s is too long", name);
		return -ENAMETOOLONG;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int r = negative_errno();
		if (r == -ENOENT)
			snprintf(err, errlen, "no VM %s: no definition %s", name, path);
		else
			snprintf(err, errlen, "cannot read the definition %s: %s", path, strerror(-r));
		return r;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > 1024 * 1024) {
		snprintf(err, errlen, "the definition %s is not a regular file of at most 1 MiB", path);
		close(fd);
		return -EINVAL;
	}
	size_t size = (size_t)st.st_size, done = 0;
	_cleanup_free_ char *text = malloc(size + 1);
	if (!text) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	while (done < size) {
		ssize_t n = read(fd, text + done, size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int r = n < 0 ? negative_errno() : -EIO;
			snprintf(err, errlen, "cannot read the definition %s: %s", path,
				 n < 0 ? strerror(-r) : "it shrank while read");
			close(fd);
			return r;
		}
		done += (size_t)n;
	}
	close(fd);
	text[size] = '\0';

	struct json_tokener *tok = json_tokener_new();
	if (!tok) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	struct json_object *o = json_tokener_parse_ex(tok, text, (int)size);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	if (!o || jerr != json_tokener_success) {
		snprintf(err, errlen, "the definition %s is not JSON: %s (at byte %zu)", path,
			 jerr == json_tokener_continue ? "it ends too early" : json_tokener_error_desc(jerr),
			 json_tokener_get_parse_end(tok));
		json_object_put(o);
		json_tokener_free(tok);
		return -EINVAL;
	}
	json_tokener_free(tok);
	*ret = o;
	return 0;
}

int vmdef_load(const char *vm_dir, const char *name, struct vmdef *ret, char *err, size_t errlen)
{
	char path[PATH_MAX], why[512];
	struct json_object *o;
	int r = vmdef_read_json(vm_dir, name, &o, err, errlen);
	if (r < 0)
		return r;
	r = vmdef_from_json(o, vm_dir, name, ret, why, sizeof(why));
	json_object_put(o);
	snprintf(path, sizeof(path), "%s/%s.json", vm_dir, name);
	if (r < 0)
		snprintf(err, errlen, "bad definition %s: %s", path, why);
	return r;
}

int vmdef_check_files(const struct vmdef *def, char *err, size_t errlen)
{
	struct stat st;
	if (stat(def->kernel, &st) < 0) {
		int r = negative_errno();
		snprintf(err, errlen, "field \"kernel\": %s: %s", def->kernel, strerror(-r));
		return r == -ENOENT || r == -ENOTDIR ? -EINVAL : r;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "field \"kernel\": %s is not a regular file", def->kernel);
		return -EINVAL;
	}
	if (access(def->kernel, R_OK) < 0) {
		int r = negative_errno();
		snprintf(err, errlen, "field \"kernel\": %s: %s", def->kernel, strerror(-r));
		return r;
	}
	for (unsigned i = 0; i < def->ndisks; i++) {
		char field[32];
		for (unsigned k = 0; k < i; k++)
			if (strcmp(def->disks[k].file, def->disks[i].file) == 0) {
				snprintf(err, errlen, "field \"disks[%u].file\": %s is disks[%u] already", i,
					 def->disks[i].file, k);
				return -EINVAL;
			}
		snprintf(field, sizeof(field), "disks[%u].file", i);
		int r = vmdef_check_disk(def->disks[i].file, field, err, errlen);
		if (r < 0)
			return r;
	}
	return 0;
}

int vmdef_check_disk(const char *file, const char *field, char *err, size_t errlen)
{
	struct stat st;
	if (stat(file, &st) < 0) {
		int r = negative_errno();
		snprintf(err, errlen, "field \"%s\": %s: %s", field, file, strerror(-r));
		return r == -ENOENT || r == -ENOTDIR ? -EINVAL : r;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		snprintf(err, errlen, "field \"%s\": %s is neither a regular file nor a block device", field, file);
		return -EINVAL;
	}
	/* QEMU opens it so with cache=none: say here, in words, what it would
	 * only say in its log. */
	int fd = open(file, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (fd < 0) {
		int r = negative_errno();
		if (r == -EINVAL) {
			snprintf(err, errlen, "field \"%s\": the filesystem of %s does not support O_DIRECT, which "
				 "cache=none needs", field, file);
			return -EOPNOTSUPP;
		}
		snprintf(err, errlen, "field \"%s\": %s cannot be opened for reading and writing: %s", field, file,
			 strerror(-r));
		return r;
	}
	close(fd);
	return 0;
}

int vmdef_drive_arg(const struct vmdef *def, unsigned i, char *buf, size_t len)
{
	size_t n = 0;
	const char *pre = "file=";
#define PUT(c) do { if (n + 1 >= len) return -ENAMETOOLONG; buf[n++] = (c); } while (0)
	for (const char *p = pre; *p; p++)
		PUT(*p);
	for (const char *p = def->disks[i].file; *p; p++) {
		if (*p == ',')
			PUT(',');
		PUT(*p);
	}
#undef PUT
	int m = snprintf(buf + n, len - n, ",format=%s,if=none,id=disk%u,node-name=disk%u-node,cache=none,aio=threads",
			 def->disks[i].format, i, i);
	if (m < 0 || (size_t)m >= len - n)
		return -ENAMETOOLONG;
	return 0;
}
