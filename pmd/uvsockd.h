/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * uvsockd: the daemon's shared state. Everything mutable lives under struct uvs_daemon;
 * all of it is touched by the polling thread only, except the vhost mailbox (guarded by
 * its mutex), which DPDK's vhost thread uses to hand device events over.
 */
#ifndef UVSOCKD_H
#define UVSOCKD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>

#include "uvs_conn.h"
#include "uvs_ipc.h"
#include "uvs_pkt.h"
#include "uvs_sockbuf.h"
#include "uvs_srv.h"
#include "uvs_vhumsg.h"
#include "uvs_virtq.h"

/* Guests one daemon serves (each has its own vhost-user socket). */
#define UVSD_MAX_GUESTS 64
/* Descriptor chains handled per queue per pass before looking at other work. */
#define UVSD_BURST 64
/* Of those, packets without payload (REQUEST, RESPONSE, SHUTDOWN, RST, credit updates and
 * requests, empty RWs) a guest's tx burst takes: a connection's life needs a handful, and
 * a guest sending nothing else at full rate, valid as each packet is (CREDIT_REQUESTs,
 * tests/hostile's flood-credit-request), had 64 a pass and took a fifth or more of another
 * guest's throughput. Data packets still fill the burst. */
#define UVSD_CTRL_BURST 8
/* Passes a guest's queues rest after something it sent was refused (a malformed chain, a
 * refused header or packet, an unusable rx buffer). A guest that sends nothing else gets one
 * chain looked at per this many passes, a small fraction of each pass (tests/hostile); a
 * driver's rare mistake costs it a few microseconds. */
#define UVSD_REFUSAL_REST 16
/* Empty polling passes before sleeping on eventfds: about 50-100 us of spinning here. */
#define UVSD_IDLE_SPINS 512
/* Idle passes between two sched_yield()s while spinning (unless --no-yield): often enough
 * that a process sharing the CPU gets it within a few microseconds, rarely enough that the
 * system call stays a small part of an idle pass's cost. Passes that only moved packets
 * without payload (control packets, a guest's flood of CREDIT_REQUESTs) yield as often:
 * counted as work, they kept the loop from ever yielding, and the processes it shares a CPU
 * with (the programs and guests whose data waits) lost a quarter of their throughput. */
#define UVSD_YIELD_EVERY 8u
/* Polling passes between two looks at epoll while not sleeping (a power of two). */
#define UVSD_EPOLL_EVERY 16u
/* Fds kept out of the host sockets' reach (the server's fd_budget), so that host programs
 * holding all the sockets they may cannot stop a guest from attaching. Per guest: its
 * vhost-user connection and the relay's end to DPDK, up to 8 memory regions (received by the
 * relay, then again by DPDK: twice while in flight), the call and kick eventfds of 3 queues,
 * the log and inflight fds. For the daemon: telemetry connections, a reply's fds in flight,
 * DPDK's own needs. Measured here: 25 fds open at start, a userspace guest adds 8. */
#define UVSD_FD_PER_GUEST 32u
#define UVSD_FD_SLACK 64u
/* Programs' control connections the fd limit the daemon asks for leaves room for, on top of
 * UVSD_MAX_SOCKS sockets (fds_raise() in main.c). */
#define UVSD_FD_CLIENTS 4096u
/* Host sockets the daemon serves whatever its RLIMIT_NOFILE (a tiny limit leaves no room
 * for the reserve above: the daemon still works, with fewer guarantees). */
#define UVSD_FD_BUDGET_MIN 32u
/* Sleep bound while idle, so timers (connect 2 s, close 8 s) fire on time. */
#define UVSD_IDLE_SLEEP_MS 50

enum uvsd_guest_drop {
	UVSD_DROP_CHAIN = 0, /* malformed descriptor chain (see uvs_chain_err) */
	UVSD_DROP_PKT,	     /* header refused by uvs_pkt_check */
	UVSD_DROP_BROKEN,    /* ring indexes corrupt: queue stopped */
	UVSD_DROP_SMALL_RX,  /* rx buffer smaller than a packet header: returned unused */
	UVSD_DROP_GUEST_MAX,
};

