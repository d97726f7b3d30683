/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * uvs_policy: the grammar (every kind of bad line refused with its line number), name
 * resolution, and matching (actions kept apart, users, groups, ranges and their ends).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "uvs_policy.h"

static const gid_t no_groups[1] = { 0 };

static void
no_policy_allows_everything(void **state)
{
	(void)state;
	assert_true(uvs_policy_allows(NULL, UVS_POLICY_LISTEN, 1000, no_groups, 0, 1));
	assert_true(uvs_policy_allows(NULL, UVS_POLICY_CONNECT, 1000, no_groups, 0, 77));
}

static void
rules_match_by_action_user_group_and_range(void **state)
{
	struct uvs_policy p;
	char err[128] = "";
	const gid_t staff[2] = { 50, 4242 };

	(void)state;
	assert_int_equal(uvs_policy_parse(&p,
					 "# comment line\n"
					 "listen root *        # root anywhere\n"
					 "\n"
					 "listen 1000 7000-7001\n"
					 "  connect\t@4242 3  \n"
					 "connect * 10-12",
					 err, sizeof(err)),
			0);
	assert_int_equal(p.n, 4);
	/* root (by name) anywhere, listen only */
	assert_true(uvs_policy_allows(&p, UVS_POLICY_LISTEN, 0, no_groups, 0, 1));
	assert_true(uvs_policy_allows(&p, UVS_POLICY_LISTEN, 0, no_groups, 0, UINT32_MAX));
	/* uid 1000: the range and its ends, nothing outside */
	assert_false(uvs_policy_allows(&p, UVS_POLICY_LISTEN, 1000, no_groups, 0, 6999));
	assert_true(uvs_policy_allows(&p, UVS_POLICY_LISTEN, 1000, no_groups, 0, 7000));
	assert_true(uvs_policy_allows(&p, UVS_POLICY_LISTEN, 1000, no_groups, 0, 7001));
	assert_false(uvs_policy_allows(&p, UVS_POLICY_LISTEN, 1000, no_groups, 0, 7002));
	/* a listen rule does not allow connecting */
	assert_false(uvs_policy_allows(&p, UVS_POLICY_CONNECT, 1000, no_groups, 0, 7000));
	assert_false(uvs_policy_allows(&p, UVS_POLICY_CONNECT, 0, no_groups, 0, 3));
	/* group members (any of their groups) may connect to CID 3 */
	assert_true(uvs_policy_allows(&p, UVS_POLICY_CONNECT, 1234, staff, 2, 3));
	assert_false(uvs_policy_allows(&p, UVS_POLICY_CONNECT, 1234, staff, 1, 3));
	assert_false(uvs_policy_allows(&p, UVS_POLICY_CONNECT, 1234, staff, 2, 4));
	/* everyone to 10..12 */
	assert_true(uvs_policy_allows(&p, UVS_POLICY_CONNECT, 99, no_groups, 0, 10));
	assert_true(uvs_policy_allows(&p, UVS_POLICY_CONNECT, 99, no_groups, 0, 12));
	assert_false(uvs_policy_allows(&p, UVS_POLICY_CONNECT, 99, no_groups, 0, 13));
	uvs_policy_free(&p);
	assert_int_equal(p.n, 0);
}

static void
empty_policy_refuses_everything(void **state)
{
	struct uvs_policy p;
	char err[128];

	(void)state;
	assert_int_equal(uvs_policy_parse(&p, "# nothing allowed\n\n", err, sizeof(err)), 0);
	assert_false(uvs_policy_allows(&p, UVS_POLICY_LISTEN, 0, no_groups, 0, 5000));
	assert_false(uvs_policy_allows(&p, UVS_POLICY_CONNECT, 0, no_groups, 0, 3));
	uvs_policy_free(&p);
}

