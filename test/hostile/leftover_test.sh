#!/usr/bin/env bash
# Nothing of a sandbox outlives `seedsc do`: its stubs and zygote are killed
# and reaped by seedsc itself, never left as zombies for the host's pid 1
# (issue 16: "stub memfd processes are left as zombies"). seedsc runs under
# a child subreaper (python3, prctl PR_SET_CHILD_SUBREAPER), so whatever it
# leaves behind becomes the wrapper's child; the wrapper (test/e2e/subreaper.py)
# counts what it reaps after seedsc has exited and what still lives 2 s
# later (named, then killed): it must be nothing, for a guest that exits
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
testlib_skip_unusable_kvm "$seedsc" "$platform"
seedsc="$(realpath "$seedsc")"
leftover_case() {  # NAME CMD...
  local name="$1"
  shift
  local out
  out="$(timeout 60 python3 - "$here/../e2e" "$seedsc" "--platform=$platform" "$@" <<'PY'
import subprocess, sys
sys.path.insert(0, sys.argv[1])
import subreaper
subreaper.become()
seedsc, plat, *cmd = sys.argv[2:]
subprocess.run([seedsc, plat, "do", "--"] + cmd, stdout=subprocess.DEVNULL,
               stderr=subprocess.DEVNULL)
left = subreaper.leftovers()
print(len(left), *(["(" + "; ".join(left) + ")"] if left else []))
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
