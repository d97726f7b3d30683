/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the protocol engine (uvs_conn.c) against shared/doc/protocol.md §2-§5 and §9: every
 * op in every state, the data path under credit, shutdown/close sequences, peer detach and
 * wrapping counters.
 *
 * The engine runs against a fake socket layer (struct fsock, one per connection: received
 * payload goes to a buffer whose consumed counter is what rx_consumed reports; data to send
 * comes from a buffer with SEQPACKET message boundaries) and a fake guest (CID 3, seqpacket
 * negotiated) that injects headers with uvs_engine_rx() and collects what the engine sends
 * with uvs_engine_tx() into a one-segment buffer. Every collected packet is checked against
 * the invariants that hold for any packet (addressing, len, flags, no zero-length RW).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "uvs_conn.h"
#include "uvs_pkt.h"
#include "uvs_virtq.h"

#define HOST_CID UVS_CID_HOST
#define GUEST_CID 3u
#define SEC 1000000000ull
#define T0 (1000ull * SEC)
/* A Debian 12 guest rx buffer: 44-byte header + 4096 bytes of data. */
#define ROOM_4K (UVS_HDR_SIZE + 4096u)
/* Larger than any packet the engine may build. */
#define ROOM_BIG (UVS_HDR_SIZE + 2u * UVS_MAX_PKT_PAYLOAD)
#define GUEST_BUF (256u * 1024u)

#define MAX_SOCKS 64
#define MAX_EVENTS 8192
#define MAX_RXREC 512
#define MAX_MSGS 64
#define DRAIN_LIMIT 100000u

#define LPORT 1234u  /* host listening port */
#define GPORT 5000u  /* guest source port */
#define GLPORT 7000u /* guest listening port (host connects to it) */

struct tctx;

/* The fake socket layer's object for one connection. */
struct fsock {
	struct tctx *t;
	struct uvs_conn *c;
	bool app_owned; /* created or accepted by the "application": it must close it */
	bool closed;
	bool freed;
	/* receive side */
	int rx_ret; /* what rx_data returns (0 or -ENOBUFS) */
	uint8_t *rx;
	uint32_t rx_len, rx_cap, rx_read;
	uint32_t consumed; /* free-running, what rx_consumed reports */
	uint32_t rx_calls;
	uint32_t rx_rec_len[MAX_RXREC], rx_rec_flags[MAX_RXREC];
	/* send side */
	uint8_t *tx;
	uint32_t tx_len, tx_cap, tx_off;
	uint32_t msg_end[MAX_MSGS], msg_flags[MAX_MSGS];
	uint32_t nmsg, msg_head;
	uint32_t stream_peek_flags; /* flags a careless STREAM socket layer might report */
	uint32_t last_peek;
	bool abort_on_peek; /* act as a socket layer that finds its ring corrupt */
};

struct evrec {
	struct uvs_conn *c;
	struct fsock *fs;
	enum uvs_event ev;
	int err;
	uint8_t state;
};

struct cap {
	struct uvs_hdr h;
	uint8_t *data;
};

struct tctx {
	struct uvs_engine *eng;
	struct uvs_peer *p;
	struct uvs_peer *p2; /* optional second peer */
	struct fsock *socks[MAX_SOCKS];
	unsigned int nsocks;
	struct evrec ev[MAX_EVENTS];
	unsigned int nev;
	unsigned int kicks;
	bool refuse_children;
	struct cap *pkts;
	unsigned int npkts, pkts_cap;
	uint32_t room;
	uint32_t gbuf, gfwd; /* buf_alloc/fwd_cnt the guest puts in its headers */
	uint64_t now;
	uint8_t *txbuf;
};

/* ---------------------------------------------------------------------------------------- */
/* fake socket layer */

static struct fsock *
fsock_new(struct tctx *t, struct uvs_conn *c, bool app_owned)
{
	struct fsock *fs = calloc(1, sizeof(*fs));

	assert_non_null(fs);
	assert_true(t->nsocks < MAX_SOCKS);
	fs->t = t;
	fs->c = c;
	fs->app_owned = app_owned;
	t->socks[t->nsocks++] = fs;
	return fs;
}

static struct fsock *
sock_of(struct uvs_conn *c)
{
	struct fsock *fs = c->sock;

	assert_non_null(fs);
	assert_false(fs->freed);
	assert_ptr_equal(fs->c, c);
	return fs;
}

static int
f_rx_data(void *ctx, struct uvs_conn *c, const struct iovec *iov, unsigned int n, uint32_t off,
		uint32_t len, uint32_t flags)
{
	struct fsock *fs = sock_of(c);

	(void)ctx;
	assert_true(len > 0);
	if (fs->rx_ret != 0)
		return fs->rx_ret;
	if (fs->rx_len + len > fs->rx_cap) {
		fs->rx_cap = (fs->rx_len + len) * 2;
		fs->rx = realloc(fs->rx, fs->rx_cap);
		assert_non_null(fs->rx);
	}
	assert_int_equal(uvs_iov_to_buf(iov, n, off, fs->rx + fs->rx_len, len), len);
	fs->rx_len += len;
	if (fs->rx_calls < MAX_RXREC) {
		fs->rx_rec_len[fs->rx_calls] = len;
		fs->rx_rec_flags[fs->rx_calls] = flags;
	}
	fs->rx_calls++;
	return 0;
}

static uint32_t
f_rx_consumed(void *ctx, struct uvs_conn *c)
{
	(void)ctx;
	return sock_of(c)->consumed;
}

static uint32_t
f_tx_peek(void *ctx, struct uvs_conn *c, uint32_t max, uint32_t *flags)
{
	struct fsock *fs = sock_of(c);
	uint32_t end = fs->tx_len, n;

	(void)ctx;
	assert_true(max > 0);
	if (fs->abort_on_peek) {
		uvs_conn_abort(c);
		*flags = 0;
		return 0;
	}
	if (c->type == UVS_TYPE_SEQPACKET && fs->msg_head < fs->nmsg)
		end = fs->msg_end[fs->msg_head];
	n = end - fs->tx_off;
	if (n > max)
		n = max;
	*flags = 0;
	if (c->type == UVS_TYPE_SEQPACKET) {
		if (n > 0 && fs->tx_off + n == end)
			*flags = fs->msg_flags[fs->msg_head];
	} else {
		*flags = fs->stream_peek_flags;
	}
	fs->last_peek = n;
	return n;
}

static void
f_tx_copy(void *ctx, struct uvs_conn *c, const struct iovec *iov, unsigned int n, uint32_t off,
		uint32_t len)
{
	struct fsock *fs = sock_of(c);

	(void)ctx;
	assert_true(len > 0);
	assert_true(len <= fs->last_peek);
	assert_true(len <= fs->tx_len - fs->tx_off);
	assert_int_equal(uvs_iov_from_buf(iov, n, off, fs->tx + fs->tx_off, len), len);
	fs->tx_off += len;
	if (c->type == UVS_TYPE_SEQPACKET && fs->msg_head < fs->nmsg) {
		assert_true(fs->tx_off <= fs->msg_end[fs->msg_head]);
		if (fs->tx_off == fs->msg_end[fs->msg_head])
			fs->msg_head++;
	}
	fs->last_peek = 0;
}

static void
f_event(void *ctx, struct uvs_conn *c, enum uvs_event ev)
{
	struct tctx *t = ctx;
	struct fsock *fs = c->sock;
	struct evrec *r;

	if (ev == UVS_EV_ACCEPTABLE) {
		assert_null(fs);
		assert_non_null(c->listener);
		if (!t->refuse_children) {
			fs = fsock_new(t, c, false);
			c->sock = fs;
		}
	}
	if (fs != NULL) {
		assert_false(fs->freed);
		assert_ptr_equal(fs->c, c);
	}
	assert_true(t->nev < MAX_EVENTS);
	r = &t->ev[t->nev++];
	r->c = c;
	r->fs = fs;
	r->ev = ev;
	r->err = c->err;
	r->state = c->state;
	if (ev == UVS_EV_FREE && fs != NULL) {
		fs->freed = true;
		fs->c = NULL;
	}
}

static void
f_kick(void *ctx, struct uvs_peer *p)
{
	struct tctx *t = ctx;

	assert_true(p == t->p || p == t->p2);
	t->kicks++;
}

static const struct uvs_engine_ops fake_ops = {
	.rx_data = f_rx_data,
	.rx_consumed = f_rx_consumed,
	.tx_peek = f_tx_peek,
	.tx_copy = f_tx_copy,
	.event = f_event,
	.kick = f_kick,
};

/* The application writes: one call is one SEQPACKET message. */
static void
app_write(struct fsock *fs, const void *data, uint32_t len, bool eor)
{
	assert_true(len > 0);
	if (fs->tx_len + len > fs->tx_cap) {
		fs->tx_cap = (fs->tx_len + len) * 2;
		fs->tx = realloc(fs->tx, fs->tx_cap);
		assert_non_null(fs->tx);
	}
	memcpy(fs->tx + fs->tx_len, data, len);
	fs->tx_len += len;
	assert_true(fs->nmsg < MAX_MSGS);
	fs->msg_end[fs->nmsg] = fs->tx_len;
	fs->msg_flags[fs->nmsg] = UVS_SEQ_EOM | (eor ? UVS_SEQ_EOR : 0);
	fs->nmsg++;
	uvs_conn_tx_wake(fs->c);
}

/* The application reads n bytes. */
static void
app_consume(struct fsock *fs, uint32_t n)
{
	assert_true(fs->rx_read + n <= fs->rx_len);
	fs->rx_read += n;
	fs->consumed += n;
	uvs_conn_tx_wake(fs->c);
}

static struct fsock *
app_socket(struct tctx *t, uint16_t type)
{
	struct fsock *fs = fsock_new(t, NULL, true);

	fs->c = uvs_conn_create(t->eng, type, fs);
	assert_non_null(fs->c);
	return fs;
}

static void
app_close(struct tctx *t, struct fsock *fs)
{
	assert_false(fs->closed);
	assert_false(fs->freed);
	fs->closed = true;
	uvs_conn_close(fs->c, t->now);
}

static void
fill_pattern(uint8_t *buf, uint32_t len, uint32_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		buf[i] = (uint8_t)((i + seed) * 131u + (i >> 8));
}

/* ---------------------------------------------------------------------------------------- */
/* events */

static unsigned int
count_ev(const struct tctx *t, const struct fsock *fs, enum uvs_event ev)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < t->nev; i++)
		if (t->ev[i].ev == ev && t->ev[i].fs == fs)
			n++;
	return n;
}

static unsigned int
count_ev_all(const struct tctx *t, enum uvs_event ev)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < t->nev; i++)
		if (t->ev[i].ev == ev)
			n++;
	return n;
}

static const struct evrec *
find_ev(const struct tctx *t, const struct fsock *fs, enum uvs_event ev)
{
	for (unsigned int i = 0; i < t->nev; i++)
		if (t->ev[i].ev == ev && t->ev[i].fs == fs)
			return &t->ev[i];
	return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* fake guest: transmit side of the engine */

static void
clear_pkts(struct tctx *t)
{
	for (unsigned int i = 0; i < t->npkts; i++)
		free(t->pkts[i].data);
	t->npkts = 0;
}

/* Invariants of every packet the engine may put in a guest rx buffer (§2, §4, §9). */
static void
check_sent(const struct tctx *t, const struct uvs_peer *p, const struct uvs_hdr *h, uint32_t ret,
		uint32_t room)
{
	assert_true(ret >= UVS_HDR_SIZE);
	assert_true(ret <= room);
	assert_int_equal(ret, UVS_HDR_SIZE + h->len);
	assert_int_equal(h->src_cid, HOST_CID);
	assert_int_equal(h->dst_cid, p->cid);
	/* what the guest's own device would check */
	assert_int_equal(uvs_pkt_check(h, h->len, HOST_CID, p->cid), UVS_PKT_OK);
	assert_true(h->op >= UVS_OP_REQUEST && h->op <= UVS_OP_CREDIT_REQUEST);
	assert_true(h->len <= UVS_MAX_PKT_PAYLOAD);
	if (h->op == UVS_OP_RW) {
		assert_true(h->len > 0); /* Linux never sends zero-length RW; neither may we */
		if (h->type == UVS_TYPE_STREAM) {
			assert_int_equal(h->flags, 0);
		} else {
			assert_int_equal(h->flags & ~(UVS_SEQ_EOM | UVS_SEQ_EOR), 0);
			if (h->flags & UVS_SEQ_EOR)
				assert_true(h->flags & UVS_SEQ_EOM);
		}
	} else {
		assert_int_equal(h->len, 0);
	}
	if (h->op == UVS_OP_SHUTDOWN) {
		assert_int_not_equal(h->flags, 0);
		assert_int_equal(h->flags & ~UVS_SHUTDOWN_BOTH, 0);
	} else if (h->op != UVS_OP_RW) {
		assert_int_equal(h->flags, 0);
	}
	if (h->op != UVS_OP_RST) {
		assert_true(h->type == UVS_TYPE_STREAM || h->type == UVS_TYPE_SEQPACKET);
		if (h->type == UVS_TYPE_SEQPACKET)
			assert_true(p->seqpacket);
	}
	(void)t;
}

/* One uvs_engine_tx() into a one-segment buffer of `room` bytes. */
static uint32_t
tx_one_peer(struct tctx *t, struct uvs_peer *p, uint32_t room)
{
	struct iovec iov = { .iov_base = t->txbuf, .iov_len = room };
	struct uvs_hdr h;
	struct cap *cp;
	uint32_t ret;

	assert_true(room <= ROOM_BIG);
	memset(t->txbuf, 0x5a, room);
	ret = uvs_engine_tx(t->eng, p, &iov, 1, room);
	if (ret == 0) {
		if (room >= UVS_HDR_SIZE)
			assert_false(uvs_peer_tx_pending(p));
		return 0;
	}
	memcpy(&h, t->txbuf, sizeof(h));
	check_sent(t, p, &h, ret, room);
	if (t->npkts == t->pkts_cap) {
		t->pkts_cap = t->pkts_cap ? t->pkts_cap * 2 : 64;
		t->pkts = realloc(t->pkts, t->pkts_cap * sizeof(*t->pkts));
		assert_non_null(t->pkts);
	}
	cp = &t->pkts[t->npkts++];
	cp->h = h;
	cp->data = NULL;
	if (h.len > 0) {
		cp->data = malloc(h.len);
		assert_non_null(cp->data);
		memcpy(cp->data, t->txbuf + UVS_HDR_SIZE, h.len);
	}
	return ret;
}

static uint32_t
tx_one(struct tctx *t, uint32_t room)
{
	return tx_one_peer(t, t->p, room);
}

/* Collect everything pending for peer p; @return packets collected. */
static unsigned int
drain_peer(struct tctx *t, struct uvs_peer *p, uint32_t room)
{
	unsigned int n = 0;

	while (tx_one_peer(t, p, room) > 0) {
		n++;
		assert_true(n < DRAIN_LIMIT);
	}
	assert_false(uvs_peer_tx_pending(p));
	return n;
}

static unsigned int
drain(struct tctx *t)
{
	return drain_peer(t, t->p, t->room);
}

/* Total RW payload in t->pkts[from..], and copies it to out (if not NULL). */
static uint32_t
rw_bytes(const struct tctx *t, unsigned int from, uint8_t *out)
{
	uint32_t total = 0;

	for (unsigned int i = from; i < t->npkts; i++) {
		if (t->pkts[i].h.op != UVS_OP_RW)
			continue;
		if (out != NULL)
			memcpy(out + total, t->pkts[i].data, t->pkts[i].h.len);
		total += t->pkts[i].h.len;
	}
	return total;
}

static unsigned int
count_op(const struct tctx *t, uint16_t op)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < t->npkts; i++)
		if (t->pkts[i].h.op == op)
			n++;
	return n;
}

/* Assert a control packet's header field by field. */
static void
assert_ctl(const struct cap *cp, uint16_t op, uint16_t type, uint32_t src_port, uint32_t dst_port,
		uint32_t flags, uint32_t buf_alloc, uint32_t fwd_cnt)
{
	assert_int_equal(cp->h.op, op);
	assert_int_equal(cp->h.type, type);
	assert_int_equal(cp->h.src_cid, HOST_CID);
	assert_int_equal(cp->h.dst_cid, GUEST_CID);
	assert_int_equal(cp->h.src_port, src_port);
	assert_int_equal(cp->h.dst_port, dst_port);
	assert_int_equal(cp->h.len, 0);
	assert_int_equal(cp->h.flags, flags);
	assert_int_equal(cp->h.buf_alloc, buf_alloc);
	assert_int_equal(cp->h.fwd_cnt, fwd_cnt);
}

/* ---------------------------------------------------------------------------------------- */
/* fake guest: receive side of the engine */

