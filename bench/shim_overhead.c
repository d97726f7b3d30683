/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What libuvsock-preload.so costs a program's calls on fds that are not vsock sockets. Times
 * N rounds of three common patterns and prints nanoseconds per round:
 *   pipe      write(1 byte) + read(1 byte) on a pipe
 *   unix      send(1 byte) + recv(1 byte) on a unix SOCK_STREAM socketpair
 *   sockopt   getsockopt(SO_TYPE) on a TCP socket
 * bench/shim-overhead.sh runs it with and without the shim, alternating, and reports the
 * ratios. Opens no vsock socket.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int
main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 0) : 200000;
	int p[2], sv[2], tcp, v;
	socklen_t len;
	char b = 'x';
	double t;

	if (n <= 0 || pipe(p) < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0 ||
			(tcp = socket(AF_INET, SOCK_STREAM, 0)) < 0) {
		perror("setup");
		return 1;
	}
	t = now_s();
	for (long i = 0; i < n; i++)
		if (write(p[1], &b, 1) != 1 || read(p[0], &b, 1) != 1)
			return 1;
	printf("pipe %.1f\n", (now_s() - t) * 1e9 / (double)n);
	t = now_s();
	for (long i = 0; i < n; i++)
		if (send(sv[0], &b, 1, 0) != 1 || recv(sv[1], &b, 1, 0) != 1)
			return 1;
	printf("unix %.1f\n", (now_s() - t) * 1e9 / (double)n);
	t = now_s();
	for (long i = 0; i < n; i++) {
		len = sizeof(v);
		if (getsockopt(tcp, SOL_SOCKET, SO_TYPE, &v, &len) < 0)
			return 1;
	}
	printf("sockopt %.1f\n", (now_s() - t) * 1e9 / (double)n);
	return 0;
}
