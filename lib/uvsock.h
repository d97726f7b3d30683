/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libuvsock: AF_VSOCK sockets for host programs, served by uvsockd.
 *
 * Each call mirrors the Linux socket call of the same name on an AF_VSOCK socket, with the
 * same semantics and errno values, except that errors are returned as negative errno
 * values instead of through errno. A socket is a real file descriptor (one end of a unix
 * socketpair held with the daemon), so it can be passed to poll/epoll/select, and reports
 * what a kernel vsock socket would: readable exactly when a receive (or accept) would not
 * block, writable when a send would not (never while connecting or listening, nor after
 * SHUT_WR), hang-up when the daemon is gone. fork() works: parent and child both keep the
 * socket (libuvsock attaches it to the child's own control connection on first use).
 *
 * The daemon is found through the UVSOCK_CONTROL environment variable, default
 * /run/uvsock/uvsock.sock. Without a daemon, uvs_socket() fails with -EAFNOSUPPORT, what a
 * host without vsock support answers.
 */
#ifndef UVSOCK_H
#define UVSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
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
/** The local CID, as IOCTL_VM_SOCKETS_GET_LOCAL_CID on /dev/vsock: the host's (2) under
 * uvsockd, the guest's under uvsock-guest. @return 0, or -EAFNOSUPPORT without a daemon. */
int uvs_local_cid(uint32_t *cid);
/** Switch O_NONBLOCK semantics of the socket (fcntl(F_SETFL) equivalent). */
int uvs_set_nonblock(int fd, bool on);
/** Whether fd is a uvsock socket of this process. */
bool uvs_is_socket(int fd);
/** ioctl(): FIONREAD (SIOCINQ, unread bytes), TIOCOUTQ (SIOCOUTQ, unsent bytes), FIONBIO;
 * -EINVAL for the first two on a listener, -ENOTTY for others, as Linux 6.17. */
int uvs_ioctl(int fd, unsigned long req, int *val);

/* fd bookkeeping, for a libc-level interposer (the LD_PRELOAD shim) that sees the program's
 * dup()/dup2()/dup3()/fcntl(F_DUPFD) and close_range() succeed in the kernel. */
/** newfd is now another fd of oldfd's socket (a previous socket at newfd is dropped). */
int uvs_fd_dup(int oldfd, int newfd);
/** fd came from elsewhere (inherited across exec, received with SCM_RIGHTS): if it is a
 * socket's anchor from the running daemon, take it in as that socket (options set before
 * exec are not carried over). @return 0, -ENOTSOCK if it is not one, or -errno. */
int uvs_fd_adopt(int fd);
/** The kernel closed fd behind libuvsock's back: drop it from the table. */
void uvs_fd_forget(int fd);
/** Whether fd is one libuvsock keeps for itself (a private anchor copy or the control
 * socket), which the program never got and must not close or replace. */
bool uvs_fd_reserved(int fd);
/** Readiness now, as poll(2) bits (POLLIN, POLLOUT, POLLRDHUP, POLLHUP, POLLERR), computed from
 * the shared state, without blocking; if nothing is ready, the fd is armed to become readable
 * on the next receive news (data, end, reset). The fd itself reports the same (but POLLERR). */
int uvs_poll_events(int fd);

#ifdef __cplusplus
}
#endif

#endif /* UVSOCK_H */
