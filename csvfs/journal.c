/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The metadata journal: see journal.h for the log layout and the rules. */
#include "journal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crc32c.h"
#include "meta.h"
#include "util.h"

#define JOURNAL_MAX_IMAGE_BLOCKS 16u
#define JOURNAL_IO_BLOCKS 128u  /* staging buffer for log reads and writes */
/* Bounds of the wait of a commit leader for transactions still open in
 * other threads (it waits about as long as a log write takes). */
#define JOURNAL_BATCH_WAIT_MIN_NS 50000ull
#define JOURNAL_BATCH_WAIT_MAX_NS 5000000ull

/* ---- A map from block number to an array index (no deletion) ---------- */

#define BLKMAP_EMPTY UINT64_MAX

struct blkmap {
	uint64_t *keys;
	uint32_t *vals;
	size_t cap;  /* power of two, or 0 */
	size_t n;
};

static size_t blkmap_slot(uint64_t k, size_t cap)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	return (size_t)k & (cap - 1);
}

static bool blkmap_find(const struct blkmap *m, uint64_t key, uint32_t *ret)
{
	if (m->cap == 0)
		return false;
	for (size_t i = blkmap_slot(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == BLKMAP_EMPTY)
			return false;
		if (m->keys[i] == key) {
			*ret = m->vals[i];
			return true;
		}
	}
}

/* Inserts or replaces; the map must have room (blkmap_reserve). */
static void blkmap_set(struct blkmap *m, uint64_t key, uint32_t val)
{
	size_t i = blkmap_slot(key, m->cap);
	while (m->keys[i] != BLKMAP_EMPTY && m->keys[i] != key)
		i = (i + 1) & (m->cap - 1);
	if (m->keys[i] == BLKMAP_EMPTY)
		m->n++;
	m->keys[i] = key;
	m->vals[i] = val;
}

/* Makes room for `count` keys in all at a load of one half at most. */
static int blkmap_reserve(struct blkmap *m, size_t count)
{
	size_t cap = m->cap ? m->cap : 16;
	while (cap < 2 * count)
		cap *= 2;
	if (cap == m->cap)
		return 0;
	struct blkmap nm = { .cap = cap };
	nm.keys = malloc(cap * sizeof(*nm.keys));
	nm.vals = malloc(cap * sizeof(*nm.vals));
	if (!nm.keys || !nm.vals) {
		free(nm.keys);
		free(nm.vals);
		return -ENOMEM;
	}
	for (size_t i = 0; i < cap; i++)
		nm.keys[i] = BLKMAP_EMPTY;
	for (size_t i = 0; i < m->cap; i++)
		if (m->keys[i] != BLKMAP_EMPTY)
			blkmap_set(&nm, m->keys[i], m->vals[i]);
	free(m->keys);
	free(m->vals);
	*m = nm;
	return 0;
}

static void blkmap_clear(struct blkmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		m->keys[i] = BLKMAP_EMPTY;
	m->n = 0;
}

static void blkmap_free(struct blkmap *m)
{
	free(m->keys);
	free(m->vals);
	*m = (struct blkmap){ 0 };
}

/* Grows the array whose pointer is at arrp (elements of size elem) to
 * hold at least want. */
static int array_reserve(void *arrp, size_t *cap, size_t want, size_t elem)
{
	void *old, *p;

	if (want <= *cap)
		return 0;
	size_t n = *cap ? *cap : 16;
	while (n < want)
		n *= 2;
	memcpy(&old, arrp, sizeof(old));
	p = realloc(old, n * elem);
	if (!p)
		return -ENOMEM;
	memcpy(arrp, &p, sizeof(p));
	*cap = n;
	return 0;
}

/* ---- In-memory structures --------------------------------------------- */

struct jimage {
	uint64_t blocknr;
	uint64_t lsn;
	uint32_t nblocks;
	uint32_t crc;    /* CRC32C of the image, the tag's crc */
	void *data;      /* nblocks blocks, sealed */
};

/* A committed transaction still in the log. */
struct jrec {
	uint64_t lsn;
	uint64_t offset;          /* first descriptor */
	uint64_t commit_time_ns;
	uint32_t nimages;
	uint32_t nblocks;         /* image blocks */
	uint64_t log_blocks;      /* descriptors + images + commit */
};

struct csv_txn {
	struct csv_journal *j;
	uint64_t lsn;
	struct jimage *imgs;
	size_t nimgs, cap;
	struct blkmap index;      /* blocknr -> imgs[] */
	uint64_t image_blocks;
	bool marker;              /* an aborted LSN, written as an empty transaction */
	bool done;                /* the leader is finished with it */
	int result;
	struct jrec rec;          /* filled by the leader */
	struct csv_txn *next;     /* commit queue, sorted by LSN */
};

struct csv_journal {
	struct csv_volume *v;
	uint64_t log_start;       /* absolute block of log offset 0 */
	uint64_t log_blocks;

	pthread_mutex_t lock;
	pthread_cond_t cond;

	/* The superblock as on disk. */
	uint64_t head_lsn, head_offset;
	/* The end of the log. */
	uint64_t next_lsn, tail_offset, used_blocks;
	uint64_t begin_lsn;       /* LSN of the next journal_txn_begin() */
	bool started;             /* LSNs moved past what a crash may have left */
	bool busy;                /* a thread owns the log I/O (leader, checkpoint) */
	int error;                /* sticky: a write failed, nothing more is written */
	struct csv_txn *queue;    /* waiting to be written, sorted by LSN */
	uint64_t open_txns;       /* begun, neither committed nor aborted yet */
	uint64_t avg_write_ns;    /* moving average of a group's write and flush */
	uint64_t last_batch;      /* transactions (not markers) the last leader took */
	pthread_t last_committer; /* thread of the last commit, when have_committer */
	bool have_committer;

