#!/usr/bin/env bash
# PostgreSQL 15 under load: pgbench tps (select-only and the default
# TPC-B-like mix, 1 and 4 clients, -T 10 each, scale 10, unix socket) and
# start-up times (initdb, pg_ctl start -w, and beside them python3 -c pass in the
# same runtime and round), natively, under seedsc and under
# gVisor's runsc in one run, rounds interleaved. Every run is a fresh
# cluster (test/e2e/postgres_workload.sh: initdb, start, pgbench -i, the
# four pgbench runs, stop) as nobody, in memory everywhere (native: on
# /dev/shm; sandboxes: their overlay). Prints medians, each sandbox's ratio
# to native, and the load average before and after.
#
#   bash bench/postgres_bench.sh [--smoke] [--rounds=N] [--seconds=N] [--seedsc=PATH]
#                                [--seedsc-base=PATH] [--initdb-only] [--startup] [--starts=N]
#                                [--runsc=PATH] [--platforms=LIST] [--runsc-platform=NAME]
#
# Defaults: --seedsc bazel-bin/runsc/seedsc, --runsc $(command -v runsc),
# 1 round, -T 10, platforms systrap, runsc on ptrace (Debian's runsc has
# no systrap). --smoke: -T 1, scale 1 (CI: it runs; numbers mean nothing).
# --seedsc-base: a column per platform for another build ("base-", e.g.
# main before a change), in the same rounds. --initdb-only: only initdb's
# time (rounds of a few seconds: use many). --startup: per round and
# runtime one initdb, then --starts (default 10) server starts, each until
# psql's `select 1` answers (start_s), and fast stops (stop_s); prints
# p50/p90/max over all starts of all rounds (with --smoke: 2 starts).
# tps: higher is better; *_s (seconds): lower is better.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="${BUILD_WORKSPACE_DIRECTORY:-$(cd "$here/.." && pwd)}"
# shellcheck source=bench/bench_lib.sh
source "$here/bench_lib.sh"

rounds=1 seconds=10 scale=10
seedsc="${SEEDSC:-}" seedsc_base="" initdb_only=0 startup=0 starts=10 smoke=0
runsc="${RUNSC:-$(command -v runsc || true)}"
platforms=systrap
runsc_platform=ptrace
while (($#)); do
  case "$1" in
    --smoke) seconds=1 scale=1 smoke=1 ;;
    --rounds=*) rounds="${1#*=}" ;;
    --seconds=*) seconds="${1#*=}" ;;
    --seedsc=*) seedsc="${1#*=}" ;;
    --seedsc-base=*) seedsc_base="$(realpath "${1#*=}")" ;;
    --initdb-only) initdb_only=1 ;;
    --startup) startup=1 ;;
    --starts=*) starts="${1#*=}" ;;
    --runsc=*) runsc="${1#*=}" ;;
    --platforms=*) platforms="${1#*=}" ;;
    --runsc-platform=*) runsc_platform="${1#*=}" ;;
    -h|--help) sed -n '2,25p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "postgres_bench: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
workload="$here/../test/e2e/postgres_workload.sh"
[[ -x "$workload" ]] || workload="$repo/test/e2e/postgres_workload.sh"
if [[ ! -x /usr/lib/postgresql/15/bin/postgres ]]; then
  echo "postgres_bench: PostgreSQL 15 is missing (scripts/install-deps.sh installs postgresql-15)" >&2
  exit 2
fi
[[ -z "$seedsc" && -x "$repo/bazel-bin/runsc/seedsc" ]] && seedsc="$repo/bazel-bin/runsc/seedsc"
[[ -n "$seedsc" ]] && seedsc="$(realpath "$seedsc")"
workload="$(realpath "$workload")"

names=(native)
declare -A cmd
# The sandboxes' /tmp is their overlay's upper layer, in memory, where
# fsync has nothing to write back; natively the cluster lives in a tmpfs too,
# so the read-write runs compare the same thing.
cmd[native]=""
native_tmp=(--tmp /dev/shm)
add_seedsc_runtimes seedsc "$seedsc" "$platforms"
add_seedsc_runtimes base "$seedsc_base" "$platforms"
add_runsc_runtime "$runsc" "$runsc_platform"

T="-T $seconds"
# System V segments for dynamic shared memory everywhere: Debian's runsc
# refuses nobody's shm_open in /dev/shm (see test/e2e/postgres_test.sh);
# pgbench barely uses dynamic shared memory.
runs=(--dsm sysv --scale "$scale" --tps "so_c1:-S $T" --tps "so_c4:-S -c 4 -j 4 $T"
  --tps "rw_c1:$T" --tps "rw_c4:-c 4 -j 4 $T")
