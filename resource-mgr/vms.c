/* SPDX-License-Identifier: GPL-2.0-or-later */
/* This node's part of the VM roles: it follows its csv-vmagent (LIST),
 * and carries out what the replicated state says of the VMs placed on it
 * or migrating to it (start, stop, live and quick migration), reporting
 * each outcome to the group. A VM of the state that runs here but is not
 * this node's is killed, and every VM here is killed when this node is
 * not quorate, so that a VM never runs on two nodes.
 *
 * Requests that may take long (START waits for QEMU; INCOMING, SAVE and
 * the operator's disk and checkpoint requests too) run in a thread each;
 * their results come back to the loop through a pipe. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <qb/qblog.h>

#include "ipc-client.h"
#include "ipc-server.h"
#include "rmd.h"
#include "vmagent-ipc.h"

/* The source of a live migration tells the group how it goes this often. */
#define PROGRESS_MS 1000
#define JOB_TIMEOUT_MS 30000

/* A request to csv-vmagent, run in a thread. */
struct vm_job {
	struct rmd *d;
	char name[R_NAME_MAX];
	char what[16];            /* start, incoming, migrate, save, stop, kill, or forward */
	uint64_t gen;             /* of the VM, when asked */
	int32_t req;
	struct json_object *body;
	int r;                    /* ipc_call's */
	int32_t error;            /* csv-vmagent's */
	struct json_object *reply;
	char err[512];
	vms_done_fn *done;        /* a call of vms_call: what takes the answer */
	void *ctx;
};

static uint64_t wall_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

uint32_t vms_host_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (uint32_t)n : 1;
}

uint32_t vms_host_memory_mb(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
	return pages > 0 && size > 0 ? (uint32_t)((uint64_t)pages * (uint64_t)size >> 20) : 0;
}

void vms_host_cpu_flags(char *buf, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "re");
	char line[8192];
	buf[0] = '\0';
	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "flags", 5) != 0 || !strchr(line, ':'))
			continue;
		char *p = strchr(line, ':') + 1;
		p += strspn(p, " \t");
		p[strcspn(p, "\n")] = '\0';
		if (strlen(p) < len)
			snprintf(buf, len, "%s", p);
		break;
	}
	if (f)
		fclose(f);
}

/* The flags common to every node of the group that said its own. */
static void common_cpu_flags(const struct rmd *d, char *buf, size_t len)
{
	const char *lists[R_MAX_NODES];
	unsigned n = 0;
	for (uint32_t i = 0; i < d->npeers; i++)
		if (d->peers[i].known && d->peers[i].cpu_flags[0])
			lists[n++] = d->peers[i].cpu_flags;
	r_cpu_common(lists, n, buf, len);
}

/* The local record of VM name, made when missing; NULL when full. */
static struct rmd_vm_local *local_of(struct rmd *d, const char *name)
{
	for (uint32_t i = 0; i < d->nvm_local; i++)
		if (strcmp(d->vm_local[i].name, name) == 0)
			return &d->vm_local[i];
	if (d->nvm_local >= R_MAX_VMS)
		return NULL;
	struct rmd_vm_local *l = &d->vm_local[d->nvm_local++];
	memset(l, 0, sizeof(*l));
	snprintf(l->name, sizeof(l->name), "%s", name);
	return l;
}

/* ---- the threads ------------------------------------------------------------ */

static void *job_thread(void *arg)
{
	struct vm_job *j = arg;
	j->r = ipc_call("csv-vmagent", j->d->vmagent_name, CSVV_IPC_MAX_MSG, j->req, j->body, JOB_TIMEOUT_MS,
			&j->error, &j->reply, j->err, sizeof(j->err));
	if (write(j->d->job_pipe[1], &j, sizeof(j)) != sizeof(j))
		qb_log(LOG_ERR, "cannot hand back the result of a csv-vmagent request: %s", strerror(errno));
	return NULL;
}

/* Starts job j in a thread; false (j freed) when it cannot. */
static bool run_job(struct rmd *d, struct vm_job *j)
{
	pthread_t t;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	j->d = d;
	int r = pthread_create(&t, &a, job_thread, j);
	pthread_attr_destroy(&a);
	if (r != 0) {
		qb_log(LOG_ERR, "cannot start a thread for csv-vmagent: %s", strerror(r));
		json_object_put(j->body);
		free(j);
		return false;
	}
	d->jobs++;
	return true;
}

