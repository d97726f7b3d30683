/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * uvsock-checklist: the C checklist of shared/doc/preload-design.md section 7, run through
 * libuvsock-preload.so against a real Linux guest (tests/preload/test_checklist.sh boots it).
 *
 * A plain C program of ordinary socket calls; it has no uvsock code of its own: every
 * AF_VSOCK socket goes through the shim (it refuses to run without it, exit status 2, so it
 * never touches the kernel's AF_VSOCK). It prints one "ok: <check>" or
 * "FAIL: <check>: <details>" line per check and "N passed, M failed"; the exit status is the
 * number of failures.
 *
 * The guest runs `--guest-cmd`'s scenarios in order:
 *   concurrent port=5100 n=2   the guest connects; this program listens (accept/accept4 and
 *                              listener readiness) and serves echo with epoll EPOLLET
 *   concurrent port=5102 n=4   two threads blocked in accept on one listener
 *   listen port=7000 n=K       the guest's echo server (STREAM 7000, SEQPACKET 7001): the client
 *                              checks. Exactly K connections are made (unused ones at the end).
 *
 *   uvsock-checklist [--guest-cmd] [GUEST_CID]   (default CID 3)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/sockios.h>
#include <linux/vm_sockets.h>

#define HOST_PORT_A 5100u /* concurrent n=2: accept4 / accept */
#define HOST_PORT_B 5102u /* concurrent n=4: two threads in accept */
#define HOST_N_A 2u
#define HOST_N_B 4u
#define GUEST_PORT 7000u   /* guest echo: STREAM here, SEQPACKET on +1 */
#define GUEST_NOBODY 7999u /* nothing listens there in the guest */
#define GUEST_CONNS 14u	   /* connections made to the guest's echo server, in total */
#define GUEST_BUF 262144u  /* the guest's SO_VM_SOCKETS_BUFFER_SIZE (listen scenario) */
#define WATCHDOG_S 170	   /* the whole run; a stuck call ends it with a FAIL line */
#define FIRST_CONN_S 90	   /* guest boot + first scenario */
#define CONNECT_TMO_MS 10000

static unsigned int g_cid = 3;
static unsigned int g_guest_conns; /* successful connects to the guest */
static pthread_t g_main;
static int g_pass, g_fail;
static const char *volatile g_current = "start-up";
static volatile sig_atomic_t g_usr1, g_usr2, g_pipe;

/* ---------------------------------------------------------------------------------------- */
/* reporting */

struct ck {
	const char *name;
	int bad;
	char why[700];
};

static void
ck_start(struct ck *c, const char *name)
{
	c->name = name;
	c->bad = 0;
	c->why[0] = '\0';
	g_current = name;
}

static bool ck_(struct ck *c, bool cond, const char *fmt, ...)
		__attribute__((format(printf, 3, 4)));

/* Records a failed condition of a check (all of them, "; "-separated); returns cond. */
static bool
ck_(struct ck *c, bool cond, const char *fmt, ...)
{
	size_t used = strlen(c->why);
	va_list ap;

	if (cond)
		return cond;
	c->bad++;
	if (used + 3 >= sizeof(c->why))
		return false;
	if (used > 0) {
		memcpy(c->why + used, "; ", 3);
		used += 2;
	}
	va_start(ap, fmt);
	vsnprintf(c->why + used, sizeof(c->why) - used, fmt, ap);
	va_end(ap);
	return false;
}

#define CK(c, cond, ...) ck_((c), (cond), __VA_ARGS__)

static bool
ck_end(struct ck *c)
{
	if (c->bad) {
		printf("FAIL: %s: %s\n", c->name, c->why);
		g_fail++;
	} else {
		printf("ok: %s\n", c->name);
		g_pass++;
	}
	fflush(stdout);
	return !c->bad;
}

static const char *
en(int e)
{
	const char *s;

	if (e < 0)
		e = -e;
	if (e == 0)
		return "0";
	s = strerrorname_np(e);
	return s != NULL ? s : "E?";
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---------------------------------------------------------------------------------------- */
/* start-up */

/* The interposed socket() must be the shim's, not libc's. */
static bool
shim_loaded(char *why, size_t wlen)
{
	static const char *const syms[] = { "socket", "connect", "recv", "close", "dup2" };
	const char *lp = getenv("LD_PRELOAD");
	void *libc;
	size_t i;

	if (lp == NULL || strstr(lp, "libuvsock-preload") == NULL) {
		snprintf(why, wlen, "LD_PRELOAD does not name libuvsock-preload.so");
		return false;
	}
	libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	if (libc == NULL) {
		snprintf(why, wlen, "libc.so.6 not found: %s", dlerror());
		return false;
	}
	for (i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		void *ours = dlsym(RTLD_DEFAULT, syms[i]), *theirs = dlsym(libc, syms[i]);
		Dl_info di;

		if (ours == NULL || theirs == NULL || ours == theirs) {
			snprintf(why, wlen, "%s() is libc's, not the shim's", syms[i]);
			return false;
		}
		if (dladdr(ours, &di) == 0 || di.dli_fname == NULL ||
				strstr(di.dli_fname, "libuvsock-preload") == NULL) {
			snprintf(why, wlen, "%s() comes from %s, not libuvsock-preload.so", syms[i],
					di.dli_fname != NULL ? di.dli_fname : "?");
			return false;
		}
	}
	return true;
}

static void
on_usr1(int sig)
{
	(void)sig;
	g_usr1++;
}

static void
on_usr2(int sig)
{
	(void)sig;
	g_usr2++;
}

static void
on_pipe(int sig)
{
	(void)sig;
	g_pipe++;
}

static void
handlers(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_usr1; /* no SA_RESTART: interrupted calls fail with EINTR */
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_usr2;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR2, &sa, NULL);
	sa.sa_handler = on_pipe;
	sigaction(SIGPIPE, &sa, NULL);
}

static void *
watchdog(void *arg)
{
	(void)arg;
	sleep(WATCHDOG_S);
	printf("FAIL: watchdog: still running after %d s, stuck in '%s'\n", WATCHDOG_S, g_current);
	printf("%d passed, %d failed\n", g_pass, g_fail + 1);
	fflush(stdout);
	_exit(100);
}

/* ---------------------------------------------------------------------------------------- */
/* socket helpers */

static struct sockaddr_vm
vaddr(unsigned int cid, unsigned int port)
{
	struct sockaddr_vm a;

	memset(&a, 0, sizeof(a));
	a.svm_family = AF_VSOCK;
	a.svm_cid = cid;
	a.svm_port = port;
	return a;
}

/* socket(AF_VSOCK) with a 10 s connect timeout; -errno on failure. */
static int
vsock(int type)
{
	struct timeval tv = { .tv_sec = CONNECT_TMO_MS / 1000 };
	int fd = socket(AF_VSOCK, type, 0), e;

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv, sizeof(tv)) < 0) {
		e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* Blocking connect to the guest; counts the connection. */
static int
gconnect(int type, unsigned int port, int *fdp)
{
	struct sockaddr_vm a = vaddr(g_cid, port);
	int fd = vsock(type | SOCK_CLOEXEC), e;

	if (fd < 0)
		return fd;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		e = errno;
		close(fd);
		return -e;
	}
	g_guest_conns++;
	*fdp = fd;
	return 0;
}

/* Connect, retrying while nothing listens yet (ECONNRESET), until ms have passed. */
static int
gconnect_retry(int type, unsigned int port, int ms, int *fdp)
{
	int64_t end = now_ms() + ms;
	int rc;

	for (;;) {
		rc = gconnect(type, port, fdp);
		if (rc != -ECONNRESET || now_ms() >= end)
			return rc;
		sleep_ms(250);
	}
}

static int
getopt_int(int fd, int level, int name, int *v)
{
	socklen_t len = sizeof(*v);

	*v = -12345;
	if (getsockopt(fd, level, name, v, &len) < 0)
		return -errno;
	return len == sizeof(*v) ? 0 : -EMSGSIZE;
}

static int
fl_of(int fd)
{
	return fcntl(fd, F_GETFL);
}

static int
fd_of(int fd)
{
	return fcntl(fd, F_GETFD);
}

static int
set_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	if (fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

static int
set_tmo(int fd, int name, int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	return setsockopt(fd, SOL_SOCKET, name, &tv, sizeof(tv)) < 0 ? -errno : 0;
}

/* Poll one fd; returns revents (0 on timeout) or -errno. */
static int
poll1(int fd, short events, int ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int64_t end = now_ms() + ms;
	int r;

	for (;;) {
		int64_t l = end - now_ms();

		r = poll(&p, 1, l < 0 ? 0 : (int)l);
		if (r >= 0)
			return r == 0 ? 0 : p.revents;
		if (errno != EINTR)
			return -errno;
	}
}

/* Wait (poll) until any of events is reported, within ms: revents, 0 on timeout. */
static int
wait_ev(int fd, short events, int ms)
{
	return poll1(fd, events, ms);
}

static void
fill(uint8_t *b, size_t len, uint64_t off, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++) {
		uint64_t x = off + i;

		b[i] = (uint8_t)(x * 131u + seed + (x >> 9) + (x >> 17));
	}
}

/* Offset of the first byte that differs from fill(), or -1. */
static int64_t
bad_at(const uint8_t *b, size_t len, uint64_t off, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++) {
		uint64_t x = off + i;

		if (b[i] != (uint8_t)(x * 131u + seed + (x >> 9) + (x >> 17)))
			return (int64_t)x;
	}
	return -1;
}

/* Send everything (poll for POLLOUT on EAGAIN) within ms; 0 or -errno. */
static int
send_all(int fd, const void *buf, size_t len, int ms)
{
	const uint8_t *p = buf;
	int64_t end = now_ms() + ms;
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(fd, p + off, len - off, MSG_NOSIGNAL);

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			return -errno;
		if (now_ms() >= end)
			return -ETIMEDOUT;
		poll1(fd, POLLOUT, 100);
	}
	return 0;
}

/* Receive exactly len bytes (poll + MSG_DONTWAIT) within ms: 0, -ENODATA at EOF, -errno. */
static int
recv_exact(int fd, void *buf, size_t len, int ms, size_t *got)
{
	uint8_t *p = buf;
	int64_t end = now_ms() + ms;
	size_t off = 0;
	int rc = 0;

	while (off < len) {
		ssize_t n;
		int r;

		if (now_ms() >= end) {
			rc = -ETIMEDOUT;
			break;
		}
		r = poll1(fd, POLLIN, (int)(end - now_ms()));
		if (r < 0) {
			rc = r;
			break;
		}
		if (r == 0)
			continue;
		n = recv(fd, p + off, len - off, MSG_DONTWAIT);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n == 0) {
			rc = -ENODATA;
			break;
		}
		if (errno != EAGAIN && errno != EINTR) {
			rc = -errno;
			break;
		}
	}
	if (got != NULL)
		*got = off;
	return rc;
}

/* Send len bytes and read the same back (STREAM echo); 0 or -errno (-EILSEQ: differs). */
static int
echo_rt(int fd, const void *msg, size_t len)
{
	uint8_t back[4096];
	int rc;

	if (len > sizeof(back))
		return -EINVAL;
	rc = send_all(fd, msg, len, 10000);
	if (rc == 0)
		rc = recv_exact(fd, back, len, 10000, NULL);
	if (rc == 0 && memcmp(back, msg, len) != 0)
		rc = -EILSEQ;
	return rc;
}

/* One SEQPACKET message within ms: length, or -errno; *flags gets msg_flags. */
static ssize_t
recv_msg(int fd, void *buf, size_t cap, int rflags, int *flags, int ms)
{
	int64_t end = now_ms() + ms;

	for (;;) {
		struct iovec iov = { .iov_base = buf, .iov_len = cap };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n;
		int r;

		r = poll1(fd, POLLIN, (int)(end - now_ms() > 0 ? end - now_ms() : 0));
		if (r < 0)
			return r;
		n = recvmsg(fd, &mh, rflags | MSG_DONTWAIT);
		if (n >= 0) {
			*flags = mh.msg_flags;
			return n;
		}
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		if (now_ms() >= end)
			return -ETIMEDOUT;
	}
}