	/* Committed and not checkpointed: the newest image per block. Changed
	 * only by the busy thread, under the lock; read under the lock, or
	 * by the busy thread without it. */
	struct jimage *pend;
	size_t npend, cappend;
	struct blkmap pend_index;
	struct jrec *recs;
	size_t nrecs, caprecs;

	bool defer_flush;         /* commits leave the flush to journal_sync() */
	bool unflushed;           /* log written since the last flush */

	uint8_t *iobuf;           /* JOURNAL_IO_BLOCKS blocks, the busy thread's */
	int64_t fail_after;       /* test hook; < 0 disarmed */
};

static uint64_t txn_ndesc(size_t nimgs)
{
	return nimgs ? DIV_ROUND_UP(nimgs, CSV_JOURNAL_TAGS) : 1;
}

static uint64_t txn_log_blocks(const struct csv_txn *t)
{
	return txn_ndesc(t->nimgs) + t->image_blocks + 1;
}

static void images_free(struct jimage *imgs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(imgs[i].data);
}

static void txn_free(struct csv_txn *t)
{
	if (!t)
		return;
	images_free(t->imgs, t->nimgs);
	free(t->imgs);
	blkmap_free(&t->index);
	free(t);
}

/* Empties a transaction (it becomes a marker or is about to be freed). */
static void txn_clear(struct csv_txn *t)
{
	images_free(t->imgs, t->nimgs);
	free(t->imgs);
	t->imgs = NULL;
	t->nimgs = t->cap = 0;
	t->image_blocks = 0;
	blkmap_free(&t->index);
}

static uint64_t clock_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A home location a transaction may write: inside the volume, outside
 * the journal region. */
static bool home_ok(const struct csv_volume *v, uint64_t blocknr, uint32_t nblocks)
{
	const struct csv_geometry *g = &v->g;
	if (nblocks < 1 || nblocks > JOURNAL_MAX_IMAGE_BLOCKS)
		return false;
	if (blocknr >= g->total_blocks || nblocks > g->total_blocks - blocknr)
		return false;
	return blocknr + nblocks <= g->journal_block || blocknr >= g->journal_block + g->journal_blocks;
}

/* ---- Device I/O, with the test hook ------------------------------------ */

static int jio_fault(struct csv_journal *j)
{
	if (j->fail_after < 0)
		return 0;
	if (j->fail_after == 0)
		return -EIO;
	j->fail_after--;
	return 0;
}

static int jio_write(struct csv_journal *j, uint64_t blocknr, uint32_t nblocks, const void *buf)
{
	int r = jio_fault(j);
	if (r < 0)
		return r;
	return volume_write_raw(j->v, blocknr, nblocks, buf);
}

static int jio_flush(struct csv_journal *j)
{
	int r = jio_fault(j);
	if (r < 0)
		return r;
	return blockdev_flush(j->v->bd);
}

/* ---- Superblock --------------------------------------------------------- */

static void super_encode(const struct csv_volume *v, uint64_t head_lsn, uint64_t head_offset,
			 struct csv_d_journal_super *s)
{
	memset(s, 0, sizeof(*s));
	s->log_blocks = cpu_to_le64(v->g.journal_blocks - 1);
	s->head_lsn = cpu_to_le64(head_lsn);
	s->head_offset = cpu_to_le64(head_offset);
	meta_seal(s, sizeof(*s), CSV_MAGIC_JSUPER, v->g.journal_block, v->g.uuid, head_lsn);
}

int journal_format(struct csv_volume *v)
{
	struct csv_d_journal_super s;

	if (v->g.journal_blocks < 3)
		return -EUCLEAN;
	super_encode(v, 1, 0, &s);
	int r = volume_write_raw(v, v->g.journal_block, 1, &s);
	if (r < 0)
		return r;
	return blockdev_flush(v->bd);
}

static int super_decode(const struct csv_volume *v, const struct csv_d_journal_super *s,
			uint64_t *ret_lsn, uint64_t *ret_offset)
{
	int r = meta_verify(s, sizeof(*s), CSV_MAGIC_JSUPER, v->g.journal_block, v->g.uuid, NULL);
	if (r < 0)
		return r;
	uint64_t log_blocks = le64_to_cpu(s->log_blocks);
	uint64_t head_lsn = le64_to_cpu(s->head_lsn);
	uint64_t head_offset = le64_to_cpu(s->head_offset);
	if (log_blocks != v->g.journal_blocks - 1 || head_offset >= log_blocks ||
	    head_lsn == 0 || head_lsn > UINT64_MAX / 2 || le64_to_cpu(s->h.lsn) != head_lsn ||
	    le32_to_cpu(s->flags) != 0 || le32_to_cpu(s->reserved0) != 0)
		return -EUCLEAN;
	*ret_lsn = head_lsn;
	*ret_offset = head_offset;
	return 0;
}

/* ---- Reading the log ---------------------------------------------------- */

/* A read window over the log, so that a scan issues large reads. */
struct log_reader {
	uint64_t win_off;
	uint64_t win_n;
	uint8_t *buf;
};

