#!/usr/bin/python3
"""A sustained run against seedd (issue 10): not CI, 30 minutes by default.

Starts seedd (its default seeds: python and node level 1, the level-0 seed),
deploys a small python and a small node function, and calls them at a
constant rate (open loop: call i is due at start + i/rate, whatever happened
to the calls before it; its latency counts from when it was due, so a stall
shows). Every --interval seconds it prints p50/p99 and errors of that
interval; at the start and the end, seedd's RSS, fds and threads, and per
seed its USS/PSS, host processes and its sentry's fds, and the sandboxes and
host processes under seedd's state dir: none of them may grow.

usage: seedd_soak.py --seedd=BIN --seedsc=BIN [--minutes=30] [--rate=20]
                     [--interval=60] [--workers=32]
Exits 1 when a call failed or something grew past its tolerance (seedd RSS
+25 %, any fd, a sandbox or a host process more than at the start).
"""
import argparse
import http.client
import json
import os
import queue
import subprocess
import tempfile
import threading
import time

from seedd_proc import SeeddProcess

PY = ("import json, re\n"
      "def handler(event, context):\n"
      "    words = re.findall(r'[a-z]+', event['text'].lower())\n"
      "    return {'words': len(words), 'n': event['n']}\n")
JS = ("exports.handler = async (event, context) => {\n"
      "  const words = event.text.toLowerCase().match(/[a-z]+/g) || [];\n"
      "  return {words: words.length, n: event.n};\n"
      "};\n")
TEXT = "The quick brown fox jumps over the lazy dog"


def load():
    return open("/proc/loadavg").read().split()[0]


