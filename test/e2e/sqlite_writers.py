# N processes insert rows into one SQLite database at once, each insert its
# own transaction (fcntl record locks; in WAL mode the -shm wal-index that
# every process maps MAP_SHARED). Prints
#   <writers that failed> (<rows>, <distinct writers>, <sum of i>) <integrity_check>
# which is "0 (W*R, W, W*R*(R-1)/2) ok" when no commit was lost.
#
#   python3 sqlite_writers.py wal|delete [WRITERS [ROWS]]
import os, shutil, sqlite3, sys, tempfile
mode = sys.argv[1]
writers = int(sys.argv[2]) if len(sys.argv) > 2 else 4
rows = int(sys.argv[3]) if len(sys.argv) > 3 else 200
tmp = tempfile.mkdtemp(prefix="sqlite_writers.")  # removed at the end
db = os.path.join(tmp, "c.db")
c = sqlite3.connect(db)
c.execute(f"pragma journal_mode={mode}")
c.execute("create table t(w, i)")
c.commit()
c.close()
# The writers start together (they wait for the pipe to close), so their
# first opens of the -wal and -shm files race: issue 17's lost commits came
# from two such opens that found two different files to lock.
go_r, go_w = os.pipe()
pids = []
for w in range(writers):
    pid = os.fork()
    if pid == 0:
        os.close(go_w)
        os.read(go_r, 1)
        c = sqlite3.connect(db, timeout=60)
        for i in range(rows):
            with c:
                c.execute("insert into t values (?, ?)", (w, i))
            if i % 50 == 0:
                c.execute("select count(*) from t").fetchone()
        c.close()
        os._exit(0)
    pids.append(pid)
os.close(go_w)
failed = sum(os.waitpid(p, 0)[1] != 0 for p in pids)
c = sqlite3.connect(db)
print(failed, c.execute("select count(*), count(distinct w), sum(i) from t").fetchone(),
      c.execute("pragma integrity_check").fetchone()[0])
c.close()
shutil.rmtree(tmp)
