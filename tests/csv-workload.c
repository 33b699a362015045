/* SPDX-License-Identifier: GPL-2.0-or-later */
/* csv-workload: a workload generator and checker for one filesystem mounted
 * on several nodes at once. It uses POSIX calls on mount points only and
 * knows nothing of csvfs itself.
 *   csv-workload random --seed S --ops N --workers W [--trace] MOUNT1 [MOUNT2 ...]
 *   csv-workload append --dir DIR --records N --size BYTES [--fsync-every K] --id NAME
 *   csv-workload verify --dir DIR --id NAME --acked SEQ */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "config.h"

#define PROG "csv-workload"

/* Exit statuses: 0 all checks passed, 1 a check failed or an operation
 * failed, 2 usage error. */
#define EXIT_CHECK 1
#define EXIT_USAGE 2

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: " PROG " random --seed S --ops N --workers W [--trace] MOUNT1 [MOUNT2 ...]\n"
		"       " PROG " append --dir DIR --records N --size BYTES [--fsync-every K]\n"
		"                          [--retry-seconds T] --id NAME\n"
		"       " PROG " verify --dir DIR --id NAME --acked SEQ\n"
		"       " PROG " --help | --version\n"
		"\n"
		"Generate a workload on mounts of one filesystem and check every result.\n"
		"\n"
		"random: W threads, each in its own directory wl-<i>, apply N operations\n"
		"  in all through mounts picked at random and compare every result with an\n"
		"  in-memory model; the trees are compared through every mount at the end.\n"
		"  -s, --seed S            the seed (the run is deterministic from it)\n"
		"  -n, --ops N             operations in all (default 1000)\n"
		"  -w, --workers W         threads (default 1)\n"
		"  -T, --trace             print each operation before it runs\n"
		"\n"
		"append: append numbered, checksummed records to DIR/NAME.log; after each\n"
		"  fsync print 'acked SEQ TIME' (TIME: seconds since the epoch, in ms).\n"
		"  -d, --dir DIR           the directory of the log\n"
		"  -i, --id NAME           the writer's name (the log is NAME.log)\n"
		"  -r, --records N         records to write\n"
		"  -S, --size BYTES        payload bytes per record (suffix K or M allowed)\n"
		"  -k, --fsync-every K     fsync every K records (default 1)\n"
		"  -t, --retry-seconds T   retry on EIO or ENOTCONN for T seconds (default 0)\n"
		"\n"
		"verify: check that DIR/NAME.log holds records 0 to SEQ intact and in order.\n"
		"  -d, --dir DIR  -i, --id NAME  -a, --acked SEQ (-1: none acknowledged)\n"
		"\n"
		"  -h, --help              show this help\n"
		"  -V, --version           show the version\n");
}

static int usage_error(const char *fmt, ...)
{
	va_list ap;
	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see --help)\n", stderr);
	return EXIT_USAGE;
}

/* Parses a decimal number with an optional K, M or G suffix (with_suffix). */
static int parse_u64(const char *s, bool with_suffix, uint64_t *ret)
{
	char *end;
	if (!s || !*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	unsigned shift = 0;
	if (with_suffix && *end) {
		switch (*end) {
		case 'K': case 'k': shift = 10; break;
		case 'M': case 'm': shift = 20; break;
		case 'G': case 'g': shift = 30; break;
		default: return -EINVAL;
		}
		end++;
	}
	if (*end)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*ret = (uint64_t)v << shift;
	return 0;
}

/* ---- generators and checksums --------------------------------------------- */

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void fill_random(uint64_t *s, unsigned char *p, size_t n)
{
	while (n) {
		uint64_t v = splitmix64(s);
		size_t k = n < 8 ? n : 8;
		for (size_t i = 0; i < k; i++)
			p[i] = (unsigned char)(v >> (8 * i));
		p += k;
		n -= k;
	}
}

static uint32_t crc_table[256];

static void crc_table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

/* CRC-32 (IEEE 802.3, reflected, polynomial 0xedb88320), as zlib's crc32(). */
static uint32_t crc32_ieee(const void *data, size_t len)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, crc_table_init);
	const unsigned char *p = data;
	uint32_t c = 0xffffffffu;
	while (len--)
		c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffffu;
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h;
}

/* ===========================================================================
 * random: workers with an in-memory model of their trees
 * ======================================================================== */

#define MAX_FILE_SIZE (1u << 20)  /* bytes: writes and truncates stay below */
#define MAX_ENTRIES 120           /* names in one worker's tree */
#define MAX_LINKS 6               /* names of one file */
#define XA_NAMES 6                /* user.k0 .. user.k5 */
#define XA_VALUE_MAX 48
#define MAX_DEPTH 12              /* directories below a worker's root */

enum { T_REG, T_DIR, T_LNK };

struct mnode;

struct ment {
	char *name;
	struct mnode *node;
};

struct mnode {
	int type;
	mode_t mode;        /* permission bits only */
	unsigned nlink;     /* names of a file; 2 + subdirectories of a directory */
	unsigned refs;      /* entries that point here */
	unsigned char *data; /* T_REG */
	size_t size, cap;
	char *target;       /* T_LNK */
	bool xa_set[XA_NAMES];
	unsigned char xa_val[XA_NAMES][XA_VALUE_MAX];
	size_t xa_len[XA_NAMES];
	struct ment *ents;  /* T_DIR */
	size_t nents, capents;
	struct mnode *parent; /* T_DIR: the directory that holds it */
};

/* A name in the tree: entry idx of directory dir. */
struct ref {
	struct mnode *dir;
	size_t idx;
};

struct refs {
	struct ref *v;
	size_t n, cap;
};

struct worker {
	int id;
	uint64_t rng;
	uint64_t nops;     /* operations this worker runs */
	uint64_t op;       /* the current one, from 1 */
	struct mnode *root;
	char rootname[32];
	unsigned next_name;
	bool failed;
	/* What the current operation is, for a mismatch report. */
	const char *opname;
	int mount;
	char path[PATH_MAX];
	char path2[PATH_MAX];
	unsigned char *buf, *buf2;
	struct refs refs;
	pthread_t thread;
};

static struct {
	uint64_t seed, ops;
	unsigned workers;
	bool trace;
	char **mounts;
	int nmounts;
	atomic_bool stop;
	atomic_uint_fast64_t done;
	pthread_mutex_t out_lock;
	pthread_barrier_t barrier;
} R = { .out_lock = PTHREAD_MUTEX_INITIALIZER };

#define BUF_SIZE (MAX_FILE_SIZE + 65536)

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, PROG ": out of memory\n");
		exit(EXIT_CHECK);
	}
	return p;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		fprintf(stderr, PROG ": out of memory\n");
		exit(EXIT_CHECK);
	}
	return p;
}

static char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p) {
		fprintf(stderr, PROG ": out of memory\n");
		exit(EXIT_CHECK);
	}
	return p;
}

static uint64_t rnd(struct worker *w, uint64_t n)
{
	return n ? splitmix64(&w->rng) % n : 0;
}

/* True with probability pct percent. */
static bool chance(struct worker *w, unsigned pct)
{
	return rnd(w, 100) < pct;
}

/* Reports the first mismatch of a worker and stops every worker. */
static void mismatch(struct worker *w, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&R.out_lock);
	fflush(stdout);
	fprintf(stderr,
		PROG ": MISMATCH seed %" PRIu64 " worker %d op %" PRIu64 " (%s) mount %s\n"
		"  path: %s%s%s\n"
		"  %s\n",
		R.seed, w->id, w->op, w->opname ? w->opname : "-",
		w->mount >= 0 ? R.mounts[w->mount] : "-", w->path, w->path2[0] ? " -> " : "", w->path2, msg);
	fflush(stderr);
	pthread_mutex_unlock(&R.out_lock);
	w->failed = true;
	atomic_store(&R.stop, true);
}

/* With --trace, prints the operation about to run: its paths and what
 * fmt adds. */
static void trace(struct worker *w, const char *fmt, ...)
{
	if (!R.trace)
		return;
	char msg[256] = "";
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&R.out_lock);
	printf("trace: worker %d op %" PRIu64 " %s mount %d %s%s%s%s%s\n", w->id, w->op, w->opname, w->mount + 1,
	       w->path, w->path2[0] ? " -> " : "", w->path2, msg[0] ? ": " : "", msg);
	pthread_mutex_unlock(&R.out_lock);
}

/* A failed call where success was expected. */
static int fail_errno(struct worker *w, const char *call, int e)
{
	mismatch(w, "%s: expected success, got %s (errno %d)", call, strerror(e), e);
	return -1;
}

/* Checks the outcome of call (r < 0 with errno e is a failure) against the
 * expected errno want (0: success); want2 is an alternative errno or 0. */
