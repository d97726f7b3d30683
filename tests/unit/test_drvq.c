/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of lib/uvs_drvq.c, the driver side of a split virtqueue, against the device side
 * of lib/uvs_virtq.c over one memory region: what the driver posts, the device pops with the
 * right addresses and directions; what the device returns, the driver takes back; a device
 * that writes impossible used entries is caught.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "uvs_drvq.h"
#include "uvs_virtq.h"

#define QSIZE 8u
#define MEM_SIZE (256u * 1024u)
#define RING_GPA 0x1000u
#define BUF_GPA 0x10000u
#define BUF_SIZE 4096u

static _Alignas(4096) uint8_t mem[MEM_SIZE];

struct fixture {
	struct uvs_drvq q;   /* driver */
	struct uvs_virtq vq; /* device */
	struct uvs_memtbl tbl;
	struct uvs_chain chain;
};

static struct fixture fx;

static int
setup(void **state)
{
	memset(mem, 0xee, sizeof(mem)); /* init must zero the ring itself */
	memset(&fx, 0, sizeof(fx));
	assert_int_equal(uvs_drvq_init(&fx.q, mem + RING_GPA, RING_GPA, QSIZE), 0);
	fx.tbl.nregions = 1;
	fx.tbl.regions[0] = (struct uvs_mem_region){ 0, MEM_SIZE, (uint64_t)(uintptr_t)mem };
	fx.vq.desc = uvs_mem_translate(&fx.tbl, fx.q.desc_gpa, 16 * QSIZE);
	fx.vq.avail = uvs_mem_translate(&fx.tbl, fx.q.avail_gpa, 6 + 2 * QSIZE);
	fx.vq.used = uvs_mem_translate(&fx.tbl, fx.q.used_gpa, 6 + 8 * QSIZE);
	assert_non_null(fx.vq.desc);
	assert_non_null(fx.vq.avail);
	assert_non_null(fx.vq.used);
	fx.vq.size = QSIZE;
	for (uint16_t i = 0; i < QSIZE; i++)
		uvs_drvq_set_buf(&fx.q, i, BUF_GPA + i * BUF_SIZE, BUF_SIZE, i % 2 == 0);
	*state = &fx;
	return 0;
}

static void
init_rejects_bad_sizes(void **state)
{
	struct uvs_drvq q;

	(void)state;
	assert_int_equal(uvs_drvq_init(&q, mem, 0, 0), -EINVAL);
	assert_int_equal(uvs_drvq_init(&q, mem, 0, 6), -EINVAL);
	assert_int_equal(uvs_drvq_init(&q, NULL, 0, 8), -EINVAL);
	assert_true(uvs_drvq_bytes(QSIZE) >= 16 * QSIZE + 6 + 2 * QSIZE + 6 + 8 * QSIZE);
	assert_int_equal(fx.q.avail_gpa % UVS_DRVQ_ALIGN, 0);
	assert_int_equal(fx.q.used_gpa % UVS_DRVQ_ALIGN, 0);
}

static void
posted_buffers_reach_the_device(void **state)
{
	struct fixture *f = *state;
	enum uvs_chain_err err;

	assert_int_equal(uvs_drvq_post(&f->q, 2), 0);
	uvs_drvq_set_len(&f->q, 3, 100);
	assert_int_equal(uvs_drvq_post(&f->q, 3), 0);
	/* not visible before publication */
	assert_int_equal(uvs_virtq_avail_count(&f->vq), 0);
	assert_true(uvs_drvq_publish(&f->q)); /* the device did not say NO_NOTIFY */
	assert_int_equal(uvs_virtq_avail_count(&f->vq), 2);
	assert_int_equal(uvs_virtq_pop(&f->vq, &f->tbl, false, &f->chain, &err), 1);
	assert_int_equal(f->chain.head, 2);
	assert_int_equal(f->chain.nout, 0); /* even ids are device-writable */
	assert_int_equal(f->chain.in_len, BUF_SIZE);
	assert_ptr_equal(f->chain.iov[0].iov_base, mem + BUF_GPA + 2 * BUF_SIZE);
	assert_int_equal(uvs_virtq_pop(&f->vq, &f->tbl, false, &f->chain, &err), 1);
	assert_int_equal(f->chain.head, 3);
	assert_int_equal(f->chain.nout, 1);
	assert_int_equal(f->chain.out_len, 100);
	/* the device asks not to be kicked: publish says so */
	uvs_virtq_set_notify(&f->vq, false);
	assert_int_equal(uvs_drvq_post(&f->q, 4), 0);
	assert_false(uvs_drvq_publish(&f->q));
}

