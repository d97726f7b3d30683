/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * uvsock-perf: a testpmd-style traffic generator for uvsock. Throughput, latency and
 * connection rate of uvsock (native API) against a guest, and of the kernel's local IPC on
 * the same machine as baselines, printed as one result line each (and optionally appended to
 * a CSV file or written as JSON), with live statistics while a run goes on, from the command
 * line or interactively. bench/run.sh runs a whole comparison with it.
 *
 *   uvsock-perf bulk --cid C --port P --dir h2g|g2h [--size S] [--seconds T]
 *       h2g: writes of S bytes to a guest in rxonly mode (uvsock-guest --mode rxonly
 *       --listen P) for T seconds, then shutdown, wait for its "bye": bytes/s.
 *       g2h: reads from a guest in txonly mode (--mode txonly --listen P --bytes N) to end
 *       of stream, answers the count: bytes/s.
 *   uvsock-perf pingpong --cid C --port P [--size S] [--count N] [--seconds T] [--busy]
 *       S bytes to a guest in echo mode and back, N times (or for T seconds if that ends
 *       first): round-trip p50/p99/p99.9. --busy: spin on nonblocking receives instead of
 *       sleeping.
 *   uvsock-perf bulk ... --seqpacket
 *       the same with SOCK_SEQPACKET, one message per write (uvsock-guest --seqpacket):
 *       messages/s.
 *   uvsock-perf bulk --cid C --cid2 C2 --port P --dir both [--size S] [--seconds T]
 *       both at once for T seconds, on two connections: h2g to C (rxonly), g2h from C2
 *       (txonly, with --bytes enough for T seconds; at T its connection is closed
 *       mid-stream): each direction's rate and their sum.
 *   uvsock-perf baseline unix|unix-seqpacket|tcp|memcpy [--size S] [--seconds T]
 *       the same bulk transfer over an AF_UNIX SOCK_STREAM pair, AF_UNIX SOCK_SEQPACKET
 *       pair, TCP over loopback (two threads), or memcpy between two 64 MiB buffers.
 *   uvsock-perf multi --cid C --guests G --port P --conns N [--size S] [--seconds T]
 *       N connections over the guests C .. C+G-1 (rxonly), one thread each, h2g at once:
 *       aggregate bytes/s.
 *   uvsock-perf hold --cid C --guests G --port P --conns N --seconds T
 *       N connections spread over the guests C .. C+G-1 (echo mode), each checked with one
 *       echoed byte, then held idle for T seconds (bench/idle.sh measures the daemon then).
 *   uvsock-perf baseline-pingpong unix [--size S] [--count N] [--busy]
 *       round trips over an AF_UNIX SOCK_STREAM pair between two threads.
 *   uvsock-perf connrate --cid C --port P [--seconds T] [--echo] [--seqpacket] [--conns N]
 *       socket, connect, (--echo: one byte sent and read back,) close, in a loop for T
 *       seconds against a listening guest (uvsock-guest --mode echo --listen P --conns
 *       1000000; with --seqpacket, --mode rxonly --seqpacket): connections/s. --conns N:
 *       N such loops at once, over the guests C .. C+G-1 (--guests G).
 *   uvsock-perf baseline-connrate unix|tcp [--seconds T] [--echo] [--seqpacket] [--conns N]
 *       the same against a listener of this process (one thread that accepts, echoes what
 *       arrives, and closes at end of stream): AF_UNIX (SOCK_STREAM or SOCK_SEQPACKET,
 *       abstract address) or TCP over loopback.
 *
 *   uvsock-perf sink|source --port P [--size S] [--bytes N] [--buf-size B]
 *       the peers of bulk runs as programs, until killed: sink reads each connection to
 *       its end and answers "bye\n" (uvsock-guest rxonly's contract), source sends --bytes
 *       and expects "<bytes>\n" (txonly's). Run "inside" uvsock-guest --mode serve
 *       (UVSOCK_CONTROL=its control socket), they give end-to-end figures: program to
 *       program through both control sockets.
 *
 *   uvsock-perf interactive [--cid C] [--port P] [options]   (or: uvsock-perf -i ...)
 *       testpmd-style: commands from stdin (a prompt on a terminal): start, stop, show stats,
 *       set mode|size|dir|conns|cid|port|seqpacket|echo, help, quit. A run goes on in its
 *       own threads until stop; the command line gives the first settings.
 *
 * --libc: the uvsock runs use the plain socket calls (socket(AF_VSOCK), send, recv, ...)
 * instead of libuvsock's, to measure libuvsock-preload.so against the native API; result names
 * get "-libc". Refused unless the shim is loaded (the kernel's AF_VSOCK is never used).
 *
 * --buf-size N: every socket's buffer: SO_VM_SOCKETS_BUFFER_SIZE of uvsock sockets (the
 * credit their peer gets), SO_SNDBUF and SO_RCVBUF (forced past the sysctl limits when
 * allowed) of the baselines' kernel sockets. --tag T appends "-T" to result names.
 *
 * --interval SEC (default 1, interactive 0; 0: none): while bulk, multi, pingpong and
 * connrate run, one line per interval on stderr: "STATS t=<s>s msgs/s=<n> Gbit/s=<n>
 * stalls=<n>" (pingpong: "rtt/s=<n> p50_us=<n>"; connrate: "conns/s=<n>"). A stall is a
 * send that found no room (no credit, so a full ring): each send is tried with MSG_DONTWAIT
 * first, and on -EAGAIN counted, then waited for. With --telemetry PATH (uvsockd's DPDK
 * telemetry socket), bulk and multi lines add "drops=<n>": what uvsockd dropped from the
 * run's guests in the interval, every reason summed (uvsock-ss --guest CID names them).
 *
 * Result lines: "RESULT <name> size=<S> <metric>=<value> ..." and, with --csv FILE, one
 * "name,size,metric,value" row per metric; with --json FILE, FILE is written at the end as a
 * JSON array of {"name", "size", "metric", "value"} objects, one per result line (an empty
 * array if there was none). Sending runs add a "stalls" metric.
 *
 * Implementation notes
 *
 * A run (struct perf_run) is one thread per connection (struct perf_worker). The workers
 * connect, meet the starting thread at a gate, which reads the clock once all are connected,
 * and go. Each worker counts into its own counters, which only it writes (a relaxed load and
 * store: no locked instruction) and a reporter thread reads once per --interval, so the live
 * statistics add no clock reading and no shared write to the data path. A worker that fails
 * records the error and stops the others; the run's caller prints it. Interactive runs have
 * no end of their own: their sockets get SO_RCVTIMEO and SO_SNDTIMEO, so that a blocked call
 * looks at the stop flag every PERF_STOP_POLL_US.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "uvsock.h"

/* memcpy baseline: buffers larger than the last-level cache, so memory is what is measured. */
#define PERF_MEMCPY_BYTES (64u * 1024u * 1024u)
/* Largest transfer unit accepted on the command line. */
#define PERF_MAX_SIZE (16u * 1024u * 1024u)
/* Bulk: writes or reads between two readings of the clock (a reading costs about as much as
 * a small write). */
#define PERF_CLOCK_EVERY 64u
/* Most connections of one run, a thread each (uvsockd takes 4096 per guest). */
#define PERF_MAX_CONNS 4096u
/* Shortest --interval: more lines than anyone reads, and a reporter that competes with the
 * data path for the CPU. */
#define PERF_MIN_INTERVAL 0.01
/* The p50 of a STATS line is taken over at most this many of the interval's last round
 * trips: enough for a median, and a bounded sort. */
#define PERF_STATS_SAMPLES (1u << 16)
/* Reply lines of the guests ("bye\n"), and the byte count answered to txonly. */
#define PERF_LINE 64
/* Round trips kept for percentiles (the last ones, when a run has more: interactive, or a
 * --count beyond it): 8 MiB, a minute
 * or so of ping-pong; older ones are overwritten. */
#define PERF_RTT_KEEP (1u << 20)
/* Interactive runs: blocked sends and receives wake this often to look for "stop"
 * (SO_SNDTIMEO, SO_RCVTIMEO), microseconds. */
#define PERF_STOP_POLL_US 100000
/* Interactive runs: how long the end of a stopped transfer (the guest's "bye") may take. */
#define PERF_END_WAIT_S 5.0
/* Interactive: longest command line, and most words in one ("set seqpacket on"). */
#define PERF_LINE_MAX 256
#define PERF_MAX_WORDS 3
/* Longest result name (with "-libc"): "uvsock-seq-h2g-x4096-libc" and the like. */
#define PERF_NAME_MAX 64
/* Keeps a worker's counters on their own cache line. */
#define PERF_CACHE_LINE 64
/* --telemetry: room for one reply of uvsockd's telemetry (DPDK's are at most 16 KiB). */
#define PERF_TEL_REPLY (64u * 1024u)
/* sink, source: the listener's backlog. */
#define PERF_SERVE_BACKLOG 128
/* Largest --buf-size: uvsockd's limit for a socket's buffer (and ring). */
#define PERF_MAX_BUF (64ull * 1024 * 1024)
/* baseline-connrate: the listener's backlog (Linux's default somaxconn). */
#define PERF_BACKLOG 4096

enum perf_mode { PERF_BULK, PERF_MULTI, PERF_PINGPONG, PERF_CONNRATE };
enum perf_dir { PERF_H2G, PERF_G2H, PERF_BOTH };
/* Whom a run connects to: uvsock guests, or (baseline-connrate) a kernel listener. */
enum perf_peer { PERF_UVSOCK, PERF_UNIX, PERF_TCP };

/* What a run does. */
struct perf_cfg {
	enum perf_mode mode;
	enum perf_dir dir;
	enum perf_peer peer;
	unsigned int cid, cid2, port, size, guests, conns; /* cid2: g2h of --dir both */
	uint64_t count;					   /* ping-pong round trips */
	double seconds;	 /* bulk, multi, connrate: how long; pingpong: the most it may last */
	double interval; /* a STATS line every interval seconds; 0: none */
	bool busy, seqpacket, libc;
	bool echo;	       /* connrate: one byte echoed on each connection */
	uint64_t buf_size;     /* --buf-size: socket buffers (0: the defaults) */
	uint64_t bytes;	       /* source: bytes per connection */
	const char *tag;       /* --tag: appended to result names */
	const char *telemetry; /* --telemetry: uvsockd's telemetry socket, for drops in STATS */
	bool until_stop;       /* interactive: no end but "stop"; blocked calls look for it */
};

/* One result line, kept for --json. */
struct perf_result {
	char name[PERF_NAME_MAX];
	unsigned int size;
	const char *metric; /* a string literal */
	double value;
};

/* The command line, and the results of the invocation. */
static struct {
	struct perf_cfg cfg;
	const char *csv, *json;
	struct perf_result *res;
	unsigned int nres, cap;
} arg = { .cfg = { .cid = 3,
			  .port = 5000,
			  .size = 65536,
			  .count = 10000,
			  .guests = 1,
			  .conns = 100,
			  .seconds = 3.0,
			  .interval = 1.0 } };

/* One connection's counts: written by its worker only, read by the reporter. */
struct perf_ctr {
	uint64_t bytes, msgs, stalls;
};

struct perf_run;

struct perf_worker {
	alignas(PERF_CACHE_LINE) struct perf_ctr ctr; /* not on a line another worker writes */
	struct perf_run *run;
	pthread_t thread;
	enum perf_dir dir;
	unsigned int cid;
	double end; /* when its transfer was over */
	bool eof;   /* g2h: the guest finished its stream */
	int err;    /* 0 or the -errno that ended it */
	const char *what;
};

struct perf_run {
	struct perf_cfg cfg;
	struct perf_worker *w;
	unsigned int nw, started;
	double t0; /* all connected: the clock starts */
	bool stop; /* every worker ends (atomic) */
	/* ping-pong round trips in seconds: round trip i in rtt[i % rtt_keep], published up to
	 * nrtt (atomic, release) */
	double *rtt;
	uint64_t rtt_keep, nrtt;
	unsigned int active; /* workers still going (atomic) */
	/* baseline-connrate: the kernel listener, its address and its thread */
	int lfd;
	struct sockaddr_storage kaddr;
	socklen_t kaddr_len;
	pthread_t server;
	bool has_server, server_stop;
	/* the starting gate, and the reporter's sleep */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned int nready; /* under lock */
	bool go, ended;	     /* under lock */
	pthread_t reporter;
	bool has_reporter;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A counter with a single writer: a relaxed load and store, no locked instruction. */
static inline void
ctr_add(uint64_t *c, uint64_t n)
{
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

static inline uint64_t
ctr_get(const uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

static inline bool
stopped(const struct perf_run *r)
{
	return __atomic_load_n(&r->stop, __ATOMIC_RELAXED);
}

static void
result(const struct perf_cfg *c, const char *name, const char *metric, double value)
{
	char sfx[PERF_NAME_MAX];

	snprintf(sfx, sizeof(sfx), "%s%s%s",
			c->libc && strncmp(name, "uvsock", 6) == 0 ? "-libc" : "",
			c->tag != NULL ? "-" : "", c->tag != NULL ? c->tag : "");
	printf("RESULT %s%s size=%u %s=%.6g\n", name, sfx, c->size, metric, value);
	if (arg.csv != NULL) {
		FILE *f = fopen(arg.csv, "a");

		if (f != NULL) {
			fprintf(f, "%s%s,%u,%s,%.6g\n", name, sfx, c->size, metric, value);
			fclose(f);
		}
	}
	if (arg.json != NULL && arg.nres == arg.cap) {
		unsigned int cap = arg.cap == 0 ? 16 : 2 * arg.cap;
		struct perf_result *res = realloc(arg.res, cap * sizeof(*res));

		if (res == NULL) {
			fprintf(stderr, "uvsock-perf: no memory: a result left out of --json\n");
			return;
		}
		arg.res = res;
		arg.cap = cap;
	}
	if (arg.json != NULL) {
		struct perf_result *r = &arg.res[arg.nres++];

		snprintf(r->name, sizeof(r->name), "%s%s", name, sfx);
		r->size = c->size;
		r->metric = metric;
		r->value = value;
	}
}

/* --json: every result of the invocation (names and metrics are ours: nothing to escape).
 * 0 or -errno. */
static int
json_write(const char *path)
{
	FILE *f = fopen(path, "w");
	int rc = 0;

	if (f == NULL)
		return -errno;
	fputs("[", f);
	for (unsigned int i = 0; i < arg.nres; i++) {
		const struct perf_result *r = &arg.res[i];

		fprintf(f, "%s\n  {\"name\": \"%s\", \"size\": %u, \"metric\": \"%s\", \"value\": ",
				i == 0 ? "" : ",", r->name, r->size, r->metric);
		if (isfinite(r->value))
			fprintf(f, "%.6g}", r->value);
		else
			fputs("null}", f); /* JSON has no inf or nan */
	}
	fputs(arg.nres == 0 ? "]\n" : "\n]\n", f);
	if (ferror(f))
		rc = -EIO;
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	return rc;
}

/* The calls of the uvsock runs: libuvsock's, or with --libc the plain ones (through the
 * LD_PRELOAD shim). Both answer -errno. */
static long
libc_rc(long rc)
{
	return rc < 0 ? -errno : rc;
}

/* Whether a run makes plain socket calls: --libc, or the kernel's sockets of a baseline. */
static bool
plain(const struct perf_cfg *c)
{
	return c->libc || c->peer != PERF_UVSOCK;
}

static int
v_socket(bool libc, int type)
{
	return libc ? (int)libc_rc(socket(AF_VSOCK, type, 0)) : uvs_socket(type);
}

static int
v_connect(bool libc, int fd, const struct sockaddr_vm *sa)
{
	return libc ? (int)libc_rc(connect(fd, (const struct sockaddr *)sa, sizeof(*sa)))
		    : uvs_connect(fd, sa);
}

static ssize_t
v_send(bool libc, int fd, const void *buf, size_t len, int flags)
{
	return libc ? libc_rc(send(fd, buf, len, flags)) : uvs_send(fd, buf, len, flags);
}

static ssize_t
v_recv(bool libc, int fd, void *buf, size_t len, int flags)
{
	return libc ? libc_rc(recv(fd, buf, len, flags)) : uvs_recv(fd, buf, len, flags);
}

static int
v_shutdown(bool libc, int fd, int how)
{
	return libc ? (int)libc_rc(shutdown(fd, how)) : uvs_shutdown(fd, how);
}

static int
v_close(bool libc, int fd)
{
	return libc ? (int)libc_rc(close(fd)) : uvs_close(fd);
}

static int
v_setsockopt(bool libc, int fd, int level, int name, const void *val, socklen_t len)
{
	return libc ? (int)libc_rc(setsockopt(fd, level, name, val, len))
		    : uvs_setsockopt(fd, level, name, val, len);
}

static int
v_bind_listen(bool libc, int fd, unsigned int port)
{
	struct sockaddr_vm sa = {
		.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port
	};
	int rc;

	rc = libc ? (int)libc_rc(bind(fd, (const struct sockaddr *)&sa, sizeof(sa)))
		  : uvs_bind(fd, &sa);
	if (rc == 0)
		rc = libc ? (int)libc_rc(listen(fd, PERF_SERVE_BACKLOG))
			  : uvs_listen(fd, PERF_SERVE_BACKLOG);
	return rc;
}

static int
v_accept(bool libc, int fd)
{
	return libc ? (int)libc_rc(accept4(fd, NULL, NULL, SOCK_CLOEXEC)) : uvs_accept(fd, NULL, 0);
}

/* --buf-size on a vsock socket: its receive buffer, which is the credit the peer gets (and
 * with uvsockd the size of its rings). 0 or -errno. */
static int
vsock_buf(bool libc, int fd, uint64_t size)
{
	int rc;

	if (size == 0)
		return 0;
	rc = v_setsockopt(libc, fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_MAX_SIZE, &size, sizeof(size));
	if (rc == 0)
		rc = v_setsockopt(
				libc, fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &size, sizeof(size));
	return rc;
}

/* --buf-size on a kernel socket (baselines): send and receive buffers, past the sysctl
 * limits where we may (root: the FORCE options), so both sides get the same room. */
static void
kernel_buf(int fd, uint64_t size)
{
	int v = size > INT32_MAX / 2 ? INT32_MAX / 2 : (int)size;

	if (size == 0)
		return;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
}

/* --libc only under libuvsock-preload.so: socket() must not be libc's own. */
static bool
shim_loaded(void)
{
	void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	const char *pre = getenv("LD_PRELOAD");

	return libc != NULL && pre != NULL && strstr(pre, "libuvsock-preload") != NULL &&
	       dlsym(RTLD_DEFAULT, "socket") != dlsym(libc, "socket");
}

/* --- uvsock runs --- */

/* Blocked sends and receives time out every PERF_STOP_POLL_US, to look for "stop". */
static int
stop_poll(bool libc, int fd)
{
	struct timeval tv = { .tv_sec = PERF_STOP_POLL_US / 1000000,
		.tv_usec = PERF_STOP_POLL_US % 1000000 };
	int rc;

	rc = libc ? (int)libc_rc(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)))
		  : uvs_setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (rc == 0)
		rc = libc ? (int)libc_rc(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
			  : uvs_setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return rc;
}

/* A connected socket to cid, or -errno. */
static int
dial(const struct perf_cfg *c, unsigned int cid)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = c->port };
	int fd = v_socket(c->libc, c->seqpacket ? SOCK_SEQPACKET : SOCK_STREAM), rc;

	if (fd < 0)
		return fd;
	if (c->until_stop)
		rc = stop_poll(c->libc, fd);
	else
		rc = 0;
	if (rc == 0)
		rc = vsock_buf(c->libc, fd, c->buf_size);
	if (rc == 0)
		rc = v_connect(c->libc, fd, &sa);
	if (rc < 0) {
		v_close(c->libc, fd);
		return rc;
	}
	return fd;
}

static int
fail(struct perf_worker *w, const char *what, int rc)
{
	w->what = what;
	return rc;
}

/*
 * Send all of buf. Each send is tried with MSG_DONTWAIT first: finding no room (-EAGAIN) is
 * a credit stall, counted, then waited for in a blocking send. 0, -ECANCELED (stopped while
 * waiting) or -errno.
 */
static int
send_all(struct perf_worker *w, int fd, const uint8_t *buf, size_t len)
{
	bool libc = plain(&w->run->cfg);
	int flags = MSG_NOSIGNAL | MSG_DONTWAIT;
	size_t off = 0;

	while (off < len) {
		ssize_t n = v_send(libc, fd, buf + off, len - off, flags);

		if (n >= 0) {
			off += (size_t)n;
			flags |= MSG_DONTWAIT;
		} else if (n == -EAGAIN && (flags & MSG_DONTWAIT)) {
			ctr_add(&w->ctr.stalls, 1);
			flags &= ~MSG_DONTWAIT;
		} else if (n == -EAGAIN || n == -EINTR) { /* -EAGAIN: the stop_poll() timeout */
			if (stopped(w->run))
				return -ECANCELED;
		} else {
			return fail(w, "send", (int)n);
		}
	}
	return 0;
}

/* What arrives until end of stream, at most len bytes: their count, or -errno (-ETIMEDOUT:
 * more than PERF_END_WAIT_S with stop_poll()'s timeouts). */
static ssize_t
recv_to_end(struct perf_worker *w, int fd, char *buf, size_t len)
{
	double give_up = now_s() + PERF_END_WAIT_S;
	size_t got = 0;

	while (got < len) {
		ssize_t n = v_recv(plain(&w->run->cfg), fd, buf + got, len - got, 0);

		if (n == 0)
			break;
		if (n > 0)
			got += (size_t)n;
		else if (n == -EAGAIN && now_s() > give_up)
			return fail(w, "recv", -ETIMEDOUT);
		else if (n != -EINTR && n != -EAGAIN)
			return fail(w, "recv", (int)n);
	}
	return (ssize_t)got;
}

/* Exactly len bytes (end of stream is -EPIPE); with busy, spin on nonblocking receives.
 * -ECANCELED if stopped while waiting. */
static int
recv_exact(struct perf_worker *w, int fd, uint8_t *buf, size_t len, bool busy)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = v_recv(plain(&w->run->cfg), fd, buf + got, len - got,
				busy ? MSG_DONTWAIT : 0);

		if (n == -EAGAIN || n == -EINTR) {
			if (stopped(w->run))
				return -ECANCELED;
			continue;
		}
		if (n <= 0)
			return fail(w, "recv", n == 0 ? -EPIPE : (int)n);
		got += (size_t)n;
	}
	return 0;
}

