#!/usr/bin/python3
"""A Fork caller that gives up (sfork_test.sh): it asks the seed for a fork
with a ttrpc timeout, and a stdout fifo nobody reads yet, so the seed waits
in its open; when the timeout passes without an answer it does what a
caller does that gives up (closes its connection, removes the control
socket path it chose), and only then lets the seed's open finish by
opening the fifo's read end. If the seed forked anyway, the fork's guest
holds the fifo's write end: the read end never sees end of file.

  fork_gave_up.py SEED_SOCKET SEED_ID NEW_ID FORK_SOCKET FIFO TIMEOUT_MS

Prints one line: "gave up; end of file" (nothing of a fork holds the
fifo), "gave up; fifo held open" or "answered: ..." (the seed answered in
time, which the test does not expect).
"""
import os
import select
import socket
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "containerd"))
from pb_wire import field_bytes, varint  # noqa: E402

seed_sock, seed_id, new_id, fork_sock, fifo, timeout_ms = sys.argv[1:7]
timeout = int(timeout_ms) / 1000

stdio = field_bytes(1, b"/dev/null") + field_bytes(2, fifo.encode()) + field_bytes(3, b"/dev/null")
fork = (field_bytes(1, seed_id.encode()) + field_bytes(2, new_id.encode()) +
        field_bytes(3, fork_sock.encode()) + field_bytes(4, stdio))
req = (field_bytes(1, b"seedvisor.control.v1.Control") + field_bytes(2, b"Fork") +
       field_bytes(3, fork) + varint(4 << 3) + varint(int(timeout * 1e9)))
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
c.connect(seed_sock)
c.sendall(struct.pack(">IIBB", len(req), 1, 1, 0) + req)
r, _, _ = select.select([c], [], [], timeout)
if r:
    print(f"answered: {c.recv(4096)!r}")
    sys.exit(1)
# Giving up, as seedsc fork or fri would.
c.close()
try:
    os.unlink(fork_sock)
except FileNotFoundError:
    pass
# The fifo's reader comes late (as a containerd shim's may).
fd = os.open(fifo, os.O_RDONLY)
while True:
    r, _, _ = select.select([fd], [], [], 15)
    if not r:
        print("gave up; fifo held open")
        break
    if os.read(fd, 4096) == b"":
        print("gave up; end of file")
        break
