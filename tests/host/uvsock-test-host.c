/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * uvsock-test-host: host-side peers for the real-guest tests, on the native API. The
 * contracts (pattern, ports, replies) are those of tests/guest/README.md.
 *
 *   writer PORT [BYTES]      per connection: send BYTES (default 1 MiB) of the pattern,
 *                            shutdown(SHUT_WR), read until EOF, expect exactly "bye\n"
 *   sink PORT [PAUSE_MS]     per connection: read nothing for PAUSE_MS (default 2000), then
 *                            read to EOF checking the pattern, reply "<count>\n", close
 *   seqsink PORT [PAUSE_MS]  SEQPACKET: read nothing for PAUSE_MS, then read messages to EOF
 *                            and reply one message "<messages> <bytes>\n" 
 *   client CID PORT N [seq]  N connections to a guest echo server; each sends the pattern
 *                            (STREAM: 256 KiB; SEQPACKET: messages of 1..64 KiB with and
 *                            without MSG_EOR) and checks what comes back; exit 0 iff all ok
 *   die CID PORT             connect, send 1000 bytes, then kill itself with SIGKILL without
 *                            closing: the daemon must close the connection toward the guest
 *   hold CID PORT            connect to a guest echo server, check one echo, print "held",
 *                            then obey lines on stdin: "ping" (echo check, prints "ping ok"),
 *                            "wait-gone" (block until the connection ends: prints "gone eof"
 *                            or "gone <error>", then what two sends give),
 *                            "fork" (fork a child that exits; prints "forked in N ms"),
 *                            "close"
 *   reuse CID PORT fork|nofork N
 *                            segment reuse (lib/uvs_srv.c): connect to an echo server, then
 *                            (fork: a child keeps the segment mapped and closes every fd)
 *                            close, and open N more connections one at a time; prints how
 *                            many got the first one's segment back. ok iff some did without
 *                            fork and none did with it
 *
 * Servers print one line per connection ("writer ok ...", "sink FAIL ...") and run until
 * killed. The byte at stream offset i is (i % 251).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include "uvsock.h"

#define PATTERN_MOD 251
#define CHUNK (64 * 1024)
#define CLIENT_STREAM_BYTES (256 * 1024)

static uint64_t arg_bytes = 1024 * 1024;
static unsigned int arg_pause_ms = 2000;

static void
fill(uint8_t *buf, uint64_t off, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)((off + i) % PATTERN_MOD);
}

static int
send_all(int fd, const void *buf, size_t len, int flags)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = uvs_send(fd, (const char *)buf + off, len - off, flags | MSG_NOSIGNAL);

		if (n == -EINTR)
			continue;
		if (n < 0)
			return (int)n;
		off += (size_t)n;
	}
	return 0;
}

static void report(const char *what, bool ok, const char *fmt, ...)
		__attribute__((format(printf, 3, 4)));

static void
report(const char *what, bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s %s ", what, ok ? "ok" : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static void *
writer_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	uint8_t *buf = malloc(CHUNK);
	char bye[16];
	size_t got = 0;
	uint64_t off = 0;
	ssize_t n;
	int rc = 0;

	while (buf != NULL && off < arg_bytes && rc == 0) {
		size_t len = arg_bytes - off < CHUNK ? (size_t)(arg_bytes - off) : CHUNK;

		fill(buf, off, len);
		rc = send_all(fd, buf, len, 0);
		off += len;
	}
	if (rc == 0)
		rc = uvs_shutdown(fd, SHUT_WR);
	while (rc == 0 && (n = uvs_recv(fd, bye + got, sizeof(bye) - got, 0)) != 0) {
		if (n == -EINTR)
			continue;
		if (n < 0) {
			rc = (int)n;
			break;
		}
		got += (size_t)n;
		if (got == sizeof(bye))
			break;
	}
	if (rc < 0)
		report("writer", false, "error %s after %lu bytes", strerror(-rc),
				(unsigned long)off);
	else if (got != 4 || memcmp(bye, "bye\n", 4) != 0)
		report("writer", false, "expected \"bye\\n\" then EOF, got %zu bytes", got);
	else
		report("writer", true, "%lu bytes, got bye + EOF", (unsigned long)off);
	free(buf);
	uvs_close(fd);
	return NULL;
}

