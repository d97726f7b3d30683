/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of uvs_sockbuf: the framing of a connected socket's shared rings, with both
 * sides (device and program) in one process over one segment.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "uvs_ipc.h"
#include "uvs_proto.h"
#include "uvs_sockbuf.h"

#define RING 4096u

struct pair {
	struct uvs_ring_idx rx_idx, tx_idx;
	uint8_t rx_data[2 * 1024 * 1024], tx_data[2 * 1024 * 1024];
	struct uvs_sockbuf dev, app;
};

static struct pair *
pair_new(uint16_t type, uint32_t size)
{
	struct pair *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	p->dev.type = p->app.type = type;
	uvs_ring_attach(&p->dev.rx, &p->rx_idx, p->rx_data, size, true);
	uvs_ring_attach(&p->dev.tx, &p->tx_idx, p->tx_data, size, false);
	uvs_ring_attach(&p->app.rx, &p->rx_idx, p->rx_data, size, false);
	uvs_ring_attach(&p->app.tx, &p->tx_idx, p->tx_data, size, true);
	return p;
}

static void
pattern(uint8_t *b, uint32_t len, uint32_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		b[i] = (uint8_t)(seed + i * 7);
}

/* device receives len bytes from the guest (as one or more packets of at most pkt) */
static int
dev_deliver(struct pair *p, const uint8_t *b, uint32_t len, uint32_t pkt, uint32_t last_flags)
{
	int rc = 0;

	for (uint32_t off = 0; off < len; off += pkt) {
		uint32_t n = len - off < pkt ? len - off : pkt;
		struct iovec iov = { .iov_base = (void *)(uintptr_t)(b + off), .iov_len = n };

		rc = uvs_sockbuf_dev_put(&p->dev, &iov, 1, 0, n, off + n == len ? last_flags : 0);
		if (rc < 0)
			return rc;
	}
	return rc;
}

static void
stream_roundtrip_across_wrap(void **state)
{
	struct pair *p = pair_new(UVS_TYPE_STREAM, RING);
	uint8_t in[3000], out[3000];
	struct iovec iov = { .iov_base = out, .iov_len = sizeof(out) };
	int mf;
	uint32_t ml;

	(void)state;
	/* move the indexes near the end so the next write wraps */
	p->dev.rx.own = p->app.rx.own = p->rx_idx.prod = p->rx_idx.cons = RING - 1000;
	pattern(in, sizeof(in), 1);
	assert_int_equal(dev_deliver(p, in, sizeof(in), 1024, 0), 1);
	assert_int_equal(uvs_sockbuf_app_read(&p->app, &iov, 1, sizeof(out), &mf, &ml), 3000);
	assert_memory_equal(in, out, sizeof(in));
	/* not consumed yet: a second read (MSG_PEEK) sees the same bytes */
	memset(out, 0, sizeof(out));
	assert_int_equal(uvs_sockbuf_app_read(&p->app, &iov, 1, 100, &mf, &ml), 100);
	assert_memory_equal(in, out, 100);
	assert_int_equal(uvs_sockbuf_app_consume(&p->app, 3000, 0), 3000);
	assert_int_equal(uvs_sockbuf_app_read(&p->app, &iov, 1, sizeof(out), &mf, &ml), -EAGAIN);
	free(p);
}

static void
stream_put_beyond_space_refused(void **state)
{
	struct pair *p = pair_new(UVS_TYPE_STREAM, RING);
	uint8_t b[RING + 1];

	(void)state;
	memset(b, 1, sizeof(b));
	assert_int_equal(dev_deliver(p, b, RING, RING, 0), 1);
	assert_int_equal(dev_deliver(p, b, 1, 1, 0), -ENOBUFS);
	free(p);
}