/* A front-end's connection to a guest's vhost-user socket, relayed to DPDK (vhu_relay.c). */
struct uvsd_vhu_conn {
	int fd;			     /* the front-end's connection, -1 when there is none */
	int bfd;		     /* ours to DPDK's private socket for this guest */
	uint32_t got;		     /* bytes of the current message read so far */
	uint64_t started_ns;	     /* when its first byte came; 0 between messages */
	int fds[UVS_VHUMSG_MAX_FDS]; /* descriptors that came with it */
	unsigned int nfds;
	bool too_many_fds;
	bool pending; /* the message is whole and checked, waiting for DPDK's socket */
	struct uvs_vhumsg_state st; /* what the connection's messages established */
	uint8_t buf[UVS_VHUMSG_HDR_SIZE + UVS_VHUMSG_MAX_PAYLOAD];
};

/* Longest --vm group name (guest-to-guest traffic, pmd/g2g.c). */
#define UVSD_GROUP_MAX 32

struct uvsd_guest {
	uint32_t cid;
	char group[UVSD_GROUP_MAX]; /* --vm ...,group=NAME; empty: no guest-to-guest traffic */
	char path[108];	 /* the vhost-user socket the VMM connects to (ours: vhu_relay.c) */
	char bpath[108]; /* DPDK's private socket for it */
	int vhu_lfd;	 /* listening on path */
	struct uvsd_vhu_conn vhu;
	uint64_t vhu_refused[UVS_VHUMSG_ERR_MAX]; /* vhost-user messages refused, by reason */
	uint64_t vhu_conns;			  /* connections accepted on path */
	uint64_t vhu_replaced;			  /* of which replaced a previous one */
	uint64_t vhu_throttled;	 /* times a connection waited for UVSD_VHU_ACCEPT_PER_S */
	uint64_t vhu_nofd;	 /* times accept() found the process out of fds (waits a tick) */
	unsigned int vhu_tokens; /* connections path may take now (UVSD_VHU_ACCEPT_BURST) */
	uint64_t vhu_refill_ns;	 /* when vhu_tokens last grew */
	bool vhu_listen_off;	 /* no tokens: path is out of the epoll set until one comes */
	uint64_t vhu_msgs;	 /* messages passed on to DPDK */
	int vid;		 /* vhost device id, -1 when no guest is attached */
	int newest_vid;	    /* DPDK's device of the relay's newest connection (DPDK's thread) */
	bool running;	    /* rings mapped and served */
	bool paused;	    /* a vhost-user message is changing memory or rings right now */
	bool kicks_watched; /* the kick fds are in our epoll set */
	bool broken;	    /* rings corrupt: stop touching them until the next attach */
	bool rx_work;	    /* engine has packets for this guest */
	bool rx_call_due;   /* another guest's packets were put in its rx ring (g2g.c) */
	unsigned int rest;  /* passes to skip: it sent something refused (UVSD_REFUSAL_REST) */
	bool seqpacket;
	struct uvs_memtbl mem;
	struct uvs_virtq vq[2];
	int kickfd[2], callfd[2];
	struct uvs_peer peer;
	uint64_t chain_err[UVS_CHAIN_ERR_MAX];
	uint64_t pkt_err[UVS_PKT_ERR_MAX];
	uint64_t drops[UVSD_DROP_GUEST_MAX];
	uint64_t kicks, calls;
	/* guest-to-guest (g2g.c): a packet to another guest that waits for its rx buffers */
	struct uvsd_guest *g2g_wait; /* the guest waited for, or NULL */
	uint32_t g2g_off;	     /* payload bytes of the waiting packet already forwarded */
	uint16_t g2g_head;	     /* its chain */
	struct uvs_hdr g2g_hdr;	     /* and its header, to check it comes back the same */
	uint64_t g2g_tx_pkts, g2g_tx_bytes; /* forwarded from this guest */
	uint64_t g2g_rx_pkts;		    /* pieces delivered into its rx buffers */
	uint64_t g2g_waits;		    /* times a packet waited for the other's buffers */
	uint64_t g2g_rewritten;		    /* a waiting packet changed under us: rest dropped */
};

enum uvsd_mail_kind {
	UVSD_MAIL_NEW,	   /* new_device: map the guest and serve it */
	UVSD_MAIL_DESTROY, /* destroy_device: stop, reset its connections */
	UVSD_MAIL_PAUSE,   /* a message will change rings or memory: stop touching them */
	UVSD_MAIL_RESUME,  /* that message is done: map again, keep serving */
	UVSD_MAIL_KIND_MAX,
};