static const char *
addr_str(const struct sockaddr_vm *a, char *buf, size_t len)
{
	snprintf(buf, len, "%d:%u", (int)a->svm_cid, a->svm_port);
	return buf;
}

/* ---------------------------------------------------------------------------------------- */
/* checks on sockets that need no guest */

static void
t_local_opts(int type, const char *tname)
{
	char name[160];
	struct ck c;
	int fd, v, rc;
	uint64_t u;
	socklen_t len;
	struct sockaddr_vm a;

	snprintf(name, sizeof(name),
			"%s: SO_TYPE/SO_DOMAIN/SO_PROTOCOL/SO_ACCEPTCONN/SO_ERROR, unknown options "
			"ENOPROTOOPT",
			tname);
	ck_start(&c, name);
	fd = vsock(type);
	if (!CK(&c, fd >= 0, "socket: %s", en(fd)))
		goto out1;
	rc = getopt_int(fd, SOL_SOCKET, SO_TYPE, &v);
	CK(&c, rc == 0 && v == type, "SO_TYPE: rc %s value %d, want %d", en(rc), v, type);
	rc = getopt_int(fd, SOL_SOCKET, SO_DOMAIN, &v);
	CK(&c, rc == 0 && v == AF_VSOCK, "SO_DOMAIN: rc %s value %d, want 40", en(rc), v);
	rc = getopt_int(fd, SOL_SOCKET, SO_PROTOCOL, &v);
	CK(&c, rc == 0 && v == 0, "SO_PROTOCOL: rc %s value %d, want 0", en(rc), v);
	rc = getopt_int(fd, SOL_SOCKET, SO_ACCEPTCONN, &v);
	CK(&c, rc == 0 && v == 0, "SO_ACCEPTCONN: rc %s value %d, want 0", en(rc), v);
	rc = getopt_int(fd, SOL_SOCKET, SO_ERROR, &v);
	CK(&c, rc == 0 && v == 0, "SO_ERROR: rc %s value %d, want 0", en(rc), v);
	rc = getopt_int(fd, AF_VSOCK, 99, &v);
	CK(&c, rc == -ENOPROTOOPT, "getsockopt(AF_VSOCK, 99): %s, want ENOPROTOOPT", en(rc));
	v = 1;
	rc = setsockopt(fd, AF_VSOCK, 99, &v, sizeof(v)) < 0 ? -errno : 0;
	CK(&c, rc == -ENOPROTOOPT, "setsockopt(AF_VSOCK, 99): %s, want ENOPROTOOPT", en(rc));
	rc = getopt_int(fd, SOL_SOCKET, 9999, &v);
	CK(&c, rc == -ENOPROTOOPT, "getsockopt(SOL_SOCKET, 9999): %s, want ENOPROTOOPT", en(rc));
	close(fd);
out1:
	ck_end(&c);

	snprintf(name, sizeof(name), "%s: SO_VM_SOCKETS_BUFFER_SIZE round trip (default 262144)",
			tname);
	ck_start(&c, name);
	fd = vsock(type);
	if (!CK(&c, fd >= 0, "socket: %s", en(fd)))
		goto out2;
	u = 0;
	len = sizeof(u);
	rc = getsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &u, &len) < 0 ? -errno : 0;
	CK(&c, rc == 0 && u == 262144 && len == 8, "default: rc %s value %" PRIu64 " len %u",
			en(rc), u, (unsigned int)len);
	u = 65536;
	rc = setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &u, sizeof(u)) < 0 ? -errno : 0;
	CK(&c, rc == 0, "set 65536: %s", en(rc));
	u = 0;
	len = sizeof(u);
	rc = getsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &u, &len) < 0 ? -errno : 0;
	CK(&c, rc == 0 && u == 65536, "after set 65536: rc %s value %" PRIu64, en(rc), u);
	u = 524288;
	rc = setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_MAX_SIZE, &u, sizeof(u)) < 0 ? -errno
											: 0;
	if (rc == 0)
		rc = setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &u, sizeof(u)) < 0 ? -errno
											    : 0;
	u = 0;
	len = sizeof(u);
	if (rc == 0)
		rc = getsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &u, &len) < 0 ? -errno : 0;
	CK(&c, rc == 0 && u == 524288, "MAX then SIZE 524288: rc %s value %" PRIu64, en(rc), u);
	v = 4096;
	rc = setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &v, sizeof(v)) < 0 ? -errno : 0;
	CK(&c, rc == -EINVAL, "set with optlen 4: %s, want EINVAL", en(rc));
	close(fd);
out2:
	ck_end(&c);

	snprintf(name, sizeof(name),
			"%s: getsockname unbound ANY:ANY, bound to PORT_ANY gets a port > 1023; "
			"getpeername ENOTCONN",
			tname);
	ck_start(&c, name);
	fd = vsock(type);
	if (!CK(&c, fd >= 0, "socket: %s", en(fd)))
		goto out3;
	len = sizeof(a);
	memset(&a, 0, sizeof(a));
	rc = getsockname(fd, (struct sockaddr *)&a, &len) < 0 ? -errno : 0;
	CK(&c,
			rc == 0 && a.svm_family == AF_VSOCK && a.svm_cid == VMADDR_CID_ANY &&
					a.svm_port == VMADDR_PORT_ANY && len == sizeof(a),
			"unbound: rc %s family %u %d:%d len %u", en(rc), a.svm_family,
			(int)a.svm_cid, (int)a.svm_port, (unsigned int)len);
	a = vaddr(VMADDR_CID_ANY, VMADDR_PORT_ANY);
	rc = bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ? -errno : 0;
	CK(&c, rc == 0, "bind(ANY:ANY): %s", en(rc));
	len = sizeof(a);
	memset(&a, 0, sizeof(a));
	rc = getsockname(fd, (struct sockaddr *)&a, &len) < 0 ? -errno : 0;
	CK(&c,
			rc == 0 && a.svm_cid == VMADDR_CID_ANY && a.svm_port > 1023 &&
					a.svm_port != VMADDR_PORT_ANY,
			"bound: rc %s %d:%d", en(rc), (int)a.svm_cid, (int)a.svm_port);
	len = sizeof(a);
	rc = getpeername(fd, (struct sockaddr *)&a, &len) < 0 ? -errno : 0;
	CK(&c, rc == -ENOTCONN, "getpeername: %s, want ENOTCONN", en(rc));
	close(fd);
out3:
	ck_end(&c);
}

/* Lowest-fd rule: after close(N), socket() must return N. */
static void
t_lowest_fd(void)
{
	struct ck c;
	int a, b, s = -1, s2 = -1;

	ck_start(&c, "lowest-fd rule: socket(AF_VSOCK) returns the fd number just closed");
	a = open("/dev/null", O_RDONLY | O_CLOEXEC);
	b = a >= 0 ? fcntl(a, F_DUPFD_CLOEXEC, 0) : -1;
	if (!CK(&c, a >= 0 && b > a, "open/dup of /dev/null: %d %d", a, b))
		goto out;
	close(a);
	s = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CK(&c, s == a, "socket() returned %d (%s), want %d (the lowest free number)", s,
			s < 0 ? en(errno) : "-", a);
	/* a gap below an open fd, twice in a row */
	close(b);
	if (s == a) {
		s2 = socket(AF_VSOCK, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		CK(&c, s2 == b, "second socket() returned %d (%s), want %d", s2,
				s2 < 0 ? en(errno) : "-", b);
	}
out:
	if (s >= 0)
		close(s);
	if (s2 >= 0)
		close(s2);
	ck_end(&c);
}

/* ---------------------------------------------------------------------------------------- */
/* epoll edge-triggered echo server (with a pipe in the same set) */

#define SRV_MAX 16
#define SRV_BUF 65536

struct srv_conn {
	int fd;
	uint8_t *buf;
	size_t olen, ooff;
	uint64_t bytes;
	bool eof;
	bool closed;
};

struct srv {
	int epfd;
	int pfd[2]; /* ints: an fd to serve, or -1 to stop */
	pthread_t t;
	pthread_mutex_t lock;
	unsigned int nconn, nclosed, nerr;
	uint64_t bytes, events;
	char err[300];
	struct srv_conn c[SRV_MAX];
};

static void
srv_close(struct srv *s, struct srv_conn *c, int err)
{
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->closed = true;
	free(c->buf);
	c->buf = NULL;
	pthread_mutex_lock(&s->lock);
	s->nclosed++;
	s->bytes += c->bytes;
	if (err != 0) {
		s->nerr++;
		if (s->err[0] == '\0')
			snprintf(s->err, sizeof(s->err), "conn fd %d: %s after %" PRIu64 " bytes",
					c->fd, en(err), c->bytes);
	}
	pthread_mutex_unlock(&s->lock);
}

/* Edge-triggered: run until recv (or send) says EAGAIN. */
static void
srv_serve(struct srv *s, struct srv_conn *c)
{
	while (!c->closed) {
		ssize_t n;

		while (c->ooff < c->olen) {
			n = send(c->fd, c->buf + c->ooff, c->olen - c->ooff, MSG_NOSIGNAL);
			if (n > 0) {
				c->ooff += (size_t)n;
				continue;
			}
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN)
				return; /* EPOLLOUT edge will come */
			srv_close(s, c, n < 0 ? errno : EIO);
			return;
		}
		if (c->eof) {
			srv_close(s, c, 0);
			return;
		}
		c->olen = c->ooff = 0;
		n = recv(c->fd, c->buf, SRV_BUF, 0);
		if (n > 0) {
			c->olen = (size_t)n;
			c->bytes += (uint64_t)n;
		} else if (n == 0) {
			c->eof = true;
		} else if (errno == EAGAIN) {
			return; /* drained: the next EPOLLIN edge brings more */
		} else if (errno != EINTR) {
			srv_close(s, c, errno);
			return;
		}
	}
}

static void *
srv_thread(void *arg)
{
	struct srv *s = arg;
	bool stop = false;

	while (!stop) {
		struct epoll_event ev[8];
		int n = epoll_wait(s->epfd, ev, 8, 1000), i;

		for (i = 0; i < n; i++) {
			uint32_t k = ev[i].data.u32;

			__atomic_add_fetch(&s->events, 1, __ATOMIC_RELAXED);
			if (k == SRV_MAX) {
				int v;

				/* pipe, edge-triggered: drain it */
				while (read(s->pfd[0], &v, sizeof(v)) == sizeof(v)) {
					struct epoll_event e = { .events = EPOLLIN | EPOLLOUT |
									   EPOLLRDHUP | EPOLLET };
					struct srv_conn *c;

					if (v < 0) {
						stop = true;
						continue;
					}
					pthread_mutex_lock(&s->lock);
					if (s->nconn == SRV_MAX) {
						pthread_mutex_unlock(&s->lock);
						close(v);
						continue;
					}
					c = &s->c[s->nconn];
					memset(c, 0, sizeof(*c));
					c->fd = v;
					c->buf = malloc(SRV_BUF);
					e.data.u32 = s->nconn++;
					pthread_mutex_unlock(&s->lock);
					if (c->buf == NULL || epoll_ctl(s->epfd, EPOLL_CTL_ADD, v,
									      &e) < 0) {
						srv_close(s, c, c->buf == NULL ? ENOMEM : errno);
						continue;
					}
					/* an edge may have passed before ADD: serve once now */
					srv_serve(s, c);
				}
				continue;
			}
			if (k < SRV_MAX && !s->c[k].closed)
				srv_serve(s, &s->c[k]);
		}
	}
	return NULL;
}

static int
srv_start(struct srv *s)
{
	struct epoll_event e = { .events = EPOLLIN | EPOLLET, .data.u32 = SRV_MAX };

	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0 || pipe2(s->pfd, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->pfd[0], &e) < 0)
		return -errno;
	return -pthread_create(&s->t, NULL, srv_thread, s);
}

static void
srv_give(struct srv *s, int fd)
{
	if (write(s->pfd[1], &fd, sizeof(fd)) != sizeof(fd))
		close(fd);
}

/* ---------------------------------------------------------------------------------------- */
/* two threads blocked in accept on one listener */

struct acc_shared {
	int lfd;
	struct srv *srv;
	pthread_mutex_t lock;
	unsigned int n;
	unsigned int ports[16];
	int cids[16];
	int stop;
};

