/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The native API against a running uvsockd (started by tests/host/run_api_test.sh with a
 * guest CID 3 configured but never attached): Linux's errno values for every call that
 * needs no guest, socket options with Linux's clamping, port rules, and the behaviour
 * without a daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "uvs_ipc.h"
#include "uvs_proto.h"
#include "uvs_scm.h"
#include "uvsock.h"

static struct sockaddr_vm
vm_addr(unsigned int cid, unsigned int port)
{
	struct sockaddr_vm sa;

	memset(&sa, 0, sizeof(sa));
	sa.svm_family = AF_VSOCK;
	sa.svm_cid = cid;
	sa.svm_port = port;
	return sa;
}

static int
bound_socket(int type, unsigned int port)
{
	struct sockaddr_vm sa = vm_addr(VMADDR_CID_ANY, port);
	int fd = uvs_socket(type);

	assert_true(fd >= 0);
	assert_int_equal(uvs_bind(fd, &sa), 0);
	return fd;
}

/* Runs first: the control connection is opened lazily and then kept. */
static void
no_daemon_gives_eafnosupport(void **state)
{
	char *real = getenv("UVSOCK_CONTROL");
	char *saved = strdup(real);

	(void)state;
	setenv("UVSOCK_CONTROL", "/nonexistent/uvsock.sock", 1);
	assert_int_equal(uvs_socket(SOCK_STREAM), -EAFNOSUPPORT);
	assert_int_equal(uvs_socket(SOCK_SEQPACKET), -EAFNOSUPPORT);
	setenv("UVSOCK_CONTROL", saved, 1);
	free(saved);
}

static void
socket_types(void **state)
{
	int fd;

	(void)state;
	assert_int_equal(uvs_socket(SOCK_DGRAM), -ENODEV); /* no datagram transport */
	assert_int_equal(uvs_socket(SOCK_RAW), -ESOCKTNOSUPPORT);
	fd = uvs_socket(SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC);
	assert_true(fd >= 0);
	assert_true(uvs_is_socket(fd));
	assert_int_equal(uvs_close(fd), 0);
	assert_false(uvs_is_socket(fd));
	assert_int_equal(uvs_close(fd), -ENOTSOCK);
	assert_int_equal(uvs_send(0, "x", 1, 0), -ENOTSOCK);
}

static void
bind_rules(void **state)
{
	struct sockaddr_vm sa = vm_addr(VMADDR_CID_ANY, 20000), got;
	int a = uvs_socket(SOCK_STREAM), b = uvs_socket(SOCK_SEQPACKET),
	    c = uvs_socket(SOCK_STREAM);

	(void)state;
	assert_true(a >= 0 && b >= 0 && c >= 0);
	sa.svm_family = AF_INET;
	assert_int_equal(uvs_bind(a, &sa), -EINVAL);
	sa = vm_addr(VMADDR_CID_ANY, 20000);
	sa.svm_flags = 0x80;
	assert_int_equal(uvs_bind(a, &sa), -EINVAL);
	sa = vm_addr(5, 20000); /* not a local CID */
	assert_int_equal(uvs_bind(a, &sa), -EADDRNOTAVAIL);
	sa = vm_addr(VMADDR_CID_HOST, 20000);
	assert_int_equal(uvs_bind(a, &sa), 0);
	assert_int_equal(uvs_bind(a, &sa), -EINVAL); /* already bound */
	/* one port space for STREAM and SEQPACKET */
	assert_int_equal(uvs_bind(b, &sa), -EADDRINUSE);
	assert_int_equal(uvs_getsockname(a, &got), 0);
	assert_int_equal(got.svm_family, AF_VSOCK);
	assert_int_equal(got.svm_cid, VMADDR_CID_HOST);
	assert_int_equal(got.svm_port, 20000);
	/* ephemeral */
	sa = vm_addr(VMADDR_CID_ANY, VMADDR_PORT_ANY);
	assert_int_equal(uvs_bind(c, &sa), 0);
	assert_int_equal(uvs_getsockname(c, &got), 0);
	assert_int_equal(got.svm_cid, VMADDR_CID_ANY);
	assert_true(got.svm_port > 1023 && got.svm_port != VMADDR_PORT_ANY);
	/* closing frees the port */
	uvs_close(a);
	sa = vm_addr(VMADDR_CID_ANY, 20000);
	assert_int_equal(uvs_bind(b, &sa), 0);
	uvs_close(b);
	uvs_close(c);
}

