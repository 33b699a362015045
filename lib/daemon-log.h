/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Logging of the project's daemons through libqb: syslog (facility
 * daemon), or standard error in the foreground; every message, debug
 * included, also goes to the blackbox, which a crash (SIGSEGV, SIGABRT,
 * SIGBUS) writes to /var/lib/csvfs/PROG-PID.blackbox for qb-blackbox(8). */
#pragma once

#include <stdbool.h>

void daemon_log_setup(const char *prog, bool foreground);
