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
 * The kernel's own AF_VSOCK is never used unless UVSOCK_KERNEL_FALLBACK=1 asks for it when
 * no daemon answers: socket(AF_VSOCK, ...) is answered here (SOCK_DGRAM with ENODEV, as a
 * KVM host has no datagram transport).
 *
 * Readiness is the kernel's: poll/select/epoll are not interposed; the fd is a real socket
 * whose readable/writable state libuvsock and the daemon keep equal to a vsock socket's.
 * The fd calls that create or destroy fd numbers (dup*, F_DUPFD*, close, close_range) keep
 * libuvsock's table in step; libuvsock's own fds (reserved) cannot be closed or replaced by
 * the program, which never got them. See doc/preload.md for the whole contract.
 */
/* The interposers must carry libc's own symbol names: without this, glibc's headers would rename
 * open/openat/fcntl to their *64 variants (meson builds with _FILE_OFFSET_BITS=64). */
#undef _FILE_OFFSET_BITS
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "uvsock.h"

#define EXPORT __attribute__((visibility("default")))

static __thread int in_lib; /* > 0 while this thread runs libuvsock code */

/* The host's CID, what IOCTL_VM_SOCKETS_GET_LOCAL_CID answers on a host with vhost-vsock
 * (used when no daemon answers). */
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

/* libc's definition of name, looked up on first use. Threads may look it up at once and store
 * the same pointer: the accesses are atomic (relaxed: the code it points to never changes), a
 * plain shared variable written by two threads is a data race (ThreadSanitizer). */
