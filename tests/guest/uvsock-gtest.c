/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * uvsock-gtest: guest-side test program for the uvsock real-guest tests.
 *
 * Runs inside a small Linux guest (static binary in a busybox initramfs) and exercises the
 * kernel's AF_VSOCK against whatever is on the other side: the uvsockd device and the host test
 * programs (default peer CID 2), or this program's own servers over vsock_loopback (CID 1).
 *
 *   uvsock-gtest SCENARIO [key=value...]
 *   uvsock-gtest run "SCENARIO [key=value...]; SCENARIO ...; ..."
 *   uvsock-gtest help
 *
 * Every scenario prints exactly one line "UVT RESULT <name> PASS|FAIL <detail>"; "run" ends with
 * "UVT DONE pass=N fail=M". Each scenario runs in a child process that the parent kills at its
 * deadline (timeout=S, default 60 s), and every socket carries SO_RCVTIMEO/SO_SNDTIMEO, so nothing
 * waits forever. Internal functions return 0 or a negative errno.
 *
 * Build: gcc -static -O2 -pthread -Wall -Wextra -o uvsock-gtest uvsock-gtest.c
 * The host-side contracts of every scenario are in tests/guest/README.md.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/vm_sockets.h>
#include <stdbool.h>

#define UVT_DEFAULT_CID 2u
#define UVT_DEFAULT_TIMEOUT_S 60u
#define UVT_SELFTEST_TIMEOUT_S 300u
#define UVT_RCVTIMEO_MS 2000	     /* recv loops wake up this often to check the deadline */
#define UVT_STALL_MS 20000	     /* no progress at all for this long: fail */
#define UVT_CONNECT_TIMEOUT_MS 10000 /* SO_VM_SOCKETS_CONNECT_TIMEOUT for normal connects */
#define UVT_ISOLATE_CONNECT_MS 2000  /* Linux default connect timeout */
#define UVT_ISOLATE_WITHIN_MS 6000   /* "fails within a few seconds" */
#define UVT_BUF_SIZE (256u * 1024u)  /* SO_VM_SOCKETS_BUFFER_SIZE used everywhere */
#define UVT_SEQ_MAX UVT_BUF_SIZE     /* largest SEQPACKET message (peer buf_alloc) */
#define UVT_CHUNK 65536u
#define UVT_MAX_SIZES 32
#define UVT_MAX_ARGS 32
#define UVT_MAX_CONNS 1024
#define UVT_PATTERN_MOD 251u /* writer/sink payload: byte i = i % 251 */
#define UVT_DETAIL_LEN 480

/* Default ports (documented in README.md). */
#define UVT_PORT_ECHO 5000u /* host echo: STREAM here, SEQPACKET on +1 */
#define UVT_PORT_SEQ 5001u
#define UVT_PORT_WRITER 5002u  /* host-eof writer */
#define UVT_PORT_SINK 5003u    /* slow-reader sink */
#define UVT_PORT_SEQSINK 5004u /* seq-credit: slow SEQPACKET reader */
#define UVT_PORT_NOBODY 5999u  /* nobody listens */
#define UVT_PORT_LISTEN 6000u  /* guest-side echo server (listen scenario) */
#define UVT_ST_PORT 7000u      /* selftest: echo on 7000/7001, writer 7002, sink 7003 */
#define UVT_ST_NOBODY 7999u
#define UVT_ST_PAUSE_MS 2000u
#define UVT_ST_WRITER_BYTES (1024u * 1024u)

struct uvt_args {
	unsigned int cid;
	unsigned int port;
	unsigned int n;
	uint64_t bytes;
	uint64_t expect;
	int has_expect;
	int has_cid;
	unsigned int timeout_s;
	uint64_t min_bytes;
	uint64_t max_bytes;
	size_t sizes[UVT_MAX_SIZES];
	unsigned int nsizes;
	int quiet;
	unsigned int gone; /* listen: connections whose host peer is expected to vanish */
};

/* Outcome of one scenario (or of one server thread): the first failure wins. */
struct uvt_res {
	pthread_mutex_t lock;
	int rc;
	char detail[UVT_DETAIL_LEN];
};

struct uvt_scenario {
	const char *name;
	int (*fn)(const struct uvt_args *a, struct uvt_res *r);
	unsigned int def_port;
	const char *keys; /* accepted keys, space separated */
	const char *help;
};

static int64_t g_deadline_ms; /* CLOCK_MONOTONIC, per scenario process */
static int64_t g_stop_ms;     /* selftest: servers stop waiting for connections after this */

/* ---------------------------------------------------------------------------------------- */
/* small helpers */

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
left_ms(void)
{
	return g_deadline_ms - now_ms();
}

/* Time left to wait for new connections (the deadline, or the selftest's stop time). */
static int64_t
accept_left_ms(void)
{
	int64_t stop = __atomic_load_n(&g_stop_ms, __ATOMIC_ACQUIRE);
	int64_t l = left_ms();

	if (stop != 0 && stop - now_ms() < l)
		l = stop - now_ms();
	return l;
}

static const char *
errname(int e)
{
	const char *s;

	if (e < 0)
		e = -e;
	s = strerrorname_np(e);
	return s != NULL ? s : "E?";
}

static void
res_init(struct uvt_res *r)
{
	pthread_mutex_init(&r->lock, NULL);
	r->rc = 0;
	r->detail[0] = '\0';
}

static void
res_vset(struct uvt_res *r, int rc, const char *fmt, va_list ap)
{
	pthread_mutex_lock(&r->lock);
	if (r->rc == 0) {
		vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
		r->rc = rc;
	}
	pthread_mutex_unlock(&r->lock);
}

static int fail(struct uvt_res *r, int rc, const char *fmt, ...)
		__attribute__((format(printf, 3, 4)));
static void pass(struct uvt_res *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Record a failure (first one wins) and return rc, which is a negative errno. */
static int
fail(struct uvt_res *r, int rc, const char *fmt, ...)
{
	va_list ap;

	if (rc >= 0)
		rc = -EPROTO;
	va_start(ap, fmt);
	res_vset(r, rc, fmt, ap);
	va_end(ap);
	return rc;
}

/* Set the pass detail (only if no failure was recorded). */
static void
pass(struct uvt_res *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	res_vset(r, 0, fmt, ap);
	va_end(ap);
}

static uint64_t
splitmix64(uint64_t x)
{
	uint64_t z = x + 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Pseudo-random stream: byte at offset off depends only on (seed, off). */
static void
gen_fill(uint64_t seed, uint64_t off, uint8_t *buf, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint64_t pos = off + i;
		uint64_t w = splitmix64(seed * 0x100000001b3ull + (pos >> 3));
		unsigned int b;

		for (b = pos & 7; b < 8 && i < len; b++, i++)
			buf[i] = (uint8_t)(w >> (b * 8));
	}
}

/* Host contract payload for writer/sink: byte at stream offset i is i % 251. */
static void
pattern_fill(uint64_t off, uint8_t *buf, size_t len)
{
	unsigned int v = off % UVT_PATTERN_MOD;
	size_t i;

	for (i = 0; i < len; i++) {
		buf[i] = (uint8_t)v;
		if (++v == UVT_PATTERN_MOD)
			v = 0;
	}
}

/* Offset of the first byte that breaks the pattern, or -1. */
static int64_t
pattern_check(uint64_t off, const uint8_t *buf, size_t len)
{
	unsigned int v = off % UVT_PATTERN_MOD;
	size_t i;

	for (i = 0; i < len; i++) {
		if (buf[i] != v)
			return (int64_t)(off + i);
		if (++v == UVT_PATTERN_MOD)
			v = 0;
	}
	return -1;
}

static uint64_t
fnv1a64(uint64_t h, const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

#define FNV_INIT 0xcbf29ce484222325ull

/* Running kernel version >= major.minor (unparsable: assume new). */
static int
kernel_at_least(unsigned int major, unsigned int minor)
{
	unsigned int ma = 0, mi = 0;
	struct utsname u;

	if (uname(&u) < 0 || sscanf(u.release, "%u.%u", &ma, &mi) != 2)
		return 1;
	return ma > major || (ma == major && mi >= minor);
}

static void *
xmalloc(size_t len)
{
	void *p = malloc(len);

	if (p == NULL) {
		fprintf(stderr, "uvsock-gtest: out of memory (%zu bytes)\n", len);
		_exit(3);
	}
	return p;
}

/* ---------------------------------------------------------------------------------------- */
/* socket helpers */

static struct timeval
ms_to_tv(int64_t ms)
{
	struct timeval tv;

	if (ms < 1)
		ms = 1;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return tv;
}

/*
 * SO_RCVTIMEO is short: every recv loop retries EAGAIN until the scenario deadline, which keeps
 * the deadline exact. SO_SNDTIMEO is the whole remaining time: a SEQPACKET send must not be
 * retried after a timeout (see seq_send()).
 */
static int
set_timeouts(int fd)
{
	int64_t l = left_ms();
	struct timeval rcv = ms_to_tv(l < UVT_RCVTIMEO_MS ? l : UVT_RCVTIMEO_MS);
	struct timeval snd = ms_to_tv(l);

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof(rcv)) < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof(snd)) < 0)
		return -errno;
	return 0;
}

/* Set SO_VM_SOCKETS_BUFFER_SIZE (raising the max first) and read it back. */
static int
set_vsock_buf(int fd, uint64_t size)
{
	uint64_t v = size;
	socklen_t len = sizeof(v);

	if (setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_MAX_SIZE, &v, sizeof(v)) < 0)
		return -errno;
	if (setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &v, sizeof(v)) < 0)
		return -errno;
	v = 0;
	if (getsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &v, &len) < 0)
		return -errno;
	if (v != size)
		return -ERANGE;
	return 0;
}

static int
set_connect_timeout(int fd, unsigned int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	if (setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv, sizeof(tv)) < 0)
		return -errno;
	return 0;
}

static const char *
type_name(int type)
{
	return type == SOCK_STREAM ? "STREAM" : type == SOCK_SEQPACKET ? "SEQPACKET" : "?";
}

