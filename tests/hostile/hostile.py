#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Helpers of tests/hostile/test_hostile.sh.

measure PERF CID PORT SECONDS MIN PID [CONTROL_PID [JUDGE]]: the well-behaved guest's h2g throughput
    while the hostile guest (process PID) runs and while it is stopped, interleaved.
    uvsock-perf bulk prints a STATS line every INTERVAL; every PHASE lines the attacker is
    stopped (SIGSTOP) or let go (SIGCONT), and the first line of each phase, which straddles
    the switch, is left out. So both sides see the same machine at nearly the same time: on
    a small shared machine the load of other processes drifts over seconds, and two separate
    runs, one with and one without the attack, differ by more than the attack costs. With
    CONTROL_PID (a well-behaved guest loading the daemon the way the attack does), its phases
    are interleaved too, and with JUDGE "control" the ratio is attacked/control instead of
    attacked/baseline; with JUDGE "either" it is the larger of the two: the attack passes if
    it cost less than MIN of the baseline, or no more than its twin cost in the same run.
    Prints one line, RATIO ratio=R ... (Gbit/s medians); exit status 1 if R < MIN after
    ROUNDS pooled runs.

check BEFORE AFTER LOG: compare the guest's telemetry (uvsock-ss --guest CID --json, taken
    before the attack and after its report) with what the attacker said it sent (its
    EXPECT_DELTA and EXPECT_NOW lines), and require every other drop counter to be unchanged.
    Prints the counters that rose; exit status 1 on a mismatch.