static void
socket_quotas_take_the_largest_matching_rule(void **state)
{
	struct uvs_policy p;
	char err[128] = "";
	const gid_t staff[2] = { 50, 4242 };

	(void)state;
	/* no policy, or no sockets rule: no quota */
	assert_int_equal(uvs_policy_quota(NULL, 1000, no_groups, 0), UINT32_MAX);
	assert_int_equal(uvs_policy_parse(&p, "listen * *\n", err, sizeof(err)), 0);
	assert_int_equal(uvs_policy_quota(&p, 1000, no_groups, 0), UINT32_MAX);
	uvs_policy_free(&p);
	assert_int_equal(
			uvs_policy_parse(&p,
					"sockets *     100\n"
					"sockets 1000  5     # below everyone's: the larger holds\n"
					"sockets 1001  500\n"
					"sockets @4242 1000\n"
					"sockets root  *\n"
					"sockets 1002  0\n",
					err, sizeof(err)),
			0);
	assert_int_equal(uvs_policy_quota(&p, 1000, no_groups, 0), 100);
	assert_int_equal(uvs_policy_quota(&p, 1001, no_groups, 0), 500);
	assert_int_equal(uvs_policy_quota(&p, 1234, staff, 2), 1000);
	assert_int_equal(uvs_policy_quota(&p, 1234, staff, 1), 100);
	assert_int_equal(uvs_policy_quota(&p, 0, no_groups, 0), UINT32_MAX);
	assert_int_equal(uvs_policy_quota(&p, 1002, no_groups, 0), 100); /* 0 < everyone's */
	/* a sockets rule allows nothing else */
	assert_false(uvs_policy_allows(&p, UVS_POLICY_LISTEN, 1000, no_groups, 0, 100));
	uvs_policy_free(&p);
	assert_int_equal(uvs_policy_parse(&p, "sockets 1002 0\n", err, sizeof(err)), 0);
	assert_int_equal(uvs_policy_quota(&p, 1002, no_groups, 0), 0);
	assert_int_equal(uvs_policy_quota(&p, 1003, no_groups, 0), UINT32_MAX);
	uvs_policy_free(&p);
}

static void
bad_lines_are_refused_with_their_number(void **state)
{
	static const struct {
		const char *text, *why;
	} bad[] = {
		{ "listen root\n", "line 1: want" },
		{ "ok\n", "line 1: want" },
		{ "listen root * extra\n", "line 1: want" },
		{ "# fine\nlisten root 1 2 3\n", "line 2: too many words" },
		{ "bind root 5000\n", "line 1: unknown action" },
		{ "listen no_such_user_xyz 5000\n", "line 1: no such user or group" },
		{ "connect @no_such_group_xyz 3\n", "line 1: no such user or group" },
		{ "listen root 7001-7000\n", "line 1: bad range" },
		{ "listen root 5000-\n", "line 1: bad range" },
		{ "listen root -5\n", "line 1: bad range" },
		{ "listen root 4294967296\n", "line 1: bad range" },
		{ "listen root 12abc\n", "line 1: bad range" },
		{ "\n\n\nconnect * x\n", "line 4: bad range" },
		{ "sockets root 1-5\n", "line 1: bad count" },
		{ "sockets root -1\n", "line 1: bad count" },
		{ "sockets root 4294967296\n", "line 1: bad count" },
		{ "sockets root\n", "line 1: want" },
	};
	char err[128];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct uvs_policy p;

		err[0] = '\0';
		assert_int_equal(uvs_policy_parse(&p, bad[i].text, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, bad[i].why));
		assert_null(p.rules); /* nothing half-parsed is kept */
	}
}

static void
long_lines_and_files_are_bounded(void **state)
{
	char *text = malloc(UVS_POLICY_LINE_MAX + 16);
	struct uvs_policy p;
	char err[128];

	(void)state;
	assert_non_null(text);
	memset(text, ' ', UVS_POLICY_LINE_MAX + 8);
	memcpy(text, "listen root 1", 13);
	text[UVS_POLICY_LINE_MAX + 8] = '\0';
	assert_int_equal(uvs_policy_parse(&p, text, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "longer than"));
	free(text);
}

static void
load_reads_a_file_and_refuses_odd_ones(void **state)
{
	char path[] = "/tmp/uvs-policy-XXXXXX";
	struct uvs_policy p;
	char err[256];
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "listen 0 5000\n", 14), 14);
	assert_int_equal(uvs_policy_load(&p, path, err, sizeof(err)), 0);
	assert_true(uvs_policy_allows(&p, UVS_POLICY_LISTEN, 0, no_groups, 0, 5000));
	uvs_policy_free(&p);
	/* a NUL byte inside */
	assert_int_equal(write(fd, "\0listen 0 6000\n", 15), 15);
	assert_int_equal(uvs_policy_load(&p, path, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "NUL"));
	close(fd);
	unlink(path);
	assert_int_equal(uvs_policy_load(&p, path, err, sizeof(err)), -ENOENT);
	assert_int_equal(uvs_policy_load(&p, "/tmp", err, sizeof(err)), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(no_policy_allows_everything),
		cmocka_unit_test(rules_match_by_action_user_group_and_range),
		cmocka_unit_test(empty_policy_refuses_everything),
		cmocka_unit_test(socket_quotas_take_the_largest_matching_rule),
		cmocka_unit_test(bad_lines_are_refused_with_their_number),
		cmocka_unit_test(long_lines_and_files_are_bounded),
		cmocka_unit_test(load_reads_a_file_and_refuses_odd_ones),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
