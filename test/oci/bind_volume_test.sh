#!/bin/bash
# Writable bind mounts write through to the host (issue 14), with runc as
# the reference: a container writes, renames, unlinks and appends (two
# processes sharing one O_APPEND description, and a shared offset across a
# fork) in a bound host directory and a bound host file, and what it wrote
# is on the host afterwards; a file the host makes while the container runs
# is seen inside; a file made by uid 1000 is uid 1000's on the host. Hostile
# part: symlinks in the volume pointing at /etc, at an absolute host path
# and at ".." outside the volume, and a loop that swaps a directory of the
# volume for such a symlink while another writes through it, must not let
# the guest write outside the volume on the host. Seedsc only (runc without
# a user namespace allows both): a guest root leaves no set-user-ID file and
# no device node on the host.
#
#   bazel test //test/oci:bind_volume_test
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test/e2e/testlib.sh
source "$here/../e2e/testlib.sh"  # check_eq, delete_all_containers, testlib_finish
SEEDSC="$(realpath "${1:?usage: bind_volume_test.sh SEEDSC}")"
RUNC="$(command -v runc || true)"
BUSYBOX=/bin/busybox
T="$(mktemp -d /tmp/bindvol.XXXXXX)"
MARK="seedvisor-bindvol-escape-$$-$RANDOM"
cleanup() {
  delete_all_containers "$SEEDSC" "$T/s"
  delete_all_containers "$RUNC" "$T/r"
  rm -f "/etc/$MARK"
  rm -rf "$T"
}
trap cleanup EXIT
if [[ -z "$RUNC" ]]; then echo "FAIL: runc is not installed (scripts/install-deps.sh)"; exit 1; fi
if [[ ! -x "$BUSYBOX" ]]; then echo "FAIL: $BUSYBOX (busybox-static) is missing"; exit 1; fi

# bundle DIR USER ARGS...: a busybox rootfs of its own under DIR, the
# volume DIR/../vol on /vol and the file DIR/../file.txt on /file.txt.
bundle() {
  local dir="$1" user="$2"
  shift 2
  mkdir -p "$dir/rootfs"/{bin,proc,dev,sys,tmp,etc,vol}
  touch "$dir/rootfs/file.txt"
  cp "$BUSYBOX" "$dir/rootfs/bin/busybox"
  for a in sh cat echo mkdir mv rm ln seq sleep wc grep sort uniq test stat id mknod chmod cp; do
    ln -sf busybox "$dir/rootfs/bin/$a"
  done
  rm -f "$dir/config.json"
  "$SEEDSC" spec --bundle "$dir" || return 1
  python3 - "$dir/config.json" "$dir/rootfs" "$(dirname "$dir")" "$user" "$@" <<'PY'
import json, sys
cfg, rootfs, top, user, args = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:]
c = json.load(open(cfg))
c["process"]["terminal"] = False
c["process"]["args"] = args
c["process"]["user"] = {"uid": user, "gid": user}
c["process"]["env"] = ["PATH=/bin"]
c["root"] = {"path": rootfs, "readonly": False}
c["mounts"].append({"destination": "/vol", "type": "bind", "source": top + "/vol",
                    "options": ["rbind", "rw"]})
c["mounts"].append({"destination": "/file.txt", "type": "bind", "source": top + "/file.txt",
                    "options": ["bind"]})
json.dump(c, open(cfg, "w"), indent=1)
PY
}

# What the container does; `later` is made by the host while it runs.
read -r -d '' GUEST <<'SH'
cat /vol/hostfile > /vol/read_back
echo result > /vol/result.txt
mkdir /vol/d && echo x > /vol/d/f && mv /vol/d/f /vol/d/g && mv /vol/d /vol/d2
echo bye > /vol/gone && rm /vol/gone
exec 3>>/vol/app
(for i in $(seq 50); do echo aaaaaaaaaaaaaaaa >&3; done) &
(for i in $(seq 50); do echo bbbbbbbbbbbbbbbb >&3; done) &
wait
exec 4>/vol/seq
echo one >&4
(echo two >&4)
echo three >&4
echo appended >> /file.txt
echo x > /vol/etc_link/MARK 2>/dev/null
echo x > /vol/abs_link/escaped 2>/dev/null
echo x > /vol/up/escaped 2>/dev/null
mkdir -p /vol/race/a
(i=0; while [ $i -lt 200 ]; do
   mv /vol/race/a /vol/race/t; ln -s ../../outside /vol/race/a; rm /vol/race/a
   ln -s ABS /vol/race/a; rm /vol/race/a; mv /vol/race/t /vol/race/a; i=$((i+1)); done) &
j=0; while [ $j -lt 200 ]; do
  echo x > /vol/race/a/f$j 2>/dev/null; mkdir /vol/race/a/d$j 2>/dev/null; j=$((j+1)); done
wait
echo ready > /vol/ready
k=0; while [ ! -e /vol/later ] && [ $k -lt 1200 ]; do sleep 0.1; k=$((k+1)); done
cat /vol/later > /vol/seen
SH

