/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fuzz target: the framing of a connected socket's shared rings (lib/uvs_sockbuf.c over
 * lib/uvs_ring.c), mainly the device side, which the daemon runs against a segment a hostile
 * program can write at any time.
 *
 * One segment, STREAM or SEQPACKET, with rings of 8 bytes to 8 KiB (the daemon makes them
 * 4 KiB and up; small rings reach wrap-around and full-ring cases sooner). Both sides are
 * attached to it: the device (the code under test) and the program, which the input makes
 * honest (libuvsock's uvs_sockbuf_app_* calls: records with EOM/EOR, whole-message reads,
 * consumption) or hostile (any value in the program's ring index, the device's, or any byte
 * in either ring). Device actions put payload arriving from the guest (in 1-4 segments, with
 * SEQPACKET flags) and peek/take payload to send to it.
 *
 * Always checked: nothing is read or written outside the rings and the buffers handed over
 * (each is a slice of a static arena whose other bytes ASan poisons); return values within
 * their contracts (a peek never exceeds its max or the bytes present, EOR only with EOM, no
 * flags on STREAM, nothing from a ring marked bad); the device's indexes move only by what it
 * produced or consumed. While no hostile action has happened, a model checks the data itself:
 * every byte the program wrote reaches the device in order with EOM/EOR exactly at message
 * ends, and every complete message the device put is read whole (or truncated with MSG_TRUNC)
 * with its EOR.
 */
#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "fuzz.h"
#include "uvs_ipc.h"
#include "uvs_proto.h"
#include "uvs_sockbuf.h"

#define RING_MIN_LOG2 3
#define RING_MAX_LOG2 13
#define RING_MAX (1u << RING_MAX_LOG2)
/* Longest payload or message an action handles: twice the largest ring, so that "does not
 * fit" is reached too. */
#define XFER_MAX (2u * RING_MAX + 64u)
/* Messages the model remembers in each direction. */
#define MAX_MSGS 256u
/* Outgoing and incoming payload is a pattern of prime period, compared a run at a time. */
#define PATTERN_PERIOD 251u

enum action {
	D_PUT,
	D_SEND,
	A_WRITE,
	A_READ,
	H_APP_IDX,
	H_APP_DATA,
	H_DEV_IDX,
	H_DEV_DATA,
	ACT_MAX,
};

/* The bytes of one direction as the model sees them: a running payload offset at each end,
 * and the ends (cumulative offsets) and EOR of the messages in flight. */
struct dir {
	uint64_t sent, seen;
	uint64_t msg_end[MAX_MSGS];
	bool msg_eor[MAX_MSGS];
	unsigned int head, n;
};

struct ctx {
	struct uvs_sockbuf dev, app;
	uint32_t size;
	bool seq;
	bool hostile; /* the model no longer holds: only the safety checks apply */
	struct dir tx, rx;
	/* the program's message being written: length, bytes done, EOR */
	uint32_t w_len, w_done;
	bool w_eor;
	/* SEQPACKET: payload of the rx message being assembled by the device */
	uint32_t r_pend;
};

static struct uvs_ring_idx rx_idx, tx_idx;
static _Alignas(64) uint8_t ring_arena[2 * RING_MAX + 64];
static _Alignas(64) uint8_t xfer_arena[XFER_MAX];
static uint8_t pattern_tab[PATTERN_PERIOD + XFER_MAX];

static void
pattern_init(void)
{
	for (uint32_t i = 0; i < sizeof(pattern_tab); i++)
		pattern_tab[i] = (uint8_t)((i % PATTERN_PERIOD) * 89u + 3u);
}

/* len bytes of a direction's payload from offset off (len <= XFER_MAX). */
static const uint8_t *
pattern(uint64_t off)
{
	return &pattern_tab[off % PATTERN_PERIOD];
}

/* Remember a message; with more in flight than the model holds, stop checking data. */
static void
msg_push(struct ctx *t, struct dir *d, uint64_t end, bool eor)
{
	unsigned int slot = (d->head + d->n) % MAX_MSGS;

	if (d->n == MAX_MSGS) {
		t->hostile = true;
		return;
	}
	d->msg_end[slot] = end;
	d->msg_eor[slot] = eor;
	d->n++;
}

static void
msg_pop(struct dir *d)
{
	d->head = (d->head + 1) % MAX_MSGS;
	d->n--;
}

