/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Implementation notes
 *
 * The control socket, its clients, and the programs' sockets (struct uvs_srv_sock), which
 * are the engine's socket layer (srv_engine_ops). uvsockd serves host programs with it;
 * uvsock-guest serves programs in its emulated guest. Nothing here knows the transport:
 * peers come from uvs_srv_ops.
 *
 * Every request is checked (size, op, socket id and generation, owner) before use; a
 * program can only operate sockets it created or accepted. A socket lives while the
 * program holds its anchor; the hang-up of the daemon's end is the program's last close,
 * whatever the cause (close, exit, crash), and starts the vsock close sequence. The
 * segment stays mapped until the engine frees the connection, so queued data still goes
 * out after the program is gone, as with a kernel socket.
 *
 * Nothing read from a segment is trusted: ring indexes go through uvs_ring's checks, record
 * lengths are bounded by what is in the ring, and the program's fwd_cnt may only move
 * forward within what it was given.
 *
 * Segment reuse. A fresh segment's pages are the dearest part of a connection: each first
 * touch is a page fault and a zeroed page (800 us for a 256 KiB ring here, where the copy
 * into a touched ring takes 3 us). So the segment of a closed socket is kept (seg_cache)
 * and given to the next socket of the one program that could still map it, or of any
 * program if none ever did. It must reveal nothing to anyone who could not already read
 * it: a segment is reused only while one client (seg_holder) ever received its memfd and
 * no other process may map it. Any ATTACH of a socket that has one (a fork child maps the
 * parent's segments; an exec'd program gets the memfd) exposes it, and so does
 * UVS_CTL_FORK, which libuvsock sends before every fork for all the segments the program
 * holds. A program whose control connection is gone can have nothing again, so its open
 * sockets' segments are not kept either. A kept segment's data pages are zeroed (the ones
 * the memfd has: SEEK_DATA), so what its next socket's other users see starts blank, as a
 * new one would. A connection to
 * a listener takes its segment when it arrives, from the listener creator's kept ones while
 * nobody else owns the listener; if another owner (attached since) accepts it, the creator
 * may still map that segment: the owners of a listener share its connections, as any of
 * them could have accepted this one.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/vm_sockets.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "uvs_scm.h"
#include "uvs_srv.h"

/* CAP_NET_BIND_SERVICE's bit (linux/capability.h), without libcap. */
#define UVS_SRV_CAP_NET_BIND_SERVICE 10

