/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdarg.h>
#include <stdio.h>

#include "client-log.h"

static bool use_syslog;

void client_log_to_syslog(void)
{
	openlog("csvfs", LOG_PID, LOG_DAEMON);
	use_syslog = true;
}

void client_log(int prio, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (use_syslog) {
		vsyslog(prio, fmt, ap);
	} else {
		fputs("csvfs: ", stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
	va_end(ap);
}
