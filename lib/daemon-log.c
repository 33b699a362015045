/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <signal.h>
#include <stdio.h>
#include <syslog.h>
#include <unistd.h>

#include <qb/qblog.h>

#include "daemon-log.h"

#define BLACKBOX_DIR "/var/lib/csvfs"

static const char *log_prog = "csvfs";

static void crash_handler(int sig)
{
	char path[128];
	snprintf(path, sizeof(path), BLACKBOX_DIR "/%s-%d.blackbox", log_prog, (int)getpid());
	qb_log_blackbox_write_to_file(path);
	signal(sig, SIG_DFL);
	raise(sig);
}

void daemon_log_setup(const char *prog, bool foreground)
{
	char fmt[64];
	log_prog = prog;
	qb_log_init(prog, LOG_DAEMON, LOG_INFO);
	qb_log_format_set(QB_LOG_SYSLOG, "%b");
	if (foreground) {
		qb_log_ctl(QB_LOG_SYSLOG, QB_LOG_CONF_ENABLED, QB_FALSE);
		qb_log_filter_ctl(QB_LOG_STDERR, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", LOG_INFO);
		snprintf(fmt, sizeof(fmt), "%s[%%P]: %%p: %%b", prog);
		qb_log_format_set(QB_LOG_STDERR, fmt);
		qb_log_ctl(QB_LOG_STDERR, QB_LOG_CONF_ENABLED, QB_TRUE);
	}
	qb_log_filter_ctl(QB_LOG_BLACKBOX, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", LOG_DEBUG);
	qb_log_ctl(QB_LOG_BLACKBOX, QB_LOG_CONF_SIZE, 1024 * 1024);
	qb_log_ctl(QB_LOG_BLACKBOX, QB_LOG_CONF_ENABLED, QB_TRUE);
	signal(SIGSEGV, crash_handler);
	signal(SIGABRT, crash_handler);
	signal(SIGBUS, crash_handler);
}
