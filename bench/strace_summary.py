#!/usr/bin/env python3
"""Per-syscall totals from a sandbox's --strace log: where a guest's time goes.

    seedsc --strace --debug-log=/tmp/run.log do -- CMD...
    python3 bench/strace_summary.py /tmp/run.log [--top N]

For each syscall name: calls, the handlers' summed time (the "(12.3us)"
of each exit line: the sentry's own work, blocking included) and the
summed gap from a call's return to the same thread's next call (the guest's
own work plus the platform's round trip: natively that gap is the user time
between two calls, a few microseconds). Sorted by handler + gap time.
Calls still open at the end of the log (an exit_group, a blocked wait) have
no exit line and are not counted.
"""
import argparse
import collections
import re
import sys

# D1203 22:20:24.711489   29606] [   1:   1] comm X name(args) = res (12.3us)
LINE = re.compile(r"^\w\d{4} (\d+):(\d+):(\d+\.\d+)\s+\d+\] \[\s*\d+:\s*(\d+)\] (.*?) ([EX]) (\w+)\(")
ELAPSED = re.compile(r"\((\d+(?:\.\d+)?)(us|µs|ms|s)\)\s*$")
UNIT = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0}


def summarize(lines):
    calls = collections.Counter()
    handler = collections.Counter()
    gap = collections.Counter()
    last_exit = {}  # tid -> (time, name)
    first = last = None
    for line in lines:
        m = LINE.match(line)
        if not m:
            continue
        t = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
        first = t if first is None else first
        last = t
        tid, kind, name = m.group(4), m.group(6), m.group(7)
        if kind == "E":
            if tid in last_exit:
                t0, prev = last_exit.pop(tid)
                gap[prev] += max(0.0, t - t0)
            continue
        e = ELAPSED.search(line)
        calls[name] += 1
        handler[name] += float(e.group(1)) * UNIT[e.group(2)] if e else 0.0
        last_exit[tid] = (t, name)
    wall = (last - first) if first is not None else 0.0
    return wall, calls, handler, gap


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("log")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    try:
        with open(args.log, errors="replace") as f:
            wall, calls, handler, gap = summarize(f)
    except OSError as e:
        print(f"strace_summary: {args.log}: {e.strerror}", file=sys.stderr)
        return 2
    if not calls:
        print(f"strace_summary: {args.log}: no --strace exit lines", file=sys.stderr)
        return 1
    print(f"log span {wall:.3f} s, {sum(calls.values())} calls, handlers {sum(handler.values()):.3f} s, "
          f"gaps after calls {sum(gap.values()):.3f} s (summed over threads)")
    print(f"{'syscall':<18} {'calls':>7} {'handler_s':>10} {'us/call':>9} {'gap_s':>8} {'gap_us/call':>12}")
    order = sorted(calls, key=lambda n: -(handler[n] + gap[n]))
    for n in order[:args.top]:
        print(f"{n:<18} {calls[n]:>7} {handler[n]:>10.3f} {handler[n] / calls[n] * 1e6:>9.1f} "
              f"{gap[n]:>8.3f} {gap[n] / calls[n] * 1e6:>12.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
