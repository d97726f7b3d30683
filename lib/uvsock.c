/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Implementation notes
 *
 * State: one process-wide struct client (the control connection, its lock, and the
 * fd -> socket table). The table is two-level (UVS_FDT_CHUNK entries per chunk), chunks
 * are allocated on first use and never freed, so a lookup is two loads and no lock.
 *
 * fds: the program's fd is the anchor the daemon handed over, and dup() gives more fds for
 * the same socket (each a table entry holding a reference). libuvsock does its own I/O on
 * a private copy of the anchor (s->fd, close-on-exec, at a high number, marked reserved in
 * the table), closed with the last reference: a program closing its fd while another thread
 * is inside a call cannot make that call touch a reused fd number, and the daemon sees the
 * hang-up only once no copy and no call is left, as Linux frees a socket.
 *
 * Control path: one synchronous request/response at a time on the control socket, under
 * client.lock; one-way notifications (UVS_CTL_NOTIFY) go on the same socket. A process that
 * reached a socket through fork proves it holds the anchor (UVS_CTL_ATTACH) before its first
 * request for it on its own control connection.
 *
 * Data path: the rings of the socket's segment, under the segment's process-shared send or
 * receive lock (threads or forked processes sending on one socket must not interleave their
 * bytes); no system call while the ring has data or space. Waiting follows the protocol in
 * uvs_ipc.h: drain doorbells, set app_wait, fence, re-check, then poll() on the anchor.
 * Writability is the filler's (uvs_ipc.h): sent when a send finds the ring full.
 *
 * The daemon's end of the anchor closes when the daemon dies: the anchor then reports
 * hang-up, and the socket behaves as one reset by its peer (EOF, then EPIPE).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "uvs_ipc.h"
#include "uvs_proto.h"
#include "uvs_scm.h"
#include "uvs_sockbuf.h"
#include "uvsock.h"

/* fd table geometry: 1024 chunks of 1024 entries cover fds below 2^20 (RLIMIT_NOFILE's
 * usual hard limit). */
#define UVS_FDT_CHUNK 1024u
#define UVS_FDT_CHUNKS 1024u
/* Generic SOL_SOCKET options Linux accepts on every socket and that change nothing for
 * vsock's data path: kept so that getsockopt reads back what setsockopt set. */
#define UVS_GEN_OPTS 10
static const int gen_opt_names[UVS_GEN_OPTS] = { SO_REUSEADDR, SO_REUSEPORT, SO_KEEPALIVE,
	SO_BROADCAST, SO_OOBINLINE, SO_DONTROUTE, SO_PRIORITY, SO_SNDBUF, SO_RCVBUF, SO_RCVLOWAT };
/* Linux's defaults and floors for the buffer sizes it reports (net.core.*mem_default;
 * SOCK_MIN_SNDBUF/RCVBUF), and the doubling it applies on set. */
#define UVS_SOCK_BUF_DEFAULT 212992
#define UVS_SOCK_MIN_SNDBUF 4608
#define UVS_SOCK_MIN_RCVBUF 2304
/* Smallest ring the daemon creates: one page. */
#define UVS_RING_MIN 4096u
/* A zero SO_RCVTIMEO/SO_SNDTIMEO means wait forever. */
#define UVS_NO_DEADLINE (-1)
/* Linux's MAX_RW_COUNT: no single read or write moves more. */
#define UVS_MAX_RW_COUNT 0x7ffff000u
/* iovec entries a STREAM MSG_WAITALL receive can resume into (IOV_MAX is 1024). */
#define UVS_RECV_MAX_IOV 1024
/* Writable threshold cap (see tx_lowat()): the largest write most programs make at once. */
#define UVS_TX_LOWAT_MAX 65536u
/* Doorbells drained per read: they are one byte each. */
#define UVS_DOORBELL_BATCH 64
/* The private anchor copies and the control socket sit at or above min(RLIMIT_NOFILE / 2,
 * this): out of the way of programs that dup2() onto low numbers, and low enough that the
 * kernel's fd table does not grow to megabytes under a large limit. */
#define UVS_PRIVATE_FD_FLOOR 1024
/* How long fork() waits for the daemon to take note (UVS_CTL_FORK) before it drops the control
 * connection instead: a stopped daemon must not hang a program's unrelated forks, and a
 * dropped connection is as safe (the daemon then reuses none of its segments). */
#define UVS_FORK_NOTICE_TIMEOUT_MS 1000
/* Table mark of an fd libuvsock keeps for itself (private anchor, control socket). */
#define UVS_FDT_RESERVED ((struct usock *)(uintptr_t)1)

/* What the processes sharing a connected socket share, in its segment's app_area: the send
 * and receive locks, and the local shutdown (a socket's, not a process's). */
struct uvs_app_locks {
	pthread_mutex_t tx, rx;
	uint32_t local_shut; /* UVS_SHUTDOWN_* done by any process */
};
_Static_assert(sizeof(struct uvs_app_locks) <= sizeof(((struct uvs_shm *)0)->app_area),
		"locks fit the program's area");

struct usock {
	int fd; /* private copy of the anchor */
	int type;
	uint64_t id;
	bool nonblock;
	bool listening;
	bool listen_filler; /* a listener's filler is sent (it is never writable) */
	bool daemon_gone;
	uint32_t refs;		     /* one per fd table entry, plus one per call in progress */
	uint64_t attach_gen;	     /* client.conn_gen of the connection that may operate it */
	struct usock *next_free;     /* recycling list */
	struct usock *next_all;	     /* every object ever allocated (for fork) */
	uint32_t fork_entries;	     /* scratch: table entries, counted in a fork child */
	struct uvs_app_locks *locks; /* in the segment, once connected */
	/* Several threads may wait on one socket (a reader and a writer): only one sleeps on the
	 * anchor, the others on wait_cond until it wakes, because draining the doorbells on
	 * behalf of one waiter would otherwise swallow another's wake-up. */
	pthread_mutex_t wait_lock;
	pthread_cond_t wait_cond;
	bool polling;
	uint64_t wake_gen;
	struct uvs_shm *shm;
	size_t shm_size;
	struct uvs_sockbuf sb; /* the segment's rings, program side */
	struct timespec rcvtimeo, sndtimeo;
	uint64_t buf_size, buf_min, buf_max;
	int rcvlowat;
	int gen_opts[UVS_GEN_OPTS]; /* generic SOL_SOCKET options kept for getsockopt */
	struct linger linger;
};

/* Whether the daemon went away (its end of the anchor hung up). Any thread of the program
 * may learn it and any may ask (a receiver and a sender of one socket): atomic. */
static bool
gone(const struct usock *s)
{
	return __atomic_load_n(&s->daemon_gone, __ATOMIC_ACQUIRE);
}

static void
set_gone(struct usock *s, bool v)
{
	__atomic_store_n(&s->daemon_gone, v, __ATOMIC_RELEASE);
}

static struct {
	pthread_mutex_t lock; /* control connection, table updates */
	int ctl_fd;
	uint32_t seq;
	uint32_t local_cid;
	uint64_t conn_gen; /* bumped by every new control connection (and by fork) */
	int fd_floor;	   /* where private fds go; 0 until computed */
	pid_t daemon_pid;  /* from HELLO: the peer of every anchor */
	struct usock **chunks[UVS_FDT_CHUNKS];
	struct usock *free_socks; /* recycled socket objects */
	struct usock *all_socks;  /* every socket object, linked by next_all */
} client = { .lock = PTHREAD_MUTEX_INITIALIZER, .ctl_fd = -1 };

static struct usock *
fdt_raw(int fd)
{
	struct usock **chunk;

	if (fd < 0 || (unsigned int)fd >= UVS_FDT_CHUNK * UVS_FDT_CHUNKS)
		return NULL;
	chunk = __atomic_load_n(&client.chunks[fd / UVS_FDT_CHUNK], __ATOMIC_ACQUIRE);
	if (chunk == NULL)
		return NULL;
	return __atomic_load_n(&chunk[fd % UVS_FDT_CHUNK], __ATOMIC_ACQUIRE);
}

static struct usock *
fdt_get(int fd)
{
	struct usock *s = fdt_raw(fd);

	return s == UVS_FDT_RESERVED ? NULL : s;
}

/* Called with client.lock held. */
static int
fdt_set(int fd, struct usock *s)
{
	struct usock **chunk;

	if (fd < 0 || (unsigned int)fd >= UVS_FDT_CHUNK * UVS_FDT_CHUNKS)
		return -EMFILE;
	chunk = client.chunks[fd / UVS_FDT_CHUNK];
	if (chunk == NULL) {
		chunk = calloc(UVS_FDT_CHUNK, sizeof(*chunk));
		if (chunk == NULL)
			return -ENOMEM;
		__atomic_store_n(&client.chunks[fd / UVS_FDT_CHUNK], chunk, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&chunk[fd % UVS_FDT_CHUNK], s, __ATOMIC_RELEASE);
	return 0;
}

/*
 * Whether the anchor hung up: both directions shut. That is the daemon's death, or both
 * ends of the socket shut down for sending (the daemon shut its end when the peer did, we
 * shut ours on SHUT_WR), after which nothing can come or go either. End of file alone is
 * only the peer's SHUT_WR: sending goes on.
 */
static bool
anchor_hup(struct usock *s)
{
	struct pollfd pfd = { .fd = s->fd, .events = 0 };

	if (!gone(s) && poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLHUP))
		set_gone(s, true);
	return gone(s);
}

/* --- private fds --- */

static int
fd_floor(void)
{
	struct rlimit rl;
	int f = client.fd_floor;

	if (f == 0) {
		f = UVS_PRIVATE_FD_FLOOR;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur / 2 < (rlim_t)f)
			f = (int)(rl.rlim_cur / 2);
		if (f < 3)
			f = 3;
		client.fd_floor = f;
	}
	return f;
}

