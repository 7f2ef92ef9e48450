#!/usr/bin/env bash
# A guest blocked writing to a full host pipe (its stdout, which seedsc was
# given and nobody reads) is still reachable by signals: a handler runs and
# SIGKILL ends it. The host fd stays blocking (its O_NONBLOCK is shared
# with the user's shell), and a plain write(2) on it waited in the host,
# where no guest signal reaches the sentry thread: the guest could be
# neither interrupted nor killed, and `seedsc do` never ended (issue 16).
#
# Each case: seedsc's stdout is a pipe of one page that this script never
# reads. The guest's init forks a child that writes 1 MiB to it; once the
# pipe is full (the child is blocked, or about to block, in its write)
# this script sends a byte to the init's stdin, and the init signals the
# child and reports how it ended:
#   handler: SIGUSR1, whose handler in the child exits 3;
#   sigkill: SIGKILL.
# The signal comes from inside the sandbox: what is tested is the blocked
# write, not how seedsc forwards signals.
#
#   stdio_block_test.sh --seedsc=PATH [--platform=NAME]
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test/e2e/testlib.sh
source "$here/../e2e/testlib.sh"  # check_eq, check_ok, testlib_finish (no testlib_init)
testlib_seedsc_and_platform "$@"  # sets seedsc, platform

guest='
import os, signal, sys
sig = signal.SIGUSR1 if sys.argv[1] == "handler" else signal.SIGKILL
child = os.fork()
if child == 0:
    def on_usr1(s, frame):
        os._exit(3)
    signal.signal(signal.SIGUSR1, on_usr1)
    os.write(1, b"x" * (1 << 20))
    os._exit(4)
os.read(0, 1)  # the pipe is full
os.kill(child, sig)
_, st = os.waitpid(child, 0)
if os.WIFSIGNALED(st):
    os.write(2, b"signal %d\n" % os.WTERMSIG(st))
else:
    os.write(2, b"exit %d\n" % os.WEXITSTATUS(st))
os._exit(0)
'

# run CASE: prints "<full> <exit status> <stderr, one line>".
run() {
  python3 - "$seedsc" "$platform" "$guest" "$1" <<'PY'
import fcntl, os, signal, subprocess, sys, termios, time
seedsc, platform, guest = sys.argv[1:4]
r, w = os.pipe()
fcntl.fcntl(w, 1031, 4096)  # F_SETPIPE_SZ: one page fills at once
size = fcntl.fcntl(w, 1032)  # F_GETPIPE_SZ
cmd = [seedsc] + (["--platform=" + platform] if platform else []) + \
    ["do", "--", "python3", "-c", guest, sys.argv[4]]
p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=w, stderr=subprocess.PIPE)
os.close(w)
# The guest's write has filled the pipe: it blocks (or is about to) for
# room that never comes, as this end is never read. Python's start-up in
# the sandbox takes seconds under load: a generous bound, met at once.
full = False
deadline = time.monotonic() + 120
while time.monotonic() < deadline and p.poll() is None:
    n = fcntl.ioctl(r, termios.FIONREAD, b"\0\0\0\0")
    if int.from_bytes(n, "little") >= size:
        full = True
        break
    time.sleep(0.02)
try:
    _, err = p.communicate(input=b"g" if full else b"", timeout=60)
    rc = p.returncode
except subprocess.TimeoutExpired:
    p.kill()
    _, err = p.communicate()
    rc = "hung"
line = err.decode(errors="replace").strip().replace("\n", "; ")
print(int(full), rc, line or "-")
PY
}

read -r full rc err <<<"$(run handler)"
check_eq "handler: the guest filled its stdout pipe" 1 "$full" "a pipe of one page, never read"
check_eq "handler: SIGUSR1's handler ran in the blocked writer" "0 exit 3" "$rc $err" \
  "seedsc do's status and the init's report on its child"

read -r full rc err <<<"$(run sigkill)"
check_eq "sigkill: the guest filled its stdout pipe" 1 "$full" "a pipe of one page, never read"
check_eq "sigkill: SIGKILL ended the blocked writer" "0 signal 9" "$rc $err" \
  "seedsc do's status and the init's report on its child"

testlib_finish
