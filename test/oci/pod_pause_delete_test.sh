#!/bin/bash
# Deleting a container of a paused pod (issue 14), with runc as the
# reference: a sandbox container `a` (sleep) and a member `m` (a shell with
# a child, both sleeping), the pod paused (runc: both containers, each in
# its freezer cgroup; seedsc: the sandbox, which pauses the pod). `delete m`
# refuses at once and names the state; `delete --force m` ends m's
# processes (runc thaws a frozen cgroup v1 for a SIGKILL; a cgroup v2
# freezer lets a fatal signal through) while a stays paused, and a resumes
# afterwards. Before, seedsc's delete --force failed after 10 s: the
# paused sandbox's parked tasks never ran to die.
#
#   bazel test //test/oci:pod_pause_delete_test
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test/e2e/testlib.sh
source "$here/../e2e/testlib.sh"  # check_eq, delete_all_containers, testlib_finish
SEEDSC="$(realpath "${1:?usage: pod_pause_delete_test.sh SEEDSC}")"
RUNC="$(command -v runc || true)"
BUSYBOX=/bin/busybox
T="$(mktemp -d /tmp/podpause.XXXXXX)"
cleanup() {
  delete_all_containers "$SEEDSC" "$T/s"
  delete_all_containers "$RUNC" "$T/r"
  rm -rf "$T"
}
trap cleanup EXIT
if [[ -z "$RUNC" ]]; then echo "FAIL: runc is not installed (scripts/install-deps.sh)"; exit 1; fi
if [[ ! -x "$BUSYBOX" ]]; then echo "FAIL: $BUSYBOX (busybox-static) is missing"; exit 1; fi

mkdir -p "$T/rootfs"/{bin,proc,dev,sys,tmp}
cp "$BUSYBOX" "$T/rootfs/bin/busybox"
for a in sh sleep; do ln -s busybox "$T/rootfs/bin/$a"; done

# bundle DIR KIND ARGS...: KIND sandbox|container (the CRI annotations,
# sandbox id "a").
bundle() {
  local dir="$1" kind="$2"
  shift 2
  mkdir -p "$dir"
  rm -f "$dir/config.json"
  "$SEEDSC" spec --bundle "$dir" || return 1
  python3 - "$dir/config.json" "$T/rootfs" "$kind" "$@" <<'PY' || return 1
import json, sys
cfg, rootfs, kind, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
c = json.load(open(cfg))
c["process"]["terminal"] = False
c["process"]["args"] = args
c["root"]["path"] = rootfs
c.setdefault("annotations", {}).update({"io.kubernetes.cri.container-type": kind,
                                         "io.kubernetes.cri.sandbox-id": "a"})
json.dump(c, open(cfg, "w"), indent=1)
PY
  # runc's containers get cgroups of this run's own (testlib.sh).
  [[ $rt != runc ]] || runc_own_cgroups "$dir"
}

status_of() {
  "$@" 2>/dev/null |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["status"])' 2>/dev/null
}

for rt in runc seedsc; do
  if [[ $rt == runc ]]; then R=("$RUNC" --root "$T/r"); else R=("$SEEDSC" --root "$T/s"); fi
  d="$T/$rt"
  bundle "$d/a" sandbox sleep 1000 || { check_eq "$rt: bundle" 0 1; continue; }
  timeout 30 "${R[@]}" run --detach --bundle "$d/a" a >"$d/a.out" 2>&1 </dev/null
  check_eq "$rt: the sandbox container runs" 0 $?
  bundle "$d/m" container sh -c 'sleep 1000 & exec sleep 1001'
  timeout 30 "${R[@]}" run --detach --bundle "$d/m" m >"$d/m.out" 2>&1 </dev/null
  check_eq "$rt: the member runs" 0 $?
  if [[ $rt == runc ]]; then
    "${R[@]}" pause a && "${R[@]}" pause m
  else
    "${R[@]}" pause a  # the whole sandbox: the pod
  fi
  check_eq "$rt: pause the pod" 0 $?
  check_eq "$rt: the member is paused" paused "$(status_of "${R[@]}" state m)"
  err="$(timeout 30 "${R[@]}" delete m 2>&1 >/dev/null)"
  rc=$?
  check_eq "$rt: delete of the paused member is refused" 1 $rc
  [[ "$err" == *"not stopped: paused"* ]]
  check_eq "$rt: the refusal names the state (\"not stopped: paused\")" 0 $? "$err"
  timeout 30 "${R[@]}" delete --force m >"$d/del.out" 2>&1
  rc=$?
  check_eq "$rt: delete --force of the paused member" 0 $rc "$(cat "$d/del.out")"
  "${R[@]}" state m >/dev/null 2>&1
  check_eq "$rt: the member is gone" 1 $?
  check_eq "$rt: the sandbox container stays paused" paused "$(status_of "${R[@]}" state a)"
  "${R[@]}" resume a
  check_eq "$rt: resume" 0 $?
  check_eq "$rt: the sandbox container runs again" running "$(status_of "${R[@]}" state a)"
  "${R[@]}" delete --force a >/dev/null 2>&1
done
testlib_finish