/* Asks csv-vmagent `what` (request req with body, consumed) of VM v. */
static void ask(struct rmd *d, const struct r_vm *v, struct rmd_vm_local *l, const char *what, int32_t req,
		struct json_object *body)
{
	struct vm_job *j = calloc(1, sizeof(*j));
	if (!j) {
		json_object_put(body);
		return;
	}
	snprintf(j->name, sizeof(j->name), "%s", v->name);
	snprintf(j->what, sizeof(j->what), "%s", what);
	j->gen = v->gen;
	j->req = req;
	j->body = body;
	l->busy = true;
	l->asked_gen = v->gen;
	l->asked_port = v->port;
	snprintf(l->asked, sizeof(l->asked), "%s", what);
	qb_log(LOG_INFO, "vm %s: asking csv-vmagent to %s it", v->name, what);
	if (!run_job(d, j))
		l->busy = false;
}

/* A body {"name": NAME}. */
static struct json_object *named(const char *name)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(name));
	return o;
}

void vms_call(struct rmd *d, int32_t id, struct json_object *body, vms_done_fn *done, void *ctx)
{
	struct vm_job *j = calloc(1, sizeof(*j));
	if (!j) {
		json_object_put(body);
		done(d, -ENOMEM, 0, NULL, "out of memory", ctx);
		return;
	}
	snprintf(j->what, sizeof(j->what), "call");
	j->req = id;
	j->body = body;
	j->done = done;
	j->ctx = ctx;
	if (!run_job(d, j))
		done(d, -EAGAIN, 0, NULL, "cannot start a thread for csv-vmagent", ctx);
}

/* Where a forwarded request's answer goes. */
struct forward {
	qb_ipcs_connection_t *conn;
	int32_t res;
};

static void forward_done(struct rmd *d, int r, int32_t error, struct json_object *reply, const char *err, void *ctx)
{
	struct forward *f = ctx;
	if (r < 0)
		ipc_reply_error(f->conn, f->res, r, "%s", err);
	else
		ipc_reply_json(f->conn, f->res, error, json_object_get(reply));
	qb_ipcs_connection_unref(f->conn);
	free(f);
}

void vms_forward(struct rmd *d, qb_ipcs_connection_t *c, int32_t res, int32_t id, struct json_object *body)
{
	struct forward *f = malloc(sizeof(*f));
	if (!f) {
		json_object_put(body);
		ipc_reply_error(c, res, -ENOMEM, "out of memory");
		return;
	}
	f->conn = c;
	f->res = res;
	qb_ipcs_connection_ref(c);
	vms_call(d, id, body, forward_done, f);
}

/* ---- reports ---------------------------------------------------------------- */

/* Reports `what` of VM v to the group, once per generation of the VM
 * (again after RMD_VM_REPORT_AGAIN_MS when the state did not take it). */
static void report(struct rmd *d, const struct r_vm *v, struct rmd_vm_local *l, enum r_vm_report what,
		   uint16_t port, const char *reason)
{
	const char *w = r_vm_report_str(what);
	uint64_t now = rmd_now_ms();
	if (strcmp(l->report, w) == 0 && l->report_gen == v->gen && now - l->report_ms < RMD_VM_REPORT_AGAIN_MS)
		return;
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "vm", json_object_new_string(v->name));
	json_object_object_add(o, "what", json_object_new_string(w));
	json_object_object_add(o, "port", json_object_new_uint64(port));
	json_object_object_add(o, "time_ms", json_object_new_uint64(wall_ms()));
	json_object_object_add(o, "total_ms", json_object_new_int64(l->mig_total_ms > 0 ? l->mig_total_ms : 0));
	json_object_object_add(o, "downtime_ms", json_object_new_int64(l->mig_downtime_ms));
	json_object_object_add(o, "reason", json_object_new_string(reason ? reason : ""));
	if (group_send(d, RMD_VM_REPORT, o) == 0) {
		snprintf(l->report, sizeof(l->report), "%s", w);
		l->report_gen = v->gen;
		l->report_ms = now;
	}
}

/* ---- results ---------------------------------------------------------------- */

