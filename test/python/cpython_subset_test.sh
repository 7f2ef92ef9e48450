#!/usr/bin/env bash
# CI subset of CPython's regression tests under seedsc: modules that pass
# fully in the sandbox (see RESULTS.md) and take seconds. Each runs natively
# and on the default platform (test_sqlite3 on ptrace too); any failure,
# error or crash fails the test.
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
run=(/usr/bin/python3 "$(dirname "$0")/run_cpython_tests.py" --seedsc="$(realpath "$seedsc")"
     --platforms=systrap --timeout=300)
status=0
"${run[@]}" "${MODULES[@]}" || status=1
# test_sqlite3 is not in Debian's testsuite; a pyenv CPython 3.11 ships it
# (its _sqlite3 links Debian's libsqlite3 too). Both platforms: issue 17.
sqlite_python=""
for p in /root/.pyenv/versions/3.11*/bin/python3; do
  dir="$(dirname "$(dirname "$p")")/lib/python3.11/test/test_sqlite3"
  [[ -x "$p" && -d "$dir" ]] && sqlite_python="$p"
done
if [[ -n "$sqlite_python" ]]; then
  "${run[@]/--platforms=systrap/--platforms=systrap,ptrace}" --python="$sqlite_python" test_sqlite3 ||
    status=1
else
  echo "SKIP test_sqlite3: no CPython 3.11 with its own test_sqlite3 (Debian's testsuite lacks it)"
fi
exit $status
