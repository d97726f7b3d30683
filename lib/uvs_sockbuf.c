/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Implementation notes
 *
 * Framing only; synchronisation is uvs_ring's (store-release of the producer index after the
 * payload, load-acquire before reading it). The device publishes a SEQPACKET rx record only
 * when its message is complete: it writes the payload after a reserved header as fragments
 * arrive (rx_pend), then the header, then produces header + payload at once. So the program
 * never sees part of a message, and a receive is one record.
 *
 * Each side distrusts the other: the device bounds every tx record length by what the ring
 * holds and stops (sb->bad) on anything impossible; the program does the same for rx.
 */
#include <errno.h>
#include <sys/socket.h>

#include "uvs_ipc.h"
#include "uvs_proto.h"
#include "uvs_sockbuf.h"

static bool
seqpacket(const struct uvs_sockbuf *sb)
{
	return sb->type == UVS_TYPE_SEQPACKET;
}

int
uvs_sockbuf_dev_put(struct uvs_sockbuf *sb, const struct iovec *iov, unsigned int n, uint32_t off,
		uint32_t len, uint32_t flags)
{
	uint32_t space, hdr = seqpacket(sb) ? UVS_REC_SIZE : 0;

	if (uvs_ring_space(&sb->rx, &space) < 0) {
		sb->bad = true;
		return -EIO;
	}
	if ((uint64_t)hdr + sb->rx_pend + len > space)
		return -ENOBUFS;
	uvs_ring_put_iov(&sb->rx, hdr + sb->rx_pend, iov, n, off, len);
	if (hdr == 0) {
		uvs_ring_produce(&sb->rx, len);
		return 1;
	}
	sb->rx_pend += len;
	if (flags & UVS_SEQ_EOM) {
		struct uvs_rec rec = { .len = sb->rx_pend,
			.flags = flags & (UVS_SEQ_EOM | UVS_SEQ_EOR) };

		uvs_ring_put(&sb->rx, 0, &rec, sizeof(rec));
		uvs_ring_produce(&sb->rx, UVS_REC_SIZE + sb->rx_pend);
		sb->rx_pend = 0;
		return 1;
	}
	return 0;
}

uint32_t
uvs_sockbuf_dev_peek(struct uvs_sockbuf *sb, uint32_t max, uint32_t *flags)
{
	struct uvs_rec rec;
	uint32_t used;

	*flags = 0;
	if (sb->bad)
		return 0;
	for (;;) {
		if (uvs_ring_used(&sb->tx, &used) < 0) {
			sb->bad = true;
			return 0;
		}
		if (!seqpacket(sb))
			return used < max ? used : max;
		if (sb->tx_left > 0)
			break;
		if (used < UVS_REC_SIZE)
			return 0;
		uvs_ring_get(&sb->tx, 0, &rec, sizeof(rec));
		if (rec.len > used - UVS_REC_SIZE) {
			sb->bad = true; /* records are produced whole */
			return 0;
		}
		uvs_ring_consume(&sb->tx, UVS_REC_SIZE);
		sb->tx_left = rec.len;
		/* EOR only with EOM, never on a piece that does not end the message */
		sb->tx_flags = rec.flags & UVS_SEQ_EOM ? rec.flags & (UVS_SEQ_EOM | UVS_SEQ_EOR)
						       : 0;
		/* an empty record (only a hostile program writes one) carries nothing: skip it */
	}
	if (used < sb->tx_left) {
		sb->bad = true;
		return 0;
	}
	if (max >= sb->tx_left) {
		*flags = sb->tx_flags;
		return sb->tx_left;
	}
	return max;
}

void
uvs_sockbuf_dev_take(struct uvs_sockbuf *sb, const struct iovec *iov, unsigned int n, uint32_t off,
		uint32_t len)
{
	uvs_ring_get_iov(&sb->tx, 0, iov, n, off, len);
	uvs_ring_consume(&sb->tx, len);
	if (seqpacket(sb))
		sb->tx_left -= len;
}

int64_t
uvs_sockbuf_app_write(struct uvs_sockbuf *sb, const struct iovec *iov, unsigned int n,
		uint32_t iov_off, uint32_t len, uint32_t msg_len, bool eor)
{
	uint32_t space, hdr = seqpacket(sb) ? UVS_REC_SIZE : 0, chunk;

	if (uvs_ring_space(&sb->tx, &space) < 0) {
		sb->bad = true;
		return -EIO;
	}
	if (space <= hdr)
		return 0;
	chunk = space - hdr < len ? space - hdr : len;
	if (hdr != 0) {
		struct uvs_rec rec = { .len = chunk };

		if (iov_off + chunk == msg_len)
			rec.flags = UVS_SEQ_EOM | (eor ? UVS_SEQ_EOR : 0);
		uvs_ring_put(&sb->tx, 0, &rec, sizeof(rec));
	}
	uvs_ring_put_iov(&sb->tx, hdr, iov, n, iov_off, chunk);
	uvs_ring_produce(&sb->tx, hdr + chunk);
	return chunk;
}

int64_t
uvs_sockbuf_app_read(struct uvs_sockbuf *sb, const struct iovec *iov, unsigned int n, uint32_t cap,
		int *msg_flags, uint32_t *msg_len)
{
	struct uvs_rec rec;
	uint32_t used, len;

	*msg_flags = 0;
	*msg_len = 0;
	if (uvs_ring_used(&sb->rx, &used) < 0) {
		sb->bad = true;
		return -EIO;
	}
	if (!seqpacket(sb)) {
		if (used == 0)
			return -EAGAIN;
		len = used < cap ? used : cap;
		uvs_ring_get_iov(&sb->rx, 0, iov, n, 0, len);
		return len;
	}
	if (used == 0)
		return -EAGAIN;
	if (used < UVS_REC_SIZE) {
		sb->bad = true;
		return -EIO;
	}
	uvs_ring_get(&sb->rx, 0, &rec, sizeof(rec));
	if (rec.len > used - UVS_REC_SIZE) {
		sb->bad = true;
		return -EIO;
	}
	len = rec.len < cap ? rec.len : cap;
	uvs_ring_get_iov(&sb->rx, UVS_REC_SIZE, iov, n, 0, len);
	if (rec.len > cap)
		*msg_flags |= MSG_TRUNC;
	if (rec.flags & UVS_SEQ_EOR)
		*msg_flags |= MSG_EOR;
	*msg_len = rec.len;
	return len;
}

uint32_t
uvs_sockbuf_app_consume(struct uvs_sockbuf *sb, uint32_t bytes, uint32_t msg_len)
{
	if (seqpacket(sb)) {
		/* the whole message goes, truncated bytes included, and counts for credit */
		uvs_ring_consume(&sb->rx, UVS_REC_SIZE + msg_len);
		return msg_len;
	}
	uvs_ring_consume(&sb->rx, bytes);
	return bytes;
}