struct uvs_daemon {
	int epfd;
	int mail_efd;
	char ctl_path[108]; /* --control */
	struct uvs_srv srv; /* the control socket and host programs' sockets; owns the engine */
	struct uvsd_guest guests[UVSD_MAX_GUESTS];
	unsigned int nguests;
	bool hugepages;
	bool no_yield; /* --no-yield: spin on a dedicated core */
	/* --policy, --control-mode, --control-owner */
	struct uvs_policy policy;
	bool has_policy;
	mode_t ctl_mode;
	uid_t ctl_uid;
	gid_t ctl_gid;
	/* Set by signal handlers, read by the polling, vhost and telemetry threads: atomics
	 * (lock-free, so a handler may store them), not volatile, which orders nothing between
	 * threads (ThreadSanitizer reported stop's store against the vhost thread's read). */
	atomic_int stop;
	atomic_int dump; /* SIGUSR1: print counters */

	/* vhost thread -> polling thread */
	pthread_mutex_t mail_lock;
	pthread_cond_t mail_cond;
	int mail_pending; /* guest index + 1 with a pending event, or 0 */
	enum uvsd_mail_kind mail_kind;
	int mail_vid;
	uint32_t mail_req; /* the vhost-user request behind a PAUSE/RESUME */
	bool mail_done;

	/* DPDK telemetry thread -> polling thread (telemetry.c) */
	pthread_mutex_t tel_lock;
	pthread_cond_t tel_cond;
	int tel_efd;
	struct tel_req *tel_req; /* the request being answered, or NULL */
};

/* epoll tags of the daemon's own (uvs_srv has kinds below UVS_SRV_EP_OWNER) */
#define UVSD_EP_KICK (UVS_SRV_EP_OWNER + 0)
#define UVSD_EP_MAIL (UVS_SRV_EP_OWNER + 1)
#define UVSD_EP_TEL (UVS_SRV_EP_OWNER + 2)
#define UVSD_EP_VHU (UVS_SRV_EP_OWNER + 3) /* the last kind a 3-bit tag has */
/* vhost_dev.c */
int uvsd_vhost_start(struct uvs_daemon *d);
void uvsd_vhost_stop(struct uvs_daemon *d);
void uvsd_vhost_mail(struct uvs_daemon *d);
/** Serve guest g's queues once; *light grows by the packets without payload among them.
 * @return chains and packets handled (0: idle). */
unsigned int uvsd_guest_poll(struct uvs_daemon *d, struct uvsd_guest *g, unsigned int *light);
/** Before sleeping: ask for kicks; @return true if work appeared meanwhile. */
bool uvsd_guest_arm(struct uvsd_guest *g);
void uvsd_guest_kicked(struct uvs_daemon *d, struct uvsd_guest *g, int q);
/** Print guest g's counters and queue state to f. */
void uvsd_guest_dump(const struct uvsd_guest *g, FILE *f);
struct uvsd_guest *uvsd_guest_by_cid(struct uvs_daemon *d, uint32_t cid);
/** For g2g.c: take a receive buffer of g (1, 0 if none, -EBADMSG if refused and counted),
 * return one unused because it is too small, give one back filled with len bytes. */
int uvsd_guest_pop_rx(struct uvsd_guest *g, struct uvs_chain *ch);
void uvsd_guest_small_rx(struct uvsd_guest *g, const struct uvs_chain *ch);
void uvsd_guest_push_rx(struct uvsd_guest *g, const struct uvs_chain *ch, uint32_t len);

/* vhu_relay.c: the guests' vhost-user sockets, relayed to DPDK */
/** Listen on guest gi's socket (DPDK serves its bpath already). @return 0 or -errno */
int uvsd_vhu_listen(struct uvs_daemon *d, unsigned int gi);
/** An epoll event of tag kind UVSD_EP_VHU, val its value. */
void uvsd_vhu_event(struct uvs_daemon *d, uint64_t val);
/** Drop connections whose current message is late. */
void uvsd_vhu_tick(struct uvs_daemon *d, uint64_t now);
/** Close every relayed connection and listening socket. */
void uvsd_vhu_stop(struct uvs_daemon *d);

/* telemetry.c */
int uvsd_telemetry_init(struct uvs_daemon *d);
/** On the polling thread: answer the pending telemetry request. */
void uvsd_telemetry_serve(struct uvs_daemon *d);
void uvsd_telemetry_stop(struct uvs_daemon *d);

/* host_sock.c: the host programs' side, on uvs_srv */
int uvsd_host_init(struct uvs_daemon *d);

#endif /* UVSOCKD_H */
