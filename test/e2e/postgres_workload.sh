#!/bin/bash
# A PostgreSQL 15 session from initdb to a clean stop, for the e2e test
# (test/e2e/postgres_test.sh) and the benchmark (bench/postgres_bench.sh).
# Run it as root, natively or inside a sandbox: it makes a fresh directory
# under /tmp (or --tmp DIR, which must come first), hands it to nobody and runs the rest as nobody (postgres
# refuses to run as root).
#
#   postgres_workload.sh [--tmp DIR] [--queries] [--tps NAME:PGBENCH_OPTIONS]... [--scale N]
#                        [--dsm posix|sysv|mmap] [--initdb-only] [--starts N]
#
# Steps print "STEP x" before and "OK x" after (initdb, start, queries,
# pgbench, stop); a failing step stops the script (exit != 0). Timings and
# results are "<metric> <number>" lines: initdb_s, start_s (pg_ctl start -w
# until the server accepts connections), tps_NAME per --tps run (pgbench
# against the unix socket, without connection time). --queries runs psql:
# 100,000 rows, sum=, an index (below=), a rolled-back delete
# (after_rollback=), a parallel scan through dynamic shared memory
# (parallel=). Last, the server log's WARNING/ERROR/FATAL/PANIC lines between
# "SERVER LOG PROBLEMS:" and "END SERVER LOG" ("none" if there are none;
# the fast stop's own FATALs left out). --dsm: dynamic_shared_memory_type
# (default posix: shm_open in /dev/shm). --initdb-only: initdb, then remove
# the cluster and stop (the start-up benchmark's many short rounds).
# --starts N: after initdb, N times: start the server and wait until a client
# gets an answer (pg_ctl start -w, then psql's `select 1` over the unix
# socket: start_s), then a fast stop (pg_ctl stop -m fast -w: stop_s); then
# remove the cluster and stop (the start-up row of bench/postgres_bench.sh).
set -euo pipefail
PG=/usr/lib/postgresql/15/bin

if [[ "${1:-}" != --as-user ]]; then
  parent=/tmp
  if [[ "${1:-}" == --tmp ]]; then parent="$2"; shift 2; fi
  top="$(mktemp -d "$parent/pg_workload.XXXXXX")"
  # A copy nobody can run (this file may sit under root's 0700 home).
  install -m 0755 "$0" "$top/workload.sh"
  chown nobody:nogroup "$top"
  exec setpriv --reuid=nobody --regid=nogroup --clear-groups \
    "$top/workload.sh" --as-user "$top" "$@" 2>&1
fi
top="$2"
shift 2
queries=0 scale=1 dsm=posix initdb_only=0 starts=0
tps=()
while (($#)); do
  case "$1" in
    --queries) queries=1 ;;
    --tps) tps+=("$2"); shift ;;
    --scale) scale="$2"; shift ;;
    --dsm) dsm="$2"; shift ;;
    --initdb-only) initdb_only=1 ;;
    --starts) starts="$2"; shift ;;
    *) echo "postgres_workload: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done

D="$top/data" S="$top/sock"
mkdir "$S"
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f\n", b - a }'; }

echo "STEP initdb"
t0="$(now)"
"$PG/initdb" -D "$D" -A trust -U postgres --no-sync >"$top/initdb.log" 2>&1 ||
  { cat "$top/initdb.log"; exit 1; }
echo "initdb_s $(since "$t0")"
echo "OK initdb"
if ((initdb_only)); then
  rm -rf "$top"
  exit 0
fi

start_server() {
  "$PG/pg_ctl" -D "$D" -l "$D/server.log" -w -t 60 \
    -o "-k $S -c listen_addresses='' -c huge_pages=try -c dynamic_shared_memory_type=$dsm" start ||
    { tail -20 "$D/server.log"; exit 1; }
}

if ((starts)); then
  echo "STEP starts"
  for ((i = 1; i <= starts; i++)); do
    t0="$(now)"
    start_server >/dev/null
    v="$("$PG/psql" -X -At -h "$S" -U postgres -c 'select 1' postgres)" ||
      { tail -20 "$D/server.log"; exit 1; }
    [[ "$v" == 1 ]] || { echo "start $i: select 1 printed '$v'"; exit 1; }
    echo "start_s $(since "$t0")"
    t0="$(now)"
    "$PG/pg_ctl" -D "$D" -m fast -w stop >/dev/null
    echo "stop_s $(since "$t0")"
  done
  echo "OK starts"
  rm -rf "$top"
  exit 0
fi

echo "STEP start"
t0="$(now)"
start_server
echo "start_s $(since "$t0")"
echo "OK start"

if ((queries)); then
  echo "STEP queries"
  "$PG/psql" -X -At -v ON_ERROR_STOP=1 -h "$S" -U postgres <<'SQL'
create table t(x int);
insert into t select generate_series(1, 100000);
select 'sum=' || sum(x) from t;
create index t_x on t(x);
select 'below=' || count(*) from t where x < 100;
begin; delete from t; rollback;
select 'after_rollback=' || count(*) from t;
set max_parallel_workers_per_gather = 2; set parallel_setup_cost = 0;
set parallel_tuple_cost = 0; set min_parallel_table_scan_size = 0;
select 'parallel=' || count(*) || ',' || sum(x) from t;
checkpoint;
SQL
  echo "OK queries"
fi

if ((${#tps[@]})); then
  echo "STEP pgbench"
  "$PG/pgbench" -h "$S" -U postgres -i -s "$scale" -q postgres 2>&1 | tail -1
  for run in "${tps[@]}"; do
    # shellcheck disable=SC2086  # the options are a word list
    v="$("$PG/pgbench" -h "$S" -U postgres ${run#*:} postgres 2>/dev/null |
      sed -n 's/^tps = \([0-9.]*\).*/\1/p')"
    [[ -n "$v" ]] || { echo "pgbench ${run#*:}: no tps"; exit 1; }
    echo "tps_${run%%:*} $v"
  done
  echo "OK pgbench"
fi

echo "STEP stop"
"$PG/pg_ctl" -D "$D" -m fast -w stop
echo "OK stop"
echo "SERVER LOG PROBLEMS:"
# A fast stop terminates backends that are still closing pgbench's
# connections: "FATAL: terminating connection due to administrator command"
# is that, natively too.
grep -E "WARNING|ERROR|FATAL|PANIC" "$D/server.log" |
  grep -v "terminating connection due to administrator command" || echo none
echo "END SERVER LOG"
rm -rf "$top"
