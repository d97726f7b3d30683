/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fair shares of one polling thread between the clients it serves (uvsockd's guests), by
 * what serving each one costs, measured, not by how many packets it sent.
 *
 * Each client has a virtual time: the cost (TSC cycles, in uvsockd) of the passes in which
 * it had work. A client more than a quantum ahead of the slowest busy client sits passes
 * out until the others catch up. A client with no work does not bank time: its virtual time
 * is raised to the busy clients' floor while it idles, and one that comes back (or is new)
 * far behind is lifted to one quantum behind the floor: it catches up at most a quantum.
 *
 * Pure code: no clock, no system call, no allocation. The caller measures the cost.
 */
#ifndef UVS_FAIR_H
#define UVS_FAIR_H

#include <stdbool.h>
#include <stdint.h>

struct uvs_fair_ent {
	uint64_t vtime; /* cost of its busy passes, raised to the floor while idle */
	uint64_t skips; /* passes sat out (a counter for operators) */
	uint64_t busy;	/* cost of its busy passes, in all (a counter for operators) */
};

struct uvs_fair {
	uint64_t quantum;    /* how far ahead of the floor a client may run */
	uint64_t floor;	     /* lowest virtual time of the clients runnable last pass */
	uint64_t next_floor; /* the same for this pass, so far (UINT64_MAX: none yet) */
	bool skipped;	     /* a client sat this pass out: there is work left */
};

/** Start with every client at 0 and quantum as given (in the caller's cost unit). */
void uvs_fair_init(struct uvs_fair *f, uint64_t quantum);

/** Whether e may be served this pass. If not, it is counted as sitting the pass out, and
 * stays runnable (its virtual time holds up the next floor). */
bool uvs_fair_may_run(struct uvs_fair *f, struct uvs_fair_ent *e);

/** After serving e: cost it took, and whether it had work. A client with work is charged;
 * one without is raised to the floor. */
void uvs_fair_charge(struct uvs_fair *f, struct uvs_fair_ent *e, uint64_t cost, bool worked);

/** At the end of a pass: the floor moves to the lowest virtual time of this pass's runnable
 * clients (busy or sitting out), and stays where it was if none was.
 * @return whether a client sat this pass out (the pass had work left over) */
bool uvs_fair_pass_end(struct uvs_fair *f);

#endif /* UVS_FAIR_H */