/* h2g: writes until the time is up, then shutdown and the guest's "bye" once it has taken
 * everything. */
static int
bulk_h2g(struct perf_worker *w, int fd, const uint8_t *buf)
{
	struct perf_run *r = w->run;
	unsigned int size = r->cfg.size;
	char line[PERF_LINE];
	ssize_t n;
	int rc = 0;

	while (rc == 0 && now_s() - r->t0 < r->cfg.seconds && !stopped(r)) {
		for (unsigned int k = 0; k < PERF_CLOCK_EVERY && rc == 0; k++) {
			rc = send_all(w, fd, buf, size);
			ctr_add(&w->ctr.bytes, size);
			ctr_add(&w->ctr.msgs, 1);
		}
	}
	if (rc < 0 && rc != -ECANCELED)
		return rc;
	v_shutdown(r->cfg.libc, fd, SHUT_WR);
	n = recv_to_end(w, fd, line, sizeof(line));
	w->end = now_s();
	if (n < 0)
		return (int)n;
	if (n != 4 || memcmp(line, "bye\n", 4) != 0)
		return fail(w, "no bye from the guest", -EPROTO);
	return 0;
}

/* g2h: reads to end of stream, then answers the byte count. With --dir both, stops at
 * --seconds as the h2g side does, and when stopped: then closes mid-stream. */