static void
used_buffers_come_back(void **state)
{
	struct fixture *f = *state;
	enum uvs_chain_err err;
	uint16_t id;
	uint32_t len;

	for (uint16_t i = 0; i < 3; i++)
		assert_int_equal(uvs_drvq_post(&f->q, i), 0);
	uvs_drvq_publish(&f->q);
	assert_int_equal(uvs_drvq_take(&f->q, &id, &len), 0); /* nothing used yet */
	for (int i = 0; i < 3; i++)
		assert_int_equal(uvs_virtq_pop(&f->vq, &f->tbl, false, &f->chain, &err), 1);
	uvs_virtq_push(&f->vq, 1, 0);
	uvs_virtq_push(&f->vq, 0, 44);
	uvs_virtq_publish(&f->vq);
	assert_int_equal(uvs_drvq_take(&f->q, &id, &len), 1);
	assert_int_equal(id, 1);
	assert_int_equal(len, 0);
	assert_int_equal(uvs_drvq_take(&f->q, &id, &len), 1);
	assert_int_equal(id, 0);
	assert_int_equal(len, 44);
	assert_int_equal(uvs_drvq_take(&f->q, &id, &len), 0);
	assert_int_equal(f->q.posted, 1);
}

static void
ring_full_is_refused(void **state)
{
	struct fixture *f = *state;

	for (uint16_t i = 0; i < QSIZE; i++)
		assert_int_equal(uvs_drvq_post(&f->q, i), 0);
	assert_int_equal(uvs_drvq_post(&f->q, 0), -ENOSPC);
}

/* A device that returns what it was never given, or more than a buffer holds. */
static void
impossible_used_entries_are_caught(void **state)
{
	struct fixture *f = *state;
	uint16_t id;
	uint32_t len;

	assert_int_equal(uvs_drvq_post(&f->q, 0), 0);
	uvs_drvq_publish(&f->q);
	/* id out of range */
	f->vq.used->ring[0] = (struct uvs_vring_used_elem){ .id = QSIZE, .len = 0 };
	__atomic_store_n(&f->vq.used->idx, 1, __ATOMIC_RELEASE);
	assert_int_equal(uvs_drvq_take(&f->q, &id, &len), -EIO);
	/* longer than the buffer */
	f->vq.used->ring[0] = (struct uvs_vring_used_elem){ .id = 0, .len = BUF_SIZE + 1 };
	assert_int_equal(uvs_drvq_take(&f->q, &id, &len), -EIO);
	/* more entries than buffers held */
	f->vq.used->ring[0] = (struct uvs_vring_used_elem){ .id = 0, .len = 1 };
	__atomic_store_n(&f->vq.used->idx, 2, __ATOMIC_RELEASE);
	assert_int_equal(uvs_drvq_take(&f->q, &id, &len), -EIO);
	/* and a good one still works */
	__atomic_store_n(&f->vq.used->idx, 1, __ATOMIC_RELEASE);
	assert_int_equal(uvs_drvq_take(&f->q, &id, &len), 1);
	assert_int_equal(len, 1);
}

static void
interrupts_flag(void **state)
{
	struct fixture *f = *state;

	uvs_drvq_set_interrupts(&f->q, false);
	assert_int_equal(f->vq.avail->flags, UVS_VRING_AVAIL_F_NO_INTERRUPT);
	uvs_drvq_set_interrupts(&f->q, true);
	assert_int_equal(f->vq.avail->flags, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(init_rejects_bad_sizes, setup),
		cmocka_unit_test_setup(posted_buffers_reach_the_device, setup),
		cmocka_unit_test_setup(used_buffers_come_back, setup),
		cmocka_unit_test_setup(ring_full_is_refused, setup),
		cmocka_unit_test_setup(impossible_used_entries_are_caught, setup),
		cmocka_unit_test_setup(interrupts_flag, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