static void *
sink_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	uint8_t *buf = malloc(CHUNK);
	struct timespec ts = { .tv_sec = arg_pause_ms / 1000,
		.tv_nsec = (long)(arg_pause_ms % 1000) * 1000000 };
	uint64_t total = 0, bad = UINT64_MAX;
	char reply[64];
	ssize_t n;

	nanosleep(&ts, NULL);
	while (buf != NULL && (n = uvs_recv(fd, buf, CHUNK, 0)) != 0) {
		if (n == -EINTR)
			continue;
		if (n < 0)
			break;
		for (ssize_t i = 0; i < n && bad == UINT64_MAX; i++)
			if (buf[i] != (uint8_t)((total + (uint64_t)i) % PATTERN_MOD))
				bad = total + (uint64_t)i;
		total += (uint64_t)n;
	}
	if (bad != UINT64_MAX)
		snprintf(reply, sizeof(reply), "BAD %lu\n", (unsigned long)bad);
	else
		snprintf(reply, sizeof(reply), "%lu\n", (unsigned long)total);
	send_all(fd, reply, strlen(reply), 0);
	report("sink", bad == UINT64_MAX, "%lu bytes after a %u ms pause", (unsigned long)total,
			arg_pause_ms);
	free(buf);
	uvs_close(fd);
	return NULL;
}

static void *
seqsink_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	size_t cap = 512 * 1024;
	uint8_t *buf = malloc(cap);
	struct timespec ts = { .tv_sec = arg_pause_ms / 1000,
		.tv_nsec = (long)(arg_pause_ms % 1000) * 1000000 };
	uint64_t msgs = 0, bytes = 0;
	char reply[64];
	ssize_t n;

	nanosleep(&ts, NULL);
	while (buf != NULL && (n = uvs_recv(fd, buf, cap, 0)) != 0) {
		if (n == -EINTR)
			continue;
		if (n < 0)
			break;
		msgs++;
		bytes += (uint64_t)n;
	}
	snprintf(reply, sizeof(reply), "%lu %lu\n", (unsigned long)msgs, (unsigned long)bytes);
	send_all(fd, reply, strlen(reply), MSG_EOR);
	report("seqsink", true, "%lu messages, %lu bytes after a %u ms pause", (unsigned long)msgs,
			(unsigned long)bytes, arg_pause_ms);
	free(buf);
	uvs_close(fd);
	return NULL;
}

static int
serve(int type, unsigned int port, void *(*fn)(void *))
{
	struct sockaddr_vm sa = {
		.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port
	};
	int lfd = uvs_socket(type), rc;
	pthread_t t;

	if (lfd < 0) {
		fprintf(stderr, "socket: %s\n", strerror(-lfd));
		return 1;
	}
	rc = uvs_bind(lfd, &sa);
	if (rc == 0)
		rc = uvs_listen(lfd, 64);
	if (rc < 0) {
		fprintf(stderr, "bind/listen %u: %s\n", port, strerror(-rc));
		return 1;
	}
	printf("listening on %u\n", port);
	fflush(stdout);
	/* Nonblocking accept + poll(2) on the listener's fd: exercises the fd readiness of
	 * listeners (readable while connections wait). */
	uvs_set_nonblock(lfd, true);
	for (;;) {
		struct pollfd pfd = { .fd = lfd, .events = POLLIN };
		int fd = uvs_accept(lfd, NULL, 0);

		if (fd == -EAGAIN) {
			if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
				return 1;
			continue;
		}
		if (fd == -EINTR)
			continue;
		if (fd < 0) {
			fprintf(stderr, "accept: %s\n", strerror(-fd));
			return 1;
		}
		if (pthread_create(&t, NULL, fn, (void *)(intptr_t)fd) == 0)
			pthread_detach(t);
		else
			uvs_close(fd);
	}
}

