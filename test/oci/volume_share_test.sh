#!/bin/bash
# What a writable bind volume shares (issue 14), with runc as the reference
# where it has the feature:
# - names: container a (uid 1000) makes a FIFO (mkfifo) and binds a unix
#   socket in the volume; container b of the same pod (seedsc: one sandbox,
#   CRI annotations; runc: a container of its own on the same host
#   directory) connects to the socket and reads the FIFO; the host sees a
#   FIFO and a socket owned by uid 1000 with the modes the guest asked. A
#   socket file unlinked while bound keeps its inode (a second bind of the
#   name works). user.* attributes of a volume file are the host file's.
# - ownership race: uid 1000's mkdir and symlink of new names while its
#   other thread renames a root-owned directory and symlink of the volume
#   over them and back (review 11): those stay root's, and every object the
#   guest made is its own, with its mode.
# - seedsc only (runc has no sandbox fork): a seed appending to a volume
#   file through an O_APPEND description is paused and forked; seed and
#   fork append at once, and after every write each one's offset is just
#   past its own record (review 12: they shared the host file description
#   whose position an append reads back).
#
#   bazel test //test/oci:volume_share_test
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test/e2e/testlib.sh
source "$here/../e2e/testlib.sh"  # check_eq, delete_all_containers, testlib_finish
SEEDSC="$(realpath "${1:?usage: volume_share_test.sh SEEDSC PROBE}")"
PROBE="$(realpath "${2:?usage: volume_share_test.sh SEEDSC PROBE}")"
RUNC="$(command -v runc || true)"
BUSYBOX=/bin/busybox
T="$(mktemp -d /tmp/volshare.XXXXXX)"
cleanup() {
  delete_all_containers "$SEEDSC" "$T/s"
  delete_all_containers "$RUNC" "$T/r"
  rm -rf "$T"
}
trap cleanup EXIT
if [[ -z "$RUNC" ]]; then echo "FAIL: runc is not installed (scripts/install-deps.sh)"; exit 1; fi
if [[ ! -x "$BUSYBOX" ]]; then echo "FAIL: $BUSYBOX (busybox-static) is missing"; exit 1; fi

mkdir -p "$T/rootfs"/{bin,proc,dev,sys,tmp,vol}
cp "$BUSYBOX" "$T/rootfs/bin/busybox"
cp "$PROBE" "$T/rootfs/bin/volume_probe"
for a in sh cat mkfifo sleep test; do ln -s busybox "$T/rootfs/bin/$a"; done

# bundle DIR VOL UID KIND ARGS...: the shared rootfs (read-only), host
# directory VOL on /vol; KIND sandbox|container (CRI annotations, sandbox
# id "a"; runc ignores them) or "" for none.
bundle() {
  local dir="$1" vol="$2" user="$3" kind="$4"
  shift 4
  mkdir -p "$dir"
  rm -f "$dir/config.json"
  "$SEEDSC" spec --bundle "$dir" || return 1
  python3 - "$dir/config.json" "$T/rootfs" "$vol" "$user" "$kind" "$@" <<'PY' || return 1
import json, sys
cfg, rootfs, vol, user, kind, args = sys.argv[1:6] + [sys.argv[6:]]
c = json.load(open(cfg))
c["process"].update(terminal=False, args=args, env=["PATH=/bin"],
                    user={"uid": int(user), "gid": int(user)})
c["root"] = {"path": rootfs, "readonly": True}
c["mounts"].append({"destination": "/vol", "type": "bind", "source": vol,
                    "options": ["rbind", "rw"]})
if kind:
    c.setdefault("annotations", {}).update({"io.kubernetes.cri.container-type": kind,
                                             "io.kubernetes.cri.sandbox-id": "a"})
json.dump(c, open(cfg, "w"), indent=1)
PY
  # runc's containers get cgroups of this run's own (testlib.sh).
  [[ $rt != runc ]] || runc_own_cgroups "$dir"
}
# wait_stopped ID CMD...: until the container has stopped (120 s at most).
wait_stopped() {
  local id="$1" i
  shift
  for ((i = 0; i < 1200; i++)); do
    [[ "$("$@" state "$id" 2>/dev/null | python3 -c 'import json, sys; print(json.load(sys.stdin)["status"])' 2>/dev/null)" == stopped ]] && return 0
    sleep 0.1
  done
  return 1
}

