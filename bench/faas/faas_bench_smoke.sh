#!/bin/bash
# CI smoke of the FaaS benchmark (bench/faas/faas_bench.py --smoke): a few
# calls per path at x1/x4, a 20 s sustained run and the three plots, in a
# temporary directory. Numbers are meaningless. Args: SEEDD SEEDSC.
set -eu
here=$(dirname "$0")
bench="$here/faas_bench.py"
[[ -f "$bench" ]] || bench="$here/faas/faas_bench.py"  # under bazel: bench/faas_bench_smoke_test
exec timeout 600 /usr/bin/python3 "$bench" --smoke --seedd="$1" --seedsc="$2"
