"""FRI over its socket, every call a client outside seedd makes (issue 10):
Create a level-0 sandbox over the host root, Pause it into a seed, Fork it
paused, Activate the fork, Pause and Destroy, each seen in List and Stats,
and the errors fri.proto promises (status codes and a message naming the
field). seedd's own gateway calls fri::Sandboxes in process, so without this
nothing drives Create, Pause or Destroy through the wire."""

import time

import pb_wire

# google.rpc.Code values fri.proto names.
OK, INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION = 0, 3, 5, 6, 9


def call(fri_call, address, method, payload):
    """(status code, status message, response payload) of one FRI call."""
    resp = dict(pb_wire.fields(fri_call(address, method, payload)))
    status = dict(pb_wire.fields(resp.get(1, b"")))
    return status.get(1, OK), status.get(2, b"").decode(errors="replace"), resp.get(2, b"")


def listed(fri_call, address):
    """id -> (parent, status) of every sandbox FRI List names."""
    _, _, payload = call(fri_call, address, "List", b"")
    out = {}
    for f, info in pb_wire.fields(payload):
        if f == 1:
            d = dict(pb_wire.fields(info))
            out[d.get(1, b"").decode()] = (d.get(2, b"").decode(), d.get(3, b"").decode())
    return out


def alive(pid):
    """pid runs (a zombie has been killed and does not count)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def id_req(sid):
    return pb_wire.field_bytes(1, sid.encode())


def fri_lifecycle_checks(fri_call, address, check):
    l0, child = "fri-l0-e2e", "fri-fork-e2e"
    host_root = (pb_wire.field_bytes(1, b"/bin/sleep") + pb_wire.field_bytes(1, b"1000") +
                 pb_wire.field_bytes(3, b"/"))
    create = id_req(l0) + pb_wire.field_bytes(3, host_root) + pb_wire.field_bytes(
        5, pb_wire.field_bytes(1, b"level") + pb_wire.field_bytes(2, b"0"))
    code, msg, payload = call(fri_call, address, "Create", create)
    pid, fork_pid = dict(pb_wire.fields(payload)).get(1, 0), 0
    check(code == OK and pid > 0, f"FRI Create boots a level-0 sandbox over the host root ({code} {msg} pid {pid})")
    try:
        got = listed(fri_call, address).get(l0)
        check(got == ("", "running"), f"FRI List: the new sandbox runs, no parent ({got})")
        code, msg, _ = call(fri_call, address, "Create", create)
        check(code == ALREADY_EXISTS and l0 in msg, f"FRI Create of a taken id: ALREADY_EXISTS naming it ({code} {msg})")
        code, msg, _ = call(fri_call, address, "Create", id_req("bad/id") + pb_wire.field_bytes(3, host_root))
        check(code == INVALID_ARGUMENT and "id" in msg, f"FRI Create of a malformed id: INVALID_ARGUMENT ({code} {msg})")
        code, msg, _ = call(fri_call, address, "Create", id_req("fri-rel") + pb_wire.field_bytes(
            3, pb_wire.field_bytes(1, b"sleep")))
        check(code == INVALID_ARGUMENT and "host_root.args" in msg,
              f"FRI Create with a relative program: INVALID_ARGUMENT naming host_root.args ({code} {msg})")

        fork = (pb_wire.field_bytes(1, l0.encode()) + pb_wire.field_bytes(2, child.encode()) +
                pb_wire.varint(4 << 3) + pb_wire.varint(1))
        code, msg, _ = call(fri_call, address, "Fork", fork)
        check(code == FAILED_PRECONDITION, f"FRI Fork of a running sandbox: FAILED_PRECONDITION ({code} {msg})")

        code, msg, _ = call(fri_call, address, "Pause", id_req(l0))
        check(code == OK, f"FRI Pause makes the level-0 sandbox a seed ({code} {msg})")
        got = listed(fri_call, address).get(l0)
        check(got == ("", "paused"), f"FRI List: the seed is paused ({got})")

        code, msg, payload = call(fri_call, address, "Fork", fork)
        fork_pid = dict(pb_wire.fields(payload)).get(1, 0)
        check(code == OK and fork_pid > 0,
              f"FRI Fork (paused = true) of the seed ({code} {msg})")
        got = listed(fri_call, address).get(child)
        check(got == (l0, "paused"), f"FRI List: the fork names its seed and is paused ({got})")
        code, msg, _ = call(fri_call, address, "Fork", fork)
        check(code == ALREADY_EXISTS, f"FRI Fork into a taken id: ALREADY_EXISTS ({code} {msg})")

        code, msg, _ = call(fri_call, address, "Activate", id_req(child))
        check(code == OK, f"FRI Activate resumes the fork ({code} {msg})")
        got = listed(fri_call, address).get(child)
        check(got == (l0, "running"), f"FRI List: the activated fork runs ({got})")
        code, msg, _ = call(fri_call, address, "Activate", id_req(child))
        check(code == FAILED_PRECONDITION and "not paused" in msg,
              f"FRI Activate of a running sandbox: FAILED_PRECONDITION ({code} {msg})")

        code, msg, payload = call(fri_call, address, "Stats", id_req(l0))
        stats = [dict(pb_wire.fields(s)) for f, s in pb_wire.fields(payload) if f == 1]
        check(len(stats) == 1 and stats[0].get(5) == 1 and stats[0].get(6) == 1 and stats[0].get(3, 0) > 0,
              f"FRI Stats of the seed: one child, one fork served, its PSS ({code} {msg} {stats})")

        code, msg, _ = call(fri_call, address, "Pause", id_req(child))
        check(code == OK, f"FRI Pause of the running fork ({code} {msg})")
        check(listed(fri_call, address).get(child) == (l0, "paused"), "FRI List: the fork is paused again")
    finally:
        for sid in (child, l0):
            call(fri_call, address, "Destroy", id_req(sid))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(alive(p) for p in (pid, fork_pid) if p > 0):
        time.sleep(0.1)
    left = [p for p in (pid, fork_pid) if p > 0 and alive(p)]
    check(not left, f"FRI Destroy kills both sandbox processes ({left})")
    gone = listed(fri_call, address)
    check(child not in gone and l0 not in gone, f"FRI Destroy forgets both ({sorted(gone)})")
    code, msg, _ = call(fri_call, address, "Destroy", id_req(l0))
    check(code == NOT_FOUND and l0 in msg, f"FRI Destroy of an unknown id: NOT_FOUND naming it ({code} {msg})")
    code, msg, _ = call(fri_call, address, "Stats", id_req(child))
    check(code == NOT_FOUND, f"FRI Stats of an unknown id: NOT_FOUND ({code} {msg})")
