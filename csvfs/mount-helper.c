/* SPDX-License-Identifier: GPL-2.0-or-later */
/* mount.csvfs: the mount(8) helper of csvfs volumes, so that
 * `mount -t csvfs` and /etc/fstab lines of type csvfs work. mount(8) runs it
 * as
 *   mount.csvfs SPEC DIR [-sfnvrw] [-o OPTIONS]
 * It drops the options that belong to mount(8) and fstab, runs the csvfs
 * client (which daemonizes once the volume is mounted) and exits 0 only
 * when DIR is a fuse.csvfs mount point. Exit status as mount(8): 1 bad
 * usage, 2 system error, 32 mount failure. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "util.h"

#define EXIT_USAGE 1
#define EXIT_SYSERR 2
#define EXIT_MOUNT_FAILED 32

#define FUSE_TYPE "fuse.csvfs"

static const char *prog = "mount.csvfs";

struct helper_options {
	FILE *kept;          /* the -o list handed to csvfs, built up */
	char *kept_buf;
	size_t kept_len;
	bool ro;             /* ro or rw in the -o lists, the last one */
	int flag_ro;         /* -r: 1, -w: 0, neither: -1 */
	bool fake;
	bool verbose;
	bool has_coordinator;
	bool has_rmd;        /* rmd or rmd=NAME */
	bool has_volume;
	bool has_keyfile;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s SPEC DIR [-sfnvrw] [-o OPTIONS]\n"
		"Mount the csvfs volume on SPEC (a block device, an image file or an NBD URI)\n"
		"at DIR: the helper that mount -t csvfs and /etc/fstab run.\n\n"
		"  -o OPTIONS    comma-separated mount options; coordinator=HOST:PORT (or\n"
		"                rmd[=NAME], to ask csv-rmd where the coordinator runs) and\n"
		"                keyfile=FILE are needed; node=N, volume=NAME and FUSE\n"
		"                options are passed to csvfs, options of mount(8) and fstab\n"
		"                are dropped\n"
		"  -r            mount read-only (wins over -o rw)\n"
		"  -w            mount read-write, the default (wins over -o ro)\n"
		"  -f            fake: check the arguments, mount nothing\n"
		"  -v            print the csvfs command that is run\n"
		"  -n, -s        accepted (no mtab is written; unknown options are errors\n"
		"                of csvfs)\n"
		"  -h, --help    show this help\n"
		"  -V, --version show the version\n\n"
		"Exit status (as mount(8)): 0 mounted, 1 bad usage, 2 system error,\n"
		"32 mount failure.\n", prog);
}

/* The options of mount(8) and fstab that mean nothing to FUSE: with no
 * value, or with any value for the ones ending in '='. */
static bool option_is_mount_only(const char *opt, size_t len)
{
	static const char *const names[] = {
		"defaults", "auto", "noauto", "_netdev", "nofail", "user", "users", "owner", "group",
	};
	static const char *const prefixes[] = {
		"comment=", "x-", "X-", "user=",
		"subtype=", /* set by this helper */
	};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strlen(names[i]) == len && memcmp(opt, names[i], len) == 0)
			return true;
	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++) {
		size_t n = strlen(prefixes[i]);
		if (len >= n && memcmp(opt, prefixes[i], n) == 0)
			return true;
	}
	return false;
}

static bool option_is(const char *opt, size_t len, const char *name)
{
	return strlen(name) == len && memcmp(opt, name, len) == 0;
}

/* True when opt is NAME=VALUE with a value that is not empty. */
static bool option_has_value(const char *opt, size_t len, const char *name_eq)
{
	size_t n = strlen(name_eq);
	return len > n && memcmp(opt, name_eq, n) == 0;
}

/* Sorts one option of the list: dropped, ro/rw, or kept for csvfs. */
static void option_add(struct helper_options *h, const char *opt, size_t len)
{
	if (len == 0 || option_is_mount_only(opt, len))
		return;
	if (option_is(opt, len, "ro")) {
		h->ro = true;
		return;
	}
	if (option_is(opt, len, "rw")) {
		h->ro = false;
		return;
	}
	if (option_has_value(opt, len, "coordinator="))
		h->has_coordinator = true;
	if (option_is(opt, len, "rmd") || option_has_value(opt, len, "rmd="))
		h->has_rmd = true;
	if (option_has_value(opt, len, "volume="))
		h->has_volume = true;
	if (option_has_value(opt, len, "keyfile="))
		h->has_keyfile = true;
	fprintf(h->kept, ",%.*s", (int)len, opt);
}

/* Splits a comma-separated list as mount(8) does: a comma inside double
 * quotes or after a backslash does not end an option. */
