#!/bin/bash
# --network=sandbox end to end over a veth (issue 11, milestone 3): two
# network namespaces made here (nothing else is touched), joined by a veth
# with 192.168.213.0/24 on it. `seedsc do --network=sandbox --netns=A` takes
# over A's interface (its address moves from A's kernel to the sandbox's
# own stack) and:
#   - a guest HTTP server (python3 -m http.server) is reached by curl from B;
#   - a guest client reaches an HTTP server in B;
#   - guest loopback (127.0.0.1) works;
#   - A's kernel no longer has the address (it never answers for the guest);
#   - the guest sees its network as A had it: `ip addr/route/link` (netlink),
#     SIOCGIF* ioctls, /proc/net/{dev,route,tcp}.
# Namespaces (and with them the veth) are removed on every exit.
#
#   bazel test //test/netstack:veth_e2e_test   (or: veth_e2e_test.sh SEEDSC)
SEEDSC="$(realpath "${1:?usage: veth_e2e_test.sh SEEDSC}")"
source "$(dirname "$0")/e2e_lib.sh"
NA="svnsA$$" NB="svnsB$$"
IPA=192.168.213.2 IPB=192.168.213.1
extra_cleanup() { del_ns_pair "$NA" "$NB"; }
need_tools ip curl python3
make_ns_pair "$NA" "$NB" "$IPA" "$IPB" || { echo "FAIL: cannot make the namespaces and veth"; exit 1; }
MACA="$(ip netns exec "$NA" cat /sys/class/net/eth0/address)"

# B serves a file for the guest's client.
mkdir -p "$T/b" "$T/a"
echo "hello from B" > "$T/b/b.txt"
echo "hello from the guest" > "$T/a/a.txt"
(cd "$T/b" && exec ip netns exec "$NB" python3 -m http.server 8081 --bind "$IPB") \
  >"$T/b.log" 2>&1 &
pids+=($!)

# The guest: loopback check, client to B, then an HTTP server for B.
cat > "$T/guest.py" <<PY
import socket, threading, urllib.request, http.server, os, sys
os.chdir("$T/a")
# Loopback inside the sandbox's stack.
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(1)
def echo():
    c, _ = l.accept(); c.sendall(c.recv(64).upper()); c.close()
th = threading.Thread(target=echo); th.start()
c = socket.create_connection(l.getsockname()); c.sendall(b"lo works"); print("loopback:", c.recv(64).decode(), flush=True)
th.join()
# A client to B.
for i in range(50):
    try:
        print("client:", urllib.request.urlopen("http://$IPB:8081/b.txt", timeout=5).read().decode().strip(), flush=True)
        break
    except OSError as e:
        err = e
        import time; time.sleep(0.2)
else:
    print("client failed:", err, flush=True)
# The guest's view of its network, printed for the checks below.
import subprocess, fcntl, struct
def show(tag, text):
    for line in text.splitlines(): print(tag, line, flush=True)
for tag, args in (("IP_ADDR:", ["-4", "addr", "show"]), ("IP_ROUTE:", ["route", "show"]),
                  ("IP_LINK:", ["link", "show"])):
    r = subprocess.run(["/usr/sbin/ip"] + args, capture_output=True, text=True)
    show(tag, r.stdout + r.stderr)
print("NAMEINDEX:", socket.if_nameindex(), flush=True)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
def ifreq(cmd):
    return fcntl.ioctl(s, cmd, struct.pack("16s16s", b"eth0", b""))
