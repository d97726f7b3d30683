/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of uvs_credit.c: free credit with wrapping u32 counters (shared/doc/protocol.md §4.2,
 * §9.10), receive-side enforcement of the credit we granted (§4.4) and the rule deciding
 * when an unsolicited CREDIT_UPDATE is due (§4.3, §9.1).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "uvs_credit.h"

static void
init_sets_buf_alloc_and_zeroes_the_rest(void **state)
{
	struct uvs_credit cr;

	(void)state;
	memset(&cr, 0xa5, sizeof(cr));
	uvs_credit_init(&cr, 4096);
	assert_int_equal(cr.buf_alloc, 4096);
	assert_int_equal(cr.fwd_cnt, 0);
	assert_int_equal(cr.last_fwd_cnt, 0);
	assert_int_equal(cr.rx_cnt, 0);
	assert_int_equal(cr.tx_cnt, 0);
	assert_int_equal(cr.peer_buf_alloc, 0);
	assert_int_equal(cr.peer_fwd_cnt, 0);
	/* nothing known about the peer yet: no credit */
	assert_int_equal(uvs_credit_peer_free(&cr), 0);
}

static void
peer_free_basic(void **state)
{
	struct uvs_credit cr;

	(void)state;
	uvs_credit_init(&cr, 1000);
	assert_true(uvs_credit_peer_update(&cr, 5000, 0));
	assert_int_equal(uvs_credit_peer_free(&cr), 5000);
	uvs_credit_sent(&cr, 1200);
	assert_int_equal(cr.tx_cnt, 1200);
	assert_int_equal(uvs_credit_peer_free(&cr), 3800);
	uvs_credit_sent(&cr, 3800);
	assert_int_equal(uvs_credit_peer_free(&cr), 0);
	/* the peer consumed 1200 */
	assert_true(uvs_credit_peer_update(&cr, 5000, 1200));
	assert_int_equal(uvs_credit_peer_free(&cr), 1200);
	/* same values again: credit did not grow */
	assert_false(uvs_credit_peer_update(&cr, 5000, 1200));
	/* the peer grew its buffer */
	assert_true(uvs_credit_peer_update(&cr, 6000, 1200));
	assert_int_equal(uvs_credit_peer_free(&cr), 2200);
	/* our own buffer size plays no part in what we may send */
	assert_int_equal(cr.buf_alloc, 1000);
}

static void
peer_free_wraps_at_u32_max(void **state)
{
	struct uvs_credit cr;

	(void)state;
	uvs_credit_init(&cr, 1000);
	cr.tx_cnt = 10;
	cr.peer_fwd_cnt = 0xfffffff0u;
	cr.peer_buf_alloc = 100;
	/* in flight = 10 - 0xfffffff0 = 26 (mod 2^32) */
	assert_int_equal(uvs_credit_peer_free(&cr), 74);

	/* tx_cnt wraps while sending */
	uvs_credit_init(&cr, 1000);
	assert_true(uvs_credit_peer_update(&cr, 100, 0xffffffc0u));
	cr.tx_cnt = 0xffffffc0u;
	assert_int_equal(uvs_credit_peer_free(&cr), 100);
	uvs_credit_sent(&cr, 0x50);
	assert_int_equal(cr.tx_cnt, 0x10);
	assert_int_equal(uvs_credit_peer_free(&cr), 100 - 0x50);
	uvs_credit_sent(&cr, 100 - 0x50);
	assert_int_equal(uvs_credit_peer_free(&cr), 0);
	/* peer_fwd_cnt wraps too */
	assert_true(uvs_credit_peer_update(&cr, 100, 0x10));
	assert_int_equal(uvs_credit_peer_free(&cr), 100 - (0x24 - 0x10));
}

