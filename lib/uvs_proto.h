/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-vsock wire constants and the packet header, as the virtio spec (v1.2/1.3) and
 * Linux >= 5.15 define them. Everything on the wire is little-endian; this project only
 * builds for little-endian hosts (checked below), so the header is used in place.
 */
#ifndef UVS_PROTO_H
#define UVS_PROTO_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "uvsock reads virtio-vsock headers in place and needs a little-endian host"
#endif

/* Well-known CIDs (linux/vm_sockets.h). */
#define UVS_CID_HYPERVISOR 0u
#define UVS_CID_LOCAL 1u
#define UVS_CID_HOST 2u
#define UVS_CID_ANY 0xffffffffu
#define UVS_PORT_ANY 0xffffffffu
/* Ports up to this one need CAP_NET_BIND_SERVICE, as in Linux. */
#define UVS_LAST_RESERVED_PORT 1023u

/* virtio device id of vsock and its queues. */
#define UVS_VIRTIO_ID_VSOCK 19
#define UVS_VQ_RX 0
#define UVS_VQ_TX 1

/* Feature bits. */
#define UVS_VIRTIO_VSOCK_F_SEQPACKET 1
#define UVS_VIRTIO_RING_F_INDIRECT_DESC 28
#define UVS_VIRTIO_RING_F_EVENT_IDX 29
#define UVS_VHOST_USER_F_PROTOCOL_FEATURES 30
#define UVS_VIRTIO_F_VERSION_1 32

/* Packet types. */
enum uvs_type {
	UVS_TYPE_STREAM = 1,
	UVS_TYPE_SEQPACKET = 2,
};

/* Operations (no SEQ_BEGIN/SEQ_END: those were never merged). */
enum uvs_op {
	UVS_OP_INVALID = 0,
	UVS_OP_REQUEST = 1,
	UVS_OP_RESPONSE = 2,
	UVS_OP_RST = 3,
	UVS_OP_SHUTDOWN = 4,
	UVS_OP_RW = 5,
	UVS_OP_CREDIT_UPDATE = 6,
	UVS_OP_CREDIT_REQUEST = 7,
};
#define UVS_OP_MAX UVS_OP_CREDIT_REQUEST

/* SHUTDOWN flags: values, not bit numbers. */
#define UVS_SHUTDOWN_RCV 1u
#define UVS_SHUTDOWN_SEND 2u
#define UVS_SHUTDOWN_BOTH (UVS_SHUTDOWN_RCV | UVS_SHUTDOWN_SEND)

/* SEQPACKET RW flags (Linux 5.15 naming: EOM = end of message, EOR = MSG_EOR). */
#define UVS_SEQ_EOM 1u
#define UVS_SEQ_EOR 2u

/* Largest payload in one packet: VIRTIO_VSOCK_MAX_PKT_BUF_SIZE; Linux never sends more. */
#define UVS_MAX_PKT_PAYLOAD (64u * 1024u)

/* Linux defaults for a socket's receive buffer (SO_VM_SOCKETS_BUFFER_*). */
#define UVS_BUF_SIZE_DEFAULT (256u * 1024u)
#define UVS_BUF_SIZE_MIN_DEFAULT 128u
#define UVS_BUF_SIZE_MAX_DEFAULT (256u * 1024u)

struct uvs_hdr {
	uint64_t src_cid;
	uint64_t dst_cid;
	uint32_t src_port;
	uint32_t dst_port;
	uint32_t len;
	uint16_t type;
	uint16_t op;
	uint32_t flags;
	uint32_t buf_alloc;
	uint32_t fwd_cnt;
} __attribute__((packed));

#define UVS_HDR_SIZE 44u
static_assert(sizeof(struct uvs_hdr) == UVS_HDR_SIZE, "virtio_vsock_hdr is 44 bytes");
static_assert(offsetof(struct uvs_hdr, len) == 24, "len at 24");
static_assert(offsetof(struct uvs_hdr, type) == 28, "type at 28");
static_assert(offsetof(struct uvs_hdr, op) == 30, "op at 30");
static_assert(offsetof(struct uvs_hdr, flags) == 32, "flags at 32");
static_assert(offsetof(struct uvs_hdr, buf_alloc) == 36, "buf_alloc at 36");
static_assert(offsetof(struct uvs_hdr, fwd_cnt) == 40, "fwd_cnt at 40");

#endif /* UVS_PROTO_H */