/* The device's own indexes are what it produced and consumed, whatever the program wrote. */
static void
check_dev(const struct ctx *t)
{
	FZ_CHECK(__atomic_load_n(&rx_idx.prod, __ATOMIC_RELAXED) == t->dev.rx.own || t->hostile);
	FZ_CHECK(__atomic_load_n(&tx_idx.cons, __ATOMIC_RELAXED) == t->dev.tx.own || t->hostile);
	FZ_CHECK(t->dev.rx_pend <= t->size && t->dev.tx_left <= t->size);
	FZ_CHECK(!(t->dev.tx_flags & ~(UVS_SEQ_EOM | UVS_SEQ_EOR)));
	FZ_CHECK(!(t->dev.tx_flags & UVS_SEQ_EOR) || (t->dev.tx_flags & UVS_SEQ_EOM));
}

/* Payload from the guest: dev_put of len bytes in segments, with flags. */
static void
dev_put(struct ctx *t, struct fz *f)
{
	uint32_t len = fz_u16(f) % XFER_MAX, flags;
	uint8_t b = fz_u8(f);
	uint8_t *buf = fz_arena(xfer_arena, sizeof(xfer_arena), len);
	uint32_t prod_before = t->dev.rx.own;
	struct iovec iov[FZ_MAX_SEGS];
	struct fz_shape shape;
	unsigned int n;
	int rc;

	flags = b < 0xf0 ? b & (UVS_SEQ_EOM | UVS_SEQ_EOR) : fz_u32(f);
	fz_shape(f, &shape);
	if (len == 0)
		return; /* the engine drops zero-length RW before the socket layer */
	memcpy(buf, pattern(t->rx.sent + t->r_pend), len);
	n = fz_split(&shape, buf, len, iov);
	rc = uvs_sockbuf_dev_put(&t->dev, iov, n, 0, len, flags);
	FZ_CHECK(rc == 0 || rc == 1 || rc == -ENOBUFS || rc == -EIO);
	FZ_CHECK(rc != -EIO || t->dev.bad);
	if (rc < 0) {
		FZ_CHECK(t->dev.rx.own == prod_before); /* nothing published */
		return;
	}
	if (!t->seq) {
		FZ_CHECK(rc == 1 && t->dev.rx.own == prod_before + len);
		t->rx.sent += len;
		return;
	}
	t->r_pend += len;
	FZ_CHECK(rc == !!(flags & UVS_SEQ_EOM));
	if (rc == 1) {
		/* one whole record: header and every piece of the message */
		FZ_CHECK(t->dev.rx.own == prod_before + UVS_REC_SIZE + t->r_pend);
		t->rx.sent += t->r_pend;
		msg_push(t, &t->rx, t->rx.sent, flags & UVS_SEQ_EOR);
		t->r_pend = 0;
	} else {
		FZ_CHECK(t->dev.rx.own == prod_before);
	}
}

/* Payload to the guest: peek at most max, take some or all of it. */
static void
dev_send(struct ctx *t, struct fz *f)
{
	uint32_t max = 1 + fz_u16(f) % XFER_MAX, flags = 0xdead, n, k, used;
	uint8_t ksel = fz_u8(f);
	uint16_t kval = fz_u16(f);
	bool used_ok = uvs_ring_used(&t->dev.tx, &used) == 0;
	bool was_bad = t->dev.bad;
	struct iovec iov[FZ_MAX_SEGS];
	struct fz_shape shape;
	uint8_t *buf;
	unsigned int nseg;

	fz_shape(f, &shape);
	n = uvs_sockbuf_dev_peek(&t->dev, max, &flags);
	FZ_CHECK(n <= max);
	FZ_CHECK(!(flags & ~(UVS_SEQ_EOM | UVS_SEQ_EOR)));
	FZ_CHECK(!(flags & UVS_SEQ_EOR) || (flags & UVS_SEQ_EOM));
	if (!t->seq)
		FZ_CHECK(flags == 0);
	if (was_bad || !used_ok || t->dev.bad) {
		FZ_CHECK(n == 0 && flags == 0);
		FZ_CHECK(!used_ok ? t->dev.bad : true);
		return;
	}
	FZ_CHECK(n <= used);
	if (n == 0) {
		FZ_CHECK(flags == 0);
		return;
	}
	k = ksel & 1 ? 1 + kval % n : n; /* the engine takes all of it; be harsher */
	buf = fz_arena(xfer_arena, sizeof(xfer_arena), k);
	nseg = fz_split(&shape, buf, k, iov);
	uvs_sockbuf_dev_take(&t->dev, iov, nseg, 0, k);
	if (t->hostile)
		return;
	FZ_CHECK(memcmp(buf, pattern(t->tx.seen), k) == 0);
	FZ_CHECK(t->tx.seen + n <= t->tx.sent);
	if (t->seq) {
		/* no complete message queued: the one being written, which may not end yet */
		bool whole = t->tx.n > 0;
		uint64_t end = whole ? t->tx.msg_end[t->tx.head] : t->tx.sent;

		FZ_CHECK(t->tx.seen + n <= end);
		if (flags & UVS_SEQ_EOM) {
			FZ_CHECK(whole && t->tx.seen + n == end);
			FZ_CHECK(!!(flags & UVS_SEQ_EOR) == t->tx.msg_eor[t->tx.head]);
		}
		if (k == n && (flags & UVS_SEQ_EOM))
			msg_pop(&t->tx);
	}
	t->tx.seen += k;
}

