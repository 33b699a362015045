/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The lease of this node, held for its VMs. With --quorumd, csv-vmagent
 * holds csv-quorumd's lease as role "vm": when the node must stop its I/O
 * (quorum lost, corosync gone, a fence asked for by another node), every
 * QEMU is killed, and the agent tells csv-quorumd it stopped only once each
 * has ended, so the node acknowledges its fence only when no VM of it runs.
 * No QEMU is started while the lease is not valid. Spawns and the fence
 * take one lock, so a QEMU is either killed by the fence or never started. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <qb/qblog.h>

#include "lease-client.h"
#include "util.h"
#include "vmagent.h"

/* How long the start waits for a first valid lease before going on
 * without (starts are refused until it comes). */
#define VM_LEASE_WAIT_MS 10000u
/* A killed QEMU still alive after this is logged (the wait goes on). */
#define VM_LEASE_KILL_LOG_MS 1000u

static struct {
	pthread_mutex_t lock;
	struct lease_client *lc;
	bool fenced;     /* told to stop, not yet told the lease is back */
	pid_t *pids;     /* every QEMU spawned and not yet reaped */
	unsigned npids, cap;
} L = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Whether every QEMU on the list has ended (a reaped one has left it). */
static bool all_ended(void)
{
	bool all = true;
	pthread_mutex_lock(&L.lock);
	for (unsigned i = 0; i < L.npids && all; i++)
		all = process_ended(L.pids[i]);
	pthread_mutex_unlock(&L.lock);
	return all;
}

/* The fence, on the lease client's thread: kill every QEMU and return once
 * each has ended. */
static void on_fence(void *ctx, const char *why)
{
	(void)ctx;
	pthread_mutex_lock(&L.lock);
	bool again = L.fenced;
	L.fenced = true;
	unsigned n = L.npids;
	for (unsigned i = 0; i < L.npids; i++)
		kill(L.pids[i], SIGKILL);
	pthread_mutex_unlock(&L.lock);
	if (n || !again)
		qb_log(LOG_CRIT, "self-fence: %s: killed the %u QEMU process(es) of this node", why, n);
	uint64_t t0 = monotonic_ns();
	bool logged = false;
	while (!all_ended()) {
		if (!logged && monotonic_ns() - t0 > VM_LEASE_KILL_LOG_MS * 1000000ull) {
			qb_log(LOG_CRIT, "self-fence: a QEMU of this node is still alive %u ms after SIGKILL "
			       "(held in I/O?): this node does not say it stopped", VM_LEASE_KILL_LOG_MS);
			logged = true;
		}
		nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
	}
	if (n)
		qb_log(LOG_CRIT, "self-fence: every QEMU of this node has ended (%" PRIu64 " ms after the kill)",
		       (monotonic_ns() - t0) / 1000000ull);
}

static void on_resume(void *ctx)
{
	(void)ctx;
	pthread_mutex_lock(&L.lock);
	L.fenced = false;
	pthread_mutex_unlock(&L.lock);
	qb_log(LOG_NOTICE, "the lease of this node is valid again: VMs may start here");
}

int vm_lease_start(const char *quorumd, char *err, size_t errlen)
{
	static const struct lease_client_ops ops = { .fence = on_fence, .resume = on_resume };
	char why[320];
	int r = lease_client_start(quorumd, "vm", "every VM of this node", &ops, NULL, &L.lc);
	if (r < 0) {
		snprintf(err, errlen, "cannot follow the lease of csv-quorumd '%s': %s", quorumd, strerror(-r));
		return r;
	}
	if (lease_client_wait(L.lc, VM_LEASE_WAIT_MS, why, sizeof(why)) < 0)
		qb_log(LOG_WARNING, "this node holds no valid lease after %u ms (%s): no VM starts until it does",
		       VM_LEASE_WAIT_MS, why);
	return 0;
}

void vm_lease_stop(void)
{
	if (L.lc)
		lease_client_stop(L.lc);
	L.lc = NULL;
}

int vm_lease_spawn_begin(char *err, size_t errlen)
{
	pthread_mutex_lock(&L.lock);
	if (L.lc && (L.fenced || !lease_client_valid(L.lc))) {
		pthread_mutex_unlock(&L.lock);
		snprintf(err, errlen, "this node holds no valid lease from csv-quorumd (%s): no VM starts here",
			 L.fenced ? "it was told to stop all I/O" : "not quorate, or csv-quorumd not reachable");
		return -ENOLCK;
	}
	return 0;
}

void vm_lease_spawn_end(pid_t pid)
{
	if (pid > 0) {
		if (L.npids == L.cap) {
			unsigned cap = L.cap ? 2 * L.cap : 16;
			pid_t *p = realloc(L.pids, cap * sizeof(*p));
			if (p) {
				L.pids = p;
				L.cap = cap;
			}
		}
		if (L.npids < L.cap)
			L.pids[L.npids++] = pid;
		else
			qb_log(LOG_ERR, "out of memory: QEMU pid %d is not on the fence's list", (int)pid);
	}
	pthread_mutex_unlock(&L.lock);
}

void vm_lease_forget(pid_t pid)
{
	pthread_mutex_lock(&L.lock);
	for (unsigned i = 0; i < L.npids; i++)
		if (L.pids[i] == pid) {
			L.pids[i] = L.pids[--L.npids];
			break;
		}
	pthread_mutex_unlock(&L.lock);
}