print("SIOCGIFADDR:", socket.inet_ntoa(ifreq(0x8915)[20:24]), flush=True)
print("SIOCGIFNETMASK:", socket.inet_ntoa(ifreq(0x891b)[20:24]), flush=True)
print("SIOCGIFHWADDR:", ifreq(0x8927)[18:24].hex(":"), flush=True)
print("SIOCGIFMTU:", struct.unpack("i", ifreq(0x8921)[16:20])[0], flush=True)
show("ROUTE:", open("/proc/net/route").read())
show("DEV:", open("/proc/net/dev").read())
class H(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
srv = http.server.HTTPServer(("0.0.0.0", 8080), H)
show("TCP:", open("/proc/net/tcp").read())
print("serving", flush=True)
srv.handle_request(); srv.handle_request()
PY
"$SEEDSC" --network=sandbox do --netns="/run/netns/$NA" /usr/bin/python3 "$T/guest.py" \
  >"$T/guest.log" 2>&1 &
gpid=$!
pids+=($gpid)
for i in $(seq 1 150); do grep -q serving "$T/guest.log" && break; sleep 0.2; done

if grep -q "loopback: LO WORKS" "$T/guest.log"; then ok "guest loopback"; else bad "guest loopback"; fi
if grep -q "client: hello from B" "$T/guest.log"; then ok "guest client reaches B"; else bad "guest client reaches B"; fi
got="$(ip netns exec "$NB" curl -s --max-time 10 "http://$IPA:8080/a.txt")"
if [[ "$got" == "hello from the guest" ]]; then ok "curl from B reaches the guest's server"; else
  bad "curl from B reaches the guest's server"; echo "  got: $got"; fi
got="$(ip netns exec "$NB" python3 -c "import urllib.request; print(urllib.request.urlopen('http://$IPA:8080/a.txt', timeout=10).read().decode().strip())" 2>&1)"
if [[ "$got" == "hello from the guest" ]]; then ok "python from B reaches the guest's server"; else
  bad "python from B reaches the guest's server"; echo "  got: $got"; fi
if ip -n "$NA" -4 addr show dev eth0 | grep -q "$IPA"; then
  bad "the host side of A gave up $IPA"; else ok "the host side of A gave up $IPA"; fi
# The guest's own view (printed by guest.py).
view() { grep "^$1" "$T/guest.log" | sed "s/^$1 //"; }
check_view() {  # name, tag, fixed string expected in that part of the log
  if view "$2" | grep -qF -- "$3"; then ok "$1"; else bad "$1"; echo "  want: $3"; view "$2" | sed 's/^/  got: /'; fi
}
# (No "brd": the namespace's address was added without one.)
check_view "ip addr shows eth0's address" IP_ADDR: "inet $IPA/24 scope global eth0"
check_view "ip addr shows lo" IP_ADDR: "inet 127.0.0.1/8 scope host lo"
check_view "ip route shows the on-link route" IP_ROUTE: "192.168.213.0/24 dev eth0 proto kernel scope link src $IPA"
check_view "ip route shows the default route" IP_ROUTE: "default via $IPB dev eth0"
check_view "ip link shows eth0 with A's MAC" IP_LINK: "link/ether $MACA brd ff:ff:ff:ff:ff:ff"
check_view "ip link shows eth0 up" IP_LINK: "eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500"
check_view "if_nameindex has lo and eth0" NAMEINDEX: "[(1, 'lo'), (2, 'eth0')]"
check_view "SIOCGIFADDR" SIOCGIFADDR: "$IPA"
check_view "SIOCGIFNETMASK" SIOCGIFNETMASK: "255.255.255.0"
check_view "SIOCGIFHWADDR" SIOCGIFHWADDR: "$MACA"
check_view "SIOCGIFMTU" SIOCGIFMTU: "1500"
check_view "/proc/net/route: on-link" ROUTE: "$(printf 'eth0\t00D5A8C0\t00000000\t0001')"
check_view "/proc/net/route: default" ROUTE: "$(printf 'eth0\t00000000\t01D5A8C0\t0003')"
check_view "/proc/net/dev has eth0" DEV: "  eth0:"
check_view "/proc/net/tcp has the server's listener" TCP: ": 00000000:1F90 00000000:0000 0A "
wait "$gpid"
rc=$?
if ((rc == 0)); then ok "guest exits 0"; else bad "guest exits 0 (got $rc)"; fi
if ((fail)); then echo "--- guest log"; cat "$T/guest.log"; fi
e2e_done
