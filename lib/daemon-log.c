/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
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
		snprintf(fmt, sizeof(fmt), "%%T %s[%%P]: %%p: %%b", prog);
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

/* Forks; the parent waits until the child says it is ready (one byte on
 * the pipe) and exits 0, or exits 1 when the child exits first. The child
 * keeps the parent's stderr until then, so start errors reach the
 * caller. Returns the write end of the pipe in the child. */
int daemon_start(const char *prog)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		fprintf(stderr, "%s: pipe: %s\n", prog, strerror(errno));
		exit(1);
	}
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "%s: fork: %s\n", prog, strerror(errno));
		exit(1);
	}
	if (pid > 0) {
		char c;
		close(p[1]);
		ssize_t n;
		do
			n = read(p[0], &c, 1);
		while (n < 0 && errno == EINTR);
		_exit(n == 1 ? 0 : 1);
	}
	close(p[0]);
	setsid();
	if (chdir("/") < 0) {
		/* Not fatal: nothing is opened by a relative path. */
	}
	return p[1];
}

void daemon_ready(int fd)
{
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
	}
	(void)!write(fd, "R", 1);
	close(fd);
}
