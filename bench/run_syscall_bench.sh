#!/usr/bin/env bash
# Syscall round-trip cost natively, under seedsc and under gVisor's runsc,
# measured side by side in one run (rounds interleaved so machine drift hits
# every runtime alike). Prints ns per call (median of rounds) and ratios,
# idle and loaded: rows ending in "+cpu" ran beside a host
# `stress-ng --cpu 2` (a production host is never idle; systrap's handoff
# must degrade gracefully there), with the load average before and after.
# getppid_p50/_p99 time single calls; pipe_pingpong is one byte to a child
# and back.
#
#   bash bench/run_syscall_bench.sh [--smoke] [--rounds N] [--bench PATH]
#                                   [--seedsc PATH] [--seedsc-base PATH]
#                                   [--runsc PATH] [--platforms LIST]
#                                   [--runsc-platform NAME] [--no-loaded]
#                                   [--floor PATH]
#
# Or: bazel run //bench:run_syscall_bench -- [flags].
# Defaults: --bench bazel-bin/bench/syscall_bench, --seedsc $SEEDSC or
# bazel-bin/runsc/seedsc if built, --runsc $(command -v runsc), 5 rounds,
# seedsc on each of --platforms (default "ptrace,systrap,systrap-patch": one
# column each; systrap-patch is systrap with --systrap-patch),
# runsc on --runsc-platform (default ptrace). --seedsc-base adds a column per
# platform for another seedsc build (e.g. main before a change: "base-").
# --no-loaded skips the +cpu rows (they need stress-ng). --floor (default
# beside the script or bazel-bin/bench/systrap_floor) adds a second table:
# the pieces of a systrap syscall measured natively without a sentry
# (systrap_floor.c: SIGSYS trap, the fast entry's frame work, the stub <->
# sentry handoff spinning and through futexes), idle and +cpu; a missing
# binary skips it. A runtime that is
# missing is shown as n/a; a runtime that is present but fails to run the
# benchmark is an error (exit 1).
# --smoke: one round with very few iterations and no +cpu rows, to check
# that everything runs (bench_smoke_test in CI); its numbers mean nothing.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The source tree; under `bazel run` the script runs from its runfiles.
repo="${BUILD_WORKSPACE_DIRECTORY:-$(cd "$here/.." && pwd)}"
# shellcheck source=bench/bench_lib.sh
source "$here/bench_lib.sh"

smoke=0
rounds=5
bench="${BENCH:-}"
if [[ -z "$bench" ]]; then
  bench="$here/syscall_bench"  # beside the script in runfiles
  [[ -x "$bench" ]] || bench="$repo/bazel-bin/bench/syscall_bench"
fi
seedsc="${SEEDSC:-}"
seedsc_base=""
runsc="${RUNSC:-$(command -v runsc || true)}"
platforms=ptrace,systrap,systrap-patch
runsc_platform=ptrace
loaded=1
floor="${FLOOR:-}"
while (($#)); do
  case "$1" in
    --smoke) smoke=1 loaded=0 ;;
    --no-loaded) loaded=0 ;;
    --seedsc-base) seedsc_base="$2"; shift ;;
    --seedsc-base=*) seedsc_base="${1#*=}" ;;
    --rounds) rounds="$2"; shift ;;
    --bench) bench="$2"; shift ;;
    --seedsc) seedsc="$2"; shift ;;
    --runsc) runsc="$2"; shift ;;
    --platforms) platforms="$2"; shift ;;
    --runsc-platform) runsc_platform="$2"; shift ;;
    --floor) floor="$2"; shift ;;
    --floor=*) floor="${1#*=}" ;;
    --rounds=*) rounds="${1#*=}" ;;
    --bench=*) bench="${1#*=}" ;;
    --seedsc=*) seedsc="${1#*=}" ;;
    --runsc=*) runsc="${1#*=}" ;;
    --platforms=*) platforms="${1#*=}" ;;
    --runsc-platform=*) runsc_platform="${1#*=}" ;;
    -h|--help) sed -n '2,32p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "run_syscall_bench: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
if [[ -z "$seedsc" && -x "$repo/bazel-bin/runsc/seedsc" ]]; then
  seedsc="$repo/bazel-bin/runsc/seedsc"
fi
if [[ ! -x "$bench" ]]; then
  echo "run_syscall_bench: no benchmark binary at $bench (bazel build //bench:syscall_bench)" >&2
  exit 2
fi
# Absolute paths: a sandbox resolves a relative command against its own cwd.
bench="$(realpath "$bench")"
[[ -n "$seedsc" ]] && seedsc="$(realpath "$seedsc")"
[[ -n "$seedsc_base" ]] && seedsc_base="$(realpath "$seedsc_base")"
stress_ng="$(command -v stress-ng || true)"
if ((loaded)) && [[ -z "$stress_ng" ]]; then
  echo "run_syscall_bench: the +cpu rows need stress-ng (bash scripts/install-deps.sh, or --no-loaded)" >&2
  exit 2
fi

