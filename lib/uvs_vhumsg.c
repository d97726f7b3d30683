/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Implementation notes
 *
 * One table (an X-macro, one line per request) says what uvsockd serves: the requests a
 * vhost-user-vsock front-end sends with the features uvsockd offers (VERSION_1,
 * PROTOCOL_FEATURES, SEQPACKET; protocol features CONFIG and REPLY_ACK), the payload bytes
 * each needs, and which descriptors come with it. Everything else (logging, IOTLB, inflight,
 * the back-end channel, SET_CONFIG, status, memory slots) is a feature we never offered,
 * refused as unsupported rather than left to DPDK's handlers.
 *
 * What DPDK 22.11 lets through on its own, and where it is caught here:
 * - SET_MEM_TABLE maps mmap_offset + memory_size of each file without looking at the file's
 *   size; the first touch past its end would SIGBUS the daemon (check_mem_table).
 * - SET_VRING_NUM stores the size before refusing a non-power of two, and an error answered
 *   through REPLY_ACK leaves it in place (check_num: refused before DPDK sees it).
 * - Ring addresses are translated once, with the size of that moment: a later, larger
 *   SET_VRING_NUM, or a new memory table, is not checked against them (check_rings after
 *   every message that changes either, and at KICK).
 * - Payloads shorter than the request's structure are read from whatever the buffer held
 *   (min_payload).
 *
 * The state follows what the back-end does with an accepted message. Should DPDK refuse a
 * message that passed here (an mmap failing), the state is ahead of it; every later check is
 * then against a table that DPDK does not have, which refuses nothing DPDK would serve
 * wrongly: DPDK refuses ring addresses without a memory table itself.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "uvs_vhumsg.h"

/* Header flags (vhost-user spec). */
#define VHU_VERSION_MASK 0x3u
#define VHU_VERSION 0x1u
#define VHU_FLAG_REPLY 0x4u
/* SET_VRING_KICK/CALL/ERR payload: ring index in the low byte; no descriptor if bit 8. */
#define VHU_VRING_IDX_MASK 0xffu
#define VHU_VRING_NOFD 0x100u
/* SET_MEM_TABLE: nregions, padding, then 32 bytes a region. */
#define VHU_MEM_HDR 8u
#define VHU_MEM_REGION 32u
/* Split-ring alignment and part sizes (virtio 1.1, 2.6). */
#define VRING_DESC_ALIGN 16u
#define VRING_AVAIL_ALIGN 2u
#define VRING_USED_ALIGN 4u
#define VRING_DESC_SIZE 16u
#define VRING_AVAIL_ELEM 2u
#define VRING_USED_ELEM 8u
#define VRING_FLAGS_IDX_EVENT 6u /* flags, idx and the event index around each ring */

/* How a request's descriptors are counted. */
enum fds_rule {
	FDS_NONE,    /* none */
	FDS_REGIONS, /* one regular file per memory region */
	FDS_EVENTFD, /* one eventfd, unless the payload's NOFD bit is set */
};

/* X(name, number, minimum payload, descriptors); the spec's numbering. */
#define VHUMSG_REQUESTS(X)                                                                         \
	X(GET_FEATURES, 1, 0, FDS_NONE)                                                            \
	X(SET_FEATURES, 2, 8, FDS_NONE)                                                            \
	X(SET_OWNER, 3, 0, FDS_NONE)                                                               \
	X(RESET_OWNER, 4, 0, FDS_NONE)                                                             \
	X(SET_MEM_TABLE, 5, VHU_MEM_HDR, FDS_REGIONS)                                              \
	X(SET_VRING_NUM, 8, 8, FDS_NONE)                                                           \
	X(SET_VRING_ADDR, 9, 40, FDS_NONE)                                                         \
	X(SET_VRING_BASE, 10, 8, FDS_NONE)                                                         \
	X(GET_VRING_BASE, 11, 8, FDS_NONE)                                                         \
	X(SET_VRING_KICK, 12, 8, FDS_EVENTFD)                                                      \
	X(SET_VRING_CALL, 13, 8, FDS_EVENTFD)                                                      \
	X(SET_VRING_ERR, 14, 8, FDS_EVENTFD)                                                       \
	X(GET_PROTOCOL_FEATURES, 15, 0, FDS_NONE)                                                  \
	X(SET_PROTOCOL_FEATURES, 16, 8, FDS_NONE)                                                  \
	X(GET_QUEUE_NUM, 17, 0, FDS_NONE)                                                          \
	X(SET_VRING_ENABLE, 18, 8, FDS_NONE)                                                       \
	X(GET_CONFIG, 24, 12, FDS_NONE)

