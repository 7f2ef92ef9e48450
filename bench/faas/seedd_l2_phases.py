#!/usr/bin/python3
"""Where an L2 call's time goes (issue 10: L2 p50 <= 5 ms at x1), per call.

One small Python function (faas_bench's "small") is deployed, promoted to
its level-2 seed, then called --calls times, one at a time, on one kept-alive
connection. For every call the client's latency and seedd's Server-Timing
phases (queue, fork, run, destroy, total) are kept per call, so that
percentiles of each phase and of what the phases leave out ("other") come
from the same calls. With --seedd-base=OLD the old seedd runs the same rounds,
alternating with the new one (base, new, base, new, ...), so both see the
same load; with --loaded=yes one more round of each runs beside
`stress-ng --cpu 2`. The load average is printed with every round
(seedd_rounds.py).

With --seedsc-base=OLD_SEEDSC the base rounds run that seedsc (a change in
the sentry: --seedd-base defaults to --seedd then).

With --variant=NAME=FLAGS (repeatable) the rounds run --seedd with each set of
flags in turn instead (e.g. --variant="warm=--cgroup-warm=30s").

usage: seedd_l2_phases.py --seedd=NEW --seedsc=SEEDSC [--seedd-base=OLD]
         [--seedsc-base=OLD_SEEDSC] [--variant=NAME=FLAGS ...] [--calls=300] [--rounds=3]
         [--gap-ms=0] [--loaded=yes|no] [--smoke]
Needs root (seedd boots sandboxes).
"""
import argparse
import json
import sys
import tempfile
import time

from faas_bench import SMALL, SMALL_ANSWER, SMALL_EVENT, pct
from seedd_proc import SeeddProcess
from seedd_rounds import add_round_flags, run_rounds

PHASES = ("queue", "fork", "start", "run", "destroy")
# Parts of a phase above, shown beside it (not summed): "setup", the fork's
# part spent in the new sandbox's own setup, its cgroup join among it; "rpc",
# the part of queue + fork in FRI's Fork (state files, the seed's Fork RPC).
PARTS = ("setup", "rpc")


GAP_S = 0.0  # --gap-ms: the pause before each call (0: back to back)


def one_round(seedd, seedsc, calls, tmp, flags=()):
    """[{phase: ms, "client": ms, "other": ms}] for `calls` L2 calls."""
    node = SeeddProcess(seedd, seedsc, tempfile.mkdtemp(prefix="s.", dir=tmp), flags)
    try:
        conn, body = node.connection(), json.dumps(SMALL_EVENT)
        node.deploy_l2("small", SMALL, body, conn)
        rows = []
        for _ in range(calls):
            time.sleep(GAP_S)
            t0 = time.perf_counter()
            st, r, data = node.request_with_headers("POST", "/invoke/small", body, conn)
            ms = (time.perf_counter() - t0) * 1e3
            if st != 200 or json.loads(data) != SMALL_ANSWER:
                raise SystemExit(f"call failed: {st} {data[:200]!r}")
            timing = r.getheader("Server-Timing")
            if 'path;desc="L2"' not in timing:
                raise SystemExit(f"a call did not come from the level-2 seed: {timing}")
            row = {"client": ms}
            for part in timing.split(","):
                name, _, dur = part.strip().partition(";dur=")
                if dur:
                    row[name] = float(dur)
            row["other"] = row["total"] - sum(row.get(p, 0.0) for p in PHASES)
            rows.append(row)
        return rows
    finally:
        node.stop()


def main():
    ap = argparse.ArgumentParser()
    add_round_flags(ap, calls=300, rounds=3, loaded=True)
    ap.add_argument("--gap-ms", type=float, default=0.0,
                    help="pause before each call (sporadic calls: a cgroup join then finds the "
                         "kernel's migration lock idle unless something keeps it out of the grace "
                         "period)")
    a = ap.parse_args()
    global GAP_S
    GAP_S = a.gap_ms / 1e3
    results = run_rounds(a, one_round, "l2phases.")
    seen = [p for p in PHASES + PARTS if any(p in r for _, _, rows in results for r in rows)]
    keys = ["client", "total"] + seen + ["other"]
    print(f"\nL2 calls at x1, {a.gap_ms:g} ms apart, ms per call (p50 / p90 / p99 over {a.calls} "
          f"calls per round)\n")
    print("| seedd | load | " + " | ".join(keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for name, load, rows in results:
        cells = []
        for k in keys:
            v = [r.get(k, 0.0) for r in rows]
            cells.append(f"{pct(v, 50):.2f} / {pct(v, 90):.1f} / {pct(v, 99):.1f}")
        print(f"| {name} | {load} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