static int expect_result(struct worker *w, const char *call, int r, int e, int want, int want2)
{
	if (r >= 0 && want == 0)
		return 0;
	if (r < 0 && want != 0 && (e == want || (want2 && e == want2)))
		return 0;
	if (r >= 0)
		mismatch(w, "%s: expected %s%s%s, got success", call, strerror(want), want2 ? " or " : "",
			 want2 ? strerror(want2) : "");
	else if (want == 0)
		mismatch(w, "%s: expected success, got %s (errno %d)", call, strerror(e), e);
	else
		mismatch(w, "%s: expected %s, got %s (errno %d)", call, strerror(want), strerror(e), e);
	return -1;
}

/* ---- the model -------------------------------------------------------------- */

static struct mnode *node_new(int type, mode_t mode)
{
	struct mnode *n = xmalloc(sizeof(*n));
	memset(n, 0, sizeof(*n));
	n->type = type;
	n->mode = mode & 07777;
	n->nlink = type == T_DIR ? 2 : 0;
	if (type == T_REG) {
		n->cap = 4096;
		n->data = xmalloc(n->cap);
	}
	return n;
}

static void node_free(struct mnode *n)
{
	free(n->data);
	free(n->target);
	for (size_t i = 0; i < n->nents; i++)
		free(n->ents[i].name);
	free(n->ents);
	free(n);
}

static ssize_t dir_find(const struct mnode *d, const char *name)
{
	for (size_t i = 0; i < d->nents; i++)
		if (strcmp(d->ents[i].name, name) == 0)
			return (ssize_t)i;
	return -1;
}

/* Adds name for n in directory d, with the link counts that follow. */
static void dir_add(struct mnode *d, const char *name, struct mnode *n)
{
	if (d->nents == d->capents) {
		d->capents = d->capents ? 2 * d->capents : 8;
		d->ents = xrealloc(d->ents, d->capents * sizeof(*d->ents));
	}
	d->ents[d->nents++] = (struct ment){ .name = xstrdup(name), .node = n };
	n->refs++;
	if (n->type == T_DIR) {
		n->parent = d;
		d->nlink++;
	} else {
		n->nlink++;
	}
}

/* Removes entry idx of d; frees the node when no name is left. */
static void dir_del(struct mnode *d, size_t idx)
{
	struct mnode *n = d->ents[idx].node;
	free(d->ents[idx].name);
	d->ents[idx] = d->ents[--d->nents];
	if (n->type == T_DIR)
		d->nlink--;
	else
		n->nlink--;
	if (--n->refs == 0)
		node_free(n);
}

/* Frees a whole tree: the directory d and everything it holds. */
static void tree_free(struct mnode *d)
{
	while (d->nents) {
		struct mnode *n = d->ents[d->nents - 1].node;
		if (n->type == T_DIR && n->refs == 1) {
			tree_free(n);
			free(d->ents[--d->nents].name);
			continue;
		}
		dir_del(d, d->nents - 1);
	}
	node_free(d);
}

/* The path of directory d relative to the mount. */
static void dir_path(struct worker *w, const struct mnode *d, char *buf, size_t size)
{
	if (!d->parent) {
		snprintf(buf, size, "%s", w->rootname);
		return;
	}
	dir_path(w, d->parent, buf, size);
	size_t l = strlen(buf);
	for (size_t i = 0; i < d->parent->nents; i++)
		if (d->parent->ents[i].node == d) {
			snprintf(buf + l, size - l, "/%s", d->parent->ents[i].name);
			return;
		}
	snprintf(buf + l, size - l, "/?");
}

/* The full path through mount m of name in directory d. */
static void full_path(struct worker *w, int m, const struct mnode *d, const char *name, char *buf, size_t size)
{
	char rel[PATH_MAX];
	dir_path(w, d, rel, sizeof(rel));
	int l = name ? snprintf(buf, size, "%s/%s/%s", R.mounts[m], rel, name)
		     : snprintf(buf, size, "%s/%s", R.mounts[m], rel);
	/* MAX_DEPTH keeps paths short: a longer one is a bug here. */
	if (l < 0 || (size_t)l >= size) {
		fprintf(stderr, PROG ": a path under %s is too long\n", rel);
		abort();
	}
}

/* Directories above d up to the worker's root. */
static unsigned depth(const struct mnode *d)
{
	unsigned k = 0;
	for (; d->parent; d = d->parent)
		k++;
	return k;
}

/* Levels of directories in the tree of directory d, d included. */
static unsigned height(const struct mnode *d)
{
	unsigned h = 0;
	for (size_t i = 0; i < d->nents; i++)
		if (d->ents[i].node->type == T_DIR) {
			unsigned k = height(d->ents[i].node);
			if (k > h)
				h = k;
		}
	return h + 1;
}

static void refs_add(struct refs *v, struct mnode *d, size_t idx)
{
	if (v->n == v->cap) {
		v->cap = v->cap ? 2 * v->cap : 64;
		v->v = xrealloc(v->v, v->cap * sizeof(*v->v));
	}
	v->v[v->n++] = (struct ref){ d, idx };
}

/* Every name under d, depth first. */
static void collect(struct refs *v, struct mnode *d)
{
	for (size_t i = 0; i < d->nents; i++) {
		refs_add(v, d, i);
		if (d->ents[i].node->type == T_DIR)
			collect(v, d->ents[i].node);
	}
}

#define M_REG (1u << T_REG)
#define M_DIR (1u << T_DIR)
#define M_LNK (1u << T_LNK)
#define M_ANY (M_REG | M_DIR | M_LNK)

/* Picks a name whose node type is in mask: false when there is none. */
static bool pick_entry(struct worker *w, unsigned mask, struct ref *ret)
{
	struct refs *v = &w->refs;
	v->n = 0;
	collect(v, w->root);
	size_t k = 0;
	for (size_t i = 0; i < v->n; i++)
		if (mask & (1u << v->v[i].dir->ents[v->v[i].idx].node->type))
			v->v[k++] = v->v[i];
	if (k == 0)
		return false;
	*ret = v->v[rnd(w, k)];
	return true;
}

static size_t count_entries(struct worker *w)
{
	w->refs.n = 0;
	collect(&w->refs, w->root);
	return w->refs.n;
}

/* Picks a directory, the worker's root included. */
static struct mnode *pick_dir(struct worker *w)
{
	size_t n = 0;
	struct mnode *ret = w->root;
	w->refs.n = 0;
	collect(&w->refs, w->root);
	for (size_t i = 0; i < w->refs.n; i++)
		if (w->refs.v[i].dir->ents[w->refs.v[i].idx].node->type == T_DIR)
			n++;
	uint64_t k = rnd(w, n + 1);
	if (k == 0)
		return ret;
	for (size_t i = 0; i < w->refs.n; i++) {
		struct mnode *c = w->refs.v[i].dir->ents[w->refs.v[i].idx].node;
		if (c->type == T_DIR && --k == 0)
			return c;
	}
	return ret;
}

static struct mnode *ref_node(const struct ref *r)
{
	return r->dir->ents[r->idx].node;
}

static const char *ref_name(const struct ref *r)
{
	return r->dir->ents[r->idx].name;
}

/* A name that the worker never used: prefix and a counter. */
static void new_name(struct worker *w, char prefix, char *buf, size_t size)
{
	/* Now and then a long one. */
	if (chance(w, 5))
		snprintf(buf, size, "%c%u-%s", prefix, w->next_name++,
			 "a-rather-long-name-to-test-longer-directory-entries-in-the-index-zzzzzzzzzzzz");
	else
		snprintf(buf, size, "%c%u", prefix, w->next_name++);
}

/* Whether directory a is d or lies under it. */
static bool is_under(const struct mnode *a, const struct mnode *d)
{
	for (; a; a = a->parent)
		if (a == d)
			return true;
	return false;
}

static void op_begin(struct worker *w, const char *name, int mount)
{
	w->opname = name;
	w->mount = mount;
	w->path[0] = '\0';
	w->path2[0] = '\0';
}

static int pick_mount(struct worker *w)
{
	return (int)rnd(w, (uint64_t)R.nmounts);
}

/* ---- helpers over file descriptors -------------------------------------- */