static void
seqpacket_reassembly_visible_only_at_eom(void **state)
{
	uint32_t size = 512 * 1024;
	struct pair *p = pair_new(UVS_TYPE_SEQPACKET, size);
	uint32_t len = 256 * 1024;
	uint8_t *in = malloc(len), *out = malloc(len + 1);
	struct iovec iov = { .iov_base = out, .iov_len = len + 1 };
	int mf;
	uint32_t ml;

	(void)state;
	pattern(in, len, 3);
	/* 64 KiB packets, then pieces of one guest rx buffer size, the last one with EOM|EOR */
	assert_int_equal(dev_deliver(p, in, len - 5000, 65536, 0), 0);
	assert_int_equal(uvs_sockbuf_app_read(&p->app, &iov, 1, len + 1, &mf, &ml), -EAGAIN);
	assert_int_equal(dev_deliver(p, in + len - 5000, 5000, 3732, UVS_SEQ_EOM | UVS_SEQ_EOR), 1);
	assert_int_equal(uvs_sockbuf_app_read(&p->app, &iov, 1, len + 1, &mf, &ml), len);
	assert_int_equal(ml, len);
	assert_int_equal(mf, MSG_EOR);
	assert_memory_equal(in, out, len);
	assert_int_equal(uvs_sockbuf_app_consume(&p->app, len, ml), len);
	free(in);
	free(out);
	free(p);
}

static void
seqpacket_truncation_consumes_whole_message(void **state)
{
	struct pair *p = pair_new(UVS_TYPE_SEQPACKET, RING);
	uint8_t a[100], b[32], out[100];
	struct iovec iov = { .iov_base = out, .iov_len = 10 };
	int mf;
	uint32_t ml;

	(void)state;
	pattern(a, sizeof(a), 5);
	pattern(b, sizeof(b), 9);
	assert_int_equal(dev_deliver(p, a, sizeof(a), 4096, UVS_SEQ_EOM), 1);
	assert_int_equal(dev_deliver(p, b, sizeof(b), 4096, UVS_SEQ_EOM | UVS_SEQ_EOR), 1);
	assert_int_equal(uvs_sockbuf_app_read(&p->app, &iov, 1, 10, &mf, &ml), 10);
	assert_int_equal(mf, MSG_TRUNC); /* no EOR: sent without MSG_EOR */
	assert_int_equal(ml, 100);
	assert_memory_equal(a, out, 10);
	/* the truncated bytes are dropped and count as consumed (fwd_cnt) */
	assert_int_equal(uvs_sockbuf_app_consume(&p->app, 10, ml), 100);
	iov.iov_len = sizeof(out);
	assert_int_equal(uvs_sockbuf_app_read(&p->app, &iov, 1, sizeof(out), &mf, &ml), 32);
	assert_int_equal(mf, MSG_EOR);
	assert_memory_equal(b, out, 32);
	free(p);
}

static void
seqpacket_send_split_with_eom_eor_on_last_piece(void **state)
{
	struct pair *p = pair_new(UVS_TYPE_SEQPACKET, RING);
	uint32_t len = 10000, got = 0, flags, n, pieces = 0;
	uint8_t *in = malloc(len), *out = malloc(len);
	struct iovec src = { .iov_base = in, .iov_len = len };
	int64_t w;

	(void)state;
	pattern(in, len, 11);
	/* the program writes a message larger than the ring: several records */
	for (uint32_t done = 0; done < len;) {
		w = uvs_sockbuf_app_write(&p->app, &src, 1, done, len - done, len, true);
		assert_true(w > 0);
		done += (uint32_t)w;
		/* the device sends it in pieces of at most 1500 bytes */
		while ((n = uvs_sockbuf_dev_peek(&p->dev, 1500, &flags)) > 0) {
			struct iovec dst = { .iov_base = out + got, .iov_len = n };

			uvs_sockbuf_dev_take(&p->dev, &dst, 1, 0, n);
			got += n;
			pieces++;
			if (got < len)
				assert_int_equal(flags, 0);
			else
				assert_int_equal(flags, UVS_SEQ_EOM | UVS_SEQ_EOR);
		}
	}
	assert_int_equal(got, len);
	assert_true(pieces >= 7);
	assert_memory_equal(in, out, len);
	free(in);
	free(out);
	free(p);
}

