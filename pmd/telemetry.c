/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Implementation notes
 *
 * uvsockd's counters through DPDK telemetry (usertools/dpdk-telemetry.py, or uvsock-ss):
 *
 *   /uvsock/stats             daemon totals: guests, host sockets, connections, refusals
 *   /uvsock/guests            the guests' CIDs
 *   /uvsock/guest,<cid>       one guest: packets, bytes, kicks, calls, credit stalls, drops by
 *                             reason (engine, descriptor chains, headers), vhost-user messages
 *                             refused by reason, both queues' indexes
 *   /uvsock/conns[,<cursor>]  live sockets and connections, UVSD_TEL_PAGE per call: listeners
 *                             first, then each guest's connections; "next" is the cursor of
 *                             the following page, 0 at the end
 *
 * DPDK answers on its own threads (one per telemetry client), but everything counted here is
 * the polling thread's and changes under it (connections are freed at any time). So a command
 * only posts its request and waits; the polling thread fills the reply between two passes
 * (it looks at epoll at least every UVSD_IDLE_SLEEP_MS). One request at a time: the lock
 * also orders concurrent telemetry clients.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include <rte_telemetry.h>

#include "uvsockd.h"

/* Connections per /uvsock/conns reply: DPDK's reply buffer is 16 KiB and a connection's
 * entry takes about 300 bytes. */
#define UVSD_TEL_PAGE 32u

enum tel_cmd { TEL_STATS, TEL_GUESTS, TEL_GUEST, TEL_CONNS };

struct tel_req {
	enum tel_cmd cmd;
	const char *params;
	struct rte_tel_data *out;
	int rc;
	bool done;
};

static struct uvs_daemon *tel_daemon; /* DPDK's callbacks carry no context */

static void
dict_u64(struct rte_tel_data *t, const char *prefix, const char *name, uint64_t v)
{
	char key[RTE_TEL_MAX_STRING_LEN];

	snprintf(key, sizeof(key), "%s%s", prefix, name);
	rte_tel_data_add_dict_u64(t, key, v);
}

static uint32_t
conns_total(const struct uvs_daemon *d)
{
	uint32_t n = 0;

	for (unsigned int i = 0; i < d->nguests; i++)
		n += d->guests[i].running ? d->guests[i].peer.nconns : 0;
	return n;
}

static int
fill_stats(struct uvs_daemon *d, struct rte_tel_data *t)
{
	unsigned int running = 0;

	for (unsigned int i = 0; i < d->nguests; i++)
		running += d->guests[i].running;
	rte_tel_data_start_dict(t);
	rte_tel_data_add_dict_u64(t, "guests", d->nguests);
	rte_tel_data_add_dict_u64(t, "guests_running", running);
	rte_tel_data_add_dict_u64(t, "host_sockets", d->srv.nsocks_live);
	/* connections' shared segments, and how many of them were kept ones (uvs_srv.c) */
	rte_tel_data_add_dict_u64(t, "segments_created", d->srv.segs_created);
	rte_tel_data_add_dict_u64(t, "segments_reused", d->srv.segs_reused);
	rte_tel_data_add_dict_u64(t, "segments_kept", uvs_srv_seg_kept(&d->srv));
	rte_tel_data_add_dict_u64(t, "connections", conns_total(d));
	rte_tel_data_add_dict_u64(t, "ctl_refused_malformed", d->srv.drops[UVS_SRV_DROP_MALFORMED]);
	rte_tel_data_add_dict_u64(t, "ctl_refused_notify", d->srv.drops[UVS_SRV_DROP_NOTIFY]);
	rte_tel_data_add_dict_u64(t, "ctl_refused_policy", d->srv.drops[UVS_SRV_DROP_DENIED]);
	rte_tel_data_add_dict_u64(t, "ctl_refused_nofd", d->srv.drops[UVS_SRV_DROP_NOFD]);
	rte_tel_data_add_dict_u64(t, "sockets_refused_full", d->srv.drops[UVS_SRV_DROP_FULL]);
	rte_tel_data_add_dict_u64(t, "sockets_refused_quota", d->srv.drops[UVS_SRV_DROP_QUOTA]);
	rte_tel_data_add_dict_u64(t, "hugepages", d->hugepages);
	return 0;
}

static int
fill_guests(struct uvs_daemon *d, struct rte_tel_data *t)
{
	rte_tel_data_start_array(t, RTE_TEL_U64_VAL);
	for (unsigned int i = 0; i < d->nguests; i++)
		rte_tel_data_add_array_u64(t, d->guests[i].cid);
	return 0;
}

