/* SPDX-License-Identifier: GPL-2.0-or-later */
/* csvfs: the FUSE client of a csvfs cluster volume.
 *   csvfs LUN MOUNTPOINT -o coordinator=HOST:PORT,keyfile=FILE[,node=N] [-f] [-d]
 *   csvfs LUN MOUNTPOINT -o rmd[=NAME][,volume=NAME],keyfile=FILE[,node=N] [-f] [-d] */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blockdev.h"
#include "client-attrs.h"
#include "client-conn.h"
#include "client-log.h"
#include "client-files.h"
#include "client-ops.h"
#include "config.h"
#include "rmd-client.h"
#include "rmd-ipc.h"
#include "util.h"
#include "volume.h"

/* The lease must be valid within this at mount time. */
#define LEASE_WAIT_MS 10000u
/* With rmd, a coordinator must answer within this (or reconnect_timeout,
 * if shorter) at mount time. */
#define RMD_MOUNT_WAIT_S 30u
/* csv-rmd is asked this often, and told this node's access. */
#define RMD_POLL_MS 1000u

/* Following the coordinator through the local csv-rmd (-o rmd): the
 * locator of the connection, and a thread that reports this node's access
 * to the volume every RMD_POLL_MS and applies the volume's file-system
 * redirected mode. */
struct rmd_follow {
	const char *ipc_name;
	const char *volume;          /* as csv-rmd is asked: a name or a UUID */
	struct client_conn *cc;      /* set with the thread */

	pthread_mutex_t lock;        /* everything below */
	pthread_cond_t cond;
	struct client_lun *lun;      /* reported and redirected; NULL before the thread and after */
	uint64_t asked, answered;    /* questions to csv-rmd, the latest of them applied */
	bool located;                /* last holds a location */
	struct rmd_location last;
	bool have_redirect;          /* redirect holds csv-rmd's word */
	bool redirect;
	bool stop;
	bool poked;                  /* the access changed: ask now */

	char poll_err[512];          /* the thread's own: its last error, logged once */
	bool started;
	pthread_t thread;
};

static void rmd_follow_init(struct rmd_follow *f, const char *ipc_name, const char *volume)
{
	pthread_condattr_t ca;
	*f = (struct rmd_follow){ .ipc_name = ipc_name, .volume = volume };
	pthread_mutex_init(&f->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f->cond, &ca);
	pthread_condattr_destroy(&ca);
}

/* Asks csv-rmd where the coordinator is, telling it this node's access
 * once the thread runs; applies the redirected mode and notes a move. */
static int rmd_follow_ask(struct rmd_follow *f, struct rmd_location *loc, char *err, size_t errlen)
{
	char reason[256] = "";
	const char *access = NULL;
	pthread_mutex_lock(&f->lock);
	uint64_t seq = ++f->asked;
	if (f->lun)
		access = client_lun_access(f->lun, reason, sizeof(reason));
	pthread_mutex_unlock(&f->lock);

	int r = rmd_locate(f->ipc_name, f->volume, access, reason, loc, err, errlen);
	if (r < 0 && r != -EAGAIN)
		return r;
	pthread_mutex_lock(&f->lock);
	/* An answer to an older question than the one applied last (the two
	 * threads ask) changes nothing. */
	bool stale = seq < f->answered;
	if (!stale) {
		f->answered = seq;
		f->have_redirect = true;
		f->redirect = loc->redirect;
		if (f->lun)
			client_lun_set_fs_redirected(f->lun, loc->redirect);
	}
	if (r == 0 && !stale) {
		if (f->located && (loc->node != f->last.node || loc->port != f->last.port ||
				   strcmp(loc->host, f->last.host) != 0))
			client_log(LOG_NOTICE, "the coordinator of %s moved to node %u at %s:%u (epoch %llu)",
				   loc->volume, loc->node, loc->host, loc->port, (unsigned long long)loc->epoch);
		f->last = *loc;
		f->located = true;
	}
	pthread_mutex_unlock(&f->lock);
	return r;
}