static int
connect_to(unsigned int cid, unsigned int port, int type)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port };
	int fd = uvs_socket(type), rc;

	if (fd < 0)
		return fd;
	rc = uvs_connect(fd, &sa);
	if (rc < 0) {
		uvs_close(fd);
		return rc;
	}
	return fd;
}

/* Nonblocking connect as Linux does it: -EINPROGRESS, the fd becomes writable when the
 * connect is over, SO_ERROR says how it ended; then back to blocking. */
static int
connect_nonblocking(unsigned int cid, unsigned int port, int type)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port };
	int fd = uvs_socket(type | SOCK_NONBLOCK), rc, err = -1;
	socklen_t len = sizeof(err);

	if (fd < 0)
		return fd;
	rc = uvs_connect(fd, &sa);
	if (rc == -EINPROGRESS) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };

		if (poll(&pfd, 1, 10000) == 0)
			rc = -ETIMEDOUT;
		if (rc == -EINPROGRESS) {
			rc = uvs_getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
			if (rc == 0)
				rc = -err;
		}
	}
	if (rc == 0)
		rc = uvs_set_nonblock(fd, false);
	if (rc < 0) {
		uvs_close(fd);
		return rc;
	}
	return fd;
}

/* One STREAM connection: send the pattern while reading the echo (in two threads). */
struct echo_tx {
	int fd;
	int rc;
};

static void *
stream_sender(void *arg)
{
	struct echo_tx *tx = arg;
	uint8_t *buf = malloc(CHUNK);

	tx->rc = buf == NULL ? -ENOMEM : 0;
	for (uint64_t off = 0; tx->rc == 0 && off < CLIENT_STREAM_BYTES; off += CHUNK) {
		fill(buf, off, CHUNK);
		tx->rc = send_all(tx->fd, buf, CHUNK, 0);
	}
	if (tx->rc == 0)
		tx->rc = uvs_shutdown(tx->fd, SHUT_WR);
	free(buf);
	return NULL;
}

static uint64_t
ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int
client_stream(unsigned int cid, unsigned int port, char *why, size_t whylen)
{
	uint64_t t0 = ms_now(), last = t0; /* for a failure's timing: how the end came */
	struct echo_tx tx;
	uint8_t *buf = malloc(CHUNK), peek[16];
	uint64_t got = 0;
	pthread_t t;
	ssize_t n, peeked;

	tx.fd = connect_to(cid, port, SOCK_STREAM);
	if (tx.fd < 0) {
		snprintf(why, whylen, "connect: %s", strerror(-tx.fd));
		free(buf);
		return -1;
	}
	pthread_create(&t, NULL, stream_sender, &tx);
	/* MSG_PEEK (blocking until something arrives) must leave the bytes for the next recv */
	do {
		peeked = uvs_recv(tx.fd, peek, sizeof(peek), MSG_PEEK);
	} while (peeked == -EINTR);
	/* Nonblocking receive + poll(2): -EAGAIN arms the fd, which becomes readable on the
	 * next change (uvsock.h), so this loop must never sleep past arriving data. */
	while ((n = uvs_recv(tx.fd, buf, CHUNK, MSG_DONTWAIT)) != 0) {
		if (n == -EAGAIN) {
			struct pollfd pfd = { .fd = tx.fd, .events = POLLIN };

			if (poll(&pfd, 1, 20000) == 0) {
				n = -ETIMEDOUT; /* a lost wake-up */
				break;
			}
			continue;
		}
		if (n == -EINTR)
			continue;
		if (n < 0)
			break;
		if (got == 0 && (peeked <= 0 || n < peeked ||
						memcmp(buf, peek, (size_t)peeked) != 0)) {
			snprintf(why, whylen, "MSG_PEEK gave %zd bytes that the next recv did not",
					peeked);
			n = -EBADMSG;
			break;
		}
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] != (uint8_t)((got + (uint64_t)i) % PATTERN_MOD)) {
				snprintf(why, whylen, "mismatch at %lu", (unsigned long)(got + i));
				n = -EBADMSG;
				break;
			}
		}
		if (n < 0)
			break;
		got += (uint64_t)n;
		last = ms_now();
	}
	pthread_join(t, NULL);
	uvs_close(tx.fd);
	free(buf);
	if (n < 0 && n != -EBADMSG)
		snprintf(why, whylen, "recv: %s", strerror((int)-n));
	if (n < 0 || tx.rc < 0 || got != CLIENT_STREAM_BYTES) {
		if (n >= 0)
			snprintf(why, whylen,
					"echoed %lu of %u bytes (send %s); the end came %lu ms after "
					"the last data, %lu ms after the connect",
					(unsigned long)got, CLIENT_STREAM_BYTES,
					tx.rc < 0 ? strerror(-tx.rc) : "ok",
					(unsigned long)(ms_now() - last),
					(unsigned long)(ms_now() - t0));
		return -1;
	}
	snprintf(why, whylen, "STREAM %u bytes echoed exact (MSG_PEEK checked)",
			CLIENT_STREAM_BYTES);
	return 0;
}