static void
privileged_ports(void **state)
{
	struct sockaddr_vm sa = vm_addr(VMADDR_CID_ANY, 1000);
	int fd = uvs_socket(SOCK_STREAM);

	(void)state;
	/* as Linux: root may bind below 1024, others get EACCES (run_api_test.sh checks an
	 * unprivileged program, which needs its own process and control connection) */
	assert_int_equal(uvs_bind(fd, &sa), getuid() == 0 ? 0 : -EACCES);
	uvs_close(fd);
}

static void
listen_and_accept_rules(void **state)
{
	struct sockaddr_vm sa = vm_addr(3, 5000);
	int fd = uvs_socket(SOCK_STREAM), one = 0;
	socklen_t len = sizeof(one);

	(void)state;
	assert_int_equal(uvs_listen(fd, 8), -EINVAL); /* unbound: no auto-bind on listen */
	assert_int_equal(uvs_accept(fd, NULL, 0), -EINVAL);
	uvs_close(fd);
	fd = bound_socket(SOCK_STREAM, 20001);
	assert_int_equal(uvs_listen(fd, 8), 0);
	assert_int_equal(uvs_getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &one, &len), 0);
	assert_int_equal(one, 1);
	assert_int_equal(uvs_connect(fd, &sa), -EINVAL); /* listening */
	assert_int_equal(uvs_accept(fd, NULL, SOCK_NONBLOCK | 0x40000000), -EINVAL);
	assert_int_equal(uvs_set_nonblock(fd, true), 0);
	assert_int_equal(uvs_accept(fd, NULL, 0), -EAGAIN);
	assert_int_equal(uvs_poll_events(fd), 0); /* nothing pending: armed, not readable */
	uvs_close(fd);
}

static void
connect_without_guest(void **state)
{
	struct sockaddr_vm sa = vm_addr(3, 5000);
	int fd = uvs_socket(SOCK_STREAM), nb = uvs_socket(SOCK_SEQPACKET | SOCK_NONBLOCK);

	(void)state;
	/* CID 3 is configured but no guest is attached; CID 99 is not configured */
	assert_int_equal(uvs_connect(fd, &sa), -ENODEV);
	sa.svm_cid = 99;
	assert_int_equal(uvs_connect(fd, &sa), -ENODEV);
	assert_int_equal(uvs_connect(nb, &sa), -ENODEV);
	sa.svm_family = 0;
	assert_int_equal(uvs_connect(fd, &sa), -EINVAL);
	uvs_close(fd);
	uvs_close(nb);
}

static void
unconnected_io(void **state)
{
	struct sockaddr_vm peer;
	char buf[8];
	int fd = uvs_socket(SOCK_STREAM);

	(void)state;
	assert_int_equal(uvs_getpeername(fd, &peer), -ENOTCONN);
	assert_int_equal(uvs_send(fd, "x", 1, 0), -ENOTCONN);
	assert_int_equal(uvs_recv(fd, buf, sizeof(buf), 0), -ENOTCONN);
	assert_int_equal(uvs_shutdown(fd, SHUT_WR), -ENOTCONN);
	assert_int_equal(uvs_shutdown(fd, 7), -EINVAL);
	assert_int_equal(uvs_send(fd, "x", 1, MSG_OOB), -EOPNOTSUPP);
	assert_int_equal(uvs_recv(fd, buf, sizeof(buf), MSG_OOB), -EOPNOTSUPP);
	uvs_close(fd);
}

static void
buffer_size_options(void **state)
{
	int fd = uvs_socket(SOCK_STREAM);
	uint64_t v;
	socklen_t len = sizeof(v);
	uint32_t small = 1;

	(void)state;
	assert_int_equal(uvs_getsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &v, &len), 0);
	assert_int_equal(len, sizeof(v));
	assert_int_equal(v, 262144);
	assert_int_equal(uvs_getsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_MIN_SIZE, &v, &len), 0);
	assert_int_equal(v, 128);
	assert_int_equal(uvs_getsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_MAX_SIZE, &v, &len), 0);
	assert_int_equal(v, 262144);
	/* above the max: clamped to it */
	v = 1u << 20;
	assert_int_equal(uvs_setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &v, sizeof(v)), 0);
	assert_int_equal(uvs_getsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &v, &len), 0);
	assert_int_equal(v, 262144);
	/* raise the max first, then the size */
	v = 1u << 20;
	assert_int_equal(uvs_setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_MAX_SIZE, &v, sizeof(v)),
			0);
	assert_int_equal(uvs_setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &v, sizeof(v)), 0);
	assert_int_equal(uvs_getsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &v, &len), 0);
	assert_int_equal(v, 1u << 20);
	/* below the min: clamped up */
	v = 64;
	assert_int_equal(uvs_setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &v, sizeof(v)), 0);
	assert_int_equal(uvs_getsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &v, &len), 0);
	assert_int_equal(v, 128);
	/* u64 options need 8 bytes */
	assert_int_equal(uvs_setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &small,
					 sizeof(small)),
			-EINVAL);
	len = 4;
	assert_int_equal(
			uvs_getsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &v, &len), -EINVAL);
	/* VMCI-only and unknown options, other levels */
	len = sizeof(v);
	assert_int_equal(uvs_getsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_TRUSTED, &v, &len),
			-ENOPROTOOPT);
	assert_int_equal(uvs_setsockopt(fd, AF_VSOCK, 99, &v, sizeof(v)), -ENOPROTOOPT);
	assert_int_equal(uvs_setsockopt(fd, SOL_SOCKET + 1, 1, &v, sizeof(v)), -ENOPROTOOPT);
	uvs_close(fd);
}

