/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Parsing and building virtio-vsock packet headers. Pure functions: the only place a
 * header from a guest is turned into something the rest of the code may trust.
 */
#ifndef UVS_PKT_H
#define UVS_PKT_H

#include <stdint.h>

#include "uvs_proto.h"

/* Why a packet was dropped before reaching the state machine; the daemon counts each. */
enum uvs_pkt_err {
	UVS_PKT_OK = 0,
	UVS_PKT_SHORT,	     /* fewer than 44 header bytes in the chain */
	UVS_PKT_TOO_LONG,    /* len > 64 KiB */
	UVS_PKT_TRUNCATED,   /* len > payload bytes present */
	UVS_PKT_CTL_PAYLOAD, /* len != 0 on an op that carries no payload */
	UVS_PKT_BAD_SRC,     /* src_cid is not the sender's CID */
	UVS_PKT_BAD_DST,     /* dst_cid is not ours */
	UVS_PKT_ERR_MAX,
};

/** Printable name of a parse error, for logs and counters. */
const char *uvs_pkt_err_str(enum uvs_pkt_err err);
/** Printable name of an op ("RW", "RST", ...), "?" for unknown values. */
const char *uvs_op_str(uint16_t op);

/**
 * Validate a received header.
 * @param hdr header already copied out of guest memory (so it cannot change under us)
 * @param payload_bytes bytes present after the header in the descriptor chain
 * @param src_cid the CID the sender must use
 * @param dst_cid our CID
 * @return UVS_PKT_OK, or why the packet must be dropped. Unknown types and ops are not
 *   errors here: the state machine answers them as Linux does.
 */
enum uvs_pkt_err uvs_pkt_check(const struct uvs_hdr *hdr, uint32_t payload_bytes, uint64_t src_cid,
		uint64_t dst_cid);

/** Fill a reply header for `req` with src/dst swapped (used for RST without a socket). */
void uvs_pkt_reply(struct uvs_hdr *out, const struct uvs_hdr *req, uint16_t op);

#endif /* UVS_PKT_H */