/* Writes all of buf at off (or at the file position when off < 0). */
static int write_full(struct worker *w, int fd, const unsigned char *buf, size_t len, off_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = off < 0 ? write(fd, buf + done, len - done)
				    : pwrite(fd, buf + done, len - done, off + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail_errno(w, off < 0 ? "write" : "pwrite", errno);
		if (n == 0) {
			mismatch(w, "write of %zu bytes at %lld: wrote %zu, then 0", len, (long long)off, done);
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

/* Reads up to len bytes at off; *got is what was read before end of file. */
static int read_full(struct worker *w, int fd, unsigned char *buf, size_t len, off_t off, size_t *got)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, buf + done, len - done, off + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail_errno(w, "pread", errno);
		if (n == 0)
			break;
		done += (size_t)n;
	}
	*got = done;
	return 0;
}

static int close_checked(struct worker *w, int fd)
{
	if (close(fd) < 0)
		return fail_errno(w, "close", errno);
	return 0;
}

/* Compares got with the model's bytes at off. */
static int compare_data(struct worker *w, const char *what, const unsigned char *want, size_t wantlen,
			const unsigned char *got, size_t gotlen, uint64_t off)
{
	if (gotlen != wantlen) {
		mismatch(w, "%s at offset %" PRIu64 ": expected %zu bytes, got %zu", what, off, wantlen, gotlen);
		return -1;
	}
	if (memcmp(want, got, wantlen) == 0)
		return 0;
	size_t i = 0;
	while (want[i] == got[i])
		i++;
	size_t j = wantlen;
	while (want[j - 1] == got[j - 1])
		j--;
	mismatch(w, "%s: bytes differ from offset %" PRIu64 " to %" PRIu64 " (the first: expected 0x%02x, got 0x%02x)",
		 what, off + i, off + j - 1, want[i], got[i]);
	return -1;
}

static void model_write(struct mnode *n, const unsigned char *data, size_t len, size_t off)
{
	size_t end = off + len;
	if (end > n->cap) {
		n->cap = end + 4096;
		n->data = xrealloc(n->data, n->cap);
	}
	if (off > n->size)
		memset(n->data + n->size, 0, off - n->size);
	memcpy(n->data + off, data, len);
	if (end > n->size)
		n->size = end;
}

static void model_truncate(struct mnode *n, size_t size)
{
	if (size > n->cap) {
		n->cap = size + 4096;
		n->data = xrealloc(n->data, n->cap);
	}
	if (size > n->size)
		memset(n->data + n->size, 0, size - n->size);
	n->size = size;
}

/* A length for a write: mostly small, sometimes large. */
static size_t write_len(struct worker *w)
{
	uint64_t k = rnd(w, 100);
	if (k < 70)
		return 1 + rnd(w, 8192);
	if (k < 95)
		return 1 + rnd(w, 65536);
	return 1 + rnd(w, 300000);
}

/* ---- the operations ------------------------------------------------------- */
/* Each returns 0 when the result matched the model, -1 on a mismatch (after
 * reporting it), 1 when it does not apply to the tree as it is. */

static int op_create(struct worker *w)
{
	static const mode_t modes[] = { 0644, 0600, 0640, 0755, 0664 };
	int m = pick_mount(w);
	struct mnode *d = pick_dir(w);
	char name[NAME_MAX + 1];
	op_begin(w, "create", m);

	/* O_EXCL over an existing name of any type. */
	if (d->nents && chance(w, 10)) {
		const char *old = d->ents[rnd(w, d->nents)].name;
		full_path(w, m, d, old, w->path, sizeof(w->path));
		trace(w, "O_EXCL over an existing name");
		int fd = open(w->path, O_CREAT | O_EXCL | O_WRONLY, 0644);
		if (fd >= 0)
			close(fd);
		return expect_result(w, "open(O_CREAT|O_EXCL) of an existing name", fd, errno, EEXIST, 0);
	}
	new_name(w, 'f', name, sizeof(name));
	mode_t mode = modes[rnd(w, sizeof(modes) / sizeof(modes[0]))];
	full_path(w, m, d, name, w->path, sizeof(w->path));
	trace(w, "mode 0%o", (unsigned)mode);
	int fd = open(w->path, O_CREAT | O_EXCL | O_WRONLY, mode);
	if (fd < 0)
		return fail_errno(w, "open(O_CREAT|O_EXCL)", errno);
	struct mnode *n = node_new(T_REG, mode);
	dir_add(d, name, n);
	if (chance(w, 50)) {
		size_t len = rnd(w, 8192);
		trace(w, "write %zu bytes", len);
		fill_random(&w->rng, w->buf, len);
		if (write_full(w, fd, w->buf, len, -1) < 0) {
			close(fd);
			return -1;
		}
		model_write(n, w->buf, len, 0);
	}
	return close_checked(w, fd);
}

static int op_write(struct worker *w)
{
	struct ref r;
	if (!pick_entry(w, M_REG, &r))
		return 1;
	struct mnode *n = ref_node(&r);
	int m = pick_mount(w);
	op_begin(w, "write", m);
	full_path(w, m, r.dir, ref_name(&r), w->path, sizeof(w->path));
	size_t off = rnd(w, n->size + 100000);
	size_t len = write_len(w);
	if (off >= MAX_FILE_SIZE)
		off = rnd(w, MAX_FILE_SIZE / 2);
	if (off + len > MAX_FILE_SIZE)
		len = MAX_FILE_SIZE - off;
	fill_random(&w->rng, w->buf, len);
	trace(w, "offset %zu length %zu, size %zu", off, len, n->size);
	int fd = open(w->path, chance(w, 50) ? O_WRONLY : O_RDWR);
	if (fd < 0)
		return fail_errno(w, "open", errno);
	if (write_full(w, fd, w->buf, len, (off_t)off) < 0) {
		close(fd);
		return -1;
	}
	model_write(n, w->buf, len, off);
	return close_checked(w, fd);
}

static int op_append(struct worker *w)
{
	struct ref r;
	if (!pick_entry(w, M_REG, &r))
		return 1;
	struct mnode *n = ref_node(&r);
	int m = pick_mount(w);
	op_begin(w, "append", m);
	full_path(w, m, r.dir, ref_name(&r), w->path, sizeof(w->path));
	size_t len = 1 + rnd(w, 20000);
	if (n->size >= MAX_FILE_SIZE)
		return 1;
	if (n->size + len > MAX_FILE_SIZE)
		len = MAX_FILE_SIZE - n->size;
	fill_random(&w->rng, w->buf, len);
	trace(w, "length %zu, size %zu", len, n->size);
	int fd = open(w->path, O_WRONLY | O_APPEND);
	if (fd < 0)
		return fail_errno(w, "open(O_APPEND)", errno);
	if (write_full(w, fd, w->buf, len, -1) < 0) {
		close(fd);
		return -1;
	}
	model_write(n, w->buf, len, n->size);
	/* The file position follows the end of the file. */
	off_t pos = lseek(fd, 0, SEEK_CUR);
	if (pos != (off_t)n->size) {
		mismatch(w, "the file position after an append: expected %zu, got %lld", n->size, (long long)pos);
		close(fd);
		return -1;
	}
	return close_checked(w, fd);
}

static int op_truncate(struct worker *w)
{
	struct ref r;
	if (!pick_entry(w, M_REG, &r))
		return 1;
	struct mnode *n = ref_node(&r);
	int m = pick_mount(w);
	op_begin(w, "truncate", m);
	full_path(w, m, r.dir, ref_name(&r), w->path, sizeof(w->path));
	size_t size = chance(w, 50) ? rnd(w, n->size + 1) : n->size + rnd(w, 200000);
	if (size > MAX_FILE_SIZE)
		size = MAX_FILE_SIZE;
	trace(w, "size %zu to %zu", n->size, size);
	if (chance(w, 50)) {
		if (truncate(w->path, (off_t)size) < 0)
			return fail_errno(w, "truncate", errno);
	} else {
		int fd = open(w->path, O_WRONLY);
		if (fd < 0)
			return fail_errno(w, "open", errno);
		if (ftruncate(fd, (off_t)size) < 0) {
			int e = errno;
			close(fd);
			return fail_errno(w, "ftruncate", e);
		}
		if (close_checked(w, fd) < 0)
			return -1;
	}
	model_truncate(n, size);
	return 0;
}

static int op_read(struct worker *w)
{
	struct ref r;
	if (!pick_entry(w, M_REG, &r))
		return 1;
	struct mnode *n = ref_node(&r);
	int m = pick_mount(w);
	op_begin(w, "read", m);
	full_path(w, m, r.dir, ref_name(&r), w->path, sizeof(w->path));
	size_t off = chance(w, 20) ? 0 : rnd(w, n->size + 10000);
	size_t len = chance(w, 10) ? n->size + 100 : 1 + rnd(w, 131072);
	if (len > BUF_SIZE)
		len = BUF_SIZE;
	trace(w, "offset %zu length %zu, size %zu", off, len, n->size);
	int fd = open(w->path, O_RDONLY);
	if (fd < 0)
		return fail_errno(w, "open", errno);
	size_t got;
	if (read_full(w, fd, w->buf, len, (off_t)off, &got) < 0) {
		close(fd);
		return -1;
	}
	size_t want = off >= n->size ? 0 : n->size - off < len ? n->size - off : len;
	if (compare_data(w, "pread", n->data + (off < n->size ? off : 0), want, w->buf, got, off) < 0) {
		close(fd);
		return -1;
	}
	return close_checked(w, fd);
}

static int op_rename(struct worker *w)
{
	struct ref s;
	if (!pick_entry(w, M_ANY, &s))
		return 1;
	struct mnode *sn = ref_node(&s);
	struct mnode *td = pick_dir(w);
	char sname[NAME_MAX + 1], tname[NAME_MAX + 1];
	snprintf(sname, sizeof(sname), "%s", ref_name(&s));
	int m = pick_mount(w);
	op_begin(w, "rename", m);
	if (sn->type == T_DIR && !is_under(td, sn) && depth(td) + height(sn) > MAX_DEPTH)
		return 1;

	/* The target: a new name, or one that exists in td. */
	ssize_t ti = -1;
	if (td->nents && chance(w, 40)) {
		ti = (ssize_t)rnd(w, td->nents);
		struct mnode *tn = td->ents[ti].node;
		/* Onto a directory that holds the source: ENOTEMPTY, skip it. */
		if (tn->type == T_DIR && is_under(s.dir, tn))
			ti = -1;
	}
	if (ti >= 0)
		snprintf(tname, sizeof(tname), "%s", td->ents[ti].name);
	else
		new_name(w, sn->type == T_DIR ? 'd' : sn->type == T_LNK ? 'l' : 'f', tname, sizeof(tname));
	full_path(w, m, s.dir, sname, w->path, sizeof(w->path));
	full_path(w, m, td, tname, w->path2, sizeof(w->path2));

	int want = 0, want2 = 0;
	struct mnode *tn = ti >= 0 ? td->ents[ti].node : NULL;
	if (sn->type == T_DIR && is_under(td, sn))
		want = EINVAL; /* into itself */
	else if (tn == sn)
		want = 0; /* two names of one file, or the same name */
	else if (tn && sn->type == T_DIR && tn->type != T_DIR)
		want = ENOTDIR;
	else if (tn && sn->type != T_DIR && tn->type == T_DIR)
		want = EISDIR;
	else if (tn && tn->type == T_DIR && tn->nents)
		want = ENOTEMPTY, want2 = EEXIST;

	trace(w, "expect %s", want ? strerror(want) : "success");
	int rc = rename(w->path, w->path2);
	if (expect_result(w, "rename", rc, errno, want, want2) < 0)
		return -1;
	if (want != 0 || tn == sn)
		return 0;
	/* The model: the target goes, the source moves. */
	sn->refs++; /* keeps it while it has no name */
	dir_del(s.dir, (size_t)dir_find(s.dir, sname));
	if (tn)
		dir_del(td, (size_t)dir_find(td, tname)); /* a file, or an empty directory */
	dir_add(td, tname, sn);
	sn->refs--;
	return 0;
}

static int op_link(struct worker *w)
{
	struct ref s;
	if (count_entries(w) >= MAX_ENTRIES)
		return 1;
	int m = pick_mount(w);
	op_begin(w, "link", m);
	/* A hard link of a directory is refused. */
	if (chance(w, 5) && pick_entry(w, M_DIR, &s)) {
		char name[NAME_MAX + 1];
		new_name(w, 'h', name, sizeof(name));
		full_path(w, m, s.dir, ref_name(&s), w->path, sizeof(w->path));
		full_path(w, m, s.dir, name, w->path2, sizeof(w->path2));
		trace(w, "of a directory");
		int rc = link(w->path, w->path2);
		return expect_result(w, "link of a directory", rc, errno, EPERM, 0);
	}
	if (!pick_entry(w, M_REG, &s))
		return 1;
	struct mnode *sn = ref_node(&s);
	if (sn->nlink >= MAX_LINKS)
		return 1;
	struct mnode *td = pick_dir(w);
	full_path(w, m, s.dir, ref_name(&s), w->path, sizeof(w->path));
	if (td->nents && chance(w, 10)) {
		full_path(w, m, td, td->ents[rnd(w, td->nents)].name, w->path2, sizeof(w->path2));
		trace(w, "onto an existing name");
		int rc = link(w->path, w->path2);
		return expect_result(w, "link onto an existing name", rc, errno, EEXIST, 0);
	}
	char name[NAME_MAX + 1];
	new_name(w, 'h', name, sizeof(name));
	full_path(w, m, td, name, w->path2, sizeof(w->path2));
	trace(w, "");
	if (link(w->path, w->path2) < 0)
		return fail_errno(w, "link", errno);
	dir_add(td, name, sn);
	return 0;
}

static int op_unlink(struct worker *w)
{
	struct ref r;
	int m = pick_mount(w);
	op_begin(w, "unlink", m);
	if (chance(w, 5) && pick_entry(w, M_DIR, &r)) {
		full_path(w, m, r.dir, ref_name(&r), w->path, sizeof(w->path));
		trace(w, "of a directory");
		int rc = unlink(w->path);
		return expect_result(w, "unlink of a directory", rc, errno, EISDIR, 0);
	}
	if (!pick_entry(w, M_REG | M_LNK, &r))
		return 1;
	full_path(w, m, r.dir, ref_name(&r), w->path, sizeof(w->path));
	trace(w, "");
	if (unlink(w->path) < 0)
		return fail_errno(w, "unlink", errno);
	dir_del(r.dir, r.idx);
	return 0;
}

static int op_mkdir(struct worker *w)
{
	static const mode_t modes[] = { 0755, 0700, 0750, 0775 };
	int m = pick_mount(w);
	struct mnode *d = pick_dir(w);
	op_begin(w, "mkdir", m);
	if (d->nents && chance(w, 5)) {
		full_path(w, m, d, d->ents[rnd(w, d->nents)].name, w->path, sizeof(w->path));
		trace(w, "of an existing name");
		int rc = mkdir(w->path, 0755);
		return expect_result(w, "mkdir of an existing name", rc, errno, EEXIST, 0);
	}
	if (depth(d) >= MAX_DEPTH)
		return 1;
	char name[NAME_MAX + 1];
	new_name(w, 'd', name, sizeof(name));
	mode_t mode = modes[rnd(w, sizeof(modes) / sizeof(modes[0]))];
	full_path(w, m, d, name, w->path, sizeof(w->path));
	trace(w, "mode 0%o", (unsigned)mode);
	if (mkdir(w->path, mode) < 0)
		return fail_errno(w, "mkdir", errno);
	dir_add(d, name, node_new(T_DIR, mode));
	return 0;
}

static int op_rmdir(struct worker *w)
{
	struct ref r;
	int m = pick_mount(w);
	op_begin(w, "rmdir", m);
	if (chance(w, 5) && pick_entry(w, M_REG, &r)) {
		full_path(w, m, r.dir, ref_name(&r), w->path, sizeof(w->path));
		trace(w, "of a file");
		int rc = rmdir(w->path);
		return expect_result(w, "rmdir of a file", rc, errno, ENOTDIR, 0);
	}
	if (!pick_entry(w, M_DIR, &r))
		return 1;
	struct mnode *n = ref_node(&r);
	full_path(w, m, r.dir, ref_name(&r), w->path, sizeof(w->path));
	trace(w, "%zu names in it", n->nents);
	int rc = rmdir(w->path);
	if (n->nents)
		return expect_result(w, "rmdir of a directory that is not empty", rc, errno, ENOTEMPTY, EEXIST);
	if (rc < 0)
		return fail_errno(w, "rmdir", errno);
	dir_del(r.dir, r.idx);
	return 0;
}

static int op_symlink(struct worker *w)
{
	int m = pick_mount(w);
	struct mnode *d = pick_dir(w);
	op_begin(w, "symlink", m);
	char name[NAME_MAX + 1], target[1100];
	new_name(w, 'l', name, sizeof(name));
	size_t tl;
	if (d->nents && chance(w, 50)) {
		tl = (size_t)snprintf(target, sizeof(target), "%s", d->ents[rnd(w, d->nents)].name);
	} else {
		static const char cs[] = "abcdefghijklmnopqrstuvwxyz0123456789./-_";
		tl = 1 + (chance(w, 10) ? rnd(w, 1000) : rnd(w, 60));
		for (size_t i = 0; i < tl; i++)
			target[i] = cs[rnd(w, sizeof(cs) - 1)];
		target[tl] = '\0';
	}
	full_path(w, m, d, name, w->path, sizeof(w->path));
	trace(w, "%zu bytes", tl);
	if (symlink(target, w->path) < 0)
		return fail_errno(w, "symlink", errno);
	struct mnode *n = node_new(T_LNK, 0777);
	n->target = xstrdup(target);
	dir_add(d, name, n);
	return 0;
}

static int op_readlink(struct worker *w)
{
	struct ref r;
	if (!pick_entry(w, M_LNK, &r))
		return 1;
	struct mnode *n = ref_node(&r);
	int m = pick_mount(w);
	op_begin(w, "readlink", m);
	full_path(w, m, r.dir, ref_name(&r), w->path, sizeof(w->path));
	char buf[PATH_MAX + 1];
	trace(w, "");
	ssize_t l = readlink(w->path, buf, sizeof(buf) - 1);
	if (l < 0)
		return fail_errno(w, "readlink", errno);
	buf[l] = '\0';
	if (strcmp(buf, n->target) != 0) {
		mismatch(w, "readlink: expected \"%s\", got \"%s\"", n->target, buf);
		return -1;
	}
	return 0;
}

static int op_chmod(struct worker *w)
{
	struct ref r;
	if (!pick_entry(w, M_REG | M_DIR, &r))
		return 1;
	struct mnode *n = ref_node(&r);
	int m = pick_mount(w);
	op_begin(w, "chmod", m);
	full_path(w, m, r.dir, ref_name(&r), w->path, sizeof(w->path));
	/* The owner keeps its access, so that the run also works without root. */
	mode_t mode = (mode_t)rnd(w, 01000) | (n->type == T_DIR ? 0700 : 0600);
	trace(w, "mode 0%o", (unsigned)mode);
	if (chmod(w->path, mode) < 0)
		return fail_errno(w, "chmod", errno);
	n->mode = mode;
	return 0;
}

static void xa_name(unsigned k, char *buf, size_t size)
{
	snprintf(buf, size, "user.k%u", k);
}

static int op_setxattr(struct worker *w)
{
	struct ref r;
	if (!pick_entry(w, M_REG | M_DIR, &r))
		return 1;
	struct mnode *n = ref_node(&r);
	int m = pick_mount(w);
	op_begin(w, "setxattr", m);
	full_path(w, m, r.dir, ref_name(&r), w->path, sizeof(w->path));
	unsigned k = (unsigned)rnd(w, XA_NAMES);
	char name[32];
	xa_name(k, name, sizeof(name));
	snprintf(w->path2, sizeof(w->path2), "%s", name);
	if (chance(w, 20)) {
		trace(w, "remove");
		int rc = removexattr(w->path, name);
		if (expect_result(w, "removexattr", rc, errno, n->xa_set[k] ? 0 : ENODATA, 0) < 0)
			return -1;
		n->xa_set[k] = false;
		return 0;
	}
	int flags = 0, want = 0;
	uint64_t f = rnd(w, 100);
	if (f < 15) {
		flags = XATTR_CREATE;
		want = n->xa_set[k] ? EEXIST : 0;
	} else if (f < 30) {
		flags = XATTR_REPLACE;
		want = n->xa_set[k] ? 0 : ENODATA;
	}
	unsigned char val[XA_VALUE_MAX];
	size_t len = rnd(w, XA_VALUE_MAX + 1);
	fill_random(&w->rng, val, len);
	trace(w, "%zu bytes, flags %d", len, flags);
	int rc = setxattr(w->path, name, val, len, flags);
	if (expect_result(w, flags == XATTR_CREATE ? "setxattr(XATTR_CREATE)"
			     : flags == XATTR_REPLACE ? "setxattr(XATTR_REPLACE)" : "setxattr",
			  rc, errno, want, 0) < 0)
		return -1;
	if (want == 0) {
		n->xa_set[k] = true;
		memcpy(n->xa_val[k], val, len);
		n->xa_len[k] = len;
	}
	return 0;
}

/* Compares the user.* extended attributes of path with the model's. */
static int check_xattrs(struct worker *w, const struct mnode *n, const char *path)
{
	char list[4096];
	ssize_t l = listxattr(path, list, sizeof(list));
	if (l < 0)
		return fail_errno(w, "listxattr", errno);
	bool seen[XA_NAMES] = { false };
	for (ssize_t i = 0; i < l; i += (ssize_t)strlen(list + i) + 1) {
		const char *s = list + i;
		if (strncmp(s, "user.", 5) != 0)
			continue;
		unsigned k;
		char extra;
		if (sscanf(s, "user.k%u%c", &k, &extra) != 1 || k >= XA_NAMES || !n->xa_set[k] || seen[k]) {
			mismatch(w, "listxattr lists \"%s\", which is not expected", s);
			return -1;
		}
		seen[k] = true;
	}
	for (unsigned k = 0; k < XA_NAMES; k++) {
		if (n->xa_set[k] && !seen[k]) {
			mismatch(w, "listxattr: user.k%u is missing", k);
			return -1;
		}
		if (!n->xa_set[k])
			continue;
		char name[32];
		unsigned char val[256];
		xa_name(k, name, sizeof(name));
		ssize_t vl = getxattr(path, name, val, sizeof(val));
		if (vl < 0)
			return fail_errno(w, "getxattr", errno);
		if ((size_t)vl != n->xa_len[k] || memcmp(val, n->xa_val[k], (size_t)vl) != 0) {
			mismatch(w, "getxattr %s: expected %zu bytes, got %zd, or other bytes", name, n->xa_len[k], vl);
			return -1;
		}
	}
	return 0;
}

static int op_getxattr(struct worker *w)
{
	struct ref r;
	if (!pick_entry(w, M_REG | M_DIR, &r))
		return 1;
	struct mnode *n = ref_node(&r);
	int m = pick_mount(w);
	op_begin(w, "getxattr", m);
	full_path(w, m, r.dir, ref_name(&r), w->path, sizeof(w->path));
	if (chance(w, 30)) {
		trace(w, "all of them");
		return check_xattrs(w, n, w->path);
	}
	unsigned k = (unsigned)rnd(w, XA_NAMES);
	char name[32];
	unsigned char val[256];
	xa_name(k, name, sizeof(name));
	snprintf(w->path2, sizeof(w->path2), "%s", name);
	trace(w, "");
	ssize_t vl = getxattr(w->path, name, val, sizeof(val));
	if (expect_result(w, "getxattr", (int)vl, errno, n->xa_set[k] ? 0 : ENODATA, 0) < 0)
		return -1;
	if (vl >= 0 && ((size_t)vl != n->xa_len[k] || memcmp(val, n->xa_val[k], (size_t)vl) != 0)) {
		mismatch(w, "getxattr: expected %zu bytes, got %zd, or other bytes", n->xa_len[k], vl);
		return -1;
	}
	return 0;
}

static int op_fsync(struct worker *w)
{
	struct ref r;
	if (!pick_entry(w, M_REG, &r))
		return 1;
	struct mnode *n = ref_node(&r);
	int m = pick_mount(w);
	op_begin(w, "fsync", m);
	full_path(w, m, r.dir, ref_name(&r), w->path, sizeof(w->path));
	bool write_first = chance(w, 50) && n->size < MAX_FILE_SIZE - 4096;
	trace(w, "%s", write_first ? "after a write" : "");
	int fd = open(w->path, write_first ? O_WRONLY : O_RDONLY);
	if (fd < 0)
		return fail_errno(w, "open", errno);
	if (write_first) {
		size_t off = rnd(w, n->size + 1), len = 1 + rnd(w, 4096);
		fill_random(&w->rng, w->buf, len);
		trace(w, "write offset %zu length %zu, size %zu", off, len, n->size);
		if (write_full(w, fd, w->buf, len, (off_t)off) < 0) {
			close(fd);
			return -1;
		}
		model_write(n, w->buf, len, off);
	}
	bool data = chance(w, 30);
	if ((data ? fdatasync(fd) : fsync(fd)) < 0) {
		int e = errno;
		close(fd);
		return fail_errno(w, data ? "fdatasync" : "fsync", e);
	}
	return close_checked(w, fd);
}

static const char *type_name(int t)
{
	return t == T_REG ? "regular file" : t == T_DIR ? "directory" : "symbolic link";
}

/* Compares lstat() of path with node n. */
static int check_stat(struct worker *w, const struct mnode *n, const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return fail_errno(w, "lstat", errno);
	int t = S_ISREG(st.st_mode) ? T_REG : S_ISDIR(st.st_mode) ? T_DIR : S_ISLNK(st.st_mode) ? T_LNK : -1;
	if (t != n->type) {
		mismatch(w, "lstat: expected a %s, got mode 0%o", type_name(n->type), (unsigned)st.st_mode);
		return -1;
	}
	if (n->type != T_LNK && (st.st_mode & 07777) != n->mode) {
		mismatch(w, "lstat: expected mode 0%o, got 0%o", (unsigned)n->mode, (unsigned)(st.st_mode & 07777));
		return -1;
	}
	if (st.st_nlink != n->nlink && n->type != T_LNK) {
		mismatch(w, "lstat: expected %u links, got %lu", n->nlink, (unsigned long)st.st_nlink);
		return -1;
	}
	if (n->type == T_LNK && st.st_nlink != 1) {
		mismatch(w, "lstat of a symbolic link: expected 1 link, got %lu", (unsigned long)st.st_nlink);
		return -1;
	}
	size_t size = n->type == T_REG ? n->size : n->type == T_LNK ? strlen(n->target) : 0;
	if (n->type != T_DIR && (uint64_t)st.st_size != size) {
		mismatch(w, "lstat: expected size %zu, got %lld", size, (long long)st.st_size);
		return -1;
	}
	return 0;
}

static int op_stat(struct worker *w)
{
	struct ref r;
	if (!pick_entry(w, M_ANY, &r))
		return 1;
	int m = pick_mount(w);
	op_begin(w, "stat", m);
	full_path(w, m, r.dir, ref_name(&r), w->path, sizeof(w->path));
	trace(w, "");
	return check_stat(w, ref_node(&r), w->path);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Compares the names that readdir() gives for path with directory d. */
static int check_readdir(struct worker *w, const struct mnode *d, const char *path)
{
	DIR *dir = opendir(path);
	if (!dir)
		return fail_errno(w, "opendir", errno);
	size_t n = 0, cap = 16;
	char **got = xmalloc(cap * sizeof(*got));
	int ret = 0;
	struct dirent *e;
	errno = 0;
	while ((e = readdir(dir))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		ssize_t i = dir_find(d, e->d_name);
		if (i >= 0 && e->d_type != DT_UNKNOWN) {
			int t = d->ents[i].node->type;
			unsigned char want = t == T_REG ? DT_REG : t == T_DIR ? DT_DIR : DT_LNK;
			if (e->d_type != want) {
				mismatch(w, "readdir: %s has type %u, expected %u", e->d_name, e->d_type, want);
				ret = -1;
				break;
			}
		}
		if (n == cap)
			got = xrealloc(got, (cap *= 2) * sizeof(*got));
		got[n++] = xstrdup(e->d_name);
		errno = 0;
	}
	if (ret == 0 && errno)
		ret = fail_errno(w, "readdir", errno);
	closedir(dir);
	if (ret == 0) {
		char **want = xmalloc((d->nents + 1) * sizeof(*want));
		for (size_t i = 0; i < d->nents; i++)
			want[i] = d->ents[i].name;
		qsort(want, d->nents, sizeof(*want), cmp_str);
		qsort(got, n, sizeof(*got), cmp_str);
		size_t i = 0, j = 0;
		while (ret == 0 && (i < d->nents || j < n)) {
			int c = i == d->nents ? 1 : j == n ? -1 : strcmp(want[i], got[j]);
			if (c < 0) {
				mismatch(w, "readdir: \"%s\" is missing (%zu names expected, %zu listed)", want[i],
					 d->nents, n);
				ret = -1;
			} else if (c > 0) {
				mismatch(w, "readdir: \"%s\" is listed but not expected (%zu names expected, %zu listed)",
					 got[j], d->nents, n);
				ret = -1;
			} else if (j + 1 < n && strcmp(got[j], got[j + 1]) == 0) {
				mismatch(w, "readdir: \"%s\" is listed twice", got[j]);
				ret = -1;
			}
			if (c <= 0)
				i++;
			if (c >= 0)
				j++;
		}
		free(want);
	}
	for (size_t i = 0; i < n; i++)
		free(got[i]);
	free(got);
	return ret;
}

static int op_readdir(struct worker *w)
{
	int m = pick_mount(w);
	struct mnode *d = pick_dir(w);
	op_begin(w, "readdir", m);
	full_path(w, m, d, NULL, w->path, sizeof(w->path));
	trace(w, "%zu names", d->nents);
	return check_readdir(w, d, w->path);
}

/* Compares everything under directory d (at path) with the model. */
static int check_tree(struct worker *w, const struct mnode *d, const char *path)
{
	if (check_stat(w, d, path) < 0 || check_xattrs(w, d, path) < 0 || check_readdir(w, d, path) < 0)
		return -1;
	char *p = xmalloc(PATH_MAX);
	int ret = 0;
	for (size_t i = 0; i < d->nents && ret == 0; i++) {
		const struct mnode *n = d->ents[i].node;
		snprintf(p, PATH_MAX, "%s/%s", path, d->ents[i].name);
		snprintf(w->path, sizeof(w->path), "%s", p);
		if (n->type == T_DIR) {
			ret = check_tree(w, n, p);
			continue;
		}
		ret = check_stat(w, n, p);
		if (ret == 0 && n->type == T_LNK) {
			char buf[PATH_MAX + 1];
			ssize_t l = readlink(p, buf, sizeof(buf) - 1);
			if (l < 0) {
				ret = fail_errno(w, "readlink", errno);
			} else {
				buf[l] = '\0';
				if (strcmp(buf, n->target) != 0) {
					mismatch(w, "readlink: expected \"%s\", got \"%s\"", n->target, buf);
					ret = -1;
				}
			}
		} else if (ret == 0) {
			ret = check_xattrs(w, n, p);
			int fd = ret == 0 ? open(p, O_RDONLY) : -1;
			if (ret == 0 && fd < 0)
				ret = fail_errno(w, "open", errno);
			size_t got;
			if (ret == 0)
				ret = read_full(w, fd, w->buf2, n->size + 1, 0, &got);
			if (ret == 0)
				ret = compare_data(w, "read of the whole file", n->data, n->size, w->buf2, got, 0);
			if (fd >= 0)
				close(fd);
		}
	}
	free(p);
	return ret;
}

typedef int (*op_fn)(struct worker *);

static const struct {
	op_fn fn;
	const char *name;
	unsigned weight;
} ops[] = {
	{ op_create, "create", 10 }, { op_write, "write", 12 }, { op_append, "append", 6 },
	{ op_truncate, "truncate", 6 }, { op_read, "read", 12 }, { op_rename, "rename", 8 },
	{ op_link, "link", 4 }, { op_unlink, "unlink", 6 }, { op_mkdir, "mkdir", 4 },
	{ op_rmdir, "rmdir", 3 }, { op_symlink, "symlink", 4 }, { op_readlink, "readlink", 4 },
	{ op_chmod, "chmod", 4 }, { op_setxattr, "setxattr", 5 }, { op_getxattr, "getxattr", 4 },
	{ op_fsync, "fsync", 3 }, { op_stat, "stat", 8 }, { op_readdir, "readdir", 6 },
};
#define N_OPS (sizeof(ops) / sizeof(ops[0]))

/* Operations run, by kind, all workers together. */
static atomic_uint_fast64_t op_counts[N_OPS];

static int run_one(struct worker *w)
{
	unsigned total = 0;
	for (size_t i = 0; i < N_OPS; i++)
		total += ops[i].weight;
	bool full = count_entries(w) >= MAX_ENTRIES;
	for (;;) {
		uint64_t k = rnd(w, total);
		size_t i = 0;
		while (k >= ops[i].weight)
			k -= ops[i++].weight;
		op_fn fn = ops[i].fn;
		/* A full tree only shrinks or changes. */
		if (full && (fn == op_create || fn == op_mkdir || fn == op_symlink || fn == op_link))
			fn = chance(w, 70) ? op_unlink : op_rmdir;
		int r = fn(w);
		if (r <= 0) {
			for (size_t j = 0; j < N_OPS; j++)
				if (ops[j].fn == fn)
					atomic_fetch_add(&op_counts[j], 1);
			return r;
		}
	}
}

/* Removes a tree left by an earlier run. */
static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	int r = flag == FTW_DP ? rmdir(path) : unlink(path);
	if (r < 0)
		fprintf(stderr, PROG ": cannot remove %s: %s\n", path, strerror(errno));
	return r < 0 ? -1 : 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char path[PATH_MAX];

	for (w->op = 1; w->op <= w->nops && !atomic_load(&R.stop); w->op++) {
		if (run_one(w) < 0)
			break;
		uint64_t done = atomic_fetch_add(&R.done, 1) + 1;
		if (done % 1000 == 0) {
			pthread_mutex_lock(&R.out_lock);
			printf("progress: %" PRIu64 "/%" PRIu64 " ops\n", done, R.ops);
			pthread_mutex_unlock(&R.out_lock);
		}
	}
	/* Every worker has stopped changing its tree: compare all of them. */
	pthread_barrier_wait(&R.barrier);
	w->op = 0;
	for (int m = 0; m < R.nmounts && !atomic_load(&R.stop); m++) {
		op_begin(w, "final tree walk", m);
		full_path(w, m, w->root, NULL, path, sizeof(path));
		snprintf(w->path, sizeof(w->path), "%s", path);
		if (check_tree(w, w->root, path) < 0)
			break;
	}
	return NULL;
}

static int cmd_random(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "seed", required_argument, NULL, 's' },
		{ "ops", required_argument, NULL, 'n' },
		{ "workers", required_argument, NULL, 'w' },
		{ "trace", no_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	uint64_t workers = 1, v;
	bool have_seed = false;
	int c;
	R.ops = 1000;
	while ((c = getopt_long(argc, argv, "s:n:w:Th", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			if (parse_u64(optarg, false, &R.seed) < 0)
				return usage_error("--seed %s: expected a number from 0 to %" PRIu64, optarg, UINT64_MAX);
			have_seed = true;
			break;
		case 'n':
			if (parse_u64(optarg, false, &R.ops) < 0)
				return usage_error("--ops %s: expected a number", optarg);
			break;
		case 'w':
			if (parse_u64(optarg, false, &v) < 0 || v < 1 || v > 256)
				return usage_error("--workers %s: expected a number from 1 to 256", optarg);
			workers = v;
			break;
		case 'T':
			R.trace = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return EXIT_USAGE;
		}
	}
	if (!have_seed)
		return usage_error("random: --seed is needed");
	if (optind >= argc)
		return usage_error("random: at least one mount point is needed");
	R.mounts = argv + optind;
	R.nmounts = argc - optind;
	R.workers = (unsigned)workers;
	for (int m = 0; m < R.nmounts; m++) {
		struct stat st;
		if (stat(R.mounts[m], &st) < 0 || !S_ISDIR(st.st_mode)) {
			fprintf(stderr, PROG ": %s: not a directory\n", R.mounts[m]);
			return EXIT_USAGE;
		}
	}

	umask(0);
	printf("seed %" PRIu64 "\n", R.seed);
	printf("random: %" PRIu64 " ops, %u workers, %d mounts\n", R.ops, R.workers, R.nmounts);

	struct worker *ws = xmalloc(R.workers * sizeof(*ws));
	memset(ws, 0, R.workers * sizeof(*ws));
	int ret = 0;
	for (unsigned i = 0; i < R.workers; i++) {
		struct worker *w = &ws[i];
		char path[PATH_MAX];
		w->id = (int)i;
		w->rng = R.seed ^ (0x6a09e667f3bcc909ULL * (i + 1));
		splitmix64(&w->rng);
		w->nops = R.ops / R.workers + (i < R.ops % R.workers);
		w->mount = 0;
		snprintf(w->rootname, sizeof(w->rootname), "wl-%u", i);
		snprintf(path, sizeof(path), "%s/%s", R.mounts[0], w->rootname);
		struct stat st;
		if (lstat(path, &st) == 0) {
			printf("removing %s, left by an earlier run\n", path);
			if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0) {
				fprintf(stderr, PROG ": cannot remove %s\n", path);
				ret = EXIT_CHECK;
			}
		}
		if (ret == 0 && mkdir(path, 0755) < 0) {
			fprintf(stderr, PROG ": mkdir %s: %s\n", path, strerror(errno));
			ret = EXIT_CHECK;
		}
		w->root = node_new(T_DIR, 0755);
		w->buf = xmalloc(BUF_SIZE);
		w->buf2 = xmalloc(BUF_SIZE);
	}
	fflush(stdout);
	if (ret == 0) {
		pthread_barrier_init(&R.barrier, NULL, R.workers);
		for (unsigned i = 0; i < R.workers; i++) {
			int r = pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]);
			if (r != 0) {
				/* The others would wait for it at the barrier. */
				fprintf(stderr, PROG ": cannot start a thread: %s\n", strerror(r));
				exit(EXIT_CHECK);
			}
		}
		for (unsigned i = 0; i < R.workers; i++)
			pthread_join(ws[i].thread, NULL);
		pthread_barrier_destroy(&R.barrier);
	}
	for (unsigned i = 0; i < R.workers; i++) {
		if (ws[i].failed)
			ret = EXIT_CHECK;
		tree_free(ws[i].root);
		free(ws[i].buf);
		free(ws[i].buf2);
		free(ws[i].refs.v);
	}
	free(ws);
	printf("random: ops by kind:");
	for (size_t i = 0; i < N_OPS; i++)
		printf(" %s %" PRIu64, ops[i].name, (uint64_t)atomic_load(&op_counts[i]));
	printf("\n");
	if (ret == 0)
		printf("random: seed %" PRIu64 ": %" PRIu64 " ops, the trees match through every mount\n", R.seed,
		       (uint64_t)atomic_load(&R.done));
	else
		printf("random: seed %" PRIu64 ": FAILED (replay with the same seed, ops, workers and mounts)\n",
		       R.seed);
	return ret;
}