static void
timeout_options(void **state)
{
	int fd = uvs_socket(SOCK_STREAM);
	struct timeval tv = { .tv_sec = 5, .tv_usec = 250000 }, got;
	socklen_t len = sizeof(got);
	int v;

	(void)state;
	assert_int_equal(
			uvs_getsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &got, &len), 0);
	assert_int_equal(got.tv_sec, 2); /* Linux's default */
	assert_int_equal(got.tv_usec, 0);
	assert_int_equal(uvs_setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv,
					 sizeof(tv)),
			0);
	assert_int_equal(
			uvs_getsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &got, &len), 0);
	assert_int_equal(got.tv_sec, 5);
	assert_int_equal(got.tv_usec, 250000);
	tv.tv_usec = 1000000;
	assert_int_equal(uvs_setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv,
					 sizeof(tv)),
			-ERANGE);
	assert_int_equal(uvs_setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), -EDOM);
	tv.tv_usec = 500;
	assert_int_equal(uvs_setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	assert_int_equal(uvs_getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &got, &len), 0);
	assert_int_equal(got.tv_sec, 5);
	assert_int_equal(got.tv_usec, 500);
	/* generic options Linux accepts on any socket read back as set (socat sets
	 * SO_REUSEADDR, for instance); unknown ones fail */
	v = 1;
	assert_int_equal(uvs_setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &v, sizeof(v)), 0);
	len = sizeof(v);
	v = 0;
	assert_int_equal(uvs_getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &v, &len), 0);
	assert_int_equal(v, 1);
	v = 100000;
	assert_int_equal(uvs_setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)), 0);
	assert_int_equal(uvs_getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, &len), 0);
	assert_int_equal(v, 200000); /* doubled, as Linux reports it */
	assert_int_equal(uvs_getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &len), 0);
	assert_int_equal(v, 212992);
	assert_int_equal(uvs_setsockopt(fd, SOL_SOCKET, 9999, &v, sizeof(v)), -ENOPROTOOPT);
	len = sizeof(v);
	assert_int_equal(uvs_getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len), 0);
	assert_int_equal(v, SOCK_STREAM);
	assert_int_equal(uvs_getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len), 0);
	assert_int_equal(v, AF_VSOCK);
	assert_int_equal(uvs_getsockopt(fd, SOL_SOCKET, SO_ERROR, &v, &len), 0);
	assert_int_equal(v, 0);
	uvs_close(fd);
}

/* Threads keep calling on a socket while another closes it (and the fd number is reused):
 * every call returns a valid answer or -ENOTSOCK; nothing crashes or touches freed memory
 * (run_api_test.sh runs this test under valgrind too). */
struct hammer {
	/* atomic: the closing thread changes fd under the others; the point of the test */
	atomic_int fd;
	atomic_bool stop;
	atomic_ulong calls, notsock;
};

static void *
hammer_thread(void *arg)
{
	struct hammer *h = arg;
	char buf[8];

	while (!atomic_load(&h->stop)) {
		int v = 0;
		socklen_t len = sizeof(v);
		int rc = uvs_getsockopt(atomic_load(&h->fd), SOL_SOCKET, SO_TYPE, &v, &len);

		if (rc == -ENOTSOCK)
			atomic_fetch_add(&h->notsock, 1);
		else
			assert_true(rc == 0 && (v == SOCK_STREAM || v == SOCK_SEQPACKET));
		rc = (int)uvs_recv(atomic_load(&h->fd), buf, sizeof(buf), MSG_DONTWAIT);
		assert_true(rc == -ENOTSOCK || rc == -ENOTCONN);
		(void)uvs_poll_events(atomic_load(&h->fd));
		atomic_fetch_add(&h->calls, 1);
		sched_yield(); /* let the closing thread run (this test also runs under valgrind) */
	}
	return NULL;
}

