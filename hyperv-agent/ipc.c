/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The local IPC server of csv-vmagent (protocol in lib/vmagent-ipc.h), for
 * csv-rmd and csvctl. Anyone may LIST; only root or the admin group may
 * change anything. START and INCOMING are answered once QEMU runs the VM
 * (or waits for the migration), or has failed; DISK_REMOVE and CHECKPOINT
 * (but list) once QEMU has done it: the connection is held until then. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <json-c/json.h>
#include <qb/qbipc_common.h>
#include <qb/qblog.h>

#include "cred.h"
#include "ipc-server.h"
#include "vmagent-ipc.h"
#include "vmagent.h"
#include "vmstore.h"

static struct agent *ipc_agent;

static const char *const request_names[] = {
	[CSVV_REQ_LIST] = "LIST", [CSVV_REQ_START] = "START", [CSVV_REQ_STOP] = "STOP",
	[CSVV_REQ_KILL] = "KILL", [CSVV_REQ_INCOMING] = "INCOMING", [CSVV_REQ_MIGRATE] = "MIGRATE",
	[CSVV_REQ_DEFINE] = "DEFINE", [CSVV_REQ_UNDEFINE] = "UNDEFINE", [CSVV_REQ_SAVE] = "SAVE",
	[CSVV_REQ_DISK_ADD] = "DISK_ADD", [CSVV_REQ_DISK_REMOVE] = "DISK_REMOVE",
	[CSVV_REQ_CHECKPOINT] = "CHECKPOINT",
};

static const char *request_name(int32_t id)
{
	return id > 0 && (size_t)id < sizeof(request_names) / sizeof(request_names[0]) && request_names[id] ?
	       request_names[id] : "unknown";
}

static void add(struct json_object *o, const char *k, struct json_object *v)
{
	json_object_object_add(o, k, v);
}

static int32_t ipc_closed(qb_ipcs_connection_t *c)
{
	/* A caller that gave up waiting for its START: nobody to answer. */
	for (unsigned i = 0; ipc_agent && i < ipc_agent->nvms; i++)
		if (ipc_agent->vms[i]->reply_conn == c)
			ipc_forget(ipc_agent->vms[i]);
	return 0;
}

/* Answers id with error and o (consumed), noting a reply that could not go. */
static void reply(qb_ipcs_connection_t *c, int32_t id, int32_t error, struct json_object *o)
{
	ssize_t r = ipc_reply_json(c, id, error, o);
	if (r < 0)
		qb_log(LOG_DEBUG, "cannot send the reply to %s: %s", request_name(id), strerror((int)-r));
}

static void reply_message(qb_ipcs_connection_t *c, int32_t id, const char *text)
{
	struct json_object *o = json_object_new_object();
	add(o, "message", json_object_new_string(text));
	reply(c, id, 0, o);
}

void ipc_answer(struct vm *vm, int32_t error, struct json_object *o)
{
	if (!vm->reply_conn) {
		json_object_put(o);
		return;
	}
	qb_ipcs_connection_t *c = vm->reply_conn;
	vm->reply_conn = NULL;
	reply(c, vm->reply_id, error, o);
	qb_ipcs_connection_unref(c);
}

bool ipc_waiting(const struct vm *vm)
{
	return vm->reply_conn != NULL;
}

void ipc_forget(struct vm *vm)
{
	if (!vm->reply_conn)
		return;
	qb_log(LOG_INFO, "VM %s: the caller of %s left before its answer", vm->name, request_name(vm->reply_id));
	qb_ipcs_connection_unref(vm->reply_conn);
	vm->reply_conn = NULL;
}

/* ---- requests ---------------------------------------------------------------- */

static struct json_object *list_json(struct agent *a)
{
	struct json_object *o = json_object_new_object(), *vms = json_object_new_array();
	add(o, "node_id", json_object_new_uint64(a->node_id));
	add(o, "vm_dir", json_object_new_string(a->vm_dir));
	add(o, "accel", json_object_new_string(a->kvm ? "kvm" : "tcg"));
	if (a->have_cpu) {
		struct json_object *cpu = json_object_new_object();
		add(cpu, "vendor", json_object_new_string(a->cpu.vendor));
		add(cpu, "model", json_object_new_string(a->cpu.model));
		add(cpu, "flags", json_object_new_string(a->cpu.flags));
		add(o, "cpu", cpu);
	} else {
		add(o, "cpu", NULL);
	}
	for (unsigned i = 0; i < a->nvms; i++)
		json_object_array_add(vms, vm_json(a->vms[i]));
	add(o, "vms", vms);
	return o;
}

