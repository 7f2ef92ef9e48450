#!/bin/bash
# busybox ping inside `seedsc --network=sandbox do` (issue 11). Debian's
# busybox 1.35 pings through a raw ICMP socket only (no ping-socket
# fallback), which the guest gets with CAP_NET_RAW and runsc's --net-raw:
# to loopback, to the guest's own address, over the veth to the host end,
# to an address nobody has (no reply, exit 1), and ping6 to ::1. Without
# --net-raw busybox is refused (EPERM), as under runsc. (Ping sockets,
# SOCK_DGRAM, are //test/syscalls:ping_socket's.)
# Uses 192.168.221.0/24 (root; ip, busybox).
#
#   bazel test //test/netstack:ping_e2e_test   (or: ping_e2e_test.sh SEEDSC)
SEEDSC="$(realpath "${1:?usage: ping_e2e_test.sh SEEDSC}")"
source "$(dirname "$0")/e2e_lib.sh"
IPG=192.168.221.2 IPH=192.168.221.1 NOBODY=192.168.221.9
need_tools ip busybox
BB="$(command -v busybox)"

cat > "$T/guest.sh" <<SH
ping() { "$BB" ping "\$@" 2>&1; echo "exit \$?"; }
echo "== lo";   ping -c 2 127.0.0.1
echo "== self"; ping -c 1 $IPG
echo "== host"; ping -c 1 $IPH
echo "== none"; ping -c 1 -W 1 $NOBODY
echo "== lo6";  ping -6 -c 1 ::1
SH
timeout 60 "$SEEDSC" --net-raw --network=sandbox do --ip="$IPG/24" "$BB" sh "$T/guest.sh" \
  >"$T/guest.log" 2>&1
rc=$?
check_eq "seedsc exits 0" 0 "$rc"
# The lines between "== NAME" and the next header.
section() { awk -v s="== $1" '$0 == s {on = 1; next} /^== / {on = 0} on' "$T/guest.log"; }
expect() {  # name, what the summary line says, exit status
  local out
  out="$(section "$1")"
  if grep -q "$2" <<<"$out" && grep -q "^exit $3\$" <<<"$out"; then ok "ping $1: $2, exit $3"
  else bad "ping $1: $2, exit $3"; echo "$out" | sed 's/^/  /'; fi
}
expect lo "2 packets transmitted, 2 packets received" 0
expect self "1 packets transmitted, 1 packets received" 0
expect host "1 packets transmitted, 1 packets received" 0
expect none "1 packets transmitted, 0 packets received" 1
expect lo6 "1 packets transmitted, 1 packets received" 0
if section host | grep -q "seq=0 ttl=64"; then ok "the host's reply: seq 0, ttl 64"; else
  bad "the host's reply: seq 0, ttl 64"; fi
if ((fail)); then echo "--- guest log"; cat "$T/guest.log"; fi

out="$(timeout 60 "$SEEDSC" --network=sandbox do "$BB" ping -c 1 127.0.0.1 2>&1)"
rc=$?
if ((rc == 1)) && grep -q "permission denied (are you root?)" <<<"$out"; then
  ok "without --net-raw: EPERM, busybox exits 1"
else
  bad "without --net-raw: EPERM, busybox exits 1 (exit $rc)"; echo "$out" | sed 's/^/  /'
fi
e2e_done
