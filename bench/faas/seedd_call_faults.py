#!/usr/bin/python3
"""Page faults an L2 call costs its instance's host processes (issue 10).

faas_bench's "small" function, with a 0.2 s sleep after its work, is
deployed, promoted to its level-2 seed and called --calls times, one at a
time. While each call sleeps, the minor faults (/proc/PID/stat minflt) of
every process in the instance's pool cgroup are read: the forked sentry,
its stub copy (the guest's memory), zygote and anchor. A stub copy's count
includes what it took while it was made, in the seed's spare (the same in
both columns); faults that another process takes for it (process_vm_writev)
are not its. With --seedsc-base (or --seedd-base) the base build runs the
same calls, alternating rounds, and --loaded=yes adds a round of each
beside stress-ng (seedd_rounds.py).

usage: seedd_call_faults.py --seedd=SEEDD --seedsc=NEW [--seedsc-base=OLD]
         [--seedd-base=OLD] [--calls=40] [--rounds=2] [--loaded=no|yes] [--smoke]
Needs root (seedd boots sandboxes).
"""
import argparse
import glob
import json
import sys
import tempfile
import threading
import time

from faas_bench import SMALL_ANSWER, SMALL_EVENT, pct
from seedd_proc import SeeddProcess
from seedd_rounds import add_round_flags, run_rounds

SLEEPY = ("import json, re, time\n"
          "def handler(event, context):\n"
          "    words = re.findall(r'[a-z]+', event['text'].lower())\n"
          "    r = {'words': len(words), 'total': sum(event['nums'])}\n"
          "    time.sleep(0.2)\n"
          "    return r\n")


def instance_faults():
    """{pid: (comm, minflt)} of the processes in seedd's pool cgroups now."""
    out = {}
    for procs in glob.glob("/sys/fs/cgroup/memory/seedd-*/c*/cgroup.procs"):
        try:
            pids = [int(x) for x in open(procs).read().split()]
        except OSError:
            continue
        for pid in pids:
            try:
                stat = open(f"/proc/{pid}/stat").read()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2:].split()
            out[pid] = (comm, int(fields[7]))  # minflt: field 10
    return out


def one_round(seedd, seedsc, calls, tmp, flags=()):
    """Per call: {"total": faults, "max_process": the largest process's, "comm C": C's}."""
    node = SeeddProcess(seedd, seedsc, tempfile.mkdtemp(prefix="s.", dir=tmp), flags)
    try:
        conn, body = node.connection(), json.dumps(SMALL_EVENT)
        node.deploy_l2("sleepy", SLEEPY, body, conn)
        # A few calls first: the seed learns what its forks write.
        for _ in range(4):
            node.request_with_headers("POST", "/invoke/sleepy", body, conn)
        rows = []
        for _ in range(calls):
            seen = {}
            done = threading.Event()

            def sample():
                time.sleep(0.12)  # inside the handler's sleep
                seen.update(instance_faults())
                done.set()

            th = threading.Thread(target=sample)
            th.start()
            st, r, data = node.request_with_headers("POST", "/invoke/sleepy", body, conn)
            th.join()
            if st != 200 or json.loads(data) != SMALL_ANSWER:
                raise SystemExit(f"call failed: {st} {data[:200]!r}")
            if not seen:
                continue
            counts = sorted((f for _, f in seen.values()), reverse=True)
            row = {"total": sum(counts), "max_process": counts[0], "processes": len(counts)}
            for comm, f in seen.values():
                row[f"comm {comm}"] = row.get(f"comm {comm}", 0) + f
            rows.append(row)
        return rows
    finally:
        node.stop()


def main():
    ap = argparse.ArgumentParser()
    add_round_flags(ap, calls=40, rounds=2, loaded=False)
    a = ap.parse_args()
    results = run_rounds(a, one_round, "callfaults.")
    keys = ["total", "max_process", "processes"]
    keys += sorted({k for _, _, rows in results for r in rows for k in r if k.startswith("comm ")})
    print("\nminor faults of an L2 instance's host processes per call (p50 / p90; n calls)\n")
    print("| seedsc | load | " + " | ".join(keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for name, load, rows in results:
        cells = []
        for k in keys:
            v = [r.get(k, 0) for r in rows]
            cells.append(f"{pct(v, 50):.0f} / {pct(v, 90):.0f}" if v else "-")
        print(f"| {name} | {load} | " + " | ".join(cells) + f" |  n={len(rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
