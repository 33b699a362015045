/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "report.h"

#include <errno.h>
#include <string.h>

int q_report_encode(uint32_t node_id, const struct q_report_vol *vols, uint32_t nvol, void *buf, size_t len,
		    size_t *ret_len)
{
	size_t need = sizeof(struct q_report_hdr) + (size_t)nvol * sizeof(struct q_report_ent);
	if (nvol > UINT16_MAX || need > len)
		return -ENOBUFS;
	struct q_report_hdr h = {
		.magic = cpu_to_le32(Q_REPORT_MAGIC),
		.version = cpu_to_le16(Q_REPORT_VERSION),
		.nvol = cpu_to_le16((uint16_t)nvol),
		.node_id = cpu_to_le32(node_id),
	};
	uint8_t *p = buf;
	memcpy(p, &h, sizeof(h));
	p += sizeof(h);
	for (uint32_t i = 0; i < nvol; i++) {
		struct q_report_ent e = {
			.write_latency_us = cpu_to_le32(vols[i].write_latency_us),
			.flags = cpu_to_le32(vols[i].write_ok ? Q_REPORT_WRITE_OK : 0),
		};
		memcpy(e.uuid, vols[i].uuid, 16);
		memcpy(p, &e, sizeof(e));
		p += sizeof(e);
	}
	*ret_len = need;
	return 0;
}

int q_report_decode(const void *buf, size_t len, uint32_t *ret_node_id, struct q_report_vol *ret_vols,
		    uint32_t max, uint32_t *ret_nvol)
{
	struct q_report_hdr h;
	if (len < sizeof(h))
		return -EBADMSG;
	memcpy(&h, buf, sizeof(h));
	if (le32_to_cpu(h.magic) != Q_REPORT_MAGIC)
		return -EBADMSG;
	if (le16_to_cpu(h.version) != Q_REPORT_VERSION)
		return -EPROTONOSUPPORT;
	uint32_t nvol = le16_to_cpu(h.nvol);
	if (len != sizeof(h) + (size_t)nvol * sizeof(struct q_report_ent))
		return -EBADMSG;
	const uint8_t *p = (const uint8_t *)buf + sizeof(h);
	uint32_t n = nvol < max ? nvol : max;
	for (uint32_t i = 0; i < n; i++) {
		struct q_report_ent e;
		memcpy(&e, p + (size_t)i * sizeof(e), sizeof(e));
		memcpy(ret_vols[i].uuid, e.uuid, 16);
		ret_vols[i].write_latency_us = le32_to_cpu(e.write_latency_us);
		ret_vols[i].write_ok = le32_to_cpu(e.flags) & Q_REPORT_WRITE_OK;
	}
	*ret_node_id = le32_to_cpu(h.node_id);
	*ret_nvol = n;
	return 0;
}

bool q_is_fenced_msg(const void *buf, size_t len)
{
	le32 magic;
	if (len < sizeof(magic))
		return false;
	memcpy(&magic, buf, sizeof(magic));
	return le32_to_cpu(magic) == Q_FENCED_MAGIC;
}

void q_fenced_encode(uint32_t fencer, uint32_t target, struct q_fenced_msg *ret)
{
	*ret = (struct q_fenced_msg){
		.magic = cpu_to_le32(Q_FENCED_MAGIC),
		.version = cpu_to_le16(Q_FENCED_VERSION),
		.fencer = cpu_to_le32(fencer),
		.target = cpu_to_le32(target),
	};
}

int q_fenced_decode(const void *buf, size_t len, uint32_t *ret_fencer, uint32_t *ret_target)
{
	struct q_fenced_msg m;
	if (len != sizeof(m))
		return -EBADMSG;
	memcpy(&m, buf, sizeof(m));
	if (le32_to_cpu(m.magic) != Q_FENCED_MAGIC)
		return -EBADMSG;
	if (le16_to_cpu(m.version) != Q_FENCED_VERSION)
		return -EPROTONOSUPPORT;
	*ret_fencer = le32_to_cpu(m.fencer);
	*ret_target = le32_to_cpu(m.target);
	return 0;
}