uint64_t
uvs_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void __attribute__((format(printf, 2, 3))) srv_log(struct uvs_srv *srv, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (srv->ops->log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	srv->ops->log(srv->ctx, msg);
}

static void sock_free(struct uvs_srv *srv, struct uvs_srv_sock *s);

/* --- sockets table --- */

/* Whether the server may hold n more fds within its budget (counted at most: every socket
 * as if it had its segment, the segment cache as if full). */
static bool
fds_room(const struct uvs_srv *srv, uint32_t n)
{
	return srv->fd_budget == 0 ||
	       2ull * srv->nsocks_live + srv->nclients + UVS_SRV_SEG_CACHE + n <= srv->fd_budget;
}

static struct uvs_srv_sock *
sock_alloc(struct uvs_srv *srv, uint16_t type, uint64_t owner)
{
	struct uvs_srv_sock *s;
	uint32_t idx;

	if (srv->nsocks_live >= UVS_SRV_MAX_SOCKS || !fds_room(srv, 2)) {
		srv->drops[UVS_SRV_DROP_FULL]++;
		return NULL;
	}
	for (idx = 0; idx < srv->nsocks_alloc; idx++)
		if (srv->socks[idx] == NULL)
			break;
	if (idx == srv->nsocks_alloc) {
		uint32_t n = srv->nsocks_alloc ? srv->nsocks_alloc * 2 : 256;
		struct uvs_srv_sock **t = realloc(srv->socks, n * sizeof(*t));

		if (t == NULL)
			return NULL;
		memset(t + srv->nsocks_alloc, 0, (n - srv->nsocks_alloc) * sizeof(*t));
		srv->socks = t;
		srv->nsocks_alloc = n;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->idx = idx;
	s->gen = (uint32_t)++srv->next_serial;
	s->owner = owner;
	s->type = type;
	s->anchor = -1;
	s->memfd = -1;
	s->bound_cid = VMADDR_CID_ANY;
	s->watch_idx = -1;
	s->buf_size = UVS_BUF_SIZE_DEFAULT;
	s->buf_min = UVS_BUF_SIZE_MIN_DEFAULT;
	s->buf_max = UVS_BUF_SIZE_MAX_DEFAULT;
	srv->socks[idx] = s;
	srv->nsocks_live++;
	return s;
}

static uint64_t
sock_id(const struct uvs_srv_sock *s)
{
	return (uint64_t)s->gen << 32 | s->idx;
}

static struct uvs_srv_sock *
sock_lookup(struct uvs_srv *srv, uint64_t id, uint64_t owner)
{
	uint32_t idx = (uint32_t)id;
	struct uvs_srv_sock *s;

	if (idx >= srv->nsocks_alloc)
		return NULL;
	s = srv->socks[idx];
	if (s == NULL || s->gen != (uint32_t)(id >> 32) || s->anchor < 0)
		return NULL;
	if (s->owner == owner)
		return s;
	for (uint32_t i = 0; i < s->n_more_owners; i++)
		if (s->more_owners[i] == owner)
			return s;
	return NULL;
}

static void
seg_unmap(struct uvs_srv_sock *s)
{
	if (s->shm != NULL)
		munmap(s->shm, s->shm_size);
	if (s->memfd >= 0)
		close(s->memfd);
	s->shm = NULL;
	s->memfd = -1;
}

/* --- segment reuse (see the implementation notes) --- */

static void
seg_cache_drop(struct uvs_srv_seg *e)
{
	munmap(e->shm, e->size);
	close(e->memfd);
	e->shm = NULL;
}

/* Zero every page the segment's memfd has (pages never touched stay holes). 0, or -errno
 * (then the segment is not kept). */
static int
seg_wipe(int memfd, uint8_t *base, size_t size)
{
	off_t pos = 0, end;

	while ((size_t)pos < size) {
		pos = lseek(memfd, pos, SEEK_DATA);
		if (pos < 0)
			return errno == ENXIO ? 0 : -errno; /* ENXIO: no data after pos */
		end = lseek(memfd, pos, SEEK_HOLE);
		if (end < 0 || (size_t)end > size)
			end = (off_t)size;
		memset(base + pos, 0, (size_t)(end - pos));
		pos = end;
	}
	return 0;
}

/* The socket is freed: keep its segment for its holder's next socket if nobody else may map
 * it, else unmap it. The oldest kept segment of the same holder, or else of anyone, makes
 * room. */
static void
seg_release(struct uvs_srv *srv, struct uvs_srv_sock *s)
{
	struct uvs_srv_seg *slot = NULL, *oldest = NULL, *oldest_mine = NULL;
	unsigned int mine = 0;

	if (s->shm == NULL || s->seg_holder == UVS_SRV_SEG_EXPOSED ||
			s->shm_size > UVS_SRV_SEG_CACHE_MAX_SIZE ||
			seg_wipe(s->memfd, (uint8_t *)s->shm, s->shm_size) < 0) {
		seg_unmap(s);
		return;
	}
	for (unsigned int i = 0; i < UVS_SRV_SEG_CACHE; i++) {
		struct uvs_srv_seg *e = &srv->seg_cache[i];

		if (e->shm == NULL) {
			slot = slot != NULL ? slot : e;
			continue;
		}
		if (oldest == NULL || e->stamp < oldest->stamp)
			oldest = e;
		if (e->holder == s->seg_holder) {
			mine++;
			if (oldest_mine == NULL || e->stamp < oldest_mine->stamp)
				oldest_mine = e;
		}
	}
	if (mine >= UVS_SRV_SEG_CACHE_PER_HOLDER)
		slot = oldest_mine;
	else if (slot == NULL)
		slot = oldest;
	if (slot->shm != NULL)
		seg_cache_drop(slot);
	*slot = (struct uvs_srv_seg){ .holder = s->seg_holder,
		.shm = s->shm,
		.size = s->shm_size,
		.memfd = s->memfd,
		.stamp = ++srv->seg_stamp };
	s->shm = NULL;
	s->memfd = -1;
}

/* A kept segment of size bytes that holder may have (its own, or one nobody mapped), or
 * NULL. */
static struct uvs_srv_seg *
seg_reuse(struct uvs_srv *srv, size_t size, uint64_t holder)
{
	for (unsigned int i = 0; i < UVS_SRV_SEG_CACHE; i++) {
		struct uvs_srv_seg *e = &srv->seg_cache[i];

		if (e->shm != NULL && e->size == size && (e->holder == holder || e->holder == 0))
			return e;
	}
	return NULL;
}

/* Client cl may map the segment from now on (its memfd goes to it). */
static void
seg_give(struct uvs_srv_sock *s, struct uvs_srv_client *cl)
{
	cl->got_segment = true;
	if (s->seg_holder == 0)
		s->seg_holder = cl->serial;
	else if (s->seg_holder != cl->serial)
		s->seg_holder = UVS_SRV_SEG_EXPOSED;
}

/* Client cl is gone (its segments could only go to it), or about to fork (a child will map
 * every segment it holds): drop the kept ones, and never keep those of its open sockets. A
 * scan of every socket, so only for a client that got a segment. */
static void
seg_forget_holder(struct uvs_srv *srv, const struct uvs_srv_client *cl)
{
	uint64_t serial = cl->serial;

	if (!cl->got_segment)
		return;
	for (unsigned int i = 0; i < UVS_SRV_SEG_CACHE; i++)
		if (srv->seg_cache[i].shm != NULL && srv->seg_cache[i].holder == serial)
			seg_cache_drop(&srv->seg_cache[i]);
	for (uint32_t idx = 0; idx < srv->nsocks_alloc; idx++) {
		struct uvs_srv_sock *s = srv->socks[idx];

		if (s != NULL && s->seg_holder == serial)
			s->seg_holder = UVS_SRV_SEG_EXPOSED;
	}
}

static void watch_remove(struct uvs_srv *srv, struct uvs_srv_sock *s);
static void ctl_resume(struct uvs_srv *srv);
static void quota_release(struct uvs_srv *srv, struct uvs_srv_sock *s);

static void
sock_free(struct uvs_srv *srv, struct uvs_srv_sock *s)
{
	watch_remove(srv, s);
	if (s->anchor >= 0) {
		epoll_ctl(srv->epfd, EPOLL_CTL_DEL, s->anchor, NULL);
		close(s->anchor);
	}
	seg_release(srv, s);
	quota_release(srv, s);
	srv->socks[s->idx] = NULL;
	srv->nsocks_live--;
	if (s->n_more_owners > 0)
		srv->nsocks_attached--;
	free(s->more_owners);
	free(s);
	ctl_resume(srv);
}

static uint32_t
pow2_at_least(uint64_t v)
{
	uint32_t p = 4096;

	while (p < v && p < (1u << 31))
		p <<= 1;
	return p;
}

/* Create the shared segment for a connection: header page, rx ring, tx ring; a kept one of
 * that size if client holder (0: not known yet) may have it. */
static int
seg_create(struct uvs_srv *srv, struct uvs_srv_sock *s, uint64_t holder)
{
	/* SEQPACKET rx holds a record header per message: twice the buffer leaves room for
	 * messages down to 8 bytes on average. */
	uint32_t rx_size = pow2_at_least(
			s->type == UVS_TYPE_SEQPACKET ? 2 * s->buf_size : s->buf_size);
	uint32_t tx_size = pow2_at_least(
			s->buf_size > UVS_BUF_SIZE_DEFAULT ? s->buf_size : UVS_BUF_SIZE_DEFAULT);
	size_t size = UVS_SHM_HDR_SIZE + (size_t)rx_size + tx_size;
	struct uvs_srv_seg *kept = seg_reuse(srv, size, holder);
	struct uvs_shm *shm;
	int fd;

	seg_unmap(s);
	srv->segs_created++;
	if (kept != NULL) {
		/* wiped when kept; the header again, as its program may still map it and have
		 * written since (its own socket's state, not this one's) */
		srv->segs_reused++;
		shm = kept->shm;
		memset(shm, 0, UVS_SHM_HDR_SIZE);
		fd = kept->memfd;
		s->seg_holder = kept->holder;
		kept->shm = NULL;
		goto init;
	}
	fd = memfd_create("uvsock", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		close(fd);
		return -ENOMEM;
	}
	/* The program must not shrink it under us (SIGBUS in the daemon). */
	fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	shm = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (shm == MAP_FAILED) {
		close(fd);
		return -ENOMEM;
	}
	s->seg_holder = 0;
init:
	shm->magic = UVS_IPC_MAGIC;
	shm->version = UVS_IPC_VERSION;
	shm->size = (uint32_t)size;
	shm->type = s->type;
	shm->rx_off = UVS_SHM_HDR_SIZE;
	shm->rx_size = rx_size;
	shm->tx_off = UVS_SHM_HDR_SIZE + rx_size;
	shm->tx_size = tx_size;
	shm->state = UVS_SS_UNCONNECTED;
	shm->app_wait = 1; /* the first change rings the anchor */
	s->shm = shm;
	s->shm_size = size;
	s->memfd = fd;
	s->sb = (struct uvs_sockbuf){ .type = s->type };
	uvs_ring_attach(&s->sb.rx, &shm->rx, (uint8_t *)shm + UVS_SHM_HDR_SIZE, rx_size, true);
	uvs_ring_attach(&s->sb.tx, &shm->tx, (uint8_t *)shm + UVS_SHM_HDR_SIZE + rx_size, tx_size,
			false);
	return 0;
}

static void
doorbell(struct uvs_srv_sock *s)
{
	char b = 0;

	if (s->anchor >= 0)
		(void)send(s->anchor, &b, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* Ring the program's doorbell if it sleeps (see the protocol in uvs_ipc.h). */
static void
wake_app(struct uvs_srv_sock *s)
{
	if (s->shm == NULL)
		return;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&s->shm->app_wait, __ATOMIC_RELAXED) &&
			__atomic_exchange_n(&s->shm->app_wait, 0, __ATOMIC_SEQ_CST))
		doorbell(s);
}

/* Nothing more will arrive (the peer shut down sending, or the connection is over): shut
 * the anchor for writing, so the program's fd reads as POLLIN|POLLRDHUP from now on (and
 * POLLHUP once the program shut down sending too), as Linux's vsock_poll() says. */
static void
anchor_rx_end(struct uvs_srv_sock *s)
{
	if (s->anchor >= 0 && !s->anchor_rx_ended) {
		s->anchor_rx_ended = true;
		shutdown(s->anchor, SHUT_WR);
	}
}

/* Whether the program's fd may read as writable, as Linux's vsock_poll() says: not while
 * listening, connecting or shut down for sending, nor while connected with a full send
 * buffer (fewer free bytes than the program said it needs). */
static bool
filler_may_go(const struct uvs_srv_sock *s)
{
	uint32_t used, need, st;

	if (s->listening || (s->conn != NULL && (s->conn->local_shut & UVS_SHUTDOWN_SEND)))
		return false;
	if (s->shm == NULL)
		return true;
	st = __atomic_load_n(&s->shm->state, __ATOMIC_ACQUIRE);
	if (st == UVS_SS_CONNECTING)
		return false;
	/* over, or the peer stopped receiving: a send fails at once (EPIPE) */
	if (st != UVS_SS_CONNECTED || (s->shm->peer_shut & UVS_SHUTDOWN_RCV))
		return true;
	need = __atomic_load_n(&s->shm->tx_need, __ATOMIC_ACQUIRE);
	if (uvs_ring_used(&s->sb.tx, &used) < 0)
		return true; /* the reset that follows makes it writable anyway */
	return (uint64_t)s->sb.tx.size - used >= need;
}

static void
anchor_watch(struct uvs_srv *srv, struct uvs_srv_sock *s, bool filler_too)
{
	struct epoll_event ev = { .events = filler_too ? EPOLLIN : 0 };

	ev.data.u64 = UVS_SRV_EP_TAG(UVS_SRV_EP_ANCHOR, UVS_SRV_ANCHOR_KEY(s));
	epoll_ctl(srv->epfd, EPOLL_CTL_MOD, s->anchor, &ev);
}

/*
 * The program's filler arrived, or something changed that may let it go: read it back (the
 * fd becomes writable) when the program can send, otherwise leave it unread and stop
 * watching the anchor for input (hang-up is still reported) until it can.
 */
static void
filler_check(struct uvs_srv *srv, struct uvs_srv_sock *s)
{
	char b;

	if (s->anchor < 0)
		return;
	if (!filler_may_go(s)) {
		if (!s->filler_held) {
			s->filler_held = true;
			anchor_watch(srv, s, false);
		}
		return;
	}
	/* Only fillers and blocked senders' tokens travel this way; anything else is read and
	 * dropped the same, a batch per pass (level-triggered epoll brings the rest). */
	for (int i = 0; i < UVS_SRV_DOORBELL_BATCH; i++) {
		ssize_t n = recv(s->anchor, &b, 1, MSG_DONTWAIT | MSG_TRUNC);

		if (n == 0) {
			/* the program shut its end for writing (SHUT_WR): nothing more comes;
			 * stop watching for input, hang-up is still reported */
			s->filler_held = true;
			anchor_watch(srv, s, false);
			return;
		}
		if (n < 0)
			break;
		if (n >= UVS_FILLER_SIZE && s->shm != NULL)
			__atomic_store_n(&s->shm->tx_filler, 0, __ATOMIC_RELEASE);
	}
	if (s->filler_held) {
		s->filler_held = false;
		anchor_watch(srv, s, true);
	}
}

/* Whether a receive on s would return at once (data, end of stream, or an error). */
static bool
sock_has_news(struct uvs_srv_sock *s)
{
	uint32_t space;

	if (s->shm == NULL)
		return false;
	if (uvs_ring_space(&s->sb.rx, &space) < 0 || space < s->sb.rx.size)
		return true;
	return s->shm->state != UVS_SS_CONNECTED || s->shm->peer_shut != 0 || s->shm->err != 0;
}

static void
publish_conn(struct uvs_srv_sock *s, struct uvs_conn *c)
{
	struct uvs_shm *shm = s->shm;

	if (shm == NULL)
		return;
	shm->local_cid = c->local_cid;
	shm->local_port = c->local_port;
	shm->peer_cid = c->peer_cid;
	shm->peer_port = c->peer_port;
	__atomic_store_n(&shm->peer_buf_alloc, c->cr.peer_buf_alloc, __ATOMIC_RELEASE);
}

/* --- engine socket layer --- */

static int
ops_rx_data(void *ctx, struct uvs_conn *c, const struct iovec *iov, unsigned int n, uint32_t off,
		uint32_t len, uint32_t flags)
{
	struct uvs_srv_sock *s = c->sock;
	int rc;

	(void)ctx;
	if (s == NULL || s->shm == NULL || s->sb.bad)
		return -ENOBUFS;
	rc = uvs_sockbuf_dev_put(&s->sb, iov, n, off, len, flags);
	if (rc < 0)
		return -ENOBUFS;
	if (rc > 0)
		wake_app(s);
	/* Even when a SEQPACKET message is still incomplete (rc == 0): its pieces use credit
	 * too, and only the program consuming older data can give it back. */
	/* The peer is running out of credit: have the program tell us when it consumes, so a
	 * CREDIT_UPDATE goes out (Linux senders never ask for one). */
	if (c->cr.buf_alloc - (c->cr.rx_cnt - c->cr.last_fwd_cnt) < UVS_CREDIT_LOW_WATER) {
		__atomic_fetch_or(&s->shm->daemon_wait, UVS_DWAIT_CONSUMED, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&s->shm->fwd_cnt, __ATOMIC_ACQUIRE) != c->cr.last_fwd_cnt)
			uvs_conn_tx_wake(c);
	}
	return 0;
}

static uint32_t
ops_rx_consumed(void *ctx, struct uvs_conn *c)
{
	struct uvs_srv_sock *s = c->sock;
	uint32_t f, moved, allowed;

	(void)ctx;
	if (s == NULL || s->shm == NULL)
		return c->cr.fwd_cnt;
	for (int look = 0;; look++) {
		f = __atomic_load_n(&s->shm->fwd_cnt, __ATOMIC_ACQUIRE);
		moved = f - c->cr.fwd_cnt;
		allowed = c->cr.rx_cnt - c->cr.fwd_cnt;
		/* Only forward, and never past what was received, whatever the program wrote. */
		if (moved > allowed)
			return c->cr.fwd_cnt;
		/*
		 * Once f is advertised, is the peer still short of credit? Then the program must
		 * tell us of its next consumption: nothing else will (the peer cannot send, so
		 * ops_rx_data() will not run). Ask, then look once more, as a sleeper does:
		 * consumption after this look sees the bit. Without this, a notification the
		 * program spent on bytes we already knew about left the next ones unannounced
		 * and the peer stalled for ever (found with uvsock-guest txonly).
		 */
		if (c->cr.buf_alloc - (c->cr.rx_cnt - f) >= UVS_CREDIT_LOW_WATER || look == 2)
			return f;
		__atomic_fetch_or(&s->shm->daemon_wait, UVS_DWAIT_CONSUMED, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&s->shm->fwd_cnt, __ATOMIC_ACQUIRE) == f)
			return f;
	}
}

