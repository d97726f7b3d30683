/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The vsock protocol engine: connection table, per-state packet handlers, control replies
 * and data transmission decisions. Side-neutral: uvsockd uses it as the host end of many
 * guests; nothing in it assumes which end it is.
 *
 * The engine moves no payload itself: it hands received payload to the socket layer through
 * uvs_engine_ops.rx_data and asks it for bytes to send through tx_peek/tx_copy, so data
 * goes straight between guest buffers and the application's shared-memory rings.
 */
#ifndef UVS_CONN_H
#define UVS_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/uio.h>

#include "uvs_credit.h"
#include "uvs_proto.h"

/* Linux's default connect timeout (VSOCK_DEFAULT_CONNECT_TIMEOUT = 2 s). */
#define UVS_CONNECT_TIMEOUT_NS (2ull * 1000000000ull)
/* Linux's close timeout (VSOCK_CLOSE_TIMEOUT = 8 s): RST if the peer never answers. */
#define UVS_CLOSE_TIMEOUT_NS (8ull * 1000000000ull)
/* Connections one peer may hold open at once: bounds the memory a guest can pin. */
#define UVS_PEER_MAX_CONNS 4096u
/* REQUESTs of a peer refused (RST) after it sent data beyond a connection's credit. Each
 * overrun needs a fresh connection, and a fresh connection is the dearest thing a guest can
 * ask for (a socket for the program, a segment), so a guest overrunning at full rate took
 * three quarters of another guest's throughput; refusing a REQUEST costs about what any
 * invalid packet does. A well-behaved guest never pays it. */
#define UVS_PEER_PENALTY_REQUESTS 32u
/* The penalty doubles with each overrun, up to this (a guest that does nothing but overrun
 * gets one connection in about 4000 REQUESTs, each refusal as cheap as an invalid packet),
 * and halves with each of its connections that carried data and ended without one. */
#define UVS_PEER_PENALTY_MAX 4096u

/** What an overrun costs after one that cost prev (0: none yet): the base, then doubling up
 * to UVS_PEER_PENALTY_MAX. Pure. */
static inline uint32_t
uvs_peer_penalty_after(uint32_t prev)
{
	if (prev == 0)
		return UVS_PEER_PENALTY_REQUESTS;
	return prev >= UVS_PEER_PENALTY_MAX / 2 ? UVS_PEER_PENALTY_MAX : 2 * prev;
}
/* Replies owed for packets that have no connection (RSTs), queued per peer. When full,
 * further ones are dropped and counted: a flooding guest cannot grow our memory. */
#define UVS_PEER_ORPHAN_RST_MAX 256u
/* Connected-table buckets: power of two, sized for thousands of connections. */
#define UVS_ENGINE_HASH_BUCKETS 4096u
/* Ephemeral ports: Linux retries this many candidates before EADDRNOTAVAIL. */
#define UVS_EPHEMERAL_RETRIES 24u

enum uvs_state {
	UVS_ST_CLOSE = 0,   /* unconnected, maybe bound */
	UVS_ST_LISTEN,	    /* accepting REQUESTs */
	UVS_ST_SYN_SENT,    /* REQUEST sent, waiting for RESPONSE */
	UVS_ST_ESTABLISHED, /* data flows */
	UVS_ST_CLOSING,	    /* we sent SHUTDOWN(both), waiting for the peer's RST */
	UVS_ST_DONE,	    /* finished; the socket layer still holds it */
};

/* Control packets a connection owes its peer: one bit each, so replies never allocate. */
#define UVS_OWE_REQUEST (1u << 0)
#define UVS_OWE_RESPONSE (1u << 1)
#define UVS_OWE_SHUTDOWN (1u << 2)
#define UVS_OWE_RST (1u << 3)
#define UVS_OWE_CREDIT_UPDATE (1u << 4)

