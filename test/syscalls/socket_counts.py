#!/usr/bin/env python3
"""Per-family pass counts of the socket suites, from a real run's logs.

Reads each variant's test.log under bazel-testlogs (gtest's "[       OK ]"
and "[  FAILED  ]" lines: the sandbox variants' XML never leaves the
sandbox) and prints a Markdown table: per family, how many of our own cases
pass natively, on systrap and on ptrace (and with syscall-site patching and
on the sandbox's own network stack where the suite has those variants).
A variant whose binary did not finish (crash, hang, timeout) shows its
count with "(incomplete)"; one that was not run shows "-".

  bazel test --config=ci //test/syscalls:socket ... (the suites below)
  python3 test/syscalls/socket_counts.py [--testlogs=bazel-testlogs]
"""
import argparse
import os
import re
import sys
from collections import OrderedDict

# Suite -> how its cases split into families: a fixed family, or a function
# of the case name (parametrized suites carry the family in the name).
def by_param_prefix(name):  # socket_signal: Calls/X.Y/UnixStream_Recv_Eintr
    fam = name.rsplit("/", 1)[-1].split("_", 1)[0]
    return {"UnixStream": "unix stream", "UnixSeqpacket": "unix seqpacket",
            "UnixDgram": "unix dgram", "Tcp": "TCP loopback",
            "Udp": "UDP loopback"}[fam]


def by_param_suffix(name):  # recvmmsg: Sockets/X.Y/UnixDgram
    return by_param_prefix(name.rsplit("/", 1)[-1] + "_")


def socket_test_family(name):  # socket: UnixSocketTest.* and InetSocketTest.*
    return "unix (all types)" if name.startswith("UnixSocketTest.") else "TCP/UDP loopback"


SUITES = OrderedDict([
    ("unix_socket", "unix (all types)"),
    ("unix_msg", "unix dgram + seqpacket"),
    ("unix_feature", "unix (all types)"),
    ("unix_poll", "unix (all types)"),
    ("unix_gc", "unix (all types)"),
    ("unix_oob", "unix stream"),
    ("socket", socket_test_family),
    ("socket_signal", by_param_prefix),
    ("recvmmsg", by_param_suffix),
    ("inet_socket", "TCP/UDP loopback"),
    ("udp_errqueue", "UDP loopback"),
    ("inet_stream", "TCP/UDP loopback"),
    ("socket_ioctl", "all families (ioctls)"),
    ("inet6", "inet6 loopback"),
    ("proc_net", "/proc/net"),
    ("netlink", "netlink"),
])
# Rows in this order, then by suite.
FAMILY_ORDER = ["unix stream", "unix seqpacket", "unix dgram", "unix dgram + seqpacket",
                "unix (all types)", "TCP loopback", "UDP loopback", "TCP/UDP loopback",
                "inet6 loopback", "all families (ioctls)", "/proc/net", "netlink"]
VARIANTS = ["native", "systrap", "ptrace", "systrap_patch", "systrap_netstack", "ptrace_netstack"]

OK = re.compile(r"^\[       OK \] (\S+) \(")
# A parametrized case's line goes on ", where GetParam() = ...".
FAILED = re.compile(r"^\[  FAILED  \] ([^ ,]+)(?:, where .*)? \(\d+ ms\)")
RUNNING = re.compile(r"^\[==========\] Running (\d+) tests?")
FINISHED = re.compile(r"^\[==========\] \d+ tests? from .* ran\.")


def read_log(path):
    """{case: passed?}, complete? for one variant's test.log (None if absent)."""
    if not os.path.exists(path):
        return None, False
    cases, complete = {}, False
    with open(path, errors="replace") as f:
        for line in f:
            if m := OK.match(line):
                cases[m.group(1)] = True
            elif m := FAILED.match(line):
                cases[m.group(1)] = False
            elif FINISHED.match(line):
                complete = True
    return cases, complete


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--testlogs", default="bazel-testlogs")
    args = ap.parse_args()
    base = os.path.join(args.testlogs, "test", "syscalls")
    # rows[(family, suite)][variant] = [passed, ran, complete]
    rows = OrderedDict()
    for suite, family in SUITES.items():
        for variant in VARIANTS:
            cases, complete = read_log(os.path.join(base, f"{suite}_{variant}", "test.log"))
            if cases is None:
                continue
            for case, passed in cases.items():
                fam = family(case) if callable(family) else family
                cell = rows.setdefault((fam, suite), {}).setdefault(variant, [0, 0, complete])
                cell[0] += passed
                cell[1] += 1
            if not cases:  # ran, but not one case finished
                fam = family if not callable(family) else "?"
                rows.setdefault((fam, suite), {})[variant] = [0, 0, False]
    if not rows:
        sys.exit(f"socket_counts: no test.log under {base}: run the suites first")
    used = [v for v in VARIANTS if any(v in r for r in rows.values())]
    print("| family | suite | " + " | ".join(v.replace("_", " ") for v in used) + " |")
    print("|---|---|" + "---|" * len(used))
    totals = {v: [0, 0] for v in used}
    def order(key):
        fam, suite = key
        return (FAMILY_ORDER.index(fam) if fam in FAMILY_ORDER else len(FAMILY_ORDER), suite)

    for (fam, suite), cells in sorted(rows.items(), key=lambda kv: order(kv[0])):
        out = []
        for v in used:
            if v not in cells:
                out.append("-")
                continue
            p, n, complete = cells[v]
            totals[v][0] += p
            totals[v][1] += n
            out.append(f"{p}/{n}" + ("" if complete else " (incomplete)"))
        print(f"| {fam} | {suite} | " + " | ".join(out) + " |")
    print("| **all** | | " + " | ".join(f"**{p}/{n}**" for p, n in totals.values()) + " |")


if __name__ == "__main__":
    main()
