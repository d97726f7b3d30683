/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * uvsockd: the daemon's shared state. Everything mutable lives under struct uvs_daemon;
 * all of it is touched by the polling thread only, except the vhost mailbox (guarded by
 * its mutex), which DPDK's vhost thread uses to hand device events over.
 */
#ifndef UVSOCKD_H
#define UVSOCKD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>

#include "uvs_conn.h"
#include "uvs_ipc.h"
#include "uvs_pkt.h"
#include "uvs_sockbuf.h"
#include "uvs_virtq.h"

/* Guests one daemon serves (each has its own vhost-user socket). */
#define UVSD_MAX_GUESTS 64
/* Host sockets at once: bounds the daemon's memory against a runaway host program. */
#define UVSD_MAX_SOCKS 65536u
_Static_assert(UVSD_MAX_SOCKS <= (1u << 24), "socket index fits UVSD_ANCHOR_IDX_BITS");
/* Descriptor chains handled per queue per pass before looking at other work. */
#define UVSD_BURST 64
/* Listen backlog cap, Linux's default net.core.somaxconn: bounds the connections one
 * listener can make the daemon hold before the program accepts them. */
#define UVSD_SOMAXCONN 4096u
/* Largest receive buffer a host socket may ask for: each socket's rings are sized from it. */
#define UVSD_BUF_SIZE_LIMIT (64u * 1024u * 1024u)
/* Doorbells and control requests handled per event before serving others: bounds what one
 * busy program can take from the polling thread (epoll is level-triggered). */
#define UVSD_DOORBELL_BATCH 64
#define UVSD_CTL_BATCH 16
/* Processes that may operate one socket besides its creator (fork children that attached):
 * a prefork server's workers. Beyond this, UVS_CTL_ATTACH fails with ETOOMANYREFS. */
#define UVSD_MAX_OWNERS 256
/* fds a control request may carry (UVS_CTL_ATTACH has one); more are closed unread. */
#define UVSD_CTL_MAX_IN_FDS 2

/* Host-side requests refused, by reason (SIGUSR1 prints them). */
enum uvsd_ctl_drop {
	UVSD_CTL_DROP_MALFORMED, /* wrong size or op: the client is disconnected */
	UVSD_CTL_DROP_NOTIFY,	 /* a notification for a socket the client may not operate */
	UVSD_CTL_DROP_MAX,
};
/* Empty polling passes before sleeping on eventfds: about 50-100 us of spinning here. */
#define UVSD_IDLE_SPINS 512
/* Polling passes between two looks at epoll while not sleeping (a power of two). */
#define UVSD_EPOLL_EVERY 16u
/* Sleep bound while idle, so timers (connect 2 s, close 8 s) fire on time. */
#define UVSD_IDLE_SLEEP_MS 50

enum uvsd_guest_drop {
	UVSD_DROP_CHAIN = 0, /* malformed descriptor chain (see uvs_chain_err) */
	UVSD_DROP_PKT,	     /* header refused by uvs_pkt_check */
	UVSD_DROP_BROKEN,    /* ring indexes corrupt: queue stopped */
	UVSD_DROP_SMALL_RX,  /* rx buffer smaller than a packet header: returned unused */
	UVSD_DROP_GUEST_MAX,
};

struct uvsd_guest {
	uint32_t cid;
	char path[108];
	int vid;	    /* vhost device id, -1 when no guest is attached */
	bool running;	    /* rings mapped and served */
	bool paused;	    /* a vhost-user message is changing memory or rings right now */
	bool kicks_watched; /* the kick fds are in our epoll set */
	bool broken;	    /* rings corrupt: stop touching them until the next attach */
	bool rx_work;	    /* engine has packets for this guest */
	bool seqpacket;
	struct uvs_memtbl mem;
	struct uvs_virtq vq[2];
	int kickfd[2], callfd[2];
	struct uvs_peer peer;
	uint64_t chain_err[UVS_CHAIN_ERR_MAX];
	uint64_t pkt_err[UVS_PKT_ERR_MAX];
	uint64_t drops[UVSD_DROP_GUEST_MAX];
	uint64_t kicks, calls;
};

