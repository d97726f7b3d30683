/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of uvs_vhumsg.c: the checks uvsockd makes on vhost-user messages before DPDK
 * sees them (doc/ROBUSTNESS.md, "The vhost-user socket"). Each refusal reason, the
 * sequences QEMU sends, and the holes of DPDK 22.11 they close: a region past its file, a
 * ring made larger after its addresses were accepted, a memory table that no longer holds
 * the rings, refused ring sizes, short payloads.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "uvs_vhumsg.h"

#define GET_FEATURES 1
#define SET_FEATURES 2
#define SET_OWNER 3
#define SET_MEM_TABLE 5
#define SET_LOG_BASE 6
#define SET_VRING_NUM 8
#define SET_VRING_ADDR 9
#define SET_VRING_BASE 10
#define GET_VRING_BASE 11
#define SET_VRING_KICK 12
#define SET_VRING_CALL 13
#define SET_VRING_ENABLE 18
#define GET_CONFIG 24
#define SET_CONFIG 25
#define VERSION 1u
#define NEED_REPLY 8u

/* Guest memory as a front-end maps it: 1 MiB at uaddr 0x7f0000000000, file of 1 MiB. */
#define MEM_UADDR 0x7f0000000000ull
#define MEM_SIZE (1u << 20)

struct msgbuf {
	struct uvs_vhumsg m;
	uint8_t payload[UVS_VHUMSG_MAX_PAYLOAD];
};

static struct uvs_vhumsg *
mk(struct msgbuf *b, uint32_t req, const void *payload, uint32_t size)
{
	memset(b, 0, sizeof(*b));
	b->m.request = req;
	b->m.flags = VERSION;
	b->m.size = size;
	b->m.payload = b->payload;
	if (size > 0)
		memcpy(b->payload, payload, size);
	return &b->m;
}

static struct uvs_vhumsg *
mk_state(struct msgbuf *b, uint32_t req, uint32_t index, uint32_t num)
{
	uint32_t p[2] = { index, num };

	return mk(b, req, p, sizeof(p));
}

/* A u64 payload; with a descriptor of kind fd unless fd is NO_FD. */
#define NO_FD ((enum uvs_vhumsg_fd_kind) - 1)
static struct uvs_vhumsg *
mk_u64(struct msgbuf *b, uint32_t req, uint64_t v, enum uvs_vhumsg_fd_kind fd)
{
	mk(b, req, &v, sizeof(v));
	if (fd != NO_FD) {
		b->m.nfds = 1;
		b->m.fds[0].kind = fd;
	}
	return &b->m;
}

/* One region: gpa 0, size, uaddr, offset, backed by a file of file_size bytes. */
static struct uvs_vhumsg *
mk_mem(struct msgbuf *b, uint64_t size, uint64_t uaddr, uint64_t offset, uint64_t file_size)
{
	uint8_t p[8 + 32];
	uint32_t n = 1;
	uint64_t r[4] = { 0, size, uaddr, offset };

	memset(p, 0, sizeof(p));
	memcpy(p, &n, sizeof(n));
	memcpy(p + 8, r, sizeof(r));
	mk(b, SET_MEM_TABLE, p, sizeof(p));
	b->m.nfds = 1;
	b->m.fds[0].kind = UVS_VHUMSG_FD_FILE;
	b->m.fds[0].size = file_size;
	return &b->m;
}

static struct uvs_vhumsg *
mk_addr(struct msgbuf *b, uint32_t index, uint64_t desc, uint64_t avail, uint64_t used)
{
	uint8_t p[40];
	uint64_t a[4] = { desc, used, avail, 0 };

	memset(p, 0, sizeof(p));
	memcpy(p, &index, sizeof(index));
	memcpy(p + 8, a, sizeof(a));
	return mk(b, SET_VRING_ADDR, p, sizeof(p));
}

#define CHECK(st, msg) uvs_vhumsg_check((st), (msg))