static void
peer_shrinking_below_in_flight_yields_zero(void **state)
{
	struct uvs_credit cr;

	(void)state;
	uvs_credit_init(&cr, 1000);
	assert_true(uvs_credit_peer_update(&cr, 5000, 0));
	uvs_credit_sent(&cr, 3000);
	assert_int_equal(uvs_credit_peer_free(&cr), 2000);
	/* 3000 in flight, buf_alloc 1000: not ~4 GiB (Linux fix d05bc313) */
	assert_false(uvs_credit_peer_update(&cr, 1000, 0));
	assert_int_equal(uvs_credit_peer_free(&cr), 0);
	/* extreme: buf_alloc 0 with everything in flight */
	cr.tx_cnt = 0x7fffffffu;
	assert_false(uvs_credit_peer_update(&cr, 0, 0x80000000u));
	assert_int_equal(uvs_credit_peer_free(&cr), 0);
	/* a huge buf_alloc is honoured as such (the sender caps packets elsewhere) */
	cr.tx_cnt = 0;
	assert_true(uvs_credit_peer_update(&cr, 0xffffffffu, 0));
	assert_int_equal(uvs_credit_peer_free(&cr), 0xffffffffu);
}

static void
rx_room_counts_unconsumed_bytes(void **state)
{
	struct uvs_credit cr;

	(void)state;
	uvs_credit_init(&cr, 1000);
	assert_int_equal(uvs_credit_rx_room(&cr), 1000);
	assert_int_equal(uvs_credit_received(&cr, 400), 0);
	assert_int_equal(uvs_credit_rx_room(&cr), 600);
	cr.fwd_cnt = 100;
	assert_int_equal(uvs_credit_rx_room(&cr), 700);
	/* buffer shrunk below what is queued */
	cr.buf_alloc = 200;
	assert_int_equal(uvs_credit_rx_room(&cr), 0);
}

static void
received_within_credit_ok_beyond_enobufs(void **state)
{
	struct uvs_credit cr;

	(void)state;
	uvs_credit_init(&cr, 1000);
	assert_int_equal(uvs_credit_received(&cr, 600), 0);
	assert_int_equal(uvs_credit_received(&cr, 400), 0);
	assert_int_equal(cr.rx_cnt, 1000);
	assert_int_equal(uvs_credit_received(&cr, 1), -ENOBUFS);
	/* a refused packet is not accounted */
	assert_int_equal(cr.rx_cnt, 1000);
	/* consumed but not yet advertised: the peer cannot have that credit */
	cr.fwd_cnt = 500;
	assert_int_equal(uvs_credit_received(&cr, 1), -ENOBUFS);
	uvs_credit_advertised(&cr);
	assert_int_equal(cr.last_fwd_cnt, 500);
	assert_int_equal(uvs_credit_received(&cr, 500), 0);
	assert_int_equal(uvs_credit_received(&cr, 1), -ENOBUFS);
	/* a single packet bigger than the whole buffer, and a len that would overflow */
	uvs_credit_init(&cr, 1000);
	assert_int_equal(uvs_credit_received(&cr, 1001), -ENOBUFS);
	assert_int_equal(uvs_credit_received(&cr, 0xffffffffu), -ENOBUFS);
	assert_int_equal(cr.rx_cnt, 0);
}

static void
received_across_wrap(void **state)
{
	struct uvs_credit cr;

	(void)state;
	uvs_credit_init(&cr, 1024);
	cr.rx_cnt = cr.fwd_cnt = cr.last_fwd_cnt = 0xffffff00u;
	assert_int_equal(uvs_credit_received(&cr, 512), 0);
	assert_int_equal(cr.rx_cnt, 0x100);
	assert_int_equal(uvs_credit_received(&cr, 512), 0);
	assert_int_equal(cr.rx_cnt, 0x300);
	assert_int_equal(uvs_credit_rx_room(&cr), 0);
	assert_int_equal(uvs_credit_received(&cr, 1), -ENOBUFS);
	/* the application consumes across the wrap and we advertise it */
	cr.fwd_cnt = 0x300;
	uvs_credit_advertised(&cr);
	assert_int_equal(uvs_credit_rx_room(&cr), 1024);
	assert_int_equal(uvs_credit_received(&cr, 1024), 0);
	assert_int_equal(cr.rx_cnt, 0x700);
	assert_int_equal(uvs_credit_received(&cr, 1), -ENOBUFS);
}

static void
update_due_nothing_consumed_is_false(void **state)
{
	struct uvs_credit cr;

	(void)state;
	uvs_credit_init(&cr, 256 * 1024);
	assert_false(uvs_credit_update_due(&cr));
	/* buffer full to the last byte, but the application consumed nothing */
	assert_int_equal(uvs_credit_received(&cr, 256 * 1024), 0);
	assert_false(uvs_credit_update_due(&cr));
}