/* --- watched sockets: tx rings polled while the loop is busy --- */

static void
watch_remove(struct uvs_srv *srv, struct uvs_srv_sock *s)
{
	struct uvs_srv_sock *last;

	if (s->watch_idx < 0)
		return;
	last = srv->watch[--srv->nwatch];
	srv->watch[s->watch_idx] = last;
	last->watch_idx = s->watch_idx;
	s->watch_idx = -1;
}

/* Whether s's program queued data (or wrote a corrupt ring: the engine must see it). */
static bool
tx_pending(const struct uvs_srv_sock *s)
{
	uint32_t used;

	return uvs_ring_used(&s->sb.tx, &used) < 0 || used > 0;
}

/* Ask s's program to notify its next write, then look once more (it may have written just
 * before seeing the request). @return true if data is there. */
static bool
tx_arm(struct uvs_srv_sock *s)
{
	__atomic_fetch_or(&s->shm->daemon_wait, UVS_DWAIT_TX, __ATOMIC_SEQ_CST);
	return tx_pending(s);
}

/* s's tx ring ran dry: watch it while busy. @return false if the list is full (then the
 * caller arms s as before). */
static bool
watch_add(struct uvs_srv *srv, struct uvs_srv_sock *s)
{
	if (s->watch_idx >= 0)
		return true;
	if (srv->nwatch == UVS_SRV_WATCH_MAX)
		return false;
	s->watch_idx = (int32_t)srv->nwatch;
	srv->watch[srv->nwatch++] = s;
	return true;
}

unsigned int
uvs_srv_poll(struct uvs_srv *srv)
{
	unsigned int n = 0;

	for (uint32_t i = 0; i < srv->nwatch;) {
		struct uvs_srv_sock *s = srv->watch[i];

		if (s->conn == NULL || s->shm == NULL || !tx_pending(s)) {
			i++;
			continue;
		}
		/* Hand it to the engine and stop watching: tx_peek watches it again once it
		 * drains it. (Watching on would wake a connection without credit every pass.) */
		watch_remove(srv, s); /* the last one moves to i */
		uvs_conn_tx_wake(s->conn);
		srv->watch_wakes++;
		n++;
	}
	return n;
}

bool
uvs_srv_arm(struct uvs_srv *srv)
{
	bool work = false;

	while (srv->nwatch > 0) {
		struct uvs_srv_sock *s = srv->watch[srv->nwatch - 1];

		watch_remove(srv, s);
		if (s->conn != NULL && s->shm != NULL && tx_arm(s)) {
			uvs_conn_tx_wake(s->conn);
			work = true;
		}
	}
	return work;
}