/* Blocking connect with a connect timeout; *fdp gets the socket. */
static int
vs_connect(int type, unsigned int cid, unsigned int port, unsigned int tmo_ms, int *fdp)
{
	struct sockaddr_vm sa;
	int fd, rc;

	memset(&sa, 0, sizeof(sa));
	sa.svm_family = AF_VSOCK;
	sa.svm_cid = cid;
	sa.svm_port = port;
	fd = socket(AF_VSOCK, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = set_connect_timeout(fd, tmo_ms);
	if (rc == 0)
		rc = set_vsock_buf(fd, UVT_BUF_SIZE);
	if (rc == 0)
		rc = set_timeouts(fd);
	if (rc == 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		rc = -errno;
	if (rc < 0) {
		close(fd);
		return rc;
	}
	*fdp = fd;
	return 0;
}

static int
vs_listen(int type, unsigned int port, int *fdp)
{
	struct sockaddr_vm sa;
	int fd, rc = 0;

	memset(&sa, 0, sizeof(sa));
	sa.svm_family = AF_VSOCK;
	sa.svm_cid = VMADDR_CID_ANY;
	sa.svm_port = port;
	fd = socket(AF_VSOCK, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = set_vsock_buf(fd, UVT_BUF_SIZE);
	if (rc == 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		rc = -errno;
	if (rc == 0 && listen(fd, 128) < 0)
		rc = -errno;
	if (rc < 0) {
		close(fd);
		return rc;
	}
	*fdp = fd;
	return 0;
}

/* Wait for one connection on lfd until the scenario deadline. */
static int
vs_accept(int lfd, int *fdp)
{
	struct pollfd pfd = { .fd = lfd, .events = POLLIN };
	int fd, r;

	for (;;) {
		int64_t l = accept_left_ms();

		if (l <= 0)
			return -ETIMEDOUT;
		r = poll(&pfd, 1, l > 1000 ? 1000 : (int)l);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r <= 0)
			continue;
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		r = set_timeouts(fd);
		if (r < 0) {
			close(fd);
			return r;
		}
		*fdp = fd;
		return 0;
	}
}

/* Send everything (blocking socket with SO_SNDTIMEO); retries until the deadline. */
static int
send_all(int fd, const void *buf, size_t len, int flags)
{
	const uint8_t *p = buf;
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(fd, p + off, len - off, flags | MSG_NOSIGNAL);

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n == 0)
			return -EIO;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN && left_ms() > 0)
			continue;
		return errno == EAGAIN ? -ETIMEDOUT : -errno;
	}
	return 0;
}

/*
 * Send one SEQPACKET message. No retry after EAGAIN (SO_SNDTIMEO): Linux may already have sent
 * pieces of the message without EOM, so a retry would glue two messages together.
 */
static ssize_t
seq_send(int fd, const void *buf, size_t len, int eor)
{
	ssize_t n;

	do {
		n = send(fd, buf, len, MSG_NOSIGNAL | (eor ? MSG_EOR : 0));
	} while (n < 0 && errno == EINTR);
	return n;
}

/* Receive exactly len bytes; *got is what arrived (EOF early gives -ENODATA). */
static int
recv_exact(int fd, void *buf, size_t len, size_t *got)
{
	uint8_t *p = buf;
	size_t off = 0;
	int rc = 0;

	while (off < len) {
		ssize_t n = recv(fd, p + off, len - off, 0);

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n == 0) {
			rc = -ENODATA;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN && left_ms() > 0)
			continue;
		rc = errno == EAGAIN ? -ETIMEDOUT : -errno;
		break;
	}
	if (got != NULL)
		*got = off;
	return rc;
}

/* Expect end of stream: recv returns 0. Data instead of EOF gives -EPROTO. */
static int
recv_eof(int fd, size_t *extra)
{
	uint8_t b[256];

	*extra = 0;
	for (;;) {
		ssize_t n = recv(fd, b, sizeof(b), 0);

		if (n == 0)
			return *extra == 0 ? 0 : -EPROTO;
		if (n > 0) {
			*extra += (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN && left_ms() > 0)
			continue;
		return errno == EAGAIN ? -ETIMEDOUT : -errno;
	}
}

/* ---------------------------------------------------------------------------------------- */
/* echo pump: stream len pseudo-random bytes out while checking the echo as it comes back */

struct pump {
	uint64_t seed;
	uint64_t len;
	uint64_t sent;
	uint64_t rcvd;
	uint64_t fnv_tx;
	uint64_t fnv_rx;
	int64_t mismatch; /* first differing offset, -1 if none */
};

static int
pump_echo(int fd, struct pump *p, struct uvt_res *r, const char *what)
{
	uint8_t *txb = xmalloc(UVT_CHUNK), *rxb = xmalloc(UVT_CHUNK), *exp = xmalloc(UVT_CHUNK);
	size_t txoff = 0, txfill = 0;
	int64_t last = now_ms();
	int rc = 0;

	p->sent = p->rcvd = 0;
	p->fnv_tx = p->fnv_rx = FNV_INIT;
	p->mismatch = -1;
	while (p->rcvd < p->len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int64_t to = UVT_STALL_MS - (now_ms() - last);
		ssize_t n;
		int pr;

		if (p->sent < p->len)
			pfd.events |= POLLOUT;
		if (left_ms() < to)
			to = left_ms();
		if (to <= 0) {
			rc = fail(r, -ETIMEDOUT,
					"%s: stalled (%s) sent=%" PRIu64 " rcvd=%" PRIu64
					" of %" PRIu64,
					what, left_ms() <= 0 ? "deadline" : "no progress", p->sent,
					p->rcvd, p->len);
			break;
		}
		pr = poll(&pfd, 1, (int)to);
		if (pr < 0 && errno != EINTR) {
			rc = fail(r, -errno, "%s: poll: %s", what, errname(errno));
			break;
		}
		if (pr <= 0)
			continue;
		if (pfd.revents & (POLLIN | POLLERR | POLLHUP)) {
			size_t want = p->len - p->rcvd < UVT_CHUNK ? p->len - p->rcvd : UVT_CHUNK;

			n = recv(fd, rxb, want, MSG_DONTWAIT);
			if (n > 0) {
				gen_fill(p->seed, p->rcvd, exp, (size_t)n);
				if (p->mismatch < 0 && memcmp(rxb, exp, (size_t)n) != 0) {
					ssize_t i = 0;

					while (rxb[i] == exp[i])
						i++;
					p->mismatch = (int64_t)(p->rcvd + i);
				}
				p->fnv_rx = fnv1a64(p->fnv_rx, rxb, (size_t)n);
				p->rcvd += (uint64_t)n;
				last = now_ms();
			} else if (n == 0) {
				rc = fail(r, -ECONNRESET,
						"%s: EOF after %" PRIu64 " of %" PRIu64
						" echoed bytes",
						what, p->rcvd, p->len);
				break;
			} else if (errno != EAGAIN && errno != EINTR) {
				rc = fail(r, -errno, "%s: recv: %s after %" PRIu64 " bytes", what,
						errname(errno), p->rcvd);
				break;
			}
		}
		if (p->sent < p->len && (pfd.revents & POLLOUT)) {
			if (txoff == txfill) {
				uint64_t rest = p->len - p->sent;

				txfill = rest < UVT_CHUNK ? (size_t)rest : UVT_CHUNK;
				gen_fill(p->seed, p->sent, txb, txfill);
				txoff = 0;
			}
			n = send(fd, txb + txoff, txfill - txoff, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n > 0) {
				p->fnv_tx = fnv1a64(p->fnv_tx, txb + txoff, (size_t)n);
				txoff += (size_t)n;
				p->sent += (uint64_t)n;
				last = now_ms();
			} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
				rc = fail(r, -errno, "%s: send: %s after %" PRIu64 " bytes", what,
						errname(errno), p->sent);
				break;
			}
		}
	}
	if (rc == 0 && p->mismatch >= 0)
		rc = fail(r, -EILSEQ, "%s: echo differs at offset %" PRId64 " of %" PRIu64, what,
				p->mismatch, p->len);
	if (rc == 0 && p->fnv_tx != p->fnv_rx)
		rc = fail(r, -EILSEQ, "%s: checksum tx %016" PRIx64 " rx %016" PRIx64, what,
				p->fnv_tx, p->fnv_rx);
	free(txb);
	free(rxb);
	free(exp);
	return rc;
}

/* After a complete echo nothing more may be queued. */
static int
expect_no_more(int fd, struct uvt_res *r, const char *what)
{
	uint8_t b[64];
	ssize_t n = recv(fd, b, sizeof(b), MSG_DONTWAIT);

	if (n > 0)
		return fail(r, -EPROTO, "%s: %zd unexpected extra bytes after the echo", what, n);
	if (n == 0)
		return fail(r, -ECONNRESET, "%s: unexpected EOF after the echo", what);
	if (errno != EAGAIN)
		return fail(r, -errno, "%s: recv after echo: %s", what, errname(errno));
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* echo server (scenario "listen"; also the selftest's peer) */

struct echo_srv {
	unsigned int port; /* STREAM; SEQPACKET on port + 1 */
	unsigned int n;	   /* connections to serve in total */
	int quiet;
	struct uvt_res res;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned int accepted;
	unsigned int finished;
	unsigned int n_stream;
	unsigned int n_seq;
	uint64_t bytes;
	uint64_t msgs;
	unsigned int gone_ok; /* at most this many may end with the peer gone (EPIPE/ECONNRESET) */
	unsigned int gone;    /* connections that did */
	int ready;	      /* 1 listening, -1 failed to listen */
};

struct echo_conn {
	struct echo_srv *srv;
	int fd;
	int type;
	unsigned int idx;
};

/* A host program that dies leaves its connection closed under us (SHUTDOWN then RST):
 * sends fail with EPIPE. Count it when the scenario was told to expect that. */
static bool
peer_gone(struct echo_conn *c, int rc)
{
	bool ok;

	if (rc != -EPIPE && rc != -ECONNRESET)
		return false;
	pthread_mutex_lock(&c->srv->lock);
	ok = c->srv->gone < c->srv->gone_ok;
	if (ok)
		c->srv->gone++;
	pthread_mutex_unlock(&c->srv->lock);
	return ok;
}

static int
echo_stream(struct echo_conn *c, uint64_t *bytes)
{
	uint8_t *buf = xmalloc(UVT_CHUNK);
	int rc = 0;

	for (;;) {
		ssize_t n = recv(c->fd, buf, UVT_CHUNK, 0);

		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR || (errno == EAGAIN && left_ms() > 0))
				continue;
			rc = fail(&c->srv->res, errno == EAGAIN ? -ETIMEDOUT : -errno,
					"echo STREAM conn %u: recv %s after %" PRIu64 " bytes",
					c->idx, errname(errno), *bytes);
			break;
		}
		rc = send_all(c->fd, buf, (size_t)n, 0);
		if (rc < 0 && peer_gone(c, rc))
			break;
		if (rc < 0) {
			fail(&c->srv->res, rc,
					"echo STREAM conn %u: send %s after %" PRIu64 " bytes",
					c->idx, errname(rc), *bytes);
			break;
		}
		*bytes += (uint64_t)n;
	}
	free(buf);
	return rc;
}

