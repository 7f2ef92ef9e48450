#!/usr/bin/python3
"""How fast a seedd node gets ready (issue 10), two seedd binaries side by side.

  boot:    from exec to seedd listening, with its default seeds (python and
           node level 1, and the level-0 seed where the binary has one);
  replicas: 8 concurrent calls of a function that sleeps 1 s, from its
           seed's one copy: how many copies seedd makes (--seed-replicas=4
           allows 4; GET /metrics seedd_seed_copies) and when the last is up.

Rounds alternate between --seedd and --seedd-base (e.g. a build of main
before a change) so both see the same machine; the load average is printed
with each row. Needs root.

usage: seedd_node_bench.py --seedd=BIN --seedd-base=BIN --seedsc=BIN [--rounds=5]
"""
import argparse
import json
import os
import subprocess
import tempfile
import threading
import time

from seedd_proc import SeeddProcess

NAP = "import time\ndef handler(event, context):\n    time.sleep(1)\n    return 1\n"


def load():
    return open("/proc/loadavg").read().split()[0]


class Node(SeeddProcess):
    def __init__(self, seedd, seedsc, state, *flags):
        super().__init__(seedd, seedsc, state, ("--cgroup-pool=0", *flags))
        self.boot_ms = self.listen_ms

    def copies(self, seed):
        _, data = self.request("GET", "/metrics")
        for line in data.decode().splitlines():
            if line.startswith(f'seedd_seed_copies{{seed="{seed}"}}'):
                return int(float(line.split()[-1]))
        return 0


def replica_ramp(node):
    """(copies of the L1 seed after 8 concurrent calls, ms from the burst to the last one made)."""
    node.request("PUT", "/functions/nap",
            json.dumps({"runtime": "python", "handler": "main.handler", "files": {"main.py": NAP}}))
    t0 = time.perf_counter()
    calls = [threading.Thread(target=node.request, args=("POST", "/invoke/nap", "{}")) for _ in range(8)]
    for t in calls:
        t.start()
    copies, last = 1, None
    settle = None  # the calls are done: replicas asked for are made within a few seconds
    while settle is None or time.perf_counter() < settle:
        n = node.copies("python-l1")
        if n > copies:
            copies, last = n, (time.perf_counter() - t0) * 1e3
        if settle is None and not any(t.is_alive() for t in calls):
            settle = time.perf_counter() + 3
        time.sleep(0.02)
    return copies, last


def med(v):
    v = sorted(x for x in v if x is not None)
    return v[len(v) // 2] if v else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seedd", required=True)
    ap.add_argument("--seedd-base", required=True)
    ap.add_argument("--seedsc", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="seedd-node-bench.", dir="/tmp")
    bins = {"seedd": a.seedd, "seedd base": a.seedd_base}
    boot, ramp = {k: [] for k in bins}, {k: [] for k in bins}
    print(f"start {time.strftime('%H:%M:%S')} load {load()}", flush=True)
    for r in range(a.rounds):
        for name, binary in bins.items():
            node = Node(os.path.abspath(binary), os.path.abspath(a.seedsc), f"{tmp}/{name.replace(' ', '-')}-{r}",
                        "--promote-after=64", "--seed-replicas=4")
            try:
                boot[name].append(node.boot_ms)
                ramp[name].append(replica_ramp(node))
            finally:
                node.stop()
            copies, last = ramp[name][-1]
            print(f"  round {r} {name:10} boot {boot[name][-1]:7.0f} ms  {copies} copies, the last after "
                  f"{last or float('nan'):7.0f} ms  load {load()}", flush=True)
    print(f"end {time.strftime('%H:%M:%S')} load {load()}\n")
    print("| seedd | boot p50 ms | boot min..max | copies after the burst (p50) | last copy up p50 ms | min..max |")
    print("|---|---|---|---|---|---|")
    for name in bins:
        b = boot[name]
        c = [last for _, last in ramp[name] if last is not None]
        print(f"| {name} | {med(b):.0f} | {min(b):.0f}..{max(b):.0f} | {med([n for n, _ in ramp[name]])} | "
              f"{med(c):.0f} | {(min(c) if c else float('nan')):.0f}..{(max(c) if c else float('nan')):.0f} |")
    subprocess.run(["rm", "-rf", tmp])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
