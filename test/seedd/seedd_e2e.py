#!/usr/bin/python3
"""seedd end to end (issue 10): deploy and invoke python and node functions
over HTTP on 127.0.0.1, each call answered from a sandbox forked for it.

usage: seedd_e2e.py SEEDD SEEDSC [--quick]
Checks: hello, a JSON transform, isolation (a file and a global written by
one call are not seen by the next), uniqueness (random, uuid4, secrets never
repeat across calls), 404/400/500/504, the level-2 promotion, 8 concurrent
clients with no mixed-up answers, a call past its memory limit (507 naming it, the cgroup
recycled clean), replicas of a busy seed (made, used, listed, dropped idle), the
promotion window and LRU eviction of L2 seeds under --seed-memory, node functions (hello, JSON transform,
exception with its stack, isolation, what random state a fork shares with
its seed's other forks), GET /metrics, the cgroup pool (an instance's
processes run in a pool cgroup with --instance-memory as its limit, and the
cgroup goes back to the pool), FRI's socket, that after SIGTERM no
sandbox, process or state is left, that a restarted seedd (its flags from a
--config file) serves the functions deployed before, and --help/--config errors. Needs root (seedsc create).
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pb_wire
from seedd_proc import SeeddProcess, free_port
from seedd_fri import fri_lifecycle_checks
from seedd_network import network_checks

SEEDD, SEEDSC = sys.argv[1], sys.argv[2]
failures = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        failures.append(what)


class Node:
    """One seedd on 127.0.0.1:port (bench/faas/seedd_proc.py starts and stops it)."""

    def __init__(self, state, port, *flags, env=None):
        self.seedd = SeeddProcess(SEEDD, SEEDSC, state, flags,
                                  err_path=os.path.join(os.path.dirname(state), "seedd.err"),
                                  listen_timeout_s=60, port=port, env=env)
        self.port, self.proc = port, self.seedd.proc

    def stderr(self):
        return self.seedd.stderr()

    def request(self, method, path, body=None, conn=None):
        """(status, headers as a dict, body bytes)."""
        st, r, data = self.seedd.request_with_headers(method, path, body, conn)
        return st, dict(r.getheaders()), data

    def deploy(self, name, source, runtime="python", **extra):
        main = "main.js" if runtime == "node" else "main.py"
        body = dict({"runtime": runtime, "handler": "main.handler", "files": {main: source}}, **extra)
        st, _, data = self.request("PUT", f"/functions/{name}", json.dumps(body))
        check(st == 201, f"deploy {name}: 201 (got {st} {data[:200]!r})")

    def invoke(self, name, event, conn=None):
        st, h, data = self.request("POST", f"/invoke/{name}", json.dumps(event), conn)
        try:
            return st, h, json.loads(data)
        except ValueError:
            return st, h, data

    def stop(self):
        return self.seedd.stop(timeout=60)


HELLO = "def handler(event, context):\n    return {'hello': event.get('name', 'world')}\n"
TRANSFORM = """import json, re
def handler(event, context):
    words = re.findall(r"[a-z]+", event["text"].lower())
    return {"count": len(words), "upper": [w.upper() for w in words], "sum": sum(event["nums"]),
            "function": context.function_name}
"""
STATEFUL = """import os
COUNTER = 0
def handler(event, context):
    global COUNTER
    COUNTER += 1
    seen = os.path.exists("/tmp/seedd-e2e-mark")
    with open("/tmp/seedd-e2e-mark", "w") as f:
        f.write("x")
    return {"counter": COUNTER, "file_seen": seen}
"""
# ssl.RAND_bytes at import: a level-2 seed that loaded this code holds an
# instantiated OpenSSL DRBG, which its forks would repeat.
RANDOM = """import random, uuid, secrets, ssl
ssl.RAND_bytes(1)
def handler(event, context):
    return {"random": random.random(), "uuid": str(uuid.uuid4()), "token": secrets.token_hex(16),
            "ssl": ssl.RAND_bytes(16).hex()}
"""
RAISES = "def handler(event, context):\n    raise ValueError('bad input: ' + str(event))\n"
SLOW = "import time\ndef handler(event, context):\n    time.sleep(30)\n    return 1\n"
NAP = "import time\ndef handler(event, context):\n    time.sleep(event['s'])\n    return 'rested'\n"
POOL = 4
INSTANCE_MEMORY = 256 << 20
HOG = """def handler(event, context):
    b = bytearray(event["mb"] << 20)
    for i in range(0, len(b), 4096):
        b[i] = 1
    return len(b) >> 20
"""
ECHO = "def handler(event, context):\n    return {'echo': event}\n"

NODE_HELLO = "exports.handler = async (event, context) => ({hello: event.name || 'world'});\n"
NODE_TRANSFORM = """const words = require('./lib/words');
exports.handler = async (event, context) => {
  await new Promise((r) => setTimeout(r, 5));
  const w = words.split(event.text);
  return {count: w.length, upper: w.map((x) => x.toUpperCase()),
          sum: event.nums.reduce((a, b) => a + b, 0), function: context.functionName};
};
"""
NODE_WORDS = "exports.split = (t) => t.toLowerCase().match(/[a-z]+/g) || [];\n"
NODE_RAISES = "exports.handler = (event) => { throw new RangeError('bad input: ' + JSON.stringify(event)); };\n"
NODE_STATEFUL = """const fs = require('fs');
let counter = 0;
exports.handler = async () => {
  counter += 1;
  globalThis.seen = (globalThis.seen || 0) + 1;
  const fileSeen = fs.existsSync('/tmp/seedd-e2e-node-mark');
  fs.writeFileSync('/tmp/seedd-e2e-node-mark', 'x');
  return {counter, global: globalThis.seen, fileSeen};
};
"""
NODE_RANDOM = """const crypto = require('crypto');
crypto.randomInt(10);  // a level-2 seed that loaded this holds OpenSSL's DRBG instantiated
exports.handler = async (event, context) => ({
  math: Math.random(), bytes: crypto.randomBytes(16).toString('hex'), uuid: crypto.randomUUID(),
  int: crypto.randomInt(2 ** 47),
  key: crypto.generateKeyPairSync('x25519').publicKey.export({type: 'spki', format: 'der'}).toString('hex'),
  fresh: context.randomBytes(16).toString('hex')});
"""


def timing(h):
    return {p.split(";")[0].strip(): float(p.split("dur=")[1]) for p in h.get("Server-Timing", "").split(",") if "dur=" in p}


def fri_call(address, method, payload):
    """One unary ttrpc call to seedvisor.fri.v1.FRI; the raw response frame."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(address)
    req = (pb_wire.field_bytes(1, b"seedvisor.fri.v1.FRI") +
           pb_wire.field_bytes(2, method.encode()) + pb_wire.field_bytes(3, payload))
    s.sendall(len(req).to_bytes(4, "big") + (1).to_bytes(4, "big") + bytes([1, 0]) + req)
    buf = b""
    while len(buf) < 10 or len(buf) < 10 + int.from_bytes(buf[:4], "big"):
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    s.close()
    return buf[10:]


def fri_stats(address):
    """FRI Stats of every sandbox: id -> (uss_bytes, pss_bytes, host_processes)."""
    resp = dict((f, v) for f, v in pb_wire.fields(fri_call(address, "Stats", b"")) if f == 2)
    out = {}
    for f, sb in pb_wire.fields(resp.get(2, b"")):
        if f == 1:
            d = dict(pb_wire.fields(sb))
            out[d.get(1, b"").decode()] = (d.get(2, 0), d.get(3, 0), d.get(4, 0))
    return out


TOUCH = """import time
def handler(event, context):
    b = bytearray(48 << 20)
    for i in range(0, len(b), 4096):
        b[i] = 1
    time.sleep(event["sleep"])
    return len(b) >> 20
"""


