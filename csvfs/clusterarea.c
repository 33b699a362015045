/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "clusterarea.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta.h"
#include "util.h"

uint32_t clusterarea_magic(uint64_t index)
{
	if (index == 0)
		return CSV_MAGIC_LEASE;
	if (index == 1)
		return CSV_MAGIC_WITNESS;
	return index % 2 == 0 ? CSV_MAGIC_HEARTBEAT : CSV_MAGIC_MAILBOX;
}

const char *clusterarea_block_name(uint64_t index, char *buf, size_t len)
{
	if (index == 0)
		snprintf(buf, len, "coordinator lease");
	else if (index == 1)
		snprintf(buf, len, "disk witness");
	else
		snprintf(buf, len, "%s of node slot %" PRIu64,
			 index % 2 == 0 ? "heartbeat" : "mailbox", (index - 2) / 2);
	return buf;
}

int clusterarea_reset_block(struct csv_volume *v, uint64_t index)
{
	_cleanup_free_ void *buf = calloc(1, CSV_BLOCK_SIZE);
	if (!buf)
		return -ENOMEM;
	if (index >= v->g.cluster_area_blocks)
		return -EINVAL;
	return volume_write_meta(v, v->g.cluster_area_block + index, 1, clusterarea_magic(index), 0, buf);
}

int clusterarea_format(struct csv_volume *v)
{
	size_t n = v->g.cluster_area_blocks;
	_cleanup_free_ uint8_t *buf = calloc(n, CSV_BLOCK_SIZE);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		meta_seal(buf + i * CSV_BLOCK_SIZE, CSV_BLOCK_SIZE, clusterarea_magic(i),
			  v->g.cluster_area_block + i, v->g.uuid, 0);
	return volume_write_raw(v, v->g.cluster_area_block, (uint32_t)n, buf);
}

static int zero_tail(const uint8_t *p, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		if (p[i])
			return -EUCLEAN;
	return 0;
}

int clusterarea_verify_block(struct csv_volume *v, uint64_t index, void *buf, char *err, size_t errlen)
{
	enum meta_fault f;
	uint64_t b = v->g.cluster_area_block + index;
	int r = volume_read_raw(v, b, 1, buf);
	if (r < 0) {
		snprintf(err, errlen, "cannot read: %s", strerror(-r));
		return r;
	}
	r = meta_verify(buf, CSV_BLOCK_SIZE, clusterarea_magic(index), b, v->g.uuid, &f);
	if (r < 0) {
		snprintf(err, errlen, "%s", meta_fault_str(f));
		return r;
	}
	const uint8_t *p = buf;
	switch (clusterarea_magic(index)) {
	case CSV_MAGIC_LEASE: {
		const struct csv_d_lease *l = buf;
		if (le32_to_cpu(l->flags) || zero_tail(p, offsetof(struct csv_d_lease, reserved), CSV_BLOCK_SIZE))
			goto reserved;
		break;
	}
	case CSV_MAGIC_WITNESS: {
		const struct csv_d_witness *w = buf;
		if (le32_to_cpu(w->flags) || zero_tail(p, offsetof(struct csv_d_witness, reserved), CSV_BLOCK_SIZE))
			goto reserved;
		break;
	}
	case CSV_MAGIC_HEARTBEAT: {
		const struct csv_d_heartbeat *h = buf;
		if (le32_to_cpu(h->flags) & ~(uint32_t)(CSV_HB_RUNNING | CSV_HB_FENCED)) {
			snprintf(err, errlen, "unknown heartbeat flags 0x%x", le32_to_cpu(h->flags));
			return -EUCLEAN;
		}
		if (le32_to_cpu(h->reserved0) ||
		    zero_tail(p, offsetof(struct csv_d_heartbeat, reserved), CSV_BLOCK_SIZE))
			goto reserved;
		break;
	}
	case CSV_MAGIC_MAILBOX: {
		const struct csv_d_mailbox *m = buf;
		if (le32_to_cpu(m->request) > CSV_MAILBOX_FENCE) {
			snprintf(err, errlen, "unknown mailbox request %u", le32_to_cpu(m->request));
			return -EUCLEAN;
		}
		if (zero_tail(p, offsetof(struct csv_d_mailbox, reserved), CSV_BLOCK_SIZE))
			goto reserved;
		break;
	}
	}
	return 0;
reserved:
	snprintf(err, errlen, "reserved fields are not zero");
	return -EUCLEAN;
}

int clusterarea_take_epoch(struct csv_volume *v, uint32_t node, uint64_t *ret_epoch, char *err, size_t errlen)
{
	_cleanup_free_ struct csv_d_lease *l = calloc(1, CSV_BLOCK_SIZE);
	char why[256];
	if (!l)
		return -ENOMEM;
	int r = clusterarea_verify_block(v, 0, l, why, sizeof(why));
	if (r < 0) {
		snprintf(err, errlen, "the lease block is damaged (%s); fsck.csvfs repairs it", why);
		return r;
	}
	uint64_t epoch = le64_to_cpu(l->epoch) + 1;
	l->epoch = cpu_to_le64(epoch);
	l->holder_node = cpu_to_le32(node);
	l->renew_seq = cpu_to_le64(le64_to_cpu(l->renew_seq) + 1);
	l->wall_ns = cpu_to_le64(realtime_ns());
	r = volume_write_meta(v, v->g.cluster_area_block, 1, CSV_MAGIC_LEASE, le64_to_cpu(l->h.lsn), l);
	if (r == 0)
		r = blockdev_flush(v->bd);
	if (r < 0) {
		snprintf(err, errlen, "cannot write the lease block: %s", strerror(-r));
		return r;
	}
	*ret_epoch = epoch;
	return 0;
}

int clusterarea_read_epoch(struct csv_volume *v, uint64_t *ret_epoch, uint32_t *ret_holder, char *err,
			   size_t errlen)
{
	_cleanup_free_ struct csv_d_lease *l = calloc(1, CSV_BLOCK_SIZE);
	if (!l)
		return -ENOMEM;
	int r = clusterarea_verify_block(v, 0, l, err, errlen);
	if (r < 0)
		return r;
	*ret_epoch = le64_to_cpu(l->epoch);
	*ret_holder = le32_to_cpu(l->holder_node);
	return 0;
}