struct acc_thr {
	struct acc_shared *sh;
	pthread_t t;
	int exited;
	int n;
	int last_err;
	int other_err;
};

static void *
acc_thread(void *arg)
{
	struct acc_thr *a = arg;
	struct acc_shared *sh = a->sh;

	while (!__atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE)) {
		struct sockaddr_vm pa;
		socklen_t len = sizeof(pa);
		int fd = accept(sh->lfd, (struct sockaddr *)&pa, &len);

		if (fd < 0) {
			a->last_err = errno;
			if (errno != EINTR)
				a->other_err = errno;
			if (errno != EINTR && errno != EAGAIN)
				break;
			continue;
		}
		a->last_err = 0;
		a->n++;
		pthread_mutex_lock(&sh->lock);
		if (sh->n < 16) {
			sh->ports[sh->n] = pa.svm_port;
			sh->cids[sh->n] = (int)pa.svm_cid;
		}
		sh->n++;
		pthread_mutex_unlock(&sh->lock);
		if (set_nonblock(fd, true) < 0) {
			close(fd);
			continue;
		}
		srv_give(sh->srv, fd);
	}
	__atomic_store_n(&a->exited, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* server side: the guest's two concurrent scenarios */

static uint64_t
concurrent_bytes(unsigned int n)
{
	uint64_t t = 0;
	unsigned int i;

	for (i = 0; i < n; i++)
		t += 1 + (i * 7919u) % 3000u;
	return t;
}

static int
mk_listener(unsigned int port, int flags)
{
	struct sockaddr_vm a = vaddr(VMADDR_CID_ANY, port);
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | flags, 0), e;

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 16) < 0) {
		e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

static void
check_accepted(struct ck *c, int fd, const struct sockaddr_vm *pa, socklen_t plen)
{
	struct sockaddr_vm a;
	socklen_t len = sizeof(a);
	char b1[40], b2[40];
	int v, rc;

	CK(c,
			plen == sizeof(*pa) && pa->svm_family == AF_VSOCK && pa->svm_cid == g_cid &&
					pa->svm_port > 0 && pa->svm_port != VMADDR_PORT_ANY,
			"accept's address %s family %u len %u, want %u:<port>",
			addr_str(pa, b1, sizeof(b1)), pa->svm_family, (unsigned int)plen, g_cid);
	memset(&a, 0, sizeof(a));
	rc = getpeername(fd, (struct sockaddr *)&a, &len) < 0 ? -errno : 0;
	CK(c, rc == 0 && a.svm_cid == pa->svm_cid && a.svm_port == pa->svm_port,
			"getpeername: %s %s, accept said %s", en(rc), addr_str(&a, b1, sizeof(b1)),
			addr_str(pa, b2, sizeof(b2)));
	len = sizeof(a);
	memset(&a, 0, sizeof(a));
	rc = getsockname(fd, (struct sockaddr *)&a, &len) < 0 ? -errno : 0;
	CK(c, rc == 0 && a.svm_cid == VMADDR_CID_HOST && a.svm_port == HOST_PORT_A,
			"getsockname: %s %s, want 2:%u", en(rc), addr_str(&a, b1, sizeof(b1)),
			HOST_PORT_A);
	rc = getopt_int(fd, SOL_SOCKET, SO_ACCEPTCONN, &v);
	CK(c, rc == 0 && v == 0, "accepted SO_ACCEPTCONN: %s %d, want 0", en(rc), v);
	rc = getopt_int(fd, SOL_SOCKET, SO_TYPE, &v);
	CK(c, rc == 0 && v == SOCK_STREAM, "accepted SO_TYPE: %s %d", en(rc), v);
}

static void
t_server(struct srv *srv, struct acc_shared *sh, struct acc_thr *thr, int la)
{
	struct sockaddr_vm pa;
	socklen_t plen;
	struct ck c;
	int fd1 = -1, fd2 = -1, r, v, rc, i;
	int64_t t0;
	char b1[40];

	ck_start(&c, "listener: SO_ACCEPTCONN 1, getsockname ANY:5100");
	rc = getopt_int(la, SOL_SOCKET, SO_ACCEPTCONN, &v);
	CK(&c, rc == 0 && v == 1, "SO_ACCEPTCONN: %s %d, want 1", en(rc), v);
	plen = sizeof(pa);
	memset(&pa, 0, sizeof(pa));
	rc = getsockname(la, (struct sockaddr *)&pa, &plen) < 0 ? -errno : 0;
	CK(&c, rc == 0 && pa.svm_cid == VMADDR_CID_ANY && pa.svm_port == HOST_PORT_A,
			"getsockname: %s %s", en(rc), addr_str(&pa, b1, sizeof(b1)));
	ck_end(&c);

	ck_start(&c, "listener: nonblocking accept gives EAGAIN before any connection");
	plen = sizeof(pa);
	fd1 = accept4(la, (struct sockaddr *)&pa, &plen, SOCK_CLOEXEC);
	rc = fd1 < 0 ? -errno : fd1;
	CK(&c, rc == -EAGAIN, "accept4: %s, want EAGAIN (is the guest already connecting?)",
			rc >= 0 ? "an fd" : en(rc));
	if (fd1 >= 0)
		srv_give(srv, fd1);
	fd1 = -1;
	ck_end(&c);

	ck_start(&c, "listener: neither POLLIN nor POLLOUT while nothing is pending");
	r = poll1(la, POLLIN | POLLOUT, 300);
	CK(&c, r == 0, "poll(POLLIN|POLLOUT, 300 ms) revents 0x%x", r);
	ck_end(&c);

	ck_start(&c, "listener: POLLIN (and no POLLOUT) once the guest connects");
	t0 = now_ms();
	g_current = "waiting for the guest's first connection (boot)";
	do
		r = poll1(la, POLLIN | POLLOUT, 1000);
	while (r == 0 && now_ms() - t0 < FIRST_CONN_S * 1000);
	g_current = c.name;
	CK(&c, r == POLLIN, "revents 0x%x after %" PRId64 " ms (want POLLIN only)", r,
			now_ms() - t0);
	ck_end(&c);
	if (r <= 0) {
		printf("# no connection from the guest: the server checks are skipped\n");
		return;
	}
	printf("# first guest connection after %" PRId64 " ms\n", now_ms() - t0);

	ck_start(&c, "accept4(SOCK_NONBLOCK|SOCK_CLOEXEC): O_NONBLOCK and FD_CLOEXEC at once; "
		     "addresses");
	plen = sizeof(pa);
	memset(&pa, 0, sizeof(pa));
	fd1 = accept4(la, (struct sockaddr *)&pa, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (CK(&c, fd1 >= 0, "accept4 after POLLIN: %s", en(errno))) {
		int fl = fl_of(fd1), fdf = fd_of(fd1);

		CK(&c, fl >= 0 && (fl & O_NONBLOCK), "F_GETFL 0x%x: no O_NONBLOCK", fl);
		CK(&c, fdf >= 0 && (fdf & FD_CLOEXEC), "F_GETFD 0x%x: no FD_CLOEXEC", fdf);
		check_accepted(&c, fd1, &pa, plen);
	}
	ck_end(&c);

	ck_start(&c, "plain accept(): neither O_NONBLOCK nor FD_CLOEXEC");
	r = poll1(la, POLLIN, 20000);
	plen = sizeof(pa);
	memset(&pa, 0, sizeof(pa));
	fd2 = accept(la, (struct sockaddr *)&pa, &plen);
	if (CK(&c, fd2 >= 0, "accept (poll said 0x%x): %s", r, en(errno))) {
		int fl = fl_of(fd2), fdf = fd_of(fd2);

		CK(&c, fl >= 0 && !(fl & O_NONBLOCK), "F_GETFL 0x%x: O_NONBLOCK set", fl);
		CK(&c, fdf == 0, "F_GETFD 0x%x: FD_CLOEXEC set", fdf);
		check_accepted(&c, fd2, &pa, plen);
		rc = set_nonblock(fd2, true);
		CK(&c, rc == 0 && (fl_of(fd2) & O_NONBLOCK), "F_SETFL O_NONBLOCK: %s", en(rc));
	}
	ck_end(&c);

	ck_start(&c, "listener: POLLIN clears once the queue is empty; accept EAGAIN again");
	r = poll1(la, POLLIN | POLLOUT, 200);
	CK(&c, r == 0, "revents 0x%x after both connections were accepted", r);
	plen = sizeof(pa);
	v = accept4(la, (struct sockaddr *)&pa, &plen, 0);
	rc = v < 0 ? -errno : 0;
	CK(&c, rc == -EAGAIN, "third accept4: %s, want EAGAIN", v >= 0 ? "an fd" : en(rc));
	if (v >= 0)
		close(v);
	ck_end(&c);
	if (fd1 >= 0)
		srv_give(srv, fd1);
	if (fd2 >= 0)
		srv_give(srv, fd2);

	ck_start(&c, "threads: two threads blocked in accept on one listener, each of 4 "
		     "connections accepted exactly once");
	t0 = now_ms();
	while (__atomic_load_n(&sh->n, __ATOMIC_ACQUIRE) < HOST_N_B && now_ms() - t0 < 60000)
		sleep_ms(50);
	sleep_ms(300); /* a double accept would show up now */
	__atomic_store_n(&sh->stop, 1, __ATOMIC_RELEASE);
	t0 = now_ms();
	while (now_ms() - t0 < 5000 &&
			!(__atomic_load_n(&thr[0].exited, __ATOMIC_ACQUIRE) &&
					__atomic_load_n(&thr[1].exited, __ATOMIC_ACQUIRE))) {
		for (i = 0; i < 2; i++)
			if (!__atomic_load_n(&thr[i].exited, __ATOMIC_ACQUIRE))
				pthread_kill(thr[i].t, SIGUSR1);
		sleep_ms(50);
	}
	pthread_mutex_lock(&sh->lock);
	CK(&c, sh->n == HOST_N_B, "%u connections accepted (threads: %d + %d), want %u", sh->n,
			thr[0].n, thr[1].n, HOST_N_B);
	for (i = 0; i < (int)sh->n && i < 16; i++) {
		int j;

		CK(&c, sh->cids[i] == (int)g_cid, "accepted peer CID %d", sh->cids[i]);
		for (j = 0; j < i; j++)
			CK(&c, sh->ports[i] != sh->ports[j], "peer port %u accepted twice",
					sh->ports[i]);
	}
	pthread_mutex_unlock(&sh->lock);
	for (i = 0; i < 2; i++) {
		CK(&c, __atomic_load_n(&thr[i].exited, __ATOMIC_ACQUIRE),
				"accept thread %d did not return after SIGUSR1 (no SA_RESTART)", i);
		CK(&c, thr[i].other_err == 0, "accept thread %d: accept failed %s", i,
				en(thr[i].other_err));
	}
	if (set_nonblock(sh->lfd, true) == 0) {
		plen = sizeof(pa);
		v = accept(sh->lfd, (struct sockaddr *)&pa, &plen);
		rc = v < 0 ? -errno : 0;
		CK(&c, rc == -EAGAIN, "accept after all 4: %s, want EAGAIN",
				v >= 0 ? "an extra connection" : en(rc));
		if (v >= 0)
			close(v);
	}
	ck_end(&c);
	for (i = 0; i < 2; i++)
		if (__atomic_load_n(&thr[i].exited, __ATOMIC_ACQUIRE))
			pthread_join(thr[i].t, NULL);
		else
			pthread_detach(thr[i].t);

	ck_start(&c, "epoll EPOLLET echo server (vsock fds + a pipe in one set): every "
		     "connection echoed exactly, EOF seen on each");
	t0 = now_ms();
	for (;;) {
		unsigned int closed;

		pthread_mutex_lock(&srv->lock);
		closed = srv->nclosed;
		pthread_mutex_unlock(&srv->lock);
		if (closed >= HOST_N_A + HOST_N_B || now_ms() - t0 > 30000)
			break;
		sleep_ms(50);
	}
	pthread_mutex_lock(&srv->lock);
	CK(&c, srv->nconn == HOST_N_A + HOST_N_B && srv->nclosed == srv->nconn,
			"%u connections served, %u ended (want %u): an EPOLLET edge lost?",
			srv->nconn, srv->nclosed, HOST_N_A + HOST_N_B);
	CK(&c, srv->nerr == 0, "%u errors, first: %s", srv->nerr, srv->err);
	CK(&c, srv->bytes == concurrent_bytes(HOST_N_A) + concurrent_bytes(HOST_N_B),
			"%" PRIu64 " bytes echoed, want %" PRIu64, srv->bytes,
			concurrent_bytes(HOST_N_A) + concurrent_bytes(HOST_N_B));
	pthread_mutex_unlock(&srv->lock);
	ck_end(&c);
}

/* ---------------------------------------------------------------------------------------- */
/* client side: SEQPACKET */

static void
t_seqpacket(int q)
{
	static const size_t sizes[] = { 1, 2, 100, 4095, 4096, 4097, 65535, 65536 };
	size_t cap = 300 * 1024, i;
	uint8_t *tx = malloc(cap), *rx = malloc(cap);
	struct sockaddr_vm a;
	socklen_t len;
	struct ck c;
	ssize_t n;
	int fl, v, rc;
	int64_t t0;
	char b1[40];

	if (tx == NULL || rx == NULL) {
		free(tx);
		free(rx);
		return;
	}
	ck_start(&c, "SEQPACKET connected: getpeername guest:7001, getsockname local port, "
		     "SO_TYPE/SO_ACCEPTCONN");
	len = sizeof(a);
	memset(&a, 0, sizeof(a));
	rc = getpeername(q, (struct sockaddr *)&a, &len) < 0 ? -errno : 0;
	CK(&c, rc == 0 && a.svm_cid == g_cid && a.svm_port == GUEST_PORT + 1, "getpeername: %s %s",
			en(rc), addr_str(&a, b1, sizeof(b1)));
	len = sizeof(a);
	memset(&a, 0, sizeof(a));
	rc = getsockname(q, (struct sockaddr *)&a, &len) < 0 ? -errno : 0;
	/* Linux: auto-bound to VMADDR_CID_ANY; libuvsock documents CID 2 */
	CK(&c,
			rc == 0 && (a.svm_cid == VMADDR_CID_HOST || a.svm_cid == VMADDR_CID_ANY) &&
					a.svm_port > 1023 && a.svm_port != VMADDR_PORT_ANY,
			"getsockname: %s %s", en(rc), addr_str(&a, b1, sizeof(b1)));
	rc = getopt_int(q, SOL_SOCKET, SO_TYPE, &v);
	CK(&c, rc == 0 && v == SOCK_SEQPACKET, "SO_TYPE %s %d", en(rc), v);
	rc = getopt_int(q, SOL_SOCKET, SO_ACCEPTCONN, &v);
	CK(&c, rc == 0 && v == 0, "SO_ACCEPTCONN %s %d", en(rc), v);
	ck_end(&c);

	ck_start(&c, "SEQPACKET: boundaries kept (1 B .. 64 KiB, two messages back to back), "
		     "MSG_EOR in msg_flags iff sent with it");
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]) && !c.bad; i++) {
		size_t sz = sizes[i];
		int k;

		for (k = 0; k < 2; k++) {
			struct iovec iov = { .iov_base = tx + k * sz, .iov_len = sz };
			struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

			fill(tx + k * sz, sz, 0, (unsigned int)(i * 2 + k));
			/* the first without MSG_EOR (send), the second with it (sendmsg) */
			n = k == 0 ? send(q, tx, sz, MSG_NOSIGNAL)
				   : sendmsg(q, &mh, MSG_EOR | MSG_NOSIGNAL);
			CK(&c, n == (ssize_t)sz, "send of %zu B (%s): %zd %s", sz,
					k ? "MSG_EOR" : "no EOR", n, n < 0 ? en(errno) : "");
		}
		for (k = 0; k < 2 && !c.bad; k++) {
			n = recv_msg(q, rx, cap, 0, &fl, 10000);
			CK(&c, n == (ssize_t)sz, "message %d of %zu B came back as %zd (%s)", k, sz,
					n, n < 0 ? en((int)n) : "boundary lost");
			CK(&c, !(fl & MSG_TRUNC), "%zu B: MSG_TRUNC set", sz);
			CK(&c, !!(fl & MSG_EOR) == (k == 1), "%zu B sent %s: msg_flags 0x%x", sz,
					k ? "with MSG_EOR" : "without MSG_EOR", fl);
			CK(&c, n != (ssize_t)sz || memcmp(rx, tx + k * sz, sz) == 0,
					"%zu B: content differs", sz);
		}
	}
	ck_end(&c);

	ck_start(&c, "SEQPACKET: zero-length send returns 0 and sends no message");
	n = send(q, tx, 0, MSG_NOSIGNAL);
	CK(&c, n == 0, "send(len 0): %zd %s", n, n < 0 ? en(errno) : "");
	fill(tx, 5, 0, 77);
	n = send(q, tx, 5, MSG_NOSIGNAL);
	CK(&c, n == 5, "send(5): %zd", n);
	n = recv_msg(q, rx, cap, 0, &fl, 10000);
	CK(&c, n == 5 && memcmp(rx, tx, 5) == 0,
			"first message back: %zd bytes %s (0: an empty message went out)", n,
			n < 0 ? en((int)n) : "");
	ck_end(&c);

	ck_start(&c, "SEQPACKET: zero-length recv returns 0 at once and leaves a queued message "
		     "in place");
	set_tmo(q, SO_RCVTIMEO, 1000);
	t0 = now_ms();
	n = recv(q, rx, 0, 0);
	t0 = now_ms() - t0;
	CK(&c, n == 0 && t0 < 500, "recv(len 0) on an empty socket: %zd %s after %" PRId64 " ms", n,
			n < 0 ? en(errno) : "", t0);
	set_tmo(q, SO_RCVTIMEO, 0);
	n = send(q, tx, 5, MSG_NOSIGNAL);
	v = wait_ev(q, POLLIN, 10000);
	CK(&c, n == 5 && (v & POLLIN), "send(5) %zd, no POLLIN for the echo: 0x%x", n, v);
	n = recv(q, rx, 0, 0);
	CK(&c, n == 0, "recv(len 0) with a message queued: %zd %s", n, n < 0 ? en(errno) : "");
	n = recv_msg(q, rx, cap, 0, &fl, 3000);
	CK(&c, n == 5 && memcmp(rx, tx, 5) == 0,
			"the queued message after recv(len 0): %zd %s (Linux leaves it queued)", n,
			n < 0 ? en((int)n) : "");
	ck_end(&c);

	ck_start(&c, "SEQPACKET: MSG_DONTWAIT on an empty socket gives EAGAIN");
	n = recv(q, rx, cap, MSG_DONTWAIT);
	CK(&c, n < 0 && errno == EAGAIN, "recv: %zd %s", n, n < 0 ? en(errno) : "");
	ck_end(&c);

	ck_start(&c, "SEQPACKET: 1000-byte message into 100 bytes gives 100 and MSG_TRUNC, the "
		     "rest discarded");
	fill(tx, 1000, 0, 5);
	n = send(q, tx, 1000, MSG_NOSIGNAL | MSG_EOR);
	CK(&c, n == 1000, "send 1000: %zd", n);
	fill(tx + 1000, 7, 0, 6);
	n = send(q, tx + 1000, 7, MSG_NOSIGNAL);
	CK(&c, n == 7, "send 7: %zd", n);
	n = recv_msg(q, rx, 100, 0, &fl, 10000);
	CK(&c, n == 100 && (fl & MSG_TRUNC) && memcmp(rx, tx, 100) == 0,
			"recvmsg(100): %zd flags 0x%x (want 100, MSG_TRUNC)", n, fl);
	n = recv_msg(q, rx, cap, 0, &fl, 10000);
	CK(&c, n == 7 && memcmp(rx, tx + 1000, 7) == 0 && !(fl & MSG_TRUNC),
			"next message: %zd bytes flags 0x%x, want the 7-byte one", n, fl);
	ck_end(&c);

	ck_start(&c, "SEQPACKET: recv flag MSG_TRUNC returns the real length (1000 into 100)");
	n = send(q, tx, 1000, MSG_NOSIGNAL);
	CK(&c, n == 1000, "send 1000: %zd", n);
	n = send(q, tx + 1000, 7, MSG_NOSIGNAL);
	n = recv_msg(q, rx, 100, MSG_TRUNC, &fl, 10000);
	CK(&c, n == 1000 && (fl & MSG_TRUNC) && memcmp(rx, tx, 100) == 0,
			"recvmsg(100, MSG_TRUNC): %zd flags 0x%x, want 1000 and MSG_TRUNC", n, fl);
	n = recv_msg(q, rx, cap, 0, &fl, 10000);
	CK(&c, n == 7, "next message: %zd, want 7", n);
	ck_end(&c);

	ck_start(&c, "SEQPACKET: MSG_PEEK returns the next message without consuming it "
		     "(Linux >= 6.6)");
	fill(tx, 300, 0, 9);
	n = send(q, tx, 300, MSG_NOSIGNAL);
	CK(&c, n == 300, "send 300: %zd", n);
	n = recv_msg(q, rx, cap, MSG_PEEK, &fl, 10000);
	CK(&c, n == 300 && memcmp(rx, tx, 300) == 0, "peek: %zd %s", n, n < 0 ? en((int)n) : "");
	memset(rx, 0, 300);
	n = recv_msg(q, rx, cap, 0, &fl, 10000);
	CK(&c, n == 300 && memcmp(rx, tx, 300) == 0, "recv after peek: %zd %s", n,
			n < 0 ? en((int)n) : "");
	ck_end(&c);

	ck_start(&c, "SEQPACKET: a 300 KiB message gives EMSGSIZE (guest buffer 256 KiB); "
		     "256 KiB exactly goes through whole");
	fill(tx, 300 * 1024, 0, 11);
	n = send(q, tx, 300 * 1024, MSG_NOSIGNAL);
	CK(&c, n < 0 && errno == EMSGSIZE, "send(300 KiB): %zd %s", n, n < 0 ? en(errno) : "");
	n = send(q, tx, GUEST_BUF, MSG_NOSIGNAL | MSG_EOR);
	CK(&c, n == GUEST_BUF, "send(256 KiB): %zd %s", n, n < 0 ? en(errno) : "");
	n = recv_msg(q, rx, cap, 0, &fl, 20000);
	CK(&c, n == GUEST_BUF && memcmp(rx, tx, GUEST_BUF) == 0 && (fl & MSG_EOR),
			"echo of 256 KiB: %zd flags 0x%x %s", n, fl, n < 0 ? en((int)n) : "");
	ck_end(&c);

	ck_start(&c, "SEQPACKET: SHUT_WR: the guest sees EOF and closes, recv returns 0; send "
		     "then fails EPIPE without SIGPIPE");
	rc = shutdown(q, SHUT_WR) < 0 ? -errno : 0;
	CK(&c, rc == 0, "shutdown(SHUT_WR): %s", en(rc));
	n = recv_msg(q, rx, cap, 0, &fl, 10000);
	CK(&c, n == 0, "recv after SHUT_WR: %zd %s, want 0", n, n < 0 ? en((int)n) : "");
	{
		int before = g_pipe;

		n = send(q, tx, 10, 0);
		CK(&c, n < 0 && errno == EPIPE, "send: %zd %s, want EPIPE", n,
				n < 0 ? en(errno) : "");
		CK(&c, g_pipe == before, "SIGPIPE raised on SEQPACKET (%d)", g_pipe - before);
	}
	ck_end(&c);
	free(tx);
	free(rx);
}