static uint32_t
ops_tx_peek(void *ctx, struct uvs_conn *c, uint32_t max, uint32_t *flags)
{
	struct uvs_srv *srv = ctx;
	struct uvs_srv_sock *s = c->sock;
	uint32_t n;

	*flags = 0;
	if (s == NULL || s->shm == NULL)
		return 0;
	n = uvs_sockbuf_dev_peek(&s->sb, max, flags);
	if (n == 0 && !s->sb.bad && !watch_add(srv, s)) {
		/* Drained and not watched: ask for a notification, then look again to close
		 * the race. */
		__atomic_fetch_or(&s->shm->daemon_wait, UVS_DWAIT_TX, __ATOMIC_SEQ_CST);
		n = uvs_sockbuf_dev_peek(&s->sb, max, flags);
	}
	if (s->sb.bad) {
		/* The program wrote impossible ring indexes or records: reset its connection. */
		uvs_conn_abort(c);
		return 0;
	}
	return n;
}

static void
ops_tx_copy(void *ctx, struct uvs_conn *c, const struct iovec *iov, unsigned int n, uint32_t off,
		uint32_t len)
{
	struct uvs_srv_sock *s = c->sock;

	(void)ctx;
	uvs_sockbuf_dev_take(&s->sb, iov, n, off, len);
	if (s->filler_held) /* a sender may wait for space */
		filler_check(ctx, s);
}

static void
ops_event(void *ctx, struct uvs_conn *c, enum uvs_event ev)
{
	struct uvs_srv *srv = ctx;
	struct uvs_srv_sock *s = c->sock;

	if (s == NULL && ev != UVS_EV_ACCEPTABLE)
		return;
	switch (ev) {
	case UVS_EV_CONNECTED:
		publish_conn(s, c);
		__atomic_store_n(&s->shm->state, UVS_SS_CONNECTED, __ATOMIC_RELEASE);
		/* not readable: connecting waits on the filler (POLLOUT), as in Linux; a
		 * doorbell comes with the first data */
		break;
	case UVS_EV_CONNECT_FAILED:
		if (s->shm != NULL) {
			__atomic_store_n(&s->shm->err, c->err, __ATOMIC_RELEASE);
			__atomic_store_n(&s->shm->state, UVS_SS_UNCONNECTED, __ATOMIC_RELEASE);
			wake_app(s);
		}
		break;
	case UVS_EV_ACCEPTABLE: {
		struct uvs_srv_sock *ls = c->listener->sock;
		struct uvs_srv_sock *ns;

		if (ls == NULL)
			return;
		ns = sock_alloc(srv, c->type, 0);
		if (ns == NULL)
			return;
		ns->buf_size = ls->buf_size;
		ns->buf_min = ls->buf_min;
		ns->buf_max = ls->buf_max;
		/* only an owner of the listener accepts: its creator's kept segments are
		 * for it while nobody else may accept */
		if (seg_create(srv, ns, ls->n_more_owners == 0 ? ls->owner : 0) < 0) {
			sock_free(srv, ns);
			return;
		}
		ns->conn = c;
		c->sock = ns;
		publish_conn(ns, c);
		ns->shm->state = UVS_SS_CONNECTED;
		if (c->listener->nqueued == 1)
			doorbell(ls); /* the accept queue became non-empty */
		break;
	}
	case UVS_EV_PEER_SHUTDOWN:
		if (s->shm != NULL) {
			__atomic_store_n(&s->shm->peer_shut, c->peer_shut, __ATOMIC_RELEASE);
			/* end of stream first: a poller woken by a doorbell before it would
			 * see POLLIN without POLLRDHUP */
			if (c->peer_shut & UVS_SHUTDOWN_SEND)
				anchor_rx_end(s);
			wake_app(s);
		}
		break;
	case UVS_EV_RESET:
		if (s->shm != NULL) {
			if (c->err < 0) /* the peer went away: the program's pending error */
				__atomic_store_n(&s->shm->err, c->err, __ATOMIC_RELEASE);
			__atomic_store_n(&s->shm->peer_shut, UVS_SHUTDOWN_BOTH, __ATOMIC_RELEASE);
			__atomic_store_n(&s->shm->state, UVS_SS_DISCONNECTED, __ATOMIC_RELEASE);
			anchor_rx_end(s);
			wake_app(s);
		}
		break;
	case UVS_EV_WRITABLE:
		if (s->shm != NULL)
			__atomic_store_n(&s->shm->peer_buf_alloc, c->cr.peer_buf_alloc,
					__ATOMIC_RELEASE);
		break;
	case UVS_EV_FREE:
		s->conn = NULL;
		c->sock = NULL;
		if (s->anchor < 0)
			sock_free(srv, s);
		return;
	}
	if (ev != UVS_EV_ACCEPTABLE && s->filler_held)
		filler_check(srv, s); /* connected, failed or reset: writable again */
}

static void
ops_kick(void *ctx, struct uvs_peer *p)
{
	struct uvs_srv *srv = ctx;

	srv->ops->kick(srv->ctx, p);
}

static const struct uvs_engine_ops srv_engine_ops = {
	.rx_data = ops_rx_data,
	.rx_consumed = ops_rx_consumed,
	.tx_peek = ops_tx_peek,
	.tx_copy = ops_tx_copy,
	.event = ops_event,
	.kick = ops_kick,
};

/* --- the program closed its socket, or sent its filler --- */

static void
anchor_event(struct uvs_srv *srv, uint32_t idx, uint32_t gen, uint32_t events)
{
	struct uvs_srv_sock *s = idx < srv->nsocks_alloc ? srv->socks[idx] : NULL;

	if (s == NULL || s->anchor < 0 || s->gen != gen)
		return; /* a stale event for a slot that was reused */
	if (events & (EPOLLHUP | EPOLLERR)) {
		/* Hang-up: every copy of the program's end is closed. A filler may still be
		 * queued; the socket goes with it. */
		epoll_ctl(srv->epfd, EPOLL_CTL_DEL, s->anchor, NULL);
		close(s->anchor);
		s->anchor = -1;
		if (s->conn != NULL)
			uvs_conn_close(s->conn, uvs_now_ns()); /* may free s through EV_FREE */
		else
			sock_free(srv, s);
		return;
	}
	filler_check(srv, s);
}

/* Watch a new socket's anchor. Unwatched, the socket would outlive the program: on failure
 * the program's end (app_end) is closed and the socket goes as if the program had closed it. */
static int
anchor_add(struct uvs_srv *srv, struct uvs_srv_sock *s, struct epoll_event *ev, int app_end)
{
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, s->anchor, ev) == 0)
		return 0;
	close(app_end);
	anchor_event(srv, s->idx, s->gen, EPOLLHUP); /* may free s */
	return -ENOBUFS;
}

/* A program's UVS_CTL_NOTIFY: it queued data, consumed some, or wants its doorbell back. */
static void
notify(struct uvs_srv_sock *s, uint32_t bits)
{
	/* The program may have taken the news meanwhile (a second read): then no doorbell, or
	 * its fd would read as readable with nothing to read. */
	if ((bits & UVS_NOTE_RING_BACK) && sock_has_news(s))
		doorbell(s);
	if ((bits & (UVS_DWAIT_TX | UVS_DWAIT_CONSUMED)) && s->conn != NULL && s->shm != NULL)
		uvs_conn_tx_wake(s->conn);
}

/* The socket cookie of fd (64 bits, unique for the kernel's uptime, never reused), or 0 if
 * fd is not a socket. Never blocks, whatever fd a program sent us. */
static uint64_t
sock_cookie(int fd)
{
	uint64_t cookie = 0;
	socklen_t len = sizeof(cookie);

	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) < 0 || len != sizeof(cookie))
		return 0;
	return cookie;
}

