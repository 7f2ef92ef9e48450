#!/bin/bash
# linux.resources.pids.limit inside the sandbox: a bundle whose process
# forks until it is refused, under runc (the reference: a host pids cgroup)
# and under `seedsc run` on each platform, which must print the same. The
# sandbox counts its guest tasks itself (its host cgroup also holds the
# sentry's threads and the stubs, so it gets more room: runsc/container/
# cgroup.h, HostPidsMax).
#
#   bazel test //test/oci:pids_limit_test
set -u
SEEDSC="$(realpath "${1:?usage: pids_limit_test.sh SEEDSC PROBE}")"
PROBE="$(realpath "${2:?usage: pids_limit_test.sh SEEDSC PROBE}")"
RUNC="$(command -v runc || true)"
T="$(mktemp -d /tmp/pidstest.XXXXXX)"
CG="seedsc-pidstest-$$"
pass=0
fail=0
cleanup() {
  for id in $("$SEEDSC" --root "$T/s" list --quiet 2>/dev/null); do
    "$SEEDSC" --root "$T/s" delete --force "$id" >/dev/null 2>&1
  done
  [[ -n "$RUNC" ]] && for id in $("$RUNC" --root "$T/r" list --quiet 2>/dev/null); do
    "$RUNC" --root "$T/r" delete --force "$id" >/dev/null 2>&1
  done
  rmdir /sys/fs/cgroup/*/"$CG"/* /sys/fs/cgroup/*/"$CG" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
ok() { echo "PASS: $1"; pass=$((pass + 1)); }
bad() { echo "FAIL: $1"; fail=$((fail + 1)); }
check_eq() {  # name want got
  if [[ "$2" == "$3" ]]; then ok "$1"; else
    bad "$1"; echo "  want: $(printf '%q' "$2")"; echo "  got:  $(printf '%q' "$3")"; fi
}
if [[ -z "$RUNC" ]]; then echo "FAIL: runc is not installed (scripts/install-deps.sh)"; exit 1; fi

mkdir -p "$T/rootfs"/{bin,proc,dev,sys,tmp}
cp "$PROBE" "$T/rootfs/bin/pids_probe"
# bundle NAME LIMIT
bundle() {
  mkdir -p "$T/$1"
  "$SEEDSC" spec --bundle "$T/$1" || return 1
  python3 - "$T/$1/config.json" "$T/rootfs" "$2" "/$CG/$1" <<'PY'
import json, sys
path, rootfs, limit, cg = sys.argv[1:5]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/pids_probe"]
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

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