/* ---------------------------------------------------------------------------------------- */
/* client side: STREAM */

/* Nonblocking connect: EINPROGRESS, EALREADY or EISCONN, POLLOUT, SO_ERROR 0, EISCONN. */
static int
t_nb_connect(void)
{
	struct sockaddr_vm a = vaddr(g_cid, GUEST_PORT), p;
	socklen_t len;
	struct ck c;
	int fd, rc, rc2, r, err = -1, early;
	char b1[40];

	ck_start(&c, "STREAM nonblocking connect: EINPROGRESS; again EALREADY (or EISCONN); "
		     "POLLOUT then SO_ERROR 0; again EISCONN");
	fd = vsock(SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (!CK(&c, fd >= 0, "socket: %s", en(fd))) {
		ck_end(&c);
		return -1;
	}
	rc = connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ? -errno : 0;
	early = poll1(fd, POLLOUT, 0);
	rc2 = connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ? -errno : 0;
	CK(&c, rc == -EINPROGRESS, "connect: %s", en(rc));
	CK(&c, rc2 == -EALREADY || rc2 == -EISCONN, "second connect: %s", en(rc2));
	CK(&c, !(early & POLLOUT) || rc2 == -EISCONN,
			"POLLOUT (0x%x) while the second connect said EALREADY", early);
	r = wait_ev(fd, POLLOUT, CONNECT_TMO_MS);
	CK(&c, (r & POLLOUT) && !(r & (POLLERR | POLLHUP)), "poll: revents 0x%x", r);
	len = sizeof(err);
	rc = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 ? -errno : 0;
	CK(&c, rc == 0 && err == 0, "SO_ERROR: %s %s", en(rc), en(err));
	rc = connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ? -errno : 0;
	CK(&c, rc == -EISCONN, "connect once connected: %s, want EISCONN", en(rc));
	ck_end(&c);
	if (c.bad && err != 0) {
		close(fd);
		return -1;
	}
	g_guest_conns++;

	ck_start(&c, "STREAM connected: getpeername guest:7000, getsockname local port, "
		     "SO_TYPE/SO_DOMAIN/SO_PROTOCOL/SO_ACCEPTCONN");
	len = sizeof(p);
	memset(&p, 0, sizeof(p));
	rc = getpeername(fd, (struct sockaddr *)&p, &len) < 0 ? -errno : 0;
	CK(&c,
			rc == 0 && p.svm_family == AF_VSOCK && p.svm_cid == g_cid &&
					p.svm_port == GUEST_PORT && len == sizeof(p),
			"getpeername: %s %s len %u", en(rc), addr_str(&p, b1, sizeof(b1)),
			(unsigned int)len);
	len = sizeof(p);
	memset(&p, 0, sizeof(p));
	rc = getsockname(fd, (struct sockaddr *)&p, &len) < 0 ? -errno : 0;
	CK(&c,
			rc == 0 && (p.svm_cid == VMADDR_CID_HOST || p.svm_cid == VMADDR_CID_ANY) &&
					p.svm_port > 1023 && p.svm_port != VMADDR_PORT_ANY,
			"getsockname: %s %s", en(rc), addr_str(&p, b1, sizeof(b1)));
	rc = getopt_int(fd, SOL_SOCKET, SO_TYPE, &r);
	CK(&c, rc == 0 && r == SOCK_STREAM, "SO_TYPE %s %d", en(rc), r);
	rc = getopt_int(fd, SOL_SOCKET, SO_DOMAIN, &r);
	CK(&c, rc == 0 && r == AF_VSOCK, "SO_DOMAIN %s %d", en(rc), r);
	rc = getopt_int(fd, SOL_SOCKET, SO_PROTOCOL, &r);
	CK(&c, rc == 0 && r == 0, "SO_PROTOCOL %s %d", en(rc), r);
	rc = getopt_int(fd, SOL_SOCKET, SO_ACCEPTCONN, &r);
	CK(&c, rc == 0 && r == 0, "SO_ACCEPTCONN %s %d", en(rc), r);
	ck_end(&c);
	return fd;
}

static void
t_connect_nobody(void)
{
	struct sockaddr_vm a = vaddr(g_cid, GUEST_NOBODY);
	socklen_t len;
	struct ck c;
	int fd, rc, r, err = -1, err2 = -1;

	/* Linux adds POLLERR while sk_err is set; the shim cannot (doc/preload.md: the fd is a
	 * unix socket whose error the daemon cannot set): POLLOUT, then SO_ERROR, is what
	 * programs rely on, and what is checked. */
	ck_start(&c, "nonblocking connect to a guest port without listener: POLLOUT, "
		     "SO_ERROR ECONNRESET (then 0)");
	fd = vsock(SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (!CK(&c, fd >= 0, "socket: %s", en(fd)))
		goto out;
	rc = connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ? -errno : 0;
	CK(&c, rc == -EINPROGRESS, "connect: %s, want EINPROGRESS", en(rc));
	r = wait_ev(fd, POLLOUT, CONNECT_TMO_MS);
	len = sizeof(err);
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
	len = sizeof(err2);
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err2, &len);
	CK(&c, r & POLLOUT, "revents 0x%x, want POLLOUT", r);
	CK(&c, err == ECONNRESET, "SO_ERROR %s, want ECONNRESET", en(err));
	CK(&c, err2 == 0, "second SO_ERROR %s, want 0", en(err2));
	close(fd);
out:
	ck_end(&c);

	ck_start(&c, "blocking connect (SEQPACKET) to a guest port without listener: "
		     "ECONNRESET");
	fd = vsock(SOCK_SEQPACKET | SOCK_CLOEXEC);
	if (!CK(&c, fd >= 0, "socket: %s", en(fd)))
		goto out2;
	rc = connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ? -errno : 0;
	CK(&c, rc == -ECONNRESET, "connect: %s, want ECONNRESET", en(rc));
	close(fd);
out2:
	ck_end(&c);
}

struct later {
	int fd;
	int delay_ms;
	const void *buf;
	size_t len;
	pthread_t t;
};

static void *
later_send(void *arg)
{
	struct later *l = arg;

	sleep_ms(l->delay_ms);
	send_all(l->fd, l->buf, l->len, 10000);
	return NULL;
}

/* recv flags, FIONREAD/SIOCOUTQ, FIONBIO, select/poll with a pipe, SO_RCVTIMEO. */
static void
t_stream_io(int s)
{
	uint8_t tx[4096], rx[4096];
	struct ck c;
	ssize_t n;
	int v, rc, r, p[2] = { -1, -1 };
	int64_t t0;

	set_nonblock(s, false);
	ck_start(&c, "STREAM: MSG_DONTWAIT (and MSG_PEEK|MSG_DONTWAIT) on an empty socket gives "
		     "EAGAIN");
	n = recv(s, rx, sizeof(rx), MSG_DONTWAIT);
	CK(&c, n < 0 && errno == EAGAIN, "recv(MSG_DONTWAIT): %zd %s", n, n < 0 ? en(errno) : "");
	n = recv(s, rx, sizeof(rx), MSG_DONTWAIT | MSG_PEEK);
	CK(&c, n < 0 && errno == EAGAIN, "recv(MSG_PEEK|MSG_DONTWAIT): %zd %s", n,
			n < 0 ? en(errno) : "");
	ck_end(&c);

	ck_start(&c, "FIONBIO 1: recv EAGAIN and F_GETFL shows O_NONBLOCK; FIONBIO 0: blocking "
		     "again");
	v = 1;
	rc = ioctl(s, FIONBIO, &v) < 0 ? -errno : 0;
	n = recv(s, rx, sizeof(rx), 0);
	CK(&c, rc == 0 && n < 0 && errno == EAGAIN, "ioctl %s, recv %zd %s", en(rc), n,
			n < 0 ? en(errno) : "");
	CK(&c, fl_of(s) & O_NONBLOCK, "F_GETFL 0x%x after FIONBIO 1", fl_of(s));
	v = 0;
	rc = ioctl(s, FIONBIO, &v) < 0 ? -errno : 0;
	CK(&c, rc == 0 && !(fl_of(s) & O_NONBLOCK), "FIONBIO 0: %s, F_GETFL 0x%x", en(rc),
			fl_of(s));
	ck_end(&c);

	ck_start(&c, "STREAM: zero-length send and recv return 0");
	n = send(s, tx, 0, MSG_NOSIGNAL);
	CK(&c, n == 0, "send(0): %zd %s", n, n < 0 ? en(errno) : "");
	t0 = now_ms();
	n = recv(s, rx, 0, 0);
	CK(&c, n == 0 && now_ms() - t0 < 500, "recv(0): %zd %s after %" PRId64 " ms", n,
			n < 0 ? en(errno) : "", now_ms() - t0);
	ck_end(&c);

	ck_start(&c, "STREAM: FIONREAD equals the bytes queued (1000 echoed); SIOCOUTQ >= 0");
	fill(tx, 1000, 0, 21);
	n = write(s, tx, 1000);
	CK(&c, n == 1000, "write: %zd %s", n, n < 0 ? en(errno) : "");
	t0 = now_ms();
	v = -1;
	while (now_ms() - t0 < 10000) {
		rc = ioctl(s, FIONREAD, &v) < 0 ? -errno : 0;
		if (rc < 0 || v >= 1000)
			break;
		poll1(s, POLLIN, 50);
		sleep_ms(20);
	}
	CK(&c, rc == 0 && v == 1000, "FIONREAD: %s %d, want 1000", en(rc), v);
	v = -1;
	rc = ioctl(s, SIOCOUTQ, &v) < 0 ? -errno : 0;
	CK(&c, rc == 0 && v >= 0 && v <= 1000, "SIOCOUTQ: %s %d", en(rc), v);
	ck_end(&c);

	ck_start(&c, "STREAM: MSG_PEEK returns the data and leaves it queued");
	n = recv(s, rx, 1000, MSG_PEEK);
	CK(&c, n == 1000 && memcmp(rx, tx, 1000) == 0, "peek: %zd %s", n, n < 0 ? en(errno) : "");
	v = -1;
	ioctl(s, FIONREAD, &v);
	CK(&c, v == 1000, "FIONREAD after peek: %d", v);
	memset(rx, 0, sizeof(rx));
	n = read(s, rx, 1000);
	CK(&c, n == 1000 && memcmp(rx, tx, 1000) == 0, "read after peek: %zd", n);
	v = -1;
	ioctl(s, FIONREAD, &v);
	CK(&c, v == 0, "FIONREAD after read: %d", v);
	ck_end(&c);

	ck_start(&c, "STREAM: MSG_WAITALL waits for the whole length (1000 now, 2000 after 300 "
		     "ms)");
	{
		struct later l = { .fd = s, .delay_ms = 300, .buf = tx + 1000, .len = 2000 };

		fill(tx, 3000, 0, 22);
		n = send(s, tx, 1000, MSG_NOSIGNAL);
		CK(&c, n == 1000, "send 1000: %zd", n);
		t0 = now_ms();
		pthread_create(&l.t, NULL, later_send, &l);
		n = recv(s, rx, 3000, MSG_WAITALL);
		CK(&c, n == 3000 && memcmp(rx, tx, 3000) == 0,
				"recv(3000, MSG_WAITALL): %zd %s after %" PRId64 " ms", n,
				n < 0 ? en(errno) : "", now_ms() - t0);
		pthread_join(l.t, NULL);
		if (n > 0 && n < 3000)
			recv_exact(s, rx, 3000 - (size_t)n, 5000, NULL);
	}
	ck_end(&c);

	ck_start(&c, "select(): vsock fd with a pipe: writable, not readable while idle; "
		     "readable when the echo arrives");
	if (CK(&c, pipe2(p, O_CLOEXEC) == 0, "pipe: %s", en(errno))) {
		fd_set rs, ws;
		struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
		int mx = (p[0] > s ? p[0] : s) + 1;

		CK(&c, write(p[1], "p", 1) == 1, "pipe write");
		FD_ZERO(&rs);
		FD_ZERO(&ws);
		FD_SET(p[0], &rs);
		FD_SET(s, &rs);
		FD_SET(s, &ws);
		r = select(mx, &rs, &ws, NULL, &tv);
		CK(&c, r == 2 && FD_ISSET(p[0], &rs) && !FD_ISSET(s, &rs) && FD_ISSET(s, &ws),
				"idle: select %d, pipe r %d, vsock r %d w %d (want 2, 1, 0, 1)", r,
				FD_ISSET(p[0], &rs), FD_ISSET(s, &rs), FD_ISSET(s, &ws));
		n = send(s, "select", 6, MSG_NOSIGNAL);
		t0 = now_ms();
		do {
			FD_ZERO(&rs);
			FD_SET(p[0], &rs);
			FD_SET(s, &rs);
			tv.tv_sec = 1;
			tv.tv_usec = 0;
			r = select(mx, &rs, NULL, NULL, &tv);
		} while (r >= 0 && !FD_ISSET(s, &rs) && now_ms() - t0 < 10000);
		CK(&c, r == 2 && FD_ISSET(s, &rs) && FD_ISSET(p[0], &rs),
				"after the echo: select %d, vsock r %d, pipe r %d", r,
				FD_ISSET(s, &rs), FD_ISSET(p[0], &rs));
		n = recv_exact(s, rx, 6, 5000, NULL);
		CK(&c, n == 0 && memcmp(rx, "select", 6) == 0, "echo: %s", en((int)n));
		FD_ZERO(&rs);
		FD_SET(s, &rs);
		tv.tv_sec = 0;
		tv.tv_usec = 100000;
		r = select(mx, &rs, NULL, NULL, &tv);
		CK(&c, r == 0, "after reading everything: select %d (vsock still readable)", r);
	}
	ck_end(&c);

	ck_start(&c, "poll(): vsock fd with a pipe: POLLOUT only while idle; POLLIN when the "
		     "echo arrives");
	if (p[0] >= 0) {
		struct pollfd pf[2] = { { .fd = p[0], .events = POLLIN },
			{ .fd = s, .events = POLLIN | POLLOUT | POLLRDHUP } };

		r = poll(pf, 2, 200);
		CK(&c, r == 2 && pf[0].revents == POLLIN && pf[1].revents == POLLOUT,
				"idle: poll %d, pipe 0x%x, vsock 0x%x (want POLLIN, POLLOUT)", r,
				pf[0].revents, pf[1].revents);
		n = send(s, "poll", 4, MSG_NOSIGNAL);
		t0 = now_ms();
		do {
			pf[1].events = POLLIN | POLLRDHUP;
			r = poll(pf, 2, 1000);
		} while (r >= 0 && !(pf[1].revents & POLLIN) && now_ms() - t0 < 10000);
		CK(&c, r == 2 && pf[1].revents == POLLIN && pf[0].revents == POLLIN,
				"after the echo: poll %d, vsock 0x%x, pipe 0x%x", r, pf[1].revents,
				pf[0].revents);
		n = recv_exact(s, rx, 4, 5000, NULL);
		CK(&c, n == 0 && memcmp(rx, "poll", 4) == 0, "echo: %s", en((int)n));
		r = poll(&pf[1], 1, 100);
		CK(&c, r == 0, "after reading everything: poll %d revents 0x%x", r, pf[1].revents);
	}
	ck_end(&c);
	if (p[0] >= 0) {
		close(p[0]);
		close(p[1]);
	}

	ck_start(&c, "SO_RCVTIMEO 200 ms: recv on an idle connection fails EAGAIN after the "
		     "timeout; getsockopt reads it back");
	rc = set_tmo(s, SO_RCVTIMEO, 200);
	CK(&c, rc == 0, "setsockopt: %s", en(rc));
	{
		struct timeval tv = { 0 };
		socklen_t len = sizeof(tv);

		rc = getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) < 0 ? -errno : 0;
		CK(&c, rc == 0 && tv.tv_sec == 0 && tv.tv_usec >= 196000 && tv.tv_usec <= 204000,
				"getsockopt: %s %ld.%06ld", en(rc), (long)tv.tv_sec,
				(long)tv.tv_usec);
	}
	t0 = now_ms();
	n = recv(s, rx, sizeof(rx), 0);
	t0 = now_ms() - t0;
	CK(&c, n < 0 && errno == EAGAIN && t0 >= 150 && t0 < 2000,
			"recv: %zd %s after %" PRId64 " ms", n, n < 0 ? en(errno) : "", t0);
	set_tmo(s, SO_RCVTIMEO, 0);
	ck_end(&c);
}