/* A socket's app end was created: small send buffer (for the filler), cookie recorded. */
static void
anchor_prepare(struct uvs_srv_sock *s, int app_end)
{
	int sndbuf = UVS_ANCHOR_SNDBUF;

	setsockopt(app_end, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	s->app_cookie = sock_cookie(app_end);
}

/*
 * UVS_CTL_ATTACH: the client shows it holds the socket's anchor: from now on it may operate
 * the socket too. Possession of the fd is the capability, as for any fd: the fd sent must be
 * the very socket the daemon created (same socket cookie; inode numbers can be forged with
 * other files). A fork child names the socket; a program that got the fd across exec does not
 * know it (sock 0): it is found by the cookie, and told its id, type and segment.
 */
static int
req_attach(struct uvs_srv *srv, struct uvs_srv_client *cl, const struct uvs_ctl_req *req,
		struct uvs_ctl_resp *resp, int fd, int *fds)
{
	uint32_t idx = (uint32_t)req->sock;
	struct uvs_srv_sock *s = NULL;
	uint64_t cookie = fd >= 0 ? sock_cookie(fd) : 0;
	uint64_t *o;

	if (cookie == 0)
		return -EBADF;
	if (req->sock == 0) {
		for (idx = 0; idx < srv->nsocks_alloc && s == NULL; idx++)
			if (srv->socks[idx] != NULL && srv->socks[idx]->anchor >= 0 &&
					srv->socks[idx]->app_cookie == cookie)
				s = srv->socks[idx];
	} else if (idx < srv->nsocks_alloc) {
		s = srv->socks[idx];
		if (s != NULL && s->gen != (uint32_t)(req->sock >> 32))
			s = NULL;
	}
	if (s == NULL || s->anchor < 0 || s->app_cookie != cookie)
		return -EBADF;
	/* another process holds the anchor: it maps the segment (fork) or gets it (below) */
	if (s->shm != NULL)
		s->seg_holder = UVS_SRV_SEG_EXPOSED;
	resp->b = s->listening;
	if (req->sock == 0) {
		resp->sock = sock_id(s);
		resp->a = s->type;
		if (s->shm != NULL && s->memfd >= 0) {
			fds[0] = fcntl(s->memfd, F_DUPFD_CLOEXEC, 0);
			if (fds[0] < 0)
				return -EMFILE;
		}
	}
	if (sock_lookup(srv, sock_id(s), cl->serial) != NULL)
		return 0; /* already an owner */
	if (s->n_more_owners >= UVS_SRV_MAX_OWNERS)
		return -ETOOMANYREFS;
	o = realloc(s->more_owners, (s->n_more_owners + 1) * sizeof(*o));
	if (o == NULL)
		return -ENOMEM;
	if (s->n_more_owners == 0)
		srv->nsocks_attached++;
	o[s->n_more_owners++] = cl->serial;
	s->more_owners = o;
	return 0;
}

/* --- quotas (the policy's sockets rules) --- */

/* User uid's entry in srv->quota, or (with make) a free one for it; NULL if none. */
static struct uvs_srv_quota *
quota_entry(struct uvs_srv *srv, uid_t uid, bool make)
{
	struct uvs_srv_quota *free_e = NULL;

	for (unsigned int i = 0; i < UVS_SRV_QUOTA_USERS; i++) {
		if (srv->quota[i].nsocks == 0)
			free_e = free_e != NULL ? free_e : &srv->quota[i];
		else if (srv->quota[i].uid == uid)
			return &srv->quota[i];
	}
	if (!make || free_e == NULL)
		return NULL;
	free_e->uid = uid;
	return free_e;
}

/* Whether client cl's user may hold one more socket (the policy's uvs_policy_quota): 0 with
 * *ep its entry to charge (NULL: no quota, nothing counted), or -ENOBUFS (logged at the 1st,
 * 2nd, 4th... refusal, and counted). */
static int
quota_check(struct uvs_srv *srv, const struct uvs_srv_client *cl, struct uvs_srv_quota **ep)
{
	uint32_t max = uvs_policy_quota(srv->policy, cl->uid, cl->gids, cl->ngids);
	struct uvs_srv_quota *e;
	uint64_t n;

	*ep = NULL;
	if (max == UINT32_MAX)
		return 0; /* no policy, or no quota for this user */
	e = quota_entry(srv, cl->uid, true);
	if (e != NULL && e->nsocks < max) {
		*ep = e;
		return 0;
	}
	n = ++srv->drops[UVS_SRV_DROP_QUOTA];
	if ((n & (n - 1)) == 0)
		srv_log(srv, "uid %u (pid %d): socket refused: %s (%lu so far)",
				(unsigned int)cl->uid, (int)cl->pid,
				e == NULL ? "too many users hold sockets"
					  : "the user holds its quota",
				(unsigned long)n);
	return -ENOBUFS;
}

/* Socket s is client cl's from now on, charged to entry e (from quota_check(), or NULL). */
static void
quota_charge(const struct uvs_srv_client *cl, struct uvs_srv_quota *e, struct uvs_srv_sock *s)
{
	s->uid = cl->uid;
	if (e == NULL)
		return;
	e->nsocks++;
	s->charged = true;
}

/* Socket s goes: its user holds one fewer. */
static void
quota_release(struct uvs_srv *srv, struct uvs_srv_sock *s)
{
	struct uvs_srv_quota *e = s->charged ? quota_entry(srv, s->uid, false) : NULL;

	if (e != NULL)
		e->nsocks--;
	s->charged = false;
}

/* --- control requests --- */

static int
req_socket(struct uvs_srv *srv, struct uvs_srv_client *cl, const struct uvs_ctl_req *req,
		struct uvs_ctl_resp *resp, int *fds)
{
	struct uvs_srv_sock *s;
	struct uvs_srv_quota *quota;
	struct epoll_event ev = { .events = EPOLLIN };
	int sv[2], rc;

	if (req->a != UVS_TYPE_STREAM && req->a != UVS_TYPE_SEQPACKET)
		return -ESOCKTNOSUPPORT;
	rc = quota_check(srv, cl, &quota);
	if (rc < 0)
		return rc;
	s = sock_alloc(srv, (uint16_t)req->a, cl->serial);
	if (s == NULL)
		return -ENOBUFS;
	quota_charge(cl, quota, s);
	s->conn = uvs_conn_create(srv->eng, s->type, s);
	if (s->conn == NULL || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		if (s->conn != NULL) {
			struct uvs_conn *c = s->conn;

			s->conn = NULL;
			c->sock = NULL;
			uvs_conn_close(c, 0);
		}
		sock_free(srv, s);
		return -ENOBUFS;
	}
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	anchor_prepare(s, sv[1]);
	s->anchor = sv[0];
	ev.data.u64 = UVS_SRV_EP_TAG(UVS_SRV_EP_ANCHOR, UVS_SRV_ANCHOR_KEY(s));
	rc = anchor_add(srv, s, &ev, sv[1]);
	if (rc < 0)
		return rc;
	fds[0] = sv[1];
	resp->sock = sock_id(s);
	return 0;
}

/*
 * Whether the client's process may bind ports below 1024 without being root, as Linux
 * allows with CAP_NET_BIND_SERVICE: its effective capabilities, from /proc (the pid is
 * SO_PEERCRED's, taken when it connected).
 */
static bool
cap_net_bind(const struct uvs_srv_client *cl)
{
	char path[64], line[256];
	bool cap = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)cl->pid);
	f = fopen(path, "re");
	if (f == NULL)
		return false;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "CapEff:", 7) == 0) {
			cap = (strtoull(line + 7, NULL, 16) >> UVS_SRV_CAP_NET_BIND_SERVICE) & 1;
			break;
		}
	}
	fclose(f);
	return cap;
}

/* The policy's word on act (listen on port val, connect to CID val): 0, or -EACCES
 * (logged and counted). */
static int
policy_check(struct uvs_srv *srv, const struct uvs_srv_client *cl, enum uvs_policy_act act,
		uint32_t val)
{
	if (uvs_policy_allows(srv->policy, act, cl->uid, cl->gids, cl->ngids, val))
		return 0;
	srv->drops[UVS_SRV_DROP_DENIED]++;
	srv_log(srv, "uid %u (pid %d): %s %u refused by the policy", (unsigned int)cl->uid,
			(int)cl->pid,
			act == UVS_POLICY_LISTEN ? "listen on port" : "connect to CID", val);
	return -EACCES;
}

/* With a policy: the client process's groups, for group rules: its gid and supplementary
 * groups as the kernel has them (SO_PEERGROUPS), like file permissions, and without asking
 * the user database (which may be remote) on the polling thread. Beyond UVS_SRV_MAX_GIDS
 * supplementary groups, only the gid is kept (SO_PEERGROUPS answers ERANGE). */
