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
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test/e2e/testlib.sh
source "$here/../e2e/testlib.sh"  # check_eq, check_ok, testlib_finish (no testlib_init)
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
testlib_skip_unusable_kvm "$seedsc" "$platform"
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
  run="seedsc do forkbomb in a pids cgroup with pids.max $max"
  check_eq "$p seedsc exits 0 (the guest's status)" "exit status 0" "exit status $rc" \
    "$run (stderr: $(head -c 600 "$tmp/err"))"
  grep -q '^forked [0-9]* errno Resource temporarily unavailable' "$tmp/out"
  check_ok "$p fork fails with EAGAIN at the limit" $(($? == 0)) "$run" \
    "forked N errno Resource temporarily unavailable" "$(grep '^forked' "$tmp/out")"
  grep -q '^threads [0-9]* errno Resource temporarily unavailable' "$tmp/out"
  check_ok "$p pthread_create fails with EAGAIN at the limit" $(($? == 0)) "$run" \
    "threads N errno Resource temporarily unavailable" "$(grep '^threads' "$tmp/out")"
  grep -q '^done$' "$tmp/out"
  check_ok "$p a fork works again once the tasks are gone" $(($? == 0)) "$run" "a 'done' line" \
    "$(grep -c '^done$' "$tmp/out") 'done' lines"
  crash="$(grep -E 'terminate called|system_error|Aborted|core dumped' "$tmp/err" | head -3)"
  check_ok "$p the sentry did not crash" $((${#crash} == 0)) "$run" "no crash in stderr" \
    "${crash:-none} (stderr: $(head -c 600 "$tmp/err"))"
  cleanup
done
testlib_finish