static int
client_seq(unsigned int cid, unsigned int port, char *why, size_t whylen)
{
	static const size_t sizes[] = { 1, 44, 3776, 4096, 65536 };
	uint8_t *out = malloc(65536), *in = malloc(65536 + 1);
	struct iovec iov;
	struct msghdr msg;
	int fd = connect_nonblocking(cid, port, SOCK_SEQPACKET);
	ssize_t n;

	if (fd < 0) {
		snprintf(why, whylen, "nonblocking connect: %s", strerror(-fd));
		free(out);
		free(in);
		return -1;
	}
	for (size_t k = 0; k < 2 * sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t len = sizes[k / 2];
		int eor = (k & 1) ? MSG_EOR : 0;

		fill(out, k, len);
		if (send_all(fd, out, len, eor) < 0) {
			snprintf(why, whylen, "send %zu failed", len);
			goto fail;
		}
		iov = (struct iovec){ .iov_base = in, .iov_len = 65536 + 1 };
		msg = (struct msghdr){ .msg_iov = &iov, .msg_iovlen = 1 };
		do {
			n = uvs_recvmsg(fd, &msg, 0);
		} while (n == -EINTR);
		if (n != (ssize_t)len || memcmp(in, out, len) != 0 ||
				((msg.msg_flags & MSG_EOR) != 0) != (eor != 0) ||
				(msg.msg_flags & MSG_TRUNC)) {
			snprintf(why, whylen, "message of %zu (eor %d): got %zd flags %#x", len,
					eor != 0, n, msg.msg_flags);
			goto fail;
		}
	}
	uvs_shutdown(fd, SHUT_WR);
	uvs_close(fd);
	free(out);
	free(in);
	snprintf(why, whylen,
			"SEQPACKET (nonblocking connect) 10 messages echoed with boundaries and EOR");
	return 0;
fail:
	uvs_close(fd);
	free(out);
	free(in);
	return -1;
}

/* The inode of this process's one mapped segment (libuvsock maps one per connected socket),
 * or 0. */
static unsigned long
segment_inode(void)
{
	char line[512];
	unsigned long ino = 0;
	FILE *f = fopen("/proc/self/maps", "re");

	while (f != NULL && ino == 0 && fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, "/memfd:uvsock") == NULL ||
				sscanf(line, "%*s %*s %*s %*s %lu", &ino) != 1)
			ino = 0;
	if (f != NULL)
		fclose(f);
	return ino;
}

