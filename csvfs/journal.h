/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The metadata journal: a write-ahead log of physical block images, like
 * jbd2. Only the coordinator writes it; mkfs formats it; fsck and the
 * inspector open it to replay or list it.
 *
 * On disk (format.h, "Journal"): block 0 of the journal region is the
 * superblock (head_lsn, head_offset); the other journal_blocks - 1 blocks
 * are a circular log. A transaction with LSN n is one or more descriptor
 * blocks, each followed by the images its tags list (CSV_JDESC_MORE when
 * another descriptor of the same LSN follows), then one commit block whose
 * desc_crc is the crc field of the last descriptor. Every descriptor and
 * commit block is sealed with its own absolute block number, the volume
 * UUID and LSN n; each image is the metadata block or node (1..16 blocks)
 * exactly as it will be written home, sealed with LSN n when it was added,
 * and each tag's crc is CRC32C (seed ~0, final inversion) of that image.
 *
 * Layout decisions:
 * - Wrapping: the log wraps block by block. Block k of a transaction that
 *   starts at offset o lives at offset (o + k) % log_blocks, so a
 *   transaction (even one image of it) may continue at offset 0; there is
 *   no padding and no wrap marker. A transaction may use the whole log
 *   (descriptors + images + commit <= log_blocks); a larger one fails
 *   with -E2BIG.
 * - LSN order: a transaction's LSN is fixed at journal_txn_begin(), and
 *   transactions may be open concurrently. Their log writes are ordered by
 *   LSN: journal_txn_commit() of LSN n waits until every LSN below n has
 *   been committed (written in the same or an earlier batch) or aborted.
 *   So a thread must not commit a transaction while it still holds an
 *   older open one (that waits forever). An aborted LSN (journal_txn_abort,
 *   or a commit that failed with -E2BIG) leaves no gap: if it is the newest
 *   LSN handed out it is simply handed out again, otherwise an empty
 *   transaction (one descriptor with no tags, and a commit) takes its place
 *   in the log.
 * - New LSNs after open: a crash can leave blocks of transactions that
 *   never committed in the free part of the log, with the LSNs the next
 *   transactions would use. So that none of them can ever be mistaken for
 *   a new transaction, the first journal_txn_begin() after journal_open()
 *   checkpoints what the log holds and moves head_lsn log_blocks LSNs
 *   ahead (one superblock write and flush). LSNs only grow; they are not
 *   dense across mounts (a fresh journal's first transaction has LSN
 *   1 + log_blocks).
 * - Group commit: committers queue their transactions; one of them (the
 *   leader) writes every queued transaction with consecutive LSNs and
 *   issues one flush for all of them, while the others wait on a condition
 *   variable. When other threads commit too, the leader first waits a
 *   moment for them to join (about the time a log write takes, 50 us to
 *   5 ms, less when every open transaction has been queued), like jbd2's
 *   batch time. When the log lacks room the leader checkpoints first.
 * - Checkpoint: the newest image of every block committed since the last
 *   checkpoint is written home (in LSN order), flush, the superblock moves
 *   to the end of the log, flush. Replay is the same operation on what
 *   journal_open() found: applying a transaction twice is harmless, so a
 *   crash during replay or checkpoint is repaired by replaying again.
 * - The superblock's changing fields (crc, lsn, head_lsn, head_offset) all
 *   lie in its first 512 bytes and the rest never changes, so a write of it
 *   torn at a sector boundary leaves either the old or the new superblock.
 *
 * Committed images not yet checkpointed are kept in memory (the newest per
 * block number, at most the size of the log) to answer journal_lookup()
 * and to checkpoint without reading the log back.
 *
 * Limitations: there are no revoke records, so the caller must not let a
 * block that was journaled as metadata be written as file data (outside
 * the journal) until a checkpoint has passed the last transaction that
 * logged it. When one block number is journaled again with fewer blocks,
 * only the newer image is written home (the tail of the older one is not).
 *
 * Errors: functions return 0 or a negative errno. After a failed write or
 * flush the journal stops writing (like a jbd2 abort): every later begin,
 * commit, checkpoint and replay returns that error; close it and open it
 * again to recover from what is on disk.
 *
 * Threads: every function may be called from any thread, except that one
 * transaction is used by one thread at a time.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "volume.h"

