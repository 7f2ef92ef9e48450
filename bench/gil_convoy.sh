#!/usr/bin/env bash
# The GIL convoy: N Python threads contending for the GIL, each making
# syscalls (ITERS x os.urandom(64), os.getpid() and a SHA-256 update), natively,
# under seedsc (one column per platform), runc (bench/runc_do.sh) and Debian's
# gVisor (`runsc --network=none do`), rounds interleaved. Prints per runtime
# the median (min..max) of the threads' time (start to last join, measured in
# the guest) and the ratio to native. platform/kvm/README.md, "vCPUs".
#
#   bash bench/gil_convoy.sh [--threads N] [--iters N] [--rounds N]
#                            [--platforms LIST] [--max-vcpus N] [--timeout S]
#                            [--seedsc PATH] [--seedsc-base PATH] [--runsc PATH]
#                            [--smoke]
#
# Defaults: 64 threads, 200 iterations, 3 rounds, platforms "kvm,systrap",
# seedsc from $SEEDSC or bazel-bin/runsc/seedsc, runsc from PATH, a run's
# timeout 300 s (a run that times out shows as ">S" and the exit is 1).
# --max-vcpus N: the kvm columns run with SEEDSC_KVM_MAX_VCPUS=N (threads
# share N vCPUs). --seedsc-base PATH: base-<platform> columns of another
# seedsc build (the one compared with), interleaved with the others.
# --smoke: 1 round of 4 threads x 20, to check that it runs.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="${BUILD_WORKSPACE_DIRECTORY:-$(cd "$here/.." && pwd)}"
# shellcheck source=bench/bench_lib.sh
source "$here/bench_lib.sh"
threads=64 iters=200 rounds=3 timeout=300 max_vcpus="" seedsc_base=""
seedsc="${SEEDSC:-}"
runsc="${RUNSC:-$(command -v runsc || true)}"
platforms=kvm,systrap
while (($#)); do
  case "$1" in
    --smoke) threads=4 iters=20 rounds=1 ;;
    --threads=*) threads="${1#*=}" ;;
    --iters=*) iters="${1#*=}" ;;
    --rounds=*) rounds="${1#*=}" ;;
    --timeout=*) timeout="${1#*=}" ;;
    --max-vcpus=*) max_vcpus="${1#*=}" ;;
    --platforms=*) platforms="${1#*=}" ;;
    --seedsc=*) seedsc="${1#*=}" ;;
    --runsc=*) runsc="${1#*=}" ;;
    --seedsc-base=*) seedsc_base="$(realpath "${1#*=}")" ;;
    --threads|--iters|--rounds|--timeout|--max-vcpus|--platforms|--seedsc|--seedsc-base|--runsc)
      (($# >= 2)) || { echo "gil_convoy: $1 needs a value" >&2; exit 2; }
      set -- "$1=$2" "${@:3}"
      continue ;;
    -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "gil_convoy: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
default_seedsc_and_runc_do "$repo"

exec /usr/bin/python3 - "$threads" "$iters" "$rounds" "$timeout" "$max_vcpus" "$platforms" \
  "$seedsc" "$runsc" "$runc_do" "$seedsc_base" <<'PY'
import atexit, os, signal, statistics, subprocess, sys, tempfile

threads, iters, rounds, timeout = (int(a) for a in sys.argv[1:5])
max_vcpus, platforms, seedsc, runsc, runc_do, seedsc_base = sys.argv[5:11]
# The guest: prints the threads' wall time, start of the first to the last
# join. A file under /tmp (every runtime sees the host's /; runc_do.sh
# cannot quote a multi-line -c).
guest = """
import hashlib, os, sys, threading, time
threads, iters = int(sys.argv[1]), int(sys.argv[2])
def work():
    h = hashlib.sha256()
    for _ in range(iters):
        h.update(os.urandom(64))
        os.getpid()
ts = [threading.Thread(target=work) for _ in range(threads)]
t0 = time.perf_counter()
for t in ts: t.start()
for t in ts: t.join()
print("threads_ms", (time.perf_counter() - t0) * 1000)
"""
fd, guest_path = tempfile.mkstemp(prefix="gil_convoy_", suffix=".py", dir="/tmp")
with os.fdopen(fd, "w") as f:
    f.write(guest)
os.chmod(guest_path, 0o644)
atexit.register(os.unlink, guest_path)
cmd = ["/usr/bin/python3", guest_path, str(threads), str(iters)]
env_kvm = dict(os.environ)
if max_vcpus:
    env_kvm["SEEDSC_KVM_MAX_VCPUS"] = max_vcpus
runtimes = [("native", [], None)]
for label, build in (("seedsc", seedsc), ("base", seedsc_base)):
    for p in filter(None, platforms.split(",")):
        if label == "base" and not build:
            continue
        usable = p != "kvm" or os.access("/dev/kvm", os.R_OK | os.W_OK)  # else n/a
        runtimes.append((f"{label}-{p}", [build, f"--platform={p}", "do"] if build and usable
                         else None, env_kvm if p == "kvm" else None))
runtimes.append(("runc", ["bash", runc_do] if runc_do else None, None))
runtimes.append(("runsc", [runsc, "--network=none", "do"] if runsc else None, None))

# How long a run that timed out has to end on SIGTERM before SIGKILL.
TERM_GRACE_S = 10

def killpg(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass

def run(argv, env):
    """(exit status, stdout, stderr) of one run, or None if it took more
    than `timeout` s: then its whole process group goes (it runs in a
    session of its own), the guest's threads with `seedsc do` (or runc's
    or runsc's), so that none is left loading the rounds after it. SIGTERM
    first, so that a runtime removes its sandbox (its state, its cgroup),
    then SIGKILL for what is left TERM_GRACE_S later."""
    p = subprocess.Popen(argv, cwd="/tmp", stdin=subprocess.DEVNULL, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        killpg(p.pid, signal.SIGTERM)
        try:
            p.communicate(timeout=TERM_GRACE_S)
        except subprocess.TimeoutExpired:
            pass
        # What ignored SIGTERM, or outlived the runtime (its group still
        # bears the runtime's pid while one of them lives).
        killpg(p.pid, signal.SIGKILL)
        try:
            p.communicate(timeout=10)
        except subprocess.TimeoutExpired:  # something outside the group holds its output
            p.kill()
        p.wait()
        return None
    return p.returncode, out, err

times = {r: [] for r, _, _ in runtimes}
timed_out = {r: 0 for r, _, _ in runtimes}
failed = False
for _ in range(rounds):
    for name, prefix, env in runtimes:
        if prefix is None:
            continue
        result = run(prefix + cmd, env)
        if result is None:
            print(f"gil_convoy: {name} took more than {timeout} s", file=sys.stderr)
            timed_out[name] += 1
            failed = True
            continue
        rc, out, err = result
        ms = [float(l.split()[1]) for l in out.decode().splitlines()
              if l.startswith("threads_ms ")]
        if rc != 0 or not ms:
            print(f"gil_convoy: {name} failed: rc={rc} {err.decode()[-300:]}", file=sys.stderr)
            failed = True
            continue
        times[name].append(ms[0])

vc = f", SEEDSC_KVM_MAX_VCPUS={max_vcpus}" if max_vcpus else ""
print(f"{threads} Python threads x {iters} (urandom, getpid, sha256){vc}: threads' wall ms, "
      f"median (min..max) of {rounds} rounds; ratio to native; load {os.getloadavg()[0]:.1f}")
base = statistics.median(times["native"]) if times["native"] else None
for name, prefix, _ in runtimes:
    v = times[name]
    if prefix is None:
        cell = "n/a"
    elif not v:
        cell = f">{timeout} s" if timed_out[name] else "failed"
    else:
        m = statistics.median(v)
        cell = f"{m:.0f} ({min(v):.0f}..{max(v):.0f})" + (f" x{m / base:.1f}" if base else "")
        if timed_out[name]:
            cell += f", {timed_out[name]} more took >{timeout} s"
    print(f"  {name:16s} {cell}")
sys.exit(1 if failed else 0)
PY