/* Signals during a blocking recv. */
struct sigger {
	int fd;
	int sig;
	int delay_ms;
	int late_ms; /* > 0: send late[] that long after the signal */
	const char *late;
	int rescue_ms; /* > 0: if main is still blocked then, send "x" to free it */
	volatile int main_done;
	int sent;
	pthread_t t;
};

static void *
sigger_fn(void *arg)
{
	struct sigger *g = arg;
	int64_t t0;

	sleep_ms(g->delay_ms);
	pthread_kill(g_main, g->sig);
	if (g->late != NULL) {
		sleep_ms(g->late_ms);
		send_all(g->fd, g->late, strlen(g->late), 5000);
		g->sent = (int)strlen(g->late);
		return NULL;
	}
	t0 = now_ms();
	while (g->rescue_ms > 0 && now_ms() - t0 < g->rescue_ms)
		if (__atomic_load_n(&g->main_done, __ATOMIC_ACQUIRE))
			return NULL;
		else
			sleep_ms(20);
	if (g->rescue_ms > 0 && !__atomic_load_n(&g->main_done, __ATOMIC_ACQUIRE)) {
		send_all(g->fd, "x", 1, 5000);
		g->sent = 1;
	}
	return NULL;
}

/* Run one blocking recv with a signal arriving; returns recv's result, *e errno, *ms time. */
static ssize_t
recv_with_signal(struct sigger *g, void *buf, size_t len, int *e, int64_t *ms)
{
	int64_t t0 = now_ms();
	ssize_t n;

	g->main_done = 0;
	g->sent = 0;
	pthread_create(&g->t, NULL, sigger_fn, g);
	n = recv(g->fd, buf, len, 0);
	*e = errno;
	*ms = now_ms() - t0;
	__atomic_store_n(&g->main_done, 1, __ATOMIC_RELEASE);
	pthread_join(g->t, NULL);
	return n;
}