/* A close-on-exec copy of fd at a high number, marked reserved. Called with client.lock. */
static int
private_dup_locked(int fd)
{
	int p = fcntl(fd, F_DUPFD_CLOEXEC, fd_floor());

	if (p < 0)
		p = fcntl(fd, F_DUPFD_CLOEXEC, 0); /* a small RLIMIT_NOFILE: anywhere */
	if (p < 0)
		return -errno;
	if (fdt_set(p, UVS_FDT_RESERVED) < 0) {
		close(p);
		return -EMFILE;
	}
	return p;
}

/* Close a private fd. Called with client.lock. */
static void
private_close_locked(int p)
{
	fdt_set(p, NULL);
	/* Not close(): the LD_PRELOAD shim would refuse a reserved fd's close. */
	syscall(SYS_close, p);
}

/* --- control connection --- */

static void
ctl_drop_locked(void)
{
	if (client.ctl_fd >= 0)
		private_close_locked(client.ctl_fd);
	client.ctl_fd = -1;
}

static int
ctl_connect_locked(void)
{
	const char *path = getenv(UVS_CONTROL_ENV);
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct uvs_ctl_req req = { .op = UVS_CTL_HELLO, .a = UVS_IPC_VERSION };
	struct uvs_ctl_resp resp;
	ssize_t n;
	int fd, p;

	if (client.ctl_fd >= 0)
		return 0;
	if (path == NULL || path[0] == '\0')
		path = UVS_CONTROL_DEFAULT;
	if (strlen(path) >= sizeof(sun.sun_path))
		return -EAFNOSUPPORT;
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		close(fd);
		/* No daemon: answer as a host without vsock support would. */
		return -EAFNOSUPPORT;
	}
	/* A daemon out of fds answers ENOBUFS without reading our HELLO and hangs up, maybe
	 * before we send it (the send fails; the answer is there) or after (the unread HELLO
	 * makes the first receive report a reset; the answer follows). */
	if (send(fd, &req, sizeof(req), MSG_NOSIGNAL) != sizeof(req)) {
		n = recv(fd, &resp, sizeof(resp), MSG_DONTWAIT);
	} else {
		n = recv(fd, &resp, sizeof(resp), 0);
		if (n < 0 && errno == ECONNRESET)
			n = recv(fd, &resp, sizeof(resp), MSG_DONTWAIT);
	}
	if (n == sizeof(resp) && resp.op == UVS_CTL_HELLO && resp.rc == -ENOBUFS) {
		close(fd);
		return -ENOBUFS;
	}
	if (n != sizeof(resp) || resp.rc != 0) {
		close(fd);
		return -EAFNOSUPPORT;
	}
	/* out of the program's way: a high, reserved number */
	p = private_dup_locked(fd);
	close(fd);
	if (p < 0)
		return p;
	client.local_cid = resp.b;
	client.daemon_pid = (pid_t)resp.a;
	client.ctl_fd = p;
	client.conn_gen++;
	return 0;
}

int
uvs_local_cid(uint32_t *cid)
{
	int rc;

	pthread_mutex_lock(&client.lock);
	rc = ctl_connect_locked();
	if (rc == 0)
		*cid = client.local_cid;
	pthread_mutex_unlock(&client.lock);
	return rc;
}

/* Send one request (with send_fd, if >= 0) and receive its response with up to two fds.
 * Called with client.lock and a connection. @return 0, -ECONNRESET (connection lost), or
 * -EMFILE (the fds it brought could not be installed: this process is out of fds, and
 * socket() or accept() fails as Linux's would; the daemon sees their hang-up). */