/* The answer to a request about VM j->name, for the VM as it is now. */
static void job_done(struct rmd *d, struct vm_job *j)
{
	struct rmd_vm_local *l = local_of(d, j->name);
	struct r_vm *v = r_vm_find(&d->st, j->name);
	bool failed = j->r < 0 || j->error < 0;
	const char *why = j->err[0] ? j->err : failed ? strerror(j->r < 0 ? -j->r : -j->error) : "";
	if (l) {
		l->busy = false;
		l->answered_ms = rmd_now_ms();
	}
	if (failed)
		qb_log(LOG_WARNING, "vm %s: csv-vmagent could not %s it: %s", j->name, j->what, why);
	if (!v || !l || v->gen != j->gen)
		return;  /* the state moved on: the next act decides */
	if (strcmp(j->what, "start") == 0) {
		if (failed)
			report(d, v, l, R_VM_REP_FAILED, 0, why);
		else
			report(d, v, l, R_VM_REP_RUNNING, 0, NULL);
	} else if (strcmp(j->what, "incoming") == 0) {
		struct json_object *p = r_json_get(j->reply, "port");
		int64_t port = p ? json_object_get_int64(p) : 0;
		if (failed || port <= 0 || port > 65535)
			report(d, v, l, R_VM_REP_MIGRATE_FAILED, 0, failed ? why : "csv-vmagent gave no port");
		else
			report(d, v, l, R_VM_REP_INCOMING, (uint16_t)port, NULL);
	} else if ((strcmp(j->what, "migrate") == 0 || strcmp(j->what, "save") == 0) && failed) {
		report(d, v, l, R_VM_REP_MIGRATE_FAILED, 0, why);
	}
}

static int32_t on_job_pipe(int32_t fd, int32_t revents, void *data)
{
	struct rmd *d = data;
	struct vm_job *j;
	while (read(fd, &j, sizeof(j)) == sizeof(j)) {
		d->jobs--;
		if (j->done)
			j->done(d, j->r, j->error, j->reply, j->err, j->ctx);
		else
			job_done(d, j);
		json_object_put(j->body);
		json_object_put(j->reply);
		free(j);
	}
	return 0;
}