static int log_read(struct csv_journal *j, struct log_reader *lr, uint64_t off, uint64_t n, void *dst)
{
	uint8_t *p = dst;

	while (n > 0) {
		if (lr->win_n && off >= lr->win_off && off < lr->win_off + lr->win_n) {
			uint64_t k = MIN(n, lr->win_off + lr->win_n - off);
			memcpy(p, lr->buf + (off - lr->win_off) * CSV_BLOCK_SIZE, k * CSV_BLOCK_SIZE);
			p += k * CSV_BLOCK_SIZE;
			n -= k;
			off = (off + k) % j->log_blocks;
		} else {
			uint64_t k = MIN((uint64_t)JOURNAL_IO_BLOCKS, j->log_blocks - off);
			lr->win_n = 0;
			int r = volume_read_raw(j->v, j->log_start + off, (uint32_t)k, lr->buf);
			if (r < 0)
				return r;
			lr->win_off = off;
			lr->win_n = k;
		}
	}
	return 0;
}

/* Reads and verifies the transaction with LSN lsn at offset off, using at
 * most room blocks. Returns 1 and its images and record when all its
 * descriptors, images and commit verify, 0 when they do not (the end of
 * the log), or a negative errno when the device fails. */
static int scan_txn(struct csv_journal *j, struct log_reader *lr, uint64_t off, uint64_t lsn,
		    uint64_t room, struct jimage **ret_imgs, size_t *ret_nimgs, struct jrec *ret_rec)
{
	const struct csv_volume *v = j->v;
	_cleanup_free_ struct csv_d_journal_desc *d = malloc(sizeof(*d));
	struct jimage *imgs = NULL;
	size_t nimgs = 0, cap = 0;
	uint64_t used = 0, pos = off, total_blocks = 0;
	uint32_t last_crc = 0;
	int r = 0;

	if (!d)
		return -ENOMEM;
	for (uint32_t index = 0;; index++) {
		if (used + 1 > room)
			goto invalid;
		r = log_read(j, lr, pos, 1, d);
		if (r < 0)
			goto fail;
		if (meta_verify(d, sizeof(*d), CSV_MAGIC_JDESC, j->log_start + pos, v->g.uuid, NULL) < 0 ||
		    le64_to_cpu(d->h.lsn) != lsn || le32_to_cpu(d->index) != index ||
		    (le32_to_cpu(d->flags) & ~(uint32_t)CSV_JDESC_MORE) != 0)
			goto invalid;
		uint32_t count = le32_to_cpu(d->count);
		if (count > CSV_JOURNAL_TAGS || (count == 0 && (index > 0 || (le32_to_cpu(d->flags) & CSV_JDESC_MORE))))
			goto invalid;
		uint64_t sum = 0;
		for (uint32_t i = 0; i < count; i++) {
			uint64_t b = le64_to_cpu(d->tags[i].blocknr);
			uint32_t nb = le32_to_cpu(d->tags[i].nblocks);
			if (!home_ok(v, b, nb))
				goto invalid;
			sum += nb;
		}
		if (sum != le32_to_cpu(d->image_blocks))
			goto invalid;
		used++;
		pos = (pos + 1) % j->log_blocks;
		if (used + sum > room)
			goto invalid;
		r = array_reserve(&imgs, &cap, nimgs + count, sizeof(*imgs));
		if (r < 0)
			goto fail;
		for (uint32_t i = 0; i < count; i++) {
			struct jimage *im = &imgs[nimgs];
			im->blocknr = le64_to_cpu(d->tags[i].blocknr);
			im->nblocks = le32_to_cpu(d->tags[i].nblocks);
			im->crc = le32_to_cpu(d->tags[i].crc);
			im->lsn = lsn;
			im->data = malloc((size_t)im->nblocks * CSV_BLOCK_SIZE);
			if (!im->data) {
				r = -ENOMEM;
				goto fail;
			}
			nimgs++;
			r = log_read(j, lr, pos, im->nblocks, im->data);
			if (r < 0)
				goto fail;
			const struct csv_d_blkhdr *h = im->data;
			if (crc32c(im->data, (size_t)im->nblocks * CSV_BLOCK_SIZE) != im->crc ||
			    le64_to_cpu(h->blocknr) != im->blocknr || le64_to_cpu(h->lsn) != lsn ||
			    memcmp(h->uuid, v->g.uuid, 16) != 0)
				goto invalid;
			pos = (pos + im->nblocks) % j->log_blocks;
			used += im->nblocks;
		}
		total_blocks += sum;
		last_crc = le32_to_cpu(d->h.crc);
		if (!(le32_to_cpu(d->flags) & CSV_JDESC_MORE))
			break;
	}

	if (used + 1 > room)
		goto invalid;
	struct csv_d_journal_commit *c = (struct csv_d_journal_commit *)d;
	r = log_read(j, lr, pos, 1, c);
	if (r < 0)
		goto fail;
	if (meta_verify(c, sizeof(*c), CSV_MAGIC_JCOMMIT, j->log_start + pos, v->g.uuid, NULL) < 0 ||
	    le64_to_cpu(c->h.lsn) != lsn || le32_to_cpu(c->desc_crc) != last_crc ||
	    le32_to_cpu(c->image_blocks) != total_blocks)
		goto invalid;
	used++;

	*ret_rec = (struct jrec){
		.lsn = lsn,
		.offset = off,
		.commit_time_ns = le64_to_cpu(c->commit_time_ns),
		.nimages = (uint32_t)nimgs,
		.nblocks = (uint32_t)total_blocks,
		.log_blocks = used,
	};
	*ret_imgs = imgs;
	*ret_nimgs = nimgs;
	return 1;

invalid:
	r = 0;
fail:
	images_free(imgs, nimgs);
	free(imgs);
	return r;
}