static int
echo_seq(struct echo_conn *c, uint64_t *bytes, uint64_t *msgs)
{
	size_t cap = UVT_SEQ_MAX + 4096;
	uint8_t *buf = xmalloc(cap);
	int rc = 0;

	for (;;) {
		struct iovec iov = { .iov_base = buf, .iov_len = cap };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n = recvmsg(c->fd, &mh, 0), s;

		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR || (errno == EAGAIN && left_ms() > 0))
				continue;
			rc = fail(&c->srv->res, errno == EAGAIN ? -ETIMEDOUT : -errno,
					"echo SEQPACKET conn %u: recvmsg %s after %" PRIu64 " msgs",
					c->idx, errname(errno), *msgs);
			break;
		}
		if (mh.msg_flags & MSG_TRUNC) {
			rc = fail(&c->srv->res, -EMSGSIZE,
					"echo SEQPACKET conn %u: message > %zu "
					"bytes truncated",
					c->idx, cap);
			break;
		}
		s = seq_send(c->fd, buf, (size_t)n, !!(mh.msg_flags & MSG_EOR));
		if (s != n) {
			rc = fail(&c->srv->res, s < 0 ? -errno : -EIO,
					"echo SEQPACKET conn %u: "
					"send of %zd bytes: %s",
					c->idx, n, s < 0 ? errname(errno) : "short");
			break;
		}
		*bytes += (uint64_t)n;
		(*msgs)++;
	}
	free(buf);
	return rc;
}

static void *
echo_conn_thread(void *arg)
{
	struct echo_conn *c = arg;
	struct echo_srv *srv = c->srv;
	uint64_t bytes = 0, msgs = 0;

	if (c->type == SOCK_STREAM)
		echo_stream(c, &bytes);
	else
		echo_seq(c, &bytes, &msgs);
	close(c->fd); /* contract: close when the peer sent EOF */
	pthread_mutex_lock(&srv->lock);
	srv->finished++;
	srv->bytes += bytes;
	srv->msgs += msgs;
	pthread_cond_broadcast(&srv->cond);
	pthread_mutex_unlock(&srv->lock);
	free(c);
	return NULL;
}

static int
echo_srv_spawn(struct echo_srv *srv, int fd, int type)
{
	struct echo_conn *c = xmalloc(sizeof(*c));
	pthread_attr_t at;
	pthread_t t;
	int rc;

	c->srv = srv;
	c->fd = fd;
	c->type = type;
	pthread_mutex_lock(&srv->lock);
	c->idx = srv->accepted++;
	if (type == SOCK_STREAM)
		srv->n_stream++;
	else
		srv->n_seq++;
	pthread_mutex_unlock(&srv->lock);
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 256 * 1024);
	rc = -pthread_create(&t, &at, echo_conn_thread, c);
	pthread_attr_destroy(&at);
	if (rc < 0) {
		close(fd);
		free(c);
		pthread_mutex_lock(&srv->lock);
		srv->finished++;
		pthread_mutex_unlock(&srv->lock);
		return fail(&srv->res, rc, "pthread_create: %s", errname(rc));
	}
	return 0;
}

static void
echo_srv_set_ready(struct echo_srv *srv, int v)
{
	pthread_mutex_lock(&srv->lock);
	srv->ready = v;
	pthread_cond_broadcast(&srv->cond);
	pthread_mutex_unlock(&srv->lock);
}

/* Serve srv->n connections (STREAM on port, SEQPACKET on port + 1), then wait for them. */
static int
echo_srv_run(struct echo_srv *srv)
{
	int lfd[2] = { -1, -1 };
	int types[2] = { SOCK_STREAM, SOCK_SEQPACKET };
	int rc, i;

	for (i = 0; i < 2; i++) {
		rc = vs_listen(types[i], srv->port + i, &lfd[i]);
		if (rc < 0) {
			fail(&srv->res, rc, "listen %s port %u: %s", type_name(types[i]),
					srv->port + i, errname(rc));
			goto out;
		}
	}
	if (!srv->quiet) {
		printf("UVT READY listen %u\n", srv->port);
		fflush(stdout);
	}
	echo_srv_set_ready(srv, 1);
	while (srv->accepted < srv->n && srv->res.rc == 0) {
		struct pollfd pfd[2] = {
			{ .fd = lfd[0], .events = POLLIN },
			{ .fd = lfd[1], .events = POLLIN },
		};
		int64_t l = accept_left_ms();
		int pr;

		if (l <= 0) {
			rc = fail(&srv->res, -ETIMEDOUT,
					"only %u of %u connections arrived before "
					"the deadline",
					srv->accepted, srv->n);
			goto out;
		}
		pr = poll(pfd, 2, l > 1000 ? 1000 : (int)l);
		if (pr < 0 && errno != EINTR) {
			rc = fail(&srv->res, -errno, "poll: %s", errname(errno));
			goto out;
		}
		for (i = 0; pr > 0 && i < 2 && srv->accepted < srv->n; i++) {
			int fd;

			if (!(pfd[i].revents & POLLIN))
				continue;
			fd = accept4(lfd[i], NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0) {
				if (errno == EAGAIN || errno == EINTR)
					continue;
				rc = fail(&srv->res, -errno, "accept %s: %s", type_name(types[i]),
						errname(errno));
				goto out;
			}
			rc = set_timeouts(fd);
			if (rc == 0)
				rc = echo_srv_spawn(srv, fd, types[i]);
			else
				close(fd);
			if (rc < 0)
				goto out;
		}
	}
out:
	for (i = 0; i < 2; i++)
		if (lfd[i] >= 0)
			close(lfd[i]);
	if (srv->ready == 0)
		echo_srv_set_ready(srv, -1);
	/* Wait for the accepted connections to finish (their sockets time out at the deadline). */
	pthread_mutex_lock(&srv->lock);
	while (srv->finished < srv->accepted) {
		struct timespec ts;
		int64_t l = left_ms();

		if (l <= -2000)
			break;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&srv->cond, &srv->lock, &ts);
	}
	pthread_mutex_unlock(&srv->lock);
	if (srv->finished < srv->accepted)
		fail(&srv->res, -ETIMEDOUT, "%u of %u connections still open at the deadline",
				srv->accepted - srv->finished, srv->accepted);
	if (srv->res.rc == 0 && srv->accepted != srv->n)
		fail(&srv->res, -EPROTO, "served %u of %u connections", srv->accepted, srv->n);
	pass(&srv->res,
			"conns=%u stream=%u seqpacket=%u bytes=%" PRIu64 " msgs=%" PRIu64
			" gone=%u",
			srv->accepted, srv->n_stream, srv->n_seq, srv->bytes, srv->msgs, srv->gone);
	return srv->res.rc;
}

static void
echo_srv_init(struct echo_srv *srv, unsigned int port, unsigned int n, int quiet)
{
	memset(srv, 0, sizeof(*srv));
	srv->port = port;
	srv->n = n;
	srv->quiet = quiet;
	res_init(&srv->res);
	pthread_mutex_init(&srv->lock, NULL);
	pthread_cond_init(&srv->cond, NULL);
}

/* ---------------------------------------------------------------------------------------- */
/* scenarios */

static int
sc_stream_echo(const struct uvt_args *a, struct uvt_res *r)
{
	uint64_t total = 0;
	int fd, rc;
	unsigned int i;

	rc = vs_connect(SOCK_STREAM, a->cid, a->port, UVT_CONNECT_TIMEOUT_MS, &fd);
	if (rc < 0)
		return fail(r, rc, "connect STREAM %u:%u: %s", a->cid, a->port, errname(rc));
	for (i = 0; i < a->nsizes; i++) {
		struct pump p = { .seed = 0x5e00 + i, .len = a->sizes[i] };
		char what[48];

		snprintf(what, sizeof(what), "size %zu", a->sizes[i]);
		rc = pump_echo(fd, &p, r, what);
		if (rc < 0)
			break;
		total += p.len;
	}
	if (rc == 0)
		rc = expect_no_more(fd, r, "stream-echo");
	close(fd);
	if (rc == 0)
		pass(r, "%u sizes, %" PRIu64 " bytes echoed byte-exact", a->nsizes, total);
	return rc;
}

struct seq_ctx {
	int fd;
	uint8_t *tx;
	uint8_t *rx;
	size_t rxcap;
	struct uvt_res *r;
};

/* Send one message and check its echo: one message, same length, bytes, EOR iff sent. */
static int
seq_roundtrip(struct seq_ctx *s, size_t len, int eor, uint64_t seed)
{
	struct iovec iov = { .iov_base = s->rx, .iov_len = s->rxcap };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	gen_fill(seed, 0, s->tx, len);
	n = seq_send(s->fd, s->tx, len, eor);
	if (n < 0)
		return fail(s->r, -errno, "send %zu eor=%d: %s", len, eor, errname(errno));
	if ((size_t)n != len)
		return fail(s->r, -EIO, "send %zu eor=%d returned %zd", len, eor, n);
	do {
		mh.msg_flags = 0;
		n = recvmsg(s->fd, &mh, 0);
	} while (n < 0 && (errno == EINTR || (errno == EAGAIN && left_ms() > 0)));
	if (n < 0)
		return fail(s->r, errno == EAGAIN ? -ETIMEDOUT : -errno,
				"recvmsg echo of %zu eor=%d: %s", len, eor, errname(errno));
	if (n == 0)
		return fail(s->r, -ECONNRESET, "EOF instead of echo of %zu eor=%d", len, eor);
	if ((size_t)n != len)
		return fail(s->r, -EPROTO,
				"echo of %zu eor=%d came back as a %zd-byte message "
				"(flags 0x%x)",
				len, eor, n, mh.msg_flags);
	if (mh.msg_flags & MSG_TRUNC)
		return fail(s->r, -EPROTO, "echo of %zu eor=%d has MSG_TRUNC", len, eor);
	if (!!(mh.msg_flags & MSG_EOR) != !!eor)
		return fail(s->r, -EPROTO, "echo of %zu eor=%d: MSG_EOR %s in msg_flags 0x%x", len,
				eor, eor ? "missing" : "unexpectedly set", mh.msg_flags);
	if (memcmp(s->tx, s->rx, len) != 0)
		return fail(s->r, -EILSEQ, "echo of %zu eor=%d: content differs", len, eor);
	return 0;
}

