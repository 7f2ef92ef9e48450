#!/usr/bin/env bash
# Python 3 startup wall time natively, under seedsc (one column per platform),
# under runc (bench/runc_do.sh: the host's / read-only, as `do` does) and under
# Debian's gVisor (`runsc --network=none do`), in one run with the
# rounds interleaved so machine drift hits every runtime alike. Prints the
# median (and min..max) per workload and runtime, and the ratio to native.
#
#   bash bench/python_startup.sh [--rounds N] [--seedsc PATH] [--runsc PATH]
#                                [--platforms LIST] [--smoke]
#
# Workloads: `python3 -c pass` and `python3 -c 'import json, re, decimal'`
# (Debian's /usr/bin/python3). Defaults: 10 rounds, seedsc from $SEEDSC or
# bazel-bin/runsc/seedsc, platforms "systrap,ptrace", runsc from PATH (its
# default platform). A missing runtime shows as n/a; one that fails is an
# error (exit 1). --smoke: one round, to check that everything runs.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="${BUILD_WORKSPACE_DIRECTORY:-$(cd "$here/.." && pwd)}"
# shellcheck source=bench/bench_lib.sh
source "$here/bench_lib.sh"
rounds=10
seedsc="${SEEDSC:-}"
runsc="${RUNSC:-$(command -v runsc || true)}"
platforms=systrap,ptrace
while (($#)); do
  case "$1" in
    --smoke) rounds=1 ;;
    --rounds) rounds="$2"; shift ;;
    --seedsc) seedsc="$2"; shift ;;
    --runsc) runsc="$2"; shift ;;
    --platforms) platforms="$2"; shift ;;
    --rounds=*) rounds="${1#*=}" ;;
    --seedsc=*) seedsc="${1#*=}" ;;
    --runsc=*) runsc="${1#*=}" ;;
    --platforms=*) platforms="${1#*=}" ;;
    -h|--help) sed -n '2,14p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "python_startup: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
default_seedsc_and_runc_do "$repo"

exec /usr/bin/python3 - "$rounds" "$seedsc" "$runsc" "$platforms" "$runc_do" <<'PY'
import statistics, subprocess, sys, time

rounds = int(sys.argv[1])
seedsc, runsc, platforms, runc_do = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
py = "/usr/bin/python3"
workloads = [("-c pass", [py, "-c", "pass"]),
             ("-c 'import json, re, decimal'", [py, "-c", "import json, re, decimal"])]
runtimes = [("native", [])]
for p in filter(None, platforms.split(",")):
    runtimes.append((f"seedsc-{p}", [seedsc, f"--platform={p}", "do"] if seedsc else None))
runtimes.append(("runc", ["bash", runc_do] if runc_do else None))
runtimes.append(("runsc", [runsc, "--network=none", "do"] if runsc else None))

times = {(w, r): [] for w, _ in workloads for r, _ in runtimes}
failed = False
for _ in range(rounds):
    for wname, wcmd in workloads:
        for rname, prefix in runtimes:
            if prefix is None:
                continue
            t0 = time.perf_counter()
            p = subprocess.run(prefix + wcmd, cwd="/tmp", stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            dt = time.perf_counter() - t0
            if p.returncode != 0:
                print(f"python_startup: {rname} failed on {wname}: rc={p.returncode} "
                      f"{p.stderr.decode()[-300:]}", file=sys.stderr)
                failed = True
                continue
            times[(wname, rname)].append(dt * 1000)

print(f"python3 startup, wall ms: median (min..max) of {rounds} rounds; ratio to native")
names = [r for r, _ in runtimes]
print(f"{'workload':32s}" + "".join(f"{n:>26s}" for n in names))
for wname, _ in workloads:
    base = statistics.median(times[(wname, "native")]) if times[(wname, "native")] else None
    row = f"{wname:32s}"
    for n in names:
        v = times[(wname, n)]
        if not v:
            row += f"{'n/a':>26s}"
            continue
        m = statistics.median(v)
        ratio = f" x{m / base:.1f}" if base else ""
        row += f"{f'{m:.0f} ({min(v):.0f}..{max(v):.0f}){ratio}':>26s}"
    print(row)
sys.exit(1 if failed else 0)
PY
