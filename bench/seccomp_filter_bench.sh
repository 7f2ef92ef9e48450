#!/usr/bin/env bash
# The seccomp programs before and after libseccomp (issue 18), side by side
# in one run: program sizes, the host kernel's cost per syscall under the
# sentry's program (none / before / after, in rounds interleaved so machine
# drift hits all three), and our evaluator's cost on the sentry's and the
# stub's programs. Rows ending in "+cpu" ran beside `stress-ng --cpu 2`.
# "before" is the hand-built programs: the golden dumps at --before-rev
# (default: the parent of the commit that added seccomp/compile.cc, the last
# one with our own BPF assembler).
#
#   bash bench/seccomp_filter_bench.sh [--smoke] [--rounds N] [--bench PATH]
#                                      [--before-rev REV | --before-dir DIR]
#                                      [--no-loaded]
#
# Or: bazel run //bench:run_seccomp_filter_bench -- [flags].
# --smoke: one round, few iterations, no +cpu rows (CI); numbers mean nothing.
# The end-to-end cost (getppid in a guest under systrap, with native and
# runsc beside it): bash bench/run_syscall_bench.sh --seedsc-base OLD_SEEDSC.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="${BUILD_WORKSPACE_DIRECTORY:-$(cd "$here/.." && pwd)}"
# shellcheck source=bench/bench_lib.sh
source "$here/bench_lib.sh"

smoke=0 rounds=5 loaded=1 before_rev="" before_dir=""
bench="$here/seccomp_filter_bench"
[[ -x "$bench" ]] || bench="$repo/bazel-bin/bench/seccomp_filter_bench"
while (($#)); do
  case "$1" in
    --smoke) smoke=1 loaded=0 rounds=1 ;;
    --no-loaded) loaded=0 ;;
    --rounds) rounds="$2"; shift ;;
    --rounds=*) rounds="${1#*=}" ;;
    --bench) bench="$2"; shift ;;
    --bench=*) bench="${1#*=}" ;;
    --before-rev) before_rev="$2"; shift ;;
    --before-dir) before_dir="$2"; shift ;;
    --before-dir=*) before_dir="${1#*=}" ;;
    *) echo "seccomp_filter_bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[[ -x "$bench" ]] || { echo "seccomp_filter_bench.sh: no benchmark binary at $bench (bazel build //bench:seccomp_filter_bench)" >&2; exit 2; }

tmp="$(mktemp -d)"
trap 'stop_hog; rm -rf "$tmp"' EXIT
if [[ -z "$before_dir" ]]; then
  if [[ -z "$before_rev" ]]; then
    before_rev="$(git -C "$repo" log --diff-filter=A --format=%H -- seccomp/compile.cc | tail -1)^"
  fi
  before_dir="$tmp/before"
  mkdir -p "$before_dir"
  for g in sentry stub; do
    if ! git -C "$repo" show "$before_rev:seccomp/testdata/$g.golden" >"$before_dir/$g.golden"; then
      echo "seccomp_filter_bench.sh: cannot read seccomp/testdata/$g.golden at $before_rev" >&2
      exit 2
    fi
  done
fi
iters=100000
((smoke)) && iters=2000
stress_ng="$(command -v stress-ng || true)"
if ((loaded)) && [[ -z "$stress_ng" ]]; then
  echo "seccomp_filter_bench.sh: no stress-ng for the +cpu rows; use --no-loaded" >&2
  exit 2
fi

declare -A samples=()
run_round() {  # SUFFIX
  local out name value
  out="$("$bench" "$before_dir" "$iters")" || { echo "seccomp_filter_bench.sh: $bench failed" >&2; exit 1; }
  while read -r name value; do
    samples["$name$1"]+=" $value"
  done <<<"$out"
}
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 0; r < rounds; r++)); do
  run_round ""
  if ((loaded)); then
    start_hog 600
    run_round "+cpu"
    stop_hog
  fi
done
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

med() { median "${samples[$1]:-}"; }
echo "seccomp programs (instructions): sentry $(med size_sentry_before) -> $(med size_sentry_after)," \
  "stub $(med size_stub_before) -> $(med size_stub_after)"
echo "load average before: $load_before  after: $load_after  (rounds: $rounds, iterations: $iters)"
echo
printf '%-22s %10s %10s %10s %12s %12s\n' "ns per call" none before after before-none after-none
sfx=("")
((loaded)) && sfx+=("+cpu")
for s in "${sfx[@]}"; do
  for m in futex_p50 futex_p99 getppid_p50 getppid_p99 membarrier_p50 membarrier_p99; do
    n="$(med "${m}_none$s")" b="$(med "${m}_before$s")" a="$(med "${m}_after$s")"
    printf '%-22s %10s %10s %10s %12s %12s\n' "$m$s" "$n" "$b" "$a" \
      "$(awk -v b="$b" -v n="$n" 'BEGIN { printf "%.1f", b - n }')" \
      "$(awk -v a="$a" -v n="$n" 'BEGIN { printf "%.1f", a - n }')"
  done
done
echo
printf '%-28s %10s %10s %12s\n' "our evaluator (ns)" before after after/before
for s in "${sfx[@]}"; do
  for c in sentry_futex sentry_getppid stub_guest_call stub_handler_futex; do
    b="$(med "eval_before_$c$s")" a="$(med "eval_after_$c$s")"
    printf '%-28s %10s %10s %12s\n' "$c$s" "$b" "$a" "$(ratio "$a" "$b" 2)"
  done
done
