#!/bin/bash
# No stub of a forked sandbox outlives its sentry (issue 16), as
# test/hostile/leftover_test.sh checks for a booted one. A seed whose guest
# runs a process and a shell that execs without end is forked; the fork's
# sentry is SIGKILLed, alone or just after the fork's zygote, or its anchor
# is, alone or just before the sentry; within 10 s no host process of the
# fork's process group may live, nor its sentry.
#
# A fork's stubs cannot die with their parent: every one of them (the
# fork's zygote, the copies of the seed's stubs, the guest forks of those)
# is a child of the seed's zygote, which outlives every fork
# (PR_SET_PDEATHSIG fires on the parent's death only). Their tie is the
# fork's anchor, leader of their process group, which kills the group once
# the forked sentry's end of its life line closes (sentry/sfork/spares.h).
# Should the anchor die first (the OOM killer could pick it: it shares the
# sentry's pages), the forked sentry, which watches its pidfd, kills that
# group and ends the sandbox: the anchor SIGKILLed alone, or 0.2 s before
# the sentry, leaves nothing either (old seedsc: the fork's zygote, stub
# copies and guest stubs all stayed, and the sentry ran on). (The anchor
# keeps the sentry's oom_score_adj: lowering it to -1000 needed a floor
# that would have let every sentry make itself unkillable.) Not covered:
# the anchor and the sentry killed at the same moment.
#
#   fork_leftover_test.sh SEEDSC [PLATFORM]
set -u
SEEDSC="$(realpath "${1:?usage: fork_leftover_test.sh SEEDSC [PLATFORM]}")"
PLATFORM="${2:-systrap}"
T="$(mktemp -d /tmp/forkleftover.XXXXXX)"
ROOT="$T/state"
S=("$SEEDSC" --root "$ROOT" --platform="$PLATFORM")
pass=0
fail=0
cleanup() {
  for id in $("${S[@]}" list --quiet 2>/dev/null); do
    "${S[@]}" delete --force "$id" >/dev/null 2>&1
  done
  rm -rf "$T"
}
trap cleanup EXIT
ok() { echo "PASS: $1"; pass=$((pass + 1)); }
bad() { echo "FAIL: $1"; fail=$((fail + 1)); }

if [[ "$PLATFORM" == kvm ]]; then
  source "$(dirname "$0")/../kvm_skip.sh"
  kvm_skip_unless_usable "$SEEDSC" fork_leftover_test
fi

# A process that sleeps, and a shell that forks and execs without end: the
# fork makes stubs of its own while it runs.
source "$(dirname "$0")/busybox_bundle.sh"
export PYTHONPATH="$(dirname "$0")"  # host_procs.py
B="$T/bundle"
busybox_bundle "$SEEDSC" "$B" '["/bin/sh", "-c", "sleep 1000 & while :; do /bin/true; done"]' \
  sh sleep true || exit 1

"${S[@]}" create --bundle "$B" seed </dev/null >/dev/null 2>"$T/seed.err" &&
  "${S[@]}" start seed 2>>"$T/seed.err" && sleep 0.5 && "${S[@]}" pause seed 2>>"$T/seed.err" ||
  { echo "FAIL: a paused seed"; cat "$T/seed.err"; exit 1; }