static void
client_groups(struct uvs_srv_client *cl, gid_t gid)
{
	socklen_t len = (UVS_SRV_MAX_GIDS - 1) * sizeof(gid_t);

	cl->gids[0] = gid;
	cl->ngids = 1;
	if (getsockopt(cl->fd, SOL_SOCKET, SO_PEERGROUPS, cl->gids + 1, &len) == 0)
		cl->ngids += len / sizeof(gid_t);
}

static int
req_bind(struct uvs_srv *srv, struct uvs_srv_client *cl, struct uvs_srv_sock *s,
		const struct uvs_ctl_req *req, struct uvs_ctl_resp *resp)
{
	int rc;

	if (req->a != VMADDR_CID_ANY && req->a != srv->local_cid)
		return -EADDRNOTAVAIL;
	if (req->b <= UVS_LAST_RESERVED_PORT && cl->uid != 0 && !cap_net_bind(cl))
		return -EACCES;
	rc = uvs_conn_bind(s->conn, req->b);
	if (rc < 0)
		return rc;
	s->bound_cid = req->a;
	resp->b = s->conn->local_port;
	return 0;
}

static int
req_connect(struct uvs_srv *srv, struct uvs_srv_client *cl, struct uvs_srv_sock *s,
		const struct uvs_ctl_req *req, int *fds)
{
	struct uvs_peer *p;
	int rc;

	if (s->listening)
		return -EINVAL;
	if (s->conn->state == UVS_ST_SYN_SENT)
		return -EALREADY;
	if (s->conn->state == UVS_ST_ESTABLISHED || s->conn->state == UVS_ST_CLOSING)
		return -EISCONN;
	if (s->conn->state != UVS_ST_CLOSE)
		return -EINVAL;
	p = srv->ops->peer_by_cid(srv->ctx, req->a);
	if (p == NULL)
		return -ENODEV; /* no guest with that CID: Linux's vhost answers the same */
	if (s->type == UVS_TYPE_SEQPACKET && !p->seqpacket)
		return -ESOCKTNOSUPPORT;
	rc = seg_create(srv, s, cl->serial);
	if (rc < 0)
		return rc;
	s->shm->state = UVS_SS_CONNECTING;
	s->conn->buf_size = (uint32_t)s->buf_size;
	rc = uvs_conn_connect_via(s->conn, p, req->a, req->b, uvs_now_ns());
	if (rc < 0) {
		seg_unmap(s);
		return rc;
	}
	publish_conn(s, s->conn);
	/* The program gets a copy of the memfd; the daemon keeps one for a program that
	 * inherits the socket across exec (UVS_CTL_ATTACH by inode). */
	fds[0] = fcntl(s->memfd, F_DUPFD_CLOEXEC, 0);
	if (fds[0] < 0)
		return -EMFILE;
	seg_give(s, cl);
	return 0;
}

static int
req_accept(struct uvs_srv *srv, struct uvs_srv_client *cl, struct uvs_srv_sock *ls,
		struct uvs_ctl_resp *resp, int *fds)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct uvs_conn *child;
	struct uvs_srv_sock *s;
	struct uvs_srv_quota *quota;
	int sv[2], rc;

	if (!ls->listening)
		return -EINVAL;
	rc = quota_check(srv, cl, &quota); /* before a connection leaves the queue */
	if (rc < 0)
		return rc;
	for (;;) {
		rc = uvs_conn_accept(ls->conn, &child);
		if (rc < 0)
			return rc;
		s = child->sock;
		if (s != NULL && child->state != UVS_ST_DONE)
			break;
		/* reset before it was accepted: Linux still hands it out; we drop it */
		uvs_conn_close(child, uvs_now_ns());
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		uvs_conn_close(child, uvs_now_ns());
		return -EMFILE;
	}
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	anchor_prepare(s, sv[1]);
	s->anchor = sv[0];
	s->owner = cl->serial;
	quota_charge(cl, quota, s);
	ev.data.u64 = UVS_SRV_EP_TAG(UVS_SRV_EP_ANCHOR, UVS_SRV_ANCHOR_KEY(s));
	rc = anchor_add(srv, s, &ev, sv[1]);
	if (rc < 0)
		return rc;
	fds[0] = sv[1];
	fds[1] = fcntl(s->memfd, F_DUPFD_CLOEXEC, 0); /* the daemon keeps one (exec) */
	seg_give(s, cl);
	resp->sock = sock_id(s);
	resp->a = child->peer_cid;
	resp->b = child->peer_port;
	/* The fd must read as readable exactly when a receive would not block: ring now if
	 * data or an end arrived before the program had an fd; otherwise the first change
	 * rings (app_wait is still set from creation). */
	if (sock_has_news(s)) {
		__atomic_store_n(&s->shm->app_wait, 0, __ATOMIC_RELAXED);
		doorbell(s);
	}
	if ((s->shm->peer_shut & UVS_SHUTDOWN_SEND) || s->shm->state == UVS_SS_DISCONNECTED)
		anchor_rx_end(s); /* the peer finished before the program accepted */
	if (!TAILQ_EMPTY(&ls->conn->accept_q))
		doorbell(ls); /* keep the listener readable while connections wait */
	return 0;
}

static void
buf_update(struct uvs_srv_sock *s, uint64_t val)
{
	/* Linux's vsock_update_buffer_size() */
	if (val > s->buf_max)
		val = s->buf_max;
	if (val < s->buf_min)
		val = s->buf_min;
	if (val > UVS_SRV_BUF_SIZE_LIMIT)
		val = UVS_SRV_BUF_SIZE_LIMIT;
	s->buf_size = val;
	if (s->conn != NULL && s->shm != NULL) {
		/* A connected socket's ring cannot grow: advertise at most what it holds. */
		uint64_t cap = s->type == UVS_TYPE_SEQPACKET ? s->sb.rx.size / 2 : s->sb.rx.size;

		uvs_conn_set_buf_size(s->conn, (uint32_t)(val < cap ? val : cap));
	} else if (s->conn != NULL) {
		s->conn->buf_size = (uint32_t)val;
	}
}

static int
req_setopt(struct uvs_srv_sock *s, const struct uvs_ctl_req *req, struct uvs_ctl_resp *resp)
{
	if (req->a != AF_VSOCK)
		return -ENOPROTOOPT;
	switch (req->b) {
	case SO_VM_SOCKETS_BUFFER_SIZE:
		buf_update(s, req->val);
		break;
	case SO_VM_SOCKETS_BUFFER_MIN_SIZE:
		s->buf_min = req->val;
		buf_update(s, s->buf_size);
		break;
	case SO_VM_SOCKETS_BUFFER_MAX_SIZE:
		s->buf_max = req->val;
		buf_update(s, s->buf_size);
		break;
	case SO_VM_SOCKETS_CONNECT_TIMEOUT:
		s->conn->connect_timeout_ns = req->val ? req->val : UVS_CONNECT_TIMEOUT_NS;
		break;
	default:
		return -ENOPROTOOPT;
	}
	resp->val = s->buf_size;
	resp->a = (uint32_t)(s->buf_min > UINT32_MAX ? UINT32_MAX : s->buf_min);
	resp->b = (uint32_t)(s->buf_max > UINT32_MAX ? UINT32_MAX : s->buf_max);
	return 0;
}

static int
req_getopt(struct uvs_srv_sock *s, const struct uvs_ctl_req *req, struct uvs_ctl_resp *resp)
{
	if (req->a != AF_VSOCK)
		return -ENOPROTOOPT;
	switch (req->b) {
	case SO_VM_SOCKETS_BUFFER_SIZE:
		resp->val = s->buf_size;
		return 0;
	case SO_VM_SOCKETS_BUFFER_MIN_SIZE:
		resp->val = s->buf_min;
		return 0;
	case SO_VM_SOCKETS_BUFFER_MAX_SIZE:
		resp->val = s->buf_max;
		return 0;
	case SO_VM_SOCKETS_CONNECT_TIMEOUT:
		resp->val = s->conn->connect_timeout_ns;
		return 0;
	default:
		return -ENOPROTOOPT;
	}
}