enum vhu_req {
#define X(name, num, min, fds) REQ_##name = num,
	VHUMSG_REQUESTS(X)
#undef X
};

struct req_info {
	const char *name;
	uint32_t min_payload;
	enum fds_rule fds;
};

static const struct req_info *
req_info(uint32_t request)
{
	static const struct req_info table[] = {
#define X(name, num, min, fds) [num] = { #name, min, fds },
		VHUMSG_REQUESTS(X)
#undef X
	};

	if (request >= sizeof(table) / sizeof(table[0]) || table[request].name == NULL)
		return NULL;
	return &table[request];
}

const char *
uvs_vhumsg_err_str(enum uvs_vhumsg_err err)
{
	static const char *const names[UVS_VHUMSG_ERR_MAX] = {
		[UVS_VHUMSG_OK] = "ok",
		[UVS_VHUMSG_BAD_FLAGS] = "bad_flags",
		[UVS_VHUMSG_UNSUPPORTED] = "unsupported_request",
		[UVS_VHUMSG_SHORT_PAYLOAD] = "short_payload",
		[UVS_VHUMSG_TOO_LONG] = "payload_too_long",
		[UVS_VHUMSG_BAD_FDS] = "bad_fds",
		[UVS_VHUMSG_BAD_REGION] = "bad_region",
		[UVS_VHUMSG_REGION_PAST_FILE] = "region_past_file",
		[UVS_VHUMSG_BAD_VRING_INDEX] = "bad_vring_index",
		[UVS_VHUMSG_BAD_RING_SIZE] = "bad_ring_size",
		[UVS_VHUMSG_RING_MISALIGNED] = "ring_misaligned",
		[UVS_VHUMSG_RING_OUTSIDE_MEM] = "ring_outside_memory",
		[UVS_VHUMSG_STALLED] = "stalled",
		[UVS_VHUMSG_REPLIES_NOT_READ] = "replies_not_read",
	};

	if ((unsigned int)err >= UVS_VHUMSG_ERR_MAX)
		return "?";
	return names[err];
}

const char *
uvs_vhumsg_req_str(uint32_t request)
{
	const struct req_info *ri = req_info(request);

	return ri != NULL ? ri->name : "?";
}

static uint32_t
get_u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t
get_u64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

enum uvs_vhumsg_err
uvs_vhumsg_check_hdr(uint32_t request, uint32_t flags, uint32_t size)
{
	const struct req_info *ri;

	if ((flags & VHU_VERSION_MASK) != VHU_VERSION || (flags & VHU_FLAG_REPLY) != 0)
		return UVS_VHUMSG_BAD_FLAGS;
	ri = req_info(request);
	if (ri == NULL)
		return UVS_VHUMSG_UNSUPPORTED;
	if (size > UVS_VHUMSG_MAX_PAYLOAD)
		return UVS_VHUMSG_TOO_LONG;
	if (size < ri->min_payload)
		return UVS_VHUMSG_SHORT_PAYLOAD;
	return UVS_VHUMSG_OK;
}

bool
uvs_vhumsg_span_inside(const struct uvs_vhumsg_region *r, uint32_t n, uint64_t addr, uint64_t len)
{
	if (len == 0 || addr + len < addr)
		return false;
	for (uint32_t i = 0; i < n; i++)
		if (addr >= r[i].uaddr && addr - r[i].uaddr < r[i].size &&
				len <= r[i].size - (addr - r[i].uaddr))
			return true;
	return false;
}

enum uvs_vhumsg_err
uvs_vhumsg_ring_check(const struct uvs_vhumsg_region *r, uint32_t n, uint32_t num, uint64_t desc,
		uint64_t avail, uint64_t used)
{
	uint64_t qn = num;

	if (desc % VRING_DESC_ALIGN != 0 || avail % VRING_AVAIL_ALIGN != 0 ||
			used % VRING_USED_ALIGN != 0)
		return UVS_VHUMSG_RING_MISALIGNED;
	if (!uvs_vhumsg_span_inside(r, n, desc, VRING_DESC_SIZE * qn) ||
			!uvs_vhumsg_span_inside(r, n, avail,
					VRING_FLAGS_IDX_EVENT + VRING_AVAIL_ELEM * qn) ||
			!uvs_vhumsg_span_inside(
					r, n, used, VRING_FLAGS_IDX_EVENT + VRING_USED_ELEM * qn))
		return UVS_VHUMSG_RING_OUTSIDE_MEM;
	return UVS_VHUMSG_OK;
}

