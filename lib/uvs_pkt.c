/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Implementation notes
 *
 * The header is copied out of guest memory by the caller before uvs_pkt_check() looks at
 * it, so a guest rewriting the buffer concurrently cannot make a checked value change.
 * Checks here are structural (sizes, addressing); protocol checks (type, op, state) belong
 * to the state machine in uvs_conn.c, because Linux answers most of those with an RST
 * rather than a silent drop.
 */
#include <string.h>

#include "uvs_pkt.h"

static const char *const pkt_err_names[UVS_PKT_ERR_MAX] = {
	[UVS_PKT_OK] = "ok",
	[UVS_PKT_SHORT] = "short_header",
	[UVS_PKT_TOO_LONG] = "len_over_64k",
	[UVS_PKT_TRUNCATED] = "len_over_buffer",
	[UVS_PKT_CTL_PAYLOAD] = "payload_on_control_op",
	[UVS_PKT_BAD_SRC] = "bad_src_cid",
	[UVS_PKT_BAD_DST] = "bad_dst_cid",
};

static const char *const op_names[UVS_OP_MAX + 1] = {
	[UVS_OP_INVALID] = "INVALID",
	[UVS_OP_REQUEST] = "REQUEST",
	[UVS_OP_RESPONSE] = "RESPONSE",
	[UVS_OP_RST] = "RST",
	[UVS_OP_SHUTDOWN] = "SHUTDOWN",
	[UVS_OP_RW] = "RW",
	[UVS_OP_CREDIT_UPDATE] = "CREDIT_UPDATE",
	[UVS_OP_CREDIT_REQUEST] = "CREDIT_REQUEST",
};

const char *
uvs_pkt_err_str(enum uvs_pkt_err err)
{
	if ((unsigned int)err >= UVS_PKT_ERR_MAX)
		return "?";
	return pkt_err_names[err];
}

const char *
uvs_op_str(uint16_t op)
{
	if (op > UVS_OP_MAX)
		return "?";
	return op_names[op];
}

enum uvs_pkt_err
uvs_pkt_check(const struct uvs_hdr *hdr, uint32_t payload_bytes, uint64_t src_cid, uint64_t dst_cid)
{
	if (hdr->len > UVS_MAX_PKT_PAYLOAD)
		return UVS_PKT_TOO_LONG;
	if (hdr->len > payload_bytes)
		return UVS_PKT_TRUNCATED;
	if (hdr->op != UVS_OP_RW && hdr->len != 0)
		return UVS_PKT_CTL_PAYLOAD;
	if (hdr->src_cid != src_cid)
		return UVS_PKT_BAD_SRC;
	if (hdr->dst_cid != dst_cid)
		return UVS_PKT_BAD_DST;
	return UVS_PKT_OK;
}

void
uvs_pkt_reply(struct uvs_hdr *out, const struct uvs_hdr *req, uint16_t op)
{
	memset(out, 0, sizeof(*out));
	out->src_cid = req->dst_cid;
	out->dst_cid = req->src_cid;
	out->src_port = req->dst_port;
	out->dst_port = req->src_port;
	out->type = req->type;
	out->op = op;
}