/* The connection's locator. */
static int rmd_follow_locate(void *ud, char *host, size_t hostlen, char *port, size_t portlen, char *err,
			     size_t errlen)
{
	struct rmd_follow *f = ud;
	struct rmd_location loc;
	int r = rmd_follow_ask(f, &loc, err, errlen);
	if (r < 0)
		return r;
	/* An IPv6 address may come in brackets: getaddrinfo() wants it bare. */
	const char *h = loc.host;
	size_t hl = strlen(h);
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	snprintf(host, hostlen, "%.*s", (int)hl, h);
	snprintf(port, portlen, "%u", loc.port);
	return 0;
}

/* The lun's access changed: ask (and so tell) csv-rmd now, not at the
 * next poll. */
static void rmd_follow_poke(void *ctx)
{
	struct rmd_follow *f = ctx;
	pthread_mutex_lock(&f->lock);
	f->poked = true;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

static void *rmd_follow_main(void *arg)
{
	struct rmd_follow *f = arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		struct timespec dl;
		clock_gettime(CLOCK_MONOTONIC, &dl);
		dl.tv_sec += RMD_POLL_MS / 1000u;
		dl.tv_nsec += (long)(RMD_POLL_MS % 1000u) * 1000000L;
		if (dl.tv_nsec >= 1000000000L) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&f->lock);
		while (!f->stop && !f->poked && pthread_cond_timedwait(&f->cond, &f->lock, &dl) == 0)
			;
		f->poked = false;
		bool stop = f->stop;
		pthread_mutex_unlock(&f->lock);
		if (stop)
			break;

		struct rmd_location loc;
		char err[512];
		int r = rmd_follow_ask(f, &loc, err, sizeof(err));
		/* Each error once, and the end of it; while the connection is
		 * down, reconnecting says it. */
		if (r < 0 && strcmp(err, f->poll_err) != 0 && client_conn_generation(f->cc) != 0)
			client_log(LOG_WARNING, "%s", err);
		/* The role moved while this connection still looks up: the
		 * old coordinator's end may never say it is gone. */
		if (r == 0)
			client_conn_drop_older(f->cc, loc.epoch);
		if (r == 0 && f->poll_err[0])
			client_log(LOG_NOTICE, "csv-rmd locates the coordinator of %s again: node %u at %s:%u",
				   loc.volume, loc.node, loc.host, loc.port);
		snprintf(f->poll_err, sizeof(f->poll_err), "%s", r < 0 ? err : "");
	}
	return NULL;
}

/* Starts the thread once lun is open (and its lease held). */
static int rmd_follow_start(struct rmd_follow *f, struct client_conn *cc, struct client_lun *lun)
{
	f->cc = cc;
	pthread_mutex_lock(&f->lock);
	f->lun = lun;
	pthread_mutex_unlock(&f->lock);
	int r = pthread_create(&f->thread, NULL, rmd_follow_main, f);
	if (r != 0)
		return -r;
	f->started = true;
	client_lun_on_access(lun, rmd_follow_poke, f);
	return 0;
}

/* Stops the thread and lets go of the lun: before the lun is closed. */
static void rmd_follow_stop(struct rmd_follow *f)
{
	if (f->started)
		client_lun_on_access(f->lun, NULL, NULL);
	pthread_mutex_lock(&f->lock);
	f->stop = true;
	f->lun = NULL;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	if (f->started)
		pthread_join(f->thread, NULL);
	f->started = false;
}

/* After the connection is closed: its reader calls the locator. */
static void rmd_follow_destroy(struct rmd_follow *f)
{
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->lock);
}

struct options {
	char *coordinator;
	char *rmd;          /* rmd=NAME */
	int rmd_default;    /* rmd alone */
	char *volume;
	char *keyfile;
	unsigned node;
	double attr_timeout;
	unsigned reconnect_timeout;
	unsigned io_timeout;
	char *quorumd;
	char *lun;
	int nonopts;
};

