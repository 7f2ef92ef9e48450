#!/usr/bin/python3
"""FaaS invoke latency (issue 10), side by side in one run.

Two Python functions and one Node.js function (--runtime picks): "small"
(regex over a sentence, sum of a list: JSON in, JSON out), "numpy" (imports
numpy at init, Debian's python3-numpy; its handler sums an arange) and
"nsmall" (node's "small"). Each is
called over HTTP keep-alive through seedd, forked per call
  - from its level-2 seed (code loaded and init run; replicas allowed),
  - from its level-2 seed with --seed-replicas=1 (x8, x24: what replicas buy),
  - from the level-1 seed (code sent with the request: --promote-after=0),
  - from the level-0 seed (--max-level=0: the runtime starts in each fork),
against the same handler run per call as
  - a native `python3 -c` process (`node -e`),
  - `seedsc do` (a cold Seedvisor sandbox per call),
  - runc (bench/runc_do.sh: the host's / read-only) and
  - Debian's gVisor (`runsc --network=none do`).
Latency is from sending the request (or spawning the process) to having the
answer, closed loop: C clients each send their next call when the last one
answered. Prints p50/p99 per path and concurrency with the ratios to native,
seedd's Server-Timing medians per phase, each seed's memory (USS/PSS), and a
sustained run (seedd L2 at x4 for --sustain seconds: throughput per bucket).
With --loaded=yes (the default when stress-ng is installed) every row runs
twice, the second time beside `stress-ng --cpu 2` (the "+cpu" columns).
Writes faas_cdf.png, faas_phases.png and faas_sustained.png (matplotlib,
Debian's python3-matplotlib) to --out. Needs root.

usage: faas_bench.py --seedd=BIN --seedsc=BIN [--calls=500] [--native-calls=200]
         [--cold-calls=40] [--conc=1,4,8,24] [--sustain=1800] [--out=DIR]
         [--runtime=python|node|python,node] [--loaded=yes|no] [--only=small,numpy,nsmall] [--smoke]
--smoke: a few calls per row, x1/x4, a 20 s sustained run, plots to a
temporary directory: checks the bench works (bench:faas_bench_smoke_test).
"""
import argparse
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from seedd_proc import SeeddProcess

HERE = os.path.dirname(os.path.abspath(__file__))
LOADED = " +cpu"  # a row run beside stress-ng --cpu 2

SMALL = ("import json, re\n"
         "def handler(event, context):\n"
         "    words = re.findall(r'[a-z]+', event['text'].lower())\n"
         "    return {'words': len(words), 'total': sum(event['nums'])}\n")
SMALL_EVENT = {"text": "The quick brown fox jumps over the lazy dog", "nums": list(range(10))}
SMALL_ANSWER = {"words": 9, "total": 45}
NUMPY = ("import json\n"
         "import numpy as np\n"
         "def handler(event, context):\n"
         "    a = np.arange(event['n'], dtype=np.int64)\n"
         "    return {'sum': int(a.sum()), 'mean': float(a.mean())}\n")
NUMPY_EVENT = {"n": 1000}
NUMPY_ANSWER = {"sum": 499500, "mean": 499.5}
NODE_SMALL = ("exports.handler = async (event, context) => {\n"
              "  const words = event.text.toLowerCase().match(/[a-z]+/g) || [];\n"
              "  return {words: words.length, total: event.nums.reduce((a, b) => a + b, 0)};\n"
              "};\n")
NODE_NATIVE = ("const exports = {};\n" + NODE_SMALL +
               "exports.handler(JSON.parse(process.argv[1])).then((r) => console.log(JSON.stringify(r)));\n")


def per_process(src):
    """The same handler as a one-line program (base64: runc_do.sh's JSON quoting
    takes no newlines): the event on argv, the answer on stdout."""
    prog = src + "import sys\nprint(json.dumps(handler(json.loads(sys.argv[1]), None)))\n"
    return f"import base64; exec(base64.b64decode('{base64.b64encode(prog.encode()).decode()}'))"


def node_per_process(src):
    return f"eval(Buffer.from('{base64.b64encode(src.encode()).decode()}', 'base64').toString())"