static void
t_signals(int s)
{
	char rx[64];
	struct ck c;
	ssize_t n;
	int e, before;
	int64_t ms;

	set_nonblock(s, false);
	set_tmo(s, SO_RCVTIMEO, 0);

	ck_start(&c, "signals: blocking recv, handler without SA_RESTART: EINTR");
	{
		struct sigger g = { .fd = s, .sig = SIGUSR1, .delay_ms = 200, .rescue_ms = 2000 };

		before = g_usr1;
		n = recv_with_signal(&g, rx, sizeof(rx), &e, &ms);
		CK(&c, n < 0 && e == EINTR, "recv: %zd %s after %" PRId64 " ms%s", n,
				n < 0 ? en(e) : "", ms,
				g.sent ? " (not interrupted: freed by data 2 s after the signal)"
				       : "");
		CK(&c, g_usr1 == before + 1, "handler ran %d times", g_usr1 - before);
		if (g.sent)
			recv_exact(s, rx, (size_t)g.sent - (n > 0 ? (size_t)n : 0), 5000, NULL);
	}
	ck_end(&c);

	ck_start(&c, "signals: blocking recv, handler with SA_RESTART: restarted, returns the "
		     "data sent 300 ms after the signal");
	{
		struct sigger g = {
			.fd = s, .sig = SIGUSR2, .delay_ms = 200, .late_ms = 300, .late = "late!"
		};
		size_t got = 0;

		before = g_usr2;
		memset(rx, 0, sizeof(rx));
		n = recv_with_signal(&g, rx, sizeof(rx), &e, &ms);
		if (n > 0)
			got = (size_t)n;
		CK(&c, n > 0, "recv: %zd %s after %" PRId64 " ms (Linux restarts it)", n,
				n < 0 ? en(e) : "", ms);
		CK(&c, g_usr2 == before + 1, "handler ran %d times", g_usr2 - before);
		if (got < 5)
			recv_exact(s, rx + got, 5 - got, 5000, &got);
		CK(&c, memcmp(rx, "late!", 5) == 0, "data: '%.5s'", rx);
		CK(&c, n <= 0 || ms >= 400,
				"returned after %" PRId64 " ms, before the data was sent", ms);
	}
	ck_end(&c);

	ck_start(&c, "signals: SO_RCVTIMEO set (3 s): even with SA_RESTART the recv fails EINTR");
	{
		struct sigger g = { .fd = s, .sig = SIGUSR2, .delay_ms = 200 };

		set_tmo(s, SO_RCVTIMEO, 3000);
		before = g_usr2;
		n = recv_with_signal(&g, rx, sizeof(rx), &e, &ms);
		CK(&c, n < 0 && e == EINTR && ms < 2500, "recv: %zd %s after %" PRId64 " ms", n,
				n < 0 ? en(e) : "", ms);
		CK(&c, g_usr2 == before + 1, "handler ran %d times", g_usr2 - before);
		set_tmo(s, SO_RCVTIMEO, 0);
	}
	ck_end(&c);
}

/* Fill the send path without reading: POLLOUT must clear, then come back after reading. */
static void
t_pollout(void)
{
	const size_t chunk = 65536;
	uint8_t *buf = malloc(chunk);
	uint64_t sent = 0, rcvd = 0;
	struct sockaddr_vm a = vaddr(g_cid, GUEST_PORT);
	struct ck c;
	int fd, r, rounds = 0, rc;
	int64_t t0, bad = -1;
	bool full = false;

	ck_start(&c, "POLLOUT: write until EAGAIN without reading, repeat until poll(POLLOUT, "
		     "200 ms) says not writable");
	fd = vsock(SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (!CK(&c, fd >= 0 && buf != NULL, "socket: %s", en(fd)))
		goto out0;
	rc = connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ? -errno : 0;
	r = wait_ev(fd, POLLOUT, CONNECT_TMO_MS);
	{
		int err = -1;
		socklen_t len = sizeof(err);

		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (!CK(&c, rc == -EINPROGRESS && (r & POLLOUT) && err == 0,
				    "connect %s poll 0x%x SO_ERROR %s", en(rc), r, en(err)))
			goto out;
	}
	g_guest_conns++;
	t0 = now_ms();
	while (rounds < 1000 && now_ms() - t0 < 30000) {
		ssize_t n;

		rounds++;
		for (;;) {
			fill(buf, chunk, sent, 33);
			n = send(fd, buf, chunk, MSG_NOSIGNAL);
			if (n > 0)
				sent += (uint64_t)n;
			else
				break;
		}
		if (!CK(&c, errno == EAGAIN, "send: %s after %" PRIu64 " bytes", en(errno), sent))
			goto out;
		r = poll1(fd, POLLOUT, 200);
		if (!(r & POLLOUT)) {
			full = true;
			break;
		}
	}
	CK(&c, full,
			"still writable after %d rounds, %" PRIu64 " bytes, %" PRId64 " ms (poll "
			"0x%x)",
			rounds, sent, now_ms() - t0, r);
	ck_end(&c);
	if (full)
		printf("# not writable after %d rounds, %" PRIu64 " bytes sent\n", rounds, sent);
	if (!full)
		goto skip_sndtimeo;

	ck_start(&c, "SO_SNDTIMEO 200 ms: send on the full connection fails EAGAIN after the "
		     "timeout");
	{
		int64_t t1;
		ssize_t n;

		set_nonblock(fd, false);
		rc = set_tmo(fd, SO_SNDTIMEO, 200);
		fill(buf, chunk, sent, 33);
		t1 = now_ms();
		n = send(fd, buf, chunk, MSG_NOSIGNAL);
		t1 = now_ms() - t1;
		if (n > 0)
			sent += (uint64_t)n;
		CK(&c,
				rc == 0 &&
						((n < 0 && errno == EAGAIN) ||
								(n > 0 && n < (ssize_t)chunk)) &&
						t1 >= 150 && t1 < 3000,
				"setsockopt %s; send: %zd %s after %" PRId64 " ms", en(rc), n,
				n < 0 ? en(errno) : "", t1);
		set_tmo(fd, SO_SNDTIMEO, 0);
		set_nonblock(fd, true);
	}
	ck_end(&c);
skip_sndtimeo:

	ck_start(&c, "POLLOUT: set again within 5 s of reading the echo");
	t0 = now_ms();
	r = 0;
	while (now_ms() - t0 < 5000) {
		ssize_t n;

		r = poll1(fd, POLLIN | POLLOUT, 100);
		if (r & POLLOUT)
			break;
		n = recv(fd, buf, chunk, MSG_DONTWAIT);
		if (n > 0) {
			int64_t b = bad_at(buf, (size_t)n, rcvd, 33);

			if (bad < 0 && b >= 0)
				bad = b;
			rcvd += (uint64_t)n;
		}
	}
	CK(&c, r & POLLOUT,
			"not writable %" PRId64 " ms after reading began (%" PRIu64 " of %" PRIu64
			" bytes read)",
			now_ms() - t0, rcvd, sent);
	if (!c.bad)
		printf("# writable again after %" PRId64 " ms (%" PRIu64 " bytes read)\n",
				now_ms() - t0, rcvd);
	ck_end(&c);

	ck_start(&c, "POLLOUT: every echoed byte matches what was sent");
	t0 = now_ms();
	while (rcvd < sent && now_ms() - t0 < 30000) {
		ssize_t n;

		poll1(fd, POLLIN, 200);
		n = recv(fd, buf, chunk, MSG_DONTWAIT);
		if (n > 0) {
			int64_t b = bad_at(buf, (size_t)n, rcvd, 33);

			if (bad < 0 && b >= 0)
				bad = b;
			rcvd += (uint64_t)n;
		} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			break;
		}
	}
	CK(&c, rcvd == sent && bad < 0,
			"%" PRIu64 " of %" PRIu64 " bytes back, first difference at %" PRId64, rcvd,
			sent, bad);
out:
	close(fd);
out0:
	ck_end(&c);
	free(buf);
}