static int
ctl_xfer_locked(struct uvs_ctl_req *req, int send_fd, struct uvs_ctl_resp *resp, int fds[2])
{
	char cbuf[UVS_SCM_SPACE(2)];
	struct iovec iov = { .iov_base = req, .iov_len = sizeof(*req) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	unsigned int nfds = 0;
	ssize_t n;

	req->seq = ++client.seq;
	uvs_scm_put(&msg, cbuf, &send_fd, send_fd >= 0);
	if (sendmsg(client.ctl_fd, &msg, MSG_NOSIGNAL) != sizeof(*req))
		return -ECONNRESET;
	iov = (struct iovec){ .iov_base = resp, .iov_len = sizeof(*resp) };
	msg = (struct msghdr){ .msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = sizeof(cbuf) };
	do {
		n = recvmsg(client.ctl_fd, &msg, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n > 0)
		nfds = uvs_scm_get(&msg, fds, 2);
	if (n == sizeof(*resp) && resp->seq == req->seq && nfds < resp->nfds &&
			(msg.msg_flags & MSG_CTRUNC)) {
		for (unsigned int i = 0; i < nfds; i++)
			close(fds[i]);
		fds[0] = fds[1] = -1;
		return -EMFILE;
	}
	if (n != sizeof(*resp) || resp->seq != req->seq) {
		for (int i = 0; i < 2; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		fds[0] = fds[1] = -1;
		return -ECONNRESET;
	}
	return 0;
}

/* s was reached through fork (or the control connection is new): show the daemon that this
 * process holds its anchor. Called with client.lock and a connection. */
static int
attach_locked(struct usock *s)
{
	struct uvs_ctl_req req = { .op = UVS_CTL_ATTACH, .sock = s->id };
	struct uvs_ctl_resp resp;
	int fds[2] = { -1, -1 }, rc;

	rc = ctl_xfer_locked(&req, s->fd, &resp, fds);
	if (rc == 0)
		rc = resp.rc;
	if (rc == 0)
		s->attach_gen = client.conn_gen;
	return rc;
}

/*
 * One request, one response with up to two fds. For a request about socket s (s may be
 * NULL), the socket is attached first if needed. The control connection is reopened once if
 * the daemon restarted since it was opened.
 */
static int
ctl_call_sock(struct usock *s, struct uvs_ctl_req *req, struct uvs_ctl_resp *resp, int fds[2])
{
	int rc = 0, attempt;

	fds[0] = fds[1] = -1;
	pthread_mutex_lock(&client.lock);
	for (attempt = 0; attempt < 2; attempt++) {
		rc = ctl_connect_locked();
		if (rc < 0)
			goto out;
		if (s != NULL && s->attach_gen != client.conn_gen) {
			rc = attach_locked(s);
			if (rc == -ECONNRESET) {
				ctl_drop_locked();
				continue;
			}
			if (rc < 0)
				goto out;
		}
		rc = ctl_xfer_locked(req, -1, resp, fds);
		if (rc == 0 || rc == -EMFILE)
			break;
		ctl_drop_locked();
	}
	if (rc == 0)
		rc = resp->rc;
out:
	pthread_mutex_unlock(&client.lock);
	if (rc < 0 && s != NULL && anchor_hup(s)) {
		/* The daemon that served this socket died (a new one may run): the socket is
		 * dead, as one reset by its peer. */
		set_gone(s, true);
		rc = req->op == UVS_CTL_ACCEPT ? -ECONNABORTED : -ECONNRESET;
	}
	return rc;
}

static int
ctl_call(struct uvs_ctl_req *req, struct uvs_ctl_resp *resp, int fds[2])
{
	return ctl_call_sock(NULL, req, resp, fds);
}

/* One-way: tell the daemon about s (UVS_DWAIT_* | UVS_NOTE_RING_BACK).
 * @return false if it could not be sent (no control connection): the caller puts back the
 * wait bit it took, so the next change tries again. */
static bool
ctl_notify(struct usock *s, uint32_t bits)
{
	struct uvs_ctl_req req = { .op = UVS_CTL_NOTIFY, .sock = s->id, .a = bits };
	bool sent = false;

	pthread_mutex_lock(&client.lock);
	for (int attempt = 0; attempt < 2 && !sent; attempt++) {
		if (ctl_connect_locked() < 0)
			break;
		if (s->attach_gen != client.conn_gen) {
			int rc = attach_locked(s);

			if (rc == -ECONNRESET) {
				ctl_drop_locked();
				continue;
			}
			if (rc < 0)
				break;
		}
		sent = send(client.ctl_fd, &req, sizeof(req), MSG_NOSIGNAL) == sizeof(req);
		if (!sent)
			ctl_drop_locked();
	}
	pthread_mutex_unlock(&client.lock);
	return sent;
}

/* --- segment --- */

static void
seg_unmap(struct usock *s)
{
	if (s->shm != NULL)
		munmap(s->shm, s->shm_size);
	s->shm = NULL;
	s->locks = NULL;
}

/* The segment is new (only this process maps it): its send and receive locks are
 * process-shared, for forked children, and robust, so that one dying inside a call does not
 * block the others (the rings' shared indexes are only written at the end of a step). */
static void
app_locks_init(struct uvs_app_locks *l)
{
	pthread_mutexattr_t a;

	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&l->tx, &a);
	pthread_mutex_init(&l->rx, &a);
	pthread_mutexattr_destroy(&a);
}

static void
app_lock(pthread_mutex_t *m)
{
	if (pthread_mutex_lock(m) == EOWNERDEAD)
		pthread_mutex_consistent(m);
}

/* UVS_SHUTDOWN_* done on this socket (by any process sharing it). */
static uint32_t
local_shut(const struct usock *s)
{
	return s->locks != NULL ? __atomic_load_n(&s->locks->local_shut, __ATOMIC_ACQUIRE) : 0;
}

static int
seg_map(struct usock *s, int memfd, bool fresh)
{
	struct uvs_shm *shm;
	struct stat st;
	uint32_t rx_off, rx_size, tx_off, tx_size;

	if (fstat(memfd, &st) < 0 || st.st_size < (off_t)UVS_SHM_HDR_SIZE) {
		close(memfd);
		return -EPROTO;
	}
	shm = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	close(memfd);
	if (shm == MAP_FAILED)
		return -ENOMEM;
	rx_off = shm->rx_off;
	rx_size = shm->rx_size;
	tx_off = shm->tx_off;
	tx_size = shm->tx_size;
	if (shm->magic != UVS_IPC_MAGIC || shm->version != UVS_IPC_VERSION ||
			(uint64_t)rx_off + rx_size > (uint64_t)st.st_size ||
			(uint64_t)tx_off + tx_size > (uint64_t)st.st_size ||
			rx_size < UVS_RING_MIN || tx_size < UVS_RING_MIN ||
			(rx_size & (rx_size - 1)) != 0 || (tx_size & (tx_size - 1)) != 0) {
		munmap(shm, st.st_size);
		return -EPROTO;
	}
	seg_unmap(s);
	if (fresh) /* else another process (before exec) set them up and may hold them */
		app_locks_init((struct uvs_app_locks *)shm->app_area);
	s->locks = (struct uvs_app_locks *)shm->app_area;
	s->shm = shm;
	s->shm_size = st.st_size;
	s->sb = (struct uvs_sockbuf){ .type = (uint16_t)s->type };
	uvs_ring_attach(&s->sb.rx, &shm->rx, (uint8_t *)shm + rx_off, rx_size, false);
	uvs_ring_attach(&s->sb.tx, &shm->tx, (uint8_t *)shm + tx_off, tx_size, true);
	return 0;
}

/* The per-process waiting state (see wait_until()). */
static void
wait_init(struct usock *s)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&s->wait_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* deadlines are monotonic */
	pthread_cond_init(&s->wait_cond, &ca);
	pthread_condattr_destroy(&ca);
	s->polling = false;
}

static void usock_release(struct usock *s);

/* --- fork --- */

/* No fork while a thread is inside a control exchange: the child would inherit the lock.
 * The daemon is told first if the child will map segments (UVS_CTL_FORK): it must not reuse
 * them for this process's later sockets. If the exchange fails, the connection is gone and
 * with it what the daemon would reuse for it. */
static void
atfork_prepare(void)
{
	struct uvs_ctl_req req = { .op = UVS_CTL_FORK };
	struct timeval tv = { .tv_sec = UVS_FORK_NOTICE_TIMEOUT_MS / 1000,
		.tv_usec = UVS_FORK_NOTICE_TIMEOUT_MS % 1000 * 1000 };
	struct timeval none = { 0 };
	struct uvs_ctl_resp resp;
	int fds[2] = { -1, -1 };
	struct usock *s;

	pthread_mutex_lock(&client.lock);
	for (s = client.all_socks; s != NULL && s->shm == NULL; s = s->next_all)
		;
	if (client.ctl_fd < 0 || s == NULL)
		return; /* no connection, or no segment to tell of */
	setsockopt(client.ctl_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (ctl_xfer_locked(&req, -1, &resp, fds) < 0)
		ctl_drop_locked();
	else
		setsockopt(client.ctl_fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
}

static void
atfork_parent(void)
{
	pthread_mutex_unlock(&client.lock);
}

/*
 * The child: one thread, a copy of the parent's memory. The control connection is the
 * parent's (its exchanges would mix with the parent's): the child opens its own on first
 * use, and attaches each socket it uses (conn_gen moves). Waiting state that other threads
 * held is reset; the rings' locks are process-shared and need nothing.
 * client.lock is unlocked, not initialised again: this thread took it in atfork_prepare, and
 * initialising a mutex that is initialised (and locked) is undefined (POSIX), which
 * ThreadSanitizer reports as a double lock at the child's first use.
 */
static void
atfork_child(void)
{
	pthread_mutex_unlock(&client.lock);
	if (client.ctl_fd >= 0)
		private_close_locked(client.ctl_fd);
	client.ctl_fd = -1;
	client.conn_gen++;
	/* References: the child has one per fd table entry, and none of the calls the
	 * parent's other threads were in. A socket that only such a call kept alive (its fds
	 * closed meanwhile) is released here, or its private anchor would keep it open. */
	for (struct usock *s = client.all_socks; s != NULL; s = s->next_all)
		s->fork_entries = 0;
	for (unsigned int c = 0; c < UVS_FDT_CHUNKS; c++) {
		struct usock **chunk = client.chunks[c];

		for (unsigned int i = 0; chunk != NULL && i < UVS_FDT_CHUNK; i++)
			if (chunk[i] != NULL && chunk[i] != UVS_FDT_RESERVED)
				chunk[i]->fork_entries++;
	}
	for (struct usock *s = client.all_socks; s != NULL; s = s->next_all) {
		if (s->refs == 0)
			continue; /* on the free list */
		wait_init(s);
		s->refs = s->fork_entries;
		if (s->refs == 0)
			usock_release(s);
	}
}

__attribute__((constructor)) static void
uvs_lib_init(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* Socket objects are recycled, never freed: a thread that looked one up just before another
 * thread closed it may still touch its reference count (see sock_get()). */
static struct usock *
usock_new(int fd, int type, uint64_t id)
{
	struct usock *s;

	pthread_mutex_lock(&client.lock);
	s = client.free_socks;
	if (s != NULL)
		client.free_socks = s->next_free;
	pthread_mutex_unlock(&client.lock);
	if (s == NULL) {
		s = calloc(1, sizeof(*s));
		if (s == NULL)
			return NULL;
		wait_init(s);
		pthread_mutex_lock(&client.lock);
		s->next_all = client.all_socks;
		client.all_socks = s;
		pthread_mutex_unlock(&client.lock);
	}
	s->fd = fd;
	s->type = type;
	s->id = id;
	s->attach_gen = client.conn_gen;
	s->locks = NULL;
	s->nonblock = s->listening = false;
	set_gone(s, false);
	s->listen_filler = false;
	s->polling = false;
	s->shm = NULL;
	s->shm_size = 0;
	memset(&s->sb, 0, sizeof(s->sb));
	memset(&s->rcvtimeo, 0, sizeof(s->rcvtimeo));
	memset(&s->sndtimeo, 0, sizeof(s->sndtimeo));
	s->buf_size = UVS_BUF_SIZE_DEFAULT;
	s->buf_min = UVS_BUF_SIZE_MIN_DEFAULT;
	s->buf_max = UVS_BUF_SIZE_MAX_DEFAULT;
	s->rcvlowat = 1;
	memset(s->gen_opts, 0, sizeof(s->gen_opts));
	s->gen_opts[7] = s->gen_opts[8] = UVS_SOCK_BUF_DEFAULT; /* SO_SNDBUF, SO_RCVBUF */
	s->gen_opts[9] = 1;					/* SO_RCVLOWAT */
	memset(&s->linger, 0, sizeof(s->linger));
	__atomic_store_n(&s->refs, 1, __ATOMIC_RELEASE); /* the first fd table entry's */
	return s;
}

/* The last reference is gone: close the private anchor (the daemon sees the socket closed
 * once every other process's copy is closed too), unmap the segment, keep the object. */
static void
usock_release(struct usock *s)
{
	seg_unmap(s);
	pthread_mutex_lock(&client.lock);
	if (s->fd >= 0)
		private_close_locked(s->fd);
	s->fd = -1;
	s->next_free = client.free_socks;
	client.free_socks = s;
	pthread_mutex_unlock(&client.lock);
}

static void
sock_put(struct usock *s)
{
	if (__atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0)
		usock_release(s);
}

/*
 * Take a reference on fd's socket for the length of one call, so that a close() in another
 * thread cannot unmap the segment under it. A socket whose count already reached zero is
 * dead and never revived; the table is checked again after taking the reference because
 * the object may have been recycled for another fd in between.
 */
static struct usock *
sock_get(int fd)
{
	struct usock *s = fdt_get(fd);
	uint32_t refs;

	if (s == NULL)
		return NULL;
	refs = __atomic_load_n(&s->refs, __ATOMIC_ACQUIRE);
	do {
		if (refs == 0)
			return NULL;
	} while (!__atomic_compare_exchange_n(
			&s->refs, &refs, refs + 1, true, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
	if (fdt_get(fd) != s) {
		sock_put(s);
		return NULL;
	}
	return s;
}

/*
 * Give a new socket its fds: the program's (app_fd, which gets O_NONBLOCK and close-on-exec
 * as asked) and the private copy. Takes the object's first reference as app_fd's table
 * entry. On failure the object is released and app_fd closed.
 */
static int
sock_install(struct usock *s, int app_fd, int flags)
{
	int p, rc;

	if (!(flags & SOCK_CLOEXEC))
		fcntl(app_fd, F_SETFD, 0);
	if (flags & SOCK_NONBLOCK)
		fcntl(app_fd, F_SETFL, O_NONBLOCK); /* F_GETFL tells the truth */
	s->nonblock = (flags & SOCK_NONBLOCK) != 0;
	pthread_mutex_lock(&client.lock);
	p = private_dup_locked(app_fd);
	rc = p;
	if (p >= 0) {
		s->fd = p;
		rc = fdt_set(app_fd, s);
	}
	pthread_mutex_unlock(&client.lock);
	if (rc < 0) {
		close(app_fd);
		sock_put(s);
		return rc;
	}
	return app_fd;
}

/* --- waiting --- */

/* Drain doorbells. */
static void
doorbell_drain(struct usock *s)
{
	char buf[UVS_DOORBELL_BATCH];
	struct iovec iov = { .iov_base = buf, .iov_len = 1 };
	struct mmsghdr mm[UVS_DOORBELL_BATCH];
	int n;

	for (int i = 0; i < UVS_DOORBELL_BATCH; i++) {
		iov.iov_base = &buf[i];
		mm[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov, .msg_iovlen = 1 } };
	}
	for (;;) {
		n = recvmmsg(s->fd, mm, UVS_DOORBELL_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0)
			return;
		for (int i = 0; i < n; i++) {
			if (mm[i].msg_len == 0) {
				anchor_hup(s); /* end of file: maybe more */
				return;
			}
		}
		if (n < UVS_DOORBELL_BATCH)
			return;
	}
}

static void
notify_daemon(struct usock *s, uint32_t bit)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if ((__atomic_load_n(&s->shm->daemon_wait, __ATOMIC_RELAXED) & bit) &&
			(__atomic_fetch_and(&s->shm->daemon_wait, ~bit, __ATOMIC_SEQ_CST) & bit) &&
			!ctl_notify(s, bit))
		__atomic_fetch_or(&s->shm->daemon_wait, bit, __ATOMIC_SEQ_CST);
}

/*
 * Make the fd read as not writable until the daemon reads the filler back: once tx has need
 * free bytes, or never while listening or shut down for sending (see uvs_ipc.h).
 */
static void
filler_send(struct usock *s, uint32_t need)
{
	static const char filler[UVS_FILLER_SIZE];

	if (s->shm == NULL) {
		if (!s->listening || s->listen_filler)
			return;
		s->listen_filler = true;
	} else {
		__atomic_store_n(&s->shm->tx_need, need, __ATOMIC_RELEASE);
		if (__atomic_exchange_n(&s->shm->tx_filler, 1, __ATOMIC_ACQ_REL) != 0)
			return; /* one is queued already; the daemon reads the new need */
	}
	if (send(s->fd, filler, sizeof(filler), MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && s->shm != NULL)
		__atomic_store_n(&s->shm->tx_filler, 0, __ATOMIC_RELEASE); /* daemon gone */
}

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t
deadline_from(const struct timespec *t)
{
	if (t->tv_sec == 0 && t->tv_nsec == 0)
		return UVS_NO_DEADLINE;
	return now_ns() + (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

/*
 * Sleep until a doorbell, or the deadline (-1: none), as the socket call would, signals
 * included (signal(7)): without a deadline, a restartable call (recv, send, accept) sleeps
 * in a blocking recv(MSG_PEEK) on the anchor, which the kernel restarts after a handler
 * installed with SA_RESTART and fails with EINTR otherwise; a timed wait (SO_RCVTIMEO,
 * SO_SNDTIMEO) and connect sleep in poll(), never restarted: -EINTR.
 * @return 0 when woken (the caller re-checks), -EAGAIN on timeout, -EINTR.
 */
/* A blocking wait on the anchor found it nonblocking: another process sharing the open file
 * set O_NONBLOCK, which belongs to the file, as on Linux: take it, and fail as a
 * nonblocking call. */
static int
nonblock_elsewhere(struct usock *s)
{
	s->nonblock = true;
	return -EAGAIN;
}

/* poll() the anchor for events until the deadline (-1: none).
 * @return 0 when ready, -EAGAIN on timeout, -EINTR. */
static int
anchor_poll(struct usock *s, short events, int64_t deadline)
{
	struct pollfd pfd = { .fd = s->fd, .events = events };
	int timeout = -1, rc;

	if (deadline != UVS_NO_DEADLINE) {
		int64_t left = deadline - now_ns();

		if (left <= 0)
			return -EAGAIN;
		timeout = (int)((left + 999999) / 1000000);
	}
	rc = poll(&pfd, 1, timeout);
	if (rc < 0 && errno == EINTR)
		return -EINTR;
	if (rc > 0 && (pfd.revents & POLLHUP))
		anchor_hup(s);
	return rc == 0 ? -EAGAIN : 0;
}

static int
anchor_sleep(struct usock *s, int64_t deadline, bool restartable)
{
	ssize_t n;
	char b;

	if (deadline == UVS_NO_DEADLINE && restartable) {
		n = recv(s->fd, &b, 1, MSG_PEEK);
		if (n == 0)
			anchor_hup(s);
		if (n >= 0)
			return 0;
		if (errno == EINTR)
			return -EINTR;
		if (errno == EAGAIN)
			return nonblock_elsewhere(s);
	}
	return anchor_poll(s, POLLIN, deadline);
}

/* About to report -EAGAIN: make the fd readable on the next change (see uvsock.h). */
static void
arm(struct usock *s)
{
	doorbell_drain(s);
	if (s->shm != NULL) {
		__atomic_store_n(&s->shm->app_wait, 1, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	}
}

static bool rx_ready(struct usock *s);
static bool tx_ready(struct usock *s);

/*
 * Keep the fd's readability exact (what poll/select/epoll report): after the program took
 * everything, drain the doorbells and arm; if news came in the meantime, ask the daemon to
 * ring back so the fd stays readable. One system call per emptying, none while data flows.
 */
static void
settle(struct usock *s)
{
	/* Doorbells are only sent by the daemon taking app_wait (1 -> 0), and arm() drains
	 * before setting it again: while app_wait reads 1, no doorbell is pending. */
	if (s->shm != NULL && __atomic_load_n(&s->shm->app_wait, __ATOMIC_ACQUIRE) != 0)
		return;
	arm(s);
	if (s->shm != NULL && rx_ready(s) && !gone(s)) {
		/* the doorbell asked for goes with app_wait 0, like every doorbell */
		__atomic_store_n(&s->shm->app_wait, 0, __ATOMIC_RELEASE);
		if (!ctl_notify(s, UVS_NOTE_RING_BACK))
			__atomic_store_n(&s->shm->app_wait, 1, __ATOMIC_RELEASE);
	}
}

static int
wait_until(struct usock *s, bool (*ready)(struct usock *), int64_t deadline, bool restartable)
{
	uint64_t gen;
	int rc = 0;

	if (ready(s))
		return 0;
	pthread_mutex_lock(&s->wait_lock);
	if (s->polling) {
		/* another thread sleeps on the anchor: wake when it does, then look again */
		gen = s->wake_gen;
		while (gen == s->wake_gen && rc == 0) {
			if (deadline == UVS_NO_DEADLINE) {
				pthread_cond_wait(&s->wait_cond, &s->wait_lock);
			} else {
				struct timespec ts = { .tv_sec = deadline / 1000000000,
					.tv_nsec = deadline % 1000000000 };

				if (pthread_cond_timedwait(&s->wait_cond, &s->wait_lock, &ts) ==
						ETIMEDOUT)
					rc = -EAGAIN;
			}
		}
		pthread_mutex_unlock(&s->wait_lock);
		return rc;
	}
	s->polling = true;
	pthread_mutex_unlock(&s->wait_lock);
	arm(s);
	if (!ready(s) && !gone(s))
		rc = anchor_sleep(s, deadline, restartable); /* woken: the caller looks again */
	pthread_mutex_lock(&s->wait_lock);
	s->polling = false;
	s->wake_gen++;
	pthread_cond_broadcast(&s->wait_cond);
	pthread_mutex_unlock(&s->wait_lock);
	return rc;
}

static uint32_t
shm_state(const struct usock *s)
{
	return __atomic_load_n(&s->shm->state, __ATOMIC_ACQUIRE);
}

static uint32_t
shm_peer_shut(const struct usock *s)
{
	return __atomic_load_n(&s->shm->peer_shut, __ATOMIC_ACQUIRE);
}

/* --- calls --- */

int
uvs_socket(int type)
{
	struct uvs_ctl_req req = { .op = UVS_CTL_SOCKET };
	struct uvs_ctl_resp resp;
	int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
	int fds[2] = { -1, -1 };
	struct usock *s;
	int rc;

	if (base == SOCK_DGRAM)
		return -ENODEV; /* no datagram transport on virtio, as in Linux */
	if (base != SOCK_STREAM && base != SOCK_SEQPACKET)
		return -ESOCKTNOSUPPORT;
	req.a = base == SOCK_STREAM ? UVS_TYPE_STREAM : UVS_TYPE_SEQPACKET;
	rc = ctl_call(&req, &resp, fds);
	if (rc < 0)
		return rc;
	if (fds[1] >= 0)
		close(fds[1]);
	if (fds[0] < 0)
		return -EPROTO;
	s = usock_new(-1, req.a, resp.sock);
	if (s == NULL) {
		close(fds[0]);
		return -ENOMEM;
	}
	return sock_install(s, fds[0], type);
}

static int
check_addr(const struct sockaddr_vm *addr)
{
	if (addr == NULL || addr->svm_family != AF_VSOCK)
		return -EINVAL;
	if (addr->svm_flags != 0 && addr->svm_flags != VMADDR_FLAG_TO_HOST)
		return -EINVAL;
	return 0;
}

static int
simple_call(struct usock *s, uint32_t op, uint32_t a, uint32_t b, struct uvs_ctl_resp *resp)
{
	struct uvs_ctl_req req = { .op = op, .sock = s->id, .a = a, .b = b };
	struct uvs_ctl_resp r;
	int fds[2];
	int rc = ctl_call_sock(s, &req, resp != NULL ? resp : &r, fds);

	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]); /* none expected */
	return rc;
}

static int
sock_bind(struct usock *s, const struct sockaddr_vm *addr)
{
	int rc;

	rc = check_addr(addr);
	if (rc < 0)
		return rc;
	return simple_call(s, UVS_CTL_BIND, addr->svm_cid, addr->svm_port, NULL);
}

int
uvs_bind(int fd, const struct sockaddr_vm *addr)
{
	struct usock *s = sock_get(fd);
	int rc;

	if (s == NULL)
		return -ENOTSOCK;
	rc = sock_bind(s, addr);
	sock_put(s);
	return rc;
}

static int
sock_listen(struct usock *s, int backlog)
{
	int rc;

	if (backlog < 0)
		backlog = 0;
	rc = simple_call(s, UVS_CTL_LISTEN, (uint32_t)backlog, 0, NULL);
	if (rc == 0) {
		s->listening = true;
		filler_send(s, UVS_NEED_NEVER); /* a listener is never writable */
	}
	return rc;
}

int
uvs_listen(int fd, int backlog)
{
	struct usock *s = sock_get(fd);
	int rc;

	if (s == NULL)
		return -ENOTSOCK;
	rc = sock_listen(s, backlog);
	sock_put(s);
	return rc;
}

static int
sock_accept(struct usock *s, struct sockaddr_vm *addr, int flags)
{
	struct usock *ns;
	struct uvs_ctl_req req;
	struct uvs_ctl_resp resp;
	int fds[2], rc;
	int64_t deadline;

	if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC))
		return -EINVAL;
	deadline = deadline_from(&s->rcvtimeo);
	for (;;) {
		/* Doorbells before the request are stale; one after it means a connection was
		 * queued since (the daemon rings when the queue becomes non-empty). */
		doorbell_drain(s);
		req = (struct uvs_ctl_req){ .op = UVS_CTL_ACCEPT, .sock = s->id };
		rc = ctl_call_sock(s, &req, &resp, fds);
		if (rc != -EAGAIN)
			break;
		if (s->nonblock)
			return -EAGAIN;
		rc = anchor_sleep(s, deadline, true);
		if (rc < 0)
			return rc;
		if (gone(s))
			return -ECONNABORTED;
	}
	if (rc < 0)
		return rc;
	if (fds[0] < 0 || fds[1] < 0) {
		if (fds[0] >= 0)
			close(fds[0]);
		if (fds[1] >= 0)
			close(fds[1]);
		return -EPROTO;
	}
	ns = usock_new(-1, s->type, resp.sock);
	if (ns == NULL) {
		close(fds[0]);
		close(fds[1]);
		return -ENOMEM;
	}
	ns->buf_size = s->buf_size;
	ns->buf_min = s->buf_min;
	ns->buf_max = s->buf_max;
	rc = seg_map(ns, fds[1], true);
	if (rc < 0) {
		close(fds[0]);
		sock_put(ns);
		return rc;
	}
	rc = sock_install(ns, fds[0], flags);
	if (rc < 0)
		return rc;
	if (addr != NULL) {
		memset(addr, 0, sizeof(*addr));
		addr->svm_family = AF_VSOCK;
		addr->svm_cid = resp.a;
		addr->svm_port = resp.b;
	}
	return fds[0];
}

int
uvs_accept(int fd, struct sockaddr_vm *addr, int flags)
{
	struct usock *s = sock_get(fd);
	int rc;

	if (s == NULL)
		return -ENOTSOCK;
	rc = sock_accept(s, addr, flags);
	sock_put(s);
	return rc;
}

static bool
connect_done(struct usock *s)
{
	return s->shm != NULL && shm_state(s) != UVS_SS_CONNECTING;
}

static int
sock_connect(struct usock *s, const struct sockaddr_vm *addr)
{
	struct uvs_ctl_req req;
	struct uvs_ctl_resp resp;
	int fds[2], rc, err;

	rc = check_addr(addr);
	if (rc < 0)
		return rc;
	if (s->listening)
		return -EINVAL;
	req = (struct uvs_ctl_req){
		.op = UVS_CTL_CONNECT, .sock = s->id, .a = addr->svm_cid, .b = addr->svm_port
	};
	rc = ctl_call_sock(s, &req, &resp, fds);
	if (fds[1] >= 0)
		close(fds[1]);
	if (rc < 0)
		return rc;
	if (fds[0] < 0)
		return -EPROTO;
	rc = seg_map(s, fds[0], true);
	if (rc < 0)
		return rc;
	/* Not writable until the connection is made or fails (the daemon reads the filler
	 * back then): what a nonblocking caller polls for, and what a blocking one sleeps on. */
	filler_send(s, 1);
	if (s->nonblock)
		return -EINPROGRESS;
	while (!connect_done(s) && !gone(s)) {
		rc = anchor_poll(s, POLLOUT, UVS_NO_DEADLINE);
		if (rc < 0)
			return rc; /* EINTR: the connection goes on, as in Linux */
	}
	if (gone(s))
		return -ECONNRESET;
	if (shm_state(s) == UVS_SS_CONNECTED)
		return 0;
	err = __atomic_exchange_n(&s->shm->err, 0, __ATOMIC_ACQ_REL);
	return err < 0 ? err : -ECONNRESET;
}

int
uvs_connect(int fd, const struct sockaddr_vm *addr)
{
	struct usock *s = sock_get(fd);
	int rc;

	if (s == NULL)
		return -ENOTSOCK;
	rc = sock_connect(s, addr);
	sock_put(s);
	return rc;
}

/* Why a send cannot go on, or 0. A pending error (the peer went away) is taken (cleared)
 * only with take: a send that reports it, not a send that returns a short count before it
 * (Linux's sendmsg returns the count and leaves sk_err for the next call), nor a look at
 * writability. */
static int
send_blocked_err(struct usock *s, bool take)
{
	uint32_t st;

	if (s->shm == NULL)
		return -ENOTCONN;
	if (gone(s))
		return -EPIPE;
	st = shm_state(s);
	if (st == UVS_SS_CONNECTING || st == UVS_SS_UNCONNECTED)
		return -ENOTCONN;
	if (st == UVS_SS_DISCONNECTED) {
		/* A pending error (the peer went away) is returned once, then EPIPE, as
		 * Linux's sk_stream_error() returns sock_error() instead of EPIPE. */
		int err = take ? __atomic_exchange_n(&s->shm->err, 0, __ATOMIC_ACQ_REL)
			       : __atomic_load_n(&s->shm->err, __ATOMIC_ACQUIRE);

		if (err < 0)
			return err;
	}
	if ((local_shut(s) & UVS_SHUTDOWN_SEND) || st == UVS_SS_DISCONNECTED ||
			(shm_peer_shut(s) & UVS_SHUTDOWN_RCV))
		return -EPIPE;
	return 0;
}

static bool
tx_ready(struct usock *s)
{
	uint32_t space;

	if (send_blocked_err(s, false) != 0)
		return true;
	return uvs_ring_space(&s->sb.tx, &space) < 0 || space > UVS_REC_SIZE;
}

/*
 * Free send space below which the fd stops being writable. Linux's vsock reports writable
 * with a single byte of credit, and a program that then writes a buffer blocks until all
 * of it fits: a single-threaded program that selects for writing and also reads the
 * peer's replies (socat, ncat) can then deadlock against an echoing peer. TCP avoids that
 * by asking for a useful amount of space (sk_stream_min_wspace()); so do we: a quarter of
 * the ring, at most UVS_TX_LOWAT_MAX. A send never depends on it: it goes as far as space
 * allows.
 */
static uint32_t
tx_lowat(const struct usock *s)
{
	uint32_t q = s->sb.tx.size / 4;

	return q < UVS_TX_LOWAT_MAX ? q : UVS_TX_LOWAT_MAX;
}

/*
 * Wait for need free bytes in tx (or for a state in which sending cannot block): the filler
 * asks the daemon, which reads it back when they are there. Without a deadline, a blocking
 * one-byte send on the anchor sleeps until then (the filler fills its send buffer), which the
 * kernel restarts after an SA_RESTART handler as it would the send itself; with one
 * (SO_SNDTIMEO), poll() for POLLOUT, never restarted (signal(7)).
 * @return 0 (look again), -EAGAIN on timeout, -EINTR.
 */
static int
tx_wait(struct usock *s, uint32_t need, int64_t deadline)
{
	filler_send(s, need);
	if (tx_ready(s))
		return 0;
	if (deadline == UVS_NO_DEADLINE) {
		if (send(s->fd, "w", 1, MSG_NOSIGNAL) >= 0)
			return 0;
		if (errno == EINTR)
			return -EINTR;
		if (errno == EAGAIN)
			return nonblock_elsewhere(s);
		anchor_hup(s); /* the daemon is gone */
		return 0;
	}
	return anchor_poll(s, POLLOUT, deadline);
}

static ssize_t
send_iov_locked(struct usock *s, const struct iovec *iov, unsigned int n, size_t len, int flags)
{
	bool seq = s->type == UVS_TYPE_SEQPACKET;
	bool dontwait = s->nonblock || (flags & MSG_DONTWAIT);
	int64_t deadline = deadline_from(&s->sndtimeo);
	uint32_t done = 0, space;
	bool armed = false;
	int64_t w;
	int rc;

	if (seq) {
		rc = send_blocked_err(s, true);
		if (rc < 0)
			return rc;
		if (len == 0)
			return 0;
		if (len > __atomic_load_n(&s->shm->peer_buf_alloc, __ATOMIC_ACQUIRE))
			return -EMSGSIZE;
	} else if (len > UVS_MAX_RW_COUNT) {
		len = UVS_MAX_RW_COUNT; /* as Linux: a longer send is a short write */
	}
	/* SEQPACKET: a nonblocking send that fits the ring is all or nothing */
	if (seq && dontwait && len + UVS_REC_SIZE <= s->sb.tx.size &&
			(uvs_ring_space(&s->sb.tx, &space) < 0 || space < len + UVS_REC_SIZE)) {
		/* not writable until this message fits; then look once more */
		filler_send(s, (uint32_t)len + UVS_REC_SIZE);
		if (uvs_ring_space(&s->sb.tx, &space) < 0 || space < len + UVS_REC_SIZE)
			return -EAGAIN;
	}
	rc = 0;
	while (done < len) {
		rc = send_blocked_err(s, done == 0 || seq);
		if (rc < 0)
			break;
		w = uvs_sockbuf_app_write(&s->sb, iov, n, done, (uint32_t)(len - done),
				(uint32_t)len, (flags & MSG_EOR) != 0);
		if (w < 0) {
			rc = -EIO;
			break;
		}
		if (w == 0) {
			if (dontwait && done > 0 && !seq)
				break; /* a short write */
			if (dontwait) {
				uint64_t need = seq ? (uint64_t)(len - done) + UVS_REC_SIZE : 1;

				if (need < tx_lowat(s))
					need = tx_lowat(s);

				if (armed)
					return -EAGAIN;
				/* not writable until there is room; then look once more: space
				 * may have freed meanwhile */
				filler_send(s, need < s->sb.tx.size ? (uint32_t)need
								    : s->sb.tx.size);
				armed = true;
				continue;
			}
			{
				uint64_t need = (uint64_t)(len - done) + (seq ? UVS_REC_SIZE : 0);

				if (need > tx_lowat(s))
					need = tx_lowat(s);
				rc = tx_wait(s, (uint32_t)need, deadline);
			}
			if (rc < 0)
				break;
			continue;
		}
		done += (uint32_t)w;
		notify_daemon(s, UVS_DWAIT_TX);
	}
	/* Little room left: not writable until it drains (see tx_lowat()). */
	if (done > 0 && uvs_ring_space(&s->sb.tx, &space) == 0 && space < tx_lowat(s))
		filler_send(s, tx_lowat(s));
	if (rc < 0)
		return done > 0 && !seq && rc != -EIO ? (ssize_t)done : rc;
	return (ssize_t)done;
}

static ssize_t
sock_do_sendmsg(struct usock *s, const struct iovec *iov, unsigned int n, int flags)
{
	size_t len = 0;
	ssize_t rc;

	if (flags & MSG_OOB)
		return -EOPNOTSUPP;
	for (unsigned int i = 0; i < n; i++)
		len += iov[i].iov_len;
	if (s->shm == NULL)
		return -ENOTCONN;
	app_lock(&s->locks->tx);
	uvs_ring_resync(&s->sb.tx, true); /* another process may have sent since */
	rc = send_iov_locked(s, iov, n, len, flags);
	pthread_mutex_unlock(&s->locks->tx);
	return rc;
}

static ssize_t
do_sendmsg(int fd, const struct iovec *iov, unsigned int n, int flags)
{
	struct usock *s = sock_get(fd);
	ssize_t rc;

	if (s == NULL)
		return -ENOTSOCK;
	rc = sock_do_sendmsg(s, iov, n, flags);
	sock_put(s);
	return rc;
}

ssize_t
uvs_send(int fd, const void *buf, size_t len, int flags)
{
	struct iovec iov = { .iov_base = (void *)(uintptr_t)buf, .iov_len = len };

	return do_sendmsg(fd, &iov, 1, flags);
}

ssize_t
uvs_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	if (msg->msg_name != NULL)
		return -EISCONN;
	return do_sendmsg(fd, msg->msg_iov, (unsigned int)msg->msg_iovlen, flags);
}

/* Whether a receive would return now (data, EOF or error). */
/* Whether a receive would return now (data, EOF or error). */
static bool
rx_ready(struct usock *s)
{
	uint32_t used;

	if (s->shm == NULL || (local_shut(s) & UVS_SHUTDOWN_RCV) || gone(s))
		return true;
	if (uvs_ring_used(&s->sb.rx, &used) < 0 || used > 0)
		return true;
	return shm_state(s) != UVS_SS_CONNECTED || (shm_peer_shut(s) & UVS_SHUTDOWN_SEND);
}

/* Nothing more will arrive: the peer or the daemon is gone, or the peer shut down sending. */
static bool
rx_ended(struct usock *s)
{
	return gone(s) || shm_state(s) == UVS_SS_DISCONNECTED ||
	       (shm_peer_shut(s) & UVS_SHUTDOWN_SEND);
}

static ssize_t
recv_locked(struct usock *s, struct msghdr *msg, int flags)
{
	bool dontwait = s->nonblock || (flags & MSG_DONTWAIT);
	int64_t deadline = deadline_from(&s->rcvtimeo);
	unsigned int niov = (unsigned int)msg->msg_iovlen;
	size_t cap = 0;
	uint32_t done = 0, msg_len, payload;
	bool armed = false, end_seen = false;
	int64_t n;
	int mflags, rc;

	for (size_t i = 0; i < msg->msg_iovlen; i++)
		cap += msg->msg_iov[i].iov_len;
	if (cap > UVS_MAX_RW_COUNT)
		cap = UVS_MAX_RW_COUNT;
	msg->msg_flags = 0;
	if (cap == 0)
		return 0; /* as Linux, for both types: nothing consumed */
	for (;;) {
		if ((local_shut(s) & UVS_SHUTDOWN_RCV))
			return done;
		/* a STREAM read continues into the caller's buffer after what it has */
		if (done > 0) {
			struct iovec rest[UVS_RECV_MAX_IOV];
			unsigned int nr = 0;
			size_t skip = done;

			for (unsigned int i = 0; i < niov && nr < UVS_RECV_MAX_IOV; i++) {
				const struct iovec *v = &msg->msg_iov[i];

				if (skip >= v->iov_len) {
					skip -= v->iov_len;
					continue;
				}
				rest[nr].iov_base = (char *)v->iov_base + skip;
				rest[nr++].iov_len = v->iov_len - skip;
				skip = 0;
			}
			n = uvs_sockbuf_app_read(&s->sb, rest, nr, (uint32_t)(cap - done), &mflags,
					&msg_len);
		} else {
			n = uvs_sockbuf_app_read(&s->sb, msg->msg_iov, niov, (uint32_t)cap, &mflags,
					&msg_len);
		}
		if (n == -EIO)
			return -EIO;
		if (n >= 0) {
			if (!(flags & MSG_PEEK)) {
				uint32_t left;

				payload = uvs_sockbuf_app_consume(&s->sb, (uint32_t)n, msg_len);
				__atomic_store_n(&s->shm->fwd_cnt, s->shm->fwd_cnt + payload,
						__ATOMIC_RELEASE);
				notify_daemon(s, UVS_DWAIT_CONSUMED);
				if (uvs_ring_used(&s->sb.rx, &left) == 0 && left == 0)
					settle(s);
			}
			if (s->type == UVS_TYPE_SEQPACKET) {
				msg->msg_flags = mflags;
				return (flags & MSG_TRUNC) ? (ssize_t)msg_len : (ssize_t)n;
			}
			done += (uint32_t)n;
			if (done == cap || !(flags & MSG_WAITALL) || (flags & MSG_PEEK))
				return done;
			continue;
		}
		/* nothing queued */
		if (rx_ended(s) && !end_seen) {
			/*
			 * The daemon queues the last data before it publishes the end (both
			 * store-release; the end is read with acquire), but the ring was read
			 * before the end: data and end that arrived in between would be taken for
			 * an end with nothing before it, and that data lost. Read the ring once
			 * more. (The one-hour soak found it: one echo in 45,667 ended half-way,
			 * its echo server having taken the end for the peer's last word.)
			 */
			end_seen = true;
			continue;
		}
		if (rx_ended(s)) {
			/* a pending error (the peer went away) rather than EOF, and it stays
			 * (Linux's recvmsg reads sk_err without clearing it) */
			int err = shm_state(s) == UVS_SS_DISCONNECTED && !gone(s)
						  ? __atomic_load_n(&s->shm->err, __ATOMIC_ACQUIRE)
						  : 0;

			return done > 0 || err >= 0 ? (ssize_t)done : err;
		}
		if (shm_state(s) != UVS_SS_CONNECTED)
			return done > 0 ? (ssize_t)done : -ENOTCONN;
		if (dontwait && (done > 0 || armed))
			return done > 0 ? (ssize_t)done : -EAGAIN;
		if (dontwait) {
			arm(s); /* then look once more: data may have come meanwhile */
			armed = true;
			continue;
		}
		/* Sleep without the receive lock, as Linux releases the socket lock: other
		 * threads and processes (FIONREAD, MSG_DONTWAIT, a second reader) go on. */
		pthread_mutex_unlock(&s->locks->rx);
		rc = wait_until(s, rx_ready, deadline, true);
		app_lock(&s->locks->rx);
		uvs_ring_resync(&s->sb.rx, false);
		if (rc < 0)
			return done > 0 ? (ssize_t)done : rc;
	}
}

static ssize_t
sock_recvmsg(struct usock *s, struct msghdr *msg, int flags)
{
	ssize_t rc;

	if (flags & MSG_OOB)
		return -EOPNOTSUPP;
	if (s->shm == NULL)
		return (local_shut(s) & UVS_SHUTDOWN_RCV) ? 0 : -ENOTCONN;
	app_lock(&s->locks->rx);
	uvs_ring_resync(&s->sb.rx, false); /* another process may have received since */
	rc = recv_locked(s, msg, flags);
	pthread_mutex_unlock(&s->locks->rx);
	return rc;
}

ssize_t
uvs_recvmsg(int fd, struct msghdr *msg, int flags)
{
	struct usock *s = sock_get(fd);
	ssize_t rc;

	if (s == NULL)
		return -ENOTSOCK;
	rc = sock_recvmsg(s, msg, flags);
	sock_put(s);
	return rc;
}

ssize_t
uvs_recv(int fd, void *buf, size_t len, int flags)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	return uvs_recvmsg(fd, &msg, flags);
}

static int
sock_shutdown(struct usock *s, int how)
{
	uint32_t bits;
	int rc;

	if (how < SHUT_RD || how > SHUT_RDWR)
		return -EINVAL;
	if (s->shm == NULL)
		return -ENOTCONN;
	bits = (uint32_t)how + 1; /* SHUT_RD -> RCV(1), SHUT_WR -> SEND(2), SHUT_RDWR -> 3 */
	rc = simple_call(s, UVS_CTL_SHUTDOWN, bits, 0, NULL);
	if (rc == 0) {
		/* Shared with the other processes that hold the socket. The anchor shows it to
		 * poll as a vsock socket would: SHUT_RD makes the fd readable with POLLRDHUP;
		 * SHUT_WR leaves it unwritable (the filler is never read back). Not shut for
		 * writing: that would make the daemon's end hang up as if the program had closed
		 * it (see ipc-abi.md), so POLLHUP is not shown for shutdowns. */
		__atomic_fetch_or(&s->locks->local_shut, bits, __ATOMIC_RELEASE);
		if (bits & UVS_SHUTDOWN_RCV)
			shutdown(s->fd, SHUT_RD);
		if (bits & UVS_SHUTDOWN_SEND)
			filler_send(s, UVS_NEED_NEVER);
	}
	return rc;
}

int
uvs_shutdown(int fd, int how)
{
	struct usock *s = sock_get(fd);
	int rc;

	if (s == NULL)
		return -ENOTSOCK;
	rc = sock_shutdown(s, how);
	sock_put(s);
	return rc;
}

int
uvs_close(int fd)
{
	struct usock *s = sock_get(fd);
	struct uvs_ctl_req req;
	struct uvs_ctl_resp resp;
	int fds[2];
	bool last, attached;

	if (s == NULL)
		return -ENOTSOCK;
	pthread_mutex_lock(&client.lock);
	if (fdt_get(fd) != s) {
		/* another thread closed it first */
		pthread_mutex_unlock(&client.lock);
		sock_put(s);
		return -ENOTSOCK;
	}
	fdt_set(fd, NULL);
	attached = s->attach_gen == client.conn_gen && client.ctl_fd >= 0;
	pthread_mutex_unlock(&client.lock);
	close(fd);
	sock_put(s); /* the table entry's */
	req = (struct uvs_ctl_req){ .op = UVS_CTL_CLOSE, .sock = s->id };
	/* only this call's reference left: no other fd and no call in progress */
	last = __atomic_load_n(&s->refs, __ATOMIC_ACQUIRE) == 1;
	sock_put(s); /* this call's: the last one closes the private anchor */
	/* The anchor's hang-up is what closes the socket in the daemon (whoever holds the
	 * last copy, in any process); this call only makes it synchronous, as close(2) is for
	 * Linux, so that the port is free when it returns. */
	if (last && attached)
		(void)ctl_call(&req, &resp, fds);
	return 0;
}

int
uvs_fd_dup(int oldfd, int newfd)
{
	struct usock *s = sock_get(oldfd), *prev;
	int rc;

	if (s == NULL)
		return -ENOTSOCK;
	pthread_mutex_lock(&client.lock);
	prev = fdt_get(newfd);
	__atomic_add_fetch(&s->refs, 1, __ATOMIC_ACQ_REL); /* newfd's entry */
	rc = fdt_set(newfd, s);
	pthread_mutex_unlock(&client.lock);
	if (rc < 0)
		sock_put(s);
	else if (prev != NULL)
		sock_put(prev); /* dup2() over another socket's fd closed that fd */
	sock_put(s);
	return rc;
}

void
uvs_fd_forget(int fd)
{
	struct usock *s;

	pthread_mutex_lock(&client.lock);
	s = fdt_get(fd);
	if (s != NULL)
		fdt_set(fd, NULL);
	pthread_mutex_unlock(&client.lock);
	if (s != NULL)
		sock_put(s);
}

/* Unread payload bytes: STREAM, what the ring holds; SEQPACKET, the messages' payloads
 * (record headers walked). Without the receive lock, which a blocked receiver may hold: a
 * private copy of the ring, taken from the shared indexes; a receiver consuming meanwhile
 * makes the answer stale, never wrong in size (every length is checked). */
static int
rx_bytes(struct usock *s, int *val)
{
	uint32_t used, off = 0, total = 0;
	struct uvs_ring rx = s->sb.rx;
	struct uvs_rec r;

	uvs_ring_resync(&rx, false);
	if (uvs_ring_used(&rx, &used) < 0)
		used = 0;
	if (s->type == UVS_TYPE_STREAM) {
		total = used;
	} else {
		while (off + UVS_REC_SIZE <= used) {
			uvs_ring_get(&rx, off, &r, sizeof(r));
			if (r.len > used - off - UVS_REC_SIZE)
				break; /* corrupt: the next read reports it */
			total += r.len;
			off += UVS_REC_SIZE + r.len;
		}
	}
	*val = total > INT32_MAX ? INT32_MAX : (int)total;
	return 0;
}

int
uvs_ioctl(int fd, unsigned long req, int *val)
{
	struct usock *s = sock_get(fd);
	int rc = 0;

	if (s == NULL)
		return -ENOTSOCK;
	switch (req) {
	case FIONREAD: /* SIOCINQ */
		if (s->listening)
			rc = -EINVAL;
		else if (s->shm == NULL)
			*val = 0;
		else
			rc = rx_bytes(s, val);
		break;
	case TIOCOUTQ: /* SIOCOUTQ: bytes not yet sent */
		if (s->listening) {
			rc = -EINVAL;
		} else if (s->shm == NULL) {
			*val = 0;
		} else {
			/* from the shared indexes: a sender may be between its copy and its
			 * publication (own is its business) */
			uint32_t used = __atomic_load_n(&s->shm->tx.prod, __ATOMIC_ACQUIRE) -
					__atomic_load_n(&s->shm->tx.cons, __ATOMIC_ACQUIRE);

			*val = used > s->sb.tx.size ? 0 : (int)used;
		}
		break;
	case FIONBIO:
		s->nonblock = *val != 0;
		break;
	default:
		rc = -ENOTTY;
		break;
	}
	sock_put(s);
	return rc;
}

int
uvs_fd_adopt(int fd)
{
	struct uvs_ctl_req req = { .op = UVS_CTL_ATTACH, .sock = 0 };
	struct uvs_ctl_resp resp;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fds[2] = { -1, -1 }, rc, fl;
	struct usock *s;

	if (fdt_raw(fd) != NULL)
		return -EEXIST;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -ENOTSOCK;
	pthread_mutex_lock(&client.lock);
	rc = ctl_connect_locked();
	if (rc == 0 && cred.pid != client.daemon_pid)
		rc = -ENOTSOCK; /* some other unix socket */
	if (rc == 0)
		rc = ctl_xfer_locked(&req, fd, &resp, fds);
	if (rc == 0)
		rc = resp.rc;
	pthread_mutex_unlock(&client.lock);
	if (fds[1] >= 0)
		close(fds[1]);
	if (rc < 0) {
		if (fds[0] >= 0)
			close(fds[0]);
		return rc == -EBADF ? -ENOTSOCK : rc;
	}
	s = usock_new(-1, (int)resp.a, resp.sock);
	if (s == NULL) {
		if (fds[0] >= 0)
			close(fds[0]);
		return -ENOMEM;
	}
	s->listening = resp.b != 0;
	s->listen_filler = s->listening; /* the one sent before exec is still queued */
	if (fds[0] >= 0) {
		rc = seg_map(s, fds[0], false);
		if (rc < 0) {
			sock_put(s);
			return rc;
		}
	}
	fl = fcntl(fd, F_GETFL);
	s->nonblock = fl >= 0 && (fl & O_NONBLOCK);
	pthread_mutex_lock(&client.lock);
	s->attach_gen = client.conn_gen;
	rc = private_dup_locked(fd);
	if (rc >= 0) {
		s->fd = rc;
		rc = fdt_set(fd, s);
	}
	pthread_mutex_unlock(&client.lock);
	if (rc < 0) {
		sock_put(s);
		return rc;
	}
	return 0;
}

bool
uvs_fd_reserved(int fd)
{
	return fdt_raw(fd) == UVS_FDT_RESERVED;
}

static void
fill_addr(struct sockaddr_vm *addr, uint32_t cid, uint32_t port)
{
	memset(addr, 0, sizeof(*addr));
	addr->svm_family = AF_VSOCK;
	addr->svm_cid = cid;
	addr->svm_port = port;
}

static int
sock_getsockname(struct usock *s, struct sockaddr_vm *addr)
{
	struct uvs_ctl_resp resp;
	int rc;

	rc = simple_call(s, UVS_CTL_GETNAME, 0, 0, &resp);
	if (rc == 0)
		fill_addr(addr, resp.a, resp.b);
	return rc;
}

int
uvs_getsockname(int fd, struct sockaddr_vm *addr)
{
	struct usock *s = sock_get(fd);
	int rc;

	if (s == NULL)
		return -ENOTSOCK;
	rc = sock_getsockname(s, addr);
	sock_put(s);
	return rc;
}

static int
sock_getpeername(struct usock *s, struct sockaddr_vm *addr)
{

	if (s->shm == NULL || shm_state(s) != UVS_SS_CONNECTED)
		return -ENOTCONN;
	fill_addr(addr, s->shm->peer_cid, s->shm->peer_port);
	return 0;
}

int
uvs_getpeername(int fd, struct sockaddr_vm *addr)
{
	struct usock *s = sock_get(fd);
	int rc;

	if (s == NULL)
		return -ENOTSOCK;
	rc = sock_getpeername(s, addr);
	sock_put(s);
	return rc;
}

static int
timeval_get(const struct timespec *ts, void *val, socklen_t *len)
{
	struct timeval tv = { .tv_sec = ts->tv_sec, .tv_usec = ts->tv_nsec / 1000 };

	if (*len < (socklen_t)sizeof(tv))
		return -EINVAL;
	memcpy(val, &tv, sizeof(tv));
	*len = sizeof(tv);
	return 0;
}

static int
timeval_set(struct timespec *ts, const void *val, socklen_t len)
{
	struct timeval tv;

	if (len < (socklen_t)sizeof(tv))
		return -EINVAL;
	memcpy(&tv, val, sizeof(tv));
	if (tv.tv_usec < 0 || tv.tv_usec >= 1000000)
		return -EDOM;
	if (tv.tv_sec < 0) {
		tv.tv_sec = 0;
		tv.tv_usec = 0;
	}
	ts->tv_sec = tv.tv_sec;
	ts->tv_nsec = tv.tv_usec * 1000;
	return 0;
}

static int
gen_opt_index(int name)
{
	for (int i = 0; i < UVS_GEN_OPTS; i++)
		if (gen_opt_names[i] == name)
			return i;
	return -ENOPROTOOPT;
}

static int
gen_opt_set(struct usock *s, int name, const void *val, socklen_t len)
{
	int i = gen_opt_index(name), v;

	if (name == SO_LINGER) {
		if (len < (socklen_t)sizeof(s->linger))
			return -EINVAL;
		memcpy(&s->linger, val, sizeof(s->linger));
		return 0;
	}
	if (i < 0)
		return -ENOPROTOOPT;
	if (len < (socklen_t)sizeof(int))
		return -EINVAL;
	memcpy(&v, val, sizeof(v));
	switch (name) {
	case SO_SNDBUF:
	case SO_RCVBUF: {
		int floor = name == SO_SNDBUF ? UVS_SOCK_MIN_SNDBUF : UVS_SOCK_MIN_RCVBUF;

		v = v > INT32_MAX / 2 ? INT32_MAX : v * 2; /* Linux doubles it */
		if (v < floor)
			v = floor;
		break;
	}
	case SO_RCVLOWAT:
		if (v < 0)
			v = INT32_MAX;
		if (v == 0)
			v = 1;
		break;
	default:
		if (name != SO_PRIORITY)
			v = v != 0;
		break;
	}
	s->gen_opts[i] = v;
	return 0;
}

static int
gen_opt_get(struct usock *s, int name, void *val, socklen_t *len)
{
	int i = gen_opt_index(name);

	if (name == SO_LINGER) {
		if (*len < (socklen_t)sizeof(s->linger))
			return -EINVAL;
		memcpy(val, &s->linger, sizeof(s->linger));
		*len = sizeof(s->linger);
		return 0;
	}
	if (i < 0)
		return -ENOPROTOOPT;
	if (*len < (socklen_t)sizeof(int))
		return -EINVAL;
	memcpy(val, &s->gen_opts[i], sizeof(int));
	*len = sizeof(int);
	return 0;
}

static int
sock_setsockopt(struct usock *s, int level, int name, const void *val, socklen_t len)
{
	uint64_t v;
	int rc;

	if (level == SOL_SOCKET) {
		switch (name) {
		case SO_RCVTIMEO:
			return timeval_set(&s->rcvtimeo, val, len);
		case SO_SNDTIMEO:
			return timeval_set(&s->sndtimeo, val, len);
		default:
			return gen_opt_set(s, name, val, len);
		}
	}
	if (level != AF_VSOCK)
		return -ENOPROTOOPT;
	switch (name) {
	case SO_VM_SOCKETS_BUFFER_SIZE:
	case SO_VM_SOCKETS_BUFFER_MIN_SIZE:
	case SO_VM_SOCKETS_BUFFER_MAX_SIZE:
		if (len < (socklen_t)sizeof(v))
			return -EINVAL;
		memcpy(&v, val, sizeof(v));
		break;
	case SO_VM_SOCKETS_CONNECT_TIMEOUT: {
		struct timespec ts;

		rc = timeval_set(&ts, val, len);
		if (rc < 0)
			return rc == -EDOM ? -ERANGE : rc;
		v = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
		break;
	}
	default:
		return -ENOPROTOOPT;
	}
	{
		struct uvs_ctl_req req = { .op = UVS_CTL_SETOPT,
			.sock = s->id,
			.a = (uint32_t)level,
			.b = (uint32_t)name,
			.val = v };
		struct uvs_ctl_resp resp;
		int fds[2];

		rc = ctl_call_sock(s, &req, &resp, fds);
		if (rc < 0)
			return rc;
		/* the daemon clamps as Linux does and tells the resulting values */
		s->buf_size = resp.val;
		s->buf_min = resp.a;
		s->buf_max = resp.b;
	}
	return 0;
}

int
uvs_setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	struct usock *s = sock_get(fd);
	int rc;

	if (s == NULL)
		return -ENOTSOCK;
	rc = sock_setsockopt(s, level, name, val, len);
	sock_put(s);
	return rc;
}

static int
sock_getsockopt(struct usock *s, int level, int name, void *val, socklen_t *len)
{
	int v;

	if (level == SOL_SOCKET) {
		switch (name) {
		case SO_RCVTIMEO:
			return timeval_get(&s->rcvtimeo, val, len);
		case SO_SNDTIMEO:
			return timeval_get(&s->sndtimeo, val, len);
		case SO_ERROR:
			v = 0;
			if (s->shm != NULL)
				v = -__atomic_exchange_n(&s->shm->err, 0, __ATOMIC_ACQ_REL);
			break;
		case SO_TYPE:
			v = s->type == UVS_TYPE_STREAM ? SOCK_STREAM : SOCK_SEQPACKET;
			break;
		case SO_DOMAIN:
			v = AF_VSOCK;
			break;
		case SO_PROTOCOL:
			v = 0;
			break;
		case SO_ACCEPTCONN:
			v = s->listening;
			break;
		default:
			return gen_opt_get(s, name, val, len);
		}
		if (*len < (socklen_t)sizeof(v))
			return -EINVAL;
		memcpy(val, &v, sizeof(v));
		*len = sizeof(v);
		return 0;
	}
	if (level != AF_VSOCK)
		return -ENOPROTOOPT;
	{
		struct uvs_ctl_req req = { .op = UVS_CTL_GETOPT,
			.sock = s->id,
			.a = (uint32_t)level,
			.b = (uint32_t)name };
		struct uvs_ctl_resp resp;
		int fds[2], rc;

		if (name == SO_VM_SOCKETS_CONNECT_TIMEOUT) {
			struct timespec ts;

			rc = ctl_call_sock(s, &req, &resp, fds);
			if (rc < 0)
				return rc;
			ts.tv_sec = (time_t)(resp.val / 1000000000ull);
			ts.tv_nsec = (long)(resp.val % 1000000000ull);
			return timeval_get(&ts, val, len);
		}
		if (name != SO_VM_SOCKETS_BUFFER_SIZE && name != SO_VM_SOCKETS_BUFFER_MIN_SIZE &&
				name != SO_VM_SOCKETS_BUFFER_MAX_SIZE)
			return -ENOPROTOOPT;
		if (*len < (socklen_t)sizeof(uint64_t))
			return -EINVAL;
		rc = ctl_call_sock(s, &req, &resp, fds);
		if (rc < 0)
			return rc;
		memcpy(val, &resp.val, sizeof(uint64_t));
		*len = sizeof(uint64_t);
	}
	return 0;
}

int
uvs_getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	struct usock *s = sock_get(fd);
	int rc;

	if (s == NULL)
		return -ENOTSOCK;
	rc = sock_getsockopt(s, level, name, val, len);
	sock_put(s);
	return rc;
}

