#!/usr/bin/env python3
"""Sends malformed ttrpc traffic to a live shim socket and prints, per probe,
the status code the shim answered: "NAME CODE". Used by containerd_test.sh,
which then checks the shim still serves containerd.

    shim_robustness.py /run/containerd/s/<hash>

With "delete ID" it sends one Task.Delete of container ID instead and
prints "CODE MESSAGE" of the answer (ctr refuses to send a Delete of a
task that is not stopped: this reaches the shim's own refusal).

    shim_robustness.py /run/containerd/s/<hash> delete ID
"""
import socket
import struct
import sys

from pb_wire import field_bytes, fields, recv_exact


def request(service, method, payload=b""):
    return (field_bytes(1, service.encode()) + field_bytes(2, method.encode()) +
            field_bytes(3, payload))


def frame(stream, data, typ=1, length=None):
    n = len(data) if length is None else length
    return struct.pack(">IIBB", n, stream, typ, 0) + data


def status_code(body):
    """The code in Response.status (field 1), 0 when absent."""
    for num, value in fields(body):
        if num == 1:
            return dict(fields(value)).get(1, 0)
    return 0


def status_message(body):
    """The message in Response.status (field 2 of google.rpc.Status)."""
    for num, value in fields(body):
        if num == 1:
            return dict(fields(value)).get(2, b"").decode(errors="replace")
    return ""


def recv_frame(s):
    n, stream, typ, _ = struct.unpack(">IIBB", recv_exact(s, 10))
    return stream, typ, recv_exact(s, n)


def main():
    path = sys.argv[1]
    if path.startswith("unix://"):
        path = path[len("unix://"):]
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    task = "containerd.task.v2.Task"
    if sys.argv[2:3] == ["delete"]:
        s.sendall(frame(1, request(task, "Delete", field_bytes(1, sys.argv[3].encode()))))
        stream, typ, body = recv_frame(s)
        print(status_code(body), status_message(body))
        return
    probes = [
        ("oversized", frame(1, b"x" * ((4 << 20) + 1))),
        ("not_a_request", frame(3, b"\xff\xff\xff")),
        ("even_stream", frame(4, request(task, "State"))),
        ("unknown_service", frame(5, request("no.Such", "State"))),
        ("unknown_method", frame(7, request(task, "Bogus"))),
        ("bad_payload", frame(9, request(task, "State", b"\x0a\x64"))),
        ("unknown_id", frame(11, request(task, "State", field_bytes(1, b"nope")))),
    ]
    for name, data in probes:
        s.sendall(data)
        stream, typ, body = recv_frame(s)
        print(name, status_code(body), flush=True)
    # A data frame (ttrpc >= 1.2) gets no answer; the next request does.
    s.sendall(frame(13, b"junk", typ=3) + frame(15, request(task, "Connect")))
    stream, typ, body = recv_frame(s)
    print("after_junk_connect", status_code(body), "stream", stream)


if __name__ == "__main__":
    main()