static int
seq_recv_small(struct seq_ctx *s, size_t buflen, int flags, ssize_t *ret, int *mflags)
{
	struct iovec iov = { .iov_base = s->rx, .iov_len = buflen };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	do {
		mh.msg_flags = 0;
		n = recvmsg(s->fd, &mh, flags);
	} while (n < 0 && (errno == EINTR || (errno == EAGAIN && left_ms() > 0)));
	if (n < 0)
		return errno == EAGAIN ? -ETIMEDOUT : -errno;
	*ret = n;
	*mflags = mh.msg_flags;
	return 0;
}

static int
sc_seq_bounds(const struct uvt_args *a, struct uvt_res *r)
{
	static const size_t sizes[] = { 1, 2, 100, 3776, 4096, 65536, 65537, 131072, UVT_SEQ_MAX };
	struct seq_ctx s = { .r = r, .rxcap = UVT_SEQ_MAX + 4096 };
	unsigned int i, count = 0;
	int mflags, rc, eor, want_errno = EMSGSIZE;
	ssize_t n;

	rc = vs_connect(SOCK_SEQPACKET, a->cid, a->port, UVT_CONNECT_TIMEOUT_MS, &s.fd);
	if (rc < 0)
		return fail(r, rc, "connect SEQPACKET %u:%u: %s", a->cid, a->port, errname(rc));
	s.tx = xmalloc(UVT_SEQ_MAX + 1);
	s.rx = xmalloc(s.rxcap);
	for (i = 0; rc == 0 && i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		for (eor = 1; rc == 0 && eor >= 0; eor--) {
			rc = seq_roundtrip(&s, sizes[i], eor, 0x5e9 + i * 2 + eor);
			count++;
		}
	}
	if (rc < 0)
		goto out;

	/* Truncation: 100-byte message into a 10-byte buffer. */
	gen_fill(0x7c, 0, s.tx, 100);
	n = seq_send(s.fd, s.tx, 100, 1);
	if (n != 100) {
		rc = fail(r, n < 0 ? -errno : -EIO, "send 100 for truncation: %s",
				n < 0 ? errname(errno) : "short");
		goto out;
	}
	rc = seq_recv_small(&s, 10, 0, &n, &mflags);
	if (rc < 0) {
		fail(r, rc, "recvmsg 10-byte buffer: %s", errname(rc));
		goto out;
	}
	if (n != 10 || !(mflags & MSG_TRUNC) || !(mflags & MSG_EOR) ||
			memcmp(s.rx, s.tx, 10) != 0) {
		rc = fail(r, -EPROTO,
				"100-byte msg into 10-byte buffer: ret %zd flags 0x%x "
				"(want 10, MSG_TRUNC|MSG_EOR, same 10 bytes)",
				n, mflags);
		goto out;
	}
	gen_fill(0x7d, 0, s.tx, 100);
	n = seq_send(s.fd, s.tx, 100, 1);
	if (n != 100) {
		rc = fail(r, n < 0 ? -errno : -EIO, "send 100 for MSG_TRUNC: %s",
				n < 0 ? errname(errno) : "short");
		goto out;
	}
	rc = seq_recv_small(&s, 10, MSG_TRUNC, &n, &mflags);
	if (rc < 0) {
		fail(r, rc, "recvmsg(MSG_TRUNC) 10-byte buffer: %s", errname(rc));
		goto out;
	}
	if (n != 100 || !(mflags & MSG_TRUNC) || memcmp(s.rx, s.tx, 10) != 0) {
		rc = fail(r, -EPROTO,
				"recv(MSG_TRUNC) of 100-byte msg with 10-byte buffer: ret "
				"%zd flags 0x%x (want 100, MSG_TRUNC)",
				n, mflags);
		goto out;
	}
	/* The excess was discarded: the next message is intact. */
	rc = seq_roundtrip(&s, 50, 1, 0x7e);
	if (rc < 0)
		goto out;

	/*
	 * EMSGSIZE: one byte more than the peer's 256 KiB buffer. Linux before 6.2 turns every
	 * transport error of sendmsg into ENOMEM (fixed by c43170b7e157 "vsock: return errors
	 * other than -ENOMEM to socket"), so a 6.1 guest sees ENOMEM for the same check.
	 */
	want_errno = kernel_at_least(6, 2) ? EMSGSIZE : ENOMEM;
	gen_fill(0x7f, 0, s.tx, UVT_SEQ_MAX + 1);
	n = send(s.fd, s.tx, UVT_SEQ_MAX + 1, MSG_EOR | MSG_NOSIGNAL);
	if (n >= 0 || errno != want_errno) {
		rc = fail(r, -EPROTO, "send %u bytes: %s (want %s on this kernel)", UVT_SEQ_MAX + 1,
				n >= 0 ? "succeeded" : errname(errno), errname(want_errno));
		goto out;
	}
	rc = seq_roundtrip(&s, 77, 1, 0x80);
	if (rc < 0)
		goto out;
	rc = expect_no_more(s.fd, r, "seq-bounds");
	if (rc == 0)
		pass(r, "%u messages 1..%u B with/without EOR exact; MSG_TRUNC ok; %s at %u", count,
				UVT_SEQ_MAX, errname(want_errno), UVT_SEQ_MAX + 1);
out:
	close(s.fd);
	free(s.tx);
	free(s.rx);
	return rc;
}

static int
sc_stream_bulk(const struct uvt_args *a, struct uvt_res *r)
{
	struct pump p = { .seed = 0xb01c, .len = a->bytes };
	int64_t t0, dt;
	int fd, rc;

	rc = vs_connect(SOCK_STREAM, a->cid, a->port, UVT_CONNECT_TIMEOUT_MS, &fd);
	if (rc < 0)
		return fail(r, rc, "connect STREAM %u:%u: %s", a->cid, a->port, errname(rc));
	t0 = now_ms();
	rc = pump_echo(fd, &p, r, "bulk");
	dt = now_ms() - t0;
	if (rc == 0)
		rc = expect_no_more(fd, r, "stream-bulk");
	close(fd);
	if (dt < 1)
		dt = 1;
	if (rc == 0)
		pass(r,
				"%" PRIu64 " bytes echoed, fnv1a64 %016" PRIx64
				" both ways, %" PRId64 " ms, %.2f MiB/s",
				p.len, p.fnv_rx, dt,
				(double)p.len / (1024.0 * 1024.0) / ((double)dt / 1000.0));
	return rc;
}

static int
sc_concurrent(const struct uvt_args *a, struct uvt_res *r)
{
	unsigned int n = a->n, i, up = 0;
	int *fds = xmalloc(n * sizeof(*fds));
	uint8_t *tx = xmalloc(4096), *rx = xmalloc(4096);
	struct pollfd *pfd = xmalloc(n * sizeof(*pfd));
	uint64_t total = 0;
	int rc = 0;

	for (i = 0; i < n; i++)
		fds[i] = -1;
	/* Start all connects at once (non-blocking), then wait until every one is up. */
	for (i = 0; i < n; i++) {
		struct sockaddr_vm sa = {
			.svm_family = AF_VSOCK, .svm_cid = a->cid, .svm_port = a->port
		};

		fds[i] = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fds[i] < 0) {
			rc = fail(r, -errno, "socket #%u: %s", i, errname(errno));
			goto out;
		}
		rc = set_connect_timeout(fds[i], UVT_CONNECT_TIMEOUT_MS);
		if (rc == 0)
			rc = set_timeouts(fds[i]);
		if (rc < 0) {
			fail(r, rc, "setsockopt #%u: %s", i, errname(rc));
			goto out;
		}
		if (connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
				errno != EINPROGRESS) {
			rc = fail(r, -errno, "connect #%u to %u:%u: %s", i, a->cid, a->port,
					errname(errno));
			goto out;
		}
	}
	for (i = 0; i < n; i++)
		pfd[i] = (struct pollfd){ .fd = fds[i], .events = POLLOUT };
	while (up < n) {
		int64_t l = left_ms();
		int pr;

		if (l <= 0) {
			rc = fail(r, -ETIMEDOUT, "only %u of %u connects completed", up, n);
			goto out;
		}
		pr = poll(pfd, n, l > 1000 ? 1000 : (int)l);
		if (pr < 0 && errno != EINTR) {
			rc = fail(r, -errno, "poll: %s", errname(errno));
			goto out;
		}
		for (i = 0; pr > 0 && i < n; i++) {
			int err = 0;
			socklen_t el = sizeof(err);

			if (pfd[i].fd < 0 || pfd[i].revents == 0)
				continue;
			if (getsockopt(fds[i], SOL_SOCKET, SO_ERROR, &err, &el) < 0)
				err = errno;
			if (err != 0) {
				rc = fail(r, -err, "connect #%u to %u:%u: %s (%u already up)", i,
						a->cid, a->port, errname(err), up);
				goto out;
			}
			pfd[i].fd = -1;
			up++;
		}
	}
	/* All connected: make them blocking (with timeouts) and check each is established. */
	for (i = 0; i < n; i++) {
		struct sockaddr_vm peer;
		socklen_t pl = sizeof(peer);
		int fl = fcntl(fds[i], F_GETFL);

		if (fl < 0 || fcntl(fds[i], F_SETFL, fl & ~O_NONBLOCK) < 0) {
			rc = fail(r, -errno, "fcntl #%u: %s", i, errname(errno));
			goto out;
		}
		if (getpeername(fds[i], (struct sockaddr *)&peer, &pl) < 0 ||
				peer.svm_cid != a->cid || peer.svm_port != a->port) {
			rc = fail(r, -ENOTCONN, "#%u not connected to %u:%u after connect", i,
					a->cid, a->port);
			goto out;
		}
	}
	for (i = 0; i < n; i++) {
		size_t len = 1 + (i * 7919u) % 3000u;

		gen_fill(0xc0c0 + i, 0, tx, len);
		rc = send_all(fds[i], tx, len, 0);
		if (rc < 0) {
			fail(r, rc, "send %zu on #%u: %s", len, i, errname(rc));
			goto out;
		}
	}
	for (i = 0; i < n; i++) {
		size_t len = 1 + (i * 7919u) % 3000u, got = 0;

		gen_fill(0xc0c0 + i, 0, tx, len);
		rc = recv_exact(fds[i], rx, len, &got);
		if (rc < 0) {
			fail(r, rc, "echo on #%u: %s after %zu of %zu bytes", i, errname(rc), got,
					len);
			goto out;
		}
		if (memcmp(tx, rx, len) != 0) {
			rc = fail(r, -EILSEQ, "echo on #%u differs from what #%u sent", i, i);
			goto out;
		}
		rc = expect_no_more(fds[i], r, "concurrent");
		if (rc < 0)
			goto out;
		total += len;
	}
	pass(r, "%u connections up before any data, %" PRIu64 " bytes echoed exact", n, total);