static int
sock_set_nonblock(struct usock *s, bool on)
{
	int fl = fcntl(s->fd, F_GETFL);

	/* the open file is shared with the program's fd: F_GETFL tells the truth */
	if (fl >= 0)
		fcntl(s->fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
	s->nonblock = on;
	return 0;
}

int
uvs_set_nonblock(int fd, bool on)
{
	struct usock *s = sock_get(fd);
	int rc;

	if (s == NULL)
		return -ENOTSOCK;
	rc = sock_set_nonblock(s, on);
	sock_put(s);
	return rc;
}

bool
uvs_is_socket(int fd)
{
	return fdt_get(fd) != NULL;
}

static int
sock_poll_events(struct usock *s)
{
	int ev = 0;
	uint32_t used, space;

	for (int pass = 0; pass < 2; pass++) {
		if (gone(s)) {
			ev = POLLIN | POLLOUT | POLLHUP | POLLRDHUP;
		} else if (s->listening) {
			/* a pending doorbell is a queued connection (kept until accept) */
			struct pollfd pfd = { .fd = s->fd, .events = POLLIN };

			ev = poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN) ? POLLIN : 0;
			break;
		} else if (s->shm == NULL) {
			ev = POLLOUT;
		} else {
			uint32_t st = shm_state(s), ps = shm_peer_shut(s);

			ev = 0;
			if (uvs_ring_used(&s->sb.rx, &used) == 0 && used > 0)
				ev |= POLLIN;
			if ((ps & UVS_SHUTDOWN_SEND) || st == UVS_SS_DISCONNECTED ||
					(local_shut(s) & UVS_SHUTDOWN_RCV))
				ev |= POLLIN | POLLRDHUP;
			if (st == UVS_SS_CONNECTED && !(local_shut(s) & UVS_SHUTDOWN_SEND) &&
					!(ps & UVS_SHUTDOWN_RCV) &&
					uvs_ring_space(&s->sb.tx, &space) == 0 &&
					space > UVS_REC_SIZE)
				ev |= POLLOUT;
			if (st == UVS_SS_DISCONNECTED && (local_shut(s) & UVS_SHUTDOWN_SEND))
				ev |= POLLHUP;
			if (__atomic_load_n(&s->shm->err, __ATOMIC_ACQUIRE) != 0)
				ev |= POLLERR;
			if (st == UVS_SS_UNCONNECTED)
				ev |= POLLOUT;
		}
		if (ev != 0 || pass == 1)
			break;
		/* nothing ready: arm so that the next change rings the anchor */
		doorbell_drain(s);
		if (s->shm != NULL) {
			__atomic_store_n(&s->shm->app_wait, 1, __ATOMIC_RELAXED);
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
		}
	}
	return ev;
}

int
uvs_poll_events(int fd)
{
	struct usock *s = sock_get(fd);
	int rc;

	if (s == NULL)
		return -ENOTSOCK;
	rc = sock_poll_events(s);
	sock_put(s);
	return rc;
}