#define REAL(name, ret, ...)                                                                       \
	static ret (*real_##name)(__VA_ARGS__);                                                    \
	static ret (*get_##name(void))(__VA_ARGS__)                                                \
	{                                                                                          \
		ret (*f)(__VA_ARGS__) = __atomic_load_n(&real_##name, __ATOMIC_RELAXED);           \
                                                                                                   \
		if (f == NULL) {                                                                   \
			f = (ret(*)(__VA_ARGS__))dlsym(RTLD_NEXT, #name);                          \
			__atomic_store_n(&real_##name, f, __ATOMIC_RELAXED);                       \
		}                                                                                  \
		return f;                                                                          \
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
REAL(dup, int, int)
REAL(dup2, int, int, int)
REAL(dup3, int, int, int, int)
REAL(close_range, int, unsigned int, unsigned int, int)
REAL(__read_chk, ssize_t, int, void *, size_t, size_t)
REAL(__recv_chk, ssize_t, int, void *, size_t, size_t, int)
REAL(__recvfrom_chk, ssize_t, int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *)
REAL(sendfile, ssize_t, int, int, off_t *, size_t)
REAL(sendfile64, ssize_t, int, int, off64_t *, size_t)
REAL(recvmmsg, int, int, struct mmsghdr *, unsigned int, int, struct timespec *)
REAL(sendmmsg, int, int, struct mmsghdr *, unsigned int, int)

/* UVSOCK_KERNEL_FALLBACK=1: without a daemon, use the kernel's AF_VSOCK. Off by default. */
static bool
kernel_fallback(void)
{
	const char *v = getenv("UVSOCK_KERNEL_FALLBACK");

	return v != NULL && strcmp(v, "1") == 0;
}

/* glibc's fortify entry points (no public declarations). */
extern void __chk_fail(void) __attribute__((noreturn));
ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
		struct sockaddr *addr, socklen_t *alen);

static int dup_done(int oldfd, int rc);
static void adopt_passed(struct msghdr *msg);

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
	if (rc == -EAFNOSUPPORT && kernel_fallback())
		return get_socket()(domain, type, protocol); /* explicitly asked for */
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

	if (!ours(fd)) {
		rc = get_recvmsg()(fd, msg, flags);
		if (rc >= 0 && msg->msg_controllen > 0 && in_lib == 0)
			adopt_passed(msg);
		return rc;
	}
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

/* The process whose memory (and libuvsock's fd table) this is; see vfork_child(). */
static pid_t shim_pid;

static void
shim_atfork_child(void)
{
	shim_pid = getpid();
}

/*
 * A vfork() child (posix_spawn, python's subprocess, system()) runs in its parent's memory
 * with its own fd table until it execs: its dup2()/close()/close_range() on the way must
 * only touch its fds, never the parent's table. Checked only for calls on vsock or reserved
 * fds (a system call).
 */
static bool
vfork_child(void)
{
	return shim_pid != 0 && getpid() != shim_pid;
}

/* One of libuvsock's own fds: the program never got it, so for the program it is not open. */
static bool
reserved(int fd)
{
	return in_lib == 0 && uvs_fd_reserved(fd) && !vfork_child();
}

EXPORT int
close(int fd)
{
	int rc;

	if (reserved(fd))
		return (int)ret_errno(-EBADF);
	if (!ours(fd) || vfork_child()) {
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
	int rc;

	if (reserved(fd))
		return (int)ret_errno(-EBADF);
	rc = lfs ? get_fcntl64()(fd, cmd, arg) : get_fcntl()(fd, cmd, arg);
	if ((cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) && !in_lib)
		return dup_done(fd, rc);
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
		uint32_t cid;

		/* the daemon's answer (the guest's CID inside uvsock-guest); without a daemon,
		 * what a host with vhost-vsock answers */
		ENTER();
		if (uvs_local_cid(&cid) < 0)
			cid = UVS_PRELOAD_LOCAL_CID;
		LEAVE();
		*(unsigned int *)arg = cid;
		return 0;
	}
	if (ours(fd) && (req == FIONREAD || req == TIOCOUTQ)) {
		if (arg == NULL)
			return (int)ret_errno(-EFAULT);
		ENTER();
		rc = uvs_ioctl(fd, req, arg);
		LEAVE();
		return (int)ret_errno(rc);
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

/* --- fd numbers: dup and friends keep libuvsock's table in step with the kernel's --- */

/* The kernel made newfd a copy of oldfd (rc >= 0; rc is newfd) or failed (rc < 0). */
static int
dup_done(int oldfd, int rc)
{
	if (rc < 0 || in_lib)
		return rc;
	if (is_devvsock(oldfd) || is_devvsock(rc))
		mark_devvsock(rc, is_devvsock(oldfd));
	if (!uvs_is_socket(oldfd) && !uvs_is_socket(rc))
		return rc; /* nothing of ours: no lock, no system call */
	if (vfork_child())
		return rc;
	ENTER();
	if (uvs_is_socket(oldfd))
		uvs_fd_dup(oldfd, rc);
	else
		uvs_fd_forget(rc); /* the socket that was at rc is closed now */
	LEAVE();
	return rc;
}

EXPORT int
dup(int fd)
{
	if (reserved(fd))
		return (int)ret_errno(-EBADF);
	return dup_done(fd, get_dup()(fd));
}

/* dup2/dup3 onto one of libuvsock's own fds would take it away: refused with EBUSY (what
 * Linux answers when the target is being opened), documented. */
EXPORT int
dup2(int oldfd, int newfd)
{
	if (reserved(oldfd))
		return (int)ret_errno(-EBADF);
	if (reserved(newfd))
		return (int)ret_errno(-EBUSY);
	if (oldfd == newfd)
		return get_dup2()(oldfd, newfd); /* no change, whatever oldfd is */
	return dup_done(oldfd, get_dup2()(oldfd, newfd));
}

EXPORT int
dup3(int oldfd, int newfd, int flags)
{
	if (reserved(oldfd))
		return (int)ret_errno(-EBADF);
	if (reserved(newfd) && oldfd != newfd)
		return (int)ret_errno(-EBUSY);
	return dup_done(oldfd, get_dup3()(oldfd, newfd, flags));
}

/* close_range()/closefrom() skip libuvsock's own fds: the kernel closes the gaps. */
static int
close_span(unsigned int first, unsigned int last, int flags)
{
	unsigned int fd, lo = first;
	int rc = 0;

	/* libuvsock's table is bounded: nothing of ours lies beyond it */
	for (fd = first; fd <= last && fd < (1u << 20); fd++) {
		if (!uvs_fd_reserved((int)fd))
			continue;
		if (fd > lo && get_close_range()(lo, fd - 1, flags) < 0)
			rc = -1;
		lo = fd + 1;
	}
	if (lo <= last && lo >= first && get_close_range()(lo, last, flags) < 0)
		rc = -1;
	return rc;
}

EXPORT int
close_range(unsigned int first, unsigned int last, int flags)
{
	if (in_lib || first > last || vfork_child())
		return get_close_range()(first, last, flags);
	if (!(flags & CLOSE_RANGE_CLOEXEC)) {
		/* forget first, as close() does: a socket another thread creates meanwhile
		 * at a freed number must not lose its entry */
		ENTER();
		for (unsigned int fd = first; fd <= last && fd < (1u << 20); fd++) {
			if (uvs_is_socket((int)fd))
				uvs_fd_forget((int)fd);
			if (is_devvsock((int)fd))
				mark_devvsock((int)fd, false);
		}
		LEAVE();
	}
	return close_span(first, last, flags);
}

EXPORT void
closefrom(int lowfd)
{
	if (lowfd < 0)
		lowfd = 0;
	if (close_range((unsigned int)lowfd, ~0u, 0) < 0) {
		/* no close_range (old kernel): one by one up to the table's bound */
		for (int fd = lowfd; fd < (1 << 20); fd++)
			if (!uvs_fd_reserved(fd))
				close(fd);
	}
}

/* --- fortified variants (_FORTIFY_SOURCE): same checks as glibc's, then the call --- */

EXPORT ssize_t
__read_chk(int fd, void *buf, size_t len, size_t buflen)
{
	if (!ours(fd))
		return get___read_chk()(fd, buf, len, buflen);
	if (len > buflen)
		__chk_fail();
	return read(fd, buf, len);
}

EXPORT ssize_t
__recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags)
{
	if (!ours(fd))
		return get___recv_chk()(fd, buf, len, buflen, flags);
	if (len > buflen)
		__chk_fail();
	return recv(fd, buf, len, flags);
}

EXPORT ssize_t
__recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags, struct sockaddr *addr,
		socklen_t *alen)
{
	if (!ours(fd))
		return get___recvfrom_chk()(fd, buf, len, buflen, flags, addr, alen);
	if (len > buflen)
		__chk_fail();
	return recvfrom(fd, buf, len, flags, addr, alen);
}

/* --- batch and zero-copy calls, emulated on the single-message ones --- */

EXPORT int
recvmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags, struct timespec *timeout)
{
	unsigned int i;
	ssize_t rc = 0;

	if (!ours(fd))
		return get_recvmmsg()(fd, v, n, flags, timeout);
	/* as Linux: MSG_WAITFORONE makes every message after the first nonblocking */
	for (i = 0; i < n; i++) {
		rc = recvmsg(fd, &v[i].msg_hdr, flags & ~MSG_WAITFORONE);
		if (rc < 0)
			break;
		v[i].msg_len = (unsigned int)rc;
		if (flags & MSG_WAITFORONE)
			flags |= MSG_DONTWAIT;
	}
	return i > 0 ? (int)i : (int)rc;
}

EXPORT int
sendmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags)
{
	unsigned int i;
	ssize_t rc = 0;

	if (!ours(fd))
		return get_sendmmsg()(fd, v, n, flags);
	for (i = 0; i < n; i++) {
		rc = sendmsg(fd, &v[i].msg_hdr, flags);
		if (rc < 0)
			break;
		v[i].msg_len = (unsigned int)rc;
	}
	return i > 0 ? (int)i : (int)rc;
}

/* Bytes per step of an emulated sendfile(). */
#define UVS_SENDFILE_CHUNK 65536

/* sendfile() to a vsock socket: read the file, send the bytes. From a vsock socket: EINVAL,
 * as Linux answers for an input that cannot be mapped. */
static ssize_t
sendfile_emul(int out_fd, int in_fd, off64_t *off, size_t count)
{
	char buf[UVS_SENDFILE_CHUNK];
	size_t done = 0;
	ssize_t r, w;

	if (ours(in_fd))
		return ret_errno(-EINVAL);
	while (done < count) {
		size_t want = count - done < sizeof(buf) ? count - done : sizeof(buf);

		r = off != NULL ? pread(in_fd, buf, want, *off) : read(in_fd, buf, want);
		if (r <= 0)
			return done > 0 ? (ssize_t)done : r;
		w = send(out_fd, buf, (size_t)r, 0);
		if (w <= 0) {
			if (off == NULL && w < 0) /* put back what was read and not sent */
				lseek(in_fd, -(off_t)r, SEEK_CUR);
			return done > 0 ? (ssize_t)done : w;
		}
		if (w < r && off == NULL)
			lseek(in_fd, -(off_t)(r - w), SEEK_CUR);
		if (off != NULL)
			*off += w;
		done += (size_t)w;
		if (w < r)
			break;
	}
	return (ssize_t)done;
}

EXPORT ssize_t
sendfile(int out_fd, int in_fd, off_t *off, size_t count)
{
	off64_t o;
	ssize_t rc;

	if (!ours(out_fd) && !ours(in_fd))
		return get_sendfile()(out_fd, in_fd, off, count);
	if (off == NULL)
		return sendfile_emul(out_fd, in_fd, NULL, count);
	o = *off;
	rc = sendfile_emul(out_fd, in_fd, &o, count);
	*off = (off_t)o;
	return rc;
}

EXPORT ssize_t
sendfile64(int out_fd, int in_fd, off64_t *off, size_t count)
{
	if (!ours(out_fd) && !ours(in_fd))
		return get_sendfile64()(out_fd, in_fd, off, count);
	return sendfile_emul(out_fd, in_fd, off, count);
}

/* --- sockets inherited across exec --- */

/* Inherited sockets recognised as copies of one another at startup (more: separate objects,
 * which works too, only less cheaply). */
#define UVS_ADOPT_DEDUP 64

/* A unix SOCK_SEQPACKET socket: maybe a vsock anchor (the daemon tells). */
static bool
maybe_anchor(int fd)
{
	struct stat st;
	int v;
	socklen_t len = sizeof(v);

	if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
		return false;
	if (get_getsockopt()(fd, SOL_SOCKET, SO_DOMAIN, &v, &len) < 0 || v != AF_UNIX)
		return false;
	len = sizeof(v);
	return get_getsockopt()(fd, SOL_SOCKET, SO_TYPE, &v, &len) == 0 && v == SOCK_SEQPACKET;
}

/* fds received with SCM_RIGHTS on a unix socket may be vsock sockets of another process:
 * take them in (only unix SOCK_SEQPACKET ones cost a request). */
static void
adopt_passed(struct msghdr *msg)
{
	struct cmsghdr *cm;

	for (cm = CMSG_FIRSTHDR(msg); cm != NULL; cm = CMSG_NXTHDR(msg, cm)) {
		size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
			if (!maybe_anchor(fd))
				continue;
			ENTER();
			(void)uvs_fd_adopt(fd);
			LEAVE();
		}
	}
}

/*
 * A program started by exec() from one that had vsock sockets (ncat --exec, socat EXEC:,
 * inetd-style services) holds their anchors without knowing them: take them in before main()
 * runs, so that its reads and writes are vsock I/O and not the anchor's doorbells. Only
 * candidates (unix SOCK_SEQPACKET sockets) cost a request to the daemon, which recognises
 * its own anchors.
 */
__attribute__((constructor)) static void
uvs_preload_init(void)
{
	struct adopted {
		ino_t ino;
		int fd;
	} seen[UVS_ADOPT_DEDUP];
	unsigned int nseen = 0;
	DIR *dir;
	struct dirent *e;
	int dfd;

	shim_pid = getpid();
	pthread_atfork(NULL, NULL, shim_atfork_child);
	dir = opendir("/proc/self/fd");
	if (dir == NULL)
		return;
	dfd = dirfd(dir);
	while ((e = readdir(dir)) != NULL) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);
		struct stat st;
		unsigned int i;

		if (*end != '\0' || end == e->d_name || fd == dfd || fd < 0 || fd > INT32_MAX)
			continue;
		if (!maybe_anchor((int)fd) || fstat((int)fd, &st) < 0)
			continue;
		/* stdin and stdout are often the same socket: one object, two fds */
		for (i = 0; i < nseen && seen[i].ino != st.st_ino; i++)
			;
		ENTER();
		if (i < nseen)
			(void)uvs_fd_dup(seen[i].fd, (int)fd);
		else if (uvs_fd_adopt((int)fd) == 0 && nseen < UVS_ADOPT_DEDUP)
			seen[nseen++] = (struct adopted){ .ino = st.st_ino, .fd = (int)fd };
		LEAVE();
	}
	closedir(dir);
}