out:
	for (i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	free(pfd);
	free(tx);
	free(rx);
	return rc;
}

static int
sc_connreset(const struct uvt_args *a, struct uvt_res *r)
{
	int types[2] = { SOCK_STREAM, SOCK_SEQPACKET };
	int rcs[2], i, fd;

	for (i = 0; i < 2; i++) {
		rcs[i] = vs_connect(types[i], a->cid, a->port, UVT_CONNECT_TIMEOUT_MS, &fd);
		if (rcs[i] == 0) {
			close(fd);
			return fail(r, -EPROTO, "%s connect to %u:%u succeeded (want ECONNRESET)",
					type_name(types[i]), a->cid, a->port);
		}
		if (rcs[i] != -ECONNRESET)
			return fail(r, rcs[i], "%s connect to %u:%u: %s (want ECONNRESET)",
					type_name(types[i]), a->cid, a->port, errname(rcs[i]));
	}
	pass(r, "STREAM and SEQPACKET connect to %u:%u -> ECONNRESET", a->cid, a->port);
	return 0;
}

/*
 * SEQPACKET credit across messages: the host reader sleeps first, so a 100 KiB message sits
 * unread while a 200 KiB one uses up the rest of the credit mid-message; when the host then
 * reads, the device must return credit or this sender blocks for ever.
 * Host contract (seqsink on 5004): accept SEQPACKET, read nothing for ~1500 ms, then read
 * messages until EOF and send one message "<count> <bytes>\n".
 */
static int
sc_seq_credit(const struct uvt_args *a, struct uvt_res *r)
{
	const size_t la = 100 * 1024, lb = 200 * 1024;
	uint8_t *buf = xmalloc(lb);
	char reply[64], want[64];
	ssize_t n;
	int fd, rc;

	rc = vs_connect(SOCK_SEQPACKET, a->cid, a->port, UVT_CONNECT_TIMEOUT_MS, &fd);
	if (rc < 0) {
		free(buf);
		return fail(r, rc, "connect SEQPACKET %u:%u: %s", a->cid, a->port, errname(rc));
	}
	memset(buf, 0x5a, lb);
	n = seq_send(fd, buf, la, 1);
	if (n != (ssize_t)la) {
		rc = fail(r, -errno, "first message: %s", n < 0 ? errname(errno) : "short");
		goto out;
	}
	n = seq_send(fd, buf, lb, 1);
	if (n != (ssize_t)lb) {
		rc = fail(r, -errno, "second message (blocked on credit?): %s",
				n < 0 ? errname(errno) : "short");
		goto out;
	}
	if (shutdown(fd, SHUT_WR) < 0) {
		rc = fail(r, -errno, "shutdown: %s", errname(errno));
		goto out;
	}
	for (;;) {
		n = recv(fd, reply, sizeof(reply) - 1, 0);
		if (n < 0 && (errno == EINTR || (errno == EAGAIN && left_ms() > 0)))
			continue;
		break;
	}
	if (n <= 0) {
		rc = fail(r, n < 0 ? -errno : -ENODATA, "reading the count: %s",
				n < 0 ? errname(errno) : "EOF");
		goto out;
	}
	reply[n] = '\0';
	snprintf(want, sizeof(want), "2 %zu\n", la + lb);
	if (strcmp(reply, want) != 0) {
		rc = fail(r, -EPROTO, "host counted '%s', want '2 %zu'", reply, la + lb);
		goto out;
	}
	pass(r, "100 KiB message left unread, 200 KiB message blocked mid-way on credit, "
		"resumed when the host read: host got both");
out:
	close(fd);
	free(buf);
	return rc;
}

static int
sc_shutwr(const struct uvt_args *a, struct uvt_res *r)
{
	static const char hello[] = "hello";
	char buf[64];
	size_t got = 0, extra = 0;
	ssize_t n;
	int fd, rc;

	rc = vs_connect(SOCK_STREAM, a->cid, a->port, UVT_CONNECT_TIMEOUT_MS, &fd);
	if (rc < 0)
		return fail(r, rc, "connect STREAM %u:%u: %s", a->cid, a->port, errname(rc));
	rc = send_all(fd, hello, 5, 0);
	if (rc < 0) {
		fail(r, rc, "send hello: %s", errname(rc));
		goto out;
	}
	if (shutdown(fd, SHUT_WR) < 0) {
		rc = fail(r, -errno, "shutdown(SHUT_WR): %s", errname(errno));
		goto out;
	}
	n = send(fd, "x", 1, MSG_NOSIGNAL);
	if (n >= 0 || errno != EPIPE) {
		rc = fail(r, -EPROTO, "send after SHUT_WR: %s (want EPIPE)",
				n >= 0 ? "succeeded" : errname(errno));
		goto out;
	}
	rc = recv_exact(fd, buf, 5, &got);
	if (rc < 0) {
		fail(r, rc, "reading echo: %s after %zu of 5 bytes", errname(rc), got);
		goto out;
	}
	if (memcmp(buf, hello, 5) != 0) {
		rc = fail(r, -EILSEQ, "echo is '%.5s', want 'hello'", buf);
		goto out;
	}
	rc = recv_eof(fd, &extra);
	if (rc < 0) {
		fail(r, rc, "after the echo: %s (%zu extra bytes; want EOF)", errname(rc), extra);
		goto out;
	}
	pass(r, "echo 'hello' then EOF after SHUT_WR; send after SHUT_WR -> EPIPE");
out:
	close(fd);
	return rc;
}

static int
sc_host_eof(const struct uvt_args *a, struct uvt_res *r)
{
	uint8_t *buf = xmalloc(UVT_CHUNK);
	uint64_t got = 0;
	int64_t bad = -1;
	ssize_t n;
	int fd, rc;

	rc = vs_connect(SOCK_STREAM, a->cid, a->port, UVT_CONNECT_TIMEOUT_MS, &fd);
	if (rc < 0) {
		free(buf);
		return fail(r, rc, "connect STREAM %u:%u: %s", a->cid, a->port, errname(rc));
	}
	for (;;) {
		n = recv(fd, buf, UVT_CHUNK, 0);
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR || (errno == EAGAIN && left_ms() > 0))
				continue;
			rc = fail(r, errno == EAGAIN ? -ETIMEDOUT : -errno,
					"recv after %" PRIu64 " of %" PRIu64 " bytes: %s", got,
					a->bytes, errname(errno));
			goto out;
		}
		if (bad < 0)
			bad = pattern_check(got, buf, (size_t)n);
		got += (uint64_t)n;
	}
	if (got != a->bytes) {
		rc = fail(r, -EPROTO, "EOF after %" PRIu64 " bytes, want %" PRIu64, got, a->bytes);
		goto out;
	}
	if (bad >= 0) {
		rc = fail(r, -EILSEQ, "payload differs from i%%251 at offset %" PRId64, bad);
		goto out;
	}
	n = recv(fd, buf, UVT_CHUNK, MSG_DONTWAIT);
	if (n != 0) {
		rc = fail(r, -EPROTO, "second recv after EOF returned %zd (%s), want 0", n,
				n < 0 ? errname(errno) : "data");
		goto out;
	}
	/* Half-closed by the peer: our direction must still work. */
	n = send(fd, "bye\n", 4, MSG_NOSIGNAL);
	if (n != 4) {
		rc = fail(r, n < 0 ? -errno : -EIO, "send 'bye' after host EOF: %s",
				n < 0 ? errname(errno) : "short");
		goto out;
	}
	shutdown(fd, SHUT_WR);
	pass(r, "%" PRIu64 " bytes then EOF; write after EOF ok", got);
out:
	close(fd);
	free(buf);
	return rc;
}

