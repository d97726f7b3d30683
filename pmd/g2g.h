/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Guest-to-guest forwarding between guests that share a group (--vm ...,group=NAME).
 * Polling thread only.
 */
#ifndef UVSD_G2G_H
#define UVSD_G2G_H

#include "uvsockd.h"

/** The guest packets from g to dst_cid go to, or NULL if they may not (no shared group, not
 * attached, g itself). */
struct uvsd_guest *uvsd_g2g_route(
		struct uvs_daemon *d, const struct uvsd_guest *g, uint64_t dst_cid);
/**
 * Forward g's packet (chain ch, header hdr already checked with to's CID) into to's receive
 * buffers, split to fit them. @return 1 if it is done (the chain can be returned), 0 if to
 * has no buffer: the caller gives ch back to g's ring (uvs_virtq_unpop) and stops; the next
 * pop returns it and forwarding goes on where it stopped.
 */
int uvsd_g2g_forward(struct uvsd_guest *g, struct uvsd_guest *to, const struct uvs_chain *ch,
		const struct uvs_hdr *hdr);
/** Whether g's transmit queue waits for a guest that has no receive buffer yet. */
bool uvsd_g2g_blocked(const struct uvsd_guest *g);
/** gone detached: nobody waits for it, and what was left of a packet from or to it is
 * dropped. */
void uvsd_g2g_forget(struct uvs_daemon *d, const struct uvsd_guest *gone);

#endif /* UVSD_G2G_H */
