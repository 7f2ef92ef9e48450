#!/bin/bash
# CI: veth_attach_bench runs (tiny counts; the numbers mean nothing) and
# prints its three modes. Root (it makes network namespaces).
set -uo pipefail
out="$("${1:?usage: veth_attach_bench_smoke.sh BENCH}" --iters 20 --create-iters 2 --pool 2 2>&1)"
rc=$?
echo "$out"
((rc == 0)) || { echo "FAIL: exit $rc"; exit 1; }
for mode in stack pooled create; do
  grep -q "^$mode .*p50" <<<"$out" || { echo "FAIL: no $mode line"; exit 1; }
done
echo PASS
