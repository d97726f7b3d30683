/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of uvs_fair.c: the polling thread's time shared between guests by cost. Passes
 * are simulated: each client, when served and busy, costs a fixed amount.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "uvs_fair.h"

#define QUANTUM 100u
#define NCLIENTS 3

struct sim {
	struct uvs_fair f;
	struct uvs_fair_ent e[NCLIENTS];
	uint64_t cost[NCLIENTS];   /* a busy pass of this client costs this */
	bool busy[NCLIENTS];	   /* whether it has work */
	uint64_t served[NCLIENTS]; /* cost it was given */
	unsigned int runs[NCLIENTS];
};

static void
sim_init(struct sim *s)
{
	*s = (struct sim){ 0 };
	uvs_fair_init(&s->f, QUANTUM);
}

/* One pass over every client. @return uvs_fair_pass_end's answer */
static bool
sim_pass(struct sim *s)
{
	for (unsigned int i = 0; i < NCLIENTS; i++) {
		if (!uvs_fair_may_run(&s->f, &s->e[i]))
			continue;
		s->runs[i]++;
		if (s->busy[i])
			s->served[i] += s->cost[i];
		uvs_fair_charge(&s->f, &s->e[i], s->busy[i] ? s->cost[i] : 1, s->busy[i]);
	}
	return uvs_fair_pass_end(&s->f);
}

static uint64_t
absdiff(uint64_t a, uint64_t b)
{
	return a > b ? a - b : b - a;
}

/* A client whose passes cost 40 times another's gets the same share of time, not 40 times
 * it: what the packet-count burst gave a connection-churning guest. */
static void
busy_clients_share_by_cost(void **state)
{
	struct sim s;

	(void)state;
	sim_init(&s);
	s.cost[0] = 400;
	s.cost[1] = 10;
	s.busy[0] = s.busy[1] = true;
	for (int p = 0; p < 100000; p++)
		sim_pass(&s);
	/* equal within a quantum and one pass of the costlier */
	assert_true(absdiff(s.served[0], s.served[1]) <= QUANTUM + 400);
	assert_true(s.served[1] > 400000); /* and the cheap one ran most passes */
	assert_true(s.e[0].skips > 90000);
	assert_int_equal(s.e[1].skips, 0);
}

/* Alone, a client always runs, whatever it costs. */
static void
lone_client_never_waits(void **state)
{
	struct sim s;

	(void)state;
	sim_init(&s);
	s.cost[0] = 1000000;
	s.busy[0] = true;
	for (int p = 0; p < 1000; p++)
		assert_false(sim_pass(&s));
	assert_int_equal(s.runs[0], 1000);
	assert_int_equal(s.e[0].skips, 0);
	assert_int_equal(s.runs[1], 1000); /* idle ones are still looked at */
}

/* A client that was idle, or is new, does not bank time: back with work, it runs at most
 * about a quantum before the others run again. */
static void
idle_client_banks_nothing(void **state)
{
	struct sim s;
	uint64_t before;
	int p;

	(void)state;
	sim_init(&s);
	s.cost[0] = 50;
	s.cost[1] = 10;
	s.busy[0] = true;
	for (p = 0; p < 10000; p++)
		sim_pass(&s);
	assert_true(s.e[1].vtime + QUANTUM >= s.e[0].vtime); /* lifted while idle */
	s.busy[1] = true;
	before = s.served[1];
	for (p = 0; p < 10000 && s.e[0].skips == 0; p++)
		sim_pass(&s);
	assert_true(s.e[0].skips > 0);
	assert_true(s.served[1] - before <= 2 * QUANTUM + 10);

	/* a newcomer at virtual time 0, far behind: the others sit out for about a quantum of
	 * its time (two, counting their own lead), not until it has caught up with them all */
	uint64_t skips1 = s.e[1].skips;

	s.e[2] = (struct uvs_fair_ent){ 0 };
	s.cost[2] = 10;
	s.busy[2] = true;
	for (p = 0; p < 1000; p++)
		sim_pass(&s);
	assert_true(s.e[1].skips - skips1 <= 2 * QUANTUM / 10 + 2);
	assert_true(s.served[2] >= 1000 * 10 / 2); /* and it got its share */
}

/* A pass where the only busy client sat out says so (the loop must not sleep), and the next
 * pass runs it: a client cannot wait for ever behind clients gone idle. */
static void
sitting_out_is_work_left(void **state)
{
	struct sim s;
	bool left = false;

	(void)state;
	sim_init(&s);
	s.cost[0] = 1000;
	s.cost[1] = 1;
	s.busy[0] = s.busy[1] = true;
	for (int p = 0; p < 10; p++)
		left |= sim_pass(&s);
	assert_true(left);
	s.busy[1] = false;
	unsigned int runs = s.runs[0];

	sim_pass(&s); /* client 0 may still sit out once: the floor is client 1's */
	sim_pass(&s);
	assert_true(s.runs[0] > runs);
	for (int p = 0; p < 100; p++)
		assert_false(sim_pass(&s)); /* then runs every pass */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(busy_clients_share_by_cost),
		cmocka_unit_test(lone_client_never_waits),
		cmocka_unit_test(idle_client_banks_nothing),
		cmocka_unit_test(sitting_out_is_work_left),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
