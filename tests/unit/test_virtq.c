/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of lib/uvs_virtq.c over a fake guest memory.
 *
 * Guest physical layout (3 regions; R0 and R1 are contiguous in guest physical space but
 * not in host memory, so a range crossing them must come back as two segments):
 *
 *   gpa 0x000000 .. 0x100000  R0, host guest_mem + 0 MiB   rings, indirect tables, data
 *   gpa 0x100000 .. 0x200000  R1, host guest_mem + 2 MiB
 *   gpa 0x200000 .. 0x300000  hole
 *   gpa 0x300000 .. 0x400000  R2, host guest_mem + 1 MiB
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "uvs_virtq.h"

#define MIB (1024u * 1024u)
#define QSIZE 16u

#define R0_GPA 0x000000ull
#define R1_GPA 0x100000ull
#define HOLE_GPA 0x200000ull
#define R2_GPA 0x300000ull
#define REGION_SIZE ((uint64_t)MIB)

#define DESC_GPA 0x0000ull
#define AVAIL_GPA 0x1000ull
#define USED_GPA 0x2000ull
#define INDIR_GPA 0x3000ull  /* room for 256 descriptors */
#define INDIR2_GPA 0x4000ull /* a second table, for nesting */
#define DATA_GPA 0x10000ull
#define R1_DATA_GPA (R1_GPA + 0x1000)
#define R2_DATA_GPA (R2_GPA + 0x1000)

static _Alignas(4096) uint8_t guest_mem[3 * MIB];

struct fixture {
	struct uvs_memtbl mem;
	struct uvs_virtq vq;
	struct uvs_chain chain;
	enum uvs_chain_err err;
};

static struct fixture fx;

/* Host address of a guest physical address, computed independently of the code under test. */
static uint8_t *
host(uint64_t gpa)
{
	if (gpa < R0_GPA + REGION_SIZE) /* R0_GPA is 0 */
		return guest_mem + (gpa - R0_GPA);
	if (gpa >= R1_GPA && gpa < R1_GPA + REGION_SIZE)
		return guest_mem + 2 * MIB + (gpa - R1_GPA);
	if (gpa >= R2_GPA && gpa < R2_GPA + REGION_SIZE)
		return guest_mem + 1 * MIB + (gpa - R2_GPA);
	fail_msg("gpa 0x%llx is not in test memory", (unsigned long long)gpa);
	return NULL;
}

static struct uvs_vring_desc *
indir(uint64_t gpa)
{
	return (struct uvs_vring_desc *)(void *)host(gpa);
}

static int
setup(void **state)
{
	memset(guest_mem, 0, sizeof(guest_mem));
	memset(&fx, 0, sizeof(fx));
	fx.mem.nregions = 3;
	fx.mem.regions[0] = (struct uvs_mem_region){ R0_GPA, REGION_SIZE,
		(uint64_t)(uintptr_t)guest_mem };
	fx.mem.regions[1] = (struct uvs_mem_region){ R1_GPA, REGION_SIZE,
		(uint64_t)(uintptr_t)(guest_mem + 2 * MIB) };
	fx.mem.regions[2] = (struct uvs_mem_region){ R2_GPA, REGION_SIZE,
		(uint64_t)(uintptr_t)(guest_mem + 1 * MIB) };
	fx.vq.desc = indir(DESC_GPA);
	fx.vq.avail = (struct uvs_vring_avail *)(void *)host(AVAIL_GPA);
	fx.vq.used = (struct uvs_vring_used *)(void *)host(USED_GPA);
	fx.vq.size = QSIZE;
	/* Poison the chain so that a test notices fields pop forgot to set. */
	memset(&fx.chain, 0xa5, sizeof(fx.chain));
	fx.err = (enum uvs_chain_err) - 1;
	*state = &fx;
	return 0;
}

static void
set_desc(struct uvs_vring_desc *table, unsigned int i, uint64_t addr, uint32_t len, uint16_t flags,
		uint16_t next)
{
	table[i].addr = addr;
	table[i].len = len;
	table[i].flags = flags;
	table[i].next = next;
}

/* Make head available, as a driver would. */
static void
post(struct fixture *f, uint16_t head)
{
	f->vq.avail->ring[f->vq.avail->idx & (QSIZE - 1)] = head;
	f->vq.avail->idx = (uint16_t)(f->vq.avail->idx + 1);
}

static int
pop(struct fixture *f, bool indirect)
{
	return uvs_virtq_pop(&f->vq, &f->mem, indirect, &f->chain, &f->err);
}

static void
assert_seg(const struct uvs_chain *c, unsigned int i, uint64_t gpa, size_t len)
{
	assert_ptr_equal(c->iov[i].iov_base, host(gpa));
	assert_int_equal(c->iov[i].iov_len, len);
}

/* Pop a single malformed chain posted at head and check the failure reason. */
static void
assert_pop_refused(struct fixture *f, uint16_t head, bool indirect, enum uvs_chain_err why)
{
	uint16_t before = f->vq.last_avail_idx;

	post(f, head);
	assert_int_equal(pop(f, indirect), -EBADMSG);
	assert_int_equal(f->err, why);
	assert_int_equal(f->chain.head, head);
	assert_int_equal(f->chain.nout, 0);
	assert_int_equal(f->chain.nin, 0);
	assert_int_equal(f->chain.out_len, 0);
	assert_int_equal(f->chain.in_len, 0);
	/* Consumed all the same. */
	assert_int_equal(f->vq.last_avail_idx, (uint16_t)(before + 1));
	assert_int_equal(uvs_virtq_avail_count(&f->vq), 0);
}

/* --- uvs_mem_translate ----------------------------------------------------------------- */

static void
translate_inside_region_returns_host_address(void **state)
{
	struct fixture *f = *state;

	assert_ptr_equal(uvs_mem_translate(&f->mem, R0_GPA, REGION_SIZE), guest_mem);
	assert_ptr_equal(uvs_mem_translate(&f->mem, R1_GPA + 10, 20), guest_mem + 2 * MIB + 10);
	assert_ptr_equal(uvs_mem_translate(&f->mem, R2_GPA + REGION_SIZE - 1, 1),
			guest_mem + 2 * MIB - 1);
}

static void
translate_refuses_range_crossing_contiguous_regions(void **state)
{
	struct fixture *f = *state;

	assert_null(uvs_mem_translate(&f->mem, R1_GPA - 1, 2));
	assert_null(uvs_mem_translate(&f->mem, R0_GPA, REGION_SIZE + 1));
}

static void
translate_refuses_hole_and_past_end(void **state)
{
	struct fixture *f = *state;

	assert_null(uvs_mem_translate(&f->mem, HOLE_GPA, 1));
	assert_null(uvs_mem_translate(&f->mem, HOLE_GPA - 1, 2));
	assert_null(uvs_mem_translate(&f->mem, R2_GPA + REGION_SIZE - 1, 2));
	assert_null(uvs_mem_translate(&f->mem, R2_GPA + REGION_SIZE, 1));
	assert_null(uvs_mem_translate(&f->mem, R2_GPA - 1, 1));
}