/* A connection to an echo server that answered one message: its fd, or -errno. */
static int
echoed_connection(unsigned int cid, unsigned int port)
{
	static const char msg[] = "segment reuse";
	char back[sizeof(msg)];
	size_t got = 0;
	int fd = connect_to(cid, port, SOCK_STREAM);

	if (fd < 0)
		return fd;
	if (send_all(fd, msg, sizeof(msg), 0) < 0) {
		uvs_close(fd);
		return -EIO;
	}
	while (got < sizeof(back)) {
		ssize_t n = uvs_recv(fd, back + got, sizeof(back) - got, 0);

		if (n == -EINTR)
			continue;
		if (n <= 0) {
			uvs_close(fd);
			return n < 0 ? (int)n : -ECONNRESET;
		}
		got += (size_t)n;
	}
	if (memcmp(msg, back, sizeof(msg)) != 0) {
		uvs_close(fd);
		return -EBADMSG;
	}
	return fd;
}

static int
reuse(unsigned int cid, unsigned int port, bool forks, int n)
{
	int fd = echoed_connection(cid, port), same = 0, ready[2];
	unsigned long first = segment_inode();
	pid_t child = -1;
	char c;

	if (fd < 0 || first == 0) {
		fprintf(stderr, "reuse: first connection: %s\n",
				fd < 0 ? strerror(-fd) : "no segment");
		return 1;
	}
	if (forks) {
		/* The child maps the segment and closes every fd (its copy of the socket too, or
		 * the socket would live on): only the daemon knows the segment is still seen. */
		if (pipe(ready) < 0)
			return 1;
		child = fork();
		if (child == 0) {
			(void)write(ready[1], "r", 1);
			for (int i = 3; i < 65536; i++)
				close(i);
			for (;;)
				pause();
		}
		if (child < 0 || read(ready[0], &c, 1) != 1)
			return 1;
		close(ready[0]);
		close(ready[1]);
		usleep(100 * 1000); /* its close_range */
	}
	uvs_close(fd);
	for (int i = 0; i < n; i++) {
		usleep(20 * 1000); /* the daemon frees a socket once its close handshake is over */
		fd = echoed_connection(cid, port);
		if (fd < 0) {
			fprintf(stderr, "reuse: connection %d: %s\n", i, strerror(-fd));
			break;
		}
		same += segment_inode() == first;
		uvs_close(fd);
	}
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	printf("reuse %s %s: %d of %d connections got the first one's segment\n",
			(forks ? same == 0 : same > 0) && fd >= 0 ? "ok" : "FAIL",
			forks ? "fork" : "nofork", same, n);
	return (forks ? same == 0 : same > 0) && fd >= 0 ? 0 : 1;
}

static int
hold(unsigned int cid, unsigned int port)
{
	char line[64], buf[16];
	int fd = connect_to(cid, port, SOCK_STREAM);
	ssize_t n;

	if (fd < 0) {
		printf("hold connect FAIL %s\n", strerror(-fd));
		return 1;
	}
	for (bool first = true; first || fgets(line, sizeof(line), stdin) != NULL; first = false) {
		if (first || strncmp(line, "ping", 4) == 0) {
			if (send_all(fd, "ping", 4, 0) < 0 ||
					(n = uvs_recv(fd, buf, 4, MSG_WAITALL)) != 4 ||
					memcmp(buf, "ping", 4) != 0) {
				printf("ping FAIL\n");
				fflush(stdout);
				continue;
			}
			printf(first ? "held\n" : "ping ok\n");
		} else if (strncmp(line, "wait-gone", 9) == 0) {
			struct timeval tv = { .tv_sec = 30 };
			ssize_t s, s2;

			uvs_setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
			n = uvs_recv(fd, buf, sizeof(buf), 0);
			s = uvs_send(fd, "x", 1, MSG_NOSIGNAL);
			s2 = uvs_send(fd, "x", 1, MSG_NOSIGNAL);
			printf("gone %s, send %s, then %s\n",
					n == 0	? "eof"
					: n < 0 ? strerror((int)-n)
						: "data",
					s == -EPIPE ? "EPIPE"
					: s < 0	    ? strerror((int)-s)
						    : "ok",
					s2 == -EPIPE ? "EPIPE"
					: s2 < 0     ? strerror((int)-s2)
						     : "ok");
		} else if (strncmp(line, "fork", 4) == 0) {
			/* fork() tells the daemon first (UVS_CTL_FORK): it must not wait for a
			 * daemon that does not answer for longer than the library's bound */
			uint64_t t0 = ms_now();
			pid_t child = fork();

			if (child == 0)
				_exit(0);
			if (child > 0)
				waitpid(child, NULL, 0);
			printf("forked in %llu ms\n", (unsigned long long)(ms_now() - t0));
		} else if (strncmp(line, "close", 5) == 0) {
			uvs_close(fd);
			printf("closed\n");
			fflush(stdout);
			return 0;
		}
		fflush(stdout);
	}
	uvs_close(fd);
	return 0;
}