/* Why the engine refused or dropped something; counted per peer. */
enum uvs_drop {
	UVS_DROP_NO_CONN_RST,	 /* packet for no connection: answered with RST */
	UVS_DROP_RST_NO_CONN,	 /* RST for no connection: dropped */
	UVS_DROP_BAD_TYPE,	 /* unknown type or type mismatch: RST */
	UVS_DROP_ORPHAN_FULL,	 /* RST reply queue full: reply dropped */
	UVS_DROP_CREDIT_OVERRUN, /* RW beyond granted credit: connection reset */
	UVS_DROP_RX_NOBUFS,	 /* socket layer could not queue payload: reset */
	UVS_DROP_CONN_LIMIT,	 /* peer at UVS_PEER_MAX_CONNS: REQUEST reset */
	UVS_DROP_BACKLOG,	 /* listener backlog full: REQUEST reset */
	UVS_DROP_UNEXPECTED,	 /* op not valid in state: RST or ignored as Linux does */
	UVS_DROP_ZERO_RW,	 /* RW with len 0: ignored */
	UVS_DROP_NOMEM,		 /* no memory for a new connection: REQUEST reset */
	UVS_DROP_PENALTY,	 /* REQUEST after a credit overrun: reset */
	UVS_DROP_MAX,
	UVS_DROP_NONE = UVS_DROP_MAX, /* a reset that is not a drop: not counted */
};

/** A short name of a drop reason ("no_conn_rst", ...), for counter listings. */
const char *uvs_drop_str(enum uvs_drop d);
/** A short name of a state ("established", ...). */
const char *uvs_state_str(enum uvs_state st);

struct uvs_engine;
struct uvs_peer;

struct uvs_conn {
	LIST_ENTRY(uvs_conn) hash_link;	   /* connected table */
	LIST_ENTRY(uvs_conn) bound_link;   /* bound-port table */
	TAILQ_ENTRY(uvs_conn) txq_link;	   /* peer's queue of connections with work */
	TAILQ_ENTRY(uvs_conn) timer_link;  /* engine's connections with a deadline */
	TAILQ_ENTRY(uvs_conn) accept_link; /* listener's accept queue */
	LIST_ENTRY(uvs_conn) peer_link;	   /* every connection of c->peer */
	TAILQ_HEAD(, uvs_conn) accept_q;   /* listener: children not yet accepted */

	struct uvs_engine *eng;
	struct uvs_peer *peer;	   /* NULL while unconnected or listening */
	struct uvs_conn *listener; /* child not yet accepted: its listener */
	void *sock;		   /* the socket layer's object */

	uint32_t local_cid, local_port;
	uint32_t peer_cid, peer_port;
	uint16_t type;	    /* UVS_TYPE_* */
	uint8_t state;	    /* enum uvs_state */
	uint8_t owe;	    /* UVS_OWE_* */
	uint8_t local_shut; /* UVS_SHUTDOWN_* the socket layer asked for */
	uint8_t sent_shut;  /* UVS_SHUTDOWN_* already sent to the peer */
	uint8_t peer_shut;  /* UVS_SHUTDOWN_* received from the peer */
	bool in_hash, in_bound, on_txq, on_timer, closed_by_app;
	bool overran; /* reset for data beyond its credit (the peer's penalty) */
	int err;      /* negative errno for a failed connect or a vanished peer, 0 otherwise */

	uint32_t buf_size; /* receive buffer (SO_VM_SOCKETS_BUFFER_SIZE) */
	uint64_t connect_timeout_ns;
	uint64_t deadline_ns;
	uint32_t backlog, nqueued; /* listener */
	struct uvs_credit cr;
	/* counters (telemetry, listings) */
	uint64_t rx_bytes, tx_bytes; /* payload */
	uint64_t credit_stalls;	     /* times data waited for the peer's credit */
	bool stalled;		     /* waiting for credit now (counted once per stall) */
};

