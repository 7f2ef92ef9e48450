#!/usr/bin/python3
"""A paused fork by a Fork RPC on the seed's control socket (sfork_test.sh),
to read what `seedsc fork` does not print: where the fork's time went.

  fork_rpc.py SEED_SOCKET SEED_ID NEW_ID FORK_SOCKET [STDIN STDOUT]

Prints one line: "pid=PID handoff=NS sentry_fork=NS" (the ForkResponse's
sandbox process and two of its phases, in ns), or "error: ...". The fork
is known to no --root: the caller kills PID. Without STDIN and STDOUT
(paths) it is paused, with /dev/null for its stdio; with them it runs,
its stderr /dev/null.
"""
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "containerd"))
from pb_wire import field_bytes, fields, recv_exact, varint  # noqa: E402


seed_sock, seed_id, new_id, fork_sock = sys.argv[1:5]
stdin, stdout = (sys.argv[5], sys.argv[6]) if len(sys.argv) > 6 else ("/dev/null", "/dev/null")
stdio = field_bytes(1, stdin.encode()) + field_bytes(2, stdout.encode()) + field_bytes(3, b"/dev/null")
paused = len(sys.argv) <= 6
fork = (field_bytes(1, seed_id.encode()) + field_bytes(2, new_id.encode()) +
        field_bytes(3, fork_sock.encode()) + field_bytes(4, stdio) +
        (varint(5 << 3) + varint(1) if paused else b""))
req = (field_bytes(1, b"seedvisor.control.v1.Control") + field_bytes(2, b"Fork") +
       field_bytes(3, fork) + varint(4 << 3) + varint(20 * 10**9))
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
c.connect(seed_sock)
c.sendall(struct.pack(">IIBB", len(req), 1, 1, 0) + req)
length, _, _, _ = struct.unpack(">IIBB", recv_exact(c, 10))
resp = dict(fields(recv_exact(c, length)))
if 1 in resp:  # Response.status
    print("error:", dict(fields(resp[1])).get(2, b"").decode())
    sys.exit(1)
pid, phases = 0, {}
for num, v in fields(resp.get(2, b"")):
    if num == 1:
        pid = v
    elif num == 2:
        p = dict(fields(v))
        phases[p.get(1, b"").decode()] = p.get(2, 0)
print(f"pid={pid} handoff={phases.get('handoff', 0)} sentry_fork={phases.get('sentry_fork', 0)}")
