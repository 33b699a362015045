/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Logging of the project's daemons through libqb: syslog (facility
 * daemon), or standard error in the foreground; every message, debug
 * included, also goes to the blackbox, which a crash (SIGSEGV, SIGABRT,
 * SIGBUS) writes to /var/lib/csvfs/PROG-PID.blackbox for qb-blackbox(8). */
#pragma once

#include <stdbool.h>

void daemon_log_setup(const char *prog, bool foreground);

/* Forks; the parent waits until the child says it is ready
 * (daemon_ready) and exits 0, or exits 1 when the child exits first. The
 * child keeps stderr until then, so start errors reach the caller.
 * Returns the fd to pass to daemon_ready, in the child. */
int daemon_start(const char *prog);
/* The daemon is up: standard streams to /dev/null, the parent exits 0. */
void daemon_ready(int fd);