struct csv_journal;
struct csv_txn;

struct journal_info {
	uint64_t head_lsn;     /* superblock: oldest transaction not checkpointed */
	uint64_t head_offset;  /* superblock: its first descriptor, blocks from the log start */
	uint64_t next_lsn;     /* LSN the next transaction written to the log carries */
	uint64_t tail_offset;  /* where it will start */
	uint64_t log_blocks;   /* blocks in the circular log (journal_blocks - 1) */
	uint64_t used_blocks;  /* from head to tail: committed, not yet checkpointed */
	uint64_t pending_txns; /* transactions in that span */
};

/* mkfs: writes a fresh superblock (head_lsn 1, head_offset 0) and flushes; does not touch the log blocks. */
int journal_format(struct csv_volume *v);

/* Reads and verifies the superblock (-EBADMSG, -EUCLEAN; no message: the caller reports) and finds the end of the log by scanning committed transactions from the head. Writes nothing. */
int journal_open(struct csv_volume *v, struct csv_journal **ret);

/* Frees the journal without writing anything (journal_checkpoint() first for a clean unmount); abort open transactions before. */
void journal_close(struct csv_journal *j);

/* True when committed transactions are not yet checkpointed (after open: the log needs replay). */
bool journal_needs_replay(const struct csv_journal *j);

/* Writes home every committed transaction not yet checkpointed, flushes, advances the superblock, flushes; returns how many transactions and image blocks (sum of their tags' nblocks) it applied. Idempotent. */
int journal_replay(struct csv_journal *j, uint64_t *ret_txns, uint64_t *ret_blocks);

/* Fills *ret with the superblock's head and the end of the log. */
void journal_get_info(struct csv_journal *j, struct journal_info *ret);

/* Calls fn for each committed transaction not yet checkpointed, oldest first (offset: its first descriptor; nblocks: image blocks); a non-zero return of fn stops the scan and is returned. */
int journal_scan(struct csv_journal *j,
		 int (*fn)(void *ud, uint64_t lsn, uint64_t offset, uint32_t nimages,
			   uint32_t nblocks, uint64_t commit_time_ns),
		 void *ud);

/* Opens a transaction and fixes its LSN (the first begin after open also moves the LSNs on: see above). */
int journal_txn_begin(struct csv_journal *j, struct csv_txn **ret);

/* The LSN the transaction's images are sealed with. */
uint64_t journal_txn_lsn(const struct csv_txn *t);

/* Seals buf (nblocks 1..16 blocks) with meta_seal(magic, blocknr, uuid, the txn's LSN) and copies it into the transaction; adding the same blocknr again replaces the image. -EINVAL for a bad size or a home outside the volume or inside the journal. */
int journal_txn_add(struct csv_txn *t, uint64_t blocknr, uint32_t nblocks, uint32_t magic, void *buf);

/* Writes the transaction to the log after every older LSN, with one flush shared by concurrent committers; durable on return (0), or with deferred flush after the next journal_sync(); -E2BIG when it is larger than the log. Frees t in every case. */
int journal_txn_commit(struct csv_txn *t);

/* With on, journal_txn_commit() writes the log but leaves the flush to
 * journal_sync(): a committed transaction is durable only after the next
 * sync (a single-threaded server answers the requests of a whole batch
 * after one flush). A checkpoint flushes the log before it writes home. */
void journal_set_deferred_flush(struct csv_journal *j, bool on);
/* Flushes the log written since the last flush: every transaction
 * committed before is durable on return (0). */
int journal_sync(struct csv_journal *j);

/* Drops an open transaction; its LSN leaves no gap in the log. Frees t. */
void journal_txn_abort(struct csv_txn *t);

/* Writes home the newest image of every block committed since the last checkpoint, flushes, advances the superblock to the end of the log, flushes. */
int journal_checkpoint(struct csv_journal *j);

/* Copies the newest committed image of blocknr not yet checkpointed into buf; -ENOENT if there is none, -EINVAL if it was journaled with another nblocks. */
int journal_lookup(struct csv_journal *j, uint64_t blocknr, void *buf, uint32_t nblocks);

/* Tests only: after `ios` more device writes or flushes by the journal, the next one and all later fail with -EIO, as if the power went there (negative: disarm). */
void journal_test_fail_after(struct csv_journal *j, int64_t ios);
