/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Implementation notes
 *
 * The host programs' side of uvsockd is libuvsock's uvs_srv (control socket, sockets,
 * segments); this file gives it the daemon's transport: a connect to CID n reaches the
 * attached guest with that CID, and the engine's kicks mark a guest's rx queue for filling.
 */
#include <rte_log.h>

#include "uvsockd.h"

static struct uvs_peer *
host_peer_by_cid(void *ctx, uint32_t cid)
{
	struct uvsd_guest *g = uvsd_guest_by_cid(ctx, cid);

	return g != NULL && g->running ? &g->peer : NULL;
}

static void
host_kick(void *ctx, struct uvs_peer *p)
{
	struct uvsd_guest *g = p->transport;

	(void)ctx;
	g->rx_work = true;
}

static void
host_log(void *ctx, const char *msg)
{
	(void)ctx;
	RTE_LOG(WARNING, USER1, "uvsockd: %s\n", msg);
}

static const struct uvs_srv_ops host_ops = {
	.peer_by_cid = host_peer_by_cid,
	.kick = host_kick,
	.log = host_log,
};

int
uvsd_host_init(struct uvs_daemon *d)
{
	return uvs_srv_init(&d->srv, d->epfd, UVS_CID_HOST, &host_ops, d);
}
