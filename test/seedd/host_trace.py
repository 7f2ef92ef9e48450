"""What a set of host processes and their descendants ask the host kernel to
create, read from a private tracefs instance (issue 10: "nothing on the invoke
path creates a namespace, cgroup, network device or seccomp program").

    with HostTrace("seedd_path") as t:
        t.follow(pids)            # these processes, every thread, and what they fork
        ... calls ...
        t.stop()
    t.creations()                 # [(what, tgid, comm, detail)]

The instance is this run's own (/sys/kernel/tracing/instances/NAME.PID): other
tests tracing at the same time, and the global buffer, are untouched. Events
are filtered in the kernel to the followed tasks (set_event_pid with the
event-fork option, so a task forked by a followed one is followed too).

Counted: execve (sched_process_exec), unshare with any CLONE_NEW* flag, clone
with a CLONE_NEW* flag, seccomp(SECCOMP_SET_MODE_FILTER) and
prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER), and cgroup directories made
(cgroup_mkdir), each with the thread (comm) that did it. clone3's flags are in
the caller's memory, out of a trace event's reach, and network devices have no
trace event here: the caller checks the live processes' namespaces
(namespaces_of) and the host's links itself.
"""
import os
import re

TRACEFS = "/sys/kernel/tracing"

CLONE_NEW = {
    0x00020000: "CLONE_NEWNS", 0x02000000: "CLONE_NEWCGROUP", 0x04000000: "CLONE_NEWUTS",
    0x08000000: "CLONE_NEWIPC", 0x10000000: "CLONE_NEWUSER", 0x20000000: "CLONE_NEWPID",
    0x40000000: "CLONE_NEWNET", 0x00000080: "CLONE_NEWTIME",
}
CLONE_NEW_MASK = sum(CLONE_NEW) & ~0x80  # clone()'s 0x80 is CSIGNAL's range, not NEWTIME
UNSHARE_NEW_MASK = sum(CLONE_NEW)
SECCOMP_SET_MODE_FILTER = 1
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

EVENTS = [
    "sched/sched_process_fork",
    "sched/sched_process_exec",
    "syscalls/sys_enter_unshare",
    "syscalls/sys_enter_clone",
    "syscalls/sys_enter_seccomp",
    "syscalls/sys_enter_prctl",
    "cgroup/cgroup_mkdir",
]

# "  comm-123     (   120) [001] ..... 12.345678: event: fields"
LINE = re.compile(r"^\s*(?P<comm>.+?)-(?P<tid>\d+)\s+\(\s*(?P<tgid>[\d-]+)\)\s+\[\d+\]\s+\S+\s+"
                  r"(?P<ts>[\d.]+):\s+(?P<event>\w+):\s*(?P<fields>.*)$")


def _write(path, value, append=False):
    # os.write: Python's append mode seeks to the end, which tracefs refuses (EINVAL).
    fd = os.open(path, os.O_WRONLY | (os.O_APPEND if append else os.O_TRUNC))
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


class TraceUnavailable(Exception):
    """The host kernel offers no tracefs instance with these events (the reason)."""


def mount_tracefs():
    if not os.path.exists(os.path.join(TRACEFS, "instances")):
        os.makedirs(TRACEFS, exist_ok=True)
        if os.system(f"mount -t tracefs nodev {TRACEFS} 2>/dev/null") != 0:
            raise TraceUnavailable(f"cannot mount tracefs on {TRACEFS}")
    missing = [ev for ev in EVENTS if not os.path.isdir(os.path.join(TRACEFS, "events", ev))]
    if missing:
        raise TraceUnavailable(f"the host kernel has no trace events {', '.join(missing)}")


def tids_of(pid):
    try:
        return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


def namespaces_of(pid):
    """{'mnt': 'mnt:[4026531841]', ...} of a live process ({} once it is gone)."""
    out = {}
    try:
        for ns in os.listdir(f"/proc/{pid}/ns"):
            out[ns] = os.readlink(f"/proc/{pid}/ns/{ns}")
    except OSError:
        return {}
    return out


class HostTrace:
    def __init__(self, name):
        mount_tracefs()
        self.dir = os.path.join(TRACEFS, "instances", f"{name}.{os.getpid()}")
        self.lines = []

    def __enter__(self):
        os.mkdir(self.dir)
        _write(self._p("buffer_size_kb"), "4096")
        _write(self._p("options/record-tgid"), "1")
        _write(self._p("options/event-fork"), "1")
        return self

    def __exit__(self, *exc):
        self.stop()
        try:
            os.rmdir(self.dir)
        except OSError:
            pass

    def _p(self, rel):
        return os.path.join(self.dir, rel)

    def follow(self, pids):
        """Traces these processes (all their threads) and everything they fork from now on."""
        for pid in pids:
            for tid in tids_of(pid):
                _write(self._p("set_event_pid"), f"{tid}\n", append=True)
        for ev in EVENTS:
            _write(self._p(f"events/{ev}/enable"), "1")
        _write(self._p("tracing_on"), "1")

    def stop(self):
        if self.lines or not os.path.isdir(self.dir):
            return
        _write(self._p("tracing_on"), "0")
        with open(self._p("trace")) as f:
            self.lines = [l.rstrip("\n") for l in f if not l.startswith("#")]
        with open(self._p("per_cpu/cpu0/stats")) as f:
            self.overrun = "overrun: 0" not in f.read()

    def events(self):
        """[(event, tgid, comm, fields dict)] in time order."""
        out = []
        for line in self.lines:
            m = LINE.match(line)
            if not m:
                continue
            fields = dict(re.findall(r"(\w+)[:=]\s*(\S+)", m["fields"]))
            tgid = int(m["tgid"]) if m["tgid"].lstrip("-").isdigit() else int(m["tid"])
            out.append((m["event"], tgid, m["comm"].strip(), fields, m["fields"]))
        return out

    def creations(self):
        """What the followed tasks made: [(what, tgid, comm, detail)]."""
        out = []
        for event, tgid, comm, f, raw in self.events():
            if event == "sched_process_exec":
                out.append(("exec", tgid, comm, raw))
            elif event == "sys_unshare":
                flags = int(f.get("unshare_flags", "0"), 16)
                if flags & UNSHARE_NEW_MASK:
                    out.append(("namespace", tgid, comm, f"unshare {raw}"))
            elif event == "sys_clone":
                flags = int(f.get("clone_flags", "0"), 16)
                if flags & CLONE_NEW_MASK:
                    out.append(("namespace", tgid, comm, f"clone {raw}"))
            elif event == "sys_seccomp":
                if int(f.get("op", "0"), 16) == SECCOMP_SET_MODE_FILTER:
                    out.append(("seccomp", tgid, comm, raw))
            elif event == "sys_prctl":
                if (int(f.get("option", "0"), 16) == PR_SET_SECCOMP
                        and int(f.get("arg2", "0"), 16) == SECCOMP_MODE_FILTER):
                    out.append(("seccomp", tgid, comm, raw))
            elif event == "cgroup_mkdir":
                out.append(("cgroup", tgid, comm, raw))
        return out
