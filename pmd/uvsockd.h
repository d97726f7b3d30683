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
#include "uvs_virtq.h"

/* Guests one daemon serves (each has its own vhost-user socket). */
#define UVSD_MAX_GUESTS 64
/* Descriptor chains handled per queue per pass before looking at other work. */
#define UVSD_BURST 64
/* Passes a guest's queues rest after something it sent was refused (a malformed chain, a
 * refused header or packet, an unusable rx buffer). A guest that sends nothing else gets one
 * chain looked at per this many passes, a small fraction of each pass (tests/hostile); a
 * driver's rare mistake costs it a few microseconds. */
#define UVSD_REFUSAL_REST 16
/* Empty polling passes before sleeping on eventfds: about 50-100 us of spinning here. */
#define UVSD_IDLE_SPINS 512
/* Idle passes between two sched_yield()s while spinning (unless --no-yield): often enough
 * that a process sharing the CPU gets it within a few microseconds, rarely enough that the
 * system call stays a small part of an idle pass's cost. */
#define UVSD_YIELD_EVERY 8u
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
};

enum uvsd_mail_kind {
	UVSD_MAIL_NEW,	   /* new_device: map the guest and serve it */
	UVSD_MAIL_DESTROY, /* destroy_device: stop, reset its connections */
	UVSD_MAIL_PAUSE,   /* a message will change rings or memory: stop touching them */
	UVSD_MAIL_RESUME,  /* that message is done: map again, keep serving */
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

/* telemetry.c */
int uvsd_telemetry_init(struct uvs_daemon *d);
/** On the polling thread: answer the pending telemetry request. */
void uvsd_telemetry_serve(struct uvs_daemon *d);
void uvsd_telemetry_stop(struct uvs_daemon *d);

/* host_sock.c: the host programs' side, on uvs_srv */
int uvsd_host_init(struct uvs_daemon *d);

#endif /* UVSOCKD_H */