/* SHUT_WR, SIGPIPE, MSG_NOSIGNAL, SHUT_RD, SHUT_RDWR. */
static void
t_shutdown(void)
{
	char rx[64];
	struct ck c;
	ssize_t n;
	int fd, rc, r, before;
	int64_t t0;
	size_t got = 0;

	/* Linux adds POLLHUP once both sides shut down sending; the shim cannot (doc/preload.md:
	 * its fd would hang up towards the daemon as if closed) and promises no POLLOUT */
	ck_start(&c, "STREAM SHUT_WR: the echo returns what was sent, then EOF (recv 0); "
		     "POLLIN|POLLRDHUP, no POLLOUT once the guest closed too");
	rc = gconnect(SOCK_STREAM, GUEST_PORT, &fd);
	if (!CK(&c, rc == 0, "connect: %s", en(rc))) {
		ck_end(&c);
		goto rd;
	}
	n = send(fd, "hello", 5, MSG_NOSIGNAL);
	rc = shutdown(fd, SHUT_WR) < 0 ? -errno : 0;
	CK(&c, n == 5 && rc == 0, "send %zd, shutdown %s", n, en(rc));
	rc = recv_exact(fd, rx, 5, 10000, &got);
	CK(&c, rc == 0 && memcmp(rx, "hello", 5) == 0, "echo: %s after %zu bytes", en(rc), got);
	/* the guest closes after its EOF: readable (EOF) and read-hang-up */
	r = wait_ev(fd, POLLIN | POLLRDHUP, 10000);
	CK(&c, (r & POLLRDHUP) && (r & POLLIN), "revents 0x%x, want POLLIN|POLLRDHUP", r);
	r = poll1(fd, POLLIN | POLLOUT | POLLRDHUP, 0);
	CK(&c, !(r & POLLOUT), "revents 0x%x: POLLOUT after SHUT_WR", r);
	n = recv(fd, rx, sizeof(rx), 0);
	CK(&c, n == 0, "recv at the end: %zd %s, want 0", n, n < 0 ? en(errno) : "");
	ck_end(&c);

	ck_start(&c, "SIGPIPE: send (and write) after SHUT_WR fail EPIPE and raise SIGPIPE");
	before = g_pipe;
	n = send(fd, "x", 1, 0);
	CK(&c, n < 0 && errno == EPIPE, "send: %zd %s", n, n < 0 ? en(errno) : "");
	CK(&c, g_pipe == before + 1, "SIGPIPE count %d, want 1", g_pipe - before);
	n = write(fd, "x", 1);
	CK(&c, n < 0 && errno == EPIPE, "write: %zd %s", n, n < 0 ? en(errno) : "");
	CK(&c, g_pipe == before + 2, "SIGPIPE count after write %d, want 2", g_pipe - before);
	ck_end(&c);

	ck_start(&c, "MSG_NOSIGNAL: EPIPE without SIGPIPE");
	before = g_pipe;
	n = send(fd, "x", 1, MSG_NOSIGNAL);
	CK(&c, n < 0 && errno == EPIPE, "send: %zd %s", n, n < 0 ? en(errno) : "");
	CK(&c, g_pipe == before, "SIGPIPE raised %d times", g_pipe - before);
	ck_end(&c);
	close(fd);

rd:
	ck_start(&c, "STREAM SHUT_RD: recv returns 0 at once; POLLIN|POLLRDHUP, no POLLHUP");
	rc = gconnect(SOCK_STREAM, GUEST_PORT, &fd);
	if (!CK(&c, rc == 0, "connect: %s", en(rc))) {
		ck_end(&c);
		goto rdwr;
	}
	rc = shutdown(fd, SHUT_RD) < 0 ? -errno : 0;
	CK(&c, rc == 0, "shutdown: %s", en(rc));
	t0 = now_ms();
	n = recv(fd, rx, sizeof(rx), 0);
	t0 = now_ms() - t0;
	CK(&c, n == 0 && t0 < 500, "recv: %zd %s after %" PRId64 " ms", n, n < 0 ? en(errno) : "",
			t0);
	r = poll1(fd, POLLIN | POLLRDHUP, 1000);
	CK(&c, (r & (POLLIN | POLLRDHUP)) == (POLLIN | POLLRDHUP) && !(r & POLLHUP), "revents 0x%x",
			r);
	ck_end(&c);
	close(fd);

rdwr:
	/* Linux: POLLHUP as well (see SHUT_WR above) */
	ck_start(&c, "STREAM SHUT_RDWR: POLLIN|POLLRDHUP, no POLLOUT; recv 0; send EPIPE");
	rc = gconnect(SOCK_STREAM, GUEST_PORT, &fd);
	if (!CK(&c, rc == 0, "connect: %s", en(rc))) {
		ck_end(&c);
		return;
	}
	rc = shutdown(fd, SHUT_RDWR) < 0 ? -errno : 0;
	CK(&c, rc == 0, "shutdown: %s", en(rc));
	r = poll1(fd, POLLIN | POLLOUT | POLLRDHUP, 1000);
	CK(&c, (r & (POLLIN | POLLRDHUP)) == (POLLIN | POLLRDHUP) && !(r & POLLOUT),
			"revents 0x%x, want POLLIN|POLLRDHUP without POLLOUT", r);
	n = recv(fd, rx, sizeof(rx), 0);
	CK(&c, n == 0, "recv: %zd %s", n, n < 0 ? en(errno) : "");
	n = send(fd, "x", 1, MSG_NOSIGNAL);
	CK(&c, n < 0 && errno == EPIPE, "send: %zd %s", n, n < 0 ? en(errno) : "");
	/* shut down both ways is not closed: the socket and its port live on */
	{
		struct sockaddr_vm a;
		socklen_t len = sizeof(a);

		usleep(200000);
		rc = getsockname(fd, (struct sockaddr *)&a, &len) < 0 ? -errno : 0;
		CK(&c, rc == 0 && a.svm_port != VMADDR_PORT_ANY, "getsockname after SHUT_RDWR: %s",
				en(rc));
	}
	ck_end(&c);
	close(fd);
}

/* Fortified calls (this program is built with _FORTIFY_SOURCE=2): reads into a fixed buffer
 * with a length the compiler cannot check become __read_chk, __recv_chk and __recvfrom_chk,
 * which the shim must serve like read, recv and recvfrom. */
static void
t_fortified(void)
{
	struct ck c;
	char rx[64];
	volatile size_t len = 5; /* not a constant: the _chk variant is called */
	struct sockaddr_vm a;
	socklen_t alen = sizeof(a);
	ssize_t n1, n2, n3;
	int fd, rc;

	ck_start(&c, "fortified read/recv/recvfrom (__read_chk, __recv_chk, __recvfrom_chk)");
	rc = gconnect(SOCK_STREAM, GUEST_PORT, &fd);
	if (!CK(&c, rc == 0, "connect: %s", en(rc))) {
		ck_end(&c);
		return;
	}
	memset(rx, 0, sizeof(rx));
	send(fd, "abcdefghijklmno", 15, MSG_NOSIGNAL);
	n1 = poll1(fd, POLLIN, 5000) & POLLIN ? read(fd, rx, len) : -1;
	CK(&c, n1 == 5 && memcmp(rx, "abcde", 5) == 0, "read: %zd '%.5s'", n1, rx);
	n2 = poll1(fd, POLLIN, 5000) & POLLIN ? recv(fd, rx, len, 0) : -1;
	CK(&c, n2 == 5 && memcmp(rx, "fghij", 5) == 0, "recv: %zd '%.5s'", n2, rx);
	n3 = poll1(fd, POLLIN, 5000) & POLLIN
			     ? recvfrom(fd, rx, len, 0, (struct sockaddr *)&a, &alen)
			     : -1;
	CK(&c, n3 == 5 && memcmp(rx, "klmno", 5) == 0, "recvfrom: %zd '%.5s'", n3, rx);
	close(fd);
	ck_end(&c);
}

/* Wait for a child (at most ms), kill it if it does not end; its wait status or -1. */
static int
reap(pid_t pid, int ms)
{
	int64_t t0 = now_ms();
	int st;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return st;
		if (r < 0 && errno != EINTR)
			return -1;
		if (now_ms() - t0 > ms) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -1;
		}
		sleep_ms(20);
	}
}

static void
t_fork(void)
{
	struct ck c;
	int fd, rc, st, sync[2];
	pid_t pid;

	ck_start(&c, "fork: the child uses the inherited connection and exits, then the parent "
		     "uses it");
	rc = gconnect(SOCK_STREAM, GUEST_PORT, &fd);
	if (!CK(&c, rc == 0, "connect: %s", en(rc)))
		goto out1;
	rc = echo_rt(fd, "before-fork", 11);
	CK(&c, rc == 0, "parent before fork: %s", en(rc));
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		rc = echo_rt(fd, "child-one", 9);
		if (rc == 0)
			rc = echo_rt(fd, "child-two", 9);
		_exit(rc == 0 ? 0 : 10 + (-rc & 0xff) % 100);
	}
	CK(&c, pid > 0, "fork: %s", en(errno));
	st = pid > 0 ? reap(pid, 20000) : -1;
	CK(&c, st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
			"child: wait status 0x%x (exit 10+errno%%100 = echo failed)", st);
	rc = echo_rt(fd, "parent-after", 12);
	CK(&c, rc == 0, "parent after the child: %s", en(rc));
	close(fd);
out1:
	ck_end(&c);

	ck_start(&c, "fork: the parent closes its copy, the child continues alone (echo, "
		     "SHUT_WR, EOF)");
	rc = gconnect(SOCK_STREAM, GUEST_PORT, &fd);
	if (!CK(&c, rc == 0 && pipe2(sync, O_CLOEXEC) == 0, "connect: %s", en(rc)))
		goto out2;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		char b;
		uint8_t rx[16];

		close(sync[1]);
		if (read(sync[0], &b, 1) != 0) /* EOF: the parent has closed its copy */
			_exit(3);
		rc = echo_rt(fd, "alone-one", 9);
		if (rc == 0)
			rc = echo_rt(fd, "alone-two", 9);
		if (rc == 0 && shutdown(fd, SHUT_WR) < 0)
			rc = -errno;
		if (rc == 0) {
			rc = recv_exact(fd, rx, 1, 10000, NULL);
			rc = rc == -ENODATA ? 0 : rc == 0 ? -EPROTO : rc;
		}
		close(fd);
		_exit(rc == 0 ? 0 : 10 + (-rc & 0xff) % 100);
	}
	CK(&c, pid > 0, "fork: %s", en(errno));
	close(fd);
	close(sync[0]);
	close(sync[1]);
	st = pid > 0 ? reap(pid, 20000) : -1;
	CK(&c, st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
			"child: wait status 0x%x (exit 10+errno%%100 = echo failed)", st);
out2:
	ck_end(&c);
}

static int
echo_via(int fd, const char *tag)
{
	return echo_rt(fd, tag, strlen(tag));
}

