/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libuvsock: AF_VSOCK sockets for host programs, served by uvsockd.
 *
 * Each call mirrors the Linux socket call of the same name on an AF_VSOCK socket, with the
 * same semantics and errno values, except that errors are returned as negative errno
 * values instead of through errno. A socket is a real file descriptor (one end of a unix
 * socketpair held with the daemon), so it can be passed to poll/epoll/select: it becomes
 * readable when the socket's state changes after a call returned -EAGAIN (data or a
 * connection arrived, send space freed, the peer shut down or reset). That call re-arms the
 * fd for every kind of change at once, so a program waiting for several (say, data and send
 * space) checks all of them, e.g. with uvs_poll_events(), before it sleeps.
 *
 * The daemon is found through the UVSOCK_CONTROL environment variable, default
 * /run/uvsock/uvsock.sock. Without a daemon, uvs_socket() fails with -EAFNOSUPPORT, what a
 * host without vsock support answers.
 */
#ifndef UVSOCK_H
#define UVSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <linux/vm_sockets.h>

#ifdef __cplusplus
extern "C" {
#endif

/** socket(AF_VSOCK, type, 0): type is SOCK_STREAM or SOCK_SEQPACKET, optionally ORed with
 * SOCK_NONBLOCK and SOCK_CLOEXEC. @return the socket's fd, or -errno. */
int uvs_socket(int type);
int uvs_bind(int fd, const struct sockaddr_vm *addr);
int uvs_listen(int fd, int backlog);
/** accept4(): flags may hold SOCK_NONBLOCK | SOCK_CLOEXEC; addr may be NULL. */
int uvs_accept(int fd, struct sockaddr_vm *addr, int flags);
/** connect(): blocking, or -EINPROGRESS on a nonblocking socket (then poll for readable
 * and read the outcome with uvs_getsockopt(SOL_SOCKET, SO_ERROR)). */
int uvs_connect(int fd, const struct sockaddr_vm *addr);
ssize_t uvs_send(int fd, const void *buf, size_t len, int flags);
ssize_t uvs_recv(int fd, void *buf, size_t len, int flags);
ssize_t uvs_sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t uvs_recvmsg(int fd, struct msghdr *msg, int flags);
int uvs_shutdown(int fd, int how);
int uvs_close(int fd);
int uvs_getsockname(int fd, struct sockaddr_vm *addr);
int uvs_getpeername(int fd, struct sockaddr_vm *addr);
int uvs_setsockopt(int fd, int level, int name, const void *val, socklen_t len);
int uvs_getsockopt(int fd, int level, int name, void *val, socklen_t *len);
/** Switch O_NONBLOCK semantics of the socket (fcntl(F_SETFL) equivalent). */
int uvs_set_nonblock(int fd, bool on);
/** Whether fd is a uvsock socket of this process. */
bool uvs_is_socket(int fd);
/** Readiness now, as poll(2) bits (POLLIN, POLLOUT, POLLRDHUP, POLLHUP, POLLERR), without
 * blocking; if nothing is ready, the fd is armed to become readable on the next change. */
int uvs_poll_events(int fd);

#ifdef __cplusplus
}
#endif

#endif /* UVSOCK_H */