static int
bulk_g2h(struct perf_worker *w, int fd, uint8_t *buf)
{
	struct perf_run *r = w->run;
	bool timed = r->cfg.dir == PERF_BOTH;
	char line[PERF_LINE];
	unsigned int k = 0;
	ssize_t n;
	int len;

	for (;;) {
		n = v_recv(r->cfg.libc, fd, buf, r->cfg.size, 0);
		if (n > 0) {
			ctr_add(&w->ctr.bytes, (uint64_t)n);
			ctr_add(&w->ctr.msgs, 1);
			if (++k % PERF_CLOCK_EVERY == 0 &&
					(stopped(r) || (timed && now_s() - r->t0 >= r->cfg.seconds)))
				break;
		} else if (n == 0) {
			w->eof = true;
			break;
		} else if (n == -EAGAIN || n == -EINTR) { /* -EAGAIN: the stop_poll() timeout */
			if (stopped(r))
				break;
		} else {
			return fail(w, "recv", (int)n);
		}
	}
	w->end = now_s();
	if (!w->eof)
		return 0; /* closed mid-stream: the txonly guest counts a failed connection */
	len = snprintf(line, sizeof(line), "%" PRIu64 "\n", ctr_get(&w->ctr.bytes));
	return send_all(w, fd, (const uint8_t *)line, (size_t)len);
}

/* Round trips: record each (release: the reporter reads what is published). */
static int
pingpong(struct perf_worker *w, int fd, uint8_t *buf)
{
	struct perf_run *r = w->run;
	const struct perf_cfg *c = &r->cfg;
	int rc;

	for (uint64_t i = 0; i < c->count && !stopped(r); i++) {
		double t0 = now_s();

		rc = send_all(w, fd, buf, c->size);
		if (rc == 0)
			rc = recv_exact(w, fd, buf, c->size, c->busy);
		if (rc < 0)
			return rc;
		w->end = now_s();
		r->rtt[i % r->rtt_keep] = w->end - t0;
		__atomic_store_n(&r->nrtt, i + 1, __ATOMIC_RELEASE);
		ctr_add(&w->ctr.bytes, c->size);
		ctr_add(&w->ctr.msgs, 1);
		if (w->end - r->t0 >= c->seconds)
			break;
	}
	return 0;
}

/* A connected socket to the kernel listener of a baseline, or -errno. */
static int
kdial(const struct perf_run *r)
{
	int fd = socket(r->kaddr.ss_family,
			(r->cfg.seqpacket ? SOCK_SEQPACKET : SOCK_STREAM) | SOCK_CLOEXEC, 0);
	int rc;

	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)&r->kaddr, r->kaddr_len) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

/* One connection: socket, connect, with --echo one byte there and back, close. */
static int
conn_once(struct perf_worker *w)
{
	struct perf_run *r = w->run;
	uint8_t b = 'x';
	int fd, rc = 0;

	fd = r->cfg.peer == PERF_UVSOCK ? dial(&r->cfg, w->cid) : kdial(r);
	if (fd < 0)
		return fail(w, "connect", fd);
	if (r->cfg.echo) {
		rc = send_all(w, fd, &b, 1);
		if (rc == 0)
			rc = recv_exact(w, fd, &b, 1, false);
		if (rc == 0 && b != 'x')
			rc = fail(w, "echo", -EPROTO);
		ctr_add(&w->ctr.bytes, 1);
	}
	v_close(plain(&r->cfg), fd);
	return rc;
}

/* Connections one after the other until the time is up (the clock once per connection:
 * a connection costs far more than a reading). */
static int
connrate(struct perf_worker *w)
{
	struct perf_run *r = w->run;
	int rc;

	while (!stopped(r)) {
		w->end = now_s();
		if (w->end - r->t0 >= r->cfg.seconds)
			break;
		rc = conn_once(w);
		if (rc < 0)
			return rc;
		ctr_add(&w->ctr.msgs, 1);
	}
	return 0;
}