/* The string member "name" of req, or NULL after replying the error. */
static const char *req_name(qb_ipcs_connection_t *c, int32_t res, struct json_object *req)
{
	struct json_object *v;
	if (!json_object_object_get_ex(req, "name", &v) || !json_object_is_type(v, json_type_string)) {
		ipc_reply_error(c, res, -EINVAL, "the request needs \"name\": the VM's name");
		return NULL;
	}
	const char *name = json_object_get_string(v);
	if (!vmdef_name_ok(name)) {
		ipc_reply_error(c, res, -EINVAL, "\"%s\" is not a VM name (1 to %d letters, digits, '-', '_' and '.', not "
			    "starting with '.')", name, VMDEF_NAME_MAX - 1);
		return NULL;
	}
	return name;
}

/* The integer member key of req in min..max, dflt when absent (dflt < 0:
 * required); false after replying the error. */
static bool req_uint(qb_ipcs_connection_t *c, int32_t res, struct json_object *req, const char *key, int64_t dflt,
		     int64_t min, int64_t max, int64_t *ret)
{
	struct json_object *v;
	if (!json_object_object_get_ex(req, key, &v)) {
		if (dflt >= 0) {
			*ret = dflt;
			return true;
		}
		ipc_reply_error(c, res, -EINVAL, "the request needs \"%s\": an integer from %lld to %lld", key,
			    (long long)min, (long long)max);
		return false;
	}
	int64_t x = json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : min - 1;
	if (x < min || x > max) {
		ipc_reply_error(c, res, -EINVAL, "\"%s\" must be an integer from %lld to %lld", key, (long long)min,
			    (long long)max);
		return false;
	}
	*ret = x;
	return true;
}

/* The VM of the request, or NULL after replying -ENOENT. */
static struct vm *req_vm(struct agent *a, qb_ipcs_connection_t *c, int32_t res, const char *name)
{
	struct vm *vm = vm_find(a, name);
	if (!vm)
		ipc_reply_error(c, res, -ENOENT, "no VM %s on this node (node %u): this agent has not run it since it "
			    "started", name, a->node_id);
	return vm;
}

/* Holds c to be answered by ipc_answer (START, INCOMING) or vm_op_done. */
static void answer_later(struct vm *vm, qb_ipcs_connection_t *c, int32_t res)
{
	qb_ipcs_connection_ref(c);
	vm->reply_conn = c;
	vm->reply_id = res;
}

/* The boolean member key of req, dflt when absent; false after replying
 * the error. */
static bool req_bool(qb_ipcs_connection_t *c, int32_t res, struct json_object *req, const char *key, bool dflt,
		     bool *ret)
{
	struct json_object *v;
	if (!json_object_object_get_ex(req, key, &v)) {
		*ret = dflt;
		return true;
	}
	if (!json_object_is_type(v, json_type_boolean)) {
		ipc_reply_error(c, res, -EINVAL, "\"%s\" must be true or false", key);
		return false;
	}
	*ret = json_object_get_boolean(v);
	return true;
}

/* The string member key of req, NULL when absent (*ok true) or after
 * replying the error (*ok false). */
static const char *req_str(qb_ipcs_connection_t *c, int32_t res, struct json_object *req, const char *key,
			   size_t max, bool *ok)
{
	struct json_object *v;
	*ok = true;
	if (!json_object_object_get_ex(req, key, &v))
		return NULL;
	size_t n = json_object_is_type(v, json_type_string) ? (size_t)json_object_get_string_len(v) : 0;
	if (n == 0 || n >= max || strlen(json_object_get_string(v)) != n) {
		ipc_reply_error(c, res, -EINVAL, "\"%s\" must be a text of 1 to %zu bytes", key, max - 1);
		*ok = false;
		return NULL;
	}
	return json_object_get_string(v);
}

/* START and INCOMING: answered later, by ipc_answer. */
static void start(struct agent *a, qb_ipcs_connection_t *c, int32_t res, struct json_object *req, bool incoming)
{
	char err[1024];
	int64_t port = 0;
	bool ok;
	struct vm *vm;
	struct vm_start_opts o = { .incoming = incoming };
	const char *name = req_name(c, res, req);
	if (!name)
		return;
	if (incoming && !req_uint(c, res, req, "port", 0, 0, 65535, &port))
		return;
	if (!incoming && !req_bool(c, res, req, "restore", false, &o.restore))
		return;
	o.port = (uint16_t)port;
	o.cpu_features = req_str(c, res, req, "cpu_features", CPU_FLAGS_MAX, &ok);
	if (!ok)
		return;
	if (o.cpu_features && !cpu_features_ok(o.cpu_features)) {
		ipc_reply_error(c, res, -EINVAL, "\"cpu_features\" must be CPU flag names (letters, digits, '_', '.' "
				"and '-') separated by spaces");
		return;
	}
	int r = vm_start(a, name, &o, &vm, err, sizeof(err));
	if (r < 0) {
		qb_log(LOG_WARNING, "VM %s: %s refused: %s", name, request_name(res), err);
		ipc_reply_error(c, res, r, "%s", err);
		return;
	}
	answer_later(vm, c, res);
}

