/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A busy vsock connection through the LD_PRELOAD shim: one thread writes COUNT messages of
 * SIZE bytes to the guest's echo server (CID:PORT) while another reads the echo back and
 * checks every byte. Run under `strace -f -c` by test_syscalls.sh, which asserts that the
 * system calls made are far fewer than the messages: the data path makes none per message.
 * Plain socket calls only; refuses to run without the shim (never the kernel's AF_VSOCK).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

static int fd;
static unsigned long count, size;

static uint8_t
pattern(uint64_t i)
{
	return (uint8_t)(i * 7 + (i >> 13));
}

static void *
writer(void *arg)
{
	uint8_t *buf = malloc(size);
	uint64_t off = 0;

	(void)arg;
	for (unsigned long m = 0; m < count; m++) {
		for (unsigned long i = 0; i < size; i++)
			buf[i] = pattern(off + i);
		if (send(fd, buf, size, MSG_NOSIGNAL) != (ssize_t)size) {
			perror("send");
			exit(1);
		}
		off += size;
	}
	shutdown(fd, SHUT_WR);
	free(buf);
	return NULL;
}

int
main(int argc, char **argv)
{
	struct sockaddr_vm a = { .svm_family = AF_VSOCK };
	const char *pre = getenv("LD_PRELOAD");
	uint8_t buf[65536];
	uint64_t got = 0, total;
	pthread_t t;
	ssize_t n;

	if (argc != 5) {
		fprintf(stderr, "usage: %s CID PORT COUNT SIZE\n", argv[0]);
		return 2;
	}
	if (pre == NULL || strstr(pre, "libuvsock-preload") == NULL) {
		fprintf(stderr, "busy_client: refusing to run without libuvsock-preload.so\n");
		return 2;
	}
	a.svm_cid = (unsigned int)strtoul(argv[1], NULL, 0);
	a.svm_port = (unsigned int)strtoul(argv[2], NULL, 0);
	count = strtoul(argv[3], NULL, 0);
	size = strtoul(argv[4], NULL, 0);
	total = (uint64_t)count * size;
	fd = socket(AF_VSOCK, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("socket/connect");
		return 1;
	}
	pthread_create(&t, NULL, writer, NULL);
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] != pattern(got + (uint64_t)i)) {
				fprintf(stderr, "echo differs at byte %llu\n",
						(unsigned long long)(got + (uint64_t)i));
				return 1;
			}
		}
		got += (uint64_t)n;
	}
	pthread_join(t, NULL);
	if (n < 0 || got != total) {
		fprintf(stderr, "echo: %llu of %llu bytes (%s)\n", (unsigned long long)got,
				(unsigned long long)total, n < 0 ? strerror(errno) : "EOF");
		return 1;
	}
	printf("busy_client: %lu messages of %lu bytes echoed exactly\n", count, size);
	close(fd);
	return 0;
}