# name -> (deploy body, per-process argv with the event last, event, answer);
# `runtimes`: "python", "node" or both ("python,node": node's is "nsmall").
def functions(runtimes):
    out = {}
    if "python" in runtimes.split(","):
        out["small"] = ({"runtime": "python", "handler": "main.handler", "files": {"main.py": SMALL}},
                        ["/usr/bin/python3", "-c", per_process(SMALL)], SMALL_EVENT, SMALL_ANSWER)
        out["numpy"] = ({"runtime": "python", "handler": "main.handler", "files": {"main.py": NUMPY}},
                        ["/usr/bin/python3", "-c", per_process(NUMPY)], NUMPY_EVENT, NUMPY_ANSWER)
    if "node" in runtimes.split(","):
        out["nsmall" if out else "small"] = (
            {"runtime": "node", "handler": "main.handler", "files": {"main.js": NODE_SMALL}},
            ["/usr/bin/node", "-e", node_per_process(NODE_NATIVE)], SMALL_EVENT, SMALL_ANSWER)
    return out


class Loaded:
    """`stress-ng --cpu 2` while the block runs (the loaded column), or nothing."""

    def __init__(self, on):
        self.on, self.proc = on, None

    def __enter__(self):
        if self.on:
            self.proc = subprocess.Popen(["stress-ng", "--cpu", "2", "--quiet"], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
            time.sleep(1)
        return self

    def __exit__(self, *exc):
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def pct(v, p):
    s = sorted(v)
    return s[max(0, -(-len(s) * p // 100) - 1)] if s else float("nan")


def load():
    return open("/proc/loadavg").read().split()[0]


def closed_loop(call, calls, conc):
    """ms per call, `calls` in all from `conc` clients."""
    lat, lock, left, errors = [], threading.Lock(), [calls], []

    def client():
        state = {}
        while True:
            with lock:
                if left[0] == 0 or errors:
                    return
                left[0] -= 1
            t0 = time.perf_counter()
            try:
                call(state)
            except Exception as e:  # noqa: BLE001  reported after the row
                errors.append(e)
                return
            ms = (time.perf_counter() - t0) * 1e3
            with lock:
                lat.append(ms)

    ts = [threading.Thread(target=client) for _ in range(conc)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise SystemExit(f"a call failed: {errors[0]}")
    return lat


class Seedd(SeeddProcess):
    def __init__(self, a, tmp, name, fns, *flags):
        self.timings, self.seeds = [], set()
        super().__init__(a.seedd, a.seedsc, os.path.join(tmp, name), flags,
                         err_path=os.path.join(tmp, name + ".err"))
        try:
            for fname, (body, _, _, _) in fns.items():
                st, _ = self.post("PUT", f"/functions/{fname}", json.dumps(body), {})
                if st != 201:
                    raise SystemExit(f"deploy {fname} failed: {st}")
        except BaseException:
            self.stop()  # the caller never gets this seedd to stop
            raise

    def post(self, method, path, body, state):
        """On the caller's own kept-alive connection (state["conn"])."""
        if "conn" not in state:
            state["conn"] = self.connection()
        st, r, data = self.request_with_headers(method, path, body, state["conn"])
        return st, (r.getheader("Server-Timing"), r.getheader("X-Seedd-Seed"), data)

    def invoker(self, fname, event, answer):
        body = json.dumps(event)

        def invoke(state):
            st, (timing, seed, data) = self.post("POST", f"/invoke/{fname}", body, state)
            if st != 200 or json.loads(data) != answer:
                raise RuntimeError(f"invoke {fname}: {st} {data[:200]!r}")
            self.timings.append(timing)
            self.seeds.add(seed)
        return invoke

    def get(self, path):
        return json.loads(self.post("GET", path, None, {})[1][2])



def explain_failure(tmp):
    """A failed run says what its seeds said: the sandbox fork watchdog's lines (a Fork stuck in
    one step for 5 s, and who held the seed's fork lock) and the end of each seedd's stderr."""
    for name in sorted(os.listdir(tmp)):
        path = os.path.join(tmp, name)
        log = os.path.join(path, "sandboxes.log")
        if os.path.isfile(log):
            lines = [l for l in open(log, errors="replace") if "watchdog" in l or "sandbox fork" in l]
            print(f"{log}: {len(lines)} line(s) about forks" + (", the last:" if lines else ""))
            sys.stdout.writelines(lines[-20:])
        if name.endswith(".err") and os.path.isfile(path):
            print(f"{path}, its end:")
            sys.stdout.writelines(open(path, errors="replace").readlines()[-10:])
    sys.stdout.flush()


def phase_medians(timings):
    """{phase: median ms} over Server-Timing headers "fork;dur=1.2, run;dur=..."."""
    per = {}
    for t in timings:
        for part in (t or "").split(","):
            name, _, dur = part.strip().partition(";dur=")
            if dur:
                per.setdefault(name, []).append(float(dur))
    return {k: pct(v, 50) for k, v in per.items()}


def run_process(argv, answer):
    def call(_state):
        out = subprocess.run(argv, capture_output=True, text=True)
        lines = out.stdout.strip().splitlines()
        if out.returncode != 0 or not lines or json.loads(lines[-1]) != answer:
            raise RuntimeError(f"{argv[0]}: rc {out.returncode}: {out.stderr[-300:]}")
    return call


def plots(out, rows, phases, sustained):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("no matplotlib (apt-get install python3-matplotlib): no plots")
        return []
    os.makedirs(out, exist_ok=True)
    written = []

    def save(fig, name):
        fig.tight_layout()
        written.append(os.path.join(out, name))
        fig.savefig(written[-1], dpi=90)
        plt.close(fig)
    fnames = sorted({r[0] for r in rows})
    concs = sorted({r[2] for r in rows})
    show = [c for c in (1, 24) if c in concs] or concs[:1]
    fig, axes = plt.subplots(len(fnames), len(show), figsize=(6 * len(show), 4 * len(fnames)), squeeze=False)
    for i, fn in enumerate(fnames):
        for j, conc in enumerate(show):
            ax = axes[i][j]
            for f, path, c, lat in rows:
                if f == fn and c == conc and lat:
                    s = sorted(lat)
                    ax.plot(s, [(k + 1) / len(s) for k in range(len(s))], label=f"{path} (p50 {pct(s, 50):.0f})")
            ax.set_xscale("log")
            ax.set_xlabel("latency per call, ms (log)")
            ax.set_ylabel("fraction of calls")
            ax.set_title(f"{fn}: x{conc} concurrent clients")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
    save(fig, "faas_cdf.png")

    keys = [k for k in phases if phases[k][0]]
    if keys:
        fig, ax = plt.subplots(figsize=(max(6, 0.55 * len(keys)), 4.5))
        bottom = [0.0] * len(keys)
        for ph, color in (("queue", "tab:gray"), ("fork", "tab:blue"), ("start", "tab:purple"),
                          ("run", "tab:orange"), ("destroy", "tab:green")):
            vals = [phases[k][0].get(ph, 0) for k in keys]
            ax.bar(range(len(keys)), vals, bottom=bottom, label=ph, color=color)
            bottom = [b + v for b, v in zip(bottom, vals)]
        tot = [phases[k][0].get("total", 0) for k in keys]
        ax.plot(range(len(keys)), tot, "k_", markersize=14, label="total (seedd)")
        ax.set_xticks(range(len(keys)))
        ax.set_xticklabels([f"{f} {p.replace('seedd ', '')} x{c}" for f, p, c in keys], rotation=60, ha="right",
                           fontsize=7)
        ax.set_ylabel("median ms per call")
        ax.set_title("where a call's time goes inside seedd (Server-Timing medians)")
        ax.legend(fontsize=8)
        save(fig, "faas_phases.png")

    if sustained:
        t, rate, p50 = zip(*sustained)
        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.plot(t, rate, marker=".", label="calls/s")
        ax.set_ylim(0, max(rate) * 1.2)
        ax.set_xlabel("seconds into the run")
        ax.set_ylabel("calls per second")
        ax2 = ax.twinx()
        ax2.plot(t, p50, color="tab:red", alpha=0.6, label="p50 ms")
        ax2.set_ylabel("p50 ms", color="tab:red")
        ax.set_title("sustained: seedd L2, small function, x4 closed loop")
        save(fig, "faas_sustained.png")
    return written


def sustain(node, fname, event, answer, seconds, conc=4):
    """(t, calls/s, p50 ms) per bucket of a closed loop run for `seconds`."""
    bucket = max(1.0, seconds / 30)
    done, lock, stop = [], threading.Lock(), time.time() + seconds
    invoke = node.invoker(fname, event, answer)
    t_start = time.time()

    def client():
        state = {}
        while time.time() < stop:
            t0 = time.perf_counter()
            invoke(state)
            with lock:
                done.append((time.time() - t_start, (time.perf_counter() - t0) * 1e3))

    ts = [threading.Thread(target=client) for _ in range(conc)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out = []
    n = int(seconds // bucket)
    for b in range(n):
        lat = [ms for at, ms in done if b * bucket <= at < (b + 1) * bucket]
        out.append(((b + 0.5) * bucket, len(lat) / bucket, pct(lat, 50)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seedd", required=True)
    ap.add_argument("--seedsc", required=True)
    ap.add_argument("--runsc", default=shutil.which("runsc") or "")
    ap.add_argument("--runtime", choices=("python", "node", "python,node"), default="python,node")
    ap.add_argument("--loaded", choices=("yes", "no"), default="yes" if shutil.which("stress-ng") else "no",
                    help="also run every row beside stress-ng --cpu 2 (the +cpu column)")
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--native-calls", type=int, default=200)
    ap.add_argument("--cold-calls", type=int, default=40)
    ap.add_argument("--conc", default="1,4,8,24")
    ap.add_argument("--sustain", type=float, default=1800)
    ap.add_argument("--only", default="")
    ap.add_argument("--paths", default="", help="only these rows, e.g. 'seedd L2,native,runc' (prefixes)")
    ap.add_argument("--out", default=HERE)
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    if a.smoke:
        a.calls, a.native_calls, a.cold_calls, a.conc, a.sustain = 12, 6, 3, "1,4", 20
        a.loaded, a.runtime = "no", "python"
    a.seedd, a.seedsc = os.path.abspath(a.seedd), os.path.abspath(a.seedsc)
    concs = [int(c) for c in a.conc.split(",")]
    variants = [False, True] if a.loaded == "yes" else [False]
    fns = functions(a.runtime)
    if a.only:
        fns = {k: v for k, v in fns.items() if k in a.only.split(",")}
    tmp = tempfile.mkdtemp(prefix="faasb.", dir="/tmp")
    nodes = []  # every seedd started, stopped at the end whatever happens
    if a.smoke:
        a.out = os.path.join(tmp, "plots")
    rows, phases, memory, sustained = [], {}, [], []
    print(f"start {time.strftime('%Y-%m-%d %H:%M:%S')} load {load()}", flush=True)
    runc_do = os.path.join(HERE, "..", "runc_do.sh")
    try:
        seedd_paths = [("seedd L2", (), concs),
                       ("seedd L2 1 copy", ("--seed-replicas=1",), [c for c in concs if c >= 8]),
                       ("seedd L1", ("--promote-after=0",), concs),
                       ("seedd L0", ("--max-level=0",), concs)]
        wanted = [p.strip() for p in a.paths.split(",") if p.strip()]
        keep = lambda path: not wanted or any(path == w or path.startswith(w + " ") for w in wanted)
        for path, flags, cs in seedd_paths:
            if not cs or not keep(path):
                continue
            node = Seedd(a, tmp, path.replace(" ", "-"), fns, *flags)
            nodes.append(node)
            for fname, (_, _, event, answer) in fns.items():
                invoke = node.invoker(fname, event, answer)
                warm = {}
                for _ in range(4):  # promotion (L2) happens after the 2nd call
                    invoke(warm)
                    time.sleep(0.3)
                for conc, loaded in [(c, l) for c in cs for l in variants]:
                    node.timings, node.seeds = [], set()
                    # The numpy function from L1 imports numpy in every call: a per-process
                    # cost, measured with as many calls as the per-process paths.
                    # From L0 every call starts the runtime: a per-process path too.
                    n = a.native_calls if ((path == "seedd L1" and fname == "numpy") or path == "seedd L0") else a.calls
                    with Loaded(loaded):
                        lat = closed_loop(invoke, n, conc)
                        at_load = load()
                    p = path + (LOADED if loaded else "")
                    rows.append((fname, p, conc, lat))
                    phases[(fname, p, conc)] = (phase_medians(node.timings), sorted(node.seeds))
                    print(f"  {fname:6} {p:22} x{conc:<3} p50 {pct(lat, 50):8.2f} p99 {pct(lat, 99):8.2f} "
                          f"load {at_load}", flush=True)
                    time.sleep(1)  # idle replicas stay (--replica-idle 30s): the next row starts with them
            if path == "seedd L2":
                for s in node.get("/seeds"):
                    memory.append((s["id"], s.get("level"), s["uss_bytes"], s["pss_bytes"]))
                if a.sustain > 0 and "small" in fns:
                    _, _, event, answer = fns["small"]
                    print(f"  sustained {a.sustain:.0f} s ...", flush=True)
                    sustained = sustain(node, "small", event, answer, a.sustain)
            node.stop()
        for fname, (body, argv, event, answer) in fns.items():
            native = argv + [json.dumps(event)]
            label = "native " + ("node -e" if body["runtime"] == "node" else "python3 -c")
            per_call = [(label, native, a.native_calls),
                        ("seedsc do (cold)", [a.seedsc, f"--root={tmp}/do", "do", "--quiet", "--"] + native,
                         a.cold_calls),
                        ("runc", ["bash", runc_do] + native, a.cold_calls)]
            if a.runsc:
                per_call.append(("runsc (gVisor)", [a.runsc, "--network=none", f"--root={tmp}/runsc", "do"] + native,
                                 a.cold_calls))
            for path, argv2, n in [c for c in per_call if keep(c[0])]:
                for conc, loaded in [(c, l) for c in concs for l in variants]:
                    with Loaded(loaded):
                        lat = closed_loop(run_process(argv2, answer), max(n, conc), conc)
                        at_load = load()
                    p = path + (LOADED if loaded else "")
                    rows.append((fname, p, conc, lat))
                    print(f"  {fname:6} {p:22} x{conc:<3} p50 {pct(lat, 50):8.2f} p99 {pct(lat, 99):8.2f} "
                          f"load {at_load}", flush=True)
        written = plots(a.out, rows, phases, sustained)
    finally:
        # A failed call or deploy leaves its seedd running: stop it (it
        # destroys its sandboxes) before its state directory goes.
        for n in nodes:
            n.stop()
        print(f"end {time.strftime('%Y-%m-%d %H:%M:%S')} load {load()}", flush=True)
        if sys.exc_info()[0] is not None:
            explain_failure(tmp)
        if not a.smoke or sys.exc_info()[0] is not None:  # a smoke run checks its plots first
            shutil.rmtree(tmp, ignore_errors=True)
    native_p50 = {(f, c, p.endswith(LOADED)): pct(l, 50) for f, p, c, l in rows if p.startswith("native")}
    by_key = {(f, p, c): l for f, p, c, l in rows}
    print(f"\n| function | path | conc | n | p50 ms | p99 ms | p99/p50 | p50/native | p50{LOADED} | "
          f"p99{LOADED} | p50/native{LOADED} |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for fname, path, conc, lat in rows:
        if path.endswith(LOADED):
            continue
        base = native_p50.get((fname, conc, False))
        ratio = f"{pct(lat, 50) / base:.2f}" if base else "-"
        busy = by_key.get((fname, path + LOADED, conc))
        base_busy = native_p50.get((fname, conc, True))
        busy_cols = (f"{pct(busy, 50):.1f} | {pct(busy, 99):.1f} | "
                     + (f"{pct(busy, 50) / base_busy:.2f}" if base_busy else "-")) if busy else "- | - | -"
        print(f"| {fname} | {path} | {conc} | {len(lat)} | {pct(lat, 50):.1f} | {pct(lat, 99):.1f} | "
              f"{pct(lat, 99) / pct(lat, 50):.1f} | {ratio} | {busy_cols} |")
    print("\nseedd's Server-Timing, median ms per phase (seeds forked from):")
    for (fname, path, conc), (med, seeds) in phases.items():
        print(f"{fname:6} {path:16} x{conc:<3}: " + ", ".join(f"{k} {v:.2f}" for k, v in med.items())
              + f"  ({len(seeds)} copies: {', '.join(seeds[:6])})")
    print("\nseed memory (from GET /seeds of the L2 node):")
    for sid, level, uss, pss in memory:
        print(f"  {sid:28} level {level}  USS {uss / 2**20:7.1f} MiB  PSS {pss / 2**20:7.1f} MiB")
    if sustained:
        rates = [r for _, r, _ in sustained]
        print(f"\nsustained {a.sustain:.0f} s at x4: calls/s first bucket {rates[0]:.1f}, last {rates[-1]:.1f} "
              f"(last/first {rates[-1] / rates[0]:.2f}), min {min(rates):.1f}, max {max(rates):.1f}; "
              f"p50 first {sustained[0][2]:.1f} ms, last {sustained[-1][2]:.1f} ms")
    for p in written:
        print(f"wrote {p}")
    if a.smoke:
        ok = (all(len(l) >= 1 for _, _, _, l in rows) and sustained and len(written) == 3
              and all(os.path.getsize(p) > 1000 for p in written))
        shutil.rmtree(tmp, ignore_errors=True)
        print("smoke: ok" if ok else "smoke: FAILED")
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