/* Records the images of a committed transaction as the newest of their
 * blocks, taking their buffers. Lock held (or not yet shared); room
 * reserved with pend_reserve(). */
static void pend_take(struct csv_journal *j, struct jimage *imgs, size_t n, const struct jrec *rec)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t idx;
		if (blkmap_find(&j->pend_index, imgs[i].blocknr, &idx)) {
			free(j->pend[idx].data);
			j->pend[idx] = imgs[i];
		} else {
			idx = (uint32_t)j->npend++;
			j->pend[idx] = imgs[i];
			blkmap_set(&j->pend_index, imgs[i].blocknr, idx);
		}
		imgs[i].data = NULL;
	}
	j->recs[j->nrecs++] = *rec;
}

static int pend_reserve(struct csv_journal *j, size_t more_images, size_t more_txns)
{
	if (more_images > UINT32_MAX - j->npend)
		return -ENOMEM;
	int r = array_reserve(&j->pend, &j->cappend, j->npend + more_images, sizeof(*j->pend));
	if (r < 0)
		return r;
	r = blkmap_reserve(&j->pend_index, j->npend + more_images);
	if (r < 0)
		return r;
	return array_reserve(&j->recs, &j->caprecs, j->nrecs + more_txns, sizeof(*j->recs));
}

static void pend_clear(struct csv_journal *j)
{
	for (size_t i = 0; i < j->npend; i++)
		free(j->pend[i].data);
	j->npend = 0;
	blkmap_clear(&j->pend_index);
	j->nrecs = 0;
}

/* Finds the committed transactions from the head. */
static int log_scan(struct csv_journal *j)
{
	struct log_reader lr = { .buf = j->iobuf };
	uint64_t off = j->head_offset, lsn = j->head_lsn, used = 0;

	for (;;) {
		struct jimage *imgs = NULL;
		size_t nimgs = 0;
		struct jrec rec;
		int r = scan_txn(j, &lr, off, lsn, j->log_blocks - used, &imgs, &nimgs, &rec);
		if (r < 0)
			return r;
		if (r == 0)
			break;
		r = pend_reserve(j, nimgs, 1);
		if (r < 0) {
			images_free(imgs, nimgs);
			free(imgs);
			return r;
		}
		pend_take(j, imgs, nimgs, &rec);
		free(imgs);
		used += rec.log_blocks;
		off = (off + rec.log_blocks) % j->log_blocks;
		lsn++;
	}
	j->next_lsn = j->begin_lsn = lsn;
	j->tail_offset = off;
	j->used_blocks = used;
	return 0;
}

/* ---- Open and close ----------------------------------------------------- */

void journal_close(struct csv_journal *j)
{
	if (!j)
		return;
	while (j->queue) {
		struct csv_txn *t = j->queue;
		j->queue = t->next;
		txn_free(t); /* markers only: a committer is never left waiting here */
	}
	pend_clear(j);
	free(j->pend);
	blkmap_free(&j->pend_index);
	free(j->recs);
	free(j->iobuf);
	pthread_cond_destroy(&j->cond);
	pthread_mutex_destroy(&j->lock);
	free(j);
}

int journal_open(struct csv_volume *v, struct csv_journal **ret)
{
	_cleanup_free_ struct csv_d_journal_super *s = malloc(sizeof(*s));
	uint64_t head_lsn, head_offset;
	int r;

	if (!s)
		return -ENOMEM;
	if (v->g.journal_blocks < 3)
		return -EUCLEAN;
	r = volume_read_raw(v, v->g.journal_block, 1, s);
	if (r < 0)
		return r;
	r = super_decode(v, s, &head_lsn, &head_offset);
	if (r < 0)
		return r;

	struct csv_journal *j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->v = v;
	j->log_start = v->g.journal_block + 1;
	j->log_blocks = v->g.journal_blocks - 1;
	j->head_lsn = head_lsn;
	j->head_offset = head_offset;
	j->fail_after = -1;
	pthread_mutex_init(&j->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&j->cond, &ca);
	pthread_condattr_destroy(&ca);
	j->iobuf = malloc((size_t)JOURNAL_IO_BLOCKS * CSV_BLOCK_SIZE);
	if (!j->iobuf) {
		journal_close(j);
		return -ENOMEM;
	}
	r = log_scan(j);
	if (r < 0) {
		journal_close(j);
		return r;
	}
	*ret = j;
	return 0;
}

/* ---- Errors and the I/O token ------------------------------------------ */

/* Marks a transaction the leader is finished with; frees markers. */
static void txn_finish_locked(struct csv_txn *t, int result)
{
	if (t->marker) {
		txn_free(t);
		return;
	}
	t->result = result;
	t->done = true;
}

/* The journal stops writing; every queued transaction fails. */
static void set_error_locked(struct csv_journal *j, int r)
{
	if (!j->error)
		j->error = r;
	while (j->queue) {
		struct csv_txn *t = j->queue;
		j->queue = t->next;
		txn_finish_locked(t, j->error);
	}
	pthread_cond_broadcast(&j->cond);
}

static int acquire_locked(struct csv_journal *j)
{
	while (j->busy && !j->error)
		pthread_cond_wait(&j->cond, &j->lock);
	if (j->error)
		return j->error;
	j->busy = true;
	return 0;
}

