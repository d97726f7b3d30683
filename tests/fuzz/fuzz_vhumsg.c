/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fuzz target: the checks of vhost-user messages from a front-end (lib/uvs_vhumsg.c), over
 * sequences of messages on one connection, as uvsockd's relay calls them.
 *
 * Each message of the input: a request (one of the interesting numbers, or any u32), flags
 * (version 1, with NEED_REPLY, or any), a payload size (small, or any u32), descriptors
 * (0 to 9, each a file of some size, an eventfd or something else) and a payload, either raw
 * bytes or built for the request (a memory table of a few regions near one address, ring
 * addresses inside or around it, ring sizes that are powers of two or not), so that the
 * deeper states (memory, then rings, then growing rings and shrinking memory) are reached.
 * The payload lies at the start of an arena whose other bytes ASan poisons: reading past the
 * announced size is caught.
 *
 * Checked after every message: a refused message leaves the state as it was; an accepted one
 * passed the header checks and left a state that holds: at most 8 regions, none empty or
 * wrapping, each within the file it came with; ring sizes 0 or a power of two up to 32768;
 * every ring that has addresses and a size lies wholly inside one region, by an independent
 * computation in 128-bit arithmetic. Every GET_CONFIG is also answered as the daemon's
 * pre-message hook answers it (check_config_reply).
 */
#include <errno.h>

#include "fuzz.h"
#include "uvs_vhumsg.h"

#define MAX_MSGS 64
#define MEM_UADDR 0x7f0000000000ull
#define F_VERSION 1u
#define F_NEED_REPLY 8u

static const uint32_t requests[] = { 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 24, 0,
	6, 7, 21, 22, 25, 36, 37, 39 };

static _Alignas(64) uint8_t payload_arena[UVS_VHUMSG_MAX_PAYLOAD + 64];
static _Alignas(64) uint8_t reply_arena[UVS_VHUMSG_MAX_PAYLOAD + 64];
static uint8_t built[UVS_VHUMSG_MAX_PAYLOAD + 64];

static uint64_t
pick_size(struct fz *f)
{
	uint8_t b = fz_u8(f);

	switch (b & 3) {
	case 0:
		return 1ull << (12 + (b >> 2) % 10); /* 4 KiB .. 2 MiB */
	case 1:
		return (uint64_t)(b >> 2) * 4096u;
	case 2:
		return fz_u64(f);
	default:
		return (1ull << 20) - (b >> 2);
	}
}

/* An address near guest memory: inside, at the end, before it, or anything. */
static uint64_t
pick_addr(struct fz *f)
{
	uint8_t b = fz_u8(f);

	switch (b & 3) {
	case 0:
		return MEM_UADDR + (uint64_t)fz_u16(f) * 16u;
	case 1:
		return MEM_UADDR + (1ull << 20) - (uint64_t)fz_u16(f);
	case 2:
		return MEM_UADDR - (uint64_t)fz_u8(f);
	default:
		return fz_u64(f);
	}
}

static void
put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

static void
put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

/* Raw payload bytes: a length, then the bytes. @return the length */
static uint32_t
raw_payload(struct fz *f)
{
	uint32_t n = fz_u16(f) % (UVS_VHUMSG_MAX_PAYLOAD + 1);

	memset(built, 0, sizeof(built));
	fz_bytes(f, built, n);
	return n;
}

/* A payload shaped for the request. @return its length */
static uint32_t
build_payload(struct fz *f, uint32_t req)
{
	uint32_t n;

	memset(built, 0, sizeof(built));
	switch (req) {
	case 5: /* SET_MEM_TABLE */
		n = fz_u8(f) % (UVS_VHUMSG_MAX_REGIONS + 2);
		put32(built, n);
		for (uint32_t i = 0; i < n && i < UVS_VHUMSG_MAX_REGIONS; i++) {
			uint8_t *r = built + 8 + 32 * i;

			put64(r, fz_u64(f));
			put64(r + 8, pick_size(f));
			put64(r + 16, pick_addr(f));
			put64(r + 24, fz_u8(f) & 1 ? pick_size(f) : 0);
		}
		return 8 + 32 * (n < UVS_VHUMSG_MAX_REGIONS ? n : UVS_VHUMSG_MAX_REGIONS);
	case 9: /* SET_VRING_ADDR: index, flags, desc, used, avail, log */
		put32(built, fz_u8(f) % 3);
		put64(built + 8, pick_addr(f));
		put64(built + 16, pick_addr(f));
		put64(built + 24, pick_addr(f));
		return 40;
	case 8: /* the vring-state requests: index, num */
	case 10:
	case 11:
	case 18: {
		uint8_t b = fz_u8(f);

		put32(built, (b & 3u) % 3u);
		put32(built + 4, b & 0x80 ? fz_u32(f) : 1u << ((b >> 2) % 17));
		return 8;
	}
	case 12: /* kick, call, err: index and NOFD bit */
	case 13:
	case 14:
		put64(built, fz_u16(f) & 0x1ff);
		return 8;
	default:
		return raw_payload(f);
	}
}