/* ===========================================================================
 * append and verify: a log of numbered records
 * ======================================================================== */

/* A record: this header, then len payload bytes. Integers little-endian. */
#define REC_MAGIC 0x524c5743u /* "CWLR" */
#define REC_ID_MAX 32
#define REC_HDR_SIZE 56
#define REC_LEN_MAX (64u << 20)

struct rec_hdr {
	uint32_t magic;
	uint32_t len;          /* payload bytes */
	uint64_t seq;          /* from 0 */
	char id[REC_ID_MAX];   /* the writer's name, NUL-padded */
	uint32_t payload_crc;  /* CRC-32 of the payload */
	uint32_t hdr_crc;      /* CRC-32 of the 52 bytes before */
};

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void rec_payload(const char *id, uint64_t seq, unsigned char *p, size_t len)
{
	uint64_t s = fnv1a(id) ^ (seq * 0x9e3779b97f4a7c15ULL);
	fill_random(&s, p, len);
}

/* Encodes record seq of writer id, payload included, into buf. */
static void rec_encode(const char *id, uint64_t seq, size_t len, unsigned char *buf)
{
	memset(buf, 0, REC_HDR_SIZE);
	rec_payload(id, seq, buf + REC_HDR_SIZE, len);
	put32(buf, REC_MAGIC);
	put32(buf + 4, (uint32_t)len);
	put64(buf + 8, seq);
	memcpy(buf + 16, id, strlen(id));
	put32(buf + 48, crc32_ieee(buf + REC_HDR_SIZE, len));
	put32(buf + 52, crc32_ieee(buf, 52));
}

