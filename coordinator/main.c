/* SPDX-License-Identifier: GPL-2.0-or-later */
/* csv-coordinatord: the metadata server of one csvfs volume. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "daemon-log.h"
#include "format.h"
#include "fs.h"
#include "clusterarea.h"
#include "inodes.h"
#include "journal.h"
#include "mft.h"
#include "lease-client.h"
#include "record.h"
#include "server.h"
#include "volume.h"

#define PROG "csv-coordinatord"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: " PROG " --lun PATH|NBD-URI --listen HOST:PORT --keyfile FILE [options]\n"
		"Serve the metadata of one csvfs volume to the csvfs clients of the cluster.\n\n"
		"  -l, --lun PATH|URI      the volume: a block device, an image file or an nbd:// URI\n"
		"  -a, --listen HOST:PORT  address to accept clients on\n"
		"  -k, --keyfile FILE      cluster key file (mode 0600 or stricter)\n"
		"  -n, --node-id N         this node's id (default 1)\n"
		"  -q, --quorumd NAME      act only while holding this node's lease from the csv-quorumd\n"
		"                          at IPC endpoint NAME (csv-quorumd); exit 4 when it is lost\n"
		"  -r, --ready-fd FD       write \"ready epoch=N\" and a newline to FD once serving,\n"
		"                          then close it (for csv-rmd, which starts coordinators)\n"
		"  -f, --foreground        stay in the foreground and log to stderr\n"
		"  -h, --help              show this help\n"
		"  -V, --version           show the version\n");
}

static int32_t on_stop_signal(int32_t sig, void *data)
{
	struct server *s = data;
	vlog(s, LOG_NOTICE, "%s received: stopping", strsignal(sig));
	qb_loop_stop(s->loop);
	return 0;
}

/* How often the coordinator reads the lease block for a newer epoch. */
#define EPOCH_CHECK_MS 1000

/* One coordinator per epoch: when the lease block names a newer epoch,
 * another coordinator has taken the volume, and this one stops at once,
 * without answering or writing anything more. */
static void check_epoch(void *data)
{
	struct server *s = data;
	uint64_t epoch = 0;
	uint32_t holder = 0;
	char err[256];
	int r = clusterarea_read_epoch(s->v, &epoch, &holder, err, sizeof(err));
	if (r == 0 && epoch != s->epoch) {
		vlog(s, LOG_CRIT, "node %u took the volume with epoch %llu (this coordinator has %llu): stopping at once",
		     holder, (unsigned long long)epoch, (unsigned long long)s->epoch);
		s->superseded = true;
		qb_loop_stop(s->loop);
		return;
	}
	if (r < 0)
		vlog(s, LOG_WARNING, "cannot read the lease block: %s", err);
	qb_loop_timer_add(s->loop, QB_LOOP_HIGH, EPOCH_CHECK_MS * QB_TIME_NS_IN_MSEC, s, check_epoch,
			  &s->epoch_timer);
}

/* Waits this long for a valid lease at start. */
#define LEASE_WAIT_MS 10000u

/* The lease is lost: a coordinator cannot stop its I/O any faster than by
 * ending at once, without a checkpoint; the journal holds everything
 * that was answered. */
static void on_fence(void *ctx, const char *why)
{
	struct server *s = ctx;
	vlog(s, LOG_CRIT, "self-fence: %s: stopping at once, writing nothing more (exit 4)", why);
	qb_log_fini();
	_exit(4);
}

static int hold_lease(struct server *s, const char *quorumd, const char *lun, struct lease_client **ret,
		      char *err, size_t errlen)
{
	static const struct lease_client_ops ops = { .fence = on_fence };
	char why[320];
	int r = lease_client_start(quorumd, "coordinator", lun, &ops, s, ret);
	if (r < 0) {
		snprintf(err, errlen, "cannot follow the lease: %s", strerror(-r));
		return r;
	}
	r = lease_client_wait(*ret, LEASE_WAIT_MS, why, sizeof(why));
	if (r < 0) {
		snprintf(err, errlen, "this node holds no valid lease after %u ms: %s", LEASE_WAIT_MS, why);
		lease_client_stop(*ret);
		*ret = NULL;
	}
	return r;
}

