/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of uvs_pkt.c: header validation (every uvs_pkt_err), RST-without-socket reply
 * headers (shared/doc/protocol.md §2, §3.6) and printable names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "uvs_pkt.h"

#define GUEST_CID 3u
#define HOST_CID 2u

static struct uvs_hdr
mk_hdr(uint16_t op, uint32_t len)
{
	struct uvs_hdr h;

	memset(&h, 0, sizeof(h));
	h.src_cid = GUEST_CID;
	h.dst_cid = HOST_CID;
	h.src_port = 5000;
	h.dst_port = 1234;
	h.len = len;
	h.type = UVS_TYPE_STREAM;
	h.op = op;
	h.buf_alloc = 262144;
	h.fwd_cnt = 17;
	return h;
}

static void
header_layout_is_wire_format(void **state)
{
	struct uvs_hdr h;
	uint8_t raw[UVS_HDR_SIZE];

	(void)state;
	assert_int_equal(sizeof(h), 44);
	assert_int_equal(offsetof(struct uvs_hdr, src_cid), 0);
	assert_int_equal(offsetof(struct uvs_hdr, dst_cid), 8);
	assert_int_equal(offsetof(struct uvs_hdr, src_port), 16);
	assert_int_equal(offsetof(struct uvs_hdr, dst_port), 20);
	h = mk_hdr(UVS_OP_SHUTDOWN, 0);
	h.flags = UVS_SHUTDOWN_BOTH;
	h.fwd_cnt = 0x11223344;
	memcpy(raw, &h, sizeof(raw));
	/* little-endian, packed */
	assert_int_equal(raw[0], 3);
	assert_int_equal(raw[8], 2);
	assert_int_equal(raw[16], 5000 & 0xff);
	assert_int_equal(raw[17], 5000 >> 8);
	assert_int_equal(raw[28], UVS_TYPE_STREAM);
	assert_int_equal(raw[30], UVS_OP_SHUTDOWN);
	assert_int_equal(raw[32], 3);
	assert_int_equal(raw[40], 0x44);
	assert_int_equal(raw[43], 0x11);
	/* wire constants (§2) */
	assert_int_equal(UVS_SHUTDOWN_RCV, 1);
	assert_int_equal(UVS_SHUTDOWN_SEND, 2);
	assert_int_equal(UVS_SEQ_EOM, 1);
	assert_int_equal(UVS_SEQ_EOR, 2);
	assert_int_equal(UVS_MAX_PKT_PAYLOAD, 65536);
}

static void
check_ok_for_valid_packets(void **state)
{
	struct uvs_hdr h;

	(void)state;
	h = mk_hdr(UVS_OP_REQUEST, 0);
	assert_int_equal(uvs_pkt_check(&h, 0, GUEST_CID, HOST_CID), UVS_PKT_OK);
	h = mk_hdr(UVS_OP_RW, 100);
	assert_int_equal(uvs_pkt_check(&h, 100, GUEST_CID, HOST_CID), UVS_PKT_OK);
	/* more payload bytes present than len: the buffer is just longer */
	assert_int_equal(uvs_pkt_check(&h, 4096, GUEST_CID, HOST_CID), UVS_PKT_OK);
	/* exactly 64 KiB is the largest legal payload */
	h = mk_hdr(UVS_OP_RW, UVS_MAX_PKT_PAYLOAD);
	assert_int_equal(uvs_pkt_check(&h, UVS_MAX_PKT_PAYLOAD, GUEST_CID, HOST_CID), UVS_PKT_OK);
	/* control op carrying a payload buffer but len 0 */
	h = mk_hdr(UVS_OP_CREDIT_UPDATE, 0);
	assert_int_equal(uvs_pkt_check(&h, 4096, GUEST_CID, HOST_CID), UVS_PKT_OK);
}

static void
check_unknown_type_and_op_are_not_parse_errors(void **state)
{
	struct uvs_hdr h = mk_hdr(9, 0);

	(void)state;
	h.type = 3;
	/* the state machine answers these with RST (or ignores them) as Linux does */
	assert_int_equal(uvs_pkt_check(&h, 0, GUEST_CID, HOST_CID), UVS_PKT_OK);
	h.op = UVS_OP_INVALID;
	h.type = 0;
	assert_int_equal(uvs_pkt_check(&h, 0, GUEST_CID, HOST_CID), UVS_PKT_OK);
}