/* The rings of ring q, num entries, laid out from offset off of guest memory. */
static void
ring_addrs(uint64_t off, uint32_t num, uint64_t *desc, uint64_t *avail, uint64_t *used)
{
	*desc = MEM_UADDR + off;
	*avail = *desc + 16ull * num;
	*used = (*avail + 6 + 2ull * num + 3) & ~3ull;
}

/* What QEMU sends to bring up vsock's two rings of 128 entries. */
static void
qemu_attach(struct uvs_vhumsg_state *st)
{
	struct msgbuf b;
	uint64_t d, a, u;

	assert_int_equal(CHECK(st, mk(&b, SET_OWNER, NULL, 0)), UVS_VHUMSG_OK);
	assert_int_equal(CHECK(st, mk(&b, GET_FEATURES, NULL, 0)), UVS_VHUMSG_OK);
	assert_int_equal(CHECK(st, mk_u64(&b, SET_FEATURES, 1ull << 32, NO_FD)), UVS_VHUMSG_OK);
	assert_int_equal(CHECK(st, mk_u64(&b, SET_VRING_CALL, 0, UVS_VHUMSG_FD_EVENTFD)),
			UVS_VHUMSG_OK);
	assert_int_equal(CHECK(st, mk_mem(&b, MEM_SIZE, MEM_UADDR, 0, MEM_SIZE)), UVS_VHUMSG_OK);
	for (uint32_t q = 0; q < 2; q++) {
		ring_addrs(MEM_SIZE - (q + 1) * 32768, 128, &d, &a, &u);
		assert_int_equal(CHECK(st, mk_state(&b, SET_VRING_NUM, q, 128)), UVS_VHUMSG_OK);
		assert_int_equal(CHECK(st, mk_state(&b, SET_VRING_BASE, q, 0)), UVS_VHUMSG_OK);
		assert_int_equal(CHECK(st, mk_addr(&b, q, d, a, u)), UVS_VHUMSG_OK);
		assert_int_equal(CHECK(st, mk_u64(&b, SET_VRING_KICK, q, UVS_VHUMSG_FD_EVENTFD)),
				UVS_VHUMSG_OK);
		assert_int_equal(CHECK(st, mk_u64(&b, SET_VRING_CALL, q, UVS_VHUMSG_FD_EVENTFD)),
				UVS_VHUMSG_OK);
		assert_int_equal(CHECK(st, mk_state(&b, SET_VRING_ENABLE, q, 1)), UVS_VHUMSG_OK);
	}
}

static void
qemu_sequence_passes(void **state)
{
	struct uvs_vhumsg_state st;
	struct msgbuf b;
	uint8_t cfg[12 + 8] = { 0 };

	(void)state;
	memset(&st, 0, sizeof(st));
	qemu_attach(&st);
	assert_int_equal(st.nregions, 1);
	assert_int_equal(st.vring[1].num, 128);
	assert_true(st.vring[1].addr_set);
	cfg[4] = 8;
	assert_int_equal(CHECK(&st, mk(&b, GET_CONFIG, cfg, sizeof(cfg))), UVS_VHUMSG_OK);
	/* stop and start again, as on a guest reboot: GET_VRING_BASE forgets the addresses */
	assert_int_equal(CHECK(&st, mk_state(&b, GET_VRING_BASE, 0, 0)), UVS_VHUMSG_OK);
	assert_false(st.vring[0].addr_set);
	/* with the addresses forgotten, a larger size is fine until new ones come */
	assert_int_equal(CHECK(&st, mk_state(&b, SET_VRING_NUM, 0, 32768)), UVS_VHUMSG_OK);
	/* a kick with neither addresses nor a new size is DPDK's to ignore */
	assert_int_equal(CHECK(&st, mk_u64(&b, SET_VRING_KICK, 0, UVS_VHUMSG_FD_EVENTFD)),
			UVS_VHUMSG_OK);
	/* need-reply is allowed */
	mk_state(&b, SET_VRING_NUM, 0, 256);
	b.m.flags |= NEED_REPLY;
	assert_int_equal(CHECK(&st, &b.m), UVS_VHUMSG_OK);
	/* NOFD: no descriptor expected */
	assert_int_equal(CHECK(&st, mk_u64(&b, SET_VRING_CALL, 1 | 0x100, NO_FD)), UVS_VHUMSG_OK);
}