static void
close_races_with_calls_in_other_threads(void **state)
{
	struct hammer h;
	pthread_t t[2];

	(void)state;
	atomic_init(&h.fd, uvs_socket(SOCK_STREAM));
	atomic_init(&h.stop, false);
	atomic_init(&h.calls, 0);
	atomic_init(&h.notsock, 0);
	assert_true(atomic_load(&h.fd) >= 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer_thread, &h), 0);
	for (int round = 0; round < 60; round++) {
		int fd;

		assert_int_equal(uvs_close(atomic_load(&h.fd)), 0);
		/* the lowest free number: usually the same fd comes back for the new socket */
		fd = uvs_socket(round & 1 ? SOCK_SEQPACKET : SOCK_STREAM);
		assert_true(fd >= 0);
		atomic_store(&h.fd, fd);
	}
	atomic_store(&h.stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_true(atomic_load(&h.calls) > 0);
	uvs_close(atomic_load(&h.fd));
}

/* A control connection of our own, speaking the IPC directly (what a hostile program does). */
static int
raw_ctl(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct uvs_ctl_req req = { .op = UVS_CTL_HELLO, .a = UVS_IPC_VERSION };
	struct uvs_ctl_resp resp;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);

	assert_true(fd >= 0);
	strncpy(sun.sun_path, getenv("UVSOCK_CONTROL"), sizeof(sun.sun_path) - 1);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(send(fd, &req, sizeof(req), 0), sizeof(req));
	assert_int_equal(recv(fd, &resp, sizeof(resp), 0), sizeof(resp));
	assert_int_equal(resp.rc, 0);
	return fd;
}

/* One request carrying fd (if >= 0); the response, its descriptors closed. */
static struct uvs_ctl_resp
raw_call(int ctl, uint32_t op, uint64_t sock, int fd)
{
	struct uvs_ctl_req req = { .op = op, .seq = 7, .sock = sock };
	struct uvs_ctl_resp resp;
	char cbuf[UVS_SCM_SPACE(2)];
	struct iovec iov = { .iov_base = &req, .iov_len = sizeof(req) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	int got[2];
	unsigned int n;

	uvs_scm_put(&msg, cbuf, &fd, fd >= 0);
	assert_int_equal(sendmsg(ctl, &msg, 0), sizeof(req));
	iov = (struct iovec){ .iov_base = &resp, .iov_len = sizeof(resp) };
	msg = (struct msghdr){ .msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = sizeof(cbuf) };
	assert_int_equal(recvmsg(ctl, &msg, 0), sizeof(resp));
	n = uvs_scm_get(&msg, got, 2);
	for (unsigned int i = 0; i < n; i++)
		close(got[i]);
	return resp;
}

/* ATTACH takes only the very socket the daemon made (not another socket, not a file), and
 * tells a program that found it across exec what it is. */
static void
attach_proves_possession(void **state)
{
	int ctl = raw_ctl(), fd = bound_socket(SOCK_SEQPACKET, 6100), sv[2];
	int devnull = open("/dev/null", O_RDONLY);
	struct uvs_ctl_resp r;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	assert_int_equal(raw_call(ctl, UVS_CTL_ATTACH, 0, sv[1]).rc, -EBADF);
	assert_int_equal(raw_call(ctl, UVS_CTL_ATTACH, 0, devnull).rc, -EBADF);
	assert_int_equal(raw_call(ctl, UVS_CTL_ATTACH, 0, -1).rc, -EBADF);
	r = raw_call(ctl, UVS_CTL_ATTACH, 0, fd); /* our anchor, as after exec */
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.a, UVS_TYPE_SEQPACKET);
	assert_int_equal(r.b, 0); /* not listening */
	assert_true(r.sock != 0);
	/* now an owner: requests for it work on this connection; again by id is a no-op */
	assert_int_equal(raw_call(ctl, UVS_CTL_GETNAME, r.sock, -1).rc, 0);
	assert_int_equal(raw_call(ctl, UVS_CTL_ATTACH, r.sock, fd).rc, 0);
	/* by id with someone else's fd: refused */
	assert_int_equal(raw_call(ctl, UVS_CTL_ATTACH, r.sock, sv[0]).rc, -EBADF);
	close(sv[0]);
	close(sv[1]);
	close(devnull);
	close(ctl);
	uvs_close(fd);
}