int vms_start(struct rmd *d, char *err, size_t errlen)
{
	if (pipe2(d->job_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		snprintf(err, errlen, "cannot make a pipe: %s", strerror(errno));
		return -errno;
	}
	qb_loop_poll_add(d->loop, QB_LOOP_MED, d->job_pipe[0], POLLIN, d, on_job_pipe);
	return 0;
}

void vms_stop(struct rmd *d)
{
	/* Threads still under way finish on their own; their pipe stays open
	 * until the process exits. */
	if (d->job_pipe[0] > 0)
		qb_loop_poll_del(d->loop, d->job_pipe[0]);
}

/* ---- following csv-vmagent -------------------------------------------------- */

/* csv-vmagent's answer to LIST, asked at *ctx (ms), into the local records
 * of the state's VMs. */
static void list_done(struct rmd *d, int r, int32_t error, struct json_object *reply, const char *why, void *ctx)
{
	uint64_t asked_ms = *(uint64_t *)ctx;
	char err[300];
	free(ctx);
	d->vm_list_busy = false;
	snprintf(err, sizeof(err), "%s", why);
	if (r == 0 && error < 0) {
		snprintf(err, sizeof(err), "csv-vmagent refused LIST: %s", strerror(-error));
		r = error;
	}
	if (r < 0) {
		if (d->vmagent_up || strcmp(d->vmagent_error, err) != 0)
			qb_log(LOG_WARNING, "%s: this node runs no VM", err);
		d->vmagent_up = false;
		snprintf(d->vmagent_error, sizeof(d->vmagent_error), "%s", err);
		return;
	}
	if (!d->vmagent_up)
		qb_log(LOG_NOTICE, "csv-vmagent answers");
	d->vmagent_up = true;
	d->vmagent_seen_ms = rmd_now_ms();
	for (uint32_t i = 0; i < d->nvm_local; i++) {
		d->vm_local[i].listed = false;
		d->vm_local[i].list_ms = asked_ms;
	}
	struct json_object *vms = r_json_get(reply, "vms");
	for (size_t i = 0; vms && i < json_object_array_length(vms); i++) {
		struct json_object *x = json_object_array_get_idx(vms, i), *m = r_json_get(x, "migration");
		const char *name = r_json_str(x, "name");
		struct rmd_vm_local *l = name && r_vm_index(&d->st, name) >= 0 ? local_of(d, name) : NULL;
		if (!l)
			continue;
		l->listed = true;
		l->list_ms = asked_ms;
		snprintf(l->state, sizeof(l->state), "%s", r_json_str(x, "state") ? r_json_str(x, "state") : "?");
		snprintf(l->reason, sizeof(l->reason), "%s", r_json_str(x, "reason") ? r_json_str(x, "reason") : "");
		snprintf(l->mig_status, sizeof(l->mig_status), "%s",
			 r_json_str(m, "status") ? r_json_str(m, "status") : "");
		l->mig_total_ms = r_json_get(m, "total_ms") ? json_object_get_int64(r_json_get(m, "total_ms")) : -1;
		l->mig_downtime_ms = r_json_get(m, "downtime_ms") ? json_object_get_int64(r_json_get(m, "downtime_ms")) :
								    -1;
		l->mig_sent_mb = r_json_get(m, "transferred_mb") ? json_object_get_double(r_json_get(m, "transferred_mb")) :
								    -1;
		l->mig_left_mb = r_json_get(m, "remaining_mb") ? json_object_get_double(r_json_get(m, "remaining_mb")) : -1;
	}
	vms_act(d);
}

/* Asks csv-vmagent for LIST, in a thread; list_done takes the answer. */
static void list(struct rmd *d)
{
	uint64_t *asked_ms = malloc(sizeof(*asked_ms));
	if (!asked_ms)
		return;
	*asked_ms = rmd_now_ms();
	d->vm_list_busy = true;
	vms_call(d, CSVV_REQ_LIST, json_object_new_object(), list_done, asked_ms);
}

/* Whether csv-vmagent has a QEMU of the VM (in any state but gone). */
static bool active(const struct rmd_vm_local *l)
{
	return l->listed && strcmp(l->state, "stopped") != 0 && strcmp(l->state, "failed") != 0;
}

static bool in_state(const struct rmd_vm_local *l, const char *state)
{
	return l->listed && strcmp(l->state, state) == 0;
}

/* Whether the last LIST was asked after csv-vmagent answered the last
 * request: a LIST from before may not show what the request did. */
static bool fresh(const struct rmd_vm_local *l)
{
	return l->list_ms > l->answered_ms;
}

/* Whether the last request was `what` for this generation of v. */
static bool asked(const struct rmd_vm_local *l, const struct r_vm *v, const char *what)
{
	return l->asked_gen == v->gen && strcmp(l->asked, what) == 0;
}

/* ---- acting ----------------------------------------------------------------- */

/* The body of START or INCOMING for v: with cpu_compat, the flags common
 * to the cluster. */
static struct json_object *start_body(const struct rmd *d, const struct r_vm *v, bool incoming)
{
	struct json_object *o = named(v->name);
	if (v->cpu_compat) {
		char common[RMD_CPU_FLAGS_MAX];
		common_cpu_flags(d, common, sizeof(common));
		if (common[0])
			json_object_object_add(o, "cpu_features", json_object_new_string(common));
	}
	if (incoming)
		json_object_object_add(o, "port", json_object_new_int(0));
	else if (v->saved)
		json_object_object_add(o, "restore", json_object_new_boolean(true));
	return o;
}

/* v is starting here. */
static void act_starting(struct rmd *d, const struct r_vm *v, struct rmd_vm_local *l)
{
	if (!fresh(l))
		return;  /* the next LIST says what the last request did */
	if (in_state(l, "running")) {
		report(d, v, l, R_VM_REP_RUNNING, 0, NULL);
		return;
	}
	if (asked(l, v, "start"))
		return;  /* its answer reported */
	if (active(l)) {
		/* A QEMU left from before (an incoming that was not used). */
		if (!asked(l, v, "kill"))
			ask(d, v, l, "kill", CSVV_REQ_KILL, named(v->name));
		return;
	}
	ask(d, v, l, "start", CSVV_REQ_START, start_body(d, v, false));
}

/* v runs here, as the state says: csv-vmagent must agree. */
static void act_running(struct rmd *d, const struct r_vm *v, struct rmd_vm_local *l)
{
	if (active(l) || !fresh(l))
		return;
	if (!l->listed) {
		report(d, v, l, R_VM_REP_FAILED, 0, "csv-vmagent does not run it (did csv-vmagent restart?)");
		return;
	}
	if (in_state(l, "failed"))
		report(d, v, l, R_VM_REP_FAILED, 0, l->reason);
	else
		report(d, v, l, R_VM_REP_STOPPED, 0, l->reason);
}

/* v is being stopped here. */
static void act_stopping(struct rmd *d, const struct r_vm *v, struct rmd_vm_local *l)
{
	if (!fresh(l))
		return;
	if (!active(l)) {
		report(d, v, l, R_VM_REP_STOPPED, 0, v->reason);
		return;
	}
	if (v->force && !asked(l, v, "kill")) {
		ask(d, v, l, "kill", CSVV_REQ_KILL, named(v->name));
	} else if (!v->force && !asked(l, v, "stop")) {
		struct json_object *b = named(v->name);
		json_object_object_add(b, "timeout_s", json_object_new_int(RMD_VM_STOP_TIMEOUT_S));
		ask(d, v, l, "stop", CSVV_REQ_STOP, b);
	}
}

/* Tells the group how the live migration of v from here goes, once a
 * PROGRESS_MS. */
static void send_progress(struct rmd *d, const struct r_vm *v, struct rmd_vm_local *l)
{
	uint64_t now = rmd_now_ms();
	if (now - l->progress_ms < PROGRESS_MS || !l->mig_status[0])
		return;
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "vm", json_object_new_string(v->name));
	json_object_object_add(o, "gen", json_object_new_uint64(v->gen));
	json_object_object_add(o, "status", json_object_new_string(l->mig_status));
	json_object_object_add(o, "sent_mb", json_object_new_double(l->mig_sent_mb));
	json_object_object_add(o, "left_mb", json_object_new_double(l->mig_left_mb));
	json_object_object_add(o, "elapsed_ms", json_object_new_int64(l->mig_total_ms));
	if (group_send(d, RMD_VM_PROGRESS, o) == 0)
		l->progress_ms = now;
}

