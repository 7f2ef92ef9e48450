#!/usr/bin/env python3
"""The case list and the summary of bench/ltp/run_ltp.sh.

  ltp_cases.py select --runtest FILE --ltp-dir DIR [--families a,b] [--cases t1,t2]
                      [--with-unsafe] [--with-devices]
      prints TAG<tab>FAMILY<tab>COMMAND for each case of the runtest file.
  ltp_cases.py summary --cases cases.tsv --results results.tsv --runtimes native,seedsc
                       --failures FILE [--logs DIR]
      prints the per-family table and writes every case that passes
      natively and not in a sandbox to FILE.

A case's family is its tag without its number and width suffix (fcntl34_64
is fcntl, futex_wait_bitset01 is futex_wait_bitset).
"""
import argparse
import collections
import json
import os
import re
import sys

# Families whose native run as root changes the host for everyone on it
# (the clock, swap, kernel modules, the host name, accounting, quotas,
# mounts, real-time scheduling of busy loops): left out unless
# --with-unsafe.
UNSAFE_FAMILIES = {
    "settimeofday": "sets the host clock",
    "stime": "sets the host clock",
    "clock_settime": "sets the host clock",
    "adjtimex": "adjusts the host clock",
    "clock_adjtime": "adjusts the host clock",
    "swapon": "swap on the host",
    "swapoff": "swap on the host",
    "reboot": "reboot(2)",
    "init_module": "kernel modules",
    "finit_module": "kernel modules",
    "delete_module": "kernel modules",
    "sethostname": "the host's name",
    "setdomainname": "the host's domain name",
    "syslog": "the host's console log level",
    "acct": "process accounting on the host",
    "quotactl": "quotas on host devices",
    "mount": "mounts",
    "umount": "mounts",
    "umount2": "mounts",
    "mount_setattr": "mounts",
    "fsmount": "mounts",
    "fsopen": "mounts",
    "fsconfig": "mounts",
    "fspick": "mounts",
    "move_mount": "mounts",
    "open_tree": "mounts",
    "sched_setparam": "real-time busy loops",
    "sched_setscheduler": "real-time busy loops",
    "sched_setattr": "deadline scheduling",
    "leapsec": "inserts a leap second into the host clock",
}

# Metadata (metadata/ltp.json) that makes a test touch host devices or
# host-wide settings: needs a block device (a loop device on the host),
# reserves huge pages, sets the clock, or writes /proc/sys values it
# restores later.
DEVICE_KEYS = ("needs_device", "mount_device", "format_device", "all_filesystems", "needs_rofs")
HOST_WIDE_KEYS = ("hugepages", "needs_hugetlbfs", "save_restore", "restore_wallclock")
# Commands in "needs_cmds" that load or unload host kernel modules.
MODULE_CMDS = ("modprobe", "insmod", "rmmod")
# Cases whose metadata does not say what they do to the host: keyctl05 runs
# `modprobe dns_resolver` itself; madvise07 poisons a host page
# (MADV_HWPOISON).
UNSAFE_CASES = {
    "keyctl05": "loads a kernel module",
    "madvise07": "poisons a host page",
}


def touches_host(fam, tag, info):
    if fam in UNSAFE_FAMILIES or tag in UNSAFE_CASES:
        return True
    if any(k in info for k in HOST_WIDE_KEYS):
        return True
    cmds = info.get("needs_cmds") or []
    return any(any(m in str(c) for m in MODULE_CMDS) for c in cmds)


def family_of(tag):
    base = re.sub(r"_(64|16)$", "", tag)
    return re.sub(r"_?\d+[a-z]?$", "", base) or tag


def read_runtest(path):
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 1)
            if len(parts) == 2:
                yield parts[0], parts[1]


def load_metadata(ltp_dir):
    path = os.path.join(ltp_dir, "metadata", "ltp.json")
    try:
        with open(path) as f:
            return json.load(f).get("tests", {})
    except (OSError, ValueError):
        print(f"ltp_cases.py: no {path}: device tests are not recognised", file=sys.stderr)
        return {}


def select(args):
    meta = load_metadata(args.ltp_dir)
    fams = set(filter(None, (args.families or "").split(",")))
    tags = set(filter(None, (args.cases or "").split(",")))
    skipped = collections.Counter()
    for tag, cmd in read_runtest(args.runtest):
        fam = family_of(tag)
        if fams and fam not in fams:
            continue
        if tags and tag not in tags:
            continue
        binary = cmd.split()[0]
        # fcntl34_64 is fcntl34 built with 64-bit offsets: the same metadata.
        info = meta.get(binary) or meta.get(re.sub(r"_(64|16)$", "", binary), {})
        if not args.with_unsafe and touches_host(fam, tag, info):
            skipped["host-unsafe"] += 1
            continue
        if not args.with_devices and any(k in info for k in DEVICE_KEYS):
            skipped["needs a block device"] += 1
            continue
        print(f"{tag}\t{fam}\t{cmd}")
    for why, n in skipped.items():
        print(f"ltp_cases.py: left out {n} cases ({why})", file=sys.stderr)