static bool
inside(const struct uvs_vhumsg_state *st, uint64_t addr, uint64_t len)
{
	for (uint32_t i = 0; i < st->nregions; i++) {
		const struct uvs_vhumsg_region *r = &st->regions[i];
		unsigned __int128 end = (unsigned __int128)addr + len;

		if (addr >= r->uaddr && end <= (unsigned __int128)r->uaddr + r->size)
			return true;
	}
	return false;
}

static void
check_state(const struct uvs_vhumsg_state *st)
{
	FZ_CHECK(st->nregions <= UVS_VHUMSG_MAX_REGIONS);
	for (uint32_t i = 0; i < st->nregions; i++) {
		const struct uvs_vhumsg_region *r = &st->regions[i];

		FZ_CHECK(r->size != 0);
		FZ_CHECK(r->uaddr + r->size > r->uaddr);
		FZ_CHECK(r->offset + r->size > r->offset);
	}
	for (unsigned int q = 0; q < UVS_VHUMSG_VRINGS; q++) {
		const struct uvs_vhumsg_vring *v = &st->vring[q];
		uint64_t n = v->num;

		FZ_CHECK(n <= UVS_VHUMSG_MAX_RING && (n & (n - 1)) == 0);
		if (!v->addr_set || n == 0 || st->nregions == 0)
			continue;
		FZ_CHECK(inside(st, v->desc, 16 * n));
		FZ_CHECK(inside(st, v->avail, 6 + 2 * n));
		FZ_CHECK(inside(st, v->used, 6 + 8 * n));
		FZ_CHECK(v->desc % 16 == 0 && v->avail % 2 == 0 && v->used % 4 == 0);
	}
}

/* GET_CONFIG answered in place (uvs_vhumsg_config_reply, the daemon's pre-message hook), on
 * any message of that number whether the checks passed it or not, in a buffer of room bytes
 * whose end ASan watches. Checked against an independent computation: a refusal writes
 * nothing; a reply is 12 + the length asked, keeps the first 12 bytes, carries the le64 CID
 * from the offset asked and zeros beyond, and writes nothing past that. A request the checks
 * passed, with room for the largest config, is refused only for asking past 256 bytes. */