def pss_checks(tmp):
    """FRI Stats of a seed counts the seed's own processes only: while 4 instances forked from it
    each touch 48 MiB, its USS stays as it was and its PSS grows by no more than 12 MiB (it falls:
    the instances share its pages), and each instance reports its own 48 MiB."""
    os.makedirs(os.path.join(tmp, "pss"), exist_ok=True)
    state = os.path.join(tmp, "pss", "state")
    node = Node(state, free_port(), "--cgroup-pool=0", "--node=", "--promote-after=64", "--seed-replicas=1")
    try:
        fri = open(os.path.join(state, "fri.address")).read().strip()
        node.deploy("touch", TOUCH)
        node.invoke("touch", {"sleep": 0})  # the seed's first fork makes its spares
        time.sleep(0.5)
        before = fri_stats(fri)["python-l1"]
        results = []
        threads = [threading.Thread(target=lambda: results.append(node.invoke("touch", {"sleep": 8})[0]))
                   for _ in range(4)]
        for t in threads:
            t.start()
        during, instances = None, {}
        deadline = time.time() + 60
        while time.time() < deadline:
            stats = fri_stats(fri)
            instances = {i: v for i, v in stats.items() if i.startswith("python-touch-")}
            if len(instances) == 4 and all(v[0] >= 40 << 20 for v in instances.values()):
                during = stats["python-l1"]
                break
            time.sleep(0.2)
        for t in threads:
            t.join()
        mib = lambda v: tuple(round(x / 2**20, 1) for x in v[:2]) if v else None
        check(during is not None, f"4 instances each hold their 48 MiB in FRI Stats "
                                  f"({ {i: mib(v) for i, v in instances.items()} })")
        # PSS splits a shared page among its sharers: the 4 instances share the seed's pages, so
        # its PSS falls (20 -> 7 MiB seen at load 20); only the instances' memory counted in the
        # seed would raise it.
        check(during is not None and abs(during[0] - before[0]) < 12 << 20 and during[1] - before[1] < 12 << 20,
              f"the seed's USS stays as it was and its PSS does not grow while its 4 instances touch memory "
              f"(MiB before {mib(before)}, during {mib(during)})")
        check(results == [200] * 4, f"... and the 4 calls answer ({results})")
    finally:
        node.stop()


def node_checks(node):
    check("node level-1 seed" in node.stderr(), "the node seed boots at start, progress on stderr")
    node.deploy("nhello", NODE_HELLO, runtime="node")
    st, h, body = node.invoke("nhello", {"name": "seed"})
    check(st == 200 and body == {"hello": "seed"} and h.get("X-Seedd-Seed") == "node-l1",
          f"node hello: 200 from node-l1 (got {st} {body} from {h.get('X-Seedd-Seed')})")
    check({"fork", "run", "destroy", "total"} <= set(timing(h)), "node: Server-Timing has every phase")

    body = {"runtime": "node", "handler": "main.handler",
            "files": {"main.js": NODE_TRANSFORM, "lib/words.js": NODE_WORDS}}
    st, _, data = node.request("PUT", "/functions/ntransform", json.dumps(body))
    check(st == 201, f"deploy a node function of two files (got {st} {data[:200]!r})")
    st, _, body = node.invoke("ntransform", {"text": "Hello, Seed World", "nums": [1, 2, 3.5]})
    check(st == 200 and body == {"count": 3, "upper": ["HELLO", "SEED", "WORLD"], "sum": 6.5,
                                 "function": "ntransform"}, f"node JSON transform, async, require('./lib/words') (got {st} {body})")

    node.deploy("nraises", NODE_RAISES, runtime="node")
    st, _, body = node.invoke("nraises", {"a": 1})
    tb = body.get("traceback", "") if isinstance(body, dict) else ""
    check(st == 500 and body.get("error") == 'RangeError: bad input: {"a":1}' and "main.js:1" in tb,
          f"node handler exception: 500 with the stack (got {st} {body})")

    node.deploy("nstateful", NODE_STATEFUL, runtime="node")
    answers = [node.invoke("nstateful", {}) for _ in range(4)]
    seeds = {h.get("X-Seedd-Seed") for _, h, _ in answers}
    check(all(st == 200 and b == {"counter": 1, "global": 1, "fileSeen": False} for st, _, b in answers),
          f"node: a file, a module variable and a global written by one call are not seen by the next "
          f"(from {seeds}: {[b for _, _, b in answers]})")

    node.deploy("nrandom", NODE_RANDOM, runtime="node")
    calls = [node.invoke("nrandom", {}) for _ in range(6)]
    ok = all(st == 200 for st, _, _ in calls)
    fresh = [b["fresh"] for _, _, b in calls] if ok else []
    check(ok and len(set(fresh)) == len(fresh), f"node: context.randomBytes differs in every call ({fresh})")
    by_seed = {}
    for _, h, b in (calls if ok else []):
        by_seed.setdefault(h.get("X-Seedd-Seed"), []).append(b)
    same = [v for v in by_seed.values() if len(v) >= 2]
    # The runtime re-seeds Math.random and Node's crypto random calls after
    # every fork (README, runtimes/node), OpenSSL's DRBG too (randomInt and
    # key generation draw from it directly): forks of one seed differ (they
    # used to repeat the seed's state: the same value in every call).
    for key in ("math", "bytes", "uuid", "int", "key"):
        vals = [b[key] for _, _, b in calls] if ok else []
        check(same and len(set(vals)) == len(vals),
              f"node: {key} differs in every call, also in the forks of one seed "
              f"({ {s: [b[key] for b in v] for s, v in by_seed.items()} })")

    st, _, data = node.request("PUT", "/functions/nbad", json.dumps(
        {"runtime": "node", "handler": "main.handler", "files": {"main.py": "x"}}))
    check(st == 400 and b"main.js" in data, f"node deploy without main.js: 400 naming it (got {st} {data})")


def metrics(node):
    st, h, data = node.request("GET", "/metrics")
    check(st == 200 and h.get("Content-Type", "").startswith("text/plain"), f"GET /metrics: 200 text/plain (got {st})")
    out = {}
    for line in data.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def pool_parent(node):
    for line in node.stderr().splitlines():
        if "instance cgroups ready under" in line:
            return line.split("/sys/fs/cgroup/{memory,pids,cpu}/")[1].split()[0]
    return None


def pool_settled(node):
    """/metrics once no pool cgroup is in use or draining (or after 5 s)."""
    m = {}
    for _ in range(100):
        m = metrics(node)
        if m.get("seedd_cgroup_pool_draining") == 0 and m.get("seedd_cgroup_pool_in_use") == 0:
            break
        time.sleep(0.05)
    return m