static void release_locked(struct csv_journal *j)
{
	j->busy = false;
	pthread_cond_broadcast(&j->cond);
}

/* ---- Checkpoint --------------------------------------------------------- */

static int image_cmp(const void *a, const void *b)
{
	const struct jimage *x = *(const struct jimage *const *)a, *y = *(const struct jimage *const *)b;
	if (x->lsn != y->lsn)
		return x->lsn < y->lsn ? -1 : 1;
	if (x->blocknr != y->blocknr)
		return x->blocknr < y->blocknr ? -1 : 1;
	return 0;
}

/* Writes home every pending image, flushes, moves the superblock to the
 * end of the log with head_lsn skip LSNs ahead, flushes. Busy thread,
 * lock not held. */
static int checkpoint_io(struct csv_journal *j, uint64_t skip)
{
	struct csv_d_journal_super s;
	int r;

	if (j->used_blocks == 0 && skip == 0)
		return 0;
	/* Nothing goes home before its transaction is durable in the log. */
	if (j->unflushed) {
		r = jio_flush(j);
		if (r < 0)
			return r;
		j->unflushed = false;
	}
	if (j->npend > 0) {
		_cleanup_free_ struct jimage **order = malloc(j->npend * sizeof(*order));
		if (!order)
			return -ENOMEM;
		for (size_t i = 0; i < j->npend; i++)
			order[i] = &j->pend[i];
		qsort(order, j->npend, sizeof(*order), image_cmp);
		for (size_t i = 0; i < j->npend; i++) {
			r = jio_write(j, order[i]->blocknr, order[i]->nblocks, order[i]->data);
			if (r < 0)
				return r;
		}
		r = jio_flush(j);
		if (r < 0)
			return r;
	}
	uint64_t head_lsn = j->next_lsn + skip;
	super_encode(j->v, head_lsn, j->tail_offset, &s);
	r = jio_write(j, j->v->g.journal_block, 1, &s);
	if (r < 0)
		return r;
	r = jio_flush(j);
	if (r < 0)
		return r;

	pthread_mutex_lock(&j->lock);
	pend_clear(j);
	j->used_blocks = 0;
	j->head_lsn = head_lsn;
	j->head_offset = j->tail_offset;
	if (skip) {
		j->next_lsn = head_lsn;
		if (j->begin_lsn < head_lsn)
			j->begin_lsn = head_lsn;
	}
	pthread_mutex_unlock(&j->lock);
	return 0;
}

int journal_checkpoint(struct csv_journal *j)
{
	pthread_mutex_lock(&j->lock);
	int r = acquire_locked(j);
	if (r < 0) {
		pthread_mutex_unlock(&j->lock);
		return r;
	}
	pthread_mutex_unlock(&j->lock);
	r = checkpoint_io(j, 0);
	pthread_mutex_lock(&j->lock);
	if (r < 0)
		set_error_locked(j, r);
	release_locked(j);
	pthread_mutex_unlock(&j->lock);
	return r;
}

int journal_replay(struct csv_journal *j, uint64_t *ret_txns, uint64_t *ret_blocks)
{
	uint64_t txns, blocks = 0;

	pthread_mutex_lock(&j->lock);
	int r = acquire_locked(j);
	if (r < 0) {
		pthread_mutex_unlock(&j->lock);
		return r;
	}
	txns = j->nrecs;
	for (size_t i = 0; i < j->nrecs; i++)
		blocks += j->recs[i].nblocks;
	pthread_mutex_unlock(&j->lock);
	r = checkpoint_io(j, 0);
	pthread_mutex_lock(&j->lock);
	if (r < 0)
		set_error_locked(j, r);
	release_locked(j);
	pthread_mutex_unlock(&j->lock);
	if (r < 0)
		return r;
	if (ret_txns)
		*ret_txns = txns;
	if (ret_blocks)
		*ret_blocks = blocks;
	return 0;
}

/* The first begin after open: checkpoint whatever the log holds and move
 * the LSNs past anything a crashed session may have left in the free part
 * of the log (at most log_blocks / 2 transactions, two blocks each at
 * least). Lock held. */
static int start_locked(struct csv_journal *j)
{
	while (!j->started) {
		int r = acquire_locked(j);
		if (r < 0)
			return r;
		if (j->started) {
			release_locked(j);
			break;
		}
		pthread_mutex_unlock(&j->lock);
		r = checkpoint_io(j, j->log_blocks);
		pthread_mutex_lock(&j->lock);
		if (r < 0) {
			set_error_locked(j, r);
			release_locked(j);
			return r;
		}
		j->started = true;
		release_locked(j);
	}
	return 0;
}

/* ---- Transactions ------------------------------------------------------- */

int journal_txn_begin(struct csv_journal *j, struct csv_txn **ret)
{
	struct csv_txn *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	pthread_mutex_lock(&j->lock);
	int r = start_locked(j);
	if (r == 0 && j->error)
		r = j->error;
	if (r < 0) {
		pthread_mutex_unlock(&j->lock);
		free(t);
		return r;
	}
	t->j = j;
	t->lsn = j->begin_lsn++;
	j->open_txns++;
	pthread_mutex_unlock(&j->lock);
	*ret = t;
	return 0;
}

uint64_t journal_txn_lsn(const struct csv_txn *t)
{
	return t->lsn;
}

