"""What the sfork tests read of host processes, from /proc.

    from host_procs import alive_in, stat
    st = stat(pid)        # (state, ppid, pgid), None once it is gone
    left = alive_in(pgid) # the members of a process group not exited
"""
import os


def stat(pid):
    """(state, ppid, pgid) of `pid`, or None once it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rfind(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[2])

def pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]

def pidfd_pids(pid):
    """The processes `pid` holds a pidfd of (fdinfo's Pid line)."""
    found = set()
    try:
        names = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return found
    for name in names:
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, name)) != "anon_inode:[pidfd]":
                continue
            with open("/proc/%d/fdinfo/%s" % (pid, name)) as f:
                for line in f:
                    if line.startswith("Pid:") and int(line.split()[1]) > 0:
                        found.add(int(line.split()[1]))
        except (OSError, ValueError):
            pass
    return found

def alive_in(group):
    """The processes of process group `group` that have not exited."""
    found = []
    for pid in pids():
        st = stat(pid)
        if st is not None and st[2] == group and st[0] not in "ZX":
            found.append(pid)
    return found

def is_stub(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().split(b"\0")[0] == b"seedsc-stub"
    except OSError:
        return False

def in_zygote_loop(pid):
    """A zygote waits for children to reap (wait4, 61), or naps while it
    has none (nanosleep, 35); a parked stub waits in a futex."""
    try:
        with open("/proc/%d/syscall" % pid) as f:
            return f.read().split()[0] in ("61", "35")
    except (OSError, IndexError):
        return False
