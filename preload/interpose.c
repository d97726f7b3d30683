/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Implementation notes
 *
 * libuvsock-preload.so: the libc entry points an unmodified program uses on sockets. A call
 * on an fd that libuvsock knows (uvs_is_socket(): one table lookup, no lock) goes to the
 * native API and its negative errno becomes errno; everything else goes straight to the
 * next definition (libc), found once with dlsym(RTLD_NEXT).
 *
 * libuvsock itself calls socket/send/recv/close/fcntl... on its anchors and control socket.
 * Those calls resolve to these same interposers, so a thread-local depth counter marks
 * "inside libuvsock": there every interposer passes straight through to libc.
 *
 * The kernel's own AF_VSOCK is never used: socket(AF_VSOCK, ...) is always answered here
 * (SOCK_DGRAM with ENODEV, as a KVM host has no datagram transport).
 *
 * Work in progress (issue 3): see preload/README.md for what is covered so far.
 */
/* The interposers must carry libc's own symbol names: without this, glibc's headers would rename
 * open/openat/fcntl to their *64 variants (meson builds with _FILE_OFFSET_BITS=64). */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "uvsock.h"

#define EXPORT __attribute__((visibility("default")))

static __thread int in_lib; /* > 0 while this thread runs libuvsock code */

/* The host's CID, what IOCTL_VM_SOCKETS_GET_LOCAL_CID answers on a host with vhost-vsock. */
#define UVS_PRELOAD_LOCAL_CID 2u
/* fds the program opened as /dev/vsock: really /dev/null (the kernel's vsock device is never
 * opened), answered here. A bit per fd below this bound. */
#define UVS_DEVVSOCK_FDS 4096
static uint8_t devvsock_fds[UVS_DEVVSOCK_FDS / 8];

static bool
is_devvsock(int fd)
{
	return fd >= 0 && fd < UVS_DEVVSOCK_FDS &&
	       (__atomic_load_n(&devvsock_fds[fd / 8], __ATOMIC_ACQUIRE) & (1u << (fd % 8)));
}

static void
mark_devvsock(int fd, bool on)
{
	if (fd < 0 || fd >= UVS_DEVVSOCK_FDS)
		return;
	if (on)
		__atomic_fetch_or(
				&devvsock_fds[fd / 8], (uint8_t)(1u << (fd % 8)), __ATOMIC_RELEASE);
	else
		__atomic_fetch_and(&devvsock_fds[fd / 8], (uint8_t) ~(1u << (fd % 8)),
				__ATOMIC_RELEASE);
}