static void
update_due_when_peer_view_low(void **state)
{
	struct uvs_credit cr;

	(void)state;
	uvs_credit_init(&cr, 256 * 1024);
	assert_int_equal(uvs_credit_received(&cr, 200 * 1024), 0);
	cr.fwd_cnt = 10;
	/* the peer believes 56 KiB are free (< 64 KiB): tell it about the 10 bytes */
	assert_true(uvs_credit_update_due(&cr));
	uvs_credit_advertised(&cr);
	assert_false(uvs_credit_update_due(&cr));
	/* exactly at the low-water mark the view is not low */
	uvs_credit_init(&cr, 256 * 1024);
	assert_int_equal(uvs_credit_received(&cr, 192 * 1024), 0);
	cr.fwd_cnt = 10;
	assert_false(uvs_credit_update_due(&cr));
	assert_int_equal(uvs_credit_received(&cr, 1), 0);
	assert_true(uvs_credit_update_due(&cr));
}

static void
update_due_when_everything_consumed(void **state)
{
	struct uvs_credit cr;

	(void)state;
	uvs_credit_init(&cr, 256 * 1024);
	assert_int_equal(uvs_credit_received(&cr, 1000), 0);
	cr.fwd_cnt = 1000;
	assert_true(uvs_credit_update_due(&cr));
	uvs_credit_advertised(&cr);
	assert_false(uvs_credit_update_due(&cr));
}

static void
update_not_due_for_a_little_with_lots_of_room(void **state)
{
	struct uvs_credit cr;

	(void)state;
	uvs_credit_init(&cr, 256 * 1024);
	assert_int_equal(uvs_credit_received(&cr, 1000), 0);
	cr.fwd_cnt = 10;
	assert_false(uvs_credit_update_due(&cr));
	cr.fwd_cnt = 999;
	assert_false(uvs_credit_update_due(&cr));
}

static void
update_due_across_wrap(void **state)
{
	struct uvs_credit cr;

	(void)state;
	uvs_credit_init(&cr, 256 * 1024);
	cr.rx_cnt = cr.fwd_cnt = cr.last_fwd_cnt = 0xffff0000u;
	assert_int_equal(uvs_credit_received(&cr, 200 * 1024), 0); /* rx_cnt wraps */
	assert_true(cr.rx_cnt < 0xffff0000u);
	assert_false(uvs_credit_update_due(&cr));
	cr.fwd_cnt = 0xffff0000u + 10;
	assert_true(uvs_credit_update_due(&cr));
	cr.fwd_cnt = cr.rx_cnt; /* consumed everything, across the wrap */
	assert_true(uvs_credit_update_due(&cr));
	uvs_credit_advertised(&cr);
	assert_false(uvs_credit_update_due(&cr));
	/* a little consumed with lots of room, across the wrap */
	assert_int_equal(uvs_credit_received(&cr, 1000), 0);
	cr.fwd_cnt += 10;
	assert_false(uvs_credit_update_due(&cr));
}

static void
small_buffer_always_low(void **state)
{
	struct uvs_credit cr;

	(void)state;
	/* a buffer below the 64 KiB mark: any consumption is worth an update (Linux too) */
	uvs_credit_init(&cr, 4096);
	assert_int_equal(uvs_credit_received(&cr, 100), 0);
	cr.fwd_cnt = 1;
	assert_true(uvs_credit_update_due(&cr));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(init_sets_buf_alloc_and_zeroes_the_rest),
		cmocka_unit_test(peer_free_basic),
		cmocka_unit_test(peer_free_wraps_at_u32_max),
		cmocka_unit_test(peer_shrinking_below_in_flight_yields_zero),
		cmocka_unit_test(rx_room_counts_unconsumed_bytes),
		cmocka_unit_test(received_within_credit_ok_beyond_enobufs),
		cmocka_unit_test(received_across_wrap),
		cmocka_unit_test(update_due_nothing_consumed_is_false),
		cmocka_unit_test(update_due_when_peer_view_low),
		cmocka_unit_test(update_due_when_everything_consumed),
		cmocka_unit_test(update_not_due_for_a_little_with_lots_of_room),
		cmocka_unit_test(update_due_across_wrap),
		cmocka_unit_test(small_buffer_always_low),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
