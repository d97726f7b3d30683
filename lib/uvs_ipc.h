/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The ABI between host programs (libuvsock) and uvsockd: control messages on a unix
 * SOCK_SEQPACKET socket, and a shared-memory segment per connected socket.
 *
 * Every socket has an anchor: one end of a unix SOCK_SEQPACKET socketpair that the daemon
 * creates and passes to the program. The program uses the anchor's fd as the socket's fd,
 * so poll/epoll/dup/fork/close are kernel operations on it; the daemon sees the program's
 * last close as a hang-up on its end.
 *
 * The anchor's two directions have one job each, so that poll/select/epoll on the program's
 * fd report what a kernel vsock socket would:
 *  - daemon to program: one-byte doorbells. The fd is readable exactly while one is queued.
 *    When the peer shuts down sending (or resets), the daemon shuts its end for writing: the
 *    fd then reads as POLLIN|POLLRDHUP for good, as a vsock socket does.
 *  - program to daemon: the "filler", a message big enough to make the program's end not
 *    writable (its unread bytes fill its send buffer, which the daemon sets to
 *    UVS_ANCHOR_SNDBUF). The program sends it when it cannot send (ring full, connecting,
 *    listening, shut down); the daemon reads it, making the fd writable again, once the
 *    program can. A sender blocked behind it sends a one-byte token, which the daemon reads
 *    and drops. When the program shuts down sending, it shuts its end for writing too.
 * Program-to-daemon wake-ups (data queued, data consumed, ring back) therefore travel on the
 * control connection as one-way UVS_CTL_NOTIFY messages.
 *
 * Wake-up protocol (no lost wake-ups, no system call while both sides are busy):
 * a side that is about to sleep sets its *_wait word, issues a full fence, re-checks what
 * it waits for, and only then sleeps; a side that changes something issues a full fence
 * and, if it wins the exchange of the other side's *_wait word to 0, sends one doorbell.
 */
#ifndef UVS_IPC_H
#define UVS_IPC_H

#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "uvs_ring.h"

#define UVS_IPC_MAGIC 0x31737675u /* "uvs1" */
#define UVS_IPC_VERSION 4u
#define UVS_CONTROL_DEFAULT "/run/uvsock/uvsock.sock"
#define UVS_CONTROL_ENV "UVSOCK_CONTROL"

/* Socket states as published in the segment. */
enum uvs_sock_state {
	UVS_SS_UNCONNECTED = 0,
	UVS_SS_CONNECTING,
	UVS_SS_CONNECTED,
	UVS_SS_DISCONNECTED, /* over on the wire; remaining data can still be read */
};

/* daemon_wait bits: what the daemon wants a notification for; also UVS_CTL_NOTIFY's bits. */
#define UVS_DWAIT_TX 1u	      /* the program queued data in tx */
#define UVS_DWAIT_CONSUMED 2u /* the program consumed rx data (credit can be returned) */
/* UVS_CTL_NOTIFY only: ring the doorbell back. The program armed, found news on its re-check,
 * and wants its fd readable (poll/select). */
#define UVS_NOTE_RING_BACK 4u
#define UVS_NOTE_ALL (UVS_DWAIT_TX | UVS_DWAIT_CONSUMED | UVS_NOTE_RING_BACK)

/* The program's end of an anchor gets this SO_SNDBUF (the kernel doubles it to 8 KiB):
 * small, so that a small filler makes it unwritable. */
#define UVS_ANCHOR_SNDBUF 4096
/* Filler size: the largest message the doubled buffer takes (8192 - 32, unix_dgram_sendmsg's
 * limit). Its memory then exceeds the buffer: poll() reports the fd not writable (that needs
 * only a quarter), and a blocking send on it sleeps until the daemon reads the filler back,
 * which is how a blocked sender waits for send space. */
#define UVS_FILLER_SIZE 8160u
/* tx_need for "never" (a listener: never writable, as in Linux). */
#define UVS_NEED_NEVER UINT32_MAX

/* A SEQPACKET message in a ring: this header, then len payload bytes. In rx (daemon to
 * program) a record is one whole message; in tx a message may be several records, the last
 * one carrying UVS_SEQ_EOM. */
struct uvs_rec {
	uint32_t len;
	uint32_t flags; /* UVS_SEQ_EOM | UVS_SEQ_EOR */
};
#define UVS_REC_SIZE 8u

struct uvs_shm {
	/* written by the daemon (layout at creation, addresses when they are known); the
	 * daemon never reads them back */
	uint32_t magic;
	uint32_t version;
	uint32_t size;
	uint32_t type;
	uint32_t rx_off, rx_size;
	uint32_t tx_off, tx_size;
	uint32_t local_cid, local_port, peer_cid, peer_port;

