#!/usr/bin/env bash
# Nothing of a sandbox outlives `seedsc do`: its stubs and zygote are killed
# and reaped by seedsc itself, never left as zombies for the host's pid 1
# (issue 16: "stub memfd processes are left as zombies"). seedsc runs under
# a child subreaper (python3, prctl PR_SET_CHILD_SUBREAPER), so whatever it
# leaves behind becomes the wrapper's child; the wrapper (test/e2e/subreaper.py)
# counts what it reaps after seedsc has exited and what still lives 2 s
# later (named, then killed): it must be nothing, for a guest that exits
# at once, one that was killed, and one with threads and a child process.
#
# Nor does any stub outlive its sentry (kill_case): a sandbox whose guest
# runs threads and processes, one of them forking without end, has its
# sentry (seedsc do itself) SIGKILLed, alone or just after its zygote (as a
# kill of every process in the sandbox's cgroup does it: the zygote can
# then not end its stubs itself). Within 10 s no stub may live: the zygote
# dies with the sentry, every stub with the zygote (PR_SET_PDEATHSIG:
# platform/stub/injector.h, TieToParent).
#
#   leftover_test.sh --seedsc=PATH [--platform=NAME]
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test/e2e/testlib.sh
source "$here/../e2e/testlib.sh"  # check_eq, check_ok, testlib_finish (no testlib_init)
testlib_seedsc_and_platform "$@"  # sets seedsc, platform
leftover_case() {  # NAME CMD...
  local name="$1"
  shift
  local out
  out="$(timeout 60 python3 - "$here/../e2e" "$seedsc" "--platform=$platform" "$@" <<'PY'
import subprocess, sys
sys.path.insert(0, sys.argv[1])
import subreaper
subreaper.become()
seedsc, plat, *cmd = sys.argv[2:]
subprocess.run([seedsc, plat, "do", "--"] + cmd, stdout=subprocess.DEVNULL,
               stderr=subprocess.DEVNULL)
left = subreaper.leftovers()
print(len(left), *(["(" + "; ".join(left) + ")"] if left else []))
PY
)"
  check_eq "$name: nothing left behind" 0 "$out" \
    "host processes left after seedsc --platform=$platform do -- $*"
}
leftover_case "a guest that exits" /bin/true
leftover_case "a guest killed by a signal" /bin/sh -c 'kill -9 $$'
leftover_case "threads and a child process" /usr/bin/python3 -c '
import os, threading, time
threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
if os.fork() == 0:
    time.sleep(30)
os._exit(0)'