def pct(n, d):
    return f"{100.0 * n / d:.1f} %" if d else "-"


def summary(args):
    rts = args.runtimes.split(",")
    sandboxes = [r for r in rts if r != "native"]
    cases = []
    with open(args.cases) as f:
        for line in f:
            tag, fam, cmd = line.rstrip("\n").split("\t", 2)
            cases.append((tag, fam, cmd))
    res = {}
    with open(args.results) as f:
        for line in f:
            tag, rt, result, rc, secs = line.rstrip("\n").split("\t")
            res[(tag, rt)] = (result, rc, secs)
    by_fam = collections.OrderedDict()
    for tag, fam, _ in sorted(cases, key=lambda c: c[1]):
        by_fam.setdefault(fam, []).append(tag)

    head = ["family", "cases"] + [f"{r} pass" for r in rts]
    head += [f"{r} % of native" for r in sandboxes if "native" in rts]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    totals = collections.Counter()
    failures = []
    for fam, tags in by_fam.items():
        row = [fam, str(len(tags))]
        counts = {r: sum(res.get((t, r), ("",))[0] == "pass" for t in tags) for r in rts}
        row += [str(counts[r]) for r in rts]
        if "native" in rts:
            native_ok = [t for t in tags if res.get((t, "native"), ("",))[0] == "pass"]
            for r in sandboxes:
                ok = sum(res.get((t, r), ("",))[0] == "pass" for t in native_ok)
                totals[(r, "ok")] += ok
                row.append(pct(ok, len(native_ok)))
                for t in native_ok:
                    result = res.get((t, r), ("missing", "", ""))
                    if result[0] != "pass":
                        failures.append((fam, t, r) + result)
            totals["native_ok"] += len(native_ok)
        for r in rts:
            totals[(r, "pass")] += counts[r]
        totals["cases"] += len(tags)
        print("| " + " | ".join(row) + " |")
    row = ["**total**", str(totals["cases"])] + [str(totals[(r, "pass")]) for r in rts]
    if "native" in rts:
        row += [pct(totals[(r, "ok")], totals["native_ok"]) for r in sandboxes]
    print("| " + " | ".join(row) + " |")
    for r in rts:
        kinds = collections.Counter(res[k][0] for k in res if k[1] == r)
        print(f"{r}: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))

    with open(args.failures, "w") as f:
        f.write("# LTP cases that pass natively and not in a sandbox\n\n")
        f.write("result: fail, crash, hang (past the per-case timeout or LTP's own), "
                "conf (TCONF: the sandbox lacks something the test needs)\n\n")
        for r in sandboxes:
            mine = [x for x in failures if x[2] == r]
            kinds = collections.Counter(x[3] for x in mine)
            f.write(f"## {r}: {len(mine)} cases (" +
                    ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) + ")\n\n")
            f.write("| family | case | result | exit | seconds | first failure |\n")
            f.write("|---|---|---|---|---|---|\n")
            for fam, tag, _, result, rc, secs in mine:
                why = first_failure(args.logs, r, tag)
                f.write(f"| {fam} | {tag} | {result} | {rc} | {secs} | {why} |\n")
            f.write("\n")


def first_failure(logs, rt, tag):
    """The first TFAIL/TBROK/TCONF line of the case's log, for the table."""
    if not logs:
        return ""
    try:
        with open(os.path.join(logs, rt, tag + ".log"), errors="replace") as f:
            for line in f:
                if re.search(r"\b(TFAIL|TBROK|TCONF)\b", line):
                    return line.strip().replace("|", "/")[:160]
    except OSError:
        pass
    return ""


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("select")
    s.add_argument("--runtest", required=True)
    s.add_argument("--ltp-dir", required=True)
    s.add_argument("--families")
    s.add_argument("--cases")
    s.add_argument("--with-unsafe", action="store_true")
    s.add_argument("--with-devices", action="store_true")
    m = sub.add_parser("summary")
    m.add_argument("--cases", required=True)
    m.add_argument("--results", required=True)
    m.add_argument("--runtimes", required=True)
    m.add_argument("--failures", required=True)
    m.add_argument("--logs")
    args = p.parse_args()
    select(args) if args.cmd == "select" else summary(args)


if __name__ == "__main__":
    main()
