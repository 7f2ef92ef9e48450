#!/usr/bin/env python3
"""Runs CPython regression-test modules (Debian's libpython3.11-testsuite)
natively and under seedsc, and reports per module how many tests passed,
failed, errored and were skipped on each side.

  test/python/run_cpython_tests.py --seedsc bazel-bin/runsc/seedsc \\
      --json /tmp/results.json test_json test_re ...

Each module runs as `/usr/bin/python3 -m test -v MODULE --junit-xml=F`
(inside the sandbox: `seedsc do` the same command line). A module that times
out or crashes before writing its XML counts as a crash. Exit status 0 only if
every module passed without failures or errors on every side asked for.
"""
import argparse
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

PYTHON = "/usr/bin/python3"  # Debian's (a pyenv shim may shadow python3)


def parse_junit(data):
    root = ET.fromstring(data)
    c = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for tc in root.iter("testcase"):
        c["tests"] += 1
        if tc.find("failure") is not None:
            c["failures"] += 1
        elif tc.find("error") is not None:
            c["errors"] += 1
        elif tc.find("skipped") is not None:
            c["skipped"] += 1
    c["passed"] = c["tests"] - c["failures"] - c["errors"] - c["skipped"]
    return c


MARK = "@@SEEDVISOR-JUNIT@@"

# Tests left out on every side, with the reason.
IGNORE = {
    # Natively these hang on this host (a Firecracker VM with a vsock
    # device but nothing listening); the sandbox has no AF_VSOCK at all.
    "test_socket": ["*VSOCK*"],
}
# Left out in the sandbox with --network=sandbox only. The sandbox's own
# stack has no UDP-Lite (socket() is EPROTONOSUPPORT, as gVisor's netstack
# has none either; netstack/README.md): test_socket decides to run its
# UDPLITE classes from the constant alone, and a class whose sockets cannot
# be made then breaks the threaded harness (as test_socket.py reads:
# ThreadableTest.clientTearDown fails on the missing `cli` before it sets
# `done`), and the module did not finish.
IGNORE_NETSTACK = {
    "test_socket": ["*UDPLITE*"],
}


def run_module(module, side, seedsc, timeout, logdir, python=PYTHON, network="none"):
    # The XML is written inside the sandbox's own overlay, where the host
    # cannot see it: the wrapper prints it after a marker instead.
    patterns = IGNORE.get(module, [])
    if side != "native" and network == "sandbox":
        patterns = patterns + IGNORE_NETSTACK.get(module, [])
    ignore = "".join(f" -i '{p}'" for p in patterns)
    # Absolute paths: the script runs in /tmp, and a PATH with an empty or "."
    # entry (Bazel's test environment) would run a stray /tmp/rm or /tmp/cat
    # (seen: a leftover test binary's output after the XML, a "crash").
    script = (f"{python} -m test -v {module}{ignore} --junit-xml /tmp/junit-$$.xml; rc=$?; "
              f"echo {MARK}; /bin/cat /tmp/junit-$$.xml; /bin/rm -f /tmp/junit-$$.xml; exit $rc")
    cmd = ["/bin/sh", "-c", script]
    if side != "native":
        # --network=sandbox: the sandbox's own TCP/IP stack with loopback only
        # (no veth: the tests' traffic never leaves the sandbox).
        net = ["--network=sandbox", "do", "--veth=false"] if network == "sandbox" else ["do"]
        cmd = [seedsc, f"--platform={side}"] + net + cmd
    t0 = time.monotonic()
    log = os.path.join(logdir, f"{module}.{side}.log")
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, cwd="/tmp", stdin=subprocess.DEVNULL)
        rc, out = p.returncode, p.stdout
    except subprocess.TimeoutExpired as e:
        rc, out = "timeout", e.stdout or b""
    text, _, xml = out.partition(MARK.encode())
    with open(log, "wb") as f:
        f.write(text)
    res = {"rc": rc, "seconds": round(time.monotonic() - t0, 1), "log": log}
    try:
        res.update(parse_junit(xml.strip()))
    except ET.ParseError:
        res["crash"] = True
    return module, side, res


def cell(r):
    if r is None:
        return "-"
    if r.get("crash"):
        return f"crash (rc {r['rc']})"
    return "%(passed)d / %(failures)d / %(errors)d / %(skipped)d" % r


def markdown(results, modules, sides):
    """One row per module: passed / failed / errors / skipped per side."""
    head = "| module | " + " | ".join(sides) + " |\n"
    head += "|---" * (len(sides) + 1) + "|\n"
    rows = ""
    for m in modules:
        rows += f"| {m} | " + " | ".join(cell(results.get(m, {}).get(s)) for s in sides) + " |\n"
    return head + rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("modules", nargs="+")
    ap.add_argument("--seedsc", help="seedsc binary (omit: native only)")
    ap.add_argument("--platforms", default="systrap", help="comma-separated seedsc platforms")
    ap.add_argument("--no-native", action="store_true")
    ap.add_argument("--timeout", type=int, default=900)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--logdir", default=None)
    ap.add_argument("--markdown", help="write a per-module table (markdown) here")
    ap.add_argument("--network", choices=("none", "sandbox"), default="none",
                    help="the sandbox's network: none (host loopback in a private namespace) or "
                         "sandbox (its own TCP/IP stack, loopback only)")
    ap.add_argument("--python", default=PYTHON,
                    help="the interpreter whose test package runs (default: Debian's)")
    a = ap.parse_args()
    sides = [] if a.no_native else ["native"]
    if a.seedsc:
        sides += a.platforms.split(",")
    # Without --logdir: under Bazel its undeclared outputs (kept with the
    # test's results, never in /tmp); else a new directory in /tmp that is
    # removed again unless a module failed (its log is what one reads then).
    logdir = a.logdir or os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR")
    scratch = None
    if not logdir:
        logdir = scratch = tempfile.mkdtemp(prefix="cpytest-logs-")
    os.makedirs(logdir, exist_ok=True)
    results = {}
    ok = True
    with concurrent.futures.ThreadPoolExecutor(a.jobs) as ex:
        futs = [ex.submit(run_module, m, s, a.seedsc, a.timeout, logdir, a.python, a.network)
                for m in a.modules for s in sides]
        for f in concurrent.futures.as_completed(futs):
            m, s, r = f.result()
            results.setdefault(m, {})[s] = r
            bad = r.get("crash") or r.get("failures", 0) or r.get("errors", 0)
            ok = ok and not bad
            summary = ("CRASH rc=%s" % r["rc"]) if r.get("crash") else \
                "%(passed)d passed %(failures)d failed %(errors)d errors %(skipped)d skipped" % r
            print(f"{m:20s} {s:8s} {summary} ({r['seconds']}s) log={r['log']}", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1, sort_keys=True)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(markdown(results, a.modules, sides))
    if scratch is not None:
        if ok:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            print(f"logs kept in {scratch}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