static void *
worker_main(void *p)
{
	struct perf_worker *w = p;
	struct perf_run *r = w->run;
	bool conns = r->cfg.mode == PERF_CONNRATE; /* each loop makes its own */
	uint8_t *buf = conns ? NULL : calloc(1, r->cfg.size);
	int fd = -1, rc = 0;

	if (buf == NULL && !conns)
		rc = fail(w, "memory", -ENOMEM);
	if (rc == 0 && !conns) {
		fd = dial(&r->cfg, w->cid);
		if (fd < 0)
			rc = fail(w, "connect", fd);
	}
	/* through the gate once every worker is connected */
	pthread_mutex_lock(&r->lock);
	w->err = rc;
	r->nready++;
	pthread_cond_broadcast(&r->cond);
	while (!r->go)
		pthread_cond_wait(&r->cond, &r->lock);
	pthread_mutex_unlock(&r->lock);
	if (rc == 0 && !stopped(r)) {
		if (conns)
			rc = connrate(w);
		else if (r->cfg.mode == PERF_PINGPONG)
			rc = pingpong(w, fd, buf);
		else if (w->dir == PERF_H2G)
			rc = bulk_h2g(w, fd, buf);
		else
			rc = bulk_g2h(w, fd, buf);
	}
	if (fd >= 0)
		v_close(plain(&r->cfg), fd);
	free(buf);
	w->err = rc == -ECANCELED ? 0 : rc; /* stopped: a normal end */
	if (w->err < 0)
		__atomic_store_n(&r->stop, true, __ATOMIC_RELAXED); /* the others end too */
	__atomic_fetch_sub(&r->active, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* --- live statistics --- */

struct perf_snap {
	double t;
	uint64_t bytes, msgs, stalls, rtts;
	int64_t drops;	    /* the guests' drop counters in uvsockd (--telemetry), or -1 */
	uint64_t h2g_bytes; /* --dir both: the h2g part of bytes */
};

static void
snap_take(struct perf_run *r, struct perf_snap *s)
{
	memset(s, 0, sizeof(*s));
	s->t = now_s();
	for (unsigned int i = 0; i < r->started; i++) {
		s->bytes += ctr_get(&r->w[i].ctr.bytes);
		s->msgs += ctr_get(&r->w[i].ctr.msgs);
		s->stalls += ctr_get(&r->w[i].ctr.stalls);
		if (r->w[i].dir == PERF_H2G)
			s->h2g_bytes += ctr_get(&r->w[i].ctr.bytes);
	}
	s->rtts = __atomic_load_n(&r->nrtt, __ATOMIC_ACQUIRE);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The q quantile of sorted[0..n) (n > 0), as the RESULT lines have always taken it. */
static double
quantile(const double *sorted, uint64_t n, double q)
{
	return sorted[(size_t)((double)n * q)];
}

/*
 * Round trips from .. to (published), at most the last PERF_STATS_SAMPLES, sorted into
 * scratch: their number. While the run goes on, the oldest kept ones may be overwritten, but
 * not these: that would take rtt_keep - PERF_STATS_SAMPLES more round trips during the copy.
 */
static uint64_t
rtt_sorted(const struct perf_run *r, uint64_t from, uint64_t to, double *scratch)
{
	uint64_t n = to - from > PERF_STATS_SAMPLES ? PERF_STATS_SAMPLES : to - from;

	for (uint64_t i = 0; i < n; i++)
		scratch[i] = r->rtt[(to - n + i) % r->rtt_keep];
	qsort(scratch, n, sizeof(double), cmp_double);
	return n;
}

/* The median of the round trips from .. to, or NAN. */
static double
rtt_median(const struct perf_run *r, uint64_t from, uint64_t to, double *scratch)
{
	uint64_t n = rtt_sorted(r, from, to, scratch);

	return n == 0 ? NAN : quantile(scratch, n, 0.5);
}

static void
stats_line(struct perf_run *r, const struct perf_snap *a, const struct perf_snap *b,
		double *scratch)
{
	double dt = b->t - a->t, t = b->t - r->t0;
	uint64_t h2g = b->h2g_bytes - a->h2g_bytes;
	char both[64] = "", drops[32] = "";

	if (r->cfg.mode == PERF_PINGPONG) {
		double p50 = rtt_median(r, a->rtts, b->rtts, scratch);

		if (isnan(p50))
			fprintf(stderr, "STATS t=%.2fs rtt/s=0 p50_us=-\n", t);
		else
			fprintf(stderr, "STATS t=%.2fs rtt/s=%.0f p50_us=%.1f\n", t,
					(double)(b->rtts - a->rtts) / dt, p50 * 1e6);
		return;
	}
	if (r->cfg.mode == PERF_CONNRATE) {
		fprintf(stderr, "STATS t=%.2fs conns/s=%.0f\n", t,
				(double)(b->msgs - a->msgs) / dt);
		return;
	}
	if (r->cfg.dir == PERF_BOTH)
		snprintf(both, sizeof(both), " h2g_Gbit/s=%.3f g2h_Gbit/s=%.3f",
				(double)h2g * 8e-9 / dt,
				(double)(b->bytes - a->bytes - h2g) * 8e-9 / dt);
	if (a->drops >= 0 && b->drops >= 0)
		snprintf(drops, sizeof(drops), " drops=%" PRId64, b->drops - a->drops);
	fprintf(stderr, "STATS t=%.2fs msgs/s=%.0f Gbit/s=%.3f stalls=%" PRIu64 "%s%s\n", t,
			(double)(b->msgs - a->msgs) / dt, (double)(b->bytes - a->bytes) * 8e-9 / dt,
			b->stalls - a->stalls, drops, both);
}

/*
 * --telemetry: the sum of the drop counters (drop_*, guest_drop_*, bad_header_*, bad_chain_*)
 * of the run's guests, from uvsockd's DPDK telemetry socket ("/uvsock/guest,CID": a JSON
 * object of name: number). 0 or -errno. Once per interval, on the reporter thread.
 */
static int
tel_drops(const struct perf_cfg *c, int64_t *drops)
{
	static const char *const keys[] = { "\"drop_", "\"guest_drop_", "\"bad_header_",
		"\"bad_chain_" };
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	unsigned int ncid = c->mode == PERF_MULTI ? c->guests : 1;
	char *buf = malloc(PERF_TEL_REPLY);
	int fd, rc = 0;

	*drops = 0;
	if (buf == NULL)
		return -ENOMEM;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", c->telemetry);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
			recv(fd, buf, PERF_TEL_REPLY - 1, 0) <= 0) /* the greeting */
		rc = -errno;
	for (unsigned int i = 0; rc == 0 && i < ncid; i++) {
		char cmd[48];
		int len = snprintf(cmd, sizeof(cmd), "/uvsock/guest,%u", c->cid + i);
		ssize_t n;

		if (send(fd, cmd, (size_t)len, 0) != len ||
				(n = recv(fd, buf, PERF_TEL_REPLY - 1, 0)) <= 0) {
			rc = -EIO;
			break;
		}
		buf[n] = '\0';
		for (unsigned int k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			for (const char *p = strstr(buf, keys[k]); p != NULL;
					p = strstr(p + 1, keys[k])) {
				const char *v = strstr(p, "\":");

				if (v != NULL)
					*drops += strtoll(v + 2, NULL, 10);
			}
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}

/* One STATS line per interval, from t0 on, until the run has ended. */
static void *
reporter_main(void *p)
{
	struct perf_run *r = p;
	double *scratch = r->cfg.mode == PERF_PINGPONG ? malloc(PERF_STATS_SAMPLES * sizeof(double))
						       : NULL;
	struct perf_snap prev, cur;
	unsigned int k = 1;

	memset(&prev, 0, sizeof(prev)); /* the counters started at 0 */
	prev.t = r->t0;
	prev.drops = -1;
	if (r->cfg.telemetry != NULL && tel_drops(&r->cfg, &prev.drops) < 0)
		fprintf(stderr, "uvsock-perf: --telemetry %s: no answer: no drops in STATS\n",
				r->cfg.telemetry);
	pthread_mutex_lock(&r->lock);
	while (!r->ended) {
		double at = r->t0 + r->cfg.interval * k;
		struct timespec ts = { .tv_sec = (time_t)at,
			.tv_nsec = (long)((at - floor(at)) * 1e9) };

		if (pthread_cond_timedwait(&r->cond, &r->lock, &ts) != ETIMEDOUT || r->ended)
			continue; /* woken early: the run ended, or a spurious wake-up */
		pthread_mutex_unlock(&r->lock);
		snap_take(r, &cur);
		if (r->cfg.telemetry == NULL || tel_drops(&r->cfg, &cur.drops) < 0)
			cur.drops = -1; /* not known: no drops= in the line */
		if (r->cfg.mode != PERF_PINGPONG || scratch != NULL)
			stats_line(r, &prev, &cur, scratch);
		prev = cur;
		k++;
		pthread_mutex_lock(&r->lock);
	}
	pthread_mutex_unlock(&r->lock);
	free(scratch);
	return NULL;
}

/* --- baseline-connrate: a kernel listener that echoes until end of stream --- */

static void *
kserver_main(void *p)
{
	struct perf_run *r = p;
	uint8_t buf[PERF_LINE];
	ssize_t n;

	for (;;) {
		int fd = accept4(r->lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
			continue;
		if (fd < 0)
			return NULL;
		if (__atomic_load_n(&r->server_stop, __ATOMIC_ACQUIRE)) {
			close(fd); /* the connection that woke us up */
			return NULL;
		}
		while ((n = recv(fd, buf, sizeof(buf), 0)) > 0 &&
				send(fd, buf, (size_t)n, MSG_NOSIGNAL) == n)
			;
		close(fd);
	}
}

/* Listen on an abstract AF_UNIX address or an ephemeral loopback TCP port; start the
 * listener's thread. 0 or -errno. */
static int
kserver_start(struct perf_run *r)
{
	struct sockaddr_un *un = (struct sockaddr_un *)&r->kaddr;
	struct sockaddr_in *in = (struct sockaddr_in *)&r->kaddr;
	int type = r->cfg.seqpacket ? SOCK_SEQPACKET : SOCK_STREAM, rc = 0;

	if (r->cfg.peer == PERF_UNIX) {
		un->sun_family = AF_UNIX;
		/* abstract (sun_path[0] is 0): nothing in the file system to clean up */
		r->kaddr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
					   (size_t)snprintf(un->sun_path + 1,
							   sizeof(un->sun_path) - 1,
							   "uvsock-perf.%d", (int)getpid()));
	} else {
		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		r->kaddr_len = sizeof(*in);
	}
	r->lfd = socket(r->kaddr.ss_family, type | SOCK_CLOEXEC, 0);
	if (r->lfd < 0)
		return -errno;
	if (bind(r->lfd, (struct sockaddr *)&r->kaddr, r->kaddr_len) < 0 ||
			listen(r->lfd, PERF_BACKLOG) < 0 ||
			getsockname(r->lfd, (struct sockaddr *)&r->kaddr, &r->kaddr_len) < 0)
		rc = -errno;
	if (rc == 0 && pthread_create(&r->server, NULL, kserver_main, r) != 0)
		rc = -EAGAIN;
	if (rc < 0) {
		close(r->lfd);
		return rc;
	}
	r->has_server = true;
	return 0;
}

/* Wake the listener's thread with one last connection, wait for it, close the listener. */
static void
kserver_stop(struct perf_run *r)
{
	int fd;

	if (!r->has_server)
		return;
	__atomic_store_n(&r->server_stop, true, __ATOMIC_RELEASE);
	fd = kdial(r);
	if (fd >= 0)
		close(fd);
	else
		shutdown(r->lfd, SHUT_RDWR); /* no connection: this wakes accept() on Linux */
	pthread_join(r->server, NULL);
	close(r->lfd);
	r->has_server = false;
}

/* --- runs --- */

static void
perf_run_free(struct perf_run *r)
{
	if (r == NULL)
		return;
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r->rtt);
	free(r->w);
	free(r);
}

static struct perf_run *
perf_run_new(const struct perf_cfg *cfg)
{
	struct perf_run *r = calloc(1, sizeof(*r));
	pthread_condattr_t ca;
	bool both = cfg->mode == PERF_BULK && cfg->dir == PERF_BOTH;
	unsigned int n = cfg->mode == PERF_PINGPONG ? 1 : both ? 2 : cfg->conns;

	if (r == NULL)
		return NULL;
	r->cfg = *cfg;
	if (cfg->mode == PERF_CONNRATE)
		r->cfg.size = cfg->echo ? 1 : 0; /* the RESULT lines' size: bytes echoed */
	pthread_mutex_init(&r->lock, NULL);
	/* the reporter's deadlines are on the monotonic clock, as now_s() */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cond, &ca);
	pthread_condattr_destroy(&ca);
	r->w = aligned_alloc(PERF_CACHE_LINE, n * sizeof(*r->w));
	if (cfg->mode == PERF_PINGPONG) {
		/* percentiles over the last PERF_RTT_KEEP at most: a --count in the billions
		 * (a run bounded by --seconds) must not allocate gigabytes up front */
		r->rtt_keep = cfg->until_stop || cfg->count > PERF_RTT_KEEP ? PERF_RTT_KEEP
									    : cfg->count;
		r->rtt = calloc(r->rtt_keep, sizeof(double));
	}
	if (r->w == NULL || (cfg->mode == PERF_PINGPONG && r->rtt == NULL)) {
		perf_run_free(r);
		return NULL;
	}
	memset(r->w, 0, n * sizeof(*r->w));
	r->nw = n;
	r->active = n;
	for (unsigned int i = 0; i < n; i++) {
		r->w[i].run = r;
		r->w[i].cid = cfg->cid + i % cfg->guests;
		r->w[i].dir = cfg->dir;
	}
	if (both) { /* h2g to cid, g2h from cid2 */
		r->w[0].dir = PERF_H2G;
		r->w[1].dir = PERF_G2H;
		r->w[1].cid = cfg->cid2;
	}
	return r;
}

/* The first worker error, with what failed. */
static int
perf_run_err(const struct perf_run *r, const char **what)
{
	for (unsigned int i = 0; i < r->started; i++) {
		if (r->w[i].err < 0) {
			*what = r->w[i].what != NULL ? r->w[i].what : "run";
			return r->w[i].err;
		}
	}
	return 0;
}

/* Ends the reporter and waits for every thread of the run. */
static void
perf_run_join(struct perf_run *r)
{
	for (unsigned int i = 0; i < r->started; i++)
		pthread_join(r->w[i].thread, NULL);
	pthread_mutex_lock(&r->lock);
	r->ended = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	if (r->has_reporter)
		pthread_join(r->reporter, NULL);
	r->has_reporter = false;
	kserver_stop(r);
}

/*
 * Start the workers, let them go once all are connected (the clock starts then), start the
 * reporter. 0, or -errno with every thread of the run ended (what: the step that failed).
 */
static int
perf_run_start(struct perf_run *r, const char **what)
{
	int rc;

	if (r->cfg.peer != PERF_UVSOCK) {
		*what = "listen";
		rc = kserver_start(r);
		if (rc < 0)
			return rc;
	}
	for (r->started = 0; r->started < r->nw; r->started++) {
		if (pthread_create(&r->w[r->started].thread, NULL, worker_main,
				    &r->w[r->started]) != 0)
			break;
	}
	__atomic_fetch_sub(&r->active, r->nw - r->started, __ATOMIC_RELAXED); /* not started */
	pthread_mutex_lock(&r->lock);
	while (r->nready < r->started)
		pthread_cond_wait(&r->cond, &r->lock);
	rc = perf_run_err(r, what);
	if (r->started < r->nw && rc == 0) {
		*what = "thread";
		rc = -EAGAIN;
	}
	if (rc < 0)
		__atomic_store_n(&r->stop, true, __ATOMIC_RELAXED);
	r->t0 = now_s();
	r->go = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	if (rc < 0) {
		perf_run_join(r);
		return rc;
	}
	if (r->cfg.interval > 0) {
		r->has_reporter = pthread_create(&r->reporter, NULL, reporter_main, r) == 0;
		if (!r->has_reporter)
			fprintf(stderr, "uvsock-perf: no STATS lines (no thread for them)\n");
	}
	return 0;
}

/* When the last worker of a finished run was done. */
static double
perf_run_end(const struct perf_run *r)
{
	double end = r->t0;

	for (unsigned int i = 0; i < r->started; i++)
		end = r->w[i].end > end ? r->w[i].end : end;
	return end;
}

/* --dir both: each direction over its own time, and their sum. */
static void
report_both(const struct perf_run *r)
{
	const struct perf_cfg *c = &r->cfg;
	const char *seq = c->seqpacket ? "seq-" : "";
	const char *metric = c->seqpacket ? "msgs_per_s" : "bytes_per_s";
	double sum = 0;
	char name[PERF_NAME_MAX];

	for (unsigned int i = 0; i < 2; i++) {
		const struct perf_worker *w = &r->w[i];
		uint64_t n = c->seqpacket ? ctr_get(&w->ctr.msgs) : ctr_get(&w->ctr.bytes);
		double v = (double)n / (w->end - r->t0);

		snprintf(name, sizeof(name), "uvsock-%sbidir-%s", seq,
				w->dir == PERF_H2G ? "h2g" : "g2h");
		result(c, name, metric, v);
		if (w->dir == PERF_H2G)
			result(c, name, "stalls", (double)ctr_get(&w->ctr.stalls));
		sum += v;
	}
	snprintf(name, sizeof(name), "uvsock-%sbidir", seq);
	result(c, name, metric, sum);
	if (r->w[1].eof)
		fprintf(stderr,
				"uvsock-perf: the g2h stream ended after %.2f s, before --seconds: "
				"the two directions overlapped only so long (give the txonly guest "
				"more --bytes)\n",
				r->w[1].end - r->t0);
}

/* The RESULT lines of a finished run. */
static void
perf_run_report(struct perf_run *r)
{
	const struct perf_cfg *c = &r->cfg;
	struct perf_snap s;
	double end = perf_run_end(r);
	char name[PERF_NAME_MAX];
	int len;

	snap_take(r, &s);
	if (c->mode == PERF_PINGPONG) {
		const char *n = c->busy ? "uvsock-pingpong-busy" : "uvsock-pingpong";

		uint64_t kept = s.rtts < r->rtt_keep ? s.rtts : r->rtt_keep;

		if (kept == 0)
			return;
		qsort(r->rtt, kept, sizeof(double), cmp_double); /* the workers are done */
		result(c, n, "p50_us", quantile(r->rtt, kept, 0.5) * 1e6);
		result(c, n, "p99_us", quantile(r->rtt, kept, 0.99) * 1e6);
		result(c, n, "p999_us", quantile(r->rtt, kept, 0.999) * 1e6);
		return;
	}
	if (c->mode == PERF_CONNRATE) {
		len = snprintf(name, sizeof(name), "%s-%sconnrate",
				c->peer == PERF_UVSOCK ? "uvsock"
				: c->peer == PERF_UNIX ? "unix"
						       : "tcp",
				c->seqpacket ? "seq-" : "");

		if (r->nw > 1)
			snprintf(name + len, sizeof(name) - (size_t)len, "-x%u", r->nw);
		result(c, name, "conns_per_s", (double)s.msgs / (end - r->t0));
		return;
	}
	if (c->dir == PERF_BOTH) {
		report_both(r);
		return;
	}
	len = snprintf(name, sizeof(name), "uvsock-%s%s", c->seqpacket ? "seq-" : "",
			c->dir == PERF_H2G ? "h2g" : "g2h");
	if (c->mode == PERF_MULTI || r->nw > 1)
		snprintf(name + len, sizeof(name) - (size_t)len, "-x%u", r->nw);
	if (c->seqpacket)
		result(c, name, "msgs_per_s", (double)s.msgs / (end - r->t0));
	else
		result(c, name, "bytes_per_s", (double)s.bytes / (end - r->t0));
	if (c->dir == PERF_H2G)
		result(c, name, "stalls", (double)s.stalls);
}

/* A whole run from the command line: start, wait, report. 0 or -errno (what: what failed). */
static int
perf_run_once(const struct perf_cfg *cfg, const char **what)
{
	struct perf_run *r = perf_run_new(cfg);
	int rc;

	if (r == NULL)
		return -ENOMEM;
	rc = perf_run_start(r, what);
	if (rc == 0) {
		perf_run_join(r);
		rc = perf_run_err(r, what);
	}
	if (rc == 0)
		perf_run_report(r);
	perf_run_free(r);
	return rc;
}

/* Idle connections: open, check, hold, close. 0 or -errno. */
static int
hold(const struct perf_cfg *c)
{
	int *fds = calloc(c->conns, sizeof(int));
	struct timespec ts;
	unsigned int n;
	int rc = 0;

	if (fds == NULL)
		return -ENOMEM;
	for (n = 0; n < c->conns; n++) {
		char b = 'x';

		fds[n] = dial(c, c->cid + n % c->guests);
		if (fds[n] < 0) {
			rc = fds[n];
			break;
		}
		if (v_send(c->libc, fds[n], &b, 1, MSG_NOSIGNAL) != 1 ||
				v_recv(c->libc, fds[n], &b, 1, 0) != 1 || b != 'x') {
			n++;
			rc = -EPROTO;
			break;
		}
	}
	if (rc == 0) {
		printf("HELD %u connections over %u guests\n", c->conns, c->guests);
		fflush(stdout);
		ts.tv_sec = (time_t)c->seconds;
		ts.tv_nsec = (long)((c->seconds - (double)ts.tv_sec) * 1e9);
		nanosleep(&ts, NULL);
	}
	for (unsigned int i = 0; i < n; i++)
		v_close(c->libc, fds[i]);
	free(fds);
	return rc;
}

/* --- sink, source: the peers of bulk runs, as programs (end-to-end figures) --- */

struct serve_conn {
	const struct perf_cfg *cfg;
	bool source;
	int fd;
};

/* sink: uvsock-guest rxonly's contract: read to end of stream, answer "bye\n". */
static int
serve_sink(const struct perf_cfg *c, int fd, uint8_t *buf)
{
	ssize_t n;

	while ((n = v_recv(c->libc, fd, buf, c->size, 0)) > 0 || n == -EINTR)
		;
	if (n < 0)
		return (int)n;
	return v_send(c->libc, fd, "bye\n", 4, MSG_NOSIGNAL) == 4 ? 0 : -EPIPE;
}

/* source: uvsock-guest txonly's contract: send --bytes, shut down, expect "<bytes>\n". */
static int
serve_source(const struct perf_cfg *c, int fd, uint8_t *buf)
{
	char want[PERF_LINE], got[PERF_LINE];
	uint64_t left = c->bytes;
	size_t have = 0;
	ssize_t n;

	while (left > 0) {
		n = v_send(c->libc, fd, buf, left < c->size ? (size_t)left : c->size, MSG_NOSIGNAL);
		if (n < 0 && n != -EINTR)
			return (int)n;
		if (n > 0)
			left -= (uint64_t)n;
	}
	v_shutdown(c->libc, fd, SHUT_WR);
	while (have < sizeof(got) - 1 &&
			((n = v_recv(c->libc, fd, got + have, sizeof(got) - 1 - have, 0)) > 0 ||
					n == -EINTR))
		have += n > 0 ? (size_t)n : 0;
	got[have] = '\0';
	snprintf(want, sizeof(want), "%" PRIu64 "\n", c->bytes);
	return strcmp(got, want) == 0 ? 0 : -EPROTO;
}

static void *
serve_thread(void *p)
{
	struct serve_conn *sc = p;
	const struct perf_cfg *c = sc->cfg;
	uint8_t *buf = calloc(1, c->size);
	int rc = buf == NULL  ? -ENOMEM
		 : sc->source ? serve_source(c, sc->fd, buf)
			      : serve_sink(c, sc->fd, buf);

	if (rc < 0)
		fprintf(stderr, "uvsock-perf: %s: a connection: %s\n",
				sc->source ? "source" : "sink", strerror(-rc));
	v_close(c->libc, sc->fd);
	free(buf);
	free(sc);
	return NULL;
}

/* Listen on --port and serve each connection in a thread of its own, until killed. */
static int
serve(const struct perf_cfg *c, bool source)
{
	int lfd = v_socket(c->libc, c->seqpacket ? SOCK_SEQPACKET : SOCK_STREAM), rc;
	pthread_attr_t attr;

	if (lfd < 0)
		return lfd;
	rc = vsock_buf(c->libc, lfd, c->buf_size); /* accepted sockets inherit it */
	if (rc == 0)
		rc = v_bind_listen(c->libc, lfd, c->port);
	if (rc < 0) {
		v_close(c->libc, lfd);
		return rc;
	}
	printf("%s: listening on %u\n", source ? "source" : "sink", c->port);
	fflush(stdout);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (;;) {
		struct serve_conn *sc;
		pthread_t t;
		int fd = v_accept(c->libc, lfd);

		if (fd == -EINTR || fd == -ECONNABORTED)
			continue;
		if (fd < 0) {
			rc = fd;
			break;
		}
		sc = malloc(sizeof(*sc));
		if (sc == NULL) {
			v_close(c->libc, fd);
			continue;
		}
		*sc = (struct serve_conn){ .cfg = c, .source = source, .fd = fd };
		if (pthread_create(&t, &attr, serve_thread, sc) != 0) {
			v_close(c->libc, fd);
			free(sc);
		}
	}
	pthread_attr_destroy(&attr);
	v_close(c->libc, lfd);
	return rc;
}

/* --- baselines --- */

struct pair {
	int fd[2];
	unsigned int size;
	uint64_t bytes;
};

static void *
sink_thread(void *p)
{
	struct pair *pr = p;
	uint8_t *buf = malloc(pr->size);
	ssize_t n;

	if (buf == NULL)
		return NULL;
	while ((n = recv(pr->fd[1], buf, pr->size, 0)) > 0)
		pr->bytes += (uint64_t)n;
	free(buf);
	return NULL;
}

static int
baseline_socket(const struct perf_cfg *c, const char *name, int fd0, int fd1)
{
	struct pair pr = { .fd = { fd0, fd1 }, .size = c->size };
	uint8_t *buf = calloc(1, c->size);
	uint64_t sent = 0;
	pthread_t t;
	double t0, t1;
	int rc = 0;

	kernel_buf(fd0, c->buf_size);
	kernel_buf(fd1, c->buf_size);

	if (buf == NULL || pthread_create(&t, NULL, sink_thread, &pr) != 0) {
		free(buf);
		close(fd0);
		close(fd1);
		return buf == NULL ? -ENOMEM : -EAGAIN;
	}
	t0 = now_s();
	while (rc == 0 && now_s() - t0 < c->seconds) {
		size_t off = 0;

		while (off < c->size) {
			ssize_t n = send(fd0, buf + off, c->size - off, MSG_NOSIGNAL);

			if (n < 0) {
				rc = -errno;
				break;
			}
			off += (size_t)n;
		}
		sent += c->size;
	}
	shutdown(fd0, SHUT_WR);
	pthread_join(t, NULL);
	t1 = now_s();
	if (rc == 0 && pr.bytes != sent)
		rc = -EIO; /* lost bytes */
	if (rc == 0 && strcmp(name, "unix-seqpacket") == 0)
		result(c, name, "msgs_per_s", (double)(sent / c->size) / (t1 - t0));
	else if (rc == 0)
		result(c, name, "bytes_per_s", (double)sent / (t1 - t0));
	close(fd0);
	close(fd1);
	free(buf);
	return rc;
}

static int
tcp_pair(int fd[2])
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0), one = 1, rc = 0;

	fd[0] = fd[1] = -1;
	if (l < 0)
		return -errno;
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0 ||
			getsockname(l, (struct sockaddr *)&a, &len) < 0)
		rc = -errno;
	if (rc == 0) {
		fd[0] = socket(AF_INET, SOCK_STREAM, 0);
		if (fd[0] < 0 || connect(fd[0], (struct sockaddr *)&a, sizeof(a)) < 0)
			rc = -errno;
	}
	if (rc == 0) {
		fd[1] = accept(l, NULL, NULL);
		if (fd[1] < 0)
			rc = -errno;
	}
	close(l);
	if (rc < 0) {
		if (fd[0] >= 0)
			close(fd[0]);
		return rc;
	}
	setsockopt(fd[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

static int
baseline_memcpy(const struct perf_cfg *c)
{
	uint8_t *a = malloc(PERF_MEMCPY_BYTES), *b = malloc(PERF_MEMCPY_BYTES);
	uint64_t bytes = 0;
	double t0;
	size_t off = 0;
	int rc = 0;

	if (a == NULL || b == NULL) {
		free(a);
		free(b);
		return -ENOMEM;
	}
	memset(a, 1, PERF_MEMCPY_BYTES);
	memset(b, 2, PERF_MEMCPY_BYTES);
	t0 = now_s();
	while (now_s() - t0 < c->seconds) {
		size_t n = c->size;

		if (off + n > PERF_MEMCPY_BYTES)
			off = 0;
		memcpy(b + off, a + off, n);
		off += n;
		bytes += n;
	}
	result(c, "memcpy", "bytes_per_s", (double)bytes / (now_s() - t0));
	if (b[0] != 1)
		rc = -EIO;
	free(a);
	free(b);
	return rc;
}

static void *
echo_thread(void *p)
{
	struct pair *pr = p;
	int fd = pr->fd[1];
	uint8_t *buf = malloc(pr->size);
	ssize_t n;

	if (buf == NULL)
		return NULL;
	while ((n = recv(fd, buf, pr->size, 0)) > 0) {
		size_t off = 0;

		while (off < (size_t)n) {
			ssize_t w = send(fd, buf + off, (size_t)n - off, MSG_NOSIGNAL);

			if (w <= 0)
				break;
			off += (size_t)w;
		}
	}
	free(buf);
	return NULL;
}

static int
baseline_pingpong(const struct perf_cfg *c)
{
	struct pair pr = { .size = c->size };
	uint8_t *buf = calloc(1, c->size);
	double *rtt = calloc(c->count, sizeof(double));
	pthread_t t;
	int rc = 0;

	if (buf == NULL || rtt == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, pr.fd) < 0) {
		rc = -errno;
		goto out;
	}
	if (pthread_create(&t, NULL, echo_thread, &pr) != 0) {
		rc = -EAGAIN;
		goto out_close;
	}
	for (uint64_t i = 0; rc == 0 && i < c->count; i++) {
		double t0 = now_s();
		size_t got = 0;

		if (send(pr.fd[0], buf, c->size, 0) != (ssize_t)c->size) {
			rc = -errno;
			break;
		}
		while (got < c->size) {
			ssize_t n = recv(pr.fd[0], buf + got, c->size - got,
					c->busy ? MSG_DONTWAIT : 0);

			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n <= 0) {
				rc = n == 0 ? -EPIPE : -errno;
				break;
			}
			got += (size_t)n;
		}
		rtt[i] = now_s() - t0;
	}
	shutdown(pr.fd[0], SHUT_WR);
	pthread_join(t, NULL);
	if (rc == 0) {
		const char *name = c->busy ? "unix-pingpong-busy" : "unix-pingpong";

		qsort(rtt, c->count, sizeof(*rtt), cmp_double);
		result(c, name, "p50_us", quantile(rtt, c->count, 0.5) * 1e6);
		result(c, name, "p99_us", quantile(rtt, c->count, 0.99) * 1e6);
		result(c, name, "p999_us", quantile(rtt, c->count, 0.999) * 1e6);
	}
out_close:
	close(pr.fd[0]);
	close(pr.fd[1]);
out:
	free(rtt);
	free(buf);
	return rc;
}