/* The honest program writes (the rest of) a message. */
static void
app_write(struct ctx *t, struct fz *f)
{
	struct iovec iov[FZ_MAX_SEGS];
	uint16_t l = fz_u16(f); /* the next message's length, if this call starts one */
	struct fz_shape shape;
	uint8_t *buf;
	unsigned int n;
	int64_t rc;

	fz_shape(f, &shape);
	if (t->w_done == t->w_len) {
		t->w_len = 1 + (l & 0x7fff) % XFER_MAX;
		t->w_eor = l & 0x8000;
		t->w_done = 0;
	}
	buf = fz_arena(xfer_arena, sizeof(xfer_arena), t->w_len);
	memcpy(buf, pattern(t->tx.sent - t->w_done), t->w_len);
	n = fz_split(&shape, buf, t->w_len, iov);
	rc = uvs_sockbuf_app_write(
			&t->app, iov, n, t->w_done, t->w_len - t->w_done, t->w_len, t->w_eor);
	FZ_CHECK(rc >= 0 || (rc == -EIO && t->app.bad));
	if (rc <= 0)
		return;
	FZ_CHECK((uint64_t)rc <= t->w_len - t->w_done);
	t->w_done += (uint32_t)rc;
	t->tx.sent += (uint64_t)rc;
	if (t->w_done == t->w_len)
		msg_push(t, &t->tx, t->tx.sent, t->w_eor);
}

/* The honest program reads (and maybe consumes) what is there. */
static void
app_read(struct ctx *t, struct fz *f)
{
	uint32_t cap = fz_u16(f) % XFER_MAX, msg_len = 0xdead;
	bool consume = fz_u8(f) & 1;
	uint8_t *buf = fz_arena(xfer_arena, sizeof(xfer_arena), cap);
	struct iovec iov[FZ_MAX_SEGS];
	struct fz_shape shape;
	int msg_flags = -1;
	unsigned int n;
	int64_t rc;

	fz_shape(f, &shape);
	n = fz_split(&shape, buf, cap, iov);
	rc = uvs_sockbuf_app_read(&t->app, iov, n, cap, &msg_flags, &msg_len);

	FZ_CHECK(rc >= 0 || rc == -EAGAIN || (rc == -EIO && t->app.bad));
	if (rc < 0)
		return;
	FZ_CHECK((uint64_t)rc <= cap);
	if (t->seq)
		FZ_CHECK((uint64_t)rc == (msg_len < cap ? msg_len : cap));
	if (!t->hostile) {
		FZ_CHECK(memcmp(buf, pattern(t->rx.seen), (size_t)rc) == 0);
		if (t->seq) {
			FZ_CHECK(t->rx.n > 0);
			FZ_CHECK(t->rx.seen + msg_len == t->rx.msg_end[t->rx.head]);
			FZ_CHECK(!!(msg_flags & MSG_TRUNC) == (msg_len > cap));
			FZ_CHECK(!!(msg_flags & MSG_EOR) == t->rx.msg_eor[t->rx.head]);
		} else {
			FZ_CHECK(msg_flags == 0);
		}
	}
	if (!consume)
		return;
	if (t->seq) {
		FZ_CHECK(uvs_sockbuf_app_consume(&t->app, (uint32_t)rc, msg_len) == msg_len);
		t->rx.seen += msg_len;
		if (!t->hostile)
			msg_pop(&t->rx);
	} else {
		FZ_CHECK(uvs_sockbuf_app_consume(&t->app, (uint32_t)rc, 0) == rc);
		t->rx.seen += (uint64_t)rc;
	}
}

