#!/usr/bin/env bash
# The host stops and continues the sandbox (kill -STOP/-CONT of its
# processes, as job control, a debugger attaching or a cgroup freezer do):
# the guest must go on as if nothing happened. A sentry thread stopped in a
# timed wait (futex, nanosleep) is sent back into it through
# restart_syscall(2), which the sentry's seccomp filter used to deny (the
# thread's wait failed with EPERM and the sentry said "denied host syscall
# 219"; abseil aborts on such a futex error).
#
#   stop_cont_test.sh --seedsc=PATH [--platform=NAME] [--rounds=N]
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test/e2e/testlib.sh
source "$here/../e2e/testlib.sh"  # check_eq, check_ok, testlib_finish (no testlib_init)
seedsc="" platform="" rounds=3
for arg in "$@"; do
  case "$arg" in
    --seedsc=*) seedsc="${arg#*=}" ;;
    --platform=*) platform="${arg#*=}" ;;
    --rounds=*) rounds="${arg#*=}" ;;
    *) echo "stop_cont_test: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done
[[ -x "$seedsc" ]] || { echo "stop_cont_test: need --seedsc" >&2; exit 2; }
testlib_skip_unusable_kvm "$seedsc" "$platform"
flags=()
[[ -n "$platform" ]] && flags+=("--platform=$platform")
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# The processes under `pid` (the sandbox's stubs, its reaper).
descendants() {
  local c
  for c in $(ps -eo pid=,ppid= | awk -v p="$1" '$2 == p { print $1 }'); do
    echo "$c"
    descendants "$c"
  done
}

for ((i = 1; i <= rounds; i++)); do
  "$seedsc" "${flags[@]}" do /bin/sh -c 'sleep 3; echo done' >"$tmp/out" 2>"$tmp/err" &
  top=$!
  sleep 1.5  # the guest sleeps; the sentry's threads wait
  procs=("$top" $(descendants "$top"))
  kill -STOP "${procs[@]}" 2>/dev/null
  sleep 0.5
  kill -CONT "${procs[@]}" 2>/dev/null
  timeout 30 tail --pid="$top" -f /dev/null
  wait "$top"
  rc=$?
  check_eq "round $i: the guest finishes after a stop and a continue (rc, output)" \
    "0 done" "$rc $(cat "$tmp/out")"
  denied="$(grep -o 'denied host syscall [0-9]*' "$tmp/err" | sort -u | tr '\n' ' ')"
  check_eq "round $i: the sentry's filter denied nothing" "" "$denied"
done
testlib_finish
