#!/usr/bin/env bash
# Runs stdlib_smoke.py natively (which proves the script right), then under
# seedsc on each platform: every module of issue 3's list must print "ok".
#   test/python/stdlib_smoke_test.sh --seedsc=bazel-bin/runsc/seedsc
set -euo pipefail
seedsc=""
platforms="systrap ptrace"
for a in "$@"; do
  case "$a" in
    --seedsc=*) seedsc="${a#*=}" ;;
    --platforms=*) platforms="${a#*=}" ;;
  esac
done
[[ -n "$seedsc" ]] || { echo "usage: $0 --seedsc=PATH" >&2; exit 2; }
seedsc="$(realpath "$seedsc")"  # the runs below start in /tmp
script="$(realpath "$(dirname "$0")/stdlib_smoke.py")"
py=/usr/bin/python3  # Debian's; a pyenv shim may shadow python3 on PATH
status=0
run() {
  local name="$1"; shift
  local out
  out="$(cd /tmp && timeout 300 "$@" "$py" "$script" 2>&1)" || true
  if [[ "$(tail -n1 <<<"$out")" == "ALL OK" ]]; then
    echo "PASS $name"
  else
    echo "FAIL $name"; echo "$out" | tail -n 20; status=1
  fi
}
run native env
for p in $platforms; do
  run "seedsc-$p" "$seedsc" "--platform=$p" do
done
exit $status