static int rec_decode(const unsigned char *buf, struct rec_hdr *h)
{
	h->magic = get32(buf);
	h->len = get32(buf + 4);
	h->seq = get64(buf + 8);
	memcpy(h->id, buf + 16, REC_ID_MAX);
	h->payload_crc = get32(buf + 48);
	h->hdr_crc = get32(buf + 52);
	if (h->magic != REC_MAGIC)
		return -EBADMSG;
	if (h->hdr_crc != crc32_ieee(buf, 52))
		return -EBADMSG;
	return 0;
}

static int check_id(const char *id)
{
	size_t l = strlen(id);
	if (l == 0 || l >= REC_ID_MAX || strchr(id, '/'))
		return usage_error("--id %s: expected 1 to %d characters, no '/'", id, REC_ID_MAX - 1);
	return 0;
}

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
	stop_signal = sig;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct appender {
	char path[PATH_MAX];
	int fd;
	double retry;
	uint64_t errors;
	bool reopened; /* after ENOTCONN: restart from the last acknowledged record */
};

/* Decides about an error of op: true to retry it after 100 ms. */
static bool should_retry(struct appender *a, const char *op, int e, double deadline)
{
	printf("error %s %s\n", op, strerror(e));
	a->errors++;
	if ((e != EIO && e != ENOTCONN) || now_s() >= deadline || stop_signal)
		return false;
	nanosleep(&(struct timespec){ .tv_nsec = 100000000 }, NULL);
	if (e == ENOTCONN) {
		/* The mount went away: a new one may be there now. */
		if (a->fd >= 0)
			close(a->fd);
		a->fd = open(a->path, O_WRONLY | O_CREAT, 0644);
		if (a->fd < 0)
			printf("error open %s\n", strerror(errno));
		a->reopened = true;
	}
	return true;
}