static void options_add_list(struct helper_options *h, const char *list)
{
	const char *start = list;
	bool quoted = false;

	for (const char *p = list;; p++) {
		if (*p == '\\' && p[1]) {
			p++;
			continue;
		}
		if (*p == '"')
			quoted = !quoted;
		if (*p == '\0' || (*p == ',' && !quoted)) {
			option_add(h, start, (size_t)(p - start));
			if (*p == '\0')
				break;
			start = p + 1;
		}
	}
}

/* The csvfs client next to this binary, or NULL to look it up in PATH. */
static char *client_path(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return NULL;
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (!slash)
		return NULL;
	char *path;
	if (asprintf(&path, "%.*s/csvfs", (int)(slash - self), self) < 0)
		return NULL;
	if (access(path, X_OK) != 0) {
		free(path);
		return NULL;
	}
	return path;
}

/* Prints an argument so that a shell reads it back unchanged. */
static void print_quoted(FILE *f, const char *s)
{
	if (*s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
			    "_-+=.,:/@%") == strlen(s)) {
		fputs(s, f);
		return;
	}
	fputc('\'', f);
	for (; *s; s++) {
		if (*s == '\'')
			fputs("'\\''", f);
		else
			fputc(*s, f);
	}
	fputc('\'', f);
}

/* Decodes the \NNN octal escapes of a /proc/self/mountinfo field in place. */
static void unescape_octal(char *s)
{
	char *out = s;
	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' &&
		    s[3] <= '7') {
			*out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 4;
		} else {
			*out++ = *s++;
		}
	}
	*out = '\0';
}

struct mount_ids {
	int *ids;
	size_t n;
};

static bool mount_ids_contain(const struct mount_ids *m, int id)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->ids[i] == id)
			return true;
	return false;
}

/* Reads the mounts at dir from /proc/self/mountinfo. Fills ret_ids (when
 * given) with the ids of all of them, and returns 1 when one of type
 * fuse.csvfs is not in known (when given), 0 when none is, or a negative
 * errno. */
static int mountinfo_scan(const char *dir, const struct mount_ids *known, struct mount_ids *ret_ids)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	struct mount_ids ids = { 0 };
	char *line = NULL;
	size_t cap = 0;
	int found = 0, r = 0;

	if (!f)
		return negative_errno();
	while (getline(&line, &cap, f) > 0) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER */
		char *save = NULL, *field[5] = { 0 };
		char *tok = strtok_r(line, " \n", &save);
		for (int i = 0; tok && i < 5; i++) {
			field[i] = tok;
			tok = i < 4 ? strtok_r(NULL, " \n", &save) : NULL;
		}
		if (!field[4])
			continue;
		unescape_octal(field[4]);
		if (strcmp(field[4], dir) != 0)
			continue;
		const char *fstype = NULL;
		while ((tok = strtok_r(NULL, " \n", &save))) {
			if (strcmp(tok, "-") == 0) {
				fstype = strtok_r(NULL, " \n", &save);
				break;
			}
		}
		int id = atoi(field[0]);
		if (fstype && strcmp(fstype, FUSE_TYPE) == 0 && !(known && mount_ids_contain(known, id)))
			found = 1;
		if (ret_ids) {
			int *n = realloc(ids.ids, (ids.n + 1) * sizeof(*ids.ids));
			if (!n) {
				r = -ENOMEM;
				break;
			}
			ids.ids = n;
			ids.ids[ids.n++] = id;
		}
	}
	free(line);
	fclose(f);
	if (r < 0) {
		free(ids.ids);
		return r;
	}
	if (ret_ids)
		*ret_ids = ids;
	return found;
}

/* Runs argv (path, or csvfs from PATH when path is NULL) and returns its
 * wait status, or a negative errno when it could not be started. */