int
main(int argc, char **argv)
{
	char why[160];
	int fails = 0;

	if (argc >= 3 && strcmp(argv[1], "writer") == 0) {
		if (argc > 3)
			arg_bytes = strtoull(argv[3], NULL, 0);
		return serve(SOCK_STREAM, (unsigned int)strtoul(argv[2], NULL, 0), writer_conn);
	}
	if (argc >= 3 && strcmp(argv[1], "sink") == 0) {
		if (argc > 3)
			arg_pause_ms = (unsigned int)strtoul(argv[3], NULL, 0);
		return serve(SOCK_STREAM, (unsigned int)strtoul(argv[2], NULL, 0), sink_conn);
	}
	if (argc >= 3 && strcmp(argv[1], "seqsink") == 0) {
		if (argc > 3)
			arg_pause_ms = (unsigned int)strtoul(argv[3], NULL, 0);
		return serve(SOCK_SEQPACKET, (unsigned int)strtoul(argv[2], NULL, 0), seqsink_conn);
	}
	if (argc >= 5 && strcmp(argv[1], "client") == 0) {
		unsigned int cid = (unsigned int)strtoul(argv[2], NULL, 0);
		unsigned int port = (unsigned int)strtoul(argv[3], NULL, 0);
		int n = atoi(argv[4]);
		bool seq = argc > 5 && strcmp(argv[5], "seq") == 0;

		for (int i = 0; i < n; i++) {
			int rc = seq ? client_seq(cid, port, why, sizeof(why))
				     : client_stream(cid, port, why, sizeof(why));

			report("client", rc == 0, "#%d to %u:%u: %s", i, cid, port, why);
			fails += rc != 0;
		}
		return fails ? 1 : 0;
	}
	if (argc >= 4 && strcmp(argv[1], "die") == 0) {
		uint8_t buf[1000];
		int fd = connect_to((unsigned int)strtoul(argv[2], NULL, 0),
				(unsigned int)strtoul(argv[3], NULL, 0), SOCK_STREAM);

		if (fd < 0) {
			fprintf(stderr, "die: connect: %s\n", strerror(-fd));
			return 1;
		}
		fill(buf, 0, sizeof(buf));
		send_all(fd, buf, sizeof(buf), 0);
		printf("die: connected and sent 1000 bytes, now SIGKILL\n");
		fflush(stdout);
		kill(getpid(), SIGKILL);
	}
	if (argc >= 6 && strcmp(argv[1], "reuse") == 0)
		return reuse((unsigned int)strtoul(argv[2], NULL, 0),
				(unsigned int)strtoul(argv[3], NULL, 0),
				strcmp(argv[4], "fork") == 0, atoi(argv[5]));
	if (argc >= 4 && strcmp(argv[1], "hold") == 0)
		return hold((unsigned int)strtoul(argv[2], NULL, 0),
				(unsigned int)strtoul(argv[3], NULL, 0));
	fprintf(stderr, "usage: uvsock-test-host writer PORT [BYTES] | sink PORT [PAUSE_MS] |\n"
			"       seqsink PORT [PAUSE_MS] |\n"
			"       client CID PORT N [seq] | die CID PORT | hold CID PORT |\n"
			"       reuse CID PORT fork|nofork N\n");
	return 2;
}