static void
check_len_over_64k_is_too_long(void **state)
{
	struct uvs_hdr h = mk_hdr(UVS_OP_RW, UVS_MAX_PKT_PAYLOAD + 1);

	(void)state;
	assert_int_equal(uvs_pkt_check(&h, UVS_MAX_PKT_PAYLOAD + 1, GUEST_CID, HOST_CID),
			UVS_PKT_TOO_LONG);
	h.len = 0xffffffffu;
	assert_int_equal(uvs_pkt_check(&h, 0xffffffffu, GUEST_CID, HOST_CID), UVS_PKT_TOO_LONG);
}

static void
check_len_over_payload_is_truncated(void **state)
{
	struct uvs_hdr h = mk_hdr(UVS_OP_RW, 100);

	(void)state;
	assert_int_equal(uvs_pkt_check(&h, 99, GUEST_CID, HOST_CID), UVS_PKT_TRUNCATED);
	assert_int_equal(uvs_pkt_check(&h, 0, GUEST_CID, HOST_CID), UVS_PKT_TRUNCATED);
	h.len = 1;
	assert_int_equal(uvs_pkt_check(&h, 0, GUEST_CID, HOST_CID), UVS_PKT_TRUNCATED);
}

static void
check_control_op_with_payload_is_refused(void **state)
{
	static const uint16_t ops[] = { UVS_OP_INVALID, UVS_OP_REQUEST, UVS_OP_RESPONSE, UVS_OP_RST,
		UVS_OP_SHUTDOWN, UVS_OP_CREDIT_UPDATE, UVS_OP_CREDIT_REQUEST, 8, 9, 0xffff };
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		struct uvs_hdr h = mk_hdr(ops[i], 1);

		assert_int_equal(uvs_pkt_check(&h, 1, GUEST_CID, HOST_CID), UVS_PKT_CTL_PAYLOAD);
		h.len = 0;
		assert_int_equal(uvs_pkt_check(&h, 1, GUEST_CID, HOST_CID), UVS_PKT_OK);
	}
}

static void
check_bad_src_cid(void **state)
{
	struct uvs_hdr h = mk_hdr(UVS_OP_REQUEST, 0);

	(void)state;
	h.src_cid = 4;
	assert_int_equal(uvs_pkt_check(&h, 0, GUEST_CID, HOST_CID), UVS_PKT_BAD_SRC);
	/* upper 32 bits must be zero: not the same CID */
	h.src_cid = GUEST_CID | (1ull << 32);
	assert_int_equal(uvs_pkt_check(&h, 0, GUEST_CID, HOST_CID), UVS_PKT_BAD_SRC);
	h.src_cid = HOST_CID;
	assert_int_equal(uvs_pkt_check(&h, 0, GUEST_CID, HOST_CID), UVS_PKT_BAD_SRC);
}

static void
check_bad_dst_cid(void **state)
{
	struct uvs_hdr h = mk_hdr(UVS_OP_RW, 10);

	(void)state;
	h.dst_cid = GUEST_CID;
	assert_int_equal(uvs_pkt_check(&h, 10, GUEST_CID, HOST_CID), UVS_PKT_BAD_DST);
	h.dst_cid = HOST_CID | (1ull << 32);
	assert_int_equal(uvs_pkt_check(&h, 10, GUEST_CID, HOST_CID), UVS_PKT_BAD_DST);
	h.dst_cid = UVS_CID_ANY;
	assert_int_equal(uvs_pkt_check(&h, 10, GUEST_CID, HOST_CID), UVS_PKT_BAD_DST);
}