int journal_txn_add(struct csv_txn *t, uint64_t blocknr, uint32_t nblocks, uint32_t magic, void *buf)
{
	const struct csv_volume *v = t->j->v;
	size_t len = (size_t)nblocks * CSV_BLOCK_SIZE;
	uint32_t idx;
	bool found;

	if (!buf || !home_ok(v, blocknr, nblocks))
		return -EINVAL;
	found = blkmap_find(&t->index, blocknr, &idx);
	if (!found) {
		if (t->nimgs >= UINT32_MAX)
			return -E2BIG;
		int r = array_reserve(&t->imgs, &t->cap, t->nimgs + 1, sizeof(*t->imgs));
		if (r < 0)
			return r;
		r = blkmap_reserve(&t->index, t->nimgs + 1);
		if (r < 0)
			return r;
	}
	void *data = malloc(len);
	if (!data)
		return -ENOMEM;

	meta_seal(buf, len, magic, blocknr, v->g.uuid, t->lsn);
	memcpy(data, buf, len);
	struct jimage im = {
		.blocknr = blocknr,
		.lsn = t->lsn,
		.nblocks = nblocks,
		.crc = crc32c(data, len),
		.data = data,
	};
	if (found) {
		t->image_blocks -= t->imgs[idx].nblocks;
		free(t->imgs[idx].data);
		t->imgs[idx] = im;
	} else {
		idx = (uint32_t)t->nimgs++;
		t->imgs[idx] = im;
		blkmap_set(&t->index, blocknr, idx);
	}
	t->image_blocks += nblocks;
	return 0;
}

static void enqueue_locked(struct csv_journal *j, struct csv_txn *t)
{
	struct csv_txn **p = &j->queue;
	while (*p && (*p)->lsn < t->lsn)
		p = &(*p)->next;
	t->next = *p;
	*p = t;
}

/* Gives up the LSN of a transaction that will not be written: the newest
 * LSN handed out is handed out again, any other becomes an empty
 * transaction in the queue. Takes t. Lock held. */
static void drop_lsn_locked(struct csv_journal *j, struct csv_txn *t)
{
	txn_clear(t);
	if (j->error) {
		txn_free(t);
		return;
	}
	if (t->lsn + 1 == j->begin_lsn) {
		j->begin_lsn--;
		txn_free(t);
		/* Markers that are now the newest go the same way. */
		for (;;) {
			struct csv_txn **p = &j->queue;
			if (!*p)
				break;
			while ((*p)->next)
				p = &(*p)->next;
			if (!(*p)->marker || (*p)->lsn + 1 != j->begin_lsn)
				break;
			txn_free(*p);
			*p = NULL;
			j->begin_lsn--;
		}
		return;
	}
	t->marker = true;
	enqueue_locked(j, t);
	pthread_cond_broadcast(&j->cond);
}

void journal_txn_abort(struct csv_txn *t)
{
	if (!t)
		return;
	struct csv_journal *j = t->j;
	pthread_mutex_lock(&j->lock);
	j->open_txns--;
	drop_lsn_locked(j, t);
	pthread_cond_broadcast(&j->cond);
	pthread_mutex_unlock(&j->lock);
}

/* Appends blocks to the log through the staging buffer. */
struct log_writer {
	uint64_t start;  /* log offset of buf[0] */
	uint64_t n;      /* blocks staged */
	uint64_t pos;    /* log offset of the next block */
	uint8_t *buf;
};

static int lw_drain(struct csv_journal *j, struct log_writer *lw)
{
	if (lw->n == 0)
		return 0;
	int r = jio_write(j, j->log_start + lw->start, (uint32_t)lw->n, lw->buf);
	lw->n = 0;
	return r;
}

static int lw_put(struct csv_journal *j, struct log_writer *lw, const void *block)
{
	if (lw->n == 0)
		lw->start = lw->pos;
	memcpy(lw->buf + lw->n * CSV_BLOCK_SIZE, block, CSV_BLOCK_SIZE);
	lw->n++;
	lw->pos = (lw->pos + 1) % j->log_blocks;
	if (lw->n == JOURNAL_IO_BLOCKS || lw->pos == 0)
		return lw_drain(j, lw);
	return 0;
}

/* Stages the descriptors, images and commit of t at lw->pos. */
static int write_txn(struct csv_journal *j, struct log_writer *lw, struct csv_txn *t, uint64_t time_ns,
		     struct csv_d_journal_desc *d)
{
	const struct csv_volume *v = j->v;
	uint64_t ndesc = txn_ndesc(t->nimgs);
	uint32_t last_crc = 0;
	size_t i = 0;
	int r;