static void
translate_refuses_gpa_len_overflow(void **state)
{
	struct fixture *f = *state;

	/* gpa + len wraps to 0x10: inside R0 if the sum were computed naively. */
	assert_null(uvs_mem_translate(&f->mem, UINT64_MAX - 0xf, 0x20));
	assert_null(uvs_mem_translate(&f->mem, 0x10, UINT64_MAX));
	assert_null(uvs_mem_translate(&f->mem, UINT64_MAX, UINT64_MAX));
}

static void
translate_allows_zero_length_inside_region(void **state)
{
	struct fixture *f = *state;

	assert_ptr_equal(uvs_mem_translate(&f->mem, R0_GPA + 5, 0), guest_mem + 5);
	assert_ptr_equal(uvs_mem_translate(&f->mem, R2_GPA + REGION_SIZE, 0), guest_mem + 2 * MIB);
	assert_null(uvs_mem_translate(&f->mem, HOLE_GPA + 1, 0));
}

static void
translate_ignores_region_whose_host_range_wraps(void **state)
{
	struct fixture *f = *state;

	f->mem.regions[2].hva = UINT64_MAX - 0x100;
	assert_null(uvs_mem_translate(&f->mem, R2_GPA + 0x200, 1));
	assert_null(uvs_mem_translate(&f->mem, R2_GPA, 1));
	/* The other regions still work. */
	assert_ptr_equal(uvs_mem_translate(&f->mem, R0_GPA, 1), guest_mem);
}

static void
translate_ignores_regions_beyond_nregions(void **state)
{
	struct fixture *f = *state;
	/* A decoy right after the array, where regions[UVS_MEM_MAX_REGIONS] would be. */
	struct {
		struct uvs_memtbl mem;
		struct uvs_mem_region decoy;
	} t;

	f->mem.nregions = 2;
	assert_null(uvs_mem_translate(&f->mem, R2_GPA, 1));

	/* A corrupt count is clamped to the array, not trusted. */
	assert_int_equal(offsetof(__typeof__(t), decoy),
			offsetof(struct uvs_memtbl, regions[UVS_MEM_MAX_REGIONS]));
	memset(&t, 0, sizeof(t));
	t.mem = f->mem;
	t.mem.nregions = UVS_MEM_MAX_REGIONS + 1;
	t.decoy = (struct uvs_mem_region){ HOLE_GPA, REGION_SIZE, (uint64_t)(uintptr_t)guest_mem };
	assert_null(uvs_mem_translate(&t.mem, HOLE_GPA, 1));
	assert_ptr_equal(uvs_mem_translate(&t.mem, R1_GPA, 1), guest_mem + 2 * MIB);
}

/* --- uvs_virtq_pop: well-formed chains --------------------------------------------------- */

static void
pop_empty_ring_returns_zero(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(uvs_virtq_avail_count(&f->vq), 0);
	assert_int_equal(pop(f, false), 0);
	assert_int_equal(f->err, UVS_CHAIN_OK);
	assert_int_equal(f->vq.last_avail_idx, 0);
}

static void
pop_single_readable_descriptor(void **state)
{
	struct fixture *f = *state;

	set_desc(f->vq.desc, 3, DATA_GPA, 100, 0, 0);
	post(f, 3);
	assert_int_equal(uvs_virtq_avail_count(&f->vq), 1);
	assert_int_equal(pop(f, false), 1);
	assert_int_equal(f->err, UVS_CHAIN_OK);
	assert_int_equal(f->chain.head, 3);
	assert_int_equal(f->chain.nout, 1);
	assert_int_equal(f->chain.nin, 0);
	assert_int_equal(f->chain.out_len, 100);
	assert_int_equal(f->chain.in_len, 0);
	assert_seg(&f->chain, 0, DATA_GPA, 100);
	assert_int_equal(f->vq.last_avail_idx, 1);
	assert_int_equal(pop(f, false), 0);
}

static void
unpop_gives_the_same_chain_again(void **state)
{
	struct fixture *f = *state;

	set_desc(f->vq.desc, 5, DATA_GPA, 64, 0, 0);
	post(f, 5);
	assert_int_equal(pop(f, false), 1);
	assert_int_equal(f->vq.last_avail_idx, 1);
	uvs_virtq_unpop(&f->vq);
	assert_int_equal(f->vq.last_avail_idx, 0);
	assert_int_equal(uvs_virtq_avail_count(&f->vq), 1);
	assert_int_equal(pop(f, false), 1);
	assert_int_equal(f->chain.head, 5);
	assert_int_equal(f->chain.out_len, 64);
	/* across the 16-bit wrap too */
	f->vq.last_avail_idx = 0;
	uvs_virtq_unpop(&f->vq);
	assert_int_equal(f->vq.last_avail_idx, 65535);
}

static void
pop_header_and_payload_chain(void **state)
{
	struct fixture *f = *state;

	set_desc(f->vq.desc, 0, DATA_GPA, 44, UVS_VRING_DESC_F_NEXT, 7);
	set_desc(f->vq.desc, 7, R2_DATA_GPA, 4096, 0, 0);
	post(f, 0);
	assert_int_equal(pop(f, false), 1);
	assert_int_equal(f->chain.head, 0);
	assert_int_equal(f->chain.nout, 2);
	assert_int_equal(f->chain.nin, 0);
	assert_int_equal(f->chain.out_len, 44 + 4096);
	assert_int_equal(f->chain.in_len, 0);
	assert_seg(&f->chain, 0, DATA_GPA, 44);
	assert_seg(&f->chain, 1, R2_DATA_GPA, 4096);
}

static void
pop_writable_chain(void **state)
{
	struct fixture *f = *state;

	set_desc(f->vq.desc, 5, DATA_GPA, 44, UVS_VRING_DESC_F_WRITE | UVS_VRING_DESC_F_NEXT, 6);
	set_desc(f->vq.desc, 6, R1_DATA_GPA, 65536, UVS_VRING_DESC_F_WRITE, 0);
	post(f, 5);
	assert_int_equal(pop(f, false), 1);
	assert_int_equal(f->chain.head, 5);
	assert_int_equal(f->chain.nout, 0);
	assert_int_equal(f->chain.nin, 2);
	assert_int_equal(f->chain.out_len, 0);
	assert_int_equal(f->chain.in_len, 44 + 65536);
	assert_seg(&f->chain, 0, DATA_GPA, 44);
	assert_seg(&f->chain, 1, R1_DATA_GPA, 65536);
}