def pool_checks(node):
    parent = pool_parent(node)
    check(parent is not None, f"seedd reports its cgroup pool at start ({node.stderr()[:400]})")
    if parent is None:
        return
    base = f"/sys/fs/cgroup/memory/{parent}"
    pool = sorted(os.listdir(base)) if os.path.isdir(base) else []
    pool = [c for c in pool if os.path.isdir(os.path.join(base, c))]
    check(len(pool) >= POOL, f"{POOL} pool cgroups under {base} ({pool})")
    node.deploy("nap", NAP)
    recycled0 = metrics(node).get("seedd_cgroup_pool_recycled_total", 0)
    got = {}
    th = threading.Thread(target=lambda: got.update(r=node.invoke("nap", {"s": 1.5})))
    th.start()
    # A fork's host processes run seedsc (the sentry) or its stub (a memfd
    # "seedsc-stub"); look while the call runs (its destroy kills them).
    busy, exes = None, []
    deadline = time.time() + 10
    while time.time() < deadline and not exes and th.is_alive():
        for c in os.listdir(base):
            procs = os.path.join(base, c, "cgroup.procs")
            if os.path.exists(procs):
                for p in open(procs).read().split():
                    try:
                        exes.append(os.readlink(f"/proc/{p}/exe"))
                        busy = c
                    except OSError:
                        pass
        time.sleep(0.05)
    # Look at the busy cgroup while the call still runs: once it is given
    # back, the pool may drop it (it keeps at most 2 x --cgroup-pool free;
    # many calls before this one can leave it full).
    parts, limit = {}, None
    if busy is not None:
        for ctl in ("pids", "cpu"):
            parts[ctl] = os.path.isdir(f"/sys/fs/cgroup/{ctl}/{parent}/{busy}")
        try:
            limit = int(open(os.path.join(base, busy, "memory.limit_in_bytes")).read())
        except OSError:
            pass
    running = th.is_alive()
    th.join()
    check(got.get("r", (0,))[0] == 200, f"the call in a pool cgroup answers ({got.get('r')})")
    check(busy is not None and exes and all("seedsc" in e for e in exes),
          f"an instance's sandbox processes run in a pool cgroup ({busy}: {exes[:4]})")
    if busy is None:
        return
    check(running, "the pool cgroup was read while its call ran")
    for ctl in ("pids", "cpu"):
        check(parts.get(ctl), f"the pool cgroup has a {ctl} part too")
    check(limit == INSTANCE_MEMORY, f"its memory limit is --instance-memory ({limit})")
    m = pool_settled(node)
    procs = os.path.join(base, busy, "cgroup.procs")
    empty = not os.path.exists(procs) or not open(procs).read().split()  # or dropped
    check(empty and m.get("seedd_cgroup_pool_recycled_total", 0) > recycled0
          and POOL <= m.get("seedd_cgroup_pool_free", 0) <= 2 * POOL and m.get("seedd_cgroup_pool_in_use") == 0,
          f"after the call its cgroup is empty and back in the pool (free {m.get('seedd_cgroup_pool_free')}, "
          f"recycled {recycled0} -> {m.get('seedd_cgroup_pool_recycled_total')}, empty {empty})")


def favor_hierarchy(node):
    """The name of the favordynmods hierarchy `node`'s seedd holds: the one
    its stderr names (name=seedd_favordynmods_HASH, after its state dir) if
    its /proc/PID/cgroup shows it (every process is in every v1 hierarchy's
    root, another seedd's too); None without one (seedd/cgroup_favor.h)."""
    m = re.search(r"name=(seedd_favordynmods_[0-9a-f]+)", node.stderr())
    if not m:
        return None
    held = any(line.split(":")[1] == f"name={m.group(1)}" for line in open(f"/proc/{node.proc.pid}/cgroup"))
    return m.group(1) if held else None


def hierarchy_gone(name, seconds=3.0):
    """Whether the kernel no longer has the v1 hierarchy `name` (it destroys
    one whose last mount went asynchronously)."""
    end = time.time() + seconds
    while f":name={name}:" in open("/proc/self/cgroup").read() and time.time() < end:
        time.sleep(0.02)
    return f":name={name}:" not in open("/proc/self/cgroup").read()


def favordynmods_mounts(state, name=None, pids=("self",)):
    """How many cgroup mounts the mountinfo of `pids` shows at
    <state>/cgroup-favordynmods (where older seedds attached it) or of the
    hierarchy `name`."""
    where = os.path.realpath(os.path.join(state, "cgroup-favordynmods"))
    n = 0
    for pid in pids:
        try:
            lines = open(f"/proc/{pid}/mountinfo").read().splitlines()
        except OSError:  # gone meanwhile
            continue
        for line in lines:
            mine, _, fs = line.partition(" - ")
            fs = fs.split()
            if fs[0] == "cgroup" and (mine.split()[4] == where
                                      or (name and f"name={name}" in fs[2].split(","))):
                n += 1
    return n


def kernel_has_favordynmods():
    try:
        return "favordynmods" in open("/sys/kernel/cgroup/features").read().split()
    except OSError:
        return False


def cgroup_join_checks(node, state):
    """seedd keeps cgroup joins out of the RCU grace period with favordynmods
    where the kernel has it, says which way it chose, and holds the hierarchy
    by a detached mount that neither the host nor its sandboxes see
    (seedd/cgroup_favor.h)."""
    err = node.stderr()
    if not kernel_has_favordynmods():
        check("seedd: cgroup joins: nothing keeps them fast (favordynmods unavailable" in err,
              f"without favordynmods in the kernel seedd says so ({err[:600]})")
        return
    check("seedd: cgroup joins: favordynmods (cgroup v1 hierarchy name=seedd_favordynmods_" in err
          and "a detached mount held by seedd only" in err,
          f"seedd says it uses favordynmods ({err[:600]})")
    name = favor_hierarchy(node)
    check(name is not None and f"name={name}," in err,
          f"the kernel has seedd's hierarchy, seedd in its root ({name})")
    sandboxes = [int(l.split()[0]) for l in sandbox_processes(state)]
    check(favordynmods_mounts(state, name) == 0
          and not os.path.exists(os.path.join(state, "cgroup-favordynmods")),
          f"no mount of it is attached on the host ({favordynmods_mounts(state, name)})")
    check(sandboxes and favordynmods_mounts(state, name, sandboxes) == 0,
          f"nor in its {len(sandboxes)} sandbox processes' mount trees")
    threads = thread_names(node.proc.pid)
    check("seedd-warm" not in threads, f"no warmth thread by default ({threads})")
    return name


def thread_names(pid):
    """The names of `pid`'s threads; one that ends while they are read is left out."""
    names = []
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/comm") as f:
                names.append(f.read().strip())
        except (FileNotFoundError, ProcessLookupError):
            pass
    return names


def warmth_checks(tmp):
    """--cgroup-warm without favordynmods: the warmth thread runs and writes
    after a call (seedd/migration_warmth.h), and stderr says so."""
    os.makedirs(os.path.join(tmp, "warm"), exist_ok=True)
    state = os.path.join(tmp, "warm", "state")
    node = Node(state, free_port(), "--cgroup-pool=2", "--node=", "--cgroup-warm=30s",
                "--cgroup-favordynmods=false")
    try:
        said = "seedd: cgroup joins: --cgroup-warm=30s (--cgroup-favordynmods=false)"
        check(said in node.stderr(),
              f"seedd says it keeps joins fast with its warmth ({node.stderr()[:600]})")
        check(favordynmods_mounts(state) == 0 and favor_hierarchy(node) is None,
              "--cgroup-favordynmods=false makes no hierarchy")
        threads = thread_names(node.proc.pid)
        check("seedd-warm" in threads, f"a seedd-warm thread runs ({threads})")
        node.deploy("hello", HELLO)
        st, _, _ = node.invoke("hello", {"name": "warm"})
        w0 = metrics(node).get("seedd_cgroup_migration_warm_writes_total", 0)
        time.sleep(0.5)
        w1 = metrics(node).get("seedd_cgroup_migration_warm_writes_total", 0)
        check(st == 200 and w1 > w0 > 0, f"after a call the warmth writes ({w0} -> {w1})")
    finally:
        node.stop()