/* A host program's socket, as the daemon sees it. */
struct uvsd_sock {
	uint32_t idx, gen;     /* id = gen << 32 | idx */
	uint64_t owner;	       /* serial of the control client that created or accepted it */
	uint64_t *more_owners; /* clients that proved possession of the anchor (UVS_CTL_ATTACH) */
	uint32_t n_more_owners;
	uint16_t type;
	int anchor;	      /* daemon's end; -1 once the program closed every copy */
	uint64_t app_cookie;  /* the program's end (SO_COOKIE), to recognise it in ATTACH */
	bool filler_held;     /* the program's filler is left unread: its fd is not writable */
	bool anchor_rx_ended; /* our end is shut for writing: nothing more will arrive */
	struct uvs_conn *conn;
	uint32_t bound_cid;
	bool listening;
	/* segment (connected sockets) */
	struct uvs_shm *shm;
	size_t shm_size;
	int memfd;
	struct uvs_sockbuf sb; /* the segment's rings, device side */
	uint64_t buf_min, buf_max, buf_size;
};

struct uvsd_client {
	int fd;
	uint64_t serial;
	uid_t uid;
};

enum uvsd_mail_kind {
	UVSD_MAIL_NEW,	   /* new_device: map the guest and serve it */
	UVSD_MAIL_DESTROY, /* destroy_device: stop, reset its connections */
	UVSD_MAIL_PAUSE,   /* a message will change rings or memory: stop touching them */
	UVSD_MAIL_RESUME,  /* that message is done: map again, keep serving */
};

struct uvs_daemon {
	int epfd;
	int ctl_fd;
	char ctl_path[108];
	int mail_efd;
	struct uvs_engine *eng;
	struct uvsd_guest guests[UVSD_MAX_GUESTS];
	unsigned int nguests;
	bool hugepages;
	volatile int stop;
	volatile int dump; /* SIGUSR1: print counters */

	/* host sockets, indexed by the low half of their id */
	struct uvsd_sock **socks;
	uint32_t nsocks_alloc;
	uint32_t nsocks_live;
	uint64_t next_serial;
	uint64_t ctl_drops[UVSD_CTL_DROP_MAX];
	uint32_t nsocks_attached; /* sockets with more_owners: client drops scan only then */

	/* vhost thread -> polling thread */
	pthread_mutex_t mail_lock;
	pthread_cond_t mail_cond;
	int mail_pending; /* guest index + 1 with a pending event, or 0 */
	enum uvsd_mail_kind mail_kind;
	int mail_vid;
	uint32_t mail_req; /* the vhost-user request behind a PAUSE/RESUME */
	bool mail_done;
};

/* epoll tags: the low 3 bits say what the rest points at */
#define UVSD_EP_CTL 1u
#define UVSD_EP_CLIENT 2u
#define UVSD_EP_ANCHOR 3u
#define UVSD_EP_KICK 4u
#define UVSD_EP_MAIL 5u
#define UVSD_EP_TAG(kind, val) (((uint64_t)(val) << 3) | (kind))
/* An anchor's tag carries the slot's generation, so an event still queued for a socket
 * that was freed (and its slot reused) in the same epoll batch is recognised as stale. */
#define UVSD_ANCHOR_IDX_BITS 24
#define UVSD_ANCHOR_KEY(s) (((uint64_t)(s)->gen << UVSD_ANCHOR_IDX_BITS) | (s)->idx)

uint64_t uvsd_now_ns(void);

/* vhost_dev.c */
int uvsd_vhost_start(struct uvs_daemon *d);
void uvsd_vhost_stop(struct uvs_daemon *d);
void uvsd_vhost_mail(struct uvs_daemon *d);
/** Serve guest g's queues once. @return chains handled (0: idle). */
unsigned int uvsd_guest_poll(struct uvs_daemon *d, struct uvsd_guest *g);
/** Before sleeping: ask for kicks; @return true if work appeared meanwhile. */
bool uvsd_guest_arm(struct uvsd_guest *g);
void uvsd_guest_kicked(struct uvs_daemon *d, struct uvsd_guest *g, int q);
/** Print guest g's counters and queue state to f. */
void uvsd_guest_dump(const struct uvsd_guest *g, FILE *f);
struct uvsd_guest *uvsd_guest_by_cid(struct uvs_daemon *d, uint32_t cid);

/* host_sock.c */
extern const struct uvs_engine_ops uvsd_engine_ops;
int uvsd_ctl_start(struct uvs_daemon *d);
void uvsd_ctl_stop(struct uvs_daemon *d);
void uvsd_ctl_accept(struct uvs_daemon *d);
void uvsd_client_readable(struct uvs_daemon *d, struct uvsd_client *cl);
void uvsd_anchor_event(struct uvs_daemon *d, uint32_t idx, uint32_t gen, uint32_t events);

#endif /* UVSOCKD_H */