/* One fsync, retried: 0 done, 1 the log was reopened (write again from
 * the last acknowledged record), -1 failed. */
static int append_fsync(struct appender *a)
{
	double deadline = now_s() + a->retry;
	for (;;) {
		int e = a->fd < 0 ? ENOTCONN : fsync(a->fd) == 0 ? 0 : errno;
		if (e == 0)
			return a->reopened ? 1 : 0;
		if (e != EINTR && !should_retry(a, "fsync", e, deadline))
			return -1;
	}
}

/* Writes one record at off, retried: 0 done, 1 the log was reopened,
 * -1 failed. */
static int append_write(struct appender *a, const unsigned char *buf, size_t len, off_t off)
{
	double deadline = now_s() + a->retry;
	size_t done = 0;
	while (done < len) {
		ssize_t n = a->fd < 0 ? -1 : pwrite(a->fd, buf + done, len - done, off + (off_t)done);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		int e = a->fd < 0 ? ENOTCONN : n < 0 ? errno : EIO;
		if (e == EINTR)
			continue;
		if (!should_retry(a, "write", e, deadline))
			return -1;
		if (a->reopened)
			return 1;
	}
	return 0;
}

static int cmd_append(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "records", required_argument, NULL, 'r' },
		{ "size", required_argument, NULL, 'S' },
		{ "fsync-every", required_argument, NULL, 'k' },
		{ "retry-seconds", required_argument, NULL, 't' },
		{ "id", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *dir = NULL, *id = NULL;
	uint64_t records = 0, size = 0, every = 1, retry = 0;
	bool have_records = false, have_size = false;
	int c;
	while ((c = getopt_long(argc, argv, "d:r:S:k:t:i:h", lo, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'i': id = optarg; break;
		case 'r':
			if (parse_u64(optarg, false, &records) < 0)
				return usage_error("--records %s: expected a number", optarg);
			have_records = true;
			break;
		case 'S':
			if (parse_u64(optarg, true, &size) < 0 || size > REC_LEN_MAX)
				return usage_error("--size %s: expected a number of bytes up to 64M", optarg);
			have_size = true;
			break;
		case 'k':
			if (parse_u64(optarg, false, &every) < 0 || every < 1)
				return usage_error("--fsync-every %s: expected a number from 1", optarg);
			break;
		case 't':
			if (parse_u64(optarg, false, &retry) < 0 || retry > 86400)
				return usage_error("--retry-seconds %s: expected a number of seconds up to 86400",
						   optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		return usage_error("append: unexpected argument %s", argv[optind]);
	if (!dir || !id || !have_records || !have_size)
		return usage_error("append: --dir, --id, --records and --size are needed");
	if (check_id(id))
		return EXIT_USAGE;

	/* One line per acknowledgement, out at once: a writer killed with
	 * its node has told what was acknowledged. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct appender a = { .retry = (double)retry };
	snprintf(a.path, sizeof(a.path), "%s/%s.log", dir, id);
	/* A signal stops the writer after the record it is writing. */
	struct sigaction sa = { .sa_handler = on_stop, .sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	a.fd = open(a.path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (a.fd < 0) {
		fprintf(stderr, PROG ": cannot create %s: %s\n", a.path, strerror(errno));
		return EXIT_CHECK;
	}
	printf("append: %s, %" PRIu64 " records of %" PRIu64 " bytes, fsync every %" PRIu64 "\n", a.path, records,
	       size, every);
	size_t rec_size = REC_HDR_SIZE + (size_t)size;
	unsigned char *buf = xmalloc(rec_size);
	int64_t acked = -1;
	uint64_t seq = 0;
	int ret = 0;
	while (ret == 0) {
		bool last = seq == records || stop_signal;
		int r = 0;
		/* fsync what was written since the last one. */
		if ((int64_t)seq - 1 > acked && (last || seq % every == 0)) {
			r = append_fsync(&a);
			if (r == 0) {
				acked = (int64_t)seq - 1;
				struct timespec now;
				clock_gettime(CLOCK_REALTIME, &now);
				printf("acked %" PRId64 " %lld.%03ld\n", acked, (long long)now.tv_sec,
				       now.tv_nsec / 1000000);
			}
		}
		if (r == 0 && last)
			break;
		if (r == 0) {
			rec_encode(id, seq, (size_t)size, buf);
			r = append_write(&a, buf, rec_size, (off_t)(seq * rec_size));
		}
		if (r < 0) {
			ret = EXIT_CHECK;
		} else if (r > 0) {
			/* Written through a mount that went away: again. */
			a.reopened = false;
			seq = (uint64_t)(acked + 1);
		} else {
			seq++;
		}
	}
	if (a.fd >= 0 && close(a.fd) < 0) {
		printf("error close %s\n", strerror(errno));
		a.errors++;
	}
	free(buf);
	printf("done: %" PRIu64 " records written, acked %" PRId64 ", %" PRIu64 " errors%s\n", seq, acked, a.errors,
	       stop_signal ? " (stopped by a signal)" : "");
	return ret;
}

static int cmd_verify(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "id", required_argument, NULL, 'i' },
		{ "acked", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *dir = NULL, *id = NULL;
	int64_t acked = -2;
	int c;
	while ((c = getopt_long(argc, argv, "d:i:a:h", lo, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'i': id = optarg; break;
		case 'a': {
			uint64_t v;
			if (strcmp(optarg, "-1") == 0)
				acked = -1;
			else if (parse_u64(optarg, false, &v) < 0 || v > INT64_MAX)
				return usage_error("--acked %s: expected a record number, or -1", optarg);
			else
				acked = (int64_t)v;
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		return usage_error("verify: unexpected argument %s", argv[optind]);
	if (!dir || !id || acked == -2)
		return usage_error("verify: --dir, --id and --acked are needed");
	if (check_id(id))
		return EXIT_USAGE;

	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s.log", dir, id);
	FILE *f = fopen(path, "rb");
	if (!f) {
		int e = errno;
		if (e == ENOENT && acked < 0) {
			printf("verify: %s: no log, and no record was acknowledged: ok\n", path);
			return 0;
		}
		printf("verify: %s: LOST: cannot open the log (%s), %" PRId64 " records were acknowledged\n", path,
		       strerror(e), acked + 1);
		return EXIT_CHECK;
	}
	unsigned char hdr[REC_HDR_SIZE];
	unsigned char *payload = NULL, *want = NULL;
	size_t cap = 0;
	uint64_t good = 0, off = 0;
	char why[256] = "";
	for (;;) {
		size_t n = fread(hdr, 1, REC_HDR_SIZE, f);
		if (n == 0 && !ferror(f)) {
			snprintf(why, sizeof(why), "end of the log");
			break;
		}
		if (ferror(f)) {
			snprintf(why, sizeof(why), "a read error at offset %" PRIu64 ": %s", off, strerror(errno));
			break;
		}
		if (n < REC_HDR_SIZE) {
			snprintf(why, sizeof(why), "a torn header (%zu bytes) at offset %" PRIu64, n, off);
			break;
		}
		struct rec_hdr h;
		if (rec_decode(hdr, &h) < 0) {
			snprintf(why, sizeof(why), "no valid record header at offset %" PRIu64, off);
			break;
		}
		if (strncmp(h.id, id, REC_ID_MAX) != 0) {
			snprintf(why, sizeof(why), "a record of writer \"%.*s\" at offset %" PRIu64, REC_ID_MAX, h.id, off);
			break;
		}
		if (h.seq != good) {
			snprintf(why, sizeof(why), "record %" PRIu64 " where record %" PRIu64 " was expected, at offset %" PRIu64,
				 h.seq, good, off);
			break;
		}
		if (h.len > REC_LEN_MAX) {
			snprintf(why, sizeof(why), "record %" PRIu64 ": length %u out of range", h.seq, h.len);
			break;
		}
		if (h.len > cap) {
			cap = h.len;
			payload = xrealloc(payload, cap);
			want = xrealloc(want, cap);
		}
		n = fread(payload, 1, h.len, f);
		if (n < h.len) {
			snprintf(why, sizeof(why), "record %" PRIu64 ": torn, %zu of %u payload bytes", h.seq, n, h.len);
			break;
		}
		if (crc32_ieee(payload, h.len) != h.payload_crc) {
			snprintf(why, sizeof(why), "record %" PRIu64 ": bad payload checksum", h.seq);
			break;
		}
		rec_payload(id, h.seq, want, h.len);
		if (memcmp(payload, want, h.len) != 0) {
			snprintf(why, sizeof(why), "record %" PRIu64 ": payload of another record", h.seq);
			break;
		}
		good++;
		off += REC_HDR_SIZE + h.len;
	}
	fclose(f);
	free(payload);
	free(want);
	printf("verify: %s: %" PRIu64 " good records", path, good);
	if (good)
		printf(" (0 to %" PRIu64 ")", good - 1);
	printf(", then %s; acked %" PRId64 "\n", why, acked);
	if ((int64_t)good <= acked) {
		printf("verify: LOST: records %" PRIu64 " to %" PRId64 " were acknowledged but are missing or damaged\n",
		       good, acked);
		return EXIT_CHECK;
	}
	printf("verify: ok: every acknowledged record is intact\n");
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2)
		return usage_error("a mode is needed: random, append or verify");
	const char *mode = argv[1];
	if (strcmp(mode, "-h") == 0 || strcmp(mode, "--help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(mode, "-V") == 0 || strcmp(mode, "--version") == 0) {
		printf(PROG " (csvfs cluster) %s\n", PACKAGE_VERSION);
		return 0;
	}
	/* getopt_long() of the mode sees it as argv[0], and names it in its
	 * messages. */
	static char name_random[] = PROG " random", name_append[] = PROG " append",
		    name_verify[] = PROG " verify";
	if (strcmp(mode, "random") == 0) {
		argv[1] = name_random;
		return cmd_random(argc - 1, argv + 1);
	}
	if (strcmp(mode, "append") == 0) {
		argv[1] = name_append;
		return cmd_append(argc - 1, argv + 1);
	}
	if (strcmp(mode, "verify") == 0) {
		argv[1] = name_verify;
		return cmd_verify(argc - 1, argv + 1);
	}
	return usage_error("unknown mode '%s': expected random, append or verify", mode);
}
