/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * uvsock-hostile: a virtio-vsock guest that attacks its device (uvsockd). It attaches to a
 * vhost-user socket as QEMU (and uvsock-guest) would: guest memory in a memfd, split rings,
 * kick and call eventfds, SET_MEM_TABLE, GET_CONFIG for its CID. Then, instead of running the
 * protocol, it sends what --attack names (the list is in usage() and in attacks[]) for as long
 * as it runs: malformed descriptor chains, refused headers, protocol abuse, floods. Two
 * modes are not attacks but their well-behaved twins, the same load without the hostile part
 * (churn for credit, chatter for flood-credit-request), to compare the attacks' cost with.
 *
 * It also says what the device should have counted. On SIGUSR1 (or at the end of --seconds)
 * it stops attacking, waits until the device has returned every chain and the replies have
 * stopped, and prints
 *
 *   EXPECT_DELTA key=N ...   each telemetry counter of /uvsock/guest,CID that must have risen
 *                            by exactly N since the attack began ("prefix*" = their sum)
 *   EXPECT_NOW key=V ...     values the guest's telemetry must show now (the engine's drop_*
 *                            counters among them: they restart at every attach)
 *   INFO key=N ...           what it sent and received, for the record
 *
 * then stays attached, holding whatever state it built, until SIGTERM or SIGINT.
 * tests/hostile/test_hostile.sh compares these lines with uvsock-ss --guest CID --json.
 *
 * With --host-hold PORT it is instead a host program (libuvsock, UVSOCK_CONTROL): it listens
 * on PORT and accepts every connection (or none, with --no-accept) and never reads, closing
 * each connection only when it ends: the peer the connection attacks need.
 *
 * Implementation notes
 *
 * One thread. Rings: rx (queue 0) of H_RXQ buffers of H_RXBUF bytes, one descriptor each
 * (uvs_drvq's fixed mapping); tx (queue 1) of --txq descriptors, which the attacks lay out
 * themselves: a chain takes a contiguous run of descriptors (bitmap allocator), and its
 * header lives in the header slot of its first descriptor. At most H_OUTSTANDING_MAX
 * descriptors are in the device's hands at once, whatever the ring size.
 *
 * Pacing. By default the guest asks for no interrupts and looks at its rings every
 * --pace-us (500 us): the device finds a full tx ring at almost every pass, while the
 * attacker uses little CPU. On a test machine with two CPUs the attacker is a process next
 * to the daemon and the well-behaved guest, where in production it would be a VM on CPUs of
 * its own; burning a CPU (--pace-us 0) or being woken by an interrupt at every device pass
 * (--interrupts: a scheduler wake-up that preempts the daemon) measures that sharing rather
 * than the daemon.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "uvs_drvq.h"
#include "uvs_proto.h"
#include "uvs_srv.h"
#include "uvs_vhu.h"
#include "uvsock.h"

/* rx ring: Linux's 128 buffers. */
#define H_RXQ 128u
/* rx buffer: control replies need 44 bytes; data arrives in pieces of this size. */
#define H_RXBUF 4096u
/* tx ring (--txq): room for one 65-descriptor chain (too_many_segs) and a burst of others. */
#define H_TXQ_DEFAULT 1024u
/* Bytes reserved for the header of the chain that starts at each tx descriptor. */
#define H_HDR_SLOT 64u
/* Shared read-only payload area: more than 64 KiB, for the len_over_64k packets. */
#define H_PAYLOAD (UVS_MAX_PKT_PAYLOAD + 4096u)
/* Guest memory, at least: rings and buffers take under 1 MiB with the default tx ring; the
 * rest lets a chain of two descriptors inside guest memory be longer than the device's
 * 1 MiB chain limit. */
#define H_MEM_MIN (2u << 20)
/* One descriptor of the too_long chains: two of them pass UVS_CHAIN_MAX_BYTES. */
#define H_LONG_DESC (600u * 1024u)
/* Descriptors of the too_many_segs chain: one more than UVS_CHAIN_MAX_SEGS. */
#define H_MANY_SEGS (UVS_CHAIN_MAX_SEGS + 1u)
/* Receive buffer the guest advertises on its connections (Linux's default is 256 KiB; more
 * than H_RXQ * H_RXBUF, so a host writer can fill every rx buffer). */
#define H_BUF_ALLOC (1024u * 1024u)
/* First guest source port; every new REQUEST takes the next one. */
#define H_FIRST_PORT 40000u
/* Where flood-rst aims: ports nobody listens on or connects from in the tests. */
#define H_RST_PORT_BASE 0x40000000u
/* A port with no listener: its REQUESTs are answered with RST (no_conn_rst). */
#define H_CLOSED_PORT_DEFAULT 9u
/* Chains posted per loop pass, so replies are taken between bursts. */
#define H_STEP_MAX 64u
/* Descriptors in the device's hands at most: enough that it never finds the ring empty
 * between two looks, and few enough in a large ring (--txq 32768) that finding free ones
 * stays cheap for the attacker, whose CPU the daemon and the other guest share here. */
#define H_OUTSTANDING_MAX 1024u
/* Longest sleep on the call eventfds (the loop also looks at signals and deadlines). */
#define H_SLEEP_MS 10
/* Without --interrupts: the pause between two looks at the rings. The device takes at most
 * one refused chain per polling pass, a few hundred thousand a second, so H_OUTSTANDING_MAX
 * chains last longer than this and it always finds some; the attacker itself wakes 2000
 * times a second and uses under a tenth of a CPU. */
#define H_PACE_US_DEFAULT 500
/* Quiesce: the device must return every chain within this long... */
#define H_DRAIN_TIMEOUT_NS (5ull * 1000000000ull)
/* ...and replies are over once none came for this long. */
#define H_QUIET_NS (300ull * 1000000000ull / 1000ull)
/* overlap-rx: how long to wait for the device to write into the avail ring. */
#define H_BREAK_WAIT_NS (1000ull * 1000000ull)
/* overlap-rx: a round lasts at least this long, so the guest attaches again at most ten
 * times a second. Attaching as fast as the daemon lets it is the reattach attack. */
#define H_REATTACH_GAP_NS (100ull * 1000000ull)
/* A reply (RESPONSE, RST) later than this means the device is not answering. */
#define H_REPLY_TIMEOUT_NS (2ull * 1000000000ull)
/* Expectations one attack states at most. */
#define H_EXPECT_MAX 16
/* --host-hold: connections held at once (the daemon allows 4096 per guest). */
#define H_HOLD_MAX 8192u

struct expect {
	const char *key;
	uint64_t n;
};

struct hostile;

struct attack {
	const char *name;
	const char *what;
	bool needs_port;
	/* after attaching: set up buffers, start a connection */
	void (*start)(struct hostile *h);
	/* post up to room chains; @return chains posted */
	unsigned int (*step)(struct hostile *h, unsigned int room);
	/* a packet from the device (hdr, copied out; len bytes written in all) */
	void (*rx)(struct hostile *h, const struct uvs_hdr *hdr, uint32_t len);
	/* quiesced: add the expectations that depend on the replies */
	void (*report)(struct hostile *h);
};

struct hostile {
	const struct attack *a;
	const char *path;
	uint32_t port, closed_port;
	int vhu;
	uint8_t *mem;
	uint32_t cid;
	struct uvs_drvq rxq, txq;
	uint64_t rxring_gpa, txring_gpa, rxbuf_gpa, txhdr_gpa, payload_gpa;
	int kickfd[2], callfd[2];
	uint64_t mem_size;
	uint32_t txq_size;
	uint32_t desc_next; /* where desc_alloc() looks first */
	uint32_t ndesc_free;
	uint8_t desc_busy[UVS_VIRTQ_MAX_SIZE];	/* tx descriptor in use */
	uint16_t chain_len[UVS_VIRTQ_MAX_SIZE]; /* descriptors of the chain whose head this is */
	bool interrupts;			/* sleep on the call eventfds instead of pacing */
	unsigned int pace_us; /* otherwise: pause between two looks at the rings */
	bool norefill;	      /* stop giving rx buffers back */
	bool rx_starved;      /* the device has no rx buffer left (orphan RSTs pile up) */
	uint32_t next_port;   /* next source port */
	uint64_t last_rx_ns;  /* last packet from the device */
	unsigned int variant; /* round robin over an attack's variants */
	/* one connection (credit, churn, flood-credit-request, chatter, no-refill) */
	uint32_t conn_port;
	bool conn_up, conn_waiting;
	bool data_started; /* credit, churn: overrun_left is this connection's */
	bool rst_due;	   /* churn: the connection's data went out, its RST is next */
	uint32_t conn_buf_alloc;
	uint64_t conn_since_ns;
	/* overlap-rx: reattach rounds */
	bool broken_seen;
	uint64_t provoked_ns;
	/* what was sent and received */
	uint64_t chains, requests, listener_requests, responses, rsts, rst_expected, rst_received;
	uint64_t credit_updates, rw_bytes, rx_refused, overruns, rounds, failures;
	uint64_t overrun_left; /* credit: payload bytes still to send on this connection */
	/* credit: REQUESTs the device must still refuse after the last overrun
	 * (UVS_PEER_PENALTY_REQUESTS), and how many it did */
	uint32_t penalty_left, penalty_next; /* as the engine counts (doubling per overrun) */
	uint64_t penalized;
	const char *state; /* the guest's state the device should report ("running") */
	struct expect delta[H_EXPECT_MAX], now[H_EXPECT_MAX];
	unsigned int ndelta, nnow;
};

static volatile sig_atomic_t want_quiesce, want_exit;

static void
on_signal(int sig)
{
	if (sig == SIGUSR1)
		want_quiesce = 1;
	else
		want_exit = 1;
}

static void
expect_add(struct expect *e, unsigned int *n, const char *key, uint64_t v)
{
	for (unsigned int i = 0; i < *n; i++) {
		if (strcmp(e[i].key, key) == 0) {
			e[i].n += v;
			return;
		}
	}
	if (*n < H_EXPECT_MAX)
		e[(*n)++] = (struct expect){ .key = key, .n = v };
}

/*
 * The counter key must rise by v (v may be 0: listed, so it is checked). The engine's drop
 * counters (drop_*) start from zero at every attach, so they are expected as they are now,
 * for the current attach; the daemon's own (guest_drop_*, bad_header_*, bad_chain_*) add up
 * over its life, so they are expected to have risen by this much.
 */
static void
expect(struct hostile *h, const char *key, uint64_t v)
{
	if (strncmp(key, "drop_", 5) == 0)
		expect_add(h->now, &h->nnow, key, v);
	else
		expect_add(h->delta, &h->ndelta, key, v);
}

static void
expect_now(struct hostile *h, const char *key, uint64_t v)
{
	expect_add(h->now, &h->nnow, key, v);
}

/* --- guest memory and vhost-user --- */

static void kick(struct hostile *h, unsigned int q);

static size_t
ring_bytes(uint16_t size)
{
	return (uvs_drvq_bytes(size) + 4095) & ~(size_t)4095;
}

/* Attach as a fresh guest: new memory, rings and eventfds. @return 0 or -errno. */
static int
guest_attach(struct hostile *h)
{
	struct uvs_vhu_region r;
	uint64_t feat, pfeat, want, cid;
	int memfd, rc;

	h->rxring_gpa = 0;
	h->txring_gpa = ring_bytes(H_RXQ);
	h->rxbuf_gpa = h->txring_gpa + ring_bytes((uint16_t)h->txq_size);
	h->txhdr_gpa = h->rxbuf_gpa + (uint64_t)H_RXQ * H_RXBUF;
	h->payload_gpa = h->txhdr_gpa + (uint64_t)h->txq_size * H_HDR_SLOT;
	h->mem_size = (h->payload_gpa + H_PAYLOAD + H_MEM_MIN - 1) & ~((uint64_t)H_MEM_MIN - 1);
	memfd = memfd_create("uvsock-hostile", MFD_CLOEXEC);
	if (memfd < 0)
		return -errno;
	if (ftruncate(memfd, h->mem_size) < 0) {
		rc = -errno;
		close(memfd);
		return rc;
	}
	h->mem = mmap(NULL, h->mem_size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (h->mem == MAP_FAILED) {
		rc = -errno;
		close(memfd);
		return rc;
	}
	h->vhu = uvs_vhu_connect(h->path);
	rc = h->vhu < 0 ? h->vhu : uvs_vhu_get_u64(h->vhu, UVS_VHU_GET_FEATURES, &feat);
	if (rc == 0 && !(feat & (1ull << UVS_VHU_F_PROTOCOL_FEATURES)))
		rc = -EPROTONOSUPPORT; /* uvsockd offers it; GET_CONFIG needs it */
	if (rc == 0)
		rc = uvs_vhu_get_u64(h->vhu, UVS_VHU_GET_PROTOCOL_FEATURES, &pfeat);
	if (rc == 0)
		rc = uvs_vhu_set_u64(h->vhu, UVS_VHU_SET_PROTOCOL_FEATURES,
				pfeat & (1ull << UVS_VHU_PROTOCOL_F_CONFIG));
	if (rc == 0)
		rc = uvs_vhu_send(h->vhu, UVS_VHU_SET_OWNER, NULL, 0, NULL, 0);
	if (rc == 0)
		rc = uvs_vhu_get_config(h->vhu, 0, &cid, sizeof(cid));
	/* STREAM only: no SEQPACKET feature */
	want = (1ull << UVS_VIRTIO_F_VERSION_1) | (1ull << UVS_VHU_F_PROTOCOL_FEATURES);
	if (rc == 0)
		rc = uvs_vhu_set_u64(h->vhu, UVS_VHU_SET_FEATURES, want & feat);
	r = (struct uvs_vhu_region){
		.size = h->mem_size, .uaddr = (uint64_t)(uintptr_t)h->mem, .fd = memfd
	};
	if (rc == 0)
		rc = uvs_vhu_set_mem_table(h->vhu, &r, 1);
	close(memfd);
	if (rc < 0)
		return rc;
	h->cid = (uint32_t)cid;
	for (unsigned int q = 0; q < 2; q++) {
		struct uvs_drvq *dq = q == UVS_VQ_RX ? &h->rxq : &h->txq;
		uint64_t gpa = q == UVS_VQ_RX ? h->rxring_gpa : h->txring_gpa;
		struct uvs_vhu_vring v;

		rc = uvs_drvq_init(dq, h->mem + gpa, gpa,
				(uint16_t)(q == UVS_VQ_RX ? H_RXQ : h->txq_size));
		if (rc < 0)
			return rc;
		h->kickfd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		h->callfd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (h->kickfd[q] < 0 || h->callfd[q] < 0)
			return -errno;
		v = (struct uvs_vhu_vring){ .num = dq->size,
			.desc_uaddr = (uint64_t)(uintptr_t)dq->desc,
			.avail_uaddr = (uint64_t)(uintptr_t)dq->avail,
			.used_uaddr = (uint64_t)(uintptr_t)dq->used,
			.kickfd = h->kickfd[q],
			.callfd = h->callfd[q] };
		rc = uvs_vhu_set_vring(h->vhu, q, &v, true);
		if (rc < 0)
			return rc;
	}
	for (unsigned int i = 0; i < H_RXQ; i++) {
		uvs_drvq_set_buf(&h->rxq, (uint16_t)i, h->rxbuf_gpa + (uint64_t)i * H_RXBUF,
				H_RXBUF, true);
		uvs_drvq_post(&h->rxq, (uint16_t)i);
	}
	memset(h->desc_busy, 0, sizeof(h->desc_busy));
	h->ndesc_free = h->txq_size;
	h->desc_next = 0;
	memset(h->mem + h->payload_gpa, 0xa5, H_PAYLOAD);
	h->norefill = false;
	h->rx_starved = false;
	if (h->a->start != NULL)
		h->a->start(h); /* before the device sees the rx buffers */
	uvs_drvq_set_interrupts(&h->rxq, h->interrupts);
	uvs_drvq_set_interrupts(&h->txq, h->interrupts);
	if (uvs_drvq_publish(&h->rxq))
		kick(h, UVS_VQ_RX);
	return 0;
}

/* Tell the device about new avail entries (it asked for kicks). */
static void
kick(struct hostile *h, unsigned int q)
{
	uint64_t one = 1;

	(void)!write(h->kickfd[q], &one, sizeof(one));
}

static void
guest_detach(struct hostile *h)
{
	/* closing the vhost-user connection makes the device stop and detach the guest */
	if (h->vhu >= 0)
		close(h->vhu);
	h->vhu = -1;
	for (int q = 0; q < 2; q++) {
		if (h->kickfd[q] >= 0)
			close(h->kickfd[q]);
		if (h->callfd[q] >= 0)
			close(h->callfd[q]);
		h->kickfd[q] = h->callfd[q] = -1;
	}
	if (h->mem != NULL && h->mem != MAP_FAILED)
		munmap(h->mem, h->mem_size);
	h->mem = NULL;
}

/* --- tx chains --- */

/* n contiguous free descriptors (next fit): @return the first, or -ENOSPC. */
static int
desc_alloc(struct hostile *h, unsigned int n)
{
	unsigned int run = 0;

	for (uint32_t k = 0; k < h->txq_size + n; k++) {
		uint32_t i = (h->desc_next + k) % h->txq_size;

		if (i == 0)
			run = 0; /* a chain's descriptors do not wrap around the table */
		run = h->desc_busy[i] ? 0 : run + 1;
		if (run == n) {
			uint32_t head = i + 1 - n;

			memset(h->desc_busy + head, 1, n);
			h->chain_len[head] = (uint16_t)n;
			h->desc_next = (i + 1) % h->txq_size;
			h->ndesc_free -= n;
			return (int)head;
		}
	}
	return -ENOSPC;
}

static void
desc_set(struct hostile *h, unsigned int i, uint64_t gpa, uint32_t len, uint16_t flags,
		unsigned int next)
{
	h->txq.desc[i] = (struct uvs_vring_desc){
		.addr = gpa, .len = len, .flags = flags, .next = (uint16_t)next
	};
}

/* A header from this guest to the host; the caller changes what it attacks with. */
static struct uvs_hdr
hdr_make(const struct hostile *h, uint16_t op, uint32_t src_port, uint32_t dst_port)
{
	return (struct uvs_hdr){ .src_cid = h->cid,
		.dst_cid = UVS_CID_HOST,
		.src_port = src_port,
		.dst_port = dst_port,
		.type = UVS_TYPE_STREAM,
		.op = op,
		.buf_alloc = H_BUF_ALLOC };
}

static uint64_t
hdr_gpa(const struct hostile *h, unsigned int head)
{
	return h->txhdr_gpa + (uint64_t)head * H_HDR_SLOT;
}

static void
post(struct hostile *h, unsigned int head)
{
	uvs_drvq_post(&h->txq, (uint16_t)head);
	h->chains++;
}

/*
 * Send hdr with payload bytes present after it (from the payload area): one descriptor
 * for the header, one for the payload. @return 0, or -ENOSPC when the ring is full.
 */
static int
send_pkt(struct hostile *h, const struct uvs_hdr *hdr, uint32_t payload)
{
	int head = desc_alloc(h, payload > 0 ? 2 : 1);

	if (head < 0)
		return head;
	memcpy(h->mem + hdr_gpa(h, (unsigned int)head), hdr, sizeof(*hdr));
	if (payload > 0) {
		desc_set(h, (unsigned int)head, hdr_gpa(h, (unsigned int)head), UVS_HDR_SIZE,
				UVS_VRING_DESC_F_NEXT, (unsigned int)head + 1);
		desc_set(h, (unsigned int)head + 1, h->payload_gpa, payload, 0, 0);
	} else {
		desc_set(h, (unsigned int)head, hdr_gpa(h, (unsigned int)head), UVS_HDR_SIZE, 0, 0);
	}
	post(h, (unsigned int)head);
	return 0;
}

/* A REQUEST from a new source port. @return 0 or -ENOSPC. */
static int
send_request(struct hostile *h, uint32_t dst_port, uint32_t *src_port)
{
	struct uvs_hdr hdr = hdr_make(h, UVS_OP_REQUEST, h->next_port, dst_port);
	int rc = send_pkt(h, &hdr, 0);

	if (rc == 0) {
		if (src_port != NULL)
			*src_port = h->next_port;
		h->next_port++;
		h->requests++;
	}
	return rc;
}

/* A packet refused without a connection is answered with an RST (Linux's rule, except for
 * an RST): count it so that the quiesced report can account for every reply. */
static int
send_refused(struct hostile *h, const struct uvs_hdr *hdr, const char *reason)
{
	int rc = send_pkt(h, hdr, 0);

	if (rc == 0) {
		expect(h, reason, 1);
		if (hdr->op != UVS_OP_RST)
			h->rst_expected++;
	}
	return rc;
}

/* Post a chain the device must refuse: counted by reason and in its total. */
static void
post_bad(struct hostile *h, unsigned int head, const char *reason, const char *total)
{
	post(h, head);
	expect(h, reason, 1);
	expect(h, total, 1);
}

/* Send a packet whose header the device must refuse (bad_header_<reason>). */
static int
send_bad_header(struct hostile *h, const struct uvs_hdr *hdr, uint32_t payload, const char *reason)
{
	int rc = send_pkt(h, hdr, payload);

	if (rc == 0) {
		expect(h, reason, 1);
		expect(h, "guest_drop_bad_header", 1);
	}
	return rc;
}

/* Descriptors the device returned: free their chains. @return entries taken. */
static unsigned int
tx_service(struct hostile *h)
{
	unsigned int n = 0;
	uint16_t id;
	uint32_t len;
	int rc;

	while ((rc = uvs_drvq_take(&h->txq, &id, &len)) == 1) {
		if (!h->desc_busy[id] || h->chain_len[id] == 0) {
			fprintf(stderr, "uvsock-hostile: the device returned tx id %u, not a head\n",
					id);
			exit(1);
		}
		memset(h->desc_busy + id, 0, h->chain_len[id]);
		h->ndesc_free += h->chain_len[id];
		h->chain_len[id] = 0;
		n++;
	}
	if (rc < 0) {
		fprintf(stderr, "uvsock-hostile: the device wrote a bad tx used entry\n");
		exit(1);
	}
	return n;
}

/* Packets from the device. @return entries taken. */
static unsigned int
rx_service(struct hostile *h)
{
	unsigned int n = 0;
	uint16_t id;
	uint32_t len;
	int rc;

	while ((rc = uvs_drvq_take(&h->rxq, &id, &len)) == 1) {
		/* where this buffer really is (overlap-rx moves it into the ring) */
		uint64_t gpa = h->rxq.desc[id].addr;
		struct uvs_hdr hdr;

		n++;
		h->last_rx_ns = uvs_now_ns();
		if (len == 0) {
			h->rx_refused++; /* returned unused: the device refused the buffer */
		} else if (len >= UVS_HDR_SIZE && gpa <= h->mem_size - UVS_HDR_SIZE) {
			memcpy(&hdr, h->mem + gpa, sizeof(hdr));
			if (hdr.op == UVS_OP_RST) {
				h->rsts++;
				if (!h->conn_up || hdr.dst_port != h->conn_port)
					h->rst_received++;
			} else if (hdr.op == UVS_OP_CREDIT_UPDATE) {
				h->credit_updates++;
			} else if (hdr.op == UVS_OP_RW) {
				h->rw_bytes += hdr.len;
			}
			if (h->a->rx != NULL)
				h->a->rx(h, &hdr, len);
		}
		if (!h->norefill)
			uvs_drvq_post(&h->rxq, id);
	}
	if (rc < 0) {
		fprintf(stderr, "uvsock-hostile: the device wrote a bad rx used entry\n");
		exit(1);
	}
	if (n > 0 && !h->norefill && uvs_drvq_publish(&h->rxq))
		kick(h, UVS_VQ_RX);
	return n;
}

/* Nothing to do now: wait for the device, on its interrupts or by pacing. */
static void
sleep_on_calls(struct hostile *h)
{
	struct pollfd pfd[2] = { { .fd = h->callfd[0], .events = POLLIN },
		{ .fd = h->callfd[1], .events = POLLIN } };
	uint64_t v;

	if (!h->interrupts) {
		if (h->pace_us > 0)
			usleep(h->pace_us);
		return;
	}
	if (poll(pfd, 2, H_SLEEP_MS) > 0)
		for (int i = 0; i < 2; i++)
			(void)!read(h->callfd[i], &v, sizeof(v));
}

static unsigned int
tx_room(const struct hostile *h)
{
	uint32_t busy = h->txq_size - h->ndesc_free;

	return busy >= H_OUTSTANDING_MAX ? 0 : H_OUTSTANDING_MAX - busy;
}

/* --- the attacks --- */

/* Chains that visit descriptors for ever: a two-descriptor cycle and a self loop. Their
 * descriptors are empty, so the walk hits the loop bound, not the segment limit. */
static unsigned int
loop_step(struct hostile *h, unsigned int room)
{
	unsigned int n;

	for (n = 0; n < room; n++) {
		bool self = h->variant++ % 2 == 0;
		int head = desc_alloc(h, self ? 1 : 2);

		if (head < 0)
			break;
		if (self) {
			desc_set(h, (unsigned int)head, 0, 0, UVS_VRING_DESC_F_NEXT,
					(unsigned int)head);
		} else {
			desc_set(h, (unsigned int)head, 0, 0, UVS_VRING_DESC_F_NEXT,
					(unsigned int)head + 1);
			desc_set(h, (unsigned int)head + 1, 0, 0, UVS_VRING_DESC_F_NEXT,
					(unsigned int)head);
		}
		post_bad(h, (unsigned int)head, "bad_chain_loop", "guest_drop_malformed_chain");
	}
	return n;
}

/* Descriptors outside guest memory: just past its end, straddling it, wrapping around
 * 2^64, and a good header whose payload descriptor is outside. */
static unsigned int
bad_addr_step(struct hostile *h, unsigned int room)
{
	unsigned int n;

	for (n = 0; n < room; n++) {
		unsigned int v = h->variant++ % 4;
		int head = desc_alloc(h, v == 3 ? 2 : 1);
		struct uvs_hdr hdr = hdr_make(h, UVS_OP_RW, h->next_port, h->port);

		if (head < 0)
			break;
		switch (v) {
		case 0:
			desc_set(h, (unsigned int)head, h->mem_size, UVS_HDR_SIZE, 0, 0);
			break;
		case 1:
			desc_set(h, (unsigned int)head, h->mem_size - 16, UVS_HDR_SIZE, 0, 0);
			break;
		case 2:
			desc_set(h, (unsigned int)head, UINT64_MAX - 15, UVS_HDR_SIZE, 0, 0);
			break;
		default:
			hdr.len = 4096;
			memcpy(h->mem + hdr_gpa(h, (unsigned int)head), &hdr, sizeof(hdr));
			desc_set(h, (unsigned int)head, hdr_gpa(h, (unsigned int)head),
					UVS_HDR_SIZE, UVS_VRING_DESC_F_NEXT,
					(unsigned int)head + 1);
			desc_set(h, (unsigned int)head + 1, (uint64_t)h->mem_size * 4096, 4096, 0,
					0);
			break;
		}
		post_bad(h, (unsigned int)head, "bad_chain_bad_addr", "guest_drop_malformed_chain");
	}
	return n;
}

/* tx buffers that are the tx ring itself: the descriptor table, the avail ring, the used
 * ring (which the device writes while it reads the "packet"). What the header says then
 * depends on the ring's contents, so the refusal reason varies; each one is refused. */
static unsigned int
overlap_tx_step(struct hostile *h, unsigned int room)
{
	const struct uvs_drvq *q = &h->txq;
	unsigned int n;

	for (n = 0; n < room; n++) {
		int head = desc_alloc(h, 1);
		uint64_t gpa, len;

		if (head < 0)
			break;
		switch (h->variant++ % 3) {
		case 0:
			gpa = q->desc_gpa;
			len = (uint64_t)h->txq_size * sizeof(struct uvs_vring_desc);
			break;
		case 1:
			gpa = q->avail_gpa;
			len = q->used_gpa - q->avail_gpa;
			break;
		default:
			gpa = q->used_gpa;
			len = 4 + (uint64_t)h->txq_size * sizeof(struct uvs_vring_used_elem);
			break;
		}
		desc_set(h, (unsigned int)head, gpa, (uint32_t)len, 0, 0);
		post_bad(h, (unsigned int)head, "bad_header_*", "guest_drop_bad_header");
	}
	return n;
}

/* REQUESTs to a port nobody listens on: one RST each (no_conn_rst). */
static unsigned int
closed_request_step(struct hostile *h, unsigned int room)
{
	unsigned int n;

	for (n = 0; n < room; n++) {
		struct uvs_hdr hdr = hdr_make(h, UVS_OP_REQUEST, h->next_port, h->closed_port);

		if (send_refused(h, &hdr, "drop_no_conn_rst") < 0)
			break;
		h->next_port++;
		h->requests++;
	}
	return n;
}

/* rx buffers that are the rx avail ring: the device's first reply overwrites the ring's
 * index, the next pop finds it impossible and stops the guest's queues (rings_broken). The
 * guest then attaches again (a new vhost-user connection) and repeats. */
static void
overlap_rx_start(struct hostile *h)
{
	for (unsigned int i = 0; i < H_RXQ; i++)
		uvs_drvq_set_buf(&h->rxq, (uint16_t)i, h->rxq.avail_gpa,
				(uint32_t)(h->rxq.used_gpa - h->rxq.avail_gpa), true);
	h->broken_seen = false;
	h->provoked_ns = 0;
	h->state = "running";
}

/* The round is over (the device wrote into the ring, or never will). */
static void
overlap_rx_finish(struct hostile *h)
{
	if (!h->broken_seen)
		h->failures++; /* the device never wrote the reply */
	h->rounds++;
	h->provoked_ns = 0;
	expect(h, "guest_drop_rings_broken", 1);
}

static unsigned int
overlap_rx_step(struct hostile *h, unsigned int room)
{
	int rc;

	if (h->provoked_ns == 0) {
		/* two replies: the first corrupts the ring, the second finds it corrupt */
		if (room < 2 || closed_request_step(h, 2) < 2)
			return 0;
		h->provoked_ns = uvs_now_ns();
		return 2;
	}
	if (h->txq.posted != 0 ||
			uvs_now_ns() - h->provoked_ns <
					(h->broken_seen ? H_REATTACH_GAP_NS : H_BREAK_WAIT_NS))
		return 0;
	overlap_rx_finish(h);
	/* A new attach: the engine's counters and queue start again (the second RST of the
	 * round waited in that queue and goes with it). */
	h->nnow = 0;
	h->rst_expected = h->rst_received = 0;
	guest_detach(h);
	rc = guest_attach(h);
	if (rc < 0) {
		fprintf(stderr, "uvsock-hostile: cannot attach again: %s\n", strerror(-rc));
		exit(1);
	}
	overlap_rx_start(h);
	return 1;
}

/* A VMM that attaches the guest again and again, as fast as the daemon lets it: each time a
 * new vhost-user connection, memory table and rings (nothing else is sent). */
static void
reattach_start(struct hostile *h)
{
	if (h->rounds == 0 && h->ndelta == 0)
		expect(h, "vhost_user_connections", 1); /* the first attach */
}

static unsigned int
reattach_step(struct hostile *h, unsigned int room)
{
	int rc;

	(void)room;
	h->nnow = 0; /* the engine's counters start again with each attach */
	guest_detach(h);
	rc = guest_attach(h);
	if (rc < 0) {
		fprintf(stderr, "uvsock-hostile: cannot attach again: %s\n", strerror(-rc));
		exit(1);
	}
	h->rounds++;
	expect(h, "vhost_user_connections", 1);
	return 0;
}

static void
overlap_rx_rx(struct hostile *h, const struct uvs_hdr *hdr, uint32_t len)
{
	(void)hdr;
	(void)len;
	h->broken_seen = true; /* written into the avail ring */
	h->state = "broken";
	h->norefill = true;   /* the ring is garbage now: never post again */
	h->rx_starved = true; /* the device will not take another buffer */
}

static void
overlap_rx_report(struct hostile *h)
{
	if (h->provoked_ns != 0)
		overlap_rx_finish(h); /* the last round, interrupted by the report */
}

/* Write-only descriptors where the device must read: a tx chain with only a writable
 * descriptor (no header to read), and one with a readable descriptor after a writable one. */
static unsigned int
tx_writable_step(struct hostile *h, unsigned int room)
{
	unsigned int n;

	for (n = 0; n < room; n++) {
		bool order = h->variant++ % 2 == 1;
		int head = desc_alloc(h, order ? 2 : 1);
		struct uvs_hdr hdr = hdr_make(h, UVS_OP_REQUEST, h->next_port, h->closed_port);

		if (head < 0)
			break;
		memcpy(h->mem + hdr_gpa(h, (unsigned int)head), &hdr, sizeof(hdr));
		if (order) {
			desc_set(h, (unsigned int)head, hdr_gpa(h, (unsigned int)head),
					UVS_HDR_SIZE,
					UVS_VRING_DESC_F_WRITE | UVS_VRING_DESC_F_NEXT,
					(unsigned int)head + 1);
			desc_set(h, (unsigned int)head + 1, h->payload_gpa, 64, 0, 0);
			post_bad(h, (unsigned int)head, "bad_chain_order",
					"guest_drop_malformed_chain");
		} else {
			desc_set(h, (unsigned int)head, hdr_gpa(h, (unsigned int)head),
					UVS_HDR_SIZE, UVS_VRING_DESC_F_WRITE, 0);
			post_bad(h, (unsigned int)head, "bad_header_short_header",
					"guest_drop_bad_header");
		}
	}
	return n;
}

/* Read-only rx buffers: the device must refuse to write into them. REQUESTs to a closed
 * port make it want to (one RST each). */
static void
rx_readable_start(struct hostile *h)
{
	for (unsigned int i = 0; i < H_RXQ; i++)
		uvs_drvq_set_buf(&h->rxq, (uint16_t)i, h->rxbuf_gpa + (uint64_t)i * H_RXBUF,
				H_RXBUF, false);
	h->rx_starved = true; /* no usable buffer, ever */
}

static void
rx_readable_rx(struct hostile *h, const struct uvs_hdr *hdr, uint32_t len)
{
	(void)hdr;
	(void)len;
	h->failures++; /* the device wrote into a read-only buffer */
}

static void
rx_readable_report(struct hostile *h)
{
	expect(h, "bad_chain_order", h->rx_refused);
	expect(h, "guest_drop_malformed_chain", h->rx_refused);
}

/* Chains the device must not follow to the end: 65 segments, two descriptors of 600 KiB
 * (inside guest memory), and one descriptor of 4 GiB - 1. */
static unsigned int
long_chain_step(struct hostile *h, unsigned int room)
{
	unsigned int n;

	for (n = 0; n < room; n++) {
		unsigned int v = h->variant++ % 3;
		int head = desc_alloc(h, v == 0 ? H_MANY_SEGS : v == 1 ? 2 : 1);

		if (head < 0)
			break;
		if (v == 0) {
			for (unsigned int i = 0; i < H_MANY_SEGS; i++)
				desc_set(h, (unsigned int)head + i, hdr_gpa(h, (unsigned int)head),
						16, i + 1 < H_MANY_SEGS ? UVS_VRING_DESC_F_NEXT : 0,
						(unsigned int)head + i + 1);
		} else if (v == 1) {
			desc_set(h, (unsigned int)head, 0, H_LONG_DESC, UVS_VRING_DESC_F_NEXT,
					(unsigned int)head + 1);
			desc_set(h, (unsigned int)head + 1, 0, H_LONG_DESC, 0, 0);
		} else {
			desc_set(h, (unsigned int)head, 0, UINT32_MAX, 0, 0);
		}
		post_bad(h, (unsigned int)head,
				v == 0 ? "bad_chain_too_many_segs" : "bad_chain_too_long",
				"guest_drop_malformed_chain");
	}
	return n;
}

/* Misaddressed REQUESTs: another source CID (also one that differs only above bit 31),
 * and destinations other than the host (the local CID, another guest, the 64-bit twin). */
static unsigned int
bad_cid_step(struct hostile *h, unsigned int room)
{
	unsigned int n;

	for (n = 0; n < room; n++) {
		struct uvs_hdr hdr = hdr_make(h, UVS_OP_REQUEST, h->next_port, h->port);
		const char *why = "bad_header_bad_src_cid";

		switch (h->variant++ % 5) {
		case 0:
			hdr.src_cid = h->cid + 1;
			break;
		case 1:
			hdr.src_cid = h->cid | (1ull << 32);
			break;
		case 2:
			hdr.dst_cid = UVS_CID_LOCAL;
			why = "bad_header_bad_dst_cid";
			break;
		case 3:
			hdr.dst_cid = h->cid + 1;
			why = "bad_header_bad_dst_cid";
			break;
		default:
			hdr.dst_cid = UVS_CID_HOST | (1ull << 32);
			why = "bad_header_bad_dst_cid";
			break;
		}
		if (send_bad_header(h, &hdr, 0, why) < 0)
			break;
		h->next_port++;
	}
	return n;
}

/* Unknown types (0, 3, 0xffff) and a SEQPACKET REQUEST to a STREAM listener: bad_type;
 * unknown ops (INVALID, 8, 0xffff) to a listener: unexpected_op. Every one gets an RST. */
static unsigned int
bad_type_op_step(struct hostile *h, unsigned int room)
{
	static const uint16_t types[] = { 0, 3, 0xffff, UVS_TYPE_SEQPACKET };
	static const uint16_t ops[] = { UVS_OP_INVALID, UVS_OP_CREDIT_REQUEST + 1, 0xffff };
	unsigned int n;

	for (n = 0; n < room; n++) {
		struct uvs_hdr hdr = hdr_make(h, UVS_OP_REQUEST, h->next_port, h->port);
		unsigned int v = h->variant++ % 7;
		const char *why = "drop_bad_type";

		if (v < 4) {
			hdr.type = types[v];
		} else {
			hdr.op = ops[v - 4];
			why = "drop_unexpected_op";
		}
		if (send_refused(h, &hdr, why) < 0)
			break;
		h->next_port++;
	}
	return n;
}

/* Lengths that lie: more than the chain carries, more than 64 KiB (with the bytes present),
 * 4 GiB - 1, and payload on a REQUEST. */
static unsigned int
bad_len_step(struct hostile *h, unsigned int room)
{
	unsigned int n;

	for (n = 0; n < room; n++) {
		struct uvs_hdr hdr = hdr_make(h, UVS_OP_RW, h->next_port, h->port);
		uint32_t present;
		const char *why;

		switch (h->variant++ % 4) {
		case 0:
			present = 100;
			hdr.len = present + 1;
			why = "bad_header_len_over_buffer";
			break;
		case 1:
			present = UVS_MAX_PKT_PAYLOAD + 1;
			hdr.len = present;
			why = "bad_header_len_over_64k";
			break;
		case 2:
			present = 16;
			hdr.len = UINT32_MAX;
			why = "bad_header_len_over_64k";
			break;
		default:
			present = 16;
			hdr.op = UVS_OP_REQUEST;
			hdr.len = present;
			why = "bad_header_payload_on_control_op";
			break;
		}
		if (send_bad_header(h, &hdr, present, why) < 0)
			break;
		h->next_port++;
	}
	return n;
}

/* Connections to a listener that does not read, each carrying the credit the host gave
 * (buf_alloc of its RESPONSE) in 64 KiB packets, then, with overrun, one byte more: the
 * packet that carries it overruns and the host resets the connection; without, the guest
 * closes it with an RST. Then again on a new connection. */
static unsigned int
data_conn_step(struct hostile *h, unsigned int room, bool overrun)
{
	unsigned int n;

	if (h->conn_waiting) {
		/* for the RESPONSE, or after the overrun for the RST */
		if (uvs_now_ns() - h->conn_since_ns > H_REPLY_TIMEOUT_NS) {
			h->failures++;
			h->conn_waiting = h->conn_up = false;
		}
		return 0;
	}
	if (!h->conn_up) {
		/* churn: as credit waits for the RST, wait for the device to take the last one */
		if (h->txq.posted > 0 || send_request(h, h->port, &h->conn_port) < 0)
			return 0;
		h->listener_requests++;
		h->conn_waiting = true;
		h->conn_since_ns = uvs_now_ns();
		h->data_started = false;
		return 1;
	}
	if (h->rst_due) {
		struct uvs_hdr hdr = hdr_make(h, UVS_OP_RST, h->conn_port, h->port);

		if (send_pkt(h, &hdr, 0) < 0)
			return 0;
		h->rst_due = h->conn_up = false;
		return 1;
	}
	if (!h->data_started) {
		/* the credit is known now, from the RESPONSE */
		h->overrun_left = (uint64_t)h->conn_buf_alloc + (overrun ? 1 : 0);
		h->data_started = true;
	}
	for (n = 0; n < room && h->overrun_left > 0; n++) {
		struct uvs_hdr hdr = hdr_make(h, UVS_OP_RW, h->conn_port, h->port);

		hdr.len = overrun || h->overrun_left > UVS_MAX_PKT_PAYLOAD
					  ? UVS_MAX_PKT_PAYLOAD
					  : (uint32_t)h->overrun_left;
		if (send_pkt(h, &hdr, hdr.len) < 0)
			break;
		h->overrun_left = hdr.len >= h->overrun_left ? 0 : h->overrun_left - hdr.len;
	}
	if (h->overrun_left > 0)
		return n;
	h->rounds++;
	if (overrun) {
		h->overruns++;
		/* every connection of this attack overruns: the penalty only doubles */
		h->penalty_next = uvs_peer_penalty_after(h->penalty_next);
		h->penalty_left = h->penalty_next;
		expect(h, "drop_credit_overrun", 1);
		h->conn_waiting = true;
		h->conn_since_ns = uvs_now_ns();
	} else {
		h->rst_due = true; /* at the next pass: the data may have filled the ring */
	}
	return n;
}

static unsigned int
credit_step(struct hostile *h, unsigned int room)
{
	return data_conn_step(h, room, true);
}

static unsigned int
churn_step(struct hostile *h, unsigned int room)
{
	return data_conn_step(h, room, false);
}

/* The reply to this guest's one connection (credit, flood-credit-request, no-refill). */
static void
conn_rx(struct hostile *h, const struct uvs_hdr *hdr, uint32_t len)
{
	(void)len;
	if (hdr->dst_port != h->conn_port || !h->conn_waiting)
		return;
	if (hdr->op == UVS_OP_RESPONSE && !h->conn_up) {
		h->responses++;
		h->conn_up = true;
		h->conn_waiting = false;
		h->conn_buf_alloc = hdr->buf_alloc;
		if (h->penalty_left > 0) {
			h->failures++; /* served while it should have been refused */
			h->penalty_left = 0;
		}
	} else if (hdr->op == UVS_OP_RST) {
		if (!h->conn_up && h->penalty_left > 0) {
			h->penalty_left--;
			h->penalized++;
			h->rst_expected++; /* an RST for no connection, as any refusal */
			expect(h, "drop_penalty", 1);
		} else if (!h->conn_up) {
			h->failures++; /* refused */
		}
		h->conn_up = false;
		h->conn_waiting = false;
	}
}

/* The one connection is still there, unless it was just reset. */
static void
conn_report(struct hostile *h)
{
	expect_now(h, "connections", h->conn_up ? 1 : 0);
	if (h->a->step == credit_step) {
		/* every connection overran, so nothing halved it: the engine's state is ours */
		expect_now(h, "penalty", h->penalty_left);
		expect_now(h, "penalty_next", h->penalty_next);
	}
}

/* Queued, unaccepted connections and no-listener REQUESTs at once: REQUESTs alternately to
 * a listener that never accepts (its backlog fills: backlog_full) and to a closed port. */
static unsigned int
flood_request_step(struct hostile *h, unsigned int room)
{
	unsigned int n;

	for (n = 0; n < room; n++) {
		if (h->variant++ % 2 == 0) {
			if (send_request(h, h->port, NULL) < 0)
				break;
			h->listener_requests++;
		} else if (closed_request_step(h, 1) == 0) {
			break;
		}
	}
	return n;
}

static void
count_responses_rx(struct hostile *h, const struct uvs_hdr *hdr, uint32_t len)
{
	(void)len;
	if (hdr->op == UVS_OP_RESPONSE)
		h->responses++;
}

/* Listener REQUESTs beyond what it took were refused by `reason`, each with an RST. */
static void
listener_report(struct hostile *h, const char *reason)
{
	uint64_t refused = h->listener_requests - h->responses;

	expect(h, reason, refused);
	h->rst_expected += refused;
	expect_now(h, "connections", h->responses);
}

static void
flood_request_report(struct hostile *h)
{
	listener_report(h, "drop_backlog_full");
}

/* RSTs for connections that do not exist: dropped without a reply. */
static unsigned int
flood_rst_step(struct hostile *h, unsigned int room)
{
	unsigned int n;

	for (n = 0; n < room; n++) {
		uint32_t r = (uint32_t)h->variant++ * 2654435761u; /* spread over the ports */
		struct uvs_hdr hdr = hdr_make(h, UVS_OP_RST, H_RST_PORT_BASE + (r >> 8),
				H_RST_PORT_BASE + (r & 0xffffff));

		if (send_refused(h, &hdr, "drop_rst_no_conn") < 0)
			break;
	}
	return n;
}

/* A connection to the host, opened once and kept (flood-credit-request, chatter,
 * no-refill). */
static unsigned int
conn_open_step(struct hostile *h)
{
	if (h->conn_up || h->conn_waiting)
		return 0;
	if (send_request(h, h->port, &h->conn_port) < 0)
		return 0;
	h->listener_requests++;
	h->conn_waiting = true;
	h->conn_since_ns = uvs_now_ns();
	return 1;
}

/* One kind of control packet on an established connection, as fast as the device takes
 * them: CREDIT_REQUESTs (each owes a CREDIT_UPDATE back, which the device coalesces per
 * connection), or, for chatter, CREDIT_UPDATEs (nothing back; a guest reading many small
 * pieces sends as many). */
static unsigned int
conn_control_flood(struct hostile *h, unsigned int room, uint16_t op)
{
	unsigned int n;

	if (!h->conn_up)
		return conn_open_step(h);
	for (n = 0; n < room; n++) {
		struct uvs_hdr hdr = hdr_make(h, op, h->conn_port, h->port);

		if (send_pkt(h, &hdr, 0) < 0)
			break;
	}
	return n;
}

static unsigned int
flood_credit_request_step(struct hostile *h, unsigned int room)
{
	return conn_control_flood(h, room, UVS_OP_CREDIT_REQUEST);
}

static unsigned int
chatter_step(struct hostile *h, unsigned int room)
{
	return conn_control_flood(h, room, UVS_OP_CREDIT_UPDATE);
}

/* Connect to a host writer, then never give an rx buffer back: its data takes every
 * buffer, and REQUESTs to a closed port make the device owe RSTs it cannot deliver. */
static unsigned int
no_refill_step(struct hostile *h, unsigned int room)
{
	if (!h->conn_up)
		return conn_open_step(h);
	h->norefill = true;
	if (h->rxq.posted > 0)
		return 0; /* the writer has not taken every buffer yet */
	h->rx_starved = true;
	return closed_request_step(h, room);
}

/* Connections to an accepting listener, each from a new port, until the device refuses
 * them (conn_limit), and on: the refusals are the steady state. */
static unsigned int
conn_flood_step(struct hostile *h, unsigned int room)
{
	unsigned int n;

	for (n = 0; n < room; n++) {
		if (send_request(h, h->port, NULL) < 0)
			break;
		h->listener_requests++;
	}
	return n;
}

static void
conn_flood_report(struct hostile *h)
{
	listener_report(h, "drop_conn_limit");
}

static const struct attack attacks[] = {
	{ "loop", "descriptor chains that loop (bad_chain_loop)", false, NULL, loop_step, NULL,
			NULL },
	{ "bad-addr", "descriptors outside guest memory (bad_chain_bad_addr)", false, NULL,
			bad_addr_step, NULL, NULL },
	{ "overlap-tx", "tx buffers that are the tx ring itself (bad_header_*)", false, NULL,
			overlap_tx_step, NULL, NULL },
	{ "overlap-rx", "rx buffers over the rx avail ring, re-attached each time (rings_broken)",
			false, overlap_rx_start, overlap_rx_step, overlap_rx_rx,
			overlap_rx_report },
	{ "reattach", "a new vhost-user connection, memory table and rings, again and again", false,
			reattach_start, reattach_step, NULL, NULL },
	{ "tx-writable", "write-only tx descriptors (short_header, bad_chain_order)", false, NULL,
			tx_writable_step, NULL, NULL },
	{ "rx-readable", "read-only rx buffers (bad_chain_order)", false, rx_readable_start,
			closed_request_step, rx_readable_rx, rx_readable_report },
	{ "long-chain", "65 segments, 1.2 MiB, 4 GiB (too_many_segs, too_long)", false, NULL,
			long_chain_step, NULL, NULL },
	{ "bad-cid", "wrong src_cid and dst_cid (bad_src_cid, bad_dst_cid)", false, NULL,
			bad_cid_step, NULL, NULL },
	{ "bad-type-op", "unknown types and ops to a listener (bad_type, unexpected_op)", true,
			NULL, bad_type_op_step, NULL, NULL },
	{ "bad-len", "len over the buffer, over 64 KiB, on REQUEST (len_over_*)", false, NULL,
			bad_len_step, NULL, NULL },
	{ "credit", "data beyond the credit of a non-reading listener (credit_overrun; then penalty)",
			true, NULL, credit_step, conn_rx, conn_report },
	{ "churn", "not an attack: credit's well-behaved twin (no overrun; RST to close)", true,
			NULL, churn_step, conn_rx, conn_report },
	{ "flood-request", "REQUESTs to a non-accepting listener and a closed port", true, NULL,
			flood_request_step, count_responses_rx, flood_request_report },
	{ "flood-rst", "RSTs for no connection (rst_no_conn)", false, NULL, flood_rst_step, NULL,
			NULL },
	{ "flood-credit-request", "CREDIT_REQUESTs on a connection (answered, coalesced)", true,
			NULL, flood_credit_request_step, conn_rx, conn_report },
	{ "chatter", "not an attack: CREDIT_UPDATEs on a connection (flood-credit-request's twin)",
			true, NULL, chatter_step, conn_rx, conn_report },
	{ "no-refill", "connect to a writer, never refill rx, owe RSTs", true, NULL, no_refill_step,
			conn_rx, conn_report },
	{ "conn-flood", "connections to an accepting listener until refused (conn_limit)", true,
			NULL, conn_flood_step, count_responses_rx, conn_flood_report },
};

/* --- running an attack --- */

static void
print_expect(const char *tag, const struct expect *e, unsigned int n)
{
	printf("%s", tag);
	for (unsigned int i = 0; i < n; i++)
		printf(" %s=%" PRIu64, e[i].key, e[i].n);
	printf("\n");
}

/* Stop attacking: wait for every chain and the last replies, then say what to expect. */
static void
quiesce(struct hostile *h)
{
	uint64_t start = uvs_now_ns(), lost;

	if (h->rx_starved)
		h->norefill = true; /* buffers the device refuses would come back for ever */
	while (h->txq.posted > 0 && uvs_now_ns() - start < H_DRAIN_TIMEOUT_NS) {
		if (tx_service(h) + rx_service(h) == 0)
			sleep_on_calls(h);
	}
	if (h->txq.posted > 0)
		h->failures++; /* chains the device kept */
	h->last_rx_ns = uvs_now_ns();
	while (uvs_now_ns() - h->last_rx_ns < H_QUIET_NS) {
		if (tx_service(h) + rx_service(h) == 0)
			sleep_on_calls(h);
	}
	if (h->a->report != NULL)
		h->a->report(h);
	/* Every RST the device owed was delivered, dropped at its bounded queue, or (when the
	 * guest gave it no buffer) still waits there. */
	lost = h->rst_expected - h->rst_received;
	if (h->rx_starved) {
		uint64_t queued = lost < UVS_PEER_ORPHAN_RST_MAX ? lost : UVS_PEER_ORPHAN_RST_MAX;

		expect_now(h, "orphan_rst_queued", queued);
		lost -= queued;
	}
	expect(h, "drop_orphan_queue_full", lost);
	print_expect("EXPECT_DELTA", h->delta, h->ndelta);
	printf("EXPECT_NOW state=%s", h->state);
	print_expect("", h->now, h->nnow);
	printf("INFO attack=%s chains=%" PRIu64 " requests=%" PRIu64 " responses=%" PRIu64
	       " rsts=%" PRIu64 " credit_updates=%" PRIu64 " rw_bytes=%" PRIu64
	       " rx_refused=%" PRIu64 " overruns=%" PRIu64 " penalized=%" PRIu64 " rounds=%" PRIu64
	       " failures=%" PRIu64 "\n",
			h->a->name, h->chains, h->requests, h->responses, h->rsts,
			h->credit_updates, h->rw_bytes, h->rx_refused, h->overruns, h->penalized,
			h->rounds, h->failures);
	fflush(stdout);
}

static int
run(struct hostile *h, double seconds)
{
	uint64_t end = seconds > 0 ? uvs_now_ns() + (uint64_t)(seconds * 1e9) : UINT64_MAX;
	bool quiet = false;
	int rc = guest_attach(h);

	if (rc < 0) {
		fprintf(stderr, "uvsock-hostile: cannot attach to %s: %s\n", h->path,
				strerror(-rc));
		return 1;
	}
	printf("uvsock-hostile: attached to %s as CID %u: attacking: %s\n", h->path, h->cid,
			h->a->name);
	fflush(stdout);
	while (!want_exit) {
		unsigned int work = tx_service(h) + rx_service(h);

		if (uvs_now_ns() >= end)
			want_quiesce = want_exit = 1;
		if (!quiet && want_quiesce) {
			quiesce(h);
			quiet = true;
		}
		if (!quiet) {
			unsigned int room = tx_room(h), posted;

			posted = h->a->step(h, room < H_STEP_MAX ? room : H_STEP_MAX);
			if (posted > 0 && h->vhu >= 0 && uvs_drvq_publish(&h->txq))
				kick(h, UVS_VQ_TX);
			work += posted;
		}
		if (work == 0)
			sleep_on_calls(h);
	}
	if (!quiet)
		quiesce(h);
	guest_detach(h);
	return h->failures == 0 ? 0 : 1;
}

/* --- host side: a listener that holds connections without reading --- */

static int
host_hold(uint32_t port, int backlog, bool accept_them)
{
	struct sockaddr_vm addr = {
		.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port
	};
	struct pollfd *pf = calloc(H_HOLD_MAX + 1, sizeof(*pf));
	uint64_t accepted = 0, closed = 0;
	unsigned int n = 1;
	struct rlimit rl;
	int lfd, rc;

	/* an fd per held connection: take what the hard limit allows */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	lfd = uvs_socket(SOCK_STREAM);
	rc = lfd < 0 ? lfd : uvs_bind(lfd, &addr);
	if (rc == 0)
		rc = uvs_listen(lfd, backlog);
	if (rc == 0)
		rc = uvs_set_nonblock(lfd, true); /* accept until the queue is empty */
	if (rc < 0 || pf == NULL) {
		fprintf(stderr, "uvsock-hostile: listen on %u: %s\n", port,
				strerror(pf == NULL ? ENOMEM : -rc));
		return 1;
	}
	printf("hold: listening on %u (backlog %d, %s)\n", port, backlog,
			accept_them ? "accepting" : "never accepting");
	fflush(stdout);
	pf[0] = (struct pollfd){ .fd = lfd, .events = accept_them ? POLLIN : 0 };
	while (!want_exit) {
		if (poll(pf, n, 200) <= 0)
			continue;
		for (unsigned int i = n; i-- > 1;) {
			/* only the end of a connection: data stays unread */
			if (pf[i].revents & (POLLRDHUP | POLLHUP | POLLERR)) {
				uvs_close(pf[i].fd);
				pf[i] = pf[--n];
				closed++;
			}
		}
		while ((pf[0].revents & POLLIN) && n <= H_HOLD_MAX) {
			int fd = uvs_accept(lfd, NULL, SOCK_NONBLOCK);

			if (fd < 0)
				break;
			pf[n++] = (struct pollfd){ .fd = fd, .events = POLLRDHUP };
			accepted++;
		}
	}
	printf("hold: accepted %" PRIu64 ", closed %" PRIu64 ", held %u\n", accepted, closed,
			n - 1);
	return 0;
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: uvsock-hostile --socket PATH --attack NAME [--port P] [--closed-port P]\n"
		   "                      [--seconds T]\n"
		   "       uvsock-hostile --host-hold PORT [--backlog N] [--no-accept]\n"
		   "  --socket PATH      the device's vhost-user socket (uvsockd --vm ...,socket=PATH)\n"
		   "  --attack NAME      what to send, until SIGUSR1 (report) and SIGTERM (exit):\n");
	for (size_t i = 0; i < sizeof(attacks) / sizeof(attacks[0]); i++)
		fprintf(f, "                     %-21s %s%s\n", attacks[i].name, attacks[i].what,
				attacks[i].needs_port ? " [--port]" : "");
	fprintf(f,
			"  --port P           the host listener the attack needs\n"
			"  --closed-port P    a host port nobody listens on (default %u)\n"
			"  --seconds T        report and exit after T seconds\n"
			"  --pace-us N        look at the rings every N us, without interrupts (default %u;\n"
			"                     0: spin)\n"
			"  --interrupts       sleep on the device's interrupts instead\n"
			"  --txq N            tx ring size, a power of two, 256 .. 32768 (default %u)\n"
			"  --penalty L,N      credit: the device still refuses this guest's next L\n"
			"                     REQUESTs, and the next overrun costs N (telemetry's\n"
			"                     penalty and penalty_next: it keeps them across attaches)\n"
			"  --host-hold PORT   host side (UVSOCK_CONTROL): listen on PORT, accept, never read\n"
			"  --backlog N        --host-hold's listen backlog (default 4096)\n"
			"  --no-accept        --host-hold never accepts\n"
			"Exit status: 0; 1 if the device did not behave as the attack expects (see INFO\n"
			"failures) or on errors; 2 on bad usage.\n",
			H_CLOSED_PORT_DEFAULT, H_PACE_US_DEFAULT, H_TXQ_DEFAULT);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "attack", required_argument, NULL, 'a' },
		{ "port", required_argument, NULL, 'p' },
		{ "closed-port", required_argument, NULL, 'c' },
		{ "seconds", required_argument, NULL, 't' },
		{ "host-hold", required_argument, NULL, 'H' },
		{ "backlog", required_argument, NULL, 'b' },
		{ "no-accept", no_argument, NULL, 'n' },
		{ "interrupts", no_argument, NULL, 'i' },
		{ "pace-us", required_argument, NULL, 'P' },
		{ "txq", required_argument, NULL, 'T' },
		{ "penalty", required_argument, NULL, 'Q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct hostile h = { .vhu = -1,
		.kickfd = { -1, -1 },
		.callfd = { -1, -1 },
		.closed_port = H_CLOSED_PORT_DEFAULT,
		.next_port = H_FIRST_PORT,
		.pace_us = H_PACE_US_DEFAULT,
		.txq_size = H_TXQ_DEFAULT,
		.state = "running" };
	const char *name = NULL;
	long hold_port = -1, backlog = 4096;
	bool no_accept = false, have_port = false;
	double seconds = 0;
	int opt;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			h.path = optarg;
			break;
		case 'a':
			name = optarg;
			break;
		case 'p':
			h.port = (uint32_t)strtoul(optarg, NULL, 0);
			have_port = true;
			break;
		case 'c':
			h.closed_port = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 't':
			seconds = strtod(optarg, NULL);
			break;
		case 'H':
			hold_port = strtol(optarg, NULL, 0);
			break;
		case 'b':
			backlog = strtol(optarg, NULL, 0);
			break;
		case 'n':
			no_accept = true;
			break;
		case 'i':
			h.interrupts = true;
			break;
		case 'T':
			h.txq_size = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'P':
			h.pace_us = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'Q':
			if (sscanf(optarg, "%" SCNu32 ",%" SCNu32, &h.penalty_left,
					    &h.penalty_next) != 2) {
				usage(stderr);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGUSR1, on_signal);
	if (hold_port >= 0) {
		if (hold_port > UINT32_MAX || backlog < 0 || backlog > INT32_MAX) {
			usage(stderr);
			return 2;
		}
		return host_hold((uint32_t)hold_port, (int)backlog, !no_accept);
	}
	for (size_t i = 0; name != NULL && i < sizeof(attacks) / sizeof(attacks[0]); i++)
		if (strcmp(attacks[i].name, name) == 0)
			h.a = &attacks[i];
	if (h.path == NULL || h.a == NULL || (h.a->needs_port && !have_port) ||
			h.txq_size < 2 * H_MANY_SEGS || h.txq_size > UVS_VIRTQ_MAX_SIZE ||
			(h.txq_size & (h.txq_size - 1)) != 0) {
		usage(stderr);
		return 2;
	}
	return run(&h, seconds);
}
