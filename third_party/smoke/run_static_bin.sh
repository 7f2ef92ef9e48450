#!/usr/bin/env bash
# Runs the static smoke binary outside the cc_test wrapper and checks that it
# has no program interpreter (i.e. it really is fully static).
set -euo pipefail
bin="$1"
if LC_ALL=C readelf -l "$bin" | grep -q 'INTERP'; then
  echo "FAIL: $bin has a dynamic loader" >&2
  exit 1
fi
"$bin"
