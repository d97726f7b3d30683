/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Validation of vhost-user messages from a front-end (a VMM, possibly compromised) before
 * uvsockd hands them to DPDK's vhost library, which accepts some bad input on its own
 * (doc/ROBUSTNESS.md, "The vhost-user socket").
 *
 * Pure code: no DPDK, no system calls, no allocation. The caller reads a whole message,
 * says what each descriptor that came with it is (a regular file and its size, an eventfd,
 * something else), and asks uvs_vhumsg_check(), which keeps the little state that later
 * messages are judged against: the memory table and the rings' sizes and addresses.
 */
#ifndef UVS_VHUMSG_H
#define UVS_VHUMSG_H

#include <stdbool.h>
#include <stdint.h>

/* Header: request, flags, size (vhost-user spec, little-endian). */
#define UVS_VHUMSG_HDR_SIZE 12u
/* Largest payload of a request uvsockd serves: GET_CONFIG's 12 bytes and a config space of
 * up to 256 bytes (SET_MEM_TABLE with 8 regions is 264). DPDK's own limit is its payload
 * union, larger, for requests we do not serve. */
#define UVS_VHUMSG_MAX_PAYLOAD (12u + 256u)
/* Memory regions one SET_MEM_TABLE carries (VHOST_MEMORY_BASELINE_NREGIONS). */
#define UVS_VHUMSG_MAX_REGIONS 8u
/* Descriptors one message may carry: one per memory region at most. */
#define UVS_VHUMSG_MAX_FDS UVS_VHUMSG_MAX_REGIONS
/* Rings of a vhost-user-vsock device: rx and tx (QEMU keeps the event queue itself). */
#define UVS_VHUMSG_VRINGS 2u
/* GET_CONFIG's payload: offset, size, flags, then the config bytes; a device's config space
 * is at most 256 bytes (VHOST_USER_MAX_CONFIG_SIZE; vsock's own is 8: le64 guest_cid). */
#define UVS_VHUMSG_CONFIG_HDR 12u
#define UVS_VHUMSG_MAX_CONFIG 256u
/* Largest split ring the virtio spec allows (UVS_VIRTQ_MAX_SIZE). */
#define UVS_VHUMSG_MAX_RING 32768u

/* Why a message was refused; the daemon counts each, per guest. */
enum uvs_vhumsg_err {
	UVS_VHUMSG_OK = 0,
	UVS_VHUMSG_BAD_FLAGS,	     /* protocol version not 1, or a reply flag on a request */
	UVS_VHUMSG_UNSUPPORTED,	     /* a request of a feature uvsockd does not offer */
	UVS_VHUMSG_SHORT_PAYLOAD,    /* size smaller than what the request needs */
	UVS_VHUMSG_TOO_LONG,	     /* size larger than UVS_VHUMSG_MAX_PAYLOAD */
	UVS_VHUMSG_BAD_FDS,	     /* wrong number or kind of descriptors */
	UVS_VHUMSG_BAD_REGION,	     /* no region, too many, empty, or addresses that wrap */
	UVS_VHUMSG_REGION_PAST_FILE, /* mmap_offset + memory_size beyond the file's size */
	UVS_VHUMSG_BAD_VRING_INDEX,  /* not one of the device's two rings */
	UVS_VHUMSG_BAD_RING_SIZE,    /* 0, not a power of two, above 32768, or unset at KICK */
	UVS_VHUMSG_RING_MISALIGNED,  /* desc, avail or used not aligned as virtio requires */
	UVS_VHUMSG_RING_OUTSIDE_MEM, /* a ring of num entries not wholly inside one region */
	UVS_VHUMSG_STALLED,	     /* the transport: a message begun and not finished in time */
	UVS_VHUMSG_REPLIES_NOT_READ, /* the transport: the front-end left its replies unread */
	UVS_VHUMSG_ERR_MAX,
};

/* What the caller found behind a descriptor that came with a message (fstat, /proc). */
enum uvs_vhumsg_fd_kind {
	UVS_VHUMSG_FD_OTHER = 0,
	UVS_VHUMSG_FD_FILE,    /* a regular file (memfd, tmpfs, hugetlbfs): memory */
	UVS_VHUMSG_FD_EVENTFD, /* an eventfd: kick, call, err */
};

