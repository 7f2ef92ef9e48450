#!/usr/bin/env python3
"""`seedsc do` forwards the signals a user sends it to the command, as runsc
do does, and exits with the command's status (128+N when a signal N ended
it). A signal that comes while the sandbox boots is not lost: seedsc blocks
the forwarded signals from its start and holds them until the command has
started (runsc/cmd_do.cc, SignalForwarder).

Five cases, each a signal at another moment:
  term_running     SIGTERM to a running command: 143
  int_handled      SIGINT to a shell that traps it and exits 7: 7
  hup_before_kernel SIGHUP while seedsc has not made the sandbox's kernel
                   (SEEDSC_TEST_BOOT_STALL=do-create): held, then 129
  quit_before_exec SIGQUIT while the kernel is made and the command not yet
                   started (SEEDSC_TEST_BOOT_STALL=do): held, then 131
  term_thrice      three SIGTERMs while the boot stalls: held once, 143
A lost signal leaves the command (`sleep 600`) running: the case fails at
its deadline. Each waits for seedsc to block the signal (its SigBlk in
/proc) before sending it, never for a fixed time; the held cases check
seedsc's debug log for the hold, so a send that came late is not counted
as a hold.

    bazel test //test/oci:do_signal_test   (or: do_signal_test.py SEEDSC)
"""

import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import subreaper  # noqa: E402

SEEDSC = os.path.realpath(sys.argv[1])
DEADLINE = 90  # seconds for one case, on a loaded machine
STALL = 10  # seconds a held boot stalls: the sends come long before it ends
failures = []


def check(name, ok, detail):
    print("%s: %s%s" % ("ok" if ok else "FAIL", name, "" if ok else " (%s)" % detail))
    if not ok:
        failures.append(name)


def blocked(pid, sig):
    """Whether the process `pid`'s main thread blocks `sig` (SigBlk)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("SigBlk:"):
                    return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    except OSError:
        pass
    return False


def wait_until(pred, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    return False


def read_line(proc, timeout):
    """The first line of the command's stdout, or "" at the deadline."""
    end = time.monotonic() + timeout
    buf = b""
    while b"\n" not in buf and time.monotonic() < end:
        r, _, _ = select.select([proc.stdout], [], [], max(0.0, end - time.monotonic()))
        if not r:
            break
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            break
        buf += chunk
    return buf.split(b"\n")[0].decode(errors="replace")


def has_child(pid):
    """Whether `pid` has a child: seedsc do's first is the platform's
    zygote, forked as the sandbox's kernel is made."""
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                if f.read().strip():
                    return True
    except OSError:
        pass
    return False


def run_case(tmp, name, cmd, signals, want_rc, stall=None, ready_line=None, held=None,
             after_kernel=False):
    """Starts `seedsc do CMD`, sends `signals` (once seedsc blocks them, and
    with `after_kernel` once it made the sandbox's kernel; or once the
    command printed `ready_line`), and checks its status; `held`: the
    signals its debug log must show held until the command started. Its
    debug log goes into the directory `tmp`."""
    log = os.path.join(tmp, name + ".log")
    env = dict(os.environ)
    env.pop("SEEDSC_TEST_BOOT_STALL", None)
    if stall:
        env["SEEDSC_TEST_BOOT_STALL"] = stall
    argv = [SEEDSC, "--debug-log=" + log, "--boot-timeout=120s", "do", "--"] + cmd
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    if ready_line is not None:
        line = read_line(proc, DEADLINE)
        if line != ready_line:
            proc.kill()
            proc.wait()
            check(name, False, "the command never printed %r (got %r)" % (ready_line, line))
            return
    elif not wait_until(lambda: all(blocked(proc.pid, s) for s in signals) and
                        (not after_kernel or has_child(proc.pid)), DEADLINE):
        proc.kill()
        proc.wait()
        check(name, False, "seedsc never blocked %s%s" %
              (signals, " with its kernel made" if after_kernel else ""))
        return
    for s in signals:
        os.kill(proc.pid, s)
    try:
        rc = proc.wait(timeout=max(1, DEADLINE - (time.monotonic() - t0)))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        subreaper.kill_all()
        subreaper.leftovers(settle=0)
        check(name, False, "seedsc did not exit within %d s: the signal was lost" % DEADLINE)
        return
    err = proc.stderr.read().decode(errors="replace").strip()
    check(name + ": status", rc == want_rc, "exit status %s, want %d; stderr: %s" % (rc, want_rc, err))
    if held is not None:
        try:
            with open(log) as f:
                text = f.read()
        except OSError:
            text = ""
        got = [int(m) for m in re.findall(r"holding signal (\d+) until", text)]
        check(name + ": held until the command started", got == held,
              "holds in the debug log: %s, want %s" % (got, held))
    left = subreaper.leftovers()
    check(name + ": nothing left", left == [], "; ".join(left))


def run_cases(tmp):
    run_case(tmp, "term_running", ["/bin/sh", "-c", "echo ready; exec sleep 600"],
             [signal.SIGTERM], 128 + signal.SIGTERM, ready_line="ready")
    run_case(tmp, "int_handled",
             ["/bin/sh", "-c", "trap 'exit 7' INT; echo ready; while :; do sleep 0.1; done"],
             [signal.SIGINT], 7, ready_line="ready")
    run_case(tmp, "hup_before_kernel", ["/bin/sleep", "600"], [signal.SIGHUP],
             128 + signal.SIGHUP, stall="do-create:%d" % STALL, held=[signal.SIGHUP])
    run_case(tmp, "quit_before_exec", ["/bin/sleep", "600"], [signal.SIGQUIT],
             128 + signal.SIGQUIT, stall="do:%d" % STALL, held=[signal.SIGQUIT],
             after_kernel=True)
    run_case(tmp, "term_thrice", ["/bin/sleep", "600"], [signal.SIGTERM] * 3,
             128 + signal.SIGTERM, stall="do:%d" % STALL, held=[signal.SIGTERM])


def main():
    subreaper.become()
    # Under Bazel's $TEST_TMPDIR, and removed at the end all the same (also
    # when a case raises): nothing stays in /tmp when the script runs by hand.
    with tempfile.TemporaryDirectory(prefix="do_signal.",
                                     dir=os.environ.get("TEST_TMPDIR")) as tmp:
        run_cases(tmp)
    if failures:
        print("FAILED: %d checks: %s" % (len(failures), ", ".join(failures)))
        return 1
    print("PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
