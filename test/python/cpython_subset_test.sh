#!/usr/bin/env bash
# CI subset of CPython's regression tests under seedsc: modules that pass
# fully in the sandbox (see RESULTS.md) and take seconds. Each runs natively
# and on the default platform; any failure, error or crash fails the test.
#   test/python/cpython_subset_test.sh --seedsc=bazel-bin/runsc/seedsc
set -euo pipefail
seedsc=""
for a in "$@"; do
  case "$a" in --seedsc=*) seedsc="${a#*=}" ;; esac
done
[[ -n "$seedsc" ]] || { echo "usage: $0 --seedsc=PATH" >&2; exit 2; }
if [[ ! -e /usr/lib/python3.11/test/test_json/__init__.py ]]; then
  echo "FAIL: CPython's tests are missing: install libpython3.11-testsuite (scripts/install-deps.sh)"
  exit 1
fi
MODULES=(test_json test_struct test_math test_zlib test_re test_unicode test_tempfile
         test_mmap test_select test_pty)
exec /usr/bin/python3 "$(dirname "$0")/run_cpython_tests.py" --seedsc="$(realpath "$seedsc")" \
  --platforms=systrap --timeout=300 "${MODULES[@]}"