struct uvs_vhumsg_fd {
	enum uvs_vhumsg_fd_kind kind;
	uint64_t size; /* a file's size in bytes */
};

/* One whole message as read from the socket. */
struct uvs_vhumsg {
	uint32_t request;
	uint32_t flags;
	uint32_t size;		/* payload bytes */
	const uint8_t *payload; /* size bytes */
	unsigned int nfds;
	struct uvs_vhumsg_fd fds[UVS_VHUMSG_MAX_FDS];
};

/* A memory region in the front-end's terms. */
struct uvs_vhumsg_region {
	uint64_t gpa;	 /* guest physical address */
	uint64_t size;	 /* bytes */
	uint64_t uaddr;	 /* the front-end's virtual address: rings are given in these */
	uint64_t offset; /* mmap_offset in the file */
};

struct uvs_vhumsg_vring {
	uint32_t num;  /* SET_VRING_NUM, 0 until given */
	bool addr_set; /* SET_VRING_ADDR given (GET_VRING_BASE clears it, as DPDK does) */
	uint64_t desc; /* front-end virtual addresses */
	uint64_t avail;
	uint64_t used;
};

/* What a connection's earlier messages established; zero it for a new connection. */
struct uvs_vhumsg_state {
	uint32_t nregions; /* 0: no memory table yet */
	struct uvs_vhumsg_region regions[UVS_VHUMSG_MAX_REGIONS];
	struct uvs_vhumsg_vring vring[UVS_VHUMSG_VRINGS];
};

/** Printable name of a refusal reason (counter and log names). */
const char *uvs_vhumsg_err_str(enum uvs_vhumsg_err err);

/** Printable name of a request ("SET_MEM_TABLE", ...), "?" for unknown numbers. */
const char *uvs_vhumsg_req_str(uint32_t request);

/**
 * Check a header as soon as it is read, before waiting for its payload.
 * @return UVS_VHUMSG_OK, or why the message must be refused.
 */
enum uvs_vhumsg_err uvs_vhumsg_check_hdr(uint32_t request, uint32_t flags, uint32_t size);

/**
 * Check a whole message against the connection's state and, if it passes, update the state
 * as the back-end will.
 * @return UVS_VHUMSG_OK, or why the message must be refused (the state is then unchanged).
 */
enum uvs_vhumsg_err uvs_vhumsg_check(struct uvs_vhumsg_state *st, const struct uvs_vhumsg *m);

/**
 * Whether [addr, addr + len) lies wholly inside one region, addresses taken as uaddr
 * (the daemon uses it with its own mapping's addresses in uaddr). len 0 is never inside.
 */
bool uvs_vhumsg_span_inside(
		const struct uvs_vhumsg_region *r, uint32_t n, uint64_t addr, uint64_t len);

/**
 * Check one split ring of num entries at desc/avail/used against regions: alignment and
 * each part wholly inside one region (spec sizes: 16 * num, 6 + 2 * num, 6 + 8 * num).
 * @return UVS_VHUMSG_OK, UVS_VHUMSG_RING_MISALIGNED or UVS_VHUMSG_RING_OUTSIDE_MEM.
 */
enum uvs_vhumsg_err uvs_vhumsg_ring_check(const struct uvs_vhumsg_region *r, uint32_t n,
		uint32_t num, uint64_t desc, uint64_t avail, uint64_t used);

/**
 * Answer GET_CONFIG for a vsock device of CID guest_cid, in place. payload holds the
 * request's size payload bytes in a buffer of room bytes; the reply takes the config length
 * the front-end asked for, that part of the config space (le64 guest_cid, zeros beyond) from
 * the offset it asked for, and its flags are left as they came.
 * @return the reply's payload size (12 + the length asked), or -EINVAL if the request is
 * shorter than 12 bytes, longer than 12 + 256 or than room, asks for bytes past 256, or the
 * reply does not fit in room (nothing is then written).
 */
int uvs_vhumsg_config_reply(uint8_t *payload, uint32_t size, uint32_t room, uint64_t guest_cid);

#endif /* UVS_VHUMSG_H */
