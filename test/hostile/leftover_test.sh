#!/usr/bin/env bash
# Nothing of a sandbox outlives `seedsc do`: its stubs and zygote are killed
# and reaped by seedsc itself, never left as zombies for the host's pid 1
# (issue 16: "stub memfd processes are left as zombies"). seedsc runs under
# a child subreaper (python3, prctl PR_SET_CHILD_SUBREAPER), so whatever it
# leaves behind becomes the wrapper's child; the wrapper counts what it
# reaps after seedsc has exited: it must be nothing, for a guest that exits
# at once, one that was killed, and one with threads and a child process.
#
#   leftover_test.sh --seedsc=PATH [--platform=NAME]
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test/e2e/testlib.sh
source "$here/../e2e/testlib.sh"  # check_eq, check_ok, testlib_finish (no testlib_init)
seedsc="" platform=systrap
for arg in "$@"; do
  case "$arg" in
    --seedsc=*) seedsc="${arg#*=}" ;;
    --platform=*) platform="${arg#*=}" ;;
    *) echo "leftover_test: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done
[[ -x "$seedsc" ]] || { echo "leftover_test: need --seedsc" >&2; exit 2; }
seedsc="$(realpath "$seedsc")"
leftover_case() {  # NAME CMD...
  local name="$1"
  shift
  local out
  out="$(timeout 60 python3 - "$seedsc" "--platform=$platform" "$@" <<'PY'
import ctypes, os, subprocess, sys, time
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
    print("prctl failed"); sys.exit(0)
seedsc, plat, *cmd = sys.argv[1:]
subprocess.run([seedsc, plat, "do", "--"] + cmd, stdout=subprocess.DEVNULL,
               stderr=subprocess.DEVNULL)
left = []
deadline = time.time() + 2
while time.time() < deadline:
    try:
        pid, _ = os.waitpid(-1, os.WNOHANG | 0x40000000)  # __WALL
    except ChildProcessError:
        break
    if pid == 0:
        time.sleep(0.05)
        continue
    left.append(pid)
print(len(left))
PY
)"
  check_eq "$name: nothing left behind" 0 "$out" \
    "host processes left after seedsc --platform=$platform do -- $*"
}
leftover_case "a guest that exits" /bin/true
leftover_case "a guest killed by a signal" /bin/sh -c 'kill -9 $$'
leftover_case "threads and a child process" /usr/bin/python3 -c '
import os, threading, time
threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
if os.fork() == 0:
    time.sleep(30)
os._exit(0)'
testlib_finish
