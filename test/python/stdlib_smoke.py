"""Exercises the standard-library modules issue 3 lists; prints one line per
module and exits non-zero on the first failure. Run natively and under
`seedsc do /usr/bin/python3 stdlib_smoke.py`."""
import asyncio
import concurrent.futures
import datetime
import decimal
import hashlib
import json
import mmap
import multiprocessing
import os
import pty
import re
import select
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import zlib


def check(name, cond):
    if not cond:
        print(f"FAIL {name}", flush=True)
        sys.exit(1)
    print(f"ok {name}", flush=True)


def square(x):
    return x * x


async def aio(tmp):
    async def handle(r, w):
        w.write((await r.readline()).upper())
        await w.drain()
        w.close()

    path = os.path.join(tmp, "aio.sock")
    srv = await asyncio.start_unix_server(handle, path)
    r, w = await asyncio.open_unix_connection(path)
    w.write(b"ping\n")
    line = await r.readline()
    w.close()
    srv.close()
    await srv.wait_closed()
    if os.path.exists(path):
        os.unlink(path)
    p = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "print(6*7)", stdout=asyncio.subprocess.PIPE)
    out, _ = await p.communicate()
    await asyncio.sleep(0.01)
    return line, out, p.returncode


def pty_fork():
    """pty.fork(): the child runs on the replica as its controlling
    terminal; the parent reads what it prints through the master (epoll
    for readiness, then EIO once the child's end is closed)."""
    pid, fd = pty.fork()
    if pid == 0:
        name = os.ttyname(0)
        os.write(1, f"child {name} {os.isatty(1)} {os.tcgetpgrp(0) == os.getpid()}\n".encode())
        os._exit(5)
    ep = select.epoll()
    ep.register(fd, select.EPOLLIN)
    out = b""
    while ep.poll(10):
        try:
            data = os.read(fd, 1024)
        except OSError:  # EIO: the replica's last fd closed
            break
        if not data:
            break
        out += data
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return out, os.waitstatus_to_exitcode(status)


def main():
    check("json", json.loads(json.dumps({"a": [1, 2.5, None]})) == {"a": [1, 2.5, None]})
    check("re", re.sub(r"(\w+)@(\w+)", r"\2 at \1", "me@host") == "host at me")
    check("hashlib", hashlib.sha256(b"abc").hexdigest().startswith("ba7816bf"))
    check("zlib", zlib.decompress(zlib.compress(b"x" * 10000)) == b"x" * 10000)
    check("struct", struct.unpack("<IhQ", struct.pack("<IhQ", 1, -2, 3)) == (1, -2, 3))
    check("datetime", datetime.datetime(2024, 2, 29) + datetime.timedelta(days=1) ==
          datetime.datetime(2024, 3, 1) and datetime.datetime.now().year >= 2024)
    decimal.getcontext().prec = 50
    check("decimal", str(decimal.Decimal(1) / decimal.Decimal(7))[:12] == "0.1428571428")
    db = sqlite3.connect(":memory:")
    db.execute("create table t(x)")
    db.executemany("insert into t values (?)", [(i,) for i in range(100)])
    check("sqlite3-memory", db.execute("select sum(x) from t").fetchone()[0] == 4950)
    tmp = tempfile.mkdtemp()
    fdb = sqlite3.connect(os.path.join(tmp, "f.db"))
    fdb.execute("create table t(x)")
    fdb.execute("insert into t values ('persisted')")
    fdb.commit()
    fdb.close()
    check("sqlite3-file", sqlite3.connect(os.path.join(tmp, "f.db")).execute(
        "select x from t").fetchone()[0] == "persisted")
    results = []
    lock = threading.Lock()

    def work(i):
        with lock:
            results.append(i)
    ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    ev = threading.Event()
    threading.Timer(0.01, ev.set).start()
    check("threading", sorted(results) == list(range(8)) and ev.wait(5))
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        check("concurrent.futures-threads", list(ex.map(square, range(10))) ==
              [x * x for x in range(10)])
    with concurrent.futures.ProcessPoolExecutor(2) as ex:
        check("concurrent.futures-processes", list(ex.map(square, range(5))) ==
              [0, 1, 4, 9, 16])
    out = subprocess.run(["/bin/sh", "-c", "echo $((6*7)); exit 3"], capture_output=True)
    check("subprocess", out.stdout == b"42\n" and out.returncode == 3)
    with multiprocessing.Pool(2) as pool:
        check("multiprocessing-pool", pool.map(square, range(6)) == [0, 1, 4, 9, 16, 25])
    q = multiprocessing.Queue()
    p = multiprocessing.Process(target=q.put, args=("from child",))
    p.start()
    got = q.get(timeout=10)
    p.join()
    check("multiprocessing-process", got == "from child" and p.exitcode == 0)
    line, out, rc = asyncio.run(aio(tmp))
    check("asyncio", line == b"PING\n" and out == b"42\n" and rc == 0)
    a, b = socket.socketpair()
    a.sendall(b"pair")
    srv = socket.create_server(("127.0.0.1", 0))
    c = socket.create_connection(srv.getsockname())
    conn, _ = srv.accept()
    c.sendall(b"tcp")
    check("socket", b.recv(4) == b"pair" and conn.recv(3) == b"tcp")
    r, w = os.pipe()
    os.write(w, b"x")
    ep = select.epoll()
    ep.register(r, select.EPOLLIN)
    check("select", select.select([r], [], [], 1)[0] == [r] and ep.poll(1) == [(r, select.EPOLLIN)]
          and select.poll().poll(0) == [])
    got = []
    signal.signal(signal.SIGUSR1, lambda s, f: got.append(s))
    os.kill(os.getpid(), signal.SIGUSR1)
    signal.setitimer(signal.ITIMER_REAL, 0.01)
    signal.signal(signal.SIGALRM, lambda s, f: got.append(s))
    signal.sigtimedwait([], 0.05) if hasattr(signal, "sigtimedwait") else None
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=5)
    while len(got) < 2 and datetime.datetime.now() < deadline:
        signal.pause() if False else threading.Event().wait(0.01)
    check("signal", got == [signal.SIGUSR1, signal.SIGALRM])
    with tempfile.NamedTemporaryFile("w+", dir=tmp) as f:
        f.write("temp")
        f.flush()
        check("tempfile", open(f.name).read() == "temp")
    shutil.copytree(tmp, tmp + "-copy")
    shutil.rmtree(tmp + "-copy")
    check("shutil", not os.path.exists(tmp + "-copy") and shutil.which("sh") is not None)
    with open(os.path.join(tmp, "m"), "wb+") as f:
        f.write(b"\0" * 4096)
        f.flush()
        m = mmap.mmap(f.fileno(), 4096)
        m[0:5] = b"hello"
        m.flush()
        f.seek(0)
        anon = mmap.mmap(-1, 8192)
        anon[100] = 7
        check("mmap", f.read(5) == b"hello" and anon[100] == 7)
    shutil.rmtree(tmp)
    out, rc = pty_fork()
    check("pty", re.fullmatch(rb"child /dev/pts/\d+ True True\r\n", out) is not None and rc == 5)
    print("ALL OK", flush=True)


if __name__ == "__main__":
    main()