# Iterations per round. A sandboxed syscall costs tens of microseconds on the
# ptrace platform, so sandboxes run fewer iterations; results are per call.
if ((smoke)); then
  rounds=1 native_iters=1000 sandbox_iters=100
else
  native_iters=1000000 sandbox_iters=20000
fi

# Runtimes in table order: name and command prefix. The benchmark's temp file
# goes to the sandbox's own /tmp (in its overlay), natively to $TMPDIR.
names=(native)
declare -A cmd iters
cmd[native]=""
add_seedsc_runtimes seedsc "$seedsc" "$platforms"
add_seedsc_runtimes base "$seedsc_base" "$platforms"
# runsc's stdout is captured through a pipe: it writes a regular-file stdout
# at its own offset, clobbering what the file held before.
add_runsc_runtime "$runsc" "$runsc_platform"
iters[native]=$native_iters
for name in "${names[@]:1}"; do iters[$name]=$sandbox_iters; done

declare -A samples  # "<runtime> <metric>" -> space-separated ns values
base_metrics=(getppid getppid_p50 getppid_p99 pipe_pingpong pread4096 fork_exit_wait touch64m_per_page)
with_loaded "${base_metrics[@]}"

# One runtime in one pass (bench_lib.sh's run_loaded_rounds: idle, then
# beside the CPU hog for the +cpu rows).
bench_case() {
  # shellcheck disable=SC2086  # cmd is a word list on purpose
  TMPDIR=/tmp run_case run_syscall_bench "$1" 300 ${cmd[$1]} "$bench" "${iters[$1]}" "${iters[$1]}"
}
fail=0
run_loaded_rounds run_syscall_bench "${base_metrics[@]}"


echo
echo "syscall_bench: seedsc platforms=$platforms runsc platform=$runsc_platform rounds=$rounds iterations native=$native_iters sandbox=$sandbox_iters"
echo "load average before: $load_before, after: $load_after ($(nproc) CPUs); +cpu: beside stress-ng --cpu 2"
[[ -n "$seedsc" && -x "$seedsc" ]] || echo "(seedsc not built: n/a)"
[[ -n "$runsc" && -x "$runsc" ]] || echo "(runsc not installed: n/a)"
# Columns: every runtime that ran (ns per call, median of rounds), then each
# sandbox over native, then runsc over each seedsc platform.
header=("syscall")
for name in "${names[@]}"; do header+=("$name"); done
for name in "${names[@]:1}"; do header+=("$name/nat"); done
if [[ -n "${cmd[runsc]:-}" ]]; then
  for name in "${names[@]:1}"; do [[ "$name" == seedsc-* ]] && header+=("runsc/${name#seedsc-}"); done
fi
printf '%-22s' "${header[0]}"; printf ' %15s' "${header[@]:1}"; echo
for m in "${metrics[@]}"; do
  declare -A med=()
  for name in "${names[@]}"; do med[$name]="$(median "${samples["$name $m"]:-}")"; done
  row=()
  for name in "${names[@]}"; do row+=("${med[$name]}"); done
  for name in "${names[@]:1}"; do row+=("$(ratio "${med[$name]}" "${med[native]}")"); done
  if [[ -n "${cmd[runsc]:-}" ]]; then
    for name in "${names[@]:1}"; do
      [[ "$name" == seedsc-* ]] && row+=("$(ratio "${med[runsc]}" "${med[$name]}")")
    done
  fi
  printf '%-22s' "$m"; printf ' %15s' "${row[@]}"; echo
  unset med
done
print_spread 22 22

# The systrap floor: one more pass of rounds with a single "runtime".
if [[ -z "$floor" ]]; then
  floor="$here/systrap_floor"
  [[ -x "$floor" ]] || floor="$repo/bazel-bin/bench/systrap_floor"
fi
if [[ -x "$floor" ]]; then
  floor="$(realpath "$floor")"
  floor_iters=$((smoke ? 200 : 20000))
  names=(floor)
  samples=()
  floor_metrics=(getppid_p50 sigsys_trap fast_frame xsave xsaveopt handoff_spin handoff_spin_p99
    handoff_futex handoff_futex_p99 handoff_futex_timed handoff_futex_1cpu)
  with_loaded "${floor_metrics[@]}"
  bench_case() {
    run_case run_syscall_bench floor 300 "$floor" "$floor_iters"
  }
  run_loaded_rounds run_syscall_bench "${floor_metrics[@]}"
  echo
  echo "systrap_floor (no sentry: the pieces of a systrap syscall, ns, median of $rounds rounds; p50 of single operations unless _p99; fast_frame and xsave* per instruction, p50 of batches of 100), load average before: $load_before, after: $load_after"
  for m in "${metrics[@]}"; do
    printf '%-22s %15s\n' "$m" "$(median "${samples["floor $m"]:-}")"
  done
else
  echo "(systrap_floor not built: no floor table; bazel build //bench:systrap_floor)"
fi
if ((fail)); then
  echo "run_syscall_bench: some runs failed (see above)" >&2
  exit 1
fi