	t->rec = (struct jrec){
		.lsn = t->lsn,
		.offset = lw->pos,
		.commit_time_ns = time_ns,
		.nimages = (uint32_t)t->nimgs,
		.nblocks = (uint32_t)t->image_blocks,
		.log_blocks = txn_log_blocks(t),
	};
	for (uint64_t k = 0; k < ndesc; k++) {
		size_t count = MIN(t->nimgs - i, (size_t)CSV_JOURNAL_TAGS);
		uint32_t blocks = 0;
		memset(d, 0, sizeof(*d));
		for (size_t n = 0; n < count; n++) {
			const struct jimage *im = &t->imgs[i + n];
			d->tags[n].blocknr = cpu_to_le64(im->blocknr);
			d->tags[n].nblocks = cpu_to_le32(im->nblocks);
			d->tags[n].crc = cpu_to_le32(im->crc);
			blocks += im->nblocks;
		}
		d->count = cpu_to_le32((uint32_t)count);
		d->image_blocks = cpu_to_le32(blocks);
		d->flags = cpu_to_le32(k + 1 < ndesc ? CSV_JDESC_MORE : 0);
		d->index = cpu_to_le32((uint32_t)k);
		meta_seal(d, sizeof(*d), CSV_MAGIC_JDESC, j->log_start + lw->pos, v->g.uuid, t->lsn);
		last_crc = le32_to_cpu(d->h.crc);
		r = lw_put(j, lw, d);
		if (r < 0)
			return r;
		for (size_t n = 0; n < count; n++) {
			const struct jimage *im = &t->imgs[i + n];
			for (uint32_t b = 0; b < im->nblocks; b++) {
				r = lw_put(j, lw, (const uint8_t *)im->data + (size_t)b * CSV_BLOCK_SIZE);
				if (r < 0)
					return r;
			}
		}
		i += count;
	}
	struct csv_d_journal_commit *c = (struct csv_d_journal_commit *)d;
	memset(c, 0, sizeof(*c));
	c->desc_crc = cpu_to_le32(last_crc);
	c->image_blocks = cpu_to_le32((uint32_t)t->image_blocks);
	c->commit_time_ns = cpu_to_le64(time_ns);
	meta_seal(c, sizeof(*c), CSV_MAGIC_JCOMMIT, j->log_start + lw->pos, v->g.uuid, t->lsn);
	return lw_put(j, lw, c);
}

/* Writes the batch (consecutive LSNs from next_lsn) in groups that fit the
 * free part of the log, one flush per group, checkpointing when the next
 * transaction does not fit. Transactions are finished as their group
 * becomes durable; *batchp is left at the first one that is not. Busy
 * thread, lock not held. */
static int write_batch(struct csv_journal *j, struct csv_txn **batchp)
{
	_cleanup_free_ struct csv_d_journal_desc *d = malloc(sizeof(*d));
	int r;

	if (!d)
		return -ENOMEM;
	while (*batchp) {
		struct csv_txn *first = *batchp, *end = first;
		uint64_t room = j->log_blocks - j->used_blocks, total = 0;
		size_t nimgs = 0, ntxns = 0;

		if (txn_log_blocks(first) > room) {
			r = checkpoint_io(j, 0);
			if (r < 0)
				return r;
			if (txn_log_blocks(first) > j->log_blocks - j->used_blocks)
				return -E2BIG; /* cannot happen: commit checked it */
			continue;
		}
		while (end && total + txn_log_blocks(end) <= room) {
			total += txn_log_blocks(end);
			nimgs += end->nimgs;
			ntxns++;
			end = end->next;
		}

		pthread_mutex_lock(&j->lock);
		r = pend_reserve(j, nimgs, ntxns);
		pthread_mutex_unlock(&j->lock);
		if (r < 0)
			return r;

		struct log_writer lw = { .pos = j->tail_offset, .buf = j->iobuf };
		uint64_t time_ns = clock_ns(CLOCK_REALTIME), start = clock_ns(CLOCK_MONOTONIC);
		for (struct csv_txn *t = first; t != end; t = t->next) {
			r = write_txn(j, &lw, t, time_ns, d);
			if (r < 0)
				return r;
		}
		r = lw_drain(j, &lw);
		if (r < 0)
			return r;
		if (j->defer_flush) {
			j->unflushed = true;
		} else {
			r = jio_flush(j);
			if (r < 0)
				return r;
		}
		uint64_t took = clock_ns(CLOCK_MONOTONIC) - start;

		pthread_mutex_lock(&j->lock);
		j->avg_write_ns = (j->avg_write_ns * 7 + took) / 8;
		for (struct csv_txn *t = first, *next; t != end; t = next) {
			next = t->next;
			pend_take(j, t->imgs, t->nimgs, &t->rec);
			txn_clear(t);
			txn_finish_locked(t, 0);
		}
		j->used_blocks += total;
		j->tail_offset = lw.pos;
		j->next_lsn += ntxns;
		*batchp = end;
		pthread_cond_broadcast(&j->cond);
		pthread_mutex_unlock(&j->lock);
	}
	return 0;
}

/* Becomes the leader: takes every queued transaction with consecutive LSNs
 * from next_lsn and writes them. Lock held; dropped during the I/O. */
static void lead_locked(struct csv_journal *j)
{
	struct csv_txn *batch = j->queue, *last = batch;

	j->busy = true;
	j->last_batch = !last->marker;
	while (last->next && last->next->lsn == last->lsn + 1) {
		last = last->next;
		j->last_batch += !last->marker;
	}
	j->queue = last->next;
	last->next = NULL;
	pthread_mutex_unlock(&j->lock);

	int r = write_batch(j, &batch);

	pthread_mutex_lock(&j->lock);
	if (r < 0) {
		while (batch) {
			struct csv_txn *t = batch;
			batch = t->next;
			txn_finish_locked(t, r);
		}
		set_error_locked(j, r);
	}
	release_locked(j);
}

/* Before leading, when other threads commit too, gives them a moment to
 * join the batch (like jbd2's batch time): about as long as a log write
 * takes, or until no transaction is open and the queue holds as many as
 * the last batch. Lock held. */