static struct rmd_vm_progress *progress_of(struct rmd *d, const char *name)
{
	for (uint32_t i = 0; i < d->nvm_progress; i++)
		if (strcmp(d->vm_progress[i].name, name) == 0)
			return &d->vm_progress[i];
	if (d->nvm_progress >= R_MAX_VMS)
		return NULL;
	struct rmd_vm_progress *p = &d->vm_progress[d->nvm_progress++];
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	return p;
}

void vms_take_progress(struct rmd *d, struct json_object *o)
{
	const char *name = r_json_str(o, "vm"), *status = r_json_str(o, "status");
	struct rmd_vm_progress *p = name ? progress_of(d, name) : NULL;
	uint64_t gen;
	if (!p || !r_json_u64(o, "gen", UINT64_MAX >> 1, &gen))
		return;
	p->gen = gen;
	snprintf(p->status, sizeof(p->status), "%s", status ? status : "");
	p->sent_mb = r_json_get(o, "sent_mb") ? json_object_get_double(r_json_get(o, "sent_mb")) : -1;
	p->left_mb = r_json_get(o, "left_mb") ? json_object_get_double(r_json_get(o, "left_mb")) : -1;
	int64_t e = r_json_get(o, "elapsed_ms") ? json_object_get_int64(r_json_get(o, "elapsed_ms")) : 0;
	p->elapsed_ms = e > 0 ? (uint64_t)e : 0;
}

const struct rmd_vm_progress *vms_progress(const struct rmd *d, const char *name, uint64_t gen)
{
	for (uint32_t i = 0; i < d->nvm_progress; i++)
		if (strcmp(d->vm_progress[i].name, name) == 0)
			return d->vm_progress[i].gen == gen ? &d->vm_progress[i] : NULL;
	return NULL;
}