static void
pop_readable_then_writable_chain(void **state)
{
	struct fixture *f = *state;

	set_desc(f->vq.desc, 2, DATA_GPA, 10, UVS_VRING_DESC_F_NEXT, 1);
	set_desc(f->vq.desc, 1, DATA_GPA + 0x100, 20, UVS_VRING_DESC_F_NEXT, 9);
	set_desc(f->vq.desc, 9, R2_DATA_GPA, 30, UVS_VRING_DESC_F_WRITE | UVS_VRING_DESC_F_NEXT,
			15);
	set_desc(f->vq.desc, 15, R1_DATA_GPA, 40, UVS_VRING_DESC_F_WRITE, 0);
	post(f, 2);
	assert_int_equal(pop(f, false), 1);
	assert_int_equal(f->chain.head, 2);
	assert_int_equal(f->chain.nout, 2);
	assert_int_equal(f->chain.nin, 2);
	assert_int_equal(f->chain.out_len, 30);
	assert_int_equal(f->chain.in_len, 70);
	assert_seg(&f->chain, 0, DATA_GPA, 10);
	assert_seg(&f->chain, 1, DATA_GPA + 0x100, 20);
	assert_seg(&f->chain, 2, R2_DATA_GPA, 30);
	assert_seg(&f->chain, 3, R1_DATA_GPA, 40);
}

static void
pop_splits_range_across_contiguous_regions(void **state)
{
	struct fixture *f = *state;

	/* 0x100 bytes before the R0/R1 boundary, 0x200 after it. */
	set_desc(f->vq.desc, 0, R1_GPA - 0x100, 0x300, UVS_VRING_DESC_F_NEXT, 1);
	set_desc(f->vq.desc, 1, R1_GPA - 0x10, 0x20, UVS_VRING_DESC_F_WRITE, 0);
	post(f, 0);
	assert_int_equal(pop(f, false), 1);
	assert_int_equal(f->chain.nout, 2);
	assert_int_equal(f->chain.nin, 2);
	assert_int_equal(f->chain.out_len, 0x300);
	assert_int_equal(f->chain.in_len, 0x20);
	assert_seg(&f->chain, 0, R1_GPA - 0x100, 0x100);
	assert_seg(&f->chain, 1, R1_GPA, 0x200);
	assert_seg(&f->chain, 2, R1_GPA - 0x10, 0x10);
	assert_seg(&f->chain, 3, R1_GPA, 0x10);
	/* The two halves really are apart in host memory. */
	assert_ptr_not_equal((uint8_t *)f->chain.iov[0].iov_base + 0x100, f->chain.iov[1].iov_base);
}

static void
pop_zero_length_descriptor_produces_no_segment(void **state)
{
	struct fixture *f = *state;

	/* Its address is never dereferenced, so even one in the hole is fine. */
	set_desc(f->vq.desc, 0, HOLE_GPA, 0, UVS_VRING_DESC_F_NEXT, 1);
	set_desc(f->vq.desc, 1, DATA_GPA, 8, UVS_VRING_DESC_F_NEXT, 2);
	set_desc(f->vq.desc, 2, 0, 0, UVS_VRING_DESC_F_WRITE, 0);
	post(f, 0);
	assert_int_equal(pop(f, false), 1);
	assert_int_equal(f->chain.nout, 1);
	assert_int_equal(f->chain.nin, 0);
	assert_int_equal(f->chain.out_len, 8);
	assert_int_equal(f->chain.in_len, 0);
	assert_seg(&f->chain, 0, DATA_GPA, 8);
}

