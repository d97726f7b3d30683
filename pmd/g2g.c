/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Implementation notes
 *
 * Guest-to-guest traffic (issue 5 §3): off unless guests are given a group
 * (--vm ...,group=NAME); a packet from guest A to the CID of guest B is forwarded only when
 * both are attached and share a group. Otherwise it is dropped as bad_dst_cid, as Linux's
 * vhost-vsock drops every packet not addressed to the host (a connect then times out).
 *
 * The daemon is a switch here, not an endpoint: it keeps no connection state and runs no
 * engine for these packets. Flow control stays end to end, between the two drivers' credit
 * counters, carried unchanged in every header. What the daemon must do itself:
 *  - validate the header as any other (uvs_pkt_check, with B's CID as destination), so B's
 *    driver only ever sees packets from A's own CID;
 *  - fit A's packet into B's receive buffers: Linux's guests post 4 KiB buffers and send up
 *    to 64 KiB, so an RW packet is split into several RW packets, each with the same header
 *    but its own len, and SEQPACKET's EOM/EOR only on the last piece (what a receiver
 *    reassembles as one message);
 *  - apply back-pressure instead of dropping: dropping RW bytes would corrupt A's stream.
 *    When B has no receive buffer, A's chain is given back to its ring (uvs_virtq_unpop) with
 *    the payload offset already forwarded remembered, and A's transmit queue waits until B
 *    posts buffers. No pointer into guest memory is kept between passes, so a memory table
 *    change (PAUSE/RESUME) of either guest cannot leave one dangling. A's own traffic to the
 *    host waits behind it too, as in a NIC's transmit queue; only guests that share a group
 *    can do that to each other.
 * When the chain comes back, its header must be the one saved, or the guest rewrote a packet
 * it had handed over: what is left of it is dropped and counted (g2g_rewritten).
 */
#include <errno.h>
#include <string.h>

#include "g2g.h"

/* Whether packets from g may go to dst_cid; @return the destination or NULL. */
struct uvsd_guest *
uvsd_g2g_route(struct uvs_daemon *d, const struct uvsd_guest *g, uint64_t dst_cid)
{
	struct uvsd_guest *to;

	if (g->group[0] == '\0' || dst_cid > UINT32_MAX || dst_cid == g->cid)
		return NULL;
	to = uvsd_guest_by_cid(d, (uint32_t)dst_cid);
	if (to == NULL || !to->running || to->broken || strcmp(to->group, g->group) != 0)
		return NULL;
	return to;
}

/* Copy len bytes from offset soff of the segments src to offset doff of dst. Both were
 * bounded when the chains were walked; @return the bytes copied. */
static uint32_t
iov_copy(const struct iovec *dst, unsigned int dn, uint32_t doff, const struct iovec *src,
		unsigned int sn, uint32_t soff, uint32_t len)
{
	unsigned int di = 0, si = 0;
	uint32_t done = 0;

	while (di < dn && doff >= dst[di].iov_len)
		doff -= (uint32_t)dst[di++].iov_len;
	while (si < sn && soff >= src[si].iov_len)
		soff -= (uint32_t)src[si++].iov_len;
	while (done < len && di < dn && si < sn) {
		size_t dl = dst[di].iov_len - doff, sl = src[si].iov_len - soff;
		size_t n = dl < sl ? dl : sl;

		if (n > len - done)
			n = len - done;
		memcpy((uint8_t *)dst[di].iov_base + doff, (const uint8_t *)src[si].iov_base + soff,
				n);
		done += (uint32_t)n;
		doff += (uint32_t)n;
		soff += (uint32_t)n;
		if (doff == dst[di].iov_len) {
			di++;
			doff = 0;
		}
		if (soff == src[si].iov_len) {
			si++;
			soff = 0;
		}
	}
	return done;
}

/* Forward one piece into one of to's receive buffers.
 * @return payload bytes forwarded (0 for a packet without payload), -EAGAIN if to has no
 * buffer now, -EBADMSG if to's buffer was refused (to's problem, already counted). */
static int
forward_piece(struct uvsd_guest *to, const struct uvs_chain *ch, const struct uvs_hdr *hdr,
		uint32_t off)
{
	struct uvs_chain rx;
	struct uvs_hdr h = *hdr;
	uint32_t left = hdr->len - off, piece;
	int rc;

	if (to->paused)
		return -EAGAIN; /* its rings are being remapped: wait for the resume */
	rc = uvsd_guest_pop_rx(to, &rx);
	if (rc == 0)
		return -EAGAIN;
	if (rc < 0)
		return -EBADMSG;
	if (rx.in_len < UVS_HDR_SIZE + (left > 0 ? 1u : 0u)) {
		uvsd_guest_small_rx(to, &rx);
		return -EBADMSG;
	}
	piece = rx.in_len - UVS_HDR_SIZE;
	if (piece > left)
		piece = left;
	h.len = piece;
	if (piece < left)
		h.flags &= ~(UVS_SEQ_EOM | UVS_SEQ_EOR); /* the message goes on */
	uvs_iov_from_buf(rx.iov + rx.nout, rx.nin, 0, &h, sizeof(h));
	/* A's payload follows the header in A's readable segments: one copy, guest to guest */
	iov_copy(rx.iov + rx.nout, rx.nin, UVS_HDR_SIZE, ch->iov, ch->nout, UVS_HDR_SIZE + off,
			piece);
	uvsd_guest_push_rx(to, &rx, UVS_HDR_SIZE + piece);
	return (int)piece;
}

int
uvsd_g2g_forward(struct uvsd_guest *g, struct uvsd_guest *to, const struct uvs_chain *ch,
		const struct uvs_hdr *hdr)
{
	uint32_t off = 0;
	int rc;

	if (g->g2g_off > 0) {
		/* the chain that waited: it must be the same packet */
		if (ch->head != g->g2g_head || memcmp(&g->g2g_hdr, hdr, sizeof(*hdr)) != 0 ||
				g->g2g_off >= hdr->len || to != g->g2g_wait) {
			g->g2g_rewritten++;
			g->g2g_off = 0;
			return 1; /* drop the rest */
		}
		off = g->g2g_off;
	}
	do {
		rc = forward_piece(to, ch, hdr, off);
		if (rc == -EAGAIN || rc == -EBADMSG) {
			/* wait for to's next buffers; A's chain goes back to its ring */
			g->g2g_off = off;
			g->g2g_head = ch->head;
			g->g2g_hdr = *hdr;
			g->g2g_wait = to;
			g->g2g_waits++;
			return 0;
		}
		off += (uint32_t)rc;
		to->g2g_rx_pkts++;
	} while (off < hdr->len);
	g->g2g_tx_pkts++;
	g->g2g_tx_bytes += hdr->len;
	g->g2g_off = 0;
	g->g2g_wait = NULL;
	return 1;
}

void
uvsd_g2g_forget(struct uvs_daemon *d, const struct uvsd_guest *gone)
{
	for (unsigned int i = 0; i < d->nguests; i++) {
		struct uvsd_guest *g = &d->guests[i];

		if (g == gone || g->g2g_wait == gone) {
			g->g2g_wait = NULL;
			g->g2g_off = 0; /* the rest of a packet to or from it is dropped */
		}
	}
}

bool
uvsd_g2g_blocked(const struct uvsd_guest *g)
{
	const struct uvsd_guest *to = g->g2g_wait;

	return to != NULL && to->running && !to->broken && !to->paused &&
	       uvs_virtq_avail_count(&to->vq[UVS_VQ_RX]) == 0;
}