#define REAL(name, ret, ...)                                                                       \
	static ret (*real_##name)(__VA_ARGS__);                                                    \
	static ret (*get_##name(void))(__VA_ARGS__)                                                \
	{                                                                                          \
		if (real_##name == NULL)                                                           \
			real_##name = (ret(*)(__VA_ARGS__))dlsym(RTLD_NEXT, #name);                \
		return real_##name;                                                                \
	}

REAL(socket, int, int, int, int)
REAL(bind, int, int, const struct sockaddr *, socklen_t)
REAL(listen, int, int, int)
REAL(accept, int, int, struct sockaddr *, socklen_t *)
REAL(accept4, int, int, struct sockaddr *, socklen_t *, int)
REAL(connect, int, int, const struct sockaddr *, socklen_t)
REAL(read, ssize_t, int, void *, size_t)
REAL(write, ssize_t, int, const void *, size_t)
REAL(recv, ssize_t, int, void *, size_t, int)
REAL(send, ssize_t, int, const void *, size_t, int)
REAL(recvfrom, ssize_t, int, void *, size_t, int, struct sockaddr *, socklen_t *)
REAL(sendto, ssize_t, int, const void *, size_t, int, const struct sockaddr *, socklen_t)
REAL(recvmsg, ssize_t, int, struct msghdr *, int)
REAL(sendmsg, ssize_t, int, const struct msghdr *, int)
REAL(readv, ssize_t, int, const struct iovec *, int)
REAL(writev, ssize_t, int, const struct iovec *, int)
REAL(close, int, int)
REAL(shutdown, int, int, int)
REAL(getsockopt, int, int, int, int, void *, socklen_t *)
REAL(setsockopt, int, int, int, int, const void *, socklen_t)
REAL(getsockname, int, int, struct sockaddr *, socklen_t *)
REAL(getpeername, int, int, struct sockaddr *, socklen_t *)
REAL(fcntl, int, int, int, ...)
REAL(fcntl64, int, int, int, ...)
REAL(open, int, const char *, int, ...)
REAL(open64, int, const char *, int, ...)
REAL(openat, int, int, const char *, int, ...)
REAL(openat64, int, int, const char *, int, ...)
REAL(ioctl, int, int, unsigned long, ...)

/* Is fd ours, and are we outside libuvsock? */
static bool
ours(int fd)
{
	return in_lib == 0 && uvs_is_socket(fd);
}

#define ENTER() in_lib++
#define LEAVE() in_lib--

/* libuvsock answers 0/count or -errno; the libc edge answers -1 with errno. */
static long
ret_errno(long rc)
{
	if (rc < 0) {
		errno = (int)-rc;
		return -1;
	}
	return rc;
}

/* Linux raises SIGPIPE for EPIPE on STREAM sockets (not SEQPACKET) unless MSG_NOSIGNAL. */
static long
send_result(int fd, long rc, int flags)
{
	if (rc == -EPIPE && !(flags & MSG_NOSIGNAL)) {
		int type = 0;
		socklen_t len = sizeof(type);

		if (uvs_getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
				type == SOCK_STREAM)
			raise(SIGPIPE);
	}
	return ret_errno(rc);
}

static int
copy_addr(const struct sockaddr_vm *vm, struct sockaddr *addr, socklen_t *len)
{
	if (addr == NULL || len == NULL)
		return 0;
	memcpy(addr, vm, *len < sizeof(*vm) ? *len : sizeof(*vm));
	*len = sizeof(*vm);
	return 0;
}

static int
vm_addr(const struct sockaddr *addr, socklen_t len, struct sockaddr_vm *vm)
{
	if (addr == NULL || len < sizeof(*vm))
		return -EINVAL;
	memcpy(vm, addr, sizeof(*vm));
	return 0;
}

EXPORT int
socket(int domain, int type, int protocol)
{
	int rc;

	if (domain != AF_VSOCK || in_lib)
		return get_socket()(domain, type, protocol);
	if (protocol != 0 && protocol != AF_VSOCK)
		return ret_errno(-EPROTONOSUPPORT);
	ENTER();
	rc = uvs_socket(type);
	LEAVE();
	return (int)ret_errno(rc);
}

EXPORT int
bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct sockaddr_vm vm;
	int rc;

	if (!ours(fd))
		return get_bind()(fd, addr, len);
	rc = vm_addr(addr, len, &vm);
	if (rc == 0) {
		ENTER();
		rc = uvs_bind(fd, &vm);
		LEAVE();
	}
	return (int)ret_errno(rc);
}

EXPORT int
listen(int fd, int backlog)
{
	int rc;

	if (!ours(fd))
		return get_listen()(fd, backlog);
	ENTER();
	rc = uvs_listen(fd, backlog);
	LEAVE();
	return (int)ret_errno(rc);
}

EXPORT int
accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	struct sockaddr_vm vm;
	int rc;

	if (!ours(fd))
		return get_accept4()(fd, addr, len, flags);
	ENTER();
	rc = uvs_accept(fd, &vm, flags);
	LEAVE();
	if (rc >= 0)
		copy_addr(&vm, addr, len);
	return (int)ret_errno(rc);
}

EXPORT int
accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	if (!ours(fd))
		return get_accept()(fd, addr, len);
	return accept4(fd, addr, len, 0);
}

EXPORT int
connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct sockaddr_vm vm;
	int rc;

	if (!ours(fd))
		return get_connect()(fd, addr, len);
	rc = vm_addr(addr, len, &vm);
	if (rc == 0) {
		ENTER();
		rc = uvs_connect(fd, &vm);
		LEAVE();
	}
	return (int)ret_errno(rc);
}