static void
fill_queue(struct rte_tel_data *t, const char *q, const struct uvsd_guest *g, int i)
{
	const struct uvs_virtq *vq = &g->vq[i];
	bool mapped = g->running && !g->paused;

	dict_u64(t, q, "size", mapped ? vq->size : 0);
	/* the guest's own index, read from its memory: only while it is mapped */
	dict_u64(t, q, "avail_idx", mapped ? vq->avail->idx : 0);
	dict_u64(t, q, "last_avail_idx", vq->last_avail_idx);
	dict_u64(t, q, "used_idx", vq->used_idx);
}

static int
fill_guest(struct uvs_daemon *d, const char *params, struct rte_tel_data *t)
{
	static const char *const guest_drops[UVSD_DROP_GUEST_MAX] = {
		[UVSD_DROP_CHAIN] = "malformed_chain",
		[UVSD_DROP_PKT] = "bad_header",
		[UVSD_DROP_BROKEN] = "rings_broken",
		[UVSD_DROP_SMALL_RX] = "rx_buffer_too_small",
	};
	const struct uvsd_guest *g;
	const struct uvs_peer *p;
	char *end;
	unsigned long cid;

	if (params == NULL || *params == '\0')
		return -EINVAL;
	cid = strtoul(params, &end, 10);
	if (*end != '\0' || cid > UINT32_MAX)
		return -EINVAL;
	g = uvsd_guest_by_cid(d, (uint32_t)cid);
	if (g == NULL)
		return -ENOENT;
	p = &g->peer;
	rte_tel_data_start_dict(t);
	rte_tel_data_add_dict_u64(t, "cid", g->cid);
	rte_tel_data_add_dict_string(t, "socket", g->path);
	rte_tel_data_add_dict_string(t, "state",
			g->broken    ? "broken"
			: g->paused  ? "paused"
			: g->running ? "running"
				     : "stopped");
	rte_tel_data_add_dict_u64(t, "seqpacket", g->seqpacket);
	rte_tel_data_add_dict_u64(t, "connections", g->running ? p->nconns : 0);
	rte_tel_data_add_dict_u64(t, "rx_pkts", p->rx_pkts);
	rte_tel_data_add_dict_u64(t, "rx_bytes", p->rx_bytes);
	rte_tel_data_add_dict_u64(t, "tx_pkts", p->tx_pkts);
	rte_tel_data_add_dict_u64(t, "tx_bytes", p->tx_bytes);
	rte_tel_data_add_dict_u64(t, "kicks", g->kicks);
	rte_tel_data_add_dict_u64(t, "calls", g->calls);
	rte_tel_data_add_dict_u64(t, "credit_stalls", p->credit_stalls);
	rte_tel_data_add_dict_string(t, "group", g->group);
	rte_tel_data_add_dict_u64(t, "g2g_tx_pkts", g->g2g_tx_pkts);
	rte_tel_data_add_dict_u64(t, "g2g_tx_bytes", g->g2g_tx_bytes);
	rte_tel_data_add_dict_u64(t, "g2g_rx_pkts", g->g2g_rx_pkts);
	rte_tel_data_add_dict_u64(t, "g2g_waits", g->g2g_waits);
	rte_tel_data_add_dict_u64(t, "g2g_rewritten", g->g2g_rewritten);
	rte_tel_data_add_dict_u64(t, "orphan_rst_queued", p->orphan_count);
	/* the overrun penalty, kept while the guest is detached (vhost_dev.c) */
	rte_tel_data_add_dict_u64(t, "penalty", p->penalty);
	rte_tel_data_add_dict_u64(t, "penalty_next", p->penalty_next);
	/* every reason, zero or not: monitoring wants stable keys */
	for (int i = 0; i < UVS_DROP_MAX; i++)
		dict_u64(t, "drop_", uvs_drop_str(i), p->drops[i]);
	for (int i = 0; i < UVSD_DROP_GUEST_MAX; i++)
		dict_u64(t, "guest_drop_", guest_drops[i], g->drops[i]);
	for (int i = 1; i < UVS_PKT_ERR_MAX; i++)
		dict_u64(t, "bad_header_", uvs_pkt_err_str(i), g->pkt_err[i]);
	for (int i = 1; i < UVS_CHAIN_ERR_MAX; i++)
		dict_u64(t, "bad_chain_", uvs_chain_err_str(i), g->chain_err[i]);
	rte_tel_data_add_dict_u64(t, "vhost_user_connections", g->vhu_conns);
	rte_tel_data_add_dict_u64(t, "vhost_user_replaced", g->vhu_replaced);
	rte_tel_data_add_dict_u64(t, "vhost_user_throttled", g->vhu_throttled);
	rte_tel_data_add_dict_u64(t, "vhost_user_nofd", g->vhu_nofd);
	rte_tel_data_add_dict_u64(t, "vhost_user_messages", g->vhu_msgs);
	for (int i = 1; i < UVS_VHUMSG_ERR_MAX; i++)
		dict_u64(t, "vhost_user_refused_", uvs_vhumsg_err_str(i), g->vhu_refused[i]);
	fill_queue(t, "rxq_", g, UVS_VQ_RX);
	fill_queue(t, "txq_", g, UVS_VQ_TX);
	return 0;
}