static void
seqpacket_eor_needs_eom(void **state)
{
	struct pair *p = pair_new(UVS_TYPE_SEQPACKET, RING);
	struct uvs_rec rec = { .len = 4, .flags = UVS_SEQ_EOR }; /* hostile: EOR without EOM */
	uint32_t flags;

	(void)state;
	uvs_ring_put(&p->app.tx, 0, &rec, sizeof(rec));
	uvs_ring_put(&p->app.tx, sizeof(rec), "abcd", 4);
	uvs_ring_produce(&p->app.tx, sizeof(rec) + 4);
	assert_int_equal(uvs_sockbuf_dev_peek(&p->dev, 100, &flags), 4);
	assert_int_equal(flags, 0);
	free(p);
}

static void
empty_record_is_skipped(void **state)
{
	struct pair *p = pair_new(UVS_TYPE_SEQPACKET, RING);
	struct uvs_rec empty = { .len = 0, .flags = UVS_SEQ_EOM };
	struct uvs_rec rec = { .len = 3, .flags = UVS_SEQ_EOM };
	uint32_t flags;

	(void)state;
	uvs_ring_put(&p->app.tx, 0, &empty, sizeof(empty));
	uvs_ring_put(&p->app.tx, 8, &rec, sizeof(rec));
	uvs_ring_put(&p->app.tx, 16, "xyz", 3);
	uvs_ring_produce(&p->app.tx, 19);
	assert_int_equal(uvs_sockbuf_dev_peek(&p->dev, 100, &flags), 3);
	assert_int_equal(flags, UVS_SEQ_EOM);
	assert_false(p->dev.bad);
	free(p);
}

static void
corrupt_indexes_and_records_detected(void **state)
{
	struct pair *p = pair_new(UVS_TYPE_SEQPACKET, RING);
	struct uvs_rec rec = { .len = 1000, .flags = UVS_SEQ_EOM };
	uint8_t b[8] = { 0 };
	struct iovec iov = { .iov_base = b, .iov_len = sizeof(b) };
	uint32_t flags;
	int mf;
	uint32_t ml;

	(void)state;
	/* a record longer than what is in the ring */
	uvs_ring_put(&p->app.tx, 0, &rec, sizeof(rec));
	uvs_ring_produce(&p->app.tx, sizeof(rec) + 10);
	assert_int_equal(uvs_sockbuf_dev_peek(&p->dev, 100, &flags), 0);
	assert_true(p->dev.bad);
	free(p);

	p = pair_new(UVS_TYPE_STREAM, RING);
	/* the program claims to have consumed more than was produced */
	p->rx_idx.cons = 5000;
	assert_int_equal(uvs_sockbuf_dev_put(&p->dev, &iov, 1, 0, 8, 0), -EIO);
	assert_true(p->dev.bad);
	/* the device claims to have produced more than the ring holds */
	p->rx_idx.prod = RING + 1;
	p->app.rx.own = 0;
	assert_int_equal(uvs_sockbuf_app_read(&p->app, &iov, 1, 8, &mf, &ml), -EIO);
	free(p);
}

static void
stream_write_stops_when_full(void **state)
{
	struct pair *p = pair_new(UVS_TYPE_STREAM, RING);
	uint8_t b[RING * 2];
	struct iovec iov = { .iov_base = b, .iov_len = sizeof(b) };
	uint32_t flags;

	(void)state;
	assert_int_equal(uvs_sockbuf_app_write(&p->app, &iov, 1, 0, sizeof(b), sizeof(b), false),
			RING);
	assert_int_equal(uvs_sockbuf_app_write(&p->app, &iov, 1, RING, RING, sizeof(b), false), 0);
	assert_int_equal(uvs_sockbuf_dev_peek(&p->dev, 100000, &flags), RING);
	assert_int_equal(flags, 0);
	free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(stream_roundtrip_across_wrap),
		cmocka_unit_test(stream_put_beyond_space_refused),
		cmocka_unit_test(seqpacket_reassembly_visible_only_at_eom),
		cmocka_unit_test(seqpacket_truncation_consumes_whole_message),
		cmocka_unit_test(seqpacket_send_split_with_eom_eor_on_last_piece),
		cmocka_unit_test(seqpacket_eor_needs_eom),
		cmocka_unit_test(empty_record_is_skipped),
		cmocka_unit_test(corrupt_indexes_and_records_detected),
		cmocka_unit_test(stream_write_stops_when_full),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
