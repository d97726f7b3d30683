/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Implementation notes
 *
 * Counters are free-running u32 values; differences are taken modulo 2^32, which is
 * correct as long as fewer than 2^32 bytes are in flight (buf_alloc is a u32, so they are).
 * The peer's free credit is computed in signed 64-bit so that a peer shrinking buf_alloc
 * below what is already in flight yields 0 and not ~4 GiB (Linux fix d05bc313).
 * Our own receive side checks every RW against the credit we granted, because a guest that
 * ignores credit must not be able to make us buffer without bound.
 */
#include <errno.h>

#include "uvs_credit.h"

void
uvs_credit_init(struct uvs_credit *cr, uint32_t buf_alloc)
{
	*cr = (struct uvs_credit){ .buf_alloc = buf_alloc };
}

uint32_t
uvs_credit_peer_free(const struct uvs_credit *cr)
{
	int64_t in_flight = (uint32_t)(cr->tx_cnt - cr->peer_fwd_cnt);
	int64_t free = (int64_t)cr->peer_buf_alloc - in_flight;

	return free > 0 ? (uint32_t)free : 0;
}

bool
uvs_credit_peer_update(struct uvs_credit *cr, uint32_t buf_alloc, uint32_t fwd_cnt)
{
	uint32_t before = uvs_credit_peer_free(cr);

	cr->peer_buf_alloc = buf_alloc;
	cr->peer_fwd_cnt = fwd_cnt;
	return uvs_credit_peer_free(cr) > before;
}

void
uvs_credit_sent(struct uvs_credit *cr, uint32_t len)
{
	cr->tx_cnt += len;
}

uint32_t
uvs_credit_rx_room(const struct uvs_credit *cr)
{
	uint32_t queued = cr->rx_cnt - cr->fwd_cnt;

	return queued >= cr->buf_alloc ? 0 : cr->buf_alloc - queued;
}

int
uvs_credit_received(struct uvs_credit *cr, uint32_t len)
{
	/* Judge against what we advertised: the peer cannot know about consumption we have
	 * not told it of, but everything it was told it may use. */
	uint32_t granted_queued = cr->rx_cnt - cr->last_fwd_cnt;

	if (granted_queued > cr->buf_alloc || len > cr->buf_alloc - granted_queued)
		return -ENOBUFS;
	cr->rx_cnt += len;
	return 0;
}

void
uvs_credit_advertised(struct uvs_credit *cr)
{
	cr->last_fwd_cnt = cr->fwd_cnt;
}

bool
uvs_credit_update_due(const struct uvs_credit *cr)
{
	uint32_t unadvertised = cr->fwd_cnt - cr->last_fwd_cnt;
	uint32_t peer_view_queued = cr->rx_cnt - cr->last_fwd_cnt;
	uint32_t peer_view_free;

	if (unadvertised == 0)
		return false;
	peer_view_free = peer_view_queued >= cr->buf_alloc ? 0 : cr->buf_alloc - peer_view_queued;
	return peer_view_free < UVS_CREDIT_LOW_WATER || cr->fwd_cnt == cr->rx_cnt;
}
