#!/usr/bin/env bash
# Builds seedsc (bazel-bin/runsc/seedsc) and shows it running a sandbox.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh

SEEDSC=bazel-bin/runsc/seedsc

# Each step prints the command it runs, then what the sandbox printed.
step() {
  echo
  printf '$'
  printf ' %q' "$@"
  echo
  "$@"
}

# Sandbox fork: a Python seed (modules imported, blocked reading its stdin)
# paused, then forked into new sandboxes that each answer one request on
# their own stdin/stdout, with their own random bytes.
sfork_demo() {
  local t root seedin i start
  t="$(mktemp -d /tmp/seedsc-demo.XXXXXX)"
  root="$t/state"
  mkdir -p "$t/bundle"
  (cd "$t/bundle" && "$OLDPWD/$SEEDSC" spec)
  python3 - "$t/bundle/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["terminal"] = False
c["process"]["args"] = ["/usr/bin/python3", "-c", """
import json, re, decimal, asyncio, os, sys
request = sys.stdin.readline().strip()
gen = open('/proc/seedvisor/fork_generation').read().strip()
print(f'  pid {os.getpid()} answers {request!r}: random {os.urandom(4).hex()}, fork generation {gen}', flush=True)
"""]
c["root"] = {"path": "/", "readonly": True}
c["mounts"] = [m for m in c["mounts"] if m["destination"] in ("/proc", "/dev", "/dev/pts", "/dev/shm", "/sys")]
json.dump(c, open(sys.argv[1], "w"), indent=1)
PY
  mkfifo "$t/seed.in"
  exec {seedin}<>"$t/seed.in"
  echo "-- sandbox fork: a Python seed that imported json, re, decimal, asyncio and waits"
  echo "   for a request; every request gets a sandbox forked from it (seedsc fork):"
  "$SEEDSC" --root "$root" create --bundle "$t/bundle" seed <"$t/seed.in"
  "$SEEDSC" --root "$root" start seed
  sleep 1  # the imports
  "$SEEDSC" --root "$root" pause seed
  for i in 1 2 3; do
    start=$(date +%s%N)
    # The instance's stdout is the file (a fresh one: it writes through
    # its own open of it).
    echo "request-$i" | "$SEEDSC" --root "$root" fork seed "instance-$i" >"$t/out-$i"
    echo "  seedsc fork seed instance-$i: $((($(date +%s%N) - start) / 1000000)) ms (the seedsc process included)"
    "$SEEDSC" --root "$root" wait "instance-$i" >/dev/null
    cat "$t/out-$i"
    "$SEEDSC" --root "$root" delete "instance-$i"
  done
  "$SEEDSC" --root "$root" delete --force seed
  exec {seedin}>&-
  rm -rf "$t"
}

run_demo() {
  echo "== Seedvisor demo: a user-space kernel running unmodified Linux programs"
  echo "   (platform: ${PLATFORM:-default}; binary: $SEEDSC)"

  sfork_demo

  echo
  echo "-- seedsc do: a command in a sandbox over the host's root"
  step "$SEEDSC" do /bin/busybox sh -c 'for i in 1 2 3; do echo $i; done | wc -l'

  echo
  echo "-- writes go to the sandbox's overlay, never to the host:"
  step "$SEEDSC" do /bin/busybox sh -c 'echo written-inside > /etc/hostname; cat /etc/hostname'
  echo "host's /etc/hostname afterwards: $(cat /etc/hostname)"

  echo
  echo "-- the guest sees its own pid namespace and kernel:"
  step "$SEEDSC" do /bin/busybox sh -c 'echo "pid $$"; ls /proc | grep -E "^[0-9]+$" | tr "\n" " "; echo; uname -sr'

  echo
  echo "-- dynamic glibc programs and Python run unchanged:"
  step "$SEEDSC" do /usr/bin/python3 -c 'import hashlib, json, sqlite3; db = sqlite3.connect(":memory:"); print(json.dumps({"sha256": hashlib.sha256(b"seed").hexdigest()[:16], "sqlite": db.execute("select 6*7").fetchone()[0]}))'

  echo
  echo "-- a guest killed by SIGSEGV: the wait status comes back as 128+11, the sentry survives:"
  set +e
  "$SEEDSC" do /bin/busybox sh -c 'kill -SEGV $$'
  echo "exit status: $?"
  set -e

  echo
  echo "-- --strace shows every guest syscall (first lines):"
  "$SEEDSC" --strace do /bin/busybox echo hi 2>&1 | grep ' X ' | head -5

  echo
  echo "-- syscall cost, side by side with Debian's gVisor (one short round; bench/ has the real runs):"
  bazel build //bench:syscall_bench >/dev/null 2>&1
  bash bench/run_syscall_bench.sh --rounds 1 --seedsc "$SEEDSC" 2>&1 | sed -n '/^syscall_bench/,$p'
}

if ! bazel query //runsc:seedsc >/dev/null 2>&1; then
  echo "demo: //runsc:seedsc does not exist yet; nothing to demo."
  exit 0
fi
bazel build //runsc:seedsc
run_demo