/* Every ring that has addresses and a size, against the memory table (when there is one). */
static enum uvs_vhumsg_err
check_rings(const struct uvs_vhumsg_state *st)
{
	if (st->nregions == 0)
		return UVS_VHUMSG_OK; /* DPDK refuses ring addresses without memory itself */
	for (unsigned int q = 0; q < UVS_VHUMSG_VRINGS; q++) {
		const struct uvs_vhumsg_vring *v = &st->vring[q];
		enum uvs_vhumsg_err e;

		if (!v->addr_set || v->num == 0)
			continue;
		e = uvs_vhumsg_ring_check(
				st->regions, st->nregions, v->num, v->desc, v->avail, v->used);
		if (e != UVS_VHUMSG_OK)
			return e;
	}
	return UVS_VHUMSG_OK;
}

static enum uvs_vhumsg_err
check_fds(const struct uvs_vhumsg *m, const struct req_info *ri, uint32_t nregions)
{
	unsigned int want = 0;
	enum uvs_vhumsg_fd_kind kind = UVS_VHUMSG_FD_OTHER;

	switch (ri->fds) {
	case FDS_NONE:
		break;
	case FDS_REGIONS:
		want = nregions;
		kind = UVS_VHUMSG_FD_FILE;
		break;
	case FDS_EVENTFD:
		want = (get_u64(m->payload) & VHU_VRING_NOFD) != 0 ? 0 : 1;
		kind = UVS_VHUMSG_FD_EVENTFD;
		break;
	}
	if (m->nfds != want)
		return UVS_VHUMSG_BAD_FDS;
	for (unsigned int i = 0; i < want; i++)
		if (m->fds[i].kind != kind)
			return UVS_VHUMSG_BAD_FDS;
	return UVS_VHUMSG_OK;
}

static enum uvs_vhumsg_err
check_mem_table(struct uvs_vhumsg_state *st, const struct uvs_vhumsg *m)
{
	struct uvs_vhumsg_state next = *st;
	uint32_t n = get_u32(m->payload);
	enum uvs_vhumsg_err e;

	if (n == 0 || n > UVS_VHUMSG_MAX_REGIONS)
		return UVS_VHUMSG_BAD_REGION;
	if (m->size < VHU_MEM_HDR + n * VHU_MEM_REGION)
		return UVS_VHUMSG_SHORT_PAYLOAD;
	e = check_fds(m, req_info(REQ_SET_MEM_TABLE), n);
	if (e != UVS_VHUMSG_OK)
		return e;
	next.nregions = n;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *p = m->payload + VHU_MEM_HDR + i * VHU_MEM_REGION;
		struct uvs_vhumsg_region *r = &next.regions[i];

		r->gpa = get_u64(p);
		r->size = get_u64(p + 8);
		r->uaddr = get_u64(p + 16);
		r->offset = get_u64(p + 24);
		if (r->size == 0 || r->gpa + r->size < r->gpa || r->uaddr + r->size < r->uaddr ||
				r->offset + r->size < r->offset)
			return UVS_VHUMSG_BAD_REGION;
		if (r->offset + r->size > m->fds[i].size)
			return UVS_VHUMSG_REGION_PAST_FILE;
	}
	e = check_rings(&next);
	if (e != UVS_VHUMSG_OK)
		return e;
	*st = next;
	return UVS_VHUMSG_OK;
}

/* The ring index of a request that names one, or UVS_VHUMSG_VRINGS if it names none. */
static uint32_t
vring_index(const struct uvs_vhumsg *m)
{
	switch (m->request) {
	case REQ_SET_VRING_NUM:
	case REQ_SET_VRING_ADDR:
	case REQ_SET_VRING_BASE:
	case REQ_GET_VRING_BASE:
	case REQ_SET_VRING_ENABLE:
		return get_u32(m->payload); /* state.index, addr.index: the first field */
	case REQ_SET_VRING_KICK:
	case REQ_SET_VRING_CALL:
	case REQ_SET_VRING_ERR:
		/* DPDK masks the index to the low byte: so do we, then bound it */
		return (uint32_t)(get_u64(m->payload) & VHU_VRING_IDX_MASK);
	default:
		return UVS_VHUMSG_VRINGS;
	}
}