static void
header_refusals(void **state)
{
	struct uvs_vhumsg_state st;
	struct msgbuf b;
	uint64_t v = 0;

	(void)state;
	memset(&st, 0, sizeof(st));
	assert_int_equal(uvs_vhumsg_check_hdr(GET_FEATURES, 0, 0), UVS_VHUMSG_BAD_FLAGS);
	assert_int_equal(uvs_vhumsg_check_hdr(GET_FEATURES, 2, 0), UVS_VHUMSG_BAD_FLAGS);
	assert_int_equal(uvs_vhumsg_check_hdr(GET_FEATURES, VERSION | 4, 0), UVS_VHUMSG_BAD_FLAGS);
	assert_int_equal(uvs_vhumsg_check_hdr(0, VERSION, 0), UVS_VHUMSG_UNSUPPORTED);
	assert_int_equal(uvs_vhumsg_check_hdr(SET_LOG_BASE, VERSION, 40), UVS_VHUMSG_UNSUPPORTED);
	assert_int_equal(uvs_vhumsg_check_hdr(SET_CONFIG, VERSION, 20), UVS_VHUMSG_UNSUPPORTED);
	assert_int_equal(uvs_vhumsg_check_hdr(0xffffffffu, VERSION, 0), UVS_VHUMSG_UNSUPPORTED);
	assert_int_equal(uvs_vhumsg_check_hdr(GET_CONFIG, VERSION, UVS_VHUMSG_MAX_PAYLOAD),
			UVS_VHUMSG_OK);
	assert_int_equal(uvs_vhumsg_check_hdr(GET_CONFIG, VERSION, UVS_VHUMSG_MAX_PAYLOAD + 1),
			UVS_VHUMSG_TOO_LONG);
	assert_int_equal(uvs_vhumsg_check_hdr(SET_FEATURES, VERSION, 0xffffffffu),
			UVS_VHUMSG_TOO_LONG);
	/* short payloads: every request that needs one */
	assert_int_equal(CHECK(&st, mk(&b, SET_FEATURES, &v, 4)), UVS_VHUMSG_SHORT_PAYLOAD);
	assert_int_equal(CHECK(&st, mk(&b, SET_VRING_NUM, &v, 0)), UVS_VHUMSG_SHORT_PAYLOAD);
	assert_int_equal(CHECK(&st, mk(&b, SET_VRING_ADDR, &v, 8)), UVS_VHUMSG_SHORT_PAYLOAD);
	assert_int_equal(CHECK(&st, mk(&b, SET_VRING_KICK, &v, 7)), UVS_VHUMSG_SHORT_PAYLOAD);
	assert_int_equal(CHECK(&st, mk(&b, GET_CONFIG, &v, 8)), UVS_VHUMSG_SHORT_PAYLOAD);
	assert_int_equal(CHECK(&st, mk(&b, SET_MEM_TABLE, &v, 4)), UVS_VHUMSG_SHORT_PAYLOAD);
	/* a table of 2 regions with room for one */
	mk_mem(&b, MEM_SIZE, MEM_UADDR, 0, MEM_SIZE);
	b.payload[0] = 2;
	assert_int_equal(CHECK(&st, &b.m), UVS_VHUMSG_SHORT_PAYLOAD);
	/* the state did not move */
	assert_int_equal(st.nregions, 0);
	assert_string_equal(uvs_vhumsg_err_str(UVS_VHUMSG_SHORT_PAYLOAD), "short_payload");
	assert_string_equal(uvs_vhumsg_err_str(UVS_VHUMSG_ERR_MAX), "?");
	assert_string_equal(uvs_vhumsg_req_str(SET_MEM_TABLE), "SET_MEM_TABLE");
	assert_string_equal(uvs_vhumsg_req_str(SET_LOG_BASE), "?");
}

