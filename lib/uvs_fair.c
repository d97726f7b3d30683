/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Implementation notes
 *
 * Why by cost: uvsockd used to give each guest a burst of up to 64 chains per pass. Chains
 * do not cost the same. A guest opening connections and filling each with 256 KiB (valid
 * traffic: a REQUEST, four 64 KiB packets, an RST) makes the daemon fault in fresh pages of
 * a new shared segment for every byte, map and unmap it, and talk to the host program; its
 * 64 chains took several times what another guest's 64 chains of streaming data took, and
 * that guest kept 0.09 to 0.18 of its throughput (tests/hostile, "credit" and "churn"). The
 * cost measured around each guest's turn covers all of it, whatever its cause.
 *
 * This is the virtual-time scheme of fair queueing and of Linux's CFS, cut down: no tree
 * (a pass visits every client anyway), one weight for all. The floor is the lowest virtual
 * time among the clients that wanted the CPU in the last pass; a client may run while it is
 * at most one quantum ahead of it. A client cannot bank time either: one coming back from
 * idle, or new, is lifted to at most one quantum behind the floor, so it catches up for at
 * most a quantum's worth before the others run again.
 *
 * With one busy client, it is the floor and always runs: fairness costs a lone guest
 * nothing but the cost measurement.
 */
#include "uvs_fair.h"

void
uvs_fair_init(struct uvs_fair *f, uint64_t quantum)
{
	*f = (struct uvs_fair){ .quantum = quantum, .next_floor = UINT64_MAX };
}

static void
note_runnable(struct uvs_fair *f, const struct uvs_fair_ent *e)
{
	if (e->vtime < f->next_floor)
		f->next_floor = e->vtime;
}

bool
uvs_fair_may_run(struct uvs_fair *f, struct uvs_fair_ent *e)
{
	if (e->vtime + f->quantum < f->floor)
		e->vtime = f->floor - f->quantum; /* no banked time beyond a quantum */
	if (e->vtime <= f->floor + f->quantum)
		return true;
	e->skips++;
	f->skipped = true;
	note_runnable(f, e);
	return false;
}

void
uvs_fair_charge(struct uvs_fair *f, struct uvs_fair_ent *e, uint64_t cost, bool worked)
{
	if (worked) {
		e->vtime += cost;
		e->busy += cost;
		note_runnable(f, e);
	} else if (e->vtime < f->floor) {
		e->vtime = f->floor;
	}
}

bool
uvs_fair_pass_end(struct uvs_fair *f)
{
	bool skipped = f->skipped;

	if (f->next_floor != UINT64_MAX)
		f->floor = f->next_floor;
	f->next_floor = UINT64_MAX;
	f->skipped = false;
	return skipped;
}
