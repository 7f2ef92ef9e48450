#!/usr/bin/env bash
# Runs syscall_fuzz (every syscall number 0..500, odd arguments) inside seedsc
# and checks that the sandbox survives it: seedsc exits with the guest's own
# status (7), was not killed (no SIGSYS death of the sentry), and the
# sentry's seccomp filter never had to deny one of its host syscalls (it
# logs "seedsc: seccomp:" when it does).
#
#   syscall_fuzz_test.sh --fuzz=PATH --seedsc=PATH [--platform=NAME] [--range=A:B]
set -uo pipefail
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
passed=0 failed=0
check() {  # NAME CONDITION-STATUS MESSAGE
  if (($2 == 0)); then
    echo "PASS: $1"; passed=$((passed + 1))
  else
    echo "FAIL: $1: $3"; failed=$((failed + 1))
  fi
}
[[ $rc -eq 7 ]]; check "seedsc exits with the guest's status" $? "exit status $rc, want 7"
((rc < 128)); check "the sentry was not killed by a signal" $? "exit status $rc (signal $((rc - 128)))"
grep -q '^syscall_fuzz: tried' "$tmp/out"; check "the fuzzer ran to the end" $? "no summary line"
! grep -q 'seedsc: seccomp:' "$tmp/err"
check "the sentry's filter denied nothing" $? "$(grep 'seedsc: seccomp:' "$tmp/err" | sort | uniq -c | head -5)"
if ((failed)); then
  echo "--- seedsc stderr (tail) ---"; tail -20 "$tmp/err"
fi
echo "$passed passed, $failed failed"
((failed == 0))