static void
descriptor_refusals(void **state)
{
	struct uvs_vhumsg_state st;
	struct msgbuf b;

	(void)state;
	memset(&st, 0, sizeof(st));
	/* a descriptor where none is due */
	mk(&b, GET_FEATURES, NULL, 0);
	b.m.nfds = 1;
	assert_int_equal(CHECK(&st, &b.m), UVS_VHUMSG_BAD_FDS);
	/* kick without its eventfd, with two, with a pipe (a call fd that can block writes) */
	mk_u64(&b, SET_VRING_KICK, 0, UVS_VHUMSG_FD_EVENTFD);
	b.m.nfds = 0;
	assert_int_equal(CHECK(&st, &b.m), UVS_VHUMSG_BAD_FDS);
	b.m.nfds = 2;
	b.m.fds[1].kind = UVS_VHUMSG_FD_EVENTFD;
	assert_int_equal(CHECK(&st, &b.m), UVS_VHUMSG_BAD_FDS);
	assert_int_equal(CHECK(&st, mk_u64(&b, SET_VRING_CALL, 0, UVS_VHUMSG_FD_OTHER)),
			UVS_VHUMSG_BAD_FDS);
	assert_int_equal(CHECK(&st, mk_u64(&b, SET_VRING_CALL, 0, UVS_VHUMSG_FD_FILE)),
			UVS_VHUMSG_BAD_FDS);
	/* NOFD with a descriptor anyway */
	assert_int_equal(CHECK(&st, mk_u64(&b, SET_VRING_CALL, 0x100, UVS_VHUMSG_FD_EVENTFD)),
			UVS_VHUMSG_BAD_FDS);
	/* memory behind an eventfd, or missing */
	mk_mem(&b, MEM_SIZE, MEM_UADDR, 0, MEM_SIZE);
	b.m.fds[0].kind = UVS_VHUMSG_FD_EVENTFD;
	assert_int_equal(CHECK(&st, &b.m), UVS_VHUMSG_BAD_FDS);
	b.m.nfds = 0;
	assert_int_equal(CHECK(&st, &b.m), UVS_VHUMSG_BAD_FDS);
	b.m.nfds = UVS_VHUMSG_MAX_FDS + 1;
	assert_int_equal(CHECK(&st, &b.m), UVS_VHUMSG_BAD_FDS);
}

static void
memory_refusals(void **state)
{
	struct uvs_vhumsg_state st;
	struct msgbuf b;

	(void)state;
	memset(&st, 0, sizeof(st));
	/* larger than the file, by a byte; offset pushing it past; file empty */
	assert_int_equal(CHECK(&st, mk_mem(&b, MEM_SIZE + 1, MEM_UADDR, 0, MEM_SIZE)),
			UVS_VHUMSG_REGION_PAST_FILE);
	assert_int_equal(CHECK(&st, mk_mem(&b, MEM_SIZE, MEM_UADDR, 4096, MEM_SIZE)),
			UVS_VHUMSG_REGION_PAST_FILE);
	assert_int_equal(
			CHECK(&st, mk_mem(&b, 4096, MEM_UADDR, 0, 0)), UVS_VHUMSG_REGION_PAST_FILE);
	/* exactly the file, and its second half */
	assert_int_equal(CHECK(&st, mk_mem(&b, MEM_SIZE / 2, MEM_UADDR, MEM_SIZE / 2, MEM_SIZE)),
			UVS_VHUMSG_OK);
	/* wrapping offsets and addresses, empty regions, no regions, too many */
	assert_int_equal(CHECK(&st, mk_mem(&b, 4096, MEM_UADDR, UINT64_MAX - 100, MEM_SIZE)),
			UVS_VHUMSG_BAD_REGION);
	assert_int_equal(CHECK(&st, mk_mem(&b, 4096, UINT64_MAX - 100, 0, MEM_SIZE)),
			UVS_VHUMSG_BAD_REGION);
	assert_int_equal(CHECK(&st, mk_mem(&b, 0, MEM_UADDR, 0, MEM_SIZE)), UVS_VHUMSG_BAD_REGION);
	mk_mem(&b, MEM_SIZE, MEM_UADDR, 0, MEM_SIZE);
	b.payload[0] = 0;
	assert_int_equal(CHECK(&st, &b.m), UVS_VHUMSG_BAD_REGION);
	b.payload[0] = UVS_VHUMSG_MAX_REGIONS + 1;
	assert_int_equal(CHECK(&st, &b.m), UVS_VHUMSG_BAD_REGION);
	/* the accepted table is the half one */
	assert_int_equal(st.regions[0].offset, MEM_SIZE / 2);
}

