/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Implementation notes
 *
 * States reuse Linux's names (uvs_state): CLOSE, LISTEN, SYN_SENT, ESTABLISHED, CLOSING,
 * plus DONE for a connection that is over on the wire but still held by the socket layer.
 * Incoming packets are dispatched exactly as Linux's virtio_transport_recv_pkt does:
 * unknown type -> RST; look up the connected table by (peer cid, peer port, local port),
 * then the bound table by local port; nothing found -> RST unless the packet is an RST;
 * then one handler per state. Every packet refreshes the peer's credit.
 *
 * Ownership: the engine allocates and frees struct uvs_conn. The socket layer creates a
 * connection with uvs_conn_create() and gives it up with uvs_conn_close(); the engine keeps
 * it until the close sequence on the wire is over and then raises UVS_EV_FREE. Children of
 * a listener are created by the engine (UVS_EV_ACCEPTABLE), and the socket layer attaches
 * its object to child->sock from inside that event.
 *
 * Replies never allocate: a connection owes control packets as bits in c->owe, and replies
 * to packets without a connection go to a fixed ring per peer. A peer's connections with
 * something to send sit on p->txq; uvs_engine_tx() serves them round robin, one packet per
 * receive buffer, so a busy connection cannot starve the others.
 *
 * Threading: none. The engine and everything it calls run on one thread (the daemon's
 * polling lcore).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "uvs_conn.h"
#include "uvs_virtq.h"

LIST_HEAD(uvs_conn_list, uvs_conn);

struct uvs_engine {
	uint32_t local_cid;
	uint32_t next_ephemeral;
	uint64_t seed; /* hash key, random per engine */
	const struct uvs_engine_ops *ops;
	void *ctx;
	TAILQ_HEAD(, uvs_conn) timers;
	struct uvs_conn_list conns[UVS_ENGINE_HASH_BUCKETS];
	struct uvs_conn_list bound[UVS_ENGINE_HASH_BUCKETS];
};

static void conn_free(struct uvs_conn *c);

/* splitmix64's finaliser: every input bit affects every output bit. */
static uint64_t
mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

/* Keyed with a random per-engine secret: a guest picks its source ports, and must not be
 * able to pile its connections into one bucket (every lookup would walk them all). */
static uint32_t
hash_conn(const struct uvs_engine *eng, uint32_t peer_cid, uint32_t peer_port, uint32_t local_port)
{
	uint64_t h = mix64(((uint64_t)peer_cid << 32 | peer_port) ^ eng->seed);

	h = mix64(h ^ local_port ^ (eng->seed >> 17));
	return (uint32_t)h & (UVS_ENGINE_HASH_BUCKETS - 1);
}

static uint32_t
hash_port(const struct uvs_engine *eng, uint32_t port)
{
	return (uint32_t)mix64(port ^ eng->seed) & (UVS_ENGINE_HASH_BUCKETS - 1);
}