enum uvs_vhumsg_err
uvs_vhumsg_check(struct uvs_vhumsg_state *st, const struct uvs_vhumsg *m)
{
	const struct req_info *ri;
	struct uvs_vhumsg_state next;
	enum uvs_vhumsg_err e;
	uint32_t q, num;

	e = uvs_vhumsg_check_hdr(m->request, m->flags, m->size);
	if (e != UVS_VHUMSG_OK)
		return e;
	if (m->nfds > UVS_VHUMSG_MAX_FDS)
		return UVS_VHUMSG_BAD_FDS;
	ri = req_info(m->request);
	if (m->request == REQ_SET_MEM_TABLE)
		return check_mem_table(st, m);
	e = check_fds(m, ri, 0);
	if (e != UVS_VHUMSG_OK)
		return e;
	q = vring_index(m);
	if (ri->fds == FDS_EVENTFD || m->request == REQ_SET_VRING_NUM ||
			m->request == REQ_SET_VRING_ADDR || m->request == REQ_SET_VRING_BASE ||
			m->request == REQ_GET_VRING_BASE || m->request == REQ_SET_VRING_ENABLE) {
		if (q >= UVS_VHUMSG_VRINGS)
			return UVS_VHUMSG_BAD_VRING_INDEX;
	}
	next = *st;
	switch (m->request) {
	case REQ_SET_VRING_NUM:
		num = get_u32(m->payload + 4);
		if (num == 0 || num > UVS_VHUMSG_MAX_RING || (num & (num - 1)) != 0)
			return UVS_VHUMSG_BAD_RING_SIZE;
		next.vring[q].num = num;
		break;
	case REQ_SET_VRING_ADDR:
		/* index, flags, then desc, used, avail, log: the spec's order */
		next.vring[q].addr_set = true;
		next.vring[q].desc = get_u64(m->payload + 8);
		next.vring[q].used = get_u64(m->payload + 16);
		next.vring[q].avail = get_u64(m->payload + 24);
		break;
	case REQ_GET_VRING_BASE:
		/* the ring stops; DPDK forgets its addresses */
		next.vring[q].addr_set = false;
		break;
	case REQ_SET_VRING_KICK:
		/* DPDK translates the rings here and may go live: a ring without a size
		 * would be mapped as empty and handed to the daemon */
		if (next.vring[q].addr_set && next.vring[q].num == 0)
			return UVS_VHUMSG_BAD_RING_SIZE;
		break;
	case REQ_RESET_OWNER:
		memset(&next, 0, sizeof(next));
		break;
	default:
		break;
	}
	e = check_rings(&next);
	if (e != UVS_VHUMSG_OK)
		return e;
	*st = next;
	return UVS_VHUMSG_OK;
}

int
uvs_vhumsg_config_reply(uint8_t *payload, uint32_t size, uint32_t room, uint64_t guest_cid)
{
	uint8_t cfg[8];
	uint32_t offset, len;

	if (size < UVS_VHUMSG_CONFIG_HDR || size > UVS_VHUMSG_CONFIG_HDR + UVS_VHUMSG_MAX_CONFIG ||
			size > room)
		return -EINVAL;
	offset = get_u32(payload);
	len = get_u32(payload + 4);
	/* each bounded first: their sum cannot wrap */
	if (offset > UVS_VHUMSG_MAX_CONFIG || len > UVS_VHUMSG_MAX_CONFIG ||
			offset + len > UVS_VHUMSG_MAX_CONFIG || room < UVS_VHUMSG_CONFIG_HDR + len)
		return -EINVAL;
	for (unsigned int b = 0; b < sizeof(cfg); b++)
		cfg[b] = (uint8_t)(guest_cid >> (8 * b));
	memset(payload + UVS_VHUMSG_CONFIG_HDR, 0, len);
	if (offset < sizeof(cfg)) {
		uint32_t n = (uint32_t)sizeof(cfg) - offset;

		memcpy(payload + UVS_VHUMSG_CONFIG_HDR, cfg + offset, n < len ? n : len);
	}
	return (int)(UVS_VHUMSG_CONFIG_HDR + len);
}
