#!/bin/bash
# IPv6 through the sandbox's own stack over a veth (issue 11): two network
# namespaces made here (nothing else is touched), joined by a veth with
# 192.168.214.0/24 and fd00:214::/64 on it. `seedsc do --network=sandbox
# --netns=A` takes over A's interface (its IPv4 address, its link-local and
# global IPv6 addresses; A's kernel gives them up) and:
#   - B pings the guest's IPv6 address (ICMPv6 echo after neighbour
#     discovery) and its link-local address;
#   - a guest python3 http.server bound to '::' is reached from B over IPv6
#     and, through the same dual-stack socket, over IPv4;
#   - a guest client reaches an HTTP server in B over IPv6;
#   - the guest sees its IPv6 addresses (`ip -6 addr`, /proc/net/if_inet6),
#     its IPv6 routes (`ip -6 route`, /proc/net/ipv6_route) and its
#     server's socket in /proc/net/tcp6.
#
#   bazel test //test/netstack:veth6_e2e_test   (or: veth6_e2e_test.sh SEEDSC)
SEEDSC="$(realpath "${1:?usage: veth6_e2e_test.sh SEEDSC}")"
source "$(dirname "$0")/e2e_lib.sh"
NA="sv6nsA$$" NB="sv6nsB$$"
IPA=192.168.214.2 IPB=192.168.214.1
IP6A=fd00:214::2 IP6B=fd00:214::1
extra_cleanup() { del_ns_pair "$NA" "$NB"; }
need_tools ip curl python3
make_ns_pair "$NA" "$NB" "$IPA" "$IPB" || { echo "FAIL: cannot make the namespaces and veth"; exit 1; }
ip -n "$NA" addr add "$IP6A/64" dev eth0 nodad &&
  ip -n "$NB" addr add "$IP6B/64" dev peer0 nodad &&
  ip -n "$NA" -6 route add default via "$IP6B" ||
  { echo "FAIL: cannot add the IPv6 addresses"; exit 1; }
# Both link-local addresses past duplicate address detection (about 1 s).
for i in $(seq 1 50); do
  [[ -z "$(ip -n "$NA" -6 addr show tentative; ip -n "$NB" -6 addr show tentative)" ]] && break
  sleep 0.1
done
LLA="$(ip -n "$NA" -6 addr show dev eth0 scope link | sed -n 's/.*inet6 \(fe80[^/]*\).*/\1/p')"
[[ -n "$LLA" ]] || { echo "FAIL: A has no link-local address"; exit 1; }

mkdir -p "$T/b" "$T/a"
echo "hello from B over IPv6" > "$T/b/b.txt"
echo "hello from the guest" > "$T/a/a.txt"
(cd "$T/b" && exec ip netns exec "$NB" python3 -m http.server 8081 --bind "$IP6B") \
  >"$T/b.log" 2>&1 &
pids+=($!)

cat > "$T/guest.py" <<PY
import os, socket, subprocess, time, urllib.request, http.server
os.chdir("$T/a")
def show(tag, text):
    for line in text.splitlines(): print(tag, line, flush=True)
for i in range(50):
    try:
        print("client:", urllib.request.urlopen("http://[$IP6B]:8081/b.txt", timeout=5).read().decode().strip(), flush=True)
        break
    except OSError as e:
        err = e
        time.sleep(0.2)
else:
    print("client failed:", err, flush=True)
