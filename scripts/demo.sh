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

run_demo() {
  echo "== Seedvisor demo: a user-space kernel running unmodified Linux programs"
  echo "   (platform: ${PLATFORM:-default}; binary: $SEEDSC)"

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