def memory_checks(node):
    """A call past --instance-memory answers 507 naming the limit; its cgroup comes back clean."""
    node.deploy("hog", HOG)
    st, h, body = node.invoke("hog", {"mb": 16})
    check(st == 200 and body == 16, f"hog: 16 MiB under the limit answers (got {st} {body})")
    mb = 2 * INSTANCE_MEMORY >> 20
    st, h, body = node.invoke("hog", {"mb": mb})
    err = body.get("error", "") if isinstance(body, dict) else ""
    check(st == 507 and f"memory limit of {INSTANCE_MEMORY >> 20} MiB" in err and "OOM killer" in err,
          f"hog: {mb} MiB past the limit answers 507 naming it (got {st} {body})")
    cg = err.split("in cgroup ")[1].rstrip(")") if "in cgroup " in err else None
    m = pool_settled(node)
    failcnt = open(os.path.join(cg, "memory.failcnt")).read().strip() if cg and os.path.isdir(cg) else None
    check(failcnt == "0", f"the cgroup of the killed instance is recycled with its failcnt zeroed ({cg}: {failcnt})")
    # Every pool cgroup, the killed one included, serves calls again.
    got = [node.invoke("hog", {"mb": 16})[:3:2] for _ in range(2 * POOL + 1)]
    check(all(g == (200, 16) for g in got), f"after the 507 every pool cgroup answers again ({got})")
    check(m.get('seedd_invocations_total{function="hog",code="507"}') == 1, "the 507 is counted in /metrics")


def concurrent_echo(node, fname, clients, calls):
    """`clients` threads, each on its own keep-alive connection, call the echo
    function `fname` `calls` times; returns (wrong answers, seeds used)."""
    results, used = {}, []

    def client(n):
        conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=60)
        got = []
        for i in range(calls):
            st, h, body = node.invoke(fname, {"client": n, "i": i}, conn)
            got.append((st, body))
            used.append(h.get("X-Seedd-Seed"))
        conn.close()
        results[n] = got

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    bad = [(n, i, r) for n in range(clients) for i, r in enumerate(results.get(n, [None] * calls))
           if r != (200, {"echo": {"client": n, "i": i}})]
    return bad, used


def replica_checks(node, state):
    """Forks of one busy seed queue up: seedd forks it replicas, spreads calls over them, drops them idle."""
    node.deploy("wide", ECHO)
    seed = None
    for _ in range(100):
        _, h, _ = node.invoke("wide", {})
        seed = h.get("X-Seedd-Seed", "")
        if seed.startswith("python-l2-wide"):
            break
        time.sleep(0.1)
    check(seed.startswith("python-l2-wide"), f"wide has its level-2 seed ({seed})")
    bad, used = concurrent_echo(node, "wide", 8, 8)
    check(not bad, f"8 clients x 8 calls of wide: every answer is its own ({bad[:3]})")
    m = metrics(node)
    made = m.get(f'seedd_seed_replicas_made_total{{seed="{seed}"}}', 0)
    queued = m.get(f'seedd_seed_queued_forks_total{{seed="{seed}"}}', 0)
    replicas = sorted({u for u in used if u and u.startswith(seed + "-r")})
    check(queued > 0 and made >= 1 and replicas,
          f"forks of {seed} queued ({queued}): seedd made {made} replicas and calls came from them ({replicas})")
    st, _, seeds = node.request("GET", "/seeds")
    listed = {s["id"]: s for s in json.loads(seeds)}
    # A replica idle for --replica-idle=2s may be gone already (several are made at
    # once, and the last calls may not need them all): each one still there after
    # the listing was there in it.
    alive = set(subprocess.run([SEEDSC, f"--root={state}/seedsc", "list", "--quiet"],
                               capture_output=True, text=True).stdout.split())
    check(all(listed.get(r, {}).get("parent") == seed for r in replicas if r in alive),
          f"GET /seeds lists each replica as a child seed of {seed} "
          f"({[(r, listed.get(r, {}).get('parent'), r in alive) for r in replicas]})")
    # --replica-idle=2s. seedd counts a replica dropped before it destroys
    # it (outside its lock), so wait for the sandboxes to go as well.
    for _ in range(100):
        m = metrics(node)
        lst = subprocess.run([SEEDSC, f"--root={state}/seedsc", "list", "--quiet"],
                             capture_output=True, text=True).stdout.split()
        left = set(replicas) & set(lst)
        if m.get(f'seedd_seed_copies{{seed="{seed}"}}') == 1 and not left:
            break
        time.sleep(0.1)
    dropped = m.get(f'seedd_seed_replicas_dropped_total{{seed="{seed}"}}', 0)
    copies = m.get(f'seedd_seed_copies{{seed="{seed}"}}')
    check(copies == 1 and dropped == made and not left,
          f"idle replicas are destroyed (copies {copies}, dropped {dropped} of {made}, left {left})")
    st, h, body = node.invoke("wide", {"after": 1})
    check(st == 200 and h.get("X-Seedd-Seed") == seed, f"then calls fork from the seed itself ({h.get('X-Seedd-Seed')})")


def metrics_checks(node):
    before = metrics(node)
    key = 'seedd_invocations_total{function="echo",code="200"}'
    n0 = before.get(key, 0)
    for i in range(3):
        node.invoke("echo", {"i": i})
    node.invoke("raises", {})
    node.invoke("no-such-function", {})
    m = metrics(node)
    check(m.get(key) == n0 + 3, f"seedd_invocations_total counts echo's 200s ({n0} -> {m.get(key)})")
    check(m.get('seedd_invocations_total{function="raises",code="500"}', 0) >= 2, "... and raises' 500s")
    check(m.get('seedd_invocations_total{function="",code="404"}', 0) >= 2, "... and unknown functions' 404s under \"\"")
    for phase in ("queue", "fork", "run", "destroy", "total"):
        count = m.get(f'seedd_invoke_phase_seconds_count{{phase="{phase}"}}', 0)
        inf = m.get(f'seedd_invoke_phase_seconds_bucket{{phase="{phase}",le="+Inf"}}', -1)
        low = m.get(f'seedd_invoke_phase_seconds_bucket{{phase="{phase}",le="0.001"}}', -1)
        check(count >= 10 and inf == count and 0 <= low <= count,
              f"{phase} latency histogram: {count} observations, cumulative buckets ({low} <= 1 ms)")
    seeds = {k: v for k, v in m.items() if k.startswith("seedd_seed_pss_bytes{")}
    check(any('seed="python-l1"' in k and v > 0 for k, v in seeds.items())
          and any('seed="node-l1"' in k for k in seeds), f"seed PSS per seed ({list(seeds)[:4]})")
    forks = [v for k, v in m.items() if k.startswith('seedd_seed_forks_total{seed="python-l1"')]
    check(forks and forks[0] >= 5, f"forks per seed (python-l1: {forks})")
    for _ in range(100):  # a promotion's new seed runs until it is paused
        if m.get("seedd_live_instances") == 0:
            break
        time.sleep(0.05)
        m = metrics(node)
    check(m.get("seedd_live_instances") == 0, f"no live instance between calls ({m.get('seedd_live_instances')})")


BIG = """BLOB = bytearray(100 << 20)
for i in range(0, len(BLOB), 4096):
    BLOB[i] = 1
def handler(event, context):
    return len(BLOB) >> 20
"""
# Two 100 MiB L2 seeds and the L1 (~30-40 MiB) fit, a third does not.
BUDGET = 280


