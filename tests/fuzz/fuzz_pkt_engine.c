/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fuzz target: the packet header check (uvs_pkt_check) and the protocol engine's per-state
 * dispatch (uvs_engine_rx), transmit scheduling (uvs_engine_tx), timers and socket-layer
 * calls, driven by a hostile guest and an application whose actions the input chooses.
 *
 * The engine (local CID 2) has two peers, CID 3 (SEQPACKET negotiated) and CID 4 (not), and
 * starts with a STREAM listener on port 1234 and a SEQPACKET one on 1235. The input is a
 * sequence of actions, each an opcode byte and its arguments:
 *  - a guest packet, compact (fields picked from the live connections, so that the fuzzer
 *    reaches every state quickly) or raw (44 header bytes as they come), put in a buffer of
 *    1-4 segments and passed through uvs_pkt_check() first, as the daemon does;
 *  - draining a peer's transmit side into receive buffers of chosen sizes and shapes;
 *  - application calls: connect, bind+listen, accept, write, consume, shutdown, close,
 *    buffer size, abort; socket-layer quirks (refuse payload, abort from tx_peek, stray
 *    flags on STREAM peeks, refuse children); time passing (timers); a peer detaching.
 * The fake socket layer, in the style of tests/unit/test_conn.c, keeps no payload: it counts
 * bytes, and writes and checks a per-socket pattern, so that loss, duplication and misplaced
 * payload are seen.
 *
 * Invariants checked after every action or inside the callbacks: every packet sent passes
 * the receiver's uvs_pkt_check() and is well formed (op, len, flags, type); RW payload never
 * exceeds the peer's credit or 64 KiB and matches the queued bytes in order, with SEQPACKET
 * EOM exactly at message ends; payload is delivered only within the credit we granted and
 * counted once; each peer's connection count matches its list and stays under the limit, its
 * reply ring under its bound, and a peer with something to send has been kicked; a closed
 * socket gets no event but UVS_EV_FREE, and nothing after it. At the end the application
 * closes everything, both peers detach, and every socket must have been freed (ASan's leak
 * check sees the engine's own memory). The engine itself serves every input of a run: each
 * input leaves it empty, and a fresh one would cost more than most inputs.
 */
#include <errno.h>
#include <sys/uio.h>

#include "fuzz.h"
#include "uvs_conn.h"
#include "uvs_pkt.h"
#include "uvs_virtq.h"

#define HOST_CID UVS_CID_HOST
#define NPEERS 2
/* Ports of the listeners made at start, and the guest's usual source ports. */
#define LPORT 1234u
#define GPORT 5000u
/* Sockets one input may create (children included): plenty for every state at once, few
 * enough that the per-action checks stay cheap. Beyond it, children are refused. */
#define MAX_SOCKS 128u
/* SEQPACKET messages queued per socket by the fake application. */
#define MAX_MSGS 64u
/* Packets one drain action collects at most (data can fill many more 45-byte buffers). */
#define DRAIN_LIMIT 4096u
/* Control packets (all but RW) the engine can have owed at once: its reply ring, and a few per
 * connection (a REQUEST or RESPONSE, SHUTDOWN, CREDIT_UPDATE, RST). More in one drain would
 * mean it keeps making control packets out of nothing. */
#define CTL_PKTS_MAX (UVS_PEER_ORPHAN_RST_MAX + 8u * MAX_SOCKS)
/* A guest rx buffer of a Debian 12 guest, and one that fits any packet. */
#define ROOM_4K (UVS_HDR_SIZE + 4096u)
#define ROOM_BIG (UVS_HDR_SIZE + UVS_MAX_PKT_PAYLOAD)
#define GUEST_BUF (256u * 1024u)
/* Largest guest packet or receive buffer an action makes: 64 KiB + 1 and slack, or 64 KiB. */
#define ARENA_SIZE (UVS_HDR_SIZE + UVS_MAX_PKT_PAYLOAD + 256u)
#define SEC 1000000000ull
#define T0 (1000ull * SEC)

enum action {
	A_PKT,
	A_RAW,
	A_DRAIN,
	A_CLOSE,
	A_SHUTDOWN,
	A_CONSUME,
	A_WRITE,
	A_ACCEPT,
	A_CONNECT,
	A_LISTEN,
	A_BUFSIZE,
	A_QUIRK,
	A_ABORT,
	A_TICK,
	A_DETACH,
	A_MAX,
};

struct ctx;

/* The fake socket layer's object for one connection. */
struct fsock {
	struct ctx *t;
	struct uvs_conn *c;
	unsigned int id;
	bool app_owned; /* created or accepted: the application must close it */
	bool closed;
	bool freed;
	unsigned int pidx; /* peer it was connected to, or through which it was accepted */
	uint32_t via_cid;  /* connected through pidx to another CID (uvs_conn_connect_via) */
	uint32_t lport, pport;
	uint16_t type;
	/* receive side: counts only */
	uint64_t rx_total, consumed;
	bool rx_refuse;
	/* send side: bytes queued (virtual) and SEQPACKET message ends */
	uint64_t tx_len, tx_off;
	uint64_t msg_end[MAX_MSGS];
	uint32_t msg_flags[MAX_MSGS];
	unsigned int msg_head, nmsg;
	uint32_t last_peek;
	uint32_t stream_peek_flags;
	bool abort_on_peek;
	bool refuse_children; /* listener: the socket layer cannot take its children */
};

struct ctx {
	struct uvs_engine *eng;
	struct uvs_peer peers[NPEERS];
	struct fsock *socks[MAX_SOCKS];
	unsigned int nsocks;
	uint64_t now;
	/* what the last tx_copy did, checked against the packet it went into */
	struct fsock *copy_fs;
	uint64_t copy_off;
	uint32_t copy_len;
	bool copy_eom;
};

static const uint32_t peer_cids[NPEERS] = { 3, 4 };
static const bool peer_seqpacket[NPEERS] = { true, false };

/* Outgoing payload is a pattern of period PATTERN_PERIOD (a prime, so that bytes shifted by
 * any power of two are seen), shifted per socket; copied and compared a run at a time. */
#define PATTERN_PERIOD 251u
static uint8_t pattern_tab[2 * PATTERN_PERIOD];

static void
pattern_init(void)
{
	for (uint32_t i = 0; i < 2 * PATTERN_PERIOD; i++)
		pattern_tab[i] = (uint8_t)((i % PATTERN_PERIOD) * 131u + 17u);
}

/* Up to *len (at most PATTERN_PERIOD) bytes of fs's outgoing data at stream offset off. */
static const uint8_t *
pattern(const struct fsock *fs, uint64_t off, uint32_t *len)
{
	if (*len > PATTERN_PERIOD)
		*len = PATTERN_PERIOD;
	return &pattern_tab[(off + fs->id * 7u) % PATTERN_PERIOD];
}

static struct fsock *
fsock_new(struct ctx *t, struct uvs_conn *c, uint16_t type, unsigned int pidx, bool app_owned)
{
	struct fsock *fs;

	if (t->nsocks == MAX_SOCKS)
		return NULL;
	fs = calloc(1, sizeof(*fs));
	FZ_CHECK(fs != NULL);
	fs->t = t;
	fs->c = c;
	fs->id = t->nsocks;
	fs->type = type;
	fs->pidx = pidx;
	fs->app_owned = app_owned;
	fs->lport = fs->pport = UVS_PORT_ANY;
	t->socks[t->nsocks++] = fs;
	return fs;
}

static struct fsock *
sock_of(struct uvs_conn *c)
{
	struct fsock *fs = c->sock;

	FZ_CHECK(fs != NULL);
	FZ_CHECK(!fs->freed && !fs->closed);
	FZ_CHECK(fs->c == c);
	return fs;
}

static unsigned int
peer_index(struct ctx *t, const struct uvs_peer *p)
{
	unsigned int i;

	for (i = 0; i < NPEERS; i++)
		if (p == &t->peers[i])
			break;
	FZ_CHECK(i < NPEERS); /* the engine may only name the peers it was given */
	return i;
}

/* --- engine callbacks --- */

static int
f_rx_data(void *ctx, struct uvs_conn *c, const struct iovec *iov, unsigned int n, uint32_t off,
		uint32_t len, uint32_t flags)
{
	struct fsock *fs = c->sock;
	uint8_t buf[256];

	(void)ctx;
	/* Payload of a connection the socket layer no longer holds may not be delivered. */
	FZ_CHECK(fs != NULL);
	fs = sock_of(c);
	FZ_CHECK(len > 0 && len <= UVS_MAX_PKT_PAYLOAD);
	if (c->type == UVS_TYPE_STREAM)
		FZ_CHECK(flags == 0);
	else
		FZ_CHECK((flags & ~(UVS_SEQ_EOM | UVS_SEQ_EOR)) == 0);
	/* accepted within the credit we granted, and counted exactly once */
	FZ_CHECK((uint32_t)(c->cr.rx_cnt - c->cr.last_fwd_cnt) <= c->cr.buf_alloc);
	FZ_CHECK((uint32_t)(fs->rx_total + len) == c->cr.rx_cnt);
	/* the payload is there: read its first and last bytes (ASan checks the segments) */
	FZ_CHECK(uvs_iov_to_buf(iov, n, off, buf, len < sizeof(buf) ? len : sizeof(buf)) ==
			(len < sizeof(buf) ? len : sizeof(buf)));
	FZ_CHECK(uvs_iov_to_buf(iov, n, off + len - 1, buf, 1) == 1);
	if (fs->rx_refuse)
		return -ENOBUFS;
	fs->rx_total += len;
	return 0;
}

static uint32_t
f_rx_consumed(void *ctx, struct uvs_conn *c)
{
	struct fsock *fs = c->sock;

	(void)ctx;
	FZ_CHECK(fs != NULL && !fs->freed && fs->c == c);
	return (uint32_t)fs->consumed;
}

static uint32_t
f_tx_peek(void *ctx, struct uvs_conn *c, uint32_t max, uint32_t *flags)
{
	struct fsock *fs = c->sock;
	uint64_t end;
	uint32_t n;

	(void)ctx;
	FZ_CHECK(fs != NULL && !fs->freed && fs->c == c);
	FZ_CHECK(max > 0);
	*flags = 0;
	if (fs->abort_on_peek) {
		uvs_conn_abort(c); /* what uvs_srv does when it finds a ring corrupt */
		return 0;
	}
	end = fs->tx_len;
	if (c->type == UVS_TYPE_SEQPACKET && fs->nmsg > 0)
		end = fs->msg_end[fs->msg_head];
	n = end - fs->tx_off > max ? max : (uint32_t)(end - fs->tx_off);
	if (c->type == UVS_TYPE_SEQPACKET) {
		if (n > 0 && fs->tx_off + n == end)
			*flags = fs->msg_flags[fs->msg_head];
	} else {
		*flags = fs->stream_peek_flags; /* the engine must not put these on the wire */
	}
	fs->last_peek = n;
	return n;
}

static void
f_tx_copy(void *ctx, struct uvs_conn *c, const struct iovec *iov, unsigned int n, uint32_t off,
		uint32_t len)
{
	struct ctx *t = ctx;
	struct fsock *fs = c->sock;
	uint32_t done = 0;

	FZ_CHECK(fs != NULL && !fs->freed && fs->c == c);
	FZ_CHECK(len > 0 && len <= fs->last_peek && len <= UVS_MAX_PKT_PAYLOAD);
	/* never beyond the credit the peer granted */
	FZ_CHECK(len <= uvs_credit_peer_free(&c->cr));
	FZ_CHECK(t->copy_len == 0); /* one copy per packet */
	t->copy_fs = fs;
	t->copy_off = fs->tx_off;
	t->copy_len = len;
	t->copy_eom = false;
	while (done < len) {
		uint32_t k = len - done;
		const uint8_t *src = pattern(fs, fs->tx_off + done, &k);

		FZ_CHECK(uvs_iov_from_buf(iov, n, off + done, src, k) == k);
		done += k;
	}
	fs->tx_off += len;
	fs->last_peek = 0;
	if (c->type == UVS_TYPE_SEQPACKET && fs->nmsg > 0) {
		FZ_CHECK(fs->tx_off <= fs->msg_end[fs->msg_head]);
		if (fs->tx_off == fs->msg_end[fs->msg_head]) {
			fs->msg_head = (fs->msg_head + 1) % MAX_MSGS;
			fs->nmsg--;
			t->copy_eom = true;
		}
	}
}

static void
f_event(void *ctx, struct uvs_conn *c, enum uvs_event ev)
{
	struct ctx *t = ctx;
	struct fsock *fs = c->sock;

	if (ev == UVS_EV_ACCEPTABLE) {
		struct fsock *ls;

		FZ_CHECK(fs == NULL);
		FZ_CHECK(c->listener != NULL && c->peer != NULL);
		ls = c->listener->sock;
		FZ_CHECK(ls != NULL && !ls->freed);
		/* Linux's backlog rule: a child is queued only while at most backlog wait (the
		 * count may exceed it later: listen() again may lower the backlog) */
		FZ_CHECK(c->listener->nqueued <= c->listener->backlog + 1);
		if (!ls->refuse_children) {
			fs = fsock_new(t, c, c->type, peer_index(t, c->peer), false);
			c->sock = fs;
		}
		return;
	}
	if (fs == NULL)
		return; /* a refused child going away */
	FZ_CHECK(!fs->freed && fs->c == c);
	if (ev == UVS_EV_FREE) {
		fs->freed = true;
		fs->c = NULL;
		return;
	}
	/* A socket the application closed hears nothing but its end. */
	FZ_CHECK(!fs->closed);
	switch (ev) {
	case UVS_EV_CONNECTED:
		FZ_CHECK(c->state == UVS_ST_ESTABLISHED);
		break;
	case UVS_EV_CONNECT_FAILED:
		FZ_CHECK(c->state == UVS_ST_CLOSE && c->err < 0);
		break;
	default:
		break;
	}
}

static void
f_kick(void *ctx, struct uvs_peer *p)
{
	(void)peer_index(ctx, p);
}

static const struct uvs_engine_ops fake_ops = {
	.rx_data = f_rx_data,
	.rx_consumed = f_rx_consumed,
	.tx_peek = f_tx_peek,
	.tx_copy = f_tx_copy,
	.event = f_event,
	.kick = f_kick,
};

/* --- invariants --- */

static void
check_all(struct ctx *t)
{
	for (unsigned int i = 0; i < NPEERS; i++) {
		struct uvs_peer *p = &t->peers[i];
		const struct uvs_conn *c;
		uint32_t n = 0;

		LIST_FOREACH(c, &p->conns, peer_link) {
			FZ_CHECK(c->peer == p);
			n++;
		}
		FZ_CHECK(n == p->nconns && n <= UVS_PEER_MAX_CONNS);
		FZ_CHECK(p->orphan_count <= UVS_PEER_ORPHAN_RST_MAX);
		/* Work the transport was not told about would never be sent. */
		if (p->orphan_count > 0 || !TAILQ_EMPTY(&p->txq))
			FZ_CHECK(p->kicked);
	}
	for (unsigned int i = 0; i < t->nsocks; i++) {
		struct fsock *fs = t->socks[i];
		const struct uvs_conn *c = fs->c;

		if (fs->freed)
			continue;
		FZ_CHECK(c != NULL && c->sock == fs);
		FZ_CHECK(c->state <= UVS_ST_DONE);
		FZ_CHECK(fs->consumed <= fs->rx_total);
		fs->lport = c->local_port;
		fs->pport = c->peer_port;
	}
}

/* Whether the application connected through p to cid (the packets then go to cid). */
static bool
via_cid_known(const struct ctx *t, const struct uvs_peer *p, uint64_t cid)
{
	for (unsigned int i = 0; i < t->nsocks; i++)
		if (&t->peers[t->socks[i]->pidx] == p && t->socks[i]->via_cid == cid)
			return true;
	return false;
}

/* Invariants of a packet the engine put in a receive buffer of `room` bytes. */
static void
check_sent(struct ctx *t, const struct uvs_peer *p, const struct iovec *iov, unsigned int n,
		uint32_t ret, uint32_t room)
{
	struct uvs_hdr h;
	uint8_t buf[256];

	FZ_CHECK(ret >= UVS_HDR_SIZE && ret <= room);
	FZ_CHECK(uvs_iov_to_buf(iov, n, 0, &h, sizeof(h)) == sizeof(h));
	FZ_CHECK(ret == UVS_HDR_SIZE + h.len);
	FZ_CHECK(h.src_cid == HOST_CID);
	FZ_CHECK(h.dst_cid == p->cid || via_cid_known(t, p, h.dst_cid));
	/* what the other end's device checks */
	FZ_CHECK(uvs_pkt_check(&h, h.len, HOST_CID, h.dst_cid) == UVS_PKT_OK);
	FZ_CHECK(h.op >= UVS_OP_REQUEST && h.op <= UVS_OP_CREDIT_REQUEST);
	if (h.op == UVS_OP_RW) {
		struct fsock *fs = t->copy_fs;
		uint32_t done = 0;

		FZ_CHECK(h.len > 0 && h.len == t->copy_len);
		if (h.type == UVS_TYPE_STREAM) {
			FZ_CHECK(h.flags == 0);
		} else {
			FZ_CHECK((h.flags & ~(UVS_SEQ_EOM | UVS_SEQ_EOR)) == 0);
			FZ_CHECK(!(h.flags & UVS_SEQ_EOR) || (h.flags & UVS_SEQ_EOM));
			/* message boundaries kept: EOM exactly on a message's last byte */
			FZ_CHECK(!!(h.flags & UVS_SEQ_EOM) == t->copy_eom);
		}
		/* the queued bytes, in order, right after the header */
		while (done < h.len) {
			uint32_t k = h.len - done;
			const uint8_t *want = pattern(fs, t->copy_off + done, &k);

			FZ_CHECK(uvs_iov_to_buf(iov, n, UVS_HDR_SIZE + done, buf, k) == k);
			FZ_CHECK(memcmp(buf, want, k) == 0);
			done += k;
		}
	} else {
		FZ_CHECK(h.len == 0 && t->copy_len == 0);
	}
	if (h.op == UVS_OP_SHUTDOWN)
		FZ_CHECK(h.flags != 0 && (h.flags & ~UVS_SHUTDOWN_BOTH) == 0);
	else if (h.op != UVS_OP_RW)
		FZ_CHECK(h.flags == 0);
	if (h.op != UVS_OP_RST) {
		FZ_CHECK(h.type == UVS_TYPE_STREAM || h.type == UVS_TYPE_SEQPACKET);
		FZ_CHECK(h.type == UVS_TYPE_STREAM || p->seqpacket);
	}
}

/* --- input decoding --- */

static struct fsock *
pick(struct ctx *t, struct fz *f)
{
	uint8_t b = fz_u8(f);

	return t->nsocks == 0 ? NULL : t->socks[b % t->nsocks];
}

/* A socket the application may operate: it holds it and has not closed it. */
static struct fsock *
pick_open(struct ctx *t, struct fz *f)
{
	struct fsock *fs = pick(t, f);

	return fs != NULL && fs->app_owned && !fs->closed && !fs->freed ? fs : NULL;
}

/* A port: of a known socket (ours, or the guest's end of it), a listener's, a guest
 * source port, or anything. */
static uint32_t
port_sel(struct ctx *t, struct fz *f, bool local)
{
	uint8_t b = fz_u8(f);
	uint32_t k = b >> 2;

	switch (b & 3) {
	case 0:
		if (t->nsocks > 0)
			return local ? t->socks[k % t->nsocks]->lport
				     : t->socks[k % t->nsocks]->pport;
		return LPORT;
	case 1:
		return LPORT + k % 3;
	case 2:
		return GPORT + k % 8;
	default:
		return fz_u32(f);
	}
}

/* Put the header and payload_bytes bytes in a segmented buffer and feed it to the engine if
 * it passes the header check, as the daemon's poll_tx() does. */
static void
guest_send(struct ctx *t, struct fz *f, unsigned int pidx, const struct uvs_hdr *h,
		uint32_t payload_bytes)
{
	static _Alignas(8) uint8_t arena[ARENA_SIZE];
	struct uvs_peer *p = &t->peers[pidx];
	uint32_t total = UVS_HDR_SIZE + payload_bytes;
	uint8_t *buf = fz_arena(arena, sizeof(arena), total);
	struct iovec iov[FZ_MAX_SEGS];
	struct fz_shape shape;
	struct uvs_hdr hdr;
	unsigned int n;

	/* the payload's bytes do not matter; its extent does */
	memcpy(buf, h, UVS_HDR_SIZE);
	fz_shape(f, &shape);
	n = fz_split(&shape, buf, total, iov);
	/* the header is copied out of guest memory once, then checked */
	FZ_CHECK(uvs_iov_to_buf(iov, n, 0, &hdr, sizeof(hdr)) == sizeof(hdr));
	if (uvs_pkt_check(&hdr, payload_bytes, p->cid, HOST_CID) == UVS_PKT_OK)
		uvs_engine_rx(t->eng, p, &hdr, iov, n, UVS_HDR_SIZE);
	/* the engine must keep no pointer into the guest's buffer: ASan sees a later use */
	fz_arena(arena, sizeof(arena), 0);
}

/* A guest packet from a few bytes: addressing, type, op, credit fields, len, buffer. */
static void
act_pkt(struct ctx *t, struct fz *f)
{
	uint8_t mode = fz_u8(f), tb = fz_u8(f), extra;
	struct fsock *k = t->nsocks > 0 ? t->socks[(mode >> 3) % t->nsocks] : NULL;
	unsigned int pidx = (mode >> 2) & 1;
	uint32_t usual_fwd = 0, payload;
	struct uvs_hdr h;

	memset(&h, 0, sizeof(h));
	if ((mode & 3) == 0 && k != NULL) {
		/* to one of our sockets, from the guest's end of it */
		pidx = k->pidx;
		h.dst_port = k->lport;
		h.src_port = k->pport != UVS_PORT_ANY ? k->pport : GPORT + (mode >> 5);
		if (!k->freed && k->c != NULL)
			usual_fwd = k->c->cr.tx_cnt; /* the guest consumed all we sent */
	} else if ((mode & 3) != 3) {
		h.dst_port = port_sel(t, f, true);
		h.src_port = port_sel(t, f, false);
	} else {
		h.dst_port = fz_u32(f);
		h.src_port = fz_u32(f);
	}
	h.src_cid = peer_cids[pidx];
	h.dst_cid = HOST_CID;
	switch (tb & 3) {
	case 0:
		h.type = k != NULL ? k->type : UVS_TYPE_STREAM;
		break;
	case 3:
		h.type = fz_u16(f);
		break;
	default:
		h.type = tb & 3;
		break;
	}
	h.op = (tb >> 2) % (UVS_OP_MAX + 2); /* every op and one unknown */
	h.flags = tb >= 0xf0 ? fz_u32(f) : fz_u8(f) & 7u;
	h.buf_alloc = fz_u32_near(f, GUEST_BUF);
	h.fwd_cnt = fz_u32_near(f, usual_fwd);
	if (h.op == UVS_OP_RW) {
		uint16_t l = fz_u16(f);

		/* 0xffff: at and just past the 64 KiB limit */
		h.len = l == 0xffff ? UVS_MAX_PKT_PAYLOAD + (fz_u8(f) & 1) : l;
	}
	/* the chain may hold more than len (a larger buffer) or less (a lying guest) */
	extra = fz_u8(f);
	payload = h.len;
	if ((extra & 3) == 1)
		payload += extra >> 2;
	else if ((extra & 3) == 2)
		payload -= (extra >> 2) < payload ? (extra >> 2) : payload;
	guest_send(t, f, pidx, &h, payload);
}

/* A guest packet whose 44 header bytes come straight from the input. */
static void
act_raw(struct ctx *t, struct fz *f)
{
	unsigned int pidx = fz_u8(f) & 1;
	uint32_t payload = fz_u16(f);
	struct uvs_hdr h;

	fz_bytes(f, &h, sizeof(h));
	guest_send(t, f, pidx, &h, payload);
}

static void
act_drain(struct ctx *t, struct fz *f)
{
	uint8_t b = fz_u8(f), cnt = fz_u8(f);
	struct uvs_peer *p = &t->peers[b & 1];
	struct fz_shape shape;
	uint32_t room;
	unsigned int limit = cnt == 0 ? DRAIN_LIMIT : cnt, ctl_pkts = 0;

	switch ((b >> 1) & 3) {
	case 0:
		room = ROOM_4K;
		break;
	case 1:
		room = ROOM_BIG;
		break;
	case 2:
		room = fz_u16(f); /* may be below a header */
		break;
	default:
		room = UVS_HDR_SIZE + (b >> 3);
		break;
	}
	fz_shape(f, &shape); /* every receive buffer of this drain is cut the same way */
	for (unsigned int i = 0; i < limit; i++) {
		static _Alignas(8) uint8_t arena[ARENA_SIZE];
		uint8_t *buf = fz_arena(arena, sizeof(arena), room);
		struct iovec iov[FZ_MAX_SEGS];
		unsigned int n = fz_split(&shape, buf, room, iov);
		uint32_t ret;

		t->copy_len = 0;
		ret = uvs_engine_tx(t->eng, p, iov, n, room);
		if (ret > 0)
			check_sent(t, p, iov, n, ret, room);
		else
			FZ_CHECK(t->copy_len == 0);
		ctl_pkts += ret > 0 && t->copy_len == 0;
		fz_arena(arena, sizeof(arena), 0);
		t->copy_len = 0;
		if (ret == 0) {
			if (room >= UVS_HDR_SIZE)
				FZ_CHECK(!uvs_peer_tx_pending(p));
			break;
		}
		check_all(t);
		FZ_CHECK(ctl_pkts <= CTL_PKTS_MAX); /* the engine runs dry */
	}
}

static void
app_close(struct ctx *t, struct fsock *fs)
{
	fs->closed = true;
	uvs_conn_close(fs->c, t->now);
}

static void
act_write(struct fsock *fs, struct fz *f)
{
	uint16_t len = fz_u16(f);
	bool eor = len & 1;
	unsigned int slot;

	if (len == 0 || fs->nmsg == MAX_MSGS)
		return;
	fs->tx_len += len;
	if (fs->type == UVS_TYPE_STREAM) {
		uvs_conn_tx_wake(fs->c);
		return;
	}
	slot = (fs->msg_head + fs->nmsg) % MAX_MSGS;
	fs->msg_end[slot] = fs->tx_len;
	fs->msg_flags[slot] = UVS_SEQ_EOM | (eor ? UVS_SEQ_EOR : 0);
	fs->nmsg++;
	uvs_conn_tx_wake(fs->c);
}

static struct fsock *
app_socket(struct ctx *t, uint16_t type, unsigned int pidx)
{
	struct fsock *fs = fsock_new(t, NULL, type, pidx, true);

	if (fs == NULL)
		return NULL;
	fs->c = uvs_conn_create(t->eng, type, fs);
	FZ_CHECK(fs->c != NULL);
	return fs;
}

static void
act_connect(struct ctx *t, struct fz *f)
{
	uint8_t b = fz_u8(f);
	unsigned int pidx = (b >> 1) & 1;
	struct fsock *fs = NULL;
	uint32_t port, cid;

	if (b & 1) {
		fs = pick_open(t, f); /* a retry, or a connect in the wrong state */
		if (fs != NULL)
			pidx = fs->pidx;
	} else {
		fs = app_socket(t, b & 4 ? UVS_TYPE_SEQPACKET : UVS_TYPE_STREAM, pidx);
		if (fs != NULL && (b & 8))
			(void)uvs_conn_bind(fs->c, port_sel(t, f, true));
	}
	if (fs == NULL)
		return;
	port = port_sel(t, f, false);
	/* through the peer to another CID, as a guest's driver would hand any connection */
	cid = b & 16 ? fz_u32(f) : peer_cids[pidx];
	if (uvs_conn_connect_via(fs->c, &t->peers[pidx], cid, port, t->now) == 0 &&
			cid != peer_cids[pidx])
		fs->via_cid = cid;
}

static void
act_listen(struct ctx *t, struct fz *f)
{
	uint8_t b = fz_u8(f);
	struct fsock *fs;

	if (b & 1) {
		fs = pick_open(t, f);
	} else {
		fs = app_socket(t, b & 2 ? UVS_TYPE_SEQPACKET : UVS_TYPE_STREAM, (b >> 2) & 1);
		if (fs != NULL)
			(void)uvs_conn_bind(fs->c, port_sel(t, f, true));
	}
	if (fs != NULL)
		(void)uvs_conn_listen(fs->c, b >> 5);
}

static void
act_accept(struct ctx *t, struct fz *f)
{
	struct fsock *fs = pick_open(t, f);
	struct uvs_conn *child;

	if (fs == NULL || uvs_conn_accept(fs->c, &child) < 0)
		return;
	FZ_CHECK(child->sock != NULL && child->listener == NULL);
	((struct fsock *)child->sock)->app_owned = true;
}

static void
act_tick(struct ctx *t, struct fz *f)
{
	uint8_t b = fz_u8(f);

	switch (b & 3) {
	case 0:
		t->now += SEC / 1000;
		break;
	case 1:
		t->now += UVS_CONNECT_TIMEOUT_NS;
		break;
	case 2:
		t->now += UVS_CLOSE_TIMEOUT_NS;
		break;
	default:
		t->now += (uint64_t)fz_u32(f) * 1000u;
		break;
	}
	uvs_engine_tick(t->eng, t->now);
}

static void
act(struct ctx *t, struct fz *f, enum action a)
{
	struct fsock *fs;

	switch (a) {
	case A_PKT:
		act_pkt(t, f);
		break;
	case A_RAW:
		act_raw(t, f);
		break;
	case A_DRAIN:
		act_drain(t, f);
		break;
	case A_CLOSE:
		fs = pick_open(t, f);
		if (fs != NULL)
			app_close(t, fs);
		break;
	case A_SHUTDOWN:
		fs = pick_open(t, f);
		if (fs != NULL)
			(void)uvs_conn_shutdown(fs->c, fz_u8(f));
		break;
	case A_CONSUME:
		fs = pick_open(t, f);
		if (fs != NULL) {
			fs->consumed += fz_u32(f) % (fs->rx_total - fs->consumed + 1);
			uvs_conn_tx_wake(fs->c);
		}
		break;
	case A_WRITE:
		fs = pick_open(t, f);
		if (fs != NULL)
			act_write(fs, f);
		break;
	case A_ACCEPT:
		act_accept(t, f);
		break;
	case A_CONNECT:
		act_connect(t, f);
		break;
	case A_LISTEN:
		act_listen(t, f);
		break;
	case A_BUFSIZE:
		fs = pick_open(t, f);
		if (fs != NULL)
			uvs_conn_set_buf_size(fs->c, fz_u32_near(f, UVS_BUF_SIZE_DEFAULT));
		break;
	case A_QUIRK: {
		uint8_t b;

		fs = pick(t, f);
		b = fz_u8(f);
		if (fs == NULL || fs->freed)
			break;
		fs->rx_refuse = b & 1;
		fs->abort_on_peek = b & 2;
		fs->refuse_children = b & 4;
		fs->stream_peek_flags = b >> 3;
		break;
	}
	case A_ABORT:
		/* the socket layer may abort any connection it still holds, closed or not */
		fs = pick(t, f);
		if (fs != NULL && !fs->freed)
			uvs_conn_abort(fs->c);
		break;
	case A_TICK:
		act_tick(t, f);
		break;
	case A_DETACH: {
		unsigned int i = fz_u8(f) & 1;

		uvs_peer_detach(t->eng, &t->peers[i]);
		/* the guest comes back (a reboot): the same peer, fresh */
		FZ_CHECK(t->peers[i].nconns == 0 && LIST_EMPTY(&t->peers[i].conns));
		uvs_peer_init(&t->peers[i], peer_cids[i], peer_seqpacket[i], NULL);
		break;
	}
	default:
		break;
	}
}

/* One engine for the whole run: creating one costs more than most inputs (two 4096-bucket
 * tables), and every input leaves it empty, as the checks at its end prove. */
static struct ctx ctx_storage;

static void
engine_free(void)
{
	uvs_engine_destroy(ctx_storage.eng);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctx *t = &ctx_storage;
	struct fsock *l;
	struct fz f;

	if (t->eng == NULL) {
		pattern_init();
		t->eng = uvs_engine_create(HOST_CID, &fake_ops, t);
		FZ_CHECK(t->eng != NULL);
		atexit(engine_free);
	}
	fz_init(&f, data, size);
	t->nsocks = 0;
	t->now = T0;
	t->copy_len = 0;
	for (unsigned int i = 0; i < NPEERS; i++)
		uvs_peer_init(&t->peers[i], peer_cids[i], peer_seqpacket[i], NULL);
	for (unsigned int i = 0; i < 2; i++) {
		l = app_socket(t, i == 0 ? UVS_TYPE_STREAM : UVS_TYPE_SEQPACKET, 0);
		FZ_CHECK(uvs_conn_bind(l->c, LPORT + i) == 0);
		FZ_CHECK(uvs_conn_listen(l->c, fz_u8(&f) % 8) == 0);
	}
	check_all(t);
	while (!fz_empty(&f)) {
		act(t, &f, (enum action)(fz_u8(&f) % A_MAX));
		check_all(t);
	}

	/* The application closes what it holds, then the guests go away: nothing may remain
	 * (the listeners' ports are bound again by the next input). */
	for (unsigned int i = 0; i < t->nsocks; i++) {
		struct fsock *fs = t->socks[i];

		if (fs->app_owned && !fs->closed && !fs->freed)
			app_close(t, fs);
	}
	for (unsigned int i = 0; i < NPEERS; i++) {
		uvs_peer_detach(t->eng, &t->peers[i]);
		FZ_CHECK(t->peers[i].nconns == 0);
	}
	for (unsigned int i = 0; i < t->nsocks; i++) {
		FZ_CHECK(t->socks[i]->freed);
		free(t->socks[i]);
	}
	t->nsocks = 0;
	return 0;
}