static void
g_pkt_peer(struct tctx *t, struct uvs_peer *p, uint16_t type, uint16_t op, uint32_t sport,
		uint32_t dport, uint32_t flags, const void *data, uint32_t len)
{
	uint8_t *buf = malloc(UVS_HDR_SIZE + len);
	struct uvs_hdr h;
	struct iovec iov;

	assert_non_null(buf);
	memset(&h, 0, sizeof(h));
	h.src_cid = p->cid;
	h.dst_cid = HOST_CID;
	h.src_port = sport;
	h.dst_port = dport;
	h.len = len;
	h.type = type;
	h.op = op;
	h.flags = flags;
	h.buf_alloc = t->gbuf;
	h.fwd_cnt = t->gfwd;
	memcpy(buf, &h, sizeof(h));
	if (len > 0)
		memcpy(buf + UVS_HDR_SIZE, data, len);
	iov.iov_base = buf;
	iov.iov_len = UVS_HDR_SIZE + len;
	/* the daemon only feeds packets that passed uvs_pkt_check() */
	assert_int_equal(uvs_pkt_check(&h, len, p->cid, HOST_CID), UVS_PKT_OK);
	uvs_engine_rx(t->eng, p, &h, &iov, 1, UVS_HDR_SIZE);
	/* poison: the engine must not keep pointers into the guest buffer */
	memset(buf, 0xee, UVS_HDR_SIZE + len);
	free(buf);
}

static void
g_ctl(struct tctx *t, uint16_t type, uint16_t op, uint32_t sport, uint32_t dport, uint32_t flags)
{
	g_pkt_peer(t, t->p, type, op, sport, dport, flags, NULL, 0);
}

static void
g_rw(struct tctx *t, uint16_t type, uint32_t sport, uint32_t dport, uint32_t flags,
		const void *data, uint32_t len)
{
	g_pkt_peer(t, t->p, type, UVS_OP_RW, sport, dport, flags, data, len);
}

/* ---------------------------------------------------------------------------------------- */
/* scenario helpers */

static struct fsock *
listen_on(struct tctx *t, uint16_t type, uint32_t port, uint32_t backlog, uint32_t buf)
{
	struct fsock *l = app_socket(t, type);

	uvs_conn_set_buf_size(l->c, buf);
	assert_int_equal(uvs_conn_bind(l->c, port), 0);
	assert_int_equal(uvs_conn_listen(l->c, backlog), 0);
	assert_int_equal(l->c->state, UVS_ST_LISTEN);
	return l;
}

/* The guest connects from sport to listener l; the application accepts. */
static struct fsock *
guest_connect(struct tctx *t, struct fsock *l, uint32_t sport)
{
	struct uvs_conn *child = NULL;
	struct fsock *fs;

	clear_pkts(t);
	g_ctl(t, l->c->type, UVS_OP_REQUEST, sport, l->c->local_port, 0);
	assert_int_equal(drain(t), 1);
	assert_ctl(&t->pkts[0], UVS_OP_RESPONSE, l->c->type, l->c->local_port, sport, 0,
			l->c->buf_size, 0);
	assert_int_equal(uvs_conn_accept(l->c, &child), 0);
	assert_non_null(child);
	fs = sock_of(child);
	fs->app_owned = true;
	assert_int_equal(child->state, UVS_ST_ESTABLISHED);
	assert_int_equal(child->peer_port, sport);
	clear_pkts(t);
	return fs;
}

/* The host application connects to the guest's port; the guest accepts. */
static struct fsock *
host_connect(struct tctx *t, uint16_t type, uint32_t port)
{
	struct fsock *fs = app_socket(t, type);

	clear_pkts(t);
	assert_int_equal(uvs_conn_connect(fs->c, t->p, port, t->now), 0);
	assert_int_equal(drain(t), 1);
	assert_int_equal(t->pkts[0].h.op, UVS_OP_REQUEST);
	g_ctl(t, type, UVS_OP_RESPONSE, port, fs->c->local_port, 0);
	assert_int_equal(count_ev(t, fs, UVS_EV_CONNECTED), 1);
	assert_int_equal(fs->c->state, UVS_ST_ESTABLISHED);
	clear_pkts(t);
	assert_int_equal(drain(t), 0);
	return fs;
}

/* ---------------------------------------------------------------------------------------- */
/* fixture */

static int
setup(void **state)
{
	struct tctx *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return -1;
	t->p = calloc(1, sizeof(*t->p));
	t->txbuf = malloc(ROOM_BIG);
	if (t->p == NULL || t->txbuf == NULL)
		return -1;
	t->eng = uvs_engine_create(HOST_CID, &fake_ops, t);
	if (t->eng == NULL)
		return -1;
	uvs_peer_init(t->p, GUEST_CID, true, NULL);
	t->room = ROOM_4K;
	t->gbuf = GUEST_BUF;
	t->gfwd = 0;
	t->now = T0;
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct tctx *t = *state;
	unsigned int i;

	/* the application closes what it holds; the guest then goes away */
	for (i = 0; i < t->nsocks; i++) {
		struct fsock *fs = t->socks[i];

		if (fs->app_owned && !fs->closed && !fs->freed)
			app_close(t, fs);
	}
	uvs_peer_detach(t->eng, t->p);
	if (t->p2 != NULL)
		uvs_peer_detach(t->eng, t->p2);
	/* every connection must have been freed (valgrind/ASan check the memory itself) */
	for (i = 0; i < t->nsocks; i++)
		assert_true(t->socks[i]->freed);
	assert_int_equal(t->p->nconns, 0);
	uvs_engine_destroy(t->eng);
	for (i = 0; i < t->nsocks; i++) {
		free(t->socks[i]->rx);
		free(t->socks[i]->tx);
		free(t->socks[i]);
	}
	clear_pkts(t);
	free(t->pkts);
	free(t->txbuf);
	free(t->p2);
	free(t->p);
	free(t);
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* no connection (§3.2 step 2, §3.6, §9.4, §9.5) */

static void
noconn_ops_answered_with_one_rst(void **state)
{
	static const uint16_t ops[] = { UVS_OP_INVALID, UVS_OP_REQUEST, UVS_OP_RESPONSE,
		UVS_OP_SHUTDOWN, UVS_OP_RW, UVS_OP_CREDIT_UPDATE, UVS_OP_CREDIT_REQUEST, 9 };
	static const uint16_t types[] = { UVS_TYPE_STREAM, UVS_TYPE_SEQPACKET };
	struct tctx *t = *state;
	uint8_t byte = 0x42;
	unsigned int expect = 0;

	for (unsigned int ti = 0; ti < 2; ti++) {
		for (unsigned int i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
			uint32_t sport = 40000 + i, dport = 900 + ti;
			uint32_t flags = ops[i] == UVS_OP_SHUTDOWN ? UVS_SHUTDOWN_BOTH : 0;

			clear_pkts(t);
			if (ops[i] == UVS_OP_RW)
				g_rw(t, types[ti], sport, dport, 0, &byte, 1);
			else
				g_ctl(t, types[ti], ops[i], sport, dport, flags);
			assert_int_equal(drain(t), 1);
			/* swapped addresses, same type, no credit information */
			assert_ctl(&t->pkts[0], UVS_OP_RST, types[ti], dport, sport, 0, 0, 0);
			expect++;
			assert_int_equal(t->p->drops[UVS_DROP_NO_CONN_RST], expect);
		}
	}
	assert_int_equal(t->nev, 0);
	assert_int_equal(t->p->nconns, 0);
}

static void
noconn_rst_is_not_answered(void **state)
{
	struct tctx *t = *state;

	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_RST, GPORT, 999, 0);
	g_ctl(t, UVS_TYPE_SEQPACKET, UVS_OP_RST, GPORT, 999, 0);
	assert_false(uvs_peer_tx_pending(t->p));
	assert_int_equal(t->kicks, 0);
	assert_int_equal(drain(t), 0);
	assert_int_equal(t->p->drops[UVS_DROP_RST_NO_CONN], 2);
	assert_int_equal(t->p->drops[UVS_DROP_NO_CONN_RST], 0);
}

static void
unknown_type_answered_with_rst(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, 65536);

	/* type 3 even to a live listener: the type is judged first */
	g_ctl(t, 3, UVS_OP_REQUEST, GPORT, LPORT, 0);
	g_ctl(t, 0, UVS_OP_CREDIT_REQUEST, GPORT + 1, 999, 0);
	assert_int_equal(drain(t), 2);
	assert_ctl(&t->pkts[0], UVS_OP_RST, 3, LPORT, GPORT, 0, 0, 0);
	assert_ctl(&t->pkts[1], UVS_OP_RST, 0, 999, GPORT + 1, 0, 0, 0);
	assert_int_equal(t->p->drops[UVS_DROP_BAD_TYPE], 2);
	assert_int_equal(count_ev_all(t, UVS_EV_ACCEPTABLE), 0);
	/* an RST of unknown type is still never answered */
	clear_pkts(t);
	g_ctl(t, 3, UVS_OP_RST, GPORT, LPORT, 0);
	assert_int_equal(drain(t), 0);
	(void)l;
}

/* Raw packet from any CID into peer p (what a driver-side device hands the engine). */
static void
raw_ctl(struct tctx *t, struct uvs_peer *p, uint64_t src_cid, uint16_t op, uint32_t sport,
		uint32_t dport)
{
	struct uvs_hdr h = { .src_cid = src_cid,
		.dst_cid = HOST_CID,
		.src_port = sport,
		.dst_port = dport,
		.type = UVS_TYPE_STREAM,
		.op = op,
		.buf_alloc = 65536 };
	struct iovec iov = { .iov_base = &h, .iov_len = sizeof(h) };

	uvs_engine_rx(t->eng, p, &h, &iov, 1, UVS_HDR_SIZE);
}

/* One raw packet out of peer p, or false if none. */
static bool
raw_tx(struct tctx *t, struct uvs_peer *p, struct uvs_hdr *h)
{
	struct iovec iov = { .iov_base = t->txbuf, .iov_len = ROOM_BIG };

	if (uvs_engine_tx(t->eng, p, &iov, 1, ROOM_BIG) == 0)
		return false;
	memcpy(h, t->txbuf, sizeof(*h));
	return true;
}

static void
any_src_peer_talks_to_every_cid(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, 65536);
	struct uvs_hdr h;

	/* An ordinary peer: only its own CID (the daemon's check is repeated here). */
	raw_ctl(t, t->p, 7, UVS_OP_REQUEST, GPORT, LPORT);
	assert_int_equal(count_ev_all(t, UVS_EV_ACCEPTABLE), 0);
	assert_false(raw_tx(t, t->p, &h));
	/* A driver's device: another guest's REQUEST is accepted, answered to its CID. */
	t->p->any_src = true;
	raw_ctl(t, t->p, 7, UVS_OP_REQUEST, GPORT, LPORT);
	assert_int_equal(count_ev_all(t, UVS_EV_ACCEPTABLE), 1);
	assert_true(raw_tx(t, t->p, &h));
	assert_int_equal(h.op, UVS_OP_RESPONSE);
	assert_int_equal(h.dst_cid, 7);
	assert_int_equal(h.dst_port, GPORT);
	/* same port from another CID: another connection */
	raw_ctl(t, t->p, 8, UVS_OP_REQUEST, GPORT, LPORT);
	assert_int_equal(count_ev_all(t, UVS_EV_ACCEPTABLE), 2);
	assert_true(raw_tx(t, t->p, &h));
	assert_int_equal(h.dst_cid, 8);
	/* a closed port: the RST goes back to the sender's CID */
	raw_ctl(t, t->p, 9, UVS_OP_REQUEST, GPORT, 999);
	assert_true(raw_tx(t, t->p, &h));
	assert_int_equal(h.op, UVS_OP_RST);
	assert_int_equal(h.dst_cid, 9);
	/* never from our own CID, nor from a CID beyond 32 bits */
	raw_ctl(t, t->p, HOST_CID, UVS_OP_REQUEST, GPORT + 1, LPORT);
	raw_ctl(t, t->p, 7ull + (1ull << 32), UVS_OP_REQUEST, GPORT + 2, LPORT);
	assert_false(raw_tx(t, t->p, &h));
	assert_int_equal(count_ev_all(t, UVS_EV_ACCEPTABLE), 2);
	assert_int_equal(t->p->nconns, 2);
	(void)l;
}

static void
orphan_rst_queue_is_bounded(void **state)
{
	struct tctx *t = *state;
	const unsigned int extra = 10;

	for (unsigned int i = 0; i < UVS_PEER_ORPHAN_RST_MAX + extra; i++)
		g_ctl(t, UVS_TYPE_STREAM, UVS_OP_REQUEST, 10000 + i, 999, 0);
	assert_int_equal(t->p->orphan_count, UVS_PEER_ORPHAN_RST_MAX);
	assert_int_equal(t->p->drops[UVS_DROP_ORPHAN_FULL], extra);
	assert_int_equal(t->p->drops[UVS_DROP_NO_CONN_RST], UVS_PEER_ORPHAN_RST_MAX + extra);
	/* one kick for the whole burst */
	assert_int_equal(t->kicks, 1);
	assert_int_equal(drain(t), UVS_PEER_ORPHAN_RST_MAX);
	/* the oldest are kept, in order */
	for (unsigned int i = 0; i < UVS_PEER_ORPHAN_RST_MAX; i++)
		assert_ctl(&t->pkts[i], UVS_OP_RST, UVS_TYPE_STREAM, 999, 10000 + i, 0, 0, 0);
	/* drained: the ring takes new replies again, and kicks again */
	clear_pkts(t);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_REQUEST, 20000, 999, 0);
	assert_int_equal(t->kicks, 2);
	assert_int_equal(drain(t), 1);
	assert_ctl(&t->pkts[0], UVS_OP_RST, UVS_TYPE_STREAM, 999, 20000, 0, 0, 0);
	assert_int_equal(t->p->drops[UVS_DROP_ORPHAN_FULL], extra);
}

/* Regression (seen with a real guest): work that vanished from the send queue without
 * uvs_engine_tx() seeing it (a closing connection freed by the peer's RST) must not leave
 * the peer marked as kicked, or the next reply never reaches the transport. */
static void
kick_rearmed_after_queued_work_vanishes(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, 5000, 8, UVS_BUF_SIZE_DEFAULT);
	struct fsock *fs = guest_connect(t, l, 40000);
	unsigned int before;

	assert_false(uvs_peer_tx_pending(t->p));
	before = t->kicks;
	app_close(t, fs); /* owes SHUTDOWN: queued, kicks the transport */
	assert_int_equal(t->kicks, before + 1);
	assert_true(uvs_peer_tx_pending(t->p));
	/* the peer resets before the transport had a buffer for the SHUTDOWN */
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_RST, 40000, 5000, 0);
	assert_false(uvs_peer_tx_pending(t->p));
	/* a new reply must kick again */
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_REQUEST, 40001, 6000, 0);
	assert_int_equal(t->kicks, before + 2);
	clear_pkts(t);
	assert_int_equal(drain(t), 1);
	assert_ctl(&t->pkts[0], UVS_OP_RST, UVS_TYPE_STREAM, 6000, 40001, 0, 0, 0);
}

/* The socket layer finds its buffers corrupt while the engine asks for data: the
 * connection is reset (RST to the peer, RESET to the socket layer), nothing else is sent. */
static void
abort_from_tx_peek_sends_rst(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, 5000, 8, UVS_BUF_SIZE_DEFAULT);
	struct fsock *fs = guest_connect(t, l, 40000);
	fs->abort_on_peek = true;
	app_write(fs, "data", 4, false);
	uvs_conn_tx_wake(fs->c);
	clear_pkts(t);
	assert_int_equal(drain(t), 1);
	assert_ctl(&t->pkts[0], UVS_OP_RST, UVS_TYPE_STREAM, 5000, 40000, 0, t->pkts[0].h.buf_alloc,
			t->pkts[0].h.fwd_cnt);
	assert_int_equal(count_ev(t, fs, UVS_EV_RESET), 1);
	assert_int_equal(fs->c->state, UVS_ST_DONE);
}

/* The same on a connection the application already closed (CLOSING, data still queued):
 * the RST goes out and only then is the connection freed (no use after free). */
static void
abort_from_tx_peek_on_closed_conn(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, 5000, 8, UVS_BUF_SIZE_DEFAULT);
	struct fsock *fs = guest_connect(t, l, 40000);

	app_write(fs, "data", 4, false);
	fs->abort_on_peek = true;
	app_close(t, fs);
	assert_int_equal(fs->c->state, UVS_ST_CLOSING);
	clear_pkts(t);
	assert_int_equal(drain(t), 1);
	assert_int_equal(t->pkts[0].h.op, UVS_OP_RST);
	assert_int_equal(t->pkts[0].h.dst_port, 40000);
	assert_true(fs->freed);
	assert_int_equal(count_ev(t, fs, UVS_EV_RESET), 0); /* nobody holds it */
	assert_int_equal(t->p->nconns, 0);
}

static uint64_t
total_drops(const struct uvs_peer *p)
{
	uint64_t n = 0;

	for (unsigned int i = 0; i < UVS_DROP_MAX; i++)
		n += p->drops[i];
	return n;
}

