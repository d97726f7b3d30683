/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fuzz target: the control-socket protocol between programs and the daemon, in process: the
 * request check (uvs_ctl_req_check) and lib/uvs_srv.c as the daemon runs it, the engine's
 * socket layer included, with programs that misbehave in every way the input can express.
 *
 * Each input sets up a server as uvsockd does (uvs_srv_init on a fresh epoll set,
 * uvs_srv_listen on a socket in a private temporary directory) with two guests as peers
 * (CID 3 with SEQPACKET, CID 4 without), connects a first program, and then runs actions
 * until the input ends:
 *  - a program sends a request (any op, socket id, arguments, size; maybe an fd attached) or
 *    raw bytes, or up to 20 requests at once with anchors closed in between; a program connects
 *    or disconnects (up to three programs at once);
 *  - a program uses what it was given: its anchors (filler, token, shutdown, reading the
 *    doorbells, closing) and its mapped segments (honest ring writes and reads with libuvsock's
 *    uvs_sockbuf_app_* calls, or any value in any field or ring byte the daemon reads);
 *  - a guest sends a packet to one of the sockets (or anywhere), the guest's receive side is
 *    drained, timers run, a guest goes away and comes back.
 * After each action the server's epoll events are handled exactly as the daemon's loop does
 * (uvs_srv_event), and every response is read and checked.
 *
 * Checked: a well-formed request gets exactly one response (none for NOTIFY), in order, with
 * its op and seq, an rc of 0 or a negative errno, and as many fds as nfds says; a malformed one (wrong
 * size or op, as uvs_ctl_req_check says) and nothing else disconnects the program; every new
 * segment has a sane header; the server's connections and anchors keep referring to the
 * files they were (no descriptor closed behind its back); a program that only ever used its segment as libuvsock does never
 * finds its receive ring corrupt, whatever the guest sent; the server's socket table and the
 * engine's peers stay consistent (ids, back pointers, counts, kicks); the server's epoll set
 * becomes quiet (no event it keeps failing to consume); and after the programs and guests are
 * gone every socket is freed (ASan's leak check covers the rest) and no fd is left open.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/sockios.h>
#include <linux/vm_sockets.h>

#include "fuzz.h"
#include "uvs_pkt.h"
#include "uvs_policy.h"
#include "uvs_scm.h"
#include "uvs_srv.h"
#include "uvs_virtq.h"

#define LOCAL_CID UVS_CID_HOST
#define NPEERS 2
#define GPORT 5000u
#define MAX_CLIENTS 3
/* The policy's socket quota (sockets rules) for every user: below what an input can hold
 * (MAX_ANCHORS), so that some inputs reach it. */
#define QUOTA 12
#define QUOTA_STR "12"
/* Anchors and segments one input keeps: enough for listeners, children and connections at
 * once; more are closed on receipt (the server sees them hang up). */
#define MAX_ANCHORS 32
/* Segments of closed sockets remembered (which program had them) for the reuse check. */
#define MAX_GHOSTS 64
#define MAX_SEGS 16
#define MAX_IDS 64
/* Requests a program may send before reading any response: more than the server serves per
 * event (UVS_SRV_CTL_BATCH), so that a batch ends with requests still queued. */
#define PIPE_MAX 20
/* Rounds of epoll events handled before the server must be quiet: each round serves up to
 * 64 events and 16 requests per program, and an action queues only a few. */
#define PUMP_ROUNDS 256
#define EP_BATCH 64
/* Largest guest packet payload made, and the room of a guest receive buffer. */
#define ARENA_SIZE (UVS_HDR_SIZE + UVS_MAX_PKT_PAYLOAD + 256u)
/* Packets one drain action collects at most. */
#define DRAIN_LIMIT 4096u
#define SEC 1000000000ull
/* How long a hang-up may take to show after the server closed its end. close() drops only the
 * server's reference: a task that holds the file at that moment (any process listing this
 * one's /proc/PID/fd, as a process monitor does) completes the release itself, a little later.
 * Seen here: 0.1 ms; with a loop reading this process's /proc/PID/fd, the unanswered-request
 * failure came every 65 thousand runs instead of every 3 million. */
#define HANGUP_WAIT_MS 1000

enum action {
	C_REQ,
	C_RAW,
	C_CLIENT,
	A_ANCHOR,
	S_WRITE,
	S_READ,
	S_POKE,
	G_PKT,
	G_DRAIN,
	G_TICK,
	G_DETACH,
	C_PIPE,
	ACT_MAX,
};

/* A request sent and not answered yet. */
struct pending {
	uint32_t op, seq;
	uint64_t sock;
	bool malformed; /* the server must hang up when it reads this one */
};

struct client {
	int fd;		 /* -1: none */
	ino_t ino;	 /* fd's socket: it must stay that one while the program uses it */
	uint64_t prog;	 /* which connection this is, over the input */
	uint64_t serial; /* the server's client for it, 0 if none was seen */
	ino_t srv_ino;	 /* and the server's end of the connection */
	struct pending q[PIPE_MAX];
	unsigned int nq;
	uint64_t ids[MAX_IDS]; /* socket ids this program was given */
	unsigned int nids;
};

struct seg {
	struct uvs_shm *shm;
	size_t size;
	struct uvs_sockbuf sb; /* the program's side */
	bool poked;	       /* the program broke its side of the segment */
	uint64_t id;
	unsigned int client;
	uint64_t prog; /* the program (client connection) it went to */
	ino_t ino;
	bool forked; /* the program forked since: a child maps it too */
};

struct ctx {
	struct uvs_srv srv;
	int epfd;
	struct uvs_peer peers[NPEERS];
	struct client cl[MAX_CLIENTS];
	int anchors[MAX_ANCHORS];	  /* program ends; -1 once closed */
	ino_t anchor_inos[MAX_ANCHORS];	  /* their sockets (anchor_fd() checks them) */
	uint64_t anchor_ids[MAX_ANCHORS]; /* their sockets */
	bool anchor_shut[MAX_ANCHORS];	  /* shut for writing by the program (act_anchor) */
	struct seg ghosts[MAX_GHOSTS];	  /* unmapped at close (ino, prog, forked only) */
	unsigned int nghosts;
	unsigned int nanchors;
	struct seg segs[MAX_SEGS];
	unsigned int nsegs;
	uint64_t nprogs;
	int fds_at_start;
};

static char ctl_dir[64];
static char ctl_path[96];
static _Alignas(8) uint8_t arena[ARENA_SIZE];

/* --- the server's owner: peers, kicks, log --- */

static struct uvs_peer *
o_peer_by_cid(void *ctx, uint32_t cid)
{
	struct ctx *t = ctx;

	for (unsigned int i = 0; i < NPEERS; i++)
		if (t->peers[i].cid == cid)
			return &t->peers[i];
	return NULL;
}

static void
o_kick(void *ctx, struct uvs_peer *p)
{
	struct ctx *t = ctx;

	FZ_CHECK(p == &t->peers[0] || p == &t->peers[1]);
}

static void
o_log(void *ctx, const char *msg)
{
	(void)ctx;
	FZ_CHECK(strlen(msg) < 256);
}

static const struct uvs_srv_ops owner_ops = {
	.peer_by_cid = o_peer_by_cid,
	.kick = o_kick,
	.log = o_log,
};

static void
peers_init(struct ctx *t, unsigned int i)
{
	static const uint32_t cids[NPEERS] = { 3, 4 };

	uvs_peer_init(&t->peers[i], cids[i], i == 0, NULL);
}

/* --- invariants --- */

#if defined(__clang__)
#define NO_COVERAGE __attribute__((no_sanitize("coverage")))
#else
#define NO_COVERAGE /* gcc builds the replay test, which collects no coverage */
#endif

/* The file each of the server's program connections and anchors referred to when first seen
 * in this input: the programs and the server share one descriptor table here, so a number
 * closed behind the server's back and reused would make it read another file (a request
 * taken by the wrong reader is neither answered nor hung up on). */
#define MAX_SEEN 256
struct fd_seen {
	uint64_t key; /* a client's serial, or a socket's slot and generation, tagged */
	int fd;
	ino_t ino;
};
static struct fd_seen fds_seen[MAX_SEEN];
static unsigned int nfds_seen;

#define SEEN_CLIENT (1ull << 63)

/* The inode behind fd, or 0 if it is not open. */
NO_COVERAGE static ino_t
fd_ino(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

NO_COVERAGE static void
fd_same(uint64_t key, int fd)
{
	struct stat st;

	if (fd < 0)
		return;
	FZ_CHECK(fstat(fd, &st) == 0);
	for (unsigned int i = 0; i < nfds_seen; i++) {
		if (fds_seen[i].key == key && fds_seen[i].fd == fd) {
			if (fds_seen[i].ino != st.st_ino)
				fprintf(stderr, "fuzz_ctl: the server's fd %d (%s %#llx) is another file\n",
						fd, key & SEEN_CLIENT ? "client" : "anchor of",
						(unsigned long long)(key & ~SEEN_CLIENT));
			FZ_CHECK(fds_seen[i].ino == st.st_ino);
			return;
		}
	}
	if (nfds_seen < MAX_SEEN)
		fds_seen[nfds_seen++] = (struct fd_seen){ .key = key, .fd = fd, .ino = st.st_ino };
}

/* Run after every action: without coverage instrumentation (its comparisons are the same every
 * time, and over the whole socket table they took a seventh of the run time), and reading the
 * table directly rather than through the library's instrumented accessor. */
NO_COVERAGE static void
check_state(struct ctx *t)
{
	const struct uvs_srv_client *cl;
	uint32_t live = 0, charged = 0, counted = 0;

	for (uint32_t i = 0; i < t->srv.nsocks_alloc; i++) {
		const struct uvs_srv_sock *s = t->srv.socks[i];

		if (s == NULL)
			continue;
		live++;
		charged += s->charged;
		FZ_CHECK(s->idx == i);
		FZ_CHECK(s->conn == NULL || s->conn->sock == s);
		FZ_CHECK(s->n_more_owners <= UVS_SRV_MAX_OWNERS);
		FZ_CHECK(s->shm == NULL ||
				(s->memfd >= 0 && s->sb.rx.size >= 4096 && s->sb.tx.size >= 4096));
		fd_same((uint64_t)i << 32 | s->gen, s->anchor);
	}
	LIST_FOREACH(cl, &t->srv.clients, link)
		fd_same(SEEN_CLIENT | cl->serial, cl->fd);
	FZ_CHECK(live == t->srv.nsocks_live);
	/* the quota counts are the sockets charged, none past the quota */
	for (unsigned int i = 0; i < UVS_SRV_QUOTA_USERS; i++) {
		FZ_CHECK(t->srv.quota[i].nsocks <= QUOTA);
		counted += t->srv.quota[i].nsocks;
	}
	FZ_CHECK(counted == charged);
	for (unsigned int i = 0; i < NPEERS; i++) {
		struct uvs_peer *p = &t->peers[i];
		const struct uvs_conn *c;
		uint32_t n = 0;

		LIST_FOREACH(c, &p->conns, peer_link) {
			FZ_CHECK(c->peer == p);
			n++;
		}
		FZ_CHECK(n == p->nconns && n <= UVS_PEER_MAX_CONNS);
		if (p->orphan_count > 0 || !TAILQ_EMPTY(&p->txq))
			FZ_CHECK(p->kicked);
	}
}

/* Handle the server's epoll events as the daemon's loop does, until there are none. */
static void
pump(struct ctx *t)
{
	struct epoll_event ev[EP_BATCH];
	int round;

	for (round = 0; round < PUMP_ROUNDS; round++) {
		int n = epoll_wait(t->epfd, ev, EP_BATCH, 0);

		FZ_CHECK(n >= 0);
		if (n == 0)
			break;
		for (int i = 0; i < n; i++)
			FZ_CHECK(uvs_srv_event(&t->srv, ev[i].data.u64, ev[i].events));
	}
	/* an event the server keeps failing to consume would spin the daemon's loop */
	FZ_CHECK(round < PUMP_ROUNDS);
}

/* Pump until the server has no client and no socket left, or HANGUP_WAIT_MS passed: the
 * hang-ups of the programs' ends may show late (HANGUP_WAIT_MS). */
static void
pump_until_gone(struct ctx *t)
{
	uint64_t t0 = uvs_now_ns();
	struct epoll_event ev;

	for (;;) {
		pump(t);
		if ((LIST_EMPTY(&t->srv.clients) && t->srv.nsocks_live == 0) ||
				uvs_now_ns() - t0 > HANGUP_WAIT_MS * 1000000ull)
			return;
		(void)epoll_wait(t->epfd, &ev, 1, 10); /* level-triggered: pump() sees it again */
	}
}

/* --- what the programs were given --- */

static void
take_anchor(struct ctx *t, int fd, uint64_t id)
{
	if (t->nanchors == MAX_ANCHORS) {
		close(fd);
		return;
	}
	t->anchor_ids[t->nanchors] = id;
	t->anchor_inos[t->nanchors] = fd_ino(fd);
	t->anchor_shut[t->nanchors] = false;
	t->anchors[t->nanchors++] = fd;
}

/* Anchor i's fd, checked to be still the socket the program was given (-1 once closed): a
 * number closed behind the program's back and reused by the server would have the program
 * read, write or close one of the server's sockets. */
NO_COVERAGE static int *
anchor_fd(struct ctx *t, unsigned int i)
{
	int *fd = &t->anchors[i];

	if (*fd >= 0 && fd_ino(*fd) != t->anchor_inos[i])
		fprintf(stderr, "fuzz_ctl: anchor %u's fd %d is another file now\n", i, *fd);
	FZ_CHECK(*fd < 0 || fd_ino(*fd) == t->anchor_inos[i]);
	return fd;
}

/* The program closed socket id's anchor: as libuvsock does, it unmaps the socket's segment;
 * which program had it is remembered for the reuse check (seg_check_new). */
static void
seg_retire(struct ctx *t, uint64_t id)
{
	for (unsigned int i = 0; i < t->nsegs; i++) {
		if (t->segs[i].id != id || t->segs[i].poked)
			continue; /* a poked one stays: a program that broke its side keeps at it */
		munmap(t->segs[i].shm, t->segs[i].size);
		t->ghosts[t->nghosts++ % MAX_GHOSTS] = t->segs[i];
		t->segs[i--] = t->segs[--t->nsegs];
	}
}

/* The program broke its side of socket id's segments: the model of the rings is off. */
static void
seg_break(struct ctx *t, uint64_t id)
{
	for (unsigned int i = 0; i < t->nsegs; i++)
		if (t->segs[i].id == id)
			t->segs[i].poked = true;
}

/* Whether a segment header describes rings inside the segment, as libuvsock's seg_map()
 * requires. */
static bool
seg_header_ok(const struct uvs_shm *shm, size_t size)
{
	return shm->magic == UVS_IPC_MAGIC && shm->version == UVS_IPC_VERSION &&
	       shm->size == size &&
	       (shm->type == UVS_TYPE_STREAM || shm->type == UVS_TYPE_SEQPACKET) &&
	       shm->rx_off >= UVS_SHM_HDR_SIZE && shm->tx_off >= UVS_SHM_HDR_SIZE &&
	       (uint64_t)shm->rx_off + shm->rx_size <= size &&
	       (uint64_t)shm->tx_off + shm->tx_size <= size && shm->rx_size >= 4096 &&
	       (shm->rx_size & (shm->rx_size - 1)) == 0 && shm->tx_size >= 4096 &&
	       (shm->tx_size & (shm->tx_size - 1)) == 0;
}

/* Whether the bytes [from, to) of the segment that the memfd has (SEEK_DATA) are all zero:
 * the holes are, and reading them would fill them. */
static bool
seg_blank(int fd, const uint8_t *base, off_t from, off_t to)
{
	while (from < to) {
		off_t end;

		from = lseek(fd, from, SEEK_DATA);
		if (from < 0 || from >= to)
			return true;
		end = lseek(fd, from, SEEK_HOLE);
		if (end > to)
			end = to;
		for (; from < end; from++)
			if (base[from] != 0)
				return false;
	}
	return true;
}

/* A segment given for a new socket (segments are reused, uvs_srv.c): no other program may
 * still map it, and nothing the previous socket's program wrote may show: its tx ring, its
 * own area, and the part of rx the daemon has not written yet are blank (past what it
 * produced, and past the SEQPACKET message it is still assembling there: uvs_sockbuf.c). */
static void
seg_check_new(struct ctx *t, int fd, const struct stat *st, const struct uvs_shm *shm, uint64_t id,
		uint64_t prog, bool accepted)
{
	const struct uvs_srv_sock *s = uvs_srv_sock_at(&t->srv, (uint32_t)id);
	uint64_t from = shm->rx.prod;
	bool mapped = false;

	/* An accepted socket's segment may be one its listener's creator had: the listener's
	 * owners share its connections (uvs_srv.c, "Segment reuse"), so only CONNECT's are
	 * checked against every other program. */
	for (unsigned int i = 0; i < t->nsegs; i++) {
		FZ_CHECK(accepted || t->segs[i].ino != st->st_ino ||
				(t->segs[i].prog == prog && !t->segs[i].forked));
		mapped |= t->segs[i].ino == st->st_ino;
	}
	for (unsigned int i = 0; i < t->nghosts && i < MAX_GHOSTS; i++)
		FZ_CHECK(accepted || t->ghosts[i].ino != st->st_ino ||
				(t->ghosts[i].prog == prog && !t->ghosts[i].forked));
	/* the program itself still maps it (it kept its closed socket's mapping) and may have
	 * written into it since the daemon wiped it */
	if (mapped)
		return;
	FZ_CHECK(shm->tx.prod == 0 && shm->tx.cons == 0 && shm->rx.cons == 0);
	FZ_CHECK(seg_blank(fd, (const uint8_t *)shm, (off_t)offsetof(struct uvs_shm, app_area),
			(off_t)sizeof(struct uvs_shm)));
	FZ_CHECK(seg_blank(
			fd, (const uint8_t *)shm, shm->tx_off, (off_t)shm->tx_off + shm->tx_size));
	if (s != NULL && s->gen == (uint32_t)(id >> 32) && s->sb.rx_pend > 0)
		from += UVS_REC_SIZE + s->sb.rx_pend;
	if (from < shm->rx_size) /* (beyond a wrap: not checked) */
		FZ_CHECK(seg_blank(fd, (const uint8_t *)shm, (off_t)shm->rx_off + (off_t)from,
				(off_t)shm->rx_off + shm->rx_size));
}

/* Map a segment as libuvsock's seg_map() does. A fresh one (CONNECT, ACCEPT) must be sane; one
 * handed out again (ATTACH) may carry what the programs wrote into it, and is then skipped. */
static void
take_segment(struct ctx *t, int fd, uint64_t id, unsigned int client, bool fresh, bool accepted)
{
	struct stat st;
	struct uvs_shm *shm;
	struct seg *g;
	bool stale = false, broken = false;

	FZ_CHECK(fstat(fd, &st) == 0 && st.st_size >= (off_t)UVS_SHM_HDR_SIZE);
	if (t->nsegs == MAX_SEGS) {
		close(fd);
		return;
	}
	shm = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	FZ_CHECK(shm != MAP_FAILED);
	/* reused while this program still maps it (it never closed the old socket's anchor, or
	 * broke that segment): whatever it wrote through the old mapping shows in the new one */
	for (unsigned int i = 0; i < t->nsegs; i++)
		stale |= t->segs[i].ino == st.st_ino;
	/* the socket's anchor was shut for writing before: the daemon may free it under us */
	for (unsigned int i = 0; i < t->nanchors; i++)
		broken |= t->anchor_ids[i] == id && t->anchor_shut[i];
	/* all zero: the program closed the socket before it read this reply, and the daemon
	 * already kept the segment (wiped) for its next one */
	if (!seg_header_ok(shm, (size_t)st.st_size)) {
		FZ_CHECK(!fresh || stale || shm->magic == 0);
		munmap(shm, (size_t)st.st_size);
		close(fd);
		return;
	}
	if (fresh)
		seg_check_new(t, fd, &st, shm, id, t->cl[client].prog, accepted);
	close(fd);
	/* two mappings of one segment are two programs on one ring: the model is off for all */
	if (!fresh)
		seg_break(t, id);
	/* a segment reused for this program's new socket (uvs_srv.c): the mapping of the socket
	 * it served before is retired, as libuvsock unmaps at close, and the entry is the new
	 * socket's (the old one's rings are the new one's now) */
	g = NULL;
	for (unsigned int i = 0; i < t->nsegs && fresh && g == NULL; i++)
		if (t->segs[i].ino == st.st_ino) {
			munmap(t->segs[i].shm, t->segs[i].size);
			g = &t->segs[i];
		}
	if (g == NULL)
		g = &t->segs[t->nsegs++];
	g->shm = shm;
	g->size = (size_t)st.st_size;
	g->id = id;
	g->client = client;
	g->prog = t->cl[client].prog;
	g->ino = st.st_ino;
	g->forked = false; /* the slot may hold a segment of an earlier input */
	g->poked = !fresh || stale || broken;
	g->sb = (struct uvs_sockbuf){ .type = (uint16_t)shm->type };
	uvs_ring_attach(&g->sb.rx, &shm->rx, (uint8_t *)shm + shm->rx_off, shm->rx_size, false);
	uvs_ring_attach(&g->sb.tx, &shm->tx, (uint8_t *)shm + shm->tx_off, shm->tx_size, true);
}

static void
learn_id(struct client *c, uint64_t id)
{
	if (c->nids < MAX_IDS)
		c->ids[c->nids++] = id;
}

/* NOTIFY is one-way: drop the well-formed ones at the head of the queue. */
static void
skip_notifies(struct client *c)
{
	while (c->nq > 0 && !c->q[0].malformed && c->q[0].op == UVS_CTL_NOTIFY)
		memmove(&c->q[0], &c->q[1], --c->nq * sizeof(c->q[0]));
}

/* Read every response queued for program ci and check it against its request. */
static void
read_responses(struct ctx *t, unsigned int ci)
{
	struct client *c = &t->cl[ci];

	while (c->fd >= 0) {
		struct uvs_ctl_resp resp;
		char cbuf[UVS_SCM_SPACE(4)];
		struct iovec iov = { .iov_base = &resp, .iov_len = sizeof(resp) };
		struct msghdr msg = { .msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = cbuf,
			.msg_controllen = sizeof(cbuf) };
		int fds[4];
		unsigned int nfds;
		uint64_t sock;
		ssize_t n = recvmsg(c->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		/* A hang-up with requests still unread by the server is first reported as a
		 * reset (pending error, cleared by reporting it); the responses queued before it
		 * and the end of file follow. */
		if (n < 0 && errno == ECONNRESET)
			continue;
		if (n < 0) {
			FZ_CHECK(errno == EAGAIN);
			break;
		}
		nfds = uvs_scm_get(&msg, fds, 4);
		skip_notifies(c);
		if (n == 0) {
			/* only a malformed request makes the server hang up, once it reads it; what
			 * was sent after it is never answered */
			FZ_CHECK(c->nq > 0 && c->q[0].malformed && nfds == 0);
			close(c->fd);
			c->fd = -1;
			c->nq = 0;
			break;
		}
		/* the answer to the oldest request, in order */
		FZ_CHECK(c->nq > 0 && !c->q[0].malformed);
		FZ_CHECK(n == sizeof(resp) && !(msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)));
		FZ_CHECK(resp.op == c->q[0].op && resp.seq == c->q[0].seq);
		FZ_CHECK(resp.rc <= 0 && resp.rc > -4096);
		FZ_CHECK(nfds == resp.nfds && nfds <= 2);
		FZ_CHECK(resp.rc == 0 || nfds == 0);
		sock = c->q[0].sock;
		memmove(&c->q[0], &c->q[1], --c->nq * sizeof(c->q[0]));
		if (resp.rc == 0 && resp.op == UVS_CTL_HELLO)
			FZ_CHECK(resp.b == LOCAL_CID);
		switch (resp.rc == 0 ? resp.op : 0) {
		case UVS_CTL_SOCKET:
			FZ_CHECK(nfds == 1 && resp.sock != 0);
			learn_id(c, resp.sock);
			take_anchor(t, fds[0], resp.sock);
			break;
		case UVS_CTL_CONNECT:
			FZ_CHECK(nfds == 1);
			take_segment(t, fds[0], sock, ci, true, false);
			break;
		case UVS_CTL_ACCEPT:
			FZ_CHECK(nfds == 2 && resp.sock != 0);
			learn_id(c, resp.sock);
			take_anchor(t, fds[0], resp.sock);
			take_segment(t, fds[1], resp.sock, ci, true, true);
			break;
		case UVS_CTL_ATTACH:
			if (resp.sock != 0)
				learn_id(c, resp.sock);
			if (nfds == 1)
				take_segment(t, fds[0], resp.sock, ci, false, false);
			break;
		case UVS_CTL_FORK:
			FZ_CHECK(nfds == 0);
			for (unsigned int i = 0; i < t->nsegs; i++)
				if (t->segs[i].prog == c->prog)
					t->segs[i].forked = true;
			break;
		default:
			FZ_CHECK(nfds == 0);
			break;
		}
	}
}

/* --- the programs' actions --- */

static void
client_connect(struct ctx *t, unsigned int ci)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct client *c = &t->cl[ci];

	memset(c, 0, sizeof(*c));
	c->prog = ++t->nprogs;
	c->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	FZ_CHECK(c->fd >= 0);
	strcpy(sun.sun_path, ctl_path);
	FZ_CHECK(connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
	c->ino = fd_ino(c->fd);
	pump(t);
	/* the server's client for it is the newest one (for the report in settle()) */
	if (!LIST_EMPTY(&t->srv.clients) &&
			LIST_FIRST(&t->srv.clients)->serial == t->srv.next_serial) {
		c->serial = t->srv.next_serial;
		c->srv_ino = fd_ino(LIST_FIRST(&t->srv.clients)->fd);
	}
}

/* Print which fds of this process refer to socket inode ino. */
NO_COVERAGE static void
fds_holding(ino_t ino, const char *what)
{
	char link[64], want[64], path[300];
	struct dirent *e;
	DIR *d = opendir("/proc/self/fd");

	snprintf(want, sizeof(want), "socket:[%lu]", (unsigned long)ino);
	while (d != NULL && (e = readdir(d)) != NULL) {
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = '\0';
			if (strcmp(link, want) == 0)
				fprintf(stderr, "fuzz_ctl: fd %s is %s\n", e->d_name, what);
		}
	}
	if (d != NULL)
		closedir(d);
}

/* Threads of this process (tasks sharing its descriptor table). */
NO_COVERAGE static int
count_tasks(void)
{
	DIR *d = opendir("/proc/self/task");
	int n = 0;
	struct dirent *e;

	while (d != NULL && (e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	if (d != NULL)
		closedir(d);
	return n;
}

/* Whether what the program is missing (an answer or the end) arrives late: how long after. */
NO_COVERAGE static void
report_late(int fd)
{
	uint64_t t0 = uvs_now_ns();
	struct pollfd pfd = { .fd = fd, .events = POLLIN | POLLRDHUP };
	char b[64];
	ssize_t n;

	(void)poll(&pfd, 1, 2000);
	n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
	if (n < 0 && errno == ECONNRESET)
		n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
	fprintf(stderr, "fuzz_ctl: %d tasks; %.3f ms later: revents %#x, recv %zd (%s)\n",
			count_tasks(), (double)(uvs_now_ns() - t0) / 1e6, (unsigned int)pfd.revents,
			n, n < 0 ? strerror(errno) : "");
}

/* Program ci has a request unanswered: say where the server's end of its connection is (its
 * client still listed, with what unread; which fds of this process refer to it), for a
 * failure that does not reproduce alone. */
NO_COVERAGE static void
report_server_end(struct ctx *t, unsigned int ci)
{
	const struct client *c = &t->cl[ci];
	const struct uvs_srv_client *cl;

	fprintf(stderr, "fuzz_ctl: program %u: server client %llu, end inode %lu; malformed drops %llu\n",
			ci, (unsigned long long)c->serial, (unsigned long)c->srv_ino,
			(unsigned long long)t->srv.drops[UVS_SRV_DROP_MALFORMED]);
	LIST_FOREACH(cl, &t->srv.clients, link) {
		int unread = -1;

		(void)ioctl(cl->fd, SIOCINQ, &unread);
		fprintf(stderr, "fuzz_ctl: server client %llu: fd %d inode %lu, %d bytes unread\n",
				(unsigned long long)cl->serial, cl->fd,
				(unsigned long)fd_ino(cl->fd), unread);
	}
	fds_holding(c->srv_ino, "the server's end");
	report_late(c->fd);
}

/* A value of a request field: the ones that mean something, or anything. */
static uint32_t
val32(struct fz *f)
{
	static const uint32_t known[] = { 0, 1, 2, 3, 4, 5, 6, 7, AF_VSOCK, 1023, 1024, 1234, GPORT,
		UVS_IPC_VERSION, UINT32_MAX, 64, 4096, UVS_SRV_SOMAXCONN + 1,
		UVS_DWAIT_TX | UVS_DWAIT_CONSUMED | UVS_NOTE_RING_BACK };
	uint8_t b = fz_u8(f);

	return b < 0xf0 ? known[b % (sizeof(known) / sizeof(known[0]))] : fz_u32(f);
}

static uint64_t
val64(struct fz *f)
{
	static const uint64_t known[] = { 0, 1, 128, 4096, 65536, 256 * 1024, 1u << 20,
		UVS_SRV_BUF_SIZE_LIMIT + 1, UINT32_MAX, UINT64_MAX, 2 * SEC };
	uint8_t b = fz_u8(f);

	return b < 0xf0 ? known[b % (sizeof(known) / sizeof(known[0]))] : fz_u64(f);
}

/* A socket id: one this program or another was given, a stale or forged one, or 0. */
static uint64_t
id_sel(struct ctx *t, struct fz *f, unsigned int ci)
{
	uint8_t b = fz_u8(f);
	struct client *c = &t->cl[(b & 1) ? (ci + 1) % MAX_CLIENTS : ci];
	uint64_t id = c->nids > 0 ? c->ids[(b >> 3) % c->nids] : 0;

	switch ((b >> 1) & 3) {
	case 0:
	case 1:
		return id;
	case 2:
		return id ^ (1ull << 32); /* another generation of the same slot */
	default:
		return b & 0x80 ? 0 : fz_u64(f);
	}
}

/* Send a request (or any bytes) without waiting; the response is checked by settle(). */
static void
queue_msg(struct ctx *t, unsigned int ci, const void *buf, size_t len, int fd)
{
	struct client *c = &t->cl[ci];
	char cbuf[UVS_SCM_SPACE(1)];
	struct iovec iov = { .iov_base = (void *)(uintptr_t)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct pending p = { 0 };
	int rc;

	/* the parser the server applies to every request */
	rc = uvs_ctl_req_check(buf, len);
	if (len == sizeof(struct uvs_ctl_req)) {
		const struct uvs_ctl_req *r = buf;

		FZ_CHECK((rc == 0) == (r->op >= UVS_CTL_HELLO && r->op < UVS_CTL_OP_MAX));
		p.op = r->op;
		p.seq = r->seq;
		p.sock = r->sock;
	} else {
		FZ_CHECK(rc == -EINVAL);
	}
	p.malformed = rc < 0;
	if (c->fd < 0 || c->nq == PIPE_MAX)
		return;
	/* the program's end of its connection is still that socket (a number closed and
	 * reused in this shared descriptor table would send the request elsewhere) */
	if (fd_ino(c->fd) != c->ino)
		fprintf(stderr, "fuzz_ctl: program %u's fd %d is another file now\n", ci, c->fd);
	FZ_CHECK(fd_ino(c->fd) == c->ino);
	uvs_scm_put(&msg, cbuf, &fd, fd >= 0 ? 1 : 0);
	if (sendmsg(c->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)len)
		return; /* the server hung up already, or the queue is full */
	c->q[c->nq++] = p;
}

/* Let the server run, then read program ci's responses: every request was answered. */
static void
settle(struct ctx *t, unsigned int ci)
{
	struct client *c = &t->cl[ci];

	pump(t);
	read_responses(t, ci);
	skip_notifies(c);
	if (c->nq != 0 && c->q[0].malformed && c->fd >= 0) {
		/* the hang-up due: the server closed its end, whose release may finish late */
		struct pollfd pfd = { .fd = c->fd, .events = POLLRDHUP };

		(void)poll(&pfd, 1, HANGUP_WAIT_MS);
		read_responses(t, ci);
		skip_notifies(c);
	}
	if (c->nq != 0) {
		/* say which requests went unanswered, and whether the server's end holds them
		 * unread or hung up unseen: a crash may not reproduce alone */
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN | POLLRDHUP };
		int unread = -1;

		(void)poll(&pfd, 1, 0);
		(void)ioctl(c->fd, SIOCOUTQ, &unread);
		fprintf(stderr, "fuzz_ctl: program %u: revents %#x, %d bytes unread by the server\n",
				ci, (unsigned int)pfd.revents, unread);
		for (unsigned int i = 0; i < c->nq; i++)
			fprintf(stderr,
					"fuzz_ctl: program %u (fd %d): request %u unanswered: "
					"op %u seq %u sock %#llx%s\n",
					ci, c->fd, i, (unsigned int)c->q[i].op,
					(unsigned int)c->q[i].seq, (unsigned long long)c->q[i].sock,
					c->q[i].malformed ? " (malformed)" : "");
		report_server_end(t, ci);
	}
	FZ_CHECK(c->nq == 0);
}

static void
send_msg(struct ctx *t, unsigned int ci, const void *buf, size_t len, int fd)
{
	queue_msg(t, ci, buf, len, fd);
	settle(t, ci);
}

/* A live program, or none. */
static int
client_sel(struct ctx *t, struct fz *f)
{
	unsigned int ci = fz_u8(f) % MAX_CLIENTS;

	return t->cl[ci].fd >= 0 ? (int)ci : -1;
}

/* A request from the input: mostly valid ops, ids this program or another holds, values
 * that mean something; now and then anything. Maybe an fd comes with it. */
static void
req_build(struct ctx *t, struct fz *f, unsigned int ci, struct uvs_ctl_req *req, int *fd)
{
	uint8_t b = fz_u8(f), fdsel;

	memset(req, 0, sizeof(*req));
	req->op = b < 0xf8 ? (uint32_t)(UVS_CTL_HELLO + b % (UVS_CTL_OP_MAX - UVS_CTL_HELLO))
			   : fz_u32(f);
	req->seq = fz_u8(f);
	req->sock = id_sel(t, f, ci);
	req->a = val32(f);
	req->b = val32(f);
	req->val = val64(f);
	fdsel = fz_u8(f);
	*fd = -1;
	if ((fdsel & 3) == 1 && t->nanchors > 0)
		*fd = *anchor_fd(t, (fdsel >> 2) % t->nanchors);
	else if ((fdsel & 3) == 2)
		*fd = t->cl[ci].fd; /* a socket, but not an anchor */
	else if ((fdsel & 3) == 3)
		*fd = t->epfd; /* not a socket at all */
}

static void
act_req(struct ctx *t, struct fz *f)
{
	int ci = client_sel(t, f), fd;
	struct uvs_ctl_req req;

	if (ci < 0)
		return;
	req_build(t, f, (unsigned int)ci, &req, &fd);
	send_msg(t, (unsigned int)ci, &req, sizeof(req), fd);
}

/* Several requests at once, before the server runs, with anchors closed in between: the
 * server then finds a request for a socket whose program is gone in the same batch. */
static void
act_pipe(struct ctx *t, struct fz *f)
{
	int ci = client_sel(t, f), fd;
	unsigned int n = 2 + fz_u8(f) % (PIPE_MAX - 1);
	struct uvs_ctl_req req;

	if (ci < 0)
		return;
	for (unsigned int i = 0; i < n; i++) {
		uint8_t e = fz_u8(f);

		if ((e & 3) == 3) {
			int *a = t->nanchors > 0 ? anchor_fd(t, (e >> 2) % t->nanchors) : NULL;

			if (a != NULL && *a >= 0) {
				seg_retire(t, t->anchor_ids[(e >> 2) % t->nanchors]);
				close(*a);
				*a = -1;
			}
			continue;
		}
		req_build(t, f, (unsigned int)ci, &req, &fd);
		queue_msg(t, (unsigned int)ci, &req, sizeof(req), fd);
	}
	settle(t, (unsigned int)ci);
}

static void
act_raw(struct ctx *t, struct fz *f)
{
	int ci = client_sel(t, f);
	uint8_t buf[sizeof(struct uvs_ctl_req) + 8];
	size_t len = fz_u8(f) % sizeof(buf);

	if (ci < 0)
		return;
	fz_bytes(f, buf, len);
	send_msg(t, (unsigned int)ci, buf, len, -1);
}

static void
act_client(struct ctx *t, struct fz *f)
{
	unsigned int ci = fz_u8(f) % MAX_CLIENTS;

	if (t->cl[ci].fd < 0) {
		client_connect(t, ci);
		return;
	}
	close(t->cl[ci].fd);
	t->cl[ci].fd = -1;
	pump(t);
}

static void
act_anchor(struct ctx *t, struct fz *f)
{
	static char filler[UVS_FILLER_SIZE];
	uint8_t b = fz_u8(f);
	int *fd;
	char buf[16];

	if (t->nanchors == 0)
		return;
	fd = anchor_fd(t, (b >> 3) % t->nanchors);
	if (*fd < 0)
		return;
	if ((b & 7) >= 6)
		seg_retire(t, t->anchor_ids[(b >> 3) % t->nanchors]);
	switch (b & 7) {
	case 0:
	case 1:
		(void)send(*fd, filler, sizeof(filler), MSG_DONTWAIT | MSG_NOSIGNAL);
		break;
	case 2:
		(void)send(*fd, filler, 1,
				MSG_DONTWAIT | MSG_NOSIGNAL); /* a blocked sender's token */
		break;
	case 3:
		/* libuvsock never does this (ipc-abi.md): once the daemon has shut its end too
		 * (the connection's receive side ended), the anchor hangs up as if closed, and the
		 * daemon frees the socket and keeps its segment while the program still maps it */
		shutdown(*fd, SHUT_WR);
		seg_break(t, t->anchor_ids[(b >> 3) % t->nanchors]);
		t->anchor_shut[(b >> 3) % t->nanchors] = true; /* and any segment it gets later */
		break;
	case 4:
	case 5:
		while (recv(*fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
			; /* the doorbells */
		break;
	case 6:
		/* closed, and the server hears of it only with the next request (a CLOSE, say)
		 * in the same batch of events */
		close(*fd);
		*fd = -1;
		return;
	default:
		close(*fd); /* the program's last close of the socket */
		*fd = -1;
		break;
	}
	pump(t);
}

/* A NOTIFY of bits for segment g's socket, as libuvsock sends after touching the rings. */
static void
notify(struct ctx *t, const struct seg *g, uint32_t bits)
{
	struct uvs_ctl_req req = { .op = UVS_CTL_NOTIFY, .sock = g->id, .a = bits };

	if (t->cl[g->client].fd >= 0)
		send_msg(t, g->client, &req, sizeof(req), -1);
}

static struct seg *
seg_sel(struct ctx *t, struct fz *f)
{
	uint8_t b = fz_u8(f);

	return t->nsegs > 0 ? &t->segs[b % t->nsegs] : NULL;
}

static void
act_seg_write(struct ctx *t, struct fz *f)
{
	struct seg *g = seg_sel(t, f);
	uint32_t len = fz_u16(f);
	uint8_t b = fz_u8(f);
	struct iovec iov;

	if (g == NULL || len == 0)
		return;
	iov.iov_base = fz_arena(arena, sizeof(arena), len);
	iov.iov_len = len;
	memset(iov.iov_base, 0x33, len);
	(void)uvs_sockbuf_app_write(&g->sb, &iov, 1, 0, len, len, b & 1);
	if (b & 2)
		__atomic_store_n(&g->shm->tx_need, len, __ATOMIC_RELEASE);
	notify(t, g, b >> 2);
}

static void
act_seg_read(struct ctx *t, struct fz *f)
{
	struct seg *g = seg_sel(t, f);
	uint32_t cap = fz_u16(f), msg_len, done;
	uint8_t b = fz_u8(f);
	struct iovec iov;
	int msg_flags;
	int64_t rc;

	if (g == NULL)
		return;
	iov.iov_base = fz_arena(arena, sizeof(arena), cap);
	iov.iov_len = cap;
	rc = uvs_sockbuf_app_read(&g->sb, &iov, 1, cap, &msg_flags, &msg_len);
	/* whatever the guest sent, the daemon's framing holds for a program that kept to its own */
	FZ_CHECK(rc >= 0 || rc == -EAGAIN || g->poked);
	if (rc < 0)
		return;
	done = uvs_sockbuf_app_consume(&g->sb, (uint32_t)rc, msg_len);
	__atomic_fetch_add(&g->shm->fwd_cnt, done, __ATOMIC_SEQ_CST);
	notify(t, g, b);
}

/* The program writes any value where the daemon reads (or anywhere in its header page, or a
 * ring byte): indexes, fwd_cnt, filler state, wait words, and the daemon's own fields. */
static void
act_seg_poke(struct ctx *t, struct fz *f)
{
	static const size_t fields[] = { offsetof(struct uvs_shm, rx.cons),
		offsetof(struct uvs_shm, tx.prod), offsetof(struct uvs_shm, fwd_cnt),
		offsetof(struct uvs_shm, tx_need), offsetof(struct uvs_shm, tx_filler),
		offsetof(struct uvs_shm, daemon_wait), offsetof(struct uvs_shm, app_wait),
		offsetof(struct uvs_shm, state), offsetof(struct uvs_shm, peer_shut),
		offsetof(struct uvs_shm, err), offsetof(struct uvs_shm, rx_size),
		offsetof(struct uvs_shm, tx_off) };
	struct seg *g = seg_sel(t, f);
	uint8_t b = fz_u8(f);
	uint32_t v = val32(f);
	size_t off;

	if (g == NULL)
		return;
	g->poked = true;
	if ((b & 3) == 0) {
		off = fz_u16(f) % (UVS_SHM_HDR_SIZE / 4) * 4;
	} else if ((b & 3) == 1) {
		/* a record header or payload in tx (where the program mapped it, whatever the
		 * header says now) */
		off = (size_t)(g->sb.tx.data - (uint8_t *)g->shm) +
		      (g->sb.tx.own + fz_u16(f)) % g->sb.tx.size / 4 * 4;
	} else {
		off = fields[(b >> 2) % (sizeof(fields) / sizeof(fields[0]))];
		if (b & 0x80) /* relative to the current value: just past, just before */
			v = *(uint32_t *)(void *)((uint8_t *)g->shm + off) + (int8_t)(v & 0xff);
	}
	__atomic_store_n((uint32_t *)(void *)((uint8_t *)g->shm + off), v, __ATOMIC_SEQ_CST);
	notify(t, g, fz_u8(f));
}

/* --- the guests --- */

/* A guest packet to one of the server's sockets (from the guest's end of it) or anywhere. */
static void
act_pkt(struct ctx *t, struct fz *f)
{
	uint8_t b = fz_u8(f), tb = fz_u8(f), sport = fz_u8(f);
	const struct uvs_srv_sock *s = NULL;
	struct uvs_peer *p = &t->peers[b & 1];
	uint32_t usual_fwd = 0, payload;
	struct uvs_hdr h, hdr;
	struct iovec iov;

	if (t->srv.nsocks_alloc > 0)
		s = uvs_srv_sock_at(&t->srv, (b >> 1) % t->srv.nsocks_alloc);
	memset(&h, 0, sizeof(h));
	h.type = tb & 1 ? UVS_TYPE_SEQPACKET : UVS_TYPE_STREAM;
	if (s != NULL && s->conn != NULL) {
		h.dst_port = s->conn->local_port;
		h.src_port = s->conn->peer_port != UVS_PORT_ANY ? s->conn->peer_port
								: GPORT + sport % 8u;
		h.type = s->type;
		usual_fwd = s->conn->cr.tx_cnt;
		if (s->conn->peer != NULL)
			p = s->conn->peer;
	} else {
		h.dst_port = val32(f);
		h.src_port = val32(f);
	}
	h.src_cid = p->cid;
	h.dst_cid = LOCAL_CID;
	h.op = (tb >> 1) % (UVS_OP_MAX + 2);
	h.flags = fz_u8(f) & 7u;
	h.buf_alloc = fz_u32_near(f, 256u * 1024u);
	h.fwd_cnt = fz_u32_near(f, usual_fwd);
	h.len = h.op == UVS_OP_RW ? fz_u16(f) : 0;
	payload = h.len;
	iov.iov_base = fz_arena(arena, sizeof(arena), UVS_HDR_SIZE + payload);
	iov.iov_len = UVS_HDR_SIZE + payload;
	memcpy(iov.iov_base, &h, sizeof(h));
	memcpy(&hdr, iov.iov_base, sizeof(hdr));
	if (uvs_pkt_check(&hdr, payload, p->cid, LOCAL_CID) == UVS_PKT_OK)
		uvs_engine_rx(t->srv.eng, p, &hdr, &iov, 1, UVS_HDR_SIZE);
	fz_arena(arena, sizeof(arena), 0);
	pump(t);
}

static void
act_drain(struct ctx *t, struct fz *f)
{
	uint8_t b = fz_u8(f);
	struct uvs_peer *p = &t->peers[b & 1];
	uint32_t room = b & 2 ? UVS_HDR_SIZE + 4096u : UVS_HDR_SIZE + UVS_MAX_PKT_PAYLOAD;
	unsigned int limit = b >> 2 ? b >> 2 : DRAIN_LIMIT;

	for (unsigned int i = 0; i < limit; i++) {
		struct iovec iov = { .iov_base = fz_arena(arena, sizeof(arena), room),
			.iov_len = room };
		uint32_t ret = uvs_engine_tx(t->srv.eng, p, &iov, 1, room);
		struct uvs_hdr h;

		if (ret == 0) {
			FZ_CHECK(!uvs_peer_tx_pending(p));
			break;
		}
		memcpy(&h, iov.iov_base, sizeof(h));
		FZ_CHECK(ret <= room && ret == UVS_HDR_SIZE + h.len);
		FZ_CHECK(uvs_pkt_check(&h, h.len, LOCAL_CID, p->cid) == UVS_PKT_OK);
	}
	fz_arena(arena, sizeof(arena), 0);
	pump(t);
}

static void
act(struct ctx *t, struct fz *f, enum action a)
{
	switch (a) {
	case C_REQ:
		act_req(t, f);
		break;
	case C_RAW:
		act_raw(t, f);
		break;
	case C_CLIENT:
		act_client(t, f);
		break;
	case A_ANCHOR:
		act_anchor(t, f);
		break;
	case S_WRITE:
		act_seg_write(t, f);
		break;
	case S_READ:
		act_seg_read(t, f);
		break;
	case S_POKE:
		act_seg_poke(t, f);
		break;
	case G_PKT:
		act_pkt(t, f);
		break;
	case G_DRAIN:
		act_drain(t, f);
		break;
	case G_TICK: {
		uint8_t b = fz_u8(f);

		uvs_engine_tick(t->srv.eng, uvs_now_ns() + (b & 1 ? UVS_CONNECT_TIMEOUT_NS : 0) +
							    (b & 2 ? UVS_CLOSE_TIMEOUT_NS : 0) +
							    SEC / 100);
		pump(t);
		break;
	}
	case C_PIPE:
		act_pipe(t, f);
		break;
	case G_DETACH: {
		unsigned int i = fz_u8(f) & 1;

		uvs_peer_detach(t->srv.eng, &t->peers[i]);
		peers_init(t, i);
		pump(t);
		break;
	}
	default:
		break;
	}
	check_state(t);
}

/* The programs are gone and the server still lists a client: say which program it served
 * and who still holds that program's end, for a failure that does not reproduce alone. */
NO_COVERAGE static void
report_clients_left(struct ctx *t)
{
	const struct uvs_srv_client *cl;

	LIST_FOREACH(cl, &t->srv.clients, link) {
		int unread = -1;

		(void)ioctl(cl->fd, SIOCINQ, &unread);
		fprintf(stderr, "fuzz_ctl: server client %llu left: fd %d inode %lu, %d bytes unread\n",
				(unsigned long long)cl->serial, cl->fd,
				(unsigned long)fd_ino(cl->fd), unread);
		for (unsigned int i = 0; i < MAX_CLIENTS; i++)
			if (t->cl[i].serial == cl->serial) {
				fprintf(stderr, "fuzz_ctl: it served program %u (prog %llu, end inode %lu)\n",
						i, (unsigned long long)t->cl[i].prog,
						(unsigned long)t->cl[i].ino);
				fds_holding(t->cl[i].ino, "that program's end");
			}
	}
}

/* --- set-up and tear-down --- */

/* The server, its engine, epoll set and control socket live from the first input to the
 * process's exit, as in the daemon, where programs and guests come and go on one server. Each
 * input ends with everything it made gone and checked gone (no socket, program, watched
 * socket or fd left), so the next one starts from a server equivalent to a fresh one: only
 * the socket table's size, serial numbers and the engine's ephemeral port differ, as they
 * would in the daemon. Setting a server up per input took a sixth of the run time (the
 * engine's hash tables, the socket's bind and unlink). */
static struct ctx ctx;
static bool server_up;
static struct uvs_policy policy;

static void
server_down(void)
{
	struct ctx *t = &ctx;

	if (server_up) {
		/* uvs_srv has no destructor (the daemon exits instead): free what init and the
		 * socket table allocated */
		uvs_srv_unlisten(&t->srv);
		uvs_engine_destroy(t->srv.eng);
		free(t->srv.socks);
		close(t->epfd);
		uvs_policy_free(&policy);
		server_up = false;
	}
	rmdir(ctl_dir);
}

static void
server_up_once(struct ctx *t)
{
	char err[128];

	if (server_up)
		return;
	strcpy(ctl_dir, "/tmp/uvsock-fuzz-ctl.XXXXXX");
	FZ_CHECK(mkdtemp(ctl_dir) != NULL);
	snprintf(ctl_path, sizeof(ctl_path), "%s/ctl.sock", ctl_dir);
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	FZ_CHECK(t->epfd >= 0);
	FZ_CHECK(uvs_srv_init(&t->srv, t->epfd, LOCAL_CID, &owner_ops, t) == 0);
	/* everything allowed, with a quota, so that the policy's paths run too */
	FZ_CHECK(uvs_policy_parse(&policy, "listen * *\nconnect * *\nsockets * " QUOTA_STR "\n",
				 err, sizeof(err)) == 0);
	t->srv.policy = &policy;
	FZ_CHECK(uvs_srv_listen(&t->srv, ctl_path) == 0);
	server_up = true;
	atexit(server_down);
}

/* File descriptors open in this process (none may be left behind by an input): the entries
 * of /proc/self/fd, one of which is the directory being read. A few system calls, where
 * probing every fd number took most of the run time. */
static int
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = -1;

	FZ_CHECK(d != NULL);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n - 2; /* "." and ".." */
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctx *t = &ctx;
	struct fz f;

	if (!server_up) {
		server_up_once(t);
		t->fds_at_start = count_fds();
	}
	/* what the previous input left: the server (set up once) and nothing else; what it
	 * counted is reset too, so that an input behaves the same run alone (a crash file
	 * reproduces): serial numbers decide socket ids' generations */
	t->nanchors = 0;
	t->nsegs = 0;
	t->nghosts = 0;
	nfds_seen = 0;
	t->srv.next_serial = 0;
	t->srv.watch_wakes = 0;
	memset(t->srv.drops, 0, sizeof(t->srv.drops));
	fz_init(&f, data, size);
	for (unsigned int i = 0; i < NPEERS; i++)
		peers_init(t, i);
	for (unsigned int i = 0; i < MAX_CLIENTS; i++)
		t->cl[i] = (struct client){ .fd = -1 };
	client_connect(t, 0);
	while (!fz_empty(&f))
		act(t, &f, (enum action)(fz_u8(&f) % ACT_MAX));

	/* The programs exit (every fd and mapping goes), then the guests go away. */
	for (unsigned int i = 0; i < MAX_CLIENTS; i++)
		if (t->cl[i].fd >= 0)
			close(t->cl[i].fd);
	for (unsigned int i = 0; i < t->nanchors; i++)
		if (*anchor_fd(t, i) >= 0)
			close(t->anchors[i]);
	for (unsigned int i = 0; i < t->nsegs; i++)
		munmap(t->segs[i].shm, t->segs[i].size);
	pump(t);
	for (unsigned int i = 0; i < NPEERS; i++)
		uvs_peer_detach(t->srv.eng, &t->peers[i]);
	pump_until_gone(t);
	check_state(t);
	if (!LIST_EMPTY(&t->srv.clients))
		report_clients_left(t);
	FZ_CHECK(t->srv.nsocks_live == 0 && t->srv.nsocks_attached == 0);
	FZ_CHECK(LIST_EMPTY(&t->srv.clients) && t->srv.nwatch == 0);
	/* nothing left in the engine either (a connection or bound port left there would stay
	 * reachable from the server, so no leak check would see it) */
	FZ_CHECK(uvs_engine_idle(t->srv.eng));
	/* segments kept for reuse are the server's: serial numbers restart with the next
	 * input, so none may carry over */
	uvs_srv_seg_flush(&t->srv);
	FZ_CHECK(count_fds() == t->fds_at_start);
	return 0;
}