static void
ring_refusals(void **state)
{
	struct uvs_vhumsg_state st;
	struct msgbuf b;
	uint64_t d, a, u;

	(void)state;
	memset(&st, 0, sizeof(st));
	qemu_attach(&st);
	/* sizes DPDK stores before refusing, or never refuses */
	assert_int_equal(CHECK(&st, mk_state(&b, SET_VRING_NUM, 0, 0)), UVS_VHUMSG_BAD_RING_SIZE);
	assert_int_equal(CHECK(&st, mk_state(&b, SET_VRING_NUM, 0, 3)), UVS_VHUMSG_BAD_RING_SIZE);
	assert_int_equal(CHECK(&st, mk_state(&b, SET_VRING_NUM, 0, 65536)),
			UVS_VHUMSG_BAD_RING_SIZE);
	assert_int_equal(CHECK(&st, mk_state(&b, SET_VRING_NUM, 0, 0x80000000u)),
			UVS_VHUMSG_BAD_RING_SIZE);
	/* rings other than rx and tx */
	assert_int_equal(CHECK(&st, mk_state(&b, SET_VRING_NUM, 2, 128)),
			UVS_VHUMSG_BAD_VRING_INDEX);
	assert_int_equal(CHECK(&st, mk_state(&b, SET_VRING_ENABLE, 255, 1)),
			UVS_VHUMSG_BAD_VRING_INDEX);
	assert_int_equal(CHECK(&st, mk_u64(&b, SET_VRING_KICK, 2, UVS_VHUMSG_FD_EVENTFD)),
			UVS_VHUMSG_BAD_VRING_INDEX);
	/* DPDK masks kick's index to 8 bits: 256 is ring 0 with NOFD */
	assert_int_equal(CHECK(&st, mk_u64(&b, SET_VRING_KICK, 0x100, NO_FD)), UVS_VHUMSG_OK);
	/* a larger size under addresses accepted for 128 entries: tx, 64 KiB before the end of
	 * memory, holds 256 entries but not 32768 (DPDK keeps the old translation) */
	assert_int_equal(CHECK(&st, mk_state(&b, SET_VRING_NUM, 1, 32768)),
			UVS_VHUMSG_RING_OUTSIDE_MEM);
	assert_int_equal(CHECK(&st, mk_state(&b, SET_VRING_NUM, 1, 256)), UVS_VHUMSG_OK);
	/* addresses past the end, straddling it, before the start, wrapping */
	ring_addrs(MEM_SIZE - 2048, 128, &d, &a, &u); /* descriptors fit, avail does not */
	assert_int_equal(CHECK(&st, mk_addr(&b, 0, d, a, u)), UVS_VHUMSG_RING_OUTSIDE_MEM);
	assert_int_equal(CHECK(&st, mk_addr(&b, 0, MEM_UADDR + MEM_SIZE, MEM_UADDR, MEM_UADDR)),
			UVS_VHUMSG_RING_OUTSIDE_MEM);
	assert_int_equal(CHECK(&st, mk_addr(&b, 0, MEM_UADDR - 4096, MEM_UADDR, MEM_UADDR)),
			UVS_VHUMSG_RING_OUTSIDE_MEM);
	assert_int_equal(CHECK(&st, mk_addr(&b, 0, UINT64_MAX - 15, MEM_UADDR, MEM_UADDR)),
			UVS_VHUMSG_RING_OUTSIDE_MEM);
	/* misaligned parts */
	ring_addrs(0, 128, &d, &a, &u);
	assert_int_equal(CHECK(&st, mk_addr(&b, 0, d + 8, a, u)), UVS_VHUMSG_RING_MISALIGNED);
	assert_int_equal(CHECK(&st, mk_addr(&b, 0, d, a + 1, u)), UVS_VHUMSG_RING_MISALIGNED);
	assert_int_equal(CHECK(&st, mk_addr(&b, 0, d, a, u + 2)), UVS_VHUMSG_RING_MISALIGNED);
	/* a memory table that no longer holds the live rings */
	assert_int_equal(CHECK(&st, mk_mem(&b, 65536, MEM_UADDR, 0, MEM_SIZE)),
			UVS_VHUMSG_RING_OUTSIDE_MEM);
	assert_int_equal(CHECK(&st, mk_mem(&b, MEM_SIZE, MEM_UADDR + MEM_SIZE, 0, MEM_SIZE)),
			UVS_VHUMSG_RING_OUTSIDE_MEM);
	assert_int_equal(st.regions[0].size, MEM_SIZE);
	/* a ring whose addresses came without a size goes live at KICK: refused there */
	memset(&st, 0, sizeof(st));
	assert_int_equal(CHECK(&st, mk_mem(&b, MEM_SIZE, MEM_UADDR, 0, MEM_SIZE)), UVS_VHUMSG_OK);
	ring_addrs(0, 128, &d, &a, &u);
	assert_int_equal(CHECK(&st, mk_addr(&b, 0, d, a, u)), UVS_VHUMSG_OK);
	assert_int_equal(CHECK(&st, mk_u64(&b, SET_VRING_KICK, 0, UVS_VHUMSG_FD_EVENTFD)),
			UVS_VHUMSG_BAD_RING_SIZE);
	/* an address given before any memory is DPDK's to refuse; its size is checked later */
	memset(&st, 0, sizeof(st));
	assert_int_equal(CHECK(&st, mk_state(&b, SET_VRING_NUM, 0, 1024)), UVS_VHUMSG_OK);
	assert_int_equal(
			CHECK(&st, mk_addr(&b, 0, MEM_UADDR + MEM_SIZE - 16, MEM_UADDR, MEM_UADDR)),
			UVS_VHUMSG_OK);
	assert_int_equal(CHECK(&st, mk_mem(&b, MEM_SIZE, MEM_UADDR, 0, MEM_SIZE)),
			UVS_VHUMSG_RING_OUTSIDE_MEM);
}

