#!/bin/bash
# --boot-timeout: a sandbox that never comes up (the test hook
# SEEDSC_TEST_BOOT_STALL stalls `seedsc boot` before it reports ready, or
# `seedsc do` before it starts the command) makes create, run and do fail
# within the deadline with one line naming what they waited for, and leaves
# no process, state directory, cgroup or socket behind; `seedsc start`
# against a sandbox that never answers (its sentry stopped with SIGSTOP)
# fails the same way. A stall shorter than the deadline only delays: the
# container runs. A create killed while its sandbox boots leaves no sandbox
# running. The "do" stall runs under the sentry's seccomp filter, as
# the exec it stands for would: the watchdog must work within that policy.
#
#   bazel test //test/oci:boot_timeout_test   (or: boot_timeout_test.sh SEEDSC)
set -u
# check_eq, check_ok, delete_all_containers, testlib_finish (no testlib_init;
# it sets SEEDSC="")
# shellcheck source=test/e2e/testlib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/testlib.sh"
SEEDSC="$(realpath "${1:?usage: boot_timeout_test.sh SEEDSC}")"
BUSYBOX=/bin/busybox
T="$(mktemp -d /tmp/boottmo.XXXXXX)"
R="$T/s"
CG="seedsc-boottmo-$$"
cleanup() {
  delete_all_containers "$SEEDSC" "$R"
  rmdir /sys/fs/cgroup/*/"$CG"/* /sys/fs/cgroup/*/"$CG" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
check_re() {  # name regex actual
  local ok=0
  [[ "$3" =~ $2 ]] && ok=1
  check_ok "$1" "$ok" "host check" "matching $2" "$3"
}
[[ -x "$BUSYBOX" ]] || { echo "FAIL: $BUSYBOX (busybox-static) is missing"; exit 1; }

ROOTFS="$T/rootfs"
mkdir -p "$ROOTFS"/{bin,tmp,proc,dev}
cp "$BUSYBOX" "$ROOTFS/bin/busybox"
ln -s busybox "$ROOTFS/bin/echo"
B="$T/b"
mkdir -p "$B"
"$SEEDSC" spec --bundle "$B" || { echo "FAIL: seedsc spec"; exit 1; }
python3 - "$B/config.json" "$ROOTFS" "$CG" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["terminal"] = False
c["process"]["args"] = ["echo", "hello"]
c["root"]["path"] = sys.argv[2]
# Its own cgroup (with a limit, so that seedsc makes it): none may be left.
c["linux"]["cgroupsPath"] = sys.argv[3] + "/c"
c["linux"].setdefault("resources", {})["pids"] = {"limit": 100}
json.dump(c, open(sys.argv[1], "w"), indent=1)
PY
# The parent cgroup $CG: seedsc makes it for the first sandboxes, and must
# remove it with them; then the test makes it, as kubelet makes a pod's
# cgroup before its containers', and seedsc must leave it even when empty
# (review 35).
parents() { ls -d /sys/fs/cgroup/{memory,cpu,cpuacct,pids,cpuset}/"$CG" 2>/dev/null | wc -l; }
make_parent() {
  local ctl
  for ctl in memory cpu cpuacct pids cpuset; do
    [[ -d /sys/fs/cgroup/$ctl ]] && mkdir -p "/sys/fs/cgroup/$ctl/$CG"
  done
  # A new v1 cpuset needs cpus and mems before a child can be used.
  if [[ -d /sys/fs/cgroup/cpuset/$CG ]]; then
    cat /sys/fs/cgroup/cpuset/cpuset.cpus >"/sys/fs/cgroup/cpuset/$CG/cpuset.cpus"
    cat /sys/fs/cgroup/cpuset/cpuset.mems >"/sys/fs/cgroup/cpuset/$CG/cpuset.mems"
  fi
}

# What a run left: processes whose command line names this test's dir,
# state directories, cgroups, control sockets.
leftovers() {
  local procs dirs cgs
  procs="$(pgrep -f -- "$T" | grep -vx "$$" | wc -l)"
  dirs="$(find "$R" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)"
  cgs="$(find /sys/fs/cgroup/*/"$CG" -mindepth 1 -type d 2>/dev/null | wc -l)"
  echo "processes=$procs state_dirs=$dirs cgroups=$cgs sockets=$(find "$T" -type s | wc -l)"
}
NONE="processes=0 state_dirs=0 cgroups=0 sockets=0"
# What a run left once it is gone, or after 15 s: a killed sandbox's last
# host processes exit (and leave their cgroups) when a loaded host runs
# them, not within a fixed nap.
settled_leftovers() {
  local i left
  for ((i = 0; i < 150; i++)); do
    left="$(leftovers)"
    [[ "$left" == "$NONE" ]] && break
    sleep 0.1
  done
  echo "$left"
}

# timed NAME CMD...: runs CMD, records its status, stderr and duration (s).
timed() {
  local name="$1"; shift
  local t0=$SECONDS
  "$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null
  echo "$? $((SECONDS - t0))" >"$T/$name.rc"
}

echo "== create: the boot never reports ready"
timed create env SEEDSC_TEST_BOOT_STALL=boot:60 "$SEEDSC" --root "$R" --boot-timeout=2s \
  create --bundle "$B" c1
read -r rc secs <"$T/create.rc"
check_eq "create fails" 1 "$rc"
check_re "create gives up at its deadline (2 s, not 60)" '^[2-9]$|^1[0-9]$' "$secs"
check_eq "create says it in one line" 1 "$(wc -l <"$T/create.err")"
check_re "create names what it waited for" \
  '^seedsc: the sandbox did not come up within 2s \(--boot-timeout\): `seedsc boot` \(sandbox pid [0-9]+\) never reported ready.*; killed it$' \
  "$(cat "$T/create.err")"
check_eq "create leaves nothing behind" "$NONE" "$(settled_leftovers)"
check_eq "create removes the parent cgroup it made" 0 "$(parents)"
check_eq "seedsc list is empty" "" "$("$SEEDSC" --root "$R" list --quiet 2>&1)"

echo "== run: the same through run"
timed run env SEEDSC_TEST_BOOT_STALL=boot:60 "$SEEDSC" --root "$R" --boot-timeout=2s \
  run --bundle "$B" c2
read -r rc secs <"$T/run.rc"
check_eq "run fails" 1 "$rc"
check_re "run gives up at its deadline" '^[2-9]$|^1[0-9]$' "$secs"
check_re "run says it in one line" '^seedsc: the sandbox did not come up within 2s \(--boot-timeout\)' \
  "$(cat "$T/run.err")"
check_eq "run's stderr is that one line" 1 "$(wc -l <"$T/run.err")"
check_eq "run leaves nothing behind" "$NONE" "$(settled_leftovers)"

check_eq "run removes the parent cgroup it made" 0 "$(parents)"

make_parent
PARENTS="$(parents)"
check_ok "the test makes its parent cgroup" "$([[ "$PARENTS" -gt 0 ]] && echo 1 || echo 0)" \
  "mkdir /sys/fs/cgroup/*/$CG" "one per controller" "$PARENTS"
echo "== a stall shorter than the deadline only delays"
timed slow env SEEDSC_TEST_BOOT_STALL=boot:1 "$SEEDSC" --root "$R" --boot-timeout=30s \
  run --bundle "$B" c3
read -r rc secs <"$T/slow.rc"
check_eq "run after a 1 s stall: status" 0 "$rc"
check_eq "run after a 1 s stall: output" hello "$(cat "$T/slow.out")"
check_eq "run after a 1 s stall: nothing left" "$NONE" "$(leftovers)"
check_eq "run and delete leave the parent cgroup the test made" "$PARENTS" "$(parents)"

echo "== start: the sandbox never answers Start (its sentry stopped by the host)"
"$SEEDSC" --root "$R" create --bundle "$B" --pid-file "$T/c4.pid" c4 >/dev/null 2>&1 </dev/null
sentry="$(cat "$T/c4.pid" 2>/dev/null)"
if [[ -n "$sentry" ]] && kill -STOP "$sentry"; then
  timed start "$SEEDSC" --root "$R" --boot-timeout=2s start c4
  read -r rc secs <"$T/start.rc"
  check_eq "start fails" 1 "$rc"
  check_re "start gives up at its deadline" '^[2-9]$|^1[0-9]$' "$secs"
  check_eq "start says it in one line" \
    'seedsc: container "c4": its process did not start within 2s (--boot-timeout): the sandbox never answered Start' \
    "$(cat "$T/start.err")"
  "$SEEDSC" --root "$R" delete --force c4 >/dev/null 2>&1 </dev/null
  kill -CONT "$sentry" 2>/dev/null
  check_eq "delete after a failed start leaves nothing behind" "$NONE" "$(settled_leftovers)"
else
  check_ok "create c4 for the start case" 0 "seedsc create, kill -STOP" "its sentry stopped" "sentry pid '$sentry'"
fi

echo "== create killed while its sandbox boots: the sandbox ends itself"
# A create that goes away before it has recorded its sandbox (a test run's
# timeout, a Ctrl-C) leaves a sandbox that no state names: its pid 1 (with
# create's command line) and sentry lived on under the host's pid 1. The
# boot stalls 3 s and then finds no create: create is killed once the
# sandbox boots (its sentry has joined its pids cgroup, before the stall),
# not after a guessed time.
env SEEDSC_TEST_BOOT_STALL=boot:3 "$SEEDSC" --root "$R" create --bundle "$B" c5 \
  </dev/null >/dev/null 2>"$T/c5.err" &
creator=$!
# cgroup files report a size of 0 (kernfs): read it, not test -s. The
# sandbox stalls 3 s after that, and create lives until the stall ends:
# a generous bound only for a machine that never gets there.
booting=0
t0=$SECONDS
while ((SECONDS - t0 < 60)); do
  [[ -n "$(cat /sys/fs/cgroup/pids/"$CG"/c/cgroup.procs 2>/dev/null)" ]] && { booting=1; break; }
  kill -0 "$creator" 2>/dev/null || break
  sleep 0.02
done
check_ok "create c5's sandbox boots (its sentry in its pids cgroup)" "$booting" \
  "cat /sys/fs/cgroup/pids/$CG/c/cgroup.procs" "a pid, while create runs" \
  "$(cat /sys/fs/cgroup/pids/"$CG"/c/cgroup.procs 2>&1 | head -1); create $(kill -0 "$creator" 2>/dev/null && echo running || echo gone: "$(cat "$T/c5.err")")"
kill -KILL "$creator"
wait "$creator" 2>/dev/null
t0=$SECONDS
while ((SECONDS - t0 < 60)); do
  [[ "$(pgrep -f -- "$T" | grep -vx "$$" | wc -l)" == 0 ]] && break
  sleep 0.1
done
check_eq "a killed create's sandbox ends" "processes=0" "$(leftovers | cut -d' ' -f1)"
# Its pid 1 (counted above: it has create's command line) removed its
# cgroups before it exited: no state names them for delete.
check_eq "a killed create's sandbox removes its cgroups" "cgroups=0" "$(leftovers | cut -d' ' -f3)"
check_eq "and leaves the parent cgroup the test made" "$PARENTS" "$(parents)"
"$SEEDSC" --root "$R" delete c5 >/dev/null 2>&1 </dev/null
check_eq "then delete removes its state dir and socket" "$NONE" "$(leftovers)"

echo "== do: the command never starts"
# A child subreaper around seedsc do: whatever outlives it comes back here.
out="$(python3 - "$(dirname "${BASH_SOURCE[0]}")/../e2e" "$SEEDSC" "$T" <<'PY'
import os, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
import subreaper
subreaper.become()
seedsc, t = sys.argv[2:4]
env = dict(os.environ, SEEDSC_TEST_BOOT_STALL="do:60")
t0 = time.time()
p = subprocess.run([seedsc, "--boot-timeout=2s", "do", "/bin/true"], env=env,
                   stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=50)
secs = int(time.time() - t0)
left = subreaper.leftovers()
open(t + "/do.err", "w").write(p.stderr)
open(t + "/do.left", "w").write("; ".join(left))
print(p.returncode, secs, len(left))
PY
)"
read -r rc secs left <<<"$out"
check_eq "do fails as when it cannot create the sandbox" 128 "$rc"
check_re "do gives up at its deadline" '^[2-9]$|^1[0-9]$' "$secs"
check_eq "do says it in one line" 1 "$(wc -l <"$T/do.err")"
check_re "do names what it waited for" \
  '^seedsc: do: /bin/true did not start within 2s \(--boot-timeout\): still starting the command \(its exec\); killed the sandbox$' \
  "$(cat "$T/do.err")"
check_eq "do leaves no host process behind" 0 "$left" "host processes left: $(cat "$T/do.left")"

echo "== a bad --boot-timeout is one usage line"
err="$("$SEEDSC" --root "$R" --boot-timeout=soon list 2>&1)"
check_eq "bad --boot-timeout" 'seedsc: --boot-timeout: "soon" is not a duration (e.g. 60s, 2m; 0 waits forever)' "$err"

testlib_finish