static void
each_refused_rst_counted_once(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, GUEST_BUF);
	struct fsock *b = app_socket(t, UVS_TYPE_STREAM);
	uint64_t before;

	assert_int_equal(uvs_conn_bind(b->c, LPORT + 1), 0);
	/* an RST to a listener, to a bound socket, of a bad type: one counter each */
	before = total_drops(t->p);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_RST, GPORT, LPORT, 0);
	assert_int_equal(total_drops(t->p), before + 1);
	before = total_drops(t->p);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_RST, GPORT, LPORT + 1, 0);
	assert_int_equal(total_drops(t->p), before + 1);
	before = total_drops(t->p);
	g_ctl(t, 5, UVS_OP_RST, GPORT, LPORT, 0);
	assert_int_equal(total_drops(t->p), before + 1);
	assert_int_equal(t->p->drops[UVS_DROP_BAD_TYPE], 1);
	before = total_drops(t->p);
	g_ctl(t, UVS_TYPE_SEQPACKET, UVS_OP_RST, GPORT, LPORT, 0);
	assert_int_equal(total_drops(t->p), before + 1);
	assert_int_equal(t->p->drops[UVS_DROP_BAD_TYPE], 2);
	/* and nothing was answered */
	assert_int_equal(drain(t), 0);
	/* a non-RST packet to nowhere: one counter too */
	before = total_drops(t->p);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_REQUEST, GPORT, 999, 0);
	assert_int_equal(total_drops(t->p), before + 1);
	assert_int_equal(drain(t), 1);
	(void)l;
}

static void
tx_room_below_header_sends_nothing_and_keeps_work(void **state)
{
	struct tctx *t = *state;

	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_REQUEST, GPORT, 999, 0);
	assert_int_equal(tx_one(t, UVS_HDR_SIZE - 1), 0);
	assert_int_equal(tx_one(t, 0), 0);
	assert_true(uvs_peer_tx_pending(t->p));
	assert_int_equal(tx_one(t, UVS_HDR_SIZE), UVS_HDR_SIZE);
	assert_int_equal(t->pkts[0].h.op, UVS_OP_RST);
	assert_int_equal(drain(t), 0);
}

/* ---------------------------------------------------------------------------------------- */
/* LISTEN (§3.2, §3.6, §5.2) */

static void
listen_request_gets_response_and_child(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, 100000);
	struct uvs_conn *child = NULL;
	const struct evrec *e;

	t->gbuf = 12345;
	t->gfwd = 0;
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_REQUEST, GPORT, LPORT, 0);
	assert_int_equal(t->kicks, 1);
	assert_int_equal(drain(t), 1);
	assert_ctl(&t->pkts[0], UVS_OP_RESPONSE, UVS_TYPE_STREAM, LPORT, GPORT, 0, 100000, 0);
	assert_int_equal(count_ev_all(t, UVS_EV_ACCEPTABLE), 1);
	e = &t->ev[0];
	assert_int_equal(e->ev, UVS_EV_ACCEPTABLE);
	assert_ptr_equal(e->c->listener, l->c);
	assert_int_equal(l->c->nqueued, 1);
	assert_int_equal(uvs_conn_accept(l->c, &child), 0);
	assert_ptr_equal(child, e->c);
	sock_of(child)->app_owned = true;
	assert_null(child->listener);
	assert_int_equal(l->c->nqueued, 0);
	assert_int_equal(child->state, UVS_ST_ESTABLISHED);
	assert_int_equal(child->type, UVS_TYPE_STREAM);
	assert_int_equal(child->local_cid, HOST_CID);
	assert_int_equal(child->local_port, LPORT);
	assert_int_equal(child->peer_cid, GUEST_CID);
	assert_int_equal(child->peer_port, GPORT);
	assert_int_equal(child->cr.buf_alloc, 100000);
	/* the peer's credit comes from the REQUEST */
	assert_int_equal(child->cr.peer_buf_alloc, 12345);
	assert_int_equal(uvs_credit_peer_free(&child->cr), 12345);
	assert_int_equal(t->p->nconns, 1);
	assert_int_equal(uvs_conn_accept(l->c, &child), -EAGAIN);
	/* the listener is still listening: a second guest port gets its own child */
	clear_pkts(t);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_REQUEST, GPORT + 1, LPORT, 0);
	assert_int_equal(drain(t), 1);
	assert_ctl(&t->pkts[0], UVS_OP_RESPONSE, UVS_TYPE_STREAM, LPORT, GPORT + 1, 0, 100000, 0);
	assert_int_equal(count_ev_all(t, UVS_EV_ACCEPTABLE), 2);
}

static void
listen_seqpacket_request_gets_response(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_SEQPACKET, LPORT, 4, 65536);

	g_ctl(t, UVS_TYPE_SEQPACKET, UVS_OP_REQUEST, GPORT, LPORT, 0);
	assert_int_equal(drain(t), 1);
	assert_ctl(&t->pkts[0], UVS_OP_RESPONSE, UVS_TYPE_SEQPACKET, LPORT, GPORT, 0, 65536, 0);
	assert_int_equal(count_ev_all(t, UVS_EV_ACCEPTABLE), 1);
	(void)l;
}

static void
listen_other_ops_answered_with_rst(void **state)
{
	static const uint16_t ops[] = { UVS_OP_INVALID, UVS_OP_RESPONSE, UVS_OP_SHUTDOWN, UVS_OP_RW,
		UVS_OP_CREDIT_UPDATE, UVS_OP_CREDIT_REQUEST, 9 };
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, 65536);
	uint8_t byte = 1;

	for (unsigned int i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		clear_pkts(t);
		if (ops[i] == UVS_OP_RW)
			g_rw(t, UVS_TYPE_STREAM, GPORT + i, LPORT, 0, &byte, 1);
		else
			g_ctl(t, UVS_TYPE_STREAM, ops[i], GPORT + i, LPORT,
					ops[i] == UVS_OP_SHUTDOWN ? 3 : 0);
		assert_int_equal(drain(t), 1);
		assert_ctl(&t->pkts[0], UVS_OP_RST, UVS_TYPE_STREAM, LPORT, GPORT + i, 0, 0, 0);
	}
	/* an RST to a listener is dropped, never answered */
	clear_pkts(t);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_RST, GPORT, LPORT, 0);
	assert_int_equal(drain(t), 0);
	assert_int_equal(count_ev_all(t, UVS_EV_ACCEPTABLE), 0);
	assert_int_equal(l->c->state, UVS_ST_LISTEN);
	assert_int_equal(l->c->nqueued, 0);
	assert_int_equal(t->p->nconns, 0);
}

static void
listen_backlog_full_gets_rst(void **state)
{
	struct tctx *t = *state;
	const uint32_t backlog = 2;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, backlog, 65536);
	struct uvs_conn *child;
	unsigned int i;

	/* sk_acceptq_is_full(): backlog + 1 connections may wait */
	for (i = 0; i < backlog + 1; i++) {
		clear_pkts(t);
		g_ctl(t, UVS_TYPE_STREAM, UVS_OP_REQUEST, GPORT + i, LPORT, 0);
		assert_int_equal(drain(t), 1);
		assert_int_equal(t->pkts[0].h.op, UVS_OP_RESPONSE);
	}
	assert_int_equal(l->c->nqueued, backlog + 1);
	clear_pkts(t);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_REQUEST, GPORT + i, LPORT, 0);
	assert_int_equal(drain(t), 1);
	assert_ctl(&t->pkts[0], UVS_OP_RST, UVS_TYPE_STREAM, LPORT, GPORT + i, 0, 0, 0);
	assert_int_equal(t->p->drops[UVS_DROP_BACKLOG], 1);
	assert_int_equal(count_ev_all(t, UVS_EV_ACCEPTABLE), backlog + 1);
	assert_int_equal(t->p->nconns, backlog + 1);
	/* accepting one makes room for one */
	assert_int_equal(uvs_conn_accept(l->c, &child), 0);
	sock_of(child)->app_owned = true;
	assert_int_equal(child->peer_port, GPORT);
	clear_pkts(t);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_REQUEST, GPORT + i, LPORT, 0);
	assert_int_equal(drain(t), 1);
	assert_ctl(&t->pkts[0], UVS_OP_RESPONSE, UVS_TYPE_STREAM, LPORT, GPORT + i, 0, 65536, 0);
	clear_pkts(t);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_REQUEST, GPORT + i + 1, LPORT, 0);
	assert_int_equal(drain(t), 1);
	assert_int_equal(t->pkts[0].h.op, UVS_OP_RST);
	assert_int_equal(t->p->drops[UVS_DROP_BACKLOG], 2);
}

static void
listen_type_mismatch_gets_rst(void **state)
{
	struct tctx *t = *state;
	struct fsock *ls = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, 65536);
	struct fsock *lq = listen_on(t, UVS_TYPE_SEQPACKET, LPORT + 1, 4, 65536);

	g_ctl(t, UVS_TYPE_SEQPACKET, UVS_OP_REQUEST, GPORT, LPORT, 0);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_REQUEST, GPORT + 1, LPORT + 1, 0);
	assert_int_equal(drain(t), 2);
	assert_ctl(&t->pkts[0], UVS_OP_RST, UVS_TYPE_SEQPACKET, LPORT, GPORT, 0, 0, 0);
	assert_ctl(&t->pkts[1], UVS_OP_RST, UVS_TYPE_STREAM, LPORT + 1, GPORT + 1, 0, 0, 0);
	assert_int_equal(t->p->drops[UVS_DROP_BAD_TYPE], 2);
	assert_int_equal(count_ev_all(t, UVS_EV_ACCEPTABLE), 0);
	assert_int_equal(ls->c->nqueued + lq->c->nqueued, 0);
}

static void
listen_seqpacket_without_feature_gets_rst(void **state)
{
	struct tctx *t = *state;
	struct fsock *l;

	uvs_peer_init(t->p, GUEST_CID, false, NULL);
	l = listen_on(t, UVS_TYPE_SEQPACKET, LPORT, 4, 65536);
	g_ctl(t, UVS_TYPE_SEQPACKET, UVS_OP_REQUEST, GPORT, LPORT, 0);
	assert_int_equal(drain(t), 1);
	/* the reply RST copies the offending type */
	assert_ctl(&t->pkts[0], UVS_OP_RST, UVS_TYPE_SEQPACKET, LPORT, GPORT, 0, 0, 0);
	assert_int_equal(t->p->drops[UVS_DROP_BAD_TYPE], 1);
	assert_int_equal(count_ev_all(t, UVS_EV_ACCEPTABLE), 0);
	assert_int_equal(l->c->nqueued, 0);
	assert_int_equal(t->p->nconns, 0);
}

static void
bound_not_listening_gets_rst(void **state)
{
	struct tctx *t = *state;
	struct fsock *b = app_socket(t, UVS_TYPE_STREAM);
	uint8_t byte = 7;

	assert_int_equal(uvs_conn_bind(b->c, LPORT), 0);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_REQUEST, GPORT, LPORT, 0);
	g_rw(t, UVS_TYPE_STREAM, GPORT, LPORT, 0, &byte, 1);
	assert_int_equal(drain(t), 2);
	assert_ctl(&t->pkts[0], UVS_OP_RST, UVS_TYPE_STREAM, LPORT, GPORT, 0, 0, 0);
	assert_ctl(&t->pkts[1], UVS_OP_RST, UVS_TYPE_STREAM, LPORT, GPORT, 0, 0, 0);
	assert_int_equal(b->c->state, UVS_ST_CLOSE);
	assert_int_equal(t->nev, 0);
	/* and an RST to it is dropped */
	clear_pkts(t);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_RST, GPORT, LPORT, 0);
	assert_int_equal(drain(t), 0);
}

static void
listen_repeated_request_goes_to_the_child(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, 65536);

	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_REQUEST, GPORT, LPORT, 0);
	assert_int_equal(drain(t), 1);
	clear_pkts(t);
	/* same tuple again: the established child ignores it (Linux: unknown op on a
	 * connected socket), no second child, no RST */
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_REQUEST, GPORT, LPORT, 0);
	assert_int_equal(drain(t), 0);
	assert_int_equal(count_ev_all(t, UVS_EV_ACCEPTABLE), 1);
	assert_int_equal(l->c->nqueued, 1);
	assert_int_equal(t->p->drops[UVS_DROP_UNEXPECTED], 1);
}

static void
listen_child_refused_by_socket_layer_gets_rst(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, 65536);
	struct uvs_conn *child;

	t->refuse_children = true;
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_REQUEST, GPORT, LPORT, 0);
	assert_int_equal(drain(t), 1);
	assert_int_equal(t->pkts[0].h.op, UVS_OP_RST);
	assert_int_equal(t->pkts[0].h.src_port, LPORT);
	assert_int_equal(t->pkts[0].h.dst_port, GPORT);
	assert_int_equal(count_op(t, UVS_OP_RESPONSE), 0);
	assert_int_equal(t->p->drops[UVS_DROP_RX_NOBUFS], 1);
	assert_int_equal(l->c->nqueued, 0);
	assert_int_equal(uvs_conn_accept(l->c, &child), -EAGAIN);
	/* the engine freed the child once its RST was out */
	assert_int_equal(count_ev_all(t, UVS_EV_FREE), 1);
	assert_int_equal(t->p->nconns, 0);
	/* the tuple is free again */
	t->refuse_children = false;
	clear_pkts(t);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_REQUEST, GPORT, LPORT, 0);
	assert_int_equal(drain(t), 1);
	assert_int_equal(t->pkts[0].h.op, UVS_OP_RESPONSE);
}

static void
listen_close_resets_queued_children(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, 50000);
	struct fsock *c1, *c2, *c3;
	unsigned int seen = 0;

	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_REQUEST, GPORT, LPORT, 0);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_REQUEST, GPORT + 1, LPORT, 0);
	assert_int_equal(drain(t), 2);
	/* a third whose RESPONSE has not gone out yet */
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_REQUEST, GPORT + 2, LPORT, 0);
	assert_int_equal(count_ev_all(t, UVS_EV_ACCEPTABLE), 3);
	c1 = t->ev[0].fs;
	c2 = t->ev[1].fs;
	c3 = t->ev[2].fs;
	clear_pkts(t);
	app_close(t, l);
	assert_true(l->freed);
	assert_int_equal(drain(t), 3);
	for (unsigned int i = 0; i < 3; i++) {
		uint32_t port = t->pkts[i].h.dst_port;

		/* RST of an existing socket: carries its credit values */
		assert_int_equal(t->pkts[i].h.op, UVS_OP_RST);
		assert_int_equal(t->pkts[i].h.src_port, LPORT);
		assert_in_range(port, GPORT, GPORT + 2);
		seen |= 1u << (port - GPORT);
		assert_int_equal(t->pkts[i].h.buf_alloc, 50000);
		assert_int_equal(t->pkts[i].h.fwd_cnt, 0);
	}
	assert_int_equal(seen, 7); /* one RST per child, in any order */
	assert_int_equal(count_op(t, UVS_OP_RESPONSE), 0);
	assert_true(c1->freed && c2->freed && c3->freed);
	assert_int_equal(count_ev_all(t, UVS_EV_RESET), 0);
	assert_int_equal(t->p->nconns, 0);
	/* nobody listens any more */
	clear_pkts(t);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_REQUEST, GPORT + 3, LPORT, 0);
	assert_int_equal(drain(t), 1);
	assert_ctl(&t->pkts[0], UVS_OP_RST, UVS_TYPE_STREAM, LPORT, GPORT + 3, 0, 0, 0);
}

static void
listen_unaccepted_child_overrun_is_reset(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, 100);
	struct uvs_conn *child = NULL;
	struct fsock *fs;
	static uint8_t data[101];

	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_REQUEST, GPORT, LPORT, 0);
	assert_int_equal(drain(t), 1);
	clear_pkts(t);
	g_rw(t, UVS_TYPE_STREAM, GPORT, LPORT, 0, data, 101);
	assert_int_equal(t->p->drops[UVS_DROP_CREDIT_OVERRUN], 1);
	assert_int_equal(drain(t), 1);
	assert_int_equal(t->pkts[0].h.op, UVS_OP_RST);
	assert_int_equal(t->pkts[0].h.dst_port, GPORT);
	/* as in Linux, accept() still returns it, already over */
	assert_int_equal(uvs_conn_accept(l->c, &child), 0);
	fs = sock_of(child);
	fs->app_owned = true;
	assert_int_equal(child->state, UVS_ST_DONE);
	assert_int_equal(fs->rx_len, 0);
	clear_pkts(t);
	app_close(t, fs);
	assert_true(fs->freed);
	assert_int_equal(drain(t), 0);
}

/* n REQUESTs from ports first.. to listener port LPORT, each refused with an RST. */
static void
requests_refused(struct tctx *t, uint32_t first, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		clear_pkts(t);
		g_ctl(t, UVS_TYPE_STREAM, UVS_OP_REQUEST, first + i, LPORT, 0);
		assert_int_equal(drain(t), 1);
		assert_ctl(&t->pkts[0], UVS_OP_RST, UVS_TYPE_STREAM, LPORT, first + i, 0, 0, 0);
	}
}