static void
check_config_reply(struct fz *f, const struct uvs_vhumsg *m, bool passed)
{
	static uint8_t before[sizeof(reply_arena)];
	uint32_t room = fz_u8(f) & 1 ? UVS_VHUMSG_MAX_PAYLOAD
				     : fz_u16(f) % (UVS_VHUMSG_MAX_PAYLOAD + 1);
	uint32_t plen = m->size <= UVS_VHUMSG_MAX_PAYLOAD ? m->size : 0;
	uint8_t *buf = fz_arena(reply_arena, sizeof(reply_arena), room);
	uint64_t cid = fz_u8(f) & 1 ? 3 : fz_u64(f);
	uint32_t offset = 0, len = 0;
	int rc;

	memset(buf, 0xa5, room);
	memcpy(buf, m->payload, plen < room ? plen : room);
	memcpy(before, buf, room);
	if (room >= 8) {
		memcpy(&offset, buf, 4);
		memcpy(&len, buf + 4, 4);
	}
	/* the payload lies in room, or the size says there is none to read */
	rc = uvs_vhumsg_config_reply(buf, plen <= room ? m->size : UINT32_MAX, room, cid);
	if (rc < 0) {
		FZ_CHECK(rc == -EINVAL);
		FZ_CHECK(memcmp(buf, before, room) == 0);
		if (passed && room == UVS_VHUMSG_MAX_PAYLOAD && plen <= room)
			FZ_CHECK((uint64_t)offset + len > UVS_VHUMSG_MAX_CONFIG);
		return;
	}
	FZ_CHECK(room >= 12 && m->size >= 12 && m->size <= 12 + UVS_VHUMSG_MAX_CONFIG);
	FZ_CHECK((uint64_t)offset + len <= UVS_VHUMSG_MAX_CONFIG && (uint32_t)rc == 12 + len);
	FZ_CHECK(memcmp(buf, before, 12) == 0);
	for (uint32_t i = 0; i < len; i++) {
		uint64_t at = (uint64_t)offset + i;
		uint8_t want = at < 8 ? (uint8_t)(cid >> (8 * at)) : 0;

		FZ_CHECK(buf[12 + i] == want);
	}
	FZ_CHECK(memcmp(buf + 12 + len, before + 12 + len, room - 12 - len) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct uvs_vhumsg_state st, before;
	struct fz f;

	fz_init(&f, data, size);
	memset(&st, 0, sizeof(st));
	for (int i = 0; i < MAX_MSGS && !fz_empty(&f); i++) {
		struct uvs_vhumsg m;
		uint8_t sel = fz_u8(&f), b;
		uint32_t len, plen;
		enum uvs_vhumsg_err e;

		memset(&m, 0, sizeof(m));
		m.request = sel & 0x80 ? fz_u32(&f)
				       : requests[sel % (sizeof(requests) / sizeof(requests[0]))];
		b = fz_u8(&f);
		m.flags = (b & 3) == 0	 ? F_VERSION
			  : (b & 3) == 1 ? F_VERSION | F_NEED_REPLY
					 : fz_u32(&f);
		m.nfds = fz_u8(&f) % (UVS_VHUMSG_MAX_FDS + 2);
		for (unsigned int k = 0; k < m.nfds && k < UVS_VHUMSG_MAX_FDS; k++) {
			m.fds[k].kind = (enum uvs_vhumsg_fd_kind)(fz_u8(&f) % 3);
			m.fds[k].size = pick_size(&f);
		}
		len = b & 4 ? build_payload(&f, m.request) : raw_payload(&f);
		m.size = b & 8 ? fz_u32(&f) : len;
		/* a whole message always has the bytes its header announces (the relay read them
		 * all), the ones the input lacks being zeros; above the largest payload there is
		 * nothing, and the checks must refuse before reading. ASan watches past them. */
		plen = m.size <= UVS_VHUMSG_MAX_PAYLOAD ? m.size : 0;
		m.payload = fz_arena(payload_arena, sizeof(payload_arena), plen);
		memset(payload_arena, 0, plen);
		memcpy(payload_arena, built, len < plen ? len : plen);

		before = st;
		e = uvs_vhumsg_check(&st, &m);
		if (m.request == 24)
			check_config_reply(&f, &m, e == UVS_VHUMSG_OK);
		FZ_CHECK((unsigned int)e < UVS_VHUMSG_ERR_MAX);
		FZ_CHECK(e != UVS_VHUMSG_STALLED && e != UVS_VHUMSG_REPLIES_NOT_READ);
		FZ_CHECK(uvs_vhumsg_err_str(e) != NULL && uvs_vhumsg_req_str(m.request) != NULL);
		if (e != UVS_VHUMSG_OK) {
			FZ_CHECK(memcmp(&st, &before, sizeof(st)) == 0);
			continue;
		}
		FZ_CHECK(uvs_vhumsg_check_hdr(m.request, m.flags, m.size) == UVS_VHUMSG_OK);
		FZ_CHECK(m.nfds <= UVS_VHUMSG_MAX_FDS);
		if (m.request == 5) {
			FZ_CHECK(m.nfds == st.nregions);
			for (uint32_t k = 0; k < st.nregions; k++) {
				FZ_CHECK(m.fds[k].kind == UVS_VHUMSG_FD_FILE);
				FZ_CHECK(st.regions[k].offset + st.regions[k].size <=
						m.fds[k].size);
			}
		}
		check_state(&st);
	}
	return 0;
}