r = subprocess.run(["/usr/sbin/ip", "-6", "addr", "show"], capture_output=True, text=True)
show("IP6_ADDR:", r.stdout + r.stderr)
show("IF_INET6:", open("/proc/net/if_inet6").read())
r = subprocess.run(["/usr/sbin/ip", "-6", "route", "show"], capture_output=True, text=True)
show("IP6_ROUTE:", r.stdout + r.stderr)
r = subprocess.run(["/usr/sbin/ip", "-6", "route", "show", "table", "local"], capture_output=True, text=True)
show("IP6_LOCAL:", r.stdout + r.stderr)
show("IPV6_ROUTE:", open("/proc/net/ipv6_route").read())
class H(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
class Server6(http.server.HTTPServer):
    address_family = socket.AF_INET6
srv = Server6(("::", 8080), H)
show("TCP6:", open("/proc/net/tcp6").read())
print("serving", flush=True)
for _ in range(3): srv.handle_request()
PY
"$SEEDSC" --network=sandbox do --netns="/run/netns/$NA" /usr/bin/python3 "$T/guest.py" \
  >"$T/guest.log" 2>&1 &
gpid=$!
pids+=($gpid)
for i in $(seq 1 150); do grep -q serving "$T/guest.log" && break; sleep 0.2; done

if grep -q "client: hello from B over IPv6" "$T/guest.log"; then ok "guest client reaches B over IPv6"; else
  bad "guest client reaches B over IPv6"; fi
# ping6 (no iputils here): an ICMPv6 echo from a raw socket in B; the
# kernel fills in the checksum.
cat > "$T/ping6.py" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.settimeout(3)
dst = socket.getaddrinfo(sys.argv[1], None, socket.AF_INET6)[0][4]
s.sendto(struct.pack("!BBHHH", 128, 0, 0, 0x5eed, 1) + b"seedvisor", dst)
while True:
    data, src = s.recvfrom(1500)
    if data[0] == 129 and data[4:6] == b"\x5e\xed" and data[8:] == b"seedvisor":
        print("reply from", src[0]); break
PY
if ip netns exec "$NB" python3 "$T/ping6.py" "$IP6A" >"$T/ping.log" 2>&1; then ok "B pings the guest's $IP6A"; else
  bad "B pings the guest's $IP6A"; cat "$T/ping.log"; fi
if ip netns exec "$NB" python3 "$T/ping6.py" "$LLA%peer0" >"$T/ping.log" 2>&1; then ok "B pings the guest's link-local $LLA"; else
  bad "B pings the guest's link-local $LLA"; cat "$T/ping.log"; fi
got="$(ip netns exec "$NB" curl -s -6 --max-time 10 "http://[$IP6A]:8080/a.txt")"
check_eq "curl -6 from B reaches the guest's server on ::" "hello from the guest" "$got"
got="$(ip netns exec "$NB" python3 -c "import urllib.request; print(urllib.request.urlopen('http://[$IP6A]:8080/a.txt', timeout=10).read().decode().strip())" 2>&1)"
check_eq "python from B reaches it over IPv6" "hello from the guest" "$got"
got="$(ip netns exec "$NB" curl -s -4 --max-time 10 "http://$IPA:8080/a.txt")"
check_eq "curl -4 from B reaches the same dual-stack socket" "hello from the guest" "$got"
if [[ -z "$(ip -n "$NA" -6 addr show dev eth0)" ]]; then ok "the host side of A gave up its IPv6 addresses"; else
  bad "the host side of A gave up its IPv6 addresses"; ip -n "$NA" -6 addr show dev eth0; fi
view() { grep "^$1" "$T/guest.log" | sed "s/^$1 //"; }
check_view() {  # name, tag, fixed string expected in that part of the log
  if view "$2" | grep -qF -- "$3"; then ok "$1"; else bad "$1"; echo "  want: $3"; view "$2" | sed 's/^/  got: /'; fi
}
check_view "ip -6 addr shows the global address" IP6_ADDR: "inet6 $IP6A/64 scope global"
check_view "ip -6 addr shows the link-local address" IP6_ADDR: "inet6 $LLA/64 scope link"
check_view "ip -6 addr shows ::1" IP6_ADDR: "inet6 ::1/128 scope host"
hex6="$(python3 -c "import ipaddress,sys; print(ipaddress.ip_address(sys.argv[1]).exploded.replace(':',''))" "$IP6A")"
check_view "/proc/net/if_inet6 has the global address on eth0" IF_INET6: "$hex6 02 40 00 80     eth0"
check_view "ip -6 route shows the on-link prefix" IP6_ROUTE: "fd00:214::/64 dev eth0 proto kernel metric 256 pref medium"
check_view "ip -6 route shows the link-local prefix" IP6_ROUTE: "fe80::/64 dev eth0 proto kernel metric 256 pref medium"
check_view "ip -6 route shows the default route" IP6_ROUTE: "default via $IP6B dev eth0 metric 1024 pref medium"
check_view "ip -6 route table local shows the address" IP6_LOCAL: "local $IP6A dev eth0 proto kernel metric 0 pref medium"
check_view "ip -6 route table local shows ::1" IP6_LOCAL: "local ::1 dev lo proto kernel metric 0 pref medium"
check_view "/proc/net/ipv6_route has the default route" IPV6_ROUTE: "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000214000000000000000000000001 00000400"
check_view "/proc/net/tcp6 has the server's listener on ::" TCP6: ": 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A "
wait "$gpid"
rc=$?
if ((rc == 0)); then ok "guest exits 0"; else bad "guest exits 0 (got $rc)"; fi
if ((fail)); then echo "--- guest log"; cat "$T/guest.log"; fi
e2e_done
