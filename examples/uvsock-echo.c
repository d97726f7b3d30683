/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * uvsock-echo: an echo server and client on the native uvsock API.
 *
 *   uvsock-echo --listen PORT [--count N]
 *       serves SOCK_STREAM on PORT and SOCK_SEQPACKET on PORT+1, many connections at once
 *       (a thread each), echoing every message back with the same boundaries and MSG_EOR
 *       flag; closes a connection when the peer has sent EOF and everything was echoed.
 *       With --count N, exits after N connections have been served.
 *   uvsock-echo --connect CID:PORT [--seqpacket]
 *       sends standard input (SEQPACKET: each read of up to 64 KiB is one message) and
 *       writes what comes back to standard output; exits when the peer closes.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "uvsock.h"

/* Largest message echoed: the default vsock buffer (a SEQPACKET message can be that big). */
#define ECHO_BUF (256 * 1024)
#define STDIN_CHUNK (64 * 1024)

static int served_limit = -1;
static int served;
static pthread_mutex_t served_lock = PTHREAD_MUTEX_INITIALIZER;

static int
send_all(int fd, const char *buf, size_t len, int flags)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = uvs_send(fd, buf + off, len - off, flags | MSG_NOSIGNAL);

		if (n == -EINTR)
			continue;
		if (n < 0)
			return (int)n;
		off += (size_t)n;
	}
	return 0;
}

static void *
echo_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char *buf = malloc(ECHO_BUF);
	struct iovec iov = { .iov_base = buf, .iov_len = ECHO_BUF };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	int type_len = sizeof(int), type = 0;
	ssize_t n;

	uvs_getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, (socklen_t *)&type_len);
	while (buf != NULL) {
		n = uvs_recvmsg(fd, &msg, 0);
		if (n == -EINTR)
			continue;
		if (n <= 0)
			break;
		if (send_all(fd, buf, (size_t)n,
				    type == SOCK_SEQPACKET && (msg.msg_flags & MSG_EOR) ? MSG_EOR
											: 0) < 0)
			break;
	}
	free(buf);
	uvs_close(fd);
	pthread_mutex_lock(&served_lock);
	served++;
	if (served_limit > 0 && served >= served_limit)
		exit(0);
	pthread_mutex_unlock(&served_lock);
	return NULL;
}

static void *
accept_loop(void *arg)
{
	int lfd = (int)(intptr_t)arg;
	pthread_t t;

	for (;;) {
		int fd = uvs_accept(lfd, NULL, 0);

		if (fd == -EINTR)
			continue;
		if (fd < 0) {
			fprintf(stderr, "uvsock-echo: accept: %s\n", strerror(-fd));
			exit(1);
		}
		if (pthread_create(&t, NULL, echo_conn, (void *)(intptr_t)fd) != 0) {
			uvs_close(fd);
			continue;
		}
		pthread_detach(t);
	}
	return NULL;
}

static int
listen_on(int type, unsigned int port)
{
	struct sockaddr_vm sa = {
		.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port
	};
	int fd = uvs_socket(type), rc;

	if (fd < 0) {
		fprintf(stderr, "uvsock-echo: socket: %s (is uvsockd running? UVSOCK_CONTROL=%s)\n",
				strerror(-fd),
				getenv("UVSOCK_CONTROL") ? getenv("UVSOCK_CONTROL")
							 : "/run/uvsock/uvsock.sock");
		exit(1);
	}
	rc = uvs_bind(fd, &sa);
	if (rc == 0)
		rc = uvs_listen(fd, 128);
	if (rc < 0) {
		fprintf(stderr, "uvsock-echo: bind/listen port %u: %s\n", port, strerror(-rc));
		exit(1);
	}
	return fd;
}

static int
serve(unsigned int port)
{
	pthread_t t;
	int sfd = listen_on(SOCK_STREAM, port);
	int qfd = listen_on(SOCK_SEQPACKET, port + 1);

	printf("uvsock-echo: listening: STREAM port %u, SEQPACKET port %u\n", port, port + 1);
	fflush(stdout);
	pthread_create(&t, NULL, accept_loop, (void *)(intptr_t)qfd);
	accept_loop((void *)(intptr_t)sfd);
	return 0;
}