static void
pop_chain_using_whole_table_is_accepted(void **state)
{
	struct fixture *f = *state;
	unsigned int i;

	for (i = 0; i < QSIZE; i++)
		set_desc(f->vq.desc, i, DATA_GPA + i * 0x100, 0x10,
				i + 1 < QSIZE ? UVS_VRING_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	post(f, 0);
	assert_int_equal(pop(f, false), 1);
	assert_int_equal(f->chain.nout, QSIZE);
	assert_int_equal(f->chain.out_len, QSIZE * 0x10);
	assert_seg(&f->chain, QSIZE - 1, DATA_GPA + (QSIZE - 1) * 0x100, 0x10);
}

static void
pop_exactly_max_bytes_is_accepted(void **state)
{
	struct fixture *f = *state;

	/* 1 MiB that also straddles R0/R1. */
	set_desc(f->vq.desc, 0, R1_GPA - MIB / 2, UVS_CHAIN_MAX_BYTES, UVS_VRING_DESC_F_WRITE, 0);
	post(f, 0);
	assert_int_equal(pop(f, false), 1);
	assert_int_equal(f->chain.nin, 2);
	assert_int_equal(f->chain.in_len, UVS_CHAIN_MAX_BYTES);
	assert_seg(&f->chain, 0, R1_GPA - MIB / 2, MIB / 2);
	assert_seg(&f->chain, 1, R1_GPA, MIB / 2);
}

static void
pop_one_byte_over_max_is_too_long(void **state)
{
	struct fixture *f = *state;

	set_desc(f->vq.desc, 0, DATA_GPA, 1, UVS_VRING_DESC_F_NEXT, 1);
	set_desc(f->vq.desc, 1, R1_GPA - MIB / 2, UVS_CHAIN_MAX_BYTES, UVS_VRING_DESC_F_WRITE, 0);
	assert_pop_refused(f, 0, false, UVS_CHAIN_TOO_LONG);
}

static void
pop_several_chains_in_order(void **state)
{
	struct fixture *f = *state;

	set_desc(f->vq.desc, 4, DATA_GPA, 1, 0, 0);
	set_desc(f->vq.desc, 8, DATA_GPA + 1, 2, UVS_VRING_DESC_F_WRITE, 0);
	post(f, 8);
	post(f, 4);
	assert_int_equal(uvs_virtq_avail_count(&f->vq), 2);
	assert_int_equal(pop(f, false), 1);
	assert_int_equal(f->chain.head, 8);
	assert_int_equal(f->chain.in_len, 2);
	assert_int_equal(pop(f, false), 1);
	assert_int_equal(f->chain.head, 4);
	assert_int_equal(f->chain.out_len, 1);
	assert_int_equal(pop(f, false), 0);
}

static void
pop_accepts_null_err(void **state)
{
	struct fixture *f = *state;

	set_desc(f->vq.desc, 0, HOLE_GPA, 1, 0, 0);
	set_desc(f->vq.desc, 1, DATA_GPA, 1, 0, 0);
	post(f, 0);
	post(f, 1);
	assert_int_equal(uvs_virtq_pop(&f->vq, &f->mem, false, &f->chain, NULL), -EBADMSG);
	assert_int_equal(f->chain.head, 0);
	assert_int_equal(uvs_virtq_pop(&f->vq, &f->mem, false, &f->chain, NULL), 1);
	assert_int_equal(f->chain.head, 1);
}

static void
pop_after_malformed_chain_continues_with_next(void **state)
{
	struct fixture *f = *state;

	set_desc(f->vq.desc, 0, DATA_GPA, 1, UVS_VRING_DESC_F_NEXT, QSIZE);
	set_desc(f->vq.desc, 1, DATA_GPA, 7, 0, 0);
	assert_pop_refused(f, 0, false, UVS_CHAIN_BAD_NEXT);
	post(f, 1);
	assert_int_equal(pop(f, false), 1);
	assert_int_equal(f->err, UVS_CHAIN_OK);
	assert_int_equal(f->chain.head, 1);
	assert_int_equal(f->chain.out_len, 7);
}

/* --- uvs_virtq_pop: hostile chains ------------------------------------------------------- */

static void
pop_range_in_hole_is_bad_addr(void **state)
{
	struct fixture *f = *state;

	set_desc(f->vq.desc, 0, HOLE_GPA + 0x100, 16, 0, 0);
	assert_pop_refused(f, 0, false, UVS_CHAIN_BAD_ADDR);
}

static void
pop_range_running_into_hole_is_bad_addr(void **state)
{
	struct fixture *f = *state;

	/* Starts in R1, whose end is not followed by another region. */
	set_desc(f->vq.desc, 0, HOLE_GPA - 8, 16, UVS_VRING_DESC_F_WRITE, 0);
	assert_pop_refused(f, 0, false, UVS_CHAIN_BAD_ADDR);
}

static void
pop_range_past_last_region_is_bad_addr(void **state)
{
	struct fixture *f = *state;

	set_desc(f->vq.desc, 0, DATA_GPA, 4, UVS_VRING_DESC_F_NEXT, 1);
	set_desc(f->vq.desc, 1, R2_GPA + REGION_SIZE - 1, 2, 0, 0);
	assert_pop_refused(f, 0, false, UVS_CHAIN_BAD_ADDR);
}

static void
pop_gpa_len_overflow_is_bad_addr(void **state)
{
	struct fixture *f = *state;

	/* addr + len wraps to 0x10, inside R0. */
	set_desc(f->vq.desc, 0, UINT64_MAX - 0xf, 0x20, 0, 0);
	assert_pop_refused(f, 0, false, UVS_CHAIN_BAD_ADDR);

	/* Even when a region ends exactly at 2^64: its last bytes are "contiguous" with R0
	 * only modulo 2^64, and the range must not be split across the wrap. */
	f->mem.regions[3] = (struct uvs_mem_region){ 0ull - 0x1000, 0x1000,
		(uint64_t)(uintptr_t)(guest_mem + 0x8000) };
	f->mem.nregions = 4;
	set_desc(f->vq.desc, 0, UINT64_MAX - 0x1f, 0x10, 0, 0);
	post(f, 0);
	assert_int_equal(pop(f, false), 1);
	assert_ptr_equal(f->chain.iov[0].iov_base, guest_mem + 0x8000 + 0x1000 - 0x20);
	assert_int_equal(f->chain.iov[0].iov_len, 0x10);
	set_desc(f->vq.desc, 0, UINT64_MAX - 0xf, 0x20, 0, 0);
	assert_pop_refused(f, 0, false, UVS_CHAIN_BAD_ADDR);
	/* gpa + len must be representable: a range ending exactly at 2^64 is refused too. */
	set_desc(f->vq.desc, 0, UINT64_MAX - 0xf, 0x10, 0, 0);
	assert_pop_refused(f, 0, false, UVS_CHAIN_BAD_ADDR);
}

static void
pop_next_out_of_range_is_bad_next(void **state)
{
	struct fixture *f = *state;

	set_desc(f->vq.desc, 0, DATA_GPA, 4, UVS_VRING_DESC_F_NEXT, QSIZE);
	assert_pop_refused(f, 0, false, UVS_CHAIN_BAD_NEXT);
	set_desc(f->vq.desc, 0, DATA_GPA, 4, UVS_VRING_DESC_F_NEXT, 0xffff);
	assert_pop_refused(f, 0, false, UVS_CHAIN_BAD_NEXT);
}

static void
pop_self_loop_is_loop(void **state)
{
	struct fixture *f = *state;

	set_desc(f->vq.desc, 6, DATA_GPA, 4, UVS_VRING_DESC_F_NEXT, 6);
	assert_pop_refused(f, 6, false, UVS_CHAIN_LOOP);
}

static void
pop_two_cycle_is_loop(void **state)
{
	struct fixture *f = *state;

	set_desc(f->vq.desc, 0, DATA_GPA, 4, UVS_VRING_DESC_F_NEXT, 1);
	set_desc(f->vq.desc, 1, DATA_GPA, 4, UVS_VRING_DESC_F_NEXT, 2);
	set_desc(f->vq.desc, 2, DATA_GPA, 4, UVS_VRING_DESC_F_NEXT, 1);
	assert_pop_refused(f, 0, false, UVS_CHAIN_LOOP);
}

static void
pop_chain_longer_than_table_is_loop(void **state)
{
	struct fixture *f = *state;
	unsigned int i;

	/* 0 -> 1 -> ... -> 15 -> 0: one more descriptor than the table holds. */
	for (i = 0; i < QSIZE; i++)
		set_desc(f->vq.desc, i, DATA_GPA, 1, UVS_VRING_DESC_F_NEXT,
				(uint16_t)((i + 1) % QSIZE));
	assert_pop_refused(f, 0, false, UVS_CHAIN_LOOP);

	/* 16 x 64 KiB is exactly UVS_CHAIN_MAX_BYTES: the 17th descriptor must be refused as a
	 * loop before its length is added (a later loop check would report TOO_LONG). */
	for (i = 0; i < QSIZE; i++)
		set_desc(f->vq.desc, i, R1_DATA_GPA, UVS_CHAIN_MAX_BYTES / QSIZE,
				UVS_VRING_DESC_F_NEXT, (uint16_t)((i + 1) % QSIZE));
	assert_pop_refused(f, 0, false, UVS_CHAIN_LOOP);
}

static void
pop_walk_is_bounded_whatever_the_table_size(void **state)
{
	struct fixture *f = *state;
	struct uvs_vring_desc *t = indir(INDIR_GPA);
	unsigned int i, n = UVS_CHAIN_MAX_DESCS;

	/* The indirect descriptor and a 256-entry table holding n - 1 empty descriptors and a
	 * last one with data: n + 1 descriptors. A walk bounded by the table size alone
	 * followed it, and a loop over such a table cost 257 reads. */
	for (i = 0; i < n - 1; i++)
		set_desc(t, i, 0, 0, UVS_VRING_DESC_F_NEXT, (uint16_t)(i + 1));
	set_desc(t, n - 1, DATA_GPA, 4, 0, 0);
	set_desc(f->vq.desc, 0, INDIR_GPA, 256 * 16, UVS_VRING_DESC_F_INDIRECT, 0);
	assert_pop_refused(f, 0, true, UVS_CHAIN_LOOP);

	/* n in all are accepted. */
	set_desc(t, n - 2, DATA_GPA, 4, 0, 0);
	post(f, 0);
	assert_int_equal(pop(f, true), 1);
	assert_int_equal(f->chain.nout, 1);
	assert_int_equal(f->chain.out_len, 4);

	/* A loop over the whole table is cut at the same bound. */
	for (i = 0; i < 256; i++)
		set_desc(t, i, 0, 0, UVS_VRING_DESC_F_NEXT, (uint16_t)((i + 1) % 256));
	assert_pop_refused(f, 0, true, UVS_CHAIN_LOOP);
}

static void
pop_too_many_segments_is_refused(void **state)
{
	struct fixture *f = *state;
	struct uvs_vring_desc *t = indir(INDIR_GPA);
	unsigned int i, n = UVS_CHAIN_MAX_SEGS + 1;

	for (i = 0; i < n; i++)
		set_desc(t, i, DATA_GPA + i, 1, i + 1 < n ? UVS_VRING_DESC_F_NEXT : 0,
				(uint16_t)(i + 1));
	set_desc(f->vq.desc, 0, INDIR_GPA, n * 16, UVS_VRING_DESC_F_INDIRECT, 0);
	assert_pop_refused(f, 0, true, UVS_CHAIN_TOO_MANY_SEGS);

	/* One fewer is exactly the limit and is accepted. */
	set_desc(t, n - 2, DATA_GPA + n - 2, 1, 0, 0);
	post(f, 0);
	assert_int_equal(pop(f, true), 1);
	assert_int_equal(f->chain.nout, UVS_CHAIN_MAX_SEGS);
	assert_int_equal(f->chain.out_len, UVS_CHAIN_MAX_SEGS);
	assert_seg(&f->chain, UVS_CHAIN_MAX_SEGS - 1, DATA_GPA + UVS_CHAIN_MAX_SEGS - 1, 1);
}

static void
pop_region_split_counts_towards_segment_limit(void **state)
{
	struct fixture *f = *state;
	struct uvs_vring_desc *t = indir(INDIR_GPA);
	unsigned int i, n = UVS_CHAIN_MAX_SEGS / 2;

	/* 32 descriptors of 2 segments each is exactly the limit... */
	for (i = 0; i < n; i++)
		set_desc(t, i, R1_GPA - 1, 2, UVS_VRING_DESC_F_NEXT, (uint16_t)(i + 1));
	/* ...and a final 1-byte descriptor is one too many. */
	set_desc(t, n, DATA_GPA, 1, 0, 0);
	set_desc(f->vq.desc, 0, INDIR_GPA, (n + 1) * 16, UVS_VRING_DESC_F_INDIRECT, 0);
	assert_pop_refused(f, 0, true, UVS_CHAIN_TOO_MANY_SEGS);
}

static void
pop_too_long_is_refused(void **state)
{
	struct fixture *f = *state;

	/* Two valid 600 KiB ranges: 1.2 MiB in total. */
	set_desc(f->vq.desc, 0, R1_GPA, 600 * 1024, UVS_VRING_DESC_F_NEXT, 1);
	set_desc(f->vq.desc, 1, R2_GPA, 600 * 1024, 0, 0);
	assert_pop_refused(f, 0, false, UVS_CHAIN_TOO_LONG);
}

static void
pop_too_long_with_huge_len_is_refused(void **state)
{
	struct fixture *f = *state;

	/* The sum of lengths would wrap a 32-bit counter: 0x10 + 0xfffffff8. */
	set_desc(f->vq.desc, 0, DATA_GPA, 0x10, UVS_VRING_DESC_F_NEXT, 1);
	set_desc(f->vq.desc, 1, DATA_GPA, 0xfffffff8u, 0, 0);
	assert_pop_refused(f, 0, false, UVS_CHAIN_TOO_LONG);
}

static void
pop_readable_after_writable_is_order(void **state)
{
	struct fixture *f = *state;

	set_desc(f->vq.desc, 0, DATA_GPA, 4, UVS_VRING_DESC_F_NEXT, 1);
	set_desc(f->vq.desc, 1, DATA_GPA, 4, UVS_VRING_DESC_F_WRITE | UVS_VRING_DESC_F_NEXT, 2);
	set_desc(f->vq.desc, 2, DATA_GPA, 4, 0, 0);
	assert_pop_refused(f, 0, false, UVS_CHAIN_ORDER);
}

static void
pop_readable_after_empty_writable_is_order(void **state)
{
	struct fixture *f = *state;

	set_desc(f->vq.desc, 0, DATA_GPA, 0, UVS_VRING_DESC_F_WRITE | UVS_VRING_DESC_F_NEXT, 1);
	set_desc(f->vq.desc, 1, DATA_GPA, 4, 0, 0);
	assert_pop_refused(f, 0, false, UVS_CHAIN_ORDER);
}

static void
pop_head_out_of_range_is_bad_head(void **state)
{
	struct fixture *f = *state;

	assert_pop_refused(f, QSIZE, false, UVS_CHAIN_BAD_HEAD);
	assert_pop_refused(f, 0xffff, false, UVS_CHAIN_BAD_HEAD);
}

static void
pop_avail_idx_jump_beyond_size_is_eio(void **state)
{
	struct fixture *f = *state;

	f->vq.last_avail_idx = 100;
	f->vq.avail->idx = 100 + QSIZE + 1;
	assert_int_equal(pop(f, false), -EIO);
	assert_int_equal(f->vq.last_avail_idx, 100);
	/* Backwards is the same thing modulo 2^16. */
	f->vq.avail->idx = 99;
	assert_int_equal(pop(f, false), -EIO);
	assert_int_equal(f->vq.last_avail_idx, 100);

	/* Exactly size pending is legal. */
	set_desc(f->vq.desc, 0, DATA_GPA, 1, 0, 0);
	f->vq.avail->idx = 100 + QSIZE;
	assert_int_equal(uvs_virtq_avail_count(&f->vq), QSIZE);
	assert_int_equal(pop(f, false), 1);
	assert_int_equal(f->chain.head, 0);
	assert_int_equal(f->vq.last_avail_idx, 101);
}

/* --- indirect tables --------------------------------------------------------------------- */

static void
pop_indirect_table(void **state)
{
	struct fixture *f = *state;
	struct uvs_vring_desc *t = indir(INDIR_GPA);

	set_desc(t, 0, DATA_GPA, 44, UVS_VRING_DESC_F_NEXT, 2);
	set_desc(t, 2, R1_GPA - 4, 8, UVS_VRING_DESC_F_WRITE | UVS_VRING_DESC_F_NEXT, 1);
	set_desc(t, 1, R2_DATA_GPA, 100, UVS_VRING_DESC_F_WRITE, 0);
	/* The WRITE flag of the descriptor naming the table is ignored (spec 2.7.5.3.2). */
	set_desc(f->vq.desc, 9, INDIR_GPA, 3 * 16,
			UVS_VRING_DESC_F_INDIRECT | UVS_VRING_DESC_F_WRITE, 0);
	post(f, 9);
	assert_int_equal(pop(f, true), 1);
	assert_int_equal(f->err, UVS_CHAIN_OK);
	assert_int_equal(f->chain.head, 9);
	assert_int_equal(f->chain.nout, 1);
	assert_int_equal(f->chain.nin, 3);
	assert_int_equal(f->chain.out_len, 44);
	assert_int_equal(f->chain.in_len, 108);
	assert_seg(&f->chain, 0, DATA_GPA, 44);
	assert_seg(&f->chain, 1, R1_GPA - 4, 4);
	assert_seg(&f->chain, 2, R1_GPA, 4);
	assert_seg(&f->chain, 3, R2_DATA_GPA, 100);
}

static void
pop_direct_descriptor_then_indirect_table(void **state)
{
	struct fixture *f = *state;
	struct uvs_vring_desc *t = indir(INDIR_GPA);

	set_desc(t, 0, R2_DATA_GPA, 64, UVS_VRING_DESC_F_WRITE, 0);
	set_desc(f->vq.desc, 3, DATA_GPA, 44, UVS_VRING_DESC_F_NEXT, 4);
	set_desc(f->vq.desc, 4, INDIR_GPA, 16, UVS_VRING_DESC_F_INDIRECT, 0);
	post(f, 3);
	assert_int_equal(pop(f, true), 1);
	assert_int_equal(f->chain.nout, 1);
	assert_int_equal(f->chain.nin, 1);
	assert_seg(&f->chain, 0, DATA_GPA, 44);
	assert_seg(&f->chain, 1, R2_DATA_GPA, 64);
}

static void
pop_indirect_table_of_max_entries_is_accepted(void **state)
{
	struct fixture *f = *state;

	/* 32768 entries = 512 KiB, in R1; only entry 0 is used. */
	set_desc(indir(R1_GPA), 0, DATA_GPA, 5, 0, 0);
	set_desc(f->vq.desc, 0, R1_GPA, UVS_VIRTQ_MAX_SIZE * 16, UVS_VRING_DESC_F_INDIRECT, 0);
	post(f, 0);
	assert_int_equal(pop(f, true), 1);
	assert_int_equal(f->chain.nout, 1);
	assert_int_equal(f->chain.out_len, 5);
}

static void
pop_indirect_len_not_multiple_of_16_is_bad_indirect(void **state)
{
	struct fixture *f = *state;

	set_desc(f->vq.desc, 0, INDIR_GPA, 24, UVS_VRING_DESC_F_INDIRECT, 0);
	assert_pop_refused(f, 0, true, UVS_CHAIN_BAD_INDIRECT);
	set_desc(f->vq.desc, 0, INDIR_GPA, 15, UVS_VRING_DESC_F_INDIRECT, 0);
	assert_pop_refused(f, 0, true, UVS_CHAIN_BAD_INDIRECT);
}

static void
pop_indirect_len_zero_is_bad_indirect(void **state)
{
	struct fixture *f = *state;

	set_desc(f->vq.desc, 0, INDIR_GPA, 0, UVS_VRING_DESC_F_INDIRECT, 0);
	assert_pop_refused(f, 0, true, UVS_CHAIN_BAD_INDIRECT);
}

static void
pop_indirect_too_many_entries_is_bad_indirect(void **state)
{
	struct fixture *f = *state;

	/* Inside R1 and with a valid first entry, but one entry more than a ring may have. */
	set_desc(indir(R1_GPA), 0, DATA_GPA, 5, 0, 0);
	set_desc(f->vq.desc, 0, R1_GPA, (UVS_VIRTQ_MAX_SIZE + 1) * 16, UVS_VRING_DESC_F_INDIRECT,
			0);
	assert_pop_refused(f, 0, true, UVS_CHAIN_BAD_INDIRECT);
	set_desc(f->vq.desc, 0, R1_GPA, 0xfffffff0u, UVS_VRING_DESC_F_INDIRECT, 0);
	assert_pop_refused(f, 0, true, UVS_CHAIN_BAD_INDIRECT);
}

static void
pop_nested_indirect_is_bad_indirect(void **state)
{
	struct fixture *f = *state;

	set_desc(indir(INDIR2_GPA), 0, DATA_GPA, 4, 0, 0);
	set_desc(indir(INDIR_GPA), 0, DATA_GPA, 4, UVS_VRING_DESC_F_NEXT, 1);
	set_desc(indir(INDIR_GPA), 1, INDIR2_GPA, 16, UVS_VRING_DESC_F_INDIRECT, 0);
	set_desc(f->vq.desc, 0, INDIR_GPA, 2 * 16, UVS_VRING_DESC_F_INDIRECT, 0);
	assert_pop_refused(f, 0, true, UVS_CHAIN_BAD_INDIRECT);
}

static void
pop_indirect_when_not_negotiated_is_bad_indirect(void **state)
{
	struct fixture *f = *state;

	set_desc(indir(INDIR_GPA), 0, DATA_GPA, 4, 0, 0);
	set_desc(f->vq.desc, 0, INDIR_GPA, 16, UVS_VRING_DESC_F_INDIRECT, 0);
	assert_pop_refused(f, 0, false, UVS_CHAIN_BAD_INDIRECT);
}

static void
pop_indirect_with_next_is_bad_indirect(void **state)
{
	struct fixture *f = *state;

	set_desc(indir(INDIR_GPA), 0, DATA_GPA, 4, 0, 0);
	set_desc(f->vq.desc, 1, DATA_GPA, 4, 0, 0);
	set_desc(f->vq.desc, 0, INDIR_GPA, 16, UVS_VRING_DESC_F_INDIRECT | UVS_VRING_DESC_F_NEXT,
			1);
	assert_pop_refused(f, 0, true, UVS_CHAIN_BAD_INDIRECT);
}

static void
pop_indirect_table_outside_memory_is_bad_addr(void **state)
{
	struct fixture *f = *state;

	set_desc(f->vq.desc, 0, HOLE_GPA, 16, UVS_VRING_DESC_F_INDIRECT, 0);
	assert_pop_refused(f, 0, true, UVS_CHAIN_BAD_ADDR);
	/* A table straddling R0/R1 is refused too: tables are read in place. */
	set_desc(f->vq.desc, 0, R1_GPA - 16, 32, UVS_VRING_DESC_F_INDIRECT, 0);
	assert_pop_refused(f, 0, true, UVS_CHAIN_BAD_ADDR);
}

static void
pop_indirect_table_misaligned_is_bad_indirect(void **state)
{
	struct fixture *f = *state;

	set_desc(f->vq.desc, 0, INDIR_GPA + 4, 16, UVS_VRING_DESC_F_INDIRECT, 0);
	assert_pop_refused(f, 0, true, UVS_CHAIN_BAD_INDIRECT);
}

static void
pop_indirect_next_beyond_table_is_bad_next(void **state)
{
	struct fixture *f = *state;

	/* Index 2 exists in the ring's table but not in this 2-entry indirect table. */
	set_desc(indir(INDIR_GPA), 0, DATA_GPA, 4, UVS_VRING_DESC_F_NEXT, 1);
	set_desc(indir(INDIR_GPA), 1, DATA_GPA, 4, UVS_VRING_DESC_F_NEXT, 2);
	set_desc(indir(INDIR_GPA), 2, DATA_GPA, 4, 0, 0);
	set_desc(f->vq.desc, 0, INDIR_GPA, 2 * 16, UVS_VRING_DESC_F_INDIRECT, 0);
	assert_pop_refused(f, 0, true, UVS_CHAIN_BAD_NEXT);
}

static void
pop_indirect_loop_is_loop(void **state)
{
	struct fixture *f = *state;

	set_desc(indir(INDIR_GPA), 0, DATA_GPA, 4, UVS_VRING_DESC_F_NEXT, 1);
	set_desc(indir(INDIR_GPA), 1, DATA_GPA, 4, UVS_VRING_DESC_F_NEXT, 0);
	set_desc(f->vq.desc, 0, INDIR_GPA, 2 * 16, UVS_VRING_DESC_F_INDIRECT, 0);
	assert_pop_refused(f, 0, true, UVS_CHAIN_LOOP);
}

static void
pop_indirect_readable_after_writable_is_order(void **state)
{
	struct fixture *f = *state;

	/* The order rule spans the direct part and the indirect table. */
	set_desc(indir(INDIR_GPA), 0, DATA_GPA, 4, 0, 0);
	set_desc(f->vq.desc, 0, DATA_GPA, 4, UVS_VRING_DESC_F_WRITE | UVS_VRING_DESC_F_NEXT, 1);
	set_desc(f->vq.desc, 1, INDIR_GPA, 16, UVS_VRING_DESC_F_INDIRECT, 0);
	assert_pop_refused(f, 0, true, UVS_CHAIN_ORDER);
}

/* --- used ring --------------------------------------------------------------------------- */

static void
push_publish_writes_used_ring_and_idx(void **state)
{
	struct fixture *f = *state;

	uvs_virtq_push(&f->vq, 7, 100);
	uvs_virtq_push(&f->vq, 3, 0);
	/* Nothing visible before publish. */
	assert_int_equal(f->vq.used->idx, 0);
	assert_int_equal(f->vq.used_idx, 2);
	assert_true(uvs_virtq_publish(&f->vq));
	assert_int_equal(f->vq.used->idx, 2);
	assert_int_equal(f->vq.signalled_used, 2);
	assert_int_equal(f->vq.used->ring[0].id, 7);
	assert_int_equal(f->vq.used->ring[0].len, 100);
	assert_int_equal(f->vq.used->ring[1].id, 3);
	assert_int_equal(f->vq.used->ring[1].len, 0);
	assert_int_equal(f->vq.used->ring[2].id, 0);
}

static void
publish_with_nothing_new_returns_false(void **state)
{
	struct fixture *f = *state;

	assert_false(uvs_virtq_publish(&f->vq));
	assert_int_equal(f->vq.used->idx, 0);
	uvs_virtq_push(&f->vq, 1, 1);
	assert_true(uvs_virtq_publish(&f->vq));
	assert_false(uvs_virtq_publish(&f->vq));
	assert_int_equal(f->vq.used->idx, 1);
}

static void
publish_honours_no_interrupt(void **state)
{
	struct fixture *f = *state;

	f->vq.avail->flags = UVS_VRING_AVAIL_F_NO_INTERRUPT;
	uvs_virtq_push(&f->vq, 2, 10);
	assert_false(uvs_virtq_publish(&f->vq));
	/* Published all the same, and not signalled again once interrupts come back. */
	assert_int_equal(f->vq.used->idx, 1);
	assert_int_equal(f->vq.signalled_used, 1);
	f->vq.avail->flags = 0;
	assert_false(uvs_virtq_publish(&f->vq));
	uvs_virtq_push(&f->vq, 4, 10);
	assert_true(uvs_virtq_publish(&f->vq));
	assert_int_equal(f->vq.used->idx, 2);
	/* Other avail flag bits do not suppress it. */
	f->vq.avail->flags = 0x8000;
	uvs_virtq_push(&f->vq, 5, 10);
	assert_true(uvs_virtq_publish(&f->vq));
}

static void
indexes_wrap_around_at_65536(void **state)
{
	struct fixture *f = *state;
	unsigned int i;

	f->vq.last_avail_idx = 65530;
	f->vq.avail->idx = 65530;
	f->vq.used_idx = 65530;
	f->vq.signalled_used = 65530;
	f->vq.used->idx = 65530;
	for (i = 0; i < QSIZE; i++)
		set_desc(f->vq.desc, i, DATA_GPA + i, 1, 0, 0);

	/* 12 chains: avail idx runs 65530 .. 65535, 0 .. 5. */
	for (i = 0; i < 12; i++) {
		post(f, (uint16_t)(i % QSIZE));
		if (i == 5)
			assert_int_equal(f->vq.avail->idx, 0);
	}
	assert_int_equal(uvs_virtq_avail_count(&f->vq), 12);
	for (i = 0; i < 12; i++) {
		assert_int_equal(pop(f, false), 1);
		assert_int_equal(f->chain.head, i % QSIZE);
		assert_seg(&f->chain, 0, DATA_GPA + i % QSIZE, 1);
		uvs_virtq_push(&f->vq, f->chain.head, i);
	}
	assert_int_equal(pop(f, false), 0);
	assert_int_equal(f->vq.last_avail_idx, 6);
	assert_true(uvs_virtq_publish(&f->vq));
	assert_int_equal(f->vq.used->idx, 6);
	/* Entry for used index 65535 is at slot 15, for 0 at slot 0. */
	assert_int_equal(f->vq.used->ring[65535 & (QSIZE - 1)].id, 5);
	assert_int_equal(f->vq.used->ring[0].id, 6);
	assert_int_equal(f->vq.used->ring[0].len, 6);
	assert_int_equal(f->vq.used->ring[65530 & (QSIZE - 1)].id, 0);
}

static void
set_notify_toggles_flag(void **state)
{
	struct fixture *f = *state;

	f->vq.used->flags = 0x8000; /* an unrelated bit that must survive */
	uvs_virtq_set_notify(&f->vq, false);
	assert_int_equal(f->vq.used->flags, 0x8000 | UVS_VRING_USED_F_NO_NOTIFY);
	uvs_virtq_set_notify(&f->vq, false);
	assert_int_equal(f->vq.used->flags, 0x8000 | UVS_VRING_USED_F_NO_NOTIFY);
	uvs_virtq_set_notify(&f->vq, true);
	assert_int_equal(f->vq.used->flags, 0x8000);
	uvs_virtq_set_notify(&f->vq, true);
	assert_int_equal(f->vq.used->flags, 0x8000);
}

/* --- iov copy helpers -------------------------------------------------------------------- */

static uint8_t seg_a[5], seg_b[3], seg_c[4];

static void
iov_setup(struct iovec iov[4])
{
	unsigned int i;

	for (i = 0; i < sizeof(seg_a); i++)
		seg_a[i] = (uint8_t)('a' + i);
	for (i = 0; i < sizeof(seg_b); i++)
		seg_b[i] = (uint8_t)('f' + i);
	for (i = 0; i < sizeof(seg_c); i++)
		seg_c[i] = (uint8_t)('i' + i);
	iov[0] = (struct iovec){ seg_a, sizeof(seg_a) };
	iov[1] = (struct iovec){ NULL, 0 }; /* an empty segment is skipped */
	iov[2] = (struct iovec){ seg_b, sizeof(seg_b) };
	iov[3] = (struct iovec){ seg_c, sizeof(seg_c) };
}

static void
iov_to_buf_copies_across_segments(void **state)
{
	struct iovec iov[4];
	char buf[16];

	(void)state;
	iov_setup(iov);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(uvs_iov_to_buf(iov, 4, 0, buf, 12), 12);
	assert_memory_equal(buf, "abcdefghijkl", 12);

	memset(buf, 0, sizeof(buf));
	assert_int_equal(uvs_iov_to_buf(iov, 4, 3, buf, 6), 6);
	assert_memory_equal(buf, "defghi\0", 7);

	/* Offset exactly on a boundary. */
	memset(buf, 0, sizeof(buf));
	assert_int_equal(uvs_iov_to_buf(iov, 4, 8, buf, 2), 2);
	assert_memory_equal(buf, "ij\0", 3);
}

static void
iov_to_buf_stops_at_end(void **state)
{
	struct iovec iov[4];
	char buf[16];

	(void)state;
	iov_setup(iov);
	memset(buf, 'z', sizeof(buf));
	assert_int_equal(uvs_iov_to_buf(iov, 4, 10, buf, 16), 2);
	assert_memory_equal(buf, "klz", 3);
	assert_int_equal(uvs_iov_to_buf(iov, 4, 12, buf, 16), 0);
	assert_int_equal(uvs_iov_to_buf(iov, 4, 1000, buf, 16), 0);
	assert_int_equal(uvs_iov_to_buf(iov, 4, UINT32_MAX, buf, 16), 0);
	assert_int_equal(uvs_iov_to_buf(iov, 0, 0, buf, 16), 0);
	assert_int_equal(uvs_iov_to_buf(iov, 4, 0, buf, 0), 0);
	/* Only the first n segments count. */
	assert_int_equal(uvs_iov_to_buf(iov, 2, 0, buf, 16), 5);
	assert_memory_equal(buf, "abcdez", 6);
}

static void
iov_from_buf_copies_across_segments(void **state)
{
	struct iovec iov[4];

	(void)state;
	iov_setup(iov);
	assert_int_equal(uvs_iov_from_buf(iov, 4, 4, "XYZW", 4), 4);
	assert_memory_equal(seg_a, "abcdX", 5);
	assert_memory_equal(seg_b, "YZW", 3);
	assert_memory_equal(seg_c, "ijkl", 4);

	assert_int_equal(uvs_iov_from_buf(iov, 4, 0, "0123456789AB", 12), 12);
	assert_memory_equal(seg_a, "01234", 5);
	assert_memory_equal(seg_b, "567", 3);
	assert_memory_equal(seg_c, "89AB", 4);
}

static void
iov_from_buf_stops_at_end(void **state)
{
	struct iovec iov[4];

	(void)state;
	iov_setup(iov);
	assert_int_equal(uvs_iov_from_buf(iov, 4, 9, "PQRSTU", 6), 3);
	assert_memory_equal(seg_c, "iPQR", 4);
	assert_memory_equal(seg_b, "fgh", 3);
	assert_int_equal(uvs_iov_from_buf(iov, 4, 12, "PQ", 2), 0);
	assert_int_equal(uvs_iov_from_buf(iov, 4, UINT32_MAX, "PQ", 2), 0);
	assert_memory_equal(seg_a, "abcde", 5);
	assert_memory_equal(seg_c, "iPQR", 4);
}

#define T(fn) cmocka_unit_test_setup(fn, setup)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(translate_inside_region_returns_host_address),
		T(translate_refuses_range_crossing_contiguous_regions),
		T(translate_refuses_hole_and_past_end),
		T(translate_refuses_gpa_len_overflow),
		T(translate_allows_zero_length_inside_region),
		T(translate_ignores_region_whose_host_range_wraps),
		T(translate_ignores_regions_beyond_nregions),
		T(pop_empty_ring_returns_zero),
		T(pop_single_readable_descriptor),
		T(unpop_gives_the_same_chain_again),
		T(pop_header_and_payload_chain),
		T(pop_writable_chain),
		T(pop_readable_then_writable_chain),
		T(pop_splits_range_across_contiguous_regions),
		T(pop_zero_length_descriptor_produces_no_segment),
		T(pop_chain_using_whole_table_is_accepted),
		T(pop_exactly_max_bytes_is_accepted),
		T(pop_several_chains_in_order),
		T(pop_accepts_null_err),
		T(pop_after_malformed_chain_continues_with_next),
		T(pop_range_in_hole_is_bad_addr),
		T(pop_range_running_into_hole_is_bad_addr),
		T(pop_range_past_last_region_is_bad_addr),
		T(pop_gpa_len_overflow_is_bad_addr),
		T(pop_next_out_of_range_is_bad_next),
		T(pop_self_loop_is_loop),
		T(pop_two_cycle_is_loop),
		T(pop_chain_longer_than_table_is_loop),
		T(pop_walk_is_bounded_whatever_the_table_size),
		T(pop_too_many_segments_is_refused),
		T(pop_region_split_counts_towards_segment_limit),
		T(pop_too_long_is_refused),
		T(pop_one_byte_over_max_is_too_long),
		T(pop_too_long_with_huge_len_is_refused),
		T(pop_readable_after_writable_is_order),
		T(pop_readable_after_empty_writable_is_order),
		T(pop_head_out_of_range_is_bad_head),
		T(pop_avail_idx_jump_beyond_size_is_eio),
		T(pop_indirect_table),
		T(pop_direct_descriptor_then_indirect_table),
		T(pop_indirect_table_of_max_entries_is_accepted),
		T(pop_indirect_len_not_multiple_of_16_is_bad_indirect),
		T(pop_indirect_len_zero_is_bad_indirect),
		T(pop_indirect_too_many_entries_is_bad_indirect),
		T(pop_nested_indirect_is_bad_indirect),
		T(pop_indirect_when_not_negotiated_is_bad_indirect),
		T(pop_indirect_with_next_is_bad_indirect),
		T(pop_indirect_table_outside_memory_is_bad_addr),
		T(pop_indirect_table_misaligned_is_bad_indirect),
		T(pop_indirect_next_beyond_table_is_bad_next),
		T(pop_indirect_loop_is_loop),
		T(pop_indirect_readable_after_writable_is_order),
		T(push_publish_writes_used_ring_and_idx),
		T(publish_with_nothing_new_returns_false),
		T(publish_honours_no_interrupt),
		T(indexes_wrap_around_at_65536),
		T(set_notify_toggles_flag),
		T(iov_to_buf_copies_across_segments),
		T(iov_to_buf_stops_at_end),
		T(iov_from_buf_copies_across_segments),
		T(iov_from_buf_stops_at_end),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
