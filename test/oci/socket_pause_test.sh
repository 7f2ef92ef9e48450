#!/bin/bash
# Every blocking socket call across `seedsc pause` / `seedsc resume`
# (issue 19; the sandbox fork's quiesce is the same park): a container
# whose threads block in 25 socket calls (socket_pause_prog.c: unix
# stream/seqpacket/dgram, TCP and UDP loopback; receives, sends into full
# buffers, accept, connect into a full backlog, poll, epoll_wait, recvmmsg,
# SO_RCVTIMEO/SO_SNDTIMEO) is paused and resumed twice; the pause must
# park every one of them, and after the resume each call must still be
# waiting, then return exactly what its peer's action gives (no EINTR, no
# early or short return). The program runs natively first (no pause): that
# shows the program itself is right.
#
#   bazel test //test/oci:socket_pause_test
#   (or: socket_pause_test.sh SEEDSC PROG [PLATFORM...])
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test/e2e/testlib.sh
source "$here/../e2e/testlib.sh"  # check_eq, check_ok, testlib_finish (no testlib_init)
SEEDSC="$(realpath "${1:?usage: socket_pause_test.sh SEEDSC PROG [PLATFORM...]}")"
PROG="$(realpath "${2:?usage: socket_pause_test.sh SEEDSC PROG [PLATFORM...]}")"
shift 2
PLATFORMS=("$@")
((${#PLATFORMS[@]})) || PLATFORMS=(systrap ptrace)
T="$(mktemp -d /tmp/spause.XXXXXX)"
declare -a ROOTS=()

cleanup() {
  local r id
  for r in "${ROOTS[@]}"; do
    for id in $("$SEEDSC" --root "$r" list --quiet 2>/dev/null); do
      "$SEEDSC" --root "$r" delete --force "$id" >/dev/null 2>&1
    done
  done
  [[ -n "${native_pid:-}" ]] && kill "$native_pid" 2>/dev/null
  exec 9>&- 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT

# wait_line OUT PATTERN SECONDS: the first line of OUT matching PATTERN
# (grep -E), once it is there or after SECONDS.
wait_line() {
  local i line
  for ((i = 0; i < $3 * 20; i++)); do
    line=$(grep -E -m1 "$2" "$1" 2>/dev/null)
    [[ -n "$line" ]] && { echo "$line"; return 0; }
    sleep 0.05
  done
  echo "(nothing matching '$2' in $3 s)"
}

want_ready="ready 25"
want_done="done 25 ok"

# --- Natively: the program is right without any pause.
mkfifo "$T/native.in"
exec 9<>"$T/native.in"
"$PROG" <"$T/native.in" >"$T/native.out" 2>&1 &
native_pid=$!
check_eq "native: every thread blocks" "$want_ready" "$(wait_line "$T/native.out" '^(ready|FAIL)' 60)"
sleep 0.3
echo go >&9
check_eq "native: every call returns what its peer gave" "$want_done" \
  "$(wait_line "$T/native.out" '^done' 60)"
wait "$native_pid"
check_eq "native: exit status" 0 $?
native_pid=""
exec 9>&-
grep '^FAIL' "$T/native.out"

# --- In the sandbox, on each platform: pause and resume twice around them.
B="$T/bundle"
mkdir -p "$B/rootfs/bin" "$B/rootfs/proc" "$B/rootfs/dev" "$B/rootfs/tmp"
cp "$PROG" "$B/rootfs/bin/prog"
(cd "$B" && "$SEEDSC" spec) || { echo "FAIL: seedsc spec"; exit 1; }
python3 - "$B/config.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/prog"]
json.dump(c, open(sys.argv[1], "w"), indent=1)
EOF

status_of() { "$SEEDSC" --root "$1" state "$2" 2>/dev/null | grep -o '"status": "[a-z]*"' | cut -d'"' -f4; }

for p in "${PLATFORMS[@]}"; do
  R="$T/state-$p"
  ROOTS+=("$R")
  S=("$SEEDSC" --root "$R" --platform="$p")
  id="sp-$p"
  mkfifo "$T/$p.in"
  exec 9<>"$T/$p.in"
  "${S[@]}" create --bundle "$B" "$id" <"$T/$p.in" >"$T/$p.out" 2>"$T/$p.err"
  check_eq "$p: create" "0 " "$? $(head -c 300 "$T/$p.err")"
  "${S[@]}" start "$id"
  check_eq "$p: start" 0 $?
  check_eq "$p: every thread blocks" "$want_ready" "$(wait_line "$T/$p.out" '^(ready|FAIL)' 60)"
  for round in 1 2; do
    # seedsc pause fails (naming the task) if some task does not park.
    err=$(timeout 60 "${S[@]}" pause "$id" 2>&1)
    check_eq "$p: pause $round parks every blocked call" "0 " "$? $err"
    check_eq "$p: paused $round" paused "$(status_of "$R" "$id")"
    sleep 0.5
    err=$(timeout 60 "${S[@]}" resume "$id" 2>&1)
    check_eq "$p: resume $round" "0 " "$? $err"
    check_eq "$p: running after resume $round" running "$(status_of "$R" "$id")"
    sleep 0.3
  done
  check_eq "$p: nothing returned across the pauses" "$want_ready" "$(cat "$T/$p.out")"
  echo go >&9
  check_eq "$p: every call returns what its peer gave" "$want_done" \
    "$(wait_line "$T/$p.out" '^done' 60)"
  grep '^FAIL' "$T/$p.out"
  exec 9>&-
  "${S[@]}" delete --force "$id" >/dev/null 2>&1
done

testlib_finish