def retry_checks(tmp):
    """A seed copy whose Forks fail (SEEDD_TEST_FORK_STALL: its forks' children stall and the
    seed kills them after 1 s) costs a call a retry on another copy, not a 503; seedd drops the
    copy (a replica), or evicts it (a level-2 seed whose Fork timed out)."""
    os.makedirs(os.path.join(tmp, "retry"), exist_ok=True)
    state = os.path.join(tmp, "retry", "state")
    node = Node(state, free_port(), "--cgroup-pool=0", "--node=", "--replica-idle=60s",
                env={"SEEDD_TEST_FORK_STALL": "python-l2-sick,-r1"})
    try:
        node.deploy("sick", HELLO)
        # Promoted after its 2nd call; once its level-2 seed is up, a call tries it first.
        got = []
        for i in range(100):
            got.append(node.invoke("sick", {"name": str(i)}))
            if 'a fork of seed "python-l2-sick-v' in node.stderr():
                break
            time.sleep(0.2)
        got.append(node.invoke("sick", {"name": str(len(got))}))
        bad = [(st, h.get("X-Seedd-Seed"), body) for i, (st, h, body) in enumerate(got)
               if st != 200 or body != {"hello": str(i)}]
        check(not bad, f"calls whose level-2 seed fails its Forks answer from level 1 ({bad[:3]})")
        err = node.stderr()
        check('a fork of seed "python-l2-sick-v' in err and "evicted" in err,
              f"... and seedd evicts that seed, saying so ({err[-400:]})")
        check("Fork of seed sandbox \"python-l2-sick-v" in err and "failed after" in err,
              f"the fork's error names the seed sandbox and how long it waited ({err[-400:]})")

        node.deploy("busy", ECHO)
        for _ in range(100):
            if node.invoke("busy", {})[1].get("X-Seedd-Seed", "").startswith("python-l2-busy"):
                break
            time.sleep(0.1)
        bad, used = concurrent_echo(node, "busy", 8, 8)
        check(not bad, f"8 clients x 8 calls while replica r1 fails its Forks: every answer is its own ({bad[:3]})")
        err = node.stderr()
        m = re.search(r'a fork of seed "(python-l2-busy-v\d+-r1)" failed .*destroyed \(a replica\)', err)
        check(m is not None, f"the failing replica is dropped, and seedd says so ({err[-400:]})")
        if m:
            lst = subprocess.run([SEEDSC, f"--root={state}/seedsc", "list", "--quiet"],
                                 capture_output=True, text=True).stdout.split()
            check(m.group(1) not in lst, f"... and destroyed ({m.group(1)} in {lst})")
    finally:
        node.stop()


def l1_reboot_checks(tmp):
    """A level-1 seed whose Fork times out (SEEDD_TEST_FORK_STALL=python-l1 exactly) is stuck:
    seedd boots a new one (python-l1-g2) and destroys the old; with no level-0 seed
    (--l0-fallback=false) a call waits for it, no 503 (l0_fallback_checks: with one)."""
    os.makedirs(os.path.join(tmp, "reboot"), exist_ok=True)
    state = os.path.join(tmp, "reboot", "state")
    node = Node(state, free_port(), "--cgroup-pool=0", "--node=", "--seed-replicas=1", "--promote-after=64",
                "--l0-fallback=false",
                env={"SEEDD_TEST_FORK_STALL": "=python-l1"})
    try:
        node.deploy("h", HELLO)
        st, h, body = node.invoke("h", {"name": "a"})
        check(st == 200 and body == {"hello": "a"} and h.get("X-Seedd-Seed") == "python-l1-g2",
              f"a call whose level-1 seed is stuck is answered by a new level-1 seed "
              f"({st} {body} from {h.get('X-Seedd-Seed')})")
        err = node.stderr()
        check('a fork of seed "python-l1" failed' in err and 'level-1 seed "python-l1-g2" replaced "python-l1"' in err,
              f"seedd says the seed was stuck and replaced ({err[-500:]})")
        # The stuck seed is destroyed after the new one answers; its
        # Shutdown waits for its host processes (up to 10 s).
        for _ in range(150):
            lst = subprocess.run([SEEDSC, f"--root={state}/seedsc", "list", "--quiet"],
                                 capture_output=True, text=True).stdout.split()
            if "python-l1" not in lst:
                break
            time.sleep(0.1)
        check("python-l1" not in lst and "python-l1-g2" in lst, f"the stuck seed is destroyed within 15 s ({lst})")
        st, h, body = node.invoke("h", {"name": "b"})
        check(st == 200 and h.get("X-Seedd-Seed") == "python-l1-g2", f"later calls fork from it ({st} {h.get('X-Seedd-Seed')})")
    finally:
        node.stop()


def seedsc_pid(state, sid):
    st = subprocess.run([SEEDSC, f"--root={state}/seedsc", "state", sid], capture_output=True, text=True)
    try:
        return json.loads(st.stdout).get("pid", 0)
    except ValueError:
        return 0