static int
baseline(const struct perf_cfg *c, const char *kind)
{
	int fd[2], rc;

	if (strcmp(kind, "unix") == 0 || strcmp(kind, "unix-seqpacket") == 0) {
		bool stream = strcmp(kind, "unix") == 0;

		if (socketpair(AF_UNIX, stream ? SOCK_STREAM : SOCK_SEQPACKET, 0, fd) < 0)
			return -errno;
		return baseline_socket(c, stream ? "unix-stream" : "unix-seqpacket", fd[0], fd[1]);
	}
	if (strcmp(kind, "tcp") == 0) {
		rc = tcp_pair(fd);
		return rc < 0 ? rc : baseline_socket(c, "tcp-loopback", fd[0], fd[1]);
	}
	if (strcmp(kind, "memcpy") == 0)
		return baseline_memcpy(c);
	return -EINVAL;
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: uvsock-perf bulk|pingpong|multi|hold|connrate|sink|source|baseline KIND|"
		   "baseline-pingpong unix|baseline-connrate unix|tcp|interactive [options]\n"
		   "       uvsock-perf -i [options]   (interactive: type help)\n"
		   "  --cid C --port P      the guest (uvsock-guest or a VM) and its port\n"
		   "  --dir h2g|g2h|both    bulk direction (default h2g); both: h2g to CID and g2h\n"
		   "                        from --cid2 at once, for --seconds\n"
		   "  --cid2 C2             bulk --dir both: the txonly guest\n"
		   "  --size S              bytes per write / message (default 65536)\n"
		   "  --seconds T           bulk duration (default 3); ping-pong: at most T seconds\n"
		   "  --count N             ping-pong round trips (default 10000)\n"
		   "  --busy                ping-pong: spin on nonblocking receives\n"
		   "  --seqpacket           bulk: SOCK_SEQPACKET, one message per write: messages/s;\n"
		   "                        connrate, baseline-connrate unix: SOCK_SEQPACKET\n"
		   "  --guests G --conns N  multi, hold: N connections over guests CID .. CID+G-1;\n"
		   "                        connrate: N loops at once (default 1)\n"
		   "  --echo                connrate: one byte sent and read back per connection\n"
		   "  --interval SEC        bulk, multi, pingpong, connrate: a STATS line on stderr\n"
		   "                        every SEC seconds (default 1; interactive: 0; 0: none):\n"
		   "                        msgs/s, Gbit/s and credit stalls (sends that found no\n"
		   "                        room), round trips/s and their p50, or connections/s\n"
		   "  --libc                plain socket calls, through libuvsock-preload.so\n"
		   "  --csv FILE            also append name,size,metric,value rows to FILE\n"
		   "  --json FILE           also write the results to FILE at the end, as a JSON\n"
		   "                        array of {name, size, metric, value} objects\n"
		   "  --buf-size N          socket buffers: SO_VM_SOCKETS_BUFFER_SIZE (the credit\n"
		   "                        the peer gets), or the baselines' SO_SNDBUF/SO_RCVBUF\n"
		   "  --tag T               append \"-T\" to result names (runs with other settings)\n"
		   "  --bytes N             source: bytes per connection\n"
		   "  --telemetry PATH      uvsockd's telemetry socket (it prints it at start): STATS\n"
		   "                        lines of bulk and multi add the guests' drops (drops=N)\n"
		   "sink, source: serve bulk runs as a program, until killed (under uvsock-guest's\n"
		   "serve mode: end-to-end figures): sink reads to end of stream and answers\n"
		   "\"bye\\n\" (as uvsock-guest rxonly), source sends --bytes and expects \"<bytes>\\n\"\n"
		   "(as txonly). --port, --size (read/write unit), --buf-size, --libc, --seqpacket.\n"
		   "baseline KIND: unix, unix-seqpacket, tcp, memcpy. baseline-connrate: connrate\n"
		   "against a listener of this process (unix: --seqpacket too). See the header of\n"
		   "examples/uvsock-perf.c and bench/run.sh.\n");
}

