/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Implementation notes
 *
 * The vhost-user relay: uvsockd, not DPDK, listens on each guest's vhost-user socket.
 *
 * Why: DPDK 22.11 serves every vhost-user socket on one thread, reading each message with a
 * recvmsg() of the 12-byte header and a blocking read() of the payload on a blocking socket
 * (lib/vhost/socket.c read_fd_message, vhost_user.c read_vhost_message). A front-end that
 * sends a header announcing a payload and then nothing holds that thread in read() for ever:
 * no other guest's message is served, no new connection accepted, and every later attach
 * hangs. Its replies are blocking sendmsg() calls too, so a front-end that never reads them
 * blocks the thread once its socket is full. And DPDK accepts some bad messages on its own
 * (lib/uvs_vhumsg.c says which).
 *
 * So each guest's socket is ours, served on the polling thread without ever blocking:
 * - a connection's messages are read non-blocking, exactly one message at a time (header,
 *   then the payload the header announces, descriptors with either), into a fixed buffer;
 *   a message begun and not finished within UVSD_VHU_DEADLINE_MS drops the connection;
 * - a whole message is checked (uvs_vhumsg_check, with what fstat and /proc say about its
 *   descriptors) and, if it passes, forwarded in one sendmsg() to DPDK, which listens on a
 *   private socket in the EAL runtime directory (mode 0700, the daemon's alone). DPDK then
 *   always finds a whole message and never waits in read();
 * - DPDK's replies are read as they come and written to the front-end without waiting:
 *   a front-end whose socket cannot take a reply at once has left hundreds unread (a
 *   well-behaved one waits for each), and is dropped, so DPDK's sendmsg() never blocks;
 * - a refused message drops the connection (both sockets closed: DPDK sees its peer go and
 *   destroys the device, as for a VMM that exits), with a log line naming the guest, the
 *   request and the reason, and the guest's per-reason counter incremented.
 *
 * A guest's socket takes UVSD_VHU_ACCEPT_BURST connections at once and then
 * UVSD_VHU_ACCEPT_PER_S: every attach maps the guest's memory and has DPDK set the device up,
 * so a VMM that reconnects without end would cost every guest. Past the burst the listening
 * socket leaves the epoll set until the tick gives the next turn; waiting connections stay in
 * its backlog.
 *
 * One front-end per guest socket at a time: a new connection replaces the current one (a
 * restarted VMM reconnects; the socket is the VMM's alone), so a client that stalls on a
 * guest's socket cannot keep that guest's VMM out either. The daemon's mailbox ignores
 * events of a DPDK device that is no longer the guest's (vhost_dev.c), so the replaced
 * connection's late destroy cannot detach the new one.
 *
 * The data path is untouched: rings and kicks do not go through the socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <rte_log.h>

#include "uvs_scm.h"
#include "uvs_vhu.h"
#include "uvsockd.h"

#define LOG(level, fmt, ...) RTE_LOG(level, USER1, "uvsockd: " fmt "\n", ##__VA_ARGS__)

/* Messages read from one front-end per epoll event: a front-end's burst at attach is a few
 * dozen; more are taken at the next event, after other guests' work and DPDK's mail. */
#define UVSD_VHU_MSGS_PER_EVENT 8
/* A message begun must be finished within this: a VMM writes each in one sendmsg() on a
 * local socket, so only a stalled or hostile front-end takes longer. Generous for a loaded
 * machine; what it bounds is how long a stalled connection keeps its buffer and fds. */
#define UVSD_VHU_DEADLINE_MS 1000u
/* Connections a guest's socket takes at once, and then per second. A VMM connects once when
 * it starts, and again after a restart; one that connects again and again makes the daemon
 * map the guest's memory and DPDK set the device up each time, on the CPUs every guest needs
 * (a hostile VMM attaching 100 to 250 times a second here cost the other guest up to a
 * fifth of its throughput, tests/hostile). Past the burst, a connection waits in the
 * socket's backlog until its turn; none is refused. */
#define UVSD_VHU_ACCEPT_BURST 8u
#define UVSD_VHU_ACCEPT_PER_S 4u
/* DPDK's replies read per event: a reply is at most the header and 268 bytes. */
#define UVSD_VHU_REPLY_BUF 4096u
/* Sub-kinds of the UVSD_EP_VHU epoll tag (value = guest index * 4 + sub-kind). */
#define VHU_EP_LISTEN 0u
#define VHU_EP_FRONT 1u
#define VHU_EP_BACK 2u
#define VHU_EP_SUBS 4u

/* Add (EPOLL_CTL_ADD) or change (EPOLL_CTL_MOD) fd of guest gi in the epoll set. */
static void
ep_set(struct uvs_daemon *d, int op, int fd, unsigned int gi, unsigned int sub, uint32_t events)
{
	struct epoll_event ev = { .events = events,
		.data.u64 = UVS_SRV_EP_TAG(UVSD_EP_VHU, (uint64_t)gi * VHU_EP_SUBS + sub) };

	if (epoll_ctl(d->epfd, op, fd, &ev) < 0)
		LOG(ERR, "epoll_ctl: %s", strerror(errno));
}

static void
msg_fds_close(struct uvsd_vhu_conn *c)
{
	for (unsigned int i = 0; i < c->nfds; i++)
		close(c->fds[i]);
	c->nfds = 0;
	c->too_many_fds = false;
}

/* Close the front-end's connection and ours to DPDK (DPDK then destroys the device). */
static void
conn_close(struct uvs_daemon *d, struct uvsd_vhu_conn *c)
{
	(void)d; /* closing removes the fds from the epoll set */
	msg_fds_close(c);
	if (c->fd >= 0)
		close(c->fd);
	if (c->bfd >= 0)
		close(c->bfd);
	c->fd = c->bfd = -1;
	c->pending = false;
	c->got = 0;
	c->started_ns = 0;
}

static void
refuse(struct uvs_daemon *d, struct uvsd_guest *g, enum uvs_vhumsg_err why, uint32_t req,
		const char *detail)
{
	char what[32];

	/* req 0 (VHOST_USER_NONE) stands for the connection itself */
	if (req == 0)
		snprintf(what, sizeof(what), "connection");
	else if (strcmp(uvs_vhumsg_req_str(req), "?") == 0)
		snprintf(what, sizeof(what), "request %u", req);
	else
		snprintf(what, sizeof(what), "%s", uvs_vhumsg_req_str(req));
	g->vhu_refused[why]++;
	LOG(WARNING, "%s: guest cid %u: vhost-user %s refused: %s%s%s; connection dropped", g->path,
			g->cid, what, uvs_vhumsg_err_str(why), detail[0] != '\0' ? ": " : "",
			detail);
	conn_close(d, &g->vhu);
}

static enum uvs_vhumsg_fd_kind
fd_kind(int fd, uint64_t *size)
{
	struct stat st;
	char link[64], target[64];
	ssize_t n;

	*size = 0;
	if (fstat(fd, &st) < 0)
		return UVS_VHUMSG_FD_OTHER;
	if (S_ISREG(st.st_mode)) {
		*size = (uint64_t)st.st_size;
		return UVS_VHUMSG_FD_FILE;
	}
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return UVS_VHUMSG_FD_OTHER;
	target[n] = '\0';
	return strcmp(target, "anon_inode:[eventfd]") == 0 ? UVS_VHUMSG_FD_EVENTFD
							   : UVS_VHUMSG_FD_OTHER;
}

/*
 * Read what is there of the current message, never past its end.
 * @return 1 when it is whole, 0 when more is to come, -ECONNRESET at end of stream, another
 *   -errno on error, -EBADMSG when the header was refused (done here).
 */
static int
msg_read(struct uvs_daemon *d, struct uvsd_guest *g, struct uvsd_vhu_conn *c)
{
	char cbuf[UVS_SCM_SPACE(UVS_VHUMSG_MAX_FDS)];
	int fds[UVS_VHUMSG_MAX_FDS];
	uint32_t want, size;
	struct iovec iov;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	unsigned int n;
	ssize_t r;

	for (;;) {
		memcpy(&size, c->buf + 8, sizeof(size));
		want = c->got < UVS_VHUMSG_HDR_SIZE ? UVS_VHUMSG_HDR_SIZE - c->got
						    : UVS_VHUMSG_HDR_SIZE + size - c->got;
		if (want == 0)
			return 1;
		iov.iov_base = c->buf + c->got;
		iov.iov_len = want;
		msg.msg_control = cbuf;
		msg.msg_controllen = sizeof(cbuf);
		r = recvmsg(c->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (r < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		n = uvs_scm_get(&msg, fds, UVS_VHUMSG_MAX_FDS);
		for (unsigned int i = 0; i < n; i++) {
			if (c->nfds < UVS_VHUMSG_MAX_FDS)
				c->fds[c->nfds++] = fds[i];
			else {
				close(fds[i]);
				c->too_many_fds = true;
			}
		}
		if ((msg.msg_flags & MSG_CTRUNC) != 0)
			c->too_many_fds = true; /* some were lost on the way in */
		if (r == 0)
			return -ECONNRESET;
		if (c->got == 0)
			c->started_ns = uvs_now_ns();
		c->got += (uint32_t)r;
		if (c->got == UVS_VHUMSG_HDR_SIZE) {
			uint32_t req, flags;
			enum uvs_vhumsg_err e;

			memcpy(&req, c->buf, sizeof(req));
			memcpy(&flags, c->buf + 4, sizeof(flags));
			memcpy(&size, c->buf + 8, sizeof(size));
			/* before waiting for a payload that may not fit or never come */
			e = uvs_vhumsg_check_hdr(req, flags, size);
			if (e != UVS_VHUMSG_OK) {
				char detail[64];

				snprintf(detail, sizeof(detail), "request %u, flags %#x, size %u",
						req, flags, size);
				refuse(d, g, e, req, detail);
				return -EBADMSG;
			}
		}
	}
}

/*
 * Pass the checked message on to DPDK. When DPDK's socket is full (its thread is behind:
 * logging each message, or waiting for the polling thread in the mailbox), the message
 * waits and the front-end is not read until DPDK's socket takes it (EPOLLOUT): back
 * pressure on the front-end, never a blocked thread. The deadline does not run meanwhile.
 * @return 0 when sent, -EAGAIN when it waits, -EIO when the connection was closed.
 */
static int
msg_forward(struct uvs_daemon *d, struct uvsd_guest *g, struct uvsd_vhu_conn *c)
{
	unsigned int gi = (unsigned int)(g - d->guests);
	char cbuf[UVS_SCM_SPACE(UVS_VHUMSG_MAX_FDS)];
	uint32_t size;
	struct iovec iov = { c->buf, 0 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t r;

	memcpy(&size, c->buf + 8, sizeof(size));
	iov.iov_len = UVS_VHUMSG_HDR_SIZE + size;
	uvs_scm_put(&msg, cbuf, c->fds, c->nfds);
	do {
		r = sendmsg(c->bfd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	} while (r < 0 && errno == EINTR);
	if (r < 0 && errno == EAGAIN) {
		if (!c->pending) {
			c->pending = true;
			c->started_ns = 0;
			ep_set(d, EPOLL_CTL_MOD, c->fd, gi, VHU_EP_FRONT, 0);
			ep_set(d, EPOLL_CTL_MOD, c->bfd, gi, VHU_EP_BACK, EPOLLIN | EPOLLOUT);
		}
		return -EAGAIN;
	}
	if (r != (ssize_t)iov.iov_len) {
		/* a message of at most 280 bytes is one skb: all or nothing, unless DPDK is gone */
		LOG(ERR, "%s: guest cid %u: vhost back-end not taking messages (%s); connection dropped",
				g->path, g->cid, r < 0 ? strerror(errno) : "short write");
		conn_close(d, c);
		return -EIO;
	}
	msg_fds_close(c); /* DPDK has its own copies now */
	c->got = 0;
	c->started_ns = 0;
	g->vhu_msgs++;
	if (c->pending) {
		c->pending = false;
		ep_set(d, EPOLL_CTL_MOD, c->fd, gi, VHU_EP_FRONT, EPOLLIN);
		ep_set(d, EPOLL_CTL_MOD, c->bfd, gi, VHU_EP_BACK, EPOLLIN);
	}
	return 0;
}

/* A whole message: check it and forward it to DPDK, or refuse it.
 * @return 0, or -errno once the connection is closed. */
static int
msg_handle(struct uvs_daemon *d, struct uvsd_guest *g, struct uvsd_vhu_conn *c)
{
	struct uvs_vhumsg m = { .payload = c->buf + UVS_VHUMSG_HDR_SIZE, .nfds = c->nfds };
	enum uvs_vhumsg_err e;

	memcpy(&m.request, c->buf, sizeof(m.request));
	memcpy(&m.flags, c->buf + 4, sizeof(m.flags));
	memcpy(&m.size, c->buf + 8, sizeof(m.size));
	for (unsigned int i = 0; i < c->nfds; i++)
		m.fds[i].kind = fd_kind(c->fds[i], &m.fds[i].size);
	e = c->too_many_fds ? UVS_VHUMSG_BAD_FDS : uvs_vhumsg_check(&c->st, &m);
	if (e != UVS_VHUMSG_OK) {
		char detail[96] = "";

		if (e == UVS_VHUMSG_BAD_FDS)
			snprintf(detail, sizeof(detail), "%u descriptor(s)%s", c->nfds,
					c->too_many_fds ? " and more" : "");
		else if (e == UVS_VHUMSG_SHORT_PAYLOAD)
			snprintf(detail, sizeof(detail), "size %u", m.size);
		refuse(d, g, e, m.request, detail);
		return -EBADMSG;
	}
	return msg_forward(d, g, c);
}

static void
front_event(struct uvs_daemon *d, struct uvsd_guest *g)
{
	struct uvsd_vhu_conn *c = &g->vhu;

	for (int i = 0; i < UVSD_VHU_MSGS_PER_EVENT && c->fd >= 0 && !c->pending; i++) {
		int rc = msg_read(d, g, c);

		if (rc == 0 || rc == -EBADMSG)
			return;
		if (rc < 0) {
			if (c->got != 0)
				LOG(WARNING, "%s: guest cid %u: vhost-user front-end went away in the middle of a message",
						g->path, g->cid);
			else
				LOG(INFO, "%s: guest cid %u: vhost-user front-end closed the connection",
						g->path, g->cid);
			conn_close(d, c);
			return;
		}
		if (msg_handle(d, g, c) < 0)
			return;
	}
}

/* DPDK's replies, passed on as they are; it sends nothing else on this socket. */
static void
back_event(struct uvs_daemon *d, struct uvsd_guest *g)
{
	struct uvsd_vhu_conn *c = &g->vhu;
	uint8_t buf[UVSD_VHU_REPLY_BUF];
	char cbuf[UVS_SCM_SPACE(UVS_VHUMSG_MAX_FDS)];
	int fds[UVS_VHUMSG_MAX_FDS];
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t r, w;
	unsigned int n;

	if (c->bfd < 0)
		return;
	/* DPDK's socket may take the waiting message now; then read the front-end again */
	if (c->pending && msg_forward(d, g, c) == 0)
		front_event(d, g);
	if (c->bfd < 0)
		return;
	msg.msg_control = cbuf;
	msg.msg_controllen = sizeof(cbuf);
	r = recvmsg(c->bfd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return; /* an EPOLLOUT, or nothing */
	/* no reply uvsockd lets through carries descriptors: never keep any */
	n = uvs_scm_get(&msg, fds, UVS_VHUMSG_MAX_FDS);
	for (unsigned int i = 0; i < n; i++)
		close(fds[i]);
	if (r <= 0) {
		/* DPDK refused a message itself (its log says which) or failed */
		LOG(WARNING, "%s: guest cid %u: vhost back-end closed the connection", g->path,
				g->cid);
		conn_close(d, c);
		return;
	}
	do {
		w = send(c->fd, buf, (size_t)r, MSG_DONTWAIT | MSG_NOSIGNAL);
	} while (w < 0 && errno == EINTR);
	if (w == r)
		return;
	if (w < 0 && errno != EAGAIN) {
		LOG(INFO, "%s: guest cid %u: vhost-user front-end gone (%s)", g->path, g->cid,
				strerror(errno));
		conn_close(d, c);
		return;
	}
	refuse(d, g, UVS_VHUMSG_REPLIES_NOT_READ, 0, "its socket is full");
}

/* The private socket DPDK listens on for guest g: connected at once (DPDK's backlog is
 * 128 and each guest has one connection), then read without blocking. */
static int
back_connect(const struct uvsd_guest *g)
{
	int fd = uvs_vhu_connect(g->bpath);

	if (fd >= 0 && fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	return fd;
}

static void
listen_event(struct uvs_daemon *d, struct uvsd_guest *g, unsigned int gi)
{
	struct uvsd_vhu_conn *c = &g->vhu;
	int fd, bfd;

	if (g->vhu_tokens == 0) {
		/* out of turns: leave the connection queued and stop listening until the tick
		 * gives a token (level-triggered epoll would report it on every pass) */
		ep_set(d, EPOLL_CTL_MOD, g->vhu_lfd, gi, VHU_EP_LISTEN, 0);
		g->vhu_listen_off = true;
		g->vhu_throttled++;
		return;
	}
	fd = accept4(g->vhu_lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
		/* out of fds: the VMM waits in the backlog (as it would for a slow daemon) and
		 * the tick tries again; left watched, the listener would spin the loop */
		ep_set(d, EPOLL_CTL_MOD, g->vhu_lfd, gi, VHU_EP_LISTEN, 0);
		g->vhu_listen_off = true;
		g->vhu_nofd++;
		if ((g->vhu_nofd & (g->vhu_nofd - 1)) == 0)
			LOG(WARNING,
					"%s: guest cid %u: out of file descriptors: the VMM's connection "
					"waits (%lu times so far)",
					g->path, g->cid, (unsigned long)g->vhu_nofd);
		return;
	}
	if (fd < 0)
		return;
	g->vhu_tokens--;
	g->vhu_conns++;
	if (c->fd >= 0) {
		g->vhu_replaced++;
		LOG(WARNING, "%s: guest cid %u: a new vhost-user connection replaces the current one",
				g->path, g->cid);
		conn_close(d, c);
	}
	bfd = back_connect(g);
	if (bfd < 0) {
		LOG(ERR, "%s: guest cid %u: cannot reach the vhost back-end: %s", g->path, g->cid,
				strerror(-bfd));
		close(fd);
		return;
	}
	memset(&c->st, 0, sizeof(c->st));
	c->fd = fd;
	c->bfd = bfd;
	c->got = 0;
	c->started_ns = 0;
	c->nfds = 0;
	c->too_many_fds = false;
	ep_set(d, EPOLL_CTL_ADD, fd, gi, VHU_EP_FRONT, EPOLLIN);
	ep_set(d, EPOLL_CTL_ADD, bfd, gi, VHU_EP_BACK, EPOLLIN);
	LOG(INFO, "%s: guest cid %u: vhost-user connection", g->path, g->cid);
}

void
uvsd_vhu_event(struct uvs_daemon *d, uint64_t val)
{
	unsigned int gi = (unsigned int)(val / VHU_EP_SUBS);
	struct uvsd_guest *g;

	if (gi >= d->nguests)
		return;
	g = &d->guests[gi];
	switch (val % VHU_EP_SUBS) {
	case VHU_EP_LISTEN:
		listen_event(d, g, gi);
		break;
	case VHU_EP_FRONT:
		if (g->vhu.fd >= 0)
			front_event(d, g);
		break;
	case VHU_EP_BACK:
		back_event(d, g);
		break;
	default:
		break;
	}
}

void
uvsd_vhu_tick(struct uvs_daemon *d, uint64_t now)
{
	const uint64_t deadline = UVSD_VHU_DEADLINE_MS * 1000000ull;
	const uint64_t turn = 1000000000ull / UVSD_VHU_ACCEPT_PER_S;

	for (unsigned int i = 0; i < d->nguests; i++) {
		struct uvsd_guest *g = &d->guests[i];
		char detail[64];

		if (g->vhu_tokens >= UVSD_VHU_ACCEPT_BURST) {
			g->vhu_refill_ns = now;
		} else if (now - g->vhu_refill_ns >= turn) {
			uint64_t n = (now - g->vhu_refill_ns) / turn;

			g->vhu_tokens = n >= UVSD_VHU_ACCEPT_BURST - g->vhu_tokens
							? UVSD_VHU_ACCEPT_BURST
							: g->vhu_tokens + (unsigned int)n;
			g->vhu_refill_ns += n * turn;
		}
		if (g->vhu_listen_off && g->vhu_tokens > 0 && g->vhu_lfd >= 0) {
			ep_set(d, EPOLL_CTL_MOD, g->vhu_lfd, i, VHU_EP_LISTEN, EPOLLIN);
			g->vhu_listen_off = false;
		}
		if (g->vhu.fd < 0 || g->vhu.started_ns == 0 || now - g->vhu.started_ns < deadline)
			continue;
		snprintf(detail, sizeof(detail), "%u bytes of a message in %u ms", g->vhu.got,
				UVSD_VHU_DEADLINE_MS);
		refuse(d, g, UVS_VHUMSG_STALLED, 0, detail);
	}
}

int
uvsd_vhu_listen(struct uvs_daemon *d, unsigned int gi)
{
	struct uvsd_guest *g = &d->guests[gi];
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, rc;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", g->path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(g->path);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(fd, SOMAXCONN) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	g->vhu_lfd = fd;
	g->vhu_tokens = UVSD_VHU_ACCEPT_BURST;
	g->vhu_refill_ns = uvs_now_ns();
	ep_set(d, EPOLL_CTL_ADD, fd, gi, VHU_EP_LISTEN, EPOLLIN);
	return 0;
}

void
uvsd_vhu_stop(struct uvs_daemon *d)
{
	for (unsigned int i = 0; i < d->nguests; i++) {
		struct uvsd_guest *g = &d->guests[i];

		conn_close(d, &g->vhu);
		if (g->vhu_lfd >= 0) {
			close(g->vhu_lfd);
			g->vhu_lfd = -1;
			unlink(g->path);
		}
	}
}