def wait_stderr(node, text, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline and text not in node.stderr():
        time.sleep(0.1)
    return text in node.stderr()


def l0_fallback_checks(tmp):
    """The level-0 seed ("l0", booted beside the level-1 seeds) serves a call whose runtime has no
    level-1 seed that can fork: killed (SIGKILL of its sandbox) while it is replaced, or stuck
    (SEEDD_TEST_FORK_STALL) in every generation, and a promotion then makes the level-2 seed
    from level 0. Server-Timing names the path (path;desc="L0"), with the runtime's start."""
    os.makedirs(os.path.join(tmp, "fallback"), exist_ok=True)
    state = os.path.join(tmp, "fallback", "state")
    node = Node(state, free_port(), "--cgroup-pool=0", "--node=", "--seed-replicas=1", "--promote-after=64")
    try:
        lst = subprocess.run([SEEDSC, f"--root={state}/seedsc", "list", "--quiet"],
                             capture_output=True, text=True).stdout.split()
        check(sorted(lst) == ["l0", "python-l1"], f"the level-0 seed boots beside the level-1 seed ({lst})")
        node.deploy("h", HELLO)
        st, h, body = node.invoke("h", {"name": "a"})
        check(st == 200 and h.get("X-Seedd-Seed") == "python-l1" and 'path;desc="L1"' in h.get("Server-Timing", ""),
              f"a call forks the level-1 seed, and Server-Timing says so ({st} {h.get('Server-Timing')})")
        pid = seedsc_pid(state, "python-l1")
        check(pid > 0, f"seedsc state names the level-1 seed's sandbox pid ({pid})")
        if pid > 0:
            os.kill(pid, signal.SIGKILL)
        st, h, body = node.invoke("h", {"name": "b"})
        t = timing(h)
        check(st == 200 and body == {"hello": "b"} and h.get("X-Seedd-Seed") == "l0"
              and 'path;desc="L0"' in h.get("Server-Timing", "") and "start" in t,
              f"with its level-1 seed killed, a call is answered from a fork of level 0 "
              f"({st} {body} from {h.get('X-Seedd-Seed')}: {h.get('Server-Timing')})")
        check(wait_stderr(node, 'level-1 seed "python-l1-g2" replaced "python-l1"'),
              f"seedd replaces the killed level-1 seed ({node.stderr()[-500:]})")
        st, h, body = node.invoke("h", {"name": "c"})
        check(st == 200 and h.get("X-Seedd-Seed") == "python-l1-g2" and 'path;desc="L1"' in h.get("Server-Timing", ""),
              f"then calls fork the new level-1 seed ({st} {h.get('X-Seedd-Seed')})")
    finally:
        node.stop()
    # Every level-1 generation stuck: calls and the promotion go through level 0.
    state = os.path.join(tmp, "fallback", "stuck")
    node = Node(state, free_port(), "--cgroup-pool=0", "--node=", "--seed-replicas=1", "--promote-after=2",
                env={"SEEDD_TEST_FORK_STALL": "python-l1"})
    try:
        node.deploy("h", HELLO)
        got = []
        for i in range(40):
            st, h, body = node.invoke("h", {"name": str(i)})
            got.append((st, body == {"hello": str(i)}, h.get("X-Seedd-Seed"), h.get("Server-Timing", "")))
            if (h.get("X-Seedd-Seed") or "").startswith("python-l2-h"):
                break
            time.sleep(0.2)
        check(all(st == 200 and ok for st, ok, _, _ in got),
              f"calls whose level-1 seeds are all stuck answer 200 ({[g[:3] for g in got if g[0] != 200 or not g[1]][:3]})")
        check(got[0][2] == "l0" and 'path;desc="L0"' in got[0][3],
              f"... the first from level 0 ({got[0][2:]})")
        check(got[-1][2] == "python-l2-h-v1" and 'path;desc="L2"' in got[-1][3],
              f"the function is promoted to a level-2 seed all the same ({got[-1][2:]})")
        check("level-2 seed \"python-l2-h-v1\" is made from level 0" in node.stderr(),
              f"... made from level 0, and seedd says so ({node.stderr()[-600:]})")
    finally:
        node.stop()


def l0_checks(tmp):
    """--max-level=0: one level-0 seed ("l0", seedd l0-init) instead of level-1 seeds; every call
    forks it and starts python there (Server-Timing "start"); each call is its own process."""
    os.makedirs(os.path.join(tmp, "l0"), exist_ok=True)
    state = os.path.join(tmp, "l0", "state")
    node = Node(state, free_port(), "--cgroup-pool=0", "--node=", "--max-level=0")
    try:
        lst = subprocess.run([SEEDSC, f"--root={state}/seedsc", "list", "--quiet"],
                             capture_output=True, text=True).stdout.split()
        check(lst == ["l0"], f"only the level-0 seed is booted ({lst})")
        node.deploy("h", HELLO)
        node.deploy("r", RANDOM)
        answers = [node.invoke("h", {"name": str(i)}) for i in range(3)]
        bad = [(st, h.get("X-Seedd-Seed"), body) for i, (st, h, body) in enumerate(answers)
               if st != 200 or body != {"hello": str(i)} or h.get("X-Seedd-Seed") != "l0"]
        check(not bad, f"calls fork the level-0 seed and answer ({bad[:2]})")
        t = timing(answers[0][1])
        check({"queue", "fork", "start", "run", "destroy", "total"} <= set(t),
              f"Server-Timing has the runtime's start ({answers[0][1].get('Server-Timing')})")
        vals = [node.invoke("r", {})[2] for _ in range(3)]
        got = [v.get("token") if isinstance(v, dict) else v for v in vals]
        check(len(set(got)) == len(got), f"secrets differ in every call ({got})")
        st, h, _ = node.invoke("h", {})
        check(st == 200 and "level-2" not in node.stderr(), "no function is promoted to level 2")
    finally:
        node.stop()
    # The level-0 seed execs seedd inside a sandbox whose /tmp is its own: seedd says so.
    # Under /tmp on purpose, and removed however the run ends.
    with tempfile.TemporaryDirectory(prefix="seedd-l0-", dir="/tmp") as in_tmp:
        shutil.copy(SEEDD, in_tmp)
        st = subprocess.run([os.path.join(in_tmp, os.path.basename(SEEDD)), "--max-level=0",
                             f"--seedsc={SEEDSC}", f"--state-dir={tmp}/l0/intmp",
                             "--listen=127.0.0.1:1", "--cgroup-pool=0"],
                            capture_output=True, text=True, timeout=60)
    check(st.returncode != 0 and "its own (empty) tmpfs: run seedd from outside /tmp" in st.stderr,
          f"a seedd under /tmp refuses --max-level=0, saying why ({st.returncode} {st.stderr.strip()[-200:]})")
    st = subprocess.run([SEEDD, "--max-level=3", f"--state-dir={tmp}/l0/bad"], capture_output=True, text=True)
    check(st.returncode != 0 and "--max-level" in st.stderr and "not 0, 1 or 2" in st.stderr,
          f"a bad --max-level is refused naming it ({st.returncode} {st.stderr.strip()[-200:]})")


def budget_checks(tmp):
    """--promote-after 2 within --promote-window; LRU eviction of L2 seeds under --seed-memory."""
    os.makedirs(os.path.join(tmp, "budget"), exist_ok=True)
    node = Node(os.path.join(tmp, "budget", "state"), free_port(), "--promote-after=2", "--promote-window=1s",
                f"--seed-memory={BUDGET}M", "--cgroup-pool=0", "--node=")
    try:
        node.deploy("w", HELLO)
        seeds = []
        for _ in range(3):  # three calls, each more than the window after the last
            seeds.append(node.invoke("w", {})[1].get("X-Seedd-Seed"))
            time.sleep(1.3)
        check(seeds == ["python-l1"] * 3, f"calls further apart than --promote-window do not promote ({seeds})")
        node.invoke("w", {})
        time.sleep(0.5)
        seed = None
        for _ in range(50):
            seed = node.invoke("w", {})[1].get("X-Seedd-Seed")
            if seed.startswith("python-l2-w"):
                break
            time.sleep(0.1)
        check(seed.startswith("python-l2-w"), f"two calls within the window promote ({seed})")
        for n in ("big1", "big2", "big3"):
            node.deploy(n, BIG)

        def promote(n):
            for _ in range(100):
                st, h, body = node.invoke(n, {})
                if h.get("X-Seedd-Seed", "").startswith(f"python-l2-{n}"):
                    return st == 200 and body == 100
                time.sleep(0.05)
            return False

        ok = promote("big1") and promote("big2")
        time.sleep(2.5)  # the budget checks every second
        ids = {x["id"] for x in json.loads(node.request("GET", "/seeds")[2])}
        check(ok and any(i.startswith("python-l2-big1") for i in ids) and any(i.startswith("python-l2-big2") for i in ids),
              f"two L2 seeds of 100 MiB each fit in --seed-memory={BUDGET}M ({sorted(ids)})")
        node.invoke("big1", {})  # big2 is now the least recently used
        ok = promote("big3")
        evicted = None
        for _ in range(100):  # one eviction per second: w (older) first, then big2
            ids = {x["id"] for x in json.loads(node.request("GET", "/seeds")[2])}
            if not any(i.startswith("python-l2-big2") for i in ids):
                evicted = ids
                break
            time.sleep(0.1)
        check(ok and evicted is not None and any(i.startswith("python-l2-big1") for i in evicted)
              and any(i.startswith("python-l2-big3") for i in evicted),
              f"a third goes over the budget: big2, the least recently used, is evicted ({sorted(evicted or ids)}; "
              f"{[l for l in node.stderr().splitlines() if 'evicted' in l]})")
        time.sleep(2.5)  # and nothing more: the rest fits
        ids = {x["id"] for x in json.loads(node.request("GET", "/seeds")[2])}
        check(any(i.startswith("python-l2-big1") for i in ids) and any(i.startswith("python-l2-big3") for i in ids),
              f"big1 and big3 stay ({sorted(ids)})")
        m = metrics(node)
        check(m.get("seedd_seed_evictions_total", 0) >= 1 and 0 < m.get("seedd_seeds_pss_bytes", 0) <= BUDGET << 20,
              f"/metrics counts the eviction and the seeds' PSS is within the budget "
              f"({m.get('seedd_seed_evictions_total')}, {m.get('seedd_seeds_pss_bytes', 0) / 2**20:.1f} MiB)")
        check("evicted \"python-l2-big2" in node.stderr(), "the eviction is on stderr, naming the seed")
        st, h, body = node.invoke("big2", {})
        check(st == 200 and body == 100 and h.get("X-Seedd-Seed") == "python-l1",
              f"an evicted function is served from L1 ({st} {body} from {h.get('X-Seedd-Seed')})")
    finally:
        node.stop()


def config_errors(tmp, state, port):
    """--help documents every flag and the config file; a bad config names the file and key."""
    out = subprocess.run([SEEDD, "--help"], capture_output=True, text=True, timeout=10).stdout
    flags = ("listen", "state-dir", "seedsc", "python", "node", "timeout", "promote-after",
             "instance-memory", "cgroup-pool", "platform", "config", "seed-replicas", "replica-idle",
             "seed-memory", "promote-window", "cgroup-warm")
    check(all(f"--{f}=" in out for f in flags) and "--cgroup-favordynmods" in out
          and "/run/seedd" in out and "127.0.0.1:8080" in out
          and "functions/NAME.json" in out, f"seedd --help documents every flag, the defaults and the state ({out[-300:]})")
    check("until reboot" in out and "host-wide" in out and "can't be disabled" in out,
          "seedd --help says favordynmods switches the whole host, on Linux >= 6.18 until reboot")
    cases = [({"lisen": "x"}, 'key "lisen": not a seedd flag'),
             ({"timeout": "soon"}, 'key "timeout" (soon): not a positive duration'),
             ({"cgroup-pool": [1]}, 'key "cgroup-pool": must be a string'),
             (None, "not valid JSON")]
    for body, want in cases:
        cfg = os.path.join(tmp, "bad.json")
        with open(cfg, "w") as f:
            f.write("{" if body is None else json.dumps(body))
        r = subprocess.run([SEEDD, f"--config={cfg}", f"--listen=127.0.0.1:{port}", f"--state-dir={state}",
                            f"--seedsc={SEEDSC}"], capture_output=True, text=True, timeout=30)
        err = r.stderr.strip()
        check(r.returncode == 1 and err.startswith(f"seedd: {cfg}") and want in err and len(err.splitlines()) == 1,
              f"config {body}: one line naming the file and key ({r.returncode}: {err})")
    with open(cfg, "w") as f:
        json.dump({"timeout": "10s"}, f)
    r = subprocess.run([SEEDD, f"--config={cfg}", "--timeout=soon", f"--listen=127.0.0.1:{port}",
                        f"--state-dir={state}", f"--seedsc={SEEDSC}"], capture_output=True, text=True, timeout=30)
    check(r.returncode == 1 and "--timeout=soon: not a positive duration" in r.stderr,
          f"a flag overrides the config file, and its error names the flag ({r.stderr.strip()})")


def zombie_children(parents):
    """Host processes that have ended and whose parent in `parents` has not
    reaped them, as "pid (ppid)"."""
    found = []
    for d in os.listdir("/proc"):
        try:
            stat = open(f"/proc/{d}/stat").read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        if fields[0] == "Z" and int(fields[1]) in parents:
            found.append(f"{d} ({fields[1]})")
    return found


def idle_seeds_keep_no_zombies(node):
    """A seed reaps its ended forks by itself within a couple of seconds, not
    only at its next fork: a seed that goes idle keeps no zombies."""
    seeds = {s["pid"] for s in json.loads(node.request("GET", "/seeds")[2])}
    left = zombie_children(seeds)
    for _ in range(50):
        if not left:
            break
        time.sleep(0.1)
        left = zombie_children(seeds)
    check(seeds and not left, f"5 s after its last call no seed has an unreaped fork ({left[:4]})")


def sandbox_processes(state):
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [l for l in out.splitlines() if state in l and "seedd_e2e" not in l and SEEDD not in l]


def main():
    tmp = tempfile.mkdtemp(prefix="seedd-e2e.", dir=os.environ.get("TEST_TMPDIR", "/tmp"))
    state = os.path.join(tmp, "state")
    port = free_port()
    node = Node(state, port, f"--cgroup-pool={POOL}", f"--instance-memory={INSTANCE_MEMORY >> 20}M",
                "--replica-idle=2s")
    parent = pool_parent(node)
    favor = None
    try:
        check("python level-1 seed" in node.stderr(), "progress on stderr while the seed boots")
        node.deploy("hello", HELLO)
        st, h, body = node.invoke("hello", {"name": "seed"})
        check(st == 200 and body == {"hello": "seed"}, f"hello: 200 {{'hello': 'seed'}} (got {st} {body})")
        t = timing(h)
        check({"queue", "fork", "run", "destroy", "total"} <= set(t),
              f"Server-Timing has queue, fork, run, destroy, total ({h.get('Server-Timing')})")
        check(0 <= t.get("queue", -1) <= t.get("total", 0), f"queue is within the call ({h.get('Server-Timing')})")
        check(0 <= t.get("setup", -1) <= t.get("fork", 0) + t.get("queue", 0),
              f"Server-Timing has setup, a part of fork ({h.get('Server-Timing')})")
        check(t.get("setup", 0) <= t.get("rpc", -1) <= t.get("fork", 0) + t.get("queue", 0),
              f"Server-Timing has rpc, FRI's part of queue + fork ({h.get('Server-Timing')})")

        node.deploy("transform", TRANSFORM)
        st, _, body = node.invoke("transform", {"text": "Hello, Seed World", "nums": [1, 2, 3.5]})
        check(st == 200 and body == {"count": 3, "upper": ["HELLO", "SEED", "WORLD"], "sum": 6.5,
                                     "function": "transform"}, f"JSON transform (got {st} {body})")

        node.deploy("stateful", STATEFUL)
        answers = [node.invoke("stateful", {})[2] for _ in range(4)]
        check(all(a == {"counter": 1, "file_seen": False} for a in answers),
              f"a file and a global written by one call are not seen by the next (got {answers})")

        node.deploy("random", RANDOM)
        # The level-2 seed is made in the background after the first calls
        # (later under load): call on until two calls forked one, 40 at most.
        answers = []
        while len(answers) < 40:
            answers.append(node.invoke("random", {}))
            seeds = [h.get("X-Seedd-Seed") for _, h, _ in answers]
            if len(answers) >= 8 and any(
                    s and s.startswith("python-l2") and seeds.count(s) >= 2 for s in seeds):
                break
        vals = [b for _, _, b in answers]
        ok = all(isinstance(v, dict) for v in vals)
        seeds = [h.get("X-Seedd-Seed") for _, h, _ in answers]
        check(ok and any(s and seeds.count(s) >= 2 and s.startswith("python-l2") for s in seeds),
              f"two or more calls fork one level-2 seed, which loaded the code ({seeds})")
        # ssl: OpenSSL's DRBG, which the runtime re-seeds after each fork
        # (it re-seeds itself on a pid change only).
        for key in ("random", "uuid", "token", "ssl"):
            got = [v.get(key) for v in vals] if ok else []
            check(ok and len(set(got)) == len(got), f"{key}: no two calls return the same value ({got})")

        st, _, body = node.invoke("missing", {})
        check(st == 404 and "missing" in body.get("error", ""), f"unknown function: 404 naming it (got {st} {body})")
        st, _, body = node.request("POST", "/invoke/hello", "{not json")
        check(st == 400, f"malformed JSON event: 400 (got {st} {body})")
        st, _, body = node.request("PUT", "/functions/bad", json.dumps({"runtime": "python"}))
        check(st == 400 and b"handler" in body, f"malformed deploy: 400 naming the field (got {st} {body})")
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GARBAGE\r\n\r\n")
        reply = s.recv(4096)
        s.close()
        check(reply.startswith(b"HTTP/1.1 400"), f"malformed HTTP request: 400 (got {reply[:40]!r})")

        node.deploy("raises", RAISES)
        st, _, body = node.invoke("raises", {"a": 1})
        check(st == 500 and body.get("error", "").startswith("ValueError: bad input")
              and "Traceback" in body.get("traceback", "") and "main.py" in body.get("traceback", ""),
              f"handler exception: 500 with the traceback (got {st} {body})")

        node.deploy("slow", SLOW, timeout_ms=1500)
        t0 = time.time()
        st, _, body = node.invoke("slow", {})
        took = time.time() - t0
        check(st == 504 and took < 10, f"deadline: 504 after ~1.5 s (got {st} after {took:.1f} s: {body})")

        # hello has been called once; a second call promotes it to a level-2 seed.
        node.invoke("hello", {"name": "again"})
        seed = None
        for _ in range(100):
            st, h, body = node.invoke("hello", {"name": "l2"})
            seed = h.get("X-Seedd-Seed")
            if seed and seed.startswith("python-l2-hello"):
                break
            time.sleep(0.1)
        check(seed is not None and seed.startswith("python-l2-hello") and body == {"hello": "l2"},
              f"after its 2nd call hello is forked from its own level-2 seed (last seed {seed}, {body})")
        st, _, seeds = node.request("GET", "/seeds")
        seeds = json.loads(seeds)
        ids = {s["id"]: s for s in seeds}
        check("python-l1" in ids and any(i.startswith("python-l2-hello") for i in ids)
              and all(s["pss_bytes"] > 0 for s in seeds),
              f"GET /seeds lists L1 and hello's L2 with memory ({[(s['id'], s['pss_bytes']) for s in seeds]})")
        st, _, fns = node.request("GET", "/functions")
        check(st == 200 and {f["name"] for f in json.loads(fns)} >= {"hello", "transform", "slow"}, "GET /functions")
        # Redeploying drops the old level-2 seed: the new code answers.
        node.deploy("hello", "def handler(event, context):\n    return 'v2'\n")
        st, h, body = node.invoke("hello", {})
        check(st == 200 and body == "v2", f"a redeploy's code answers at once (got {st} {body} from {h.get('X-Seedd-Seed')})")

        # Concurrency as the issue asks: 24 clients, each on its own keep-alive
        # connection (the 2-core node answers them from forks of one seed).
        node.deploy("echo", ECHO)
        bad, _ = concurrent_echo(node, "echo", 24, 5)
        check(not bad, f"24 concurrent clients x 5 calls: every answer is its own ({bad[:3]})")

        replica_checks(node, state)
        node_checks(node)
        idle_seeds_keep_no_zombies(node)
        metrics_checks(node)
        pool_checks(node)
        memory_checks(node)
        favor = cgroup_join_checks(node, state)

        fri = open(os.path.join(state, "fri.address")).read().strip()
        check(os.path.exists(fri), f"<state-dir>/fri.address names the FRI socket ({fri})")
        listed = fri_call(fri, "List", b"")
        check(b"python-l1" in listed and b"python-l2-echo" in listed, f"FRI List names the seeds ({listed[:120]!r})")
        fri_lifecycle_checks(fri_call, fri, check)
        lst = subprocess.run([SEEDSC, f"--root={state}/seedsc", "list", "--quiet"], capture_output=True, text=True)
        check("python-l1" in lst.stdout.split(), f"seedsc list under <state-dir>/seedsc shows the seed ({lst.stdout.split()})")
    finally:
        rc = node.stop()
    check(rc == 0, f"seedd exits 0 on SIGTERM (got {rc}): {node.stderr()[-300:]}")
    left = []
    for _ in range(50):
        left = sandbox_processes(state)
        if not left:
            break
        time.sleep(0.1)
    check(not left, f"no sandbox process is left after seedd exits ({left[:3]})")
    left_dirs = os.listdir(os.path.join(state, "seedsc")) if os.path.isdir(os.path.join(state, "seedsc")) else []
    check(not left_dirs, f"no sandbox state is left ({left_dirs})")
    check(parent and not os.path.exists(f"/sys/fs/cgroup/memory/{parent}"), f"no pool cgroup is left ({parent})")
    check(favordynmods_mounts(state, favor) == 0 and (favor is None or hierarchy_gone(favor)),
          f"its favordynmods hierarchy goes with seedd on SIGTERM ({favor})")

    # A seedd killed with SIGKILL leaves its sandboxes; the next one removes them.
    node = Node(state, port, f"--cgroup-pool={POOL}")
    held = favor_hierarchy(node)
    node.proc.kill()
    node.proc.wait()
    check(held == favor,
          f"the restarted seedd held its favordynmods hierarchy before SIGKILL ({held})")
    check(len(sandbox_processes(state)) > 0, "after SIGKILL of seedd its seed is still there")
    check(os.path.isdir(f"/sys/fs/cgroup/memory/{parent}"), "after SIGKILL of seedd its pool cgroups are still there")
    check(favordynmods_mounts(state, favor) == 0 and (favor is None or hierarchy_gone(favor)),
          "after SIGKILL its favordynmods hierarchy is gone, though its seed still runs, and "
          "no mount of it is left")
    # The restarted seedd reads a config file (flags override it) and serves
    # the functions deployed before the restart.
    cfg = os.path.join(tmp, "seedd.json")
    with open(cfg, "w") as f:
        json.dump({"listen": "127.0.0.1:1", "promote-after": 3, "timeout": "20s"}, f)
    node = Node(state, port, f"--config={cfg}")
    check("removed" in node.stderr(), f"a restarted seedd removes the old run's sandboxes ({node.stderr()[:200]})")
    check(f"removed {POOL} cgroups left by an earlier run" in node.stderr(),
          f"... and its pool cgroups ({node.stderr()[:400]})")
    again = favor_hierarchy(node)
    check(again == favor and favordynmods_mounts(state, favor) == 0,
          f"... and holds its favordynmods hierarchy again, detached ({again})")
    check("serving" in node.stderr() and "functions deployed before" in node.stderr(),
          f"it says it serves the functions deployed before ({node.stderr()[-400:]})")
    st, _, fns = node.request("GET", "/functions")
    names = {f["name"] for f in json.loads(fns)} if st == 200 else set()
    check({"hello", "transform", "echo", "hog", "nhello"} <= names, f"GET /functions lists them again ({sorted(names)})")
    st, h, body = node.invoke("hello", {})
    check(st == 200 and body == "v2" and h.get("X-Seedd-Seed") == "python-l1",
          f"a restarted seedd answers hello's last deploy, from L1 (got {st} {body} from {h.get('X-Seedd-Seed')})")
    st, _, body = node.invoke("transform", {"text": "a b", "nums": [1]})
    check(st == 200 and body.get("count") == 2, f"... and transform (got {st} {body})")
    st, _, body = node.invoke("nhello", {"name": "again"})
    check(st == 200 and body == {"hello": "again"}, f"... and the node function nhello (got {st} {body})")
    node.invoke("hello", {})
    time.sleep(1.5)  # with the default --promote-after=2 hello would be promoted by now
    st, h, body = node.invoke("hello", {})
    check(h.get("X-Seedd-Seed") == "python-l1", f"promote-after=3 from the config file: the 3rd call is from L1 ({h.get('X-Seedd-Seed')})")
    seed = None
    for _ in range(100):
        st, h, body = node.invoke("hello", {})
        seed = h.get("X-Seedd-Seed")
        if seed and seed.startswith("python-l2-hello"):
            break
        time.sleep(0.1)
    check(seed and seed.startswith("python-l2-hello") and body == "v2",
          f"hello's level-2 seed is made again on demand after the restart ({seed})")
    st, _, body = node.request("PUT", "/functions/fresh", json.dumps({"runtime": "python", "handler": "main.handler",
                                                                      "files": {"main.py": HELLO}}))
    check(st == 201 and json.loads(body)["version"] > 15, f"versions keep growing across a restart ({body})")
    node.stop()
    time.sleep(0.5)
    check(not sandbox_processes(state), "nothing left after the restarted seedd exits")
    config_errors(tmp, state, port)
    warmth_checks(tmp)
    retry_checks(tmp)
    l1_reboot_checks(tmp)
    l0_fallback_checks(tmp)
    pss_checks(tmp)
    l0_checks(tmp)
    budget_checks(tmp)
    network_checks(tmp, Node, check)
    shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print(f"{len(failures)} check(s) failed", flush=True)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