static void
reply_swaps_addresses_and_clears_credit(void **state)
{
	struct uvs_hdr req = mk_hdr(UVS_OP_RW, 5);
	struct uvs_hdr out;

	(void)state;
	req.type = UVS_TYPE_SEQPACKET;
	req.flags = UVS_SEQ_EOM | UVS_SEQ_EOR;
	req.buf_alloc = 77;
	req.fwd_cnt = 88;
	memset(&out, 0xa5, sizeof(out));
	uvs_pkt_reply(&out, &req, UVS_OP_RST);
	assert_int_equal(out.src_cid, HOST_CID);
	assert_int_equal(out.dst_cid, GUEST_CID);
	assert_int_equal(out.src_port, 1234);
	assert_int_equal(out.dst_port, 5000);
	assert_int_equal(out.type, UVS_TYPE_SEQPACKET);
	assert_int_equal(out.op, UVS_OP_RST);
	assert_int_equal(out.len, 0);
	assert_int_equal(out.flags, 0);
	assert_int_equal(out.buf_alloc, 0);
	assert_int_equal(out.fwd_cnt, 0);
	/* unknown type is copied as is (Linux copies the offending packet's type) */
	req.type = 7;
	uvs_pkt_reply(&out, &req, UVS_OP_RST);
	assert_int_equal(out.type, 7);
}

static void
op_names(void **state)
{
	(void)state;
	assert_string_equal(uvs_op_str(UVS_OP_INVALID), "INVALID");
	assert_string_equal(uvs_op_str(UVS_OP_REQUEST), "REQUEST");
	assert_string_equal(uvs_op_str(UVS_OP_RESPONSE), "RESPONSE");
	assert_string_equal(uvs_op_str(UVS_OP_RST), "RST");
	assert_string_equal(uvs_op_str(UVS_OP_SHUTDOWN), "SHUTDOWN");
	assert_string_equal(uvs_op_str(UVS_OP_RW), "RW");
	assert_string_equal(uvs_op_str(UVS_OP_CREDIT_UPDATE), "CREDIT_UPDATE");
	assert_string_equal(uvs_op_str(UVS_OP_CREDIT_REQUEST), "CREDIT_REQUEST");
	assert_string_equal(uvs_op_str(8), "?");
	assert_string_equal(uvs_op_str(9), "?");
	assert_string_equal(uvs_op_str(0xffff), "?");
}

static void
err_names(void **state)
{
	unsigned int i, j;

	(void)state;
	assert_string_equal(uvs_pkt_err_str(UVS_PKT_OK), "ok");
	assert_string_equal(uvs_pkt_err_str(UVS_PKT_SHORT), "short_header");
	assert_string_equal(uvs_pkt_err_str(UVS_PKT_TOO_LONG), "len_over_64k");
	assert_string_equal(uvs_pkt_err_str(UVS_PKT_TRUNCATED), "len_over_buffer");
	assert_string_equal(uvs_pkt_err_str(UVS_PKT_CTL_PAYLOAD), "payload_on_control_op");
	assert_string_equal(uvs_pkt_err_str(UVS_PKT_BAD_SRC), "bad_src_cid");
	assert_string_equal(uvs_pkt_err_str(UVS_PKT_BAD_DST), "bad_dst_cid");
	assert_string_equal(uvs_pkt_err_str(UVS_PKT_ERR_MAX), "?");
	assert_string_equal(uvs_pkt_err_str((enum uvs_pkt_err) - 1), "?");
	/* every error has a distinct name: they become counter names */
	for (i = 0; i < UVS_PKT_ERR_MAX; i++)
		for (j = i + 1; j < UVS_PKT_ERR_MAX; j++)
			assert_string_not_equal(uvs_pkt_err_str((enum uvs_pkt_err)i),
					uvs_pkt_err_str((enum uvs_pkt_err)j));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(header_layout_is_wire_format),
		cmocka_unit_test(check_ok_for_valid_packets),
		cmocka_unit_test(check_unknown_type_and_op_are_not_parse_errors),
		cmocka_unit_test(check_len_over_64k_is_too_long),
		cmocka_unit_test(check_len_over_payload_is_truncated),
		cmocka_unit_test(check_control_op_with_payload_is_refused),
		cmocka_unit_test(check_bad_src_cid),
		cmocka_unit_test(check_bad_dst_cid),
		cmocka_unit_test(reply_swaps_addresses_and_clears_credit),
		cmocka_unit_test(op_names),
		cmocka_unit_test(err_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