#define OPT(t, p) { t, offsetof(struct options, p), 1 }
static const struct fuse_opt opt_spec[] = {
	OPT("coordinator=%s", coordinator),
	OPT("rmd=%s", rmd),
	{ "rmd", offsetof(struct options, rmd_default), 1 },
	OPT("volume=%s", volume),
	OPT("keyfile=%s", keyfile),
	OPT("node=%u", node),
	OPT("attr_timeout=%lf", attr_timeout),
	OPT("reconnect_timeout=%u", reconnect_timeout),
	OPT("io_timeout=%u", io_timeout),
	OPT("quorumd=%s", quorumd),
	FUSE_OPT_END
};

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct options *o = data;
	if (key == FUSE_OPT_KEY_NONOPT && o->nonopts++ == 0) {
		o->lun = strdup(arg);
		return 0;
	}
	return 1;
}

static void usage(const char *prog)
{
	printf("Usage: %s LUN MOUNTPOINT -o coordinator=HOST:PORT,keyfile=FILE[,node=N] [options]\n"
	       "       %s LUN MOUNTPOINT -o rmd[=NAME][,volume=NAME],keyfile=FILE[,node=N] [options]\n"
	       "\n"
	       "Mounts the csvfs volume on LUN, served by csv-coordinatord at HOST:PORT, or\n"
	       "wherever the local csv-rmd says it runs.\n"
	       "\n"
	       "csvfs options:\n"
	       "    -o coordinator=HOST:PORT  the coordinator of the volume, at a fixed address\n"
	       "    -o rmd[=NAME]             ask the csv-rmd at IPC endpoint NAME (csv-rmd) where\n"
	       "                              the coordinator runs, follow it when it moves, take\n"
	       "                              the volume's redirected mode from it and report\n"
	       "                              this node's access to it (instead of coordinator=)\n"
	       "    -o volume=NAME            with rmd: the volume's name or UUID in csv-rmd\n"
	       "                              (default: the UUID on the LUN)\n"
	       "    -o keyfile=FILE           the cluster key file (mode 0600)\n"
	       "    -o node=N                 this node's id (default 1)\n"
	       "    -o attr_timeout=S         seconds the kernel caches attributes and names\n"
	       "                              (default 1; changes on other nodes drop them at once)\n"
	       "    -o reconnect_timeout=S    seconds an operation waits for a coordinator\n"
	       "                              after the connection is lost (default 120); with every\n"
	       "                              node's SAN lost, I/O pauses that long, then fails (EIO)\n"
	       "    -o io_timeout=MS          a SAN path I/O not answered within MS ms sends I/O\n"
	       "                              through the coordinator (default 2000; 0 waits forever)\n"
	       "    -o quorumd=NAME           do I/O only while this node holds its lease from\n"
	       "                              the csv-quorumd at IPC endpoint NAME (csv-quorumd);\n"
	       "                              I/O waits while it is lost, up to reconnect_timeout\n"
	       "\n",
	       prog, prog);
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct options o = { .node = 1, .attr_timeout = 1.0, .reconnect_timeout = 120, .io_timeout = 2000 };
	struct fuse_cmdline_opts co = { 0 };
	struct csvfs_client cl = { 0 };
	struct client_conn_params cp = { 0 };
	struct csv_wire_welcome w;
	struct rmd_follow follow;
	struct client_conn_locator locator = { .locate = rmd_follow_locate, .ud = &follow };
	bool rmd = false, follow_init = false;
	char uuid[37];
	struct fuse_session *se = NULL;
	struct fuse_loop_config *lc = NULL;
	char err[512];
	int ret = 1, r;

	if (fuse_opt_parse(&args, &o, opt_spec, opt_proc) < 0)
		return 1;
	if (fuse_parse_cmdline(&args, &co) != 0)
		return 1;
	if (co.show_help) {
		usage(argv[0]);
		fuse_cmdline_help();
		fuse_lowlevel_help();
		ret = 0;
		goto out;
	}
	if (co.show_version) {
		printf("csvfs %s\n", PACKAGE_VERSION);
		fuse_lowlevel_version();
		ret = 0;
		goto out;
	}
	if (!o.lun || !co.mountpoint) {
		fprintf(stderr, "csvfs: a LUN and a mount point are needed (see --help)\n");
		goto out;
	}
	rmd = o.rmd || o.rmd_default;
	if (o.coordinator && rmd) {
		fprintf(stderr, "csvfs: coordinator=HOST:PORT and rmd exclude each other: give coordinator= for a "
				"coordinator at a fixed address, or rmd to ask csv-rmd where it runs\n");
		goto out;
	}
	if (!o.coordinator && !rmd) {
		fprintf(stderr, "csvfs: -o coordinator=HOST:PORT or -o rmd[=NAME] is needed: where to find the "
				"coordinator of the volume (see --help)\n");
		goto out;
	}
	if (!o.keyfile) {
		fprintf(stderr, "csvfs: -o keyfile=FILE is needed (the cluster key file)\n");
		goto out;
	}
	if (o.volume && !rmd) {
		fprintf(stderr, "csvfs: volume=%s names the volume in csv-rmd, and needs rmd; with coordinator= "
				"the volume is the one on the LUN\n", o.volume);
		goto out;
	}
	if (o.rmd && !o.rmd[0]) {
		fprintf(stderr, "csvfs: rmd=: expected the IPC endpoint of csv-rmd (rmd alone: %s)\n",
			CSVR_IPC_DEFAULT_NAME);
		goto out;
	}
	if (o.volume && !o.volume[0]) {
		fprintf(stderr, "csvfs: volume=: expected the name or UUID of the volume in csv-rmd\n");
		goto out;
	}
	if (o.node == 0) {
		fprintf(stderr, "csvfs: node must not be 0\n");
		goto out;
	}
	if (o.coordinator) {
		char *colon = strrchr(o.coordinator, ':');
		if (!colon || colon == o.coordinator || !colon[1]) {
			fprintf(stderr, "csvfs: coordinator=%s: expected HOST:PORT\n", o.coordinator);
			goto out;
		}
		*colon = '\0';
		cp.host = o.coordinator;
		if (cp.host[0] == '[' && colon[-1] == ']') {
			colon[-1] = '\0';
			cp.host++;
		}
		cp.port = colon + 1;
	}
	cp.keyfile = o.keyfile;
	cp.node_id = o.node;
	cp.reconnect_timeout_s = o.reconnect_timeout;
	if (o.attr_timeout < 0 || o.attr_timeout > 3600) {
		fprintf(stderr, "csvfs: attr_timeout=%g: expected 0 to 3600 seconds\n", o.attr_timeout);
		goto out;
	}
	cl.attr_timeout = o.attr_timeout;
	if (client_files_new(&cl.files) < 0 || client_attrs_new(o.attr_timeout, &cl.attrs) < 0)
		goto out;

	/* The volume's identity, from its header. */
	struct csv_volume *v;
	r = volume_open(o.lun, CSV_BDEV_RDONLY, &v, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "csvfs: %s\n", err);
		goto out;
	}
	memcpy(cp.volume_uuid, v->g.uuid, sizeof(cp.volume_uuid));
	uuid_format(v->g.uuid, uuid);
	volume_close(v);

	if (rmd) {
		rmd_follow_init(&follow, o.rmd ? o.rmd : CSVR_IPC_DEFAULT_NAME, o.volume ? o.volume : uuid);
		follow_init = true;
		cp.locator = &locator;
		cp.locate_wait_s = MIN(o.reconnect_timeout, RMD_MOUNT_WAIT_S);
	}
	r = client_conn_open(&cp, &cl.cc, &w, err, sizeof(err));
	if (r < 0) {
		if (rmd)
			fprintf(stderr, "csvfs: volume %s: %s\n", follow.volume, err);
		else
			fprintf(stderr, "csvfs: %s\n", err);
		goto out;
	}
	/* With rmd, csv-rmd's word on the mode counts too. */
	bool redirected = w.flags & CSV_WIRE_VOL_REDIRECTED;
	if (rmd && follow.have_redirect && follow.redirect)
		redirected = true;
	r = client_lun_open(&cl.lun, o.lun, cl.cc, w.max_io, redirected);
	if (r < 0) {
		fprintf(stderr, "csvfs: cannot open %s: %s\n", o.lun, strerror(-r));
		goto out;
	}
	client_lun_set_timeouts(&cl.lun, o.io_timeout, o.reconnect_timeout);
	/* The lease before the mount: a node without it must not mount. */
	if (o.quorumd) {
		r = client_lun_hold_lease(&cl.lun, o.quorumd, LEASE_WAIT_MS, o.reconnect_timeout, err, sizeof(err));
		if (r < 0) {
			fprintf(stderr, "csvfs: %s\n", err);
			goto out;
		}
		/* Threads do not cross the fork of fuse_daemonize(). */
		client_lun_drop_lease(&cl.lun);
	}
	cl.root_ino = w.root_ino;
	cl.cluster_size = w.cluster_size;
	cl.name_max = w.name_max;
	cl.rdonly = w.flags & CSV_WIRE_VOL_RDONLY;

	fuse_opt_add_arg(&args, "-odefault_permissions");
	fuse_opt_add_arg(&args, "-ofsname=csvfs");
	if (cl.rdonly)
		fuse_opt_add_arg(&args, "-oro");
	se = fuse_session_new(&args, &csvfs_ops, sizeof(csvfs_ops), &cl);
	if (!se)
		goto out;
	if (fuse_set_signal_handlers(se) != 0)
		goto out;
	if (fuse_session_mount(se, co.mountpoint) != 0)
		goto out_signals;
	fuse_daemonize(co.foreground);
	if (!co.foreground)
		client_log_to_syslog();
	/* Threads after the fork of fuse_daemonize(). */
	struct client_conn_hooks hooks = { .invalidate = csvfs_invalidate, .foreach_open = csvfs_foreach_open,
					   .ud = &cl };
	r = client_conn_start(cl.cc, se, &hooks);
	if (r < 0) {
		fprintf(stderr, "csvfs: cannot start the connection threads: %s\n", strerror(-r));
		goto out_unmount;
	}
	if (o.quorumd) {
		r = client_lun_hold_lease(&cl.lun, o.quorumd, 0, o.reconnect_timeout, err, sizeof(err));
		if (r < 0) {
			fprintf(stderr, "csvfs: %s\n", err);
			goto out_unmount;
		}
	}
	/* The lun is open and its lease held: csv-rmd may hear of it now. */
	if (rmd) {
		r = rmd_follow_start(&follow, cl.cc, &cl.lun);
		if (r < 0) {
			fprintf(stderr, "csvfs: cannot start the csv-rmd thread: %s\n", strerror(-r));
			goto out_unmount;
		}
	}
	if (co.singlethread) {
		ret = fuse_session_loop(se) ? 1 : 0;
	} else {
		lc = fuse_loop_cfg_create();
		if (!lc)
			goto out_unmount;
		fuse_loop_cfg_set_clone_fd(lc, co.clone_fd);
		if (co.max_threads > 0 && co.max_threads <= 100000)
			fuse_loop_cfg_set_max_threads(lc, co.max_threads);
		/* UINT_MAX: not given, keep libfuse's default. */
		if (co.max_idle_threads != UINT_MAX)
			fuse_loop_cfg_set_idle_threads(lc, co.max_idle_threads);
		ret = fuse_session_loop_mt(se, lc) ? 1 : 0;
	}
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out:
	if (se)
		fuse_session_destroy(se);
	if (lc)
		fuse_loop_cfg_destroy(lc);
	if (follow_init)
		rmd_follow_stop(&follow);
	client_conn_close(cl.cc);
	if (follow_init)
		rmd_follow_destroy(&follow);
	client_files_free(cl.files);
	client_attrs_free(cl.attrs);
	client_lun_close(&cl.lun);
	free(co.mountpoint);
	free(o.coordinator);
	free(o.rmd);
	free(o.volume);
	free(o.keyfile);
	free(o.quorumd);
	free(o.lun);
	fuse_opt_free_args(&args);
	return ret;
}