static int
sc_slow_reader(const struct uvt_args *a, struct uvt_res *r)
{
	const size_t big = 1024 * 1024;
	uint8_t *buf = xmalloc(big);
	uint64_t sent = 0, want;
	int64_t t0, t_eagain, t_big;
	char line[64];
	size_t got = 0;
	ssize_t n;
	int fd, rc;
	char *end;

	rc = vs_connect(SOCK_STREAM, a->cid, a->port, UVT_CONNECT_TIMEOUT_MS, &fd);
	if (rc < 0) {
		free(buf);
		return fail(r, rc, "connect STREAM %u:%u: %s", a->cid, a->port, errname(rc));
	}
	t0 = now_ms();
	/* Fill the peer's credit without blocking. */
	for (;;) {
		pattern_fill(sent, buf, UVT_CHUNK);
		n = send(fd, buf, UVT_CHUNK, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			sent += (uint64_t)n;
			if (sent > a->max_bytes) {
				rc = fail(r, -EPROTO,
						"no EAGAIN after %" PRIu64 " bytes (max=%" PRIu64
						"): no backpressure",
						sent, a->max_bytes);
				goto out;
			}
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		rc = fail(r, n < 0 ? -errno : -EIO, "non-blocking send after %" PRIu64 ": %s", sent,
				n < 0 ? errname(errno) : "returned 0");
		goto out;
	}
	t_eagain = now_ms() - t0;
	if (sent < a->min_bytes) {
		rc = fail(r, -EPROTO, "EAGAIN after only %" PRIu64 " bytes (want >= %" PRIu64 ")",
				sent, a->min_bytes);
		goto out;
	}
	/* Blocking send of 1 MiB must complete once the host starts reading. */
	pattern_fill(sent, buf, big);
	rc = send_all(fd, buf, big, 0);
	if (rc < 0) {
		fail(r, rc, "blocking send of 1 MiB after EAGAIN at %" PRIu64 ": %s", sent,
				errname(rc));
		goto out;
	}
	sent += big;
	t_big = now_ms() - t0;
	if (shutdown(fd, SHUT_WR) < 0) {
		rc = fail(r, -errno, "shutdown(SHUT_WR): %s", errname(errno));
		goto out;
	}
	/* The sink answers "<count>\n" and closes. */
	memset(line, 0, sizeof(line));
	for (;;) {
		n = recv(fd, line + got, sizeof(line) - 1 - got, 0);
		if (n > 0) {
			got += (size_t)n;
			if (got < sizeof(line) - 1)
				continue;
		}
		if (n < 0 && (errno == EINTR || (errno == EAGAIN && left_ms() > 0)))
			continue;
		break;
	}
	if (n < 0) {
		rc = fail(r, errno == EAGAIN ? -ETIMEDOUT : -errno, "reading sink count: %s",
				errname(errno));
		goto out;
	}
	errno = 0;
	want = strtoull(line, &end, 10);
	if (got == 0 || end == line || strcmp(end, "\n") != 0 || errno != 0) {
		line[strcspn(line, "\n")] = '\0';
		rc = fail(r, -EPROTO, "sink reply '%s' is not '<count>\\n' (sent %" PRIu64 ")",
				line, sent);
		goto out;
	}
	if (want != sent) {
		rc = fail(r, -EPROTO, "sink counted %" PRIu64 " bytes, guest sent %" PRIu64, want,
				sent);
		goto out;
	}
	pass(r,
			"EAGAIN after %" PRIu64 " bytes at %" PRId64
			" ms; 1 MiB blocking send done at %" PRId64 " ms; sink counted %" PRIu64,
			sent - big, t_eagain, t_big, want);
out:
	close(fd);
	free(buf);
	return rc;
}

static int
sc_listen(const struct uvt_args *a, struct uvt_res *r)
{
	static struct echo_srv srv; /* connection threads may outlive a failed run */
	int rc;

	echo_srv_init(&srv, a->port, a->n, a->quiet);
	srv.gone_ok = a->gone;
	rc = echo_srv_run(&srv);
	if (rc < 0)
		return fail(r, rc, "%s", srv.res.detail);
	pass(r, "%s", srv.res.detail);
	return 0;
}

/*
 * Reload the guest's virtio vsock driver: the device is reset and its rings stopped and
 * started again on a running VM (GET_VRING_BASE, then SET_VRING_* and DRIVER_OK), with no
 * QEMU restart. Passes when the driver is back with a CID; the scenarios after it prove the
 * device works again.
 */
static int
sc_driver_reload(const struct uvt_args *a, struct uvt_res *r)
{
	unsigned int cid = 0;
	int rc, fd = -1;

	(void)a;
#ifdef UVT_UNDER_SHIM
	/* the host build must not touch this host's kernel modules */
	return fail(r, -EOPNOTSUPP, "not in the host build (no guest kernel to reload)");
#endif
	/* sockets still closing (Linux waits up to 8 s for the peer's RST) hold the module */
	while ((rc = system("rmmod vmw_vsock_virtio_transport 2>/dev/null")) != 0 && left_ms() > 0)
		usleep(200000);
	if (rc != 0)
		return fail(r, -EBUSY, "rmmod vmw_vsock_virtio_transport: status %d", rc);
	rc = system("insmod /lib/modules/vmw_vsock_virtio_transport.ko");
	if (rc != 0)
		return fail(r, -EIO, "insmod vmw_vsock_virtio_transport: status %d", rc);
	/* the driver reads its CID from the device's config at probe */
	while (left_ms() > 0) {
		fd = open("/dev/vsock", O_RDONLY | O_CLOEXEC);
		if (fd >= 0 && ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid) == 0 && cid > 2)
			break;
		if (fd >= 0)
			close(fd);
		fd = -1;
		usleep(100000);
	}
	if (fd < 0)
		return fail(r, -ETIMEDOUT, "no guest CID after reloading the driver");
	close(fd);
	pass(r, "virtio vsock driver reloaded (device reset), CID %u", cid);
	return 0;
}

static int
sc_cid(const struct uvt_args *a, struct uvt_res *r)
{
	unsigned int cid = 0;
	int fd, rc = 0;

	if (!a->has_expect)
		return fail(r, -EINVAL, "missing expect=N");
	fd = open("/dev/vsock", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(r, -errno, "open /dev/vsock: %s", errname(errno));
	if (ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid) < 0)
		rc = fail(r, -errno, "IOCTL_VM_SOCKETS_GET_LOCAL_CID: %s", errname(errno));
	else if (cid != a->expect)
		rc = fail(r, -EPROTO, "local CID %u, want %" PRIu64, cid, a->expect);
	else
		pass(r, "local CID %u", cid);
	close(fd);
	return rc;
}

static int
sc_isolate(const struct uvt_args *a, struct uvt_res *r)
{
	int64_t t0, dt;
	int fd, rc;

	if (!a->has_cid || a->cid <= VMADDR_CID_HOST || a->cid == VMADDR_CID_ANY)
		return fail(r, -EINVAL, "needs cid=OTHER_GUEST_CID (> 2)");
	t0 = now_ms();
	rc = vs_connect(SOCK_STREAM, a->cid, a->port, UVT_ISOLATE_CONNECT_MS, &fd);
	dt = now_ms() - t0;
	if (rc == 0) {
		close(fd);
		return fail(r, -EPROTO,
				"connect to other guest %u:%u SUCCEEDED after %" PRId64 " ms",
				a->cid, a->port, dt);
	}
	if (rc != -ETIMEDOUT && rc != -ECONNRESET && rc != -ENETUNREACH)
		return fail(r, rc,
				"connect to %u:%u: %s after %" PRId64 " ms (want ETIMEDOUT, "
				"ECONNRESET or ENETUNREACH)",
				a->cid, a->port, errname(rc), dt);
	if (dt > UVT_ISOLATE_WITHIN_MS)
		return fail(r, -ETIMEDOUT,
				"connect to %u:%u failed with %s only after %" PRId64 " ms (> %d)",
				a->cid, a->port, errname(rc), dt, UVT_ISOLATE_WITHIN_MS);
	pass(r, "connect to %u:%u -> %s after %" PRId64 " ms", a->cid, a->port, errname(rc), dt);
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* selftest: reference servers for the host contracts, run on vsock_loopback (CID 1) */

struct ref_srv {
	unsigned int port;
	uint64_t bytes;	       /* writer: payload size */
	unsigned int pause_ms; /* sink: initial pause */
	struct uvt_res res;
	int lfd;
};

/* Reference "writer" (host-eof): send bytes of i%251, SHUT_WR, read "bye\n" until EOF. */
static void *
ref_writer_thread(void *arg)
{
	struct ref_srv *w = arg;
	uint8_t *buf = xmalloc(UVT_CHUNK);
	uint64_t off = 0;
	char bye[16];
	size_t got = 0, extra = 0;
	int fd, rc;

	rc = vs_accept(w->lfd, &fd);
	if (rc < 0) {
		fail(&w->res, rc, "writer accept: %s", errname(rc));
		goto out_buf;
	}
	while (off < w->bytes) {
		size_t len = w->bytes - off < UVT_CHUNK ? (size_t)(w->bytes - off) : UVT_CHUNK;

		pattern_fill(off, buf, len);
		rc = send_all(fd, buf, len, 0);
		if (rc < 0) {
			fail(&w->res, rc, "writer send at %" PRIu64 ": %s", off, errname(rc));
			goto out;
		}
		off += len;
	}
	if (shutdown(fd, SHUT_WR) < 0) {
		fail(&w->res, -errno, "writer shutdown: %s", errname(errno));
		goto out;
	}
	rc = recv_exact(fd, bye, 4, &got);
	if (rc < 0 || memcmp(bye, "bye\n", 4) != 0) {
		fail(&w->res, rc < 0 ? rc : -EILSEQ, "writer: did not get 'bye\\n' (%s, %zu bytes)",
				errname(rc), got);
		goto out;
	}
	rc = recv_eof(fd, &extra);
	if (rc < 0) {
		fail(&w->res, rc, "writer: no EOF after bye: %s", errname(rc));
		goto out;
	}
	pass(&w->res, "writer sent %" PRIu64 ", got bye + EOF", off);
out:
	close(fd);
out_buf:
	free(buf);
	return NULL;
}

/* Reference "sink" (slow-reader): read nothing for pause_ms, then count until EOF, reply. */
static void *
ref_sink_thread(void *arg)
{
	struct ref_srv *s = arg;
	uint8_t *buf = xmalloc(UVT_CHUNK);
	uint64_t count = 0;
	int64_t bad = -1;
	char line[48];
	int fd, rc, len;

	rc = vs_accept(s->lfd, &fd);
	if (rc < 0) {
		fail(&s->res, rc, "sink accept: %s", errname(rc));
		goto out_buf;
	}
	usleep(s->pause_ms * 1000u);
	for (;;) {
		ssize_t n = recv(fd, buf, UVT_CHUNK, 0);

		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR || (errno == EAGAIN && left_ms() > 0))
				continue;
			fail(&s->res, -errno, "sink recv after %" PRIu64 ": %s", count,
					errname(errno));
			goto out;
		}
		if (bad < 0)
			bad = pattern_check(count, buf, (size_t)n);
		count += (uint64_t)n;
	}
	if (bad >= 0) {
		len = snprintf(line, sizeof(line), "BAD %" PRId64 "\n", bad);
		fail(&s->res, -EILSEQ, "sink: payload differs from i%%251 at %" PRId64, bad);
	} else {
		len = snprintf(line, sizeof(line), "%" PRIu64 "\n", count);
	}
	rc = send_all(fd, line, (size_t)len, 0);
	if (rc < 0)
		fail(&s->res, rc, "sink reply: %s", errname(rc));
	pass(&s->res, "sink counted %" PRIu64, count);
out:
	close(fd);
out_buf:
	free(buf);
	return NULL;
}