"""
import json
import os
import signal
import statistics
import subprocess
import sys
import time

# STATS period of uvsock-perf and lines per phase (the first is dropped): 0.3 s phases.
INTERVAL = 0.1
PHASE = 3
# Measurements pooled at most before a ratio below the minimum is final: one short run's
# medians move by 10-20% on a busy two-CPU machine; a real shortfall stays in the pool.
ROUNDS = 3
# Counters whose rise is a refusal of the guest's traffic. The engine's (drop_*) restart at
# every attach; the daemon's add up over its life.
ENGINE_PREFIX = "drop_"
DAEMON_PREFIXES = ("guest_drop_", "bad_header_", "bad_chain_")


def cpu_seconds(pid):
    """CPU time process pid used so far (user and system), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_round(perf, cid, port, seconds, pids, samples, ran, used):
    """One run of uvsock-perf bulk; the phases rotate over samples' keys: each names the
    process that runs during it (the others are stopped), or none for "baseline". ran[name]
    and used[name] add up the seconds each process was let run and the CPU it took then."""
    phases = list(samples)
    since = [None, 0.0, 0.0]  # the phase running, since when, its process's CPU then
    proc = subprocess.Popen(
        [perf, "--interval", str(INTERVAL), "bulk", "--cid", cid, "--port", port,
         "--dir", "h2g", "--seconds", str(seconds)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def enter(phase):
        now = time.monotonic()
        if since[0] in ran:
            ran[since[0]] += now - since[1]
            used[since[0]] += cpu_seconds(pids[since[0]]) - since[2]
        since[:] = [phase, now, cpu_seconds(pids[phase]) if phase in pids else 0.0]
        for name, pid in pids.items():
            os.kill(pid, signal.SIGCONT if name == phase else signal.SIGSTOP)

    lines = 0
    try:
        enter(phases[0])
        for line in proc.stderr:
            if not line.startswith("STATS "):
                continue
            fields = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
            phase = phases[lines // PHASE % len(phases)]
            if lines % PHASE != 0:
                samples[phase].append(float(fields["Gbit/s"]))
            lines += 1
            if lines % PHASE == 0:
                enter(phases[lines // PHASE % len(phases)])
    finally:
        enter(None)
        for pid in pids.values():
            os.kill(pid, signal.SIGCONT)
        proc.wait()
    if proc.returncode != 0:
        sys.exit(f"hostile.py: uvsock-perf failed (status {proc.returncode})")


def measure(perf, cid, port, seconds, min_ratio, pid, control, judge):
    """Rounds of measure_round() until the pooled medians show the ratio, or ROUNDS ran.
    The ratio is attacked/baseline, or with judge "control" attacked/control: the attack
    must cost the other guest no more than that well-behaved load does; with judge "either"
    the larger of the two."""
    pids = {"attacked": pid}
    samples = {"attacked": [], "baseline": []}
    if control:
        pids["control"] = control
        samples = {"attacked": [], "baseline": [], "control": [], "baseline2": []}
        seconds *= 2  # twice the phases: as many samples of the attack
    # the CPU the attacker (and its twin) took while let run, as a share of one CPU: on a
    # machine whose CPUs the daemon and the other guest need, that much is theirs no more
    ran = {name: 0.0 for name in pids}
    used = {name: 0.0 for name in pids}
    for _ in range(ROUNDS):
        measure_round(perf, cid, port, seconds, pids, samples, ran, used)
        if any(len(v) < 3 for v in samples.values()):
            sys.exit("hostile.py: too few STATS lines from uvsock-perf")
        med = {k: statistics.median(v) for k, v in samples.items()}
        base = statistics.median(samples["baseline"] + samples.get("baseline2", []))
        by_base = med["attacked"] / base if base > 0 else float("inf")
        by_control = 0.0
        if control:
            by_control = med["attacked"] / med["control"] if med["control"] > 0 else float("inf")
        ratio = {"baseline": by_base, "control": by_control}.get(judge, max(by_base, by_control))
        if ratio >= min_ratio:
            break
    if ratio < min_ratio or min(med.values()) == 0:
        # for the log: which phases were slow (a stall shows as zeros)
        for k, v in samples.items():
            print(f"hostile.py: {k} Gbit/s: {' '.join(f'{x:.2f}' for x in v)}",
                  file=sys.stderr)
    def of(x):
        return f"{x / base:.3f}" if base > 0 else "inf"

    cpu = {name: used[name] / ran[name] if ran[name] > 0 else 0.0 for name in pids}

    line = (f"RATIO ratio={ratio:.3f} attacked={med['attacked']:.3f} baseline={base:.3f} "
            f"of_baseline={of(med['attacked'])} attacker_cpu={cpu['attacked']:.3f}")
    if control:
        line += (f" control={med['control']:.3f} control_of_baseline={of(med['control'])}"
                 f" control_cpu={cpu['control']:.3f} judge={judge}")
    print(line + f" samples={len(samples['attacked'])}")
    return 0 if ratio >= min_ratio else 1


def expectations(log):
    delta, now = {}, {}
    for line in open(log):
        words = line.split()
        if words and words[0] in ("EXPECT_DELTA", "EXPECT_NOW"):
            into = delta if words[0] == "EXPECT_DELTA" else now
            for w in words[1:]:
                k, v = w.split("=", 1)
                into[k] = int(v) if v.isdigit() else v
    if "state" not in now:
        sys.exit(f"hostile.py: no EXPECT lines in {log}")
    return delta, now


def check(before_path, after_path, log):
    before = json.load(open(before_path))["guest"]
    after = json.load(open(after_path))["guest"]
    delta, now = expectations(log)
    bad, covered = [], set()
    for key, want in delta.items():
        keys = [k for k in after if k.startswith(key[:-1])] if key.endswith("*") else [key]
        covered.update(keys)
        got = sum(after.get(k, 0) - before.get(k, 0) for k in keys)
        if got != want:
            bad.append(f"{key} rose by {got}, the attacker sent {want}")
    for key, want in now.items():
        covered.add(key)
        if after.get(key) != want:
            bad.append(f"{key} is {after.get(key)}, expected {want}")
    for key in after:
        if key in covered:
            continue
        if key.startswith(ENGINE_PREFIX) and after[key] != 0:
            bad.append(f"{key} is {after[key]}, expected 0")
        if key.startswith(DAEMON_PREFIXES) and after[key] != before[key]:
            bad.append(f"{key} rose by {after[key] - before[key]}, expected 0")
    risen = [f"{k}+{after[k] - before[k]}" for k in sorted(after)
             if k.startswith(DAEMON_PREFIXES) and after[k] != before[k]]
    risen += [f"{k}={after[k]}" for k in sorted(after)
              if k.startswith(ENGINE_PREFIX) and after[k] != 0]
    print("COUNTERS " + " ".join(risen))
    for b in bad:
        print(f"MISMATCH {b}")
    return 1 if bad else 0


def main():
    if len(sys.argv) in (8, 9, 10) and sys.argv[1] == "measure":
        control = int(sys.argv[8]) if len(sys.argv) >= 9 else 0
        judge = sys.argv[9] if len(sys.argv) == 10 else "baseline"
        if judge not in ("baseline", "control", "either") or (judge != "baseline" and not control):
            sys.exit(__doc__)
        return measure(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]),
                       float(sys.argv[6]), int(sys.argv[7]), control, judge)
    if len(sys.argv) == 5 and sys.argv[1] == "check":
        return check(sys.argv[2], sys.argv[3], sys.argv[4])
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