/* A REQUEST from port to LPORT, answered. */
static void
request_served(struct tctx *t, uint32_t port)
{
	clear_pkts(t);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_REQUEST, port, LPORT, 0);
	assert_int_equal(drain(t), 1);
	assert_int_equal(t->pkts[0].h.op, UVS_OP_RESPONSE);
}

/* Data beyond the 100 bytes of credit on the connection from port. */
static void
overrun(struct tctx *t, uint32_t port)
{
	static uint8_t data[101];

	clear_pkts(t);
	g_rw(t, UVS_TYPE_STREAM, port, LPORT, 0, data, sizeof(data));
	assert_int_equal(drain(t), 1); /* its RST */
	assert_int_equal(t->pkts[0].h.op, UVS_OP_RST);
}

/* After an overrun, the guest's next UVS_PEER_PENALTY_REQUESTS REQUESTs to a listener are
 * refused with an RST (a fresh connection per overrun is what made the attack dear); the one
 * after is served. The next overrun costs twice as much; a connection that carried data
 * within its credit and ended halves it again. */
static void
overrun_costs_the_guest_its_next_requests(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 64, 100);
	const uint32_t base = UVS_PEER_PENALTY_REQUESTS;
	uint32_t port = GPORT;
	static uint8_t data[10];
	struct uvs_conn *child;

	request_served(t, port); /* a guest that never overran is served */
	overrun(t, port);
	assert_int_equal(t->p->drops[UVS_DROP_CREDIT_OVERRUN], 1);
	requests_refused(t, port + 1, base);
	assert_int_equal(t->p->drops[UVS_DROP_PENALTY], base);
	assert_int_equal(l->c->nqueued, 1); /* only the first */
	port += 1 + base;
	request_served(t, port);
	assert_int_equal(l->c->nqueued, 2);

	/* the second overrun costs twice the first */
	overrun(t, port);
	requests_refused(t, port + 1, 2 * base);
	assert_int_equal(t->p->drops[UVS_DROP_PENALTY], 3 * base);
	port += 1 + 2 * base;
	request_served(t, port);

	/* this one carries data within its credit and ends (the guest resets it, the program
	 * closes it): the penalty halves, so the next overrun costs 2 x base again, not 4 x */
	clear_pkts(t);
	g_rw(t, UVS_TYPE_STREAM, port, LPORT, 0, data, sizeof(data));
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_RST, port, LPORT, 0);
	while (uvs_conn_accept(l->c, &child) == 0) {
		struct fsock *fs = sock_of(child);

		fs->app_owned = true;
		app_close(t, fs);
		assert_true(fs->freed);
	}
	port++;
	request_served(t, port);
	overrun(t, port);
	requests_refused(t, port + 1, 2 * base);
	request_served(t, port + 1 + 2 * base);
	assert_int_equal(t->p->drops[UVS_DROP_PENALTY], 5 * base);
}

static void
socket_api_errors(void **state)
{
	struct tctx *t = *state;
	struct fsock *a = app_socket(t, UVS_TYPE_STREAM);
	struct fsock *b = app_socket(t, UVS_TYPE_STREAM);
	struct uvs_conn *child;

	/* listen without bind: EINVAL (no auto-bind on listen) */
	assert_int_equal(uvs_conn_listen(a->c, 4), -EINVAL);
	/* accept on a non-listening socket: EINVAL */
	assert_int_equal(uvs_conn_accept(a->c, &child), -EINVAL);
	assert_int_equal(uvs_conn_bind(a->c, LPORT), 0);
	assert_int_equal(uvs_conn_bind(b->c, LPORT), -EADDRINUSE);
	assert_int_equal(uvs_conn_listen(a->c, 4), 0);
	/* listen again adjusts the backlog */
	assert_int_equal(uvs_conn_listen(a->c, 0), 0);
	assert_int_equal(a->c->backlog, 0);
	assert_int_equal(uvs_conn_accept(a->c, &child), -EAGAIN);
	/* connect on a listener: EINVAL */
	assert_int_equal(uvs_conn_connect(a->c, t->p, GLPORT, t->now), -EINVAL);
	/* a connected socket cannot listen */
	assert_int_equal(uvs_conn_connect(b->c, t->p, GLPORT, t->now), 0);
	assert_int_equal(uvs_conn_listen(b->c, 4), -EINVAL);
	/* the listener's port is free again once it is closed */
	app_close(t, a);
	assert_true(a->freed);
	a = app_socket(t, UVS_TYPE_SEQPACKET);
	assert_int_equal(uvs_conn_bind(a->c, LPORT), 0);
	assert_int_equal(drain(t), 1);
}

/* ---------------------------------------------------------------------------------------- */
/* SYN_SENT: host connects (§3.2, §3.3, §9.3) */

static void
connect_sends_request(void **state)
{
	struct tctx *t = *state;
	struct fsock *fs = app_socket(t, UVS_TYPE_STREAM);

	uvs_conn_set_buf_size(fs->c, 200000);
	assert_int_equal(uvs_conn_connect(fs->c, t->p, GLPORT, t->now), 0);
	assert_int_equal(fs->c->state, UVS_ST_SYN_SENT);
	/* ephemeral port assigned above the reserved range */
	assert_true(fs->c->local_port > UVS_LAST_RESERVED_PORT);
	assert_true(fs->c->local_port != UVS_PORT_ANY);
	assert_int_equal(t->kicks, 1);
	assert_int_equal(drain(t), 1);
	assert_ctl(&t->pkts[0], UVS_OP_REQUEST, UVS_TYPE_STREAM, fs->c->local_port, GLPORT, 0,
			200000, 0);
	/* nothing else while waiting */
	assert_int_equal(drain(t), 0);
	assert_int_equal(t->nev, 0);
}

static void
connect_explicit_bind_port_used(void **state)
{
	struct tctx *t = *state;
	struct fsock *fs = app_socket(t, UVS_TYPE_SEQPACKET);
	struct fsock *other = app_socket(t, UVS_TYPE_STREAM);

	assert_int_equal(uvs_conn_bind(fs->c, 4444), 0);
	assert_int_equal(uvs_conn_bind(fs->c, 4445), -EINVAL);
	/* one port namespace for both types */
	assert_int_equal(uvs_conn_bind(other->c, 4444), -EADDRINUSE);
	assert_int_equal(uvs_conn_connect(fs->c, t->p, GLPORT, t->now), 0);
	assert_int_equal(drain(t), 1);
	assert_ctl(&t->pkts[0], UVS_OP_REQUEST, UVS_TYPE_SEQPACKET, 4444, GLPORT, 0,
			UVS_BUF_SIZE_DEFAULT, 0);
}

static void
connect_response_establishes(void **state)
{
	struct tctx *t = *state;
	struct fsock *fs = app_socket(t, UVS_TYPE_STREAM);
	const struct evrec *e;

	assert_int_equal(uvs_conn_connect(fs->c, t->p, GLPORT, t->now), 0);
	assert_int_equal(drain(t), 1);
	clear_pkts(t);
	t->gbuf = 3000;
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_RESPONSE, GLPORT, fs->c->local_port, 0);
	assert_int_equal(count_ev(t, fs, UVS_EV_CONNECTED), 1);
	e = find_ev(t, fs, UVS_EV_CONNECTED);
	assert_int_equal(e->state, UVS_ST_ESTABLISHED);
	assert_int_equal(e->err, 0);
	assert_int_equal(fs->c->state, UVS_ST_ESTABLISHED);
	assert_int_equal(uvs_credit_peer_free(&fs->c->cr), 3000);
	/* nothing is owed in reply to a RESPONSE */
	assert_int_equal(drain(t), 0);
	/* data flows */
	app_write(fs, "hello", 5, false);
	assert_int_equal(drain(t), 1);
	assert_int_equal(t->pkts[0].h.op, UVS_OP_RW);
	assert_int_equal(t->pkts[0].h.len, 5);
	assert_memory_equal(t->pkts[0].data, "hello", 5);
	/* the timer was cancelled: no timeout later */
	uvs_engine_tick(t->eng, t->now + 10 * SEC);
	assert_int_equal(fs->c->state, UVS_ST_ESTABLISHED);
	assert_int_equal(count_ev(t, fs, UVS_EV_CONNECT_FAILED), 0);
	assert_int_equal(uvs_conn_connect(fs->c, t->p, GLPORT, t->now), -EISCONN);
}

static void
connect_rst_fails_econnreset(void **state)
{
	struct tctx *t = *state;
	struct fsock *fs = app_socket(t, UVS_TYPE_STREAM);
	const struct evrec *e;

	assert_int_equal(uvs_conn_connect(fs->c, t->p, GLPORT, t->now), 0);
	assert_int_equal(drain(t), 1);
	clear_pkts(t);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_RST, GLPORT, fs->c->local_port, 0);
	e = find_ev(t, fs, UVS_EV_CONNECT_FAILED);
	assert_non_null(e);
	assert_int_equal(e->err, -ECONNRESET);
	assert_int_equal(fs->c->err, -ECONNRESET);
	assert_int_equal(fs->c->state, UVS_ST_CLOSE);
	assert_int_equal(count_ev(t, fs, UVS_EV_CONNECTED), 0);
	/* never answer an RST */
	assert_int_equal(drain(t), 0);
	assert_null(fs->c->peer);
	assert_int_equal(t->p->nconns, 0);
	/* no timeout fires later */
	uvs_engine_tick(t->eng, t->now + 10 * SEC);
	assert_int_equal(count_ev(t, fs, UVS_EV_CONNECT_FAILED), 1);
}

static void
connect_other_op_fails_eproto_with_rst(void **state)
{
	static const uint16_t ops[] = { UVS_OP_REQUEST, UVS_OP_SHUTDOWN, UVS_OP_RW,
		UVS_OP_CREDIT_UPDATE, UVS_OP_CREDIT_REQUEST, 9 };
	struct tctx *t = *state;
	uint8_t byte = 3;

	for (unsigned int i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		struct fsock *fs = app_socket(t, UVS_TYPE_STREAM);
		const struct evrec *e;
		uint32_t lport;

		clear_pkts(t);
		assert_int_equal(uvs_conn_connect(fs->c, t->p, GLPORT, t->now), 0);
		lport = fs->c->local_port;
		assert_int_equal(drain(t), 1);
		clear_pkts(t);
		if (ops[i] == UVS_OP_RW)
			g_rw(t, UVS_TYPE_STREAM, GLPORT, lport, 0, &byte, 1);
		else
			g_ctl(t, UVS_TYPE_STREAM, ops[i], GLPORT, lport,
					ops[i] == UVS_OP_SHUTDOWN ? 3 : 0);
		e = find_ev(t, fs, UVS_EV_CONNECT_FAILED);
		assert_non_null(e);
		assert_int_equal(e->err, -EPROTO);
		assert_int_equal(fs->c->state, UVS_ST_CLOSE);
		assert_int_equal(count_ev(t, fs, UVS_EV_CONNECTED), 0);
		assert_int_equal(fs->rx_calls, 0); /* no data delivered while connecting */
		assert_int_equal(drain(t), 1);
		assert_int_equal(t->pkts[0].h.op, UVS_OP_RST);
		assert_int_equal(t->pkts[0].h.type, UVS_TYPE_STREAM);
		assert_int_equal(t->pkts[0].h.src_port, lport);
		assert_int_equal(t->pkts[0].h.dst_port, GLPORT);
		assert_int_equal(t->p->nconns, 0);
		app_close(t, fs);
		assert_true(fs->freed);
	}
}

static void
connect_invalid_op_ignored(void **state)
{
	struct tctx *t = *state;
	struct fsock *fs = app_socket(t, UVS_TYPE_STREAM);

	assert_int_equal(uvs_conn_connect(fs->c, t->p, GLPORT, t->now), 0);
	assert_int_equal(drain(t), 1);
	clear_pkts(t);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_INVALID, GLPORT, fs->c->local_port, 0);
	assert_int_equal(drain(t), 0);
	assert_int_equal(fs->c->state, UVS_ST_SYN_SENT);
	assert_int_equal(count_ev(t, fs, UVS_EV_CONNECT_FAILED), 0);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_RESPONSE, GLPORT, fs->c->local_port, 0);
	assert_int_equal(count_ev(t, fs, UVS_EV_CONNECTED), 1);
}

static void
connect_type_mismatch_reply_leaves_it_connecting(void **state)
{
	struct tctx *t = *state;
	struct fsock *fs = app_socket(t, UVS_TYPE_STREAM);

	assert_int_equal(uvs_conn_connect(fs->c, t->p, GLPORT, t->now), 0);
	assert_int_equal(drain(t), 1);
	clear_pkts(t);
	/* Linux: type mismatch -> RST without touching the socket */
	g_ctl(t, UVS_TYPE_SEQPACKET, UVS_OP_RESPONSE, GLPORT, fs->c->local_port, 0);
	assert_int_equal(drain(t), 1);
	assert_ctl(&t->pkts[0], UVS_OP_RST, UVS_TYPE_SEQPACKET, fs->c->local_port, GLPORT, 0, 0, 0);
	assert_int_equal(fs->c->state, UVS_ST_SYN_SENT);
	assert_int_equal(t->p->drops[UVS_DROP_BAD_TYPE], 1);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_RESPONSE, GLPORT, fs->c->local_port, 0);
	assert_int_equal(count_ev(t, fs, UVS_EV_CONNECTED), 1);
}

static void
connect_timeout_fails_etimedout(void **state)
{
	struct tctx *t = *state;
	struct fsock *fs = app_socket(t, UVS_TYPE_STREAM);
	const struct evrec *e;
	uint32_t lport;

	assert_int_equal(uvs_conn_connect(fs->c, t->p, GLPORT, t->now), 0);
	lport = fs->c->local_port;
	assert_int_equal(drain(t), 1);
	clear_pkts(t);
	uvs_engine_tick(t->eng, t->now + UVS_CONNECT_TIMEOUT_NS - 1);
	assert_int_equal(fs->c->state, UVS_ST_SYN_SENT);
	assert_int_equal(count_ev(t, fs, UVS_EV_CONNECT_FAILED), 0);
	uvs_engine_tick(t->eng, t->now + UVS_CONNECT_TIMEOUT_NS);
	e = find_ev(t, fs, UVS_EV_CONNECT_FAILED);
	assert_non_null(e);
	assert_int_equal(e->err, -ETIMEDOUT);
	assert_int_equal(fs->c->state, UVS_ST_CLOSE);
	/* Linux sends nothing on a connect timeout */
	assert_int_equal(drain(t), 0);
	assert_int_equal(t->p->nconns, 0);
	/* a late RESPONSE meets no connection and is reset */
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_RESPONSE, GLPORT, lport, 0);
	assert_int_equal(drain(t), 1);
	assert_ctl(&t->pkts[0], UVS_OP_RST, UVS_TYPE_STREAM, lport, GLPORT, 0, 0, 0);
	assert_int_equal(count_ev(t, fs, UVS_EV_CONNECTED), 0);
	assert_int_equal(count_ev(t, fs, UVS_EV_CONNECT_FAILED), 1);
}

static void
connect_again_while_connecting_ealready(void **state)
{
	struct tctx *t = *state;
	struct fsock *fs = app_socket(t, UVS_TYPE_STREAM);

	assert_int_equal(uvs_conn_connect(fs->c, t->p, GLPORT, t->now), 0);
	assert_int_equal(uvs_conn_connect(fs->c, t->p, GLPORT, t->now), -EALREADY);
	assert_int_equal(uvs_conn_connect(fs->c, t->p, GLPORT + 1, t->now), -EALREADY);
	/* exactly one REQUEST */
	assert_int_equal(drain(t), 1);
	assert_int_equal(t->pkts[0].h.dst_port, GLPORT);
	assert_int_equal(t->p->nconns, 1);
}

static void
connect_seqpacket_without_feature_refused(void **state)
{
	struct tctx *t = *state;
	struct fsock *fs;

	uvs_peer_init(t->p, GUEST_CID, false, NULL);
	fs = app_socket(t, UVS_TYPE_SEQPACKET);
	assert_int_equal(uvs_conn_connect(fs->c, t->p, GLPORT, t->now), -ESOCKTNOSUPPORT);
	assert_int_equal(fs->c->state, UVS_ST_CLOSE);
	assert_int_equal(drain(t), 0);
	assert_int_equal(t->p->nconns, 0);
}