for rt in runc seedsc; do
  if [[ $rt == runc ]]; then R=("$RUNC" --root "$T/r"); else R=("$SEEDSC" --root "$T/s"); fi
  d="$T/$rt"
  mkdir -p "$d/vol" "$d/outside"
  chmod 0777 "$d/vol"
  echo from-host > "$d/vol/hostfile"
  echo start > "$d/file.txt"
  ln -s /etc "$d/vol/etc_link"
  ln -s "$d/outside" "$d/vol/abs_link"
  ln -s .. "$d/vol/up"
  guest="${GUEST//MARK/$MARK}"
  guest="${guest//ABS/$d/outside}"
  bundle "$d/c" 0 sh -c "$guest" || { check_eq "$rt: bundle" 0 1; continue; }
  timeout 120 "${R[@]}" run --bundle "$d/c" c >"$d/c.out" 2>&1 </dev/null &
  runpid=$!
  # The host's own change, once the container is past its writes.
  for _ in $(seq 1200); do [[ -e "$d/vol/ready" ]] && break; sleep 0.1; done
  echo later > "$d/vol/later"
  wait $runpid
  check_eq "$rt: the container ran" 0 $? "$(cat "$d/c.out")"
  check_eq "$rt: it read the host's file" from-host "$(cat "$d/vol/read_back" 2>&1)"
  check_eq "$rt: its new file is on the host" result "$(cat "$d/vol/result.txt" 2>&1)"
  check_eq "$rt: its renames are on the host" "x|no d" \
    "$(cat "$d/vol/d2/g" 2>&1)|$([[ -e "$d/vol/d" ]] && echo d || echo no d)"
  check_eq "$rt: its unlink is on the host" absent "$([[ -e "$d/vol/gone" ]] && echo present || echo absent)"
  check_eq "$rt: two processes appending through one description lose nothing" \
    "50 aaaaaaaaaaaaaaaa,50 bbbbbbbbbbbbbbbb," \
    "$(sort "$d/vol/app" | uniq -c | awk '{printf "%s %s,", $1, $2}')"
  check_eq "$rt: a forked child writes at the shared offset" "one two three" \
    "$(tr '\n' ' ' <"$d/vol/seq" | sed 's/ $//')"
  check_eq "$rt: a writable file bind writes through" "start appended" \
    "$(tr '\n' ' ' <"$d/file.txt" | sed 's/ $//')"
  check_eq "$rt: the host's file made while it ran was seen inside" later "$(cat "$d/vol/seen" 2>&1)"
  check_eq "$rt: nothing written through the symlinks to outside the volume" "" \
    "$(ls -A "$d/outside")"
  check_eq "$rt: nothing written next to the volume through \"..\"" absent \
    "$([[ -e "$d/escaped" ]] && echo present || echo absent)"
  check_eq "$rt: nothing written in the host's /etc" absent \
    "$([[ -e "/etc/$MARK" ]] && echo present || echo absent)"
  check_eq "$rt: the volume's symlinks are as they were" "/etc|$d/outside|.." \
    "$(readlink "$d/vol/etc_link")|$(readlink "$d/vol/abs_link")|$(readlink "$d/vol/up")"

  # A file made by uid 1000 is uid 1000's on the host.
  bundle "$d/u" 1000 sh -c 'echo mine > /vol/u1000' || { check_eq "$rt: bundle u" 0 1; continue; }
  timeout 60 "${R[@]}" run --bundle "$d/u" u >"$d/u.out" 2>&1 </dev/null
  check_eq "$rt: uid 1000's container ran" 0 $? "$(cat "$d/u.out")"
  check_eq "$rt: uid 1000's file is uid 1000's on the host" "mine 1000:1000" \
    "$(cat "$d/vol/u1000" 2>&1) $(stat -c %u:%g "$d/vol/u1000" 2>&1)"
  "${R[@]}" delete --force c >/dev/null 2>&1
  "${R[@]}" delete --force u >/dev/null 2>&1
done
# A guest root's set-user-ID copy of a shell, set-group-ID executable and
# device node would be the host's to use.
d="$T/priv"
mkdir -p "$d/vol"
touch "$d/file.txt"
read -r -d '' PRIV <<'SH'
cp /bin/busybox /vol/suid && chmod 4755 /vol/suid && echo chmod-ok > /vol/priv.out
cp /bin/busybox /vol/sgid && chmod 2755 /vol/sgid
cp /bin/busybox /vol/new && chmod 6755 /vol/new
mknod /vol/mem c 1 1 2>/dev/null || echo mknod-refused >> /vol/priv.out
SH
if bundle "$d/c" 0 sh -c "$PRIV"; then
  timeout 60 "$SEEDSC" --root "$T/s" run --bundle "$d/c" priv >"$d/c.out" 2>&1 </dev/null
  check_eq "seedsc: the privileged container ran" 0 $? "$(cat "$d/c.out")"
  check_eq "seedsc: no set-user-ID or set-group-ID executable is left on the host" "755 755 755" \
    "$(stat -c %a "$d/vol/suid" "$d/vol/sgid" "$d/vol/new" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
  check_eq "seedsc: a device node is refused, and none is on the host" "mknod-refused|absent" \
    "$(grep -o mknod-refused "$d/vol/priv.out")|$([[ -e "$d/vol/mem" ]] && echo present || echo absent)"
  "$SEEDSC" --root "$T/s" delete --force priv >/dev/null 2>&1
else
  check_eq "seedsc: bundle priv" 0 1
fi
testlib_finish