static void wait_for_siblings_locked(struct csv_journal *j)
{
	uint64_t wait = MIN(MAX(j->avg_write_ns, JOURNAL_BATCH_WAIT_MIN_NS), JOURNAL_BATCH_WAIT_MAX_NS);
	uint64_t deadline = clock_ns(CLOCK_MONOTONIC) + wait;
	struct timespec ts = {
		.tv_sec = (time_t)(deadline / 1000000000ull),
		.tv_nsec = (long)(deadline % 1000000000ull),
	};

	while (!j->error && !j->busy) {
		uint64_t queued = 0;
		for (const struct csv_txn *q = j->queue; q; q = q->next)
			queued += !q->marker;
		if (j->open_txns == 0 && queued >= j->last_batch)
			break;
		if (pthread_cond_timedwait(&j->cond, &j->lock, &ts) == ETIMEDOUT)
			break;
	}
}

int journal_txn_commit(struct csv_txn *t)
{
	struct csv_journal *j = t->j;
	bool waited = false;
	int r;

	pthread_mutex_lock(&j->lock);
	j->open_txns--;
	if (j->error) {
		r = j->error;
		drop_lsn_locked(j, t);
		pthread_mutex_unlock(&j->lock);
		return r;
	}
	if (txn_log_blocks(t) > j->log_blocks || t->image_blocks > UINT32_MAX) {
		drop_lsn_locked(j, t);
		pthread_mutex_unlock(&j->lock);
		return -E2BIG;
	}
	enqueue_locked(j, t);
	pthread_cond_broadcast(&j->cond);
	pthread_t self = pthread_self();
	bool others = j->open_txns > 0 || j->last_batch > 1 ||
		      (j->have_committer && !pthread_equal(j->last_committer, self));
	j->last_committer = self;
	j->have_committer = true;
	while (!t->done) {
		if (!j->busy && !j->error && j->queue && j->queue->lsn == j->next_lsn) {
			if (!waited && others) {
				waited = true;
				wait_for_siblings_locked(j);
				continue;
			}
			lead_locked(j);
		} else {
			pthread_cond_wait(&j->cond, &j->lock);
		}
	}
	r = t->result;
	pthread_mutex_unlock(&j->lock);
	txn_free(t);
	return r;
}

void journal_set_deferred_flush(struct csv_journal *j, bool on)
{
	pthread_mutex_lock(&j->lock);
	j->defer_flush = on;
	pthread_mutex_unlock(&j->lock);
}

int journal_sync(struct csv_journal *j)
{
	pthread_mutex_lock(&j->lock);
	int r = acquire_locked(j);
	if (r < 0) {
		pthread_mutex_unlock(&j->lock);
		return r;
	}
	bool need = j->unflushed;
	pthread_mutex_unlock(&j->lock);
	r = need ? jio_flush(j) : 0;
	pthread_mutex_lock(&j->lock);
	if (r < 0)
		set_error_locked(j, r);
	else
		j->unflushed = false;
	release_locked(j);
	pthread_mutex_unlock(&j->lock);
	return r;
}

/* ---- Queries ------------------------------------------------------------ */

bool journal_needs_replay(const struct csv_journal *j)
{
	struct csv_journal *mj = (struct csv_journal *)j;
	pthread_mutex_lock(&mj->lock);
	bool r = mj->nrecs > 0;
	pthread_mutex_unlock(&mj->lock);
	return r;
}

void journal_get_info(struct csv_journal *j, struct journal_info *ret)
{
	pthread_mutex_lock(&j->lock);
	*ret = (struct journal_info){
		.head_lsn = j->head_lsn,
		.head_offset = j->head_offset,
		.next_lsn = j->next_lsn,
		.tail_offset = j->tail_offset,
		.log_blocks = j->log_blocks,
		.used_blocks = j->used_blocks,
		.pending_txns = j->nrecs,
	};
	pthread_mutex_unlock(&j->lock);
}

int journal_scan(struct csv_journal *j,
		 int (*fn)(void *ud, uint64_t lsn, uint64_t offset, uint32_t nimages,
			   uint32_t nblocks, uint64_t commit_time_ns),
		 void *ud)
{
	pthread_mutex_lock(&j->lock);
	size_t n = j->nrecs;
	_cleanup_free_ struct jrec *recs = malloc(MAX(n, (size_t)1) * sizeof(*recs));
	if (!recs) {
		pthread_mutex_unlock(&j->lock);
		return -ENOMEM;
	}
	if (n)
		memcpy(recs, j->recs, n * sizeof(*recs));
	pthread_mutex_unlock(&j->lock);

	for (size_t i = 0; i < n; i++) {
		int r = fn(ud, recs[i].lsn, recs[i].offset, recs[i].nimages, recs[i].nblocks,
			   recs[i].commit_time_ns);
		if (r != 0)
			return r;
	}
	return 0;
}

int journal_lookup(struct csv_journal *j, uint64_t blocknr, void *buf, uint32_t nblocks)
{
	uint32_t idx;
	int r = 0;

	pthread_mutex_lock(&j->lock);
	if (!blkmap_find(&j->pend_index, blocknr, &idx))
		r = -ENOENT;
	else if (j->pend[idx].nblocks != nblocks)
		r = -EINVAL;
	else
		memcpy(buf, j->pend[idx].data, (size_t)nblocks * CSV_BLOCK_SIZE);
	pthread_mutex_unlock(&j->lock);
	return r;
}

void journal_test_fail_after(struct csv_journal *j, int64_t ios)
{
	pthread_mutex_lock(&j->lock);
	j->fail_after = ios < 0 ? -1 : ios;
	pthread_mutex_unlock(&j->lock);
}
