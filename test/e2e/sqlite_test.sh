#!/usr/bin/env bash
# End-to-end: SQLite under `seedsc do` (issue 17): Debian's sqlite3 CLI on a
# 100 MB database in the sandbox's overlay (WAL, an index, integrity_check,
# a rolled-back delete), and Python's sqlite3 module with four processes
# writing one database at once (fcntl record locks; WAL's shared -shm
# mapping; rollback journals).
#
#   bash test/e2e/sqlite_test.sh [--seedsc=PATH] [--only=REGEX]
#   bash test/e2e/sqlite_test.sh --seedsc=test/e2e/native_as_seedsc.sh --reference=native
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test/e2e/testlib.sh
source "$here/testlib.sh"
testlib_init "$@"

for prog in /usr/bin/sqlite3 /usr/bin/python3; do
  [[ -x "$prog" ]] || { echo "sqlite_test: $prog missing (see scripts/install-deps.sh)" >&2; exit 2; }
done
cd "$TESTLIB_TMP" || exit 2

echo "== sqlite3 CLI"
# 100,000 rows of 1,000 random bytes: a 104 MB file in /tmp (the overlay).
# ≈ 327,000 syscalls natively (strace -c: 199k pread64, 127k pwrite64): on
# kvm each is a VM exit (≈ 0.1-0.3 ms here), 116 s at load 20-30.
cli_timeout=150s
[[ "${TESTLIB_ARGS[platform]:-}" == kvm ]] && cli_timeout=600s
TESTLIB_TIMEOUT=$cli_timeout tcase cli_100mb_database \
  --out $'wal\n100000\nok\n100000|100000000\n104345600' -- \
  "${DO[@]}" /bin/bash -c 'set -e; db=$(mktemp -d)/big.db
    sqlite3 "$db" "pragma journal_mode=wal; create table t(i integer primary key, b blob);
      with recursive c(i) as (select 1 union all select i + 1 from c where i < 100000)
      insert into t select i, randomblob(1000) from c;
      select count(*) from t; create index tb on t(substr(b, 1, 8)); pragma integrity_check;
      begin; delete from t; rollback; select count(*), sum(length(b)) from t;
      pragma wal_checkpoint(truncate);" | grep -v "^0|0|0$"
    wc -c <"$db"'

echo "== python3 sqlite3, four writer processes (sqlite_writers.py)"
for mode in wal delete; do
  TESTLIB_TIMEOUT=60s tcase "python_writers_$mode" --out "0 (800, 4, 79600) ok" -- \
    "${DO[@]}" /usr/bin/python3 "$here/sqlite_writers.py" "$mode"
done

testlib_finish
