/* SPDX-License-Identifier: GPL-2.0-or-later */
/* csv-vmagent: the hypervisor agent of a node. It runs the virtual
 * machines whose definitions and disks are on a shared csvfs volume under
 * QEMU (KVM when it works, else TCG), drives them through QMP only, and
 * serves the requests of csv-rmd and csvctl over libqb IPC
 * (lib/vmagent-ipc.h): list, define, start, stop, kill, live and quick
 * migration between nodes, disks added and removed, checkpoints. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <qb/qblog.h>

#include "config.h"
#include "daemon-log.h"
#include "vmagent-ipc.h"
#include "vmagent.h"

#define PROG "csv-vmagent"

static struct agent the_agent;

uint64_t vma_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: " PROG " --vm-dir DIR [options]\n"
		"Run this node's virtual machines, defined in DIR/NAME.json on a shared volume, under\n"
		"QEMU, and live-migrate them between nodes, as csv-rmd and csvctl ask over IPC.\n\n"
		"  -d, --vm-dir DIR      where the VM definitions (NAME.json) and their disks are\n"
		"                        (required)\n"
		"  -a, --address HOST    this node's address for incoming migrations (127.0.0.1)\n"
		"  -i, --ipc-name NAME   IPC endpoint to serve (" CSVV_IPC_DEFAULT_NAME ")\n"
		"  -r, --run-dir DIR     QMP sockets, serial output and QEMU logs (/run/csv-vmagent)\n"
		"  -q, --qemu PATH       the QEMU to run (qemu-system-x86_64 from PATH)\n"
		"  -n, --node-id N       this node's id, reported in LIST (1)\n"
		"  -Q, --quorumd NAME    hold the lease of the csv-quorumd at IPC endpoint NAME:\n"
		"                        every QEMU is killed when the node must stop its I/O,\n"
		"                        and none starts while the lease is not valid\n"
		"  -f, --foreground      stay in the foreground and log to stderr\n"
		"  -h, --help            show this help\n"
		"  -V, --version         show the version\n");
}

/* Whether /dev/kvm is there and creates a VM. */
static bool kvm_works(char *why, size_t len)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, len, "/dev/kvm: %s", strerror(errno));
		return false;
	}
	int v = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (v != KVM_API_VERSION) {
		snprintf(why, len, "/dev/kvm: API version %d, not %d", v, KVM_API_VERSION);
		close(fd);
		return false;
	}
	int vmfd = ioctl(fd, KVM_CREATE_VM, 0);
	if (vmfd < 0) {
		snprintf(why, len, "/dev/kvm: cannot create a VM: %s", strerror(errno));
		close(fd);
		return false;
	}
	close(vmfd);
	close(fd);
	return true;
}