static void
connect_retry_after_failure(void **state)
{
	struct tctx *t = *state;
	struct fsock *fs = app_socket(t, UVS_TYPE_STREAM);
	uint32_t lport;

	assert_int_equal(uvs_conn_connect(fs->c, t->p, GLPORT, t->now), 0);
	lport = fs->c->local_port;
	assert_int_equal(drain(t), 1);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_RST, GLPORT, lport, 0);
	assert_int_equal(fs->c->err, -ECONNRESET);
	clear_pkts(t);
	/* same socket, still bound to the same port */
	assert_int_equal(uvs_conn_connect(fs->c, t->p, GLPORT, t->now), 0);
	assert_int_equal(fs->c->err, 0);
	assert_int_equal(fs->c->local_port, lport);
	assert_int_equal(drain(t), 1);
	assert_ctl(&t->pkts[0], UVS_OP_REQUEST, UVS_TYPE_STREAM, lport, GLPORT, 0,
			UVS_BUF_SIZE_DEFAULT, 0);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_RESPONSE, GLPORT, lport, 0);
	assert_int_equal(count_ev(t, fs, UVS_EV_CONNECTED), 1);
}

static void
connect_close_while_connecting_sends_rst(void **state)
{
	struct tctx *t = *state;
	struct fsock *fs = app_socket(t, UVS_TYPE_STREAM);
	uint32_t lport;

	assert_int_equal(uvs_conn_connect(fs->c, t->p, GLPORT, t->now), 0);
	lport = fs->c->local_port;
	assert_int_equal(drain(t), 1);
	clear_pkts(t);
	app_close(t, fs);
	assert_true(fs->freed); /* at once: the RST waits on the peer's reply ring */
	assert_int_equal(drain(t), 1);
	assert_int_equal(t->pkts[0].h.op, UVS_OP_RST);
	assert_int_equal(t->pkts[0].h.src_port, lport);
	assert_int_equal(t->pkts[0].h.dst_port, GLPORT);
	assert_true(fs->freed);
	assert_int_equal(count_ev(t, fs, UVS_EV_CONNECT_FAILED), 0);
	assert_int_equal(t->p->nconns, 0);
	/* a late RESPONSE is reset; the timer no longer exists */
	clear_pkts(t);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_RESPONSE, GLPORT, lport, 0);
	assert_int_equal(drain(t), 1);
	assert_ctl(&t->pkts[0], UVS_OP_RST, UVS_TYPE_STREAM, lport, GLPORT, 0, 0, 0);
	uvs_engine_tick(t->eng, t->now + 100 * SEC);
}

/* ---------------------------------------------------------------------------------------- */
/* ESTABLISHED: receive (§3.2, §4.4) */

static void
est_rw_delivered_intact(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, GUEST_BUF);
	struct fsock *fs = guest_connect(t, l, GPORT);
	uint8_t data[3000];

	fill_pattern(data, sizeof(data), 1);
	g_rw(t, UVS_TYPE_STREAM, GPORT, LPORT, 0, data, 1000);
	/* a STREAM packet with stray SEQPACKET flags: flags are not passed on */
	g_rw(t, UVS_TYPE_STREAM, GPORT, LPORT, UVS_SEQ_EOM | UVS_SEQ_EOR, data + 1000, 2000);
	assert_int_equal(fs->rx_calls, 2);
	assert_int_equal(fs->rx_len, 3000);
	assert_memory_equal(fs->rx, data, 3000);
	assert_int_equal(fs->rx_rec_len[0], 1000);
	assert_int_equal(fs->rx_rec_flags[0], 0);
	assert_int_equal(fs->rx_rec_flags[1], 0);
	assert_int_equal(fs->c->cr.rx_cnt, 3000);
	/* receiving alone owes the guest nothing */
	assert_int_equal(drain(t), 0);
	assert_int_equal(t->nev, 1); /* only ACCEPTABLE */
}

static void
est_seqpacket_rw_flags_delivered(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_SEQPACKET, LPORT, 4, GUEST_BUF);
	struct fsock *fs = guest_connect(t, l, GPORT);
	uint8_t data[300];

	fill_pattern(data, sizeof(data), 2);
	g_rw(t, UVS_TYPE_SEQPACKET, GPORT, LPORT, 0, data, 100);
	g_rw(t, UVS_TYPE_SEQPACKET, GPORT, LPORT, UVS_SEQ_EOM, data + 100, 100);
	g_rw(t, UVS_TYPE_SEQPACKET, GPORT, LPORT, UVS_SEQ_EOM | UVS_SEQ_EOR, data + 200, 100);
	assert_int_equal(fs->rx_calls, 3);
	assert_int_equal(fs->rx_rec_flags[0], 0);
	assert_int_equal(fs->rx_rec_flags[1], UVS_SEQ_EOM);
	assert_int_equal(fs->rx_rec_flags[2], UVS_SEQ_EOM | UVS_SEQ_EOR);
	assert_memory_equal(fs->rx, data, 300);
}

static void
est_rw_zero_length_ignored(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, GUEST_BUF);
	struct fsock *fs = guest_connect(t, l, GPORT);

	g_rw(t, UVS_TYPE_STREAM, GPORT, LPORT, 0, NULL, 0);
	assert_int_equal(fs->rx_calls, 0);
	assert_int_equal(t->p->drops[UVS_DROP_ZERO_RW], 1);
	assert_int_equal(fs->c->state, UVS_ST_ESTABLISHED);
	assert_int_equal(drain(t), 0);
}

static void
est_rw_beyond_credit_resets(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, 4096);
	struct fsock *fs = guest_connect(t, l, GPORT);
	uint8_t data[4097];

	fill_pattern(data, sizeof(data), 3);
	g_rw(t, UVS_TYPE_STREAM, GPORT, LPORT, 0, data, 4096);
	assert_int_equal(fs->rx_len, 4096);
	assert_int_equal(fs->c->state, UVS_ST_ESTABLISHED);
	/* the application consumed 100 bytes but nobody told the guest: still no credit */
	fs->consumed += 100;
	fs->rx_read += 100;
	g_rw(t, UVS_TYPE_STREAM, GPORT, LPORT, 0, data + 4096, 1);
	assert_int_equal(fs->rx_len, 4096);
	assert_int_equal(t->p->drops[UVS_DROP_CREDIT_OVERRUN], 1);
	assert_int_equal(count_ev(t, fs, UVS_EV_RESET), 1);
	assert_int_equal(fs->c->state, UVS_ST_DONE);
	assert_int_equal(drain(t), 1);
	/* the RST of an existing socket carries its credit values */
	assert_ctl(&t->pkts[0], UVS_OP_RST, UVS_TYPE_STREAM, LPORT, GPORT, 0, 4096, 100);
	/* the connection is gone from the tables: more data is answered by RST */
	clear_pkts(t);
	g_rw(t, UVS_TYPE_STREAM, GPORT, LPORT, 0, data, 1);
	assert_int_equal(drain(t), 1);
	assert_ctl(&t->pkts[0], UVS_OP_RST, UVS_TYPE_STREAM, LPORT, GPORT, 0, 0, 0);
	assert_int_equal(fs->rx_len, 4096);
	/* the application closes: nothing more on the wire */
	clear_pkts(t);
	app_close(t, fs);
	assert_true(fs->freed);
	assert_int_equal(drain(t), 0);
}

static void
est_rw_within_advertised_credit_accepted(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, 4096);
	struct fsock *fs = guest_connect(t, l, GPORT);
	uint8_t data[4096];

	fill_pattern(data, sizeof(data), 4);
	g_rw(t, UVS_TYPE_STREAM, GPORT, LPORT, 0, data, 4096);
	app_consume(fs, 4096);
	assert_int_equal(drain(t), 1);
	assert_ctl(&t->pkts[0], UVS_OP_CREDIT_UPDATE, UVS_TYPE_STREAM, LPORT, GPORT, 0, 4096, 4096);
	g_rw(t, UVS_TYPE_STREAM, GPORT, LPORT, 0, data, 4096);
	assert_int_equal(fs->c->state, UVS_ST_ESTABLISHED);
	assert_int_equal(fs->rx_len, 8192);
	assert_int_equal(t->p->drops[UVS_DROP_CREDIT_OVERRUN], 0);
}

static void
est_rx_nobufs_resets(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, GUEST_BUF);
	struct fsock *fs = guest_connect(t, l, GPORT);
	uint8_t byte = 9;

	fs->rx_ret = -ENOBUFS;
	g_rw(t, UVS_TYPE_STREAM, GPORT, LPORT, 0, &byte, 1);
	assert_int_equal(t->p->drops[UVS_DROP_RX_NOBUFS], 1);
	assert_int_equal(count_ev(t, fs, UVS_EV_RESET), 1);
	assert_int_equal(drain(t), 1);
	assert_int_equal(t->pkts[0].h.op, UVS_OP_RST);
	assert_int_equal(t->pkts[0].h.dst_port, GPORT);
}

static void
est_credit_request_answered(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, 100000);
	struct fsock *fs = guest_connect(t, l, GPORT);
	uint8_t data[1000];

	fill_pattern(data, sizeof(data), 5);
	g_rw(t, UVS_TYPE_STREAM, GPORT, LPORT, 0, data, 1000);
	fs->consumed += 300; /* consumed without waking the engine */
	fs->rx_read += 300;
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_CREDIT_REQUEST, GPORT, LPORT, 0);
	assert_int_equal(drain(t), 1);
	assert_ctl(&t->pkts[0], UVS_OP_CREDIT_UPDATE, UVS_TYPE_STREAM, LPORT, GPORT, 0, 100000,
			300);
	assert_int_equal(fs->c->cr.last_fwd_cnt, 300);
	/* twice in a row: answered twice */
	clear_pkts(t);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_CREDIT_REQUEST, GPORT, LPORT, 0);
	assert_int_equal(drain(t), 1);
	assert_int_equal(t->pkts[0].h.op, UVS_OP_CREDIT_UPDATE);
}

static void
est_credit_update_wakes_writer(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, GUEST_BUF);
	struct fsock *fs;
	static uint8_t data[3000], got[3000];

	t->gbuf = 1000;
	fs = guest_connect(t, l, GPORT);
	fill_pattern(data, sizeof(data), 6);
	app_write(fs, data, 3000, false);
	assert_int_equal(drain(t), 1);
	assert_int_equal(rw_bytes(t, 0, got), 1000);
	/* an update that does not raise the credit wakes nobody */
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_CREDIT_UPDATE, GPORT, LPORT, 0);
	assert_int_equal(count_ev(t, fs, UVS_EV_WRITABLE), 0);
	assert_int_equal(drain(t), 0);
	/* the guest consumed everything */
	t->gfwd = 1000;
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_CREDIT_UPDATE, GPORT, LPORT, 0);
	assert_int_equal(count_ev(t, fs, UVS_EV_WRITABLE), 1);
	assert_int_equal(drain(t), 1);
	assert_int_equal(rw_bytes(t, 0, got), 2000);
	/* the guest grows its buffer instead */
	t->gbuf = 5000;
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_CREDIT_UPDATE, GPORT, LPORT, 0);
	assert_int_equal(count_ev(t, fs, UVS_EV_WRITABLE), 2);
	assert_int_equal(drain(t), 1);
	assert_int_equal(rw_bytes(t, 0, got), 3000);
	assert_memory_equal(got, data, 3000);
	assert_int_equal(fs->c->cr.tx_cnt, 3000);
}

static void
est_peer_shutdown_send_keeps_sending(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, GUEST_BUF);
	struct fsock *fs = guest_connect(t, l, GPORT);

	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_SHUTDOWN, GPORT, LPORT, UVS_SHUTDOWN_SEND);
	assert_int_equal(count_ev(t, fs, UVS_EV_PEER_SHUTDOWN), 1);
	assert_int_equal(fs->c->peer_shut, UVS_SHUTDOWN_SEND);
	assert_int_equal(fs->c->state, UVS_ST_ESTABLISHED);
	assert_int_equal(drain(t), 0);
	/* repeated: sticky, no new event */
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_SHUTDOWN, GPORT, LPORT, UVS_SHUTDOWN_SEND);
	assert_int_equal(count_ev(t, fs, UVS_EV_PEER_SHUTDOWN), 1);
	/* a later SHUTDOWN with no bits does not undo it */
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_SHUTDOWN, GPORT, LPORT, 0);
	assert_int_equal(fs->c->peer_shut, UVS_SHUTDOWN_SEND);
	app_write(fs, "abc", 3, false);
	assert_int_equal(drain(t), 1);
	assert_int_equal(t->pkts[0].h.op, UVS_OP_RW);
	assert_memory_equal(t->pkts[0].data, "abc", 3);
	assert_int_equal(count_ev(t, fs, UVS_EV_RESET), 0);
}

static void
est_peer_shutdown_rcv_stops_sending(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, GUEST_BUF);
	struct fsock *fs = guest_connect(t, l, GPORT);

	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_SHUTDOWN, GPORT, LPORT, UVS_SHUTDOWN_RCV);
	assert_int_equal(count_ev(t, fs, UVS_EV_PEER_SHUTDOWN), 1);
	app_write(fs, "abc", 3, false);
	assert_int_equal(drain(t), 0);
	assert_int_equal(fs->tx_off, 0);
}

static void
est_shutdown_both_idle_sends_rst_and_frees_tuple(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, 60000);
	struct fsock *fs = guest_connect(t, l, GPORT);
	struct fsock *again;
	uint8_t data[10];

	fill_pattern(data, sizeof(data), 7);
	g_rw(t, UVS_TYPE_STREAM, GPORT, LPORT, 0, data, 10);
	fs->consumed += 10; /* everything read */
	fs->rx_read += 10;
	/* in two steps: RCV then SEND */
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_SHUTDOWN, GPORT, LPORT, UVS_SHUTDOWN_RCV);
	assert_int_equal(drain(t), 0);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_SHUTDOWN, GPORT, LPORT, UVS_SHUTDOWN_SEND);
	assert_int_equal(count_ev(t, fs, UVS_EV_PEER_SHUTDOWN), 2);
	assert_int_equal(drain(t), 1);
	assert_ctl(&t->pkts[0], UVS_OP_RST, UVS_TYPE_STREAM, LPORT, GPORT, 0, 60000, 10);
	assert_int_equal(fs->c->state, UVS_ST_DONE);
	assert_int_equal(fs->c->peer_shut, UVS_SHUTDOWN_BOTH);
	/* the guest reconnects from the same port at once: accepted as a new connection */
	again = guest_connect(t, l, GPORT);
	assert_ptr_not_equal(again, fs);
	g_rw(t, UVS_TYPE_STREAM, GPORT, LPORT, 0, data, 5);
	assert_int_equal(again->rx_len, 5);
	assert_int_equal(fs->rx_len, 10);
	/* closing the old one sends nothing: its RST is out already */
	clear_pkts(t);
	app_close(t, fs);
	assert_true(fs->freed);
	assert_int_equal(drain(t), 0);
	assert_int_equal(again->c->state, UVS_ST_ESTABLISHED);
}

static void
est_shutdown_both_unread_rst_only_at_close(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, 60000);
	struct fsock *fs = guest_connect(t, l, GPORT);
	struct fsock *again;
	uint8_t data[100];

	fill_pattern(data, sizeof(data), 8);
	g_rw(t, UVS_TYPE_STREAM, GPORT, LPORT, 0, data, 100);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_SHUTDOWN, GPORT, LPORT, UVS_SHUTDOWN_BOTH);
	assert_int_equal(count_ev(t, fs, UVS_EV_PEER_SHUTDOWN), 1);
	assert_int_equal(drain(t), 0);
	assert_int_equal(fs->c->peer_shut, UVS_SHUTDOWN_BOTH);
	/* the tuple is free even though the old socket lives on */
	again = guest_connect(t, l, GPORT);
	assert_int_equal(again->c->peer_port, GPORT);
	/* the application reads half and closes */
	app_consume(fs, 50);
	clear_pkts(t);
	app_close(t, fs);
	assert_int_equal(drain(t), 1);
	assert_ctl(&t->pkts[0], UVS_OP_RST, UVS_TYPE_STREAM, LPORT, GPORT, 0, 60000, 50);
	assert_true(fs->freed);
	assert_int_equal(count_op(t, UVS_OP_SHUTDOWN), 0);
}

static void
est_rst_from_peer(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, GUEST_BUF);
	struct fsock *fs = guest_connect(t, l, GPORT);
	uint8_t data[20];

	fill_pattern(data, sizeof(data), 9);
	g_rw(t, UVS_TYPE_STREAM, GPORT, LPORT, 0, data, 20);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_RST, GPORT, LPORT, 0);
	assert_int_equal(count_ev(t, fs, UVS_EV_RESET), 1);
	assert_int_equal(fs->c->state, UVS_ST_DONE);
	assert_int_equal(fs->c->peer_shut, UVS_SHUTDOWN_BOTH);
	assert_int_equal(fs->c->err, 0); /* EOF/EPIPE, not an error (§3.5) */
	/* never answer an RST */
	assert_int_equal(drain(t), 0);
	/* unread data is still there for the application */
	assert_int_equal(fs->rx_len, 20);
	/* further packets meet no connection */
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_CREDIT_REQUEST, GPORT, LPORT, 0);
	assert_int_equal(drain(t), 1);
	assert_ctl(&t->pkts[0], UVS_OP_RST, UVS_TYPE_STREAM, LPORT, GPORT, 0, 0, 0);
	/* the application writes and closes: nothing goes out */
	clear_pkts(t);
	app_write(fs, "x", 1, false);
	assert_int_equal(drain(t), 0);
	app_close(t, fs);
	assert_true(fs->freed);
	assert_int_equal(drain(t), 0);
}