/* What the engine tells the socket layer. */
enum uvs_event {
	UVS_EV_CONNECTED,      /* SYN_SENT -> ESTABLISHED */
	UVS_EV_CONNECT_FAILED, /* c->err says why; c is back in UVS_ST_CLOSE */
	UVS_EV_ACCEPTABLE,     /* a child was queued on listener c */
	UVS_EV_PEER_SHUTDOWN,  /* c->peer_shut grew */
	UVS_EV_RESET,	       /* the peer reset an established connection; c->err is
				* -ECONNRESET if the peer went away (transport gone), 0 for its RST */
	UVS_EV_WRITABLE,       /* peer credit grew, or the peer's buf_alloc changed */
	UVS_EV_FREE,	       /* the engine is about to free c: drop every pointer to it */
};

struct uvs_engine_ops {
	/** Queue received payload (len bytes at byte offset off of iov) for the application.
	 * flags are the RW flags (SEQPACKET EOM/EOR). @return 0, or -ENOBUFS (the engine
	 * resets the connection). */
	int (*rx_data)(void *ctx, struct uvs_conn *c, const struct iovec *iov, unsigned int n,
			uint32_t off, uint32_t len, uint32_t flags);
	/** Bytes the application consumed so far (free-running): the fwd_cnt we advertise. */
	uint32_t (*rx_consumed)(void *ctx, struct uvs_conn *c);
	/** Bytes queued to send, at most max, stopping at a message end; *flags gets EOM/EOR
	 * when the returned bytes finish a SEQPACKET message. */
	uint32_t (*tx_peek)(void *ctx, struct uvs_conn *c, uint32_t max, uint32_t *flags);
	/** Copy len bytes of queued data into iov at offset off and consume them. */
	void (*tx_copy)(void *ctx, struct uvs_conn *c, const struct iovec *iov, unsigned int n,
			uint32_t off, uint32_t len);
	/** Something happened to c. */
	void (*event)(void *ctx, struct uvs_conn *c, enum uvs_event ev);
	/** Peer p has packets to send: the transport should fill its receive buffers. */
	void (*kick)(void *ctx, struct uvs_peer *p);
};

/* A remote end (a guest, seen from the daemon). The transport embeds or owns it. */
struct uvs_peer {
	uint32_t cid;
	bool seqpacket; /* VIRTIO_VSOCK_F_SEQPACKET negotiated */
	/* The device as a guest's driver sees it: packets may come from any CID (other guests
	 * through a switching host), as Linux's virtio transport accepts. Otherwise only from
	 * cid. */
	bool any_src;
	bool kicked;
	uint32_t nconns;
	uint32_t penalty;	     /* REQUESTs still to refuse (UVS_PEER_PENALTY_REQUESTS) */
	uint32_t penalty_next;	     /* what the next overrun costs: 0 (the base), or doubled */
	LIST_HEAD(, uvs_conn) conns; /* every connection with this peer */
	TAILQ_HEAD(, uvs_conn) txq;
	/* RSTs owed for packets without a connection, a ring of headers */
	uint32_t orphan_head, orphan_count;
	struct uvs_hdr orphan[UVS_PEER_ORPHAN_RST_MAX];
	uint64_t drops[UVS_DROP_MAX];
	uint64_t rx_pkts, tx_pkts, rx_bytes, tx_bytes;
	uint64_t credit_stalls; /* sum over its connections */
	void *transport;
};

/**
 * Create an engine for the local CID (2 on the host). Connections are keyed by
 * (peer CID, peer port, local port), so one engine serves many peers.
 * @return the engine, or NULL with errno set (ENOMEM).
 */
struct uvs_engine *uvs_engine_create(
		uint32_t local_cid, const struct uvs_engine_ops *ops, void *ctx);
/** Free the engine; every connection must have been freed. */
void uvs_engine_destroy(struct uvs_engine *eng);
uint32_t uvs_engine_local_cid(const struct uvs_engine *eng);
/** Whether the engine holds nothing: no connection, no bound port, no timer. For checks
 * and tests (it looks at every hash bucket), not for the data path. */
bool uvs_engine_idle(const struct uvs_engine *eng);