static int
parse_uint(const char *s, unsigned long max, unsigned int *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno != 0 || end == s || *end != '\0' || v > max)
		return -EINVAL;
	*out = (unsigned int)v;
	return 0;
}

/* --- interactive mode --- */

/* What "set" changes, and the current or last run. */
struct shell {
	struct perf_cfg cfg;
	struct perf_run *run;
	bool reaped; /* run's threads are joined and its results printed */
};

static const char *const shell_modes[] = {
	[PERF_BULK] = "bulk",
	[PERF_PINGPONG] = "pingpong",
	[PERF_CONNRATE] = "connrate",
};

static void
shell_help(const struct shell *sh)
{
	const struct perf_cfg *c = &sh->cfg;

	printf("commands:\n"
	       "  start                 run the current mode until stop\n"
	       "  stop                  stop it; print its RESULT lines\n"
	       "  show stats            the current or last run: bytes, messages, rates,\n"
	       "                        stalls; ping-pong: latency percentiles\n"
	       "  set mode bulk|pingpong|connrate\n"
	       "  set size N            bytes per write or message\n"
	       "  set dir h2g|g2h       bulk direction\n"
	       "  set conns N           bulk: N connections at once; connrate: N loops\n"
	       "  set cid N | set port N\n"
	       "  set seqpacket on|off  SOCK_SEQPACKET\n"
	       "  set echo on|off       connrate: one byte echoed per connection\n"
	       "  help | quit (or end of input: stops a run first)\n"
	       "settings: mode %s size %u dir %s conns %u cid %u port %u seqpacket %s echo %s\n",
			shell_modes[c->mode], c->size, c->dir == PERF_H2G ? "h2g" : "g2h", c->conns,
			c->cid, c->port, c->seqpacket ? "on" : "off", c->echo ? "on" : "off");
}