static void
est_unknown_ops_ignored(void **state)
{
	static const uint16_t ops[] = { UVS_OP_INVALID, UVS_OP_REQUEST, UVS_OP_RESPONSE, 8, 9,
		0xffff };
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, GUEST_BUF);
	struct fsock *fs = guest_connect(t, l, GPORT);
	unsigned int nev = t->nev;

	for (unsigned int i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		g_ctl(t, UVS_TYPE_STREAM, ops[i], GPORT, LPORT, 0);
	assert_int_equal(drain(t), 0);
	assert_int_equal(t->nev, nev);
	assert_int_equal(fs->c->state, UVS_ST_ESTABLISHED);
	assert_int_equal(t->p->drops[UVS_DROP_UNEXPECTED], sizeof(ops) / sizeof(ops[0]));
	/* still fully working */
	g_rw(t, UVS_TYPE_STREAM, GPORT, LPORT, 0, "q", 1);
	assert_int_equal(fs->rx_len, 1);
}

static void
est_type_mismatch_gets_rst_connection_untouched(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, GUEST_BUF);
	struct fsock *fs = guest_connect(t, l, GPORT);

	g_rw(t, UVS_TYPE_SEQPACKET, GPORT, LPORT, UVS_SEQ_EOM, "zz", 2);
	assert_int_equal(drain(t), 1);
	assert_ctl(&t->pkts[0], UVS_OP_RST, UVS_TYPE_SEQPACKET, LPORT, GPORT, 0, 0, 0);
	assert_int_equal(fs->rx_calls, 0);
	assert_int_equal(fs->c->state, UVS_ST_ESTABLISHED);
	assert_int_equal(count_ev(t, fs, UVS_EV_RESET), 0);
}

static void
est_host_connected_handles_ops_too(void **state)
{
	struct tctx *t = *state;
	struct fsock *fs = host_connect(t, UVS_TYPE_STREAM, GLPORT);
	uint32_t lport = fs->c->local_port;

	g_rw(t, UVS_TYPE_STREAM, GLPORT, lport, 0, "data", 4);
	assert_int_equal(fs->rx_len, 4);
	assert_memory_equal(fs->rx, "data", 4);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_CREDIT_REQUEST, GLPORT, lport, 0);
	assert_int_equal(drain(t), 1);
	assert_ctl(&t->pkts[0], UVS_OP_CREDIT_UPDATE, UVS_TYPE_STREAM, lport, GLPORT, 0,
			UVS_BUF_SIZE_DEFAULT, 0);
	/* a REQUEST from another guest port to our connected port: no listener there */
	clear_pkts(t);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_REQUEST, GLPORT + 1, lport, 0);
	assert_int_equal(drain(t), 1);
	assert_ctl(&t->pkts[0], UVS_OP_RST, UVS_TYPE_STREAM, lport, GLPORT + 1, 0, 0, 0);
	assert_int_equal(fs->c->state, UVS_ST_ESTABLISHED);
}

static void
peer_conn_limit_resets_request(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, GUEST_BUF);
	struct fsock *fs = app_socket(t, UVS_TYPE_STREAM);

	/* pretend the guest already holds the maximum */
	t->p->nconns = UVS_PEER_MAX_CONNS;
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_REQUEST, GPORT, LPORT, 0);
	assert_int_equal(drain(t), 1);
	assert_ctl(&t->pkts[0], UVS_OP_RST, UVS_TYPE_STREAM, LPORT, GPORT, 0, 0, 0);
	assert_int_equal(t->p->drops[UVS_DROP_CONN_LIMIT], 1);
	assert_int_equal(uvs_conn_connect(fs->c, t->p, GLPORT, t->now), -EAGAIN);
	t->p->nconns = 0;
	assert_int_equal(l->c->nqueued, 0);
}

static void
peers_are_kept_apart(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, GUEST_BUF);
	struct fsock *a, *b;
	struct uvs_conn *child;
	struct uvs_hdr h;

	t->p2 = calloc(1, sizeof(*t->p2));
	assert_non_null(t->p2);
	uvs_peer_init(t->p2, 4, false, NULL);
	a = guest_connect(t, l, GPORT);
	/* same source port from another guest: another connection */
	g_pkt_peer(t, t->p2, UVS_TYPE_STREAM, UVS_OP_REQUEST, GPORT, LPORT, 0, NULL, 0);
	assert_int_equal(drain(t), 0); /* nothing for guest 3 */
	assert_int_equal(tx_one_peer(t, t->p2, ROOM_4K), UVS_HDR_SIZE);
	h = t->pkts[0].h;
	assert_int_equal(h.op, UVS_OP_RESPONSE);
	assert_int_equal(h.dst_cid, 4);
	assert_int_equal(h.dst_port, GPORT);
	assert_int_equal(drain_peer(t, t->p2, ROOM_4K), 0);
	assert_int_equal(uvs_conn_accept(l->c, &child), 0);
	b = sock_of(child);
	b->app_owned = true;
	assert_int_equal(child->peer_cid, 4);
	g_pkt_peer(t, t->p2, UVS_TYPE_STREAM, UVS_OP_RW, GPORT, LPORT, 0, "bb", 2);
	g_rw(t, UVS_TYPE_STREAM, GPORT, LPORT, 0, "a", 1);
	assert_int_equal(a->rx_len, 1);
	assert_int_equal(b->rx_len, 2);
	/* an RST from guest 4 leaves guest 3's connection alone */
	g_pkt_peer(t, t->p2, UVS_TYPE_STREAM, UVS_OP_RST, GPORT, LPORT, 0, NULL, 0);
	assert_int_equal(count_ev(t, b, UVS_EV_RESET), 1);
	assert_int_equal(count_ev(t, a, UVS_EV_RESET), 0);
	assert_int_equal(a->c->state, UVS_ST_ESTABLISHED);
	assert_int_equal(t->p->nconns, 1);
	assert_int_equal(t->p2->nconns, 1);
}

static void
kick_once_per_batch(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 8, GUEST_BUF);

	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_REQUEST, GPORT, LPORT, 0);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_REQUEST, GPORT + 1, LPORT, 0);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_CREDIT_REQUEST, GPORT + 2, LPORT + 1, 0);
	assert_int_equal(t->kicks, 1);
	assert_true(uvs_peer_tx_pending(t->p));
	assert_int_equal(drain(t), 3);
	/* the orphan RST goes first */
	assert_int_equal(t->pkts[0].h.op, UVS_OP_RST);
	assert_int_equal(t->pkts[1].h.op, UVS_OP_RESPONSE);
	assert_int_equal(t->pkts[2].h.op, UVS_OP_RESPONSE);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_CREDIT_REQUEST, GPORT, LPORT, 0);
	assert_int_equal(t->kicks, 2);
	assert_int_equal(drain(t), 1);
	(void)l;
}

/* ---------------------------------------------------------------------------------------- */
/* data transmission (§1.5, §2, §4.2, §4.3, §5.1, §5.2, §9.1, §9.2, §9.8) */

static void
tx_never_exceeds_peer_credit(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, GUEST_BUF);
	struct fsock *fs;
	static uint8_t data[50000], got[50000];

	t->gbuf = 10000;
	fs = guest_connect(t, l, GPORT);
	fill_pattern(data, sizeof(data), 10);
	app_write(fs, data, sizeof(data), false);
	t->room = ROOM_BIG;
	drain(t);
	assert_int_equal(rw_bytes(t, 0, NULL), 10000);
	assert_int_equal(uvs_credit_peer_free(&fs->c->cr), 0);
	/* wake without credit: still nothing */
	uvs_conn_tx_wake(fs->c);
	assert_int_equal(drain(t), 0);
	t->gfwd = 10000;
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_CREDIT_UPDATE, GPORT, LPORT, 0);
	drain(t);
	assert_int_equal(rw_bytes(t, 0, NULL), 20000);
	/* the guest shrinks its buffer below what is in flight: no credit, no wrap */
	t->gfwd = 12000;
	t->gbuf = 5000;
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_CREDIT_UPDATE, GPORT, LPORT, 0);
	assert_int_equal(drain(t), 0);
	assert_int_equal(uvs_credit_peer_free(&fs->c->cr), 0);
	t->gfwd = 20000;
	t->gbuf = 100000;
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_CREDIT_UPDATE, GPORT, LPORT, 0);
	drain(t);
	assert_int_equal(rw_bytes(t, 0, got), 50000);
	assert_memory_equal(got, data, sizeof(data));
	assert_int_equal(fs->c->cr.tx_cnt, 50000);
}

static void
tx_at_most_64k_per_packet(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, GUEST_BUF);
	struct fsock *fs;
	static uint8_t data[200000], got[200000];

	t->gbuf = 1u << 20;
	fs = guest_connect(t, l, GPORT);
	fill_pattern(data, sizeof(data), 11);
	app_write(fs, data, sizeof(data), false);
	t->room = ROOM_BIG;
	assert_int_equal(drain(t), 4);
	assert_int_equal(t->pkts[0].h.len, UVS_MAX_PKT_PAYLOAD);
	assert_int_equal(t->pkts[1].h.len, UVS_MAX_PKT_PAYLOAD);
	assert_int_equal(t->pkts[2].h.len, UVS_MAX_PKT_PAYLOAD);
	assert_int_equal(t->pkts[3].h.len, 200000 - 3 * UVS_MAX_PKT_PAYLOAD);
	assert_int_equal(rw_bytes(t, 0, got), sizeof(data));
	assert_memory_equal(got, data, sizeof(data));
}

static void
tx_fits_the_receive_buffer(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, GUEST_BUF);
	struct fsock *fs = guest_connect(t, l, GPORT);
	static uint8_t data[5000], got[5000];
	unsigned int n;

	fill_pattern(data, sizeof(data), 12);
	app_write(fs, data, sizeof(data), false);
	t->room = 1000;
	n = drain(t);
	assert_int_equal(n, 6);
	for (unsigned int i = 0; i < 5; i++)
		assert_int_equal(t->pkts[i].h.len, 1000 - UVS_HDR_SIZE);
	assert_int_equal(t->pkts[5].h.len, 5000 - 5 * (1000 - UVS_HDR_SIZE));
	assert_int_equal(rw_bytes(t, 0, got), 5000);
	assert_memory_equal(got, data, 5000);
	/* the smallest buffer that holds any payload carries one byte */
	clear_pkts(t);
	app_write(fs, "xy", 2, false);
	assert_int_equal(tx_one(t, UVS_HDR_SIZE + 1), UVS_HDR_SIZE + 1);
	assert_int_equal(t->pkts[0].h.len, 1);
	assert_int_equal(t->pkts[0].data[0], 'x');
	assert_int_equal(tx_one(t, UVS_HDR_SIZE + 1), UVS_HDR_SIZE + 1);
	assert_int_equal(t->pkts[1].data[0], 'y');
	assert_int_equal(drain(t), 0);
}

static void
tx_header_only_buffer_never_gets_empty_rw(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, GUEST_BUF);
	struct fsock *fs = guest_connect(t, l, GPORT);

	app_write(fs, "abc", 3, false);
	/* room for the header only: no zero-length RW may come out */
	assert_int_equal(tx_one(t, UVS_HDR_SIZE), 0);
	assert_int_equal(t->npkts, 0);
	assert_int_equal(fs->tx_off, 0);
}

static void
tx_seqpacket_split_marks_only_last_piece(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_SEQPACKET, LPORT, 4, GUEST_BUF);
	struct fsock *fs = guest_connect(t, l, GPORT);
	static uint8_t data[10000], got[10000];

	fill_pattern(data, sizeof(data), 13);
	app_write(fs, data, 10000, true);
	assert_int_equal(drain(t), 3);
	assert_int_equal(t->pkts[0].h.len, 4096);
	assert_int_equal(t->pkts[0].h.flags, 0);
	assert_int_equal(t->pkts[1].h.len, 4096);
	assert_int_equal(t->pkts[1].h.flags, 0);
	assert_int_equal(t->pkts[2].h.len, 10000 - 8192);
	assert_int_equal(t->pkts[2].h.flags, UVS_SEQ_EOM | UVS_SEQ_EOR);
	for (unsigned int i = 0; i < 3; i++)
		assert_int_equal(t->pkts[i].h.type, UVS_TYPE_SEQPACKET);
	assert_int_equal(rw_bytes(t, 0, got), 10000);
	assert_memory_equal(got, data, 10000);
	/* without MSG_EOR: EOM only */
	clear_pkts(t);
	app_write(fs, data, 5000, false);
	assert_int_equal(drain(t), 2);
	assert_int_equal(t->pkts[0].h.flags, 0);
	assert_int_equal(t->pkts[1].h.flags, UVS_SEQ_EOM);
	/* two small messages are never merged across the EOM */
	clear_pkts(t);
	app_write(fs, data, 100, false);
	app_write(fs, data + 100, 200, true);
	assert_int_equal(drain(t), 2);
	assert_int_equal(t->pkts[0].h.len, 100);
	assert_int_equal(t->pkts[0].h.flags, UVS_SEQ_EOM);
	assert_int_equal(t->pkts[1].h.len, 200);
	assert_int_equal(t->pkts[1].h.flags, UVS_SEQ_EOM | UVS_SEQ_EOR);
}

static void
tx_seqpacket_split_by_credit(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_SEQPACKET, LPORT, 4, GUEST_BUF);
	struct fsock *fs;
	static uint8_t data[8000];

	t->gbuf = 5000;
	fs = guest_connect(t, l, GPORT);
	fill_pattern(data, sizeof(data), 14);
	app_write(fs, data, 8000, true);
	assert_int_equal(drain(t), 2);
	assert_int_equal(t->pkts[0].h.len, 4096);
	assert_int_equal(t->pkts[1].h.len, 904);
	assert_int_equal(t->pkts[0].h.flags | t->pkts[1].h.flags, 0);
	clear_pkts(t);
	t->gfwd = 5000;
	g_ctl(t, UVS_TYPE_SEQPACKET, UVS_OP_CREDIT_UPDATE, GPORT, LPORT, 0);
	assert_int_equal(drain(t), 1);
	assert_int_equal(t->pkts[0].h.len, 3000);
	assert_int_equal(t->pkts[0].h.flags, UVS_SEQ_EOM | UVS_SEQ_EOR);
	assert_memory_equal(t->pkts[0].data, data + 5000, 3000);
}

static void
tx_stream_flags_are_zero(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, GUEST_BUF);
	struct fsock *fs = guest_connect(t, l, GPORT);

	/* a socket layer reporting message flags on a STREAM socket must not leak them */
	fs->stream_peek_flags = UVS_SEQ_EOM | UVS_SEQ_EOR;
	app_write(fs, "stream", 6, true);
	assert_int_equal(drain(t), 1);
	assert_int_equal(t->pkts[0].h.op, UVS_OP_RW);
	assert_int_equal(t->pkts[0].h.type, UVS_TYPE_STREAM);
	assert_int_equal(t->pkts[0].h.flags, 0);
}

static void
tx_round_robin_between_connections(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, GUEST_BUF);
	struct fsock *a = guest_connect(t, l, GPORT);
	struct fsock *b = guest_connect(t, l, GPORT + 1);
	static uint8_t data[3 * 4096];

	fill_pattern(data, sizeof(data), 15);
	app_write(a, data, sizeof(data), false);
	app_write(b, data, sizeof(data), false);
	assert_int_equal(drain(t), 6);
	for (unsigned int i = 0; i < 6; i++) {
		assert_int_equal(t->pkts[i].h.op, UVS_OP_RW);
		assert_int_equal(t->pkts[i].h.len, 4096);
		assert_int_equal(t->pkts[i].h.dst_port, i % 2 == 0 ? GPORT : GPORT + 1);
	}
	/* a control packet owed by one connection does not wait for the other's data */
	clear_pkts(t);
	app_write(a, data, sizeof(data), false);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_CREDIT_REQUEST, GPORT + 1, LPORT, 0);
	assert_int_equal(drain(t), 4);
	assert_int_equal(t->pkts[0].h.dst_port, GPORT);
	assert_int_equal(t->pkts[1].h.op, UVS_OP_CREDIT_UPDATE);
	assert_int_equal(t->pkts[1].h.dst_port, GPORT + 1);
}

static void
tx_header_carries_current_fwd_cnt(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, 60000);
	struct fsock *fs = guest_connect(t, l, GPORT);
	static uint8_t data[5000];

	fill_pattern(data, sizeof(data), 16);
	g_rw(t, UVS_TYPE_STREAM, GPORT, LPORT, 0, data, 5000);
	fs->consumed += 1234; /* read, engine not told */
	fs->rx_read += 1234;
	app_write(fs, "0123456789", 10, false);
	assert_int_equal(drain(t), 1);
	assert_int_equal(t->pkts[0].h.op, UVS_OP_RW);
	assert_int_equal(t->pkts[0].h.buf_alloc, 60000);
	assert_int_equal(t->pkts[0].h.fwd_cnt, 1234);
	assert_int_equal(fs->c->cr.last_fwd_cnt, 1234);
	/* the RW told the guest already: no separate CREDIT_UPDATE */
	uvs_conn_tx_wake(fs->c);
	assert_int_equal(drain(t), 0);
}