static int run_client(const char *path, char **argv, int *ret_status)
{
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0)
		return negative_errno();
	if (pid == 0) {
		if (path)
			execv(path, argv);
		else
			execvp(argv[0], argv);
		fprintf(stderr, "%s: cannot run %s: %s\n", prog, path ? path : argv[0], strerror(errno));
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return negative_errno();
	}
	*ret_status = status;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct helper_options h = { .flag_ro = -1 };
	struct mount_ids before = { 0 };
	_cleanup_free_ char *dir = NULL;
	_cleanup_free_ char *client = NULL;
	char *opts = NULL;
	int ret = EXIT_USAGE, c, r, status;

	h.kept = open_memstream(&h.kept_buf, &h.kept_len);
	if (!h.kept) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return EXIT_SYSERR;
	}
	fputs("subtype=csvfs", h.kept);

	while ((c = getopt_long(argc, argv, "sfnvrwo:t:N:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 's': case 'n': break;
		case 'f': h.fake = true; break;
		case 'v': h.verbose = true; break;
		case 'r': h.flag_ro = 1; break;
		case 'w': h.flag_ro = 0; break;
		case 'o': options_add_list(&h, optarg); break;
		case 't':
			if (strcmp(optarg, "csvfs") != 0 && strcmp(optarg, FUSE_TYPE) != 0) {
				fprintf(stderr, "%s: type %s is not csvfs\n", prog, optarg);
				goto out;
			}
			break;
		case 'N':
			fprintf(stderr, "%s: -N (mounting in another mount namespace) is not supported\n", prog);
			goto out;
		case 'h': usage(stdout); ret = 0; goto out;
		case 'V': printf("%s (%s) %s\n", prog, PACKAGE_NAME, PACKAGE_VERSION); ret = 0; goto out;
		default: usage(stderr); goto out;
		}
	}
	/* -r and -w, given on purpose, win over ro and rw in the options. */
	if (h.flag_ro >= 0 ? h.flag_ro : h.ro)
		fputs(",ro", h.kept);
	if (fflush(h.kept) != 0) {
		fprintf(stderr, "%s: out of memory\n", prog);
		ret = EXIT_SYSERR;
		goto out;
	}
	opts = h.kept_buf;

	if (argc - optind != 2 || !*argv[optind] || !*argv[optind + 1]) {
		fprintf(stderr, "%s: expected a SPEC and a mount point DIR, got %d argument(s) (see --help)\n", prog,
			argc - optind);
		goto out;
	}
	const char *spec = argv[optind];
	const char *dir_arg = argv[optind + 1];
	if (h.has_coordinator && h.has_rmd) {
		fprintf(stderr, "%s: %s: the options coordinator=HOST:PORT and rmd exclude each other (a coordinator "
				"at a fixed address, or csv-rmd says where it runs)\n", prog, spec);
		goto out;
	}
	if (!h.has_coordinator && !h.has_rmd) {
		fprintf(stderr, "%s: %s: the option coordinator=HOST:PORT or rmd[=NAME] is missing (where the "
				"coordinator of the volume is, or the csv-rmd to ask)\n", prog, spec);
		goto out;
	}
	if (h.has_volume && !h.has_rmd) {
		fprintf(stderr, "%s: %s: the option volume=NAME needs rmd (it names the volume in csv-rmd)\n", prog,
			spec);
		goto out;
	}
	if (!h.has_keyfile) {
		fprintf(stderr, "%s: %s: the option keyfile=FILE is missing (the cluster key file)\n", prog, spec);
		goto out;
	}
	dir = realpath(dir_arg, NULL);
	struct stat st;
	if (!dir || stat(dir, &st) < 0) {
		if (errno == ENOENT)
			fprintf(stderr, "%s: mount point %s does not exist\n", prog, dir_arg);
		else
			fprintf(stderr, "%s: mount point %s: %s\n", prog, dir_arg, strerror(errno));
		goto out;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "%s: mount point %s is not a directory\n", prog, dir_arg);
		goto out;
	}

	client = client_path();
	char *cargv[] = { client ? client : (char *)"csvfs", (char *)spec, dir, (char *)"-o", opts, NULL };
	if (h.verbose) {
		printf("%s:", prog);
		for (char **a = cargv; *a; a++) {
			putchar(' ');
			print_quoted(stdout, *a);
		}
		putchar('\n');
	}
	if (h.fake) {
		ret = 0;
		goto out;
	}

	r = mountinfo_scan(dir, NULL, &before);
	if (r < 0) {
		fprintf(stderr, "%s: cannot read /proc/self/mountinfo: %s\n", prog, strerror(-r));
		ret = EXIT_SYSERR;
		goto out;
	}
	r = run_client(client, cargv, &status);
	if (r < 0) {
		fprintf(stderr, "%s: cannot start %s: %s\n", prog, cargv[0], strerror(-r));
		ret = EXIT_SYSERR;
		goto out;
	}
	ret = EXIT_MOUNT_FAILED;
	if (WIFSIGNALED(status)) {
		fprintf(stderr, "%s: %s was killed by signal %d (%s): %s is not mounted on %s\n", prog, cargv[0],
			WTERMSIG(status), strsignal(WTERMSIG(status)), spec, dir);
		goto out;
	}
	if (WEXITSTATUS(status) == 127) {
		ret = EXIT_SYSERR; /* exec failed: the child said why */
		goto out;
	}
	if (WEXITSTATUS(status) != 0) {
		fprintf(stderr, "%s: csvfs failed (exit status %d): %s is not mounted on %s\n", prog,
			WEXITSTATUS(status), spec, dir);
		goto out;
	}
	r = mountinfo_scan(dir, &before, NULL);
	if (r < 0) {
		fprintf(stderr, "%s: cannot read /proc/self/mountinfo: %s\n", prog, strerror(-r));
		ret = EXIT_SYSERR;
		goto out;
	}
	if (r == 0) {
		fprintf(stderr, "%s: csvfs exited 0 but %s is not a " FUSE_TYPE " mount point\n", prog, dir);
		goto out;
	}
	ret = 0;
out:
	fclose(h.kept);
	free(h.kept_buf);
	free(before.ids);
	return ret;
}
