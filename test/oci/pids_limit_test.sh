#!/bin/bash
# linux.resources.pids.limit inside the sandbox: a bundle whose process
# forks until it is refused, under runc (the reference: a host pids cgroup)
# and under `seedsc run` on each platform, which must print the same. The
# sandbox counts its guest tasks itself (its host cgroup also holds the
# sentry's threads and the stubs, so it gets more room: runsc/container/
# cgroup.h, HostPidsMax).
#
#   bazel test //test/oci:pids_limit_test
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# check_eq, check_ok, delete_all_containers, testlib_finish (no testlib_init)
# shellcheck source=test/e2e/testlib.sh
source "$here/../e2e/testlib.sh"
SEEDSC="$(realpath "${1:?usage: pids_limit_test.sh SEEDSC PROBE}")"
PROBE="$(realpath "${2:?usage: pids_limit_test.sh SEEDSC PROBE}")"
RUNC="$(command -v runc || true)"
T="$(mktemp -d /tmp/pidstest.XXXXXX)"
CG="seedsc-pidstest-$$"
cleanup() {
  delete_all_containers "$SEEDSC" "$T/s"
  delete_all_containers "$RUNC" "$T/r"
  rmdir /sys/fs/cgroup/*/"$CG"/* /sys/fs/cgroup/*/"$CG" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
if [[ -z "$RUNC" ]]; then echo "FAIL: runc is not installed (scripts/install-deps.sh)"; exit 1; fi

mkdir -p "$T/rootfs"/{bin,proc,dev,sys,tmp}
cp "$PROBE" "$T/rootfs/bin/pids_probe"
# bundle NAME LIMIT [PROBE-MODE]
bundle() {
  mkdir -p "$T/$1"
  "$SEEDSC" spec --bundle "$T/$1" || return 1
  python3 - "$T/$1/config.json" "$T/rootfs" "$2" "/$CG/$1" "${3:-}" <<'PY'
import json, sys
path, rootfs, limit, cg, mode = sys.argv[1:6]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/pids_probe"] + ([mode] if mode else [])
c["root"]["path"] = rootfs
c["linux"]["cgroupsPath"] = cg
c["linux"].setdefault("resources", {})["pids"] = {"limit": int(limit)}
json.dump(c, open(path, "w"), indent=1)
PY
}

want="forks before the limit: 9, then EAGAIN
pthread_create at the limit: EAGAIN
fork beside a zombie: EAGAIN
fork after reaping it: ok
after all exited, forks: 4"

bundle r 10
timeout 60 "$RUNC" --root "$T/r" run --bundle "$T/r" pr >"$T/r.out" 2>"$T/r.err" </dev/null
check_eq "runc: exit status" 0 $?
check_eq "runc: what the container saw" "$want" "$(cat "$T/r.out")"

for platform in systrap ptrace; do
  bundle "s-$platform" 10
  timeout 60 "$SEEDSC" --root "$T/s" --platform="$platform" run --bundle "$T/s-$platform" \
    "p-$platform" >"$T/$platform.out" 2>"$T/$platform.err" </dev/null
  check_eq "seedsc $platform: exit status" 0 $?
  check_eq "seedsc $platform: what the container saw (as runc)" "$want" "$(cat "$T/$platform.out")"
  [[ -s "$T/$platform.err" ]] && { echo "  stderr:"; sed 's/^/    /' "$T/$platform.err"; }
done

# update: a running container (its init holds one task) gets new limits
# from `update --pids-limit N`, from `update -r FILE` (LinuxResources JSON)
# and from `update -r -`; each time a process exec'd beside the init forks
# until it is refused. runc's answers are the reference.
# (runc exec's own Go threads join the container's cgroup before it runs
# the process: a limit under about 10 can make runc abort instead.)
want_update="forks: 8, then EAGAIN
forks: 18, then EAGAIN
forks: 10, then EAGAIN
forks: 64, then stopped
forks: 12, then EAGAIN"
echo '{"pids":{"limit":12}}' >"$T/pids12.json"
# update_case RUNTIME-COMMAND... : prints what the exec'd counters saw
update_case() {
  local id="$1"; shift
  "$@" exec "$id" /bin/pids_probe count
  "$@" update --pids-limit 20 "$id" && "$@" exec "$id" /bin/pids_probe count
  "$@" update -r "$T/pids12.json" "$id" && "$@" exec "$id" /bin/pids_probe count
  "$@" update --pids-limit -1 "$id" && "$@" exec "$id" /bin/pids_probe count
  echo '{"pids":{"limit":14}}' | "$@" update -r - "$id" && "$@" exec "$id" /bin/pids_probe count
}
bundle ur 10 hold
timeout 30 "$RUNC" --root "$T/r" run -d --bundle "$T/ur" ur >"$T/ur.run" 2>&1 </dev/null
check_eq "runc update: run -d" 0 $?
got="$(timeout 60 bash -c "$(declare -f update_case); T='$T'; update_case ur '$RUNC' --root '$T/r'" 2>"$T/ur.err")"
check_eq "runc update: what exec'd processes saw" "$want_update" "$got"
[[ -s "$T/ur.err" ]] && { echo "  stderr:"; sed 's/^/    /' "$T/ur.err"; }
"$RUNC" --root "$T/r" delete --force ur >/dev/null 2>&1

for platform in systrap ptrace; do
  bundle "us-$platform" 10 hold
  timeout 30 "$SEEDSC" --root "$T/s" --platform="$platform" run --detach --bundle "$T/us-$platform" \
    "u-$platform" >"$T/u-$platform.run" 2>&1 </dev/null
  check_eq "seedsc $platform update: run --detach" 0 $?
  got="$(timeout 60 bash -c "$(declare -f update_case); T='$T'; update_case u-$platform '$SEEDSC' --root '$T/s'" \
    2>"$T/u-$platform.err")"
  check_eq "seedsc $platform update: what exec'd processes saw (as runc)" "$want_update" "$got"
  [[ -s "$T/u-$platform.err" ]] && { echo "  stderr:"; sed 's/^/    /' "$T/u-$platform.err"; }
  # The host cgroup has room for the sentry's own tasks beyond the guest's 14.
  hmax="$(cat "/sys/fs/cgroup/pids/$CG/us-$platform/pids.max" 2>&1)"
  check_eq "seedsc $platform update: host pids.max" $((3 * 14 + 256)) "$hmax"
  "$SEEDSC" --root "$T/s" delete --force "u-$platform" >/dev/null 2>&1
done

# A pod (CRI annotations: a sandbox container, then a container that joins
# its sandbox): the joined container's pids limit is its own, over its own
# tasks, kept by the pod's sandbox (the host cgroup holds the whole
# sandbox process); the pod sandbox container's limit is the sandbox's.
# `update` of the joined one changes its pids limit, and its memory limit
# in its own host cgroup (its stub processes hold its guest memory there),
# as runc's update does. systrap only.
pod_annotate() {  # NAME TYPE
  python3 - "$T/$1/config.json" "$2" <<'PY'
import json, sys
path, kind = sys.argv[1:3]
c = json.load(open(path))
c.setdefault("annotations", {}).update({"io.kubernetes.cri.container-type": kind,
                                         "io.kubernetes.cri.sandbox-id": "pod-s"})
json.dump(c, open(path, "w"), indent=1)
PY
}
bundle pod 100 hold && pod_annotate pod sandbox
bundle pod-m1 8 hold && pod_annotate pod-m1 container
timeout 30 "$SEEDSC" --root "$T/s" run --detach --bundle "$T/pod" pod-s >"$T/pod-s.run" 2>&1 </dev/null
check_eq "pod: the sandbox container runs" 0 $?
timeout 30 "$SEEDSC" --root "$T/s" create --bundle "$T/pod-m1" m1 >"$T/m1.out" 2>"$T/m1.err" </dev/null &&
  timeout 30 "$SEEDSC" --root "$T/s" start m1 >>"$T/m1.err" 2>&1
check_eq "pod: a container joins its sandbox and starts" 0 $?
check_eq "pod: it runs in the pod's sandbox process" \
  "$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["sandboxPid"])' "$T/s/pod-s/state.json")" \
  "$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["sandboxPid"])' "$T/s/m1/state.json")"
# Its init and the counter are 2 of its 8; the pod sandbox's are 2 of 100.
check_eq "pod: the joined container's own limit" "forks: 6, then EAGAIN" \
  "$(timeout 30 "$SEEDSC" --root "$T/s" exec m1 /bin/pids_probe count 2>&1)"
check_eq "pod: the sandbox container is not bound by it" "forks: 64, then stopped" \
  "$(timeout 30 "$SEEDSC" --root "$T/s" exec pod-s /bin/pids_probe count 2>&1)"
timeout 30 "$SEEDSC" --root "$T/s" update --pids-limit 12 m1
check_eq "pod: update --pids-limit of the joined container" 0 $?
check_eq "pod: its new limit" "forks: 10, then EAGAIN" \
  "$(timeout 30 "$SEEDSC" --root "$T/s" exec m1 /bin/pids_probe count 2>&1)"
check_eq "pod: events --stats shows its own limit" 12 \
  "$("$SEEDSC" --root "$T/s" events --stats m1 | python3 -c 'import json, sys; print(json.load(sys.stdin)["data"]["pids"]["limit"])')"
timeout 30 "$SEEDSC" --root "$T/s" update --memory 104857600 m1
check_eq "pod: update --memory of the joined container" 0 $?
check_eq "pod: ... writes its own memory cgroup" 104857600 \
  "$(cat "/sys/fs/cgroup/memory/$CG/pod-m1/memory.limit_in_bytes" 2>&1)"
check_eq "pod: ... and not the pod sandbox's" 0 \
  "$(grep -c '^104857600$' "/sys/fs/cgroup/memory/$CG/pod/memory.limit_in_bytes")"
"$SEEDSC" --root "$T/s" delete --force m1 >/dev/null 2>&1
"$SEEDSC" --root "$T/s" delete --force pod-s >/dev/null 2>&1

# A host cgroup with no room left (pids.max = pids.current): an exec fails
# with one clear line and the sandbox lives on (the sentry used to abort on
# std::thread's exception, taking the container with it); once the host has
# room again, exec works.
for platform in systrap ptrace; do
  bundle "full-$platform" 10 hold
  timeout 30 "$SEEDSC" --root "$T/s" --platform="$platform" run --detach --bundle "$T/full-$platform" \
    "f-$platform" >"$T/f-$platform.run" 2>&1 </dev/null
  check_eq "seedsc $platform full host cgroup: run --detach" 0 $?
  hcg="/sys/fs/cgroup/pids/$CG/full-$platform"
  cat "$hcg/pids.current" >"$hcg/pids.max"
  timeout 30 "$SEEDSC" --root "$T/s" exec "f-$platform" /bin/pids_probe count >"$T/f-$platform.out" 2>"$T/f-$platform.err"
  rc=$?
  refused=0
  ((rc != 0)) && grep -q "host refused a thread" "$T/f-$platform.err" && refused=1
  check_ok "seedsc $platform full host cgroup: exec fails saying the host refused a thread" \
    "$refused" "seedsc exec f-$platform /bin/pids_probe count" \
    "a failure saying 'host refused a thread'" \
    "exit status $rc: $(cat "$T/f-$platform.out" "$T/f-$platform.err")"
  state="$("$SEEDSC" --root "$T/s" state "f-$platform" 2>&1 | python3 -c 'import json, sys
try:
    print(json.load(sys.stdin)["status"])
except Exception as e:
    print("no state:", e)')"
  check_eq "seedsc $platform full host cgroup: the container still runs" running "$state"
  echo max >"$hcg/pids.max"
  got="$(timeout 30 "$SEEDSC" --root "$T/s" exec "f-$platform" /bin/pids_probe count 2>&1)"
  check_eq "seedsc $platform full host cgroup: exec works once the host has room" "forks: 8, then EAGAIN" "$got"
  "$SEEDSC" --root "$T/s" delete --force "f-$platform" >/dev/null 2>&1
done

# Timers with no room on the host: the timer service's thread starts with
# the first armed timer, and a call that would start it while the host
# cgroup is full (pids.max = pids.current) gets EAGAIN (the sentry used to
# abort on std::thread's exception, taking the container with it); once
# the host has room, the same calls arm timers that fire.
want_timers="timers: ready
round 1: setitimer real EAGAIN, setitimer prof EAGAIN, alarm EAGAIN, timer_settime EAGAIN, RLIMIT_CPU EAGAIN, SIGALRM none
round 2: setitimer real ok, setitimer prof ok, alarm ok, timer_settime ok, RLIMIT_CPU ok, SIGALRM arrived"
await_line() {  # FILE PATTERN: waits up to 10 s for a line
  for _ in $(seq 100); do grep -q "$2" "$1" && return 0; sleep 0.1; done
  return 1
}
for platform in systrap ptrace; do
  bundle "tm-$platform" 10 timers
  timeout 30 "$SEEDSC" --root "$T/s" --platform="$platform" run --detach --bundle "$T/tm-$platform" \
    "t-$platform" >"$T/t-$platform.out" 2>"$T/t-$platform.err" </dev/null
  check_eq "seedsc $platform timers on a full host cgroup: run --detach" 0 $?
  await_line "$T/t-$platform.out" '^timers: ready'
  hcg="/sys/fs/cgroup/pids/$CG/tm-$platform"
  cat "$hcg/pids.current" >"$hcg/pids.max"
  "$SEEDSC" --root "$T/s" kill "t-$platform" USR1
  await_line "$T/t-$platform.out" '^round 1'
  state="$("$SEEDSC" --root "$T/s" state "t-$platform" 2>&1 | python3 -c 'import json, sys
try:
    print(json.load(sys.stdin)["status"])
except Exception as e:
    print("no state:", e)')"
  check_eq "seedsc $platform timers on a full host cgroup: the container still runs" running "$state"
  echo max >"$hcg/pids.max"
  "$SEEDSC" --root "$T/s" kill "t-$platform" USR1
  await_line "$T/t-$platform.out" '^round 2'
  check_eq "seedsc $platform timers on a full host cgroup: EAGAIN, then timers that fire" \
    "$want_timers" "$(cat "$T/t-$platform.out")"
  [[ -s "$T/t-$platform.err" ]] && { echo "  stderr:"; sed 's/^/    /' "$T/t-$platform.err"; }
  "$SEEDSC" --root "$T/s" delete --force "t-$platform" >/dev/null 2>&1
done

testlib_finish
