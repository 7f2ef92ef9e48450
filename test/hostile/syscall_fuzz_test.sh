#!/usr/bin/env bash
# Runs syscall_fuzz (every syscall number 0..500, odd arguments) inside seedsc
# and checks that the sandbox survives it: seedsc exits with the guest's own
# status (7), was not killed (no SIGSYS death of the sentry), and the
# sentry's seccomp filter never had to deny one of its host syscalls (it
# logs "seedsc: seccomp:" when it does).
#
#   syscall_fuzz_test.sh --fuzz=PATH --seedsc=PATH [--platform=NAME] [--range=A:B]
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test/e2e/testlib.sh
source "$here/../e2e/testlib.sh"  # check_eq, check_ok, testlib_finish (no testlib_init)
fuzz="" seedsc="" platform="" range="0:500"
for arg in "$@"; do
  case "$arg" in
    --fuzz=*) fuzz="${arg#*=}" ;;
    --seedsc=*) seedsc="${arg#*=}" ;;
    --platform=*) platform="${arg#*=}" ;;
    --range=*) range="${arg#*=}" ;;
    *) echo "syscall_fuzz_test: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done
[[ -x "$fuzz" && -x "$seedsc" ]] || { echo "syscall_fuzz_test: need --fuzz and --seedsc" >&2; exit 2; }
testlib_skip_unusable_kvm "$seedsc" "$platform"
fuzz="$(realpath "$fuzz")"
seedsc="$(realpath "$seedsc")"
flags=()
[[ -n "$platform" ]] && flags+=("--platform=$platform")
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

cd "$tmp" || exit 2
timeout 600 "$seedsc" "${flags[@]}" do "$fuzz" "${range%%:*}" "${range##*:}" >"$tmp/out" 2>"$tmp/err"
rc=$?
cat "$tmp/out"
run="seedsc do syscall_fuzz $range"
check_eq "seedsc exits with the guest's status" "exit status 7" "exit status $rc" "$run"
check_ok "the sentry was not killed by a signal" $((rc < 128)) "$run" "exit status < 128" \
  "exit status $rc$( ((rc >= 128)) && echo " (signal $((rc - 128)))")"
grep -q '^syscall_fuzz: tried' "$tmp/out"
check_ok "the fuzzer ran to the end" $(($? == 0)) "$run" "its summary line" \
  "$(grep '^syscall_fuzz: tried' "$tmp/out" || echo "no summary line")"
denied="$(grep 'seedsc: seccomp:' "$tmp/err" | sort | uniq -c | head -5)"
check_ok "the sentry's filter denied nothing" $((${#denied} == 0)) "$run" \
  "no 'seedsc: seccomp:' line" "${denied:-none}"
if ((TESTLIB_FAILED)); then
  echo "--- seedsc stderr (tail) ---"; tail -20 "$tmp/err"
fi
testlib_finish
