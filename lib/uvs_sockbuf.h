/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A connected socket's two shared rings and their framing, for both sides: the device
 * side (the daemon: produces rx, consumes tx) and the program side (libuvsock: produces tx,
 * consumes rx). STREAM rings carry bytes. SEQPACKET rings carry records (struct uvs_rec):
 * in rx one record per whole message, written by the device only once the message is
 * complete; in tx a message may be several records, the last flagged EOM.
 *
 * Pure code over memory: no system calls, no allocation. Wake-ups are the caller's.
 */
#ifndef UVS_SOCKBUF_H
#define UVS_SOCKBUF_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "uvs_ring.h"

struct uvs_sockbuf {
	struct uvs_ring rx; /* device -> program */
	struct uvs_ring tx; /* program -> device */
	uint16_t type;	    /* UVS_TYPE_* */
	bool bad;	    /* the other side corrupted a ring: the connection must be reset */
	/* device side */
	uint32_t rx_pend;  /* SEQPACKET: bytes of the message being assembled in rx */
	uint32_t tx_left;  /* SEQPACKET: bytes left of the tx record being sent */
	uint32_t tx_flags; /* SEQPACKET: that record's EOM/EOR */
};

/* Device side. */

/**
 * Queue received payload (len bytes at byte offset off of iov) for the program.
 * SEQPACKET payload is assembled until a packet with UVS_SEQ_EOM completes the message.
 * @return 1 if new data became visible to the program, 0 if not yet (a message in
 *   progress), -ENOBUFS if the ring lacks room, -EIO if the program corrupted the ring.
 */
int uvs_sockbuf_dev_put(struct uvs_sockbuf *sb, const struct iovec *iov, unsigned int n,
		uint32_t off, uint32_t len, uint32_t flags);

/**
 * Bytes the device may send now, at most max, stopping at the end of a SEQPACKET message;
 * *flags gets EOM (and EOR if the sender asked) when they finish the message.
 * @return 0 when nothing is queued (or the ring is corrupt: sb->bad is then set).
 */
uint32_t uvs_sockbuf_dev_peek(struct uvs_sockbuf *sb, uint32_t max, uint32_t *flags);

/** Copy len bytes (at most what dev_peek returned) into iov at offset off, consume them. */
void uvs_sockbuf_dev_take(struct uvs_sockbuf *sb, const struct iovec *iov, unsigned int n,
		uint32_t off, uint32_t len);

/* Program side. */

/**
 * Write up to len bytes of iov starting at iov_off. STREAM: as many as fit. SEQPACKET: one
 * record of as many as fit; it carries EOM (and EOR if eor) when it holds the message's last
 * byte (iov_off + written == msg_len).
 * @return bytes written (0: no room), or -EIO if the device corrupted the ring.
 */
int64_t uvs_sockbuf_app_write(struct uvs_sockbuf *sb, const struct iovec *iov, unsigned int n,
		uint32_t iov_off, uint32_t len, uint32_t msg_len, bool eor);

/**
 * Read into iov (total capacity cap). STREAM: up to cap of the queued bytes. SEQPACKET:
 * the first whole message, truncated to cap (*msg_flags gets
 * MSG_TRUNC, and MSG_EOR if it had EOR).
 * Nothing is consumed; uvs_sockbuf_app_consume() does that (MSG_PEEK skips it).
 * @return bytes copied (for SEQPACKET *msg_len gets the message length), -EAGAIN if nothing
 *   is queued, -EIO if the ring is corrupt.
 */
int64_t uvs_sockbuf_app_read(struct uvs_sockbuf *sb, const struct iovec *iov, unsigned int n,
		uint32_t cap, int *msg_flags, uint32_t *msg_len);

/** Consume what app_read returned: STREAM bytes, or the SEQPACKET message of msg_len.
 * @return the payload bytes consumed (what the program's fwd_cnt must grow by). */
uint32_t uvs_sockbuf_app_consume(struct uvs_sockbuf *sb, uint32_t bytes, uint32_t msg_len);

#endif /* UVS_SOCKBUF_H */
