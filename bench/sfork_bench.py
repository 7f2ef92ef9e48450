#!/usr/bin/python3
"""Sandbox fork latency and memory (issue 9); run through bench/sfork_bench.sh,
whose header says what is measured and how. Needs root (bind mounts, runc,
the seeds' control sockets).

A seed is a container paused while its guest is blocked in read(0). A fork's
stdin is a pipe the bench has already written one byte into, so the read
restarts in the fork, returns at once and the guest echoes the byte on the
fork's stdout: the byte's arrival is the first thing the forked guest does.
The native floor is the same program run on the host, whose read of a byte
makes it fork() a child that writes the byte back (measured from the write
of the request byte to the arrival of the answer).
"""
import argparse
import json
import os
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "containerd"))
from pb_wire import field_bytes, fields, varint  # noqa: E402

PY_IMPORTS = "import json, re, decimal, asyncio, os\n"
PY_ECHO = PY_IMPORTS + ("while True:\n b = os.read(0, 1)\n if not b: break\n os.write(1, b)\n")
PY_FORK = PY_IMPORTS + ("while True:\n b = os.read(0, 1)\n if not b: break\n pid = os.fork()\n"
                        " if pid == 0:\n  os.write(1, b)\n  os._exit(0)\n os.waitpid(pid, 0)\n")
TIMEOUT = 20.0  # seconds for any one answer


class BenchError(Exception):
    pass


# ---- ttrpc client for seedvisor.control.v1.Control (sentry/control/control.proto)

def phases_of(resp):
    """[(phase name, ms)] of a parsed ForkResponse."""
    out = []
    for ph in resp.get(2, []):
        ph = parse_pb(ph)
        out.append((ph.get(1, [b"?"])[0].decode(), ph.get(2, [0])[0] / 1e6))
    return out


def parse_pb(buf):
    """{field number: [values]}: ints for varints, bytes for the rest."""
    out = {}
    try:
        for num, v in fields(buf):
            out.setdefault(num, []).append(v)
    except ValueError as e:  # a wire type we do not read
        raise BenchError(f"ttrpc: unexpected {e}") from e
    return out


class Control:
    """One connection to a sandbox's control socket; requests are pipelined
    (each gets its own stream id) and answers matched by stream."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.next_stream = 1
        self.buf = b""

    def send(self, method, payload):
        req = (field_bytes(1, b"seedvisor.control.v1.Control") + field_bytes(2, method.encode()) +
               field_bytes(3, payload))
        sid = self.next_stream
        self.next_stream += 2
        self.sock.sendall(struct.pack(">IIBB", len(req), sid, 1, 0) + req)
        return sid

    def recv(self):
        """(stream, payload) of the next response; raises on a status."""
        while True:
            if len(self.buf) >= 10:
                n, sid, _, _ = struct.unpack(">IIBB", self.buf[:10])
                if len(self.buf) >= 10 + n:
                    body, self.buf = self.buf[10:10 + n], self.buf[10 + n:]
                    break
            chunk = self.sock.recv(65536)
            if not chunk:
                raise BenchError("control socket closed")
            self.buf += chunk
        resp = parse_pb(body)
        if 1 in resp:
            st = parse_pb(resp[1][0])
            code = st.get(1, [0])[0]
            if code:
                msg = st.get(2, [b""])[0].decode(errors="replace")
                raise BenchError(f"Fork RPC failed: code {code}: {msg}")
        return sid, resp.get(2, [b""])[0]

    def close(self):
        self.sock.close()


def fork_request(seed, new_id, address, stdio):
    io = b"".join(field_bytes(i + 1, p.encode()) for i, p in enumerate(stdio))
    return (field_bytes(1, seed.encode()) + field_bytes(2, new_id.encode()) +
            field_bytes(3, address.encode()) + field_bytes(4, io))


# ---- statistics

def process_start_time(pid):
    """/proc/PID/stat field 22 (clock ticks after boot), as seedsc records it."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def boot_id():
    with open("/proc/sys/kernel/random/boot_id") as f:
        return f.read().strip()


