/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The fence agent: an external program with the fence-agents interface
 * (key=value lines on standard input: action, plug, nodename and the
 * operator's own options; exit 0 for success), run by one node only, the
 * fencer: the quorate member with the lowest id whose csv-quorumd runs.
 * One agent runs at a time; a failure is logged and tried again later; a
 * success is multicast so that every node counts the fence as done. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "quorumd.h"

/* A failed fence is tried again after this. */
#define AGENT_RETRY_MS 5000u

static bool am_fencer(const struct quorumd *d)
{
	const struct q_state *st = &d->st;
	if (!st->connected || !st->quorate || (st->witness && !st->cast_vote))
		return false;
	for (uint32_t i = 0; i < st->nnodes; i++)
		if (st->nodes[i].member && st->nodes[i].daemon && st->nodes[i].id < st->node_id)
			return false;
	return true;
}

/* Starts the agent against node n: its input is written at once (a few
 * hundred bytes fit in the pipe). */
static void spawn(struct quorumd *d, struct q_node *n, uint64_t now_ms)
{
	int in[2], out[2];
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
		qb_log(LOG_ERR, "fence of node %u: cannot run the agent: %s", n->id, strerror(errno));
		return;
	}
	pid_t pid = fork();
	if (pid < 0) {
		qb_log(LOG_ERR, "fence of node %u: cannot run the agent: fork: %s", n->id, strerror(errno));
		close(in[0]), close(in[1]), close(out[0]), close(out[1]);
		return;
	}
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(out[1], 2);
		execl(d->agent_path, d->agent_path, (char *)NULL);
		dprintf(2, "cannot run %s: %s\n", d->agent_path, strerror(errno));
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	FILE *f = fdopen(in[1], "w");
	if (f) {
		fprintf(f, "action=%s\nplug=%s\nnodename=%s\n", d->agent_action, n->name[0] ? n->name : "",
			n->name[0] ? n->name : "");
		for (uint32_t i = 0; i < d->agent_nargs; i++)
			fprintf(f, "%s\n", d->agent_args[i]);
		fclose(f);
	} else {
		close(in[1]);
	}
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	d->agent_pid = pid;
	d->agent_target = n->id;
	d->agent_started_ms = now_ms;
	d->agent_out = out[0];
	d->agent_output_len = 0;
	d->agent_output[0] = '\0';
	qb_log(LOG_CRIT, "fence of node %u (%s): running %s action=%s (pid %d)", n->id, n->name, d->agent_path,
	       d->agent_action, (int)pid);
}

static void drain_output(struct quorumd *d)
{
	for (;;) {
		size_t room = sizeof(d->agent_output) - 1 - d->agent_output_len;
		char sink[256];
		ssize_t r = read(d->agent_out, room ? d->agent_output + d->agent_output_len : sink,
				 room ? room : sizeof(sink));
		if (r <= 0)
			break;
		if (room)
			d->agent_output_len += (size_t)r;
	}
	d->agent_output[d->agent_output_len] = '\0';
	/* One line for the log. */
	for (char *p = d->agent_output; *p; p++)
		if (*p == '\n' && p[1])
			*p = ' ';
	size_t len = strlen(d->agent_output);
	if (len && d->agent_output[len - 1] == '\n')
		d->agent_output[len - 1] = '\0';
}

static void finish(struct quorumd *d, int status, uint64_t now_ms)
{
	drain_output(d);
	close(d->agent_out);
	d->agent_out = -1;
	uint32_t target = d->agent_target;
	struct q_node *n = q_state_node(&d->st, target);
	uint64_t took = now_ms - d->agent_started_ms;
	bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	d->agent_pid = 0;
	if (ok) {
		qb_log(LOG_CRIT, "fence of node %u: the agent %s confirmed action=%s in %" PRIu64 " ms%s%s", target,
		       d->agent_path, d->agent_action, took, d->agent_output[0] ? ": " : "", d->agent_output);
		if (n && n->fence == Q_FENCE_PENDING)
			n->agent_done = true;
		cluster_send_fenced(d, target);
		quorumd_evaluate_soon(d);
		return;
	}
	char how[64];
	if (WIFEXITED(status))
		snprintf(how, sizeof(how), "exit status %d", WEXITSTATUS(status));
	else
		snprintf(how, sizeof(how), "signal %d", WTERMSIG(status));
	qb_log(LOG_ERR, "fence of node %u: the agent %s failed (%s) after %" PRIu64 " ms%s%s; trying again in %u ms",
	       target, d->agent_path, how, took, d->agent_output[0] ? ": " : "", d->agent_output, AGENT_RETRY_MS);
	for (uint32_t i = 0; i < d->st.nnodes && i < Q_MAX_NODES; i++)
		if (d->st.nodes[i].id == target)
			d->agent_retry_ms[i] = now_ms + AGENT_RETRY_MS;
}

void agent_update(struct quorumd *d, uint64_t now_ms)
{
	if (d->agent_pid) {
		int status;
		drain_output(d);
		pid_t r = waitpid(d->agent_pid, &status, WNOHANG);
		if (r == d->agent_pid) {
			finish(d, status, now_ms);
		} else if (now_ms - d->agent_started_ms >= d->agent_timeout_ms) {
			qb_log(LOG_ERR, "fence of node %u: the agent did not finish within %u ms: killing it",
			       d->agent_target, d->agent_timeout_ms);
			kill(d->agent_pid, SIGKILL);
			if (waitpid(d->agent_pid, &status, 0) == d->agent_pid)
				finish(d, status, now_ms);
		}
		return;
	}
	if (!d->agent_path || !am_fencer(d))
		return;
	for (uint32_t i = 0; i < d->st.nnodes && i < Q_MAX_NODES; i++) {
		struct q_node *n = &d->st.nodes[i];
		if (n->fence != Q_FENCE_PENDING || n->agent_done || now_ms < d->agent_retry_ms[i])
			continue;
		spawn(d, n, now_ms);
		return;
	}
}

void agent_stop(struct quorumd *d)
{
	if (!d->agent_pid)
		return;
	int status;
	qb_log(LOG_WARNING, "stopping: the fence agent of node %u (pid %d) is killed before it finished",
	       d->agent_target, (int)d->agent_pid);
	kill(d->agent_pid, SIGKILL);
	waitpid(d->agent_pid, &status, 0);
	d->agent_pid = 0;
	if (d->agent_out >= 0)
		close(d->agent_out);
	d->agent_out = -1;
}
