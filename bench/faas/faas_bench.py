#!/usr/bin/python3
"""FaaS invoke latency (issue 10), side by side in one run: a small Python
(or, --runtime=node, Node.js) function (JSON in, JSON out) called over HTTP
through seedd, forked per call from its level-2 seed (code loaded) and from
the level-1 seed (code sent with the request: seedd --promote-after=0),
against the same handler run per call by a native `python3 -c` (`node -e`)
process and by `seedsc do python3 -c` (`seedsc do node -e`).

Latency is from sending the request (or spawning the process) to having the
answer, closed loop: C clients each send their next call when the last one
answered. Prints p50/p99 per path and concurrency, and the ratios to native.
Needs root. Not run in CI (bench/faas/faas_bench.py --calls=20 is a smoke).

usage: faas_bench.py --seedd=BIN --seedsc=BIN [--runtime=python|node] [--calls=200] [--cold-calls=20]
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

HANDLER = ("import json, re\n"
           "def handler(event, context):\n"
           "    words = re.findall(r'[a-z]+', event['text'].lower())\n"
           "    return {'words': len(words), 'total': sum(event['nums'])}\n")
EVENT = {"text": "The quick brown fox jumps over the lazy dog", "nums": list(range(10))}
# The per-process variant: the same handler, the event on argv, the answer on stdout.
NATIVE = HANDLER + "import sys\nprint(json.dumps(handler(json.loads(sys.argv[1]), None)))\n"
NODE_HANDLER = ("exports.handler = async (event, context) => {\n"
                "  const words = event.text.toLowerCase().match(/[a-z]+/g) || [];\n"
                "  return {words: words.length, total: event.nums.reduce((a, b) => a + b, 0)};\n"
                "};\n")
NODE_NATIVE = ("const exports = {};\n" + NODE_HANDLER +
               "exports.handler(JSON.parse(process.argv[1])).then((r) => console.log(JSON.stringify(r)));\n")
# runtime -> (deploy body, the per-process argv with the event last, its label)
RUNTIMES = {
    "python": ({"runtime": "python", "handler": "main.handler", "files": {"main.py": HANDLER}},
               ["/usr/bin/python3", "-c", NATIVE], "python3 -c"),
    "node": ({"runtime": "node", "handler": "main.handler", "files": {"main.js": NODE_HANDLER}},
             ["/usr/bin/node", "-e", NODE_NATIVE], "node -e"),
}


def pct(v, p):
    s = sorted(v)
    return s[max(0, -(-len(s) * p // 100) - 1)]


def closed_loop(call, calls, conc):
    """ms per call, `calls` in all from `conc` clients."""
    lat, lock, left = [], threading.Lock(), [calls]

    def client():
        state = {}
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            t0 = time.perf_counter()
            call(state)
            ms = (time.perf_counter() - t0) * 1e3
            with lock:
                lat.append(ms)

    ts = [threading.Thread(target=client) for _ in range(conc)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return lat


class Seedd:
    def __init__(self, a, tmp, name, *flags):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.state = os.path.join(tmp, name)
        self.err = open(os.path.join(tmp, name + ".err"), "w")
        self.timings, self.seeds = [], set()
        self.proc = subprocess.Popen([a.seedd, f"--listen=127.0.0.1:{self.port}", f"--state-dir={self.state}",
                                      f"--seedsc={a.seedsc}", *flags], stderr=self.err)
        for _ in range(600):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None:
                    raise SystemExit(f"seedd exited; see {self.err.name}")
                time.sleep(0.1)
        body = json.dumps(RUNTIMES[a.runtime][0])
        st, _ = self.post("PUT", "/functions/f", body, {})
        if st != 201:
            raise SystemExit(f"deploy failed: {st}")

    def post(self, method, path, body, state):
        if "conn" not in state:
            state["conn"] = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        c = state["conn"]
        c.request(method, path, body=body)
        r = c.getresponse()
        data = r.read()
        return r.status, (r.getheader("Server-Timing"), r.getheader("X-Seedd-Seed"), data)

    def invoke(self, state):
        st, (timing, seed, data) = self.post("POST", "/invoke/f", json.dumps(EVENT), state)
        if st != 200 or json.loads(data) != {"words": 9, "total": 45}:
            raise SystemExit(f"invoke: {st} {data[:200]!r}")
        self.timings.append(timing)
        self.seeds.add(seed)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait()


def phase_medians(timings):
    """{phase: median ms} over Server-Timing headers "fork;dur=1.2, run;dur=..."."""
    per = {}
    for t in timings:
        for part in t.split(","):
            name, _, dur = part.strip().partition(";dur=")
            per.setdefault(name, []).append(float(dur))
    return {k: pct(v, 50) for k, v in per.items()}


def run_process(argv):
    def call(_state):
        out = subprocess.run(argv, capture_output=True, text=True)
        if out.returncode != 0 or json.loads(out.stdout.strip().splitlines()[-1]) != {"words": 9, "total": 45}:
            raise SystemExit(f"{argv[0]}: rc {out.returncode}: {out.stderr[-300:]}")
    return call


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seedd", required=True)
    ap.add_argument("--seedsc", required=True)
    ap.add_argument("--runtime", choices=sorted(RUNTIMES), default="python")
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--cold-calls", type=int, default=20)
    a = ap.parse_args()
    a.seedd, a.seedsc = os.path.abspath(a.seedd), os.path.abspath(a.seedsc)
    tmp = tempfile.mkdtemp(prefix="faasb.", dir="/tmp")
    rows, phases = [], {}
    try:
        for name, flags in ((f"seedd {a.runtime} L2", ()), (f"seedd {a.runtime} L1", ("--promote-after=0",))):
            node = Seedd(a, tmp, name.replace(" ", "-"), *flags)
            warm = {}
            for _ in range(5):  # promotion (L2) happens after the 2nd call
                node.invoke(warm)
                time.sleep(0.2)
            for conc in (1, 4):
                node.timings, node.seeds = [], set()
                rows.append((name, conc, closed_loop(node.invoke, a.calls, conc)))
                phases[(name, conc)] = (phase_medians(node.timings), sorted(node.seeds))
            node.stop()
        _, per_call, label = RUNTIMES[a.runtime]
        native = per_call + [json.dumps(EVENT)]
        do = [a.seedsc, f"--root={tmp}/do", "do", "--quiet", "--"] + native
        for name, argv, n in ((f"native {label}", native, a.calls), (f"seedsc do {label}", do, a.cold_calls)):
            for conc in (1, 4):
                rows.append((name, conc, closed_loop(run_process(argv), n, conc)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    base = {c: pct(l, 50) for n, c, l in rows if n.startswith("native ")}
    print(f"{'path':24} {'conc':>4} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'p50/native':>10}")
    for name, conc, lat in rows:
        print(f"{name:24} {conc:>4} {len(lat):>5} {pct(lat, 50):>8.2f} {pct(lat, 99):>8.2f} "
              f"{pct(lat, 50) / base[conc]:>10.2f}")
    print("\nseedd's Server-Timing, median ms per phase (seeds forked from):")
    for (name, conc), (med, seeds) in phases.items():
        print(f"{name:17} x{conc}: " + ", ".join(f"{k} {v:.2f}" for k, v in med.items()) + f"  ({', '.join(seeds)})")


if __name__ == "__main__":
    main()
