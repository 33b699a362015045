/* SPDX-License-Identifier: GPL-2.0-or-later */
/* This node's part of the plan: it runs csv-coordinatord for each volume
 * the state gives it, stops the ones it no longer holds, and reports what
 * happened (running with its epoch, stopped, failed) to the group. A
 * coordinator dies with csv-rmd (PR_SET_PDEATHSIG), so a node whose
 * csv-rmd is gone holds no role. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>
#include <qb/qblog.h>

#include "rmd.h"

/* The fd the coordinator writes "ready epoch=N" to. */
#define READY_FD 3

static void report(struct rmd *d, uint32_t c, const char *what, uint64_t epoch, const char *reason)
{
	uint64_t now = rmd_now_ms();
	/* A partition without quorum changes nothing: the quorate side's
	 * state wins when they meet again. */
	if (!rmd_quorate(d))
		return;
	/* Once per state version, and again after a while if nothing came of it. */
	if (strcmp(d->report_sent[c], what) == 0 && d->report_sent_version[c] == d->st.version &&
	    now - d->report_sent_ms[c] < 2000)
		return;
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "volume", json_object_new_string(d->conf[c].name));
	json_object_object_add(o, "what", json_object_new_string(what));
	json_object_object_add(o, "epoch", json_object_new_uint64(epoch));
	json_object_object_add(o, "reason", json_object_new_string(reason ? reason : ""));
	if (group_send(d, RMD_REPORT, o) == 0) {
		snprintf(d->report_sent[c], sizeof(d->report_sent[c]), "%s", what);
		d->report_sent_version[c] = d->st.version;
		d->report_sent_ms[c] = now;
	}
}

static void close_ready(struct rmd *d, struct rmd_child *ch)
{
	if (ch->ready_fd >= 0) {
		qb_loop_poll_del(d->loop, ch->ready_fd);
		close(ch->ready_fd);
	}
	ch->ready_fd = -1;
}

static int32_t on_ready(int32_t fd, int32_t revents, void *data)
{
	struct rmd *d = data;
	for (uint32_t c = 0; c < d->nconf; c++) {
		struct rmd_child *ch = &d->child[c];
		if (ch->ready_fd != fd)
			continue;
		ssize_t n = read(fd, ch->ready_buf + ch->ready_len, sizeof(ch->ready_buf) - 1 - ch->ready_len);
		if (n > 0) {
			ch->ready_len += (size_t)n;
			ch->ready_buf[ch->ready_len] = '\0';
			unsigned long long epoch;
			if (strchr(ch->ready_buf, '\n') && sscanf(ch->ready_buf, "ready epoch=%llu", &epoch) == 1) {
				ch->ready = true;
				ch->epoch = epoch;
				qb_log(LOG_NOTICE, "volume %s: the coordinator (pid %d) serves, epoch %llu",
				       d->conf[c].name, (int)ch->pid, epoch);
				close_ready(d, ch);
				roles_act(d);
				return 0;
			}
			if (ch->ready_len < sizeof(ch->ready_buf) - 1)
				return 0;
		}
		close_ready(d, ch);  /* EOF, or a line that is not ours */
		return 0;
	}
	return 0;
}

/* Starts the coordinator of conf volume c. */
static void start(struct rmd *d, uint32_t c, uint64_t generation)
{
	const struct rmd_volume_conf *vc = &d->conf[c];
	struct rmd_child *ch = &d->child[c];
	char listen[128], node[16], ready[16], log[1024];
	int p[2];
	snprintf(listen, sizeof(listen), "%s:%u", d->address, vc->port);
	snprintf(node, sizeof(node), "%u", d->node_id);
	snprintf(ready, sizeof(ready), "%d", READY_FD);
	snprintf(log, sizeof(log), "%s/%s.coordinator.log", d->state_dir, vc->name);
	if (pipe2(p, O_CLOEXEC) < 0) {
		qb_log(LOG_ERR, "volume %s: cannot start the coordinator: pipe: %s", vc->name, strerror(errno));
		return;
	}
	int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		qb_log(LOG_ERR, "volume %s: cannot start the coordinator: fork: %s", vc->name, strerror(errno));
		close(p[0]);
		close(p[1]);
		if (logfd >= 0)
			close(logfd);
		return;
	}
	if (pid == 0) {
		/* It must not outlive csv-rmd: its role is then given away. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, 0);
		if (logfd >= 0) {
			dup2(logfd, 1);
			dup2(logfd, 2);
		}
		dup2(p[1], READY_FD);  /* dup2 clears close-on-exec */
		char *argv[] = { (char *)d->coordinator, "--lun", (char *)vc->spec, "--listen", listen, "--keyfile",
				 (char *)d->keyfile, "--node-id", node, "--quorumd", (char *)d->quorumd_name,
				 "--ready-fd", ready, "--foreground", NULL };
		execv(d->coordinator, argv);
		dprintf(2, "csv-rmd: cannot run %s: %s\n", d->coordinator, strerror(errno));
		_exit(127);
	}
	close(p[1]);
	if (logfd >= 0)
		close(logfd);
	memset(ch, 0, sizeof(*ch));
	ch->pid = pid;
	ch->generation = generation;
	ch->ready_fd = p[0];
	qb_loop_poll_add(d->loop, QB_LOOP_HIGH, p[0], POLLIN, d, on_ready);
	char pidfile[1024];
	snprintf(pidfile, sizeof(pidfile), "%s/%s.coordinator.pid", d->state_dir, vc->name);
	FILE *f = fopen(pidfile, "w");
	if (f) {
		fprintf(f, "%d\n", (int)pid);
		fclose(f);
	}
	qb_log(LOG_NOTICE, "volume %s: started the coordinator (pid %d) on %s; its log: %s", vc->name, (int)pid,
	       listen, log);
}

