#!/bin/bash
# A pod forked whole (issue 14): a sandbox container `a` (sleep) and a
# member `m` whose linux.cgroupsPath gives it host cgroups of its own
# (memory limited), the pod paused. `seedsc fork a f` is refused, naming
# m, until the fork is given a cgroup of its own for m (--member-cgroup
# m=PATH); then m's process in the fork is in that cgroup and not in the
# seed's m cgroup, whose one process (the seed's m) stays; the fork's end
# takes its process along, and the seed resumes untouched.
#
#   bazel test //test/oci:pod_fork_test
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test/e2e/testlib.sh
source "$here/../e2e/testlib.sh"  # check_eq, delete_all_containers, testlib_finish
SEEDSC="$(realpath "${1:?usage: pod_fork_test.sh SEEDSC}")"
BUSYBOX=/bin/busybox
T="$(mktemp -d /tmp/podfork.XXXXXX)"
CG="seedvisor-podfork-$$"
MEM=/sys/fs/cgroup/memory
cleanup() {
  delete_all_containers "$SEEDSC" "$T/s"
  for d in "$MEM/$CG/m" "$MEM/$CG-fork/m" "$MEM/$CG-fork" "$MEM/$CG"; do
    [[ -d $d ]] || continue
    for ((i = 0; i < 100; i++)); do rmdir "$d" 2>/dev/null && break; sleep 0.05; done
  done
  rm -rf "$T"
}
trap cleanup EXIT
if [[ ! -x "$BUSYBOX" ]]; then echo "FAIL: $BUSYBOX (busybox-static) is missing"; exit 1; fi
if ! mkdir -p "$MEM/$CG-fork/m"; then echo "SKIP: cannot make a memory cgroup under $MEM"; exit 0; fi

mkdir -p "$T/rootfs"/{bin,proc,dev,sys,tmp}
cp "$BUSYBOX" "$T/rootfs/bin/busybox"
ln -s busybox "$T/rootfs/bin/sleep"

# bundle DIR KIND CGROUP ARGS...: KIND sandbox|container (the CRI
# annotations, sandbox id "a"); CGROUP: its linux.cgroupsPath (64 MiB of
# memory), or "".
bundle() {
  local dir="$1" kind="$2" cg="$3"
  shift 3
  mkdir -p "$dir"
  rm -f "$dir/config.json"
  "$SEEDSC" spec --bundle "$dir" || return 1
  python3 - "$dir/config.json" "$T/rootfs" "$kind" "$cg" "$@" <<'PY'
import json, sys
cfg, rootfs, kind, cg, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
c = json.load(open(cfg))
c["process"]["terminal"] = False
c["process"]["args"] = args
c["root"]["path"] = rootfs
c.setdefault("annotations", {}).update({"io.kubernetes.cri.container-type": kind,
                                         "io.kubernetes.cri.sandbox-id": "a"})
if cg:
    c["linux"]["cgroupsPath"] = cg
    c["linux"].setdefault("resources", {})["memory"] = {"limit": 64 << 20}
json.dump(c, open(cfg, "w"), indent=1)
PY
}
status_of() {
  "$@" 2>/dev/null |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["status"])' 2>/dev/null
}
procs() { cat "$1/cgroup.procs" 2>/dev/null | sort | tr '\n' ' '; }

R=("$SEEDSC" --root "$T/s")
bundle "$T/a" sandbox "" sleep 1000 || check_eq "bundle a" 0 1
timeout 30 "${R[@]}" run --detach --bundle "$T/a" a >"$T/a.out" 2>&1 </dev/null
check_eq "the sandbox container runs" 0 $? "$(cat "$T/a.out")"
bundle "$T/m" container "$CG/m" sleep 1001 || check_eq "bundle m" 0 1
timeout 30 "${R[@]}" run --detach --bundle "$T/m" m >"$T/m.out" 2>&1 </dev/null
check_eq "the member runs" 0 $? "$(cat "$T/m.out")"
for ((i = 0; i < 100; i++)); do [[ -n "$(procs "$MEM/$CG/m")" ]] && break; sleep 0.05; done
seed_m="$(procs "$MEM/$CG/m")"
check_eq "the member's one process is in its cgroup" 1 "$(wc -w <<<"$seed_m")" "$seed_m"
"${R[@]}" pause a
check_eq "pause the pod" 0 $?

err="$(timeout 30 "${R[@]}" fork a f0 2>&1 </dev/null >/dev/null)"
check_eq "a fork without a cgroup for m is refused" 1 $? "$err"
[[ "$err" == *'"m"'* && "$err" == *--member-cgroup* ]]
check_eq "the refusal names m and --member-cgroup" 0 $? "$err"
err="$(timeout 30 "${R[@]}" fork --member-cgroup m "$CG-fork/m" a f0 2>&1 </dev/null >/dev/null)"
rc=$?
check_eq "--member-cgroup without ID= is refused" 1 "$(( rc != 0 ))" "$err"
[[ "$err" == *CONTAINER_ID=CGROUP_PATH* ]]
check_eq "that refusal says the form" 0 $? "$err"

timeout 30 "${R[@]}" fork --member-cgroup "m=$CG-fork/m" a f1 </dev/null >"$T/f1.out" 2>&1
check_eq "fork --member-cgroup m=$CG-fork/m" 0 $? "$(cat "$T/f1.out")"
fork_m="$(procs "$MEM/$CG-fork/m")"
check_eq "the fork's m has its one process in the fork's m cgroup" 1 "$(wc -w <<<"$fork_m")" "$fork_m"
check_eq "the seed's m cgroup holds the seed's process alone" "$seed_m" "$(procs "$MEM/$CG/m")"
[[ "$fork_m" != "$seed_m" ]]
check_eq "they are two processes" 0 $?
check_eq "the fork runs" running "$(status_of "${R[@]}" state f1)"
timeout 30 "${R[@]}" delete --force f1 >/dev/null 2>&1
check_eq "delete the fork" 0 $?
for ((i = 0; i < 100; i++)); do [[ -z "$(procs "$MEM/$CG-fork/m")" ]] && break; sleep 0.05; done
check_eq "the fork's m process went with it" "" "$(procs "$MEM/$CG-fork/m")"
check_eq "the seed's m is still there" "$seed_m" "$(procs "$MEM/$CG/m")"
check_eq "the pod stays paused" paused "$(status_of "${R[@]}" state a)"
"${R[@]}" resume a
check_eq "resume the pod" 0 $?
check_eq "the member runs again" running "$(status_of "${R[@]}" state m)"
"${R[@]}" delete --force m >/dev/null 2>&1
"${R[@]}" delete --force a >/dev/null 2>&1
testlib_finish