/* path when it has a '/', else the first executable of that name in PATH. */
static const char *find_program(const char *name)
{
	static char path[4200];
	if (strchr(name, '/'))
		return access(name, X_OK) == 0 ? name : NULL;
	const char *env = getenv("PATH");
	char *dirs = strdup(env ? env : "/usr/local/bin:/usr/bin:/bin");
	if (!dirs)
		return NULL;
	for (char *save = NULL, *dir = strtok_r(dirs, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		if (access(path, X_OK) == 0) {
			free(dirs);
			return path;
		}
	}
	free(dirs);
	return NULL;
}

static void on_tick(void *data)
{
	struct agent *a = data;
	vm_tick(a);
	if (!a->stopping)
		qb_loop_timer_add(a->loop, QB_LOOP_MED, (uint64_t)VMA_TICK_MS * QB_TIME_NS_IN_MSEC, a, on_tick, NULL);
}

static int32_t on_sigchld(int32_t sig, void *data)
{
	vm_reap(data);
	return 0;
}

static int32_t on_stop_signal(int32_t sig, void *data)
{
	struct agent *a = data;
	qb_log(LOG_NOTICE, "%s received: powering off this node's VMs, then exiting", strsignal(sig));
	a->stopping = true;
	qb_loop_stop(a->loop);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vm-dir", required_argument, NULL, 'd' },
		{ "address", required_argument, NULL, 'a' },
		{ "ipc-name", required_argument, NULL, 'i' },
		{ "run-dir", required_argument, NULL, 'r' },
		{ "qemu", required_argument, NULL, 'q' },
		{ "node-id", required_argument, NULL, 'n' },
		{ "quorumd", required_argument, NULL, 'Q' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct agent *a = &the_agent;
	bool foreground = false;
	const char *qemu = "qemu-system-x86_64";
	const char *quorumd = NULL;
	char err[512], why[256];
	int opt, ready_fd = -1, status = 1;
	struct stat st;

	a->address = "127.0.0.1";
	a->ipc_name = CSVV_IPC_DEFAULT_NAME;
	a->run_dir = "/run/csv-vmagent";
	a->node_id = 1;
	while ((opt = getopt_long(argc, argv, "d:a:i:r:q:n:Q:fhV", opts, NULL)) != -1) {
		switch (opt) {
		case 'd': a->vm_dir = optarg; break;
		case 'a':
			if (!optarg[0] || strlen(optarg) > 255 || strpbrk(optarg, ",/ []")) {
				fprintf(stderr, PROG ": --address '%s' is not an address\n", optarg);
				return 1;
			}
			a->address = optarg;
			break;
		case 'i': a->ipc_name = optarg; break;
		case 'r': a->run_dir = optarg; break;
		case 'q': qemu = optarg; break;
		case 'n': {
			char *end;
			errno = 0;
			unsigned long long n = strtoull(optarg, &end, 10);
			if (errno || *end || !optarg[0] || optarg[0] == '-' || n == 0 || n > UINT32_MAX) {
				fprintf(stderr, PROG ": --node-id '%s' is not a node id (1 to %u)\n", optarg, UINT32_MAX);
				return 1;
			}
			a->node_id = (uint32_t)n;
			break;
		}
		case 'Q':
			if (!optarg[0]) {
				fprintf(stderr, PROG ": --quorumd needs an IPC endpoint name\n");
				return 1;
			}
			quorumd = optarg;
			break;
		case 'f': foreground = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf(PROG " " PACKAGE_VERSION "\n"); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 1;
	}
	if (!a->vm_dir) {
		fprintf(stderr, PROG ": --vm-dir is required\n");
		usage(stderr);
		return 1;
	}
	if (stat(a->vm_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, PROG ": --vm-dir %s: %s\n", a->vm_dir, errno ? strerror(errno) : "not a directory");
		return 1;
	}
	/* QEMU's -qmp takes options after a comma. */
	if (strchr(a->run_dir, ',') || strchr(a->vm_dir, ',')) {
		fprintf(stderr, PROG ": --run-dir and --vm-dir may not contain a comma\n");
		return 1;
	}
	/* RUN_DIR/NAME.qmp, with the longest NAME, must fit in a unix socket
	 * address. */
	const size_t sun_max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
	const size_t qmp_name_max = 1 + (VMDEF_NAME_MAX - 1) + strlen(".qmp");
	if (strlen(a->run_dir) + qmp_name_max > sun_max) {
		fprintf(stderr, PROG ": --run-dir %s is too long for the QMP sockets in it (at most %zu bytes)\n",
			a->run_dir, sun_max - qmp_name_max);
		return 1;
	}
	if (mkdir(a->run_dir, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, PROG ": --run-dir %s: %s\n", a->run_dir, strerror(errno));
		return 1;
	}
	if (stat(a->run_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, PROG ": --run-dir %s is not a directory\n", a->run_dir);
		return 1;
	}
	a->qemu = find_program(qemu);
	if (!a->qemu) {
		fprintf(stderr, PROG ": no QEMU to run: %s %s\n", qemu,
			strchr(qemu, '/') ? "is not executable" : "is not in PATH (give --qemu PATH)");
		return 1;
	}
	a->qemu = strdup(a->qemu);
	a->kvm = kvm_works(why, sizeof(why));
	a->have_cpu = cpu_info_read("/proc/cpuinfo", &a->cpu) == 0;
	if (cpu_probe(a->qemu, a->run_dir, a->kvm, &a->cpuq, a->cpuq_err, sizeof(a->cpuq_err)) < 0)
		a->cpuq.probed = false;

	if (!foreground)
		ready_fd = daemon_start(PROG);
	daemon_log_setup(PROG, foreground);
	signal(SIGPIPE, SIG_IGN);
	a->loop = qb_loop_create();
	if (!a->loop) {
		qb_log(LOG_ERR, "cannot create the event loop");
		goto out;
	}
	if (ipc_start(a, err, sizeof(err)) < 0) {
		qb_log(LOG_ERR, "refusing to start: %s", err);
		goto out;
	}
	if (quorumd && vm_lease_start(quorumd, err, sizeof(err)) < 0) {
		qb_log(LOG_ERR, "refusing to start: %s", err);
		goto out;
	}
	qb_loop_signal_add(a->loop, QB_LOOP_HIGH, SIGTERM, a, on_stop_signal, NULL);
	qb_loop_signal_add(a->loop, QB_LOOP_HIGH, SIGINT, a, on_stop_signal, NULL);
	qb_loop_signal_add(a->loop, QB_LOOP_HIGH, SIGCHLD, a, on_sigchld, NULL);
	qb_loop_timer_add(a->loop, QB_LOOP_MED, (uint64_t)VMA_TICK_MS * QB_TIME_NS_IN_MSEC, a, on_tick, NULL);
	qb_log(LOG_NOTICE, "started as node %u: VMs of %s, run directory %s, QEMU %s; incoming migrations on %s; "
	       "IPC endpoint '%s'; lease %s%s", a->node_id, a->vm_dir, a->run_dir, a->qemu, a->address, a->ipc_name,
	       quorumd ? "of csv-quorumd " : "not held (no --quorumd)", quorumd ? quorumd : "");
	if (!a->have_cpu)
		qb_log(LOG_WARNING, "/proc/cpuinfo gives no CPU flags: LIST shows no cpu, and cpu_compat is refused");
	if (!a->cpuq.probed)
		qb_log(LOG_WARNING, "cannot ask QEMU for its CPU models (%s): VMs with cpu_compat cannot start with "
		       "cpu_features here", a->cpuq_err);
	if (a->kvm)
		qb_log(LOG_NOTICE, "accelerator: KVM (-accel kvm)");
	else
		qb_log(LOG_NOTICE, "accelerator: TCG (-accel tcg), since KVM does not work here (%s): the VMs' CPUs "
		       "are emulated, much slower than under KVM", why);
	if (ready_fd >= 0) {
		daemon_ready(ready_fd);
		ready_fd = -1;
	}
	qb_loop_run(a->loop);

	vm_stop_all(a);
	status = 0;
out:
	vm_lease_stop();
	ipc_stop(a);
	if (a->loop)
		qb_loop_destroy(a->loop);
	for (unsigned i = 0; i < a->nvms; i++)
		free(a->vms[i]);
	free(a->vms);
	free((void *)a->qemu);
	qb_log_fini();
	return status;
}