/* Wait for the run's threads, print its error or its RESULT lines. */
static void
shell_reap(struct shell *sh)
{
	const char *what = "run";
	int rc;

	if (sh->run == NULL || sh->reaped)
		return;
	perf_run_join(sh->run);
	sh->reaped = true;
	rc = perf_run_err(sh->run, &what);
	if (rc < 0)
		fprintf(stderr, "error: %s: %s\n", what, strerror(-rc));
	else
		perf_run_report(sh->run);
}

static void
shell_start(struct shell *sh)
{
	struct perf_cfg c = sh->cfg;
	const char *what = "memory";
	struct perf_run *r;
	int rc;

	if (sh->run != NULL && !sh->reaped) {
		if (__atomic_load_n(&sh->run->active, __ATOMIC_ACQUIRE) > 0) {
			fprintf(stderr, "error: a run is going on (stop it first)\n");
			return;
		}
		shell_reap(sh); /* it ended by itself */
	}
	c.seconds = INFINITY;
	c.count = UINT64_MAX;
	c.until_stop = true;
	r = perf_run_new(&c);
	rc = r == NULL ? -ENOMEM : perf_run_start(r, &what);
	if (rc < 0) {
		fprintf(stderr, "error: start: %s: %s\n", what, strerror(-rc));
		perf_run_free(r);
		return;
	}
	perf_run_free(sh->run);
	sh->run = r;
	sh->reaped = false;
	printf("started %s%s%s to cid %u port %u (stop to end it)\n",
			c.seqpacket ? "seqpacket " : "", shell_modes[c.mode],
			c.mode == PERF_BULK ? (c.dir == PERF_H2G ? " h2g" : " g2h") : "", c.cid,
			c.port);
}

static void
shell_stop(struct shell *sh)
{
	if (sh->run == NULL || sh->reaped) {
		fprintf(stderr, "error: nothing is running\n");
		return;
	}
	__atomic_store_n(&sh->run->stop, true, __ATOMIC_RELAXED);
	shell_reap(sh);
	printf("stopped\n");
}

static void
shell_stats(struct shell *sh)
{
	struct perf_run *r = sh->run;
	const struct perf_cfg *c;
	struct perf_snap s;
	const char *state, *what = "run";
	double t, end;
	int err = 0;

	if (r == NULL) {
		printf("no run yet\n");
		return;
	}
	c = &r->cfg;
	snap_take(r, &s);
	if (__atomic_load_n(&r->active, __ATOMIC_ACQUIRE) > 0) {
		state = "running";
		end = s.t;
	} else { /* the workers are done with their state */
		end = perf_run_end(r);
		err = perf_run_err(r, &what);
		state = err < 0 ? "failed" : sh->reaped ? "stopped" : "ended";
	}
	t = end > r->t0 ? end - r->t0 : 0;
	printf("run: mode=%s dir=%s size=%u conns=%u seqpacket=%s state=%s t=%.2fs\n",
			shell_modes[c->mode], c->dir == PERF_H2G ? "h2g" : "g2h", c->size, r->nw,
			c->seqpacket ? "on" : "off", state, t);
	if (err < 0)
		printf("error: %s: %s\n", what, strerror(-err));
	if (t == 0)
		t = 1e-9; /* no time yet: rates 0 */
	if (c->mode == PERF_CONNRATE) {
		printf("stats: connections=%" PRIu64 " conns/s=%.0f\n", s.msgs, (double)s.msgs / t);
	} else if (c->mode == PERF_PINGPONG) {
		double *scratch = malloc(PERF_STATS_SAMPLES * sizeof(double));
		uint64_t n = scratch == NULL ? 0 : rtt_sorted(r, 0, s.rtts, scratch);

		printf("stats: bytes=%" PRIu64 " round_trips=%" PRIu64 " rtt/s=%.0f", s.bytes,
				s.rtts, (double)s.rtts / t);
		if (n > 0)
			printf(" p50_us=%.1f p99_us=%.1f p999_us=%.1f (last %" PRIu64 ")",
					quantile(scratch, n, 0.5) * 1e6,
					quantile(scratch, n, 0.99) * 1e6,
					quantile(scratch, n, 0.999) * 1e6, n);
		printf("\n");
		free(scratch);
	} else {
		printf("stats: bytes=%" PRIu64 " msgs=%" PRIu64 " stalls=%" PRIu64
		       " msgs/s=%.0f Gbit/s=%.3f\n",
				s.bytes, s.msgs, s.stalls, (double)s.msgs / t,
				(double)s.bytes * 8e-9 / t);
	}
}

/* "set KEY VALUE": 0, or -EINVAL (bad value), -ENOENT (no such setting). */
static int
shell_set(struct shell *sh, const char *key, const char *val)
{
	struct perf_cfg *c = &sh->cfg;
	unsigned int v;

	if (strcmp(key, "mode") == 0) {
		for (unsigned int m = 0; m < sizeof(shell_modes) / sizeof(shell_modes[0]); m++) {
			if (shell_modes[m] != NULL && strcmp(val, shell_modes[m]) == 0) {
				c->mode = (enum perf_mode)m;
				return 0;
			}
		}
		return -EINVAL;
	}
	if (strcmp(key, "dir") == 0) {
		if (strcmp(val, "h2g") != 0 && strcmp(val, "g2h") != 0)
			return -EINVAL;
		c->dir = strcmp(val, "h2g") == 0 ? PERF_H2G : PERF_G2H;
		return 0;
	}
	if (strcmp(key, "seqpacket") == 0 || strcmp(key, "echo") == 0) {
		bool *b = strcmp(key, "echo") == 0 ? &c->echo : &c->seqpacket;

		if (strcmp(val, "on") != 0 && strcmp(val, "off") != 0)
			return -EINVAL;
		*b = strcmp(val, "on") == 0;
		return 0;
	}
	if (strcmp(key, "size") == 0 || strcmp(key, "conns") == 0) {
		bool size = strcmp(key, "size") == 0;

		if (parse_uint(val, size ? PERF_MAX_SIZE : PERF_MAX_CONNS, &v) < 0 || v == 0)
			return -EINVAL;
		*(size ? &c->size : &c->conns) = v;
		return 0;
	}
	if (strcmp(key, "cid") == 0)
		return parse_uint(val, UINT32_MAX, &c->cid);
	if (strcmp(key, "port") == 0)
		return parse_uint(val, UINT32_MAX, &c->port);
	return -ENOENT;
}