/* Fails with a message on stderr (and in the log). */
#define die(...)                                          \
	do {                                              \
		fprintf(stderr, PROG ": " __VA_ARGS__);   \
		fputc('\n', stderr);                      \
		qb_log(LOG_ERR, __VA_ARGS__);             \
		goto out;                                 \
	} while (0)

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "lun", required_argument, NULL, 'l' },
		{ "listen", required_argument, NULL, 'a' },
		{ "keyfile", required_argument, NULL, 'k' },
		{ "node-id", required_argument, NULL, 'n' },
		{ "quorumd", required_argument, NULL, 'q' },
		{ "ready-fd", required_argument, NULL, 'r' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	const char *lun = NULL, *listen_addr = NULL, *keyfile = NULL, *quorumd = NULL;
	struct lease_client *lease = NULL;
	unsigned long node_id = 1;
	bool foreground = false;
	long ready_fd = -1;
	struct server s = { .listen_fd = -1 };
	struct csv_volume *v = NULL;
	struct csv_journal *j = NULL;
	struct csv_fs *fs = NULL;
	char err[512], uuid[37];
	int opt, r, status = 1;
	char *end;

	while ((opt = getopt_long(argc, argv, "l:a:k:n:q:r:fhV", opts, NULL)) != -1) {
		switch (opt) {
		case 'l': lun = optarg; break;
		case 'a': listen_addr = optarg; break;
		case 'k': keyfile = optarg; break;
		case 'n':
			errno = 0;
			node_id = strtoul(optarg, &end, 0);
			if (errno || *end || node_id == 0 || node_id > UINT32_MAX) {
				fprintf(stderr, PROG ": --node-id '%s' is not a node id (1..4294967295)\n", optarg);
				return 1;
			}
			break;
		case 'q': quorumd = optarg; break;
		case 'r':
			errno = 0;
			ready_fd = strtol(optarg, &end, 10);
			if (errno || *end || ready_fd < 0 || ready_fd > INT32_MAX) {
				fprintf(stderr, PROG ": --ready-fd '%s' is not a file descriptor\n", optarg);
				return 1;
			}
			break;
		case 'f': foreground = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf(PROG " " PACKAGE_VERSION "\n"); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (optind < argc || !lun || !listen_addr || !keyfile) {
		fprintf(stderr, PROG ": %s\n", optind < argc ? "unexpected argument" :
			"--lun, --listen and --keyfile are required");
		usage(stderr);
		return 1;
	}
	s.node_id = (uint32_t)node_id;
	daemon_log_setup(PROG, foreground);

	if (csv_wire_key_load(keyfile, &s.key, err, sizeof(err)) < 0)
		die("bad key file: %s", err);
	/* The address first: a coordinator that cannot serve must not touch
	 * the volume (replay its journal, take its epoch). */
	s.loop = qb_loop_create();
	if (!s.loop)
		die("cannot create the event loop");
	r = server_listen(&s, listen_addr, err, sizeof(err));
	if (r < 0)
		die("%s", err);
	/* And the lease: without it, nothing may be written. */
	if (quorumd && hold_lease(&s, quorumd, lun, &lease, err, sizeof(err)) < 0)
		die("%s", err);

	/* No page cache of the LUN: the clients write file data on it. */
	r = volume_open(lun, CSV_BDEV_DIRECT, &v, err, sizeof(err));
	if (r < 0)
		die("cannot open the volume %s: %s", lun, err[0] ? err : strerror(-r));
	s.v = v;
	uuid_format(v->g.uuid, uuid);
	if (v->g.label[0])
		snprintf(s.volname, sizeof(s.volname), "%s (%s)", v->g.label, uuid);
	else
		snprintf(s.volname, sizeof(s.volname), "%s", uuid);
	if (v->primary_header_bad)
		vlog(&s, LOG_WARNING, "the primary volume header is damaged: opened from the backup; run fsck.csvfs");

	/* One coordinator per epoch: this one takes the next before it writes
	 * anything else, so that one it replaces stops before the replay. */
	r = clusterarea_take_epoch(v, s.node_id, &s.epoch, err, sizeof(err));
	if (r < 0)
		die("volume %s: cannot take the coordinator epoch: %s", s.volname, err);
	r = journal_open(v, &j);
	if (r < 0)
		die("volume %s: cannot open the journal of %s: %s", s.volname, lun, strerror(-r));
	if (journal_needs_replay(j)) {
		uint64_t txns = 0, blocks = 0;
		r = journal_replay(j, &txns, &blocks);
		if (r < 0)
			die("volume %s: journal replay failed: %s", s.volname, strerror(-r));
		vlog(&s, LOG_NOTICE, "journal replayed: %llu transactions, %llu blocks",
		     (unsigned long long)txns, (unsigned long long)blocks);
	} else {
		vlog(&s, LOG_INFO, "journal clean: nothing to replay");
	}
	err[0] = '\0';
	r = fs_open_journaled(v, j, &fs, err, sizeof(err));
	if (r < 0)
		die("volume %s: cannot open the metadata: %s", s.volname, err[0] ? err : strerror(-r));
	s.fs = fs;
	/* The server flushes the journal once per batch of requests. */
	s.j = j;
	journal_set_deferred_flush(j, true);
	{
		/* No client holds a file open yet: files unlinked while open
		 * before the last stop are freed now. */
		uint64_t n = 0;
		r = fs_reclaim_orphans(fs, &n);
		if (r < 0)
			die("volume %s: cannot free the files unlinked while open: %s", s.volname, strerror(-r));
		if (n)
			vlog(&s, LOG_NOTICE, "freed %llu files unlinked while open before the last stop",
			     (unsigned long long)n);
	}
	if (inodes_init(&s) < 0)
		die("volume %s: no memory", s.volname);

	{
		static uint8_t root[CSV_RECORD_SIZE];
		r = mft_read(&fs->mft, CSV_RECNO_ROOT, root, err, sizeof(err));
		if (r < 0)
			die("volume %s: cannot read the root directory: %s", s.volname, err);
		s.root_ino = record_ref(root);
	}
	s.welcome = (struct csv_wire_welcome){
		.flags = 0,
		.cluster_size = v->g.cluster_size,
		.block_size = CSV_BLOCK_SIZE,
		.total_clusters = v->g.total_clusters,
		.root_ino = s.root_ino,
		.max_io = CSV_WIRE_IO_MAX,
		.name_max = CSV_NAME_MAX,
	};

	qb_loop_signal_add(s.loop, QB_LOOP_HIGH, SIGTERM, &s, on_stop_signal, NULL);
	qb_loop_signal_add(s.loop, QB_LOOP_HIGH, SIGINT, &s, on_stop_signal, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (!foreground) {
		/* Threads do not cross fork(): the lease is followed anew. */
		lease_client_stop(lease);
		lease = NULL;
		if (daemon(0, 0) < 0)
			die("cannot become a daemon: %s", strerror(errno));
		if (quorumd && hold_lease(&s, quorumd, lun, &lease, err, sizeof(err)) < 0)
			die("%s", err);
	}
	qb_loop_timer_add(s.loop, QB_LOOP_HIGH, EPOCH_CHECK_MS * QB_TIME_NS_IN_MSEC, &s, check_epoch, &s.epoch_timer);
	vlog(&s, LOG_NOTICE, "serving on %s as node %u, epoch %llu", listen_addr, s.node_id,
	     (unsigned long long)s.epoch);
	if (ready_fd >= 0) {
		dprintf((int)ready_fd, "ready epoch=%llu\n", (unsigned long long)s.epoch);
		close((int)ready_fd);
	}

	qb_loop_run(s.loop);

	if (s.superseded) {
		/* The volume is another coordinator's: no checkpoint, no write. */
		server_shutdown(&s);
		status = 3;
		goto out;
	}
	server_shutdown(&s);
	r = fs_sync(fs);
	if (r < 0) {
		vlog(&s, LOG_ERR, "checkpoint at shutdown failed: %s (the journal will be replayed at the next start)",
		     strerror(-r));
		goto out;
	}
	vlog(&s, LOG_NOTICE, "stopped after %llu requests; journal checkpointed", (unsigned long long)s.requests);
	status = 0;
out:
	if (s.listen_fd >= 0)
		server_shutdown(&s);
	lease_client_stop(lease);
	fs_close(fs);
	journal_close(j);
	volume_close(v);
	if (s.loop)
		qb_loop_destroy(s.loop);
	csv_wire_key_wipe(&s.key);
	qb_log_fini();
	return status;
}