static void
addr_str(char *buf, size_t len, uint32_t cid, uint32_t port)
{
	char c[16], p[16];

	if (cid == VMADDR_CID_ANY)
		snprintf(c, sizeof(c), "*");
	else
		snprintf(c, sizeof(c), "%u", cid);
	if (port == VMADDR_PORT_ANY)
		snprintf(p, sizeof(p), "*");
	else
		snprintf(p, sizeof(p), "%u", port);
	snprintf(buf, len, "%s:%s", c, p);
}

/* Entry "c<pos>" of t: one socket or connection. s is its host socket, if any. */
static void
conn_entry(struct rte_tel_data *t, uint64_t pos, const struct uvs_conn *c,
		const struct uvs_srv_sock *s)
{
	struct rte_tel_data *e = rte_tel_data_alloc();
	char key[32], addr[48];
	uint32_t sendq = 0;

	if (e == NULL)
		return;
	rte_tel_data_start_dict(e);
	rte_tel_data_add_dict_string(e, "state", uvs_state_str(c->state));
	rte_tel_data_add_dict_string(
			e, "type", c->type == UVS_TYPE_SEQPACKET ? "seqpacket" : "stream");
	addr_str(addr, sizeof(addr),
			c->state == UVS_ST_LISTEN && s != NULL ? s->bound_cid : c->local_cid,
			c->local_port);
	rte_tel_data_add_dict_string(e, "local", addr);
	if (c->peer != NULL)
		addr_str(addr, sizeof(addr), c->peer_cid, c->peer_port);
	else
		snprintf(addr, sizeof(addr), "*:*");
	rte_tel_data_add_dict_string(e, "peer", addr);
	if (c->state == UVS_ST_LISTEN) {
		rte_tel_data_add_dict_u64(e, "accept_queue", c->nqueued);
		rte_tel_data_add_dict_u64(e, "backlog", c->backlog);
	} else {
		if (s != NULL && s->shm != NULL)
			(void)uvs_ring_used(&s->sb.tx, &sendq);
		rte_tel_data_add_dict_u64(e, "recv_q", c->cr.rx_cnt - c->cr.fwd_cnt);
		rte_tel_data_add_dict_u64(e, "send_q", sendq);
		rte_tel_data_add_dict_u64(e, "rx_bytes", c->rx_bytes);
		rte_tel_data_add_dict_u64(e, "tx_bytes", c->tx_bytes);
		rte_tel_data_add_dict_u64(e, "credit_stalls", c->credit_stalls);
		rte_tel_data_add_dict_u64(e, "peer_credit", uvs_credit_peer_free(&c->cr));
		rte_tel_data_add_dict_u64(e, "buf_size", c->buf_size);
	}
	rte_tel_data_add_dict_string(e, "app", s != NULL && s->anchor >= 0 ? "open" : "closed");
	if (s != NULL)
		rte_tel_data_add_dict_u64(e, "uid", s->uid);
	snprintf(key, sizeof(key), "c%" PRIu64, pos);
	if (rte_tel_data_add_dict_container(t, key, e, 0) < 0)
		rte_tel_data_free(e);
}

static int
fill_conns(struct uvs_daemon *d, const char *params, struct rte_tel_data *t)
{
	uint64_t cursor = 0, pos = 0;
	unsigned int n = 0;
	char *end;

	if (params != NULL && *params != '\0') {
		cursor = strtoull(params, &end, 10);
		if (*end != '\0')
			return -EINVAL;
	}
	rte_tel_data_start_dict(t);
	/* listeners (no peer: only the socket table knows them) */
	for (uint32_t i = 0; i < d->srv.nsocks_alloc; i++) {
		const struct uvs_srv_sock *s = uvs_srv_sock_at(&d->srv, i);

		if (s == NULL || !s->listening || s->conn == NULL || s->anchor < 0)
			continue;
		if (pos++ < cursor)
			continue;
		if (n == UVSD_TEL_PAGE)
			goto more;
		conn_entry(t, pos - 1, s->conn, s);
		n++;
	}
	for (unsigned int gi = 0; gi < d->nguests; gi++) {
		const struct uvsd_guest *g = &d->guests[gi];
		const struct uvs_conn *c;

		if (!g->running)
			continue;
		LIST_FOREACH(c, &g->peer.conns, peer_link) {
			if (pos++ < cursor)
				continue;
			if (n == UVSD_TEL_PAGE)
				goto more;
			conn_entry(t, pos - 1, c, c->sock);
			n++;
		}
	}
	rte_tel_data_add_dict_u64(t, "next", 0);
	return 0;
more:
	rte_tel_data_add_dict_u64(t, "next", pos - 1);
	return 0;
}

