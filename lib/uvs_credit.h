/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Credit-based flow control of one connection (virtio spec 5.10.6.3), with free-running
 * u32 counters that wrap. All credit arithmetic in the project lives here.
 */
#ifndef UVS_CREDIT_H
#define UVS_CREDIT_H

#include <stdbool.h>
#include <stdint.h>

/* When the peer's view of our free buffer falls below this, a consumed byte is worth a
 * CREDIT_UPDATE: Linux uses the same 64 KiB threshold (VIRTIO_VSOCK_MAX_PKT_BUF_SIZE). */
#define UVS_CREDIT_LOW_WATER (64u * 1024u)

struct uvs_credit {
	/* our receive side */
	uint32_t buf_alloc;    /* receive buffer we advertise */
	uint32_t fwd_cnt;      /* payload bytes our application consumed */
	uint32_t last_fwd_cnt; /* fwd_cnt last told to the peer */
	uint32_t rx_cnt;       /* payload bytes received */
	/* our send side */
	uint32_t tx_cnt;	 /* payload bytes sent */
	uint32_t peer_buf_alloc; /* from the peer's last header */
	uint32_t peer_fwd_cnt;	 /* from the peer's last header */
};

/** Start a connection's accounting with our buffer size and the peer's first header. */
void uvs_credit_init(struct uvs_credit *cr, uint32_t buf_alloc);

/** Record the peer's buf_alloc/fwd_cnt; every received packet carries them.
 * @return true if the peer's free credit grew (a blocked writer may continue). */
bool uvs_credit_peer_update(struct uvs_credit *cr, uint32_t buf_alloc, uint32_t fwd_cnt);

/** Bytes we may send now: peer_buf_alloc - (tx_cnt - peer_fwd_cnt), never negative even if
 * the peer shrank its buffer below what is in flight. */
uint32_t uvs_credit_peer_free(const struct uvs_credit *cr);

/** Account `len` bytes sent. The caller never exceeds uvs_credit_peer_free(). */
void uvs_credit_sent(struct uvs_credit *cr, uint32_t len);

/** Room left in our receive buffer by the credit we granted: a received RW must fit. */
uint32_t uvs_credit_rx_room(const struct uvs_credit *cr);

/** Account `len` received bytes; -ENOBUFS if they exceed the credit we granted. */
int uvs_credit_received(struct uvs_credit *cr, uint32_t len);

/** Record that the header being sent carries fwd_cnt (every packet does). */
void uvs_credit_advertised(struct uvs_credit *cr);

/**
 * Whether an unsolicited CREDIT_UPDATE is worth sending: the application consumed bytes
 * the peer does not know about, and the peer's view of our free space is low or
 * everything received has been consumed.
 */
bool uvs_credit_update_due(const struct uvs_credit *cr);

#endif /* UVS_CREDIT_H */