static void stop(struct agent *a, qb_ipcs_connection_t *c, int32_t res, struct json_object *req)
{
	char msg[600];
	int64_t timeout_s;
	const char *name = req_name(c, res, req);
	if (!name || !req_uint(c, res, req, "timeout_s", 30, 0, 86400, &timeout_s))
		return;
	struct vm *vm = req_vm(a, c, res, name);
	if (!vm)
		return;
	int r = res == CSVV_RES_STOP ? vm_stop(a, vm, (unsigned)timeout_s, msg, sizeof(msg)) :
		vm_kill(a, vm, msg, sizeof(msg));
	if (r < 0)
		ipc_reply_error(c, res, r, "%s", msg);
	else
		reply_message(c, res, msg);
}

static void migrate(struct agent *a, qb_ipcs_connection_t *c, struct json_object *req)
{
	const int32_t res = CSVV_RES_MIGRATE;
	char msg[600];
	int64_t port, downtime, timeout;
	struct json_object *v;
	const char *name = req_name(c, res, req);
	if (!name)
		return;
	if (!json_object_object_get_ex(req, "host", &v) || !json_object_is_type(v, json_type_string) ||
	    json_object_get_string_len(v) == 0 || json_object_get_string_len(v) > 255 ||
	    strpbrk(json_object_get_string(v), ",/ []")) {
		ipc_reply_error(c, res, -EINVAL, "the request needs \"host\": the address of the target node");
		return;
	}
	const char *host = json_object_get_string(v);
	if (!req_uint(c, res, req, "port", -1, 1, 65535, &port) ||
	    !req_uint(c, res, req, "downtime_ms", 50, 1, 60000, &downtime) ||
	    !req_uint(c, res, req, "timeout_s", 120, 1, 86400, &timeout))
		return;
	struct vm *vm = req_vm(a, c, res, name);
	if (!vm)
		return;
	int r = vm_migrate(a, vm, host, (uint16_t)port, (unsigned)downtime, (unsigned)timeout, msg, sizeof(msg));
	if (r < 0)
		ipc_reply_error(c, res, r, "%s", msg);
	else
		reply_message(c, res, msg);
}

/* Replies msg as the error r, or as the message of a success. */
static void reply_result(qb_ipcs_connection_t *c, int32_t res, int r, const char *msg)
{
	if (r < 0)
		ipc_reply_error(c, res, r, "%s", msg);
	else
		reply_message(c, res, msg);
}

/* DEFINE: the definition checked (fields, then files) and written. */
static void define(struct agent *a, qb_ipcs_connection_t *c, struct json_object *req)
{
	const int32_t res = CSVV_RES_DEFINE;
	static struct vmdef def;  /* large: not on the stack */
	char err[1024], msg[1200];
	struct json_object *d, *v;
	bool replace;
	if (!json_object_object_get_ex(req, "definition", &d) || !json_object_is_type(d, json_type_object)) {
		ipc_reply_error(c, res, -EINVAL, "the request needs \"definition\": a VM definition (an object)");
		return;
	}
	if (!req_bool(c, res, req, "replace", false, &replace))
		return;
	const char *name = json_object_object_get_ex(d, "name", &v) && json_object_is_type(v, json_type_string) ?
			   json_object_get_string(v) : NULL;
	if (!name || !vmdef_name_ok(name)) {
		ipc_reply_error(c, res, -EINVAL, "field \"name\": %s", name ? "not a VM name (1 to 63 letters, digits, "
				"'-', '_' and '.', not starting with '.')" : "missing, or not a string");
		return;
	}
	int r = vmdef_from_json(d, a->vm_dir, name, &def, err, sizeof(err));
	if (r == 0)
		r = vmdef_check_files(&def, err, sizeof(err));
	if (r < 0) {
		ipc_reply_error(c, res, r == -EOPNOTSUPP ? r : -EINVAL, "VM %s: bad definition: %s", name, err);
		return;
	}
	r = vmstore_write(a->vm_dir, name, d, replace, err, sizeof(err));
	if (r < 0) {
		ipc_reply_error(c, res, r, "%s", err);
		return;
	}
	snprintf(msg, sizeof(msg), "VM %s %s in %s/%s.json", name, replace ? "defined (or replaced)" : "defined",
		 a->vm_dir, name);
	qb_log(LOG_NOTICE, "%s", msg);
	struct json_object *o = json_object_new_object();
	add(o, "message", json_object_new_string(msg));
	add(o, "name", json_object_new_string(name));
	reply(c, res, 0, o);
}

