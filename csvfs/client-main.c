/* SPDX-License-Identifier: GPL-2.0-or-later */
/* csvfs: the FUSE client of a csvfs cluster volume.
 *   csvfs LUN MOUNTPOINT -o coordinator=HOST:PORT,keyfile=FILE[,node=N] [-f] [-d] */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockdev.h"
#include "client-attrs.h"
#include "client-conn.h"
#include "client-log.h"
#include "client-files.h"
#include "client-ops.h"
#include "config.h"
#include "volume.h"

/* The lease must be valid within this at mount time. */
#define LEASE_WAIT_MS 10000u

struct options {
	char *coordinator;
	char *keyfile;
	unsigned node;
	double attr_timeout;
	unsigned reconnect_timeout;
	char *quorumd;
	char *lun;
	int nonopts;
};

#define OPT(t, p) { t, offsetof(struct options, p), 1 }
static const struct fuse_opt opt_spec[] = {
	OPT("coordinator=%s", coordinator),
	OPT("keyfile=%s", keyfile),
	OPT("node=%u", node),
	OPT("attr_timeout=%lf", attr_timeout),
	OPT("reconnect_timeout=%u", reconnect_timeout),
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
	       "\n"
	       "Mounts the csvfs volume on LUN, served by csv-coordinatord at HOST:PORT.\n"
	       "\n"
	       "csvfs options:\n"
	       "    -o coordinator=HOST:PORT  the coordinator of the volume\n"
	       "    -o keyfile=FILE           the cluster key file (mode 0600)\n"
	       "    -o node=N                 this node's id (default 1)\n"
	       "    -o attr_timeout=S         seconds the kernel caches attributes and names\n"
	       "                              (default 1; changes on other nodes drop them at once)\n"
	       "    -o reconnect_timeout=S    seconds an operation waits for a coordinator\n"
	       "                              after the connection is lost (default 120)\n"
	       "    -o quorumd=NAME           do I/O only while this node holds its lease from\n"
	       "                              the csv-quorumd at IPC endpoint NAME (csv-quorumd);\n"
	       "                              I/O waits while it is lost, up to reconnect_timeout\n"
	       "\n",
	       prog);
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct options o = { .node = 1, .attr_timeout = 1.0, .reconnect_timeout = 120 };
	struct fuse_cmdline_opts co = { 0 };
	struct csvfs_client cl = { 0 };
	struct client_conn_params cp = { 0 };
	struct csv_wire_welcome w;
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
	if (!o.coordinator || !o.keyfile) {
		fprintf(stderr, "csvfs: -o coordinator=HOST:PORT and -o keyfile=FILE are needed\n");
		goto out;
	}
	if (o.node == 0) {
		fprintf(stderr, "csvfs: node must not be 0\n");
		goto out;
	}
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
	volume_close(v);

	r = client_conn_open(&cp, &cl.cc, &w, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "csvfs: %s\n", err);
		goto out;
	}
	r = client_lun_open(&cl.lun, o.lun, cl.cc, w.max_io, w.flags & CSV_WIRE_VOL_REDIRECTED);
	if (r < 0) {
		fprintf(stderr, "csvfs: cannot open %s: %s\n", o.lun, strerror(-r));
		goto out;
	}
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
	client_conn_close(cl.cc);
	client_files_free(cl.files);
	client_attrs_free(cl.attrs);
	client_lun_close(&cl.lun);
	free(co.mountpoint);
	free(o.coordinator);
	free(o.keyfile);
	free(o.quorumd);
	free(o.lun);
	fuse_opt_free_args(&args);
	return ret;
}