static int
ref_srv_start(struct ref_srv *s, void *(*fn)(void *), pthread_t *t)
{
	int rc;

	res_init(&s->res);
	rc = vs_listen(SOCK_STREAM, s->port, &s->lfd);
	if (rc < 0)
		return rc;
	rc = -pthread_create(t, NULL, fn, s);
	if (rc < 0)
		close(s->lfd);
	return rc;
}

static void *
echo_srv_thread(void *arg)
{
	echo_srv_run(arg);
	return NULL;
}

static int
st_sub(const char *name, int (*fn)(const struct uvt_args *, struct uvt_res *),
		const struct uvt_args *a, unsigned int *npass, unsigned int *nrun, char *failed,
		size_t flen)
{
	struct uvt_res r;
	int64_t t0 = now_ms();
	int rc;

	res_init(&r);
	rc = fn(a, &r);
	if (rc == 0 && r.rc != 0)
		rc = r.rc;
	printf("UVT SUB selftest/%s %s (%" PRId64 " ms) %s\n", name, rc == 0 ? "PASS" : "FAIL",
			now_ms() - t0, r.detail[0] != '\0' ? r.detail : "-");
	fflush(stdout);
	(*nrun)++;
	if (rc == 0)
		(*npass)++;
	else if (strlen(failed) + strlen(name) + 2 < flen)
		strcat(strcat(failed, " "), name);
	return rc;
}

static void
st_server_verdict(const char *name, struct uvt_res *res, unsigned int *npass, unsigned int *nrun,
		char *failed, size_t flen)
{
	printf("UVT SUB selftest/%s %s %s\n", name, res->rc == 0 ? "PASS" : "FAIL",
			res->detail[0] != '\0' ? res->detail : "-");
	fflush(stdout);
	(*nrun)++;
	if (res->rc == 0)
		(*npass)++;
	else if (strlen(failed) + strlen(name) + 2 < flen)
		strcat(strcat(failed, " "), name);
}

static const size_t st_sizes[] = { 1, 100, 4096, 65536, 300000 };

static int
sc_selftest(const struct uvt_args *a, struct uvt_res *r)
{
	static struct echo_srv srv;
	static struct ref_srv writer = { .port = UVT_ST_PORT + 2, .bytes = UVT_ST_WRITER_BYTES };
	static struct ref_srv sink = { .port = UVT_ST_PORT + 3, .pause_ms = UVT_ST_PAUSE_MS };
	const unsigned int n_conc = 50;
	/* stream-echo + seq-bounds + stream-bulk + concurrent + shutwr */
	const unsigned int n_echo = 1 + 1 + 1 + n_conc + 1;
	struct uvt_args c = *a;
	unsigned int npass = 0, nrun = 0, i;
	pthread_t t_echo, t_writer, t_sink;
	char failed[256] = "";
	int rc;

	c.cid = VMADDR_CID_LOCAL;
	c.nsizes = sizeof(st_sizes) / sizeof(st_sizes[0]);
	for (i = 0; i < c.nsizes; i++)
		c.sizes[i] = st_sizes[i];

	echo_srv_init(&srv, UVT_ST_PORT, n_echo, 1);
	rc = -pthread_create(&t_echo, NULL, echo_srv_thread, &srv);
	if (rc < 0)
		return fail(r, rc, "pthread_create: %s", errname(rc));
	pthread_mutex_lock(&srv.lock);
	while (srv.ready == 0)
		pthread_cond_wait(&srv.cond, &srv.lock);
	pthread_mutex_unlock(&srv.lock);
	if (srv.ready < 0) {
		pthread_join(t_echo, NULL);
		return fail(r, srv.res.rc, "echo server: %s", srv.res.detail);
	}
	rc = ref_srv_start(&writer, ref_writer_thread, &t_writer);
	if (rc < 0)
		return fail(r, rc, "writer listen %u: %s", writer.port, errname(rc));
	rc = ref_srv_start(&sink, ref_sink_thread, &t_sink);
	if (rc < 0)
		return fail(r, rc, "sink listen %u: %s", sink.port, errname(rc));

	c.port = UVT_ST_PORT;
	st_sub("stream-echo", sc_stream_echo, &c, &npass, &nrun, failed, sizeof(failed));
	c.port = UVT_ST_PORT + 1;
	st_sub("seq-bounds", sc_seq_bounds, &c, &npass, &nrun, failed, sizeof(failed));
	c.port = UVT_ST_PORT;
	c.bytes = 8u * 1024 * 1024;
	st_sub("stream-bulk", sc_stream_bulk, &c, &npass, &nrun, failed, sizeof(failed));
	c.n = n_conc;
	st_sub("concurrent", sc_concurrent, &c, &npass, &nrun, failed, sizeof(failed));
	c.port = UVT_ST_NOBODY;
	st_sub("connreset", sc_connreset, &c, &npass, &nrun, failed, sizeof(failed));
	c.port = UVT_ST_PORT;
	st_sub("shutwr", sc_shutwr, &c, &npass, &nrun, failed, sizeof(failed));
	c.port = writer.port;
	c.bytes = writer.bytes;
	st_sub("host-eof", sc_host_eof, &c, &npass, &nrun, failed, sizeof(failed));
	c.port = sink.port;
	c.min_bytes = UVT_BUF_SIZE;
	c.max_bytes = 64u * 1024 * 1024;
	st_sub("slow-reader", sc_slow_reader, &c, &npass, &nrun, failed, sizeof(failed));

	/* Servers whose client failed early must not wait for the whole deadline. */
	__atomic_store_n(&g_stop_ms, now_ms() + 5000, __ATOMIC_RELEASE);

	pthread_join(t_echo, NULL);
	st_server_verdict("listen", &srv.res, &npass, &nrun, failed, sizeof(failed));
	pthread_join(t_writer, NULL);
	close(writer.lfd);
	st_server_verdict("ref-writer", &writer.res, &npass, &nrun, failed, sizeof(failed));
	pthread_join(t_sink, NULL);
	close(sink.lfd);
	st_server_verdict("ref-sink", &sink.res, &npass, &nrun, failed, sizeof(failed));

	if (npass != nrun)
		return fail(r, -EPROTO, "%u/%u failed:%s", nrun - npass, nrun, failed);
	pass(r, "%u/%u sub-tests passed on CID 1 (vsock_loopback)", npass, nrun);
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* scenario table, argument parsing, runner */

static const struct uvt_scenario scenarios[] = {
	{ "stream-echo", sc_stream_echo, UVT_PORT_ECHO, "cid port sizes timeout",
			"echo each size over one STREAM connection" },
	{ "seq-bounds", sc_seq_bounds, UVT_PORT_SEQ, "cid port timeout",
			"SEQPACKET boundaries, MSG_EOR, MSG_TRUNC, EMSGSIZE (port = SEQPACKET listener)" },
	{ "stream-bulk", sc_stream_bulk, UVT_PORT_ECHO, "cid port bytes timeout",
			"send bytes while reading the echo; checksum and MiB/s" },
	{ "concurrent", sc_concurrent, UVT_PORT_ECHO, "cid port n timeout",
			"n STREAM connections up at once, distinct message each" },
	{ "connreset", sc_connreset, UVT_PORT_NOBODY, "cid port timeout",
			"connect to a port without listener: ECONNRESET (STREAM, SEQPACKET)" },
	{ "seq-credit", sc_seq_credit, UVT_PORT_SEQSINK, "cid port timeout",
			"SEQPACKET: a sender blocked on credit mid-message resumes when the host reads" },
	{ "shutwr", sc_shutwr, UVT_PORT_ECHO, "cid port timeout",
			"send hello, SHUT_WR, read hello then EOF" },
	{ "host-eof", sc_host_eof, UVT_PORT_WRITER, "cid port bytes timeout",
			"host writer sends bytes of i%251 then SHUT_WR: read all, EOF, still writable" },
	{ "slow-reader", sc_slow_reader, UVT_PORT_SINK, "cid port min max timeout",
			"fill a pausing host sink to EAGAIN, then 1 MiB blocking, compare sink count" },
	{ "listen", sc_listen, UVT_PORT_LISTEN, "port n gone timeout",
			"serve STREAM echo on port and SEQPACKET echo on port+1 for n connections; gone = how many may end with the host peer gone (EPIPE)" },
	{ "cid", sc_cid, 0, "expect timeout", "IOCTL_VM_SOCKETS_GET_LOCAL_CID == expect" },
	{ "driver-reload", sc_driver_reload, 0, "timeout",
			"rmmod + insmod the virtio vsock driver: device reset, rings stopped and restarted" },
	{ "isolate", sc_isolate, UVT_PORT_ECHO, "cid port timeout",
			"connect to another guest's CID must fail quickly" },
	{ "selftest", sc_selftest, 0, "timeout",
			"all client scenarios against this program's own servers on CID 1" },
};

static const struct uvt_scenario *
find_scenario(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		if (strcmp(scenarios[i].name, name) == 0)
			return &scenarios[i];
	return NULL;
}

static int
key_allowed(const char *keys, const char *key, size_t klen)
{
	const char *p = keys;

	while (*p != '\0') {
		size_t l = strcspn(p, " ");

		if (l == klen && strncmp(p, key, klen) == 0)
			return 1;
		p += l;
		p += strspn(p, " ");
	}
	return 0;
}

static int
keq(const char *k, size_t kl, const char *name)
{
	return kl == strlen(name) && strncmp(k, name, kl) == 0;
}

static int
parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*v = strtoull(s, &end, 0);
	if (errno != 0 || *end != '\0')
		return -EINVAL;
	return 0;
}

static int
parse_u32(const char *s, unsigned int *v)
{
	uint64_t x;

	if (parse_u64(s, &x) < 0 || x > UINT32_MAX)
		return -EINVAL;
	*v = (unsigned int)x;
	return 0;
}

