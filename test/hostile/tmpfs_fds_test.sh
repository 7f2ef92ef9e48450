#!/usr/bin/env bash
# A guest that makes tmpfs files without end must not spend the sentry's
# host fds (issue 16: in a 30-minute root trinity run the sentry's host fds
# grew from 111 to 4,071, 2,890 of them tmpfs memfds: each tmpfs file
# with data, memfd, System V segment and shared anonymous mapping holds
# one). seedsc runs with RLIMIT_NOFILE 1024 (a budget of 512 memfds). The
# guest first opens 900 new empty files at once: an empty file holds no
# host fd, so all of them open (LTP open04 and creat05 open files up to the
# guest's own RLIMIT_NOFILE). Then it writes a byte into new files in its overlay
# until one fails and, with all of them kept:
#   - the failure is ENOSPC (a full tmpfs), long before the host limit;
#   - a new process still starts (fork + exec: the sentry's own fds for a
#     task, a stub), a pipe still works;
#   - memfd_create says ENFILE and a shared anonymous mmap ENOMEM, as Linux
#     says when it is out of files and memory, and the sentry lives on;
# and after it removes them, files and memfds can be made again (the
# budget is given back). Before the budget (sentry/fs/tmpfs/tmpfs.h:
# TmpfsMemfdLimit) the files took the sentry's last fds: fork failed with
# EAGAIN and the sandbox could start nothing more.
#
#   tmpfs_fds_test.sh --seedsc=PATH [--platform=NAME]
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test/e2e/testlib.sh
source "$here/../e2e/testlib.sh"  # check_eq, check_ok, testlib_finish (no testlib_init)
testlib_seedsc_and_platform "$@"  # sets seedsc, platform

guest='
import errno, mmap, os, subprocess, sys
def err(e):
    return errno.errorcode.get(e.errno, str(e.errno))
d = "/tmp/tmpfs-fds-test"
os.makedirs(d, exist_ok=True)
empty = []
try:
    while len(empty) < 900:
        empty.append(os.open("%s/e%d" % (d, len(empty)), os.O_RDWR | os.O_CREAT, 0o644))
    print("EMPTY %d" % len(empty), flush=True)
except OSError as e:
    print("EMPTY %s after %d" % (err(e), len(empty)), flush=True)
for i, fd in enumerate(empty):
    os.close(fd)
    os.unlink("%s/e%d" % (d, i))
n = 0
try:
    while n < 5000:
        with open("%s/f%d" % (d, n), "w") as f:
            f.write("x")
        n += 1
    print("CREATE none", flush=True)
except OSError as e:
    print("CREATE %s" % err(e), flush=True)
print("COUNT %d" % n, flush=True)
try:
    r = subprocess.run(["/bin/sh", "-c", "echo pipe-ok | cat"], capture_output=True, text=True)
    print("SPAWN %s" % r.stdout.strip(), flush=True)
except OSError as e:
    print("SPAWN %s" % err(e), flush=True)
try:
    os.close(os.memfd_create("x"))
    print("MEMFD ok", flush=True)
except OSError as e:
    print("MEMFD %s" % err(e), flush=True)
try:
    mmap.mmap(-1, 4096, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS).close()
    print("SHMAP ok", flush=True)
except OSError as e:
    print("SHMAP %s" % err(e), flush=True)
for i in range(n):
    os.unlink("%s/f%d" % (d, i))
try:
    os.close(os.memfd_create("x"))
    open("%s/again" % d, "w").close()
    print("AGAIN ok", flush=True)
except OSError as e:
    print("AGAIN %s" % err(e), flush=True)
'
out="$(timeout -k 5 120 prlimit --nofile=1024:1024 "$seedsc" "--platform=$platform" do -- \
  python3 -c "$guest" 2>&1)"
rc=$?
field() { grep -a "^$1 " <<<"$out" | head -1 | cut -d' ' -f2-; }
check_eq "seedsc ends with the guest's status" 0 "$rc" "seedsc do under RLIMIT_NOFILE 1024 (output: $(tail -3 <<<"$out" | tr '\n' ';'))"
check_eq "900 empty files open at once, beyond the tmpfs fd budget" 900 "$(field EMPTY)" "open(O_CREAT) in the overlay, all kept open (budget: 512 host fds)"
check_eq "making files with data ends with ENOSPC" ENOSPC "$(field CREATE)" "open(O_CREAT) + write of one byte in the overlay, again and again"
count="$(field COUNT)"
check_ok "files made: some, fewer than the host fd limit" \
  "$([[ "$count" =~ ^[0-9]+$ ]] && ((count >= 100 && count < 1024)) && echo 1 || echo 0)" \
  "files made before ENOSPC" "100 <= n < 1024" "${count:-none}"
check_eq "a new process still starts" pipe-ok "$(field SPAWN)" "fork + exec of sh -c 'echo pipe-ok | cat' with the files kept"
check_eq "memfd_create at the budget: ENFILE" ENFILE "$(field MEMFD)" "memfd_create with the files kept"
check_eq "shared anonymous mmap at the budget: ENOMEM" ENOMEM "$(field SHMAP)" "mmap(MAP_SHARED|MAP_ANONYMOUS) with the files kept"
check_eq "after removing them, files and memfds again" ok "$(field AGAIN)" "memfd_create and open(O_CREAT) after unlinking the files"
testlib_finish