/* UNDEFINE: not while the VM is active here. */
static void undefine(struct agent *a, qb_ipcs_connection_t *c, struct json_object *req)
{
	const int32_t res = CSVV_RES_UNDEFINE;
	char err[1024], msg[1200];
	const char *name = req_name(c, res, req);
	if (!name)
		return;
	struct vm *vm = vm_find(a, name);
	if (vm && vm_active(vm)) {
		ipc_reply_error(c, res, -EBUSY, "VM %s is %s on this node (node %u): stop it before removing its "
				"definition", name, vm_state_str(vm->state), a->node_id);
		return;
	}
	int r = vmstore_remove(a->vm_dir, name, err, sizeof(err));
	snprintf(msg, sizeof(msg), "VM %s: its definition (and saved state, if any) removed from %s", name, a->vm_dir);
	if (r == 0)
		qb_log(LOG_NOTICE, "%s", msg);
	reply_result(c, res, r, r < 0 ? err : msg);
}

/* SAVE: answered at once; LIST follows. */
static void save(struct agent *a, qb_ipcs_connection_t *c, struct json_object *req)
{
	const int32_t res = CSVV_RES_SAVE;
	char msg[1200];
	int64_t timeout;
	const char *name = req_name(c, res, req);
	if (!name || !req_uint(c, res, req, "timeout_s", 120, 1, 86400, &timeout))
		return;
	struct vm *vm = req_vm(a, c, res, name);
	if (vm)
		reply_result(c, res, vm_save(a, vm, (unsigned)timeout, msg, sizeof(msg)), msg);
}

/* DISK_ADD: done by the time it is answered. */
static void disk_add(struct agent *a, qb_ipcs_connection_t *c, struct json_object *req)
{
	const int32_t res = CSVV_RES_DISK_ADD;
	char msg[2000], id[16];
	bool ok1, ok2;
	const char *name = req_name(c, res, req);
	if (!name)
		return;
	const char *file = req_str(c, res, req, "file", PATH_MAX, &ok1);
	const char *format = ok1 ? req_str(c, res, req, "format", 8, &ok2) : NULL;
	if (!ok1 || !ok2)
		return;
	if (!file || !format) {
		ipc_reply_error(c, res, -EINVAL, "the request needs \"file\" (relative to %s, or absolute) and "
				"\"format\" (raw, qcow2, vpc or vhdx)", a->vm_dir);
		return;
	}
	struct vm *vm = req_vm(a, c, res, name);
	if (!vm)
		return;
	int r = vm_disk_add(a, vm, file, format, id, sizeof(id), msg, sizeof(msg));
	if (r < 0) {
		ipc_reply_error(c, res, r, "%s", msg);
		return;
	}
	struct json_object *o = json_object_new_object();
	add(o, "message", json_object_new_string(msg));
	add(o, "id", json_object_new_string(id));
	reply(c, res, 0, o);
}

/* DISK_REMOVE: answered once the disk is out of the guest. */
static void disk_remove(struct agent *a, qb_ipcs_connection_t *c, struct json_object *req)
{
	const int32_t res = CSVV_RES_DISK_REMOVE;
	char msg[1200];
	bool ok1, ok2;
	const char *name = req_name(c, res, req);
	if (!name)
		return;
	const char *id = req_str(c, res, req, "id", 16, &ok1);
	const char *file = ok1 ? req_str(c, res, req, "file", PATH_MAX, &ok2) : NULL;
	if (!ok1 || !ok2)
		return;
	if (!id == !file) {
		ipc_reply_error(c, res, -EINVAL, "the request needs \"id\" (diskN, as LIST shows) or \"file\", one of "
				"them");
		return;
	}
	struct vm *vm = req_vm(a, c, res, name);
	if (!vm)
		return;
	int r = vm_disk_remove(a, vm, id, file, msg, sizeof(msg));
	if (r < 0)
		ipc_reply_error(c, res, r, "%s", msg);
	else
		answer_later(vm, c, res);
}

