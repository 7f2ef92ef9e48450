#!/usr/bin/env bash
# Builds and runs every test: bash scripts/test.sh [extra bazel args]
# Ends with the line "N passed, N failed"; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export HOME="${HOME:-/root}"

bash scripts/install-deps.sh || exit 1

# Bazel 4 never trims --disk_cache (see .bazelrc): start over past 20 GiB.
cache="$HOME/.cache/seedvisor-bazel-disk"
if [[ -d "$cache" ]] && (($(du -sk "$cache" | cut -f1) > 20 * 1024 * 1024)); then
  echo "test.sh: disk cache over 20 GiB, clearing $cache"
  rm -rf "$cache"
fi

log="$(mktemp -t seedvisor-test.XXXXXX)"
trap 'rm -f "$log"' EXIT

bazel test --config=ci "$@" //... 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}

# Bazel's summary has one line per test target:
#   //pkg:name   (cached) PASSED in 0.1s   |   FAILED in ..., TIMEOUT, NO STATUS,
#   FAILED TO BUILD, INCOMPLETE, FLAKY (passed on a retry) ...
summary="$(grep -E '^//[^ ]+ +.*(PASSED|FAILED|TIMEOUT|NO STATUS|INCOMPLETE|FLAKY|SKIPPED)' "$log")"
passed="$(grep -cE ' (PASSED|FLAKY)' <<<"$summary")"
failed="$(grep -cvE ' (PASSED|FLAKY|SKIPPED)' <<<"$summary")"
[[ -z "$summary" ]] && passed=0 failed=0

if ((rc != 0 && failed == 0)); then
  # E.g. a target that did not build or analyze before any test ran.
  echo "test.sh: bazel exited with $rc without a failing test; counting it as one failure"
  failed=1
fi
if [[ "${CI:-}" == "true" ]]; then bazel shutdown >/dev/null 2>&1 || true; fi

echo
echo "${passed} passed, ${failed} failed"
((rc == 0 && failed == 0))