# What the workload prints, and every row of the table.
wl_metrics=(initdb_s start_s tps_so_c1 tps_so_c4 tps_rw_c1 tps_rw_c4)
metrics=(initdb_s start_s python3_s tps_so_c1 tps_so_c4 tps_rw_c1 tps_rw_c4)
if ((initdb_only)); then
  runs=(--initdb-only)
  wl_metrics=(initdb_s)
  metrics=(initdb_s python3_s)
fi
if ((startup)); then
  ((smoke)) && starts=2
  [[ "$starts" =~ ^[1-9][0-9]*$ ]] || { echo "postgres_bench: --starts=$starts: not a positive count" >&2; exit 2; }
  runs=(--dsm sysv --starts "$starts")
  wl_metrics=(initdb_s start_s stop_s)
  metrics=(initdb_s start_s stop_s python3_s)
fi
# python3's start-up (`python3 -c pass`), timed the same way inside the same
# runtime in the same round: the start-up rows beside python3 (issue 17).
# Debian's /usr/bin/python3 by its path: a `python3` found on the caller's
# PATH may be a wrapper (a pyenv shim is a bash script that execs a dozen
# times before python starts).
py_probe='s=$(date +%s%N); /usr/bin/python3 -c pass || exit 1; e=$(date +%s%N)
awk -v s="$s" -v e="$e" "BEGIN { printf \"python3_s %.3f\\n\", (e - s) / 1e9 }"'
declare -A samples
fail=0
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= rounds; r++)); do
  for name in "${names[@]}"; do
    # shellcheck disable=SC2086  # cmd is a word list on purpose
    tmp=()
    [[ "$name" == native ]] && tmp=("${native_tmp[@]}")
    run_case postgres_bench "$name" 600 ${cmd[$name]} "$workload" "${tmp[@]}" "${runs[@]}"
    record_metrics postgres_bench "$r" "$name" "$out" "$status" "${wl_metrics[@]}"
    # shellcheck disable=SC2086
    run_case postgres_bench "$name" 120 ${cmd[$name]} /bin/sh -c "$py_probe"
    record_metrics postgres_bench "$r" "$name" "$out" "$status" python3_s
  done
  echo "round $r/$rounds done (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
done

echo
echo "postgres_bench: seedsc platforms=$platforms runsc platform=$runsc_platform rounds=$rounds" \
  "pgbench -T $seconds scale=$scale ($(nproc) cpus)"
echo "load average: before $load_before, after $(cut -d' ' -f1-3 /proc/loadavg)"
[[ -n "$seedsc" && -x "$seedsc" ]] || echo "(seedsc not built: n/a)"
[[ -n "$runsc" && -x "$runsc" ]] || echo "(runsc not installed: n/a)"
echo "so = select-only (-S), rw = default TPC-B-like; c1/c4 = clients; tps higher is better"
print_table
if ((startup)); then
  # Nearest-rank percentiles over every start of every round.
  echo
  echo "start-up (pg_ctl start -w until psql's select 1 answers; then pg_ctl stop -m fast), s:"
  printf '%-22s %8s %8s %8s %8s %10s\n' runtime n p50 p90 max p50/native
  nat_p50=""
  for name in "${names[@]}"; do
    for m in start_s stop_s; do
      read -r n p50 p90 max < <(tr ' ' '\n' <<<"${samples["$name $m"]:-}" | grep . | sort -g |
        awk '{ v[NR] = $1 } END {
          if (NR == 0) { print "0 n/a n/a n/a"; exit }
          i50 = int(NR * 0.5); if (i50 < NR * 0.5) i50++
          i90 = int(NR * 0.9); if (i90 < NR * 0.9) i90++
          print NR, v[i50], v[i90], v[NR] }')
      [[ "$name" == native && "$m" == start_s ]] && nat_p50="$p50"
      [[ "$name" == native && "$m" == stop_s ]] && nat_stop_p50="$p50"
      base="$nat_p50"; [[ "$m" == stop_s ]] && base="${nat_stop_p50:-}"
      printf '%-22s %8s %8s %8s %8s %10s\n' "$name ${m%_s}" "$n" "$p50" "$p90" "$max" \
        "$(ratio "$p50" "${base:-n/a}" 2)"
    done
  done
fi
if ((fail)); then
  echo "postgres_bench: some runs failed (see above)" >&2
  exit 1
fi