static void
span_inside_bounds(void **state)
{
	struct uvs_vhumsg_region r[2] = {
		{ .uaddr = 0x1000, .size = 0x1000 },
		{ .uaddr = 0x2000, .size = 0x1000 },
	};

	(void)state;
	assert_true(uvs_vhumsg_span_inside(r, 2, 0x1000, 0x1000));
	assert_true(uvs_vhumsg_span_inside(r, 2, 0x2fff, 1));
	assert_false(uvs_vhumsg_span_inside(r, 2, 0x1fff, 2)); /* two regions: not one */
	assert_false(uvs_vhumsg_span_inside(r, 2, 0x3000, 1));
	assert_false(uvs_vhumsg_span_inside(r, 2, 0x1000, 0));
	assert_false(uvs_vhumsg_span_inside(r, 2, 0xfff, 1));
	assert_false(uvs_vhumsg_span_inside(r, 2, 0x1800, UINT64_MAX));
	assert_false(uvs_vhumsg_span_inside(r, 0, 0x1000, 1));
}

/* A GET_CONFIG payload: offset, size, flags, then the config room filled with 0xee. */
static void
mk_config(uint8_t *buf, uint32_t room, uint32_t offset, uint32_t len)
{
	uint32_t flags = 0;

	memset(buf, 0xee, room);
	memcpy(buf, &offset, 4);
	memcpy(buf + 4, &len, 4);
	memcpy(buf + 8, &flags, 4);
}