/* One command line, split into words. false: quit. */
static bool
shell_do(struct shell *sh, char **w, unsigned int n)
{
	int rc;

	if ((strcmp(w[0], "quit") == 0 || strcmp(w[0], "exit") == 0) && n == 1)
		return false;
	if (strcmp(w[0], "set") == 0) {
		if (n != 3) {
			fprintf(stderr, "error: usage: set KEY VALUE (see help)\n");
			return true;
		}
		rc = shell_set(sh, w[1], w[2]);
		if (rc == -ENOENT)
			fprintf(stderr, "error: no setting '%s' (see help)\n", w[1]);
		else if (rc < 0)
			fprintf(stderr, "error: '%s' is not a value for %s (see help)\n", w[2],
					w[1]);
		else if (sh->run != NULL && __atomic_load_n(&sh->run->active, __ATOMIC_ACQUIRE) > 0)
			printf("(for the next start)\n");
		return true;
	}
	if (strcmp(w[0], "show") == 0 && n == 2 && strcmp(w[1], "stats") == 0)
		shell_stats(sh);
	else if (strcmp(w[0], "start") == 0 && n == 1)
		shell_start(sh);
	else if (strcmp(w[0], "stop") == 0 && n == 1)
		shell_stop(sh);
	else if (strcmp(w[0], "help") == 0 && n == 1)
		shell_help(sh);
	else
		fprintf(stderr, "error: unknown command '%s' (see help)\n", w[0]);
	return true;
}

/*
 * testpmd-style: commands from stdin (a prompt when it is a terminal) until quit or end of
 * input. Runs go on in their own threads meanwhile. 0 or -errno.
 */
static int
shell(const struct perf_cfg *cfg)
{
	struct shell sh = { .cfg = *cfg };
	bool tty = isatty(STDIN_FILENO), go = true;
	char line[PERF_LINE_MAX];

	if (tty)
		printf("uvsock-perf interactive: help lists the commands\n");
	while (go) {
		char *w[PERF_MAX_WORDS + 1], *save = NULL;
		unsigned int n = 0;

		if (tty)
			printf("uvsock-perf> ");
		fflush(stdout);
		if (fgets(line, sizeof(line), stdin) == NULL)
			break;
		if (strchr(line, '\n') == NULL && !feof(stdin)) {
			int ch;

			while ((ch = getchar()) != '\n' && ch != EOF)
				;
			fprintf(stderr, "error: a line longer than %d characters\n",
					PERF_LINE_MAX - 2);
			continue;
		}
		for (char *t = strtok_r(line, " \t\r\n", &save); t != NULL && n <= PERF_MAX_WORDS;
				t = strtok_r(NULL, " \t\r\n", &save))
			w[n++] = t;
		if (n > PERF_MAX_WORDS)
			fprintf(stderr, "error: too many words\n");
		else if (n > 0)
			go = shell_do(&sh, w, n);
	}
	if (sh.run != NULL && !sh.reaped) {
		__atomic_store_n(&sh.run->stop, true, __ATOMIC_RELAXED);
		shell_reap(&sh);
	}
	fflush(stdout);
	perf_run_free(sh.run);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cid", required_argument, NULL, 'c' },
		{ "port", required_argument, NULL, 'p' },
		{ "dir", required_argument, NULL, 'd' },
		{ "size", required_argument, NULL, 's' },
		{ "seconds", required_argument, NULL, 't' },
		{ "count", required_argument, NULL, 'n' },
		{ "busy", no_argument, NULL, 'b' },
		{ "seqpacket", no_argument, NULL, 'q' },
		{ "guests", required_argument, NULL, 'g' },
		{ "libc", no_argument, NULL, 'L' },
		{ "conns", required_argument, NULL, 'N' },
		{ "csv", required_argument, NULL, 'o' },
		{ "interval", required_argument, NULL, 'I' },
		{ "echo", no_argument, NULL, 'e' },
		{ "cid2", required_argument, NULL, 'C' },
		{ "json", required_argument, NULL, 'j' },
		{ "buf-size", required_argument, NULL, 'B' },
		{ "tag", required_argument, NULL, 'T' },
		{ "bytes", required_argument, NULL, 'y' },
		{ "telemetry", required_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct perf_cfg *c = &arg.cfg;
	const char *cmd, *what, *dir = "h2g";
	unsigned int count = 0;
	bool bad = false, seconds_set = false, conns_set = false, cid2_set = false;
	bool interval_set = false, interactive = false;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "hi", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			bad |= parse_uint(optarg, UINT32_MAX, &c->cid) < 0;
			break;
		case 'p':
			bad |= parse_uint(optarg, UINT32_MAX, &c->port) < 0;
			break;
		case 'd':
			dir = optarg;
			break;
		case 's':
			bad |= parse_uint(optarg, PERF_MAX_SIZE, &c->size) < 0;
			break;
		case 't':
			c->seconds = strtod(optarg, NULL);
			seconds_set = true;
			break;
		case 'n':
			bad |= parse_uint(optarg, UINT32_MAX, &count) < 0;
			c->count = count;
			break;
		case 'b':
			c->busy = true;
			break;
		case 'q':
			c->seqpacket = true;
			break;
		case 'g':
			bad |= parse_uint(optarg, UINT32_MAX, &c->guests) < 0;
			break;
		case 'L':
			c->libc = true;
			break;
		case 'N':
			bad |= parse_uint(optarg, PERF_MAX_CONNS, &c->conns) < 0;
			conns_set = true;
			break;
		case 'o':
			arg.csv = optarg;
			break;
		case 'I':
			c->interval = strtod(optarg, NULL);
			interval_set = true;
			break;
		case 'i':
			interactive = true;
			break;
		case 'e':
			c->echo = true;
			break;
		case 'C':
			bad |= parse_uint(optarg, UINT32_MAX, &c->cid2) < 0;
			cid2_set = true;
			break;
		case 'j':
			arg.json = optarg;
			break;
		case 'B':
			c->buf_size = strtoull(optarg, NULL, 0);
			bad |= c->buf_size == 0 || c->buf_size > PERF_MAX_BUF;
			break;
		case 'T':
			c->tag = optarg;
			bad |= strlen(optarg) > PERF_NAME_MAX / 4;
			break;
		case 'y':
			c->bytes = strtoull(optarg, NULL, 0);
			bad |= c->bytes == 0;
			break;
		case 'M':
			c->telemetry = optarg;
			bad |= strlen(optarg) >= sizeof(((struct sockaddr_un *)0)->sun_path);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (strcmp(dir, "h2g") == 0)
		c->dir = PERF_H2G;
	else if (strcmp(dir, "g2h") == 0)
		c->dir = PERF_G2H;
	else if (strcmp(dir, "both") == 0)
		c->dir = PERF_BOTH;
	else
		bad = true;
	interactive |= optind < argc && strcmp(argv[optind], "interactive") == 0;
	if (bad || (optind >= argc && !interactive) || c->size == 0 || c->count == 0 ||
			!(c->seconds > 0) ||
			!(c->interval == 0 || c->interval >= PERF_MIN_INTERVAL)) {
		usage(stderr);
		return 2;
	}
	if (c->libc && !shim_loaded()) {
		fprintf(stderr, "uvsock-perf: --libc needs LD_PRELOAD=libuvsock-preload.so (the "
				"kernel's AF_VSOCK is never used)\n");
		return 2;
	}
	what = cmd = interactive ? "interactive" : argv[optind];
	if (strcmp(cmd, "bulk") != 0 && c->dir == PERF_BOTH) {
		fprintf(stderr, "uvsock-perf: --dir both is for bulk\n");
		return 2;
	}
	if (interactive) {
		c->mode = PERF_BULK;
		if (!conns_set)
			c->conns = 1;
		if (!interval_set)
			c->interval = 0; /* lines on stderr would run through the prompt */
		rc = shell(c);
	} else if (strcmp(cmd, "bulk") == 0) {
		if (c->dir == PERF_BOTH && !cid2_set) {
			fprintf(stderr, "uvsock-perf: --dir both needs --cid2 (the txonly guest)\n");
			return 2;
		}
		c->mode = PERF_BULK;
		c->conns = 1;
		rc = perf_run_once(c, &what);
	} else if (strcmp(cmd, "multi") == 0 || strcmp(cmd, "hold") == 0) {
		if (c->guests == 0 || c->conns == 0) {
			fprintf(stderr, "uvsock-perf: %s needs --guests and --conns above 0\n",
					cmd);
			return 2;
		}
		c->mode = PERF_MULTI;
		c->dir = PERF_H2G;
		rc = strcmp(cmd, "multi") == 0 ? perf_run_once(c, &what) : hold(c);
	} else if (strcmp(cmd, "pingpong") == 0) {
		c->mode = PERF_PINGPONG;
		if (!seconds_set)
			c->seconds = INFINITY; /* --count round trips, however long they take */
		rc = perf_run_once(c, &what);
	} else if (strcmp(cmd, "connrate") == 0 || strcmp(cmd, "baseline-connrate") == 0) {
		const char *kind = optind + 1 < argc ? argv[optind + 1] : "";

		c->mode = PERF_CONNRATE;
		if (!conns_set)
			c->conns = 1;
		if (strcmp(cmd, "connrate") == 0)
			c->peer = PERF_UVSOCK;
		else if (strcmp(kind, "unix") == 0)
			c->peer = PERF_UNIX;
		else if (strcmp(kind, "tcp") == 0 && !c->seqpacket)
			c->peer = PERF_TCP;
		else
			bad = true;
		if (bad || c->conns == 0 || c->guests == 0) {
			usage(stderr);
			return 2;
		}
		rc = perf_run_once(c, &what);
	} else if (strcmp(cmd, "sink") == 0 || strcmp(cmd, "source") == 0) {
		if (strcmp(cmd, "source") == 0 && c->bytes == 0) {
			fprintf(stderr, "uvsock-perf: source needs --bytes\n");
			return 2;
		}
		rc = serve(c, strcmp(cmd, "source") == 0);
	} else if (strcmp(cmd, "baseline-pingpong") == 0) {
		rc = baseline_pingpong(c);
	} else if (strcmp(cmd, "baseline") == 0 && optind + 1 < argc) {
		rc = baseline(c, argv[optind + 1]);
		if (rc == -EINVAL) {
			usage(stderr);
			return 2;
		}
	} else {
		usage(stderr);
		return 2;
	}
	if (rc < 0)
		fprintf(stderr, "uvsock-perf: %s: %s\n", what, strerror(-rc));
	if (arg.json != NULL) {
		int jrc = json_write(arg.json);

		if (jrc < 0) {
			fprintf(stderr, "uvsock-perf: %s: %s\n", arg.json, strerror(-jrc));
			rc = jrc;
		}
	}
	free(arg.res);
	return rc < 0 ? 1 : 0;
}