A_SCRIPT='(mkfifo /vol/fifo && echo from-a > /vol/fifo) & volume_probe serve /vol/sock > /vol/a.out; wait'
B_SCRIPT='volume_probe connect /vol/sock ping-from-b; i=0
while [ ! -p /vol/fifo ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done; cat /vol/fifo'

for rt in runc seedsc; do
  if [[ $rt == runc ]]; then R=("$RUNC" --root "$T/r"); else R=("$SEEDSC" --root "$T/s"); fi
  d="$T/$rt"
  mkdir -p "$d/vol/r"
  chmod 0777 "$d/vol" "$d/vol/r"
  # --- A FIFO and a unix socket of one container, used by another.
  bundle "$d/a" "$d/vol" 1000 sandbox sh -c "$A_SCRIPT" &&
    bundle "$d/b" "$d/vol" 1000 container sh -c "$B_SCRIPT" || { check_eq "$rt: bundles" 0 1; continue; }
  timeout 60 "${R[@]}" run --detach --bundle "$d/a" a >"$d/a.log" 2>&1 </dev/null
  check_eq "$rt: container a started" 0 $? "$(cat "$d/a.log")"
  timeout 120 "${R[@]}" run --bundle "$d/b" b >"$d/b.out" 2>&1 </dev/null
  check_eq "$rt: b reached a's socket and FIFO in the volume" "pong:ping-from-b
from-a" "$(cat "$d/b.out")"
  wait_stopped a "${R[@]}"
  check_eq "$rt: a served b" served "$(cat "$d/vol/a.out" 2>&1)"
  check_eq "$rt: the host sees the FIFO and the socket, uid 1000's" \
    "fifo 1000:1000 644|socket 1000:1000 755" \
    "$(stat -c '%F %u:%g %a' "$d/vol/fifo" 2>&1)|$(stat -c '%F %u:%g %a' "$d/vol/sock" 2>&1)"
  "${R[@]}" delete --force b >/dev/null 2>&1
  "${R[@]}" delete --force a >/dev/null 2>&1
  # A socket file unlinked while its socket is bound keeps its inode: a
  # new file of the name has another number (review R3: on ext4 the old
  # number came back, and the name was in use).
  bundle "$d/re" "$d/vol" 1000 "" volume_probe rebind /vol/rs || { check_eq "$rt: bundle re" 0 1; continue; }
  timeout 60 "${R[@]}" run --bundle "$d/re" re >"$d/re.out" 2>&1 </dev/null
  check_eq "$rt: a second socket binds where the first was unlinked" rebound "$(cat "$d/re.out")"
  "${R[@]}" delete --force re >/dev/null 2>&1

  # --- user.* attributes of a volume file are the host file's; trusted.*
  # is refused (no CAP_SYS_ADMIN) and never reaches it.
  echo x > "$d/vol/xf"
  python3 -c 'import os, sys; os.setxattr(sys.argv[1], "user.host", b"from-host")' "$d/vol/xf"
  bundle "$d/x" "$d/vol" 0 "" volume_probe xattr /vol/xf || { check_eq "$rt: bundle x" 0 1; continue; }
  timeout 60 "${R[@]}" run --bundle "$d/x" x >"$d/x.out" 2>&1 </dev/null
  check_eq "$rt: the volume file's user.* attributes" \
    "host=from-host k=v1 list=user.host,user.k trusted=Operation not permitted" "$(cat "$d/x.out")"
  check_eq "$rt: the host has the guest's attributes" "b'v1' False" \
    "$(python3 -c 'import os, sys; print(os.getxattr(sys.argv[1], "user.k"), "user.gone" in os.listxattr(sys.argv[1]))' "$d/vol/xf" 2>&1)"
  "${R[@]}" delete --force x >/dev/null 2>&1

  # --- Renames racing uid 1000's mkdir and symlink.
  mkdir "$d/vol/r/victim"
  echo root > "$d/vol/r/victim/keep"
  ln -s other "$d/vol/r/vlink"
  bundle "$d/race" "$d/vol" 1000 "" volume_probe own-race /vol/r 20 20000 || { check_eq "$rt: bundle race" 0 1; continue; }
  timeout 120 "${R[@]}" run --bundle "$d/race" race >"$d/race.out" 2>&1 </dev/null
  rc=$?
  check_eq "$rt: the race ran" "0 made" "$rc $(cat "$d/race.out")"
  check_eq "$rt: the renamed directory and symlink stay root's" "0:0 755 root|0:0 other" \
    "$(stat -c '%u:%g %a' "$d/vol/r/victim" 2>&1) $(cat "$d/vol/r/victim/keep" 2>&1)|$(stat -c '%u:%g' "$d/vol/r/vlink" 2>&1) $(readlink "$d/vol/r/vlink")"
  check_eq "$rt: what uid 1000 made is its own, with its mode" "d 1000:1000 700|l 1000:1000 mine" \
    "$(cd "$d/vol/r" && find . -maxdepth 1 -name 'd*' -printf 'd %U:%G %m\n' | sort -u | tr '\n' '|')$(cd "$d/vol/r" && find . -maxdepth 1 -name 'l*' -printf 'l %U:%G %l\n' | sort -u)"
  "${R[@]}" delete --force race >/dev/null 2>&1
done

# --- A sandbox fork appends beside its seed (seedsc only).
S=("$SEEDSC" --root "$T/s")
v="$T/fork/vol"
mkdir -p "$v"
if bundle "$T/fork/seed" "$v" 0 "" volume_probe append /vol/app /vol/go 6; then
  timeout 60 "${S[@]}" run --detach --bundle "$T/fork/seed" seed >"$T/fork/seed.log" 2>&1 </dev/null
  check_eq "seedsc: the seed started" 0 $? "$(cat "$T/fork/seed.log")"
  for _ in $(seq 1200); do [[ -e "$v/app.ready" ]] && break; sleep 0.1; done
  "${S[@]}" pause seed && timeout 120 "${S[@]}" fork seed forked </dev/null >"$T/fork/fork.log" 2>&1
  check_eq "seedsc: the seed was forked" 0 $? "$(cat "$T/fork/fork.log")"
  "${S[@]}" resume seed
  touch "$v/go"
  for _ in $(seq 1800); do
    (($(ls "$v" | grep -c '^app\.result\.') >= 2)) && break
    sleep 0.1
  done
  check_eq "seedsc: after each append, seed and fork are past their own record" "0 many|0 many|" \
    "$(cat "$v"/app.result.* 2>&1 | tr '\n' '|')"
  "${S[@]}" delete --force forked >/dev/null 2>&1
  "${S[@]}" delete --force seed >/dev/null 2>&1
else
  check_eq "seedsc: bundle seed" 0 1
fi
testlib_finish