	/* published by the daemon */
	_Alignas(UVS_CACHE_LINE) uint32_t state; /* enum uvs_sock_state */
	int32_t err;		 /* pending socket error, negative errno (SO_ERROR) */
	uint32_t peer_shut;	 /* UVS_SHUTDOWN_* received from the peer */
	uint32_t peer_buf_alloc; /* the peer's receive buffer: SEQPACKET EMSGSIZE limit */

	/* The program sleeps: doorbell it. Only for news that make a receive return (data, end,
	 * state): doorbells are what makes the fd readable. (Send space is the filler's.) */
	_Alignas(UVS_CACHE_LINE) uint32_t app_wait;
	_Alignas(UVS_CACHE_LINE) uint32_t daemon_wait; /* UVS_DWAIT_* */
	_Alignas(UVS_CACHE_LINE) uint32_t fwd_cnt;     /* payload bytes the program consumed */

	/* The filler (see above): tx_filler is 1 from the program's decision to send one until
	 * the daemon has read it back; the daemon reads it once tx has tx_need free bytes (or
	 * the connection is no longer connected-and-sending). Written before the filler. */
	_Alignas(UVS_CACHE_LINE) uint32_t tx_filler;
	uint32_t tx_need;

	struct uvs_ring_idx rx; /* daemon produces, program consumes */
	struct uvs_ring_idx tx; /* program produces, daemon consumes */

	/* The program's own area: the daemon never reads or writes it. libuvsock keeps the
	 * process-shared locks of the socket there (several processes may share it after fork). */
	_Alignas(UVS_CACHE_LINE) uint8_t app_area[512];
};
static_assert(offsetof(struct uvs_shm, state) == 64, "published state on its own line");
static_assert(offsetof(struct uvs_shm, rx) % UVS_CACHE_LINE == 0, "ring indexes aligned");
static_assert(sizeof(struct uvs_shm) <= 4096, "segment header fits one page");
#define UVS_SHM_HDR_SIZE 4096u

/* Control requests. */
enum uvs_ctl_op {
	UVS_CTL_HELLO = 1, /* a: version -> a: daemon pid, b: local cid */
	UVS_CTL_SOCKET,	   /* a: type -> sock, fd: anchor */
	UVS_CTL_BIND,	   /* sock, a: cid, b: port -> b: port */
	UVS_CTL_LISTEN,	   /* sock, a: backlog */
	UVS_CTL_CONNECT,   /* sock, a: cid, b: port -> fd: segment (memfd) */
	UVS_CTL_ACCEPT,	   /* sock -> sock, a: peer cid, b: peer port, fds: anchor, segment */
	UVS_CTL_SHUTDOWN,  /* sock, a: UVS_SHUTDOWN_* */
	UVS_CTL_SETOPT,	   /* sock, a: level, b: name, val */
	UVS_CTL_GETOPT,	   /* sock, a: level, b: name -> val */
	UVS_CTL_GETNAME,   /* sock -> a: local cid, b: local port */
	UVS_CTL_CLOSE,	   /* sock: the program closed its fd; if that was the last reference
			    * (the anchor hung up), the daemon closes the socket before
			    * answering, so a following bind finds the port free */
	UVS_CTL_NOTIFY,	   /* sock, a: UVS_DWAIT_* | UVS_NOTE_RING_BACK; one-way: no answer */
	UVS_CTL_ATTACH,	   /* sock, fd: its anchor -> b: 1 if listening. Proves possession of
			    * the socket after fork: the daemon then accepts this client's
			    * requests for it too. */
	UVS_CTL_FORK,	   /* the program is about to fork: the child will map every
			    * segment the program maps now, so the daemon must not reuse
			    * them for the program's later sockets */
	UVS_CTL_OP_MAX,
};

struct uvs_ctl_req {
	uint32_t op;
	uint32_t seq;
	uint64_t sock;
	uint32_t a, b;
	uint64_t val;
};

struct uvs_ctl_resp {
	uint32_t op;
	uint32_t seq;
	int32_t rc; /* 0 or negative errno */
	uint32_t nfds;
	uint64_t sock;
	uint32_t a, b;
	uint64_t val;
};

/**
 * Check a control request received from a program: size and op. Pure.
 * @return 0 or -EINVAL.
 */
static inline int
uvs_ctl_req_check(const void *buf, size_t len)
{
	const struct uvs_ctl_req *r = buf;

	if (len != sizeof(*r))
		return -EINVAL;
	if (r->op < UVS_CTL_HELLO || r->op >= UVS_CTL_OP_MAX)
		return -EINVAL;
	return 0;
}

#endif /* UVS_IPC_H */
