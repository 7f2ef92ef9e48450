#!/usr/bin/env bash
# End-to-end: Debian's PostgreSQL 15 server under `seedsc do` (issue 17).
# One sandbox run of postgres_workload.sh, as nobody (postgres refuses root):
# initdb, a postmaster on a unix socket (SysV + POSIX shared memory,
# huge_pages=try falling back, latches, background workers), psql queries
# (100,000 rows, an aggregate, an index, a rolled-back transaction, a
# parallel query through dynamic shared memory), pgbench -i and a short
# pgbench run, then pg_ctl stop -m fast. The same script runs on the host
# first, so the pgbench tps are printed side by side; then once more (no
# pgbench) in an OCI container (`seedsc run`, a bundle over the host root).
#
#   bash test/e2e/postgres_test.sh [--seedsc=PATH] [--only=REGEX]
#   bash test/e2e/postgres_test.sh --seedsc=test/e2e/native_as_seedsc.sh --reference=native
#
# Skips (exit 0, a SKIP line) only when the postgres binaries are missing;
# scripts/install-deps.sh installs them (postgresql-15).
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test/e2e/testlib.sh
source "$here/testlib.sh"
testlib_init "$@"

PG=/usr/lib/postgresql/15/bin
for prog in postgres initdb pg_ctl psql pgbench; do
  if [[ ! -x "$PG/$prog" ]]; then
    echo "SKIP postgres_test: $PG/$prog is missing (install postgresql-15: scripts/install-deps.sh)"
    exit 0
  fi
done
command -v setpriv >/dev/null || { echo "postgres_test: setpriv missing (util-linux)" >&2; exit 2; }

workload=("$here/postgres_workload.sh" --queries
  --tps "default_c1:-T 5" --tps "select_only_c4:-S -c 4 -j 4 -T 3")
# Debian's gVisor (2022) refuses nobody's shm_open in /dev/shm ("FATAL: could
# not open shared memory segment "/PostgreSQL.N": Permission denied"): its
# reference run uses System V segments for dynamic shared memory instead.
[[ "${TESTLIB_ARGS[reference]:-}" == runsc ]] && workload+=(--dsm sysv)

echo "== native (host kernel, for the tps side by side)"
# Natively in a tmpfs: the sandbox's /tmp is its overlay, in memory, where
# fsync has nothing to write back.
native_out="$(timeout -k 5s 120s "${workload[0]}" --tmp /dev/shm "${workload[@]:1}" 2>&1 </dev/null)"
native_status=$?
if ((native_status != 0)); then
  echo "postgres_test: the workload fails natively (exit $native_status); the test is wrong:" >&2
  tail -20 <<<"$native_out" >&2
  exit 2
fi

echo "== in the sandbox: $SEEDSC"
TESTLIB_TIMEOUT=150s tcase sandbox_run --grep '^OK stop$' -- "${DO[@]}" "${workload[@]}"
out="$TC_OUT"$'\n'"$TC_ERR"

has() { grep -qxF -- "$1" <<<"$out" && echo 1 || echo 0; }
check_ok initdb "$(has 'OK initdb')" "initdb -D DIR (as nobody)" "OK initdb" \
  "$(grep -E '^(OK|STEP) initdb$' <<<"$out" | tail -1)"
check_ok server_starts "$(has 'OK start')" "pg_ctl start -w" "OK start" \
  "$(grep -E '^(OK|STEP) start$' <<<"$out" | tail -1)"
check_eq sum_of_100000_rows "sum=5000050000" "$(grep -m1 '^sum=' <<<"$out")" "psql: select sum(x)"
check_eq index_scan "below=99" "$(grep -m1 '^below=' <<<"$out")" "psql: count(*) where x < 100"
check_eq rollback_keeps_rows "after_rollback=100000" "$(grep -m1 '^after_rollback=' <<<"$out")" \
  "psql: begin; delete; rollback"
check_eq parallel_query "parallel=100000,5000050000" "$(grep -m1 '^parallel=' <<<"$out")" \
  "psql: parallel seq scan (dynamic shared memory)"
check_ok pgbench "$(has 'OK pgbench')" "pgbench -i; pgbench -T 5; pgbench -S -c 4 -T 3" \
  "OK pgbench" "$(grep -E '^tps_' <<<"$out" | tr '\n' ' ')"
check_ok clean_stop "$(has 'OK stop')" "pg_ctl stop -m fast" "OK stop" \
  "$(grep -E '^(OK|STEP) stop$' <<<"$out" | tail -1)"
check_eq server_log_clean "none" "$(sed -n '/^SERVER LOG PROBLEMS:/,/^END SERVER LOG/p' <<<"$out" | sed '1d;$d')" \
  "server log: no WARNING/ERROR/FATAL/PANIC"

# The same session (queries, no pgbench) in an OCI container: `seedsc run`
# with a bundle over the host's root, read-only, a tmpfs on /tmp, and the
# capabilities the workload's setup needs (chown, then setpriv to nobody).
# The references have no `run`.
if [[ -z "${TESTLIB_ARGS[reference]:-}" ]]; then
  echo "== OCI container (seedsc run)"
  bundle="$TESTLIB_TMP/bundle"
  mkdir -p "$bundle"
  # The container's /tmp is a new tmpfs that hides the host's /tmp, where a
  # checkout (and so the target of the runfiles' symlink) may live: the
  # container runs a copy kept beside the bundle (bazel's TEST_TMPDIR).
  cp -L "$here/postgres_workload.sh" "$TESTLIB_TMP/postgres_workload.sh"
  "$SEEDSC" spec --bundle "$bundle" &&
    python3 - "$bundle/config.json" "$TESTLIB_TMP/postgres_workload.sh" <<'PY'
import json, sys
path, workload = sys.argv[1], sys.argv[2]
c = json.load(open(path))
c["root"] = {"path": "/", "readonly": True}
c["process"]["terminal"] = False
c["process"]["args"] = [workload, "--queries"]
c["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                    "options": ["nosuid", "nodev", "mode=1777"]})
for caps in c["process"]["capabilities"].values():
    caps += [x for x in ("CAP_CHOWN", "CAP_SETUID", "CAP_SETGID", "CAP_DAC_OVERRIDE",
                         "CAP_FOWNER") if x not in caps]
json.dump(c, open(path, "w"))
PY
  TESTLIB_TIMEOUT=120s tcase oci_container --grep '^sum=5000050000$' -- \
    "$SEEDSC" --root "$TESTLIB_TMP/state" run --bundle "$bundle" "pg-e2e-$$"
  check_eq oci_container_stops_cleanly $'OK stop\nnone' \
    "$(grep -E '^(OK|STEP) stop$' <<<"$TC_OUT" | tail -1)"$'\n'"$(
      sed -n '/^SERVER LOG PROBLEMS:/,/^END SERVER LOG/p' <<<"$TC_OUT" | sed '1d;$d')" \
    "seedsc run: pg_ctl stop -m fast, server log clean"
fi

echo
echo "pgbench tps (scale 1, unix socket, in memory)  native  sandbox  sandbox/native"
for name in default_c1 select_only_c4; do
  n="$(sed -n "s/^tps_$name //p" <<<"$native_out")"
  s="$(sed -n "s/^tps_$name //p" <<<"$out")"
  awk -v name="$name" -v n="${n:-0}" -v s="${s:-0}" \
    'BEGIN { printf "  %-42s %7.0f  %7.0f  %6.2f\n", name, n, s, (n > 0 ? s / n : 0) }'
done
testlib_finish