# kill_case NAME WHAT: forks the seed into a new sandbox, then SIGKILLs
# WHAT ("sentry"; "zygote,sentry": the fork's zygote first; "anchor",
# "anchor,sentry") 0.2 s apart and counts the fork's host processes still
# alive 10 s later (its anchor's group: the anchor, the fork's zygote, its
# stubs; and its sentry, which must end with its anchor).
n=0
kill_case() {
  n=$((n + 1))
  local id="f$n"
  if ! "${S[@]}" fork seed "$id" </dev/null >/dev/null 2>"$T/$id.err"; then
    bad "$1: fork"; cat "$T/$id.err"; return
  fi
  sleep 0.5  # the fork's guest runs (and execs) a while
  local out
  out="$(timeout 60 python3 - "$ROOT/$id/state.json" "$2" <<'PY'
import json, os, signal, sys, time
from host_procs import alive_in, in_zygote_loop, is_stub, pidfd_pids, stat
state, what = sys.argv[1], sys.argv[2]
sentry = json.load(open(state))["sandboxPid"]

# The fork's group: its anchor's, which its zygote and stub copies joined;
# the forked sentry holds a pidfd of each of those.
# (A stub of the guest's may exit between two reads: stat() is None then.)
groups = {st[2] for st in (stat(p) for p in pidfd_pids(sentry) if is_stub(p)) if st is not None}
group = next(iter(groups)) if len(groups) == 1 else -1
# /proc/PID/syscall names no call while the zygote runs between two. On
# ptrace a guest's stub stopped at its own wait4 looks the same there
# (state "t", a tracing stop): not a zygote.
def zygote(p):
    st = stat(p)
    return in_zygote_loop(p) and st is not None and st[0] != "t"
for _ in range(50):
    stubs = [p for p in alive_in(group) if is_stub(p)]
    zygotes = [p for p in stubs if zygote(p)]
    if len(zygotes) == 1:
        break
    time.sleep(0.1)
if len(stubs) < 2 or len(zygotes) != 1:
    print("no fork to kill: sentry %d, stub groups %s, stubs %s, zygotes %s"
          % (sentry, groups, stubs, zygotes))
    sys.exit(0)
# The anchor leads the group (the group bears its pid).
victims = {"zygote": zygotes[0], "anchor": group, "sentry": sentry}
for victim in what.split(","):
    try:
        os.kill(victims[victim], signal.SIGKILL)
    except ProcessLookupError:
        pass
    time.sleep(0.2)

def left():
    st = stat(sentry)
    return alive_in(group) + ([sentry] if st is not None and st[0] not in "ZX" else [])

deadline = time.time() + 10
while left() and time.time() < deadline:
    time.sleep(0.1)
gone = left()
print(len(gone), *(["(" + "; ".join("%d %s" % (p, stat(p)) for p in gone) + ")"] if gone else []))
PY
)"
  if [[ "$out" == 0 ]]; then ok "$1: nothing of the fork left"; else
    bad "$1: host processes of the fork alive 10 s after SIGKILL of its $2: $out"
  fi
  "${S[@]}" delete --force "$id" >/dev/null 2>&1
}
# A spare of the seed whose anchor died is never handed to a fork: the
# seed's spares' anchors (its children that lead a group of their own, not
# its zygote) are SIGKILLed; a fork then must run on a spare of its own, and
# nothing of the dead anchors' groups (their zygotes and stub copies, a
# fork made ahead) may live 10 s later. Old seedsc handed one to the fork:
# it ran unanchored (the dead anchor's group stayed alive, the fork's), or
# with the forked sentry watching its anchor, ended at once.
spare_case() {
  local groups
  groups="$(timeout 30 python3 - "$ROOT/seed/state.json" <<'PY'
import json, os, signal, sys, time
from host_procs import is_stub, pids, stat
seed = json.load(open(sys.argv[1]))["sandboxPid"]

def anchors():
    found = []
    for p in pids():
        st = stat(p)
        if st and st[1] == seed and st[2] == p and st[0] not in "ZX" and not is_stub(p):
            found.append(p)
    return found

deadline = time.time() + 10
while not anchors() and time.time() < deadline:
    time.sleep(0.1)
found = anchors()
for a in found:
    os.kill(a, signal.SIGKILL)
print(*found)
PY
)"
  if [[ -z "$groups" ]]; then bad "a spare's anchor killed: the seed made no spare in 10 s"; return; fi
  sleep 0.2
  if ! "${S[@]}" fork seed fs </dev/null >/dev/null 2>"$T/fs.err"; then
    bad "a spare's anchor killed: fork"; cat "$T/fs.err"; return
  fi
  sleep 1
  local status
  status="$("${S[@]}" state fs 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')"
  if [[ "$status" == running ]]; then ok "a spare's anchor killed: the next fork runs"; else
    bad "a spare's anchor killed: the next fork is $status 1 s after it, not running"
  fi
  local left="" g deadline=$((SECONDS + 10))
  while :; do
    left=""
    for g in $groups; do
      left+="$(ps -e -o pid=,pgid=,stat= | awk -v g="$g" '$2 == g && $3 !~ /^Z/ {printf " %s", $1}')"
    done
    [[ -z "$left" || $SECONDS -ge $deadline ]] && break
    sleep 0.2
  done
  if [[ -z "$left" ]]; then ok "a spare's anchor killed: nothing of its group left"; else
    bad "a spare's anchor killed: processes of the dead anchors' groups ($groups) alive:$left"
  fi
  "${S[@]}" delete --force fs >/dev/null 2>&1
}
spare_case

kill_case "the forked sentry killed" sentry
kill_case "the fork's anchor killed: the sandbox ends" anchor
kill_case "the fork's anchor killed, then its sentry" anchor,sentry
kill_case "the fork's zygote killed, then its sentry" zygote,sentry
kill_case "the forked sentry killed (again)" sentry

echo "fork_leftover_test ($PLATFORM): $pass passed, $fail failed"
((fail == 0))