/** Initialise a peer the transport owns. */
void uvs_peer_init(struct uvs_peer *p, uint32_t cid, bool seqpacket, void *transport);
/** The peer went away (guest stopped): reset and free all its connections (the socket
 * layer gets UVS_EV_RESET or UVS_EV_CONNECT_FAILED, then UVS_EV_FREE). */
void uvs_peer_detach(struct uvs_engine *eng, struct uvs_peer *p);

/**
 * Feed one received packet. hdr must have passed uvs_pkt_check(); its payload is `hdr->len`
 * bytes at byte offset `off` of iov.
 */
void uvs_engine_rx(struct uvs_engine *eng, struct uvs_peer *p, const struct uvs_hdr *hdr,
		const struct iovec *iov, unsigned int n, uint32_t off);

/**
 * Build the next packet for peer p into a receive buffer of `room` bytes (header
 * included) described by iov. @return bytes written (header + payload), 0 if nothing is
 * pending (or room < header size).
 */
uint32_t uvs_engine_tx(struct uvs_engine *eng, struct uvs_peer *p, const struct iovec *iov,
		unsigned int n, uint32_t room);
/** Whether peer p has anything to send. When it has not, the next packet queued for p
 * calls ops->kick again (the transport may stop serving p until then). */
bool uvs_peer_tx_pending(struct uvs_peer *p);

/** Run timers (connect and close timeouts). now_ns is CLOCK_MONOTONIC. */
void uvs_engine_tick(struct uvs_engine *eng, uint64_t now_ns);

/* Socket-layer operations. All return 0 or a negative errno, as Linux's socket calls would. */

/** New unconnected connection object of UVS_TYPE_*. NULL with errno set on failure. */
struct uvs_conn *uvs_conn_create(struct uvs_engine *eng, uint16_t type, void *sock);
/** Bind to port (UVS_PORT_ANY picks an ephemeral one). -EINVAL if bound, -EADDRINUSE. */
int uvs_conn_bind(struct uvs_conn *c, uint32_t port);
/** Listen; -EINVAL if unbound or connected. */
int uvs_conn_listen(struct uvs_conn *c, uint32_t backlog);
/** Take the first queued child of listener c; -EAGAIN if none. */
int uvs_conn_accept(struct uvs_conn *c, struct uvs_conn **child);
/** Start connecting to (peer p, port) (auto-binds). Completion comes as an event. */
int uvs_conn_connect(struct uvs_conn *c, struct uvs_peer *p, uint32_t port, uint64_t now_ns);
/** Connect to (cid, port) through peer p's transport, which need not be cid itself: a guest's
 * driver hands every connection to the host, whatever its CID, and the host decides (uvsockd
 * drops guest-to-guest requests, so such a connect times out, as under Linux's vhost). */
int uvs_conn_connect_via(struct uvs_conn *c, struct uvs_peer *p, uint32_t cid, uint32_t port,
		uint64_t now_ns);
/** shutdown(how) with how = UVS_SHUTDOWN_RCV/SEND bits. */
int uvs_conn_shutdown(struct uvs_conn *c, uint8_t how);
/** The application closed: run Linux's close sequence; the engine frees c when done
 * (UVS_EV_FREE). After this call the socket layer must not use c except in callbacks. */
void uvs_conn_close(struct uvs_conn *c, uint64_t now_ns);
/** Reset an established or closing connection from the socket layer (its buffers are
 * corrupt): RST to the peer, UVS_EV_RESET to the socket layer if it still holds c. Never
 * frees c synchronously, so it may be called from inside the tx_peek callback. */
void uvs_conn_abort(struct uvs_conn *c);
/** The application queued data or consumed data: reconsider sending. */
void uvs_conn_tx_wake(struct uvs_conn *c);
/** Set the receive buffer size (sends a CREDIT_UPDATE when connected). */
void uvs_conn_set_buf_size(struct uvs_conn *c, uint32_t size);

#endif /* UVS_CONN_H */