/* v migrates from here. */
static void act_source(struct rmd *d, const struct r_vm *v, struct rmd_vm_local *l)
{
	const char *what = v->quick ? "save" : "migrate";
	bool was_asked = asked(l, v, what) && (v->quick || l->asked_port == v->port);
	if (!fresh(l))
		return;  /* the next LIST says what the last request did */
	if (was_asked && in_state(l, "stopped")) {
		report(d, v, l, v->quick ? R_VM_REP_SAVED : R_VM_REP_MIGRATED, 0, NULL);
		return;
	}
	if (was_asked && in_state(l, "running")) {
		report(d, v, l, R_VM_REP_MIGRATE_FAILED, 0, l->reason[0] ? l->reason : l->mig_status);
		return;
	}
	if (!active(l) && !was_asked) {
		report(d, v, l, R_VM_REP_MIGRATE_FAILED, 0, "the VM stopped on the source");
		return;
	}
	if (was_asked && in_state(l, "migrating"))
		send_progress(d, v, l);
	if (was_asked || !in_state(l, "running") || (!v->quick && !v->port))
		return;  /* under way, or the target does not listen yet */
	struct json_object *b = named(v->name);
	if (!v->quick) {
		const struct rmd_peer *p = rmd_peer(d, v->target);
		if (!p || !p->address[0]) {
			json_object_put(b);
			report(d, v, l, R_VM_REP_MIGRATE_FAILED, 0, "the target's address is not known");
			return;
		}
		json_object_object_add(b, "host", json_object_new_string(p->address));
		json_object_object_add(b, "port", json_object_new_int(v->port));
	}
	ask(d, v, l, what, v->quick ? CSVV_REQ_SAVE : CSVV_REQ_MIGRATE, b);
}

/* v migrates (live) to here. */
static void act_target(struct rmd *d, const struct r_vm *v, struct rmd_vm_local *l)
{
	if (in_state(l, "running")) {
		report(d, v, l, R_VM_REP_MIGRATED, 0, NULL);
		return;
	}
	if (v->quick || v->port || v->phase != R_VM_MIGRATING || asked(l, v, "incoming") || !fresh(l))
		return;
	if (active(l)) {
		if (!asked(l, v, "kill"))
			ask(d, v, l, "kill", CSVV_REQ_KILL, named(v->name));
		return;
	}
	ask(d, v, l, "incoming", CSVV_REQ_INCOMING, start_body(d, v, true));
}

/* What this node does about VM v. */
static void act_one(struct rmd *d, const struct r_vm *v, bool quorate)
{
	struct rmd_vm_local *l = local_of(d, v->name);
	if (!l || l->busy)
		return;
	bool mine = v->node == d->node_id && v->phase != R_VM_STOPPED;
	bool coming = v->target == d->node_id && (v->phase == R_VM_MIGRATING || v->phase == R_VM_WAITING_FENCE);
	if (!quorate || (!mine && !coming)) {
		if (active(l) && fresh(l) && !asked(l, v, "kill")) {
			qb_log(LOG_WARNING, "vm %s runs here, but %s: killed", v->name,
			       !quorate ? "this node is not quorate (it runs elsewhere)" : "the cluster placed it elsewhere");
			ask(d, v, l, "kill", CSVV_REQ_KILL, named(v->name));
		}
		return;
	}
	if (coming && !mine) {
		act_target(d, v, l);
		return;
	}
	switch (v->phase) {
	case R_VM_STARTING:
		act_starting(d, v, l);
		break;
	case R_VM_RUNNING:
		act_running(d, v, l);
		break;
	case R_VM_STOPPING:
		act_stopping(d, v, l);
		break;
	case R_VM_MIGRATING:
		act_source(d, v, l);
		break;
	case R_VM_WAITING_FENCE:
		/* Back in the membership, never fenced: say what runs. */
		if (!fresh(l))
			break;
		if (in_state(l, "running"))
			report(d, v, l, R_VM_REP_RUNNING, 0, NULL);
		else if (!active(l))
			report(d, v, l, R_VM_REP_STOPPED, 0, "it does not run on its node any more");
		break;
	case R_VM_STOPPED:
		break;
	}
}

void vms_act(struct rmd *d)
{
	uint64_t now = rmd_now_ms();
	if (!d->st.nvms || !d->synced)
		return;
	if (now - d->vm_list_ms >= RMD_VM_LIST_MS && !d->vm_list_busy) {
		d->vm_list_ms = now;
		list(d);
	}
	if (!d->vmagent_up)
		return;
	/* Out of quorum (csv-quorumd says so, for a while, and not just
	 * after its own start): this node's VMs run elsewhere. */
	if (!d->quorumd_up || d->facts.quorate)
		d->quorate_seen_ms = now;
	bool quorate = now - d->quorate_seen_ms < RMD_VM_QUORUM_GRACE_MS ||
		       now - d->quorumd_since_ms < RMD_QUORUMD_SETTLE_MS;
	for (uint32_t i = 0; i < d->st.nvms; i++)
		act_one(d, &d->st.vms[i], quorate);
}
