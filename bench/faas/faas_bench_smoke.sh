#!/bin/bash
# CI smoke of the FaaS benchmarks (bench/faas/faas_bench.py --smoke: a few
# calls per path at x1/x4, a 20 s sustained run and the three plots, in a
# temporary directory; bench/faas/seedd_l2_phases.py --smoke: 5 L2 calls
# with their phases). Numbers are meaningless. Args: SEEDD SEEDSC.
set -eu
here=$(dirname "$0")
dir="$here"
[[ -f "$dir/faas_bench.py" ]] || dir="$here/faas"  # under bazel: bench/faas_bench_smoke_test
timeout 600 /usr/bin/python3 "$dir/faas_bench.py" --smoke --seedd="$1" --seedsc="$2"
exec timeout 300 /usr/bin/python3 "$dir/seedd_l2_phases.py" --smoke --seedd="$1" --seedsc="$2"
