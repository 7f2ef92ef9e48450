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
set -uo pipefail
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
fails=0
check() {  # NAME CMD...
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
  if [[ "$out" == "0" ]]; then
    echo "PASS: $name: nothing left behind"
  else
    echo "FAIL: $name: left behind: $out host process(es)"
    fails=$((fails + 1))
  fi
}
check "a guest that exits" /bin/true
check "a guest killed by a signal" /bin/sh -c 'kill -9 $$'
check "threads and a child process" /usr/bin/python3 -c '
import os, threading, time
threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
if os.fork() == 0:
    time.sleep(30)
os._exit(0)'
[[ $fails == 0 ]] && echo "leftover_test: all passed" || echo "leftover_test: $fails failed"
exit $((fails > 0))