def pct(v, p):
    """Nearest-rank percentile, as bench/ctr_run_bench.sh computes p90."""
    s = sorted(v)
    r = max(1, -(-len(s) * p // 100))
    return s[int(r) - 1]


def summary(v):
    return {"n": len(v), "p50": pct(v, 50), "p90": pct(v, 90), "p99": pct(v, 99),
            "min": min(v), "max": max(v)}


# ---- the bench

class Bench:
    def __init__(self, a):
        self.a = a
        self.t = tempfile.mkdtemp(prefix="sforkb.", dir="/tmp")
        self.root = os.path.join(self.t, "state")
        self.rootfs = os.path.join(self.t, "rootfs")
        self.mounted = False
        self.seeds = {}       # case -> (id, control socket, stdin write end)
        self.counter = 0
        self.stress = None
        self.devnull = os.open("/dev/null", os.O_RDWR)
        self.errlog = os.open(os.path.join(self.t, "forks.err"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        self.S = [a.seedsc, "--root", self.root, f"--platform={a.platform}"]
        # --seedsc-base: its seeds are keyed "CASE@base" (same root, own ids).
        self.S_base = ([a.seedsc_base, "--root", self.root, f"--platform={a.platform}"]
                       if getattr(a, "seedsc_base", "") else None)

    # -- setup and teardown

    def setup(self):
        os.makedirs(self.root)
        os.makedirs(self.rootfs)
        # The host's / read-only, as bench/runc_do.sh gives runc: every
        # runtime runs the same bytes (the guest binary is under self.t).
        subprocess.run(["mount", "--bind", "/", self.rootfs], check=True)
        self.mounted = True
        subprocess.run(["mount", "-o", "remount,bind,ro", self.rootfs], check=True)
        self.guest = os.path.join(self.t, "sfork_guest")
        shutil.copy(self.a.guest, self.guest)

    def cleanup(self):
        if self.stress is not None:
            self.stop_stress()
        for cid in self.seedsc_ids():
            s = self.S_base if self.S_base and "-base" in cid else self.S
            subprocess.run(s + ["delete", "--force", cid], stdout=self.devnull, stderr=self.devnull)
        for rt, args in (("runc", ["runc", "--root", os.path.join(self.t, "runc")]),
                         ("runsc", [self.a.runsc or "runsc", "--root", os.path.join(self.t, "runsc")])):
            d = os.path.join(self.t, rt)
            if os.path.isdir(d):
                for cid in os.listdir(d):
                    subprocess.run(args + ["delete", "--force", cid], stdout=self.devnull, stderr=self.devnull)
        if self.mounted:
            subprocess.run(["umount", "-l", self.rootfs])
        shutil.rmtree(self.t, ignore_errors=True)

    def seedsc_ids(self):
        out = subprocess.run(self.S + ["list", "--quiet"], capture_output=True, text=True).stdout
        return out.split()

    # -- programs and bundles

    def program(self, case, native_fork=False):
        """argv of the case's program: an echo loop, or the native fork server."""
        if case == "python":
            return ["/usr/bin/python3", "-c", PY_FORK if native_fork else PY_ECHO]
        mib = {"static": "0", "64MiB": "64", "256MiB": "256", "64MiB-shared": "64s",
               "64MiB-touch": "64t"}[case]
        return [self.guest, mib] + (["--fork"] if native_fork else [])

    def bundle(self, runtime, case):
        b = os.path.join(self.t, f"bundle-{runtime}-{case}")
        if os.path.isdir(b):
            return b
        os.makedirs(b)
        spec_cmd = {"seedsc": [self.a.seedsc, "spec"], "runc": ["runc", "spec"],
                    "runsc": [self.a.runsc or "runsc", "spec"]}[runtime]
        subprocess.run(spec_cmd, cwd=b, check=True, stdout=self.devnull)
        with open(os.path.join(b, "config.json")) as f:
            c = json.load(f)
        c["process"]["terminal"] = False
        c["process"]["args"] = self.program(case)
        c["process"]["env"] = [e for e in c["process"].get("env", []) if not e.startswith("TERM=")]
        c["process"]["cwd"] = "/tmp"
        c["root"] = {"path": self.rootfs, "readonly": True}
        if runtime == "seedsc" and self.a.spares:
            c.setdefault("annotations", {})["dev.seedvisor.fork-spares"] = str(self.a.spares)
        with open(os.path.join(b, "config.json"), "w") as f:
            json.dump(c, f, indent=1)
        return b

    def new_id(self, what):
        self.counter += 1
        return f"{what.replace('@', '-')}-{self.counter}"

    def s_of(self, key):
        """The seedsc argv of seed `key` (CASE, or CASE@base: --seedsc-base)."""
        return self.S_base if key.endswith("@base") else self.S

    # -- seeds

    def make_seed(self, key):
        case, S = key.split("@")[0], self.s_of(key)
        sid = f"seed-{key.replace('@', '-')}"
        r, w = os.pipe()
        err = open(os.path.join(self.t, f"{sid}.err"), "wb")
        out_r, out_w = os.pipe()
        p = subprocess.run(S + ["create", "--bundle", self.bundle("seedsc", case), sid],
                           stdin=r, stdout=out_w, stderr=err)
        os.close(r)
        os.close(out_w)
        if p.returncode != 0:
            raise BenchError(f"seedsc create {sid} failed: {open(err.name).read()[-500:]}")
        subprocess.run(S + ["start", sid], check=True)
        # The seed has run its imports (or touched its memory) once it echoes.
        os.write(w, b"s")
        self.wait_byte(out_r, f"seed {sid} did not start")
        os.close(out_r)  # the seed's own output is never read again
        subprocess.run(S + ["pause", sid], check=True)
        st = json.load(open(os.path.join(self.root, sid, "state.json")))
        self.seeds[key] = (sid, st["controlAddress"], w, st["sandboxPid"])
        return sid

    def drop_seed(self, case):
        sid, _, w, _ = self.seeds.pop(case)
        ctl = getattr(self, "_ctl", {}).pop(case, None)
        if ctl is not None:
            ctl.close()
        subprocess.run(self.s_of(case) + ["delete", "--force", sid], stdout=self.devnull)
        os.close(w)

    @staticmethod
    def wait_byte(fd, what):
        r, _, _ = select.select([fd], [], [], TIMEOUT)
        if not r or os.read(fd, 1) == b"":
            raise BenchError(what)
        return time.perf_counter()

    # -- one fork

    def prepare_fork(self, case):
        """A fork's stdin (holding its byte) and stdout pipes and its state dir."""
        sid = self.seeds[case][0]
        fid = self.new_id(f"f-{case}")
        d = os.path.join(self.root, fid)
        os.makedirs(d)
        shutil.copy(os.path.join(self.root, sid, "config.json"), d)
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        os.write(in_w, b"x")
        me = os.getpid()
        stdio = [f"/proc/{me}/fd/{in_r}", f"/proc/{me}/fd/{out_w}", f"/proc/{me}/fd/{self.errlog}"]
        return {"id": fid, "seed": sid, "dir": d, "fds": (in_r, in_w, out_r, out_w),
                "req": fork_request(sid, fid, os.path.join(d, "control.sock"), stdio)}

    def finish_fork(self, f, pid):
        """Records the fork where seedsc finds it (as cmd_fork does), so that
        `seedsc delete --force` can remove it."""
        sid = f["seed"]
        st = json.load(open(os.path.join(self.root, sid, "state.json")))
        st.update({"id": f["id"], "sandboxId": f["id"], "sandboxPid": pid, "cgroupsPath": "",
                   # who the pid is: delete signals only that process (issue 16)
                   "sandboxStartTime": process_start_time(pid), "sandboxBootId": boot_id(),
                   "controlAddress": os.path.join(f["dir"], "control.sock"),
                   "annotations": dict(st.get("annotations", {}), **{"dev.seedvisor.parent": sid})})
        with open(os.path.join(f["dir"], "state.json"), "w") as out:
            json.dump(st, out)

    def delete(self, fid, fds=(), S=None):
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass
        p = subprocess.run((S or self.S) + ["delete", "--force", fid], capture_output=True,
                           text=True)
        if p.returncode != 0:
            raise BenchError(f"seedsc delete --force {fid}: {p.stderr.strip()}")

    def fork_rpc(self, case, keep=False):
        """(ms to the Fork reply, ms to the fork's first byte) through the
        Fork RPC on an open connection to the seed's control socket."""
        f = self.prepare_fork(case)
        in_r, in_w, out_r, out_w = f["fds"]
        ctl = self.control(case)
        t0 = time.perf_counter()
        ctl.send("Fork", f["req"])
        t_reply = t_run = None
        pid = None
        while t_reply is None or t_run is None:
            fds = ([ctl.sock] if t_reply is None else []) + ([out_r] if t_run is None else [])
            r, _, _ = select.select(fds, [], [], TIMEOUT)
            now = time.perf_counter()
            if not r:
                raise BenchError(f"fork of {case}: no {'reply' if t_reply is None else 'byte'} "
                                 f"in {TIMEOUT:.0f} s (fork {f['id']})")
            if ctl.sock in r:
                _, payload = ctl.recv()
                resp = parse_pb(payload)
                pid = resp.get(1, [0])[0]
                # ForkResponse.phases: where the fork's time went (ns).
                self.last_phases = phases_of(resp)
                t_reply = now
                self.finish_fork(f, pid)
            if out_r in r:
                if os.read(out_r, 1) != b"x":
                    raise BenchError(f"fork of {case}: the fork's stdout closed without its byte")
                t_run = now
        os.close(in_r)
        os.close(out_w)
        res = ((t_reply - t0) * 1e3, (t_run - t0) * 1e3)
        if keep:
            return res, f["id"], pid, (in_w, out_r)
        self.delete(f["id"], (in_w, out_r), self.s_of(case))
        return res

    def second_request(self, case):
        """(ms to the fork's first byte after the Fork reply, ms to its second
        byte) for one fork: the first request in a fork pays for the pages it
        touches for the first time (on kvm: faults of the new VM's shadow
        page tables), the second only for the work."""
        (reply, run), fid, _, (in_w, out_r) = self.fork_rpc(case, keep=True)
        t0 = time.perf_counter()
        os.write(in_w, b"x")
        self.wait_byte(out_r, f"fork {fid} of {case}: no second byte")
        second = (time.perf_counter() - t0) * 1e3
        self.delete(fid, (in_w, out_r))
        return max(0.0, run - reply), second

    def control(self, case):
        if not hasattr(self, "_ctl"):
            self._ctl = {}
        if case not in self._ctl:
            self._ctl[case] = Control(self.seeds[case][1])
        return self._ctl[case]

    def fork_cmd(self, case):
        """(ms to the fork's first byte, ms until `seedsc fork` exits)."""
        sid = self.seeds[case][0]
        fid = self.new_id(f"c-{case}")
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        os.write(in_w, b"x")
        t0 = time.perf_counter()
        p = subprocess.Popen(self.s_of(case) + ["fork", sid, fid], stdin=in_r, stdout=out_w,
                             stderr=self.errlog)
        os.close(in_r)
        os.close(out_w)
        r, _, _ = select.select([out_r], [], [], TIMEOUT)
        t_run = time.perf_counter()
        if not r or os.read(out_r, 1) != b"x":
            p.kill()
            p.wait()
            raise BenchError(f"seedsc fork {sid} {fid}: no byte from the fork (rc {p.poll()}); "
                             f"see {self.t}/forks.err")
        rc = p.wait()
        t_exit = time.perf_counter()
        if rc != 0:
            raise BenchError(f"seedsc fork {sid} {fid} exited {rc}")
        self.delete(fid, (in_w, out_r))
        return (t_run - t0) * 1e3, (t_exit - t0) * 1e3

    # -- the native floor and cold starts

    def native_server(self, case):
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        p = subprocess.Popen(self.program(case, native_fork=True), stdin=in_r, stdout=out_w,
                             cwd="/tmp", env={"PATH": "/usr/bin:/bin"})
        os.close(in_r)
        os.close(out_w)
        os.write(in_w, b"x")  # imports done, memory touched
        self.wait_byte(out_r, f"native {case} did not start")
        return p, in_w, out_r

    def native_fork(self, srv):
        _, in_w, out_r = srv
        t0 = time.perf_counter()
        os.write(in_w, b"x")
        t1 = self.wait_byte(out_r, "native fork: no byte")
        return (t1 - t0) * 1e3

    @staticmethod
    def native_stop(srv):
        p, in_w, out_r = srv
        os.close(in_w)
        os.close(out_r)
        p.wait()

    def cold(self, runtime, case):
        """ms from spawning `RUNTIME run` to the guest's echo of its first byte."""
        cid = self.new_id(f"cold-{runtime}-{case}")
        if runtime == "seedsc":
            argv = self.S + ["run", "--bundle", self.bundle("seedsc", case), cid]
        elif runtime == "runc":
            argv = ["runc", "--root", os.path.join(self.t, "runc"), "run", "--bundle",
                    self.bundle("runc", case), cid]
        elif runtime == "runsc":
            argv = [self.a.runsc, "--root", os.path.join(self.t, "runsc"), "--network=none", "run",
                    "--bundle", self.bundle("runsc", case), cid]
        else:
            argv = self.program(case)
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        os.write(in_w, b"x")
        env = {"PATH": "/usr/bin:/bin"}
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdin=in_r, stdout=out_w, stderr=subprocess.PIPE, cwd="/tmp", env=env)
        os.close(in_r)
        os.close(out_w)
        r, _, _ = select.select([out_r], [], [], 60)
        t1 = time.perf_counter()
        ok = bool(r) and os.read(out_r, 1) == b"x"
        os.close(in_w)  # EOF: the guest exits
        try:
            _, err = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
        os.close(out_r)
        if not ok or p.returncode != 0:
            raise BenchError(f"{runtime} run ({case}) failed: rc {p.returncode}: {err.decode()[-400:]}")
        return (t1 - t0) * 1e3

    # -- memory

    @staticmethod
    def proc_tree(pid):
        """pid, its descendants, and the members of their process groups; and
        the group of the fork's anchor (the seed's child, which leads the
        group the fork's stubs join; its one fd is the read end of a pipe
        whose write end the fork holds: sentry/sfork)."""
        procs = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    s = open(f"/proc/{d}/stat").read()
                except OSError:
                    continue
                f = s[s.rindex(")") + 2:].split()
                procs[int(d)] = (int(f[1]), int(f[2]))  # ppid, pgrp

        def pipes(p):
            out = set()
            try:
                for fd in os.listdir(f"/proc/{p}/fd"):
                    t = os.readlink(f"/proc/{p}/fd/{fd}")
                    if t.startswith("pipe:"):
                        out.add(t)
            except OSError:
                pass
            return out
        held = pipes(pid)
        tree = {pid}
        for p, (pp, pg) in procs.items():
            if p == pg and p != pid and pipes(p) & held:
                tree.add(p)  # the anchor
        grew = True
        while grew:
            grew = False
            for p, (pp, pg) in procs.items():
                if p in tree:
                    continue
                if pp in tree or (pg in tree and pg != pid):
                    tree.add(p)
                    grew = True
        return sorted(tree)

    @staticmethod
    def memory_kib(pids):
        tot = {"uss": 0, "pss": 0, "rss": 0, "pte": 0}
        for p in pids:
            try:
                for line in open(f"/proc/{p}/smaps_rollup"):
                    k, _, v = line.partition(":")
                    if k in ("Private_Clean", "Private_Dirty"):
                        tot["uss"] += int(v.split()[0])
                    elif k == "Pss":
                        tot["pss"] += int(v.split()[0])
                    elif k == "Rss":
                        tot["rss"] += int(v.split()[0])
                for line in open(f"/proc/{p}/status"):
                    if line.startswith("VmPTE:"):
                        tot["pte"] += int(line.split()[1])
            except OSError:
                pass
        return tot

    @staticmethod
    def minor_faults(pids):
        """The minor faults of these processes (proc(5): stat's minflt), all
        their threads, since each was made."""
        n = 0
        for p in pids:
            try:
                n += int(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[7])
            except (OSError, ValueError, IndexError):
                pass
        return n

    def fork_memory(self, case, samples):
        rows = []
        for _ in range(samples):
            _, fid, pid, fds = self.fork_rpc(case, keep=True)
            time.sleep(0.1)
            pids = self.proc_tree(pid)
            m = self.memory_kib(pids)
            m["procs"] = len(pids)
            m["faults"] = self.minor_faults(p for p in pids if p != pid)
            rows.append(m)
            self.delete(fid, fds)
        seed_pids = self.proc_tree(self.seeds[case][3])
        seed = self.memory_kib(seed_pids)
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        return med, seed

    # -- many at once

    def await_spares(self, case, n):
        """Waits (up to 10 s) until the seed has n spares ready: n live
        anchors (group leaders among its children) and no fork left."""
        pid = self.seeds[case][3]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            anchors = 0
            for d in os.listdir("/proc"):
                try:
                    st = open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()
                except (OSError, ValueError, IndexError):
                    continue
                if int(st[1]) == pid and int(d) == int(st[2]) and st[0] != "Z":
                    anchors += 1
            if anchors >= n:
                return
            time.sleep(0.05)
        raise BenchError(f"seed {case}: {n} spares not ready after 10 s")

    def burst(self, case, n):
        """ms until all of n Fork RPCs sent at once (one connection each)
        have their fork's byte; each fork's own time to its byte; and
        {phase: [ms of each fork]} from the replies, with "(reply)": each
        Fork RPC's time to its reply."""
        forks = [self.prepare_fork(case) for _ in range(n)]
        ctls = [Control(self.seeds[case][1]) for _ in range(n)]
        t0 = time.perf_counter()
        for c, f in zip(ctls, forks):
            c.send("Fork", f["req"])
        pending_reply = {c.sock: (c, f) for c, f in zip(ctls, forks)}
        pending_byte = {f["fds"][2]: f for f in forks}
        times = []
        phases = {}
        while pending_reply or pending_byte:
            r, _, _ = select.select(list(pending_reply) + list(pending_byte), [], [], TIMEOUT)
            now = time.perf_counter()
            if not r:
                raise BenchError(f"{n} forks of {case} at once: {len(pending_reply)} replies and "
                                 f"{len(pending_byte)} bytes missing after {TIMEOUT:.0f} s")
            for fd in r:
                if fd in pending_reply:
                    c, f = pending_reply.pop(fd)
                    _, payload = c.recv()
                    phases.setdefault("(reply)", []).append((time.perf_counter() - t0) * 1e3)
                    resp = parse_pb(payload)
                    for name, ms in phases_of(resp):
                        phases.setdefault(name, []).append(ms)
                    self.finish_fork(f, resp.get(1, [0])[0])
                else:
                    f = pending_byte.pop(fd)
                    if os.read(fd, 1) != b"x":
                        raise BenchError(f"burst fork {f['id']}: stdout closed without its byte")
                    times.append((now - t0) * 1e3)
        wall = (time.perf_counter() - t0) * 1e3
        for c in ctls:
            c.close()
        for f in forks:
            in_r, in_w, out_r, out_w = f["fds"]
            os.close(in_r)
            os.close(out_w)
            self.delete(f["id"], (in_w, out_r))
        return wall, times, phases

    # -- load

    def start_stress(self):
        self.stress = subprocess.Popen(["stress-ng", "--cpu", "2", "--quiet"],
                                       stdout=self.devnull, stderr=self.devnull)
        time.sleep(1)

    def stop_stress(self):
        self.stress.send_signal(signal.SIGTERM)
        try:
            self.stress.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.stress.kill()
            self.stress.wait()
        self.stress = None


def fmt(s, base=None):
    r = f"{s['p50']:8.2f} {s['p90']:8.2f} {s['p99']:8.2f}"
    if base:
        r += f"   x{s['p50'] / base:6.1f}"
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seedsc", required=True)
    ap.add_argument("--seedsc-base", default="")
    ap.add_argument("--guest", required=True)
    ap.add_argument("--runsc", default="")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--cold-runs", type=int, default=30)
    ap.add_argument("--burst", type=int, default=24)
    ap.add_argument("--burst-rounds", type=int, default=1)
    ap.add_argument("--cases", default="static,python,64MiB,256MiB")
    ap.add_argument("--runtimes", default="seedsc,runc,runsc")
    ap.add_argument("--platform", default="systrap")
    ap.add_argument("--no-load", action="store_true")
    ap.add_argument("--mem-samples", type=int, default=5)
    ap.add_argument("--spares", type=int, default=0)
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    runtimes = [r for r in a.runtimes.split(",") if r]
    if "runsc" in runtimes and not a.runsc:
        print("sfork_bench: runsc not installed: its column is n/a", file=sys.stderr)
        runtimes.remove("runsc")
    if "runc" in runtimes and not shutil.which("runc"):
        print("sfork_bench: runc not installed: its column is n/a", file=sys.stderr)
        runtimes.remove("runc")
    if not a.no_load and not shutil.which("stress-ng"):
        print("sfork_bench: stress-ng not installed: no loaded column", file=sys.stderr)
        a.no_load = True

    b = Bench(a)
    results = {"load_before": open("/proc/loadavg").read().split()[:3], "cases": {}}
    try:
        b.setup()
        for case in a.cases.split(","):
            res = results["cases"].setdefault(case, {})
            print(f"sfork_bench: {case}: seed, {a.runs} forks of each kind ...", file=sys.stderr, flush=True)
            b.make_seed(case)
            base = f"{case}@base" if a.seedsc_base else None
            if base:
                b.make_seed(base)
                b.fork_rpc(base)
            srv = b.native_server(case)
            # Warm-up: page cache, the seed's first fork.
            b.fork_rpc(case)
            b.fork_cmd(case)
            b.native_fork(srv)
            native, reply, run, cmd_run, cmd_exit = [], [], [], [], []
            phases = res.setdefault("phases", {})
            def this_round():
                r1, r2 = b.fork_rpc(case)
                reply.append(r1)
                run.append(r2)
                for name, ms in b.last_phases:
                    phases.setdefault(name, []).append(ms)
                phases.setdefault("reply -> byte", []).append(max(0.0, r2 - r1))
                c1, c2 = b.fork_cmd(case)
                cmd_run.append(c1)
                cmd_exit.append(c2)

            def base_round():
                r1, r2 = b.fork_rpc(base)
                res.setdefault("base: Fork RPC reply", []).append(r1)
                res.setdefault("base: Fork RPC -> running", []).append(r2)
                for name, ms in b.last_phases:
                    res.setdefault("base phases", {}).setdefault(name, []).append(ms)
                res["base phases"].setdefault("reply -> byte", []).append(max(0.0, r2 - r1))
                # As many forks of each seed per round (its spares are made
                # again after each), in turns: the base went second and
                # forked once per round, and came out up to ~15% faster
                # than the same binary measured first (bench/RESULTS.md).
                b.fork_cmd(base)

            for i in range(a.runs):
                native.append(b.native_fork(srv))
                time.sleep(0.002)
                if base and i % 2:
                    base_round()
                    this_round()
                else:
                    this_round()
                    if base:
                        base_round()
            res["native fork"] = native
            res["Fork RPC reply"] = reply
            res["Fork RPC -> running"] = run
            res["seedsc fork -> running"] = cmd_run
            res["seedsc fork exits"] = cmd_exit
            if case.endswith("-touch"):
                first, second = [], []
                for _ in range(a.runs):
                    f1, f2 = b.second_request(case)
                    first.append(f1)
                    second.append(f2)
                res["fork: 1st request (reply->byte)"] = first
                res["fork: 2nd request"] = second
            cold = {r: [] for r in ["native"] + runtimes}
            for _ in range(a.cold_runs):
                for r in cold:
                    cold[r].append(b.cold(r, case))
            for r, v in cold.items():
                res[f"cold start: {r}"] = v
            print(f"sfork_bench: {case}: memory, {a.burst} forks at once ...", file=sys.stderr, flush=True)
            res["memory"], res["seed memory"] = b.fork_memory(case, a.mem_samples)
            if a.burst:
                res["burst wall"], res["burst each"], res["burst phases"] = [], [], {}
                for _ in range(a.burst_rounds):
                    b.await_spares(case, a.spares or 2)
                    wall, each, phases = b.burst(case, a.burst)
                    res["burst wall"].append(wall)
                    res["burst each"] += each
                    for k, v in phases.items():
                        res["burst phases"].setdefault(k, []).extend(v)
            b.native_stop(srv)
            b.drop_seed(case)
            if base:
                b.drop_seed(base)
        if not a.no_load:
            results["load_stress_before"] = open("/proc/loadavg").read().split()[:3]
            b.start_stress()
            for case in a.cases.split(","):
                print(f"sfork_bench: {case}: under stress-ng --cpu 2 ...", file=sys.stderr, flush=True)
                res = results["cases"][case]
                b.make_seed(case)
                base = f"{case}@base" if a.seedsc_base else None
                if base:
                    b.make_seed(base)
                    b.fork_rpc(base)
                srv = b.native_server(case)
                b.fork_rpc(case)
                native, run, run_base = [], [], []
                for _ in range(a.runs):
                    native.append(b.native_fork(srv))
                    time.sleep(0.002)
                    run.append(b.fork_rpc(case)[1])
                    if base:
                        run_base.append(b.fork_rpc(base)[1])
                res["loaded: native fork"] = native
                res["loaded: Fork RPC -> running"] = run
                if base:
                    res["loaded: base: Fork RPC -> running"] = run_base
                b.native_stop(srv)
                b.drop_seed(case)
                if base:
                    b.drop_seed(base)
            b.stop_stress()
        left = b.seedsc_ids()
        if left:
            raise BenchError(f"sandboxes left behind: {left}")
    except BenchError as e:
        print(f"sfork_bench: {e}", file=sys.stderr)
        return 1
    finally:
        b.cleanup()
    results["load_after"] = open("/proc/loadavg").read().split()[:3]

    print(f"\nsandbox fork latency, ms (p50 p90 p99 over {a.runs} forks; cold starts over "
          f"{a.cold_runs}); x = p50 / native fork p50")
    print(f"seedsc --platform={a.platform}; load average before {' '.join(results['load_before'])}, "
          f"after {' '.join(results['load_after'])}")
    for case, res in results["cases"].items():
        base = statistics.median(res["native fork"])
        print(f"\n[{case}]{'':28s}     p50      p90      p99   ratio")
        for k, v in res.items():
            if isinstance(v, list) and v and k not in ("burst each", "burst wall"):
                print(f"  {k:32s}{fmt(summary(v), base if k != 'native fork' else None)}")
        if res.get("phases"):
            parts = ", ".join(f"{k} {statistics.median(v):.2f}" for k, v in res["phases"].items())
            print(f"  where a Fork RPC's time goes (p50 per phase, ms): {parts}")
        if "base phases" in res:
            parts = ", ".join(f"{k} {statistics.median(v):.2f}"
                              for k, v in res["base phases"].items())
            print(f"  the base's (--seedsc-base) phases (p50, ms): {parts}")
            nb = (summary(res["Fork RPC -> running"])["p50"] /
                  summary(res["base: Fork RPC -> running"])["p50"])
            print(f"  Fork RPC -> running p50, this seedsc / the base: x{nb:.2f}")
        if "loaded: native fork" in res:
            lb = statistics.median(res["loaded: native fork"])
            s = summary(res["loaded: Fork RPC -> running"])
            print(f"  {'(loaded ratio to loaded native)':32s}{'':26s}   x{s['p50'] / lb:6.1f}")
            if "loaded: base: Fork RPC -> running" in res:
                sb = summary(res["loaded: base: Fork RPC -> running"])
                print(f"  {'(loaded: the base to loaded native)':32s}{'':26s}"
                      f"   x{sb['p50'] / lb:6.1f}")
        m, sm = res["memory"], res["seed memory"]
        print(f"  idle fork memory (median of {a.mem_samples}, {m['procs']:.0f} processes): "
              f"USS {m['uss'] / 1024:.2f} MiB, PSS {m['pss'] / 1024:.2f} MiB, RSS {m['rss'] / 1024:.1f} MiB, "
              f"page tables {m['pte'] / 1024:.2f} MiB; the seed: USS {sm['uss'] / 1024:.1f} MiB, "
              f"RSS {sm['rss'] / 1024:.1f} MiB")
        print(f"  the idle fork's host processes but its sentry (anchor, zygote, stubs): "
              f"{m['faults']:.0f} minor faults since each was made (median)")
        if "burst wall" in res:
            e, w = summary(res["burst each"]), summary(res["burst wall"])
            rounds = len(res["burst wall"])
            if rounds == 1:
                print(f"  {a.burst} forks at once ({a.spares or 'default 2'} spares): all running after "
                      f"{w['p50']:.1f} ms (each: p50 {e['p50']:.1f}, max {e['max']:.1f})")
            else:
                print(f"  {a.burst} forks at once ({a.spares or 'default 2'} spares), {rounds} rounds: all running "
                      f"after p50 {w['p50']:.1f}, p99 {w['p99']:.1f} ms; each fork to its byte p50 {e['p50']:.1f}, "
                      f"p90 {e['p90']:.1f}, p99 {e['p99']:.1f} ms ({len(res['burst each'])} forks)")
            if "(reply)" in res["burst phases"]:
                r = summary(res["burst phases"]["(reply)"])
                print(f"  their Fork RPCs' replies: p50 {r['p50']:.1f}, p90 {r['p90']:.1f}, p99 {r['p99']:.1f} ms")
            parts = ", ".join(f"{k} {statistics.median(v):.2f}/{sum(v) / rounds:.1f}"
                              for k, v in res["burst phases"].items() if k != "(reply)")
            print(f"  their phases (ms, p50/sum over the {a.burst}{', per round' if rounds > 1 else ''}): {parts}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
