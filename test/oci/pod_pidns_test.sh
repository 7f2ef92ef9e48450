#!/bin/bash
# A pod's containers and pid namespaces (issue 14), with runc as the
# reference: a sandbox container `a` (sleep), then `b` whose config.json
# names a's pid namespace by path (CRI's NamespaceMode POD) and `c` whose
# "pid" entry has no path (NamespaceMode CONTAINER, the kubelet's
# default). b sees a's init as its pid 1; c is pid 1 of a namespace of its
# own, its /proc shows only itself, and an exec into c joins that
# namespace. `d` names c's namespace by path, /proc/<c's pid>/ns/pid
# (NamespaceMode TARGET, kubectl debug's ephemeral containers): d sees c's
# init as its 1, c sees d's process. For seedsc, b, c and d join a's
# sandbox (CRI annotations; runc ignores them), and c's pid is a host id
# of its own (its sandbox's thread), not a's.
#
#   bazel test //test/oci:pod_pidns_test
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test/e2e/testlib.sh
source "$here/../e2e/testlib.sh"  # check_eq, delete_all_containers, testlib_finish
SEEDSC="$(realpath "${1:?usage: pod_pidns_test.sh SEEDSC}")"
RUNC="$(command -v runc || true)"
BUSYBOX=/bin/busybox
T="$(mktemp -d /tmp/podpidns.XXXXXX)"
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
for a in sh cat echo sleep readlink test tr; do ln -s busybox "$T/rootfs/bin/$a"; done

# bundle DIR KIND PID-NS-PATH ARGS...: KIND sandbox|container (the CRI
# annotations, sandbox id "a"); PID-NS-PATH "" for a "pid" entry without one.
bundle() {
  local dir="$1" kind="$2" path="$3"
  shift 3
  mkdir -p "$dir"
  rm -f "$dir/config.json"
  "$SEEDSC" spec --bundle "$dir" || return 1
  python3 - "$dir/config.json" "$T/rootfs" "$kind" "$path" "$@" <<'PY' || return 1
import json, sys
cfg, rootfs, kind, path, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
c = json.load(open(cfg))
c["process"]["terminal"] = False
c["process"]["args"] = args
c["root"]["path"] = rootfs
for ns in c["linux"]["namespaces"]:
    if ns["type"] == "pid" and path:
        ns["path"] = path
c.setdefault("annotations", {}).update({"io.kubernetes.cri.container-type": kind,
                                         "io.kubernetes.cri.sandbox-id": "a"})
json.dump(c, open(cfg, "w"), indent=1)
PY
  # runc's containers get cgroups of this run's own (testlib.sh).
  [[ $rt != runc ]] || runc_own_cgroups "$dir"
}

B_SCRIPT='cat /proc/1/comm; test "$(readlink /proc/self)" != 1 && echo not-init'
C_SCRIPT='echo $$; cd /proc; echo [0-9]*; cd -P /proc/self && pwd; exec sleep 1000'
EXEC_SCRIPT='cat /proc/1/cmdline; echo; set -- /proc/[0-9]*; echo $# processes'
LIST_SCRIPT='cd /proc; for p in [0-9]*; do tr "\0" " " <$p/cmdline; echo; done'
want_b="sleep
not-init"
want_c="1
1
/proc/1"
want_exec="sleep1000
2 processes"

for rt in runc seedsc; do
  if [[ $rt == runc ]]; then R=("$RUNC" --root "$T/r"); else R=("$SEEDSC" --root "$T/s"); fi
  d="$T/$rt"
  bundle "$d/a" sandbox "" sleep 1000 || { check_eq "$rt: bundle" 0 1; continue; }
  timeout 30 "${R[@]}" run --detach --bundle "$d/a" a >"$d/a.out" 2>&1 </dev/null
  check_eq "$rt: the sandbox container runs" 0 $?
  pid_a="$("${R[@]}" state a | python3 -c 'import json, sys; print(json.load(sys.stdin)["pid"])')"
  bundle "$d/b" container "/proc/$pid_a/ns/pid" sh -c "$B_SCRIPT"
  timeout 30 "${R[@]}" run --bundle "$d/b" b >"$d/b.out" 2>"$d/b.err" </dev/null
  check_eq "$rt: pid namespace by path (POD): a's init is its 1" "$want_b" "$(cat "$d/b.out")"
  bundle "$d/c" container "" sh -c "$C_SCRIPT"
  timeout 30 "${R[@]}" run --detach --bundle "$d/c" c >"$d/c.out" 2>"$d/c.err" </dev/null
  check_eq "$rt: pid namespace of its own (CONTAINER): run --detach" 0 $?
  for _ in $(seq 100); do [[ "$(wc -l <"$d/c.out")" -ge 3 ]] && break; sleep 0.1; done
  check_eq "$rt: its init is 1 and its /proc shows only itself" "$want_c" "$(cat "$d/c.out")"
  got="$(timeout 30 "${R[@]}" exec c sh -c "$EXEC_SCRIPT" 2>&1 | tr -d '\0')"
  check_eq "$rt: an exec joins its namespace" "$want_exec" "$got"
  pid_c="$("${R[@]}" state c | python3 -c 'import json, sys; print(json.load(sys.stdin)["pid"])')"
  [[ "$pid_c" != "$pid_a" ]]
  check_eq "$rt: c's pid is not a's" 0 $?
  bundle "$d/d" container "/proc/$pid_c/ns/pid" sleep 1001
  timeout 30 "${R[@]}" run --detach --bundle "$d/d" d >"$d/d.out" 2>"$d/d.err" </dev/null
  check_eq "$rt: c's pid namespace by path (TARGET): run --detach" 0 $?
  got="$(timeout 30 "${R[@]}" exec d sh -c "tr '\0' ' ' </proc/1/cmdline" 2>&1)"
  check_eq "$rt: d sees c's init as its 1" "sleep 1000 " "$got"
  got="$(timeout 30 "${R[@]}" exec d sh -c "$LIST_SCRIPT" 2>&1 | grep -c '^sleep ')"
  check_eq "$rt: d sees c's processes only (c's init, its own)" 2 "$got"
  got="$(timeout 30 "${R[@]}" exec c sh -c "$LIST_SCRIPT" 2>&1 | grep -c '^sleep 1001 $')"
  check_eq "$rt: c sees d's process" 1 "$got"
  [[ -s "$d/b.err" || -s "$d/c.err" || -s "$d/d.err" ]] &&
    sed 's/^/  stderr: /' "$d/b.err" "$d/c.err" "$d/d.err"
  for id in d c a; do "${R[@]}" delete --force "$id" >/dev/null 2>&1; done
done
testlib_finish
