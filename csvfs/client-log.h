/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Messages of the csvfs client while it runs: to standard error in the
 * foreground, to syslog (facility daemon, ident csvfs) once it has become
 * a daemon, whose standard error goes nowhere. */
#pragma once

#include <stdbool.h>
#include <syslog.h>

/* Sends later messages to syslog. */
void client_log_to_syslog(void);
/* One message, without a trailing newline; prio as syslog(3). */
void client_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
