#!/usr/bin/python3
"""What a call to seedd makes on the host (issue 10, DESIGN.md "Sandbox fork"):
nothing on the invoke path creates a namespace, cgroup, network device or
seccomp program, and no runtime binary is exec'd per call (FRI instead of one
seedsc exec per start).

usage: seedd_invoke_path.py SEEDD SEEDSC

A seedd with a cgroup pool serves a python function until the function's
level-2 seed answers and the pool is full (the warm-up may create what it
likes); then the host kernel's own trace (host_trace.py: a private tracefs
instance following seedd, every sandbox process and whatever they fork)
records CALLS calls from level 2 and CALLS from level 1 (each a function
called for the first time: L1 fork + its code loaded), and must show no exec,
no unshare or clone with a CLONE_NEW* flag and no seccomp filter loaded by any
of them, and cgroup directories made only by the pool's refill thread
(CgroupPool::kRefillThreadName), never on a request's path. While each call
runs, every live process of the sandbox tree (the instance's included) is in
namespaces the seeds already had before the calls, and no host network device
appears. The seeds themselves each have their own network, IPC, mount, UTS and
pid namespaces, made once when seedsc boots them (as runsc's sandboxes: the
sentry's host process reaches no host network); their forks share them.
Needs root.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from host_trace import HostTrace, TraceUnavailable, mount_tracefs, namespaces_of
from seedd_proc import SeeddProcess

SEEDD, SEEDSC = sys.argv[1], sys.argv[2]
CALLS = 10
POOL = 4
REFILL_THREAD = "seedd-cgrefill"  # seedd/cgroup_pool.h CgroupPool::kRefillThreadName
failures = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        failures.append(what)


def sandbox_pids(state):
    """seedd's sandbox processes: every host process whose command line names its state dir."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if state.encode() in f.read():
                    out.append(int(pid))
        except OSError:
            pass
    return out


def descendants(roots):
    """roots and every live process under them (by PPid)."""
    children = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(pid))
    out, todo = set(), list(roots)
    while todo:
        p = todo.pop()
        if p not in out:
            out.add(p)
            todo += children.get(p, [])
    return out


def links():
    return set(subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True)
               .stdout.split("\n"))


NAP = ("import time\n"
       "def handler(event, context):\n"
       "    time.sleep(event.get('s', 0))\n"
       "    return {'echo': event.get('n')}\n")


def wait_pool_full(node):
    """/metrics until the cgroup pool holds POOL free cgroups and none is in use (or 20 s)."""
    deadline = time.monotonic() + 20
    m = {}
    while time.monotonic() < deadline:
        st, body = node.request("GET", "/metrics")
        m = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                try:
                    m[k] = float(v)
                except ValueError:
                    pass
        if m.get("seedd_cgroup_pool_in_use") == 0 and m.get("seedd_cgroup_pool_draining") == 0 \
                and m.get("seedd_cgroup_pool_free", 0) >= POOL:
            return True
        time.sleep(0.05)
    print(f"pool metrics: { {k: v for k, v in m.items() if 'pool' in k} }")
    return False


def main():
    try:
        mount_tracefs()
    except TraceUnavailable as e:  # as test/kvm_skip.sh: one line saying why, never a silent pass
        print(f"seedd_invoke_path_test: SKIPPED: {e}")
        return
    tmp = tempfile.mkdtemp(prefix="seedd-path.", dir=os.environ.get("TEST_TMPDIR", "/tmp"))
    state = os.path.join(tmp, "state")
    node = SeeddProcess(SEEDD, SEEDSC, state, [f"--cgroup-pool={POOL}", "--promote-after=2"],
                        err_path=os.path.join(tmp, "seedd.err"), listen_timeout_s=120)
    try:
        conn = node.connection()
        node.deploy_l2("nap", NAP, json.dumps({"n": 0}), conn)
        # Level-1 calls: functions called once each (a function is promoted to its own
        # level-2 seed after its second call), deployed before the trace.
        for i in range(CALLS):
            st, data = node.request("PUT", f"/functions/once{i}",
                                    json.dumps({"runtime": "python", "handler": "main.handler",
                                                "files": {"main.py": NAP}}))
            check(st == 201, f"deploy once{i} ({st} {data[:200]!r})")
        check(wait_pool_full(node), f"the cgroup pool is full ({POOL} free) before the traced calls")

        base_links = links()
        roots = [node.proc.pid] + sandbox_pids(state)
        check(len(roots) >= 3, f"seedd and its seeds' processes found ({roots})")
        known_ns = {}  # kind -> the namespaces seedd and its seeds had before the calls
        for pid in descendants(roots):
            for kind, ns in namespaces_of(pid).items():
                known_ns.setdefault(kind, set()).add(ns)
        ns_seen, ns_bad = 0, []
        with HostTrace("seedd_path") as trace:
            trace.follow(roots)
            for i in range(CALLS):
                for fn, level in (("nap", "L2"), (f"once{i}", "L1")):
                    result = {}

                    def call():
                        result["r"] = node.request_with_headers(
                            "POST", f"/invoke/{fn}", json.dumps({"n": i, "s": 0.3}))
                    t = threading.Thread(target=call)
                    t.start()
                    # While it runs: no live process of the tree is in a namespace made since.
                    time.sleep(0.1)
                    for pid in descendants(roots + sandbox_pids(state)):
                        ns = namespaces_of(pid)
                        if not ns:
                            continue
                        ns_seen += 1
                        for kind, n in ns.items():
                            if n not in known_ns.get(kind, ()):
                                ns_bad.append((pid, kind, n))
                    t.join(120)
                    st, r, body = result.get("r", (None, None, b""))
                    timing = r.getheader("Server-Timing") if r else ""
                    ok = st == 200 and json.loads(body) == {"echo": i}
                    check(ok, f"call {i} of {fn}: 200 {{'echo': {i}}} ({st} {body[:120]!r})")
                    if level:
                        check(f'path;desc="{level}"' in (timing or ""),
                              f"call {i} of {fn} came from {level} ({timing})")
            wait_pool_full(node)
            trace.stop()
        made = trace.creations()
        for what in ("exec", "namespace", "seccomp"):
            these = [m for m in made if m[0] == what]
            check(not these, f"{2 * CALLS} calls: no {what} made by seedd or a sandbox "
                             f"({len(these)}: {these[:3]})")
        cgroups = [m for m in made if m[0] == "cgroup"]
        on_path = [m for m in cgroups if m[2] != REFILL_THREAD]
        check(not on_path, f"{2 * CALLS} calls: cgroups made only by the pool's refill thread "
                           f"({len(cgroups)} made, {len(on_path)} by others: {on_path[:3]})")
        check(not trace.overrun, "the trace lost no event")
        forks = [e for e in trace.events() if e[0] == "sched_process_fork"]
        check(len(forks) >= 2 * CALLS, f"the trace follows the sandboxes: >= {2 * CALLS} host forks "
                                       f"seen ({len(forks)})")
        check(ns_seen > 0 and not ns_bad,
              f"every live sandbox process is in namespaces the seeds had before the calls "
              f"({ns_seen} looked at; {ns_bad[:3]})")
        check(links() <= base_links, f"no host network device made ({links() - base_links})")
    finally:
        node.stop()
        # $TEST_TMPDIR goes with Bazel's run, /tmp's directory with this one.
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print(f"{len(failures)} FAILED: " + "; ".join(failures[:5]))
        sys.exit(1)
    print("all passed")


if __name__ == "__main__":
    main()