static void
tx_credit_update_when_peer_view_low(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, GUEST_BUF);
	struct fsock *fs = guest_connect(t, l, GPORT);
	static uint8_t data[UVS_MAX_PKT_PAYLOAD];
	uint32_t sent = 0;

	fill_pattern(data, sizeof(data), 17);
	while (sent < 200000) {
		uint32_t n = 200000 - sent > sizeof(data) ? sizeof(data) : 200000 - sent;

		g_rw(t, UVS_TYPE_STREAM, GPORT, LPORT, 0, data, n);
		sent += n;
	}
	assert_int_equal(fs->rx_len, 200000);
	assert_int_equal(drain(t), 0);
	/* the guest believes 56 KiB are free: even 10 consumed bytes are worth telling */
	app_consume(fs, 10);
	assert_int_equal(drain(t), 1);
	assert_ctl(&t->pkts[0], UVS_OP_CREDIT_UPDATE, UVS_TYPE_STREAM, LPORT, GPORT, 0, GUEST_BUF,
			10);
	clear_pkts(t);
	app_consume(fs, 10);
	assert_int_equal(drain(t), 1);
	assert_int_equal(t->pkts[0].h.fwd_cnt, 20);
	/* waking with nothing new consumed sends nothing */
	clear_pkts(t);
	uvs_conn_tx_wake(fs->c);
	assert_int_equal(drain(t), 0);
}

static void
tx_credit_update_not_due_then_due_when_drained(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, GUEST_BUF);
	struct fsock *fs = guest_connect(t, l, GPORT);
	static uint8_t data[1000];

	fill_pattern(data, sizeof(data), 18);
	g_rw(t, UVS_TYPE_STREAM, GPORT, LPORT, 0, data, 1000);
	app_consume(fs, 10);
	assert_int_equal(drain(t), 0);
	app_consume(fs, 900);
	assert_int_equal(drain(t), 0);
	/* everything read: tell the guest */
	app_consume(fs, 90);
	assert_int_equal(drain(t), 1);
	assert_ctl(&t->pkts[0], UVS_OP_CREDIT_UPDATE, UVS_TYPE_STREAM, LPORT, GPORT, 0, GUEST_BUF,
			1000);
	clear_pkts(t);
	uvs_conn_tx_wake(fs->c);
	assert_int_equal(drain(t), 0);
}

static void
set_buf_size_sends_credit_update(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, GUEST_BUF);
	struct fsock *fs = guest_connect(t, l, GPORT);

	uvs_conn_set_buf_size(fs->c, 100000);
	assert_int_equal(drain(t), 1);
	assert_ctl(&t->pkts[0], UVS_OP_CREDIT_UPDATE, UVS_TYPE_STREAM, LPORT, GPORT, 0, 100000, 0);
	assert_int_equal(fs->c->cr.buf_alloc, 100000);
	/* and the new size is what the guest may fill */
	assert_int_equal(uvs_credit_rx_room(&fs->c->cr), 100000);
}

static void
tx_two_segment_rx_buffer(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, GUEST_BUF);
	struct fsock *fs = guest_connect(t, l, GPORT);
	static uint8_t data[6000], seg0[UVS_HDR_SIZE], seg1[4096];
	struct iovec iov[2] = { { seg0, sizeof(seg0) }, { seg1, sizeof(seg1) } };
	struct uvs_hdr h;

	/* Debian 12 guests post a 44-byte header descriptor and a 4096-byte data one */
	fill_pattern(data, sizeof(data), 19);
	app_write(fs, data, sizeof(data), false);
	assert_int_equal(uvs_engine_tx(t->eng, t->p, iov, 2, sizeof(seg0) + sizeof(seg1)),
			UVS_HDR_SIZE + 4096);
	memcpy(&h, seg0, sizeof(h));
	assert_int_equal(h.op, UVS_OP_RW);
	assert_int_equal(h.len, 4096);
	assert_memory_equal(seg1, data, 4096);
	assert_int_equal(uvs_engine_tx(t->eng, t->p, iov, 2, sizeof(seg0) + sizeof(seg1)),
			UVS_HDR_SIZE + 6000 - 4096);
	memcpy(&h, seg0, sizeof(h));
	assert_int_equal(h.len, 6000 - 4096);
	assert_memory_equal(seg1, data + 4096, 6000 - 4096);
	assert_int_equal(uvs_engine_tx(t->eng, t->p, iov, 2, sizeof(seg0) + sizeof(seg1)), 0);
}

static void
rx_payload_over_several_segments(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, GUEST_BUF);
	struct fsock *fs = guest_connect(t, l, GPORT);
	static uint8_t data[9000], seg0[UVS_HDR_SIZE], seg1[10], seg2[4096], seg3[4894];
	struct iovec iov[4] = { { seg0, sizeof(seg0) }, { seg1, sizeof(seg1) },
		{ seg2, sizeof(seg2) }, { seg3, sizeof(seg3) } };
	struct uvs_hdr h;

	/* >= 6.17 guests spread a tx payload over several page descriptors */
	fill_pattern(data, sizeof(data), 20);
	memset(&h, 0, sizeof(h));
	h.src_cid = GUEST_CID;
	h.dst_cid = HOST_CID;
	h.src_port = GPORT;
	h.dst_port = LPORT;
	h.len = sizeof(data);
	h.type = UVS_TYPE_STREAM;
	h.op = UVS_OP_RW;
	h.buf_alloc = GUEST_BUF;
	memcpy(seg0, &h, sizeof(h));
	memcpy(seg1, data, 10);
	memcpy(seg2, data + 10, 4096);
	memcpy(seg3, data + 4106, sizeof(data) - 4106);
	assert_int_equal(uvs_pkt_check(&h, sizeof(data), GUEST_CID, HOST_CID), UVS_PKT_OK);
	uvs_engine_rx(t->eng, t->p, &h, iov, 4, UVS_HDR_SIZE);
	assert_int_equal(fs->rx_len, sizeof(data));
	assert_memory_equal(fs->rx, data, sizeof(data));
}

/* ---------------------------------------------------------------------------------------- */
/* local shutdown and close (§3.4, §9.6) */

static void
shutdown_send_follows_queued_data(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, GUEST_BUF);
	struct fsock *fs;
	static uint8_t data[3000];

	t->gbuf = 1000;
	fs = guest_connect(t, l, GPORT);
	fill_pattern(data, sizeof(data), 21);
	app_write(fs, data, sizeof(data), false);
	assert_int_equal(uvs_conn_shutdown(fs->c, UVS_SHUTDOWN_SEND), 0);
	assert_int_equal(drain(t), 1);
	assert_int_equal(t->pkts[0].h.op, UVS_OP_RW);
	assert_int_equal(count_op(t, UVS_OP_SHUTDOWN), 0);
	t->gfwd = 1000;
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_CREDIT_UPDATE, GPORT, LPORT, 0);
	assert_int_equal(drain(t), 1);
	assert_int_equal(count_op(t, UVS_OP_SHUTDOWN), 0);
	t->gfwd = 2000;
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_CREDIT_UPDATE, GPORT, LPORT, 0);
	assert_int_equal(drain(t), 2);
	assert_int_equal(t->pkts[2].h.op, UVS_OP_RW);
	assert_int_equal(rw_bytes(t, 0, NULL), 3000);
	assert_ctl(&t->pkts[3], UVS_OP_SHUTDOWN, UVS_TYPE_STREAM, LPORT, GPORT, UVS_SHUTDOWN_SEND,
			GUEST_BUF, 0);
	assert_int_equal(fs->c->sent_shut, UVS_SHUTDOWN_SEND);
	assert_int_equal(fs->c->state, UVS_ST_ESTABLISHED);
	/* after SHUTDOWN(SEND) no data may follow */
	clear_pkts(t);
	app_write(fs, "late", 4, false);
	assert_int_equal(drain(t), 0);
	/* repeating the shutdown sends nothing */
	assert_int_equal(uvs_conn_shutdown(fs->c, UVS_SHUTDOWN_SEND), 0);
	assert_int_equal(drain(t), 0);
	/* receiving still works after a local SHUT_WR */
	g_rw(t, UVS_TYPE_STREAM, GPORT, LPORT, 0, "in", 2);
	assert_int_equal(fs->rx_len, 2);
}

static void
shutdown_rcv_sent_at_once(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, GUEST_BUF);
	struct fsock *fs;
	static uint8_t data[200];

	t->gbuf = 100;
	fs = guest_connect(t, l, GPORT);
	app_write(fs, data, sizeof(data), false);
	assert_int_equal(drain(t), 1);
	clear_pkts(t);
	assert_int_equal(uvs_conn_shutdown(fs->c, UVS_SHUTDOWN_RCV), 0);
	assert_int_equal(drain(t), 1);
	assert_ctl(&t->pkts[0], UVS_OP_SHUTDOWN, UVS_TYPE_STREAM, LPORT, GPORT, UVS_SHUTDOWN_RCV,
			GUEST_BUF, 0);
	/* then SEND: held until the remaining 100 bytes are out, flags stay sticky */
	clear_pkts(t);
	assert_int_equal(uvs_conn_shutdown(fs->c, UVS_SHUTDOWN_SEND), 0);
	assert_int_equal(drain(t), 0);
	t->gfwd = 100;
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_CREDIT_UPDATE, GPORT, LPORT, 0);
	assert_int_equal(drain(t), 2);
	assert_int_equal(t->pkts[0].h.op, UVS_OP_RW);
	assert_int_equal(t->pkts[0].h.len, 100);
	assert_int_equal(t->pkts[1].h.op, UVS_OP_SHUTDOWN);
	assert_int_equal(t->pkts[1].h.flags, UVS_SHUTDOWN_BOTH);
}

static void
shutdown_unconnected_enotconn(void **state)
{
	struct tctx *t = *state;
	struct fsock *fs = app_socket(t, UVS_TYPE_STREAM);
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, GUEST_BUF);

	assert_int_equal(uvs_conn_shutdown(fs->c, UVS_SHUTDOWN_BOTH), -ENOTCONN);
	assert_int_equal(uvs_conn_shutdown(l->c, UVS_SHUTDOWN_BOTH), -ENOTCONN);
	assert_int_equal(uvs_conn_connect(fs->c, t->p, GLPORT, t->now), 0);
	assert_int_equal(uvs_conn_shutdown(fs->c, UVS_SHUTDOWN_SEND), -ENOTCONN);
	assert_int_equal(drain(t), 1);
	assert_int_equal(t->pkts[0].h.op, UVS_OP_REQUEST);
}

static void
close_sends_shutdown_after_data_and_waits_for_rst(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, 70000);
	struct fsock *fs = guest_connect(t, l, GPORT);
	static uint8_t data[2000];

	fill_pattern(data, sizeof(data), 22);
	app_write(fs, data, sizeof(data), false);
	app_close(t, fs);
	assert_int_equal(fs->c->state, UVS_ST_CLOSING);
	assert_int_equal(drain(t), 2);
	assert_int_equal(t->pkts[0].h.op, UVS_OP_RW);
	assert_int_equal(t->pkts[0].h.len, 2000);
	assert_memory_equal(t->pkts[0].data, data, 2000);
	assert_ctl(&t->pkts[1], UVS_OP_SHUTDOWN, UVS_TYPE_STREAM, LPORT, GPORT, UVS_SHUTDOWN_BOTH,
			70000, 0);
	assert_false(fs->freed);
	/* the guest answers RST: the engine frees it, sends nothing */
	clear_pkts(t);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_RST, GPORT, LPORT, 0);
	assert_true(fs->freed);
	assert_int_equal(count_ev(t, fs, UVS_EV_RESET), 0);
	assert_int_equal(drain(t), 0);
	assert_int_equal(t->p->nconns, 0);
	/* the close timer died with it */
	uvs_engine_tick(t->eng, t->now + 100 * SEC);
	assert_int_equal(drain(t), 0);
}

static void
close_holds_shutdown_until_data_drained(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, GUEST_BUF);
	struct fsock *fs;
	static uint8_t data[3000], got[3000];

	t->gbuf = 1000;
	fs = guest_connect(t, l, GPORT);
	fill_pattern(data, sizeof(data), 23);
	app_write(fs, data, sizeof(data), false);
	app_close(t, fs);
	assert_int_equal(drain(t), 1);
	assert_int_equal(count_op(t, UVS_OP_SHUTDOWN), 0);
	/* credit keeps flowing to a closing connection */
	t->gfwd = 1000;
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_CREDIT_UPDATE, GPORT, LPORT, 0);
	assert_int_equal(drain(t), 1);
	t->gfwd = 2000;
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_CREDIT_UPDATE, GPORT, LPORT, 0);
	assert_int_equal(drain(t), 2);
	assert_int_equal(rw_bytes(t, 0, got), 3000);
	assert_memory_equal(got, data, 3000);
	assert_int_equal(t->pkts[3].h.op, UVS_OP_SHUTDOWN);
	assert_int_equal(t->pkts[3].h.flags, UVS_SHUTDOWN_BOTH);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_RST, GPORT, LPORT, 0);
	assert_true(fs->freed);
}

/* Data waiting for the peer's credit counts one stall per episode, on the connection and
 * its peer (telemetry's credit_stalls); nothing while credit lasts. */
static void
credit_stalls_counted_once_per_stall(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, GUEST_BUF);
	struct fsock *fs;
	static uint8_t data[3000];

	t->gbuf = 1000;
	fs = guest_connect(t, l, GPORT);
	app_write(fs, data, 800, false);
	assert_int_equal(drain(t), 1);
	assert_int_equal(fs->c->credit_stalls, 0);
	app_write(fs, data, sizeof(data), false);
	assert_int_equal(drain(t), 1); /* 200 bytes of credit left */
	assert_int_equal(fs->c->credit_stalls, 1);
	uvs_conn_tx_wake(fs->c);
	assert_int_equal(drain(t), 0);
	assert_int_equal(fs->c->credit_stalls, 1); /* the same stall */
	t->gfwd = 1000;
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_CREDIT_UPDATE, GPORT, LPORT, 0);
	assert_int_equal(drain(t), 1);
	assert_int_equal(fs->c->credit_stalls, 2); /* data moved, then stalled again */
	assert_int_equal(t->p->credit_stalls, 2);
	assert_int_equal(fs->c->tx_bytes, 2000);
	g_rw(t, UVS_TYPE_STREAM, GPORT, LPORT, 0, "abc", 3);
	assert_int_equal(fs->c->rx_bytes, 3);
}

static void
close_timeout_sends_rst_and_frees(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, 70000);
	struct fsock *fs = guest_connect(t, l, GPORT);

	g_rw(t, UVS_TYPE_STREAM, GPORT, LPORT, 0, "abc", 3);
	app_consume(fs, 3);
	clear_pkts(t);
	app_close(t, fs);
	assert_int_equal(drain(t), 1);
	assert_int_equal(t->pkts[0].h.op, UVS_OP_SHUTDOWN);
	clear_pkts(t);
	uvs_engine_tick(t->eng, t->now + UVS_CLOSE_TIMEOUT_NS - 1);
	assert_int_equal(drain(t), 0);
	assert_false(fs->freed);
	uvs_engine_tick(t->eng, t->now + UVS_CLOSE_TIMEOUT_NS);
	assert_true(fs->freed); /* at once: the RST waits on the peer's reply ring */
	assert_int_equal(drain(t), 1);
	assert_ctl(&t->pkts[0], UVS_OP_RST, UVS_TYPE_STREAM, LPORT, GPORT, 0, 70000, 3);
	assert_true(fs->freed);
	assert_int_equal(t->p->nconns, 0);
	assert_int_equal(count_ev(t, fs, UVS_EV_RESET), 0);
	/* a late RST from the guest meets nothing and is not answered */
	clear_pkts(t);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_RST, GPORT, LPORT, 0);
	assert_int_equal(drain(t), 0);
}

static void
closing_ignores_all_but_rst_and_shutdown(void **state)
{
	static const uint16_t ops[] = { UVS_OP_INVALID, UVS_OP_REQUEST, UVS_OP_RESPONSE,
		UVS_OP_SHUTDOWN, UVS_OP_CREDIT_UPDATE, UVS_OP_CREDIT_REQUEST, 9 };
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, GUEST_BUF);
	struct fsock *fs = guest_connect(t, l, GPORT);

	app_close(t, fs);
	assert_int_equal(drain(t), 1);
	clear_pkts(t);
	/* a SHUTDOWN with one bit only is noted, nothing more */
	for (unsigned int i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		g_ctl(t, UVS_TYPE_STREAM, ops[i], GPORT, LPORT,
				ops[i] == UVS_OP_SHUTDOWN ? UVS_SHUTDOWN_SEND : 0);
	g_rw(t, UVS_TYPE_STREAM, GPORT, LPORT, 0, "late", 4);
	assert_int_equal(drain(t), 0);
	assert_false(fs->freed);
	assert_int_equal(fs->c->state, UVS_ST_CLOSING);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_RST, GPORT, LPORT, 0);
	assert_true(fs->freed);
	assert_int_equal(drain(t), 0);
}