void
uvsd_telemetry_serve(struct uvs_daemon *d)
{
	struct tel_req *req;
	uint64_t v;

	(void)read(d->tel_efd, &v, sizeof(v));
	pthread_mutex_lock(&d->tel_lock);
	req = d->tel_req;
	if (req != NULL && !req->done) {
		switch (req->cmd) {
		case TEL_STATS:
			req->rc = fill_stats(d, req->out);
			break;
		case TEL_GUESTS:
			req->rc = fill_guests(d, req->out);
			break;
		case TEL_GUEST:
			req->rc = fill_guest(d, req->params, req->out);
			break;
		case TEL_CONNS:
			req->rc = fill_conns(d, req->params, req->out);
			break;
		}
		req->done = true;
		pthread_cond_broadcast(&d->tel_cond);
	}
	pthread_mutex_unlock(&d->tel_lock);
}

/* On DPDK's telemetry thread: post the request, wait for the polling thread's answer. */
static int
tel_call(enum tel_cmd cmd, const char *params, struct rte_tel_data *out)
{
	struct uvs_daemon *d = tel_daemon;
	struct tel_req req = { .cmd = cmd, .params = params, .out = out };
	uint64_t one = 1;

	pthread_mutex_lock(&d->tel_lock);
	while (d->tel_req != NULL && !d->stop)
		pthread_cond_wait(&d->tel_cond, &d->tel_lock);
	if (d->stop) {
		pthread_mutex_unlock(&d->tel_lock);
		return -1; /* DPDK's convention */
	}
	d->tel_req = &req;
	if (write(d->tel_efd, &one, sizeof(one)) != sizeof(one))
		req.rc = -EIO;
	else
		while (!req.done && !d->stop)
			pthread_cond_wait(&d->tel_cond, &d->tel_lock);
	/* filled under the lock: once we hold it, the polling thread is done with req */
	d->tel_req = NULL;
	pthread_cond_broadcast(&d->tel_cond);
	pthread_mutex_unlock(&d->tel_lock);
	return req.done && req.rc == 0 ? 0 : -1; /* DPDK's convention: -1 gives a null reply */
}

static int
cb_stats(const char *cmd, const char *params, struct rte_tel_data *out)
{
	(void)cmd;
	(void)params;
	return tel_call(TEL_STATS, NULL, out);
}

static int
cb_guests(const char *cmd, const char *params, struct rte_tel_data *out)
{
	(void)cmd;
	(void)params;
	return tel_call(TEL_GUESTS, NULL, out);
}

static int
cb_guest(const char *cmd, const char *params, struct rte_tel_data *out)
{
	(void)cmd;
	return tel_call(TEL_GUEST, params, out);
}

static int
cb_conns(const char *cmd, const char *params, struct rte_tel_data *out)
{
	(void)cmd;
	return tel_call(TEL_CONNS, params, out);
}

int
uvsd_telemetry_init(struct uvs_daemon *d)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = UVS_SRV_EP_TAG(UVSD_EP_TEL, 0) };

	tel_daemon = d;
	pthread_mutex_init(&d->tel_lock, NULL);
	pthread_cond_init(&d->tel_cond, NULL);
	d->tel_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->tel_efd < 0 || epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->tel_efd, &ev) < 0)
		return -errno;
	if (rte_telemetry_register_cmd("/uvsock/stats", cb_stats,
			    "uvsockd totals: guests, host sockets, connections, refusals") < 0 ||
			rte_telemetry_register_cmd(
					"/uvsock/guests", cb_guests, "The guests' CIDs") < 0 ||
			rte_telemetry_register_cmd("/uvsock/guest", cb_guest,
					"One guest's counters and queues. Parameter: CID") < 0 ||
			rte_telemetry_register_cmd("/uvsock/conns", cb_conns,
					"Live sockets and connections, a page at a time. "
					"Parameter: cursor (\"next\" of the previous page)") < 0)
		return -EINVAL;
	return 0;
}

/* Unblock telemetry callers at shutdown: nothing will answer them any more. */
void
uvsd_telemetry_stop(struct uvs_daemon *d)
{
	pthread_mutex_lock(&d->tel_lock);
	pthread_cond_broadcast(&d->tel_cond);
	pthread_mutex_unlock(&d->tel_lock);
}
