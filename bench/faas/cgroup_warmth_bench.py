#!/usr/bin/python3
"""What seedd's ways of keeping cgroup joins fast cost everyone else (issue 10).

Two seedds run with favordynmods off, one with --cgroup-warm=WARM ("warm"),
one with --cgroup-warm=0; rounds alternate (off, on, off, on, ...) so that
both arms see the same load, and in both a call every 2 s goes to one seedd:
  off  the calls go to the seedd without warmth; the warm one's thread
       (seedd-warm) has stopped writing, as on a host without the warmth
  on   the calls go to the warm seedd, whose thread writes (a no-op
       migration of itself every 4 ms)
and in each, host_cgroup_cost (bench/host_cgroup_cost.c) times host forks
(fork + _exit + waitpid) and the cgroup attach of an unrelated sleeping
process between two v1 memory cgroups of the bench's own (GAP_MS apart).
Then --cpu-seconds of warmth alone: the seedd-warm thread's CPU
(/proc/PID/task/TID/schedstat) and its writes (/metrics).

With --favordynmods, after those rounds (never before: the kernel cannot be
put back), rounds alternate between a cgroup v1 hierarchy of the bench's own
mounted with favordynmods ("fdm", what seedd --cgroup-favordynmods does) and
unmounted again ("fdm-gone"), in pairs of either order (ABBA).
--favordynmods-only runs those rounds alone (no seedd). On Linux 6.18 the first favordynmods mount
switches cgroup.procs writes to a per-thread-group rwsem until reboot.

With --loaded=yes one more off/on pair (and fdm pair) runs beside
`stress-ng --cpu 2`. The load average is printed with every round.

usage: cgroup_warmth_bench.py --seedd=SEEDD --seedsc=SEEDSC --cost=HOST_CGROUP_COST
         [--rounds=4] [--forks=3000] [--attaches=60] [--gap-ms=30] [--warm=10s]
         [--cpu-seconds=60] [--favordynmods | --favordynmods-only] [--loaded=yes|no]
Needs root (seedd boots sandboxes; the bench makes cgroups and mounts).
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from faas_bench import SMALL, SMALL_EVENT
from seedd_proc import SeeddProcess

MEM = "/sys/fs/cgroup/memory"


def load_average():
    return open("/proc/loadavg").read().split()[0]


def warm_writes(node):
    st, data = node.request("GET", "/metrics")
    m = re.search(rb"^seedd_cgroup_migration_warm_writes_total (\S+)$", data, re.M)
    return int(float(m.group(1))) if m else 0


def warm_thread(pid):
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            if f.read().strip() == "seedd-warm":
                return int(tid)
    raise SystemExit("seedd has no seedd-warm thread (--cgroup-warm=0? no cgroup pool?)")


def thread_cpu_ns(pid, tid):
    """(schedstat run time ns, utime+stime clock ticks) of one thread."""
    with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
        run_ns = int(f.read().split()[0])
    with open(f"/proc/{pid}/task/{tid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return run_ns, int(fields[11]) + int(fields[12])


class Caller:
    """Calls the function every `period` seconds on a thread of its own while running."""

    def __init__(self, node, period=2.0):
        self.node, self.period, self.stop_ev = node, period, threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.calls = 0

    def loop(self):
        body = json.dumps(SMALL_EVENT)
        while not self.stop_ev.is_set():
            st, _ = self.node.request("POST", "/invoke/small", body)
            if st != 200:
                raise SystemExit(f"call failed: {st}")
            self.calls += 1
            self.stop_ev.wait(self.period)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        self.thread.join()


def settle_off(node, warm_s):
    """Waits until the warmth has stopped writing (its linger after the last call)."""
    deadline = time.time() + warm_s + 30
    last = warm_writes(node)
    while time.time() < deadline:
        time.sleep(0.5)
        now = warm_writes(node)
        if now == last:
            return
        last = now
    raise SystemExit("the warmth did not stop writing")


def run_cost(a, cgs):
    out = subprocess.run([a.cost, str(a.forks), str(a.attaches), str(a.gap_ms), *cgs],
                         check=True, capture_output=True, text=True).stdout
    res = {}
    for line in out.splitlines():
        name, *kv = line.split()
        res[name] = {k: float(v) for k, v in (x.split("=") for x in kv)}
    return res


def fdm_mount(where, on):
    if on == os.path.ismount(where):
        return
    if on:
        os.makedirs(where, exist_ok=True)
        subprocess.run(["mount", "-t", "cgroup", "-o", "none,name=seedd_favordynmods,favordynmods",
                        "cgroup", where], check=True)
        if "favordynmods" not in open("/proc/self/mountinfo").read():
            raise SystemExit("the favordynmods mount does not show the option")
    else:
        subprocess.run(["umount", where], check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seedd", required=True)
    ap.add_argument("--seedsc", required=True)
    ap.add_argument("--cost", required=True)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--forks", type=int, default=3000)
    ap.add_argument("--attaches", type=int, default=60)
    ap.add_argument("--gap-ms", type=int, default=30)
    ap.add_argument("--warm", default="10s")
    ap.add_argument("--cpu-seconds", type=int, default=60)
    ap.add_argument("--favordynmods", action="store_true")
    ap.add_argument("--favordynmods-only", action="store_true",
                    help="no seedd, no warmth rounds: only the favordynmods arms")
    ap.add_argument("--loaded", choices=("yes", "no"), default="no")
    a = ap.parse_args()
    warm_s = float(a.warm.rstrip("s"))
    tmp = tempfile.mkdtemp(prefix="warmbench.", dir="/tmp")
    base = f"{MEM}/warm-bench-{os.getpid()}"
    cgs = [f"{base}/a", f"{base}/b"]
    for d in cgs:
        os.makedirs(d)
    flags = ("--cgroup-favordynmods=false", "--cgroup-pool=2", "--node=", "--promote-after=2")
    nodes = {}
    results = []
    stress = None
    try:
        for name, warm in () if a.favordynmods_only else (("on", a.warm), ("off", "0")):
            nodes[name] = SeeddProcess(os.path.abspath(a.seedd), os.path.abspath(a.seedsc),
                                       f"{tmp}/state-{name}", (f"--cgroup-warm={warm}", *flags))
            deploy = {"runtime": "python", "handler": "main.handler", "files": {"main.py": SMALL}}
            st, data = nodes[name].request("PUT", "/functions/small", json.dumps(deploy))
            if st != 201:
                raise SystemExit(f"deploy failed: {st} {data[:200]!r}")
        node = nodes.get("on")
        tid = warm_thread(node.proc.pid) if node else 0

        def arm(name, loaded):
            label = name + (" +cpu" if loaded else "")
            load0 = load_average()
            if name in nodes:
                if name == "off":
                    settle_off(node, warm_s)
                with Caller(nodes[name]):
                    time.sleep(0.5)
                    w0, c0, t0 = warm_writes(node), thread_cpu_ns(node.proc.pid, tid), time.time()
                    res = run_cost(a, cgs)
                    w1, c1, t1 = warm_writes(node), thread_cpu_ns(node.proc.pid, tid), time.time()
                res["warm"] = {"writes_per_s": (w1 - w0) / (t1 - t0),
                               "cpu_pct": (c1[0] - c0[0]) / 1e7 / (t1 - t0)}
            else:  # favordynmods arms: no seedd
                res = run_cost(a, cgs)
                res["warm"] = {"writes_per_s": 0.0, "cpu_pct": 0.0}
            results.append((label, f"{load0}-{load_average()}", res))
            fe, at = res["fork_exit_wait"], res["attach"]
            print(f"{time.strftime('%H:%M:%S')} {label}: fork p50 {fe['p50']:.1f} us, attach p50 "
                  f"{at['p50']:.1f} us, load {results[-1][1]}", flush=True)

        if not a.favordynmods_only:
            plan = [n for _ in range(a.rounds) for n in ("off", "on")]
            for name in plan:
                arm(name, False)
            if a.loaded == "yes":
                stress = subprocess.Popen(["stress-ng", "--cpu", "2", "--quiet"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1)
                for name in ("off", "on"):
                    arm(name, True)
                stress.send_signal(signal.SIGINT)
                stress.wait()
                stress = None

            # The warmth alone for a while: its own CPU.
            settle_off(node, warm_s)
            load0 = load_average()
            with Caller(node):
                time.sleep(0.5)
                w0, c0, t0 = warm_writes(node), thread_cpu_ns(node.proc.pid, tid), time.time()
                time.sleep(a.cpu_seconds)
                w1, c1, t1 = warm_writes(node), thread_cpu_ns(node.proc.pid, tid), time.time()
            hz = os.sysconf("SC_CLK_TCK")
            run_ns, wall, writes = c1[0] - c0[0], t1 - t0, w1 - w0
            print(f"\nseedd-warm (tid {tid}) over {wall:.1f} s, load {load0}-{load_average()}: "
                  f"{writes} writes ({writes / wall:.0f}/s), schedstat run time "
                  f"{run_ns / 1e6:.1f} ms ({run_ns / 1e7 / wall:.2f} % of a CPU, "
                  f"{run_ns / 1e3 / max(1, writes):.1f} us a write), utime+stime "
                  f"{(c1[1] - c0[1]) * 1000 / hz:.0f} ms", flush=True)

        if a.favordynmods or a.favordynmods_only:
            for n in nodes.values():
                n.stop()
            where = f"{tmp}/fdm"
            # ABBA: neither arm always goes first.
            pairs = [("fdm", "fdm-gone") if i % 2 == 0 else ("fdm-gone", "fdm")
                     for i in range(a.rounds)]
            for name in [n for pair in pairs for n in pair]:
                fdm_mount(where, name == "fdm")
                arm(name, False)
            if a.loaded == "yes":
                stress = subprocess.Popen(["stress-ng", "--cpu", "2", "--quiet"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1)
                for name in ("fdm", "fdm-gone"):
                    fdm_mount(where, name == "fdm")
                    arm(name, True)
    finally:
        if stress is not None:
            stress.send_signal(signal.SIGINT)
            stress.wait()
        for n in nodes.values():
            n.stop()
        if os.path.ismount(f"{tmp}/fdm"):
            subprocess.run(["umount", f"{tmp}/fdm"])
        for d in cgs + [base]:
            for _ in range(100):
                try:
                    os.rmdir(d)
                    break
                except OSError:
                    time.sleep(0.05)
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\nhost_cgroup_cost per round, us (mean / p50 / p90 / p99); forks={a.forks}, "
          f"attaches={a.attaches} {a.gap_ms} ms apart\n")
    print("| arm | load | fork+exit+wait | attach | warm writes/s | seedd-warm CPU % |")
    print("|---|---|---|---|---|---|")
    for label, load, res in results:
        cell = lambda r: f"{r['mean']:.1f} / {r['p50']:.1f} / {r['p90']:.1f} / {r['p99']:.1f}"
        w = res["warm"]
        print(f"| {label} | {load} | {cell(res['fork_exit_wait'])} | {cell(res['attach'])} | "
              f"{w['writes_per_s']:.0f} | {w['cpu_pct']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
