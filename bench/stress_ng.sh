#!/usr/bin/env bash
# stress-ng's pipe, futex, sock (loopback), epoll, switch and signal
# stressors natively, under seedsc (a column per platform) and under gVisor's
# runsc, rounds interleaved so machine drift hits every runtime alike. Each
# stressor runs with 1 and with 2 workers (`--metrics-brief -t N`); the table
# shows the median bogo-ops/s (real time) and each sandbox's ratio to native,
# with the load average before and after. Rows ending in "+cpu" are the
# futex and pipe stressors again with `stress-ng --cpu 2` running on the
# host beside them (a production machine is never idle).
#
#   bash bench/stress_ng.sh [--smoke] [--rounds=N] [--seconds=N] [--workers=LIST]
#                           [--stressors=LIST] [--loaded=LIST] [--seedsc=PATH]
#                           [--seedsc-base=PATH] [--runsc=PATH] [--platforms=LIST]
#                           [--runsc-platform=NAME]
#
# Defaults: 3 rounds of 5 s, workers 1,2, every stressor above, --loaded
# futex,pipe (one worker; "none" for no loaded rows), --seedsc $SEEDSC or
# bazel-bin/runsc/seedsc, platforms systrap,ptrace (systrap-patch: systrap
# with syscall-site patching, seedsc's default; systrap: trapped), --runsc $(command -v
# runsc) on ptrace (Debian's runsc has no systrap), --network=none for both
# sandboxes (loopback only). --seedsc-base adds a column per platform for
# another build ("base-"). stress-ng itself must be installed
# (scripts/install-deps.sh); this script installs nothing.
# Every run must end with stress-ng's "successful run completed" and a
# bogo-ops count above 0; a run that fails twice (bench_lib.sh's run_case)
# fails the bench (exit 1).
# --smoke: one round of 1 s, one worker, no loaded rows; numbers mean nothing.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="${BUILD_WORKSPACE_DIRECTORY:-$(cd "$here/.." && pwd)}"
# shellcheck source=bench/bench_lib.sh
source "$here/bench_lib.sh"

rounds=3 seconds=5 workers=1,2 loaded=futex,pipe
stressors=pipe,futex,sock,epoll,switch,signal
seedsc="${SEEDSC:-}"
seedsc_base=""
runsc="${RUNSC:-$(command -v runsc || true)}"
platforms=systrap,ptrace
runsc_platform=ptrace
while (($#)); do
  case "$1" in
    --smoke) rounds=1 seconds=1 workers=1 loaded=none ;;
    --rounds=*) rounds="${1#*=}" ;;
    --seconds=*) seconds="${1#*=}" ;;
    --workers=*) workers="${1#*=}" ;;
    --stressors=*) stressors="${1#*=}" ;;
    --loaded=*) loaded="${1#*=}" ;;
    --seedsc=*) seedsc="${1#*=}" ;;
    --seedsc-base=*) seedsc_base="${1#*=}" ;;
    --runsc=*) runsc="${1#*=}" ;;
    --platforms=*) platforms="${1#*=}" ;;
    --runsc-platform=*) runsc_platform="${1#*=}" ;;
    -h|--help) sed -n '2,26p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "stress_ng: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
stress_ng="$(command -v stress-ng || true)"
if [[ -z "$stress_ng" ]]; then
  echo "stress_ng: stress-ng is not installed (bash scripts/install-deps.sh)" >&2
  exit 2
fi
[[ -z "$seedsc" && -x "$repo/bazel-bin/runsc/seedsc" ]] && seedsc="$repo/bazel-bin/runsc/seedsc"
[[ -n "$seedsc" ]] && seedsc="$(realpath "$seedsc")"
[[ -n "$seedsc_base" ]] && seedsc_base="$(realpath "$seedsc_base")"

names=(native)
declare -A cmd
cmd[native]=""
IFS=, read -ra plats <<<"$platforms"
add_seedsc_runtimes seedsc "$seedsc" "$platforms" --network=none
add_seedsc_runtimes base "$seedsc_base" "$platforms" --network=none
if [[ -n "$runsc" && -x "$runsc" ]]; then
  names+=(runsc)
  cmd[runsc]="$runsc --network=none --platform=$runsc_platform do"
fi

# The cases: "<stressor> <workers> <loaded 0|1>", named like the table rows.
IFS=, read -ra stressor_list <<<"$stressors"
IFS=, read -ra worker_list <<<"$workers"
IFS=, read -ra loaded_list <<<"$loaded"
cases=() metrics=()
for s in "${stressor_list[@]}"; do
  for w in "${worker_list[@]}"; do
    cases+=("$s $w 0") metrics+=("$s-$w")
  done
  for l in "${loaded_list[@]}"; do
    [[ "$l" == "$s" ]] && cases+=("$s 1 1") metrics+=("$s-1+cpu")
  done
done

# bogo_ops_per_s STRESSOR: the real-time bogo-ops/s of stress-ng's
# --metrics-brief line for STRESSOR in `out`, if the run completed and made
# progress ("stress-ng: metrc: [pid] futex OPS REAL USR SYS OPS/S OPS/S").
bogo_ops_per_s() {
  grep -q "] successful run completed" <<<"$out" || return 1
  awk -v s="$1" '$2 == "metrc:" {
      for (i = 3; i < NF; i++) if ($i == s && $(i + 1) ~ /^[0-9]+$/) {
        if ($(i + 1) > 0) print $(i + 5); exit
      }
    }' <<<"$out" | grep .
}

# The host hog for the loaded rows (bench_lib.sh's start_hog): started
# before a case, ended after it.

# stress-ng writes temporary files in its cwd; give every run a fresh one.
work="$(mktemp -d)"
trap 'stop_hog; rm -rf "$work"' EXIT
cd "$work" || exit 2

declare -A samples
fail=0
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= rounds; r++)); do
  for c in "${cases[@]}"; do
    read -r s w l <<<"$c"
    m="$s-$w"
    ((l)) && m="$s-1+cpu" && start_hog $((seconds * 4 + 60))
    for name in "${names[@]}"; do
      # shellcheck disable=SC2086  # cmd is a word list on purpose
      run_case stress_ng "$name $m" $((seconds * 3 + 60)) ${cmd[$name]} \
        "$stress_ng" "--$s" "$w" -t "$seconds" --metrics-brief
      if v="$(bogo_ops_per_s "$s")"; then
        samples["$name $m"]+="$v "
      else
        echo "stress_ng: round $r: $name: $m did not report ok (exit $status):" >&2
        sed 's/^/    /' <<<"$out" | tail -20 >&2
        fail=1
      fi
    done
    ((l)) && stop_hog
  done
  echo "round $r/$rounds done" >&2
done
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "stress_ng: $("$stress_ng" --version 2>&1 | awk "NR == 1 { print \$1, \$3 }" | tr -d ,); seedsc platforms=$platforms" \
  "runsc platform=$runsc_platform; rounds=$rounds, $seconds s each; $(nproc) CPUs"
echo "load average before: $load_before, after: $load_after"
[[ -n "$seedsc" && -x "$seedsc" ]] || echo "(seedsc not built: n/a)"
[[ -n "$runsc" && -x "$runsc" ]] || echo "(runsc not installed: n/a)"
echo "bogo-ops/s (real time; higher is better); STRESSOR-WORKERS; +cpu: beside stress-ng --cpu 2"
ratio_percent=1 print_table
if ((fail)); then
  echo "stress_ng: some runs failed (see above)" >&2
  exit 1
fi