static int
handle(struct uvs_srv *srv, struct uvs_srv_client *cl, const struct uvs_ctl_req *req,
		struct uvs_ctl_resp *resp, int *fds, int in_fd)
{
	struct uvs_srv_sock *s;

	switch (req->op) {
	case UVS_CTL_ATTACH:
		return req_attach(srv, cl, req, resp, in_fd, fds);
	case UVS_CTL_HELLO:
		if (req->a != UVS_IPC_VERSION)
			return -EPROTONOSUPPORT;
		resp->a = (uint32_t)getpid();
		resp->b = srv->local_cid;
		return 0;
	case UVS_CTL_SOCKET:
		return req_socket(srv, cl, req, resp, fds);
	case UVS_CTL_FORK:
		seg_forget_holder(srv, cl);
		return 0;
	default:
		break;
	}
	s = sock_lookup(srv, req->sock, cl->serial);
	if (req->op == UVS_CTL_NOTIFY) {
		if (s != NULL)
			notify(s, req->a);
		else
			srv->drops[UVS_SRV_DROP_NOTIFY]++;
		return 0;
	}
	if (s != NULL && req->op == UVS_CTL_CLOSE) {
		struct pollfd pfd = { .fd = s->anchor, .events = POLLIN };

		if (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLHUP))
			anchor_event(srv, s->idx, s->gen, EPOLLHUP);
		return 0;
	}
	if (s == NULL || s->conn == NULL)
		return -EBADF;
	switch (req->op) {
	case UVS_CTL_BIND:
		return req_bind(srv, cl, s, req, resp);
	case UVS_CTL_LISTEN: {
		int rc = policy_check(srv, cl, UVS_POLICY_LISTEN, s->conn->local_port);

		/* as Linux clamps to net.core.somaxconn */
		if (rc == 0)
			rc = uvs_conn_listen(s->conn,
					req->a < UVS_SRV_SOMAXCONN ? req->a : UVS_SRV_SOMAXCONN);

		if (rc == 0)
			s->listening = true;
		return rc;
	}
	case UVS_CTL_SHUTDOWN: {
		int rc = uvs_conn_shutdown(s->conn, (uint8_t)req->a);

		if (rc == 0 && s->filler_held)
			filler_check(srv, s);
		return rc;
	}
	case UVS_CTL_CONNECT: {
		int rc = s->listening || s->conn->state != UVS_ST_CLOSE
					 ? 0 /* req_connect gives the state's error */
					 : policy_check(srv, cl, UVS_POLICY_CONNECT, req->a);

		return rc < 0 ? rc : req_connect(srv, cl, s, req, fds);
	}
	case UVS_CTL_ACCEPT:
		return req_accept(srv, cl, s, resp, fds);
	case UVS_CTL_SETOPT:
		return req_setopt(s, req, resp);
	case UVS_CTL_GETOPT:
		return req_getopt(s, req, resp);
	case UVS_CTL_GETNAME:
		resp->a = s->conn->state == UVS_ST_CLOSE || s->conn->state == UVS_ST_LISTEN
					  ? s->bound_cid
					  : s->conn->local_cid;
		resp->b = s->conn->local_port;
		return 0;
	default:
		return -EINVAL;
	}
}

/* A control client is gone: it no longer operates the sockets it attached (their list would
 * otherwise fill up with dead clients, and a socket shared by many short-lived processes would
 * refuse the next one). */
static void
owners_forget(struct uvs_srv *srv, uint64_t serial)
{
	if (srv->nsocks_attached == 0)
		return;
	for (uint32_t idx = 0; idx < srv->nsocks_alloc; idx++) {
		struct uvs_srv_sock *s = srv->socks[idx];

		if (s == NULL || s->n_more_owners == 0)
			continue;
		for (uint32_t i = 0; i < s->n_more_owners; i++) {
			if (s->more_owners[i] == serial) {
				s->more_owners[i] = s->more_owners[--s->n_more_owners];
				if (s->n_more_owners == 0)
					srv->nsocks_attached--;
				break;
			}
		}
	}
}

/* Receive one request and the fds that came with it (at most UVS_SRV_CTL_MAX_IN_FDS are kept,
 * the rest closed). @return its length, 0 on EOF, -errno. */
static ssize_t
ctl_recv(int fd, void *buf, size_t len, int *in_fds)
{
	char cbuf[UVS_SCM_SPACE(UVS_SRV_CTL_MAX_IN_FDS)];
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = sizeof(cbuf) };
	ssize_t n;

	n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	/* a truncated control message may have lost fds: they were never installed */
	uvs_scm_get(&msg, in_fds, UVS_SRV_CTL_MAX_IN_FDS);
	return n;
}

/* Close the open ones of n fds (-1: none) and mark them closed. */
static void
fds_close(int *fds, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		if (fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -1;
		}
}

static void
client_free(struct uvs_srv *srv, struct uvs_srv_client *cl)
{
	LIST_REMOVE(cl, link);
	epoll_ctl(srv->epfd, EPOLL_CTL_DEL, cl->fd, NULL);
	close(cl->fd);
	free(cl);
	srv->nclients--;
	ctl_resume(srv);
}

