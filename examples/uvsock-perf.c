/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * uvsock-perf: throughput and latency of uvsock (native API) against a guest, and of the
 * kernel's local IPC on the same machine as baselines, printed as one result line each
 * (and optionally appended to a CSV file). bench/run.sh runs a whole comparison with it.
 *
 *   uvsock-perf bulk --cid C --port P --dir h2g|g2h [--size S] [--seconds T]
 *       h2g: writes of S bytes to a guest in rxonly mode (uvsock-guest --mode rxonly
 *       --listen P) for T seconds, then shutdown, wait for its "bye": bytes/s.
 *       g2h: reads from a guest in txonly mode (--mode txonly --listen P --bytes N) to end
 *       of stream, answers the count: bytes/s.
 *   uvsock-perf pingpong --cid C --port P [--size S] [--count N] [--busy]
 *       S bytes to a guest in echo mode and back, N times: round-trip p50/p99/p99.9.
 *       --busy: spin on nonblocking receives instead of sleeping.
 *   uvsock-perf bulk ... --seqpacket
 *       the same with SOCK_SEQPACKET, one message per write (uvsock-guest --seqpacket):
 *       messages/s.
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
 *
 * --libc: the uvsock runs use the plain socket calls (socket(AF_VSOCK), send, recv, ...)
 * instead of libuvsock's, to measure libuvsock-preload.so against the native API; result names
 * get "-libc". Refused unless the shim is loaded (the kernel's AF_VSOCK is never used).
 *
 * Result lines: "RESULT <name> size=<S> <metric>=<value> ..." and, with --csv FILE, one
 * "name,size,metric,value" row per metric.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "uvsock.h"

/* memcpy baseline: buffers larger than the last-level cache, so memory is what is measured. */
#define PERF_MEMCPY_BYTES (64u * 1024u * 1024u)
/* Largest transfer unit accepted on the command line. */
#define PERF_MAX_SIZE (16u * 1024u * 1024u)

static struct {
	unsigned int cid, port, size, count, guests, conns;
	double seconds;
	bool busy, seqpacket, libc;
	const char *dir;
	const char *csv;
} arg = { .cid = 3,
	.port = 5000,
	.size = 65536,
	.count = 10000,
	.guests = 1,
	.conns = 100,
	.seconds = 3.0,
	.dir = "h2g" };

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void
result(const char *name, const char *metric, double value)
{
	const char *sfx = arg.libc && strncmp(name, "uvsock", 6) == 0 ? "-libc" : "";

	printf("RESULT %s%s size=%u %s=%.6g\n", name, sfx, arg.size, metric, value);
	if (arg.csv != NULL) {
		FILE *f = fopen(arg.csv, "a");

		if (f != NULL) {
			fprintf(f, "%s%s,%u,%s,%.6g\n", name, sfx, arg.size, metric, value);
			fclose(f);
		}
	}
}

/* The calls of the uvsock runs: libuvsock's, or with --libc the plain ones (through the
 * LD_PRELOAD shim). Both answer -errno. */
static long
libc_rc(long rc)
{
	return rc < 0 ? -errno : rc;
}

static int
v_socket(int type)
{
	return arg.libc ? (int)libc_rc(socket(AF_VSOCK, type, 0)) : uvs_socket(type);
}

static int
v_connect(int fd, const struct sockaddr_vm *sa)
{
	return arg.libc ? (int)libc_rc(connect(fd, (const struct sockaddr *)sa, sizeof(*sa)))
			: uvs_connect(fd, sa);
}

static ssize_t
v_send(int fd, const void *buf, size_t len, int flags)
{
	return arg.libc ? libc_rc(send(fd, buf, len, flags)) : uvs_send(fd, buf, len, flags);
}

static ssize_t
v_recv(int fd, void *buf, size_t len, int flags)
{
	return arg.libc ? libc_rc(recv(fd, buf, len, flags)) : uvs_recv(fd, buf, len, flags);
}

static int
v_shutdown(int fd, int how)
{
	return arg.libc ? (int)libc_rc(shutdown(fd, how)) : uvs_shutdown(fd, how);
}

static int
v_close(int fd)
{
	return arg.libc ? (int)libc_rc(close(fd)) : uvs_close(fd);
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

static void
die(const char *what, int err)
{
	fprintf(stderr, "uvsock-perf: %s: %s\n", what, strerror(err));
	exit(1);
}

/* --- uvsock --- */

static int
uvs_dial_cid(unsigned int cid)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = arg.port };
	int fd = v_socket(arg.seqpacket ? SOCK_SEQPACKET : SOCK_STREAM), rc;

	if (fd < 0)
		die("socket", -fd);
	rc = v_connect(fd, &sa);
	if (rc < 0)
		die("connect", -rc);
	return fd;
}

