/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * uvs_srv: the control socket and the sockets of the programs that use it (libuvsock's
 * native API and the LD_PRELOAD shim), as the socket layer of one protocol engine.
 *
 * uvsockd serves host programs with it (the engine's peers are guests); uvsock-guest serves
 * programs "inside" its emulated guest (the one peer is the host). The owner provides an
 * epoll set, the transport's peers (uvs_srv_ops) and the polling loop; epoll events whose
 * tag has one of the UVS_SRV_EP_* kinds go to uvs_srv_event().
 */
#ifndef UVS_SRV_H
#define UVS_SRV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "uvs_conn.h"
#include "uvs_ipc.h"
#include "uvs_policy.h"
#include "uvs_sockbuf.h"

/* Sockets at once: bounds the memory a runaway program can make the server hold. */
#define UVS_SRV_MAX_SOCKS 65536u
/* Listen backlog cap, Linux's default net.core.somaxconn: bounds the connections one
 * listener can make the server hold before the program accepts them. */
#define UVS_SRV_SOMAXCONN 4096u
/* Largest receive buffer a socket may ask for: each socket's rings are sized from it. */
#define UVS_SRV_BUF_SIZE_LIMIT (64u * 1024u * 1024u)
/* Doorbells and control requests handled per event before serving others: bounds what one
 * busy program can take from the polling thread (epoll is level-triggered). */
#define UVS_SRV_DOORBELL_BATCH 64
#define UVS_SRV_CTL_BATCH 16
/* Processes that may operate one socket besides its creator (fork children that attached):
 * a prefork server's workers. Beyond this, UVS_CTL_ATTACH fails with ETOOMANYREFS. */
#define UVS_SRV_MAX_OWNERS 256
/* Sockets whose tx rings the polling loop looks at itself while busy, instead of asking their
 * programs for a NOTIFY (a system call per write, and an epoll event): the most recently
 * drained ones. Each costs a cache-line read per pass; beyond this, sockets are notified. */
#define UVS_SRV_WATCH_MAX 64u
/* Supplementary groups of a client kept for policy checks (group rules match these). */
#define UVS_SRV_MAX_GIDS 64
/* fds a control request may carry (UVS_CTL_ATTACH has one); more are closed unread. */
#define UVS_SRV_CTL_MAX_IN_FDS 2
/* Segments of closed sockets kept for their program's next socket (uvs_srv.c, "Segment
 * reuse"): a fresh segment's pages cost far more than the data copied into them (800 us
 * for 256 KiB on the PVM machines here, against 3 us for the copy). The cache holds at most
 * this many, at most UVS_SRV_SEG_CACHE_PER_HOLDER of one program (so one churning program
 * cannot evict everyone else's), each at most UVS_SRV_SEG_CACHE_MAX_SIZE bytes (a default
 * socket's is 516 KiB): at most 16 MiB of memory the daemon holds for speed. */
#define UVS_SRV_SEG_CACHE 16u
/* Users with a quota (a policy's sockets rules) holding host sockets at once whose count the
 * server keeps: a host with more such users holding vsock sockets at the same time is not
 * one this daemon was sized for (the next one's sockets are refused, ENOBUFS). */
#define UVS_SRV_QUOTA_USERS 256u
#define UVS_SRV_SEG_CACHE_PER_HOLDER 4u
#define UVS_SRV_SEG_CACHE_MAX_SIZE ((size_t)1 << 20)
/* seg_holder of a segment more than one program may map, or whose program's control
 * connection is gone: never reused. */
#define UVS_SRV_SEG_EXPOSED UINT64_MAX

/* epoll tags: the low 3 bits say what the rest is. Kinds 1-3 are the server's; the owner's
 * own kinds start at UVS_SRV_EP_OWNER. */
#define UVS_SRV_EP_CTL 1u
#define UVS_SRV_EP_CLIENT 2u
#define UVS_SRV_EP_ANCHOR 3u
#define UVS_SRV_EP_OWNER 4u
#define UVS_SRV_EP_KIND(tag) ((uint32_t)((tag)&7u))
#define UVS_SRV_EP_TAG(kind, val) (((uint64_t)(val) << 3) | (kind))
/* An anchor's tag carries the slot's generation, so an event still queued for a socket
 * that was freed (and its slot reused) in the same epoll batch is recognised as stale. */
#define UVS_SRV_ANCHOR_IDX_BITS 24
#define UVS_SRV_ANCHOR_KEY(s) (((uint64_t)(s)->gen << UVS_SRV_ANCHOR_IDX_BITS) | (s)->idx)
_Static_assert(UVS_SRV_MAX_SOCKS <= (1u << UVS_SRV_ANCHOR_IDX_BITS), "index fits the tag");

/* Requests refused, by reason. */
enum uvs_srv_drop {
	UVS_SRV_DROP_MALFORMED, /* wrong size or op: the client is disconnected */
	UVS_SRV_DROP_NOTIFY,	/* a notification for a socket the client may not operate */
	UVS_SRV_DROP_DENIED,	/* listen or connect refused by the policy (EACCES) */
	UVS_SRV_DROP_NOFD,	/* a program's control connection refused: out of fds */
	UVS_SRV_DROP_FULL,	/* a socket refused: socket table or fd budget full (ENOBUFS) */
	UVS_SRV_DROP_QUOTA,	/* a socket refused: its user holds its quota (ENOBUFS) */
	UVS_SRV_DROP_MAX,
};

/* What the server needs from its owner (the transport). */
struct uvs_srv_ops {
	/** The peer at cid, ready for connections, or NULL (connect then fails ENODEV). */
	struct uvs_peer *(*peer_by_cid)(void *ctx, uint32_t cid);
	/** The engine has packets for peer p: have the transport send them soon. */
	void (*kick)(void *ctx, struct uvs_peer *p);
	/** A warning for the operator (one line, no newline). */
	void (*log)(void *ctx, const char *msg);
};

/* A program's socket, as the server sees it. */
struct uvs_srv_sock {
	uint32_t idx, gen;     /* id = gen << 32 | idx */
	uint64_t owner;	       /* serial of the control client that created or accepted it */
	uint64_t *more_owners; /* clients that proved possession of the anchor (UVS_CTL_ATTACH) */
	uint32_t n_more_owners;
	uint16_t type;
	int anchor;	      /* server's end; -1 once the program closed every copy */
	uint64_t app_cookie;  /* the program's end (SO_COOKIE), to recognise it in ATTACH */
	bool filler_held;     /* the program's filler is left unread: its fd is not writable */
	bool anchor_rx_ended; /* our end is shut for writing: nothing more will arrive */
	struct uvs_conn *conn;
	uint32_t bound_cid;
	bool listening;
	uid_t uid;	   /* of the program that created or accepted it */
	bool charged;	   /* counted in its uid's srv->quota entry */
	int32_t watch_idx; /* position in srv->watch, or -1 */
	/* segment (connected sockets) */
	struct uvs_shm *shm;
	size_t shm_size;
	int memfd;
	/* serial of the one client that may map the segment, 0 if none does yet, or
	 * UVS_SRV_SEG_EXPOSED (see "Segment reuse" in uvs_srv.c) */
	uint64_t seg_holder;
	struct uvs_sockbuf sb; /* the segment's rings, server side */
	uint64_t buf_min, buf_max, buf_size;
};

struct uvs_srv_client {
	LIST_ENTRY(uvs_srv_client) link; /* in srv->clients */
	int fd;
	uint64_t serial;
	uid_t uid;
	pid_t pid;
	bool got_segment; /* some socket's segment went to it (seg_holder may name it) */
	/* with a policy: the process's gid and supplementary groups, read at accept */
	gid_t gids[UVS_SRV_MAX_GIDS];
	unsigned int ngids;
};

/* Host sockets one user holds, for the policy's quotas (sockets rules). */
struct uvs_srv_quota {
	uid_t uid;
	uint32_t nsocks; /* 0: a free entry */
};

/* A segment kept for reuse by the client that may map it (holder, or 0: by any). */
struct uvs_srv_seg {
	uint64_t holder;
	struct uvs_shm *shm; /* NULL: a free slot */
	size_t size;
	int memfd;
	uint64_t stamp; /* when it was kept: the oldest goes first */
};

struct uvs_srv {
	int epfd;
	int ctl_fd;
	/* An fd held open to be given up when the process is out of fds: the control socket's
	 * waiting connections are then accepted one at a time and refused (ENOBUFS), rather
	 * than left readable for level-triggered epoll to report on every pass. */
	int spare_fd;
	bool ctl_paused; /* no spare: the control socket is out of the epoll set meanwhile */
	char ctl_path[108];
	uint32_t local_cid;
	struct uvs_engine *eng;
	const struct uvs_srv_ops *ops;
	void *ctx;
	const struct uvs_policy *policy; /* NULL: every user may listen and connect anywhere */
	/* the control socket's mode and owner, applied before it appears (uvs_srv_listen) */
	mode_t ctl_mode;
	uid_t ctl_uid; /* (uid_t)-1: unchanged */
	gid_t ctl_gid; /* (gid_t)-1: unchanged */
	/* sockets, indexed by the low half of their id */
	struct uvs_srv_sock **socks;
	uint32_t nsocks_alloc;
	uint32_t nsocks_live;
	uint32_t nsocks_attached; /* sockets with more_owners: client drops scan only then */
	/* Fds the server may hold, 0 for no limit but the process's: its clients (one each),
	 * sockets (an anchor and a segment each) and kept segments, counted at most. The
	 * daemon sets it below RLIMIT_NOFILE, so that host programs cannot take the fds a
	 * guest needs to attach. */
	uint32_t fd_budget;
	uint32_t nclients;
	uint64_t next_serial;
	/* the programs' control connections; reached otherwise only through epoll's data */
	LIST_HEAD(, uvs_srv_client) clients;
	uint64_t drops[UVS_SRV_DROP_MAX];
	/* with a policy: the sockets each user with a quota holds (no entry: none) */
	struct uvs_srv_quota quota[UVS_SRV_QUOTA_USERS];
	/* drained sockets polled by the loop while it is busy (uvs_srv_poll, uvs_srv_arm) */
	struct uvs_srv_sock *watch[UVS_SRV_WATCH_MAX];
	uint32_t nwatch;
	uint64_t watch_wakes; /* data found by polling: NOTIFYs the programs did not send */
	struct uvs_srv_seg seg_cache[UVS_SRV_SEG_CACHE];
	uint64_t seg_stamp;
	uint64_t segs_created, segs_reused; /* segments made for connections, and of them reused */
};

/** CLOCK_MONOTONIC in ns, the engine's time base. */
uint64_t uvs_now_ns(void);

/** Set srv up on epoll set epfd with its own engine (local CID local_cid). 0 or -errno. */
int uvs_srv_init(struct uvs_srv *srv, int epfd, uint32_t local_cid, const struct uvs_srv_ops *ops,
		void *ctx);
/** Open the control socket at path: it appears only once it accepts, with srv->ctl_mode
 * (default 0666: open to every local user, as AF_VSOCK is) and owner srv->ctl_uid/ctl_gid. */
int uvs_srv_listen(struct uvs_srv *srv, const char *path);
/** Close the control socket and remove its name. */
void uvs_srv_unlisten(struct uvs_srv *srv);
/** Unmap the segments kept for reuse (uvs_srv_stop does it too). */
void uvs_srv_seg_flush(struct uvs_srv *srv);
/** Segments kept for reuse now: each holds an fd and a mapping of the server's process. */
unsigned int uvs_srv_seg_kept(const struct uvs_srv *srv);
/** Stop serving, as the owner exits: uvs_srv_unlisten, then close every program's control
 * connection and free its state. The sockets and the engine are left to the owner's exit. */
void uvs_srv_stop(struct uvs_srv *srv);
/** Handle an epoll event with one of the server's tags. @return false if not one of them. */
bool uvs_srv_event(struct uvs_srv *srv, uint64_t tag, uint32_t events);
/** While the loop is busy, each pass: look at the watched sockets' tx rings (data there is
 * sent without the program notifying). @return how many had data. */
unsigned int uvs_srv_poll(struct uvs_srv *srv);
/** Before the loop sleeps: ask the watched sockets' programs to notify again, and stop
 * watching. @return true if one had data meanwhile (then do not sleep). */
bool uvs_srv_arm(struct uvs_srv *srv);
/** The socket in slot idx, or NULL (for listings: sockets come and go between calls). */
const struct uvs_srv_sock *uvs_srv_sock_at(const struct uvs_srv *srv, uint32_t idx);

#endif /* UVS_SRV_H */