static void
client_readable(struct uvs_srv *srv, struct uvs_srv_client *cl)
{
	struct uvs_ctl_req req;
	struct uvs_ctl_resp resp;
	char cbuf[UVS_SCM_SPACE(2)];
	struct iovec iov = { .iov_base = &resp, .iov_len = sizeof(resp) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	int fds[2] = { -1, -1 };
	int in_fds[UVS_SRV_CTL_MAX_IN_FDS];
	int nfds;
	ssize_t n;

	/* Bounded per pass, like doorbells: level-triggered epoll brings us back. */
	for (int nreq = 0; nreq < UVS_SRV_CTL_BATCH; nreq++) {
		char raw[sizeof(req) + 1];

		for (int i = 0; i < UVS_SRV_CTL_MAX_IN_FDS; i++)
			in_fds[i] = -1;
		n = ctl_recv(cl->fd, raw, sizeof(raw), in_fds);
		if (n == -EAGAIN || n == -EINTR)
			return;
		if (n <= 0) {
			/* closed or failed; an empty message may still have brought fds */
			fds_close(in_fds, UVS_SRV_CTL_MAX_IN_FDS);
			goto drop;
		}
		memset(&resp, 0, sizeof(resp));
		if (uvs_ctl_req_check(raw, (size_t)n) < 0) {
			srv_log(srv, "client %lu (pid %d): malformed request (%zd bytes), closing",
					(unsigned long)cl->serial, (int)cl->pid, n);
			srv->drops[UVS_SRV_DROP_MALFORMED]++;
			fds_close(in_fds, UVS_SRV_CTL_MAX_IN_FDS);
			goto drop;
		}
		memcpy(&req, raw, sizeof(req));
		resp.op = req.op;
		resp.seq = req.seq;
		fds[0] = fds[1] = -1;
		resp.rc = handle(srv, cl, &req, &resp, fds, in_fds[0]);
		fds_close(in_fds, UVS_SRV_CTL_MAX_IN_FDS);
		if (req.op == UVS_CTL_NOTIFY)
			continue; /* one-way */
		/* an error carries no fd, whatever the handler made before it failed */
		if (resp.rc < 0)
			fds_close(fds, 2);
		/* handlers fill fds in order: fds[1] only with fds[0] */
		nfds = fds[0] < 0 ? 0 : fds[1] < 0 ? 1 : 2;
		resp.nfds = (uint32_t)nfds;
		uvs_scm_put(&msg, cbuf, fds, (unsigned int)nfds);
		n = sendmsg(cl->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		fds_close(fds, 2);
		if (n != sizeof(resp))
			goto drop; /* a client that does not read its replies is dropped */
	}
	return;
drop:
	owners_forget(srv, cl->serial);
	/* no client will have this serial again: the segments of its sockets still open can
	 * go to nobody either, so they are not wiped and kept when those close (a program
	 * exits with its control connection and anchors closing in one batch) */
	seg_forget_holder(srv, cl);
	client_free(srv, cl);
}

/* The spare fd (see struct uvs_srv), or -1. */
static int
spare_open(void)
{
	return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* An fd was closed: if the control socket was left unwatched for want of a spare, take one
 * again and watch it (its waiting connections are served, or refused as below). */
static void
ctl_resume(struct uvs_srv *srv)
{
	struct epoll_event ev = { .events = EPOLLIN,
		.data.u64 = UVS_SRV_EP_TAG(UVS_SRV_EP_CTL, 0) };

	if (!srv->ctl_paused)
		return;
	if (srv->spare_fd < 0)
		srv->spare_fd = spare_open();
	if (srv->spare_fd < 0)
		return;
	srv->ctl_paused = false;
	epoll_ctl(srv->epfd, EPOLL_CTL_MOD, srv->ctl_fd, &ev);
}

/* Refuse a program's control connection fd for want of fds: tell it ENOBUFS in place of the
 * answer to its HELLO (libuvsock returns it from socket(), as for a full socket table). */
static void
ctl_refuse(struct uvs_srv *srv, int fd)
{
	struct uvs_ctl_resp resp = { .op = UVS_CTL_HELLO, .rc = -ENOBUFS };
	uint64_t n;

	(void)send(fd, &resp, sizeof(resp), MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
	/* every refusal is counted; logged at 1, 2, 4, 8... so a flood cannot fill the log */
	n = ++srv->drops[UVS_SRV_DROP_NOFD];
	if ((n & (n - 1)) == 0)
		srv_log(srv,
				"out of file descriptors: a program's control connection refused "
				"(ENOBUFS; %lu so far)",
				(unsigned long)n);
}

/*
 * accept() failed for want of fds (EMFILE, ENFILE) with a program waiting. Give up the spare,
 * accept that one program and refuse it (ctl_refuse); take the spare again.
 * Without a spare (another thread took the fd meanwhile), stop watching the control socket
 * until the server closes an fd. @return true if a program was refused (try the next).
 */
static bool
ctl_refuse_one(struct uvs_srv *srv)
{
	struct epoll_event ev = { .events = 0, .data.u64 = UVS_SRV_EP_TAG(UVS_SRV_EP_CTL, 0) };
	int fd = -1, err = EMFILE;

	if (srv->spare_fd >= 0) {
		close(srv->spare_fd);
		fd = accept4(srv->ctl_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		err = fd < 0 ? errno : 0;
		if (fd >= 0)
			ctl_refuse(srv, fd);
		srv->spare_fd = spare_open();
		if (fd >= 0 && srv->spare_fd >= 0)
			return true;
		if (err == EAGAIN)
			return false; /* nobody waits after all: the listener is quiet */
	}
	srv->ctl_paused = true;
	epoll_ctl(srv->epfd, EPOLL_CTL_MOD, srv->ctl_fd, &ev);
	return false;
}

static void
ctl_accept(struct uvs_srv *srv)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct uvs_srv_client *cl;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd;

	for (;;) {
		fd = accept4(srv->ctl_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0 && (errno == EMFILE || errno == ENFILE) && ctl_refuse_one(srv))
			continue;
		if (fd < 0)
			return;
		if (!fds_room(srv, 1)) {
			ctl_refuse(srv, fd);
			continue;
		}
		cl = calloc(1, sizeof(*cl));
		if (cl == NULL || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
			free(cl);
			close(fd);
			continue;
		}
		cl->fd = fd;
		cl->uid = cred.uid;
		cl->pid = cred.pid;
		if (srv->policy != NULL)
			client_groups(cl, cred.gid);
		cl->serial = ++srv->next_serial;
		ev.data.u64 = UVS_SRV_EP_TAG(UVS_SRV_EP_CLIENT, (uintptr_t)cl);
		if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			/* unwatched, its requests would wait for ever: the program sees a hang-up */
			srv_log(srv, "client (pid %d): cannot watch its connection (%s), closing",
					(int)cl->pid, strerror(errno));
			free(cl);
			close(fd);
			continue;
		}
		LIST_INSERT_HEAD(&srv->clients, cl, link);
		srv->nclients++;
	}
}

int
uvs_srv_listen(struct uvs_srv *srv, const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct epoll_event ev = { .events = EPOLLIN,
		.data.u64 = UVS_SRV_EP_TAG(UVS_SRV_EP_CTL, 0) };
	char tmp[sizeof(sun.sun_path)];
	int fd;

	if (strlen(path) + 5 >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	strcpy(srv->ctl_path, path);
	/* Bind under a temporary name and rename: the socket appears only when ready. */
	snprintf(tmp, sizeof(tmp), "%s.tmp", srv->ctl_path);
	strcpy(sun.sun_path, tmp);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlink(tmp);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(fd, 128) < 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	/* By default open to every local user, like AF_VSOCK itself; --control-mode and
	 * --control-owner narrow it (and the policy says who may do what). Applied before the
	 * socket appears under its name, so nobody connects in between. */
	if (chmod(tmp, srv->ctl_mode) < 0 ||
			((srv->ctl_uid != (uid_t)-1 || srv->ctl_gid != (gid_t)-1) &&
					chown(tmp, srv->ctl_uid, srv->ctl_gid) < 0)) {
		int rc = -errno;

		close(fd);
		unlink(tmp);
		return rc;
	}
	if (rename(tmp, srv->ctl_path) < 0) {
		int rc = -errno;

		close(fd);
		unlink(tmp);
		return rc;
	}
	srv->ctl_fd = fd;
	if (srv->spare_fd < 0)
		srv->spare_fd = spare_open();
	epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev);
	return 0;
}

void
uvs_srv_unlisten(struct uvs_srv *srv)
{
	if (srv->ctl_fd >= 0) {
		close(srv->ctl_fd);
		unlink(srv->ctl_path);
		srv->ctl_fd = -1;
	}
	if (srv->spare_fd >= 0)
		close(srv->spare_fd);
	srv->spare_fd = -1;
	srv->ctl_paused = false;
}

void
uvs_srv_stop(struct uvs_srv *srv)
{
	uvs_srv_unlisten(srv);
	while (!LIST_EMPTY(&srv->clients))
		client_free(srv, LIST_FIRST(&srv->clients));
	uvs_srv_seg_flush(srv);
}

unsigned int
uvs_srv_seg_kept(const struct uvs_srv *srv)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < UVS_SRV_SEG_CACHE; i++)
		n += srv->seg_cache[i].shm != NULL;
	return n;
}

void
uvs_srv_seg_flush(struct uvs_srv *srv)
{
	for (unsigned int i = 0; i < UVS_SRV_SEG_CACHE; i++)
		if (srv->seg_cache[i].shm != NULL)
			seg_cache_drop(&srv->seg_cache[i]);
}

int
uvs_srv_init(struct uvs_srv *srv, int epfd, uint32_t local_cid, const struct uvs_srv_ops *ops,
		void *ctx)
{
	*srv = (struct uvs_srv){ .epfd = epfd,
		.ctl_fd = -1,
		.spare_fd = -1,
		.local_cid = local_cid,
		.ops = ops,
		.ctx = ctx,
		.ctl_mode = 0666,
		.ctl_uid = (uid_t)-1,
		.ctl_gid = (gid_t)-1 };
	LIST_INIT(&srv->clients);
	srv->eng = uvs_engine_create(local_cid, &srv_engine_ops, srv);
	return srv->eng == NULL ? -ENOMEM : 0;
}

bool
uvs_srv_event(struct uvs_srv *srv, uint64_t tag, uint32_t events)
{
	uint64_t val = tag >> 3;

	switch (UVS_SRV_EP_KIND(tag)) {
	case UVS_SRV_EP_CTL:
		ctl_accept(srv);
		return true;
	case UVS_SRV_EP_CLIENT:
		client_readable(srv, (struct uvs_srv_client *)(uintptr_t)val);
		return true;
	case UVS_SRV_EP_ANCHOR:
		anchor_event(srv, (uint32_t)(val & ((1u << UVS_SRV_ANCHOR_IDX_BITS) - 1)),
				(uint32_t)(val >> UVS_SRV_ANCHOR_IDX_BITS), events);
		return true;
	default:
		return false;
	}
}

const struct uvs_srv_sock *
uvs_srv_sock_at(const struct uvs_srv *srv, uint32_t idx)
{
	return idx < srv->nsocks_alloc ? srv->socks[idx] : NULL;
}
