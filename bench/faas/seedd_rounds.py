"""Rounds of a seedd benchmark that compares two builds (issue 10).

A benchmark gives its own round (one seedd, its calls, its rows); this
module parses the flags every such benchmark takes, runs the rounds with the
base and new binaries alternating (base, new, base, new, ...) so that both
see the same load, adds one round of each beside `stress-ng --cpu 2` with
--loaded=yes, and records the load average of every round.

    ap = argparse.ArgumentParser()
    add_round_flags(ap, calls=300, rounds=3, loaded=True)
    a = ap.parse_args()
    # one_round(seedd, seedsc, calls, tmp, flags)
    for name, load, rows in run_rounds(a, one_round):
        ...

Flags: --seedd, --seedsc (the new build), --seedd-base, --seedsc-base (the
base build: either one given adds base rounds; the other defaults to the
new one), --calls, --rounds, --loaded=yes|no, --smoke (5 calls, one round,
no load: that the benchmark runs, nothing more), --variant=NAME=FLAGS
(repeatable: instead of base and new, one seedd build run with each set of
seedd flags in turn, e.g. --variant="off=--cgroup-warm=0").
"""
import shlex
import os
import shutil
import signal
import subprocess
import tempfile
import time


def add_round_flags(ap, calls, rounds, loaded):
    """`loaded`: whether --loaded defaults to yes (when stress-ng is there)."""
    ap.add_argument("--seedd", required=True)
    ap.add_argument("--seedd-base", default="")
    ap.add_argument("--seedsc", required=True)
    ap.add_argument("--seedsc-base", default="")
    ap.add_argument("--calls", type=int, default=calls)
    ap.add_argument("--rounds", type=int, default=rounds)
    ap.add_argument("--loaded", choices=("yes", "no"),
                    default="yes" if loaded and shutil.which("stress-ng") else "no")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--variant", action="append", default=[],
                    help="NAME=SEEDD FLAGS: rounds of --seedd with these flags (repeatable)")


def load_average():
    return open("/proc/loadavg").read().split()[0]


def run_rounds(a, one_round, tmp_prefix="rounds."):
    """[(name, "load0-load1", rows)] in the order run; rows = one_round(seedd, seedsc,
    a.calls, tmp, flags), flags: seedd's (a --variant's, else ()). The temporary directory
    goes at the end, whatever happens."""
    if a.smoke:
        a.calls, a.rounds, a.loaded = 5, 1, "no"
    bins = [("new", (os.path.abspath(a.seedd), os.path.abspath(a.seedsc), ()))]
    if a.seedd_base or a.seedsc_base:
        bins.insert(0, ("base", (os.path.abspath(a.seedd_base or a.seedd),
                                 os.path.abspath(a.seedsc_base or a.seedsc), ())))
    if a.variant:
        bins = [(v.split("=", 1)[0], (os.path.abspath(a.seedd), os.path.abspath(a.seedsc),
                                      tuple(shlex.split(v.split("=", 1)[1]))))
                for v in a.variant]
    plan = [(name, b, False) for _ in range(a.rounds) for name, b in bins]
    if a.loaded == "yes":
        plan += [(name, b, True) for name, b in bins]
    tmp = tempfile.mkdtemp(prefix=tmp_prefix, dir="/tmp")
    results = []
    try:
        for name, b, loaded in plan:
            stress = None
            if loaded:
                stress = subprocess.Popen(["stress-ng", "--cpu", "2", "--quiet"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1)
            try:
                load0 = load_average()
                rows = one_round(b[0], b[1], a.calls, tmp, b[2])
                load1 = load_average()
            finally:
                if stress is not None:
                    stress.send_signal(signal.SIGINT)
                    stress.wait()
            label = name + (" +cpu" if loaded else "")
            results.append((label, f"{load0}-{load1}", rows))
            print(f"{time.strftime('%H:%M:%S')} {label}: {len(rows)} calls, load {load0}-{load1}",
                  flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return results