/* Both ends close at once (each sent SHUTDOWN both before seeing the other's): the peer's
 * SHUTDOWN is answered with RST and the connection freed, as Linux does, instead of both
 * waiting out the close timeout. */
static void
closing_simultaneous_close_answers_rst(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_SEQPACKET, LPORT, 4, 70000);
	struct fsock *fs = guest_connect(t, l, GPORT);

	g_rw(t, UVS_TYPE_SEQPACKET, GPORT, LPORT, UVS_SEQ_EOM, "abc", 3);
	app_consume(fs, 3);
	app_close(t, fs);
	assert_int_equal(drain(t), 1);
	assert_int_equal(t->pkts[0].h.op, UVS_OP_SHUTDOWN);
	clear_pkts(t);
	g_ctl(t, UVS_TYPE_SEQPACKET, UVS_OP_SHUTDOWN, GPORT, LPORT, UVS_SHUTDOWN_BOTH);
	assert_true(fs->freed);
	assert_int_equal(drain(t), 1);
	assert_ctl(&t->pkts[0], UVS_OP_RST, UVS_TYPE_SEQPACKET, LPORT, GPORT, 0, 70000, 3);
	assert_int_equal(t->p->nconns, 0);
	assert_int_equal(count_ev(t, fs, UVS_EV_RESET), 0);
	/* nothing more: the close timer died with it */
	clear_pkts(t);
	uvs_engine_tick(t->eng, t->now + 100 * SEC);
	assert_int_equal(drain(t), 0);
}

/* The same with data the application never read: no RST (Linux counts it as unread), the
 * tuple is free at once, and the close timeout ends it. */
static void
closing_simultaneous_close_unread_waits_for_timeout(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, 70000);
	struct fsock *fs = guest_connect(t, l, GPORT);
	struct fsock *again;

	g_rw(t, UVS_TYPE_STREAM, GPORT, LPORT, 0, "abc", 3);
	app_close(t, fs);
	assert_int_equal(drain(t), 1);
	clear_pkts(t);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_SHUTDOWN, GPORT, LPORT, UVS_SHUTDOWN_BOTH);
	assert_false(fs->freed);
	assert_int_equal(drain(t), 0);
	again = guest_connect(t, l, GPORT);
	assert_int_equal(again->c->peer_port, GPORT);
	clear_pkts(t);
	uvs_engine_tick(t->eng, t->now + UVS_CLOSE_TIMEOUT_NS);
	assert_true(fs->freed);
	assert_int_equal(drain(t), 1);
	assert_int_equal(t->pkts[0].h.op, UVS_OP_RST);
}

static void
close_after_peer_shutdown_send_sends_shutdown(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, GUEST_BUF);
	struct fsock *fs = guest_connect(t, l, GPORT);

	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_SHUTDOWN, GPORT, LPORT, UVS_SHUTDOWN_SEND);
	app_close(t, fs);
	assert_int_equal(drain(t), 1);
	assert_int_equal(t->pkts[0].h.op, UVS_OP_SHUTDOWN);
	assert_int_equal(t->pkts[0].h.flags, UVS_SHUTDOWN_BOTH);
	assert_false(fs->freed);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_RST, GPORT, LPORT, 0);
	assert_true(fs->freed);
}

static void
close_after_full_local_shutdown_sends_no_second_shutdown(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, GUEST_BUF);
	struct fsock *fs = guest_connect(t, l, GPORT);

	assert_int_equal(uvs_conn_shutdown(fs->c, UVS_SHUTDOWN_BOTH), 0);
	assert_int_equal(drain(t), 1);
	assert_int_equal(t->pkts[0].h.flags, UVS_SHUTDOWN_BOTH);
	clear_pkts(t);
	app_close(t, fs);
	assert_int_equal(drain(t), 0);
	assert_int_equal(fs->c->state, UVS_ST_CLOSING);
	uvs_engine_tick(t->eng, t->now + UVS_CLOSE_TIMEOUT_NS);
	assert_int_equal(drain(t), 1);
	assert_int_equal(t->pkts[0].h.op, UVS_OP_RST);
	assert_true(fs->freed);
}

static void
est_rst_cancels_owed_shutdown(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, GUEST_BUF);
	struct fsock *fs;
	static uint8_t data[200];

	t->gbuf = 100;
	fs = guest_connect(t, l, GPORT);
	app_write(fs, data, sizeof(data), false);
	/* SHUTDOWN(SEND) waits behind 100 bytes the guest has no room for */
	assert_int_equal(uvs_conn_shutdown(fs->c, UVS_SHUTDOWN_SEND), 0);
	assert_int_equal(drain(t), 1);
	assert_int_equal(t->pkts[0].h.op, UVS_OP_RW);
	clear_pkts(t);
	/* the guest resets; its RST header happens to carry fresh credit (Linux fills it) */
	t->gfwd = 100;
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_RST, GPORT, LPORT, 0);
	assert_int_equal(count_ev(t, fs, UVS_EV_RESET), 1);
	/* the connection is over on the wire: nothing more may be sent for it */
	assert_int_equal(drain(t), 0);
	uvs_conn_tx_wake(fs->c);
	assert_int_equal(drain(t), 0);
}

/* ---------------------------------------------------------------------------------------- */
/* peer detach (§1.4: the guest went away) */

static void
detach_resets_and_frees_everything(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 8, GUEST_BUF);
	struct fsock *est = guest_connect(t, l, GPORT);
	struct fsock *reset = guest_connect(t, l, GPORT + 1);
	struct fsock *closing = host_connect(t, UVS_TYPE_STREAM, GLPORT);
	struct fsock *connecting = app_socket(t, UVS_TYPE_STREAM);
	struct fsock *unaccepted, *unsent;
	const struct evrec *e;
	unsigned int resets;

	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_RST, GPORT + 1, LPORT, 0);
	assert_int_equal(count_ev(t, reset, UVS_EV_RESET), 1);
	app_close(t, closing);
	assert_int_equal(drain(t), 1); /* its SHUTDOWN */
	assert_int_equal(uvs_conn_connect(connecting->c, t->p, GLPORT + 1, t->now), 0);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_REQUEST, GPORT + 2, LPORT, 0);
	unaccepted = t->ev[t->nev - 1].fs;
	assert_int_equal(t->ev[t->nev - 1].ev, UVS_EV_ACCEPTABLE);
	/* things still owed on the wire when the guest disappears */
	app_write(est, "pending", 7, false);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_REQUEST, GPORT + 9, 999, 0);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_REQUEST, GPORT + 3, LPORT, 0);
	unsent = t->ev[t->nev - 1].fs;
	assert_true(uvs_peer_tx_pending(t->p));
	resets = count_ev_all(t, UVS_EV_RESET);

	uvs_peer_detach(t->eng, t->p);

	assert_int_equal(count_ev(t, est, UVS_EV_RESET), 1);
	assert_int_equal(est->c->state, UVS_ST_DONE);
	assert_null(est->c->peer);
	/* the peer gone, not its RST: ECONNRESET pending, as Linux's vhost sets sk_err */
	assert_int_equal(est->c->err, -ECONNRESET);
	assert_int_equal(reset->c->err, 0); /* reset by the peer's RST before: no error */
	e = find_ev(t, connecting, UVS_EV_CONNECT_FAILED);
	assert_non_null(e);
	assert_int_equal(e->err, -ECONNRESET);
	assert_int_equal(connecting->c->state, UVS_ST_CLOSE);
	assert_true(unaccepted->freed);
	assert_true(unsent->freed);
	assert_true(closing->freed);
	assert_false(reset->freed);
	/* only the established one got a new RESET */
	assert_int_equal(count_ev_all(t, UVS_EV_RESET), resets + 1);
	assert_int_equal(count_ev(t, unaccepted, UVS_EV_RESET), 0);
	/* nothing left on the peer */
	assert_int_equal(t->p->nconns, 0);
	assert_true(LIST_EMPTY(&t->p->conns));
	assert_true(TAILQ_EMPTY(&t->p->txq));
	assert_int_equal(t->p->orphan_count, 0);
	assert_false(uvs_peer_tx_pending(t->p));
	assert_int_equal(l->c->nqueued, 0);
	/* the application closes what it holds: freed at once, nothing on the wire */
	app_close(t, est);
	assert_true(est->freed);
	app_close(t, connecting);
	assert_true(connecting->freed);
	app_close(t, reset);
	assert_true(reset->freed);
	uvs_engine_tick(t->eng, t->now + 100 * SEC);
	/* the listener survives; the guest comes back */
	clear_pkts(t);
	uvs_peer_init(t->p, GUEST_CID, true, NULL);
	g_ctl(t, UVS_TYPE_STREAM, UVS_OP_REQUEST, GPORT, LPORT, 0);
	assert_int_equal(drain(t), 1);
	assert_int_equal(t->pkts[0].h.op, UVS_OP_RESPONSE);
}

/* ---------------------------------------------------------------------------------------- */
/* counters wrap at 2^32 (§4.1, §9.10) */

static void
wrap_tx_counters_keep_flowing(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, GUEST_BUF);
	const uint32_t w = 0xfffffc00u;
	struct fsock *fs;
	static uint8_t data[20000], got[20000];
	uint32_t sent = 0;

	t->gbuf = 4096;
	t->gfwd = w;
	fs = guest_connect(t, l, GPORT);
	fs->c->cr.tx_cnt = w;
	fs->c->cr.peer_fwd_cnt = w;
	fill_pattern(data, sizeof(data), 24);
	app_write(fs, data, sizeof(data), false);
	for (unsigned int round = 0; round < 10 && sent < sizeof(data); round++) {
		uint32_t n;

		clear_pkts(t);
		drain(t);
		n = rw_bytes(t, 0, got + sent);
		assert_true(n > 0);
		assert_true(n <= 4096);
		sent += n;
		assert_int_equal(fs->c->cr.tx_cnt, (uint32_t)(w + sent));
		assert_int_equal(uvs_credit_peer_free(&fs->c->cr), 4096 - n);
		t->gfwd = w + sent; /* the guest read everything */
		g_ctl(t, UVS_TYPE_STREAM, UVS_OP_CREDIT_UPDATE, GPORT, LPORT, 0);
	}
	assert_int_equal(sent, sizeof(data));
	assert_memory_equal(got, data, sizeof(data));
	assert_true(fs->c->cr.tx_cnt < w); /* it did wrap */
}

static void
wrap_rx_counters_keep_flowing(void **state)
{
	struct tctx *t = *state;
	struct fsock *l = listen_on(t, UVS_TYPE_STREAM, LPORT, 4, 4096);
	const uint32_t w = 0xffffff00u;
	struct fsock *fs = guest_connect(t, l, GPORT);
	static uint8_t data[8192];

	fs->c->cr.rx_cnt = fs->c->cr.fwd_cnt = fs->c->cr.last_fwd_cnt = w;
	fs->consumed = w;
	fill_pattern(data, sizeof(data), 25);
	g_rw(t, UVS_TYPE_STREAM, GPORT, LPORT, 0, data, 1000);
	g_rw(t, UVS_TYPE_STREAM, GPORT, LPORT, 0, data + 1000, 1000);
	g_rw(t, UVS_TYPE_STREAM, GPORT, LPORT, 0, data + 2000, 2096);
	assert_int_equal(fs->c->state, UVS_ST_ESTABLISHED);
	assert_int_equal(fs->rx_len, 4096);
	assert_int_equal(fs->c->cr.rx_cnt, (uint32_t)(w + 4096));
	app_consume(fs, 4096);
	assert_int_equal(drain(t), 1);
	assert_ctl(&t->pkts[0], UVS_OP_CREDIT_UPDATE, UVS_TYPE_STREAM, LPORT, GPORT, 0, 4096,
			(uint32_t)(w + 4096));
	g_rw(t, UVS_TYPE_STREAM, GPORT, LPORT, 0, data + 4096, 4096);
	assert_int_equal(fs->c->state, UVS_ST_ESTABLISHED);
	assert_int_equal(fs->rx_len, 8192);
	assert_memory_equal(fs->rx, data, 8192);
	/* and the credit limit still holds after the wrap */
	g_rw(t, UVS_TYPE_STREAM, GPORT, LPORT, 0, data, 1);
	assert_int_equal(t->p->drops[UVS_DROP_CREDIT_OVERRUN], 1);
	assert_int_equal(count_ev(t, fs, UVS_EV_RESET), 1);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(noconn_ops_answered_with_one_rst),
		T(noconn_rst_is_not_answered),
		T(unknown_type_answered_with_rst),
		T(any_src_peer_talks_to_every_cid),
		T(orphan_rst_queue_is_bounded),
		T(kick_rearmed_after_queued_work_vanishes),
		T(abort_from_tx_peek_sends_rst),
		T(abort_from_tx_peek_on_closed_conn),
		T(each_refused_rst_counted_once),
		T(tx_room_below_header_sends_nothing_and_keeps_work),
		T(listen_request_gets_response_and_child),
		T(listen_seqpacket_request_gets_response),
		T(listen_other_ops_answered_with_rst),
		T(listen_backlog_full_gets_rst),
		T(listen_type_mismatch_gets_rst),
		T(listen_seqpacket_without_feature_gets_rst),
		T(bound_not_listening_gets_rst),
		T(listen_repeated_request_goes_to_the_child),
		T(listen_child_refused_by_socket_layer_gets_rst),
		T(listen_close_resets_queued_children),
		T(listen_unaccepted_child_overrun_is_reset),
		T(overrun_costs_the_guest_its_next_requests),
		T(socket_api_errors),
		T(connect_sends_request),
		T(connect_explicit_bind_port_used),
		T(connect_response_establishes),
		T(connect_rst_fails_econnreset),
		T(connect_other_op_fails_eproto_with_rst),
		T(connect_invalid_op_ignored),
		T(connect_type_mismatch_reply_leaves_it_connecting),
		T(connect_timeout_fails_etimedout),
		T(connect_again_while_connecting_ealready),
		T(connect_seqpacket_without_feature_refused),
		T(connect_retry_after_failure),
		T(connect_close_while_connecting_sends_rst),
		T(est_rw_delivered_intact),
		T(est_seqpacket_rw_flags_delivered),
		T(est_rw_zero_length_ignored),
		T(est_rw_beyond_credit_resets),
		T(est_rw_within_advertised_credit_accepted),
		T(est_rx_nobufs_resets),
		T(est_credit_request_answered),
		T(est_credit_update_wakes_writer),
		T(est_peer_shutdown_send_keeps_sending),
		T(est_peer_shutdown_rcv_stops_sending),
		T(est_shutdown_both_idle_sends_rst_and_frees_tuple),
		T(est_shutdown_both_unread_rst_only_at_close),
		T(est_rst_from_peer),
		T(est_unknown_ops_ignored),
		T(est_type_mismatch_gets_rst_connection_untouched),
		T(est_host_connected_handles_ops_too),
		T(peer_conn_limit_resets_request),
		T(peers_are_kept_apart),
		T(kick_once_per_batch),
		T(tx_never_exceeds_peer_credit),
		T(tx_at_most_64k_per_packet),
		T(tx_fits_the_receive_buffer),
		T(tx_header_only_buffer_never_gets_empty_rw),
		T(tx_seqpacket_split_marks_only_last_piece),
		T(tx_seqpacket_split_by_credit),
		T(tx_stream_flags_are_zero),
		T(tx_round_robin_between_connections),
		T(tx_header_carries_current_fwd_cnt),
		T(tx_credit_update_when_peer_view_low),
		T(tx_credit_update_not_due_then_due_when_drained),
		T(set_buf_size_sends_credit_update),
		T(tx_two_segment_rx_buffer),
		T(rx_payload_over_several_segments),
		T(shutdown_send_follows_queued_data),
		T(shutdown_rcv_sent_at_once),
		T(shutdown_unconnected_enotconn),
		T(close_sends_shutdown_after_data_and_waits_for_rst),
		T(close_holds_shutdown_until_data_drained),
		T(close_timeout_sends_rst_and_frees),
		T(credit_stalls_counted_once_per_stall),
		T(closing_ignores_all_but_rst_and_shutdown),
		T(closing_simultaneous_close_answers_rst),
		T(closing_simultaneous_close_unread_waits_for_timeout),
		T(close_after_peer_shutdown_send_sends_shutdown),
		T(close_after_full_local_shutdown_sends_no_second_shutdown),
		T(est_rst_cancels_owed_shutdown),
		T(detach_resets_and_frees_everything),
		T(wrap_tx_counters_keep_flowing),
		T(wrap_rx_counters_keep_flowing),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
