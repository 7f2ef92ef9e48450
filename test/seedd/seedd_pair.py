#!/usr/bin/python3
"""Two seedds on one host, and a restart of one of them (issue 10, 11).

usage: seedd_pair.py SEEDD SEEDSC
Two seedds with their own state dirs and ports, both --network=sandbox with a
cgroup pool: their pool cgroups, host end prefixes and subnets differ, and both
answer calls at the same time, each instance on its own seedd's device. Then one
is killed with SIGKILL (its sandboxes, pool cgroups and host ends stay behind)
and started again on the same state dir: it removes what the killed run left
(sandboxes, host ends made again with new MACs) and serves again, while the
other one's devices, cgroups and calls are untouched throughout. Needs root.
"""
import os
import shutil
import signal
import sys
import tempfile
import threading
import time

import seedd_e2e  # reads SEEDD SEEDSC from sys.argv
from seedd_e2e import Node, check, pool_parent, sandbox_processes, HELLO
from seedd_network import NET, Listener, own_ends, prefix_of
from seedd_proc import free_port

FLAGS = ("--cgroup-pool=2", "--node=", "--network=sandbox", "--veth-pool=2", "--promote-after=0")


def call_net(node, lis):
    """The instance's pool address and whether it reached its host end."""
    st, _, body = node.invoke("net", {"port": lis.port})
    ok = st == 200 and isinstance(body, dict) and body.get("addrs")
    return (body["addrs"][0], body.get("got")) if ok else (f"{st} {body}", None)


def main():
    if os.geteuid() != 0:
        check(False, "two seedds with veth pools need root")
        return 1
    tmp = tempfile.mkdtemp(prefix="seedd-pair.", dir=os.environ.get("TEST_TMPDIR", "/tmp"))
    state_a, state_b = (os.path.join(tmp, n, "state") for n in ("a", "b"))
    for s in (state_a, state_b):
        os.makedirs(os.path.dirname(s))
    lis = Listener()
    a = Node(state_a, free_port(), *FLAGS)
    b = Node(state_b, free_port(), *FLAGS)
    pa, pb = prefix_of(a), prefix_of(b)
    ends_a, ends_b = own_ends(pa), own_ends(pb)
    a2 = None
    try:
        check(len(ends_a) == 2 and len(ends_b) == 2 and pa and pb and pa != pb,
              f"each seedd has its 2 host ends under a prefix of its own ({sorted(ends_a)} vs {sorted(ends_b)})")
        ca, cb = pool_parent(a), pool_parent(b)
        check(ca and cb and ca != cb, f"each seedd has a pool cgroup parent of its own ({ca} vs {cb})")
        for n in (a, b):
            n.deploy("net", NET)
            n.deploy("hello", HELLO)
        # Both at once, each instance holding its device: no subnet or name is shared.
        got = {}

        def call(name, node):
            got[name] = call_net(node, lis)

        ts = [threading.Thread(target=call, args=(name, node)) for name, node in (("a", a), ("b", b))]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        addr_a, addr_b = got["a"][0], got["b"][0]
        check(got["a"][1] == "hi" and got["b"][1] == "hi",
              f"an instance of each seedd reaches its own host end at the same time ({got})")
        net = lambda addr: addr.rsplit(".", 1)[0]
        check(addr_a.startswith("10.203.") and addr_b.startswith("10.203.") and net(addr_a) != net(addr_b),
              f"their subnets differ ({addr_a} vs {addr_b})")

        # SIGKILL a: what it made stays until the next run of its state dir.
        a_sandboxes = sandbox_processes(state_a)
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait()
        time.sleep(0.5)
        check(a_sandboxes and sandbox_processes(state_a),
              f"after SIGKILL of one seedd its sandboxes are still there ({len(a_sandboxes)} before)")
        check(os.path.isdir(f"/sys/fs/cgroup/memory/{ca}"), "and its pool cgroups")
        st, _, body = b.invoke("hello", {"name": "b"})
        check(st == 200 and body == {"hello": "b"}, f"the other seedd answers meanwhile ({st} {body})")

        # The other seedd's pool refills the device that call used: its host ends once settled.
        for _ in range(50):
            ends_b = own_ends(pb)
            if len(ends_b) == 2:
                break
            time.sleep(0.1)
        a2 = Node(state_a, free_port(), *FLAGS)
        left = [p for p in sandbox_processes(state_a) if any(p.split()[0] == q.split()[0] for q in a_sandboxes)]
        check(not left, f"the restarted seedd removed the killed run's sandboxes ({left})")
        ends_a2 = own_ends(pa)
        check(len(ends_a2) == 2 and all(ends_a2[n] != ends_a.get(n) for n in ends_a2),
              f"its host ends are made again, none the killed run's (MACs {ends_a} -> {ends_a2})")
        check(pool_parent(a2) == ca and os.path.isdir(f"/sys/fs/cgroup/memory/{ca}"),
              f"its pool cgroups are under the same parent again ({pool_parent(a2)})")
        check(len(ends_b) == 2 and own_ends(pb) == ends_b,
              f"the other seedd's host ends are untouched ({ends_b} -> {own_ends(pb)})")
        check(cb and os.path.isdir(f"/sys/fs/cgroup/memory/{cb}"), "and its pool cgroups")
        a2.deploy("net", NET)
        for name, node in (("restarted", a2), ("other", b)):
            addr, hi = call_net(node, lis)
            check(hi == "hi", f"the {name} seedd's instance reaches its host end ({addr})")
    finally:
        for n in (a2, b):
            if n is not None:
                n.stop()
        if a.proc.poll() is None:
            a.stop()
        lis.close()
    time.sleep(0.5)
    check(not sandbox_processes(state_a) and not sandbox_processes(state_b),
          "nothing of either seedd is left after they exit")
    left = sorted(own_ends(pa)) + sorted(own_ends(pb))
    check(pa and pb and not left, f"no host end of either is left ({left})")
    shutil.rmtree(tmp, ignore_errors=True)
    if seedd_e2e.failures:
        print(f"{len(seedd_e2e.failures)} check(s) failed", flush=True)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
