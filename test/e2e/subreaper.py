"""What a command leaves behind on the host: run it under a child subreaper.

A test that must show that nothing of a sandbox outlives `seedsc` makes its
own Python process a child subreaper (prctl PR_SET_CHILD_SUBREAPER) before it
starts seedsc: whatever seedsc leaves (a sentry, a stub, a zygote, a
reaper) is re-parented to the test instead of the host's pid 1, and is
counted here.

    import subreaper
    subreaper.become()
    subprocess.run([seedsc, "do", "--", "/bin/true"])
    left = subreaper.leftovers()   # [] when nothing was left

Used by test/hostile/leftover_test.sh, test/hostile/trinity_soak.sh and
test/oci/boot_timeout_test.sh (each passes this directory to its Python).
"""

import ctypes
import os
import signal
import time

_PR_SET_CHILD_SUBREAPER = 36
_WALL = 0x40000000  # __WALL: reap clone children too


def become():
    """Makes this process a child subreaper, or raises OSError."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "prctl(PR_SET_CHILD_SUBREAPER): " + os.strerror(err))


def _parents():
    """{pid: ppid} of every process on the host (thread-group leaders)."""
    parents = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue  # gone meanwhile
        # The command name (field 2) may hold spaces and ')': parse after
        # its last ')'. Fields after it: state, ppid, ...
        parents[int(name)] = int(stat[stat.rfind(")") + 2:].split()[1])
    return parents


def descendants():
    """Pids of every living (or zombie) descendant of this process."""
    parents = _parents()
    me = os.getpid()
    found, frontier = [], [me]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found.extend(children)
        frontier.extend(children)
    return found


def _describe(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        cmd = ""
    return "%d %s" % (pid, cmd or "[exited]")


def kill_all():
    """SIGKILLs every descendant (a hung run's deadline); they stay to be reaped."""
    for pid in descendants():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def leftovers(settle=2.0):
    """Reaps what the command left behind; returns one line per process.

    Children that exit within `settle` seconds (a sandbox's processes may
    end just after seedsc itself) are reaped and counted; whatever still
    lives after that is named, killed and reaped too, so that a leftover
    that would have lived on is counted, not missed.
    """
    left = []
    deadline = time.time() + settle
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG | _WALL)
        except ChildProcessError:
            return left  # no child at all
        if pid:
            left.append("%d [exited]" % pid)
            continue
        if time.time() >= deadline:
            break
        time.sleep(0.05)
    alive = descendants()
    left.extend(_describe(pid) for pid in alive)
    kill_all()
    end = time.time() + 10
    while time.time() < end:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG | _WALL)
        except ChildProcessError:
            break
        if not pid:
            time.sleep(0.05)
    return left