# kill_case NAME WHAT: WHAT is "sentry" or "zygote,sentry" (in that order).
kill_case() {
  local out
  out="$(timeout 120 python3 - "$here/../e2e" "$seedsc" "--platform=$platform" "$2" <<'PY'
import os, select, signal, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
import subreaper
subreaper.become()
seedsc, plat, what = sys.argv[2:5]
GUEST = r"""
import os, threading, time
def nap():
    while True:
        time.sleep(0.01)
for _ in range(3):
    threading.Thread(target=nap, daemon=True).start()
for child in range(2):
    if os.fork() == 0:
        threading.Thread(target=nap, daemon=True).start()
        while child == 0:  # one process forks without end
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
        nap()
print("ready", flush=True)
nap()
"""

def live_stubs():
    """{pid: argv} of the descendants that are stubs and have not exited."""
    found = {}
    for pid in subreaper.descendants():
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")[:-1]
            with open("/proc/%d/stat" % pid) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if argv and argv[0] == b"seedsc-stub" and state not in "ZX":
            found[pid] = b" ".join(argv).decode()
    return found

def parent(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return -1  # gone since

sandbox = subprocess.Popen([seedsc, plat, "do", "--", "/usr/bin/python3", "-c", GUEST],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
ready, _, _ = select.select([sandbox.stdout], [], [], 60)
line = sandbox.stdout.readline() if ready else b""
stubs = live_stubs()
# Every stub is a fork of the zygote (the same command line): the zygote is
# the one whose parent is the sentry.
zygotes = [pid for pid in stubs if parent(pid) == sandbox.pid]
if line != b"ready\n" or len(zygotes) != 1 or len(stubs) < 4:
    print("no sandbox to kill: guest said %r, stubs %s" % (line, stubs))
else:
    for victim in what.split(","):
        try:
            os.kill(zygotes[0] if victim == "zygote" else sandbox.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # gone already with what was killed before
        time.sleep(0.2)
    deadline = time.time() + 10
    while live_stubs() and time.time() < deadline:
        time.sleep(0.1)
    left = live_stubs()
    print(len(left), *(["(" + "; ".join("%d %s" % kv for kv in left.items()) + ")"]
                       if left else []))
sandbox.kill()
sandbox.wait()
subreaper.leftovers(settle=0)  # kills and reaps whatever is still there
PY
)"
  check_eq "$1: no stub left" 0 "$out" \
    "stubs alive 10 s after SIGKILL of the $2 of seedsc --platform=$platform do"
}
kill_case "the sentry killed" sentry
kill_case "the zygote killed, then the sentry" zygote,sentry

# A guest process's stub SIGKILLed from the host: its platform context dies,
# the guest sees a SIGKILL (seedsc do exits 137) and the why is a
# --debug line only, never on seedsc's stderr, which is the guest's (issue
# 16: "platform context died" lines reached stderr without --debug). With
# --debug the line is in the debug log: the path this case means was taken.
# stub_kill_case [SEEDSC FLAGS...]: prints "<seedsc's status> <stderr lines
# naming the death> <debug log lines naming it>".
stub_kill_case() {
  timeout 120 python3 - "$here/../e2e" "$seedsc" "--platform=$platform" "$@" <<'PY'
import os, select, signal, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
import subreaper
subreaper.become()
seedsc, plat, *flags = sys.argv[2:]
log = next((f.split("=", 1)[1] for f in flags if f.startswith("--debug-log=")), None)
# It naps 10 ms at a time: a task notices its dead context when it next
# goes back to user mode (a task asleep in the sentry notices only then).
GUEST = "import time\nprint('ready', flush=True)\nwhile True: time.sleep(0.01)"
sandbox = subprocess.Popen([seedsc, plat] + flags + ["do", "--", "/usr/bin/python3", "-c", GUEST],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
ready, _, _ = select.select([sandbox.stdout], [], [], 60)
line = sandbox.stdout.readline() if ready else b""
def stat(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()
victims = []
for pid in subreaper.descendants():
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv0 = f.read().split(b"\0")[0]
        st = stat(pid)
    except (OSError, IndexError):
        continue
    # The guest's stub: a stub that is not the zygote (the sentry's child).
    if argv0 == b"seedsc-stub" and st[0] not in "ZX" and int(st[1]) != sandbox.pid:
        victims.append(pid)
if line != b"ready\n" or not victims:
    print("no-guest-stub", line, victims)
else:
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    try:
        _, err = sandbox.communicate(timeout=20)
        rc = sandbox.returncode
    except subprocess.TimeoutExpired:
        sandbox.kill()
        _, err = sandbox.communicate()
        rc = "hung"
    said = sum(b"platform context died" in l for l in err.splitlines())
    logged = 0
    if log:
        with open(log, "rb") as f:
            logged = sum(b"platform context died" in l for l in f.read().splitlines())
    print(rc, said, logged)
subreaper.leftovers(settle=0)
PY
}
out="$(stub_kill_case)"
check_eq "a guest's stub killed: the guest is SIGKILLed, stderr says nothing of it" "137 0 0" \
  "$out" "seedsc --platform=$platform do python3 (naps), its stub SIGKILLed from the host"
dlog="$(mktemp "${TEST_TMPDIR:-/tmp}/leftover-debug.XXXXXX")"
out="$(stub_kill_case --debug "--debug-log=$dlog")"
rm -f "$dlog"
check_eq "a guest's stub killed, --debug: the debug log says why" "137 0 1" \
  "$(awk '{print $1, $2, ($3 > 0)}' <<<"$out")" \
  "seedsc --debug --debug-log=F do ..., its stub SIGKILLed: status, stderr lines, log has it"
testlib_finish
