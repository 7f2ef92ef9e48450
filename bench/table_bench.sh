#!/usr/bin/env bash
# Big tables, per operation: opening 32768 fds and making 65000 mappings
# (bench/table_bench.c) natively, under seedsc (each platform) and under
# gVisor's runsc in one run, rounds interleaved. Prints medians, each
# sandbox's ratio to native, and tail_head: the mean cost of the last 10%
# of operations over the first 10% (about 1 when each operation is
# O(log n); a quadratic table shows up as a large number).
#
#   bash bench/table_bench.sh [--smoke] [--rounds N] [--bench PATH] [--seedsc PATH]
#                             [--runsc PATH] [--platforms LIST] [--runsc-platform NAME]
#                             [--fds N] [--maps N]
#
# Defaults: --bench bazel-bin/bench/table_bench, --seedsc bazel-bin/runsc/seedsc,
# --runsc $(command -v runsc), 3 rounds, platforms ptrace,systrap, runsc on
# ptrace. Where RLIMIT_NOFILE cannot be raised (no CAP_SYS_RESOURCE, as
# natively in a container) the bench opens as many fds as the hard limit
# allows and prints how many ("fds N"). --smoke: one small round.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="${BUILD_WORKSPACE_DIRECTORY:-$(cd "$here/.." && pwd)}"
# shellcheck source=bench/bench_lib.sh
source "$here/bench_lib.sh"

rounds=3 fds=32768 maps=65000
bench="$here/table_bench"
[[ -x "$bench" ]] || bench="$repo/bazel-bin/bench/table_bench"
seedsc="${SEEDSC:-}"
runsc="${RUNSC:-$(command -v runsc || true)}"
platforms=ptrace,systrap
runsc_platform=ptrace
while (($#)); do
  case "$1" in
    --smoke) rounds=1 fds=500 maps=500 ;;
    --rounds=*) rounds="${1#*=}" ;;
    --bench=*) bench="${1#*=}" ;;
    --seedsc=*) seedsc="${1#*=}" ;;
    --runsc=*) runsc="${1#*=}" ;;
    --platforms=*) platforms="${1#*=}" ;;
    --runsc-platform=*) runsc_platform="${1#*=}" ;;
    --fds=*) fds="${1#*=}" ;;
    --maps=*) maps="${1#*=}" ;;
    -h|--help) sed -n '2,18p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "table_bench: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
[[ -z "$seedsc" && -x "$repo/bazel-bin/runsc/seedsc" ]] && seedsc="$repo/bazel-bin/runsc/seedsc"
if [[ ! -x "$bench" ]]; then
  echo "table_bench: no benchmark binary at $bench (bazel build //bench:table_bench)" >&2
  exit 2
fi
bench="$(realpath "$bench")"
[[ -n "$seedsc" ]] && seedsc="$(realpath "$seedsc")"

names=(native)
declare -A cmd
cmd[native]=""
add_runtimes "$seedsc" "$platforms" "$runsc" "$runsc_platform"

declare -A samples
metrics=(fds fd_total_ms fd_p50_us fd_p99_us fd_tail_head mappings map_total_ms map_p50_us
  map_p99_us map_tail_head)
fail=0
for ((r = 1; r <= rounds; r++)); do
  for name in "${names[@]}"; do
    # shellcheck disable=SC2086  # cmd is a word list on purpose
    run_case table_bench "$name" 900 ${cmd[$name]} "$bench" "$fds" "$maps"
    record_metrics table_bench "$r" "$name" "$out" "$status" "${metrics[@]}"
  done
  echo "round $r/$rounds done" >&2
done

echo
echo "table_bench: seedsc platforms=$platforms runsc platform=$runsc_platform rounds=$rounds" \
  "fds=$fds maps=$maps"
[[ -n "$seedsc" && -x "$seedsc" ]] || echo "(seedsc not built: n/a)"
[[ -n "$runsc" && -x "$runsc" ]] || echo "(runsc not installed: n/a)"
echo "ms, us: lower is better; tail_head: ~1 means O(log n) per operation"
print_table
if ((fail)); then
  echo "table_bench: some runs failed (see above)" >&2
  exit 1
fi