static int
parse_sizes(char *s, struct uvt_args *a)
{
	char *save = NULL, *tok;

	a->nsizes = 0;
	for (tok = strtok_r(s, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		uint64_t v;

		if (a->nsizes == UVT_MAX_SIZES || parse_u64(tok, &v) < 0 || v == 0 ||
				v > (1u << 30))
			return -EINVAL;
		a->sizes[a->nsizes++] = (size_t)v;
	}
	return a->nsizes > 0 ? 0 : -EINVAL;
}

static const size_t default_sizes[] = { 1, 100, 4096, 65536, 300000 };

/* Parse key=value arguments; err gets a message on failure. */
static int
parse_args(const struct uvt_scenario *sc, int argc, char **argv, struct uvt_args *a, char *err,
		size_t elen)
{
	int i, rc;

	memset(a, 0, sizeof(*a));
	a->cid = UVT_DEFAULT_CID;
	a->port = sc->def_port;
	a->n = strcmp(sc->name, "listen") == 0 ? 1 : 50;
	a->bytes = strcmp(sc->name, "host-eof") == 0 ? 1024 * 1024 : 8u * 1024 * 1024;
	a->timeout_s = strcmp(sc->name, "selftest") == 0 ? UVT_SELFTEST_TIMEOUT_S
							 : UVT_DEFAULT_TIMEOUT_S;
	a->min_bytes = UVT_BUF_SIZE;
	a->max_bytes = 64u * 1024 * 1024;
	a->nsizes = sizeof(default_sizes) / sizeof(default_sizes[0]);
	for (i = 0; i < (int)a->nsizes; i++)
		a->sizes[i] = default_sizes[i];

	for (i = 0; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		const char *k = argv[i], *v;
		size_t kl;

		if (eq == NULL) {
			snprintf(err, elen, "argument '%s' is not key=value", argv[i]);
			return -EINVAL;
		}
		kl = (size_t)(eq - k);
		v = eq + 1;
		if (!key_allowed(sc->keys, k, kl)) {
			snprintf(err, elen, "unknown key '%.*s' (accepted: %s)", (int)kl, k,
					sc->keys);
			return -EINVAL;
		}
		if (keq(k, kl, "cid")) {
			rc = parse_u32(v, &a->cid);
			a->has_cid = 1;
		} else if (keq(k, kl, "port")) {
			rc = parse_u32(v, &a->port);
		} else if (keq(k, kl, "n")) {
			rc = parse_u32(v, &a->n);
			if (rc == 0 && (a->n == 0 || a->n > UVT_MAX_CONNS))
				rc = -EINVAL;
		} else if (keq(k, kl, "bytes")) {
			rc = parse_u64(v, &a->bytes);
		} else if (keq(k, kl, "expect")) {
			rc = parse_u64(v, &a->expect);
			a->has_expect = 1;
		} else if (keq(k, kl, "timeout")) {
			rc = parse_u32(v, &a->timeout_s);
			if (rc == 0 && (a->timeout_s == 0 || a->timeout_s > 86400))
				rc = -EINVAL;
		} else if (keq(k, kl, "gone")) {
			rc = parse_u32(v, &a->gone);
		} else if (keq(k, kl, "min")) {
			rc = parse_u64(v, &a->min_bytes);
		} else if (keq(k, kl, "max")) {
			rc = parse_u64(v, &a->max_bytes);
		} else if (keq(k, kl, "sizes")) {
			char tmp[512];

			snprintf(tmp, sizeof(tmp), "%s", v);
			rc = parse_sizes(tmp, a);
		} else {
			rc = -EINVAL;
		}
		if (rc < 0) {
			snprintf(err, elen, "bad value in '%s'", argv[i]);
			return rc;
		}
	}
	return 0;
}

static void
one_line(char *s)
{
	for (; *s != '\0'; s++)
		if (*s == '\n' || *s == '\r')
			*s = ' ';
}

/* Run one scenario in a child process; print its RESULT line; return 0 for PASS. */
static int
run_scenario(int argc, char **argv)
{
	const struct uvt_scenario *sc = find_scenario(argv[0]);
	char detail[UVT_DETAIL_LEN + 8] = "", msg[UVT_DETAIL_LEN];
	struct uvt_args a;
	int64_t kill_at;
	size_t got = 0;
	int pfd[2], status = 0, killed = 0, ok;
	pid_t pid;

	if (sc == NULL) {
		printf("UVT RESULT %s FAIL unknown scenario\n", argv[0]);
		fflush(stdout);
		return 1;
	}
	if (parse_args(sc, argc - 1, argv + 1, &a, msg, sizeof(msg)) < 0) {
		printf("UVT RESULT %s FAIL %s\n", sc->name, msg);
		fflush(stdout);
		return 1;
	}
	fflush(stdout);
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		printf("UVT RESULT %s FAIL pipe: %s\n", sc->name, errname(errno));
		return 1;
	}
	pid = fork();
	if (pid < 0) {
		printf("UVT RESULT %s FAIL fork: %s\n", sc->name, errname(errno));
		close(pfd[0]);
		close(pfd[1]);
		return 1;
	}
	if (pid == 0) {
		struct uvt_res r;
		int rc, len;

		close(pfd[0]);
		g_deadline_ms = now_ms() + (int64_t)a.timeout_s * 1000;
		res_init(&r);
		rc = sc->fn(&a, &r);
		if (rc == 0 && r.rc != 0)
			rc = r.rc;
		if (rc < 0 && r.detail[0] == '\0')
			snprintf(r.detail, sizeof(r.detail), "%s", errname(rc));
		len = snprintf(msg, sizeof(msg), "%c%s", rc == 0 ? 'P' : 'F', r.detail);
		if (len > (int)sizeof(msg) - 1)
			len = (int)sizeof(msg) - 1;
		fflush(stdout);
		if (write(pfd[1], msg, (size_t)len) != len)
			_exit(2);
		_exit(0);
	}
	close(pfd[1]);
	/* The child fails itself at its deadline; it is killed if it does not. */
	kill_at = now_ms() + (int64_t)a.timeout_s * 1000 + 5000;
	for (;;) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		int64_t l = kill_at - now_ms();
		ssize_t n;
		int pr;

		if (l <= 0) {
			kill(pid, SIGKILL);
			killed = 1;
			break;
		}
		pr = poll(&p, 1, l > 1000 ? 1000 : (int)l);
		if (pr <= 0)
			continue;
		n = read(pfd[0], detail + got, sizeof(detail) - 1 - got);
		if (n > 0) {
			got += (size_t)n;
			if (got < sizeof(detail) - 1)
				continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		break;
	}
	close(pfd[0]);
	detail[got] = '\0';
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (killed)
		snprintf(detail, sizeof(detail), "Fdeadline of %u s exceeded, killed", a.timeout_s);
	else if (got == 0 && WIFSIGNALED(status))
		snprintf(detail, sizeof(detail), "Fscenario process died from signal %d",
				WTERMSIG(status));
	else if (got == 0)
		snprintf(detail, sizeof(detail), "Fscenario process exited %d without a result",
				WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	one_line(detail);
	ok = detail[0] == 'P';
	printf("UVT RESULT %s %s %s\n", sc->name, ok ? "PASS" : "FAIL",
			detail[1] != '\0' ? detail + 1 : "-");
	fflush(stdout);
	return ok ? 0 : 1;
}

static int
split_args(char *s, char **argv, int max)
{
	char *save = NULL, *tok;
	int n = 0;

	for (tok = strtok_r(s, " \t\n", &save); tok != NULL && n < max;
			tok = strtok_r(NULL, " \t\n", &save))
		argv[n++] = tok;
	return n;
}

static int
run_multi(const char *cmd)
{
	char *copy = strdup(cmd), *save = NULL, *part;
	unsigned int npass = 0, nfail = 0;
	struct utsname u;

	if (copy == NULL)
		return 2;
	if (uname(&u) == 0)
		printf("UVT INFO kernel %s\n", u.release);
	for (part = strtok_r(copy, ";", &save); part != NULL; part = strtok_r(NULL, ";", &save)) {
		char *argv[UVT_MAX_ARGS + 1];
		char line[1024];
		int argc;

		snprintf(line, sizeof(line), "%s", part);
		argc = split_args(part, argv, UVT_MAX_ARGS);
		if (argc == 0)
			continue;
		one_line(line);
		printf("UVT BEGIN%s%s\n", line[0] == ' ' ? "" : " ", line);
		fflush(stdout);
		if (run_scenario(argc, argv) == 0)
			npass++;
		else
			nfail++;
	}
	free(copy);
	if (npass + nfail == 0) {
		printf("UVT RESULT run FAIL empty command\n");
		nfail++;
	}
	printf("UVT DONE pass=%u fail=%u\n", npass, nfail);
	fflush(stdout);
	return nfail == 0 ? 0 : 1;
}

static void
usage(FILE *f)
{
	size_t i;

	fprintf(f,
			"usage: uvsock-gtest SCENARIO [key=value...]\n"
			"       uvsock-gtest run \"SCENARIO [key=value...]; SCENARIO ...\"\n"
			"common keys: cid=N (default %u), port=P, timeout=S (default %u)\n"
			"scenarios:\n",
			UVT_DEFAULT_CID, UVT_DEFAULT_TIMEOUT_S);
	for (i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		fprintf(f, "  %-12s [%s] (port %u)\n      %s\n", scenarios[i].name,
				scenarios[i].keys, scenarios[i].def_port, scenarios[i].help);
}

#ifdef UVT_UNDER_SHIM
#include <dlfcn.h>

/*
 * The host build (tests/guestless): the same scenarios on the host, as a program "inside"
 * uvsock-guest, through libuvsock-preload.so. This host's kernel AF_VSOCK and /dev/vsock lead
 * elsewhere and must never be used: refuse to run unless socket() and open() are the shim's.
 */
static bool
shim_loaded(void)
{
	void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	const char *pre = getenv("LD_PRELOAD");

	return libc != NULL && pre != NULL && strstr(pre, "libuvsock-preload") != NULL &&
	       dlsym(RTLD_DEFAULT, "socket") != dlsym(libc, "socket") &&
	       dlsym(RTLD_DEFAULT, "open") != dlsym(libc, "open") &&
	       getenv("UVSOCK_KERNEL_FALLBACK") == NULL;
}
#endif

int
main(int argc, char **argv)
{
#ifdef UVT_UNDER_SHIM
	if (!shim_loaded()) {
		fprintf(stderr, "uvsock-gtest: this build runs only under libuvsock-preload.so "
				"(LD_PRELOAD), without UVSOCK_KERNEL_FALLBACK\n");
		return 2;
	}
#endif
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "run") == 0) {
		if (argc != 3) {
			fprintf(stderr, "uvsock-gtest: run takes one argument: \"S1 args; S2 ...\"\n");
			return 2;
		}
		return run_multi(argv[2]);
	}
	return run_scenario(argc - 1, argv + 1);
}