struct client_tx {
	int fd;
	bool seqpacket;
	atomic_bool done; /* the sender no longer uses fd */
};

static void *
client_sender(void *arg)
{
	struct client_tx *c = arg;
	char *buf = malloc(STDIN_CHUNK);
	ssize_t n;

	while (buf != NULL && (n = read(0, buf, STDIN_CHUNK)) > 0) {
		if (send_all(c->fd, buf, (size_t)n, c->seqpacket ? MSG_EOR : 0) < 0)
			break;
	}
	free(buf);
	/* tell the peer we are done (SEQPACKET too), so its echo ends and it closes */
	uvs_shutdown(c->fd, SHUT_WR);
	atomic_store(&c->done, true);
	return NULL;
}

static int
client(const char *target, bool seqpacket)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK };
	unsigned long cid, port;
	char *end;
	/* static: the sender may outlive this function until the process exits */
	static struct client_tx tx;
	pthread_t t;
	char *buf;
	ssize_t n;
	int fd, rc;

	cid = strtoul(target, &end, 0);
	if (*end != ':' || end == target) {
		fprintf(stderr, "uvsock-echo: --connect wants CID:PORT, got '%s'\n", target);
		return 2;
	}
	port = strtoul(end + 1, &end, 0);
	if (*end != '\0') {
		fprintf(stderr, "uvsock-echo: bad port in '%s'\n", target);
		return 2;
	}
	sa.svm_cid = (unsigned int)cid;
	sa.svm_port = (unsigned int)port;
	fd = uvs_socket(seqpacket ? SOCK_SEQPACKET : SOCK_STREAM);
	if (fd < 0) {
		fprintf(stderr, "uvsock-echo: socket: %s\n", strerror(-fd));
		return 1;
	}
	rc = uvs_connect(fd, &sa);
	if (rc < 0) {
		fprintf(stderr, "uvsock-echo: connect %lu:%lu: %s\n", cid, port, strerror(-rc));
		return 1;
	}
	tx.fd = fd;
	tx.seqpacket = seqpacket;
	atomic_init(&tx.done, false);
	rc = pthread_create(&t, NULL, client_sender, &tx);
	if (rc != 0) {
		fprintf(stderr, "uvsock-echo: thread: %s\n", strerror(rc));
		return 1;
	}
	/* never joined: it may be blocked reading stdin when the peer has gone */
	pthread_detach(t);
	buf = malloc(ECHO_BUF);
	for (;;) {
		n = uvs_recv(fd, buf, ECHO_BUF, 0);
		if (n == -EINTR)
			continue;
		if (n <= 0)
			break;
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			break;
		if (seqpacket)
			fflush(stdout);
	}
	fflush(stdout);
	free(buf);
	/* Closing the socket while the sender may still use it would let it send on a closed
	 * descriptor, or on whatever reused its number: if it has not finished, exit closes
	 * the socket along with the thread. */
	if (atomic_load(&tx.done))
		uvs_close(fd);
	return n < 0 ? 1 : 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "connect", required_argument, NULL, 'c' },
		{ "seqpacket", no_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *target = NULL;
	long port = -1;
	bool seqpacket = false;
	int opt;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			port = strtol(optarg, NULL, 0);
			break;
		case 'c':
			target = optarg;
			break;
		case 's':
			seqpacket = true;
			break;
		case 'n':
			served_limit = atoi(optarg);
			break;
		case 'h':
			printf("Usage: uvsock-echo --listen PORT [--count N]\n"
			       "       uvsock-echo --connect CID:PORT [--seqpacket]\n"
			       "Echo server (STREAM on PORT, SEQPACKET on PORT+1) and client on uvsock.\n"
			       "The daemon is found through $UVSOCK_CONTROL.\n");
			return 0;
		default:
			return 2;
		}
	}
	if ((port < 0) == (target == NULL)) {
		fprintf(stderr, "uvsock-echo: give exactly one of --listen PORT or --connect CID:PORT\n");
		return 2;
	}
	if (target != NULL)
		return client(target, seqpacket);
	if (port <= 0 || port >= 0xfffffffe) {
		fprintf(stderr, "uvsock-echo: bad port %ld\n", port);
		return 2;
	}
	return serve((unsigned int)port);
}