struct uvs_engine *
uvs_engine_create(uint32_t local_cid, const struct uvs_engine_ops *ops, void *ctx)
{
	struct uvs_engine *eng = calloc(1, sizeof(*eng));
	struct timespec ts;

	if (eng == NULL)
		return NULL;
	eng->local_cid = local_cid;
	eng->ops = ops;
	eng->ctx = ctx;
	TAILQ_INIT(&eng->timers);
	for (unsigned int i = 0; i < UVS_ENGINE_HASH_BUCKETS; i++) {
		LIST_INIT(&eng->conns[i]);
		LIST_INIT(&eng->bound[i]);
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (getrandom(&eng->seed, sizeof(eng->seed), GRND_NONBLOCK) != sizeof(eng->seed))
		eng->seed = mix64(
				(uint64_t)ts.tv_sec << 32 ^ (uint64_t)ts.tv_nsec ^ (uintptr_t)eng);
	/* Linux starts ephemeral ports at a random value above the reserved range. */
	eng->next_ephemeral =
			UVS_LAST_RESERVED_PORT + 1 + (uint32_t)(mix64(eng->seed) % 0x7fff0000u);
	return eng;
}

void
uvs_engine_destroy(struct uvs_engine *eng)
{
	free(eng);
}

uint32_t
uvs_engine_local_cid(const struct uvs_engine *eng)
{
	return eng->local_cid;
}

bool
uvs_engine_idle(const struct uvs_engine *eng)
{
	if (!TAILQ_EMPTY(&eng->timers))
		return false;
	for (unsigned int i = 0; i < UVS_ENGINE_HASH_BUCKETS; i++)
		if (!LIST_EMPTY(&eng->conns[i]) || !LIST_EMPTY(&eng->bound[i]))
			return false;
	return true;
}

void
uvs_peer_init(struct uvs_peer *p, uint32_t cid, bool seqpacket, void *transport)
{
	memset(p, 0, sizeof(*p));
	p->cid = cid;
	p->seqpacket = seqpacket;
	p->transport = transport;
	TAILQ_INIT(&p->txq);
	LIST_INIT(&p->conns);
}

static void
peer_attach(struct uvs_conn *c, struct uvs_peer *p)
{
	c->peer = p;
	p->nconns++;
	LIST_INSERT_HEAD(&p->conns, c, peer_link);
}

static void
peer_release(struct uvs_conn *c)
{
	if (c->peer == NULL)
		return;
	LIST_REMOVE(c, peer_link);
	c->peer->nconns--;
	c->peer = NULL;
}

/* --- tables --- */

static struct uvs_conn *
lookup_connected(struct uvs_engine *eng, uint32_t peer_cid, uint32_t peer_port, uint32_t local_port)
{
	struct uvs_conn *c;

	LIST_FOREACH(c, &eng->conns[hash_conn(eng, peer_cid, peer_port, local_port)], hash_link) {
		if (c->peer_cid == peer_cid && c->peer_port == peer_port &&
				c->local_port == local_port)
			return c;
	}
	return NULL;
}

static struct uvs_conn *
lookup_bound(struct uvs_engine *eng, uint32_t port)
{
	struct uvs_conn *c;

	LIST_FOREACH(c, &eng->bound[hash_port(eng, port)], bound_link) {
		if (c->local_port == port)
			return c;
	}
	return NULL;
}

static void
hash_insert(struct uvs_conn *c)
{
	struct uvs_engine *eng = c->eng;

	LIST_INSERT_HEAD(&eng->conns[hash_conn(eng, c->peer_cid, c->peer_port, c->local_port)], c,
			hash_link);
	c->in_hash = true;
}

static void
hash_remove(struct uvs_conn *c)
{
	if (c->in_hash) {
		LIST_REMOVE(c, hash_link);
		c->in_hash = false;
	}
}

static void
bound_remove(struct uvs_conn *c)
{
	if (c->in_bound) {
		LIST_REMOVE(c, bound_link);
		c->in_bound = false;
	}
}

static void
timer_set(struct uvs_conn *c, uint64_t deadline_ns)
{
	c->deadline_ns = deadline_ns;
	if (!c->on_timer) {
		TAILQ_INSERT_TAIL(&c->eng->timers, c, timer_link);
		c->on_timer = true;
	}
}

static void
timer_cancel(struct uvs_conn *c)
{
	if (c->on_timer) {
		TAILQ_REMOVE(&c->eng->timers, c, timer_link);
		c->on_timer = false;
	}
}

static void
txq_add(struct uvs_conn *c)
{
	struct uvs_peer *p = c->peer;

	if (p == NULL || c->on_txq)
		return;
	TAILQ_INSERT_TAIL(&p->txq, c, txq_link);
	c->on_txq = true;
	if (!p->kicked) {
		p->kicked = true;
		c->eng->ops->kick(c->eng->ctx, p);
	}
}

static void
txq_remove(struct uvs_conn *c)
{
	if (c->on_txq) {
		TAILQ_REMOVE(&c->peer->txq, c, txq_link);
		c->on_txq = false;
	}
}

static void
owe(struct uvs_conn *c, uint8_t what)
{
	c->owe |= what;
	txq_add(c);
}

static void
event(struct uvs_conn *c, enum uvs_event ev)
{
	c->eng->ops->event(c->eng->ctx, c, ev);
}

/* Queue a header on the peer's fixed ring of replies that belong to no connection. */
static void
orphan_push(struct uvs_engine *eng, struct uvs_peer *p, uint32_t dst_cid, uint32_t src_port,
		uint32_t dst_port, uint16_t type, uint32_t buf_alloc, uint32_t fwd_cnt)
{
	struct uvs_hdr *h;

	if (p->orphan_count == UVS_PEER_ORPHAN_RST_MAX) {
		p->drops[UVS_DROP_ORPHAN_FULL]++;
		return;
	}
	h = &p->orphan[(p->orphan_head + p->orphan_count) % UVS_PEER_ORPHAN_RST_MAX];
	memset(h, 0, sizeof(*h));
	h->src_cid = eng->local_cid;
	h->dst_cid = dst_cid; /* p->cid, or another guest behind it (any_src) */
	h->src_port = src_port;
	h->dst_port = dst_port;
	h->type = type;
	h->op = UVS_OP_RST;
	h->buf_alloc = buf_alloc;
	h->fwd_cnt = fwd_cnt;
	p->orphan_count++;
	if (!p->kicked) {
		p->kicked = true;
		eng->ops->kick(eng->ctx, p);
	}
}

/* Queue the RST of a connection that is about to be freed; like Linux's RST for an existing
 * socket it carries the connection's credit values. */
static void
orphan_rst_conn(struct uvs_conn *c)
{
	if (c->sock != NULL)
		c->cr.fwd_cnt = c->eng->ops->rx_consumed(c->eng->ctx, c);
	orphan_push(c->eng, c->peer, c->peer_cid, c->local_port, c->peer_port, c->type,
			c->cr.buf_alloc, c->cr.fwd_cnt);
}

/* Queue an RST answering `req`, which has no connection. Never answers an RST. The caller
 * counts why (one counter per refused packet). */
static void
orphan_rst(struct uvs_engine *eng, struct uvs_peer *p, const struct uvs_hdr *req)
{
	if (req->op != UVS_OP_RST)
		orphan_push(eng, p, (uint32_t)req->src_cid, req->dst_port, req->src_port, req->type,
				0, 0);
}

/* Leave the connection over on the wire. The socket layer keeps it until it closes. */
static void
conn_finish(struct uvs_conn *c)
{
	c->state = UVS_ST_DONE;
	c->peer_shut = UVS_SHUTDOWN_BOTH;
	/* Nothing owed (a SHUTDOWN held behind data, a CREDIT_UPDATE) may follow the end. */
	c->owe &= UVS_OWE_RST;
	hash_remove(c);
	timer_cancel(c);
	if (c->closed_by_app && !(c->owe & UVS_OWE_RST))
		conn_free(c);
}

/* Over on the wire: owe the peer an RST (it is the only packet c still sends), leave the
 * tables and timers, and tell a socket layer that still holds c. */
static void
owe_rst(struct uvs_conn *c, bool was_established)
{
	c->owe = 0;
	owe(c, UVS_OWE_RST);
	hash_remove(c);
	timer_cancel(c);
	c->state = UVS_ST_DONE;
	c->peer_shut = UVS_SHUTDOWN_BOTH;
	if (was_established && !c->closed_by_app && c->listener == NULL)
		event(c, UVS_EV_RESET);
}

/* Reset a connection we hold: RST to the peer, EOF/EPIPE to the application. */
static void
conn_reset(struct uvs_conn *c, enum uvs_drop why)
{
	bool was_established = c->state == UVS_ST_ESTABLISHED;

	if (c->peer != NULL && why < UVS_DROP_MAX)
		c->peer->drops[why]++;
	if (c->closed_by_app) {
		/* Nobody holds it any more: the RST goes out from the peer's reply ring, and the
		 * connection (its socket, its memory) is freed now, even if the peer never
		 * posts a receive buffer again. */
		if (c->peer != NULL)
			orphan_rst_conn(c);
		conn_free(c);
		return;
	}
	owe_rst(c, was_established);
}

static void
connect_failed(struct uvs_conn *c, int err)
{
	timer_cancel(c);
	hash_remove(c);
	txq_remove(c);
	peer_release(c);
	c->state = UVS_ST_CLOSE;
	c->err = err;
	c->owe = 0;
	if (c->closed_by_app)
		conn_free(c);
	else
		event(c, UVS_EV_CONNECT_FAILED);
}

static void
conn_free(struct uvs_conn *c)
{
	struct uvs_conn *child;

	while ((child = TAILQ_FIRST(&c->accept_q)) != NULL) {
		TAILQ_REMOVE(&c->accept_q, child, accept_link);
		child->listener = NULL;
		child->closed_by_app = true;
		conn_reset(child, UVS_DROP_NONE); /* the listener closed: not a drop */
	}
	if (c->listener != NULL) {
		TAILQ_REMOVE(&c->listener->accept_q, c, accept_link);
		c->listener->nqueued--;
		c->listener = NULL;
	}
	event(c, UVS_EV_FREE);
	/* a connection that carried data within its credit: the next overrun costs less */
	if (c->peer != NULL && c->rx_bytes > 0 && !c->overran &&
			c->peer->penalty_next > UVS_PEER_PENALTY_REQUESTS)
		c->peer->penalty_next /= 2;
	hash_remove(c);
	bound_remove(c);
	timer_cancel(c);
	txq_remove(c);
	peer_release(c);
	free(c);
}

/* --- receive --- */

static void
recv_listen(struct uvs_conn *l, struct uvs_peer *p, const struct uvs_hdr *h)
{
	struct uvs_engine *eng = l->eng;
	struct uvs_conn *c;

	if (h->op != UVS_OP_REQUEST) {
		p->drops[UVS_DROP_UNEXPECTED]++;
		orphan_rst(eng, p, h);
		return;
	}
	if (h->type == UVS_TYPE_SEQPACKET && !p->seqpacket) {
		p->drops[UVS_DROP_BAD_TYPE]++;
		orphan_rst(eng, p, h);
		return;
	}
	if (p->penalty > 0) {
		p->penalty--;
		p->drops[UVS_DROP_PENALTY]++;
		orphan_rst(eng, p, h);
		return;
	}
	/* Linux's sk_acceptq_is_full(): backlog + 1 connections may wait. */
	if (l->nqueued > l->backlog) {
		p->drops[UVS_DROP_BACKLOG]++;
		orphan_rst(eng, p, h);
		return;
	}
	if (p->nconns >= UVS_PEER_MAX_CONNS) {
		p->drops[UVS_DROP_CONN_LIMIT]++;
		orphan_rst(eng, p, h);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		p->drops[UVS_DROP_NOMEM]++;
		orphan_rst(eng, p, h);
		return;
	}
	TAILQ_INIT(&c->accept_q);
	c->eng = eng;
	peer_attach(c, p);
	c->type = l->type;
	c->local_cid = eng->local_cid;
	c->local_port = l->local_port;
	c->peer_cid = (uint32_t)h->src_cid; /* p->cid, or another guest's (any_src) */
	c->peer_port = h->src_port;
	c->buf_size = l->buf_size;
	c->connect_timeout_ns = l->connect_timeout_ns;
	c->state = UVS_ST_ESTABLISHED;
	uvs_credit_init(&c->cr, c->buf_size);
	uvs_credit_peer_update(&c->cr, h->buf_alloc, h->fwd_cnt);
	hash_insert(c);
	c->listener = l;
	TAILQ_INSERT_TAIL(&l->accept_q, c, accept_link);
	l->nqueued++;
	event(c, UVS_EV_ACCEPTABLE);
	if (c->sock == NULL) {
		/* The socket layer could not take it (no memory for its rings). */
		c->closed_by_app = true;
		conn_reset(c, UVS_DROP_RX_NOBUFS); /* frees c, and takes it off the queue */
		return;
	}
	owe(c, UVS_OWE_RESPONSE);
}

static void
recv_connecting(struct uvs_conn *c, const struct uvs_hdr *h)
{
	switch (h->op) {
	case UVS_OP_RESPONSE:
		timer_cancel(c);
		c->state = UVS_ST_ESTABLISHED;
		event(c, UVS_EV_CONNECTED);
		txq_add(c);
		break;
	case UVS_OP_RST:
		connect_failed(c, -ECONNRESET);
		break;
	case UVS_OP_INVALID:
		break;
	default:
		/* Linux: anything else while connecting is a protocol error, answered with RST. */
		c->peer->drops[UVS_DROP_UNEXPECTED]++;
		orphan_rst(c->eng, c->peer, h);
		connect_failed(c, -EPROTO);
		break;
	}
}

static void
recv_rw(struct uvs_conn *c, const struct uvs_hdr *h, const struct iovec *iov, unsigned int n,
		uint32_t off)
{
	uint32_t flags = c->type == UVS_TYPE_SEQPACKET ? h->flags & (UVS_SEQ_EOM | UVS_SEQ_EOR) : 0;

	if (h->len == 0) {
		c->peer->drops[UVS_DROP_ZERO_RW]++;
		return;
	}
	c->rx_bytes += h->len;
	if (uvs_credit_received(&c->cr, h->len) < 0) {
		struct uvs_peer *p = c->peer;

		p->penalty_next = uvs_peer_penalty_after(p->penalty_next);
		p->penalty = p->penalty_next;
		c->overran = true;
		conn_reset(c, UVS_DROP_CREDIT_OVERRUN);
		return;
	}
	if (c->eng->ops->rx_data(c->eng->ctx, c, iov, n, off, h->len, flags) < 0)
		conn_reset(c, UVS_DROP_RX_NOBUFS);
}

static void
recv_established(struct uvs_conn *c, const struct uvs_hdr *h, const struct iovec *iov,
		unsigned int n, uint32_t off)
{
	uint8_t before;

	switch (h->op) {
	case UVS_OP_RW:
		recv_rw(c, h, iov, n, off);
		break;
	case UVS_OP_CREDIT_REQUEST:
		owe(c, UVS_OWE_CREDIT_UPDATE);
		break;
	case UVS_OP_CREDIT_UPDATE:
		/* credit was taken from the header already */
		break;
	case UVS_OP_SHUTDOWN:
		before = c->peer_shut;
		c->peer_shut |= h->flags & UVS_SHUTDOWN_BOTH;
		if (c->peer_shut != before)
			event(c, UVS_EV_PEER_SHUTDOWN);
		if (c->peer_shut == UVS_SHUTDOWN_BOTH) {
			/* Free the tuple at once so the peer can reconnect from the same port. */
			hash_remove(c);
			if (c->eng->ops->rx_consumed(c->eng->ctx, c) == c->cr.rx_cnt)
				conn_reset(c, UVS_DROP_NONE);
		}
		break;
	case UVS_OP_RST: {
		bool held = !c->closed_by_app;

		conn_finish(c); /* frees c unless the application still holds it */
		if (held)
			event(c, UVS_EV_RESET);
		break;
	}
	default:
		/* Linux ignores other ops on a connected socket. */
		c->peer->drops[UVS_DROP_UNEXPECTED]++;
		break;
	}
}

/*
 * The application closed; we wait for the peer's RST. Linux keeps such a socket in
 * TCP_ESTABLISHED (virtio_transport_close() leaves sk_state alone), so a SHUTDOWN with both
 * bits (the peer closed too: a simultaneous close) is answered with RST at once when nothing
 * is left unread, as on an open socket. Ignoring it, as an earlier version did, left both ends
 * waiting out the close timeout when both were uvsock (found with uvsock-guest's serve mode);
 * a Linux peer hid it by answering RST itself. Everything else but RST is ignored.
 */
static void
recv_closing(struct uvs_conn *c, const struct uvs_hdr *h)
{
	switch (h->op) {
	case UVS_OP_RST:
		conn_finish(c);
		break;
	case UVS_OP_SHUTDOWN:
		c->peer_shut |= h->flags & UVS_SHUTDOWN_BOTH;
		if (c->peer_shut == UVS_SHUTDOWN_BOTH) {
			hash_remove(c);
			if (c->eng->ops->rx_consumed(c->eng->ctx, c) == c->cr.rx_cnt)
				conn_reset(c, UVS_DROP_NONE); /* closed by the app: freed */
		}
		break;
	default:
		break;
	}
}

const char *
uvs_drop_str(enum uvs_drop d)
{
	static const char *const names[UVS_DROP_MAX] = {
		[UVS_DROP_NO_CONN_RST] = "no_conn_rst",
		[UVS_DROP_RST_NO_CONN] = "rst_no_conn",
		[UVS_DROP_BAD_TYPE] = "bad_type",
		[UVS_DROP_ORPHAN_FULL] = "orphan_queue_full",
		[UVS_DROP_CREDIT_OVERRUN] = "credit_overrun",
		[UVS_DROP_RX_NOBUFS] = "rx_nobufs",
		[UVS_DROP_CONN_LIMIT] = "conn_limit",
		[UVS_DROP_BACKLOG] = "backlog_full",
		[UVS_DROP_PENALTY] = "penalty",
		[UVS_DROP_UNEXPECTED] = "unexpected_op",
		[UVS_DROP_ZERO_RW] = "zero_len_rw",
		[UVS_DROP_NOMEM] = "no_memory",
	};

	return (unsigned int)d < UVS_DROP_MAX ? names[d] : "?";
}

const char *
uvs_state_str(enum uvs_state st)
{
	static const char *const names[] = {
		[UVS_ST_CLOSE] = "unconnected",
		[UVS_ST_LISTEN] = "listen",
		[UVS_ST_SYN_SENT] = "syn-sent",
		[UVS_ST_ESTABLISHED] = "established",
		[UVS_ST_CLOSING] = "closing",
		[UVS_ST_DONE] = "done",
	};

	return (unsigned int)st < sizeof(names) / sizeof(names[0]) ? names[st] : "?";
}

void
uvs_engine_rx(struct uvs_engine *eng, struct uvs_peer *p, const struct uvs_hdr *hdr,
		const struct iovec *iov, unsigned int n, uint32_t off)
{
	struct uvs_conn *c;

	p->rx_pkts++;
	p->rx_bytes += hdr->len;
	if (p->any_src ? hdr->src_cid > UINT32_MAX || hdr->src_cid == eng->local_cid
		       : hdr->src_cid != p->cid)
		return; /* uvs_pkt_check() refuses these; never trust a caller blindly */
	if (hdr->type != UVS_TYPE_STREAM && hdr->type != UVS_TYPE_SEQPACKET) {
		p->drops[UVS_DROP_BAD_TYPE]++;
		orphan_rst(eng, p, hdr);
		return;
	}
	c = lookup_connected(eng, (uint32_t)hdr->src_cid, hdr->src_port, hdr->dst_port);
	if (c == NULL) {
		/* Connected sockets keep their port in the bound table so that nobody else
		 * binds it, but, as in Linux, only unconnected ones answer there. */
		c = lookup_bound(eng, hdr->dst_port);
		if (c != NULL && c->state != UVS_ST_LISTEN && c->state != UVS_ST_CLOSE)
			c = NULL;
	}
	if (c == NULL) {
		p->drops[hdr->op == UVS_OP_RST ? UVS_DROP_RST_NO_CONN : UVS_DROP_NO_CONN_RST]++;
		orphan_rst(eng, p, hdr);
		return;
	}
	if (c->type != hdr->type) {
		p->drops[UVS_DROP_BAD_TYPE]++;
		orphan_rst(eng, p, hdr);
		return;
	}
	if (c->peer == p) {
		bool resized = c->cr.peer_buf_alloc != hdr->buf_alloc;
		bool grew = uvs_credit_peer_update(&c->cr, hdr->buf_alloc, hdr->fwd_cnt);

		if ((grew || resized) && !c->closed_by_app)
			event(c, UVS_EV_WRITABLE);
		if (grew)
			txq_add(c);
	}
	switch (c->state) {
	case UVS_ST_LISTEN:
		recv_listen(c, p, hdr);
		break;
	case UVS_ST_SYN_SENT:
		recv_connecting(c, hdr);
		break;
	case UVS_ST_ESTABLISHED:
		recv_established(c, hdr, iov, n, off);
		break;
	case UVS_ST_CLOSING:
		recv_closing(c, hdr);
		break;
	default:
		/* bound but not listening, or finished: Linux resets */
		p->drops[UVS_DROP_UNEXPECTED]++;
		orphan_rst(eng, p, hdr);
		break;
	}
}

void
uvs_peer_detach(struct uvs_engine *eng, struct uvs_peer *p)
{
	struct uvs_conn *c;

	(void)eng;
	while ((c = LIST_FIRST(&p->conns)) != NULL) {
		txq_remove(c);
		c->owe = 0;
		if (c->state == UVS_ST_SYN_SENT) {
			connect_failed(c, -ECONNRESET);
		} else if (c->closed_by_app || c->listener != NULL) {
			/* nobody will ever close it: closed already, or never accepted */
			c->closed_by_app = true;
			conn_free(c);
		} else {
			bool was_established = c->state == UVS_ST_ESTABLISHED;

			hash_remove(c);
			timer_cancel(c);
			peer_release(c);
			c->state = UVS_ST_DONE;
			c->peer_shut = UVS_SHUTDOWN_BOTH;
			/* Not a peer's RST but the peer gone: Linux's vhost sets sk_err to
			 * ECONNRESET on its connected sockets (vhost_vsock_reset_orphans()).
			 * One that an RST finished before keeps its end of stream. */
			if (was_established) {
				c->err = -ECONNRESET;
				event(c, UVS_EV_RESET);
			}
		}
	}
	p->orphan_count = 0;
	p->kicked = true; /* the transport is gone: no more kicks */
}

/* --- transmit --- */

static void
fill_hdr(struct uvs_conn *c, struct uvs_hdr *h, uint16_t op)
{
	memset(h, 0, sizeof(*h));
	h->src_cid = c->local_cid;
	h->dst_cid = c->peer_cid;
	h->src_port = c->local_port;
	h->dst_port = c->peer_port;
	h->type = c->type;
	h->op = op;
	h->buf_alloc = c->cr.buf_alloc;
	if (c->sock != NULL)
		c->cr.fwd_cnt = c->eng->ops->rx_consumed(c->eng->ctx, c);
	h->fwd_cnt = c->cr.fwd_cnt;
	uvs_credit_advertised(&c->cr);
}

static bool
can_send_data(const struct uvs_conn *c)
{
	return (c->state == UVS_ST_ESTABLISHED || c->state == UVS_ST_CLOSING) &&
	       !(c->sent_shut & UVS_SHUTDOWN_SEND) && !(c->peer_shut & UVS_SHUTDOWN_RCV) &&
	       c->sock != NULL;
}

/* Build the next packet of c. @return payload+header bytes written, 0 if c has nothing. */
static uint32_t
conn_tx(struct uvs_conn *c, const struct iovec *iov, unsigned int n, uint32_t room)
{
	const struct uvs_engine_ops *ops = c->eng->ops;
	struct uvs_hdr h;
	uint32_t flags, len, max, credit;

again:
	if (c->owe & UVS_OWE_RST) {
		fill_hdr(c, &h, UVS_OP_RST);
		c->owe = 0;
		uvs_iov_from_buf(iov, n, 0, &h, sizeof(h));
		if (c->closed_by_app) {
			conn_free(c);
		} else {
			c->state = UVS_ST_DONE;
			txq_remove(c);
		}
		return UVS_HDR_SIZE;
	}
	if (c->owe & (UVS_OWE_REQUEST | UVS_OWE_RESPONSE)) {
		fill_hdr(c, &h, c->owe & UVS_OWE_REQUEST ? UVS_OP_REQUEST : UVS_OP_RESPONSE);
		c->owe &= ~(UVS_OWE_REQUEST | UVS_OWE_RESPONSE);
		uvs_iov_from_buf(iov, n, 0, &h, sizeof(h));
		return UVS_HDR_SIZE;
	}
	if (can_send_data(c)) {
		credit = uvs_credit_peer_free(&c->cr);
		max = room - UVS_HDR_SIZE;
		if (max > UVS_MAX_PKT_PAYLOAD)
			max = UVS_MAX_PKT_PAYLOAD;
		if (max > credit)
			max = credit;
		flags = 0;
		len = max == 0 ? 0 : ops->tx_peek(c->eng->ctx, c, max, &flags);
		if (len > 0) {
			fill_hdr(c, &h, UVS_OP_RW);
			h.len = len;
			h.flags = c->type == UVS_TYPE_SEQPACKET ? flags : 0;
			uvs_iov_from_buf(iov, n, 0, &h, sizeof(h));
			ops->tx_copy(c->eng->ctx, c, iov, n, UVS_HDR_SIZE, len);
			uvs_credit_sent(&c->cr, len);
			c->peer->tx_bytes += len;
			c->tx_bytes += len;
			c->stalled = false;
			return UVS_HDR_SIZE + len;
		}
		/* Out of credit with data waiting: a stall (counted once until data moves). */
		if (credit == 0 && !c->stalled && ops->tx_peek(c->eng->ctx, c, 1, &flags) > 0) {
			c->stalled = true;
			c->credit_stalls++;
			c->peer->credit_stalls++;
		}
		if (c->owe & UVS_OWE_RST)
			goto again; /* the socket layer aborted the connection from tx_peek */
	}
	if ((c->owe & UVS_OWE_SHUTDOWN) && (c->sent_shut | c->local_shut) != c->sent_shut) {
		/* SHUTDOWN(SEND) must follow every queued byte: hold it while data remains. */
		flags = 0;
		len = c->local_shut & UVS_SHUTDOWN_SEND && can_send_data(c)
				      ? ops->tx_peek(c->eng->ctx, c, 1, &flags)
				      : 0;
		if (c->owe & UVS_OWE_RST)
			goto again; /* aborted from tx_peek */
		if (len == 0) {
			fill_hdr(c, &h, UVS_OP_SHUTDOWN);
			h.flags = c->local_shut;
			c->sent_shut = c->local_shut;
			c->owe &= ~UVS_OWE_SHUTDOWN;
			uvs_iov_from_buf(iov, n, 0, &h, sizeof(h));
			return UVS_HDR_SIZE;
		}
	}
	if (c->state == UVS_ST_ESTABLISHED && c->sock != NULL) {
		c->cr.fwd_cnt = ops->rx_consumed(c->eng->ctx, c);
		if ((c->owe & UVS_OWE_CREDIT_UPDATE) || uvs_credit_update_due(&c->cr)) {
			fill_hdr(c, &h, UVS_OP_CREDIT_UPDATE);
			c->owe &= ~UVS_OWE_CREDIT_UPDATE;
			uvs_iov_from_buf(iov, n, 0, &h, sizeof(h));
			return UVS_HDR_SIZE;
		}
	}
	c->owe &= ~UVS_OWE_CREDIT_UPDATE;
	return 0;
}

uint32_t
uvs_engine_tx(struct uvs_engine *eng, struct uvs_peer *p, const struct iovec *iov, unsigned int n,
		uint32_t room)
{
	struct uvs_conn *c;
	uint32_t len;

	(void)eng;
	if (room < UVS_HDR_SIZE)
		return 0;
	if (p->orphan_count > 0) {
		uvs_iov_from_buf(iov, n, 0, &p->orphan[p->orphan_head], UVS_HDR_SIZE);
		p->orphan_head = (p->orphan_head + 1) % UVS_PEER_ORPHAN_RST_MAX;
		p->orphan_count--;
		p->tx_pkts++;
		(void)uvs_peer_tx_pending(p); /* re-arms the kick when this was the last */
		return UVS_HDR_SIZE;
	}
	while ((c = TAILQ_FIRST(&p->txq)) != NULL) {
		/* Rotate first so that c's packet is followed by the other connections'. */
		TAILQ_REMOVE(&p->txq, c, txq_link);
		TAILQ_INSERT_TAIL(&p->txq, c, txq_link);
		len = conn_tx(c, iov, n, room);
		if (len > 0) {
			p->tx_pkts++;
			(void)uvs_peer_tx_pending(p);
			return len;
		}
		txq_remove(c);
	}
	p->kicked = false;
	return 0;
}

bool
uvs_peer_tx_pending(struct uvs_peer *p)
{
	if (p->orphan_count > 0 || !TAILQ_EMPTY(&p->txq))
		return true;
	/* Work can vanish without uvs_engine_tx() seeing it (a queued connection freed by
	 * an RST): whoever learns that nothing is pending re-arms the kick. */
	p->kicked = false;
	return false;
}

void
uvs_engine_tick(struct uvs_engine *eng, uint64_t now_ns)
{
	struct uvs_conn *c, *next;

	for (c = TAILQ_FIRST(&eng->timers); c != NULL; c = next) {
		next = TAILQ_NEXT(c, timer_link);
		if (c->deadline_ns > now_ns)
			continue;
		timer_cancel(c);
		if (c->state == UVS_ST_SYN_SENT) {
			/* Linux cancels the request and reports ETIMEDOUT; a late RESPONSE
			 * then meets no connection and is answered with RST. */
			connect_failed(c, -ETIMEDOUT);
		} else if (c->state == UVS_ST_CLOSING) {
			if (c->peer != NULL)
				conn_reset(c, UVS_DROP_NONE);
			else
				conn_free(c);
		}
	}
}

/* --- socket layer --- */

struct uvs_conn *
uvs_conn_create(struct uvs_engine *eng, uint16_t type, void *sock)
{
	struct uvs_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	TAILQ_INIT(&c->accept_q);
	c->eng = eng;
	c->sock = sock;
	c->type = type;
	c->local_cid = eng->local_cid;
	c->local_port = UVS_PORT_ANY;
	c->peer_cid = UVS_CID_ANY;
	c->peer_port = UVS_PORT_ANY;
	c->buf_size = UVS_BUF_SIZE_DEFAULT;
	c->connect_timeout_ns = UVS_CONNECT_TIMEOUT_NS;
	c->state = UVS_ST_CLOSE;
	return c;
}

int
uvs_conn_bind(struct uvs_conn *c, uint32_t port)
{
	struct uvs_engine *eng = c->eng;

	if (c->in_bound)
		return -EINVAL;
	if (port == UVS_PORT_ANY) {
		for (unsigned int i = 0; i < UVS_EPHEMERAL_RETRIES; i++) {
			uint32_t cand = eng->next_ephemeral++;

			if (cand <= UVS_LAST_RESERVED_PORT || cand == UVS_PORT_ANY) {
				eng->next_ephemeral = UVS_LAST_RESERVED_PORT + 1;
				cand = eng->next_ephemeral++;
			}
			if (lookup_bound(eng, cand) == NULL) {
				port = cand;
				break;
			}
		}
		if (port == UVS_PORT_ANY)
			return -EADDRNOTAVAIL;
	} else if (lookup_bound(eng, port) != NULL) {
		return -EADDRINUSE;
	}
	c->local_port = port;
	LIST_INSERT_HEAD(&eng->bound[hash_port(eng, port)], c, bound_link);
	c->in_bound = true;
	return 0;
}

int
uvs_conn_listen(struct uvs_conn *c, uint32_t backlog)
{
	if (!c->in_bound || (c->state != UVS_ST_CLOSE && c->state != UVS_ST_LISTEN))
		return -EINVAL;
	c->state = UVS_ST_LISTEN;
	c->backlog = backlog;
	return 0;
}

int
uvs_conn_accept(struct uvs_conn *c, struct uvs_conn **child)
{
	struct uvs_conn *ch;

	if (c->state != UVS_ST_LISTEN)
		return -EINVAL;
	ch = TAILQ_FIRST(&c->accept_q);
	if (ch == NULL)
		return -EAGAIN;
	TAILQ_REMOVE(&c->accept_q, ch, accept_link);
	c->nqueued--;
	ch->listener = NULL;
	*child = ch;
	return 0;
}

int
uvs_conn_connect(struct uvs_conn *c, struct uvs_peer *p, uint32_t port, uint64_t now_ns)
{
	return uvs_conn_connect_via(c, p, p->cid, port, now_ns);
}

int
uvs_conn_connect_via(struct uvs_conn *c, struct uvs_peer *p, uint32_t cid, uint32_t port,
		uint64_t now_ns)
{
	int rc;

	switch (c->state) {
	case UVS_ST_CLOSE:
		break;
	case UVS_ST_SYN_SENT:
		return -EALREADY;
	case UVS_ST_ESTABLISHED:
		return -EISCONN;
	default:
		return -EINVAL;
	}
	if (c->type == UVS_TYPE_SEQPACKET && !p->seqpacket)
		return -ESOCKTNOSUPPORT;
	if (p->nconns >= UVS_PEER_MAX_CONNS)
		return -EAGAIN;
	if (!c->in_bound) {
		rc = uvs_conn_bind(c, UVS_PORT_ANY);
		if (rc < 0)
			return rc;
	}
	if (lookup_connected(c->eng, cid, port, c->local_port) != NULL)
		return -EADDRINUSE;
	peer_attach(c, p);
	c->peer_cid = cid;
	c->peer_port = port;
	c->err = 0;
	c->owe = 0;
	c->local_shut = c->sent_shut = c->peer_shut = 0;
	uvs_credit_init(&c->cr, c->buf_size);
	c->state = UVS_ST_SYN_SENT;
	hash_insert(c);
	timer_set(c, now_ns + c->connect_timeout_ns);
	owe(c, UVS_OWE_REQUEST);
	return 0;
}

int
uvs_conn_shutdown(struct uvs_conn *c, uint8_t how)
{
	how &= UVS_SHUTDOWN_BOTH;
	if (c->state != UVS_ST_ESTABLISHED && c->state != UVS_ST_DONE && c->state != UVS_ST_CLOSING)
		return -ENOTCONN;
	if ((c->local_shut | how) == c->local_shut)
		return 0;
	c->local_shut |= how;
	if (c->state == UVS_ST_ESTABLISHED)
		owe(c, UVS_OWE_SHUTDOWN);
	return 0;
}

void
uvs_conn_close(struct uvs_conn *c, uint64_t now_ns)
{
	c->closed_by_app = true;
	switch (c->state) {
	case UVS_ST_LISTEN:
	case UVS_ST_CLOSE:
		conn_free(c);
		return;
	case UVS_ST_SYN_SENT:
		/* Tell the peer at once; a late RESPONSE would be reset anyway. */
		conn_reset(c, UVS_DROP_NONE);
		return;
	case UVS_ST_ESTABLISHED:
		if (c->peer_shut == UVS_SHUTDOWN_BOTH) {
			conn_reset(c, UVS_DROP_NONE);
			return;
		}
		c->local_shut = UVS_SHUTDOWN_BOTH;
		c->state = UVS_ST_CLOSING;
		owe(c, UVS_OWE_SHUTDOWN);
		timer_set(c, now_ns + UVS_CLOSE_TIMEOUT_NS);
		return;
	case UVS_ST_CLOSING:
		return;
	default:
		/* DONE: an RST may still be owed; the peer's reply ring takes it over. */
		if ((c->owe & UVS_OWE_RST) && c->peer != NULL)
			orphan_rst_conn(c);
		conn_free(c);
		return;
	}
}

void
uvs_conn_abort(struct uvs_conn *c)
{
	bool was_established = c->state == UVS_ST_ESTABLISHED;

	if (c->state != UVS_ST_ESTABLISHED && c->state != UVS_ST_CLOSING)
		return;
	/* Never frees c, not even a closed one: the socket layer may call this from inside
	 * tx_peek, and conn_tx() goes on with c. The owed RST frees it once sent. */
	if (c->peer != NULL)
		c->peer->drops[UVS_DROP_RX_NOBUFS]++;
	owe_rst(c, was_established);
}

void
uvs_conn_tx_wake(struct uvs_conn *c)
{
	if (c->peer != NULL && c->state != UVS_ST_SYN_SENT)
		txq_add(c);
}

void
uvs_conn_set_buf_size(struct uvs_conn *c, uint32_t size)
{
	c->buf_size = size;
	if (c->state == UVS_ST_ESTABLISHED) {
		c->cr.buf_alloc = size;
		owe(c, UVS_OWE_CREDIT_UPDATE);
	}
}