EXPORT ssize_t
recvmsg(int fd, struct msghdr *msg, int flags)
{
	struct sockaddr_vm vm;
	ssize_t rc;

	if (!ours(fd))
		return get_recvmsg()(fd, msg, flags);
	ENTER();
	rc = uvs_recvmsg(fd, msg, flags);
	if (rc >= 0 && msg->msg_name != NULL) {
		socklen_t l = msg->msg_namelen;

		if (uvs_getpeername(fd, &vm) == 0) {
			copy_addr(&vm, msg->msg_name, &l);
			msg->msg_namelen = l;
		} else {
			msg->msg_namelen = 0;
		}
	}
	if (rc >= 0)
		msg->msg_controllen = 0;
	LEAVE();
	return ret_errno(rc);
}

EXPORT ssize_t
sendmsg(int fd, const struct msghdr *msg, int flags)
{
	ssize_t rc;

	if (!ours(fd))
		return get_sendmsg()(fd, msg, flags);
	ENTER();
	rc = uvs_sendmsg(fd, msg, flags);
	rc = send_result(fd, rc, flags);
	LEAVE();
	return rc;
}

EXPORT ssize_t
recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr, socklen_t *alen)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t rc;

	if (!ours(fd))
		return get_recvfrom()(fd, buf, len, flags, addr, alen);
	if (addr != NULL && alen != NULL) {
		msg.msg_name = addr;
		msg.msg_namelen = *alen;
	}
	rc = recvmsg(fd, &msg, flags);
	if (rc >= 0 && addr != NULL && alen != NULL)
		*alen = msg.msg_namelen;
	return rc;
}

EXPORT ssize_t
recv(int fd, void *buf, size_t len, int flags)
{
	if (!ours(fd))
		return get_recv()(fd, buf, len, flags);
	return recvfrom(fd, buf, len, flags, NULL, NULL);
}

EXPORT ssize_t
read(int fd, void *buf, size_t len)
{
	if (!ours(fd))
		return get_read()(fd, buf, len);
	return recvfrom(fd, buf, len, 0, NULL, NULL);
}

EXPORT ssize_t
readv(int fd, const struct iovec *iov, int n)
{
	struct msghdr msg = { .msg_iov = (struct iovec *)(uintptr_t)iov, .msg_iovlen = (size_t)n };

	if (!ours(fd))
		return get_readv()(fd, iov, n);
	return recvmsg(fd, &msg, 0);
}

EXPORT ssize_t
sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *addr, socklen_t alen)
{
	struct iovec iov = { .iov_base = (void *)(uintptr_t)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_name = (void *)(uintptr_t)addr,
		.msg_namelen = alen };

	if (!ours(fd))
		return get_sendto()(fd, buf, len, flags, addr, alen);
	return sendmsg(fd, &msg, flags);
}

EXPORT ssize_t
send(int fd, const void *buf, size_t len, int flags)
{
	if (!ours(fd))
		return get_send()(fd, buf, len, flags);
	return sendto(fd, buf, len, flags, NULL, 0);
}

EXPORT ssize_t
write(int fd, const void *buf, size_t len)
{
	if (!ours(fd))
		return get_write()(fd, buf, len);
	return sendto(fd, buf, len, 0, NULL, 0);
}

EXPORT ssize_t
writev(int fd, const struct iovec *iov, int n)
{
	struct msghdr msg = { .msg_iov = (struct iovec *)(uintptr_t)iov, .msg_iovlen = (size_t)n };

	if (!ours(fd))
		return get_writev()(fd, iov, n);
	return sendmsg(fd, &msg, 0);
}

EXPORT int
close(int fd)
{
	int rc;

	if (!ours(fd)) {
		mark_devvsock(fd, false);
		return get_close()(fd);
	}
	ENTER();
	rc = uvs_close(fd);
	LEAVE();
	return (int)ret_errno(rc);
}

EXPORT int
shutdown(int fd, int how)
{
	int rc;

	if (!ours(fd))
		return get_shutdown()(fd, how);
	ENTER();
	rc = uvs_shutdown(fd, how);
	LEAVE();
	return (int)ret_errno(rc);
}

EXPORT int
getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	int rc;

	if (!ours(fd))
		return get_getsockopt()(fd, level, name, val, len);
	ENTER();
	rc = uvs_getsockopt(fd, level, name, val, len);
	LEAVE();
	return (int)ret_errno(rc);
}

EXPORT int
setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	int rc;

	if (!ours(fd))
		return get_setsockopt()(fd, level, name, val, len);
	ENTER();
	rc = uvs_setsockopt(fd, level, name, val, len);
	LEAVE();
	return (int)ret_errno(rc);
}