/* Any value in a shared index: near the right one, or anything. */
static uint32_t
index_sel(struct fz *f, uint32_t now)
{
	uint8_t b = fz_u8(f);

	switch (b & 3) {
	case 0:
		return now + (b >> 2);
	case 1:
		return now - (b >> 2);
	case 2:
		return now + (1u << (b >> 3)); /* a power of two away: ring size and such */
	default:
		return fz_u32(f);
	}
}

static void
scribble(struct fz *f, uint8_t *ring, uint32_t size)
{
	uint32_t off = fz_u16(f) % size, len = fz_u8(f) % 16u;
	uint8_t bytes[16];

	fz_bytes(f, bytes, len);
	for (uint32_t i = 0; i < len; i++)
		ring[(off + i) % size] = bytes[i];
}

static void
act(struct ctx *t, struct fz *f, enum action a)
{
	switch (a) {
	case D_PUT:
		dev_put(t, f);
		break;
	case D_SEND:
		dev_send(t, f);
		break;
	case A_WRITE:
		app_write(t, f);
		break;
	case A_READ:
		app_read(t, f);
		break;
	case H_APP_IDX:
		/* the program's indexes: tx producer, rx consumer */
		t->hostile = true;
		if (fz_u8(f) & 1)
			__atomic_store_n(&tx_idx.prod, index_sel(f, tx_idx.prod), __ATOMIC_RELEASE);
		else
			__atomic_store_n(&rx_idx.cons, index_sel(f, rx_idx.cons), __ATOMIC_RELEASE);
		break;
	case H_APP_DATA:
		/* records and payload in tx, or garbage in rx (the device never reads it back) */
		t->hostile = true;
		scribble(f, fz_u8(f) & 1 ? t->dev.tx.data : t->dev.rx.data, t->size);
		break;
	case H_DEV_IDX:
		/* a hostile daemon, as libuvsock sees it: rx producer, tx consumer */
		t->hostile = true;
		if (fz_u8(f) & 1)
			__atomic_store_n(&rx_idx.prod, index_sel(f, rx_idx.prod), __ATOMIC_RELEASE);
		else
			__atomic_store_n(&tx_idx.cons, index_sel(f, tx_idx.cons), __ATOMIC_RELEASE);
		break;
	case H_DEV_DATA:
		t->hostile = true;
		scribble(f, t->dev.rx.data, t->size);
		break;
	default:
		break;
	}
	check_dev(t);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ctx ctx;
	struct ctx *t = &ctx;
	uint8_t *rx_data, *tx_data;
	uint32_t start;
	struct fz f;
	uint8_t b;

	if (pattern_tab[1] == 0)
		pattern_init();
	memset(t, 0, sizeof(*t));
	fz_init(&f, data, size);
	b = fz_u8(&f);
	t->seq = b & 1;
	t->size = 1u << (RING_MIN_LOG2 + (b >> 1) % (RING_MAX_LOG2 - RING_MIN_LOG2 + 1));
	/* Indexes start anywhere (they are free-running), so the u32 wrap is reached too. */
	start = fz_u8(&f) & 1 ? fz_u32(&f) : 0;
	rx_idx.prod = rx_idx.cons = start;
	tx_idx.prod = tx_idx.cons = start;
	/* rx and tx rings with poisoned bytes around each */
	ASAN_POISON_MEMORY_REGION(ring_arena, sizeof(ring_arena));
	rx_data = ring_arena;
	tx_data = ring_arena + RING_MAX + 64;
	ASAN_UNPOISON_MEMORY_REGION(rx_data, t->size);
	ASAN_UNPOISON_MEMORY_REGION(tx_data, t->size);
	memset(rx_data, 0, t->size);
	memset(tx_data, 0, t->size);
	t->dev.type = t->app.type = t->seq ? UVS_TYPE_SEQPACKET : UVS_TYPE_STREAM;
	uvs_ring_attach(&t->dev.rx, &rx_idx, rx_data, t->size, true);
	uvs_ring_attach(&t->dev.tx, &tx_idx, tx_data, t->size, false);
	uvs_ring_attach(&t->app.rx, &rx_idx, rx_data, t->size, false);
	uvs_ring_attach(&t->app.tx, &tx_idx, tx_data, t->size, true);
	while (!fz_empty(&f))
		act(t, &f, (enum action)(fz_u8(&f) % ACT_MAX));
	ASAN_UNPOISON_MEMORY_REGION(ring_arena, sizeof(ring_arena));
	ASAN_UNPOISON_MEMORY_REGION(xfer_arena, sizeof(xfer_arena));
	return 0;
}