static void
config_reply_bytes(void **state)
{
	uint8_t buf[UVS_VHUMSG_MAX_PAYLOAD];
	const uint32_t room = sizeof(buf);
	const uint64_t cid = 0x0000000012345678ull;
	uint32_t v;

	(void)state;
	/* QEMU: 8 bytes from 0, the le64 guest_cid */
	mk_config(buf, room, 0, 8);
	assert_int_equal(uvs_vhumsg_config_reply(buf, 12, room, cid), 20);
	memcpy(&v, buf + 12, 4);
	assert_int_equal(v, 0x12345678u);
	memcpy(&v, buf + 16, 4);
	assert_int_equal(v, 0);
	assert_int_equal(buf[20], 0xee); /* nothing past the length asked */
	memcpy(&v, buf, 4);
	assert_int_equal(v, 0); /* offset and size stay as asked */
	memcpy(&v, buf + 4, 4);
	assert_int_equal(v, 8);

	/* from the middle: cid's upper bytes, then zeros past the 8-byte config space */
	mk_config(buf, room, 2, 8);
	assert_int_equal(uvs_vhumsg_config_reply(buf, 12, room, cid), 20);
	assert_int_equal(buf[12], 0x34);
	assert_int_equal(buf[13], 0x12);
	for (unsigned int i = 14; i < 20; i++)
		assert_int_equal(buf[i], 0);

	/* past the vsock config, within 256: zeros; the whole space; nothing at all */
	mk_config(buf, room, 200, 56);
	assert_int_equal(uvs_vhumsg_config_reply(buf, 12, room, cid), 12 + 56);
	for (unsigned int i = 12; i < 12 + 56; i++)
		assert_int_equal(buf[i], 0);
	mk_config(buf, room, 0, 256);
	assert_int_equal(uvs_vhumsg_config_reply(buf, 12 + 256, room, cid), 12 + 256);
	mk_config(buf, room, 0, 0);
	assert_int_equal(uvs_vhumsg_config_reply(buf, 12, room, cid), 12);
	assert_int_equal(buf[12], 0xee);
}

static void
config_reply_refusals(void **state)
{
	uint8_t buf[UVS_VHUMSG_MAX_PAYLOAD];
	const uint32_t room = sizeof(buf);
	const struct {
		uint32_t size, offset, len, room;
	} bad[] = {
		{ 11, 0, 8, room },	      /* shorter than offset, size, flags */
		{ 12 + 257, 0, 8, room },     /* longer than the largest config */
		{ 12, 0, 257, room },	      /* more than the config space */
		{ 12, 257, 0, room },	      /* offset past it */
		{ 12, 250, 7, room },	      /* together past it */
		{ 12, 0xffffffffu, 2, room }, /* a sum that would wrap */
		{ 12, 8, 0xfffffff9u, room }, /* the other way */
		{ 12, 0, 8, 12 + 7 },	      /* a reply larger than the buffer */
		{ 30, 0, 8, 24 },	      /* a request larger than the buffer */
	};

	(void)state;
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		mk_config(buf, room, bad[i].offset, bad[i].len);
		assert_int_equal(
				uvs_vhumsg_config_reply(buf, bad[i].size, bad[i].room, 3), -EINVAL);
		assert_int_equal(buf[12], 0xee); /* nothing written */
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(qemu_sequence_passes),
		cmocka_unit_test(header_refusals),
		cmocka_unit_test(descriptor_refusals),
		cmocka_unit_test(memory_refusals),
		cmocka_unit_test(ring_refusals),
		cmocka_unit_test(span_inside_bounds),
		cmocka_unit_test(config_reply_bytes),
		cmocka_unit_test(config_reply_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