/* An empty message is a hang-up to the daemon, but it may carry fds: they must not stay open
 * in the daemon. The read end of a pipe goes with it; once the daemon hung up, a write finds
 * no reader left. */
static void
empty_message_keeps_no_fd(void **state)
{
	int ctl = raw_ctl(), p[2];
	char cbuf[UVS_SCM_SPACE(1)], b;
	struct msghdr msg = { 0 };
	void (*old)(int);

	(void)state;
	assert_int_equal(pipe(p), 0);
	uvs_scm_put(&msg, cbuf, &p[0], 1);
	assert_int_equal(sendmsg(ctl, &msg, 0), 0);
	close(p[0]);
	assert_int_equal(recv(ctl, &b, 1, 0), 0); /* the daemon hung up */
	old = signal(SIGPIPE, SIG_IGN);
	assert_int_equal(write(p[1], "x", 1), -1);
	assert_int_equal(errno, EPIPE);
	signal(SIGPIPE, old);
	close(p[1]);
	close(ctl);
}

/* Short-lived children that each use an inherited socket (a prefork server's workers): the
 * daemon forgets each one when it exits, so the 300th is served like the first. */
static void
fork_children_keep_working(void **state)
{
	int fd = bound_socket(SOCK_STREAM, 6101);

	(void)state;
	for (int i = 0; i < 300; i++) {
		int st = -1;
		pid_t pid = fork();

		assert_true(pid >= 0);
		if (pid == 0) {
			struct sockaddr_vm sa;

			int rc = uvs_getsockname(fd, &sa);

			if (rc != 0 || sa.svm_port != 6101)
				fprintf(stderr, "child %d: getsockname %d, port %u\n", i, rc,
						sa.svm_port);
			_exit(rc == 0 && sa.svm_port == 6101 ? 0 : 1);
		}
		assert_int_equal(waitpid(pid, &st, 0), pid);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fail_msg("child %d could not use the inherited socket", i);
	}
	uvs_close(fd);
}

static void
on_usr1(int sig)
{
	(void)sig;
}

static void *
blocked_accept(void *arg)
{
	return (void *)(intptr_t)uvs_accept(*(int *)arg, NULL, 0);
}

/* A fork while another thread is blocked in accept: the child gets no reference of that call,
 * so its close really closes its copies, and the port is free once the parent closes too,
 * with the child still alive. */
static void
fork_while_a_call_is_blocked(void **state)
{
	struct sigaction sa = { .sa_handler = on_usr1 }; /* no SA_RESTART: EINTR */
	int l = bound_socket(SOCK_STREAM, 6102), go[2], again;
	pthread_t t;
	void *ret;
	pid_t pid;
	int st;
	char b;

	(void)state;
	sigaction(SIGUSR1, &sa, NULL);
	assert_int_equal(uvs_listen(l, 1), 0);
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pthread_create(&t, NULL, blocked_accept, &l), 0);
	usleep(200000); /* t is asleep in accept */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		uvs_close(l);
		(void)read(go[0], &b, 1); /* stay alive until the parent checked */
		_exit(0);
	}
	pthread_kill(t, SIGUSR1);
	pthread_join(t, &ret);
	assert_int_equal((intptr_t)ret, -EINTR);
	usleep(200000); /* the child has closed its copy */
	assert_int_equal(uvs_close(l), 0);
	again = bound_socket(SOCK_STREAM, 6102); /* EADDRINUSE if a copy were left */
	assert_int_equal(write(go[1], "x", 1), 1);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	uvs_close(again);
	close(go[0]);
	close(go[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(no_daemon_gives_eafnosupport),
		cmocka_unit_test(socket_types),
		cmocka_unit_test(bind_rules),
		cmocka_unit_test(privileged_ports),
		cmocka_unit_test(listen_and_accept_rules),
		cmocka_unit_test(connect_without_guest),
		cmocka_unit_test(unconnected_io),
		cmocka_unit_test(buffer_size_options),
		cmocka_unit_test(timeout_options),
		cmocka_unit_test(close_races_with_calls_in_other_threads),
		cmocka_unit_test(attach_proves_possession),
		cmocka_unit_test(empty_message_keeps_no_fd),
		cmocka_unit_test(fork_children_keep_working),
		cmocka_unit_test(fork_while_a_call_is_blocked),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
