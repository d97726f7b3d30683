/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * uvsock-guest: a virtio-vsock guest without a VM. It attaches to a vhost-user-vsock back-end
 * (uvsockd) as QEMU would: guest memory in a memfd, split rings, kick and call eventfds,
 * SET_MEM_TABLE, GET_CONFIG for its CID. It runs the driver side of the rings and the guest
 * end of the protocol with libuvsock's engine, and moves data in testpmd-style traffic modes
 * that touch guest buffers directly:
 *
 *   rxonly   receive and count (optionally check the byte pattern i % 251), answer "bye\n" at
 *            the peer's end of stream (uvsock-test-host writer's contract)
 *   txonly   send N bytes of the pattern from guest buffers, shut down, expect "<N>\n" back
 *            (uvsock-test-host sink's contract)
 *   echo     send back what arrives (a listener: uvsock-test-host client's peer)
 *   serve    no traffic of its own: serve programs "inside" the guest through a control
 *            socket (--control PATH), with libuvsock's uvs_srv, the code uvsockd serves host
 *            programs with. Programs use the native API or libuvsock-preload.so with
 *            UVSOCK_CONTROL=PATH and reach the host at CID 2, as in a VM.
 *
 * Implementation notes
 *
 * One thread polls both rings, backs off to sleeping on the call eventfds when idle (the
 * rings' interrupt flags are set first, then the rings looked at once more). Each buffer has
 * a fixed descriptor (uvs_drvq): rx buffers are reposted as soon as the engine has taken the
 * packet; tx buffers go back to a free stack when the device returns them. The engine calls
 * back into the per-connection mode (struct gconn) for payload, as uvsockd's socket layer
 * does for host programs. In serve mode the engine belongs to uvs_srv instead, and the loop
 * also watches the server's epoll set (every few passes while busy, and in its sleep).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "uvs_conn.h"
#include "uvs_drvq.h"
#include "uvs_pkt.h"
#include "uvs_proto.h"
#include "uvs_ring.h"
#include "uvs_srv.h"
#include "uvs_vhu.h"

/* Ring size: 128 buffers each way, as Linux's virtio-vsock. */
#define G_QSIZE 128u
/* At exit, how long to wait for the device to take the last packets, and how often to look:
 * a device that serves us takes them within a pass or two. */
#define G_EXIT_DRAIN_NS (2ull * 1000000000ull)
#define G_EXIT_DRAIN_POLL_US 200
/* One buffer: a header and the largest payload, so the device never has to split. */
#define G_BUF_SIZE (UVS_HDR_SIZE + UVS_MAX_PKT_PAYLOAD)
#define G_BUF_STRIDE (128u * 1024u) /* buffers on 128 KiB boundaries (hugepage friendly) */
/* Polling rounds without work before sleeping on the call eventfds. */
#define G_IDLE_SPINS 2000u
/* Idle passes between two sched_yield()s while spinning (unless --no-yield), as uvsockd. */
#define G_YIELD_EVERY 8u
/* Passes between two readings of the clock while busy (a power of two). */
#define G_CLOCK_EVERY 64u
/* Sleep at most this long (the engine's timers run at least this often). */
#define G_SLEEP_MS 100
/* echo: bytes held per connection; advertised as the receive buffer. Also the default
 * receive buffer of the other modes: Linux's default (SO_VM_SOCKETS_BUFFER_SIZE). */
#define G_ECHO_BUF (256u * 1024u)
/* --buf-size bounds: Linux's minimum and uvsockd's own maximum. */
/* Smallest rx descriptor: a header and one byte, so any packet can be delivered in pieces. */
#define G_RX_BUF_MIN (UVS_HDR_SIZE + 1u)
#define G_BUF_MIN 128u
#define G_BUF_MAX (64u * 1024u * 1024u)
/* The byte at stream offset i is (i % G_PATTERN_MOD) (tests/guest/README.md). */
#define G_PATTERN_MOD 251u
/* Largest reply line accepted ("<count>\n" from uvsock-test-host sink). */
#define G_REPLY_MAX 64u
/* serve: passes between two looks at the control socket and the programs' sockets while
 * busy (a power of two): an epoll_wait() per pass would cost more than the pass. */
#define G_EPOLL_EVERY 16u
/* serve: epoll events handled per look. */
#define G_EPOLL_BATCH 64

enum g_mode { G_RXONLY, G_TXONLY, G_ECHO, G_SERVE };

struct gconn {
	struct uvs_conn *c;
	uint64_t rx_bytes, tx_bytes, rx_msgs;
	bool bad_pattern;
	bool shut_sent;
	bool finished;
	/* small replies ("bye\n") and txonly's expected answer */
	char reply[G_REPLY_MAX];
	uint32_t reply_len, reply_sent;
	char got[G_REPLY_MAX];
	uint32_t got_len;
	/* echo: libuvsock's byte ring, seen as its producer (rx) and its consumer (tx) */
	uint8_t *echo;
	struct uvs_ring echo_in, echo_out;
	struct uvs_ring_idx echo_idx;
};

struct guest {
	enum g_mode mode;
	uint16_t type; /* UVS_TYPE_STREAM or UVS_TYPE_SEQPACKET */
	bool verify;
	uint64_t tx_total; /* txonly */
	uint32_t msg_size; /* txonly, SEQPACKET: bytes per message */
	uint32_t buf_size; /* receive buffer (credit) of each connection */
	uint32_t rx_buf;   /* bytes of each rx descriptor (--rx-buf) */
	unsigned int want_conns, done_conns, failed;
	uint32_t cid;
	int vhu;
	uint8_t *mem;
	size_t mem_size;
	struct uvs_drvq rxq, txq;
	int kickfd[2], callfd[2];
	uint16_t tx_free[G_QSIZE];
	unsigned int ntx_free;
	struct uvs_engine *eng;
	struct uvs_peer host;
	struct uvs_conn *listener;
	uint8_t pattern[G_PATTERN_MOD * 512];
	/* serve */
	int epfd;
	struct uvs_srv srv;
	/* statistics */
	uint64_t rx_pkts, tx_pkts, rx_payload, tx_payload, kicks, sleeps;
};

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* --- per-connection modes (the engine's socket layer) --- */

static void
conn_done(struct guest *g, struct gconn *gc, bool ok)
{
	if (gc->finished)
		return;
	gc->finished = true;
	g->done_conns++;
	if (!ok)
		g->failed++;
	printf("%s: connection %u:%u %s: rx %" PRIu64 " bytes (%" PRIu64 " messages), tx %" PRIu64
	       " bytes\n",
			g->mode == G_RXONLY   ? "rxonly"
			: g->mode == G_TXONLY ? "txonly"
					      : "echo",
			gc->c->peer_cid, gc->c->peer_port, ok ? "ok" : "FAILED", gc->rx_bytes,
			gc->rx_msgs, gc->tx_bytes);
	fflush(stdout);
	uvs_conn_close(gc->c, uvs_now_ns());
}

static int
ops_rx_data(void *ctx, struct uvs_conn *c, const struct iovec *iov, unsigned int n, uint32_t off,
		uint32_t len, uint32_t flags)
{
	struct guest *g = ctx;
	struct gconn *gc = c->sock;
	const uint8_t *p = (const uint8_t *)iov[0].iov_base + off;
	uint32_t room;

	(void)n; /* one buffer per packet: one segment */
	if (gc == NULL)
		return -ENOBUFS;
	switch (g->mode) {
	case G_RXONLY:
		if (g->verify && !gc->bad_pattern) {
			for (uint32_t i = 0; i < len; i++) {
				if (p[i] != (uint8_t)((gc->rx_bytes + i) % G_PATTERN_MOD)) {
					gc->bad_pattern = true;
					break;
				}
			}
		}
		break;
	case G_TXONLY:
		if (gc->got_len + len > sizeof(gc->got))
			return -ENOBUFS;
		memcpy(gc->got + gc->got_len, p, len);
		gc->got_len += len;
		break;
	case G_ECHO:
		if (uvs_ring_space(&gc->echo_in, &room) < 0 || room < len)
			return -ENOBUFS; /* beyond the credit we gave */
		uvs_ring_put(&gc->echo_in, 0, p, len);
		uvs_ring_produce(&gc->echo_in, len);
		uvs_conn_tx_wake(c);
		break;
	case G_SERVE: /* never: that engine calls uvs_srv */
		return -ENOBUFS;
	}
	gc->rx_bytes += len;
	if (flags & UVS_SEQ_EOM)
		gc->rx_msgs++;
	g->rx_payload += len;
	if (g->mode != G_ECHO)
		uvs_conn_tx_wake(c); /* consumed at once: the engine decides on a credit update */
	return 0;
}

static uint32_t
ops_rx_consumed(void *ctx, struct uvs_conn *c)
{
	struct guest *g = ctx;
	struct gconn *gc = c->sock;

	if (gc == NULL)
		return c->cr.fwd_cnt;
	/* rxonly and txonly take the bytes at once; echo when it has sent them back */
	return g->mode == G_ECHO ? gc->echo_out.own : (uint32_t)gc->rx_bytes;
}

static uint32_t
ops_tx_peek(void *ctx, struct uvs_conn *c, uint32_t max, uint32_t *flags)
{
	struct guest *g = ctx;
	struct gconn *gc = c->sock;
	uint64_t avail = 0;

	*flags = 0;
	if (gc == NULL)
		return 0;
	if (gc->reply_sent < gc->reply_len) {
		avail = gc->reply_len - gc->reply_sent; /* SEQPACKET: one message */
	} else if (g->mode == G_TXONLY) {
		avail = g->tx_total - gc->tx_bytes;
		if (g->type == UVS_TYPE_SEQPACKET &&
				avail > g->msg_size - gc->tx_bytes % g->msg_size)
			avail = g->msg_size - gc->tx_bytes % g->msg_size; /* to the message's end */
	} else if (g->mode == G_ECHO) {
		uint32_t used;

		avail = uvs_ring_used(&gc->echo_out, &used) == 0 ? used : 0;
	}
	if (avail > max)
		return max;
	if (g->type == UVS_TYPE_SEQPACKET && avail > 0)
		*flags = UVS_SEQ_EOM; /* what is returned finishes the message */
	return (uint32_t)avail;
}

static void
ops_tx_copy(void *ctx, struct uvs_conn *c, const struct iovec *iov, unsigned int n, uint32_t off,
		uint32_t len)
{
	struct guest *g = ctx;
	struct gconn *gc = c->sock;
	uint8_t *p = (uint8_t *)iov[0].iov_base + off;

	(void)n;
	if (gc->reply_sent < gc->reply_len) {
		memcpy(p, gc->reply + gc->reply_sent, len);
		gc->reply_sent += len;
	} else if (g->mode == G_TXONLY) {
		/* pre-filled: the pattern repeats every 251 bytes */
		uint32_t start = (uint32_t)(gc->tx_bytes % G_PATTERN_MOD), done = 0;

		while (done < len) {
			uint32_t k = len - done;

			if (k > sizeof(g->pattern) - start)
				k = (uint32_t)sizeof(g->pattern) - start;
			memcpy(p + done, g->pattern + start, k);
			done += k;
			start = 0;
		}
		gc->tx_bytes += len;
	} else {
		uvs_ring_get(&gc->echo_out, 0, p, len);
		uvs_ring_consume(&gc->echo_out, len);
		gc->tx_bytes += len;
	}
	g->tx_payload += len;
}

static struct gconn *
gconn_new(struct guest *g, struct uvs_conn *c)
{
	/* aligned: the ring indexes sit on their own cache lines */
	struct gconn *gc = aligned_alloc(UVS_CACHE_LINE,
			(sizeof(*gc) + UVS_CACHE_LINE - 1) & ~(size_t)(UVS_CACHE_LINE - 1));

	if (gc == NULL)
		return NULL;
	memset(gc, 0, sizeof(*gc));
	if (g->mode == G_ECHO) {
		gc->echo = malloc(G_ECHO_BUF);
		if (gc->echo == NULL) {
			free(gc);
			return NULL;
		}
		uvs_ring_attach(&gc->echo_in, &gc->echo_idx, gc->echo, G_ECHO_BUF, true);
		uvs_ring_attach(&gc->echo_out, &gc->echo_idx, gc->echo, G_ECHO_BUF, false);
	}
	gc->c = c;
	c->sock = gc;
	return gc;
}

/* Whether gc finished its job: then check and close. */
static void
gconn_progress(struct guest *g, struct gconn *gc)
{
	struct uvs_conn *c = gc->c;

	if (gc->finished || c->state == UVS_ST_SYN_SENT || c->state == UVS_ST_CLOSE)
		return; /* not connected yet (a failed connect is counted by its event) */
	if (g->mode == G_TXONLY && !gc->shut_sent && gc->tx_bytes == g->tx_total) {
		gc->shut_sent = true;
		uvs_conn_shutdown(c, UVS_SHUTDOWN_SEND);
	}
	if (!(c->peer_shut & UVS_SHUTDOWN_SEND) && c->state == UVS_ST_ESTABLISHED)
		return;
	switch (g->mode) {
	case G_RXONLY:
		if (gc->reply_len == 0 && c->state == UVS_ST_ESTABLISHED) {
			memcpy(gc->reply, "bye\n", 4);
			gc->reply_len = 4;
			uvs_conn_tx_wake(c);
		}
		if (gc->reply_sent == gc->reply_len || c->state != UVS_ST_ESTABLISHED)
			conn_done(g, gc, !gc->bad_pattern && c->state == UVS_ST_ESTABLISHED);
		break;
	case G_TXONLY: {
		char want[G_REPLY_MAX];
		int n = snprintf(want, sizeof(want), "%" PRIu64 "\n", g->tx_total);

		conn_done(g, gc,
				gc->tx_bytes == g->tx_total && gc->got_len == (uint32_t)n &&
						memcmp(gc->got, want, (size_t)n) == 0);
		break;
	}
	case G_ECHO: {
		uint32_t left;
		bool sane = uvs_ring_used(&gc->echo_out, &left) == 0;

		/* Done once everything came back, or the peer went away: then it is a failure
		 * only if echoed bytes were left undelivered (a peer that closes after reading
		 * its echo, as connrate --echo does, is fine). */
		if (!sane || left == 0 || c->state != UVS_ST_ESTABLISHED)
			conn_done(g, gc, sane && left == 0);
		break;
	}
	case G_SERVE:
		break;
	}
}

static void
ops_event(void *ctx, struct uvs_conn *c, enum uvs_event ev)
{
	struct guest *g = ctx;
	struct gconn *gc = c->sock;

	switch (ev) {
	case UVS_EV_ACCEPTABLE:
		/* c is the new connection, queued on its listener: give it our side now (the
		 * main loop takes it off the accept queue) */
		(void)gconn_new(g, c);
		break;
	case UVS_EV_CONNECT_FAILED:
		fprintf(stderr, "uvsock-guest: connect to %u:%u failed: %s\n", c->peer_cid,
				c->peer_port, strerror(-c->err));
		g->failed++;
		g->done_conns++;
		if (gc != NULL)
			gc->finished = true;
		break;
	case UVS_EV_FREE:
		if (gc != NULL) {
			free(gc->echo);
			free(gc);
		}
		c->sock = NULL;
		break;
	default:
		break;
	}
}

/* The main loop offers the engine tx buffers on every pass: nothing to note. */
static void
ops_kick(void *ctx, struct uvs_peer *p)
{
	(void)ctx;
	(void)p;
}

static const struct uvs_engine_ops guest_ops = {
	.rx_data = ops_rx_data,
	.rx_consumed = ops_rx_consumed,
	.tx_peek = ops_tx_peek,
	.tx_copy = ops_tx_copy,
	.event = ops_event,
	.kick = ops_kick,
};

/* --- serve: programs in the guest, through uvs_srv --- */

/* As Linux's guest driver: every CID but the guest's own and the local one (which would be
 * vsock_loopback's, absent here: ENODEV) goes to the host, which decides (uvsockd drops
 * guest-to-guest requests: the connect times out). */
static struct uvs_peer *
serve_peer_by_cid(void *ctx, uint32_t cid)
{
	struct guest *g = ctx;

	return cid == UVS_CID_LOCAL || cid == g->cid ? NULL : &g->host;
}

static void
serve_log(void *ctx, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "uvsock-guest: %s\n", msg);
}

static const struct uvs_srv_ops serve_ops = {
	.peer_by_cid = serve_peer_by_cid,
	.kick = ops_kick, /* the loop offers tx buffers on every pass */
	.log = serve_log,
};

/* Look at the control socket and the programs' sockets: timeout_ms as epoll_wait(). */
static unsigned int
serve_poll(struct guest *g, int timeout_ms)
{
	struct epoll_event ev[G_EPOLL_BATCH];
	int n = epoll_wait(g->epfd, ev, G_EPOLL_BATCH, timeout_ms);

	for (int i = 0; i < n; i++)
		(void)uvs_srv_event(&g->srv, ev[i].data.u64, ev[i].events);
	return n > 0 ? (unsigned int)n : 0;
}

/* --- guest memory, vhost-user and rings --- */

static uint64_t
buf_gpa(const struct guest *g, unsigned int q, unsigned int i)
{
	size_t rings = 2 * ((uvs_drvq_bytes(G_QSIZE) + 4095) & ~(size_t)4095);

	(void)g;
	return rings + ((size_t)q * G_QSIZE + i) * G_BUF_STRIDE;
}

static int
guest_attach(struct guest *g, const char *path, bool want_seqpacket)
{
	size_t ring = (uvs_drvq_bytes(G_QSIZE) + 4095) & ~(size_t)4095;
	struct uvs_vhu_region r;
	struct uvs_vhu_vring v;
	uint64_t feat, pfeat = 0, want;
	int memfd, rc;

	g->mem_size = 2 * ring + 2 * G_QSIZE * (size_t)G_BUF_STRIDE;
	memfd = memfd_create("uvsock-guest", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, (off_t)g->mem_size) < 0)
		return -errno;
	g->mem = mmap(NULL, g->mem_size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (g->mem == MAP_FAILED)
		return -errno;
	g->vhu = uvs_vhu_connect(path);
	if (g->vhu < 0)
		return g->vhu;
	rc = uvs_vhu_get_u64(g->vhu, UVS_VHU_GET_FEATURES, &feat);
	if (rc < 0)
		return rc;
	if (!(feat & (1ull << UVS_VIRTIO_F_VERSION_1)))
		return -EPROTONOSUPPORT;
	want = (1ull << UVS_VIRTIO_F_VERSION_1) | (feat & (1ull << UVS_VHU_F_PROTOCOL_FEATURES));
	if (want_seqpacket && (feat & (1ull << UVS_VIRTIO_VSOCK_F_SEQPACKET)))
		want |= 1ull << UVS_VIRTIO_VSOCK_F_SEQPACKET;
	if (feat & (1ull << UVS_VHU_F_PROTOCOL_FEATURES)) {
		rc = uvs_vhu_get_u64(g->vhu, UVS_VHU_GET_PROTOCOL_FEATURES, &pfeat);
		if (rc == 0)
			rc = uvs_vhu_set_u64(g->vhu, UVS_VHU_SET_PROTOCOL_FEATURES,
					pfeat & (1ull << UVS_VHU_PROTOCOL_F_CONFIG));
		if (rc < 0)
			return rc;
	}
	rc = uvs_vhu_send(g->vhu, UVS_VHU_SET_OWNER, NULL, 0, NULL, 0);
	if (rc == 0)
		rc = uvs_vhu_get_config(g->vhu, 0, &feat, sizeof(feat)); /* le64 guest_cid */
	if (rc < 0)
		return rc;
	g->cid = (uint32_t)feat;
	rc = uvs_vhu_set_u64(g->vhu, UVS_VHU_SET_FEATURES, want);
	if (rc < 0)
		return rc;
	r = (struct uvs_vhu_region){ .gpa = 0,
		.size = g->mem_size,
		.uaddr = (uint64_t)(uintptr_t)g->mem,
		.offset = 0,
		.fd = memfd };
	rc = uvs_vhu_set_mem_table(g->vhu, &r, 1);
	close(memfd);
	if (rc < 0)
		return rc;
	for (unsigned int q = 0; q < 2; q++) {
		struct uvs_drvq *dq = q == UVS_VQ_RX ? &g->rxq : &g->txq;

		rc = uvs_drvq_init(dq, g->mem + q * ring, q * ring, G_QSIZE);
		if (rc < 0)
			return rc;
		for (unsigned int i = 0; i < G_QSIZE; i++)
			uvs_drvq_set_buf(dq, (uint16_t)i, buf_gpa(g, q, i),
					q == UVS_VQ_RX ? g->rx_buf : G_BUF_SIZE, q == UVS_VQ_RX);
		g->kickfd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		g->callfd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (g->kickfd[q] < 0 || g->callfd[q] < 0)
			return -errno;
		v = (struct uvs_vhu_vring){ .num = G_QSIZE,
			.desc_uaddr = (uint64_t)(uintptr_t)dq->desc,
			.avail_uaddr = (uint64_t)(uintptr_t)dq->avail,
			.used_uaddr = (uint64_t)(uintptr_t)dq->used,
			.kickfd = g->kickfd[q],
			.callfd = g->callfd[q] };
		rc = uvs_vhu_set_vring(
				g->vhu, q, &v, (want & (1ull << UVS_VHU_F_PROTOCOL_FEATURES)) != 0);
		if (rc < 0)
			return rc;
	}
	/* all rx buffers to the device; all tx buffers free */
	for (unsigned int i = 0; i < G_QSIZE; i++) {
		uvs_drvq_post(&g->rxq, (uint16_t)i);
		g->tx_free[g->ntx_free++] = (uint16_t)(G_QSIZE - 1 - i);
	}
	uvs_drvq_publish(&g->rxq);
	g->host.cid = UVS_CID_HOST;
	uvs_peer_init(&g->host, UVS_CID_HOST, (want >> UVS_VIRTIO_VSOCK_F_SEQPACKET) & 1, g);
	g->host.any_src = true; /* the driver's view: other guests reach us through the host */
	return 0;
}

static void
kick(struct guest *g, unsigned int q)
{
	uint64_t one = 1;

	if (write(g->kickfd[q], &one, sizeof(one)) == sizeof(one))
		g->kicks++;
}

/* Packets from the device: into the engine, buffers straight back. */
static unsigned int
poll_rx(struct guest *g)
{
	unsigned int n = 0;
	uint16_t id;
	uint32_t len;
	int rc;

	while ((rc = uvs_drvq_take(&g->rxq, &id, &len)) == 1) {
		uint8_t *buf = g->mem + buf_gpa(g, UVS_VQ_RX, id);
		struct uvs_hdr hdr;

		if (len >= UVS_HDR_SIZE) {
			struct iovec iov = { .iov_base = buf, .iov_len = len };

			memcpy(&hdr, buf, sizeof(hdr));
			/* from the host or, through it, from another guest (guest-to-guest
			 * traffic): any CID but ours, as Linux's driver */
			if (hdr.src_cid != g->cid &&
					uvs_pkt_check(&hdr, len - UVS_HDR_SIZE, hdr.src_cid,
							g->cid) == UVS_PKT_OK)
				uvs_engine_rx(g->eng, &g->host, &hdr, &iov, 1, UVS_HDR_SIZE);
			g->rx_pkts++;
		}
		uvs_drvq_post(&g->rxq, id);
		n++;
	}
	if (rc < 0) {
		fprintf(stderr, "uvsock-guest: the device wrote a bad rx used entry\n");
		stop = 1;
	}
	if (n > 0 && uvs_drvq_publish(&g->rxq))
		kick(g, UVS_VQ_RX);
	return n;
}

/* Packets for the device: returned tx buffers freed, new ones filled by the engine. */
static unsigned int
poll_tx(struct guest *g)
{
	unsigned int n = 0;
	uint16_t id;
	uint32_t len;
	int rc;

	while ((rc = uvs_drvq_take(&g->txq, &id, &len)) == 1)
		g->tx_free[g->ntx_free++] = id;
	if (rc < 0) {
		fprintf(stderr, "uvsock-guest: the device wrote a bad tx used entry\n");
		stop = 1;
	}
	while (g->ntx_free > 0 && uvs_peer_tx_pending(&g->host)) {
		uint16_t b = g->tx_free[g->ntx_free - 1];
		struct iovec iov = { .iov_base = g->mem + buf_gpa(g, UVS_VQ_TX, b),
			.iov_len = G_BUF_SIZE };
		uint32_t w = uvs_engine_tx(g->eng, &g->host, &iov, 1, G_BUF_SIZE);

		if (w == 0)
			break;
		g->ntx_free--;
		uvs_drvq_set_len(&g->txq, b, w);
		uvs_drvq_post(&g->txq, b);
		g->tx_pkts++;
		n++;
	}
	if (n > 0 && uvs_drvq_publish(&g->txq))
		kick(g, UVS_VQ_TX);
	return n;
}

/* Nothing to do: ask for interrupts, look once more, then sleep on the call eventfds.
 * @return false if the sleep ran out with nothing new (a timer wake-up). */
static bool
idle_sleep(struct guest *g)
{
	int woken = 1;
	struct pollfd pfd[3] = { { .fd = g->callfd[0], .events = POLLIN },
		{ .fd = g->callfd[1], .events = POLLIN },
		{ .fd = g->mode == G_SERVE ? g->epfd : -1, .events = POLLIN } };
	uint64_t v;

	/* serve: programs notify again from now on (false: one wrote meanwhile) */
	bool quiet = g->mode != G_SERVE || !uvs_srv_arm(&g->srv);

	uvs_drvq_set_interrupts(&g->rxq, true);
	uvs_drvq_set_interrupts(&g->txq, true);
	if (quiet && g->rxq.used->idx == g->rxq.last_used &&
			(g->txq.used->idx == g->txq.last_used || !uvs_peer_tx_pending(&g->host))) {
		g->sleeps++;
		woken = poll(pfd, 3, G_SLEEP_MS);
	}
	for (int i = 0; i < 2; i++)
		(void)read(g->callfd[i], &v, sizeof(v));
	uvs_drvq_set_interrupts(&g->rxq, false);
	uvs_drvq_set_interrupts(&g->txq, false);
	return woken != 0;
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: uvsock-guest --socket PATH --mode rxonly|txonly|echo\n"
		   "                    (--connect PORT | --listen PORT) [options]\n"
		   "       uvsock-guest --socket PATH --mode serve --control PATH\n"
		   "  --socket PATH    the back-end's vhost-user socket (uvsockd --vm ...,socket=PATH)\n"
		   "  --mode MODE      rxonly: count what arrives (--verify: check the pattern i%%251),\n"
		   "                   answer \"bye\\n\" at end of stream; txonly: send --bytes of the\n"
		   "                   pattern, shut down, expect \"<bytes>\\n\" back; echo: send back;\n"
		   "                   serve: serve programs through --control (runs until killed)\n"
		   "  --control PATH   serve: the control socket programs use (UVSOCK_CONTROL=PATH)\n"
		   "  --connect PORT   connect to the host (CID 2) on PORT\n"
		   "  --listen PORT    accept connections on PORT\n"
		   "  --conns N        connections to complete before exiting (default 1)\n"
		   "  --bytes N        txonly: bytes to send (default 1 MiB)\n"
		   "  --verify         rxonly: check every byte (STREAM)\n"
		   "  --seqpacket      SOCK_SEQPACKET connections (rxonly, txonly; counts messages)\n"
		   "  --msg-size N     txonly with --seqpacket: bytes per message (default 64,\n"
		   "                   at most 65536)\n"
		   "  --buf-size N     rxonly, txonly: receive buffer (credit) of each connection,\n"
		   "                   128 .. 64 MiB (default 262144, Linux's default)\n"
		   "  --rx-buf N       bytes of each receive descriptor, 45 .. 65580 (default the\n"
		   "                   largest packet; Linux's driver posts 4096)\n"
		   "  --no-yield       spin without yielding the CPU between idle passes\n"
		   "  --stats          print rates every second\n"
		   "Exit status: 0 when every connection did its job, 1 otherwise, 2 on bad usage.\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "mode", required_argument, NULL, 'm' },
		{ "connect", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "conns", required_argument, NULL, 'n' },
		{ "bytes", required_argument, NULL, 'b' },
		{ "verify", no_argument, NULL, 'v' },
		{ "seqpacket", no_argument, NULL, 'q' },
		{ "msg-size", required_argument, NULL, 'M' },
		{ "stats", no_argument, NULL, 'S' },
		{ "control", required_argument, NULL, 'C' },
		{ "buf-size", required_argument, NULL, 'B' },
		{ "rx-buf", required_argument, NULL, 'R' },
		{ "no-yield", no_argument, NULL, 'Y' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct guest g = { .mode = G_ECHO,
		.type = UVS_TYPE_STREAM,
		.tx_total = 1024 * 1024,
		.msg_size = 64,
		.buf_size = G_ECHO_BUF,
		.rx_buf = G_BUF_SIZE,
		.want_conns = 1 };
	const char *path = NULL, *control = NULL;
	long connect_port = -1, listen_port = -1;
	bool stats = false, no_yield = false;
	uint64_t next_tick = 0, next_stat, last_rx = 0, last_tx = 0;
	unsigned int idle = 0, started = 0, passes = 0;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			path = optarg;
			break;
		case 'm':
			if (strcmp(optarg, "rxonly") == 0)
				g.mode = G_RXONLY;
			else if (strcmp(optarg, "txonly") == 0)
				g.mode = G_TXONLY;
			else if (strcmp(optarg, "echo") == 0)
				g.mode = G_ECHO;
			else if (strcmp(optarg, "serve") == 0)
				g.mode = G_SERVE;
			else {
				fprintf(stderr, "uvsock-guest: unknown mode '%s'\n", optarg);
				return 2;
			}
			break;
		case 'c':
			connect_port = strtol(optarg, NULL, 0);
			break;
		case 'l':
			listen_port = strtol(optarg, NULL, 0);
			break;
		case 'n':
			g.want_conns = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'b':
			g.tx_total = strtoull(optarg, NULL, 0);
			break;
		case 'v':
			g.verify = true;
			break;
		case 'S':
			stats = true;
			break;
		case 'C':
			control = optarg;
			break;
		case 'B':
			g.buf_size = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'R':
			g.rx_buf = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'Y':
			no_yield = true;
			break;
		case 'q':
			g.type = UVS_TYPE_SEQPACKET;
			break;
		case 'M':
			g.msg_size = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (g.mode == G_SERVE ? control == NULL || connect_port >= 0 || listen_port >= 0
			      : control != NULL) {
		fprintf(stderr, "uvsock-guest: --control goes with --mode serve, which needs it "
				"(and has no --connect or --listen)\n");
		return 2;
	}
	if (path == NULL || (g.mode != G_SERVE && (connect_port < 0) == (listen_port < 0)) ||
			connect_port > UINT32_MAX || listen_port > UINT32_MAX ||
			g.want_conns == 0 || g.msg_size == 0 || g.msg_size > UVS_MAX_PKT_PAYLOAD ||
			g.buf_size < G_BUF_MIN || g.buf_size > G_BUF_MAX ||
			g.rx_buf < G_RX_BUF_MIN || g.rx_buf > G_BUF_SIZE ||
			(g.mode == G_ECHO && g.buf_size != G_ECHO_BUF) ||
			(g.type == UVS_TYPE_SEQPACKET && g.mode == G_ECHO)) {
		usage(stderr);
		return 2;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	for (size_t i = 0; i < sizeof(g.pattern); i++)
		g.pattern[i] = (uint8_t)(i % G_PATTERN_MOD);
	rc = guest_attach(&g, path, true);
	if (rc < 0) {
		fprintf(stderr, "uvsock-guest: cannot attach to %s: %s\n", path, strerror(-rc));
		return 1;
	}
	if (g.mode == G_SERVE) {
		g.epfd = epoll_create1(EPOLL_CLOEXEC);
		rc = g.epfd < 0 ? -errno : uvs_srv_init(&g.srv, g.epfd, g.cid, &serve_ops, &g);
		if (rc == 0)
			rc = uvs_srv_listen(&g.srv, control);
		if (rc < 0) {
			fprintf(stderr, "uvsock-guest: control socket %s: %s\n", control,
					strerror(-rc));
			return 1;
		}
		signal(SIGPIPE, SIG_IGN); /* a program that goes away must not take us along */
		g.eng = g.srv.eng;
		g.want_conns = UINT_MAX; /* until killed */
	} else {
		g.eng = uvs_engine_create(g.cid, &guest_ops, &g);
	}
	if (g.eng == NULL) {
		fprintf(stderr, "uvsock-guest: no memory\n");
		return 1;
	}
	printf("uvsock-guest: attached to %s as CID %u\n", path, g.cid);
	if (g.mode == G_SERVE)
		printf("uvsock-guest: serving programs on %s\n", control);
	fflush(stdout);
	if (listen_port >= 0) {
		g.listener = uvs_conn_create(g.eng, g.type, NULL);
		if (g.listener != NULL)
			g.listener->buf_size = g.buf_size; /* inherited by accepted connections */
		if (g.listener == NULL || uvs_conn_bind(g.listener, (uint32_t)listen_port) < 0 ||
				uvs_conn_listen(g.listener, 128) < 0) {
			fprintf(stderr, "uvsock-guest: cannot listen on %ld\n", listen_port);
			return 1;
		}
		printf("uvsock-guest: listening on %ld\n", listen_port);
		fflush(stdout);
	}
	next_stat = uvs_now_ns() + 1000000000ull;
	while (!stop && g.done_conns < g.want_conns) {
		unsigned int work;
		uint64_t now;

		/* connect mode: one connection at a time */
		if (connect_port >= 0 && started == g.done_conns) {
			struct uvs_conn *c = uvs_conn_create(g.eng, g.type, NULL);

			if (c == NULL || gconn_new(&g, c) == NULL)
				return 1;
			c->buf_size = g.buf_size;
			rc = uvs_conn_connect(c, &g.host, (uint32_t)connect_port, uvs_now_ns());
			if (rc < 0) {
				fprintf(stderr, "uvsock-guest: connect: %s\n", strerror(-rc));
				return 1;
			}
			started++;
		}
		work = poll_rx(&g);
		if (g.listener != NULL) {
			struct uvs_conn *child;

			while (uvs_conn_accept(g.listener, &child) == 0)
				; /* already served: accepting only frees the backlog */
		}
		work += poll_tx(&g);
		/* modes make progress after the engine's events */
		if (g.mode != G_SERVE) {
			struct uvs_peer *p = &g.host;
			struct uvs_conn *c, *next;

			for (c = LIST_FIRST(&p->conns); c != NULL; c = next) {
				next = LIST_NEXT(c, peer_link);
				if (c->sock != NULL)
					gconn_progress(&g, c->sock);
			}
		}
		if (g.mode == G_SERVE) {
			work += uvs_srv_poll(&g.srv); /* programs' writes, without their NOTIFY */
			if ((passes & (G_EPOLL_EVERY - 1)) == 0)
				work += serve_poll(&g, 0);
		}
		if (work > 0) {
			idle = 0;
		} else if (++idle >= G_IDLE_SPINS) {
			/* A timer wake-up with nothing new: one pass (for the timers), then back
			 * to sleep without spinning; anything else: spin before sleeping again. */
			idle = idle_sleep(&g) ? 0 : G_IDLE_SPINS - 1;
			if (g.mode == G_SERVE)
				serve_poll(&g, 0); /* what woke us */
			passes = 0;		   /* read the clock now: time went by */
		} else if (!no_yield && idle % G_YIELD_EVERY == 0) {
			sched_yield(); /* let the CPU's other processes run (see uvsockd) */
		}
		/* the clock every few passes only: reading it costs more than a pass */
		if ((passes++ & (G_CLOCK_EVERY - 1)) != 0)
			continue;
		now = uvs_now_ns();
		if (now >= next_tick) {
			uvs_engine_tick(g.eng, now);
			next_tick = now + 10000000ull;
		}
		if (stats && now >= next_stat) {
			printf("rx %.1f MiB/s tx %.1f MiB/s pkts rx %" PRIu64 " tx %" PRIu64
			       " kicks %" PRIu64 " sleeps %" PRIu64 "\n",
					(double)(g.rx_payload - last_rx) / 1048576.0,
					(double)(g.tx_payload - last_tx) / 1048576.0, g.rx_pkts,
					g.tx_pkts, g.kicks, g.sleeps);
			fflush(stdout);
			last_rx = g.rx_payload;
			last_tx = g.tx_payload;
			next_stat = now + 1000000000ull;
		}
	}
	if (g.mode == G_SERVE) {
		uvs_srv_stop(&g.srv);
		printf("uvsock-guest: %u socket(s) open at exit; packets rx %" PRIu64 " tx %" PRIu64
		       "\n",
				g.srv.nsocks_live, g.rx_pkts, g.tx_pkts);
		return 0;
	}
	/* Let the last packets (data, RST, replies) go out and the device take them: packets
	 * left in the tx ring are lost when we go, and the host then sees its connections
	 * reset before their last data, as from a VM that powered off (guestless-modes saw
	 * an echo's last bytes lost that way). Connections still open count too: one whose
	 * last bytes wait for the host's credit is on no transmit queue until the host reads
	 * (guestless-modes lost an echo's last bytes that way again, under load), and one
	 * closed by us waits for the host's close; a well-behaved host takes a few passes. */
	for (uint64_t until = uvs_now_ns() + G_EXIT_DRAIN_NS;
			(uvs_peer_tx_pending(&g.host) || g.ntx_free < G_QSIZE ||
					g.host.nconns > 0) &&
			uvs_now_ns() < until;) {
		poll_rx(&g);
		if (poll_tx(&g) == 0)
			usleep(G_EXIT_DRAIN_POLL_US);
	}
	printf("uvsock-guest: %u connection(s), %u failed; payload rx %" PRIu64 " tx %" PRIu64
	       " bytes\n",
			g.done_conns, g.failed, g.rx_payload, g.tx_payload);
	return g.failed == 0 && g.done_conns >= g.want_conns ? 0 : 1;
}