def pct(v, p):
    s = sorted(v)
    return s[max(0, -(-len(s) * p // 100) - 1)] if s else float("nan")


def status_kb(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


class Seedd(SeeddProcess):
    def __init__(self, a, state):
        super().__init__(a.seedd, a.seedsc, state, a.flags)

    def processes(self):
        """{pid: "ppid args"} of every host process in the session of a process
        whose command line names seedd's state dir (sentries, stubs, zygotes)."""
        pid = str(self.proc.pid)
        rows = [l.split(None, 3) for l in subprocess.run(["ps", "-eo", "pid=,ppid=,sid=,args="],
                                                         capture_output=True, text=True).stdout.splitlines()]
        rows = [r for r in rows if len(r) == 4]
        sids = {r[2] for r in rows if self.state in r[3] and "seedd_soak" not in r[3] and r[0] != pid}
        return {r[0]: f"ppid {r[1]} {r[3][:160]}" for r in rows if r[2] in sids and r[0] != pid}

    def snapshot(self):
        """What must not grow: seedd's own resources, the seeds', the sandboxes'."""
        pid = self.proc.pid
        seeds = json.loads(self.request("GET", "/seeds")[1])
        procs = self.processes()
        return {
            "seedd_rss_kb": status_kb(pid, "VmRSS"),
            "seedd_fds": fds(pid),
            "seedd_threads": status_kb(pid, "Threads"),
            "sandboxes": len(os.listdir(os.path.join(self.state, "seedsc"))),
            "sandbox_processes": len(procs),
            "seeds": {s["id"]: {"uss_mib": round(s["uss_bytes"] / 2**20, 1), "pss_mib": round(s["pss_bytes"] / 2**20, 1),
                                "host_processes": s["host_processes"], "fds": fds(s["pid"])} for s in seeds},
        }, procs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seedd", required=True)
    ap.add_argument("--seedsc", required=True)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--rate", type=float, default=20, help="calls per second, over both functions")
    ap.add_argument("--interval", type=float, default=60)
    ap.add_argument("--workers", type=int, default=32)
    ap.add_argument("--flag", dest="flags", action="append", default=["--cgroup-pool=8", "--replica-idle=2s"],
                    help="one more seedd flag (repeatable)")
    a = ap.parse_args()
    a.seedd, a.seedsc = os.path.abspath(a.seedd), os.path.abspath(a.seedsc)
    tmp = tempfile.mkdtemp(prefix="seedd-soak.", dir="/tmp")
    node = Seedd(a, os.path.join(tmp, "state"))
    fns = {"soakpy": {"runtime": "python", "handler": "main.handler", "files": {"main.py": PY}},
           "soakjs": {"runtime": "node", "handler": "main.handler", "files": {"main.js": JS}}}
    for name, body in list(fns.items()):
        st, data = node.request("PUT", f"/functions/{name}", json.dumps(body))
        if st != 201:
            print(f"deploy {name}: {st} {data[:200]!r} (node functions need node)")
            if name == "soakpy":
                node.stop()
                return 1
            del fns[name]
            break
    names = list(fns)
    for name in names:  # promote each to its level-2 seed before the clock starts
        for _ in range(4):
            node.request("POST", f"/invoke/{name}", json.dumps({"text": TEXT, "n": 0}))
            time.sleep(0.3)
    time.sleep(1)
    start, start_procs = node.snapshot()
    print(f"start {time.strftime('%Y-%m-%d %H:%M:%S')} load {load()} rate {a.rate}/s for {a.minutes} min, "
          f"functions {names}\n  {json.dumps(start)}", flush=True)

    due = queue.Queue(maxsize=a.workers * 4)
    results, lock = [], threading.Lock()  # (interval index, function, ms, ok)
    error_lines = []  # the first few errors, as they were
    reconnects = [0]  # stale keep-alive connections (idle past seedd's 60 s) opened again
    t_start = time.perf_counter()
    end = t_start + a.minutes * 60

    def worker():
        conn = {}
        while True:
            item = due.get()
            if item is None:
                return
            i, at = item
            name = names[i % len(names)]
            ok, why = False, ""
            body = json.dumps({"text": TEXT, "n": i})
            try:
                try:
                    c = conn.get(name)
                    if c is None:
                        c = conn[name] = http.client.HTTPConnection("127.0.0.1", node.port, timeout=60)
                    st, data = node.request("POST", f"/invoke/{name}", body, c)
                except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                    # seedd closes a keep-alive connection idle for 60 s (http_server.cc):
                    # a worker that sat idle that long reconnects, as HTTP clients do.
                    c.close()
                    c = conn[name] = http.client.HTTPConnection("127.0.0.1", node.port, timeout=60)
                    with lock:
                        reconnects[0] += 1
                    st, data = node.request("POST", f"/invoke/{name}", body, c)
                ok = st == 200 and json.loads(data) == {"words": 9, "n": i}
                why = "" if ok else f"{name}: {st} {data[:160]!r}"
            except Exception as e:  # noqa: BLE001  counted as an error
                conn.pop(name, None)
                why = f"{name}: {type(e).__name__}: {e}"
            if why and len(error_lines) < 10:
                error_lines.append(why)
            ms = (time.perf_counter() - at) * 1e3
            with lock:
                results.append((int((at - t_start) // a.interval), name, ms, ok))

    workers = [threading.Thread(target=worker) for _ in range(a.workers)]
    for w in workers:
        w.start()
    i, reported = 0, 0
    while True:
        at = t_start + i / a.rate
        if at >= end:
            break
        now = time.perf_counter()
        if at > now:
            time.sleep(at - now)
        due.put((i, at))  # blocks when every worker is behind: the delay counts in latency
        i += 1
        k = int((time.perf_counter() - t_start) // a.interval)
        while reported < k - 1:  # an interval is reported once its late calls are in
            with lock:
                rows = [r for r in results if r[0] == reported]
            lat = [r[2] for r in rows]
            errs = sum(1 for r in rows if not r[3])
            print(f"  {(reported + 1) * a.interval:6.0f} s  calls {len(rows):5}  p50 {pct(lat, 50):7.1f} ms  "
                  f"p99 {pct(lat, 99):7.1f} ms  errors {errs}  load {load()}", flush=True)
            reported += 1
    for _ in workers:
        due.put(None)
    for w in workers:
        w.join()
    # Idle replicas (--replica-idle=2s) are destroyed and pool cgroups refilled
    # off the request path; a destroyed sandbox's Shutdown waits for its host
    # processes (up to 10 s). Give that 30 s, then compare.
    settle = time.perf_counter() + 30
    while True:
        final, final_procs = node.snapshot()
        if len(final_procs) <= len(start_procs) or time.perf_counter() > settle:
            break
        time.sleep(1)
    rc = node.stop()
    lat = [r[2] for r in results]
    errs = sum(1 for r in results if not r[3])
    print(f"end {time.strftime('%Y-%m-%d %H:%M:%S')} load {load()}\n  {json.dumps(final)}")
    print(f"\n{len(results)} calls in {a.minutes} min ({len(results) / (a.minutes * 60):.1f}/s), errors {errs}; "
          f"p50 {pct(lat, 50):.1f} ms, p99 {pct(lat, 99):.1f} ms; seedd exit {rc}; "
          f"idle keep-alive connections reopened {reconnects[0]}")
    by = {}
    for r in results:
        by.setdefault(r[0], []).append(r[2])
    keys = sorted(by)
    if len(keys) >= 2:
        print(f"first interval p50/p99 {pct(by[keys[0]], 50):.1f}/{pct(by[keys[0]], 99):.1f} ms, "
              f"last {pct(by[keys[-1]], 50):.1f}/{pct(by[keys[-1]], 99):.1f} ms")
    grew = []
    if final["seedd_rss_kb"] > start["seedd_rss_kb"] * 1.25:
        grew.append(f"seedd RSS {start['seedd_rss_kb']} -> {final['seedd_rss_kb']} kB")
    for key in ("seedd_fds", "sandboxes", "sandbox_processes"):
        if final[key] > start[key]:
            grew.append(f"{key} {start[key]} -> {final[key]}")
    for sid, s in final["seeds"].items():
        if sid in start["seeds"] and s["fds"] > start["seeds"][sid]["fds"]:
            grew.append(f"seed {sid} fds {start['seeds'][sid]['fds']} -> {s['fds']}")
    print("grew: " + ("; ".join(grew) if grew else "nothing"))
    if len(final_procs) > len(start_procs):  # spares are remade: new pids alone are no growth
        for p in sorted(set(final_procs) - set(start_procs), key=int):
            print(f"new host process: {p} {final_procs[p]}")
    for line in error_lines:
        print(f"error: {line}")
    subprocess.run(["rm", "-rf", tmp])
    return 1 if errs or grew or rc != 0 else 0


if __name__ == "__main__":
    raise SystemExit(main())