static void
t_dup(void)
{
	char path[] = "/tmp/uvsock-checklist.XXXXXX", got[16] = "";
	struct ck c;
	int fd, d1 = -1, d2 = -1, d3 = -1, d4 = -1, d5 = -1, ffd = -1, rc, t, v;
	ssize_t n;

	rc = gconnect(SOCK_STREAM, GUEST_PORT, &fd);
	ck_start(&c, "dup: I/O through the copy and the original; the copy works after the "
		     "original is closed");
	if (!CK(&c, rc == 0, "connect: %s", en(rc))) {
		ck_end(&c);
		return;
	}
	d1 = dup(fd);
	CK(&c, d1 >= 0, "dup: %s", en(errno));
	CK(&c, d1 < 0 || fd_of(d1) == 0, "dup: F_GETFD 0x%x (FD_CLOEXEC must not be copied)",
			fd_of(d1));
	rc = send_all(d1, "via-dup", 7, 5000);
	if (rc == 0)
		rc = recv_exact(fd, got, 7, 10000, NULL);
	CK(&c, rc == 0 && memcmp(got, "via-dup", 7) == 0,
			"send on the copy, recv on the "
			"original: %s",
			en(rc));
	rc = echo_via(fd, "orig");
	CK(&c, rc == 0, "echo via the original: %s", en(rc));
	close(fd);
	rc = echo_via(d1, "after-close");
	CK(&c, rc == 0, "echo via the copy after close(original): %s", en(rc));
	ck_end(&c);

	ck_start(&c, "dup2/dup3(O_CLOEXEC)/F_DUPFD/F_DUPFD_CLOEXEC: the new fd carries the "
		     "connection, FD_CLOEXEC as asked");
	for (t = 200; t < 240; t++)
		if (fcntl(t, F_GETFD) >= 0)
			break;
	if (!CK(&c, t == 240, "fd %d in use, test needs 200..239 free", t))
		goto out1;
	d2 = dup2(d1, 200);
	CK(&c, d2 == 200 && fd_of(d2) == 0, "dup2: %d F_GETFD 0x%x", d2, fd_of(d2));
	rc = echo_via(200, "dup2");
	CK(&c, rc == 0, "echo via dup2's fd: %s", en(rc));
	d3 = dup3(d1, 201, O_CLOEXEC);
	CK(&c, d3 == 201 && fd_of(d3) == FD_CLOEXEC, "dup3: %d F_GETFD 0x%x", d3, fd_of(d3));
	rc = echo_via(201, "dup3");
	CK(&c, rc == 0, "echo via dup3's fd: %s", en(rc));
	d4 = fcntl(d1, F_DUPFD, 210);
	CK(&c, d4 == 210 && fd_of(d4) == 0, "F_DUPFD: %d F_GETFD 0x%x", d4, fd_of(d4));
	rc = d4 >= 0 ? echo_via(d4, "dupfd") : -EBADF;
	CK(&c, rc == 0, "echo via F_DUPFD's fd: %s", en(rc));
	d5 = fcntl(d1, F_DUPFD_CLOEXEC, 220);
	CK(&c, d5 == 220 && fd_of(d5) == FD_CLOEXEC, "F_DUPFD_CLOEXEC: %d F_GETFD 0x%x", d5,
			fd_of(d5));
	rc = d5 >= 0 ? echo_via(d5, "dupfd-cloexec") : -EBADF;
	CK(&c, rc == 0, "echo via F_DUPFD_CLOEXEC's fd: %s", en(rc));
out1:
	ck_end(&c);

	ck_start(&c, "dup3(fd, fd, 0) gives EINVAL; dup2(fd, fd) returns fd, which still works");
	rc = dup3(d1, d1, 0);
	v = errno;
	CK(&c, rc == -1 && v == EINVAL, "dup3: %d %s", rc, rc < 0 ? en(v) : "");
	rc = dup2(d1, d1);
	CK(&c, rc == d1, "dup2(%d, %d): %d %s", d1, d1, rc, rc < 0 ? en(errno) : "");
	rc = echo_via(d1, "same");
	CK(&c, rc == 0, "echo after dup2(fd, fd): %s", en(rc));
	ck_end(&c);

	ck_start(&c, "dup2(regular file, vsock fd): the number becomes the file (write lands in "
		     "it, send gives ENOTSOCK); the other copies stay sockets");
	ffd = mkstemp(path);
	if (!CK(&c, ffd >= 0 && d2 == 200, "mkstemp: %s (or no dup2 copy)", en(errno)))
		goto out2;
	rc = dup2(ffd, 200);
	CK(&c, rc == 200, "dup2(file, 200): %d %s", rc, rc < 0 ? en(errno) : "");
	n = write(200, "plainfile", 9);
	CK(&c, n == 9, "write(200): %zd %s", n, n < 0 ? en(errno) : "");
	n = send(200, "x", 1, MSG_NOSIGNAL);
	CK(&c, n < 0 && errno == ENOTSOCK, "send(200): %zd %s, want ENOTSOCK", n,
			n < 0 ? en(errno) : "");
	{
		char back[32] = "";
		int rfd = open(path, O_RDONLY | O_CLOEXEC);

		n = rfd >= 0 ? read(rfd, back, sizeof(back)) : -1;
		CK(&c, n == 9 && memcmp(back, "plainfile", 9) == 0, "file holds %zd bytes '%.*s'",
				n, n > 0 ? (int)n : 0, back);
		if (rfd >= 0)
			close(rfd);
	}
	rc = echo_via(d1, "still-a-socket");
	CK(&c, rc == 0, "echo via %d after dup2 over 200: %s", d1, en(rc));
	close(200);
	d2 = -1;
	close(ffd);
	unlink(path);
out2:
	ck_end(&c);
	if (d1 >= 0)
		close(d1);
	if (d2 >= 0)
		close(d2);
	if (d3 >= 0)
		close(d3);
	if (d4 >= 0)
		close(d4);
	if (d5 >= 0)
		close(d5);
}

struct blocked {
	int fd;
	volatile int done;
	ssize_t rc;
	int err;
};

static void *
blocked_recv(void *arg)
{
	struct blocked *b = arg;
	char buf[64];

	b->rc = recv(b->fd, buf, sizeof(buf), 0);
	b->err = errno;
	__atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void
t_close_while_recv(void)
{
	struct blocked b = { .fd = -1 };
	struct ck c;
	pthread_t t;
	int rc, fd, before;
	int64_t t0;

	ck_start(&c, "threads: close() while another thread is blocked in recv: no crash, recv "
		     "stays blocked; a signal (no SA_RESTART) then ends it with EINTR");
	rc = gconnect(SOCK_STREAM, GUEST_PORT, &fd);
	if (!CK(&c, rc == 0, "connect: %s", en(rc)))
		goto out;
	b.fd = fd;
	pthread_create(&t, NULL, blocked_recv, &b);
	sleep_ms(300);
	CK(&c, !b.done, "recv returned before close: %zd %s", b.rc, en(b.err));
	rc = close(fd) < 0 ? -errno : 0;
	CK(&c, rc == 0, "close: %s", en(rc));
	sleep_ms(300);
	CK(&c, !b.done, "recv returned %zd %s on close (Linux keeps it blocked)", b.rc, en(b.err));
	before = g_usr1;
	t0 = now_ms();
	while (!__atomic_load_n(&b.done, __ATOMIC_ACQUIRE) && now_ms() - t0 < 2000) {
		if (g_usr1 == before)
			pthread_kill(t, SIGUSR1);
		sleep_ms(20);
	}
	if (CK(&c, __atomic_load_n(&b.done, __ATOMIC_ACQUIRE),
			    "recv still blocked 2 s after the signal (handler ran %d times)",
			    g_usr1 - before)) {
		pthread_join(t, NULL);
		CK(&c, b.rc < 0 && b.err == EINTR, "recv: %zd %s, want EINTR", b.rc,
				b.rc < 0 ? en(b.err) : "");
	} else {
		pthread_detach(t);
	}
out:
	ck_end(&c);
}

/* ---------------------------------------------------------------------------------------- */

static void
guest_cmd(void)
{
	printf("concurrent port=%u n=%u; concurrent port=%u n=%u; listen port=%u n=%u gone=0 "
	       "timeout=120\n",
			HOST_PORT_A, HOST_N_A, HOST_PORT_B, HOST_N_B, GUEST_PORT, GUEST_CONNS);
}

int
main(int argc, char **argv)
{
	struct acc_shared sh;
	struct acc_thr thr[2];
	struct srv srv;
	pthread_t wd;
	char why[300];
	int la, lb, fd, rc, i;
	int64_t t_start = now_ms();

	if (!shim_loaded(why, sizeof(why))) {
		fprintf(stderr,
				"uvsock-checklist: refusing to run without the uvsock shim (%s). Run "
				"it as LD_PRELOAD=.../libuvsock-preload.so %s: it must never use "
				"the kernel's AF_VSOCK.\n",
				why, argv[0]);
		return 2;
	}
	if (argc > 1 && strcmp(argv[1], "--guest-cmd") == 0) {
		guest_cmd();
		return 0;
	}
	if (argc > 1)
		g_cid = (unsigned int)strtoul(argv[1], NULL, 0);
	setvbuf(stdout, NULL, _IOLBF, 0);
	g_main = pthread_self();
	handlers();
	pthread_create(&wd, NULL, watchdog, NULL);
	pthread_detach(wd);

	/* listeners first: the guest's first scenario connects right after boot */
	la = mk_listener(HOST_PORT_A, SOCK_NONBLOCK);
	lb = mk_listener(HOST_PORT_B, 0);
	if (la < 0 || lb < 0) {
		printf("FAIL: listen on %u and %u: %s %s\n", HOST_PORT_A, HOST_PORT_B, en(la),
				en(lb));
		printf("0 passed, 1 failed\n");
		return 1;
	}
	rc = srv_start(&srv);
	if (rc < 0) {
		printf("FAIL: epoll server: %s\n0 passed, 1 failed\n", en(rc));
		return 1;
	}
	memset(&sh, 0, sizeof(sh));
	memset(thr, 0, sizeof(thr));
	pthread_mutex_init(&sh.lock, NULL);
	sh.lfd = lb;
	sh.srv = &srv;
	for (i = 0; i < 2; i++) {
		thr[i].sh = &sh;
		pthread_create(&thr[i].t, NULL, acc_thread, &thr[i]);
	}
	printf("# listening on %u and %u (guest CID %u)\n", HOST_PORT_A, HOST_PORT_B, g_cid);

	t_local_opts(SOCK_STREAM, "STREAM");
	t_local_opts(SOCK_SEQPACKET, "SEQPACKET");
	t_lowest_fd();
	t_server(&srv, &sh, thr, la);
	{
		int stop = -1;

		if (write(srv.pfd[1], &stop, sizeof(stop)) == sizeof(stop))
			pthread_join(srv.t, NULL);
	}
	close(la);
	close(lb);

	/* the guest's echo server: SEQPACKET on 7001 is the last one it opens */
	g_current = "connecting to the guest's echo server";
	rc = gconnect_retry(SOCK_SEQPACKET, GUEST_PORT + 1, 60000, &fd);
	if (rc < 0) {
		printf("FAIL: connect to the guest's echo server %u:%u: %s\n", g_cid,
				GUEST_PORT + 1, en(rc));
		g_fail++;
	} else {
		t_seqpacket(fd);
		close(fd);
		t_connect_nobody();
		fd = t_nb_connect();
		if (fd >= 0) {
			t_stream_io(fd);
			t_signals(fd);
			close(fd);
		}
		t_pollout();
		t_shutdown();
		t_fork();
		t_dup();
		t_close_while_recv();
		t_fortified();
	}
	/* the guest's listen scenario expects exactly GUEST_CONNS connections */
	g_current = "padding the guest's connection count";
	if (g_guest_conns > GUEST_CONNS) {
		printf("FAIL: internal: %u connections to the guest, GUEST_CONNS is %u\n",
				g_guest_conns, GUEST_CONNS);
		g_fail++;
	}
	while (rc == 0 && g_guest_conns < GUEST_CONNS) {
		int pad;

		if (gconnect(SOCK_STREAM, GUEST_PORT, &pad) < 0)
			break;
		close(pad);
	}
	printf("# %u connections to the guest, %" PRId64 " ms\n", g_guest_conns,
			now_ms() - t_start);
	printf("%d passed, %d failed\n", g_pass, g_fail);
	fflush(stdout);
	return g_fail > 125 ? 125 : g_fail;
}