/* CHECKPOINT: list answered at once, the others once their job ended. */
static void checkpoint(struct agent *a, qb_ipcs_connection_t *c, struct json_object *req)
{
	const int32_t res = CSVV_RES_CHECKPOINT;
	char msg[1200];
	bool ok1, ok2;
	struct json_object *list = NULL;
	const char *name = req_name(c, res, req);
	if (!name)
		return;
	const char *op = req_str(c, res, req, "op", 16, &ok1);
	const char *cp = ok1 ? req_str(c, res, req, "checkpoint", VMDEF_NAME_MAX, &ok2) : NULL;
	if (!ok1 || !ok2)
		return;
	if (!op) {
		ipc_reply_error(c, res, -EINVAL, "the request needs \"op\": take, list, apply or delete");
		return;
	}
	struct vm *vm = req_vm(a, c, res, name);
	if (!vm)
		return;
	int r = vm_checkpoint(a, vm, op, cp, &list, msg, sizeof(msg));
	if (r < 0) {
		ipc_reply_error(c, res, r, "%s", msg);
	} else if (list) {
		struct json_object *o = json_object_new_object();
		add(o, "checkpoints", list);
		reply(c, res, 0, o);
	} else {
		answer_later(vm, c, res);
	}
}

static int32_t ipc_msg(qb_ipcs_connection_t *c, void *data, size_t size)
{
	struct agent *a = ipc_agent;
	struct ipc_caller *cl = qb_ipcs_context_get(c);
	struct qb_ipc_request_header h;
	if (!cl || size < sizeof(h)) {
		qb_ipcs_disconnect(c);
		return 0;
	}
	memcpy(&h, data, sizeof(h));
	const char *body = (const char *)data + sizeof(h);
	size_t blen = size - sizeof(h);
	struct json_object *req = NULL;
	if (blen && memchr(body, '\0', blen))
		req = json_tokener_parse(body);
	int32_t res = h.id;  /* CSVV_RES_* mirror the requests */
	if (h.id != CSVV_REQ_LIST && !json_object_is_type(req, json_type_object)) {
		ipc_reply_error(c, res, -EINVAL, "the request carries no JSON object");
		json_object_put(req);
		return 0;
	}
	if (h.id != CSVV_REQ_LIST && !cl->may_change) {
		ipc_reply_error(c, res, -EPERM, "only root or the %s group may change VMs (%s)", Q_ADMIN_GROUP,
				request_name(h.id));
		qb_log(LOG_WARNING, "uid %u may not change VMs: %s refused", (unsigned)cl->uid, request_name(h.id));
		json_object_put(req);
		return 0;
	}
	switch (h.id) {
	case CSVV_REQ_LIST:
		reply(c, CSVV_RES_LIST, 0, list_json(a));
		break;
	case CSVV_REQ_START:
		start(a, c, CSVV_RES_START, req, false);
		break;
	case CSVV_REQ_INCOMING:
		start(a, c, CSVV_RES_INCOMING, req, true);
		break;
	case CSVV_REQ_STOP:
		stop(a, c, CSVV_RES_STOP, req);
		break;
	case CSVV_REQ_KILL:
		stop(a, c, CSVV_RES_KILL, req);
		break;
	case CSVV_REQ_MIGRATE:
		migrate(a, c, req);
		break;
	case CSVV_REQ_DEFINE:
		define(a, c, req);
		break;
	case CSVV_REQ_UNDEFINE:
		undefine(a, c, req);
		break;
	case CSVV_REQ_SAVE:
		save(a, c, req);
		break;
	case CSVV_REQ_DISK_ADD:
		disk_add(a, c, req);
		break;
	case CSVV_REQ_DISK_REMOVE:
		disk_remove(a, c, req);
		break;
	case CSVV_REQ_CHECKPOINT:
		checkpoint(a, c, req);
		break;
	default:
		ipc_reply_error(c, res, -EOPNOTSUPP, "unknown request %d", h.id);
		break;
	}
	json_object_put(req);
	return 0;
}

int ipc_start(struct agent *a, char *err, size_t errlen)
{
	static struct qb_ipcs_service_handlers handlers = {
		.connection_accept = ipc_caller_accept,
		.msg_process = ipc_msg,
		.connection_closed = ipc_closed,
		.connection_destroyed = ipc_caller_destroyed,
	};
	ipc_agent = a;
	return ipc_server_start(a->loop, a->ipc_name, &handlers, CSVV_IPC_MAX_MSG, NULL, "csv-vmagent", &a->ipcs, err,
				errlen);
}

void ipc_stop(struct agent *a)
{
	for (unsigned i = 0; i < a->nvms; i++)
		ipc_forget(a->vms[i]);
	ipc_server_stop(&a->ipcs);
}