static int
uvs_dial(void)
{
	return uvs_dial_cid(arg.cid);
}

static void
uvs_send_all(int fd, const uint8_t *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = v_send(fd, buf + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && n != -EINTR)
			die("send", (int)-n);
		if (n > 0)
			off += (size_t)n;
	}
}

static void
bulk(void)
{
	uint8_t *buf = calloc(1, arg.size > 65536 ? arg.size : 65536);
	int fd = uvs_dial();
	uint64_t bytes = 0, msgs = 0;
	double t0, t1;
	ssize_t n;
	char line[64];

	if (buf == NULL)
		die("memory", ENOMEM);
	t0 = now_s();
	if (strcmp(arg.dir, "h2g") == 0) {
		while (now_s() - t0 < arg.seconds) {
			for (int k = 0; k < 64; k++) { /* the clock every 64 writes */
				uvs_send_all(fd, buf, arg.size);
				bytes += arg.size;
				msgs++;
			}
		}
		v_shutdown(fd, SHUT_WR);
		/* the guest answers "bye" once it has taken everything */
		n = v_recv(fd, line, sizeof(line), MSG_WAITALL);
		t1 = now_s();
		if (n != 4 || memcmp(line, "bye\n", 4) != 0)
			die("no bye from the guest", EPROTO);
		if (arg.seqpacket)
			result("uvsock-seq-h2g", "msgs_per_s", (double)msgs / (t1 - t0));
		else
			result("uvsock-h2g", "bytes_per_s", (double)bytes / (t1 - t0));
	} else {
		while ((n = v_recv(fd, buf, arg.size, 0)) > 0 || n == -EINTR) {
			if (n > 0) {
				bytes += (uint64_t)n;
				msgs++;
			}
		}
		t1 = now_s();
		if (n < 0)
			die("recv", (int)-n);
		n = snprintf(line, sizeof(line), "%" PRIu64 "\n", bytes);
		uvs_send_all(fd, (uint8_t *)line, (size_t)n);
		if (arg.seqpacket)
			result("uvsock-seq-g2h", "msgs_per_s", (double)msgs / (t1 - t0));
		else
			result("uvsock-g2h", "bytes_per_s", (double)bytes / (t1 - t0));
	}
	v_close(fd);
	free(buf);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
report_latency(const char *name, double *rtt, unsigned int n)
{
	qsort(rtt, n, sizeof(*rtt), cmp_double);
	result(name, "p50_us", rtt[n / 2] * 1e6);
	result(name, "p99_us", rtt[(size_t)((double)n * 0.99)] * 1e6);
	result(name, "p999_us", rtt[(size_t)((double)n * 0.999)] * 1e6);
}

static void
pingpong(void)
{
	uint8_t *buf = calloc(1, arg.size);
	double *rtt = calloc(arg.count, sizeof(double));
	int fd = uvs_dial();

	if (buf == NULL || rtt == NULL)
		die("memory", ENOMEM);
	for (unsigned int i = 0; i < arg.count; i++) {
		double t0 = now_s();
		size_t got = 0;

		uvs_send_all(fd, buf, arg.size);
		while (got < arg.size) {
			ssize_t n = v_recv(
					fd, buf + got, arg.size - got, arg.busy ? MSG_DONTWAIT : 0);

			if (n == -EAGAIN || n == -EINTR)
				continue;
			if (n <= 0)
				die("recv", n == 0 ? EPIPE : (int)-n);
			got += (size_t)n;
		}
		rtt[i] = now_s() - t0;
	}
	report_latency(arg.busy ? "uvsock-pingpong-busy" : "uvsock-pingpong", rtt, arg.count);
	v_close(fd);
	free(rtt);
	free(buf);
}

/* multi: one thread per connection, all sending for the same time. */
struct mconn {
	pthread_t t;
	unsigned int cid;
	uint64_t bytes;
	double end;
};

static pthread_barrier_t mbar;
static double mstart;

static void *
multi_thread(void *p)
{
	struct mconn *m = p;
	uint8_t *buf = calloc(1, arg.size);
	int fd = uvs_dial_cid(m->cid);
	char line[8];

	if (buf == NULL)
		die("memory", ENOMEM);
	pthread_barrier_wait(&mbar); /* everybody connected */
	while (now_s() - mstart < arg.seconds) {
		for (int k = 0; k < 16; k++) {
			uvs_send_all(fd, buf, arg.size);
			m->bytes += arg.size;
		}
	}
	v_shutdown(fd, SHUT_WR);
	if (v_recv(fd, line, sizeof(line), MSG_WAITALL) != 4)
		die("no bye from the guest", EPROTO);
	m->end = now_s();
	v_close(fd);
	free(buf);
	return NULL;
}

/* N connections over the guests cid .. cid+G-1 (rxonly), h2g at once: aggregate bytes/s. */
static void
multi(void)
{
	struct mconn *m = calloc(arg.conns, sizeof(*m));
	uint64_t total = 0;
	double end = 0;
	char name[64];

	if (m == NULL)
		die("memory", ENOMEM);
	pthread_barrier_init(&mbar, NULL, arg.conns + 1);
	mstart = now_s() + 3600; /* nobody stops before the start */
	for (unsigned int i = 0; i < arg.conns; i++) {
		m[i].cid = arg.cid + i % arg.guests;
		if (pthread_create(&m[i].t, NULL, multi_thread, &m[i]) != 0)
			die("thread", EAGAIN);
	}
	mstart = now_s();
	pthread_barrier_wait(&mbar);
	for (unsigned int i = 0; i < arg.conns; i++) {
		pthread_join(m[i].t, NULL);
		total += m[i].bytes;
		if (m[i].end > end)
			end = m[i].end;
	}
	snprintf(name, sizeof(name), "uvsock-h2g-x%u", arg.conns);
	result(name, "bytes_per_s", (double)total / (end - mstart));
	free(m);
}

/* Idle connections: open, check, hold, close. */
static void
hold(void)
{
	int *fds = calloc(arg.conns, sizeof(int));
	struct timespec ts;

	if (fds == NULL)
		die("memory", ENOMEM);
	for (unsigned int i = 0; i < arg.conns; i++) {
		struct sockaddr_vm sa = { .svm_family = AF_VSOCK,
			.svm_cid = arg.cid + i % arg.guests,
			.svm_port = arg.port };
		char b = 'x';
		int rc;

		fds[i] = v_socket(SOCK_STREAM);
		if (fds[i] < 0)
			die("socket", -fds[i]);
		rc = v_connect(fds[i], &sa);
		if (rc < 0)
			die("connect", -rc);
		uvs_send_all(fds[i], (const uint8_t *)&b, 1);
		if (v_recv(fds[i], &b, 1, 0) != 1 || b != 'x')
			die("echo", EPROTO);
	}
	printf("HELD %u connections over %u guests\n", arg.conns, arg.guests);
	fflush(stdout);
	ts.tv_sec = (time_t)arg.seconds;
	ts.tv_nsec = (long)((arg.seconds - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
	for (unsigned int i = 0; i < arg.conns; i++)
		v_close(fds[i]);
	free(fds);
}

/* --- baselines --- */

struct pair {
	int fd[2];
	uint64_t bytes;
	bool seqpacket;
};

static void *
sink_thread(void *p)
{
	struct pair *pr = p;
	uint8_t *buf = malloc(arg.size > 65536 ? arg.size : 65536);
	ssize_t n;

	while ((n = recv(pr->fd[1], buf, arg.size, 0)) > 0)
		pr->bytes += (uint64_t)n;
	free(buf);
	return NULL;
}

static void
baseline_socket(const char *name, int fd0, int fd1)
{
	struct pair pr = { .fd = { fd0, fd1 } };
	uint8_t *buf = calloc(1, arg.size);
	uint64_t sent = 0;
	pthread_t t;
	double t0, t1;

	if (buf == NULL)
		die("memory", ENOMEM);
	pthread_create(&t, NULL, sink_thread, &pr);
	t0 = now_s();
	while (now_s() - t0 < arg.seconds) {
		size_t off = 0;

		while (off < arg.size) {
			ssize_t n = send(fd0, buf + off, arg.size - off, MSG_NOSIGNAL);

			if (n < 0)
				die("send", errno);
			off += (size_t)n;
		}
		sent += arg.size;
	}
	shutdown(fd0, SHUT_WR);
	pthread_join(t, NULL);
	t1 = now_s();
	if (pr.bytes != sent)
		die("baseline lost bytes", EIO);
	if (strcmp(name, "unix-seqpacket") == 0)
		result(name, "msgs_per_s", (double)(sent / arg.size) / (t1 - t0));
	else
		result(name, "bytes_per_s", (double)sent / (t1 - t0));
	close(fd0);
	close(fd1);
	free(buf);
}

static void
tcp_pair(int fd[2])
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0 ||
			getsockname(l, (struct sockaddr *)&a, &len) < 0)
		die("tcp listen", errno);
	fd[0] = socket(AF_INET, SOCK_STREAM, 0);
	if (fd[0] < 0 || connect(fd[0], (struct sockaddr *)&a, sizeof(a)) < 0)
		die("tcp connect", errno);
	fd[1] = accept(l, NULL, NULL);
	if (fd[1] < 0)
		die("tcp accept", errno);
	setsockopt(fd[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	close(l);
}

static void
baseline_memcpy(void)
{
	uint8_t *a = malloc(PERF_MEMCPY_BYTES), *b = malloc(PERF_MEMCPY_BYTES);
	uint64_t bytes = 0;
	double t0;
	size_t off = 0;

	if (a == NULL || b == NULL)
		die("memory", ENOMEM);
	memset(a, 1, PERF_MEMCPY_BYTES);
	memset(b, 2, PERF_MEMCPY_BYTES);
	t0 = now_s();
	while (now_s() - t0 < arg.seconds) {
		size_t n = arg.size;

		if (off + n > PERF_MEMCPY_BYTES)
			off = 0;
		memcpy(b + off, a + off, n);
		off += n;
		bytes += n;
	}
	result("memcpy", "bytes_per_s", (double)bytes / (now_s() - t0));
	if (b[0] != 1)
		die("memcpy", EIO);
	free(a);
	free(b);
}

static void *
echo_thread(void *p)
{
	int fd = *(int *)p;
	uint8_t *buf = malloc(arg.size);
	ssize_t n;

	while ((n = recv(fd, buf, arg.size, 0)) > 0) {
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

static void
baseline_pingpong(void)
{
	int fd[2];
	uint8_t *buf = calloc(1, arg.size);
	double *rtt = calloc(arg.count, sizeof(double));
	pthread_t t;

	if (buf == NULL || rtt == NULL || socketpair(AF_UNIX, SOCK_STREAM, 0, fd) < 0)
		die("setup", errno ? errno : ENOMEM);
	pthread_create(&t, NULL, echo_thread, &fd[1]);
	for (unsigned int i = 0; i < arg.count; i++) {
		double t0 = now_s();
		size_t got = 0;

		if (send(fd[0], buf, arg.size, 0) != (ssize_t)arg.size)
			die("send", errno);
		while (got < arg.size) {
			ssize_t n = recv(fd[0], buf + got, arg.size - got,
					arg.busy ? MSG_DONTWAIT : 0);

			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n <= 0)
				die("recv", n == 0 ? EPIPE : errno);
			got += (size_t)n;
		}
		rtt[i] = now_s() - t0;
	}
	shutdown(fd[0], SHUT_WR);
	pthread_join(t, NULL);
	report_latency(arg.busy ? "unix-pingpong-busy" : "unix-pingpong", rtt, arg.count);
	close(fd[0]);
	close(fd[1]);
	free(rtt);
	free(buf);
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: uvsock-perf bulk|pingpong|multi|hold|baseline KIND|"
		   "baseline-pingpong unix "
		   "[options]\n"
		   "  --cid C --port P      the guest (uvsock-guest or a VM) and its port\n"
		   "  --dir h2g|g2h         bulk direction (default h2g)\n"
		   "  --size S              bytes per write / message (default 65536)\n"
		   "  --seconds T           bulk duration (default 3)\n"
		   "  --count N             ping-pong round trips (default 10000)\n"
		   "  --busy                ping-pong: spin on nonblocking receives\n"
		   "  --seqpacket           bulk: SOCK_SEQPACKET, one message per write: messages/s\n"
		   "  --guests G --conns N  multi, hold: N connections over guests CID .. CID+G-1\n"
		   "  --libc                plain socket calls, through libuvsock-preload.so\n"
		   "  --csv FILE            also append name,size,metric,value rows to FILE\n"
		   "baseline KIND: unix, unix-seqpacket, tcp, memcpy. See the header of\n"
		   "examples/uvsock-perf.c and bench/run.sh.\n");
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
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd;
	int opt;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			arg.cid = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'p':
			arg.port = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'd':
			arg.dir = optarg;
			break;
		case 's':
			arg.size = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 't':
			arg.seconds = strtod(optarg, NULL);
			break;
		case 'n':
			arg.count = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'b':
			arg.busy = true;
			break;
		case 'q':
			arg.seqpacket = true;
			break;
		case 'g':
			arg.guests = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'L':
			arg.libc = true;
			break;
		case 'N':
			arg.conns = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'o':
			arg.csv = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc || arg.size == 0 || arg.size > PERF_MAX_SIZE || arg.count == 0 ||
			arg.seconds <= 0 ||
			(strcmp(arg.dir, "h2g") != 0 && strcmp(arg.dir, "g2h") != 0)) {
		usage(stderr);
		return 2;
	}
	if (arg.libc && !shim_loaded()) {
		fprintf(stderr, "uvsock-perf: --libc needs LD_PRELOAD=libuvsock-preload.so (the "
				"kernel's AF_VSOCK is never used)\n");
		return 2;
	}
	cmd = argv[optind];
	if (strcmp(cmd, "bulk") == 0) {
		bulk();
	} else if (strcmp(cmd, "multi") == 0) {
		if (arg.guests == 0 || arg.conns == 0)
			die("multi needs --guests and --conns above 0", EINVAL);
		multi();
	} else if (strcmp(cmd, "hold") == 0) {
		if (arg.guests == 0 || arg.conns == 0)
			die("hold needs --guests and --conns above 0", EINVAL);
		hold();
	} else if (strcmp(cmd, "pingpong") == 0) {
		pingpong();
	} else if (strcmp(cmd, "baseline-pingpong") == 0) {
		baseline_pingpong();
	} else if (strcmp(cmd, "baseline") == 0 && optind + 1 < argc) {
		const char *kind = argv[optind + 1];
		int fd[2];

		if (strcmp(kind, "unix") == 0 || strcmp(kind, "unix-seqpacket") == 0) {
			if (socketpair(AF_UNIX,
					    strcmp(kind, "unix") == 0 ? SOCK_STREAM
								      : SOCK_SEQPACKET,
					    0, fd) < 0)
				die("socketpair", errno);
			baseline_socket(strcmp(kind, "unix") == 0 ? "unix-stream"
								  : "unix-seqpacket",
					fd[0], fd[1]);
		} else if (strcmp(kind, "tcp") == 0) {
			tcp_pair(fd);
			baseline_socket("tcp-loopback", fd[0], fd[1]);
		} else if (strcmp(kind, "memcpy") == 0) {
			baseline_memcpy();
		} else {
			usage(stderr);
			return 2;
		}
	} else {
		usage(stderr);
		return 2;
	}
	return 0;
}
