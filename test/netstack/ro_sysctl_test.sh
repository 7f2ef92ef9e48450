#!/bin/bash
# A takeover where disable_ipv6 cannot be written (issue 11): /proc/sys
# read-only, as container runtimes mount it. Turning the host's IPv6 off
# on the interface is meant to be best effort: the sandbox still starts
# and serves the interface, and says so in one warning line. Two network
# namespaces made here (192.168.215.0/24, fd00:215::/64 on their veth);
# seedsc runs in a private mount namespace whose /proc/sys is a read-only
# bind mount. Before: `seedsc do` failed with "turning IPv6 off on eth0".
#
#   bazel test //test/netstack:ro_sysctl_test   (or: ro_sysctl_test.sh SEEDSC)
SEEDSC="$(realpath "${1:?usage: ro_sysctl_test.sh SEEDSC}")"
source "$(dirname "$0")/e2e_lib.sh"
NA="svronsA$$" NB="svronsB$$"
IPA=192.168.215.2 IPB=192.168.215.1
IP6A=fd00:215::2
extra_cleanup() { del_ns_pair "$NA" "$NB"; }
need_tools ip curl python3 unshare mount
make_ns_pair "$NA" "$NB" "$IPA" "$IPB" || { echo "FAIL: cannot make the namespaces and veth"; exit 1; }
ip -n "$NA" addr add "$IP6A/64" dev eth0 nodad || { echo "FAIL: cannot add the IPv6 address"; exit 1; }

cat > "$T/guest.py" <<'PY'
import http.server
print("IF_INET6:", open("/proc/net/if_inet6").read().replace("\n", " | "), flush=True)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"served by the guest\n")
    def log_message(self, *a): pass
srv = http.server.HTTPServer(("0.0.0.0", 8080), H)
print("serving", flush=True)
srv.handle_request()
PY
# The read-only /proc/sys only for seedsc (a private mount namespace).
unshare -m --propagation private sh -c '
  mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys /proc/sys || exit 99
  exec "$@"' sh "$SEEDSC" --network=sandbox do --netns="/run/netns/$NA" /usr/bin/python3 "$T/guest.py" \
  >"$T/guest.out" 2>"$T/guest.err" &
gpid=$!
pids+=($gpid)
for i in $(seq 1 150); do grep -q serving "$T/guest.out" && break; kill -0 "$gpid" 2>/dev/null || break; sleep 0.2; done
got="$(ip netns exec "$NB" curl -s --max-time 10 "http://$IPA:8080/")"
check_eq "the sandbox starts and B reaches its server over IPv4" "served by the guest" "$got"
hex6="$(python3 -c "import ipaddress,sys; print(ipaddress.ip_address(sys.argv[1]).exploded.replace(':',''))" "$IP6A")"
if grep -q "IF_INET6:.*$hex6 .* eth0" "$T/guest.out"; then ok "the guest's stack took the IPv6 address"; else
  bad "the guest's stack took the IPv6 address"; fi
wait "$gpid"
rc=$?
check_eq "seedsc exits 0" 0 "$rc"
check_eq "one warning line says IPv6 stays on in the host's eth0" 1 \
  "$(grep -c "eth0: cannot turn the host's IPv6 off (/proc/sys/net/ipv6/conf/eth0/disable_ipv6: Read-only file system)" "$T/guest.err")"
check_eq "nothing else on stderr" 1 "$(grep -c . "$T/guest.err")"
if ((fail)); then echo "--- stdout"; cat "$T/guest.out"; echo "--- stderr"; cat "$T/guest.err"; fi
e2e_done
