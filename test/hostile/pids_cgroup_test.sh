#!/usr/bin/env bash
# The host refuses tasks: seedsc runs inside a v1 pids cgroup whose pids.max
# is small, and the guest (forkbomb.c) forks and starts threads until clone
# fails. The sentry must turn the host's refusal into the guest's EAGAIN and
# survive (it used to abort on std::system_error, rc 134): the guest sees
# EAGAIN for both, releases everything, forks once more and exits 0.
#
# It runs once per pids.max in --max (default 40,41): each guest task is
# two host tasks, and the two parities make the host refuse a different one
# of them (the stub thread, or the sentry thread that would run it).
#
#   pids_cgroup_test.sh --forkbomb=PATH --seedsc=PATH [--platform=NAME] [--max=N,...]
set -uo pipefail
bomb="" seedsc="" platform="" maxes=40,41
for arg in "$@"; do
  case "$arg" in
    --forkbomb=*) bomb="${arg#*=}" ;;
    --seedsc=*) seedsc="${arg#*=}" ;;
    --platform=*) platform="${arg#*=}" ;;
    --max=*) maxes="${arg#*=}" ;;
    *) echo "pids_cgroup_test: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done
[[ -x "$bomb" && -x "$seedsc" ]] || { echo "pids_cgroup_test: need --forkbomb and --seedsc" >&2; exit 2; }
bomb="$(realpath "$bomb")"
seedsc="$(realpath "$seedsc")"
root=/sys/fs/cgroup/pids
if [[ ! -w "$root" ]]; then
  echo "pids_cgroup_test: SKIP: no writable v1 pids hierarchy at $root"
  exit 0
fi
tmp="$(mktemp -d)"
cg=""
cleanup() {
  # Whatever is left in the cgroup (nothing, when all went well) goes.
  if [[ -n "$cg" && -f "$cg/cgroup.procs" ]]; then
    while read -r p; do kill -9 "$p" 2>/dev/null; done <"$cg/cgroup.procs"
    sleep 0.2
    rmdir "$cg" 2>/dev/null
  fi
}
trap 'cleanup; rm -rf "$tmp"' EXIT
flags=()
[[ -n "$platform" ]] && flags+=("--platform=$platform")
passed=0 failed=0
check() {  # NAME CONDITION-STATUS MESSAGE
  if (($2 == 0)); then
    echo "PASS: $1"; passed=$((passed + 1))
  else
    echo "FAIL: $1: $3"; failed=$((failed + 1))
  fi
}
IFS=, read -ra max_list <<<"$maxes"
for max in "${max_list[@]}"; do
  cg="$root/seedsc-pids-test-$$-$max"
  mkdir "$cg" || exit 2
  echo "$max" >"$cg/pids.max" || exit 2
  # The subshell joins the cgroup, then becomes seedsc: every host task of
  # the sandbox (sentry threads, zygote, stubs) counts against pids.max.
  timeout 300 bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' _ "$cg" \
    "$seedsc" "${flags[@]}" do "$bomb" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  echo "--- pids.max $max: guest output"
  cat "$tmp/out"
  p="pids.max=$max:"
  [[ $rc -eq 0 ]]; check "$p seedsc exits 0 (the guest's status)" $? "exit status $rc; stderr: $(head -c 600 "$tmp/err")"
  grep -q '^forked [0-9]* errno Resource temporarily unavailable' "$tmp/out"
  check "$p fork fails with EAGAIN at the limit" $? "$(grep '^forked' "$tmp/out")"
  grep -q '^threads [0-9]* errno Resource temporarily unavailable' "$tmp/out"
  check "$p pthread_create fails with EAGAIN at the limit" $? "$(grep '^threads' "$tmp/out")"
  grep -q '^done$' "$tmp/out"
  check "$p a fork works again once the tasks are gone" $? "no 'done' line"
  ! grep -Eq 'terminate called|system_error|Aborted|core dumped' "$tmp/err"
  check "$p the sentry did not crash" $? "$(head -c 600 "$tmp/err")"
  cleanup
done
echo "$passed passed, $failed failed"
((failed == 0))