/* Reaps exited coordinators; reports those that were not asked to stop. */
static void reap(struct rmd *d)
{
	for (uint32_t c = 0; c < d->nconf; c++) {
		struct rmd_child *ch = &d->child[c];
		int status;
		if (!ch->pid || waitpid(ch->pid, &status, WNOHANG) != ch->pid)
			continue;
		char how[96], reason[300];
		if (WIFEXITED(status))
			snprintf(how, sizeof(how), "exited with status %d", WEXITSTATUS(status));
		else
			snprintf(how, sizeof(how), "was killed by %s", strsignal(WTERMSIG(status)));
		bool asked = ch->stop_asked;
		qb_log(asked ? LOG_NOTICE : LOG_WARNING, "volume %s: the coordinator (pid %d) %s%s", d->conf[c].name,
		       (int)ch->pid, how, asked ? ", as asked" : "");
		close_ready(d, ch);
		uint64_t generation = ch->generation;
		memset(ch, 0, sizeof(*ch));
		ch->ready_fd = -1;
		ch->generation = generation;
		char pidfile[1024];
		snprintf(pidfile, sizeof(pidfile), "%s/%s.coordinator.pid", d->state_dir, d->conf[c].name);
		unlink(pidfile);
		int k = r_volume_index(&d->st, d->conf[c].name);
		if (k >= 0 && d->st.volumes[k].holder == d->node_id && !asked && d->synced) {
			snprintf(reason, sizeof(reason), "the coordinator on node %s %s (see %s/%s.coordinator.log)",
				 d->node_name, how, d->state_dir, d->conf[c].name);
			report(d, c, "failed", 0, reason);
		}
	}
}

static void stop_child(struct rmd *d, uint32_t c, int sig, const char *why)
{
	struct rmd_child *ch = &d->child[c];
	if (!ch->pid)
		return;
	if (!ch->stop_asked || sig == SIGKILL) {
		qb_log(LOG_NOTICE, "volume %s: stopping the coordinator (pid %d)%s: %s", d->conf[c].name, (int)ch->pid,
		       sig == SIGKILL ? " at once" : "", why);
		kill(ch->pid, sig);
	}
	if (!ch->stop_asked)
		ch->stop_at_ms = rmd_now_ms() + RMD_STOP_TIMEOUT_MS;
	ch->stop_asked = true;
	if (sig == SIGKILL)
		ch->killed = true;
}

void roles_act(struct rmd *d)
{
	reap(d);
	uint64_t now = rmd_now_ms();
	for (uint32_t c = 0; c < d->nconf; c++) {
		struct rmd_child *ch = &d->child[c];
		int k = r_volume_index(&d->st, d->conf[c].name);
		const struct r_volume *v = k >= 0 ? &d->st.volumes[k] : NULL;
		bool mine = v && v->holder == d->node_id;

		if (ch->pid && ch->stop_asked && !ch->killed && now >= ch->stop_at_ms)
			stop_child(d, c, SIGKILL, "it did not stop in time");
		if (!d->synced)
			continue;  /* only the agreed state says what to run */
		if (ch->pid && !mine) {
			stop_child(d, c, SIGKILL, "the volume is another node's");
			continue;
		}
		if (!v || !mine)
			continue;
		switch (v->phase) {
		case R_STARTING:
			if (!ch->pid && rmd_quorate(d)) {
				if (ch->generation == v->moves && d->report_sent[c][0] &&
				    strcmp(d->report_sent[c], "failed") == 0)
					break;  /* this placement failed already; the leader knows */
				start(d, c, v->moves);
			} else if (ch->pid && ch->ready && !ch->stop_asked) {
				report(d, c, "running", ch->epoch, NULL);
			}
			break;
		case R_RUNNING:
			if (!ch->pid)
				report(d, c, "stopped", 0, "the coordinator is not running on its node");
			else if (ch->ready && ch->epoch != v->epoch)
				report(d, c, "running", ch->epoch, NULL);
			break;
		case R_WAITING_FENCE:
			if (ch->pid && ch->ready && !ch->stop_asked)
				report(d, c, "running", ch->epoch, NULL);
			else if (!ch->pid)
				report(d, c, "stopped", 0, "the coordinator is not running on its node");
			break;
		case R_STOPPING:
			/* A coordinator that lost its SAN path cannot write its
			 * checkpoint, and one held in a hung path would only use
			 * up the stop timeout: it ends at once (its journal holds
			 * everything it answered). */
			if (ch->pid && !d->conf[c].san_ok && !ch->killed)
				stop_child(d, c, SIGKILL, v->reason);
			else if (ch->pid)
				stop_child(d, c, SIGTERM, v->reason);
			else
				report(d, c, "stopped", 0, v->reason);
			break;
		case R_UNPLACED:
			break;
		}
	}
}

void roles_stop_all(struct rmd *d, bool now, const char *why)
{
	for (uint32_t c = 0; c < d->nconf; c++)
		if (d->child[c].pid)
			stop_child(d, c, now ? SIGKILL : SIGTERM, why);
	for (int i = 0; i < (RMD_STOP_TIMEOUT_MS + 1000) / 20; i++) {
		if (i == RMD_STOP_TIMEOUT_MS / 20)
			for (uint32_t c = 0; c < d->nconf; c++)
				if (d->child[c].pid)
					stop_child(d, c, SIGKILL, "it did not stop in time");
		bool any = false;
		reap(d);
		for (uint32_t c = 0; c < d->nconf; c++)
			any |= d->child[c].pid != 0;
		if (!any)
			return;
		usleep(20000);
	}
}
