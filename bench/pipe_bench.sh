#!/usr/bin/env bash
# Pipe throughput and ping-pong latency natively, under seedsc and under
# gVisor's runsc, with a unix stream socketpair as the control, measured side
# by side in one run (rounds interleaved so machine drift hits every runtime
# alike). Prints the median of the rounds and each sandbox's ratio to native.
#
#   bash bench/pipe_bench.sh [--smoke] [--rounds N] [--bench PATH]
#                            [--seedsc PATH] [--seedsc-base PATH] [--runsc PATH]
#                            [--platforms LIST] [--runsc-platform NAME]
#                            [--mib N] [--trips N]
#
# Defaults: --bench bazel-bin/bench/pipe_bench, --seedsc $SEEDSC or
# bazel-bin/runsc/seedsc if built, --runsc $(command -v runsc), 5 rounds,
# seedsc on each of --platforms (default "ptrace,systrap": one column each),
# runsc on --runsc-platform (default ptrace). --seedsc-base adds a column per
# platform for another seedsc build (e.g. main before a change: "base-").
# Sandboxes move --mib MiB (default 64) and make --trips round trips (default
# 2000); native 4x as many. A runtime that is missing is shown as n/a; one
# that fails to run the benchmark is an error (exit 1).
# --smoke: one round with very few iterations; its numbers mean nothing.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="${BUILD_WORKSPACE_DIRECTORY:-$(cd "$here/.." && pwd)}"
# shellcheck source=bench/bench_lib.sh
source "$here/bench_lib.sh"

smoke=0
rounds=5
mib=64
trips=2000
bench="${BENCH:-}"
if [[ -z "$bench" ]]; then
  bench="$here/pipe_bench"  # beside the script in runfiles
  [[ -x "$bench" ]] || bench="$repo/bazel-bin/bench/pipe_bench"
fi
seedsc="${SEEDSC:-}"
seedsc_base=""
runsc="${RUNSC:-$(command -v runsc || true)}"
platforms=ptrace,systrap
runsc_platform=ptrace
while (($#)); do
  case "$1" in
    --smoke) smoke=1 ;;
    --rounds) rounds="$2"; shift ;;
    --bench) bench="$2"; shift ;;
    --seedsc) seedsc="$2"; shift ;;
    --seedsc-base) seedsc_base="$2"; shift ;;
    --runsc) runsc="$2"; shift ;;
    --platforms) platforms="$2"; shift ;;
    --runsc-platform) runsc_platform="$2"; shift ;;
    --mib) mib="$2"; shift ;;
    --trips) trips="$2"; shift ;;
    --rounds=*) rounds="${1#*=}" ;;
    --bench=*) bench="${1#*=}" ;;
    --seedsc=*) seedsc="${1#*=}" ;;
    --seedsc-base=*) seedsc_base="${1#*=}" ;;
    --runsc=*) runsc="${1#*=}" ;;
    --platforms=*) platforms="${1#*=}" ;;
    --runsc-platform=*) runsc_platform="${1#*=}" ;;
    --mib=*) mib="${1#*=}" ;;
    --trips=*) trips="${1#*=}" ;;
    -h|--help) sed -n '2,21p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "pipe_bench: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
if [[ -z "$seedsc" && -x "$repo/bazel-bin/runsc/seedsc" ]]; then
  seedsc="$repo/bazel-bin/runsc/seedsc"
fi
if [[ ! -x "$bench" ]]; then
  echo "pipe_bench: no benchmark binary at $bench (bazel build //bench:pipe_bench)" >&2
  exit 2
fi
# Absolute paths: a sandbox resolves a relative command against its own cwd.
bench="$(realpath "$bench")"
[[ -n "$seedsc" ]] && seedsc="$(realpath "$seedsc")"
[[ -n "$seedsc_base" ]] && seedsc_base="$(realpath "$seedsc_base")"

if ((smoke)); then
  rounds=1 mib=1 trips=50
fi
native_args="$((mib * 4)) $((trips * 4))"
sandbox_args="$mib $trips"

# Runtimes in table order: name, command prefix and arguments.
names=(native)
declare -A cmd args
cmd[native]=""
args[native]=$native_args
IFS=, read -ra plats <<<"$platforms"
if [[ -n "$seedsc" && -x "$seedsc" ]]; then
  for p in "${plats[@]}"; do
    names+=("seedsc-$p")
    cmd["seedsc-$p"]="$seedsc --platform=$p do --"
    args["seedsc-$p"]=$sandbox_args
  done
fi
if [[ -n "$seedsc_base" && -x "$seedsc_base" ]]; then
  for p in "${plats[@]}"; do
    names+=("base-$p")
    cmd["base-$p"]="$seedsc_base --platform=$p do --"
    args["base-$p"]=$sandbox_args
  done
fi
if [[ -n "$runsc" && -x "$runsc" ]]; then
  names+=(runsc)
  # Its stdout is captured through a pipe (runsc writes a regular-file stdout
  # at its own offset).
  cmd[runsc]="$runsc --network=none --platform=$runsc_platform do"
  args[runsc]=$sandbox_args
fi

declare -A samples  # "<runtime> <metric>" -> space-separated values
metrics=(pipe_mbps pipe_rtt_p50 pipe_rtt_p90 pipe_rtt_p99 unix_mbps unix_rtt_p50 unix_rtt_p90
  unix_rtt_p99)
fail=0
for ((r = 1; r <= rounds; r++)); do
  for name in "${names[@]}"; do
    # shellcheck disable=SC2086  # cmd and args are word lists on purpose
    run_case pipe_bench "$name" 600 ${cmd[$name]} "$bench" ${args[$name]}
    record_metrics pipe_bench "$r" "$name" "$out" "$status" "${metrics[@]}"
  done
  echo "round $r/$rounds done" >&2
done


echo
echo "pipe_bench: seedsc platforms=$platforms runsc platform=$runsc_platform rounds=$rounds" \
  "args native='$native_args' sandbox='$sandbox_args' (MiB, round trips)"
[[ -n "$seedsc" && -x "$seedsc" ]] || echo "(seedsc not built: n/a)"
[[ -n "$runsc" && -x "$runsc" ]] || echo "(runsc not installed: n/a)"
echo "mbps: MB/s (higher is better); rtt: 1-byte round trip, us (lower is better)"
print_table
if ((fail)); then
  echo "pipe_bench: some runs failed (see above)" >&2
  exit 1
fi