EXPORT int
getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
	struct sockaddr_vm vm;
	int rc;

	if (!ours(fd))
		return get_getsockname()(fd, addr, len);
	ENTER();
	rc = uvs_getsockname(fd, &vm);
	LEAVE();
	if (rc == 0)
		copy_addr(&vm, addr, len);
	return (int)ret_errno(rc);
}

EXPORT int
getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
	struct sockaddr_vm vm;
	int rc;

	if (!ours(fd))
		return get_getpeername()(fd, addr, len);
	ENTER();
	rc = uvs_getpeername(fd, &vm);
	LEAVE();
	if (rc == 0)
		copy_addr(&vm, addr, len);
	return (int)ret_errno(rc);
}

/* fcntl: everything goes to the kernel (the fd is real); O_NONBLOCK is mirrored. Programs
 * built with 64-bit file offsets call fcntl64, the others fcntl. */
static int
fcntl_common(int fd, int cmd, long arg, bool lfs)
{
	int rc = lfs ? get_fcntl64()(fd, cmd, arg) : get_fcntl()(fd, cmd, arg);

	if (rc >= 0 && cmd == F_SETFL && ours(fd)) {
		ENTER();
		uvs_set_nonblock(fd, (arg & O_NONBLOCK) != 0);
		LEAVE();
	}
	return rc;
}

EXPORT int
fcntl(int fd, int cmd, ...)
{
	va_list ap;
	long arg;

	va_start(ap, cmd);
	arg = va_arg(ap, long);
	va_end(ap);
	return fcntl_common(fd, cmd, arg, false);
}

EXPORT int
fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	long arg;

	va_start(ap, cmd);
	arg = va_arg(ap, long);
	va_end(ap);
	return fcntl_common(fd, cmd, arg, true);
}

EXPORT int
ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;
	int rc;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (req == IOCTL_VM_SOCKETS_GET_LOCAL_CID && is_devvsock(fd)) {
		if (arg == NULL) {
			errno = EFAULT;
			return -1;
		}
		*(unsigned int *)arg = UVS_PRELOAD_LOCAL_CID;
		return 0;
	}
	rc = get_ioctl()(fd, req, arg);
	if (rc >= 0 && req == FIONBIO && arg != NULL && ours(fd)) {
		ENTER();
		uvs_set_nonblock(fd, *(int *)arg != 0);
		LEAVE();
	}
	return rc;
}

/* open("/dev/vsock"): the program wants the local CID; it gets /dev/null under the hood, and
 * its IOCTL_VM_SOCKETS_GET_LOCAL_CID is answered above. Everything else passes through. */
static int
open_common(int dirfd, const char *path, int flags, mode_t mode, bool at, bool lfs)
{
	int fd;

	if (path != NULL && strcmp(path, "/dev/vsock") == 0 && in_lib == 0) {
		fd = get_open()("/dev/null", (flags & ~(O_CREAT | O_TRUNC | O_EXCL)));
		if (fd >= 0)
			mark_devvsock(fd, true);
		return fd;
	}
	if (at)
		return lfs ? get_openat64()(dirfd, path, flags, mode)
			   : get_openat()(dirfd, path, flags, mode);
	return lfs ? get_open64()(path, flags, mode) : get_open()(path, flags, mode);
}

#define OPEN_MODE(flags, mode)                                                                     \
	do {                                                                                       \
		va_list ap;                                                                        \
		va_start(ap, flags);                                                               \
		mode = (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;                   \
		va_end(ap);                                                                        \
	} while (0)

EXPORT int
open(const char *path, int flags, ...)
{
	mode_t mode;

	OPEN_MODE(flags, mode);
	return open_common(AT_FDCWD, path, flags, mode, false, false);
}

EXPORT int
open64(const char *path, int flags, ...)
{
	mode_t mode;

	OPEN_MODE(flags, mode);
	return open_common(AT_FDCWD, path, flags, mode, false, true);
}

EXPORT int
openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode;

	OPEN_MODE(flags, mode);
	return open_common(dirfd, path, flags, mode, true, false);
}

EXPORT int
openat64(int dirfd, const char *path, int flags, ...)
{
	mode_t mode;

	OPEN_MODE(flags, mode);
	return open_common(dirfd, path, flags, mode, true, true);
}
